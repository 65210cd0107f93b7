//! The `Condition` element: operators, their parsing and validation, and their evaluation
//! against a request's context keys.
//!
//! The rules follow AWS's IAM reference ("Condition operators", "Conditions with multiple
//! context keys or values", "Set operators for multivalued context keys"):
//! - operators in one block AND together, keys under one operator AND together, the values
//!   listed for one key OR together; a negated operator (`StringNotEquals`, `NotIpAddress`, ...)
//!   requires the request value to match none of them (NOR);
//! - a key missing from the request makes the condition false, except that a negated operator
//!   is then true, an `...IfExists` operator is true, `ForAllValues:` is true and `Null` tests
//!   exactly that;
//! - a multi-valued key is compared member by member with `ForAnyValue:` (some member) or
//!   `ForAllValues:` (every member). Without a set operator the set as a whole is compared as one
//!   value, which equals no policy value: plain operators are false, negated ones true.

use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

use crate::eval::{ContextValue, RequestContext};
use crate::pattern::{Pattern, Scratch, Syntax, Text};
use crate::policy::PolicyError;

/// `ForAnyValue:` / `ForAllValues:`, the set operators for multi-valued context keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperator {
    /// True when at least one value of the request's key satisfies the operator.
    ForAnyValue,
    /// True when every value of the request's key satisfies it (and when the key is missing).
    ForAllValues,
}

/// A condition operator without its set prefix or `IfExists` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // The variants are AWS's operator names.
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl BaseOperator {
    /// Every operator, in AWS's documentation order.
    pub const ALL: [BaseOperator; 27] = [
        BaseOperator::StringEquals,
        BaseOperator::StringNotEquals,
        BaseOperator::StringEqualsIgnoreCase,
        BaseOperator::StringNotEqualsIgnoreCase,
        BaseOperator::StringLike,
        BaseOperator::StringNotLike,
        BaseOperator::NumericEquals,
        BaseOperator::NumericNotEquals,
        BaseOperator::NumericLessThan,
        BaseOperator::NumericLessThanEquals,
        BaseOperator::NumericGreaterThan,
        BaseOperator::NumericGreaterThanEquals,
        BaseOperator::DateEquals,
        BaseOperator::DateNotEquals,
        BaseOperator::DateLessThan,
        BaseOperator::DateLessThanEquals,
        BaseOperator::DateGreaterThan,
        BaseOperator::DateGreaterThanEquals,
        BaseOperator::Bool,
        BaseOperator::BinaryEquals,
        BaseOperator::IpAddress,
        BaseOperator::NotIpAddress,
        BaseOperator::ArnEquals,
        BaseOperator::ArnLike,
        BaseOperator::ArnNotEquals,
        BaseOperator::ArnNotLike,
        BaseOperator::Null,
    ];

    /// AWS's name for the operator.
    pub fn name(self) -> &'static str {
        use BaseOperator::*;
        match self {
            StringEquals => "StringEquals",
            StringNotEquals => "StringNotEquals",
            StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            StringLike => "StringLike",
            StringNotLike => "StringNotLike",
            NumericEquals => "NumericEquals",
            NumericNotEquals => "NumericNotEquals",
            NumericLessThan => "NumericLessThan",
            NumericLessThanEquals => "NumericLessThanEquals",
            NumericGreaterThan => "NumericGreaterThan",
            NumericGreaterThanEquals => "NumericGreaterThanEquals",
            DateEquals => "DateEquals",
            DateNotEquals => "DateNotEquals",
            DateLessThan => "DateLessThan",
            DateLessThanEquals => "DateLessThanEquals",
            DateGreaterThan => "DateGreaterThan",
            DateGreaterThanEquals => "DateGreaterThanEquals",
            Bool => "Bool",
            BinaryEquals => "BinaryEquals",
            IpAddress => "IpAddress",
            NotIpAddress => "NotIpAddress",
            ArnEquals => "ArnEquals",
            ArnLike => "ArnLike",
            ArnNotEquals => "ArnNotEquals",
            ArnNotLike => "ArnNotLike",
            Null => "Null",
        }
    }

    /// Is this a negated matching operator (true when the request value matches none of the
    /// policy values, and when the key is missing)?
    pub fn is_negated(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Do policy variables apply to this operator's values? AWS supports them for the string,
    /// ARN and Bool operators only.
    pub fn supports_variables(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringEquals
                | StringNotEquals
                | StringEqualsIgnoreCase
                | StringNotEqualsIgnoreCase
                | StringLike
                | StringNotLike
                | ArnEquals
                | ArnLike
                | ArnNotEquals
                | ArnNotLike
                | Bool
        )
    }
}

