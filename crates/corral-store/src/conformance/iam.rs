//! Conformance cases for IAM access control: users' tags and deletion, access keys, groups,
//! customer managed policies and versions, attachments, inline policies, and
//! `identity_policies`.

use super::{at, bootstrapped, session, Target, ACCOUNT_A, ACCOUNT_B};
use crate::{
    AccessKeyStatus, IamEntity, IamGroup, IamRole, IamUser, IdentityPolicies, ManagedPolicy, PolicySubject, SecretKey,
    SessionPrincipal, StoreError, Tag,
};

// === sample data ===

const CORE: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
const READ: &str = "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess";
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}"#;
const DOC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ssm:Send*","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn tag(key: &str, value: &str) -> Tag {
    Tag { key: key.into(), value: value.into() }
}

fn user(name: &str) -> IamUser {
    super::user(ACCOUNT_A, name)
}

fn group(account_id: &str, name: &str) -> IamGroup {
    IamGroup {
        account_id: account_id.into(),
        group_name: name.into(),
        group_id: super::unique_id("AGPA"),
        path: "/".into(),
        arn: format!("arn:aws:iam::{account_id}:group/{name}"),
        created_at: at(1_700_000_030_000),
    }
}

fn role(name: &str) -> IamRole {
    IamRole {
        account_id: ACCOUNT_A.into(),
        role_name: name.into(),
        role_id: super::unique_id("AROA"),
        path: "/".into(),
        arn: format!("arn:aws:iam::{ACCOUNT_A}:role/{name}"),
        assume_role_policy_document: TRUST.into(),
        description: None,
        max_session_duration: 3600,
        created_at: at(1_700_000_010_000),
        tags: vec![tag("team", "ops")],
    }
}

fn policy(account_id: &str, name: &str) -> ManagedPolicy {
    ManagedPolicy {
        account_id: account_id.into(),
        policy_name: name.into(),
        policy_id: super::unique_id("ANPA"),
        path: "/".into(),
        arn: format!("arn:aws:iam::{account_id}:policy/{name}"),
        description: Some("ops".into()),
        default_version_id: "v1".into(),
        created_at: at(1_700_000_040_000),
        updated_at: at(1_700_000_040_000),
        tags: Vec::new(),
        attachment_count: 0,
    }
}

fn is_conflict(err: &StoreError, reason: &str) -> bool {
    matches!(err, StoreError::Conflict(r) if r == reason)
}

// === cases ===

