//! How this replica reaches agents: a control channel per connected instance (ssmmessages
//! websocket), or, for agents that cannot hold one, a mailbox their ec2messages long polls
//! (`GetMessages`) empty.
//!
//! Anything that wants to reach an agent (the command scheduler, CancelCommand,
//! deregistration) hands the hub a [`Job`]; the hub picks the transport. Queues are small and
//! bounded: the scheduler redelivers what does not fit or is never acknowledged. A newer
//! channel from the same instance replaces the older one, whose writer then ends. Nothing here
//! is shared between replicas: with PostgreSQL replicas, a command for an instance held
//! elsewhere will be routed through the database (design.md §5).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Jobs queued per instance before senders are told the agent is busy.
pub const QUEUE: usize = 32;
/// An ec2messages agent counts as reachable this long after its last poll ended: it polls again
/// at once, or 2–2.5 s after a poll that returned quickly.
pub const POLLER_FRESH: Duration = Duration::from_secs(40);
/// Messages returned by one `GetMessages`.
const MAX_MESSAGES_PER_POLL: usize = 10;

/// A Run Command job (or a cancel) for one instance.
#[derive(Debug, Clone)]
pub struct Job {
    /// `aws.ssm.sendCommand` or `aws.ssm.cancelCommand`.
    pub topic: String,
    /// `aws.ssm.<CommandId>.<InstanceId>` (the message id over ec2messages).
    pub job_id: String,
    /// The payload, JSON text.
    pub content: String,
    /// When the job was handed to the hub.
    pub created: OffsetDateTime,
}

/// Something for a control channel's writer to do.
#[derive(Debug)]
pub enum Outbound {
    /// Send this job as an `agent_job` frame.
    Job(Job),
    /// Close the channel (the instance was deregistered).
    Close,
}

struct Connection {
    id: u64,
    tx: mpsc::Sender<Outbound>,
}

/// An ec2messages agent's mailbox.
struct Mailbox {
    tx: mpsc::Sender<Job>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    last_seen: Instant,
    polling: usize,
}

/// Registry of the agents this replica can reach.
#[derive(Default)]
pub struct ControlHub {
    channels: Mutex<HashMap<String, Connection>>,
    mailboxes: Mutex<HashMap<String, Mailbox>>,
    next_id: AtomicU64,
    /// Set once the server is shutting down: held polls answer at once, channels close.
    shutting_down: std::sync::atomic::AtomicBool,
    shutdown: tokio::sync::Notify,
}

/// A channel's registration: its id (to unregister only itself) and its queue.
pub struct Registration {
    /// Distinguishes this connection from a later one of the same instance.
    pub id: u64,
    /// Work for this channel's writer.
    pub rx: mpsc::Receiver<Outbound>,
}

