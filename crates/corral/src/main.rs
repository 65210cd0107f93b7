//! `corral`: the control plane binary.
//!
//! `corral server` starts the control plane; `corral audit verify|export` checks and exports
//! the audit trail offline. Later issues add admin and session commands (`corral session
//! start`, ...).
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
    Server(Box<ServerArgs>),
    /// Check or export the audit trail (CloudTrail records), reading the database directly.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a consistent copy of the embedded SQLite store while the server runs (PostgreSQL:
    /// use pg_dump). Restore: see the README.
    Backup(BackupArgs),
    /// Print the environment that points the AWS CLI and SDKs at this data dir:
    /// eval "$(corral env)".
    Env(EnvArgs),
}

#[derive(Args)]
struct BackupArgs {
    /// Data directory of the server.
    #[arg(long, env = "CORRAL_DATA_DIR", default_value = "./corral-data")]
    data_dir: PathBuf,
    /// Database URL, if not the SQLite file in the data dir.
    #[arg(long, env = "CORRAL_DATABASE_URL")]
    database: Option<String>,
    /// The file to write (must not exist; created mode 0600).
    #[arg(long)]
    to: PathBuf,
}

#[derive(Args)]
struct EnvArgs {
    /// Data directory of the server.
    #[arg(long, env = "CORRAL_DATA_DIR", default_value = "./corral-data")]
    data_dir: PathBuf,
    /// Shell to print for: sh/bash/zsh (default), fish, powershell.
    #[arg(long, default_value = "bash", value_parser = ["sh", "bash", "zsh", "fish", "powershell", "pwsh"])]
    shell: String,
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
    /// Seconds without a health ping after which a managed instance shows ConnectionLost.
    #[arg(long, env = "CORRAL_PING_TIMEOUT_SECS", default_value_t = 600)]
    ping_timeout_secs: u64,
    /// Seconds after its control channel closed that an instance which neither reconnected nor
    /// pinged shows ConnectionLost.
    #[arg(long, env = "CORRAL_CHANNEL_GRACE_SECS", default_value_t = 180)]
    channel_grace_secs: u64,
    /// Serve Prometheus metrics at GET /metrics (unauthenticated: counts and latencies by
    /// operation, no data).
    #[arg(long, env = "CORRAL_METRICS")]
    metrics: bool,
    /// Most connections open at once (each managed instance holds one); more are refused.
    #[arg(long, env = "CORRAL_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a client may take to send a request's headers, or leave a connection idle.
    #[arg(long, env = "CORRAL_HEADER_TIMEOUT_SECS", default_value_t = 20)]
    header_timeout_secs: u64,
    /// Read-only calls per second per access key, as RATE or RATE/BURST, or off; more are
    /// answered ThrottlingException (the AWS SDKs retry with backoff).
    #[arg(long, env = "CORRAL_THROTTLE_READ", default_value = "50/100", value_parser = rate_arg)]
    throttle_read: RateArg,
    /// Other calls per second per access key (RATE[/BURST] or off).
    #[arg(long, env = "CORRAL_THROTTLE_WRITE", default_value = "20/60", value_parser = rate_arg)]
    throttle_write: RateArg,
    /// Agent calls per second per managed instance (RATE[/BURST] or off).
    #[arg(long, env = "CORRAL_THROTTLE_AGENT", default_value = "10/40", value_parser = rate_arg)]
    throttle_agent: RateArg,
    /// Agent calls per second of all instances together, which spreads out a reconnect storm
    /// (RATE[/BURST] or off).
    #[arg(long, env = "CORRAL_THROTTLE_AGENTS_TOTAL", default_value = "1000/2000", value_parser = rate_arg)]
    throttle_agents_total: RateArg,
}

/// A request-rate limit from the command line (`None`: off).
#[derive(Debug, Clone, Copy)]
struct RateArg(Option<corral_server::edge::rate_limit::Rate>);

fn rate_arg(text: &str) -> Result<RateArg, String> {
    corral_server::edge::rate_limit::Rate::parse(text).map(RateArg)
}

