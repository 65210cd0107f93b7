//! Run Command: `SendCommand`, `ListCommands`, `ListCommandInvocations`,
//! `GetCommandInvocation`, `CancelCommand`.
//!
//! SendCommand resolves its targets, checks the document and parameters, and stores the command
//! with every invocation in one transaction, so any read right after it finds them; the
//! scheduler (`engine::commands`) then delivers them. A command's status is never stored: it is
//! rolled up from its invocations whenever it is read (`rollup`).

pub mod rollup;

use std::collections::BTreeMap;

use corral_api::ssm::{
    CancelCommandRequest, CancelCommandResult, CloudWatchOutputConfig, Command as WireCommand,
    CommandInvocation as WireInvocation, CommandPlugin, GetCommandInvocationRequest, GetCommandInvocationResult,
    ListCommandInvocationsRequest, ListCommandInvocationsResult, ListCommandsRequest, ListCommandsResult,
    NotificationConfig, SendCommandRequest, SendCommandResult, Target,
};
use corral_store::{Command, CommandFilter, CommandInvocation, ManagedInstance, StoreError};
use corral_wire::runcommand::SendCommandPayload;
use corral_wire::time::Timestamp;
use serde_json::Value;
use time::OffsetDateTime;

use super::documents::{self, content};
use super::SsmError;
use crate::context::RequestContext;
use crate::services::pagination;
use crate::state::AppState;

use rollup::{details, status};

/// Default `TimeoutSeconds` (the delivery timeout).
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 3600;
/// Default `executionTimeout` of a document that declares none.
pub const DEFAULT_EXECUTION_TIMEOUT: i64 = 3600;
/// `StandardOutputContent` is the first this many characters, as AWS cuts it.
pub const STDOUT_API_CHARS: usize = 24_000;
/// `StandardErrorContent` is the first this many characters, as AWS cuts it.
pub const STDERR_API_CHARS: usize = 8_000;
/// A plugin's `Output` in listings.
pub const OUTPUT_API_CHARS: usize = 2_500;
/// Instances read per store call while resolving tag targets.
const SCAN_BATCH: usize = 1000;

// === targets ===

/// One `Targets` entry.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// `InstanceIds`, `tag:<key>` or `tag-key`.
    pub key: String,
    /// Its values.
    pub values: Vec<String>,
}

/// The targets of a SendCommand as JSON input carries them (for the authoriser).
pub fn targets_from_json(input: &Value) -> (Vec<String>, Vec<TargetSpec>) {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let ids = strings(input.get("InstanceIds"));
    let targets = input
        .get("Targets")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|t| TargetSpec {
                    key: t.get("Key").and_then(Value::as_str).unwrap_or_default().to_string(),
                    values: strings(t.get("Values")),
                })
                .collect()
        })
        .unwrap_or_default();
    (ids, targets)
}

fn target_matches(t: &TargetSpec, instance: &ManagedInstance) -> bool {
    if t.key == "InstanceIds" {
        return t.values.iter().any(|v| v == "*" || *v == instance.instance_id);
    }
    if t.key == "tag-key" {
        return instance.tags.iter().any(|tag| t.values.contains(&tag.key));
    }
    match t.key.strip_prefix("tag:") {
        Some(key) => instance.tags.iter().any(|tag| tag.key == key && t.values.contains(&tag.value)),
        None => false,
    }
}

/// The managed instances a SendCommand addresses: the named ones (each must exist in the
/// account and region), or every instance matching all `targets`.
pub async fn resolve_targets(
    state: &AppState,
    ctx: &RequestContext,
    instance_ids: &[String],
    targets: &[TargetSpec],
) -> Result<Vec<ManagedInstance>, SsmError> {
    match (instance_ids.is_empty(), targets.is_empty()) {
        (true, true) => {
            return Err(SsmError::Validation("Either InstanceIds or Targets must be specified.".to_string()))
        }
        (false, false) => {
            return Err(SsmError::Validation("InstanceIds and Targets cannot be specified together.".to_string()))
        }
        _ => {}
    }
    if !instance_ids.is_empty() {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for id in instance_ids {
            if !seen.insert(id.as_str()) {
                return Err(SsmError::DuplicateInstanceId(format!("Instance Id {id} is duplicated in the request.")));
            }
            let found = state
                .store
                .get_instance(id)
                .await?
                .filter(|i| i.account_id == ctx.account_id() && i.region == ctx.region);
            match found {
                Some(i) => out.push(i),
                None => {
                    return Err(SsmError::InvalidInstanceId(format!(
                        "Instances [[{id}]] not in a valid state for account {}",
                        ctx.account_id()
                    )))
                }
            }
        }
        return Ok(out);
    }
    for t in targets {
        let known =
            t.key == "InstanceIds" || t.key == "tag-key" || t.key.strip_prefix("tag:").is_some_and(|k| !k.is_empty());
        if !known {
            return Err(SsmError::Validation(format!(
                "Target key {} is not supported. Use InstanceIds, tag:<key> or tag-key.",
                t.key
            )));
        }
        if t.values.is_empty() {
            return Err(SsmError::Validation(format!("Target {} has no values.", t.key)));
        }
    }
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let batch = state.store.list_instances(ctx.account_id(), &ctx.region, cursor.as_deref(), SCAN_BATCH).await?;
        let done = batch.len() < SCAN_BATCH;
        cursor = batch.last().map(|i| i.instance_id.clone());
        out.extend(batch.into_iter().filter(|i| targets.iter().all(|t| target_matches(t, i))));
        if done {
            break;
        }
    }
    Ok(out)
}

