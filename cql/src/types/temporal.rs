//! Calendar arithmetic and the string forms of `timestamp`, `date`, `time` and `duration`.
//!
//! Dates use the proleptic Gregorian calendar throughout (as Cassandra's `date` type and
//! `java.time` do), with day numbers far beyond chrono's range (Cassandra's `date` spans
//! about ±5.8 million years).

use super::error::{literal, TypeError};

pub(crate) const MILLIS_PER_DAY: i64 = 86_400_000;
pub(crate) const NANOS_PER_MICRO: i64 = 1_000;
pub(crate) const NANOS_PER_MILLI: i64 = 1_000_000;
pub(crate) const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub(crate) const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
pub(crate) const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;
pub(crate) const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;
/// Cassandra's `date` stores days with the Unix epoch at 2^31.
pub(crate) const DATE_EPOCH: i64 = 1 << 31;

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12, day 1..=31).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day number (days since 1970-01-01).
/// Valid for |days| up to about 2^60.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction.
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A tiny byte cursor for the hand-written parsers below.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Cursor<'a> {
        Cursor { s: s.as_bytes(), i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Between `min` and `max` ASCII digits (greedy), as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let mut n: i64 = 0;
        let mut count = 0;
        while count < max {
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
                    self.i += 1;
                    count += 1;
                }
                _ => break,
            }
        }
        (count >= min).then_some(n)
    }

    /// Number of digits available at the cursor.
    fn digit_run(&self) -> usize {
        self.s.get(self.i..).map_or(0, |rest| rest.iter().take_while(|b| b.is_ascii_digit()).count())
    }

    fn rest_eq_ignore_case(&self, word: &str) -> bool {
        self.s.get(self.i..self.i + word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    }
}

/// `^-?\d+$`
fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// timestamp

/// Parses a timestamp string (see [`crate::types::parse_timestamp`]).
pub(crate) fn parse_timestamp(source: &str, now_ms: Option<i64>) -> Result<i64, TypeError> {
    if source.eq_ignore_ascii_case("now") {
        return now_ms.ok_or_else(|| {
            literal("'now' is not a constant timestamp: the current time must be supplied by the caller")
        });
    }
    if is_integer(source) {
        return source
            .parse::<i64>()
            .map_err(|_| literal(format!("Unable to make long (for date) from: '{source}'")));
    }
    parse_timestamp_text(source)
        .ok_or_else(|| literal(format!("Unable to coerce '{source}' to a formatted date (long)")))
}

fn parse_timestamp_text(source: &str) -> Option<i64> {
    let mut c = Cursor::new(source);
    let year = c.digits(1, 9)?;
    if !c.eat(b'-') {
        return None;
    }
    let month = u32::try_from(c.digits(1, 2)?).ok()?;
    if !c.eat(b'-') {
        return None;
    }
    let day = u32::try_from(c.digits(1, 2)?).ok()?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut millis_of_day: i64 = 0;
    // A time of day follows a 'T', or a space followed by a digit (a space followed by anything
    // else introduces a time zone).
    let has_time = match c.peek() {
        Some(b'T') => true,
        Some(b' ') => c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    };
    if has_time {
        c.i += 1;
        let hour = c.digits(1, 2)?;
        if !c.eat(b':') {
            return None;
        }
        let minute = c.digits(1, 2)?;
        let mut second = 0;
        let mut millis = 0;
        if c.eat(b':') {
            second = c.digits(1, 2)?;
            if c.eat(b'.') {
                let run = c.digit_run();
                if !(1..=3).contains(&run) {
                    return None;
                }
                let frac = c.digits(1, 3)?;
                millis = frac * 10_i64.pow(3 - u32::try_from(run).ok()?);
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        millis_of_day = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    }
    let offset_minutes = if c.at_end() { 0 } else { parse_zone(&mut c)? };
    if !c.at_end() {
        return None;
    }
    let days = i128::from(days_from_civil(year, month, day));
    let ms =
        days * i128::from(MILLIS_PER_DAY) + i128::from(millis_of_day) - i128::from(offset_minutes) * 60_000;
    i64::try_from(ms).ok()
}

/// A time zone after a date or time: attached ISO 8601 (`Z`, `+01`, `+0100`, `+01:00`) or, after
/// a space, `UTC`/`GMT`/`UT` optionally followed by an offset, or an RFC 822 offset (`+0100`).
/// Returns the offset in minutes east of UTC.
fn parse_zone(c: &mut Cursor<'_>) -> Option<i64> {
    if c.eat(b' ') {
        for name in ["UTC", "GMT", "UT", "Z"] {
            if c.rest_eq_ignore_case(name) {
                c.i += name.len();
                if c.at_end() {
                    return Some(0);
                }
                return parse_offset(c, true);
            }
        }
        return parse_offset(c, false);
    }
    if c.eat(b'Z') {
        return Some(0);
    }
    parse_offset(c, false)
}

/// `±HH`, `±HHMM`, `±HH:MM` (or `±H`, `±H:MM` after a zone name, as `GMT+1:00`).
fn parse_offset(c: &mut Cursor<'_>, after_name: bool) -> Option<i64> {
    let sign = match c.peek()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    c.i += 1;
    let hours = c.digits(if after_name { 1 } else { 2 }, 2)?;
    let colon = c.eat(b':');
    let minutes = if colon || c.digit_run() == 2 { c.digits(2, 2)? } else { 0 };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 60 + minutes))
}

