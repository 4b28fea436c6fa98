//! Streaming: moving the data of token ranges from one node to another when the ring changes.
//!
//! - [`plan`]: which ranges each node gains, from which current replicas (pure).
//! - Here: the wire forms of the two verbs, the sender's loop and the [`StreamManager`] that
//!   keeps every session's progress for `sibyltool netstats`.
//!
//! A *stream* sends one node's data of some tables over some ranges to a target node:
//! 1. Whoever needs the data (a bootstrapping node for itself, or the node running a removenode
//!    for a new replica) sends STREAM_REQUEST to the source; a decommissioning node is its own
//!    source and skips this step.
//! 2. The source scans each range of each table page by page (at most
//!    [`STREAM_PAGE_PARTITIONS`] partitions, then cut into requests of at most
//!    [`STREAM_BATCH_BYTES`]), books the bytes with the node's `stream_throughput_outbound`
//!    throttle, and sends each batch as STREAM_DATA: the mutations with a CRC32 of their bytes.
//!    One batch is in flight per stream, so memory is bounded by a page and a batch.
//! 3. The target checks the CRC, applies the mutations through its commit log and memtables
//!    (so what it acknowledges survives a crash), and answers.
//! 4. A batch that fails is sent again up to [`STREAM_RETRIES`] times; then the stream fails
//!    with the reason, and so does the operation that asked for it. Applying the same data
//!    twice is harmless (cells reconcile by timestamp), so an operation is retried by running
//!    it again.
//!
//! Unlike Cassandra, which sends SSTable sections as files, Sibyl streams partitions read through
//! the normal read path (merged from memtables and SSTables, tombstones included): the target
//! writes them as new data and compacts them like any other. That costs the target a write per
//! byte, and buys a format-independent, checksummed and simply resumable stream.
//!
//! ```text
//! stream_request := version u8 (=1) | session 16 | operation u8 | target_len u8 | target utf8
//!                   | tables u16le | table 16 * tables | ranges u32le | (start i64le end i64le) * ranges
//! stream_data    := version u8 (=1) | session 16 | operation u8 | table 16 | crc32 u32le | mutations
//! ```

pub mod plan;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use sibyl_engine::codec::Reader;
use sibyl_engine::{Mutation, ScanCommand, ScanStart, Slice, TableId, Throttle};
use uuid::Uuid;

use crate::batchlog::now_ms;
use crate::endpoint::Endpoint;
use crate::repair::now_seconds;
use crate::resolver::repair_mutation;
use crate::storage::Storage;
use crate::verbs;

const VERSION: u8 = 1;
/// Partitions read per page by a sender.
pub const STREAM_PAGE_PARTITIONS: usize = 256;
/// Bytes of mutations in one STREAM_DATA request (about; one partition may exceed it).
pub const STREAM_BATCH_BYTES: usize = 4 << 20;
/// Times a failed STREAM_DATA batch is sent again before the stream fails.
pub const STREAM_RETRIES: u32 = 3;
/// How long a target may take to apply one batch.
pub const STREAM_DATA_TIMEOUT: Duration = Duration::from_secs(60);
/// Most tables in one STREAM_REQUEST.
pub const MAX_STREAM_TABLES: usize = 10_000;
/// Most ranges in one STREAM_REQUEST.
pub const MAX_STREAM_RANGES: usize = 1_000_000;
/// Finished sessions kept for `netstats`.
pub const STREAM_HISTORY: usize = 100;

/// Why data is being streamed (`netstats` shows it, as Cassandra's stream plan descriptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamOperation {
    /// A new node fetching its ranges.
    Bootstrap = 1,
    /// A leaving node handing its ranges over.
    Decommission = 2,
    /// Remaining replicas restoring the replication of a removed node's ranges.
    RemoveNode = 3,
    /// A node replacing a dead one, fetching the dead node's ranges.
    Replace = 4,
}

impl StreamOperation {
    /// The description `netstats` prints (Cassandra's names where it has one).
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            StreamOperation::Bootstrap => "Bootstrap",
            StreamOperation::Decommission => "Unbootstrap",
            StreamOperation::RemoveNode => "Removenode",
            StreamOperation::Replace => "Replace",
        }
    }

    fn from_tag(tag: u8) -> Option<StreamOperation> {
        [
            StreamOperation::Bootstrap,
            StreamOperation::Decommission,
            StreamOperation::RemoveNode,
            StreamOperation::Replace,
        ]
        .into_iter()
        .find(|o| *o as u8 == tag)
    }
}