// === SendCommand ===

fn platform_of(instance: &ManagedInstance) -> Option<&str> {
    instance.info.platform_type.as_deref()
}

/// `SendCommand`.
pub async fn send_command(
    state: &AppState,
    ctx: &RequestContext,
    input: SendCommandRequest,
) -> Result<SendCommandResult, SsmError> {
    let runnable = documents::runnable(state, ctx, &input.document_name, input.document_version.as_deref()).await?;
    if let Some(hash) = &input.document_hash {
        if input.document_hash_type.as_deref().unwrap_or("Sha256") == "Sha256"
            && !hash.eq_ignore_ascii_case(&runnable.version.hash)
        {
            return Err(SsmError::InvalidDocument(format!(
                "The hash of document {} version {} does not match the DocumentHash given.",
                runnable.name, runnable.version.version
            )));
        }
    }
    let given = input.parameters.clone().unwrap_or_default();
    // Checking values against patterns is CPU work proportional to the input: it runs on the
    // blocking pool so that a large request never stalls the runtime's workers.
    let (document, values) = (runnable.content.clone(), given.clone());
    let resolved = tokio::task::spawn_blocking(move || content::resolve_parameters(&document, &values))
        .await
        .map_err(|e| SsmError::Internal(format!("parameter check failed: {e}")))?
        .map_err(|e| SsmError::InvalidParameters(e.0))?;
    let execution_timeout = match resolved.get("executionTimeout") {
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| {
            SsmError::InvalidParameters(format!(
                "Parameter \"executionTimeout\" value \"{s}\" is not a number of seconds."
            ))
        })?,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(DEFAULT_EXECUTION_TIMEOUT),
        _ => DEFAULT_EXECUTION_TIMEOUT,
    };
    let max_concurrency = input.max_concurrency.clone().unwrap_or_else(|| "50".to_string());
    let max_errors = input.max_errors.clone().unwrap_or_else(|| "0".to_string());
    if rollup::Rate::parse(&max_concurrency)
        .is_none_or(|r| r == rollup::Rate::Count(0) || r == rollup::Rate::Percent(0))
    {
        return Err(SsmError::Validation(format!("MaxConcurrency {max_concurrency} is not valid.")));
    }
    if rollup::Rate::parse(&max_errors).is_none() {
        return Err(SsmError::Validation(format!("MaxErrors {max_errors} is not valid.")));
    }
    let timeout_seconds = input.timeout_seconds.map(i64::from).unwrap_or(DEFAULT_TIMEOUT_SECONDS);

    let instance_ids = input.instance_ids.clone().unwrap_or_default();
    let targets: Vec<TargetSpec> = input
        .targets
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|t| TargetSpec { key: t.key.unwrap_or_default(), values: t.values.unwrap_or_default() })
        .collect();
    let instances = resolve_targets(state, ctx, &instance_ids, &targets).await?;
    let platforms = runnable.content.platform_types("Command");
    if let Some(bad) = instances.iter().find(|i| platform_of(i).is_some_and(|p| !platforms.iter().any(|q| q == p))) {
        return Err(SsmError::UnsupportedPlatformType(format!(
            "Cannot perform operation for instance id {} of platform type {}",
            bad.instance_id,
            platform_of(bad).unwrap_or_default()
        )));
    }

    let now = OffsetDateTime::now_utc();
    let requested_at = now.replace_millisecond(now.millisecond()).unwrap_or(now);
    let command_id = uuid::Uuid::new_v4().to_string();
    let cloud_watch = input.cloud_watch_output_config.clone();
    let payload_parameters = resolved.clone();
    let payload = SendCommandPayload {
        command_id: command_id.clone(),
        document_name: runnable.name.clone(),
        document_content: runnable.content.body.clone(),
        parameters: resolved.into_iter().collect(),
        output_s3_bucket_name: input.output_s3_bucket_name.clone().unwrap_or_default(),
        output_s3_key_prefix: input.output_s3_key_prefix.clone().unwrap_or_default(),
        cloud_watch_log_group_name: cloud_watch
            .as_ref()
            .and_then(|c| c.cloud_watch_log_group_name.clone())
            .unwrap_or_default(),
        cloud_watch_output_enabled: cloud_watch
            .as_ref()
            .and_then(|c| c.cloud_watch_output_enabled)
            .unwrap_or(false)
            .to_string(),
    };
    let payload_json =
        serde_json::to_string(&payload).map_err(|e| SsmError::Internal(format!("serialising the payload: {e}")))?;
    let wire_targets: Vec<Target> = input.targets.clone().unwrap_or_default();
    let command = Command {
        account_id: ctx.account_id().to_string(),
        region: ctx.region.clone(),
        command_id: command_id.clone(),
        document_name: runnable.name.clone(),
        document_version: input.document_version.clone().unwrap_or_else(|| "$DEFAULT".to_string()),
        comment: input.comment.clone().unwrap_or_default(),
        parameters_json: serde_json::to_string(&given).unwrap_or_else(|_| "{}".into()),
        instance_ids: instance_ids.clone(),
        targets_json: serde_json::to_string(&targets_json(&wire_targets)).unwrap_or_else(|_| "[]".into()),
        payload_json,
        requested_at,
        timeout_seconds,
        // The longest the agent may run it: the parameter, or the steps' own limits added up.
        execution_timeout_seconds: execution_timeout
            .max(steps_time_limit(&content::render(&runnable.content, &payload_parameters))),
        max_concurrency,
        max_errors,
        service_role: input.service_role_arn.clone().unwrap_or_default(),
        output_s3_bucket: input.output_s3_bucket_name.clone().unwrap_or_default(),
        output_s3_prefix: input.output_s3_key_prefix.clone().unwrap_or_default(),
        requested_by: ctx.principal.arn.clone(),
        cancel_requested: false,
        active: !instances.is_empty(),
    };
    let invocations: Vec<CommandInvocation> = instances
        .iter()
        .map(|i| CommandInvocation {
            account_id: command.account_id.clone(),
            region: command.region.clone(),
            command_id: command_id.clone(),
            instance_id: i.instance_id.clone(),
            instance_name: i.name.clone().or_else(|| i.info.computer_name.clone()).unwrap_or_default(),
            requested_at,
            status: status::PENDING.to_string(),
            status_details: details::PENDING.to_string(),
            dispatched_at: None,
            acked_at: None,
            started_at: None,
            finished_at: None,
            response_code: -1,
            trace_output: String::new(),
            delivery_attempts: 0,
            plugins: Vec::new(),
        })
        .collect();
    let counts = [(status::PENDING, details::PENDING, invocations.len() as u64)];
    let state_now = rollup::roll_up(counts.iter().copied().filter(|c| c.2 > 0), &command.max_errors, false);
    let output = SendCommandResult { command: Some(wire_command(&command, &state_now)) };
    crate::audit::stage_output(&output);
    state.store.create_command(&command, &invocations).await?;
    state.engine.wake();
    Ok(output)
}

