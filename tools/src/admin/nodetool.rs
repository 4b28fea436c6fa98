//! nodetool's output shapes, rendered from plain values (tested without a node).
//!
//! Each function takes what the admin endpoint gathered and returns the text `sibyltool`
//! prints, laid out like Cassandra 4.0's nodetool so operators' eyes and scripts carry over.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use uuid::Uuid;

/// One node as `status` and `ring` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// Data center.
    pub dc: String,
    /// Rack.
    pub rack: String,
    /// Listen address.
    pub address: String,
    /// Up (U) or down (D).
    pub up: bool,
    /// `N`ormal, `J`oining, `L`eaving, `M`oving.
    pub state: char,
    /// Bytes on disk.
    pub load_bytes: f64,
    /// Its tokens.
    pub tokens: Vec<i64>,
    /// Fraction of the data it holds (effective with a keyspace, primary ranges without).
    pub owns: Option<f64>,
    /// Host id.
    pub host_id: Option<Uuid>,
}

/// A size as nodetool prints it (`69.47 KiB`).
#[must_use]
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

fn by_dc(rows: &[NodeRow]) -> BTreeMap<&str, Vec<&NodeRow>> {
    let mut m: BTreeMap<&str, Vec<&NodeRow>> = BTreeMap::new();
    for r in rows {
        m.entry(r.dc.as_str()).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by(|a, b| a.address.cmp(&b.address));
    }
    m
}

/// `nodetool status [keyspace]`.
#[must_use]
pub fn status(rows: &[NodeRow], keyspace: Option<&str>) -> String {
    let mut out = String::new();
    for (dc, nodes) in by_dc(rows) {
        let title = format!("Datacenter: {dc}");
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "{}", "=".repeat(title.len()));
        let _ = writeln!(out, "Status=Up/Down");
        let _ = writeln!(out, "|/ State=Normal/Leaving/Joining/Moving");
        let owns_title = if keyspace.is_some() { "Owns (effective)" } else { "Owns" };
        let table: Vec<[String; 7]> = nodes
            .iter()
            .map(|n| {
                [
                    format!("{}{}", if n.up { 'U' } else { 'D' }, n.state),
                    n.address.clone(),
                    human_bytes(n.load_bytes),
                    n.tokens.len().to_string(),
                    n.owns.map_or("?".to_string(), |o| format!("{:.1}%", o * 100.0)),
                    n.host_id.map_or("?".to_string(), |h| h.to_string()),
                    n.rack.clone(),
                ]
            })
            .collect();
        let header = ["--", "Address", "Load", "Tokens", owns_title, "Host ID", "Rack"];
        let widths: Vec<usize> = (0..7)
            .map(|i| table.iter().map(|r| r[i].len()).chain([header[i].len()]).max().unwrap_or(0))
            .collect();
        let line = |cells: &[&str]| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    let _ = write!(l, "{c:<w$}  ", w = widths[i]);
                }
            }
            l
        };
        let _ = writeln!(out, "{}", line(&header));
        for r in &table {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{}", line(&cells));
        }
        out.push('\n');
    }
    if keyspace.is_none() {
        out.push_str("Note: Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless\n");
    }
    out
}

