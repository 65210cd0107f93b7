//! `corral-load`: a small load generator for a running Corral server.
//!
//! It sends SigV4-signed AWS API calls over keep-alive HTTPS connections from N concurrent
//! workers for a fixed time and reports requests per second and latency percentiles. Every
//! request is signed afresh, as a real client does. Traffic goes only to the endpoint given
//! (normally loopback), and the run ends by itself after `--duration`.
//!
//! `--call run-command` is different: it starts real agents and times Run Command round trips
//! (see `run_command.rs`).
#![forbid(unsafe_code)]

mod run_command;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(name = "corral-load", about = "Drive a Corral server with signed API calls and measure throughput")]
struct Cli {
    /// The server's data dir: the endpoint, CA and admin key are read from its aws-config and
    /// aws-credentials files.
    #[arg(long, default_value = "./corral-data")]
    data_dir: PathBuf,
    /// Concurrent workers (each keeps its requests on keep-alive connections).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to measure, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up before measuring, in seconds (connections are opened then).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// The call to make.
    #[arg(long, value_enum, default_value_t = Call::GetServiceSetting)]
    call: Call,
    /// With `--call register`: how many registrations to prepare activations for.
    #[arg(long, default_value_t = 50_000)]
    budget: usize,
    /// With `--call run-command`: how many real agents to register and run.
    #[arg(long, default_value_t = 1)]
    agents: usize,
    /// With `--call run-command`: the agent binary [default: corral-agent beside corral-load].
    #[arg(long, value_name = "PATH")]
    agent_bin: Option<PathBuf>,
    /// With `--call run-command`: how many commands to time, one after another.
    #[arg(long, default_value_t = 10)]
    commands: usize,
    /// With `--call run-command`: where the agents' state dirs and logs go [default: a temp
    /// dir, removed after a successful run].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// With `--call run-command`: the server's process ID, to report its resident memory
    /// (Linux /proc) before the agents start and once they are connected.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Call {
    /// SSM GetServiceSetting for the activation tier (AWS JSON 1.1).
    GetServiceSetting,
    /// STS GetCallerIdentity (Query).
    GetCallerIdentity,
    /// A machine registration: RegisterManagedInstance (anonymous) then its first
    /// RequestManagedInstanceRoleToken (RSA-signed). Switches the account to the advanced tier
    /// and creates a role and activations first. One key pair serves every simulated machine:
    /// key generation is the agent's cost, not the server's.
    Register,
    /// Run Command round trips: registers and runs `--agents` real corral-agent processes,
    /// then times `--commands` SendCommand calls (`echo hi` on every agent at once) until
    /// ListCommands shows each terminal. Ignores --concurrency, --duration and --warmup.
    RunCommand,
}

/// What registration calls need: activations with room, and a machine key.
struct Registration {
    activations: Vec<(String, String)>,
    next: std::sync::atomic::AtomicUsize,
    key: rsa::PrivateKey,
    public_key: String,
}

/// Registrations one activation allows (AWS's maximum).
const PER_ACTIVATION: usize = 1000;

struct Target {
    registration: Option<Registration>,
    endpoint: String,
    host: String,
    region: String,
    creds: corral_wire::sigv4::Credentials,
    client: reqwest::Client,
}

fn ini_value(text: &str, key: &str) -> Option<String> {
    text.lines().filter_map(|l| l.split_once('=')).find(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_string())
}

fn load_target(data_dir: &Path, concurrency: usize) -> anyhow::Result<Target> {
    let config = std::fs::read_to_string(data_dir.join("aws-config")).context("reading aws-config")?;
    let creds = std::fs::read_to_string(data_dir.join("aws-credentials")).context("reading aws-credentials")?;
    let endpoint = ini_value(&config, "endpoint_url").context("endpoint_url missing from aws-config")?;
    let region = ini_value(&config, "region").unwrap_or_else(|| "us-east-1".into());
    let host = endpoint.trim_start_matches("https://").trim_end_matches('/').to_string();
    let mut builder = reqwest::Client::builder().pool_max_idle_per_host(concurrency).timeout(Duration::from_secs(30));
    if let Some(ca) = ini_value(&config, "ca_bundle") {
        let pem = std::fs::read(&ca).with_context(|| format!("reading {ca}"))?;
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem)?]);
    }
    Ok(Target {
        registration: None,
        endpoint,
        host,
        region,
        creds: corral_wire::sigv4::Credentials {
            access_key_id: ini_value(&creds, "aws_access_key_id").context("no aws_access_key_id")?,
            secret_access_key: ini_value(&creds, "aws_secret_access_key").context("no aws_secret_access_key")?,
            session_token: None,
        },
        client: builder.build()?,
    })
}

