//! INSERT, UPDATE, DELETE and BATCH: resolution into plans, then into engine mutations.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sibyl_engine::{
    DeletionTime, Mutation, PartitionUpdate, RangeTombstone, ReadCommand, Row, Slice, TableId,
};

use super::expr::{self, BindSpecs, EvalContext, Evaluated, Expr, Receiver};
use super::restrictions::{self, StatementKind, WhereClause};
use super::select::ReadSource;
use crate::ast::{
    Assignment, Condition as AstCondition, ConditionLhs, DeleteStatement, Deletion, IfClause,
    InsertStatement, InsertValues, Operator, UpdateStatement, UsingClause,
};
use crate::error::{Error, Result};
use crate::rows::{self, ListPath, WriteTime};
use crate::schema::persist::write_value;
use crate::schema::{ColumnKind, ColumnMetadata, TableMetadata};
use crate::types::{self, CqlType, Value};

/// `USING TTL` / `USING TIMESTAMP`.
#[derive(Debug, Clone, Default)]
pub struct Using {
    ttl: Option<Expr>,
    timestamp: Option<Expr>,
}

impl Using {
    fn resolve(u: &UsingClause, binds: &mut BindSpecs) -> Result<Using> {
        Ok(Using {
            ttl: u
                .ttl
                .as_ref()
                .map(|t| expr::resolve(t, &Receiver::new("[ttl]", CqlType::Int), binds))
                .transpose()?,
            timestamp: u
                .timestamp
                .as_ref()
                .map(|t| expr::resolve(t, &Receiver::new("[timestamp]", CqlType::Bigint), binds))
                .transpose()?,
        })
    }

    /// Whether `USING TIMESTAMP` is given.
    #[must_use]
    pub fn has_timestamp(&self) -> bool {
        self.timestamp.is_some()
    }
}

/// One column operation of an UPDATE (INSERT values are `Set`).
#[derive(Debug, Clone)]
enum Op {
    Set(usize, Expr),
    SetElement(usize, Expr, Expr),
    Add(usize, Expr),
    Subtract(usize, Expr),
    Prepend(usize, Expr),
    Delete(usize),
    DeleteElement(usize, Expr),
}

impl Op {
    fn column(&self) -> usize {
        match self {
            Op::Set(c, _)
            | Op::SetElement(c, _, _)
            | Op::Add(c, _)
            | Op::Subtract(c, _)
            | Op::Prepend(c, _)
            | Op::Delete(c)
            | Op::DeleteElement(c, _) => *c,
        }
    }
}

/// A resolved INSERT, UPDATE or DELETE.
#[derive(Debug, Clone)]
pub struct ModifyPlan {
    /// Table written.
    pub table: Arc<TableMetadata>,
    keys: Keys,
    ops: Vec<Op>,
    /// USING clause.
    pub using: Using,
    /// INSERT writes the row marker.
    insert: bool,
    /// DELETE without columns deletes rows, ranges or the partition.
    delete_rows: bool,
    /// `IF NOT EXISTS`, `IF EXISTS` or `IF` conditions (a lightweight transaction).
    pub condition: Option<Condition>,
}

/// The condition of a lightweight transaction.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `INSERT ... IF NOT EXISTS`.
    NotExists,
    /// `UPDATE/DELETE ... IF EXISTS`.
    Exists,
    /// `IF a = 1 AND m['k'] > 2 AND b IN (..)`.
    Columns(Vec<ColumnCondition>),
}

/// One `IF` condition on a column (or a collection element).
#[derive(Debug, Clone)]
pub struct ColumnCondition {
    /// Column index.
    pub column: usize,
    /// For `m[k]` / `l[i]`: the element key.
    pub element: Option<Expr>,
    /// Operator (`IN` is [`ConditionValue::In`]).
    pub op: Operator,
    /// Right side.
    pub value: ConditionValue,
}

/// Right side of a condition.
#[derive(Debug, Clone)]
pub enum ConditionValue {
    /// One value (possibly null).
    One(Expr),
    /// `IN (...)`.
    In(restrictions::EqOrIn),
}

#[derive(Debug, Clone)]
enum Keys {
    /// INSERT: one value per primary key column (`None` for omitted clustering columns of a
    /// statics-only insert).
    Insert(Vec<Option<Expr>>),
    /// UPDATE/DELETE.
    Where(Box<WhereClause>),
}

fn column<'a>(table: &'a TableMetadata, name: &str) -> Result<(usize, &'a ColumnMetadata)> {
    let i = table.column_index(name).ok_or_else(|| {
        Error::invalid(format!("Undefined column name {name} in table {}.{}", table.keyspace, table.name))
    })?;
    Ok((i, &table.columns[i]))
}

