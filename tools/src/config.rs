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
    /// `- class_name: LZ4Compressor`: compress commit log records (absent: uncompressed).
    pub commitlog_compression: Option<Vec<CompressorConfig>>,
    /// Memtable memory, e.g. `512MiB`.
    pub memtable_heap_space: Option<String>,
    /// Older spelling, in MiB.
    pub memtable_heap_space_in_mb: Option<u64>,
    /// Fraction of the memtable space at which the largest memtable is flushed.
    pub memtable_cleanup_threshold: Option<f64>,
    /// Memory for decompressed SSTable chunks, e.g. `256MiB` (0 disables the cache).
    pub file_cache_size: Option<String>,
    /// Older spelling, in MiB.
    pub file_cache_size_in_mb: Option<u64>,
    /// Memory for partition index entries, e.g. `100MiB` (0 disables the cache).
    pub key_cache_size: Option<String>,
    /// Older spelling, in MiB.
    pub key_cache_size_in_mb: Option<u64>,
    /// Background compaction threads (0 turns background compaction off).
    pub concurrent_compactors: Option<u32>,
    /// Input bytes per second all compactions may read, e.g. `64MiB/s` (`0MiB/s` = unlimited).
    pub compaction_throughput: Option<String>,
    /// Older spelling, in MiB per second.
    pub compaction_throughput_mb_per_sec: Option<u64>,
    /// Writes to a table slow down once this many SSTables wait for compaction (0: never).
    pub sstable_slowdown_trigger: Option<u32>,
    /// Writes to a table wait for compaction once this many SSTables wait for it.
    pub sstable_stop_trigger: Option<u32>,
    /// Name of the cluster (`system.local.cluster_name`).
    pub cluster_name: Option<String>,
    /// Tokens this node owns on the ring (chosen at random on the first start, then kept).
    pub num_tokens: Option<u32>,
    /// Address for other nodes.
    pub listen_address: Option<String>,
    /// Address for CQL clients.
    pub rpc_address: Option<String>,
    /// Port for CQL clients.
    pub native_transport_port: Option<u16>,
    /// Largest CQL frame, e.g. `16MiB`.
    pub native_transport_max_frame_size: Option<String>,
    /// Older spelling, in MiB.
    pub native_transport_max_frame_size_in_mb: Option<u64>,
    /// Threads executing CQL requests (they may wait on disk).
    pub native_transport_max_threads: Option<u32>,
    /// Most concurrent client connections.
    pub native_transport_max_concurrent_connections: Option<i64>,
    /// Most requests in flight on one connection; beyond it the connection is not read.
    pub native_transport_max_requests_per_connection: Option<u32>,
    /// Reads scanning this many tombstones are logged.
    pub tombstone_warn_threshold: Option<u32>,
    /// Reads scanning this many tombstones fail.
    pub tombstone_failure_threshold: Option<u32>,
    /// Only `SimpleSnitch` today.
    pub endpoint_snitch: Option<String>,
    /// Only `org.apache.cassandra.dht.Murmur3Partitioner`.
    pub partitioner: Option<String>,
    /// Port for internode messaging (gossip, replication).
    pub storage_port: Option<u16>,
    /// Where a starting node finds the cluster: cassandra.yaml's shape,
    /// `- class_name: ...SimpleSeedProvider` with `parameters: - seeds: "a,b:7001"`.
    pub seed_provider: Option<Vec<SeedProviderConfig>>,
    /// Suspicion level at which the failure detector convicts a node (Cassandra: 8).
    pub phi_convict_threshold: Option<f64>,
    /// How long the coordinator waits for write acknowledgements, e.g. `2000ms`.
    pub write_request_timeout: Option<String>,
    /// Older spelling, in milliseconds.
    pub write_request_timeout_in_ms: Option<u64>,
    /// How long the coordinator waits for single-partition reads, e.g. `5000ms`.
    pub read_request_timeout: Option<String>,
    /// Older spelling, in milliseconds.
    pub read_request_timeout_in_ms: Option<u64>,
    /// How long the coordinator waits for range scans, e.g. `10000ms`.
    pub range_request_timeout: Option<String>,
    /// Older spelling, in milliseconds.
    pub range_request_timeout_in_ms: Option<u64>,
    /// This node's data center (with `GossipingPropertyFileSnitch`; Cassandra reads it from
    /// cassandra-rackdc.properties).
    pub dc: Option<String>,
    /// This node's rack (with `GossipingPropertyFileSnitch`).
    pub rack: Option<String>,
    /// Store hints for replicas that miss writes (default true).
    pub hinted_handoff_enabled: Option<bool>,
    /// Data centers whose replicas get no hints.
    pub hinted_handoff_disabled_datacenters: Option<Vec<String>>,
    /// A replica down longer than this gets no new hints, e.g. `3h`.
    pub max_hint_window: Option<String>,
    /// Older spelling, in milliseconds.
    pub max_hint_window_in_ms: Option<u64>,
    /// Where hints are kept (default `./data/hints`).
    pub hints_directory: Option<PathBuf>,
    /// Where logged batches are kept until their coordinator applied them (default
    /// `./data/batchlog`; Cassandra keeps them in the `system.batches` table).
    pub batchlog_directory: Option<PathBuf>,
    /// Hint delivery rate per second, shared by the other nodes, e.g. `1024KiB` (0: unthrottled).
    pub hinted_handoff_throttle: Option<String>,
    /// Older spelling, in KiB.
    pub hinted_handoff_throttle_in_kb: Option<u64>,
    /// Size at which a hints file is closed for delivery, e.g. `128MiB`.
    pub max_hints_file_size: Option<String>,
    /// Older spelling, in MiB.
    pub max_hints_file_size_in_mb: Option<u64>,
    /// Hints kept per target host at most, e.g. `1GiB` (0: no cap).
    pub max_hints_size_per_host: Option<String>,
    /// How often appended hints are synced to disk, e.g. `10000ms`.
    pub hints_flush_period: Option<String>,
    /// Older spelling, in milliseconds.
    pub hints_flush_period_in_ms: Option<u64>,
    /// Address and port of the admin HTTP endpoint (sibyltool, Prometheus `/metrics`).
    pub admin_address: Option<String>,
    /// Port of the admin endpoint.
    pub admin_port: Option<u16>,
    /// Whether a new node streams its ranges from the cluster before joining (default true;
    /// seeds never bootstrap).
    pub auto_bootstrap: Option<bool>,
    /// Choose a new node's tokens to balance ownership for this replication factor instead of
    /// at random.
    pub allocate_tokens_for_local_replication_factor: Option<u32>,
    /// On its first start, take over the tokens and data of the dead node at this address.
    pub replace_address_first_boot: Option<String>,
    /// Outbound streaming rate shared by every stream of the node, e.g. `24MiB/s` (0 = unlimited).
    pub stream_throughput_outbound: Option<String>,
    /// Older spelling, in megabits per second.
    pub stream_throughput_outbound_megabits_per_sec: Option<u64>,
    /// How long a joining or leaving node waits after announcing it before moving data, so
    /// every coordinator sends it the writes of its pending ranges (Cassandra's
    /// `-Dcassandra.ring_delay_ms`; default 30000).
    pub ring_delay_ms: Option<u64>,
    /// Refuse to bootstrap or decommission while another node joins or leaves (Cassandra's
    /// `-Dcassandra.consistent.rangemovement`; default true).
    pub consistent_rangemovement: Option<bool>,
    /// The YAML text this configuration came from, to name lines in errors.
    #[serde(skip)]
    pub source: String,
}

