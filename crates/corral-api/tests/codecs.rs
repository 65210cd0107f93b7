//! Validation messages, the JSON codec and the Query codec.

use corral_api::model::{Member, Protocol, Shape, ShapeKind};
use corral_api::validate::{check_input, validate_input};
use corral_api::{iam, json_codec, query_codec, ssm, sts, InputError};
use corral_wire::time::Timestamp;
use serde_json::json;
use std::collections::BTreeMap;

// === Hand-made shapes for the constraint kinds the generated SSM shapes lack ===

static NAME: Shape = Shape {
    name: "Name",
    kind: ShapeKind::String { min: Some(1), max: Some(8), pattern: Some("[a-z]+"), enum_values: &[] },
    sensitive: false,
    doc_policy_document: false,
};
static STATUS: Shape = Shape {
    name: "Status",
    kind: ShapeKind::String { min: None, max: None, pattern: None, enum_values: &["Enabled", "Disabled"] },
    sensitive: false,
    doc_policy_document: false,
};
static LIMIT: Shape = Shape {
    name: "Limit",
    kind: ShapeKind::Integer { min: Some(1), max: Some(1000) },
    sensitive: false,
    doc_policy_document: false,
};
static SECRET: Shape = Shape {
    name: "Secret",
    kind: ShapeKind::String { min: Some(8), max: None, pattern: None, enum_values: &[] },
    sensitive: true,
    doc_policy_document: false,
};
static FLAG: Shape = Shape { name: "Flag", kind: ShapeKind::Boolean, sensitive: false, doc_policy_document: false };
static WHEN: Shape = Shape { name: "When", kind: ShapeKind::Timestamp, sensitive: false, doc_policy_document: false };
static POLICY: Shape = Shape {
    name: "policyDocumentType",
    kind: ShapeKind::String { min: None, max: None, pattern: None, enum_values: &[] },
    sensitive: false,
    doc_policy_document: true,
};
static NAMES: Shape = Shape {
    name: "Names",
    kind: ShapeKind::List { member: &NAME, member_location_name: None, flattened: false, min: Some(1), max: Some(3) },
    sensitive: false,
    doc_policy_document: false,
};
static TAG: Shape = Shape {
    name: "Tag",
    kind: ShapeKind::Structure {
        members: &[
            Member { name: "Key", wire_name: "Key", shape: &NAME, required: true },
            Member { name: "Value", wire_name: "Value", shape: &NAME, required: false },
        ],
    },
    sensitive: false,
    doc_policy_document: false,
};
static TAGS: Shape = Shape {
    name: "Tags",
    kind: ShapeKind::List { member: &TAG, member_location_name: None, flattened: false, min: None, max: Some(2) },
    sensitive: false,
    doc_policy_document: false,
};
static ATTRIBUTES: Shape = Shape {
    name: "Attributes",
    kind: ShapeKind::Map {
        key: &NAME,
        value: &LIMIT,
        min: None,
        max: Some(2),
        flattened: false,
        key_name: "key",
        value_name: "value",
    },
    sensitive: false,
    doc_policy_document: false,
};
static REQUEST: Shape = Shape {
    name: "Request",
    kind: ShapeKind::Structure {
        members: &[
            Member { name: "Name", wire_name: "Name", shape: &NAME, required: false },
            Member { name: "Status", wire_name: "Status", shape: &STATUS, required: false },
            Member { name: "MaxResults", wire_name: "MaxResults", shape: &LIMIT, required: false },
            Member { name: "Password", wire_name: "Password", shape: &SECRET, required: false },
            Member { name: "Names", wire_name: "Names", shape: &NAMES, required: false },
            Member { name: "Tags", wire_name: "Tags", shape: &TAGS, required: false },
            Member { name: "Attributes", wire_name: "Attributes", shape: &ATTRIBUTES, required: false },
            Member { name: "Enabled", wire_name: "Enabled", shape: &FLAG, required: false },
            Member { name: "Since", wire_name: "Since", shape: &WHEN, required: false },
            Member { name: "PolicyDocument", wire_name: "PolicyDocument", shape: &POLICY, required: false },
        ],
    },
    sensitive: false,
    doc_policy_document: false,
};

/// A Rust type for `REQUEST`, written the way the generator writes them.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
struct Request {
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(rename = "Names", default, skip_serializing_if = "Option::is_none")]
    names: Option<Vec<String>>,
    #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<Tag>>,
    #[serde(rename = "Attributes", default, skip_serializing_if = "Option::is_none")]
    attributes: Option<BTreeMap<String, i32>>,
    #[serde(rename = "Enabled", default, skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(rename = "Since", default, skip_serializing_if = "Option::is_none")]
    since: Option<Timestamp>,
    #[serde(rename = "PolicyDocument", default, skip_serializing_if = "Option::is_none")]
    policy_document: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
