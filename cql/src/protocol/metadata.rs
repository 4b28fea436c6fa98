//! Column types (`[option]`, spec §4.2.5.2) and the result/prepared metadata built from them.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::codec::{self, Reader};
use crate::protocol::error::{ProtocolError, Result};

/// Deepest nesting of collection/UDT/tuple types the decoder accepts. Each level costs two bytes
/// on the wire, so without a bound a 16 MiB frame could nest millions deep and overflow the stack.
pub const MAX_TYPE_DEPTH: usize = 64;

/// The `[option]` ids of spec §4.2.5.2 (plus `Duration`, 0x15, which Cassandra >= 3.10 sends on v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ColumnTypeId {
    Custom = 0x0000,
    Ascii = 0x0001,
    Bigint = 0x0002,
    Blob = 0x0003,
    Boolean = 0x0004,
    Counter = 0x0005,
    Decimal = 0x0006,
    Double = 0x0007,
    Float = 0x0008,
    Int = 0x0009,
    Timestamp = 0x000B,
    Uuid = 0x000C,
    Varchar = 0x000D,
    Varint = 0x000E,
    Timeuuid = 0x000F,
    Inet = 0x0010,
    Date = 0x0011,
    Time = 0x0012,
    Smallint = 0x0013,
    Tinyint = 0x0014,
    Duration = 0x0015,
    List = 0x0020,
    Map = 0x0021,
    Set = 0x0022,
    Udt = 0x0030,
    Tuple = 0x0031,
}

impl ColumnTypeId {
    /// Decodes an option id.
    pub fn from_code(code: u16) -> Result<Self> {
        use ColumnTypeId as T;
        Ok(match code {
            0x0000 => T::Custom,
            0x0001 => T::Ascii,
            0x0002 => T::Bigint,
            0x0003 => T::Blob,
            0x0004 => T::Boolean,
            0x0005 => T::Counter,
            0x0006 => T::Decimal,
            0x0007 => T::Double,
            0x0008 => T::Float,
            0x0009 => T::Int,
            0x000B => T::Timestamp,
            0x000C => T::Uuid,
            0x000D => T::Varchar,
            0x000E => T::Varint,
            0x000F => T::Timeuuid,
            0x0010 => T::Inet,
            0x0011 => T::Date,
            0x0012 => T::Time,
            0x0013 => T::Smallint,
            0x0014 => T::Tinyint,
            0x0015 => T::Duration,
            0x0020 => T::List,
            0x0021 => T::Map,
            0x0022 => T::Set,
            0x0030 => T::Udt,
            0x0031 => T::Tuple,
            other => {
                return Err(ProtocolError::UnknownCode { what: "column type id", value: i64::from(other) })
            }
        })
    }
}

/// A CQL type as described by an `[option]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// A custom type: the fully qualified Java class name.
    Custom(String),
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Decimal,
    Double,
    Float,
    Int,
    Timestamp,
    Uuid,
    /// `text` / `varchar`.
    Varchar,
    Varint,
    Timeuuid,
    Inet,
    Date,
    Time,
    Smallint,
    Tinyint,
    Duration,
    List(Box<ColumnType>),
    Map(Box<ColumnType>, Box<ColumnType>),
    Set(Box<ColumnType>),
    Udt {
        keyspace: String,
        name: String,
        fields: Vec<(String, ColumnType)>,
    },
    Tuple(Vec<ColumnType>),
}

impl ColumnType {
    /// The option id.
    pub fn id(&self) -> ColumnTypeId {
        use ColumnTypeId as T;
        match self {
            ColumnType::Custom(_) => T::Custom,
            ColumnType::Ascii => T::Ascii,
            ColumnType::Bigint => T::Bigint,
            ColumnType::Blob => T::Blob,
            ColumnType::Boolean => T::Boolean,
            ColumnType::Counter => T::Counter,
            ColumnType::Decimal => T::Decimal,
            ColumnType::Double => T::Double,
            ColumnType::Float => T::Float,
            ColumnType::Int => T::Int,
            ColumnType::Timestamp => T::Timestamp,
            ColumnType::Uuid => T::Uuid,
            ColumnType::Varchar => T::Varchar,
            ColumnType::Varint => T::Varint,
            ColumnType::Timeuuid => T::Timeuuid,
            ColumnType::Inet => T::Inet,
            ColumnType::Date => T::Date,
            ColumnType::Time => T::Time,
            ColumnType::Smallint => T::Smallint,
            ColumnType::Tinyint => T::Tinyint,
            ColumnType::Duration => T::Duration,
            ColumnType::List(_) => T::List,
            ColumnType::Map(_, _) => T::Map,
            ColumnType::Set(_) => T::Set,
            ColumnType::Udt { .. } => T::Udt,
            ColumnType::Tuple(_) => T::Tuple,
        }
    }

