//! Conformance cases for the audit trail: chain linkage, concurrent appends, one chain per
//! account and region, LookupEvents' filters, time range and paging, and tamper detection.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{at, hostile_values, lit, Target, ACCOUNT_A, ACCOUNT_B};
use crate::{
    audit_chain_hash, verify_chain, AuditFilter, AuditRecord, AuditResource, ChainBreak, ChainBreakReason, SecretKey,
    Store, StoreError, StoredAuditRecord, AUDIT_GENESIS_HASH,
};

// === sample data ===

const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";
const SSM: &str = "ssm.amazonaws.com";
const IAM: &str = "iam.amazonaws.com";
const INSTANCE: &str = "AWS::SSM::ManagedInstance";
const DOCUMENT: &str = "AWS::SSM::Document";

/// A record of `event_name` at `ms` (plus a sub-millisecond part the store truncates), with a
/// fresh event id and a record_json that names it.
pub(super) fn record(account_id: &str, region: &str, event_name: &str, ms: i64) -> AuditRecord {
    let event_id = uuid::Uuid::new_v4().to_string();
    let record_json = format!(
        r#"{{"eventVersion":"1.09","eventID":"{event_id}","eventName":"{event_name}","eventSource":"{SSM}","awsRegion":"{region}","recipientAccountId":"{account_id}","eventTime":{ms}}}"#
    );
    AuditRecord {
        account_id: account_id.into(),
        region: region.into(),
        event_id,
        event_time: at(ms) + Duration::microseconds(250),
        event_name: event_name.into(),
        event_source: SSM.into(),
        username: Some("admin".into()),
        access_key_id: Some("AKIAADMIN".into()),
        read_only: event_name.starts_with("Describe") || event_name.starts_with("List"),
        resources: Vec::new(),
        error_code: None,
        record_json,
    }
}

fn resource(resource_type: &str, resource_name: &str) -> AuditResource {
    AuditResource { resource_type: resource_type.into(), resource_name: resource_name.into() }
}

/// `r` as the store returns it: time truncated to the millisecond.
pub(super) fn as_stored(r: &AuditRecord) -> AuditRecord {
    let mut r = r.clone();
    r.event_time = crate::common::truncate_millis(r.event_time).expect("truncate");
    r
}

async fn append_ok(store: &dyn Store, r: &AuditRecord) -> StoredAuditRecord {
    store.append_audit(r).await.expect("append_audit")
}

/// The whole chain, read in pages of `page` and checked page by page with [`verify_chain`].
pub(super) async fn walk(
    store: &dyn Store,
    account_id: &str,
    region: &str,
    page: usize,
) -> (Vec<StoredAuditRecord>, Result<(), ChainBreak>) {
    let mut all = Vec::new();
    let mut prev = AUDIT_GENESIS_HASH.to_string();
    let mut after = 0;
    loop {
        let batch = store.audit_chain(account_id, region, after, page).await.expect("audit_chain");
        assert!(batch.len() <= page, "page larger than its limit");
        let Some(last) = batch.last() else { return (all, Ok(())) };
        if let Err(e) = verify_chain(&batch, &prev) {
            all.extend(batch);
            return (all, Err(e));
        }
        prev = last.hash.clone();
        after = last.seq;
        all.extend(batch);
    }
}

/// Every page of a lookup, newest first, following the `before` cursor.
async fn lookup_all(
    store: &dyn Store,
    account_id: &str,
    filter: &AuditFilter,
    start: OffsetDateTime,
    end: OffsetDateTime,
    page: usize,
) -> Vec<StoredAuditRecord> {
    let mut all: Vec<StoredAuditRecord> = Vec::new();
    let mut before = None;
    loop {
        let batch = store.lookup_audit(account_id, REGION, filter, start, end, before, page).await.expect("lookup");
        assert!(batch.len() <= page);
        let Some(last) = batch.last() else { return all };
        before = Some((last.record.event_time, last.seq));
        all.extend(batch);
        assert!(all.len() < 10_000, "paging does not end");
    }
}

pub(super) fn seqs(records: &[StoredAuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.seq).collect()
}

pub(super) fn all_time() -> (OffsetDateTime, OffsetDateTime) {
    (at(0), at(4_102_444_800_000)) // 1970 .. 2100
}

