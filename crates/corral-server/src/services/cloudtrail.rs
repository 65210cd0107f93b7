//! AWS CloudTrail (AWS JSON 1.1): `LookupEvents` over the audit trail.

use corral_api::cloudtrail::{Event, LookupEventsRequest, LookupEventsResponse, Operation, Resource};
use corral_api::json_codec;
use corral_api::InputError;
use corral_store::AuditFilter;
use corral_wire::time::Timestamp;
use sha2::Digest;

use crate::context::RequestContext;
use crate::edge::error::WireError;
use crate::services::pagination;
use crate::state::AppState;

/// How far back LookupEvents looks when no start time is given (AWS keeps 90 days).
const DEFAULT_LOOKBACK: time::Duration = time::Duration::days(90);
/// The page size when the caller gives none, and the largest allowed.
const MAX_RESULTS: usize = 50;

/// Every way a CloudTrail operation can fail, each mapped once to its AWS error code.
#[derive(Debug, thiserror::Error)]
pub enum CloudTrailError {
    /// Input that breaks a model constraint.
    #[error("{0}")]
    Validation(String),
    /// A body that is not JSON.
    #[error("{0}")]
    Serialization(String),
    /// More than one lookup attribute, or an unknown key or value.
    #[error("{0}")]
    InvalidLookupAttributes(String),
    /// StartTime after EndTime.
    #[error("{0}")]
    InvalidTimeRange(String),
    /// MaxResults outside 1..50.
    #[error("{0}")]
    InvalidMaxResults(String),
    /// A NextToken not issued for these same parameters.
    #[error("{0}")]
    InvalidNextToken(String),
    /// An event category other than `insight`.
    #[error("{0}")]
    InvalidEventCategory(String),
    /// A failure inside Corral; logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CloudTrailError {
    /// The wire form of this error.
    pub fn to_wire(&self) -> WireError {
        let code = match self {
            CloudTrailError::Validation(_) => "ValidationException",
            CloudTrailError::Serialization(_) => "SerializationException",
            CloudTrailError::InvalidLookupAttributes(_) => "InvalidLookupAttributesException",
            CloudTrailError::InvalidTimeRange(_) => "InvalidTimeRangeException",
            CloudTrailError::InvalidMaxResults(_) => "InvalidMaxResultsException",
            CloudTrailError::InvalidNextToken(_) => "InvalidNextTokenException",
            CloudTrailError::InvalidEventCategory(_) => "InvalidEventCategoryException",
            CloudTrailError::Internal(detail) => {
                tracing::error!(%detail, "internal error in a CloudTrail operation");
                return WireError::server("InternalServerError");
            }
        };
        WireError::client(400, code, self.to_string())
    }
}

impl From<InputError> for CloudTrailError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Validation(v) => CloudTrailError::Validation(v.to_string()),
            InputError::Serialization(m) => CloudTrailError::Serialization(m),
        }
    }
}

impl From<corral_store::StoreError> for CloudTrailError {
    fn from(e: corral_store::StoreError) -> Self {
        CloudTrailError::Internal(e.to_string())
    }
}

/// Runs a CloudTrail operation.
pub async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, WireError> {
    match op {
        Operation::LookupEvents => {
            let input =
                json_codec::decode_input(op.input_shape(), body).map_err(|e| CloudTrailError::from(e).to_wire())?;
            let output = lookup_events(state, ctx, input).await.map_err(|e| e.to_wire())?;
            Ok(json_codec::encode_output(&output))
        }
    }
}

