//! The ssmmessages control channel, the way amazon-ssm-agent opens and keeps it
//! (agent-protocol.md §4.1–4.2): `CreateControlChannel` for a token, a websocket to
//! `/v1/control-channel/<instance-id>?role=subscribe&stream=input` signed with the role
//! credentials, the `OpenControlChannel` text frame, then binary frames both ways.
//!
//! It runs as a task of its own beside the credential loop of [`crate::agent`], which
//! publishes where to connect and with which credentials ([`ChannelTarget`]) on a watch
//! channel. The websocket is authenticated once, at the upgrade, so it stays up when the
//! credentials are refreshed; it is closed when the registration changes or goes away.
//!
//! Liveness: a ping (`keepalive`) every 54 s; no pong within 60 s of a ping means the
//! connection is dead. Every end of a connection, and every failure to open one, is followed
//! by a fresh `CreateControlChannel` after an exponential, jittered back-off (first 5–10 s,
//! doubling up to 5–10 min), forever; a connection that was up for a minute resets it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use corral_wire::mgs::{self, ClientMessage, CreateChannelRequest, OpenControlChannel};
use corral_wire::sigv4::{self, Credentials};
use futures_util::{SinkExt as _, StreamExt as _};
use http::header::{HeaderMap, HeaderValue, HOST, USER_AGENT};
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::client::{self, CallError, SsmClient};
use crate::jobs::{JobEnv, Jobs, RESEND_INTERVAL};
use crate::state::StateDir;

/// The SigV4 service name of ssmmessages.
const SERVICE: &str = "ssmmessages";

/// The first reconnect delay when none is configured (the SSM agent waits 5–10 s).
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_secs(5);

/// The longest nominal reconnect delay (jitter adds up to as much again). The SSM agent goes
/// up to 40 minutes; Corral agents come back sooner after a control-plane outage.
const RECONNECT_MAX: Duration = Duration::from_secs(300);

/// A connection that lasted this long counts as a success for the back-off.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// WebSocket ping interval and how long a pong may take (the SSM agent's).
const PING_INTERVAL: Duration = Duration::from_secs(54);
const PONG_WAIT: Duration = Duration::from_secs(60);

/// TCP connect, TLS and websocket handshake, each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Writing one frame; a peer that does not read for this long is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Frames larger than this are refused (replies stay below it, see [`crate::jobs`]).
const MAX_MESSAGE: usize = 4 << 20;

/// Where and as whom to open the control channel; published by the credential loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTarget {
    /// The managed instance ID.
    pub instance_id: String,
    /// The registration's region (the SigV4 scope).
    pub region: String,
    /// The registration's endpoint URL; the channel uses its host and port.
    pub endpoint: String,
    /// The CA bundle copied at registration, if any.
    pub ca_bundle: Option<PathBuf>,
    /// Role credentials; `None` while there are none (the channel then waits).
    pub credentials: Option<Credentials>,
}

impl ChannelTarget {
    /// Whether `other` is the same machine at the same place (credentials aside).
    fn same_place(&self, other: &ChannelTarget) -> bool {
        self.instance_id == other.instance_id
            && self.region == other.region
            && self.endpoint == other.endpoint
            && self.ca_bundle == other.ca_bundle
    }
}

/// Options of the control channel.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// The first reconnect delay (jitter doubles it at most).
    pub reconnect_min: Duration,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions { reconnect_min: DEFAULT_RECONNECT_MIN }
    }
}

/// Why a connection ended (or never started).
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("CreateControlChannel failed: {0}")]
    Create(CallError),
    #[error("CreateControlChannel answered HTTP {0}, not 201: {1}")]
    CreateStatus(u16, String),
    #[error("{0}")]
    Connect(String),
    #[error("the connection broke: {0}")]
    Broken(String),
    #[error("no pong within {} s of a ping; the connection is dead", PONG_WAIT.as_secs())]
    NoPong,
}