// === cases ===

/// Appends link into a chain: seq 1, 2, 3, ..., each prev_hash the previous hash (64 zeros
/// first), each hash audit_chain_hash(prev_hash, record_json); the chain reads back as
/// appended (resources in order); a duplicate event id or a NUL is refused and changes nothing.
pub async fn audit_append_links_chain(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    assert!(store.audit_streams().await.unwrap().is_empty());
    assert!(store.audit_chain(ACCOUNT_A, REGION, 0, 10).await.unwrap().is_empty());

    let mut appended = Vec::new();
    for i in 0..5 {
        let mut r = record(ACCOUNT_A, REGION, "SendCommand", 1_750_000_000_000 + i);
        // Resources in a non-sorted order: their order is kept.
        r.resources = vec![resource(INSTANCE, &format!("mi-{i:017}")), resource(DOCUMENT, "AWS-RunShellScript")];
        if i == 2 {
            r.username = None;
            r.access_key_id = None;
            r.error_code = Some("AccessDenied".into());
            r.resources.clear();
        }
        let stored = append_ok(&*store, &r).await;
        assert_eq!(stored.seq, i + 1);
        assert_eq!(stored.record, as_stored(&r));
        let want_prev = appended.last().map_or(AUDIT_GENESIS_HASH.to_string(), |p: &StoredAuditRecord| p.hash.clone());
        assert_eq!(stored.prev_hash, want_prev);
        assert_eq!(stored.hash, audit_chain_hash(&stored.prev_hash, &r.record_json));
        assert_eq!(stored.hash.len(), 64);
        assert!(stored.hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        appended.push(stored);
    }
    let (chain, verdict) = walk(&*store, ACCOUNT_A, REGION, 2).await;
    verdict.expect("chain verifies");
    assert_eq!(chain, appended);
    assert_eq!(verify_chain(&chain, AUDIT_GENESIS_HASH), Ok(()));
    assert_eq!(store.audit_chain(ACCOUNT_A, REGION, 3, 10).await.unwrap(), appended[3..]);
    assert!(store.audit_chain(ACCOUNT_A, REGION, 0, 0).await.unwrap().is_empty());

    // The same event id again: refused, nothing appended, the next append continues the chain.
    let mut dup = record(ACCOUNT_A, REGION, "SendCommand", 1_750_000_001_000);
    dup.event_id = appended[1].record.event_id.clone();
    assert!(matches!(store.append_audit(&dup).await, Err(StoreError::AlreadyExists)));
    let mut nul = record(ACCOUNT_A, REGION, "SendCommand", 1_750_000_001_000);
    nul.record_json = "{\"a\":\"\0\"}".into();
    assert!(matches!(store.append_audit(&nul).await, Err(StoreError::InvalidInput(_))));
    let mut nul = record(ACCOUNT_A, REGION, "SendCommand", 1_750_000_001_000);
    nul.resources = vec![resource(INSTANCE, "mi-\0")];
    assert!(matches!(store.append_audit(&nul).await, Err(StoreError::InvalidInput(_))));
    let next = append_ok(&*store, &record(ACCOUNT_A, REGION, "ListCommands", 1_750_000_002_000)).await;
    assert_eq!(next.seq, 6);
    assert_eq!(next.prev_hash, appended[4].hash);
    let (chain, verdict) = walk(&*store, ACCOUNT_A, REGION, 4).await;
    verdict.expect("chain verifies");
    assert_eq!(seqs(&chain), [1, 2, 3, 4, 5, 6]);
    assert_eq!(store.audit_streams().await.unwrap(), [(ACCOUNT_A.to_string(), REGION.to_string())]);
    store.close().await;
}

/// A batch appends in order in one transaction and links into the chain; a batch with one
/// bad record appends nothing.
pub async fn audit_batch_append(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    append_ok(&*store, &record(ACCOUNT_A, REGION, "First", 1_750_000_000_000)).await;
    let batch: Vec<_> = (0..5).map(|i| record(ACCOUNT_A, REGION, "Batched", 1_750_000_000_100 + i)).collect();
    let stored = store.append_audits(&batch).await.unwrap();
    assert_eq!(seqs(&stored), [2, 3, 4, 5, 6]);
    let mut bad = (0..3).map(|i| record(ACCOUNT_A, REGION, "Bad", 1_750_000_000_200 + i)).collect::<Vec<_>>();
    bad[1].record_json = "{\"a\":\"\0\"}".into();
    assert!(store.append_audits(&bad).await.is_err());
    let (chain, verdict) = walk(&*store, ACCOUNT_A, REGION, 3).await;
    verdict.expect("chain verifies");
    assert_eq!(seqs(&chain), [1, 2, 3, 4, 5, 6], "the failed batch appended nothing");
    store.close().await;
}

/// A batch that interleaves two chains, large enough to be split into several multi-row
/// statements, with resources: each chain gets its records in batch order with consecutive
/// seqs, the answer is in the batch's order, and both chains verify.
pub async fn audit_batch_spans_chains(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    append_ok(&*store, &record(ACCOUNT_A, OTHER_REGION, "First", 1_750_000_000_000)).await;
    let batch: Vec<_> = (0..150)
        .map(|i| {
            let region = if i % 3 == 0 { OTHER_REGION } else { REGION };
            let mut r = record(ACCOUNT_A, region, &format!("Batched{i}"), 1_750_000_000_100 + i);
            r.resources = (0..i % 3).map(|k| resource("AWS::SSM::Document", &format!("doc-{i}-{k}"))).collect();
            r
        })
        .collect();
    let stored = store.append_audits(&batch).await.unwrap();
    assert_eq!(stored.len(), batch.len());
    for (sent, got) in batch.iter().zip(&stored) {
        assert_eq!(got.record.event_id, sent.event_id, "answers come in the batch's order");
        assert_eq!(got.record.resources, sent.resources);
    }
    let (main, verdict) = walk(&*store, ACCOUNT_A, REGION, 33).await;
    verdict.expect("chain verifies");
    assert_eq!(seqs(&main), (1..=100).collect::<Vec<_>>());
    let (other, verdict) = walk(&*store, ACCOUNT_A, OTHER_REGION, 33).await;
    verdict.expect("other chain verifies");
    assert_eq!(seqs(&other), (1..=51).collect::<Vec<_>>());
    let expected_other: Vec<_> = batch.iter().filter(|r| r.region == OTHER_REGION).map(|r| &r.event_id).collect();
    assert_eq!(other[1..].iter().map(|r| &r.record.event_id).collect::<Vec<_>>(), expected_other);
    let mut by_seq: Vec<_> = stored.iter().filter(|r| r.record.region == REGION).cloned().collect();
    by_seq.sort_by_key(|r| r.seq);
    assert_eq!(main, by_seq, "what the batch returned is what was stored");
    store.close().await;
}

/// Eight tasks append to one chain at once (while another chain is written too): the chain
/// holds seq 1..=N exactly once each, and verifies.
pub async fn audit_concurrent_appends(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    const TASKS: i64 = 8;
    const EACH: i64 = 6;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..EACH {
                let r = record(ACCOUNT_A, REGION, &format!("Task{t}"), 1_750_000_000_000 + i);
                got.push(store.append_audit(&r).await.expect("append"));
                let other = record(ACCOUNT_A, OTHER_REGION, "Other", 1_750_000_000_000 + i);
                store.append_audit(&other).await.expect("append other chain");
            }
            got
        }));
    }
    let mut returned = Vec::new();
    for task in tasks {
        returned.extend(task.await.expect("task"));
    }
    let n = TASKS * EACH;
    let returned_seqs: BTreeSet<i64> = returned.iter().map(|r| r.seq).collect();
    assert_eq!(returned_seqs, (1..=n).collect::<BTreeSet<_>>(), "a seq was reused or skipped");
    let (chain, verdict) = walk(&*store, ACCOUNT_A, REGION, 7).await;
    verdict.expect("chain verifies");
    assert_eq!(seqs(&chain), (1..=n).collect::<Vec<_>>());
    returned.sort_by_key(|r| r.seq);
    assert_eq!(chain, returned, "what append returned is what was stored");
    let (other, verdict) = walk(&*store, ACCOUNT_A, OTHER_REGION, 100).await;
    verdict.expect("other chain verifies");
    assert_eq!(seqs(&other), (1..=n).collect::<Vec<_>>());
    store.close().await;
}

