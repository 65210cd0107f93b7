//! Run Command documents as the agent runs them: parameter substitution and the steps of a
//! schema 1.x (`runtimeConfig`) or 2.x (`mainSteps`) document (agent-protocol.md §3.1).
//!
//! Only the script plugins are supported (`aws:runShellScript`, `aws:runPowerShellScript`); a
//! document naming any other plugin fails as a whole, before anything runs, as the SSM agent
//! fails a document it cannot parse.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

/// `timeoutSeconds` when a document gives none (the SSM agent's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The longest `timeoutSeconds` honoured (48 hours, the SSM documents' own maximum).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(172_800);

/// Schema versions the SSM agent accepts for command documents.
const SUPPORTED_SCHEMAS: &[&str] = &["1.0", "1.2", "2.0", "2.0.1", "2.0.2", "2.0.3", "2.2"];

/// A plugin the agent can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// `aws:runShellScript`: `sh <script>`.
    Shell,
    /// `aws:runPowerShellScript`: PowerShell (`pwsh` or Windows PowerShell) with `-File <script>`.
    PowerShell,
}

impl PluginKind {
    /// The plugin's name in documents and replies.
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Shell => "aws:runShellScript",
            PluginKind::PowerShell => "aws:runPowerShellScript",
        }
    }

    fn from_name(name: &str) -> Option<PluginKind> {
        match name {
            "aws:runShellScript" => Some(PluginKind::Shell),
            "aws:runPowerShellScript" => Some(PluginKind::PowerShell),
            _ => None,
        }
    }
}

/// One script of a step: the lines of `runCommand` with where and how long to run them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The script's lines.
    pub lines: Vec<String>,
    /// `workingDirectory`; `None` (or empty in the document) for the job's own directory.
    pub working_directory: Option<String>,
    /// `timeoutSeconds`.
    pub timeout: Duration,
}

/// One step (2.x) or plugin (1.x) of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The plugin id in replies: the plugin name (1.x) or the step name (2.x).
    pub id: String,
    /// The step name (2.x); empty for 1.x.
    pub step_name: String,
    /// What runs it.
    pub kind: PluginKind,
    /// The scripts, run in order (1.x `properties` may list several; 2.x has one).
    pub scripts: Vec<Script>,
    /// Why the step is skipped (an unmet `precondition`), if it is.
    pub skip: Option<String>,
    /// `onFailure: exit` (or `successAndExit`): later steps do not run after this one fails.
    pub exit_on_failure: bool,
}

/// A parsed document: its steps in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The steps.
    pub steps: Vec<Step>,
}

/// Parses `content` (the payload's `DocumentContent`) with `given` parameter values for a
/// machine of `platform_type` (`Linux`, `Windows`, `MacOS`). The error is the text for the
/// reply's `documentTraceOutput`.
pub fn parse(content: &Value, given: &Map<String, Value>, platform_type: &str) -> Result<Document, String> {
    // Some control planes send the document as a JSON string rather than an object.
    let parsed_from_text;
    let content = match content {
        Value::String(text) => {
            parsed_from_text = serde_json::from_str::<Value>(text)
                .map_err(|e| format!("the document content is not valid JSON: {e}"))?;
            &parsed_from_text
        }
        other => other,
    };
    let Value::Object(doc) = content else {
        return Err("the document content is not a JSON object".into());
    };
    let schema = match doc.get("schemaVersion") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("schemaVersion is not a string".into()),
        None => return Err("the document has no schemaVersion".into()),
    };
    if !SUPPORTED_SCHEMAS.contains(&schema) {
        return Err(format!("document schema version {schema} is not supported"));
    }
    let params = parameter_values(doc.get("parameters"), given)?;
    let steps = if schema.starts_with("1.") {
        let runtime = doc.get("runtimeConfig").ok_or("a schema 1.x document needs runtimeConfig")?;
        runtime_config_steps(&substitute(runtime, &params))?
    } else {
        let main = doc.get("mainSteps").ok_or("a schema 2.x document needs mainSteps")?;
        main_steps(&substitute(main, &params), platform_type)?
    };
    if steps.is_empty() {
        return Err("the document has no steps to run".into());
    }
    Ok(Document { steps })
}

// === parameters ===

/// A parameter's value, and whether it is a list (StringList, MapList, or several values).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamValue {
    value: Value,
}

