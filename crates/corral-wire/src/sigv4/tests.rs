//! Unit tests for the Authorization grammar, the time window and the signer's edges. The AWS test
//! suite and the captured botocore requests are in `tests/`.

use super::*;
use time::macros::datetime;

const AUTHZ: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

fn expected_auth() -> Authorization {
    Authorization {
        access_key_id: "AKIDEXAMPLE".into(),
        scope: CredentialScope { date: "20150830".into(), region: "us-east-1".into(), service: "iam".into() },
        signed_headers: vec!["host".into(), "x-amz-date".into()],
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".into(),
    }
}

#[test]
fn scope_string() {
    assert_eq!(expected_auth().scope.to_scope_string(), "20150830/us-east-1/iam/aws4_request");
}

#[test]
fn parses_botocore_layout_and_round_trips() {
    let auth = parse_authorization(AUTHZ).expect("valid header");
    assert_eq!(auth, expected_auth());
    assert_eq!(auth.to_header_value(), AUTHZ);
}

#[test]
fn parses_tolerant_variants() {
    let variants = [
        // No space after commas, as some SDKs write it.
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request,SignedHeaders=host;x-amz-date,Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        // Extra blanks everywhere, leading and trailing.
        "  AWS4-HMAC-SHA256    Credential = AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request ,  SignedHeaders=host;x-amz-date ,\tSignature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31  ",
        // Components in another order, a trailing comma.
        "AWS4-HMAC-SHA256 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31, SignedHeaders=host;x-amz-date, Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request,",
        // Upper-case header names are lower-cased.
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=Host;X-Amz-Date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ];
    for v in variants {
        assert_eq!(parse_authorization(v), Ok(expected_auth()), "{v}");
    }
}

#[test]
fn keeps_base64_rsa_signatures_intact() {
    // '=' padding and '+'/'/' must survive: only the first '=' separates key and value.
    let v = "AWS4-HMAC-SHA256 Credential=mi-0123456789abcdef0/20261125/us-east-1/ssm/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=ab+/cd==";
    let auth = parse_authorization(v).expect("valid");
    assert_eq!(auth.signature, "ab+/cd==");
    assert_eq!(auth.access_key_id, "mi-0123456789abcdef0");
    assert_eq!(auth.scope.service, "ssm");
}

fn check_err(value: &str, expected: SigV4Error) {
    assert_eq!(parse_authorization(value), Err(expected), "{value:?}");
}

