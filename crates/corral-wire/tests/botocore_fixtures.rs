//! Requests captured from botocore 1.43 (`Session.create_client(...)` with fixed credentials, the
//! clock pinned at 2026-11-25T10:48:58Z, endpoint `http://127.0.0.1:8443`), exactly as they left
//! botocore, plus the `Host` and `Accept-Encoding` its HTTP layer adds. Our verifier must accept
//! them and reject any change to what they sign; our signer must reproduce them byte for byte.

use corral_wire::query::parse_query_body;
use corral_wire::sigv4::{
    check_request_time, parse_authorization, sign_request, verify_hmac, Credentials, RequestToVerify, SigV4Error,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const ACCESS_KEY: &str = "AKIACORRALEXAMPLE01";
const SECRET: &str = "corral/Example+Secret/Key0123456789abcdefgh";
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLE//token+with/slashes==";
const USER_AGENT: &str = "Botocore/1.43.11 ua/2.1 os/linux#6.18.44-fc-v669 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/D,N,e,Z,b cfg/retry-mode#legacy";
const AMZ_DATE: &str = "20261125T104858Z";
const NOW: OffsetDateTime = datetime!(2026-11-25 10:48:58 UTC);

struct Fixture {
    name: &'static str,
    path: &'static str,
    service: &'static str,
    token: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
}

const SSM_BODY: &str = r#"{"SettingId": "/ssm/managed-instance/activation-tier"}"#;

const SSM: Fixture = Fixture {
    name: "ssm GetServiceSetting",
    path: "/",
    service: "ssm",
    token: None,
    headers: &[
        ("X-Amz-Target", "AmazonSSM.GetServiceSetting"),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("User-Agent", USER_AGENT),
        ("X-Amz-Date", AMZ_DATE),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIACORRALEXAMPLE01/20261125/us-east-1/ssm/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=a5bf33dca015c132c4ae2dc54556a2af2fb84743ebc64b9a3c2f9bebfaeec125"),
        ("amz-sdk-invocation-id", "9abe8bd8-b92d-46c1-bdd1-0d5aadc32b47"),
        ("amz-sdk-request", "attempt=1"),
        ("Content-Length", "54"),
        ("Host", "127.0.0.1:8443"),
        ("Accept-Encoding", "identity"),
    ],
    body: SSM_BODY,
};

const STS: Fixture = Fixture {
    name: "sts GetCallerIdentity",
    path: "/",
    service: "sts",
    token: None,
    headers: &[
        ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ("User-Agent", USER_AGENT),
        ("X-Amz-Date", AMZ_DATE),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIACORRALEXAMPLE01/20261125/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=1183a4be3a00635d6bff9fffc01ad6861d370effcfd8538348e6665cc017bc2a"),
        ("amz-sdk-invocation-id", "a2359234-1d8e-48bf-aa4b-018225c6cda6"),
        ("amz-sdk-request", "attempt=1"),
        ("Content-Length", "43"),
        ("Host", "127.0.0.1:8443"),
        ("Accept-Encoding", "identity"),
    ],
    body: "Action=GetCallerIdentity&Version=2011-06-15",
};

/// Temporary credentials and an endpoint with a base path (`http://127.0.0.1:8443/aws/`).
const SSM_WITH_TOKEN: Fixture = Fixture {
    name: "ssm GetServiceSetting with session token at /aws/",
    path: "/aws/",
    service: "ssm",
    token: Some(TOKEN),
    headers: &[
        ("X-Amz-Target", "AmazonSSM.GetServiceSetting"),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("User-Agent", USER_AGENT),
        ("X-Amz-Date", AMZ_DATE),
        ("X-Amz-Security-Token", TOKEN),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIACORRALEXAMPLE01/20261125/us-east-1/ssm/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=0e12ea25454dca456d42a75673b1fef54875a8f58ea1739eefbc125eeb243bc9"),
        ("amz-sdk-invocation-id", "60e13449-9d18-4cbc-9e6f-666286525ef1"),
        ("amz-sdk-request", "attempt=1"),
        ("Content-Length", "54"),
        ("Host", "127.0.0.1:8443"),
        ("Accept-Encoding", "identity"),
    ],
    body: SSM_BODY,
};

const ALL: [&Fixture; 3] = [&SSM, &STS, &SSM_WITH_TOKEN];

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    headers
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|v| v.to_str().ok()).expect(name)
}

/// Verifies like the server will: parse, check the clock, check the signature.
fn verify(headers: &HeaderMap, path: &str, body: &[u8], secret: &str) -> Result<(), SigV4Error> {
    let auth = parse_authorization(header(headers, "authorization"))?;
    let amz_date = header(headers, "x-amz-date");
    check_request_time(amz_date, &auth.scope.date, NOW, Duration::minutes(5))?;
    let req = RequestToVerify { method: "POST", path, query: "", headers, body };
    verify_hmac(&auth, &req, amz_date, secret)
}