/// Send the data of `tables` over `ranges` to `target` (STREAM_REQUEST's payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// Session id (the same on both sides, for `netstats`).
    pub session: Uuid,
    /// Why.
    pub operation: StreamOperation,
    /// Where the data goes.
    pub target: Endpoint,
    /// Tables.
    pub tables: Vec<TableId>,
    /// Ranges `(start, end]`.
    pub ranges: Vec<(i64, i64)>,
}

impl StreamRequest {
    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let target = self.target.0.to_string();
        let mut out = Vec::with_capacity(32 + target.len() + self.tables.len() * 16 + self.ranges.len() * 16);
        out.push(VERSION);
        out.extend_from_slice(self.session.as_bytes());
        out.push(self.operation as u8);
        out.push(u8::try_from(target.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(&u16::try_from(self.tables.len()).unwrap_or(u16::MAX).to_le_bytes());
        for t in &self.tables {
            out.extend_from_slice(t.0.as_bytes());
        }
        out.extend_from_slice(&u32::try_from(self.ranges.len()).unwrap_or(u32::MAX).to_le_bytes());
        for (start, end) in &self.ranges {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        out.into()
    }

    /// Parses the wire form; every count is checked against its limit before anything is
    /// allocated.
    ///
    /// # Errors
    /// What was wrong, for the error answered to the sender.
    pub fn decode(bytes: &[u8]) -> Result<StreamRequest, String> {
        let bad = |e: sibyl_engine::codec::DecodeError| format!("bad stream request: {e}");
        let mut r = Reader::new(bytes);
        let (session, operation) = header(&mut r, "stream request")?;
        let len = usize::from(r.u8().map_err(bad)?);
        let target = std::str::from_utf8(r.bytes(len).map_err(bad)?)
            .ok()
            .and_then(|s| s.parse::<SocketAddr>().ok())
            .map(Endpoint)
            .ok_or("bad stream request: the target is not an address")?;
        let count = usize::from(r.u16().map_err(bad)?);
        if count > MAX_STREAM_TABLES || count * 16 > r.remaining() {
            return Err(format!("bad stream request: {count} tables"));
        }
        let mut tables = Vec::with_capacity(count);
        for _ in 0..count {
            tables.push(TableId(uuid_of(r.bytes(16).map_err(bad)?)));
        }
        let count = r.u32().map_err(bad)? as usize;
        if count > MAX_STREAM_RANGES || count * 16 > r.remaining() {
            return Err(format!("bad stream request: {count} ranges"));
        }
        let mut ranges = Vec::with_capacity(count);
        for _ in 0..count {
            ranges.push((r.i64().map_err(bad)?, r.i64().map_err(bad)?));
        }
        if !r.is_empty() {
            return Err(format!("bad stream request: {} bytes after it", r.remaining()));
        }
        Ok(StreamRequest { session, operation, target, tables, ranges })
    }
}

/// A STREAM_DATA payload: one batch of one table's partitions.
#[must_use]
pub fn encode_data(
    session: Uuid,
    operation: StreamOperation,
    table: TableId,
    mutations: &[Mutation],
) -> Bytes {
    let body = verbs::encode_mutations(mutations);
    let mut out = Vec::with_capacity(38 + body.len());
    out.push(VERSION);
    out.extend_from_slice(session.as_bytes());
    out.push(operation as u8);
    out.extend_from_slice(table.0.as_bytes());
    out.extend_from_slice(&sibyl_engine::codec::crc32(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out.into()
}

/// One decoded STREAM_DATA batch.
#[derive(Debug)]
pub struct StreamData {
    /// Session.
    pub session: Uuid,
    /// Why.
    pub operation: StreamOperation,
    /// Table.
    pub table: TableId,
    /// The partitions, as mutations.
    pub mutations: Vec<Mutation>,
    /// Size of the mutations on the wire.
    pub bytes: usize,
    /// How many partitions the batch held (0 ends the stream).
    pub partitions: usize,
}

/// Parses a STREAM_DATA payload and checks its CRC.
///
/// # Errors
/// A damaged or malformed batch, said so (the sender retries it).
pub fn decode_data(bytes: &[u8]) -> Result<StreamData, String> {
    let bad = |e: sibyl_engine::codec::DecodeError| format!("bad stream data: {e}");
    let mut r = Reader::new(bytes);
    let (session, operation) = header(&mut r, "stream data")?;
    let table = TableId(uuid_of(r.bytes(16).map_err(bad)?));
    let crc = r.u32().map_err(bad)?;
    let body = r.bytes(r.remaining()).map_err(bad)?;
    let actual = sibyl_engine::codec::crc32(body);
    if actual != crc {
        return Err(format!(
            "stream data for session {session} failed its checksum (expected {crc:08x}, computed {actual:08x})"
        ));
    }
    let mutations = verbs::decode_mutations(body).map_err(|e| format!("bad stream data: {e}"))?;
    if let Some(m) = mutations.iter().find(|m| m.table != table) {
        return Err(format!("stream data for table {table} holds a mutation of table {}", m.table));
    }
    Ok(StreamData { session, operation, table, partitions: mutations.len(), mutations, bytes: body.len() })
}

/// The start both payloads share: version, session, operation.
fn header(r: &mut Reader<'_>, what: &str) -> Result<(Uuid, StreamOperation), String> {
    let bad = |e: sibyl_engine::codec::DecodeError| format!("bad {what}: {e}");
    let version = r.u8().map_err(bad)?;
    if version != VERSION {
        return Err(format!("unknown streaming version {version} (this node speaks {VERSION})"));
    }
    let session = uuid_of(r.bytes(16).map_err(bad)?);
    let tag = r.u8().map_err(bad)?;
    let operation =
        StreamOperation::from_tag(tag).ok_or_else(|| format!("unknown stream operation {tag}"))?;
    Ok((session, operation))
}

fn uuid_of(bytes: &[u8]) -> Uuid {
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[..16]);
    Uuid::from_bytes(id)
}

/// Which way a session's data flows, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This node sends.
    Sending,
    /// This node receives.
    Receiving,
}

/// A session's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    /// Still going (for a receiving session: data arrived and the sender has not said it is done).
    Running,
    /// Every range sent.
    Completed,
    /// Stopped, with the reason.
    Failed(String),
}

/// One stream as `netstats` shows it.
#[derive(Debug, Clone)]
pub struct StreamSession {
    /// Session id.
    pub id: Uuid,
    /// Why.
    pub operation: StreamOperation,
    /// The other node.
    pub peer: Endpoint,
    /// Which way.
    pub direction: Direction,
    /// Table-range pairs to send (0 when receiving).
    pub ranges_total: u64,
    /// Table-range pairs sent.
    pub ranges_done: u64,
    /// Partitions moved.
    pub partitions: u64,
    /// Bytes of mutations moved.
    pub bytes: u64,
    /// Start, milliseconds since the epoch.
    pub started_ms: i64,
    /// End (0 while running).
    pub finished_ms: i64,
    /// State.
    pub state: StreamState,
}

/// This node's streams: the outbound throttle and every session's progress (running ones and
/// the last [`STREAM_HISTORY`] finished ones).
#[derive(Debug)]
pub struct StreamManager {
    throttle: Throttle,
    sessions: Mutex<VecDeque<StreamSession>>,
}

impl StreamManager {
    /// A manager sending at most `bytes_per_second` in total (0 = unlimited).
    #[must_use]
    pub fn new(bytes_per_second: u64) -> StreamManager {
        StreamManager { throttle: Throttle::new(bytes_per_second), sessions: Mutex::new(VecDeque::new()) }
    }