/// One entry of `commitlog_compression`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressorConfig {
    /// Only `LZ4Compressor` (or `org.apache.cassandra.io.compress.LZ4Compressor`).
    pub class_name: String,
    /// Accepted and ignored, as cassandra.yaml's example writes it (`parameters: [ ~ ]`).
    #[serde(default)]
    pub parameters: Option<Vec<Option<std::collections::BTreeMap<String, String>>>>,
}

/// One entry of `seed_provider`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProviderConfig {
    /// Only `org.apache.cassandra.locator.SimpleSeedProvider` (or `SimpleSeedProvider`).
    pub class_name: String,
    /// `- seeds: "host[:port],..."`.
    #[serde(default)]
    pub parameters: Vec<std::collections::BTreeMap<String, String>>,
}

/// Node settings outside the engine.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// `cluster_name`.
    pub cluster_name: String,
    /// `num_tokens`.
    pub num_tokens: u32,
    /// `listen_address`.
    pub listen_address: std::net::IpAddr,
    /// `rpc_address`.
    pub rpc_address: std::net::IpAddr,
    /// `native_transport_port`.
    pub native_transport_port: u16,
    /// `native_transport_max_frame_size` in bytes.
    pub max_frame_bytes: usize,
    /// `native_transport_max_threads`.
    pub max_threads: usize,
    /// `native_transport_max_concurrent_connections`.
    pub max_connections: usize,
    /// `native_transport_max_requests_per_connection`.
    pub max_requests_per_connection: usize,
    /// `tombstone_warn_threshold`.
    pub tombstone_warn_threshold: usize,
    /// `tombstone_failure_threshold`.
    pub tombstone_failure_threshold: usize,
    /// `storage_port`.
    pub storage_port: u16,
    /// Seeds, with their storage ports.
    pub seeds: Vec<std::net::SocketAddr>,
    /// `phi_convict_threshold`.
    pub phi_convict_threshold: f64,
    /// Coordinator timeouts.
    pub timeouts: sibyl_cluster::Timeouts,
    /// Data center.
    pub dc: String,
    /// Rack.
    pub rack: String,
    /// Admin endpoint address (`admin_address`:`admin_port`).
    pub admin: std::net::SocketAddr,
    /// `auto_bootstrap`.
    pub auto_bootstrap: bool,
    /// `allocate_tokens_for_local_replication_factor`.
    pub allocate_tokens_for_rf: Option<usize>,
    /// `replace_address_first_boot`.
    pub replace_address: Option<std::net::IpAddr>,
    /// `stream_throughput_outbound` in bytes per second (0 = unlimited).
    pub stream_throughput_bytes_per_sec: u64,
    /// `ring_delay_ms`.
    pub ring_delay: Duration,
    /// `consistent_rangemovement`.
    pub consistent_rangemovement: bool,
}

