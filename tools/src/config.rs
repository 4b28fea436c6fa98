//! Node configuration: cassandra.yaml-style YAML turned into engine options.
//!
//! The single-node default (`conf/sibyl.yaml`) is embedded in the binaries, so a node starts with
//! no file at all; `--config FILE` replaces it. Keys use cassandra.yaml's names; both the 4.1+
//! style with units in the value (`commitlog_sync_period: 10s`) and the older style with units in
//! the name (`commitlog_sync_period_in_ms: 10000`) are accepted. Unknown keys are an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sibyl_engine::{EngineOptions, SyncMode};

/// The embedded single-node default configuration.
pub const DEFAULT_YAML: &str = include_str!("../../conf/sibyl.yaml");

/// The keys of a node's YAML file. Every field is optional; absent keys keep the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Table data directories (the first is used).
    pub data_file_directories: Option<Vec<PathBuf>>,
    /// Commit log directory.
    pub commitlog_directory: Option<PathBuf>,
    /// `periodic`, `batch` or `group`.
    pub commitlog_sync: Option<String>,
    /// Duration between periodic syncs, e.g. `10000ms`.
    pub commitlog_sync_period: Option<String>,
    /// Older spelling of `commitlog_sync_period`, in milliseconds.
    pub commitlog_sync_period_in_ms: Option<u64>,
    /// Group-commit gathering window, e.g. `15ms`.
    pub commitlog_sync_group_window: Option<String>,
    /// Older spelling, in milliseconds.
    pub commitlog_sync_group_window_in_ms: Option<u64>,
    /// Segment size, e.g. `32MiB`.
    pub commitlog_segment_size: Option<String>,
    /// Older spelling, in MiB.
    pub commitlog_segment_size_in_mb: Option<u64>,
    /// Total commit log space before forced flushes, e.g. `8192MiB`.
    pub commitlog_total_space: Option<String>,
    /// Older spelling, in MiB.
    pub commitlog_total_space_in_mb: Option<u64>,
    /// Skip damaged commit log records at startup instead of refusing to start.
    pub commitlog_ignore_replay_errors: Option<bool>,
    /// Memtable memory, e.g. `512MiB`.
    pub memtable_heap_space: Option<String>,
    /// Older spelling, in MiB.
    pub memtable_heap_space_in_mb: Option<u64>,
    /// Fraction of the memtable space at which the largest memtable is flushed.
    pub memtable_cleanup_threshold: Option<f64>,
}

impl NodeConfig {
    /// Parses YAML text; `origin` names it in errors.
    pub fn parse(yaml: &str, origin: &str) -> Result<NodeConfig> {
        serde_saphyr::from_str(yaml).with_context(|| format!("invalid configuration in {origin}"))
    }

    /// Reads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<NodeConfig> {
        match path {
            None => NodeConfig::parse(DEFAULT_YAML, "the embedded default conf/sibyl.yaml"),
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
                NodeConfig::parse(&text, &p.display().to_string())
            }
        }
    }

    /// The engine options this configuration describes.
    pub fn engine_options(&self) -> Result<EngineOptions> {
        let data_dir = match &self.data_file_directories {
            Some(dirs) => {
                dirs.first().cloned().context("data_file_directories must list at least one directory")?
            }
            None => PathBuf::from("./data/data"),
        };
        let mut o = EngineOptions::new(Path::new("."));
        o.data_dir = data_dir;
        o.commitlog_dir =
            self.commitlog_directory.clone().unwrap_or_else(|| PathBuf::from("./data/commitlog"));
        let period = either_duration(
            "commitlog_sync_period",
            &self.commitlog_sync_period,
            self.commitlog_sync_period_in_ms,
        )?
        .unwrap_or(Duration::from_secs(10));
        let window = either_duration(
            "commitlog_sync_group_window",
            &self.commitlog_sync_group_window,
            self.commitlog_sync_group_window_in_ms,
        )?
        .unwrap_or(Duration::from_millis(15));
        o.commitlog_sync = match self.commitlog_sync.as_deref().unwrap_or("periodic") {
            "periodic" => SyncMode::Periodic { period },
            "batch" => SyncMode::Batch,
            "group" => SyncMode::Group { window },
            other => bail!("commitlog_sync: {other:?} is not one of periodic, batch, group"),
        };
        if let Some(b) = either_size(
            "commitlog_segment_size",
            &self.commitlog_segment_size,
            self.commitlog_segment_size_in_mb,
        )? {
            if !(1 << 20..=1 << 30).contains(&b) {
                bail!("commitlog_segment_size must be between 1MiB and 1024MiB");
            }
            o.commitlog_segment_size_bytes = b as u32;
        }
        if let Some(b) = either_size(
            "commitlog_total_space",
            &self.commitlog_total_space,
            self.commitlog_total_space_in_mb,
        )? {
            o.commitlog_total_space_bytes = b;
        }
        if let Some(b) =
            either_size("memtable_heap_space", &self.memtable_heap_space, self.memtable_heap_space_in_mb)?
        {
            if b < 1 << 20 {
                bail!("memtable_heap_space must be at least 1MiB");
            }
            o.memtable_space_bytes = usize::try_from(b).context("memtable_heap_space is too large")?;
        }
        if let Some(t) = self.memtable_cleanup_threshold {
            if !(t > 0.0 && t <= 1.0) {
                bail!("memtable_cleanup_threshold must be in (0, 1], got {t}");
            }
            o.memtable_cleanup_threshold = t;
        }
        o.commitlog_ignore_replay_errors = self.commitlog_ignore_replay_errors.unwrap_or(false);
        Ok(o)
    }
}

