//! Conformance cases for audit slots ([`crate::with_audit_slot`]): inside a scope, the first
//! write that commits carries the staged record into its chain in the same transaction; failed
//! writes, reads, unstaged scopes and later writes of the scope append nothing.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use super::audit::{all_time, as_stored, record, seqs, walk};
use super::{access_key, account, setting, user, Target, ACCOUNT_A};
use crate::{
    current_audit_slot, with_audit_slot, AccessKeyStatus, AuditFilter, AuditRecord, AuditSlot, IamEntity,
    PolicySubject, SecretKey, Store, StoreError, StoredAuditRecord, Tag,
};

const REGION: &str = "us-east-1";

/// The chain of `ACCOUNT_A` in `REGION`, which must verify.
async fn chain(store: &dyn Store) -> Vec<StoredAuditRecord> {
    let (chain, verdict) = walk(store, ACCOUNT_A, REGION, 3).await;
    verdict.expect("chain verifies");
    chain
}

/// The records of the chain with this event id.
async fn by_event_id(store: &dyn Store, event_id: &str) -> Vec<StoredAuditRecord> {
    let (start, end) = all_time();
    store
        .lookup_audit(ACCOUNT_A, REGION, &AuditFilter::EventId(event_id.into()), start, end, None, 10)
        .await
        .expect("lookup by event id")
}

/// Runs `fut` in a fresh audit scope, with `staged` staged first when given.
async fn in_scope<T>(staged: Option<&AuditRecord>, fut: impl Future<Output = T>) -> (T, AuditSlot) {
    let slot = AuditSlot::new();
    if let Some(r) = staged {
        slot.stage(r.clone());
    }
    let out = with_audit_slot(slot.clone(), fut).await;
    (out, slot)
}

fn staged(name: &str, ms: i64) -> AuditRecord {
    record(ACCOUNT_A, REGION, name, 1_760_000_000_000 + ms)
}

fn tag(key: &str, value: &str) -> Tag {
    Tag { key: key.into(), value: value.into() }
}

/// Checks that `slot` carried `r` at `seq` and that the chain holds it there.
async fn assert_carried(store: &dyn Store, slot: &AuditSlot, r: &AuditRecord, seq: i64) -> StoredAuditRecord {
    let written = slot.written().unwrap_or_else(|| panic!("{}: the write did not carry the record", r.event_name));
    assert_eq!(written.seq, seq, "{}", r.event_name);
    assert_eq!(written.record, as_stored(r), "{}", r.event_name);
    assert_eq!(by_event_id(store, &r.event_id).await, std::slice::from_ref(&written), "{}", r.event_name);
    written
}

// === cases ===

