//! Bad input at the edge: each gets the AWS error code and a 4xx, the server stays up, and
//! nothing already stored changes.

mod common;

use common::{RawRequest, TestServer};
use time::OffsetDateTime;

const TIER: &str = "/ssm/managed-instance/activation-tier";
const GET_TIER: &str = r#"{"SettingId": "/ssm/managed-instance/activation-tier"}"#;

async fn tier(server: &TestServer) -> String {
    let got = server.ssm().get_service_setting().setting_id(TIER).send().await.expect("get tier");
    got.service_setting().and_then(|s| s.setting_value()).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_aws_errors_and_change_nothing() {
    let (_dir, mut server) = TestServer::start_fresh();
    server.ssm().update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect("update");
    let (key, secret) = server.admin_credentials();
    let now = OffsetDateTime::now_utc();

    // A correctly signed raw request works: the harness itself is sound.
    let ok = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER)
        .sign(&key, &secret, None, "ssm", now)
        .send(&server)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.request_id.is_some());

    struct Case {
        name: &'static str,
        request: RawRequest,
        status: u16,
        code: &'static str,
        message_part: &'static str,
    }
    let wrong_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let mut no_date = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(&key, &secret, None, "ssm", now);
    no_date.headers.remove("x-amz-date");
    let mut tampered = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(&key, &secret, None, "ssm", now);
    tampered.body = br#"{"SettingId": "/ssm/managed-instance/activation-tieR"}"#.to_vec();
    let mut no_auth = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER);
    no_auth.headers.remove("authorization");
    let mut garbled_auth = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER);
    garbled_auth.headers.insert("authorization", "AWS4-HMAC-SHA256 Credential=oops".parse().expect("hv"));
    let huge = format!(r#"{{"SettingId": "{}"}}"#, "x".repeat(10 * 1024 * 1024));

    let cases = vec![
        Case {
            name: "wrong secret (JSON)",
            request: RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(&key, wrong_secret, None, "ssm", now),
            status: 400,
            code: "InvalidSignatureException",
            message_part: "does not match",
        },
        Case {
            name: "wrong secret (Query)",
            request: RawRequest::query(&server, "Action=GetCallerIdentity&Version=2011-06-15").sign(
                &key,
                wrong_secret,
                None,
                "sts",
                now,
            ),
            status: 403,
            code: "SignatureDoesNotMatch",
            message_part: "does not match",
        },
        Case {
            name: "unknown key (JSON)",
            request: RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(
                "AKIAIOSFODNN7EXAMPLE",
                &secret,
                None,
                "ssm",
                now,
            ),
            status: 400,
            code: "UnrecognizedClientException",
            message_part: "security token included in the request is invalid",
        },
        Case {
            name: "unknown key (Query)",
            request: RawRequest::query(&server, "Action=GetCallerIdentity&Version=2011-06-15").sign(
                "AKIAIOSFODNN7EXAMPLE",
                &secret,
                None,
                "sts",
                now,
            ),
            status: 403,
            code: "InvalidClientTokenId",
            message_part: "security token included in the request is invalid",
        },
        Case {
            name: "signed 6 minutes ago",
            request: RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(
                &key,
                &secret,
                None,
                "ssm",
                now - time::Duration::minutes(6),
            ),
            status: 400,
            code: "InvalidSignatureException",
            message_part: "Signature expired",
        },
        Case {
            name: "signed 6 minutes ahead",
            request: RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(
                &key,
                &secret,
                None,
                "ssm",
                now + time::Duration::minutes(6),
            ),
            status: 400,
            code: "InvalidSignatureException",
            message_part: "not yet current",
        },
        Case {
            name: "missing X-Amz-Date",
            request: no_date,
            status: 400,
            code: "IncompleteSignatureException",
            message_part: "X-Amz-Date",
        },
        Case {
            name: "tampered body",
            request: tampered,
            status: 400,
            code: "InvalidSignatureException",
            message_part: "does not match",
        },
        Case {
            name: "no Authorization",
            request: no_auth,
            status: 400,
            code: "MissingAuthenticationTokenException",
            message_part: "Missing Authentication Token",
        },
        Case {
            name: "garbled Authorization",
            request: garbled_auth,
            status: 400,
            code: "IncompleteSignatureException",
            message_part: "",
        },
        Case {
            name: "credential scoped to another service",
            request: RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(&key, &secret, None, "sts", now),
            status: 400,
            code: "InvalidSignatureException",
            message_part: "scoped to correct service",
        },
        Case {
            name: "malformed JSON",
            request: RawRequest::ssm(&server, "GetServiceSetting", "{\"SettingId\": ")
                .sign(&key, &secret, None, "ssm", now),
            status: 400,
            code: "SerializationException",
            message_part: "",
        },
        Case {
            name: "JSON of the wrong type",
            request: RawRequest::ssm(&server, "GetServiceSetting", r#"{"SettingId": 42}"#)
                .sign(&key, &secret, None, "ssm", now),
            status: 400,
            code: "SerializationException",
            message_part: "",
        },
        Case {
            name: "missing required member",
            request: RawRequest::ssm(&server, "GetServiceSetting", "{}").sign(&key, &secret, None, "ssm", now),
            status: 400,
            code: "ValidationException",
            message_part: "Member must not be null",
        },
        Case {
            name: "10 MB body",
            request: RawRequest::ssm(&server, "GetServiceSetting", &huge).sign(&key, &secret, None, "ssm", now),
            status: 413,
            code: "RequestEntityTooLargeException",
            message_part: "maximum size",
        },
        Case {
            name: "unknown target",
            request: RawRequest::ssm(&server, "MakeCoffee", "{}").sign(&key, &secret, None, "ssm", now),
            status: 400,
            code: "UnknownOperationException",
            message_part: "MakeCoffee",
        },
        Case {
            name: "Query call with a wrong Version",
            request: RawRequest::query(&server, "Action=GetCallerIdentity&Version=2011-06-16")
                .sign(&key, &secret, None, "sts", now),
            status: 400,
            code: "InvalidAction",
            message_part: "2011-06-16",
        },
        Case {
            name: "Query call with an unknown Action",
            request: RawRequest::query(&server, "Action=BecomeRoot&Version=2011-06-15")
                .sign(&key, &secret, None, "sts", now),
            status: 400,
            code: "InvalidAction",
            message_part: "BecomeRoot",
        },
    ];

    let mut failures = Vec::new();
    for case in cases {
        let resp = case.request.send(&server).await;
        let code = resp.error_code();
        let ok = resp.status == case.status
            && code.as_deref() == Some(case.code)
            && resp.text.contains(case.message_part)
            && resp.request_id.is_some();
        if !ok {
            failures.push(format!(
                "{}: expected {} {} containing {:?}, got {} {:?}: {}",
                case.name,
                case.status,
                case.code,
                case.message_part,
                resp.status,
                code,
                resp.text.chars().take(300).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    assert!(server.is_running(), "the server must survive bad input");
    assert_eq!(tier(&server).await, "advanced", "bad input must not change stored data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_come_back_escaped() {
    let (_dir, server) = TestServer::start_fresh();
    let (key, secret) = server.admin_credentials();
    let now = OffsetDateTime::now_utc();
    let hostile = r#"{"SettingId": "/ssm/<script>alert(1)</script>\"'\u0000🙂"}"#;
    let resp = RawRequest::ssm(&server, "GetServiceSetting", hostile)
        .sign(&key, &secret, None, "ssm", now)
        .send(&server)
        .await;
    assert_eq!(resp.status, 400);
    let body: serde_json::Value = serde_json::from_str(&resp.text).expect("error body is valid JSON");
    assert_eq!(body["__type"], "ServiceSettingNotFound");

    // In a Query error the same characters must not break the XML.
    let resp = RawRequest::query(&server, "Action=%3Cscript%3E%26&Version=2011-06-15")
        .sign(&key, &secret, None, "sts", now)
        .send(&server)
        .await;
    assert_eq!(resp.status, 400);
    assert!(!resp.text.contains("<script>"), "{}", resp.text);
    assert_eq!(resp.error_code().as_deref(), Some("InvalidAction"));
}

/// Rewrites the region in a signed request's credential scope (the signature is then wrong too,
/// but the scope is checked first).
fn with_scope_region(mut req: RawRequest, region: &str) -> RawRequest {
    let auth = req.headers.get("authorization").and_then(|v| v.to_str().ok()).expect("signed").to_string();
    let auth = auth.replace("/us-east-1/", &format!("/{region}/"));
    req.headers.insert("authorization", auth.parse().expect("header"));
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_framed_two_ways_are_refused_and_the_connection_closed() {
    let (_dir, server) = TestServer::start_fresh();
    let (key, secret) = server.admin_credentials();
    let signed = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(
        &key,
        &secret,
        None,
        "ssm",
        OffsetDateTime::now_utc(),
    );
    let body = GET_TIER.as_bytes();
    let chunked = [format!("{:x}\r\n", body.len()).as_bytes(), body, b"\r\n0\r\n\r\n"].concat();
    let within = std::time::Duration::from_secs(10);

    // The same signed call, framed once: answered, and the connection stays open.
    let (answer, closed) = common::exchange_raw(
        &server,
        &signed.to_wire("Transfer-Encoding: chunked\r\n", &chunked),
        std::time::Duration::from_secs(2),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!closed, "a well-framed request's connection was closed");

    // Framed two ways (RFC 9112 section 6.3): refused in the JSON envelope with a request ID,
    // and the connection closed, whichever header comes first.
    for framing in [
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n".to_string(),
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n".to_string(),
    ] {
        let (answer, closed) = common::exchange_raw(&server, &signed.to_wire(&framing, &chunked), within).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{framing:?}: {answer}");
        assert!(answer.contains(r#""__type":"SerializationException""#), "{answer}");
        assert!(answer.contains("both Transfer-Encoding and Content-Length"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("x-amzn-requestid:"), "{answer}");
        assert!(closed, "the connection stayed open after {framing:?}");
    }
    // Content-Length twice, even with the same value; and a Query call gets its XML envelope.
    let twice = format!("Content-Length: {0}\r\nContent-Length: {0}\r\n", body.len());
    let (answer, closed) = common::exchange_raw(&server, &signed.to_wire(&twice, body), within).await;
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("more than one Content-Length"), "{answer}");
    assert!(closed);
    let form = "Action=GetCallerIdentity&Version=2011-06-15";
    let query = RawRequest::query(&server, form).sign(&key, &secret, None, "sts", OffsetDateTime::now_utc());
    let twice = format!("Content-Length: {0}\r\nContent-Length: {0}\r\n", form.len());
    let (answer, closed) = common::exchange_raw(&server, &query.to_wire(&twice, form.as_bytes()), within).await;
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("<Code>MalformedInput</Code>"), "{answer}");
    assert!(closed);
    // Lengths hyper itself cannot read: 400 and closed.
    for framing in ["Content-Length: 5\r\nContent-Length: 6\r\n", "Content-Length: abc\r\n"] {
        let (answer, closed) = common::exchange_raw(&server, &signed.to_wire(framing, body), within).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{framing:?}: {answer}");
        assert!(closed, "{framing:?}");
    }
    // Nothing was changed by any of it, and the server still answers.
    assert_eq!(tier(&server).await, "standard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_tokens_and_oversized_registrations_are_refused_as_aws_does() {
    let (_dir, server) = TestServer::start_fresh();
    let (key, secret) = server.admin_credentials();
    let now = OffsetDateTime::now_utc();

    // A scope whose region is not a region name.
    for (region, code, says) in [
        ("not a region", "InvalidSignatureException", "valid region"),
        ("US-EAST-1", "InvalidSignatureException", "valid region"),
        ("", "IncompleteSignatureException", "region"),
    ] {
        let req = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(&key, &secret, None, "ssm", now);
        let r = with_scope_region(req, region).send(&server).await;
        assert_eq!((r.status, r.error_code().as_deref()), (400, Some(code)), "{region:?}: {}", r.text);
        assert!(r.text.contains(says), "{}", r.text);
    }
    // Any syntactically valid region is accepted, as AWS clients sign with their own.
    let r = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER).sign(&key, &secret, None, "ssm", now);
    assert_eq!(r.send(&server).await.status, 200);

    // A long-term key with a session token it does not have.
    let r = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER)
        .sign(&key, &secret, Some("garbage-token"), "ssm", now)
        .send(&server)
        .await;
    assert_eq!((r.status, r.error_code().as_deref()), (400, Some("UnrecognizedClientException")), "{}", r.text);
    let r = RawRequest::query(&server, "Action=GetCallerIdentity&Version=2011-06-15")
        .sign(&key, &secret, Some("garbage-token"), "sts", now)
        .send(&server)
        .await;
    assert_eq!((r.status, r.error_code().as_deref()), (403, Some("InvalidClientTokenId")), "{}", r.text);

    // A registration with a 1 MB fingerprint: the AWS error envelope and a request ID.
    let body = serde_json::json!({
        "ActivationCode": "a".repeat(20), "ActivationId": "00000000-0000-4000-8000-000000000000",
        "PublicKey": "k".repeat(392), "PublicKeyType": "Rsa", "Fingerprint": "f".repeat(1_000_000),
    });
    let r = RawRequest::ssm(&server, "RegisterManagedInstance", &body.to_string()).send(&server).await;
    assert_eq!((r.status, r.error_code().as_deref()), (413, Some("RequestEntityTooLargeException")), "{}", r.text);
    assert!(r.request_id.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_one_json_log_line_with_its_outcome() {
    let dir = tempfile::tempdir().expect("dir");
    let server = common::TestServer::start(
        &dir.path().join("data"),
        common::StartOptions { env: vec![("CORRAL_LOG_FORMAT".into(), "json".into())], ..Default::default() },
    )
    .expect("server");
    let (key, secret) = server.admin_credentials();
    let now = OffsetDateTime::now_utc();
    let ok = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER)
        .sign(&key, &secret, None, "ssm", now)
        .send(&server)
        .await;
    let bad = RawRequest::ssm(&server, "GetServiceSetting", GET_TIER)
        .sign(&key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, "ssm", now)
        .send(&server)
        .await;
    let log = server.log();
    let lines: Vec<serde_json::Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty() && lines.len() == log.lines().count(), "every line is JSON:\n{log}");
    let line_of = |request_id: &str| {
        let found: Vec<&serde_json::Value> =
            lines.iter().filter(|l| l["span"]["request_id"] == request_id && l["span"]["name"] == "request").collect();
        assert_eq!(found.len(), 1, "one line for {request_id}:\n{log}");
        found[0].clone()
    };
    let ok_line = line_of(ok.request_id.as_deref().expect("id"));
    assert_eq!(ok_line["fields"]["message"], "ok");
    assert_eq!(ok_line["fields"]["status"], 200);
    assert!(ok_line["fields"]["duration_ms"].is_u64());
    assert_eq!(ok_line["span"]["operation"], "GetServiceSetting");
    assert!(ok_line["span"]["caller"].as_str().is_some_and(|c| c.ends_with(":user/admin")));
    let bad_line = line_of(bad.request_id.as_deref().expect("id"));
    assert_eq!(bad_line["fields"]["code"], "InvalidSignatureException");
    assert!(bad_line["fields"]["reason"].as_str().is_some_and(|r| r.contains("signature")));
    assert!(!log.contains(&secret), "no secret in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_with_a_request_id() {
    let (_dir, server) = TestServer::start_fresh();
    let http = server.http();
    let url = |path: &str| format!("{}{path}", server.endpoint);
    let answers = [
        http.post(url("/v1/control-channel/mi-0123456789abcdef0")).body("{}").send().await.expect("unsigned create"),
        http.get(url("/v1/control-channel/mi-0123456789abcdef0")).send().await.expect("no upgrade"),
        http.get(url("/corral/v1/commands/c/invocations/mi-0123456789abcdef0/output")).send().await.expect("ext"),
        http.get(url("/healthz")).send().await.expect("healthz"),
        http.get(url("/anything")).send().await.expect("GET elsewhere"),
    ];
    for r in answers {
        let status = r.status();
        assert!(r.headers().contains_key("x-amzn-requestid"), "{status} without a request ID");
    }
}
