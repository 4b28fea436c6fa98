//! SELECT, INSERT, UPDATE, DELETE, BATCH and their clauses.

use super::cursor::{Expected, Fail, PResult, Parser};
use super::lexer::TokenKind;
use crate::ast::{
    Assignment, BatchChild, BatchKind, BatchStatement, Condition, ConditionLhs, DeleteStatement, Deletion,
    IfClause, InValues, InsertStatement, InsertValues, JsonDefault, NativeType, Operator, Order, Ordering,
    Relation, RelationLhs, SelectStatement, Selection, Selector, SelectorExpr, Term, UpdateStatement,
    UsingClause,
};

/// Comparison operators (`relationType` in Cassandra's grammar).
const COMPARISONS: [(&str, Operator); 6] = [
    ("=", Operator::Eq),
    ("<", Operator::Lt),
    ("<=", Operator::Lte),
    (">", Operator::Gt),
    (">=", Operator::Gte),
    ("!=", Operator::Neq),
];

impl<'a> Parser<'a> {
    // ----- SELECT ----------------------------------------------------------------------------

    pub(crate) fn select_statement(&mut self) -> PResult<SelectStatement> {
        self.expect_kw("SELECT")?;
        // `json` and `distinct` are also valid column names: they are modifiers only when the
        // rest parses as a selection followed by FROM (like Cassandra's syntactic predicates).
        let mut json = false;
        let mut clause = None;
        if self.check_kw("json") {
            clause = self.speculate(|p| {
                p.advance();
                p.select_clause_before_from()
            })?;
            json = clause.is_some();
        }
        let (distinct, selection) = match clause {
            Some(c) => c,
            None => self.select_clause_before_from()?,
        };
        self.expect_kw("FROM")?;
        let table = self.qualified_name("table")?;
        let mut stmt = SelectStatement {
            json,
            distinct,
            selection,
            table,
            where_clause: Vec::new(),
            group_by: Vec::new(),
            order_by: Vec::new(),
            per_partition_limit: None,
            limit: None,
            allow_filtering: false,
        };
        if self.accept_kw("WHERE") {
            stmt.where_clause = self.where_clause()?;
        }
        if self.accept_kw("GROUP") {
            self.expect_kw("BY")?;
            loop {
                stmt.group_by.push(self.cident()?);
                if !self.accept_sym(",") {
                    break;
                }
            }
        }
        if self.accept_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let column = self.cident()?;
                let order = self.order_direction(false)?.unwrap_or(Order::Asc);
                stmt.order_by.push(Ordering { column, order });
                if !self.accept_sym(",") {
                    break;
                }
            }
        }
        if self.accept_kw("PER") {
            self.expect_kw("PARTITION")?;
            self.expect_kw("LIMIT")?;
            stmt.per_partition_limit = Some(self.int_value()?);
        }
        if self.accept_kw("LIMIT") {
            stmt.limit = Some(self.int_value()?);
        }
        if self.accept_kw("ALLOW") {
            self.expect_kw("FILTERING")?;
            stmt.allow_filtering = true;
        }
        Ok(stmt)
    }

    /// `ASC | DESC`, required or optional.
    pub(crate) fn order_direction(&mut self, required: bool) -> PResult<Option<Order>> {
        if self.accept_kw("ASC") {
            return Ok(Some(Order::Asc));
        }
        if self.accept_kw("DESC") {
            return Ok(Some(Order::Desc));
        }
        if required {
            Err(Fail)
        } else {
            Ok(None)
        }
    }

    /// `[DISTINCT] selection`, checking that FROM follows (not consumed).
    fn select_clause_before_from(&mut self) -> PResult<(bool, Selection)> {
        if self.check_kw("distinct") {
            let distinct = self.speculate(|p| {
                p.advance();
                let selection = p.selection()?;
                if p.check_kw("from") {
                    Ok(selection)
                } else {
                    p.fail(Expected::Keyword("FROM"))
                }
            })?;
            if let Some(selection) = distinct {
                return Ok((true, selection));
            }
        }
        let selection = self.selection()?;
        if self.check_kw("from") {
            Ok((false, selection))
        } else {
            self.fail(Expected::Keyword("FROM"))
        }
    }

    fn selection(&mut self) -> PResult<Selection> {
        if self.accept_sym("*") {
            return Ok(Selection::Wildcard);
        }
        let mut selectors = Vec::new();
        loop {
            let expr = self.selector()?;
            let alias = if self.accept_kw("AS") { Some(self.ident()?) } else { None };
            selectors.push(Selector { expr, alias });
            if !self.accept_sym(",") {
                return Ok(Selection::Selectors(selectors));
            }
        }
    }

    /// An unaliased selector, one nesting level deeper.
    fn selector(&mut self) -> PResult<SelectorExpr> {
        self.nested(|p| {
            let mut expr = p.selector_primary()?;
            loop {
                if p.accept_sym(".") {
                    let field = p.ident()?;
                    expr = SelectorExpr::Field { selector: Box::new(expr), field };
                } else if p.accept_sym("[") {
                    expr = p.selector_subscript(expr)?;
                } else {
                    return Ok(expr);
                }
            }
        })
    }

    /// After `[`: `key]`, `from..to]`, `from..]` or `..to]`.
    fn selector_subscript(&mut self, selector: SelectorExpr) -> PResult<SelectorExpr> {
        let selector = Box::new(selector);
        if self.accept_sym("..") {
            let to = self.term()?;
            self.expect_sym("]")?;
            return Ok(SelectorExpr::Slice { selector, from: None, to: Some(to) });
        }
        let key = self.term()?;
        if self.accept_sym("..") {
            let to = if self.accept_sym("]") {
                return Ok(SelectorExpr::Slice { selector, from: Some(key), to: None });
            } else {
                self.term()?
            };
            self.expect_sym("]")?;
            return Ok(SelectorExpr::Slice { selector, from: Some(key), to: Some(to) });
        }
        self.expect_sym("]")?;
        Ok(SelectorExpr::Element { selector, key })
    }

    fn selector_primary(&mut self) -> PResult<SelectorExpr> {
        let call = self.check_sym_at(1, "(");
        if call && self.check_kw("count") && self.check_sym_at(2, "*") {
            self.advance();
            self.advance();
            self.advance();
            self.expect_sym(")")?;
            return Ok(SelectorExpr::CountAll);
        }
        for (kw, make) in [
            ("writetime", SelectorExpr::WriteTime as fn(String) -> SelectorExpr),
            ("maxwritetime", SelectorExpr::MaxWriteTime),
            ("ttl", SelectorExpr::Ttl),
        ] {
            if call && self.check_kw(kw) {
                self.advance();
                self.advance();
                let column = self.cident()?;
                self.expect_sym(")")?;
                return Ok(make(column));
            }
        }
        if call && self.check_kw("cast") {
            self.advance();
            self.advance();
            let selector = self.selector()?;
            self.expect_kw("AS")?;
            let ty = self.native_type()?;
            self.expect_sym(")")?;
            return Ok(SelectorExpr::Cast { selector: Box::new(selector), ty });
        }
        if self.check_function_call_at(0) {
            let name = self.function_name()?;
            let args = self.function_args(Self::selector)?;
            return Ok(SelectorExpr::FunctionCall { name, args });
        }
        if self.check_ident_at(0) || matches!(&self.peek().kind, TokenKind::Quoted(q) if q.is_empty()) {
            return Ok(SelectorExpr::Column(self.cident()?));
        }
        if self.check_term_start_at(0) {
            return Ok(SelectorExpr::Term(self.term()?));
        }
        self.fail(Expected::What("selector"))
    }

    fn native_type(&mut self) -> PResult<NativeType> {
        let tok = self.peek();
        match NativeType::from_name(tok.text).filter(|_| tok.kind == TokenKind::Word) {
            Some(t) => {
                self.advance();
                Ok(t)
            }
            None => self.fail(Expected::What("native type")),
        }
    }

    // ----- WHERE -----------------------------------------------------------------------------

    /// `relation (AND relation)*`, parenthesised relations flattened.
    pub(crate) fn where_clause(&mut self) -> PResult<Vec<Relation>> {
        let mut relations = Vec::new();
        loop {
            self.relation(&mut relations)?;
            if !self.accept_kw("AND") {
                return Ok(relations);
            }
        }
    }

    /// One comparison operator, or `None` after recording all of them as expected.
    fn comparison(&mut self) -> Option<Operator> {
        for (sym, op) in COMPARISONS {
            if self.accept_sym(sym) {
                return Some(op);
            }
        }
        None
    }

    fn check_comparison(&self) -> bool {
        COMPARISONS.iter().any(|(sym, _)| self.check_sym(sym))
    }

    fn relation(&mut self, out: &mut Vec<Relation>) -> PResult<()> {
        self.nested(|p| p.relation_inner(out))
    }

    fn relation_inner(&mut self, out: &mut Vec<Relation>) -> PResult<()> {
        if self.check_kw("token") && self.check_sym_at(1, "(") {
            self.advance();
            let columns = self.column_tuple()?;
            let lhs = RelationLhs::Token(columns);
            let Some(op) = self.comparison() else { return Err(Fail) };
            out.push(Relation::Compare { lhs, op, rhs: self.term()? });
            return Ok(());
        }
        if self.check_sym("(") {
            // `(a, b) op ...` or a parenthesised relation.
            let tuple = self.speculate(|p| {
                let cols = p.column_tuple()?;
                if p.check_comparison() || p.check_kw("in") {
                    Ok(cols)
                } else {
                    Err(Fail)
                }
            })?;
            if let Some(columns) = tuple {
                let lhs = RelationLhs::Tuple(columns);
                if self.accept_kw("IN") {
                    out.push(Relation::In { lhs, values: self.in_values()? });
                } else {
                    let Some(op) = self.comparison() else { return Err(Fail) };
                    out.push(Relation::Compare { lhs, op, rhs: self.term()? });
                }
                return Ok(());
            }
            self.expect_sym("(")?;
            self.relation(out)?;
            return self.expect_sym(")");
        }
        if !self.check_ident_at(0) {
            self.record(Expected::Keyword("TOKEN"));
            self.record(Expected::Sym("("));
        }
        let column = self.cident()?;
        if let Some(op) = self.comparison() {
            out.push(Relation::Compare { lhs: RelationLhs::Column(column), op, rhs: self.term()? });
        } else if self.accept_kw("LIKE") {
            let rhs = self.term()?;
            out.push(Relation::Compare { lhs: RelationLhs::Column(column), op: Operator::Like, rhs });
        } else if self.accept_kw("IS") {
            self.expect_kw("NOT")?;
            self.expect_kw("NULL")?;
            out.push(Relation::IsNotNull { column });
        } else if self.accept_kw("IN") {
            out.push(Relation::In { lhs: RelationLhs::Column(column), values: self.in_values()? });
        } else if self.accept_kw("CONTAINS") {
            let op = if self.accept_kw("KEY") { Operator::ContainsKey } else { Operator::Contains };
            out.push(Relation::Compare { lhs: RelationLhs::Column(column), op, rhs: self.term()? });
        } else if self.accept_sym("[") {
            let key = self.term()?;
            self.expect_sym("]")?;
            let lhs = RelationLhs::MapElement { column, key };
            let Some(op) = self.comparison() else { return Err(Fail) };
            out.push(Relation::Compare { lhs, op, rhs: self.term()? });
        } else {
            return Err(Fail);
        }
        Ok(())
    }

    /// `'(' cident (',' cident)* ')'`.
    fn column_tuple(&mut self) -> PResult<Vec<String>> {
        self.expect_sym("(")?;
        let mut columns = vec![self.cident()?];
        while self.accept_sym(",") {
            columns.push(self.cident()?);
        }
        self.expect_sym(")")?;
        Ok(columns)
    }

    /// After IN: `(t1, t2, ...)` (possibly empty) or a bind marker.
    fn in_values(&mut self) -> PResult<InValues> {
        if self.check_marker() {
            return Ok(InValues::Marker(self.marker()?));
        }
        if !self.accept_sym("(") {
            return self.fail(Expected::What("bind marker"));
        }
        let mut terms = Vec::new();
        if self.accept_sym(")") {
            return Ok(InValues::Terms(terms));
        }
        loop {
            terms.push(self.term()?);
            if self.accept_sym(")") {
                return Ok(InValues::Terms(terms));
            }
            self.expect_sym(",")?;
        }
    }

    // ----- IF conditions ---------------------------------------------------------------------

    /// After IF: `EXISTS` or `condition (AND condition)*`. (`exists` is also a valid column name.)
    fn if_clause(&mut self) -> PResult<IfClause> {
        let column_follows = self.check_comparison_at(1)
            || self.check_sym_at(1, "[")
            || self.check_sym_at(1, ".")
            || self.check_kw_at(1, "in")
            || self.check_kw_at(1, "contains");
        if self.check_kw("exists") && !column_follows {
            self.advance();
            return Ok(IfClause::Exists);
        }
        if !self.check_ident_at(0) {
            self.record(Expected::Keyword("EXISTS"));
        }
        let mut conditions = Vec::new();
        loop {
            conditions.push(self.condition()?);
            if !self.accept_kw("AND") {
                return Ok(IfClause::Conditions(conditions));
            }
        }
    }

    fn check_comparison_at(&self, n: usize) -> bool {
        COMPARISONS.iter().any(|(sym, _)| self.check_sym_at(n, sym))
    }

    fn condition(&mut self) -> PResult<Condition> {
        let column = self.cident()?;
        let lhs = if self.accept_sym("[") {
            let key = self.term()?;
            self.expect_sym("]")?;
            ConditionLhs::Element { column, key }
        } else if self.accept_sym(".") {
            let field = self.ident()?;
            ConditionLhs::Field { column, field }
        } else {
            if self.accept_kw("CONTAINS") {
                let op = if self.accept_kw("KEY") { Operator::ContainsKey } else { Operator::Contains };
                return Ok(Condition::Compare { lhs: ConditionLhs::Column(column), op, value: self.term()? });
            }
            ConditionLhs::Column(column)
        };
        if let Some(op) = self.comparison() {
            return Ok(Condition::Compare { lhs, op, value: self.term()? });
        }
        self.expect_kw("IN")?;
        Ok(Condition::In { lhs, values: self.in_values()? })
    }

    // ----- USING -----------------------------------------------------------------------------

    /// `USING objective (AND objective)*` (the USING keyword already consumed).
    fn using_objectives(&mut self, using: &mut UsingClause) -> PResult<()> {
        loop {
            let at = self.pos();
            if self.accept_kw("TTL") {
                if using.ttl.is_some() {
                    return self.fatal_at(at, "TTL is given more than once in the USING clause");
                }
                using.ttl = Some(self.int_value()?);
            } else if self.accept_kw("TIMESTAMP") {
                if using.timestamp.is_some() {
                    return self.fatal_at(at, "TIMESTAMP is given more than once in the USING clause");
                }
                using.timestamp = Some(self.int_value()?);
            } else {
                return Err(Fail);
            }
            if !self.accept_kw("AND") {
                return Ok(());
            }
        }
    }

    // ----- INSERT ----------------------------------------------------------------------------

    pub(crate) fn insert_statement(&mut self) -> PResult<InsertStatement> {
        self.expect_kw("INSERT")?;
        self.expect_kw("INTO")?;
        let table = self.qualified_name("table")?;
        let values = if self.accept_kw("JSON") {
            let value = match &self.peek().kind {
                TokenKind::Str(s) => {
                    let s = s.clone();
                    self.advance();
                    Term::Literal(crate::ast::Literal::String(s))
                }
                _ if self.check_marker() => Term::BindMarker(self.marker()?),
                _ => {
                    self.record(Expected::What("string literal"));
                    return self.fail(Expected::What("bind marker"));
                }
            };
            let mut default = JsonDefault::Null;
            if self.accept_kw("DEFAULT") {
                if self.accept_kw("UNSET") {
                    default = JsonDefault::Unset;
                } else {
                    self.expect_kw("NULL")?;
                }
            }
            InsertValues::Json { value, default }
        } else {
            self.expect_sym("(")?;
            let mut columns = vec![self.cident()?];
            while self.accept_sym(",") {
                columns.push(self.cident()?);
            }
            self.expect_sym(")")?;
            self.expect_kw("VALUES")?;
            self.expect_sym("(")?;
            let mut values = vec![self.term()?];
            while self.accept_sym(",") {
                values.push(self.term()?);
            }
            self.expect_sym(")")?;
            InsertValues::Values { columns, values }
        };
        // Cassandra's order is IF NOT EXISTS then USING; the reverse is accepted too.
        let mut if_not_exists = false;
        let mut using = UsingClause::default();
        for _ in 0..2 {
            if !if_not_exists && self.accept_kw("IF") {
                self.expect_kw("NOT")?;
                self.expect_kw("EXISTS")?;
                if_not_exists = true;
            } else if using.is_empty() && self.accept_kw("USING") {
                self.using_objectives(&mut using)?;
            }
        }
        Ok(InsertStatement { table, values, if_not_exists, using })
    }

    // ----- UPDATE ----------------------------------------------------------------------------

    pub(crate) fn update_statement(&mut self) -> PResult<UpdateStatement> {
        self.expect_kw("UPDATE")?;
        let table = self.qualified_name("table")?;
        let mut using = UsingClause::default();
        if self.accept_kw("USING") {
            self.using_objectives(&mut using)?;
        }
        self.expect_kw("SET")?;
        let mut assignments = vec![self.assignment()?];
        while self.accept_sym(",") {
            assignments.push(self.assignment()?);
        }
        self.expect_kw("WHERE")?;
        let where_clause = self.where_clause()?;
        let condition = if self.accept_kw("IF") { Some(self.if_clause()?) } else { None };
        Ok(UpdateStatement { table, using, assignments, where_clause, condition })
    }

    fn assignment(&mut self) -> PResult<Assignment> {
        let column = self.cident()?;
        if self.accept_sym("=") {
            // `c = c + v` / `c = c - v`.
            if self.check_ident_at(0) && (self.check_sym_at(1, "+") || self.check_sym_at(1, "-")) {
                let at = self.pos();
                let other = self.cident()?;
                let plus = self.check_sym("+");
                self.advance();
                if other != column {
                    let sign = if plus { "+" } else { "-" };
                    return self.fatal_at(
                        at,
                        format!("Only expressions of the form X = X {sign} <value> are supported."),
                    );
                }
                let value = self.term()?;
                return Ok(if plus {
                    Assignment::Add { column, value }
                } else {
                    Assignment::Subtract { column, value }
                });
            }
            let value = self.term()?;
            // `c = v + c` (prepend).
            if self.check_sym("+") && self.check_ident_at(1) {
                self.advance();
                let at = self.pos();
                let other = self.cident()?;
                if other != column {
                    return self.fatal_at(at, "Only expressions of the form X = <value> + X are supported.");
                }
                return Ok(Assignment::Prepend { column, value });
            }
            return Ok(Assignment::Set { column, value });
        }
        if self.accept_sym("+=") {
            return Ok(Assignment::Add { column, value: self.term()? });
        }
        if self.accept_sym("-=") {
            return Ok(Assignment::Subtract { column, value: self.term()? });
        }
        if self.accept_sym("[") {
            let key = self.term()?;
            self.expect_sym("]")?;
            self.expect_sym("=")?;
            return Ok(Assignment::SetElement { column, key, value: self.term()? });
        }
        if self.accept_sym(".") {
            let field = self.ident()?;
            self.expect_sym("=")?;
            return Ok(Assignment::SetField { column, field, value: self.term()? });
        }
        Err(Fail)
    }

    // ----- DELETE ----------------------------------------------------------------------------

    pub(crate) fn delete_statement(&mut self) -> PResult<DeleteStatement> {
        self.expect_kw("DELETE")?;
        let mut columns = Vec::new();
        if !self.check_kw("from") {
            loop {
                let column = self.cident()?;
                columns.push(if self.accept_sym("[") {
                    let key = self.term()?;
                    self.expect_sym("]")?;
                    Deletion::Element { column, key }
                } else if self.accept_sym(".") {
                    Deletion::Field { column, field: self.ident()? }
                } else {
                    Deletion::Column(column)
                });
                if !self.accept_sym(",") {
                    break;
                }
            }
        }
        self.expect_kw("FROM")?;
        let table = self.qualified_name("table")?;
        let mut using = UsingClause::default();
        if self.accept_kw("USING") {
            self.expect_kw("TIMESTAMP")?;
            using.timestamp = Some(self.int_value()?);
        }
        self.expect_kw("WHERE")?;
        let where_clause = self.where_clause()?;
        let condition = if self.accept_kw("IF") { Some(self.if_clause()?) } else { None };
        Ok(DeleteStatement { columns, table, using, where_clause, condition })
    }

    // ----- BATCH -----------------------------------------------------------------------------

    pub(crate) fn batch_statement(&mut self) -> PResult<BatchStatement> {
        self.expect_kw("BEGIN")?;
        let kind = if self.accept_kw("UNLOGGED") {
            BatchKind::Unlogged
        } else if self.accept_kw("COUNTER") {
            BatchKind::Counter
        } else {
            BatchKind::Logged
        };
        self.expect_kw("BATCH")?;
        let mut using = UsingClause::default();
        if self.accept_kw("USING") {
            self.using_objectives(&mut using)?;
        }
        let mut statements = Vec::new();
        loop {
            let child = if self.check_kw("insert") {
                BatchChild::Insert(self.insert_statement()?)
            } else if self.check_kw("update") {
                BatchChild::Update(self.update_statement()?)
            } else if self.check_kw("delete") {
                BatchChild::Delete(self.delete_statement()?)
            } else {
                for kw in ["INSERT", "UPDATE", "DELETE"] {
                    self.record(Expected::Keyword(kw));
                }
                break;
            };
            statements.push(child);
            self.accept_sym(";");
        }
        self.expect_kw("APPLY")?;
        self.expect_kw("BATCH")?;
        Ok(BatchStatement { kind, using, statements })
    }
}
