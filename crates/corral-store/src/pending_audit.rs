//! Audit records written in the same transaction as the change they describe.
//!
//! The server runs each API call inside [`with_audit_slot`] and stages the call's CloudTrail
//! record in the [`AuditSlot`] ([`AuditSlot::stage`], or through [`current_audit_slot`] from a
//! handler). While the scope runs, the FIRST store write transaction that commits in this task
//! also appends the staged record to its `(account_id, region)` chain, as the last statement
//! before its COMMIT, and the slot then reports the stored record ([`AuditSlot::written`]).
//! The change and its record commit together or not at all: a crash can no longer leave a
//! change without its record.
//!
//! Rules (the same on both backends):
//! - At most one record per scope: only the first committing write carries it; later writes in
//!   the same scope commit without a record, and staging again after that changes nothing in
//!   the trail. (A handler that makes several store writes is audited by its first one.)
//! - A write that fails (including outcomes reported as errors, like `AlreadyExists`,
//!   `NotFound` or `Conflict`, and "no-op" outcomes that roll back, like a refused
//!   registration) rolls back with its record: the slot stays unwritten and the caller appends
//!   the record itself (e.g. with `errorCode`) through [`crate::Store::append_audit`].
//! - If the staged record itself cannot be stored (NUL in a field, duplicate event id), the
//!   write fails with that error and changes nothing: a change is never committed without its
//!   record.
//! - Reads never append, and [`crate::Store::append_audit`] never takes the slot's record.
//! - The slot is task-local: writes in tasks spawned from the scope (`tokio::spawn`) do not see
//!   it. Two writes of the same task racing inside one scope (`join!`) cannot both carry the
//!   record: while one holds it, the other commits without it.
//!
//! Code outside such a scope sees no change at all.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::audit::{AuditRecord, StoredAuditRecord};

tokio::task_local! {
    static SLOT: AuditSlot;
}

/// Runs `fut` with an audit slot: while it runs, the FIRST store write transaction that commits in
/// this task also appends the staged record (if one is staged) to its chain, in that same transaction,
/// and marks the slot written. Nothing else changes for code outside such a scope.
pub async fn with_audit_slot<F: Future>(slot: AuditSlot, fut: F) -> F::Output {
    SLOT.scope(slot, fut).await
}

/// The slot of the current task, if [`with_audit_slot`] is running (for the server's handlers
/// to stage into).
pub fn current_audit_slot() -> Option<AuditSlot> {
    SLOT.try_with(AuditSlot::clone).ok()
}

/// Where a call's audit record waits for the write that carries it. Clones share one slot.
#[derive(Clone, Default)]
pub struct AuditSlot(Arc<Mutex<SlotState>>);

/// The state behind an [`AuditSlot`].
#[derive(Default)]
struct SlotState {
    /// The record the next committing write will carry.
    staged: Option<AuditRecord>,
    /// A write transaction has taken the record and has not finished yet.
    in_flight: bool,
    /// The record as a committed write stored it.
    written: Option<StoredAuditRecord>,
}

impl std::fmt::Debug for AuditSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("AuditSlot")
            .field("staged", &state.staged.as_ref().map(|r| &r.event_id))
            .field("in_flight", &state.in_flight)
            .field("written", &state.written.as_ref().map(|r| r.seq))
            .finish()
    }
}

impl AuditSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages (or replaces) the record that the next committing write will carry. The server stages a
    /// draft before the handler runs and may stage a fuller one (with responseElements) right before
    /// the handler's write. Once the slot is written, staging changes nothing in the trail.
    pub fn stage(&self, record: AuditRecord) {
        self.lock().staged = Some(record);
    }

    /// Some(stored) once a write carried the staged record (so the caller must not append it again).
    pub fn written(&self) -> Option<StoredAuditRecord> {
        self.lock().written.clone()
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // The lock is never held across an await or user code, so poisoning can only come
        // from a panic inside these few lines; the state is still consistent then.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The staged record, taken by one write transaction until it commits ([`Claim::written`]) or
/// fails (dropping the claim gives the record back to the slot).
pub(crate) struct Claim {
    slot: AuditSlot,
    record: AuditRecord,
    done: bool,
}

impl Claim {
    /// The record to append.
    pub(crate) fn record(&self) -> &AuditRecord {
        &self.record
    }

    /// Call only after the transaction carrying the record committed.
    pub(crate) fn written(mut self, stored: StoredAuditRecord) {
        let mut state = self.slot.lock();
        state.in_flight = false;
        state.written = Some(stored);
        self.done = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.done {
            self.slot.lock().in_flight = false;
        }
    }
}

/// Takes the current task's staged record for a write transaction about to commit: `None`
/// outside [`with_audit_slot`], when nothing is staged, when the slot is already written, or
/// while another write of this task holds the record.
pub(crate) fn claim() -> Option<Claim> {
    let slot = current_audit_slot()?;
    let record = {
        let mut state = slot.lock();
        if state.written.is_some() || state.in_flight {
            return None;
        }
        let record = state.staged.clone()?;
        state.in_flight = true;
        record
    };
    Some(Claim { slot, record, done: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event_id: &str) -> AuditRecord {
        AuditRecord {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            event_id: event_id.into(),
            event_time: time::OffsetDateTime::UNIX_EPOCH,
            event_name: "X".into(),
            event_source: "ssm.amazonaws.com".into(),
            username: None,
            access_key_id: None,
            read_only: false,
            resources: Vec::new(),
            error_code: None,
            record_json: "{}".into(),
        }
    }

    fn stored(r: AuditRecord) -> StoredAuditRecord {
        StoredAuditRecord { seq: 1, record: r, prev_hash: String::new(), hash: String::new() }
    }

    #[tokio::test]
    async fn claims_outside_a_scope_or_without_a_record_are_none() {
        assert!(current_audit_slot().is_none());
        assert!(claim().is_none());
        with_audit_slot(AuditSlot::new(), async {
            assert!(current_audit_slot().is_some());
            assert!(claim().is_none());
        })
        .await;
    }

    #[tokio::test]
    async fn one_claim_at_a_time_and_once_written_never_again() {
        let slot = AuditSlot::new();
        slot.stage(record("a"));
        with_audit_slot(slot.clone(), async {
            let first = claim().expect("claimed");
            assert!(claim().is_none(), "held by the first write");
            drop(first); // the first write failed
            let again = claim().expect("given back");
            assert_eq!(again.record().event_id, "a");
            current_audit_slot().expect("slot").stage(record("b"));
            again.written(stored(record("a")));
            assert!(claim().is_none(), "written");
        })
        .await;
        assert_eq!(slot.written().map(|s| s.record.event_id).as_deref(), Some("a"));
    }
}
