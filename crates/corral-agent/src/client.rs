//! The SSM JSON 1.1 client: one POST per call, signed three ways.
//!
//! `RegisterManagedInstance` goes unsigned (the activation code is the secret),
//! `RequestManagedInstanceRoleToken` and `UpdateManagedInstancePublicKey` are signed with the
//! instance's RSA key, everything else with the role credentials (SigV4 HMAC). Errors come back as
//! `{"__type": "...", "message": "..."}`; they are turned into [`CallError::Aws`] so callers can
//! react to the code (deregistration, expired credentials) rather than to text.
//!
//! Two rules hold for every byte the agent exchanges with the control plane:
//! - Only `https://` endpoints are accepted ([`https_endpoint`]): the activation code, the signed
//!   calls and the role credentials in their answers must never travel in clear. The check runs
//!   where the user gives the endpoint (`register`), where a stored registration is loaded
//!   ([`crate::credentials::Identity::load`]), in [`SsmClient::new`], and before the
//!   control channel's `wss://` upgrade, which is derived from the same endpoint.
//! - An answer's body is read through [`read_body_limited`] only, which refuses an oversized
//!   `Content-Length` at once and stops reading as soon as the bytes received pass the limit, so
//!   a hostile or broken peer cannot make the agent buffer more than that.

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

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL at all.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Invalid {
        /// The endpoint as given.
        endpoint: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A URL whose scheme is not `https` (`http://` would send secrets in clear).
    #[error(
        "endpoint {endpoint:?} must be an https:// URL, not {scheme}://: the activation code and the \
         role credentials must not travel in clear"
    )]
    NotHttps {
        /// The endpoint as given.
        endpoint: String,
        /// Its scheme, lower case.
        scheme: String,
    },
    /// An `https` URL without a host.
    #[error("endpoint {endpoint:?} has no host")]
    NoHost {
        /// The endpoint as given.
        endpoint: String,
    },
}

/// Parses a control-plane endpoint and refuses anything but an `https://` URL with a host.
///
/// Every way an endpoint enters the agent goes through this: `register --endpoint`, the
/// registration record loaded from the state directory (which may have been edited by hand),
/// [`SsmClient::new`] and the control channel's websocket (whose `wss://` URL is derived from it).
pub fn https_endpoint(endpoint: &str) -> Result<reqwest::Url, EndpointError> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| EndpointError::Invalid { endpoint: endpoint.to_string(), reason: e.to_string() })?;
    // `Url` lower-cases the scheme, so `HTTPS://` is accepted and `HTTP://` is not.
    if url.scheme() != "https" {
        return Err(EndpointError::NotHttps { endpoint: endpoint.to_string(), scheme: url.scheme().to_string() });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(EndpointError::NoHost { endpoint: endpoint.to_string() });
    }
    Ok(url)
}

/// Why an answer's body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the agent accepts: either its `Content-Length` says so
    /// (`declared`, nothing of the body was read), or the bytes received passed the limit (reading
    /// stopped there and the connection was dropped).
    #[error(
        "the answer is larger than the {limit} bytes accepted{}",
        declared.map(|d| format!(" (it declares {d} bytes)")).unwrap_or_default()
    )]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
        /// The length the answer declared, when that is what gave it away.
        declared: Option<u64>,
    },
    /// The connection failed while the body was being read.
    #[error("reading the answer failed: {0}")]
    Read(String),
}

