//! `sibyltool`: nodetool's commands against a node's admin endpoint.
//!
//! Each command is one HTTP request to the endpoint (`-h host -p port`, default
//! 127.0.0.1:7199); the node renders nodetool's output shape and this tool prints it. See
//! `crate::admin` for the routes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "sibyltool",
    about = "Sibyl's nodetool: inspect and manage a node",
    disable_help_flag = true
)]
pub struct Args {
    /// Print help (nodetool's -h is the host, as here).
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Node's admin address.
    #[arg(short = 'h', long = "host", default_value = "127.0.0.1")]
    pub host: String,
    /// Node's admin port (admin_port in the yaml).
    #[arg(short = 'p', long = "port", default_value_t = 7199)]
    pub port: u16,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// nodetool's commands that Sibyl implements.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Cluster state: UN/DN, address, load, tokens, owns, host id, rack per data center.
    Status {
        /// Show effective ownership for this keyspace.
        keyspace: Option<String>,
    },
    /// Every token of the ring with its node.
    Ring,
    /// This node: id, load, uptime, data center, rack, caches.
    Info,
    /// Cluster name, partitioner, schema versions and the nodes on each.
    Describecluster,
    /// Gossip's state of every node.
    Gossipinfo,
    /// The replicas of a partition key.
    Getendpoints {
        /// Keyspace.
        keyspace: String,
        /// Table.
        table: String,
        /// Partition key (components separated by ':').
        key: String,
    },
    /// Flush memtables to SSTables.
    Flush {
        /// Keyspace (all when absent).
        keyspace: Option<String>,
        /// Tables (all of the keyspace when absent).
        tables: Vec<String>,
    },
    /// Per-table statistics.
    Tablestats {
        /// `keyspace` or `keyspace.table`.
        filter: Option<String>,
    },
    /// Flush everything and stop accepting writes and other nodes' messages (before a restart).
    Drain,
    /// Major compaction: flush, then merge each table's SSTables as its strategy's major
    /// compaction does (waits until done).
    Compact {
        /// Keyspace (all when absent).
        keyspace: Option<String>,
        /// Tables (all of the keyspace when absent).
        tables: Vec<String>,
    },
    /// Pending compaction tasks and the compactions running now, with their progress.
    Compactionstats,
    /// Stop the running compactions (`stop COMPACTION`); their inputs stay live.
    Stop {
        /// The operation type; only COMPACTION is supported.
        #[arg(default_value = "COMPACTION")]
        kind: String,
    },
    /// Print compaction_throughput in MiB/s.
    Getcompactionthroughput,
    /// Set compaction_throughput in MiB/s until restart (0 = unlimited).
    Setcompactionthroughput {
        /// MiB per second.
        value: u64,
    },
    /// Percentiles of SSTables per read, partition size, cells per partition, tombstones per read.
    Tablehistograms {
        /// Keyspace (or `keyspace.table`).
        keyspace: String,
        /// Table.
        table: Option<String>,
    },
    /// Hints this node holds for other nodes: host, address, status, files, size, newest, oldest.
    Listpendinghints,
    /// Delete the hints for one node, or for every node.
    Truncatehints {
        /// Address or host id of the node (all nodes when absent).
        endpoint: Option<String>,
    },
    /// Whether hinted handoff stores new hints, and whether delivery is paused.
    Statushandoff,
    /// Store hints again after disablehandoff.
    Enablehandoff,
    /// Store no new hints (stored ones are still delivered).
    Disablehandoff,
    /// Pause the delivery of hints.
    Pausehandoff,
    /// Resume the delivery of hints.
    Resumehandoff,
    /// Stream this node's data to the nodes that replicate its ranges next, leave the ring and
    /// stop the node. Waits until done.
    Decommission,
    /// Remove a dead node from the ring: its ranges are streamed from the live replicas to
    /// their next replicas. `removenode status` shows the progress of a running removal.
    Removenode {
        /// The dead node's host id (see `status`), or `status`.
        host_id: String,
    },
    /// The node's mode (NORMAL, JOINING, LEAVING, ...) and its streams.
    Netstats,
    /// Set `stream_throughput_outbound` while running, in megabits per second as Cassandra 4.0's
    /// nodetool (0 = unlimited), or in MiB/s with `-m`.
    Setstreamthroughput {
        /// The rate.
        value: u64,
        /// The value is in MiB/s.
        #[arg(short = 'm', long = "mib")]
        mib: bool,
    },
    /// Print `stream_throughput_outbound` (megabits per second, or MiB/s with `-m`).
    Getstreamthroughput {
        /// In MiB/s.
        #[arg(short = 'm', long = "mib")]
        mib: bool,
    },
    /// Drop the data of token ranges this node no longer replicates (after nodes joined, or a
    /// keyspace's replication factor went down).
    Cleanup {
        /// Keyspace (all when absent).
        keyspace: Option<String>,
        /// Tables (all of the keyspace when absent).
        tables: Vec<String>,
    },
    /// Anti-entropy repair: compare this node's ranges with their other replicas by Merkle
    /// trees and sync where they differ. Waits, printing progress, until every session ends.
    Repair {
        /// Keyspace (every replicated keyspace when absent).
        keyspace: Option<String>,
        /// Tables (all of the keyspace when absent).
        tables: Vec<String>,
        /// `-pr`: only the ranges this node is primary for; run it on every node in turn.
        #[arg(long = "partitioner-range", visible_alias = "pr")]
        partitioner_range: bool,
        /// `-st`: start token (exclusive) of a subrange.
        #[arg(long = "start-token", visible_alias = "st", allow_hyphen_values = true)]
        start_token: Option<i64>,
        /// `-et`: end token (inclusive) of a subrange.
        #[arg(long = "end-token", visible_alias = "et", allow_hyphen_values = true)]
        end_token: Option<i64>,
        /// `-full`: accepted; every Sibyl repair is a full repair.
        #[arg(long = "full")]
        full: bool,
    },
    /// Repair sessions: `repair_admin list` shows the ones this node ran; `repair_admin cancel
    /// <id>` stops the running one.
    #[command(name = "repair_admin")]
    RepairAdmin {
        /// `list` or `cancel`.
        #[arg(default_value = "list")]
        action: String,
        /// The session to cancel.
        id: Option<String>,
    },
}

