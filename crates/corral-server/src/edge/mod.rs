//! The edge: every AWS API request enters here.
//!
//! One listener serves every service. A request is framed (size limit), routed (by
//! `X-Amz-Target` for JSON services, by the credential scope's service and the form's `Action`
//! and `Version` for Query services), authenticated, handed to its service as a
//! [`RequestContext`], and its result or error is written in the protocol's envelope with a
//! request ID. Handlers never see an unauthenticated request and never write wire errors.

pub mod auth;
pub mod error;
pub mod extension;
pub mod framing;
pub mod health;
pub mod listener;
pub mod mgs;
pub mod rate_limit;
pub mod throttle;

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
use tracing::Instrument;

use crate::context::{AnonymousContext, InstanceContext, RequestContext};
use crate::edge::error::{EdgeError, WireError};
use crate::services;
use crate::state::AppState;
use crate::{audit, authz};

/// The router of the control plane: the agents' ssmmessages channels (`mgs`), Corral's own
/// extensions under `/corral/` (`extension`), and everything else is an AWS API call (the AWS CLI keeps the endpoint's path, so any path is accepted).
pub fn router(state: AppState) -> Router {
    let router = if state.config.metrics_enabled {
        Router::new().route("/metrics", axum::routing::get(metrics))
    } else {
        Router::new()
    };
    router
        .route(
            "/v1/control-channel/{instance_id}",
            axum::routing::post(mgs::create_control_channel).get(mgs::open_control_channel),
        )
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/readyz", axum::routing::get(health::readyz))
        .route(
            "/corral/v1/commands/{command_id}/invocations/{instance_id}/output",
            axum::routing::get(extension::invocation_output),
        )
        .fallback(handle_api_request)
        .layer(axum::middleware::from_fn(framing::refuse_ambiguous_framing))
        .layer(axum::middleware::map_response(with_request_id))
        .with_state(state)
}

/// Every answer carries a request ID, whichever route (or library layer) produced it: the API
/// router sets its own; anything without one gets a fresh one here.
async fn with_request_id(mut response: Response) -> Response {
    if !response.headers().contains_key("x-amzn-requestid") {
        if let Ok(v) = HeaderValue::from_str(&crate::ids::new_request_id()) {
            response.headers_mut().insert("x-amzn-requestid", v);
        }
    }
    response
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics(State(state): State<AppState>) -> Response {
    let open_invocations = match state.store.open_invocation_counts(crate::metrics::OPEN_STATUSES).await {
        Ok(counts) => Some(counts),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not count open invocations");
            None
        }
    };
    let gauges =
        crate::metrics::Gauges { connected_agents: state.hub.len(), open_invocations, pools: state.store.pool_stats() };
    let mut response = Response::new(Body::from(state.metrics.render(&gauges)));
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

/// Where a request goes once routed.
enum Route {
    Ssm(corral_api::ssm::Operation),
    Sts(corral_api::sts::Operation, QueryRequest),
    Iam(corral_api::iam::Operation, QueryRequest),
    CloudTrail(corral_api::cloudtrail::Operation),
    Ec2Messages(corral_api::ec2messages::Operation),
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
            Route::CloudTrail(_) => &corral_api::cloudtrail::SERVICE,
            Route::Ec2Messages(_) => &corral_api::ec2messages::SERVICE,
        }
    }

    fn operation_name(&self) -> &'static str {
        match self {
            Route::Ssm(op) => op.name(),
            Route::Sts(op, _) => op.name(),
            Route::Iam(op, _) => op.name(),
            Route::CloudTrail(op) => op.name(),
            Route::Ec2Messages(op) => op.name(),
        }
    }

    fn input_shape(&self) -> &'static corral_api::model::Shape {
        match self {
            Route::Ssm(op) => op.input_shape(),
            Route::Sts(op, _) => op.input_shape(),
            Route::Iam(op, _) => op.input_shape(),
            Route::CloudTrail(op) => op.input_shape(),
            Route::Ec2Messages(op) => op.input_shape(),
        }
    }

    fn read_only(&self) -> bool {
        match self {
            Route::Ssm(op) => op.read_only(),
            Route::Sts(op, _) => op.read_only(),
            Route::Iam(op, _) => op.read_only(),
            Route::CloudTrail(op) => op.read_only(),
            Route::Ec2Messages(op) => op.read_only(),
        }
    }

    fn auth_mode(&self) -> AuthMode {
        match self {
            Route::Ssm(op) => services::ssm::auth_mode(*op),
            Route::Sts(..) | Route::Iam(..) | Route::CloudTrail(_) | Route::Ec2Messages(_) => AuthMode::SigV4,
        }
    }
}

