//! Conformance cases for the hybrid setup: IAM roles and their policy attachments,
//! activations, registration, managed instances and their tags, and credential revocation on
//! deregistration.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::Duration;

use super::{at, bootstrapped, hostile_values, lit, session, Target, ACCOUNT_A, ACCOUNT_B};
use crate::{
    Activation, IamRole, InstanceInfo, ManagedInstance, NewRegistration, RegistrationOutcome, SecretKey,
    SessionPrincipal, Store, StoreError, Tag,
};

// === sample data ===

const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";
const CODE_PURPOSE: &str = "activation-code";
const POLICY_CORE: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
const POLICY_READ: &str = "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn tag(key: &str, value: &str) -> Tag {
    Tag { key: key.into(), value: value.into() }
}

fn role(account_id: &str, role_name: &str) -> IamRole {
    IamRole {
        account_id: account_id.into(),
        role_name: role_name.into(),
        role_id: super::unique_id("AROA"),
        path: "/".into(),
        arn: format!("arn:aws:iam::{account_id}:role/{role_name}"),
        assume_role_policy_document: TRUST.into(),
        description: Some("hybrid nodes".into()),
        max_session_duration: 3600,
        created_at: at(1_700_000_010_000),
        tags: Vec::new(),
    }
}

/// An activation valid from 2023-11-14 to 2027-01-15 whose code is `code` (hashed by `store`).
fn activation(store: &dyn Store, account_id: &str, region: &str, code: &str, limit: i32) -> Activation {
    Activation {
        account_id: account_id.into(),
        region: region.into(),
        activation_id: uuid::Uuid::new_v4().to_string(),
        code_hash: store.secret_hash(CODE_PURPOSE, code),
        description: Some("rack A".into()),
        default_instance_name: Some("rack-a".into()),
        iam_role: "SSMServiceRole".into(),
        registration_limit: limit,
        registrations_count: 0,
        expiration_date: at(1_800_000_000_000),
        created_date: at(1_700_000_020_000),
        tags: Vec::new(),
    }
}

fn new_instance_id() -> String {
    format!("mi-{}", &uuid::Uuid::new_v4().simple().to_string()[..17])
}

/// A registration at 2025-05-30 (with a sub-millisecond part the store truncates).
fn registration(store: &dyn Store, act: &Activation, code: &str) -> NewRegistration {
    NewRegistration {
        activation_id: act.activation_id.clone(),
        code_hash: store.secret_hash(CODE_PURPOSE, code),
        instance_id: new_instance_id(),
        public_key: format!("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A{}", uuid::Uuid::new_v4().simple()),
        fingerprint: uuid::Uuid::new_v4().to_string(),
        registered_at: at(1_748_600_000_123) + Duration::microseconds(456),
        max_instances_in_region: Some(1000),
    }
}

async fn register_ok(store: &dyn Store, reg: &NewRegistration) -> ManagedInstance {
    match store.register_instance(reg).await.expect("register") {
        RegistrationOutcome::Registered(instance) => instance,
        other => panic!("expected Registered, got {other:?}"),
    }
}

/// A store with account A bootstrapped, account B created, and one activation (code `code`,
/// limit `limit`) in account A's REGION.
async fn with_activation(target: &Target, code: &str, limit: i32) -> (Arc<dyn Store>, Activation) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&super::account(ACCOUNT_B)).await.expect("account B");
    let mut act = activation(&*store, ACCOUNT_A, REGION, code, limit);
    act.tags = vec![tag("site", "lab"), tag("env", "prod")];
    store.create_activation(&act).await.expect("create activation");
    (store, act)
}

async fn activation_count(store: &dyn Store, activation_id: &str) -> i32 {
    store.get_activation(activation_id).await.expect("get").expect("activation exists").registrations_count
}

async fn raw_count(target: &Target, sql: String) -> usize {
    target.raw_texts(format!("SELECT CAST(COUNT(*) AS TEXT) FROM ({sql}) AS q")).await[0].parse().expect("count")
}

fn sorted(mut tags: Vec<Tag>) -> Vec<Tag> {
    tags.sort();
    tags
}

// === IAM roles ===