/// The sum of the time limits of a rendered document's steps (schema 2.x `inputs.timeoutSeconds`,
/// schema 1.x `properties[].timeoutSeconds`), each 3600 s when not given, as the agent runs them.
fn steps_time_limit(rendered: &Value) -> i64 {
    fn limit(v: Option<&Value>) -> i64 {
        match v {
            Some(Value::String(s)) => s.trim().parse().unwrap_or(DEFAULT_EXECUTION_TIMEOUT),
            Some(Value::Number(n)) => n.as_i64().unwrap_or(DEFAULT_EXECUTION_TIMEOUT),
            _ => DEFAULT_EXECUTION_TIMEOUT,
        }
    }
    if let Some(steps) = rendered.get("mainSteps").and_then(Value::as_array) {
        return steps.iter().map(|s| limit(s.get("inputs").and_then(|i| i.get("timeoutSeconds")))).sum();
    }
    let plugins = rendered.get("runtimeConfig").and_then(Value::as_object);
    plugins
        .map(|p| {
            p.values()
                .flat_map(|plugin| match plugin.get("properties") {
                    Some(Value::Array(props)) => props.iter().map(|p| limit(p.get("timeoutSeconds"))).collect(),
                    Some(props @ Value::Object(_)) => vec![limit(props.get("timeoutSeconds"))],
                    _ => vec![DEFAULT_EXECUTION_TIMEOUT],
                })
                .sum()
        })
        .unwrap_or(DEFAULT_EXECUTION_TIMEOUT)
}

