//! The agent gateway: the calls a managed instance's agent makes (agent-protocol.md §1–§2, §5.4).
//!
//! - `RegisterManagedInstance` (anonymous: the activation code is the secret) turns a machine
//!   into a managed instance in one store transaction that checks the code, the expiry, the
//!   activation's limit and the standard tier's per-region limit.
//! - `RequestManagedInstanceRoleToken` and `UpdateManagedInstancePublicKey` are signed with the
//!   instance's RSA key; the first hands out short-lived credentials of the instance's role.
//! - `UpdateInstanceInformation` (the health ping) and `ListInstanceAssociations` are signed
//!   with those role credentials and may only speak for the instance they were issued to.

use corral_api::ssm::{
    ListInstanceAssociationsRequest, ListInstanceAssociationsResult, RegisterManagedInstanceRequest,
    RegisterManagedInstanceResult, RequestManagedInstanceRoleTokenRequest, RequestManagedInstanceRoleTokenResult,
    UpdateInstanceInformationRequest, UpdateInstanceInformationResult, UpdateManagedInstancePublicKeyRequest,
    UpdateManagedInstancePublicKeyResult,
};
use corral_store::{
    InstanceInfo, NewRegistration, RegistrationOutcome, SessionCredential, SessionPrincipal, StoreError,
};
use corral_wire::time::Timestamp;
use rand::RngExt;

use super::activations::CODE_HASH_PURPOSE;
use super::settings::{self, ACTIVATION_TIER};
use super::SsmError;
use crate::context::{AnonymousContext, InstanceContext, RequestContext};
use crate::ids;
use crate::state::AppState;

/// A new managed-instance ID: `mi-` and 17 lower-case hex digits, as AWS issues them.
fn new_instance_id() -> String {
    let mut rng = rand::rng();
    let hex: String = (0..17).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect();
    format!("mi-{hex}")
}

fn check_public_key(key: &str, key_type: Option<&str>) -> Result<(), SsmError> {
    if key_type.is_some_and(|t| t != "Rsa") {
        return Err(SsmError::InvalidPublicKey("Only Rsa public keys are supported.".to_string()));
    }
    corral_wire::keys::public_key_from_spki_base64(key)
        .map(|_| ())
        .map_err(|e| SsmError::InvalidPublicKey(format!("The public key is not valid: {e}")))
}

/// `RegisterManagedInstance`.
pub async fn register_managed_instance(
    state: &AppState,
    ctx: &AnonymousContext,
    input: RegisterManagedInstanceRequest,
) -> Result<RegisterManagedInstanceResult, SsmError> {
    let invalid = || {
        SsmError::InvalidActivation(
            "The activation is not valid: it may have been deleted, or the ActivationId and ActivationCode do not match."
                .to_string(),
        )
    };
    let (Some(code), Some(activation_id)) = (input.activation_code.as_deref(), input.activation_id.as_deref()) else {
        return Err(SsmError::InvalidActivation(
            "Corral registers machines with an ActivationCode and ActivationId; both are required.".to_string(),
        ));
    };
    check_public_key(&input.public_key, input.public_key_type.as_deref())?;
    // The activation decides the account and region, and so which tier's limit applies.
    let activation = ctx.activation.as_ref().filter(|a| a.activation_id == activation_id).ok_or_else(invalid)?;
    let tier = settings::current_value(state, &activation.account_id, &activation.region, &ACTIVATION_TIER).await?;
    let max_instances = (tier == "standard").then_some(state.config.standard_tier_instance_limit);
    let registration = NewRegistration {
        activation_id: activation_id.to_string(),
        code_hash: state.store.secret_hash(CODE_HASH_PURPOSE, code),
        instance_id: new_instance_id(),
        public_key: input.public_key,
        fingerprint: input.fingerprint,
        registered_at: ctx.received_at,
        max_instances_in_region: max_instances,
    };
    crate::audit::stage_output(&RegisterManagedInstanceResult { instance_id: Some(registration.instance_id.clone()) });
    match state.store.register_instance(&registration).await? {
        RegistrationOutcome::Registered(instance) => {
            tracing::info!(instance_id = %instance.instance_id, %activation_id, source_ip = %ctx.source_ip, "registered a managed instance");
            Ok(RegisterManagedInstanceResult { instance_id: Some(instance.instance_id) })
        }
        RegistrationOutcome::InvalidActivation => Err(invalid()),
        RegistrationOutcome::Expired => Err(SsmError::ActivationExpired(format!(
            "Activation {activation_id} expired on {}.",
            Timestamp(activation.expiration_date).to_iso8601()
        ))),
        RegistrationOutcome::ActivationLimitExceeded => Err(SsmError::RegistrationLimitExceeded(format!(
            "Activation {activation_id} has reached its registration limit of {}.",
            activation.registration_limit
        ))),
        RegistrationOutcome::RegionLimitExceeded { limit } => Err(SsmError::RegistrationLimitExceeded(format!(
            "The standard instance tier allows at most {limit} managed instances in account {} and region {}, \
             and that many are registered. To register more, switch to the advanced tier: aws ssm \
             update-service-setting --setting-id {} --setting-value advanced",
            activation.account_id, activation.region, ACTIVATION_TIER.id
        ))),
    }
}

