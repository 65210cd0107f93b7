//! Conformance cases for SSM documents: creation with the first version, versions, the
//! default version, deletion, listing and tags.

use std::sync::Arc;

use super::{at, bootstrapped, Target, ACCOUNT_A, ACCOUNT_B};
use crate::{with_audit_slot, AuditSlot, Document, DocumentVersion, SecretKey, Store, StoreError, Tag};

// === sample data ===

const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";

fn tag(key: &str, value: &str) -> Tag {
    Tag { key: key.into(), value: value.into() }
}

fn document(account_id: &str, region: &str, name: &str) -> Document {
    Document {
        account_id: account_id.into(),
        region: region.into(),
        name: name.into(),
        document_type: "Command".into(),
        created_at: at(1_700_000_100_123),
        default_version: 1,
        latest_version: 1,
        last_assigned_version: 1,
        tags: Vec::new(),
    }
}

fn version(doc: &Document, number: i64, content: &str) -> DocumentVersion {
    DocumentVersion {
        account_id: doc.account_id.clone(),
        region: doc.region.clone(),
        name: doc.name.clone(),
        version: number,
        version_name: None,
        display_name: None,
        content: content.into(),
        format: "JSON".into(),
        hash: format!("hash-of-{content}"),
        document_type: doc.document_type.clone(),
        schema_version: "2.2".into(),
        target_type: Some("/".into()),
        platform_types: vec!["Linux".into(), "MacOS".into()],
        status: "Active".into(),
        created_at: at(1_700_000_100_123 + number * 1000),
    }
}

async fn fresh(target: &Target) -> Arc<dyn Store> {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&super::account(ACCOUNT_B)).await.expect("account B");
    store
}

async fn create(store: &dyn Store, doc: &Document, content: &str) -> DocumentVersion {
    let v = version(doc, 1, content);
    store.create_document(doc, &v, 500).await.expect("create document");
    v
}

// === cases ===

/// A document is created with version 1 and its tags, read back exactly, unique per account
/// and region, and counted against the per-region limit.
pub async fn documents_create_and_get(target: &Target) {
    let store = fresh(target).await;
    let mut doc = document(ACCOUNT_A, REGION, "Restart-Service");
    doc.tags = vec![tag("team", "ops"), tag("env", "prod")];
    let mut v1 = version(&doc, 1, "{\"schemaVersion\":\"2.2\"}");
    v1.version_name = Some("first".into());
    v1.display_name = Some("Restart a service".into());
    store.create_document(&doc, &v1, 500).await.expect("create");

    let got = store.get_document(ACCOUNT_A, REGION, "Restart-Service").await.unwrap().expect("document");
    let mut want = doc.clone();
    want.tags.sort();
    assert_eq!(got, want);
    assert_eq!(store.get_document_version(ACCOUNT_A, REGION, "Restart-Service", 1).await.unwrap(), Some(v1.clone()));
    assert_eq!(store.get_document_version(ACCOUNT_A, REGION, "Restart-Service", 2).await.unwrap(), None);

    // Names are case-sensitive and scoped to account and region.
    assert_eq!(store.get_document(ACCOUNT_A, REGION, "restart-service").await.unwrap(), None);
    assert_eq!(store.get_document(ACCOUNT_B, REGION, "Restart-Service").await.unwrap(), None);
    assert_eq!(store.get_document(ACCOUNT_A, OTHER_REGION, "Restart-Service").await.unwrap(), None);
    assert_eq!(store.get_document(ACCOUNT_A, REGION, "nul\0").await.unwrap(), None);

    // The same name again is refused and changes nothing; elsewhere it is fine.
    let again = document(ACCOUNT_A, REGION, "Restart-Service");
    let err = store.create_document(&again, &version(&again, 1, "other"), 500).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    assert_eq!(store.get_document(ACCOUNT_A, REGION, "Restart-Service").await.unwrap(), Some(want));
    create(&*store, &document(ACCOUNT_B, REGION, "Restart-Service"), "b").await;
    create(&*store, &document(ACCOUNT_A, OTHER_REGION, "Restart-Service"), "c").await;
    create(&*store, &document(ACCOUNT_A, REGION, "restart-service"), "d").await;

    // Unknown account; inconsistent first versions; NUL; duplicate tag keys.
    let orphan = document("999999999999", REGION, "Orphan");
    let err = store.create_document(&orphan, &version(&orphan, 1, "x"), 500).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let doc2 = document(ACCOUNT_A, REGION, "Second");
    let err = store.create_document(&doc2, &version(&doc2, 2, "x"), 500).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    let mut nul = version(&doc2, 1, "x");
    nul.content = "a\0b".into();
    let err = store.create_document(&doc2, &nul, 500).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    let mut dup_tags = doc2.clone();
    dup_tags.tags = vec![tag("k", "1"), tag("k", "2")];
    let err = store.create_document(&dup_tags, &version(&dup_tags, 1, "x"), 500).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert_eq!(store.get_document(ACCOUNT_A, REGION, "Second").await.unwrap(), None);

    // The limit counts the account's documents in the region (two so far).
    let err = store.create_document(&doc2, &version(&doc2, 1, "x"), 2).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "DocumentLimit"), "{err:?}");
    store.create_document(&doc2, &version(&doc2, 1, "x"), 3).await.expect("under the limit");
    store.close().await;
}

