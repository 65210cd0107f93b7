//! Writing files into the data dir with the right permissions.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes a secret file (keys, credentials): mode 0600 on Unix, written to a temporary name and
/// renamed so a crash never leaves half a file behind.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_atomically(path, contents, 0o600)
}

/// Writes a non-secret file (certificates, the AWS CLI config): mode 0644 on Unix.
pub fn write_public_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_atomically(path, contents, 0o644)
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp-write");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = options.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        #[cfg(unix)]
        {
            // The mode given to open() is filtered by the umask; set it explicitly.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        f.write_all(contents).with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Creates the data dir (mode 0700 on Unix) if it does not exist.
pub fn ensure_private_dir(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}
