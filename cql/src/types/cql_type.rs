//! CQL types: parsing of type text, Cassandra's canonical spelling, validity rules.

use std::fmt;

use super::error::TypeError;

/// How deeply types (and therefore values) may nest. `list<int>` has depth 2, `int` depth 1.
///
/// Type text, serialized values and byte-comparable encodings come from clients and disk; the
/// limit keeps every recursive parser and codec far away from a stack overflow.
pub const MAX_DEPTH: usize = 32;

/// A CQL type.
///
/// `text` and `varchar` are the same type ([`CqlType::Text`], spelled `text`). Tuples are
/// always frozen. [`CqlType::Custom`] is a Java class name of a type Sibyl does not know; its
/// values are opaque blobs ordered by their bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CqlType {
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Date,
    Decimal,
    Double,
    Duration,
    Float,
    Inet,
    Int,
    Smallint,
    Text,
    Time,
    Timestamp,
    Timeuuid,
    Tinyint,
    Uuid,
    Varint,
    List { element: Box<CqlType>, frozen: bool },
    Set { element: Box<CqlType>, frozen: bool },
    Map { key: Box<CqlType>, value: Box<CqlType>, frozen: bool },
    Tuple(Vec<CqlType>),
    Custom(String),
}

/// Native type names, lower case, as CQL spells them.
const NATIVE_NAMES: &[(&str, CqlType)] = &[
    ("ascii", CqlType::Ascii),
    ("bigint", CqlType::Bigint),
    ("blob", CqlType::Blob),
    ("boolean", CqlType::Boolean),
    ("counter", CqlType::Counter),
    ("date", CqlType::Date),
    ("decimal", CqlType::Decimal),
    ("double", CqlType::Double),
    ("duration", CqlType::Duration),
    ("float", CqlType::Float),
    ("inet", CqlType::Inet),
    ("int", CqlType::Int),
    ("smallint", CqlType::Smallint),
    ("text", CqlType::Text),
    ("time", CqlType::Time),
    ("timestamp", CqlType::Timestamp),
    ("timeuuid", CqlType::Timeuuid),
    ("tinyint", CqlType::Tinyint),
    ("uuid", CqlType::Uuid),
    ("varchar", CqlType::Text),
    ("varint", CqlType::Varint),
];

/// Cassandra marshal classes that a custom type string may name and that are native CQL types
/// (`'org.apache.cassandra.db.marshal.Int32Type'` is simply `int`, as in Cassandra).
const MARSHAL_CLASSES: &[(&str, CqlType)] = &[
    ("AsciiType", CqlType::Ascii),
    ("LongType", CqlType::Bigint),
    ("BytesType", CqlType::Blob),
    ("BooleanType", CqlType::Boolean),
    ("CounterColumnType", CqlType::Counter),
    ("SimpleDateType", CqlType::Date),
    ("DecimalType", CqlType::Decimal),
    ("DoubleType", CqlType::Double),
    ("DurationType", CqlType::Duration),
    ("FloatType", CqlType::Float),
    ("InetAddressType", CqlType::Inet),
    ("Int32Type", CqlType::Int),
    ("ShortType", CqlType::Smallint),
    ("UTF8Type", CqlType::Text),
    ("TimeType", CqlType::Time),
    ("TimestampType", CqlType::Timestamp),
    ("TimeUUIDType", CqlType::Timeuuid),
    ("ByteType", CqlType::Tinyint),
    ("UUIDType", CqlType::Uuid),
    ("IntegerType", CqlType::Varint),
];

const MARSHAL_PACKAGE: &str = "org.apache.cassandra.db.marshal.";

impl CqlType {
    /// Parses CQL type text as written in `CREATE TABLE` or stored in
    /// `system_schema.columns.type`: case-insensitive names, any whitespace between tokens,
    /// `frozen<...>`, nesting up to [`MAX_DEPTH`], custom types as quoted class names.
    ///
    /// Cassandra's rules apply: `frozen<>` only on collections and tuples; freezing a
    /// collection freezes the collections inside it; tuple elements are frozen implicitly;
    /// non-frozen collections inside collections, counters inside collections or tuples,
    /// durations inside sets or as map keys are rejected with Cassandra's messages.
    pub fn parse(text: &str) -> Result<CqlType, TypeError> {
        let mut parser = Parser { src: text, pos: 0 };
        let raw = parser.parse_type(1)?;
        parser.skip_ws();
        if parser.pos != text.len() {
            let rest = text.get(parser.pos..).unwrap_or("");
            return Err(TypeError::InvalidType(format!("Unexpected '{rest}' after type in '{text}'")));
        }
        raw.prepare()
    }

