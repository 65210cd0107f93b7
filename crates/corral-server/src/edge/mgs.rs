//! The ssmmessages (MGS) endpoints the agent uses (agent-protocol.md §4.1–4.2):
//! `POST /v1/control-channel/<instance-id>` answers 201 with an XML token, and a websocket GET
//! of the same path (SigV4-signed upgrade, then the token in a first text frame) opens the
//! control channel that carries Run Command jobs and replies as binary frames.
//!
//! Both are signed with the instance's role credentials (signing name `ssmmessages`), must come
//! from the instance the path names, and are authorised by IAM (`ssmmessages:CreateControlChannel`,
//! `ssmmessages:OpenControlChannel`: the instance role's `AmazonSSMManagedInstanceCore` grants
//! them). Both land in the audit trail.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::{IntoResponse, Response};
use corral_wire::mgs::{
    self, message_type, AgentJobAck, AgentJobReply, AgentJobReplyAck, ClientMessage, OpenControlChannel,
};
use http::{HeaderValue, StatusCode};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::authz;
use crate::context::{PrincipalKind, RequestContext};
use crate::edge::error::EdgeError;
use crate::engine::hub::Outbound;
use crate::state::AppState;

/// The signing name of the ssmmessages endpoints.
pub const SIGNING_NAME: &str = "ssmmessages";
/// How long a control-channel token may wait to be used.
const TOKEN_LIFETIME: time::Duration = time::Duration::minutes(5);
/// How long the agent has to send its first (token) frame.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest frame accepted from an agent: a reply carries at most a few MB of output.
const MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// Websocket buffers per agent: small, so ten thousand idle agents cost little.
const READ_BUFFER: usize = 4 * 1024;
/// Largest `POST` body (a tiny JSON document).
const MAX_CREATE_BODY: usize = 64 * 1024;

/// Why an ssmmessages call is refused.
#[derive(Debug)]
struct MgsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl MgsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        MgsError { status, code, message: message.into() }
    }

    fn denied(message: impl Into<String>) -> Self {
        MgsError::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
    }

    fn from_edge(e: EdgeError) -> Self {
        let wire = e.to_wire(corral_api::model::Protocol::Json);
        let status =
            StatusCode::from_u16(if wire.status == 400 { 403 } else { wire.status }).unwrap_or(StatusCode::FORBIDDEN);
        // The agent falls back to ec2messages only on this literal element name; every
        // authentication failure is an access problem to it.
        MgsError { status, code: "AccessDeniedException", message: format!("{}: {}", wire.code, wire.message) }
    }

    /// The body the agent reads: XML, like AWS's, naming the error as the root element.
    fn into_response(self) -> Response {
        let body = format!(
            "<{code}><Message>{}</Message></{code}>",
            corral_wire::query::xml_escape(&self.message),
            code = self.code
        );
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        response
    }
}

// === tokens ===

const TOKEN_PURPOSE: &str = "mgs control channel token";

/// A token for `instance_id`'s control channel: its expiry and a keyed hash over both, so any
/// replica sharing the store's key can check it without storing anything.
fn issue_token(state: &AppState, instance_id: &str, now: OffsetDateTime) -> String {
    let expires = (now + TOKEN_LIFETIME).unix_timestamp();
    let mac = state.store.secret_hash(TOKEN_PURPOSE, &format!("{instance_id}|{expires}"));
    format!("{expires}.{mac}")
}

fn token_is_valid(state: &AppState, instance_id: &str, token: &str, now: OffsetDateTime) -> bool {
    let Some((expires, mac)) = token.split_once('.') else { return false };
    let Ok(expires_at) = expires.parse::<i64>() else { return false };
    if now.unix_timestamp() > expires_at {
        return false;
    }
    let expected = state.store.secret_hash(TOKEN_PURPOSE, &format!("{instance_id}|{expires_at}"));
    expected.as_bytes().ct_eq(mac.as_bytes()).into()
}

// === authentication ===

/// Who is calling, once the signature, the instance and the policy check out.
struct AgentCaller {
    ctx: RequestContext,
}