impl NodeConfig {
    /// Parses YAML text; `origin` names it in errors.
    pub fn parse(yaml: &str, origin: &str) -> Result<NodeConfig> {
        let mut c: NodeConfig =
            serde_saphyr::from_str(yaml).with_context(|| format!("invalid configuration in {origin}"))?;
        c.source = yaml.to_string();
        Ok(c)
    }

    /// Checks every value, naming the key and its line in the error.
    pub fn validate(&self) -> Result<()> {
        let located = |e: anyhow::Error| {
            let text = format!("{e:#}");
            let key: String = text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            match self.line_of(&key) {
                Some(line) => anyhow::anyhow!("line {line}: {text}"),
                None => e,
            }
        };
        self.engine_options().map_err(located)?;
        self.node_settings().map_err(located)?;
        self.hints_config().map_err(located)?;
        Ok(())
    }

    /// The 1-based line where top-level `key` is set.
    fn line_of(&self, key: &str) -> Option<usize> {
        if key.is_empty() {
            return None;
        }
        self.source
            .lines()
            .position(|l| l.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with(':')))
            .map(|i| i + 1)
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
        if let Some(b) = either_size("file_cache_size", &self.file_cache_size, self.file_cache_size_in_mb)? {
            o.chunk_cache_bytes = usize::try_from(b).context("file_cache_size is too large")?;
        }
        if let Some(b) = either_size("key_cache_size", &self.key_cache_size, self.key_cache_size_in_mb)? {
            o.key_cache_bytes = usize::try_from(b).context("key_cache_size is too large")?;
        }
        if let Some(n) = self.concurrent_compactors {
            if n > 64 {
                bail!("concurrent_compactors must be at most 64, got {n}");
            }
            o.concurrent_compactors = n as usize;
        }
        if self.compaction_throughput.is_some() && self.compaction_throughput_mb_per_sec.is_some() {
            bail!("compaction_throughput and compaction_throughput_mb_per_sec are both set; keep one");
        }
        let throughput =
            self.compaction_throughput.as_deref().map(|s| s.strip_suffix("/s").unwrap_or(s).to_string());
        if let Some(b) =
            either_size("compaction_throughput", &throughput, self.compaction_throughput_mb_per_sec)?
        {
            o.compaction_throughput_bytes_per_sec = b;
        }
        if let Some(n) = self.sstable_slowdown_trigger {
            o.sstable_slowdown_trigger = n as usize;
        }
        if let Some(n) = self.sstable_stop_trigger {
            o.sstable_stop_trigger = n as usize;
        }
        if o.sstable_slowdown_trigger > 0 && o.sstable_stop_trigger <= o.sstable_slowdown_trigger {
            bail!(
                "sstable_stop_trigger ({}) must be greater than sstable_slowdown_trigger ({})",
                o.sstable_stop_trigger,
                o.sstable_slowdown_trigger
            );
        }
        o.commitlog_ignore_replay_errors = self.commitlog_ignore_replay_errors.unwrap_or(false);
        o.commitlog_compression = match self.commitlog_compression.as_deref() {
            None | Some([]) => false,
            Some([c])
                if matches!(
                    c.class_name.as_str(),
                    "LZ4Compressor" | "org.apache.cassandra.io.compress.LZ4Compressor"
                ) =>
            {
                true
            }
            Some([c]) => bail!(
                "commitlog_compression: only LZ4Compressor is implemented, got {:?} (remove the key for an uncompressed log)",
                c.class_name
            ),
            Some(_) => bail!("commitlog_compression: name one compressor"),
        };
        Ok(o)
    }
}

