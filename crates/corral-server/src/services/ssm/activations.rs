//! Hybrid activations: `CreateActivation`, `DescribeActivations`, `DeleteActivation`.
//!
//! An activation is a code and ID pair that lets up to `RegistrationLimit` machines register
//! until its expiration date. The code is shown once, in `CreateActivation`'s answer, and kept
//! only as a keyed hash.

use corral_api::ssm::{
    Activation as WireActivation, CreateActivationRequest, CreateActivationResult, DeleteActivationRequest,
    DeleteActivationResult, DescribeActivationsRequest, DescribeActivationsResult, Tag,
};
use corral_iam::policy::{self, PolicyKind};
use corral_store::{Activation, IamRole, StoreError};
use corral_wire::time::Timestamp;
use rand::RngExt;
use time::OffsetDateTime;

use super::SsmError;
use crate::context::RequestContext;
use crate::services::iam::roles::{resolve_reference, RoleReference};
use crate::services::pagination;
use crate::state::AppState;

/// The service principal a hybrid instance role must trust.
pub const SSM_SERVICE_PRINCIPAL: &str = "ssm.amazonaws.com";
/// Default lifetime of an activation, as AWS: 24 hours.
const DEFAULT_EXPIRY: time::Duration = time::Duration::hours(24);
/// The longest an activation may live, as AWS: 30 days.
const MAX_EXPIRY: time::Duration = time::Duration::days(30);
/// Tags a resource may hold (AWS's per-resource limit).
pub const MAX_TAGS_PER_RESOURCE: usize = 50;
/// `DescribeActivations` page size when the caller gives none.
const DEFAULT_PAGE: usize = 50;
/// The purpose string under which activation codes are hashed.
pub const CODE_HASH_PURPOSE: &str = "activation-code";

/// The role a hybrid instance will act with: found by name, `path/name` or ARN in the caller's
/// account (an ARN or path that differs from the stored role's names no role), and trusting
/// `ssm.amazonaws.com`. The edge has already checked `iam:PassRole` on the same role.
pub async fn resolve_instance_role(
    state: &AppState,
    ctx: &RequestContext,
    iam_role: &str,
) -> Result<IamRole, SsmError> {
    let reference = RoleReference::parse(iam_role);
    let role = resolve_reference(state, ctx.account_id(), &reference).await?.ok_or_else(|| {
        SsmError::Validation(format!("Not existing role: {}", reference.arn_if_absent(ctx.account_id())))
    })?;
    let trusted = policy::parse(&role.assume_role_policy_document, PolicyKind::Trust)
        .map(|doc| doc.trusts_service(SSM_SERVICE_PRINCIPAL))
        .unwrap_or(false);
    if !trusted {
        return Err(SsmError::Validation(format!(
            "The role {} does not trust {SSM_SERVICE_PRINCIPAL}: its trust policy must allow the principal \
             {{\"Service\": \"{SSM_SERVICE_PRINCIPAL}\"}} to call sts:AssumeRole.",
            role.role_name
        )));
    }
    Ok(role)
}