fn check_not_key(c: &ColumnMetadata) -> Result<()> {
    if c.kind.is_primary_key() {
        return Err(Error::invalid(format!("PRIMARY KEY part {} found in SET part", c.name)));
    }
    if c.ty == CqlType::Counter {
        return Err(Error::invalid("Counter columns are not supported"));
    }
    Ok(())
}

/// Resolves an INSERT.
pub fn plan_insert(
    table: Arc<TableMetadata>,
    s: &InsertStatement,
    binds: &mut BindSpecs,
) -> Result<ModifyPlan> {
    let InsertValues::Values { columns, values } = &s.values else {
        return Err(Error::invalid("INSERT JSON is not supported"));
    };
    if columns.len() != values.len() {
        return Err(Error::invalid("Unmatched column names/values"));
    }
    let key_len = table.partition_key_len() + table.clustering_len();
    let mut keys: Vec<Option<Expr>> = vec![None; key_len];
    let mut ops = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, term) in columns.iter().zip(values) {
        let (i, c) = column(&table, name)?;
        if !seen.insert(i) {
            return Err(Error::invalid(format!("Multiple definitions found for column {name}")));
        }
        let e = expr::resolve(term, &Receiver::new(name.clone(), c.ty.clone()), binds)?;
        if c.kind.is_primary_key() {
            keys[i] = Some(e);
        } else {
            if c.ty == CqlType::Counter {
                return Err(Error::invalid(
                    "INSERT statements are not allowed on counter tables, use UPDATE instead",
                ));
            }
            ops.push(Op::Set(i, e));
        }
    }
    for (i, c) in table.partition_key().enumerate() {
        if keys[i].is_none() {
            return Err(Error::invalid(format!("Some partition key parts are missing: {}", c.name)));
        }
    }
    let statics_only =
        !ops.is_empty() && ops.iter().all(|o| table.columns[o.column()].kind == ColumnKind::Static);
    let pk = table.partition_key_len();
    for (i, c) in table.clustering().enumerate() {
        if keys[pk + i].is_none() && !statics_only {
            return Err(Error::invalid(format!("Some clustering keys are missing: {}", c.name)));
        }
    }
    Ok(ModifyPlan {
        table,
        keys: Keys::Insert(keys),
        ops,
        using: Using::resolve(&s.using, binds)?,
        insert: true,
        delete_rows: false,
        condition: s.if_not_exists.then_some(Condition::NotExists),
    })
}

/// Resolves `IF EXISTS` / `IF conditions`.
fn resolve_condition(
    table: &TableMetadata,
    clause: Option<&IfClause>,
    binds: &mut BindSpecs,
) -> Result<Option<Condition>> {
    let Some(clause) = clause else { return Ok(None) };
    let conditions = match clause {
        IfClause::Exists => return Ok(Some(Condition::Exists)),
        IfClause::Conditions(cs) => cs,
    };
    let mut out = Vec::with_capacity(conditions.len());
    for c in conditions {
        let lhs = match c {
            AstCondition::Compare { lhs, .. } | AstCondition::In { lhs, .. } => lhs,
        };
        let (name, key) = match lhs {
            ConditionLhs::Column(name) => (name, None),
            ConditionLhs::Element { column, key } => (column, Some(key)),
            ConditionLhs::Field { .. } => return Err(Error::invalid("User-defined types are not supported")),
        };
        let (i, col) = column(table, name)?;
        if col.kind.is_primary_key() {
            return Err(Error::invalid(format!("PRIMARY KEY column '{name}' cannot have IF conditions")));
        }
        let (element, value_ty) = match key {
            None => (None, col.ty.clone()),
            Some(k) => {
                let (kty, vty) = match &col.ty {
                    CqlType::Map { key, value, .. } => ((**key).clone(), (**value).clone()),
                    CqlType::List { element, .. } => (CqlType::Int, (**element).clone()),
                    other => {
                        return Err(Error::invalid(format!(
                            "Invalid element access on column {name} of type {other}"
                        )))
                    }
                };
                (Some(expr::resolve(k, &Receiver::new(format!("key({name})"), kty), binds)?), vty)
            }
        };
        let receiver = Receiver::new(name.clone(), value_ty.clone());
        let (op, value) = match c {
            AstCondition::Compare { op, value, .. } => {
                if matches!(op, Operator::Contains | Operator::ContainsKey | Operator::Like) {
                    return Err(Error::invalid(format!(
                        "Unsupported operator {} in IF conditions",
                        op.as_str()
                    )));
                }
                (*op, ConditionValue::One(expr::resolve(value, &receiver, binds)?))
            }
            AstCondition::In { values, .. } => {
                (Operator::Eq, ConditionValue::In(restrictions::resolve_in(values, name, &value_ty, binds)?))
            }
        };
        out.push(ColumnCondition { column: i, element, op, value });
    }
    Ok(Some(Condition::Columns(out)))
}

