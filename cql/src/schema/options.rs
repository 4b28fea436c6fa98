//! Keyspace and table options (`WITH ...`), with Cassandra's names, defaults and validation.
//!
//! Every option Cassandra 4.0 accepts is parsed and kept (so `DESCRIBE` and the drivers' schema
//! metadata show them); the ones Sibyl acts on are: `replication` and `durable_writes`;
//! `bloom_filter_fp_chance`, `compression.chunk_length_in_kb`, `gc_grace_seconds` and
//! `default_time_to_live`. The others are stored and shown, and say so in `docs/cql.md`.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// An option value as written in CQL: a constant or a map literal.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// A string, number or boolean, as its text (strings unquoted).
    Constant(String),
    /// `{'k': 'v', ...}` with keys and values as text.
    Map(BTreeMap<String, String>),
}

impl OptionValue {
    fn text(&self, name: &str) -> Result<&str> {
        match self {
            OptionValue::Constant(s) => Ok(s),
            OptionValue::Map(_) => Err(Error::invalid(format!(
                "Invalid value for property '{name}': expected a constant, got a map"
            ))),
        }
    }

    fn map(&self, name: &str) -> Result<&BTreeMap<String, String>> {
        match self {
            OptionValue::Map(m) => Ok(m),
            OptionValue::Constant(_) => {
                Err(Error::invalid(format!("Invalid value for property '{name}': expected a map")))
            }
        }
    }

    fn int(&self, name: &str) -> Result<i64> {
        let t = self.text(name)?;
        t.parse::<i64>().map_err(|_| {
            Error::invalid(format!("Invalid value for property '{name}': '{t}' is not an integer"))
        })
    }

    fn double(&self, name: &str) -> Result<f64> {
        let t = self.text(name)?;
        t.parse::<f64>().map_err(|_| {
            Error::invalid(format!("Invalid value for property '{name}': '{t}' is not a number"))
        })
    }

    fn boolean(&self, name: &str) -> Result<bool> {
        let t = self.text(name)?;
        match t.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Error::invalid(format!("Invalid value for property '{name}': '{t}' is not a boolean"))),
        }
    }
}

/// Full class names of the replication strategies.
pub const SIMPLE_STRATEGY: &str = "org.apache.cassandra.locator.SimpleStrategy";
/// See [`SIMPLE_STRATEGY`].
pub const NETWORK_TOPOLOGY_STRATEGY: &str = "org.apache.cassandra.locator.NetworkTopologyStrategy";
/// The strategy of the node's own keyspaces.
pub const LOCAL_STRATEGY: &str = "org.apache.cassandra.locator.LocalStrategy";

/// A keyspace's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceParams {
    /// `replication`, with `class` expanded to the full class name, as `system_schema` shows it.
    pub replication: BTreeMap<String, String>,
    /// `durable_writes`.
    pub durable_writes: bool,
}

impl KeyspaceParams {
    /// The options of the node's own keyspaces (`LocalStrategy`).
    #[must_use]
    pub fn local() -> KeyspaceParams {
        let mut replication = BTreeMap::new();
        replication.insert("class".to_string(), LOCAL_STRATEGY.to_string());
        KeyspaceParams { replication, durable_writes: true }
    }

    /// Parses `WITH replication = {...} AND durable_writes = ...`. `previous` holds the current
    /// options for ALTER KEYSPACE (options not given keep their value).
    pub fn parse(
        options: &[(String, OptionValue)],
        previous: Option<&KeyspaceParams>,
    ) -> Result<KeyspaceParams> {
        let mut replication = previous.map(|p| p.replication.clone());
        let mut durable_writes = previous.is_none_or(|p| p.durable_writes);
        for (name, value) in options {
            match name.as_str() {
                "replication" => replication = Some(parse_replication(value.map(name)?)?),
                "durable_writes" => durable_writes = value.boolean(name)?,
                other => return Err(Error::invalid(format!("Unknown property '{other}'"))),
            }
        }
        let replication =
            replication.ok_or_else(|| Error::invalid("Missing mandatory option 'replication'"))?;
        Ok(KeyspaceParams { replication, durable_writes })
    }

    /// The replication factor per data center (SimpleStrategy: one entry under the empty name).
    #[must_use]
    pub fn replication_factors(&self) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        let class = self.replication.get("class").map_or("", String::as_str);
        for (k, v) in &self.replication {
            if k == "class" {
                continue;
            }
            let rf = parse_rf(v).unwrap_or(0);
            if class == SIMPLE_STRATEGY && k == "replication_factor" {
                out.insert(String::new(), rf);
            } else if class == NETWORK_TOPOLOGY_STRATEGY {
                out.insert(k.clone(), rf);
            }
        }
        if class == LOCAL_STRATEGY {
            out.insert(String::new(), 1);
        }
        out
    }
}