    /// Whether this is a list, set or map (frozen or not).
    pub fn is_collection(&self) -> bool {
        matches!(self, CqlType::List { .. } | CqlType::Set { .. } | CqlType::Map { .. })
    }

    /// Whether values of this type are stored as one cell per element: non-frozen collections.
    pub fn is_multi_cell(&self) -> bool {
        match self {
            CqlType::List { frozen, .. } | CqlType::Set { frozen, .. } | CqlType::Map { frozen, .. } => {
                !frozen
            }
            _ => false,
        }
    }

    /// Whether this is a frozen collection or a tuple (tuples are always frozen).
    pub fn is_frozen(&self) -> bool {
        match self {
            CqlType::List { frozen, .. } | CqlType::Set { frozen, .. } | CqlType::Map { frozen, .. } => {
                *frozen
            }
            CqlType::Tuple(_) => true,
            _ => false,
        }
    }

    /// Whether this is `counter`.
    pub fn is_counter(&self) -> bool {
        matches!(self, CqlType::Counter)
    }

    /// Whether `duration` appears anywhere in this type.
    pub fn references_duration(&self) -> bool {
        match self {
            CqlType::Duration => true,
            CqlType::List { element, .. } | CqlType::Set { element, .. } => element.references_duration(),
            CqlType::Map { key, value, .. } => key.references_duration() || value.references_duration(),
            CqlType::Tuple(types) => types.iter().any(CqlType::references_duration),
            _ => false,
        }
    }

    /// Whether a column of this type may be part of the partition key: not a non-frozen
    /// collection, not a counter, no duration anywhere (Cassandra: "duration type is not
    /// supported for PRIMARY KEY column").
    pub fn can_be_partition_key(&self) -> bool {
        !self.is_multi_cell() && !self.is_counter() && !self.references_duration()
    }

    /// Whether a column of this type may be a clustering column (same rules as the partition
    /// key).
    pub fn can_be_clustering_key(&self) -> bool {
        self.can_be_partition_key()
    }

    /// Whether an empty byte string is a valid serialized value of this type that is *not* an
    /// ordinary value, i.e. decodes to [`crate::types::Value::Empty`] (Cassandra accepts empty
    /// values for these types; they sort before every other value). For `text`, `ascii`,
    /// `blob` and custom types the empty byte string is simply the empty string / blob.
    pub fn allows_empty(&self) -> bool {
        matches!(
            self,
            CqlType::Bigint
                | CqlType::Boolean
                | CqlType::Counter
                | CqlType::Decimal
                | CqlType::Double
                | CqlType::Float
                | CqlType::Inet
                | CqlType::Int
                | CqlType::Timestamp
                | CqlType::Timeuuid
                | CqlType::Uuid
                | CqlType::Varint
                | CqlType::Tuple(_)
        )
    }

    /// Nesting depth: 1 for a native type, 1 + the deepest element for collections and tuples.
    pub fn depth(&self) -> usize {
        match self {
            CqlType::List { element, .. } | CqlType::Set { element, .. } => 1 + element.depth(),
            CqlType::Map { key, value, .. } => 1 + key.depth().max(value.depth()),
            CqlType::Tuple(types) => 1 + types.iter().map(CqlType::depth).max().unwrap_or(0),
            _ => 1,
        }
    }

    /// The frozen version of this type: collections become frozen, recursively (as
    /// `frozen<...>` does in CQL). Other types are returned unchanged.
    pub fn freeze(&self) -> CqlType {
        match self {
            CqlType::List { element, .. } => {
                CqlType::List { element: Box::new(element.freeze()), frozen: true }
            }
            CqlType::Set { element, .. } => {
                CqlType::Set { element: Box::new(element.freeze()), frozen: true }
            }
            CqlType::Map { key, value, .. } => {
                CqlType::Map { key: Box::new(key.freeze()), value: Box::new(value.freeze()), frozen: true }
            }
            CqlType::Tuple(types) => CqlType::Tuple(types.iter().map(CqlType::freeze).collect()),
            other => other.clone(),
        }
    }

