//! Merkle trees over a token range, as anti-entropy repair compares them.
//!
//! A tree covers one range `(start, end]` and splits it into `2^depth` leaves of (nearly) equal
//! token width. A leaf's hash is the XOR of the hashes of the partitions whose tokens fall in it
//! (so it does not depend on the order partitions are added in), and a partition's hash is a
//! 128-bit Murmur3 of its key and of its content digest. Inner nodes hash their two children,
//! and two trees are compared from the root down, so equal subtrees are skipped whole.
//!
//! Memory is bounded by the depth: `2^depth` leaves of 20 bytes (at [`MAX_DEPTH`], 640 KiB),
//! whatever the number of partitions. The wire form carries only the leaves that hold
//! partitions.
//!
//! ```text
//! tree      := version u8 (=1) | start i64le | end i64le | depth u8 | count varint
//!              | (leaf index varint | partitions varint | hash 16 bytes)*     (ascending index)
//! ```

use sibyl_engine::codec::{put_varint, DecodeResult, Reader};
use sibyl_engine::token::murmur3_x64_128;
use sibyl_engine::Token;

/// Deepest tree built: 32,768 leaves.
pub const MAX_DEPTH: u8 = 15;

const TREE_VERSION: u8 = 1;

/// A 128-bit hash.
pub type Hash = [u8; 16];

/// Why an encoded tree was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The bytes are not a tree of this version.
    #[error("malformed Merkle tree: {0}")]
    Malformed(String),
}

/// A range's Merkle tree (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    start: i64,
    end: i64,
    depth: u8,
    hashes: Vec<Hash>,
    partitions: Vec<u32>,
}

impl MerkleTree {
    /// An empty tree over `(start, end]` (`start == end` is the whole ring) with `2^depth`
    /// leaves; `depth` is capped at [`MAX_DEPTH`].
    #[must_use]
    pub fn new(start: i64, end: i64, depth: u8) -> MerkleTree {
        let depth = depth.min(MAX_DEPTH);
        let n = 1usize << depth;
        MerkleTree { start, end, depth, hashes: vec![[0; 16]; n], partitions: vec![0; n] }
    }

    /// The range's start (exclusive).
    #[must_use]
    pub fn start(&self) -> i64 {
        self.start
    }

    /// The range's end (inclusive).
    #[must_use]
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Leaves are `2^depth`.
    #[must_use]
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// Partitions added.
    #[must_use]
    pub fn partition_count(&self) -> u64 {
        self.partitions.iter().map(|p| u64::from(*p)).sum()
    }

    fn size(&self) -> u128 {
        match self.end.wrapping_sub(self.start) as u64 {
            0 => 1u128 << 64,
            d => u128::from(d),
        }
    }

    fn leaves(&self) -> u128 {
        1u128 << self.depth
    }

    /// Whether `token` lies in the tree's range.
    #[must_use]
    pub fn contains(&self, token: i64) -> bool {
        let off = u128::from(token.wrapping_sub(self.start) as u64);
        let off = if off == 0 { 1u128 << 64 } else { off };
        off <= self.size()
    }

    /// The leaf holding `token`, which must lie in the range (tokens outside are clamped to the
    /// nearest end).
    #[must_use]
    pub fn leaf_of(&self, token: i64) -> usize {
        let size = self.size();
        let off = u128::from(token.wrapping_sub(self.start) as u64);
        let off = if off == 0 { 1u128 << 64 } else { off }.min(size);
        // Leaf i holds offsets (floor(i*size/N), floor((i+1)*size/N)]: the largest i with
        // i*size/N < off, which is ceil(off*N/size) - 1.
        let n = self.leaves();
        let leaf = (off * n).div_ceil(size).saturating_sub(1);
        usize::try_from(leaf.min(n - 1)).unwrap_or(0)
    }

    /// The tokens of leaves `first..=last`: `(start, end]`.
    #[must_use]
    pub fn leaf_range(&self, first: usize, last: usize) -> (i64, i64) {
        let size = self.size();
        let n = self.leaves();
        let bound = |i: u128| -> i64 {
            let off = i * size / n;
            // Offsets are below 2^64 except the very end of a whole-ring tree, which wraps back
            // to the start, as it should.
            self.start.wrapping_add(off as u64 as i64)
        };
        (bound(first as u128), bound(last as u128 + 1))
    }

    /// Adds one partition: its token and its hash ([`partition_hash`]).
    pub fn add(&mut self, token: i64, hash: &Hash) {
        let leaf = self.leaf_of(token);
        for (a, b) in self.hashes[leaf].iter_mut().zip(hash) {
            *a ^= b;
        }
        self.partitions[leaf] = self.partitions[leaf].saturating_add(1);
    }