/// Role CRUD: tags round-trip sorted, names are unique per account case-insensitively and
/// looked up case-insensitively, lists are ordered by name, DeleteConflict while attached.
pub async fn roles_crud_case_insensitive(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&super::account(ACCOUNT_B)).await.unwrap();

    let mut r = role(ACCOUNT_A, "SSMServiceRole");
    r.tags = vec![tag("team", "ops"), tag("Ünïcode ключ", "値 🦀"), tag("cost-center", "")];
    r.created_at = at(1_700_000_010_000) + Duration::microseconds(999);
    store.create_role(&r).await.unwrap();
    let mut want = r.clone();
    want.tags = sorted(r.tags.clone());
    want.created_at = at(1_700_000_010_000);
    for name in ["SSMServiceRole", "ssmservicerole", "SSMSERVICEROLE"] {
        assert_eq!(store.get_role(ACCOUNT_A, name).await.unwrap(), Some(want.clone()), "{name}");
    }
    assert_eq!(store.get_role(ACCOUNT_B, "SSMServiceRole").await.unwrap(), None);
    assert_eq!(store.get_role(ACCOUNT_A, "SSMServiceRol").await.unwrap(), None);

    // Same name in another case: taken. Same name in another account: fine. Same id: taken.
    let err = store.create_role(&role(ACCOUNT_A, "ssmSERVICErole")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    store.create_role(&role(ACCOUNT_B, "SSMServiceRole")).await.unwrap();
    let mut same_id = role(ACCOUNT_A, "Other");
    same_id.role_id = r.role_id.clone();
    let err = store.create_role(&same_id).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let err = store.create_role(&role("999999999999", "Nobody")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let mut dup_tags = role(ACCOUNT_A, "DupTags");
    dup_tags.tags = vec![tag("k", "1"), tag("k", "2")];
    let err = store.create_role(&dup_tags).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert_eq!(store.get_role(ACCOUNT_A, "DupTags").await.unwrap(), None);

    let mut no_desc = role(ACCOUNT_A, "Alpha");
    no_desc.description = None;
    no_desc.path = "/service-role/".into();
    store.create_role(&no_desc).await.unwrap();
    store.create_role(&role(ACCOUNT_A, "beta")).await.unwrap();
    let names: Vec<String> = store.list_roles(ACCOUNT_A).await.unwrap().into_iter().map(|r| r.role_name).collect();
    assert_eq!(names, ["Alpha", "SSMServiceRole", "beta"]);
    let listed = store.list_roles(ACCOUNT_A).await.unwrap();
    assert_eq!(listed[0], no_desc);
    assert_eq!(listed[1], want);
    assert_eq!(store.list_roles(ACCOUNT_B).await.unwrap().len(), 1);
    assert!(store.list_roles("999999999999").await.unwrap().is_empty());

    // DeleteConflict while a policy is attached; nothing changes.
    store.attach_role_policy(ACCOUNT_A, "SSMServiceRole", POLICY_CORE).await.unwrap();
    let err = store.delete_role(ACCOUNT_A, "ssmservicerole").await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "attached policies"), "{err:?}");
    assert_eq!(store.get_role(ACCOUNT_A, "SSMServiceRole").await.unwrap(), Some(want.clone()));
    store.detach_role_policy(ACCOUNT_A, "SSMSERVICEROLE", POLICY_CORE).await.unwrap();
    store.delete_role(ACCOUNT_A, "ssmservicerole").await.unwrap();
    assert_eq!(store.get_role(ACCOUNT_A, "SSMServiceRole").await.unwrap(), None);
    let err = store.delete_role(ACCOUNT_A, "SSMServiceRole").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // Its tags went with it; account B's role is untouched.
    let tags = raw_count(target, format!("SELECT key FROM iam_role_tags WHERE account_id = {}", lit(ACCOUNT_A))).await;
    assert_eq!(tags, 0);
    assert!(store.get_role(ACCOUNT_B, "ssmservicerole").await.unwrap().is_some());

    // The name is free again, in any case.
    let again = role(ACCOUNT_A, "SsmServiceRole");
    store.create_role(&again).await.unwrap();
    assert_eq!(store.get_role(ACCOUNT_A, "SSMServiceRole").await.unwrap().unwrap().role_name, "SsmServiceRole");
    store.close().await;
}

/// Attach is idempotent, detach and list need the role (and detach the attachment).
pub async fn role_policy_attachments(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_role(&role(ACCOUNT_A, "SSMServiceRole")).await.unwrap();
    assert!(store.list_attached_role_policies(ACCOUNT_A, "SSMServiceRole").await.unwrap().is_empty());

    store.attach_role_policy(ACCOUNT_A, "SSMServiceRole", POLICY_READ).await.unwrap();
    store.attach_role_policy(ACCOUNT_A, "ssmservicerole", POLICY_CORE).await.unwrap();
    store.attach_role_policy(ACCOUNT_A, "SSMServiceRole", POLICY_CORE).await.unwrap();
    assert_eq!(
        store.list_attached_role_policies(ACCOUNT_A, "SSMSERVICEROLE").await.unwrap(),
        [POLICY_CORE, POLICY_READ]
    );

    for (account, name) in [(ACCOUNT_A, "Missing"), (ACCOUNT_B, "SSMServiceRole")] {
        let err = store.attach_role_policy(account, name, POLICY_CORE).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.detach_role_policy(account, name, POLICY_CORE).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.list_attached_role_policies(account, name).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }

    store.detach_role_policy(ACCOUNT_A, "SSMServiceRole", POLICY_READ).await.unwrap();
    let err = store.detach_role_policy(ACCOUNT_A, "SSMServiceRole", POLICY_READ).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(store.list_attached_role_policies(ACCOUNT_A, "SSMServiceRole").await.unwrap(), [POLICY_CORE]);
    let err = store.attach_role_policy(ACCOUNT_A, "SSMServiceRole", "arn\0x").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    store.close().await;
}

// === activations ===

