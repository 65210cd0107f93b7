//! Policy evaluation: is a request allowed by a principal's identity policies, and may a caller
//! assume a role under its trust policy.
//!
//! The decision follows AWS's documented logic for a single account ("Policy evaluation
//! logic"): every request starts implicitly denied; an explicit `Deny` in any applicable
//! statement is final; otherwise an `Allow` in any applicable statement allows; otherwise the
//! implicit deny stands. A statement applies when its `Action`/`NotAction`, its
//! `Resource`/`NotResource` and every test of its `Condition` block match the request.
//!
//! Evaluation works on documents compiled by [`crate::policy::parse`]; nothing is re-parsed,
//! and a request without policy variables evaluates without allocating.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::pattern::{Scratch, Variables};
use crate::policy::{Effect, PolicyDocument, Principal, Statement};

/// The value of a condition context key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    /// A single-valued key (`aws:username`, `aws:SourceIp`, `aws:ResourceTag/env`).
    Single(String),
    /// A multi-valued key (`aws:TagKeys`); compared member by member with `ForAnyValue:` /
    /// `ForAllValues:`. An empty list counts as a missing key.
    Multi(Vec<String>),
}

/// The condition context keys of a request. Key names are case-insensitive, as in AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    values: HashMap<String, ContextValue>,
}

fn lower(key: &str) -> Cow<'_, str> {
    if key.chars().any(char::is_uppercase) {
        Cow::Owned(key.to_lowercase())
    } else {
        Cow::Borrowed(key)
    }
}

impl RequestContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key (replacing any earlier value).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_lowercase(), ContextValue::Single(value.into()));
    }

    /// Sets a multi-valued key (replacing any earlier value).
    pub fn set_multi(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_lowercase(), ContextValue::Multi(values));
    }

    /// The value of a key, looked up without regard to case.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.values.get(lower(key).as_ref())
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        self.values.remove(lower(key).as_ref())
    }

    /// The value of a key already in lower case (the form compiled policies hold).
    pub(crate) fn get_lower(&self, key_lower: &str) -> Option<&ContextValue> {
        self.values.get(key_lower)
    }
}

impl Variables for RequestContext {
    /// Only single-valued keys can be policy variables (AWS: "you can't use a multivalued
    /// context key as a policy variable").
    fn variable(&self, key_lower: &str) -> Option<&str> {
        match self.values.get(key_lower)? {
            ContextValue::Single(s) => Some(s),
            ContextValue::Multi(_) => None,
        }
    }
}

/// What is being asked: one action on one resource, with its context.
#[derive(Debug, Clone, Copy)]
pub struct AuthzRequest<'a> {
    /// The IAM action (`ssm:SendCommand`).
    pub action: &'a str,
    /// One resource ARN, or `*` for actions without a resource type. Multi-resource calls
    /// evaluate once per ARN.
    pub resource: &'a str,
    /// The condition context keys.
    pub context: &'a RequestContext,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An applicable statement allows and none denies.
    Allow,
    /// An applicable statement denies (overrides every allow).
    ExplicitDeny,
    /// Nothing allows: the default.
    ImplicitDeny,
}

impl Decision {
    /// Is the request allowed?
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Identity-policy evaluation: explicit deny, then allow, then implicit deny.
pub fn evaluate(policies: &[&PolicyDocument], request: &AuthzRequest) -> Decision {
    let mut scratch = Scratch::default();
    let mut allowed = false;
    for policy in policies {
        for statement in &policy.statements {
            // Once allowed, only a deny can change the outcome.
            if allowed && statement.effect == Effect::Allow {
                continue;
            }
            if statement_applies(statement, request, &mut scratch) {
                match statement.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

fn statement_applies(statement: &Statement, request: &AuthzRequest, scratch: &mut Scratch) -> bool {
    statement.matches_action(request.action)
        && statement.matches_resource(request.resource, request.context, scratch)
        && statement.conditions.iter().all(|c| c.holds_with(request.context, scratch))
}

/// Who calls `sts:AssumeRole`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustCaller {
    /// The caller's ARN: a user (`arn:aws:iam::<acct>:user/<name>`) or an assumed-role session
    /// (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`).
    pub arn: String,
    /// The caller's account.
    pub account_id: String,
    /// For an assumed-role session, the role's ARN (`arn:aws:iam::<acct>:role/<path><name>`),
    /// which a trust policy may name to admit every session of that role.
    pub role_arn_for_session: Option<String>,
}

/// The action a trust policy must allow for a role to be assumed.
pub const ASSUME_ROLE: &str = "sts:AssumeRole";

/// Trust-policy evaluation for `sts:AssumeRole`: a statement applies when its action covers
/// `sts:AssumeRole`, its `Principal` names the caller (its ARN, its session's role ARN, its
/// account root `arn:aws:iam::<acct>:root`, the bare account ID, or `*`) and its conditions
/// hold. Explicit deny, then allow, then implicit deny.
pub fn evaluate_trust(trust: &PolicyDocument, caller: &TrustCaller, context: &RequestContext) -> Decision {
    evaluate_trust_action(trust, ASSUME_ROLE, caller, context)
}

/// [`evaluate_trust`] for another action a trust policy governs (`sts:TagSession`,
/// `sts:SetSourceIdentity`).
pub fn evaluate_trust_action(
    trust: &PolicyDocument,
    action: &str,
    caller: &TrustCaller,
    context: &RequestContext,
) -> Decision {
    let mut scratch = Scratch::default();
    let mut allowed = false;
    for statement in &trust.statements {
        if allowed && statement.effect == Effect::Allow {
            continue;
        }
        let principal_ok = match (&statement.principal, &statement.not_principal) {
            (Some(p), _) => names_caller(p, caller),
            (None, Some(not)) => !names_caller(not, caller),
            (None, None) => false,
        };
        if principal_ok
            && statement.matches_action(action)
            && statement.conditions.iter().all(|c| c.holds_with(context, &mut scratch))
        {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

fn names_caller(principal: &Principal, caller: &TrustCaller) -> bool {
    match principal {
        Principal::Any => true,
        Principal::Typed(map) => map.get("AWS").is_some_and(|ids| {
            ids.iter().any(|id| {
                id == "*"
                    || *id == caller.arn
                    || caller.role_arn_for_session.as_deref() == Some(id.as_str())
                    || *id == caller.account_id
                    || id.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root"))
                        == Some(&caller.account_id)
            })
        }),
    }
}