    /// Writes the `[option]`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<()> {
        out.put_u16(self.id() as u16);
        match self {
            ColumnType::Custom(class) => codec::put_string(out, class, "custom type class name")?,
            ColumnType::List(elem) | ColumnType::Set(elem) => elem.encode(out)?,
            ColumnType::Map(k, v) => {
                k.encode(out)?;
                v.encode(out)?;
            }
            ColumnType::Udt { keyspace, name, fields } => {
                codec::put_string(out, keyspace, "UDT keyspace")?;
                codec::put_string(out, name, "UDT name")?;
                out.put_u16(codec::short_len(fields.len(), "UDT fields")?);
                for (field, ty) in fields {
                    codec::put_string(out, field, "UDT field name")?;
                    ty.encode(out)?;
                }
            }
            ColumnType::Tuple(types) => {
                out.put_u16(codec::short_len(types.len(), "tuple types")?);
                for ty in types {
                    ty.encode(out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes an `[option list]`: a `[short]` count, then the options.
    pub fn encode_list(types: &[ColumnType], out: &mut BytesMut) -> Result<()> {
        out.put_u16(codec::short_len(types.len(), "option list")?);
        for ty in types {
            ty.encode(out)?;
        }
        Ok(())
    }

    /// Reads an `[option list]`.
    pub fn decode_list(r: &mut Reader) -> Result<Vec<ColumnType>> {
        let n = usize::from(r.read_short("option list count")?);
        let mut types = Vec::with_capacity(r.capacity_for(n, 2));
        for _ in 0..n {
            types.push(Self::decode(r)?);
        }
        Ok(types)
    }

    /// Reads an `[option]`, refusing nesting deeper than [`MAX_TYPE_DEPTH`].
    pub fn decode(r: &mut Reader) -> Result<Self> {
        Self::decode_at(r, 0)
    }

    fn decode_at(r: &mut Reader, depth: usize) -> Result<Self> {
        if depth >= MAX_TYPE_DEPTH {
            return Err(ProtocolError::TypeTooDeep { max: MAX_TYPE_DEPTH });
        }
        let next = depth.saturating_add(1);
        use ColumnTypeId as T;
        Ok(match ColumnTypeId::from_code(r.read_short("column type id")?)? {
            T::Custom => ColumnType::Custom(r.read_string("custom type class name")?),
            T::Ascii => ColumnType::Ascii,
            T::Bigint => ColumnType::Bigint,
            T::Blob => ColumnType::Blob,
            T::Boolean => ColumnType::Boolean,
            T::Counter => ColumnType::Counter,
            T::Decimal => ColumnType::Decimal,
            T::Double => ColumnType::Double,
            T::Float => ColumnType::Float,
            T::Int => ColumnType::Int,
            T::Timestamp => ColumnType::Timestamp,
            T::Uuid => ColumnType::Uuid,
            T::Varchar => ColumnType::Varchar,
            T::Varint => ColumnType::Varint,
            T::Timeuuid => ColumnType::Timeuuid,
            T::Inet => ColumnType::Inet,
            T::Date => ColumnType::Date,
            T::Time => ColumnType::Time,
            T::Smallint => ColumnType::Smallint,
            T::Tinyint => ColumnType::Tinyint,
            T::Duration => ColumnType::Duration,
            T::List => ColumnType::List(Box::new(Self::decode_at(r, next)?)),
            T::Set => ColumnType::Set(Box::new(Self::decode_at(r, next)?)),
            T::Map => {
                let k = Self::decode_at(r, next)?;
                let v = Self::decode_at(r, next)?;
                ColumnType::Map(Box::new(k), Box::new(v))
            }
            T::Udt => {
                let keyspace = r.read_string("UDT keyspace")?;
                let name = r.read_string("UDT name")?;
                let n = usize::from(r.read_short("UDT field count")?);
                let mut fields = Vec::with_capacity(r.capacity_for(n, 4));
                for _ in 0..n {
                    let field = r.read_string("UDT field name")?;
                    fields.push((field, Self::decode_at(r, next)?));
                }
                ColumnType::Udt { keyspace, name, fields }
            }
            T::Tuple => {
                let n = usize::from(r.read_short("tuple type count")?);
                let mut types = Vec::with_capacity(r.capacity_for(n, 2));
                for _ in 0..n {
                    types.push(Self::decode_at(r, next)?);
                }
                ColumnType::Tuple(types)
            }
        })
    }
}

impl fmt::Display for ColumnType {
    /// The CQL type text (`map<text, frozen<list<int>>>` is written without `frozen`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let simple = match self {
            ColumnType::Custom(class) => return write!(f, "'{class}'"),
            ColumnType::Ascii => "ascii",
            ColumnType::Bigint => "bigint",
            ColumnType::Blob => "blob",
            ColumnType::Boolean => "boolean",
            ColumnType::Counter => "counter",
            ColumnType::Decimal => "decimal",
            ColumnType::Double => "double",
            ColumnType::Float => "float",
            ColumnType::Int => "int",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Uuid => "uuid",
            ColumnType::Varchar => "text",
            ColumnType::Varint => "varint",
            ColumnType::Timeuuid => "timeuuid",
            ColumnType::Inet => "inet",
            ColumnType::Date => "date",
            ColumnType::Time => "time",
            ColumnType::Smallint => "smallint",
            ColumnType::Tinyint => "tinyint",
            ColumnType::Duration => "duration",
            ColumnType::List(e) => return write!(f, "list<{e}>"),
            ColumnType::Set(e) => return write!(f, "set<{e}>"),
            ColumnType::Map(k, v) => return write!(f, "map<{k}, {v}>"),
            ColumnType::Udt { keyspace, name, .. } => return write!(f, "{keyspace}.{name}"),
            ColumnType::Tuple(types) => {
                f.write_str("tuple<")?;
                for (i, t) in types.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                return f.write_str(">");
            }
        };
        f.write_str(simple)
    }
}

/// One column (or bind marker) description.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnSpec {
    pub keyspace: String,
    pub table: String,
    pub name: String,
    pub ty: ColumnType,
}

impl ColumnSpec {
    /// A column of `keyspace.table`.
    pub fn new(
        keyspace: impl Into<String>,
        table: impl Into<String>,
        name: impl Into<String>,
        ty: ColumnType,
    ) -> Self {
        ColumnSpec { keyspace: keyspace.into(), table: table.into(), name: name.into(), ty }
    }
}

/// Metadata flag 0x0001: one table spec for all columns.
pub const FLAG_GLOBAL_TABLES_SPEC: i32 = 0x0001;
/// Metadata flag 0x0002: more pages; the paging state follows.
pub const FLAG_HAS_MORE_PAGES: i32 = 0x0002;
/// Metadata flag 0x0004: no column specs (requested with skip_metadata).
pub const FLAG_NO_METADATA: i32 = 0x0004;

/// Whether all columns share one keyspace and table (then the global spec is used).
fn shared_table(columns: &[ColumnSpec]) -> Option<(&str, &str)> {
    let first = columns.first()?;
    columns
        .iter()
        .all(|c| c.keyspace == first.keyspace && c.table == first.table)
        .then_some((first.keyspace.as_str(), first.table.as_str()))
}

fn encode_column_specs(
    out: &mut BytesMut,
    columns: &[ColumnSpec],
    global: Option<(&str, &str)>,
) -> Result<()> {
    if let Some((keyspace, table)) = global {
        codec::put_string(out, keyspace, "global keyspace")?;
        codec::put_string(out, table, "global table")?;
    }
    for c in columns {
        if global.is_none() {
            codec::put_string(out, &c.keyspace, "column keyspace")?;
            codec::put_string(out, &c.table, "column table")?;
        }
        codec::put_string(out, &c.name, "column name")?;
        c.ty.encode(out)?;
    }
    Ok(())
}

fn decode_column_specs(r: &mut Reader, count: usize, global: bool) -> Result<Vec<ColumnSpec>> {
    let global =
        if global { Some((r.read_string("global keyspace")?, r.read_string("global table")?)) } else { None };
    // each spec is at least a 2-byte name and a 2-byte type id
    let mut columns = Vec::with_capacity(r.capacity_for(count, 4));
    for _ in 0..count {
        let (keyspace, table) = match &global {
            Some((k, t)) => (k.clone(), t.clone()),
            None => (r.read_string("column keyspace")?, r.read_string("column table")?),
        };
        let name = r.read_string("column name")?;
        let ty = ColumnType::decode(r)?;
        columns.push(ColumnSpec { keyspace, table, name, ty });
    }
    Ok(columns)
}

fn column_count(r: &mut Reader) -> Result<usize> {
    let n = r.read_int("column count")?;
    usize::try_from(n)
        .map_err(|_| ProtocolError::InvalidLength { what: "column count", length: i64::from(n) })
}

/// `<metadata>` of a Rows result (and `<result_metadata>` of a Prepared result).
///
/// The Global_tables_spec flag is derived: it is set whenever all columns share one table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowsMetadata {
    /// Number of columns in each row. Equals `columns.len()` unless `no_metadata` is set.
    pub column_count: usize,
    /// Column specs; empty when `no_metadata` is set.
    pub columns: Vec<ColumnSpec>,
    /// Set: Has_more_pages, and this is the `<paging_state>` to resume from.
    pub paging_state: Option<Bytes>,
    /// No_metadata: only flags, count and paging state are sent (the client asked with
    /// skip_metadata and already knows the columns).
    pub no_metadata: bool,
}