/// The JSON services Corral routes by `X-Amz-Target` prefix.
const JSON_SERVICES: &[&ServiceMeta] =
    &[&corral_api::ssm::SERVICE, &corral_api::cloudtrail::SERVICE, &corral_api::ec2messages::SERVICE];
/// The Query services Corral routes by credential scope and `Version`.
const QUERY_SERVICES: &[&ServiceMeta] = &[&corral_api::sts::SERVICE, &corral_api::iam::SERVICE];

async fn handle_api_request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = crate::ids::new_request_id();
    let received_at = OffsetDateTime::now_utc();
    let started = std::time::Instant::now();
    // One log line per request, written when its outcome is known: the span carries what
    // routing and authentication learn on the way (service, operation, caller).
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        service = tracing::field::Empty,
        operation = tracing::field::Empty,
        caller = tracing::field::Empty,
    );
    let (parts, body) = request.into_parts();
    let mut labels: (&'static str, &'static str) = ("unknown", "unknown");
    // Until the request is routed, answer in the protocol its headers suggest.
    let mut protocol = protocol_from_headers(&parts.headers);
    let mut xmlns = corral_api::sts::SERVICE.xml_namespace.unwrap_or_default();

    let outcome: Result<(Protocol, Vec<u8>), WireError> = async {
        if parts.method != http::Method::POST {
            return Err(EdgeError::Unroutable(format!(
                "{} is not supported; AWS API calls are POST requests",
                parts.method
            ))
            .to_wire(protocol));
        }
        let limit = if anonymous_target(&parts.headers) {
            state.config.max_anonymous_body_bytes
        } else {
            state.config.max_body_bytes
        };
        let body = read_body(&parts.headers, body, limit).await.map_err(|e| e.to_wire(protocol))?;
        let route = route(&parts.headers, &body).map_err(|e| e.to_wire(protocol))?;
        let service = route.service();
        labels = (service.name, route.operation_name());
        protocol = service.protocol;
        xmlns = service.xml_namespace.unwrap_or_default();
        let call = Call {
            state: &state,
            request_id: &request_id,
            received_at,
            peer,
            headers: &parts.headers,
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            method: parts.method.as_str(),
            body: &body,
            protocol,
            xmlns,
        };
        call.run(route).await.map(|body| (protocol, body))
    }
    .instrument(span.clone())
    .await;
    let took = started.elapsed();
    let duration_ms = took.as_millis() as u64;
    let outcome_label = match &outcome {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    if state.config.metrics_enabled {
        state.metrics.request(labels.0, labels.1, outcome_label, took);
    }
    span.in_scope(|| match &outcome {
        Ok(_) => tracing::info!(status = 200, duration_ms, "ok"),
        Err(e) => tracing::info!(status = e.status, code = %e.code, reason = %e.message, duration_ms, "error"),
    });

    match outcome {
        Ok((protocol, body)) => respond(StatusCode::OK, protocol, &request_id, body),
        Err(err) => respond_error(&err, protocol, &request_id, xmlns),
    }
}

