//! The table's `compaction = {...}` map, validated into [`CompactionParams`].
//!
//! Option names, defaults, accepted spellings and error messages follow Cassandra's
//! `CompactionParams`, `AbstractCompactionStrategy.validateOptions` and each strategy's options
//! class, so a schema written for Cassandra is accepted or refused the same way. Differences:
//!
//! - Only `SizeTieredCompactionStrategy`, `LeveledCompactionStrategy` and
//!   `TimeWindowCompactionStrategy` exist (short names or `org.apache.cassandra.db.compaction.`
//!   full names); any other class is refused.
//! - `log_all`, `only_purge_repaired_tombstones` and `provide_overlapping_tombstones` are validated
//!   as Cassandra does and then have no effect (no compaction log, no incremental repair yet).
//! - `unsafe_aggressive_sstable_expiration = true` is refused: Cassandra only allows it behind a
//!   JVM system property, which Sibyl does not have.
//! - Non-finite floating-point values (`NaN`, `Infinity`) are refused; Java would accept them.

use std::collections::BTreeMap;

/// Prefix of Cassandra's fully-qualified strategy class names.
pub const CLASS_PREFIX: &str = "org.apache.cassandra.db.compaction.";

/// Default `min_threshold`.
pub const DEFAULT_MIN_THRESHOLD: usize = 4;
/// Default `max_threshold`.
pub const DEFAULT_MAX_THRESHOLD: usize = 32;
/// Default `tombstone_threshold`.
pub const DEFAULT_TOMBSTONE_THRESHOLD: f64 = 0.2;
/// Default `tombstone_compaction_interval` (one day).
pub const DEFAULT_TOMBSTONE_COMPACTION_INTERVAL_SECONDS: u64 = 86_400;
/// Default STCS `bucket_low`.
pub const DEFAULT_BUCKET_LOW: f64 = 0.5;
/// Default STCS `bucket_high`.
pub const DEFAULT_BUCKET_HIGH: f64 = 1.5;
/// Default STCS `min_sstable_size` (50 MiB).
pub const DEFAULT_MIN_SSTABLE_SIZE_BYTES: u64 = 50 * 1024 * 1024;
/// Default LCS `sstable_size_in_mb`.
pub const DEFAULT_SSTABLE_SIZE_MB: u64 = 160;
/// Default LCS `fanout_size`.
pub const DEFAULT_FANOUT_SIZE: u32 = 10;
/// Default TWCS `expired_sstable_check_frequency_seconds` (ten minutes).
pub const DEFAULT_EXPIRED_SSTABLE_CHECK_FREQUENCY_SECONDS: u64 = 600;

/// A refused `compaction` map. The `Display` text is what a CQL client sees (Cassandra's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompactionOptionsError {
    /// The map has no `class`.
    #[error("Missing sub-option 'class' for the 'compaction' option")]
    MissingClass,
    /// `class` names no strategy Sibyl implements.
    #[error("Unable to find compaction strategy class '{0}'")]
    UnknownClass(String),
    /// Options the strategy does not know.
    #[error("Properties specified [{}] are not understood by {strategy}", options.join(", "))]
    UnknownOptions {
        /// The strategy's short class name.
        strategy: &'static str,
        /// The unknown option names, sorted.
        options: Vec<String>,
    },
    /// A known option with a value out of range or of the wrong type.
    #[error("{message}")]
    InvalidValue {
        /// The option's name.
        option: &'static str,
        /// Cassandra's message for it.
        message: String,
    },
}

/// A compaction strategy with its own options.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// `SizeTieredCompactionStrategy` (its options are [`CompactionParams::size_tiered`]).
    SizeTiered,
    /// `LeveledCompactionStrategy`.
    Leveled(LeveledOptions),
    /// `TimeWindowCompactionStrategy`.
    TimeWindow(TimeWindowOptions),
}

impl Strategy {
    /// Cassandra's short class name.
    #[must_use]
    pub fn short_name(&self) -> &'static str {
        match self {
            Strategy::SizeTiered => "SizeTieredCompactionStrategy",
            Strategy::Leveled(_) => "LeveledCompactionStrategy",
            Strategy::TimeWindow(_) => "TimeWindowCompactionStrategy",
        }
    }

    /// Cassandra's fully-qualified class name (what `DESCRIBE` and `system_schema` show).
    #[must_use]
    pub fn class_name(&self) -> String {
        format!("{CLASS_PREFIX}{}", self.short_name())
    }
}

