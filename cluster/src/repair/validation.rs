//! A replica's side of repair: the VALIDATION request and the Merkle tree built by scanning the
//! range page by page (memory bounded by the page and the tree, not by the data).
//!
//! ```text
//! validation_req := version u8 (=1) | table 16 | start i64le | end i64le | depth u8 | now u32le
//! validation_rsp := tree                                  (crate::repair::merkle)
//! ```

use sibyl_engine::codec::{DecodeResult, Reader};
use sibyl_engine::{ScanCommand, ScanStart, Slice, TableId, Token};

use crate::repair::merkle::{partition_hash, MerkleTree, MAX_DEPTH};
use crate::resolver::digest;
use crate::storage::Storage;

const VERSION: u8 = 1;

/// Partitions read per page while building a tree.
pub const VALIDATION_PAGE_PARTITIONS: usize = 256;

/// Build the Merkle tree of `table` over `(start, end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRequest {
    /// Table.
    pub table: TableId,
    /// Range start (exclusive).
    pub start: i64,
    /// Range end (inclusive).
    pub end: i64,
    /// Tree depth (at most [`MAX_DEPTH`]).
    pub depth: u8,
    /// "Now" for TTL expiry, the same on every replica so their digests agree.
    pub now_seconds: u32,
}

impl ValidationRequest {
    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> bytes::Bytes {
        let mut out = Vec::with_capacity(38);
        out.push(VERSION);
        out.extend_from_slice(self.table.0.as_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.end.to_le_bytes());
        out.push(self.depth);
        out.extend_from_slice(&self.now_seconds.to_le_bytes());
        out.into()
    }

    /// Parses the wire form.
    ///
    /// # Errors
    /// What was wrong, for the error answered to the sender.
    pub fn decode(bytes: &[u8]) -> Result<ValidationRequest, String> {
        let parse = || -> DecodeResult<Result<ValidationRequest, String>> {
            let mut r = Reader::new(bytes);
            let version = r.u8()?;
            if version != VERSION {
                return Ok(Err(format!("unknown validation request version {version}")));
            }
            let mut id = [0u8; 16];
            id.copy_from_slice(r.bytes(16)?);
            let start = r.i64()?;
            let end = r.i64()?;
            let depth = r.u8()?;
            let now_seconds = r.u32()?;
            if depth > MAX_DEPTH {
                return Ok(Err(format!("tree depth {depth} is above the limit {MAX_DEPTH}")));
            }
            if !r.is_empty() {
                return Ok(Err(format!("{} bytes after the validation request", r.remaining())));
            }
            Ok(Ok(ValidationRequest {
                table: TableId(uuid::Uuid::from_bytes(id)),
                start,
                end,
                depth,
                now_seconds,
            }))
        };
        parse().map_err(|e| format!("malformed validation request: {e}"))?
    }
}

/// `(start, end]` as scans: one piece, or two when it wraps past the greatest token (the second
/// from the least token, inclusive). `start == end` is the whole ring.
#[must_use]
pub fn unwrap(start: i64, end: i64) -> Vec<(ScanStart, Token)> {
    if start < end {
        vec![(ScanStart::TokenExclusive(Token(start)), Token(end))]
    } else {
        vec![
            (ScanStart::TokenExclusive(Token(start)), Token::MAX),
            (ScanStart::TokenInclusive(Token::MIN), Token(end)),
        ]
    }
}

/// Scans the range page by page and adds every partition to a tree.
///
/// # Errors
/// A storage error, as text for the answer.
pub fn build_tree(storage: &dyn Storage, req: &ValidationRequest) -> Result<MerkleTree, String> {
    let mut tree = MerkleTree::new(req.start, req.end, req.depth);
    for (first, last) in unwrap(req.start, req.end) {
        let mut start = first;
        loop {
            let cmd = ScanCommand {
                table: req.table,
                start: start.clone(),
                end: last,
                slices: vec![Slice::all()],
                partition_limit: VALIDATION_PAGE_PARTITIONS,
                row_limit: usize::MAX,
                now_seconds: req.now_seconds,
            };
            let page = storage.scan(&cmd).map_err(|e| e.to_string())?;
            for p in &page {
                if tree.contains(p.key.token.0) {
                    tree.add(p.key.token.0, &partition_hash(&p.key.key, &digest(Some(p))));
                }
            }
            match page.last() {
                Some(p) if page.len() >= VALIDATION_PAGE_PARTITIONS => {
                    start = ScanStart::AfterKey(p.key.clone())
                }
                _ => break,
            }
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let req = ValidationRequest {
            table: TableId(uuid::Uuid::from_u128(7)),
            start: i64::MAX - 3,
            end: -5,
            depth: 12,
            now_seconds: 1_700_000_000,
        };
        let bytes = req.encode();
        assert_eq!(ValidationRequest::decode(&bytes), Ok(req));
        for cut in 0..bytes.len() {
            assert!(ValidationRequest::decode(&bytes[..cut]).is_err());
        }
        let mut deep = bytes.to_vec();
        deep[33] = MAX_DEPTH + 1;
        assert!(ValidationRequest::decode(&deep).is_err());
        let mut v2 = bytes.to_vec();
        v2[0] = 2;
        assert!(ValidationRequest::decode(&v2).is_err());
    }

    #[test]
    fn wrapping_ranges_scan_in_two_pieces() {
        assert_eq!(unwrap(1, 5).len(), 1);
        assert_eq!(unwrap(5, 1).len(), 2);
        assert_eq!(unwrap(3, 3).len(), 2, "(t, t] is the whole ring");
    }
}
