//! The command line of `sibyl-bench`: which engines, which workloads, and their sizes.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};

/// An engine the benchmark can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum EngineKind {
    /// Sibyl's LSM engine (always built).
    Sibyl,
    /// RocksDB through the `rocksdb` crate (cargo feature `rocksdb`).
    Rocksdb,
    /// fjall (cargo feature `fjall`).
    Fjall,
}

impl EngineKind {
    /// The name printed in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Sibyl => "sibyl",
            EngineKind::Rocksdb => "rocksdb",
            EngineKind::Fjall => "fjall",
        }
    }

    /// The cargo feature that compiles this engine in, if it needs one.
    #[must_use]
    pub fn feature(self) -> Option<&'static str> {
        match self {
            EngineKind::Sibyl => None,
            EngineKind::Rocksdb => Some("rocksdb"),
            EngineKind::Fjall => Some("fjall"),
        }
    }

    /// Whether this binary was built with the engine.
    #[must_use]
    pub fn is_compiled_in(self) -> bool {
        match self {
            EngineKind::Sibyl => true,
            EngineKind::Rocksdb => cfg!(feature = "rocksdb"),
            EngineKind::Fjall => cfg!(feature = "fjall"),
        }
    }
}

/// A workload, named as in RocksDB's `db_bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Benchmark {
    /// `num` writes of keys `0..num` in key order into a fresh database.
    Fillseq,
    /// `num` writes of keys drawn uniformly from `0..num` into a fresh database.
    Fillrandom,
    /// `num` random writes over the existing data.
    Overwrite,
    /// `reads` point reads of keys that exist.
    Readrandom,
    /// `reads` point reads of keys that were never written.
    Readmissing,
    /// `seeks` seeks to a random key, each reading the next `seek_nexts` entries.
    Seekrandom,
    /// `sync_writes` random writes from `sync_writers` threads, each acknowledged after fsync.
    Fillsync,
    /// Compaction under load: `num` keys, then `overwrite_factor * num` random overwrites,
    /// with paced reads throughout and a major compaction at the end (see `sustained`).
    Sustained,
    /// As `sustained`, with half of the operations deletes.
    Deletes,
}

impl Benchmark {
    /// The name printed in reports (the `db_bench` name).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::Fillseq => "fillseq",
            Benchmark::Fillrandom => "fillrandom",
            Benchmark::Overwrite => "overwrite",
            Benchmark::Readrandom => "readrandom",
            Benchmark::Readmissing => "readmissing",
            Benchmark::Seekrandom => "seekrandom",
            Benchmark::Fillsync => "fillsync",
            Benchmark::Sustained => "sustained",
            Benchmark::Deletes => "deletes",
        }
    }

    /// Whether the workload writes (and so reports write and space amplification).
    #[must_use]
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Benchmark::Fillseq | Benchmark::Fillrandom | Benchmark::Overwrite | Benchmark::Fillsync
        )
    }
}

/// A Sibyl compaction strategy (Cassandra's class names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Strategy {
    /// SizeTieredCompactionStrategy (the default).
    Stcs,
    /// LeveledCompactionStrategy (160 MiB SSTables, fanout 10).
    Lcs,
    /// TimeWindowCompactionStrategy (1-day windows).
    Twcs,
}

impl Strategy {
    /// The variant suffix in reports.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Strategy::Stcs => "[stcs]",
            Strategy::Lcs => "[lcs]",
            Strategy::Twcs => "[twcs]",
        }
    }

    /// The table's `compaction` options, with Cassandra's defaults.
    #[must_use]
    pub fn options(self) -> std::collections::BTreeMap<String, String> {
        let class = match self {
            Strategy::Stcs => "SizeTieredCompactionStrategy",
            Strategy::Lcs => "LeveledCompactionStrategy",
            Strategy::Twcs => "TimeWindowCompactionStrategy",
        };
        std::collections::BTreeMap::from([("class".to_string(), class.to_string())])
    }
}

/// `sibyl-bench`: a db_bench-style comparison of Sibyl's engine with RocksDB and fjall.
#[derive(Debug, Clone, Parser)]
#[command(name = "sibyl-bench", version, about, long_about = None)]
pub struct BenchConfig {
    /// Engines to run, in order. rocksdb and fjall need the cargo features of the same name.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sibyl")]
    pub engines: Vec<EngineKind>,