/// Activations: create, get (tags sorted, times truncated), list order and isolation, delete.
pub async fn activations_crud(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&super::account(ACCOUNT_B)).await.unwrap();

    let mut first = activation(&*store, ACCOUNT_A, REGION, "code-1", 5);
    first.tags = vec![tag("z", "last"), tag("a", "first"), tag("日本", "語")];
    first.expiration_date = at(1_800_000_000_000) + Duration::microseconds(777);
    store.create_activation(&first).await.unwrap();
    let mut want_first = first.clone();
    want_first.tags = sorted(first.tags.clone());
    want_first.expiration_date = at(1_800_000_000_000);
    assert_eq!(store.get_activation(&first.activation_id).await.unwrap(), Some(want_first.clone()));
    assert!(store.get_activation(&uuid::Uuid::new_v4().to_string()).await.unwrap().is_none());

    // Same created_date: ordered by id; earlier created_date first.
    let mut same_time = activation(&*store, ACCOUNT_A, REGION, "code-2", 1);
    same_time.description = None;
    same_time.default_instance_name = None;
    let mut earlier = activation(&*store, ACCOUNT_A, REGION, "code-3", 1);
    earlier.created_date = at(1_600_000_000_000);
    store.create_activation(&same_time).await.unwrap();
    store.create_activation(&earlier).await.unwrap();
    store.create_activation(&activation(&*store, ACCOUNT_A, OTHER_REGION, "code-4", 1)).await.unwrap();
    store.create_activation(&activation(&*store, ACCOUNT_B, REGION, "code-5", 1)).await.unwrap();

    let mut want_order = vec![want_first.clone(), same_time.clone()];
    want_order.sort_by(|a, b| a.activation_id.cmp(&b.activation_id));
    want_order.insert(0, earlier.clone());
    assert_eq!(store.list_activations(ACCOUNT_A, REGION).await.unwrap(), want_order);
    assert_eq!(store.list_activations(ACCOUNT_A, OTHER_REGION).await.unwrap().len(), 1);
    assert_eq!(store.list_activations(ACCOUNT_B, REGION).await.unwrap().len(), 1);
    assert!(store.list_activations(ACCOUNT_B, OTHER_REGION).await.unwrap().is_empty());

    let err = store.create_activation(&first).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let err = store.create_activation(&activation(&*store, "999999999999", REGION, "c", 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let mut dup_tags = activation(&*store, ACCOUNT_A, REGION, "c", 1);
    dup_tags.tags = vec![tag("k", "1"), tag("k", "1")];
    let err = store.create_activation(&dup_tags).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert!(store.get_activation(&dup_tags.activation_id).await.unwrap().is_none());

    // Delete: only in its own account and region.
    for (account, region) in [(ACCOUNT_B, REGION), (ACCOUNT_A, OTHER_REGION)] {
        let err = store.delete_activation(account, region, &first.activation_id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    store.delete_activation(ACCOUNT_A, REGION, &first.activation_id).await.unwrap();
    assert!(store.get_activation(&first.activation_id).await.unwrap().is_none());
    let err = store.delete_activation(ACCOUNT_A, REGION, &first.activation_id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let tags = raw_count(
        target,
        format!("SELECT key FROM activation_tags WHERE activation_id = {}", lit(&first.activation_id)),
    )
    .await;
    assert_eq!(tags, 0);
    assert_eq!(store.list_activations(ACCOUNT_A, REGION).await.unwrap().len(), 2);

    // The code hash is never printed in full.
    let text = format!("{want_first:?}");
    assert!(!text.contains(&want_first.code_hash), "{text}");
    store.close().await;
}

// === registration ===

/// Registration copies the activation's account, region, role, default name and tags, counts
/// the registration, and the copied tags are independent of the activation's afterwards.
pub async fn registration_happy_path(target: &Target) {
    let (store, act) = with_activation(target, "Ab12Cd34+Ef5/Gh67Ij8", 2).await;
    let reg = registration(&*store, &act, "Ab12Cd34+Ef5/Gh67Ij8");
    let inst = register_ok(&*store, &reg).await;
    let want = ManagedInstance {
        account_id: ACCOUNT_A.into(),
        region: REGION.into(),
        instance_id: reg.instance_id.clone(),
        activation_id: act.activation_id.clone(),
        iam_role: "SSMServiceRole".into(),
        name: Some("rack-a".into()),
        public_key: reg.public_key.clone(),
        previous_public_key: None,
        previous_key_expires_at: None,
        channel_opened_at: None,
        channel_closed_at: None,
        fingerprint: reg.fingerprint.clone(),
        registered_at: at(1_748_600_000_123),
        last_ping_at: None,
        info: InstanceInfo::default(),
        tags: vec![tag("env", "prod"), tag("site", "lab")],
    };
    assert_eq!(inst, want);
    assert_eq!(store.get_instance(&reg.instance_id).await.unwrap(), Some(want.clone()));
    assert_eq!(activation_count(&*store, &act.activation_id).await, 1);
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 1);
    assert_eq!(store.count_instances(ACCOUNT_A, OTHER_REGION).await.unwrap(), 0);
    assert_eq!(store.count_instances(ACCOUNT_B, REGION).await.unwrap(), 0);
    assert!(store.get_instance("mi-00000000000000000").await.unwrap().is_none());

    // A taken instance id fails the whole registration: nothing is counted.
    let mut dup = registration(&*store, &act, "Ab12Cd34+Ef5/Gh67Ij8");
    dup.instance_id = reg.instance_id.clone();
    let err = store.register_instance(&dup).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    assert_eq!(activation_count(&*store, &act.activation_id).await, 1);
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 1);

    // Tags were copied: changing the instance's leaves the activation's alone and vice versa.
    store.put_instance_tags(ACCOUNT_A, REGION, &reg.instance_id, &[tag("site", "moved")], 50).await.unwrap();
    let got = store.get_activation(&act.activation_id).await.unwrap().unwrap();
    assert_eq!(got.tags, [tag("env", "prod"), tag("site", "lab")]);
    store.delete_activation(ACCOUNT_A, REGION, &act.activation_id).await.unwrap();
    let got = store.get_instance(&reg.instance_id).await.unwrap().unwrap();
    assert_eq!(got.tags, [tag("env", "prod"), tag("site", "moved")]);
    assert_eq!(got.activation_id, act.activation_id);

    // Without default name or tags, and without a region cap.
    let mut bare = activation(&*store, ACCOUNT_A, REGION, "bare", 1);
    bare.default_instance_name = None;
    store.create_activation(&bare).await.unwrap();
    let mut reg = registration(&*store, &bare, "bare");
    reg.max_instances_in_region = None;
    let inst = register_ok(&*store, &reg).await;
    assert_eq!((inst.name, inst.tags), (None, Vec::new()));
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 2);
    store.close().await;
}

/// Wrong code, unknown or deleted activation, expiry, activation limit and region cap are
/// refused in that order, and a refused registration changes nothing.
pub async fn registration_rejections(target: &Target) {
    let (store, act) = with_activation(target, "right-code", 1).await;

    let wrong = registration(&*store, &act, "wrong-code");
    assert_eq!(store.register_instance(&wrong).await.unwrap(), RegistrationOutcome::InvalidActivation);
    let mut unknown = registration(&*store, &act, "right-code");
    unknown.activation_id = uuid::Uuid::new_v4().to_string();
    assert_eq!(store.register_instance(&unknown).await.unwrap(), RegistrationOutcome::InvalidActivation);
    let mut nul = registration(&*store, &act, "right-code");
    nul.activation_id = "a\0b".into();
    assert_eq!(store.register_instance(&nul).await.unwrap(), RegistrationOutcome::InvalidActivation);
    // The hash of the right code made under another purpose does not open the activation.
    let mut other_purpose = registration(&*store, &act, "right-code");
    other_purpose.code_hash = store.secret_hash("session-token", "right-code");
    assert_eq!(store.register_instance(&other_purpose).await.unwrap(), RegistrationOutcome::InvalidActivation);

    // Region cap: another activation's instance fills a cap of 1.
    let filler = activation(&*store, ACCOUNT_A, REGION, "filler", 5);
    store.create_activation(&filler).await.unwrap();
    register_ok(&*store, &registration(&*store, &filler, "filler")).await;
    let mut capped = registration(&*store, &act, "right-code");
    capped.max_instances_in_region = Some(1);
    assert_eq!(store.register_instance(&capped).await.unwrap(), RegistrationOutcome::RegionLimitExceeded { limit: 1 });
    capped.max_instances_in_region = Some(0);
    assert_eq!(store.register_instance(&capped).await.unwrap(), RegistrationOutcome::RegionLimitExceeded { limit: 0 });
    assert_eq!(activation_count(&*store, &act.activation_id).await, 0);
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 1);

    // Expiry: expiration_date <= registered_at is expired (checked after the code).
    let mut expired = registration(&*store, &act, "right-code");
    expired.registered_at = at(1_800_000_000_000) + Duration::microseconds(500);
    assert_eq!(store.register_instance(&expired).await.unwrap(), RegistrationOutcome::Expired);
    expired.registered_at = at(1_900_000_000_000);
    assert_eq!(store.register_instance(&expired).await.unwrap(), RegistrationOutcome::Expired);
    let mut expired_wrong = registration(&*store, &act, "wrong-code");
    expired_wrong.registered_at = at(1_900_000_000_000);
    assert_eq!(store.register_instance(&expired_wrong).await.unwrap(), RegistrationOutcome::InvalidActivation);
    let mut just_before = registration(&*store, &act, "right-code");
    just_before.registered_at = at(1_799_999_999_999);
    let first = register_ok(&*store, &just_before).await;

    // Limit 1 is now used up; the limit is checked before the region cap.
    let mut again = registration(&*store, &act, "right-code");
    assert_eq!(store.register_instance(&again).await.unwrap(), RegistrationOutcome::ActivationLimitExceeded);
    again.max_instances_in_region = Some(0);
    assert_eq!(store.register_instance(&again).await.unwrap(), RegistrationOutcome::ActivationLimitExceeded);
    assert_eq!(activation_count(&*store, &act.activation_id).await, 1);
    // Deregistering does not give the registration back.
    store.deregister_instance(ACCOUNT_A, REGION, &first.instance_id).await.unwrap();
    assert_eq!(activation_count(&*store, &act.activation_id).await, 1);
    assert_eq!(store.register_instance(&again).await.unwrap(), RegistrationOutcome::ActivationLimitExceeded);

    // A deleted activation is invalid, whatever the code.
    store.delete_activation(ACCOUNT_A, REGION, &filler.activation_id).await.unwrap();
    let reg = registration(&*store, &filler, "filler");
    assert_eq!(store.register_instance(&reg).await.unwrap(), RegistrationOutcome::InvalidActivation);

    // Of the two successful registrations only the filler's instance is left.
    let rows = raw_count(target, "SELECT instance_id FROM managed_instances".into()).await;
    assert_eq!(rows, 1);
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 1);
    // Unstorable instance fields are refused.
    let mut bad = registration(&*store, &act, "right-code");
    bad.public_key = "k\0".into();
    let err = store.register_instance(&bad).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    store.close().await;
}

