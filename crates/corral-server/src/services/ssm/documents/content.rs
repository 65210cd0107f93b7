//! The content of an SSM document: parsing (JSON or YAML), validation of Command documents
//! (schema 1.2 `runtimeConfig` and 2.2 `mainSteps`), parameter resolution and rendering.
//!
//! What Run Command sends the agent is the content as a JSON object (`DocumentContent`) with
//! the resolved parameter values beside it; [`resolve_parameters`] checks a caller's values
//! against the declarations and [`render`] substitutes them where the server needs the
//! concrete body.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};

/// The largest document content AWS accepts (64 KB).
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// The plugins / actions Corral's Run Command can execute.
pub const RUN_SHELL_SCRIPT: &str = "aws:runShellScript";
/// See [`RUN_SHELL_SCRIPT`].
pub const RUN_POWERSHELL_SCRIPT: &str = "aws:runPowerShellScript";

/// Parameter types AWS documents declare.
const PARAMETER_TYPES: &[&str] = &["String", "StringList", "Integer", "Boolean", "MapList", "StringMap"];

/// The format a document's content is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// Free text (only for document types whose content is not a document schema).
    Text,
}

impl Format {
    /// From `DocumentFormat` (`JSON`, `YAML`, `TEXT`).
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "JSON" => Some(Format::Json),
            "YAML" => Some(Format::Yaml),
            "TEXT" => Some(Format::Text),
            _ => None,
        }
    }

    /// The `DocumentFormat` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
            Format::Text => "TEXT",
        }
    }
}

/// Why content was refused; each maps to the AWS error of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentError {
    /// `InvalidDocumentContent`: the reason follows AWS's fixed first sentence.
    Invalid(String),
    /// `InvalidDocumentSchemaVersion`.
    SchemaVersion(String),
    /// `MaxDocumentSizeExceeded`.
    TooLarge,
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentError::Invalid(reason) => write!(f, "The content for the document is not valid. {reason}"),
            ContentError::SchemaVersion(m) => f.write_str(m),
            ContentError::TooLarge => {
                write!(f, "The content of the document exceeds the maximum size of {MAX_CONTENT_BYTES} bytes.")
            }
        }
    }
}

fn invalid(reason: impl Into<String>) -> ContentError {
    ContentError::Invalid(reason.into())
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Its name.
    pub name: String,
    /// `String`, `StringList`, `Integer`, `Boolean`, `MapList` or `StringMap`.
    pub r#type: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// Its default (a parameter without one is required).
    pub default: Option<Value>,
    /// The values it may take, if restricted.
    pub allowed_values: Option<Vec<String>>,
    /// A regular expression every value must match entirely, if restricted.
    pub allowed_pattern: Option<String>,
}

impl Parameter {
    /// The default as `DescribeDocument` shows it (`DefaultValue`): strings as they are,
    /// anything else as JSON.
    pub fn default_text(&self) -> Option<String> {
        self.default.as_ref().map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// Parsed and validated document content.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentContent {
    /// The content as a JSON value (what the agent receives as `DocumentContent`).
    pub body: Value,
    /// `schemaVersion`.
    pub schema_version: String,
    /// The top-level `description`, if any.
    pub description: Option<String>,
    /// Declared parameters, in the order the content declares them.
    pub parameters: Vec<Parameter>,
    /// The plugins (1.x) or actions (2.x) it runs, in order.
    pub actions: Vec<String>,
}

impl DocumentContent {
    /// The platforms the document runs on, derived from its actions (AWS's rule:
    /// `aws:runShellScript` ⇒ Linux and macOS; `aws:runPowerShellScript` ⇒ Windows and Linux).
    /// Documents that are not Command documents run everywhere.
    pub fn platform_types(&self, document_type: &str) -> Vec<String> {
        if document_type != "Command" {
            return vec!["Windows".into(), "Linux".into(), "MacOS".into()];
        }
        let mut set = BTreeSet::new();
        for action in &self.actions {
            match action.as_str() {
                RUN_SHELL_SCRIPT => {
                    set.insert("Linux");
                    set.insert("MacOS");
                }
                RUN_POWERSHELL_SCRIPT => {
                    set.insert("Windows");
                    set.insert("Linux");
                }
                _ => {}
            }
        }
        // AWS lists them Windows, Linux, MacOS.
        ["Windows", "Linux", "MacOS"].iter().filter(|p| set.contains(*p)).map(|p| p.to_string()).collect()
    }

