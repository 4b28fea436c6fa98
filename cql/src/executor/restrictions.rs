//! WHERE clauses: which partitions and which clustering slices a statement touches, and what
//! is left to filter row by row, with Cassandra's rules for what may be restricted how.

use std::cmp::Ordering;

use bytes::Bytes;
use sibyl_engine::{Bound, Order, Slice, Token};

use super::expr::{self, BindSpecs, EvalContext, Evaluated, Expr, Receiver};
use crate::ast::{InValues, Operator, Relation, RelationLhs, Term};
use crate::error::{Error, Result};
use crate::rows;
use crate::schema::{ColumnKind, TableMetadata};
use crate::types::{self, CqlType, Value};

/// Cassandra's message for a query that needs ALLOW FILTERING.
pub const ALLOW_FILTERING_MESSAGE: &str = "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

/// Most partition keys or clustering prefixes an IN cartesian product may produce (Cassandra's
/// `max_clustering_key_restrictions_per_query` style guard against huge products).
pub const MAX_CARTESIAN_PRODUCT: usize = 100;

/// `=` or `IN` on one column.
#[derive(Debug, Clone)]
pub enum EqOrIn {
    /// `c = x`.
    Eq(Expr),
    /// `c IN (x, y)`.
    In(Vec<Expr>),
    /// `c IN ?` (a list).
    InMarker(Expr),
}

impl EqOrIn {
    /// The values, where null is allowed (IF conditions).
    pub fn eval_nullable(&self, ctx: &dyn EvalContext) -> Result<Vec<Option<Value>>> {
        let one = |e: &Expr| -> Result<Option<Value>> {
            match e.eval(ctx)? {
                Evaluated::Value(v) => Ok(Some(v)),
                Evaluated::Null => Ok(None),
                Evaluated::Unset => Err(Error::invalid("Invalid unset value in IN condition")),
            }
        };
        match self {
            EqOrIn::Eq(e) => Ok(vec![one(e)?]),
            EqOrIn::In(es) => es.iter().map(one).collect(),
            EqOrIn::InMarker(e) => match e.eval(ctx)? {
                Evaluated::Value(Value::List(items)) => Ok(items.into_iter().map(Some).collect()),
                _ => Err(Error::invalid("Invalid null value for IN condition")),
            },
        }
    }

    fn eval(&self, ctx: &dyn EvalContext, what: &str) -> Result<Vec<Value>> {
        match self {
            EqOrIn::Eq(e) => Ok(vec![e.eval(ctx)?.required(what)?]),
            EqOrIn::In(es) => es.iter().map(|e| e.eval(ctx)?.required(what)).collect(),
            EqOrIn::InMarker(e) => match e.eval(ctx)? {
                Evaluated::Value(Value::List(items)) => Ok(items),
                Evaluated::Value(_) => Err(Error::Server("IN marker bound to a non-list".into())),
                Evaluated::Null | Evaluated::Unset => {
                    Err(Error::invalid(format!("Invalid null value for IN restriction on {what}")))
                }
            },
        }
    }
}

/// One end of a slice.
#[derive(Debug, Clone)]
pub struct SliceEnd {
    /// Value (a tuple for multi-column slices).
    pub value: Expr,
    /// Inclusive.
    pub inclusive: bool,
}

/// A slice over clustering columns starting at index `first` (one column, or several for
/// `(a, b) > (1, 2)`).
#[derive(Debug, Clone)]
pub struct ClusteringSlice {
    /// Index (among clustering columns) of the first column.
    pub first: usize,
    /// Number of columns (1 for a single-column slice).
    pub width: usize,
    /// Lower end (in the columns' declared CQL order, not byte order).
    pub lower: Option<SliceEnd>,
    /// Upper end.
    pub upper: Option<SliceEnd>,
}

/// Clustering restrictions usable to build slices: `=`/`IN` on a prefix, then maybe a slice.
#[derive(Debug, Clone, Default)]
pub struct ClusteringRestrictions {
    /// `=`/`IN` per leading clustering column (a multi-column `IN` covers several).
    pub prefix: Vec<PrefixPart>,
    /// The slice after the prefix.
    pub slice: Option<ClusteringSlice>,
}