fn parse_rf(v: &str) -> Option<u32> {
    // Cassandra also accepts "3/1" (full/transient); transient replication is not supported.
    v.trim().parse::<u32>().ok()
}

fn parse_replication(map: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let class = map.get("class").ok_or_else(|| Error::config("Missing replication strategy class"))?;
    let full = match class.rsplit('.').next().unwrap_or(class) {
        "SimpleStrategy" => SIMPLE_STRATEGY,
        "NetworkTopologyStrategy" => NETWORK_TOPOLOGY_STRATEGY,
        "LocalStrategy" | "EverywhereStrategy" => {
            return Err(Error::config(format!(
                "Unable to use given strategy class: {class} is reserved for system keyspaces"
            )))
        }
        _ => return Err(Error::config(format!("Unable to find replication strategy class '{class}'"))),
    };
    let mut out = BTreeMap::new();
    out.insert("class".to_string(), full.to_string());
    for (k, v) in map {
        if k == "class" {
            continue;
        }
        if full == SIMPLE_STRATEGY && k != "replication_factor" {
            return Err(Error::config(format!(
                "Unrecognized strategy option {{{k}}} passed to SimpleStrategy"
            )));
        }
        let rf = parse_rf(v).ok_or_else(|| {
            Error::config(format!("Replication factor must be non-negative integer; found {v}"))
        })?;
        out.insert(k.clone(), rf.to_string());
    }
    if full == SIMPLE_STRATEGY && !out.contains_key("replication_factor") {
        return Err(Error::config("SimpleStrategy requires a replication_factor strategy option."));
    }
    Ok(out)
}

/// A table's options, with Cassandra 4.0's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TableParams {
    /// `bloom_filter_fp_chance` (honoured).
    pub bloom_filter_fp_chance: f64,
    /// `caching` (kept).
    pub caching: BTreeMap<String, String>,
    /// `comment`.
    pub comment: String,
    /// `compaction`: the strategy class (full name) and its options, run by the engine.
    pub compaction: BTreeMap<String, String>,
    /// `compression` (`chunk_length_in_kb` honoured; LZ4 always).
    pub compression: BTreeMap<String, String>,
    /// `crc_check_chance` (kept; checksums are always verified).
    pub crc_check_chance: f64,
    /// `default_time_to_live` in seconds (honoured).
    pub default_time_to_live: i32,
    /// `gc_grace_seconds` (honoured).
    pub gc_grace_seconds: i32,
    /// `max_index_interval` (kept).
    pub max_index_interval: i32,
    /// `memtable_flush_period_in_ms` (kept).
    pub memtable_flush_period_in_ms: i32,
    /// `min_index_interval` (kept).
    pub min_index_interval: i32,
    /// `speculative_retry` (honoured: NONE, ALWAYS, `<n>ms`, `<n>p`, MIN/MAX of the two).
    pub speculative_retry: String,
    /// `additional_write_policy` (kept).
    pub additional_write_policy: String,
    /// `read_repair` (honoured: BLOCKING or NONE).
    pub read_repair: String,
    /// `cdc` (kept; CDC is not implemented).
    pub cdc: bool,
    /// `extensions` (kept).
    pub extensions: BTreeMap<String, Vec<u8>>,
}

impl Default for TableParams {
    fn default() -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
        };
        TableParams {
            bloom_filter_fp_chance: 0.01,
            caching: map(&[("keys", "ALL"), ("rows_per_partition", "NONE")]),
            comment: String::new(),
            compaction: map(&[
                ("class", "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy"),
                ("max_threshold", "32"),
                ("min_threshold", "4"),
            ]),
            compression: map(&[
                ("chunk_length_in_kb", "16"),
                ("class", "org.apache.cassandra.io.compress.LZ4Compressor"),
            ]),
            crc_check_chance: 1.0,
            default_time_to_live: 0,
            gc_grace_seconds: 864_000,
            max_index_interval: 2048,
            memtable_flush_period_in_ms: 0,
            min_index_interval: 128,
            speculative_retry: "99p".to_string(),
            additional_write_policy: "99p".to_string(),
            read_repair: "BLOCKING".to_string(),
            cdc: false,
            extensions: BTreeMap::new(),
        }
    }
}

