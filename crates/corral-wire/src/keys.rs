//! RSA key encodings of hybrid registration (agent-protocol.md §1.2).
//!
//! The agent generates a 2048-bit key and registers the public half as standard base64 of the DER
//! SubjectPublicKeyInfo (392 characters); it stores the private half as standard base64 of DER
//! PKCS#1 `RSAPrivateKey`. The key type string sent alongside is [`PUBLIC_KEY_TYPE_RSA`].

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};

/// Size of the keys the agent generates.
pub const AGENT_KEY_BITS: usize = 2048;

/// Smallest modulus we accept from a peer. The agent always uses 2048 bits; anything smaller
/// is either broken or an attempt to register a factorable key.
pub const MIN_KEY_BITS: u32 = 2048;

/// The `PublicKeyType` value that goes with these keys in `RegisterManagedInstance`.
pub const PUBLIC_KEY_TYPE_RSA: &str = "Rsa";

/// Length of [`public_key_to_spki_base64`] for a 2048-bit key (294 DER bytes).
pub const SPKI_BASE64_LEN_2048: usize = 392;

/// Why a key could not be generated, encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not standard base64 with padding.
    #[error("key is not valid base64")]
    InvalidBase64,
    /// The bytes are not a DER key of the expected kind (SPKI RSA public / PKCS#1 private).
    #[error("key is not a valid DER RSA key: {0}")]
    InvalidDer(String),
    /// The key's modulus is below [`MIN_KEY_BITS`].
    #[error("RSA key of {bits} bits is too small; at least {MIN_KEY_BITS} bits are required")]
    TooSmall {
        /// The modulus size found.
        bits: u32,
    },
    /// Key generation failed (e.g. the OS random source failed).
    #[error("RSA key generation failed: {0}")]
    Generation(String),
    /// The key could not be encoded (e.g. a private key without its primes).
    #[error("RSA key encoding failed: {0}")]
    Encoding(String),
}

/// Generates a 2048-bit RSA key with exponent 65537 from the OS random source, like the agent.
pub fn generate_rsa_2048() -> Result<PrivateKey, KeyError> {
    PrivateKey::new(&mut rand::rngs::SysRng, AGENT_KEY_BITS).map_err(|e| KeyError::Generation(e.to_string()))
}

/// Standard base64 (with padding) of the DER SubjectPublicKeyInfo; 392 characters at 2048 bits.
pub fn public_key_to_spki_base64(key: &PublicKey) -> String {
    let der = key.to_public_key_der().expect("a well-formed RSA public key always has a DER SPKI encoding");
    BASE64.encode(der.as_bytes())
}

fn check_size(n_bits: u32) -> Result<(), KeyError> {
    if n_bits < MIN_KEY_BITS {
        Err(KeyError::TooSmall { bits: n_bits })
    } else {
        Ok(())
    }
}

fn modulus_bits(key: &PublicKey) -> u32 {
    // The modulus is public, so a variable-time bit count leaks nothing.
    key.n().bit_width_vartime()
}

/// Parses a registered public key (`PublicKey` of `RegisterManagedInstance`,
/// `NewPublicKey` of `UpdateManagedInstancePublicKey`). Surrounding ASCII white space is
/// ignored; anything else that is not base64 DER SPKI of an RSA key of at least 2048 bits is
/// refused.
pub fn public_key_from_spki_base64(text: &str) -> Result<PublicKey, KeyError> {
    let der = BASE64.decode(text.trim_ascii()).map_err(|_| KeyError::InvalidBase64)?;
    let key = PublicKey::from_public_key_der(&der).map_err(|e| KeyError::InvalidDer(e.to_string()))?;
    check_size(modulus_bits(&key))?;
    Ok(key)
}

/// Standard base64 of the DER PKCS#1 `RSAPrivateKey`, the agent's vault format. The result is a
/// secret; do not log it.
pub fn private_key_to_pkcs1_base64(key: &PrivateKey) -> Result<String, KeyError> {
    let der = key.to_pkcs1_der().map_err(|e| KeyError::Encoding(e.to_string()))?;
    Ok(BASE64.encode(der.as_bytes()))
}

/// Parses the agent's stored private key (base64 DER PKCS#1). Keys under 2048 bits are refused.
pub fn private_key_from_pkcs1_base64(text: &str) -> Result<PrivateKey, KeyError> {
    let der = BASE64.decode(text.trim_ascii()).map_err(|_| KeyError::InvalidBase64)?;
    let key = PrivateKey::from_pkcs1_der(&der).map_err(|e| KeyError::InvalidDer(e.to_string()))?;
    check_size(modulus_bits(key.as_public_key()))?;
    Ok(key)
}