/// Part of the clustering prefix.
#[derive(Debug, Clone)]
pub enum PrefixPart {
    /// One column.
    Single(EqOrIn),
    /// `(a, b) = (..)` or `(a, b) IN (..)` over `width` columns (values are tuples).
    Multi {
        /// Columns covered.
        width: usize,
        /// Tuples.
        values: EqOrIn,
    },
}

/// A restriction checked row by row (needs ALLOW FILTERING unless it is on a key column the
/// read already narrows).
#[derive(Debug, Clone)]
pub struct Filter {
    /// Column index in the table.
    pub column: usize,
    /// Operator.
    pub op: Operator,
    /// Right side (for IN: a list).
    pub value: FilterValue,
}

/// Right side of a filter.
#[derive(Debug, Clone)]
pub enum FilterValue {
    /// A single value.
    One(Expr),
    /// IN values.
    In(EqOrIn),
    /// `IS NOT NULL`.
    NotNull,
}

/// `token(pk) > x AND token(pk) <= y`.
#[derive(Debug, Clone, Default)]
pub struct TokenRestriction {
    /// Lower end.
    pub lower: Option<SliceEnd>,
    /// Upper end.
    pub upper: Option<SliceEnd>,
    /// `token(pk) = x`.
    pub eq: Option<Expr>,
}

/// A resolved WHERE clause.
#[derive(Debug, Clone, Default)]
pub struct WhereClause {
    /// `=`/`IN` per partition key column, when every partition key column has one.
    pub partition_keys: Option<Vec<EqOrIn>>,
    /// Token range restriction.
    pub token: Option<TokenRestriction>,
    /// Clustering restrictions.
    pub clustering: ClusteringRestrictions,
    /// Everything else, checked row by row.
    pub filters: Vec<Filter>,
    /// Whether any clustering column is restricted at all.
    pub has_clustering_restrictions: bool,
}

/// What the statement kind allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// SELECT: everything, filtering with ALLOW FILTERING.
    Select,
    /// UPDATE/INSERT: full primary key by `=`/`IN`.
    Update,
    /// DELETE: partition key by `=`/`IN`, clustering prefix and slices.
    Delete,
}

/// A multi-column relation: columns, operator, value or IN values.
type MultiRelation = (Vec<usize>, Operator, Option<Expr>, Option<EqOrIn>);

