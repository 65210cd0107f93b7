//! The SSM agent's RSA-PSS SigV4 variant and the registration key encodings.
//!
//! The fixture was produced with Python's `cryptography` 48 and botocore 1.43: a throwaway 2048-bit
//! test key (generated for this test, used nowhere else), a `RequestManagedInstanceRoleToken`
//! request whose canonical request botocore built, and an RSASSA-PSS signature (SHA-256,
//! MGF1-SHA-256, salt 32) over its string to sign, as the agent computes it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use corral_wire::keys::{
    generate_rsa_2048, private_key_from_pkcs1_base64, private_key_to_pkcs1_base64, public_key_from_spki_base64,
    public_key_to_spki_base64, KeyError, SPKI_BASE64_LEN_2048,
};
use corral_wire::sigv4::{
    canonical_request, parse_authorization, sign_request_rsa, string_to_sign, verify_rsa_pss, RequestToVerify,
    SigV4Error,
};
use http::{HeaderMap, HeaderValue};
use time::macros::datetime;

const PUBLIC_SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA8b8lGDdwj76wiOULDSQaGpYsQWThGE+g2DefXsmXUyMO7UqXuDITQZVtgGeNLfJyHz4ut65hlcD57SQfDKvfWLUDF6vmhYB/AwSWxrwM4qSFyhYFx3ENkZrZIWeTv0aJmrGhY6zow0IStDvNdooWKLCPDcHvxeBTqrmJvfNNTAzJfqRihTDSa1cFGOoapJkkKvsPXgW5KcqXM/UwWtsz6t0IwfdgYvCjM16JXa7e7g74mxqBIFrW9Oclje5NsOTL9GTe3ksDSi2tMCJ0bVF3Vmfd7wRCd7D2RhKeXIN+YuNy7cE0JFl/8XjqUdr5LCIOhdQH1i2fd7lo81WOcYc91QIDAQAB";
const PRIVATE_PKCS1: &str = "MIIEowIBAAKCAQEA8b8lGDdwj76wiOULDSQaGpYsQWThGE+g2DefXsmXUyMO7UqXuDITQZVtgGeNLfJyHz4ut65hlcD57SQfDKvfWLUDF6vmhYB/AwSWxrwM4qSFyhYFx3ENkZrZIWeTv0aJmrGhY6zow0IStDvNdooWKLCPDcHvxeBTqrmJvfNNTAzJfqRihTDSa1cFGOoapJkkKvsPXgW5KcqXM/UwWtsz6t0IwfdgYvCjM16JXa7e7g74mxqBIFrW9Oclje5NsOTL9GTe3ksDSi2tMCJ0bVF3Vmfd7wRCd7D2RhKeXIN+YuNy7cE0JFl/8XjqUdr5LCIOhdQH1i2fd7lo81WOcYc91QIDAQABAoIBAB5EhfL1wgilYfoJ32vaSNBqXAkmBc7i7WsU78XQ7LryiURpkfx0fJe6C1dH39PQZryFrxi9Yyd6XXB1FNQj0teK9mOo2Lh/Yaexk+U3F0/rNHscbcXOYFoKLsRxcPzCaqktM11FAXGtHKVnVW7RlDus+4RH82rtjtwx1c6sH1H1i5lB1Mo+Xg9ORN4up18D46LQps61p5nc/3NQFi+J0FP/cs4IG2tdlWLYjJ492miJWr7RqV9w4F6oR9oYO9KSy+DAnlYnepBfhWHSKHg12jiziQL7nKLbSYaAX5HEkbGb5slTecZlp+TNq3+tekT23wybT1gJUs9CzDC7o/rHBLECgYEA/Mv4EkWvx96x1+RqYy9GVg88/f5nnY+KhGWMOCvQuQno4CKSl/rQxqWeHhCp4NPeWRqHse3zmJEJQcWweQCHMlVc3CiopNrEg1/LPCnSK5ZTJW4PTV3XbsfFbvO/K6vb1fGE1F6rA9gkDDwOqXSUWjB2S23jdTg7jqrYeq9w170CgYEA9M9UyMwMfUraTWdOG/WSnfpp0+6mEcJCZ1BF4v76wpQ2Ukn5hgxWj3bWmjrk3nRsdAGJJb0Sv40bSc4yohNC7UNatxtY76tTNQjfDKL0ct8lj7IHRGyjN1nNZMEh74dy7IzZRMYW3bx3iQrlGa7QRCTfUiJaVKjsg/ymbJ1B8/kCgYAvh6ISvWt5ZtOFRfsCvwa4c5ECKG0O4MgocHdWsFZEFCrmyVlKnevXDZiXCocGMI+jrStKNvUQAGT/Ks4tUf4ZZpdZBYP/yuob0U0C+NH9Q/xKE1FpOHWi7Iigfc+5xExHA2v4CfyZcnAEpN4U2khyVJ5JPFYB2hrIjjK5jnbm+QKBgCF8Cli8sCijCGD19FUWrcs16Su3xLdBHtwKusRlo97hbtyqiZqwLVbKJmhKDevveLYVT7D9v4a7wjPCJGLOx6S0RcAt2WhOwr7KS9fqogzkQLr62sudIGX9vn49fGrK2AlK6pzhi1cg5Ci2eMeehZYMhQ8y67AQuukCsbDBgbfhAoGBANxPhVpqk9KvqFMbZB4Y/zRRMnrArE4MjxURqTZdkg7NRsGNFiIWWgN1JELEbkXTpA03uQyjdsZPV1XRqWHxLCqo5aZ+sbOS7UmXqxK5y5VsEvhRVGuk7Pcgbp7MKoNAi4WRzC0PeSx0gp2wGTd8HfjrrcBI0dcYDwbiNCu5yQMn";
const PUBLIC_SPKI_1024: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCxLmQJNAv1yePP5XN904FNo8XDE5sxZAoAsJD4VngNI13+wck43kxItEnXdKVQP90n+WQ9IdyYHpVHANINIe01S4m/53E9qsdfOO/hVeJoIyH9EDQlGanAx/CNe/anoQrg+3ycX3qpDIQd3v5F8pe+9Be4Z88vNSZi64c2KGeWxwIDAQAB";
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=mi-0123456789abcdef0/20261125/us-east-1/ssm/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=rxliS79JD6WuTleKQNgaEA+XAhInbEHbyD5GqKCLIHQqseWu4Xy/83ox72xYTJuqIt/WNiHVO25O1QPW75UYCXlhvh9+il8ymaIYtsOLqUKv2AWZ83DVryUbtlK8OKR7eqhSMEBzh+vFeTlv8pDXNNxot5XY7FCgfeIwiNtwWeTdg2l8tgNGk1PnST+5sVlw45p1SaFJGt38sCsTDrN8DbzkKAsWfhj2APPreHe/6ujOcba14ZjcFSKtJ3noknAxu+y4hct6zuvHHHZ5g3d3OX3jPHeye2IKA9Qseqgo0uvl54cDaF5V62U3uA/9rXlcMxgMWSiNkeB76LtGmGb1Aw==";
const CANONICAL_REQUEST: &str = "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:127.0.0.1:8443\nx-amz-date:20261125T104858Z\nx-amz-target:AmazonSSM.RequestManagedInstanceRoleToken\n\ncontent-type;host;x-amz-date;x-amz-target\n8cd1de950e4f5f63afbfca073e727b8253b99be4adf8f88d518a5f863a2af902";
const STRING_TO_SIGN: &str = "AWS4-HMAC-SHA256\n20261125T104858Z\n20261125/us-east-1/ssm/aws4_request\ndba4d93ea45f71901562ac5df80adf6681ff8e13df3b6b67f47ee39dcc6d470c";
const BODY: &str = "{\"Fingerprint\":\"2b3e9d3c-7f1a-4c55-9a55-0d3f8c2b1e42\"}";
/// The same string to sign, signed by the same key with the maximum salt length instead of 32.
const SIGNATURE_MAX_SALT: &str = "ZCdK5G1shts1YT6e3/88/JaQIHMGAJXtogN7ZpcWChwYa0Y1s9UmQvfDEFEOTvXC/eGGJIW6REhUi9JIkdfsTGLsdbdjvJtxVSKagh1PkmUr/Tqz+9HRaurtnpr731hpW72b7ZWDrf2bM3xDJKADrDmHwBwYh6Z5dmJNPyW3bQu45ny/RxeMxf1gi9rHfTwcxlq5TThcSkpCcEpuIsVtJ7wNVbRs6iaN0U0l/bpinbl8rfN3hBEtazrkmErTrJEdvMLPX41irDikyKmjGJKIs/h7+1GMIsWFr4Oas2OS9FytCEd02eZxSlZwIKiT0WDU4WHW1TsoQqG4iiBp+ZG9LA==";
const AMZ_DATE: &str = "20261125T104858Z";

