//! IAM roles and their managed-policy attachments.
//!
//! A role's trust policy is checked on write; a hybrid activation later requires it to trust
//! `ssm.amazonaws.com` (see `services::ssm::activations`).

use corral_api::iam::{
    AttachRolePolicyRequest, AttachedPolicy, CreateRoleRequest, CreateRoleResponse, DeleteRoleRequest,
    DetachRolePolicyRequest, GetPolicyRequest, GetPolicyResponse, GetRoleRequest, GetRoleResponse,
    ListAttachedRolePoliciesRequest, ListAttachedRolePoliciesResponse, ListRolesRequest, ListRolesResponse, Policy,
    Role, Tag,
};
use corral_iam::policy::{self, PolicyKind};
use corral_store::{IamRole, StoreError};
use corral_wire::time::Timestamp;

use super::managed::{self, AwsManagedPolicy};
use super::IamError;
use crate::context::RequestContext;
use crate::ids;
use crate::state::AppState;

/// AWS's default `MaxSessionDuration` for a role: one hour.
const DEFAULT_MAX_SESSION_SECONDS: i32 = 3600;
/// IAM's default page size for list calls.
const DEFAULT_MAX_ITEMS: usize = 100;

/// The wire form of a stored role.
pub fn role_to_wire(role: &IamRole) -> Role {
    Role {
        path: role.path.clone(),
        role_name: role.role_name.clone(),
        role_id: role.role_id.clone(),
        arn: role.arn.clone(),
        create_date: Timestamp(role.created_at),
        assume_role_policy_document: Some(role.assume_role_policy_document.clone()),
        description: role.description.clone(),
        max_session_duration: Some(role.max_session_duration),
        tags: (!role.tags.is_empty())
            .then(|| role.tags.iter().map(|t| Tag { key: t.key.clone(), value: t.value.clone() }).collect()),
        max_signin_session_duration: None,
        permissions_boundary: None,
        role_last_used: None,
        source_role_template: None,
    }
}

/// Loads a role or answers AWS's `NoSuchEntity`.
pub async fn require_role(state: &AppState, account_id: &str, role_name: &str) -> Result<IamRole, IamError> {
    state
        .store
        .get_role(account_id, role_name)
        .await?
        .ok_or_else(|| IamError::NoSuchEntity(format!("The role with name {role_name} cannot be found.")))
}

