//! Runs one script of a Run Command step as a child process and captures what it printed.
//!
//! The script's lines go to a file in the job's directory (0700, under the state directory) and
//! run with `sh <file>` on Unix, PowerShell `-File <file>.ps1` on Windows. On Unix the child
//! leads a process group of its own, so a timeout or a cancel kills everything the script
//! started (`kill(-pgid, SIGKILL)`), not just the shell. On Windows only the child is killed.
//!
//! stdout and stderr are read concurrently, each kept up to [`CAPTURE_LIMIT`] in memory; the
//! rest is read and dropped so the child never blocks on a full pipe. When the script's own
//! process has exited, what it left running in the background may still hold the pipes open:
//! the capture then stops after [`PIPE_GRACE`] and the pipes are drained (and forgotten) in the
//! background, so a daemon started with `&` neither holds up the reply nor dies of SIGPIPE.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::watch;

use crate::document::PluginKind;

/// How much of stdout (and, separately, stderr) is kept.
pub const CAPTURE_LIMIT: usize = 1 << 20;

/// The size of a reply's `output` field (stdout, the separator, stderr).
pub const OUTPUT_LIMIT: usize = 2500;

/// Between stdout and stderr in `output`.
pub const ERROR_SEPARATOR: &str = "\n----------ERROR-------\n";

/// How long to keep reading after the script's process exited, for output still in the pipes.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// The exit code reported for a timed-out script (as `timeout(1)` uses).
pub const TIMED_OUT_CODE: i64 = 124;

/// The exit code reported for a cancelled script (what SSM shows for cancelled invocations).
pub const CANCELLED_CODE: i64 = -1;

/// How a plugin ended, in the reply's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Exit code 0.
    Success,
    /// A non-zero exit, or the script could not be started.
    Failed,
    /// Ran past its `timeoutSeconds` and was killed.
    TimedOut,
    /// Cancelled, killed if it was running.
    Cancelled,
    /// Not run: a precondition did not hold, or an earlier step failed with `onFailure: exit`.
    Skipped,
}

impl Status {
    /// The status as replies spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "Success",
            Status::Failed => "Failed",
            Status::TimedOut => "TimedOut",
            Status::Cancelled => "Cancelled",
            Status::Skipped => "Skipped",
        }
    }

    /// Rank for aggregation: the SSM agent's precedence Failed > TimedOut > Cancelled > Success
    /// (and Skipped counts as Success).
    fn severity(self) -> u8 {
        match self {
            Status::Failed => 3,
            Status::TimedOut => 2,
            Status::Cancelled => 1,
            Status::Success | Status::Skipped => 0,
        }
    }

    /// The worse of two statuses.
    pub fn worst(self, other: Status) -> Status {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// A document's status from its plugins' (Success when there are none).
    pub fn aggregate(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses.into_iter().fold(Status::Success, |acc, s| match acc.worst(s) {
            Status::Skipped => Status::Success,
            other => other,
        })
    }
}

/// What one plugin (or one script of it) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// Its exit code ([`TIMED_OUT_CODE`], [`CANCELLED_CODE`] when killed; 1 when it never ran).
    pub code: i64,
    /// Captured stdout (at most [`CAPTURE_LIMIT`] bytes of it, plus a note when cut).
    pub stdout: String,
    /// Captured stderr, likewise.
    pub stderr: String,
    /// When it started.
    pub started: OffsetDateTime,
    /// When it ended.
    pub ended: OffsetDateTime,
}

impl Outcome {
    /// An outcome for a plugin that did not run.
    pub fn not_run(status: Status, code: i64, message: &str) -> Outcome {
        let now = OffsetDateTime::now_utc();
        let (stdout, stderr) = match status {
            Status::Skipped => (message.to_string(), String::new()),
            _ => (String::new(), message.to_string()),
        };
        Outcome { status, code, stdout, stderr, started: now, ended: now }
    }

    /// Appends a later script's outcome (schema 1.x plugins with several `properties`).
    pub fn merge(&mut self, next: Outcome) {
        self.status = self.status.worst(next.status);
        if next.code != 0 {
            self.code = next.code;
        }
        self.stdout.push_str(&next.stdout);
        self.stderr.push_str(&next.stderr);
        self.ended = next.ended;
    }

