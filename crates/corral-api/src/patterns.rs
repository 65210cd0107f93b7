//! Compiled `pattern` constraints, built once for all services.
//!
//! AWS matches a shape's `pattern` against the whole value with Java's regex engine. The generator
//! translates each model pattern into an anchored `regex`-crate expression (Java's ASCII `\w`,
//! `\d`, `\s`) and drops the few the crate cannot compile (look-arounds); the pairs are in
//! [`crate::generated::PATTERNS`]. This module compiles them on first use into a map that is
//! read-only afterwards, so matching takes no lock.

use regex::Regex;
use std::collections::HashMap;
use std::sync::OnceLock;

fn cache() -> &'static HashMap<&'static str, Regex> {
    static CACHE: OnceLock<HashMap<&'static str, Regex>> = OnceLock::new();
    CACHE.get_or_init(|| {
        crate::generated::PATTERNS
            .iter()
            // The generator compiled every one of these; one that fails here is skipped rather
            // than failing every request.
            .filter_map(|(model, rust)| Regex::new(rust).ok().map(|re| (*model, re)))
            .collect()
    })
}

/// Whether `value` satisfies the model pattern `pattern` (whole-value match).
///
/// Patterns outside the generated tables (hand-built shapes) are compiled on each call, anchored
/// but untranslated; a pattern that does not compile accepts everything, as a dropped pattern does.
pub fn is_match(pattern: &str, value: &str) -> bool {
    if let Some(re) = cache().get(pattern) {
        return re.is_match(value);
    }
    match Regex::new(&format!("^(?:{pattern})$")) {
        Ok(re) => re.is_match(value),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_patterns_compile_and_match_whole_values() {
        for (model, _) in crate::generated::PATTERNS {
            assert!(cache().contains_key(model), "pattern {model} did not compile");
        }
        assert!(is_match(r"[\w+=,.@-]+", "alice@example"));
        assert!(!is_match(r"[\w+=,.@-]+", "alice bob"));
        // Java's \w is ASCII-only.
        assert!(!is_match(r"[\w+=,.@-]+", "zoë"));
        // Not in the tables: compiled on the fly, still whole-value.
        assert!(is_match("ab+", "abbb"));
        assert!(!is_match("ab+", "xabbb"));
    }
}
