//! The SigV4 canonical request, built exactly as botocore (and the Go SDK the SSM agent uses)
//! build it for non-S3 services.

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::{RequestToVerify, SigV4Error, CONTENT_SHA256_HEADER};

/// Builds the canonical request for `req` over `signed_headers`:
///
/// ```text
/// METHOD\n
/// canonical URI\n
/// canonical query string\n
/// name:value\n ... (one line per signed header)\n
/// signed;header;list\n
/// payload hash
/// ```
///
/// Header lines follow `signed_headers` in the order given (clients list them sorted); names are
/// lower-cased, each value is trimmed with inner blank runs collapsed to one space, and repeated
/// headers are joined with `,`. A signed header missing from the request is an error. The payload
/// hash is the hex SHA-256 of the body; when `x-amz-content-sha256` is signed its value is used
/// instead, after checking that it is the body's real hash.
pub fn canonical_request(req: &RequestToVerify<'_>, signed_headers: &[String]) -> Result<String, SigV4Error> {
    canonical_request_with_query(req, signed_headers, &canonical_query_string(req.query))
}

/// [`canonical_request`] with a given canonical query string (see [`query_forms`]).
pub fn canonical_request_with_query(
    req: &RequestToVerify<'_>,
    signed_headers: &[String],
    canonical_query: &str,
) -> Result<String, SigV4Error> {
    if signed_headers.is_empty() {
        return Err(SigV4Error::EmptySignedHeaders);
    }
    let mut out = String::with_capacity(512);
    out.push_str(&req.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(canonical_query);
    out.push('\n');

    let mut names = Vec::with_capacity(signed_headers.len());
    for name in signed_headers {
        let name = name.trim().to_ascii_lowercase();
        let value = canonical_header_value(req.headers, &name)?;
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
        names.push(name);
    }
    // The header block ends with its own newline and then the record separator: a blank line.
    out.push('\n');
    out.push_str(&names.join(";"));
    out.push('\n');
    out.push_str(&payload_hash(req, &names)?);
    Ok(out)
}

fn payload_hash(req: &RequestToVerify<'_>, signed: &[String]) -> Result<String, SigV4Error> {
    let computed = hex::encode(Sha256::digest(req.body));
    if !signed.iter().any(|n| n == CONTENT_SHA256_HEADER) {
        // An unsigned x-amz-content-sha256 (the SSM agent adds one after signing) proves nothing,
        // so only the body we actually received counts.
        return Ok(computed);
    }
    let stated = canonical_header_value(req.headers, CONTENT_SHA256_HEADER)?;
    // The client signed its stated hash, so that exact string is what goes into the canonical
    // request. None of our services takes UNSIGNED-PAYLOAD or streaming bodies, so anything but
    // the body's real hash is refused rather than trusted.
    if stated.eq_ignore_ascii_case(&computed) {
        Ok(stated)
    } else {
        Err(SigV4Error::ContentSha256Mismatch)
    }
}

/// All values of header `name`, each trimmed with blank runs collapsed, joined with `,`.
fn canonical_header_value(headers: &HeaderMap, name: &str) -> Result<String, SigV4Error> {
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return Err(SigV4Error::MissingSignedHeader(name.to_string()));
    }
    let mut joined = String::new();
    for (i, value) in values.enumerate() {
        // HTTP allows non-ASCII bytes in values; botocore signs text, so accept UTF-8 only.
        let text =
            std::str::from_utf8(value.as_bytes()).map_err(|_| SigV4Error::InvalidHeaderValue(name.to_string()))?;
        if i > 0 {
            joined.push(',');
        }
        push_collapsed(&mut joined, text);
    }
    Ok(joined)
}

/// Appends `value` with leading/trailing blanks removed and inner blank runs turned into one
/// space. "Blank" is what Python's `str.split()` splits on, since that is how botocore trims:
/// Unicode white space plus the ASCII separators U+001C..U+001F.
fn push_collapsed(out: &mut String, value: &str) {
    let is_blank = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    let mut first = true;
    for word in value.split(is_blank).filter(|w| !w.is_empty()) {
        if !first {
            out.push(' ');
        }
        out.push_str(word);
        first = false;
    }
}

/// The canonical URI of a raw (percent-encoded, as received) request path.
///
/// For every service except S3, AWS clients first remove `.`/`..` segments and empty segments
/// (keeping a trailing `/`), then percent-encode the already-encoded path once more, so
/// `/a%20b` is signed as `/a%2520b`. An empty path is `/`.
pub fn canonical_uri(raw_path: &str) -> String {
    uri_encode(remove_dot_segments(raw_path).as_bytes(), false)
}

