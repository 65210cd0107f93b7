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

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket { tokens: rate.burst, updated: now }
    }

    /// Brings the bucket up to date and returns its tokens.
    fn refill(&mut self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.updated = now;
        self.tokens
    }

    /// Would it be full by now (so dropping it changes nothing for its caller)?
    fn full_by(&self, rate: Rate, now: Instant) -> bool {
        self.tokens + now.duration_since(self.updated).as_secs_f64() * rate.per_second >= rate.burst
    }
}

/// One caller's buckets, one per class (a caller uses one or two of them).
#[derive(Debug, Default)]
struct CallerBuckets([Option<Bucket>; 3]);

fn slot(class: Class) -> usize {
    match class {
        Class::Read => 0,
        Class::Write => 1,
        Class::Agent => 2,
    }
}

/// Callers tracked at most; past this, callers whose buckets are all full (idle long enough to
/// have refilled) are dropped, and if none are, every caller is, so memory stays bounded.
const MAX_CALLERS: usize = 100_000;

struct Buckets {
    /// By access key ID or instance ID; looked up without allocating.
    callers: HashMap<String, CallerBuckets>,
    all_agents: Option<Bucket>,
}

/// The buckets of one server process.
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter { limits, buckets: Mutex::new(Buckets { callers: HashMap::new(), all_agents: None }) }
    }

    fn rate(&self, class: Class) -> Option<Rate> {
        match class {
            Class::Read => self.limits.read,
            Class::Write => self.limits.write,
            Class::Agent => self.limits.agent,
        }
    }

    /// Takes a token for a call of `class` by `caller` (an access key ID, or an instance ID for
    /// agent calls). `false`: throttled, nothing taken.
    pub fn admit(&self, class: Class, caller: &str) -> bool {
        let own = self.rate(class);
        let shared = if class == Class::Agent { self.limits.agents_total } else { None };
        if own.is_none() && shared.is_none() {
            return true;
        }
        let now = Instant::now();
        let Ok(mut guard) = self.buckets.lock() else { return true };
        let buckets = &mut *guard;
        if own.is_some() && !buckets.callers.contains_key(caller) && buckets.callers.len() >= MAX_CALLERS {
            self.prune(&mut buckets.callers, now);
        }
        // Both buckets must have a token before either is taken from.
        if own.is_some() && !buckets.callers.contains_key(caller) {
            buckets.callers.insert(caller.to_string(), CallerBuckets::default());
        }
        let mut own_bucket = own.and_then(|rate| {
            let entry = buckets.callers.get_mut(caller)?;
            Some((entry.0[slot(class)].get_or_insert_with(|| Bucket::full(rate, now)), rate))
        });
        let mut shared_bucket =
            shared.map(|rate| (buckets.all_agents.get_or_insert_with(|| Bucket::full(rate, now)), rate));
        let has_token =
            |b: &mut Option<(&mut Bucket, Rate)>| b.as_mut().is_none_or(|(b, rate)| b.refill(*rate, now) >= 1.0);
        if !(has_token(&mut own_bucket) && has_token(&mut shared_bucket)) {
            return false;
        }
        for (bucket, _) in own_bucket.into_iter().chain(shared_bucket) {
            bucket.tokens -= 1.0;
        }
        true
    }

    /// Drops the callers whose buckets would all be full by now (a new bucket starts full, so
    /// nothing changes for them); clears every caller if that frees nothing.
    fn prune(&self, callers: &mut HashMap<String, CallerBuckets>, now: Instant) {
        callers.retain(|_, buckets| {
            [Class::Read, Class::Write, Class::Agent].into_iter().any(|class| {
                match (buckets.0[slot(class)], self.rate(class)) {
                    (Some(bucket), Some(rate)) => !bucket.full_by(rate, now),
                    _ => false,
                }
            })
        });
        if callers.len() >= MAX_CALLERS {
            callers.clear();
        }
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