    /// `stream_throughput_outbound` in bytes per second (0 = unlimited).
    #[must_use]
    pub fn throughput(&self) -> u64 {
        self.throttle.rate()
    }

    /// Changes `stream_throughput_outbound` while running (`setstreamthroughput`).
    pub fn set_throughput(&self, bytes_per_second: u64) {
        self.throttle.set_rate(bytes_per_second);
    }

    /// Every session, oldest first.
    #[must_use]
    pub fn sessions(&self) -> Vec<StreamSession> {
        self.sessions.lock().iter().cloned().collect()
    }

    fn begin(&self, session: StreamSession) {
        let mut sessions = self.sessions.lock();
        sessions.retain(|s| !(s.id == session.id && s.direction == session.direction));
        sessions.push_back(session);
        // Drop the oldest finished sessions beyond the history.
        while sessions.iter().filter(|s| s.state != StreamState::Running).count() > STREAM_HISTORY {
            let Some(i) = sessions.iter().position(|s| s.state != StreamState::Running) else { break };
            sessions.remove(i);
        }
    }

    fn update(&self, id: Uuid, direction: Direction, f: impl FnOnce(&mut StreamSession)) {
        if let Some(s) = self.sessions.lock().iter_mut().find(|s| s.id == id && s.direction == direction) {
            f(s);
        }
    }