/// Sends one signed (or, with `creds: None`, unsigned) JSON call to SSM; returns the body.
async fn ssm_call(target: &Target, op: &str, body: &str, sign: Signing<'_>) -> anyhow::Result<serde_json::Value> {
    let mut headers = http::HeaderMap::new();
    headers.insert("host", target.host.parse()?);
    headers.insert("content-type", "application/x-amz-json-1.1".parse()?);
    headers.insert("x-amz-target", format!("AmazonSSM.{op}").parse()?);
    let now = time::OffsetDateTime::now_utc();
    match sign {
        Signing::None => {}
        Signing::Admin => corral_wire::sigv4::sign_request(
            "POST",
            "/",
            "",
            &mut headers,
            body.as_bytes(),
            &target.creds,
            &target.region,
            "ssm",
            now,
        )?,
        Signing::Instance(id, key) => corral_wire::sigv4::sign_request_rsa(
            "POST",
            "/",
            "",
            &mut headers,
            body.as_bytes(),
            id,
            key,
            &target.region,
            now,
        )?,
    }
    headers.remove("host");
    let resp =
        target.client.post(format!("{}/", target.endpoint)).headers(headers).body(body.to_string()).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{op}: HTTP {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// How an SSM call is signed.
enum Signing<'a> {
    None,
    Admin,
    Instance(&'a str, &'a rsa::PrivateKey),
}

/// An IAM Query call signed with the admin key: the HTTP status and the body.
async fn iam_call(target: &Target, form: &str) -> anyhow::Result<(http::StatusCode, String)> {
    let mut headers = http::HeaderMap::new();
    headers.insert("host", target.host.parse()?);
    headers.insert("content-type", "application/x-www-form-urlencoded; charset=utf-8".parse()?);
    let body = format!("{form}&Version=2010-05-08");
    let now = time::OffsetDateTime::now_utc();
    corral_wire::sigv4::sign_request(
        "POST",
        "/",
        "",
        &mut headers,
        body.as_bytes(),
        &target.creds,
        &target.region,
        "iam",
        now,
    )?;
    headers.remove("host");
    let resp = target.client.post(format!("{}/", target.endpoint)).headers(headers).body(body).send().await?;
    let status = resp.status();
    Ok((status, resp.text().await?))
}

/// Percent-encodes everything but ASCII letters and digits (valid in a form value).
fn form_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Prepares registrations: advanced tier (no 1,000 cap), a role trusting SSM, activations.
async fn prepare_registration(target: &Target, budget: usize) -> anyhow::Result<Registration> {
    ssm_call(
        target,
        "UpdateServiceSetting",
        r#"{"SettingId":"/ssm/managed-instance/activation-tier","SettingValue":"advanced"}"#,
        Signing::Admin,
    )
    .await?;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    // An existing role from an earlier run is fine.
    iam_call(
        target,
        &format!("Action=CreateRole&RoleName=CorralLoadRole&AssumeRolePolicyDocument={}", form_encode(trust)),
    )
    .await?;
    let mut activations = Vec::new();
    for _ in 0..budget.div_ceil(PER_ACTIVATION) {
        let out = ssm_call(
            target,
            "CreateActivation",
            &format!(r#"{{"IamRole":"CorralLoadRole","RegistrationLimit":{PER_ACTIVATION}}}"#),
            Signing::Admin,
        )
        .await?;
        let id = out["ActivationId"].as_str().context("no ActivationId")?.to_string();
        let code = out["ActivationCode"].as_str().context("no ActivationCode")?.to_string();
        activations.push((id, code));
    }
    let key = corral_wire::keys::generate_rsa_2048()?;
    let public_key = corral_wire::keys::public_key_to_spki_base64(&key.to_public_key());
    Ok(Registration { activations, next: std::sync::atomic::AtomicUsize::new(0), key, public_key })
}

async fn register_once(target: &Target) -> anyhow::Result<()> {
    let reg = target.registration.as_ref().context("registration not prepared")?;
    let n = reg.next.fetch_add(1, Ordering::Relaxed);
    let (id, code) = reg.activations.get(n / PER_ACTIVATION).context("registration budget used up; raise --budget")?;
    let body = serde_json::json!({
        "ActivationCode": code, "ActivationId": id, "PublicKey": reg.public_key,
        "PublicKeyType": "Rsa", "Fingerprint": "corral-load"
    });
    let out = ssm_call(target, "RegisterManagedInstance", &body.to_string(), Signing::None).await?;
    let instance_id = out["InstanceId"].as_str().context("no InstanceId")?.to_string();
    let out = ssm_call(
        target,
        "RequestManagedInstanceRoleToken",
        r#"{"Fingerprint":"corral-load"}"#,
        Signing::Instance(&instance_id, &reg.key),
    )
    .await?;
    out["AccessKeyId"].as_str().context("no AccessKeyId")?;
    Ok(())
}

async fn one_call(target: &Target, call: Call) -> anyhow::Result<()> {
    match call {
        Call::Register => return register_once(target).await,
        Call::RunCommand => bail!("run-command is not a request-rate call"),
        Call::GetServiceSetting | Call::GetCallerIdentity => {}
    }
    let mut headers = http::HeaderMap::new();
    headers.insert("host", target.host.parse()?);
    let (body, service): (&[u8], &str) = match call {
        Call::GetServiceSetting => {
            headers.insert("content-type", "application/x-amz-json-1.1".parse()?);
            headers.insert("x-amz-target", "AmazonSSM.GetServiceSetting".parse()?);
            (br#"{"SettingId": "/ssm/managed-instance/activation-tier"}"#, "ssm")
        }
        Call::GetCallerIdentity => {
            headers.insert("content-type", "application/x-www-form-urlencoded; charset=utf-8".parse()?);
            (b"Action=GetCallerIdentity&Version=2011-06-15", "sts")
        }
        Call::Register | Call::RunCommand => bail!("handled above"),
    };
    corral_wire::sigv4::sign_request(
        "POST",
        "/",
        "",
        &mut headers,
        body,
        &target.creds,
        &target.region,
        service,
        time::OffsetDateTime::now_utc(),
    )?;
    headers.remove("host");
    let resp = target.client.post(format!("{}/", target.endpoint)).headers(headers).body(body.to_vec()).send().await?;
    let status = resp.status();
    let _ = resp.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut target = load_target(&cli.data_dir, cli.concurrency)?;
    if let Call::RunCommand = cli.call {
        let options = run_command::Options {
            data_dir: cli.data_dir.clone(),
            agents: cli.agents,
            agent_bin: cli.agent_bin.clone(),
            commands: cli.commands,
            work_dir: cli.work_dir.clone(),
            server_pid: cli.server_pid,
        };
        return run_command::run(target, options).await;
    }
    if let Call::Register = cli.call {
        target.registration = Some(prepare_registration(&target, cli.budget).await?);
    }
    let target = Arc::new(target);
    one_call(&target, cli.call).await.context("a first call failed; is the server up?")?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..cli.concurrency.max(1) {
        let (target, measuring, stop) = (target.clone(), measuring.clone(), stop.clone());
        let call = cli.call;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let ok = one_call(&target, call).await.is_ok();
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        latencies.push(start.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(cli.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(cli.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await?;
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| -> Duration {
        if all.is_empty() {
            return Duration::ZERO;
        }
        all[((all.len() as f64 - 1.0) * p).round() as usize]
    };
    println!(
        "call={} concurrency={} duration={:.1}s requests={} errors={} rps={:.0} p50={:.2}ms p99={:.2}ms",
        match cli.call {
            Call::GetServiceSetting => "GetServiceSetting",
            Call::GetCallerIdentity => "GetCallerIdentity",
            Call::Register => "Register+RoleToken",
            Call::RunCommand => "RunCommand",
        },
        cli.concurrency,
        elapsed.as_secs_f64(),
        all.len(),
        errors,
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
    Ok(())
}
