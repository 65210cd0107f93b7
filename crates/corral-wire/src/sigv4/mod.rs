//! AWS Signature Version 4, as a verifier (the control plane) and as a signer (our agent, the load
//! tool and tests).
//!
//! Two signature flavours share one canonical request and string to sign:
//! - the ordinary HMAC-SHA256 signature every AWS client computes from an access key's secret
//!   ([`verify_hmac`], [`sign_request`]);
//! - the SSM agent's RSA variant, where the "secret" is the managed instance's private key and the
//!   signature is RSASSA-PSS in base64 ([`verify_rsa_pss`], [`sign_request_rsa`]).
//!
//! A server verifies a request in this order: [`parse_authorization`] on the `Authorization` header,
//! [`check_request_time`] on `X-Amz-Date` against the credential scope, look up the key for
//! [`Authorization::access_key_id`], then [`verify_hmac`] or [`verify_rsa_pss`]. Nothing here looks
//! anything up or reads a clock; the caller passes `now`.

mod canonical;
mod rsa_pss;

pub(crate) use canonical::hex_value;
pub use canonical::{
    canonical_query_string, canonical_request, canonical_request_with_query, canonical_uri, query_forms,
};
pub use rsa_pss::{sign_request_rsa, verify_rsa_pss};

use hmac::{Hmac, KeyInit, Mac};
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, HOST};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::time::{format_amz_date, parse_amz_date};

/// The only algorithm name SigV4 defines for header-based signing; the RSA variant reuses it.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The fixed last element of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";

/// The header carrying the signing time, `YYYYMMDDTHHMMSSZ`.
pub const AMZ_DATE_HEADER: &str = "x-amz-date";

/// The header carrying a session token with temporary credentials.
pub const SECURITY_TOKEN_HEADER: &str = "x-amz-security-token";

/// The header some clients use to state the payload hash explicitly.
pub const CONTENT_SHA256_HEADER: &str = "x-amz-content-sha256";

/// Lower-case hex SHA-256 of the empty string, the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The signing name the SSM agent's RSA signature is always scoped to.
pub const RSA_SIGNING_SERVICE: &str = "ssm";

/// Headers [`sign_request`] leaves out of the signature. They are added or rewritten by HTTP
/// stacks and proxies after signing (botocore adds `content-length` and the `amz-sdk-*` pair
/// after it signs), so signing them would make the signature depend on the transport.
pub const HMAC_UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "user-agent",
    "content-length",
    "expect",
    "transfer-encoding",
    "connection",
    "accept-encoding",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "x-amzn-trace-id",
];

/// Headers [`sign_request_rsa`] leaves out: the SSM agent's RSA signer signs every other header
/// present when it runs (agent-protocol.md §2.1).
pub const RSA_UNSIGNED_HEADERS: &[&str] = &["authorization", "user-agent"];

// === errors ===

/// Why a SigV4 signature could not be produced or was not accepted.
///
/// The `Display` texts follow AWS's own messages where AWS has one, so they can go straight into
/// an `IncompleteSignature`, `SignatureDoesNotMatch` / `InvalidSignatureException` or
/// `RequestExpired` error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The `Authorization` header names an algorithm other than `AWS4-HMAC-SHA256`.
    #[error("Unsupported AWS 'algorithm': '{0}'. Only AWS4-HMAC-SHA256 is supported.")]
    UnsupportedAlgorithm(String),
    /// One of `Credential`, `SignedHeaders` or `Signature` is absent or empty.
    #[error("Authorization header requires '{0}' parameter.")]
    MissingComponent(&'static str),
    /// The header's component list cannot be read (no `=`, a repeated or unknown component).
    #[error("Authorization header is malformed: {0}")]
    MalformedAuthorization(String),
    /// `Credential=` is not `AKID/YYYYMMDD/region/service/aws4_request`.
    #[error("Credential is malformed: {0}")]
    MalformedCredential(String),
    /// `SignedHeaders=` lists no header, or an empty name.
    #[error("Authorization header requires a non-empty 'SignedHeaders' parameter.")]
    EmptySignedHeaders,
    /// `host` is not among the signed headers. AWS requires it so a signature cannot be replayed
    /// against another endpoint.
    #[error("'Host' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    /// A header listed in `SignedHeaders` is not in the request.
    #[error("The request signature covers header '{0}', but the request does not carry it.")]
    MissingSignedHeader(String),
    /// A header value is not UTF-8 (verifying) or cannot be carried in an HTTP header (signing).
    #[error("The value of header '{0}' cannot be used in a signature.")]
    InvalidHeaderValue(String),
    /// A signed `x-amz-content-sha256` header disagrees with the body actually received. We
    /// accept no unsigned or streaming payloads, so the header must be the body's real hash.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// `X-Amz-Date` is not `YYYYMMDDTHHMMSSZ`.
    #[error("Date must be in ISO-8601 'basic format'. Got '{0}'. See http://en.wikipedia.org/wiki/ISO_8601")]
    MalformedDate(String),
    /// The credential scope's date is not the date part of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
        .amz_date.get(..8).unwrap_or(.amz_date)
    )]
    ScopeDateMismatch {
        /// The date in the credential scope.
        scope_date: String,
        /// The full `X-Amz-Date` value.
        amz_date: String,
    },
    /// The request was signed more than the allowed skew before `now`.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {}).", skew_text(.max_skew))]
    Expired {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// The earliest acceptable signing time, `now - max_skew`, in amz-date form.
        earliest: String,
        /// The server time used, in amz-date form.
        now: String,
        /// The allowed skew.
        max_skew: Duration,
    },
    /// The request was signed more than the allowed skew after `now`.
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + {}).", skew_text(.max_skew))]
    NotYetCurrent {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// The latest acceptable signing time, `now + max_skew`, in amz-date form.
        latest: String,
        /// The server time used, in amz-date form.
        now: String,
        /// The allowed skew.
        max_skew: Duration,
    },
    /// The signature does not match. The canonical request and string to sign we computed are
    /// kept so the server can log them or, as AWS does for Query services, return them.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch {
        /// The canonical request the server computed.
        canonical_request: String,
        /// The string to sign the server computed.
        string_to_sign: String,
    },
    /// Signing side: the headers to sign carry no `Host`, which must be signed.
    #[error("the request to sign has no Host header")]
    MissingHost,
    /// Signing side: the RSA private-key operation failed.
    #[error("RSA-PSS signing failed: {0}")]
    RsaSigning(String),
}