/// A full condition operator: optional set prefix, base operator, optional `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionOperator {
    /// `ForAnyValue:` / `ForAllValues:`.
    pub set: Option<SetOperator>,
    /// The comparison.
    pub base: BaseOperator,
    /// The `IfExists` suffix: true when the key is missing.
    pub if_exists: bool,
}

impl ConditionOperator {
    /// Reads an operator name as written in a policy (`ForAnyValue:StringLikeIfExists`).
    /// Operator names are matched without regard to case. `None` for anything else, including
    /// `NullIfExists`.
    pub fn parse(name: &str) -> Option<ConditionOperator> {
        let (set, rest) = match name.split_once(':') {
            None => (None, name),
            Some((prefix, rest)) if prefix.eq_ignore_ascii_case("ForAnyValue") => {
                (Some(SetOperator::ForAnyValue), rest)
            }
            Some((prefix, rest)) if prefix.eq_ignore_ascii_case("ForAllValues") => {
                (Some(SetOperator::ForAllValues), rest)
            }
            Some(_) => return None,
        };
        let find = |n: &str| BaseOperator::ALL.into_iter().find(|op| op.name().eq_ignore_ascii_case(n));
        if let Some(base) = find(rest) {
            return Some(ConditionOperator { set, base, if_exists: false });
        }
        let stem_len = rest.len().checked_sub("IfExists".len())?;
        let (stem, suffix) = (rest.get(..stem_len)?, rest.get(stem_len..)?);
        if !suffix.eq_ignore_ascii_case("IfExists") {
            return None;
        }
        let base = find(stem).filter(|b| *b != BaseOperator::Null)?;
        Some(ConditionOperator { set, base, if_exists: true })
    }
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(SetOperator::ForAnyValue) => f.write_str("ForAnyValue:")?,
            Some(SetOperator::ForAllValues) => f.write_str("ForAllValues:")?,
            None => {}
        }
        f.write_str(self.base.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

/// One `{Operator: {Key: values}}` test of a statement's `Condition` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator.
    pub operator: ConditionOperator,
    /// The context key as written (`aws:PrincipalTag/team`).
    pub key: String,
    /// The policy values as written (JSON numbers and booleans as their text).
    pub values: Vec<String>,
    key_lower: String,
    compiled: Vec<Operand>,
}

/// A policy value compiled for its operator; `None` inside means it could not be read (a
/// malformed number, date or address) and matches nothing.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Text(Text),
    Glob(Pattern),
    Number(Option<Decimal>),
    Date(Option<i128>),
    Ip(Option<Cidr>),
    Null(Option<bool>),
}

/// Parses a statement's `Condition` block into its tests, in document order.
pub(crate) fn parse_block(block: &Value, variables: bool) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = block else { return Err(PolicyError::Syntax) };
    let mut out = Vec::new();
    for (op_name, keys) in operators {
        let operator =
            ConditionOperator::parse(op_name).ok_or_else(|| PolicyError::InvalidCondition(op_name.clone()))?;
        let Value::Object(keys) = keys else { return Err(PolicyError::Syntax) };
        for (key, values) in keys {
            // AWS's "Actions/Conditions must be prefaced by a vendor" covers condition keys too.
            if key.split_once(':').is_none_or(|(vendor, _)| vendor.is_empty()) {
                return Err(PolicyError::MissingVendor);
            }
            let values = condition_values(values)?;
            let compiled = values.iter().map(|v| compile_operand(operator.base, v, variables)).collect();
            out.push(Condition { operator, key: key.clone(), key_lower: key.to_lowercase(), values, compiled });
        }
    }
    Ok(out)
}