async fn authenticate_agent(
    state: &AppState,
    peer: SocketAddr,
    parts: &http::request::Parts,
    body: &[u8],
    instance_id: &str,
    action: &str,
) -> Result<AgentCaller, MgsError> {
    let ctx =
        crate::edge::authenticate_request(state, peer, parts, body, SIGNING_NAME).await.map_err(MgsError::from_edge)?;
    // Only the instance itself (its role session is named after it) may open its channel.
    let own =
        matches!(&ctx.principal.kind, PrincipalKind::AssumedRole { session_name, .. } if session_name == instance_id);
    let instance = state.store.get_instance(instance_id).await.map_err(|e| {
        tracing::error!(error = %e, "reading an instance for ssmmessages");
        MgsError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", "Internal error")
    })?;
    let known = instance.is_some_and(|i| i.account_id == ctx.account_id());
    if !own || !known {
        return Err(MgsError::denied(format!(
            "User: {} is not authorized to open the control channel of {instance_id}",
            ctx.principal.arn
        )));
    }
    authz::authorize(state, &ctx, &[authz::Check::new(action, "*")]).await.map_err(|e| match e {
        authz::AuthzError::Denied { message } => MgsError::denied(message),
        authz::AuthzError::Internal(detail) => {
            tracing::error!(%detail, "authorising an ssmmessages call");
            MgsError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", "Internal error")
        }
    })?;
    Ok(AgentCaller { ctx })
}

/// Records an ssmmessages call in the audit trail; a record that cannot be written refuses
/// the call.
async fn record(
    state: &AppState,
    caller: Option<&RequestContext>,
    peer: SocketAddr,
    headers: &http::HeaderMap,
    event_name: &str,
    instance_id: &str,
    error: Option<&MgsError>,
) -> Result<(), MgsError> {
    let call = crate::edge::SideCall {
        event_source: "ssmmessages.amazonaws.com",
        event_name,
        read_only: false,
        request: serde_json::json!({ "ChannelId": instance_id }),
    };
    let error = error.map(|e| (e.code, e.message.as_str()));
    crate::edge::audit_side_call(state, caller, peer, headers, call, error).await.map_err(|e| {
        tracing::error!(error = %e, "could not write the audit record of an ssmmessages call");
        MgsError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", "Internal error")
    })
}

// === CreateControlChannel ===

/// `POST /v1/control-channel/<instance-id>`.
pub async fn create_control_channel(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(instance_id): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_CREATE_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return MgsError::new(StatusCode::PAYLOAD_TOO_LARGE, "ValidationException", "Request body too large")
                .into_response()
        }
    };
    let caller =
        authenticate_agent(&state, peer, &parts, &body, &instance_id, "ssmmessages:CreateControlChannel").await;
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            let _ = record(&state, None, peer, &parts.headers, "CreateControlChannel", &instance_id, Some(&e)).await;
            return e.into_response();
        }
    };
    if serde_json::from_slice::<mgs::CreateChannelRequest>(&body).is_err() {
        let e = MgsError::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "The body must be a JSON object with MessageSchemaVersion and RequestId.",
        );
        let _ = record(&state, Some(&caller.ctx), peer, &parts.headers, "CreateControlChannel", &instance_id, Some(&e))
            .await;
        return e.into_response();
    }
    if let Err(e) =
        record(&state, Some(&caller.ctx), peer, &parts.headers, "CreateControlChannel", &instance_id, None).await
    {
        return e.into_response();
    }
    let token = issue_token(&state, &instance_id, OffsetDateTime::now_utc());
    let xml = mgs::create_channel_response_xml("CreateControlChannelResponse", &token);
    let mut response = Response::new(Body::from(xml));
    *response.status_mut() = StatusCode::CREATED;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

// === the control channel ===

