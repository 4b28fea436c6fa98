//! SELECT: resolution into a plan, then execution page by page.

use std::sync::Arc;

use bytes::Bytes;
use sibyl_engine::{Bound, DecoratedKey, ReadCommand, ScanCommand, ScanStart, Slice, Token};

use super::expr::{self, BindSpecs, EvalContext, Evaluated, Expr, Receiver};
use super::paging::PagingState;
use super::restrictions::{self, StatementKind, WhereClause};
use super::{ColumnSpec, ResultSet};
use crate::ast::{self, QualifiedName, SelectStatement, Selection, SelectorExpr};
use crate::error::{Error, Result};
use crate::rows::{self, CqlRow};
use crate::schema::{ColumnKind, TableMetadata};
use crate::types::{self, CqlType, Value};

/// Partitions fetched per engine scan call.
const SCAN_BATCH_PARTITIONS: usize = 32;
/// Most partitions of an `IN` read at once (the coordinator bounds the concurrency further).
const IN_WINDOW: usize = 16;

/// A resolved SELECT.
#[derive(Debug, Clone)]
pub struct SelectPlan {
    /// Table read.
    pub table: Arc<TableMetadata>,
    selectors: Vec<Sel>,
    /// Result columns.
    pub columns: Vec<ColumnSpec>,
    where_clause: WhereClause,
    reversed: bool,
    order_by: bool,
    limit: Option<Expr>,
    per_partition_limit: Option<Expr>,
    distinct: bool,
    aggregate: bool,
}

/// One selector, resolved.
#[derive(Debug, Clone)]
enum Sel {
    Column(usize),
    WriteTime(usize),
    Ttl(usize),
    Token,
    Const(Option<Value>),
    Scalar { function: Scalar, arg: Box<Sel>, arg_ty: CqlType },
    Aggregate { function: Aggregate, arg: Option<Box<Sel>>, ty: CqlType },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    ToTimestamp,
    ToDate,
    ToUnixTimestamp,
    AsBlob,
    BlobAs,
    Cast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    CountRows,
    Count,
    Min,
    Max,
    Sum,
    Avg,
}

/// Resolves a SELECT on `table`.
pub fn plan(table: Arc<TableMetadata>, s: &SelectStatement, binds: &mut BindSpecs) -> Result<SelectPlan> {
    if s.json {
        return Err(Error::invalid("SELECT JSON is not supported"));
    }
    if !s.group_by.is_empty() {
        return Err(Error::invalid("GROUP BY is not supported"));
    }
    let where_clause =
        restrictions::resolve(&table, &s.where_clause, StatementKind::Select, s.allow_filtering, binds)?;
    let mut selectors = Vec::new();
    let mut columns = Vec::new();
    let spec = |name: String, ty: CqlType| ColumnSpec {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        name,
        ty,
    };
    match &s.selection {
        Selection::Wildcard => {
            for (i, c) in table.columns.iter().enumerate() {
                if s.distinct && !matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Static) {
                    continue;
                }
                selectors.push(Sel::Column(i));
                columns.push(spec(c.name.clone(), c.ty.clone()));
            }
        }
        Selection::Selectors(list) => {
            for item in list {
                let (sel, name, ty) = selector(&table, &item.expr)?;
                selectors.push(sel);
                columns.push(spec(item.alias.clone().unwrap_or(name), ty));
            }
        }
    }
    let aggregate = selectors.iter().any(|s| matches!(s, Sel::Aggregate { .. }));
    if s.distinct {
        for sel in &selectors {
            if let Sel::Column(i) = sel {
                if !matches!(table.columns[*i].kind, ColumnKind::PartitionKey | ColumnKind::Static) {
                    return Err(Error::invalid(format!(
                        "SELECT DISTINCT queries must only request partition key columns and/or static columns (not {})",
                        table.columns[*i].name
                    )));
                }
            }
        }
        let all_pk = table.partition_key().all(|c| {
            selectors.iter().any(|s| matches!(s, Sel::Column(i) if table.columns[*i].name == c.name))
        });
        if !all_pk {
            return Err(Error::invalid("SELECT DISTINCT queries must request all the partition key columns"));
        }
    }
    // ORDER BY: clustering columns in declared order or exactly reversed.
    let mut reversed = false;
    if !s.order_by.is_empty() {
        if where_clause.partition_keys.is_none() {
            return Err(Error::invalid(
                "ORDER BY is only supported when the partition key is restricted by an EQ or an IN.",
            ));
        }
        let clustering: Vec<_> = table.clustering().collect();
        let mut direction: Option<bool> = None;
        for (i, o) in s.order_by.iter().enumerate() {
            let Some(c) = table.column(&o.column) else {
                return Err(Error::invalid(format!("Undefined column name {}", o.column)));
            };
            if c.kind != ColumnKind::Clustering {
                return Err(Error::invalid(format!("Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {}", o.column)));
            }
            if clustering.get(i).map(|cc| &cc.name) != Some(&c.name) {
                return Err(Error::invalid("Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY"));
            }
            let declared_desc = c.order == sibyl_engine::Order::Descending;
            let wants_desc = o.order == ast::Order::Desc;
            let rev = declared_desc != wants_desc;
            if direction.is_some_and(|d| d != rev) {
                return Err(Error::invalid("Unsupported order by relation"));
            }
            direction = Some(rev);
        }
        reversed = direction.unwrap_or(false);
    }
    let limit = s
        .limit
        .as_ref()
        .map(|t| expr::resolve(t, &Receiver::new("[limit]", CqlType::Int), binds))
        .transpose()?;
    let per_partition_limit = s
        .per_partition_limit
        .as_ref()
        .map(|t| expr::resolve(t, &Receiver::new("[per_partition_limit]", CqlType::Int), binds))
        .transpose()?;
    Ok(SelectPlan {
        table,
        selectors,
        columns,
        where_clause,
        reversed,
        order_by: !s.order_by.is_empty(),
        limit,
        per_partition_limit,
        distinct: s.distinct,
        aggregate,
    })
}

