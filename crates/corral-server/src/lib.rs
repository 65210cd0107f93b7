//! The Corral control plane: the HTTPS edge, the AWS services it serves and, later, the agent
//! gateway, the command engine and notifications (see ARCHITECTURE.md).
#![forbid(unsafe_code)]

pub mod audit;
pub mod authz;
pub mod bootstrap;
pub mod cli_env;
pub mod config;
pub mod context;
pub mod edge;
pub mod engine;
pub mod files;
pub mod ids;
pub mod lock;
pub mod metrics;
pub mod services;
pub mod state;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;

pub use config::ServerConfig;

/// Installs the process-wide rustls crypto provider (ring). Call first thing in every `main` and
/// test: with more than one provider compiled in, rustls cannot pick one by itself.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How long requests in flight may take to finish once a shutdown signal arrives.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Starts the control plane and serves until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    install_crypto_provider();
    let mut prepared = bootstrap::prepare(&config).await?;
    let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (is another Corral, or another program, listening there?)"
        } else {
            ""
        };
        anyhow::anyhow!("binding {}: {e}{hint}", config.listen)
    })?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let endpoint = bootstrap::endpoint_url(local);
    prepared.lock.record(Some(&endpoint))?;
    bootstrap::write_cli_config(&config, &prepared.tls, &endpoint)?;

    let tls = RustlsConfig::from_config(tls::server_config(&prepared.tls)?);
    let hub = Arc::new(engine::hub::ControlHub::default());
    let command_engine = Arc::new(engine::commands::CommandEngine::new(prepared.store.clone(), hub.clone()));
    command_engine.spawn();
    let state = state::AppState {
        store: prepared.store.clone(),
        config: Arc::new(config.clone()),
        default_account_id: prepared.account_id.clone(),
        policy_cache: Arc::default(),
        audit_writer: Arc::new(audit::writer::AuditWriter::start(prepared.store.clone())),
        hub,
        rate_limiter: Arc::new(edge::rate_limit::RateLimiter::new(config.rate_limits)),
        registration_throttle: Arc::default(),
        metrics: Arc::default(),
        engine: command_engine,
    };
    let state_hub = state.hub.clone();
    let app = edge::router(state);

    let handle = axum_server::Handle::<SocketAddr>::new();
    let shutdown = handle.clone();
    let hub_at_shutdown = state_hub.clone();
    tokio::spawn(async move {
        wait_for_shutdown_signal().await;
        tracing::info!("shutting down: closing agent channels, finishing requests in flight");
        // Channels and held polls end at once (agents reconnect); other requests in flight
        // get a few seconds to finish.
        hub_at_shutdown.shut_down();
        shutdown.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });

    print_banner(&config, &prepared, &endpoint);
    // Slow or idle clients are bounded at every stage: the TLS handshake, the first request,
    // every request's headers (hyper starts this clock whenever a connection waits for a
    // request, so it is also the keep-alive idle timeout), and the number of connections open.
    let tls =
        axum_server::tls_rustls::RustlsAcceptor::new(tls).handshake_timeout(edge::listener::TLS_HANDSHAKE_TIMEOUT);
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(edge::listener::ConnectionLimit::new(tls, config.max_connections))
        .handle(handle)
        .first_request_timeout(config.header_read_timeout);
    server.http_builder().http1().header_read_timeout(config.header_read_timeout);
    server.serve(app.into_make_service_with_connect_info::<SocketAddr>()).await.context("serving")?;
    Ok(())
}

fn print_banner(config: &ServerConfig, prepared: &bootstrap::Prepared, endpoint: &str) {
    let dir = config.data_dir.display();
    println!("corral: listening on {endpoint} (account {}, region {})", prepared.account_id, config.region);
    if prepared.first_start {
        println!("corral: first start: created the account, an admin user and its access key in {dir}");
    }
    if let Some(ca) = &prepared.tls.ca_cert {
        println!("corral: machines and clients trust the CA in {}", ca.display());
    }
    println!("Point the AWS CLI at it (eval \"$(corral env --data-dir {dir})\" prints the same):");
    let vars = cli_env::variables(&config.data_dir);
    for line in cli_env::render(&vars, cli_env::Shell::Posix).lines() {
        println!("  {line}");
    }
    println!("  aws sts get-caller-identity");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
