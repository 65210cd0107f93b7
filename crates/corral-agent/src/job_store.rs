//! What the agent keeps on disk about Run Command jobs, so a restart neither runs a command
//! twice nor loses its result.
//!
//! Under the state directory (each directory 0700, each file 0600, written atomically):
//! - `jobs/<job id>.json`: every job seen, `accepted` until its final reply is stored, then
//!   `finished`; a redelivered job finds its record and is acknowledged as a duplicate.
//!   Finished records are pruned a day after they finished (the SSM agent keeps at least
//!   30 minutes).
//! - `replies/<time>_<message id>.json`: each reply that needs an `agent_job_reply_ack`, written
//!   before it is sent and deleted when the ack for its message id arrives; resent while it is
//!   younger than two hours.
//! - `run/<job id>/`: a running job's scripts, removed when the job ends (and at start).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::state::{write_atomic, StateDir};

/// Job records.
pub const JOBS_DIR: &str = "jobs";
/// Replies waiting for their ack.
pub const REPLIES_DIR: &str = "replies";
/// Scripts of running jobs.
pub const WORK_DIR: &str = "run";

/// How long a finished job's record is kept (duplicates are recognised this long).
pub const KEEP_JOBS: Duration = Duration::from_secs(24 * 3600);
/// How long an unacknowledged reply is resent (the SSM agent's limit).
pub const KEEP_REPLIES: Duration = Duration::from_secs(2 * 3600);

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Acknowledged and running (or queued); no final reply stored yet.
    Accepted,
    /// Its final reply is stored (or it needed none, e.g. a cancel job).
    Finished,
}

/// A job's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id, `aws.ssm.<CommandId>.<InstanceId>`.
    pub job_id: String,
    /// Its topic (`aws.ssm.sendCommand...`).
    pub topic: String,
    /// Where it stands.
    pub state: JobState,
    /// When it was accepted (epoch ms).
    pub accepted_at_ms: u64,
    /// When the record last changed (epoch ms).
    pub updated_at_ms: u64,
}

/// A stored reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReply {
    /// The `agent_job_reply` frame's message id (a lower-case UUID), the same on every resend.
    pub message_id: String,
    /// The job it answers.
    pub job_id: String,
    /// Whether it is the job's final reply.
    pub is_final: bool,
    /// When it was made (epoch ms, unique within a run so the order of replies is kept).
    pub created_at_ms: u64,
    /// The frame's payload (the `agent_job_reply` JSON).
    pub payload: String,
}

/// The job and reply files of one state directory.
#[derive(Debug)]
pub struct JobStore {
    root: PathBuf,
    last_ms: AtomicU64,
}

