//! The verbs nodes send each other, and the encoding of their payloads.
//!
//! Framing (length, CRC, message id, expiry) belongs to [`crate::messaging`]; this module owns
//! what is inside a frame. Every payload starts with a version byte; codes are explicit and
//! never reused. Grammar in `docs/format/internode.md`.
//!
//! ```text
//! payload          := version u8 (=1) | body
//! mutation_req     := count varint | (len varint | mutation)*      (engine's mutation encoding)
//! mutation_rsp     := (empty)
//! hint_req         := mutation_req                                  (hints being delivered)
//! validation_req   := (crate::repair::validation)                   (the response is a Merkle tree)
//! batch_store      := (crate::batchlog)                             (the response is empty)
//! batch_remove     := (crate::batchlog)                             (one-way)
//! read_req         := digest_only u8 | read_command
//! read_rsp         := 0 u8 | digest 16 bytes  |  1 u8 | has u8 | [partition]
//! range_req        := scan_command
//! range_rsp        := count varint | partition*
//! schema_push      := mutation_req                                  (one-way)
//! schema_pull_req  := (empty)
//! schema_pull_rsp  := mutation_req
//! gossip_*         := gossip message (crate::gossip)
//! read_command     := table 16 | key lenbytes | slices | reversed u8 | row_limit varint | now u32le
//! scan_command     := table 16 | start | end i64le | slices | partition_limit varint
//!                     | row_limit varint | now u32le
//! start            := 0 u8 token i64le (inclusive) | 1 u8 token i64le (exclusive) | 2 u8 key lenbytes
//! slices           := count varint | (start lenbytes | end lenbytes)*
//! partition        := key lenbytes | header | count varint | row*  (engine's row encodings)
//! ```

use bytes::Bytes;
use sibyl_engine::clustering::{Bound, MAX_CLUSTERING_BYTES};
use sibyl_engine::codec::{put_len_prefixed, put_varint, DecodeResult, Reader};
use sibyl_engine::partition::MAX_PARTITION_KEY_BYTES;
use sibyl_engine::serialization::{decode_header, decode_row, encode_header, encode_row};
use sibyl_engine::{
    DecoratedKey, Mutation, PartitionData, ReadCommand, ScanCommand, ScanStart, Slice, TableId, Token,
};

use crate::messaging::Verb;

/// Version byte every payload starts with.
pub const PAYLOAD_VERSION: u8 = 1;
/// Most mutations in one request (the engine's batch limit).
pub const MAX_MUTATIONS: usize = sibyl_engine::serialization::MAX_BATCH_MUTATIONS;
/// Most clustering slices in one read.
pub const MAX_SLICES: usize = 65_536;

/// Gossip digest SYN (one-way).
pub const GOSSIP_SYN: Verb = Verb(1);
/// Gossip ACK (one-way).
pub const GOSSIP_ACK: Verb = Verb(2);
/// Gossip ACK2 (one-way).
pub const GOSSIP_ACK2: Verb = Verb(3);
/// Apply mutations (request; the response is empty).
pub const MUTATION: Verb = Verb(10);
/// Read one partition, as data or as a digest (request).
pub const READ: Verb = Verb(11);
/// Scan a token range (request).
pub const RANGE_READ: Verb = Verb(12);
/// Deliver hints: apply mutations a replica missed (request; the response is empty).
pub const HINT: Verb = Verb(13);
/// Build a Merkle tree of a table's token range for repair (request; see
/// [`crate::repair::validation`]).
pub const VALIDATION: Verb = Verb(14);
/// Store a logged batch until its coordinator applied it (request; see [`crate::batchlog`]).
pub const BATCH_STORE: Verb = Verb(15);
/// Forget a stored batch: its coordinator applied it (one-way).
pub const BATCH_REMOVE: Verb = Verb(16);
/// Stream ranges of tables to a target node (request, answered when the stream ended; see
/// [`crate::streaming`]).
pub const STREAM_REQUEST: Verb = Verb(17);
/// One batch of streamed partitions, with its CRC (request; the response is empty).
pub const STREAM_DATA: Verb = Verb(18);
/// A schema change pushed to every live node (one-way).
pub const SCHEMA_PUSH: Verb = Verb(20);
/// Ask a node for its whole schema (request).
pub const SCHEMA_PULL: Verb = Verb(21);

