//! IAM users, their tags and their long-term access keys.
//!
//! A user cannot be deleted while it has access keys, policies or group memberships (AWS's
//! `DeleteConflict`); deleting it ends its `GetSessionToken` sessions in the same transaction.
//! An access key's secret is returned once, by `CreateAccessKey`.

use corral_api::iam::{
    AccessKey, AccessKeyMetadata, CreateAccessKeyRequest, CreateAccessKeyResponse, CreateUserRequest,
    CreateUserResponse, DeleteAccessKeyRequest, DeleteUserRequest, GetUserRequest, GetUserResponse,
    ListAccessKeysRequest, ListAccessKeysResponse, ListUserTagsRequest, ListUserTagsResponse, ListUsersRequest,
    ListUsersResponse, TagUserRequest, UntagUserRequest, UpdateAccessKeyRequest, User,
};
use corral_store::{AccessKeyStatus, IamEntity, IamUser, StoreError};
use corral_wire::time::Timestamp;

use super::{page, tags_from_wire, tags_to_wire, user_or_caller, IamError, MAX_TAGS};
use crate::context::RequestContext;
use crate::ids;
use crate::state::AppState;

/// AWS's quota of access keys per user.
pub const MAX_ACCESS_KEYS_PER_USER: usize = 2;

/// AWS's `NoSuchEntity` for a user.
pub fn no_such_user(user_name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The user with name {user_name} cannot be found."))
}

/// The wire form of a stored user.
pub fn user_to_wire(user: &IamUser, tags: &[corral_store::Tag]) -> User {
    User {
        path: user.path.clone(),
        user_name: user.user_name.clone(),
        user_id: user.user_id.clone(),
        arn: user.arn.clone(),
        create_date: Timestamp(user.created_at),
        password_last_used: None,
        permissions_boundary: None,
        tags: tags_to_wire(tags),
    }
}

/// Loads a user or answers AWS's `NoSuchEntity`.
pub async fn require_user(state: &AppState, account_id: &str, user_name: &str) -> Result<IamUser, IamError> {
    state.store.get_user(account_id, user_name).await?.ok_or_else(|| no_such_user(user_name))
}

