//! Corral's own additions to the AWS API, on paths AWS does not use (under `/corral/`), signed
//! with SigV4 like any call (service `ssm`), authorised by IAM and recorded in the trail.
//!
//! `GET /corral/v1/commands/<command-id>/invocations/<instance-id>/output?stream=stdout|stderr[&plugin=<name>]`
//! returns an invocation's complete standard output or error as `text/plain` (the
//! `GetCommandInvocation` API cuts them at 24,000 and 8,000 characters, as AWS does). It needs
//! `ssm:GetCommandInvocation`. `curl --aws-sigv4 "aws:amz:<region>:ssm" --user KEY:SECRET` can
//! call it.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode};

use crate::authz;
use crate::state::AppState;

fn error(status: StatusCode, request_id: &str, code: &str, message: &str) -> Response {
    let body = corral_wire::json::error_body(code, message);
    crate::edge::respond(status, corral_api::model::Protocol::Json, request_id, body)
}

/// `GET /corral/v1/commands/{command_id}/invocations/{instance_id}/output`.
pub async fn invocation_output(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((command_id, instance_id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let ctx = match crate::edge::authenticate_request(&state, peer, &parts, b"", "ssm").await {
        Ok(ctx) => ctx,
        Err(e) => {
            // Refusals land in the trail too, as every request does.
            let w = e.to_wire(corral_api::model::Protocol::Json);
            let call = crate::edge::SideCall {
                event_source: "ssm.amazonaws.com",
                event_name: "GetCommandInvocationOutput",
                read_only: true,
                request: serde_json::json!({"CommandId": command_id, "InstanceId": instance_id}),
            };
            let failure = Some((w.code.as_str(), w.message.as_str()));
            if crate::edge::audit_side_call(&state, None, peer, &parts.headers, call, failure).await.is_err() {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &crate::ids::new_request_id(),
                    "InternalServerError",
                    "Internal error",
                );
            }
            return error(StatusCode::FORBIDDEN, &crate::ids::new_request_id(), &w.code, &w.message);
        }
    };
    let query: Vec<(String, String)> = serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let stream = param("stream").unwrap_or_else(|| "stdout".to_string());
    let plugin = param("plugin");

    let outcome = async {
        authz::authorize(&state, &ctx, &[authz::Check::new("ssm:GetCommandInvocation", "*")]).await.map_err(
            |e| match e {
                authz::AuthzError::Denied { message } => (StatusCode::BAD_REQUEST, "AccessDeniedException", message),
                authz::AuthzError::Internal(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal error".to_string())
                }
            },
        )?;
        if stream != "stdout" && stream != "stderr" {
            return Err((
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "stream must be stdout or stderr".to_string(),
            ));
        }
        let internal = |_| (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal error".to_string());
        let inv = state
            .store
            .get_invocation(ctx.account_id(), &ctx.region, &command_id, &instance_id)
            .await
            .map_err(internal)?
            .ok_or((StatusCode::BAD_REQUEST, "InvocationDoesNotExist", String::new()))?;
        let found = match &plugin {
            Some(name) => inv.plugins.iter().find(|p| &p.name == name).ok_or((
                StatusCode::BAD_REQUEST,
                "InvalidPluginName",
                format!("Plugin name {name} is not valid."),
            ))?,
            None => match inv.plugins.first() {
                Some(p) => p,
                None => return Ok(String::new()),
            },
        };
        Ok(if stream == "stdout" { found.stdout.clone() } else { found.stderr.clone() })
    }
    .await;

    let call = crate::edge::SideCall {
        event_source: "ssm.amazonaws.com",
        event_name: "GetCommandInvocationOutput",
        read_only: true,
        request: serde_json::json!({"CommandId": command_id, "InstanceId": instance_id, "Stream": stream, "PluginName": plugin}),
    };
    let failure = outcome.as_ref().err().map(|(_, code, message)| (*code, message.as_str()));
    if crate::edge::audit_side_call(&state, Some(&ctx), peer, &parts.headers, call, failure).await.is_err() {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &ctx.request_id, "InternalServerError", "Internal error");
    }
    match outcome {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
                response.headers_mut().insert("x-amzn-requestid", v);
            }
            response
        }
        Err((status, code, message)) => error(status, &ctx.request_id, code, &message),
    }
}
