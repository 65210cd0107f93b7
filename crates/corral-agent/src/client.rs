//! The SSM JSON 1.1 client: one POST per call, signed three ways.
//!
//! `RegisterManagedInstance` goes unsigned (the activation code is the secret),
//! `RequestManagedInstanceRoleToken` and `UpdateManagedInstancePublicKey` are signed with the
//! instance's RSA key, everything else with the role credentials (SigV4 HMAC). Errors come back as
//! `{"__type": "...", "message": "..."}`; they are turned into [`CallError::Aws`] so callers can
//! react to the code (deregistration, expired credentials) rather than to text.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use corral_wire::sigv4::{self, Credentials};
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, HOST};
use rsa::PrivateKey;
use serde::Deserialize;
use time::OffsetDateTime;

/// The `X-Amz-Target` prefix of SSM operations.
const TARGET_PREFIX: &str = "AmazonSSM";

/// The SigV4 service name of SSM.
const SERVICE: &str = "ssm";

/// Whole-call timeout, as the SSM agent's SDK client uses.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Timeout of the ssmmessages REST calls (the SSM agent's).
const REST_TIMEOUT: Duration = Duration::from_secs(15);

/// Connection timeout: a control plane that is down should fail fast and be retried with back-off.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Error bodies and answers larger than this are not from a sane control plane.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The control plane answered with an AWS error.
    #[error("{code}: {message}")]
    Aws {
        /// HTTP status.
        status: u16,
        /// The AWS error code (`__type` without namespace).
        code: String,
        /// The error message.
        message: String,
    },
    /// The request never got an answer (DNS, connection refused, TLS, timeout).
    #[error("network error: {0}")]
    Network(String),
    /// The answer was not what the protocol promises (not JSON, missing fields).
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The request could not be built or signed locally.
    #[error("could not sign the request: {0}")]
    Signing(String),
}

impl CallError {
    /// The AWS error code, when the control plane answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// How a call is authenticated.
pub enum Auth<'a> {
    /// No signature (registration).
    Anonymous,
    /// The SSM agent's RSA-PSS SigV4 variant with the instance key.
    Rsa {
        /// Managed instance ID (the credential's "access key").
        instance_id: &'a str,
        /// The instance's private key.
        key: &'a PrivateKey,
    },
    /// SigV4 HMAC with the role credentials.
    Role(&'a Credentials),
}

/// A client for one control-plane endpoint and region.
#[derive(Clone)]
pub struct SsmClient {
    http: reqwest::Client,
    url: String,
    /// `scheme://host[:port]`, for calls to other paths (ssmmessages).
    origin: String,
    host: String,
    region: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type", default)]
    kind: Option<String>,
    #[serde(default, alias = "Message")]
    message: Option<String>,
}

/// Turns an error answer into a [`CallError::Aws`]. The code comes from the body's `__type`
/// (namespace and suffix stripped the way botocore does), else from `x-amzn-ErrorType`, else
/// from the status, so even a proxy's HTML error page yields something printable.
pub fn parse_error(status: u16, error_type_header: Option<&str>, body: &[u8]) -> CallError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let kind = parsed.as_ref().and_then(|b| b.kind.clone()).or_else(|| error_type_header.map(str::to_string));
    let code = match kind.as_deref().map(corral_wire::json::error_code_from_type) {
        Some(code) if !code.is_empty() => code.to_string(),
        _ => format!("HTTP{status}"),
    };
    let json_body = parsed.is_some();
    let message = match parsed.and_then(|b| b.message) {
        Some(m) => m,
        None if json_body => String::new(),
        None => {
            // Keep some of a non-JSON body for the log, but not a whole HTML page.
            let text = String::from_utf8_lossy(body);
            text.chars().take(200).collect::<String>().trim().to_string()
        }
    };
    CallError::Aws { status, code, message }
}