impl NodeConfig {
    /// The settings of the node around the engine: identity, addresses, CQL limits.
    pub fn node_settings(&self) -> Result<NodeSettings> {
        let addr = |key: &str, v: &Option<String>| -> Result<std::net::IpAddr> {
            let text = v.as_deref().unwrap_or("127.0.0.1");
            text.parse().with_context(|| format!("{key}: {text:?} is not an IP address"))
        };
        let max_frame_bytes = either_size(
            "native_transport_max_frame_size",
            &self.native_transport_max_frame_size,
            self.native_transport_max_frame_size_in_mb,
        )?
        .unwrap_or(16 << 20);
        if !(64 << 10..=256 << 20).contains(&max_frame_bytes) {
            bail!("native_transport_max_frame_size must be between 64KiB and 256MiB");
        }
        let snitch = self.endpoint_snitch.as_deref().unwrap_or("SimpleSnitch");
        let (dc, rack) = match snitch.rsplit('.').next() {
            Some("SimpleSnitch") => {
                if self.dc.is_some() || self.rack.is_some() {
                    bail!("dc and rack need endpoint_snitch: GossipingPropertyFileSnitch (SimpleSnitch puts every node in datacenter1, rack1)");
                }
                ("datacenter1".to_string(), "rack1".to_string())
            }
            Some("GossipingPropertyFileSnitch") => {
                (self.dc.clone().unwrap_or_else(|| "dc1".into()), self.rack.clone().unwrap_or_else(|| "rack1".into()))
            }
            _ => bail!("endpoint_snitch: only SimpleSnitch and GossipingPropertyFileSnitch are implemented, got {snitch:?}"),
        };
        for (key, v) in [("dc", &dc), ("rack", &rack)] {
            if v.is_empty()
                || v.len() > 64
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                bail!("{key}: {v:?} must be 1 to 64 letters, digits, '-' or '_'");
            }
        }
        if let Some(p) = &self.partitioner {
            if p.rsplit('.').next() != Some("Murmur3Partitioner") {
                bail!(
                    "partitioner: only org.apache.cassandra.dht.Murmur3Partitioner is supported, got {p:?}"
                );
            }
        }
        let num_tokens = self.num_tokens.unwrap_or(16);
        if !(1..=1536).contains(&num_tokens) {
            bail!("num_tokens must be between 1 and 1536");
        }
        let warn = self.tombstone_warn_threshold.unwrap_or(1000) as usize;
        let fail = self.tombstone_failure_threshold.unwrap_or(100_000) as usize;
        if warn > fail {
            bail!("tombstone_warn_threshold ({warn}) must not exceed tombstone_failure_threshold ({fail})");
        }
        if self.cluster_name.as_ref().is_some_and(|n| n.is_empty() || n.len() > 256) {
            bail!("cluster_name must be 1 to 256 bytes");
        }
        let listen_address = addr("listen_address", &self.listen_address)?;
        let storage_port = self.storage_port.unwrap_or(7000);
        let seeds = self.seeds(storage_port)?;
        let phi_convict_threshold = self.phi_convict_threshold.unwrap_or(8.0);
        if !(1.0..=32.0).contains(&phi_convict_threshold) {
            bail!("phi_convict_threshold must be between 1 and 32 (Cassandra's default is 8), got {phi_convict_threshold}");
        }
        let timeout =
            |key: &str, new: &Option<String>, old: Option<u64>, default_ms: u64| -> Result<Duration> {
                let d = either_duration(key, new, old)?.unwrap_or(Duration::from_millis(default_ms));
                if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
                    bail!("{key} must be between 10ms and 1h, got {d:?}");
                }
                Ok(d)
            };
        let timeouts = sibyl_cluster::Timeouts {
            write: timeout(
                "write_request_timeout",
                &self.write_request_timeout,
                self.write_request_timeout_in_ms,
                2000,
            )?,
            read: timeout(
                "read_request_timeout",
                &self.read_request_timeout,
                self.read_request_timeout_in_ms,
                5000,
            )?,
            range: timeout(
                "range_request_timeout",
                &self.range_request_timeout,
                self.range_request_timeout_in_ms,
                10000,
            )?,
        };
        let admin = std::net::SocketAddr::new(
            match &self.admin_address {
                Some(a) => a.parse().with_context(|| format!("admin_address: {a:?} is not an IP address"))?,
                None => listen_address,
            },
            self.admin_port.unwrap_or(7199),
        );
        if self.stream_throughput_outbound.is_some()
            && self.stream_throughput_outbound_megabits_per_sec.is_some()
        {
            bail!("stream_throughput_outbound and stream_throughput_outbound_megabits_per_sec are both set; keep one");
        }
        let stream_rate =
            self.stream_throughput_outbound.as_deref().map(|s| s.strip_suffix("/s").unwrap_or(s).to_string());
        let stream_throughput_bytes_per_sec =
            match (&stream_rate, self.stream_throughput_outbound_megabits_per_sec) {
                (Some(_), _) => either_size("stream_throughput_outbound", &stream_rate, None)?.unwrap_or(0),
                (None, Some(mbit)) => mbit.saturating_mul(1_000_000) / 8,
                (None, None) => 24 << 20,
            };
        let replace_address = match &self.replace_address_first_boot {
            Some(a) => Some(
                a.parse()
                    .with_context(|| format!("replace_address_first_boot: {a:?} is not an IP address"))?,
            ),
            None => None,
        };
        let ring_delay_ms = self.ring_delay_ms.unwrap_or(30_000);
        if ring_delay_ms > 600_000 {
            bail!("ring_delay_ms must be at most 600000 (10 minutes), got {ring_delay_ms}");
        }
        let allocate_tokens_for_rf = match self.allocate_tokens_for_local_replication_factor {
            Some(0) => bail!("allocate_tokens_for_local_replication_factor must be at least 1"),
            Some(rf) => Some(rf as usize),
            None => None,
        };
        Ok(NodeSettings {
            auto_bootstrap: self.auto_bootstrap.unwrap_or(true),
            allocate_tokens_for_rf,
            replace_address,
            stream_throughput_bytes_per_sec,
            ring_delay: Duration::from_millis(ring_delay_ms),
            consistent_rangemovement: self.consistent_rangemovement.unwrap_or(true),
            storage_port,
            seeds,
            phi_convict_threshold,
            timeouts,
            dc,
            rack,
            admin,
            cluster_name: self.cluster_name.clone().unwrap_or_else(|| "Test Cluster".to_string()),
            num_tokens,
            listen_address,
            rpc_address: addr("rpc_address", &self.rpc_address)?,
            native_transport_port: self.native_transport_port.unwrap_or(9042),
            max_frame_bytes: usize::try_from(max_frame_bytes)
                .context("native_transport_max_frame_size is too large")?,
            max_threads: self.native_transport_max_threads.unwrap_or(128).max(1) as usize,
            max_connections: match self.native_transport_max_concurrent_connections {
                None | Some(-1) => 1024,
                Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
                Some(n) => {
                    bail!("native_transport_max_concurrent_connections must be positive or -1, got {n}")
                }
            },
            max_requests_per_connection: self
                .native_transport_max_requests_per_connection
                .unwrap_or(1024)
                .max(1) as usize,
            tombstone_warn_threshold: warn,
            tombstone_failure_threshold: fail,
        })
    }
}

