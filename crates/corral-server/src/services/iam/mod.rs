//! AWS Identity and Access Management (Query protocol). Roles and the AWS managed policies
//! today; users, groups, customer managed policies and enforcement arrive with the
//! access-control issue.

pub mod managed;
pub mod roles;

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

/// Decodes the parameters, runs the handler and encodes the inner XML of its `<...Result>`.
pub async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    op: Operation,
    params: &BTreeMap<String, String>,
) -> Result<Option<String>, WireError> {
    macro_rules! serve {
        ($handler:path) => {{
            let input = query_codec::decode_input(op.input_shape(), params).map_err(|e| IamError::from(e).to_wire())?;
            let output = $handler(state, ctx, input).await.map_err(|e| e.to_wire())?;
            Ok(op.output_shape().map(|shape| query_codec::encode_output(shape, &output)))
        }};
    }
    match op {
        Operation::CreateRole => serve!(roles::create_role),
        Operation::GetRole => serve!(roles::get_role),
        Operation::DeleteRole => serve!(roles::delete_role),
        Operation::ListRoles => serve!(roles::list_roles),
        Operation::AttachRolePolicy => serve!(roles::attach_role_policy),
        Operation::DetachRolePolicy => serve!(roles::detach_role_policy),
        Operation::ListAttachedRolePolicies => serve!(roles::list_attached_role_policies),
        Operation::GetPolicy => serve!(roles::get_policy),
        // Generated for the access-control issue; served as their handlers land.
        other => Err(crate::edge::error::EdgeError::UnknownAction {
            action: other.name().to_string(),
            version: corral_api::iam::SERVICE.api_version.to_string(),
        }
        .to_wire(corral_api::model::Protocol::Query)),
    }
}
