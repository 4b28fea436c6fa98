//! Abstract syntax tree of the CQL statements Sibyl understands.
//!
//! The tree is produced by [`crate::parser`] and is purely syntactic: names are resolved the way
//! Cassandra resolves them lexically (unquoted identifiers folded to lower case, quoted ones kept
//! verbatim) but nothing is checked against a schema. Constants keep their source text (see
//! [`Literal`]) so the executor converts them against the type of the receiving column, exactly
//! like Cassandra's `Constants.Literal`.
//!
//! Bind markers (`?` and `:name`) carry their 0-based index in order of appearance in the whole
//! statement; [`Statement::bind_markers`] lists their names by index.

use std::fmt;

/// A possibly keyspace-qualified name (`ks.t`, `t`, `ks.fn`, `ks.udt`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    pub keyspace: Option<String>,
    pub name: String,
}

impl QualifiedName {
    /// An unqualified name.
    pub fn new(name: impl Into<String>) -> Self {
        Self { keyspace: None, name: name.into() }
    }

    /// A keyspace-qualified name.
    pub fn qualified(keyspace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { keyspace: Some(keyspace.into()), name: name.into() }
    }
}

impl fmt::Display for QualifiedName {
    /// CQL text of the name, quoting the parts that need it (`ks."MyTable"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ks) = &self.keyspace {
            write!(f, "{}.", crate::parser::quote_identifier(ks))?;
        }
        write!(f, "{}", crate::parser::quote_identifier(&self.name))
    }
}

/// One parsed CQL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(SelectStatement),
    Insert(InsertStatement),
    Update(UpdateStatement),
    Delete(DeleteStatement),
    Batch(BatchStatement),
    /// `USE ks`.
    Use(String),
    /// `TRUNCATE [TABLE] t`.
    Truncate(QualifiedName),
    CreateKeyspace(CreateKeyspaceStatement),
    AlterKeyspace(AlterKeyspaceStatement),
    DropKeyspace(DropKeyspaceStatement),
    CreateTable(CreateTableStatement),
    AlterTable(AlterTableStatement),
    DropTable(DropTableStatement),
    Describe(DescribeStatement),
    /// A statement Cassandra knows but Sibyl does not implement. Only its leading keywords were
    /// parsed; `kind` names it in upper case (`"CREATE INDEX"`, `"GRANT"`, `"LIST ROLES"`...) so
    /// the executor can answer "`<kind>` is not supported".
    Unsupported {
        kind: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Constants, terms and types
// ---------------------------------------------------------------------------------------------

/// A constant. Numeric and other typed constants keep their source text; the executor converts
/// them against the receiving type (an `Integer` may land in a `bigint`, `varint`, `decimal`,
/// `double`, `timestamp` column...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// `'text'` or `$$text$$`, unescaped (`''` became `'`).
    String(String),
    /// Decimal integer text, with a leading `-` when negative: `"42"`, `"-7"`.
    Integer(String),
    /// Floating point text: `"1.5"`, `"1e10"`, `"-2.5E-3"`, `"1."`, `"NaN"`, `"Infinity"`,
    /// `"-Infinity"` (NaN/Infinity spelled as written, possibly with `-`).
    Float(String),
    /// `true` / `false`.
    Boolean(bool),
    /// Duration text as written: `"1h30m"`, `"-2d"`, `"P1Y2M"`, `"PT5S"`, `"P2W"`,
    /// `"P0001-02-03T04:05:06"`.
    Duration(String),
    /// Unquoted UUID text, e.g. `"123e4567-e89b-12d3-a456-426614174000"`.
    Uuid(String),
    /// Blob constant text including the `0x` prefix, e.g. `"0xCAFE"` (may be just `"0x"`).
    Hex(String),
    /// `null`.
    Null,
}

/// A bind marker: `?` (`name == None`) or `:name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMarker {
    /// 0-based position among all the markers of the statement, in order of appearance. Named
    /// markers get an index per occurrence, like in Cassandra.
    pub index: usize,
    pub name: Option<String>,
}