impl NodeConfig {
    /// The batchlog's directory.
    #[must_use]
    pub fn batchlog_directory(&self) -> PathBuf {
        self.batchlog_directory.clone().unwrap_or_else(|| PathBuf::from("./data/batchlog"))
    }

    /// Hinted handoff settings.
    pub fn hints_config(&self) -> Result<sibyl_cluster::hints::HintsConfig> {
        let dir = self.hints_directory.clone().unwrap_or_else(|| PathBuf::from("./data/hints"));
        let mut c = sibyl_cluster::hints::HintsConfig::new(dir);
        c.enabled = self.hinted_handoff_enabled.unwrap_or(true);
        c.disabled_datacenters = self.hinted_handoff_disabled_datacenters.clone().unwrap_or_default();
        if let Some(w) =
            either_duration("max_hint_window", &self.max_hint_window, self.max_hint_window_in_ms)?
        {
            c.max_hint_window = w;
        }
        c.throttle_bytes_per_sec = match (&self.hinted_handoff_throttle, self.hinted_handoff_throttle_in_kb) {
            (Some(_), Some(_)) => {
                bail!("hinted_handoff_throttle and hinted_handoff_throttle_in_kb are both set; keep one")
            }
            (Some(s), None) => {
                let s = s.strip_suffix("/s").unwrap_or(s);
                parse_size(s).with_context(|| format!("hinted_handoff_throttle: {s:?}"))?
            }
            (None, Some(kib)) => {
                kib.checked_mul(1 << 10).context("hinted_handoff_throttle_in_kb is too large")?
            }
            (None, None) => c.throttle_bytes_per_sec,
        };
        if let Some(b) =
            either_size("max_hints_file_size", &self.max_hints_file_size, self.max_hints_file_size_in_mb)?
        {
            if !(1 << 20..=1 << 30).contains(&b) {
                bail!("max_hints_file_size must be between 1MiB and 1024MiB");
            }
            c.max_file_bytes = b;
        }
        if let Some(s) = &self.max_hints_size_per_host {
            c.max_bytes_per_host =
                parse_size(s).with_context(|| format!("max_hints_size_per_host: {s:?}"))?;
        }
        if let Some(p) =
            either_duration("hints_flush_period", &self.hints_flush_period, self.hints_flush_period_in_ms)?
        {
            if p < Duration::from_millis(10) {
                bail!("hints_flush_period must be at least 10ms");
            }
            c.flush_period = p;
        }
        Ok(c)
    }