impl TableParams {
    /// The parameters of a new table: Cassandra's defaults with the `WITH` options over them.
    /// As in Cassandra, a table created with LeveledCompactionStrategy and no
    /// `bloom_filter_fp_chance` gets 0.1 instead of 0.01 (an ALTER changes neither).
    pub fn for_create(options: &[(String, OptionValue)]) -> Result<TableParams> {
        let mut p = TableParams::default();
        p.apply(options)?;
        if !options.iter().any(|(name, _)| name == "bloom_filter_fp_chance") {
            if let Ok(c) = sibyl_engine::compaction::CompactionParams::from_options(&p.compaction) {
                p.bloom_filter_fp_chance = c.default_bloom_fp_chance();
            }
        }
        Ok(p)
    }

    /// Applies `WITH` options over `self` (defaults for CREATE, current values for ALTER).
    pub fn apply(&mut self, options: &[(String, OptionValue)]) -> Result<()> {
        for (name, value) in options {
            match name.as_str() {
                "bloom_filter_fp_chance" => {
                    let v = value.double(name)?;
                    if !(v > 0.0 && v <= 1.0) {
                        return Err(Error::config(format!(
                            "bloom_filter_fp_chance must be larger than 0 and less than or equal to 1.0 (got {v})"
                        )));
                    }
                    self.bloom_filter_fp_chance = v;
                }
                "caching" => self.caching = value.map(name)?.clone(),
                "comment" => self.comment = value.text(name)?.to_string(),
                "compaction" => self.compaction = parse_compaction(value.map(name)?)?,
                "compression" => self.compression = parse_compression(value.map(name)?)?,
                "crc_check_chance" => {
                    let v = value.double(name)?;
                    if !(0.0..=1.0).contains(&v) {
                        return Err(Error::config("crc_check_chance should be between 0.0 and 1.0"));
                    }
                    self.crc_check_chance = v;
                }
                "default_time_to_live" => {
                    self.default_time_to_live =
                        int_in(value, name, 0, i64::from(sibyl_engine::cell::MAX_TTL_SECONDS))?;
                }
                "gc_grace_seconds" => self.gc_grace_seconds = int_in(value, name, 0, i64::from(i32::MAX))?,
                "max_index_interval" => {
                    self.max_index_interval = int_in(value, name, 1, i64::from(i32::MAX))?
                }
                "min_index_interval" => {
                    self.min_index_interval = int_in(value, name, 1, i64::from(i32::MAX))?
                }
                "memtable_flush_period_in_ms" => {
                    self.memtable_flush_period_in_ms = int_in(value, name, 0, i64::from(i32::MAX))?;
                }
                "speculative_retry" => {
                    let v = value.text(name)?;
                    sibyl_cluster::SpeculativeRetry::parse(v).map_err(Error::config)?;
                    self.speculative_retry = v.to_string();
                }
                "additional_write_policy" => {
                    let v = value.text(name)?;
                    sibyl_cluster::SpeculativeRetry::parse(v)
                        .map_err(|e| Error::config(e.replace("speculative_retry", name)))?;
                    self.additional_write_policy = v.to_string();
                }
                "read_repair" => {
                    let v = value.text(name)?.to_ascii_uppercase();
                    sibyl_cluster::ReadRepair::parse(&v).map_err(Error::config)?;
                    self.read_repair = v;
                }
                "cdc" => self.cdc = value.boolean(name)?,
                "extensions" => {
                    self.extensions =
                        value.map(name)?.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect();
                }
                // Removed in Cassandra 4.0 but still accepted by older schemas' scripts.
                "dclocal_read_repair_chance" | "read_repair_chance" => {
                    value.double(name)?;
                }
                other => return Err(Error::config(format!("Unknown property '{other}'"))),
            }
        }
        if self.min_index_interval > self.max_index_interval {
            return Err(Error::config(
                "max_index_interval must be greater than or equal to min_index_interval",
            ));
        }
        Ok(())
    }

    /// `compression.chunk_length_in_kb` in bytes.
    #[must_use]
    pub fn chunk_size_bytes(&self) -> u32 {
        self.compression
            .get("chunk_length_in_kb")
            .and_then(|v| v.parse::<u32>().ok())
            .map_or(16 * 1024, |kb| kb * 1024)
    }
}

fn int_in(value: &OptionValue, name: &str, min: i64, max: i64) -> Result<i32> {
    let v = value.int(name)?;
    if v < min || v > max {
        return Err(Error::config(format!("{name} must be between {min} and {max} (got {v})")));
    }
    i32::try_from(v).map_err(|_| Error::config(format!("{name} is out of range")))
}

