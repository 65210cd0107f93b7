//! `corral`: the control plane binary.
//!
//! `corral server` starts the control plane. Later issues add admin and session commands
//! (`corral session start`, `corral audit verify`, ...).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use corral_server::ServerConfig;

#[derive(Parser)]
#[command(name = "corral", version, about = "Self-hosted fleet management, wire-compatible with AWS Systems Manager")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the control plane (HTTPS, embedded SQLite by default).
    Server(ServerArgs),
}

#[derive(Args)]
struct ServerArgs {
    /// Data directory: database, certificates, secret key and AWS CLI files.
    #[arg(long, env = "CORRAL_DATA_DIR", default_value = "./corral-data")]
    data_dir: PathBuf,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "CORRAL_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB. Default: SQLite in the data dir.
    #[arg(long, env = "CORRAL_DATABASE_URL")]
    database: Option<String>,
    /// Server certificate chain (PEM) to use instead of the generated one.
    #[arg(long, env = "CORRAL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, env = "CORRAL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra DNS name or IP address for the generated server certificate (repeatable).
    #[arg(long = "tls-san", value_delimiter = ',')]
    tls_sans: Vec<String>,
    /// Default region written into the AWS CLI profile.
    #[arg(long, env = "CORRAL_REGION", default_value = "us-east-1")]
    region: String,
    /// Account ID (12 digits) to create on first start.
    #[arg(long, env = "CORRAL_ACCOUNT_ID")]
    account_id: Option<String>,
    /// File holding the key that encrypts secrets at rest (default: secret.key in the data dir).
    #[arg(long, env = "CORRAL_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    corral_server::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("corral: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Server(args) => runtime.block_on(corral_server::run(server_config(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn server_config(args: ServerArgs) -> ServerConfig {
    let mut config = ServerConfig::with_data_dir(args.data_dir);
    config.listen = args.listen;
    config.database_url = args.database;
    config.tls_cert = args.tls_cert;
    config.tls_key = args.tls_key;
    config.tls_sans = args.tls_sans;
    config.region = args.region;
    config.account_id = args.account_id;
    config.secret_key_file = args.secret_key_file;
    config.admin_key = match (
        std::env::var("CORRAL_ADMIN_ACCESS_KEY_ID").ok().filter(|s| !s.is_empty()),
        std::env::var("CORRAL_ADMIN_SECRET_ACCESS_KEY").ok().filter(|s| !s.is_empty()),
    ) {
        (Some(id), Some(secret)) => Some((id, secret)),
        _ => None,
    };
    config
}
