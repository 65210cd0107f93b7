//! The control plane's configuration: one struct, every field documented with its default.
//!
//! The `corral` binary fills it from flags and `CORRAL_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `corral server` needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the database (SQLite), certificates, secret key and AWS CLI files live.
    /// Default `./corral-data` (`CORRAL_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The HTTPS listener. Default `127.0.0.1:8443`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `sqlite://...` or `postgres://...`. Default: `sqlite://<data_dir>/corral.db`.
    pub database_url: Option<String>,
    /// An operator-provided certificate chain (PEM). When absent Corral issues its own from a CA
    /// it generates in the data dir.
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the generated server certificate.
    pub tls_sans: Vec<String>,
    /// The default region written into the AWS CLI profile. Requests may use any region.
    pub region: String,
    /// The account ID to create on first start (12 digits). Random when absent; refused when it
    /// disagrees with the stored account on a later start.
    pub account_id: Option<String>,
    /// The 32-byte key that encrypts secrets at rest. Default `<data_dir>/secret.key`
    /// (`CORRAL_SECRET_KEY_FILE`); PostgreSQL deployments with several replicas share one.
    pub secret_key_file: Option<PathBuf>,
    /// Admin access key pair to provision on first start (both or neither), so automation can
    /// use a known key (`CORRAL_ADMIN_ACCESS_KEY_ID`, `CORRAL_ADMIN_SECRET_ACCESS_KEY`).
    pub admin_key: Option<(String, String)>,
    /// Largest request body accepted, in bytes. Default 2 MiB: the largest AWS payloads Corral
    /// serves (IAM policy documents, SSM documents) are far smaller.
    pub max_body_bytes: usize,
    /// Largest body of a call that needs no signature (`RegisterManagedInstance`), in bytes.
    /// Default 16 KiB: a registration carries a public key and a few short strings, and an
    /// anonymous caller must not be able to make the server read and record megabytes.
    pub max_anonymous_body_bytes: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle between requests, before it is closed. Default 20 s
    /// (`CORRAL_HEADER_TIMEOUT_SECS`).
    pub header_read_timeout: Duration,
    /// The most connections open at once; more are closed as they arrive. Each managed
    /// instance holds one (its control channel), so this bounds the fleet one server holds.
    /// Default 10,000 (`--max-connections`, `CORRAL_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Allowed difference between a request's `X-Amz-Date` and the server clock. AWS uses 5 min.
    pub max_clock_skew: Duration,
    /// Silence after which a managed instance shows `ConnectionLost` instead of `Online`. The
    /// agent pings every 5 minutes, so the default of 10 minutes tolerates one lost ping.
    pub ping_timeout: Duration,
    /// How long after its control channel closed an instance that has neither reconnected nor
    /// pinged shows `ConnectionLost` (rather than waiting for `ping_timeout`). Default 3 minutes,
    /// longer than an agent's first reconnect attempts (`--channel-grace-secs`,
    /// `CORRAL_CHANNEL_GRACE_SECS`).
    pub channel_grace: Duration,
    /// Silence after which an instance shows `Inactive` (30 days).
    pub inactive_after: Duration,
    /// Lifetime of the role credentials a managed instance gets (about an hour, as AWS).
    pub role_token_lifetime: Duration,
    /// How many hybrid instances the standard tier allows per account and region (AWS: 1,000).
    pub standard_tier_instance_limit: u64,
    /// Whether `GET /metrics` serves Prometheus metrics (unauthenticated: operation names and
    /// counts, no data). Off by default (`--metrics`, `CORRAL_METRICS`).
    pub metrics_enabled: bool,
    /// Request rates per caller and class of call (`edge::rate_limit`); AWS-like by default.
    pub rate_limits: crate::edge::rate_limit::RateLimits,
    /// Whether every request is recorded in the audit trail. Always on in service; off only
    /// to measure the trail's own cost (`CORRAL_AUDIT=off`).
    pub audit_enabled: bool,
}

impl ServerConfig {
    /// A configuration with every default applied, rooted at `data_dir`.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        ServerConfig {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            database_url: None,
            tls_cert: None,
            tls_key: None,
            tls_sans: Vec::new(),
            region: "us-east-1".to_string(),
            account_id: None,
            secret_key_file: None,
            admin_key: None,
            max_body_bytes: 2 * 1024 * 1024,
            max_anonymous_body_bytes: 16 * 1024,
            max_clock_skew: Duration::from_secs(5 * 60),
            header_read_timeout: Duration::from_secs(20),
            max_connections: 10_000,
            ping_timeout: Duration::from_secs(10 * 60),
            channel_grace: Duration::from_secs(3 * 60),
            inactive_after: Duration::from_secs(30 * 24 * 3600),
            role_token_lifetime: Duration::from_secs(3600),
            standard_tier_instance_limit: 1000,
            audit_enabled: true,
            metrics_enabled: false,
            rate_limits: crate::edge::rate_limit::RateLimits::default(),
        }
    }

    /// The database URL in effect.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("corral.db").display()),
        }
    }

    /// The secret key file in effect.
    pub fn effective_secret_key_file(&self) -> PathBuf {
        self.secret_key_file.clone().unwrap_or_else(|| self.data_dir.join("secret.key"))
    }
}