    /// The parameter named `name`.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

// === parsing ===

/// The `parameters` map in declaration order (serde_json's map sorts its keys).
struct OrderedMap(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of parameters")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[derive(serde::Deserialize)]
struct ParameterOrder {
    #[serde(default)]
    parameters: Option<OrderedMap>,
}

/// The content as a JSON value, read in `format`.
pub fn to_value(content: &str, format: Format) -> Result<Value, ContentError> {
    let value: Value = match format {
        Format::Json => serde_json::from_str(content).map_err(|e| invalid(format!("JSON is malformed: {e}")))?,
        Format::Yaml => serde_norway::from_str(content).map_err(|e| invalid(format!("YAML is malformed: {e}")))?,
        Format::Text => return Err(invalid("TEXT content has no document schema.")),
    };
    if !value.is_object() {
        return Err(invalid("The document must be an object."));
    }
    Ok(value)
}

/// Declared parameter names in the order the content declares them.
fn parameter_order(content: &str, format: Format) -> Vec<String> {
    let parsed: Option<ParameterOrder> = match format {
        Format::Json => serde_json::from_str(content).ok(),
        Format::Yaml => serde_norway::from_str(content).ok(),
        Format::Text => None,
    };
    parsed.and_then(|p| p.parameters).map(|m| m.0.into_iter().map(|(k, _)| k).collect()).unwrap_or_default()
}

/// Converts content between JSON and YAML (GetDocument with another `DocumentFormat`).
pub fn convert(content: &str, from: Format, to: Format) -> Result<String, ContentError> {
    if from == to {
        return Ok(content.to_string());
    }
    let value = to_value(content, from)?;
    match to {
        Format::Json => serde_json::to_string_pretty(&value).map_err(|e| invalid(e.to_string())),
        Format::Yaml => serde_norway::to_string(&value).map_err(|e| invalid(e.to_string())),
        Format::Text => Err(invalid("Content cannot be converted to TEXT.")),
    }
}

/// Parses and validates content of a document of `document_type` written in `format`.
pub fn parse(content: &str, format: Format, document_type: &str) -> Result<DocumentContent, ContentError> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(ContentError::TooLarge);
    }
    let body = to_value(content, format)?;
    let schema_version = match body.get("schemaVersion") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        // YAML writers often leave `schemaVersion: 2.2` unquoted.
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(invalid("schemaVersion must be a string.")),
        None => return Err(invalid("schemaVersion is required.")),
    };
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("description must be a string.")),
    };
    let parameters = parse_parameters(&body, &parameter_order(content, format))?;
    let mut doc = DocumentContent { body, schema_version, description, parameters, actions: Vec::new() };
    if document_type == "Command" {
        doc.actions = validate_command(&doc)?;
        check_references(&doc)?;
    }
    Ok(doc)
}