struct Tag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

fn message(shape: &'static Shape, value: serde_json::Value) -> String {
    match validate_input(shape, &value) {
        Ok(()) => String::from("ok"),
        Err(e) => e.to_string(),
    }
}

// === Validation ===

#[test]
fn required_member_missing() {
    assert_eq!(
        message(&ssm::shapes::GET_SERVICE_SETTING_REQUEST, json!({})),
        "1 validation error detected: Value null at 'settingId' failed to satisfy constraint: \
         Member must not be null"
    );
    // null counts as absent.
    assert_eq!(
        message(&ssm::shapes::GET_SERVICE_SETTING_REQUEST, json!({"SettingId": null})),
        "1 validation error detected: Value null at 'settingId' failed to satisfy constraint: \
         Member must not be null"
    );
}

#[test]
fn string_lengths_count_characters() {
    let long = "x".repeat(1001);
    assert_eq!(
        message(&ssm::shapes::GET_SERVICE_SETTING_REQUEST, json!({"SettingId": long})),
        format!(
            "1 validation error detected: Value '{long}' at 'settingId' failed to satisfy \
             constraint: Member must have length less than or equal to 1000"
        )
    );
    // 1000 characters of two bytes each are fine: lengths are in Unicode scalar values.
    let wide = "é".repeat(1000);
    assert_eq!(message(&ssm::shapes::GET_SERVICE_SETTING_REQUEST, json!({"SettingId": wide})), "ok");
    // Unknown members are ignored.
    assert_eq!(message(&ssm::shapes::GET_SERVICE_SETTING_REQUEST, json!({"SettingId": "/ssm/x", "Bogus": [1]})), "ok");
}

#[test]
fn several_violations_are_joined() {
    let value = "v".repeat(4097);
    assert_eq!(
        message(&ssm::shapes::UPDATE_SERVICE_SETTING_REQUEST, json!({"SettingId": "", "SettingValue": value})),
        format!(
            "2 validation errors detected: Value '' at 'settingId' failed to satisfy constraint: \
             Member must have length greater than or equal to 1; Value '{value}' at \
             'settingValue' failed to satisfy constraint: Member must have length less than or \
             equal to 4096"
        )
    );
    assert_eq!(
        message(&ssm::shapes::UPDATE_SERVICE_SETTING_REQUEST, json!({})),
        "2 validation errors detected: Value null at 'settingId' failed to satisfy constraint: \
         Member must not be null; Value null at 'settingValue' failed to satisfy constraint: \
         Member must not be null"
    );
}

#[test]
fn enum_range_pattern_and_sensitive() {
    assert_eq!(
        message(&REQUEST, json!({"Status": "On"})),
        "1 validation error detected: Value 'On' at 'status' failed to satisfy constraint: \
         Member must satisfy enum value set: [Enabled, Disabled]"
    );
    assert_eq!(
        message(&REQUEST, json!({"MaxResults": 5000})),
        "1 validation error detected: Value '5000' at 'maxResults' failed to satisfy \
         constraint: Member must have value less than or equal to 1000"
    );
    assert_eq!(
        message(&REQUEST, json!({"MaxResults": 0})),
        "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: \
         Member must have value greater than or equal to 1"
    );
    // Whole-value match: "abc1" contains a match of [a-z]+ but is not one.
    assert_eq!(
        message(&REQUEST, json!({"Name": "abc1"})),
        "1 validation error detected: Value 'abc1' at 'name' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [a-z]+"
    );
    // Two constraints on one value: two violations, maximum length first.
    assert_eq!(
        message(&REQUEST, json!({"Name": "ABCDEFGHIJ"})),
        "2 validation errors detected: Value 'ABCDEFGHIJ' at 'name' failed to satisfy \
         constraint: Member must have length less than or equal to 8; Value 'ABCDEFGHIJ' at \
         'name' failed to satisfy constraint: Member must satisfy regular expression pattern: \
         [a-z]+"
    );
    // Sensitive values are never echoed.
    assert_eq!(
        message(&REQUEST, json!({"Password": "hunter2"})),
        "1 validation error detected: Value at 'password' failed to satisfy constraint: Member \
         must have length greater than or equal to 8"
    );
}