/// Eight registrations race for the last slot of an activation: exactly one wins.
pub async fn registration_concurrent_activation_limit(target: &Target) {
    let (store, act) = with_activation(target, "race", 1).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let reg = registration(&*store, &act, "race");
        tasks.push(tokio::spawn(async move { store.register_instance(&reg).await }));
    }
    let mut registered = 0;
    for task in tasks {
        match task.await.expect("task").expect("register") {
            RegistrationOutcome::Registered(_) => registered += 1,
            RegistrationOutcome::ActivationLimitExceeded => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(registered, 1);
    assert_eq!(activation_count(&*store, &act.activation_id).await, 1);
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 1);
    assert_eq!(raw_count(target, "SELECT instance_id FROM managed_instances".into()).await, 1);
    store.close().await;
}

/// Eight registrations across four activations race for a region cap of 3: exactly 3 win.
pub async fn registration_concurrent_region_cap(target: &Target) {
    let (store, _) = with_activation(target, "unused", 1).await;
    let mut activations = Vec::new();
    for i in 0..4 {
        let act = activation(&*store, ACCOUNT_A, REGION, &format!("code-{i}"), 10);
        store.create_activation(&act).await.unwrap();
        activations.push(act);
    }
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        let act = &activations[i % activations.len()];
        let mut reg = registration(&*store, act, &format!("code-{}", i % activations.len()));
        reg.max_instances_in_region = Some(3);
        tasks.push(tokio::spawn(async move { store.register_instance(&reg).await }));
    }
    let mut registered = 0;
    for task in tasks {
        match task.await.expect("task").expect("register") {
            RegistrationOutcome::Registered(_) => registered += 1,
            RegistrationOutcome::RegionLimitExceeded { limit: 3 } => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(registered, 3);
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 3);
    assert_eq!(raw_count(target, "SELECT instance_id FROM managed_instances".into()).await, 3);
    let mut total = 0;
    for act in &activations {
        total += activation_count(&*store, &act.activation_id).await;
    }
    assert_eq!(total, 3);
    // Other regions and accounts have their own count.
    let elsewhere = activation(&*store, ACCOUNT_A, OTHER_REGION, "elsewhere", 1);
    store.create_activation(&elsewhere).await.unwrap();
    let mut reg = registration(&*store, &elsewhere, "elsewhere");
    reg.max_instances_in_region = Some(3);
    register_ok(&*store, &reg).await;
    store.close().await;
}

