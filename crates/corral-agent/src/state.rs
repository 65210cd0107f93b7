//! The agent's state directory: registration, private key, fingerprint, CA bundle and status.
//!
//! Everything the agent keeps between runs lives in one directory (default
//! `/var/lib/corral-agent`, `%ProgramData%\Corral\Agent` on Windows), readable by root/SYSTEM
//! only: the directory is 0700 and every file 0600 on Unix, and on Windows its ACL is cut down to
//! SYSTEM and Administrators. Every file is written atomically (temp file in the same directory,
//! flushed, then renamed over the old one), so a crash or power loss leaves either the old or the
//! new content, never half a private key.
//!
//! The role credentials are deliberately *not* here: they live in the running agent's memory only.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable that overrides the default state directory.
pub const STATE_DIR_ENV: &str = "CORRAL_AGENT_STATE_DIR";

/// Registration record (no secrets): instance ID, region, endpoint.
pub const REGISTRATION_FILE: &str = "registration.json";
/// The instance's RSA private key, standard base64 of DER PKCS#1 (the SSM agent's vault format).
pub const PRIVATE_KEY_FILE: &str = "private-key";
/// A rotated private key the control plane may already know but that is not yet in use (see
/// [`crate::credentials`]): kept so a crash mid-rotation does not lock the machine out.
pub const PENDING_KEY_FILE: &str = "private-key.next";
/// The machine fingerprint, a random UUID v4 sent with every credential request.
pub const FINGERPRINT_FILE: &str = "fingerprint";
/// Copy of the `--ca-bundle` given at registration, so `run` keeps trusting the same roots.
pub const CA_BUNDLE_FILE: &str = "ca-bundle.pem";
/// What `corral-agent status` shows, written by `register` and `run`.
pub const STATUS_FILE: &str = "status.json";

/// The state directory used when neither `--state-dir` nor [`STATE_DIR_ENV`] is given.
pub fn default_state_dir() -> PathBuf {
    #[cfg(windows)]
    {
        let program_data = std::env::var_os("ProgramData")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
        program_data.join("Corral").join("Agent")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/var/lib/corral-agent")
    }
}

/// The registration record kept in [`REGISTRATION_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Managed instance ID, `mi-...`.
    pub instance_id: String,
    /// Region given at registration; the SigV4 scope of every call.
    pub region: String,
    /// Control-plane endpoint URL, e.g. `https://corral.example:8443`.
    pub endpoint: String,
    /// When the machine registered (RFC 3339, UTC).
    pub registered_at: String,
    /// When the current private key was created (RFC 3339, UTC); changes on rotation.
    pub key_created_at: String,
}

/// What the running agent last saw, kept in [`STATUS_FILE`] for `corral-agent status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Outcome of the last health ping; `None` before the first one.
    pub last_ping_ok: Option<bool>,
    /// When the last health ping was attempted (RFC 3339).
    pub last_ping_at: Option<String>,
    /// When a health ping last succeeded (RFC 3339).
    pub last_ping_success_at: Option<String>,
    /// Why the last ping or credential request failed, as `Code: message`.
    pub last_error: Option<String>,
    /// Expiry of the credentials held in memory (RFC 3339); the credentials themselves are not here.
    pub credentials_expire_at: Option<String>,
    /// The control plane said this machine is no longer registered.
    pub deregistered: bool,
    /// When deregistration was noticed (RFC 3339).
    pub deregistered_at: Option<String>,
    /// When the agent last wrote this file (RFC 3339).
    pub updated_at: Option<String>,
}

