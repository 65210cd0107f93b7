//! Request/response types, operation enums and input validation for the AWS operations Corral
//! serves, generated from botocore's service models.
//!
//! - [`generated`]: one module per service (`ssm`, `sts`, `iam`, `cloudtrail`), written by
//!   `cargo xtask codegen` and checked in. Each has `SERVICE` (wire metadata), `Operation` (the
//!   allow-listed operations), `ERROR_CODES`, the Rust types, and `shapes` (static shape tables).
//! - [`model`]: the hand-written types the shape tables are made of.
//! - [`validate`]: checks a raw JSON request against a shape, with AWS's messages.
//! - [`json_codec`] / [`query_codec`]: request decoding and response encoding for the AWS JSON 1.1
//!   and Query protocols, driven by the shape tables.
//! - [`error`]: [`InputError`], what a request that fails decoding or validation becomes.
#![forbid(unsafe_code)]

pub mod error;
pub mod generated;
pub mod json_codec;
pub mod model;
pub mod patterns;
pub mod query_codec;
pub mod validate;

pub use error::{InputError, ValidationErrors, Violation, ViolationValue};
pub use generated::{cloudtrail, ec2messages, iam, ssm, sts};
