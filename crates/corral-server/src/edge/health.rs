//! `GET /healthz` and `GET /readyz`: unauthenticated probes for load balancers and
//! orchestrators. They carry no data: the status code is the answer.
//!
//! - `/healthz` (liveness): the process serves HTTP.
//! - `/readyz` (readiness): the store answers a query (the server only starts once its
//!   migrations are applied, so a store that answers is a migrated one).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::state::AppState;

/// How long the readiness query may take before the replica counts as not ready.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Liveness.
pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Readiness: 200 when the store answers within [`READY_TIMEOUT`], 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, state.store.schema_version()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the store did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
        }
        Err(_) => {
            tracing::warn!("not ready: the store did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
        }
    }
}
