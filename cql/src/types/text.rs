//! Text forms of values: the strings Cassandra accepts for timestamps, dates, times, durations,
//! inet addresses and UUIDs; CQL literals (for DESCRIBE); cqlsh's display format.

use std::net::{IpAddr, Ipv6Addr};

use bigdecimal::BigDecimal;
use uuid::Uuid;

use super::codec::decode_ascii;
use super::cql_type::CqlType;
use super::error::{literal, TypeError};
use super::temporal::{self, civil_from_days, date_to_iso, duration_to_string, time_to_string, DATE_EPOCH};
use super::value::Value;

/// Parses a timestamp string as Cassandra's `TimestampSerializer` does, to milliseconds since
/// the epoch:
///
/// - an integer (`^-?\d+$`): milliseconds;
/// - `yyyy-MM-dd`, optionally followed by `' '` or `'T'` and `HH:mm`, `HH:mm:ss` or
///   `HH:mm:ss.SSS`, optionally followed by a zone: attached `Z`, `+HH`, `+HHmm`, `+HH:mm`,
///   or after a space `UTC`, `GMT`, `UT` (optionally with an offset, `GMT+01:00`) or `+HHmm`.
///
/// Without a zone the time is UTC (Cassandra uses the coordinator's JVM time zone; Sibyl
/// always uses UTC). Fractions of a second have 1 to 3 digits and mean what they say
/// (`.5` = 500 ms; Cassandra 4.0's `SimpleDateFormat` reads `.5` as 5 ms). Named zones other
/// than UTC/GMT (`PST`, `Europe/Paris`) are not supported. `now` is rejected: use
/// [`parse_timestamp_at`].
pub fn parse_timestamp(s: &str) -> Result<i64, TypeError> {
    temporal::parse_timestamp(s, None)
}

/// [`parse_timestamp`], also accepting `now` (any case) as `now_ms`.
pub fn parse_timestamp_at(s: &str, now_ms: i64) -> Result<i64, TypeError> {
    temporal::parse_timestamp(s, Some(now_ms))
}

/// Parses a date string as Cassandra's `SimpleDateSerializer` does: an integer is the raw day
/// number (0 to 2^32-1, epoch at 2^31); otherwise an ISO date `yyyy-mm-dd` (years beyond 9999
/// with `+`, before year 0 with `-`, as `java.time` writes them) within the supported range
/// (-5877641-06-23 to +5881580-07-11).
pub fn parse_date(s: &str) -> Result<u32, TypeError> {
    temporal::parse_date(s)
}

/// Parses a time of day as Cassandra's `TimeSerializer` does: an integer is nanoseconds since
/// midnight; otherwise `hh:mm:ss[.fffffffff]` (surrounding whitespace ignored).
pub fn parse_time(s: &str) -> Result<i64, TypeError> {
    temporal::parse_time(s)
}

/// Parses a duration as Cassandra's `Duration.from` does, to `(months, days, nanoseconds)`:
/// units in decreasing order, each at most once (`1y2mo3w4d5h6m7s8ms9us10ns`, units
/// case-insensitive, `µs` for `us`), ISO 8601 `P1Y2M3DT4H5M6S`, `P2W`, or
/// `P0001-02-03T04:05:06`; a leading `-` negates everything.
pub fn parse_duration(s: &str) -> Result<(i32, i32, i64), TypeError> {
    temporal::parse_duration(s)
}

/// Parses an IPv4 or IPv6 address literal (host names are not resolved, unlike Cassandra's
/// `InetAddress.getByName`).
pub fn parse_inet(s: &str) -> Result<IpAddr, TypeError> {
    s.trim().parse::<IpAddr>().map_err(|_| literal(format!("Unable to make inet address from '{s}'")))
}

/// Parses a UUID in the canonical hyphenated form (`8-4-4-4-12` hex digits, any case), as
/// Cassandra's `UUIDType` does.
pub fn parse_uuid(s: &str) -> Result<Uuid, TypeError> {
    let groups: Vec<&str> = s.split('-').collect();
    let shape_ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !shape_ok {
        return Err(literal(format!("Unable to make UUID from '{s}'")));
    }
    Uuid::parse_str(s).map_err(|_| literal(format!("Unable to make UUID from '{s}'")))
}