/// Options of single-SSTable tombstone compactions (every strategy).
#[derive(Debug, Clone, PartialEq)]
pub struct TombstoneOptions {
    /// `tombstone_threshold`: compact one SSTable alone when more than this fraction of its cells
    /// are droppable tombstones.
    pub threshold: f64,
    /// `tombstone_compaction_interval`: an SSTable younger than this is never tombstone-compacted
    /// (the estimate may be wrong; this stops a loop recompacting the same data).
    pub compaction_interval_seconds: u64,
    /// `unchecked_tombstone_compaction`: skip the check that overlapping SSTables would keep the
    /// tombstones from being purged.
    pub unchecked: bool,
    /// Whether tombstone compactions run at all. TWCS turns them off unless `tombstone_threshold`
    /// or `tombstone_compaction_interval` is given explicitly (Cassandra's rule).
    pub enabled: bool,
}

/// Size-tiered bucketing options: STCS itself, LCS's size-tiering inside L0, TWCS's newest window.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeTieredOptions {
    /// `bucket_low`: an SSTable joins a bucket if its size is above `bucket_low` × the bucket's
    /// average size ...
    pub bucket_low: f64,
    /// `bucket_high`: ... and below `bucket_high` × that average.
    pub bucket_high: f64,
    /// `min_sstable_size` (bytes): all SSTables smaller than this share one bucket.
    pub min_sstable_size_bytes: u64,
}

impl Default for SizeTieredOptions {
    fn default() -> Self {
        SizeTieredOptions {
            bucket_low: DEFAULT_BUCKET_LOW,
            bucket_high: DEFAULT_BUCKET_HIGH,
            min_sstable_size_bytes: DEFAULT_MIN_SSTABLE_SIZE_BYTES,
        }
    }
}

/// LCS options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeveledOptions {
    /// `sstable_size_in_mb`, in bytes: the target size of each output SSTable.
    pub sstable_size_bytes: u64,
    /// `fanout_size`: each level holds this many times the bytes of the previous one.
    pub fanout_size: u32,
}

impl Default for LeveledOptions {
    fn default() -> Self {
        LeveledOptions {
            sstable_size_bytes: DEFAULT_SSTABLE_SIZE_MB * 1024 * 1024,
            fanout_size: DEFAULT_FANOUT_SIZE,
        }
    }
}

/// `compaction_window_unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    /// `MINUTES`.
    Minutes,
    /// `HOURS`.
    Hours,
    /// `DAYS` (the default).
    Days,
}

impl WindowUnit {
    /// Length of one unit in seconds.
    #[must_use]
    pub fn seconds(self) -> i64 {
        match self {
            WindowUnit::Minutes => 60,
            WindowUnit::Hours => 3_600,
            WindowUnit::Days => 86_400,
        }
    }
}

/// `timestamp_resolution`: the unit of the cells' write timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampResolution {
    /// `SECONDS`.
    Seconds,
    /// `MILLISECONDS`.
    Milliseconds,
    /// `MICROSECONDS` (the default; what CQL writes).
    Microseconds,
    /// `NANOSECONDS`.
    Nanoseconds,
}

impl TimestampResolution {
    /// How many timestamp units make one second.
    #[must_use]
    pub fn per_second(self) -> i64 {
        match self {
            TimestampResolution::Seconds => 1,
            TimestampResolution::Milliseconds => 1_000,
            TimestampResolution::Microseconds => 1_000_000,
            TimestampResolution::Nanoseconds => 1_000_000_000,
        }
    }
}

/// TWCS options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeWindowOptions {
    /// `compaction_window_unit`.
    pub window_unit: WindowUnit,
    /// `compaction_window_size`: units per window.
    pub window_size: u32,
    /// `timestamp_resolution`.
    pub timestamp_resolution: TimestampResolution,
    /// `expired_sstable_check_frequency_seconds`: kept for the engine's scheduler. The decision
    /// functions here are cheap and look for fully expired SSTables on every call.
    pub expired_sstable_check_frequency_seconds: u64,
}