/// "5 min." as AWS writes the window in its expiry messages; seconds when not whole minutes.
fn skew_text(skew: &Duration) -> String {
    let secs = skew.whole_seconds();
    if secs % 60 == 0 {
        format!("{} min.", secs / 60)
    } else {
        format!("{secs} sec.")
    }
}

// === credential scope and the Authorization header ===

/// The `YYYYMMDD/region/service/aws4_request` part of a signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialScope {
    /// Signing date, `YYYYMMDD`.
    pub date: String,
    /// Region the client signed for (its configured region, whatever our endpoint).
    pub region: String,
    /// Signing name of the service (`ssm`, `iam`, `sts`, ...).
    pub service: String,
}

impl CredentialScope {
    /// `20150830/us-east-1/iam/aws4_request`.
    pub fn to_scope_string(&self) -> String {
        format!("{}/{}/{}/{}", self.date, self.region, self.service, SCOPE_TERMINATOR)
    }
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Access key id (`AKIA...`/`ASIA...`), or the managed instance id for the RSA variant.
    pub access_key_id: String,
    /// The credential scope the client signed with.
    pub scope: CredentialScope,
    /// Signed header names, lower-cased, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The signature: 64 lower-case hex digits (HMAC) or standard base64 (RSA-PSS).
    pub signature: String,
}

impl Authorization {
    /// The header value, in the exact layout botocore writes (`, ` separators).
    pub fn to_header_value(&self) -> String {
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={}",
            self.access_key_id,
            self.scope.to_scope_string(),
            self.signed_headers.join(";"),
            self.signature
        )
    }

    /// Whether `name` (lower-case) is among the signed headers.
    pub fn signs_header(&self, name: &str) -> bool {
        self.signed_headers.iter().any(|h| h == name)
    }
}

/// Parses an `Authorization` header value.
///
/// Accepts `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=...` with the three components in any order and any
/// amount of blank space around separators. Rejects another algorithm, a missing, repeated or
/// unknown component, a credential that is not five `/`-separated parts ending in `aws4_request`,
/// and an empty signed-header list. The signature's encoding is not checked here because it
/// differs between the HMAC (hex) and RSA (base64) variants; a bad one simply fails to verify.
pub fn parse_authorization(value: &str) -> Result<Authorization, SigV4Error> {
    let value = value.trim();
    let (algorithm, rest) = match value.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    if algorithm != ALGORITHM {
        // Echo at most a short prefix: the value is attacker-controlled and ends up in messages.
        let shown: String = algorithm.chars().take(40).collect();
        return Err(SigV4Error::UnsupportedAlgorithm(shown));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            // Tolerate a stray or trailing comma; the components are what matter.
            continue;
        }
        let (key, val) = part.split_once('=').ok_or_else(|| {
            SigV4Error::MalformedAuthorization(format!("'{}' is not a key=value component", truncate(part)))
        })?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(SigV4Error::MalformedAuthorization(format!("unknown component '{}'", truncate(other))))
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(SigV4Error::MalformedAuthorization(format!(
                "component '{}' appears more than once",
                key.trim()
            )));
        }
    }

    let credential = credential.filter(|c| !c.is_empty()).ok_or(SigV4Error::MissingComponent("Credential"))?;
    let signed_headers = signed_headers.ok_or(SigV4Error::MissingComponent("SignedHeaders"))?;
    let signature = signature.filter(|s| !s.is_empty()).ok_or(SigV4Error::MissingComponent("Signature"))?;

    let (access_key_id, scope) = parse_credential(credential)?;
    let signed_headers = parse_signed_headers(signed_headers)?;
    Ok(Authorization { access_key_id, scope, signed_headers, signature: signature.to_string() })
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