/// A value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Literal(Literal),
    BindMarker(BindMarker),
    /// `[a, b]`.
    List(Vec<Term>),
    /// `{a, b}` (at least one element).
    Set(Vec<Term>),
    /// `{k: v, ...}` (at least one entry) where the first key is not a bare identifier.
    Map(Vec<(Term, Term)>),
    /// `{}`: an empty set, map or user type value. Cassandra parses it as an empty set and lets
    /// it be assigned to map columns too; the executor decides from the receiver type.
    EmptyCollection,
    /// `{field: value, ...}`: a user-defined type value (first key is an identifier).
    Udt(Vec<(String, Term)>),
    /// `(a, b, ...)`, including the 1-tuple `(a)`.
    Tuple(Vec<Term>),
    /// `fn(args)` or `ks.fn(args)`, including `token(...)`, `now()`, `uuid()`...
    FunctionCall {
        name: QualifiedName,
        args: Vec<Term>,
    },
    /// A type hint `(type) term`, e.g. `(int) ?` or `(bigint) 3`.
    Cast {
        ty: TypeExpr,
        term: Box<Term>,
    },
}

/// A CQL type, as in column definitions or `system_schema.columns.type`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TypeExpr {
    Native(NativeType),
    List(Box<TypeExpr>),
    Set(Box<TypeExpr>),
    Map(Box<TypeExpr>, Box<TypeExpr>),
    Tuple(Vec<TypeExpr>),
    /// `vector<element, dimension>` (Cassandra 5).
    Vector {
        element: Box<TypeExpr>,
        dimension: u32,
    },
    Frozen(Box<TypeExpr>),
    /// A custom type given as a quoted Java class name, e.g.
    /// `'org.apache.cassandra.db.marshal.DynamicCompositeType'`.
    Custom(String),
    /// A user-defined type name.
    UserDefined(QualifiedName),
}

/// Native CQL types. `varchar` is kept distinct from `text` as written; both are UTF8Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NativeType {
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
    Varchar,
    Varint,
}

impl NativeType {
    /// Every native type, in alphabetical order.
    pub const ALL: [NativeType; 21] = [
        NativeType::Ascii,
        NativeType::Bigint,
        NativeType::Blob,
        NativeType::Boolean,
        NativeType::Counter,
        NativeType::Date,
        NativeType::Decimal,
        NativeType::Double,
        NativeType::Duration,
        NativeType::Float,
        NativeType::Inet,
        NativeType::Int,
        NativeType::Smallint,
        NativeType::Text,
        NativeType::Time,
        NativeType::Timestamp,
        NativeType::Timeuuid,
        NativeType::Tinyint,
        NativeType::Uuid,
        NativeType::Varchar,
        NativeType::Varint,
    ];