impl TimeWindowOptions {
    /// Length of one window in seconds.
    #[must_use]
    pub fn window_seconds(&self) -> i64 {
        self.window_unit.seconds().saturating_mul(i64::from(self.window_size))
    }
}

impl Default for TimeWindowOptions {
    fn default() -> Self {
        TimeWindowOptions {
            window_unit: WindowUnit::Days,
            window_size: 1,
            timestamp_resolution: TimestampResolution::Microseconds,
            expired_sstable_check_frequency_seconds: DEFAULT_EXPIRED_SSTABLE_CHECK_FREQUENCY_SECONDS,
        }
    }
}

/// A table's validated compaction settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionParams {
    /// The strategy and its own options.
    pub strategy: Strategy,
    /// `enabled`: background compactions run (major compactions run regardless, as in Cassandra).
    pub enabled: bool,
    /// `min_threshold`: fewest SSTables a size-tiered bucket (or TWCS's newest window) needs.
    pub min_threshold: usize,
    /// `max_threshold`: most SSTables one compaction takes (except LCS level compactions and
    /// major compactions).
    pub max_threshold: usize,
    /// Single-SSTable tombstone compaction options.
    pub tombstone: TombstoneOptions,
    /// Size-tiered bucketing options (used by every strategy, see [`SizeTieredOptions`]).
    pub size_tiered: SizeTieredOptions,
}

impl Default for CompactionParams {
    /// Cassandra's default for a new table: size-tiered with every default.
    fn default() -> Self {
        CompactionParams::with_strategy(Strategy::SizeTiered)
    }
}

impl CompactionParams {
    /// A strategy with every common option at its default.
    #[must_use]
    pub fn with_strategy(strategy: Strategy) -> CompactionParams {
        let tombstones_enabled = !matches!(strategy, Strategy::TimeWindow(_));
        CompactionParams {
            strategy,
            enabled: true,
            min_threshold: DEFAULT_MIN_THRESHOLD,
            max_threshold: DEFAULT_MAX_THRESHOLD,
            tombstone: TombstoneOptions {
                threshold: DEFAULT_TOMBSTONE_THRESHOLD,
                compaction_interval_seconds: DEFAULT_TOMBSTONE_COMPACTION_INTERVAL_SECONDS,
                unchecked: false,
                enabled: tombstones_enabled,
            },
            size_tiered: SizeTieredOptions::default(),
        }
    }

    /// The bloom filter false-positive chance a new table gets when its schema does not set
    /// one: 0.1 with LeveledCompactionStrategy, whose few overlapping SSTables per read need
    /// less filtering, 0.01 otherwise (Cassandra's `CompactionParams.defaultBloomFilterFbChance`).
    #[must_use]
    pub fn default_bloom_fp_chance(&self) -> f64 {
        if matches!(self.strategy, Strategy::Leveled(_)) {
            0.1
        } else {
            0.01
        }
    }

    /// Validates a `compaction` map (with its `class`) the way Cassandra does.
    pub fn from_options(
        options: &BTreeMap<String, String>,
    ) -> Result<CompactionParams, CompactionOptionsError> {
        let class = options.get("class").ok_or(CompactionOptionsError::MissingClass)?;
        let short = class.strip_prefix(CLASS_PREFIX).unwrap_or(class);
        let mut known: Vec<&'static str> = COMMON_OPTIONS.to_vec();
        let strategy = match short {
            "SizeTieredCompactionStrategy" => {
                known.extend_from_slice(SIZE_TIERED_OPTIONS);
                Strategy::SizeTiered
            }
            "LeveledCompactionStrategy" => {
                known.extend_from_slice(SIZE_TIERED_OPTIONS);
                known.extend_from_slice(&["sstable_size_in_mb", "fanout_size"]);
                Strategy::Leveled(parse_leveled(options)?)
            }
            "TimeWindowCompactionStrategy" => {
                known.extend_from_slice(SIZE_TIERED_OPTIONS);
                known.extend_from_slice(&[
                    "compaction_window_unit",
                    "compaction_window_size",
                    "timestamp_resolution",
                    "expired_sstable_check_frequency_seconds",
                    "unsafe_aggressive_sstable_expiration",
                ]);
                Strategy::TimeWindow(parse_time_window(options)?)
            }
            _ => return Err(CompactionOptionsError::UnknownClass(class.clone())),
        };
        let unknown: Vec<String> = options.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect();
        if !unknown.is_empty() {
            return Err(CompactionOptionsError::UnknownOptions {
                strategy: strategy.short_name(),
                options: unknown,
            });
        }

        let mut params = CompactionParams::with_strategy(strategy);
        parse_common(options, &mut params)?;
        params.size_tiered = parse_size_tiered(options)?;
        Ok(params)
    }

