//! IAM for Corral: the policy language (parsing and validation today; evaluation arrives with
//! the access-control issue) and ARNs. No I/O, no wire formats.
#![forbid(unsafe_code)]

pub mod policy;