fn parse_parameters(body: &Value, order: &[String]) -> Result<Vec<Parameter>, ContentError> {
    let map = match body.get("parameters") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("parameters must be an object.")),
    };
    let mut names: Vec<&String> = order.iter().filter(|n| map.contains_key(*n)).collect();
    for key in map.keys() {
        if !names.contains(&key) {
            names.push(key);
        }
    }
    let name_re = re(&NAME_RE, r"^[A-Za-z0-9_]+$");
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if !name_re.is_match(name) {
            return Err(invalid(format!("Parameter name {name} must contain only letters, digits and underscores.")));
        }
        let Some(Value::Object(decl)) = map.get(name) else {
            return Err(invalid(format!("Parameter {name} must be an object.")));
        };
        let r#type = match decl.get("type") {
            Some(Value::String(t)) if PARAMETER_TYPES.contains(&t.as_str()) => t.clone(),
            Some(Value::String(t)) => {
                return Err(invalid(format!(
                    "Parameter {name} has type {t}; the type must be one of {}.",
                    PARAMETER_TYPES.join(", ")
                )))
            }
            _ => return Err(invalid(format!("Parameter {name} must declare a type."))),
        };
        let description = match decl.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid(format!("The description of parameter {name} must be a string."))),
        };
        let allowed_values = match decl.get("allowedValues") {
            None | Some(Value::Null) => None,
            Some(Value::Array(values)) => Some(
                values
                    .iter()
                    .map(scalar_text)
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| invalid(format!("The allowedValues of parameter {name} must be strings.")))?,
            ),
            Some(_) => return Err(invalid(format!("The allowedValues of parameter {name} must be a list."))),
        };
        let allowed_pattern = match decl.get("allowedPattern") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => {
                if allowed_pattern_regex(p).is_err() {
                    return Err(invalid(format!(
                        "The allowedPattern of parameter {name} is not a valid regular expression, or is too \
                         complex (its compiled form may take at most {} KiB).",
                        PATTERN_SIZE_LIMIT / 1024
                    )));
                }
                Some(p.clone())
            }
            Some(_) => return Err(invalid(format!("The allowedPattern of parameter {name} must be a string."))),
        };
        let default = decl.get("default").filter(|v| !v.is_null()).cloned();
        if let Some(d) = &default {
            if !default_fits(&r#type, d) {
                return Err(invalid(format!("The default of parameter {name} is not a valid {}.", r#type)));
            }
        }
        out.push(Parameter { name: name.clone(), r#type, description, default, allowed_values, allowed_pattern });
    }
    Ok(out)
}

/// A scalar as text (allowed values may be written as numbers or booleans in YAML).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn default_fits(r#type: &str, d: &Value) -> bool {
    match r#type {
        "String" => d.is_string(),
        "StringList" => d.is_string() || d.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        "Integer" => d.is_i64() || d.as_str().is_some_and(|s| s.trim().parse::<i64>().is_ok()),
        "Boolean" => d.is_boolean() || matches!(d.as_str(), Some("true" | "false")),
        "StringMap" => d.is_object(),
        "MapList" => d.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
        _ => false,
    }
}

/// Checks a Command document's body; returns its plugins (1.2) or actions (2.x) in order.
fn validate_command(doc: &DocumentContent) -> Result<Vec<String>, ContentError> {
    match doc.schema_version.as_str() {
        "1.2" => validate_runtime_config(&doc.body),
        "2.0" | "2.2" => validate_main_steps(&doc.body),
        other => Err(ContentError::SchemaVersion(format!(
            "Document schema version, {other}, is not supported for Command documents; use 1.2 or 2.2."
        ))),
    }
}

fn supported_action(action: &str) -> bool {
    action == RUN_SHELL_SCRIPT || action == RUN_POWERSHELL_SCRIPT
}

fn check_run_command(owner: &str, inputs: &Map<String, Value>) -> Result<(), ContentError> {
    match inputs.get("runCommand") {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(lines)) if lines.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(invalid(format!("runCommand of {owner} must be a string or a list of strings."))),
        None => Err(invalid(format!("{owner} has no runCommand."))),
    }
}

fn validate_runtime_config(body: &Value) -> Result<Vec<String>, ContentError> {
    if body.get("mainSteps").is_some() {
        return Err(invalid("Schema 1.2 documents use runtimeConfig, not mainSteps."));
    }
    let Some(Value::Object(config)) = body.get("runtimeConfig") else {
        return Err(invalid("runtimeConfig is required and must be an object."));
    };
    if config.is_empty() {
        return Err(invalid("runtimeConfig must declare at least one plugin."));
    }
    let mut plugins = Vec::new();
    for (plugin, settings) in config {
        if !supported_action(plugin) {
            return Err(invalid(format!(
                "Plugin {plugin} is not supported; use {RUN_SHELL_SCRIPT} or {RUN_POWERSHELL_SCRIPT}."
            )));
        }
        let properties = settings.get("properties").ok_or_else(|| invalid(format!("{plugin} has no properties.")))?;
        let items: Vec<&Value> = match properties {
            Value::Array(items) if !items.is_empty() => items.iter().collect(),
            Value::Object(_) => vec![properties],
            _ => return Err(invalid(format!("The properties of {plugin} must be an object or a non-empty list."))),
        };
        for item in items {
            let Value::Object(inputs) = item else {
                return Err(invalid(format!("Each property of {plugin} must be an object.")));
            };
            check_run_command(plugin, inputs)?;
        }
        plugins.push(plugin.clone());
    }
    Ok(plugins)
}