impl ControlHub {
    /// Registers a new control channel for `instance_id`, replacing (and so ending) any older one.
    pub fn register(&self, instance_id: &str) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Ok(mut map) = self.channels.lock() {
            map.insert(instance_id.to_string(), Connection { id, tx });
        }
        Registration { id, rx }
    }

    /// Removes the channel `id` of `instance_id`, unless a newer one replaced it.
    pub fn unregister(&self, instance_id: &str, id: u64) {
        if let Ok(mut map) = self.channels.lock() {
            if map.get(instance_id).is_some_and(|c| c.id == id) {
                map.remove(instance_id);
            }
        }
    }

    fn channel(&self, instance_id: &str) -> Option<mpsc::Sender<Outbound>> {
        let map = self.channels.lock().ok()?;
        map.get(instance_id).filter(|c| !c.tx.is_closed()).map(|c| c.tx.clone())
    }

    fn mailbox_sender(&self, instance_id: &str) -> Option<mpsc::Sender<Job>> {
        let map = self.mailboxes.lock().ok()?;
        map.get(instance_id).filter(|m| m.polling > 0 || m.last_seen.elapsed() < POLLER_FRESH).map(|m| m.tx.clone())
    }

    /// Whether this replica can deliver to the instance now: it holds its control channel, or
    /// the instance is polling.
    pub fn is_connected(&self, instance_id: &str) -> bool {
        self.channel(instance_id).is_some() || self.mailbox_sender(instance_id).is_some()
    }

    /// Queues a job for the instance. False when it is unreachable or its queue is full.
    pub fn send(&self, instance_id: &str, job: Job) -> bool {
        if let Some(tx) = self.channel(instance_id) {
            return tx.try_send(Outbound::Job(job)).is_ok();
        }
        match self.mailbox_sender(instance_id) {
            Some(tx) => tx.try_send(job).is_ok(),
            None => false,
        }
    }

    /// An ec2messages long poll: waits up to `wait` for jobs and returns those queued (at most
    /// ten). Only one poll per instance takes messages at a time; a concurrent one waits its
    /// turn within the same `wait`.
    pub async fn poll(&self, instance_id: &str, wait: Duration) -> Vec<Job> {
        let rx = {
            let Ok(mut map) = self.mailboxes.lock() else { return Vec::new() };
            let mailbox = map.entry(instance_id.to_string()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(QUEUE);
                Mailbox { tx, rx: Arc::new(tokio::sync::Mutex::new(rx)), last_seen: Instant::now(), polling: 0 }
            });
            mailbox.polling += 1;
            mailbox.last_seen = Instant::now();
            mailbox.rx.clone()
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut jobs = Vec::new();
        // Registered before the flag is read, so a shutdown in between still wakes this poll.
        let shutdown = self.shutdown.notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        let wait_for_jobs = async {
            let mut guard = tokio::time::timeout_at(deadline, rx.lock()).await.ok()?;
            tokio::time::timeout_at(deadline, guard.recv()).await.ok().flatten().map(|first| (first, guard))
        };
        let received = if self.shutting_down.load(Ordering::Acquire) {
            None
        } else {
            tokio::select! {
                got = wait_for_jobs => got,
                _ = &mut shutdown => None,
            }
        };
        if let Some((first, mut guard)) = received {
            jobs.push(first);
            while jobs.len() < MAX_MESSAGES_PER_POLL {
                match guard.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        if let Ok(mut map) = self.mailboxes.lock() {
            if let Some(m) = map.get_mut(instance_id) {
                m.polling = m.polling.saturating_sub(1);
                m.last_seen = Instant::now();
            }
        }
        jobs
    }

    /// The server is stopping: every control channel is closed (the agents reconnect, to this
    /// server when it is back or to another replica) and held polls answer at once, so that
    /// graceful shutdown is not held up by connections that would otherwise stay open.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
        if let Ok(map) = self.channels.lock() {
            for c in map.values() {
                let _ = c.tx.try_send(Outbound::Close);
            }
        }
    }

    /// Closes the instance's channel and drops its mailbox, if this replica holds them.
    pub fn disconnect(&self, instance_id: &str) {
        let removed = self.channels.lock().ok().and_then(|mut m| m.remove(instance_id));
        if let Some(c) = removed {
            let _ = c.tx.try_send(Outbound::Close);
        }
        if let Ok(mut m) = self.mailboxes.lock() {
            m.remove(instance_id);
        }
    }

    /// How many control channels this replica holds.
    pub fn len(&self) -> usize {
        self.channels.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether this replica holds no control channel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> Job {
        Job {
            topic: "aws.ssm.sendCommand".into(),
            job_id: id.into(),
            content: "{}".into(),
            created: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn a_newer_channel_replaces_the_older() {
        let hub = ControlHub::default();
        let first = hub.register("mi-1");
        let second = hub.register("mi-1");
        assert!(hub.is_connected("mi-1"));
        hub.unregister("mi-1", first.id);
        assert!(hub.is_connected("mi-1"), "the older channel's exit must not remove the newer one");
        hub.unregister("mi-1", second.id);
        assert!(!hub.is_connected("mi-1"));
        assert!(!hub.send("mi-1", job("a")));
    }

    #[tokio::test]
    async fn a_poller_gets_jobs_queued_before_and_during_its_poll() {
        let hub = Arc::new(ControlHub::default());
        assert!(!hub.is_connected("mi-2"));
        assert!(hub.poll("mi-2", Duration::from_millis(10)).await.is_empty());
        assert!(hub.is_connected("mi-2"), "a recent poller is reachable");
        assert!(hub.send("mi-2", job("queued")));
        let got = hub.poll("mi-2", Duration::from_secs(5)).await;
        assert_eq!(got.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(), ["queued"]);
        let h = hub.clone();
        let waiting = tokio::spawn(async move { h.poll("mi-2", Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(hub.send("mi-2", job("pushed")));
        let got = waiting.await.expect("poll task");
        assert_eq!(got.len(), 1, "a held poll returns as soon as a job arrives");
        hub.disconnect("mi-2");
        assert!(!hub.is_connected("mi-2"));
    }
}
