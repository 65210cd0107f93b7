//! Run Command over the control channel: `agent_job` frames in, `agent_job_ack` and
//! `agent_job_reply` frames out (agent-protocol.md §3.1, §3.3).
//!
//! A send-command job is acknowledged once its record is on disk (so a redelivery is a
//! duplicate even after a restart), answered at once with a status-only `InProgress` reply,
//! then run: its document is parsed, it waits for one of [`MAX_CONCURRENT_JOBS`] slots, and
//! its steps run in order. Each finished step gets an `InProgress` reply with that step's
//! result, and the job a final reply with the aggregated status. Those replies are stored
//! before they are sent and deleted when the control plane acknowledges them; unacknowledged
//! ones are resent whenever the channel (re)opens and every minute while it is up.
//!
//! A job that was running when the agent died is not run again: at start it gets a final
//! `Failed` reply saying so.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use corral_wire::mgs::{message_type, AgentJob, AgentJobAck, AgentJobReply, AgentJobReplyAck, ClientMessage};
use corral_wire::runcommand::{
    AdditionalInfo, AgentInfo, CancelCommandPayload, PluginRuntimeStatus, SendCommandPayload, SendReplyPayload,
    TOPIC_CANCEL_COMMAND, TOPIC_SEND_COMMAND,
};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use crate::document::{self, Step};
use crate::job_store::{epoch_ms, JobRecord, JobState, JobStore, PendingReply};
use crate::runner::{self, Outcome, Status};
use crate::state::StateDir;

/// Jobs that run at once; more wait for a slot (the SSM agent's default).
pub const MAX_CONCURRENT_JOBS: usize = 5;

/// How often unacknowledged replies are resent while the channel is up.
pub const RESEND_INTERVAL: Duration = Duration::from_secs(60);

/// Replies resent per round at most (the SSM agent's limit), oldest first.
const RESEND_BATCH: usize = 50;

/// The largest `agent_job_reply` payload sent. The agent's websocket accepts 4 MiB messages and
/// so should the control plane; a reply larger than this has its standard output and error cut
/// further (its `output` field is small anyway).
pub const MAX_REPLY_PAYLOAD: usize = (4 << 20) - 4096;

/// The `documentTraceOutput` of a job the agent was running when it stopped.
pub const INTERRUPTED_TRACE: &str = "corral-agent stopped or restarted while this command was running; \
     its outcome is unknown and it was not run again.";

/// Where replies go: the current connection's outgoing frames.
pub type Outbox = mpsc::UnboundedSender<Vec<u8>>;

/// What scripts are told about the machine (`AWS_SSM_INSTANCE_ID`, `AWS_SSM_REGION_NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnv {
    /// The managed instance ID.
    pub instance_id: String,
    /// The registration's region.
    pub region: String,
}

/// The `agent_job_ack` status codes the agent uses.
mod ack {
    pub const OK: (&str, &str) = ("200", "Successful");
    pub const UNEXPECTED_TOPIC: (&str, &str) = ("51403", "UnexpectedDocumentType");
    pub const DUPLICATE: (&str, &str) = ("51405", "DuplicateCommand");
    pub const PARSE_ERROR: (&str, &str) = ("51408", "AgentJobMessageParseError");
    pub const UNEXPECTED: (&str, &str) = ("51499", "UnexpectedError");
}

/// The Run Command side of the agent, shared by the control channel and the running jobs.
pub struct Jobs {
    store: JobStore,
    slots: Arc<Semaphore>,
    platform_type: &'static str,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    outbox: Option<Outbox>,
    /// Cancel switches of accepted jobs (queued or running), by job id.
    running: HashMap<String, watch::Sender<bool>>,
    /// Stored replies sent on the current connection, and when.
    sent: HashMap<String, Instant>,
    last_prune: Option<Instant>,
}

