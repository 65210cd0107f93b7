//! Identifiers and secrets in the shapes AWS uses, so tools that parse them keep working.

use rand::RngExt;

const BASE32_UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

/// A 12-digit account ID that does not start with 0 (some tools strip leading zeros).
pub fn new_account_id() -> String {
    let mut rng = rand::rng();
    let first = rng.random_range(1..10u8);
    let rest: String = (0..11).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
    format!("{first}{rest}")
}

/// A long-term access key ID: `AKIA` + 16 base32 characters (20 in all), as AWS issues them.
pub fn new_long_term_access_key_id() -> String {
    format!("AKIA{}", random_from(BASE32_UPPER, 16))
}

/// A temporary access key ID: `ASIA` + 16 base32 characters.
pub fn new_temporary_access_key_id() -> String {
    format!("ASIA{}", random_from(BASE32_UPPER, 16))
}

/// A 40-character secret access key.
pub fn new_secret_access_key() -> String {
    random_from(SECRET_ALPHABET, 40)
}

/// An opaque session token: 64 random bytes, base64 (AWS's tokens are long opaque strings too).
pub fn new_session_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 64];
    rand::rng().fill(&mut bytes[..]);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A unique ID for an IAM entity: the AWS prefix (`AIDA` users, `AROA` roles, `ANPA` policies)
/// and 17 upper-case alphanumerics, 21 characters in all.
pub fn new_unique_id(prefix: &str) -> String {
    format!("{prefix}{}", random_from(UPPER_ALNUM, 17))
}

/// A request ID (UUID v4), returned in `x-amzn-RequestId` and `<RequestId>`.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Is this a well-formed account ID?
pub fn is_valid_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Is this an access key ID in AWS's format for long-term keys (`AKIA` + 16 of `[A-Z2-7]`)?
pub fn is_valid_long_term_access_key_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("AKIA") && s.bytes().skip(4).all(|b| BASE32_UPPER.contains(&b))
}

/// Is this a secret access key in AWS's format (40 characters of `[A-Za-z0-9+/]`)?
pub fn is_valid_secret_access_key(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| SECRET_ALPHABET.contains(&b))
}

/// Hex SHA-256 of a session token: tokens are stored only in this form.
pub fn session_token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_aws_shapes() {
        for _ in 0..50 {
            assert!(is_valid_account_id(&new_account_id()));
            assert!(is_valid_long_term_access_key_id(&new_long_term_access_key_id()));
            assert!(is_valid_secret_access_key(&new_secret_access_key()));
            assert_eq!(new_unique_id("AIDA").len(), 21);
            let t = new_temporary_access_key_id();
            assert!(t.starts_with("ASIA") && t.len() == 20);
        }
    }

    #[test]
    fn key_format_checks_reject_near_misses() {
        assert!(!is_valid_long_term_access_key_id("AKIA123"));
        assert!(!is_valid_long_term_access_key_id("ASIAABCDEFGHIJKLMNOP"));
        assert!(!is_valid_long_term_access_key_id("AKIAabcdefghijklmnop"));
        assert!(!is_valid_secret_access_key("short"));
        assert!(!is_valid_secret_access_key(&"a".repeat(39).to_string().replace('a', "é")));
        assert!(!is_valid_account_id("12345678901"));
        assert!(!is_valid_account_id("12345678901a"));
    }
}
