//! The AWS services Corral serves, a module per service and, inside, a module per operation area.
//!
//! A service module owns its typed error enum and the one mapping of it to the wire; handlers are
//! plain `async fn(&AppState, &RequestContext, Input) -> Result<Output, ServiceError>`.

pub mod cloudtrail;
pub mod ec2messages;
pub mod iam;
pub mod pagination;
pub mod ssm;
pub mod sts;

/// What a Query-protocol handler produced: the inner XML of its `<OperationResult>` element
/// (none for operations without output) and the same output as JSON for the audit record.
pub struct QueryOutput {
    /// The inner XML of the result element.
    pub xml: Option<String>,
    /// The output as JSON, wire member names.
    pub json: serde_json::Value,
}