/// Each (account, region) is its own chain starting at seq 1; lookups and chain reads see only
/// their own; audit_streams lists every chain in byte order.
pub async fn audit_chains_per_account_region(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let chains = [(ACCOUNT_B, REGION), (ACCOUNT_A, OTHER_REGION), (ACCOUNT_A, REGION)];
    for round in 0..3 {
        for (k, (account, region)) in chains.iter().enumerate() {
            let r = record(account, region, &format!("Op{k}"), 1_750_000_000_000 + round);
            let stored = append_ok(&*store, &r).await;
            assert_eq!(stored.seq, round + 1);
            if round == 0 {
                assert_eq!(stored.prev_hash, AUDIT_GENESIS_HASH);
            }
        }
    }
    for (k, (account, region)) in chains.iter().enumerate() {
        let (chain, verdict) = walk(&*store, account, region, 10).await;
        verdict.expect("verifies");
        assert_eq!(seqs(&chain), [1, 2, 3]);
        assert!(chain.iter().all(|r| r.record.account_id == *account && r.record.region == *region));
        assert!(chain.iter().all(|r| r.record.event_name == format!("Op{k}")));
        let (start, end) = all_time();
        let found = store.lookup_audit(account, region, &AuditFilter::None, start, end, None, 50).await.unwrap();
        assert_eq!(seqs(&found), [3, 2, 1]);
        assert!(found.iter().all(|r| r.record.event_name == format!("Op{k}")));
    }
    // A record's event id is unique within its chain only.
    let mut same_id = record(ACCOUNT_B, OTHER_REGION, "Op", 1_750_000_000_000);
    same_id.event_id = store.audit_chain(ACCOUNT_A, REGION, 0, 1).await.unwrap()[0].record.event_id.clone();
    assert_eq!(append_ok(&*store, &same_id).await.seq, 1);
    let (start, end) = all_time();
    assert!(store
        .lookup_audit("333333333333", REGION, &AuditFilter::None, start, end, None, 50)
        .await
        .unwrap()
        .is_empty());
    assert!(store.audit_chain(ACCOUNT_A, "ap-south-1", 0, 50).await.unwrap().is_empty());
    let want: Vec<(String, String)> =
        [(ACCOUNT_A, OTHER_REGION), (ACCOUNT_A, REGION), (ACCOUNT_B, OTHER_REGION), (ACCOUNT_B, REGION)]
            .iter()
            .map(|(a, r)| (a.to_string(), r.to_string()))
            .collect();
    assert_eq!(store.audit_streams().await.unwrap(), want);
    store.close().await;
}