/// An error in the protocol's envelope (`xmlns`: the Query service's namespace).
pub(crate) fn respond_error(err: &WireError, protocol: Protocol, request_id: &str, xmlns: &str) -> Response {
    let body = match protocol {
        Protocol::Json => corral_wire::json::error_body(&err.code, &err.message),
        Protocol::Query => {
            let fault = if err.sender_fault { Fault::Sender } else { Fault::Receiver };
            corral_wire::query::error_document(fault, &err.code, &err.message, request_id, xmlns).into_bytes()
        }
    };
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    respond(status, protocol, request_id, body)
}

/// The protocol a request's headers suggest, before it is routed.
pub(crate) fn protocol_from_headers(headers: &http::HeaderMap) -> Protocol {
    if headers.contains_key("x-amz-target") {
        Protocol::Json
    } else {
        Protocol::Query
    }
}

/// A routed request on its way through authentication, authorisation, its handler and the
/// audit trail.
struct Call<'a> {
    state: &'a AppState,
    request_id: &'a str,
    received_at: OffsetDateTime,
    peer: SocketAddr,
    headers: &'a http::HeaderMap,
    path: &'a str,
    query: &'a str,
    method: &'a str,
    body: &'a [u8],
    protocol: Protocol,
    xmlns: &'static str,
}

