//! Unit tests of the grammar, construct by construct. (Broader coverage is in the golden files
//! under `tests/golden`.)

use super::*;
use crate::ast::*;

fn stmt(text: &str) -> Statement {
    match parse_statement(text) {
        Ok(s) => s,
        Err(e) => panic!("{text}\n  => {e}"),
    }
}

fn err(text: &str) -> String {
    match parse_statement(text) {
        Ok(s) => panic!("expected an error for {text}, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn select(text: &str) -> SelectStatement {
    match stmt(text) {
        Statement::Select(s) => s,
        other => panic!("not a select: {other:?}"),
    }
}

fn insert(text: &str) -> InsertStatement {
    match stmt(text) {
        Statement::Insert(s) => s,
        other => panic!("not an insert: {other:?}"),
    }
}

fn update(text: &str) -> UpdateStatement {
    match stmt(text) {
        Statement::Update(s) => s,
        other => panic!("not an update: {other:?}"),
    }
}

/// The single value of `INSERT INTO t (a) VALUES (<term>)`.
fn term(text: &str) -> Term {
    match insert(&format!("INSERT INTO t (a) VALUES ({text})")).values {
        InsertValues::Values { mut values, .. } if values.len() == 1 => values.remove(0),
        other => panic!("{other:?}"),
    }
}

fn lit(l: Literal) -> Term {
    Term::Literal(l)
}

fn int(text: &str) -> Term {
    lit(Literal::Integer(text.into()))
}

fn string(text: &str) -> Term {
    lit(Literal::String(text.into()))
}

fn marker(index: usize, name: Option<&str>) -> Term {
    Term::BindMarker(BindMarker { index, name: name.map(Into::into) })
}

fn col(name: &str) -> RelationLhs {
    RelationLhs::Column(name.into())
}

fn eq(column: &str, rhs: Term) -> Relation {
    Relation::Compare { lhs: col(column), op: Operator::Eq, rhs }
}

fn qn(name: &str) -> QualifiedName {
    QualifiedName::new(name)
}

// ----- lexical -------------------------------------------------------------------------------

#[test]
fn keywords_are_case_insensitive_and_identifiers_fold() {
    let s = select("sElEcT MyCol FrOm MyKs.MyTable wHeRe Key = 1");
    assert_eq!(s.table, QualifiedName::qualified("myks", "mytable"));
    assert_eq!(
        s.selection,
        Selection::Selectors(vec![Selector { expr: SelectorExpr::Column("mycol".into()), alias: None }])
    );
    assert_eq!(s.where_clause, vec![eq("key", int("1"))]);
}

#[test]
fn quoted_identifiers_keep_case_and_unescape() {
    let s = select(r#"SELECT "MyCol", "a""b", "select" FROM "Ks"."T""#);
    assert_eq!(s.table, QualifiedName::qualified("Ks", "T"));
    let Selection::Selectors(sels) = s.selection else { panic!() };
    let names: Vec<_> = sels.into_iter().map(|s| s.expr).collect();
    assert_eq!(names, ["MyCol", "a\"b", "select"].map(|n| SelectorExpr::Column(n.into())).to_vec());
}

#[test]
fn unreserved_keywords_are_identifiers() {
    let words = [
        "key",
        "value",
        "ttl",
        "writetime",
        "maxwritetime",
        "type",
        "count",
        "timestamp",
        "keys",
        "options",
        "date",
        "time",
        "text",
        "json",
        "distinct",
        "as",
        "cast",
        "filtering",
        "static",
        "frozen",
        "list",
        "map",
        "tuple",
        "exists",
        "contains",
        "like",
        "per",
        "partition",
        "group",
        "default",
        "unset",
        "cluster",
        "clustering",
        "compact",
        "storage",
        "tables",
        "types",
        "values",
        "role",
        "user",
        "login",
        "password",
        "function",
        "aggregate",
        "language",
        "input",
        "trigger",
        "custom",
        "all",
        "only",
        "internals",
        "keyspaces",
        "vector",
        "between",
        "ann",
        "int",
        "uuid",
        "counter",
        "replace",
    ];
    for w in words {
        assert!(!is_reserved_keyword(w), "{w}");
        let s = select(&format!("SELECT {w} FROM {w} WHERE {w} = 1"));
        assert_eq!(s.table, qn(w), "{w}");
        assert_eq!(s.where_clause, vec![eq(w, int("1"))], "{w}");
        let Statement::CreateTable(t) = stmt(&format!("CREATE TABLE {w} ({w} int PRIMARY KEY)")) else {
            panic!()
        };
        assert_eq!(t.columns[0].name, w);
        let u = update(&format!("UPDATE {w} SET {w} = 1 WHERE {w} = 2"));
        assert_eq!(u.assignments, vec![Assignment::Set { column: w.into(), value: int("1") }]);
    }
}

#[test]
fn reserved_keywords_are_not_identifiers() {
    for w in [
        "select", "from", "where", "and", "table", "keyspace", "token", "null", "true", "nan", "limit", "set",
    ] {
        assert!(is_reserved_keyword(w), "{w}");
        let e = err(&format!("CREATE TABLE t ({w} int PRIMARY KEY)"));
        assert!(e.contains(&format!("mismatched input '{w}'")), "{w}: {e}");
    }
    // Quoted, they are fine.
    assert_eq!(select(r#"SELECT "from" FROM t"#).selection, select(r#"SELECT "from" FROM "t""#).selection);
}

#[test]
fn comments_and_whitespace() {
    let s = select("-- c\n/* multi\nline */ SELECT a // x\n FROM t -- tail\n;  /* end */ ");
    assert_eq!(s.table, qn("t"));
}

#[test]
fn constants() {
    assert_eq!(term("'it''s'"), string("it's"));
    assert_eq!(term("$$a'b$$"), string("a'b"));
    assert_eq!(term("''"), string(""));
    assert_eq!(term("42"), int("42"));
    assert_eq!(term("-42"), int("-42"));
    assert_eq!(term("- 42"), int("-42"));
    for f in ["1.5", "1e10", "-2.5E-3", "1.", "NaN", "-NaN", "Infinity", "-Infinity", "1E+5"] {
        assert_eq!(term(f), lit(Literal::Float(f.into())), "{f}");
    }
    assert_eq!(term("0xCAFE"), lit(Literal::Hex("0xCAFE".into())));
    let uuid = "123e4567-e89b-12d3-a456-426614174000";
    assert_eq!(term(uuid), lit(Literal::Uuid(uuid.into())));
    assert_eq!(term("true"), lit(Literal::Boolean(true)));
    assert_eq!(term("FALSE"), lit(Literal::Boolean(false)));
    assert_eq!(term("NULL"), lit(Literal::Null));
    for d in [
        "1h30m",
        "2d",
        "1mo",
        "12us",
        "12µs",
        "3ns",
        "1y",
        "2w",
        "-1h",
        "P1Y2M3DT4H5M6S",
        "P2W",
        "P0001-02-03T04:05:06",
    ] {
        assert_eq!(term(d), lit(Literal::Duration(d.into())), "{d}");
    }
}

#[test]
fn collections_tuples_udts_functions_and_casts() {
    assert_eq!(term("[1, 2]"), Term::List(vec![int("1"), int("2")]));
    assert_eq!(term("[]"), Term::List(vec![]));
    assert_eq!(term("{}"), Term::EmptyCollection);
    assert_eq!(term("{1, 2}"), Term::Set(vec![int("1"), int("2")]));
    assert_eq!(term("{'a': 1}"), Term::Map(vec![(string("a"), int("1"))]));
    assert_eq!(term("{a: 1, \"B\": 2}"), Term::Udt(vec![("a".into(), int("1")), ("B".into(), int("2"))]));
    assert_eq!(term("(1, 'a')"), Term::Tuple(vec![int("1"), string("a")]));
    assert_eq!(term("(1)"), Term::Tuple(vec![int("1")]));
    assert_eq!(
        term("ks.fn(1, now())"),
        Term::FunctionCall {
            name: QualifiedName::qualified("ks", "fn"),
            args: vec![int("1"), Term::FunctionCall { name: qn("now"), args: vec![] }],
        }
    );
    assert_eq!(term("token(1)"), Term::FunctionCall { name: qn("token"), args: vec![int("1")] });
    assert_eq!(
        term("(bigint) 3"),
        Term::Cast { ty: TypeExpr::Native(NativeType::Bigint), term: Box::new(int("3")) }
    );
    assert_eq!(
        term("(set<text>) ?"),
        Term::Cast {
            ty: TypeExpr::Set(Box::new(TypeExpr::Native(NativeType::Text))),
            term: Box::new(marker(0, None))
        }
    );
    assert_eq!(
        term("(myudt) {a: 1}"),
        Term::Cast {
            ty: TypeExpr::UserDefined(qn("myudt")),
            term: Box::new(Term::Udt(vec![("a".into(), int("1"))])),
        }
    );
    // A function call in parentheses is a tuple, not a cast.
    assert_eq!(term("(now())"), Term::Tuple(vec![Term::FunctionCall { name: qn("now"), args: vec![] }]));
}

// ----- bind markers --------------------------------------------------------------------------

#[test]
fn bind_markers_are_numbered_in_order() {
    let p = parse_prepared(
        "SELECT fn(?) FROM t WHERE a = :x AND b IN ? AND c IN (?, :x) AND (d, e) > (?, ?) \
         AND m[?] = ? PER PARTITION LIMIT ? LIMIT :lim",
    )
    .unwrap();
    let names = |v: &[Option<&str>]| v.iter().map(|n| n.map(String::from)).collect::<Vec<_>>();
    let expected =
        names(&[None, Some("x"), None, None, Some("x"), None, None, None, None, None, Some("lim")]);
    assert_eq!(p.bind_markers, expected);
    assert_eq!(p.statement.bind_markers(), expected);
    assert_eq!(p.statement.bind_marker_count(), 11);
    let s = select("SELECT * FROM t WHERE a IN ? LIMIT ?");
    assert_eq!(
        s.where_clause,
        vec![Relation::In { lhs: col("a"), values: InValues::Marker(BindMarker { index: 0, name: None }) }]
    );
    assert_eq!(s.limit, Some(marker(1, None)));
}

#[test]
fn bind_markers_in_modifications_and_batches() {
    let p = parse_prepared(
        "BEGIN BATCH USING TIMESTAMP ? INSERT INTO t (a, b) VALUES (?, :b) USING TTL ?; \
         UPDATE t USING TTL ? SET l[?] = ?, c = c + ? WHERE k = ? IF v IN ? AND m[?] = ?; \
         DELETE m[?] FROM t USING TIMESTAMP ? WHERE k = ? APPLY BATCH",
    )
    .unwrap();
    assert_eq!(p.bind_markers.len(), 15);
    assert_eq!(p.bind_markers[2], Some("b".into()));
    assert_eq!(p.statement.bind_markers(), p.bind_markers);
    let p = parse_prepared("INSERT INTO t JSON ?").unwrap();
    assert_eq!(p.bind_markers, vec![None]);
    // Markers of a failed speculative parse are not counted.
    let p = parse_prepared("SELECT JSON ? FROM t WHERE a = ?").unwrap();
    assert_eq!(p.bind_markers, vec![None, None]);
}

#[test]
fn scripts_number_markers_per_statement() {
    let v =
        parse_prepared_statements("SELECT * FROM t WHERE a = ?;; ;UPDATE t SET a = ? WHERE b = ?;").unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].bind_markers.len(), 1);
    assert_eq!(v[1].bind_markers.len(), 2);
    assert_eq!(parse_statements("").unwrap(), vec![]);
    assert_eq!(parse_statements(" ; -- nothing\n ;").unwrap(), vec![]);
    assert_eq!(
        parse_statements("USE a; USE b").unwrap(),
        vec![Statement::Use("a".into()), Statement::Use("b".into())]
    );
    assert_eq!(
        parse_statements("USE a USE b").unwrap_err().to_string(),
        "line 1:6 mismatched input 'USE' expecting {';', EOF}"
    );
}

// ----- types ---------------------------------------------------------------------------------

#[test]
fn types() {
    for native in NativeType::ALL {
        assert_eq!(parse_type(native.as_str()), Ok(TypeExpr::Native(native)));
        assert_eq!(parse_type(&native.as_str().to_uppercase()), Ok(TypeExpr::Native(native)));
    }
    let t = parse_type("frozen<map<text, list<int>>>").unwrap();
    assert_eq!(
        t,
        TypeExpr::Frozen(Box::new(TypeExpr::Map(
            Box::new(TypeExpr::Native(NativeType::Text)),
            Box::new(TypeExpr::List(Box::new(TypeExpr::Native(NativeType::Int))))
        )))
    );
    assert_eq!(
        parse_type(" ks.\"Addr\" "),
        Ok(TypeExpr::UserDefined(QualifiedName::qualified("ks", "Addr")))
    );
    assert_eq!(
        parse_type("'org.apache.cassandra.db.marshal.BytesType'"),
        Ok(TypeExpr::Custom("org.apache.cassandra.db.marshal.BytesType".into()))
    );
    assert_eq!(
        parse_type("vector<float, 3>"),
        Ok(TypeExpr::Vector { element: Box::new(TypeExpr::Native(NativeType::Float)), dimension: 3 })
    );
    assert_eq!(parse_type("frozen"), Ok(TypeExpr::UserDefined(qn("frozen"))));
    assert_eq!(
        parse_type("map<int, int>>").unwrap_err().to_string(),
        "line 1:13 mismatched input '>' expecting EOF"
    );
    assert_eq!(
        parse_type("list<int").unwrap_err().to_string(),
        "line 1:8 mismatched input '<EOF>' expecting '>'"
    );
    assert_eq!(parse_type("").unwrap_err().to_string(), "line 1:0 mismatched input '<EOF>' expecting type");
    assert!(parse_type("set").is_err());
    assert!(parse_type("frozen<int>").unwrap_err().message.contains("frozen<>"));
}

#[test]
fn type_display_round_trips() {
    for text in [
        "int",
        "varchar",
        "frozen<map<text, list<int>>>",
        "tuple<int, text, frozen<set<uuid>>>",
        "vector<float, 128>",
        "ks.addr",
        "\"Addr\"",
        "frozen<\"select\">",
        "\"int\"",
        "ks.\"text\"",
        "list<frozen<\"Map\">>",
        "'org.apache.cassandra.db.marshal.DynamicCompositeType(s=>UTF8Type)'",
        "'it''s'",
    ] {
        let ty = parse_type(text).unwrap();
        assert_eq!(ty.to_string(), text);
        assert_eq!(parse_type(&ty.to_string()), Ok(ty));
    }
}

// ----- DDL -----------------------------------------------------------------------------------

#[test]
fn create_keyspace() {
    let Statement::CreateKeyspace(ks) = stmt(
        "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1} \
         AND durable_writes = true",
    ) else {
        panic!()
    };
    assert!(ks.if_not_exists);
    assert_eq!(ks.name, "ks");
    assert_eq!(
        ks.properties,
        vec![
            Property {
                name: "replication".into(),
                value: OptionValue::Map(vec![
                    (Literal::String("class".into()), Literal::String("SimpleStrategy".into())),
                    (Literal::String("replication_factor".into()), Literal::Integer("1".into())),
                ]),
            },
            Property { name: "durable_writes".into(), value: OptionValue::Constant(Literal::Boolean(true)) },
        ]
    );
    assert_eq!(
        stmt("ALTER KEYSPACE ks WITH durable_writes = false"),
        Statement::AlterKeyspace(AlterKeyspaceStatement {
            if_exists: false,
            name: "ks".into(),
            properties: vec![Property {
                name: "durable_writes".into(),
                value: OptionValue::Constant(Literal::Boolean(false))
            }],
        })
    );
    assert_eq!(
        stmt("DROP KEYSPACE IF EXISTS ks"),
        Statement::DropKeyspace(DropKeyspaceStatement { if_exists: true, name: "ks".into() })
    );
    assert_eq!(stmt("USE \"Ks\""), Statement::Use("Ks".into()));
}

#[test]
fn create_table() {
    let Statement::CreateTable(t) = stmt(
        "CREATE TABLE IF NOT EXISTS ks.t (a int, b text, c int, s set<int> STATIC, PRIMARY KEY ((a, b), c)) \
         WITH CLUSTERING ORDER BY (c DESC) AND comment = 'x' AND COMPACT STORAGE",
    ) else {
        panic!()
    };
    assert!(t.if_not_exists);
    assert_eq!(t.name, QualifiedName::qualified("ks", "t"));
    assert_eq!(t.columns.len(), 4);
    assert!(t.columns[3].is_static);
    assert_eq!(
        t.primary_key,
        PrimaryKey { partition_key: vec!["a".into(), "b".into()], clustering_columns: vec!["c".into()] }
    );
    assert_eq!(t.options.clustering_order, vec![Ordering { column: "c".into(), order: Order::Desc }]);
    assert!(t.options.compact_storage);
    assert_eq!(
        t.options.properties,
        vec![Property { name: "comment".into(), value: OptionValue::Constant(Literal::String("x".into())) }]
    );

    let Statement::CreateTable(t) =
        stmt("CREATE TABLE standard1 (key blob PRIMARY KEY, \"C0\" blob, \"C1\" blob)")
    else {
        panic!()
    };
    assert_eq!(t.primary_key, PrimaryKey { partition_key: vec!["key".into()], clustering_columns: vec![] });
    assert_eq!(t.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["key", "C0", "C1"]);

    assert!(err("CREATE TABLE t (a int)").ends_with("No PRIMARY KEY specified (exactly one required)"));
    assert_eq!(
        err("CREATE TABLE t (a int PRIMARY KEY, PRIMARY KEY (a))"),
        "line 1:35 Multiple PRIMARY KEYs specified (exactly one required)"
    );
}

#[test]
fn alter_drop_truncate() {
    let alter = |text: &str| match stmt(text) {
        Statement::AlterTable(a) => a.action,
        other => panic!("{other:?}"),
    };
    let int_col = |name: &str, is_static| ColumnDefinition {
        name: name.into(),
        ty: TypeExpr::Native(NativeType::Int),
        is_static,
    };
    assert_eq!(
        alter("ALTER TABLE t ADD a int"),
        AlterTableAction::Add { if_not_exists: false, columns: vec![int_col("a", false)] }
    );
    assert_eq!(
        alter("ALTER TABLE t ADD (a int, b int static)"),
        AlterTableAction::Add {
            if_not_exists: false,
            columns: vec![int_col("a", false), int_col("b", true)]
        }
    );
    assert_eq!(
        alter("ALTER TABLE t DROP a"),
        AlterTableAction::Drop { if_exists: false, columns: vec!["a".into()], timestamp: None }
    );
    assert_eq!(
        alter("ALTER TABLE t DROP (a, b) USING TIMESTAMP 5"),
        AlterTableAction::Drop {
            if_exists: false,
            columns: vec!["a".into(), "b".into()],
            timestamp: Some(Literal::Integer("5".into()))
        }
    );
    assert_eq!(alter("ALTER TABLE t DROP COMPACT STORAGE"), AlterTableAction::DropCompactStorage);
    assert_eq!(
        alter("ALTER TABLE t RENAME a TO b AND c TO d"),
        AlterTableAction::Rename {
            if_exists: false,
            renames: vec![("a".into(), "b".into()), ("c".into(), "d".into())]
        }
    );
    assert_eq!(
        alter("ALTER TABLE t ALTER a TYPE blob"),
        AlterTableAction::AlterColumnType { column: "a".into(), ty: TypeExpr::Native(NativeType::Blob) }
    );
    assert!(
        matches!(alter("ALTER TABLE t WITH comment = 'x'"), AlterTableAction::WithOptions(p) if p.len() == 1)
    );
    assert_eq!(
        stmt("DROP TABLE IF EXISTS ks.t"),
        Statement::DropTable(DropTableStatement {
            if_exists: true,
            name: QualifiedName::qualified("ks", "t")
        })
    );
    assert_eq!(stmt("TRUNCATE t"), Statement::Truncate(qn("t")));
    assert_eq!(stmt("TRUNCATE TABLE ks.t;"), Statement::Truncate(QualifiedName::qualified("ks", "t")));
}

// ----- DML -----------------------------------------------------------------------------------

#[test]
fn insert_forms() {
    let i = insert("INSERT INTO t (a, b) VALUES (1, ?) IF NOT EXISTS USING TTL 10 AND TIMESTAMP :ts");
    assert!(i.if_not_exists);
    assert_eq!(i.using, UsingClause { ttl: Some(int("10")), timestamp: Some(marker(1, Some("ts"))) });
    assert_eq!(
        i.values,
        InsertValues::Values {
            columns: vec!["a".into(), "b".into()],
            values: vec![int("1"), marker(0, None)]
        }
    );
    let j = insert("INSERT INTO t (a) VALUES (1) USING TTL 1 IF NOT EXISTS");
    assert!(j.if_not_exists && j.using.ttl.is_some());
    let json = insert("INSERT INTO t JSON '{\"a\": 1}' DEFAULT UNSET");
    assert_eq!(json.values, InsertValues::Json { value: string("{\"a\": 1}"), default: JsonDefault::Unset });
    assert!(err("INSERT INTO t (a) VALUES (1) USING TTL 1 AND TTL 2").contains("TTL is given more than once"));
}

#[test]
fn update_assignments() {
    let u = update(
        "UPDATE t USING TTL 5 SET a = 1, b = b + 2, c = c - 3, d = [0] + d, e += {1}, f -= {2}, m['k'] = 'v', \
         u.f = 1 WHERE k = 0 IF EXISTS",
    );
    assert_eq!(u.using.ttl, Some(int("5")));
    assert_eq!(
        u.assignments,
        vec![
            Assignment::Set { column: "a".into(), value: int("1") },
            Assignment::Add { column: "b".into(), value: int("2") },
            Assignment::Subtract { column: "c".into(), value: int("3") },
            Assignment::Prepend { column: "d".into(), value: Term::List(vec![int("0")]) },
            Assignment::Add { column: "e".into(), value: Term::Set(vec![int("1")]) },
            Assignment::Subtract { column: "f".into(), value: Term::Set(vec![int("2")]) },
            Assignment::SetElement { column: "m".into(), key: string("k"), value: string("v") },
            Assignment::SetField { column: "u".into(), field: "f".into(), value: int("1") },
        ]
    );
    assert_eq!(u.condition, Some(IfClause::Exists));
    // `c = c -1` (no space) is a decrement, like in Cassandra.
    assert_eq!(
        update("UPDATE t SET c = c -1 WHERE k = 0").assignments,
        vec![Assignment::Subtract { column: "c".into(), value: int("1") }]
    );
    assert_eq!(
        err("UPDATE t SET a = b + 1 WHERE k = 0"),
        "line 1:17 Only expressions of the form X = X + <value> are supported."
    );
    let c =
        update("UPDATE t SET a = 1 WHERE k = 0 IF a = 1 AND m['x'] IN (1, 2) AND u.f > 3 AND s CONTAINS 4");
    assert_eq!(
        c.condition,
        Some(IfClause::Conditions(vec![
            Condition::Compare { lhs: ConditionLhs::Column("a".into()), op: Operator::Eq, value: int("1") },
            Condition::In {
                lhs: ConditionLhs::Element { column: "m".into(), key: string("x") },
                values: InValues::Terms(vec![int("1"), int("2")])
            },
            Condition::Compare {
                lhs: ConditionLhs::Field { column: "u".into(), field: "f".into() },
                op: Operator::Gt,
                value: int("3")
            },
            Condition::Compare {
                lhs: ConditionLhs::Column("s".into()),
                op: Operator::Contains,
                value: int("4")
            },
        ]))
    );
}

#[test]
fn delete_forms() {
    let Statement::Delete(d) = stmt("DELETE a, m['k'], u.f FROM t USING TIMESTAMP 9 WHERE k = 1 IF a = 2")
    else {
        panic!()
    };
    assert_eq!(
        d.columns,
        vec![
            Deletion::Column("a".into()),
            Deletion::Element { column: "m".into(), key: string("k") },
            Deletion::Field { column: "u".into(), field: "f".into() },
        ]
    );
    assert_eq!(d.using.timestamp, Some(int("9")));
    assert!(matches!(d.condition, Some(IfClause::Conditions(ref c)) if c.len() == 1));
    let Statement::Delete(d) = stmt("DELETE FROM t WHERE k = 1") else { panic!() };
    assert!(d.columns.is_empty() && d.condition.is_none());
}

#[test]
fn batches() {
    let Statement::Batch(b) = stmt("BEGIN BATCH APPLY BATCH") else { panic!() };
    assert_eq!(
        b,
        BatchStatement { kind: BatchKind::Logged, using: UsingClause::default(), statements: vec![] }
    );
    let Statement::Batch(b) = stmt(
        "BEGIN UNLOGGED BATCH USING TIMESTAMP 1 INSERT INTO t (a) VALUES (1) UPDATE t SET a = 2 WHERE k = 1; \
         DELETE FROM t WHERE k = 2; APPLY BATCH;",
    ) else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Unlogged);
    assert_eq!(b.statements.len(), 3);
    assert!(matches!(b.statements[2], BatchChild::Delete(_)));
    let Statement::Batch(b) = stmt("begin counter batch update c set n = n + 1 where k = 1 apply batch")
    else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Counter);
}

#[test]
fn select_modifiers_and_clauses() {
    let s = select(
        "SELECT JSON DISTINCT a FROM t WHERE a = 1 GROUP BY a ORDER BY b DESC, c PER PARTITION LIMIT 2 LIMIT 3 \
         ALLOW FILTERING",
    );
    assert!(s.json && s.distinct && s.allow_filtering);
    assert_eq!(s.group_by, vec!["a".to_string()]);
    assert_eq!(
        s.order_by,
        vec![
            Ordering { column: "b".into(), order: Order::Desc },
            Ordering { column: "c".into(), order: Order::Asc }
        ]
    );
    assert_eq!(s.per_partition_limit, Some(int("2")));
    assert_eq!(s.limit, Some(int("3")));
    // `json` / `distinct` as column names.
    let s = select("SELECT json, distinct FROM t");
    assert!(!s.json && !s.distinct);
    let s = select("SELECT distinct FROM t");
    assert!(!s.distinct);
    assert_eq!(select("SELECT * FROM t").selection, Selection::Wildcard);
}

#[test]
fn selectors() {
    let s = select(
        "SELECT COUNT(*), count(1) AS c, WRITETIME(v), TTL(v), MAXWRITETIME(v), CAST(a AS text), ks.f(a, 1), \
         token(a), u.f, m['k'], l[1..2], 'lit', ? FROM t",
    );
    let Selection::Selectors(sels) = s.selection else { panic!() };
    let exprs: Vec<_> = sels.iter().map(|s| s.expr.clone()).collect();
    let column = |n: &str| SelectorExpr::Column(n.into());
    assert_eq!(
        exprs,
        vec![
            SelectorExpr::CountAll,
            SelectorExpr::FunctionCall { name: qn("count"), args: vec![SelectorExpr::Term(int("1"))] },
            SelectorExpr::WriteTime("v".into()),
            SelectorExpr::Ttl("v".into()),
            SelectorExpr::MaxWriteTime("v".into()),
            SelectorExpr::Cast { selector: Box::new(column("a")), ty: NativeType::Text },
            SelectorExpr::FunctionCall {
                name: QualifiedName::qualified("ks", "f"),
                args: vec![column("a"), SelectorExpr::Term(int("1"))]
            },
            SelectorExpr::FunctionCall { name: qn("token"), args: vec![column("a")] },
            SelectorExpr::Field { selector: Box::new(column("u")), field: "f".into() },
            SelectorExpr::Element { selector: Box::new(column("m")), key: string("k") },
            SelectorExpr::Slice { selector: Box::new(column("l")), from: Some(int("1")), to: Some(int("2")) },
            SelectorExpr::Term(string("lit")),
            SelectorExpr::Term(marker(0, None)),
        ]
    );
    assert_eq!(sels[1].alias.as_deref(), Some("c"));
}

#[test]
fn relations() {
    let s = select(
        "SELECT * FROM t WHERE a = 1 AND b < 2 AND c <= 3 AND d > 4 AND e >= 5 AND f != 6 AND g IN (7, 8) \
         AND h CONTAINS 9 AND i CONTAINS KEY 10 AND j LIKE 'x%' AND k IS NOT NULL AND m['k'] = 11 \
         AND (n, o) > (12, 13) AND (p, q) IN ((14, 15)) AND token(r, s) >= 16 AND (u = 17)",
    );
    let ops: Vec<_> = s
        .where_clause
        .iter()
        .map(|r| match r {
            Relation::Compare { op, .. } => op.as_str(),
            Relation::In { .. } => "IN",
            Relation::IsNotNull { .. } => "IS NOT NULL",
        })
        .collect();
    assert_eq!(
        ops,
        [
            "=",
            "<",
            "<=",
            ">",
            ">=",
            "!=",
            "IN",
            "CONTAINS",
            "CONTAINS KEY",
            "LIKE",
            "IS NOT NULL",
            "=",
            ">",
            "IN",
            ">=",
            "="
        ]
    );
    assert_eq!(
        s.where_clause[11],
        Relation::Compare {
            lhs: RelationLhs::MapElement { column: "m".into(), key: string("k") },
            op: Operator::Eq,
            rhs: int("11")
        }
    );
    assert_eq!(
        s.where_clause[12],
        Relation::Compare {
            lhs: RelationLhs::Tuple(vec!["n".into(), "o".into()]),
            op: Operator::Gt,
            rhs: Term::Tuple(vec![int("12"), int("13")])
        }
    );
    assert_eq!(
        s.where_clause[14],
        Relation::Compare {
            lhs: RelationLhs::Token(vec!["r".into(), "s".into()]),
            op: Operator::Gte,
            rhs: int("16")
        }
    );
    assert_eq!(s.where_clause[15], eq("u", int("17")));
}

#[test]
fn describe() {
    let target = |text: &str| match stmt(text) {
        Statement::Describe(d) => d.target,
        other => panic!("{other:?}"),
    };
    assert_eq!(target("DESCRIBE KEYSPACES"), DescribeTarget::Keyspaces);
    assert_eq!(target("DESC KEYSPACE"), DescribeTarget::Keyspace { only: false, name: None });
    assert_eq!(
        target("DESC ONLY KEYSPACE ks"),
        DescribeTarget::Keyspace { only: true, name: Some("ks".into()) }
    );
    assert_eq!(target("DESCRIBE TABLE ks.t"), DescribeTarget::Table(QualifiedName::qualified("ks", "t")));
    assert_eq!(target("DESCRIBE FULL SCHEMA"), DescribeTarget::Schema { full: true });
    assert_eq!(target("DESCRIBE TYPE t"), DescribeTarget::Type(qn("t")));
    assert_eq!(target("DESCRIBE type"), DescribeTarget::Generic(qn("type")));
    assert_eq!(target("DESCRIBE ks.t"), DescribeTarget::Generic(QualifiedName::qualified("ks", "t")));
    let Statement::Describe(d) = stmt("DESCRIBE CLUSTER WITH INTERNALS") else { panic!() };
    assert!(d.with_internals);
    assert_eq!(d.target, DescribeTarget::Cluster);
}

#[test]
fn unsupported_statements() {
    for (text, kind) in [
        ("CREATE INDEX ON t (v)", "CREATE INDEX"),
        ("create custom index i on t (v) using 'x'", "CREATE CUSTOM INDEX"),
        ("CREATE MATERIALIZED VIEW v AS SELECT * FROM t", "CREATE MATERIALIZED VIEW"),
        ("CREATE TYPE a (b int)", "CREATE TYPE"),
        ("CREATE OR REPLACE FUNCTION f() CALLED ON NULL INPUT RETURNS int LANGUAGE java AS $$ return 1; $$", "CREATE FUNCTION"),
        ("CREATE AGGREGATE a (int) SFUNC f STYPE int", "CREATE AGGREGATE"),
        ("DROP TRIGGER t ON x", "DROP TRIGGER"),
        ("ALTER ROLE r WITH LOGIN = true", "ALTER ROLE"),
        ("GRANT ALL ON KEYSPACE ks TO r", "GRANT"),
        ("REVOKE SELECT ON ks.t FROM r", "REVOKE"),
        ("LIST ROLES", "LIST ROLES"),
        ("LIST ALL", "LIST PERMISSIONS"),
        ("CREATE USER u", "CREATE USER"),
    ] {
        assert_eq!(stmt(text), Statement::Unsupported { kind: kind.into() }, "{text}");
    }
    // The body is skipped up to the next `;`.
    let v = parse_statements("CREATE INDEX ON t (v); SELECT * FROM t").unwrap();
    assert_eq!(v.len(), 2);
}

// ----- errors --------------------------------------------------------------------------------

#[test]
fn error_format_and_positions() {
    assert_eq!(err("SELEC * FROM t"), "line 1:0 no viable alternative at input 'SELEC'");
    assert_eq!(err("SELECT * FORM t"), "line 1:9 mismatched input 'FORM' expecting FROM");
    assert_eq!(err("SELECT * FROM t WHERE (a, b"), "line 1:27 mismatched input '<EOF>' expecting {',', ')'}");
    assert_eq!(err("INSERT INTO t (a) VALUES (1"), "line 1:27 mismatched input '<EOF>' expecting {',', ')'}");
    assert_eq!(err(""), "line 1:0 no viable alternative at input '<EOF>'");
    // Lines are 1-based, columns 0-based in characters.
    let e = parse_statement("SELECT 'é',\n  a\nFORM t").unwrap_err();
    assert_eq!((e.line, e.column), (3, 0));
    let e = parse_statement("SELECT 'ééé' FORM t").unwrap_err();
    assert_eq!((e.line, e.column), (1, 13));
    assert_eq!(e.message, "mismatched input 'FORM' expecting {'.', '[', AS, ',', FROM}");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().starts_with("line 1:13 "));
    // Long tokens are shortened in messages.
    let long = format!("SELECT * FROM t WHERE a = 1 '{}'", "x".repeat(100));
    let e = err(&long);
    assert!(e.contains(&format!("input ''{}...' expecting", "x".repeat(39))), "{e}");
}

#[test]
fn nesting_limit() {
    let ok = format!("SELECT * FROM t WHERE a = {}1{}", "[".repeat(50), "]".repeat(50));
    assert!(parse_statement(&ok).is_ok());
    for (open, close) in [("(", ")"), ("[", "]"), ("{", "}"), ("fn(", ")")] {
        let deep = format!("SELECT * FROM t WHERE a = {}1{}", open.repeat(100), close.repeat(100));
        let e = parse_statement(&deep).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{open}: {e}");
    }
    let deep_type = format!("{}int{}", "list<".repeat(100), ">".repeat(100));
    assert!(parse_type(&deep_type).unwrap_err().message.contains("nested too deeply"));
    let deep_where = format!("SELECT * FROM t WHERE {}a = 1{}", "(".repeat(100), ")".repeat(100));
    assert!(parse_statement(&deep_where).unwrap_err().message.contains("nested too deeply"));
    let deep_sel = format!("SELECT {}a{} FROM t", "f(".repeat(100), ")".repeat(100));
    assert!(parse_statement(&deep_sel).unwrap_err().message.contains("nested too deeply"));
}
