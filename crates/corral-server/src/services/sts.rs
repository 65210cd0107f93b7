//! AWS Security Token Service (Query protocol): who is calling, and temporary credentials.

use std::collections::BTreeMap;

use corral_api::query_codec;
use corral_api::sts::{
    Credentials, GetCallerIdentityRequest, GetCallerIdentityResponse, GetSessionTokenRequest, GetSessionTokenResponse,
    Operation,
};
use corral_api::InputError;
use corral_store::{SessionCredential, SessionPrincipal};
use corral_wire::time::Timestamp;

use crate::context::{PrincipalKind, RequestContext};
use crate::edge::error::WireError;
use crate::ids;
use crate::state::AppState;

/// Default lifetime of `GetSessionToken` credentials, as AWS: 12 hours.
const DEFAULT_SESSION_SECONDS: i32 = 43_200;

/// Every way an STS operation can fail, each mapped once to its AWS error code.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// Input that breaks a model constraint.
    #[error("{0}")]
    Validation(String),
    /// Parameters that cannot be read (a malformed number, say).
    #[error("{0}")]
    MalformedInput(String),
    /// The caller may not do this (e.g. `GetSessionToken` with session credentials).
    #[error("{0}")]
    AccessDenied(String),
    /// A failure inside Corral; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl StsError {
    /// The wire form of this error.
    pub fn to_wire(&self) -> WireError {
        match self {
            StsError::Validation(m) => WireError::client(400, "ValidationError", m.clone()),
            StsError::MalformedInput(m) => WireError::client(400, "MalformedInput", m.clone()),
            StsError::AccessDenied(m) => WireError::client(403, "AccessDenied", m.clone()),
            StsError::Internal(detail) => {
                tracing::error!(%detail, "internal error in an STS operation");
                WireError::server("InternalFailure")
            }
        }
    }
}

impl From<InputError> for StsError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Validation(v) => StsError::Validation(v.to_string()),
            InputError::Serialization(m) => StsError::MalformedInput(m),
        }
    }
}

impl From<corral_store::StoreError> for StsError {
    fn from(e: corral_store::StoreError) -> Self {
        StsError::Internal(e.to_string())
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
            let input = query_codec::decode_input(op.input_shape(), params).map_err(|e| StsError::from(e).to_wire())?;
            let output = $handler(state, ctx, input).await.map_err(|e| e.to_wire())?;
            Ok(op.output_shape().map(|shape| query_codec::encode_output(shape, &output)))
        }};
    }
    match op {
        Operation::GetCallerIdentity => serve!(get_caller_identity),
        Operation::GetSessionToken => serve!(get_session_token),
        // Served once trust policies are evaluated (the access-control issue).
        Operation::AssumeRole => Err(crate::edge::error::EdgeError::UnknownAction {
            action: op.name().to_string(),
            version: corral_api::sts::SERVICE.api_version.to_string(),
        }
        .to_wire(corral_api::model::Protocol::Query)),
    }
}

/// `GetCallerIdentity`: always allowed, whoever signed.
pub async fn get_caller_identity(
    _state: &AppState,
    ctx: &RequestContext,
    _input: GetCallerIdentityRequest,
) -> Result<GetCallerIdentityResponse, StsError> {
    Ok(GetCallerIdentityResponse {
        user_id: Some(ctx.principal.user_id.clone()),
        account: Some(ctx.principal.account_id.clone()),
        arn: Some(ctx.principal.arn.clone()),
    })
}

/// `GetSessionToken`: temporary credentials for the calling IAM user.
pub async fn get_session_token(
    state: &AppState,
    ctx: &RequestContext,
    input: GetSessionTokenRequest,
) -> Result<GetSessionTokenResponse, StsError> {
    let user_name = match &ctx.principal.kind {
        PrincipalKind::User { user_name } => user_name.clone(),
        PrincipalKind::UserSession { .. } | PrincipalKind::AssumedRole { .. } => {
            return Err(StsError::AccessDenied("Cannot call GetSessionToken with session credentials".into()))
        }
    };
    let seconds = input.duration_seconds.unwrap_or(DEFAULT_SESSION_SECONDS);
    let expires_at = ctx.received_at + time::Duration::seconds(i64::from(seconds));
    let access_key_id = ids::new_temporary_access_key_id();
    let secret_access_key = ids::new_secret_access_key();
    let session_token = ids::new_session_token();
    state
        .store
        .create_session_credential(&SessionCredential {
            access_key_id: access_key_id.clone(),
            account_id: ctx.account_id().to_string(),
            secret_access_key: secret_access_key.clone(),
            session_token_hash: ids::session_token_hash(&session_token),
            principal: SessionPrincipal::User { user_name },
            created_at: ctx.received_at,
            expires_at,
        })
        .await?;
    Ok(GetSessionTokenResponse {
        credentials: Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token,
            expiration: Timestamp(expires_at),
        }),
        ..Default::default()
    })
}
