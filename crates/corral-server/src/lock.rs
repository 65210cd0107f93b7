//! The data dir belongs to one server at a time: `corral.lock` in it is held with an exclusive
//! advisory lock (`flock` on Unix, `LockFileEx` on Windows) for the server's lifetime. The
//! kernel drops the lock when the process ends, however it ends, so a crashed server never
//! leaves a stale lock behind; the file's text (PID, endpoint) only serves to name the holder in
//! the refusal a second server gets.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "corral.lock";

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the data dir's lock, or says which server holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<DataDirLock> {
        let path = data_dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let field =
                    |name: &str| holder.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_string);
                let pid = field("pid").unwrap_or_else(|| "unknown".into());
                let endpoint = field("endpoint").unwrap_or_else(|| "an endpoint not yet known".into());
                bail!(
                    "another Corral server (pid {pid}, listening on {endpoint}) is running on the data dir {}; \
                     stop it first, or give this one another --data-dir",
                    data_dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let mut lock = DataDirLock { file, path };
        lock.record(None)?;
        Ok(lock)
    }

    /// Writes who holds the lock: this process, and its endpoint once it listens.
    pub fn record(&mut self, endpoint: Option<&str>) -> anyhow::Result<()> {
        let mut text = format!("pid={}\n", std::process::id());
        if let Some(endpoint) = endpoint {
            text.push_str(&format!("endpoint={endpoint}\n"));
        }
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(text.as_bytes()).with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_endpoint_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("dir");
        let mut first = DataDirLock::acquire(dir.path()).expect("first");
        first.record(Some("https://127.0.0.1:8443")).expect("record");
        let err = DataDirLock::acquire(dir.path()).expect_err("second refused").to_string();
        assert!(err.contains("https://127.0.0.1:8443"), "{err}");
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the first lets go");
    }
}
