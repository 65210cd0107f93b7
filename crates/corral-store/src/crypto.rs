//! Encryption of secrets at rest and the secret key file.
//!
//! Stored form of a secret: `v1:` followed by standard base64 of `nonce (12 bytes) ||
//! AES-256-GCM ciphertext || tag (16 bytes)`. The associated data is `<purpose>:<row id>`
//! (e.g. `access_key:AKIA...`), so a ciphertext only opens in the row and table it was
//! written for. The `v1` prefix leaves room for key rotation (a later `v2:` with a key id).
//!
//! High-entropy secrets that are only ever compared, never read back (activation codes), are
//! stored as keyed hashes instead: HMAC-SHA-256 under a per-purpose sub-key derived from the
//! same [`SecretKey`] (see [`Sealer::secret_hash`]). A keyed hash rather than a plain one, so a
//! copy of the database alone does not allow checking guesses offline; a fast one rather than a
//! password hash, because the secrets are random and long.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{StoreError, StoreResult};

const PREFIX_V1: &str = "v1:";
const KEY_LEN: usize = 32;

// === SecretKey ===

/// The 256-bit key that encrypts secrets at rest. Keep it outside the database (see
/// [`load_or_create_key_file`]); losing it makes every stored secret unreadable.
///
/// `Debug` never prints the key material.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A fresh random key from the operating system's CSPRNG.
    ///
    /// # Panics
    /// If the operating system cannot supply random bytes, which leaves nothing safe to do.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut bytes).expect("the operating system's random number generator failed");
        SecretKey(bytes)
    }

    /// A key from exactly 32 bytes; any other length is [`StoreError::InvalidInput`].
    pub fn from_bytes(bytes: &[u8]) -> StoreResult<Self> {
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            StoreError::InvalidInput(format!("secret key must be exactly {KEY_LEN} bytes, got {}", bytes.len()))
        })?;
        Ok(SecretKey(bytes))
    }

    /// The raw key bytes (e.g. to write a backup). Handle with care.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

// === Sealer ===

/// What a secret is for; part of the associated data so ciphertexts cannot move between
/// tables.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    AccessKey,
    SessionCredential,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::AccessKey => "access_key",
            Purpose::SessionCredential => "session_credential",
        }
    }
}

/// Seals and opens secrets with AES-256-GCM under one [`SecretKey`], and computes keyed
/// hashes under the same key.
pub(crate) struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
    /// The root HMAC key that per-purpose hashing sub-keys are derived from.
    hash_root: hmac::Key,
}

impl Sealer {
    pub(crate) fn new(key: &SecretKey) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, &key.0)
            .expect("AES-256-GCM accepts a 32-byte key, and SecretKey is always 32 bytes");
        Sealer {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
            hash_root: hmac::Key::new(hmac::HMAC_SHA256, &key.0),
        }
    }

    /// Keyed hash of a high-entropy secret, as lowercase hex:
    /// `HMAC-SHA-256(sub_key, secret)` with `sub_key = HMAC-SHA-256(secret_key, "corral
    /// <purpose> v1")`. Deterministic for one key (so replicas sharing the key agree), and
    /// separated by purpose (a hash made for one purpose never matches another's).
    pub(crate) fn secret_hash(&self, purpose: &str, secret: &str) -> String {
        // The label is unambiguous: the purpose is everything between the fixed prefix and
        // the fixed suffix.
        let label = format!("corral {purpose} v1");
        let sub_key = hmac::sign(&self.hash_root, label.as_bytes());
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, sub_key.as_ref()), secret.as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn aad(purpose: Purpose, row_id: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(purpose.label().len() + 1 + row_id.len());
        aad.extend_from_slice(purpose.label().as_bytes());
        aad.push(b':');
        aad.extend_from_slice(row_id.as_bytes());
        aad
    }

    /// Encrypts `plaintext` for the row `row_id`, with a fresh random 96-bit nonce.
    pub(crate) fn seal(&self, purpose: Purpose, row_id: &str, plaintext: &str) -> StoreResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| StoreError::Crypto)?;
        let mut buf = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(purpose, row_id)),
                &mut buf,
            )
            .map_err(|_| StoreError::Crypto)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX_V1}{}", B64.encode(out)))
    }

    /// Decrypts a value written by [`Sealer::seal`] for the same purpose and row.
    pub(crate) fn open(&self, purpose: Purpose, row_id: &str, stored: &str) -> StoreResult<String> {
        let encoded = stored.strip_prefix(PREFIX_V1).ok_or(StoreError::Crypto)?;
        let mut raw = B64.decode(encoded).map_err(|_| StoreError::Crypto)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(StoreError::Crypto);
        }
        let mut ciphertext = raw.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&raw).map_err(|_| StoreError::Crypto)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(Self::aad(purpose, row_id)), &mut ciphertext)
            .map_err(|_| StoreError::Crypto)?;
        String::from_utf8(plain.to_vec()).map_err(|_| StoreError::Crypto)
    }
}