/// Resolves the WHERE clause of a statement on `table`.
pub fn resolve(
    table: &TableMetadata,
    relations: &[Relation],
    kind: StatementKind,
    allow_filtering: bool,
    binds: &mut BindSpecs,
) -> Result<WhereClause> {
    let pk_len = table.partition_key_len();
    let ck_len = table.clustering_len();
    let mut pk: Vec<Option<EqOrIn>> = vec![None; pk_len];
    let mut ck: Vec<Vec<(Operator, Expr)>> = vec![Vec::new(); ck_len];
    let mut ck_in: Vec<Option<EqOrIn>> = vec![None; ck_len];
    let mut multi: Vec<MultiRelation> = Vec::new();
    let mut out = WhereClause::default();
    let mut pk_filters: Vec<Filter> = Vec::new();

    let column = |name: &str| -> Result<(usize, &crate::schema::ColumnMetadata)> {
        let i = table.column_index(name).ok_or_else(|| {
            Error::invalid(format!("Undefined column name {name} in table {}.{}", table.keyspace, table.name))
        })?;
        Ok((i, &table.columns[i]))
    };
    for rel in relations {
        match rel {
            Relation::Compare { lhs: RelationLhs::Column(name), op, rhs } => {
                let (i, col) = column(name)?;
                if col.ty.is_multi_cell()
                    && matches!(
                        op,
                        Operator::Eq | Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte
                    )
                {
                    return Err(Error::invalid(format!(
                        "Collection column '{name}' ({}) cannot be restricted by a '{}' relation",
                        col.ty,
                        op.as_str()
                    )));
                }
                let receiver = match op {
                    Operator::Contains => {
                        Receiver::new(format!("value({name})"), element_type(&col.ty, name, false)?)
                    }
                    Operator::ContainsKey => {
                        Receiver::new(format!("key({name})"), element_type(&col.ty, name, true)?)
                    }
                    _ => Receiver::new(name.clone(), col.ty.clone()),
                };
                let e = expr::resolve(rhs, &receiver, binds)?;
                match (col.kind, op) {
                    (ColumnKind::PartitionKey, Operator::Eq) => {
                        if pk[col_pos(col)].is_some() {
                            return Err(Error::invalid(format!("{name} cannot be restricted by more than one relation if it includes an Equal")));
                        }
                        pk[col_pos(col)] = Some(EqOrIn::Eq(e));
                    }
                    (
                        ColumnKind::Clustering,
                        Operator::Eq | Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte,
                    ) => {
                        ck[col_pos(col)].push((*op, e));
                    }
                    (
                        ColumnKind::PartitionKey,
                        Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte,
                    ) if kind == StatementKind::Select => {
                        pk_filters.push(Filter { column: i, op: *op, value: FilterValue::One(e) });
                    }
                    (ColumnKind::PartitionKey, _) if kind != StatementKind::Select => {
                        return Err(Error::invalid("Only EQ and IN relation are supported on the partition key (unless you use the token() function or allow filtering)".to_string()));
                    }
                    _ => {
                        if kind != StatementKind::Select {
                            return Err(Error::invalid(format!(
                                "Non PRIMARY KEY columns found in where clause: {name} "
                            )));
                        }
                        if *op == Operator::Like {
                            return Err(Error::invalid(
                                "LIKE restriction is only supported on properly indexed columns",
                            ));
                        }
                        out.filters.push(Filter { column: i, op: *op, value: FilterValue::One(e) });
                    }
                }
            }
            Relation::In { lhs: RelationLhs::Column(name), values } => {
                let (i, col) = column(name)?;
                let in_values = resolve_in(values, name, &col.ty, binds)?;
                match col.kind {
                    ColumnKind::PartitionKey => {
                        if pk[col_pos(col)].is_some() {
                            return Err(Error::invalid(format!(
                                "{name} cannot be restricted by more than one relation if it includes a IN"
                            )));
                        }
                        pk[col_pos(col)] = Some(in_values);
                    }
                    ColumnKind::Clustering => {
                        if ck_in[col_pos(col)].is_some() || !ck[col_pos(col)].is_empty() {
                            return Err(Error::invalid(format!(
                                "{name} cannot be restricted by more than one relation if it includes a IN"
                            )));
                        }
                        ck_in[col_pos(col)] = Some(in_values);
                    }
                    _ => {
                        if kind != StatementKind::Select {
                            return Err(Error::invalid(format!(
                                "Non PRIMARY KEY columns found in where clause: {name} "
                            )));
                        }
                        out.filters.push(Filter {
                            column: i,
                            op: Operator::Eq,
                            value: FilterValue::In(in_values),
                        });
                    }
                }
            }
            Relation::Compare { lhs: RelationLhs::Tuple(names), op, rhs } => {
                let idx = tuple_columns(table, names)?;
                let ty = CqlType::Tuple(idx.iter().map(|&i| table.columns[i].ty.clone()).collect());
                let e = expr::resolve(rhs, &Receiver::new(format!("({})", names.join(",")), ty), binds)?;
                if *op == Operator::Neq
                    || matches!(op, Operator::Contains | Operator::ContainsKey | Operator::Like)
                {
                    return Err(Error::invalid(format!(
                        "Unsupported \"{}\" relation: {}",
                        op.as_str(),
                        names.join(",")
                    )));
                }
                multi.push((idx, *op, Some(e), None));
            }
            Relation::In { lhs: RelationLhs::Tuple(names), values } => {
                let idx = tuple_columns(table, names)?;
                let ty = CqlType::Tuple(idx.iter().map(|&i| table.columns[i].ty.clone()).collect());
                let in_values = resolve_in(values, &format!("({})", names.join(",")), &ty, binds)?;
                multi.push((idx, Operator::Eq, None, Some(in_values)));
            }
            Relation::Compare { lhs: RelationLhs::Token(names), op, rhs } => {
                let expected: Vec<&str> = table.partition_key().map(|c| c.name.as_str()).collect();
                if names.iter().map(String::as_str).collect::<Vec<_>>() != expected {
                    return Err(Error::invalid("The token() function must be applied to all partition key components or none of them".to_string()));
                }
                if kind != StatementKind::Select {
                    return Err(Error::invalid(
                        "The token function cannot be used in WHERE clauses for UPDATE and DELETE statements",
                    ));
                }
                let e = expr::resolve(rhs, &Receiver::new("partition key token", CqlType::Bigint), binds)?;
                let t = out.token.get_or_insert_with(TokenRestriction::default);
                match op {
                    Operator::Eq => t.eq = Some(e),
                    Operator::Gt | Operator::Gte => {
                        t.lower = Some(SliceEnd { value: e, inclusive: *op == Operator::Gte })
                    }
                    Operator::Lt | Operator::Lte => {
                        t.upper = Some(SliceEnd { value: e, inclusive: *op == Operator::Lte })
                    }
                    _ => {
                        return Err(Error::invalid(format!(
                            "Unsupported \"{}\" relation on token()",
                            op.as_str()
                        )))
                    }
                }
            }
            Relation::IsNotNull { column: name } => {
                let (i, _) = column(name)?;
                if kind != StatementKind::Select {
                    return Err(Error::invalid("IS NOT NULL is only supported in SELECT"));
                }
                out.filters.push(Filter { column: i, op: Operator::Neq, value: FilterValue::NotNull });
            }
            Relation::Compare { lhs: RelationLhs::MapElement { .. }, .. }
            | Relation::In { lhs: RelationLhs::MapElement { .. }, .. } => {
                return Err(Error::invalid("Map-entry relations are not supported"));
            }
            Relation::In { lhs: RelationLhs::Token(_), .. } => {
                return Err(Error::invalid("IN is not supported on token()"));
            }
        }
    }

    // Partition key.
    let restricted_pk = pk.iter().filter(|p| p.is_some()).count();
    if restricted_pk == pk_len && out.token.is_none() {
        out.partition_keys = Some(pk.into_iter().flatten().collect());
    } else if restricted_pk > 0 {
        if kind != StatementKind::Select {
            let missing =
                table.partition_key().zip(&pk).find(|(_, p)| p.is_none()).map(|(c, _)| c.name.clone());
            return Err(Error::invalid(format!(
                "Some partition key parts are missing: {}",
                missing.unwrap_or_default()
            )));
        }
        for (c, p) in table.partition_key().zip(pk) {
            if let Some(p) = p {
                let i = table.column_index(&c.name).unwrap_or(0);
                let value = match p {
                    EqOrIn::Eq(e) => FilterValue::One(e),
                    other => FilterValue::In(other),
                };
                pk_filters.push(Filter { column: i, op: Operator::Eq, value });
            }
        }
    } else if kind != StatementKind::Select {
        let missing = table.partition_key().next().map(|c| c.name.clone()).unwrap_or_default();
        return Err(Error::invalid(format!("Some partition key parts are missing: {missing}")));
    }
    let needs_filtering_for_pk = !pk_filters.is_empty();
    out.filters.extend(pk_filters);

    // Clustering: a prefix of = / IN, then at most one slice.
    let mut clustering_filters = Vec::new();
    let mut i = 0;
    let mut prefix_open = true;
    // Multi-column relations must start at the first unrestricted clustering column.
    let mut multi = multi.into_iter().peekable();
    out.has_clustering_restrictions = ck.iter().any(|c| !c.is_empty()) || ck_in.iter().any(Option::is_some);
    while i < ck_len {
        if let Some((cols, _, _, _)) = multi.peek() {
            if cols.first() == Some(&(table.partition_key_len() + i)) && prefix_open {
                out.has_clustering_restrictions = true;
                let Some((cols, op, e, in_values)) = multi.next() else { break };
                let width = cols.len();
                match (op, e, in_values) {
                    (Operator::Eq, Some(e), None) => {
                        out.clustering.prefix.push(PrefixPart::Multi { width, values: EqOrIn::Eq(e) })
                    }
                    (_, None, Some(v)) => out.clustering.prefix.push(PrefixPart::Multi { width, values: v }),
                    (op, Some(e), None) => {
                        let end =
                            SliceEnd { value: e, inclusive: matches!(op, Operator::Gte | Operator::Lte) };
                        let mut s = ClusteringSlice { first: i, width, lower: None, upper: None };
                        if matches!(op, Operator::Gt | Operator::Gte) {
                            s.lower = Some(end);
                        } else {
                            s.upper = Some(end);
                        }
                        // A second multi-column relation may close the slice.
                        if let Some((cols2, op2, Some(_), None)) = multi.peek() {
                            if cols2.first() == Some(&(table.partition_key_len() + i)) {
                                let op2 = *op2;
                                if let Some((_, _, Some(e2), _)) = multi.next() {
                                    let end2 = SliceEnd {
                                        value: e2,
                                        inclusive: matches!(op2, Operator::Gte | Operator::Lte),
                                    };
                                    if matches!(op2, Operator::Gt | Operator::Gte) {
                                        s.lower = Some(end2);
                                    } else {
                                        s.upper = Some(end2);
                                    }
                                }
                            }
                        }
                        check_uniform_order(table, i, width)?;
                        out.clustering.slice = Some(s);
                        prefix_open = false;
                    }
                    _ => return Err(Error::Server("unexpected multi-column relation".into())),
                }
                i += width;
                continue;
            }
        }
        let eq = ck[i].iter().find(|(op, _)| *op == Operator::Eq).map(|(_, e)| e.clone());
        let slices: Vec<&(Operator, Expr)> = ck[i].iter().filter(|(op, _)| *op != Operator::Eq).collect();
        let col_index = table.partition_key_len() + i;
        if !prefix_open {
            for (op, e) in &ck[i] {
                clustering_filters.push(Filter {
                    column: col_index,
                    op: *op,
                    value: FilterValue::One(e.clone()),
                });
            }
            if let Some(v) = ck_in[i].take() {
                clustering_filters.push(Filter {
                    column: col_index,
                    op: Operator::Eq,
                    value: FilterValue::In(v),
                });
            }
            i += 1;
            continue;
        }
        if let Some(e) = eq {
            if ck[i].len() > 1 {
                return Err(Error::invalid(format!(
                    "{} cannot be restricted by more than one relation if it includes an Equal",
                    table.columns[col_index].name
                )));
            }
            out.clustering.prefix.push(PrefixPart::Single(EqOrIn::Eq(e)));
        } else if let Some(v) = ck_in[i].take() {
            out.clustering.prefix.push(PrefixPart::Single(v));
        } else if !slices.is_empty() {
            let mut s = ClusteringSlice { first: i, width: 1, lower: None, upper: None };
            for (op, e) in slices {
                let end =
                    SliceEnd { value: e.clone(), inclusive: matches!(op, Operator::Gte | Operator::Lte) };
                match op {
                    Operator::Gt | Operator::Gte => {
                        if s.lower.is_some() {
                            return Err(Error::invalid(format!(
                                "More than one restriction was found for the start bound on {}",
                                table.columns[col_index].name
                            )));
                        }
                        s.lower = Some(end);
                    }
                    _ => {
                        if s.upper.is_some() {
                            return Err(Error::invalid(format!(
                                "More than one restriction was found for the end bound on {}",
                                table.columns[col_index].name
                            )));
                        }
                        s.upper = Some(end);
                    }
                }
            }
            out.clustering.slice = Some(s);
            prefix_open = false;
        } else {
            prefix_open = false;
        }
        i += 1;
    }
    if multi.next().is_some() {
        return Err(Error::invalid("Multi-column relations must restrict clustering columns in order, starting at the first one not restricted by '='"));
    }
    let needs_filtering_for_ck = !clustering_filters.is_empty();
    out.filters.extend(clustering_filters);

    // What each statement kind accepts.
    match kind {
        StatementKind::Update => {
            // A full clustering key is required unless only static columns are written; the
            // statement checks that, knowing which columns it writes.
            if out.clustering.slice.is_some() || needs_filtering_for_ck {
                let missing = table
                    .clustering()
                    .nth(out.clustering.prefix_width())
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                return Err(Error::invalid(format!("Some clustering keys are missing: {missing}")));
            }
        }
        StatementKind::Delete => {
            if needs_filtering_for_ck {
                return Err(Error::invalid("A DELETE may only restrict clustering columns by a prefix of '=' and 'IN' followed by one range"));
            }
        }
        StatementKind::Select => {
            let regular_filters = out.filters.iter().any(|f| !table.columns[f.column].kind.is_primary_key());
            let partition_scan = out.partition_keys.is_none();
            if !allow_filtering
                && (needs_filtering_for_pk
                    || needs_filtering_for_ck
                    || regular_filters
                    || (partition_scan && out.has_clustering_restrictions))
            {
                return Err(Error::invalid(ALLOW_FILTERING_MESSAGE));
            }
        }
    }
    Ok(out)
}

