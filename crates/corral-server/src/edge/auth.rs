//! Authentication: turns a signed request into a [`Principal`], or refuses it.
//!
//! Order of checks, as AWS does them: the `Authorization` header parses and names the signed
//! headers it must; the credential scope names the service the request was routed to; the
//! request time is inside the skew window; the access key exists and is active (temporary keys:
//! the session token matches and has not expired); finally the signature, compared in constant
//! time.

use corral_store::{AccessKeyStatus, SessionPrincipal, Store};
use corral_wire::sigv4::{self, Authorization, RequestToVerify, SigV4Error};
use time::OffsetDateTime;

use crate::context::{Principal, PrincipalKind};
use crate::edge::error::{EdgeError, SIGNATURE_MISMATCH_MESSAGE};
use crate::ids;

/// What authentication needs to know about the request.
pub struct SignedRequest<'a> {
    /// The request as received.
    pub request: RequestToVerify<'a>,
    /// The signing name of the service the request was routed to (`ssm`, `sts`, ...).
    pub service: &'a str,
    /// The server's clock.
    pub now: OffsetDateTime,
    /// Allowed clock skew.
    pub max_skew: time::Duration,
}

/// The result of a successful authentication.
pub struct Authenticated {
    /// Who signed the request.
    pub principal: Principal,
    /// The region of the credential scope.
    pub region: String,
}

/// Parses the `Authorization` header, as far as the router needs it (the credential scope's
/// service decides where a Query request goes).
pub fn parse_authorization(headers: &http::HeaderMap) -> Result<Authorization, EdgeError> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or(EdgeError::MissingAuthenticationToken)?;
    let value =
        value.to_str().map_err(|_| EdgeError::IncompleteSignature("Authorization header is not valid ASCII".into()))?;
    sigv4::parse_authorization(value).map_err(|e| EdgeError::IncompleteSignature(e.to_string()))
}