    /// Checks a type built in code against the rules [`CqlType::parse`] enforces: depth at most
    /// [`MAX_DEPTH`], collections and tuples inside collections and tuples frozen (a frozen
    /// collection contains only frozen ones), no counters inside collections or tuples, no
    /// durations in sets or as map keys, tuples with at least one element.
    pub fn validate(&self) -> Result<(), TypeError> {
        self.validate_at(1, false)
    }

    fn validate_at(&self, depth: usize, inside: bool) -> Result<(), TypeError> {
        if depth > MAX_DEPTH {
            return Err(TypeError::TooDeep { max: MAX_DEPTH });
        }
        let child_check = |child: &CqlType, what: &str| -> Result<(), TypeError> {
            if child.is_multi_cell() {
                return Err(TypeError::InvalidType(format!(
                    "Non-frozen collections are not allowed inside {what}: {self}"
                )));
            }
            child.validate_at(depth + 1, true)
        };
        match self {
            CqlType::List { element, frozen } | CqlType::Set { element, frozen } => {
                if inside && !frozen {
                    return Err(TypeError::InvalidType(format!(
                        "Non-frozen collections are not allowed inside collections: {self}"
                    )));
                }
                if element.is_counter() {
                    return Err(TypeError::InvalidType(format!(
                        "Counters are not allowed inside collections: {self}"
                    )));
                }
                if matches!(self, CqlType::Set { .. }) && matches!(**element, CqlType::Duration) {
                    return Err(TypeError::InvalidType(format!(
                        "Durations are not allowed inside sets: {self}"
                    )));
                }
                child_check(element, "collections")
            }
            CqlType::Map { key, value, frozen } => {
                if inside && !frozen {
                    return Err(TypeError::InvalidType(format!(
                        "Non-frozen collections are not allowed inside collections: {self}"
                    )));
                }
                if key.is_counter() || value.is_counter() {
                    return Err(TypeError::InvalidType(format!(
                        "Counters are not allowed inside collections: {self}"
                    )));
                }
                if matches!(**key, CqlType::Duration) {
                    return Err(TypeError::InvalidType(format!(
                        "Durations are not allowed as map keys: {self}"
                    )));
                }
                child_check(key, "collections")?;
                child_check(value, "collections")
            }
            CqlType::Tuple(types) => {
                if types.is_empty() {
                    return Err(TypeError::InvalidType(
                        "A tuple type needs at least one element".to_string(),
                    ));
                }
                for t in types {
                    if t.is_counter() {
                        return Err(TypeError::InvalidType(
                            "Counters are not allowed inside tuples".to_string(),
                        ));
                    }
                    child_check(t, "tuples")?;
                }
                Ok(())
            }
            CqlType::Custom(name) if name.is_empty() => {
                Err(TypeError::InvalidType("A custom type needs a class name".to_string()))
            }
            _ => Ok(()),
        }
    }
}

impl std::str::FromStr for CqlType {
    type Err = TypeError;

    /// [`CqlType::parse`].
    fn from_str(s: &str) -> Result<CqlType, TypeError> {
        CqlType::parse(s)
    }
}