impl Call<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn signed(&self, service: &'static str) -> auth::SignedRequest<'_> {
        auth::SignedRequest {
            request: RequestToVerify {
                method: self.method,
                path: self.path,
                query: self.query,
                headers: self.headers,
                body: self.body,
            },
            service,
            now: self.received_at,
            max_skew: time::Duration::try_from(self.state.config.max_clock_skew).unwrap_or(time::Duration::minutes(5)),
        }
    }

    /// The request's input as JSON (wire member names), when it can be read.
    fn input_json(&self, route: &Route) -> Option<serde_json::Value> {
        match route {
            Route::Sts(op, q) => corral_api::query_codec::params_to_json(op.input_shape(), &q.params).ok(),
            Route::Iam(op, q) => corral_api::query_codec::params_to_json(op.input_shape(), &q.params).ok(),
            Route::Ssm(_) | Route::CloudTrail(_) | Route::Ec2Messages(_) => {
                if self.body.iter().all(u8::is_ascii_whitespace) {
                    Some(serde_json::Value::Object(Default::default()))
                } else {
                    serde_json::from_slice(self.body).ok()
                }
            }
        }
    }

    /// The audit event of this call, before its outcome is known.
    fn event(
        &self,
        caller: audit::Caller,
        service: &ServiceMeta,
        route: &Route,
        input: Option<&serde_json::Value>,
    ) -> audit::Event {
        audit::Event {
            caller,
            event_source: service.event_source.to_string(),
            event_name: route.operation_name().to_string(),
            read_only: route.read_only(),
            request_id: self.request_id.to_string(),
            event_time: self.received_at,
            source_ip: self.peer.ip().to_string(),
            user_agent: self.header("user-agent").map(str::to_string),
            host: self.header("host").map(str::to_string),
            // Only what the model describes: members a client added are never stored.
            request: input.map(|v| corral_api::json_codec::modelled_members(route.input_shape(), v)),
            response: None,
            error: None,
        }
    }

    /// Runs a handler with its audit record staged, so the handler's store write commits the
    /// record in the same transaction as the change; then records calls that changed nothing
    /// (reads, refusals, failures) on their own. A call whose record cannot be written is
    /// answered with an internal error: nothing happens unrecorded.
    async fn audited<F>(
        &self,
        event: audit::Event,
        handler: F,
    ) -> Result<(Vec<u8>, Option<serde_json::Value>), WireError>
    where
        F: std::future::Future<Output = Result<(Vec<u8>, Option<serde_json::Value>), WireError>>,
    {
        if !self.state.config.audit_enabled {
            return handler.await;
        }
        let slot = corral_store::AuditSlot::new();
        slot.stage(audit::record(&event));
        let result = corral_store::with_audit_slot(slot.clone(), audit::with_event(event.clone(), handler)).await;
        if slot.written().is_none() {
            let mut event = event;
            match &result {
                Ok((_, response)) => event.response = response.clone(),
                Err(e) => event.error = Some((e.code.clone(), e.message.clone())),
            }
            let writing = std::time::Instant::now();
            let written = self.state.audit_writer.append(audit::record(&event)).await;
            if self.state.config.metrics_enabled {
                self.state.metrics.audit_write(writing.elapsed());
            }
            written.map_err(|e| {
                tracing::error!(error = %e, request_id = %self.request_id, "could not write the audit record");
                EdgeError::Internal(e).to_wire(self.protocol)
            })?;
        }
        result
    }

    async fn run(&self, route: Route) -> Result<Vec<u8>, WireError> {
        let service = route.service();
        let protocol = self.protocol;
        let op_name = route.operation_name();
        let span = tracing::Span::current();
        span.record("service", service.name);
        span.record("operation", op_name);
        let input = self.input_json(&route);
        let parse = |b: &Vec<u8>| serde_json::from_slice::<serde_json::Value>(b).ok();
        let (caller, result) = match route.auth_mode() {
            AuthMode::Anonymous => {
                // The activation named by the request: the record goes to its account and region,
                // and the handler checks the registration against it (read once, here).
                let activation_id = input.as_ref().and_then(|v| v.get("ActivationId")).and_then(|v| v.as_str());
                // Refused before anything is read or recorded: a throttled flood writes nothing.
                let throttle = &self.state.registration_throttle;
                if let Some(reason) = throttle.refused(self.peer.ip(), activation_id) {
                    tracing::debug!(source_ip = %self.peer.ip(), operation = op_name, "throttled");
                    return Err(EdgeError::Throttled(reason).to_wire(protocol));
                }
                let activation = match activation_id {
                    Some(id) => self
                        .state
                        .store
                        .get_activation(id)
                        .await
                        .map_err(|e| EdgeError::Internal(e.to_string()).to_wire(protocol))?,
                    None => None,
                };
                let (account_id, region) = match &activation {
                    Some(a) => (a.account_id.clone(), a.region.clone()),
                    None => (self.state.default_account_id.clone(), self.state.config.region.clone()),
                };
                let ctx = AnonymousContext {
                    request_id: self.request_id.to_string(),
                    source_ip: self.peer.ip(),
                    received_at: self.received_at,
                    activation,
                };
                let event =
                    self.event(audit::Caller::Anonymous { account_id, region }, service, &route, input.as_ref());
                let result = self
                    .audited(event, async {
                        match &route {
                            Route::Ssm(op) => {
                                services::ssm::dispatch_anonymous(self.state, &ctx, *op, self.body).await.map(|b| {
                                    let json = parse(&b);
                                    (b, json)
                                })
                            }
                            _ => Err(EdgeError::Internal("anonymous route outside SSM".into()).to_wire(protocol)),
                        }
                    })
                    .await;
                if result.is_err() && throttle.record_failure(self.peer.ip(), activation_id) {
                    tracing::warn!(source_ip = %self.peer.ip(), activation_id = activation_id.unwrap_or_default(),
                        "too many failed registrations: refusing this source or activation for a minute");
                }
                ("anonymous".to_string(), result)
            }
            AuthMode::InstanceKey => {
                let auth_header = auth::parse_authorization(self.headers).map_err(|e| e.to_wire(protocol))?;
                let accepted = match &route {
                    Route::Ssm(corral_api::ssm::Operation::UpdateManagedInstancePublicKey) => {
                        auth::InstanceKeys::CurrentOnly
                    }
                    _ => auth::InstanceKeys::CurrentOrRecentlyRotated,
                };
                let instance = auth::authenticate_instance(
                    self.state.store.as_ref(),
                    &auth_header,
                    &self.signed(service.signing_name),
                    accepted,
                )
                .await
                .map_err(|e| log_edge_error(e, protocol))?;
                self.admit(rate_limit::Class::Agent, &instance.instance_id)?;
                let ctx = InstanceContext {
                    request_id: self.request_id.to_string(),
                    instance,
                    received_at: self.received_at,
                };
                let inst = &ctx.instance;
                let caller = audit::Caller::Instance {
                    instance_id: inst.instance_id.clone(),
                    account_id: inst.account_id.clone(),
                    region: inst.region.clone(),
                };
                let event = self.event(caller, service, &route, input.as_ref());
                let result = self
                    .audited(event, async {
                        match &route {
                            Route::Ssm(op) => {
                                services::ssm::dispatch_instance(self.state, &ctx, *op, self.body).await.map(|b| {
                                    let json = parse(&b);
                                    (b, json)
                                })
                            }
                            _ => Err(EdgeError::Internal("instance-key route outside SSM".into()).to_wire(protocol)),
                        }
                    })
                    .await;
                (inst.instance_id.clone(), result)
            }
            AuthMode::SigV4 => {
                let auth_header = auth::parse_authorization(self.headers).map_err(|e| e.to_wire(protocol))?;
                let authenticated =
                    auth::authenticate(self.state.store.as_ref(), &auth_header, &self.signed(service.signing_name))
                        .await
                        .map_err(|e| log_edge_error(e, protocol))?;
                let (class, caller) = rate_class(&route, &authenticated.principal);
                self.admit(class, caller)?;
                let ctx = RequestContext {
                    request_id: self.request_id.to_string(),
                    region: authenticated.region,
                    principal: authenticated.principal,
                    source_ip: self.peer.ip(),
                    user_agent: self.header("user-agent").map(str::to_string),
                    received_at: self.received_at,
                };
                let event = self.event(audit::Caller::of(&ctx), service, &route, input.as_ref());
                let result = self
                    .audited(event, self.authorize_and_dispatch(&ctx, route_ref(&route), &route, input.as_ref()))
                    .await;
                (ctx.principal.arn.clone(), result)
            }
        };
        span.record("caller", caller.as_str());
        result.map(|(body, _)| body)
    }

    /// Takes a token from the caller's bucket, or refuses the call as throttled (before it is
    /// authorised or recorded: see `rate_limit`).
    fn admit(&self, class: rate_limit::Class, caller: &str) -> Result<(), WireError> {
        if self.state.rate_limiter.admit(class, caller) {
            return Ok(());
        }
        tracing::debug!(?class, caller, "throttled");
        Err(EdgeError::Throttled("Rate exceeded".into()).to_wire(self.protocol))
    }

    /// Authorises a SigV4 request and runs its handler; returns the response body and, for
    /// successful calls, the output as JSON for the audit record.
    async fn authorize_and_dispatch(
        &self,
        ctx: &RequestContext,
        op: authz::targets::Op,
        route: &Route,
        input: Option<&serde_json::Value>,
    ) -> Result<(Vec<u8>, Option<serde_json::Value>), WireError> {
        let empty = serde_json::Value::Object(Default::default());
        let checks = authz::targets::checks_for(self.state, ctx, op, input.unwrap_or(&empty))
            .await
            .map_err(|e| authz_error(e, self.protocol))?;
        authz::authorize(self.state, ctx, &checks).await.map_err(|e| authz_error(e, self.protocol))?;
        let query_response = |op: &'static str, out: services::QueryOutput| {
            let body =
                corral_wire::query::response_document(op, self.xmlns, out.xml.as_deref(), &ctx.request_id).into_bytes();
            (body, out.json)
        };
        let result = match route {
            Route::Ssm(op) => services::ssm::dispatch(self.state, ctx, *op, self.body).await.map(|b| {
                let json = serde_json::from_slice(&b).ok();
                (b, json.unwrap_or(serde_json::Value::Null))
            }),
            Route::CloudTrail(op) => services::cloudtrail::dispatch(self.state, ctx, *op, self.body)
                .await
                .map(|b| (b, serde_json::Value::Null)),
            Route::Ec2Messages(op) => services::ec2messages::dispatch(self.state, ctx, *op, self.body)
                .await
                .map(|b| (b, serde_json::Value::Null)),
            Route::Sts(op, q) => {
                services::sts::dispatch(self.state, ctx, *op, &q.params).await.map(|o| query_response(op.name(), o))
            }
            Route::Iam(op, q) => {
                services::iam::dispatch(self.state, ctx, *op, &q.params).await.map(|o| query_response(op.name(), o))
            }
        };
        result.map(|(body, json)| (body, Some(json)))
    }
}