    /// The options as a `compaction` map: `class` (full name) and every option with its value, as
    /// Cassandra shows them after validation would accept them back.
    #[must_use]
    pub fn to_options(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("class", self.strategy.class_name());
        put("enabled", self.enabled.to_string());
        put("min_threshold", self.min_threshold.to_string());
        put("max_threshold", self.max_threshold.to_string());
        put("tombstone_threshold", self.tombstone.threshold.to_string());
        put("tombstone_compaction_interval", self.tombstone.compaction_interval_seconds.to_string());
        put("unchecked_tombstone_compaction", self.tombstone.unchecked.to_string());
        put("bucket_low", self.size_tiered.bucket_low.to_string());
        put("bucket_high", self.size_tiered.bucket_high.to_string());
        put("min_sstable_size", self.size_tiered.min_sstable_size_bytes.to_string());
        match &self.strategy {
            Strategy::SizeTiered => {}
            Strategy::Leveled(l) => {
                put("sstable_size_in_mb", (l.sstable_size_bytes / (1024 * 1024)).to_string());
                put("fanout_size", l.fanout_size.to_string());
            }
            Strategy::TimeWindow(t) => {
                let unit = match t.window_unit {
                    WindowUnit::Minutes => "MINUTES",
                    WindowUnit::Hours => "HOURS",
                    WindowUnit::Days => "DAYS",
                };
                let resolution = match t.timestamp_resolution {
                    TimestampResolution::Seconds => "SECONDS",
                    TimestampResolution::Milliseconds => "MILLISECONDS",
                    TimestampResolution::Microseconds => "MICROSECONDS",
                    TimestampResolution::Nanoseconds => "NANOSECONDS",
                };
                put("compaction_window_unit", unit.to_string());
                put("compaction_window_size", t.window_size.to_string());
                put("timestamp_resolution", resolution.to_string());
                put(
                    "expired_sstable_check_frequency_seconds",
                    t.expired_sstable_check_frequency_seconds.to_string(),
                );
            }
        }
        m
    }

    /// The LCS options, if this is LCS.
    #[must_use]
    pub fn leveled(&self) -> Option<&LeveledOptions> {
        match &self.strategy {
            Strategy::Leveled(l) => Some(l),
            _ => None,
        }
    }

    /// The TWCS options, if this is TWCS.
    #[must_use]
    pub fn time_window(&self) -> Option<&TimeWindowOptions> {
        match &self.strategy {
            Strategy::TimeWindow(t) => Some(t),
            _ => None,
        }
    }
}

const COMMON_OPTIONS: &[&str] = &[
    "class",
    "enabled",
    "min_threshold",
    "max_threshold",
    "tombstone_threshold",
    "tombstone_compaction_interval",
    "unchecked_tombstone_compaction",
    "log_all",
    "only_purge_repaired_tombstones",
    "provide_overlapping_tombstones",
];

const SIZE_TIERED_OPTIONS: &[&str] = &["min_sstable_size", "bucket_low", "bucket_high"];

fn invalid(option: &'static str, message: String) -> CompactionOptionsError {
    CompactionOptionsError::InvalidValue { option, message }
}

/// Java's `"true"`/`"false"` check (case-insensitive).
fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn not_parsable(option: &'static str, value: &str) -> CompactionOptionsError {
    invalid(option, format!("{value} is not a parsable int (base10) for {option}"))
}

fn parse_float(option: &'static str, value: &str) -> Result<f64, CompactionOptionsError> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(not_parsable(option, value)),
    }
}

fn parse_i64(option: &'static str, value: &str) -> Result<i64, CompactionOptionsError> {
    value.parse::<i64>().map_err(|_| not_parsable(option, value))
}

fn parse_i32(option: &'static str, value: &str) -> Result<i32, CompactionOptionsError> {
    value.parse::<i32>().map_err(|_| not_parsable(option, value))
}