/// Cassandra's canonical type text, as Cassandra 4 writes `system_schema.columns.type`
/// (`asCQL3Type().toString()`): `text` for text/varchar, `frozen<list<int>>`,
/// `map<text, int>` (comma and one space), `frozen<tuple<int, text>>` (tuples are always shown
/// frozen), custom types as a quoted class name.
impl fmt::Display for CqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let simple = match self {
            CqlType::Ascii => "ascii",
            CqlType::Bigint => "bigint",
            CqlType::Blob => "blob",
            CqlType::Boolean => "boolean",
            CqlType::Counter => "counter",
            CqlType::Date => "date",
            CqlType::Decimal => "decimal",
            CqlType::Double => "double",
            CqlType::Duration => "duration",
            CqlType::Float => "float",
            CqlType::Inet => "inet",
            CqlType::Int => "int",
            CqlType::Smallint => "smallint",
            CqlType::Text => "text",
            CqlType::Time => "time",
            CqlType::Timestamp => "timestamp",
            CqlType::Timeuuid => "timeuuid",
            CqlType::Tinyint => "tinyint",
            CqlType::Uuid => "uuid",
            CqlType::Varint => "varint",
            CqlType::List { element, frozen } => {
                return write_frozen(f, *frozen, |f| write!(f, "list<{element}>"))
            }
            CqlType::Set { element, frozen } => {
                return write_frozen(f, *frozen, |f| write!(f, "set<{element}>"))
            }
            CqlType::Map { key, value, frozen } => {
                return write_frozen(f, *frozen, |f| write!(f, "map<{key}, {value}>"));
            }
            CqlType::Tuple(types) => {
                f.write_str("frozen<tuple<")?;
                for (i, t) in types.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                return f.write_str(">>");
            }
            CqlType::Custom(name) => return write!(f, "'{}'", name.replace('\'', "''")),
        };
        f.write_str(simple)
    }
}