/// Authenticates a SigV4 (HMAC) request.
pub async fn authenticate(
    store: &dyn Store,
    auth: &Authorization,
    req: &SignedRequest<'_>,
) -> Result<Authenticated, EdgeError> {
    let signed = |name: &str| auth.signed_headers.iter().any(|h| h == name);
    if !signed("host") {
        return Err(EdgeError::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    require_signed_routing_headers(auth, req)?;
    let amz_date = header_str(req.request.headers, "x-amz-date")
        .or_else(|| header_str(req.request.headers, "date"))
        .ok_or_else(|| {
            EdgeError::IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
            )
        })?
        .to_string();
    check_scope(auth, req)?;
    sigv4::check_request_time(&amz_date, &auth.scope.date, req.now, req.max_skew).map_err(|e| match e {
        SigV4Error::Expired { .. } | SigV4Error::NotYetCurrent { .. } => EdgeError::SignatureExpired(e.to_string()),
        other => EdgeError::IncompleteSignature(other.to_string()),
    })?;

    let key_id = auth.access_key_id.as_str();
    let (secret, principal) = if key_id.starts_with("ASIA") {
        resolve_session_key(store, key_id, req).await?
    } else {
        // A long-term key has no session token: one sent with it is not valid for it, and
        // AWS refuses the request rather than ignoring what it cannot check.
        if req.request.headers.contains_key("x-amz-security-token") {
            return Err(EdgeError::UnrecognizedClient);
        }
        resolve_long_term_key(store, key_id).await?
    };

    sigv4::verify_hmac(auth, &req.request, &amz_date, &secret).map_err(|e| match e {
        SigV4Error::SignatureMismatch { canonical_request, string_to_sign } => {
            let canonical_request = redact_credentials(&canonical_request);
            tracing::debug!(%canonical_request, %string_to_sign, "signature mismatch");
            EdgeError::SignatureDoesNotMatch(SIGNATURE_MISMATCH_MESSAGE.to_string())
        }
        SigV4Error::MissingSignedHeader(h) => {
            EdgeError::IncompleteSignature(format!("Signed header '{h}' is not present in the request."))
        }
        other => EdgeError::IncompleteSignature(other.to_string()),
    })?;
    Ok(Authenticated { principal, region: auth.scope.region.clone() })
}

async fn resolve_long_term_key(store: &dyn Store, key_id: &str) -> Result<(String, Principal), EdgeError> {
    let key = store
        .get_access_key(key_id)
        .await
        .map_err(|e| EdgeError::Internal(e.to_string()))?
        .ok_or(EdgeError::UnrecognizedClient)?;
    if key.status != AccessKeyStatus::Active {
        return Err(EdgeError::UnrecognizedClient);
    }
    let user = store
        .get_user(&key.account_id, &key.user_name)
        .await
        .map_err(|e| EdgeError::Internal(e.to_string()))?
        .ok_or(EdgeError::UnrecognizedClient)?;
    let principal = Principal {
        account_id: user.account_id.clone(),
        arn: user.arn.clone(),
        user_id: user.user_id.clone(),
        access_key_id: key.access_key_id.clone(),
        kind: PrincipalKind::User { user_name: user.user_name.clone() },
    };
    Ok((key.secret_access_key, principal))
}

async fn resolve_session_key(
    store: &dyn Store,
    key_id: &str,
    req: &SignedRequest<'_>,
) -> Result<(String, Principal), EdgeError> {
    let cred = store
        .get_session_credential(key_id)
        .await
        .map_err(|e| EdgeError::Internal(e.to_string()))?
        .ok_or(EdgeError::UnrecognizedClient)?;
    let token = header_str(req.request.headers, "x-amz-security-token").ok_or(EdgeError::UnrecognizedClient)?;
    let presented = ids::session_token_hash(token);
    if !constant_time_eq(presented.as_bytes(), cred.session_token_hash.as_bytes()) {
        return Err(EdgeError::UnrecognizedClient);
    }
    if req.now >= cred.expires_at {
        return Err(EdgeError::ExpiredToken);
    }
    let principal = match &cred.principal {
        SessionPrincipal::User { user_name } => {
            let user = store
                .get_user(&cred.account_id, user_name)
                .await
                .map_err(|e| EdgeError::Internal(e.to_string()))?
                // A session outlives nothing: deleting the user ends its sessions.
                .ok_or(EdgeError::UnrecognizedClient)?;
            Principal {
                account_id: user.account_id.clone(),
                arn: user.arn.clone(),
                user_id: user.user_id.clone(),
                access_key_id: cred.access_key_id.clone(),
                kind: PrincipalKind::UserSession { user_name: user.user_name.clone() },
            }
        }
        SessionPrincipal::AssumedRole { role_name, role_id, session_name } => Principal {
            account_id: cred.account_id.clone(),
            arn: format!("arn:aws:sts::{}:assumed-role/{}/{}", cred.account_id, role_name, session_name),
            user_id: format!("{role_id}:{session_name}"),
            access_key_id: cred.access_key_id.clone(),
            kind: PrincipalKind::AssumedRole {
                role_name: role_name.clone(),
                role_id: role_id.clone(),
                session_name: session_name.clone(),
            },
        },
    };
    Ok((cred.secret_access_key, principal))
}

/// The credential scope must name this service and a region (any valid region name: clients
/// sign with their configured region, whatever Corral's).
fn check_scope(auth: &Authorization, req: &SignedRequest<'_>) -> Result<(), EdgeError> {
    if auth.scope.service != req.service {
        return Err(EdgeError::SignatureDoesNotMatch(format!(
            "Credential should be scoped to correct service: '{}'. ",
            req.service
        )));
    }
    if !sigv4::is_valid_region_name(&auth.scope.region) {
        return Err(EdgeError::SignatureDoesNotMatch(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.scope.region.escape_default()
        )));
    }
    Ok(())
}

/// Headers that decide what a request does (`X-Amz-Target` picks the operation, `Content-Type`
/// how the body is read): when present they must be signed, as every AWS SDK signs them, or a
/// captured request could be replayed as another operation with the same signature.
const MUST_BE_SIGNED_WHEN_PRESENT: &[&str] = &["x-amz-target", "content-type"];

