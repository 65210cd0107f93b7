//! Writing one service's Rust module from its model and allow-list.

use crate::allowlist::ServiceSpec;
use crate::model::{Kind, Model, ShapeDef};
use crate::names;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One generated module and the patterns its shapes use (for the crate-wide regex cache), as
/// (model text, `regex`-crate form).
pub struct Generated {
    pub source: String,
    pub patterns: BTreeSet<(String, String)>,
}

/// The names and decisions shared by the parts of one service's module.
struct Ctx<'a> {
    spec: &'a ServiceSpec,
    model: &'a Model,
    /// Reachable shapes, sorted by name.
    reachable: BTreeSet<String>,
    statics: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
    /// Patterns kept, by shape name: (model text, `regex`-crate form).
    patterns: BTreeMap<String, (String, String)>,
    /// Patterns the regex crate rejects: (shape, pattern, reason).
    dropped: Vec<(String, String, String)>,
    /// Structures that can derive `Default`.
    defaults: BTreeSet<String>,
}

/// Rust string literal for `s`.
fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn opt_lit(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("Some({})", lit(s)),
        None => "None".to_owned(),
    }
}

fn opt_num(n: Option<i64>) -> String {
    match n {
        Some(n) => format!("Some({n})"),
        None => "None".to_owned(),
    }
}

/// The first sentence of a botocore documentation string, without HTML, on one line.
pub fn first_sentence(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.replace(" .", ".").replace(" ,", ",");
    let mut end = text.len();
    if let Some(i) = text.find(". ") {
        end = i + 1;
    }
    let mut out: String = text[..end].to_owned();
    if out.chars().count() > 240 {
        out = out.chars().take(237).collect::<String>() + "...";
    }
    out
}

fn doc_lines(out: &mut String, text: &str) {
    if !text.is_empty() {
        let _ = writeln!(out, "/// {text}");
    }
}

impl<'a> Ctx<'a> {
    fn new(spec: &'a ServiceSpec, model: &'a Model) -> Result<Self> {
        let mut roots = Vec::new();
        for op in spec.operations {
            let Some(o) = model.operations.get(*op) else {
                bail!("allow-listed operation {}:{op} is not in the model", spec.name);
            };
            roots.extend(o.input.as_deref());
            roots.extend(o.output.as_deref());
        }
        let reachable = model.reachable(&roots)?;
        for name in &reachable {
            let s = model.shape(name)?;
            let complete = match s.kind {
                Kind::List => s.member.is_some(),
                Kind::Map => s.key.is_some() && s.value.is_some(),
                _ => true,
            };
            if !complete {
                bail!("{}: shape {name} lacks its member, key or value", spec.name);
            }
        }

        let mut statics = BTreeMap::new();
        let mut used = BTreeSet::new();
        for name in &reachable {
            let base = names::static_name(name);
            let mut candidate = base.clone();
            let mut n = 2;
            while !used.insert(candidate.clone()) {
                candidate = format!("{base}_{n}");
                n += 1;
            }
            statics.insert(name.clone(), candidate);
        }

        let mut types = BTreeMap::new();
        let mut used = BTreeSet::new();
        for name in &reachable {
            if model.shape(name)?.kind != Kind::Structure {
                continue;
            }
            let base = names::type_name(name);
            let mut candidate = base.clone();
            let mut n = 2;
            while !used.insert(candidate.clone()) {
                candidate = format!("{base}{n}");
                n += 1;
            }
            types.insert(name.clone(), candidate);
        }

        let mut patterns = BTreeMap::new();
        let mut dropped = Vec::new();
        for name in &reachable {
            if let Some(p) = &model.shape(name)?.pattern {
                let rust = crate::pattern::to_rust(p);
                match regex::Regex::new(&rust) {
                    Ok(_) => {
                        patterns.insert(name.clone(), (p.clone(), rust));
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        let reason = reason.lines().last().unwrap_or("").trim().to_owned();
                        dropped.push((name.clone(), p.clone(), reason));
                    }
                }
            }
        }

        let mut ctx = Ctx { spec, model, reachable, statics, types, patterns, dropped, defaults: BTreeSet::new() };
        ctx.defaults = ctx.compute_defaults()?;
        Ok(ctx)
    }