// === managed instances ===

/// Paging with `after`/`limit` visits every instance of the account and region once, in
/// order, each with its own tags.
pub async fn list_instances_paging(target: &Target) {
    let (store, act) = with_activation(target, "page", 100).await;
    let mut ids = BTreeSet::new();
    for i in 0..23 {
        let inst = register_ok(&*store, &registration(&*store, &act, "page")).await;
        // Vary the tags so a mix-up between instances would show.
        store.put_instance_tags(ACCOUNT_A, REGION, &inst.instance_id, &[tag("n", &i.to_string())], 50).await.unwrap();
        ids.insert(inst.instance_id);
    }
    let elsewhere = activation(&*store, ACCOUNT_A, OTHER_REGION, "x", 5);
    store.create_activation(&elsewhere).await.unwrap();
    register_ok(&*store, &registration(&*store, &elsewhere, "x")).await;

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_instances(ACCOUNT_A, REGION, after.as_deref(), 5).await.unwrap();
        assert!(page.len() <= 5);
        for inst in &page {
            assert_eq!((inst.account_id.as_str(), inst.region.as_str()), (ACCOUNT_A, REGION));
            assert_eq!(inst.tags.len(), 3, "{:?}", inst.tags);
            assert_eq!(Some(inst), store.get_instance(&inst.instance_id).await.unwrap().as_ref());
        }
        seen.extend(page.iter().map(|i| i.instance_id.clone()));
        match page.last() {
            Some(last) if page.len() == 5 => after = Some(last.instance_id.clone()),
            _ => break,
        }
    }
    assert_eq!(seen, ids.iter().cloned().collect::<Vec<_>>());
    let all = store.list_instances(ACCOUNT_A, REGION, None, 1000).await.unwrap();
    assert_eq!(all.len(), 23);
    assert!(store.list_instances(ACCOUNT_A, REGION, None, 0).await.unwrap().is_empty());
    let last = ids.iter().next_back().cloned();
    assert!(store.list_instances(ACCOUNT_A, REGION, last.as_deref(), 5).await.unwrap().is_empty());
    // `after` need not be an existing id.
    let from_mid = store.list_instances(ACCOUNT_A, REGION, Some("mi-8"), 1000).await.unwrap();
    assert_eq!(from_mid.len(), ids.iter().filter(|id| id.as_str() > "mi-8").count());
    assert_eq!(store.list_instances(ACCOUNT_A, OTHER_REGION, None, 10).await.unwrap().len(), 1);
    assert!(store.list_instances(ACCOUNT_B, REGION, None, 10).await.unwrap().is_empty());
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 23);
    store.close().await;
}

