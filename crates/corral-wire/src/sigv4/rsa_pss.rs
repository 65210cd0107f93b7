//! The SSM agent's RSA flavour of SigV4 (agent-protocol.md §2.1).
//!
//! Registered on-prem instances have no secret key; they call `RequestManagedInstanceRoleToken`
//! signed with their RSA private key instead. The canonical request and string to sign are the
//! ordinary SigV4 ones (service `ssm`, `Credential=<instance id>/...`); the signature is
//! RSASSA-PSS over SHA-256 of the string to sign (MGF1-SHA-256, 32-byte salt), in standard
//! base64 with padding instead of hex.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::header::{HeaderMap, AUTHORIZATION, HOST};
use rsa::{PrivateKey, PublicKey};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{
    canonical_request, header_value, headers_to_sign, require_host_signed, string_to_sign, Authorization,
    CredentialScope, RequestToVerify, SigV4Error, AMZ_DATE_HEADER, CONTENT_SHA256_HEADER, RSA_SIGNING_SERVICE,
    RSA_UNSIGNED_HEADERS,
};
use crate::time::format_amz_date;

/// Checks an RSA-PSS SigV4 signature against the instance's registered public key.
///
/// The salt length must be 32 bytes, as the agent uses. A signature that is not valid base64
/// is reported as a mismatch, like any other wrong signature. `host` must be a signed header.
pub fn verify_rsa_pss(
    auth: &Authorization,
    req: &RequestToVerify<'_>,
    amz_date: &str,
    public_key: &PublicKey,
) -> Result<(), SigV4Error> {
    require_host_signed(auth)?;
    let canonical_request = canonical_request(req, &auth.signed_headers)?;
    let string_to_sign = string_to_sign(amz_date, &auth.scope, &canonical_request);
    let valid = match BASE64.decode(auth.signature.as_bytes()) {
        // `pss_verify` hashes the message with SHA-256 and requires a salt of the digest's
        // size, 32 bytes: exactly the agent's parameters.
        Ok(signature) => public_key.pss_verify::<Sha256>(string_to_sign.as_bytes(), &signature).is_ok(),
        Err(_) => false,
    };
    if valid {
        Ok(())
    } else {
        Err(SigV4Error::SignatureMismatch { canonical_request, string_to_sign })
    }
}

/// Signs a request as the SSM agent does with its instance key: sets `x-amz-date`, signs every
/// header present except `authorization` and `user-agent` (so `host` must be there already),
/// scoped to service `ssm` with the instance id as the credential, sets `authorization`, and
/// finally adds an unsigned `x-amz-content-sha256` carrying the body hash, as the real agent does.
#[allow(clippy::too_many_arguments)] // mirrors the parts of a request; a builder would add nothing
pub fn sign_request_rsa(
    method: &str,
    path: &str,
    query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    instance_id: &str,
    private_key: &PrivateKey,
    region: &str,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    if !headers.contains_key(HOST) {
        return Err(SigV4Error::MissingHost);
    }
    // A re-sign must start from the headers the agent had before its first signature, or the
    // previous signature and body hash would become signed headers.
    headers.remove(AUTHORIZATION);
    headers.remove(CONTENT_SHA256_HEADER);
    let amz_date = format_amz_date(now);
    headers.insert(AMZ_DATE_HEADER, header_value(AMZ_DATE_HEADER, &amz_date)?);

    let signed_headers = headers_to_sign(headers, RSA_UNSIGNED_HEADERS);
    let scope = CredentialScope {
        date: amz_date.get(..8).unwrap_or(&amz_date).to_string(),
        region: region.to_string(),
        service: RSA_SIGNING_SERVICE.to_string(),
    };
    let req = RequestToVerify { method, path, query, headers, body };
    let canonical_request = canonical_request(&req, &signed_headers)?;
    let string_to_sign = string_to_sign(&amz_date, &scope, &canonical_request);
    let signature =
        private_key.pss_sign::<Sha256>(string_to_sign.as_bytes()).map_err(|e| SigV4Error::RsaSigning(e.to_string()))?;
    let auth = Authorization {
        access_key_id: instance_id.to_string(),
        scope,
        signed_headers,
        signature: BASE64.encode(signature),
    };
    headers.insert(AUTHORIZATION, header_value("authorization", &auth.to_header_value())?);
    headers.insert(CONTENT_SHA256_HEADER, header_value(CONTENT_SHA256_HEADER, &hex::encode(Sha256::digest(body)))?);
    Ok(())
}