/// `yyyy-MM-ddTHH:mm:ss.SSSZ` in UTC, for years 1..=9999 (Cassandra's CQL literal form).
pub(crate) fn timestamp_to_iso(ms: i64) -> Option<String> {
    let days = ms.div_euclid(MILLIS_PER_DAY);
    let ms_of_day = ms.rem_euclid(MILLIS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    if !(1..=9999).contains(&y) {
        return None;
    }
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    Some(format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z"))
}

// ---------------------------------------------------------------------------------------------
// date

/// Parses a date string (see [`crate::types::parse_date`]).
pub(crate) fn parse_date(source: &str) -> Result<u32, TypeError> {
    if is_integer(source) {
        return source
            .parse::<i64>()
            .ok()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| literal(format!("Unable to make unsigned int (for date) from: '{source}'")));
    }
    let days = parse_iso_date(source)
        .ok_or_else(|| literal(format!("Unable to coerce '{source}' to a formatted date (long)")))?;
    if days < i64::from(i32::MIN) {
        return Err(literal(format!(
            "Input date {source} is less than min supported date {}",
            date_to_iso(0)
        )));
    }
    if days > i64::from(i32::MAX) {
        return Err(literal(format!(
            "Input date {source} is greater than max supported date {}",
            date_to_iso(u32::MAX)
        )));
    }
    u32::try_from(days + DATE_EPOCH).map_err(|_| literal(format!("Date out of range: '{source}'")))
}

/// ISO local date as `java.time`'s strict `ISO_LOCAL_DATE` reads it: a 4-digit year, or a
/// signed year (`+` required beyond 4 digits, `-` for years before 0), 2-digit month and day.
fn parse_iso_date(source: &str) -> Option<i64> {
    let mut c = Cursor::new(source);
    let sign = match c.peek()? {
        b'+' => Some(1),
        b'-' => Some(-1),
        _ => None,
    };
    if sign.is_some() {
        c.i += 1;
    }
    let run = c.digit_run();
    let valid_width = match sign {
        None => run == 4,
        Some(1) => (5..=9).contains(&run),
        Some(_) => (4..=9).contains(&run),
    };
    if !valid_width {
        return None;
    }
    let year = c.digits(run, run)? * sign.unwrap_or(1);
    if !c.eat(b'-') {
        return None;
    }
    let month = u32::try_from(c.digits(2, 2)?).ok()?;
    if !c.eat(b'-') {
        return None;
    }
    let day = u32::try_from(c.digits(2, 2)?).ok()?;
    if !c.at_end() || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// The ISO local date of a `date` value, as `java.time` prints it (`2011-02-03`,
/// `+10000-01-01`, `-0001-12-31`).
pub(crate) fn date_to_iso(date: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(date) - DATE_EPOCH);
    if y > 9999 {
        format!("+{y}-{m:02}-{d:02}")
    } else if y < 0 {
        format!("-{:04}-{m:02}-{d:02}", y.unsigned_abs())
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

// ---------------------------------------------------------------------------------------------
// time

/// Parses a time string (see [`crate::types::parse_time`]).
pub(crate) fn parse_time(source: &str) -> Result<i64, TypeError> {
    if is_integer(source) {
        return source
            .parse::<i64>()
            .ok()
            .filter(|v| (0..NANOS_PER_DAY).contains(v))
            .ok_or_else(|| literal(format!("Unable to make long (for time) from: '{source}'")));
    }
    parse_time_strictly(source.trim()).map_err(|why| {
        literal(format!("(TimeType) Unable to coerce '{source}' to a formatted time (long): {why}"))
    })
}

/// `hh:mm:ss[.fffffffff]`, following Cassandra's `TimeSerializer.parseTimeStrictly`.
fn parse_time_strictly(s: &str) -> Result<i64, &'static str> {
    const FORMAT: &str = "Timestamp format must be hh:mm:ss[.fffffffff]";
    let number = |part: &str| -> Result<i64, &'static str> {
        if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FORMAT);
        }
        part.parse::<i64>().map_err(|_| FORMAT)
    };
    let (hour_s, rest) = s.split_once(':').ok_or(FORMAT)?;
    let (minute_s, rest) = rest.split_once(':').ok_or(FORMAT)?;
    if hour_s.is_empty() || rest.is_empty() {
        return Err(FORMAT);
    }
    let hour = number(hour_s)?;
    if hour >= 24 {
        return Err("Hour out of bounds.");
    }
    let minute = number(minute_s)?;
    if minute >= 60 {
        return Err("Minute out of bounds.");
    }
    let (second_s, nanos) = match rest.split_once('.') {
        Some((_, "")) => return Err(FORMAT),
        Some((second_s, frac)) => {
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FORMAT);
            }
            let padding = 10_i64.pow(9 - u32::try_from(frac.len()).map_err(|_| FORMAT)?);
            (second_s, number(frac)? * padding)
        }
        None => (rest, 0),
    };
    let second = number(second_s)?;
    if second >= 60 {
        return Err("Second out of bounds.");
    }
    Ok(hour * NANOS_PER_HOUR + minute * NANOS_PER_MINUTE + second * NANOS_PER_SECOND + nanos)
}