fn parse_compaction(map: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    // Cassandra's own validation (class, known options, ranges), with its messages.
    sibyl_engine::compaction::CompactionParams::from_options(map)
        .map_err(|e| Error::config(e.to_string()))?;
    let class = map
        .get("class")
        .ok_or_else(|| Error::config("Missing sub-option 'class' for the 'compaction' option."))?;
    let short = class.rsplit('.').next().unwrap_or(class);
    let mut out = map.clone();
    out.insert("class".to_string(), format!("{}{short}", sibyl_engine::compaction::params::CLASS_PREFIX));
    Ok(out)
}

fn parse_compression(map: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if map.get("enabled").is_some_and(|v| v == "false") {
        out.insert("enabled".to_string(), "false".to_string());
        return Ok(out);
    }
    let class =
        map.get("class").or_else(|| map.get("sstable_compression")).map_or("LZ4Compressor", String::as_str);
    if class.rsplit('.').next() != Some("LZ4Compressor") {
        return Err(Error::config(format!(
            "Unsupported compression class '{class}': Sibyl compresses SSTables with LZ4 only"
        )));
    }
    out.insert("class".to_string(), "org.apache.cassandra.io.compress.LZ4Compressor".to_string());
    let kb =
        map.get("chunk_length_in_kb").or_else(|| map.get("chunk_length_kb")).map_or("16", String::as_str);
    let n: u32 = kb.parse().map_err(|_| Error::config(format!("Invalid chunk_length_in_kb '{kb}'")))?;
    if !n.is_power_of_two() || n == 0 || n > 16 * 1024 {
        return Err(Error::config(format!(
            "chunk_length_in_kb must be a power of 2 between 1 and 16384 (got {n})"
        )));
    }
    out.insert("chunk_length_in_kb".to_string(), n.to_string());
    for (k, v) in map {
        if !matches!(
            k.as_str(),
            "class" | "sstable_compression" | "chunk_length_in_kb" | "chunk_length_kb" | "enabled"
        ) {
            if k == "crc_check_chance" || k == "min_compress_ratio" {
                out.insert(k.clone(), v.clone());
            } else {
                return Err(Error::config(format!("Unknown compression option '{k}'")));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> OptionValue {
        OptionValue::Constant(s.to_string())
    }

    fn m(pairs: &[(&str, &str)]) -> OptionValue {
        OptionValue::Map(pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect())
    }

    #[test]
    fn replication_class_is_expanded_and_validated() {
        let p = KeyspaceParams::parse(
            &[("replication".into(), m(&[("class", "SimpleStrategy"), ("replication_factor", "3")]))],
            None,
        )
        .unwrap();
        assert_eq!(p.replication["class"], SIMPLE_STRATEGY);
        assert!(p.durable_writes);
        let err = KeyspaceParams::parse(&[("replication".into(), m(&[("class", "SimpleStrategy")]))], None);
        assert!(err.unwrap_err().to_string().contains("replication_factor"));
        let ntp = KeyspaceParams::parse(
            &[("replication".into(), m(&[("class", "NetworkTopologyStrategy"), ("dc1", "3"), ("dc2", "2")]))],
            None,
        )
        .unwrap();
        assert_eq!(ntp.replication_factors().get("dc2"), Some(&2));
        assert!(KeyspaceParams::parse(&[("durable_writes".into(), c("false"))], None).is_err());
    }

    #[test]
    fn table_options_validate_and_unknown_ones_are_refused() {
        let mut p = TableParams::default();
        p.apply(&[
            ("gc_grace_seconds".into(), c("3600")),
            ("compression".into(), m(&[("chunk_length_in_kb", "64")])),
        ])
        .unwrap();
        assert_eq!(p.gc_grace_seconds, 3600);
        assert_eq!(p.chunk_size_bytes(), 64 * 1024);
        assert!(p
            .apply(&[("bogus".into(), c("1"))])
            .unwrap_err()
            .to_string()
            .contains("Unknown property 'bogus'"));
        assert!(p.apply(&[("bloom_filter_fp_chance".into(), c("0"))]).is_err());
        let lcs = || ("compaction".to_string(), m(&[("class", "LeveledCompactionStrategy")]));
        assert_eq!(TableParams::for_create(&[]).unwrap().bloom_filter_fp_chance, 0.01);
        assert_eq!(TableParams::for_create(&[lcs()]).unwrap().bloom_filter_fp_chance, 0.1);
        let set = ("bloom_filter_fp_chance".to_string(), c("0.02"));
        assert_eq!(TableParams::for_create(&[lcs(), set]).unwrap().bloom_filter_fp_chance, 0.02);
        assert!(p.apply(&[("compaction".into(), m(&[("class", "Nope")]))]).is_err());
    }
}