/// Resolves an UPDATE.
pub fn plan_update(
    table: Arc<TableMetadata>,
    s: &UpdateStatement,
    binds: &mut BindSpecs,
) -> Result<ModifyPlan> {
    let using = Using::resolve(&s.using, binds)?;
    let mut ops = Vec::new();
    for a in &s.assignments {
        let op = match a {
            Assignment::Set { column: name, value } => {
                let (i, c) = column(&table, name)?;
                check_not_key(c)?;
                Op::Set(i, expr::resolve(value, &Receiver::new(name.clone(), c.ty.clone()), binds)?)
            }
            Assignment::SetElement { column: name, key, value } => {
                let (i, c) = column(&table, name)?;
                check_not_key(c)?;
                let (kty, vty, kname) = match &c.ty {
                    CqlType::Map { key, value, frozen: false } => {
                        ((**key).clone(), (**value).clone(), format!("key({name})"))
                    }
                    CqlType::List { element, frozen: false } => {
                        (CqlType::Int, (**element).clone(), format!("idx({name})"))
                    }
                    _ => {
                        return Err(Error::invalid(format!(
                            "Invalid operation ({name}[?] = ?) for non list/map column {name}"
                        )))
                    }
                };
                let k = expr::resolve(key, &Receiver::new(kname, kty), binds)?;
                let v = expr::resolve(value, &Receiver::new(format!("value({name})"), vty), binds)?;
                Op::SetElement(i, k, v)
            }
            Assignment::SetField { .. } => {
                return Err(Error::invalid("User-defined types are not supported"))
            }
            Assignment::Add { column: name, value }
            | Assignment::Subtract { column: name, value }
            | Assignment::Prepend { column: name, value } => {
                let (i, c) = column(&table, name)?;
                check_not_key(c)?;
                let sym = match a {
                    Assignment::Add { .. } => format!("{name} = {name} + ?"),
                    Assignment::Subtract { .. } => format!("{name} = {name} - ?"),
                    _ => format!("{name} = ? + {name}"),
                };
                if !c.ty.is_multi_cell() {
                    let what = if c.ty.is_collection() { "frozen collection" } else { "non counter" };
                    return Err(Error::invalid(format!(
                        "Invalid operation ({sym}) for {what} column {name}"
                    )));
                }
                let receiver_ty = match (&c.ty, a) {
                    (CqlType::Map { key, .. }, Assignment::Subtract { .. }) => {
                        CqlType::Set { element: key.clone(), frozen: false }
                    }
                    (CqlType::List { .. }, _) | (_, Assignment::Add { .. } | Assignment::Subtract { .. }) => {
                        c.ty.clone()
                    }
                    _ => {
                        return Err(Error::invalid(format!(
                            "Invalid operation ({sym}) for non list column {name}"
                        )))
                    }
                };
                let e = expr::resolve(value, &Receiver::new(name.clone(), receiver_ty), binds)?;
                match a {
                    Assignment::Add { .. } => Op::Add(i, e),
                    Assignment::Subtract { .. } => Op::Subtract(i, e),
                    _ => Op::Prepend(i, e),
                }
            }
        };
        ops.push(op);
    }
    let keys = restrictions::resolve(&table, &s.where_clause, StatementKind::Update, false, binds)?;
    let condition = resolve_condition(&table, s.condition.as_ref(), binds)?;
    check_clustering_complete(&table, &keys, &ops)?;
    Ok(ModifyPlan {
        table,
        keys: Keys::Where(Box::new(keys)),
        ops,
        using,
        insert: false,
        delete_rows: false,
        condition,
    })
}

fn check_clustering_complete(table: &TableMetadata, keys: &WhereClause, ops: &[Op]) -> Result<()> {
    let statics_only = ops.iter().all(|o| table.columns[o.column()].kind == ColumnKind::Static);
    let width = keys.clustering.prefix_width();
    if width < table.clustering_len() && !(statics_only && width == 0) {
        let missing = table.clustering().nth(width).map(|c| c.name.clone()).unwrap_or_default();
        return Err(Error::invalid(format!("Some clustering keys are missing: {missing}")));
    }
    if statics_only && width > 0 && !ops.is_empty() && table.clustering_len() > 0 {
        // Cassandra accepts a full key with static-only updates; a partial one is an error.
        if width < table.clustering_len() {
            return Err(Error::invalid("Invalid restrictions on clustering columns since the UPDATE statement modifies only static columns"));
        }
    }
    Ok(())
}