fn selector(table: &TableMetadata, e: &SelectorExpr) -> Result<(Sel, String, CqlType)> {
    let col = |name: &str| -> Result<usize> {
        table
            .column_index(name)
            .ok_or_else(|| Error::invalid(format!("Undefined column name {name} in selection clause")))
    };
    Ok(match e {
        SelectorExpr::Column(name) => {
            let i = col(name)?;
            (Sel::Column(i), name.clone(), table.columns[i].ty.clone())
        }
        SelectorExpr::CountAll => (
            Sel::Aggregate { function: Aggregate::CountRows, arg: None, ty: CqlType::Bigint },
            "count".into(),
            CqlType::Bigint,
        ),
        SelectorExpr::WriteTime(name) | SelectorExpr::Ttl(name) => {
            let i = col(name)?;
            let c = &table.columns[i];
            let is_ttl = matches!(e, SelectorExpr::Ttl(_));
            let fname = if is_ttl { "ttl" } else { "writetime" };
            if c.kind.is_primary_key() {
                return Err(Error::invalid(format!(
                    "Cannot use selection function {fname} on PRIMARY KEY part {name}"
                )));
            }
            if c.ty.is_multi_cell() {
                return Err(Error::invalid(format!(
                    "Cannot use selection function {fname} on non-frozen collection {name}"
                )));
            }
            if is_ttl {
                (Sel::Ttl(i), format!("ttl({name})"), CqlType::Int)
            } else {
                (Sel::WriteTime(i), format!("writetime({name})"), CqlType::Bigint)
            }
        }
        SelectorExpr::MaxWriteTime(_) => return Err(Error::invalid("maxwritetime is not supported")),
        SelectorExpr::Cast { selector: inner, ty } => {
            let (sel, name, from) = selector(table, inner)?;
            let to = CqlType::parse(ty.as_str()).map_err(|e| Error::invalid(e.to_string()))?;
            (
                Sel::Scalar { function: Scalar::Cast, arg: Box::new(sel), arg_ty: from },
                format!("cast({name} as {to})"),
                to,
            )
        }
        SelectorExpr::FunctionCall { name, args } => function_selector(table, name, args)?,
        SelectorExpr::Term(t) => {
            let ty = match t {
                ast::Term::Literal(ast::Literal::Integer(_)) => CqlType::Int,
                ast::Term::Literal(ast::Literal::Float(_)) => CqlType::Double,
                ast::Term::Literal(ast::Literal::Boolean(_)) => CqlType::Boolean,
                ast::Term::Literal(ast::Literal::Uuid(_)) => CqlType::Uuid,
                ast::Term::Literal(ast::Literal::Hex(_)) => CqlType::Blob,
                ast::Term::Cast { ty, .. } => expr::type_of(ty)?,
                _ => CqlType::Text,
            };
            let mut binds = BindSpecs::default();
            let e = expr::resolve(t, &Receiver::new("literal", ty.clone()), &mut binds)?;
            let Expr::Const(v) = e else {
                return Err(Error::invalid(
                    "Bind markers and functions of time are not supported in selection clauses",
                ));
            };
            (Sel::Const(v), "literal".into(), ty)
        }
        SelectorExpr::Field { .. } => return Err(Error::invalid("User-defined types are not supported")),
        SelectorExpr::Element { .. } | SelectorExpr::Slice { .. } => {
            return Err(Error::invalid("Selecting collection elements and slices is not supported"))
        }
    })
}