/// The agent's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// A state directory at `path` (not created until [`StateDir::create`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of a file inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates the directory if needed and restricts it to its owner (0700 on Unix; SYSTEM and
    /// Administrators on Windows). Tightens an existing directory too, in case it was created by
    /// hand with looser permissions.
    pub fn create(&self) -> io::Result<()> {
        fs::create_dir_all(&self.path)?;
        restrict_dir(&self.path)
    }

    /// Writes `contents` to `name` atomically with owner-only permissions.
    pub fn write_atomic(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        write_atomic(&self.file(name), contents)
    }

    /// Reads `name`; `Ok(None)` when the file does not exist.
    pub fn read_optional(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.file(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes `name`; a missing file is not an error.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.file(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The registration record, `Ok(None)` when the machine is not registered.
    pub fn load_registration(&self) -> io::Result<Option<Registration>> {
        self.read_json(REGISTRATION_FILE)
    }

    /// Saves the registration record.
    pub fn save_registration(&self, registration: &Registration) -> io::Result<()> {
        self.write_json(REGISTRATION_FILE, registration)
    }

    /// The status record; a missing or unreadable one reads as the default, because `status`
    /// must still print what it can.
    pub fn load_status(&self) -> Status {
        self.read_json(STATUS_FILE).ok().flatten().unwrap_or_default()
    }

    /// Saves the status record.
    pub fn save_status(&self, status: &Status) -> io::Result<()> {
        self.write_json(STATUS_FILE, status)
    }

    /// The stored private key text (base64 PKCS#1), `Ok(None)` when absent.
    pub fn load_text(&self, name: &str) -> io::Result<Option<String>> {
        match self.read_optional(name)? {
            Some(bytes) => String::from_utf8(bytes)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{name} is not UTF-8"))),
            None => Ok(None),
        }
    }

    /// The machine fingerprint, created (random UUID v4) and persisted on first use. It is kept
    /// across re-registrations: it names the machine, not the registration.
    pub fn fingerprint(&self) -> io::Result<String> {
        if let Some(existing) = self.load_text(FINGERPRINT_FILE)? {
            if uuid::Uuid::parse_str(&existing).is_ok() {
                return Ok(existing);
            }
        }
        let fresh = uuid::Uuid::new_v4().to_string();
        self.write_atomic(FINGERPRINT_FILE, fresh.as_bytes())?;
        Ok(fresh)
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> io::Result<Option<T>> {
        match self.read_optional(name)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {e}"))),
            None => Ok(None),
        }
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
        bytes.push(b'\n');
        self.write_atomic(name, &bytes)
    }
}

/// Writes `path` atomically: a temp file beside it (owner-only from the moment it is created, so
/// a secret is never briefly world-readable), flushed to disk, then renamed over `path`.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = open_private(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // `mode` applies only to a newly created file; a stale temp file keeps its old mode.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<fs::File> {
    // On Windows the file inherits the directory's restricted ACL (see `restrict_dir`).
    fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    // Makes the rename itself durable; failure only weakens durability, not correctness.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

#[cfg(unix)]
fn restrict_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

#[cfg(windows)]
fn restrict_dir(path: &Path) -> io::Result<()> {
    // ProgramData grants Users read access by inheritance; the private key must not be readable
    // by them. Replace the inherited ACL with full control for SYSTEM (S-1-5-18) and
    // Administrators (S-1-5-32-544) only, inherited by everything created inside.
    let status = std::process::Command::new("icacls")
        .arg(path)
        .args(["/inheritance:r", "/grant:r", "*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F", "/Q"])
        .stdout(std::process::Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("icacls could not restrict {} ({status})", path.display())))
    }
}

#[cfg(not(any(unix, windows)))]
fn restrict_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_and_status_round_trip() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path().join("state"));
        dir.create().expect("create");
        assert_eq!(dir.load_registration().expect("read"), None);
        let reg = Registration {
            instance_id: "mi-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            endpoint: "https://127.0.0.1:8443".into(),
            registered_at: "2026-11-25T10:00:00Z".into(),
            key_created_at: "2026-11-25T10:00:00Z".into(),
        };
        dir.save_registration(&reg).expect("save");
        assert_eq!(dir.load_registration().expect("read"), Some(reg));

        assert_eq!(dir.load_status(), Status::default());
        let status = Status {
            last_ping_ok: Some(true),
            last_ping_at: Some("2026-11-25T10:05:00Z".into()),
            deregistered: true,
            ..Status::default()
        };
        dir.save_status(&status).expect("save");
        assert_eq!(dir.load_status(), status);
    }

    #[test]
    fn corrupt_status_reads_as_default_and_corrupt_registration_is_an_error() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        dir.write_atomic(STATUS_FILE, b"{not json").expect("write");
        assert_eq!(dir.load_status(), Status::default());
        dir.write_atomic(REGISTRATION_FILE, b"[]").expect("write");
        assert!(dir.load_registration().is_err());
    }

    #[test]
    fn fingerprint_is_a_persisted_uuid() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        let first = dir.fingerprint().expect("fingerprint");
        let parsed = uuid::Uuid::parse_str(&first).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(first, first.to_lowercase());
        assert_eq!(dir.fingerprint().expect("fingerprint"), first);
        // A damaged file is replaced rather than sent to the server.
        dir.write_atomic(FINGERPRINT_FILE, b"garbage").expect("write");
        assert_ne!(dir.fingerprint().expect("fingerprint"), "garbage");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        dir.write_atomic("f", b"one").expect("write");
        dir.write_atomic("f", b"two").expect("write");
        assert_eq!(dir.read_optional("f").expect("read"), Some(b"two".to_vec()));
        let names: Vec<_> = fs::read_dir(tmp.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["f".to_string()]);
        dir.remove("f").expect("remove");
        dir.remove("f").expect("removing a missing file is fine");
        assert_eq!(dir.read_optional("f").expect("read"), None);
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("state");
        fs::create_dir(&path).expect("mkdir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        let dir = StateDir::new(&path);
        dir.create().expect("create tightens an existing directory");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o700);

        // A pre-existing, world-readable file is tightened when rewritten.
        fs::write(dir.file(PRIVATE_KEY_FILE), b"old").expect("write");
        fs::set_permissions(dir.file(PRIVATE_KEY_FILE), fs::Permissions::from_mode(0o644)).expect("chmod");
        dir.write_atomic(PRIVATE_KEY_FILE, b"secret").expect("write");
        assert_eq!(mode(&dir.file(PRIVATE_KEY_FILE)), 0o600);
        dir.save_status(&Status::default()).expect("save");
        assert_eq!(mode(&dir.file(STATUS_FILE)), 0o600);
    }
}
