//! `corral-load`: a small load generator for a running Corral server.
//!
//! It sends SigV4-signed AWS API calls over keep-alive HTTPS connections from N concurrent
//! workers for a fixed time and reports requests per second and latency percentiles. Every
//! request is signed afresh, as a real client does. Traffic goes only to the endpoint given
//! (normally loopback), and the run ends by itself after `--duration`.
#![forbid(unsafe_code)]

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
}

#[derive(Clone, Copy, ValueEnum)]
enum Call {
    /// SSM GetServiceSetting for the activation tier (AWS JSON 1.1).
    GetServiceSetting,
    /// STS GetCallerIdentity (Query).
    GetCallerIdentity,
}

struct Target {
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

async fn one_call(target: &Target, call: Call) -> anyhow::Result<()> {
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
    let target = Arc::new(load_target(&cli.data_dir, cli.concurrency)?);
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
