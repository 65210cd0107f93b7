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
}