fn either_duration(key: &str, new: &Option<String>, old_ms: Option<u64>) -> Result<Option<Duration>> {
    match (new, old_ms) {
        (Some(_), Some(_)) => bail!("{key} and {key}_in_ms are both set; keep one"),
        (Some(s), None) => Ok(Some(parse_duration(s).with_context(|| format!("{key}: {s:?}"))?)),
        (None, Some(ms)) => Ok(Some(Duration::from_millis(ms))),
        (None, None) => Ok(None),
    }
}

fn either_size(key: &str, new: &Option<String>, old_mib: Option<u64>) -> Result<Option<u64>> {
    match (new, old_mib) {
        (Some(_), Some(_)) => bail!("{key} and {key}_in_mb are both set; keep one"),
        (Some(s), None) => Ok(Some(parse_size(s).with_context(|| format!("{key}: {s:?}"))?)),
        (None, Some(mib)) => Ok(Some(mib.checked_mul(1 << 20).context(format!("{key}_in_mb is too large"))?)),
        (None, None) => Ok(None),
    }
}

fn split_number(s: &str) -> Result<(u64, &str)> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        bail!("expected a number followed by a unit");
    }
    let n: u64 = s[..digits].parse().context("number too large")?;
    Ok((n, s[digits..].trim()))
}

/// Parses a Cassandra duration: a whole number and one of `ms`, `s`, `m`, `h`, `d`
/// (Cassandra's long forms such as `milliseconds` are accepted too).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let (n, unit) = split_number(s)?;
    let ms = match unit.to_ascii_lowercase().as_str() {
        "ms" | "millis" | "milliseconds" => 1,
        "s" | "seconds" => 1000,
        "m" | "minutes" => 60_000,
        "h" | "hours" => 3_600_000,
        "d" | "days" => 86_400_000,
        other => bail!("unknown duration unit {other:?} (use ms, s, m, h or d)"),
    };
    Ok(Duration::from_millis(n.checked_mul(ms).context("duration too large")?))
}

/// Parses a Cassandra data size: a whole number and one of `B`, `KiB`, `MiB`, `GiB`.
pub fn parse_size(s: &str) -> Result<u64> {
    let (n, unit) = split_number(s)?;
    let mult: u64 = match unit {
        "B" | "bytes" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => bail!("unknown size unit {other:?} (use B, KiB, MiB or GiB)"),
    };
    n.checked_mul(mult).context("size too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_to_cassandra_defaults() {
        let o = NodeConfig::load(None).unwrap().engine_options().unwrap();
        assert_eq!(o.commitlog_sync, SyncMode::Periodic { period: Duration::from_secs(10) });
        assert_eq!(o.commitlog_segment_size_bytes, 32 << 20);
        assert_eq!(o.commitlog_total_space_bytes, 8192 << 20);
        assert_eq!(o.memtable_space_bytes, 512 << 20);
        assert_eq!(o.data_dir, PathBuf::from("./data/data"));
        assert!(!o.commitlog_ignore_replay_errors);
    }

    #[test]
    fn every_key_in_the_default_file_is_documented_by_a_comment() {
        let mut previous_is_comment = false;
        for line in DEFAULT_YAML.lines() {
            let is_key = !line.starts_with(' ') && !line.starts_with('#') && line.contains(':');
            if is_key {
                assert!(previous_is_comment, "key without a comment above it: {line}");
            }
            if !line.trim().is_empty() {
                previous_is_comment = line.starts_with('#');
            }
        }
    }

    #[test]
    fn old_and_new_key_spellings_are_accepted_but_not_both() {
        let o = NodeConfig::parse("commitlog_sync: group\ncommitlog_sync_group_window_in_ms: 3\n", "t")
            .unwrap()
            .engine_options()
            .unwrap();
        assert_eq!(o.commitlog_sync, SyncMode::Group { window: Duration::from_millis(3) });
        let both =
            NodeConfig::parse("commitlog_sync_period: 1s\ncommitlog_sync_period_in_ms: 5\n", "t").unwrap();
        assert!(both.engine_options().unwrap_err().to_string().contains("both set"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_clear_errors() {
        let err = NodeConfig::parse("commitlog_synk: batch\n", "my.yaml").unwrap_err();
        assert!(format!("{err:#}").contains("my.yaml"), "{err:#}");
        let bad =
            NodeConfig::parse("commitlog_sync: sometimes\n", "t").unwrap().engine_options().unwrap_err();
        assert!(bad.to_string().contains("periodic, batch, group"), "{bad}");
        let unit =
            NodeConfig::parse("commitlog_segment_size: 32MB\n", "t").unwrap().engine_options().unwrap_err();
        assert!(format!("{unit:#}").contains("MiB"), "{unit:#}");
    }

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(parse_size("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_duration("10000ms").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("ms").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
