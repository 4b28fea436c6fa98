//! Statement dispatch, schema statements, USE, TRUNCATE, DESCRIBE and unsupported statements.

use super::cursor::{Expected, Fail, PResult, Parser};
use super::lexer::TokenKind;
use crate::ast::{
    AlterKeyspaceStatement, AlterTableAction, AlterTableStatement, ColumnDefinition, CreateKeyspaceStatement,
    CreateTableStatement, DescribeStatement, DescribeTarget, DropKeyspaceStatement, DropTableStatement,
    Literal, OptionValue, Ordering, PrimaryKey, Property, Statement, TableOptions,
};

/// Leading keywords of every statement, for error messages.
const STATEMENT_KEYWORDS: [&str; 15] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "USE", "TRUNCATE", "CREATE", "ALTER", "DROP",
    "DESCRIBE", "DESC", "GRANT", "REVOKE", "LIST",
];

/// Schema objects Sibyl does not support: (verbs they follow, keywords, kind).
const UNSUPPORTED_OBJECTS: [(&[&str], &[&str], &str); 10] = [
    (&["CREATE", "DROP"], &["INDEX"], "INDEX"),
    (&["CREATE"], &["CUSTOM", "INDEX"], "CUSTOM INDEX"),
    (&["CREATE", "ALTER", "DROP"], &["MATERIALIZED", "VIEW"], "MATERIALIZED VIEW"),
    (&["CREATE", "ALTER", "DROP"], &["TYPE"], "TYPE"),
    (&["CREATE", "DROP"], &["FUNCTION"], "FUNCTION"),
    (&["CREATE", "DROP"], &["AGGREGATE"], "AGGREGATE"),
    (&["CREATE", "DROP"], &["TRIGGER"], "TRIGGER"),
    (&["CREATE", "ALTER", "DROP"], &["ROLE"], "ROLE"),
    (&["CREATE", "ALTER", "DROP"], &["USER"], "USER"),
    (&["DROP"], &["IDENTITY"], "IDENTITY"),
];

impl<'a> Parser<'a> {
    /// One statement (without the trailing `;`).
    pub(crate) fn statement(&mut self) -> PResult<Statement> {
        let first = self.peek();
        let kw = |k: &str| Parser::is_kw(first, k);
        if kw("select") {
            Ok(Statement::Select(self.select_statement()?))
        } else if kw("insert") {
            Ok(Statement::Insert(self.insert_statement()?))
        } else if kw("update") {
            Ok(Statement::Update(self.update_statement()?))
        } else if kw("delete") {
            Ok(Statement::Delete(self.delete_statement()?))
        } else if kw("begin") {
            Ok(Statement::Batch(self.batch_statement()?))
        } else if kw("use") {
            self.advance();
            Ok(Statement::Use(self.object_name("keyspace")?))
        } else if kw("truncate") {
            self.advance();
            if !self.accept_kw("TABLE") {
                self.accept_kw("COLUMNFAMILY");
            }
            Ok(Statement::Truncate(self.qualified_name("table")?))
        } else if kw("create") {
            self.create_statement()
        } else if kw("alter") {
            self.alter_statement()
        } else if kw("drop") {
            self.drop_statement()
        } else if kw("describe") || kw("desc") {
            self.describe_statement()
        } else if kw("grant") || kw("revoke") {
            let kind = self.advance().text.to_ascii_uppercase();
            self.unsupported(kind)
        } else if kw("list") {
            self.advance();
            let kind = ["ROLES", "USERS", "SUPERUSERS"]
                .into_iter()
                .find(|k| self.check_kw(k))
                .map_or("LIST PERMISSIONS".to_string(), |k| format!("LIST {k}"));
            self.unsupported(kind)
        } else if kw("add") && self.check_kw_at(1, "identity") {
            self.unsupported("ADD IDENTITY".to_string())
        } else {
            for k in STATEMENT_KEYWORDS {
                self.record(Expected::Keyword(k));
            }
            Err(Fail)
        }
    }

    /// Skips the rest of an unsupported statement (up to `;` or the end of input).
    fn unsupported(&mut self, kind: String) -> PResult<Statement> {
        loop {
            match self.peek().kind {
                TokenKind::Eof | TokenKind::Sym(";") => return Ok(Statement::Unsupported { kind }),
                // Let the lexical error be reported.
                TokenKind::Error(_) => return self.fail(Expected::What("token")),
                _ => {
                    self.advance();
                }
            }
        }
    }

