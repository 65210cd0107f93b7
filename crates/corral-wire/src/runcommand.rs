//! Run Command payloads between the control plane and the agent (agent-protocol.md §3.1): the
//! send-command and cancel payloads the service sends, the reply the agent sends back, and the
//! job id that names one command on one instance. The same JSON travels in an MGS `agent_job`
//! frame and in an ec2messages message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Topic of a send-command job.
pub const TOPIC_SEND_COMMAND: &str = "aws.ssm.sendCommand";
/// Topic of a cancel job.
pub const TOPIC_CANCEL_COMMAND: &str = "aws.ssm.cancelCommand";

/// The job (and message) id of a command on an instance: `aws.ssm.<CommandId>.<InstanceId>`.
pub fn job_id(command_id: &str, instance_id: &str) -> String {
    format!("aws.ssm.{command_id}.{instance_id}")
}

/// `(command_id, instance_id)` of a job id; the agent takes the second-to-last dot-separated
/// token as the command id. `None` when the id has fewer than two tokens after `aws.ssm.`.
pub fn parse_job_id(job_id: &str) -> Option<(&str, &str)> {
    let rest = job_id.strip_prefix("aws.ssm.")?;
    let (command, instance) = rest.rsplit_once('.')?;
    let command = command.rsplit('.').next()?;
    if command.is_empty() || instance.is_empty() {
        return None;
    }
    Some((command, instance))
}

/// What the agent runs (`SendCommandPayload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendCommandPayload {
    /// The command's id.
    #[serde(rename = "CommandId")]
    pub command_id: String,
    /// The document's name.
    #[serde(rename = "DocumentName")]
    pub document_name: String,
    /// The document as a JSON object (not a string).
    #[serde(rename = "DocumentContent")]
    pub document_content: serde_json::Value,
    /// Parameter values (strings or string lists); the agent substitutes them.
    #[serde(rename = "Parameters", default)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Echoed; Corral uploads nothing.
    #[serde(rename = "OutputS3BucketName", default)]
    pub output_s3_bucket_name: String,
    /// Echoed.
    #[serde(rename = "OutputS3KeyPrefix", default)]
    pub output_s3_key_prefix: String,
    /// Echoed.
    #[serde(rename = "CloudWatchLogGroupName", default)]
    pub cloud_watch_log_group_name: String,
    /// `"true"` / `"false"` (a string, parsed with Go's ParseBool by the real agent).
    #[serde(rename = "CloudWatchOutputEnabled", default)]
    pub cloud_watch_output_enabled: String,
}

/// What a cancel job carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelCommandPayload {
    /// The job id of the command to cancel on this instance.
    #[serde(rename = "CancelMessageId")]
    pub cancel_message_id: String,
}

/// The agent's identity in a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// `en-US`.
    #[serde(default)]
    pub lang: String,
    /// `amazon-ssm-agent`, `corral-agent`.
    #[serde(default)]
    pub name: String,
    /// Go GOOS (`linux`, `windows`).
    #[serde(default)]
    pub os: String,
    /// OS version.
    #[serde(default)]
    pub osver: String,
    /// Agent version.
    #[serde(default)]
    pub ver: String,
}

/// `additionalInfo` of a reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalInfo {
    /// Who replies.
    #[serde(default)]
    pub agent: AgentInfo,
    /// When, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    #[serde(default)]
    pub date_time: String,
    /// Unused (empty).
    #[serde(default)]
    pub run_id: String,
    /// Plugin statuses counted (null in status-only replies).
    #[serde(default)]
    pub runtime_status_counts: Option<BTreeMap<String, i64>>,
}

/// One plugin's (or step's) result in a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRuntimeStatus {
    /// `Success`, `Failed`, `TimedOut`, `Cancelled`, `InProgress`, ...
    #[serde(default)]
    pub status: String,
    /// Exit code.
    #[serde(default)]
    pub code: i64,
    /// Plugin name (`aws:runShellScript`).
    #[serde(default)]
    pub name: String,
    /// stdout, then `\n----------ERROR-------\n`, then stderr, cut to 2,500 bytes.
    #[serde(default)]
    pub output: String,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    #[serde(default)]
    pub start_date_time: String,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    #[serde(default)]
    pub end_date_time: String,
    /// Echoed.
    #[serde(default)]
    pub output_s3_bucket_name: String,
    /// Echoed.
    #[serde(default)]
    pub output_s3_key_prefix: String,
    /// Step name (schema 2.x).
    #[serde(default)]
    pub step_name: String,
    /// Standard output (the real agent cuts it at 24,000 bytes; corral-agent sends more).
    #[serde(default)]
    pub standard_output: String,
    /// Standard error.
    #[serde(default)]
    pub standard_error: String,
}

/// A reply (`SendReplyPayload`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendReplyPayload {
    /// Agent, time and counts.
    #[serde(default)]
    pub additional_info: AdditionalInfo,
    /// `InProgress`, `Success`, `Failed`, `TimedOut`, `Cancelled`, ...
    pub document_status: String,
    /// Document-level error text.
    #[serde(default)]
    pub document_trace_output: String,
    /// Plugin id → result (null in status-only replies).
    #[serde(default)]
    pub runtime_status: Option<BTreeMap<String, PluginRuntimeStatus>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_round_trip() {
        let id = job_id("4a6f1c0e-8a3b-4c43-9f1e-2b7f4c7d9a10", "mi-0123456789abcdef0");
        assert_eq!(id, "aws.ssm.4a6f1c0e-8a3b-4c43-9f1e-2b7f4c7d9a10.mi-0123456789abcdef0");
        assert_eq!(parse_job_id(&id), Some(("4a6f1c0e-8a3b-4c43-9f1e-2b7f4c7d9a10", "mi-0123456789abcdef0")));
        assert_eq!(parse_job_id("aws.ssm.only"), None);
        assert_eq!(parse_job_id("other.prefix.a.b"), None);
    }

    #[test]
    fn reads_a_reply_shaped_like_the_real_agents() {
        let raw = r#"{"additionalInfo":{"agent":{"lang":"en-US","name":"amazon-ssm-agent","os":"linux","osver":"1","ver":"3.3.1"},
            "dateTime":"2024-10-21T12:34:56.789Z","runId":"","runtimeStatusCounts":{"Success":1}},
            "documentStatus":"Success","documentTraceOutput":"",
            "runtimeStatus":{"aws:runShellScript":{"status":"Success","code":0,"name":"aws:runShellScript",
            "output":"hi\n","startDateTime":"2024-10-21T12:34:55.000Z","endDateTime":"2024-10-21T12:34:56.000Z",
            "outputS3BucketName":"","outputS3KeyPrefix":"","stepName":"","standardOutput":"hi\n","standardError":""}}}"#;
        let reply: SendReplyPayload = serde_json::from_str(raw).expect("parses");
        assert_eq!(reply.document_status, "Success");
        let plugin = &reply.runtime_status.as_ref().expect("plugins")["aws:runShellScript"];
        assert_eq!(plugin.standard_output, "hi\n");
        let status_only: SendReplyPayload = serde_json::from_str(
            r#"{"additionalInfo":{"runtimeStatusCounts":null},"documentStatus":"InProgress","runtimeStatus":null}"#,
        )
        .expect("parses");
        assert!(status_only.runtime_status.is_none());
    }
}
