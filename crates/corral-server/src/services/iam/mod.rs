//! AWS Identity and Access Management (Query protocol): users and their access keys, groups,
//! roles, customer managed policies with their versions, the AWS managed policies Corral
//! ships, managed-policy attachments and inline policies.
//!
//! Every policy document written is checked with `corral_iam::policy::parse` after AWS's size
//! quota (characters excluding whitespace), so an oversized document is refused before it is
//! parsed; every write is one store transaction.

pub mod groups;
pub mod inline;
pub mod managed;
pub mod policies;
pub mod roles;
pub mod users;

use std::collections::BTreeMap;

use corral_api::iam::Operation;
use corral_api::query_codec;
use corral_api::InputError;

use crate::context::RequestContext;
use crate::edge::error::WireError;
use crate::state::AppState;

/// Every way an IAM operation can fail, each mapped once to its AWS error code.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// Input that breaks a model constraint.
    #[error("{0}")]
    Validation(String),
    /// Parameters that cannot be read.
    #[error("{0}")]
    MalformedInput(String),
    /// A named entity (role, policy, attachment) does not exist.
    #[error("{0}")]
    NoSuchEntity(String),
    /// An entity with that name exists already.
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// The entity is still in use (a role with attached policies).
    #[error("{0}")]
    DeleteConflict(String),
    /// A policy document that does not parse or lacks required parts.
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// A parameter value IAM refuses (an invalid marker, say).
    #[error("{0}")]
    InvalidInput(String),
    /// An AWS quota would be exceeded (keys per user, policy size, versions, attachments, tags).
    #[error("{0}")]
    LimitExceeded(String),
    /// A failure inside Corral; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IamError {
    /// The wire form of this error (statuses as botocore's IAM model declares them).
    pub fn to_wire(&self) -> WireError {
        match self {
            IamError::Validation(m) => WireError::client(400, "ValidationError", m.clone()),
            IamError::MalformedInput(m) => WireError::client(400, "MalformedInput", m.clone()),
            IamError::NoSuchEntity(m) => WireError::client(404, "NoSuchEntity", m.clone()),
            IamError::EntityAlreadyExists(m) => WireError::client(409, "EntityAlreadyExists", m.clone()),
            IamError::DeleteConflict(m) => WireError::client(409, "DeleteConflict", m.clone()),
            IamError::MalformedPolicyDocument(m) => WireError::client(400, "MalformedPolicyDocument", m.clone()),
            IamError::InvalidInput(m) => WireError::client(400, "InvalidInput", m.clone()),
            IamError::LimitExceeded(m) => WireError::client(409, "LimitExceeded", m.clone()),
            IamError::Internal(detail) => {
                tracing::error!(%detail, "internal error in an IAM operation");
                WireError::server("ServiceFailure")
            }
        }
    }
}

impl From<InputError> for IamError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Validation(v) => IamError::Validation(v.to_string()),
            InputError::Serialization(m) => IamError::MalformedInput(m),
        }
    }
}

impl From<corral_store::StoreError> for IamError {
    fn from(e: corral_store::StoreError) -> Self {
        IamError::Internal(e.to_string())
    }
}

/// Decodes the parameters, runs the handler and encodes the inner XML of its `<...Result>`
/// (and its JSON form, for the audit record).
pub async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    op: Operation,
    params: &BTreeMap<String, String>,
) -> Result<crate::services::QueryOutput, WireError> {
    macro_rules! serve {
        ($handler:path) => {{
            let input = query_codec::decode_input(op.input_shape(), params).map_err(|e| IamError::from(e).to_wire())?;
            let output = $handler(state, ctx, input).await.map_err(|e| e.to_wire())?;
            Ok(crate::services::QueryOutput {
                xml: op.output_shape().map(|shape| query_codec::encode_output(shape, &output)),
                json: serde_json::to_value(&output).unwrap_or(serde_json::Value::Null),
            })
        }};
    }
    match op {
        // Users, access keys and user tags.
        Operation::CreateUser => serve!(users::create_user),
        Operation::GetUser => serve!(users::get_user),
        Operation::ListUsers => serve!(users::list_users),
        Operation::DeleteUser => serve!(users::delete_user),
        Operation::TagUser => serve!(users::tag_user),
        Operation::UntagUser => serve!(users::untag_user),
        Operation::ListUserTags => serve!(users::list_user_tags),
        Operation::CreateAccessKey => serve!(users::create_access_key),
        Operation::ListAccessKeys => serve!(users::list_access_keys),
        Operation::UpdateAccessKey => serve!(users::update_access_key),
        Operation::DeleteAccessKey => serve!(users::delete_access_key),
        // Groups.
        Operation::CreateGroup => serve!(groups::create_group),
        Operation::GetGroup => serve!(groups::get_group),
        Operation::ListGroups => serve!(groups::list_groups),
        Operation::DeleteGroup => serve!(groups::delete_group),
        Operation::AddUserToGroup => serve!(groups::add_user_to_group),
        Operation::RemoveUserFromGroup => serve!(groups::remove_user_from_group),
        Operation::ListGroupsForUser => serve!(groups::list_groups_for_user),
        // Roles.
        Operation::CreateRole => serve!(roles::create_role),
        Operation::GetRole => serve!(roles::get_role),
        Operation::DeleteRole => serve!(roles::delete_role),
        Operation::ListRoles => serve!(roles::list_roles),
        Operation::TagRole => serve!(roles::tag_role),
        Operation::UntagRole => serve!(roles::untag_role),
        Operation::ListRoleTags => serve!(roles::list_role_tags),
        Operation::UpdateAssumeRolePolicy => serve!(roles::update_assume_role_policy),
        // Managed policies and their versions.
        Operation::CreatePolicy => serve!(policies::create_policy),
        Operation::GetPolicy => serve!(policies::get_policy),
        Operation::ListPolicies => serve!(policies::list_policies),
        Operation::DeletePolicy => serve!(policies::delete_policy),
        Operation::CreatePolicyVersion => serve!(policies::create_policy_version),
        Operation::GetPolicyVersion => serve!(policies::get_policy_version),
        Operation::ListPolicyVersions => serve!(policies::list_policy_versions),
        Operation::DeletePolicyVersion => serve!(policies::delete_policy_version),
        // Managed-policy attachments.
        Operation::AttachUserPolicy => serve!(policies::attach_user_policy),
        Operation::DetachUserPolicy => serve!(policies::detach_user_policy),
        Operation::ListAttachedUserPolicies => serve!(policies::list_attached_user_policies),
        Operation::AttachGroupPolicy => serve!(policies::attach_group_policy),
        Operation::DetachGroupPolicy => serve!(policies::detach_group_policy),
        Operation::ListAttachedGroupPolicies => serve!(policies::list_attached_group_policies),
        Operation::AttachRolePolicy => serve!(roles::attach_role_policy),
        Operation::DetachRolePolicy => serve!(roles::detach_role_policy),
        Operation::ListAttachedRolePolicies => serve!(roles::list_attached_role_policies),
        // Inline policies.
        Operation::PutUserPolicy => serve!(inline::put_user_policy),
        Operation::GetUserPolicy => serve!(inline::get_user_policy),
        Operation::ListUserPolicies => serve!(inline::list_user_policies),
        Operation::DeleteUserPolicy => serve!(inline::delete_user_policy),
        Operation::PutGroupPolicy => serve!(inline::put_group_policy),
        Operation::GetGroupPolicy => serve!(inline::get_group_policy),
        Operation::ListGroupPolicies => serve!(inline::list_group_policies),
        Operation::DeleteGroupPolicy => serve!(inline::delete_group_policy),
        Operation::PutRolePolicy => serve!(inline::put_role_policy),
        Operation::GetRolePolicy => serve!(inline::get_role_policy),
        Operation::ListRolePolicies => serve!(inline::list_role_policies),
        Operation::DeleteRolePolicy => serve!(inline::delete_role_policy),
    }
}