/// The request as the agent sends it: signed headers, then the unsigned body hash it adds.
fn agent_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    h.insert("x-amz-target", HeaderValue::from_static("AmazonSSM.RequestManagedInstanceRoleToken"));
    h.insert("host", HeaderValue::from_static("127.0.0.1:8443"));
    h.insert("x-amz-date", HeaderValue::from_static(AMZ_DATE));
    h.insert("authorization", HeaderValue::from_static(AUTHORIZATION));
    h.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("8cd1de950e4f5f63afbfca073e727b8253b99be4adf8f88d518a5f863a2af902"),
    );
    h.insert(
        "user-agent",
        HeaderValue::from_static("aws-sdk-go/1.44.326 (go1.22.5; linux; amd64) amazon-ssm-agent/3.3.1142.0"),
    );
    h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    h
}

fn verify(headers: &HeaderMap, body: &[u8], key: &rsa::PublicKey) -> Result<(), SigV4Error> {
    let auth = parse_authorization(headers.get("authorization").and_then(|v| v.to_str().ok()).expect("authorization"))?;
    let req = RequestToVerify { method: "POST", path: "/", query: "", headers, body };
    verify_rsa_pss(&auth, &req, AMZ_DATE, key)
}

fn python_public_key() -> rsa::PublicKey {
    public_key_from_spki_base64(PUBLIC_SPKI).expect("fixture SPKI")
}