    /// The root hash.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.levels().first().and_then(|l| l.first()).copied().unwrap_or([0; 16])
    }

    /// Every level's hashes, root first (built bottom-up once, so comparing is linear).
    fn levels(&self) -> Vec<Vec<Hash>> {
        let mut levels = vec![self.hashes.clone()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let up: Vec<Hash> = below.chunks(2).map(|pair| combine(&pair[0], &pair[1])).collect();
            levels.push(up);
        }
        levels.reverse();
        levels
    }

    /// The token ranges where `self` and `other` differ, adjacent differing leaves joined into
    /// one range, in ring order from the start. Descends only into subtrees whose hashes
    /// differ.
    ///
    /// # Errors
    /// The trees cover different ranges or have different depths.
    pub fn difference(&self, other: &MerkleTree) -> Result<Vec<(i64, i64)>, TreeError> {
        Ok(self.ranges_of_leaves(self.differing_leaves(other)?))
    }

    /// The leaves where `self` and `other` differ, ascending, found from the root down.
    ///
    /// # Errors
    /// The trees cover different ranges or have different depths.
    pub fn differing_leaves(&self, other: &MerkleTree) -> Result<Vec<usize>, TreeError> {
        if (self.start, self.end, self.depth) != (other.start, other.end, other.depth) {
            return Err(TreeError::Malformed(format!(
                "trees of different shapes: ({}, {}] depth {} and ({}, {}] depth {}",
                self.start, self.end, self.depth, other.start, other.end, other.depth
            )));
        }
        let (a, b) = (self.levels(), other.levels());
        let mut differing: Vec<usize> = Vec::new();
        let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
        while let Some((level, index)) = stack.pop() {
            if a[level][index] == b[level][index] {
                continue;
            }
            if level == usize::from(self.depth) {
                differing.push(index);
            } else {
                // Right first, so the left child is popped (and found) first.
                stack.push((level + 1, index * 2 + 1));
                stack.push((level + 1, index * 2));
            }
        }
        Ok(differing)
    }

    /// Token ranges of the given leaves (ascending), adjacent leaves joined.
    #[must_use]
    pub fn ranges_of_leaves(&self, leaves: impl IntoIterator<Item = usize>) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = Vec::new();
        let mut run: Option<(usize, usize)> = None;
        for leaf in leaves {
            run = match run {
                Some((first, last)) if last + 1 == leaf => Some((first, leaf)),
                Some((first, last)) => {
                    out.push(self.leaf_range(first, last));
                    Some((leaf, leaf))
                }
                None => Some((leaf, leaf)),
            };
        }
        if let Some((first, last)) = run {
            out.push(self.leaf_range(first, last));
        }
        out
    }

    /// The wire form (see the module documentation).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let used: Vec<usize> = (0..self.partitions.len()).filter(|i| self.partitions[*i] > 0).collect();
        let mut out = Vec::with_capacity(20 + used.len() * 22);
        out.push(TREE_VERSION);
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.end.to_le_bytes());
        out.push(self.depth);
        put_varint(&mut out, used.len() as u64);
        for i in used {
            put_varint(&mut out, i as u64);
            put_varint(&mut out, u64::from(self.partitions[i]));
            out.extend_from_slice(&self.hashes[i]);
        }
        out
    }

    /// Parses the wire form, checking the depth and every leaf index before allocating.
    ///
    /// # Errors
    /// [`TreeError::Malformed`] says what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<MerkleTree, TreeError> {
        Self::decode_inner(bytes).map_err(|e| TreeError::Malformed(e.to_string()))?
    }

    fn decode_inner(bytes: &[u8]) -> DecodeResult<Result<MerkleTree, TreeError>> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != TREE_VERSION {
            return Ok(Err(TreeError::Malformed(format!("unknown tree version {version}"))));
        }
        let start = r.i64()?;
        let end = r.i64()?;
        let depth = r.u8()?;
        if depth > MAX_DEPTH {
            return Ok(Err(TreeError::Malformed(format!("depth {depth} is above the limit {MAX_DEPTH}"))));
        }
        let mut tree = MerkleTree::new(start, end, depth);
        let count = r.varint()?;
        if count > tree.hashes.len() as u64 {
            return Ok(Err(TreeError::Malformed(format!(
                "{count} leaves in a tree of {}",
                tree.hashes.len()
            ))));
        }
        let mut previous: Option<u64> = None;
        for _ in 0..count {
            let index = r.varint()?;
            let partitions = r.varint()?;
            let mut hash: Hash = [0; 16];
            hash.copy_from_slice(r.bytes(16)?);
            if index >= tree.hashes.len() as u64 || previous.is_some_and(|p| p >= index) {
                return Ok(Err(TreeError::Malformed(format!("leaf index {index} out of order or range"))));
            }
            previous = Some(index);
            let i = index as usize;
            tree.hashes[i] = hash;
            tree.partitions[i] = u32::try_from(partitions).unwrap_or(u32::MAX);
        }
        if !r.is_empty() {
            return Ok(Err(TreeError::Malformed(format!("{} bytes after the tree", r.remaining()))));
        }
        Ok(Ok(tree))
    }
}

/// The hash of one partition: its key and its content digest
/// ([`crate::resolver::digest`]).
#[must_use]
pub fn partition_hash(key: &[u8], content_digest: &Hash) -> Hash {
    let mut bytes = Vec::with_capacity(key.len() + 20);
    bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(content_digest);
    to_hash(murmur3_x64_128(&bytes, 0))
}