// === key file ===

/// Loads the secret key from `path`, creating it with a fresh random key if it is missing.
///
/// The file holds the 32 key bytes as standard base64 (what this function writes) or as 64 hex
/// digits, optionally followed by a newline. A new file is written with mode 0600 (on Unix)
/// under a temporary name, fsynced and then linked into place, so a crash never leaves a
/// half-written key and two processes starting together end up with the same key. Missing
/// parent directories are created. A file that does not hold exactly 32 bytes in one of those
/// encodings is refused with [`StoreError::KeyFile`]; it is never overwritten.
pub fn load_or_create_key_file(path: &Path) -> StoreResult<SecretKey> {
    match std::fs::read(path) {
        Ok(contents) => return parse_key_file(path, &contents),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_file_err(path, "cannot read", e)),
    }

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| key_file_err(parent, "cannot create directory", e))?;
    }
    let key = SecretKey::generate();
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let tmp = std::path::PathBuf::from(tmp_name);

    let result = write_new_key_file(&tmp, &key).and_then(|()| {
        // hard_link fails if `path` appeared meanwhile, unlike rename, which would replace
        // a key another process may already be using.
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                sync_parent(path);
                Ok(Some(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(key_file_err(path, "cannot create", e)),
        }
    });
    let _ = std::fs::remove_file(&tmp);
    match result? {
        Some(key) => Ok(key),
        // Lost a race with another process: use the key it wrote.
        None => {
            let contents = std::fs::read(path).map_err(|e| key_file_err(path, "cannot read", e))?;
            parse_key_file(path, &contents)
        }
    }
}

fn write_new_key_file(tmp: &Path, key: &SecretKey) -> StoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(tmp).map_err(|e| key_file_err(tmp, "cannot create", e))?;
    let text = format!("{}\n", B64.encode(key.0));
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| key_file_err(tmp, "cannot write", e))
}

/// Makes the new directory entry durable; best effort (not every platform can fsync a
/// directory).
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

fn parse_key_file(path: &Path, contents: &[u8]) -> StoreResult<SecretKey> {
    let malformed = || {
        StoreError::KeyFile(format!(
            "{}: malformed, expected {KEY_LEN} bytes as base64 or {} hex digits",
            path.display(),
            KEY_LEN * 2
        ))
    };
    let text = std::str::from_utf8(contents).map_err(|_| malformed())?.trim();
    let bytes = if text.len() == KEY_LEN * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        decode_hex(text).ok_or_else(malformed)?
    } else {
        B64.decode(text).map_err(|_| malformed())?
    };
    SecretKey::from_bytes(&bytes).map_err(|_| malformed())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    text.as_bytes().chunks(2).map(|pair| Some((digit(pair[0])? << 4) | digit(*pair.get(1)?)?)).collect()
}

