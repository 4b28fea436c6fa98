//! Byte-comparable clustering keys, bounds and slices.
//!
//! Rows inside a partition are ordered by their clustering key. The engine never looks at typed
//! values: the layer above encodes each clustering component into an order-preserving byte string
//! (see the helpers in [`component`]), and this module joins components so that plain byte
//! comparison of the result equals the table's clustering order, ascending or descending per
//! column. SSTables and memtables then compare bytes only.
//!
//! Grammar (all comparisons are unsigned lexicographic on bytes):
//!
//! ```text
//! key        := component* KEY_END                 full clustering of a row
//! prefix     := component*                         the first n components
//! component  := SEPARATOR escaped                  ascending column
//!             | SEPARATOR invert(escaped)          descending column (every byte xor 0xff)
//! escaped    := (byte != 0x00 | 0x00 0xff)* 0x00 0x01
//! bound      := prefix BEFORE | prefix AFTER
//! SEPARATOR = 0x40   KEY_END = 0x38   BEFORE = 0x20   AFTER = 0x60
//! ```
//!
//! `escaped` keeps components prefix-free and order-preserving: `"ab" < "ab\0" < "abc"`.
//! Because `BEFORE < KEY_END < SEPARATOR < AFTER`, a bound `p BEFORE` sorts before every key
//! whose first components equal `p` and `p AFTER` sorts after all of them. A key never equals a
//! bound (they end in different bytes), so "inclusive" and "exclusive" are expressed by choosing
//! BEFORE or AFTER, exactly like Cassandra's `ClusteringBound` kinds.

use bytes::Bytes;

/// Separator byte before each component.
pub const SEPARATOR: u8 = 0x40;
/// Last byte of a full clustering key.
pub const KEY_END: u8 = 0x38;
/// Suffix of a bound that sorts before every key starting with its prefix.
pub const BEFORE: u8 = 0x20;
/// Suffix of a bound that sorts after every key starting with its prefix.
pub const AFTER: u8 = 0x60;

/// Largest encoded clustering key or bound the engine accepts (Cassandra limits each component
/// to 64 KiB; a key of many components stays well inside this).
pub const MAX_CLUSTERING_BYTES: usize = 1 << 20;

/// Sort direction of one clustering column (`CLUSTERING ORDER BY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `ASC`, the default.
    Ascending,
    /// `DESC`.
    Descending,
}

/// Builds an encoded clustering key, prefix or bound, one component at a time.
#[derive(Debug, Default, Clone)]
pub struct ClusteringBuilder {
    buf: Vec<u8>,
}

impl ClusteringBuilder {
    /// An empty prefix.
    #[must_use]
    pub fn new() -> ClusteringBuilder {
        ClusteringBuilder::default()
    }

    /// Appends one component whose bytes already compare in the column type's order.
    pub fn push(&mut self, component: &[u8], order: Order) -> &mut Self {
        self.buf.push(SEPARATOR);
        let start = self.buf.len();
        for &b in component {
            self.buf.push(b);
            if b == 0 {
                self.buf.push(0xff);
            }
        }
        self.buf.extend_from_slice(&[0x00, 0x01]);
        if order == Order::Descending {
            for b in &mut self.buf[start..] {
                *b = !*b;
            }
        }
        self
    }

    /// The full key of a row.
    #[must_use]
    pub fn key(&self) -> Bytes {
        let mut out = self.buf.clone();
        out.push(KEY_END);
        Bytes::from(out)
    }

    /// The bound just before every key that starts with the components pushed so far.
    #[must_use]
    pub fn before(&self) -> Bound {
        let mut out = self.buf.clone();
        out.push(BEFORE);
        Bound(Bytes::from(out))
    }

    /// The bound just after every key that starts with the components pushed so far.
    #[must_use]
    pub fn after(&self) -> Bound {
        let mut out = self.buf.clone();
        out.push(AFTER);
        Bound(Bytes::from(out))
    }
}