/// `RequestManagedInstanceRoleToken`: temporary credentials of the instance's role.
pub async fn request_managed_instance_role_token(
    state: &AppState,
    ctx: &InstanceContext,
    input: RequestManagedInstanceRoleTokenRequest,
) -> Result<RequestManagedInstanceRoleTokenResult, SsmError> {
    let instance = &ctx.instance;
    if input.fingerprint != instance.fingerprint {
        return Err(SsmError::MachineFingerprintDoesNotMatch(format!(
            "The fingerprint does not match the one {} registered with.",
            instance.instance_id
        )));
    }
    let role = state.store.get_role(&instance.account_id, &instance.iam_role).await?.ok_or_else(|| {
        SsmError::AccessDenied(format!(
            "The role {} of instance {} does not exist; assign another with UpdateManagedInstanceRole.",
            instance.iam_role, instance.instance_id
        ))
    })?;
    let lifetime = time::Duration::try_from(state.config.role_token_lifetime).unwrap_or(time::Duration::hours(1));
    let expires_at = ctx.received_at + lifetime;
    let access_key_id = ids::new_temporary_access_key_id();
    let secret_access_key = ids::new_secret_access_key();
    let session_token = ids::new_session_token();
    let output = RequestManagedInstanceRoleTokenResult {
        access_key_id: Some(access_key_id.clone()),
        secret_access_key: Some(secret_access_key.clone()),
        session_token: Some(session_token.clone()),
        token_expiration_date: Some(Timestamp(expires_at)),
        // The agent dereferences this field unconditionally: it must always be present.
        update_key_pair: Some(false),
    };
    crate::audit::stage_output(&output);
    state
        .store
        .create_session_credential(&SessionCredential {
            access_key_id: access_key_id.clone(),
            account_id: instance.account_id.clone(),
            secret_access_key: secret_access_key.clone(),
            session_token_hash: ids::session_token_hash(&session_token),
            principal: SessionPrincipal::AssumedRole {
                role_name: role.role_name.clone(),
                role_id: role.role_id.clone(),
                session_name: instance.instance_id.clone(),
            },
            created_at: ctx.received_at,
            expires_at,
        })
        .await?;
    Ok(output)
}

/// How long a superseded instance key is still accepted for role tokens, so that an agent that
/// lost the rotation's answer can probe which key the server holds (agent-protocol.md §2.4).
/// Using the new key ends the window at once.
pub const PREVIOUS_KEY_GRACE: time::Duration = time::Duration::minutes(10);

/// `UpdateManagedInstancePublicKey`: signed with the current key (never a superseded one); the
/// old key stays accepted for role tokens for [`PREVIOUS_KEY_GRACE`], or until the new key is
/// first used.
pub async fn update_managed_instance_public_key(
    state: &AppState,
    ctx: &InstanceContext,
    input: UpdateManagedInstancePublicKeyRequest,
) -> Result<UpdateManagedInstancePublicKeyResult, SsmError> {
    check_public_key(&input.new_public_key, Some(&input.new_public_key_type))?;
    if input.new_public_key == ctx.instance.public_key {
        return Err(SsmError::PublicKeyAlreadyRegistered("This public key is already registered.".to_string()));
    }
    let grace_until = ctx.received_at + PREVIOUS_KEY_GRACE;
    match state.store.update_instance_public_key(&ctx.instance.instance_id, &input.new_public_key, grace_until).await {
        Ok(()) => Ok(UpdateManagedInstancePublicKeyResult::default()),
        Err(StoreError::NotFound) => {
            Err(SsmError::InvalidInstanceId(format!("Not existing InstanceId {}", ctx.instance.instance_id)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The instance a caller's credentials were issued to, if they are an instance's role session.
fn calling_instance(ctx: &RequestContext) -> Option<&str> {
    ctx.principal.managed_instance_id()
}

fn require_same_instance(ctx: &RequestContext, action: &str, instance_id: &str) -> Result<(), SsmError> {
    if calling_instance(ctx) == Some(instance_id) {
        return Ok(());
    }
    Err(SsmError::AccessDenied(format!(
        "User: {} is not authorized to perform: ssm:{action} on resource: arn:aws:ssm:{}:{}:managed-instance/{instance_id} \
         because only the instance's own credentials may",
        ctx.principal.arn,
        ctx.region,
        ctx.account_id()
    )))
}

/// `UpdateInstanceInformation`: the health ping.
pub async fn update_instance_information(
    state: &AppState,
    ctx: &RequestContext,
    input: UpdateInstanceInformationRequest,
) -> Result<UpdateInstanceInformationResult, SsmError> {
    require_same_instance(ctx, "UpdateInstanceInformation", &input.instance_id)?;
    let info = InstanceInfo {
        agent_name: input.agent_name,
        agent_status: input.agent_status,
        agent_version: input.agent_version,
        platform_type: input.platform_type,
        platform_name: input.platform_name,
        platform_version: input.platform_version,
        ip_address: input.ip_address,
        computer_name: input.computer_name,
        ssm_connection_channel: input.ssm_connection_channel,
    };
    match state.store.record_ping(&input.instance_id, &info, ctx.received_at).await {
        Ok(()) => Ok(UpdateInstanceInformationResult::default()),
        Err(StoreError::NotFound) => {
            Err(SsmError::InvalidInstanceId(format!("Not existing InstanceId {}", input.instance_id)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `ListInstanceAssociations`: State Manager is not part of Corral yet, so always empty.
pub async fn list_instance_associations(
    state: &AppState,
    ctx: &RequestContext,
    input: ListInstanceAssociationsRequest,
) -> Result<ListInstanceAssociationsResult, SsmError> {
    require_same_instance(ctx, "ListInstanceAssociations", &input.instance_id)?;
    if state.store.get_instance(&input.instance_id).await?.is_none() {
        return Err(SsmError::InvalidInstanceId(format!("Not existing InstanceId {}", input.instance_id)));
    }
    Ok(ListInstanceAssociationsResult { associations: Some(Vec::new()), next_token: None })
}