fn check_uniform_order(table: &TableMetadata, first: usize, width: usize) -> Result<()> {
    let orders: Vec<Order> = table.clustering().skip(first).take(width).map(|c| c.order).collect();
    if orders.windows(2).any(|w| w[0] != w[1]) {
        return Err(Error::invalid(
            "Multi-column slices over clustering columns of mixed ASC/DESC order are not supported",
        ));
    }
    Ok(())
}

impl ClusteringRestrictions {
    /// Number of clustering columns fixed by `=`/`IN`.
    #[must_use]
    pub fn prefix_width(&self) -> usize {
        self.prefix
            .iter()
            .map(|p| match p {
                PrefixPart::Single(_) => 1,
                PrefixPart::Multi { width, .. } => *width,
            })
            .sum()
    }

    /// Every clustering prefix the `=`/`IN` restrictions select, in clustering order.
    pub fn prefixes(&self, table: &TableMetadata, ctx: &dyn EvalContext) -> Result<Vec<Vec<Value>>> {
        let mut out: Vec<Vec<Value>> = vec![Vec::new()];
        let mut col = 0;
        for part in &self.prefix {
            let (width, choices): (usize, Vec<Vec<Value>>) = match part {
                PrefixPart::Single(v) => {
                    let name = table.clustering().nth(col).map(|c| c.name.clone()).unwrap_or_default();
                    (1, v.eval(ctx, &name)?.into_iter().map(|x| vec![x]).collect())
                }
                PrefixPart::Multi { width, values } => {
                    let tuples = values.eval(ctx, "clustering tuple")?;
                    let mut rows = Vec::new();
                    for t in tuples {
                        let Value::Tuple(items) = t else {
                            return Err(Error::Server("tuple expected".into()));
                        };
                        let items: Option<Vec<Value>> = items.into_iter().collect();
                        rows.push(items.ok_or_else(|| {
                            Error::invalid("Invalid null value in condition for clustering column")
                        })?);
                    }
                    (*width, rows)
                }
            };
            col += width;
            let mut next = Vec::with_capacity(out.len() * choices.len());
            for p in &out {
                for c in &choices {
                    let mut v = p.clone();
                    v.extend(c.iter().cloned());
                    next.push(v);
                }
            }
            if next.len() > MAX_CARTESIAN_PRODUCT {
                return Err(Error::invalid(format!(
                    "Clustering-key restrictions select {} prefixes, more than the limit of {MAX_CARTESIAN_PRODUCT}",
                    next.len()
                )));
            }
            out = next;
        }
        // Sort by clustering order and remove duplicates: slices must be sorted and disjoint.
        let keyed: Vec<(Bytes, Vec<Value>)> = out
            .into_iter()
            .map(|p| Ok((rows::clustering_prefix(table, &p)?.key(), p)))
            .collect::<Result<_>>()?;
        let mut keyed = keyed;
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        Ok(keyed.into_iter().map(|(_, p)| p).collect())
    }

