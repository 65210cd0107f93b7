//! The instance identity (registration + RSA key) and the role credentials it buys.
//!
//! The private key proves the machine's identity to `RequestManagedInstanceRoleToken`, which
//! answers with short-lived role credentials. Those are kept in memory only; the key is on disk
//! (0600) because the machine must survive reboots without a new activation.
//!
//! Key rotation (the control plane sets `UpdateKeyPair`) must never lock the machine out: the new
//! key is written to [`PENDING_KEY_FILE`] *before* the control plane is told about it, and only
//! then promoted to [`PRIVATE_KEY_FILE`]. If the agent dies between the two, the next credential
//! request that the old key fails is retried with the pending key (see [`Identity::role_token`]).

use corral_wire::keys;
use corral_wire::sigv4::Credentials;
use rsa::PrivateKey;
use time::OffsetDateTime;

use crate::api::{
    Ignored, RequestManagedInstanceRoleTokenRequest, RequestManagedInstanceRoleTokenResult,
    UpdateManagedInstancePublicKeyRequest,
};
use crate::client::{self, Auth, CallError, EndpointError, SsmClient};
use crate::state::{Registration, StateDir, CA_BUNDLE_FILE, PENDING_KEY_FILE, PRIVATE_KEY_FILE};

/// Whether `error`, from any call, says the machine was deregistered: `InvalidInstanceId` is what
/// SSM answers for a managed instance that no longer exists.
pub fn is_deregistered(error: &CallError) -> bool {
    matches!(error.code(), Some("InvalidInstanceId"))
}

/// Whether `error`, from `RequestManagedInstanceRoleToken`, says the control plane does not know
/// this instance: besides `InvalidInstanceId`, the RSA-signed call can be refused at
/// authentication (`InvalidClientTokenId`, the "unknown access key" code) because the instance's
/// key was deleted with it. For role-credential calls that code means something else (stale
/// credentials), hence the separate test.
pub fn role_token_says_unknown(error: &CallError) -> bool {
    is_deregistered(error) || matches!(error.code(), Some("InvalidClientTokenId"))
}

/// Whether `error` says the role credentials are no longer accepted, so new ones are needed.
pub fn is_credentials_rejected(error: &CallError) -> bool {
    matches!(
        error.code(),
        Some(
            "ExpiredTokenException"
                | "ExpiredToken"
                | "InvalidClientTokenId"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "SignatureDoesNotMatch"
                | "IncompleteSignatureException"
        )
    )
}

/// Role credentials and when they were obtained and expire.
#[derive(Debug, Clone)]
pub struct RoleCredentials {
    /// The credentials for SigV4 signing.
    pub credentials: Credentials,
    /// When they were obtained.
    pub retrieved_at: OffsetDateTime,
    /// When they expire.
    pub expires_at: OffsetDateTime,
}

impl RoleCredentials {
    /// Whether the credentials had a usable lifetime by this machine's clock when they arrived
    /// (more than [`crate::backoff::MIN_REFRESH_DELAY`]). If not, the clocks disagree and
    /// expiry cannot be judged locally.
    pub fn had_lifetime(&self) -> bool {
        self.expires_at > self.retrieved_at + crate::backoff::MIN_REFRESH_DELAY
    }
}

/// Why the identity in the state directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not registered yet.
    #[error("this machine is not registered; run `corral-agent register` first")]
    NotRegistered,
    /// A file could not be read, or is damaged.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The private key file is not a valid key.
    #[error("the private key in the state directory is damaged: {0}")]
    BadKey(keys::KeyError),
    /// The registration names an endpoint the agent refuses to talk to (not `https://`), e.g.
    /// after a hand edit.
    #[error("the registration in the state directory is refused: {0}; register again with an https:// endpoint (corral-agent register --force ...)")]
    Endpoint(EndpointError),
    /// The HTTPS client could not be built (e.g. a damaged CA bundle copy).
    #[error("{0}")]
    Client(String),
}

/// A registered machine: where to call, as whom, with which key.
pub struct Identity {
    /// The registration record.
    pub registration: Registration,
    /// The instance key.
    pub key: PrivateKey,
    /// The stored form of [`Identity::key`], to notice when `register --force` replaced it.
    pub key_text: String,
    /// The machine fingerprint.
    pub fingerprint: String,
    /// The client for the registered endpoint.
    pub client: SsmClient,
}