fn targets_json(targets: &[Target]) -> Value {
    Value::Array(
        targets
            .iter()
            .map(|t| {
                serde_json::json!({
                    "Key": t.key.clone().unwrap_or_default(),
                    "Values": t.values.clone().unwrap_or_default(),
                })
            })
            .collect(),
    )
}

fn targets_from_stored(json: &str) -> Vec<Target> {
    let (_, specs) = targets_from_json(
        &serde_json::json!({ "Targets": serde_json::from_str::<Value>(json).unwrap_or(Value::Null) }),
    );
    specs.into_iter().map(|t| Target { key: Some(t.key), values: Some(t.values) }).collect()
}

fn parameters_from_stored(json: &str) -> BTreeMap<String, Vec<String>> {
    serde_json::from_str(json).unwrap_or_default()
}

fn empty_notification() -> NotificationConfig {
    NotificationConfig {
        notification_arn: Some(String::new()),
        notification_events: Some(Vec::new()),
        notification_type: Some(String::new()),
    }
}

fn empty_cloud_watch() -> CloudWatchOutputConfig {
    CloudWatchOutputConfig { cloud_watch_log_group_name: Some(String::new()), cloud_watch_output_enabled: Some(false) }
}

fn wire_command(c: &Command, s: &rollup::CommandState) -> WireCommand {
    let count = |n: u64| Some(i32::try_from(n).unwrap_or(i32::MAX));
    WireCommand {
        command_id: Some(c.command_id.clone()),
        document_name: Some(c.document_name.clone()),
        document_version: Some(c.document_version.clone()),
        comment: Some(c.comment.clone()),
        expires_after: Some(Timestamp(
            c.requested_at + time::Duration::seconds(c.timeout_seconds + c.execution_timeout_seconds),
        )),
        parameters: Some(parameters_from_stored(&c.parameters_json)),
        instance_ids: Some(c.instance_ids.clone()),
        targets: Some(targets_from_stored(&c.targets_json)),
        requested_date_time: Some(Timestamp(c.requested_at)),
        status: Some(s.status.to_string()),
        status_details: Some(s.status_details.to_string()),
        output_s3_region: Some(c.region.clone()),
        output_s3_bucket_name: Some(c.output_s3_bucket.clone()),
        output_s3_key_prefix: Some(c.output_s3_prefix.clone()),
        max_concurrency: Some(c.max_concurrency.clone()),
        max_errors: Some(c.max_errors.clone()),
        target_count: count(s.target_count),
        completed_count: count(s.completed_count),
        error_count: count(s.error_count),
        delivery_timed_out_count: count(s.delivery_timed_out_count),
        service_role: Some(c.service_role.clone()),
        notification_config: Some(empty_notification()),
        cloud_watch_output_config: Some(empty_cloud_watch()),
        timeout_seconds: Some(i32::try_from(c.timeout_seconds).unwrap_or(i32::MAX)),
        alarm_configuration: None,
        triggered_alarms: None,
    }
}

// === reads ===

/// The filters ListCommands / ListCommandInvocations take, split into what the store applies
/// and what is checked after the roll-up.
struct Filters {
    store: CommandFilter,
    statuses: Vec<String>,
    stage: Option<String>,
}

const COMMAND_STATUS_FILTERS: &[&str] = &[
    "Pending",
    "InProgress",
    "Success",
    "Cancelled",
    "Failed",
    "TimedOut",
    "AccessDenied",
    "DeliveryTimedOut",
    "ExecutionTimedOut",
    "Incomplete",
    "NoInstancesInTag",
    "LimitExceeded",
    "Cancelling",
];
const INVOCATION_STATUS_FILTERS: &[&str] = &[
    "Pending",
    "InProgress",
    "Delayed",
    "Success",
    "Cancelled",
    "Failed",
    "TimedOut",
    "AccessDenied",
    "DeliveryTimedOut",
    "ExecutionTimedOut",
    "Undeliverable",
    "InvalidPlatform",
    "Terminated",
    "Cancelling",
];

