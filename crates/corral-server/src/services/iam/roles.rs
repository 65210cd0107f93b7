//! IAM roles and their managed-policy attachments.
//!
//! A role's trust policy is checked on write; a hybrid activation later requires it to trust
//! `ssm.amazonaws.com` (see `services::ssm::activations`).

use corral_api::iam::{
    AttachRolePolicyRequest, CreateRoleRequest, CreateRoleResponse, DeleteRoleRequest, DetachRolePolicyRequest,
    GetRoleRequest, GetRoleResponse, ListAttachedRolePoliciesRequest, ListAttachedRolePoliciesResponse,
    ListRoleTagsRequest, ListRoleTagsResponse, ListRolesRequest, ListRolesResponse, Role, TagRoleRequest,
    UntagRoleRequest, UpdateAssumeRolePolicyRequest,
};
use corral_iam::policy::{self, PolicyKind};
use corral_store::{IamEntity, IamRole, StoreError};
use corral_wire::time::Timestamp;

use super::{page, policies, tags_from_wire, tags_to_wire, IamError, MAX_TAGS};
use crate::context::RequestContext;
use crate::ids;
use crate::state::AppState;

/// AWS's default `MaxSessionDuration` for a role: one hour.
const DEFAULT_MAX_SESSION_SECONDS: i32 = 3600;

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
        tags: tags_to_wire(&role.tags),
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

/// How a request names a role: by ARN, by name with its path (`service-role/Name`, as SSM's
/// `IamRole` parameters accept), or by bare name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleReference<'a> {
    /// A full ARN: names the role only if it equals the stored ARN exactly (path and case), as
    /// policies compare ARNs; anything else names no role.
    Arn(&'a str),
    /// `path/Name`: the path must be the stored path.
    PathAndName {
        /// `/path/`, with its slashes.
        path: String,
        /// The last segment.
        name: &'a str,
    },
    /// A bare name, looked up as IAM looks names up (case-insensitively).
    Name(&'a str),
}

impl<'a> RoleReference<'a> {
    /// Reads a reference from a request parameter.
    pub fn parse(reference: &'a str) -> RoleReference<'a> {
        if reference.starts_with("arn:") {
            return RoleReference::Arn(reference);
        }
        match reference.rsplit_once('/') {
            Some((path, name)) => {
                RoleReference::PathAndName { path: format!("/{}/", path.trim_matches('/')).replace("//", "/"), name }
            }
            None => RoleReference::Name(reference),
        }
    }

    /// The role name to look up: the ARN's last segment for an ARN of `account_id`.
    fn lookup_name(&self, account_id: &str) -> Option<&'a str> {
        match self {
            RoleReference::Arn(arn) => arn
                .strip_prefix(&format!("arn:aws:iam::{account_id}:role/"))
                .and_then(|rest| rest.rsplit('/').next())
                .filter(|n| !n.is_empty()),
            RoleReference::PathAndName { name, .. } | RoleReference::Name(name) => {
                Some(*name).filter(|n| !n.is_empty())
            }
        }
    }

    /// The ARN a reference to a role that does not exist is authorised on: the ARN as given, or
    /// the one a role of that name and path would have.
    pub fn arn_if_absent(&self, account_id: &str) -> String {
        match self {
            RoleReference::Arn(arn) => arn.to_string(),
            RoleReference::PathAndName { path, name } => format!("arn:aws:iam::{account_id}:role{path}{name}"),
            RoleReference::Name(name) => format!("arn:aws:iam::{account_id}:role/{name}"),
        }
    }
}

/// The stored role a reference names in `account_id`, if any. Authorisation must use the
/// returned role's stored ARN: a lookup by name ignores case, and an ARN or path that differs
/// from the stored one names no role, so a policy on `role/dev/*` or a deny on `role/Prod` can
/// never be slipped past by spelling the role another way.
pub async fn resolve_reference(
    state: &AppState,
    account_id: &str,
    reference: &RoleReference<'_>,
) -> Result<Option<IamRole>, StoreError> {
    let Some(name) = reference.lookup_name(account_id) else {
        return Ok(None);
    };
    let Some(role) = state.store.get_role(account_id, name).await? else {
        return Ok(None);
    };
    let same = match reference {
        RoleReference::Arn(arn) => role.arn == *arn,
        RoleReference::PathAndName { path, .. } => role.path == *path,
        RoleReference::Name(_) => true,
    };
    Ok(same.then_some(role))
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
        tags: tags_from_wire(input.tags)?,
    };
    let output = CreateRoleResponse { role: role_to_wire(&role) };
    crate::audit::stage_output(&output);
    match state.store.create_role(&role).await {
        Ok(()) => Ok(output),
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

/// `DeleteRole`: refused while policies are attached or inline, as AWS does; ends the role's
/// sessions.
pub async fn delete_role(state: &AppState, ctx: &RequestContext, input: DeleteRoleRequest) -> Result<(), IamError> {
    match state.store.delete_role(ctx.account_id(), &input.role_name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => {
            Err(IamError::NoSuchEntity(format!("The role with name {} cannot be found.", input.role_name)))
        }
        Err(StoreError::Conflict(reason)) => {
            Err(IamError::DeleteConflict(super::users::delete_conflict_message(&reason)))
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
    let roles: Vec<IamRole> =
        state.store.list_roles(ctx.account_id()).await?.into_iter().filter(|r| r.path.starts_with(&prefix)).collect();
    let (roles, truncated, marker) = page(roles, |r| &r.role_name, input.marker.as_deref(), input.max_items);
    let page: Vec<Role> = roles.iter().map(role_to_wire).collect();
    Ok(ListRolesResponse { roles: page, is_truncated: Some(truncated), marker })
}

/// `AttachRolePolicy`: an AWS or customer managed policy.
pub async fn attach_role_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: AttachRolePolicyRequest,
) -> Result<(), IamError> {
    policies::attach(state, ctx, IamEntity::Role(&input.role_name), &input.policy_arn).await
}

/// `DetachRolePolicy`.
pub async fn detach_role_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: DetachRolePolicyRequest,
) -> Result<(), IamError> {
    policies::detach(state, ctx, IamEntity::Role(&input.role_name), &input.policy_arn).await
}

/// `ListAttachedRolePolicies`.
pub async fn list_attached_role_policies(
    state: &AppState,
    ctx: &RequestContext,
    input: ListAttachedRolePoliciesRequest,
) -> Result<ListAttachedRolePoliciesResponse, IamError> {
    let entity = IamEntity::Role(&input.role_name);
    let (attached, truncated, marker) =
        policies::list_attached(state, ctx, entity, input.path_prefix, input.marker, input.max_items).await?;
    Ok(ListAttachedRolePoliciesResponse { attached_policies: Some(attached), is_truncated: Some(truncated), marker })
}

// === tags and the trust policy ===

fn no_such_role(role_name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role with name {role_name} cannot be found."))
}

/// `TagRole`: at most 50 tags in all.
pub async fn tag_role(state: &AppState, ctx: &RequestContext, input: TagRoleRequest) -> Result<(), IamError> {
    let tags = tags_from_wire(Some(input.tags))?;
    match state.store.tag_entity(ctx.account_id(), IamEntity::Role(&input.role_name), &tags, MAX_TAGS).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_role(&input.role_name)),
        Err(StoreError::Conflict(_)) => Err(super::users::too_many_tags("role")),
        Err(e) => Err(e.into()),
    }
}

