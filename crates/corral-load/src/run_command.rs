//! `--call run-command`: Run Command latency against real agents.
//!
//! Creates a role and an activation through the API (signed with the admin key), registers N
//! real `corral-agent` processes and runs them, waits until a warm-up command reaches every one
//! of them, then times K commands one after another: from just before `SendCommand` until
//! `ListCommands` first shows the command in a terminal status. With `--server-pid` it also
//! reads the server's resident memory before the agents start and once they are all connected
//! and idle. Every child process is killed when the run ends, however it ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::{form_encode, iam_call, ini_value, ssm_call, Signing, Target};

/// The role the agents act with.
const ROLE: &str = "CorralLoadAgentRole";
/// Registrations at once (each generates an RSA key: CPU-bound).
const REGISTER_PARALLELISM: usize = 8;
/// How long all agents get to become reachable.
const WARMUP_LIMIT: Duration = Duration::from_secs(120);
/// How long one timed command may take before it is cancelled and counted as not Success.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// How often a command's status is read.
const POLL: Duration = Duration::from_millis(20);
/// How long the agents sit idle before the server's memory is read: longer than the agents'
/// HTTP keep-alive (30 s, reaped up to 30 s later), so the connections left are their control
/// channels alone.
const SETTLE: Duration = Duration::from_secs(70);
/// Registrations one activation allows (AWS's maximum); more agents are not supported here.
const MAX_AGENTS: usize = 1000;
/// Command statuses that do not change any more.
const TERMINAL: &[&str] = &["Success", "Failed", "TimedOut", "Cancelled"];

/// The options of `--call run-command`.
pub struct Options {
    pub data_dir: PathBuf,
    pub agents: usize,
    pub agent_bin: Option<PathBuf>,
    pub commands: usize,
    pub work_dir: Option<PathBuf>,
    pub server_pid: Option<u32>,
}

/// Runs the benchmark; Ctrl-C or SIGTERM stops it (and its agents) early.
pub async fn run(target: Target, options: Options) -> anyhow::Result<()> {
    if options.agents == 0 || options.agents > MAX_AGENTS {
        bail!("--agents must be between 1 and {MAX_AGENTS}");
    }
    if options.commands == 0 {
        bail!("--commands must be at least 1");
    }
    let (work_dir, temporary) = match &options.work_dir {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("corral-load-{}", std::process::id())), true),
    };
    std::fs::create_dir_all(&work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
    let outcome = tokio::select! {
        r = bench(Arc::new(target), &options, &work_dir) => r,
        s = stop_signal() => Err(anyhow::anyhow!("stopped by {s}")),
    };
    // The agents are dead by now: `bench`'s guard was dropped when it ended or was cancelled.
    match &outcome {
        Ok(()) if temporary => {
            let _ = std::fs::remove_dir_all(&work_dir);
        }
        Ok(()) => {}
        // Nothing worth keeping if the run stopped before the first agent was registered.
        Err(_) if temporary && std::fs::remove_dir(&work_dir).is_ok() => {}
        Err(_) => eprintln!("agent state and logs kept in {}", work_dir.display()),
    }
    outcome
}

async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The running `corral-agent run` processes; dropping this kills and reaps them all.
struct Agents {
    children: Vec<(Child, PathBuf)>,
}