fn function_selector(
    table: &TableMetadata,
    name: &QualifiedName,
    args: &[SelectorExpr],
) -> Result<(Sel, String, CqlType)> {
    let lower = name.name.to_ascii_lowercase();
    let shown = |inner: &[String]| format!("system.{lower}({})", inner.join(", "));
    if lower == "token" {
        let names: Vec<String> = args
            .iter()
            .map(|a| match a {
                SelectorExpr::Column(c) => Ok(c.clone()),
                _ => Err(Error::invalid("token() takes the partition key columns")),
            })
            .collect::<Result<_>>()?;
        let expected: Vec<String> = table.partition_key().map(|c| c.name.clone()).collect();
        if names != expected {
            return Err(Error::invalid(format!(
                "Invalid arguments for function system.token: expected the partition key columns ({})",
                expected.join(", ")
            )));
        }
        return Ok((Sel::Token, shown(&names), CqlType::Bigint));
    }
    let mut inner = Vec::new();
    for a in args {
        inner.push(selector(table, a)?);
    }
    let names: Vec<String> = inner.iter().map(|(_, n, _)| n.clone()).collect();
    let one = |inner: Vec<(Sel, String, CqlType)>| -> Result<(Sel, CqlType)> {
        let mut it = inner.into_iter();
        match (it.next(), it.next()) {
            (Some((s, _, t)), None) => Ok((s, t)),
            _ => Err(Error::invalid(format!(
                "Invalid number of arguments in call to function {lower}: 1 required"
            ))),
        }
    };
    let aggregate =
        |function: Aggregate, inner: Vec<(Sel, String, CqlType)>| -> Result<(Sel, String, CqlType)> {
            let name_shown = shown(&names);
            let (arg, arg_ty) = one(inner)?;
            let ty = match function {
                Aggregate::Count | Aggregate::CountRows => CqlType::Bigint,
                Aggregate::Sum | Aggregate::Avg => {
                    if !is_numeric(&arg_ty) {
                        return Err(Error::invalid(format!(
                            "Invalid call to function {lower}: argument of type {arg_ty} is not numeric"
                        )));
                    }
                    arg_ty
                }
                Aggregate::Min | Aggregate::Max => arg_ty,
            };
            Ok((Sel::Aggregate { function, arg: Some(Box::new(arg)), ty: ty.clone() }, name_shown, ty))
        };
    match lower.as_str() {
        "count" => {
            if matches!(args, [SelectorExpr::Term(ast::Term::Literal(ast::Literal::Integer(_)))]) {
                return Ok((
                    Sel::Aggregate { function: Aggregate::CountRows, arg: None, ty: CqlType::Bigint },
                    "count".into(),
                    CqlType::Bigint,
                ));
            }
            aggregate(Aggregate::Count, inner)
        }
        "min" => aggregate(Aggregate::Min, inner),
        "max" => aggregate(Aggregate::Max, inner),
        "sum" => aggregate(Aggregate::Sum, inner),
        "avg" => aggregate(Aggregate::Avg, inner),
        "totimestamp" | "todate" | "tounixtimestamp" => {
            let (arg, arg_ty) = one(inner)?;
            if !matches!(arg_ty, CqlType::Timeuuid | CqlType::Timestamp | CqlType::Date) {
                return Err(Error::invalid(format!("Invalid argument type {arg_ty} for function {lower}")));
            }
            let (function, ty) = match lower.as_str() {
                "totimestamp" => (Scalar::ToTimestamp, CqlType::Timestamp),
                "todate" => (Scalar::ToDate, CqlType::Date),
                _ => (Scalar::ToUnixTimestamp, CqlType::Bigint),
            };
            Ok((Sel::Scalar { function, arg: Box::new(arg), arg_ty }, shown(&names), ty))
        }
        other => {
            if let Some(target) = other.strip_prefix("blobas") {
                let ty =
                    CqlType::parse(target).map_err(|_| Error::invalid(format!("Unknown function {name}")))?;
                let (arg, arg_ty) = one(inner)?;
                if arg_ty != CqlType::Blob {
                    return Err(Error::invalid(format!(
                        "Invalid argument type {arg_ty} for function {lower}: blob expected"
                    )));
                }
                return Ok((
                    Sel::Scalar { function: Scalar::BlobAs, arg: Box::new(arg), arg_ty: ty.clone() },
                    shown(&names),
                    ty,
                ));
            }
            if let Some(source) = other.strip_suffix("asblob") {
                let ty =
                    CqlType::parse(source).map_err(|_| Error::invalid(format!("Unknown function {name}")))?;
                let (arg, arg_ty) = one(inner)?;
                if arg_ty != ty {
                    return Err(Error::invalid(format!(
                        "Invalid argument type {arg_ty} for function {lower}: {ty} expected"
                    )));
                }
                return Ok((
                    Sel::Scalar { function: Scalar::AsBlob, arg: Box::new(arg), arg_ty },
                    shown(&names),
                    CqlType::Blob,
                ));
            }
            Err(Error::invalid(format!("Unknown function '{name}'")))
        }
    }
}

fn is_numeric(t: &CqlType) -> bool {
    matches!(
        t,
        CqlType::Int
            | CqlType::Bigint
            | CqlType::Smallint
            | CqlType::Tinyint
            | CqlType::Varint
            | CqlType::Float
            | CqlType::Double
            | CqlType::Decimal
            | CqlType::Counter
    )
}

