//! IAM entities end to end: users and access keys (a created key signs requests; an inactive or
//! deleted one does not), groups, customer managed policies and versions, attachments, inline
//! policies, and the errors AWS answers for them.

mod common;

use aws_sdk_sts::error::ProvideErrorMetadata;
use common::{form_encode, RawRequest, RawResponse, TestServer};

const DOC: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:Describe*","Resource":"*"}]}"#;
const DOC2: &str =
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ssm:SendCommand","Resource":"*"}}"#;
const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const CORE_POLICY: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";

/// Sends an IAM call with the admin key and expects success; returns the body.
async fn ok(server: &TestServer, form: &str) -> String {
    let resp = server.iam(form).await;
    assert_eq!(resp.status, 200, "{form}: {}", resp.text);
    resp.text
}

/// Sends an IAM call with the admin key and expects the error `code` with `status`.
async fn fails(server: &TestServer, form: &str, status: u16, code: &str) -> RawResponse {
    let resp = server.iam(form).await;
    assert_eq!((resp.status, resp.error_code().as_deref()), (status, Some(code)), "{form}: {}", resp.text);
    resp
}

/// Every text of `<tag>` elements, in document order.
fn values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(after[..end].to_string());
        rest = &after[end + close.len()..];
    }
    out
}

fn value(xml: &str, tag: &str) -> String {
    values(xml, tag).into_iter().next().unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

/// URL-decodes a policy document as botocore does.
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("utf8");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf8")
}

