//! Inline policies of users, groups and roles (`Put/Get/List/Delete{User,Group,Role}Policy`).
//!
//! AWS's size quotas count every inline policy of the entity together (characters excluding
//! whitespace): users 2,048, groups 5,120, roles 10,240.

use corral_api::iam::{
    DeleteGroupPolicyRequest, DeleteRolePolicyRequest, DeleteUserPolicyRequest, GetGroupPolicyRequest,
    GetGroupPolicyResponse, GetRolePolicyRequest, GetRolePolicyResponse, GetUserPolicyRequest, GetUserPolicyResponse,
    ListGroupPoliciesRequest, ListGroupPoliciesResponse, ListRolePoliciesRequest, ListRolePoliciesResponse,
    ListUserPoliciesRequest, ListUserPoliciesResponse, PutGroupPolicyRequest, PutRolePolicyRequest,
    PutUserPolicyRequest,
};
use corral_store::{IamEntity, StoreError};

use super::policies::no_such_entity;
use super::{check_identity_document, page, IamError};
use crate::context::RequestContext;
use crate::state::AppState;

/// AWS's quota name and size for an entity's inline policies together.
fn quota(entity: IamEntity<'_>) -> (&'static str, usize) {
    match entity {
        IamEntity::User(_) => ("UserPolicySize", 2048),
        IamEntity::Group(_) => ("GroupPolicySize", 5120),
        IamEntity::Role(_) => ("RolePolicySize", 10240),
    }
}

fn no_such_policy(entity: IamEntity<'_>, policy_name: &str) -> IamError {
    let kind = match entity {
        IamEntity::User(_) => "user",
        IamEntity::Group(_) => "group",
        IamEntity::Role(_) => "role",
    };
    IamError::NoSuchEntity(format!("The {kind} policy with name {policy_name} cannot be found."))
}

/// Creates or replaces an inline policy.
pub async fn put(
    state: &AppState,
    ctx: &RequestContext,
    entity: IamEntity<'_>,
    policy_name: &str,
    document: &str,
) -> Result<(), IamError> {
    let (quota_name, max) = quota(entity);
    check_identity_document(document, max, quota_name)?;
    match state.store.put_inline_policy(ctx.account_id(), entity, policy_name, document, max).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_entity(entity)),
        Err(StoreError::Conflict(_)) => {
            Err(IamError::LimitExceeded(format!("Cannot exceed quota for {quota_name}: {max}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads an inline policy's document.
pub async fn get(
    state: &AppState,
    ctx: &RequestContext,
    entity: IamEntity<'_>,
    policy_name: &str,
) -> Result<String, IamError> {
    match state.store.get_inline_policy(ctx.account_id(), entity, policy_name).await {
        Ok(Some(document)) => Ok(document),
        Ok(None) => Err(no_such_policy(entity, policy_name)),
        Err(StoreError::NotFound) => Err(no_such_entity(entity)),
        Err(e) => Err(e.into()),
    }
}

/// One page of an entity's inline policy names.
pub async fn list(
    state: &AppState,
    ctx: &RequestContext,
    entity: IamEntity<'_>,
    marker: Option<String>,
    max_items: Option<i32>,
) -> Result<(Vec<String>, bool, Option<String>), IamError> {
    let names = match state.store.list_inline_policies(ctx.account_id(), entity).await {
        Ok(names) => names,
        Err(StoreError::NotFound) => return Err(no_such_entity(entity)),
        Err(e) => return Err(e.into()),
    };
    Ok(page(names, |n| n, marker.as_deref(), max_items))
}

/// Deletes an inline policy.
pub async fn delete(
    state: &AppState,
    ctx: &RequestContext,
    entity: IamEntity<'_>,
    policy_name: &str,
) -> Result<(), IamError> {
    // Tell "no such entity" from "no such policy", as AWS does.
    list(state, ctx, entity, None, Some(1)).await?;
    match state.store.delete_inline_policy(ctx.account_id(), entity, policy_name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_policy(entity, policy_name)),
        Err(e) => Err(e.into()),
    }
}

// === users ===

/// `PutUserPolicy`.
pub async fn put_user_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: PutUserPolicyRequest,
) -> Result<(), IamError> {
    put(state, ctx, IamEntity::User(&input.user_name), &input.policy_name, &input.policy_document).await
}

/// `GetUserPolicy`.
pub async fn get_user_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: GetUserPolicyRequest,
) -> Result<GetUserPolicyResponse, IamError> {
    let policy_document = get(state, ctx, IamEntity::User(&input.user_name), &input.policy_name).await?;
    Ok(GetUserPolicyResponse { user_name: input.user_name, policy_name: input.policy_name, policy_document })
}

/// `ListUserPolicies`.
pub async fn list_user_policies(
    state: &AppState,
    ctx: &RequestContext,
    input: ListUserPoliciesRequest,
) -> Result<ListUserPoliciesResponse, IamError> {
    let (policy_names, truncated, marker) =
        list(state, ctx, IamEntity::User(&input.user_name), input.marker, input.max_items).await?;
    Ok(ListUserPoliciesResponse { policy_names, is_truncated: Some(truncated), marker })
}

/// `DeleteUserPolicy`.
pub async fn delete_user_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: DeleteUserPolicyRequest,
) -> Result<(), IamError> {
    delete(state, ctx, IamEntity::User(&input.user_name), &input.policy_name).await
}