    fn shape(&self, name: &str) -> &'a ShapeDef {
        // Every name handled here came out of `Model::reachable`, which checked it exists.
        self.model.shapes.get(name).expect("reachable shapes exist in the model")
    }

    /// Structures whose required members all have a `Default` (`Timestamp` has none).
    fn compute_defaults(&self) -> Result<BTreeSet<String>> {
        let structs: Vec<&String> = self.types.keys().collect();
        let mut no_default: BTreeSet<String> = BTreeSet::new();
        // Iterate to a fixed point: a struct loses `Default` if a required member is a timestamp
        // or a struct without `Default`.
        loop {
            let mut changed = false;
            for s in &structs {
                if no_default.contains(*s) {
                    continue;
                }
                let def = self.shape(s);
                let lacks = def.members.iter().any(|m| {
                    def.required.contains(&m.name) && {
                        let t = self.shape(&m.shape);
                        t.kind == Kind::Timestamp || (t.kind == Kind::Structure && no_default.contains(&m.shape))
                    }
                });
                if lacks {
                    no_default.insert((*s).clone());
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        Ok(structs.into_iter().filter(|s| !no_default.contains(*s)).cloned().collect())
    }

    /// Whether structure `from` reaches structure `to` through struct-typed members alone (no
    /// list or map in between, which would already give indirection).
    fn reaches_directly(&self, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(s) = stack.pop() {
            if s == to {
                return true;
            }
            if !seen.insert(s.clone()) {
                continue;
            }
            for m in &self.shape(&s).members {
                if self.shape(&m.shape).kind == Kind::Structure {
                    stack.push(m.shape.clone());
                }
            }
        }
        false
    }

    fn rust_type(&self, shape: &str) -> String {
        let s = self.shape(shape);
        match s.kind {
            Kind::Structure => self.types[shape].clone(),
            Kind::List => {
                let m = s.member.as_ref().map_or("String".to_owned(), |m| self.rust_type(&m.shape));
                format!("Vec<{m}>")
            }
            Kind::Map => {
                let v = s.value.as_ref().map_or("String".to_owned(), |v| self.rust_type(&v.shape));
                format!("std::collections::BTreeMap<String, {v}>")
            }
            Kind::String | Kind::Blob => "String".to_owned(),
            Kind::Integer => "i32".to_owned(),
            Kind::Long => "i64".to_owned(),
            Kind::Boolean => "bool".to_owned(),
            Kind::Double => "f64".to_owned(),
            Kind::Timestamp => "corral_wire::time::Timestamp".to_owned(),
        }
    }

    fn is_query(&self) -> bool {
        self.model.metadata.protocol == "query"
    }

    fn signing_name(&self) -> &str {
        self.model.metadata.signing_name.as_deref().unwrap_or(&self.model.metadata.endpoint_prefix)
    }

    fn emit(&self, botocore_version: &str) -> Result<String> {
        let md = &self.model.metadata;
        let svc = self.spec.name;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "// @generated by `cargo xtask codegen` from botocore {botocore_version} ({svc} {}). Do not edit by hand.",
            md.api_version
        );
        let _ = writeln!(
            o,
            "//! {} ({svc} {}): operations Corral implements, their types and shape tables.",
            md.service_full_name, md.api_version
        );
        let _ = writeln!(o, "//!");
        let _ = writeln!(o, "//! Generated from botocore's model; the allow-list is `xtask/src/allowlist.rs`.");
        // Model documentation is prose with brackets, URLs and stray angle brackets; it is not
        // written for rustdoc.
        let _ =
            writeln!(o, "#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]");
        if self.dropped.is_empty() {
            let _ = writeln!(o, "\n// Every pattern of these shapes is checked at run time.");
        } else {
            let _ = writeln!(
                o,
                "\n// Patterns dropped because the regex crate cannot compile them (not checked at run time):"
            );
            for (shape, pattern, reason) in &self.dropped {
                let _ = writeln!(o, "// - {shape}: {pattern:?} ({reason})");
            }
        }
        o.push('\n');
        self.emit_service(&mut o);
        self.emit_operations(&mut o);
        self.emit_errors(&mut o);
        o.push_str("\n// === Types ===\n\n");
        for name in self.types.keys() {
            self.emit_struct(&mut o, name);
        }
        o.push_str("\n// === Shapes ===\n\n");
        self.emit_shapes(&mut o);
        Ok(o)
    }

    fn emit_service(&self, o: &mut String) {
        let md = &self.model.metadata;
        let protocol = if self.is_query() { "Query" } else { "Json" };
        let ops = self.model.operations.keys().map(|k| format!("{},\n", lit(k))).collect::<String>();
        let _ = writeln!(
            o,
            "/// Wire metadata of the service, from the model's `metadata`.\n\
             pub static SERVICE: crate::model::ServiceMeta = crate::model::ServiceMeta {{\n\
             name: {name},\n signing_name: {signing},\n protocol: crate::model::Protocol::{protocol},\n\
             target_prefix: {target},\n api_version: {api},\n xml_namespace: {xmlns},\n\
             event_source: {event},\n model_operations: &[\n{ops}],\n}};\n",
            name = lit(self.spec.name),
            signing = lit(self.signing_name()),
            target = opt_lit(md.target_prefix.as_deref()),
            api = lit(&md.api_version),
            xmlns = opt_lit(md.xml_namespace.as_deref()),
            event = lit(&format!("{}.amazonaws.com", md.endpoint_prefix)),
        );
    }

    fn emit_operations(&self, o: &mut String) {
        let mut ops: Vec<&str> = self.spec.operations.to_vec();
        ops.sort_unstable();
        ops.dedup();
        let prefix = self.signing_name();
        o.push_str(
            "/// The operations of this service that Corral implements (the allow-list).\n\
             #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Operation {\n",
        );
        for op in &ops {
            let doc = first_sentence(&self.model.operations[*op].documentation);
            doc_lines(o, &doc);
            let _ = writeln!(o, "{op},");
        }
        o.push_str("}\n\nimpl Operation {\n");
        let _ = writeln!(
            o,
            "/// Every implemented operation, sorted by name.\npub const ALL: &'static [Operation] = &[{}];\n",
            ops.iter().map(|op| format!("Operation::{op}")).collect::<Vec<_>>().join(", ")
        );
        let arms = |f: &dyn Fn(&str) -> String| -> String {
            if ops.is_empty() {
                return "match self {}".to_owned();
            }
            let mut s = "match self {\n".to_owned();
            for op in &ops {
                let _ = writeln!(s, "Operation::{op} => {},", f(op));
            }
            s.push('}');
            s
        };
        let _ = writeln!(
            o,
            "/// The operation's name as the wire carries it.\npub fn name(self) -> &'static str {{\n{}\n}}\n",
            arms(&|op| lit(op))
        );
        let from = if ops.is_empty() {
            "let _ = name;\nNone".to_owned()
        } else {
            let mut s = "match name {\n".to_owned();
            for op in &ops {
                let _ = writeln!(s, "{} => Some(Operation::{op}),", lit(op));
            }
            s.push_str("_ => None,\n}");
            s
        };
        let _ = writeln!(
            o,
            "/// The implemented operation called `name`, if any.\npub fn from_name(name: &str) -> Option<Operation> {{\n{from}\n}}\n"
        );
        let _ = writeln!(
            o,
            "/// The IAM action a caller needs, e.g. `{prefix}:{}`.\npub fn iam_action(self) -> &'static str {{\n{}\n}}\n",
            ops.first().copied().unwrap_or("Operation"),
            arms(&|op| lit(&format!("{prefix}:{op}")))
        );
        let ro = |op: &str| ["Describe", "Get", "List", "Lookup"].iter().any(|p| op.starts_with(p));
        let _ = writeln!(
            o,
            "/// Whether the operation only reads (its name starts with Describe, Get, List or Lookup).\n\
             pub fn read_only(self) -> bool {{\n{}\n}}\n",
            arms(&|op| ro(op).to_string())
        );
        let _ = writeln!(
            o,
            "/// The shape of the request (an empty structure when the model has no input).\n\
             pub fn input_shape(self) -> &'static crate::model::Shape {{\n{}\n}}\n",
            arms(&|op| match &self.model.operations[op].input {
                Some(s) => format!("&shapes::{}", self.statics[s]),
                None => "&crate::model::EMPTY_STRUCTURE".to_owned(),
            })
        );
        let _ = writeln!(
            o,
            "/// The shape of the response, if the operation has one.\n\
             pub fn output_shape(self) -> Option<&'static crate::model::Shape> {{\n{}\n}}\n",
            arms(&|op| match &self.model.operations[op].output {
                Some(s) => format!("Some(&shapes::{})", self.statics[s]),
                None => "None".to_owned(),
            })
        );
        let _ = writeln!(
            o,
            "/// The element wrapping the response members in a Query response (`<XResult>`); `None`\n\
             /// for JSON services and operations without output.\n\
             pub fn result_wrapper(self) -> Option<&'static str> {{\n{}\n}}\n}}\n",
            arms(&|op| opt_lit(self.model.operations[op].result_wrapper.as_deref()))
        );
    }

    fn emit_errors(&self, o: &mut String) {
        o.push_str(
            "/// The service's modelled errors: (shape name, wire code, HTTP status). The code is the\n\
             /// model's `error.code` or else the shape name; the status its `httpStatusCode`, else\n\
             /// 500 for faults and 400 otherwise.\npub const ERROR_CODES: &[(&str, &str, u16)] = &[\n",
        );
        for s in self.model.shapes.values().filter(|s| s.exception) {
            let code = s.error_code.as_deref().unwrap_or(&s.name);
            let status = s.http_status.and_then(|h| u16::try_from(h).ok()).unwrap_or(if s.fault { 500 } else { 400 });
            let _ = writeln!(o, "({}, {}, {status}),", lit(&s.name), lit(code));
        }
        o.push_str("];\n");
    }

    fn emit_struct(&self, o: &mut String, name: &str) {
        let def = self.shape(name);
        let ty = &self.types[name];
        let doc = first_sentence(&def.documentation);
        if doc.is_empty() {
            let _ = writeln!(o, "/// The `{name}` structure.");
        } else {
            doc_lines(o, &doc);
        }
        let derive_default = if self.defaults.contains(name) { "Default, " } else { "" };
        let _ = writeln!(
            o,
            "#[derive(Debug, Clone, PartialEq, {derive_default}serde::Serialize, serde::Deserialize)]\npub struct {ty} {{"
        );
        let mut used = BTreeSet::new();
        for m in &def.members {
            let target = self.shape(&m.shape);
            let base = names::field_name(&m.name);
            let mut field = base.clone();
            let mut n = 2;
            while !used.insert(field.clone()) {
                field = format!("{base}_{n}");
                n += 1;
            }
            let mut doc = first_sentence(&m.documentation);
            if doc.is_empty() {
                doc = format!("The `{}` member.", m.name);
            }
            doc_lines(o, &doc);
            if target.sensitive {
                o.push_str("///\n/// Sensitive: never log or echo this value.\n");
            }
            let mut t = self.rust_type(&m.shape);
            if target.kind == Kind::Structure && self.reaches_directly(&m.shape, name) {
                t = format!("Box<{t}>");
            }
            let wire = m.location_name.as_deref().unwrap_or(&m.name);
            if def.required.contains(&m.name) {
                let _ = writeln!(o, "#[serde(rename = {})]\npub {field}: {t},", lit(wire));
            } else {
                let _ = writeln!(
                    o,
                    "#[serde(rename = {}, default, skip_serializing_if = \"Option::is_none\")]\npub {field}: Option<{t}>,",
                    lit(wire)
                );
            }
        }
        o.push_str("}\n\n");
    }

    fn emit_shapes(&self, o: &mut String) {
        o.push_str(
            "/// Static descriptions of every shape the types above use, for validation and the Query\n\
             /// codec.\npub mod shapes {\nuse crate::model::{Member, Shape, ShapeKind};\n\n",
        );
        for name in &self.reachable {
            let s = self.shape(name);
            let st = &self.statics[name];
            let r = |name: &str| format!("&{}", self.statics[name]);
            let kind = match s.kind {
                Kind::Structure => {
                    let members = s
                        .members
                        .iter()
                        .map(|m| {
                            format!(
                                "Member {{ name: {}, wire_name: {}, shape: {}, required: {} }}",
                                lit(&m.name),
                                lit(m.location_name.as_deref().unwrap_or(&m.name)),
                                r(&m.shape),
                                s.required.contains(&m.name)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",\n");
                    format!("ShapeKind::Structure {{ members: &[{members}] }}")
                }
                Kind::List => {
                    let m = s.member.as_ref().map(|m| (r(&m.shape), m.location_name.as_deref()));
                    let (member, loc) = m.unwrap_or(("&crate::model::EMPTY_STRUCTURE".to_owned(), None));
                    format!(
                        "ShapeKind::List {{ member: {member}, member_location_name: {}, flattened: {}, min: {}, max: {} }}",
                        opt_lit(loc),
                        s.flattened,
                        opt_num(s.min),
                        opt_num(s.max)
                    )
                }
                Kind::Map => {
                    let key = s.key.as_ref();
                    let value = s.value.as_ref();
                    format!(
                        "ShapeKind::Map {{ key: {}, value: {}, min: {}, max: {}, flattened: {}, key_name: {}, value_name: {} }}",
                        key.map_or("&crate::model::EMPTY_STRUCTURE".to_owned(), |k| r(&k.shape)),
                        value.map_or("&crate::model::EMPTY_STRUCTURE".to_owned(), |v| r(&v.shape)),
                        opt_num(s.min),
                        opt_num(s.max),
                        s.flattened,
                        lit(key.and_then(|k| k.location_name.as_deref()).unwrap_or("key")),
                        lit(value.and_then(|v| v.location_name.as_deref()).unwrap_or("value")),
                    )
                }
                Kind::String => format!(
                    "ShapeKind::String {{ min: {}, max: {}, pattern: {}, enum_values: &[{}] }}",
                    opt_num(s.min),
                    opt_num(s.max),
                    opt_lit(self.patterns.get(name).map(|(p, _)| p.as_str())),
                    s.enum_values.iter().map(|e| lit(e)).collect::<Vec<_>>().join(", ")
                ),
                Kind::Integer => format!("ShapeKind::Integer {{ min: {}, max: {} }}", opt_num(s.min), opt_num(s.max)),
                Kind::Long => format!("ShapeKind::Long {{ min: {}, max: {} }}", opt_num(s.min), opt_num(s.max)),
                Kind::Boolean => "ShapeKind::Boolean".to_owned(),
                Kind::Double => "ShapeKind::Double".to_owned(),
                Kind::Timestamp => "ShapeKind::Timestamp".to_owned(),
                Kind::Blob => "ShapeKind::Blob".to_owned(),
            };
            let policy = self.spec.policy_document_shapes.contains(&name.as_str());
            let _ = writeln!(
                o,
                "/// The `{name}` shape.\npub static {st}: Shape = Shape {{ name: {}, kind: {kind}, sensitive: {}, doc_policy_document: {policy} }};\n",
                lit(name),
                s.sensitive
            );
        }
        o.push_str("}\n");
    }
}

/// Generates one service's module.
pub fn service(spec: &ServiceSpec, model: &Model, botocore_version: &str) -> Result<Generated> {
    if model.metadata.api_version != spec.api_version {
        bail!(
            "{}: model apiVersion {} differs from the allow-list's {}",
            spec.name,
            model.metadata.api_version,
            spec.api_version
        );
    }
    if !matches!(model.metadata.protocol.as_str(), "json" | "query") {
        bail!("{}: protocol {} is not supported", spec.name, model.metadata.protocol);
    }
    let ctx = Ctx::new(spec, model)?;
    let source = ctx.emit(botocore_version)?;
    Ok(Generated { source, patterns: ctx.patterns.values().cloned().collect() })
}

/// `generated/mod.rs`: the module list, every service's metadata and every kept pattern.
pub fn module_index(
    services: &[(&ServiceSpec, String)],
    patterns: &BTreeSet<(String, String)>,
    botocore_version: &str,
) -> String {
    let mut o = String::new();
    let list = services.iter().map(|(s, v)| format!("{} {v}", s.name)).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        o,
        "// @generated by `cargo xtask codegen` from botocore {botocore_version} ({list}). Do not edit by hand.\n\
         //! Code generated from botocore's service models, one module per service.\n"
    );
    for (s, _) in services {
        let _ = writeln!(o, "pub mod {};", s.name);
    }
    let _ = writeln!(
        o,
        "\n/// Every generated service's metadata, sorted by name.\npub static SERVICES: &[&crate::model::ServiceMeta] = &[{}];\n",
        services
            .iter()
            .map(|(s, _)| format!("&{}::SERVICE", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    o.push_str(
        "/// Every `pattern` the generated shapes carry, sorted: (the model's text, as shapes and error\n\
         /// messages carry it; the anchored `regex`-crate form with Java's ASCII `\\w \\d \\s`). The\n\
         /// runtime compiles each once.\npub static PATTERNS: &[(&str, &str)] = &[\n",
    );
    for (model, rust) in patterns {
        // Emitted in rustfmt's layout: rustfmt leaves statements with over-long literals alone.
        let _ = writeln!(o, "    (\n        {},\n        {},\n    ),", lit(model), lit(rust));
    }
    o.push_str("];\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentence_strips_html() {
        assert_eq!(first_sentence("<p>The <code>ID</code> of the setting. More text.</p>"), "The ID of the setting.");
        assert_eq!(first_sentence("<p>A &lt;b&gt; &amp; c</p>"), "A <b> & c");
        assert_eq!(first_sentence(""), "");
    }
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;
    use crate::json::Json;

    const MODEL: &str = r#"{
      "metadata": {"apiVersion": "2020-01-01", "endpointPrefix": "demo", "protocol": "query",
                   "xmlNamespace": "https://demo/doc/", "serviceFullName": "Demo"},
      "operations": {
        "PutThing": {"name": "PutThing", "input": {"shape": "PutThingRequest"},
                     "output": {"shape": "PutThingResponse", "resultWrapper": "PutThingResult"}},
        "Other": {"name": "Other"}
      },
      "shapes": {
        "PutThingRequest": {"type": "structure", "required": ["Name", "When"],
          "members": {"Name": {"shape": "NameType"}, "When": {"shape": "Date"},
                      "Node": {"shape": "Node"}}},
        "PutThingResponse": {"type": "structure", "members": {}},
        "Node": {"type": "structure", "members": {"Type": {"shape": "NameType"},
                 "Next": {"shape": "Node"}}},
        "NameType": {"type": "string", "pattern": "(?!x)[a-z]+", "sensitive": true},
        "Date": {"type": "timestamp"},
        "Oops": {"type": "structure", "members": {}, "exception": true,
                 "error": {"code": "Oops", "httpStatusCode": 409}}
      }
    }"#;

    fn generate(operations: &'static [&'static str]) -> String {
        let raw: Json = serde_json::from_str(MODEL).expect("valid JSON");
        let model = Model::parse(&raw).expect("valid model");
        let spec = ServiceSpec { name: "demo", api_version: "2020-01-01", operations, policy_document_shapes: &[] };
        service(&spec, &model, "0.0.0").expect("generates").source
    }

    #[test]
    fn handles_recursion_keywords_dropped_patterns_and_defaults() {
        let src = generate(&["PutThing"]);
        assert!(src.starts_with("// @generated by `cargo xtask codegen` from botocore 0.0.0 (demo 2020-01-01)."));
        assert!(src.contains("// - NameType: \"(?!x)[a-z]+\""), "dropped pattern listed");
        assert!(src.contains("pattern: None"));
        assert!(src.contains("pub next: Option<Box<Node>>"), "recursion is boxed");
        assert!(src.contains("pub r#type: Option<String>"), "keywords are escaped");
        assert!(src.contains("Sensitive: never log or echo this value."));
        // A required timestamp has no Default, so the struct derives none.
        assert!(src.contains(
            "#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]\npub struct PutThingRequest"
        ));
        assert!(src.contains("(\"Oops\", \"Oops\", 409)"));
        assert!(src.contains("Some(\"PutThingResult\")"));
        assert!(src.contains("model_operations: &[\n\"Other\",\n\"PutThing\",\n]"));
    }

    #[test]
    fn empty_allow_list_still_yields_an_operation_enum() {
        let src = generate(&[]);
        assert!(src.contains("pub enum Operation {\n}"));
        assert!(src.contains("match self {}"));
        assert!(src.contains("pub const ERROR_CODES"));
    }
}