/// What [`execute`] needs from the node.
pub trait ReadSource {
    /// Reads one partition.
    fn read(&self, cmd: &ReadCommand) -> Result<Option<sibyl_engine::PartitionData>>;
    /// Reads several partitions of one table (answers in the order of `cmds`). The node's
    /// source reads them concurrently; this default reads them one by one.
    fn read_many(&self, cmds: &[ReadCommand]) -> Result<Vec<Option<sibyl_engine::PartitionData>>> {
        cmds.iter().map(|c| self.read(c)).collect()
    }
    /// Scans partitions.
    fn scan(&self, cmd: &ScanCommand) -> Result<Vec<sibyl_engine::PartitionData>>;
}

/// Options of one execution.
#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    /// Rows per page (`None`: everything).
    pub page_size: Option<usize>,
    /// Where the previous page ended.
    pub paging_state: Option<Bytes>,
}

/// Most bytes of row values in one result. A page reaching it ends early (the protocol allows
/// short pages; drivers fetch the next one); an unpaged result reaching it is refused, so one
/// request cannot make the node build an unbounded response.
pub const MAX_RESULT_BYTES: usize = 16 << 20;

struct Output<'a> {
    plan: &'a SelectPlan,
    rows: Vec<Vec<Option<Bytes>>>,
    bytes: usize,
    paged: bool,
    aggregates: Option<AggregateState>,
    remaining: u64,
    page_left: u64,
    last: Option<(Bytes, Bytes, u64)>,
}

/// Executes a SELECT plan: one page of results.
pub fn execute(
    plan: &SelectPlan,
    source: &dyn ReadSource,
    ctx: &dyn EvalContext,
    page: &PageOptions,
    now_seconds: u32,
) -> Result<ResultSet> {
    let limit = eval_limit(plan.limit.as_ref(), ctx, "LIMIT")?;
    let per_partition_limit = eval_limit(plan.per_partition_limit.as_ref(), ctx, "PER PARTITION LIMIT")?;
    let state = page.paging_state.as_ref().map(|b| PagingState::decode(b)).transpose()?;
    let page_size = if plan.aggregate { None } else { page.page_size };
    let table = &plan.table;
    let slices =
        if plan.distinct { vec![Slice::all()] } else { plan.where_clause.clustering.slices(table, ctx)? };
    let mut out = Output {
        plan,
        rows: Vec::new(),
        bytes: 0,
        paged: page_size.is_some(),
        aggregates: plan.aggregate.then(|| AggregateState::new(&plan.selectors)),
        remaining: state.as_ref().map_or(limit, |s| u64::from(s.remaining)),
        page_left: page_size.map_or(u64::MAX, |p| p as u64),
        last: None,
    };
    let keys = match &plan.where_clause.partition_keys {
        Some(restrictions) => Some(restrictions::partition_keys(table, restrictions, ctx)?),
        None => None,
    };
    if slices.is_empty() {
        return Ok(out.finish());
    }
    let mut more = false;
    if let Some(keys) = keys {
        if plan.order_by && keys.len() > 1 {
            if page_size.is_some() && !plan.aggregate {
                return Err(Error::invalid("Cannot page queries with both ORDER BY and a IN restriction on the partition key; you must either remove the ORDER BY or the IN and sort client side, or disable paging for this query"));
            }
            return ordered_multi_partition(
                plan,
                source,
                ctx,
                &keys,
                &slices,
                per_partition_limit,
                limit,
                now_seconds,
            );
        }
        let mut start = 0;
        let mut resume: Option<(Bytes, u64)> = None;
        if let Some(s) = &state {
            match keys.iter().position(|k| *k == s.key) {
                Some(i) => {
                    start = i;
                    match &s.clustering {
                        Some(c) => resume = Some((c.clone(), u64::from(s.remaining_in_partition))),
                        None => start = i + 1,
                    }
                }
                None => {
                    return Err(Error::invalid(
                        "Invalid value for the paging state: it is not from this query",
                    ))
                }
            }
        }
        // Partitions are read a window at a time, concurrently; the window is no larger than
        // the rows the page still wants, so a small page does not read many partitions ahead.
        let mut n = start;
        'keys: while n < keys.len() {
            if out.remaining == 0 || out.page_left == 0 {
                more = out.page_left == 0 && out.remaining > 0;
                break;
            }
            let window =
                usize::try_from(out.page_left.min(out.remaining)).unwrap_or(usize::MAX).clamp(1, IN_WINDOW);
            let end = keys.len().min(n + window);
            let mut reads = Vec::with_capacity(end - n);
            for (i, key) in keys.iter().enumerate().take(end).skip(n) {
                let (after, in_partition) = match resume.take() {
                    Some((c, left)) if i == start => (Some(c), left),
                    _ => (None, per_partition_limit),
                };
                let cmd = partition_command(&out, key, &slices, after.as_ref(), in_partition, now_seconds);
                reads.push((after, in_partition, cmd));
            }
            let cmds: Vec<ReadCommand> = reads.iter().filter_map(|(_, _, c)| c.clone()).collect();
            let mut found = source.read_many(&cmds)?.into_iter();
            for (after, in_partition, cmd) in reads {
                n += 1;
                if cmd.is_none() {
                    continue;
                }
                let Some(Some(data)) = found.next() else { continue };
                if out.remaining == 0 || out.page_left == 0 {
                    // The window read ahead of what the page needed; the paging state
                    // (the last row emitted) resumes before this key.
                    more = out.page_left == 0 && out.remaining > 0;
                    break 'keys;
                }
                if !emit_partition(&mut out, ctx, &data, after.as_ref(), in_partition, now_seconds)? {
                    more = true;
                    break 'keys;
                }
            }
        }
    } else {
        let range = match &plan.where_clause.token {
            Some(t) => restrictions::token_range(t, ctx)?,
            None => Some((Token(i64::MIN), Token(i64::MAX))),
        };
        let Some((lo, hi)) = range else { return Ok(out.finish()) };
        let mut start = ScanStart::TokenInclusive(lo);
        if let Some(s) = &state {
            let dk = DecoratedKey::new(s.key.clone());
            if let Some(c) = &s.clustering {
                let done = read_partition(
                    &mut out,
                    source,
                    ctx,
                    &s.key,
                    &slices,
                    Some(c),
                    u64::from(s.remaining_in_partition),
                    now_seconds,
                )?;
                if !done {
                    return Ok(out.finish_with_more(true));
                }
            }
            start = ScanStart::AfterKey(dk);
        }
        'scan: loop {
            if out.remaining == 0 || out.page_left == 0 {
                more = out.page_left == 0 && out.remaining > 0;
                break;
            }
            let cmd = ScanCommand {
                table: table.id,
                start: start.clone(),
                end: hi,
                slices: slices.clone(),
                partition_limit: SCAN_BATCH_PARTITIONS,
                row_limit: usize::MAX,
                now_seconds,
            };
            let batch = source.scan(&cmd)?;
            let Some(last) = batch.last() else { break };
            start = ScanStart::AfterKey(last.key.clone());
            let full = batch.len() >= SCAN_BATCH_PARTITIONS;
            for p in &batch {
                let done = emit_partition(&mut out, ctx, p, None, per_partition_limit, now_seconds)?;
                if !done {
                    more = true;
                    break 'scan;
                }
            }
            if !full {
                break;
            }
        }
    }
    Ok(out.finish_with_more(more))
}