fn require_signed_routing_headers(auth: &Authorization, req: &SignedRequest<'_>) -> Result<(), EdgeError> {
    for name in MUST_BE_SIGNED_WHEN_PRESENT {
        if req.request.headers.contains_key(*name) && !auth.signed_headers.iter().any(|h| h == name) {
            return Err(EdgeError::IncompleteSignature(format!(
                "'{name}' is present in the request and must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    Ok(())
}

/// Headers whose values are credentials: never written to a log, not even at debug level.
const CREDENTIAL_HEADERS: &[&str] = &["x-amz-security-token", "authorization", "cookie", "proxy-authorization"];

/// A canonical request fit for a log line: the values of credential headers replaced.
pub fn redact_credentials(canonical_request: &str) -> String {
    canonical_request
        .lines()
        .map(|line| match line.split_once(':') {
            Some((name, _)) if CREDENTIAL_HEADERS.contains(&name) => format!("{name}:<redacted>"),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn header_str<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Which keys of a managed instance may sign a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceKeys {
    /// The current key, or the previous one within its grace window after a rotation, so an
    /// agent that lost the rotation's answer can recover (agent-protocol.md §2.4).
    CurrentOrRecentlyRotated,
    /// Only the current key: a superseded key must never rotate the key itself, or a leaked key
    /// could lock the real agent out.
    CurrentOnly,
}

/// Authenticates a call signed with a managed instance's RSA key (`Credential=` names the
/// instance). A call signed with the current key retires the previous one: once the new key is
/// in use, the old one (which may be the reason for the rotation) is never accepted again.
pub async fn authenticate_instance(
    store: &dyn Store,
    auth: &Authorization,
    req: &SignedRequest<'_>,
    accepted: InstanceKeys,
) -> Result<corral_store::ManagedInstance, EdgeError> {
    check_scope(auth, req)?;
    require_signed_routing_headers(auth, req)?;
    let amz_date = header_str(req.request.headers, "x-amz-date")
        .ok_or_else(|| {
            EdgeError::IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
            )
        })?
        .to_string();
    sigv4::check_request_time(&amz_date, &auth.scope.date, req.now, req.max_skew).map_err(|e| match e {
        SigV4Error::Expired { .. } | SigV4Error::NotYetCurrent { .. } => EdgeError::SignatureExpired(e.to_string()),
        other => EdgeError::IncompleteSignature(other.to_string()),
    })?;
    let instance = store
        .get_instance(&auth.access_key_id)
        .await
        .map_err(|e| EdgeError::Internal(e.to_string()))?
        .ok_or_else(|| EdgeError::InstanceNotRegistered(auth.access_key_id.clone()))?;
    let previous = match (accepted, &instance.previous_public_key, instance.previous_key_expires_at) {
        (InstanceKeys::CurrentOrRecentlyRotated, Some(key), Some(until)) if req.now < until => Some(key.as_str()),
        _ => None,
    };
    let mut last = None;
    for (encoded, is_current) in
        std::iter::once((instance.public_key.as_str(), true)).chain(previous.map(|k| (k, false)))
    {
        let Ok(key) = corral_wire::keys::public_key_from_spki_base64(encoded) else { continue };
        match sigv4::verify_rsa_pss(auth, &req.request, &amz_date, &key) {
            Ok(()) => {
                if is_current {
                    if let Some(old) = &instance.previous_public_key {
                        store
                            .retire_previous_public_key(&instance.instance_id, old)
                            .await
                            .map_err(|e| EdgeError::Internal(e.to_string()))?;
                    }
                }
                return Ok(instance);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(SigV4Error::MissingSignedHeader(h)) => {
            EdgeError::IncompleteSignature(format!("Signed header '{h}' is not present in the request."))
        }
        _ => EdgeError::SignatureDoesNotMatch(SIGNATURE_MISMATCH_MESSAGE.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::redact_credentials;

    #[test]
    fn credential_header_values_never_reach_a_log_line() {
        let canonical = "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:h\nx-amz-date:20260101T000000Z\n\
                         x-amz-security-token:SECRET-TOKEN\n\ncontent-type;host;x-amz-date;x-amz-security-token\nabc";
        let redacted = redact_credentials(canonical);
        assert!(!redacted.contains("SECRET-TOKEN"), "{redacted}");
        assert!(redacted.contains("x-amz-security-token:<redacted>"));
        assert!(redacted.contains("host:h"));
        assert!(redacted.contains("content-type;host;x-amz-date;x-amz-security-token"));
    }
}