/// How a connection that was up ended normally.
enum End {
    /// The control plane closed it (or said `channel_closed`).
    Closed(String),
    /// The registration changed or went away: reconnect at once (or wait for a new one).
    TargetChanged,
    /// The credential loop is gone: the agent is stopping.
    Stopping,
}

/// Keeps the control channel open for whatever `targets` says, until the sender is dropped.
pub async fn run(dir: StateDir, mut targets: watch::Receiver<Option<ChannelTarget>>, options: ChannelOptions) {
    let mut jobs: Option<Arc<Jobs>> = None;
    let mut failures: u32 = 0;
    let mut last_error: Option<String> = None;
    loop {
        let Some(target) = usable_target(&mut targets).await else { return };
        // The target comes from a registration `Identity::load` already checked; checked again
        // because the websocket below is opened by hand, outside the https-only HTTP client.
        if let Err(e) = client::https_endpoint(&target.endpoint) {
            tracing::warn!(error = %e, "not opening the Run Command control channel");
            if wait_for_new_place(&mut targets, &target).await.is_err() {
                return;
            }
            continue;
        }
        let jobs = match &jobs {
            Some(jobs) => jobs.clone(),
            None => match Jobs::open(&dir) {
                Ok(opened) => jobs.insert(opened).clone(),
                Err(e) => {
                    failures += 1;
                    let delay = reconnect_delay(failures, options.reconnect_min);
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot open the job store in the state directory");
                    if pause(delay, &mut targets, options.reconnect_min).await.is_err() {
                        return;
                    }
                    continue;
                }
            },
        };
        let started = Instant::now();
        let result = session(&target, &mut targets, &jobs).await;
        jobs.detach();
        if started.elapsed() >= STABLE_AFTER {
            failures = 0;
            last_error = None;
        }
        failures += 1;
        let delay = reconnect_delay(failures, options.reconnect_min);
        let retry_in_ms = delay.as_millis() as u64;
        match result {
            Ok(End::Stopping) => return,
            Ok(End::TargetChanged) => {
                tracing::info!("the registration changed; reopening the control channel");
                failures = 0;
                continue;
            }
            Ok(End::Closed(why)) => {
                last_error = None;
                tracing::info!(reason = %why, retry_in_ms, "the control channel closed");
            }
            Err(error) => {
                let text = error.to_string();
                // The same failure over and over (a control plane without ssmmessages, a long
                // outage) is logged once; the back-off keeps the attempts rare.
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(%error, retry_in_ms, "control channel failed");
                } else {
                    tracing::debug!(%error, retry_in_ms, "control channel failed again");
                }
                last_error = Some(text);
            }
        }
        if pause(delay, &mut targets, options.reconnect_min).await.is_err() {
            return;
        }
    }
}

/// Waits for a target with credentials; `None` when the sender is gone.
async fn usable_target(targets: &mut watch::Receiver<Option<ChannelTarget>>) -> Option<ChannelTarget> {
    loop {
        if let Some(target) = targets.borrow_and_update().clone().filter(|t| t.credentials.is_some()) {
            return Some(target);
        }
        targets.changed().await.ok()?;
    }
}

/// Waits until the target names another place (or the sender is gone: `Err`).
async fn wait_for_new_place(
    targets: &mut watch::Receiver<Option<ChannelTarget>>,
    current: &ChannelTarget,
) -> Result<(), watch::error::RecvError> {
    loop {
        targets.changed().await?;
        if !targets.borrow_and_update().as_ref().is_some_and(|t| t.same_place(current)) {
            return Ok(());
        }
    }
}

/// Sleeps `delay`, cut short to `min` (from now) when the target changes, e.g. new credentials
/// after the control plane refused the old ones. `Err` when the sender is gone.
async fn pause(
    delay: Duration,
    targets: &mut watch::Receiver<Option<ChannelTarget>>,
    min: Duration,
) -> Result<(), watch::error::RecvError> {
    let mut deadline = Instant::now() + delay;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return Ok(()),
            changed = targets.changed() => {
                changed?;
                deadline = deadline.min(Instant::now() + min);
            }
        }
    }
}

