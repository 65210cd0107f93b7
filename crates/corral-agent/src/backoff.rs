//! Retry timing: exponential back-off with jitter, and the credential refresh schedule.
//!
//! Jitter matters more than the exact numbers: after a control-plane restart every agent of a
//! fleet fails at the same moment, and without it they would all retry in lock-step.

use std::time::Duration;

use time::OffsetDateTime;

/// Share of a delay that jitter may add or remove (±20 %).
pub const JITTER: f64 = 0.2;

/// How long the agent waits between attempts while the control plane says the machine is
/// deregistered (±[`JITTER`]): slow enough not to load the server, fast enough to notice a
/// re-registration through the same key.
pub const DEREGISTERED_RETRY: Duration = Duration::from_secs(300);

/// Never schedule a credential refresh sooner than this after the last one, even when the server
/// hands out credentials that are already (nearly) expired: that would be a hot loop.
pub const MIN_REFRESH_DELAY: Duration = Duration::from_secs(5);

/// `delay` scaled by a random factor in `[1 - JITTER, 1 + JITTER]`.
pub fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range((1.0 - JITTER)..=(1.0 + JITTER)))
}

/// Exponential back-off: 2 s, 4 s, 8 s, ... up to a cap, each with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A back-off whose n-th consecutive failure waits `base · 2^n` (n from 1), at most `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max, failures: 0 }
    }

    /// The agent's default for network and server errors: 2^n seconds, capped at 5 minutes.
    pub fn standard() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        jitter(self.nominal())
    }

    /// The delay for the current failure count before jitter.
    pub fn nominal(&self) -> Duration {
        // 2^n overflows quickly; beyond 2^20 the cap has long been reached anyway.
        let factor = 1u32 << self.failures.min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Consecutive failures so far.
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// When to refresh credentials retrieved at `retrieved_at` that expire at `expires_at`: at half
/// their lifetime, as the SSM agent does, and at once if they are already expired.
pub fn refresh_at(retrieved_at: OffsetDateTime, expires_at: OffsetDateTime) -> OffsetDateTime {
    if expires_at <= retrieved_at {
        return retrieved_at;
    }
    retrieved_at + (expires_at - retrieved_at) / 2
}

/// How long from `now` until the refresh at `refresh_at`, never less than [`MIN_REFRESH_DELAY`].
pub fn refresh_delay(now: OffsetDateTime, refresh_at: OffsetDateTime) -> Duration {
    let until = refresh_at - now;
    let until = Duration::try_from(until).unwrap_or(Duration::ZERO);
    until.max(MIN_REFRESH_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn within_jitter(actual: Duration, nominal: Duration) -> bool {
        let lo = nominal.mul_f64(1.0 - JITTER - 1e-9);
        let hi = nominal.mul_f64(1.0 + JITTER + 1e-9);
        actual >= lo && actual <= hi
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::standard();
        let expected = [2u64, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300];
        for secs in expected {
            let d = b.next_delay();
            assert!(within_jitter(d, Duration::from_secs(secs)), "{d:?} not within 20% of {secs}s");
        }
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(360), "{d:?} exceeds the cap plus jitter");
            assert!(d >= Duration::from_secs(240), "{d:?} below the cap minus jitter");
        }
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(within_jitter(b.next_delay(), Duration::from_secs(2)));
    }

    #[test]
    fn backoff_never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(u64::MAX / 4), Duration::from_secs(60));
        b.failures = u32::MAX - 1;
        assert_eq!(b.nominal(), Duration::from_secs(60));
        assert!(b.next_delay() <= Duration::from_secs(72));
        assert!(b.next_delay() <= Duration::from_secs(72));
    }

    #[test]
    fn jitter_spreads_but_stays_in_bounds() {
        let base = Duration::from_secs(100);
        let samples: Vec<Duration> = (0..200).map(|_| jitter(base)).collect();
        assert!(samples.iter().all(|d| within_jitter(*d, base)));
        // Not all identical: the point of jitter.
        assert!(samples.iter().any(|d| *d != samples[0]));
    }

    #[test]
    fn refresh_at_half_life() {
        let got = datetime!(2026-11-25 10:00 UTC);
        assert_eq!(refresh_at(got, datetime!(2026-11-25 11:00 UTC)), datetime!(2026-11-25 10:30 UTC));
        assert_eq!(refresh_at(got, datetime!(2026-11-25 10:00:10 UTC)), datetime!(2026-11-25 10:00:05 UTC));
        // Already expired: refresh now.
        assert_eq!(refresh_at(got, datetime!(2026-11-25 09:00 UTC)), got);
    }

    #[test]
    fn refresh_delay_has_a_floor() {
        let now = datetime!(2026-11-25 10:00 UTC);
        assert_eq!(refresh_delay(now, datetime!(2026-11-25 10:30 UTC)), Duration::from_secs(1800));
        assert_eq!(refresh_delay(now, datetime!(2026-11-25 10:00:01 UTC)), MIN_REFRESH_DELAY);
        assert_eq!(refresh_delay(now, datetime!(2026-11-25 09:00 UTC)), MIN_REFRESH_DELAY);
    }
}
