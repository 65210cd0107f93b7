//! `corral-agent register`: hybrid activation, as `amazon-ssm-agent -register` does it.
//!
//! The key pair is generated here and only the public half leaves the machine. The registration
//! is written to the state directory only after the control plane accepted it, and proven by
//! fetching a first set of role credentials, so a successful exit means `run` will work.

use std::path::PathBuf;
use std::time::Duration;

use corral_wire::keys;

use crate::api::{RegisterManagedInstanceRequest, RegisterManagedInstanceResult};
use crate::client::{self, Auth, BodyError, CallError, SsmClient};
use crate::credentials::Identity;
use crate::state::{Registration, StateDir, Status, CA_BUNDLE_FILE, PENDING_KEY_FILE, PRIVATE_KEY_FILE};

/// What `register` needs.
#[derive(Debug, Clone)]
pub struct RegisterArgs {
    /// Activation code.
    pub code: String,
    /// Activation ID.
    pub id: String,
    /// Region.
    pub region: String,
    /// Control-plane endpoint URL.
    pub endpoint: String,
    /// PEM bundle of the roots to trust for the endpoint.
    pub ca_bundle: Option<PathBuf>,
    /// Replace an existing registration.
    pub force: bool,
}

/// Attempts at `RegisterManagedInstance` for transient failures (network, throttling, 5xx).
const REGISTER_ATTEMPTS: u32 = 3;