/// `nodetool ring`: every token with its node.
#[must_use]
pub fn ring(rows: &[NodeRow]) -> String {
    let mut out = String::new();
    for (dc, nodes) in by_dc(rows) {
        let _ = writeln!(out, "\nDatacenter: {dc}\n==========");
        let mut tokens: Vec<(i64, &NodeRow)> =
            nodes.iter().flat_map(|n| n.tokens.iter().map(move |t| (*t, *n))).collect();
        tokens.sort_by_key(|(t, _)| *t);
        let width = nodes.iter().map(|n| n.address.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(
            out,
            "{:<width$}  {:<8}  {:<7}  {:<8}  {:<11}  {:<8}  Token",
            "Address", "Rack", "Status", "State", "Load", "Owns"
        );
        if let Some((last, _)) = tokens.last() {
            let _ = writeln!(
                out,
                "{:<width$}  {:<8}  {:<7}  {:<8}  {:<11}  {:<8}  {last}",
                "", "", "", "", "", ""
            );
        }
        for (t, n) in tokens {
            let _ = writeln!(
                out,
                "{:<width$}  {:<8}  {:<7}  {:<8}  {:<11}  {:<8}  {t}",
                n.address,
                n.rack,
                if n.up { "Up" } else { "Down" },
                match n.state {
                    'J' => "Joining",
                    'L' => "Leaving",
                    'M' => "Moving",
                    _ => "Normal",
                },
                human_bytes(n.load_bytes),
                n.owns.map_or("?".to_string(), |o| format!("{:.2}%", o * 100.0)),
            );
        }
    }
    out
}

/// `nodetool describecluster`.
#[must_use]
pub fn describecluster(
    name: &str,
    schema_versions: &BTreeMap<String, Vec<String>>,
    rows: &[NodeRow],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Cluster Information:");
    let _ = writeln!(out, "\tName: {name}");
    let _ = writeln!(out, "\tSnitch: org.apache.cassandra.locator.GossipingPropertyFileSnitch");
    let _ = writeln!(out, "\tDynamicEndPointSnitch: disabled");
    let _ = writeln!(out, "\tPartitioner: org.apache.cassandra.dht.Murmur3Partitioner");
    let _ = writeln!(out, "\tSchema versions:");
    for (version, nodes) in schema_versions {
        let _ = writeln!(out, "\t\t{version}: [{}]", nodes.join(", "));
        out.push('\n');
    }
    let _ = writeln!(out, "Stats for all nodes:");
    let live = rows.iter().filter(|r| r.up).count();
    let _ = writeln!(out, "\tLive: {live}");
    let _ = writeln!(out, "\tJoining: 0");
    let _ = writeln!(out, "\tMoving: 0");
    let _ = writeln!(out, "\tLeaving: 0");
    let _ = writeln!(out, "\tUnreachable: {}", rows.len() - live);
    let _ = writeln!(out, "\nData Centers: ");
    for (dc, nodes) in by_dc(rows) {
        let up = nodes.iter().filter(|n| n.up).count();
        let _ = writeln!(out, "\t{dc} #Nodes: {} #Down: {}", nodes.len(), nodes.len() - up);
    }
    out
}

/// One running compaction for [`compactionstats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionRow {
    /// Id.
    pub id: u64,
    /// `Compaction`, `Major Compaction`, ...
    pub kind: String,
    /// Keyspace.
    pub keyspace: String,
    /// Table.
    pub table: String,
    /// Bytes done.
    pub completed: u64,
    /// Bytes in all.
    pub total: u64,
}

/// `nodetool compactionstats`: pending tasks, then one line per running compaction and the
/// remaining time at the current throughput (Cassandra's layout).
#[must_use]
pub fn compactionstats(pending: usize, active: &[CompactionRow], throughput_bytes_per_sec: u64) -> String {
    let mut out = format!("pending tasks: {pending}\n");
    if active.is_empty() {
        return out;
    }
    let mut rows =
        vec![["id", "compaction type", "keyspace", "table", "completed", "total", "unit", "progress"]
            .map(String::from)];
    for c in active {
        let progress = if c.total == 0 { 0.0 } else { c.completed as f64 * 100.0 / c.total as f64 };
        rows.push([
            c.id.to_string(),
            c.kind.clone(),
            c.keyspace.clone(),
            c.table.clone(),
            c.completed.to_string(),
            c.total.to_string(),
            "bytes".to_string(),
            format!("{progress:.2}%"),
        ]);
    }
    out.push_str(&table(&rows));
    let remaining: u64 = active.iter().map(|c| c.total.saturating_sub(c.completed)).sum();
    let eta = match remaining.checked_div(throughput_bytes_per_sec) {
        None => "n/a (unthrottled)".to_string(),
        Some(secs) => format!("{}h{:02}m{:02}s", secs / 3600, secs / 60 % 60, secs % 60),
    };
    out.push_str(&format!("Active compaction remaining time : {eta:>10}\n"));
    out
}