/// RFC 3986 dot-segment removal plus collapsing of repeated slashes, as botocore does it.
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical query strings a client may have signed for `raw_query`, the SigV4 form first.
///
/// SigV4 says: decode every name and value, encode them again with only the RFC 3986 unreserved
/// characters left as they are, and sort by name, then value. Clients that were handed a query
/// they did not build sign other forms: botocore sorts the pairs of a URL's query as written
/// (it expects them encoded already) and form-encodes a space in `params` as `+` while signing
/// `%20`, and curl before 8.2 signs the query exactly as sent.
/// Each form is derived from the bytes received, so a signature over any of them still binds
/// the query the server acts on (at most up to the order of its pairs, as the SigV4 form does).
pub fn query_forms(raw_query: &str) -> Vec<String> {
    let mut forms = vec![canonical_query_string(raw_query)];
    let mut raw_sorted: Vec<&str> = raw_query.split('&').filter(|p| !p.is_empty()).collect();
    let name_and_value = |p: &str| -> (String, String) {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        (n.to_string(), v.to_string())
    };
    raw_sorted.sort_by_cached_key(|p| name_and_value(p));
    // Form-encoded clients (botocore preparing `params`) send a space as `+` and sign it as
    // `%20`; the server's own query parser reads `+` as a space too.
    let plus_as_space = canonical_query_string(&raw_query.replace('+', "%20"));
    for form in [raw_query.to_string(), raw_sorted.join("&"), plus_as_space] {
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

/// The canonical query string of a raw query (without `?`).
///
/// Each `name=value` pair is percent-decoded and re-encoded with RFC 3986 rules (so clients that
/// encode differently still agree), a pair without `=` gets an empty value, and pairs are sorted
/// by encoded name, then encoded value. `+` is taken literally (RFC 3986 gives it no meaning)
/// and becomes `%2B`; AWS clients always send a space as `%20`. A `%` not followed by two hex
/// digits is taken literally too.
pub fn canonical_query_string(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (uri_encode(&percent_decode(name), true), uri_encode(&percent_decode(value), true))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw_query.len() + 8);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Decodes `%XX` escapes; anything else, including a malformed escape, is kept as is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|b| hex_value(*b)), bytes.get(i + 2).and_then(|b| hex_value(*b)))
            {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes every byte except RFC 3986 unreserved characters (and `/` unless
/// `encode_slash`), with upper-case hex as SigV4 requires.
fn uri_encode(bytes: &[u8], encode_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (b == b'/' && !encode_slash);
        if keep {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_forms_cover_what_clients_sign() {
        // SigV4's form, then the query as sent (curl < 8.2), then its pairs sorted (botocore
        // given an unencoded URL).
        assert_eq!(
            query_forms("stream=stdout&plugin=aws:runShellScript"),
            [
                "plugin=aws%3ArunShellScript&stream=stdout",
                "stream=stdout&plugin=aws:runShellScript",
                "plugin=aws:runShellScript&stream=stdout",
            ]
        );
        // A query already in SigV4's form has one form only.
        assert_eq!(query_forms("a=1&b=%2F"), ["a=1&b=%2F"]);
        assert_eq!(query_forms(""), [""]);
    }

    fn check_uri(raw: &str, expected: &str) {
        assert_eq!(canonical_uri(raw), expected, "canonical_uri({raw:?})");
    }

    #[test]
    fn uri_normalisation_and_double_encoding() {
        check_uri("", "/");
        check_uri("/", "/");
        check_uri("/aws/", "/aws/");
        check_uri("/v1/control-channel/mi-0123", "/v1/control-channel/mi-0123");
        check_uri("//example//", "/example/");
        check_uri("/./", "/");
        check_uri("/example/..", "/");
        check_uri("/a/b/../c/./d/", "/a/c/d/");
        check_uri("/../..", "/");
        // Already percent-encoded on the wire, encoded once more for the signature.
        check_uri("/a%20b/%E1%88%B4", "/a%2520b/%25E1%2588%25B4");
        // Raw (unencoded) input as the AWS test suite feeds it.
        check_uri("/example space/", "/example%20space/");
        check_uri("/\u{1234}", "/%E1%88%B4");
        check_uri("/-._~AZaz09", "/-._~AZaz09");
        check_uri("/a+b=c", "/a%2Bb%3Dc");
    }

    fn check_query(raw: &str, expected: &str) {
        assert_eq!(canonical_query_string(raw), expected, "query {raw:?}");
    }

    #[test]
    fn query_canonicalisation() {
        check_query("", "");
        check_query("Param2=value2&Param1=value1", "Param1=value1&Param2=value2");
        check_query("Param1=value2&Param1=Value1", "Param1=Value1&Param1=value2");
        check_query("flag", "flag=");
        check_query("a=&b", "a=&b=");
        check_query("a=1&&b=2&", "a=1&b=2");
        check_query("k=a%20b", "k=a%20b");
        check_query("k=a+b", "k=a%2Bb");
        check_query("k=%e1%88%b4", "k=%E1%88%B4");
        check_query("k=%zz%4", "k=%25zz%254");
        check_query("k=a=b", "k=a%3Db");
        check_query("%E1%88%B4=bar", "%E1%88%B4=bar");
        check_query("\u{1234}=bar", "%E1%88%B4=bar");
    }

    #[test]
    fn header_value_trimming() {
        let check = |raw: &str, expected: &str| {
            let mut out = String::new();
            push_collapsed(&mut out, raw);
            assert_eq!(out, expected, "value {raw:?}");
        };
        check("  a   b\t\tc  ", "a b c");
        check("\"a   b   c\"", "\"a b c\"");
        check("", "");
        check("x\u{1f}y", "x y");
        check("\u{a0}x\u{3000}y", "x y");
    }
}