/// `HH:MM:SS.nnnnnnnnn` (Cassandra's `TimeSerializer.toString`, also cqlsh's display).
pub(crate) fn time_to_string(t: i64) -> String {
    let t = t.rem_euclid(NANOS_PER_DAY);
    let (h, rest) = (t / NANOS_PER_HOUR, t % NANOS_PER_HOUR);
    let (m, rest) = (rest / NANOS_PER_MINUTE, rest % NANOS_PER_MINUTE);
    let (s, n) = (rest / NANOS_PER_SECOND, rest % NANOS_PER_SECOND);
    format!("{h:02}:{m:02}:{s:02}.{n:09}")
}

// ---------------------------------------------------------------------------------------------
// duration

/// Builds a duration from units given in order (Cassandra's `Duration.Builder`).
struct DurationBuilder {
    negative: bool,
    months: i64,
    days: i64,
    nanos: i64,
    unit: u8,
}

const UNIT_NAMES: [&str; 11] = [
    "",
    "years",
    "months",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
    "milliseconds",
    "microseconds",
    "nanoseconds",
];

fn unit_name(index: u8) -> &'static str {
    UNIT_NAMES.get(usize::from(index)).copied().unwrap_or("")
}

impl DurationBuilder {
    fn new(negative: bool) -> DurationBuilder {
        DurationBuilder { negative, months: 0, days: 0, nanos: 0, unit: 0 }
    }

