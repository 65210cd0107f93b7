//! Which action on which resources each operation needs: one table for every service, read
//! from the request's input (as JSON, whatever its wire protocol).
//!
//! Resource ARNs follow AWS's service-authorisation reference (api-surface.md §3.3): SSM
//! managed instances `arn:aws:ssm:<region>:<account>:managed-instance/<id>`, documents
//! `...:document/<name>` (AWS-owned ones with an empty account), service settings
//! `...:servicesetting/<id>`, IAM users, roles, groups and policies by their ARNs; actions with
//! no resource type use `*`. A managed instance's tags become `ssm:resourceTag/<key>` and
//! `aws:ResourceTag/<key>`; tags in a tagging request become `aws:RequestTag/<key>` and
//! `aws:TagKeys`.

use serde_json::Value;

use super::{AuthzError, Check};
use crate::context::{PrincipalKind, RequestContext};
use crate::state::AppState;

/// An operation of any service, for looking up what it needs.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// SSM.
    Ssm(corral_api::ssm::Operation),
    /// STS.
    Sts(corral_api::sts::Operation),
    /// IAM.
    Iam(corral_api::iam::Operation),
    /// CloudTrail.
    CloudTrail(corral_api::cloudtrail::Operation),
    /// ec2messages (the agent's long poll).
    Ec2Messages(corral_api::ec2messages::Operation),
}

impl Op {
    fn iam_action(self) -> &'static str {
        match self {
            Op::Ssm(op) => op.iam_action(),
            Op::Sts(op) => op.iam_action(),
            Op::Iam(op) => op.iam_action(),
            Op::CloudTrail(op) => op.iam_action(),
            Op::Ec2Messages(op) => op.iam_action(),
        }
    }
}

fn field<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