/// A write inside a scope with a staged record commits the record with it: the record is in its
/// chain (linked after what was there), `written()` returns it as stored, and the chain
/// verifies; for one-statement writes and multi-statement transactions alike.
pub async fn audit_slot_write_carries_record(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    store.create_account(&account(ACCOUNT_A)).await.expect("account");
    let first = store.append_audit(&staged("Before", 0)).await.expect("plain append");
    assert!(current_audit_slot().is_none());

    let r = staged("SetMeta", 1);
    let (res, slot) = in_scope(Some(&r), store.set_meta("k", "v")).await;
    res.expect("set_meta");
    let carried = assert_carried(&*store, &slot, &r, 2).await;
    assert_eq!(carried.prev_hash, first.hash);
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some("v"));

    let r = staged("CreateUser", 2);
    let (res, slot) = in_scope(Some(&r), store.create_user(&user(ACCOUNT_A, "alice"))).await;
    res.expect("create_user");
    assert_carried(&*store, &slot, &r, 3).await;
    assert!(store.get_user(ACCOUNT_A, "alice").await.unwrap().is_some());

    let r = staged("CreateUserWithTags", 3);
    let (res, slot) = in_scope(Some(&r), store.create_user_with_tags(&user(ACCOUNT_A, "bob"), &[tag("a", "1")])).await;
    res.expect("create_user_with_tags");
    assert_carried(&*store, &slot, &r, 4).await;

    let r = staged("TagUser", 4);
    let (res, slot) =
        in_scope(Some(&r), store.tag_entity(ACCOUNT_A, IamEntity::User("bob"), &[tag("b", "2")], 50)).await;
    res.expect("tag_entity");
    assert_carried(&*store, &slot, &r, 5).await;
    assert_eq!(
        store.list_entity_tags(ACCOUNT_A, IamEntity::User("bob")).await.unwrap(),
        [tag("a", "1"), tag("b", "2")]
    );

    let r = staged("UpdateServiceSetting", 5);
    let (res, slot) = in_scope(Some(&r), store.put_service_setting(&setting(ACCOUNT_A, REGION, "advanced"))).await;
    res.expect("put_service_setting");
    assert_carried(&*store, &slot, &r, 6).await;

    let r = staged("UntagUser", 6);
    let (res, slot) = in_scope(Some(&r), store.untag_entity(ACCOUNT_A, IamEntity::User("bob"), &["a".into()])).await;
    res.expect("untag_entity");
    assert_carried(&*store, &slot, &r, 7).await;

    // A one-statement write that must change a row, and a multi-statement delete.
    let key = access_key(ACCOUNT_A, "alice", "secret");
    store.create_access_key(&key).await.expect("key (outside a scope: no record)");
    let r = staged("UpdateAccessKey", 7);
    let (res, slot) = in_scope(
        Some(&r),
        store.update_access_key_status(ACCOUNT_A, "alice", &key.access_key_id, AccessKeyStatus::Inactive),
    )
    .await;
    res.expect("update_access_key_status");
    assert_carried(&*store, &slot, &r, 8).await;
    let r = staged("DeleteUser", 8);
    let (res, slot) = in_scope(Some(&r), store.delete_user(ACCOUNT_A, "bob")).await;
    res.expect("delete_user");
    let last = assert_carried(&*store, &slot, &r, 9).await;
    assert!(store.get_user(ACCOUNT_A, "bob").await.unwrap().is_none());

    let chain = chain(&*store).await;
    assert_eq!(seqs(&chain), (1..=9).collect::<Vec<_>>());
    assert_eq!(chain.last(), Some(&last));
    store.close().await;
}

/// A write that fails inside a scope (AlreadyExists, NotFound, Conflict; one statement or a
/// transaction) appends nothing and leaves the slot unwritten, so a later successful write of
/// the scope still carries the record. A staged record that cannot be stored (NUL, an event id
/// already in the chain) fails the write, which then changes nothing.
pub async fn audit_slot_failed_write_appends_nothing(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    store.create_account(&account(ACCOUNT_A)).await.expect("account");
    store.create_user(&user(ACCOUNT_A, "alice")).await.expect("alice");

    let r = staged("CreateUser", 1);
    let (res, slot) = in_scope(Some(&r), store.create_user(&user(ACCOUNT_A, "alice"))).await;
    assert!(matches!(res, Err(StoreError::AlreadyExists)), "{res:?}");
    assert!(slot.written().is_none());
    assert!(by_event_id(&*store, &r.event_id).await.is_empty());

    let r = staged("DeleteAccessKey", 2);
    let (res, slot) = in_scope(Some(&r), store.delete_access_key(ACCOUNT_A, "alice", "AKIANOTTHERE")).await;
    assert!(matches!(res, Err(StoreError::NotFound)), "{res:?}");
    assert!(slot.written().is_none());

    let r = staged("TagUser", 3);
    let tags = [tag("a", "1"), tag("b", "2")];
    let (res, slot) = in_scope(Some(&r), store.tag_entity(ACCOUNT_A, IamEntity::User("alice"), &tags, 1)).await;
    assert!(matches!(&res, Err(StoreError::Conflict(reason)) if reason == "TooManyTags"), "{res:?}");
    assert!(slot.written().is_none());
    assert!(store.list_entity_tags(ACCOUNT_A, IamEntity::User("alice")).await.unwrap().is_empty());

    let r = staged("DeleteUser", 4);
    let (res, slot) = in_scope(Some(&r), store.delete_user(ACCOUNT_A, "nobody")).await;
    assert!(matches!(res, Err(StoreError::NotFound)), "{res:?}");
    assert!(slot.written().is_none());
    assert!(chain(&*store).await.is_empty());
    assert!(store.audit_streams().await.unwrap().is_empty());

    // A failed write, then a successful one in the same scope: the second carries the record.
    let r = staged("CreateUser", 5);
    let (res, slot) = in_scope(Some(&r), async {
        let dup = store.create_user(&user(ACCOUNT_A, "alice")).await;
        assert!(matches!(dup, Err(StoreError::AlreadyExists)), "{dup:?}");
        assert!(current_audit_slot().expect("in scope").written().is_none());
        store.create_user(&user(ACCOUNT_A, "carol")).await
    })
    .await;
    res.expect("create carol");
    assert_carried(&*store, &slot, &r, 1).await;

    // A record that cannot be stored: the write fails and changes nothing.
    let mut bad = staged("CreateUser", 6);
    bad.record_json = "{\"a\":\"\0\"}".into();
    let (res, slot) = in_scope(Some(&bad), store.create_user(&user(ACCOUNT_A, "dave"))).await;
    assert!(matches!(res, Err(StoreError::InvalidInput(_))), "{res:?}");
    assert!(slot.written().is_none());
    assert!(store.get_user(ACCOUNT_A, "dave").await.unwrap().is_none());
    let (res, _) = in_scope(Some(&bad), store.create_user_with_tags(&user(ACCOUNT_A, "erin"), &[])).await;
    assert!(matches!(res, Err(StoreError::InvalidInput(_))), "{res:?}");
    assert!(store.get_user(ACCOUNT_A, "erin").await.unwrap().is_none());
    let mut dup_id = staged("SetMeta", 7);
    dup_id.event_id = r.event_id.clone();
    let (res, slot) = in_scope(Some(&dup_id), store.set_meta("x", "y")).await;
    assert!(matches!(res, Err(StoreError::AlreadyExists)), "{res:?}");
    assert!(slot.written().is_none());
    assert!(store.get_meta("x").await.unwrap().is_none());

    assert_eq!(seqs(&chain(&*store).await), [1]);
    store.close().await;
}