// === helpers shared by the handlers ===

/// IAM's default page size for list calls.
pub const DEFAULT_MAX_ITEMS: usize = 100;

/// One page of `items` (sorted by `key`): those after `marker`, at most `max_items` (default
/// 100), whether more follow, and the marker for the next page (the last key returned).
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
    marker: Option<&str>,
    max_items: Option<i32>,
) -> (Vec<T>, bool, Option<String>) {
    let max = max_items.and_then(|m| usize::try_from(m).ok()).unwrap_or(DEFAULT_MAX_ITEMS);
    let mut rest: Vec<T> = items.into_iter().filter(|t| marker.is_none_or(|m| key(t) > m)).collect();
    let truncated = rest.len() > max;
    rest.truncate(max);
    let next = if truncated { rest.last().map(|t| key(t).to_string()) } else { None };
    (rest, truncated, next)
}

/// The user a call is about: the named one, or else the calling user. A role session must
/// name one (AWS's message).
pub fn user_or_caller(ctx: &RequestContext, user_name: Option<String>) -> Result<String, IamError> {
    use crate::context::PrincipalKind;
    match (user_name, &ctx.principal.kind) {
        (Some(name), _) => Ok(name),
        (None, PrincipalKind::User { user_name } | PrincipalKind::UserSession { user_name }) => Ok(user_name.clone()),
        (None, PrincipalKind::AssumedRole { .. }) => {
            Err(IamError::Validation("Must specify userName when calling with non-User credentials".to_string()))
        }
    }
}

/// Checks an identity policy document as AWS does on write: the size quota first (characters
/// excluding whitespace; `quota` names it in the message), then the policy grammar.
pub fn check_identity_document(document: &str, max_size: usize, quota: &str) -> Result<(), IamError> {
    if corral_store::policy_size(document) > max_size {
        return Err(IamError::LimitExceeded(format!("Cannot exceed quota for {quota}: {max_size}")));
    }
    corral_iam::policy::parse(document, corral_iam::policy::PolicyKind::Identity)
        .map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
    Ok(())
}

/// Wire tags from store tags (`None` when empty, as AWS omits the element).
pub fn tags_to_wire(tags: &[corral_store::Tag]) -> Option<Vec<corral_api::iam::Tag>> {
    (!tags.is_empty())
        .then(|| tags.iter().map(|t| corral_api::iam::Tag { key: t.key.clone(), value: t.value.clone() }).collect())
}

/// Store tags from wire tags; a key given twice is refused as AWS does.
pub fn tags_from_wire(tags: Option<Vec<corral_api::iam::Tag>>) -> Result<Vec<corral_store::Tag>, IamError> {
    let tags: Vec<corral_store::Tag> =
        tags.unwrap_or_default().into_iter().map(|t| corral_store::Tag { key: t.key, value: t.value }).collect();
    let mut keys = std::collections::BTreeSet::new();
    for t in &tags {
        if !keys.insert(t.key.as_str()) {
            return Err(IamError::InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.".to_string(),
            ));
        }
    }
    Ok(tags)
}

/// The most tags a user, role or policy may carry.
pub const MAX_TAGS: usize = 50;

/// When the request was received, truncated to the millisecond as the store keeps times, so a
/// create call answers with the date later reads return.
pub fn received_millis(ctx: &RequestContext) -> time::OffsetDateTime {
    corral_wire::time::truncate_to_millis(ctx.received_at)
}