/// `host[:port]` as reqwest sends it in the `Host` header: the port only when it is not the
/// scheme's default.
pub fn host_header(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    // IPv6 literals keep their brackets in `host_str`, as they must in the header.
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// The TLS client configuration the agent's websocket uses, trusting what [`SsmClient`] trusts:
/// only `ca_bundle`'s roots when given, else the platform's (the verifier reqwest uses too).
pub fn tls_config(ca_bundle: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    use rustls_platform_verifier::BuilderVerifierExt as _;

    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let config = match ca_bundle {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read CA bundle {}: {e}", path.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("CA bundle {} is not PEM: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("CA bundle {} holds a bad certificate: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("CA bundle {} holds no certificate", path.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .with_platform_verifier()
            .map_err(|e| format!("cannot load the platform's trusted roots: {e}"))?
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Loads a PEM bundle of trusted roots; at least one certificate is required.
pub fn load_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read CA bundle {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("CA bundle {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("CA bundle {} holds no certificate", path.display()));
    }
    Ok(certs)
}

impl SsmClient {
    /// A client for `endpoint` (an `https://` URL) trusting only `ca_bundle`'s roots when given,
    /// else the platform's.
    pub fn new(endpoint: &str, region: &str, ca_bundle: Option<&Path>) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(endpoint).map_err(|e| format!("invalid endpoint {endpoint:?}: {e}"))?;
        if parsed.scheme() != "https" && parsed.scheme() != "http" {
            return Err(format!("endpoint {endpoint:?} must be an https:// URL"));
        }
        let host = host_header(&parsed).ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?;
        let mut builder = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // An idle agent talks every few minutes; holding connections open between pings
            // costs the server a socket per machine for nothing.
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("corral-agent/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_bundle {
            builder = builder.tls_certs_only(load_ca_bundle(path)?);
        }
        let http = builder.build().map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        let origin = format!("{}://{host}", parsed.scheme());
        Ok(SsmClient { http, url, origin, host, region: region.to_string() })
    }

    /// The host calls go to (`host[:port]`), e.g. to find the local address used to reach it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Calls `AmazonSSM.<operation>` with a JSON `body` and returns the answer's bytes.
    pub async fn call(&self, operation: &str, body: Vec<u8>, auth: Auth<'_>) -> Result<Vec<u8>, CallError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(corral_wire::json::CONTENT_TYPE));
        let target = format!("{TARGET_PREFIX}.{operation}");
        headers.insert(
            corral_wire::json::TARGET_HEADER,
            HeaderValue::from_str(&target).map_err(|e| CallError::Signing(e.to_string()))?,
        );
        // The signature covers the Host header, so sign exactly what reqwest will send.
        headers.insert(HOST, HeaderValue::from_str(&self.host).map_err(|e| CallError::Signing(e.to_string()))?);
        let now = OffsetDateTime::now_utc();
        match auth {
            Auth::Anonymous => {}
            Auth::Rsa { instance_id, key } => {
                sigv4::sign_request_rsa("POST", "/", "", &mut headers, &body, instance_id, key, &self.region, now)
                    .map_err(|e| CallError::Signing(e.to_string()))?
            }
            Auth::Role(creds) => {
                sigv4::sign_request("POST", "/", "", &mut headers, &body, creds, &self.region, SERVICE, now)
                    .map_err(|e| CallError::Signing(e.to_string()))?
            }
        }
        let response = self
            .http
            .post(&self.url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| CallError::Network(error_chain(&e)))?;
        let status = response.status().as_u16();
        let error_type = response.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = response.bytes().await.map_err(|e| CallError::Network(error_chain(&e)))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(CallError::Protocol(format!("answer of {} bytes is too large", bytes.len())));
        }
        if (200..300).contains(&status) {
            Ok(bytes.to_vec())
        } else {
            Err(parse_error(status, error_type.as_deref(), &bytes))
        }
    }

    /// POSTs `body` (JSON) to `path` on the endpoint's host, SigV4-signed with `creds` for
    /// `service` (signed headers `content-type;host;x-amz-date;x-amz-security-token`, as the SSM
    /// agent signs its ssmmessages calls). Returns the status and body whatever the status.
    pub async fn post_json_signed(
        &self,
        path: &str,
        body: Vec<u8>,
        creds: &Credentials,
        service: &str,
    ) -> Result<(u16, Vec<u8>), CallError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(HOST, HeaderValue::from_str(&self.host).map_err(|e| CallError::Signing(e.to_string()))?);
        sigv4::sign_request(
            "POST",
            path,
            "",
            &mut headers,
            &body,
            creds,
            &self.region,
            service,
            OffsetDateTime::now_utc(),
        )
        .map_err(|e| CallError::Signing(e.to_string()))?;
        let response = self
            .http
            .post(format!("{}{path}", self.origin))
            .headers(headers)
            .body(body)
            .timeout(REST_TIMEOUT)
            .send()
            .await
            .map_err(|e| CallError::Network(error_chain(&e)))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| CallError::Network(error_chain(&e)))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(CallError::Protocol(format!("answer of {} bytes is too large", bytes.len())));
        }
        Ok((status, bytes.to_vec()))
    }

    /// [`SsmClient::call`] with a serialised request and a deserialised answer.
    pub async fn call_json<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        request: &Req,
        auth: Auth<'_>,
    ) -> Result<Resp, CallError> {
        let body = serde_json::to_vec(request).map_err(|e| CallError::Signing(e.to_string()))?;
        let answer = self.call(operation, body, auth).await?;
        // Some servers answer `{}` with an empty body; treat it as an empty object.
        let answer: &[u8] = if answer.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &answer };
        serde_json::from_slice(answer).map_err(|e| CallError::Protocol(format!("{operation}: {e}")))
    }
}