fn parse_time_filter(key: &str, value: &str) -> Result<OffsetDateTime, SsmError> {
    Timestamp::parse_iso8601(value).map(|t| t.0).ok_or_else(|| {
        SsmError::Validation(format!(
            "The value {value} of filter {key} is not an ISO 8601 timestamp such as 2024-07-07T00:00:00Z."
        ))
    })
}

fn parse_filters(
    command_id: Option<&str>,
    instance_id: Option<&str>,
    filters: &[corral_api::ssm::CommandFilter],
    for_invocations: bool,
) -> Result<Filters, SsmError> {
    let mut out = Filters {
        store: CommandFilter {
            command_id: command_id.map(str::to_string),
            instance_id: instance_id.map(str::to_string),
            ..Default::default()
        },
        statuses: Vec::new(),
        stage: None,
    };
    for f in filters {
        match f.key.as_str() {
            "InvokedAfter" => out.store.invoked_after = Some(parse_time_filter(&f.key, &f.value)?),
            "InvokedBefore" => out.store.invoked_before = Some(parse_time_filter(&f.key, &f.value)?),
            "DocumentName" => out.store.document_name = Some(f.value.clone()),
            "Status" => {
                let allowed = if for_invocations { INVOCATION_STATUS_FILTERS } else { COMMAND_STATUS_FILTERS };
                if !allowed.contains(&f.value.as_str()) {
                    return Err(SsmError::Validation(format!(
                        "The value {} of filter Status is not valid. Valid values: {}",
                        f.value,
                        allowed.join(", ")
                    )));
                }
                out.statuses.push(f.value.clone());
            }
            "ExecutionStage" if !for_invocations => {
                if f.value != "Executing" && f.value != "Complete" {
                    return Err(SsmError::Validation(format!(
                        "The value {} of filter ExecutionStage is not valid. Valid values: Executing, Complete",
                        f.value
                    )));
                }
                out.stage = Some(f.value.clone());
            }
            other => return Err(SsmError::InvalidFilterKey(format!("The filter key {other} is not valid."))),
        }
    }
    Ok(out)
}

/// Whether `(status, details)` is what a Status filter value names (`DeliveryTimedOut` is
/// `Delivery Timed Out` in StatusDetails).
fn status_matches(wanted: &[String], status: &str, status_details: &str) -> bool {
    let compact = status_details.replace(' ', "");
    wanted.is_empty() || wanted.iter().any(|w| w == status || *w == compact)
}

fn bad_token() -> SsmError {
    SsmError::InvalidNextToken("The NextToken is not valid.".to_string())
}

fn page_size(max_results: Option<i32>) -> usize {
    max_results.map(|m| m.clamp(1, 50) as usize).unwrap_or(50)
}

async fn roll_up_commands(
    state: &AppState,
    ctx: &RequestContext,
    commands: &[Command],
) -> Result<Vec<rollup::CommandState>, SsmError> {
    let ids: Vec<String> = commands.iter().map(|c| c.command_id.clone()).collect();
    let counts = state.store.invocation_status_counts(ctx.account_id(), &ctx.region, &ids).await?;
    Ok(commands
        .iter()
        .map(|c| {
            let rows = counts
                .iter()
                .filter(|r| r.command_id == c.command_id)
                .map(|r| (r.status.as_str(), r.status_details.as_str(), r.count));
            rollup::roll_up(rows, &c.max_errors, c.cancel_requested)
        })
        .collect())
}

async fn require_command(state: &AppState, ctx: &RequestContext, command_id: &str) -> Result<Command, SsmError> {
    state
        .store
        .get_command(ctx.account_id(), &ctx.region, command_id)
        .await?
        .ok_or_else(|| SsmError::InvalidCommandId(format!("Command ID {command_id} is not valid.")))
}