/// Splits an encoded key (or prefix) back into its components, undoing the escaping and the
/// inversion of descending columns. `orders` gives the order of each component expected. Returns
/// `None` when the bytes are not a well-formed encoding with exactly that many components
/// (followed by [`KEY_END`], or by nothing for a prefix).
#[must_use]
pub fn decode_components(encoded: &[u8], orders: &[Order]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(orders.len());
    let mut i = 0usize;
    for &order in orders {
        if *encoded.get(i)? != SEPARATOR {
            return None;
        }
        i += 1;
        let flip = if order == Order::Descending { 0xff } else { 0x00 };
        let mut component = Vec::new();
        loop {
            let b = *encoded.get(i)? ^ flip;
            i += 1;
            if b != 0 {
                component.push(b);
                continue;
            }
            match *encoded.get(i)? ^ flip {
                0xff => component.push(0),
                0x01 => break,
                _ => return None,
            }
            i += 1;
        }
        i += 1;
        out.push(component);
    }
    match &encoded[i.min(encoded.len())..] {
        [] | [KEY_END] => Some(out),
        _ => None,
    }
}

/// The key of a table without clustering columns (its only row).
#[must_use]
pub fn empty_key() -> Bytes {
    Bytes::from_static(&[KEY_END])
}

/// A position between clustering keys: the encoded prefix followed by [`BEFORE`] or [`AFTER`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bound(pub Bytes);

impl Bound {
    /// Before every key.
    #[must_use]
    pub fn bottom() -> Bound {
        Bound(Bytes::from_static(&[BEFORE]))
    }

    /// After every key.
    #[must_use]
    pub fn top() -> Bound {
        Bound(Bytes::from_static(&[AFTER]))
    }

    /// The bound just before the row `key` (a full key from [`ClusteringBuilder::key`]).
    #[must_use]
    pub fn before_key(key: &[u8]) -> Bound {
        Bound::around_key(key, BEFORE)
    }

    /// The bound just after the row `key`: where a page that ended at `key` resumes.
    #[must_use]
    pub fn after_key(key: &[u8]) -> Bound {
        Bound::around_key(key, AFTER)
    }

    fn around_key(key: &[u8], suffix: u8) -> Bound {
        let prefix = key.strip_suffix(&[KEY_END]).unwrap_or(key);
        let mut out = Vec::with_capacity(prefix.len() + 1);
        out.extend_from_slice(prefix);
        out.push(suffix);
        Bound(Bytes::from(out))
    }

    /// Whether these bytes are a well-formed bound (used when decoding).
    #[must_use]
    pub fn is_valid(bytes: &[u8]) -> bool {
        matches!(bytes.last(), Some(&BEFORE) | Some(&AFTER))
    }
}

/// A closed range of clustering keys between two bounds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slice {
    /// Lower bound.
    pub start: Bound,
    /// Upper bound.
    pub end: Bound,
}

impl Slice {
    /// Every row of the partition.
    #[must_use]
    pub fn all() -> Slice {
        Slice { start: Bound::bottom(), end: Bound::top() }
    }

    /// Exactly the rows whose clustering starts with `prefix` (all of them for an empty prefix).
    #[must_use]
    pub fn prefix(prefix: &ClusteringBuilder) -> Slice {
        Slice { start: prefix.before(), end: prefix.after() }
    }

    /// Whether the key lies inside the slice.
    #[must_use]
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.0.as_ref() < key && key < self.end.0.as_ref()
    }

    /// Whether no key can lie inside.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Whether the two slices share any key position.
    #[must_use]
    pub fn intersects(&self, other: &Slice) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Order-preserving encodings of common component types, for the layer above and for tests.
/// Each returns bytes whose unsigned lexicographic order equals the type's natural order.
pub mod component {
    /// Signed 64-bit integer (`bigint`, `counter`, `timestamp`).
    #[must_use]
    pub fn i64(v: i64) -> [u8; 8] {
        ((v as u64) ^ (1 << 63)).to_be_bytes()
    }

    /// Signed 32-bit integer (`int`, `date` is unsigned and uses `u32`).
    #[must_use]
    pub fn i32(v: i32) -> [u8; 4] {
        ((v as u32) ^ (1 << 31)).to_be_bytes()
    }

    /// Unsigned 32-bit integer.
    #[must_use]
    pub fn u32(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }

    /// IEEE double in total order (negative numbers reversed, NaN last).
    #[must_use]
    pub fn f64(v: f64) -> [u8; 8] {
        let bits = v.to_bits();
        let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
        ordered.to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parts: &[(&[u8], Order)]) -> Bytes {
        let mut b = ClusteringBuilder::new();
        for (p, o) in parts {
            b.push(p, *o);
        }
        b.key()
    }

