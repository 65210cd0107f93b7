//! Turning botocore names into Rust identifiers.

/// Rust keywords (strict and reserved) that cannot be used as plain identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
    "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Type names a generated struct must not take: prelude and std types the generated code uses,
/// and the names the generated module itself defines.
const RESERVED_TYPES: &[&str] = &[
    "BTreeMap",
    "Box",
    "Clone",
    "Debug",
    "Default",
    "Deserialize",
    "Err",
    "Member",
    "None",
    "Ok",
    "Operation",
    "Option",
    "PartialEq",
    "Protocol",
    "Result",
    "Self",
    "Serialize",
    "ServiceMeta",
    "Shape",
    "ShapeKind",
    "Some",
    "String",
    "Timestamp",
    "Vec",
];

/// Splits a name into words at case changes, digits-to-letters and separators:
/// `KMSKeyId` → `KMS Key Id`, `valueSet` → `value Set`.
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_ascii_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                words.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `snake_case` field name, with keywords escaped (`r#type`, or `self_` where `r#` is not allowed).
pub fn field_name(member: &str) -> String {
    let mut s = words(member).iter().map(|w| w.to_ascii_lowercase()).collect::<Vec<_>>().join("_");
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if matches!(s.as_str(), "self" | "super" | "crate") {
        s.push('_');
    } else if KEYWORDS.contains(&s.as_str()) {
        s.insert_str(0, "r#");
    }
    s
}

/// `UpperCamelCase` from a botocore shape name; the first letter is upper-cased and separators
/// dropped, the rest of the spelling kept (`policyDocumentType` → `PolicyDocumentType`).
pub fn type_name(shape: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in shape.chars() {
        if !c.is_ascii_alphanumeric() {
            upper = true;
            continue;
        }
        if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    if RESERVED_TYPES.contains(&out.as_str()) || KEYWORDS.contains(&out.as_str()) {
        out.push_str("Shape");
    }
    out
}

/// `SCREAMING_SNAKE_CASE` for a shape's static.
pub fn static_name(shape: &str) -> String {
    let mut s = words(shape).iter().map(|w| w.to_ascii_uppercase()).collect::<Vec<_>>().join("_");
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if s == "SELF" {
        s.push('_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(field_name("SettingId"), "setting_id");
        assert_eq!(field_name("KMSKeyId"), "kms_key_id");
        assert_eq!(field_name("valueSet"), "value_set");
        assert_eq!(field_name("Type"), "r#type");
        assert_eq!(field_name("Self"), "self_");
        assert_eq!(field_name("IPv6Address"), "i_pv6_address");
        assert_eq!(type_name("policyDocumentType"), "PolicyDocumentType");
        assert_eq!(type_name("String"), "StringShape");
        assert_eq!(static_name("GetServiceSettingRequest"), "GET_SERVICE_SETTING_REQUEST");
        assert_eq!(static_name("policyDocumentType"), "POLICY_DOCUMENT_TYPE");
    }
}