/// nodetool's single-dash long options (`-pr`, `-st`, `-et`, `-full`) as the double-dash ones
/// the parser knows.
#[must_use]
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.as_str() {
            "-pr" | "-st" | "-et" | "-full" => format!("-{a}"),
            _ => a,
        })
        .collect()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The requests a command makes: (method, path with query).
#[must_use]
pub fn requests(command: &Command) -> Vec<(&'static str, String)> {
    match command {
        Command::Status { keyspace: Some(k) } => vec![("GET", format!("/status?keyspace={}", enc(k)))],
        Command::Status { keyspace: None } => vec![("GET", "/status".into())],
        Command::Ring => vec![("GET", "/ring".into())],
        Command::Info => vec![("GET", "/info".into())],
        Command::Describecluster => vec![("GET", "/describecluster".into())],
        Command::Gossipinfo => vec![("GET", "/gossipinfo".into())],
        Command::Getendpoints { keyspace, table, key } => vec![(
            "GET",
            format!("/getendpoints?keyspace={}&table={}&key={}", enc(keyspace), enc(table), enc(key)),
        )],
        Command::Flush { keyspace: None, .. } => vec![("POST", "/flush".into())],
        Command::Flush { keyspace: Some(k), tables } if tables.is_empty() => {
            vec![("POST", format!("/flush?keyspace={}", enc(k)))]
        }
        Command::Flush { keyspace: Some(k), tables } => {
            tables.iter().map(|t| ("POST", format!("/flush?keyspace={}&table={}", enc(k), enc(t)))).collect()
        }
        Command::Tablestats { filter: None } => vec![("GET", "/tablestats".into())],
        Command::Tablestats { filter: Some(f) } => match f.split_once('.') {
            Some((k, t)) => vec![("GET", format!("/tablestats?keyspace={}&table={}", enc(k), enc(t)))],
            None => vec![("GET", format!("/tablestats?keyspace={}", enc(f)))],
        },
        Command::Drain => vec![("POST", "/drain".into())],
        Command::Compact { keyspace: None, .. } => vec![("POST", "/compact".into())],
        Command::Compact { keyspace: Some(k), tables } if tables.is_empty() => {
            vec![("POST", format!("/compact?keyspace={}", enc(k)))]
        }
        Command::Compact { keyspace: Some(k), tables } => tables
            .iter()
            .map(|t| ("POST", format!("/compact?keyspace={}&table={}", enc(k), enc(t))))
            .collect(),
        Command::Compactionstats => vec![("GET", "/compactionstats".into())],
        Command::Stop { .. } => vec![("POST", "/stop".into())],
        Command::Getcompactionthroughput => vec![("GET", "/compactionthroughput".into())],
        Command::Setcompactionthroughput { value } => {
            vec![("POST", format!("/compactionthroughput?value={value}"))]
        }
        Command::Tablehistograms { keyspace, table } => {
            let (k, t) = match (keyspace.split_once('.'), table) {
                (Some((k, t)), None) => (k, t),
                (_, Some(t)) => (keyspace.as_str(), t.as_str()),
                (None, None) => (keyspace.as_str(), ""),
            };
            vec![("GET", format!("/tablehistograms?keyspace={}&table={}", enc(k), enc(t)))]
        }
        Command::Listpendinghints => vec![("GET", "/listpendinghints".into())],
        Command::Truncatehints { endpoint: None } => vec![("POST", "/truncatehints".into())],
        Command::Truncatehints { endpoint: Some(e) } => {
            vec![("POST", format!("/truncatehints?endpoint={}", enc(e)))]
        }
        Command::Statushandoff => vec![("GET", "/statushandoff".into())],
        Command::Enablehandoff => vec![("POST", "/enablehandoff".into())],
        Command::Disablehandoff => vec![("POST", "/disablehandoff".into())],
        Command::Pausehandoff => vec![("POST", "/pausehandoff".into())],
        Command::Resumehandoff => vec![("POST", "/resumehandoff".into())],
        Command::RepairAdmin { action, id: Some(id) } if action == "cancel" => {
            vec![("POST", format!("/repair_admin/cancel?id={}", enc(id)))]
        }
        Command::RepairAdmin { .. } => vec![("GET", "/repair_admin/list".into())],
        Command::Cleanup { keyspace: None, .. } => vec![("POST", "/cleanup".into())],
        Command::Cleanup { keyspace: Some(k), tables } if tables.is_empty() => {
            vec![("POST", format!("/cleanup?keyspace={}", enc(k)))]
        }
        Command::Cleanup { keyspace: Some(k), tables } => tables
            .iter()
            .map(|t| ("POST", format!("/cleanup?keyspace={}&table={}", enc(k), enc(t))))
            .collect(),
        Command::Decommission => vec![("POST", "/decommission".into())],
        Command::Removenode { host_id } if host_id == "status" => vec![("GET", "/removenode/status".into())],
        Command::Removenode { host_id } => vec![("POST", format!("/removenode?host_id={}", enc(host_id)))],
        Command::Netstats => vec![("GET", "/netstats".into())],
        Command::Setstreamthroughput { value, mib } => {
            let bytes =
                if *mib { value.saturating_mul(1 << 20) } else { value.saturating_mul(1_000_000) / 8 };
            vec![("POST", format!("/streamthroughput?bytes={bytes}"))]
        }
        Command::Getstreamthroughput { mib } => vec![("GET", format!("/streamthroughput?mib={mib}"))],
        // Runs as a conversation (start, then poll): see `repair`.
        Command::Repair { .. } => Vec::new(),
    }
}

