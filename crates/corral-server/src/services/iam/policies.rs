//! Managed policies: the customer managed ones (stored, with up to five versions each) and
//! the AWS managed ones Corral ships (`managed.rs`, read-only), and their attachment to users,
//! groups and roles (at most ten per entity, AWS's default quota).

use corral_api::iam::{
    AttachGroupPolicyRequest, AttachUserPolicyRequest, AttachedPolicy, CreatePolicyRequest, CreatePolicyResponse,
    CreatePolicyVersionRequest, CreatePolicyVersionResponse, DeletePolicyRequest, DeletePolicyVersionRequest,
    DetachGroupPolicyRequest, DetachUserPolicyRequest, GetPolicyRequest, GetPolicyResponse, GetPolicyVersionRequest,
    GetPolicyVersionResponse, ListAttachedGroupPoliciesRequest, ListAttachedGroupPoliciesResponse,
    ListAttachedUserPoliciesRequest, ListAttachedUserPoliciesResponse, ListPoliciesRequest, ListPoliciesResponse,
    ListPolicyVersionsRequest, ListPolicyVersionsResponse, Policy, PolicyVersion,
};
use corral_store::{IamEntity, ManagedPolicy, ManagedPolicyVersion, StoreError};
use corral_wire::time::Timestamp;

use super::managed::{self, AwsManagedPolicy};
use super::{check_identity_document, page, received_millis, tags_from_wire, tags_to_wire, IamError};
use crate::context::RequestContext;
use crate::ids;
use crate::state::AppState;

/// AWS's size quota for a managed policy document (characters excluding whitespace).
pub const MAX_MANAGED_POLICY_SIZE: usize = 6144;
/// AWS's quota of versions per managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;
/// AWS's default quota of managed policies attached to one user, group or role.
pub const MAX_ATTACHED_POLICIES: usize = 10;

/// AWS managed policies predate every account; a fixed date keeps answers stable.
fn aws_managed_date() -> Option<Timestamp> {
    Timestamp::parse_iso8601("2019-03-15T00:00:00Z")
}

fn no_such_policy(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
}

/// AWS's `NoSuchEntity` for a missing user, group or role.
pub fn no_such_entity(entity: IamEntity<'_>) -> IamError {
    match entity {
        IamEntity::User(n) => super::users::no_such_user(n),
        IamEntity::Group(n) => super::groups::no_such_group(n),
        IamEntity::Role(n) => IamError::NoSuchEntity(format!("The role with name {n} cannot be found.")),
    }
}

/// The path of a policy ARN (`arn:aws:iam::aws:policy/service-role/X` → `/service-role/`).
pub fn policy_path(arn: &str) -> String {
    let resource = arn.split_once(":policy").map(|(_, r)| r).unwrap_or("/");
    match resource.rfind('/') {
        Some(i) => resource[..=i].to_string(),
        None => "/".to_string(),
    }
}

fn aws_policy_to_wire(p: &AwsManagedPolicy, attachment_count: u64, with_description: bool) -> Policy {
    Policy {
        policy_name: Some(p.name.to_string()),
        policy_id: Some(p.policy_id.to_string()),
        arn: Some(p.arn()),
        path: Some("/".to_string()),
        default_version_id: Some(p.default_version_id.to_string()),
        attachment_count: Some(i32::try_from(attachment_count).unwrap_or(i32::MAX)),
        permissions_boundary_usage_count: Some(0),
        is_attachable: Some(true),
        description: with_description.then(|| p.description.to_string()),
        create_date: aws_managed_date(),
        update_date: aws_managed_date(),
        tags: None,
    }
}

fn policy_to_wire(p: &ManagedPolicy, with_details: bool) -> Policy {
    Policy {
        policy_name: Some(p.policy_name.clone()),
        policy_id: Some(p.policy_id.clone()),
        arn: Some(p.arn.clone()),
        path: Some(p.path.clone()),
        default_version_id: Some(p.default_version_id.clone()),
        attachment_count: Some(i32::try_from(p.attachment_count).unwrap_or(i32::MAX)),
        permissions_boundary_usage_count: Some(0),
        is_attachable: Some(true),
        description: if with_details { p.description.clone() } else { None },
        create_date: Some(Timestamp(p.created_at)),
        update_date: Some(Timestamp(p.updated_at)),
        tags: if with_details { tags_to_wire(&p.tags) } else { None },
    }
}