/// A new activation code: 20 characters of the base64 alphabet, as AWS issues them.
fn new_activation_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Checks user-supplied tags: keys unique, not in the reserved `aws:` namespace, at most 50.
pub fn check_tags(tags: &[Tag]) -> Result<(), SsmError> {
    if tags.len() > MAX_TAGS_PER_RESOURCE {
        return Err(SsmError::TooManyTagsError(format!(
            "A resource can have at most {MAX_TAGS_PER_RESOURCE} tags; {} were given.",
            tags.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in tags {
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(SsmError::Validation(format!(
                "Tag keys beginning with aws: are reserved for AWS use: {}",
                t.key
            )));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(SsmError::Validation(format!("Duplicate tag key: {}", t.key)));
        }
    }
    Ok(())
}

/// `CreateActivation`.
pub async fn create_activation(
    state: &AppState,
    ctx: &RequestContext,
    input: CreateActivationRequest,
) -> Result<CreateActivationResult, SsmError> {
    let role = resolve_instance_role(state, ctx, &input.iam_role).await?;
    let now = ctx.received_at;
    let expiration = match input.expiration_date {
        None => now + DEFAULT_EXPIRY,
        Some(Timestamp(t)) if t <= now => {
            return Err(SsmError::Validation("ExpirationDate must be in the future.".to_string()))
        }
        Some(Timestamp(t)) if t > now + MAX_EXPIRY => {
            return Err(SsmError::Validation(
                "ExpirationDate must be at most 30 days after the activation is created.".to_string(),
            ))
        }
        Some(Timestamp(t)) => t,
    };
    let tags = input.tags.unwrap_or_default();
    check_tags(&tags)?;
    let code = new_activation_code();
    let activation = Activation {
        account_id: ctx.account_id().to_string(),
        region: ctx.region.clone(),
        activation_id: uuid::Uuid::new_v4().to_string(),
        code_hash: state.store.secret_hash(CODE_HASH_PURPOSE, &code),
        description: input.description,
        default_instance_name: input.default_instance_name,
        iam_role: role.role_name,
        registration_limit: input.registration_limit.unwrap_or(1),
        registrations_count: 0,
        expiration_date: expiration,
        created_date: now,
        tags: tags.into_iter().map(|t| corral_store::Tag { key: t.key, value: t.value }).collect(),
    };
    let output =
        CreateActivationResult { activation_id: Some(activation.activation_id.clone()), activation_code: Some(code) };
    crate::audit::stage_output(&output);
    state.store.create_activation(&activation).await?;
    Ok(output)
}

fn to_wire(a: &Activation, now: OffsetDateTime) -> WireActivation {
    WireActivation {
        activation_id: Some(a.activation_id.clone()),
        description: a.description.clone(),
        default_instance_name: a.default_instance_name.clone(),
        iam_role: Some(a.iam_role.clone()),
        registration_limit: Some(a.registration_limit),
        registrations_count: Some(a.registrations_count),
        expiration_date: Some(Timestamp(a.expiration_date)),
        expired: Some(now > a.expiration_date),
        created_date: Some(Timestamp(a.created_date)),
        tags: Some(a.tags.iter().map(|t| Tag { key: t.key.clone(), value: t.value.clone() }).collect()),
    }
}

fn cursor_of(a: &Activation) -> String {
    format!("{}|{}", pagination::time_cursor(a.created_date), a.activation_id)
}

/// `DescribeActivations`: filters on `ActivationIds`, `DefaultInstanceName`, `IamRole` (values
/// of one filter OR'ed, filters AND'ed), ordered by creation, paginated.
pub async fn describe_activations(
    state: &AppState,
    ctx: &RequestContext,
    input: DescribeActivationsRequest,
) -> Result<DescribeActivationsResult, SsmError> {
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for f in input.filters.unwrap_or_default() {
        let key = f.filter_key.unwrap_or_default();
        if !matches!(key.as_str(), "ActivationIds" | "DefaultInstanceName" | "IamRole") {
            return Err(SsmError::InvalidFilter(format!("The filter key {key} is not valid.")));
        }
        filters.push((key, f.filter_values.unwrap_or_default()));
    }
    let after = match &input.next_token {
        Some(t) => Some(
            pagination::decode("activations", t)
                .ok_or_else(|| SsmError::InvalidNextToken("The NextToken is not valid.".to_string()))?,
        ),
        None => None,
    };
    let page_size = input.max_results.map(|m| m.max(1) as usize).unwrap_or(DEFAULT_PAGE);
    let matches = |a: &Activation| {
        filters.iter().all(|(key, values)| {
            let field = match key.as_str() {
                "ActivationIds" => Some(a.activation_id.as_str()),
                "DefaultInstanceName" => a.default_instance_name.as_deref(),
                _ => Some(a.iam_role.as_str()),
            };
            field.is_some_and(|f| values.iter().any(|v| v == f))
        })
    };
    let all = state.store.list_activations(ctx.account_id(), &ctx.region).await?;
    let selected: Vec<&Activation> = all
        .iter()
        .filter(|a| after.as_deref().is_none_or(|c| cursor_key(&cursor_of(a)) > cursor_key(c)))
        .filter(|a| matches(a))
        .collect();
    let more = selected.len() > page_size;
    let page: Vec<&Activation> = selected.into_iter().take(page_size).collect();
    let next_token = if more { page.last().map(|a| pagination::encode("activations", &cursor_of(a))) } else { None };
    Ok(DescribeActivationsResult {
        activation_list: Some(page.iter().map(|a| to_wire(a, ctx.received_at)).collect()),
        next_token,
    })
}

/// Orders cursors by creation time (numerically), then ID.
fn cursor_key(cursor: &str) -> (i128, String) {
    match cursor.split_once('|') {
        Some((millis, id)) => (millis.parse().unwrap_or(i128::MIN), id.to_string()),
        None => (i128::MIN, cursor.to_string()),
    }
}

/// `DeleteActivation`: stops new registrations; instances already registered stay.
pub async fn delete_activation(
    state: &AppState,
    ctx: &RequestContext,
    input: DeleteActivationRequest,
) -> Result<DeleteActivationResult, SsmError> {
    match state.store.delete_activation(ctx.account_id(), &ctx.region, &input.activation_id).await {
        Ok(()) => Ok(DeleteActivationResult::default()),
        Err(StoreError::NotFound) => {
            Err(SsmError::InvalidActivationId(format!("Activation ID {} was not found", input.activation_id)))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_codes_look_like_aws_codes() {
        let code = new_activation_code();
        assert_eq!(code.len(), 20);
        assert_ne!(code, new_activation_code());
    }

    #[test]
    fn cursors_order_by_time_then_id() {
        assert!(cursor_key("1000|b") > cursor_key("999|z"));
        assert!(cursor_key("1000|b") > cursor_key("1000|a"));
    }
}
