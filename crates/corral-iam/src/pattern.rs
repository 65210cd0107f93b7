//! Wildcard patterns and policy-variable templates, compiled once when a policy is parsed so
//! evaluation only walks bytes.
//!
//! IAM has three flavours of matching: actions (case-insensitive, `*`/`?`), resource ARNs
//! (case-sensitive; a `*` that ends an ARN segment may run across `:`, one inside a segment may
//! not) and condition values (case-sensitive; `StringLike` and the ARN operators glob, the
//! equality operators do not). Policy variables (`${aws:username}`) may appear in resources and
//! condition values of 2012-10-17 policies; what they resolve to is always literal text, so a
//! `*` in a tag value never acts as a wildcard.

use std::borrow::Cow;

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A literal byte of a literal character's UTF-8 encoding (lower-cased when folding case).
    Byte(u8),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters. `cross: false` keeps it inside one ARN segment.
    Star {
        /// May the star consume `:`?
        cross: bool,
    },
}

/// How a pattern's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (otherwise literal characters).
    pub wildcards: bool,
    /// Compare ASCII letters case-insensitively (actions).
    pub fold_case: bool,
    /// Resource ARN rules: a star that does not end a segment cannot cross `:`.
    pub arn_segments: bool,
}

impl Syntax {
    /// Action patterns.
    pub const ACTION: Syntax = Syntax { wildcards: true, fold_case: true, arn_segments: false };
    /// `Resource` / `NotResource` patterns.
    pub const RESOURCE: Syntax = Syntax { wildcards: true, fold_case: false, arn_segments: true };
    /// `StringLike` and the ARN condition operators.
    pub const GLOB: Syntax = Syntax { wildcards: true, fold_case: false, arn_segments: false };
}

/// Looks up the value of a policy variable by its lower-cased key; `None` when it cannot be
/// resolved (missing, or multi-valued).
pub(crate) trait Variables {
    /// The single value of the context key `key_lower`.
    fn variable(&self, key_lower: &str) -> Option<&str>;
}

/// A piece of a template: text as written, an escaped character, or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text as written (wildcards keep their meaning).
    Text(String),
    /// `${*}`, `${?}`, `${$}`: the literal character.
    Char(char),
    /// `${key}` or `${key, 'default'}`; `key` is lower-cased (context keys are case-insensitive).
    Var { key: String, default: Option<String> },
}

/// Splits text into template parts. A `${...}` that is not a well-formed variable stays text.
pub(crate) fn parse_template(s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            text.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match parse_variable(&after[..end]) {
            Some(part) => {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part);
            }
            None => text.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    parts
}

fn parse_variable(inner: &str) -> Option<Part> {
    let inner = inner.trim();
    match inner {
        "*" => return Some(Part::Char('*')),
        "?" => return Some(Part::Char('?')),
        "$" => return Some(Part::Char('$')),
        _ => {}
    }
    let (key, default) = match inner.split_once(',') {
        None => (inner, None),
        Some((key, default)) => {
            // AWS's default-value form: `${key, 'text'}`, with '' for a quote inside the text.
            let quoted = default.trim().strip_prefix('\'')?.strip_suffix('\'')?;
            (key.trim(), Some(quoted.replace("''", "'")))
        }
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return None;
    }
    Some(Part::Var { key: key.to_lowercase(), default })
}

fn resolve_var<'a>(key: &str, default: &'a Option<String>, vars: &'a dyn Variables) -> Option<&'a str> {
    vars.variable(key).or(default.as_deref())
}

fn push_text(out: &mut Vec<Tok>, text: &str, syntax: Syntax) {
    for c in text.chars() {
        match c {
            '*' if syntax.wildcards => out.push(Tok::Star { cross: true }),
            '?' if syntax.wildcards => out.push(Tok::One),
            _ => push_literal_char(out, c, syntax.fold_case),
        }
    }
}

fn push_literal_char(out: &mut Vec<Tok>, c: char, fold_case: bool) {
    let c = if fold_case { c.to_ascii_lowercase() } else { c };
    let mut buf = [0u8; 4];
    out.extend(c.encode_utf8(&mut buf).bytes().map(Tok::Byte));
}

fn push_literal(out: &mut Vec<Tok>, text: &str, fold_case: bool) {
    for c in text.chars() {
        push_literal_char(out, c, fold_case);
    }
}

/// Marks the stars that may not cross `:` (those not ending a segment); says whether any does.
fn mark_segments(toks: &mut [Tok]) -> bool {
    let mut restricted = false;
    for i in 0..toks.len() {
        if let Tok::Star { .. } = toks[i] {
            let cross = matches!(toks.get(i + 1), None | Some(Tok::Byte(b':')));
            restricted |= !cross;
            toks[i] = Tok::Star { cross };
        }
    }
    restricted
}

/// A glob pattern, possibly with policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// No variables: compiled once.
    Static {
        /// The tokens.
        toks: Vec<Tok>,
        /// Some star may not cross `:` (needs the slower matcher).
        restricted: bool,
    },
    /// Variables: resolved per request.
    Dynamic {
        /// The template.
        parts: Vec<Part>,
        /// How its text reads.
        syntax: Syntax,
    },
}

