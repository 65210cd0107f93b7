//! Authorisation: every authenticated request is checked against the caller's IAM policies
//! before its handler runs.
//!
//! [`targets`] says, for each operation, which action on which resource ARNs it needs (and the
//! resource's tags as condition keys); this module loads the caller's identity policies (a
//! user's own and its groups', or the role's for a role session: managed instances act with
//! their role), builds the global condition keys and asks `corral_iam::eval` for a decision.
//! Explicit deny beats allow; no allow means an implicit deny.

pub mod targets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use corral_iam::eval::{self, AuthzRequest, Decision};
use corral_iam::policy::{self, PolicyDocument, PolicyKind};
use corral_store::{IdentityPolicies, PolicySubject};

use crate::context::{PrincipalKind, RequestContext};
use crate::services::iam::managed;
use crate::state::AppState;

/// One thing a request needs permission for.
#[derive(Debug, Clone)]
pub struct Check {
    /// `service:Action`, e.g. `ssm:SendCommand`.
    pub action: String,
    /// The resource ARN, or `*` for actions without a resource type.
    pub resource: String,
    /// Condition keys this resource or request adds (resource tags, request tags).
    pub context: Vec<(String, Vec<String>)>,
}

impl Check {
    /// A check with no extra condition keys.
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Check {
        Check { action: action.into(), resource: resource.into(), context: Vec::new() }
    }
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// The policies do not allow it, or a statement denies it.
    #[error("{message}")]
    Denied {
        /// AWS's message: who, what, on which resource, and why.
        message: String,
    },
    /// Loading policies failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Parsed policy documents, keyed by their text. Content-addressed, so it can never be stale:
/// a changed policy is a different key. Bounded by clearing when full.
#[derive(Default)]
pub struct PolicyCache {
    parsed: Mutex<HashMap<String, Arc<PolicyDocument>>>,
}

const POLICY_CACHE_LIMIT: usize = 4096;

impl PolicyCache {
    fn get(&self, text: &str) -> Option<Arc<PolicyDocument>> {
        if let Ok(map) = self.parsed.lock() {
            if let Some(doc) = map.get(text) {
                return Some(doc.clone());
            }
        }
        // Stored documents were validated on write; one that no longer parses grants nothing.
        let doc = Arc::new(policy::parse(text, PolicyKind::Identity).ok()?);
        if let Ok(mut map) = self.parsed.lock() {
            if map.len() >= POLICY_CACHE_LIMIT {
                map.clear();
            }
            map.insert(text.to_string(), doc.clone());
        }
        Some(doc)
    }
}

/// The AWS managed policies, parsed once.
fn aws_managed(arn: &str) -> Option<Arc<PolicyDocument>> {
    static PARSED: OnceLock<HashMap<String, Arc<PolicyDocument>>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            managed::AWS_MANAGED_POLICIES
                .iter()
                .filter_map(|p| policy::parse(p.document, PolicyKind::Identity).ok().map(|d| (p.arn(), Arc::new(d))))
                .collect()
        })
        .get(arn)
        .cloned()
}

/// The caller's identity policies, parsed.
async fn load_policies(
    state: &AppState,
    ctx: &RequestContext,
) -> Result<(Vec<Arc<PolicyDocument>>, IdentityPolicies), AuthzError> {
    let subject = match &ctx.principal.kind {
        PrincipalKind::User { user_name } | PrincipalKind::UserSession { user_name } => PolicySubject::User(user_name),
        PrincipalKind::AssumedRole { role_name, .. } => PolicySubject::Role(role_name),
    };
    let found = state
        .store
        .identity_policies(ctx.account_id(), subject)
        .await
        .map_err(|e| AuthzError::Internal(e.to_string()))?;
    let mut docs = Vec::new();
    for text in &found.inline_documents {
        docs.extend(state.policy_cache.get(text));
    }
    for arn in &found.managed_policy_arns {
        if let Some(doc) = aws_managed(arn) {
            docs.push(doc);
        }
    }
    for (_, text) in &found.customer_managed_documents {
        docs.extend(state.policy_cache.get(text));
    }
    Ok((docs, found))
}

/// The global condition keys of a request.
fn base_context(ctx: &RequestContext, found: &IdentityPolicies) -> eval::RequestContext {
    let mut c = eval::RequestContext::new();
    let p = &ctx.principal;
    c.set("aws:PrincipalArn", p.arn.clone());
    c.set("aws:PrincipalAccount", p.account_id.clone());
    c.set("aws:userid", p.user_id.clone());
    match &p.kind {
        PrincipalKind::User { user_name } | PrincipalKind::UserSession { user_name } => {
            c.set("aws:username", user_name.clone());
            c.set("aws:PrincipalType", "User");
        }
        PrincipalKind::AssumedRole { session_name, .. } => {
            c.set("aws:PrincipalType", "AssumedRole");
            if session_name.starts_with("mi-") {
                // A managed instance's calls carry its ARN, as AWS's ssm:SourceInstanceARN.
                let arn = format!("arn:aws:ssm:{}:{}:managed-instance/{session_name}", ctx.region, p.account_id);
                c.set("ssm:SourceInstanceARN", arn);
            }
        }
    }
    for tag in &found.principal_tags {
        c.set(&format!("aws:PrincipalTag/{}", tag.key), tag.value.clone());
    }
    c.set("aws:SourceIp", ctx.source_ip.to_string());
    c.set("aws:CurrentTime", corral_wire::time::format_iso8601_seconds(ctx.received_at));
    c.set("aws:EpochTime", ctx.received_at.unix_timestamp().to_string());
    c.set("aws:SecureTransport", "true");
    c.set("aws:RequestedRegion", ctx.region.clone());
    c.set("aws:MultiFactorAuthPresent", "false");
    c.set("aws:ViaAWSService", "false");
    c
}

/// Checks every [`Check`] of a request; all must be allowed.
pub async fn authorize(state: &AppState, ctx: &RequestContext, checks: &[Check]) -> Result<(), AuthzError> {
    if checks.is_empty() {
        return Ok(());
    }
    let (docs, found) = load_policies(state, ctx).await?;
    let refs: Vec<&PolicyDocument> = docs.iter().map(|d| d.as_ref()).collect();
    let base = base_context(ctx, &found);
    for check in checks {
        let mut context = base.clone();
        for (key, values) in &check.context {
            match values.as_slice() {
                [one] => context.set(key, one.clone()),
                many => context.set_multi(key, many.to_vec()),
            }
        }
        let request = AuthzRequest { action: &check.action, resource: &check.resource, context: &context };
        match eval::evaluate(&refs, &request) {
            Decision::Allow => {}
            decision => {
                let why = if matches!(decision, Decision::ExplicitDeny) {
                    "with an explicit deny in an identity-based policy".to_string()
                } else {
                    format!("because no identity-based policy allows the {} action", check.action)
                };
                let message = format!(
                    "User: {} is not authorized to perform: {} on resource: {} {why}",
                    ctx.principal.arn, check.action, check.resource
                );
                return Err(AuthzError::Denied { message });
            }
        }
    }
    Ok(())
}
