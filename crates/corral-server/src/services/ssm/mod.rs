//! AWS Systems Manager (AWS JSON 1.1, `X-Amz-Target: AmazonSSM.<Operation>`).

pub mod settings;

use corral_api::json_codec;
use corral_api::ssm::Operation;
use corral_api::InputError;

use crate::context::RequestContext;
use crate::edge::error::WireError;
use crate::state::AppState;

/// Every way an SSM operation can fail, each mapped once to its AWS error code.
#[derive(Debug, thiserror::Error)]
pub enum SsmError {
    /// Input that breaks a model constraint (length, pattern, enum, range, required).
    #[error("{0}")]
    Validation(String),
    /// A body that is not JSON, or a member of the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// `SettingId` names no service setting Corral knows.
    #[error("{0}")]
    ServiceSettingNotFound(String),
    /// A failure inside Corral; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SsmError {
    /// The wire form of this error.
    pub fn to_wire(&self) -> WireError {
        match self {
            SsmError::Validation(m) => WireError::client(400, "ValidationException", m.clone()),
            SsmError::Serialization(m) => WireError::client(400, "SerializationException", m.clone()),
            SsmError::ServiceSettingNotFound(m) => WireError::client(400, "ServiceSettingNotFound", m.clone()),
            SsmError::Internal(detail) => {
                tracing::error!(%detail, "internal error in an SSM operation");
                WireError::server("InternalServerError")
            }
        }
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

/// Decodes the input, runs the handler and encodes its output for one SSM operation.
pub async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, WireError> {
    macro_rules! serve {
        ($handler:path) => {{
            let input = json_codec::decode_input(op.input_shape(), body).map_err(|e| SsmError::from(e).to_wire())?;
            let output = $handler(state, ctx, input).await.map_err(|e| e.to_wire())?;
            Ok(json_codec::encode_output(&output))
        }};
    }
    match op {
        Operation::GetServiceSetting => serve!(settings::get_service_setting),
        Operation::UpdateServiceSetting => serve!(settings::update_service_setting),
        Operation::ResetServiceSetting => serve!(settings::reset_service_setting),
        // Generated for the hybrid-setup issue; served as their handlers land.
        other => Err(crate::edge::error::EdgeError::UnknownOperation(format!(
            "{} is an AWS ssm operation that Corral does not serve yet",
            other.name()
        ))
        .to_wire(corral_api::model::Protocol::Json)),
    }
}
