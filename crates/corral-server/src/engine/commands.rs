//! The Run Command scheduler: hands invocations to agents under `MaxConcurrency`, stops on
//! `MaxErrors`, enforces the delivery and execution timeouts, and applies the agents' acks and
//! replies.
//!
//! The store is the source of truth and every change is a compare-and-set on an invocation's
//! status, so the scheduler, agent replies and CancelCommand can race (and, later, several
//! replicas can run this loop) without losing or repeating work. The loop runs when something
//! happens (a command sent, a reply, a channel opened) and at least every
//! [`SWEEP_INTERVAL`], which also makes a restarted server pick up where it stopped: commands
//! stay `active` in the store until every invocation is terminal.

use std::sync::Arc;
use std::time::Duration;

use corral_store::{Command, CommandInvocation, InvocationUpdate, PluginResult, Store};
use corral_wire::mgs::{message_type, AgentJob, AgentJobAck, AgentJobReply, ClientMessage};
use corral_wire::runcommand::{self, CancelCommandPayload, PluginRuntimeStatus, SendReplyPayload};
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::hub::{ControlHub, Job};
use crate::services::ssm::commands::rollup::{self, details, status};

/// The longest the scheduler sleeps between sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How long a delivered job may go unacknowledged before it is delivered again.
pub const ACK_WAIT: time::Duration = time::Duration::seconds(30);
/// How long past its execution timeout a job may stay silent before the server gives up on
/// it: the agent enforces the timeout itself and reports; this only ends invocations whose
/// agent vanished.
pub const EXECUTION_GRACE: time::Duration = time::Duration::seconds(60);
/// How long a cancelled job may stay `Cancelling` without word from its agent.
pub const CANCEL_GRACE: time::Duration = time::Duration::seconds(60);
/// Active commands looked at per sweep.
const SWEEP_BATCH: usize = 500;

/// The statuses from which an invocation may still change.
const OPEN: &[&str] = &[status::PENDING, status::IN_PROGRESS, "Delayed", status::CANCELLING];

/// The scheduler of this replica.
pub struct CommandEngine {
    store: Arc<dyn Store>,
    hub: Arc<ControlHub>,
    wake: Notify,
}

impl CommandEngine {
    /// A scheduler over `store`, delivering through `hub`.
    pub fn new(store: Arc<dyn Store>, hub: Arc<ControlHub>) -> Self {
        CommandEngine { store, hub, wake: Notify::new() }
    }