/// A name for logs and metrics.
#[must_use]
pub fn verb_name(verb: Verb) -> &'static str {
    match verb {
        GOSSIP_SYN => "GOSSIP_DIGEST_SYN",
        GOSSIP_ACK => "GOSSIP_DIGEST_ACK",
        GOSSIP_ACK2 => "GOSSIP_DIGEST_ACK2",
        MUTATION => "MUTATION",
        READ => "READ",
        RANGE_READ => "RANGE_READ",
        HINT => "HINT",
        VALIDATION => "VALIDATION",
        BATCH_STORE => "BATCH_STORE",
        BATCH_REMOVE => "BATCH_REMOVE",
        STREAM_REQUEST => "STREAM_REQUEST",
        STREAM_DATA => "STREAM_DATA",
        SCHEMA_PUSH => "SCHEMA_PUSH",
        SCHEMA_PULL => "SCHEMA_PULL",
        _ => "UNKNOWN",
    }
}

fn start(out: &mut Vec<u8>) {
    out.push(PAYLOAD_VERSION);
}

fn reader(bytes: &[u8]) -> DecodeResult<Reader<'_>> {
    let mut r = Reader::new(bytes);
    let v = r.u8()?;
    if v != PAYLOAD_VERSION {
        return Err(r.error(format!("unknown payload version {v} (this node speaks {PAYLOAD_VERSION})")));
    }
    Ok(r)
}

fn finish<T>(r: &Reader<'_>, value: T) -> DecodeResult<T> {
    if !r.is_empty() {
        return Err(r.error("trailing bytes after payload"));
    }
    Ok(value)
}

/// Encodes a list of mutations (MUTATION, SCHEMA_PUSH, SCHEMA_PULL response).
#[must_use]
pub fn encode_mutations(mutations: &[Mutation]) -> Bytes {
    let mut out = Vec::new();
    start(&mut out);
    put_varint(&mut out, mutations.len() as u64);
    let mut one = Vec::new();
    for m in mutations {
        one.clear();
        m.encode(&mut one);
        put_len_prefixed(&mut out, &one);
    }
    Bytes::from(out)
}

/// Decodes a list of mutations.
pub fn decode_mutations(bytes: &[u8]) -> DecodeResult<Vec<Mutation>> {
    let mut r = reader(bytes)?;
    let n = r.count(1)?;
    if n > MAX_MUTATIONS {
        return Err(r.error(format!("{n} mutations exceed the limit {MAX_MUTATIONS}")));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let m = r.len_prefixed(bytes.len())?;
        out.push(Mutation::decode(m).map_err(|e| r.error(format!("mutation: {e}")))?);
    }
    finish(&r, out)
}

fn put_table(out: &mut Vec<u8>, t: TableId) {
    out.extend_from_slice(t.as_bytes());
}

fn get_table(r: &mut Reader<'_>) -> DecodeResult<TableId> {
    let mut id = [0u8; 16];
    id.copy_from_slice(r.bytes(16)?);
    Ok(TableId(uuid::Uuid::from_bytes(id)))
}

fn put_slices(out: &mut Vec<u8>, slices: &[Slice]) {
    put_varint(out, slices.len() as u64);
    for s in slices {
        put_len_prefixed(out, &s.start.0);
        put_len_prefixed(out, &s.end.0);
    }
}

fn get_slices(r: &mut Reader<'_>) -> DecodeResult<Vec<Slice>> {
    let n = r.count(2)?;
    if n > MAX_SLICES {
        return Err(r.error(format!("{n} slices exceed the limit {MAX_SLICES}")));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let a = r.len_prefixed(MAX_CLUSTERING_BYTES)?;
        let b = r.len_prefixed(MAX_CLUSTERING_BYTES)?;
        if !Bound::is_valid(a) || !Bound::is_valid(b) {
            return Err(r.error("malformed slice bound"));
        }
        out.push(Slice { start: Bound(Bytes::copy_from_slice(a)), end: Bound(Bytes::copy_from_slice(b)) });
    }
    Ok(out)
}

fn put_limit(out: &mut Vec<u8>, limit: usize) {
    put_varint(out, limit as u64);
}

fn get_limit(r: &mut Reader<'_>) -> DecodeResult<usize> {
    let v = r.varint()?;
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

fn get_key(r: &mut Reader<'_>) -> DecodeResult<Bytes> {
    let key = r.len_prefixed(MAX_PARTITION_KEY_BYTES)?;
    if key.is_empty() {
        return Err(r.error("empty partition key"));
    }
    Ok(Bytes::copy_from_slice(key))
}

/// A READ request: the command and whether only a digest is wanted.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// What to read.
    pub command: ReadCommand,
    /// Answer with a digest instead of the data.
    pub digest_only: bool,
}