fn eval_limit(e: Option<&Expr>, ctx: &dyn EvalContext, what: &str) -> Result<u64> {
    let Some(e) = e else { return Ok(u64::MAX) };
    match e.eval(ctx)? {
        Evaluated::Value(Value::Int(n)) if n > 0 => Ok(n as u64),
        Evaluated::Value(Value::Int(n)) => {
            Err(Error::invalid(format!("{what} must be strictly positive (got {n})")))
        }
        Evaluated::Unset | Evaluated::Null => Ok(u64::MAX),
        Evaluated::Value(_) => Err(Error::invalid(format!("Invalid {what} value"))),
    }
}

/// Reads a partition (resuming after `after`) and emits its rows. Returns false when the page
/// filled up before the partition ended.
#[allow(clippy::too_many_arguments)]
fn read_partition(
    out: &mut Output<'_>,
    source: &dyn ReadSource,
    ctx: &dyn EvalContext,
    key: &Bytes,
    slices: &[Slice],
    after: Option<&Bytes>,
    in_partition: u64,
    now_seconds: u32,
) -> Result<bool> {
    let Some(cmd) = partition_command(out, key, slices, after, in_partition, now_seconds) else {
        return Ok(true);
    };
    let Some(data) = source.read(&cmd)? else { return Ok(true) };
    emit_partition(out, ctx, &data, after, in_partition, now_seconds)
}

/// The read of one partition for the page being built (resuming after `after`), or `None`
/// when nothing of it is left to read.
fn partition_command(
    out: &Output<'_>,
    key: &Bytes,
    slices: &[Slice],
    after: Option<&Bytes>,
    in_partition: u64,
    now_seconds: u32,
) -> Option<ReadCommand> {
    let plan = out.plan;
    let slices = match after {
        Some(c) => resume_slices(slices, c, plan.reversed),
        None => slices.to_vec(),
    };
    if slices.is_empty() {
        return None;
    }
    let filtering = !plan.where_clause.filters.is_empty();
    let wanted = out.remaining.min(out.page_left).min(in_partition);
    let row_limit = if plan.distinct {
        1
    } else if filtering || plan.aggregate {
        usize::MAX
    } else {
        usize::try_from(wanted.saturating_add(1)).unwrap_or(usize::MAX)
    };
    Some(ReadCommand {
        table: plan.table.id,
        key: key.clone(),
        slices,
        reversed: plan.reversed,
        row_limit,
        now_seconds,
    })
}