    /// The reply's `output`: stdout, then the separator and stderr when there is any, cut to
    /// [`OUTPUT_LIMIT`] bytes.
    pub fn output(&self) -> String {
        combined_output(&self.stdout, &self.stderr)
    }
}

/// stdout + [`ERROR_SEPARATOR`] + stderr (the separator only with stderr), cut to
/// [`OUTPUT_LIMIT`] bytes on a character boundary.
pub fn combined_output(stdout: &str, stderr: &str) -> String {
    let mut out = String::with_capacity((stdout.len() + stderr.len()).min(OUTPUT_LIMIT) + ERROR_SEPARATOR.len());
    out.push_str(cut_utf8(stdout, OUTPUT_LIMIT));
    if !stderr.is_empty() && out.len() < OUTPUT_LIMIT {
        out.push_str(ERROR_SEPARATOR);
        out.push_str(stderr);
    }
    let keep = cut_utf8(&out, OUTPUT_LIMIT).len();
    out.truncate(keep);
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn cut_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Captured bytes as text: cut where a multi-byte character was split by the limit, invalid
/// UTF-8 replaced, and a last line saying how much was dropped.
fn captured_text(bytes: &[u8], total: u64) -> String {
    let mut text = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        // An incomplete character at the very end (error_len None) is where the limit cut.
        Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
        Err(_) => {
            let lossy = String::from_utf8_lossy(bytes);
            match lossy.strip_suffix('\u{FFFD}') {
                Some(rest) if (bytes.len() as u64) < total => rest.to_string(),
                _ => lossy.into_owned(),
            }
        }
    };
    if total > bytes.len() as u64 {
        text.push_str(&format!("\n--output truncated: {total} bytes in all, the first {} kept--\n", bytes.len()));
    }
    text
}

/// A script to run.
#[derive(Debug, Clone)]
pub struct ScriptRun<'a> {
    /// What runs it.
    pub kind: PluginKind,
    /// Its lines.
    pub lines: &'a [String],
    /// `workingDirectory`, else `dir`.
    pub working_directory: Option<&'a str>,
    /// When to kill it.
    pub timeout: Duration,
    /// The job's directory: the script file goes here, and it is the default working directory.
    pub dir: &'a Path,
    /// Base name of the script file (unique within the job).
    pub file_stem: &'a str,
    /// Extra environment (`AWS_SSM_INSTANCE_ID`, `AWS_SSM_REGION_NAME`).
    pub env: &'a [(String, String)],
}