/// Every parameter's value: the given one, else the document's default. The control plane
/// sends values as lists of strings (`{"commands":["ls"],"executionTimeout":["3600"]}`) or
/// already typed; a one-element list for a non-list parameter is its single value.
pub fn parameter_values(
    declared: Option<&Value>,
    given: &Map<String, Value>,
) -> Result<BTreeMap<String, ParamValue>, String> {
    let declared = match declared {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err("the document's parameters are not an object".into()),
    };
    let type_of = |name: &str| -> Option<&str> {
        declared.and_then(|d| d.get(name)).and_then(|p| p.get("type")).and_then(Value::as_str)
    };
    let mut out = BTreeMap::new();
    if let Some(declared) = declared {
        for (name, definition) in declared {
            if let Some(default) = definition.get("default") {
                out.insert(name.clone(), ParamValue { value: typed(type_of(name), default.clone()) });
            }
        }
    }
    for (name, value) in given {
        out.insert(name.clone(), ParamValue { value: typed(type_of(name), value.clone()) });
    }
    Ok(out)
}

/// A value shaped by its declared type: lists stay lists for the list types, a single
/// value stands for itself otherwise.
fn typed(declared_type: Option<&str>, value: Value) -> Value {
    let list_type = matches!(declared_type, Some("StringList" | "MapList"));
    match value {
        Value::Array(items) if !list_type && items.len() == 1 => items.into_iter().next().unwrap_or(Value::Null),
        Value::String(s) if list_type && declared_type == Some("StringList") => Value::Array(vec![Value::String(s)]),
        other => other,
    }
}

/// `value` with every `{{ name }}` of a known parameter replaced. A string that is exactly
/// one reference becomes the value itself (a list stays a list); inside a longer string a list
/// is joined with newlines. A list element that becomes a list is spliced into its parent, so
/// `["{{ commands }}"]` is the commands. Unknown references (`{{ssm:...}}`) stay as they are.
pub fn substitute(value: &Value, params: &BTreeMap<String, ParamValue>) -> Value {
    match value {
        Value::String(s) => substitute_str(s, params),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let was_reference = matches!(item, Value::String(s) if sole_reference(s).is_some());
                match substitute(item, params) {
                    Value::Array(inner) if was_reference => out.extend(inner),
                    other => out.push(other),
                }
            }
            Value::Array(out)
        }
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), substitute(v, params))).collect()),
        other => other.clone(),
    }
}