fn condition_values(v: &Value) -> Result<Vec<String>, PolicyError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(PolicyError::Syntax),
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn compile_operand(op: BaseOperator, value: &str, variables: bool) -> Operand {
    use BaseOperator::*;
    let variables = variables && op.supports_variables();
    match op {
        StringEquals | StringNotEquals | StringEqualsIgnoreCase | StringNotEqualsIgnoreCase | Bool | BinaryEquals => {
            Operand::Text(Text::compile(value, variables))
        }
        StringLike | StringNotLike | ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => {
            Operand::Glob(Pattern::compile(value, Syntax::GLOB, variables))
        }
        NumericEquals
        | NumericNotEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => Operand::Number(Decimal::parse(value)),
        DateEquals | DateNotEquals | DateLessThan | DateLessThanEquals | DateGreaterThan | DateGreaterThanEquals => {
            Operand::Date(parse_date(value))
        }
        IpAddress | NotIpAddress => Operand::Ip(Cidr::parse(value)),
        Null => Operand::Null(parse_bool(value)),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

// === evaluation ===

impl Condition {
    /// Does the request's context satisfy this test?
    pub fn holds(&self, context: &RequestContext) -> bool {
        self.holds_with(context, &mut Scratch::default())
    }

    pub(crate) fn holds_with(&self, context: &RequestContext, scratch: &mut Scratch) -> bool {
        let op = self.operator;
        let found = context.get_lower(&self.key_lower);
        let values: &[String] = match found {
            None => &[],
            Some(ContextValue::Single(s)) => std::slice::from_ref(s),
            Some(ContextValue::Multi(v)) => v,
        };
        if op.base == BaseOperator::Null {
            let absent = values.is_empty();
            return self.compiled.iter().any(|c| matches!(c, Operand::Null(Some(want)) if *want == absent));
        }
        if values.is_empty() {
            return op.if_exists
                || match op.set {
                    Some(SetOperator::ForAllValues) => true,
                    Some(SetOperator::ForAnyValue) => false,
                    None => op.base.is_negated(),
                };
        }
        match op.set {
            Some(SetOperator::ForAnyValue) => values.iter().any(|v| self.holds_for(v, context, scratch)),
            Some(SetOperator::ForAllValues) => values.iter().all(|v| self.holds_for(v, context, scratch)),
            None if values.len() == 1 => self.holds_for(&values[0], context, scratch),
            // A set compared as one value equals nothing.
            None => op.base.is_negated(),
        }
    }

    /// The operator applied to one request value: any policy value matches (or, negated, none).
    fn holds_for(&self, value: &str, context: &RequestContext, scratch: &mut Scratch) -> bool {
        let base = self.operator.base;
        let any = self.compiled.iter().any(|operand| matches_operand(base, operand, value, context, scratch));
        any != base.is_negated()
    }
}

/// Does one request value match one policy value, for the positive form of `op`?
fn matches_operand(
    op: BaseOperator,
    operand: &Operand,
    value: &str,
    context: &RequestContext,
    scratch: &mut Scratch,
) -> bool {
    use BaseOperator::*;
    match operand {
        Operand::Text(text) => {
            let Some(want) = text.resolve(context) else { return false };
            match op {
                StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                    want.chars().flat_map(char::to_lowercase).eq(value.chars().flat_map(char::to_lowercase))
                }
                Bool => parse_bool(&want).is_some_and(|w| parse_bool(value) == Some(w)),
                _ => *want == *value,
            }
        }
        Operand::Glob(pattern) => match op {
            StringLike | StringNotLike => pattern.matches(value, context, scratch, false),
            _ => pattern.matches_arn(value, context, scratch),
        },
        Operand::Number(want) => {
            let (Some(want), Some(got)) = (want, Decimal::parse(value)) else { return false };
            compare(op, got.cmp(want))
        }
        Operand::Date(want) => {
            let (Some(want), Some(got)) = (want, parse_date(value)) else { return false };
            compare(op, got.cmp(want))
        }
        Operand::Ip(cidr) => cidr.as_ref().is_some_and(|c| value.parse::<IpAddr>().is_ok_and(|ip| c.contains(ip))),
        Operand::Null(_) => false,
    }
}

/// The request value compared with the policy value (`got.cmp(want)`), per the positive form
/// of the numeric/date operator.
fn compare(op: BaseOperator, ord: Ordering) -> bool {
    use BaseOperator::*;
    match op {
        NumericLessThan | DateLessThan => ord == Ordering::Less,
        NumericLessThanEquals | DateLessThanEquals => ord != Ordering::Greater,
        NumericGreaterThan | DateGreaterThan => ord == Ordering::Greater,
        NumericGreaterThanEquals | DateGreaterThanEquals => ord != Ordering::Less,
        _ => ord == Ordering::Equal,
    }
}

// === numbers ===

/// An exact decimal number (`-12.50`), normalised so equal numbers compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    /// Integer digits without leading zeros.
    int: String,
    /// Fraction digits without trailing zeros.
    frac: String,
}