/// Per-evaluation scratch space, so patterns with variables reuse one buffer.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    toks: Vec<Tok>,
}

impl Pattern {
    /// Compiles `s`; `variables` enables `${...}` (policies of Version 2012-10-17).
    pub(crate) fn compile(s: &str, syntax: Syntax, variables: bool) -> Pattern {
        if variables && s.contains("${") {
            let parts = parse_template(s);
            if parts.iter().any(|p| !matches!(p, Part::Text(_))) {
                return Pattern::Dynamic { parts, syntax };
            }
        }
        let mut toks = Vec::with_capacity(s.len());
        push_text(&mut toks, s, syntax);
        let restricted = syntax.arn_segments && mark_segments(&mut toks);
        Pattern::Static { toks, restricted }
    }

    /// Is this the pattern `*` alone?
    pub(crate) fn is_match_all(&self) -> bool {
        matches!(self, Pattern::Static { toks, .. } if toks.as_slice() == [Tok::Star { cross: true }])
    }

    /// The tokens with variables resolved, or `None` when a variable cannot be resolved.
    fn tokens<'a>(&'a self, vars: &dyn Variables, scratch: &'a mut Scratch) -> Option<(&'a [Tok], bool)> {
        match self {
            Pattern::Static { toks, restricted } => Some((toks, *restricted)),
            Pattern::Dynamic { parts, syntax } => {
                let buf = &mut scratch.toks;
                buf.clear();
                for part in parts {
                    match part {
                        Part::Text(t) => push_text(buf, t, *syntax),
                        Part::Char(c) => push_literal_char(buf, *c, syntax.fold_case),
                        Part::Var { key, default } => {
                            push_literal(buf, resolve_var(key, default, vars)?, syntax.fold_case)
                        }
                    }
                }
                let restricted = syntax.arn_segments && mark_segments(buf);
                Some((buf, restricted))
            }
        }
    }

    /// Matches the whole of `value` (an unresolvable variable never matches).
    pub(crate) fn matches(&self, value: &str, vars: &dyn Variables, scratch: &mut Scratch, fold_case: bool) -> bool {
        match self.tokens(vars, scratch) {
            Some((toks, false)) => glob(toks, value.as_bytes(), fold_case),
            Some((toks, true)) => glob_segments(toks, value.as_bytes()),
            None => false,
        }
    }

    /// Matches an ARN segment by segment, as `ArnLike` does.
    pub(crate) fn matches_arn(&self, value: &str, vars: &dyn Variables, scratch: &mut Scratch) -> bool {
        match self.tokens(vars, scratch) {
            Some((toks, _)) => arn_like(toks, value.as_bytes()),
            None => false,
        }
    }
}

/// A literal text value (the equality operators), possibly with policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    /// No variables.
    Static(String),
    /// Variables to resolve per request.
    Dynamic(Vec<Part>),
}

impl Text {
    /// Compiles `s`; `variables` enables `${...}`.
    pub(crate) fn compile(s: &str, variables: bool) -> Text {
        if variables && s.contains("${") {
            let parts = parse_template(s);
            if parts.iter().any(|p| !matches!(p, Part::Text(_))) {
                return Text::Dynamic(parts);
            }
        }
        Text::Static(s.to_string())
    }

    /// The text with variables resolved, or `None` when one cannot be.
    pub(crate) fn resolve<'a>(&'a self, vars: &'a dyn Variables) -> Option<Cow<'a, str>> {
        match self {
            Text::Static(s) => Some(Cow::Borrowed(s)),
            Text::Dynamic(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Char(c) => out.push(*c),
                        Part::Var { key, default } => out.push_str(resolve_var(key, default, vars)?),
                    }
                }
                Some(Cow::Owned(out))
            }
        }
    }
}

// === matchers ===

/// The length of the UTF-8 sequence a lead byte starts; `None` for a continuation byte.
fn char_len(lead: u8) -> Option<usize> {
    match lead {
        0x00..=0x7f => Some(1),
        0x80..=0xbf => None,
        0xc0..=0xdf => Some(2),
        0xe0..=0xef => Some(3),
        _ => Some(4),
    }
}

fn byte_eq(pattern: u8, value: u8, fold_case: bool) -> bool {
    if fold_case {
        pattern == value.to_ascii_lowercase()
    } else {
        pattern == value
    }
}

