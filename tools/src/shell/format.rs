//! Formatting of CQL values as cqlsh shows them.
//!
//! The rules follow cqlsh's `formatting.py`:
//! - text and ascii are shown as they are at the top level (backslashes doubled, control
//!   characters escaped as Python does) and in single quotes with `''` escapes inside
//!   collections, tuples and user-defined types; inet and timestamp values are quoted there too;
//! - blobs as `0x` and lower-case hex; booleans as `True` / `False`; null as `null`;
//! - float with 5 and double with 12 significant digits after the integer part (`%g` style),
//!   `NaN`, `Infinity`, `-Infinity`;
//! - timestamps as `2024-01-02 03:04:05.678000+0000` (UTC), dates as `2024-01-02`, times as
//!   `03:04:05.000000000`; values outside years 1 to 9999 fall back to numbers like cqlsh;
//! - durations as `1y2mo3d4h5m6s7ms8us9ns`;
//! - decimals like Python's `Decimal` (and Java's `BigDecimal`) `str`.

use std::fmt::Write as _;

use num_bigint::BigInt;
use scylla::value::{CqlDecimal, CqlDuration, CqlValue, CqlVarint};

/// The text shown for a null value.
pub const NULL_TEXT: &str = "null";

/// Display options (cqlsh's `float_precision` and `double_precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatOptions {
    /// Digits for float values.
    pub float_precision: usize,
    /// Digits for double values.
    pub double_precision: usize,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions { float_precision: 5, double_precision: 12 }
    }
}

/// Formats a cell of a result row (a top-level value).
#[must_use]
pub fn format_cell(value: Option<&CqlValue>, options: &FormatOptions) -> String {
    match value {
        None => NULL_TEXT.to_string(),
        Some(v) => {
            let mut out = String::new();
            write_value(&mut out, v, false, options);
            out
        }
    }
}

/// Formats a value; `quote` is set inside collections, tuples and user-defined types.
fn write_value(out: &mut String, value: &CqlValue, quote: bool, options: &FormatOptions) {
    match value {
        CqlValue::Ascii(s) | CqlValue::Text(s) => write_text(out, s, quote),
        CqlValue::Boolean(b) => out.push_str(if *b { "True" } else { "False" }),
        CqlValue::Blob(b) => write_blob(out, b),
        CqlValue::Counter(c) => push_display(out, c.0),
        CqlValue::Decimal(d) => out.push_str(&format_decimal(d)),
        CqlValue::Date(d) => out.push_str(&format_date(d.0)),
        CqlValue::Double(d) => out.push_str(&format_floating(*d, options.double_precision)),
        CqlValue::Float(f) => out.push_str(&format_floating(f64::from(*f), options.float_precision)),
        CqlValue::Duration(d) => out.push_str(&format_duration(d)),
        CqlValue::Empty => {}
        CqlValue::Int(i) => push_display(out, i),
        CqlValue::BigInt(i) => push_display(out, i),
        CqlValue::SmallInt(i) => push_display(out, i),
        CqlValue::TinyInt(i) => push_display(out, i),
        CqlValue::Varint(v) => out.push_str(&format_varint(v)),
        CqlValue::Timestamp(t) => maybe_quoted(out, &format_timestamp(t.0), quote),
        CqlValue::Time(t) => out.push_str(&format_time(t.0)),
        CqlValue::Inet(ip) => maybe_quoted(out, &ip.to_string(), quote),
        CqlValue::Uuid(u) => push_display(out, u),
        CqlValue::Timeuuid(u) => push_display(out, u),
        CqlValue::List(items) | CqlValue::Vector(items) => {
            write_sequence(out, "[", "]", items.iter().map(Some), options);
        }
        CqlValue::Set(items) => write_sequence(out, "{", "}", items.iter().map(Some), options),
        CqlValue::Tuple(items) => write_sequence(out, "(", ")", items.iter().map(Option::as_ref), options),
        CqlValue::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, k, true, options);
                out.push_str(": ");
                write_value(out, v, true, options);
            }
            out.push('}');
        }
        CqlValue::UserDefinedType { fields, .. } => {
            out.push('{');
            for (i, (name, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_text(out, name, false);
                out.push_str(": ");
                match v {
                    Some(v) => write_value(out, v, true, options),
                    None => out.push_str(NULL_TEXT),
                }
            }
            out.push('}');
        }
        // CqlValue is non-exhaustive: show anything new in its debug form rather than fail.
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

fn push_display(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

fn maybe_quoted(out: &mut String, text: &str, quote: bool) {
    if quote {
        out.push('\'');
        out.push_str(text);
        out.push('\'');
    } else {
        out.push_str(text);
    }
}

fn write_sequence<'a>(
    out: &mut String,
    open: &str,
    close: &str,
    items: impl Iterator<Item = Option<&'a CqlValue>>,
    options: &FormatOptions,
) {
    out.push_str(open);
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match item {
            Some(v) => write_value(out, v, true, options),
            None => out.push_str(NULL_TEXT),
        }
    }
    out.push_str(close);
}