impl RowsMetadata {
    /// Metadata describing `columns`.
    pub fn new(columns: Vec<ColumnSpec>) -> Self {
        RowsMetadata { column_count: columns.len(), columns, paging_state: None, no_metadata: false }
    }

    /// No columns and the No_metadata flag: the `<result_metadata>` of a non-SELECT PREPARE.
    pub fn empty() -> Self {
        RowsMetadata { column_count: 0, columns: Vec::new(), paging_state: None, no_metadata: true }
    }

    /// Sets Has_more_pages with this paging state.
    pub fn with_paging_state(mut self, paging_state: Bytes) -> Self {
        self.paging_state = Some(paging_state);
        self
    }

    /// Drops the column specs (No_metadata), keeping the count.
    pub fn without_column_specs(mut self) -> Self {
        self.no_metadata = true;
        self.columns.clear();
        self
    }

    /// The `<flags>` `[int]` this metadata encodes with.
    pub fn flags(&self) -> i32 {
        let mut flags = 0;
        if self.no_metadata {
            flags |= FLAG_NO_METADATA;
        } else if shared_table(&self.columns).is_some() {
            flags |= FLAG_GLOBAL_TABLES_SPEC;
        }
        if self.paging_state.is_some() {
            flags |= FLAG_HAS_MORE_PAGES;
        }
        flags
    }