#[test]
fn rejects_malformed_headers() {
    let cred = "Credential=AKID/20150830/us-east-1/iam/aws4_request";
    let sh = "SignedHeaders=host;x-amz-date";
    let sig = "Signature=abcd";
    check_err(
        &format!("AWS4-HMAC-SHA1 {cred}, {sh}, {sig}"),
        SigV4Error::UnsupportedAlgorithm("AWS4-HMAC-SHA1".into()),
    );
    check_err(
        &format!("AWS4-ECDSA-P256-SHA256 {cred}, {sh}, {sig}"),
        SigV4Error::UnsupportedAlgorithm("AWS4-ECDSA-P256-SHA256".into()),
    );
    check_err("", SigV4Error::UnsupportedAlgorithm(String::new()));
    check_err("AWS4-HMAC-SHA256", SigV4Error::MissingComponent("Credential"));
    check_err(&format!("AWS4-HMAC-SHA256 {sh}, {sig}"), SigV4Error::MissingComponent("Credential"));
    check_err(&format!("AWS4-HMAC-SHA256 {cred}, {sig}"), SigV4Error::MissingComponent("SignedHeaders"));
    check_err(&format!("AWS4-HMAC-SHA256 {cred}, {sh}"), SigV4Error::MissingComponent("Signature"));
    check_err(&format!("AWS4-HMAC-SHA256 {cred}, {sh}, Signature="), SigV4Error::MissingComponent("Signature"));
    check_err(&format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=, {sig}"), SigV4Error::EmptySignedHeaders);
    check_err(
        &format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x-amz-date, {sig}"),
        SigV4Error::EmptySignedHeaders,
    );
    assert!(matches!(
        parse_authorization(&format!("AWS4-HMAC-SHA256 {cred}, {sh}, {sig}, {sig}")),
        Err(SigV4Error::MalformedAuthorization(_))
    ));
    assert!(matches!(
        parse_authorization(&format!("AWS4-HMAC-SHA256 {cred}, {sh}, {sig}, Extra=1")),
        Err(SigV4Error::MalformedAuthorization(_))
    ));
    assert!(matches!(
        parse_authorization(&format!("AWS4-HMAC-SHA256 {cred} {sh} {sig}")),
        Err(SigV4Error::MalformedAuthorization(_) | SigV4Error::MissingComponent(_))
    ));
}

#[test]
fn rejects_malformed_credentials() {
    for cred in [
        "AKID/20150830/us-east-1/iam",
        "AKID/20150830/us-east-1/iam/aws4_request/extra",
        "AKID/20150830/us-east-1/iam/aws5_request",
        "/20150830/us-east-1/iam/aws4_request",
        "AKID/20150830//iam/aws4_request",
        "AKID/20150830/us-east-1//aws4_request",
        "AKID/2015-08-30/us-east-1/iam/aws4_request",
        "AKID/2015083/us-east-1/iam/aws4_request",
        "AKID",
    ] {
        let v = format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host, Signature=ab");
        assert!(
            matches!(parse_authorization(&v), Err(SigV4Error::MalformedCredential(_))),
            "{cred}: {:?}",
            parse_authorization(&v)
        );
    }
}

// === time window ===

const FIVE_MIN: Duration = Duration::minutes(5);

#[test]
fn time_window_edges() {
    let signed = datetime!(2015-08-30 12:36:00 UTC);
    let ok = |now| check_request_time("20150830T123600Z", "20150830", now, FIVE_MIN);
    assert_eq!(ok(signed), Ok(signed));
    assert_eq!(ok(signed + FIVE_MIN), Ok(signed), "exactly 5 min old is accepted");
    assert_eq!(ok(signed - FIVE_MIN), Ok(signed), "exactly 5 min ahead is accepted");

    let too_old = ok(signed + FIVE_MIN + Duration::seconds(1));
    assert_eq!(
        too_old,
        Err(SigV4Error::Expired {
            signed: "20150830T123600Z".into(),
            earliest: "20150830T123601Z".into(),
            now: "20150830T124101Z".into(),
            max_skew: FIVE_MIN,
        })
    );
    let too_new = ok(signed - FIVE_MIN - Duration::seconds(1));
    assert_eq!(
        too_new,
        Err(SigV4Error::NotYetCurrent {
            signed: "20150830T123600Z".into(),
            latest: "20150830T123559Z".into(),
            now: "20150830T123059Z".into(),
            max_skew: FIVE_MIN,
        })
    );
}

#[test]
fn time_messages_match_aws() {
    let err = check_request_time("20150830T123600Z", "20150830", datetime!(2015-08-30 12:46:00 UTC), FIVE_MIN)
        .expect_err("expired");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z (20150830T124600Z - 5 min.)."
    );
    let err = check_request_time("20150830T123600Z", "20150830", datetime!(2015-08-30 12:26:00 UTC), FIVE_MIN)
        .expect_err("not yet current");
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123100Z (20150830T122600Z + 5 min.)."
    );
    let err =
        check_request_time("20150830T123600Z", "20150830", datetime!(2015-08-30 12:46:00 UTC), Duration::seconds(90))
            .expect_err("expired");
    assert!(err.to_string().ends_with("(20150830T124600Z - 90 sec.)."), "{err}");
}

#[test]
fn time_format_and_scope_errors() {
    let now = datetime!(2015-08-30 12:36:00 UTC);
    for bad in ["", "2015-08-30T12:36:00Z", "20150830T123600", "20150830t123600z", "20151330T123600Z"] {
        assert_eq!(
            check_request_time(bad, "20150830", now, FIVE_MIN),
            Err(SigV4Error::MalformedDate(bad.into())),
            "{bad}"
        );
    }
    let err = check_request_time("20150830T123600Z", "20150831", now, FIVE_MIN).expect_err("scope mismatch");
    assert_eq!(
        err,
        SigV4Error::ScopeDateMismatch { scope_date: "20150831".into(), amz_date: "20150830T123600Z".into() }
    );
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150831' != '20150830', from '20150830T123600Z'."
    );
}

#[test]
fn time_window_at_midnight_spans_two_dates() {
    // Signed just before midnight, checked just after: the scope date is the signing date.
    let now = datetime!(2015-08-31 00:02:00 UTC);
    assert!(check_request_time("20150830T235900Z", "20150830", now, FIVE_MIN).is_ok());
    assert!(check_request_time("20150830T235900Z", "20150831", now, FIVE_MIN).is_err());
}

// === signing and verification edges ===

fn creds() -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: Some("token".into()),
    }
}

#[test]
fn credentials_debug_is_redacted() {
    let text = format!("{:?}", creds());
    assert!(text.contains("AKIDEXAMPLE"));
    assert!(!text.contains("wJalr"), "{text}");
    assert!(!text.contains("\"token\""), "{text}");
}

#[test]
fn signing_requires_host() {
    let mut headers = HeaderMap::new();
    let now = datetime!(2015-08-30 12:36:00 UTC);
    assert_eq!(
        sign_request("GET", "/", "", &mut headers, b"", &creds(), "us-east-1", "service", now),
        Err(SigV4Error::MissingHost)
    );
}