    /// The CQL keyword of the type, lower case (`varchar` stays `varchar`).
    pub fn as_str(self) -> &'static str {
        match self {
            NativeType::Ascii => "ascii",
            NativeType::Bigint => "bigint",
            NativeType::Blob => "blob",
            NativeType::Boolean => "boolean",
            NativeType::Counter => "counter",
            NativeType::Date => "date",
            NativeType::Decimal => "decimal",
            NativeType::Double => "double",
            NativeType::Duration => "duration",
            NativeType::Float => "float",
            NativeType::Inet => "inet",
            NativeType::Int => "int",
            NativeType::Smallint => "smallint",
            NativeType::Text => "text",
            NativeType::Time => "time",
            NativeType::Timestamp => "timestamp",
            NativeType::Timeuuid => "timeuuid",
            NativeType::Tinyint => "tinyint",
            NativeType::Uuid => "uuid",
            NativeType::Varchar => "varchar",
            NativeType::Varint => "varint",
        }
    }

    /// The native type named `word` (ASCII case-insensitive).
    pub fn from_name(word: &str) -> Option<NativeType> {
        NativeType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for NativeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TypeExpr {
    /// CQL text of the type in the form `system_schema.columns.type` uses, e.g.
    /// `frozen<map<text, list<int>>>`; [`crate::parser::parse_type`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeExpr::Native(t) => write!(f, "{t}"),
            TypeExpr::List(t) => write!(f, "list<{t}>"),
            TypeExpr::Set(t) => write!(f, "set<{t}>"),
            TypeExpr::Map(k, v) => write!(f, "map<{k}, {v}>"),
            TypeExpr::Tuple(ts) => {
                f.write_str("tuple<")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(">")
            }
            TypeExpr::Vector { element, dimension } => write!(f, "vector<{element}, {dimension}>"),
            TypeExpr::Frozen(t) => write!(f, "frozen<{t}>"),
            TypeExpr::Custom(class) => write!(f, "'{}'", class.replace('\'', "''")),
            // A user type named like a native type must stay quoted to read back as a UDT.
            TypeExpr::UserDefined(name) if NativeType::from_name(&name.name).is_some() => {
                if let Some(ks) = &name.keyspace {
                    write!(f, "{}.", crate::parser::quote_identifier(ks))?;
                }
                write!(f, "\"{}\"", name.name)
            }
            TypeExpr::UserDefined(name) => write!(f, "{name}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SELECT
// ---------------------------------------------------------------------------------------------

/// `SELECT [JSON] [DISTINCT] selection FROM t [WHERE ...] [GROUP BY ...] [ORDER BY ...]
/// [PER PARTITION LIMIT n] [LIMIT n] [ALLOW FILTERING]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectStatement {
    pub json: bool,
    pub distinct: bool,
    pub selection: Selection,
    pub table: QualifiedName,
    /// Relations joined by `AND` (parenthesised relations are flattened).
    pub where_clause: Vec<Relation>,
    pub group_by: Vec<String>,
    pub order_by: Vec<Ordering>,
    /// An `Integer` literal or a bind marker.
    pub per_partition_limit: Option<Term>,
    /// An `Integer` literal or a bind marker.
    pub limit: Option<Term>,
    pub allow_filtering: bool,
}

/// What a SELECT returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// `*`.
    Wildcard,
    Selectors(Vec<Selector>),
}

/// One selector with its optional `AS alias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub expr: SelectorExpr,
    pub alias: Option<String>,
}

/// A selector expression.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectorExpr {
    Column(String),
    /// `COUNT(*)`. (`COUNT(1)` is a [`SelectorExpr::FunctionCall`] named `count`.)
    CountAll,
    /// `WRITETIME(col)`.
    WriteTime(String),
    /// `MAXWRITETIME(col)` (Cassandra 5).
    MaxWriteTime(String),
    /// `TTL(col)`.
    Ttl(String),
    /// `CAST(selector AS native_type)`.
    Cast {
        selector: Box<SelectorExpr>,
        ty: NativeType,
    },
    /// `fn(args)` / `ks.fn(args)`, including `token(a, b)`.
    FunctionCall {
        name: QualifiedName,
        args: Vec<SelectorExpr>,
    },
    /// `selector.field` (user type field).
    Field {
        selector: Box<SelectorExpr>,
        field: String,
    },
    /// `selector[key]` (collection element).
    Element {
        selector: Box<SelectorExpr>,
        key: Term,
    },
    /// `selector[from..to]` (collection slice), either bound may be missing but not both.
    Slice {
        selector: Box<SelectorExpr>,
        from: Option<Term>,
        to: Option<Term>,
    },
    /// A constant, bind marker, collection literal, tuple or type-hinted term.
    Term(Term),
}

/// `ORDER BY column [ASC|DESC]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordering {
    pub column: String,
    /// `Asc` when not given.
    pub order: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

// ---------------------------------------------------------------------------------------------
// WHERE relations and IF conditions
// ---------------------------------------------------------------------------------------------

/// Comparison operators of relations and conditions (`IN` has its own variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
    Neq,
    Contains,
    ContainsKey,
    Like,
}

impl Operator {
    /// CQL spelling, e.g. `"<="`, `"CONTAINS KEY"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Lt => "<",
            Operator::Lte => "<=",
            Operator::Gt => ">",
            Operator::Gte => ">=",
            Operator::Neq => "!=",
            Operator::Contains => "CONTAINS",
            Operator::ContainsKey => "CONTAINS KEY",
            Operator::Like => "LIKE",
        }
    }
}