    /// Workloads to run on each engine, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom,fillsync"
    )]
    pub benchmarks: Vec<Benchmark>,

    /// Number of distinct keys (and of writes in fillseq, fillrandom and overwrite).
    #[arg(long, default_value_t = 1_000_000)]
    pub num: u64,

    /// Operations in readrandom, readmissing and seekrandom.
    #[arg(long, default_value_t = 200_000)]
    pub reads: u64,

    /// Operations in seekrandom (each reads `seek_nexts` entries, so fewer than `reads`).
    #[arg(long, default_value_t = 20_000)]
    pub seeks: u64,

    /// Key size in bytes: the key index as zero-padded decimal.
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,

    /// Value size in bytes (about half compressible, as db_bench's default).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,

    /// Entries read after each seek in seekrandom.
    #[arg(long, default_value_t = 100)]
    pub seek_nexts: usize,

    /// Concurrent writer threads in fillsync.
    #[arg(long, default_value_t = 64)]
    pub sync_writers: usize,

    /// Total writes in fillsync (over all writer threads).
    #[arg(long, default_value_t = 20_000)]
    pub sync_writes: u64,

    /// Sibyl's compaction strategies for sustained and deletes, each run as its own variant
    /// (RocksDB runs its default leveled compaction).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "stcs,lcs,twcs")]
    pub strategies: Vec<Strategy>,

    /// Operations after the load in sustained and deletes, as a multiple of `num`.
    #[arg(long, default_value_t = 10)]
    pub overwrite_factor: u64,

    /// Paced point reads per second during sustained and deletes (their idle phase times
    /// `reads / 10` of them).
    #[arg(long, default_value_t = 2000)]
    pub read_rate: u64,

    /// Directory for the databases (default: a temporary directory, deleted afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,

    /// Keep each database's files instead of deleting them when its workloads are done.
    #[arg(long)]
    pub keep_data: bool,

    /// Seed of every random choice (default: from the clock; always printed).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Node configuration (cassandra.yaml style) giving Sibyl's engine settings (default: the
    /// embedded conf/sibyl.yaml). The bench still chooses the directories and commitlog_sync.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl BenchConfig {
    /// Checks sizes and that every engine asked for is compiled in.
    pub fn validate(&self) -> Result<()> {
        for e in &self.engines {
            if !e.is_compiled_in() {
                let feature = e.feature().unwrap_or("?");
                bail!(
                    "engine {} is not compiled into this binary: rebuild with `--features {feature}` \
                     (e.g. cargo run --release -p sibyl-tools --features {feature} --bin sibyl-bench -- ...)",
                    e.name()
                );
            }
        }
        if self.engines.is_empty() || self.benchmarks.is_empty() {
            bail!("--engines and --benchmarks must each name at least one entry");
        }
        if self.num == 0 || self.num > u64::from(u32::MAX) / 2 {
            bail!("--num must be between 1 and {}", u32::MAX / 2);
        }
        // readmissing uses keys num..2*num, so they must fit the key width too.
        let digits = (2 * self.num - 1).to_string().len();
        if self.key_size < digits || self.key_size > 1024 {
            bail!("--key-size must be between {digits} (digits of 2*num-1) and 1024 bytes");
        }
        if self.value_size == 0 || self.value_size > 1 << 20 {
            bail!("--value-size must be between 1 and 1048576 bytes");
        }
        if self.sync_writers == 0 || self.sync_writers > 4096 {
            bail!("--sync-writers must be between 1 and 4096");
        }
        if self.overwrite_factor == 0 || self.overwrite_factor > 1000 {
            bail!("--overwrite-factor must be between 1 and 1000");
        }
        if self.read_rate == 0 || self.read_rate > 1_000_000 {
            bail!("--read-rate must be between 1 and 1000000 reads per second");
        }
        let compaction =
            self.benchmarks.iter().any(|b| matches!(b, Benchmark::Sustained | Benchmark::Deletes));
        if compaction && self.engines.contains(&EngineKind::Fjall) {
            bail!("sustained and deletes run on sibyl and rocksdb only");
        }
        if compaction && self.strategies.is_empty() {
            bail!("--strategies must name at least one strategy");
        }
        if self.seek_nexts == 0 {
            bail!("--seek-nexts must be at least 1");
        }
        Ok(())
    }

    /// Bytes of one key-value pair as a user counts them.
    #[must_use]
    pub fn entry_bytes(&self) -> u64 {
        (self.key_size + self.value_size) as u64
    }
}