/// A ping sets `last_ping_at` and the fields given; fields not given keep their value.
pub async fn record_ping_keeps_unset_fields(target: &Target) {
    let (store, act) = with_activation(target, "ping", 1).await;
    let inst = register_ok(&*store, &registration(&*store, &act, "ping")).await;
    let id = inst.instance_id.as_str();

    // The first ping may be empty.
    store.record_ping(id, &InstanceInfo::default(), at(1_748_600_100_000)).await.unwrap();
    let got = store.get_instance(id).await.unwrap().unwrap();
    assert_eq!((got.last_ping_at, got.info), (Some(at(1_748_600_100_000)), InstanceInfo::default()));

    let full = InstanceInfo {
        agent_name: Some("amazon-ssm-agent".into()),
        agent_status: Some("Active".into()),
        agent_version: Some("3.3.131.0".into()),
        platform_type: Some("Linux".into()),
        platform_name: Some("Ubuntu".into()),
        platform_version: Some("22.04".into()),
        ip_address: Some("10.0.0.7".into()),
        computer_name: Some("rack-a-01.example.internal".into()),
        ssm_connection_channel: Some("ssmmessages".into()),
    };
    store.record_ping(id, &full, at(1_748_600_200_000) + Duration::microseconds(5)).await.unwrap();
    let got = store.get_instance(id).await.unwrap().unwrap();
    assert_eq!((got.last_ping_at, &got.info), (Some(at(1_748_600_200_000)), &full));

    let partial = InstanceInfo {
        agent_version: Some("3.3.200.0".into()),
        ip_address: Some("10.0.0.8".into()),
        ..InstanceInfo::default()
    };
    store.record_ping(id, &partial, at(1_748_600_300_000)).await.unwrap();
    let got = store.get_instance(id).await.unwrap().unwrap();
    let want = InstanceInfo { agent_version: partial.agent_version.clone(), ip_address: partial.ip_address, ..full };
    assert_eq!((got.last_ping_at, got.info), (Some(at(1_748_600_300_000)), want));
    // Nothing else about the instance moved.
    assert_eq!((got.public_key, got.tags, got.name), (inst.public_key, inst.tags, inst.name));

    let err = store.record_ping("mi-00000000000000000", &partial_info(), at(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let bad = InstanceInfo { computer_name: Some("x\0".into()), ..InstanceInfo::default() };
    let err = store.record_ping(id, &bad, at(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    store.close().await;
}

fn partial_info() -> InstanceInfo {
    InstanceInfo { agent_status: Some("Active".into()), ..InstanceInfo::default() }
}

/// Deregistration removes the instance, its tags and its role sessions (not other
/// instances', other accounts' or users'), and frees a slot under the region cap.
pub async fn deregister_revokes_and_frees_slot(target: &Target) {
    let (store, act) = with_activation(target, "dereg", 10).await;
    let mut reg1 = registration(&*store, &act, "dereg");
    reg1.max_instances_in_region = Some(2);
    let mut reg2 = registration(&*store, &act, "dereg");
    reg2.max_instances_in_region = Some(2);
    let one = register_ok(&*store, &reg1).await;
    let two = register_ok(&*store, &reg2).await;
    let mut reg3 = registration(&*store, &act, "dereg");
    reg3.max_instances_in_region = Some(2);
    assert_eq!(store.register_instance(&reg3).await.unwrap(), RegistrationOutcome::RegionLimitExceeded { limit: 2 });

    let role_session = |account: &str, instance: &str| {
        session(
            account,
            SessionPrincipal::AssumedRole {
                role_name: "SSMServiceRole".into(),
                role_id: "AROAEXAMPLEROLEID001".into(),
                session_name: instance.into(),
            },
        )
    };
    let one_a = role_session(ACCOUNT_A, &one.instance_id);
    let one_b = role_session(ACCOUNT_A, &one.instance_id);
    let two_a = role_session(ACCOUNT_A, &two.instance_id);
    let other_account = role_session(ACCOUNT_B, &one.instance_id);
    let user = session(ACCOUNT_A, SessionPrincipal::User { user_name: "admin".into() });
    for cred in [&one_a, &one_b, &two_a, &other_account, &user] {
        store.create_session_credential(cred).await.unwrap();
    }

    for (account, region) in [(ACCOUNT_B, REGION), (ACCOUNT_A, OTHER_REGION)] {
        let err = store.deregister_instance(account, region, &one.instance_id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    assert!(store.get_session_credential(&one_a.access_key_id).await.unwrap().is_some());

    store.deregister_instance(ACCOUNT_A, REGION, &one.instance_id).await.unwrap();
    assert!(store.get_instance(&one.instance_id).await.unwrap().is_none());
    let tags =
        raw_count(target, format!("SELECT key FROM instance_tags WHERE instance_id = {}", lit(&one.instance_id))).await;
    assert_eq!(tags, 0);
    assert!(store.get_session_credential(&one_a.access_key_id).await.unwrap().is_none());
    assert!(store.get_session_credential(&one_b.access_key_id).await.unwrap().is_none());
    for survivor in [&two_a, &other_account, &user] {
        assert!(store.get_session_credential(&survivor.access_key_id).await.unwrap().is_some());
    }
    assert_eq!(store.get_instance(&two.instance_id).await.unwrap().unwrap().tags.len(), 2);
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 1);
    let err = store.deregister_instance(ACCOUNT_A, REGION, &one.instance_id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // The freed slot admits a new registration.
    let three = register_ok(&*store, &reg3).await;
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 2);
    store.deregister_instance(ACCOUNT_A, REGION, &two.instance_id).await.unwrap();
    store.deregister_instance(ACCOUNT_A, REGION, &three.instance_id).await.unwrap();
    assert_eq!(store.count_instances(ACCOUNT_A, REGION).await.unwrap(), 0);
    assert_eq!(activation_count(&*store, &act.activation_id).await, 3);
    assert!(store.get_session_credential(&two_a.access_key_id).await.unwrap().is_none());
    assert!(store.get_session_credential(&user.access_key_id).await.unwrap().is_some());
    store.close().await;
}

/// Tags: add and overwrite, the per-instance maximum without partial writes, removal.
pub async fn instance_tags_put_remove(target: &Target) {
    let (store, act) = with_activation(target, "tags", 2).await;
    let inst = register_ok(&*store, &registration(&*store, &act, "tags")).await;
    let id = inst.instance_id.as_str();
    let tags_of =
        |store: Arc<dyn Store>, id: String| async move { store.get_instance(&id).await.unwrap().unwrap().tags };

    // Two copied tags; add one and overwrite one: 3 tags.
    store.put_instance_tags(ACCOUNT_A, REGION, id, &[tag("site", "dc2"), tag("role", "web")], 3).await.unwrap();
    let want = vec![tag("env", "prod"), tag("role", "web"), tag("site", "dc2")];
    assert_eq!(tags_of(Arc::clone(&store), id.into()).await, want);
    // Overwriting at the maximum is fine.
    store.put_instance_tags(ACCOUNT_A, REGION, id, &[tag("env", "staging")], 3).await.unwrap();
    let want = vec![tag("env", "staging"), tag("role", "web"), tag("site", "dc2")];
    assert_eq!(tags_of(Arc::clone(&store), id.into()).await, want);

    // One more would exceed the maximum: nothing changes, not even the overwrite.
    let err =
        store.put_instance_tags(ACCOUNT_A, REGION, id, &[tag("env", "dev"), tag("new", "x")], 3).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "TooManyTags"), "{err:?}");
    assert_eq!(tags_of(Arc::clone(&store), id.into()).await, want);
    let err = store.put_instance_tags(ACCOUNT_A, REGION, id, &[tag("a", "1"), tag("b", "2")], 4).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "TooManyTags"), "{err:?}");
    assert_eq!(tags_of(Arc::clone(&store), id.into()).await, want);
    let err = store.put_instance_tags(ACCOUNT_A, REGION, id, &[tag("k", "1"), tag("k", "2")], 50).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    // Already over a lower maximum: refused even with nothing to add.
    let err = store.put_instance_tags(ACCOUNT_A, REGION, id, &[], 2).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m == "TooManyTags"), "{err:?}");
    store.put_instance_tags(ACCOUNT_A, REGION, id, &[], 3).await.unwrap();

    // Unicode keys and values round-trip and sort by key.
    store.put_instance_tags(ACCOUNT_A, REGION, id, &[tag("ключ", "значение"), tag("Ω", "")], 50).await.unwrap();
    let got = tags_of(Arc::clone(&store), id.into()).await;
    assert_eq!(got.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["env", "role", "site", "Ω", "ключ"]);

    // Remove: absent keys are ignored.
    let keys = vec!["role".to_string(), "absent".to_string(), "Ω".to_string(), "k\0".to_string()];
    store.remove_instance_tags(ACCOUNT_A, REGION, id, &keys).await.unwrap();
    let want = vec![tag("env", "staging"), tag("site", "dc2"), tag("ключ", "значение")];
    assert_eq!(tags_of(Arc::clone(&store), id.into()).await, want);
    store.remove_instance_tags(ACCOUNT_A, REGION, id, &[]).await.unwrap();

    // The instance must exist in that account and region.
    for (account, region, instance) in
        [(ACCOUNT_B, REGION, id), (ACCOUNT_A, OTHER_REGION, id), (ACCOUNT_A, REGION, "mi-00000000000000000")]
    {
        let err = store.put_instance_tags(account, region, instance, &[tag("a", "b")], 50).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.remove_instance_tags(account, region, instance, &keys).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    assert_eq!(tags_of(Arc::clone(&store), id.into()).await, want);
    store.close().await;
}