    /// The clustering slices to read, sorted and disjoint, in byte order.
    pub fn slices(&self, table: &TableMetadata, ctx: &dyn EvalContext) -> Result<Vec<Slice>> {
        let prefixes = self.prefixes(table, ctx)?;
        let mut out = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            let builder = rows::clustering_prefix(table, &p)?;
            let Some(slice) = &self.slice else {
                out.push(if p.is_empty() { Slice::all() } else { Slice::prefix(&builder) });
                continue;
            };
            let descending =
                table.clustering().nth(slice.first).is_some_and(|c| c.order == Order::Descending);
            let end_bound = |end: &SliceEnd, is_lower: bool| -> Result<Option<Bound>> {
                let v = match end.value.eval(ctx)? {
                    Evaluated::Value(v) => v,
                    _ => return Err(Error::invalid("Invalid null value in condition for clustering column")),
                };
                let values: Vec<Value> = if slice.width > 1 {
                    let Value::Tuple(items) = v else { return Err(Error::Server("tuple expected".into())) };
                    items
                        .into_iter()
                        .map(|x| {
                            x.ok_or_else(|| {
                                Error::invalid("Invalid null value in condition for clustering column")
                            })
                        })
                        .collect::<Result<_>>()?
                } else {
                    vec![v]
                };
                let mut full = p.clone();
                full.extend(values);
                let b = rows::clustering_prefix(table, &full)?;
                // In byte order a lower CQL bound is a lower byte bound for ascending columns
                // and an upper one for descending columns.
                let before = if is_lower { !end.inclusive } else { end.inclusive };
                let before = if descending { !before } else { before };
                Ok(Some(if before { b.after() } else { b.before() }))
            };
            let lower = slice.lower.as_ref().map(|e| end_bound(e, true)).transpose()?.flatten();
            let upper = slice.upper.as_ref().map(|e| end_bound(e, false)).transpose()?.flatten();
            let (start_default, end_default) = if p.is_empty() {
                (Bound::bottom(), Bound::top())
            } else {
                (builder.before(), builder.after())
            };
            let (start, end) = if descending { (upper, lower) } else { (lower, upper) };
            let s = Slice { start: start.unwrap_or(start_default), end: end.unwrap_or(end_default) };
            if !s.is_empty() {
                out.push(s);
            }
        }
        Ok(out)
    }
}