/// Versions: numbered one after the last ever assigned, unique by content and version name;
/// the default moves only when asked; deleting a version never deletes the default.
pub async fn document_versions_lifecycle(target: &Target) {
    let store = fresh(target).await;
    let doc = document(ACCOUNT_A, REGION, "Deploy");
    let v1 = create(&*store, &doc, "one").await;
    let name = "Deploy";

    let mut v2 = version(&doc, 2, "two");
    v2.version_name = Some("release-2".into());
    store.add_document_version(&v2, 1000).await.expect("v2");
    let got = store.get_document(ACCOUNT_A, REGION, name).await.unwrap().unwrap();
    assert_eq!((got.default_version, got.latest_version, got.last_assigned_version), (1, 2, 2));

    // A stale number, the same content, the same version name, the version limit.
    let err = store.add_document_version(&version(&doc, 2, "stale"), 1000).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "VersionChanged"), "{err:?}");
    let err = store.add_document_version(&version(&doc, 3, "one"), 1000).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "DuplicateContent"), "{err:?}");
    let mut same_name = version(&doc, 3, "three");
    same_name.version_name = Some("release-2".into());
    let err = store.add_document_version(&same_name, 1000).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "DuplicateVersionName"), "{err:?}");
    let err = store.add_document_version(&version(&doc, 3, "three"), 2).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "DocumentVersionLimit"), "{err:?}");
    let missing = document(ACCOUNT_B, REGION, name);
    let err = store.add_document_version(&version(&missing, 2, "x"), 1000).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let v3 = version(&doc, 3, "three");
    store.add_document_version(&v3, 1000).await.expect("v3");
    let all = store.list_document_versions(ACCOUNT_A, REGION, name).await.unwrap();
    assert_eq!(all, vec![v1.clone(), v2.clone(), v3.clone()]);
    let err = store.list_document_versions(ACCOUNT_B, REGION, name).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // Default version.
    store.set_default_document_version(ACCOUNT_A, REGION, name, 2).await.expect("default 2");
    assert_eq!(store.get_document(ACCOUNT_A, REGION, name).await.unwrap().unwrap().default_version, 2);
    let err = store.set_default_document_version(ACCOUNT_A, REGION, name, 9).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "NoSuchVersion"), "{err:?}");
    let err = store.set_default_document_version(ACCOUNT_A, OTHER_REGION, name, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // Deleting versions: never the default; the latest falls back; numbers are not reused.
    let err = store.delete_document_version(ACCOUNT_A, REGION, name, 2).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "DefaultVersion"), "{err:?}");
    let err = store.delete_document_version(ACCOUNT_A, REGION, name, 7).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.delete_document_version(ACCOUNT_A, REGION, name, 3).await.expect("delete v3");
    let got = store.get_document(ACCOUNT_A, REGION, name).await.unwrap().unwrap();
    assert_eq!((got.default_version, got.latest_version, got.last_assigned_version), (2, 2, 3));
    let err = store.add_document_version(&version(&doc, 3, "again"), 1000).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "VersionChanged"), "{err:?}");
    // The deleted version's content may come back as a new version.
    store.add_document_version(&version(&doc, 4, "three"), 1000).await.expect("v4");
    store.delete_document_version(ACCOUNT_A, REGION, name, 1).await.expect("delete v1");
    let numbers: Vec<i64> =
        store.list_document_versions(ACCOUNT_A, REGION, name).await.unwrap().iter().map(|v| v.version).collect();
    assert_eq!(numbers, [2, 4]);

    // Deleting the document takes its versions and tags; a new one starts again at 1.
    store.put_document_tags(ACCOUNT_A, REGION, name, &[tag("a", "b")], 50).await.unwrap();
    let err = store.delete_document(ACCOUNT_B, REGION, name).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.delete_document(ACCOUNT_A, REGION, name).await.expect("delete");
    assert_eq!(store.get_document(ACCOUNT_A, REGION, name).await.unwrap(), None);
    assert_eq!(store.get_document_version(ACCOUNT_A, REGION, name, 2).await.unwrap(), None);
    let err = store.delete_document(ACCOUNT_A, REGION, name).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    create(&*store, &doc, "one").await;
    let got = store.get_document(ACCOUNT_A, REGION, name).await.unwrap().unwrap();
    assert_eq!((got.latest_version, got.tags.len()), (1, 0));
    store.close().await;
}