fn combine(left: &Hash, right: &Hash) -> Hash {
    if *left == [0; 16] && *right == [0; 16] {
        return [0; 16];
    }
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(left);
    bytes[16..].copy_from_slice(right);
    to_hash(murmur3_x64_128(&bytes, 0))
}

fn to_hash((a, b): (u64, u64)) -> Hash {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

/// Whether `token` is in `(start, end]` (`start == end` is the whole ring).
#[must_use]
pub fn in_range(token: Token, start: i64, end: i64) -> bool {
    MerkleTree::new(start, end, 0).contains(token.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u64) -> Hash {
        partition_hash(&n.to_be_bytes(), &[n as u8; 16])
    }

    #[test]
    fn leaves_split_the_range_evenly_and_cover_it_exactly() {
        for (start, end, depth) in
            [(0i64, 1024i64, 3u8), (-100, 100, 4), (i64::MAX - 10, i64::MIN + 30, 2), (5, 5, 4)]
        {
            let t = MerkleTree::new(start, end, depth);
            let n = 1usize << depth;
            // Leaf ranges tile the range: each starts where the one before ended.
            let mut at = start;
            for i in 0..n {
                let (s, e) = t.leaf_range(i, i);
                assert_eq!(s, at, "leaf {i} of ({start}, {end}]");
                at = e;
                // The leaf's last token maps back to the leaf.
                if s != e {
                    assert_eq!(t.leaf_of(e), i, "leaf {i} end {e}");
                    assert_eq!(t.leaf_of(s.wrapping_add(1)), i, "leaf {i} first token");
                }
            }
            assert_eq!(at, end);
            assert_eq!(t.leaf_range(0, n - 1), (start, end));
        }
        let t = MerkleTree::new(0, 1024, 3);
        assert_eq!(t.leaf_of(1), 0);
        assert_eq!(t.leaf_of(128), 0);
        assert_eq!(t.leaf_of(129), 1);
        assert_eq!(t.leaf_of(1024), 7);
        assert!(t.contains(1024) && !t.contains(0) && !t.contains(1025));
        assert!(in_range(Token(i64::MIN + 3), i64::MAX - 10, i64::MIN + 30));
        assert!(in_range(Token(42), 7, 7), "(t, t] is the whole ring");
    }

    #[test]
    fn equal_content_in_any_order_gives_equal_trees() {
        let mut a = MerkleTree::new(-1000, 1000, 6);
        let mut b = MerkleTree::new(-1000, 1000, 6);
        for i in 0..100u64 {
            a.add(i as i64 * 17 - 900, &h(i));
        }
        for i in (0..100u64).rev() {
            b.add(i as i64 * 17 - 900, &h(i));
        }
        assert_eq!(a.root(), b.root());
        assert_eq!(a.difference(&b), Ok(vec![]));
        assert_eq!(a.partition_count(), 100);
    }

    #[test]
    fn differences_are_the_differing_leaves_joined_into_ranges() {
        let mut a = MerkleTree::new(0, 1024, 3);
        let mut b = a.clone();
        for t in [10, 200, 300, 700] {
            a.add(t, &h(t as u64));
            b.add(t, &h(t as u64));
        }
        // Leaf 1 (128, 256] and leaf 2 (256, 384] differ, and leaf 6 (768, 896].
        b.add(250, &h(1));
        b.add(260, &h(2));
        a.add(800, &h(3));
        assert_eq!(a.difference(&b), Ok(vec![(128, 384), (768, 896)]));
        assert_eq!(b.difference(&a), Ok(vec![(128, 384), (768, 896)]));
        // A changed partition (same token, other content) is found too.
        let mut c = MerkleTree::new(0, 1024, 3);
        for t in [10, 200, 300, 701] {
            c.add(if t == 701 { 700 } else { t }, &h(t as u64));
        }
        assert_eq!(a.difference(&c), Ok(vec![(640, 896)]));
        assert!(a.difference(&MerkleTree::new(0, 1024, 4)).is_err());
    }

    #[test]
    fn the_wire_form_round_trips_and_bad_bytes_are_refused() {
        let mut a = MerkleTree::new(i64::MAX - 5, i64::MIN + 1000, MAX_DEPTH);
        for t in [i64::MAX - 1, i64::MIN + 3, i64::MIN + 900] {
            a.add(t, &h(t as u64));
        }
        let bytes = a.encode();
        assert!(bytes.len() < 100, "only used leaves travel: {} bytes", bytes.len());
        assert_eq!(MerkleTree::decode(&bytes), Ok(a.clone()));
        for cut in 0..bytes.len() {
            assert!(MerkleTree::decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut deep = bytes.clone();
        deep[17] = MAX_DEPTH + 1;
        assert!(MerkleTree::decode(&deep).is_err());
        let mut huge = MerkleTree::new(0, 10, 0).encode();
        huge.truncate(18);
        put_varint(&mut huge, u64::MAX);
        assert!(MerkleTree::decode(&huge).is_err(), "a count above the leaves is refused before allocating");
        let mut trailing = bytes;
        trailing.push(0);
        assert!(MerkleTree::decode(&trailing).is_err());
    }
}