/// (event name, event source, username, access key id, resources as (type, name)).
type Spec =
    (&'static str, &'static str, Option<&'static str>, Option<&'static str>, &'static [(&'static str, &'static str)]);

/// Every LookupEvents attribute filters exactly (case-sensitively), newest first.
pub async fn audit_lookup_filters(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let base = 1_750_000_000_000;
    let mut rows = Vec::new();
    let specs: [Spec; 6] = [
        ("SendCommand", SSM, Some("alice"), Some("AKIAALICE"), &[(INSTANCE, "mi-1"), (DOCUMENT, "AWS-RunShellScript")]),
        ("DescribeInstanceInformation", SSM, Some("alice"), Some("AKIAALICE"), &[]),
        ("SendCommand", SSM, Some("bob"), Some("ASIABOB"), &[(INSTANCE, "mi-2")]),
        ("CreateUser", IAM, Some("Alice"), Some("AKIAALICE2"), &[("AWS::IAM::User", "mi-1")]),
        ("ListCommands", SSM, None, None, &[(INSTANCE, "mi-2"), (INSTANCE, "mi-1")]),
        ("DeregisterManagedInstance", SSM, Some("bob"), Some("ASIABOB"), &[(INSTANCE, "mi-2")]),
    ];
    for (i, (name, source, user, key, resources)) in specs.iter().enumerate() {
        let mut r = record(ACCOUNT_A, REGION, name, base + i as i64 * 1000);
        r.event_source = source.to_string();
        r.username = user.map(str::to_string);
        r.access_key_id = key.map(str::to_string);
        r.resources = resources.iter().map(|(t, n)| resource(t, n)).collect();
        rows.push(append_ok(&*store, &r).await);
    }
    // Noise in other chains must never match.
    for (account, region) in [(ACCOUNT_B, REGION), (ACCOUNT_A, OTHER_REGION)] {
        let mut r = record(account, region, "SendCommand", base);
        r.username = Some("alice".into());
        r.access_key_id = Some("AKIAALICE".into());
        r.resources = vec![resource(INSTANCE, "mi-1")];
        append_ok(&*store, &r).await;
    }
    let (start, end) = all_time();
    let check = |filter: AuditFilter, want: &'static [i64]| {
        let store = Arc::clone(&store);
        async move {
            let got = store.lookup_audit(ACCOUNT_A, REGION, &filter, start, end, None, 50).await.unwrap();
            assert_eq!(seqs(&got), want, "{filter:?}");
            // Paged one at a time: the same records.
            let paged = lookup_all(&*store, ACCOUNT_A, &filter, start, end, 1).await;
            assert_eq!(seqs(&paged), want, "{filter:?} paged");
            got
        }
    };
    let all = check(AuditFilter::None, &[6, 5, 4, 3, 2, 1]).await;
    let mut want_all = rows.clone();
    want_all.reverse();
    assert_eq!(all, want_all, "lookup returns whole records with resources in order");
    check(AuditFilter::EventId(rows[2].record.event_id.clone()), &[3]).await;
    check(AuditFilter::EventId(rows[2].record.event_id.to_uppercase()), &[]).await;
    check(AuditFilter::EventName("SendCommand".into()), &[3, 1]).await;
    check(AuditFilter::EventName("sendcommand".into()), &[]).await;
    check(AuditFilter::ReadOnly(true), &[5, 2]).await;
    check(AuditFilter::ReadOnly(false), &[6, 4, 3, 1]).await;
    check(AuditFilter::Username("alice".into()), &[2, 1]).await;
    check(AuditFilter::Username("Alice".into()), &[4]).await;
    check(AuditFilter::Username("carol".into()), &[]).await;
    check(AuditFilter::ResourceType(INSTANCE.into()), &[6, 5, 3, 1]).await;
    check(AuditFilter::ResourceType(DOCUMENT.into()), &[1]).await;
    check(AuditFilter::ResourceType("AWS::IAM::User".into()), &[4]).await;
    check(AuditFilter::ResourceName("mi-1".into()), &[5, 4, 1]).await;
    check(AuditFilter::ResourceName("mi-2".into()), &[6, 5, 3]).await;
    check(AuditFilter::ResourceName("mi-".into()), &[]).await;
    check(AuditFilter::EventSource(SSM.into()), &[6, 5, 3, 2, 1]).await;
    check(AuditFilter::EventSource(IAM.into()), &[4]).await;
    check(AuditFilter::AccessKeyId("AKIAALICE".into()), &[2, 1]).await;
    check(AuditFilter::AccessKeyId("ASIABOB".into()), &[6, 3]).await;
    check(AuditFilter::AccessKeyId("AKIA%".into()), &[]).await;
    check(AuditFilter::Username("a\0".into()), &[]).await;
    // A record with two matching resources is returned once.
    let got = store
        .lookup_audit(ACCOUNT_A, REGION, &AuditFilter::ResourceType(INSTANCE.into()), start, end, None, 50)
        .await
        .unwrap();
    assert_eq!(got[1].record.resources, [resource(INSTANCE, "mi-2"), resource(INSTANCE, "mi-1")]);
    store.close().await;
}

