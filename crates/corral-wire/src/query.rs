//! The AWS Query protocol used by IAM, STS and SNS (api-surface.md §1.3): form-encoded request
//! bodies in, XML documents out.

use std::collections::BTreeMap;

use crate::sigv4::hex_value;

/// Name of the operation field.
pub const ACTION_PARAM: &str = "Action";

/// Name of the API version field.
pub const VERSION_PARAM: &str = "Version";

/// A parsed Query request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryRequest {
    /// The `Action` field: the operation name.
    pub action: String,
    /// The `Version` field (`2010-05-08` for IAM, ...), when sent.
    pub version: Option<String>,
    /// Every other field, decoded, by name (`RoleName`, `Tags.member.1.Key`, ...).
    pub params: BTreeMap<String, String>,
}

/// Why a Query body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A name or value is not UTF-8 once percent-decoded.
    #[error("request parameters are not valid UTF-8")]
    InvalidUtf8,
    /// A `%` is not followed by two hex digits.
    #[error("malformed percent-encoding in request parameters")]
    MalformedPercentEncoding,
    /// A pair has an empty name (`=value`).
    #[error("request parameter with an empty name")]
    EmptyParameterName,
    /// A name occurs twice.
    #[error("parameter '{0}' appears more than once")]
    DuplicateParameter(String),
    /// There is no (non-empty) `Action`.
    #[error("Could not find operation to perform: the 'Action' parameter is missing")]
    MissingAction,
}

impl QueryRequest {
    /// The value of a field, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The elements of a list of scalars, `Name.member.1`, `Name.member.2`, ... in index order.
    /// An empty list (sent as `Name=`) and an absent one both give an empty vector.
    pub fn member_list(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}.member.");
        let mut items: Vec<(usize, &str)> = self
            .params_with_prefix(&prefix)
            .into_iter()
            .filter_map(|(rest, value)| Some((rest.parse::<usize>().ok()?, value)))
            .collect();
        items.sort_by_key(|(index, _)| *index);
        items.into_iter().map(|(_, value)| value).collect()
    }

    /// The elements of a list of structures, `Name.member.N.Field`, in index order, each as a
    /// map from field name (which may itself be dotted, for nested members) to value.
    pub fn member_structs(&self, name: &str) -> Vec<BTreeMap<&str, &str>> {
        self.member_structs_with(name, "member")
    }

    /// The entries of a map, `Name.entry.N.key` / `Name.entry.N.value` (SNS `Attributes`), in
    /// index order. An entry without a key is skipped; one without a value gets `""`.
    pub fn map_entries(&self, name: &str) -> Vec<(&str, &str)> {
        self.member_structs_with(name, "entry")
            .into_iter()
            .filter_map(|entry| {
                let key = *entry.get("key")?;
                Some((key, entry.get("value").copied().unwrap_or("")))
            })
            .collect()
    }

    fn member_structs_with(&self, name: &str, word: &str) -> Vec<BTreeMap<&str, &str>> {
        let prefix = format!("{name}.{word}.");
        let mut items: BTreeMap<usize, BTreeMap<&str, &str>> = BTreeMap::new();
        for (rest, value) in self.params_with_prefix(&prefix) {
            if let Some((index, field)) = rest.split_once('.') {
                if let Ok(index) = index.parse::<usize>() {
                    items.entry(index).or_default().insert(field, value);
                }
            }
        }
        items.into_values().collect()
    }

    /// Fields whose name starts with `prefix`, as (rest of the name, value), in name order.
    fn params_with_prefix(&self, prefix: &str) -> Vec<(&str, &str)> {
        // The map is sorted, so the matching names form one run starting at `prefix`.
        self.params
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .map_while(|(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
            .collect()
    }
}

/// Parses an `application/x-www-form-urlencoded` Query body.
///
/// `+` is a space and `%XX` a byte, as in any form; a malformed escape or a name or value that
/// is not UTF-8 after decoding is an error. Empty pairs (`a=1&&b=2`) are skipped; a pair without
/// `=` has an empty value. `Action` is required and, with `Version`, taken out of `params`.
///
/// A field sent twice is an error ([`QueryError::DuplicateParameter`]) rather than "last wins":
/// no AWS client sends a name twice, and refusing avoids the signature layer, a proxy and us
/// disagreeing about which of two values the request meant.
pub fn parse_query_body(body: &[u8]) -> Result<QueryRequest, QueryError> {
    let mut params = BTreeMap::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = form_decode(name)?;
        if name.is_empty() {
            return Err(QueryError::EmptyParameterName);
        }
        let value = form_decode(value)?;
        if params.contains_key(&name) {
            return Err(QueryError::DuplicateParameter(name));
        }
        params.insert(name, value);
    }
    let action = params.remove(ACTION_PARAM).filter(|a| !a.is_empty()).ok_or(QueryError::MissingAction)?;
    let version = params.remove(VERSION_PARAM);
    Ok(QueryRequest { action, version, params })
}