#[test]
fn canonical_request_matches_botocore_for_the_agent_request() {
    let headers = agent_headers();
    let auth = parse_authorization(AUTHORIZATION).expect("parse");
    assert_eq!(auth.access_key_id, "mi-0123456789abcdef0");
    assert_eq!(auth.scope.service, "ssm");
    let req = RequestToVerify { method: "POST", path: "/", query: "", headers: &headers, body: BODY.as_bytes() };
    let creq = canonical_request(&req, &auth.signed_headers).expect("creq");
    assert_eq!(creq, CANONICAL_REQUEST);
    assert_eq!(string_to_sign(AMZ_DATE, &auth.scope, &creq), STRING_TO_SIGN);
}

#[test]
fn verifies_python_signature() {
    assert_eq!(verify(&agent_headers(), BODY.as_bytes(), &python_public_key()), Ok(()));
}

#[test]
fn rejects_modified_body_header_signature_and_salt() {
    let key = python_public_key();
    let mut body = BODY.as_bytes().to_vec();
    body[5] ^= 0x20;
    assert!(matches!(verify(&agent_headers(), &body, &key), Err(SigV4Error::SignatureMismatch { .. })));

    let mut headers = agent_headers();
    headers.insert("x-amz-target", HeaderValue::from_static("AmazonSSM.GetParameters"));
    assert!(matches!(verify(&headers, BODY.as_bytes(), &key), Err(SigV4Error::SignatureMismatch { .. })));

    // Not base64 at all, and a valid-looking signature with the wrong salt length.
    for bad in ["not base64!!", SIGNATURE_MAX_SALT] {
        let mut headers = agent_headers();
        let value = AUTHORIZATION.replace(AUTHORIZATION.split("Signature=").nth(1).expect("signature"), bad);
        headers.insert("authorization", HeaderValue::from_str(&value).expect("value"));
        assert!(matches!(verify(&headers, BODY.as_bytes(), &key), Err(SigV4Error::SignatureMismatch { .. })), "{bad}");
    }
}

#[test]
fn rejects_other_key_and_generated_key_encodes_to_392_chars() {
    let other = generate_rsa_2048().expect("keygen");
    let spki = public_key_to_spki_base64(other.as_public_key());
    assert_eq!(spki.len(), SPKI_BASE64_LEN_2048);
    assert_eq!(spki.len(), 392);
    let reparsed = public_key_from_spki_base64(&spki).expect("own SPKI parses");
    assert!(matches!(verify(&agent_headers(), BODY.as_bytes(), &reparsed), Err(SigV4Error::SignatureMismatch { .. })));
}