/// One WHERE-clause relation.
#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    /// `lhs op rhs`. For a tuple left-hand side `rhs` is a tuple literal or a bind marker; for
    /// `CONTAINS`, `CONTAINS KEY` and `LIKE` the left-hand side is always a plain column.
    Compare { lhs: RelationLhs, op: Operator, rhs: Term },
    /// `col IN (...)`, `col IN ?`, `(a, b) IN ((1, 2), (3, 4))`, `(a, b) IN (?, ?)`,
    /// `(a, b) IN ?`.
    In { lhs: RelationLhs, values: InValues },
    /// `col IS NOT NULL`.
    IsNotNull { column: String },
}

/// Left-hand side of a relation.
#[derive(Debug, Clone, PartialEq)]
pub enum RelationLhs {
    Column(String),
    /// `col[key]`.
    MapElement {
        column: String,
        key: Term,
    },
    /// `(c1, c2, ...)`.
    Tuple(Vec<String>),
    /// `token(c1, c2, ...)`.
    Token(Vec<String>),
}

/// Right-hand side of `IN`.
#[derive(Debug, Clone, PartialEq)]
pub enum InValues {
    /// `(t1, t2, ...)`, possibly empty.
    Terms(Vec<Term>),
    /// `IN ?` / `IN :name`: one marker bound to the whole list.
    Marker(BindMarker),
}

/// `IF EXISTS` or `IF cond AND cond ...` of UPDATE and DELETE.
#[derive(Debug, Clone, PartialEq)]
pub enum IfClause {
    Exists,
    Conditions(Vec<Condition>),
}

/// One lightweight-transaction condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `lhs op value`; `CONTAINS [KEY]` only with a plain column.
    Compare { lhs: ConditionLhs, op: Operator, value: Term },
    /// `lhs IN (...)` / `lhs IN ?`.
    In { lhs: ConditionLhs, values: InValues },
}

/// Left-hand side of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionLhs {
    Column(String),
    /// `col[key]`.
    Element {
        column: String,
        key: Term,
    },
    /// `col.field`.
    Field {
        column: String,
        field: String,
    },
}

// ---------------------------------------------------------------------------------------------
// INSERT / UPDATE / DELETE / BATCH
// ---------------------------------------------------------------------------------------------

/// `USING TTL x AND TIMESTAMP y` (each at most once). Values are `Integer` literals or markers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsingClause {
    pub ttl: Option<Term>,
    pub timestamp: Option<Term>,
}

impl UsingClause {
    pub fn is_empty(&self) -> bool {
        self.ttl.is_none() && self.timestamp.is_none()
    }
}

/// `INSERT INTO t ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertStatement {
    pub table: QualifiedName,
    pub values: InsertValues,
    pub if_not_exists: bool,
    pub using: UsingClause,
}

/// The data part of an INSERT.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertValues {
    /// `(c1, c2) VALUES (v1, v2)`. The two lists are not checked to have the same length.
    Values { columns: Vec<String>, values: Vec<Term> },
    /// `JSON 'doc' [DEFAULT NULL|UNSET]`; `value` is a string literal or a bind marker.
    Json { value: Term, default: JsonDefault },
}

/// Fate of columns missing from an `INSERT JSON` document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonDefault {
    /// `DEFAULT NULL`, also the default.
    Null,
    /// `DEFAULT UNSET`.
    Unset,
}

/// `UPDATE t [USING ...] SET ... WHERE ... [IF ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateStatement {
    pub table: QualifiedName,
    pub using: UsingClause,
    pub assignments: Vec<Assignment>,
    pub where_clause: Vec<Relation>,
    pub condition: Option<IfClause>,
}

/// One `SET` operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// `c = value`.
    Set { column: String, value: Term },
    /// `c[key] = value`.
    SetElement { column: String, key: Term, value: Term },
    /// `c.field = value`.
    SetField { column: String, field: String, value: Term },
    /// `c = c + value` or `c += value` (counter increment, collection append/union).
    Add { column: String, value: Term },
    /// `c = c - value` or `c -= value` (counter decrement, collection removal).
    Subtract { column: String, value: Term },
    /// `c = value + c` (list prepend).
    Prepend { column: String, value: Term },
}