/// Rows as left-aligned columns separated by one space (the first row is the header).
#[must_use]
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join(" ").trim_end());
        out.push('\n');
    }
    out
}

/// `nodetool tablehistograms ks table`: percentiles of SSTables per read, partition size, cells
/// per partition and tombstones per read.
#[must_use]
pub fn tablehistograms(keyspace: &str, table: &str, s: &sibyl_engine::TableStats) -> String {
    let mut out = format!("{keyspace}/{table} histograms\n");
    out.push_str(&format!(
        "{:<10} {:>10} {:>16} {:>12} {:>12}\n{:<10} {:>10} {:>16} {:>12} {:>12}\n",
        "Percentile",
        "SSTables",
        "Partition Size",
        "Cell Count",
        "Tombstones",
        "",
        "",
        "(bytes)",
        "",
        "(per read)"
    ));
    let row = |label: &str, f: &dyn Fn(&sibyl_engine::metrics::HistogramSnapshot) -> u64| {
        format!(
            "{label:<10} {:>10} {:>16} {:>12} {:>12}\n",
            f(&s.sstables_per_read),
            f(&s.partition_size),
            f(&s.cells_per_partition),
            f(&s.tombstones_per_read)
        )
    };
    for (label, p) in [("50%", 0.5), ("75%", 0.75), ("95%", 0.95), ("98%", 0.98), ("99%", 0.99)] {
        out.push_str(&row(label, &|h| h.percentile(p)));
    }
    out.push_str(&row("Min", &|h| h.min()));
    out.push_str(&row("Max", &|h| h.max()));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn node(addr: &str, up: bool, dc: &str) -> NodeRow {
        NodeRow {
            dc: dc.into(),
            rack: "rack1".into(),
            address: addr.into(),
            up,
            state: 'N',
            load_bytes: 71_140.0,
            tokens: vec![1, -5],
            owns: Some(1.0),
            host_id: Some(Uuid::from_u128(1)),
        }
    }

    #[test]
    fn status_groups_by_data_center_with_nodetool_columns() {
        let out = status(
            &[node("127.0.0.2", false, "dc1"), node("127.0.0.1", true, "dc1"), node("10.0.0.1", true, "dc2")],
            Some("ks"),
        );
        assert!(out.starts_with("Datacenter: dc1\n===============\nStatus=Up/Down\n"), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[4].starts_with("--  Address"), "{out}");
        assert!(lines[4].contains("Owns (effective)"), "{out}");
        assert!(lines[5].starts_with("UN  127.0.0.1"), "{out}");
        assert!(lines[6].starts_with("DN  127.0.0.2"), "{out}");
        assert!(
            lines[5].contains("69.47 KiB") && lines[5].contains("100.0%") && lines[5].ends_with("rack1"),
            "{out}"
        );
        assert!(out.contains("Datacenter: dc2"), "{out}");
    }

    #[test]
    fn ring_lists_tokens_in_order() {
        let out = ring(&[node("127.0.0.1", true, "dc1")]);
        let t: Vec<&str> =
            out.lines().filter(|l| l.starts_with("127.")).map(|l| l.rsplit(' ').next().unwrap()).collect();
        assert_eq!(t, vec!["-5", "1"]);
    }

    #[test]
    fn sizes_print_like_nodetool() {
        assert_eq!(human_bytes(10.0), "10 bytes");
        assert_eq!(human_bytes(1536.0), "1.50 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.00 GiB");
    }

    #[test]
    fn compactionstats_lists_running_compactions_and_the_remaining_time() {
        let rows = vec![CompactionRow {
            id: 7,
            kind: "Compaction".into(),
            keyspace: "ks".into(),
            table: "t".into(),
            completed: 1 << 20,
            total: 4 << 20,
        }];
        let out = compactionstats(3, &rows, 1 << 20);
        assert!(out.starts_with("pending tasks: 3\n"), "{out}");
        assert!(out.contains("compaction type"), "{out}");
        assert!(out.contains("25.00%"), "{out}");
        assert!(out.contains("0h00m03s"), "{out}");
        assert_eq!(compactionstats(0, &[], 0), "pending tasks: 0\n");
    }
}
