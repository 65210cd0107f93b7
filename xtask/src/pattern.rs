//! Translating AWS (Java) regular expressions into the `regex` crate's dialect.
//!
//! AWS checks `pattern` with Java's `String.matches`: the whole value must match, and `\w`, `\d`,
//! `\s` are ASCII-only. In the `regex` crate those classes are Unicode-aware, which would accept
//! names AWS rejects (`[\w+=,.@-]+` would take `é`). So the generator rewrites them to their ASCII
//! sets and anchors the result; the model's text stays in the shape for error messages.

/// The `regex`-crate form of a model pattern: ASCII `\w \d \s` (and negations), anchored.
pub fn to_rust(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    // Depth of character classes; Java and `regex` both allow nested classes.
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let e = chars[i + 1];
                let in_class = depth > 0;
                let replacement = match (e, in_class) {
                    ('w', true) => Some("a-zA-Z0-9_"),
                    ('d', true) => Some("0-9"),
                    ('s', true) => Some(" \\t\\n\\x0B\\f\\r"),
                    ('w', false) => Some("[a-zA-Z0-9_]"),
                    ('W', false) => Some("[^a-zA-Z0-9_]"),
                    ('d', false) => Some("[0-9]"),
                    ('D', false) => Some("[^0-9]"),
                    ('s', false) => Some("[ \\t\\n\\x0B\\f\\r]"),
                    ('S', false) => Some("[^ \\t\\n\\x0B\\f\\r]"),
                    _ => None,
                };
                match replacement {
                    Some(r) => out.push_str(r),
                    None => {
                        out.push(c);
                        out.push(e);
                    }
                }
                i += 2;
                continue;
            }
            '[' => {
                depth += 1;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal, not the end of the class.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            ']' if depth > 0 => {
                depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    format!("^(?:{out})$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_classes() {
        assert_eq!(to_rust(r"[\w+=,.@-]+"), r"^(?:[a-zA-Z0-9_+=,.@-]+)$");
        assert_eq!(to_rust(r"\d{12}"), r"^(?:[0-9]{12})$");
        assert_eq!(to_rust(r"a\\w"), r"^(?:a\\w)$");
        assert_eq!(to_rust(r"[\p{L}\-]"), r"^(?:[\p{L}\-])$");
        let re = regex::Regex::new(&to_rust(r"[\w+=,.@-]+")).expect("compiles");
        assert!(re.is_match("user_name@x"));
        assert!(!re.is_match("usér"));
        assert!(!re.is_match("a b"));
    }
}