    /// Asks for a sweep now (a command was sent, a slot freed, an agent connected).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the scheduler until the process ends.
    pub fn spawn(self: &Arc<Self>) {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = engine.sweep().await {
                    tracing::warn!(error = %e, "command sweep failed; retrying");
                }
                let _ = tokio::time::timeout(SWEEP_INTERVAL, engine.wake.notified()).await;
            }
        });
    }

    /// One pass over every active command.
    pub async fn sweep(&self) -> Result<(), corral_store::StoreError> {
        let commands = self.store.active_commands(SWEEP_BATCH).await?;
        for command in commands {
            self.advance(&command).await?;
        }
        Ok(())
    }

    /// Moves one command along: timeouts, the error budget, cancellation, then dispatch.
    async fn advance(&self, command: &Command) -> Result<(), corral_store::StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut invocations = self.store.command_invocations(&command.command_id).await?;
        let target = invocations.len() as u64;
        let delivery_deadline = command.requested_at + time::Duration::seconds(command.timeout_seconds);
        let execution_limit = time::Duration::seconds(command.execution_timeout_seconds);

        for inv in invocations.iter_mut() {
            match inv.status.as_str() {
                // Not delivered in time.
                status::PENDING | "Delayed" if now >= delivery_deadline => {
                    self.finish(inv, &[status::PENDING, "Delayed"], status::TIMED_OUT, details::DELIVERY_TIMED_OUT, now)
                        .await?
                }
                status::IN_PROGRESS if inv.acked_at.is_none() => {
                    let sent = inv.dispatched_at.unwrap_or(command.requested_at);
                    if now >= delivery_deadline {
                        self.finish(inv, &[status::IN_PROGRESS], status::TIMED_OUT, details::DELIVERY_TIMED_OUT, now)
                            .await?
                    } else if now - sent >= ACK_WAIT {
                        // Never acknowledged: deliver again (the agent ignores a job it has seen).
                        let update = InvocationUpdate {
                            status: status::PENDING.into(),
                            status_details: details::PENDING.into(),
                            dispatched_at: Some(None),
                            ..Default::default()
                        };
                        self.set(inv, &[status::IN_PROGRESS], update).await?
                    } else {
                        false
                    }
                }
                // The agent went silent past the execution timeout.
                status::IN_PROGRESS => {
                    let started = inv.started_at.or(inv.acked_at).or(inv.dispatched_at).unwrap_or(command.requested_at);
                    if now - started >= execution_limit + EXECUTION_GRACE {
                        self.finish(inv, &[status::IN_PROGRESS], status::TIMED_OUT, details::EXECUTION_TIMED_OUT, now)
                            .await?
                    } else {
                        false
                    }
                }
                status::CANCELLING => {
                    let since = inv.dispatched_at.unwrap_or(command.requested_at);
                    let cancel_seen = now - since >= execution_limit + EXECUTION_GRACE;
                    if cancel_seen || !self.hub.is_connected(&inv.instance_id) && now - since >= CANCEL_GRACE {
                        self.finish(inv, &[status::CANCELLING], status::CANCELLED, details::CANCELLED, now).await?
                    } else {
                        false
                    }
                }
                _ => false,
            };
        }

        // Cancelled by its caller, or too many errors: nothing more is sent.
        let errors =
            invocations.iter().filter(|i| rollup::counts_as_error(&i.status, &i.status_details)).count() as u64;
        let over_budget = errors > rollup::error_budget(&command.max_errors, target);
        if command.cancel_requested || over_budget {
            let (to_status, to_details) = if command.cancel_requested {
                (status::CANCELLED, details::CANCELLED)
            } else {
                (status::CANCELLED, details::TERMINATED)
            };
            for inv in invocations.iter_mut().filter(|i| i.status == status::PENDING || i.status == "Delayed") {
                self.finish(inv, &[status::PENDING, "Delayed"], to_status, to_details, now).await?;
            }
        }

        // Dispatch under MaxConcurrency.
        if !command.cancel_requested && !over_budget {
            let limit = rollup::concurrency_limit(&command.max_concurrency, target);
            let mut running = invocations
                .iter()
                .filter(|i| i.status == status::IN_PROGRESS || i.status == status::CANCELLING)
                .count() as u64;
            for inv in invocations.iter_mut().filter(|i| i.status == status::PENDING) {
                if running >= limit {
                    break;
                }
                if !self.hub.is_connected(&inv.instance_id) {
                    continue;
                }
                if self.dispatch(command, inv, now).await? {
                    running += 1;
                }
            }
        }

        if invocations.iter().all(|i| rollup::is_terminal(&i.status)) {
            self.store.set_command_active(&command.command_id, false).await?;
        }
        Ok(())
    }

    /// Hands one pending invocation to its agent's channel.
    async fn dispatch(
        &self,
        command: &Command,
        inv: &mut CommandInvocation,
        now: OffsetDateTime,
    ) -> Result<bool, corral_store::StoreError> {
        let update = InvocationUpdate {
            status: status::IN_PROGRESS.into(),
            status_details: details::IN_PROGRESS.into(),
            dispatched_at: Some(Some(now)),
            acked_at: Some(None),
            count_delivery: true,
            ..Default::default()
        };
        if !self.set(inv, &[status::PENDING], update).await? {
            return Ok(false);
        }
        let job = Job {
            topic: runcommand::TOPIC_SEND_COMMAND.to_string(),
            job_id: runcommand::job_id(&command.command_id, &inv.instance_id),
            content: command.payload_json.clone(),
            created: now,
        };
        if self.hub.send(&inv.instance_id, job) {
            tracing::debug!(command_id = %command.command_id, instance_id = %inv.instance_id, "job delivered");
            return Ok(true);
        }
        // The channel went away between the check and the send: back to pending.
        let back = InvocationUpdate {
            status: status::PENDING.into(),
            status_details: details::PENDING.into(),
            dispatched_at: Some(None),
            ..Default::default()
        };
        self.set(inv, &[status::IN_PROGRESS], back).await?;
        Ok(false)
    }

    /// Applies `update` if the invocation is still in one of `from`; keeps `inv` in step.
    async fn set(
        &self,
        inv: &mut CommandInvocation,
        from: &[&str],
        update: InvocationUpdate,
    ) -> Result<bool, corral_store::StoreError> {
        let applied = self.store.update_invocation(&inv.command_id, &inv.instance_id, from, &update).await?;
        if applied {
            inv.status = update.status.clone();
            inv.status_details = update.status_details.clone();
            if let Some(d) = update.dispatched_at {
                inv.dispatched_at = d;
            }
            if let Some(a) = update.acked_at {
                inv.acked_at = a;
            }
        } else if let Some(fresh) =
            self.store.get_invocation(&inv.account_id, &inv.region, &inv.command_id, &inv.instance_id).await?
        {
            *inv = fresh;
        }
        Ok(applied)
    }

    async fn finish(
        &self,
        inv: &mut CommandInvocation,
        from: &[&str],
        to_status: &str,
        to_details: &str,
        now: OffsetDateTime,
    ) -> Result<bool, corral_store::StoreError> {
        let update = InvocationUpdate {
            status: to_status.into(),
            status_details: to_details.into(),
            finished_at: Some(now),
            ..Default::default()
        };
        self.set(inv, from, update).await
    }

    // === what agents say ===

    /// An `agent_job_ack` from `instance_id`'s channel.
    pub async fn on_ack(&self, instance_id: &str, ack: &AgentJobAck) -> Result<(), corral_store::StoreError> {
        let Some((command_id, job_instance)) = runcommand::parse_job_id(&ack.job_id) else { return Ok(()) };
        if job_instance != instance_id {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        match ack.status_code.as_str() {
            // Accepted, or already known to the agent (a redelivery): either way it has it.
            "200" | "51405" => {
                let update = InvocationUpdate {
                    status: status::IN_PROGRESS.into(),
                    status_details: details::IN_PROGRESS.into(),
                    acked_at: Some(Some(now)),
                    ..Default::default()
                };
                self.store.update_invocation(command_id, instance_id, &[status::IN_PROGRESS], &update).await?;
            }
            // The agent refused the job for good (it cannot parse or run it).
            code => {
                let update = InvocationUpdate {
                    status: status::FAILED.into(),
                    status_details: details::FAILED.into(),
                    finished_at: Some(now),
                    trace_output: Some(format!("The agent refused the command: {} ({code})", ack.error_message)),
                    ..Default::default()
                };
                self.store
                    .update_invocation(command_id, instance_id, &[status::IN_PROGRESS, status::PENDING], &update)
                    .await?;
                self.wake();
            }
        }
        Ok(())
    }

    /// An `agent_job_reply` from `instance_id`'s channel. Returns once the reply is stored
    /// (the caller then acknowledges it to the agent) or known to be for nothing it can apply.
    pub async fn on_reply(&self, instance_id: &str, reply: &AgentJobReply) -> Result<(), corral_store::StoreError> {
        let Some((command_id, job_instance)) = runcommand::parse_job_id(&reply.job_id) else { return Ok(()) };
        if job_instance != instance_id || !reply.topic.starts_with(runcommand::TOPIC_SEND_COMMAND) {
            // Results of cancel jobs carry nothing to store: the cancelled job reports itself.
            return Ok(());
        }
        let Ok(payload) = serde_json::from_str::<SendReplyPayload>(&reply.content) else {
            tracing::info!(%instance_id, job_id = %reply.job_id, "unparsable reply ignored");
            return Ok(());
        };
        let now = OffsetDateTime::now_utc();
        let plugins: Vec<PluginResult> = payload
            .runtime_status
            .as_ref()
            .map(|m| m.iter().map(|(id, p)| plugin_result(id, p)).collect())
            .unwrap_or_default();
        let update = match payload.document_status.as_str() {
            "InProgress" | "Pending" => InvocationUpdate {
                status: status::IN_PROGRESS.into(),
                status_details: details::IN_PROGRESS.into(),
                acked_at: Some(Some(now)),
                started_at: plugins.is_empty().then_some(now),
                plugins,
                ..Default::default()
            },
            other => {
                let (to_status, to_details) = final_status(other);
                let response_code = payload
                    .runtime_status
                    .as_ref()
                    .and_then(|m| m.values().last().map(|p| p.code))
                    .or_else(|| (to_status == status::FAILED).then_some(1));
                InvocationUpdate {
                    status: to_status.into(),
                    status_details: to_details.into(),
                    finished_at: Some(now),
                    response_code,
                    trace_output: Some(payload.document_trace_output.clone()),
                    plugins,
                    ..Default::default()
                }
            }
        };
        if update.status == status::IN_PROGRESS {
            let applied = self
                .store
                .update_invocation(command_id, instance_id, &[status::IN_PROGRESS, status::PENDING, "Delayed"], &update)
                .await?;
            if !applied {
                // Cancelling: keep that status, but take the plugin results.
                let keep = InvocationUpdate {
                    status: status::CANCELLING.into(),
                    status_details: details::CANCELLING.into(),
                    ..update
                };
                self.store.update_invocation(command_id, instance_id, &[status::CANCELLING], &keep).await?;
            }
        } else {
            // A reply for a job the server already gave up on (timed out) changes nothing.
            let updated = self.store.update_invocation(command_id, instance_id, OPEN, &update).await?;
            if updated {
                self.wake();
            }
        }
        Ok(())
    }

    /// Cancels invocations of a command: pending ones at once, running ones by telling their
    /// agents. Returns how many invocations were still open.
    pub async fn cancel(&self, command: &Command, instance_ids: &[String]) -> Result<usize, corral_store::StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut open = 0;
        for mut inv in self.store.command_invocations(&command.command_id).await? {
            if !instance_ids.is_empty() && !instance_ids.contains(&inv.instance_id) {
                continue;
            }
            if rollup::is_terminal(&inv.status) {
                continue;
            }
            open += 1;
            if self.finish(&mut inv, &[status::PENDING, "Delayed"], status::CANCELLED, details::CANCELLED, now).await? {
                continue;
            }
            let update = InvocationUpdate {
                status: status::CANCELLING.into(),
                status_details: details::CANCELLING.into(),
                ..Default::default()
            };
            if self.set(&mut inv, &[status::IN_PROGRESS], update).await? || inv.status == status::CANCELLING {
                let job = runcommand::job_id(&command.command_id, &inv.instance_id);
                let content =
                    serde_json::to_string(&CancelCommandPayload { cancel_message_id: job.clone() }).unwrap_or_default();
                // A cancel is a job of its own, with an id of its own (the agent remembers job ids).
                let cancel_job = runcommand::job_id(&uuid::Uuid::new_v4().to_string(), &inv.instance_id);
                let job = Job {
                    topic: runcommand::TOPIC_CANCEL_COMMAND.to_string(),
                    job_id: cancel_job,
                    content,
                    created: now,
                };
                self.hub.send(&inv.instance_id, job);
            }
        }
        self.wake();
        Ok(open)
    }

    /// An instance was deregistered: its invocations that have not finished cannot be delivered.
    pub async fn instance_gone(&self, instance_id: &str) -> Result<(), corral_store::StoreError> {
        let now = OffsetDateTime::now_utc();
        for command_id in self.store.active_commands_for_instance(instance_id, OPEN).await? {
            let update = InvocationUpdate {
                status: status::FAILED.into(),
                status_details: details::UNDELIVERABLE.into(),
                finished_at: Some(now),
                ..Default::default()
            };
            self.store.update_invocation(&command_id, instance_id, OPEN, &update).await?;
        }
        self.wake();
        Ok(())
    }
}