    /// Writes `<flags><columns_count>[<paging_state>][<global_table_spec>?<col_spec_1>...]`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<()> {
        if !self.no_metadata && self.columns.len() != self.column_count {
            return Err(ProtocolError::Invalid {
                what: "rows metadata",
                reason: format!("column_count {} but {} column specs", self.column_count, self.columns.len()),
            });
        }
        out.put_i32(self.flags());
        out.put_i32(codec::int_len(self.column_count, "column count")?);
        if let Some(state) = &self.paging_state {
            codec::put_bytes(out, Some(state), "paging state")?;
        }
        if !self.no_metadata {
            encode_column_specs(out, &self.columns, shared_table(&self.columns))?;
        }
        Ok(())
    }

    /// Reads rows metadata.
    pub fn decode(r: &mut Reader) -> Result<Self> {
        let flags = r.read_int("metadata flags")?;
        let column_count = column_count(r)?;
        let paging_state =
            if flags & FLAG_HAS_MORE_PAGES != 0 { r.read_bytes("paging state")? } else { None };
        let no_metadata = flags & FLAG_NO_METADATA != 0;
        let columns = if no_metadata {
            Vec::new()
        } else {
            decode_column_specs(r, column_count, flags & FLAG_GLOBAL_TABLES_SPEC != 0)?
        };
        Ok(RowsMetadata { column_count, columns, paging_state, no_metadata })
    }
}

