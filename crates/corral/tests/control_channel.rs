//! The ssmmessages control channel as amazon-ssm-agent speaks it (agent-protocol.md §3.3,
//! §4.1–4.3), byte for byte, without corral-agent: CreateControlChannel's 201 XML, the SigV4
//! upgrade, the token frame, pongs, and a Run Command job acknowledged and answered in
//! binary frames.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use corral_wire::mgs::{self, ClientMessage};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn creds(inst: &RegisteredInstance) -> corral_wire::sigv4::Credentials {
    corral_wire::sigv4::Credentials {
        access_key_id: inst.access_key_id.clone(),
        secret_access_key: inst.secret_access_key.clone(),
        session_token: Some(inst.session_token.clone()),
    }
}

/// `POST /v1/control-channel/<id>`, signed for `ssmmessages` with `signer`'s credentials.
async fn create_channel(server: &TestServer, signer: &RegisteredInstance, instance_id: &str) -> (u16, String) {
    let path = format!("/v1/control-channel/{instance_id}");
    let body = br#"{"MessageSchemaVersion":"1.0","RequestId":"7d4b1f3c-2a6e-4b8f-9c1d-0e5f6a7b8c9d"}"#;
    let mut headers = http::HeaderMap::new();
    headers.insert("host", server.host.parse().expect("host"));
    headers.insert("content-type", "application/json".parse().expect("ct"));
    corral_wire::sigv4::sign_request(
        "POST",
        &path,
        "",
        &mut headers,
        body,
        &creds(signer),
        "us-east-1",
        "ssmmessages",
        time::OffsetDateTime::now_utc(),
    )
    .expect("sign");
    let mut req = server.http().post(format!("{}{path}", server.endpoint)).body(body.to_vec());
    for (k, v) in headers.iter() {
        if k != "host" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let resp = req.send().await.expect("CreateControlChannel");
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens the control-channel websocket with a SigV4-signed upgrade.
async fn open_channel(server: &TestServer, inst: &RegisteredInstance) -> Result<Socket, String> {
    let path = format!("/v1/control-channel/{}", inst.instance_id);
    let query = "role=subscribe&stream=input";
    let mut headers = http::HeaderMap::new();
    headers.insert("host", server.host.parse().expect("host"));
    corral_wire::sigv4::sign_request(
        "GET",
        &path,
        query,
        &mut headers,
        b"",
        &creds(inst),
        "us-east-1",
        "ssmmessages",
        time::OffsetDateTime::now_utc(),
    )
    .expect("sign");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut server.ca_pem().as_slice()) {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&server.host).await.map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| e.to_string())?;
    let mut request = http::Request::builder().uri(format!("wss://{}{path}?{query}", server.host));
    for (k, v) in headers.iter() {
        request = request.header(k, v);
    }
    let request = request
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", tokio_tungstenite::tungstenite::handshake::client::generate_key())
        .body(())
        .expect("request");
    let (socket, _) = tokio_tungstenite::client_async(request, tls).await.map_err(|e| e.to_string())?;
    Ok(socket)
}