    /// Records a received batch (the receiving side of a session starts with its first batch;
    /// an empty batch ends it).
    pub fn received(&self, from: Endpoint, data: &StreamData) {
        let mut sessions = self.sessions.lock();
        let found = sessions.iter_mut().find(|s| s.id == data.session && s.direction == Direction::Receiving);
        match found {
            Some(s) => {
                s.partitions += data.partitions as u64;
                s.bytes += data.bytes as u64;
                drop(sessions);
            }
            None => {
                drop(sessions);
                self.begin(StreamSession {
                    id: data.session,
                    operation: data.operation,
                    peer: from,
                    direction: Direction::Receiving,
                    ranges_total: 0,
                    ranges_done: 0,
                    partitions: data.partitions as u64,
                    bytes: data.bytes as u64,
                    started_ms: now_ms(),
                    finished_ms: 0,
                    state: StreamState::Running,
                });
            }
        }
        if data.partitions == 0 {
            self.finish_receiving(data.session, &Ok(()));
        }
    }

    /// Marks the receiving side of `session` finished (its requester learned the outcome).
    pub fn finish_receiving(&self, session: Uuid, outcome: &Result<(), String>) {
        self.update(session, Direction::Receiving, |s| {
            s.finished_ms = now_ms();
            s.state = match outcome {
                Ok(()) => StreamState::Completed,
                Err(e) => StreamState::Failed(e.clone()),
            };
        });
    }

    /// Sends what `request` asks from `storage`, batch by batch through `deliver` (which sends
    /// one STREAM_DATA payload to the target and waits for its answer). `cancelled` is checked
    /// between batches.
    ///
    /// # Errors
    /// The first read or delivery failure (after [`STREAM_RETRIES`] retries), naming the range.
    pub fn send(
        &self,
        storage: &dyn Storage,
        request: &StreamRequest,
        deliver: &dyn Fn(Bytes) -> Result<(), String>,
        cancelled: &dyn Fn() -> Option<String>,
    ) -> Result<(), String> {
        let id = request.session;
        self.begin(StreamSession {
            id,
            operation: request.operation,
            peer: request.target,
            direction: Direction::Sending,
            ranges_total: (request.tables.len() * request.ranges.len()) as u64,
            ranges_done: 0,
            partitions: 0,
            bytes: 0,
            started_ms: now_ms(),
            finished_ms: 0,
            state: StreamState::Running,
        });
        tracing::info!(
            session = %id,
            operation = request.operation.description(),
            target = %request.target,
            tables = request.tables.len(),
            ranges = request.ranges.len(),
            "streaming started"
        );
        let mut result = self.send_all(storage, request, deliver, cancelled);
        if result.is_ok() {
            // The end of the stream, so the target's netstats shows it completed.
            let end = encode_data(id, request.operation, TableId(Uuid::nil()), &[]);
            result = deliver(end).map_err(|e| format!("ending the stream to {}: {e}", request.target));
        }
        self.update(id, Direction::Sending, |s| {
            s.finished_ms = now_ms();
            s.state = match &result {
                Ok(()) => StreamState::Completed,
                Err(e) => StreamState::Failed(e.clone()),
            };
            match &result {
                Ok(()) => tracing::info!(
                    session = %id,
                    target = %request.target,
                    partitions = s.partitions,
                    bytes = s.bytes,
                    seconds = (s.finished_ms - s.started_ms) as f64 / 1000.0,
                    "streaming completed"
                ),
                Err(e) => {
                    tracing::warn!(session = %id, target = %request.target, error = %e, "streaming failed")
                }
            }
        });
        result
    }

    fn send_all(
        &self,
        storage: &dyn Storage,
        request: &StreamRequest,
        deliver: &dyn Fn(Bytes) -> Result<(), String>,
        cancelled: &dyn Fn() -> Option<String>,
    ) -> Result<(), String> {
        let now_seconds = now_seconds();
        for &table in &request.tables {
            for &(start, end) in &request.ranges {
                for (first, last) in crate::repair::validation::unwrap(start, end) {
                    let mut cursor = first;
                    loop {
                        if let Some(reason) = cancelled() {
                            return Err(reason);
                        }
                        let cmd = ScanCommand {
                            table,
                            start: cursor.clone(),
                            end: last,
                            slices: vec![Slice::all()],
                            partition_limit: STREAM_PAGE_PARTITIONS,
                            row_limit: usize::MAX,
                            now_seconds,
                        };
                        let parts = match storage.scan(&cmd) {
                            Ok(p) => p,
                            // A table dropped meanwhile has nothing left to send.
                            Err(sibyl_engine::Error::UnknownTable(_)) => break,
                            Err(e) => {
                                return Err(format!("reading table {table} range ({start}, {end}]: {e}"))
                            }
                        };
                        let full = parts.len() >= STREAM_PAGE_PARTITIONS;
                        let next = parts.last().map(|p| ScanStart::AfterKey(p.key.clone()));
                        let mut batch: Vec<Mutation> = Vec::new();
                        let mut batch_bytes = 0usize;
                        let mut scratch = Vec::new();
                        for p in &parts {
                            let m = repair_mutation(table, p);
                            scratch.clear();
                            m.encode(&mut scratch);
                            batch_bytes += scratch.len();
                            batch.push(m);
                            if batch_bytes >= STREAM_BATCH_BYTES || batch.len() >= verbs::MAX_MUTATIONS {
                                self.deliver_batch(request, table, &std::mem::take(&mut batch), deliver)?;
                                batch_bytes = 0;
                            }
                        }
                        if !batch.is_empty() {
                            self.deliver_batch(request, table, &batch, deliver)?;
                        }
                        match (full, next) {
                            (true, Some(next)) => cursor = next,
                            _ => break,
                        }
                    }
                }
                self.update(request.session, Direction::Sending, |s| s.ranges_done += 1);
            }
        }
        Ok(())
    }