    fn order(&mut self, index: u8) -> Result<(), TypeError> {
        if index == self.unit {
            return Err(literal(format!(
                "Invalid duration. The {} are specified multiple times",
                unit_name(index)
            )));
        }
        if index < self.unit {
            return Err(literal(format!(
                "Invalid duration. The {} should be after {}",
                unit_name(self.unit),
                unit_name(index)
            )));
        }
        self.unit = index;
        Ok(())
    }

    /// Adds `n` of unit `index` (1 = years .. 10 = nanoseconds).
    fn add(&mut self, index: u8, n: i64) -> Result<(), TypeError> {
        self.order(index)?;
        let too_big = |what: &str, max: i64| {
            literal(format!("Invalid duration. The total number of {what} must be less or equal to {max}"))
        };
        let i32_max = i64::from(i32::MAX);
        match index {
            1 | 2 => {
                let per = if index == 1 { 12 } else { 1 };
                if n > (i32_max - self.months) / per {
                    return Err(too_big("months", i32_max));
                }
                self.months += n * per;
            }
            3 | 4 => {
                let per = if index == 3 { 7 } else { 1 };
                if n > (i32_max - self.days) / per {
                    return Err(too_big("days", i32_max));
                }
                self.days += n * per;
            }
            _ => {
                let per = match index {
                    5 => NANOS_PER_HOUR,
                    6 => NANOS_PER_MINUTE,
                    7 => NANOS_PER_SECOND,
                    8 => NANOS_PER_MILLI,
                    9 => NANOS_PER_MICRO,
                    _ => 1,
                };
                if n > (i64::MAX - self.nanos) / per {
                    return Err(too_big("nanoseconds", i64::MAX));
                }
                self.nanos += n * per;
            }
        }
        Ok(())
    }

    fn build(self) -> (i32, i32, i64) {
        // add() keeps months and days within i32 and everything non-negative.
        let months = i32::try_from(self.months).unwrap_or(i32::MAX);
        let days = i32::try_from(self.days).unwrap_or(i32::MAX);
        if self.negative {
            (-months, -days, -self.nanos)
        } else {
            (months, days, self.nanos)
        }
    }
}