/// Runs `script` until it exits, times out or `cancel` turns true.
pub async fn run(script: &ScriptRun<'_>, cancel: &mut watch::Receiver<bool>) -> Outcome {
    let started = OffsetDateTime::now_utc();
    if *cancel.borrow() {
        return Outcome::not_run(Status::Cancelled, CANCELLED_CODE, "");
    }
    let failed = |message: String| Outcome { stderr: message, ..Outcome::not_run(Status::Failed, 1, "") };
    let (program, args, file) = match command_line(script.kind, script.dir, script.file_stem) {
        Ok(c) => c,
        Err(message) => return failed(message),
    };
    if let Err(e) = write_script(&file, script.kind, script.lines) {
        return failed(format!("cannot write the script file {}: {e}", file.display()));
    }
    let cwd = match script.working_directory {
        Some(dir) => {
            let path = PathBuf::from(dir);
            if !path.is_dir() {
                return failed(format!("the working directory {dir} does not exist or is not a directory"));
            }
            path
        }
        None => script.dir.to_path_buf(),
    };

    let mut command = tokio::process::Command::new(&program);
    command
        .args(&args)
        .current_dir(&cwd)
        .envs(script.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start {}: {e}", program.display())),
    };
    let pid = child.id();
    // If this future is dropped while the script runs (the agent is stopping), the whole group
    // goes with it, not only the direct child that `kill_on_drop` covers.
    let mut guard = GroupGuard { pid, armed: true };
    let stdout = Arc::new(Mutex::new(Capture::default()));
    let stderr = Arc::new(Mutex::new(Capture::default()));
    let readers = [
        child.stdout.take().map(|pipe| tokio::spawn(drain(pipe, stdout.clone()))),
        child.stderr.take().map(|pipe| tokio::spawn(drain(pipe, stderr.clone()))),
    ];

    enum End {
        Exited(std::io::Result<ExitStatus>),
        TimedOut,
        Cancelled,
    }
    let end = tokio::select! {
        status = child.wait() => End::Exited(status),
        () = tokio::time::sleep(script.timeout) => End::TimedOut,
        () = cancelled(cancel) => End::Cancelled,
    };
    guard.armed = false;
    let (status, code) = match end {
        End::Exited(Ok(exit)) => match exit_code(exit) {
            0 => (Status::Success, 0),
            code => (Status::Failed, code),
        },
        End::Exited(Err(e)) => {
            stderr_note(&stderr, &format!("lost track of the script's process: {e}"));
            (Status::Failed, 1)
        }
        End::TimedOut => {
            kill_tree(&mut child, pid);
            let _ = child.wait().await;
            stderr_note(&stderr, &format!("timed out after {} s; the script was killed", script.timeout.as_secs()));
            (Status::TimedOut, TIMED_OUT_CODE)
        }
        End::Cancelled => {
            kill_tree(&mut child, pid);
            let _ = child.wait().await;
            (Status::Cancelled, CANCELLED_CODE)
        }
    };
    // Output still in the pipes arrives shortly; a background process holding them open does
    // not hold up the reply.
    let _ = tokio::time::timeout(PIPE_GRACE, async {
        for reader in readers.into_iter().flatten() {
            let _ = reader.await;
        }
    })
    .await;
    let (stdout, stderr) = (take_text(&stdout), take_text(&stderr));
    Outcome { status, code, stdout, stderr, started, ended: OffsetDateTime::now_utc() }
}

/// Completes when `cancel` turns true; never if its sender is gone.
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    total: u64,
    /// Set once the runner took the text: the reader only drains from then on.
    taken: bool,
    /// Notes from the agent (timeouts), appended after the captured text.
    notes: String,
}

async fn drain(mut pipe: impl AsyncRead + Unpin, capture: Arc<Mutex<Capture>>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Ok(mut c) = capture.lock() else { return };
        if c.taken {
            continue;
        }
        c.total += n as u64;
        let room = CAPTURE_LIMIT.saturating_sub(c.bytes.len());
        let keep = room.min(n);
        c.bytes.extend_from_slice(&buf[..keep]);
    }
}

fn stderr_note(capture: &Arc<Mutex<Capture>>, note: &str) {
    if let Ok(mut c) = capture.lock() {
        c.notes.push_str(note);
        c.notes.push('\n');
    }
}

fn take_text(capture: &Arc<Mutex<Capture>>) -> String {
    let Ok(mut c) = capture.lock() else { return String::new() };
    c.taken = true;
    let bytes = std::mem::take(&mut c.bytes);
    let mut text = captured_text(&bytes, c.total);
    if !c.notes.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&c.notes);
    }
    text
}

#[cfg(unix)]
fn exit_code(status: ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        // Killed by a signal: the shell's convention.
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => 1,
    }
}

#[cfg(not(unix))]
fn exit_code(status: ExitStatus) -> i64 {
    status.code().map(i64::from).unwrap_or(1)
}

/// Kills a script's process group when a run is abandoned midway.
struct GroupGuard {
    pid: Option<u32>,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if self.armed {
            if let Some(pgid) = self.pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) {
                kill_process_group(pgid);
            }
        }
        #[cfg(not(unix))]
        let _ = (self.pid, self.armed);
    }
}

/// Kills the script and, on Unix, everything in its process group.
fn kill_tree(child: &mut tokio::process::Child, pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) {
        kill_process_group(pgid);
    }
    #[cfg(not(unix))]
    let _ = pid;
    let _ = child.start_kill();
}