impl Jobs {
    /// Opens the job store in `dir` and gives every job that was running when the agent
    /// stopped its final `Failed` reply.
    pub fn open(dir: &StateDir) -> io::Result<Arc<Jobs>> {
        let store = JobStore::open(dir)?;
        store.prune();
        let jobs = Jobs {
            store,
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_JOBS)),
            platform_type: crate::platform::platform_type(),
            inner: Mutex::new(Inner::default()),
        };
        jobs.recover()?;
        Ok(Arc::new(jobs))
    }

    fn recover(&self) -> io::Result<()> {
        let finals: Vec<String> = self.store.replies()?.into_iter().filter(|r| r.is_final).map(|r| r.job_id).collect();
        for mut record in self.store.jobs()? {
            if record.state != JobState::Accepted {
                continue;
            }
            // A final reply stored just before the agent died only lacks the record update.
            if !finals.contains(&record.job_id) {
                tracing::warn!(job_id = %record.job_id, "a command was running when the agent stopped; reporting it as failed");
                let reply = status_only("Failed", INTERRUPTED_TRACE);
                self.store_reply(&record.job_id, reply, true)?;
            }
            record.state = JobState::Finished;
            record.updated_at_ms = epoch_ms();
            self.store.save_job(&record)?;
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` inconsistent in a way that matters
        // more than stopping Run Command altogether would.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The channel is up: replies go to `outbox`, and the stored ones are resent now.
    pub fn attach(&self, outbox: Outbox) {
        {
            let mut inner = self.lock();
            inner.outbox = Some(outbox);
            inner.sent.clear();
        }
        self.resend_pending();
    }

    /// The channel is down; replies are stored until it is up again.
    pub fn detach(&self) {
        let mut inner = self.lock();
        inner.outbox = None;
        inner.sent.clear();
    }

    /// Resends stored replies not sent on this connection within the last
    /// [`RESEND_INTERVAL`], and prunes old job records once an hour.
    pub fn resend_pending(&self) {
        let replies = match self.store.replies() {
            Ok(replies) => replies,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the stored replies");
                return;
            }
        };
        let now = Instant::now();
        let due: Vec<PendingReply> = {
            let inner = self.lock();
            replies
                .into_iter()
                .filter(|r| {
                    inner.sent.get(&r.message_id).is_none_or(|at| now.duration_since(*at) >= RESEND_INTERVAL / 2)
                })
                .take(RESEND_BATCH)
                .collect()
        };
        if !due.is_empty() {
            tracing::debug!(count = due.len(), "sending stored replies");
        }
        for reply in &due {
            self.transmit(reply);
        }
        let prune = {
            let mut inner = self.lock();
            let due = inner.last_prune.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(3600));
            if due {
                inner.last_prune = Some(now);
            }
            due
        };
        if prune {
            self.store.prune();
        }
    }

    /// Handles one frame from the control channel.
    pub fn handle_frame(self: &Arc<Self>, frame: &ClientMessage, env: &JobEnv) {
        match frame.message_type.as_str() {
            message_type::AGENT_JOB => self.handle_job(frame, env),
            message_type::AGENT_JOB_REPLY_ACK => self.handle_reply_ack(frame),
            other => tracing::debug!(message_type = other, "ignoring a control-channel message"),
        }
    }

    fn handle_reply_ack(&self, frame: &ClientMessage) {
        let ack: AgentJobReplyAck = match serde_json::from_slice(&frame.payload) {
            Ok(ack) => ack,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an agent_job_reply_ack that does not parse");
                return;
            }
        };
        // Only a UUID can name a stored reply; anything else cannot match one (nor a path).
        let Ok(id) = uuid::Uuid::parse_str(&ack.acknowledged_message_id) else {
            tracing::debug!(id = %ack.acknowledged_message_id, "ignoring a reply ack for a malformed message id");
            return;
        };
        let id = id.hyphenated().to_string();
        self.lock().sent.remove(&id);
        match self.store.remove_reply(&id) {
            Ok(true) => tracing::debug!(job_id = %ack.job_id, message_id = %id, "reply acknowledged"),
            Ok(false) => tracing::debug!(job_id = %ack.job_id, message_id = %id, "ack for a reply that is not stored"),
            Err(e) => tracing::warn!(error = %e, "cannot delete an acknowledged reply"),
        }
    }

    fn handle_job(self: &Arc<Self>, frame: &ClientMessage, env: &JobEnv) {
        let job: AgentJob = match serde_json::from_slice(&frame.payload) {
            Ok(job) => job,
            Err(e) => {
                tracing::warn!(error = %e, "an agent_job frame does not parse");
                // Acknowledged with whatever job id can be read, so the control plane learns why.
                let job_id = serde_json::from_slice::<serde_json::Value>(&frame.payload)
                    .ok()
                    .and_then(|v| v.get("JobId").and_then(|id| id.as_str()).map(str::to_string))
                    .unwrap_or_default();
                self.ack(frame, &job_id, ack::PARSE_ERROR);
                return;
            }
        };
        let job_id = job.job_id.clone();
        match self.store.job(&job_id) {
            Ok(Some(_)) => {
                tracing::info!(%job_id, "ignoring a job delivered again");
                self.ack(frame, &job_id, ack::DUPLICATE);
                return;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(%job_id, error = %e, "cannot read the job records");
                self.ack(frame, &job_id, ack::UNEXPECTED);
                return;
            }
        }
        if job.topic.starts_with(TOPIC_SEND_COMMAND) {
            let payload: SendCommandPayload = match serde_json::from_str(&job.content) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(%job_id, error = %e, "a send-command job does not parse");
                    self.ack(frame, &job_id, ack::PARSE_ERROR);
                    return;
                }
            };
            if !self.record(&job_id, &job.topic, JobState::Accepted) {
                self.ack(frame, &job_id, ack::UNEXPECTED);
                return;
            }
            let (cancel_tx, cancel_rx) = watch::channel(false);
            self.lock().running.insert(job_id.clone(), cancel_tx);
            self.ack(frame, &job_id, ack::OK);
            tracing::info!(%job_id, document = %payload.document_name, "running a command");
            self.send_unstored(&job_id, status_only("InProgress", ""));
            tokio::spawn(self.clone().execute(job_id, payload, env.clone(), cancel_rx));
        } else if job.topic.starts_with(TOPIC_CANCEL_COMMAND) {
            let payload: CancelCommandPayload = match serde_json::from_str(&job.content) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(%job_id, error = %e, "a cancel job does not parse");
                    self.ack(frame, &job_id, ack::PARSE_ERROR);
                    return;
                }
            };
            if !self.record(&job_id, &job.topic, JobState::Finished) {
                self.ack(frame, &job_id, ack::UNEXPECTED);
                return;
            }
            self.ack(frame, &job_id, ack::OK);
            let target = payload.cancel_message_id;
            match self.lock().running.get(&target) {
                Some(switch) => {
                    tracing::info!(job_id = %target, "cancelling a command");
                    let _ = switch.send(true);
                }
                None => tracing::info!(job_id = %target, "asked to cancel a command that is not running"),
            }
        } else {
            tracing::warn!(%job_id, topic = %job.topic, "ignoring a job of an unknown topic");
            self.ack(frame, &job_id, ack::UNEXPECTED_TOPIC);
        }
    }

    /// Records a new job; false (logged) when the disk refuses.
    fn record(&self, job_id: &str, topic: &str, state: JobState) -> bool {
        let now = epoch_ms();
        let record =
            JobRecord { job_id: job_id.into(), topic: topic.into(), state, accepted_at_ms: now, updated_at_ms: now };
        match self.store.save_job(&record) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(%job_id, error = %e, "cannot record a job; not running it");
                false
            }
        }
    }

    fn ack(&self, frame: &ClientMessage, job_id: &str, (code, message): (&str, &str)) {
        let ack = AgentJobAck {
            job_id: job_id.to_string(),
            acknowledged_message_id: frame.message_id_string(),
            created_date: millis_text(frame.created_date),
            status_code: code.to_string(),
            error_message: message.to_string(),
        };
        match serde_json::to_vec(&ack) {
            Ok(payload) => {
                self.send_frame(ClientMessage::new(message_type::AGENT_JOB_ACK, payload).encode());
            }
            Err(e) => tracing::error!(error = %e, "cannot encode an agent_job_ack"),
        }
    }

    fn send_frame(&self, bytes: Vec<u8>) -> bool {
        match &self.lock().outbox {
            Some(outbox) => outbox.send(bytes).is_ok(),
            None => false,
        }
    }

    /// Sends a reply that needs no ack (the first `InProgress`), if the channel is up.
    fn send_unstored(&self, job_id: &str, mut reply: SendReplyPayload) {
        let payload = reply_payload(job_id, &mut reply);
        self.send_frame(ClientMessage::new(message_type::AGENT_JOB_REPLY, payload.into_bytes()).encode());
    }

    /// Stores a reply that needs an ack, then sends it if the channel is up.
    fn send_stored(&self, job_id: &str, reply: SendReplyPayload, is_final: bool) {
        match self.store_reply(job_id, reply, is_final) {
            Ok(stored) => self.transmit(&stored),
            Err(e) => tracing::error!(%job_id, error = %e, "cannot store a reply; it is lost"),
        }
    }

    fn store_reply(&self, job_id: &str, mut reply: SendReplyPayload, is_final: bool) -> io::Result<PendingReply> {
        let stored = PendingReply {
            message_id: uuid::Uuid::new_v4().to_string(),
            job_id: job_id.to_string(),
            is_final,
            created_at_ms: self.store.next_ms(),
            payload: reply_payload(job_id, &mut reply),
        };
        self.store.save_reply(&stored)?;
        Ok(stored)
    }

    fn transmit(&self, reply: &PendingReply) {
        let Ok(id) = uuid::Uuid::parse_str(&reply.message_id) else { return };
        let mut frame = ClientMessage::new(message_type::AGENT_JOB_REPLY, reply.payload.as_bytes().to_vec());
        frame.message_id = *id.as_bytes();
        let mut inner = self.lock();
        if let Some(outbox) = &inner.outbox {
            if outbox.send(frame.encode()).is_ok() {
                inner.sent.insert(reply.message_id.clone(), Instant::now());
            }
        }
    }

    // === running a job ===

    async fn execute(
        self: Arc<Self>,
        job_id: String,
        payload: SendCommandPayload,
        env: JobEnv,
        cancel: watch::Receiver<bool>,
    ) {
        let final_reply = self.run_document(&job_id, &payload, &env, cancel).await;
        tracing::info!(%job_id, status = %final_reply.document_status, "command finished");
        // The final reply is stored before the record says finished: a crash in between leaves
        // a stored final reply, which recovery recognises.
        self.send_stored(&job_id, final_reply, true);
        let mut record = match self.store.job(&job_id) {
            Ok(Some(r)) => r,
            _ => JobRecord {
                job_id: job_id.clone(),
                topic: TOPIC_SEND_COMMAND.into(),
                state: JobState::Finished,
                accepted_at_ms: epoch_ms(),
                updated_at_ms: 0,
            },
        };
        record.state = JobState::Finished;
        record.updated_at_ms = epoch_ms();
        if let Err(e) = self.store.save_job(&record) {
            tracing::error!(%job_id, error = %e, "cannot mark a job finished");
        }
        self.lock().running.remove(&job_id);
        self.store.remove_work_dir(&job_id);
    }

    /// Runs the document and returns the final reply; sends the per-step replies on the way.
    async fn run_document(
        &self,
        job_id: &str,
        payload: &SendCommandPayload,
        env: &JobEnv,
        mut cancel: watch::Receiver<bool>,
    ) -> SendReplyPayload {
        let doc = match document::parse(&payload.document_content, &payload.parameters, self.platform_type) {
            Ok(doc) => doc,
            Err(trace) => {
                tracing::warn!(%job_id, error = %trace, "the command's document cannot run");
                return status_only("Failed", &trace);
            }
        };
        let slot = tokio::select! {
            slot = self.slots.clone().acquire_owned() => slot.ok(),
            () = cancelled(&mut cancel) => None,
        };
        let dir = match slot {
            Some(_) => match self.store.work_dir(job_id) {
                Ok(dir) => Some(dir),
                Err(e) => return status_only("Failed", &format!("cannot create the job's directory: {e}")),
            },
            None => None,
        };
        let vars = vec![
            ("AWS_SSM_INSTANCE_ID".to_string(), env.instance_id.clone()),
            ("AWS_SSM_REGION_NAME".to_string(), env.region.clone()),
        ];
        let mut results: Vec<(&Step, Outcome)> = Vec::with_capacity(doc.steps.len());
        // Set once later steps must not run: (their status, why).
        let mut stop: Option<(Status, String)> =
            if dir.is_none() { Some((Status::Cancelled, String::new())) } else { None };
        for (i, step) in doc.steps.iter().enumerate() {
            if stop.is_none() && *cancel.borrow() {
                stop = Some((Status::Cancelled, String::new()));
            }
            let (outcome, ran) = match (&stop, &step.skip, &dir) {
                (Some((status, why)), _, _) => {
                    let code = if *status == Status::Cancelled { runner::CANCELLED_CODE } else { 0 };
                    (Outcome::not_run(*status, code, why), false)
                }
                (None, Some(reason), _) => (Outcome::not_run(Status::Skipped, 0, reason), true),
                (None, None, Some(dir)) => {
                    let mut merged: Option<Outcome> = None;
                    for (j, script) in step.scripts.iter().enumerate() {
                        let stem = format!("step{i}-{j}");
                        let run = runner::ScriptRun {
                            kind: step.kind,
                            lines: &script.lines,
                            working_directory: script.working_directory.as_deref(),
                            timeout: script.timeout,
                            dir,
                            file_stem: &stem,
                            env: &vars,
                        };
                        let outcome = runner::run(&run, &mut cancel).await;
                        let halt = matches!(outcome.status, Status::Cancelled | Status::TimedOut);
                        match &mut merged {
                            Some(m) => m.merge(outcome),
                            None => merged = Some(outcome),
                        }
                        if halt {
                            break;
                        }
                    }
                    (merged.unwrap_or_else(|| Outcome::not_run(Status::Success, 0, "")), true)
                }
                // No directory means no slot: cancelled while queued, handled by `stop`.
                (None, None, None) => (Outcome::not_run(Status::Cancelled, runner::CANCELLED_CODE, ""), false),
            };
            if outcome.status == Status::Cancelled && stop.is_none() {
                stop = Some((Status::Cancelled, String::new()));
            }
            if outcome.status == Status::Failed && step.exit_on_failure && stop.is_none() {
                stop =
                    Some((Status::Skipped, format!("Step skipped: step {} failed and has onFailure: exit", step.id)));
            }
            results.push((step, outcome));
            if ran {
                let entry = plugin_entry(step, &results[results.len() - 1].1, payload);
                let mut runtime = BTreeMap::new();
                runtime.insert(step.id.clone(), entry);
                let counts = counts(results.iter().map(|(_, o)| o.status));
                self.send_stored(job_id, with_plugins("InProgress", runtime, counts), false);
            }
        }
        let status = Status::aggregate(results.iter().map(|(_, o)| o.status));
        let mut runtime = BTreeMap::new();
        if let [(step, outcome)] = results.as_slice() {
            runtime.insert(step.id.clone(), plugin_entry(step, outcome, payload));
        }
        with_plugins(status.as_str(), runtime, counts(results.iter().map(|(_, o)| o.status)))
    }
}

/// Completes when `cancel` turns true; never if its sender is gone.
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

// === replies ===

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (now, if out of range).
fn millis_text(ms: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    corral_wire::time::format_iso8601_millis(t)
}

fn agent_info() -> AgentInfo {
    AgentInfo {
        lang: "en-US".into(),
        name: crate::agent::AGENT_NAME.into(),
        os: std::env::consts::OS.into(),
        osver: "1".into(),
        ver: env!("CARGO_PKG_VERSION").into(),
    }
}

fn additional_info(counts: Option<BTreeMap<String, i64>>) -> AdditionalInfo {
    AdditionalInfo {
        agent: agent_info(),
        date_time: corral_wire::time::format_iso8601_millis(OffsetDateTime::now_utc()),
        run_id: String::new(),
        runtime_status_counts: counts,
    }
}

/// A reply with a document status only (no plugin results, counts null).
fn status_only(status: &str, trace: &str) -> SendReplyPayload {
    SendReplyPayload {
        additional_info: additional_info(None),
        document_status: status.into(),
        document_trace_output: trace.into(),
        runtime_status: None,
    }
}

fn with_plugins(
    status: &str,
    runtime: BTreeMap<String, PluginRuntimeStatus>,
    counts: BTreeMap<String, i64>,
) -> SendReplyPayload {
    SendReplyPayload {
        additional_info: additional_info(Some(counts)),
        document_status: status.into(),
        document_trace_output: String::new(),
        runtime_status: Some(runtime),
    }
}

fn counts(statuses: impl Iterator<Item = Status>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for s in statuses {
        *out.entry(s.as_str().to_string()).or_insert(0) += 1;
    }
    out
}

fn plugin_entry(step: &Step, outcome: &Outcome, payload: &SendCommandPayload) -> PluginRuntimeStatus {
    PluginRuntimeStatus {
        status: outcome.status.as_str().into(),
        // The SSM agent never reports a failure with code 0.
        code: if outcome.status == Status::Failed && outcome.code == 0 { 1 } else { outcome.code },
        name: step.kind.name().into(),
        output: outcome.output(),
        start_date_time: corral_wire::time::format_iso8601_millis(outcome.started),
        end_date_time: corral_wire::time::format_iso8601_millis(outcome.ended),
        output_s3_bucket_name: payload.output_s3_bucket_name.clone(),
        output_s3_key_prefix: payload.output_s3_key_prefix.clone(),
        step_name: step.step_name.clone(),
        standard_output: outcome.stdout.clone(),
        standard_error: outcome.stderr.clone(),
    }
}

/// The `agent_job_reply` payload for `reply`, at most [`MAX_REPLY_PAYLOAD`] bytes: when it is
/// larger (JSON escaping of escaped JSON can multiply odd output), the standard output and error
/// are halved until it fits.
fn reply_payload(job_id: &str, reply: &mut SendReplyPayload) -> String {
    const NOTE: &str = "\n--output truncated to fit the reply--\n";
    for _ in 0..24 {
        let content = serde_json::to_string(&*reply).unwrap_or_default();
        let wrapped = AgentJobReply {
            schema_version: 1,
            job_id: job_id.to_string(),
            content,
            topic: TOPIC_SEND_COMMAND.to_string(),
        };
        let payload = serde_json::to_string(&wrapped).unwrap_or_default();
        if payload.len() <= MAX_REPLY_PAYLOAD {
            return payload;
        }
        for entry in reply.runtime_status.iter_mut().flat_map(|m| m.values_mut()) {
            for text in [&mut entry.standard_output, &mut entry.standard_error] {
                let half = runner::cut_utf8(text.trim_end_matches(NOTE), text.len() / 2).to_string();
                *text = if half.is_empty() { String::new() } else { half + NOTE };
            }
        }
    }
    // Unreachable in practice: the outputs are empty long before.
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const INSTANCE: &str = "mi-0123456789abcdef0";

    fn env() -> JobEnv {
        JobEnv { instance_id: INSTANCE.into(), region: "us-east-1".into() }
    }

    fn job_frame(job_id: &str, topic: &str, content: &str) -> ClientMessage {
        let job = AgentJob { content: content.into(), job_id: job_id.into(), topic: topic.into(), schema_version: 1 };
        let mut frame = ClientMessage::new(message_type::AGENT_JOB, serde_json::to_vec(&job).expect("json"));
        frame.created_date = 1_764_064_800_123;
        frame
    }

    #[cfg_attr(not(unix), allow(dead_code))]
    fn shell_command(command_id: &str, commands: &[&str], timeout: &str) -> String {
        json!({
            "CommandId": command_id,
            "DocumentName": "AWS-RunShellScript",
            "DocumentContent": {
                "schemaVersion": "1.2",
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
            },
            "Parameters": {"commands": commands, "executionTimeout": [timeout]},
            "OutputS3BucketName": "",
            "OutputS3KeyPrefix": "",
            "CloudWatchLogGroupName": "",
            "CloudWatchOutputEnabled": "false"
        })
        .to_string()
    }

    /// A decoded outgoing frame.
    #[derive(Debug)]
    #[allow(clippy::large_enum_variant)] // test-only, a handful at a time
    enum Out {
        Ack(AgentJobAck),
        Reply { message_id: String, job_id: String, reply: SendReplyPayload },
    }

    fn decode(bytes: &[u8]) -> Out {
        let frame = ClientMessage::decode(bytes).expect("frame");
        match frame.message_type.as_str() {
            message_type::AGENT_JOB_ACK => Out::Ack(serde_json::from_slice(&frame.payload).expect("ack")),
            message_type::AGENT_JOB_REPLY => {
                let raw: Value = serde_json::from_slice(&frame.payload).expect("reply json");
                assert_eq!(raw["schemaVersion"], 1);
                assert_eq!(raw["topic"], TOPIC_SEND_COMMAND);
                let wrapped: AgentJobReply = serde_json::from_value(raw).expect("reply");
                let reply = serde_json::from_str(&wrapped.content).expect("content");
                Out::Reply { message_id: frame.message_id_string(), job_id: wrapped.job_id, reply }
            }
            other => panic!("unexpected frame {other}"),
        }
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Out {
        let bytes =
            tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("a frame in time").expect("open");
        decode(&bytes)
    }

    fn expect_ack(out: Out, code: &str) -> AgentJobAck {
        match out {
            Out::Ack(ack) => {
                assert_eq!(ack.status_code, code, "{ack:?}");
                ack
            }
            other => panic!("expected an ack, got {other:?}"),
        }
    }

    fn expect_reply(out: Out) -> (String, String, SendReplyPayload) {
        match out {
            Out::Reply { message_id, job_id, reply } => (message_id, job_id, reply),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn reply_ack(job_id: &str, message_id: &str) -> ClientMessage {
        let ack = AgentJobReplyAck { job_id: job_id.into(), acknowledged_message_id: message_id.into() };
        ClientMessage::new(message_type::AGENT_JOB_REPLY_ACK, serde_json::to_vec(&ack).expect("json"))
    }

    fn attached(dir: &StateDir) -> (Arc<Jobs>, mpsc::UnboundedReceiver<Vec<u8>>) {
        let jobs = Jobs::open(dir).expect("open");
        let (tx, rx) = mpsc::unbounded_channel();
        jobs.attach(tx);
        (jobs, rx)
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_command_runs_and_reports() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        let (jobs, mut rx) = attached(&dir);
        let job_id = corral_wire::runcommand::job_id("c-1", INSTANCE);
        let frame = job_frame(&job_id, TOPIC_SEND_COMMAND, &shell_command("c-1", &["echo hi", "echo err >&2"], "60"));
        jobs.handle_frame(&frame, &env());

        let ack = expect_ack(next(&mut rx).await, "200");
        assert_eq!(ack.job_id, job_id);
        assert_eq!(ack.error_message, "Successful");
        assert_eq!(ack.acknowledged_message_id, frame.message_id_string());
        assert_eq!(ack.created_date, "2025-11-25T10:00:00.123Z");

        let (_, id, first) = expect_reply(next(&mut rx).await);
        assert_eq!((id.as_str(), first.document_status.as_str()), (job_id.as_str(), "InProgress"));
        assert!(first.runtime_status.is_none() && first.additional_info.runtime_status_counts.is_none());
        assert_eq!(first.additional_info.agent.name, "corral-agent");

        let (plugin_msg, _, plugin) = expect_reply(next(&mut rx).await);
        assert_eq!(plugin.document_status, "InProgress");
        let entry = &plugin.runtime_status.as_ref().expect("plugins")["aws:runShellScript"];
        assert_eq!((entry.status.as_str(), entry.code), ("Success", 0));
        assert_eq!(entry.output, "hi\n\n----------ERROR-------\nerr\n");
        assert_eq!((entry.standard_output.as_str(), entry.standard_error.as_str()), ("hi\n", "err\n"));
        assert_eq!(entry.name, "aws:runShellScript");

        let (final_msg, _, last) = expect_reply(next(&mut rx).await);
        assert_eq!(last.document_status, "Success");
        assert_eq!(last.runtime_status.as_ref().expect("plugins").len(), 1);
        assert_eq!(last.additional_info.runtime_status_counts, Some(BTreeMap::from([("Success".to_string(), 1)])));

        // Both stored replies wait for their acks; the acks delete them.
        let store = JobStore::open(&dir).expect("store");
        assert_eq!(store.replies().expect("list").len(), 2);
        jobs.handle_frame(&reply_ack(&job_id, &plugin_msg), &env());
        jobs.handle_frame(&reply_ack(&job_id, &final_msg.to_uppercase()), &env());
        assert_eq!(store.replies().expect("list"), vec![]);
        assert_eq!(store.job(&job_id).expect("read").map(|r| r.state), Some(JobState::Finished));

        // A redelivery is a duplicate and runs nothing; so is one after a restart.
        jobs.handle_frame(&frame, &env());
        expect_ack(next(&mut rx).await, "51405");
        drop(jobs);
        let (jobs, mut rx) = attached(&dir);
        jobs.handle_frame(&frame, &env());
        let ack = expect_ack(next(&mut rx).await, "51405");
        assert_eq!(ack.error_message, "DuplicateCommand");
        assert!(rx.try_recv().is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn several_steps_and_failures() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (jobs, mut rx) = attached(&StateDir::new(tmp.path()));
        let content = json!({
            "CommandId": "c-2", "DocumentName": "Custom", "Parameters": {},
            "DocumentContent": {"schemaVersion": "2.2", "mainSteps": [
                {"action": "aws:runShellScript", "name": "one", "inputs": {"runCommand": ["echo one"]}},
                {"action": "aws:runShellScript", "name": "two", "onFailure": "exit", "inputs": {"runCommand": ["exit 4"]}},
                {"action": "aws:runShellScript", "name": "three", "inputs": {"runCommand": ["echo three"]}}
            ]}
        })
        .to_string();
        jobs.handle_frame(&job_frame("aws.ssm.c-2.mi-1", TOPIC_SEND_COMMAND, &content), &env());
        expect_ack(next(&mut rx).await, "200");
        expect_reply(next(&mut rx).await);
        let (_, _, one) = expect_reply(next(&mut rx).await);
        assert_eq!(one.runtime_status.as_ref().expect("plugins").keys().collect::<Vec<_>>(), ["one"]);
        assert_eq!(one.runtime_status.as_ref().expect("plugins")["one"].step_name, "one");
        let (_, _, two) = expect_reply(next(&mut rx).await);
        let entry = &two.runtime_status.as_ref().expect("plugins")["two"];
        assert_eq!((entry.status.as_str(), entry.code), ("Failed", 4));
        let (_, _, last) = expect_reply(next(&mut rx).await);
        assert_eq!(last.document_status, "Failed");
        // Several plugins: the final reply carries only the counts.
        assert_eq!(last.runtime_status, Some(BTreeMap::new()));
        assert_eq!(
            last.additional_info.runtime_status_counts,
            Some(BTreeMap::from([("Failed".into(), 1), ("Skipped".into(), 1), ("Success".into(), 1)]))
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn at_most_five_run_at_once() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (jobs, mut rx) = attached(&StateDir::new(tmp.path()));
        let n = MAX_CONCURRENT_JOBS + 1;
        for i in 0..n {
            let id = format!("aws.ssm.c-q{i}.mi-1");
            jobs.handle_frame(&job_frame(&id, TOPIC_SEND_COMMAND, &shell_command("q", &["sleep 1"], "60")), &env());
        }
        let mut finals = Vec::new();
        while finals.len() < n {
            if let Out::Reply { reply, .. } = next(&mut rx).await {
                if reply.document_status == "Success" {
                    let entry = reply.runtime_status.expect("plugins").remove("aws:runShellScript").expect("plugin");
                    finals.push((entry.start_date_time, entry.end_date_time));
                }
            }
        }
        finals.sort();
        // The sixth started only when one of the first five had ended.
        let first_end = finals[..MAX_CONCURRENT_JOBS].iter().map(|(_, end)| end.clone()).min().expect("ends");
        assert!(finals[MAX_CONCURRENT_JOBS].0 >= first_end, "{finals:?}");
        assert!(finals[MAX_CONCURRENT_JOBS - 1].0 < first_end, "{finals:?}");
    }

    #[tokio::test]
    async fn bad_jobs() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (jobs, mut rx) = attached(&StateDir::new(tmp.path()));
        // Not JSON at all.
        let mut frame = ClientMessage::new(message_type::AGENT_JOB, b"{nope".to_vec());
        frame.created_date = 1;
        jobs.handle_frame(&frame, &env());
        let ack = expect_ack(next(&mut rx).await, "51408");
        assert_eq!(ack.created_date, "1970-01-01T00:00:00.001Z");
        // A send-command payload that does not parse.
        jobs.handle_frame(&job_frame("aws.ssm.c-3.mi-1", TOPIC_SEND_COMMAND, "{\"CommandId\":5}"), &env());
        assert_eq!(expect_ack(next(&mut rx).await, "51408").job_id, "aws.ssm.c-3.mi-1");
        // A document that cannot run: accepted, then a status-only Failed.
        let content = json!({"CommandId": "c-4", "DocumentName": "X",
            "DocumentContent": {"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runDocument", "name": "n", "inputs": {}}]}})
        .to_string();
        jobs.handle_frame(&job_frame("aws.ssm.c-4.mi-1", TOPIC_SEND_COMMAND, &content), &env());
        expect_ack(next(&mut rx).await, "200");
        assert_eq!(expect_reply(next(&mut rx).await).2.document_status, "InProgress");
        let (_, _, failed) = expect_reply(next(&mut rx).await);
        assert_eq!(failed.document_status, "Failed");
        assert!(failed.document_trace_output.contains("aws:runDocument"), "{failed:?}");
        assert!(failed.runtime_status.is_none());
        // An unknown topic.
        jobs.handle_frame(&job_frame("aws.ssm.c-5.mi-1", "aws.ssm.somethingElse", "{}"), &env());
        expect_ack(next(&mut rx).await, "51403");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn cancel_stops_a_running_command() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (jobs, mut rx) = attached(&StateDir::new(tmp.path()));
        let job_id = "aws.ssm.c-6.mi-1";
        jobs.handle_frame(&job_frame(job_id, TOPIC_SEND_COMMAND, &shell_command("c-6", &["sleep 300"], "600")), &env());
        expect_ack(next(&mut rx).await, "200");
        expect_reply(next(&mut rx).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cancel = json!({"CancelMessageId": job_id}).to_string();
        let cancel_frame = job_frame("aws.ssm.cancel-1.mi-1", TOPIC_CANCEL_COMMAND, &cancel);
        jobs.handle_frame(&cancel_frame, &env());
        expect_ack(next(&mut rx).await, "200");
        let (_, _, plugin) = expect_reply(next(&mut rx).await);
        assert_eq!(plugin.runtime_status.as_ref().expect("plugins")["aws:runShellScript"].status, "Cancelled");
        let (_, _, last) = expect_reply(next(&mut rx).await);
        assert_eq!(last.document_status, "Cancelled");
        // The cancel job itself is remembered too.
        jobs.handle_frame(&cancel_frame, &env());
        expect_ack(next(&mut rx).await, "51405");
    }

    #[tokio::test]
    async fn interrupted_jobs_fail_once_and_stored_replies_come_back() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        {
            let store = JobStore::open(&dir).expect("store");
            let accepted = |id: &str| JobRecord {
                job_id: id.into(),
                topic: TOPIC_SEND_COMMAND.into(),
                state: JobState::Accepted,
                accepted_at_ms: epoch_ms(),
                updated_at_ms: epoch_ms(),
            };
            // Killed mid-command.
            store.save_job(&accepted("aws.ssm.killed.mi-1")).expect("save");
            // Killed between storing its final reply and marking it finished.
            store.save_job(&accepted("aws.ssm.almost.mi-1")).expect("save");
            let almost = PendingReply {
                message_id: uuid::Uuid::new_v4().to_string(),
                job_id: "aws.ssm.almost.mi-1".into(),
                is_final: true,
                created_at_ms: store.next_ms(),
                payload: "{\"schemaVersion\":1,\"jobId\":\"aws.ssm.almost.mi-1\",\"content\":\"{\\\"documentStatus\\\":\\\"Success\\\"}\",\"topic\":\"aws.ssm.sendCommand\"}".into(),
            };
            store.save_reply(&almost).expect("save");
        }
        let jobs = Jobs::open(&dir).expect("open");
        // Not attached: nothing is sent, everything is stored.
        let store = JobStore::open(&dir).expect("store");
        let stored = store.replies().expect("list");
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(stored.iter().all(|r| r.is_final));
        for id in ["aws.ssm.killed.mi-1", "aws.ssm.almost.mi-1"] {
            assert_eq!(store.job(id).expect("read").map(|r| r.state), Some(JobState::Finished), "{id}");
        }
        drop(jobs);
        // A second start adds nothing, and the stored replies go out when the channel opens.
        let (jobs, mut rx) = attached(&dir);
        let mut seen = BTreeMap::new();
        for _ in 0..2 {
            let (message_id, job_id, reply) = expect_reply(next(&mut rx).await);
            seen.insert(job_id, (message_id, reply));
        }
        assert!(rx.try_recv().is_err());
        let killed = &seen["aws.ssm.killed.mi-1"].1;
        assert_eq!(killed.document_status, "Failed");
        assert_eq!(killed.document_trace_output, INTERRUPTED_TRACE);
        assert_eq!(seen["aws.ssm.almost.mi-1"].1.document_status, "Success");
        // Unacked replies are not resent within the interval, but are after a reconnect.
        jobs.resend_pending();
        assert!(rx.try_recv().is_err());
        jobs.detach();
        let (tx, mut rx) = mpsc::unbounded_channel();
        jobs.attach(tx);
        let (again, _, _) = expect_reply(next(&mut rx).await);
        expect_reply(next(&mut rx).await);
        assert!(seen.values().any(|(id, _)| *id == again), "a resend keeps its message id");
        for (job_id, (message_id, _)) in &seen {
            jobs.handle_frame(&reply_ack(job_id, message_id), &env());
        }
        assert_eq!(store.replies().expect("list"), vec![]);
    }

    #[test]
    fn huge_replies_are_cut_to_fit() {
        let mut entry = PluginRuntimeStatus { standard_output: "\u{1}".repeat(1 << 20), ..Default::default() };
        entry.standard_error = "\"".repeat(1 << 20);
        let mut reply = with_plugins("Success", BTreeMap::from([("p".to_string(), entry)]), BTreeMap::new());
        let payload = reply_payload("aws.ssm.c.mi-1", &mut reply);
        assert!(payload.len() <= MAX_REPLY_PAYLOAD && payload.len() > MAX_REPLY_PAYLOAD / 4, "{}", payload.len());
        let wrapped: AgentJobReply = serde_json::from_str(&payload).expect("json");
        let back: SendReplyPayload = serde_json::from_str(&wrapped.content).expect("content");
        assert!(back.runtime_status.expect("plugins")["p"]
            .standard_output
            .ends_with("--output truncated to fit the reply--\n"));
    }
}