/// `CreateRole`.
pub async fn create_role(
    state: &AppState,
    ctx: &RequestContext,
    input: CreateRoleRequest,
) -> Result<CreateRoleResponse, IamError> {
    policy::parse(&input.assume_role_policy_document, PolicyKind::Trust)
        .map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
    let path = input.path.unwrap_or_else(|| "/".to_string());
    let role = IamRole {
        account_id: ctx.account_id().to_string(),
        role_name: input.role_name.clone(),
        role_id: ids::new_unique_id("AROA"),
        arn: format!("arn:aws:iam::{}:role{}{}", ctx.account_id(), path, input.role_name),
        path,
        assume_role_policy_document: input.assume_role_policy_document,
        description: input.description,
        max_session_duration: input.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_SECONDS),
        created_at: ctx.received_at,
        tags: input
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| corral_store::Tag { key: t.key, value: t.value })
            .collect(),
    };
    match state.store.create_role(&role).await {
        Ok(()) => Ok(CreateRoleResponse { role: role_to_wire(&role) }),
        Err(StoreError::AlreadyExists) => {
            Err(IamError::EntityAlreadyExists(format!("Role with name {} already exists.", input.role_name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GetRole`.
pub async fn get_role(
    state: &AppState,
    ctx: &RequestContext,
    input: GetRoleRequest,
) -> Result<GetRoleResponse, IamError> {
    let role = require_role(state, ctx.account_id(), &input.role_name).await?;
    Ok(GetRoleResponse { role: role_to_wire(&role) })
}

/// `DeleteRole`: refused while managed policies are attached, as AWS does.
pub async fn delete_role(state: &AppState, ctx: &RequestContext, input: DeleteRoleRequest) -> Result<(), IamError> {
    match state.store.delete_role(ctx.account_id(), &input.role_name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => {
            Err(IamError::NoSuchEntity(format!("The role with name {} cannot be found.", input.role_name)))
        }
        Err(StoreError::Conflict(_)) => {
            Err(IamError::DeleteConflict("Cannot delete entity, must detach all policies first.".to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// `ListRoles`: ordered by name; the marker is the last name returned.
pub async fn list_roles(
    state: &AppState,
    ctx: &RequestContext,
    input: ListRolesRequest,
) -> Result<ListRolesResponse, IamError> {
    let prefix = input.path_prefix.unwrap_or_else(|| "/".to_string());
    let max = input.max_items.map(|m| m as usize).unwrap_or(DEFAULT_MAX_ITEMS);
    let roles: Vec<IamRole> = state
        .store
        .list_roles(ctx.account_id())
        .await?
        .into_iter()
        .filter(|r| r.path.starts_with(&prefix))
        .filter(|r| input.marker.as_deref().is_none_or(|m| r.role_name.as_str() > m))
        .collect();
    let truncated = roles.len() > max;
    let page: Vec<Role> = roles.iter().take(max).map(role_to_wire).collect();
    let marker = if truncated { page.last().map(|r| r.role_name.clone()) } else { None };
    Ok(ListRolesResponse { roles: page, is_truncated: Some(truncated), marker })
}

fn find_policy(arn: &str) -> Result<&'static AwsManagedPolicy, IamError> {
    // Customer managed policies arrive with the access-control issue; until then only AWS's.
    managed::find_by_arn(arn)
        .ok_or_else(|| IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable.")))
}

/// `AttachRolePolicy`.
pub async fn attach_role_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: AttachRolePolicyRequest,
) -> Result<(), IamError> {
    find_policy(&input.policy_arn)?;
    match state.store.attach_role_policy(ctx.account_id(), &input.role_name, &input.policy_arn).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => {
            Err(IamError::NoSuchEntity(format!("The role with name {} cannot be found.", input.role_name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `DetachRolePolicy`.
pub async fn detach_role_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: DetachRolePolicyRequest,
) -> Result<(), IamError> {
    require_role(state, ctx.account_id(), &input.role_name).await?;
    match state.store.detach_role_policy(ctx.account_id(), &input.role_name, &input.policy_arn).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(IamError::NoSuchEntity(format!("Policy {} was not found.", input.policy_arn))),
        Err(e) => Err(e.into()),
    }
}

/// `ListAttachedRolePolicies`.
pub async fn list_attached_role_policies(
    state: &AppState,
    ctx: &RequestContext,
    input: ListAttachedRolePoliciesRequest,
) -> Result<ListAttachedRolePoliciesResponse, IamError> {
    let arns = match state.store.list_attached_role_policies(ctx.account_id(), &input.role_name).await {
        Ok(arns) => arns,
        Err(StoreError::NotFound) => {
            return Err(IamError::NoSuchEntity(format!("The role with name {} cannot be found.", input.role_name)))
        }
        Err(e) => return Err(e.into()),
    };
    let prefix = input.path_prefix.unwrap_or_else(|| "/".to_string());
    let max = input.max_items.map(|m| m as usize).unwrap_or(DEFAULT_MAX_ITEMS);
    let attached: Vec<AttachedPolicy> = arns
        .iter()
        .filter(|arn| policy_path(arn).starts_with(&prefix))
        .filter(|arn| input.marker.as_deref().is_none_or(|m| arn.as_str() > m))
        .map(|arn| AttachedPolicy {
            policy_name: arn.rsplit('/').next().map(str::to_string),
            policy_arn: Some(arn.clone()),
        })
        .collect();
    let truncated = attached.len() > max;
    let page: Vec<AttachedPolicy> = attached.into_iter().take(max).collect();
    let marker = if truncated { page.last().and_then(|p| p.policy_arn.clone()) } else { None };
    Ok(ListAttachedRolePoliciesResponse { attached_policies: Some(page), is_truncated: Some(truncated), marker })
}

/// The path of a policy ARN (`arn:aws:iam::aws:policy/service-role/X` → `/service-role/`).
fn policy_path(arn: &str) -> String {
    let resource = arn.split_once(":policy").map(|(_, r)| r).unwrap_or("/");
    match resource.rfind('/') {
        Some(i) => resource[..=i].to_string(),
        None => "/".to_string(),
    }
}

/// `GetPolicy` (AWS managed policies).
pub async fn get_policy(
    _state: &AppState,
    _ctx: &RequestContext,
    input: GetPolicyRequest,
) -> Result<GetPolicyResponse, IamError> {
    let p = managed::find_by_arn(&input.policy_arn).ok_or_else(|| {
        IamError::NoSuchEntity(format!("Policy {} does not exist or is not attachable.", input.policy_arn))
    })?;
    // AWS managed policies predate every account; a fixed date keeps answers stable.
    let created = Timestamp::parse_iso8601("2019-03-15T00:00:00Z");
    Ok(GetPolicyResponse {
        policy: Some(Policy {
            policy_name: Some(p.name.to_string()),
            policy_id: Some(p.policy_id.to_string()),
            arn: Some(p.arn()),
            path: Some("/".to_string()),
            default_version_id: Some(p.default_version_id.to_string()),
            attachment_count: None,
            permissions_boundary_usage_count: Some(0),
            is_attachable: Some(true),
            description: Some(p.description.to_string()),
            create_date: created,
            update_date: created,
            tags: None,
        }),
    })
}
