//! Query body parsing and XML document tests.

use super::*;
use quick_xml::events::Event;
use quick_xml::Reader;

fn parse(body: &str) -> Result<QueryRequest, QueryError> {
    parse_query_body(body.as_bytes())
}

#[test]
fn parses_botocore_create_role() {
    let req = parse(
        "Action=CreateRole&Version=2010-05-08&RoleName=SSMServiceRole&AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-10-17%22%7D&Tags.member.1.Key=a&Tags.member.1.Value=b&Tags.member.2.Key=c&Tags.member.2.Value=",
    )
    .expect("valid");
    assert_eq!(req.action, "CreateRole");
    assert_eq!(req.version.as_deref(), Some("2010-05-08"));
    assert_eq!(req.get("RoleName"), Some("SSMServiceRole"));
    assert_eq!(req.get("AssumeRolePolicyDocument"), Some(r#"{"Version":"2012-10-17"}"#));
    assert_eq!(req.get("Tags.member.1.Key"), Some("a"));
    assert!(!req.params.contains_key("Action"));
    assert!(!req.params.contains_key("Version"));
    let tags = req.member_structs("Tags");
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[0].get("Key"), Some(&"a"));
    assert_eq!(tags[0].get("Value"), Some(&"b"));
    assert_eq!(tags[1].get("Key"), Some(&"c"));
    assert_eq!(tags[1].get("Value"), Some(&""));
}

#[test]
fn empty_values_escapes_and_plus() {
    let req = parse("Action=ListRoles&Param=&Flag&Space=a+b&Pct=a%20b%2Bc%26d%3De&Utf=%E2%9C%93").expect("valid");
    assert_eq!(req.get("Param"), Some(""));
    assert_eq!(req.get("Flag"), Some(""));
    assert_eq!(req.get("Space"), Some("a b"));
    assert_eq!(req.get("Pct"), Some("a b+c&d=e"));
    assert_eq!(req.get("Utf"), Some("\u{2713}"));
    assert_eq!(req.version, None);
}

#[test]
fn lists_in_index_order_and_empty_lists() {
    let req =
        parse("Action=X&Names.member.10=j&Names.member.2=b&Names.member.1=a&Empty=&Other.member.1=z&Names.memberX=q")
            .expect("valid");
    assert_eq!(req.member_list("Names"), ["a", "b", "j"]);
    assert!(req.member_list("Empty").is_empty());
    assert!(req.member_list("Absent").is_empty());
    assert_eq!(req.member_list("Other"), ["z"]);
}

#[test]
fn map_entries() {
    let req = parse(
        "Action=SetTopicAttributes&Attributes.entry.2.key=DisplayName&Attributes.entry.2.value=d&Attributes.entry.1.key=Policy&Attributes.entry.1.value=%7B%7D&Attributes.entry.3.value=orphan",
    )
    .expect("valid");
    assert_eq!(req.map_entries("Attributes"), [("Policy", "{}"), ("DisplayName", "d")]);
}

#[test]
fn skips_empty_pairs() {
    let req = parse("&Action=GetCallerIdentity&&Version=2011-06-15&").expect("valid");
    assert_eq!(req.action, "GetCallerIdentity");
    assert!(req.params.is_empty());
}

#[test]
fn errors() {
    assert_eq!(parse(""), Err(QueryError::MissingAction));
    assert_eq!(parse("Version=2010-05-08"), Err(QueryError::MissingAction));
    assert_eq!(parse("Action=&Version=1"), Err(QueryError::MissingAction));
    assert_eq!(parse("Action=A&RoleName=a&RoleName=b"), Err(QueryError::DuplicateParameter("RoleName".into())));
    assert_eq!(parse("Action=A&Action=B"), Err(QueryError::DuplicateParameter("Action".into())));
    // The duplicate check compares decoded names.
    assert_eq!(parse("Action=A&Role%4Eame=a&RoleName=b"), Err(QueryError::DuplicateParameter("RoleName".into())));
    assert_eq!(parse("Action=A&=x"), Err(QueryError::EmptyParameterName));
    assert_eq!(parse("Action=A&X=%zz"), Err(QueryError::MalformedPercentEncoding));
    assert_eq!(parse("Action=A&X=%4"), Err(QueryError::MalformedPercentEncoding));
    assert_eq!(parse("Action=A&X=%FF"), Err(QueryError::InvalidUtf8));
    assert_eq!(parse_query_body(b"Action=A&X=\xff"), Err(QueryError::InvalidUtf8));
}

// === XML ===

fn check_escape(input: &str, expected: &str) {
    assert_eq!(xml_escape(input), expected, "xml_escape({input:?})");
}

#[test]
fn escapes_hostile_strings() {
    check_escape("plain", "plain");
    check_escape("<script>alert('x')</script>", "&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;");
    check_escape("]]>", "]]&gt;");
    check_escape("a & b \"c\"", "a &amp; b &quot;c&quot;");
    check_escape("&amp;", "&amp;amp;");
    check_escape("tab\tnl\ncr\r", "tab\tnl\ncr&#xD;");
    check_escape("nul\u{0}bell\u{7}esc\u{1b}", "nul\u{FFFD}bell\u{FFFD}esc\u{FFFD}");
    check_escape("\u{FFFE}\u{FFFF}", "\u{FFFD}\u{FFFD}");
    check_escape("emoji \u{1F600} and \u{00E9}", "emoji \u{1F600} and \u{00E9}");
    check_escape("", "");
}

/// Parses `doc` with a real XML parser and returns the unescaped text of every element named
/// `name`, failing the test if the document is not well formed.
fn texts_of(doc: &str, name: &str) -> Vec<String> {
    let mut reader = Reader::from_str(doc);
    let mut inside = false;
    let mut found = Vec::new();
    let mut current = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) if e.name().as_ref() == name => {
                inside = true;
                current.clear();
            }
            Event::End(e) if e.name().as_ref() == name => {
                inside = false;
                found.push(std::mem::take(&mut current));
            }
            Event::Text(t) if inside => {
                current.push_str(&t.xml10_content());
            }
            Event::GeneralRef(r) if inside => {
                if let Some(c) = r.resolve_char_ref().expect("char ref") {
                    current.push(c);
                } else {
                    let name = r.xml10_content();
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name).expect("predefined entity");
                    current.push_str(resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    found
}

#[test]
fn response_document_layout() {
    let doc = response_document(
        "GetCallerIdentity",
        "https://sts.amazonaws.com/doc/2011-06-15/",
        Some("<Arn>arn:aws:iam::123456789012:user/a</Arn>"),
        "4f0c-1",
    );
    assert_eq!(
        doc,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">"#,
            "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/a</Arn></GetCallerIdentityResult>",
            "<ResponseMetadata><RequestId>4f0c-1</RequestId></ResponseMetadata>",
            "</GetCallerIdentityResponse>"
        )
    );
    assert_eq!(texts_of(&doc, "RequestId"), ["4f0c-1"]);

    let empty = response_document("DeleteRole", "https://iam.amazonaws.com/doc/2010-05-08/", None, "r");
    assert_eq!(
        empty,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<DeleteRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">"#,
            "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DeleteRoleResponse>"
        )
    );
    assert!(!empty.contains("DeleteRoleResult"));
    // An empty but present result keeps the wrapper botocore requires.
    let some_empty = response_document("ListRoles", "x", Some(""), "r");
    assert!(some_empty.contains("<ListRolesResult></ListRolesResult>"));
}