/// The n-th consecutive failure's delay: `min · 2^(n-1)` (at most [`RECONNECT_MAX`]), times a
/// random factor in [1, 2).
pub fn reconnect_delay(failures: u32, min: Duration) -> Duration {
    let doubling = 1u32 << failures.saturating_sub(1).min(20);
    let nominal = min.saturating_mul(doubling).min(RECONNECT_MAX.max(min));
    nominal.mul_f64(rand::random_range(1.0..2.0))
}

type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// One connection, from `CreateControlChannel` until it ends.
async fn session(
    target: &ChannelTarget,
    targets: &mut watch::Receiver<Option<ChannelTarget>>,
    jobs: &Arc<Jobs>,
) -> Result<End, SessionError> {
    let Some(creds) = target.credentials.as_ref() else {
        return Ok(End::TargetChanged);
    };
    let client =
        SsmClient::new(&target.endpoint, &target.region, target.ca_bundle.as_deref()).map_err(SessionError::Connect)?;
    let token = create_control_channel(&client, target, creds).await?;
    let mut ws = open_websocket(&client, target, creds).await?;
    // The HTTPS connection CreateControlChannel used would idle in the client's pool for up
    // to a minute, costing the server a connection per agent; the channel needs no other.
    drop(client);
    let open = OpenControlChannel {
        cookie: None,
        message_schema_version: "1.0".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        token_value: token,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        platform_type: crate::platform::platform_type().to_ascii_lowercase(),
    };
    let open = serde_json::to_string(&open).map_err(|e| SessionError::Connect(e.to_string()))?;
    send(&mut ws, Message::Text(open.into())).await?;
    tracing::info!(instance_id = %target.instance_id, "control channel open; ready for Run Command");

    let (outbox, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
    jobs.attach(outbox);
    let env = JobEnv { instance_id: target.instance_id.clone(), region: target.region.clone() };
    let now = Instant::now();
    let mut ping = tokio::time::interval_at(now + PING_INTERVAL, PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut resend = tokio::time::interval_at(now + RESEND_INTERVAL, RESEND_INTERVAL);
    resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pong_deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                None => return Ok(End::Closed("the connection was closed".into())),
                Some(Err(e)) => return Err(SessionError::Broken(e.to_string())),
                Some(Ok(Message::Binary(bytes))) => match ClientMessage::decode(&bytes) {
                    Ok(frame) if frame.message_type == mgs::message_type::CHANNEL_CLOSED => {
                        let _ = timeout(WRITE_TIMEOUT, ws.close(None)).await;
                        return Ok(End::Closed(channel_closed_reason(&frame.payload)));
                    }
                    Ok(frame) => jobs.handle_frame(&frame, &env),
                    Err(e) => tracing::warn!(error = %e, "ignoring a control-channel frame that does not parse"),
                },
                Some(Ok(Message::Pong(_))) => pong_deadline = None,
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map(|f| format!("closed by the control plane ({} {})", f.code, f.reason));
                    return Ok(End::Closed(why.unwrap_or_else(|| "closed by the control plane".into())));
                }
                // Pings are answered by the websocket layer; text frames carry nothing for us.
                Some(Ok(_)) => {}
            },
            Some(bytes) = outgoing.recv() => send(&mut ws, Message::Binary(bytes.into())).await?,
            _ = ping.tick() => {
                send(&mut ws, Message::Ping(b"keepalive".to_vec().into())).await?;
                pong_deadline.get_or_insert(Instant::now() + PONG_WAIT);
            }
            () = sleep_until(pong_deadline) => return Err(SessionError::NoPong),
            _ = resend.tick() => jobs.resend_pending(),
            changed = targets.changed() => {
                if changed.is_err() {
                    let _ = timeout(WRITE_TIMEOUT, ws.close(None)).await;
                    return Ok(End::Stopping);
                }
                let same = targets.borrow_and_update().as_ref().is_some_and(|t| t.same_place(target));
                if !same {
                    let _ = timeout(WRITE_TIMEOUT, ws.close(None)).await;
                    return Ok(End::TargetChanged);
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn send(ws: &mut Socket, message: Message) -> Result<(), SessionError> {
    match timeout(WRITE_TIMEOUT, ws.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SessionError::Broken(e.to_string())),
        Err(_) => Err(SessionError::Broken(format!("a write took longer than {} s", WRITE_TIMEOUT.as_secs()))),
    }
}

/// The `Output` of a `channel_closed` payload, for the log.
fn channel_closed_reason(payload: &[u8]) -> String {
    let output = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("Output").and_then(|o| o.as_str()).map(str::to_string))
        .filter(|o| !o.is_empty());
    match output {
        Some(text) => format!("the control plane sent channel_closed: {}", text.chars().take(200).collect::<String>()),
        None => "the control plane sent channel_closed".into(),
    }
}

/// `POST /v1/control-channel/<instance-id>`: 201 with an XML body holding the token.
async fn create_control_channel(
    client: &SsmClient,
    target: &ChannelTarget,
    creds: &Credentials,
) -> Result<String, SessionError> {
    let body = CreateChannelRequest {
        message_schema_version: "1.0".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        client_id: None,
    };
    let body = serde_json::to_vec(&body).map_err(|e| SessionError::Connect(e.to_string()))?;
    let path = format!("/v1/control-channel/{}", target.instance_id);
    let (status, answer) = client.post_json_signed(&path, body, creds, SERVICE).await.map_err(SessionError::Create)?;
    if status != 201 {
        return Err(SessionError::CreateStatus(status, error_text(status, &answer)));
    }
    let text = String::from_utf8_lossy(&answer);
    mgs::token_from_response_xml(&text)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| SessionError::Create(CallError::Protocol("no TokenValue in the answer".into())))
}