/// Several writes in one scope: only the first carries the record (exactly one record), even
/// if another record is staged after it. `append_audit` inside a scope appends its own record
/// and leaves the staged one to the next write.
pub async fn audit_slot_once_per_scope(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    store.create_account(&account(ACCOUNT_A)).await.expect("account");

    let r = staged("CreateUser", 1);
    let later = staged("Later", 2);
    let (res, slot) = in_scope(Some(&r), async {
        store.create_user(&user(ACCOUNT_A, "a")).await?;
        store.create_user_with_tags(&user(ACCOUNT_A, "b"), &[tag("k", "v")]).await?;
        current_audit_slot().expect("in scope").stage(later.clone());
        store.set_meta("m", "1").await?;
        store.create_user(&user(ACCOUNT_A, "c")).await
    })
    .await;
    res.expect("writes");
    assert_carried(&*store, &slot, &r, 1).await;
    assert!(by_event_id(&*store, &later.event_id).await.is_empty());
    assert_eq!(store.list_users(ACCOUNT_A).await.unwrap().len(), 3);
    assert_eq!(seqs(&chain(&*store).await), [1]);

    let r = staged("CreateUser", 3);
    let plain = staged("Plain", 4);
    let (res, slot) = in_scope(Some(&r), async {
        let appended = store.append_audit(&plain).await.expect("append_audit");
        assert_eq!(appended.seq, 2);
        assert!(current_audit_slot().expect("in scope").written().is_none());
        store.create_user(&user(ACCOUNT_A, "d")).await
    })
    .await;
    res.expect("create d");
    assert_carried(&*store, &slot, &r, 3).await;
    assert_eq!(seqs(&chain(&*store).await), [1, 2, 3]);
    store.close().await;
}