/// Glob matching where every star may run anywhere: the linear-time greedy algorithm with one
/// backtracking point (a later star subsumes an earlier one).
pub(crate) fn glob(p: &[Tok], v: &[u8], fold_case: bool) -> bool {
    let (mut pi, mut vi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if let Some(tok) = p.get(pi) {
            match *tok {
                Tok::Star { .. } => {
                    star = Some((pi + 1, vi));
                    pi += 1;
                    continue;
                }
                Tok::Byte(b) if byte_eq(b, v[vi], fold_case) => {
                    pi += 1;
                    vi += 1;
                    continue;
                }
                Tok::One => {
                    if let Some(len) = char_len(v[vi]) {
                        pi += 1;
                        vi += len;
                        continue;
                    }
                }
                Tok::Byte(_) => {}
            }
        }
        match star {
            Some((sp, sv)) => {
                pi = sp;
                vi = sv + 1;
                star = Some((sp, sv + 1));
            }
            None => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|t| matches!(t, Tok::Star { .. }))
}

/// Glob matching where some stars may not cross `:`: the set of reachable value positions,
/// token by token (O(pattern × value), used only for such patterns).
fn glob_segments(p: &[Tok], v: &[u8]) -> bool {
    let n = v.len();
    let mut cur = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    cur[0] = true;
    for tok in p {
        next.iter_mut().for_each(|x| *x = false);
        match *tok {
            Tok::Byte(b) => {
                for i in 0..n {
                    if cur[i] && v[i] == b {
                        next[i + 1] = true;
                    }
                }
            }
            Tok::One => {
                for i in 0..n {
                    if cur[i] {
                        if let Some(len) = char_len(v[i]) {
                            if i + len <= n {
                                next[i + len] = true;
                            }
                        }
                    }
                }
            }
            Tok::Star { cross } => {
                let mut running = false;
                for i in 0..=n {
                    running |= cur[i];
                    next[i] = running;
                    if i < n && !cross && v[i] == b':' {
                        running = false;
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        if !cur.iter().any(|&x| x) {
            return false;
        }
    }
    cur[n]
}

/// `ArnLike`: the six colon-separated parts of the ARN are matched separately (the last part is
/// the rest of the ARN, colons included). `*` alone matches anything.
pub(crate) fn arn_like(p: &[Tok], v: &[u8]) -> bool {
    if p == [Tok::Star { cross: true }] {
        return true;
    }
    let (mut p, mut v) = (p, v);
    for _ in 0..5 {
        let Some(pc) = p.iter().position(|t| *t == Tok::Byte(b':')) else { return false };
        let Some(vc) = v.iter().position(|b| *b == b':') else { return false };
        if !glob(&p[..pc], &v[..vc], false) {
            return false;
        }
        p = &p[pc + 1..];
        v = &v[vc + 1..];
    }
    glob(p, v, false)
}

/// Compiles and matches in one go (no variables), for the public helpers.
pub(crate) fn glob_str(pattern: &str, value: &str, syntax: Syntax) -> bool {
    let mut toks = Vec::with_capacity(pattern.len());
    push_text(&mut toks, pattern, syntax);
    glob(&toks, value.as_bytes(), syntax.fold_case)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoVars;
    impl Variables for NoVars {
        fn variable(&self, key: &str) -> Option<&str> {
            (key == "aws:username").then_some("bob")
        }
    }

    fn resource(p: &str, v: &str) -> bool {
        Pattern::compile(p, Syntax::RESOURCE, true).matches(v, &NoVars, &mut Scratch::default(), false)
    }

    #[test]
    fn greedy_glob() {
        assert!(glob_str("a*b*c", "aXXbYYc", Syntax::GLOB));
        assert!(!glob_str("a*b*c", "aXXbYY", Syntax::GLOB));
        assert!(glob_str("*", "", Syntax::GLOB));
        assert!(glob_str("?é?", "xéy", Syntax::GLOB));
        assert!(!glob_str("??", "é", Syntax::GLOB));
        assert!(glob_str("*é", "aaé", Syntax::GLOB));
        assert!(glob_str("SSM:get*", "ssm:GetDocument", Syntax::ACTION));
    }

    #[test]
    fn resource_segments() {
        assert!(resource("arn:aws:ssm:*", "arn:aws:ssm:us-east-1:123:document/x"));
        assert!(resource("arn:aws:ssm:us-*-1:123:document/x", "arn:aws:ssm:us-east-1:123:document/x"));
        // A star inside a segment cannot swallow a colon.
        assert!(!resource("arn:aws:ssm:u*1:document/x", "arn:aws:ssm:us-east-1:123:document/x"));
        assert!(resource("arn:aws:s3:::${aws:username}/*", "arn:aws:s3:::bob/a:b"));
        assert!(!resource("arn:aws:s3:::${aws:userid}/*", "arn:aws:s3:::bob/a"));
        assert!(resource("arn:aws:s3:::${aws:userid, 'anon'}/*", "arn:aws:s3:::anon/a"));
        assert!(resource("arn:aws:s3:::a${*}b", "arn:aws:s3:::a*b"));
        assert!(!resource("arn:aws:s3:::a${*}b", "arn:aws:s3:::aXb"));
    }

    #[test]
    fn templates() {
        assert_eq!(parse_template("a${$}b"), vec![Part::Text("a".into()), Part::Char('$'), Part::Text("b".into())]);
        assert_eq!(parse_template("${ oops"), vec![Part::Text("${ oops".into())]);
        assert_eq!(
            parse_template("${aws:PrincipalTag/Team, 'it''s'}"),
            vec![Part::Var { key: "aws:principaltag/team".into(), default: Some("it's".into()) }]
        );
    }
}