/// Reads `response`'s body into memory, at most `limit` bytes.
///
/// `Response::bytes()` (or `text()`/`json()`) would buffer the whole body before a length check
/// could run, so a peer could make the agent hold any amount. Here an oversized `Content-Length`
/// is refused before a byte of the body is read, and a body without one (chunked, or
/// close-delimited) is read chunk by chunk and refused as soon as it would pass `limit`. Dropping
/// the half-read response closes its connection, so nothing more is received either.
pub async fn read_body_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    // reqwest reports the framing's exact length; the header is the fallback in case a body
    // wrapper hides it. A peer can lie in either direction, which is why the count below is
    // enforced too (hyper itself never reads past a declared length).
    let declared = response
        .content_length()
        .or_else(|| response.headers().get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse::<u64>().ok());
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if let Some(declared) = declared.filter(|&d| d > limit_u64) {
        return Err(BodyError::TooLarge { limit, declared: Some(declared) });
    }
    // The declared length is at most `limit` here, so reserving it is bounded.
    let mut body = Vec::with_capacity(declared.and_then(|d| usize::try_from(d).ok()).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::Read(error_chain(&e)))? {
        // `body.len() <= limit` always holds, so the subtraction cannot underflow; the check runs
        // before the chunk is kept, so the buffer never grows past `limit`.
        if chunk.len() > limit - body.len() {
            return Err(BodyError::TooLarge { limit, declared: None });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

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
    /// The answer's body was too large, or broke off while it was being read.
    #[error("{0}")]
    Body(#[from] BodyError),
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
    /// A client for `endpoint` (an `https://` URL; anything else is refused) trusting only
    /// `ca_bundle`'s roots when given, else the platform's.
    pub fn new(endpoint: &str, region: &str, ca_bundle: Option<&Path>) -> Result<Self, String> {
        let parsed = https_endpoint(endpoint).map_err(|e| e.to_string())?;
        let host = host_header(&parsed).ok_or_else(|| format!("endpoint {endpoint:?} has no host"))?;
        let mut builder = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // An idle agent talks every few minutes; holding connections open between pings
            // costs the server a socket per machine for nothing.
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("corral-agent/", env!("CARGO_PKG_VERSION")))
            // Belt and braces to the check above: reqwest itself then refuses any URL that is
            // not https, whatever path a later change builds a request from.
            .https_only(true)
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
        let bytes = read_body_limited(response, MAX_RESPONSE_BYTES).await?;
        if (200..300).contains(&status) {
            Ok(bytes)
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
        let bytes = read_body_limited(response, MAX_RESPONSE_BYTES).await?;
        Ok((status, bytes))
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
        let _ = rustls::crypto::ring::default_provider().install_default();
        assert!(SsmClient::new("ftp://x", "us-east-1", None).is_err());
        assert!(SsmClient::new("not a url", "us-east-1", None).is_err());
        let error = SsmClient::new("http://127.0.0.1:8443", "us-east-1", None).err().expect("http:// is refused");
        assert!(error.contains("must be an https:// URL, not http://"), "{error}");
        assert!(SsmClient::new("https://127.0.0.1:8443", "us-east-1", None).is_ok());
    }

    #[test]
    fn only_https_endpoints() {
        for ok in ["https://corral.example", "https://127.0.0.1:8443/", "HTTPS://[::1]:8443"] {
            assert!(https_endpoint(ok).is_ok(), "{ok}");
        }
        for (endpoint, scheme) in
            [("http://corral.example:8443", "http"), ("HTTP://x", "http"), ("wss://x", "wss"), ("ws://x", "ws")]
        {
            assert_eq!(
                https_endpoint(endpoint),
                Err(EndpointError::NotHttps { endpoint: endpoint.into(), scheme: scheme.into() }),
                "{endpoint}"
            );
        }
        assert!(matches!(https_endpoint("corral.example:8443"), Err(EndpointError::NotHttps { .. })));
        assert!(matches!(https_endpoint("https://"), Err(EndpointError::Invalid { .. })));
        assert!(matches!(https_endpoint("not a url"), Err(EndpointError::Invalid { .. })));
    }

    /// How the test server frames its answer's body.
    #[derive(Clone, Copy)]
    enum Framing {
        /// `Transfer-Encoding: chunked`, no length anywhere.
        Chunked,
        /// `Content-Length: <n>` (which may be a lie).
        Declared(u64),
    }

    /// What the test server managed to send.
    struct Served {
        /// Body bytes written (accepted by the socket).
        written: usize,
        /// Whether the whole body was written.
        complete: bool,
    }

    /// The body byte at `offset`: a pattern, so a reordered or truncated read is noticed.
    fn body_byte(offset: usize) -> u8 {
        (offset % 251) as u8
    }

    /// A one-shot HTTP/1.1 server on 127.0.0.1 that answers its first request with `body_len`
    /// body bytes in writes of `chunk` bytes, then waits for the client to close. Returns the
    /// URL and what it managed to send.
    async fn one_answer_server(
        framing: Framing,
        body_len: usize,
        chunk: usize,
    ) -> (String, tokio::task::JoinHandle<std::io::Result<Served>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await?;
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                request.extend_from_slice(&buf[..n]);
            }
            let head = match framing {
                Framing::Chunked => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string(),
                Framing::Declared(n) => format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n"),
            };
            socket.write_all(head.as_bytes()).await?;
            let mut written = 0;
            while written < body_len {
                let n = chunk.min(body_len - written);
                let data: Vec<u8> = (written..written + n).map(body_byte).collect();
                let sent = match framing {
                    Framing::Chunked => {
                        let mut framed = format!("{n:x}\r\n").into_bytes();
                        framed.extend_from_slice(&data);
                        framed.extend_from_slice(b"\r\n");
                        socket.write_all(&framed).await
                    }
                    Framing::Declared(_) => socket.write_all(&data).await,
                };
                if sent.is_err() {
                    // The client hung up: what it did not read was never sent.
                    return Ok(Served { written, complete: false });
                }
                written += n;
            }
            if matches!(framing, Framing::Chunked) && socket.write_all(b"0\r\n\r\n").await.is_err() {
                return Ok(Served { written, complete: false });
            }
            // Hold the connection until the client closes it, as a slow or hostile peer would.
            while socket.read(&mut buf).await.unwrap_or(0) > 0 {}
            Ok(Served { written, complete: true })
        });
        (url, server)
    }

    /// A plain-HTTP client for the local test server (the agent's own client refuses http://).
    fn plain_client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().build().expect("client")
    }

    /// Runs `future` with a deadline, so a read that does not stop fails the test instead of
    /// hanging it.
    async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), future).await.expect("did not finish within 10 s")
    }

    #[tokio::test]
    async fn bounded_read_stops_at_the_limit_of_a_chunked_answer() {
        const LIMIT: usize = 64 * 1024;
        // Far more than the loopback socket buffers can hold, so the server can only write it
        // all if the client keeps reading.
        const TOTAL: usize = 128 << 20;
        let (url, server) = one_answer_server(Framing::Chunked, TOTAL, 16 * 1024).await;
        let client = plain_client();
        let response = within(client.get(&url).send()).await.expect("answer");
        assert_eq!(response.content_length(), None, "the answer must not declare its length");
        let result = within(read_body_limited(response, LIMIT)).await;
        assert_eq!(result, Err(BodyError::TooLarge { limit: LIMIT, declared: None }));
        // The half-read response is gone, so its connection is closed and the server's writes
        // fail long before the body is out.
        drop(client);
        let served = within(server).await.expect("server task").expect("server");
        assert!(!served.complete, "the client read the whole body");
        assert!(served.written < TOTAL / 4, "the server wrote {} of {TOTAL} bytes", served.written);
    }

    #[tokio::test]
    async fn bounded_read_refuses_an_oversized_content_length_before_reading() {
        const LIMIT: usize = 1024;
        // The server declares 100 MiB and sends none of it: only a client that trusts the
        // header to refuse returns; one that reads waits for the body and hits the deadline.
        let (url, server) = one_answer_server(Framing::Declared(100 << 20), 0, 1).await;
        let client = plain_client();
        let response = within(client.get(&url).send()).await.expect("answer");
        let result = within(read_body_limited(response, LIMIT)).await;
        assert_eq!(result, Err(BodyError::TooLarge { limit: LIMIT, declared: Some(100 << 20) }));
        drop(client);
        within(server).await.expect("server task").expect("server");
    }

    #[tokio::test]
    async fn bounded_read_keeps_answers_up_to_the_limit() {
        const LIMIT: usize = 40_000;
        let expected: Vec<u8> = (0..LIMIT).map(body_byte).collect();
        for framing in [Framing::Chunked, Framing::Declared(LIMIT as u64)] {
            let (url, server) = one_answer_server(framing, LIMIT, 3_000).await;
            let client = plain_client();
            let response = within(client.get(&url).send()).await.expect("answer");
            let body = within(read_body_limited(response, LIMIT)).await.expect("exactly the limit is fine");
            assert!(body == expected, "body of {} bytes differs", body.len());
            drop(client);
            assert!(within(server).await.expect("server task").expect("server").complete);
        }
        // One byte more, counted while reading (chunked), is refused.
        let (url, server) = one_answer_server(Framing::Chunked, LIMIT + 1, 3_000).await;
        let client = plain_client();
        let response = within(client.get(&url).send()).await.expect("answer");
        let result = within(read_body_limited(response, LIMIT)).await;
        assert_eq!(result, Err(BodyError::TooLarge { limit: LIMIT, declared: None }));
        drop(client);
        within(server).await.expect("server task").expect("server");
    }

    #[test]
    fn body_errors_are_typed_call_errors() {
        let too_large = BodyError::TooLarge { limit: 10, declared: Some(11) };
        assert_eq!(too_large.to_string(), "the answer is larger than the 10 bytes accepted (it declares 11 bytes)");
        assert_eq!(CallError::from(too_large.clone()).code(), None);
        assert_eq!(CallError::from(too_large.clone()), CallError::Body(too_large));
    }
}