/// `ListCommands`: newest first; status filters apply to the rolled-up status.
pub async fn list_commands(
    state: &AppState,
    ctx: &RequestContext,
    input: ListCommandsRequest,
) -> Result<ListCommandsResult, SsmError> {
    let filters = parse_filters(
        input.command_id.as_deref(),
        input.instance_id.as_deref(),
        input.filters.as_deref().unwrap_or_default(),
        false,
    )?;
    if let Some(id) = &input.command_id {
        require_command(state, ctx, id).await?;
    }
    let mut after = match &input.next_token {
        Some(t) => {
            let cursor = pagination::decode("commands", t).ok_or_else(bad_token)?;
            let (ms, id) = cursor.split_once('|').ok_or_else(bad_token)?;
            Some((pagination::time_from_cursor(ms).ok_or_else(bad_token)?, id.to_string()))
        }
        None => None,
    };
    let size = page_size(input.max_results);
    let mut page = Vec::new();
    let mut more = false;
    'scan: loop {
        let batch =
            state.store.list_commands(ctx.account_id(), &ctx.region, &filters.store, after.clone(), size).await?;
        let exhausted = batch.len() < size;
        let states = roll_up_commands(state, ctx, &batch).await?;
        for (c, s) in batch.iter().zip(states) {
            let stage_ok = match filters.stage.as_deref() {
                Some("Executing") => {
                    !matches!(s.status, status::SUCCESS | status::FAILED | status::TIMED_OUT | status::CANCELLED)
                }
                Some(_) => matches!(s.status, status::SUCCESS | status::FAILED | status::TIMED_OUT | status::CANCELLED),
                None => true,
            };
            if stage_ok && status_matches(&filters.statuses, s.status, s.status_details) {
                if page.len() == size {
                    more = true;
                    break 'scan;
                }
                page.push((c.requested_at, c.command_id.clone(), wire_command(c, &s)));
            }
        }
        match batch.last() {
            Some(last) if !exhausted => after = Some((last.requested_at, last.command_id.clone())),
            _ => break,
        }
    }
    let next_token = if more {
        page.last().map(|(at, id, _)| pagination::encode("commands", &format!("{}|{id}", pagination::time_cursor(*at))))
    } else {
        None
    };
    Ok(ListCommandsResult { commands: Some(page.into_iter().map(|(_, _, c)| c).collect()), next_token })
}

/// The first `n` characters of `s`.
pub fn first_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((at, _)) => s[..at].to_string(),
        None => s.to_string(),
    }
}

fn wire_invocation(c: &Command, inv: &CommandInvocation, with_plugins: bool) -> WireInvocation {
    let stamp = |t: Option<OffsetDateTime>| t.map(Timestamp);
    WireInvocation {
        command_id: Some(inv.command_id.clone()),
        instance_id: Some(inv.instance_id.clone()),
        instance_name: Some(inv.instance_name.clone()),
        comment: Some(c.comment.clone()),
        document_name: Some(c.document_name.clone()),
        document_version: Some(c.document_version.clone()),
        requested_date_time: Some(Timestamp(inv.requested_at)),
        status: Some(inv.status.clone()),
        status_details: Some(inv.status_details.clone()),
        trace_output: Some(first_chars(&inv.trace_output, OUTPUT_API_CHARS)),
        standard_output_url: Some(String::new()),
        standard_error_url: Some(String::new()),
        command_plugins: Some(if with_plugins {
            inv.plugins
                .iter()
                .map(|p| CommandPlugin {
                    name: Some(p.name.clone()),
                    status: Some(p.status.clone()),
                    status_details: Some(p.status_details.clone()),
                    response_code: Some(i32::try_from(p.response_code).unwrap_or(-1)),
                    response_start_date_time: stamp(p.started_at),
                    response_finish_date_time: stamp(p.finished_at),
                    output: Some(first_chars(&p.output, OUTPUT_API_CHARS)),
                    standard_output_url: Some(String::new()),
                    standard_error_url: Some(String::new()),
                    output_s3_region: Some(c.region.clone()),
                    output_s3_bucket_name: Some(c.output_s3_bucket.clone()),
                    output_s3_key_prefix: Some(c.output_s3_prefix.clone()),
                })
                .collect()
        } else {
            Vec::new()
        }),
        service_role: Some(c.service_role.clone()),
        notification_config: Some(empty_notification()),
        cloud_watch_output_config: Some(empty_cloud_watch()),
    }
}