/// `kill(-pgid, SIGKILL)`. The one `unsafe` call outside the Windows service entry point: a
/// process group cannot be signalled through the standard library, and spawning `kill(1)` for
/// it would need a fork at the moment the machine may be short of processes.
#[cfg(unix)]
#[allow(unsafe_code)]
fn kill_process_group(pgid: i32) {
    // SAFETY: kill(2) takes two integers and touches no memory of ours; a group that is already
    // gone only makes it return ESRCH, which is fine here.
    let _ = unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// The interpreter, its arguments and the script file for `kind`.
fn command_line(kind: PluginKind, dir: &Path, stem: &str) -> Result<(PathBuf, Vec<String>, PathBuf), String> {
    match kind {
        PluginKind::Shell => {
            if cfg!(windows) {
                return Err("aws:runShellScript is not supported on Windows; use aws:runPowerShellScript".into());
            }
            let file = dir.join(format!("{stem}.sh"));
            Ok((PathBuf::from("sh"), vec![file.to_string_lossy().into_owned()], file))
        }
        PluginKind::PowerShell => {
            let file = dir.join(format!("{stem}.ps1"));
            let program = match find_on_path("pwsh") {
                Some(pwsh) => pwsh,
                None if cfg!(windows) => PathBuf::from("powershell"),
                None => {
                    return Err("aws:runPowerShellScript needs PowerShell (pwsh) on the PATH of corral-agent".into())
                }
            };
            let mut args: Vec<String> =
                ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File"].map(String::from).to_vec();
            args.push(file.to_string_lossy().into_owned());
            Ok((program, args, file))
        }
    }
}

/// `name` (with `.exe` on Windows) in a directory of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(&file)).find(|candidate| candidate.is_file())
}