fn filter_from(input: &LookupEventsRequest) -> Result<AuditFilter, CloudTrailError> {
    let attrs = input.lookup_attributes.as_deref().unwrap_or_default();
    let attr = match attrs {
        [] => return Ok(AuditFilter::None),
        [one] => one,
        _ => {
            return Err(CloudTrailError::InvalidLookupAttributes(
                "You can specify at most one lookup attribute.".to_string(),
            ))
        }
    };
    let v = attr.attribute_value.clone();
    Ok(match attr.attribute_key.as_str() {
        "EventId" => AuditFilter::EventId(v),
        "EventName" => AuditFilter::EventName(v),
        "ReadOnly" => match v.as_str() {
            "true" => AuditFilter::ReadOnly(true),
            "false" => AuditFilter::ReadOnly(false),
            _ => {
                return Err(CloudTrailError::InvalidLookupAttributes(
                    "The ReadOnly attribute takes true or false.".to_string(),
                ))
            }
        },
        "Username" => AuditFilter::Username(v),
        "ResourceType" => AuditFilter::ResourceType(v),
        "ResourceName" => AuditFilter::ResourceName(v),
        "EventSource" => AuditFilter::EventSource(v),
        "AccessKeyId" => AuditFilter::AccessKeyId(v),
        other => {
            return Err(CloudTrailError::InvalidLookupAttributes(format!(
                "{other} is not a valid lookup attribute key."
            )))
        }
    })
}

/// A digest of the parameters a NextToken belongs to: AWS requires the same parameters.
fn params_digest(input: &LookupEventsRequest) -> String {
    let mut copy = input.clone();
    copy.next_token = None;
    copy.max_results = None;
    let text = serde_json::to_string(&copy).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// `LookupEvents`: newest first, at most one lookup attribute, inclusive time range.
pub async fn lookup_events(
    state: &AppState,
    ctx: &RequestContext,
    input: LookupEventsRequest,
) -> Result<LookupEventsResponse, CloudTrailError> {
    if let Some(cat) = &input.event_category {
        if cat != "insight" {
            return Err(CloudTrailError::InvalidEventCategory(format!("{cat} is not a valid event category.")));
        }
        // Corral records no Insights events.
        return Ok(LookupEventsResponse { events: Some(Vec::new()), next_token: None });
    }
    let filter = filter_from(&input)?;
    let end = input.end_time.map(|t| t.0).unwrap_or(ctx.received_at);
    let start = input.start_time.map(|t| t.0).unwrap_or(end - DEFAULT_LOOKBACK);
    if start > end {
        return Err(CloudTrailError::InvalidTimeRange("StartTime must be before EndTime.".to_string()));
    }
    let limit = match input.max_results {
        None => MAX_RESULTS,
        Some(n) if (1..=MAX_RESULTS as i32).contains(&n) => n as usize,
        Some(n) => {
            return Err(CloudTrailError::InvalidMaxResults(format!("MaxResults must be from 1 to 50, got {n}.")))
        }
    };
    let digest = params_digest(&input);
    let before = match &input.next_token {
        None => None,
        Some(token) => {
            let bad =
                || CloudTrailError::InvalidNextToken("The NextToken is not valid for these parameters.".to_string());
            let cursor = pagination::decode("events", token).ok_or_else(bad)?;
            let mut parts = cursor.splitn(3, '|');
            let (Some(d), Some(ms), Some(seq)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
            if d != digest {
                return Err(bad());
            }
            let seq: i64 = seq.parse().map_err(|_| bad())?;
            let t = pagination::time_from_cursor(ms).ok_or_else(bad)?;
            Some((t, seq))
        }
    };
    let mut records =
        state.store.lookup_audit(ctx.account_id(), &ctx.region, &filter, start, end, before, limit + 1).await?;
    let more = records.len() > limit;
    records.truncate(limit);
    let next_token = if more {
        records.last().map(|r| {
            let ms = pagination::time_cursor(r.record.event_time);
            pagination::encode("events", &format!("{digest}|{ms}|{}", r.seq))
        })
    } else {
        None
    };
    let events = records
        .into_iter()
        .map(|r| {
            let rec = r.record;
            Event {
                event_id: Some(rec.event_id),
                event_name: Some(rec.event_name),
                read_only: Some(rec.read_only.to_string()),
                access_key_id: rec.access_key_id,
                event_time: Some(Timestamp(rec.event_time)),
                event_source: Some(rec.event_source),
                username: rec.username,
                resources: Some(
                    rec.resources
                        .into_iter()
                        .map(|res| Resource {
                            resource_type: Some(res.resource_type),
                            resource_name: Some(res.resource_name),
                        })
                        .collect(),
                ),
                cloud_trail_event: Some(rec.record_json),
            }
        })
        .collect();
    Ok(LookupEventsResponse { events: Some(events), next_token })
}