/// `<metadata>` of a Prepared result: the bind markers and the partition key indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreparedMetadata {
    /// For each partition key column (in key order), the index of its bind marker. Empty when
    /// some partition key column has no bind marker.
    pub pk_indexes: Vec<u16>,
    /// One spec per bind marker.
    pub columns: Vec<ColumnSpec>,
}

impl PreparedMetadata {
    /// Writes `<flags><columns_count><pk_count>[<pk_index_i>...][<global_table_spec>?<col_spec_i>...]`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<()> {
        let global = shared_table(&self.columns);
        out.put_i32(if global.is_some() { FLAG_GLOBAL_TABLES_SPEC } else { 0 });
        out.put_i32(codec::int_len(self.columns.len(), "bind marker count")?);
        out.put_i32(codec::int_len(self.pk_indexes.len(), "partition key index count")?);
        for i in &self.pk_indexes {
            out.put_u16(*i);
        }
        encode_column_specs(out, &self.columns, global)
    }

    /// Reads prepared metadata.
    pub fn decode(r: &mut Reader) -> Result<Self> {
        let flags = r.read_int("prepared metadata flags")?;
        let count = column_count(r)?;
        let pk_count = r.read_int("partition key index count")?;
        let pk_count = usize::try_from(pk_count).map_err(|_| ProtocolError::InvalidLength {
            what: "partition key index count",
            length: i64::from(pk_count),
        })?;
        let mut pk_indexes = Vec::with_capacity(r.capacity_for(pk_count, 2));
        for _ in 0..pk_count {
            pk_indexes.push(r.read_short("partition key index")?);
        }
        let columns = decode_column_specs(r, count, flags & FLAG_GLOBAL_TABLES_SPEC != 0)?;
        Ok(PreparedMetadata { pk_indexes, columns })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn every_type() -> Vec<ColumnType> {
        use ColumnType::*;
        vec![
            Custom("org.apache.cassandra.db.marshal.DynamicCompositeType".into()),
            Ascii,
            Bigint,
            Blob,
            Boolean,
            Counter,
            Decimal,
            Double,
            Float,
            Int,
            Timestamp,
            Uuid,
            Varchar,
            Varint,
            Timeuuid,
            Inet,
            Date,
            Time,
            Smallint,
            Tinyint,
            Duration,
            List(Box::new(Int)),
            Map(Box::new(Varchar), Box::new(List(Box::new(Bigint)))),
            Set(Box::new(Uuid)),
            Udt {
                keyspace: "ks".into(),
                name: "address".into(),
                fields: vec![("street".into(), Varchar), ("zip".into(), Int)],
            },
            Tuple(vec![Int, Varchar, Set(Box::new(Date))]),
        ]
    }

    #[test]
    fn every_type_round_trips() {
        for ty in every_type() {
            let mut out = BytesMut::new();
            ty.encode(&mut out).unwrap();
            let mut r = Reader::new(out.freeze());
            assert_eq!(ColumnType::decode(&mut r).unwrap(), ty);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn option_list_round_trips() {
        let mut out = BytesMut::new();
        ColumnType::encode_list(&every_type(), &mut out).unwrap();
        assert_eq!(&out[..2], &[0, every_type().len() as u8]);
        let mut r = Reader::new(out.freeze());
        assert_eq!(ColumnType::decode_list(&mut r).unwrap(), every_type());
        assert!(r.is_empty());
        assert!(ColumnType::decode_list(&mut Reader::new(Bytes::from_static(&[0xFF, 0xFF, 0, 9]))).is_err());
    }

    #[test]
    fn option_ids_match_the_spec() {
        let mut out = BytesMut::new();
        ColumnType::Map(Box::new(ColumnType::Varchar), Box::new(ColumnType::Int)).encode(&mut out).unwrap();
        assert_eq!(&out[..], &[0x00, 0x21, 0x00, 0x0D, 0x00, 0x09]);
        assert_eq!(ColumnTypeId::Timestamp as u16, 0x0B);
        assert_eq!(ColumnTypeId::Duration as u16, 0x15);
        assert_eq!(ColumnTypeId::Tuple as u16, 0x31);
        assert!(ColumnTypeId::from_code(0x000A).is_err(), "0x000A (old text) is not a v4 type id");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[0x00, 0x20]); // list<list<...
        }
        bytes.extend_from_slice(&[0x00, 0x09]);
        let err = ColumnType::decode(&mut Reader::new(Bytes::from(bytes))).unwrap_err();
        assert_eq!(err, ProtocolError::TypeTooDeep { max: MAX_TYPE_DEPTH });
    }

    #[test]
    fn display_is_cql_type_text() {
        let ty = ColumnType::Map(
            Box::new(ColumnType::Varchar),
            Box::new(ColumnType::List(Box::new(ColumnType::Int))),
        );
        assert_eq!(ty.to_string(), "map<text, list<int>>");
        assert_eq!(
            ColumnType::Tuple(vec![ColumnType::Int, ColumnType::Blob]).to_string(),
            "tuple<int, blob>"
        );
    }

    #[test]
    fn global_table_spec_is_used_when_columns_share_a_table() {
        let shared = RowsMetadata::new(vec![
            ColumnSpec::new("ks", "t", "a", ColumnType::Int),
            ColumnSpec::new("ks", "t", "b", ColumnType::Varchar),
        ]);
        assert_eq!(shared.flags(), FLAG_GLOBAL_TABLES_SPEC);
        let mut out = BytesMut::new();
        shared.encode(&mut out).unwrap();
        let expected: &[u8] = &[
            0, 0, 0, 1, // flags
            0, 0, 0, 2, // column count
            0, 2, b'k', b's', 0, 1, b't', // global spec
            0, 1, b'a', 0, 0x09, // a int
            0, 1, b'b', 0, 0x0D, // b varchar
        ];
        assert_eq!(&out[..], expected);
        assert_eq!(RowsMetadata::decode(&mut Reader::new(out.freeze())).unwrap(), shared);

        let mixed = RowsMetadata::new(vec![
            ColumnSpec::new("ks", "t", "a", ColumnType::Int),
            ColumnSpec::new("ks", "u", "b", ColumnType::Int),
        ])
        .with_paging_state(Bytes::from_static(b"\x01\x02"));
        assert_eq!(mixed.flags(), FLAG_HAS_MORE_PAGES);
        let mut out = BytesMut::new();
        mixed.encode(&mut out).unwrap();
        assert_eq!(RowsMetadata::decode(&mut Reader::new(out.freeze())).unwrap(), mixed);

        let bare =
            RowsMetadata::new(vec![ColumnSpec::new("ks", "t", "a", ColumnType::Int)]).without_column_specs();
        assert_eq!(bare.flags(), FLAG_NO_METADATA);
        let mut out = BytesMut::new();
        bare.encode(&mut out).unwrap();
        assert_eq!(&out[..], &[0, 0, 0, 4, 0, 0, 0, 1]);
        assert_eq!(RowsMetadata::decode(&mut Reader::new(out.freeze())).unwrap(), bare);
    }

    #[test]
    fn prepared_metadata_round_trips_with_pk_indexes() {
        let m = PreparedMetadata {
            pk_indexes: vec![2, 0, 1],
            columns: vec![
                ColumnSpec::new("ks", "t", "a", ColumnType::Int),
                ColumnSpec::new("ks", "t", "b", ColumnType::Varchar),
                ColumnSpec::new("ks", "t", "c", ColumnType::Blob),
            ],
        };
        let mut out = BytesMut::new();
        m.encode(&mut out).unwrap();
        assert_eq!(&out[..18], &[0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 3, 0, 2, 0, 0, 0, 1]);
        assert_eq!(PreparedMetadata::decode(&mut Reader::new(out.freeze())).unwrap(), m);
    }

    #[test]
    fn inconsistent_column_count_is_an_encode_error() {
        let mut m = RowsMetadata::new(vec![ColumnSpec::new("ks", "t", "a", ColumnType::Int)]);
        m.column_count = 2;
        assert!(m.encode(&mut BytesMut::new()).is_err());
    }
}
