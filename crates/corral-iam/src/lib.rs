//! IAM for Corral: the policy language (parsing, the checks AWS makes on write, compilation)
//! and its evaluation. Pure: no I/O, no wire formats.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod condition;
pub mod eval;
mod pattern;
pub mod policy;