/// `UntagRole`.
pub async fn untag_role(state: &AppState, ctx: &RequestContext, input: UntagRoleRequest) -> Result<(), IamError> {
    match state.store.untag_entity(ctx.account_id(), IamEntity::Role(&input.role_name), &input.tag_keys).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_role(&input.role_name)),
        Err(e) => Err(e.into()),
    }
}

/// `ListRoleTags`: sorted by key; the marker is the last key returned.
pub async fn list_role_tags(
    state: &AppState,
    ctx: &RequestContext,
    input: ListRoleTagsRequest,
) -> Result<ListRoleTagsResponse, IamError> {
    let tags = match state.store.list_entity_tags(ctx.account_id(), IamEntity::Role(&input.role_name)).await {
        Ok(tags) => tags,
        Err(StoreError::NotFound) => return Err(no_such_role(&input.role_name)),
        Err(e) => return Err(e.into()),
    };
    let (tags, truncated, marker) = page(tags, |t| &t.key, input.marker.as_deref(), input.max_items);
    Ok(ListRoleTagsResponse { tags: tags_to_wire(&tags).unwrap_or_default(), is_truncated: Some(truncated), marker })
}

/// `UpdateAssumeRolePolicy`: the new trust policy is checked as on `CreateRole`.
pub async fn update_assume_role_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: UpdateAssumeRolePolicyRequest,
) -> Result<(), IamError> {
    policy::parse(&input.policy_document, PolicyKind::Trust)
        .map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
    match state.store.update_assume_role_policy(ctx.account_id(), &input.role_name, &input.policy_document).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_role(&input.role_name)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::RoleReference;

    #[test]
    fn role_references_from_names_paths_and_arns() {
        let acct = "111122223333";
        let check = |reference: &str, lookup: Option<&str>, arn: &str| {
            let r = RoleReference::parse(reference);
            assert_eq!(r.lookup_name(acct), lookup, "{reference}");
            assert_eq!(r.arn_if_absent(acct), arn, "{reference}");
        };
        check("SSMServiceRole", Some("SSMServiceRole"), "arn:aws:iam::111122223333:role/SSMServiceRole");
        check(
            "service-role/SSMServiceRole",
            Some("SSMServiceRole"),
            "arn:aws:iam::111122223333:role/service-role/SSMServiceRole",
        );
        check(
            "arn:aws:iam::111122223333:role/x/SSMServiceRole",
            Some("SSMServiceRole"),
            "arn:aws:iam::111122223333:role/x/SSMServiceRole",
        );
        check("arn:aws:iam::999999999999:role/R", None, "arn:aws:iam::999999999999:role/R");
        check("arn:aws:s3:::bucket", None, "arn:aws:s3:::bucket");
        check("/R", Some("R"), "arn:aws:iam::111122223333:role/R");
    }
}