/// `ListCommandInvocations`: by command (newest first), then instance.
pub async fn list_command_invocations(
    state: &AppState,
    ctx: &RequestContext,
    input: ListCommandInvocationsRequest,
) -> Result<ListCommandInvocationsResult, SsmError> {
    let filters = parse_filters(
        input.command_id.as_deref(),
        input.instance_id.as_deref(),
        input.filters.as_deref().unwrap_or_default(),
        true,
    )?;
    if let Some(id) = &input.command_id {
        require_command(state, ctx, id).await?;
    }
    let details = input.details.unwrap_or(false);
    let mut after = match &input.next_token {
        Some(t) => {
            let cursor = pagination::decode("invocations", t).ok_or_else(bad_token)?;
            let mut parts = cursor.splitn(3, '|');
            let (ms, cmd, inst) = (parts.next(), parts.next(), parts.next());
            match (ms.and_then(pagination::time_from_cursor), cmd, inst) {
                (Some(at), Some(cmd), Some(inst)) => Some((at, cmd.to_string(), inst.to_string())),
                _ => return Err(bad_token()),
            }
        }
        None => None,
    };
    let size = page_size(input.max_results);
    let mut commands: BTreeMap<String, Command> = BTreeMap::new();
    let mut page = Vec::new();
    let mut more = false;
    'scan: loop {
        let batch = state
            .store
            .list_invocations(ctx.account_id(), &ctx.region, &filters.store, after.clone(), size, details)
            .await?;
        let exhausted = batch.len() < size;
        for inv in &batch {
            if !status_matches(&filters.statuses, &inv.status, &inv.status_details) {
                continue;
            }
            if page.len() == size {
                more = true;
                break 'scan;
            }
            if !commands.contains_key(&inv.command_id) {
                if let Some(c) = state.store.get_command(ctx.account_id(), &ctx.region, &inv.command_id).await? {
                    commands.insert(c.command_id.clone(), c);
                }
            }
            if let Some(c) = commands.get(&inv.command_id) {
                page.push((
                    inv.requested_at,
                    inv.command_id.clone(),
                    inv.instance_id.clone(),
                    wire_invocation(c, inv, details),
                ));
            }
        }
        match batch.last() {
            Some(last) if !exhausted => {
                after = Some((last.requested_at, last.command_id.clone(), last.instance_id.clone()))
            }
            _ => break,
        }
    }
    let next_token = if more {
        page.last().map(|(at, cmd, inst, _)| {
            pagination::encode("invocations", &format!("{}|{cmd}|{inst}", pagination::time_cursor(*at)))
        })
    } else {
        None
    };
    Ok(ListCommandInvocationsResult {
        command_invocations: Some(page.into_iter().map(|(_, _, _, w)| w).collect()),
        next_token,
    })
}

/// `PT2.44S`: an ISO 8601 duration as AWS writes `ExecutionElapsedTime`.
pub fn elapsed(start: OffsetDateTime, end: OffsetDateTime) -> String {
    let ms = (end - start).whole_milliseconds().max(0);
    let (secs, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        format!("PT{secs}S")
    } else {
        let frac = format!("{frac:03}");
        format!("PT{secs}.{}S", frac.trim_end_matches('0'))
    }
}

/// `GetCommandInvocation`: one plugin's result (the named one, else the first).
pub async fn get_command_invocation(
    state: &AppState,
    ctx: &RequestContext,
    input: GetCommandInvocationRequest,
) -> Result<GetCommandInvocationResult, SsmError> {
    let command = require_command(state, ctx, &input.command_id).await?;
    let inv = state
        .store
        .get_invocation(ctx.account_id(), &ctx.region, &input.command_id, &input.instance_id)
        .await?
        .ok_or_else(|| SsmError::InvocationDoesNotExist(String::new()))?;
    let steps = plugin_names(&command);
    let plugin = match &input.plugin_name {
        Some(name) => {
            let found = inv.plugins.iter().find(|p| &p.name == name);
            if found.is_none() && !steps.contains(name) {
                return Err(SsmError::InvalidPluginName(format!("Plugin name {name} is not valid.")));
            }
            found
        }
        // As AWS: a document of several steps needs the step named.
        None if steps.len() > 1 => {
            return Err(SsmError::InvalidPluginName(format!(
                "The document has {} steps ({}); PluginName must name one of them.",
                steps.len(),
                steps.join(", ")
            )))
        }
        None => inv.plugins.first(),
    };
    let iso = |t: Option<OffsetDateTime>| t.map(corral_wire::time::format_iso8601_millis).unwrap_or_default();
    let (start, end) = match plugin {
        Some(p) => (p.started_at.or(inv.started_at), p.finished_at),
        None => (inv.started_at, inv.finished_at.filter(|_| inv.started_at.is_some())),
    };
    let plugin_name =
        plugin.map(|p| p.name.clone()).or_else(|| input.plugin_name.clone()).or_else(|| steps.first().cloned());
    let (status_value, details_value) = match plugin {
        Some(p) if input.plugin_name.is_some() => (p.status.clone(), p.status_details.clone()),
        _ => (inv.status.clone(), inv.status_details.clone()),
    };
    Ok(GetCommandInvocationResult {
        command_id: Some(inv.command_id.clone()),
        instance_id: Some(inv.instance_id.clone()),
        comment: Some(command.comment.clone()),
        document_name: Some(command.document_name.clone()),
        document_version: Some(command.document_version.clone()),
        plugin_name,
        response_code: Some(i32::try_from(plugin.map(|p| p.response_code).unwrap_or(inv.response_code)).unwrap_or(-1)),
        execution_start_date_time: Some(iso(start)),
        execution_elapsed_time: Some(match (start, end) {
            (Some(s), Some(e)) => elapsed(s, e),
            _ => String::new(),
        }),
        execution_end_date_time: Some(iso(end)),
        status: Some(status_value),
        status_details: Some(details_value),
        standard_output_content: Some(plugin.map(|p| first_chars(&p.stdout, STDOUT_API_CHARS)).unwrap_or_default()),
        standard_output_url: Some(String::new()),
        standard_error_content: Some(plugin.map(|p| first_chars(&p.stderr, STDERR_API_CHARS)).unwrap_or_default()),
        standard_error_url: Some(String::new()),
        cloud_watch_output_config: Some(empty_cloud_watch()),
    })
}

