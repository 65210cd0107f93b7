//! AWS Security Token Service (Query protocol): who is calling, and temporary credentials.

use std::collections::BTreeMap;

use corral_api::query_codec;
use corral_api::sts::{
    AssumeRoleRequest, AssumeRoleResponse, AssumedRoleUser, Credentials, GetCallerIdentityRequest,
    GetCallerIdentityResponse, GetSessionTokenRequest, GetSessionTokenResponse, Operation,
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
            let input = query_codec::decode_input(op.input_shape(), params).map_err(|e| StsError::from(e).to_wire())?;
            let output = $handler(state, ctx, input).await.map_err(|e| e.to_wire())?;
            Ok(crate::services::QueryOutput {
                xml: op.output_shape().map(|shape| query_codec::encode_output(shape, &output)),
                json: serde_json::to_value(&output).unwrap_or(serde_json::Value::Null),
            })
        }};
    }
    match op {
        Operation::GetCallerIdentity => serve!(get_caller_identity),
        Operation::GetSessionToken => serve!(get_session_token),
        Operation::AssumeRole => serve!(assume_role),
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
    let output = GetSessionTokenResponse {
        credentials: Some(Credentials {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
            session_token: session_token.clone(),
            expiration: Timestamp(expires_at),
        }),
        ..Default::default()
    };
    crate::audit::stage_output(&output);
    state
        .store
        .create_session_credential(&SessionCredential {
            access_key_id,
            account_id: ctx.account_id().to_string(),
            secret_access_key,
            session_token_hash: ids::session_token_hash(&session_token),
            principal: SessionPrincipal::User { user_name },
            created_at: ctx.received_at,
            expires_at,
        })
        .await?;
    Ok(output)
}

/// `AssumeRole`: the caller's identity policy must allow `sts:AssumeRole` on the role (checked
/// by the edge like every action) and the role's trust policy must name the caller.
pub async fn assume_role(
    state: &AppState,
    ctx: &RequestContext,
    input: AssumeRoleRequest,
) -> Result<AssumeRoleResponse, StsError> {
    if input.policy.is_some() || input.policy_arns.as_ref().is_some_and(|p| !p.is_empty()) {
        // Refused rather than ignored: silently dropping a session policy would grant more
        // than the caller asked for.
        return Err(StsError::Validation(
            "Corral does not support session policies (Policy, PolicyArns) yet.".to_string(),
        ));
    }
    if input.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(StsError::Validation("Corral does not support session tags yet.".to_string()));
    }
    if input.role_session_name.starts_with("mi-") {
        // Managed instances' role sessions are named after the instance, and an instance may
        // act only for itself: a user-chosen session name must never look like one.
        return Err(StsError::Validation(
            "RoleSessionName may not begin with mi-: Corral reserves it for managed instances.".to_string(),
        ));
    }
    let denied = || {
        StsError::AccessDenied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
            ctx.principal.arn, input.role_arn
        ))
    };
    // The ARN must be the role's stored ARN exactly, path and case included: the edge
    // authorised sts:AssumeRole on that ARN, and any other spelling names no role.
    let reference = crate::services::iam::roles::RoleReference::Arn(&input.role_arn);
    let role = crate::services::iam::roles::resolve_reference(state, ctx.account_id(), &reference)
        .await?
        .ok_or_else(denied)?;
    let trust = corral_iam::policy::parse(&role.assume_role_policy_document, corral_iam::policy::PolicyKind::Trust)
        .map_err(|_| denied())?;
    // A role session is trusted through its role's ARN, path included (trust policies name it).
    let calling_role_arn = match &ctx.principal.kind {
        PrincipalKind::AssumedRole { role_name, .. } => Some(
            state
                .store
                .get_role(ctx.account_id(), role_name)
                .await?
                .map(|r| r.arn)
                .unwrap_or_else(|| format!("arn:aws:iam::{}:role/{role_name}", ctx.account_id())),
        ),
        _ => None,
    };
    let caller = corral_iam::eval::TrustCaller {
        arn: ctx.principal.arn.clone(),
        account_id: ctx.account_id().to_string(),
        role_arn_for_session: calling_role_arn,
    };
    let mut context = corral_iam::eval::RequestContext::new();
    context.set("aws:PrincipalArn", ctx.principal.arn.clone());
    context.set("aws:PrincipalAccount", ctx.account_id().to_string());
    context.set("aws:SourceIp", ctx.source_ip.to_string());
    context.set("aws:CurrentTime", corral_wire::time::format_iso8601_seconds(ctx.received_at));
    if let Some(ext) = &input.external_id {
        context.set("sts:ExternalId", ext.clone());
    }
    context.set("sts:RoleSessionName", input.role_session_name.clone());
    if corral_iam::eval::evaluate_trust(&trust, &caller, &context) != corral_iam::eval::Decision::Allow {
        return Err(denied());
    }
    let seconds = input.duration_seconds.unwrap_or(3600);
    if seconds > role.max_session_duration {
        return Err(StsError::Validation(format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({} seconds).",
            role.max_session_duration
        )));
    }
    let expires_at = ctx.received_at + time::Duration::seconds(i64::from(seconds));
    let access_key_id = ids::new_temporary_access_key_id();
    let secret_access_key = ids::new_secret_access_key();
    let session_token = ids::new_session_token();
    let output = AssumeRoleResponse {
        credentials: Some(Credentials {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
            session_token: session_token.clone(),
            expiration: Timestamp(expires_at),
        }),
        assumed_role_user: Some(AssumedRoleUser {
            assumed_role_id: format!("{}:{}", role.role_id, input.role_session_name),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{}",
                ctx.account_id(),
                role.role_name,
                input.role_session_name
            ),
        }),
        packed_policy_size: Some(0),
        ..Default::default()
    };
    crate::audit::stage_output(&output);
    state
        .store
        .create_session_credential(&SessionCredential {
            access_key_id: access_key_id.clone(),
            account_id: ctx.account_id().to_string(),
            secret_access_key: secret_access_key.clone(),
            session_token_hash: ids::session_token_hash(&session_token),
            principal: SessionPrincipal::AssumedRole {
                role_name: role.role_name.clone(),
                role_id: role.role_id.clone(),
                session_name: input.role_session_name.clone(),
            },
            created_at: ctx.received_at,
            expires_at,
        })
        .await?;
    Ok(output)
}
