//! The ssmmessages (MGS) wire: the 120-byte-header binary frame both channels carry, and the
//! JSON payloads of the control channel (agent-protocol.md §3.3, §4.1–4.4).
//!
//! One frame type serves both sides (the agent's `AgentMessage` and the plugin's
//! `ClientMessage` are the same layout). Integers are big-endian; the 16-byte message id holds
//! the UUID's low half first; the message type is space-padded to 32 bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `HeaderLength`: the offset of `PayloadLength`, always 116.
pub const HEADER_LENGTH: u32 = 116;
/// Bytes before the payload (the header plus the payload length).
pub const PREFIX_LENGTH: usize = 120;
/// Width of the space-padded message type field.
const MESSAGE_TYPE_LENGTH: usize = 32;

/// Message types on the control channel (agent-protocol.md §4.4).
pub mod message_type {
    /// Service → agent: run (or cancel) a command.
    pub const AGENT_JOB: &str = "agent_job";
    /// Agent → service: the job was received.
    pub const AGENT_JOB_ACK: &str = "agent_job_ack";
    /// Agent → service: a status or result of a job.
    pub const AGENT_JOB_REPLY: &str = "agent_job_reply";
    /// Service → agent: the reply was received.
    pub const AGENT_JOB_REPLY_ACK: &str = "agent_job_reply_ack";
    /// Service → agent or client: the channel is closed.
    pub const CHANNEL_CLOSED: &str = "channel_closed";
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the header or than the lengths it states.
    #[error("frame truncated: {0}")]
    Truncated(&'static str),
    /// A header field breaks the format's rules.
    #[error("invalid frame: {0}")]
    Invalid(&'static str),
}

/// One binary frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// `agent_job`, `output_stream_data`, ... (at most 32 ASCII bytes).
    pub message_type: String,
    /// Always 1 today.
    pub schema_version: u32,
    /// Epoch milliseconds, never 0.
    pub created_date: u64,
    /// Stream sequence number (0 on the control channel).
    pub sequence_number: i64,
    /// Bit 0 SYN, bit 1 FIN.
    pub flags: u64,
    /// The message id as UUID bytes in their usual order.
    pub message_id: [u8; 16],
    /// `PayloadType` (0 when unused).
    pub payload_type: u32,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

impl ClientMessage {
    /// A control-channel frame: schema 1, created now, sequence 0, no flags, a fresh id.
    pub fn new(message_type: &str, payload: Vec<u8>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        let mut message_id = [0u8; 16];
        rand::fill(&mut message_id);
        // RFC 4122 version 4 bits, so the id reads as a random UUID.
        message_id[6] = (message_id[6] & 0x0f) | 0x40;
        message_id[8] = (message_id[8] & 0x3f) | 0x80;
        ClientMessage {
            message_type: message_type.to_string(),
            schema_version: 1,
            created_date: now.max(1),
            sequence_number: 0,
            flags: 0,
            message_id,
            payload_type: 0,
            payload,
        }
    }

    /// The message id as a lower-case hyphenated UUID string.
    pub fn message_id_string(&self) -> String {
        uuid_string(&self.message_id)
    }

    /// The frame's bytes. A message type longer than 32 bytes is cut.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PREFIX_LENGTH + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut kind = [b' '; MESSAGE_TYPE_LENGTH];
        let name = self.message_type.as_bytes();
        let n = name.len().min(MESSAGE_TYPE_LENGTH);
        kind[..n].copy_from_slice(&name[..n]);
        out.extend_from_slice(&kind);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.message_id[8..16]);
        out.extend_from_slice(&self.message_id[0..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_be_bytes());
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses a frame as the agent does: the header must be complete, the message type
    /// non-empty and the creation date non-zero; the digest is not checked (see
    /// [`ClientMessage::digest_matches`]). Bytes after the payload are ignored.
    pub fn decode(buf: &[u8]) -> Result<Self, FrameError> {
        if buf.len() < PREFIX_LENGTH {
            return Err(FrameError::Truncated("shorter than the 120-byte header"));
        }
        let header_length = be_u32(buf, 0) as usize;
        if header_length < HEADER_LENGTH as usize {
            return Err(FrameError::Invalid("header length below 116"));
        }
        let message_type =
            String::from_utf8_lossy(&buf[4..36]).trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string();
        if message_type.is_empty() {
            return Err(FrameError::Invalid("empty message type"));
        }
        let created_date = be_u64(buf, 40);
        if created_date == 0 {
            return Err(FrameError::Invalid("created date is zero"));
        }
        let mut message_id = [0u8; 16];
        message_id[8..16].copy_from_slice(&buf[64..72]);
        message_id[0..8].copy_from_slice(&buf[72..80]);
        // The payload length sits at HeaderLength; the payload follows it.
        let length_at = header_length;
        if buf.len() < length_at + 4 {
            return Err(FrameError::Truncated("payload length beyond the frame"));
        }
        let payload_length = be_u32(buf, length_at) as usize;
        let start = length_at + 4;
        let end = start.checked_add(payload_length).ok_or(FrameError::Invalid("payload length overflows"))?;
        if buf.len() < end {
            return Err(FrameError::Truncated("payload shorter than its stated length"));
        }
        Ok(ClientMessage {
            message_type,
            schema_version: be_u32(buf, 36),
            created_date,
            sequence_number: be_u64(buf, 48) as i64,
            flags: be_u64(buf, 56),
            message_id,
            payload_type: be_u32(buf, 112),
            payload: buf[start..end].to_vec(),
        })
    }

    /// Whether `encoded` (this frame's bytes) carries the right SHA-256 of its payload, as the
    /// session-manager-plugin requires.
    pub fn digest_matches(encoded: &[u8]) -> bool {
        match ClientMessage::decode(encoded) {
            Ok(m) => encoded.get(80..112) == Some(Sha256::digest(&m.payload).as_slice()),
            Err(_) => false,
        }
    }
}

fn be_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_be_bytes(b)
}

fn be_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_be_bytes(b)
}