fn sts(server: &TestServer, id: &str, secret: &str) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&server.sdk_config_with(id, secret, None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_access_keys() {
    let (_dir, server) = TestServer::start_fresh();
    let acct = &server.account_id;

    let created =
        ok(&server, "Action=CreateUser&UserName=alice&Path=/ops/&Tags.member.1.Key=team&Tags.member.1.Value=sre").await;
    assert_eq!(value(&created, "Arn"), format!("arn:aws:iam::{acct}:user/ops/alice"));
    assert!(value(&created, "UserId").starts_with("AIDA"));
    fails(&server, "Action=CreateUser&UserName=alice", 409, "EntityAlreadyExists").await;
    ok(&server, "Action=CreateUser&UserName=bob").await;

    let got = ok(&server, "Action=GetUser&UserName=alice").await;
    assert_eq!(value(&got, "Path"), "/ops/");
    assert_eq!(values(&got, "Key"), ["team"]);
    let me = ok(&server, "Action=GetUser").await;
    assert_eq!(value(&me, "UserName"), "admin");
    let missing = fails(&server, "Action=GetUser&UserName=nobody", 404, "NoSuchEntity").await;
    assert!(missing.text.contains("The user with name nobody cannot be found."), "{}", missing.text);

    let all = ok(&server, "Action=ListUsers").await;
    assert_eq!(values(&all, "UserName"), ["admin", "alice", "bob"]);
    let ops = ok(&server, "Action=ListUsers&PathPrefix=/ops/").await;
    assert_eq!(values(&ops, "UserName"), ["alice"]);
    let first = ok(&server, "Action=ListUsers&MaxItems=2").await;
    assert_eq!(values(&first, "UserName"), ["admin", "alice"]);
    assert_eq!(value(&first, "IsTruncated"), "true");
    let second = ok(&server, &format!("Action=ListUsers&MaxItems=2&Marker={}", value(&first, "Marker"))).await;
    assert_eq!(values(&second, "UserName"), ["bob"]);
    assert_eq!(value(&second, "IsTruncated"), "false");

    // Tags.
    ok(&server, "Action=TagUser&UserName=alice&Tags.member.1.Key=env&Tags.member.1.Value=lab").await;
    ok(&server, "Action=UntagUser&UserName=alice&TagKeys.member.1=team").await;
    let tags = ok(&server, "Action=ListUserTags&UserName=alice").await;
    assert_eq!((values(&tags, "Key"), values(&tags, "Value")), (vec!["env".to_string()], vec!["lab".to_string()]));
    let many: String =
        (1..=50).map(|i| format!("&Tags.member.{i}.Key=k{i}&Tags.member.{i}.Value=v")).collect::<Vec<_>>().concat();
    fails(&server, &format!("Action=TagUser&UserName=alice{many}"), 409, "LimitExceeded").await;
    assert_eq!(values(&ok(&server, "Action=ListUserTags&UserName=alice").await, "Key"), ["env"]);

    // Access keys: the created key signs requests as alice.
    let created = ok(&server, "Action=CreateAccessKey&UserName=alice").await;
    let (id, secret) = (value(&created, "AccessKeyId"), value(&created, "SecretAccessKey"));
    assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
    assert!(id[4..].bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)), "{id}");
    assert_eq!(secret.len(), 40);
    assert_eq!(value(&created, "Status"), "Active");
    let who = sts(&server, &id, &secret).get_caller_identity().send().await.expect("new key authenticates");
    assert_eq!(who.arn(), Some(format!("arn:aws:iam::{acct}:user/ops/alice").as_str()));

    ok(&server, "Action=CreateAccessKey&UserName=alice").await;
    let limit = fails(&server, "Action=CreateAccessKey&UserName=alice", 409, "LimitExceeded").await;
    assert!(limit.text.contains("Cannot exceed quota for AccessKeysPerUser: 2"), "{}", limit.text);
    let listed = ok(&server, "Action=ListAccessKeys&UserName=alice").await;
    assert_eq!(values(&listed, "AccessKeyId").len(), 2);
    assert!(values(&listed, "AccessKeyId").contains(&id));
    assert!(!listed.contains("SecretAccessKey"), "{listed}");
    let mine = ok(&server, "Action=ListAccessKeys").await;
    assert_eq!(values(&mine, "UserName"), ["admin"]);

    ok(&server, &format!("Action=UpdateAccessKey&UserName=alice&AccessKeyId={id}&Status=Inactive")).await;
    let err = sts(&server, &id, &secret).get_caller_identity().send().await.expect_err("inactive key");
    assert_eq!(err.code(), Some("InvalidClientTokenId"), "{err:?}");
    ok(&server, &format!("Action=UpdateAccessKey&UserName=alice&AccessKeyId={id}&Status=Active")).await;
    sts(&server, &id, &secret).get_caller_identity().send().await.expect("active again");
    fails(
        &server,
        &format!("Action=UpdateAccessKey&UserName=bob&AccessKeyId={id}&Status=Inactive"),
        404,
        "NoSuchEntity",
    )
    .await;

    let conflict = fails(&server, "Action=DeleteUser&UserName=alice", 409, "DeleteConflict").await;
    assert!(conflict.text.contains("Cannot delete entity, must delete access keys first."), "{}", conflict.text);
    for key in values(&ok(&server, "Action=ListAccessKeys&UserName=alice").await, "AccessKeyId") {
        ok(&server, &format!("Action=DeleteAccessKey&UserName=alice&AccessKeyId={key}")).await;
    }
    let err = sts(&server, &id, &secret).get_caller_identity().send().await.expect_err("deleted key");
    assert_eq!(err.code(), Some("InvalidClientTokenId"), "{err:?}");
    fails(&server, &format!("Action=DeleteAccessKey&UserName=alice&AccessKeyId={id}"), 404, "NoSuchEntity").await;

    ok(&server, "Action=DeleteUser&UserName=alice").await;
    fails(&server, "Action=GetUser&UserName=alice", 404, "NoSuchEntity").await;
    fails(&server, "Action=DeleteUser&UserName=alice", 404, "NoSuchEntity").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_sessions_must_name_the_user() {
    let (_dir, server) = TestServer::start_fresh();
    ok(
        &server,
        &format!("Action=CreateRole&RoleName=Ops&AssumeRolePolicyDocument={}", form_encode(common::SSM_TRUST_POLICY)),
    )
    .await;
    ok(&server, &format!("Action=AttachRolePolicy&RoleName=Ops&PolicyArn={}", form_encode(ADMIN_POLICY))).await;
    let role_id = value(&ok(&server, "Action=GetRole&RoleName=Ops").await, "RoleId");

    // A role session, as AssumeRole would issue it.
    let key = corral_store::load_or_create_key_file(&server.data_dir.join("secret.key")).expect("key");
    let url = format!("sqlite://{}", server.data_dir.join("corral.db").display());
    let store = corral_store::open(&url, key).await.expect("open store");
    let (key_id, secret, token) = ("ASIAROLESESSION00001", "roleSessionSecretExample000000000000000+", "role-token");
    let now = time::OffsetDateTime::now_utc();
    store
        .create_session_credential(&corral_store::SessionCredential {
            access_key_id: key_id.into(),
            account_id: server.account_id.clone(),
            secret_access_key: secret.into(),
            session_token_hash: corral_server::ids::session_token_hash(token),
            principal: corral_store::SessionPrincipal::AssumedRole {
                role_name: "Ops".into(),
                role_id,
                session_name: "s1".into(),
            },
            created_at: now,
            expires_at: now + time::Duration::hours(1),
        })
        .await
        .expect("insert session");
    store.close().await;

    let call = |form: &str| {
        RawRequest::query(&server, &format!("{form}&Version=2010-05-08")).sign(
            key_id,
            secret,
            Some(token),
            "iam",
            time::OffsetDateTime::now_utc(),
        )
    };
    let resp = call("Action=GetUser").send(&server).await;
    assert_eq!((resp.status, resp.error_code().as_deref()), (400, Some("ValidationError")), "{}", resp.text);
    assert!(resp.text.contains("Must specify userName when calling with non-User credentials"), "{}", resp.text);
    let resp = call("Action=GetUser&UserName=admin").send(&server).await;
    assert_eq!(resp.status, 200, "{}", resp.text);

    // Deleting the role ends its sessions.
    ok(&server, &format!("Action=DetachRolePolicy&RoleName=Ops&PolicyArn={}", form_encode(ADMIN_POLICY))).await;
    ok(&server, "Action=DeleteRole&RoleName=Ops").await;
    let resp = call("Action=GetUser&UserName=admin").send(&server).await;
    assert_eq!((resp.status, resp.error_code().as_deref()), (403, Some("InvalidClientTokenId")), "{}", resp.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_membership() {
    let (_dir, server) = TestServer::start_fresh();
    let created = ok(&server, "Action=CreateGroup&GroupName=ops&Path=/teams/").await;
    assert_eq!(value(&created, "Arn"), format!("arn:aws:iam::{}:group/teams/ops", server.account_id));
    assert!(value(&created, "GroupId").starts_with("AGPA"));
    fails(&server, "Action=CreateGroup&GroupName=ops", 409, "EntityAlreadyExists").await;
    ok(&server, "Action=CreateGroup&GroupName=dev").await;
    ok(&server, "Action=CreateUser&UserName=carol").await;

    ok(&server, "Action=AddUserToGroup&GroupName=ops&UserName=carol").await;
    ok(&server, "Action=AddUserToGroup&GroupName=ops&UserName=admin").await;
    ok(&server, "Action=AddUserToGroup&GroupName=dev&UserName=carol").await;
    fails(&server, "Action=AddUserToGroup&GroupName=ops&UserName=nobody", 404, "NoSuchEntity").await;
    fails(&server, "Action=AddUserToGroup&GroupName=nogroup&UserName=carol", 404, "NoSuchEntity").await;

    let got = ok(&server, "Action=GetGroup&GroupName=ops").await;
    assert_eq!(value(&got, "GroupName"), "ops");
    assert_eq!(values(&got, "UserName"), ["admin", "carol"]);
    let listed = ok(&server, "Action=ListGroups").await;
    assert_eq!(values(&listed, "GroupName"), ["dev", "ops"]);
    assert_eq!(values(&ok(&server, "Action=ListGroups&PathPrefix=/teams/").await, "GroupName"), ["ops"]);
    assert_eq!(values(&ok(&server, "Action=ListGroupsForUser&UserName=carol").await, "GroupName"), ["dev", "ops"]);

    let conflict = fails(&server, "Action=DeleteGroup&GroupName=dev", 409, "DeleteConflict").await;
    assert!(conflict.text.contains("must remove users from group first"), "{}", conflict.text);
    let conflict = fails(&server, "Action=DeleteUser&UserName=carol", 409, "DeleteConflict").await;
    assert!(conflict.text.contains("must remove users from group first"), "{}", conflict.text);
    ok(&server, "Action=RemoveUserFromGroup&GroupName=dev&UserName=carol").await;
    fails(&server, "Action=RemoveUserFromGroup&GroupName=dev&UserName=carol", 404, "NoSuchEntity").await;
    ok(&server, &format!("Action=PutGroupPolicy&GroupName=dev&PolicyName=p&PolicyDocument={}", form_encode(DOC))).await;
    let conflict = fails(&server, "Action=DeleteGroup&GroupName=dev", 409, "DeleteConflict").await;
    assert!(conflict.text.contains("must delete policies first"), "{}", conflict.text);
    ok(&server, "Action=DeleteGroupPolicy&GroupName=dev&PolicyName=p").await;
    ok(&server, &format!("Action=AttachGroupPolicy&GroupName=dev&PolicyArn={}", form_encode(CORE_POLICY))).await;
    let conflict = fails(&server, "Action=DeleteGroup&GroupName=dev", 409, "DeleteConflict").await;
    assert!(conflict.text.contains("must detach all policies first"), "{}", conflict.text);
    ok(&server, &format!("Action=DetachGroupPolicy&GroupName=dev&PolicyArn={}", form_encode(CORE_POLICY))).await;
    ok(&server, "Action=DeleteGroup&GroupName=dev").await;
    fails(&server, "Action=GetGroup&GroupName=dev", 404, "NoSuchEntity").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_policies_versions_and_attachments() {
    let (_dir, server) = TestServer::start_fresh();
    let acct = &server.account_id;
    let arn = format!("arn:aws:iam::{acct}:policy/team/ops");
    let enc_arn = form_encode(&arn);

    let created = ok(
        &server,
        &format!(
            "Action=CreatePolicy&PolicyName=ops&Path=/team/&Description=Ops&PolicyDocument={}\
             &Tags.member.1.Key=k&Tags.member.1.Value=v",
            form_encode(DOC)
        ),
    )
    .await;
    assert_eq!(value(&created, "Arn"), arn);
    assert!(value(&created, "PolicyId").starts_with("ANPA"));
    assert_eq!(value(&created, "DefaultVersionId"), "v1");
    assert_eq!(value(&created, "AttachmentCount"), "0");
    fails(
        &server,
        &format!("Action=CreatePolicy&PolicyName=ops&PolicyDocument={}", form_encode(DOC)),
        409,
        "EntityAlreadyExists",
    )
    .await;
    let bad =
        fails(&server, "Action=CreatePolicy&PolicyName=bad&PolicyDocument=%7B%7D", 400, "MalformedPolicyDocument")
            .await;
    assert!(bad.text.contains("Statement"), "{}", bad.text);
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"ssm:Get*","Resource":"{}"}}]}}"#,
        "a".repeat(6144)
    );
    let limit = fails(
        &server,
        &format!("Action=CreatePolicy&PolicyName=big&PolicyDocument={}", form_encode(&big)),
        409,
        "LimitExceeded",
    )
    .await;
    assert!(limit.text.contains("Cannot exceed quota for PolicySize: 6144"), "{}", limit.text);

    // Versions: the document comes back URL-encoded and decodes to what was written.
    let v1 = ok(&server, &format!("Action=GetPolicyVersion&PolicyArn={enc_arn}&VersionId=v1")).await;
    assert_eq!(url_decode(&value(&v1, "Document")), DOC);
    assert_eq!(value(&v1, "IsDefaultVersion"), "true");
    let v2 = ok(
        &server,
        &format!(
            "Action=CreatePolicyVersion&PolicyArn={enc_arn}&PolicyDocument={}&SetAsDefault=true",
            form_encode(DOC2)
        ),
    )
    .await;
    assert_eq!((value(&v2, "VersionId"), value(&v2, "IsDefaultVersion")), ("v2".to_string(), "true".to_string()));
    assert_eq!(value(&ok(&server, &format!("Action=GetPolicy&PolicyArn={enc_arn}")).await, "DefaultVersionId"), "v2");
    for _ in 0..3 {
        ok(&server, &format!("Action=CreatePolicyVersion&PolicyArn={enc_arn}&PolicyDocument={}", form_encode(DOC)))
            .await;
    }
    fails(
        &server,
        &format!("Action=CreatePolicyVersion&PolicyArn={enc_arn}&PolicyDocument={}", form_encode(DOC)),
        409,
        "LimitExceeded",
    )
    .await;
    let versions = ok(&server, &format!("Action=ListPolicyVersions&PolicyArn={enc_arn}")).await;
    assert_eq!(values(&versions, "VersionId"), ["v5", "v4", "v3", "v2", "v1"]);
    fails(&server, &format!("Action=DeletePolicyVersion&PolicyArn={enc_arn}&VersionId=v2"), 409, "DeleteConflict")
        .await;
    ok(&server, &format!("Action=DeletePolicyVersion&PolicyArn={enc_arn}&VersionId=v5")).await;
    fails(&server, &format!("Action=GetPolicyVersion&PolicyArn={enc_arn}&VersionId=v5"), 404, "NoSuchEntity").await;

    // AWS managed policies: listed, readable, not deletable.
    let aws = ok(&server, "Action=ListPolicies&Scope=AWS").await;
    assert_eq!(values(&aws, "PolicyName").len(), 4, "{aws}");
    let local = ok(&server, "Action=ListPolicies&Scope=Local").await;
    assert_eq!(values(&local, "Arn"), std::slice::from_ref(&arn));
    assert_eq!(values(&ok(&server, "Action=ListPolicies").await, "Arn").len(), 5);
    let core =
        ok(&server, &format!("Action=GetPolicyVersion&PolicyArn={}&VersionId=v2", form_encode(CORE_POLICY))).await;
    assert!(url_decode(&value(&core, "Document")).contains("ssm:UpdateInstanceInformation"));
    fails(&server, &format!("Action=DeletePolicy&PolicyArn={}", form_encode(CORE_POLICY)), 400, "InvalidInput").await;

    // Attachments to a user, a group and a role.
    ok(&server, "Action=CreateUser&UserName=dave").await;
    ok(&server, "Action=CreateGroup&GroupName=g").await;
    ok(
        &server,
        &format!("Action=CreateRole&RoleName=R&AssumeRolePolicyDocument={}", form_encode(common::SSM_TRUST_POLICY)),
    )
    .await;
    ok(&server, &format!("Action=AttachUserPolicy&UserName=dave&PolicyArn={enc_arn}")).await;
    ok(&server, &format!("Action=AttachGroupPolicy&GroupName=g&PolicyArn={enc_arn}")).await;
    ok(&server, &format!("Action=AttachRolePolicy&RoleName=R&PolicyArn={enc_arn}")).await;
    ok(&server, &format!("Action=AttachUserPolicy&UserName=dave&PolicyArn={}", form_encode(CORE_POLICY))).await;
    assert_eq!(value(&ok(&server, &format!("Action=GetPolicy&PolicyArn={enc_arn}")).await, "AttachmentCount"), "3");
    assert_eq!(
        value(
            &ok(&server, &format!("Action=GetPolicy&PolicyArn={}", form_encode(CORE_POLICY))).await,
            "AttachmentCount"
        ),
        "1"
    );
    let attached = ok(&server, "Action=ListPolicies&OnlyAttached=true").await;
    let attached = values(&attached, "Arn");
    assert!(attached.contains(&arn) && attached.contains(&CORE_POLICY.to_string()), "{attached:?}");
    assert!(!attached.iter().any(|a| a.ends_with("/AmazonSSMReadOnlyAccess")), "{attached:?}");
    let listed = ok(&server, "Action=ListAttachedUserPolicies&UserName=dave").await;
    assert_eq!(values(&listed, "PolicyName"), ["ops", "AmazonSSMManagedInstanceCore"]);
    assert_eq!(
        values(&ok(&server, "Action=ListAttachedUserPolicies&UserName=dave&PathPrefix=/team/").await, "PolicyName"),
        ["ops"]
    );
    assert_eq!(
        values(&ok(&server, "Action=ListAttachedGroupPolicies&GroupName=g").await, "PolicyArn"),
        std::slice::from_ref(&arn)
    );
    assert_eq!(
        values(&ok(&server, "Action=ListAttachedRolePolicies&RoleName=R").await, "PolicyArn"),
        std::slice::from_ref(&arn)
    );
    let unknown = form_encode(&format!("arn:aws:iam::{acct}:policy/unknown"));
    fails(&server, &format!("Action=AttachUserPolicy&UserName=dave&PolicyArn={unknown}"), 404, "NoSuchEntity").await;
    fails(&server, &format!("Action=AttachUserPolicy&UserName=nobody&PolicyArn={enc_arn}"), 404, "NoSuchEntity").await;
    fails(
        &server,
        &format!("Action=DetachGroupPolicy&GroupName=g&PolicyArn={}", form_encode(CORE_POLICY)),
        404,
        "NoSuchEntity",
    )
    .await;

    // At most ten per entity.
    for i in 0..9 {
        ok(&server, &format!("Action=CreatePolicy&PolicyName=p{i}&PolicyDocument={}", form_encode(DOC))).await;
        let p = form_encode(&format!("arn:aws:iam::{acct}:policy/p{i}"));
        ok(&server, &format!("Action=AttachRolePolicy&RoleName=R&PolicyArn={p}")).await;
    }
    let limit = fails(
        &server,
        &format!("Action=AttachRolePolicy&RoleName=R&PolicyArn={}", form_encode(CORE_POLICY)),
        409,
        "LimitExceeded",
    )
    .await;
    assert!(limit.text.contains("Cannot exceed quota for PoliciesPerRole: 10"), "{}", limit.text);

    let conflict = fails(&server, &format!("Action=DeletePolicy&PolicyArn={enc_arn}"), 409, "DeleteConflict").await;
    assert!(conflict.text.contains("Cannot delete a policy attached to entities."), "{}", conflict.text);
    let conflict = fails(&server, "Action=DeleteUser&UserName=dave", 409, "DeleteConflict").await;
    assert!(conflict.text.contains("must detach all policies first"), "{}", conflict.text);
    ok(&server, &format!("Action=DetachUserPolicy&UserName=dave&PolicyArn={enc_arn}")).await;
    ok(&server, &format!("Action=DetachGroupPolicy&GroupName=g&PolicyArn={enc_arn}")).await;
    ok(&server, &format!("Action=DetachRolePolicy&RoleName=R&PolicyArn={enc_arn}")).await;
    ok(&server, &format!("Action=DeletePolicy&PolicyArn={enc_arn}")).await;
    fails(&server, &format!("Action=GetPolicy&PolicyArn={enc_arn}"), 404, "NoSuchEntity").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_policies_roles_and_quotas() {
    let (_dir, server) = TestServer::start_fresh();
    ok(&server, "Action=CreateUser&UserName=erin").await;
    ok(&server, "Action=CreateGroup&GroupName=g").await;
    ok(
        &server,
        &format!("Action=CreateRole&RoleName=R&AssumeRolePolicyDocument={}", form_encode(common::SSM_TRUST_POLICY)),
    )
    .await;

    for (put, get, list, delete, who) in [
        ("PutUserPolicy", "GetUserPolicy", "ListUserPolicies", "DeleteUserPolicy", "UserName=erin"),
        ("PutGroupPolicy", "GetGroupPolicy", "ListGroupPolicies", "DeleteGroupPolicy", "GroupName=g"),
        ("PutRolePolicy", "GetRolePolicy", "ListRolePolicies", "DeleteRolePolicy", "RoleName=R"),
    ] {
        ok(&server, &format!("Action={put}&{who}&PolicyName=b&PolicyDocument={}", form_encode(DOC))).await;
        ok(&server, &format!("Action={put}&{who}&PolicyName=a&PolicyDocument={}", form_encode(DOC))).await;
        ok(&server, &format!("Action={put}&{who}&PolicyName=b&PolicyDocument={}", form_encode(DOC2))).await;
        let got = ok(&server, &format!("Action={get}&{who}&PolicyName=b")).await;
        assert_eq!(url_decode(&value(&got, "PolicyDocument")), DOC2, "{put}");
        assert_eq!(value(&got, "PolicyName"), "b");
        assert_eq!(values(&ok(&server, &format!("Action={list}&{who}")).await, "member"), ["a", "b"], "{list}");
        fails(&server, &format!("Action={get}&{who}&PolicyName=zz"), 404, "NoSuchEntity").await;
        fails(
            &server,
            &format!("Action={put}&{who}&PolicyName=bad&PolicyDocument=not-json"),
            400,
            "MalformedPolicyDocument",
        )
        .await;
        let with_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
        fails(
            &server,
            &format!("Action={put}&{who}&PolicyName=bad&PolicyDocument={}", form_encode(with_principal)),
            400,
            "MalformedPolicyDocument",
        )
        .await;
        ok(&server, &format!("Action={delete}&{who}&PolicyName=a")).await;
        fails(&server, &format!("Action={delete}&{who}&PolicyName=a"), 404, "NoSuchEntity").await;
    }
    fails(
        &server,
        &format!("Action=PutUserPolicy&UserName=nobody&PolicyName=p&PolicyDocument={}", form_encode(DOC)),
        404,
        "NoSuchEntity",
    )
    .await;

    // The user quota counts every inline policy of the user together.
    let padded = |n: usize| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"ssm:Get*","Resource":"{}"}}]}}"#,
            "a".repeat(n)
        )
    };
    let limit = fails(
        &server,
        &format!("Action=PutUserPolicy&UserName=erin&PolicyName=big&PolicyDocument={}", form_encode(&padded(2048))),
        409,
        "LimitExceeded",
    )
    .await;
    assert!(limit.text.contains("Cannot exceed quota for UserPolicySize: 2048"), "{}", limit.text);
    ok(
        &server,
        &format!("Action=PutUserPolicy&UserName=erin&PolicyName=half&PolicyDocument={}", form_encode(&padded(1000))),
    )
    .await;
    fails(
        &server,
        &format!("Action=PutUserPolicy&UserName=erin&PolicyName=half2&PolicyDocument={}", form_encode(&padded(1000))),
        409,
        "LimitExceeded",
    )
    .await;
    ok(
        &server,
        &format!("Action=PutRolePolicy&RoleName=R&PolicyName=big&PolicyDocument={}", form_encode(&padded(9000))),
    )
    .await;

    // A 10,000-statement policy is refused and nothing is written.
    let statement = r#"{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}"#;
    let huge = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, vec![statement; 10_000].join(","));
    for form in [
        format!("Action=PutUserPolicy&UserName=erin&PolicyName=huge&PolicyDocument={}", form_encode(&huge)),
        format!("Action=PutRolePolicy&RoleName=R&PolicyName=huge&PolicyDocument={}", form_encode(&huge)),
        format!("Action=CreatePolicy&PolicyName=huge&PolicyDocument={}", form_encode(&huge)),
    ] {
        let resp = server.iam(&form).await;
        assert!((400..500).contains(&resp.status), "{}: {}", resp.status, resp.text);
    }
    assert_eq!(values(&ok(&server, "Action=ListUserPolicies&UserName=erin").await, "member"), ["b", "half"]);
    assert_eq!(values(&ok(&server, "Action=ListRolePolicies&RoleName=R").await, "member"), ["b", "big"]);
    assert!(values(&ok(&server, "Action=ListPolicies&Scope=Local").await, "Arn").is_empty());

    // Roles: inline policies block deletion; tags; the trust policy.
    let conflict = fails(&server, "Action=DeleteRole&RoleName=R", 409, "DeleteConflict").await;
    assert!(conflict.text.contains("Cannot delete entity, must delete policies first."), "{}", conflict.text);
    ok(&server, "Action=TagRole&RoleName=R&Tags.member.1.Key=env&Tags.member.1.Value=lab&Tags.member.2.Key=x&Tags.member.2.Value=y").await;
    ok(&server, "Action=UntagRole&RoleName=R&TagKeys.member.1=x").await;
    assert_eq!(values(&ok(&server, "Action=ListRoleTags&RoleName=r").await, "Key"), ["env"]);
    fails(&server, "Action=ListRoleTags&RoleName=nobody", 404, "NoSuchEntity").await;
    let trust = common::SSM_TRUST_POLICY.replace("ssm.amazonaws.com", "ec2.amazonaws.com");
    ok(&server, &format!("Action=UpdateAssumeRolePolicy&RoleName=R&PolicyDocument={}", form_encode(&trust))).await;
    let role = ok(&server, "Action=GetRole&RoleName=R").await;
    assert_eq!(url_decode(&value(&role, "AssumeRolePolicyDocument")), trust);
    fails(
        &server,
        &format!("Action=UpdateAssumeRolePolicy&RoleName=R&PolicyDocument={}", form_encode(DOC)),
        400,
        "MalformedPolicyDocument",
    )
    .await;
    for name in ["b", "big"] {
        ok(&server, &format!("Action=DeleteRolePolicy&RoleName=R&PolicyName={name}")).await;
    }
    ok(&server, "Action=DeleteRole&RoleName=R").await;

    let conflict = fails(&server, "Action=DeleteUser&UserName=erin", 409, "DeleteConflict").await;
    assert!(conflict.text.contains("Cannot delete entity, must delete policies first."), "{}", conflict.text);
}