fn write_frozen(
    f: &mut fmt::Formatter<'_>,
    frozen: bool,
    inner: impl FnOnce(&mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    if frozen {
        f.write_str("frozen<")?;
        inner(f)?;
        f.write_str(">")
    } else {
        inner(f)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing: text -> Raw (as written) -> CqlType (Cassandra's freezing and validity rules).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    Map,
}

/// A type as written, before Cassandra's rules are applied (Cassandra's `CQL3Type.Raw`).
#[derive(Debug)]
enum Raw {
    Simple(CqlType),
    Collection { kind: Kind, key: Option<Box<Raw>>, value: Box<Raw>, frozen: bool },
    Tuple(Vec<Raw>),
}

impl Raw {
    fn supports_freezing(&self) -> bool {
        !matches!(self, Raw::Simple(_))
    }

    fn is_frozen(&self) -> bool {
        match self {
            Raw::Simple(_) => false,
            Raw::Collection { frozen, .. } => *frozen,
            Raw::Tuple(_) => true,
        }
    }

    fn is_counter(&self) -> bool {
        matches!(self, Raw::Simple(CqlType::Counter))
    }

    fn is_duration(&self) -> bool {
        matches!(self, Raw::Simple(CqlType::Duration))
    }

    /// `frozen<self>`.
    fn freeze(self) -> Result<Raw, TypeError> {
        match self {
            Raw::Simple(t) => Err(TypeError::InvalidType(format!(
                "frozen<> is only allowed on collections, tuples, and user-defined types (got {t})"
            ))),
            other => Ok(other.freeze_if_supported()),
        }
    }

    /// Freezes collections (recursively), leaves everything else alone.
    fn freeze_if_supported(self) -> Raw {
        match self {
            Raw::Collection { kind, key, value, .. } => Raw::Collection {
                kind,
                key: key.map(|k| Box::new(k.freeze_if_supported())),
                value: Box::new(value.freeze_if_supported()),
                frozen: true,
            },
            other => other,
        }
    }

    fn prepare(self) -> Result<CqlType, TypeError> {
        let text = self.to_string();
        match self {
            Raw::Simple(t) => Ok(t),
            Raw::Collection { kind, key, value, frozen } => {
                if !frozen && value.supports_freezing() && !value.is_frozen() {
                    return Err(TypeError::InvalidType(format!(
                        "Non-frozen collections are not allowed inside collections: {text}"
                    )));
                }
                if value.is_counter() {
                    return Err(TypeError::InvalidType(format!(
                        "Counters are not allowed inside collections: {text}"
                    )));
                }
                if value.is_duration() && kind == Kind::Set {
                    return Err(TypeError::InvalidType(format!(
                        "Durations are not allowed inside sets: {text}"
                    )));
                }
                if let Some(key) = &key {
                    if key.is_counter() {
                        return Err(TypeError::InvalidType(format!(
                            "Counters are not allowed inside collections: {text}"
                        )));
                    }
                    if key.is_duration() {
                        return Err(TypeError::InvalidType(format!(
                            "Durations are not allowed as map keys: {text}"
                        )));
                    }
                    if !frozen && key.supports_freezing() && !key.is_frozen() {
                        return Err(TypeError::InvalidType(format!(
                            "Non-frozen collections are not allowed inside collections: {text}"
                        )));
                    }
                }
                let element = Box::new(value.prepare()?);
                match (kind, key) {
                    (Kind::List, _) => Ok(CqlType::List { element, frozen }),
                    (Kind::Set, _) => Ok(CqlType::Set { element, frozen }),
                    (Kind::Map, Some(key)) => {
                        Ok(CqlType::Map { key: Box::new(key.prepare()?), value: element, frozen })
                    }
                    (Kind::Map, None) => Err(TypeError::InvalidType(format!("Invalid map type: {text}"))),
                }
            }
            Raw::Tuple(types) => {
                let mut prepared = Vec::with_capacity(types.len());
                for t in types {
                    if t.is_counter() {
                        return Err(TypeError::InvalidType(
                            "Counters are not allowed inside tuples".to_string(),
                        ));
                    }
                    prepared.push(t.prepare()?);
                }
                Ok(CqlType::Tuple(prepared))
            }
        }
    }
}

/// The type as written (after freezing), for error messages (Cassandra's `Raw.toString()`).
impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Simple(t) => write!(f, "{t}"),
            Raw::Collection { kind, key, value, frozen } => {
                if *frozen {
                    f.write_str("frozen<")?;
                }
                match (kind, key) {
                    (Kind::List, _) => write!(f, "list<{value}>")?,
                    (Kind::Set, _) => write!(f, "set<{value}>")?,
                    (Kind::Map, Some(key)) => write!(f, "map<{key}, {value}>")?,
                    (Kind::Map, None) => write!(f, "map<{value}>")?,
                }
                if *frozen {
                    f.write_str(">")?;
                }
                Ok(())
            }
            Raw::Tuple(types) => {
                f.write_str("tuple<")?;
                for (i, t) in types.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    fn error(&self, what: &str) -> TypeError {
        let near = self.rest();
        if near.is_empty() {
            TypeError::InvalidType(format!("Invalid type '{}': {what} at end of input", self.src))
        } else {
            let near: String = near.chars().take(20).collect();
            TypeError::InvalidType(format!("Invalid type '{}': {what} at '{near}'", self.src))
        }
    }

    /// Consumes `c` (after whitespace) or fails.
    fn expect(&mut self, c: char) -> Result<(), TypeError> {
        self.skip_ws();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.rest().chars().next()
    }

    fn identifier(&mut self) -> Result<&str, TypeError> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            return Err(self.error("expected a type name"));
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.src.get(start..start + len).unwrap_or(""))
    }

    /// A single-quoted string with `''` as an escaped quote.
    fn quoted(&mut self) -> Result<String, TypeError> {
        self.expect('\'')?;
        let mut out = String::new();
        loop {
            let mut chars = self.rest().chars();
            match chars.next() {
                None => return Err(self.error("unterminated quoted class name")),
                Some('\'') => {
                    self.pos += 1;
                    if self.rest().starts_with('\'') {
                        self.pos += 1;
                        out.push('\'');
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => {
                    self.pos += c.len_utf8();
                    out.push(c);
                }
            }
        }
    }

    fn parse_type(&mut self, depth: usize) -> Result<Raw, TypeError> {
        if depth > MAX_DEPTH {
            return Err(TypeError::TooDeep { max: MAX_DEPTH });
        }
        // `frozen<...>` adds no nesting level; consecutive ones are handled iteratively so that
        // a long chain of them cannot exhaust the stack either.
        let mut frozen = 0_usize;
        let mut raw = loop {
            if self.peek() == Some('\'') {
                let class = self.quoted()?;
                break Raw::Simple(custom_type(class));
            }
            let name = self.identifier()?.to_ascii_lowercase();
            if name != "frozen" {
                break self.parse_named(&name, depth)?;
            }
            self.expect('<')?;
            frozen += 1;
        };
        for _ in 0..frozen {
            self.expect('>')?;
            raw = raw.freeze()?;
        }
        Ok(raw)
    }

    fn parse_named(&mut self, name: &str, depth: usize) -> Result<Raw, TypeError> {
        match name {
            "list" | "set" => {
                self.expect('<')?;
                let value = self.parse_type(depth + 1)?;
                self.expect('>')?;
                let kind = if name == "list" { Kind::List } else { Kind::Set };
                Ok(Raw::Collection { kind, key: None, value: Box::new(value), frozen: false })
            }
            "map" => {
                self.expect('<')?;
                let key = self.parse_type(depth + 1)?;
                self.expect(',')?;
                let value = self.parse_type(depth + 1)?;
                self.expect('>')?;
                Ok(Raw::Collection {
                    kind: Kind::Map,
                    key: Some(Box::new(key)),
                    value: Box::new(value),
                    frozen: false,
                })
            }
            "tuple" => {
                self.expect('<')?;
                let mut types = vec![self.parse_type(depth + 1)?.freeze_if_supported()];
                while self.peek() == Some(',') {
                    self.expect(',')?;
                    types.push(self.parse_type(depth + 1)?.freeze_if_supported());
                }
                self.expect('>')?;
                Ok(Raw::Tuple(types))
            }
            _ => match NATIVE_NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, t)) => Ok(Raw::Simple(t.clone())),
                None => Err(TypeError::InvalidType(format!("Unknown type {name}"))),
            },
        }
    }
}