/// `DELETE [cols] FROM t [USING TIMESTAMP x] WHERE ... [IF ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteStatement {
    /// Empty for a whole-row/partition delete.
    pub columns: Vec<Deletion>,
    pub table: QualifiedName,
    /// Only `timestamp` can be set.
    pub using: UsingClause,
    pub where_clause: Vec<Relation>,
    pub condition: Option<IfClause>,
}

/// One item of a DELETE selection.
#[derive(Debug, Clone, PartialEq)]
pub enum Deletion {
    Column(String),
    /// `c[key]`.
    Element {
        column: String,
        key: Term,
    },
    /// `c.field`.
    Field {
        column: String,
        field: String,
    },
}

/// `BEGIN [UNLOGGED|COUNTER] BATCH [USING ...] ... APPLY BATCH`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStatement {
    pub kind: BatchKind,
    /// Cassandra only accepts `TIMESTAMP` here (checked by the executor, not the parser).
    pub using: UsingClause,
    pub statements: Vec<BatchChild>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Logged,
    Unlogged,
    Counter,
}

/// A statement inside a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchChild {
    Insert(InsertStatement),
    Update(UpdateStatement),
    Delete(DeleteStatement),
}

// ---------------------------------------------------------------------------------------------
// DDL
// ---------------------------------------------------------------------------------------------

/// `name = value` in a `WITH` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Folded to lower case unless quoted.
    pub name: String,
    pub value: OptionValue,
}

/// Value of a `WITH` property.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// `'text'`, `4`, `0.1`, `true`, `-1`...
    Constant(Literal),
    /// `{'class': 'SimpleStrategy', 'replication_factor': 1}` in source order (keys unique).
    Map(Vec<(Literal, Literal)>),
    /// A bare word, e.g. `WITH caching = keys` (lower-cased unless quoted).
    Identifier(String),
}

/// `CREATE KEYSPACE [IF NOT EXISTS] ks WITH ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateKeyspaceStatement {
    pub if_not_exists: bool,
    pub name: String,
    /// `replication`, `durable_writes`... in source order; names are unique.
    pub properties: Vec<Property>,
}

/// `ALTER KEYSPACE [IF EXISTS] ks WITH ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlterKeyspaceStatement {
    pub if_exists: bool,
    pub name: String,
    pub properties: Vec<Property>,
}

/// `DROP KEYSPACE [IF EXISTS] ks`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropKeyspaceStatement {
    pub if_exists: bool,
    pub name: String,
}

/// `CREATE TABLE [IF NOT EXISTS] t (...) [WITH ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTableStatement {
    pub if_not_exists: bool,
    pub name: QualifiedName,
    /// In declaration order.
    pub columns: Vec<ColumnDefinition>,
    /// Exactly one primary key definition is required (inline `col type PRIMARY KEY` or a
    /// `PRIMARY KEY (...)` clause); the parser rejects none or several.
    pub primary_key: PrimaryKey,
    pub options: TableOptions,
}

/// `name type [STATIC]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDefinition {
    pub name: String,
    pub ty: TypeExpr,
    pub is_static: bool,
}

/// Primary key columns. An inline `col type PRIMARY KEY` gives `partition_key == [col]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    pub partition_key: Vec<String>,
    pub clustering_columns: Vec<String>,
}

/// The `WITH` part of CREATE TABLE.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableOptions {
    /// Generic `name = value` properties in source order; names are unique.
    pub properties: Vec<Property>,
    /// `CLUSTERING ORDER BY (c1 DESC, c2 ASC)`.
    pub clustering_order: Vec<Ordering>,
    /// `COMPACT STORAGE`.
    pub compact_storage: bool,
}

/// `ALTER TABLE [IF EXISTS] t <action>`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlterTableStatement {
    pub if_exists: bool,
    pub table: QualifiedName,
    pub action: AlterTableAction,
}