/// Which bucket a SigV4 call takes from, and whose: a managed instance's calls (signed with its
/// role token) are agent calls of that instance; the agent's own operations (message delivery,
/// `UpdateInstanceInformation`) are agent calls of whatever key signs them; every other call is
/// a read or a write of its access key.
fn rate_class<'p>(route: &Route, principal: &'p crate::context::Principal) -> (rate_limit::Class, &'p str) {
    if let Some(instance_id) = principal.managed_instance_id() {
        return (rate_limit::Class::Agent, instance_id);
    }
    let agent_route = matches!(route, Route::Ec2Messages(_))
        || matches!(route, Route::Ssm(corral_api::ssm::Operation::UpdateInstanceInformation));
    let class = match (agent_route, route.read_only()) {
        (true, _) => rate_limit::Class::Agent,
        (false, true) => rate_limit::Class::Read,
        (false, false) => rate_limit::Class::Write,
    };
    (class, &principal.access_key_id)
}

/// Authenticates a SigV4 request that arrives outside the AWS API router (the agent's
/// ssmmessages channel, Corral's own `/corral/` API) and makes its [`RequestContext`].
pub async fn authenticate_request(
    state: &AppState,
    peer: SocketAddr,
    parts: &http::request::Parts,
    body: &[u8],
    service: &str,
) -> Result<RequestContext, EdgeError> {
    let now = OffsetDateTime::now_utc();
    let auth_header = auth::parse_authorization(&parts.headers)?;
    let signed = auth::SignedRequest {
        request: RequestToVerify {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
        },
        service,
        now,
        max_skew: time::Duration::try_from(state.config.max_clock_skew).unwrap_or(time::Duration::minutes(5)),
    };
    let authenticated = auth::authenticate(state.store.as_ref(), &auth_header, &signed).await?;
    Ok(RequestContext {
        request_id: crate::ids::new_request_id(),
        region: authenticated.region,
        principal: authenticated.principal,
        source_ip: peer.ip(),
        user_agent: parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
        received_at: now,
    })
}