fn version_to_wire(v: &ManagedPolicyVersion, with_document: bool) -> PolicyVersion {
    PolicyVersion {
        document: with_document.then(|| v.document.clone()),
        version_id: Some(v.version_id.clone()),
        is_default_version: Some(v.is_default),
        create_date: Some(Timestamp(v.created_at)),
    }
}

/// The one version of an AWS managed policy Corral ships (its default).
fn aws_version(p: &AwsManagedPolicy) -> ManagedPolicyVersion {
    ManagedPolicyVersion {
        version_id: p.default_version_id.to_string(),
        document: p.document.to_string(),
        is_default: true,
        created_at: aws_managed_date().map(|t| t.0).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    }
}

/// How many entities of the account an AWS managed policy is attached to.
async fn aws_attachment_count(state: &AppState, account_id: &str, arn: &str) -> Result<u64, IamError> {
    let counts = state.store.policy_attachment_counts(account_id).await?;
    Ok(counts.iter().find(|(a, _)| a == arn).map(|(_, n)| *n).unwrap_or(0))
}

/// Fails with `NoSuchEntity` unless `arn` names an AWS managed policy or a customer managed
/// policy of the account.
pub async fn require_attachable(state: &AppState, account_id: &str, arn: &str) -> Result<(), IamError> {
    if managed::find_by_arn(arn).is_some() || state.store.get_policy(account_id, arn).await?.is_some() {
        Ok(())
    } else {
        Err(no_such_policy(arn))
    }
}

// === customer managed policies ===