/// `GET /v1/control-channel/<instance-id>?role=subscribe&stream=input` with a websocket upgrade.
pub async fn open_control_channel(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(instance_id): Path<String>,
    ws: WebSocketUpgrade,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let caller = authenticate_agent(&state, peer, &parts, b"", &instance_id, "ssmmessages:OpenControlChannel").await;
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            let _ = record(&state, None, peer, &parts.headers, "OpenControlChannel", &instance_id, Some(&e)).await;
            return e.into_response();
        }
    };
    if let Err(e) =
        record(&state, Some(&caller.ctx), peer, &parts.headers, "OpenControlChannel", &instance_id, None).await
    {
        return e.into_response();
    }
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve_channel(state, instance_id, socket))
        .into_response()
}

async fn serve_channel(state: AppState, instance_id: String, mut socket: WebSocket) {
    // The first frame is the OpenControlChannel JSON with the CreateControlChannel token.
    let opened = match tokio::time::timeout(OPEN_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<OpenControlChannel>(text.as_str()).ok(),
        _ => None,
    };
    let Some(open) = opened else {
        tracing::info!(%instance_id, "control channel closed: no valid opening frame");
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    if !token_is_valid(&state, &instance_id, &open.token_value, OffsetDateTime::now_utc()) {
        tracing::info!(%instance_id, "control channel refused: bad or expired token");
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    let mut registration = state.hub.register(&instance_id);
    tracing::info!(%instance_id, agent_version = %open.agent_version, platform = %open.platform_type, "control channel open");
    // Millisecond precision, as the store keeps times: the close compares this exact value.
    let opened_at = corral_wire::time::truncate_to_millis(OffsetDateTime::now_utc());
    if let Err(e) = state.store.record_channel_open(&instance_id, opened_at).await {
        tracing::info!(%instance_id, error = %e, "could not record the channel's opening");
    }
    state.engine.wake();

    loop {
        tokio::select! {
            outbound = registration.rx.recv() => match outbound {
                Some(Outbound::Job(job)) => {
                    let frame = crate::engine::commands::job_frame(&job);
                    if socket.send(Message::Binary(frame.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close) | None => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Binary(bytes))) => {
                    if let Some(reply) = handle_frame(&state, &instance_id, &bytes).await {
                        if socket.send(Message::Binary(reply.into())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Ping(payload))) => {
                    if socket.send(Message::Pong(payload)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    state.hub.unregister(&instance_id, registration.id);
    tracing::info!(%instance_id, "control channel closed");
    // Only this channel's close: a newer channel (here or on another replica) keeps it open.
    if let Err(e) = state.store.record_channel_close(&instance_id, opened_at, OffsetDateTime::now_utc()).await {
        tracing::info!(%instance_id, error = %e, "could not record the channel's close");
    }
}

/// Handles one frame from the agent; returns the frame to answer with, if any.
async fn handle_frame(state: &AppState, instance_id: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let frame = match ClientMessage::decode(bytes) {
        Ok(f) => f,
        Err(e) => {
            tracing::info!(%instance_id, error = %e, "undecodable frame ignored");
            return None;
        }
    };
    match frame.message_type.as_str() {
        message_type::AGENT_JOB_ACK => {
            let ack: AgentJobAck = serde_json::from_slice(&frame.payload).ok()?;
            if let Err(e) = state.engine.on_ack(instance_id, &ack).await {
                tracing::warn!(%instance_id, error = %e, "could not store a job ack");
            }
            None
        }
        message_type::AGENT_JOB_REPLY => {
            let reply: AgentJobReply = serde_json::from_slice(&frame.payload).ok()?;
            match state.engine.on_reply(instance_id, &reply).await {
                Ok(()) => {
                    let ack = AgentJobReplyAck {
                        job_id: reply.job_id.clone(),
                        acknowledged_message_id: frame.message_id_string(),
                    };
                    let payload = serde_json::to_vec(&ack).ok()?;
                    Some(ClientMessage::new(message_type::AGENT_JOB_REPLY_ACK, payload).encode())
                }
                Err(e) => {
                    // Not acknowledged: the agent keeps the reply and sends it again.
                    tracing::warn!(%instance_id, error = %e, "could not store a job reply");
                    None
                }
            }
        }
        other => {
            tracing::debug!(%instance_id, message_type = other, "control-channel message ignored");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_element_the_agent_looks_for() {
        let r = MgsError::denied("no").into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}