fn resume_slices(slices: &[Slice], after: &Bytes, reversed: bool) -> Vec<Slice> {
    let cut = if reversed { Bound::before_key(after) } else { Bound::after_key(after) };
    slices
        .iter()
        .filter_map(|s| {
            let s = if reversed {
                Slice { start: s.start.clone(), end: std::cmp::min(s.end.clone(), cut.clone()) }
            } else {
                Slice { start: std::cmp::max(s.start.clone(), cut.clone()), end: s.end.clone() }
            };
            (!s.is_empty()).then_some(s)
        })
        .collect()
}

/// Emits the rows of one partition. Returns false if the page filled before the partition
/// ended (the paging state then points inside it).
fn emit_partition(
    out: &mut Output<'_>,
    ctx: &dyn EvalContext,
    data: &sibyl_engine::PartitionData,
    resumed_after: Option<&Bytes>,
    in_partition: u64,
    now_seconds: u32,
) -> Result<bool> {
    let plan = out.plan;
    let table = &plan.table;
    let decoded = rows::decode_partition(table, data, now_seconds)?;
    let mut rows = if plan.distinct {
        // One row per partition with live data: the key and static columns.
        if decoded.rows.is_empty() && decoded.statics.is_none() {
            Vec::new()
        } else {
            let mut r = decoded.result_rows();
            r.truncate(1);
            r
        }
    } else if resumed_after.is_some() && decoded.rows.is_empty() {
        // Resuming after the last row: the static-only row was already returned.
        Vec::new()
    } else {
        decoded.result_rows()
    };
    let mut left = in_partition;
    let token = data.key.token.0;
    for r in rows.drain(..) {
        if left == 0 || out.remaining == 0 {
            return Ok(true);
        }
        if out.page_left == 0 {
            return Ok(false);
        }
        if !restrictions::passes(table, &plan.where_clause.filters, &r.columns, ctx)? {
            continue;
        }
        out.push(&r, token, now_seconds)?;
        left -= 1;
        // Where the next page resumes: after this row (an empty clustering, the static-only
        // row or a DISTINCT row, means after the whole partition).
        let clustering = if plan.distinct { Bytes::new() } else { r.clustering.clone() };
        out.last = Some((decoded.key.clone(), clustering, left));
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
fn ordered_multi_partition(
    plan: &SelectPlan,
    source: &dyn ReadSource,
    ctx: &dyn EvalContext,
    keys: &[Bytes],
    slices: &[Slice],
    per_partition_limit: u64,
    limit: u64,
    now_seconds: u32,
) -> Result<ResultSet> {
    let mut all: Vec<(Bytes, i64, CqlRow)> = Vec::new();
    let cmds: Vec<ReadCommand> = keys
        .iter()
        .map(|key| ReadCommand {
            table: plan.table.id,
            key: key.clone(),
            slices: slices.to_vec(),
            reversed: plan.reversed,
            row_limit: usize::MAX,
            now_seconds,
        })
        .collect();
    for data in source.read_many(&cmds)? {
        let Some(data) = data else { continue };
        let decoded = rows::decode_partition(&plan.table, &data, now_seconds)?;
        let mut left = per_partition_limit;
        for r in decoded.result_rows() {
            if left == 0 {
                break;
            }
            if restrictions::passes(&plan.table, &plan.where_clause.filters, &r.columns, ctx)? {
                left -= 1;
                all.push((r.clustering.clone(), data.key.token.0, r));
            }
        }
    }
    all.sort_by(|a, b| if plan.reversed { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
    let mut out = Output {
        plan,
        rows: Vec::new(),
        bytes: 0,
        paged: false,
        aggregates: plan.aggregate.then(|| AggregateState::new(&plan.selectors)),
        remaining: limit,
        page_left: u64::MAX,
        last: None,
    };
    for (_, token, r) in all {
        if out.remaining == 0 {
            break;
        }
        out.push(&r, token, now_seconds)?;
    }
    Ok(out.finish())
}

impl Output<'_> {
    fn push(&mut self, r: &CqlRow, token: i64, now_seconds: u32) -> Result<()> {
        let _ = now_seconds;
        if let Some(agg) = &mut self.aggregates {
            agg.add(&self.plan.selectors, r, token)?;
            return Ok(());
        }
        let mut row = Vec::with_capacity(self.plan.selectors.len());
        for s in &self.plan.selectors {
            let v = eval_selector(s, r, token)?;
            self.bytes += 4 + v.as_ref().map_or(0, Bytes::len);
            row.push(v);
        }
        self.rows.push(row);
        self.remaining = self.remaining.saturating_sub(1);
        self.page_left = self.page_left.saturating_sub(1);
        if self.bytes >= MAX_RESULT_BYTES {
            if !self.paged {
                return Err(Error::invalid(format!(
                    "The result of this unpaged query exceeds {MAX_RESULT_BYTES} bytes; page it (set a fetch size) or add a LIMIT"
                )));
            }
            self.page_left = 0;
        }
        Ok(())
    }

    fn finish(self) -> ResultSet {
        self.finish_with_more(false)
    }

    fn finish_with_more(mut self, more: bool) -> ResultSet {
        let rows = match self.aggregates.take() {
            Some(agg) => vec![agg.finish(&self.plan.selectors)],
            None => std::mem::take(&mut self.rows),
        };
        let paging_state = if more && self.remaining > 0 {
            self.last.take().map(|(key, clustering, left)| {
                PagingState {
                    key,
                    clustering: (!clustering.is_empty()).then_some(clustering),
                    remaining: u32::try_from(self.remaining).unwrap_or(u32::MAX),
                    remaining_in_partition: u32::try_from(left).unwrap_or(u32::MAX),
                }
                .encode()
            })
        } else {
            None
        };
        ResultSet { columns: self.plan.columns.clone(), rows, paging_state }
    }
}

fn eval_selector(s: &Sel, r: &CqlRow, token: i64) -> Result<Option<Bytes>> {
    Ok(match s {
        Sel::Column(i) => r.columns.get(*i).and_then(|c| c.as_ref()).map(|c| c.bytes.clone()),
        Sel::WriteTime(i) => r
            .columns
            .get(*i)
            .and_then(|c| c.as_ref())
            .map(|c| Bytes::copy_from_slice(&c.timestamp.to_be_bytes())),
        Sel::Ttl(i) => r
            .columns
            .get(*i)
            .and_then(|c| c.as_ref())
            .and_then(|c| c.ttl)
            .map(|t| Bytes::copy_from_slice(&t.to_be_bytes())),
        Sel::Token => Some(Bytes::copy_from_slice(&token.to_be_bytes())),
        Sel::Const(v) => v.as_ref().map(|v| Bytes::from(types::encode(v))),
        Sel::Scalar { function, arg, arg_ty } => {
            let Some(bytes) = eval_selector(arg, r, token)? else { return Ok(None) };
            let v = match function {
                Scalar::BlobAs => types::decode(arg_ty, &bytes).map_err(|e| Error::invalid(e.to_string()))?,
                Scalar::AsBlob => Value::Blob(bytes),
                Scalar::Cast => {
                    let v = types::decode(arg_ty, &bytes).map_err(|e| Error::Server(e.to_string()))?;
                    return Ok(Some(Bytes::from(types::encode(&Value::Text(types::to_display(&v))))));
                }
                _ => {
                    let v = types::decode(arg_ty, &bytes).map_err(|e| Error::Server(e.to_string()))?;
                    let ms = match v {
                        Value::Timeuuid(u) => {
                            types::timeuuid_to_unix_ms(&u).map_err(|e| Error::Server(e.to_string()))?
                        }
                        Value::Timestamp(ms) => ms,
                        Value::Date(d) => types::date_to_timestamp(d),
                        _ => return Ok(None),
                    };
                    match function {
                        Scalar::ToTimestamp => Value::Timestamp(ms),
                        Scalar::ToDate => {
                            Value::Date(types::to_date(ms).map_err(|e| Error::invalid(e.to_string()))?)
                        }
                        _ => Value::Bigint(ms),
                    }
                }
            };
            Some(Bytes::from(types::encode(&v)))
        }
        Sel::Aggregate { .. } => None,
    })
}

/// Running state of aggregate selectors.
#[derive(Debug)]
struct AggregateState {
    values: Vec<AggValue>,
    first_row: Option<Vec<Option<Bytes>>>,
}

#[derive(Debug, Clone)]
enum AggValue {
    Count(i64),
    Best(Option<Value>),
    Sum { sum: Option<Value>, count: i64 },
    None,
}

impl AggregateState {
    fn new(selectors: &[Sel]) -> AggregateState {
        AggregateState {
            values: selectors
                .iter()
                .map(|s| match s {
                    Sel::Aggregate { function: Aggregate::CountRows | Aggregate::Count, .. } => {
                        AggValue::Count(0)
                    }
                    Sel::Aggregate { function: Aggregate::Min | Aggregate::Max, .. } => AggValue::Best(None),
                    Sel::Aggregate { function: Aggregate::Sum | Aggregate::Avg, .. } => {
                        AggValue::Sum { sum: None, count: 0 }
                    }
                    _ => AggValue::None,
                })
                .collect(),
            first_row: None,
        }
    }

    fn add(&mut self, selectors: &[Sel], r: &CqlRow, token: i64) -> Result<()> {
        if self.first_row.is_none() {
            let mut first = Vec::new();
            for s in selectors {
                first.push(eval_selector(s, r, token)?);
            }
            self.first_row = Some(first);
        }
        for (s, v) in selectors.iter().zip(self.values.iter_mut()) {
            let Sel::Aggregate { function, arg, ty } = s else { continue };
            let input = match arg {
                Some(a) => match eval_selector(a, r, token)? {
                    Some(b) => Some(
                        types::decode(ty_of_arg(*function, ty), &b)
                            .map_err(|e| Error::Server(e.to_string()))?,
                    ),
                    None => None,
                },
                None => None,
            };
            match (function, v) {
                (Aggregate::CountRows, AggValue::Count(n)) => *n += 1,
                (Aggregate::Count, AggValue::Count(n)) if input.is_some() => *n += 1,
                (Aggregate::Min | Aggregate::Max, AggValue::Best(best)) => {
                    if let Some(x) = input {
                        let replace = match best {
                            None => true,
                            Some(b) => {
                                let c = types::compare(ty, &x, b);
                                if *function == Aggregate::Min {
                                    c.is_lt()
                                } else {
                                    c.is_gt()
                                }
                            }
                        };
                        if replace {
                            *best = Some(x);
                        }
                    }
                }
                (Aggregate::Sum | Aggregate::Avg, AggValue::Sum { sum, count }) => {
                    if let Some(x) = input {
                        *count += 1;
                        *sum = Some(match sum.take() {
                            None => x,
                            Some(s) => add_values(&s, &x)?,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn finish(self, selectors: &[Sel]) -> Vec<Option<Bytes>> {
        let first = self.first_row.unwrap_or_else(|| vec![None; selectors.len()]);
        selectors
            .iter()
            .zip(self.values)
            .zip(first)
            .map(|((s, v), first)| match (s, v) {
                (_, AggValue::Count(n)) => Some(Bytes::copy_from_slice(&n.to_be_bytes())),
                (_, AggValue::Best(b)) => b.map(|v| Bytes::from(types::encode(&v))),
                (Sel::Aggregate { function: Aggregate::Avg, ty, .. }, AggValue::Sum { sum, count }) => {
                    let v = sum.map_or_else(|| zero_of(ty), |s| divide(&s, count));
                    v.map(|v| Bytes::from(types::encode(&v)))
                }
                (Sel::Aggregate { ty, .. }, AggValue::Sum { sum, .. }) => {
                    sum.or_else(|| zero_of(ty).flatten_opt()).map(|v| Bytes::from(types::encode(&v)))
                }
                (_, _) => first,
            })
            .collect()
    }
}

trait FlattenOpt {
    fn flatten_opt(self) -> Option<Value>;
}

impl FlattenOpt for Option<Value> {
    fn flatten_opt(self) -> Option<Value> {
        self
    }
}

fn ty_of_arg(_f: Aggregate, ty: &CqlType) -> &CqlType {
    ty
}

fn zero_of(ty: &CqlType) -> Option<Value> {
    Some(match ty {
        CqlType::Int => Value::Int(0),
        CqlType::Bigint | CqlType::Counter => Value::Bigint(0),
        CqlType::Smallint => Value::Smallint(0),
        CqlType::Tinyint => Value::Tinyint(0),
        CqlType::Float => Value::Float(0.0),
        CqlType::Double => Value::Double(0.0),
        CqlType::Varint => Value::Varint(0.into()),
        CqlType::Decimal => Value::Decimal(0.into()),
        _ => return None,
    })
}

fn add_values(a: &Value, b: &Value) -> Result<Value> {
    // Cassandra's sum keeps the argument type and wraps on overflow for fixed-width integers.
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(x.wrapping_add(*y)),
        (Value::Bigint(x), Value::Bigint(y)) => Value::Bigint(x.wrapping_add(*y)),
        (Value::Smallint(x), Value::Smallint(y)) => Value::Smallint(x.wrapping_add(*y)),
        (Value::Tinyint(x), Value::Tinyint(y)) => Value::Tinyint(x.wrapping_add(*y)),
        (Value::Float(x), Value::Float(y)) => Value::Float(x + y),
        (Value::Double(x), Value::Double(y)) => Value::Double(x + y),
        (Value::Varint(x), Value::Varint(y)) => Value::Varint(x + y),
        (Value::Decimal(x), Value::Decimal(y)) => Value::Decimal(x + y),
        _ => return Err(Error::Server("sum of mismatched values".into())),
    })
}

fn divide(sum: &Value, count: i64) -> Option<Value> {
    if count == 0 {
        return None;
    }
    Some(match sum {
        Value::Int(x) => Value::Int((i64::from(*x) / count) as i32),
        Value::Bigint(x) => Value::Bigint(x / count),
        Value::Smallint(x) => Value::Smallint((i64::from(*x) / count) as i16),
        Value::Tinyint(x) => Value::Tinyint((i64::from(*x) / count) as i8),
        Value::Float(x) => Value::Float(x / count as f32),
        Value::Double(x) => Value::Double(x / count as f64),
        Value::Varint(x) => Value::Varint(x / count),
        Value::Decimal(x) => Value::Decimal(x / bigdecimal::BigDecimal::from(count)),
        _ => return None,
    })
}