#[test]
fn lists_and_maps() {
    assert_eq!(
        message(&REQUEST, json!({"Names": []})),
        "1 validation error detected: Value '[]' at 'names' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    assert_eq!(
        message(&REQUEST, json!({"Names": ["a", "b", "c", "d"]})),
        "1 validation error detected: Value '[a, b, c, d]' at 'names' failed to satisfy \
         constraint: Member must have length less than or equal to 3"
    );
    assert_eq!(
        message(&REQUEST, json!({"Names": ["ok", "Bad", "alsobad!"]})),
        "1 validation error detected: Value '[ok, Bad, alsobad!]' at 'names' failed to satisfy \
         constraint: Member must satisfy constraint: [Member must satisfy regular expression \
         pattern: [a-z]+]"
    );
    assert_eq!(
        message(&REQUEST, json!({"Tags": [{"Key": "a"}, {"Value": "b"}, {"Key": "X"}]})),
        "3 validation errors detected: Value '[{Key=a}, {Value=b}, {Key=X}]' at 'tags' failed \
         to satisfy constraint: Member must have length less than or equal to 2; Value null at \
         'tags.2.member.key' failed to satisfy constraint: Member must not be null; Value 'X' at \
         'tags.3.member.key' failed to satisfy constraint: Member must satisfy regular \
         expression pattern: [a-z]+"
    );
    assert_eq!(
        message(&REQUEST, json!({"Attributes": {"a": 1, "B": 2000}})),
        "2 validation errors detected: Value '{B=2000, a=1}' at 'attributes' failed to satisfy \
         constraint: Map keys must satisfy constraint: [Member must satisfy regular expression \
         pattern: [a-z]+]; Value '{B=2000, a=1}' at 'attributes' failed to satisfy constraint: \
         Map value must satisfy constraint: [Member must have value less than or equal to 1000]"
    );
}

#[test]
fn wrong_json_types_are_serialization_errors() {
    // validate_input reports constraint violations only.
    assert_eq!(message(&REQUEST, json!({"Name": 5})), "ok");
    let err = check_input(&REQUEST, &json!({"Name": 5, "Status": "On"}));
    assert_eq!(err, Err(InputError::Serialization("Expected a string at 'name', found the number 5".to_owned())));
    let err = check_input(&REQUEST, &json!({"MaxResults": 1.5}));
    assert!(matches!(err, Err(InputError::Serialization(m)) if m.contains("'maxResults'")));
    let err = check_input(&REQUEST, &json!({"Tags": {"Key": "a"}}));
    assert!(matches!(err, Err(InputError::Serialization(m)) if m.contains("a list")));
    let err = check_input(&REQUEST, &json!({"Since": "yesterday"}));
    assert!(matches!(err, Err(InputError::Serialization(m)) if m.contains("timestamp")));
    assert_eq!(check_input(&REQUEST, &json!({"Since": 1700000000.5})), Ok(()));
    assert_eq!(check_input(&REQUEST, &json!({"Since": "2024-01-02T03:04:05Z"})), Ok(()));
}

// === JSON codec ===

#[test]
fn json_decode() {
    let req: ssm::GetServiceSettingRequest = json_codec::decode_input(
        &ssm::shapes::GET_SERVICE_SETTING_REQUEST,
        br#"{"SettingId": "/ssm/managed-instance/activation-tier"}"#,
    )
    .expect("valid request");
    assert_eq!(req.setting_id, "/ssm/managed-instance/activation-tier");

    // An empty body is `{}`.
    let _: sts::GetCallerIdentityRequest =
        json_codec::decode_input(&sts::shapes::GET_CALLER_IDENTITY_REQUEST, b"").expect("empty body");
    let err =
        json_codec::decode_input::<ssm::GetServiceSettingRequest>(&ssm::shapes::GET_SERVICE_SETTING_REQUEST, b"  ")
            .expect_err("SettingId is required");
    assert_eq!(err.aws_code(Protocol::Json), "ValidationException");
    assert!(err.to_string().starts_with("1 validation error detected: Value null"));

    let err = json_codec::decode_input::<ssm::GetServiceSettingRequest>(
        &ssm::shapes::GET_SERVICE_SETTING_REQUEST,
        br#"{"SettingId": "#,
    )
    .expect_err("malformed");
    assert!(matches!(err, InputError::Serialization(_)));
    assert_eq!(err.aws_code(Protocol::Json), "SerializationException");

    let err = json_codec::decode_input::<ssm::GetServiceSettingRequest>(
        &ssm::shapes::GET_SERVICE_SETTING_REQUEST,
        br#"["SettingId"]"#,
    )
    .expect_err("not an object");
    assert!(matches!(err, InputError::Serialization(_)));

    let err = json_codec::decode_input::<ssm::GetServiceSettingRequest>(
        &ssm::shapes::GET_SERVICE_SETTING_REQUEST,
        br#"{"SettingId": {"a": 1}}"#,
    )
    .expect_err("wrong type");
    assert_eq!(err, InputError::Serialization("Expected a string at 'settingId', found an object".into()));
    assert_eq!(err.aws_code(Protocol::Query), "InvalidParameterValue");
}