/// Text as cqlsh shows it: backslashes doubled, control characters (U+0000..U+001F and
/// U+007F..U+00A0) escaped as Python's `repr` does, and with `quote`, in single quotes with
/// `''` escapes.
fn write_text(out: &mut String, s: &str, quote: bool) {
    if quote {
        out.push('\'');
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' if quote => out.push_str("''"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{a0}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    if quote {
        out.push('\'');
    }
}

fn write_blob(out: &mut String, bytes: &[u8]) {
    out.push_str("0x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// A varint in decimal.
#[must_use]
pub fn format_varint(v: &CqlVarint) -> String {
    let bytes = v.as_signed_bytes_be_slice();
    if bytes.is_empty() {
        return "0".to_string();
    }
    BigInt::from_signed_bytes_be(bytes).to_string()
}

/// A decimal like Python's `str(Decimal)`: plain notation when the scale is not negative and
/// the adjusted exponent is at least -6, scientific notation (`1.23E+5`) otherwise.
#[must_use]
pub fn format_decimal(d: &CqlDecimal) -> String {
    let (bytes, scale) = d.as_signed_be_bytes_slice_and_exponent();
    let unscaled = if bytes.is_empty() { BigInt::from(0) } else { BigInt::from_signed_bytes_be(bytes) };
    let text = unscaled.to_string();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", text.as_str()),
    };
    let exponent = -i64::from(scale);
    let adjusted = exponent + digits.len() as i64 - 1;
    if exponent <= 0 && adjusted >= -6 {
        let scale = usize::try_from(-exponent).unwrap_or(0);
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        if digits.len() > scale {
            let (int_part, frac) = digits.split_at(digits.len() - scale);
            format!("{sign}{int_part}.{frac}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
        let exp_sign = if adjusted >= 0 { "+" } else { "-" };
        format!("{sign}{mantissa}E{exp_sign}{}", adjusted.abs())
    }
}

/// A float or double as cqlsh shows it (`format_floating_point_type` with no separators).
#[must_use]
pub fn format_floating(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let mut precision = precision;
    if v.abs() > f64::EPSILON {
        // Python's int() truncates towards zero.
        let exponent = v.abs().log10().trunc() as i64;
        if (-4..precision as i64).contains(&exponent) {
            precision = (precision as i64 + exponent + 1).max(1) as usize;
        }
    }
    format_g(v, precision)
}

/// C's `%.*g`: `precision` significant digits, trailing zeros removed, scientific notation when
/// the exponent is below -4 or at least the precision.
#[must_use]
pub fn format_g(v: f64, precision: usize) -> String {
    let precision = precision.max(1);
    let sci = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i64 {
        let mantissa = strip_fraction_zeros(mantissa);
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{exp_sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(precision as i64 - 1 - exp).unwrap_or(0);
        strip_fraction_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A timestamp (milliseconds since the epoch) as `YYYY-MM-DD HH:MM:SS.ffffff+0000`; outside
/// years 1 to 9999, the number of milliseconds (like cqlsh).
#[must_use]
pub fn format_timestamp(millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    let ms_of_day = millis.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    if !(1..=9999).contains(&y) {
        return millis.to_string();
    }
    let secs = ms_of_day / 1000;
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{:06}+0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000 * 1000
    )
}

/// A date (days with the epoch at 2^31) as `YYYY-MM-DD`; outside years 1 to 9999, the number
/// of days since the epoch (like cqlsh).
#[must_use]
pub fn format_date(raw: u32) -> String {
    let days = i64::from(raw) - (1_i64 << 31);
    let (y, m, d) = civil_from_days(days);
    if (1..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        days.to_string()
    }
}

/// A time of day (nanoseconds since midnight) as `HH:MM:SS.nnnnnnnnn`.
#[must_use]
pub fn format_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    format!("{:02}:{:02}:{:02}.{frac:09}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A duration like cqlsh and Cassandra: `-` if any part is negative, then the non-zero units
/// among `y mo d h m s ms us ns`.
#[must_use]
pub fn format_duration(d: &CqlDuration) -> String {
    let mut out = String::new();
    if d.months < 0 || d.days < 0 || d.nanoseconds < 0 {
        out.push('-');
    }
    let append = |out: &mut String, value: u64, divisor: u64, unit: &str| -> u64 {
        if value == 0 || value < divisor {
            return value;
        }
        let _ = write!(out, "{}{unit}", value / divisor);
        value % divisor
    };
    let months = u64::from(d.months.unsigned_abs());
    let rest = append(&mut out, months, 12, "y");
    append(&mut out, rest, 1, "mo");
    append(&mut out, u64::from(d.days.unsigned_abs()), 1, "d");
    let nanos = d.nanoseconds.unsigned_abs();
    if nanos != 0 {
        let mut rest = append(&mut out, nanos, 3_600_000_000_000, "h");
        rest = append(&mut out, rest, 60_000_000_000, "m");
        rest = append(&mut out, rest, 1_000_000_000, "s");
        rest = append(&mut out, rest, 1_000_000, "ms");
        rest = append(&mut out, rest, 1_000, "us");
        append(&mut out, rest, 1, "ns");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use scylla::value::{Counter, CqlDate, CqlTime, CqlTimestamp, CqlTimeuuid};

    use super::*;

    fn f(v: CqlValue) -> String {
        format_cell(Some(&v), &FormatOptions::default())
    }

    fn text(s: &str) -> CqlValue {
        CqlValue::Text(s.to_string())
    }

    #[test]
    fn null_is_shown_as_null() {
        assert_eq!(format_cell(None, &FormatOptions::default()), "null");
    }

    #[test]
    fn text_is_unquoted_at_top_level_and_quoted_in_collections() {
        assert_eq!(f(text("it's")), "it's");
        assert_eq!(f(CqlValue::Ascii("abc".into())), "abc");
        assert_eq!(f(CqlValue::List(vec![text("a"), text("it's")])), "['a', 'it''s']");
        assert_eq!(f(text("")), "");
    }

    #[test]
    fn control_characters_and_backslashes_are_escaped() {
        assert_eq!(f(text("a\nb\tc\\d\u{1}\u{7f}")), "a\\nb\\tc\\\\d\\x01\\x7f");
        assert_eq!(f(text("żółw 東京")), "żółw 東京");
    }

    #[test]
    fn integers_and_booleans() {
        assert_eq!(f(CqlValue::TinyInt(-128)), "-128");
        assert_eq!(f(CqlValue::SmallInt(32767)), "32767");
        assert_eq!(f(CqlValue::Int(-7)), "-7");
        assert_eq!(f(CqlValue::BigInt(i64::MIN)), "-9223372036854775808");
        assert_eq!(f(CqlValue::Counter(Counter(42))), "42");
        assert_eq!(f(CqlValue::Boolean(true)), "True");
        assert_eq!(f(CqlValue::Boolean(false)), "False");
    }

    #[test]
    fn varints_of_any_size() {
        let big = CqlVarint::from_signed_bytes_be(vec![0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(f(CqlValue::Varint(big)), "18446744073709551616");
        let neg = CqlVarint::from_signed_bytes_be(vec![0xff]);
        assert_eq!(f(CqlValue::Varint(neg)), "-1");
        assert_eq!(f(CqlValue::Varint(CqlVarint::from_signed_bytes_be(vec![]))), "0");
    }

    #[test]
    fn decimals_like_python() {
        let d = |unscaled: i64, scale: i32| {
            let bytes = BigInt::from(unscaled).to_signed_bytes_be();
            f(CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(bytes, scale)))
        };
        assert_eq!(d(12345, 2), "123.45");
        assert_eq!(d(-12345, 2), "-123.45");
        assert_eq!(d(5, 3), "0.005");
        assert_eq!(d(0, 0), "0");
        assert_eq!(d(0, 2), "0.00");
        assert_eq!(d(15, 0), "15");
        assert_eq!(d(1, -3), "1E+3");
        assert_eq!(d(123, -2), "1.23E+4");
        assert_eq!(d(1, 7), "1E-7");
        assert_eq!(d(1, 6), "0.000001");
    }

    #[test]
    fn floats_and_doubles_like_cqlsh() {
        assert_eq!(f(CqlValue::Float(1.5)), "1.5");
        assert_eq!(f(CqlValue::Float(3.3)), "3.3");
        assert_eq!(f(CqlValue::Float(123.456)), "123.456");
        assert_eq!(f(CqlValue::Float(0.0)), "0");
        assert_eq!(f(CqlValue::Float(1e20)), "1e+20");
        assert_eq!(f(CqlValue::Double(1.0 / 3.0)), "0.3333333333333");
        // cqlsh shows the binary value's digits.
        assert_eq!(f(CqlValue::Double(123456.789)), "123456.789000000004");
        assert_eq!(f(CqlValue::Double(-2.5)), "-2.5");
        assert_eq!(f(CqlValue::Double(100.0)), "100");
        assert_eq!(f(CqlValue::Double(1234567.0)), "1234567");
        assert_eq!(f(CqlValue::Double(1.0e-7)), "1e-07");
        assert_eq!(f(CqlValue::Double(0.00012)), "0.00012");
        assert_eq!(f(CqlValue::Double(f64::NAN)), "NaN");
        assert_eq!(f(CqlValue::Double(f64::INFINITY)), "Infinity");
        assert_eq!(f(CqlValue::Float(f32::NEG_INFINITY)), "-Infinity");
    }

    #[test]
    fn g_format_matches_c() {
        assert_eq!(format_g(0.0001, 6), "0.0001");
        assert_eq!(format_g(123456789.0, 6), "1.23457e+08");
        assert_eq!(format_g(999999.5, 6), "1e+06");
        assert_eq!(format_g(1.0, 1), "1");
    }

    #[test]
    fn blobs_in_hex() {
        assert_eq!(f(CqlValue::Blob(vec![0xca, 0xfe, 0x00])), "0xcafe00");
        assert_eq!(f(CqlValue::Blob(vec![])), "0x");
    }

    #[test]
    fn timestamps_in_utc_with_microseconds() {
        assert_eq!(
            f(CqlValue::Timestamp(CqlTimestamp(1_704_164_645_678))),
            "2024-01-02 03:04:05.678000+0000"
        );
        assert_eq!(f(CqlValue::Timestamp(CqlTimestamp(0))), "1970-01-01 00:00:00.000000+0000");
        assert_eq!(f(CqlValue::Timestamp(CqlTimestamp(-1))), "1969-12-31 23:59:59.999000+0000");
        assert_eq!(
            f(CqlValue::Set(vec![CqlValue::Timestamp(CqlTimestamp(0))])),
            "{'1970-01-01 00:00:00.000000+0000'}"
        );
        // Beyond year 9999 cqlsh shows the milliseconds.
        assert_eq!(f(CqlValue::Timestamp(CqlTimestamp(253_402_300_800_000))), "253402300800000");
    }

    #[test]
    fn dates_and_times() {
        let epoch = 1_u32 << 31;
        assert_eq!(f(CqlValue::Date(CqlDate(epoch))), "1970-01-01");
        assert_eq!(f(CqlValue::Date(CqlDate(epoch + 19_724))), "2024-01-02");
        assert_eq!(f(CqlValue::Date(CqlDate(epoch - 1))), "1969-12-31");
        assert_eq!(f(CqlValue::Date(CqlDate(0))), "-2147483648");
        assert_eq!(f(CqlValue::Time(CqlTime(0))), "00:00:00.000000000");
        assert_eq!(
            f(CqlValue::Time(CqlTime(((13 * 60 + 4) * 60 + 5) * 1_000_000_000 + 7))),
            "13:04:05.000000007"
        );
        assert_eq!(f(CqlValue::List(vec![CqlValue::Date(CqlDate(epoch))])), "[1970-01-01]");
    }

    #[test]
    fn durations() {
        let d = |months, days, nanoseconds| f(CqlValue::Duration(CqlDuration { months, days, nanoseconds }));
        assert_eq!(d(14, 3, 3_723_004_005_006), "1y2mo3d1h2m3s4ms5us6ns");
        assert_eq!(d(0, 0, 1_000_000_000), "1s");
        assert_eq!(d(-1, -2, 0), "-1mo2d");
        assert_eq!(d(0, 0, 0), "");
    }

    #[test]
    fn uuids_and_inets() {
        let u = uuid::Uuid::parse_str("550e8400-e29b-41d4-a716-446655440000").unwrap();
        assert_eq!(f(CqlValue::Uuid(u)), "550e8400-e29b-41d4-a716-446655440000");
        let t = uuid::Uuid::parse_str("e1e5b9a0-a9b4-11ee-8c90-0242ac120002").unwrap();
        assert_eq!(f(CqlValue::Timeuuid(CqlTimeuuid::from(t))), "e1e5b9a0-a9b4-11ee-8c90-0242ac120002");
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(f(CqlValue::Inet(ip)), "127.0.0.1");
        let ip6: IpAddr = "::1".parse().unwrap();
        assert_eq!(f(CqlValue::List(vec![CqlValue::Inet(ip6)])), "['::1']");
    }

    #[test]
    fn collections_tuples_and_udts() {
        assert_eq!(f(CqlValue::List(vec![])), "[]");
        assert_eq!(f(CqlValue::Set(vec![CqlValue::Int(1), CqlValue::Int(2)])), "{1, 2}");
        assert_eq!(
            f(CqlValue::Map(vec![(text("a"), CqlValue::Int(1)), (text("b"), CqlValue::Int(2))])),
            "{'a': 1, 'b': 2}"
        );
        assert_eq!(f(CqlValue::Tuple(vec![Some(CqlValue::Int(1)), None, Some(text("x"))])), "(1, null, 'x')");
        assert_eq!(
            f(CqlValue::Map(vec![(CqlValue::Int(1), CqlValue::List(vec![CqlValue::Blob(vec![1])]))])),
            "{1: [0x01]}"
        );
        let udt = CqlValue::UserDefinedType {
            keyspace: "ks".into(),
            name: "addr".into(),
            fields: vec![("street".into(), Some(text("Main"))), ("no".into(), None)],
        };
        assert_eq!(f(udt), "{street: 'Main', no: null}");
        assert_eq!(f(CqlValue::Vector(vec![CqlValue::Float(1.0), CqlValue::Float(2.5)])), "[1, 2.5]");
    }

    #[test]
    fn empty_values_are_blank() {
        assert_eq!(f(CqlValue::Empty), "");
    }
}