fn parse_credential(credential: &str) -> Result<(String, CredentialScope), SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(SigV4Error::MalformedCredential(format!(
            "expected 'AccessKeyId/YYYYMMDD/region/service/aws4_request', got {} '/'-separated parts",
            parts.len()
        )));
    };
    if *terminator != SCOPE_TERMINATOR {
        return Err(SigV4Error::MalformedCredential(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'",
            truncate(terminator)
        )));
    }
    if akid.is_empty() || region.is_empty() || service.is_empty() {
        return Err(SigV4Error::MalformedCredential("access key id, region and service must not be empty".to_string()));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::MalformedCredential(format!(
            "credential scope date '{}' is not YYYYMMDD",
            truncate(date)
        )));
    }
    Ok((
        (*akid).to_string(),
        CredentialScope { date: (*date).to_string(), region: (*region).to_string(), service: (*service).to_string() },
    ))
}

fn parse_signed_headers(list: &str) -> Result<Vec<String>, SigV4Error> {
    if list.is_empty() {
        return Err(SigV4Error::EmptySignedHeaders);
    }
    list.split(';')
        .map(|h| {
            let h = h.trim();
            if h.is_empty() {
                Err(SigV4Error::EmptySignedHeaders)
            } else {
                Ok(h.to_ascii_lowercase())
            }
        })
        .collect()
}

// === the request being verified ===

/// The parts of a received HTTP request that a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestToVerify<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// Raw path as received (still percent-encoded), e.g. `/` or `/aws/`.
    pub path: &'a str,
    /// Raw query string without the `?`; empty when there is none.
    pub query: &'a str,
    /// Request headers. With HTTP/2 the caller must insert `host` from `:authority` first.
    pub headers: &'a HeaderMap,
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// `AWS4-HMAC-SHA256\n<amz-date>\n<scope>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(amz_date: &str, scope: &CredentialScope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.to_scope_string(),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The SigV4 signing key: `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
/// "aws4_request")`. Servers may cache it per key and scope; it is valid for one day.
pub fn signing_key(secret_access_key: &str, scope: &CredentialScope) -> [u8; 32] {
    let k_secret = format!("AWS4{secret_access_key}");
    let k_date = hmac_sha256(k_secret.as_bytes(), scope.date.as_bytes());
    let k_region = hmac_sha256(&k_date, scope.region.as_bytes());
    let k_service = hmac_sha256(&k_region, scope.service.as_bytes());
    hmac_sha256(&k_service, SCOPE_TERMINATOR.as_bytes())
}

fn require_host_signed(auth: &Authorization) -> Result<(), SigV4Error> {
    if auth.signs_header("host") {
        Ok(())
    } else {
        Err(SigV4Error::HostNotSigned)
    }
}

/// Whether `region` can be a region name in a credential scope: lower-case letters, digits and
/// hyphens, starting with a letter and not ending with a hyphen, at most 63 characters
/// (`us-east-1`, `eu-central-2`, `us-gov-west-1`, `aws-global`). Any such name is accepted (a
/// client signs with its configured region, whatever Corral's); spaces, upper case or an empty
/// region are not a region.
pub fn is_valid_region_name(region: &str) -> bool {
    let bytes = region.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.last().is_some_and(|b| *b != b'-')
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Checks an HMAC-SHA256 SigV4 signature.
///
/// `amz_date` is the request's `X-Amz-Date` (check it with [`check_request_time`] first). The
/// signature is compared in constant time. `host` must be a signed header.
pub fn verify_hmac(
    auth: &Authorization,
    req: &RequestToVerify<'_>,
    amz_date: &str,
    secret_access_key: &str,
) -> Result<(), SigV4Error> {
    require_host_signed(auth)?;
    let key = signing_key(secret_access_key, &auth.scope);
    let matches = |canonical_request: &str| {
        let string_to_sign = string_to_sign(amz_date, &auth.scope, canonical_request);
        let expected = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        // Slices of different lengths compare unequal without leaking where they differ.
        (bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())), string_to_sign)
    };
    // The SigV4 form is what every SDK signs: the hot path builds only that one.
    let canonical_request = canonical_request(req, &auth.signed_headers)?;
    let (ok, string_to_sign) = matches(&canonical_request);
    if ok {
        return Ok(());
    }
    // Only a mismatch pays for the forms some clients sign for unusual queries.
    for query in canonical::query_forms(req.query).into_iter().skip(1) {
        if matches(&canonical::canonical_request_with_query(req, &auth.signed_headers, &query)?).0 {
            return Ok(());
        }
    }
    Err(SigV4Error::SignatureMismatch { canonical_request, string_to_sign })
}