fn validate_main_steps(body: &Value) -> Result<Vec<String>, ContentError> {
    if body.get("runtimeConfig").is_some() {
        return Err(invalid("Schema 2.x documents use mainSteps, not runtimeConfig."));
    }
    let steps = match body.get("mainSteps") {
        Some(Value::Array(steps)) if !steps.is_empty() => steps,
        _ => return Err(invalid("mainSteps is required and must be a non-empty list.")),
    };
    let mut names = BTreeSet::new();
    let mut actions = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let Value::Object(step) = step else {
            return Err(invalid(format!("Step {} must be an object.", i + 1)));
        };
        let name = match step.get("name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => return Err(invalid(format!("Step {} has no name.", i + 1))),
        };
        if !names.insert(name.clone()) {
            return Err(invalid(format!("Step name {name} is used more than once; step names must be unique.")));
        }
        let action = match step.get("action") {
            Some(Value::String(a)) => a.clone(),
            _ => return Err(invalid(format!("Step {name} has no action."))),
        };
        if !supported_action(&action) {
            return Err(invalid(format!(
                "Action {action} of step {name} is not supported; use {RUN_SHELL_SCRIPT} or {RUN_POWERSHELL_SCRIPT}."
            )));
        }
        let Some(Value::Object(inputs)) = step.get("inputs") else {
            return Err(invalid(format!("Step {name} has no inputs.")));
        };
        check_run_command(&format!("step {name}"), inputs)?;
        actions.push(action);
    }
    Ok(actions)
}

// === parameter references ===

static NAME_RE: OnceLock<Regex> = OnceLock::new();
static REF_RE: OnceLock<Regex> = OnceLock::new();

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a valid built-in regular expression"))
}

/// `{{ name }}` references (whitespace inside the braces is optional).
fn reference_re() -> &'static Regex {
    re(&REF_RE, r"\{\{\s*([^{}\s]+)\s*\}\}")
}

/// References that are not document parameters: SSM Parameter Store values (`ssm:`,
/// `ssm-secure:`), resolved by SSM when the command is sent.
fn is_external(name: &str) -> bool {
    name.starts_with("ssm:") || name.starts_with("ssm-secure:")
}

/// Every string in the body outside `parameters`.
fn for_each_string<'a>(value: &'a Value, top: bool, f: &mut impl FnMut(&'a str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| for_each_string(v, false, f)),
        Value::Object(map) => {
            for (k, v) in map {
                if !(top && k == "parameters") {
                    for_each_string(v, false, f);
                }
            }
        }
        _ => {}
    }
}

fn check_references(doc: &DocumentContent) -> Result<(), ContentError> {
    let mut undeclared = BTreeSet::new();
    for_each_string(&doc.body, true, &mut |s| {
        for cap in reference_re().captures_iter(s) {
            let name = &cap[1];
            if !is_external(name) && doc.parameter(name).is_none() {
                undeclared.insert(name.to_string());
            }
        }
    });
    match undeclared.into_iter().next() {
        None => Ok(()),
        Some(name) => Err(invalid(format!("Parameter \"{name}\" is referenced but not declared in parameters."))),
    }
}

// === Run Command: parameter values ===

/// The caller's parameters do not fit the document (AWS `InvalidParameters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParameters(pub String);

impl fmt::Display for InvalidParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// The most values one parameter of `SendCommand` may carry. The request's size limit bounds
/// them too; this keeps the per-value work of a single call small and predictable.
pub const MAX_VALUES_PER_PARAMETER: usize = 1000;

/// The most memory the compiled form of one `allowedPattern` may take. A document author
/// could otherwise make every call that uses the document compile (and keep) a huge program:
/// counted repetitions of Unicode classes grow fast (`\w{1,200}` is several megabytes).
pub const PATTERN_SIZE_LIMIT: usize = 1024 * 1024;

/// Compiled `allowedPattern`s, keyed by their text. Content-addressed, so never stale; bounded
/// by clearing when full.
static PATTERN_CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Regex>>>> =
    OnceLock::new();
const PATTERN_CACHE_LIMIT: usize = 256;

/// An `allowedPattern` compiled as AWS applies it (the whole value must match), within
/// [`PATTERN_SIZE_LIMIT`], from the cache when it was compiled before.
pub fn allowed_pattern_regex(pattern: &str) -> Result<std::sync::Arc<Regex>, regex::Error> {
    let cache = PATTERN_CACHE.get_or_init(Default::default);
    if let Some(re) = cache.lock().ok().and_then(|c| c.get(pattern).cloned()) {
        return Ok(re);
    }
    let re = std::sync::Arc::new(
        regex::RegexBuilder::new(&anchored(pattern))
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()?,
    );
    if let Ok(mut c) = cache.lock() {
        if c.len() >= PATTERN_CACHE_LIMIT {
            c.clear();
        }
        c.insert(pattern.to_string(), re.clone());
    }
    Ok(re)
}

