//! The repair history file: one line per finished session, so `sibyltool repair_admin list`
//! still shows them after a restart (Cassandra keeps them in
//! `system_distributed.repair_history`).
//!
//! ```text
//! line  := "v1" TAB id TAB keyspace TAB tables(comma-separated) TAB scope TAB state TAB reason
//!          TAB started_ms TAB finished_ms TAB ranges_done TAB ranges_total TAB mismatched
//!          TAB partitions_repaired TAB bytes_fetched TAB bytes_sent TAB crc NEWLINE
//! scope := "all" | "pr" | <start>:<end>
//! state := "SUCCESS" | "FAILED"
//! crc   := CRC-32 of every byte of the line before the last TAB, 8 lowercase hex digits
//! ```
//!
//! Tabs and newlines inside names or reasons are written as spaces. A line that does not parse
//! or whose CRC does not match is skipped and logged with the file and line number. The file is
//! rewritten with only the newest sessions once it holds four times as many as are kept.

use std::io::Write as _;
use std::path::Path;

use sibyl_engine::codec::crc32;

use super::{RepairScope, RepairSession, RepairState};

/// Largest history file read (its tail, if it is larger).
const MAX_READ_BYTES: u64 = 16 << 20;

fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// The line for a finished session (with its newline).
#[must_use]
pub fn encode(s: &RepairSession) -> String {
    let scope = match s.scope {
        RepairScope::All => "all".to_string(),
        RepairScope::PrimaryRange => "pr".to_string(),
        RepairScope::Subrange(a, b) => format!("{a}:{b}"),
    };
    let reason = match &s.state {
        RepairState::Failed(r) => clean(r),
        _ => String::new(),
    };
    let body = [
        "v1".to_string(),
        s.id.to_string(),
        clean(&s.keyspace),
        clean(&s.tables.join(",")),
        scope,
        s.state.name().to_string(),
        reason,
        s.started_ms.to_string(),
        s.finished_ms.to_string(),
        s.ranges_done.to_string(),
        s.ranges_total.to_string(),
        s.mismatched_ranges.to_string(),
        s.partitions_repaired.to_string(),
        s.bytes_fetched.to_string(),
        s.bytes_sent.to_string(),
    ]
    .join("\t");
    format!("{body}\t{:08x}\n", crc32(body.as_bytes()))
}

/// Parses one line (without its newline).
///
/// # Errors
/// What is wrong with it.
pub fn decode(line: &str) -> Result<RepairSession, String> {
    let (body, crc) = line.rsplit_once('\t').ok_or("no checksum")?;
    if u32::from_str_radix(crc, 16).ok() != Some(crc32(body.as_bytes())) {
        return Err("checksum mismatch".into());
    }
    let f: Vec<&str> = body.split('\t').collect();
    if f.len() != 15 || f[0] != "v1" {
        return Err(format!("{} fields or an unknown version", f.len()));
    }
    let n = |i: usize| f[i].parse::<u64>().map_err(|_| format!("field {i} is not a number"));
    let ms = |i: usize| f[i].parse::<i64>().map_err(|_| format!("field {i} is not a number"));
    let scope = match f[4] {
        "all" => RepairScope::All,
        "pr" => RepairScope::PrimaryRange,
        other => {
            let (a, b) = other.split_once(':').ok_or("bad scope")?;
            RepairScope::Subrange(a.parse().map_err(|_| "bad scope")?, b.parse().map_err(|_| "bad scope")?)
        }
    };
    let state = match f[5] {
        "SUCCESS" => RepairState::Succeeded,
        "FAILED" => RepairState::Failed(f[6].to_string()),
        other => return Err(format!("state {other}")),
    };
    Ok(RepairSession {
        id: f[1].parse().map_err(|_| "bad id")?,
        keyspace: f[2].to_string(),
        tables: f[3].split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
        scope,
        started_ms: ms(7)?,
        finished_ms: ms(8)?,
        state,
        ranges_done: n(9)?,
        ranges_total: n(10)?,
        mismatched_ranges: n(11)?,
        partitions_repaired: n(12)?,
        bytes_fetched: n(13)?,
        bytes_sent: n(14)?,
        events: Vec::new(),
    })
}

/// The newest `keep` sessions recorded in `path` (none if it does not exist).
///
/// # Errors
/// The file exists but cannot be read.
pub fn load(path: &Path, keep: usize) -> std::io::Result<Vec<RepairSession>> {
    let text = match read_tail(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        match decode(line) {
            Ok(s) => out.push(s),
            Err(e) => {
                tracing::warn!(file = %path.display(), line = i + 1, error = %e, "skipping a damaged repair history line")
            }
        }
    }
    let skip = out.len().saturating_sub(keep);
    Ok(out.split_off(skip))
}

fn read_tail(path: &Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > MAX_READ_BYTES {
        f.seek(SeekFrom::Start(len - MAX_READ_BYTES))?;
    }
    let mut bytes = Vec::new();
    f.take(MAX_READ_BYTES).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Appends a finished session; rewrites the file with the newest `keep` once it holds more
/// than four times that.
///
/// # Errors
/// The file cannot be written.
pub fn append(path: &Path, session: &RepairSession, keep: usize) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(encode(session).as_bytes())?;
    f.sync_data()?;
    drop(f);
    let lines = read_tail(path)?.lines().count();
    if lines > keep * 4 {
        let newest = load(path, keep)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, newest.iter().map(encode).collect::<String>())?;
        std::fs::rename(&tmp, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u128, state: RepairState) -> RepairSession {
        RepairSession {
            id: uuid::Uuid::from_u128(n),
            keyspace: "ks".into(),
            tables: vec!["a".into(), "b\tc".into()],
            scope: RepairScope::Subrange(-5, 10),
            started_ms: 1_000,
            finished_ms: 2_000,
            state,
            ranges_done: 3,
            ranges_total: 4,
            mismatched_ranges: 5,
            partitions_repaired: 6,
            bytes_fetched: 7,
            bytes_sent: 8,
            events: Vec::new(),
        }
    }

    #[test]
    fn lines_round_trip_and_damage_is_detected() {
        let s = session(1, RepairState::Failed("Endpoint x\tdied".into()));
        let line = encode(&s);
        let back = decode(line.trim_end()).unwrap();
        assert_eq!(back.tables, vec!["a".to_string(), "b c".to_string()]);
        assert_eq!(back.state, RepairState::Failed("Endpoint x died".into()));
        assert_eq!(
            (back.scope, back.partitions_repaired, back.bytes_sent),
            (RepairScope::Subrange(-5, 10), 6, 8)
        );
        let damaged = line.replacen("ks", "kt", 1);
        assert!(decode(damaged.trim_end()).unwrap_err().contains("checksum"));
        assert!(decode("garbage").is_err());
    }

    #[test]
    fn the_file_keeps_the_newest_sessions_and_skips_damaged_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repair_history.log");
        assert!(load(&path, 3).unwrap().is_empty());
        for i in 0..13u128 {
            append(&path, &session(i, RepairState::Succeeded), 3).unwrap();
        }
        // 13 lines > 4 * 3: rewritten with the newest 3, then nothing more appended.
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("v1\tbroken line\n");
        std::fs::write(&path, text).unwrap();
        let ids: Vec<u128> = load(&path, 10).unwrap().iter().map(|s| s.id.as_u128()).collect();
        assert_eq!(ids, vec![10, 11, 12]);
    }
}