    /// The seeds of `seed_provider` (this node alone when absent).
    fn seeds(&self, storage_port: u16) -> Result<Vec<std::net::SocketAddr>> {
        // Without seeds the node is a cluster of its own (it is its own seed).
        let Some(providers) = &self.seed_provider else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for p in providers {
            if p.class_name.rsplit('.').next() != Some("SimpleSeedProvider") {
                bail!("seed_provider: only org.apache.cassandra.locator.SimpleSeedProvider is implemented, got {:?}", p.class_name);
            }
            for params in &p.parameters {
                for (k, v) in params {
                    if k != "seeds" {
                        bail!("seed_provider: unknown parameter {k:?} (SimpleSeedProvider takes seeds)");
                    }
                    for seed in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        out.push(parse_seed(seed, storage_port)?);
                    }
                }
            }
        }
        if out.is_empty() {
            bail!("seed_provider: no seeds given (parameters: - seeds: \"127.0.0.1\")");
        }
        Ok(out)
    }
}

/// `host` or `host:port` (IP addresses; `[v6]:port` for IPv6 with a port).
fn parse_seed(seed: &str, default_port: u16) -> Result<std::net::SocketAddr> {
    if let Ok(a) = seed.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    let ip: std::net::IpAddr = seed
        .parse()
        .with_context(|| format!("seed_provider: seed {seed:?} is not an IP address or IP:port"))?;
    Ok(std::net::SocketAddr::new(ip, default_port))
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
        assert!(!o.commitlog_compression);
        assert_eq!(o.concurrent_compactors, 2);
        assert_eq!(o.compaction_throughput_bytes_per_sec, 64 << 20);
        assert_eq!((o.sstable_slowdown_trigger, o.sstable_stop_trigger), (32, 64));
        assert_eq!(o.key_cache_bytes, 100 << 20);
        let old = NodeConfig::parse("key_cache_size_in_mb: 0\n", "test").unwrap().engine_options().unwrap();
        assert_eq!(old.key_cache_bytes, 0);
    }

    #[test]
    fn commitlog_compression_takes_cassandras_lz4_entry() {
        let parse = |yaml: &str| NodeConfig::parse(yaml, "test").and_then(|c| c.engine_options());
        let lz4 = "commitlog_compression:\n  - class_name: LZ4Compressor\n    parameters:\n      -\n";
        assert!(parse(lz4).unwrap().commitlog_compression);
        let long = "commitlog_compression:\n  - class_name: org.apache.cassandra.io.compress.LZ4Compressor\n";
        assert!(parse(long).unwrap().commitlog_compression);
        let err = parse("commitlog_compression:\n  - class_name: SnappyCompressor\n").unwrap_err();
        assert!(format!("{err:#}").contains("only LZ4Compressor"), "{err:#}");
    }

    #[test]
    fn backlog_triggers_are_read_and_checked() {
        let o = NodeConfig::parse("sstable_slowdown_trigger: 8\nsstable_stop_trigger: 20\n", "test")
            .unwrap()
            .engine_options()
            .unwrap();
        assert_eq!((o.sstable_slowdown_trigger, o.sstable_stop_trigger), (8, 20));
        let off =
            NodeConfig::parse("sstable_slowdown_trigger: 0\n", "test").unwrap().engine_options().unwrap();
        assert_eq!(off.sstable_slowdown_trigger, 0);
        let err = NodeConfig::parse("sstable_slowdown_trigger: 40\nsstable_stop_trigger: 40\n", "test")
            .unwrap()
            .engine_options()
            .unwrap_err();
        assert!(err.to_string().contains("sstable_stop_trigger (40) must be greater"), "{err}");
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
    fn the_three_node_example_describes_three_racks_of_one_data_center() {
        for i in 1..=3 {
            let text = std::fs::read_to_string(format!(
                "{}/../conf/three-node/node{i}.yaml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let c = NodeConfig::parse(&text, "example").unwrap();
            c.validate().unwrap();
            let s = c.node_settings().unwrap();
            assert_eq!(s.listen_address.to_string(), format!("127.0.0.{i}"));
            assert_eq!((s.dc.as_str(), s.rack.clone()), ("dc1", format!("rack{i}")));
            assert_eq!(s.seeds, vec!["127.0.0.1:7000".parse().unwrap()]);
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
    fn cassandra_yaml_cluster_keys_carry_over() {
        let yaml = "listen_address: 127.0.0.2\nstorage_port: 7001\nseed_provider:\n  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n    parameters:\n      - seeds: \"127.0.0.1, 127.0.0.3:7002\"\nwrite_request_timeout: 3s\nread_request_timeout_in_ms: 700\nphi_convict_threshold: 12\nendpoint_snitch: GossipingPropertyFileSnitch\ndc: east\nrack: r2\n";
        let s = NodeConfig::parse(yaml, "t").unwrap().node_settings().unwrap();
        assert_eq!(s.seeds, vec!["127.0.0.1:7001".parse().unwrap(), "127.0.0.3:7002".parse().unwrap()]);
        assert_eq!(s.timeouts.write, Duration::from_secs(3));
        assert_eq!(s.timeouts.read, Duration::from_millis(700));
        assert_eq!(s.timeouts.range, Duration::from_secs(10));
        assert_eq!((s.dc.as_str(), s.rack.as_str(), s.phi_convict_threshold), ("east", "r2", 12.0));
        assert_eq!(s.admin, "127.0.0.2:7199".parse().unwrap());
        let default = NodeConfig::load(None).unwrap().node_settings().unwrap();
        assert_eq!(
            default.seeds,
            vec!["127.0.0.1:7000".parse().unwrap()],
            "the default node is its own seed"
        );
        let alone = NodeConfig::parse("num_tokens: 4\n", "t").unwrap().node_settings().unwrap();
        assert!(alone.seeds.is_empty(), "a node without seeds is a cluster of its own");
        assert_eq!((default.dc.as_str(), default.rack.as_str()), ("datacenter1", "rack1"));
    }

    #[test]
    fn bad_cluster_values_name_the_key_and_its_line() {
        for (yaml, key) in [
            ("cluster_name: x\nphi_convict_threshold: 0.5\n", "line 2: phi_convict_threshold"),
            ("seed_provider:\n  - class_name: Foo\n", "line 1: seed_provider"),
            ("seed_provider:\n  - class_name: SimpleSeedProvider\n    parameters:\n      - seeds: \"nohost\"\n", "line 1: seed_provider"),
            ("\nwrite_request_timeout: 2 lightyears\n", "line 2: write_request_timeout"),
            ("dc: east\n", "line 1: dc and rack need endpoint_snitch"),
            ("endpoint_snitch: Ec2Snitch\n", "line 1: endpoint_snitch"),
        ] {
            let err = NodeConfig::parse(yaml, "t").unwrap().validate().unwrap_err();
            assert!(format!("{err:#}").starts_with(key), "{yaml}: {err:#}");
        }
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
