//! Run Command's status rules in one place (api-surface.md §2.5): which invocation statuses
//! are terminal, how `MaxConcurrency` and `MaxErrors` turn into numbers, and how a command's
//! `Status`, `StatusDetails` and counts roll up from its invocations. Pure functions: the
//! handlers and the scheduler both use them, so they can never disagree.

/// Invocation `Status` values Corral writes.
pub mod status {
    /// Created, not yet handed to the agent.
    pub const PENDING: &str = "Pending";
    /// Handed to the agent (or running there).
    pub const IN_PROGRESS: &str = "InProgress";
    /// Finished with exit code 0.
    pub const SUCCESS: &str = "Success";
    /// Finished badly (non-zero exit, undeliverable, agent lost).
    pub const FAILED: &str = "Failed";
    /// Not delivered, or not finished, in time.
    pub const TIMED_OUT: &str = "TimedOut";
    /// Cancel asked; waiting for the agent to stop it.
    pub const CANCELLING: &str = "Cancelling";
    /// Stopped by a cancel, or never started because the command was cancelled or failed.
    pub const CANCELLED: &str = "Cancelled";
}

/// `StatusDetails` values Corral writes.
pub mod details {
    /// Not yet delivered.
    pub const PENDING: &str = "Pending";
    /// Delivered and running.
    pub const IN_PROGRESS: &str = "In Progress";
    /// Exit code 0.
    pub const SUCCESS: &str = "Success";
    /// Non-zero exit.
    pub const FAILED: &str = "Failed";
    /// Not started before the command's `TimeoutSeconds`.
    pub const DELIVERY_TIMED_OUT: &str = "Delivery Timed Out";
    /// Ran past its `executionTimeout`.
    pub const EXECUTION_TIMED_OUT: &str = "Execution Timed Out";
    /// Cancel asked.
    pub const CANCELLING: &str = "Cancelling";
    /// Stopped by a cancel.
    pub const CANCELLED: &str = "Cancelled";
    /// Never sent: the command exceeded `MaxErrors` first.
    pub const TERMINATED: &str = "Terminated";
    /// The instance went away (deregistered) before it could run the command.
    pub const UNDELIVERABLE: &str = "Undeliverable";
    /// Some invocations did not succeed, but not more than `MaxErrors` (command only).
    pub const INCOMPLETE: &str = "Incomplete";
    /// The targets matched no instance (command only).
    pub const NO_INSTANCES_IN_TAG: &str = "No Instances In Tag";
}

/// Whether an invocation in this `Status` is finished for good.
pub fn is_terminal(status: &str) -> bool {
    matches!(status, status::SUCCESS | status::FAILED | status::TIMED_OUT | status::CANCELLED)
}

/// Every non-terminal invocation status.
pub const NON_TERMINAL: &[&str] = &[status::PENDING, status::IN_PROGRESS, "Delayed", status::CANCELLING];

/// A `MaxConcurrency` or `MaxErrors` value: a count or a percentage of the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// An absolute number.
    Count(u64),
    /// A percentage (0–100).
    Percent(u64),
}

impl Rate {
    /// Parses `"10"` or `"10%"`. `None` for anything else or a percentage above 100.
    pub fn parse(s: &str) -> Option<Rate> {
        let digits_ok = |d: &str| !d.is_empty() && d.len() <= 9 && d.bytes().all(|b| b.is_ascii_digit());
        if let Some(p) = s.strip_suffix('%') {
            let p = p.parse::<u64>().ok().filter(|_| digits_ok(p))?;
            (p <= 100).then_some(Rate::Percent(p))
        } else {
            s.parse::<u64>().ok().filter(|_| digits_ok(s)).map(Rate::Count)
        }
    }

    /// The number this rate allows out of `targets`: percentages round up, as SSM's console
    /// explains them ("10% of 5 targets" is 1).
    pub fn of(self, targets: u64) -> u64 {
        match self {
            Rate::Count(n) => n,
            Rate::Percent(p) => (targets * p).div_ceil(100),
        }
    }
}

/// How many invocations may run at once: `MaxConcurrency` of the targets, at least 1.
pub fn concurrency_limit(max_concurrency: &str, targets: u64) -> u64 {
    Rate::parse(max_concurrency).map(|r| r.of(targets)).unwrap_or(50).max(1)
}

/// How many errors the command tolerates before it stops sending.
pub fn error_budget(max_errors: &str, targets: u64) -> u64 {
    Rate::parse(max_errors).map(|r| r.of(targets)).unwrap_or(0)
}

/// Whether an invocation in this state counts as an error against `MaxErrors`: failures and
/// execution timeouts do; delivery timeouts, undeliverable and terminated ones do not.
pub fn counts_as_error(status: &str, status_details: &str) -> bool {
    match status {
        status::FAILED => status_details != details::UNDELIVERABLE,
        status::TIMED_OUT => status_details == details::EXECUTION_TIMED_OUT,
        _ => false,
    }
}

/// A command's rolled-up state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandState {
    /// `Status`.
    pub status: &'static str,
    /// `StatusDetails`.
    pub status_details: &'static str,
    /// `TargetCount`.
    pub target_count: u64,
    /// `CompletedCount`: invocations in a terminal status.
    pub completed_count: u64,
    /// `ErrorCount`: failures and execution timeouts.
    pub error_count: u64,
    /// `DeliveryTimedOutCount`.
    pub delivery_timed_out_count: u64,
}