    fn deliver_batch(
        &self,
        request: &StreamRequest,
        table: TableId,
        batch: &[Mutation],
        deliver: &dyn Fn(Bytes) -> Result<(), String>,
    ) -> Result<(), String> {
        let payload = encode_data(request.session, request.operation, table, batch);
        self.throttle.acquire(payload.len() as u64);
        let mut attempt = 0;
        loop {
            match deliver(payload.clone()) {
                Ok(()) => break,
                Err(e) if attempt < STREAM_RETRIES => {
                    attempt += 1;
                    tracing::debug!(session = %request.session, target = %request.target, error = %e, attempt, "stream batch failed; sending it again");
                    std::thread::sleep(Duration::from_millis(250 << attempt));
                }
                Err(e) => {
                    return Err(format!(
                        "sending to {} failed {} times, last: {e}",
                        request.target,
                        STREAM_RETRIES + 1
                    ))
                }
            }
        }
        self.update(request.session, Direction::Sending, |s| {
            s.partitions += batch.len() as u64;
            s.bytes += payload.len() as u64;
        });
        Ok(())
    }
}

/// Applies a received STREAM_DATA batch to `storage` and records it.
///
/// # Errors
/// A damaged batch or a failed write, for the error answered to the sender.
pub fn receive(
    manager: &StreamManager,
    storage: &dyn Storage,
    from: Endpoint,
    payload: &[u8],
) -> Result<(), String> {
    let mut data = decode_data(payload)?;
    let mutations = std::mem::take(&mut data.mutations);
    if !mutations.is_empty() {
        match storage.apply(mutations) {
            Ok(()) => {}
            Err(sibyl_engine::Error::UnknownTable(t)) => {
                return Err(format!("table {t} does not exist here yet (schema not agreed); retry"));
            }
            Err(e) => return Err(format!("applying streamed data: {e}")),
        }
    }
    manager.received(from, &data);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn ep(i: u8) -> Endpoint {
        Endpoint(SocketAddr::from(([127, 0, 0, i], 7000)))
    }

    #[test]
    fn a_stream_request_round_trips_and_bounds_its_counts() {
        let req = StreamRequest {
            session: Uuid::from_u128(9),
            operation: StreamOperation::RemoveNode,
            target: ep(4),
            tables: vec![TableId(Uuid::from_u128(1)), TableId(Uuid::from_u128(2))],
            ranges: vec![(i64::MIN, -5), (100, -100)],
        };
        let bytes = req.encode();
        assert_eq!(StreamRequest::decode(&bytes).unwrap(), req);
        // A claimed table count beyond the bytes present is refused before allocating.
        let mut forged = bytes.to_vec();
        let at = 1 + 16 + 1 + 1 + ep(4).0.to_string().len();
        forged[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(StreamRequest::decode(&forged).unwrap_err().contains("tables"));
        for cut in 0..bytes.len() {
            assert!(StreamRequest::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong = bytes.to_vec();
        wrong[0] = 9;
        assert!(StreamRequest::decode(&wrong).unwrap_err().contains("version"));
    }

    #[test]
    fn stream_data_detects_a_flipped_bit() {
        let table = TableId(Uuid::from_u128(1));
        let m = Mutation {
            table,
            update: sibyl_engine::PartitionUpdate {
                key: Bytes::from_static(b"k"),
                header: sibyl_engine::PartitionHeader::default(),
                rows: Vec::new(),
            },
        };
        let bytes = encode_data(Uuid::from_u128(3), StreamOperation::Bootstrap, table, &[m]);
        let data = decode_data(&bytes).unwrap();
        assert_eq!((data.table, data.mutations.len()), (table, 1));
        let mut flipped = bytes.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(decode_data(&flipped).unwrap_err().contains("checksum"));
    }
}
