//! ec2messages (MDS, `X-Amz-Target: EC2WindowsMessageDeliveryService.<Operation>`): the long
//! poll agents fall back to when they cannot hold the ssmmessages control channel
//! (agent-protocol.md §3.2).
//!
//! `GetMessages` holds the request until a job arrives or about 15 s pass; a delivered job
//! that is not acknowledged is delivered again by the scheduler (its visibility timeout is the
//! scheduler's acknowledgement wait). Acks, replies and failures go to the same scheduler
//! functions as the control channel's, so both transports behave alike. Every call must come
//! from the instance the message belongs to.

use std::time::Duration;

use corral_api::ec2messages::{
    AcknowledgeMessageRequest, AcknowledgeMessageResponse, DeleteMessageRequest, DeleteMessageResponse,
    FailMessageRequest, FailMessageResponse, GetEndpointRequest, GetEndpointResponse, GetMessagesRequest,
    GetMessagesResponse, Message, Operation, SendReplyRequest, SendReplyResponse,
};
use corral_api::{json_codec, InputError};
use corral_wire::mgs::{AgentJobAck, AgentJobReply};
use corral_wire::runcommand;
use sha2::Digest;

use crate::context::RequestContext;
use crate::edge::error::WireError;
use crate::state::AppState;

/// How long `GetMessages` waits for work (the agent's HTTP timeout is 20 s).
pub const LONG_POLL: Duration = Duration::from_secs(15);

/// Every way an ec2messages operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum Ec2MessagesError {
    /// A body that is not valid input.
    #[error("{0}")]
    Validation(String),
    /// A body that is not JSON, or a member of the wrong type.
    #[error("{0}")]
    Serialization(String),
    /// The caller is not the instance the destination or message belongs to.
    #[error("{0}")]
    AuthorizationFailure(String),
    /// A message id that names no message of the caller.
    #[error("{0}")]
    InvalidMessageId(String),
    /// A failure inside Corral; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Ec2MessagesError {
    /// The wire form: 400 with the modelled error's name, 500 for internal errors.
    pub fn to_wire(&self) -> WireError {
        let code = match self {
            Ec2MessagesError::Validation(_) => "ValidationException",
            Ec2MessagesError::Serialization(_) => "SerializationException",
            Ec2MessagesError::AuthorizationFailure(_) => "AuthorizationFailureException",
            Ec2MessagesError::InvalidMessageId(_) => "InvalidMessageIdException",
            Ec2MessagesError::Internal(detail) => {
                tracing::error!(%detail, "internal error in an ec2messages operation");
                return WireError::server("InternalServerException");
            }
        };
        WireError::client(400, code, self.to_string())
    }
}

impl From<InputError> for Ec2MessagesError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Validation(v) => Ec2MessagesError::Validation(v.to_string()),
            InputError::Serialization(m) => Ec2MessagesError::Serialization(m),
        }
    }
}

impl From<corral_store::StoreError> for Ec2MessagesError {
    fn from(e: corral_store::StoreError) -> Self {
        Ec2MessagesError::Internal(e.to_string())
    }
}

/// The instance a caller is: its role session is named after it.
fn caller_instance(ctx: &RequestContext) -> Result<&str, Ec2MessagesError> {
    ctx.principal.managed_instance_id().ok_or_else(|| {
        Ec2MessagesError::AuthorizationFailure(format!(
            "{} is not a managed instance; only instances read their messages.",
            ctx.principal.arn
        ))
    })
}

/// The instance a message id addresses, which must be the caller.
fn own_message<'a>(ctx: &RequestContext, message_id: &'a str) -> Result<&'a str, Ec2MessagesError> {
    let me = caller_instance(ctx)?;
    match runcommand::parse_job_id(message_id) {
        Some((_, instance)) if instance == me => Ok(instance),
        _ => Err(Ec2MessagesError::InvalidMessageId(format!("Message {message_id} is not a message of {me}."))),
    }
}

macro_rules! serve {
    ($op:expr, $body:expr, $state:expr, $ctx:expr, $handler:path) => {{
        let input =
            json_codec::decode_input($op.input_shape(), $body).map_err(|e| Ec2MessagesError::from(e).to_wire())?;
        let output = $handler($state, $ctx, input).await.map_err(|e| e.to_wire())?;
        Ok(json_codec::encode_output(&output))
    }};
}

/// Runs an ec2messages operation.
pub async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, WireError> {
    match op {
        Operation::GetMessages => serve!(op, body, state, ctx, get_messages),
        Operation::AcknowledgeMessage => serve!(op, body, state, ctx, acknowledge_message),
        Operation::SendReply => serve!(op, body, state, ctx, send_reply),
        Operation::FailMessage => serve!(op, body, state, ctx, fail_message),
        Operation::DeleteMessage => serve!(op, body, state, ctx, delete_message),
        Operation::GetEndpoint => serve!(op, body, state, ctx, get_endpoint),
    }
}