/// Sends one request to the admin endpoint; the body on success.
pub fn call(host: &str, port: u16, method: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect((host, port)).with_context(|| {
        format!("cannot connect to the node's admin endpoint at {host}:{port} (is the node running? admin_port in its yaml)")
    })?;
    // A major compaction or a cleanup answers when it is done, however long that takes.
    let timeout = if path.starts_with("/compact?")
        || path == "/compact"
        || path.starts_with("/cleanup")
        || path == "/decommission"
        || path.starts_with("/removenode?")
    {
        None
    } else {
        Some(Duration::from_secs(120))
    };
    stream.set_read_timeout(timeout)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).context("reading the node's answer")?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").context("malformed answer from the admin endpoint")?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        bail!("{}", body.trim_end());
    }
    Ok(body.to_string())
}

/// Runs `sibyltool` with parsed arguments, printing to `out`.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    if let Command::Stop { kind } = &args.command {
        if !kind.eq_ignore_ascii_case("COMPACTION") {
            anyhow::bail!("stop {kind}: only COMPACTION can be stopped");
        }
    }
    if let Command::RepairAdmin { action, id } = &args.command {
        match (action.as_str(), id) {
            ("list", None) | ("cancel", Some(_)) => {}
            ("cancel", None) => {
                anyhow::bail!("repair_admin cancel needs the session id (see repair_admin list)")
            }
            _ => anyhow::bail!("repair_admin {action}: the actions are list and cancel <id>"),
        }
    }
    if let Command::Repair { .. } = &args.command {
        return repair(args, out, Duration::from_millis(500));
    }
    for (method, path) in requests(&args.command) {
        let body = call(&args.host, args.port, method, &path)?;
        out.write_all(body.as_bytes())?;
    }
    Ok(())
}

