//! Errors on the wire: one written-out mapping from every typed error to the AWS error code,
//! message and HTTP status its protocol expects.

use corral_api::model::Protocol;

/// An error as it goes on the wire: code, message and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// HTTP status (400 for client faults unless AWS uses another, 500 for server faults).
    pub status: u16,
    /// The AWS error code (`__type` for JSON, `<Code>` for Query).
    pub code: String,
    /// The human-readable message.
    pub message: String,
    /// Whether the caller is at fault (`Sender`) or the server (`Receiver`), for Query errors.
    pub sender_fault: bool,
}

impl WireError {
    /// A client fault.
    pub fn client(status: u16, code: &str, message: impl Into<String>) -> Self {
        WireError { status, code: code.to_string(), message: message.into(), sender_fault: true }
    }

    /// A server fault. The message never carries internal details.
    pub fn server(code: &str) -> Self {
        WireError {
            status: 500,
            code: code.to_string(),
            message: "An internal error occurred. Try again later.".to_string(),
            sender_fault: false,
        }
    }
}

/// Everything that can go wrong before a handler runs: framing, routing and authentication.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The body is larger than the configured limit.
    #[error("request body exceeds the maximum size of {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read from the connection.
    #[error("the request body could not be read")]
    BodyUnreadable,
    /// The message's length is ambiguous (RFC 9112 §6.3): both `Transfer-Encoding` and
    /// `Content-Length`, or `Content-Length` given more than once. Answered and then the
    /// connection is closed, since where the next message starts is unknown.
    #[error("{0}")]
    AmbiguousFraming(&'static str),
    /// An `X-Amz-Target` that names no operation Corral serves.
    #[error("{0}")]
    UnknownOperation(String),
    /// A Query request whose `Action`/`Version` pair names no operation Corral serves.
    #[error("Could not find operation {action} for version {version}")]
    UnknownAction {
        /// The `Action` sent.
        action: String,
        /// The `Version` sent (empty when absent).
        version: String,
    },
    /// A request the router cannot place: no target, no Query action and no usable scope.
    #[error("{0}")]
    Unroutable(String),
    /// No `Authorization` header.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// An `Authorization` header that cannot be parsed, or lacks required parts.
    #[error("{0}")]
    IncompleteSignature(String),
    /// Unknown or inactive access key, or a session token that does not match.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match, or the credential scope names the wrong service.
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    /// The signature's date is outside the allowed clock skew.
    #[error("{0}")]
    SignatureExpired(String),
    /// Temporary credentials past their expiry.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// An instance-key signature names an instance that is not (or no longer) registered.
    #[error("Not existing InstanceId {0}")]
    InstanceNotRegistered(String),
    /// Too many failed attempts from this source or against this activation; try later.
    #[error("{0}")]
    Throttled(String),
    /// A failure inside Corral (logged; not shown to the caller).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The standard message AWS sends with a signature mismatch.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

impl EdgeError {
    /// The wire form of this error for a request of the given protocol.
    pub fn to_wire(&self, protocol: Protocol) -> WireError {
        let json = protocol == Protocol::Json;
        let msg = self.to_string();
        match self {
            EdgeError::BodyTooLarge { .. } => WireError::client(
                413,
                if json { "RequestEntityTooLargeException" } else { "RequestEntityTooLarge" },
                msg,
            ),
            EdgeError::BodyUnreadable | EdgeError::AmbiguousFraming(_) => {
                WireError::client(400, if json { "SerializationException" } else { "MalformedInput" }, msg)
            }
            EdgeError::UnknownOperation(_) => WireError::client(400, "UnknownOperationException", msg),
            EdgeError::UnknownAction { .. } => WireError::client(400, "InvalidAction", msg),
            EdgeError::Unroutable(_) => {
                WireError::client(400, if json { "UnknownOperationException" } else { "InvalidAction" }, msg)
            }
            EdgeError::MissingAuthenticationToken => {
                if json {
                    WireError::client(400, "MissingAuthenticationTokenException", msg)
                } else {
                    WireError::client(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
                }
            }
            EdgeError::IncompleteSignature(_) => {
                WireError::client(400, if json { "IncompleteSignatureException" } else { "IncompleteSignature" }, msg)
            }
            EdgeError::UnrecognizedClient => {
                if json {
                    WireError::client(400, "UnrecognizedClientException", msg)
                } else {
                    WireError::client(403, "InvalidClientTokenId", msg)
                }
            }
            EdgeError::SignatureDoesNotMatch(_) | EdgeError::SignatureExpired(_) => {
                if json {
                    WireError::client(400, "InvalidSignatureException", msg)
                } else {
                    WireError::client(403, "SignatureDoesNotMatch", msg)
                }
            }
            EdgeError::ExpiredToken => {
                if json {
                    WireError::client(400, "ExpiredTokenException", msg)
                } else {
                    WireError::client(403, "ExpiredToken", msg)
                }
            }
            // The real agent recognises this code and hibernates until registered again.
            EdgeError::InstanceNotRegistered(_) => WireError::client(400, "InvalidInstanceId", msg),
            EdgeError::Throttled(_) => {
                WireError::client(400, if json { "ThrottlingException" } else { "Throttling" }, msg)
            }
            EdgeError::Internal(_) => WireError::server(if json { "InternalServerError" } else { "InternalFailure" }),
        }
    }
}