fn parse_common(
    options: &BTreeMap<String, String>,
    p: &mut CompactionParams,
) -> Result<(), CompactionOptionsError> {
    if let Some(v) = options.get("enabled") {
        p.enabled = parse_bool(v).ok_or_else(|| {
            invalid("enabled", format!("enabled should either be 'true' or 'false', not {v}"))
        })?;
    }

    // Cassandra first requires digits only (StringUtils.isNumeric), then checks the range.
    let threshold = |option: &'static str, default: usize| -> Result<i64, CompactionOptionsError> {
        match options.get(option) {
            None => Ok(default as i64),
            Some(v) => {
                let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                let parsed = if digits { v.parse::<i32>().ok() } else { None };
                parsed.map(i64::from).ok_or_else(|| {
                    invalid(
                        option,
                        format!(
                            "Invalid value {v} for '{option}' compaction sub-option - must be an integer"
                        ),
                    )
                })
            }
        }
    };
    let min = threshold("min_threshold", DEFAULT_MIN_THRESHOLD)?;
    let max = threshold("max_threshold", DEFAULT_MAX_THRESHOLD)?;
    if min <= 0 || max <= 0 {
        return Err(invalid(
            "min_threshold",
            "Disabling compaction by setting compaction thresholds to 0 has been removed, set the compaction option 'enabled' to false instead.".to_string(),
        ));
    }
    if min <= 1 {
        return Err(invalid(
            "min_threshold",
            format!("Min compaction threshold cannot be less than 2 (got {min})"),
        ));
    }
    if min > max {
        return Err(invalid(
            "max_threshold",
            format!("Min compaction threshold (got {min}) cannot be greater than max compaction threshold (got {max})"),
        ));
    }
    p.min_threshold = usize::try_from(min).unwrap_or(DEFAULT_MIN_THRESHOLD);
    p.max_threshold = usize::try_from(max).unwrap_or(DEFAULT_MAX_THRESHOLD);

    let mut tombstone_option_given = false;
    if let Some(v) = options.get("tombstone_threshold") {
        let t = parse_float("tombstone_threshold", v)?;
        if t < 0.0 {
            return Err(invalid(
                "tombstone_threshold",
                format!("tombstone_threshold must be greater than 0, but was {t:.6}"),
            ));
        }
        p.tombstone.threshold = t;
        tombstone_option_given = true;
    }
    if let Some(v) = options.get("tombstone_compaction_interval") {
        let i = parse_i64("tombstone_compaction_interval", v)?;
        if i < 0 {
            return Err(invalid(
                "tombstone_compaction_interval",
                format!("tombstone_compaction_interval must be greater than 0, but was {i}"),
            ));
        }
        p.tombstone.compaction_interval_seconds = u64::try_from(i).unwrap_or(0);
        tombstone_option_given = true;
    }
    if let Some(v) = options.get("unchecked_tombstone_compaction") {
        p.tombstone.unchecked = parse_bool(v).ok_or_else(|| {
            invalid(
                "unchecked_tombstone_compaction",
                format!("'unchecked_tombstone_compaction' should be either 'true' or 'false', not '{v}'"),
            )
        })?;
    }
    if matches!(p.strategy, Strategy::TimeWindow(_)) {
        p.tombstone.enabled = tombstone_option_given;
    }
    if let Some(v) = options.get("log_all") {
        if parse_bool(v).is_none() {
            return Err(invalid("log_all", format!("'log_all' should either be 'true' or 'false', not {v}")));
        }
    }
    if let Some(v) = options.get("only_purge_repaired_tombstones") {
        if parse_bool(v).is_none() {
            return Err(invalid(
                "only_purge_repaired_tombstones",
                format!("'only_purge_repaired_tombstones' should either be 'true' or 'false', not {v}"),
            ));
        }
    }
    if let Some(v) = options.get("provide_overlapping_tombstones") {
        let upper = v.to_ascii_uppercase();
        if !["NONE", "ROW", "CELL"].contains(&upper.as_str()) {
            return Err(invalid(
                "provide_overlapping_tombstones",
                format!("Invalid value {upper} for 'provide_overlapping_tombstones' compaction sub-option - must be one of the following [NONE, ROW, CELL]."),
            ));
        }
    }
    Ok(())
}

