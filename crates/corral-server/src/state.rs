//! Shared state of a running control plane.

use std::sync::Arc;

use corral_store::Store;

use crate::config::ServerConfig;

/// Everything request handling needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The persistent store (SQLite or PostgreSQL).
    pub store: Arc<dyn Store>,
    /// The configuration the server started with.
    pub config: Arc<ServerConfig>,
    /// The deployment's first account (anonymous calls that name no account are recorded there).
    pub default_account_id: String,
    /// Parsed IAM policy documents, keyed by their text.
    pub policy_cache: Arc<crate::authz::PolicyCache>,
    /// Appends the records of calls that changed nothing, several per transaction.
    pub audit_writer: Arc<crate::audit::writer::AuditWriter>,
    /// The agents' control channels this replica holds.
    pub hub: Arc<crate::engine::hub::ControlHub>,
    /// Request rates per access key (reads, writes) and per managed instance (agent calls).
    pub rate_limiter: Arc<crate::edge::rate_limit::RateLimiter>,
    /// Failed anonymous registrations, per source address and activation.
    pub registration_throttle: Arc<crate::edge::throttle::FailureThrottle>,
    /// Request, audit and agent metrics (served at `/metrics` with `--metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The Run Command scheduler.
    pub engine: Arc<crate::engine::commands::CommandEngine>,
}