/// The time range is inclusive at both ends; `before` pages newest first by (event_time, seq)
/// and visits every record once, also when many share a millisecond and times do not follow
/// seq order.
pub async fn audit_lookup_time_range_and_paging(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let base = 1_750_000_000_000;
    // 30 records; times go back and forth and repeat (a replica's clock may lag).
    let offsets: Vec<i64> = (0..30).map(|i| (i * 7 % 10) * 1000 + if i % 4 == 0 { 0 } else { 500 }).collect();
    let mut stored = Vec::new();
    for (i, off) in offsets.iter().enumerate() {
        let name = if i % 3 == 0 { "SendCommand" } else { "ListCommands" };
        stored.push(append_ok(&*store, &record(ACCOUNT_A, REGION, name, base + off)).await);
    }
    let newest_first = |records: &[&StoredAuditRecord]| {
        let mut v: Vec<(OffsetDateTime, i64)> = records.iter().map(|r| (r.record.event_time, r.seq)).collect();
        v.sort();
        v.reverse();
        v.into_iter().map(|(_, s)| s).collect::<Vec<i64>>()
    };
    let (start, end) = all_time();
    let want = newest_first(&stored.iter().collect::<Vec<_>>());
    assert_eq!(want.len(), 30);
    for page in [1, 4, 7, 30, 50] {
        let got = lookup_all(&*store, ACCOUNT_A, &AuditFilter::None, start, end, page).await;
        assert_eq!(seqs(&got), want, "page size {page}");
    }
    let sends: Vec<&StoredAuditRecord> = stored.iter().filter(|r| r.record.event_name == "SendCommand").collect();
    let got = lookup_all(&*store, ACCOUNT_A, &AuditFilter::EventName("SendCommand".into()), start, end, 3).await;
    assert_eq!(seqs(&got), newest_first(&sends));

    // Inclusive bounds, at millisecond precision.
    let lo = at(base + 2000);
    let hi = at(base + 5500);
    let in_range: Vec<&StoredAuditRecord> =
        stored.iter().filter(|r| r.record.event_time >= lo && r.record.event_time <= hi).collect();
    assert!(in_range.iter().any(|r| r.record.event_time == lo) && in_range.iter().any(|r| r.record.event_time == hi));
    let got = lookup_all(&*store, ACCOUNT_A, &AuditFilter::None, lo, hi, 4).await;
    assert_eq!(seqs(&got), newest_first(&in_range));
    // Sub-millisecond bounds exclude the millisecond they cut into.
    let narrow = lookup_all(
        &*store,
        ACCOUNT_A,
        &AuditFilter::None,
        lo + Duration::microseconds(1),
        hi - Duration::microseconds(1),
        50,
    )
    .await;
    assert!(narrow.iter().all(|r| r.record.event_time > lo && r.record.event_time < hi));
    assert_eq!(
        narrow.len(),
        in_range.iter().filter(|r| r.record.event_time != lo && r.record.event_time != hi).count()
    );
    // A single instant.
    let got = lookup_all(&*store, ACCOUNT_A, &AuditFilter::None, lo, lo, 2).await;
    assert_eq!(seqs(&got), newest_first(&stored.iter().filter(|r| r.record.event_time == lo).collect::<Vec<_>>()));
    // Empty: start after end, a range with no records, limit 0, a cursor before the range.
    assert!(store.lookup_audit(ACCOUNT_A, REGION, &AuditFilter::None, hi, lo, None, 50).await.unwrap().is_empty());
    assert!(store
        .lookup_audit(ACCOUNT_A, REGION, &AuditFilter::None, at(0), at(base - 1), None, 50)
        .await
        .unwrap()
        .is_empty());
    assert!(store.lookup_audit(ACCOUNT_A, REGION, &AuditFilter::None, start, end, None, 0).await.unwrap().is_empty());
    assert!(store
        .lookup_audit(ACCOUNT_A, REGION, &AuditFilter::None, lo, hi, Some((at(base), 1)), 50)
        .await
        .unwrap()
        .is_empty());
    // Extreme bounds are accepted.
    let extreme = store
        .lookup_audit(
            ACCOUNT_A,
            REGION,
            &AuditFilter::None,
            time::PrimitiveDateTime::MIN.assume_utc(),
            time::PrimitiveDateTime::MAX.assume_utc(),
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(extreme.len(), 30);
    // The cursor is strictly exclusive: resuming from a record never returns it again.
    let first = store.lookup_audit(ACCOUNT_A, REGION, &AuditFilter::None, start, end, None, 1).await.unwrap();
    let cursor = (first[0].record.event_time, first[0].seq);
    let rest = store.lookup_audit(ACCOUNT_A, REGION, &AuditFilter::None, start, end, Some(cursor), 50).await.unwrap();
    assert_eq!(rest.len(), 29);
    assert!(rest.iter().all(|r| r.seq != first[0].seq));
    store.close().await;
}

/// Quotes, SQL fragments, unicode, control characters and long strings in every text field
/// are stored, hashed and read back verbatim, and filters match them exactly.
pub async fn audit_hostile_strings(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let values = hostile_values();
    let region = "'; DROP TABLE audit_records; --";
    for (i, s) in values.iter().enumerate() {
        let mut r = record(ACCOUNT_A, region, s, 1_750_000_000_000 + i as i64);
        r.record_json = format!("{s}{{\"k\":\"{s}\"}}\n{s}");
        r.username = Some(s.clone());
        r.access_key_id = Some(s.clone());
        r.event_source = s.clone();
        r.error_code = Some(s.clone());
        r.resources = vec![resource(s, s), resource(&format!("{s}2"), &format!("{s}#{i}"))];
        let stored = append_ok(&*store, &r).await;
        assert_eq!(stored.record, as_stored(&r), "value {i}");
        assert_eq!(stored.hash, audit_chain_hash(&stored.prev_hash, &r.record_json));
        let (start, end) = all_time();
        let found = store
            .lookup_audit(ACCOUNT_A, region, &AuditFilter::ResourceName(format!("{s}#{i}")), start, end, None, 5)
            .await
            .unwrap();
        assert_eq!(found, std::slice::from_ref(&stored), "value {i}");
        let found = store
            .lookup_audit(ACCOUNT_A, region, &AuditFilter::Username(s.clone()), start, end, None, 50)
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "value {i}");
    }
    let (chain, verdict) = walk(&*store, ACCOUNT_A, region, 3).await;
    verdict.expect("chain verifies");
    assert_eq!(chain.len(), values.len());
    for (stored, s) in chain.iter().zip(&values) {
        assert_eq!(stored.record.record_json, format!("{s}{{\"k\":\"{s}\"}}\n{s}"));
    }
    assert_eq!(store.audit_streams().await.unwrap(), [(ACCOUNT_A.to_string(), region.to_string())]);
    store.close().await;
}