fn col_pos(col: &crate::schema::ColumnMetadata) -> usize {
    usize::try_from(col.position).unwrap_or(0)
}

fn tuple_columns(table: &TableMetadata, names: &[String]) -> Result<Vec<usize>> {
    let mut idx = Vec::with_capacity(names.len());
    for n in names {
        let i = table.column_index(n).ok_or_else(|| Error::invalid(format!("Undefined column name {n}")))?;
        if table.columns[i].kind != ColumnKind::Clustering {
            return Err(Error::invalid(format!(
                "Multi-column relations can only be applied to clustering columns but was applied to: {n}"
            )));
        }
        if let Some(&prev) = idx.last() {
            if i != prev + 1 {
                return Err(Error::invalid(format!(
                    "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: ({})",
                    names.join(", ")
                )));
            }
        }
        idx.push(i);
    }
    Ok(idx)
}

fn element_type(ty: &CqlType, name: &str, key: bool) -> Result<CqlType> {
    match (ty, key) {
        (CqlType::List { element, .. } | CqlType::Set { element, .. }, false) => Ok((**element).clone()),
        (CqlType::Map { value, .. }, false) => Ok((**value).clone()),
        (CqlType::Map { key, .. }, true) => Ok((**key).clone()),
        _ => Err(Error::invalid(format!(
            "Cannot use {} on non-{} column {name}",
            if key { "CONTAINS KEY" } else { "CONTAINS" },
            if key { "map" } else { "collection" }
        ))),
    }
}