/// UUID bytes as a lower-case hyphenated string.
pub fn uuid_string(id: &[u8; 16]) -> String {
    let h = hex::encode(id);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

// === control channel JSON ===

/// Body of `POST /v1/control-channel/<instance-id>` (and of the data-channel call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateChannelRequest {
    /// `"1.0"`.
    #[serde(rename = "MessageSchemaVersion")]
    pub message_schema_version: String,
    /// A UUID per call.
    #[serde(rename = "RequestId")]
    pub request_id: String,
    /// Data channel only (always empty from the real agent).
    #[serde(rename = "ClientId", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The 201 XML answer to `CreateControlChannel` / `CreateDataChannel`.
pub fn create_channel_response_xml(root: &str, token: &str) -> String {
    format!(
        "<{root}><MessageSchemaVersion>1.0</MessageSchemaVersion><TokenValue>{}</TokenValue></{root}>",
        crate::query::xml_escape(token)
    )
}

/// The `TokenValue` of a `CreateControlChannel` / `CreateDataChannel` XML answer (any root
/// element), unescaped.
pub fn token_from_response_xml(body: &str) -> Option<String> {
    let start = body.find("<TokenValue>")? + "<TokenValue>".len();
    let end = start + body[start..].find("</TokenValue>")?;
    Some(xml_unescape(&body[start..end]))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The first (text) frame the agent sends on the control channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenControlChannel {
    /// Always null.
    #[serde(rename = "Cookie", default)]
    pub cookie: Option<String>,
    /// `"1.0"`.
    #[serde(rename = "MessageSchemaVersion")]
    pub message_schema_version: String,
    /// A UUID.
    #[serde(rename = "RequestId")]
    pub request_id: String,
    /// The token `CreateControlChannel` returned.
    #[serde(rename = "TokenValue")]
    pub token_value: String,
    /// The agent's version.
    #[serde(rename = "AgentVersion", default)]
    pub agent_version: String,
    /// `linux`, `windows` or `macos`.
    #[serde(rename = "PlatformType", default)]
    pub platform_type: String,
}

/// Payload of `agent_job` (service → agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentJob {
    /// The send-command or cancel payload as a JSON string.
    #[serde(rename = "Content")]
    pub content: String,
    /// `aws.ssm.<CommandId>.<InstanceId>`.
    #[serde(rename = "JobId")]
    pub job_id: String,
    /// `aws.ssm.sendCommand` or `aws.ssm.cancelCommand`.
    #[serde(rename = "Topic")]
    pub topic: String,
    /// 1.
    #[serde(rename = "SchemaVersion")]
    pub schema_version: u32,
}

/// Payload of `agent_job_ack` (agent → service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentJobAck {
    /// The job's id.
    pub job_id: String,
    /// Message id of the `agent_job` frame, as a UUID string.
    pub acknowledged_message_id: String,
    /// That frame's creation date, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    #[serde(default)]
    pub created_date: String,
    /// `"200"` on success; `"51405"` for a duplicate; see agent-protocol.md §3.3.
    pub status_code: String,
    /// The agent's internal name for the code (`Successful`, `DuplicateCommand`).
    #[serde(default)]
    pub error_message: String,
}