/// A call outside the AWS API router (the agent's ssmmessages channel, Corral's `/corral/`
/// API), as its audit record describes it.
pub struct SideCall<'a> {
    /// `ssmmessages.amazonaws.com`, `ssm.amazonaws.com`.
    pub event_source: &'a str,
    /// The operation's name.
    pub event_name: &'a str,
    /// Whether it only reads.
    pub read_only: bool,
    /// Its parameters.
    pub request: serde_json::Value,
}

/// Appends the audit record of a [`SideCall`] (a no-op with the trail switched off). A caller
/// that did not authenticate is recorded as anonymous in the deployment's first account.
pub async fn audit_side_call(
    state: &AppState,
    caller: Option<&RequestContext>,
    peer: SocketAddr,
    headers: &http::HeaderMap,
    call: SideCall<'_>,
    error: Option<(&str, &str)>,
) -> Result<(), String> {
    // One log line per request on these routes too, as the API router writes for its calls,
    // with the reason for a refusal (the wire message: never a secret).
    let who = caller.map(|c| c.principal.arn.as_str()).unwrap_or("anonymous");
    let request_id = caller.map(|c| c.request_id.as_str()).unwrap_or("-");
    match error {
        None => {
            tracing::info!(%request_id, service = call.event_source, operation = call.event_name, caller = who, source_ip = %peer.ip(), "ok")
        }
        Some((code, reason)) => {
            tracing::info!(%request_id, service = call.event_source, operation = call.event_name, caller = who, source_ip = %peer.ip(), %code, %reason, "error")
        }
    }
    if !state.config.audit_enabled {
        return Ok(());
    }
    let header = |name: http::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let event = audit::Event {
        caller: match caller {
            Some(ctx) => audit::Caller::of(ctx),
            None => audit::Caller::Anonymous {
                account_id: state.default_account_id.clone(),
                region: state.config.region.clone(),
            },
        },
        event_source: call.event_source.to_string(),
        event_name: call.event_name.to_string(),
        read_only: call.read_only,
        request_id: caller.map(|c| c.request_id.clone()).unwrap_or_else(crate::ids::new_request_id),
        event_time: caller.map(|c| c.received_at).unwrap_or_else(OffsetDateTime::now_utc),
        source_ip: peer.ip().to_string(),
        user_agent: header(http::header::USER_AGENT),
        host: header(http::header::HOST),
        request: Some(call.request),
        response: None,
        error: error.map(|(code, message)| (code.to_string(), message.to_string())),
    };
    state.audit_writer.append(audit::record(&event)).await
}

