//! AWS Systems Manager (AWS JSON 1.1, `X-Amz-Target: AmazonSSM.<Operation>`).
//!
//! One module per operation area: `settings` (service settings and the instance tier),
//! `activations`, `instances` (managed instances and their tags), `documents` (SSM documents,
//! their content and the AWS-owned ones), `commands` (Run Command: SendCommand and its reads,
//! status roll-up) and `gateway` (the calls the agent makes:
//! registration, role credentials, key rotation, health pings).

pub mod activations;
pub mod commands;
pub mod documents;
pub mod gateway;
pub mod instances;
pub mod settings;

use corral_api::json_codec;
use corral_api::ssm::Operation;
use corral_api::InputError;

use crate::context::{AnonymousContext, InstanceContext, RequestContext};
use crate::edge::error::WireError;
use crate::edge::AuthMode;
use crate::state::AppState;

/// Every way an SSM operation can fail, each mapped once to its AWS error code.
#[derive(Debug, thiserror::Error)]
pub enum SsmError {
    /// Input that breaks a model constraint, or a value SSM refuses (a role that does not
    /// exist, an expiry too far ahead).
    #[error("{0}")]
    Validation(String),
    /// A body that is not JSON, or a member of the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// `SettingId` names no service setting Corral knows.
    #[error("{0}")]
    ServiceSettingNotFound(String),
    /// Registration with an unknown or deleted activation, or a code that does not match.
    #[error("{0}")]
    InvalidActivation(String),
    /// An activation ID that names no activation of the account.
    #[error("{0}")]
    InvalidActivationId(String),
    /// Registration with an activation past its expiration date.
    #[error("{0}")]
    ActivationExpired(String),
    /// The activation's registration limit, or the standard tier's instance limit, is reached.
    #[error("{0}")]
    RegistrationLimitExceeded(String),
    /// A public key that is not a usable RSA key.
    #[error("{0}")]
    InvalidPublicKey(String),
    /// The new public key is the one already registered.
    #[error("{0}")]
    PublicKeyAlreadyRegistered(String),
    /// An instance ID that names no managed instance of the account.
    #[error("{0}")]
    InvalidInstanceId(String),
    /// The fingerprint sent with a role-token request differs from the registered one.
    #[error("{0}")]
    MachineFingerprintDoesNotMatch(String),
    /// A filter key SSM does not know.
    #[error("{0}")]
    InvalidFilterKey(String),
    /// A `DescribeActivations` filter that cannot be applied.
    #[error("{0}")]
    InvalidFilter(String),
    /// A filter value outside the values its key accepts.
    #[error("{0}")]
    InvalidInstanceInformationFilterValue(String),
    /// A `NextToken` Corral did not issue.
    #[error("{0}")]
    InvalidNextToken(String),
    /// A resource type that cannot be tagged here.
    #[error("{0}")]
    InvalidResourceType(String),
    /// A resource ID that names nothing taggable of the account.
    #[error("{0}")]
    InvalidResourceId(String),
    /// More than 50 tags on one resource.
    #[error("{0}")]
    TooManyTagsError(String),
    /// A document name (or ARN) that names no document the caller can see.
    #[error("{0}")]
    InvalidDocument(String),
    /// Document content that does not parse or breaks the document schema.
    #[error("{0}")]
    InvalidDocumentContent(String),
    /// A `schemaVersion` the document type does not support.
    #[error("{0}")]
    InvalidDocumentSchemaVersion(String),
    /// `CreateDocument` with a name the account already uses in the region.
    #[error("{0}")]
    DocumentAlreadyExists(String),
    /// A document version (or version name) the document does not have, or not the latest.
    #[error("{0}")]
    InvalidDocumentVersion(String),
    /// `UpdateDocument` with the content of an existing version.
    #[error("{0}")]
    DuplicateDocumentContent(String),
    /// `UpdateDocument` with a version name another version has.
    #[error("{0}")]
    DuplicateDocumentVersionName(String),
    /// An operation the document does not allow (deleting its default version, changing an
    /// AWS-owned document).
    #[error("{0}")]
    InvalidDocumentOperation(String),
    /// Content over 64 KB.
    #[error("{0}")]
    MaxDocumentSizeExceeded(String),
    /// The account already has as many documents as allowed in the region.
    #[error("{0}")]
    DocumentLimitExceeded(String),
    /// The document already has as many versions as allowed.
    #[error("{0}")]
    DocumentVersionLimitExceeded(String),
    /// Parameter values that do not fit the document's declarations.
    #[error("{0}")]
    InvalidParameters(String),
    /// The caller may not do this (an instance acting for another instance, say).
    #[error("{0}")]
    AccessDenied(String),
    /// A command ID that names no command of the account.
    #[error("{0}")]
    InvalidCommandId(String),
    /// The same instance ID twice in one request.
    #[error("{0}")]
    DuplicateInstanceId(String),
    /// No invocation of the command on that instance.
    #[error("{0}")]
    InvocationDoesNotExist(String),
    /// A plugin (or step) name the invocation does not have.
    #[error("{0}")]
    InvalidPluginName(String),
    /// A document whose platforms do not include the instance's.
    #[error("{0}")]
    UnsupportedPlatformType(String),
    /// A failure inside Corral; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SsmError {
    /// The wire form of this error: every SSM client fault is a 400 with `__type` set to the
    /// modelled error's name; `InternalServerError` is the one 500.
    pub fn to_wire(&self) -> WireError {
        let code = match self {
            SsmError::Validation(_) => "ValidationException",
            SsmError::Serialization(_) => "SerializationException",
            SsmError::ServiceSettingNotFound(_) => "ServiceSettingNotFound",
            SsmError::InvalidActivation(_) => "InvalidActivation",
            SsmError::InvalidActivationId(_) => "InvalidActivationId",
            SsmError::ActivationExpired(_) => "ActivationExpired",
            SsmError::RegistrationLimitExceeded(_) => "RegistrationLimitExceeded",
            SsmError::InvalidPublicKey(_) => "InvalidPublicKey",
            SsmError::PublicKeyAlreadyRegistered(_) => "PublicKeyAlreadyRegistered",
            SsmError::InvalidInstanceId(_) => "InvalidInstanceId",
            SsmError::MachineFingerprintDoesNotMatch(_) => "MachineFingerprintDoesNotMatch",
            SsmError::InvalidFilterKey(_) => "InvalidFilterKey",
            SsmError::InvalidFilter(_) => "InvalidFilter",
            SsmError::InvalidInstanceInformationFilterValue(_) => "InvalidInstanceInformationFilterValue",
            SsmError::InvalidNextToken(_) => "InvalidNextToken",
            SsmError::InvalidResourceType(_) => "InvalidResourceType",
            SsmError::InvalidResourceId(_) => "InvalidResourceId",
            SsmError::TooManyTagsError(_) => "TooManyTagsError",
            SsmError::InvalidDocument(_) => "InvalidDocument",
            SsmError::InvalidDocumentContent(_) => "InvalidDocumentContent",
            SsmError::InvalidDocumentSchemaVersion(_) => "InvalidDocumentSchemaVersion",
            SsmError::DocumentAlreadyExists(_) => "DocumentAlreadyExists",
            SsmError::InvalidDocumentVersion(_) => "InvalidDocumentVersion",
            SsmError::DuplicateDocumentContent(_) => "DuplicateDocumentContent",
            SsmError::DuplicateDocumentVersionName(_) => "DuplicateDocumentVersionName",
            SsmError::InvalidDocumentOperation(_) => "InvalidDocumentOperation",
            SsmError::MaxDocumentSizeExceeded(_) => "MaxDocumentSizeExceeded",
            SsmError::DocumentLimitExceeded(_) => "DocumentLimitExceeded",
            SsmError::DocumentVersionLimitExceeded(_) => "DocumentVersionLimitExceeded",
            SsmError::InvalidParameters(_) => "InvalidParameters",
            SsmError::AccessDenied(_) => "AccessDeniedException",
            SsmError::InvalidCommandId(_) => "InvalidCommandId",
            SsmError::DuplicateInstanceId(_) => "DuplicateInstanceId",
            SsmError::InvocationDoesNotExist(_) => "InvocationDoesNotExist",
            SsmError::InvalidPluginName(_) => "InvalidPluginName",
            SsmError::UnsupportedPlatformType(_) => "UnsupportedPlatformType",
            SsmError::Internal(detail) => {
                tracing::error!(%detail, "internal error in an SSM operation");
                return WireError::server("InternalServerError");
            }
        };
        WireError::client(400, code, self.to_string())
    }
}