fn substitute_str(s: &str, params: &BTreeMap<String, ParamValue>) -> Value {
    if let Some(name) = sole_reference(s) {
        if let Some(p) = params.get(name) {
            return p.value.clone();
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Value::String(out);
        };
        let name = after[..end].trim();
        match params.get(name).filter(|_| valid_name(name)) {
            Some(p) => out.push_str(&text(&p.value)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Value::String(out)
}

/// The name in a string that is exactly `{{ name }}` (surrounding blanks allowed).
fn sole_reference(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let name = inner.trim();
    valid_name(name).then_some(name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A value as text inside a longer string: lists one item per line.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// === schema 1.x ===

fn runtime_config_steps(runtime: &Value) -> Result<Vec<Step>, String> {
    let Value::Object(plugins) = runtime else {
        return Err("runtimeConfig is not an object".into());
    };
    let mut steps = Vec::with_capacity(plugins.len());
    for (name, config) in plugins {
        let kind =
            PluginKind::from_name(name).ok_or_else(|| format!("plugin {name} is not supported by corral-agent"))?;
        let properties = match config.get("properties") {
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(object @ Value::Object(_)) => vec![object],
            Some(_) => return Err(format!("the properties of {name} are neither an object nor a list")),
            None => return Err(format!("plugin {name} has no properties")),
        };
        let scripts = properties.into_iter().map(|p| script(p, name)).collect::<Result<Vec<_>, _>>()?;
        if scripts.is_empty() {
            return Err(format!("plugin {name} has no properties"));
        }
        steps.push(Step {
            id: name.clone(),
            step_name: String::new(),
            kind,
            scripts,
            skip: None,
            exit_on_failure: false,
        });
    }
    Ok(steps)
}

// === schema 2.x ===

fn main_steps(main: &Value, platform_type: &str) -> Result<Vec<Step>, String> {
    let Value::Array(list) = main else {
        return Err("mainSteps is not a list".into());
    };
    let mut steps: Vec<Step> = Vec::with_capacity(list.len());
    for (i, step) in list.iter().enumerate() {
        let Value::Object(step) = step else {
            return Err(format!("step {} of mainSteps is not an object", i + 1));
        };
        let action =
            step.get("action").and_then(Value::as_str).ok_or_else(|| format!("step {} has no action", i + 1))?;
        let name = step.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err(format!("step {} ({action}) has no name", i + 1));
        }
        if steps.iter().any(|s| s.id == name) {
            return Err(format!("step name {name} is used twice"));
        }
        let kind = PluginKind::from_name(action)
            .ok_or_else(|| format!("action {action} (step {name}) is not supported by corral-agent"))?;
        let inputs = step.get("inputs").ok_or_else(|| format!("step {name} has no inputs"))?;
        let mut script = script(inputs, name)?;
        // A step-level timeoutSeconds applies when the inputs give none.
        if inputs.get("timeoutSeconds").is_none() {
            if let Some(t) = step.get("timeoutSeconds") {
                script.timeout = timeout(Some(t), name)?;
            }
        }
        let skip = match step.get("precondition") {
            None | Some(Value::Null) => None,
            Some(p) => precondition_unmet(p, platform_type, name)?,
        };
        let exit_on_failure = matches!(step.get("onFailure").and_then(Value::as_str), Some("exit" | "successAndExit"));
        steps.push(Step {
            id: name.to_string(),
            step_name: name.to_string(),
            kind,
            scripts: vec![script],
            skip,
            exit_on_failure,
        });
    }
    Ok(steps)
}

/// `{"StringEquals": ["platformType", "Linux"]}`, the one precondition command documents
/// use: `Some(reason)` when it does not hold on this machine.
fn precondition_unmet(p: &Value, platform_type: &str, step: &str) -> Result<Option<String>, String> {
    let unsupported =
        || format!("the precondition of step {step} is not supported (only StringEquals on platformType)");
    let Value::Object(map) = p else { return Err(unsupported()) };
    if map.len() != 1 {
        return Err(unsupported());
    }
    let operands = match map.get("StringEquals") {
        Some(Value::Array(ops)) if ops.len() == 2 => ops,
        _ => return Err(unsupported()),
    };
    let (a, b) = (operands[0].as_str().unwrap_or_default(), operands[1].as_str().unwrap_or_default());
    let wanted = if a == "platformType" {
        b
    } else if b == "platformType" {
        a
    } else {
        return Err(unsupported());
    };
    Ok((!wanted.eq_ignore_ascii_case(platform_type)).then(|| {
        format!(
            "Step execution skipped due to unsatisfied preconditions: platformType is {platform_type}, not {wanted}"
        )
    }))
}

// === inputs shared by both schemas ===

fn script(inputs: &Value, owner: &str) -> Result<Script, String> {
    let Value::Object(inputs) = inputs else {
        return Err(format!("the inputs of {owner} are not an object"));
    };
    let lines = match inputs.get("runCommand") {
        Some(Value::Array(items)) => {
            let mut lines = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => lines.push(s.clone()),
                    Value::Number(_) | Value::Bool(_) => lines.push(item.to_string()),
                    _ => return Err(format!("runCommand of {owner} holds something other than strings")),
                }
            }
            lines
        }
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => return Err(format!("runCommand of {owner} is neither a string nor a list of strings")),
        None => return Err(format!("{owner} has no runCommand")),
    };
    let working_directory = match inputs.get("workingDirectory") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => return Err(format!("workingDirectory of {owner} is not a string")),
    };
    Ok(Script { lines, working_directory, timeout: timeout(inputs.get("timeoutSeconds"), owner)? })
}

/// `timeoutSeconds` as a number or a numeric string; absent or empty means the default.
fn timeout(value: Option<&Value>, owner: &str) -> Result<Duration, String> {
    let secs = match value {
        None | Some(Value::Null) => return Ok(DEFAULT_TIMEOUT),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(DEFAULT_TIMEOUT),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    };
    match secs {
        Some(0) | None => Err(format!("timeoutSeconds of {owner} is not a positive whole number of seconds")),
        Some(s) => Ok(Duration::from_secs(s).min(MAX_TIMEOUT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(declared: Value, given: Value) -> BTreeMap<String, ParamValue> {
        let Value::Object(given) = given else { panic!("given must be an object") };
        parameter_values(Some(&declared), &given).expect("parameters")
    }

    #[test]
    fn substitution() {
        let p = params(
            json!({
                "commands": {"type": "StringList"},
                "dir": {"type": "String", "default": "/tmp"},
                "timeout": {"type": "String", "default": "3600"},
                "count": {"type": "Integer", "default": 3},
            }),
            json!({"commands": ["echo a", "echo b"], "timeout": ["60"]}),
        );
        let check = |input: Value, expected: Value| assert_eq!(substitute(&input, &p), expected, "{input}");
        // A sole reference takes the value itself: lists stay lists.
        check(json!("{{ commands }}"), json!(["echo a", "echo b"]));
        check(json!("{{commands}}"), json!(["echo a", "echo b"]));
        check(json!("  {{ commands }} "), json!(["echo a", "echo b"]));
        // AWS-style single-element lists are the value of a String parameter.
        check(json!("{{ timeout }}"), json!("60"));
        // Defaults fill what was not given, typed as declared.
        check(json!("{{ dir }}"), json!("/tmp"));
        check(json!("{{ count }}"), json!(3));
        // Inside a longer string, lists join with newlines and other values print.
        check(json!("run: {{ commands }}!"), json!("run: echo a\necho b!"));
        check(json!("cd {{dir}} && sleep {{ count }}"), json!("cd /tmp && sleep 3"));
        // A list element that is a reference to a list is spliced in.
        check(json!(["set -e", "{{ commands }}", "echo done"]), json!(["set -e", "echo a", "echo b", "echo done"]));
        // Unknown names, parameter-store references and broken braces stay.
        check(json!("{{ nope }} {{ssm:/a/b}} {{ dir"), json!("{{ nope }} {{ssm:/a/b}} {{ dir"));
        check(json!({"k": ["{{ dir }}", 5, null]}), json!({"k": ["/tmp", 5, null]}));
        // Multi-byte text around references survives.
        check(json!("é {{ dir }} ü"), json!("é /tmp ü"));
    }

    #[test]
    fn a_string_given_for_a_string_list_is_a_one_line_list() {
        let p = params(json!({"commands": {"type": "StringList"}}), json!({"commands": "uptime"}));
        assert_eq!(substitute(&json!("{{ commands }}"), &p), json!(["uptime"]));
    }

    fn shell_12() -> Value {
        json!({
            "schemaVersion": "1.2",
            "description": "Run a shell script.",
            "parameters": {
                "commands": {"type": "StringList"},
                "workingDirectory": {"type": "String", "default": ""},
                "executionTimeout": {"type": "String", "default": "3600"}
            },
            "runtimeConfig": {"aws:runShellScript": {"properties": [{
                "id": "0.aws:runShellScript",
                "runCommand": "{{ commands }}",
                "workingDirectory": "{{ workingDirectory }}",
                "timeoutSeconds": "{{ executionTimeout }}"
            }]}}
        })
    }

    fn given(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn schema_12() {
        let doc =
            parse(&shell_12(), &given(json!({"commands": ["echo hi", "uname"], "executionTimeout": ["30"]})), "Linux")
                .expect("parses");
        assert_eq!(
            doc.steps,
            vec![Step {
                id: "aws:runShellScript".into(),
                step_name: String::new(),
                kind: PluginKind::Shell,
                scripts: vec![Script {
                    lines: vec!["echo hi".into(), "uname".into()],
                    working_directory: None,
                    timeout: Duration::from_secs(30),
                }],
                skip: None,
                exit_on_failure: false,
            }]
        );
        // Defaults apply; the document may also arrive as a JSON string.
        let text = Value::String(shell_12().to_string());
        let doc =
            parse(&text, &given(json!({"commands": ["ls"], "workingDirectory": ["/var"]})), "Linux").expect("parses");
        assert_eq!(doc.steps[0].scripts[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(doc.steps[0].scripts[0].working_directory.as_deref(), Some("/var"));
    }

    #[test]
    fn schema_22() {
        let content = json!({
            "schemaVersion": "2.2",
            "parameters": {"svc": {"type": "String", "default": "nginx"}, "delay": {"type": "Integer", "default": 5}},
            "mainSteps": [
                {"action": "aws:runShellScript", "name": "restart",
                 "precondition": {"StringEquals": ["platformType", "Linux"]},
                 "onFailure": "exit",
                 "inputs": {"runCommand": ["sleep {{ delay }}", "systemctl restart {{svc}}"], "timeoutSeconds": 90}},
                {"action": "aws:runPowerShellScript", "name": "win",
                 "precondition": {"StringEquals": ["platformType", "Windows"]},
                 "inputs": {"runCommand": "Get-Service {{ svc }}", "workingDirectory": "C:\\"}},
                {"action": "aws:runShellScript", "name": "after", "timeoutSeconds": 7,
                 "inputs": {"runCommand": ["true"]}}
            ]
        });
        let doc = parse(&content, &given(json!({"svc": ["sshd"]})), "Linux").expect("parses");
        let ids: Vec<&str> = doc.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["restart", "win", "after"]);
        let restart = &doc.steps[0];
        assert_eq!(restart.step_name, "restart");
        assert_eq!(restart.kind, PluginKind::Shell);
        assert_eq!(restart.scripts[0].lines, ["sleep 5", "systemctl restart sshd"]);
        assert_eq!(restart.scripts[0].timeout, Duration::from_secs(90));
        assert!(restart.exit_on_failure && restart.skip.is_none());
        let win = &doc.steps[1];
        assert_eq!(win.kind, PluginKind::PowerShell);
        assert_eq!(win.scripts[0].lines, ["Get-Service sshd"]);
        assert!(win.skip.as_deref().is_some_and(|s| s.contains("platformType")), "{:?}", win.skip);
        assert!(!win.exit_on_failure);
        assert_eq!(doc.steps[2].scripts[0].timeout, Duration::from_secs(7));
        // On Windows the other step is the skipped one.
        let doc = parse(&content, &Map::new(), "Windows").expect("parses");
        assert!(doc.steps[0].skip.is_some() && doc.steps[1].skip.is_none());
    }

    #[test]
    fn bad_documents() {
        let check = |content: Value, part: &str| match parse(&content, &Map::new(), "Linux") {
            Err(e) => assert!(e.contains(part), "{e:?} lacks {part:?}"),
            Ok(d) => panic!("{content} parsed: {d:?}"),
        };
        check(json!([]), "not a JSON object");
        check(Value::String("{nope".into()), "not valid JSON");
        check(json!({"mainSteps": []}), "no schemaVersion");
        check(json!({"schemaVersion": 2.2}), "not a string");
        check(json!({"schemaVersion": "3.0", "mainSteps": []}), "3.0 is not supported");
        check(json!({"schemaVersion": "1.2"}), "needs runtimeConfig");
        check(json!({"schemaVersion": "2.2"}), "needs mainSteps");
        check(json!({"schemaVersion": "2.2", "mainSteps": []}), "no steps");
        check(json!({"schemaVersion": "2.2", "mainSteps": {}}), "not a list");
        check(
            json!({"schemaVersion": "1.2", "runtimeConfig": {"aws:softwareInventory": {"properties": {}}}}),
            "aws:softwareInventory is not supported",
        );
        check(
            json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDocument", "name": "x", "inputs": {}}]}),
            "aws:runDocument",
        );
        check(
            json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "inputs": {}}]}),
            "no name",
        );
        check(
            json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {}}]}),
            "no runCommand",
        );
        check(
            json!({"schemaVersion": "2.2", "mainSteps": [
                {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["x"]}},
                {"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["y"]}}]}),
            "used twice",
        );
        check(
            json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a",
                "inputs": {"runCommand": [{"x": 1}]}}]}),
            "other than strings",
        );
        check(
            json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a",
                "inputs": {"runCommand": ["x"], "timeoutSeconds": "soon"}}]}),
            "timeoutSeconds",
        );
        check(
            json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a",
                "precondition": {"StringLike": ["platformType", "Lin*"]}, "inputs": {"runCommand": ["x"]}}]}),
            "precondition",
        );
        check(json!({"schemaVersion": "1.2", "parameters": [], "runtimeConfig": {}}), "parameters are not an object");
    }

    #[test]
    fn timeouts_are_capped() {
        assert_eq!(timeout(Some(&json!(999_999)), "x"), Ok(MAX_TIMEOUT));
        assert_eq!(timeout(Some(&json!(" 12 ")), "x"), Ok(Duration::from_secs(12)));
        assert_eq!(timeout(Some(&json!("")), "x"), Ok(DEFAULT_TIMEOUT));
        assert!(timeout(Some(&json!(0)), "x").is_err());
        assert!(timeout(Some(&json!(-5)), "x").is_err());
    }
}
