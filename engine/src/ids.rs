//! Identifier newtypes shared by the engine's modules.

use std::fmt;

/// A table's identity, stable for its lifetime (Cassandra's table id, a UUID).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub uuid::Uuid);

impl TableId {
    /// A fresh random id.
    #[must_use]
    pub fn random() -> TableId {
        TableId(uuid::Uuid::new_v4())
    }

    /// The 16 id bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id as 32 lowercase hex digits (used in directory names, like Cassandra).
    #[must_use]
    pub fn simple_hex(&self) -> String {
        self.0.simple().to_string()
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableId({})", self.0)
    }
}

/// A column within a table. Assigned by the schema layer and never reused after a drop, so old
/// cells of a dropped column can never be read as a new column's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnId(pub u32);

/// An SSTable's generation number, unique and increasing within its table directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