/// A default as a value of its declared type.
fn typed_default(p: &Parameter, d: &Value) -> Value {
    match (p.r#type.as_str(), d) {
        ("StringList", Value::String(s)) => Value::Array(vec![Value::String(s.clone())]),
        ("Integer", Value::String(s)) => s.trim().parse::<i64>().map(Value::from).unwrap_or_else(|_| d.clone()),
        ("Boolean", Value::String(s)) => Value::Bool(s == "true"),
        _ => d.clone(),
    }
}

/// One parameter's given values as a value of its type.
fn typed_value(p: &Parameter, given: &[String]) -> Result<Value, InvalidParameters> {
    let single = || -> Result<&String, InvalidParameters> {
        match given {
            [one] => Ok(one),
            _ => Err(InvalidParameters(format!("Parameter \"{}\" takes exactly one value.", p.name))),
        }
    };
    let bad = |what: &str| InvalidParameters(format!("Parameter \"{}\" must be {what}.", p.name));
    Ok(match p.r#type.as_str() {
        "String" => Value::String(single()?.clone()),
        "StringList" => Value::Array(given.iter().cloned().map(Value::String).collect()),
        "Integer" => Value::from(single()?.trim().parse::<i64>().map_err(|_| bad("an integer"))?),
        "Boolean" => match single()?.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        "StringMap" => match serde_json::from_str::<Value>(single()?) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(bad("a JSON object")),
        },
        "MapList" => {
            let mut items = Vec::with_capacity(given.len());
            for g in given {
                match serde_json::from_str::<Value>(g) {
                    Ok(v @ Value::Object(_)) => items.push(v),
                    Ok(Value::Array(list)) if list.iter().all(Value::is_object) => items.extend(list),
                    _ => return Err(bad("a list of JSON objects")),
                }
            }
            Value::Array(items)
        }
        _ => return Err(bad("of a known type")),
    })
}

/// Checks the caller's values (`SendCommand`'s `Parameters`) against the document's
/// declarations and returns every declared parameter's value: the given one, or its default.
///
/// Refused with AWS's `InvalidParameters`: a parameter the document does not declare, a
/// required one (no default) missing, a value outside `allowedValues` or not matching
/// `allowedPattern`, or a value that is not of the declared type.
pub fn resolve_parameters(
    doc: &DocumentContent,
    given: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Value>, InvalidParameters> {
    let unknown: Vec<&str> = given.keys().filter(|k| doc.parameter(k).is_none()).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(InvalidParameters(format!(
            "Parameters [{}] are not declared in the document.",
            unknown.join(", ")
        )));
    }
    let mut out = BTreeMap::new();
    for p in &doc.parameters {
        let value = match given.get(&p.name) {
            Some(values) => {
                if values.len() > MAX_VALUES_PER_PARAMETER {
                    return Err(InvalidParameters(format!(
                        "Parameter \"{}\" has {} values; at most {MAX_VALUES_PER_PARAMETER} are allowed.",
                        p.name,
                        values.len()
                    )));
                }
                // Compiled once per parameter (and cached across requests), never per value.
                let pattern = match &p.allowed_pattern {
                    Some(pattern) => Some((
                        pattern,
                        allowed_pattern_regex(pattern).map_err(|_| {
                            InvalidParameters(format!("The allowedPattern of parameter {} is not valid.", p.name))
                        })?,
                    )),
                    None => None,
                };
                for v in values {
                    if let Some(allowed) = &p.allowed_values {
                        if !allowed.contains(v) {
                            return Err(InvalidParameters(format!(
                                "Parameter \"{}\" value \"{v}\" is not one of the allowed values [{}].",
                                p.name,
                                allowed.join(", ")
                            )));
                        }
                    }
                    if let Some((pattern, re)) = &pattern {
                        if !re.is_match(v) {
                            return Err(InvalidParameters(format!(
                                "Parameter \"{}\" value \"{v}\" does not match the allowed pattern {pattern}.",
                                p.name
                            )));
                        }
                    }
                }
                typed_value(p, values)?
            }
            None => match &p.default {
                Some(d) => typed_default(p, d),
                None => {
                    return Err(InvalidParameters(format!("Parameter \"{}\" is required but was not given.", p.name)))
                }
            },
        };
        out.insert(p.name.clone(), value);
    }
    Ok(out)
}