/// The start request of a repair of `keyspace`.
#[must_use]
pub fn repair_path(keyspace: &str, command: &Command) -> String {
    let mut path = format!("/repair?keyspace={}", enc(keyspace));
    if let Command::Repair { tables, partitioner_range, start_token, end_token, .. } = command {
        if !tables.is_empty() {
            path.push_str(&format!("&tables={}", enc(&tables.join(","))));
        }
        if *partitioner_range {
            path.push_str("&pr=1");
        }
        if let Some(st) = start_token {
            path.push_str(&format!("&st={st}"));
        }
        if let Some(et) = end_token {
            path.push_str(&format!("&et={et}"));
        }
    }
    path
}

/// `repair`: one session per keyspace, in turn, each followed to its end with its progress
/// lines printed as nodetool prints them. Fails with the session's reason.
fn repair(args: &Args, out: &mut dyn Write, poll: Duration) -> Result<()> {
    let Command::Repair { keyspace, .. } = &args.command else { return Ok(()) };
    let keyspaces: Vec<String> = match keyspace {
        Some(k) => vec![k.clone()],
        None => {
            call(&args.host, args.port, "GET", "/repair/keyspaces")?.lines().map(str::to_string).collect()
        }
    };
    if keyspaces.is_empty() {
        writeln!(out, "Nothing to repair: no keyspace is replicated to more than one node")?;
    }
    for ks in keyspaces {
        let id = call(&args.host, args.port, "POST", &repair_path(&ks, &args.command))?.trim().to_string();
        let mut seen = 0usize;
        loop {
            let status = call(&args.host, args.port, "GET", &format!("/repair/status?id={id}&from={seen}"))?;
            let mut lines = status.lines();
            let state = lines.next().and_then(|l| l.strip_prefix("state ")).unwrap_or("UNKNOWN").to_string();
            let _progress = lines.next();
            let total: usize = lines
                .next()
                .and_then(|l| l.strip_prefix("events "))
                .and_then(|n| n.parse().ok())
                .unwrap_or(seen);
            let reason = lines.next().and_then(|l| l.strip_prefix("reason ")).unwrap_or_default().to_string();
            for line in lines {
                writeln!(out, "[{}] {line}", crate::shell::format::format_timestamp(now_ms()))?;
            }
            out.flush()?;
            seen = total;
            match state.as_str() {
                "RUNNING" => std::thread::sleep(poll),
                "SUCCESS" => break,
                _ => bail!("repair of keyspace {ks} failed: {reason}"),
            }
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_admin_routes() {
        let r = requests(&Command::Getendpoints {
            keyspace: "ks".into(),
            table: "t".into(),
            key: "a b:c".into(),
        });
        assert_eq!(r, vec![("GET", "/getendpoints?keyspace=ks&table=t&key=a%20b%3Ac".to_string())]);
        let f =
            requests(&Command::Flush { keyspace: Some("ks".into()), tables: vec!["a".into(), "b".into()] });
        assert_eq!(f.len(), 2);
        assert_eq!(
            requests(&Command::Tablestats { filter: Some("ks.t".into()) })[0].1,
            "/tablestats?keyspace=ks&table=t"
        );
    }

    #[test]
    fn nodetool_repair_options_parse() {
        let argv = ["sibyltool", "-p", "7200", "repair", "-pr", "ks", "a", "b", "-full"];
        let args = Args::try_parse_from(normalize_args(argv.iter().map(|s| s.to_string()))).unwrap();
        assert_eq!(repair_path("ks", &args.command), "/repair?keyspace=ks&tables=a%2Cb&pr=1");
        let argv = ["sibyltool", "repair", "ks", "-st", "-9223372036854775807", "-et", "100"];
        let args = Args::try_parse_from(normalize_args(argv.iter().map(|s| s.to_string()))).unwrap();
        assert_eq!(repair_path("ks", &args.command), "/repair?keyspace=ks&st=-9223372036854775807&et=100");
        let args = Args::try_parse_from(["sibyltool", "repair_admin", "list"]).unwrap();
        assert_eq!(requests(&args.command), vec![("GET", "/repair_admin/list".to_string())]);
        let args = Args::try_parse_from(["sibyltool", "repair_admin", "cancel", "abc"]).unwrap();
        assert_eq!(requests(&args.command), vec![("POST", "/repair_admin/cancel?id=abc".to_string())]);
    }
}