#[test]
fn resigning_replaces_previous_signature() {
    let now = datetime!(2015-08-30 12:36:00 UTC);
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    sign_request("POST", "/", "", &mut headers, b"x", &creds(), "us-east-1", "sts", now).expect("sign");
    let first = headers.get("authorization").cloned();
    sign_request("POST", "/", "", &mut headers, b"x", &creds(), "us-east-1", "sts", now).expect("re-sign");
    assert_eq!(headers.get("authorization").cloned(), first);
    assert_eq!(headers.get_all("authorization").iter().count(), 1);
    let auth = parse_authorization(headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default())
        .expect("parse");
    assert_eq!(auth.signed_headers, ["host", "x-amz-date", "x-amz-security-token"]);
}

fn signed_fixture(body: &[u8], extra: &[(&str, &str)]) -> (HeaderMap, Authorization) {
    let now = datetime!(2015-08-30 12:36:00 UTC);
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    for (k, v) in extra {
        headers.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    let c = Credentials { session_token: None, ..creds() };
    sign_request("POST", "/", "", &mut headers, body, &c, "us-east-1", "ssm", now).expect("sign");
    let auth = parse_authorization(headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default())
        .expect("parse");
    (headers, auth)
}

fn verify(headers: &HeaderMap, auth: &Authorization, body: &[u8]) -> Result<(), SigV4Error> {
    let req = RequestToVerify { method: "POST", path: "/", query: "", headers, body };
    verify_hmac(auth, &req, "20150830T123600Z", &creds().secret_access_key)
}

#[test]
fn content_sha256_header_must_match_body_when_signed() {
    let body = b"{}";
    let hash = hex::encode(Sha256::digest(body));
    let (headers, auth) = signed_fixture(body, &[("x-amz-content-sha256", &hash)]);
    assert!(auth.signs_header("x-amz-content-sha256"));
    assert_eq!(verify(&headers, &auth, body), Ok(()));
    assert_eq!(verify(&headers, &auth, b"{ }"), Err(SigV4Error::ContentSha256Mismatch));

    // A client that signs UNSIGNED-PAYLOAD (or any hash but the body's) is refused.
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    headers.insert("x-amz-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
    let req = RequestToVerify { method: "POST", path: "/", query: "", headers: &headers, body };
    assert_eq!(
        canonical_request(&req, &["host".into(), "x-amz-content-sha256".into()]),
        Err(SigV4Error::ContentSha256Mismatch)
    );
}

#[test]
fn unsigned_content_sha256_header_is_ignored() {
    let body = b"{}";
    let (mut headers, auth) = signed_fixture(body, &[]);
    headers.insert("x-amz-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
    assert_eq!(verify(&headers, &auth, body), Ok(()));
}

#[test]
fn verification_requires_signed_host_and_present_headers() {
    let body = b"{}";
    let (headers, mut auth) = signed_fixture(body, &[("x-amz-target", "AmazonSSM.ListDocuments")]);
    assert_eq!(verify(&headers, &auth, body), Ok(()));

    let mut without_target = headers.clone();
    without_target.remove("x-amz-target");
    assert_eq!(verify(&without_target, &auth, body), Err(SigV4Error::MissingSignedHeader("x-amz-target".into())));

    auth.signed_headers.retain(|h| h != "host");
    assert_eq!(verify(&headers, &auth, body), Err(SigV4Error::HostNotSigned));
}

#[test]
fn mismatch_reports_canonical_request_and_wrong_lengths_fail_cleanly() {
    let body = b"{}";
    let (headers, mut auth) = signed_fixture(body, &[]);
    for bad in ["", "00", &auth.signature.to_uppercase(), &format!("{}00", auth.signature)] {
        auth.signature = bad.to_string();
        match verify(&headers, &auth, body) {
            Err(SigV4Error::SignatureMismatch { canonical_request, string_to_sign }) => {
                assert!(canonical_request.starts_with("POST\n/\n\nhost:example.amazonaws.com\n"));
                assert!(string_to_sign.starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n"));
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn non_utf8_header_value_is_an_error() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("h"));
    headers.insert("x-odd", HeaderValue::from_bytes(b"\xff\xfe").expect("obs-text allowed"));
    let req = RequestToVerify { method: "GET", path: "/", query: "", headers: &headers, body: b"" };
    assert_eq!(
        canonical_request(&req, &["host".into(), "x-odd".into()]),
        Err(SigV4Error::InvalidHeaderValue("x-odd".into()))
    );
}

#[test]
fn signing_key_matches_aws_documentation_example() {
    // AWS's documented derivation example (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
    // 20120215/us-east-1/iam).
    let scope = CredentialScope { date: "20120215".into(), region: "us-east-1".into(), service: "iam".into() };
    assert_eq!(
        hex::encode(signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &scope)),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
}

#[test]
fn region_names_in_a_scope() {
    for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "aws-global", "local"] {
        assert!(super::is_valid_region_name(ok), "{ok}");
    }
    for bad in ["", "not a region", "US-EAST-1", "us-east-1-", "-us", "1us", "us_east_1", &"a".repeat(64)] {
        assert!(!super::is_valid_region_name(bad), "{bad:?}");
    }
}