#[test]
fn json_encode() {
    let out = ssm::GetServiceSettingResult {
        service_setting: Some(ssm::ServiceSetting {
            setting_id: Some("/ssm/managed-instance/activation-tier".into()),
            setting_value: Some("standard".into()),
            last_modified_date: Timestamp::from_epoch_seconds(1487887903.045),
            status: Some("Default".into()),
            ..Default::default()
        }),
    };
    let body = json_codec::encode_output(&out);
    assert_eq!(
        String::from_utf8(body).expect("UTF-8"),
        r#"{"ServiceSetting":{"SettingId":"/ssm/managed-instance/activation-tier","SettingValue":"standard","LastModifiedDate":1487887903.045,"Status":"Default"}}"#
    );
}

// === Query codec ===

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn query_decode_get_session_token() {
    let p = params(&[("Action", "GetSessionToken"), ("Version", "2011-06-15"), ("DurationSeconds", "900")]);
    let req: sts::GetSessionTokenRequest =
        query_codec::decode_input(&sts::shapes::GET_SESSION_TOKEN_REQUEST, &p).expect("valid");
    assert_eq!(req.duration_seconds, Some(900));
    assert_eq!(req.serial_number, None);

    let p = params(&[("DurationSeconds", "60")]);
    let err = query_codec::decode_input::<sts::GetSessionTokenRequest>(&sts::shapes::GET_SESSION_TOKEN_REQUEST, &p)
        .expect_err("too short");
    assert_eq!(err.aws_code(Protocol::Query), "ValidationError");
    assert_eq!(
        err.to_string(),
        "1 validation error detected: Value '60' at 'durationSeconds' failed to satisfy \
         constraint: Member must have value greater than or equal to 900"
    );

    let p = params(&[("DurationSeconds", "soon")]);
    let err = query_codec::decode_input::<sts::GetSessionTokenRequest>(&sts::shapes::GET_SESSION_TOKEN_REQUEST, &p)
        .expect_err("not a number");
    assert_eq!(err.aws_code(Protocol::Query), "InvalidParameterValue");
    assert_eq!(err.to_string(), "Value 'soon' for parameter DurationSeconds is not a valid integer");

    // Larger than an i32: a serialization error, not a panic or a wrap-around.
    let p = params(&[("DurationSeconds", "99999999999")]);
    let err = query_codec::decode_input::<sts::GetSessionTokenRequest>(&sts::shapes::GET_SESSION_TOKEN_REQUEST, &p)
        .expect_err("out of range");
    assert!(matches!(err, InputError::Serialization(_)));
}