/// Role changes need the right account and region; key rotation keeps the previous key.
pub async fn instance_role_and_key_updates(target: &Target) {
    let (store, act) = with_activation(target, "upd", 1).await;
    let inst = register_ok(&*store, &registration(&*store, &act, "upd")).await;
    let id = inst.instance_id.as_str();

    store.update_instance_role(ACCOUNT_A, REGION, id, "service-role/Other").await.unwrap();
    assert_eq!(store.get_instance(id).await.unwrap().unwrap().iam_role, "service-role/Other");
    for (account, region, instance) in
        [(ACCOUNT_B, REGION, id), (ACCOUNT_A, OTHER_REGION, id), (ACCOUNT_A, REGION, "mi-00000000000000000")]
    {
        let err = store.update_instance_role(account, region, instance, "X").await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    assert_eq!(store.get_instance(id).await.unwrap().unwrap().iam_role, "service-role/Other");

    let grace = time::macros::datetime!(2030-01-02 03:04:05.678 UTC);
    store.update_instance_public_key(id, "KEY-2", grace).await.unwrap();
    let got = store.get_instance(id).await.unwrap().unwrap();
    assert_eq!(
        (got.public_key.as_str(), got.previous_public_key.as_deref(), got.previous_key_expires_at),
        ("KEY-2", Some(inst.public_key.as_str()), Some(grace))
    );
    store.update_instance_public_key(id, "KEY-3", grace).await.unwrap();
    let got = store.get_instance(id).await.unwrap().unwrap();
    assert_eq!((got.public_key.as_str(), got.previous_public_key.as_deref()), ("KEY-3", Some("KEY-2")));
    // Retiring a key that is no longer the previous one changes nothing; the right one is
    // forgotten with its window.
    store.retire_previous_public_key(id, "KEY-1").await.unwrap();
    assert_eq!(store.get_instance(id).await.unwrap().unwrap().previous_public_key.as_deref(), Some("KEY-2"));
    store.retire_previous_public_key(id, "KEY-2").await.unwrap();
    let got = store.get_instance(id).await.unwrap().unwrap();
    assert_eq!((got.public_key.as_str(), got.previous_public_key, got.previous_key_expires_at), ("KEY-3", None, None));
    // The control channel: a close counts only for the channel it ends.
    let t = |ms: i64| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    store.record_channel_open(id, t(1_800_000_000_000)).await.unwrap();
    let got = store.get_instance(id).await.unwrap().unwrap();
    assert_eq!(
        (got.last_ping_at, got.channel_opened_at, got.channel_closed_at),
        (Some(t(1_800_000_000_000)), Some(t(1_800_000_000_000)), None)
    );
    store.record_channel_close(id, t(1_700_000_000_000), t(1_800_000_005_000)).await.unwrap();
    assert_eq!(store.get_instance(id).await.unwrap().unwrap().channel_closed_at, None, "an older channel's close");
    store.record_channel_close(id, t(1_800_000_000_000), t(1_800_000_005_000)).await.unwrap();
    assert_eq!(store.get_instance(id).await.unwrap().unwrap().channel_closed_at, Some(t(1_800_000_005_000)));
    store.record_channel_open(id, t(1_800_000_009_000)).await.unwrap();
    let got = store.get_instance(id).await.unwrap().unwrap();
    assert_eq!((got.channel_opened_at, got.channel_closed_at), (Some(t(1_800_000_009_000)), None));
    let err = store.record_channel_open("mi-00000000000000000", t(1_800_000_000_000)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let err = store.update_instance_public_key("mi-00000000000000000", "KEY-4", grace).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store.update_instance_public_key(id, "KEY\0", grace).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    store.close().await;
}

/// secret_hash: deterministic for one key (across stores sharing it), separated by purpose,
/// different under another key.
pub async fn secret_hash_keyed(target: &Target) {
    let key = SecretKey::generate();
    let store = target.open(&key).await;
    let h = store.secret_hash(CODE_PURPOSE, "Ab12Cd34+Ef5/Gh67Ij8");
    assert_eq!(h.len(), 64);
    assert!(h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{h}");
    assert_eq!(h, store.secret_hash(CODE_PURPOSE, "Ab12Cd34+Ef5/Gh67Ij8"));
    assert_ne!(h, store.secret_hash(CODE_PURPOSE, "Ab12Cd34+Ef5/Gh67Ij9"));
    assert_ne!(h, store.secret_hash("session-token", "Ab12Cd34+Ef5/Gh67Ij8"));
    assert!(!h.contains("Ab12Cd34"));
    // A second replica with the same key agrees; one with another key does not.
    let replica = target.open(&key).await;
    assert_eq!(replica.secret_hash(CODE_PURPOSE, "Ab12Cd34+Ef5/Gh67Ij8"), h);
    let stranger = target.open(&SecretKey::generate()).await;
    assert_ne!(stranger.secret_hash(CODE_PURPOSE, "Ab12Cd34+Ef5/Gh67Ij8"), h);
    for s in [store, replica, stranger] {
        s.close().await;
    }
}

/// Quotes, SQL fragments and unicode round-trip through roles, activations, registration and
/// tags; NUL is refused with InvalidInput.
pub async fn hybrid_hostile_strings(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    let values = hostile_values();
    for (i, s) in values.iter().enumerate() {
        let mut r = role(ACCOUNT_A, &format!("{s}#{i}"));
        r.path = s.clone();
        r.arn = s.clone();
        r.assume_role_policy_document = s.clone();
        r.description = Some(s.clone());
        r.tags = vec![tag(&format!("{s}k"), s)];
        store.create_role(&r).await.unwrap();
        assert_eq!(store.get_role(ACCOUNT_A, &r.role_name).await.unwrap(), Some(r.clone()), "value {i}");
        store.attach_role_policy(ACCOUNT_A, &r.role_name, s).await.unwrap();
        assert_eq!(store.list_attached_role_policies(ACCOUNT_A, &r.role_name).await.unwrap(), [s.as_str()]);

        let mut act = activation(&*store, ACCOUNT_A, s, s, 1);
        act.description = Some(s.clone());
        act.default_instance_name = Some(s.clone());
        act.iam_role = s.clone();
        act.tags = vec![tag(&format!("{s}k"), s)];
        store.create_activation(&act).await.unwrap();
        assert_eq!(store.get_activation(&act.activation_id).await.unwrap(), Some(act.clone()), "value {i}");
        assert_eq!(store.list_activations(ACCOUNT_A, s).await.unwrap(), [act.clone()], "value {i}");

        let mut reg = registration(&*store, &act, s);
        reg.instance_id = format!("{s}@{i}");
        reg.public_key = s.clone();
        reg.fingerprint = s.clone();
        let inst = register_ok(&*store, &reg).await;
        assert_eq!((inst.name.as_deref(), inst.region.as_str()), (Some(s.as_str()), s.as_str()));
        let info =
            InstanceInfo { computer_name: Some(s.clone()), platform_name: Some(s.clone()), ..Default::default() };
        store.record_ping(&reg.instance_id, &info, at(1_748_600_000_000)).await.unwrap();
        store.put_instance_tags(ACCOUNT_A, s, &reg.instance_id, &[tag(s, s)], 50).await.unwrap();
        let got = store.get_instance(&reg.instance_id).await.unwrap().unwrap();
        assert_eq!(got.info, info, "value {i}");
        assert!(got.tags.contains(&tag(s, s)), "value {i}");
        assert_eq!(store.list_instances(ACCOUNT_A, s, None, 10).await.unwrap(), [got], "value {i}");
    }
    assert_eq!(store.list_roles(ACCOUNT_A).await.unwrap().len(), values.len());

    // NUL is refused everywhere it could be written.
    let invalid = |r: Result<(), StoreError>| match r {
        Err(StoreError::InvalidInput(msg)) => assert!(msg.contains("NUL"), "{msg}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let nul = "a\0b";
    invalid(store.create_role(&role(ACCOUNT_A, nul)).await);
    let mut r = role(ACCOUNT_A, "NulTag");
    r.tags = vec![tag("k", nul)];
    invalid(store.create_role(&r).await);
    let mut r = role(ACCOUNT_A, "NulDesc");
    r.description = Some(nul.into());
    invalid(store.create_role(&r).await);
    let mut act = activation(&*store, ACCOUNT_A, REGION, "c", 1);
    act.default_instance_name = Some(nul.into());
    invalid(store.create_activation(&act).await);
    let mut act = activation(&*store, ACCOUNT_A, REGION, "c", 1);
    act.tags = vec![tag(nul, "v")];
    invalid(store.create_activation(&act).await);
    let act = activation(&*store, ACCOUNT_A, REGION, "c", 5);
    store.create_activation(&act).await.unwrap();
    let mut reg = registration(&*store, &act, "c");
    reg.fingerprint = nul.into();
    invalid(store.register_instance(&reg).await.map(|_| ()));
    let inst = register_ok(&*store, &registration(&*store, &act, "c")).await;
    invalid(store.put_instance_tags(ACCOUNT_A, REGION, &inst.instance_id, &[tag("k", nul)], 50).await);
    invalid(store.update_instance_role(ACCOUNT_A, REGION, &inst.instance_id, nul).await);

    assert_eq!(store.get_role(ACCOUNT_A, nul).await.unwrap(), None);
    assert!(store.get_activation(nul).await.unwrap().is_none());
    assert!(store.get_instance(nul).await.unwrap().is_none());
    assert!(store.list_instances(ACCOUNT_A, nul, None, 10).await.unwrap().is_empty());
    assert_eq!(store.count_instances(ACCOUNT_A, nul).await.unwrap(), 0);
    let err = store.deregister_instance(ACCOUNT_A, REGION, nul).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(activation_count(&*store, &act.activation_id).await, 1);
    store.close().await;
}
