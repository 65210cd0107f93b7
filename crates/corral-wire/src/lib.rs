//! AWS wire formats for Corral, with no I/O.
//!
//! Everything that knows how bytes look on the wire between a client (AWS CLI, boto3, the SDKs,
//! `corral-agent`) and the control plane lives here: SigV4 signing and verification (HMAC and the
//! RSA-PSS variant the SSM agent uses), the AWS JSON 1.1 and Query envelopes and their errors, and the
//! time formats AWS uses. Nothing here touches sockets, files or the database.
//!
//! Modules:
//! - [`sigv4`]: the canonical request, string to sign and signatures, both as a verifier (server)
//!   and as a signer (agent, load tool, tests), plus the request-time window.
//! - [`keys`]: the RSA key encodings the agent registers and stores.
//! - [`json`]: the AWS JSON 1.1 envelope (content type, error bodies).
//! - [`query`]: the AWS Query protocol (form bodies in, XML documents out).
//! - [`time`]: timestamp formats.
//! - [`mgs`]: the ssmmessages binary frame and control-channel payloads.
//! - [`runcommand`]: Run Command payloads, replies and job ids.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod json;
pub mod keys;
pub mod mgs;
pub mod query;
pub mod runcommand;
pub mod sigv4;
pub mod time;