/// Resolves a DELETE.
pub fn plan_delete(
    table: Arc<TableMetadata>,
    s: &DeleteStatement,
    binds: &mut BindSpecs,
) -> Result<ModifyPlan> {
    if s.using.ttl.is_some() {
        return Err(Error::invalid("TTL is not supported for DELETE statements"));
    }
    let mut ops = Vec::new();
    for d in &s.columns {
        match d {
            Deletion::Column(name) => {
                let (i, c) = column(&table, name)?;
                if c.kind.is_primary_key() {
                    return Err(Error::invalid(format!(
                        "Invalid identifier {name} for deletion (should not be a PRIMARY KEY part)"
                    )));
                }
                ops.push(Op::Delete(i));
            }
            Deletion::Element { column: name, key } => {
                let (i, c) = column(&table, name)?;
                let kty = match &c.ty {
                    CqlType::Map { key, frozen: false, .. } => (**key).clone(),
                    CqlType::Set { element, frozen: false } => (**element).clone(),
                    CqlType::List { frozen: false, .. } => CqlType::Int,
                    _ => {
                        return Err(Error::invalid(format!(
                            "Invalid deletion operation for non list/map/set column {name}"
                        )))
                    }
                };
                let k = expr::resolve(key, &Receiver::new(format!("key({name})"), kty), binds)?;
                ops.push(Op::DeleteElement(i, k));
            }
            Deletion::Field { .. } => return Err(Error::invalid("User-defined types are not supported")),
        }
    }
    let using = Using::resolve(&s.using, binds)?;
    let keys = restrictions::resolve(&table, &s.where_clause, StatementKind::Delete, false, binds)?;
    let condition = resolve_condition(&table, s.condition.as_ref(), binds)?;
    if !ops.is_empty() {
        check_clustering_complete(&table, &keys, &ops)?;
    }
    let delete_rows = ops.is_empty();
    Ok(ModifyPlan {
        table,
        keys: Keys::Where(Box::new(keys)),
        ops,
        using,
        insert: false,
        delete_rows,
        condition,
    })
}

/// What building mutations needs from the node.
pub trait WriteContext: EvalContext {
    /// The write timestamp when the statement gives none (client timestamp or node clock,
    /// strictly increasing).
    fn default_timestamp(&self) -> i64;
    /// Now, seconds.
    fn now_seconds(&self) -> u32;
    /// List element paths.
    fn list_paths(&self) -> &ListPath;
    /// Reads for list operations that need the current list.
    fn reader(&self) -> &dyn ReadSource;
}

/// Mutations of several statements of a batch, merged by table and partition.
#[derive(Debug, Default)]
pub struct MutationSet {
    updates: BTreeMap<(TableId, Bytes), PartitionUpdate>,
}

impl MutationSet {
    fn partition(&mut self, table: TableId, key: &Bytes) -> &mut PartitionUpdate {
        self.updates.entry((table, key.clone())).or_insert_with(|| PartitionUpdate::new(key.clone()))
    }

    /// The merged mutations.
    #[must_use]
    pub fn into_mutations(self) -> Vec<Mutation> {
        self.updates
            .into_iter()
            .map(|((table, _), update)| Mutation { table, update })
            .filter(|m| !is_empty(&m.update))
            .collect()
    }
}

fn is_empty(u: &PartitionUpdate) -> bool {
    u.header.deletion.is_live()
        && u.header.static_row.is_none()
        && u.header.range_tombstones.is_empty()
        && u.rows.iter().all(Row::is_empty)
}