impl ReadRequest {
    /// Encodes the request.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let c = &self.command;
        let mut out = Vec::new();
        start(&mut out);
        out.push(u8::from(self.digest_only));
        put_table(&mut out, c.table);
        put_len_prefixed(&mut out, &c.key);
        put_slices(&mut out, &c.slices);
        out.push(u8::from(c.reversed));
        put_limit(&mut out, c.row_limit);
        out.extend_from_slice(&c.now_seconds.to_le_bytes());
        Bytes::from(out)
    }

    /// Decodes a request.
    pub fn decode(bytes: &[u8]) -> DecodeResult<ReadRequest> {
        let mut r = reader(bytes)?;
        let digest_only = get_bool(&mut r)?;
        let table = get_table(&mut r)?;
        let key = get_key(&mut r)?;
        let slices = get_slices(&mut r)?;
        let reversed = get_bool(&mut r)?;
        let row_limit = get_limit(&mut r)?;
        let now_seconds = r.u32()?;
        let command = ReadCommand { table, key, slices, reversed, row_limit, now_seconds };
        finish(&r, ReadRequest { command, digest_only })
    }
}

fn get_bool(r: &mut Reader<'_>) -> DecodeResult<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(r.error(format!("bad boolean {other}"))),
    }
}

/// A READ response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResponse {
    /// The digest of the replica's answer.
    Digest([u8; 16]),
    /// The replica's answer.
    Data(Option<PartitionData>),
}

impl ReadResponse {
    /// Encodes the response.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        start(&mut out);
        match self {
            ReadResponse::Digest(d) => {
                out.push(0);
                out.extend_from_slice(d);
            }
            ReadResponse::Data(p) => {
                out.push(1);
                match p {
                    None => out.push(0),
                    Some(p) => {
                        out.push(1);
                        encode_partition(p, &mut out);
                    }
                }
            }
        }
        Bytes::from(out)
    }

    /// Decodes a response.
    pub fn decode(bytes: &[u8]) -> DecodeResult<ReadResponse> {
        let mut r = reader(bytes)?;
        let v = match r.u8()? {
            0 => {
                let mut d = [0u8; 16];
                d.copy_from_slice(r.bytes(16)?);
                ReadResponse::Digest(d)
            }
            1 => ReadResponse::Data(if get_bool(&mut r)? { Some(decode_partition(&mut r)?) } else { None }),
            other => return Err(r.error(format!("bad read response kind {other}"))),
        };
        finish(&r, v)
    }
}

/// Encodes a partition as a read returns it.
pub fn encode_partition(p: &PartitionData, out: &mut Vec<u8>) {
    put_len_prefixed(out, &p.key.key);
    encode_header(&p.header, out);
    put_varint(out, p.rows.len() as u64);
    for row in &p.rows {
        encode_row(row, out);
    }
}

/// Decodes a partition.
pub fn decode_partition(r: &mut Reader<'_>) -> DecodeResult<PartitionData> {
    let key = get_key(r)?;
    let header = decode_header(r)?;
    let n = r.count(2)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push(decode_row(r)?);
    }
    Ok(PartitionData { key: DecoratedKey::new(key), header, rows })
}

/// Encodes a RANGE_READ request.
#[must_use]
pub fn encode_scan(c: &ScanCommand) -> Bytes {
    let mut out = Vec::new();
    start(&mut out);
    put_table(&mut out, c.table);
    match &c.start {
        ScanStart::TokenInclusive(t) => {
            out.push(0);
            out.extend_from_slice(&t.0.to_le_bytes());
        }
        ScanStart::TokenExclusive(t) => {
            out.push(1);
            out.extend_from_slice(&t.0.to_le_bytes());
        }
        ScanStart::AfterKey(k) => {
            out.push(2);
            put_len_prefixed(&mut out, &k.key);
        }
    }
    out.extend_from_slice(&c.end.0.to_le_bytes());
    put_slices(&mut out, &c.slices);
    put_limit(&mut out, c.partition_limit);
    put_limit(&mut out, c.row_limit);
    out.extend_from_slice(&c.now_seconds.to_le_bytes());
    Bytes::from(out)
}

/// Decodes a RANGE_READ request.
pub fn decode_scan(bytes: &[u8]) -> DecodeResult<ScanCommand> {
    let mut r = reader(bytes)?;
    let table = get_table(&mut r)?;
    let start = match r.u8()? {
        0 => ScanStart::TokenInclusive(Token(r.i64()?)),
        1 => ScanStart::TokenExclusive(Token(r.i64()?)),
        2 => ScanStart::AfterKey(DecoratedKey::new(get_key(&mut r)?)),
        other => return Err(r.error(format!("bad scan start kind {other}"))),
    };
    let end = Token(r.i64()?);
    let slices = get_slices(&mut r)?;
    let partition_limit = get_limit(&mut r)?;
    let row_limit = get_limit(&mut r)?;
    let now_seconds = r.u32()?;
    finish(&r, ScanCommand { table, start, end, slices, partition_limit, row_limit, now_seconds })
}