impl Decimal {
    fn parse(s: &str) -> Option<Decimal> {
        let (negative, digits) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let int = int.trim_start_matches('0').to_string();
        let frac = frac.trim_end_matches('0').to_string();
        let negative = negative && !(int.is_empty() && frac.is_empty());
        Some(Decimal { negative, int, frac })
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(&other.int))
            .then_with(|| self.frac.cmp(&other.frac))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// === dates ===

/// A date as nanoseconds since the Unix epoch. Accepts what AWS documents for the date
/// operators: ISO 8601 (`2026-01-31T12:00:00Z`, with an offset or fraction, a bare date, or a
/// date-time without zone taken as UTC) and epoch seconds (`aws:EpochTime`).
fn parse_date(s: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{Date, OffsetDateTime, PrimitiveDateTime};

    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let d = Decimal::parse(s)?;
        let secs: i128 = if d.int.is_empty() { 0 } else { d.int.parse().ok()? };
        let mut frac = d.frac.clone();
        frac.truncate(9);
        let nanos: i128 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
        return secs.checked_mul(1_000_000_000)?.checked_add(nanos);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = PrimitiveDateTime::parse(s, format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Some(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

// === addresses ===

/// An address range (`203.0.113.0/24`, `2001:db8::/32`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { network: addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            // An IPv4 client seen through an IPv6 socket arrives as ::ffff:a.b.c.d.
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            _ => ip,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let op = ConditionOperator::parse("ForAnyValue:StringLikeIfExists").expect("valid");
        assert_eq!(op.set, Some(SetOperator::ForAnyValue));
        assert_eq!(op.base, BaseOperator::StringLike);
        assert!(op.if_exists);
        assert_eq!(op.to_string(), "ForAnyValue:StringLikeIfExists");
        assert!(ConditionOperator::parse("NullIfExists").is_none());
        assert!(ConditionOperator::parse("StringEqual").is_none());
        assert!(ConditionOperator::parse("Sometimes:StringEquals").is_none());
        assert!(ConditionOperator::parse("IfExists").is_none());
        for base in BaseOperator::ALL {
            assert_eq!(ConditionOperator::parse(base.name()).map(|o| o.base), Some(base));
        }
    }

    #[test]
    fn decimals() {
        let d = |s: &str| Decimal::parse(s).expect(s);
        assert_eq!(d("1.50"), d("01.5"));
        assert_eq!(d("-0"), d("0.0"));
        assert!(d("-2") < d("-1.5"));
        assert!(d("10") > d("9.99"));
        assert!(d("0.5") < d("0.51"));
        assert!(Decimal::parse("1e3").is_none());
        assert!(Decimal::parse(".").is_none());
        assert!(Decimal::parse("").is_none());
    }

    #[test]
    fn dates() {
        let t = parse_date("2026-01-31T12:00:00Z").expect("iso");
        assert_eq!(parse_date("2026-01-31T13:00:00+01:00"), Some(t));
        assert_eq!(parse_date("2026-01-31T12:00:00"), Some(t));
        assert_eq!(parse_date("1769860800"), Some(t));
        assert_eq!(parse_date("2026-01-31"), Some(t - 12 * 3600 * 1_000_000_000));
        assert!(parse_date("yesterday").is_none());
    }

    #[test]
    fn cidrs() {
        let c = |s: &str| Cidr::parse(s).expect(s);
        assert!(c("203.0.113.0/24").contains("203.0.113.7".parse().expect("ip")));
        assert!(!c("203.0.113.0/24").contains("203.0.114.7".parse().expect("ip")));
        assert!(c("0.0.0.0/0").contains("8.8.8.8".parse().expect("ip")));
        assert!(c("203.0.113.0/24").contains("::ffff:203.0.113.9".parse().expect("ip")));
        assert!(c("2001:db8::/32").contains("2001:db8:1::1".parse().expect("ip")));
        assert!(!c("2001:db8::/32").contains("2001:db9::1".parse().expect("ip")));
        assert!(c("10.0.0.1").contains("10.0.0.1".parse().expect("ip")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }
}
