//! The statement text both engines run, written once.
//!
//! Statements are written in SQLite's spelling, which SQLite runs as written, with a few
//! marks that PostgreSQL needs spelt out:
//!
//! | written            | SQLite                       | PostgreSQL                  |
//! |--------------------|------------------------------|-----------------------------|
//! | `?`                | `?`                          | `$1`, `$2`, ... in order    |
//! | `IN (?*)`          | `IN (?, ?, ...)`, one per element of the bound list | `= ANY($n)` (one array) |
//! | `/*FOR UPDATE*/`, `/*FOR SHARE*/`, `/*FOR UPDATE OF a*/` | a comment (`BEGIN IMMEDIATE` already serialises writers) | the row lock |
//! | `/*C*/`            | a comment (BINARY is the default) | `COLLATE "C"` (byte order) |
//! | `TRUE`, `FALSE`    | `1`, `0` (a partial index `WHERE active = 1` serves only that spelling) | as written |
//!
//! Text inside single quotes is never rewritten. Everything else (upserts with
//! `ON CONFLICT ... DO UPDATE`, `RETURNING`, row values, `LIMIT ?`) is spelt the same on both.

/// A statement written once: `sql!("SELECT ... WHERE a = ?")` is a `&'static Sql` whose
/// PostgreSQL rendering is made on first use and kept.
macro_rules! sql {
    ($($text:tt)+) => {{
        static SQL: $crate::db::Sql = $crate::db::Sql::new($($text)+);
        &SQL
    }};
}
pub(crate) use sql;

/// The PostgreSQL spelling of a neutral statement (see the module docs).
pub(super) fn render_postgres(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut n = 0;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            // Copy a quoted literal through its closing quote ('' escapes stay inside).
            let end = rest[1..].find('\'').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else if let Some(after) = rest.strip_prefix("IN (?*)") {
            n += 1;
            out.push_str(&format!("= ANY(${n})"));
            rest = after;
        } else if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
            rest = &rest[1..];
        } else if let Some(after) = rest.strip_prefix("/*C*/") {
            out.push_str("COLLATE \"C\"");
            rest = after;
        } else if let Some(lock) = rest.strip_prefix("/*FOR ").and_then(|r| r.split_once("*/")) {
            out.push_str("FOR ");
            out.push_str(lock.0);
            rest = lock.1;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The SQLite spelling of a neutral statement, before list parameters are expanded
/// ([`expand_lists_for_sqlite`]): the boolean literals as integers.
pub(super) fn render_sqlite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after_word = out.chars().last().is_none_or(|p| !is_word_char(p));
        if c == '\'' {
            let end = rest[1..].find('\'').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else if let Some((word, digit)) =
            [("TRUE", "1"), ("FALSE", "0")].into_iter().find(|(w, _)| after_word && starts_with_word(rest, w))
        {
            out.push_str(digit);
            rest = &rest[word.len()..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Does `text` start with the whole word `word`?
fn starts_with_word(text: &str, word: &str) -> bool {
    text.strip_prefix(word).is_some_and(|rest| !rest.starts_with(is_word_char))
}

/// The SQLite spelling of a statement with list parameters: each `IN (?*)` becomes
/// `IN (?, ?, ...)` with as many placeholders as its list has elements (`lens`, in order).
pub(super) fn expand_lists_for_sqlite(text: &str, mut lens: impl Iterator<Item = usize>) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(at) = rest.find("IN (?*)") {
        out.push_str(&rest[..at]);
        let n = lens.next().unwrap_or(0);
        out.push_str("IN (");
        for i in 0..n {
            out.push_str(if i == 0 { "?" } else { ", ?" });
        }
        out.push(')');
        rest = &rest[at + "IN (?*)".len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_placeholders_and_spells_out_marks() {
        assert_eq!(
            render_postgres(
                "SELECT a FROM t WHERE b = ? AND s IN (?*) AND c = '?' ORDER BY a /*C*/ LIMIT ? /*FOR UPDATE*/"
            ),
            "SELECT a FROM t WHERE b = $1 AND s = ANY($2) AND c = '?' ORDER BY a COLLATE \"C\" LIMIT $3 FOR UPDATE"
        );
        assert_eq!(render_postgres("SELECT 1 FROM t a /*FOR UPDATE OF a*/"), "SELECT 1 FROM t a FOR UPDATE OF a");
        assert_eq!(render_postgres("SELECT 'it''s ?', ? /* other */"), "SELECT 'it''s ?', $1 /* other */");
    }

    #[test]
    fn sqlite_expands_each_list_to_its_length() {
        assert_eq!(
            expand_lists_for_sqlite("a IN (?*) AND b = ? AND c IN (?*)", [2, 3].into_iter()),
            "a IN (?, ?) AND b = ? AND c IN (?, ?, ?)"
        );
        assert_eq!(expand_lists_for_sqlite("a IN (?*)", [0].into_iter()), "a IN ()");
    }

    #[test]
    fn sqlite_spells_booleans_as_integers() {
        assert_eq!(
            render_sqlite("SET a = TRUE, b = FALSE WHERE TRUE_x = 'TRUE' AND xTRUE = ? /*FOR UPDATE*/"),
            "SET a = 1, b = 0 WHERE TRUE_x = 'TRUE' AND xTRUE = ? /*FOR UPDATE*/"
        );
    }
}