fn tag_pairs(input: &Value, list: &str) -> Vec<(String, String)> {
    input
        .get(list)
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(|t| Some((t.get("Key")?.as_str()?.to_string(), t.get("Value")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn request_tag_context(tags: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut ctx: Vec<(String, Vec<String>)> =
        tags.iter().map(|(k, v)| (format!("aws:RequestTag/{k}"), vec![v.clone()])).collect();
    if !tags.is_empty() {
        ctx.push(("aws:TagKeys".to_string(), tags.iter().map(|(k, _)| k.clone()).collect()));
    }
    ctx
}

/// The ARN of a managed instance and its tags as condition keys (no tags when it does not
/// exist: the handler then answers that it does not).
async fn managed_instance(state: &AppState, ctx: &RequestContext, action: &str, id: &str) -> Result<Check, AuthzError> {
    let instance = state.store.get_instance(id).await.map_err(|e| AuthzError::Internal(e.to_string()))?;
    Ok(instance_check(ctx, action, id, instance.as_ref()))
}

/// The check on a managed instance already read (or known to be absent).
fn instance_check(
    ctx: &RequestContext,
    action: &str,
    id: &str,
    instance: Option<&corral_store::ManagedInstance>,
) -> Check {
    let arn = format!("arn:aws:ssm:{}:{}:managed-instance/{id}", ctx.region, ctx.account_id());
    let mut check = Check::new(action, arn);
    if let Some(instance) = instance.filter(|i| i.account_id == ctx.account_id()) {
        for tag in &instance.tags {
            check.context.push((format!("ssm:resourceTag/{}", tag.key), vec![tag.value.clone()]));
            check.context.push((format!("aws:ResourceTag/{}", tag.key), vec![tag.value.clone()]));
        }
    }
    check
}

/// The ARN of a document (AWS-owned ones have an empty account field), with its tags as
/// condition keys and, when `with_type`, `ssm:DocumentType` (none of them when it does not
/// exist: the handler then answers that it does not).
async fn document(
    state: &AppState,
    ctx: &RequestContext,
    action: &str,
    name_or_arn: &str,
    with_type: bool,
) -> Result<Check, AuthzError> {
    use crate::services::ssm::documents;
    let Some(name) = documents::name_from(ctx, name_or_arn) else {
        // Another account's or region's ARN: checked as given (the handler refuses it).
        return Ok(Check::new(action, name_or_arn));
    };
    let mut check = Check::new(action, documents::document_arn(ctx, &name));
    let found = documents::find(state, ctx, &name).await.map_err(|e| AuthzError::Internal(e.to_string()))?;
    if let Some(found) = found {
        if with_type {
            check.context.push(("ssm:DocumentType".to_string(), vec![found.document_type().to_string()]));
        }
        for tag in found.tags() {
            check.context.push((format!("ssm:resourceTag/{}", tag.key), vec![tag.value.clone()]));
            check.context.push((format!("aws:ResourceTag/{}", tag.key), vec![tag.value.clone()]));
        }
    }
    Ok(check)
}

/// The ARN an IAM entity of `kind` with `path` and `name` has (or would have) in the caller's
/// account.
fn iam_arn(ctx: &RequestContext, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{}:{kind}{path}{name}", ctx.account_id())
}

fn store_error(e: corral_store::StoreError) -> AuthzError {
    AuthzError::Internal(e.to_string())
}

/// The stored ARN of the role a request names (by name, `path/name` or ARN), or, when no role
/// matches, the ARN as given.
async fn role_arn(state: &AppState, ctx: &RequestContext, reference: &str) -> Result<String, AuthzError> {
    use crate::services::iam::roles::{resolve_reference, RoleReference};
    let reference = RoleReference::parse(reference);
    Ok(match resolve_reference(state, ctx.account_id(), &reference).await.map_err(store_error)? {
        Some(role) => role.arn,
        None => reference.arn_if_absent(ctx.account_id()),
    })
}

/// `iam:PassRole` on the role a request hands to Systems Manager (an activation's or an
/// instance's role, a command's service role): whoever may pass a role may get its
/// credentials through a managed instance, so AWS requires it, scoped to `ssm.amazonaws.com`.
async fn pass_role_to_ssm(state: &AppState, ctx: &RequestContext, reference: &str) -> Result<Check, AuthzError> {
    let mut pass = Check::new("iam:PassRole", role_arn(state, ctx, reference).await?);
    pass.context.push(("iam:PassedToService".to_string(), vec!["ssm.amazonaws.com".to_string()]));
    Ok(pass)
}

/// The stored ARN of a group, or the ARN a group of that name at `/` would have.
async fn group_arn(state: &AppState, ctx: &RequestContext, name: &str) -> Result<String, AuthzError> {
    Ok(match state.store.get_group(ctx.account_id(), name).await.map_err(store_error)? {
        Some(group) => group.arn,
        None => iam_arn(ctx, "group", "/", name),
    })
}

/// The user a call is about (the named one, or the caller when the name may be omitted), by
/// its stored ARN.
async fn user_or_caller(state: &AppState, ctx: &RequestContext, input: &Value) -> Result<String, AuthzError> {
    let name = field(input, "UserName").map(str::to_string).or_else(|| match &ctx.principal.kind {
        PrincipalKind::User { user_name } | PrincipalKind::UserSession { user_name } => Some(user_name.clone()),
        PrincipalKind::AssumedRole { .. } => None,
    });
    let Some(name) = name else {
        return Ok(ctx.principal.arn.clone());
    };
    Ok(match state.store.get_user(ctx.account_id(), &name).await.map_err(store_error)? {
        Some(user) => user.arn,
        None => iam_arn(ctx, "user", "/", &name),
    })
}

/// What `op` needs, given its input. Empty when AWS requires no permission (e.g.
/// `sts:GetCallerIdentity`).
pub async fn checks_for(
    state: &AppState,
    ctx: &RequestContext,
    op: Op,
    input: &Value,
) -> Result<Vec<Check>, AuthzError> {
    use corral_api::iam::Operation as I;
    use corral_api::ssm::Operation as S;
    use corral_api::sts::Operation as T;
    let action = op.iam_action();
    let all = || vec![Check::new(action, "*")];
    Ok(match op {
        Op::Ssm(S::GetServiceSetting | S::UpdateServiceSetting | S::ResetServiceSetting) => {
            // Authorised on the setting the handler will change, never on the ARN as sent.
            use crate::services::ssm::settings;
            let id = field(input, "SettingId").unwrap_or_default();
            let arn = match settings::resolve(ctx, id) {
                Ok(setting) => settings::setting_arn(ctx, setting),
                // The handler answers that no such setting exists.
                Err(_) if id.starts_with("arn:") => id.to_string(),
                Err(_) => format!("arn:aws:ssm:{}:{}:servicesetting{id}", ctx.region, ctx.account_id()),
            };
            vec![Check::new(action, arn)]
        }
        // The instances will act with the role: handing it over needs iam:PassRole on it.
        Op::Ssm(S::CreateActivation) => {
            let mut check = Check::new(action, "*");
            check.context = request_tag_context(&tag_pairs(input, "Tags"));
            vec![check, pass_role_to_ssm(state, ctx, field(input, "IamRole").unwrap_or_default()).await?]
        }
        Op::Ssm(S::UpdateManagedInstanceRole) => {
            let id = field(input, "InstanceId").unwrap_or_default();
            vec![
                managed_instance(state, ctx, action, id).await?,
                pass_role_to_ssm(state, ctx, field(input, "IamRole").unwrap_or_default()).await?,
            ]
        }
        Op::Ssm(S::DescribeActivations | S::DeleteActivation | S::DescribeInstanceInformation) => all(),
        Op::Ssm(S::CreateDocument) => {
            let name = field(input, "Name").unwrap_or_default();
            let mut check = Check::new(action, crate::services::ssm::documents::document_arn(ctx, name));
            check.context = request_tag_context(&tag_pairs(input, "Tags"));
            let document_type = field(input, "DocumentType").unwrap_or("Command");
            check.context.push(("ssm:DocumentType".to_string(), vec![document_type.to_string()]));
            vec![check]
        }
        Op::Ssm(S::GetDocument | S::DescribeDocument | S::UpdateDocument | S::DeleteDocument) => {
            vec![document(state, ctx, action, field(input, "Name").unwrap_or_default(), true).await?]
        }
        Op::Ssm(S::UpdateDocumentDefaultVersion | S::ListDocumentVersions) => {
            vec![document(state, ctx, action, field(input, "Name").unwrap_or_default(), false).await?]
        }
        Op::Ssm(S::ListDocuments) => all(),
        // Run Command: the document and every instance the command would reach, each with its
        // tags, so tag conditions scope who may run what where.
        Op::Ssm(S::SendCommand) => {
            use crate::services::ssm::commands;
            let mut checks =
                vec![document(state, ctx, action, field(input, "DocumentName").unwrap_or_default(), true).await?];
            let (ids, targets) = commands::targets_from_json(input);
            match commands::resolve_targets(state, ctx, &ids, &targets).await {
                // Resolution read each instance with its tags already.
                Ok(instances) => {
                    checks.extend(instances.iter().map(|i| instance_check(ctx, action, &i.instance_id, Some(i))));
                }
                // The handler answers the resolution error; the instances named are still
                // checked, so a refusal never reveals which of them exist.
                Err(_) => {
                    for id in &ids {
                        checks.push(managed_instance(state, ctx, action, id).await?);
                    }
                }
            }
            if let Some(role) = field(input, "ServiceRoleArn") {
                checks.push(pass_role_to_ssm(state, ctx, role).await?);
            }
            checks
        }
        Op::Ssm(S::ListCommands | S::ListCommandInvocations | S::GetCommandInvocation | S::CancelCommand) => all(),
        Op::Ssm(S::DeregisterManagedInstance | S::UpdateInstanceInformation | S::ListInstanceAssociations) => {
            let id = field(input, "InstanceId").unwrap_or_default();
            vec![managed_instance(state, ctx, action, id).await?]
        }
        Op::Ssm(S::AddTagsToResource | S::RemoveTagsFromResource | S::ListTagsForResource) => {
            let id = field(input, "ResourceId").unwrap_or_default();
            let mut check = match field(input, "ResourceType") {
                Some("ManagedInstance") => managed_instance(state, ctx, action, id).await?,
                Some("Document") => document(state, ctx, action, id, false).await?,
                _ => Check::new(action, "*"),
            };
            match op {
                Op::Ssm(S::AddTagsToResource) => check.context.extend(request_tag_context(&tag_pairs(input, "Tags"))),
                Op::Ssm(S::RemoveTagsFromResource) => {
                    let keys: Vec<String> = input
                        .get("TagKeys")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        check.context.push(("aws:TagKeys".to_string(), keys));
                    }
                }
                _ => {}
            }
            vec![check]
        }
        // The agent's own calls are authenticated by the activation code or the instance key.
        Op::Ssm(
            S::RegisterManagedInstance | S::RequestManagedInstanceRoleToken | S::UpdateManagedInstancePublicKey,
        ) => Vec::new(),
        // AWS requires no permission to ask who you are or for your own session token.
        Op::Sts(T::GetCallerIdentity | T::GetSessionToken) => Vec::new(),
        Op::Sts(T::AssumeRole) => {
            let arn = field(input, "RoleArn").unwrap_or("*");
            vec![Check::new(action, role_arn(state, ctx, arn).await?)]
        }
        Op::Iam(op) => {
            // Every entity is resolved first and authorised on its stored ARN (real path,
            // stored case); one that does not exist is authorised on the ARN it would have.
            let name = |key: &str| field(input, key).unwrap_or_default();
            let path = field(input, "Path").unwrap_or("/");
            let resource = match op {
                I::CreateUser => iam_arn(ctx, "user", path, name("UserName")),
                I::GetUser
                | I::DeleteUser
                | I::TagUser
                | I::UntagUser
                | I::ListUserTags
                | I::CreateAccessKey
                | I::ListAccessKeys
                | I::UpdateAccessKey
                | I::DeleteAccessKey
                | I::AttachUserPolicy
                | I::DetachUserPolicy
                | I::ListAttachedUserPolicies
                | I::PutUserPolicy
                | I::GetUserPolicy
                | I::ListUserPolicies
                | I::DeleteUserPolicy
                | I::ListGroupsForUser => user_or_caller(state, ctx, input).await?,
                I::CreateRole => iam_arn(ctx, "role", path, name("RoleName")),
                I::GetRole
                | I::DeleteRole
                | I::AttachRolePolicy
                | I::DetachRolePolicy
                | I::ListAttachedRolePolicies
                | I::PutRolePolicy
                | I::GetRolePolicy
                | I::ListRolePolicies
                | I::DeleteRolePolicy
                | I::TagRole
                | I::UntagRole
                | I::ListRoleTags
                | I::UpdateAssumeRolePolicy => role_arn(state, ctx, name("RoleName")).await?,
                I::CreateGroup => iam_arn(ctx, "group", path, name("GroupName")),
                I::GetGroup
                | I::DeleteGroup
                | I::AddUserToGroup
                | I::RemoveUserFromGroup
                | I::AttachGroupPolicy
                | I::DetachGroupPolicy
                | I::ListAttachedGroupPolicies
                | I::PutGroupPolicy
                | I::GetGroupPolicy
                | I::ListGroupPolicies
                | I::DeleteGroupPolicy => group_arn(state, ctx, name("GroupName")).await?,
                I::CreatePolicy => iam_arn(ctx, "policy", path, name("PolicyName")),
                // Policies are looked up by their exact ARN: the ARN as sent is the stored one
                // or names nothing.
                I::GetPolicy
                | I::GetPolicyVersion
                | I::CreatePolicyVersion
                | I::ListPolicyVersions
                | I::DeletePolicyVersion
                | I::DeletePolicy => name("PolicyArn").to_string(),
                I::ListUsers | I::ListRoles | I::ListGroups | I::ListPolicies => "*".to_string(),
            };
            let mut check = Check::new(action, resource);
            if matches!(op, I::CreateUser | I::CreateRole | I::TagUser | I::TagRole | I::CreatePolicy) {
                check.context = request_tag_context(&tag_pairs(input, "Tags"));
            }
            if matches!(
                op,
                I::AttachUserPolicy
                    | I::DetachUserPolicy
                    | I::AttachGroupPolicy
                    | I::DetachGroupPolicy
                    | I::AttachRolePolicy
                    | I::DetachRolePolicy
            ) {
                // IAM's condition key for scoping which policies may be attached.
                check.context.push(("iam:PolicyARN".to_string(), vec![name("PolicyArn").to_string()]));
            }
            vec![check]
        }
        Op::CloudTrail(_) => all(),
        // The agent's long poll: the handlers check that the caller is the instance addressed.
        Op::Ec2Messages(_) => all(),
    })
}