impl From<InputError> for SsmError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Validation(v) => SsmError::Validation(v.to_string()),
            InputError::Serialization(m) => SsmError::Serialization(m),
        }
    }
}

impl From<corral_store::StoreError> for SsmError {
    fn from(e: corral_store::StoreError) -> Self {
        SsmError::Internal(e.to_string())
    }
}

/// How each SSM operation authenticates: the agent's registration is anonymous (its activation
/// code is the secret), its role-token and key-rotation calls are signed with the instance's
/// RSA key, and everything else is SigV4.
pub fn auth_mode(op: Operation) -> AuthMode {
    match op {
        Operation::RegisterManagedInstance => AuthMode::Anonymous,
        Operation::RequestManagedInstanceRoleToken | Operation::UpdateManagedInstancePublicKey => AuthMode::InstanceKey,
        _ => AuthMode::SigV4,
    }
}

macro_rules! serve {
    ($op:expr, $body:expr, $state:expr, $ctx:expr, $handler:path) => {{
        let input = json_codec::decode_input($op.input_shape(), $body).map_err(|e| SsmError::from(e).to_wire())?;
        let output = $handler($state, $ctx, input).await.map_err(|e| e.to_wire())?;
        Ok(json_codec::encode_output(&output))
    }};
}

fn wrong_auth_mode(op: Operation) -> WireError {
    SsmError::Internal(format!("{} dispatched with the wrong authentication", op.name())).to_wire()
}

