//! The parts of a botocore service model the generator uses, parsed into plain structs.

use crate::json::Json;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};

/// A service model.
pub struct Model {
    pub metadata: Metadata,
    pub operations: BTreeMap<String, Operation>,
    pub shapes: BTreeMap<String, ShapeDef>,
}

/// `metadata` of a model.
pub struct Metadata {
    pub api_version: String,
    pub endpoint_prefix: String,
    pub signing_name: Option<String>,
    pub protocol: String,
    pub target_prefix: Option<String>,
    pub xml_namespace: Option<String>,
    pub service_full_name: String,
}

/// One operation.
pub struct Operation {
    pub input: Option<String>,
    pub output: Option<String>,
    pub result_wrapper: Option<String>,
    pub documentation: String,
}

/// The type of a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Boolean,
    Double,
    Timestamp,
    Blob,
}

/// A reference from a structure, list or map to another shape.
pub struct Ref {
    pub name: String,
    pub shape: String,
    pub location_name: Option<String>,
    pub documentation: String,
}

/// One shape.
pub struct ShapeDef {
    pub name: String,
    pub kind: Kind,
    pub documentation: String,
    pub sensitive: bool,
    pub required: BTreeSet<String>,
    pub members: Vec<Ref>,
    pub member: Option<Ref>,
    pub key: Option<Ref>,
    pub value: Option<Ref>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub pattern: Option<String>,
    pub enum_values: Vec<String>,
    pub flattened: bool,
    pub exception: bool,
    pub fault: bool,
    pub error_code: Option<String>,
    pub http_status: Option<i64>,
}

fn opt_str(j: &Json, key: &str) -> Option<String> {
    j.get(key).and_then(Json::as_str).map(str::to_owned)
}

fn parse_ref(name: &str, j: &Json) -> Result<Ref> {
    Ok(Ref {
        name: name.to_owned(),
        shape: opt_str(j, "shape").ok_or_else(|| anyhow!("reference {name} has no shape"))?,
        location_name: opt_str(j, "locationName"),
        documentation: opt_str(j, "documentation").unwrap_or_default(),
    })
}

impl Model {
    /// Parses a whole `service-2.json`.
    pub fn parse(j: &Json) -> Result<Model> {
        let md = j.get("metadata").context("model has no metadata")?;
        let metadata = Metadata {
            api_version: opt_str(md, "apiVersion").context("no apiVersion")?,
            endpoint_prefix: opt_str(md, "endpointPrefix").context("no endpointPrefix")?,
            signing_name: opt_str(md, "signingName"),
            protocol: opt_str(md, "protocol").context("no protocol")?,
            target_prefix: opt_str(md, "targetPrefix"),
            xml_namespace: opt_str(md, "xmlNamespace"),
            service_full_name: opt_str(md, "serviceFullName").unwrap_or_default(),
        };
        let mut operations = BTreeMap::new();
        for (name, op) in j.get("operations").context("no operations")?.members() {
            let output = op.get("output");
            operations.insert(
                name.clone(),
                Operation {
                    input: op.get("input").and_then(|i| opt_str(i, "shape")),
                    output: output.and_then(|o| opt_str(o, "shape")),
                    result_wrapper: output.and_then(|o| opt_str(o, "resultWrapper")),
                    documentation: opt_str(op, "documentation").unwrap_or_default(),
                },
            );
        }
        let mut shapes = BTreeMap::new();
        for (name, s) in j.get("shapes").context("no shapes")?.members() {
            let shape = parse_shape(name, s).with_context(|| format!("shape {name}"))?;
            shapes.insert(name.clone(), shape);
        }
        Ok(Model { metadata, operations, shapes })
    }

    /// The shape called `name`; an error names the dangling reference.
    pub fn shape(&self, name: &str) -> Result<&ShapeDef> {
        self.shapes.get(name).ok_or_else(|| anyhow!("the model has no shape {name}"))
    }

    /// Every shape reachable from the given roots, by name (sorted).
    pub fn reachable(&self, roots: &[&str]) -> Result<BTreeSet<String>> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = roots.iter().map(|s| (*s).to_owned()).collect();
        while let Some(name) = stack.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let s = self.shape(&name)?;
            let refs = s.members.iter().chain(s.member.iter()).chain(s.key.iter()).chain(s.value.iter());
            for r in refs {
                if !seen.contains(&r.shape) {
                    stack.push(r.shape.clone());
                }
            }
        }
        Ok(seen)
    }
}

fn parse_shape(name: &str, s: &Json) -> Result<ShapeDef> {
    let ty = s.get("type").and_then(Json::as_str).unwrap_or("");
    let kind = match ty {
        "structure" => Kind::Structure,
        "list" => Kind::List,
        "map" => Kind::Map,
        "string" => Kind::String,
        "integer" => Kind::Integer,
        "long" => Kind::Long,
        "boolean" => Kind::Boolean,
        "double" | "float" => Kind::Double,
        "timestamp" => Kind::Timestamp,
        "blob" => Kind::Blob,
        other => bail!("unsupported shape type {other:?}"),
    };
    let members = s
        .get("members")
        .map(|m| m.members().iter().map(|(n, r)| parse_ref(n, r)).collect::<Result<Vec<_>>>())
        .transpose()?
        .unwrap_or_default();
    let one = |key: &str| -> Result<Option<Ref>> { s.get(key).map(|r| parse_ref(key, r)).transpose() };
    let error = s.get("error");
    Ok(ShapeDef {
        name: name.to_owned(),
        kind,
        documentation: opt_str(s, "documentation").unwrap_or_default(),
        sensitive: s.get("sensitive").and_then(Json::as_bool).unwrap_or(false),
        required: s
            .get("required")
            .map(|r| r.items().iter().filter_map(Json::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        members,
        member: one("member")?,
        key: one("key")?,
        value: one("value")?,
        min: s.get("min").and_then(Json::as_i64),
        max: s.get("max").and_then(Json::as_i64),
        pattern: opt_str(s, "pattern"),
        enum_values: s
            .get("enum")
            .map(|e| e.items().iter().filter_map(Json::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        flattened: s.get("flattened").and_then(Json::as_bool).unwrap_or(false),
        exception: s.get("exception").and_then(Json::as_bool).unwrap_or(false),
        fault: s.get("fault").and_then(Json::as_bool).unwrap_or(false),
        error_code: error.and_then(|e| opt_str(e, "code")),
        http_status: error.and_then(|e| e.get("httpStatusCode")).and_then(Json::as_i64),
    })
}