impl Identity {
    /// Loads the identity from the state directory.
    pub fn load(dir: &StateDir) -> Result<Identity, LoadError> {
        let registration = dir.load_registration()?.ok_or(LoadError::NotRegistered)?;
        // The record is a file anyone with root can edit: an endpoint that would send the signed
        // calls and the role credentials in clear is refused here, before anything else is done
        // with it, as `register` refuses it when it is given.
        client::https_endpoint(&registration.endpoint).map_err(LoadError::Endpoint)?;
        let key_text = dir.load_text(PRIVATE_KEY_FILE)?.ok_or(LoadError::NotRegistered)?;
        let key = keys::private_key_from_pkcs1_base64(&key_text).map_err(LoadError::BadKey)?;
        let fingerprint = dir.fingerprint()?;
        let ca = dir.file(CA_BUNDLE_FILE);
        let ca = ca.exists().then_some(ca.as_path());
        let client = SsmClient::new(&registration.endpoint, &registration.region, ca).map_err(LoadError::Client)?;
        Ok(Identity { registration, key, key_text, fingerprint, client })
    }

    /// Whether the state directory now holds a different registration or key than this one
    /// (`register --force` while the agent runs).
    pub fn differs_from(&self, registration: &Registration, key_text: &str) -> bool {
        self.registration.instance_id != registration.instance_id
            || self.registration.endpoint != registration.endpoint
            || self.registration.region != registration.region
            || self.key_text != key_text
    }

    /// Requests role credentials with the instance key. If the key is refused and a pending key
    /// from an interrupted rotation exists, tries that one and promotes it when it works.
    /// Returns the credentials and whether the control plane asks for a new key pair.
    pub async fn role_token(&mut self, dir: &StateDir) -> Result<(RoleCredentials, bool), CallError> {
        match request_role_token(&self.client, &self.registration.instance_id, &self.key, &self.fingerprint).await {
            Ok(answer) => {
                // The pending key was never accepted (or the rotation was rolled back); drop it
                // so it cannot be mistaken for the current key later.
                if dir.file(PENDING_KEY_FILE).exists() {
                    let _ = dir.remove(PENDING_KEY_FILE);
                }
                Ok(answer)
            }
            Err(error @ CallError::Aws { .. }) => {
                let Ok(Some(pending_text)) = dir.load_text(PENDING_KEY_FILE) else { return Err(error) };
                let Ok(pending) = keys::private_key_from_pkcs1_base64(&pending_text) else { return Err(error) };
                tracing::info!("the current key was refused; trying the key from an interrupted rotation");
                let answer =
                    request_role_token(&self.client, &self.registration.instance_id, &pending, &self.fingerprint)
                        .await
                        .map_err(|_| error)?;
                if let Err(e) = self.promote(dir, pending, pending_text) {
                    tracing::error!(error = %e, "could not save the rotated key; the next restart may need it again");
                }
                Ok(answer)
            }
            Err(other) => Err(other),
        }
    }

    /// Rotates the key pair: a new key is generated and saved as pending, registered with the
    /// control plane (signed with the old key), then made current.
    pub async fn rotate_key(&mut self, dir: &StateDir) -> Result<(), String> {
        // Key generation takes a moment of CPU; on the current-thread runtime that only delays
        // the agent's own timers, which is harmless.
        let new_key = keys::generate_rsa_2048().map_err(|e| e.to_string())?;
        let new_text = keys::private_key_to_pkcs1_base64(&new_key).map_err(|e| e.to_string())?;
        let new_public = keys::public_key_to_spki_base64(new_key.as_public_key());
        dir.write_atomic(PENDING_KEY_FILE, new_text.as_bytes()).map_err(|e| format!("saving the new key: {e}"))?;
        let request = UpdateManagedInstancePublicKeyRequest {
            new_public_key: &new_public,
            new_public_key_type: keys::PUBLIC_KEY_TYPE_RSA,
        };
        let auth = Auth::Rsa { instance_id: &self.registration.instance_id, key: &self.key };
        if let Err(e) = self.client.call_json::<_, Ignored>("UpdateManagedInstancePublicKey", &request, auth).await {
            // The control plane kept the old key; the pending one is useless.
            let _ = dir.remove(PENDING_KEY_FILE);
            return Err(format!("UpdateManagedInstancePublicKey failed: {e}"));
        }
        self.promote(dir, new_key, new_text).map_err(|e| format!("saving the rotated key: {e}"))
    }

    /// Makes `key` the current key on disk and in memory.
    fn promote(&mut self, dir: &StateDir, key: PrivateKey, key_text: String) -> std::io::Result<()> {
        let mut registration = self.registration.clone();
        registration.key_created_at = crate::now_rfc3339();
        dir.write_atomic(PRIVATE_KEY_FILE, key_text.as_bytes())?;
        // From here on the new key is in force; the registration record only carries its date.
        self.key = key;
        self.key_text = key_text;
        let _ = dir.remove(PENDING_KEY_FILE);
        if dir.save_registration(&registration).is_ok() {
            self.registration = registration;
        }
        Ok(())
    }
}