/// `GetMessages`: the instance's queued jobs, waiting up to [`LONG_POLL`] for one.
pub async fn get_messages(
    state: &AppState,
    ctx: &RequestContext,
    input: GetMessagesRequest,
) -> Result<GetMessagesResponse, Ec2MessagesError> {
    let me = caller_instance(ctx)?;
    if input.destination != me {
        return Err(Ec2MessagesError::AuthorizationFailure(format!(
            "{} may not read the messages of {}.",
            ctx.principal.arn, input.destination
        )));
    }
    // The scheduler delivers only to reachable instances: a poll makes this one reachable.
    state.engine.wake();
    let jobs = state.hub.poll(me, LONG_POLL).await;
    let messages = jobs
        .into_iter()
        .map(|job| {
            let digest = hex::encode(sha2::Sha256::digest(job.content.as_bytes()));
            Message {
                created_date: Some(corral_wire::time::format_iso8601_millis(job.created)),
                destination: Some(me.to_string()),
                message_id: Some(job.job_id),
                payload: Some(job.content),
                payload_digest: Some(digest),
                topic: Some(job.topic),
            }
        })
        .collect();
    Ok(GetMessagesResponse {
        destination: Some(me.to_string()),
        messages: Some(messages),
        messages_request_id: Some(input.messages_request_id),
        next_token: None,
    })
}

/// `AcknowledgeMessage`: the agent accepted the job.
pub async fn acknowledge_message(
    state: &AppState,
    ctx: &RequestContext,
    input: AcknowledgeMessageRequest,
) -> Result<AcknowledgeMessageResponse, Ec2MessagesError> {
    let instance = own_message(ctx, &input.message_id)?;
    let ack = AgentJobAck {
        job_id: input.message_id.clone(),
        acknowledged_message_id: input.message_id.clone(),
        created_date: String::new(),
        status_code: "200".to_string(),
        error_message: "Successful".to_string(),
    };
    state.engine.on_ack(instance, &ack).await?;
    Ok(AcknowledgeMessageResponse::default())
}

/// `SendReply`: a status or result of the job, stored before it is answered.
pub async fn send_reply(
    state: &AppState,
    ctx: &RequestContext,
    input: SendReplyRequest,
) -> Result<SendReplyResponse, Ec2MessagesError> {
    let instance = own_message(ctx, &input.message_id)?;
    let reply = AgentJobReply {
        schema_version: 1,
        job_id: input.message_id.clone(),
        content: input.payload.clone(),
        topic: runcommand::TOPIC_SEND_COMMAND.to_string(),
    };
    state.engine.on_reply(instance, &reply).await?;
    Ok(SendReplyResponse {
        description: Some(String::new()),
        message_id: Some(input.message_id),
        reply_id: Some(input.reply_id),
        reply_status: Some("Acknowledged".to_string()),
    })
}

/// `FailMessage`: the agent cannot handle the job; the invocation fails.
pub async fn fail_message(
    state: &AppState,
    ctx: &RequestContext,
    input: FailMessageRequest,
) -> Result<FailMessageResponse, Ec2MessagesError> {
    let instance = own_message(ctx, &input.message_id)?;
    let ack = AgentJobAck {
        job_id: input.message_id.clone(),
        acknowledged_message_id: input.message_id.clone(),
        created_date: String::new(),
        status_code: "51499".to_string(),
        error_message: input.failure_type.clone(),
    };
    state.engine.on_ack(instance, &ack).await?;
    Ok(FailMessageResponse::default())
}

/// `DeleteMessage`: nothing to delete (jobs are not kept once delivered).
pub async fn delete_message(
    _state: &AppState,
    ctx: &RequestContext,
    input: DeleteMessageRequest,
) -> Result<DeleteMessageResponse, Ec2MessagesError> {
    own_message(ctx, &input.message_id)?;
    Ok(DeleteMessageResponse::default())
}

/// `GetEndpoint`: this endpoint serves the instance (the agent never calls it).
pub async fn get_endpoint(
    _state: &AppState,
    ctx: &RequestContext,
    input: GetEndpointRequest,
) -> Result<GetEndpointResponse, Ec2MessagesError> {
    let me = caller_instance(ctx)?;
    if input.destination != me {
        return Err(Ec2MessagesError::AuthorizationFailure(format!("{me} may only ask about itself.")));
    }
    Ok(GetEndpointResponse { endpoint: Some(String::new()) })
}