    /// After CREATE/ALTER/DROP: the unsupported object kind that follows, if any (its keywords
    /// consumed). Once the first keyword matches, the others are required.
    fn unsupported_object(&mut self, verb: &str) -> PResult<Option<String>> {
        // `CREATE OR REPLACE FUNCTION|AGGREGATE`.
        if verb == "CREATE" && self.check_kw("or") {
            self.advance();
            self.expect_kw("REPLACE")?;
            for kind in ["FUNCTION", "AGGREGATE"] {
                if self.accept_kw(kind) {
                    return Ok(Some(format!("CREATE {kind}")));
                }
            }
            return Err(Fail);
        }
        for (verbs, kws, kind) in UNSUPPORTED_OBJECTS {
            if !verbs.contains(&verb) {
                continue;
            }
            let Some((first, rest)) = kws.split_first() else { continue };
            if self.check_kw(first) {
                self.advance();
                for k in rest {
                    self.expect_kw(k)?;
                }
                return Ok(Some(format!("{verb} {kind}")));
            }
        }
        Ok(None)
    }

    /// Records the object keywords valid after `verb`, for the error message.
    fn record_objects(&mut self, verb: &str, supported: &[&'static str]) {
        for k in supported {
            self.record(Expected::Keyword(k));
        }
        if verb == "CREATE" {
            self.record(Expected::Keyword("OR"));
        }
        for (verbs, kws, _) in UNSUPPORTED_OBJECTS {
            if let Some(k) = kws.first().filter(|_| verbs.contains(&verb)) {
                self.record(Expected::Keyword(k));
            }
        }
    }

    /// `KEYSPACE` (or its synonym `SCHEMA`).
    fn accept_keyspace_kw(&mut self) -> bool {
        if self.check_kw("schema") {
            self.advance();
            return true;
        }
        self.accept_kw("KEYSPACE")
    }

    /// `TABLE` (or its synonym `COLUMNFAMILY`).
    fn accept_table_kw(&mut self) -> bool {
        if self.check_kw("columnfamily") {
            self.advance();
            return true;
        }
        self.accept_kw("TABLE")
    }

    fn if_not_exists(&mut self) -> PResult<bool> {
        if self.accept_kw("IF") {
            self.expect_kw("NOT")?;
            self.expect_kw("EXISTS")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn if_exists(&mut self) -> PResult<bool> {
        if self.accept_kw("IF") {
            self.expect_kw("EXISTS")?;
            return Ok(true);
        }
        Ok(false)
    }

    // ----- CREATE ----------------------------------------------------------------------------

    fn create_statement(&mut self) -> PResult<Statement> {
        self.expect_kw("CREATE")?;
        if self.accept_keyspace_kw() {
            let if_not_exists = self.if_not_exists()?;
            let name = self.object_name("keyspace")?;
            self.expect_kw("WITH")?;
            let properties = self.properties()?;
            return Ok(Statement::CreateKeyspace(CreateKeyspaceStatement {
                if_not_exists,
                name,
                properties,
            }));
        }
        if self.accept_table_kw() {
            return Ok(Statement::CreateTable(self.create_table()?));
        }
        if let Some(kind) = self.unsupported_object("CREATE")? {
            return self.unsupported(kind);
        }
        self.record_objects("CREATE", &["KEYSPACE", "TABLE"]);
        Err(Fail)
    }

    /// After `CREATE TABLE`.
    fn create_table(&mut self) -> PResult<CreateTableStatement> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name("table")?;
        self.expect_sym("(")?;
        let mut columns = Vec::new();
        let mut primary_key: Option<PrimaryKey> = None;
        loop {
            let at = self.pos();
            if self.accept_kw("PRIMARY") {
                self.expect_kw("KEY")?;
                let pk = self.primary_key_clause()?;
                if primary_key.replace(pk).is_some() {
                    return self.invalid_at(at, "Multiple PRIMARY KEYs specified (exactly one required)");
                }
            } else {
                let column = self.column_definition()?;
                let pk_at = self.pos();
                if self.accept_kw("PRIMARY") {
                    self.expect_kw("KEY")?;
                    let pk = PrimaryKey {
                        partition_key: vec![column.name.clone()],
                        clustering_columns: Vec::new(),
                    };
                    if primary_key.replace(pk).is_some() {
                        return self
                            .invalid_at(pk_at, "Multiple PRIMARY KEYs specified (exactly one required)");
                    }
                }
                columns.push(column);
            }
            // A trailing comma before `)` is allowed, like in Cassandra.
            if self.accept_sym(",") {
                if self.accept_sym(")") {
                    break;
                }
                continue;
            }
            self.expect_sym(")")?;
            break;
        }
        let Some(primary_key) = primary_key else {
            let at = self.pos().saturating_sub(1);
            return self.invalid_at(at, "No PRIMARY KEY specified (exactly one required)");
        };
        let mut options = TableOptions::default();
        if self.accept_kw("WITH") {
            loop {
                self.table_property(&mut options)?;
                if !self.accept_kw("AND") {
                    break;
                }
            }
        }
        Ok(CreateTableStatement { if_not_exists, name, columns, primary_key, options })
    }

    /// `name type [STATIC]`.
    fn column_definition(&mut self) -> PResult<ColumnDefinition> {
        let name = self.ident()?;
        let ty = self.type_expr()?;
        let is_static = self.accept_kw("STATIC");
        Ok(ColumnDefinition { name, ty, is_static })
    }

    /// After `PRIMARY KEY`: `'(' (pk | '(' pk1, pk2 ')') (',' ck)* ')'`.
    fn primary_key_clause(&mut self) -> PResult<PrimaryKey> {
        self.expect_sym("(")?;
        let partition_key = if self.accept_sym("(") {
            let mut cols = vec![self.ident()?];
            while self.accept_sym(",") {
                cols.push(self.ident()?);
            }
            self.expect_sym(")")?;
            cols
        } else {
            vec![self.ident()?]
        };
        let mut clustering_columns = Vec::new();
        while self.accept_sym(",") {
            clustering_columns.push(self.ident()?);
        }
        self.expect_sym(")")?;
        Ok(PrimaryKey { partition_key, clustering_columns })
    }

    /// `CLUSTERING ORDER BY (...)`, `COMPACT STORAGE` or `name = value`.
    fn table_property(&mut self, options: &mut TableOptions) -> PResult<()> {
        if self.check_kw("clustering") && self.check_kw_at(1, "order") {
            self.advance();
            self.advance();
            self.expect_kw("BY")?;
            self.expect_sym("(")?;
            loop {
                let column = self.ident()?;
                let Some(order) = self.order_direction(true)? else { return Err(Fail) };
                options.clustering_order.push(Ordering { column, order });
                if !self.accept_sym(",") {
                    break;
                }
            }
            return self.expect_sym(")");
        }
        if self.check_kw("compact") && self.check_kw_at(1, "storage") {
            self.advance();
            self.advance();
            options.compact_storage = true;
            return Ok(());
        }
        let property = self.property(&options.properties)?;
        options.properties.push(property);
        Ok(())
    }

    /// `property (AND property)*`.
    fn properties(&mut self) -> PResult<Vec<Property>> {
        let mut properties: Vec<Property> = Vec::new();
        loop {
            let property = self.property(&properties)?;
            properties.push(property);
            if !self.accept_kw("AND") {
                return Ok(properties);
            }
        }
    }

    /// `name '=' (constant | identifier | map)`; `existing` detects duplicates.
    fn property(&mut self, existing: &[Property]) -> PResult<Property> {
        let at = self.pos();
        let name = self.ident()?;
        if existing.iter().any(|p| p.name == name) {
            return self.fatal_at(at, format!("Multiple definition for property {name}"));
        }
        self.expect_sym("=")?;
        let value = if self.check_sym("{") {
            self.property_map()?
        } else if self.check_constant_at(0) {
            OptionValue::Constant(self.constant()?)
        } else if self.check_ident_at(0) {
            OptionValue::Identifier(self.ident()?)
        } else {
            self.record(Expected::Sym("{"));
            self.record(Expected::What("constant"));
            return self.fail(Expected::What("identifier"));
        };
        Ok(Property { name, value })
    }

    /// `'{' (constant ':' constant (',' constant ':' constant)*)? '}'`.
    fn property_map(&mut self) -> PResult<OptionValue> {
        self.expect_sym("{")?;
        let mut entries: Vec<(Literal, Literal)> = Vec::new();
        if self.accept_sym("}") {
            return Ok(OptionValue::Map(entries));
        }
        loop {
            let at = self.pos();
            let key = self.constant()?;
            if entries.iter().any(|(k, _)| *k == key) {
                return self.fatal_at(at, format!("Multiple definition for property {}", literal_text(&key)));
            }
            self.expect_sym(":")?;
            let value = self.constant()?;
            entries.push((key, value));
            if self.accept_sym("}") {
                return Ok(OptionValue::Map(entries));
            }
            self.expect_sym(",")?;
        }
    }

    // ----- ALTER -----------------------------------------------------------------------------

    fn alter_statement(&mut self) -> PResult<Statement> {
        self.expect_kw("ALTER")?;
        if self.accept_keyspace_kw() {
            let if_exists = self.if_exists()?;
            let name = self.object_name("keyspace")?;
            self.expect_kw("WITH")?;
            let properties = self.properties()?;
            return Ok(Statement::AlterKeyspace(AlterKeyspaceStatement { if_exists, name, properties }));
        }
        if self.accept_table_kw() {
            return Ok(Statement::AlterTable(self.alter_table()?));
        }
        if let Some(kind) = self.unsupported_object("ALTER")? {
            return self.unsupported(kind);
        }
        self.record_objects("ALTER", &["KEYSPACE", "TABLE"]);
        Err(Fail)
    }

    /// After `ALTER TABLE`.
    fn alter_table(&mut self) -> PResult<AlterTableStatement> {
        let if_exists = self.if_exists()?;
        let table = self.qualified_name("table")?;
        let action = if self.accept_kw("ALTER") {
            let column = self.cident()?;
            self.expect_kw("TYPE")?;
            AlterTableAction::AlterColumnType { column, ty: self.type_expr()? }
        } else if self.accept_kw("ADD") {
            let if_not_exists = self.if_not_exists()?;
            let columns = if self.accept_sym("(") {
                let mut columns = vec![self.column_definition()?];
                while self.accept_sym(",") {
                    columns.push(self.column_definition()?);
                }
                self.expect_sym(")")?;
                columns
            } else {
                vec![self.column_definition()?]
            };
            AlterTableAction::Add { if_not_exists, columns }
        } else if self.accept_kw("DROP") {
            if self.check_kw("compact") && self.check_kw_at(1, "storage") {
                self.advance();
                self.advance();
                AlterTableAction::DropCompactStorage
            } else {
                let if_exists = self.if_exists()?;
                let columns = if self.accept_sym("(") {
                    let mut columns = vec![self.ident()?];
                    while self.accept_sym(",") {
                        columns.push(self.ident()?);
                    }
                    self.expect_sym(")")?;
                    columns
                } else {
                    vec![self.ident()?]
                };
                let mut timestamp = None;
                if self.accept_kw("USING") {
                    self.expect_kw("TIMESTAMP")?;
                    if self.peek().kind != TokenKind::Integer {
                        return self.fail(Expected::What("integer"));
                    }
                    timestamp = Some(self.constant()?);
                }
                AlterTableAction::Drop { if_exists, columns, timestamp }
            }
        } else if self.accept_kw("RENAME") {
            let if_exists = self.if_exists()?;
            let mut renames = Vec::new();
            loop {
                let from = self.ident()?;
                self.expect_kw("TO")?;
                renames.push((from, self.ident()?));
                if !self.accept_kw("AND") {
                    break;
                }
            }
            AlterTableAction::Rename { if_exists, renames }
        } else if self.accept_kw("WITH") {
            AlterTableAction::WithOptions(self.properties()?)
        } else {
            return Err(Fail);
        };
        Ok(AlterTableStatement { if_exists, table, action })
    }

    // ----- DROP ------------------------------------------------------------------------------

    fn drop_statement(&mut self) -> PResult<Statement> {
        self.expect_kw("DROP")?;
        if self.accept_keyspace_kw() {
            let if_exists = self.if_exists()?;
            let name = self.object_name("keyspace")?;
            return Ok(Statement::DropKeyspace(DropKeyspaceStatement { if_exists, name }));
        }
        if self.accept_table_kw() {
            let if_exists = self.if_exists()?;
            let name = self.qualified_name("table")?;
            return Ok(Statement::DropTable(DropTableStatement { if_exists, name }));
        }
        if let Some(kind) = self.unsupported_object("DROP")? {
            return self.unsupported(kind);
        }
        self.record_objects("DROP", &["KEYSPACE", "TABLE"]);
        Err(Fail)
    }

    // ----- DESCRIBE --------------------------------------------------------------------------

    fn describe_statement(&mut self) -> PResult<Statement> {
        if !self.accept_kw("DESCRIBE") {
            self.expect_kw("DESC")?;
        }
        let target = self.describe_target()?;
        let with_internals = if self.accept_kw("WITH") {
            self.expect_kw("INTERNALS")?;
            true
        } else {
            false
        };
        Ok(Statement::Describe(DescribeStatement { target, with_internals }))
    }

    fn describe_target(&mut self) -> PResult<DescribeTarget> {
        // Plural keywords are unreserved: they name a listing unless used as `ks.name`.
        let listing = !self.check_sym_at(1, ".");
        for (kw, target) in [
            ("cluster", DescribeTarget::Cluster),
            ("keyspaces", DescribeTarget::Keyspaces),
            ("tables", DescribeTarget::Tables),
            ("columnfamilies", DescribeTarget::Tables),
            ("types", DescribeTarget::Types),
            ("functions", DescribeTarget::Functions),
            ("aggregates", DescribeTarget::Aggregates),
        ] {
            if listing && self.check_kw(kw) {
                self.advance();
                return Ok(target);
            }
        }
        if self.accept_kw("FULL") {
            self.expect_kw("SCHEMA")?;
            return Ok(DescribeTarget::Schema { full: true });
        }
        if self.accept_kw("SCHEMA") {
            return Ok(DescribeTarget::Schema { full: false });
        }
        let only = self.check_kw("only") && self.check_kw_at(1, "keyspace");
        if only {
            self.advance();
        }
        if self.accept_kw("KEYSPACE") {
            let name = if self.check_ident_at(0) || self.check_sym("?") {
                Some(self.object_name("keyspace")?)
            } else {
                None
            };
            return Ok(DescribeTarget::Keyspace { only, name });
        }
        if self.accept_table_kw() {
            return Ok(DescribeTarget::Table(self.qualified_name("table")?));
        }
        if self.accept_kw("INDEX") {
            return Ok(DescribeTarget::Index(self.qualified_name("index")?));
        }
        if self.accept_kw("MATERIALIZED") {
            self.expect_kw("VIEW")?;
            return Ok(DescribeTarget::MaterializedView(self.qualified_name("view")?));
        }
        // `TYPE name`, `FUNCTION name`, `AGGREGATE name`; alone they are generic names.
        let name_follows = self.check_ident_at(1) || self.check_kw_at(1, "token");
        if self.check_kw("type") && name_follows {
            self.advance();
            return Ok(DescribeTarget::Type(self.qualified_name("type")?));
        }
        if self.check_kw("function") && name_follows {
            self.advance();
            return Ok(DescribeTarget::Function(self.function_name()?));
        }
        if self.check_kw("aggregate") && name_follows {
            self.advance();
            return Ok(DescribeTarget::Aggregate(self.function_name()?));
        }
        if self.check_ident_at(0) {
            return Ok(DescribeTarget::Generic(self.qualified_name("table")?));
        }
        for k in ["CLUSTER", "SCHEMA", "FULL", "KEYSPACES", "KEYSPACE", "TABLES", "TABLE", "TYPES", "TYPE"] {
            self.record(Expected::Keyword(k));
        }
        self.record(Expected::What("identifier"));
        Err(Fail)
    }
}

/// Text of a constant for messages.
fn literal_text(lit: &Literal) -> String {
    match lit {
        Literal::String(s) => s.clone(),
        Literal::Integer(t)
        | Literal::Float(t)
        | Literal::Duration(t)
        | Literal::Uuid(t)
        | Literal::Hex(t) => t.clone(),
        Literal::Boolean(b) => b.to_string(),
        Literal::Null => "null".to_string(),
    }
}