impl Agents {
    /// Fails if an agent has exited, with the end of its log.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (child, log) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!("an agent exited ({status}); the end of {}:\n{}", log.display(), tail(log, 20));
            }
        }
        Ok(())
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            let _ = child.kill();
        }
        for (child, _) in &mut self.children {
            let _ = child.wait();
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

async fn bench(target: Arc<Target>, options: &Options, work_dir: &Path) -> anyhow::Result<()> {
    let n = options.agents;
    let agent_bin = match &options.agent_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("finding corral-load's own path")?
            .parent()
            .context("corral-load has no parent directory")?
            .join(format!("corral-agent{}", std::env::consts::EXE_SUFFIX)),
    };
    if !agent_bin.is_file() {
        bail!(
            "no agent binary at {}; build it (cargo build --release -p corral-agent) or pass --agent-bin",
            agent_bin.display()
        );
    }
    let ca_bundle = {
        let config = std::fs::read_to_string(options.data_dir.join("aws-config")).context("reading aws-config")?;
        ini_value(&config, "ca_bundle").map(PathBuf::from).unwrap_or_else(|| options.data_dir.join("ca.pem"))
    };

    // `InstanceIds *` addresses every instance of the account: there must be none but ours.
    let existing = ssm_call(&target, "DescribeInstanceInformation", r#"{"MaxResults":5}"#, Signing::Admin).await?;
    if existing["InstanceInformationList"].as_array().is_some_and(|l| !l.is_empty()) {
        bail!(
            "the account already has managed instances (from an earlier run?); the commands target every \
             instance, so start the server with a fresh --data-dir"
        );
    }

    // Setup: a role the agents act with, and one activation for all of them.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (status, body) = iam_call(
        &target,
        &format!("Action=CreateRole&RoleName={ROLE}&AssumeRolePolicyDocument={}", form_encode(trust)),
    )
    .await?;
    if !status.is_success() && !body.contains("EntityAlreadyExists") {
        bail!("CreateRole: HTTP {status}: {body}");
    }
    let policy = form_encode("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore");
    let (status, body) =
        iam_call(&target, &format!("Action=AttachRolePolicy&RoleName={ROLE}&PolicyArn={policy}")).await?;
    if !status.is_success() {
        bail!("AttachRolePolicy: HTTP {status}: {body}");
    }
    let activation = ssm_call(
        &target,
        "CreateActivation",
        &json!({"IamRole": ROLE, "RegistrationLimit": n, "Description": "corral-load run-command"}).to_string(),
        Signing::Admin,
    )
    .await?;
    let activation_id = activation["ActivationId"].as_str().context("CreateActivation: no ActivationId")?.to_string();
    let activation_code =
        activation["ActivationCode"].as_str().context("CreateActivation: no ActivationCode")?.to_string();

    // Register N agents, a few at a time.
    let began = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(REGISTER_PARALLELISM));
    let mut registrations = tokio::task::JoinSet::new();
    for k in 0..n {
        let state_dir = work_dir.join(format!("agent{k}"));
        let mut command = tokio::process::Command::new(&agent_bin);
        command
            .args(["register", "--force", "--code", &activation_code, "--id", &activation_id])
            .args(["--region", &target.region, "--endpoint", &target.endpoint])
            .arg("--ca-bundle")
            .arg(&ca_bundle)
            .arg("--state-dir")
            .arg(&state_dir)
            .env_remove("CORRAL_AGENT_STATE_DIR")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let permits = permits.clone();
        registrations.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let out = command.output().await.context("starting corral-agent register")?;
            if !out.status.success() {
                bail!("corral-agent register ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
            }
            anyhow::Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        });
    }
    while let Some(result) = registrations.join_next().await {
        let instance_id = result??;
        if !instance_id.starts_with("mi-") {
            bail!("corral-agent register printed {instance_id:?}, not an instance ID");
        }
    }
    eprintln!("registered {n} agents in {:.1} s", began.elapsed().as_secs_f64());

    let rss_before = options.server_pid.map(rss_kib).transpose()?;

    // Start them; from here on the guard kills them whatever happens.
    let mut agents = Agents { children: Vec::with_capacity(n) };
    for k in 0..n {
        let state_dir = work_dir.join(format!("agent{k}"));
        let log_path = work_dir.join(format!("agent{k}.log"));
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = std::process::Command::new(&agent_bin)
            .args(["run", "--ping-interval-secs", "300", "--state-dir"])
            .arg(&state_dir)
            .env_remove("CORRAL_AGENT_STATE_DIR")
            .env("CORRAL_AGENT_RECONNECT_MIN_MS", "200")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", agent_bin.display()))?;
        agents.children.push((child, log_path));
    }

    // Warm-up: one command to every instance, again until it reaches all N.
    let began = Instant::now();
    let deadline = began + WARMUP_LIMIT;
    loop {
        let id = send_command(&target, "echo warm").await?;
        match wait_terminal(&target, &id, deadline, Some(&mut agents), &mut Vec::new()).await? {
            Some(c) if c.status == "Success" && c.target_count == n as u64 => break,
            Some(c) if Instant::now() < deadline => {
                eprintln!(
                    "warm-up command ended {} ({} of {} targets completed); again",
                    c.status, c.completed, c.target_count
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some(c) => bail!(
                "warm-up: the last command ended {} with {} of {} targets completed; not all {n} agents reachable \
                 in {} s",
                c.status,
                c.completed,
                c.target_count,
                WARMUP_LIMIT.as_secs()
            ),
            None => {
                let c = command_state(&target, &id).await.ok();
                cancel(&target, &id).await;
                bail!(
                    "warm-up: not all {n} agents reachable in {} s (last command {id}: {})",
                    WARMUP_LIMIT.as_secs(),
                    c.map(|c| format!("{}, {} of {} targets completed", c.status, c.completed, c.target_count))
                        .unwrap_or_else(|| "status unknown".into())
                );
            }
        }
    }
    eprintln!("all {n} agents reachable after {:.1} s", began.elapsed().as_secs_f64());

    let rss_idle = match options.server_pid {
        Some(pid) => {
            tokio::time::sleep(SETTLE).await;
            agents.check_alive()?;
            Some(rss_kib(pid)?)
        }
        None => None,
    };

    // The timed commands, one after another.
    let mut latencies = Vec::with_capacity(options.commands);
    let mut sends = Vec::with_capacity(options.commands);
    let mut polls = Vec::new();
    let mut not_success = Vec::new();
    for _ in 0..options.commands {
        let start = Instant::now();
        let id = send_command(&target, "echo hi").await?;
        sends.push(start.elapsed());
        match wait_terminal(&target, &id, start + COMMAND_LIMIT, None, &mut polls).await? {
            Some(c) => {
                latencies.push(start.elapsed());
                if c.status != "Success" || c.target_count != n as u64 {
                    not_success.push(format!(
                        "{id}: {} ({}), {} of {} targets completed, {} errors",
                        c.status, c.details, c.completed, c.target_count, c.errors
                    ));
                }
            }
            None => {
                cancel(&target, &id).await;
                not_success.push(format!("{id}: not finished after {} s; cancelled", COMMAND_LIMIT.as_secs()));
            }
        }
    }
    agents.check_alive()?;
    let rss_after = options.server_pid.map(rss_kib).transpose()?;

    for v in [&mut latencies, &mut sends, &mut polls] {
        v.sort();
    }
    println!(
        "call=RunCommand agents={n} commands={} finished={} min={:.1}ms p50={:.1}ms p90={:.1}ms max={:.1}ms not_success={}",
        options.commands,
        latencies.len(),
        ms(&latencies, 0.0),
        ms(&latencies, 0.5),
        ms(&latencies, 0.9),
        ms(&latencies, 1.0),
        not_success.len()
    );
    // What the figures above include: the SendCommand call, and polling whose granularity is
    // POLL plus one ListCommands round trip.
    println!(
        "of which: SendCommand call p50={:.1}ms max={:.1}ms; ListCommands poll ({} polls, every {}ms) p50={:.1}ms max={:.1}ms",
        ms(&sends, 0.5),
        ms(&sends, 1.0),
        polls.len(),
        POLL.as_millis(),
        ms(&polls, 0.5),
        ms(&polls, 1.0)
    );
    for line in &not_success {
        println!("not success: {line}");
    }
    if let (Some(before), Some(idle), Some(after)) = (rss_before, rss_idle, rss_after) {
        println!(
            "server RSS: before agents={:.1}MiB agents connected+idle={:.1}MiB after commands={:.1}MiB",
            before as f64 / 1024.0,
            idle as f64 / 1024.0,
            after as f64 / 1024.0
        );
        println!(
            "server memory per connected agent: {:.1}KiB ((idle - before) / {n})",
            (idle as f64 - before as f64) / n as f64
        );
    }
    drop(agents);
    Ok(())
}

/// The `p` quantile of sorted durations, in milliseconds (nearest rank).
fn ms(sorted: &[Duration], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        len => sorted[((len as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0,
    }
}

/// A command's roll-up as `ListCommands` shows it.
struct CommandState {
    status: String,
    details: String,
    target_count: u64,
    completed: u64,
    errors: u64,
}

async fn send_command(target: &Target, line: &str) -> anyhow::Result<String> {
    let body = json!({
        "DocumentName": "AWS-RunShellScript",
        "Parameters": {"commands": [line]},
        "Targets": [{"Key": "InstanceIds", "Values": ["*"]}],
        "MaxConcurrency": "100%",
        "MaxErrors": "100%",
        "Comment": "corral-load",
    });
    let out = ssm_call(target, "SendCommand", &body.to_string(), Signing::Admin).await?;
    Ok(out["Command"]["CommandId"].as_str().context("SendCommand: no Command.CommandId")?.to_string())
}

async fn command_state(target: &Target, id: &str) -> anyhow::Result<CommandState> {
    let out = ssm_call(target, "ListCommands", &json!({ "CommandId": id }).to_string(), Signing::Admin).await?;
    let c = out["Commands"].get(0).with_context(|| format!("ListCommands does not list {id}"))?;
    let count = |k: &str| c[k].as_u64().unwrap_or(0);
    Ok(CommandState {
        status: c["Status"].as_str().context("ListCommands: no Status")?.to_string(),
        details: c["StatusDetails"].as_str().unwrap_or_default().to_string(),
        target_count: count("TargetCount"),
        completed: count("CompletedCount"),
        errors: count("ErrorCount"),
    })
}

/// Polls until the command is terminal (`Some`) or `deadline` passes (`None`), adding each
/// ListCommands round trip to `polls`; with `agents`, also fails as soon as one has exited.
async fn wait_terminal(
    target: &Target,
    id: &str,
    deadline: Instant,
    mut agents: Option<&mut Agents>,
    polls: &mut Vec<Duration>,
) -> anyhow::Result<Option<CommandState>> {
    loop {
        let sent = Instant::now();
        let c = command_state(target, id).await?;
        polls.push(sent.elapsed());
        if TERMINAL.contains(&c.status.as_str()) {
            return Ok(Some(c));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        if let Some(a) = agents.as_deref_mut() {
            a.check_alive()?;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Best effort: a command left running would keep the agents busy after the run.
async fn cancel(target: &Target, id: &str) {
    let _ = ssm_call(target, "CancelCommand", &json!({ "CommandId": id }).to_string(), Signing::Admin).await;
}

/// The resident set of process `pid`, in KiB (Linux: `VmRSS` in /proc/<pid>/status).
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (--server-pid)"))?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).context("no VmRSS line")?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse().with_context(|| format!("VmRSS {line:?}"))
}
