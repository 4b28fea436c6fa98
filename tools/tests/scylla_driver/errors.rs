//! Server errors reach the driver as its error kinds, and an EXECUTE of a statement the server
//! no longer knows (after DROP TABLE / CREATE TABLE of the same name) is re-prepared
//! transparently.

use crate::common::{exec, select, TestNode};
use scylla::errors::{
    BadQuery, DbError, ExecutionError, PrepareError, RequestAttemptError, UseKeyspaceError,
};

fn db_error(result: Result<impl std::fmt::Debug, ExecutionError>) -> (DbError, String) {
    match result {
        Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, message))) => (e, message),
        Err(ExecutionError::PrepareError(PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(e, message),
        })) => (e, message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_errors_are_syntax_errors() {
    let node = TestNode::start();
    let session = node.session().await;
    let (e, message) = db_error(session.query_unpaged("SELEC * FROM system.local", ()).await);
    assert_eq!(e, DbError::SyntaxError, "{message}");
    assert!(!message.is_empty());
    let (e, _) = db_error(session.query_unpaged("SELECT * FROM system.local WHERE", ()).await);
    assert_eq!(e, DbError::SyntaxError);
    match session.prepare("INSERT INTO t (k) VALUE (1)").await {
        Err(PrepareError::AllAttemptsFailed { first_attempt: RequestAttemptError::DbError(e, _) }) => {
            assert_eq!(e, DbError::SyntaxError)
        }
        other => panic!("expected a syntax error from PREPARE, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_queries_are_invalid() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int, c int, v text, PRIMARY KEY (k, c))", ()).await.unwrap();
    for cql in [
        "SELECT * FROM ks.missing",
        "SELECT * FROM missing_ks.t",
        "SELECT nope FROM t",
        "INSERT INTO t (k, v) VALUES (1, 'no clustering key')",
        "INSERT INTO t (k, c, v) VALUES ('text', 1, 'x')",
        "SELECT * FROM t WHERE v = 'x'",
        "UPDATE t SET k = 1 WHERE k = 1 AND c = 1",
        "DROP TABLE missing",
    ] {
        let (e, message) = db_error(session.query_unpaged(cql, ()).await);
        assert_eq!(e, DbError::Invalid, "{cql}: {message}");
    }
    match session.use_keyspace("missing_ks", false).await {
        Err(UseKeyspaceError::RequestError(RequestAttemptError::DbError(DbError::Invalid, _))) => {}
        other => panic!("USE of a missing keyspace: {other:?}"),
    }
}

/// Cassandra rejects a table without exactly one PRIMARY KEY when it prepares the statement:
/// `InvalidRequest` (0x2200) "No PRIMARY KEY specifed for table 'ks.bad' (exactly one
/// required)", not a syntax error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_exactly_one_primary_key_is_invalid_not_a_syntax_error() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    for cql in [
        "CREATE TABLE bad (k int, v text)",
        "CREATE TABLE bad (k int PRIMARY KEY, v text PRIMARY KEY)",
        "CREATE TABLE bad (k int PRIMARY KEY, v text, PRIMARY KEY (v))",
    ] {
        let (e, message) = db_error(session.query_unpaged(cql, ()).await);
        assert_eq!(e, DbError::Invalid, "{cql}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_replication_and_table_options_are_configuration_errors() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    for cql in [
        "CREATE KEYSPACE x WITH replication = {'class': 'NoSuchStrategy'}",
        "CREATE KEYSPACE x WITH replication = {'class': 'SimpleStrategy'}",
        "CREATE KEYSPACE x WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1, 'bogus': 1}",
        "CREATE TABLE t (k int PRIMARY KEY) WITH nonsense = 1",
        "CREATE TABLE t (k int PRIMARY KEY) WITH default_time_to_live = -1",
    ] {
        let (e, message) = db_error(session.query_unpaged(cql, ()).await);
        assert_eq!(e, DbError::ConfigError, "{cql}: {message}");
    }
}

/// Cassandra 4 (whose release_version Sibyl reports) answers DROP KEYSPACE of a missing
/// keyspace with InvalidRequest "Keyspace 'missing' doesn't exist"; the ConfigurationException
/// "Cannot drop non existing keyspace" is Cassandra 3's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_missing_keyspace_is_invalid() {
    let node = TestNode::start();
    let session = node.session().await;
    let (e, message) = db_error(session.query_unpaged("DROP KEYSPACE missing", ()).await);
    assert_eq!(e, DbError::Invalid, "{message}");
    session.query_unpaged("DROP KEYSPACE IF EXISTS missing", ()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_what_exists_is_already_exists() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    let (e, _) = db_error(
        session
            .query_unpaged(
                "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
                (),
            )
            .await,
    );
    assert_eq!(e, DbError::AlreadyExists { keyspace: "ks".into(), table: String::new() });
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY)", ()).await.unwrap();
    let (e, _) = db_error(session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY)", ()).await);
    assert_eq!(e, DbError::AlreadyExists { keyspace: "ks".into(), table: "t".into() });
    // IF NOT EXISTS succeeds quietly.
    session.query_unpaged("CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY)", ()).await.unwrap();
    session
        .query_unpaged(
            "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            (),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bind_types_are_rejected_by_the_driver() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text)", ()).await.unwrap();
    let prepared = session.prepare("INSERT INTO t (k, v) VALUES (?, ?)").await.unwrap();
    // bigint for an int column: the PREPARE metadata says int, so the driver refuses.
    match session.execute_unpaged(&prepared, (1_i64, "x")).await {
        Err(ExecutionError::BadQuery(BadQuery::SerializationError(_))) => {}
        other => panic!("expected a serialization error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_are_reprepared_after_the_table_is_recreated() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text)", ()).await.unwrap();
    let insert = session.prepare("INSERT INTO t (k, v) VALUES (?, ?)").await.unwrap();
    let read = session.prepare("SELECT k, v FROM t WHERE k = ?").await.unwrap();
    session.execute_unpaged(&insert, (1, "before")).await.unwrap();

    session.query_unpaged("DROP TABLE t", ()).await.unwrap();
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text)", ()).await.unwrap();

    // The server forgot the statements with the table: EXECUTE gets Unprepared, the driver
    // prepares again and retries, and the caller sees success.
    session.execute_unpaged(&insert, (2, "after")).await.unwrap();
    let rows = session.execute_unpaged(&read, (2,)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(rows.single_row::<(i32, String)>().unwrap(), (2, "after".to_string()));
    let old = session.execute_unpaged(&read, (1,)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(old.rows_num(), 0, "the old table's data is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reprepared_select_star_sees_the_new_columns() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text)", ()).await.unwrap();
    let read = session.prepare("SELECT * FROM t WHERE k = ?").await.unwrap();
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?)", (1, "one")).await;
    let rows: Vec<(i32, String)> = select(&session, "SELECT * FROM t WHERE k = ?", (1,)).await;
    assert_eq!(rows, [(1, "one".to_string())]);

    session.query_unpaged("DROP TABLE t", ()).await.unwrap();
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text, w int)", ()).await.unwrap();
    exec(&session, "INSERT INTO t (k, v, w) VALUES (?, ?, ?)", (1, "new", 7)).await;
    // The old statement id is unknown after the DROP; the re-prepared statement has the new
    // result metadata (three columns).
    let result = session.execute_unpaged(&read, (1,)).await.unwrap().into_rows_result().unwrap();
    let names: Vec<&str> = result.column_specs().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["k", "v", "w"]);
    assert_eq!(result.single_row::<(i32, String, i32)>().unwrap(), (1, "new".to_string(), 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_beyond_the_replicas_is_unavailable() {
    let node = TestNode::start();
    let session = node.session().await;
    session
        .query_unpaged(
            "CREATE KEYSPACE rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            (),
        )
        .await
        .unwrap();
    session.query_unpaged("CREATE TABLE rf3.t (k int PRIMARY KEY)", ()).await.unwrap();
    let mut insert = scylla::statement::Statement::new("INSERT INTO rf3.t (k) VALUES (1)");
    insert.set_consistency(scylla::statement::Consistency::All);
    let (e, message) = db_error(session.query_unpaged(insert, ()).await);
    assert!(
        matches!(e, DbError::Unavailable { required: 3, alive: 1, .. }),
        "one live node cannot meet ALL with three replicas: {e:?} {message}"
    );
}