/// Encodes a RANGE_READ response.
#[must_use]
pub fn encode_partitions(parts: &[PartitionData]) -> Bytes {
    let mut out = Vec::new();
    start(&mut out);
    put_varint(&mut out, parts.len() as u64);
    for p in parts {
        encode_partition(p, &mut out);
    }
    Bytes::from(out)
}

/// Decodes a RANGE_READ response.
pub fn decode_partitions(bytes: &[u8]) -> DecodeResult<Vec<PartitionData>> {
    let mut r = reader(bytes)?;
    let n = r.count(4)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(decode_partition(&mut r)?);
    }
    finish(&r, out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use sibyl_engine::{Cell, ColumnId, PartitionUpdate, Row};

    use super::*;

    fn sample_partition() -> PartitionData {
        let mut row = Row::new(Bytes::from_static(&[1, 0, 0, 0, 5]));
        row.cells.push(Cell::live(ColumnId(1), 42, Bytes::from_static(b"v")));
        PartitionData {
            key: DecoratedKey::new(Bytes::from_static(b"k")),
            header: Default::default(),
            rows: vec![row],
        }
    }

    #[test]
    fn payloads_round_trip() {
        let table = TableId(uuid::Uuid::from_u128(7));
        let m = Mutation { table, update: PartitionUpdate::new(Bytes::from_static(b"k")) };
        assert_eq!(decode_mutations(&encode_mutations(&[m.clone(), m.clone()])).unwrap(), vec![m.clone(), m]);
        let req = ReadRequest {
            command: ReadCommand::partition(table, Bytes::from_static(b"key"), 99),
            digest_only: true,
        };
        let back = ReadRequest::decode(&req.encode()).unwrap();
        assert!(back.digest_only);
        assert_eq!(back.command.key, req.command.key);
        assert_eq!(back.command.row_limit, usize::MAX);
        for rsp in [
            ReadResponse::Digest([3; 16]),
            ReadResponse::Data(None),
            ReadResponse::Data(Some(sample_partition())),
        ] {
            assert_eq!(ReadResponse::decode(&rsp.encode()).unwrap(), rsp);
        }
        let scan = ScanCommand {
            table,
            start: ScanStart::AfterKey(DecoratedKey::new(Bytes::from_static(b"a"))),
            end: Token(5),
            slices: vec![Slice::all()],
            partition_limit: 10,
            row_limit: usize::MAX,
            now_seconds: 1,
        };
        let back = decode_scan(&encode_scan(&scan)).unwrap();
        assert_eq!(back.start, scan.start);
        assert_eq!(back.end, scan.end);
        assert_eq!(back.partition_limit, 10);
        let parts = vec![sample_partition(), sample_partition()];
        assert_eq!(decode_partitions(&encode_partitions(&parts)).unwrap(), parts);
    }

    #[test]
    fn the_documented_read_example_is_the_encoding() {
        let table = TableId(uuid::Uuid::from_u128(7));
        let req = ReadRequest {
            command: ReadCommand::partition(table, Bytes::from_static(&[0, 0, 0, 5]), 1_700_000_000),
            digest_only: true,
        };
        let mut want = vec![1, 1];
        want.extend_from_slice(&[0; 15]);
        want.push(7);
        want.extend_from_slice(&[4, 0, 0, 0, 5, 1, 1, 0x20, 1, 0x60, 0]);
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        want.extend_from_slice(&[0x00, 0xf1, 0x53, 0x65]);
        assert_eq!(req.encode().to_vec(), want);
    }

    #[test]
    fn truncated_and_flipped_payloads_are_errors_not_panics() {
        let table = TableId(uuid::Uuid::from_u128(7));
        let samples = [
            ReadRequest {
                command: ReadCommand::partition(table, Bytes::from_static(b"key"), 9),
                digest_only: false,
            }
            .encode(),
            ReadResponse::Data(Some(sample_partition())).encode(),
            encode_partitions(&[sample_partition()]),
        ];
        for s in &samples {
            for cut in 0..s.len() {
                assert!(ReadRequest::decode(&s[..cut]).is_err() || cut == s.len());
                let _ = ReadResponse::decode(&s[..cut]);
                let _ = decode_partitions(&s[..cut]);
                let _ = decode_scan(&s[..cut]);
                let _ = decode_mutations(&s[..cut]);
            }
            for i in 0..s.len() {
                for bit in 0..8 {
                    let mut b = s.to_vec();
                    b[i] ^= 1 << bit;
                    let _ = ReadRequest::decode(&b);
                    let _ = ReadResponse::decode(&b);
                    let _ = decode_partitions(&b);
                    let _ = decode_scan(&b);
                    let _ = decode_mutations(&b);
                }
            }
        }
    }
}