/// verify_chain finds the first record that was modified (record_json or hash), removed or
/// moved, in the database as well as in a slice.
pub async fn audit_verify_detects_tampering(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let regions = ["r-json", "r-hash", "r-delete", "r-swap", "r-first", "r-intact"];
    for region in regions {
        for i in 0..6 {
            append_ok(&*store, &record(ACCOUNT_A, region, "SendCommand", 1_750_000_000_000 + i)).await;
        }
    }
    let acct = lit(ACCOUNT_A);
    let at_seq = |region: &str, seq: i64| format!("account_id = {acct} AND region = {} AND seq = {seq}", lit(region));
    let update =
        |region: &str, seq: i64, set: &str| format!("UPDATE audit_records SET {set} WHERE {}", at_seq(region, seq));
    target.raw_exec(update("r-json", 3, "record_json = record_json || ' '")).await;
    target.raw_exec(update("r-hash", 3, &format!("hash = {}", lit(&"ab".repeat(32))))).await;
    target.raw_exec(format!("DELETE FROM audit_records WHERE {}", at_seq("r-delete", 3))).await;
    target.raw_exec(update("r-swap", 3, "seq = 1000")).await;
    target.raw_exec(update("r-swap", 4, "seq = 3")).await;
    target.raw_exec(update("r-swap", 1000, "seq = 4")).await;
    target.raw_exec(format!("DELETE FROM audit_records WHERE {}", at_seq("r-first", 1))).await;

    let event_at = |chain: &[StoredAuditRecord], seq: i64| {
        chain.iter().find(|r| r.seq == seq).map(|r| r.record.event_id.clone()).expect("record present")
    };
    for page in [1, 2, 10] {
        let (chain, verdict) = walk(&*store, ACCOUNT_A, "r-json", page).await;
        let e = verdict.expect_err("modified record_json");
        assert_eq!((e.seq, e.event_id.clone()), (3, event_at(&chain, 3)));
        assert!(matches!(e.reason, ChainBreakReason::HashMismatch { .. }), "{e}");

        let (chain, verdict) = walk(&*store, ACCOUNT_A, "r-hash", page).await;
        let e = verdict.expect_err("modified hash");
        assert_eq!((e.seq, e.event_id.clone()), (3, event_at(&chain, 3)));
        assert!(matches!(e.reason, ChainBreakReason::HashMismatch { .. }), "{e}");

        let (chain, verdict) = walk(&*store, ACCOUNT_A, "r-delete", page).await;
        let e = verdict.expect_err("deleted record");
        assert_eq!(e.seq, 4);
        assert_eq!(e.event_id, event_at(&chain, 4));
        // Within a page the gap shows in the seq; across pages in the broken link.
        assert!(
            matches!(e.reason, ChainBreakReason::SeqGap { expected: 3 } | ChainBreakReason::PrevHashMismatch { .. }),
            "{e}"
        );

        let (chain, verdict) = walk(&*store, ACCOUNT_A, "r-swap", page).await;
        let e = verdict.expect_err("reordered records");
        assert_eq!((e.seq, e.event_id.clone()), (3, event_at(&chain, 3)));
        assert!(matches!(e.reason, ChainBreakReason::PrevHashMismatch { .. }), "{e}");

        let (_, verdict) = walk(&*store, ACCOUNT_A, "r-first", page).await;
        let e = verdict.expect_err("first record deleted");
        assert_eq!(e.seq, 2);
        assert_eq!(e.reason, ChainBreakReason::SeqGap { expected: 1 });

        let (chain, verdict) = walk(&*store, ACCOUNT_A, "r-intact", page).await;
        verdict.expect("untouched chain verifies");
        assert_eq!(chain.len(), 6);
    }

    // The same checks on slices.
    let (intact, _) = walk(&*store, ACCOUNT_A, "r-intact", 10).await;
    assert_eq!(verify_chain(&intact, AUDIT_GENESIS_HASH), Ok(()));
    assert_eq!(verify_chain(&[], AUDIT_GENESIS_HASH), Ok(()));
    assert_eq!(verify_chain(&intact[2..], &intact[1].hash), Ok(()), "a run continues from the previous hash");
    let e = verify_chain(&intact[2..], AUDIT_GENESIS_HASH).unwrap_err();
    assert_eq!((e.seq, e.reason), (3, ChainBreakReason::SeqGap { expected: 1 }));
    let e = verify_chain(&intact[2..], &intact[0].hash).unwrap_err();
    assert_eq!((e.seq, e.reason), (3, ChainBreakReason::PrevHashMismatch { expected: intact[0].hash.clone() }));
    let mut reordered = intact.clone();
    reordered.swap(2, 3);
    let e = verify_chain(&reordered, AUDIT_GENESIS_HASH).unwrap_err();
    assert_eq!(
        (e.seq, e.event_id.clone(), e.reason),
        (4, intact[3].record.event_id.clone(), ChainBreakReason::SeqGap { expected: 3 })
    );
    let mut gap = intact.clone();
    gap.remove(4);
    let e = verify_chain(&gap, AUDIT_GENESIS_HASH).unwrap_err();
    assert_eq!((e.seq, e.reason), (6, ChainBreakReason::SeqGap { expected: 5 }));
    let mut modified = intact.clone();
    modified[5].record.record_json.push('x');
    let e = verify_chain(&modified, AUDIT_GENESIS_HASH).unwrap_err();
    assert_eq!(e.seq, 6);
    assert!(
        e.to_string().starts_with(&format!("record seq=6 event {}: hash does not match", intact[5].record.event_id)),
        "{e}"
    );
    // Rehashing a modified record moves the break to the next record's link.
    let mut rehashed = intact.clone();
    rehashed[1].record.record_json.push('x');
    rehashed[1].hash = audit_chain_hash(&rehashed[1].prev_hash, &rehashed[1].record.record_json);
    let e = verify_chain(&rehashed, AUDIT_GENESIS_HASH).unwrap_err();
    assert_eq!((e.seq, e.reason), (3, ChainBreakReason::PrevHashMismatch { expected: rehashed[1].hash.clone() }));
    store.close().await;
}