/// What an ALTER TABLE does.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterTableAction {
    /// `ALTER col TYPE type`.
    AlterColumnType { column: String, ty: TypeExpr },
    /// `ADD [IF NOT EXISTS] col type [STATIC]` or `ADD (c1 t1, c2 t2 STATIC)`.
    Add { if_not_exists: bool, columns: Vec<ColumnDefinition> },
    /// `DROP [IF EXISTS] col` or `DROP (c1, c2)`, optional `USING TIMESTAMP n` (an Integer).
    Drop { if_exists: bool, columns: Vec<String>, timestamp: Option<Literal> },
    /// `DROP COMPACT STORAGE`.
    DropCompactStorage,
    /// `RENAME [IF EXISTS] a TO b [AND c TO d ...]`.
    Rename { if_exists: bool, renames: Vec<(String, String)> },
    /// `WITH prop = value AND ...`.
    WithOptions(Vec<Property>),
}

/// `DROP TABLE [IF EXISTS] t`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropTableStatement {
    pub if_exists: bool,
    pub name: QualifiedName,
}

/// `DESCRIBE ...` / `DESC ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeStatement {
    pub target: DescribeTarget,
    /// `WITH INTERNALS`.
    pub with_internals: bool,
}

/// What a DESCRIBE statement describes.
#[derive(Debug, Clone, PartialEq)]
pub enum DescribeTarget {
    Cluster,
    /// `SCHEMA` / `FULL SCHEMA`.
    Schema {
        full: bool,
    },
    Keyspaces,
    /// `[ONLY] KEYSPACE [ks]` (no name: the current keyspace).
    Keyspace {
        only: bool,
        name: Option<String>,
    },
    Tables,
    Table(QualifiedName),
    Index(QualifiedName),
    MaterializedView(QualifiedName),
    Types,
    Type(QualifiedName),
    Functions,
    Function(QualifiedName),
    Aggregates,
    Aggregate(QualifiedName),
    /// `DESCRIBE name` / `DESCRIBE ks.name`: a keyspace, table, view, index or type, looked up
    /// by the executor.
    Generic(QualifiedName),
}

// ---------------------------------------------------------------------------------------------
// Bind marker enumeration
// ---------------------------------------------------------------------------------------------

impl Statement {
    /// Names of the statement's bind markers by index (`None` for `?`); its length is the
    /// number of markers. Agrees with [`crate::parser::Parsed::bind_markers`].
    pub fn bind_markers(&self) -> Vec<Option<String>> {
        let mut found = Markers::default();
        match self {
            Statement::Select(s) => found.select(s),
            Statement::Insert(s) => found.insert(s),
            Statement::Update(s) => found.update(s),
            Statement::Delete(s) => found.delete(s),
            Statement::Batch(b) => {
                found.using(&b.using);
                for child in &b.statements {
                    match child {
                        BatchChild::Insert(s) => found.insert(s),
                        BatchChild::Update(s) => found.update(s),
                        BatchChild::Delete(s) => found.delete(s),
                    }
                }
            }
            _ => {}
        }
        let mut markers = found.0;
        markers.sort_by_key(|m| m.index);
        markers.into_iter().map(|m| m.name.clone()).collect()
    }

    /// Number of bind markers.
    pub fn bind_marker_count(&self) -> usize {
        self.bind_markers().len()
    }
}

/// Collects every bind marker of a statement (any order).
#[derive(Default)]
struct Markers<'a>(Vec<&'a BindMarker>);

impl<'a> Markers<'a> {
    fn term(&mut self, term: &'a Term) {
        match term {
            Term::Literal(_) | Term::EmptyCollection => {}
            Term::BindMarker(m) => self.0.push(m),
            Term::List(ts) | Term::Set(ts) | Term::Tuple(ts) => ts.iter().for_each(|t| self.term(t)),
            Term::Map(entries) => entries.iter().for_each(|(k, v)| {
                self.term(k);
                self.term(v);
            }),
            Term::Udt(fields) => fields.iter().for_each(|(_, v)| self.term(v)),
            Term::FunctionCall { args, .. } => args.iter().for_each(|t| self.term(t)),
            Term::Cast { term, .. } => self.term(term),
        }
    }

