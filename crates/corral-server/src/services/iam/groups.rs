//! IAM groups and their members. A user's group memberships bring the group's policies into
//! the user's permissions; a group cannot be deleted while it has members or policies.

use corral_api::iam::{
    AddUserToGroupRequest, CreateGroupRequest, CreateGroupResponse, DeleteGroupRequest, GetGroupRequest,
    GetGroupResponse, Group, ListGroupsForUserRequest, ListGroupsForUserResponse, ListGroupsRequest,
    ListGroupsResponse, RemoveUserFromGroupRequest,
};
use corral_store::{IamGroup, StoreError};
use corral_wire::time::Timestamp;

use super::users::{delete_conflict_message, no_such_user, require_user, user_to_wire};
use super::{page, received_millis, IamError};
use crate::context::RequestContext;
use crate::ids;
use crate::state::AppState;

/// AWS's `NoSuchEntity` for a group.
pub fn no_such_group(group_name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The group with name {group_name} cannot be found."))
}

/// The wire form of a stored group.
pub fn group_to_wire(group: &IamGroup) -> Group {
    Group {
        path: group.path.clone(),
        group_name: group.group_name.clone(),
        group_id: group.group_id.clone(),
        arn: group.arn.clone(),
        create_date: Timestamp(group.created_at),
    }
}

/// Loads a group or answers AWS's `NoSuchEntity`.
pub async fn require_group(state: &AppState, account_id: &str, group_name: &str) -> Result<IamGroup, IamError> {
    state.store.get_group(account_id, group_name).await?.ok_or_else(|| no_such_group(group_name))
}

/// `CreateGroup`.
pub async fn create_group(
    state: &AppState,
    ctx: &RequestContext,
    input: CreateGroupRequest,
) -> Result<CreateGroupResponse, IamError> {
    let path = input.path.unwrap_or_else(|| "/".to_string());
    let group = IamGroup {
        account_id: ctx.account_id().to_string(),
        group_name: input.group_name.clone(),
        group_id: ids::new_unique_id("AGPA"),
        arn: format!("arn:aws:iam::{}:group{}{}", ctx.account_id(), path, input.group_name),
        path,
        created_at: received_millis(ctx),
    };
    let output = CreateGroupResponse { group: group_to_wire(&group) };
    crate::audit::stage_output(&output);
    match state.store.create_group(&group).await {
        Ok(()) => Ok(output),
        Err(StoreError::AlreadyExists) => {
            Err(IamError::EntityAlreadyExists(format!("Group with name {} already exists.", input.group_name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GetGroup`: the group and (a page of) its members.
pub async fn get_group(
    state: &AppState,
    ctx: &RequestContext,
    input: GetGroupRequest,
) -> Result<GetGroupResponse, IamError> {
    let group = require_group(state, ctx.account_id(), &input.group_name).await?;
    let members = match state.store.list_group_members(ctx.account_id(), &input.group_name).await {
        Ok(members) => members,
        Err(StoreError::NotFound) => return Err(no_such_group(&input.group_name)),
        Err(e) => return Err(e.into()),
    };
    let (members, truncated, marker) = page(members, |u| &u.user_name, input.marker.as_deref(), input.max_items);
    Ok(GetGroupResponse {
        group: group_to_wire(&group),
        users: members.iter().map(|u| user_to_wire(u, &[])).collect(),
        is_truncated: Some(truncated),
        marker,
    })
}

/// `ListGroups`: ordered by name; the marker is the last name returned.
pub async fn list_groups(
    state: &AppState,
    ctx: &RequestContext,
    input: ListGroupsRequest,
) -> Result<ListGroupsResponse, IamError> {
    let prefix = input.path_prefix.unwrap_or_else(|| "/".to_string());
    let groups: Vec<IamGroup> =
        state.store.list_groups(ctx.account_id()).await?.into_iter().filter(|g| g.path.starts_with(&prefix)).collect();
    let (groups, truncated, marker) = page(groups, |g| &g.group_name, input.marker.as_deref(), input.max_items);
    Ok(ListGroupsResponse { groups: groups.iter().map(group_to_wire).collect(), is_truncated: Some(truncated), marker })
}

/// `DeleteGroup`: refused while it has members or policies.
pub async fn delete_group(state: &AppState, ctx: &RequestContext, input: DeleteGroupRequest) -> Result<(), IamError> {
    match state.store.delete_group(ctx.account_id(), &input.group_name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_group(&input.group_name)),
        Err(StoreError::Conflict(reason)) => Err(IamError::DeleteConflict(delete_conflict_message(&reason))),
        Err(e) => Err(e.into()),
    }
}

/// `AddUserToGroup`: adding a member again is a no-op.
pub async fn add_user_to_group(
    state: &AppState,
    ctx: &RequestContext,
    input: AddUserToGroupRequest,
) -> Result<(), IamError> {
    require_group(state, ctx.account_id(), &input.group_name).await?;
    require_user(state, ctx.account_id(), &input.user_name).await?;
    match state.store.add_user_to_group(ctx.account_id(), &input.group_name, &input.user_name).await {
        Ok(()) => Ok(()),
        // Deleted in between.
        Err(StoreError::NotFound) => Err(no_such_user(&input.user_name)),
        Err(e) => Err(e.into()),
    }
}

/// `RemoveUserFromGroup`.
pub async fn remove_user_from_group(
    state: &AppState,
    ctx: &RequestContext,
    input: RemoveUserFromGroupRequest,
) -> Result<(), IamError> {
    require_group(state, ctx.account_id(), &input.group_name).await?;
    require_user(state, ctx.account_id(), &input.user_name).await?;
    match state.store.remove_user_from_group(ctx.account_id(), &input.group_name, &input.user_name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(IamError::NoSuchEntity(format!(
            "The user with name {} cannot be found in group {}.",
            input.user_name, input.group_name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `ListGroupsForUser`.
pub async fn list_groups_for_user(
    state: &AppState,
    ctx: &RequestContext,
    input: ListGroupsForUserRequest,
) -> Result<ListGroupsForUserResponse, IamError> {
    let groups = match state.store.list_groups_for_user(ctx.account_id(), &input.user_name).await {
        Ok(groups) => groups,
        Err(StoreError::NotFound) => return Err(no_such_user(&input.user_name)),
        Err(e) => return Err(e.into()),
    };
    let (groups, truncated, marker) = page(groups, |g| &g.group_name, input.marker.as_deref(), input.max_items);
    Ok(ListGroupsForUserResponse {
        groups: groups.iter().map(group_to_wire).collect(),
        is_truncated: Some(truncated),
        marker,
    })
}