fn assert_mismatch(result: Result<(), SigV4Error>, what: &str) {
    assert!(
        matches!(result, Err(SigV4Error::SignatureMismatch { .. })),
        "{what}: expected a signature mismatch, got {result:?}"
    );
}

#[test]
fn accepts_captured_requests() {
    for f in ALL {
        let headers = header_map(f.headers);
        assert_eq!(verify(&headers, f.path, f.body.as_bytes(), SECRET), Ok(()), "{}", f.name);
    }
}

#[test]
fn ignores_changes_to_unsigned_headers() {
    for f in ALL {
        let mut headers = header_map(f.headers);
        headers.insert("user-agent", HeaderValue::from_static("something else"));
        headers.insert("amz-sdk-request", HeaderValue::from_static("attempt=2; max=3"));
        headers.remove("accept-encoding");
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        assert_eq!(verify(&headers, f.path, f.body.as_bytes(), SECRET), Ok(()), "{}", f.name);
    }
}

#[test]
fn rejects_one_byte_body_change() {
    for f in ALL {
        let headers = header_map(f.headers);
        let mut body = f.body.as_bytes().to_vec();
        let last = body.len() - 1;
        body[last] ^= 0x01;
        assert_mismatch(verify(&headers, f.path, &body, SECRET), f.name);
        assert_mismatch(verify(&headers, f.path, &body[..last], SECRET), f.name);
    }
}

#[test]
fn rejects_changed_signed_headers() {
    for f in ALL {
        let auth =
            parse_authorization(header(&header_map(f.headers), "authorization")).expect("captured header parses");
        for name in &auth.signed_headers {
            if name == "x-amz-date" {
                continue; // covered below: it also moves the clock
            }
            let mut headers = header_map(f.headers);
            let original = header(&headers, name).to_string();
            let changed = format!("{original}x");
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(&changed).expect("value"),
            );
            assert_mismatch(
                verify(&headers, f.path, f.body.as_bytes(), SECRET),
                &format!("{}: changed {name}", f.name),
            );
        }
        let mut headers = header_map(f.headers);
        headers.insert("x-amz-date", HeaderValue::from_static("20261125T104859Z"));
        assert_mismatch(verify(&headers, f.path, f.body.as_bytes(), SECRET), f.name);
    }
    // The operation switched to another one with the same signature.
    let mut headers = header_map(SSM.headers);
    headers.insert("x-amz-target", HeaderValue::from_static("AmazonSSM.GetParameter"));
    assert_mismatch(verify(&headers, "/", SSM_BODY.as_bytes(), SECRET), "x-amz-target");
    // Host without the port (a proxy that rewrote Host).
    let mut headers = header_map(SSM.headers);
    headers.insert("host", HeaderValue::from_static("127.0.0.1"));
    assert_mismatch(verify(&headers, "/", SSM_BODY.as_bytes(), SECRET), "host");
}

#[test]
fn rejects_wrong_secret_path_and_missing_signed_header() {
    for f in ALL {
        let headers = header_map(f.headers);
        let body = f.body.as_bytes();
        assert_mismatch(verify(&headers, f.path, body, "corral/Example+Secret/Key0123456789abcdefgi"), f.name);
        assert_mismatch(verify(&headers, f.path, body, ""), f.name);
        let other_path = if f.path == "/" { "/aws/" } else { "/" };
        assert_mismatch(verify(&headers, other_path, body, SECRET), f.name);
    }
    let mut headers = header_map(SSM_WITH_TOKEN.headers);
    headers.remove("x-amz-security-token");
    assert_eq!(
        verify(&headers, "/aws/", SSM_BODY.as_bytes(), SECRET),
        Err(SigV4Error::MissingSignedHeader("x-amz-security-token".into()))
    );
}

#[test]
fn rejects_replay_outside_the_window() {
    let headers = header_map(SSM.headers);
    let auth = parse_authorization(header(&headers, "authorization")).expect("parse");
    let later = NOW + Duration::minutes(5) + Duration::seconds(1);
    assert!(matches!(
        check_request_time(AMZ_DATE, &auth.scope.date, later, Duration::minutes(5)),
        Err(SigV4Error::Expired { .. })
    ));
}

#[test]
fn signer_reproduces_botocore() {
    for f in ALL {
        let captured = header_map(f.headers);
        // Start from what botocore had before signing: no date, token or signature.
        let mut headers = captured.clone();
        for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
            headers.remove(name);
        }
        let creds = Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET.into(),
            session_token: f.token.map(str::to_string),
        };
        sign_request("POST", f.path, "", &mut headers, f.body.as_bytes(), &creds, "us-east-1", f.service, NOW)
            .expect(f.name);
        for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
            assert_eq!(headers.get(name), captured.get(name), "{}: {name}", f.name);
        }
    }
}

#[test]
fn sts_body_parses_as_query() {
    let req = parse_query_body(STS.body.as_bytes()).expect("query body");
    assert_eq!(req.action, "GetCallerIdentity");
    assert_eq!(req.version.as_deref(), Some("2011-06-15"));
    assert!(req.params.is_empty());
}