/// A quoted class name: a native type if it names one of Cassandra's simple marshal classes
/// (with or without the package), otherwise an opaque custom type.
fn custom_type(class: String) -> CqlType {
    let trimmed = class.trim();
    let short = trimmed.strip_prefix(MARSHAL_PACKAGE).unwrap_or(trimmed);
    match MARSHAL_CLASSES.iter().find(|(n, _)| *n == short) {
        Some((_, t)) => t.clone(),
        None => CqlType::Custom(trimmed.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> CqlType {
        CqlType::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        match CqlType::parse(s) {
            Ok(t) => panic!("{s} parsed as {t}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn canonical_spellings() {
        let cases = [
            ("int", "int"),
            ("INT", "int"),
            ("varchar", "text"),
            ("VarChar", "text"),
            ("text", "text"),
            ("list<int>", "list<int>"),
            (" list < int > ", "list<int>"),
            ("frozen<list<int>>", "frozen<list<int>>"),
            ("FROZEN <LIST<INT>>", "frozen<list<int>>"),
            ("map<text,int>", "map<text, int>"),
            ("map<varchar , bigint>", "map<text, bigint>"),
            ("set<frozen<list<int>>>", "set<frozen<list<int>>>"),
            ("frozen<list<list<int>>>", "frozen<list<frozen<list<int>>>>"),
            ("frozen<map<text, list<int>>>", "frozen<map<text, frozen<list<int>>>>"),
            ("tuple<int,text>", "frozen<tuple<int, text>>"),
            ("frozen<tuple<int, text>>", "frozen<tuple<int, text>>"),
            ("tuple<int, list<int>>", "frozen<tuple<int, frozen<list<int>>>>"),
            ("list<frozen<tuple<int, text>>>", "list<frozen<tuple<int, text>>>"),
            ("list<tuple<int, text>>", "list<frozen<tuple<int, text>>>"),
            (
                "map<text, frozen<list<frozen<tuple<int, text>>>>>",
                "map<text, frozen<list<frozen<tuple<int, text>>>>>",
            ),
            ("'org.apache.cassandra.db.marshal.Int32Type'", "int"),
            ("'UTF8Type'", "text"),
            ("'com.example.MyType'", "'com.example.MyType'"),
            ("list<duration>", "list<duration>"),
            ("map<int, duration>", "map<int, duration>"),
            ("map<text, counter>", "map<text, counter>"),
        ];
        for (input, expected) in cases {
            if input.contains("counter") {
                // Counters are rejected inside collections; checked below.
                continue;
            }
            let t = parse(input);
            assert_eq!(t.to_string(), expected, "{input}");
            // Canonical text parses back to the same type.
            assert_eq!(parse(&t.to_string()), t, "{input}");
        }
    }

    #[test]
    fn every_native_name_round_trips() {
        for (name, t) in NATIVE_NAMES {
            assert_eq!(&parse(name), t);
            assert_eq!(parse(&t.to_string()), *t);
            assert_eq!(parse(&name.to_uppercase()), *t);
        }
    }

    #[test]
    fn invalid_types_are_rejected_with_cassandras_messages() {
        assert_eq!(
            err("list<list<int>>"),
            "Non-frozen collections are not allowed inside collections: list<list<int>>"
        );
        assert_eq!(
            err("map<text, set<int>>"),
            "Non-frozen collections are not allowed inside collections: map<text, set<int>>"
        );
        assert_eq!(
            err("map<list<int>, int>"),
            "Non-frozen collections are not allowed inside collections: map<list<int>, int>"
        );
        assert_eq!(err("list<counter>"), "Counters are not allowed inside collections: list<counter>");
        assert_eq!(
            err("map<counter, int>"),
            "Counters are not allowed inside collections: map<counter, int>"
        );
        assert_eq!(err("set<duration>"), "Durations are not allowed inside sets: set<duration>");
        assert_eq!(err("map<duration, int>"), "Durations are not allowed as map keys: map<duration, int>");
        assert_eq!(err("tuple<int, counter>"), "Counters are not allowed inside tuples");
        assert_eq!(
            err("frozen<int>"),
            "frozen<> is only allowed on collections, tuples, and user-defined types (got int)"
        );
        assert_eq!(err("foo"), "Unknown type foo");
        assert!(err("list<int").contains("expected '>'"));
        assert!(err("list<int>>").contains("Unexpected '>'"));
        assert!(err("map<int>").contains("expected ','"));
        assert!(err("tuple<>").contains("expected a type name"));
        assert!(err("").contains("expected a type name"));
        assert!(err("'unterminated").contains("unterminated"));
        assert!(err("list<>").contains("expected a type name"));
        assert!(err("int t").contains("Unexpected 't'"));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut deep = String::new();
        for _ in 0..10_000 {
            deep.push_str("frozen<list<");
        }
        deep.push_str("int");
        assert_eq!(CqlType::parse(&deep), Err(TypeError::TooDeep { max: MAX_DEPTH }));
        let mut ok = String::from("int");
        for _ in 0..(MAX_DEPTH - 1) {
            ok = format!("frozen<list<{ok}>>");
        }
        let t = parse(&ok);
        assert_eq!(t.depth(), MAX_DEPTH);
        assert_eq!(t.validate(), Ok(()));
        let too_deep = format!("frozen<list<{ok}>>");
        assert_eq!(CqlType::parse(&too_deep), Err(TypeError::TooDeep { max: MAX_DEPTH }));
    }

    #[test]
    fn validity_helpers() {
        let list = parse("list<int>");
        assert!(list.is_collection() && list.is_multi_cell() && !list.is_frozen());
        assert!(!list.can_be_partition_key() && !list.can_be_clustering_key());
        let frozen = parse("frozen<list<int>>");
        assert!(frozen.is_collection() && !frozen.is_multi_cell() && frozen.is_frozen());
        assert!(frozen.can_be_partition_key() && frozen.can_be_clustering_key());
        let tuple = parse("tuple<int, text>");
        assert!(!tuple.is_collection() && !tuple.is_multi_cell() && tuple.is_frozen());
        assert!(tuple.can_be_clustering_key());
        assert!(!CqlType::Counter.can_be_partition_key());
        assert!(!CqlType::Duration.can_be_clustering_key());
        assert!(!parse("tuple<int, duration>").can_be_clustering_key());
        assert!(!parse("frozen<list<duration>>").can_be_partition_key());
        assert!(CqlType::Int.can_be_partition_key());
        assert_eq!(list.freeze(), frozen);
        assert!(
            CqlType::Int.allows_empty() && !CqlType::Text.allows_empty() && !CqlType::Smallint.allows_empty()
        );
    }

    #[test]
    fn validate_rejects_hand_built_invalid_types() {
        let non_frozen = CqlType::List { element: Box::new(CqlType::Int), frozen: false };
        let nested = CqlType::List { element: Box::new(non_frozen.clone()), frozen: true };
        assert!(nested.validate().is_err());
        assert!(CqlType::Tuple(vec![non_frozen.clone()]).validate().is_err());
        assert!(CqlType::Tuple(vec![]).validate().is_err());
        assert!(CqlType::Set { element: Box::new(CqlType::Duration), frozen: false }.validate().is_err());
        assert!(non_frozen.validate().is_ok());
        assert!(non_frozen.freeze().validate().is_ok());
    }
}
