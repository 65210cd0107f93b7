//! The edge: every AWS API request enters here.
//!
//! One listener serves every service. A request is framed (size limit), routed (by
//! `X-Amz-Target` for JSON services, by the credential scope's service and the form's `Action`
//! and `Version` for Query services), authenticated, handed to its service as a
//! [`RequestContext`], and its result or error is written in the protocol's envelope with a
//! request ID. Handlers never see an unauthenticated request and never write wire errors.

pub mod auth;
pub mod error;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::Router;
use corral_api::model::{Protocol, ServiceMeta};
use corral_wire::query::{Fault, QueryRequest};
use corral_wire::sigv4::RequestToVerify;
use http::{HeaderValue, StatusCode};
use time::OffsetDateTime;

use crate::context::{AnonymousContext, InstanceContext, RequestContext};
use crate::edge::error::{EdgeError, WireError};
use crate::services;
use crate::state::AppState;

/// The router of the control plane. Everything that is not a more specific route (there are
/// none yet; the agent's websocket channels will be) is an AWS API call: the AWS CLI keeps the
/// endpoint's path, so any path is accepted.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle_api_request).with_state(state)
}

/// Where a request goes once routed.
enum Route {
    Ssm(corral_api::ssm::Operation),
    Sts(corral_api::sts::Operation, QueryRequest),
    Iam(corral_api::iam::Operation, QueryRequest),
}

/// How a routed request proves who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// SigV4 (HMAC) with an access key: every operation but the agent's private calls.
    SigV4,
    /// The SigV4 layout signed with the managed instance's RSA key (agent-protocol.md §2.1).
    InstanceKey,
    /// No signature: only `RegisterManagedInstance`, whose activation code is the secret.
    Anonymous,
}

impl Route {
    fn service(&self) -> &'static ServiceMeta {
        match self {
            Route::Ssm(_) => &corral_api::ssm::SERVICE,
            Route::Sts(..) => &corral_api::sts::SERVICE,
            Route::Iam(..) => &corral_api::iam::SERVICE,
        }
    }

    fn operation_name(&self) -> &'static str {
        match self {
            Route::Ssm(op) => op.name(),
            Route::Sts(op, _) => op.name(),
            Route::Iam(op, _) => op.name(),
        }
    }

    fn auth_mode(&self) -> AuthMode {
        match self {
            Route::Ssm(op) => services::ssm::auth_mode(*op),
            Route::Sts(..) | Route::Iam(..) => AuthMode::SigV4,
        }
    }
}

/// The JSON services Corral routes by `X-Amz-Target` prefix.
const JSON_SERVICES: &[&ServiceMeta] = &[&corral_api::ssm::SERVICE, &corral_api::cloudtrail::SERVICE];
/// The Query services Corral routes by credential scope and `Version`.
const QUERY_SERVICES: &[&ServiceMeta] = &[&corral_api::sts::SERVICE, &corral_api::iam::SERVICE];

