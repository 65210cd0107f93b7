//! Throttling of failed anonymous calls: `RegisterManagedInstance` needs no signature, so
//! guessing activation codes, or flooding the trail with refused registrations, costs an
//! attacker nothing but requests. Failures are counted per source address and per activation
//! ID in fixed windows; past the limit, further attempts from that address or against that
//! activation are refused with `ThrottlingException` until the window ends. Successful
//! registrations are never counted, so a fleet registering behind one NAT address is not slowed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Failed registrations one source address may make per window.
pub const FAILURES_PER_SOURCE: u32 = 20;
/// Failed registrations against one activation ID per window (from any address).
pub const FAILURES_PER_ACTIVATION: u32 = 50;
/// Keys tracked at most; past this, expired windows are dropped, and if none have expired the
/// oldest are, so memory stays bounded whatever the number of source addresses.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Source(IpAddr),
    Activation(String),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failure counts of anonymous calls (one per server process).
#[derive(Default)]
pub struct FailureThrottle {
    windows: Mutex<HashMap<Key, Window>>,
}

impl FailureThrottle {
    /// `Some(reason)` when the source or the activation has used up its failures for now.
    pub fn refused(&self, source: IpAddr, activation_id: Option<&str>) -> Option<String> {
        let now = Instant::now();
        let windows = self.windows.lock().ok()?;
        let over = |key: &Key, limit: u32| {
            windows.get(key).is_some_and(|w| now.duration_since(w.started) < WINDOW && w.failures >= limit)
        };
        if over(&Key::Source(source), FAILURES_PER_SOURCE) {
            return Some(format!("Rate exceeded: too many failed registrations from {source}; try again in a minute."));
        }
        if let Some(id) = activation_id {
            if over(&Key::Activation(id.to_string()), FAILURES_PER_ACTIVATION) {
                return Some(
                    "Rate exceeded: too many failed registrations for this activation; try again in a minute."
                        .to_string(),
                );
            }
        }
        None
    }

    /// Counts one failed call from `source` against `activation_id`; true when this failure
    /// used up a limit (the moment worth one log line; the refusals after it are not).
    pub fn record_failure(&self, source: IpAddr, activation_id: Option<&str>) -> bool {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else { return false };
        if windows.len() >= MAX_KEYS {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
            if windows.len() >= MAX_KEYS {
                let mut by_age: Vec<(Key, Instant)> = windows.iter().map(|(k, w)| (k.clone(), w.started)).collect();
                by_age.sort_by_key(|(_, started)| *started);
                for (key, _) in by_age.into_iter().take(MAX_KEYS / 10) {
                    windows.remove(&key);
                }
            }
        }
        let keys = std::iter::once((Key::Source(source), FAILURES_PER_SOURCE))
            .chain(activation_id.map(|id| (Key::Activation(id.to_string()), FAILURES_PER_ACTIVATION)));
        let mut reached = false;
        for (key, limit) in keys {
            let w = windows.entry(key).or_insert(Window { started: now, failures: 0 });
            if now.duration_since(w.started) >= WINDOW {
                *w = Window { started: now, failures: 0 };
            }
            w.failures = w.failures.saturating_add(1);
            reached |= w.failures == limit;
        }
        reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_limit_are_refused_per_source_and_per_activation() {
        let t = FailureThrottle::default();
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        for _ in 0..FAILURES_PER_SOURCE {
            assert!(t.refused(a, Some("act-1")).is_none());
            t.record_failure(a, Some("act-1"));
        }
        assert!(t.refused(a, Some("act-2")).is_some(), "the source is throttled whatever it names");
        assert!(t.refused(b, Some("act-1")).is_none(), "another source may still try act-1");
        for _ in FAILURES_PER_SOURCE..FAILURES_PER_ACTIVATION {
            t.record_failure(b, Some("act-1"));
        }
        let c: IpAddr = "127.0.0.3".parse().expect("ip");
        assert!(t.refused(c, Some("act-1")).is_some(), "act-1 has used up its failures");
        assert!(t.refused(c, Some("act-3")).is_none());
    }
}