#[test]
fn sign_verify_round_trip_like_the_agent() {
    let private = private_key_from_pkcs1_base64(PRIVATE_PKCS1).expect("fixture PKCS#1");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    headers.insert("x-amz-target", HeaderValue::from_static("AmazonSSM.RequestManagedInstanceRoleToken"));
    headers.insert("host", HeaderValue::from_static("cp.example:8443"));
    headers.insert("user-agent", HeaderValue::from_static("corral-agent/0.1"));
    let now = datetime!(2026-11-25 10:48:58 UTC);
    sign_request_rsa(
        "POST",
        "/",
        "",
        &mut headers,
        BODY.as_bytes(),
        "mi-0123456789abcdef0",
        &private,
        "eu-west-1",
        now,
    )
    .expect("sign");

    let auth =
        parse_authorization(headers.get("authorization").and_then(|v| v.to_str().ok()).expect("authz")).expect("parse");
    assert_eq!(auth.access_key_id, "mi-0123456789abcdef0");
    assert_eq!(auth.scope.to_scope_string(), "20261125/eu-west-1/ssm/aws4_request");
    assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date", "x-amz-target"]);
    assert_eq!(BASE64.decode(&auth.signature).expect("base64").len(), 256);
    assert_eq!(
        headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()),
        Some("8cd1de950e4f5f63afbfca073e727b8253b99be4adf8f88d518a5f863a2af902"),
        "unsigned body hash added after signing"
    );

    let req = RequestToVerify { method: "POST", path: "/", query: "", headers: &headers, body: BODY.as_bytes() };
    assert_eq!(verify_rsa_pss(&auth, &req, "20261125T104858Z", &python_public_key()), Ok(()));
    let tampered = RequestToVerify { body: b"{\"Fingerprint\":\"other\"}", ..req };
    assert!(matches!(
        verify_rsa_pss(&auth, &tampered, "20261125T104858Z", &python_public_key()),
        Err(SigV4Error::SignatureMismatch { .. })
    ));

    // Signing again (a retry) does not sign the previous signature or body hash.
    sign_request_rsa(
        "POST",
        "/",
        "",
        &mut headers,
        BODY.as_bytes(),
        "mi-0123456789abcdef0",
        &private,
        "eu-west-1",
        now,
    )
    .expect("re-sign");
    let again =
        parse_authorization(headers.get("authorization").and_then(|v| v.to_str().ok()).expect("authz")).expect("parse");
    assert_eq!(again.signed_headers, auth.signed_headers);
}

#[test]
fn rsa_signing_requires_host() {
    let private = private_key_from_pkcs1_base64(PRIVATE_PKCS1).expect("fixture PKCS#1");
    let mut headers = HeaderMap::new();
    let now = datetime!(2026-11-25 10:48:58 UTC);
    assert_eq!(
        sign_request_rsa("POST", "/", "", &mut headers, b"{}", "mi-1", &private, "us-east-1", now),
        Err(SigV4Error::MissingHost)
    );
}

#[test]
fn key_encodings_match_python() {
    let public = python_public_key();
    assert_eq!(PUBLIC_SPKI.len(), 392);
    assert_eq!(public_key_to_spki_base64(&public), PUBLIC_SPKI);
    let private = private_key_from_pkcs1_base64(PRIVATE_PKCS1).expect("fixture PKCS#1");
    assert_eq!(private.as_public_key(), &public);
    assert_eq!(private_key_to_pkcs1_base64(&private).expect("encode"), PRIVATE_PKCS1);
    // Surrounding white space (a trailing newline from a file) is tolerated.
    assert!(public_key_from_spki_base64(&format!(" {PUBLIC_SPKI}\n")).is_ok());
}

#[test]
fn rejects_bad_public_keys() {
    assert_eq!(public_key_from_spki_base64(PUBLIC_SPKI_1024).map(|_| ()), Err(KeyError::TooSmall { bits: 1024 }));
    assert_eq!(public_key_from_spki_base64("not base64!").map(|_| ()), Err(KeyError::InvalidBase64));
    assert!(matches!(public_key_from_spki_base64("AAAA"), Err(KeyError::InvalidDer(_))));
    // A PKCS#1 private key is not an SPKI public key.
    assert!(matches!(public_key_from_spki_base64(PRIVATE_PKCS1), Err(KeyError::InvalidDer(_))));
    // Truncated DER (293 bytes, so its base64 has one '=' of padding).
    let der = BASE64.decode(PUBLIC_SPKI).expect("fixture");
    let truncated = BASE64.encode(&der[..der.len() - 1]);
    assert!(truncated.ends_with('=') && !truncated.ends_with("=="));
    assert!(matches!(public_key_from_spki_base64(&truncated), Err(KeyError::InvalidDer(_))));
    // Unpadded base64 is not what the agent sends.
    assert_eq!(public_key_from_spki_base64(truncated.trim_end_matches('=')).map(|_| ()), Err(KeyError::InvalidBase64));
    assert!(matches!(private_key_from_pkcs1_base64(PUBLIC_SPKI), Err(KeyError::InvalidDer(_))));
}