/// `CreatePolicy`: version `v1`, the default.
pub async fn create_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: CreatePolicyRequest,
) -> Result<CreatePolicyResponse, IamError> {
    check_identity_document(&input.policy_document, MAX_MANAGED_POLICY_SIZE, "PolicySize")?;
    let path = input.path.unwrap_or_else(|| "/".to_string());
    let now = received_millis(ctx);
    let tags = tags_from_wire(input.tags)?;
    let policy = ManagedPolicy {
        account_id: ctx.account_id().to_string(),
        policy_name: input.policy_name.clone(),
        policy_id: ids::new_unique_id("ANPA"),
        arn: format!("arn:aws:iam::{}:policy{}{}", ctx.account_id(), path, input.policy_name),
        path,
        description: input.description,
        default_version_id: "v1".to_string(),
        created_at: now,
        updated_at: now,
        tags: tags.clone(),
        attachment_count: 0,
    };
    let output = {
        let mut tags = tags.clone();
        tags.sort();
        let shown = ManagedPolicy { tags, ..policy.clone() };
        CreatePolicyResponse { policy: Some(policy_to_wire(&shown, true)) }
    };
    crate::audit::stage_output(&output);
    match state.store.create_policy(&policy, &input.policy_document).await {
        Ok(()) => Ok(output),
        Err(StoreError::AlreadyExists) => Err(IamError::EntityAlreadyExists(format!(
            "A policy called {} already exists. Duplicate names are not allowed.",
            input.policy_name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `GetPolicy`: customer managed policies of the account, and the AWS managed ones.
pub async fn get_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: GetPolicyRequest,
) -> Result<GetPolicyResponse, IamError> {
    if let Some(p) = managed::find_by_arn(&input.policy_arn) {
        let count = aws_attachment_count(state, ctx.account_id(), &input.policy_arn).await?;
        return Ok(GetPolicyResponse { policy: Some(aws_policy_to_wire(p, count, true)) });
    }
    let policy = state.store.get_policy(ctx.account_id(), &input.policy_arn).await?;
    let policy = policy.ok_or_else(|| no_such_policy(&input.policy_arn))?;
    Ok(GetPolicyResponse { policy: Some(policy_to_wire(&policy, true)) })
}

/// `ListPolicies`: `Scope` All (default), AWS or Local; `OnlyAttached`; `PathPrefix`. Ordered
/// by ARN; the marker is the last ARN returned.
pub async fn list_policies(
    state: &AppState,
    ctx: &RequestContext,
    input: ListPoliciesRequest,
) -> Result<ListPoliciesResponse, IamError> {
    let scope = input.scope.as_deref().unwrap_or("All");
    let only_attached = input.only_attached.unwrap_or(false);
    let prefix = input.path_prefix.unwrap_or_else(|| "/".to_string());
    // Permissions boundaries are not supported, so nothing is in use as one.
    if input.policy_usage_filter.as_deref() == Some("PermissionsBoundary") {
        return Ok(ListPoliciesResponse { policies: Some(Vec::new()), is_truncated: Some(false), marker: None });
    }
    let mut policies: Vec<Policy> = Vec::new();
    if scope != "AWS" {
        policies.extend(state.store.list_policies(ctx.account_id()).await?.iter().map(|p| policy_to_wire(p, false)));
    }
    if scope != "Local" {
        let counts = state.store.policy_attachment_counts(ctx.account_id()).await?;
        policies.extend(managed::AWS_MANAGED_POLICIES.iter().map(|p| {
            let arn = p.arn();
            let count = counts.iter().find(|(a, _)| *a == arn).map(|(_, n)| *n).unwrap_or(0);
            aws_policy_to_wire(p, count, false)
        }));
    }
    policies.retain(|p| {
        p.path.as_deref().unwrap_or("/").starts_with(&prefix) && (!only_attached || p.attachment_count.unwrap_or(0) > 0)
    });
    policies.sort_by(|a, b| a.arn.cmp(&b.arn));
    let (policies, truncated, marker) =
        page(policies, |p| p.arn.as_deref().unwrap_or(""), input.marker.as_deref(), input.max_items);
    Ok(ListPoliciesResponse { policies: Some(policies), is_truncated: Some(truncated), marker })
}

fn aws_managed_is_read_only(arn: &str) -> IamError {
    IamError::InvalidInput(format!("Policy {arn} is an AWS managed policy and cannot be modified."))
}

/// `DeletePolicy`: refused while attached to any user, group or role.
pub async fn delete_policy(state: &AppState, ctx: &RequestContext, input: DeletePolicyRequest) -> Result<(), IamError> {
    if managed::find_by_arn(&input.policy_arn).is_some() {
        return Err(aws_managed_is_read_only(&input.policy_arn));
    }
    match state.store.delete_policy(ctx.account_id(), &input.policy_arn).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(no_such_policy(&input.policy_arn)),
        Err(StoreError::Conflict(_)) => {
            Err(IamError::DeleteConflict("Cannot delete a policy attached to entities.".to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// `CreatePolicyVersion`: at most five versions; `SetAsDefault` makes it the one in force.
pub async fn create_policy_version(
    state: &AppState,
    ctx: &RequestContext,
    input: CreatePolicyVersionRequest,
) -> Result<CreatePolicyVersionResponse, IamError> {
    if managed::find_by_arn(&input.policy_arn).is_some() {
        return Err(aws_managed_is_read_only(&input.policy_arn));
    }
    check_identity_document(&input.policy_document, MAX_MANAGED_POLICY_SIZE, "PolicySize")?;
    let created = state
        .store
        .create_policy_version(
            ctx.account_id(),
            &input.policy_arn,
            &input.policy_document,
            input.set_as_default.unwrap_or(false),
            received_millis(ctx),
            MAX_POLICY_VERSIONS,
        )
        .await;
    match created {
        Ok(v) => Ok(CreatePolicyVersionResponse { policy_version: Some(version_to_wire(&v, false)) }),
        Err(StoreError::NotFound) => Err(no_such_policy(&input.policy_arn)),
        Err(StoreError::Conflict(_)) => Err(IamError::LimitExceeded(format!(
            "A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you create a new version, you \
             must delete an existing version."
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `GetPolicyVersion`: the document is URL-encoded on the wire by the codec.
pub async fn get_policy_version(
    state: &AppState,
    ctx: &RequestContext,
    input: GetPolicyVersionRequest,
) -> Result<GetPolicyVersionResponse, IamError> {
    let not_found = || {
        IamError::NoSuchEntity(format!(
            "Policy {} version {} does not exist or is not attachable.",
            input.policy_arn, input.version_id
        ))
    };
    let version = match managed::find_by_arn(&input.policy_arn) {
        Some(p) => Some(aws_version(p)).filter(|v| v.version_id == input.version_id),
        None => state.store.get_policy_version(ctx.account_id(), &input.policy_arn, &input.version_id).await?,
    };
    let version = version.ok_or_else(not_found)?;
    Ok(GetPolicyVersionResponse { policy_version: Some(version_to_wire(&version, true)) })
}

/// `ListPolicyVersions`: newest first, without documents (as AWS lists them).
pub async fn list_policy_versions(
    state: &AppState,
    ctx: &RequestContext,
    input: ListPolicyVersionsRequest,
) -> Result<ListPolicyVersionsResponse, IamError> {
    let versions = match managed::find_by_arn(&input.policy_arn) {
        Some(p) => vec![aws_version(p)],
        None => match state.store.list_policy_versions(ctx.account_id(), &input.policy_arn).await {
            Ok(v) => v,
            Err(StoreError::NotFound) => return Err(no_such_policy(&input.policy_arn)),
            Err(e) => return Err(e.into()),
        },
    };
    // Newest first is not key order, so the marker is the position after this page.
    let start: usize = input.marker.as_deref().and_then(|m| m.parse().ok()).unwrap_or(0);
    let max = input.max_items.and_then(|m| usize::try_from(m).ok()).unwrap_or(super::DEFAULT_MAX_ITEMS);
    let rest: Vec<&ManagedPolicyVersion> = versions.iter().skip(start).collect();
    let truncated = rest.len() > max;
    Ok(ListPolicyVersionsResponse {
        versions: Some(rest.iter().take(max).map(|v| version_to_wire(v, false)).collect()),
        is_truncated: Some(truncated),
        marker: truncated.then(|| (start + max).to_string()),
    })
}

/// `DeletePolicyVersion`: not the default version.
pub async fn delete_policy_version(
    state: &AppState,
    ctx: &RequestContext,
    input: DeletePolicyVersionRequest,
) -> Result<(), IamError> {
    if managed::find_by_arn(&input.policy_arn).is_some() {
        return Err(aws_managed_is_read_only(&input.policy_arn));
    }
    match state.store.delete_policy_version(ctx.account_id(), &input.policy_arn, &input.version_id).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(IamError::NoSuchEntity(format!(
            "Policy {} version {} does not exist or is not attachable.",
            input.policy_arn, input.version_id
        ))),
        Err(StoreError::Conflict(_)) => {
            Err(IamError::DeleteConflict("Cannot delete the default version of a policy.".to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

// === attachments (users, groups and roles) ===

/// Attaches an AWS or customer managed policy to a user, group or role.
pub async fn attach(state: &AppState, ctx: &RequestContext, entity: IamEntity<'_>, arn: &str) -> Result<(), IamError> {
    require_attachable(state, ctx.account_id(), arn).await?;
    match state.store.attach_policy(ctx.account_id(), entity, arn, MAX_ATTACHED_POLICIES).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => {
            // The entity is missing, or the policy was deleted in between.
            require_attachable(state, ctx.account_id(), arn).await?;
            Err(no_such_entity(entity))
        }
        Err(StoreError::Conflict(_)) => {
            let quota = match entity {
                IamEntity::User(_) => "PoliciesPerUser",
                IamEntity::Group(_) => "PoliciesPerGroup",
                IamEntity::Role(_) => "PoliciesPerRole",
            };
            Err(IamError::LimitExceeded(format!("Cannot exceed quota for {quota}: {MAX_ATTACHED_POLICIES}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Detaches a managed policy from a user, group or role.
pub async fn detach(state: &AppState, ctx: &RequestContext, entity: IamEntity<'_>, arn: &str) -> Result<(), IamError> {
    // Tell "no such entity" from "not attached", as AWS does.
    attached_arns(state, ctx, entity).await?;
    match state.store.detach_policy(ctx.account_id(), entity, arn).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(IamError::NoSuchEntity(format!("Policy {arn} was not found."))),
        Err(e) => Err(e.into()),
    }
}

async fn attached_arns(state: &AppState, ctx: &RequestContext, entity: IamEntity<'_>) -> Result<Vec<String>, IamError> {
    match state.store.list_attached_policies(ctx.account_id(), entity).await {
        Ok(arns) => Ok(arns),
        Err(StoreError::NotFound) => Err(no_such_entity(entity)),
        Err(e) => Err(e.into()),
    }
}

/// The policies attached to a user, group or role under `path_prefix`, one page of them.
pub async fn list_attached(
    state: &AppState,
    ctx: &RequestContext,
    entity: IamEntity<'_>,
    path_prefix: Option<String>,
    marker: Option<String>,
    max_items: Option<i32>,
) -> Result<(Vec<AttachedPolicy>, bool, Option<String>), IamError> {
    let prefix = path_prefix.unwrap_or_else(|| "/".to_string());
    let arns: Vec<String> =
        attached_arns(state, ctx, entity).await?.into_iter().filter(|a| policy_path(a).starts_with(&prefix)).collect();
    let (arns, truncated, marker) = page(arns, |a| a, marker.as_deref(), max_items);
    let attached = arns
        .into_iter()
        .map(|arn| AttachedPolicy { policy_name: arn.rsplit('/').next().map(str::to_string), policy_arn: Some(arn) })
        .collect();
    Ok((attached, truncated, marker))
}

/// `AttachUserPolicy`.
pub async fn attach_user_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: AttachUserPolicyRequest,
) -> Result<(), IamError> {
    attach(state, ctx, IamEntity::User(&input.user_name), &input.policy_arn).await
}

/// `DetachUserPolicy`.
pub async fn detach_user_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: DetachUserPolicyRequest,
) -> Result<(), IamError> {
    detach(state, ctx, IamEntity::User(&input.user_name), &input.policy_arn).await
}

/// `ListAttachedUserPolicies`.
pub async fn list_attached_user_policies(
    state: &AppState,
    ctx: &RequestContext,
    input: ListAttachedUserPoliciesRequest,
) -> Result<ListAttachedUserPoliciesResponse, IamError> {
    let entity = IamEntity::User(&input.user_name);
    let (attached, truncated, marker) =
        list_attached(state, ctx, entity, input.path_prefix, input.marker, input.max_items).await?;
    Ok(ListAttachedUserPoliciesResponse { attached_policies: Some(attached), is_truncated: Some(truncated), marker })
}

/// `AttachGroupPolicy`.
pub async fn attach_group_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: AttachGroupPolicyRequest,
) -> Result<(), IamError> {
    attach(state, ctx, IamEntity::Group(&input.group_name), &input.policy_arn).await
}

/// `DetachGroupPolicy`.
pub async fn detach_group_policy(
    state: &AppState,
    ctx: &RequestContext,
    input: DetachGroupPolicyRequest,
) -> Result<(), IamError> {
    detach(state, ctx, IamEntity::Group(&input.group_name), &input.policy_arn).await
}

/// `ListAttachedGroupPolicies`.
pub async fn list_attached_group_policies(
    state: &AppState,
    ctx: &RequestContext,
    input: ListAttachedGroupPoliciesRequest,
) -> Result<ListAttachedGroupPoliciesResponse, IamError> {
    let entity = IamEntity::Group(&input.group_name);
    let (attached, truncated, marker) =
        list_attached(state, ctx, entity, input.path_prefix, input.marker, input.max_items).await?;
    Ok(ListAttachedGroupPoliciesResponse { attached_policies: Some(attached), is_truncated: Some(truncated), marker })
}