#[test]
fn error_document_layout_and_hostile_message_round_trip() {
    let doc = error_document(
        Fault::Sender,
        "NoSuchEntity",
        "The role with name X cannot be found.",
        "8c3e",
        "https://iam.amazonaws.com/doc/2010-05-08/",
    );
    assert_eq!(
        doc,
        concat!(
            r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">"#,
            "<Error><Type>Sender</Type><Code>NoSuchEntity</Code>",
            "<Message>The role with name X cannot be found.</Message></Error>",
            "<RequestId>8c3e</RequestId></ErrorResponse>"
        )
    );

    let hostile = "<script>]]>&amp;\"'\r\n\t\u{1F600}";
    let doc = error_document(Fault::Receiver, "InternalFailure", hostile, "<id>", "x\"y");
    assert_eq!(texts_of(&doc, "Type"), ["Receiver"]);
    assert_eq!(texts_of(&doc, "Message"), [hostile]);
    assert_eq!(texts_of(&doc, "RequestId"), ["<id>"]);

    // Control characters cannot be carried; they come back as U+FFFD and the document parses.
    let doc = error_document(Fault::Sender, "ValidationError", "a\u{0}b\u{1f}c", "r", "x");
    assert_eq!(texts_of(&doc, "Message"), ["a\u{FFFD}b\u{FFFD}c"]);
}

#[test]
fn fault_names() {
    assert_eq!(Fault::Sender.to_string(), "Sender");
    assert_eq!(Fault::Receiver.as_str(), "Receiver");
}