fn key_file_err(path: &Path, what: &str, err: std::io::Error) -> StoreError {
    StoreError::KeyFile(format!("{what} {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let sealer = Sealer::new(&SecretKey::generate());
        let sealed = sealer.seal(Purpose::AccessKey, "AKIA1", "s3cr3t").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(sealer.open(Purpose::AccessKey, "AKIA1", &sealed).unwrap(), "s3cr3t");
        // Fresh nonce each time.
        assert_ne!(sealed, sealer.seal(Purpose::AccessKey, "AKIA1", "s3cr3t").unwrap());
        // Bound to row and purpose.
        assert!(matches!(sealer.open(Purpose::AccessKey, "AKIA2", &sealed), Err(StoreError::Crypto)));
        assert!(matches!(sealer.open(Purpose::SessionCredential, "AKIA1", &sealed), Err(StoreError::Crypto)));
        // Other key, tampering, garbage.
        let other = Sealer::new(&SecretKey::generate());
        assert!(matches!(other.open(Purpose::AccessKey, "AKIA1", &sealed), Err(StoreError::Crypto)));
        let mut raw = B64.decode(&sealed[3..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("v1:{}", B64.encode(raw));
        for bad in [tampered.as_str(), "v1:", "v1:!!", "s3cr3t", "v2:AAAA", ""] {
            assert!(matches!(sealer.open(Purpose::AccessKey, "AKIA1", bad), Err(StoreError::Crypto)));
        }
    }

    #[test]
    fn secret_hash_is_keyed_and_purpose_separated() {
        let key = SecretKey::from_bytes(&[7u8; 32]).unwrap();
        let sealer = Sealer::new(&key);
        let h = sealer.secret_hash("activation-code", "Ab12Cd34+Ef5/Gh67Ij8");
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{h}");
        assert_eq!(h, Sealer::new(&key).secret_hash("activation-code", "Ab12Cd34+Ef5/Gh67Ij8"));
        assert_ne!(h, sealer.secret_hash("other", "Ab12Cd34+Ef5/Gh67Ij8"));
        assert_ne!(h, sealer.secret_hash("activation-code", "Ab12Cd34+Ef5/Gh67Ij9"));
        assert_ne!(h, Sealer::new(&SecretKey::generate()).secret_hash("activation-code", "Ab12Cd34+Ef5/Gh67Ij8"));
        // The construction is pinned (replicas and later versions must agree): an independent
        // computation of HMAC(HMAC(key, "corral activation-code v1"), code) with Python's hmac.
        assert_eq!(h, "3be3106fa05946dfa715eab91fc809dabd159c1f6d841d40304f1d03ce9dc1c7");
    }

    #[test]
    fn secret_key_debug_and_length() {
        let key = SecretKey::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
        assert_eq!(key.to_bytes(), [7u8; 32]);
        assert!(matches!(SecretKey::from_bytes(&[0u8; 31]), Err(StoreError::InvalidInput(_))));
        assert!(matches!(SecretKey::from_bytes(&[0u8; 33]), Err(StoreError::InvalidInput(_))));
    }

    #[test]
    fn key_file_create_reuse_and_reject() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret.key");
        let first = load_or_create_key_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "key file mode is {mode:o}");
        }
        let second = load_or_create_key_file(&path).unwrap();
        assert_eq!(first.to_bytes(), second.to_bytes());
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);

        // Hex is accepted too.
        let hex_path = dir.path().join("hex.key");
        let hex: String = [0xabu8; 32].iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&hex_path, format!("{hex}\n")).unwrap();
        assert_eq!(load_or_create_key_file(&hex_path).unwrap().to_bytes(), [0xab; 32]);

        // Malformed files are refused and left alone.
        let short = B64.encode([1u8; 31]);
        let long_hex = "ab".repeat(33);
        for bad in ["", "hello", short.as_str(), long_hex.as_str(), "zz".repeat(32).as_str()] {
            let bad_path = dir.path().join("bad.key");
            std::fs::write(&bad_path, bad).unwrap();
            let err = load_or_create_key_file(&bad_path).unwrap_err();
            assert!(matches!(&err, StoreError::KeyFile(m) if m.contains("malformed")), "{bad:?}: {err}");
            assert_eq!(std::fs::read_to_string(&bad_path).unwrap(), bad);
        }
        std::fs::write(dir.path().join("bin.key"), [0xffu8, 0xfe, 0x00]).unwrap();
        assert!(matches!(load_or_create_key_file(&dir.path().join("bin.key")), Err(StoreError::KeyFile(_))));
    }
}