fn write_script(file: &Path, kind: PluginKind, lines: &[String]) -> std::io::Result<()> {
    let mut text = String::new();
    if kind == PluginKind::PowerShell && cfg!(windows) {
        // Windows PowerShell reads a file without a byte-order mark in the ANSI code page.
        text.push('\u{FEFF}');
    }
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    crate::state::write_atomic(file, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_precedence() {
        use Status::*;
        assert_eq!(Status::aggregate([]), Success);
        assert_eq!(Status::aggregate([Success, Skipped]), Success);
        assert_eq!(Status::aggregate([Skipped]), Success);
        assert_eq!(Status::aggregate([Success, Cancelled]), Cancelled);
        assert_eq!(Status::aggregate([Cancelled, TimedOut, Success]), TimedOut);
        assert_eq!(Status::aggregate([TimedOut, Failed, Cancelled]), Failed);
    }

    #[test]
    fn output_is_cut_on_character_boundaries() {
        assert_eq!(combined_output("out\n", ""), "out\n");
        assert_eq!(combined_output("out\n", "err\n"), format!("out\n{ERROR_SEPARATOR}err\n"));
        assert_eq!(combined_output("", "err"), format!("{ERROR_SEPARATOR}err"));
        let long = "é".repeat(2000); // 4000 bytes
        let out = combined_output(&long, "boom");
        assert!(out.len() <= OUTPUT_LIMIT && out.len() >= OUTPUT_LIMIT - 1, "{}", out.len());
        assert!(!out.contains("ERROR"));
        let out = combined_output("short\n", &"ü".repeat(3000));
        assert!(out.len() <= OUTPUT_LIMIT && out.starts_with("short\n\n----------ERROR-------\nü"), "{}", out.len());
        assert_eq!(cut_utf8("aé", 2), "a");
        assert_eq!(cut_utf8("aé", 3), "aé");
    }

    #[test]
    fn captured_bytes_become_text() {
        assert_eq!(captured_text(b"hi\n", 3), "hi\n");
        // A character split by the limit is dropped, not turned into garbage.
        let bytes = "aé".as_bytes();
        assert_eq!(captured_text(&bytes[..2], 10), "a\n--output truncated: 10 bytes in all, the first 2 kept--\n");
        // Invalid bytes inside are replaced.
        assert_eq!(captured_text(b"a\xffb", 3), "a\u{FFFD}b");
    }

    #[cfg(unix)]
    mod processes {
        use super::super::*;
        use std::time::Instant;

        struct Job {
            _tmp: tempfile::TempDir,
            dir: PathBuf,
        }

        fn job() -> Job {
            let tmp = tempfile::tempdir().expect("temp dir");
            let dir = tmp.path().to_path_buf();
            Job { _tmp: tmp, dir }
        }

        async fn sh(job: &Job, lines: &[&str], timeout: Duration) -> Outcome {
            let (_tx, mut rx) = watch::channel(false);
            sh_with(job, lines, timeout, &mut rx).await
        }

        async fn sh_with(job: &Job, lines: &[&str], timeout: Duration, cancel: &mut watch::Receiver<bool>) -> Outcome {
            let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            let env = vec![("AWS_SSM_INSTANCE_ID".to_string(), "mi-0123456789abcdef0".to_string())];
            let run_ = ScriptRun {
                kind: PluginKind::Shell,
                lines: &lines,
                working_directory: None,
                timeout,
                dir: &job.dir,
                file_stem: "step-0-0",
                env: &env,
            };
            run(&run_, cancel).await
        }

        fn alive(pid: i32) -> bool {
            // Signal 0 is a liveness probe; a zombie (not yet reaped) counts as dead for us.
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
                Err(_) => false,
            }
        }

        #[tokio::test]
        async fn exit_codes_and_streams() {
            let job = job();
            let ok = sh(&job, &["echo hello", "echo \"$AWS_SSM_INSTANCE_ID\"", "pwd"], Duration::from_secs(20)).await;
            assert_eq!((ok.status, ok.code), (Status::Success, 0), "{ok:?}");
            let pwd = job.dir.canonicalize().expect("canonical");
            assert_eq!(ok.stdout, format!("hello\nmi-0123456789abcdef0\n{}\n", pwd.display()));
            assert_eq!(ok.stderr, "");
            assert_eq!(ok.output(), ok.stdout);
            assert!(ok.ended >= ok.started);

            let bad = sh(&job, &["echo out", "echo oops >&2", "exit 3"], Duration::from_secs(20)).await;
            assert_eq!((bad.status, bad.code), (Status::Failed, 3), "{bad:?}");
            assert_eq!(bad.stdout, "out\n");
            assert_eq!(bad.stderr, "oops\n");
            assert_eq!(bad.output(), "out\n\n----------ERROR-------\noops\n");

            // The script file is what ran, in the job's directory.
            let script = std::fs::read_to_string(job.dir.join("step-0-0.sh")).expect("script");
            assert_eq!(script, "echo out\necho oops >&2\nexit 3\n");
        }

        #[tokio::test]
        async fn working_directory() {
            let job = job();
            let other = tempfile::tempdir().expect("temp dir");
            let lines = vec!["pwd".to_string()];
            let (_tx, mut rx) = watch::channel(false);
            let dir = other.path().to_string_lossy().into_owned();
            let mut script = ScriptRun {
                kind: PluginKind::Shell,
                lines: &lines,
                working_directory: Some(&dir),
                timeout: Duration::from_secs(20),
                dir: &job.dir,
                file_stem: "s",
                env: &[],
            };
            let out = run(&script, &mut rx).await;
            assert_eq!(out.stdout.trim(), other.path().canonicalize().expect("canonical").to_string_lossy());
            script.working_directory = Some("/nonexistent/corral");
            let out = run(&script, &mut rx).await;
            assert_eq!((out.status, out.code), (Status::Failed, 1));
            assert!(out.stderr.contains("/nonexistent/corral"), "{out:?}");
        }

        #[tokio::test]
        async fn output_is_capped() {
            let job = job();
            // 3 MiB on stdout, 2 MiB on stderr, at the same time.
            let out = sh(
                &job,
                &["head -c 2097152 /dev/zero | tr '\\0' e >&2 &", "head -c 3145728 /dev/zero | tr '\\0' o", "wait"],
                Duration::from_secs(60),
            )
            .await;
            assert_eq!(out.status, Status::Success, "{}", &out.stderr[..100.min(out.stderr.len())]);
            assert!(out.stdout.starts_with(&"o".repeat(CAPTURE_LIMIT)));
            assert!(out.stdout.ends_with("--output truncated: 3145728 bytes in all, the first 1048576 kept--\n"));
            assert!(out.stderr.starts_with(&"e".repeat(CAPTURE_LIMIT)));
            assert!(out.stderr.contains("2097152 bytes in all"));
            let output = out.output();
            assert_eq!(output.len(), OUTPUT_LIMIT);
            assert!(output.bytes().all(|b| b == b'o'));
        }

        #[tokio::test]
        async fn timeout_kills_the_whole_group() {
            let job = job();
            let pid_file = job.dir.join("grandchild.pid");
            let start = Instant::now();
            let out = sh(
                &job,
                &[
                    &format!("sh -c 'sleep 300 & echo $! > {}; wait' &", pid_file.display()),
                    "echo started",
                    "sleep 300",
                ],
                Duration::from_secs(1),
            )
            .await;
            assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
            assert_eq!((out.status, out.code), (Status::TimedOut, TIMED_OUT_CODE), "{out:?}");
            assert!(out.stdout.starts_with("started\n"), "{out:?}");
            assert!(out.stderr.contains("timed out after 1 s"), "{out:?}");
            let grandchild: i32 = std::fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("a pid");
            // SIGKILL is delivered at once, but reaping by init may take a moment.
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(grandchild) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(!alive(grandchild), "the grandchild sleep {grandchild} survived the timeout");
        }

        #[tokio::test]
        async fn cancel_kills_the_script() {
            let job = job();
            let (tx, mut rx) = watch::channel(false);
            let start = Instant::now();
            let canceller = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = tx.send(true);
                tx
            });
            let out = sh_with(&job, &["echo begun", "sleep 300"], Duration::from_secs(600), &mut rx).await;
            assert_eq!((out.status, out.code), (Status::Cancelled, CANCELLED_CODE), "{out:?}");
            assert_eq!(out.stdout, "begun\n");
            assert!(start.elapsed() < Duration::from_secs(20));
            // Already cancelled: nothing runs.
            let _tx = canceller.await.expect("join");
            let out = sh_with(&job, &["touch ran"], Duration::from_secs(5), &mut rx).await;
            assert_eq!(out.status, Status::Cancelled);
            assert!(!job.dir.join("ran").exists());
        }

        #[tokio::test]
        async fn an_abandoned_run_kills_its_group() {
            let job = job();
            let pid_file = job.dir.join("grandchild.pid");
            let line = format!("sh -c 'sleep 300 & echo $! > {}; wait' &", pid_file.display());
            let lines = [line.as_str(), "sleep 300"];
            // The agent stopping drops the run midway.
            let dropped =
                tokio::time::timeout(Duration::from_secs(1), sh(&job, &lines, Duration::from_secs(600))).await;
            assert!(dropped.is_err());
            let grandchild: i32 = std::fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("a pid");
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(grandchild) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(!alive(grandchild), "the grandchild sleep {grandchild} survived");
        }

        #[tokio::test]
        async fn a_background_daemon_does_not_hold_up_the_result() {
            let job = job();
            let start = Instant::now();
            let out = sh(&job, &["sleep 5 &", "echo done"], Duration::from_secs(60)).await;
            assert_eq!(out.status, Status::Success);
            assert_eq!(out.stdout, "done\n");
            assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
        }

        #[tokio::test]
        async fn powershell_without_pwsh_fails_cleanly() {
            if find_on_path("pwsh").is_some() {
                return;
            }
            let job = job();
            let lines = vec!["Write-Output hi".to_string()];
            let (_tx, mut rx) = watch::channel(false);
            let script = ScriptRun {
                kind: PluginKind::PowerShell,
                lines: &lines,
                working_directory: None,
                timeout: Duration::from_secs(5),
                dir: &job.dir,
                file_stem: "ps",
                env: &[],
            };
            let out = run(&script, &mut rx).await;
            assert_eq!((out.status, out.code), (Status::Failed, 1));
            assert!(out.stderr.contains("pwsh"), "{out:?}");
        }
    }
}