    fn opt_term(&mut self, term: &'a Option<Term>) {
        if let Some(t) = term {
            self.term(t);
        }
    }

    fn in_values(&mut self, values: &'a InValues) {
        match values {
            InValues::Terms(ts) => ts.iter().for_each(|t| self.term(t)),
            InValues::Marker(m) => self.0.push(m),
        }
    }

    fn using(&mut self, using: &'a UsingClause) {
        self.opt_term(&using.ttl);
        self.opt_term(&using.timestamp);
    }

    fn selector(&mut self, sel: &'a SelectorExpr) {
        match sel {
            SelectorExpr::Column(_)
            | SelectorExpr::CountAll
            | SelectorExpr::WriteTime(_)
            | SelectorExpr::MaxWriteTime(_)
            | SelectorExpr::Ttl(_) => {}
            SelectorExpr::Cast { selector, .. } | SelectorExpr::Field { selector, .. } => {
                self.selector(selector)
            }
            SelectorExpr::FunctionCall { args, .. } => args.iter().for_each(|a| self.selector(a)),
            SelectorExpr::Element { selector, key } => {
                self.selector(selector);
                self.term(key);
            }
            SelectorExpr::Slice { selector, from, to } => {
                self.selector(selector);
                self.opt_term(from);
                self.opt_term(to);
            }
            SelectorExpr::Term(t) => self.term(t),
        }
    }

    fn relations(&mut self, rels: &'a [Relation]) {
        for r in rels {
            match r {
                Relation::Compare { lhs, rhs, .. } => {
                    self.relation_lhs(lhs);
                    self.term(rhs);
                }
                Relation::In { lhs, values } => {
                    self.relation_lhs(lhs);
                    self.in_values(values);
                }
                Relation::IsNotNull { .. } => {}
            }
        }
    }

    fn relation_lhs(&mut self, lhs: &'a RelationLhs) {
        if let RelationLhs::MapElement { key, .. } = lhs {
            self.term(key);
        }
    }

    fn conditions(&mut self, cond: &'a Option<IfClause>) {
        let Some(IfClause::Conditions(cs)) = cond else { return };
        for c in cs {
            let lhs = match c {
                Condition::Compare { lhs, .. } | Condition::In { lhs, .. } => lhs,
            };
            if let ConditionLhs::Element { key, .. } = lhs {
                self.term(key);
            }
            match c {
                Condition::Compare { value, .. } => self.term(value),
                Condition::In { values, .. } => self.in_values(values),
            }
        }
    }

    fn select(&mut self, s: &'a SelectStatement) {
        if let Selection::Selectors(sels) = &s.selection {
            sels.iter().for_each(|sel| self.selector(&sel.expr));
        }
        self.relations(&s.where_clause);
        self.opt_term(&s.per_partition_limit);
        self.opt_term(&s.limit);
    }

    fn insert(&mut self, s: &'a InsertStatement) {
        match &s.values {
            InsertValues::Values { values, .. } => values.iter().for_each(|t| self.term(t)),
            InsertValues::Json { value, .. } => self.term(value),
        }
        self.using(&s.using);
    }

    fn update(&mut self, s: &'a UpdateStatement) {
        self.using(&s.using);
        for a in &s.assignments {
            match a {
                Assignment::Set { value, .. }
                | Assignment::SetField { value, .. }
                | Assignment::Add { value, .. }
                | Assignment::Subtract { value, .. }
                | Assignment::Prepend { value, .. } => self.term(value),
                Assignment::SetElement { key, value, .. } => {
                    self.term(key);
                    self.term(value);
                }
            }
        }
        self.relations(&s.where_clause);
        self.conditions(&s.condition);
    }

    fn delete(&mut self, s: &'a DeleteStatement) {
        for d in &s.columns {
            if let Deletion::Element { key, .. } = d {
                self.term(key);
            }
        }
        self.using(&s.using);
        self.relations(&s.where_clause);
        self.conditions(&s.condition);
    }
}