/// Payload of `agent_job_reply` (agent → service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentJobReply {
    /// 1.
    pub schema_version: u32,
    /// The job's id.
    pub job_id: String,
    /// The reply payload (agent-protocol.md §3.1) as a JSON string.
    pub content: String,
    /// `aws.ssm.sendCommand` or `aws.ssm.cancelCommand`.
    pub topic: String,
}

/// Payload of `agent_job_reply_ack` (service → agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentJobReplyAck {
    /// The job's id.
    pub job_id: String,
    /// Message id of the `agent_job_reply` frame, as a UUID string.
    pub acknowledged_message_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example frame of agent-protocol.md §4.3, built from its documented fields; the
    /// tests below compare the bytes with the documented dump.
    fn example_bytes() -> Vec<u8> {
        let mut m = ClientMessage::new("input_stream_data", br#"{"cols":80,"rows":24}"#.to_vec());
        m.created_date = 1503434274948;
        m.payload_type = 3;
        m.message_id = parse_uuid("dd01e56b-ff48-483e-a508-b5f073f31b16");
        m.encode()
    }

    fn parse_uuid(s: &str) -> [u8; 16] {
        let bytes = hex::decode(s.replace('-', "")).expect("uuid hex");
        let mut out = [0u8; 16];
        out.copy_from_slice(&bytes);
        out
    }

    #[test]
    fn encodes_the_documented_example() {
        let b = example_bytes();
        assert_eq!(b.len(), 120 + 21);
        assert_eq!(&b[0..4], &[0, 0, 0, 0x74]);
        assert_eq!(&b[4..21], b"input_stream_data");
        assert!(b[21..36].iter().all(|&c| c == b' '));
        assert_eq!(&b[36..40], &[0, 0, 0, 1]);
        assert_eq!(&b[40..48], &[0x00, 0x00, 0x01, 0x5e, 0x0b, 0xaa, 0x78, 0x84]);
        assert_eq!(&b[64..72], &[0xa5, 0x08, 0xb5, 0xf0, 0x73, 0xf3, 0x1b, 0x16]);
        assert_eq!(&b[72..80], &[0xdd, 0x01, 0xe5, 0x6b, 0xff, 0x48, 0x48, 0x3e]);
        assert_eq!(&b[80..84], &[0xd5, 0x3c, 0xa1, 0xea]);
        assert_eq!(&b[112..120], &[0, 0, 0, 3, 0, 0, 0, 0x15]);
        assert!(ClientMessage::digest_matches(&b));
    }

    #[test]
    fn round_trips() {
        let b = example_bytes();
        let m = ClientMessage::decode(&b).expect("decodes");
        assert_eq!(m.message_type, "input_stream_data");
        assert_eq!(m.message_id_string(), "dd01e56b-ff48-483e-a508-b5f073f31b16");
        assert_eq!(m.created_date, 1503434274948);
        assert_eq!(m.payload, br#"{"cols":80,"rows":24}"#);
        assert_eq!(m.encode(), b);
    }

    #[test]
    fn refuses_broken_frames() {
        let b = example_bytes();
        for cut in [0, 50, 119, 120, 140] {
            assert!(ClientMessage::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut zero_date = b.clone();
        zero_date[40..48].fill(0);
        assert_eq!(ClientMessage::decode(&zero_date), Err(FrameError::Invalid("created date is zero")));
        let mut blank = b.clone();
        blank[4..36].fill(b' ');
        assert!(ClientMessage::decode(&blank).is_err());
        let mut huge = b.clone();
        huge[116..120].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(ClientMessage::decode(&huge).is_err());
        let mut short_header = b;
        short_header[0..4].copy_from_slice(&4u32.to_be_bytes());
        assert!(ClientMessage::decode(&short_header).is_err());
    }

    #[test]
    fn token_xml_round_trips() {
        let xml = create_channel_response_xml("CreateControlChannelResponse", "a<b&c");
        assert_eq!(token_from_response_xml(&xml).as_deref(), Some("a<b&c"));
    }
}