fn main() -> ExitCode {
    corral_server::install_crypto_provider();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // CORRAL_LOG_FORMAT=json: one JSON object per line (with the request's span fields), for
    // log pipelines; the default is the human-readable format.
    if std::env::var("CORRAL_LOG_FORMAT").as_deref() == Ok("json") {
        logs.json().with_current_span(true).with_span_list(false).init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("corral: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Server(args) => {
            // Everything the server creates (database, WAL, keys, exports) is for its owner
            // alone, whatever umask it was started with.
            #[cfg(unix)]
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            runtime.block_on(corral_server::run(server_config(*args)))
        }
        Command::Audit(command) => return runtime.block_on(audit::run(command)),
        Command::Backup(args) => {
            let mut config = ServerConfig::with_data_dir(args.data_dir);
            config.database_url = args.database;
            // The copy holds everything the database holds: for its owner alone.
            #[cfg(unix)]
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            return match runtime.block_on(corral_store::backup_sqlite(&config.effective_database_url(), &args.to)) {
                Ok(()) => {
                    println!("corral: wrote a consistent copy of the store to {}", args.to.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("corral backup: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Env(args) => {
            let shell =
                corral_server::cli_env::Shell::parse(&args.shell).unwrap_or(corral_server::cli_env::Shell::Posix);
            let vars = corral_server::cli_env::variables(&args.data_dir);
            print!("{}", corral_server::cli_env::render(&vars, shell));
            return ExitCode::SUCCESS;
        }
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
    config.ping_timeout = std::time::Duration::from_secs(args.ping_timeout_secs);
    config.max_connections = args.max_connections.max(1);
    config.metrics_enabled = args.metrics;
    config.channel_grace = std::time::Duration::from_secs(args.channel_grace_secs);
    config.header_read_timeout = std::time::Duration::from_secs(args.header_timeout_secs.max(1));
    config.rate_limits = corral_server::edge::rate_limit::RateLimits {
        read: args.throttle_read.0,
        write: args.throttle_write.0,
        agent: args.throttle_agent.0,
        agents_total: args.throttle_agents_total.0,
    };
    // Only for measuring what the trail costs; a deployment never turns it off.
    config.audit_enabled = std::env::var("CORRAL_AUDIT").map(|v| v != "off").unwrap_or(true);
    config.admin_key = match (
        std::env::var("CORRAL_ADMIN_ACCESS_KEY_ID").ok().filter(|s| !s.is_empty()),
        std::env::var("CORRAL_ADMIN_SECRET_ACCESS_KEY").ok().filter(|s| !s.is_empty()),
    ) {
        (Some(id), Some(secret)) => Some((id, secret)),
        _ => None,
    };
    config
}

// === corral audit ===

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every audit chain (one per account and region): sequence numbers, hash links and
    /// each record's hash. Exit status 0 if all verify, 1 if any is broken, 2 if the check
    /// could not run.
    Verify(AuditStoreArgs),
    /// Write every audit record as JSON Lines (one CloudTrail record per line), chain by chain,
    /// oldest first.
    Export(AuditExportArgs),
}

/// Where the store is: the same flags, environment variables and defaults as `corral server`.
#[derive(Args)]
struct AuditStoreArgs {
    /// Data directory of the server (its SQLite database and secret key live there by default).
    #[arg(long, env = "CORRAL_DATA_DIR", default_value = "./corral-data")]
    data_dir: PathBuf,
    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB. Default: SQLite in the data dir.
    #[arg(long, env = "CORRAL_DATABASE_URL")]
    database: Option<String>,
    /// The server's secret key file (default: secret.key in the data dir). Audit records are not
    /// encrypted: the key is only read if it exists, never created.
    #[arg(long, env = "CORRAL_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
}

#[derive(Args)]
struct AuditExportArgs {
    #[command(flatten)]
    store: AuditStoreArgs,
    /// File to write (created or truncated, mode 0600), or `-` for standard output.
    #[arg(long, short = 'o', default_value = "-")]
    output: PathBuf,
}

/// `corral audit`: reads the audit trail with the store's own methods, so it works on SQLite
/// and PostgreSQL alike, with the server stopped or running (opening the store applies pending
/// migrations, as the server would).
mod audit {
    use std::io::Write;
    use std::process::ExitCode;
    use std::sync::Arc;

    use anyhow::Context;
    use corral_store::{verify_chain, SecretKey, Store, AUDIT_GENESIS_HASH};

    use super::{AuditCommand, AuditExportArgs, AuditStoreArgs};

    /// Records read per query.
    const PAGE: usize = 500;
    /// Exit status when the command could not do its job (1 means "a chain is broken").
    const TROUBLE: u8 = 2;

    pub(super) async fn run(command: AuditCommand) -> ExitCode {
        let result = match command {
            AuditCommand::Verify(args) => verify(&args).await,
            AuditCommand::Export(args) => export(&args).await.map(|()| ExitCode::SUCCESS),
        };
        result.unwrap_or_else(|e| {
            eprintln!("corral audit: {e:#}");
            ExitCode::from(TROUBLE)
        })
    }

    async fn open(args: &AuditStoreArgs) -> anyhow::Result<Arc<dyn Store>> {
        let mut config = corral_server::ServerConfig::with_data_dir(args.data_dir.clone());
        config.database_url = args.database.clone();
        config.secret_key_file = args.secret_key_file.clone();
        let url = config.effective_database_url();
        // Opening SQLite creates a missing file: refuse instead of verifying an empty one.
        if let Some(db) = sqlite_file(&url) {
            anyhow::ensure!(db.is_file(), "no database at {} (check --data-dir or --database)", db.display());
        }
        let key_file = config.effective_secret_key_file();
        let key = if key_file.exists() {
            corral_store::load_or_create_key_file(&key_file)
                .with_context(|| format!("reading the secret key {}", key_file.display()))?
        } else {
            anyhow::ensure!(args.secret_key_file.is_none(), "secret key file {} not found", key_file.display());
            // Nothing the audit commands read is encrypted; opening the store just needs a key.
            SecretKey::generate()
        };
        corral_store::open(&url, key).await.context("opening the store")
    }

    /// The file a `sqlite:` URL names (`sqlite://PATH` or `sqlite:PATH`, options after `?`),
    /// or `None` for other URLs and in-memory databases.
    fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
        let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && !path.contains(":memory:") && !url.contains("mode=memory")).then(|| path.into())
    }

    /// Prints one line per chain; the first broken record of a broken chain.
    async fn verify(args: &AuditStoreArgs) -> anyhow::Result<ExitCode> {
        let store = open(args).await?;
        let streams = store.audit_streams().await.context("listing audit chains")?;
        if streams.is_empty() {
            println!("no audit records");
        }
        let mut all_ok = true;
        'chains: for (account, region) in streams {
            let mut prev_hash = AUDIT_GENESIS_HASH.to_string();
            let mut after_seq = 0;
            let mut count: u64 = 0;
            loop {
                let page = store
                    .audit_chain(&account, &region, after_seq, PAGE)
                    .await
                    .with_context(|| format!("reading the chain {account} {region}"))?;
                let Some(last) = page.last() else { break };
                if let Err(chain_break) = verify_chain(&page, &prev_hash) {
                    println!("broken: {account} {region}: {chain_break}");
                    all_ok = false;
                    continue 'chains;
                }
                prev_hash = last.hash.clone();
                after_seq = last.seq;
                count += page.len() as u64;
            }
            println!("ok: {account} {region}: {count} records, head {prev_hash}");
        }
        store.close().await;
        Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }

    /// JSON Lines: each stored record_json as it is, except that line breaks (which valid JSON
    /// can only hold as whitespace between tokens) become spaces, so each record is one line.
    async fn export(args: &AuditExportArgs) -> anyhow::Result<()> {
        let store = open(&args.store).await?;
        let to_stdout = args.output.as_os_str() == "-";
        let mut out: Box<dyn Write> = if to_stdout {
            Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
        } else {
            Box::new(std::io::BufWriter::new(create_private(&args.output)?))
        };
        let result = write_all(&*store, &mut out).await;
        let result = result.and_then(|()| out.flush().map_err(anyhow::Error::from));
        store.close().await;
        match result {
            // A reader that stopped early (`| head`) is not an error.
            Err(e) if !to_stdout || !is_broken_pipe(&e) => Err(e.context(format!("writing {}", args.output.display()))),
            _ => Ok(()),
        }
    }

    async fn write_all(store: &dyn Store, out: &mut dyn Write) -> anyhow::Result<()> {
        for (account, region) in store.audit_streams().await.context("listing audit chains")? {
            let mut after_seq = 0;
            loop {
                let page = store
                    .audit_chain(&account, &region, after_seq, PAGE)
                    .await
                    .with_context(|| format!("reading the chain {account} {region}"))?;
                let Some(last) = page.last() else { break };
                after_seq = last.seq;
                for stored in &page {
                    let json = &stored.record.record_json;
                    if json.contains(['\n', '\r']) {
                        writeln!(out, "{}", json.replace(['\n', '\r'], " "))?;
                    } else {
                        writeln!(out, "{json}")?;
                    }
                }
            }
        }
        Ok(())
    }

    fn is_broken_pipe(e: &anyhow::Error) -> bool {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Creates or truncates `path`, readable by its owner only (the records name users, keys
    /// and machines).
    fn create_private(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).with_context(|| format!("creating {}", path.display()))
    }
}