/// The error and its causes on one line: reqwest's top-level message ("error sending request")
/// hides the useful part (connection refused, certificate unknown).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(status: u16, code: &str, message: &str) -> CallError {
        CallError::Aws { status, code: code.into(), message: message.into() }
    }

    #[test]
    fn error_bodies() {
        let check = |status, header: Option<&str>, body: &[u8], expected: CallError| {
            assert_eq!(parse_error(status, header, body), expected, "body {:?}", String::from_utf8_lossy(body));
        };
        check(
            400,
            None,
            br#"{"__type":"InvalidActivation","message":"Activation a is not valid"}"#,
            aws(400, "InvalidActivation", "Activation a is not valid"),
        );
        check(
            400,
            None,
            br#"{"__type":"com.amazonaws.ssm#InvalidInstanceId:http://x/","Message":"gone"}"#,
            aws(400, "InvalidInstanceId", "gone"),
        );
        check(403, Some("AccessDeniedException"), b"{}", aws(403, "AccessDeniedException", ""));
        check(502, None, b"<html>Bad Gateway</html>", aws(502, "HTTP502", "<html>Bad Gateway</html>"));
        check(500, None, b"", aws(500, "HTTP500", ""));
        let long = vec![b'x'; 10_000];
        match parse_error(500, None, &long) {
            CallError::Aws { message, .. } => assert_eq!(message.len(), 200),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn errors_print_code_and_message() {
        assert_eq!(aws(400, "InvalidActivation", "nope").to_string(), "InvalidActivation: nope");
        assert_eq!(aws(400, "InvalidActivation", "nope").code(), Some("InvalidActivation"));
        assert_eq!(CallError::Network("refused".into()).code(), None);
    }

    #[test]
    fn host_headers() {
        let check = |url: &str, expected: &str| {
            let parsed = reqwest::Url::parse(url).expect("url");
            assert_eq!(host_header(&parsed).as_deref(), Some(expected), "{url}");
        };
        check("https://corral.example", "corral.example");
        check("https://corral.example:443/", "corral.example");
        check("https://127.0.0.1:8443", "127.0.0.1:8443");
        check("https://[::1]:8443/", "[::1]:8443");
        check("http://corral.example:80", "corral.example");
    }

    #[test]
    fn tls_configs() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let empty = tmp.path().join("empty.pem");
        std::fs::write(&empty, b"").expect("write");
        assert!(tls_config(Some(&empty)).expect_err("no certificate").contains("no certificate"));
        assert!(tls_config(Some(&tmp.path().join("missing.pem"))).is_err());
        let _ = rustls::crypto::ring::default_provider().install_default();
        assert!(tls_config(None).is_ok());
    }

    #[test]
    fn client_rejects_bad_endpoints() {
        assert!(SsmClient::new("ftp://x", "us-east-1", None).is_err());
        assert!(SsmClient::new("not a url", "us-east-1", None).is_err());
    }
}