/// Listing: byte order by name, paged, each document with its default version and tags.
pub async fn documents_list_paging(target: &Target) {
    let store = fresh(target).await;
    for name in ["b-doc", "A-doc", "a-doc", "c.doc", "B_doc"] {
        let mut doc = document(ACCOUNT_A, REGION, name);
        doc.tags = vec![tag("name", name)];
        create(&*store, &doc, name).await;
    }
    create(&*store, &document(ACCOUNT_B, REGION, "other"), "x").await;
    create(&*store, &document(ACCOUNT_A, OTHER_REGION, "other"), "y").await;
    let doc = document(ACCOUNT_A, REGION, "a-doc");
    store.add_document_version(&version(&doc, 2, "a-doc v2"), 1000).await.unwrap();
    store.set_default_document_version(ACCOUNT_A, REGION, "a-doc", 2).await.unwrap();

    let all = store.list_documents(ACCOUNT_A, REGION, None, 100).await.unwrap();
    let names: Vec<&str> = all.iter().map(|l| l.document.name.as_str()).collect();
    assert_eq!(names, ["A-doc", "B_doc", "a-doc", "b-doc", "c.doc"]);
    for listing in &all {
        assert_eq!(listing.document.tags, vec![tag("name", &listing.document.name)]);
        assert_eq!(listing.default.version, listing.document.default_version);
        assert_eq!(listing.default.name, listing.document.name);
    }
    assert_eq!(all[2].default.content, "a-doc v2");

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_documents(ACCOUNT_A, REGION, after.as_deref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|l| l.document.name.clone());
        seen.extend(page.into_iter().map(|l| l.document.name));
    }
    assert_eq!(seen, names);
    assert!(store.list_documents(ACCOUNT_A, REGION, None, 0).await.unwrap().is_empty());
    assert!(store.list_documents(ACCOUNT_A, REGION, Some("c.doc"), 10).await.unwrap().is_empty());
    assert!(store.list_documents("999999999999", REGION, None, 10).await.unwrap().is_empty());
    store.close().await;
}

/// Tags: added, overwritten, capped (all or nothing) and removed, per document.
pub async fn document_tags_put_remove(target: &Target) {
    let store = fresh(target).await;
    let mut doc = document(ACCOUNT_A, REGION, "Tagged");
    doc.tags = vec![tag("env", "prod")];
    create(&*store, &doc, "t").await;
    let tags_of = |store: Arc<dyn Store>| async move {
        store.get_document(ACCOUNT_A, REGION, "Tagged").await.unwrap().unwrap().tags
    };

    store.put_document_tags(ACCOUNT_A, REGION, "Tagged", &[tag("role", "web"), tag("env", "dev")], 2).await.unwrap();
    assert_eq!(tags_of(Arc::clone(&store)).await, vec![tag("env", "dev"), tag("role", "web")]);
    let err = store.put_document_tags(ACCOUNT_A, REGION, "Tagged", &[tag("env", "x"), tag("new", "y")], 2).await;
    assert!(matches!(&err, Err(StoreError::Conflict(m)) if m == "TooManyTags"), "{err:?}");
    assert_eq!(tags_of(Arc::clone(&store)).await, vec![tag("env", "dev"), tag("role", "web")]);
    let err = store.put_document_tags(ACCOUNT_A, REGION, "Tagged", &[tag("k", "1"), tag("k", "2")], 50).await;
    assert!(matches!(err, Err(StoreError::InvalidInput(_))), "{err:?}");

    let keys = vec!["role".to_string(), "absent".to_string(), "k\0".to_string()];
    store.remove_document_tags(ACCOUNT_A, REGION, "Tagged", &keys).await.unwrap();
    assert_eq!(tags_of(Arc::clone(&store)).await, vec![tag("env", "dev")]);

    for (account, region, name) in
        [(ACCOUNT_B, REGION, "Tagged"), (ACCOUNT_A, OTHER_REGION, "Tagged"), (ACCOUNT_A, REGION, "Absent")]
    {
        let err = store.put_document_tags(account, region, name, &[tag("a", "b")], 50).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.remove_document_tags(account, region, name, &keys).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    store.close().await;
}

/// Document writes carry the staged audit record in their transaction; refused ones do not.
pub async fn document_writes_carry_audit_record(target: &Target) {
    let store = fresh(target).await;
    let doc = document(ACCOUNT_A, REGION, "Audited");
    let record = super::audit::record(ACCOUNT_A, REGION, "CreateDocument", 1_700_000_200_000);
    let slot = AuditSlot::new();
    slot.stage(record.clone());
    with_audit_slot(slot.clone(), async {
        let v = version(&doc, 1, "a");
        store.create_document(&doc, &v, 500).await.expect("create");
    })
    .await;
    assert!(slot.written().is_some(), "the create committed the record");

    let slot = AuditSlot::new();
    slot.stage(super::audit::record(ACCOUNT_A, REGION, "UpdateDocument", 1_700_000_201_000));
    with_audit_slot(slot.clone(), async {
        let err = store.add_document_version(&version(&doc, 2, "a"), 1000).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)));
    })
    .await;
    assert!(slot.written().is_none(), "a refused write appends nothing");
    let chain = store.audit_chain(ACCOUNT_A, REGION, 0, 10).await.unwrap();
    assert_eq!(chain.len(), 1);
    store.close().await;
}