/// The plugin (schema 1.x) or step (2.x) names of the command's document, in order.
fn plugin_names(command: &Command) -> Vec<String> {
    let Ok(payload) = serde_json::from_str::<SendCommandPayload>(&command.payload_json) else { return Vec::new() };
    let doc = &payload.document_content;
    if let Some(steps) = doc.get("mainSteps").and_then(Value::as_array) {
        return steps.iter().filter_map(|s| s.get("name")?.as_str().map(str::to_string)).collect();
    }
    doc.get("runtimeConfig").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// `CancelCommand`: pending invocations end at once; running ones are stopped by their agents.
pub async fn cancel_command(
    state: &AppState,
    ctx: &RequestContext,
    input: CancelCommandRequest,
) -> Result<CancelCommandResult, SsmError> {
    let command = require_command(state, ctx, &input.command_id).await?;
    let ids = input.instance_ids.clone().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for id in &ids {
        if !seen.insert(id) {
            return Err(SsmError::DuplicateInstanceId(format!("Instance Id {id} is duplicated in the request.")));
        }
        if state.store.get_invocation(ctx.account_id(), &ctx.region, &command.command_id, id).await?.is_none() {
            return Err(SsmError::InvalidInstanceId(format!(
                "Instance {id} is not a target of command {}.",
                command.command_id
            )));
        }
    }
    if ids.is_empty() {
        match state.store.set_command_cancel_requested(ctx.account_id(), &ctx.region, &command.command_id).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                return Err(SsmError::InvalidCommandId(format!("Command ID {} is not valid.", command.command_id)))
            }
            Err(e) => return Err(e.into()),
        }
    }
    state.engine.cancel(&command, &ids).await?;
    Ok(CancelCommandResult::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn elapsed_time_reads_as_aws_writes_it() {
        let s = datetime!(2024-03-01 20:08:56.792 UTC);
        assert_eq!(elapsed(s, s + time::Duration::milliseconds(2440)), "PT2.44S");
        assert_eq!(elapsed(s, s + time::Duration::seconds(3)), "PT3S");
        assert_eq!(elapsed(s, s + time::Duration::milliseconds(13)), "PT0.013S");
    }

    #[test]
    fn steps_time_limits_add_up() {
        let two_steps = serde_json::json!({"mainSteps": [
            {"name": "a", "inputs": {"timeoutSeconds": "100"}},
            {"name": "b", "inputs": {"timeoutSeconds": 50}},
            {"name": "c", "inputs": {}}]});
        assert_eq!(steps_time_limit(&two_steps), 100 + 50 + DEFAULT_EXECUTION_TIMEOUT);
        let one_plugin = serde_json::json!({"runtimeConfig": {"aws:runShellScript": {"properties": [
            {"id": "0.aws:runShellScript", "timeoutSeconds": "2"}]}}});
        assert_eq!(steps_time_limit(&one_plugin), 2);
        assert_eq!(steps_time_limit(&serde_json::json!({})), DEFAULT_EXECUTION_TIMEOUT);
    }

    #[test]
    fn cuts_by_characters_not_bytes() {
        assert_eq!(first_chars("héllo", 2), "hé");
        assert_eq!(first_chars("ab", 5), "ab");
    }

    #[test]
    fn status_filters_match_details_spelt_without_spaces() {
        let wanted = vec!["DeliveryTimedOut".to_string()];
        assert!(status_matches(&wanted, "TimedOut", "Delivery Timed Out"));
        assert!(!status_matches(&wanted, "TimedOut", "Execution Timed Out"));
        assert!(status_matches(&[], "Success", "Success"));
    }
}
