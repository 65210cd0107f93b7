//! The data the generated shape tables are made of.
//!
//! Each generated service module describes every shape its operations use as a `static`
//! [`Shape`]; shapes refer to each other by reference, so recursive models are plain cycles of
//! statics. Validation ([`crate::validate`]) and the Query codec ([`crate::query_codec`]) walk
//! these tables instead of per-field code.

/// The wire protocol a service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// AWS JSON 1.1: `X-Amz-Target` dispatch, JSON bodies (SSM, CloudTrail).
    Json,
    /// AWS Query: form-encoded `Action=...` requests, XML responses (IAM, STS).
    Query,
}

/// A service's wire metadata, from its model's `metadata`.
#[derive(Debug)]
pub struct ServiceMeta {
    /// botocore's service name (`ssm`).
    pub name: &'static str,
    /// The SigV4 credential-scope service name (`signingName`, else `endpointPrefix`).
    pub signing_name: &'static str,
    /// The wire protocol.
    pub protocol: Protocol,
    /// The `X-Amz-Target` prefix of JSON services (`AmazonSSM`).
    pub target_prefix: Option<&'static str>,
    /// The API version (`2014-11-06`); Query requests carry it as `Version`.
    pub api_version: &'static str,
    /// The XML namespace of Query responses (`https://sts.amazonaws.com/doc/2011-06-15/`).
    pub xml_namespace: Option<&'static str>,
    /// CloudTrail's `eventSource` for the service (`ssm.amazonaws.com`).
    pub event_source: &'static str,
    /// Every operation in AWS's model, sorted, implemented or not: tells "an AWS operation Corral
    /// does not implement" from "no such operation".
    pub model_operations: &'static [&'static str],
}

impl ServiceMeta {
    /// Whether AWS's model has an operation of this name.
    pub fn has_model_operation(&self, name: &str) -> bool {
        self.model_operations.binary_search(&name).is_ok()
    }
}

/// One shape of a service model.
#[derive(Debug)]
pub struct Shape {
    /// The shape's name in the model (`SettingId`).
    pub name: &'static str,
    /// What the shape is, with its constraints.
    pub kind: ShapeKind,
    /// Values of this shape are secrets: never log or echo them.
    pub sensitive: bool,
    /// IAM's `policyDocumentType`: JSON that Query responses carry URL-encoded.
    pub doc_policy_document: bool,
}

/// What a shape is, with the constraints the model gives it.
#[derive(Debug)]
pub enum ShapeKind {
    /// A structure; members in model order.
    Structure {
        /// The members.
        members: &'static [Member],
    },
    /// A list.
    List {
        /// The shape of each item.
        member: &'static Shape,
        /// The item element name in Query/XML when it is not `member`.
        member_location_name: Option<&'static str>,
        /// Query/XML flattened list (items repeat the list's own name).
        flattened: bool,
        /// Fewest items.
        min: Option<i64>,
        /// Most items.
        max: Option<i64>,
    },
    /// A map with string keys.
    Map {
        /// The key shape (a string).
        key: &'static Shape,
        /// The value shape.
        value: &'static Shape,
        /// Fewest entries.
        min: Option<i64>,
        /// Most entries.
        max: Option<i64>,
        /// Query/XML flattened map (no `entry` level).
        flattened: bool,
        /// The key element name in Query/XML (`key` unless the model says otherwise).
        key_name: &'static str,
        /// The value element name in Query/XML (`value` unless the model says otherwise).
        value_name: &'static str,
    },
    /// A string (also enums).
    String {
        /// Shortest length in Unicode scalar values.
        min: Option<i64>,
        /// Longest length in Unicode scalar values.
        max: Option<i64>,
        /// A Java regular expression the whole value must match, as the model writes it.
        pattern: Option<&'static str>,
        /// The allowed values; empty when any value is allowed.
        enum_values: &'static [&'static str],
    },
    /// A 32-bit integer.
    Integer {
        /// Smallest value.
        min: Option<i64>,
        /// Largest value.
        max: Option<i64>,
    },
    /// A 64-bit integer.
    Long {
        /// Smallest value.
        min: Option<i64>,
        /// Largest value.
        max: Option<i64>,
    },
    /// `true` or `false`.
    Boolean,
    /// A floating-point number (`double` and `float` in the model).
    Double,
    /// A point in time: epoch seconds in JSON, ISO-8601 in Query.
    Timestamp,
    /// Binary data, base64 text on the wire.
    Blob,
}

/// A member of a structure.
#[derive(Debug)]
pub struct Member {
    /// The member's name in the model (`SettingId`).
    pub name: &'static str,
    /// The name on the wire: the model's `locationName`, else `name`.
    pub wire_name: &'static str,
    /// The member's shape.
    pub shape: &'static Shape,
    /// The member must be present.
    pub required: bool,
}

impl Shape {
    /// The members of a structure; empty for anything else.
    pub fn members(&self) -> &'static [Member] {
        match self.kind {
            ShapeKind::Structure { members } => members,
            _ => &[],
        }
    }

    /// The member called `name` (model name), if this is a structure that has it.
    pub fn member(&self, name: &str) -> Option<&'static Member> {
        self.members().iter().find(|m| m.name == name)
    }

    /// Whether values of this shape are single values (not structures, lists or maps).
    pub fn is_scalar(&self) -> bool {
        !matches!(self.kind, ShapeKind::Structure { .. } | ShapeKind::List { .. } | ShapeKind::Map { .. })
    }
}

/// The input shape of operations whose model has no input: a structure without members.
pub static EMPTY_STRUCTURE: Shape = Shape {
    name: "EmptyStructure",
    kind: ShapeKind::Structure { members: &[] },
    sensitive: false,
    doc_policy_document: false,
};