/// Rolls a command's state up from `(status, status_details, count)` of its invocations.
pub fn roll_up<'a>(
    invocations: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
    max_errors: &str,
    cancel_requested: bool,
) -> CommandState {
    let (mut target, mut completed, mut errors, mut delivery_timeouts) = (0, 0, 0, 0);
    let (mut pending, mut success, mut execution_timeouts, mut cancelled) = (0, 0, 0, 0);
    for (status, details, n) in invocations {
        target += n;
        if is_terminal(status) {
            completed += n;
        }
        if counts_as_error(status, details) {
            errors += n;
        }
        match (status, details) {
            (status::TIMED_OUT, details::DELIVERY_TIMED_OUT) => delivery_timeouts += n,
            (status::TIMED_OUT, details::EXECUTION_TIMED_OUT) => execution_timeouts += n,
            (status::SUCCESS, _) => success += n,
            (status::PENDING, _) => pending += n,
            (status::CANCELLED, d) if d != details::TERMINATED => cancelled += n,
            _ => {}
        }
    }
    let state = |status, status_details| CommandState {
        status,
        status_details,
        target_count: target,
        completed_count: completed,
        error_count: errors,
        delivery_timed_out_count: delivery_timeouts,
    };
    if target == 0 {
        return state(status::SUCCESS, details::NO_INSTANCES_IN_TAG);
    }
    if completed < target {
        return if cancel_requested {
            state(status::CANCELLING, details::CANCELLING)
        } else if pending == target {
            state(status::PENDING, details::PENDING)
        } else {
            state(status::IN_PROGRESS, details::IN_PROGRESS)
        };
    }
    if cancel_requested && cancelled > 0 {
        return state(status::CANCELLED, details::CANCELLED);
    }
    if errors > error_budget(max_errors, target) {
        return if execution_timeouts == errors {
            state(status::TIMED_OUT, details::EXECUTION_TIMED_OUT)
        } else {
            state(status::FAILED, details::FAILED)
        };
    }
    if success == target {
        return state(status::SUCCESS, details::SUCCESS);
    }
    if success + delivery_timeouts == target {
        return state(status::TIMED_OUT, details::DELIVERY_TIMED_OUT);
    }
    state(status::FAILED, details::INCOMPLETE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_scale() {
        assert_eq!(Rate::parse("50"), Some(Rate::Count(50)));
        assert_eq!(Rate::parse("10%"), Some(Rate::Percent(10)));
        assert_eq!(Rate::parse("101%"), None);
        assert_eq!(Rate::parse("-1"), None);
        assert_eq!(Rate::parse("1e3"), None);
        assert_eq!(Rate::parse(""), None);
        assert_eq!(concurrency_limit("10%", 5), 1);
        assert_eq!(concurrency_limit("10%", 0), 1);
        assert_eq!(concurrency_limit("50%", 7), 4);
        assert_eq!(error_budget("0", 10), 0);
        assert_eq!(error_budget("10%", 10), 1);
        assert_eq!(error_budget("0%", 10), 0);
    }

    fn roll(
        rows: &[(&'static str, &'static str, u64)],
        max_errors: &str,
        cancel: bool,
    ) -> (&'static str, &'static str) {
        let s = roll_up(rows.iter().copied(), max_errors, cancel);
        (s.status, s.status_details)
    }

    #[test]
    fn rolls_up_as_ssm_does() {
        use details as d;
        use status as s;
        assert_eq!(roll(&[(s::PENDING, d::PENDING, 3)], "0", false), (s::PENDING, d::PENDING));
        assert_eq!(
            roll(&[(s::PENDING, d::PENDING, 2), (s::SUCCESS, d::SUCCESS, 1)], "0", false),
            (s::IN_PROGRESS, d::IN_PROGRESS)
        );
        assert_eq!(roll(&[(s::SUCCESS, d::SUCCESS, 3)], "0", false), (s::SUCCESS, d::SUCCESS));
        assert_eq!(roll(&[(s::SUCCESS, d::SUCCESS, 2), (s::FAILED, d::FAILED, 1)], "0", false), (s::FAILED, d::FAILED));
        assert_eq!(
            roll(&[(s::SUCCESS, d::SUCCESS, 2), (s::FAILED, d::FAILED, 1)], "1", false),
            (s::FAILED, d::INCOMPLETE)
        );
        assert_eq!(
            roll(&[(s::SUCCESS, d::SUCCESS, 2), (s::TIMED_OUT, d::DELIVERY_TIMED_OUT, 1)], "0", false),
            (s::TIMED_OUT, d::DELIVERY_TIMED_OUT)
        );
        assert_eq!(
            roll(&[(s::TIMED_OUT, d::EXECUTION_TIMED_OUT, 1)], "0", false),
            (s::TIMED_OUT, d::EXECUTION_TIMED_OUT)
        );
        assert_eq!(roll(&[(s::IN_PROGRESS, d::IN_PROGRESS, 1)], "0", true), (s::CANCELLING, d::CANCELLING));
        assert_eq!(
            roll(&[(s::CANCELLED, d::CANCELLED, 1), (s::SUCCESS, d::SUCCESS, 1)], "0", true),
            (s::CANCELLED, d::CANCELLED)
        );
        assert_eq!(
            roll(&[(s::FAILED, d::FAILED, 2), (s::CANCELLED, d::TERMINATED, 3)], "1", false),
            (s::FAILED, d::FAILED)
        );
        assert_eq!(roll(&[], "0", false), (s::SUCCESS, d::NO_INSTANCES_IN_TAG));
        let counts = roll_up(
            [
                (s::FAILED, d::FAILED, 1),
                (s::TIMED_OUT, d::EXECUTION_TIMED_OUT, 1),
                (s::TIMED_OUT, d::DELIVERY_TIMED_OUT, 2),
                (s::FAILED, d::UNDELIVERABLE, 1),
                (s::PENDING, d::PENDING, 1),
            ],
            "0",
            false,
        );
        assert_eq!(
            (counts.target_count, counts.completed_count, counts.error_count, counts.delivery_timed_out_count),
            (6, 5, 2, 2)
        );
    }
}