pub(crate) fn resolve_in(
    values: &InValues,
    name: &str,
    ty: &CqlType,
    binds: &mut BindSpecs,
) -> Result<EqOrIn> {
    match values {
        InValues::Terms(terms) => {
            let r = Receiver::new(name.to_string(), ty.clone());
            Ok(EqOrIn::In(terms.iter().map(|t| expr::resolve(t, &r, binds)).collect::<Result<_>>()?))
        }
        InValues::Marker(m) => {
            let list = CqlType::List { element: Box::new(ty.clone()), frozen: false };
            let e = expr::resolve(
                &Term::BindMarker(m.clone()),
                &Receiver::new(format!("in({name})"), list),
                binds,
            )?;
            Ok(EqOrIn::InMarker(e))
        }
    }
}

/// Evaluates the partition keys (engine key bytes) selected by `=`/`IN`, deduplicated, in the
/// order given.
pub fn partition_keys(
    table: &TableMetadata,
    restrictions: &[EqOrIn],
    ctx: &dyn EvalContext,
) -> Result<Vec<Bytes>> {
    let mut keys: Vec<Vec<Bytes>> = vec![Vec::new()];
    for (r, c) in restrictions.iter().zip(table.partition_key()) {
        let values = r.eval(ctx, &c.name)?;
        let mut next = Vec::with_capacity(keys.len() * values.len());
        for k in &keys {
            for v in &values {
                let mut k = k.clone();
                k.push(Bytes::from(types::encode(v)));
                next.push(k);
            }
        }
        if next.len() > MAX_CARTESIAN_PRODUCT {
            return Err(Error::invalid(format!(
                "Partition-key restrictions select {} partitions, more than the limit of {MAX_CARTESIAN_PRODUCT}",
                next.len()
            )));
        }
        keys = next;
    }
    let mut out: Vec<Bytes> = Vec::with_capacity(keys.len());
    for k in keys {
        let key = rows::partition_key(table, &k)?;
        if !out.contains(&key) {
            out.push(key);
        }
    }
    Ok(out)
}