async fn handle_api_request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = crate::ids::new_request_id();
    let received_at = OffsetDateTime::now_utc();
    let (parts, body) = request.into_parts();
    // Until the request is routed, answer in the protocol its headers suggest.
    let mut protocol = if parts.headers.contains_key("x-amz-target") { Protocol::Json } else { Protocol::Query };
    let mut xmlns = corral_api::sts::SERVICE.xml_namespace.unwrap_or_default();

    let outcome: Result<(Protocol, Vec<u8>), WireError> = async {
        if parts.method != http::Method::POST {
            return Err(EdgeError::Unroutable(format!(
                "{} is not supported; AWS API calls are POST requests",
                parts.method
            ))
            .to_wire(protocol));
        }
        let body = read_body(&parts.headers, body, state.config.max_body_bytes)
            .await
            .map_err(|e| e.to_wire(protocol))?;
        let route = route(&parts.headers, &body).map_err(|e| e.to_wire(protocol))?;
        let service = route.service();
        protocol = service.protocol;
        xmlns = service.xml_namespace.unwrap_or_default();

        let path = parts.uri.path();
        let query = parts.uri.query().unwrap_or("");
        let user_agent = parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string);
        let signed = auth::SignedRequest {
            request: RequestToVerify { method: parts.method.as_str(), path, query, headers: &parts.headers, body: &body },
            service: service.signing_name,
            now: received_at,
            max_skew: time::Duration::try_from(state.config.max_clock_skew).unwrap_or(time::Duration::minutes(5)),
        };
        let op_name = route.operation_name();
        let auth_mode = route.auth_mode();
        let (caller, result) = match auth_mode {
            AuthMode::Anonymous => {
                let ctx = AnonymousContext { request_id: request_id.clone(), source_ip: peer.ip(), received_at };
                let result = match route {
                    Route::Ssm(op) => services::ssm::dispatch_anonymous(&state, &ctx, op, &body).await,
                    _ => Err(EdgeError::Internal("anonymous route outside SSM".into()).to_wire(protocol)),
                };
                ("anonymous".to_string(), result)
            }
            AuthMode::InstanceKey => {
                let auth_header = auth::parse_authorization(&parts.headers).map_err(|e| e.to_wire(protocol))?;
                let instance = auth::authenticate_instance(state.store.as_ref(), &auth_header, &signed)
                    .await
                    .map_err(|e| log_edge_error(e, protocol))?;
                let ctx = InstanceContext { request_id: request_id.clone(), instance, received_at };
                let result = match route {
                    Route::Ssm(op) => services::ssm::dispatch_instance(&state, &ctx, op, &body).await,
                    _ => Err(EdgeError::Internal("instance-key route outside SSM".into()).to_wire(protocol)),
                };
                (ctx.instance.instance_id.clone(), result)
            }
            AuthMode::SigV4 => {
                let auth_header = auth::parse_authorization(&parts.headers).map_err(|e| e.to_wire(protocol))?;
                let authenticated = auth::authenticate(state.store.as_ref(), &auth_header, &signed)
                    .await
                    .map_err(|e| log_edge_error(e, protocol))?;
                let ctx = RequestContext {
                    request_id: request_id.clone(),
                    region: authenticated.region,
                    principal: authenticated.principal,
                    source_ip: peer.ip(),
                    user_agent,
                    received_at,
                };
                let query_response = |op: &'static str, inner: Option<String>| {
                    corral_wire::query::response_document(op, xmlns, inner.as_deref(), &ctx.request_id).into_bytes()
                };
                let result = match route {
                    Route::Ssm(op) => services::ssm::dispatch(&state, &ctx, op, &body).await,
                    Route::Sts(op, query) => services::sts::dispatch(&state, &ctx, op, &query.params)
                        .await
                        .map(|inner| query_response(op.name(), inner)),
                    Route::Iam(op, query) => services::iam::dispatch(&state, &ctx, op, &query.params)
                        .await
                        .map(|inner| query_response(op.name(), inner)),
                };
                (ctx.principal.arn.clone(), result)
            }
        };
        match &result {
            Ok(_) => tracing::info!(%request_id, service = service.name, operation = op_name, %caller, "ok"),
            Err(e) => tracing::info!(%request_id, service = service.name, operation = op_name, %caller, code = %e.code, "error"),
        }
        result.map(|body| (protocol, body))
    }
    .await;

    match outcome {
        Ok((protocol, body)) => respond(StatusCode::OK, protocol, &request_id, body),
        Err(err) => {
            let body = match protocol {
                Protocol::Json => corral_wire::json::error_body(&err.code, &err.message),
                Protocol::Query => {
                    let fault = if err.sender_fault { Fault::Sender } else { Fault::Receiver };
                    corral_wire::query::error_document(fault, &err.code, &err.message, &request_id, xmlns).into_bytes()
                }
            };
            let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
            respond(status, protocol, &request_id, body)
        }
    }
}

fn log_edge_error(e: EdgeError, protocol: Protocol) -> WireError {
    match &e {
        EdgeError::Internal(detail) => tracing::error!(%detail, "authentication failed internally"),
        other => tracing::info!(reason = %other, "request refused"),
    }
    e.to_wire(protocol)
}

