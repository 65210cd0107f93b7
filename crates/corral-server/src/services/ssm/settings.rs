//! Service settings: `GetServiceSetting`, `UpdateServiceSetting`, `ResetServiceSetting`.
//!
//! A setting has an AWS-defined default; an account may override it per region. Only overrides
//! are stored: a setting without a stored row is at its default (`Status: Default`,
//! `LastModifiedUser: System`), which is also what `ResetServiceSetting` returns to.

use corral_api::ssm::{
    GetServiceSettingRequest, GetServiceSettingResult, ResetServiceSettingRequest, ResetServiceSettingResult,
    ServiceSetting, UpdateServiceSettingRequest, UpdateServiceSettingResult,
};
use corral_store::ServiceSettingRow;
use corral_wire::time::Timestamp;

use super::SsmError;
use crate::context::RequestContext;
use crate::state::AppState;

/// A setting Corral knows: its ID, default and the values it accepts.
pub struct KnownSetting {
    /// The bare setting ID, e.g. `/ssm/managed-instance/activation-tier`.
    pub id: &'static str,
    /// The value when the account has not changed it.
    pub default_value: &'static str,
    /// The values `UpdateServiceSetting` accepts.
    pub allowed_values: &'static [&'static str],
}

/// The instance tier: `standard` (at most 1,000 hybrid instances per account and region, no
/// Session Manager) or `advanced`.
pub const ACTIVATION_TIER: KnownSetting = KnownSetting {
    id: "/ssm/managed-instance/activation-tier",
    default_value: "standard",
    allowed_values: &["standard", "advanced"],
};

/// Every setting Corral serves.
pub const KNOWN_SETTINGS: &[KnownSetting] = &[ACTIVATION_TIER];

/// Resolves a `SettingId` given as a bare ID or as the setting's ARN to a known setting.
/// An ARN names a setting only in the `aws` partition, the caller's account and the request's
/// region: the edge authorises on the resolved setting's ARN ([`setting_arn`]), so no other
/// spelling may reach the same setting.
pub fn resolve(ctx: &RequestContext, setting_id: &str) -> Result<&'static KnownSetting, SsmError> {
    let bare: Option<String> = if setting_id.starts_with("arn:") {
        // arn:aws:ssm:<region>:<account>:servicesetting/<id without leading slash>
        let parts: Vec<&str> = setting_id.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", "aws", "ssm", region, account, resource]
                if *region == ctx.region && *account == ctx.account_id() =>
            {
                resource.strip_prefix("servicesetting/").map(|rest| format!("/{rest}"))
            }
            _ => None,
        }
    } else {
        Some(setting_id.to_string())
    };
    bare.and_then(|id| KNOWN_SETTINGS.iter().find(|s| s.id == id))
        .ok_or_else(|| SsmError::ServiceSettingNotFound(format!("The service setting {setting_id} was not found.")))
}

/// The ARN of a setting in the caller's account and region.
pub fn setting_arn(ctx: &RequestContext, setting: &KnownSetting) -> String {
    format!("arn:aws:ssm:{}:{}:servicesetting{}", ctx.region, ctx.account_id(), setting.id)
}

/// The value of a setting in an account and region now (its default when never changed).
pub async fn current_value(
    state: &AppState,
    account_id: &str,
    region: &str,
    setting: &KnownSetting,
) -> Result<String, SsmError> {
    Ok(state
        .store
        .get_service_setting(account_id, region, setting.id)
        .await?
        .map(|row| row.value)
        .unwrap_or_else(|| setting.default_value.to_string()))
}

/// The setting as the account sees it now.
async fn current(
    state: &AppState,
    ctx: &RequestContext,
    setting: &'static KnownSetting,
) -> Result<ServiceSetting, SsmError> {
    let row = state.store.get_service_setting(ctx.account_id(), &ctx.region, setting.id).await?;
    Ok(match row {
        Some(row) => ServiceSetting {
            setting_id: Some(setting.id.to_string()),
            setting_value: Some(row.value),
            last_modified_date: Some(Timestamp(row.last_modified_date)),
            last_modified_user: Some(row.last_modified_user),
            arn: Some(setting_arn(ctx, setting)),
            status: Some("Customized".to_string()),
        },
        None => default_setting(state, ctx, setting).await?,
    })
}

async fn default_setting(
    state: &AppState,
    ctx: &RequestContext,
    setting: &'static KnownSetting,
) -> Result<ServiceSetting, SsmError> {
    // The default has been in force since the account exists.
    let since = state.store.get_account(ctx.account_id()).await?.map(|a| a.created_at).unwrap_or(ctx.received_at);
    Ok(ServiceSetting {
        setting_id: Some(setting.id.to_string()),
        setting_value: Some(setting.default_value.to_string()),
        last_modified_date: Some(Timestamp(since)),
        last_modified_user: Some("System".to_string()),
        arn: Some(setting_arn(ctx, setting)),
        status: Some("Default".to_string()),
    })
}

/// `GetServiceSetting`.
pub async fn get_service_setting(
    state: &AppState,
    ctx: &RequestContext,
    input: GetServiceSettingRequest,
) -> Result<GetServiceSettingResult, SsmError> {
    let setting = resolve(ctx, &input.setting_id)?;
    Ok(GetServiceSettingResult { service_setting: Some(current(state, ctx, setting).await?) })
}

/// `UpdateServiceSetting`: stores the account's value, effective at once.
pub async fn update_service_setting(
    state: &AppState,
    ctx: &RequestContext,
    input: UpdateServiceSettingRequest,
) -> Result<UpdateServiceSettingResult, SsmError> {
    let setting = resolve(ctx, &input.setting_id)?;
    if !setting.allowed_values.contains(&input.setting_value.as_str()) {
        return Err(SsmError::Validation(format!(
            "The value {} is not valid for the setting {}. Valid values: {}.",
            input.setting_value,
            setting.id,
            setting.allowed_values.join(", ")
        )));
    }
    if setting.id == ACTIVATION_TIER.id && input.setting_value == "standard" {
        // Going back to the standard tier is refused while the region holds more instances
        // than it allows. (A registration racing this update can still slip in; the tier is
        // read again at every registration.)
        let count = state.store.count_instances(ctx.account_id(), &ctx.region).await?;
        let limit = state.config.standard_tier_instance_limit;
        if count > limit {
            return Err(SsmError::Validation(format!(
                "The standard tier allows at most {limit} managed instances per account and region, and {count} \
                 are registered in {}. Deregister instances before returning to the standard tier.",
                ctx.region
            )));
        }
    }
    state
        .store
        .put_service_setting(&ServiceSettingRow {
            account_id: ctx.account_id().to_string(),
            region: ctx.region.clone(),
            setting_id: setting.id.to_string(),
            value: input.setting_value,
            last_modified_user: ctx.principal.arn.clone(),
            last_modified_date: ctx.received_at,
        })
        .await?;
    Ok(UpdateServiceSettingResult::default())
}

/// `ResetServiceSetting`: forgets the account's value and returns the default.
pub async fn reset_service_setting(
    state: &AppState,
    ctx: &RequestContext,
    input: ResetServiceSettingRequest,
) -> Result<ResetServiceSettingResult, SsmError> {
    let setting = resolve(ctx, &input.setting_id)?;
    state.store.delete_service_setting(ctx.account_id(), &ctx.region, setting.id).await?;
    Ok(ResetServiceSettingResult { service_setting: Some(default_setting(state, ctx, setting).await?) })
}