impl ModifyPlan {
    /// Adds this statement's writes to `out`. `batch_timestamp` is a BATCH's `USING TIMESTAMP`.
    pub fn build(
        &self,
        ctx: &dyn WriteContext,
        batch_timestamp: Option<i64>,
        out: &mut MutationSet,
    ) -> Result<()> {
        let table = &self.table;
        let timestamp = match &self.using.timestamp {
            Some(e) => match e.eval(ctx)? {
                Evaluated::Value(Value::Bigint(t)) => t,
                Evaluated::Value(_) => return Err(Error::Server("timestamp is not a bigint".into())),
                Evaluated::Null => return Err(Error::invalid("Invalid null value of timestamp")),
                Evaluated::Unset => batch_timestamp.unwrap_or_else(|| ctx.default_timestamp()),
            },
            None => batch_timestamp.unwrap_or_else(|| ctx.default_timestamp()),
        };
        if timestamp == i64::MIN {
            return Err(Error::invalid("Invalid timestamp value"));
        }
        let ttl = match &self.using.ttl {
            Some(e) => match e.eval(ctx)? {
                Evaluated::Value(Value::Int(t)) => {
                    if t < 0 {
                        return Err(Error::invalid(format!(
                            "A TTL must be greater or equal to 0, but was {t}"
                        )));
                    }
                    let t = t as u32;
                    if t > sibyl_engine::cell::MAX_TTL_SECONDS {
                        return Err(Error::invalid(format!(
                            "ttl is too large. requested ({t}) maximum ({})",
                            sibyl_engine::cell::MAX_TTL_SECONDS
                        )));
                    }
                    t
                }
                Evaluated::Value(_) => return Err(Error::Server("ttl is not an int".into())),
                Evaluated::Null => return Err(Error::invalid("Invalid null value of TTL")),
                Evaluated::Unset => u32::try_from(table.params.default_time_to_live).unwrap_or(0),
            },
            None => u32::try_from(table.params.default_time_to_live).unwrap_or(0),
        };
        let wt = WriteTime { timestamp, ttl, now_seconds: ctx.now_seconds() };

        // The partitions and clustering prefixes written.
        let (keys, prefixes) = self.keys_and_prefixes(ctx)?;
        let slices = match &self.keys {
            Keys::Where(w)
                if self.delete_rows
                    && (w.clustering.slice.is_some()
                        || w.clustering.prefix_width() < table.clustering_len())
                    && w.has_clustering_restrictions =>
            {
                Some(w.clustering.slices(table, ctx)?)
            }
            _ => None,
        };
        let full_clustering = |p: &[Value]| p.len() == table.clustering_len();
        for key in &keys {
            if self.delete_rows {
                let update = out.partition(table.id, key);
                let deletion = DeletionTime::new(timestamp, wt.now_seconds);
                match &slices {
                    Some(slices) => {
                        for s in slices {
                            update
                                .header
                                .range_tombstones
                                .push(RangeTombstone { slice: s.clone(), deletion });
                        }
                    }
                    None if table.clustering_len() == 0 || prefixes.iter().all(|p| p.is_empty()) => {
                        update.header.deletion = update.header.deletion.max(deletion);
                    }
                    None => {
                        for p in &prefixes {
                            let mut row = Row::new(rows::clustering_prefix(table, p)?.key());
                            row.deletion = deletion;
                            update.rows.push(row);
                        }
                    }
                }
                continue;
            }
            for p in &prefixes {
                let clustering = if table.clustering_len() == 0 {
                    sibyl_engine::clustering::empty_key()
                } else if full_clustering(p) {
                    rows::clustering_prefix(table, p)?.key()
                } else {
                    Bytes::new() // statics only
                };
                let mut row = Row::new(clustering.clone());
                let mut static_row = Row::new(Bytes::new());
                if self.insert && !clustering.is_empty() {
                    row.liveness = wt.liveness();
                } else if self.insert {
                    static_row.liveness = wt.liveness();
                }
                for op in &self.ops {
                    let col = &table.columns[op.column()];
                    let target = if col.kind == ColumnKind::Static { &mut static_row } else { &mut row };
                    apply_op(table, op, col, target, key, &clustering, wt, ctx)?;
                }
                let update = out.partition(table.id, key);
                if !static_row.is_empty() {
                    match &mut update.header.static_row {
                        Some(existing) => existing.merge(static_row),
                        None => update.header.static_row = Some(static_row),
                    }
                }
                if !row.is_empty() && !clustering.is_empty() {
                    update.rows.push(row);
                }
            }
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_op(
    table: &TableMetadata,
    op: &Op,
    col: &ColumnMetadata,
    row: &mut Row,
    key: &Bytes,
    clustering: &Bytes,
    wt: WriteTime,
    ctx: &dyn WriteContext,
) -> Result<()> {
    match op {
        Op::Set(_, e) => match e.eval(ctx)? {
            Evaluated::Unset => {}
            Evaluated::Null => write_value(row, col, None, wt),
            Evaluated::Value(v) => {
                check_value_size(col, &v)?;
                if col.ty.is_multi_cell() {
                    if let Value::List(items) = &v {
                        row.add_complex_deletion(col.id, wt.collection_overwrite());
                        for (i, item) in items.iter().enumerate() {
                            let path = ctx.list_paths().append(wt.timestamp, i);
                            row.add_cell(wt.cell(col.id, Bytes::from(types::encode(item))).with_path(path));
                        }
                        return Ok(());
                    }
                }
                write_value(row, col, Some(&v), wt);
            }
        },
        Op::Delete(_) => {
            if col.ty.is_multi_cell() {
                row.add_complex_deletion(col.id, DeletionTime::new(wt.timestamp, wt.now_seconds));
            } else {
                row.add_cell(wt.tombstone(col.id));
            }
        }
        Op::Add(_, e) | Op::Prepend(_, e) => {
            let v = match e.eval(ctx)? {
                Evaluated::Unset => return Ok(()),
                Evaluated::Null => {
                    return Err(Error::invalid(format!(
                        "Invalid null value for {} operation on {}",
                        if matches!(op, Op::Add(..)) { "+" } else { "prepend" },
                        col.name
                    )))
                }
                Evaluated::Value(v) => v,
            };
            match v {
                Value::List(items) => {
                    let n = items.len();
                    for (i, item) in items.iter().enumerate() {
                        let path = if matches!(op, Op::Prepend(..)) {
                            ctx.list_paths().prepend(wt.timestamp, i, n)
                        } else {
                            ctx.list_paths().append(wt.timestamp, i)
                        };
                        row.add_cell(wt.cell(col.id, Bytes::from(types::encode(item))).with_path(path));
                    }
                }
                Value::Set(items) => {
                    for item in &items {
                        row.add_cell(
                            wt.cell(col.id, Bytes::new()).with_path(Bytes::from(types::to_comparable(item))),
                        );
                    }
                }
                Value::Map(entries) => {
                    for (k, item) in &entries {
                        row.add_cell(
                            wt.cell(col.id, Bytes::from(types::encode(item)))
                                .with_path(Bytes::from(types::to_comparable(k))),
                        );
                    }
                }
                _ => return Err(Error::Server("collection operation with a non-collection value".into())),
            }
        }
        Op::Subtract(_, e) => {
            let v = match e.eval(ctx)? {
                Evaluated::Unset => return Ok(()),
                Evaluated::Null => {
                    return Err(Error::invalid(format!("Invalid null value for - operation on {}", col.name)))
                }
                Evaluated::Value(v) => v,
            };
            match (&col.ty, v) {
                (CqlType::Set { .. } | CqlType::Map { .. }, Value::Set(items)) => {
                    for item in &items {
                        row.add_cell(wt.tombstone(col.id).with_path(Bytes::from(types::to_comparable(item))));
                    }
                }
                (CqlType::List { element, .. }, Value::List(items)) => {
                    for (path, current) in current_list(table, col, key, clustering, ctx)? {
                        let current =
                            types::decode(element, &current).map_err(|e| Error::Server(e.to_string()))?;
                        if items.iter().any(|x| types::compare(element, x, &current).is_eq()) {
                            row.add_cell(wt.tombstone(col.id).with_path(path));
                        }
                    }
                }
                _ => return Err(Error::Server("collection removal with a mismatched value".into())),
            }
        }
        Op::SetElement(_, k, e) => {
            let k = k.eval(ctx)?.required(&format!("key({})", col.name))?;
            let v = e.eval(ctx)?;
            match &col.ty {
                CqlType::Map { .. } => {
                    let path = Bytes::from(types::to_comparable(&k));
                    match v {
                        Evaluated::Value(v) => {
                            row.add_cell(wt.cell(col.id, Bytes::from(types::encode(&v))).with_path(path))
                        }
                        Evaluated::Null => row.add_cell(wt.tombstone(col.id).with_path(path)),
                        Evaluated::Unset => {}
                    }
                }
                CqlType::List { .. } => {
                    let path = list_index_path(table, col, key, clustering, &k, ctx)?;
                    match v {
                        Evaluated::Value(v) => {
                            row.add_cell(wt.cell(col.id, Bytes::from(types::encode(&v))).with_path(path))
                        }
                        Evaluated::Null => row.add_cell(wt.tombstone(col.id).with_path(path)),
                        Evaluated::Unset => {}
                    }
                }
                _ => return Err(Error::Server("element assignment on a non-collection".into())),
            }
        }
        Op::DeleteElement(_, k) => {
            let k = k.eval(ctx)?.required(&format!("key({})", col.name))?;
            let path = match &col.ty {
                CqlType::List { .. } => list_index_path(table, col, key, clustering, &k, ctx)?,
                _ => Bytes::from(types::to_comparable(&k)),
            };
            row.add_cell(wt.tombstone(col.id).with_path(path));
        }
    }
    Ok(())
}

impl ModifyPlan {
    /// The partition keys the statement writes and the clustering prefixes (values) it
    /// names: full keys, shorter prefixes for range deletions, or none for partition-level
    /// and static-only writes.
    fn keys_and_prefixes(&self, ctx: &dyn WriteContext) -> Result<(Vec<Bytes>, Vec<Vec<Value>>)> {
        let table = &self.table;
        match &self.keys {
            Keys::Insert(values) => {
                let pk = table.partition_key_len();
                let mut pkv = Vec::with_capacity(pk);
                for (e, c) in values.iter().take(pk).zip(table.partition_key()) {
                    let v = e.as_ref().map(|e| e.eval(ctx)).transpose()?.unwrap_or(Evaluated::Null);
                    pkv.push(Bytes::from(types::encode(
                        &v.required(&format!("partition key part {}", c.name))?,
                    )));
                }
                let mut ck = Vec::new();
                for (e, c) in values.iter().skip(pk).zip(table.clustering()) {
                    if let Some(e) = e {
                        ck.push(e.eval(ctx)?.required(&format!("clustering column {}", c.name))?);
                    }
                }
                Ok((vec![rows::partition_key(table, &pkv)?], vec![ck]))
            }
            Keys::Where(w) => {
                let Some(pk) = &w.partition_keys else {
                    return Err(Error::invalid("Some partition key parts are missing"));
                };
                Ok((restrictions::partition_keys(table, pk, ctx)?, w.clustering.prefixes(table, ctx)?))
            }
        }
    }

    /// The one partition key and clustering key (empty for a partition-level or static-only
    /// statement) a conditional statement touches.
    pub fn conditional_target(&self, ctx: &dyn WriteContext) -> Result<(Bytes, Bytes)> {
        let table = &self.table;
        let (keys, prefixes) = self.keys_and_prefixes(ctx)?;
        let ([key], [prefix]) = (keys.as_slice(), prefixes.as_slice()) else {
            return Err(Error::invalid(
                "IN on the partition key or clustering columns is not supported with conditional updates",
            ));
        };
        let clustering = if table.clustering_len() == 0 {
            sibyl_engine::clustering::empty_key()
        } else if prefix.len() == table.clustering_len() {
            rows::clustering_prefix(table, prefix)?.key()
        } else if prefix.is_empty() {
            Bytes::new()
        } else {
            return Err(Error::invalid("Conditional updates need the full primary key (or only the partition key for static columns)"));
        };
        if self.delete_rows
            && clustering.is_empty()
            && table.clustering_len() > 0
            && !matches!(self.condition, Some(Condition::Columns(ref cs)) if cs.iter().all(|c| table.columns[c.column].kind == ColumnKind::Static))
        {
            return Err(Error::invalid("DELETE statements must restrict all PRIMARY KEY columns with equality relations in order to use IF conditions"));
        }
        Ok((key.clone(), clustering))
    }

    /// Whether the condition holds for the current row (`None`: no such row).
    pub fn condition_holds(
        &self,
        current: Option<&[Option<rows::ColumnValue>]>,
        exists: bool,
        ctx: &dyn WriteContext,
    ) -> Result<bool> {
        let Some(condition) = &self.condition else { return Ok(true) };
        match condition {
            Condition::NotExists => Ok(!exists),
            Condition::Exists => Ok(exists),
            Condition::Columns(cs) => {
                for c in cs {
                    let col = &self.table.columns[c.column];
                    let cell = current.and_then(|r| r.get(c.column)).and_then(|v| v.as_ref());
                    let mut actual = match cell {
                        Some(v) => {
                            Some(types::decode(&col.ty, &v.bytes).map_err(|e| Error::Server(e.to_string()))?)
                        }
                        None => None,
                    };
                    let mut ty = col.ty.clone();
                    if let Some(k) = &c.element {
                        let k = k.eval(ctx)?.required(&format!("key({})", col.name))?;
                        (actual, ty) = match (&col.ty, actual) {
                            (CqlType::Map { key, value, .. }, Some(Value::Map(entries))) => (
                                entries
                                    .into_iter()
                                    .find(|(ek, _)| types::compare(key, ek, &k).is_eq())
                                    .map(|(_, v)| v),
                                (**value).clone(),
                            ),
                            (CqlType::List { element, .. }, Some(Value::List(items))) => {
                                let idx = if let Value::Int(i) = k { usize::try_from(i).ok() } else { None };
                                (idx.and_then(|i| items.into_iter().nth(i)), (**element).clone())
                            }
                            (CqlType::Map { value, .. }, None) => (None, (**value).clone()),
                            (CqlType::List { element, .. }, None) => (None, (**element).clone()),
                            _ => (None, ty),
                        };
                    }
                    let holds = match &c.value {
                        ConditionValue::In(values) => {
                            let vs = values.eval_nullable(ctx)?;
                            vs.iter().any(|v| match (v, &actual) {
                                (None, None) => true,
                                (Some(v), Some(a)) => types::compare(&ty, a, v).is_eq(),
                                _ => false,
                            })
                        }
                        ConditionValue::One(e) => {
                            let expected = match e.eval(ctx)? {
                                Evaluated::Value(v) => Some(v),
                                Evaluated::Null => None,
                                Evaluated::Unset => {
                                    return Err(Error::invalid(format!(
                                        "Invalid 'unset' value in condition on {}",
                                        col.name
                                    )))
                                }
                            };
                            match (&actual, &expected, c.op) {
                                (None, None, Operator::Eq) => true,
                                (None, None, Operator::Neq) => false,
                                (Some(_), None, Operator::Eq) | (None, Some(_), Operator::Eq) => false,
                                (Some(_), None, Operator::Neq) | (None, Some(_), Operator::Neq) => true,
                                (_, None, _) => {
                                    return Err(Error::invalid(format!(
                                        "Invalid comparison with null for operator \"{}\"",
                                        c.op.as_str()
                                    )))
                                }
                                (None, Some(_), _) => false,
                                (Some(a), Some(v), op) => {
                                    let o = types::compare(&ty, a, v);
                                    match op {
                                        Operator::Eq => o.is_eq(),
                                        Operator::Neq => !o.is_eq(),
                                        Operator::Lt => o.is_lt(),
                                        Operator::Lte => o.is_le(),
                                        Operator::Gt => o.is_gt(),
                                        Operator::Gte => o.is_ge(),
                                        _ => false,
                                    }
                                }
                            }
                        }
                    };
                    if !holds {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    /// Columns shown next to `[applied] = false`: the whole row for `IF NOT EXISTS`/`IF EXISTS`,
    /// the conditioned columns otherwise.
    #[must_use]
    pub fn condition_columns(&self) -> Vec<usize> {
        match &self.condition {
            Some(Condition::Columns(cs)) => {
                let mut v: Vec<usize> = cs.iter().map(|c| c.column).collect();
                v.dedup();
                v
            }
            _ => (0..self.table.columns.len()).collect(),
        }
    }
}

/// Largest value of a single cell (Cassandra's `native_transport_max_frame_size` bounds the
/// same in practice; this keeps a cell inside the engine's limits).
const MAX_CELL_VALUE_BYTES: usize = 16 << 20;

fn check_value_size(col: &ColumnMetadata, v: &Value) -> Result<()> {
    if let Value::Blob(b) = v {
        if b.len() > MAX_CELL_VALUE_BYTES {
            return Err(Error::invalid(format!(
                "Value of column {} is {} bytes, more than the limit of {MAX_CELL_VALUE_BYTES}",
                col.name,
                b.len()
            )));
        }
    }
    Ok(())
}

/// The current live elements of a list column: (path, serialized value).
fn current_list(
    table: &TableMetadata,
    col: &ColumnMetadata,
    key: &Bytes,
    clustering: &Bytes,
    ctx: &dyn WriteContext,
) -> Result<Vec<(Bytes, Bytes)>> {
    let slice = if clustering.is_empty() {
        Slice { start: sibyl_engine::Bound::bottom(), end: sibyl_engine::Bound::bottom() }
    } else {
        Slice {
            start: sibyl_engine::Bound::before_key(clustering),
            end: sibyl_engine::Bound::after_key(clustering),
        }
    };
    let now = ctx.now_seconds();
    let cmd = ReadCommand {
        table: table.id,
        key: key.clone(),
        slices: vec![slice],
        reversed: false,
        row_limit: 1,
        now_seconds: now,
    };
    let Some(data) = ctx.reader().read(&cmd)? else { return Ok(Vec::new()) };
    let row =
        if col.kind == ColumnKind::Static { data.header.static_row.as_ref() } else { data.rows.first() };
    let Some(row) = row else { return Ok(Vec::new()) };
    Ok(row
        .cells
        .iter()
        .filter(|c| c.column == col.id && c.is_live(now))
        .filter_map(|c| c.path.clone().map(|p| (p, c.value.clone())))
        .collect())
}

fn list_index_path(
    table: &TableMetadata,
    col: &ColumnMetadata,
    key: &Bytes,
    clustering: &Bytes,
    index: &Value,
    ctx: &dyn WriteContext,
) -> Result<Bytes> {
    let Value::Int(i) = index else { return Err(Error::invalid("Invalid list index")) };
    let current = current_list(table, col, key, clustering, ctx)?;
    let idx = usize::try_from(*i).map_err(|_| Error::invalid(format!("Invalid negative list index {i}")))?;
    current.get(idx).map(|(p, _)| p.clone()).ok_or_else(|| {
        Error::invalid(format!("List index {i} out of bound, list has size {}", current.len()))
    })
}
