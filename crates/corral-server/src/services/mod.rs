//! The AWS services Corral serves, a module per service and, inside, a module per operation area.
//!
//! A service module owns its typed error enum and the one mapping of it to the wire; handlers are
//! plain `async fn(&AppState, &RequestContext, Input) -> Result<Output, ServiceError>`.

pub mod iam;
pub mod pagination;
pub mod ssm;
pub mod sts;