#[test]
fn query_decode_lists_maps_and_scalars() {
    let p = params(&[
        ("Action", "Test"),
        ("Names.member.1", "alpha"),
        ("Names.member.2", "beta"),
        ("Names.member.10", "gamma"),
        ("Tags.member.2.Key", "second"),
        ("Tags.member.1.Key", "first"),
        ("Tags.member.1.Value", "one"),
        ("Attributes.entry.1.key", "size"),
        ("Attributes.entry.1.value", "7"),
        ("Attributes.entry.2.key", "rank"),
        ("Attributes.entry.2.value", "9"),
        ("Enabled", "true"),
        ("Since", "2024-01-02T03:04:05Z"),
    ]);
    let req: Request = query_codec::decode_input(&REQUEST, &p).expect("valid");
    assert_eq!(req.names, Some(vec!["alpha".into(), "beta".into(), "gamma".into()]));
    assert_eq!(
        req.tags,
        Some(vec![Tag { key: "first".into(), value: Some("one".into()) }, Tag { key: "second".into(), value: None },])
    );
    let attrs: BTreeMap<String, i32> = [("rank".to_owned(), 9), ("size".to_owned(), 7)].into();
    assert_eq!(req.attributes, Some(attrs));
    assert_eq!(req.enabled, Some(true));
    assert_eq!(req.since.map(|t| t.to_iso8601()), Some("2024-01-02T03:04:05.000Z".to_owned()));

    // An empty value for a list is an empty list; the list minimum then applies.
    let err = query_codec::decode_input::<Request>(&REQUEST, &params(&[("Names", "")])).expect_err("min 1");
    assert_eq!(
        err.to_string(),
        "1 validation error detected: Value '[]' at 'names' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let req: Request = query_codec::decode_input(&REQUEST, &params(&[("Tags", "")])).expect("empty list");
    assert_eq!(req.tags, Some(vec![]));

    // Nested paths in messages.
    let err = query_codec::decode_input::<Request>(&REQUEST, &params(&[("Tags.member.1.Value", "v")]))
        .expect_err("key required");
    assert_eq!(
        err.to_string(),
        "1 validation error detected: Value null at 'tags.1.member.key' failed to satisfy \
         constraint: Member must not be null"
    );

    for bad in [("Enabled", "yes"), ("Since", "last week"), ("Names.member.x", "a"), ("Attributes.entry.1.value", "1")]
    {
        let err = query_codec::decode_input::<Request>(&REQUEST, &params(&[bad])).expect_err("malformed");
        assert!(matches!(err, InputError::Serialization(_)), "{bad:?}: {err}");
    }

    // A generated Query shape with a list of structures.
    let p = params(&[("Tags.member.1.Key", "env"), ("Tags.member.1.Value", "lab")]);
    let value = query_codec::params_to_json(&iam::shapes::USER, &p).expect("decodes");
    assert_eq!(value["Tags"], json!([{"Key": "env", "Value": "lab"}]));
}

#[test]
fn query_encode_get_caller_identity() {
    let out = sts::GetCallerIdentityResponse {
        user_id: Some("AIDAEXAMPLE".into()),
        account: Some("123456789012".into()),
        arn: Some("arn:aws:iam::123456789012:user/alice".into()),
    };
    assert_eq!(
        query_codec::encode_output(&sts::shapes::GET_CALLER_IDENTITY_RESPONSE, &out),
        "<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>\
         <Arn>arn:aws:iam::123456789012:user/alice</Arn>"
    );
}

#[test]
fn query_encode_list_and_timestamp() {
    let out = iam::GetUserResponse {
        user: iam::User {
            path: "/".into(),
            user_name: "alice".into(),
            user_id: "AIDAEXAMPLE".into(),
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            create_date: Timestamp::from_epoch_seconds(1704164645.0).expect("in range"),
            password_last_used: None,
            permissions_boundary: None,
            tags: Some(vec![
                iam::Tag { key: "env".into(), value: "lab & <test>".into() },
                iam::Tag { key: "team".into(), value: "ops".into() },
            ]),
        },
    };
    assert_eq!(
        query_codec::encode_output(&iam::shapes::GET_USER_RESPONSE, &out),
        "<User><Path>/</Path><UserName>alice</UserName><UserId>AIDAEXAMPLE</UserId>\
         <Arn>arn:aws:iam::123456789012:user/alice</Arn>\
         <CreateDate>2024-01-02T03:04:05.000Z</CreateDate>\
         <Tags><member><Key>env</Key><Value>lab &amp; &lt;test&gt;</Value></member>\
         <member><Key>team</Key><Value>ops</Value></member></Tags></User>"
    );

    let out = sts::GetSessionTokenResponse {
        credentials: Some(sts::Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration: Timestamp::from_epoch_seconds(1487887903.045).expect("in range"),
        }),
        ..Default::default()
    };
    assert_eq!(
        query_codec::encode_output(&sts::shapes::GET_SESSION_TOKEN_RESPONSE, &out),
        "<Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId>\
         <SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>\
         <Expiration>2017-02-23T22:11:43.045Z</Expiration></Credentials>"
    );
}

#[test]
fn query_encode_map_bool_and_policy_document() {
    let out = Request {
        names: Some(vec![]),
        attributes: Some([("b".to_owned(), 2), ("a".to_owned(), 1)].into()),
        enabled: Some(false),
        policy_document: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
        ..Default::default()
    };
    assert_eq!(
        query_codec::encode_output(&REQUEST, &out),
        "<Names></Names><Attributes><entry><key>a</key><value>1</value></entry>\
         <entry><key>b</key><value>2</value></entry></Attributes><Enabled>false</Enabled>\
         <PolicyDocument>%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D\
         </PolicyDocument>"
    );
    assert_eq!(query_codec::xml_escape("a\"b'c\r\u{1}"), "a&quot;b&apos;c&#13;\u{FFFD}");
}
