//! Request rates: token buckets per caller and class of call, as AWS throttles its APIs.
//!
//! Every authenticated call takes a token from its caller's bucket for its class: reads
//! (`Describe*`, `Get*`, `List*`: CloudTrail's read-only calls) and writes per access key, and
//! agent calls per managed instance (its instance-key calls and everything it signs with its
//! role token). Agent calls also share one server-wide bucket, so thousands of machines
//! reconnecting at once are spread out instead of landing together, while each machine's own
//! bucket keeps a noisy one from taking the others' share. An empty bucket answers
//! `ThrottlingException` (JSON) / `Throttling` (Query), which the AWS SDKs and the agent retry
//! with backoff; a refused call is not recorded in the trail (like a refused registration, a
//! flood must not fill it). Unsigned registrations have their own limit (`throttle.rs`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A sustained rate with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens a bucket holds (and a new bucket starts with).
    pub burst: f64,
}

impl Rate {
    /// `RATE` or `RATE/BURST` (per second), or `off` for no limit.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (rate, burst) = match text.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (text, None),
        };
        let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0);
        let per_second = number(rate).ok_or_else(|| format!("{text:?}: expected RATE, RATE/BURST or off"))?;
        let burst = match burst {
            Some(b) => number(b).ok_or_else(|| format!("{text:?}: the burst must be a positive number"))?,
            None => (per_second * 2.0).max(1.0),
        };
        Ok(Some(Rate { per_second, burst: burst.max(1.0) }))
    }
}

/// The limits a server applies; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Read-only calls, per access key.
    pub read: Option<Rate>,
    /// Other calls, per access key.
    pub write: Option<Rate>,
    /// Agent calls, per managed instance.
    pub agent: Option<Rate>,
    /// Agent calls of all instances together.
    pub agents_total: Option<Rate>,
}

impl Default for RateLimits {
    /// AWS-like defaults: SSM's per-account API rates are tens of calls per second, with
    /// bursts above that; an agent makes a few calls a minute when idle.
    fn default() -> Self {
        RateLimits {
            read: Some(Rate { per_second: 50.0, burst: 100.0 }),
            write: Some(Rate { per_second: 20.0, burst: 60.0 }),
            agent: Some(Rate { per_second: 10.0, burst: 40.0 }),
            agents_total: Some(Rate { per_second: 1_000.0, burst: 2_000.0 }),
        }
    }
}

impl RateLimits {
    /// No limits at all (load tests).
    pub fn off() -> Self {
        RateLimits { read: None, write: None, agent: None, agents_total: None }
    }
}

/// Which bucket a call takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A read-only call of a user or role.
    Read,
    /// Any other call of a user or role.
    Write,
    /// A managed instance's call.
    Agent,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets tracked at most; past this, full buckets (callers idle long enough to have refilled)
/// are dropped, and if none are full the whole map is cleared, so memory stays bounded.
const MAX_BUCKETS: usize = 100_000;
/// Key of the server-wide agent bucket (no access key or instance ID is empty).
const ALL_AGENTS: &str = "";

/// The buckets of one server process.
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(Class, String), Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter { limits, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for a call of `class` by `caller` (an access key ID, or an instance ID for
    /// agent calls). `false`: throttled, nothing taken.
    pub fn admit(&self, class: Class, caller: &str) -> bool {
        let own = match class {
            Class::Read => self.limits.read,
            Class::Write => self.limits.write,
            Class::Agent => self.limits.agent,
        };
        let shared = if class == Class::Agent { self.limits.agents_total } else { None };
        if own.is_none() && shared.is_none() {
            return true;
        }
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else { return true };
        if buckets.len() >= MAX_BUCKETS {
            prune(&mut buckets, &self.limits, now);
        }
        // Both buckets must have a token before either is taken from.
        let own_ok = own.is_none_or(|rate| refill(&mut buckets, (class, caller.to_string()), rate, now) >= 1.0);
        let shared_ok =
            shared.is_none_or(|rate| refill(&mut buckets, (Class::Agent, ALL_AGENTS.to_string()), rate, now) >= 1.0);
        if !(own_ok && shared_ok) {
            return false;
        }
        for key in [own.map(|_| (class, caller)), shared.map(|_| (Class::Agent, ALL_AGENTS))].into_iter().flatten() {
            if let Some(bucket) = buckets.get_mut(&(key.0, key.1.to_string())) {
                bucket.tokens -= 1.0;
            }
        }
        true
    }
}

/// Brings the bucket at `key` up to date (creating it full) and returns its tokens.
fn refill(buckets: &mut HashMap<(Class, String), Bucket>, key: (Class, String), rate: Rate, now: Instant) -> f64 {
    let bucket = buckets.entry(key).or_insert(Bucket { tokens: rate.burst, updated: now });
    let elapsed = now.duration_since(bucket.updated).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
    bucket.updated = now;
    bucket.tokens
}

/// Drops the buckets that would be full by now (a new bucket starts full, so nothing changes
/// for their callers); clears everything if that frees nothing.
fn prune(buckets: &mut HashMap<(Class, String), Bucket>, limits: &RateLimits, now: Instant) {
    buckets.retain(|(class, caller), bucket| {
        let rate = match class {
            Class::Read => limits.read,
            Class::Write => limits.write,
            Class::Agent if caller.is_empty() => limits.agents_total,
            Class::Agent => limits.agent,
        };
        rate.is_some_and(|r| bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * r.per_second < r.burst)
    });
    if buckets.len() >= MAX_BUCKETS {
        buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_default_burst_and_off() {
        assert_eq!(Rate::parse("10").unwrap(), Some(Rate { per_second: 10.0, burst: 20.0 }));
        assert_eq!(Rate::parse("5/50").unwrap(), Some(Rate { per_second: 5.0, burst: 50.0 }));
        assert_eq!(Rate::parse("OFF").unwrap(), None);
        for bad in ["", "0", "-1", "x", "5/", "5/0", "NaN", "inf"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_caller_and_class() {
        let limiter =
            RateLimiter::new(RateLimits { read: Some(Rate { per_second: 0.001, burst: 3.0 }), ..RateLimits::off() });
        assert_eq!((0..5).filter(|_| limiter.admit(Class::Read, "AKIA1")).count(), 3);
        assert!(limiter.admit(Class::Read, "AKIA2"), "another key has its own bucket");
        assert!(limiter.admit(Class::Write, "AKIA1"), "writes are not limited here");
    }

    #[test]
    fn agents_share_a_server_wide_bucket_but_one_agent_cannot_take_it_all() {
        let limiter = RateLimiter::new(RateLimits {
            agent: Some(Rate { per_second: 0.001, burst: 2.0 }),
            agents_total: Some(Rate { per_second: 0.001, burst: 5.0 }),
            ..RateLimits::off()
        });
        // A noisy agent gets its own burst only, and leaves the rest for others.
        assert_eq!((0..10).filter(|_| limiter.admit(Class::Agent, "mi-noisy")).count(), 2);
        assert!(limiter.admit(Class::Agent, "mi-a"));
        assert!(limiter.admit(Class::Agent, "mi-b"));
        assert!(limiter.admit(Class::Agent, "mi-c"));
        // The server-wide bucket is empty now: a storm waits, whoever it is.
        assert!(!limiter.admit(Class::Agent, "mi-d"));
    }

    #[test]
    fn buckets_refill_with_time() {
        let limiter =
            RateLimiter::new(RateLimits { write: Some(Rate { per_second: 1_000.0, burst: 1.0 }), ..RateLimits::off() });
        assert!(limiter.admit(Class::Write, "k"));
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(limiter.admit(Class::Write, "k"));
    }
}
