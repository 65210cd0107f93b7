//! What a handler knows about the request it serves. A `RequestContext` only exists after the
//! edge has authenticated the request: handlers never see an unauthenticated caller.

use std::net::IpAddr;

use time::OffsetDateTime;

/// The kind of principal behind a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An IAM user signing with a long-term access key.
    User {
        /// The user's name.
        user_name: String,
    },
    /// An IAM user signing with temporary credentials from `GetSessionToken`.
    UserSession {
        /// The user's name.
        user_name: String,
    },
    /// A role session (`AssumeRole`, or a managed instance's role token).
    AssumedRole {
        /// The role's name.
        role_name: String,
        /// The role's unique ID (`AROA...`).
        role_id: String,
        /// The session name.
        session_name: String,
    },
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account the principal belongs to (and the request acts in).
    pub account_id: String,
    /// The caller's ARN as `GetCallerIdentity` reports it.
    pub arn: String,
    /// The caller's unique ID as `GetCallerIdentity` reports it (`AIDA...` or `AROA...:session`).
    pub user_id: String,
    /// The access key that signed the request.
    pub access_key_id: String,
    /// Which kind of principal this is.
    pub kind: PrincipalKind,
}

impl Principal {
    /// The managed instance this caller is, if it signs with an instance's role token (whose
    /// role session is named after the instance; `AssumeRole` refuses such names to others).
    pub fn managed_instance_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::AssumedRole { session_name, .. } if session_name.starts_with("mi-") => Some(session_name),
            _ => None,
        }
    }
}

/// A verified request's context, handed to every handler.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request ID returned to the caller.
    pub request_id: String,
    /// The region from the signature's credential scope: resources are keyed by it.
    pub region: String,
    /// Who is calling.
    pub principal: Principal,
    /// The client's address.
    pub source_ip: IpAddr,
    /// The client's `User-Agent`, if any.
    pub user_agent: Option<String>,
    /// When the edge received the request.
    pub received_at: OffsetDateTime,
}

impl RequestContext {
    /// The account the request acts in.
    pub fn account_id(&self) -> &str {
        &self.principal.account_id
    }
}

/// The context of a call signed with a managed instance's RSA key (the agent's role-token and
/// key-rotation calls): the instance is known, but it holds no IAM credentials yet.
#[derive(Debug, Clone)]
pub struct InstanceContext {
    /// The request ID returned to the caller.
    pub request_id: String,
    /// The instance whose key signed the request.
    pub instance: corral_store::ManagedInstance,
    /// When the edge received the request.
    pub received_at: OffsetDateTime,
}

/// The context of the one anonymous call, `RegisterManagedInstance`: the activation code in its
/// body is the only secret, checked by the handler.
#[derive(Debug, Clone)]
pub struct AnonymousContext {
    /// The request ID returned to the caller.
    pub request_id: String,
    /// The client's address.
    pub source_ip: IpAddr,
    /// When the edge received the request.
    pub received_at: OffsetDateTime,
    /// The activation the request names, as the edge read it (`None` when there is none).
    pub activation: Option<corral_store::Activation>,
}