/// A job as an `agent_job` frame.
pub fn job_frame(job: &Job) -> Vec<u8> {
    let payload = AgentJob {
        content: job.content.clone(),
        job_id: job.job_id.clone(),
        topic: job.topic.clone(),
        schema_version: 1,
    };
    let bytes = serde_json::to_vec(&payload).unwrap_or_default();
    let mut frame = ClientMessage::new(message_type::AGENT_JOB, bytes);
    frame.created_date = (job.created.unix_timestamp_nanos() / 1_000_000).max(1) as u64;
    frame.encode()
}

/// The invocation status a final `documentStatus` means.
fn final_status(document_status: &str) -> (&'static str, &'static str) {
    match document_status {
        // The API has no Skipped: a step skipped by its precondition did what was asked.
        "Success" | "SuccessAndReboot" | "Skipped" => (status::SUCCESS, details::SUCCESS),
        "TimedOut" => (status::TIMED_OUT, details::EXECUTION_TIMED_OUT),
        "Cancelled" => (status::CANCELLED, details::CANCELLED),
        _ => (status::FAILED, details::FAILED),
    }
}

fn plugin_result(id: &str, p: &PluginRuntimeStatus) -> PluginResult {
    let (plugin_status, plugin_details) = match p.status.as_str() {
        "InProgress" | "Pending" => (status::IN_PROGRESS, details::IN_PROGRESS),
        other => final_status(other),
    };
    let parse = |s: &str| corral_wire::time::Timestamp::parse_iso8601(s).map(|t| t.0);
    PluginResult {
        name: id.to_string(),
        status: plugin_status.to_string(),
        status_details: plugin_details.to_string(),
        // A failed plugin that exited 0 is reported as 1, as the SSM agent does.
        response_code: if plugin_status == status::FAILED && p.code == 0 { 1 } else { p.code },
        started_at: parse(&p.start_date_time),
        finished_at: parse(&p.end_date_time),
        output: p.output.clone(),
        stdout: p.standard_output.clone(),
        stderr: p.standard_error.clone(),
    }
}