fn route_ref(route: &Route) -> authz::targets::Op {
    match route {
        Route::Ssm(op) => authz::targets::Op::Ssm(*op),
        Route::Sts(op, _) => authz::targets::Op::Sts(*op),
        Route::Iam(op, _) => authz::targets::Op::Iam(*op),
        Route::CloudTrail(op) => authz::targets::Op::CloudTrail(*op),
        Route::Ec2Messages(op) => authz::targets::Op::Ec2Messages(*op),
    }
}

fn authz_error(e: authz::AuthzError, protocol: Protocol) -> WireError {
    match e {
        authz::AuthzError::Denied { message } => match protocol {
            Protocol::Json => WireError::client(400, "AccessDeniedException", message),
            Protocol::Query => WireError::client(403, "AccessDenied", message),
        },
        authz::AuthzError::Internal(detail) => EdgeError::Internal(detail).to_wire(protocol),
    }
}

/// An authentication failure on the wire; its reason is in the request's log line, and an
/// internal failure's detail (never sent) is logged here.
fn log_edge_error(e: EdgeError, protocol: Protocol) -> WireError {
    if let EdgeError::Internal(detail) = &e {
        tracing::error!(%detail, "authentication failed internally");
    }
    e.to_wire(protocol)
}

pub(crate) fn respond(status: StatusCode, protocol: Protocol, request_id: &str, body: Vec<u8>) -> Response {
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

/// Whether `X-Amz-Target` names a call that needs no signature: its body gets the small limit,
/// read before anything else is known about the caller.
fn anonymous_target(headers: &http::HeaderMap) -> bool {
    let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((prefix, op_name)) = target.rsplit_once('.') else {
        return false;
    };
    corral_api::ssm::SERVICE.target_prefix == Some(prefix)
        && corral_api::ssm::Operation::from_name(op_name)
            .is_some_and(|op| services::ssm::auth_mode(op) == AuthMode::Anonymous)
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
        if service.name == corral_api::cloudtrail::SERVICE.name {
            if let Some(op) = corral_api::cloudtrail::Operation::from_name(op_name) {
                return Ok(Route::CloudTrail(op));
            }
        }
        if service.name == corral_api::ec2messages::SERVICE.name {
            if let Some(op) = corral_api::ec2messages::Operation::from_name(op_name) {
                return Ok(Route::Ec2Messages(op));
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