/// Whether a region string is usable in a SigV4 scope (the SSM agent's own rule).
pub fn valid_region(region: &str) -> bool {
    !region.is_empty() && region.len() <= 100 && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Registers the machine; returns the new instance ID. The error is the message to print.
pub async fn register(dir: &StateDir, args: &RegisterArgs) -> Result<String, String> {
    // First of all, before a key, a fingerprint or the state directory exists: the activation
    // code is this call's only secret, so an endpoint that would send it in clear is refused
    // where the user gives it. (`Identity::load` repeats the check for a stored registration.)
    client::https_endpoint(&args.endpoint).map_err(|e| format!("--endpoint: {e}"))?;
    if !valid_region(&args.region) {
        return Err(format!("invalid region {:?}: use letters, digits and '-' only", args.region));
    }
    if args.code.trim().is_empty() || args.id.trim().is_empty() {
        return Err("--code and --id must not be empty".into());
    }
    let endpoint = args.endpoint.trim_end_matches('/').to_string();
    let client = SsmClient::new(&endpoint, &args.region, args.ca_bundle.as_deref())?;

    dir.create().map_err(|e| format!("cannot create the state directory {}: {e}", dir.path().display()))?;
    match dir.load_registration() {
        Ok(Some(existing)) if !args.force => {
            return Err(format!(
                "this machine is already registered as {} with {}; pass --force to register it again",
                existing.instance_id, existing.endpoint
            ))
        }
        Err(e) if !args.force => {
            return Err(format!("the state directory holds a damaged registration ({e}); pass --force to replace it"))
        }
        _ => {}
    }
    let ca_pem = match &args.ca_bundle {
        Some(path) => Some(std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?),
        None => None,
    };

    let fingerprint =
        dir.fingerprint().map_err(|e| format!("cannot write the fingerprint in {}: {e}", dir.path().display()))?;
    let key = keys::generate_rsa_2048().map_err(|e| e.to_string())?;
    let key_text = keys::private_key_to_pkcs1_base64(&key).map_err(|e| e.to_string())?;
    let public_key = keys::public_key_to_spki_base64(key.as_public_key());
    let request = RegisterManagedInstanceRequest {
        activation_code: args.code.trim(),
        activation_id: args.id.trim(),
        public_key: &public_key,
        public_key_type: keys::PUBLIC_KEY_TYPE_RSA,
        fingerprint: &fingerprint,
    };

    let mut attempt = 0;
    let result: RegisterManagedInstanceResult = loop {
        attempt += 1;
        match client.call_json("RegisterManagedInstance", &request, Auth::Anonymous).await {
            Ok(result) => break result,
            Err(error) if attempt < REGISTER_ATTEMPTS && transient(&error) => {
                let delay = crate::backoff::jitter(Duration::from_secs(1 << attempt));
                tracing::warn!(%error, retry_in_secs = delay.as_secs(), "registration attempt failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(error) if is_certificate_error(&error) => {
                return Err(format!(
                    "registration failed: {error} (the endpoint's certificate is not trusted: pass the \
                     control plane's CA with --ca-bundle, e.g. the ca.pem from its data directory)"
                ))
            }
            Err(error) => return Err(format!("registration failed: {error}")),
        }
    };
    let instance_id = result.instance_id;
    if instance_id.len() < 10 {
        return Err(format!("registration failed: the control plane answered an invalid instance ID {instance_id:?}"));
    }

    let now = crate::now_rfc3339();
    let registration = Registration {
        instance_id: instance_id.clone(),
        region: args.region.clone(),
        endpoint,
        registered_at: now.clone(),
        key_created_at: now,
    };
    let save = || -> std::io::Result<()> {
        // The key before the record that points at it: a reader never sees a registration
        // without its key.
        dir.write_atomic(PRIVATE_KEY_FILE, key_text.as_bytes())?;
        dir.remove(PENDING_KEY_FILE)?;
        match &ca_pem {
            Some(pem) => dir.write_atomic(CA_BUNDLE_FILE, pem)?,
            // Without --ca-bundle the platform's roots were trusted; a stale copy must not
            // override that for `run`.
            None => dir.remove(CA_BUNDLE_FILE)?,
        }
        dir.save_registration(&registration)?;
        dir.save_status(&Status { updated_at: Some(crate::now_rfc3339()), ..Status::default() })
    };
    save().map_err(|e| {
        format!("registered as {instance_id}, but saving the registration in {} failed: {e}", dir.path().display())
    })?;

    let mut identity = Identity::load(dir).map_err(|e| format!("registered as {instance_id}, but {e}"))?;
    match identity.role_token(dir).await {
        Ok((creds, _)) => {
            let mut status = dir.load_status();
            status.credentials_expire_at = Some(crate::rfc3339(creds.expires_at));
            status.updated_at = Some(crate::now_rfc3339());
            let _ = dir.save_status(&status);
            Ok(instance_id)
        }
        Err(error) => Err(format!("registered as {instance_id}, but the first credential request failed: {error}")),
    }
}

/// A TLS verification failure: retrying cannot help, the trust configuration must change.
fn is_certificate_error(error: &CallError) -> bool {
    matches!(error, CallError::Network(text) if text.contains("certificate"))
}

fn transient(error: &CallError) -> bool {
    match error {
        CallError::Network(_) => !is_certificate_error(error),
        // The connection broke mid-answer: as transient as one that broke before it.
        CallError::Body(BodyError::Read(_)) => true,
        CallError::Aws { status, code, .. } => {
            *status >= 500 || code == "TooManyUpdates" || code == "ThrottlingException"
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        assert!(valid_region("us-east-1"));
        assert!(valid_region("local"));
        assert!(!valid_region(""));
        assert!(!valid_region("us east"));
        assert!(!valid_region("us/east"));
        assert!(!valid_region(&"a".repeat(101)));
    }

    #[test]
    fn transient_errors() {
        assert!(transient(&CallError::Network("refused".into())));
        let untrusted = CallError::Network("client error (Connect): invalid peer certificate: UnknownIssuer".into());
        assert!(!transient(&untrusted));
        assert!(is_certificate_error(&untrusted));
        assert!(transient(&CallError::Aws { status: 503, code: "HTTP503".into(), message: String::new() }));
        assert!(transient(&CallError::Aws { status: 400, code: "TooManyUpdates".into(), message: String::new() }));
        assert!(!transient(&CallError::Aws { status: 400, code: "InvalidActivation".into(), message: String::new() }));
        assert!(transient(&CallError::Body(BodyError::Read("reset".into()))));
        assert!(!transient(&CallError::Body(BodyError::TooLarge { limit: 1, declared: None })));
    }

    #[tokio::test]
    async fn register_refuses_a_plain_http_endpoint() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path().join("state"));
        for endpoint in ["http://127.0.0.1:1", "HTTP://corral.example:8443/", "ws://127.0.0.1:1"] {
            let args = RegisterArgs {
                code: "c".repeat(20),
                id: "i".repeat(36),
                region: "us-east-1".into(),
                endpoint: endpoint.into(),
                ca_bundle: None,
                force: true,
            };
            let error = register(&dir, &args).await.expect_err("must refuse");
            assert!(error.starts_with("--endpoint: ") && error.contains("must be an https:// URL"), "{error}");
            // Refused before anything was generated or written (and before any connection).
            assert!(!dir.path().exists(), "{endpoint}: the state directory was created");
        }
    }

    #[tokio::test]
    async fn already_registered_needs_force() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::new(tmp.path());
        dir.create().expect("create");
        dir.save_registration(&Registration {
            instance_id: "mi-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            endpoint: "https://127.0.0.1:1".into(),
            registered_at: "x".into(),
            key_created_at: "x".into(),
        })
        .expect("save");
        let args = RegisterArgs {
            code: "c".repeat(20),
            id: "i".repeat(36),
            region: "us-east-1".into(),
            endpoint: "https://127.0.0.1:1".into(),
            ca_bundle: None,
            force: false,
        };
        let error = register(&dir, &args).await.expect_err("must refuse");
        assert!(error.contains("--force") && error.contains("mi-0123456789abcdef0"), "{error}");
    }
}