/// The body with `{{ name }}` replaced by the parameters' values. A string that is exactly
/// one reference takes the value itself (a StringList becomes a JSON array, as the agent
/// expects for `runCommand`); a reference inside a longer string is replaced by the value's
/// text (lists and maps as JSON). References to undeclared names (`{{ssm:...}}`) stay.
/// The `parameters` section is left as it is.
pub fn render(doc: &DocumentContent, params: &BTreeMap<String, Value>) -> Value {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    fn walk(v: &Value, top: bool, params: &BTreeMap<String, Value>) -> Value {
        match v {
            Value::String(s) => {
                let re = reference_re();
                if let Some(cap) = re.captures(s.trim()) {
                    if cap.get(0).is_some_and(|m| m.as_str() == s.trim()) {
                        if let Some(value) = params.get(&cap[1]) {
                            return value.clone();
                        }
                    }
                }
                let replaced = re.replace_all(s, |cap: &regex::Captures<'_>| match params.get(&cap[1]) {
                    Some(value) => text(value),
                    None => cap[0].to_string(),
                });
                Value::String(replaced.into_owned())
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| walk(i, false, params)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if top && k == "parameters" { v.clone() } else { walk(v, false, params) };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    walk(&doc.body, true, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const YAML_22: &str = r#"
schemaVersion: "2.2"
description: Restart a service
parameters:
  svc:
    type: String
    default: nginx
    description: Service name
    allowedValues: [nginx, sshd]
  delay:
    type: Integer
    default: 5
mainSteps:
  - action: aws:runShellScript
    name: restart
    inputs:
      runCommand:
        - "sleep {{ delay }}"
        - "systemctl restart {{svc}}"
        - "echo {{ssm:/corral/greeting}}"
"#;

    /// Written out (not with `json!`, whose map would sort the keys).
    fn shell_12() -> String {
        r#"{
  "schemaVersion": "1.2",
  "description": "Run a shell script.",
  "parameters": {
    "commands": {"type": "StringList", "description": "Commands"},
    "workingDirectory": {"type": "String", "default": ""},
    "executionTimeout": {"type": "String", "default": "3600",
      "allowedPattern": "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)"}
  },
  "runtimeConfig": {"aws:runShellScript": {"properties": [{
    "id": "0.aws:runShellScript",
    "runCommand": "{{ commands }}",
    "workingDirectory": "{{ workingDirectory }}",
    "timeoutSeconds": "{{ executionTimeout }}"
  }]}}
}"#
        .to_string()
    }

    fn check_invalid(content: &str, format: Format, reason_part: &str) {
        match parse(content, format, "Command") {
            Err(ContentError::Invalid(reason)) => {
                assert!(reason.contains(reason_part), "reason {reason:?} lacks {reason_part:?}")
            }
            other => panic!("expected InvalidDocumentContent for {content}, got {other:?}"),
        }
    }

    #[test]
    fn parses_yaml_schema_22() {
        let doc = parse(YAML_22, Format::Yaml, "Command").expect("valid");
        assert_eq!(doc.schema_version, "2.2");
        assert_eq!(doc.description.as_deref(), Some("Restart a service"));
        let names: Vec<&str> = doc.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["svc", "delay"], "declaration order is kept");
        assert_eq!(doc.parameters[1].default_text().as_deref(), Some("5"));
        assert_eq!(doc.actions, [RUN_SHELL_SCRIPT]);
        assert_eq!(doc.platform_types("Command"), ["Linux", "MacOS"]);
    }

    #[test]
    fn parses_json_schema_12_in_order() {
        let doc = parse(&shell_12(), Format::Json, "Command").expect("valid");
        let names: Vec<&str> = doc.parameters.iter().map(|p| p.name.as_str()).collect();
        // serde_json's own map would sort these; the declaration order is what AWS shows.
        assert_eq!(names, ["commands", "workingDirectory", "executionTimeout"]);
        assert_eq!(doc.actions, [RUN_SHELL_SCRIPT]);
        let ps = shell_12().replace(RUN_SHELL_SCRIPT, RUN_POWERSHELL_SCRIPT);
        assert_eq!(parse(&ps, Format::Json, "Command").unwrap().platform_types("Command"), ["Windows", "Linux"]);
    }

    #[test]
    fn refuses_invalid_content() {
        check_invalid("{not json", Format::Json, "JSON is malformed");
        check_invalid("a: [b", Format::Yaml, "YAML is malformed");
        check_invalid("[1, 2]", Format::Json, "must be an object");
        check_invalid(r#"{"mainSteps": []}"#, Format::Json, "schemaVersion is required");
        check_invalid(r#"{"schemaVersion": "2.2", "mainSteps": []}"#, Format::Json, "non-empty list");
        let two_steps = r#"{"schemaVersion": "2.2", "mainSteps": [
            {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["x"]}},
            {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["y"]}}]}"#;
        check_invalid(two_steps, Format::Json, "more than once");
        let bad_action = r#"{"schemaVersion": "2.2", "mainSteps": [
            {"action": "aws:runDocument", "name": "a", "inputs": {"runCommand": ["x"]}}]}"#;
        check_invalid(bad_action, Format::Json, "not supported");
        let no_run =
            r#"{"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {}}]}"#;
        check_invalid(no_run, Format::Json, "no runCommand");
        let undeclared = r#"{"schemaVersion": "2.2", "mainSteps": [
            {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo {{ who }}"]}}]}"#;
        check_invalid(undeclared, Format::Json, "\"who\" is referenced");
        let bad_type = r#"{"schemaVersion": "2.2", "parameters": {"p": {"type": "Float"}}, "mainSteps": [
            {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo {{ p }}"]}}]}"#;
        check_invalid(bad_type, Format::Json, "type must be one of");
        let bad_default = r#"{"schemaVersion": "2.2", "parameters": {"p": {"type": "Integer", "default": "x"}},
            "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["{{ p }}"]}}]}"#;
        check_invalid(bad_default, Format::Json, "not a valid Integer");
        let mixed = r#"{"schemaVersion": "1.2", "mainSteps": [], "runtimeConfig": {}}"#;
        check_invalid(mixed, Format::Json, "not mainSteps");
        let no_plugin = r#"{"schemaVersion": "1.2", "runtimeConfig": {}}"#;
        check_invalid(no_plugin, Format::Json, "at least one plugin");
        let big = format!(r#"{{"schemaVersion": "2.2", "description": "{}"}}"#, "x".repeat(MAX_CONTENT_BYTES));
        assert_eq!(parse(&big, Format::Json, "Command"), Err(ContentError::TooLarge));
        let v3 = r#"{"schemaVersion": "3.0", "mainSteps": []}"#;
        assert!(matches!(parse(v3, Format::Json, "Command"), Err(ContentError::SchemaVersion(_))));
        // Other document types only need a schemaVersion.
        assert!(parse(r#"{"schemaVersion": "1.0", "sessionType": "Standard_Stream"}"#, Format::Json, "Session").is_ok());
    }

    #[test]
    fn converts_between_formats() {
        let yaml = convert(&shell_12(), Format::Json, Format::Yaml).unwrap();
        assert_eq!(to_value(&yaml, Format::Yaml).unwrap(), to_value(&shell_12(), Format::Json).unwrap());
        let json = convert(YAML_22, Format::Yaml, Format::Json).unwrap();
        assert_eq!(to_value(&json, Format::Json).unwrap(), to_value(YAML_22, Format::Yaml).unwrap());
        assert_eq!(convert(YAML_22, Format::Yaml, Format::Yaml).unwrap(), YAML_22);
    }

    fn given(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn check_refused(doc: &DocumentContent, g: &[(&str, &[&str])], part: &str) {
        match resolve_parameters(doc, &given(g)) {
            Err(InvalidParameters(m)) => assert!(m.contains(part), "{m:?} lacks {part:?}"),
            Ok(v) => panic!("expected InvalidParameters, got {v:?}"),
        }
    }

    #[test]
    fn resolves_parameters() {
        let doc = parse(&shell_12(), Format::Json, "Command").unwrap();
        let got = resolve_parameters(&doc, &given(&[("commands", &["uptime", "df -h"])])).unwrap();
        assert_eq!(got["commands"], json!(["uptime", "df -h"]));
        assert_eq!(got["workingDirectory"], json!(""));
        assert_eq!(got["executionTimeout"], json!("3600"));
        let got = resolve_parameters(&doc, &given(&[("commands", &["x"]), ("executionTimeout", &["172800"])])).unwrap();
        assert_eq!(got["executionTimeout"], json!("172800"));

        check_refused(&doc, &[], "\"commands\" is required");
        check_refused(&doc, &[("commands", &["x"]), ("bogus", &["1"])], "[bogus] are not declared");
        check_refused(&doc, &[("commands", &["x"]), ("executionTimeout", &["172801"])], "allowed pattern");
        check_refused(&doc, &[("commands", &["x"]), ("executionTimeout", &["0"])], "allowed pattern");
        check_refused(&doc, &[("commands", &["x"]), ("workingDirectory", &["a", "b"])], "exactly one value");

        let doc = parse(YAML_22, Format::Yaml, "Command").unwrap();
        let got = resolve_parameters(&doc, &given(&[])).unwrap();
        assert_eq!((got["svc"].clone(), got["delay"].clone()), (json!("nginx"), json!(5)));
        let got = resolve_parameters(&doc, &given(&[("svc", &["sshd"]), ("delay", &["10"])])).unwrap();
        assert_eq!((got["svc"].clone(), got["delay"].clone()), (json!("sshd"), json!(10)));
        check_refused(&doc, &[("svc", &["httpd"])], "not one of the allowed values");
        check_refused(&doc, &[("delay", &["soon"])], "must be an integer");
    }

    #[test]
    fn typed_parameters() {
        let content = r#"{"schemaVersion": "2.2", "parameters": {
            "flag": {"type": "Boolean", "default": false},
            "env": {"type": "StringMap", "default": {}},
            "items": {"type": "MapList", "default": []}},
          "mainSteps": [{"action": "aws:runShellScript", "name": "a",
            "inputs": {"runCommand": ["echo {{ flag }} {{ env }} {{ items }}"]}}]}"#;
        let doc = parse(content, Format::Json, "Command").unwrap();
        let got = resolve_parameters(
            &doc,
            &given(&[("flag", &["true"]), ("env", &[r#"{"A":"1"}"#]), ("items", &[r#"{"k":"v"}"#])]),
        )
        .unwrap();
        assert_eq!(got["flag"], json!(true));
        assert_eq!(got["env"], json!({"A": "1"}));
        assert_eq!(got["items"], json!([{"k": "v"}]));
        check_refused(&doc, &[("flag", &["yes"])], "true or false");
        check_refused(&doc, &[("env", &["[1]"])], "JSON object");
        let body = render(&doc, &got);
        assert_eq!(body["mainSteps"][0]["inputs"]["runCommand"][0], json!(r#"echo true {"A":"1"} [{"k":"v"}]"#));
    }

    #[test]
    fn renders_parameters() {
        let doc = parse(&shell_12(), Format::Json, "Command").unwrap();
        let params = resolve_parameters(&doc, &given(&[("commands", &["uptime", "id"])])).unwrap();
        let body = render(&doc, &params);
        let props = &body["runtimeConfig"][RUN_SHELL_SCRIPT]["properties"][0];
        assert_eq!(props["runCommand"], json!(["uptime", "id"]), "a whole-string StringList becomes a list");
        assert_eq!(props["workingDirectory"], json!(""));
        assert_eq!(props["timeoutSeconds"], json!("3600"));
        assert_eq!(props["id"], json!("0.aws:runShellScript"));
        assert_eq!(body["parameters"], doc.body["parameters"], "declarations are left alone");

        let doc = parse(YAML_22, Format::Yaml, "Command").unwrap();
        let params = resolve_parameters(&doc, &given(&[("svc", &["sshd"])])).unwrap();
        let body = render(&doc, &params);
        assert_eq!(
            body["mainSteps"][0]["inputs"]["runCommand"],
            json!(["sleep 5", "systemctl restart sshd", "echo {{ssm:/corral/greeting}}"])
        );
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    #[test]
    fn patterns_whose_compiled_form_is_huge_are_refused() {
        assert!(allowed_pattern_regex(r"\w{1,200}").is_err(), "several MiB compiled");
        assert!(allowed_pattern_regex(r"[a-z0-9-]{1,200}").is_ok());
        let doc = |pattern: &str| {
            format!(
                r#"{{"schemaVersion":"2.2","description":"d","parameters":{{"p":{{"type":"StringList","allowedPattern":"{pattern}"}}}},
                "mainSteps":[{{"action":"aws:runShellScript","name":"s","inputs":{{"runCommand":"{{{{p}}}}"}}}}]}}"#
            )
        };
        let err = parse(&doc(r"\\w{1,200}"), Format::Json, "Command").expect_err("refused");
        assert!(err.to_string().contains("too complex"), "{err}");
        let ok = parse(&doc("[a-z]{1,20}"), Format::Json, "Command").expect("accepted");
        let values = |n: usize| BTreeMap::from([("p".to_string(), vec!["abc".to_string(); n])]);
        resolve_parameters(&ok, &values(MAX_VALUES_PER_PARAMETER)).expect("at the cap");
        let err = resolve_parameters(&ok, &values(MAX_VALUES_PER_PARAMETER + 1)).expect_err("over the cap");
        assert!(err.0.contains("at most 1000"), "{}", err.0);
    }
}