/// [`parse_uuid`], requiring a version 1 (time-based) UUID.
pub fn parse_timeuuid(s: &str) -> Result<Uuid, TypeError> {
    let u = parse_uuid(s).map_err(|_| literal(format!("Unknown timeuuid representation: {s}")))?;
    if u.get_version_num() != 1 {
        return Err(literal("TimeUUID supports only version 1 UUIDs"));
    }
    Ok(u)
}

/// Converts the contents of a CQL string literal (`'...'`, quotes removed and `''` unescaped)
/// to a value of `ty`, for the types Cassandra accepts string literals for: `ascii` (validated),
/// `text`, `timestamp`, `date`, `time`, `inet`. Other types are an error.
pub fn from_string_literal(ty: &CqlType, s: &str) -> Result<Value, TypeError> {
    match ty {
        CqlType::Ascii => Ok(Value::Ascii(decode_ascii(s.as_bytes())?)),
        CqlType::Text => Ok(Value::Text(s.to_string())),
        CqlType::Timestamp => Ok(Value::Timestamp(parse_timestamp(s)?)),
        CqlType::Date => Ok(Value::Date(parse_date(s)?)),
        CqlType::Time => Ok(Value::Time(parse_time(s)?)),
        CqlType::Inet => Ok(Value::Inet(parse_inet(s)?)),
        other => Err(literal(format!("Invalid STRING constant ({s}) for a value of type {other}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// CQL literals

/// The CQL literal that reads back as the same value (used by DESCRIBE): strings quoted with
/// `''` doubled, blobs and custom values `0x...`, numbers plain (decimals in Java's
/// `BigDecimal.toString` form, which keeps the scale: `1.50`, `1E+5`), floats in the shortest
/// form that reads back exactly (`NaN`, `Infinity`, `-Infinity`), timestamps quoted ISO 8601 in
/// UTC (`'2011-02-03T04:05:00.000Z'`, or integer milliseconds outside years 1-9999), dates and
/// times quoted, durations unquoted (`1h30m`, `0s` for zero), uuids unquoted, collections
/// `[a, b]`, `{a, b}`, `{k: v}`, tuples `(a, null)`.
///
/// `Empty` has no literal and is written `null`, as Cassandra does.
pub fn to_cql_literal(value: &Value) -> String {
    let mut out = String::new();
    write_literal(value, &mut out);
    out
}

fn quote(s: &str, out: &mut String) {
    out.push('\'');
    out.push_str(&s.replace('\'', "''"));
    out.push('\'');
}

fn hex(bytes: &[u8], out: &mut String) {
    out.push_str("0x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
}

fn write_literal(value: &Value, out: &mut String) {
    match value {
        Value::Empty => out.push_str("null"),
        Value::Ascii(s) | Value::Text(s) => quote(s, out),
        Value::Bigint(v) | Value::Counter(v) => out.push_str(&v.to_string()),
        Value::Int(v) => out.push_str(&v.to_string()),
        Value::Smallint(v) => out.push_str(&v.to_string()),
        Value::Tinyint(v) => out.push_str(&v.to_string()),
        Value::Varint(v) => out.push_str(&v.to_string()),
        Value::Blob(b) | Value::Custom(b) => hex(b, out),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Date(d) => quote(&date_to_iso(*d), out),
        Value::Decimal(d) => out.push_str(&decimal_to_string(d)),
        Value::Double(f) => out.push_str(&float_literal(*f, format!("{f:?}"))),
        Value::Float(f) => out.push_str(&float_literal(f64::from(*f), format!("{f:?}"))),
        Value::Duration { months, days, nanoseconds } => {
            let s = duration_to_string(*months, *days, *nanoseconds);
            out.push_str(if s.is_empty() { "0s" } else { &s });
        }
        Value::Inet(ip) => quote(&ip.to_string(), out),
        Value::Time(t) => quote(&time_to_string(*t), out),
        Value::Timestamp(ms) => match temporal::timestamp_to_iso(*ms) {
            Some(iso) => quote(&iso, out),
            None => out.push_str(&ms.to_string()),
        },
        Value::Timeuuid(u) | Value::Uuid(u) => out.push_str(&u.hyphenated().to_string()),
        Value::List(items) => write_seq(items, '[', ']', out, write_literal),
        Value::Set(items) => write_seq(items, '{', '}', out, write_literal),
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_literal(k, out);
                out.push_str(": ");
                write_literal(v, out);
            }
            out.push('}');
        }
        Value::Tuple(fields) => {
            out.push('(');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match f {
                    Some(v) => write_literal(v, out),
                    None => out.push_str("null"),
                }
            }
            out.push(')');
        }
    }
}

fn write_seq(items: &[Value], open: char, close: char, out: &mut String, each: fn(&Value, &mut String)) {
    out.push(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        each(item, out);
    }
    out.push(close);
}

fn float_literal(f: f64, shortest: String) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        shortest
    }
}

/// Java's `BigDecimal.toString` (identical to Python's `str(Decimal)`): plain notation when the
/// scale is >= 0 and the adjusted exponent >= -6, otherwise scientific with `E+n`/`E-n`.
pub(crate) fn decimal_to_string(d: &BigDecimal) -> String {
    let (unscaled, scale) = d.as_bigint_and_scale();
    let negative = unscaled.sign() == num_bigint::Sign::Minus;
    let digits = unscaled.magnitude().to_string();
    let len = digits.len() as i128;
    let scale = i128::from(scale);
    let adjusted = len - 1 - scale;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if scale >= 0 && adjusted >= -6 {
        if scale == 0 {
            out.push_str(&digits);
        } else if len > scale {
            let point = usize::try_from(len - scale).unwrap_or(0);
            let (int_part, frac_part) = digits.split_at(point.min(digits.len()));
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        } else {
            out.push_str("0.");
            for _ in 0..(scale - len) {
                out.push('0');
            }
            out.push_str(&digits);
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('E');
        if adjusted >= 0 {
            out.push('+');
        }
        out.push_str(&adjusted.to_string());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// cqlsh display

/// The value as cqlsh (Cassandra 4, default settings) displays it: text unquoted at top level
/// (backslashes doubled, control characters escaped as Python's `repr` does) but quoted inside
/// collections; booleans `True`/`False`; blobs `0x...`; floats with 5 and doubles with 12
/// significant digits as cqlsh's `%g` logic does (`1.1`, `1.2346e+05`, `NaN`, `Infinity`);
/// decimals as Python's `str(Decimal)`; timestamps `2011-02-03 04:05:00.000000+0000` in UTC
/// (quoted inside collections; integer milliseconds outside years 1-9999); dates `2011-02-03`
/// (days since the epoch outside years 1-9999); times `04:05:00.000000000`; durations
/// `1h30m`; inet quoted inside collections; collections `[1, 2]`, `{1, 2}`, `{'a': 1}`,
/// tuples `(1, null)`; `Empty` as the empty string.
pub fn to_display(value: &Value) -> String {
    let mut out = String::new();
    write_display(value, false, &mut out);
    out
}

fn write_display(value: &Value, nested: bool, out: &mut String) {
    match value {
        Value::Empty => {}
        Value::Ascii(s) | Value::Text(s) => display_text(s, nested, out),
        Value::Bigint(v) | Value::Counter(v) => out.push_str(&v.to_string()),
        Value::Int(v) => out.push_str(&v.to_string()),
        Value::Smallint(v) => out.push_str(&v.to_string()),
        Value::Tinyint(v) => out.push_str(&v.to_string()),
        Value::Varint(v) => out.push_str(&v.to_string()),
        Value::Blob(b) | Value::Custom(b) => hex(b, out),
        Value::Boolean(b) => out.push_str(if *b { "True" } else { "False" }),
        Value::Date(d) => out.push_str(&cqlsh_date(*d)),
        Value::Decimal(d) => out.push_str(&decimal_to_string(d)),
        Value::Double(f) => out.push_str(&cqlsh_float(*f, 12)),
        Value::Float(f) => out.push_str(&cqlsh_float(f64::from(*f), 5)),
        Value::Duration { months, days, nanoseconds } => {
            out.push_str(&duration_to_string(*months, *days, *nanoseconds))
        }
        Value::Inet(ip) => {
            let s = display_inet(ip);
            if nested {
                quote(&s, out);
            } else {
                out.push_str(&s);
            }
        }
        Value::Time(t) => out.push_str(&time_to_string(*t)),
        Value::Timestamp(ms) => {
            let s = cqlsh_timestamp(*ms);
            if nested {
                quote(&s, out);
            } else {
                out.push_str(&s);
            }
        }
        Value::Timeuuid(u) | Value::Uuid(u) => out.push_str(&u.hyphenated().to_string()),
        Value::List(items) => write_seq(items, '[', ']', out, |v, o| write_display(v, true, o)),
        Value::Set(items) => write_seq(items, '{', '}', out, |v, o| write_display(v, true, o)),
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_display(k, true, out);
                out.push_str(": ");
                write_display(v, true, out);
            }
            out.push('}');
        }
        Value::Tuple(fields) => {
            out.push('(');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match f {
                    Some(v) => write_display(v, true, out),
                    None => out.push_str("null"),
                }
            }
            out.push(')');
        }
    }
}

/// cqlsh's `format_value_text`: backslashes doubled, quotes doubled and the whole quoted when
/// nested, characters U+0000-U+001F and U+007F-U+00A0 shown as Python's `repr` shows them.
fn display_text(s: &str, nested: bool, out: &mut String) {
    if nested {
        out.push('\'');
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' if nested => out.push_str("''"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{a0}' => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    if nested {
        out.push('\'');
    }
}

/// The Python driver's `Date.__str__`: ISO for years 1-9999, else days since the epoch.
fn cqlsh_date(d: u32) -> String {
    let days = i64::from(d) - DATE_EPOCH;
    let (y, m, day) = civil_from_days(days);
    if (1..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{day:02}")
    } else {
        days.to_string()
    }
}

/// cqlsh's timestamp display: the driver turns the milliseconds into a Python datetime via
/// `timedelta(seconds=ms / 1000.0)` (rounding to microseconds as CPython does), cqlsh formats it
/// with `%Y-%m-%d %H:%M:%S.%f%z` in UTC (`%Y` unpadded below year 1000, as glibc does), and
/// falls back to the integer milliseconds outside Python's years 1-9999.
fn cqlsh_timestamp(ms: i64) -> String {
    const US_PER_DAY: i128 = 86_400_000_000;
    // Python datetime range: 0001-01-01T00:00:00 to 9999-12-31T23:59:59.999999.
    let min_us = i128::from(temporal::days_from_civil(1, 1, 1)) * US_PER_DAY;
    let max_us = i128::from(temporal::days_from_civil(10_000, 1, 1)) * US_PER_DAY - 1;
    let seconds = ms as f64 / 1000.0;
    let int_part = seconds.trunc();
    let frac = seconds - int_part;
    // |int_part| < 2^63 / 1000 for every i64 ms, so the conversion is exact.
    let mut total = (int_part as i128) * 1_000_000;
    let frac_us = frac * 1e6;
    let whole = frac_us.trunc();
    total += whole as i128;
    let leftover = frac_us - whole;
    let mut rounded = leftover.round();
    if (rounded - leftover).abs() == 0.5 {
        // CPython rounds half to even using the parity of the accumulated microseconds.
        let odd = (total & 1) as f64;
        rounded = 2.0 * ((leftover + odd) * 0.5).round() - odd;
    }
    total += rounded as i128;
    if total < min_us || total > max_us {
        return ms.to_string();
    }
    let days = total.div_euclid(US_PER_DAY);
    let us_of_day = total.rem_euclid(US_PER_DAY);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    let secs = us_of_day / 1_000_000;
    let micros = us_of_day % 1_000_000;
    format!("{y}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}+0000", secs / 3600, (secs / 60) % 60, secs % 60)
}

/// cqlsh's `format_floating_point_type` with the given precision (5 for float, 12 for double).
fn cqlsh_float(v: f64, precision: i64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let mut precision = precision;
    if v.abs() > f64::EPSILON {
        // Python's int() truncates toward zero.
        let exponent = v.abs().log10().trunc() as i64;
        if (-4..precision).contains(&exponent) {
            precision += exponent + 1;
        }
    }
    python_g(v, usize::try_from(precision).unwrap_or(1))
}

/// Python's `'%.*g' % (precision, v)` for finite `v`.
fn python_g(v: f64, precision: usize) -> String {
    let p = precision.max(1);
    // Scientific form with p significant digits, correctly rounded (half to even), as Python.
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let p_i = i64::try_from(p).unwrap_or(i64::MAX);
    if (-4..p_i).contains(&exp) {
        // Fixed notation with p - 1 - exp decimals, trailing zeros removed.
        let mut s = if exp >= 0 {
            let point = usize::try_from(exp + 1).unwrap_or(0);
            let (int_part, frac_part) = digits.split_at(point.min(digits.len()));
            let mut s = int_part.to_string();
            for _ in digits.len()..point {
                s.push('0');
            }
            if !frac_part.is_empty() {
                s.push('.');
                s.push_str(frac_part);
            }
            s
        } else {
            let mut s = String::from("0.");
            for _ in 0..(-exp - 1) {
                s.push('0');
            }
            s.push_str(&digits);
            s
        };
        if s.contains('.') {
            let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
            s.truncate(trimmed);
        }
        out.push_str(&s);
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        let rest = rest.trim_end_matches('0');
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

/// An IPv6 address as glibc's `inet_ntop` writes it (what the Python driver, and so cqlsh,
/// shows): RFC 5952 compression, with an embedded IPv4 address for IPv4-mapped (`::ffff:a.b.c.d`)
/// and IPv4-compatible (`::a.b.c.d`) addresses.
fn display_inet(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => display_ipv6(a),
    }
}

fn display_ipv6(a: &Ipv6Addr) -> String {
    let [.., o12, o13, o14, o15] = a.octets();
    let v4 = format!("{o12}.{o13}.{o14}.{o15}");
    match a.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] => format!("::ffff:{v4}"),
        [0, 0, 0, 0, 0, 0, s6, _] if s6 != 0 => format!("::{v4}"),
        _ => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use bytes::Bytes;
    use num_bigint::BigInt;

    use super::*;

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    #[test]
    fn python_percent_g() {
        // Expected values from CPython: '%.*g' % (p, v).
        let cases: [(f64, usize, &str); 12] = [
            (1.100000023841858, 6, "1.1"),
            (123456.703125, 5, "1.2346e+05"),
            (1e-5, 12, "1e-05"),
            (0.0, 5, "0"),
            (-0.0, 5, "-0"),
            (0.5, 6, "0.5"),
            (1e16, 12, "1e+16"),
            (123456789012.5, 24, "123456789012.5"),
            (3.4028234663852886e38, 5, "3.4028e+38"),
            (100.0, 8, "100"),
            (0.0001, 2, "0.0001"),
            (2.5, 1, "2"),
        ];
        for (v, p, expected) in cases {
            assert_eq!(python_g(v, p), expected, "{v} {p}");
        }
    }

    #[test]
    fn cqlsh_floats() {
        // Expected values from CPython running cqlsh's format_floating_point_type.
        let cases: [(f64, i64, &str); 19] = [
            (f64::from(1.1_f32), 5, "1.1"),
            (f64::from(123456.7_f32), 5, "1.2346e+05"),
            (f64::from(12345.67_f32), 5, "12345.66992"),
            (0.1, 12, "0.1"),
            (1.0 / 3.0, 12, "0.3333333333333"),
            (2.0 / 3.0, 12, "0.6666666666667"),
            (1e-5, 12, "1e-05"),
            (123456789012.0, 12, "123456789012"),
            (1e12, 12, "1e+12"),
            (-0.0, 12, "-0"),
            (1e-300, 12, "1e-300"),
            (f64::from(1.5_f32), 5, "1.5"),
            (f64::from(0.1_f32), 5, "0.1"),
            (1234.5678, 12, "1234.5678"),
            (f64::from(4.56789_f32), 5, "4.56789"),
            (0.000123456, 12, "0.000123456"),
            (9.999999e-5, 12, "9.999999e-05"),
            (99999.5, 5, "99999.5"),
            (f64::NAN, 12, "NaN"),
        ];
        for (v, p, expected) in cases {
            assert_eq!(cqlsh_float(v, p), expected, "{v} {p}");
        }
        assert_eq!(cqlsh_float(f64::NEG_INFINITY, 12), "-Infinity");
    }

    #[test]
    fn decimals_print_like_java_and_python() {
        let cases = [
            ("1.5", "1.5"),
            ("1.50", "1.50"),
            ("-1.5", "-1.5"),
            ("0", "0"),
            ("0.00", "0.00"),
            ("0.0000001", "1E-7"),
            ("0.000001", "0.000001"),
            ("0.00000123", "0.00000123"),
            ("-0.0000012345", "-0.0000012345"),
            ("123.456", "123.456"),
        ];
        for (input, expected) in cases {
            assert_eq!(decimal_to_string(&dec(input)), expected, "{input}");
        }
        assert_eq!(decimal_to_string(&BigDecimal::new(BigInt::from(1), -5)), "1E+5");
        assert_eq!(decimal_to_string(&BigDecimal::new(BigInt::from(0), -2)), "0E+2");
        assert_eq!(decimal_to_string(&BigDecimal::new(BigInt::from(123), -1)), "1.23E+3");
        assert_eq!(decimal_to_string(&BigDecimal::new(BigInt::from(-123), 10)), "-1.23E-8");
    }

    #[test]
    fn cqlsh_timestamps() {
        assert_eq!(cqlsh_timestamp(1_296_705_900_000), "2011-02-03 04:05:00.000000+0000");
        assert_eq!(cqlsh_timestamp(1_296_705_900_123), "2011-02-03 04:05:00.123000+0000");
        assert_eq!(cqlsh_timestamp(-1), "1969-12-31 23:59:59.999000+0000");
        assert_eq!(cqlsh_timestamp(0), "1970-01-01 00:00:00.000000+0000");
        // Year 5: glibc's %Y is not padded.
        assert_eq!(cqlsh_timestamp(-62_009_366_400_000), "5-01-01 00:00:00.000000+0000");
        // Far from 1970 the driver's float arithmetic shows (as cqlsh does) odd microseconds;
        // expected values from CPython: datetime(1970,1,1) + timedelta(seconds=ms / 1000.0).
        assert_eq!(cqlsh_timestamp(95_231_309_514_670), "4987-10-05 05:31:54.669998+0000");
        assert_eq!(cqlsh_timestamp(253_402_300_799_999), "9999-12-31 23:59:59.998993+0000");
        assert_eq!(cqlsh_timestamp(32_503_680_000_001), "3000-01-01 00:00:00.000999+0000");
        assert_eq!(cqlsh_timestamp(-62_135_596_800_000), "1-01-01 00:00:00.000000+0000");
        assert_eq!(cqlsh_timestamp(-62_135_596_800_001), "-62135596800001");
        assert_eq!(cqlsh_timestamp(253_402_300_800_000), "253402300800000");
        assert_eq!(cqlsh_timestamp(i64::MAX), i64::MAX.to_string());
        assert_eq!(cqlsh_timestamp(i64::MIN), i64::MIN.to_string());
    }

    #[test]
    fn text_display_escapes_like_cqlsh() {
        assert_eq!(to_display(&Value::Text("it's".into())), "it's");
        assert_eq!(
            to_display(&Value::Text("a\\b\n\t\u{1}\u{7f}\u{a0}é".into())),
            "a\\\\b\\n\\t\\x01\\x7f\\xa0é"
        );
        assert_eq!(
            to_display(&Value::List(vec![Value::Text("it's".into()), Value::Text("x".into())])),
            "['it''s', 'x']"
        );
    }

    #[test]
    fn inet_display_matches_glibc() {
        let d = |s: &str| display_inet(&s.parse().unwrap());
        assert_eq!(d("127.0.0.1"), "127.0.0.1");
        assert_eq!(d("::1"), "::1");
        assert_eq!(d("::"), "::");
        assert_eq!(d("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(d("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(d("2001:db8::1"), "2001:db8::1");
        assert_eq!(d("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
    }

    #[test]
    fn uuids_parse_strictly() {
        assert!(parse_uuid("123e4567-e89b-12d3-a456-426614174000").is_ok());
        assert!(parse_uuid("123E4567-E89B-12D3-A456-426614174000").is_ok());
        assert!(parse_uuid("123e4567e89b12d3a456426614174000").is_err());
        assert!(parse_uuid("{123e4567-e89b-12d3-a456-426614174000}").is_err());
        assert!(parse_uuid("123e4567-e89b-12d3-a456-42661417400").is_err());
        assert!(parse_timeuuid("123e4567-e89b-12d3-a456-426614174000").is_ok());
        assert!(parse_timeuuid("123e4567-e89b-42d3-a456-426614174000").is_err());
        assert!(
            parse_inet("::1").is_ok() && parse_inet("1.2.3.4").is_ok() && parse_inet("localhost").is_err()
        );
    }

    #[test]
    fn literals() {
        let cases: Vec<(Value, &str)> = vec![
            (Value::Text("it's".into()), "'it''s'"),
            (Value::Ascii(String::new()), "''"),
            (Value::Blob(Bytes::from_static(&[0xca, 0xfe])), "0xcafe"),
            (Value::Blob(Bytes::new()), "0x"),
            (Value::Boolean(true), "true"),
            (Value::Timestamp(1_296_705_900_000), "'2011-02-03T04:05:00.000Z'"),
            (Value::Timestamp(-62_135_596_800_001), "-62135596800001"),
            (Value::Date((1 << 31) + 15_008), "'2011-02-03'"),
            (Value::Time(1), "'00:00:00.000000001'"),
            (Value::Duration { months: 0, days: 0, nanoseconds: 5_400_000_000_000 }, "1h30m"),
            (Value::Duration { months: 0, days: 0, nanoseconds: 0 }, "0s"),
            (Value::Double(0.1), "0.1"),
            (Value::Double(1e300), "1e300"),
            (Value::Float(1.1), "1.1"),
            (Value::Float(f32::NAN), "NaN"),
            (Value::Double(f64::NEG_INFINITY), "-Infinity"),
            (Value::Decimal(BigDecimal::new(BigInt::from(150), 2)), "1.50"),
            (Value::Inet("::1".parse().unwrap()), "'::1'"),
            (Value::Tuple(vec![Some(Value::Int(1)), None]), "(1, null)"),
            (
                Value::Map(vec![(Value::Text("a".into()), Value::List(vec![Value::Int(1), Value::Int(2)]))]),
                "{'a': [1, 2]}",
            ),
            (Value::Set(vec![]), "{}"),
            (Value::Empty, "null"),
        ];
        for (v, expected) in cases {
            assert_eq!(to_cql_literal(&v), expected);
        }
    }

    #[test]
    fn display() {
        let u = Uuid::parse_str("123e4567-e89b-12d3-a456-426614174000").unwrap();
        let cases: Vec<(Value, &str)> = vec![
            (Value::Boolean(false), "False"),
            (Value::Timestamp(1_296_705_900_000), "2011-02-03 04:05:00.000000+0000"),
            (Value::List(vec![Value::Timestamp(0)]), "['1970-01-01 00:00:00.000000+0000']"),
            (Value::Date((1 << 31) + 15_008), "2011-02-03"),
            (Value::Date(0), "-2147483648"),
            (Value::Time(4 * 3_600_000_000_000), "04:00:00.000000000"),
            (Value::Uuid(u), "123e4567-e89b-12d3-a456-426614174000"),
            (Value::List(vec![Value::Uuid(u)]), "[123e4567-e89b-12d3-a456-426614174000]"),
            (Value::Set(vec![Value::Inet("1.2.3.4".parse().unwrap())]), "{'1.2.3.4'}"),
            (Value::Inet("1.2.3.4".parse().unwrap()), "1.2.3.4"),
            (Value::Map(vec![(Value::Text("a".into()), Value::Int(1))]), "{'a': 1}"),
            (Value::Tuple(vec![Some(Value::Int(1)), None, Some(Value::Text("x".into()))]), "(1, null, 'x')"),
            (Value::Blob(Bytes::from_static(&[1, 0xff])), "0x01ff"),
            (Value::Duration { months: 14, days: 0, nanoseconds: 0 }, "1y2mo"),
            (Value::Empty, ""),
            (Value::Float(1.5), "1.5"),
            (Value::Double(0.1), "0.1"),
            (Value::Varint(BigInt::from(-5)), "-5"),
        ];
        for (v, expected) in cases {
            assert_eq!(to_display(&v), expected);
        }
    }
}