fn respond(status: StatusCode, protocol: Protocol, request_id: &str, body: Vec<u8>) -> Response {
    let content_type = match protocol {
        Protocol::Json => corral_wire::json::CONTENT_TYPE,
        Protocol::Query => "text/xml",
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// How much of an oversized body is read (and thrown away) before answering, so that a client
/// still sending gets the 413 instead of a broken pipe. Past this the connection is dropped.
const OVERSIZED_DRAIN_LIMIT: u64 = 32 * 1024 * 1024;
/// How long draining an oversized body may take.
const OVERSIZED_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads the body, keeping at most `limit` bytes in memory: an oversized body is refused
/// (after reading and discarding a bounded amount of it).
async fn read_body(headers: &http::HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, EdgeError> {
    use http_body_util::BodyExt;

    let declared =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    let mut too_large = declared.is_some_and(|len| len > limit as u64);
    let mut seen: u64 = 0;
    let drain = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| EdgeError::BodyUnreadable)?;
            let Ok(data) = frame.into_data() else { continue };
            seen += data.len() as u64;
            if !too_large && buf.len() + data.len() > limit {
                too_large = true;
                buf = Vec::new();
            }
            if too_large {
                if seen > OVERSIZED_DRAIN_LIMIT {
                    break;
                }
            } else {
                buf.extend_from_slice(&data);
            }
        }
        Ok::<(), EdgeError>(())
    };
    match tokio::time::timeout(OVERSIZED_DRAIN_TIME, drain).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(if too_large { EdgeError::BodyTooLarge { limit } } else { EdgeError::BodyUnreadable }),
    }
    if too_large {
        return Err(EdgeError::BodyTooLarge { limit });
    }
    Ok(buf)
}

/// Decides which service and operation a request is for.
fn route(headers: &http::HeaderMap, body: &[u8]) -> Result<Route, EdgeError> {
    if let Some(target) = headers.get("x-amz-target") {
        let target =
            target.to_str().map_err(|_| EdgeError::UnknownOperation("X-Amz-Target is not valid ASCII".into()))?;
        let (prefix, op_name) = target
            .rsplit_once('.')
            .ok_or_else(|| EdgeError::UnknownOperation(format!("Unknown operation {target}")))?;
        let service = JSON_SERVICES
            .iter()
            .find(|s| s.target_prefix == Some(prefix))
            .ok_or_else(|| EdgeError::UnknownOperation(format!("Unknown operation {target}")))?;
        if service.name == corral_api::ssm::SERVICE.name {
            if let Some(op) = corral_api::ssm::Operation::from_name(op_name) {
                return Ok(Route::Ssm(op));
            }
        }
        return Err(unknown_operation(service, op_name));
    }

    let query = corral_wire::query::parse_query_body(body).map_err(|e| {
        EdgeError::Unroutable(format!(
            "the request is neither an AWS JSON call (no X-Amz-Target) nor a valid Query call: {e}"
        ))
    })?;
    let version = query.version.clone().unwrap_or_default();
    // The credential scope names the service; fall back to the Version when unsigned, so an
    // unsigned call still gets the right service's error envelope.
    let scope_service = auth::parse_authorization(headers).ok().map(|a| a.scope.service);
    let service = QUERY_SERVICES
        .iter()
        .find(|s| Some(s.signing_name) == scope_service.as_deref())
        .or_else(|| QUERY_SERVICES.iter().find(|s| s.api_version == version))
        .ok_or_else(|| EdgeError::UnknownAction { action: query.action.clone(), version: version.clone() })?;
    if version != service.api_version {
        return Err(EdgeError::UnknownAction { action: query.action.clone(), version });
    }
    if service.name == corral_api::sts::SERVICE.name {
        if let Some(op) = corral_api::sts::Operation::from_name(&query.action) {
            return Ok(Route::Sts(op, query));
        }
    }
    if service.name == corral_api::iam::SERVICE.name {
        if let Some(op) = corral_api::iam::Operation::from_name(&query.action) {
            return Ok(Route::Iam(op, query));
        }
    }
    Err(EdgeError::UnknownAction { action: query.action, version })
}

fn unknown_operation(service: &ServiceMeta, op_name: &str) -> EdgeError {
    if service.model_operations.contains(&op_name) {
        EdgeError::UnknownOperation(format!(
            "{op_name} is an AWS {} operation that Corral does not serve yet",
            service.name
        ))
    } else {
        EdgeError::UnknownOperation(format!("Unknown operation {op_name}"))
    }
}