fn parse_size_tiered(
    options: &BTreeMap<String, String>,
) -> Result<SizeTieredOptions, CompactionOptionsError> {
    let mut o = SizeTieredOptions::default();
    if let Some(v) = options.get("min_sstable_size") {
        let size = parse_i64("min_sstable_size", v)?;
        if size < 0 {
            return Err(invalid(
                "min_sstable_size",
                format!("min_sstable_size must be non negative: {size}"),
            ));
        }
        o.min_sstable_size_bytes = u64::try_from(size).unwrap_or(0);
    }
    if let Some(v) = options.get("bucket_low") {
        o.bucket_low = parse_float("bucket_low", v)?;
    }
    if let Some(v) = options.get("bucket_high") {
        o.bucket_high = parse_float("bucket_high", v)?;
    }
    if o.bucket_high <= o.bucket_low {
        return Err(invalid(
            "bucket_high",
            format!(
                "Bucket high value ({}) is less than or equal bucket low value ({})",
                o.bucket_high, o.bucket_low
            ),
        ));
    }
    Ok(o)
}

fn parse_leveled(options: &BTreeMap<String, String>) -> Result<LeveledOptions, CompactionOptionsError> {
    let mut o = LeveledOptions::default();
    if let Some(v) = options.get("sstable_size_in_mb") {
        let mb = parse_i32("sstable_size_in_mb", v)?;
        if mb < 1 {
            return Err(invalid(
                "sstable_size_in_mb",
                format!("sstable_size_in_mb must be larger than 0, but was {mb}"),
            ));
        }
        o.sstable_size_bytes = u64::try_from(mb).unwrap_or(1) * 1024 * 1024;
    }
    if let Some(v) = options.get("fanout_size") {
        let fanout = parse_i32("fanout_size", v)?;
        if fanout < 1 {
            return Err(invalid(
                "fanout_size",
                format!("fanout_size must be larger than 0, but was {fanout}"),
            ));
        }
        o.fanout_size = u32::try_from(fanout).unwrap_or(1);
    }
    Ok(o)
}