fn form_decode(raw: &[u8]) -> Result<String, QueryError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = raw.get(i + 1).and_then(|b| hex_value(*b));
                let lo = raw.get(i + 2).and_then(|b| hex_value(*b));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(QueryError::MalformedPercentEncoding);
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| QueryError::InvalidUtf8)
}

// === XML out ===

/// Escapes text for XML element content or a quoted attribute value.
///
/// `& < > " '` become entity references, and a carriage return becomes `&#xD;` so XML line-end
/// normalisation does not turn it into a line feed. Characters XML 1.0 cannot carry at all
/// (C0 controls other than tab, line feed and carriage return, and U+FFFE/U+FFFF) are replaced by
/// U+FFFD: XML 1.0 forbids them even as numeric references, so dropping or replacing is the only
/// way to keep the document parseable, and a visible replacement character shows that something
/// was there.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// The XML 1.0 `Char` production, minus tab/LF/CR which the caller handles.
fn is_xml_char(c: char) -> bool {
    matches!(u32::from(c), 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Who is at fault in a Query error: the caller (`Sender`, 4xx) or the service (`Receiver`, 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The request was wrong.
    Sender,
    /// The service failed.
    Receiver,
}

impl Fault {
    /// `Sender` or `Receiver`, as it appears in `<Type>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// A success document:
/// `<?xml ...?><{Op}Response xmlns="..."><{Op}Result>{inner}</{Op}Result><ResponseMetadata><RequestId>..</RequestId></ResponseMetadata></{Op}Response>`.
///
/// `result_inner_xml` is inserted verbatim (the caller builds it, escaping its text with
/// [`xml_escape`]); `None` leaves out the `Result` element, for operations without output.
/// `operation` becomes an element name and must be one of our operation names, never client
/// input. `xmlns` and `request_id` are escaped.
pub fn response_document(operation: &str, xmlns: &str, result_inner_xml: Option<&str>, request_id: &str) -> String {
    let mut out = String::with_capacity(256 + result_inner_xml.map_or(0, str::len));
    out.push_str(XML_DECLARATION);
    out.push_str(&format!(r#"<{operation}Response xmlns="{}">"#, xml_escape(xmlns)));
    if let Some(inner) = result_inner_xml {
        out.push_str(&format!("<{operation}Result>{inner}</{operation}Result>"));
    }
    out.push_str(&format!(
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{operation}Response>",
        xml_escape(request_id)
    ));
    out
}

/// An error document:
/// `<ErrorResponse xmlns=".."><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error><RequestId>..</RequestId></ErrorResponse>`.
/// Every argument is escaped.
pub fn error_document(fault: Fault, code: &str, message: &str, request_id: &str, xmlns: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="{}"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>"#,
        xml_escape(xmlns),
        fault.as_str(),
        xml_escape(code),
        xml_escape(message),
        xml_escape(request_id)
    )
}

#[cfg(test)]
mod tests;