/// The token range selected by a token restriction (inclusive bounds), or `None` if empty.
pub fn token_range(t: &TokenRestriction, ctx: &dyn EvalContext) -> Result<Option<(Token, Token)>> {
    let value = |e: &Expr| -> Result<i64> {
        match e.eval(ctx)?.required("partition key token")? {
            Value::Bigint(v) => Ok(v),
            _ => Err(Error::Server("token bound is not a bigint".into())),
        }
    };
    if let Some(e) = &t.eq {
        let v = value(e)?;
        return Ok(Some((Token(v), Token(v))));
    }
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    if let Some(l) = &t.lower {
        let v = value(&l.value)?;
        if l.inclusive {
            lo = v;
        } else if v == i64::MAX {
            return Ok(None);
        } else {
            lo = v + 1;
        }
    }
    if let Some(u) = &t.upper {
        let v = value(&u.value)?;
        if u.inclusive {
            hi = v;
        } else if v == i64::MIN {
            return Ok(None);
        } else {
            hi = v - 1;
        }
    }
    // Cassandra treats the minimum token as "unbounded" on the upper side of a range.
    if t.upper.as_ref().is_some_and(|_| hi == i64::MIN) {
        hi = i64::MAX;
    }
    Ok((lo <= hi).then_some((Token(lo), Token(hi))))
}

/// Whether a row passes the filters.
pub fn passes(
    table: &TableMetadata,
    filters: &[Filter],
    row: &[Option<rows::ColumnValue>],
    ctx: &dyn EvalContext,
) -> Result<bool> {
    for f in filters {
        let col = &table.columns[f.column];
        let cell = row.get(f.column).and_then(|c| c.as_ref());
        if matches!(f.value, FilterValue::NotNull) {
            if cell.is_none() {
                return Ok(false);
            }
            continue;
        }
        let Some(cell) = cell else { return Ok(false) };
        let actual = types::decode(&col.ty, &cell.bytes).map_err(|e| Error::Server(e.to_string()))?;
        let ok = match (&f.value, f.op) {
            (FilterValue::In(values), _) => {
                let values = values.eval(ctx, &col.name)?;
                values.iter().any(|v| types::compare(&col.ty, &actual, v) == Ordering::Equal)
            }
            (FilterValue::One(e), Operator::Contains) => {
                let v = e.eval(ctx)?.required(&col.name)?;
                let elem_ty = element_type(&col.ty, &col.name, false)?;
                match &actual {
                    Value::List(items) | Value::Set(items) => {
                        items.iter().any(|x| types::compare(&elem_ty, x, &v).is_eq())
                    }
                    Value::Map(entries) => {
                        entries.iter().any(|(_, x)| types::compare(&elem_ty, x, &v).is_eq())
                    }
                    _ => false,
                }
            }
            (FilterValue::One(e), Operator::ContainsKey) => {
                let v = e.eval(ctx)?.required(&col.name)?;
                let key_ty = element_type(&col.ty, &col.name, true)?;
                match &actual {
                    Value::Map(entries) => {
                        entries.iter().any(|(k, _)| types::compare(&key_ty, k, &v).is_eq())
                    }
                    _ => false,
                }
            }
            (FilterValue::One(e), op) => {
                let v = match e.eval(ctx)? {
                    Evaluated::Value(v) => v,
                    _ => {
                        return Err(Error::invalid(format!("Unsupported null value for column {}", col.name)))
                    }
                };
                let c = types::compare(&col.ty, &actual, &v);
                match op {
                    Operator::Eq => c.is_eq(),
                    Operator::Neq => !c.is_eq(),
                    Operator::Lt => c.is_lt(),
                    Operator::Lte => c.is_le(),
                    Operator::Gt => c.is_gt(),
                    Operator::Gte => c.is_ge(),
                    _ => false,
                }
            }
            (FilterValue::NotNull, _) => true,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}
