//! The control channels this replica holds: one per connected managed instance.
//!
//! Each channel's websocket task owns a small bounded queue; anything that wants to reach an
//! agent (the command scheduler, CancelCommand, deregistration) puts a frame on it. A newer
//! connection from the same instance replaces the older one, whose writer then ends. Nothing
//! here is shared between replicas: with PostgreSQL replicas, a command for an instance held
//! elsewhere will be routed through the database (design.md §5).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::mpsc;

/// Frames queued per channel before senders are told the channel is busy. Small: a job frame
/// is a few KB and the scheduler retries what does not fit.
pub const CHANNEL_QUEUE: usize = 32;

/// Something for a channel's writer to do.
#[derive(Debug)]
pub enum Outbound {
    /// A binary frame to send.
    Frame(Vec<u8>),
    /// Close the channel (the instance was deregistered).
    Close,
}

struct Connection {
    id: u64,
    tx: mpsc::Sender<Outbound>,
}

/// Registry of live control channels, keyed by instance ID.
#[derive(Default)]
pub struct ControlHub {
    channels: Mutex<HashMap<String, Connection>>,
    next_id: AtomicU64,
}

/// A channel's registration: its id (to unregister only itself) and its queue.
pub struct Registration {
    /// Distinguishes this connection from a later one of the same instance.
    pub id: u64,
    /// Frames for this channel's writer.
    pub rx: mpsc::Receiver<Outbound>,
}

impl ControlHub {
    /// Registers a new channel for `instance_id`, replacing (and so ending) any older one.
    pub fn register(&self, instance_id: &str) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(CHANNEL_QUEUE);
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

    /// Whether this replica holds a channel for the instance.
    pub fn is_connected(&self, instance_id: &str) -> bool {
        self.channels.lock().map(|m| m.get(instance_id).is_some_and(|c| !c.tx.is_closed())).unwrap_or(false)
    }

    /// Queues a frame for the instance's channel. False when there is none or its queue is full.
    pub fn send(&self, instance_id: &str, frame: Vec<u8>) -> bool {
        let tx = match self.channels.lock() {
            Ok(map) => match map.get(instance_id) {
                Some(c) => c.tx.clone(),
                None => return false,
            },
            Err(_) => return false,
        };
        tx.try_send(Outbound::Frame(frame)).is_ok()
    }

    /// Closes the instance's channel, if this replica holds one.
    pub fn disconnect(&self, instance_id: &str) {
        let removed = self.channels.lock().ok().and_then(|mut m| m.remove(instance_id));
        if let Some(c) = removed {
            let _ = c.tx.try_send(Outbound::Close);
        }
    }

    /// How many channels this replica holds.
    pub fn len(&self) -> usize {
        self.channels.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether this replica holds no channel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_channel_replaces_the_older() {
        let hub = ControlHub::default();
        let first = hub.register("mi-1");
        let second = hub.register("mi-1");
        assert!(hub.is_connected("mi-1"));
        assert!(first.rx.is_closed() || hub.send("mi-1", vec![1]));
        hub.unregister("mi-1", first.id);
        assert!(hub.is_connected("mi-1"), "the older channel's exit must not remove the newer one");
        hub.unregister("mi-1", second.id);
        assert!(!hub.is_connected("mi-1"));
        assert!(!hub.send("mi-1", vec![1]));
    }
}