/// `CreateUser`.
pub async fn create_user(
    state: &AppState,
    ctx: &RequestContext,
    input: CreateUserRequest,
) -> Result<CreateUserResponse, IamError> {
    let tags = tags_from_wire(input.tags)?;
    let path = input.path.unwrap_or_else(|| "/".to_string());
    let user = IamUser {
        account_id: ctx.account_id().to_string(),
        user_name: input.user_name.clone(),
        user_id: ids::new_unique_id("AIDA"),
        arn: format!("arn:aws:iam::{}:user{}{}", ctx.account_id(), path, input.user_name),
        path,
        created_at: super::received_millis(ctx),
    };
    let mut sorted = tags.clone();
    sorted.sort();
    let output = CreateUserResponse { user: Some(user_to_wire(&user, &sorted)) };
    crate::audit::stage_output(&output);
    match state.store.create_user_with_tags(&user, &tags).await {
        Ok(()) => Ok(output),
        Err(StoreError::AlreadyExists) => {
            Err(IamError::EntityAlreadyExists(format!("User with name {} already exists.", input.user_name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GetUser`: without `UserName`, the calling user.
pub async fn get_user(
    state: &AppState,
    ctx: &RequestContext,
    input: GetUserRequest,
) -> Result<GetUserResponse, IamError> {
    let name = user_or_caller(ctx, input.user_name)?;
    let user = require_user(state, ctx.account_id(), &name).await?;
    let tags = match state.store.list_entity_tags(ctx.account_id(), IamEntity::User(&name)).await {
        Ok(tags) => tags,
        Err(StoreError::NotFound) => return Err(no_such_user(&name)),
        Err(e) => return Err(e.into()),
    };
    Ok(GetUserResponse { user: user_to_wire(&user, &tags) })
}

/// `ListUsers`: ordered by name; the marker is the last name returned.
pub async fn list_users(
    state: &AppState,
    ctx: &RequestContext,
    input: ListUsersRequest,
) -> Result<ListUsersResponse, IamError> {
    let prefix = input.path_prefix.unwrap_or_else(|| "/".to_string());
    let users: Vec<IamUser> =
        state.store.list_users(ctx.account_id()).await?.into_iter().filter(|u| u.path.starts_with(&prefix)).collect();
    let (users, truncated, marker) = page(users, |u| &u.user_name, input.marker.as_deref(), input.max_items);
    Ok(ListUsersResponse {
        users: users.iter().map(|u| user_to_wire(u, &[])).collect(),
        is_truncated: Some(truncated),
        marker,
    })
}

/// `DeleteUser`: refused while the user has access keys, policies or groups.
pub async fn delete_user(state: &AppState, ctx: &RequestContext, input: DeleteUserRequest) -> Result<(), IamError> {
    match state.store.delete_user(ctx.account_id(), &input.user_name).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_user(&input.user_name)),
        Err(StoreError::Conflict(reason)) => Err(IamError::DeleteConflict(delete_conflict_message(&reason))),
        Err(e) => Err(e.into()),
    }
}

/// AWS's `DeleteConflict` message for what still hangs off an entity.
pub fn delete_conflict_message(reason: &str) -> String {
    match reason {
        "access keys" => "Cannot delete entity, must delete access keys first.",
        "inline policies" => "Cannot delete entity, must delete policies first.",
        "attached policies" => "Cannot delete entity, must detach all policies first.",
        "groups" | "members" => "Cannot delete entity, must remove users from group first.",
        _ => "Cannot delete entity, it is still in use.",
    }
    .to_string()
}

// === tags ===

/// `TagUser`: at most 50 tags in all.
pub async fn tag_user(state: &AppState, ctx: &RequestContext, input: TagUserRequest) -> Result<(), IamError> {
    let tags = tags_from_wire(Some(input.tags))?;
    match state.store.tag_entity(ctx.account_id(), IamEntity::User(&input.user_name), &tags, MAX_TAGS).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_user(&input.user_name)),
        Err(StoreError::Conflict(_)) => Err(too_many_tags("user")),
        Err(e) => Err(e.into()),
    }
}

/// AWS's answer when an entity would carry more than 50 tags.
pub fn too_many_tags(kind: &str) -> IamError {
    IamError::LimitExceeded(format!(
        "The number of tags has reached the maximum limit. A {kind} can have at most {MAX_TAGS} tags."
    ))
}

/// `UntagUser`.
pub async fn untag_user(state: &AppState, ctx: &RequestContext, input: UntagUserRequest) -> Result<(), IamError> {
    match state.store.untag_entity(ctx.account_id(), IamEntity::User(&input.user_name), &input.tag_keys).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_user(&input.user_name)),
        Err(e) => Err(e.into()),
    }
}

/// `ListUserTags`: sorted by key; the marker is the last key returned.
pub async fn list_user_tags(
    state: &AppState,
    ctx: &RequestContext,
    input: ListUserTagsRequest,
) -> Result<ListUserTagsResponse, IamError> {
    let tags = match state.store.list_entity_tags(ctx.account_id(), IamEntity::User(&input.user_name)).await {
        Ok(tags) => tags,
        Err(StoreError::NotFound) => return Err(no_such_user(&input.user_name)),
        Err(e) => return Err(e.into()),
    };
    let (tags, truncated, marker) = page(tags, |t| &t.key, input.marker.as_deref(), input.max_items);
    Ok(ListUserTagsResponse { tags: tags_to_wire(&tags).unwrap_or_default(), is_truncated: Some(truncated), marker })
}

// === access keys ===

/// `CreateAccessKey`: for the named user or the caller; at most two per user.
pub async fn create_access_key(
    state: &AppState,
    ctx: &RequestContext,
    input: CreateAccessKeyRequest,
) -> Result<CreateAccessKeyResponse, IamError> {
    let user_name = user_or_caller(ctx, input.user_name)?;
    let key = corral_store::AccessKey {
        access_key_id: ids::new_long_term_access_key_id(),
        account_id: ctx.account_id().to_string(),
        user_name: user_name.clone(),
        secret_access_key: ids::new_secret_access_key(),
        status: AccessKeyStatus::Active,
        created_at: super::received_millis(ctx),
    };
    let output = CreateAccessKeyResponse {
        access_key: AccessKey {
            user_name: user_name.clone(),
            access_key_id: key.access_key_id.clone(),
            status: key.status.as_str().to_string(),
            secret_access_key: key.secret_access_key.clone(),
            create_date: Some(Timestamp(key.created_at)),
        },
    };
    // The record's copy has the secret hidden (audit::redact).
    crate::audit::stage_output(&output);
    match state.store.create_access_key_limited(&key, MAX_ACCESS_KEYS_PER_USER).await {
        Ok(()) => Ok(output),
        Err(StoreError::NotFound) => Err(no_such_user(&user_name)),
        Err(StoreError::Conflict(_)) => Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `ListAccessKeys`: the named user's or the caller's keys, never their secrets.
pub async fn list_access_keys(
    state: &AppState,
    ctx: &RequestContext,
    input: ListAccessKeysRequest,
) -> Result<ListAccessKeysResponse, IamError> {
    let user_name = user_or_caller(ctx, input.user_name)?;
    let keys = match state.store.list_access_keys(ctx.account_id(), &user_name).await {
        Ok(keys) => keys,
        Err(StoreError::NotFound) => return Err(no_such_user(&user_name)),
        Err(e) => return Err(e.into()),
    };
    let (keys, truncated, marker) = page(keys, |k| &k.access_key_id, input.marker.as_deref(), input.max_items);
    Ok(ListAccessKeysResponse {
        access_key_metadata: keys
            .into_iter()
            .map(|k| AccessKeyMetadata {
                user_name: Some(k.user_name),
                access_key_id: Some(k.access_key_id),
                status: Some(k.status.as_str().to_string()),
                create_date: Some(Timestamp(k.created_at)),
            })
            .collect(),
        is_truncated: Some(truncated),
        marker,
    })
}

fn no_such_key(access_key_id: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Access Key with id {access_key_id} cannot be found."))
}

/// `UpdateAccessKey`: `Active` or `Inactive` (the model's enum also allows `Expired`, which
/// IAM does not accept here).
pub async fn update_access_key(
    state: &AppState,
    ctx: &RequestContext,
    input: UpdateAccessKeyRequest,
) -> Result<(), IamError> {
    let status = match input.status.as_str() {
        "Active" => AccessKeyStatus::Active,
        "Inactive" => AccessKeyStatus::Inactive,
        other => return Err(IamError::Validation(format!("Invalid status {other}: must be Active or Inactive"))),
    };
    let user_name = user_or_caller(ctx, input.user_name)?;
    require_user(state, ctx.account_id(), &user_name).await?;
    match state.store.update_access_key_status(ctx.account_id(), &user_name, &input.access_key_id, status).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_key(&input.access_key_id)),
        Err(e) => Err(e.into()),
    }
}

/// `DeleteAccessKey`: the key stops authenticating at once.
pub async fn delete_access_key(
    state: &AppState,
    ctx: &RequestContext,
    input: DeleteAccessKeyRequest,
) -> Result<(), IamError> {
    let user_name = user_or_caller(ctx, input.user_name)?;
    require_user(state, ctx.account_id(), &user_name).await?;
    match state.store.delete_access_key(ctx.account_id(), &user_name, &input.access_key_id).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_key(&input.access_key_id)),
        Err(e) => Err(e.into()),
    }
}