/// Runs a SigV4-authenticated SSM operation.
pub async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, WireError> {
    match op {
        Operation::GetServiceSetting => serve!(op, body, state, ctx, settings::get_service_setting),
        Operation::UpdateServiceSetting => serve!(op, body, state, ctx, settings::update_service_setting),
        Operation::ResetServiceSetting => serve!(op, body, state, ctx, settings::reset_service_setting),
        Operation::CreateActivation => serve!(op, body, state, ctx, activations::create_activation),
        Operation::DescribeActivations => serve!(op, body, state, ctx, activations::describe_activations),
        Operation::DeleteActivation => serve!(op, body, state, ctx, activations::delete_activation),
        Operation::DescribeInstanceInformation => {
            serve!(op, body, state, ctx, instances::describe_instance_information)
        }
        Operation::DeregisterManagedInstance => serve!(op, body, state, ctx, instances::deregister_managed_instance),
        Operation::UpdateManagedInstanceRole => serve!(op, body, state, ctx, instances::update_managed_instance_role),
        Operation::AddTagsToResource => serve!(op, body, state, ctx, instances::add_tags_to_resource),
        Operation::RemoveTagsFromResource => serve!(op, body, state, ctx, instances::remove_tags_from_resource),
        Operation::ListTagsForResource => serve!(op, body, state, ctx, instances::list_tags_for_resource),
        Operation::CreateDocument => serve!(op, body, state, ctx, documents::create_document),
        Operation::GetDocument => serve!(op, body, state, ctx, documents::get_document),
        Operation::DescribeDocument => serve!(op, body, state, ctx, documents::describe_document),
        Operation::ListDocuments => serve!(op, body, state, ctx, documents::list_documents),
        Operation::UpdateDocument => serve!(op, body, state, ctx, documents::update_document),
        Operation::UpdateDocumentDefaultVersion => {
            serve!(op, body, state, ctx, documents::update_document_default_version)
        }
        Operation::DeleteDocument => serve!(op, body, state, ctx, documents::delete_document),
        Operation::ListDocumentVersions => serve!(op, body, state, ctx, documents::list_document_versions),
        Operation::SendCommand => serve!(op, body, state, ctx, commands::send_command),
        Operation::ListCommands => serve!(op, body, state, ctx, commands::list_commands),
        Operation::ListCommandInvocations => serve!(op, body, state, ctx, commands::list_command_invocations),
        Operation::GetCommandInvocation => serve!(op, body, state, ctx, commands::get_command_invocation),
        Operation::CancelCommand => serve!(op, body, state, ctx, commands::cancel_command),
        Operation::UpdateInstanceInformation => serve!(op, body, state, ctx, gateway::update_instance_information),
        Operation::ListInstanceAssociations => serve!(op, body, state, ctx, gateway::list_instance_associations),
        Operation::RegisterManagedInstance
        | Operation::RequestManagedInstanceRoleToken
        | Operation::UpdateManagedInstancePublicKey => Err(wrong_auth_mode(op)),
    }
}

/// Runs an operation signed with a managed instance's RSA key.
pub async fn dispatch_instance(
    state: &AppState,
    ctx: &InstanceContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, WireError> {
    match op {
        Operation::RequestManagedInstanceRoleToken => {
            serve!(op, body, state, ctx, gateway::request_managed_instance_role_token)
        }
        Operation::UpdateManagedInstancePublicKey => {
            serve!(op, body, state, ctx, gateway::update_managed_instance_public_key)
        }
        _ => Err(wrong_auth_mode(op)),
    }
}

/// Runs the anonymous operation (`RegisterManagedInstance`).
pub async fn dispatch_anonymous(
    state: &AppState,
    ctx: &AnonymousContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, WireError> {
    match op {
        Operation::RegisterManagedInstance => serve!(op, body, state, ctx, gateway::register_managed_instance),
        _ => Err(wrong_auth_mode(op)),
    }
}