/// An error answer as `Code: message`: ssmmessages answers XML (`<AccessDeniedException>
/// <Message>...</Message></AccessDeniedException>`), anything else goes the JSON way.
fn error_text(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix('<') {
        let root: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let message = trimmed
            .split_once("<Message>")
            .and_then(|(_, m)| m.split_once("</Message>"))
            .map(|(m, _)| m.trim().chars().take(300).collect::<String>())
            .unwrap_or_default();
        if !root.is_empty() {
            return format!("{root}: {message}");
        }
    }
    client::parse_error(status, None, body).to_string()
}

/// TCP, TLS and the websocket upgrade, SigV4-signed as the SSM agent signs it.
async fn open_websocket(
    client: &SsmClient,
    target: &ChannelTarget,
    creds: &Credentials,
) -> Result<Socket, SessionError> {
    let connect = |what: &str, e: &dyn std::fmt::Display| SessionError::Connect(format!("{what}: {e}"));
    // `wss://` below is only ever derived from an https endpoint: the signed upgrade and every
    // frame after it go over the TLS stream built here, never in clear.
    let url = client::https_endpoint(&target.endpoint).map_err(|e| connect("bad endpoint", &e))?;
    let host = url.host_str().ok_or_else(|| SessionError::Connect("the endpoint has no host".into()))?;
    // IPv6 literals are bracketed in URLs but not for connecting or for TLS.
    let bare_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let host_header = client.host().to_string();

    let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect((bare_host.as_str(), port)))
        .await
        .map_err(|_| SessionError::Connect(format!("connecting to {host_header} timed out")))?
        .map_err(|e| connect(&format!("cannot connect to {host_header}"), &e))?;
    let _ = tcp.set_nodelay(true);
    let tls = client::tls_config(target.ca_bundle.as_deref()).map_err(SessionError::Connect)?;
    let server_name = rustls::pki_types::ServerName::try_from(bare_host.clone())
        .map_err(|e| connect("the endpoint's host is not a valid TLS name", &e))?;
    let tls = timeout(CONNECT_TIMEOUT, tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp))
        .await
        .map_err(|_| SessionError::Connect("the TLS handshake timed out".into()))?
        .map_err(|e| connect("TLS handshake failed (is the CA bundle right?)", &e))?;

    let path = format!("/v1/control-channel/{}", target.instance_id);
    let query = "role=subscribe&stream=input";
    let mut request = format!("wss://{host_header}{path}?{query}")
        .into_client_request()
        .map_err(|e| connect("cannot build the websocket request", &e))?;
    let mut signed = HeaderMap::new();
    signed.insert(HOST, HeaderValue::from_str(&host_header).map_err(|e| connect("bad host", &e))?);
    sigv4::sign_request(
        "GET",
        &path,
        query,
        &mut signed,
        b"",
        creds,
        &target.region,
        SERVICE,
        OffsetDateTime::now_utc(),
    )
    .map_err(|e| connect("cannot sign the websocket request", &e))?;
    signed.remove(HOST);
    let headers = request.headers_mut();
    for (name, value) in signed.iter() {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(USER_AGENT, HeaderValue::from_static(concat!("corral-agent/", env!("CARGO_PKG_VERSION"))));

    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (ws, _response) =
        timeout(CONNECT_TIMEOUT, tokio_tungstenite::client_async_with_config(request, tls, Some(config)))
            .await
            .map_err(|_| SessionError::Connect("the websocket handshake timed out".into()))?
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    SessionError::Connect(format!("the websocket upgrade was refused with HTTP {}", response.status()))
                }
                other => connect("the websocket handshake failed", &other),
            })?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_grow_and_stay_bounded() {
        let min = Duration::from_secs(5);
        for _ in 0..50 {
            let first = reconnect_delay(1, min);
            assert!(first >= min && first < min * 2, "{first:?}");
            let third = reconnect_delay(3, min);
            assert!(third >= min * 4 && third < min * 8, "{third:?}");
            let late = reconnect_delay(40, min);
            assert!(late >= RECONNECT_MAX && late < RECONNECT_MAX * 2, "{late:?}");
        }
        // A fast test setting stays fast at first.
        let quick = reconnect_delay(1, Duration::from_millis(200));
        assert!(quick < Duration::from_millis(400));
    }

    #[test]
    fn same_place_ignores_credentials() {
        let target = ChannelTarget {
            instance_id: "mi-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            endpoint: "https://127.0.0.1:8443".into(),
            ca_bundle: None,
            credentials: None,
        };
        let mut refreshed = target.clone();
        refreshed.credentials =
            Some(Credentials { access_key_id: "A".into(), secret_access_key: "s".into(), session_token: None });
        assert!(target.same_place(&refreshed));
        let mut moved = target.clone();
        moved.instance_id = "mi-1111111111111111a".into();
        assert!(!target.same_place(&moved));
    }

    #[test]
    fn error_answers() {
        assert_eq!(
            error_text(
                403,
                b"<AccessDeniedException><Message>User: x is not authorized</Message></AccessDeniedException>"
            ),
            "AccessDeniedException: User: x is not authorized"
        );
        assert_eq!(error_text(400, br#"{"__type":"InvalidInstanceId","message":"gone"}"#), "InvalidInstanceId: gone");
        assert_eq!(error_text(404, b""), "HTTP404: ");
    }

    #[test]
    fn channel_closed_reasons() {
        assert_eq!(
            channel_closed_reason(br#"{"MessageType":"channel_closed","Output":"bye"}"#),
            "the control plane sent channel_closed: bye"
        );
        assert_eq!(channel_closed_reason(b"junk"), "the control plane sent channel_closed");
    }
}