/// Parses a duration (see [`crate::types::parse_duration`]).
pub(crate) fn parse_duration(input: &str) -> Result<(i32, i32, i64), TypeError> {
    let negative = input.starts_with('-');
    let source = input.strip_prefix('-').unwrap_or(input);
    let fail = || literal(format!("Unable to convert '{source}' to a duration"));
    let mut b = DurationBuilder::new(negative);
    if let Some(body) = source.strip_prefix('P') {
        let mut c = Cursor::new(body);
        if source.ends_with('W') {
            // P(\d+)W
            let weeks = number_run(&mut c).ok_or_else(fail)?;
            if !c.eat(b'W') || !c.at_end() {
                return Err(fail());
            }
            b.add(3, weeks)?;
        } else if source.contains('-') {
            // P(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})
            let mut fields = [0_i64; 6];
            for (i, field) in fields.iter_mut().enumerate() {
                let (width, sep) = match i {
                    0 => (4, Some(b'-')),
                    1 => (2, Some(b'-')),
                    2 => (2, Some(b'T')),
                    3 | 4 => (2, Some(b':')),
                    _ => (2, None),
                };
                *field = c.digits(width, width).ok_or_else(fail)?;
                if let Some(sep) = sep {
                    if !c.eat(sep) {
                        return Err(fail());
                    }
                }
            }
            if !c.at_end() {
                return Err(fail());
            }
            for (i, n) in fields.iter().enumerate() {
                let index = [1, 2, 4, 5, 6, 7].get(i).copied().unwrap_or(7);
                b.add(index, *n)?;
            }
        } else {
            // P(nY)?(nM)?(nD)?(T(nH)?(nM)?(nS)?)?
            for (designator, index) in [(b'Y', 1), (b'M', 2), (b'D', 4)] {
                let save = c.i;
                match number_run(&mut c) {
                    Some(n) if c.eat(designator) => b.add(index, n)?,
                    _ => c.i = save,
                }
            }
            if c.eat(b'T') {
                for (designator, index) in [(b'H', 5), (b'M', 6), (b'S', 7)] {
                    let save = c.i;
                    match number_run(&mut c) {
                        Some(n) if c.eat(designator) => b.add(index, n)?,
                        _ => c.i = save,
                    }
                }
            }
            if !c.at_end() {
                return Err(fail());
            }
        }
        return Ok(b.build());
    }
    // (\d+)(unit) repeated, covering the whole input.
    let mut chars = source.char_indices().peekable();
    let mut any = false;
    while chars.peek().is_some() {
        let start = chars.peek().map_or(0, |&(i, _)| i);
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if c.is_ascii_digit() {
                end = i + 1;
                chars.next();
            } else {
                break;
            }
        }
        if end == start {
            return Err(fail());
        }
        let n: i64 = source.get(start..end).and_then(|d| d.parse().ok()).ok_or_else(fail)?;
        let first = chars.next().map(|(_, c)| c.to_ascii_lowercase()).ok_or_else(fail)?;
        let second = chars.peek().map(|&(_, c)| c.to_ascii_lowercase());
        let index = match (first, second) {
            ('m', Some('o')) => 2,
            ('m', Some('s')) => 8,
            ('u' | 'µ' | 'μ', Some('s')) => 9,
            ('n', Some('s')) => 10,
            ('y', _) => 1,
            ('w', _) => 3,
            ('d', _) => 4,
            ('h', _) => 5,
            ('m', _) => 6,
            ('s', _) => 7,
            _ => return Err(fail()),
        };
        if matches!(index, 2 | 8 | 9 | 10) {
            chars.next();
        }
        b.add(index, n)?;
        any = true;
    }
    if !any {
        return Err(fail());
    }
    Ok(b.build())
}

fn number_run(c: &mut Cursor<'_>) -> Option<i64> {
    let run = c.digit_run();
    if run == 0 {
        return None;
    }
    c.digits(run, run)
}