// === groups ===

/// `PutGroupPolicy`.
pub async fn put_group_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: PutGroupPolicyRequest,
) -> Result<(), IamError> {
    put(state, ctx, IamEntity::Group(&input.group_name), &input.policy_name, &input.policy_document).await
}

/// `GetGroupPolicy`.
pub async fn get_group_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: GetGroupPolicyRequest,
) -> Result<GetGroupPolicyResponse, IamError> {
    let policy_document = get(state, ctx, IamEntity::Group(&input.group_name), &input.policy_name).await?;
    Ok(GetGroupPolicyResponse { group_name: input.group_name, policy_name: input.policy_name, policy_document })
}

/// `ListGroupPolicies`.
pub async fn list_group_policies(
    state: &AppState,
    ctx: &RequestContext,
    input: ListGroupPoliciesRequest,
) -> Result<ListGroupPoliciesResponse, IamError> {
    let (policy_names, truncated, marker) =
        list(state, ctx, IamEntity::Group(&input.group_name), input.marker, input.max_items).await?;
    Ok(ListGroupPoliciesResponse { policy_names, is_truncated: Some(truncated), marker })
}

/// `DeleteGroupPolicy`.
pub async fn delete_group_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: DeleteGroupPolicyRequest,
) -> Result<(), IamError> {
    delete(state, ctx, IamEntity::Group(&input.group_name), &input.policy_name).await
}

// === roles ===

/// `PutRolePolicy`.
pub async fn put_role_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: PutRolePolicyRequest,
) -> Result<(), IamError> {
    put(state, ctx, IamEntity::Role(&input.role_name), &input.policy_name, &input.policy_document).await
}

/// `GetRolePolicy`.
pub async fn get_role_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: GetRolePolicyRequest,
) -> Result<GetRolePolicyResponse, IamError> {
    let policy_document = get(state, ctx, IamEntity::Role(&input.role_name), &input.policy_name).await?;
    Ok(GetRolePolicyResponse { role_name: input.role_name, policy_name: input.policy_name, policy_document })
}

/// `ListRolePolicies`.
pub async fn list_role_policies(
    state: &AppState,
    ctx: &RequestContext,
    input: ListRolePoliciesRequest,
) -> Result<ListRolePoliciesResponse, IamError> {
    let (policy_names, truncated, marker) =
        list(state, ctx, IamEntity::Role(&input.role_name), input.marker, input.max_items).await?;
    Ok(ListRolePoliciesResponse { policy_names, is_truncated: Some(truncated), marker })
}

/// `DeleteRolePolicy`.
pub async fn delete_role_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: DeleteRolePolicyRequest,
) -> Result<(), IamError> {
    delete(state, ctx, IamEntity::Role(&input.role_name), &input.policy_name).await
}