async fn next_binary(socket: &mut Socket) -> ClientMessage {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), socket.next()).await.expect("a frame in time");
        match msg {
            Some(Ok(Message::Binary(b))) => return ClientMessage::decode(&b).expect("frame decodes"),
            Some(Ok(_)) => continue,
            other => panic!("channel ended: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_channel_speaks_the_ssm_agents_protocol() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("RunRole").await;
    let (act, code) = server.create_activation("RunRole", 2, None, &[]).await;
    let inst = register_and_get_token(&server, &act, &code, &MachineIdentity::generate()).await;
    let other = register_and_get_token(&server, &act, &code, &MachineIdentity::generate()).await;

    // CreateControlChannel: 201 and an XML token; another instance's credentials are refused
    // with the element name the agent looks for.
    let (status, body) = create_channel(&server, &inst, &inst.instance_id).await;
    assert_eq!(status, 201, "{body}");
    let token = mgs::token_from_response_xml(&body).expect("TokenValue");
    assert!(body.contains("<MessageSchemaVersion>1.0</MessageSchemaVersion>"), "{body}");
    let (status, body) = create_channel(&server, &other, &inst.instance_id).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<AccessDeniedException>"), "{body}");
    // Both calls have their line in the server's log, the refusal with its reason.
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("operation=\"CreateControlChannel\"") && l.contains(" ok")),
        "no log line for the accepted CreateControlChannel:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("operation=\"CreateControlChannel\"")
            && l.contains("AccessDeniedException")
            && l.contains("reason=")),
        "no log line for the refused CreateControlChannel:\n{log}"
    );

    // A wrong token closes the channel; the right one keeps it.
    let mut socket = open_channel(&server, &inst).await.expect("upgrade");
    let open = |t: &str| {
        serde_json::json!({"Cookie": null, "MessageSchemaVersion": "1.0", "RequestId": "0b7e3f7c-1c1e-4a53-9a4f-0c2b9d8e7f60",
            "TokenValue": t, "AgentVersion": "3.3.0.0", "PlatformType": "linux"})
        .to_string()
    };
    socket.send(Message::Text(open("123.bad").into())).await.expect("send open");
    let closed = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("answer");
    assert!(matches!(closed, Some(Ok(Message::Close(_))) | None | Some(Err(_))), "{closed:?}");
    assert!(open_channel(&server, &other).await.is_ok(), "its own channel opens");
    let mut socket = open_channel(&server, &inst).await.expect("upgrade");
    socket.send(Message::Text(open(&token).into())).await.expect("send open");

    // Pings are answered (the agent reconnects every two minutes otherwise).
    socket.send(Message::Ping(b"keepalive".to_vec().into())).await.expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("pong in time");
    assert!(matches!(pong, Some(Ok(Message::Pong(ref p))) if p.as_ref() == b"keepalive"), "{pong:?}");

    // A command arrives at once as an agent_job frame.
    let sent = server
        .ssm()
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&inst.instance_id)
        .parameters("commands", vec!["echo framed".to_string()])
        .send()
        .await
        .expect("send");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    let frame = next_binary(&mut socket).await;
    assert_eq!(frame.message_type, "agent_job");
    assert_eq!((frame.schema_version, frame.sequence_number, frame.flags), (1, 0, 0));
    let job: mgs::AgentJob = serde_json::from_slice(&frame.payload).expect("AgentJob");
    assert_eq!(job.job_id, format!("aws.ssm.{id}.{}", inst.instance_id));
    assert_eq!(job.topic, "aws.ssm.sendCommand");
    let content: serde_json::Value = serde_json::from_str(&job.content).expect("content");
    assert_eq!(content["CommandId"], serde_json::json!(id));
    assert!(content["DocumentContent"]["runtimeConfig"]["aws:runShellScript"].is_object());
    assert_eq!(content["CloudWatchOutputEnabled"], serde_json::json!("false"));

    // Ack, InProgress, result: each reply is acknowledged with the reply frame's message id.
    let ack = mgs::AgentJobAck {
        job_id: job.job_id.clone(),
        acknowledged_message_id: frame.message_id_string(),
        created_date: corral_wire::time::format_iso8601_millis(time::OffsetDateTime::now_utc()),
        status_code: "200".into(),
        error_message: "Successful".into(),
    };
    let bytes = ClientMessage::new("agent_job_ack", serde_json::to_vec(&ack).expect("json")).encode();
    socket.send(Message::Binary(bytes.into())).await.expect("ack");
    let result = serde_json::json!({"additionalInfo": {"agent": {"name": "amazon-ssm-agent"}, "runtimeStatusCounts": {"Success": 1}},
        "documentStatus": "Success", "documentTraceOutput": "",
        "runtimeStatus": {"aws:runShellScript": {"status": "Success", "code": 0, "name": "aws:runShellScript",
            "output": "framed\n", "standardOutput": "framed\n", "standardError": "",
            "startDateTime": "2026-01-01T00:00:00.000Z", "endDateTime": "2026-01-01T00:00:00.500Z"}}});
    let reply = mgs::AgentJobReply {
        schema_version: 1,
        job_id: job.job_id.clone(),
        content: result.to_string(),
        topic: "aws.ssm.sendCommand".into(),
    };
    let reply_frame = ClientMessage::new("agent_job_reply", serde_json::to_vec(&reply).expect("json"));
    socket.send(Message::Binary(reply_frame.encode().into())).await.expect("reply");
    let ack_frame = next_binary(&mut socket).await;
    assert_eq!(ack_frame.message_type, "agent_job_reply_ack");
    let reply_ack: mgs::AgentJobReplyAck = serde_json::from_slice(&ack_frame.payload).expect("reply ack");
    assert_eq!(reply_ack.acknowledged_message_id, reply_frame.message_id_string());
    assert_eq!(reply_ack.job_id, job.job_id);

    let inv =
        server.ssm().get_command_invocation().command_id(&id).instance_id(&inst.instance_id).send().await.expect("get");
    assert_eq!(inv.status().map(|s| s.as_str()), Some("Success"));
    assert_eq!(inv.standard_output_content(), Some("framed\n"));
    assert_eq!(inv.execution_elapsed_time(), Some("PT0.5S"));

    // Garbage frames are ignored, the channel stays up.
    socket.send(Message::Binary(vec![0u8; 7].into())).await.expect("garbage");
    socket.send(Message::Ping(b"still".to_vec().into())).await.expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("pong in time");
    assert!(matches!(pong, Some(Ok(Message::Pong(_)))), "{pong:?}");

    // Deregistration closes the channel at once.
    server.ssm().deregister_managed_instance().instance_id(&inst.instance_id).send().await.expect("deregister");
    let end = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("closed in time");
    assert!(matches!(end, Some(Ok(Message::Close(_))) | None | Some(Err(_))), "{end:?}");
    let (status, _) = create_channel(&server, &inst, &inst.instance_id).await;
    assert_eq!(status, 403, "a deregistered instance cannot open a channel again");
}