    #[test]
    fn ascending_components_sort_as_their_bytes_with_prefix_free_escaping() {
        let asc = Order::Ascending;
        let values: [&[u8]; 6] = [b"", b"\0", b"a", b"ab", b"ab\0", b"abc"];
        let keys: Vec<Bytes> = values.iter().map(|v| key(&[(v, asc)])).collect();
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:?} !< {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn descending_components_reverse_the_order() {
        let d = Order::Descending;
        let a = key(&[(b"a", d)]);
        let ab = key(&[(b"ab", d)]);
        let b = key(&[(b"b", d)]);
        assert!(b < ab && ab < a);
    }

    #[test]
    fn mixed_orders_sort_by_first_then_second_component() {
        let (asc, desc) = (Order::Ascending, Order::Descending);
        let k = |x: i32, y: i64| key(&[(&component::i32(x), asc), (&component::i64(y), desc)]);
        assert!(k(1, 9) < k(1, 2));
        assert!(k(1, 2) < k(2, 100));
        assert!(k(-5, 0) < k(1, 0));
    }

    #[test]
    fn bounds_bracket_exactly_the_keys_with_their_prefix() {
        let asc = Order::Ascending;
        let mut p = ClusteringBuilder::new();
        p.push(b"m", asc);
        let inside = key(&[(b"m", asc), (b"x", asc)]);
        let exact = key(&[(b"m", asc)]);
        let below = key(&[(b"l", asc), (b"z", asc)]);
        let above = key(&[(b"n", asc)]);
        let s = Slice::prefix(&p);
        assert!(s.contains(&inside) && s.contains(&exact));
        assert!(!s.contains(&below) && !s.contains(&above));
        // exclusive start at "m": (m, ...] excludes everything with prefix m.
        let after_m = Slice { start: p.after(), end: Bound::top() };
        assert!(!after_m.contains(&exact) && !after_m.contains(&inside) && after_m.contains(&above));
        assert!(Slice::all().contains(&empty_key()));
    }

    #[test]
    fn components_decode_back_including_zero_bytes_and_descending_columns() {
        let parts: [(&[u8], Order); 3] =
            [(b"a\0b", Order::Ascending), (b"\0\xff\x01", Order::Descending), (b"", Order::Ascending)];
        let k = key(&parts);
        let orders: Vec<Order> = parts.iter().map(|p| p.1).collect();
        let got = decode_components(&k, &orders).unwrap();
        assert_eq!(got, parts.iter().map(|p| p.0.to_vec()).collect::<Vec<_>>());
        // A prefix decodes too; a wrong component count or stray bytes do not.
        let mut b = ClusteringBuilder::new();
        b.push(b"x", Order::Ascending);
        assert_eq!(
            decode_components(&b.before().0[..b.before().0.len() - 1], &[Order::Ascending]).unwrap(),
            vec![b"x".to_vec()]
        );
        assert!(decode_components(&k, &orders[..2]).is_none());
        assert!(decode_components(&k[..k.len() - 3], &orders).is_none());
        assert!(decode_components(&[SEPARATOR, 0x00, 0x07], &[Order::Ascending]).is_none());
    }

    #[test]
    fn bounds_around_a_key_bracket_only_that_key() {
        let k1 = key(&[(b"a", Order::Ascending), (b"b", Order::Ascending)]);
        let k2 = key(&[(b"a", Order::Ascending), (b"c", Order::Ascending)]);
        assert!(Bound::before_key(&k1).0 < k1 && k1 < Bound::after_key(&k1).0);
        assert!(Bound::after_key(&k1).0 < k2);
    }

    #[test]
    fn numeric_components_preserve_order() {
        let ints = [i64::MIN, -2, -1, 0, 1, i64::MAX];
        for w in ints.windows(2) {
            assert!(component::i64(w[0]) < component::i64(w[1]));
        }
        let floats = [f64::NEG_INFINITY, -1.5, -0.0, 0.0, 2.5, f64::INFINITY];
        for w in floats.windows(2) {
            assert!(component::f64(w[0]) <= component::f64(w[1]), "{} {}", w[0], w[1]);
        }
    }
}