/// Milliseconds since the epoch by the wall clock.
pub fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl JobStore {
    /// Opens (creating) the job directories of `dir`; scripts left by a previous run are removed.
    pub fn open(dir: &StateDir) -> io::Result<JobStore> {
        dir.create()?;
        let store = JobStore { root: dir.path().to_path_buf(), last_ms: AtomicU64::new(0) };
        create_private_dir(&store.root.join(JOBS_DIR))?;
        create_private_dir(&store.root.join(REPLIES_DIR))?;
        let work = store.root.join(WORK_DIR);
        if work.exists() {
            let _ = fs::remove_dir_all(&work);
        }
        Ok(store)
    }

    /// A timestamp (epoch ms) later than every one handed out before by this store.
    pub fn next_ms(&self) -> u64 {
        let now = epoch_ms();
        let mut last = self.last_ms.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.last_ms.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    fn job_path(&self, job_id: &str) -> PathBuf {
        self.root.join(JOBS_DIR).join(format!("{}.json", file_key(job_id)))
    }

    /// The record of `job_id`. A damaged record reads as a finished job: running a command
    /// twice is worse than not running it.
    pub fn job(&self, job_id: &str) -> io::Result<Option<JobRecord>> {
        match fs::read(self.job_path(job_id)) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| JobRecord {
                job_id: job_id.to_string(),
                topic: String::new(),
                state: JobState::Finished,
                accepted_at_ms: 0,
                updated_at_ms: 0,
            }))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `record`.
    pub fn save_job(&self, record: &JobRecord) -> io::Result<()> {
        write_atomic(&self.job_path(&record.job_id), &serde_json::to_vec(record).map_err(io::Error::other)?)
    }

    /// Every readable job record.
    pub fn jobs(&self) -> io::Result<Vec<JobRecord>> {
        let mut out = Vec::new();
        for path in list(&self.root.join(JOBS_DIR))? {
            if let Ok(record) = fs::read(&path).map(|b| serde_json::from_slice::<JobRecord>(&b)) {
                match record {
                    Ok(record) => out.push(record),
                    Err(e) => tracing::warn!(file = %path.display(), error = %e, "ignoring a damaged job record"),
                }
            }
        }
        Ok(out)
    }

    /// Stores `reply` before it is sent.
    pub fn save_reply(&self, reply: &PendingReply) -> io::Result<()> {
        let name = format!("{}_{}.json", file_time(reply.created_at_ms), reply.message_id);
        write_atomic(&self.root.join(REPLIES_DIR).join(name), &serde_json::to_vec(reply).map_err(io::Error::other)?)
    }

    /// Deletes the reply with `message_id`; false when there is none (already acked, or unknown).
    pub fn remove_reply(&self, message_id: &str) -> io::Result<bool> {
        let suffix = format!("_{message_id}.json");
        let mut removed = false;
        for path in list(&self.root.join(REPLIES_DIR))? {
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(&suffix)) {
                fs::remove_file(&path)?;
                removed = true;
            }
        }
        Ok(removed)
    }

    /// The stored replies, oldest first. Replies older than [`KEEP_REPLIES`] and damaged files
    /// are deleted instead.
    pub fn replies(&self) -> io::Result<Vec<PendingReply>> {
        let cutoff = epoch_ms().saturating_sub(KEEP_REPLIES.as_millis() as u64);
        let mut out = Vec::new();
        for path in list(&self.root.join(REPLIES_DIR))? {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if name.starts_with('.') || !name.ends_with(".json") {
                continue; // a temp file of a write in progress
            }
            match fs::read(&path).map(|b| serde_json::from_slice::<PendingReply>(&b)) {
                Ok(Ok(reply)) if reply.created_at_ms >= cutoff => out.push(reply),
                Ok(Ok(reply)) => {
                    tracing::warn!(job_id = %reply.job_id, "dropping a reply the control plane did not acknowledge for two hours");
                    let _ = fs::remove_file(&path);
                }
                Ok(Err(e)) => {
                    tracing::warn!(file = %path.display(), error = %e, "deleting a damaged stored reply");
                    let _ = fs::remove_file(&path);
                }
                Err(_) => {}
            }
        }
        out.sort_by(|a, b| (a.created_at_ms, &a.message_id).cmp(&(b.created_at_ms, &b.message_id)));
        Ok(out)
    }

    /// Deletes finished job records older than [`KEEP_JOBS`].
    pub fn prune(&self) {
        let cutoff = epoch_ms().saturating_sub(KEEP_JOBS.as_millis() as u64);
        let Ok(paths) = list(&self.root.join(JOBS_DIR)) else { return };
        for path in paths {
            let Ok(bytes) = fs::read(&path) else { continue };
            match serde_json::from_slice::<JobRecord>(&bytes) {
                Ok(r) if r.state == JobState::Finished && r.updated_at_ms < cutoff => {
                    let _ = fs::remove_file(&path);
                }
                Ok(_) => {}
                // Damaged records go once they are old by the file's own clock.
                Err(_) => {
                    let old = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > KEEP_JOBS);
                    if old {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
    }

    /// Creates the directory for `job_id`'s scripts.
    pub fn work_dir(&self, job_id: &str) -> io::Result<PathBuf> {
        let work = self.root.join(WORK_DIR);
        create_private_dir(&work)?;
        let dir = work.join(file_key(job_id));
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// Removes `job_id`'s script directory.
    pub fn remove_work_dir(&self, job_id: &str) {
        let _ = fs::remove_dir_all(self.root.join(WORK_DIR).join(file_key(job_id)));
    }
}

/// A file name for a job id: the id itself when it is plainly safe, else a hash of it (ids come
/// from the network and must not name paths).
pub fn file_key(job_id: &str) -> String {
    let safe = !job_id.is_empty()
        && job_id.len() <= 160
        && !job_id.starts_with('.')
        && job_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if safe {
        job_id.to_string()
    } else {
        format!("sha256-{}", hex::encode(Sha256::digest(job_id.as_bytes())))
    }
}

/// `YYYY-MM-DDTHH-MM-SS.mmmZ` (no colons, for Windows), which sorts like the time.
fn file_time(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    corral_wire::time::format_iso8601_millis(t).replace(':', "-")
}

fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                out.push(entry.path());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort();
    Ok(out)
}

/// Creates `path` owner-only. On Windows it inherits the state directory's restricted ACL.
fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(store: &JobStore, job: &str, is_final: bool) -> PendingReply {
        PendingReply {
            message_id: uuid::Uuid::new_v4().to_string(),
            job_id: job.into(),
            is_final,
            created_at_ms: store.next_ms(),
            payload: "{}".into(),
        }
    }

    #[test]
    fn jobs_and_replies_survive_a_reopen() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path().join("state"));
        let store = JobStore::open(&dir).expect("open");
        let record = JobRecord {
            job_id: "aws.ssm.c1.mi-0123456789abcdef0".into(),
            topic: "aws.ssm.sendCommand".into(),
            state: JobState::Accepted,
            accepted_at_ms: 1,
            updated_at_ms: 1,
        };
        store.save_job(&record).expect("save");
        let first = reply(&store, &record.job_id, false);
        let second = reply(&store, &record.job_id, true);
        store.save_reply(&second).expect("save");
        store.save_reply(&first).expect("save");
        drop(store);

        let store = JobStore::open(&dir).expect("reopen");
        assert_eq!(store.job(&record.job_id).expect("read"), Some(record.clone()));
        assert_eq!(store.job("aws.ssm.other.mi-0123456789abcdef0").expect("read"), None);
        assert_eq!(store.replies().expect("list"), vec![first.clone(), second.clone()]);
        assert!(store.remove_reply(&first.message_id).expect("remove"));
        assert!(!store.remove_reply(&first.message_id).expect("remove again"));
        assert_eq!(store.replies().expect("list"), vec![second]);
    }

    #[test]
    fn old_things_go() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        let store = JobStore::open(&dir).expect("open");
        let day_ago = epoch_ms() - KEEP_JOBS.as_millis() as u64 - 1000;
        let old = |id: &str, state| JobRecord {
            job_id: id.into(),
            topic: String::new(),
            state,
            accepted_at_ms: day_ago,
            updated_at_ms: day_ago,
        };
        store.save_job(&old("old-finished", JobState::Finished)).expect("save");
        store.save_job(&old("old-accepted", JobState::Accepted)).expect("save");
        let mut recent = old("recent", JobState::Finished);
        recent.updated_at_ms = epoch_ms() - 31 * 60 * 1000;
        store.save_job(&recent).expect("save");
        store.prune();
        assert_eq!(store.job("old-finished").expect("read"), None);
        assert!(store.job("old-accepted").expect("read").is_some());
        assert!(store.job("recent").expect("read").is_some());

        let mut stale = reply(&store, "j", true);
        stale.created_at_ms = epoch_ms() - KEEP_REPLIES.as_millis() as u64 - 1000;
        store.save_reply(&stale).expect("save");
        assert_eq!(store.replies().expect("list"), vec![]);
        assert_eq!(fs::read_dir(tmp.path().join(REPLIES_DIR)).expect("list").count(), 0);
    }

    #[test]
    fn unsafe_job_ids_are_hashed() {
        assert_eq!(file_key("aws.ssm.c-1.mi-0123"), "aws.ssm.c-1.mi-0123");
        for id in ["../../etc/passwd", "", ".hidden", "a/b", "a\\b", "x y", &"a".repeat(200)] {
            let key = file_key(id);
            assert!(key.starts_with("sha256-") && key.len() == 71, "{id:?} → {key}");
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        let store = JobStore::open(&StateDir::new(tmp.path())).expect("open");
        let record = JobRecord {
            job_id: "../escape".into(),
            topic: String::new(),
            state: JobState::Finished,
            accepted_at_ms: 0,
            updated_at_ms: 0,
        };
        store.save_job(&record).expect("save");
        assert_eq!(store.job("../escape").expect("read"), Some(record));
        assert!(!tmp.path().join("escape.json").exists());
        // A damaged record counts as seen and finished.
        fs::write(store.job_path("broken"), b"{").expect("write");
        assert_eq!(store.job("broken").expect("read").map(|r| r.state), Some(JobState::Finished));
    }

    #[test]
    fn timestamps_are_unique_and_names_sort() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let store = JobStore::open(&StateDir::new(tmp.path())).expect("open");
        let stamps: Vec<u64> = (0..100).map(|_| store.next_ms()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(file_time(1_764_064_800_123), "2025-11-25T10-00-00.123Z");
    }
}