/// Reads inside a scope with a staged record append nothing.
pub async fn audit_slot_reads_append_nothing(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    store.create_account(&account(ACCOUNT_A)).await.expect("account");
    store.create_user(&user(ACCOUNT_A, "alice")).await.expect("alice");
    store.set_meta("k", "v").await.expect("meta");

    let r = staged("GetUser", 1);
    let (_, slot) = in_scope(Some(&r), async {
        let (start, end) = all_time();
        assert!(store.get_account(ACCOUNT_A).await.unwrap().is_some());
        assert!(store.get_user(ACCOUNT_A, "alice").await.unwrap().is_some());
        assert_eq!(store.list_users(ACCOUNT_A).await.unwrap().len(), 1);
        assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some("v"));
        assert!(store.list_entity_tags(ACCOUNT_A, IamEntity::User("alice")).await.unwrap().is_empty());
        assert!(store.list_access_keys(ACCOUNT_A, "alice").await.unwrap().is_empty());
        assert!(store.list_groups_for_user(ACCOUNT_A, "alice").await.unwrap().is_empty());
        store.identity_policies(ACCOUNT_A, PolicySubject::User("alice")).await.expect("identity policies");
        assert!(store.get_service_setting(ACCOUNT_A, REGION, "/x").await.unwrap().is_none());
        assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 0);
        assert!(store
            .lookup_audit(ACCOUNT_A, REGION, &AuditFilter::None, start, end, None, 5)
            .await
            .unwrap()
            .is_empty());
        assert!(store.audit_chain(ACCOUNT_A, REGION, 0, 5).await.unwrap().is_empty());
        assert!(store.audit_streams().await.unwrap().is_empty());
    })
    .await;
    assert!(slot.written().is_none());
    assert!(chain(&*store).await.is_empty());
    assert!(store.audit_streams().await.unwrap().is_empty());
    store.close().await;
}

/// A scope with nothing staged: writes work as outside a scope and nothing is appended; the
/// scope's slot is visible to the code it runs, and only there.
pub async fn audit_slot_unstaged_appends_nothing(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    store.create_account(&account(ACCOUNT_A)).await.expect("account");
    let (res, slot) = in_scope(None, async {
        assert!(current_audit_slot().is_some());
        store.create_user(&user(ACCOUNT_A, "a")).await?;
        store.create_user_with_tags(&user(ACCOUNT_A, "b"), &[tag("k", "v")]).await?;
        store.set_meta("m", "1").await?;
        store.delete_user(ACCOUNT_A, "a").await
    })
    .await;
    res.expect("writes");
    assert!(current_audit_slot().is_none());
    assert!(slot.written().is_none());
    assert_eq!(store.list_users(ACCOUNT_A).await.unwrap().len(), 1);
    assert!(chain(&*store).await.is_empty());
    assert!(store.audit_streams().await.unwrap().is_empty());
    store.close().await;
}

/// Eight tasks, each in its own scope with its own record, write at once (one-statement writes
/// and transactions, while plain appends go to the same chain): each write carries its own
/// record, the chain holds every seq once and verifies.
pub async fn audit_slot_concurrent_scopes(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    store.create_account(&account(ACCOUNT_A)).await.expect("account");
    for i in 0..2 {
        store.append_audit(&staged("Before", i)).await.expect("plain append");
    }
    const TASKS: i64 = 8;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store: Arc<dyn Store> = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let r = staged(&format!("Task{t}"), 10 + t);
            let u = user(ACCOUNT_A, &format!("user{t}"));
            let (res, slot) = if t % 2 == 0 {
                in_scope(Some(&r), store.create_user(&u)).await
            } else {
                in_scope(Some(&r), store.create_user_with_tags(&u, &[tag("t", &t.to_string())])).await
            };
            res.expect("write");
            let written = slot.written().expect("written");
            assert_eq!(written.record, as_stored(&r));
            written
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        written.push(task.await.expect("task"));
    }
    let got: BTreeSet<i64> = written.iter().map(|w| w.seq).collect();
    assert_eq!(got, (3..=2 + TASKS).collect::<BTreeSet<_>>(), "a seq was reused or skipped");
    let chain = chain(&*store).await;
    assert_eq!(seqs(&chain), (1..=2 + TASKS).collect::<Vec<_>>());
    written.sort_by_key(|w| w.seq);
    assert_eq!(chain[2..], written[..], "what the slots report is what was stored");
    assert_eq!(store.list_users(ACCOUNT_A).await.unwrap().len(), 8);
    store.close().await;
}