fn parse_time_window(
    options: &BTreeMap<String, String>,
) -> Result<TimeWindowOptions, CompactionOptionsError> {
    let mut o = TimeWindowOptions::default();
    // Java's TimeUnit.valueOf: exact, case-sensitive names.
    if let Some(v) = options.get("timestamp_resolution") {
        o.timestamp_resolution = match v.as_str() {
            "SECONDS" => TimestampResolution::Seconds,
            "MILLISECONDS" => TimestampResolution::Milliseconds,
            "MICROSECONDS" => TimestampResolution::Microseconds,
            "NANOSECONDS" => TimestampResolution::Nanoseconds,
            _ => {
                return Err(invalid(
                    "timestamp_resolution",
                    format!("{v} is not valid for timestamp_resolution"),
                ))
            }
        };
    }
    if let Some(v) = options.get("compaction_window_unit") {
        o.window_unit = match v.as_str() {
            "MINUTES" => WindowUnit::Minutes,
            "HOURS" => WindowUnit::Hours,
            "DAYS" => WindowUnit::Days,
            _ => {
                return Err(invalid(
                    "compaction_window_unit",
                    format!("{v} is not valid for compaction_window_unit"),
                ))
            }
        };
    }
    if let Some(v) = options.get("compaction_window_size") {
        let size = parse_i32("compaction_window_size", v)?;
        if size < 1 {
            return Err(invalid(
                "compaction_window_size",
                format!("{size} must be greater than 1 for compaction_window_size"),
            ));
        }
        o.window_size = u32::try_from(size).unwrap_or(1);
    }
    if let Some(v) = options.get("expired_sstable_check_frequency_seconds") {
        let f = parse_i64("expired_sstable_check_frequency_seconds", v)?;
        if f < 0 {
            return Err(invalid(
                "expired_sstable_check_frequency_seconds",
                format!("expired_sstable_check_frequency_seconds must not be negative, but was {f}"),
            ));
        }
        o.expired_sstable_check_frequency_seconds = u64::try_from(f).unwrap_or(0);
    }
    if let Some(v) = options.get("unsafe_aggressive_sstable_expiration") {
        match parse_bool(v) {
            Some(false) => {}
            Some(true) => {
                return Err(invalid(
                    "unsafe_aggressive_sstable_expiration",
                    "unsafe_aggressive_sstable_expiration is requested but not allowed".to_string(),
                ))
            }
            None => {
                return Err(invalid(
                    "unsafe_aggressive_sstable_expiration",
                    format!("unsafe_aggressive_sstable_expiration is not 'true' or 'false' ({v})"),
                ))
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        CompactionParams::from_options(&map(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_match_cassandra() {
        let p = CompactionParams::from_options(&map(&[("class", "SizeTieredCompactionStrategy")])).unwrap();
        assert_eq!(p, CompactionParams::default());
        assert!(p.enabled);
        assert_eq!((p.min_threshold, p.max_threshold), (4, 32));
        assert_eq!(p.tombstone.threshold, 0.2);
        assert_eq!(p.tombstone.compaction_interval_seconds, 86_400);
        assert!(!p.tombstone.unchecked);
        assert!(p.tombstone.enabled);
        assert_eq!(p.size_tiered.bucket_low, 0.5);
        assert_eq!(p.size_tiered.bucket_high, 1.5);
        assert_eq!(p.size_tiered.min_sstable_size_bytes, 50 * 1024 * 1024);

        let l = CompactionParams::from_options(&map(&[("class", "LeveledCompactionStrategy")])).unwrap();
        assert_eq!(l.leveled().unwrap(), &LeveledOptions { sstable_size_bytes: 160 << 20, fanout_size: 10 });

        let t = CompactionParams::from_options(&map(&[("class", "TimeWindowCompactionStrategy")])).unwrap();
        let tw = t.time_window().unwrap();
        assert_eq!(tw.window_unit, WindowUnit::Days);
        assert_eq!(tw.window_size, 1);
        assert_eq!(tw.timestamp_resolution, TimestampResolution::Microseconds);
        assert_eq!(tw.expired_sstable_check_frequency_seconds, 600);
        assert!(!t.tombstone.enabled, "TWCS disables tombstone compactions by default");
    }

    #[test]
    fn full_class_names_are_accepted() {
        for short in
            ["SizeTieredCompactionStrategy", "LeveledCompactionStrategy", "TimeWindowCompactionStrategy"]
        {
            let full = format!("org.apache.cassandra.db.compaction.{short}");
            let p = CompactionParams::from_options(&map(&[("class", &full)])).unwrap();
            assert_eq!(p.strategy.short_name(), short);
            assert_eq!(p.strategy.class_name(), full);
        }
    }

    #[test]
    fn to_options_round_trips() {
        for m in [
            map(&[("class", "SizeTieredCompactionStrategy"), ("min_threshold", "6"), ("bucket_high", "2")]),
            map(&[
                ("class", "LeveledCompactionStrategy"),
                ("sstable_size_in_mb", "64"),
                ("fanout_size", "8"),
            ]),
            map(&[
                ("class", "TimeWindowCompactionStrategy"),
                ("compaction_window_unit", "HOURS"),
                ("compaction_window_size", "6"),
                ("timestamp_resolution", "MILLISECONDS"),
            ]),
        ] {
            let p = CompactionParams::from_options(&m).unwrap();
            let mut back = CompactionParams::from_options(&p.to_options()).unwrap();
            // Writing the tombstone options out makes them explicit, which enables TWCS's.
            back.tombstone.enabled = p.tombstone.enabled;
            assert_eq!(back, p);
        }
    }

    #[test]
    fn strategy_options_are_parsed() {
        let p = CompactionParams::from_options(&map(&[
            ("class", "TimeWindowCompactionStrategy"),
            ("compaction_window_unit", "MINUTES"),
            ("compaction_window_size", "30"),
            ("tombstone_threshold", "0.5"),
            ("enabled", "FALSE"),
        ]))
        .unwrap();
        assert!(!p.enabled);
        assert_eq!(p.time_window().unwrap().window_seconds(), 1800);
        assert!(p.tombstone.enabled, "an explicit tombstone option enables TWCS tombstone compactions");
        assert_eq!(p.tombstone.threshold, 0.5);
    }

    #[test]
    fn bad_values_are_refused_with_cassandras_messages() {
        assert_eq!(err(&[]), "Missing sub-option 'class' for the 'compaction' option");
        assert_eq!(err(&[("class", "Nope")]), "Unable to find compaction strategy class 'Nope'");
        assert_eq!(
            err(&[("class", "DateTieredCompactionStrategy")]),
            "Unable to find compaction strategy class 'DateTieredCompactionStrategy'"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("sstable_size_in_mb", "10"), ("zzz", "1")]),
            "Properties specified [sstable_size_in_mb, zzz] are not understood by SizeTieredCompactionStrategy"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("min_threshold", "x")]),
            "Invalid value x for 'min_threshold' compaction sub-option - must be an integer"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("min_threshold", "-3")]),
            "Invalid value -3 for 'min_threshold' compaction sub-option - must be an integer"
        );
        assert!(err(&[("class", "SizeTieredCompactionStrategy"), ("max_threshold", "0")])
            .starts_with("Disabling compaction by setting compaction thresholds to 0 has been removed"));
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("min_threshold", "1")]),
            "Min compaction threshold cannot be less than 2 (got 1)"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("min_threshold", "40")]),
            "Min compaction threshold (got 40) cannot be greater than max compaction threshold (got 32)"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("bucket_low", "2")]),
            "Bucket high value (1.5) is less than or equal bucket low value (2)"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("bucket_low", "abc")]),
            "abc is not a parsable int (base10) for bucket_low"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("min_sstable_size", "-1")]),
            "min_sstable_size must be non negative: -1"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("tombstone_threshold", "-0.5")]),
            "tombstone_threshold must be greater than 0, but was -0.500000"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("tombstone_compaction_interval", "-1")]),
            "tombstone_compaction_interval must be greater than 0, but was -1"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("unchecked_tombstone_compaction", "yes")]),
            "'unchecked_tombstone_compaction' should be either 'true' or 'false', not 'yes'"
        );
        assert_eq!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("enabled", "1")]),
            "enabled should either be 'true' or 'false', not 1"
        );
        assert_eq!(
            err(&[("class", "LeveledCompactionStrategy"), ("sstable_size_in_mb", "0")]),
            "sstable_size_in_mb must be larger than 0, but was 0"
        );
        assert_eq!(
            err(&[("class", "LeveledCompactionStrategy"), ("fanout_size", "ten")]),
            "ten is not a parsable int (base10) for fanout_size"
        );
        assert_eq!(
            err(&[("class", "TimeWindowCompactionStrategy"), ("compaction_window_unit", "WEEKS")]),
            "WEEKS is not valid for compaction_window_unit"
        );
        assert_eq!(
            err(&[("class", "TimeWindowCompactionStrategy"), ("compaction_window_unit", "days")]),
            "days is not valid for compaction_window_unit"
        );
        assert_eq!(
            err(&[("class", "TimeWindowCompactionStrategy"), ("compaction_window_size", "0")]),
            "0 must be greater than 1 for compaction_window_size"
        );
        assert_eq!(
            err(&[("class", "TimeWindowCompactionStrategy"), ("timestamp_resolution", "HOURS")]),
            "HOURS is not valid for timestamp_resolution"
        );
        assert_eq!(
            err(&[
                ("class", "TimeWindowCompactionStrategy"),
                ("expired_sstable_check_frequency_seconds", "-5")
            ]),
            "expired_sstable_check_frequency_seconds must not be negative, but was -5"
        );
        assert!(err(&[
            ("class", "TimeWindowCompactionStrategy"),
            ("unsafe_aggressive_sstable_expiration", "true")
        ])
        .contains("not allowed"));
        assert_eq!(
            err(&[("class", "LeveledCompactionStrategy"), ("compaction_window_unit", "DAYS")]),
            "Properties specified [compaction_window_unit] are not understood by LeveledCompactionStrategy"
        );
        assert!(
            err(&[("class", "SizeTieredCompactionStrategy"), ("bucket_high", "NaN")]).contains("bucket_high")
        );
    }

    #[test]
    fn ignored_cassandra_options_are_validated_then_accepted() {
        let ok = map(&[
            ("class", "SizeTieredCompactionStrategy"),
            ("log_all", "true"),
            ("only_purge_repaired_tombstones", "false"),
            ("provide_overlapping_tombstones", "row"),
        ]);
        assert!(CompactionParams::from_options(&ok).is_ok());
        assert!(err(&[("class", "SizeTieredCompactionStrategy"), ("provide_overlapping_tombstones", "all")])
            .contains("must be one of the following [NONE, ROW, CELL]"));
    }
}