/// Checks `X-Amz-Date` against the credential scope date and the server clock.
///
/// A request is accepted when `now - max_skew <= signed <= now + max_skew` (AWS uses 5 minutes).
/// Returns the parsed signing time.
pub fn check_request_time(
    amz_date: &str,
    scope_date: &str,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<OffsetDateTime, SigV4Error> {
    let signed = parse_amz_date(amz_date).ok_or_else(|| SigV4Error::MalformedDate(truncate(amz_date)))?;
    // parse_amz_date accepted it, so it is 16 ASCII characters.
    if amz_date.get(..8) != Some(scope_date) {
        return Err(SigV4Error::ScopeDateMismatch { scope_date: truncate(scope_date), amz_date: amz_date.to_string() });
    }
    // Checked arithmetic: a nonsensical configured skew must not panic the server.
    let earliest = now.checked_sub(max_skew).unwrap_or(now);
    let latest = now.checked_add(max_skew).unwrap_or(now);
    if signed < earliest {
        return Err(SigV4Error::Expired {
            signed: amz_date.to_string(),
            earliest: format_amz_date(earliest),
            now: format_amz_date(now),
            max_skew,
        });
    }
    if signed > latest {
        return Err(SigV4Error::NotYetCurrent {
            signed: amz_date.to_string(),
            latest: format_amz_date(latest),
            now: format_amz_date(now),
            max_skew,
        });
    }
    Ok(signed)
}

// === signing ===

/// Long-term or temporary AWS credentials for [`sign_request`].
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Redacted so credentials can sit in structs that get logged with `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Lower-case names of the headers present, minus `excluded`, sorted and de-duplicated.
fn headers_to_sign(headers: &HeaderMap, excluded: &[&str]) -> Vec<String> {
    let mut names: Vec<String> =
        headers.keys().map(|name| name.as_str()).filter(|name| !excluded.contains(name)).map(str::to_string).collect();
    names.sort();
    names.dedup();
    names
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, SigV4Error> {
    HeaderValue::from_str(value).map_err(|_| SigV4Error::InvalidHeaderValue(name.to_string()))
}

/// Signs a request the way botocore does: sets `x-amz-date` (and `x-amz-security-token` when the
/// credentials carry one), then signs every header present except [`HMAC_UNSIGNED_HEADERS`] and
/// sets `authorization`. `headers` must already contain `host`, exactly as it will be sent.
/// `path` and `query` are as they will appear on the wire (already percent-encoded).
#[allow(clippy::too_many_arguments)] // mirrors the parts of a request; a builder would add nothing
pub fn sign_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    if !headers.contains_key(HOST) {
        return Err(SigV4Error::MissingHost);
    }
    // Re-signing (a retry) must not sign the previous signature.
    headers.remove(AUTHORIZATION);
    let amz_date = format_amz_date(now);
    headers.insert(AMZ_DATE_HEADER, header_value(AMZ_DATE_HEADER, &amz_date)?);
    if let Some(token) = &creds.session_token {
        headers.insert(SECURITY_TOKEN_HEADER, header_value(SECURITY_TOKEN_HEADER, token)?);
    }
    let signed_headers = headers_to_sign(headers, HMAC_UNSIGNED_HEADERS);
    let scope = CredentialScope {
        date: amz_date.get(..8).unwrap_or(&amz_date).to_string(),
        region: region.to_string(),
        service: service.to_string(),
    };
    let req = RequestToVerify { method, path, query, headers, body };
    let canonical_request = canonical_request(&req, &signed_headers)?;
    let string_to_sign = string_to_sign(&amz_date, &scope, &canonical_request);
    let key = signing_key(&creds.secret_access_key, &scope);
    let auth = Authorization {
        access_key_id: creds.access_key_id.clone(),
        scope,
        signed_headers,
        signature: hex::encode(hmac_sha256(&key, string_to_sign.as_bytes())),
    };
    headers.insert(AUTHORIZATION, header_value("authorization", &auth.to_header_value())?);
    Ok(())
}

#[cfg(test)]
mod tests;