/// Users: tags on create, list order, tag/untag with the cap, and deletion refused while the
/// user has keys, inline or attached policies or groups; deleting ends its sessions.
pub async fn iam_users_tags_and_delete(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&super::account(ACCOUNT_B)).await.unwrap();
    store.create_user_with_tags(&user("bob"), &[tag("z", "1"), tag("a", "2")]).await.unwrap();
    store.create_user_with_tags(&user("Alice"), &[]).await.unwrap();
    let err = store.create_user_with_tags(&user("bob"), &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let err = store.create_user_with_tags(&user("carol"), &[tag("k", "1"), tag("k", "2")]).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert!(store.get_user(ACCOUNT_A, "carol").await.unwrap().is_none(), "nothing half-written");

    let names: Vec<String> = store.list_users(ACCOUNT_A).await.unwrap().into_iter().map(|u| u.user_name).collect();
    assert_eq!(names, ["Alice", "admin", "bob"]);
    assert!(store.list_users(ACCOUNT_B).await.unwrap().is_empty());

    let bob = IamEntity::User("bob");
    assert_eq!(store.list_entity_tags(ACCOUNT_A, bob).await.unwrap(), [tag("a", "2"), tag("z", "1")]);
    store.tag_entity(ACCOUNT_A, bob, &[tag("a", "new"), tag("m", "3")], 3).await.unwrap();
    let err = store.tag_entity(ACCOUNT_A, bob, &[tag("x", "4")], 3).await.unwrap_err();
    assert!(is_conflict(&err, "TooManyTags"), "{err:?}");
    assert_eq!(store.list_entity_tags(ACCOUNT_A, bob).await.unwrap(), [tag("a", "new"), tag("m", "3"), tag("z", "1")]);
    store.untag_entity(ACCOUNT_A, bob, &["z".into(), "absent".into()]).await.unwrap();
    assert_eq!(store.list_entity_tags(ACCOUNT_A, bob).await.unwrap(), [tag("a", "new"), tag("m", "3")]);
    for entity in [IamEntity::User("nobody"), IamEntity::Role("nobody")] {
        let err = store.list_entity_tags(ACCOUNT_A, entity).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.tag_entity(ACCOUNT_A, entity, &[tag("a", "b")], 50).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    let err = store.list_entity_tags(ACCOUNT_B, bob).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // Each dependency blocks deletion in turn.
    let key = super::access_key(ACCOUNT_A, "bob", "secret-bob");
    store.create_access_key_limited(&key, 2).await.unwrap();
    store.put_inline_policy(ACCOUNT_A, bob, "ops", DOC, 2048).await.unwrap();
    store.attach_policy(ACCOUNT_A, bob, CORE, 10).await.unwrap();
    store.create_group(&group(ACCOUNT_A, "admins")).await.unwrap();
    store.add_user_to_group(ACCOUNT_A, "admins", "bob").await.unwrap();
    let cred = session(ACCOUNT_A, SessionPrincipal::User { user_name: "bob".into() });
    store.create_session_credential(&cred).await.unwrap();

    let err = store.delete_user(ACCOUNT_A, "bob").await.unwrap_err();
    assert!(is_conflict(&err, "access keys"), "{err:?}");
    store.delete_access_key(ACCOUNT_A, "bob", &key.access_key_id).await.unwrap();
    let err = store.delete_user(ACCOUNT_A, "bob").await.unwrap_err();
    assert!(is_conflict(&err, "inline policies"), "{err:?}");
    store.delete_inline_policy(ACCOUNT_A, bob, "ops").await.unwrap();
    let err = store.delete_user(ACCOUNT_A, "bob").await.unwrap_err();
    assert!(is_conflict(&err, "attached policies"), "{err:?}");
    store.detach_policy(ACCOUNT_A, bob, CORE).await.unwrap();
    let err = store.delete_user(ACCOUNT_A, "bob").await.unwrap_err();
    assert!(is_conflict(&err, "groups"), "{err:?}");
    store.remove_user_from_group(ACCOUNT_A, "admins", "bob").await.unwrap();
    assert!(store.get_user(ACCOUNT_A, "bob").await.unwrap().is_some());
    assert!(store.get_session_credential(&cred.access_key_id).await.unwrap().is_some());

    store.delete_user(ACCOUNT_A, "bob").await.unwrap();
    assert!(store.get_user(ACCOUNT_A, "bob").await.unwrap().is_none());
    assert!(store.get_session_credential(&cred.access_key_id).await.unwrap().is_none());
    let err = store.delete_user(ACCOUNT_A, "bob").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // Re-creating the name starts without the old tags.
    store.create_user_with_tags(&user("bob"), &[]).await.unwrap();
    assert!(store.list_entity_tags(ACCOUNT_A, bob).await.unwrap().is_empty());
    let err = store.list_entity_tags(ACCOUNT_A, IamEntity::Group("admins")).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    store.close().await;
}

/// Access keys: the per-user cap, listing without secrets, status updates, deletion; keys are
/// scoped to their user and account.
pub async fn iam_access_keys(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_user_with_tags(&user("alice"), &[]).await.unwrap();
    let mut k1 = super::access_key(ACCOUNT_A, "alice", "secret-1");
    k1.created_at = at(1_700_000_100_000);
    let mut k2 = super::access_key(ACCOUNT_A, "alice", "secret-2");
    k2.created_at = at(1_700_000_200_000);
    store.create_access_key_limited(&k2, 2).await.unwrap();
    store.create_access_key_limited(&k1, 2).await.unwrap();
    let k3 = super::access_key(ACCOUNT_A, "alice", "secret-3");
    let err = store.create_access_key_limited(&k3, 2).await.unwrap_err();
    assert!(is_conflict(&err, "AccessKeysPerUser"), "{err:?}");
    assert!(store.get_access_key(&k3.access_key_id).await.unwrap().is_none());
    let err = store.create_access_key_limited(&super::access_key(ACCOUNT_A, "ghost", "s"), 2).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let listed = store.list_access_keys(ACCOUNT_A, "alice").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|k| k.access_key_id.as_str()).collect();
    assert_eq!(ids, [k1.access_key_id.as_str(), k2.access_key_id.as_str()]);
    assert_eq!(listed[0].status, AccessKeyStatus::Active);
    assert_eq!(listed[0].created_at, k1.created_at);
    assert_eq!(listed[0].user_name, "alice");
    let err = store.list_access_keys(ACCOUNT_A, "ghost").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    store.update_access_key_status(ACCOUNT_A, "alice", &k1.access_key_id, AccessKeyStatus::Inactive).await.unwrap();
    assert_eq!(store.get_access_key(&k1.access_key_id).await.unwrap().unwrap().status, AccessKeyStatus::Inactive);
    // Another user's name, or another account, does not reach the key.
    let err = store
        .update_access_key_status(ACCOUNT_A, "admin", &k1.access_key_id, AccessKeyStatus::Active)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store.delete_access_key(ACCOUNT_B, "alice", &k1.access_key_id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    store.delete_access_key(ACCOUNT_A, "alice", &k1.access_key_id).await.unwrap();
    assert!(store.get_access_key(&k1.access_key_id).await.unwrap().is_none());
    let err = store.delete_access_key(ACCOUNT_A, "alice", &k1.access_key_id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // A freed slot can be used again.
    store.create_access_key_limited(&k3, 2).await.unwrap();
    assert_eq!(store.list_access_keys(ACCOUNT_A, "alice").await.unwrap().len(), 2);
    store.close().await;
}

/// Groups: create/get/list, membership both ways, and deletion refused while the group has
/// members or policies.
pub async fn iam_groups_and_membership(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&super::account(ACCOUNT_B)).await.unwrap();
    for name in ["ops", "Dev"] {
        store.create_group(&group(ACCOUNT_A, name)).await.unwrap();
    }
    store.create_group(&group(ACCOUNT_B, "ops")).await.unwrap();
    let err = store.create_group(&group(ACCOUNT_A, "ops")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let ops = group(ACCOUNT_A, "ops");
    let got = store.get_group(ACCOUNT_A, "ops").await.unwrap().unwrap();
    assert_eq!((got.group_name.as_str(), got.arn.as_str(), got.created_at), ("ops", ops.arn.as_str(), ops.created_at));
    assert!(store.get_group(ACCOUNT_A, "OPS").await.unwrap().is_none());
    let names: Vec<String> = store.list_groups(ACCOUNT_A).await.unwrap().into_iter().map(|g| g.group_name).collect();
    assert_eq!(names, ["Dev", "ops"]);

    store.create_user_with_tags(&user("bob"), &[]).await.unwrap();
    store.add_user_to_group(ACCOUNT_A, "ops", "bob").await.unwrap();
    store.add_user_to_group(ACCOUNT_A, "ops", "bob").await.unwrap();
    store.add_user_to_group(ACCOUNT_A, "ops", "admin").await.unwrap();
    store.add_user_to_group(ACCOUNT_A, "Dev", "bob").await.unwrap();
    for (g, u) in [("ops", "ghost"), ("ghost", "bob")] {
        let err = store.add_user_to_group(ACCOUNT_A, g, u).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    let members: Vec<String> =
        store.list_group_members(ACCOUNT_A, "ops").await.unwrap().into_iter().map(|u| u.user_name).collect();
    assert_eq!(members, ["admin", "bob"]);
    let groups: Vec<String> =
        store.list_groups_for_user(ACCOUNT_A, "bob").await.unwrap().into_iter().map(|g| g.group_name).collect();
    assert_eq!(groups, ["Dev", "ops"]);
    assert!(store.list_group_members(ACCOUNT_B, "ops").await.unwrap().is_empty());
    let err = store.list_group_members(ACCOUNT_A, "ghost").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store.list_groups_for_user(ACCOUNT_A, "ghost").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let dev = IamEntity::Group("Dev");
    let err = store.delete_group(ACCOUNT_A, "Dev").await.unwrap_err();
    assert!(is_conflict(&err, "members"), "{err:?}");
    store.remove_user_from_group(ACCOUNT_A, "Dev", "bob").await.unwrap();
    let err = store.remove_user_from_group(ACCOUNT_A, "Dev", "bob").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.put_inline_policy(ACCOUNT_A, dev, "p", DOC, 5120).await.unwrap();
    let err = store.delete_group(ACCOUNT_A, "Dev").await.unwrap_err();
    assert!(is_conflict(&err, "inline policies"), "{err:?}");
    store.delete_inline_policy(ACCOUNT_A, dev, "p").await.unwrap();
    store.attach_policy(ACCOUNT_A, dev, READ, 10).await.unwrap();
    let err = store.delete_group(ACCOUNT_A, "Dev").await.unwrap_err();
    assert!(is_conflict(&err, "attached policies"), "{err:?}");
    store.detach_policy(ACCOUNT_A, dev, READ).await.unwrap();
    store.delete_group(ACCOUNT_A, "Dev").await.unwrap();
    assert!(store.get_group(ACCOUNT_A, "Dev").await.unwrap().is_none());
    let err = store.delete_group(ACCOUNT_A, "Dev").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.close().await;
}

/// Customer managed policies: create (v1 default, tags), unique names, versions (numbering,
/// cap, default switch, deleting the default refused), attachment count and deletion
/// refused while attached.
pub async fn iam_managed_policies_and_versions(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    let mut ops = policy(ACCOUNT_A, "ops");
    ops.tags = vec![tag("z", "1"), tag("a", "2")];
    store.create_policy(&ops, DOC).await.unwrap();
    store.create_policy(&policy(ACCOUNT_A, "Audit"), DOC).await.unwrap();
    let mut same_name = policy(ACCOUNT_A, "ops");
    same_name.path = "/team/".into();
    same_name.arn = format!("arn:aws:iam::{ACCOUNT_A}:policy/team/ops");
    let err = store.create_policy(&same_name, DOC).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");

    let got = store.get_policy(ACCOUNT_A, &ops.arn).await.unwrap().unwrap();
    let mut want = ops.clone();
    want.tags = vec![tag("a", "2"), tag("z", "1")];
    assert_eq!(got, want);
    assert!(store.get_policy(ACCOUNT_B, &ops.arn).await.unwrap().is_none());
    let names: Vec<String> = store.list_policies(ACCOUNT_A).await.unwrap().into_iter().map(|p| p.policy_name).collect();
    assert_eq!(names, ["Audit", "ops"]);

    let v1 = store.get_policy_version(ACCOUNT_A, &ops.arn, "v1").await.unwrap().unwrap();
    assert!(v1.is_default);
    assert_eq!(v1.document, DOC);
    let v2 = store.create_policy_version(ACCOUNT_A, &ops.arn, DOC2, false, at(1_700_000_050_000), 5).await.unwrap();
    assert_eq!((v2.version_id.as_str(), v2.is_default), ("v2", false));
    let v3 = store.create_policy_version(ACCOUNT_A, &ops.arn, DOC2, true, at(1_700_000_060_000), 5).await.unwrap();
    assert_eq!((v3.version_id.as_str(), v3.is_default), ("v3", true));
    let got = store.get_policy(ACCOUNT_A, &ops.arn).await.unwrap().unwrap();
    assert_eq!((got.default_version_id.as_str(), got.updated_at), ("v3", at(1_700_000_060_000)));
    assert!(!store.get_policy_version(ACCOUNT_A, &ops.arn, "v1").await.unwrap().unwrap().is_default);
    for _ in 0..2 {
        store.create_policy_version(ACCOUNT_A, &ops.arn, DOC, false, at(1_700_000_070_000), 5).await.unwrap();
    }
    let err = store.create_policy_version(ACCOUNT_A, &ops.arn, DOC, false, at(1_700_000_080_000), 5).await.unwrap_err();
    assert!(is_conflict(&err, "VersionsPerPolicy"), "{err:?}");
    let listed: Vec<String> =
        store.list_policy_versions(ACCOUNT_A, &ops.arn).await.unwrap().into_iter().map(|v| v.version_id).collect();
    assert_eq!(listed, ["v5", "v4", "v3", "v2", "v1"]);

    let err = store.delete_policy_version(ACCOUNT_A, &ops.arn, "v3").await.unwrap_err();
    assert!(is_conflict(&err, "default version"), "{err:?}");
    store.delete_policy_version(ACCOUNT_A, &ops.arn, "v5").await.unwrap();
    let err = store.delete_policy_version(ACCOUNT_A, &ops.arn, "v5").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // Numbers are not reused.
    let v6 = store.create_policy_version(ACCOUNT_A, &ops.arn, DOC, false, at(1_700_000_090_000), 5).await.unwrap();
    assert_eq!(v6.version_id, "v6");
    let missing = format!("arn:aws:iam::{ACCOUNT_A}:policy/missing");
    let err = store.create_policy_version(ACCOUNT_A, &missing, DOC, true, at(1), 5).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store.list_policy_versions(ACCOUNT_A, &missing).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // Attached anywhere: counted, and not deletable.
    store.create_user_with_tags(&user("bob"), &[]).await.unwrap();
    store.create_group(&group(ACCOUNT_A, "g")).await.unwrap();
    store.create_role(&role("R")).await.unwrap();
    for entity in [IamEntity::User("bob"), IamEntity::Group("g"), IamEntity::Role("r")] {
        store.attach_policy(ACCOUNT_A, entity, &ops.arn, 10).await.unwrap();
    }
    assert_eq!(store.get_policy(ACCOUNT_A, &ops.arn).await.unwrap().unwrap().attachment_count, 3);
    store.attach_policy(ACCOUNT_A, IamEntity::Role("R"), CORE, 10).await.unwrap();
    assert_eq!(store.policy_attachment_counts(ACCOUNT_A).await.unwrap(), [(ops.arn.clone(), 3), (CORE.to_string(), 1)]);
    assert!(store.policy_attachment_counts(ACCOUNT_B).await.unwrap().is_empty());
    store.attach_policy(ACCOUNT_A, IamEntity::Role("R"), CORE, 10).await.unwrap();
    assert_eq!(store.policy_attachment_counts(ACCOUNT_A).await.unwrap(), [(ops.arn.clone(), 3), (CORE.to_string(), 1)]);
    assert!(store.policy_attachment_counts(ACCOUNT_B).await.unwrap().is_empty());
    for entity in [IamEntity::User("bob"), IamEntity::Group("g"), IamEntity::Role("R")] {
        let err = store.delete_policy(ACCOUNT_A, &ops.arn).await.unwrap_err();
        assert!(is_conflict(&err, "attached"), "{err:?}");
        store.detach_policy(ACCOUNT_A, entity, &ops.arn).await.unwrap();
    }
    store.delete_policy(ACCOUNT_A, &ops.arn).await.unwrap();
    assert!(store.get_policy(ACCOUNT_A, &ops.arn).await.unwrap().is_none());
    assert!(store.get_policy_version(ACCOUNT_A, &ops.arn, "v1").await.unwrap().is_none());
    let err = store.delete_policy(ACCOUNT_A, &ops.arn).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // The name is free again.
    store.create_policy(&policy(ACCOUNT_A, "ops"), DOC).await.unwrap();
    store.close().await;
}

/// Attachments and inline policies on users, groups and roles: the attachment cap,
/// unknown customer policies, listing, and the inline size quota (nothing written on error).
pub async fn iam_attachments_and_inline_policies(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_user_with_tags(&user("bob"), &[]).await.unwrap();
    store.create_group(&group(ACCOUNT_A, "g")).await.unwrap();
    store.create_role(&role("Ops")).await.unwrap();
    let mut arns = Vec::new();
    for i in 0..10 {
        let p = policy(ACCOUNT_A, &format!("p{i:02}"));
        store.create_policy(&p, DOC).await.unwrap();
        arns.push(p.arn);
    }
    for entity in [IamEntity::User("bob"), IamEntity::Group("g"), IamEntity::Role("ops")] {
        for arn in &arns {
            store.attach_policy(ACCOUNT_A, entity, arn, 10).await.unwrap();
        }
        // Re-attaching is a no-op even at the cap; an eleventh is refused.
        store.attach_policy(ACCOUNT_A, entity, &arns[0], 10).await.unwrap();
        let err = store.attach_policy(ACCOUNT_A, entity, CORE, 10).await.unwrap_err();
        assert!(is_conflict(&err, "PolicyCount"), "{err:?}");
        assert_eq!(store.list_attached_policies(ACCOUNT_A, entity).await.unwrap(), arns);
        store.detach_policy(ACCOUNT_A, entity, &arns[9]).await.unwrap();
        store.attach_policy(ACCOUNT_A, entity, CORE, 10).await.unwrap();
        let listed = store.list_attached_policies(ACCOUNT_A, entity).await.unwrap();
        assert_eq!(listed.last().map(String::as_str), Some(CORE));
        let err = store.detach_policy(ACCOUNT_A, entity, &arns[9]).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let unknown = format!("arn:aws:iam::{ACCOUNT_A}:policy/unknown");
        store.detach_policy(ACCOUNT_A, entity, CORE).await.unwrap();
        let err = store.attach_policy(ACCOUNT_A, entity, &unknown, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        // Another account's policy is not attachable either.
        let err = store.attach_policy(ACCOUNT_A, entity, "arn:aws:iam::222222222222:policy/p00", 10).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");

        // Inline policies: put, replace, list, get, delete, size quota over all of them.
        store.put_inline_policy(ACCOUNT_A, entity, "b", DOC, 200).await.unwrap();
        store.put_inline_policy(ACCOUNT_A, entity, "a", DOC2, 200).await.unwrap();
        store.put_inline_policy(ACCOUNT_A, entity, "b", DOC2, 200).await.unwrap();
        assert_eq!(store.list_inline_policies(ACCOUNT_A, entity).await.unwrap(), ["a", "b"]);
        assert_eq!(store.get_inline_policy(ACCOUNT_A, entity, "b").await.unwrap().as_deref(), Some(DOC2));
        assert_eq!(store.get_inline_policy(ACCOUNT_A, entity, "c").await.unwrap(), None);
        let size = crate::policy_size(DOC2);
        let err = store.put_inline_policy(ACCOUNT_A, entity, "c", DOC2, 3 * size - 1).await.unwrap_err();
        assert!(is_conflict(&err, "PolicySize"), "{err:?}");
        assert_eq!(store.get_inline_policy(ACCOUNT_A, entity, "c").await.unwrap(), None);
        // Replacing a policy counts its new size, not both.
        store.put_inline_policy(ACCOUNT_A, entity, "b", DOC2, 2 * size).await.unwrap();
        store.delete_inline_policy(ACCOUNT_A, entity, "a").await.unwrap();
        let err = store.delete_inline_policy(ACCOUNT_A, entity, "a").await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        assert_eq!(store.list_inline_policies(ACCOUNT_A, entity).await.unwrap(), ["b"]);
    }
    for entity in [IamEntity::User("ghost"), IamEntity::Group("ghost"), IamEntity::Role("ghost")] {
        let err = store.attach_policy(ACCOUNT_A, entity, CORE, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.list_attached_policies(ACCOUNT_A, entity).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.put_inline_policy(ACCOUNT_A, entity, "p", DOC, 10_000).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.get_inline_policy(ACCOUNT_A, entity, "p").await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store.list_inline_policies(ACCOUNT_A, entity).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    store.close().await;
}

/// Roles: tags, trust policy update, and deletion refused while inline policies exist;
/// deleting a role ends its sessions (and only its).
pub async fn iam_roles_complete(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    let ops = role("Ops");
    store.create_role(&ops).await.unwrap();
    let other = role("Other");
    store.create_role(&other).await.unwrap();
    let r = IamEntity::Role("OPS");
    assert_eq!(store.list_entity_tags(ACCOUNT_A, r).await.unwrap(), [tag("team", "ops")]);
    store.tag_entity(ACCOUNT_A, r, &[tag("env", "lab"), tag("team", "sre")], 50).await.unwrap();
    store.untag_entity(ACCOUNT_A, r, &["env".into()]).await.unwrap();
    assert_eq!(store.get_role(ACCOUNT_A, "ops").await.unwrap().unwrap().tags, [tag("team", "sre")]);

    let new_trust = TRUST.replace("ssm.amazonaws.com", "ec2.amazonaws.com");
    store.update_assume_role_policy(ACCOUNT_A, "ops", &new_trust).await.unwrap();
    assert_eq!(store.get_role(ACCOUNT_A, "Ops").await.unwrap().unwrap().assume_role_policy_document, new_trust);
    let err = store.update_assume_role_policy(ACCOUNT_A, "ghost", TRUST).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let session_of = |role: &IamRole, name: &str| {
        session(
            ACCOUNT_A,
            SessionPrincipal::AssumedRole {
                role_name: role.role_name.clone(),
                role_id: role.role_id.clone(),
                session_name: name.into(),
            },
        )
    };
    let mine = session_of(&ops, "s1");
    let theirs = session_of(&other, "s1");
    store.create_session_credential(&mine).await.unwrap();
    store.create_session_credential(&theirs).await.unwrap();

    store.put_inline_policy(ACCOUNT_A, r, "inline", DOC, 10_240).await.unwrap();
    let err = store.delete_role(ACCOUNT_A, "Ops").await.unwrap_err();
    assert!(is_conflict(&err, "inline policies"), "{err:?}");
    assert!(store.get_session_credential(&mine.access_key_id).await.unwrap().is_some());
    store.delete_inline_policy(ACCOUNT_A, r, "inline").await.unwrap();
    store.delete_role(ACCOUNT_A, "Ops").await.unwrap();
    assert!(store.get_session_credential(&mine.access_key_id).await.unwrap().is_none());
    assert!(store.get_session_credential(&theirs.access_key_id).await.unwrap().is_some());
    store.close().await;
}

/// `identity_policies`: a user's own and its groups' inline and managed policies (customer
/// ones with their default document), deduplicated; a detached policy or a left group
/// disappears; a role's policies and tags; absent subjects are NotFound.
pub async fn iam_identity_policies(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_user_with_tags(&user("bob"), &[tag("team", "ops")]).await.unwrap();
    store.create_user_with_tags(&user("eve"), &[]).await.unwrap();
    store.create_group(&group(ACCOUNT_A, "ops")).await.unwrap();
    store.add_user_to_group(ACCOUNT_A, "ops", "bob").await.unwrap();
    let custom = policy(ACCOUNT_A, "custom");
    store.create_policy(&custom, DOC).await.unwrap();
    store.create_policy_version(ACCOUNT_A, &custom.arn, DOC2, true, at(1_700_000_050_000), 5).await.unwrap();

    let bob = IamEntity::User("bob");
    let ops = IamEntity::Group("ops");
    store.put_inline_policy(ACCOUNT_A, bob, "own", DOC, 2048).await.unwrap();
    store.put_inline_policy(ACCOUNT_A, ops, "group", DOC2, 5120).await.unwrap();
    store.attach_policy(ACCOUNT_A, bob, CORE, 10).await.unwrap();
    store.attach_policy(ACCOUNT_A, ops, CORE, 10).await.unwrap();
    store.attach_policy(ACCOUNT_A, ops, &custom.arn, 10).await.unwrap();

    let got = store.identity_policies(ACCOUNT_A, PolicySubject::User("bob")).await.unwrap();
    let mut inline = got.inline_documents.clone();
    inline.sort();
    let mut want_inline = vec![DOC.to_string(), DOC2.to_string()];
    want_inline.sort();
    assert_eq!(inline, want_inline);
    let mut want_arns = vec![custom.arn.clone(), CORE.to_string()];
    want_arns.sort();
    assert_eq!(got.managed_policy_arns, want_arns);
    assert_eq!(got.customer_managed_documents, [(custom.arn.clone(), DOC2.to_string())]);
    assert_eq!(got.principal_tags, [tag("team", "ops")]);

    // A user outside the group sees none of it.
    let eve = store.identity_policies(ACCOUNT_A, PolicySubject::User("eve")).await.unwrap();
    assert_eq!(eve, IdentityPolicies::default());

    // Detaching from the group and leaving it take effect at once.
    store.detach_policy(ACCOUNT_A, ops, &custom.arn).await.unwrap();
    let got = store.identity_policies(ACCOUNT_A, PolicySubject::User("bob")).await.unwrap();
    assert_eq!(got.managed_policy_arns, [CORE]);
    assert!(got.customer_managed_documents.is_empty());
    store.remove_user_from_group(ACCOUNT_A, "ops", "bob").await.unwrap();
    let got = store.identity_policies(ACCOUNT_A, PolicySubject::User("bob")).await.unwrap();
    assert_eq!(got.inline_documents, [DOC]);
    assert_eq!(got.managed_policy_arns, [CORE]);

    // Roles, looked up case-insensitively.
    store.create_role(&role("Runner")).await.unwrap();
    let runner = IamEntity::Role("Runner");
    store.put_inline_policy(ACCOUNT_A, runner, "inline", DOC2, 10_240).await.unwrap();
    store.attach_policy(ACCOUNT_A, runner, &custom.arn, 10).await.unwrap();
    store.attach_policy(ACCOUNT_A, runner, READ, 10).await.unwrap();
    let got = store.identity_policies(ACCOUNT_A, PolicySubject::Role("runner")).await.unwrap();
    assert_eq!(got.inline_documents, [DOC2]);
    let mut want_arns = vec![custom.arn.clone(), READ.to_string()];
    want_arns.sort();
    assert_eq!(got.managed_policy_arns, want_arns);
    assert_eq!(got.customer_managed_documents, [(custom.arn.clone(), DOC2.to_string())]);
    assert_eq!(got.principal_tags, [tag("team", "ops")]);

    for subject in [PolicySubject::User("ghost"), PolicySubject::Role("ghost")] {
        let err = store.identity_policies(ACCOUNT_A, subject).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    let err = store.identity_policies(ACCOUNT_B, PolicySubject::User("bob")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.close().await;
}