/// Cassandra's `Duration.toString` (also cqlsh's display): `1y2mo3d4h5m6s7ms8us9ns`,
/// a leading `-` for negative durations, the empty string for a zero duration.
pub(crate) fn duration_to_string(months: i32, days: i32, nanoseconds: i64) -> String {
    let mut out = String::new();
    if months < 0 || days < 0 || nanoseconds < 0 {
        out.push('-');
    }
    let mut append = |dividend: u64, divisor: u64, unit: &str| -> u64 {
        if dividend == 0 || dividend < divisor {
            return dividend;
        }
        out.push_str(&(dividend / divisor).to_string());
        out.push_str(unit);
        dividend % divisor
    };
    let remainder = append(u64::from(months.unsigned_abs()), 12, "y");
    append(remainder, 1, "mo");
    append(u64::from(days.unsigned_abs()), 1, "d");
    if nanoseconds != 0 {
        let units: [(u64, &str); 6] = [
            (NANOS_PER_HOUR.unsigned_abs(), "h"),
            (NANOS_PER_MINUTE.unsigned_abs(), "m"),
            (NANOS_PER_SECOND.unsigned_abs(), "s"),
            (NANOS_PER_MILLI.unsigned_abs(), "ms"),
            (NANOS_PER_MICRO.unsigned_abs(), "us"),
            (1, "ns"),
        ];
        let mut remainder = nanoseconds.unsigned_abs();
        for (divisor, unit) in units {
            remainder = append(remainder, divisor, unit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_conversions_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(i64::from(i32::MIN)), (-5_877_641, 6, 23));
        assert_eq!(civil_from_days(i64::from(i32::MAX)), (5_881_580, 7, 11));
        for d in (-800_000..800_000).step_by(7) {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn timestamps_in_cassandras_formats() {
        let base = 1_296_705_900_000; // 2011-02-03 04:05:00 UTC
        let cases = [
            ("2011-02-03 04:05", base),
            ("2011-02-03 04:05:00", base),
            ("2011-02-03 04:05:00.000", base),
            ("2011-02-03 04:05:00.123", base + 123),
            ("2011-02-03 04:05:00.5", base + 500),
            ("2011-02-03 04:05:00.000+0000", base),
            ("2011-02-03 04:05+0000", base),
            ("2011-02-03T04:05:00Z", base),
            ("2011-02-03T04:05:00.000Z", base),
            ("2011-02-03T04:05", base),
            ("2011-02-03T05:05:00+01:00", base),
            ("2011-02-03T05:05:00+01", base),
            ("2011-02-03T05:05:00+0100", base),
            ("2011-02-03T03:05:00-0100", base),
            ("2011-02-03 05:05:00 +0100", base),
            ("2011-02-03 05:05:00 GMT+01:00", base),
            ("2011-02-03 04:05:00 UTC", base),
            ("2011-02-03 04:05 GMT", base),
            ("2011-02-03", base - 4 * 3_600_000 - 5 * 60_000),
            ("2011-02-03Z", base - 4 * 3_600_000 - 5 * 60_000),
            ("2011-02-03+0100", base - 5 * 3_600_000 - 5 * 60_000),
            ("2011-02-03 UTC", base - 4 * 3_600_000 - 5 * 60_000),
            ("2011-2-3 4:05", base),
            ("1296705900000", base),
            ("-1", -1),
            ("1969-12-31 23:59:59.999", -1),
            ("0001-01-01", -62_135_596_800_000),
        ];
        for (s, expected) in cases {
            assert_eq!(parse_timestamp(s, None), Ok(expected), "{s}");
        }
        for bad in [
            "",
            "2011-02-30",
            "2011-13-01",
            "2011-02-03 24:00",
            "2011-02-03 04:60",
            "2011-02-03 04:05:60",
            "2011-02-03 04:05:00.1234",
            "2011-02-03 04:05:00.",
            "2011-02-03T",
            "2011-02-03 04",
            "2011-02-03 PST",
            "2011-02-03+25:00",
            "2011/02/03",
            "99999999999999999999",
            "now",
            "2011-02-03 04:05:00+0000 extra",
        ] {
            assert!(parse_timestamp(bad, None).is_err(), "{bad}");
        }
        assert_eq!(parse_timestamp("NOW", Some(42)), Ok(42));
        assert_eq!(timestamp_to_iso(base).as_deref(), Some("2011-02-03T04:05:00.000Z"));
        assert_eq!(timestamp_to_iso(-1).as_deref(), Some("1969-12-31T23:59:59.999Z"));
        assert_eq!(timestamp_to_iso(-62_135_596_800_001), None);
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(1 << 31));
        assert_eq!(parse_date("2011-02-03"), Ok((1 << 31) + 15_008));
        assert_eq!(parse_date("1969-12-31"), Ok((1 << 31) - 1));
        assert_eq!(parse_date("2147483648"), Ok(1 << 31));
        assert_eq!(parse_date("0"), Ok(0));
        assert_eq!(parse_date("4294967295"), Ok(u32::MAX));
        assert_eq!(parse_date("-5877641-06-23"), Ok(0));
        assert_eq!(parse_date("+5881580-07-11"), Ok(u32::MAX));
        assert_eq!(parse_date("+10000-01-01").map(date_to_iso), Ok("+10000-01-01".to_string()));
        assert_eq!(parse_date("-0001-12-31").map(date_to_iso), Ok("-0001-12-31".to_string()));
        assert_eq!(parse_date("0000-01-01").map(date_to_iso), Ok("0000-01-01".to_string()));
        for bad in [
            "4294967296",
            "-1",
            "2011-02-29",
            "2011-2-3",
            "+2011-02-03",
            "12011-02-03",
            "-5877641-06-22",
            "+5881580-07-12",
            "2011-02-03 ",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert_eq!(date_to_iso(0), "-5877641-06-23");
        assert_eq!(date_to_iso(u32::MAX), "+5881580-07-11");
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("00:00:00"), Ok(0));
        assert_eq!(
            parse_time("04:05:06"),
            Ok(4 * NANOS_PER_HOUR + 5 * NANOS_PER_MINUTE + 6 * NANOS_PER_SECOND)
        );
        assert_eq!(parse_time("04:05:06.5"), Ok(4 * NANOS_PER_HOUR + 5 * NANOS_PER_MINUTE + 6_500_000_000));
        assert_eq!(parse_time(" 23:59:59.999999999 "), Ok(NANOS_PER_DAY - 1));
        assert_eq!(parse_time("12345"), Ok(12_345));
        for bad in [
            "24:00:00",
            "12:60:00",
            "12:00:60",
            "12:00",
            "12:00:00.",
            "12:00:00.1234567890",
            "-1",
            "86400000000000",
            "a:b:c",
            "12:00:00.x",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(time_to_string(4 * NANOS_PER_HOUR + 5 * NANOS_PER_MINUTE + 1), "04:05:00.000000001");
    }

    #[test]
    fn durations() {
        let h = NANOS_PER_HOUR;
        let cases: [(&str, (i32, i32, i64)); 19] = [
            ("1h30m", (0, 0, h + 30 * NANOS_PER_MINUTE)),
            ("2d", (0, 2, 0)),
            ("1mo", (1, 0, 0)),
            ("1MO", (1, 0, 0)),
            ("1y", (12, 0, 0)),
            ("1y2mo", (14, 0, 0)),
            ("3w", (0, 21, 0)),
            ("12us", (0, 0, 12_000)),
            ("12µs", (0, 0, 12_000)),
            ("7ns", (0, 0, 7)),
            ("5ms", (0, 0, 5_000_000)),
            ("5s", (0, 0, 5 * NANOS_PER_SECOND)),
            ("5m", (0, 0, 5 * NANOS_PER_MINUTE)),
            ("-1d", (0, -1, 0)),
            ("P1Y2M3DT4H5M6S", (14, 3, 4 * h + 5 * NANOS_PER_MINUTE + 6 * NANOS_PER_SECOND)),
            ("P2W", (0, 14, 0)),
            ("-P2W", (0, -14, 0)),
            ("P0001-02-03T04:05:06", (14, 3, 4 * h + 5 * NANOS_PER_MINUTE + 6 * NANOS_PER_SECOND)),
            ("PT1M", (0, 0, NANOS_PER_MINUTE)),
        ];
        for (s, expected) in cases {
            assert_eq!(parse_duration(s), Ok(expected), "{s}");
        }
        assert_eq!(parse_duration("P"), Ok((0, 0, 0)));
        for bad in
            ["", "-", "1", "h", "1x", "1h1h", "1m1h", "1h 30m", "P1H", "P1W2D", "p1d", "P0001-02-03", "1h-1m"]
        {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration("1h1h").map_err(|e| e.to_string()),
            Err("Invalid duration. The hours are specified multiple times".to_string())
        );
        assert_eq!(
            parse_duration("1m1h").map_err(|e| e.to_string()),
            Err("Invalid duration. The minutes should be after hours".to_string())
        );
        assert!(parse_duration("178956971y").is_err());
        assert_eq!(parse_duration("178956970y7mo"), Ok((i32::MAX, 0, 0)));
        assert_eq!(parse_duration("9223372036854775807ns"), Ok((0, 0, i64::MAX)));
        assert!(parse_duration("9223372036854775808ns").is_err());
        assert_eq!(duration_to_string(14, 3, h + 1), "1y2mo3d1h1ns");
        assert_eq!(duration_to_string(0, -1, -NANOS_PER_MILLI), "-1d1ms");
        assert_eq!(duration_to_string(0, 0, 0), "");
        assert_eq!(
            duration_to_string(i32::MIN, i32::MIN, i64::MIN),
            "-178956970y8mo2147483648d2562047h47m16s854ms775us808ns"
        );
    }
}