/// One `RequestManagedInstanceRoleToken` call.
pub async fn request_role_token(
    client: &SsmClient,
    instance_id: &str,
    key: &PrivateKey,
    fingerprint: &str,
) -> Result<(RoleCredentials, bool), CallError> {
    let request = RequestManagedInstanceRoleTokenRequest { fingerprint };
    let retrieved_at = OffsetDateTime::now_utc();
    let answer: RequestManagedInstanceRoleTokenResult =
        client.call_json("RequestManagedInstanceRoleToken", &request, Auth::Rsa { instance_id, key }).await?;
    if answer.access_key_id.is_empty() || answer.secret_access_key.is_empty() || answer.session_token.is_empty() {
        return Err(CallError::Protocol("RequestManagedInstanceRoleToken answered empty credentials".into()));
    }
    let credentials = RoleCredentials {
        credentials: Credentials {
            access_key_id: answer.access_key_id,
            secret_access_key: answer.secret_access_key,
            session_token: Some(answer.session_token),
        },
        retrieved_at,
        expires_at: answer.token_expiration_date.0,
    };
    Ok((credentials, answer.update_key_pair))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: &str) -> CallError {
        CallError::Aws { status: 400, code: code.into(), message: String::new() }
    }

    #[test]
    fn error_classes() {
        assert!(is_deregistered(&aws("InvalidInstanceId")));
        assert!(!is_deregistered(&aws("InternalServerError")));
        assert!(!is_deregistered(&CallError::Network("refused".into())));
        assert!(!is_deregistered(&aws("InvalidClientTokenId")));
        assert!(role_token_says_unknown(&aws("InvalidClientTokenId")));
        assert!(role_token_says_unknown(&aws("InvalidInstanceId")));
        assert!(!role_token_says_unknown(&aws("MachineFingerprintDoesNotMatch")));
        assert!(is_credentials_rejected(&aws("ExpiredTokenException")));
        assert!(is_credentials_rejected(&aws("UnrecognizedClientException")));
        assert!(!is_credentials_rejected(&aws("InvalidInstanceId")));
    }

    #[test]
    fn lifetime_by_the_local_clock() {
        let at = |secs: i64| OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).expect("time");
        let creds = |retrieved: i64, expires: i64| RoleCredentials {
            credentials: Credentials { access_key_id: "A".into(), secret_access_key: "s".into(), session_token: None },
            retrieved_at: at(retrieved),
            expires_at: at(expires),
        };
        assert!(creds(0, 3600).had_lifetime());
        assert!(!creds(0, 5).had_lifetime());
        assert!(!creds(0, -7200).had_lifetime());
    }

    /// A fresh key and an https registration saved in `dir`, as `register` leaves them.
    fn save_identity(dir: &StateDir) -> (rsa::PrivateKey, String, Registration) {
        let key = keys::generate_rsa_2048().expect("keygen");
        let text = keys::private_key_to_pkcs1_base64(&key).expect("encode");
        dir.write_atomic(PRIVATE_KEY_FILE, text.as_bytes()).expect("write");
        let registration = Registration {
            instance_id: "mi-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            endpoint: "https://127.0.0.1:8443".into(),
            registered_at: "2026-11-25T10:00:00Z".into(),
            key_created_at: "2026-11-25T10:00:00Z".into(),
        };
        dir.save_registration(&registration).expect("save");
        (key, text, registration)
    }

    #[test]
    fn key_persistence_round_trip() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        dir.create().expect("create");
        assert!(matches!(Identity::load(&dir), Err(LoadError::NotRegistered)));

        let (key, text, registration) = save_identity(&dir);
        let loaded = Identity::load(&dir).expect("load");
        assert_eq!(loaded.key_text, text);
        assert_eq!(
            keys::public_key_to_spki_base64(loaded.key.as_public_key()),
            keys::public_key_to_spki_base64(key.as_public_key())
        );
        assert_eq!(keys::public_key_to_spki_base64(key.as_public_key()).len(), keys::SPKI_BASE64_LEN_2048);
        assert!(!loaded.differs_from(&registration, &text));
        assert!(loaded.differs_from(&registration, "other"));
        let mut moved = registration.clone();
        moved.instance_id = "mi-1111111111111111a".into();
        assert!(loaded.differs_from(&moved, &text));

        dir.write_atomic(PRIVATE_KEY_FILE, b"not a key").expect("write");
        assert!(matches!(Identity::load(&dir), Err(LoadError::BadKey(_))));
    }

    #[test]
    fn load_refuses_a_plain_http_registration() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        dir.create().expect("create");
        let (_, _, mut registration) = save_identity(&dir);
        assert!(Identity::load(&dir).is_ok());

        // The same record, edited by hand to plain http.
        registration.endpoint = "http://127.0.0.1:8443".into();
        dir.save_registration(&registration).expect("save");
        match Identity::load(&dir) {
            Err(LoadError::Endpoint(EndpointError::NotHttps { scheme, .. })) => assert_eq!(scheme, "http"),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("an http:// registration was loaded"),
        }
        let message = Identity::load(&dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("https://") && message.contains("register --force"), "{message}");
    }
}
