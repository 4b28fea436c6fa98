//! Logged and unlogged batches, mixing prepared and unprepared statements and partitions.

use crate::common::{select, TestNode};
use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::statement::batch::{Batch, BatchType};

async fn setup(node: &TestNode) -> Session {
    let session = node.session_in("ks").await;
    session
        .query_unpaged("CREATE TABLE a (k int, c int, v text, PRIMARY KEY (k, c))", ())
        .await
        .expect("setup");
    session.query_unpaged("CREATE TABLE b (k text PRIMARY KEY, n bigint)", ()).await.expect("setup");
    session
}

async fn contents(session: &Session) -> (Vec<(i32, i32, String)>, Vec<(String, i64)>) {
    let mut a: Vec<(i32, i32, String)> = select(session, "SELECT k, c, v FROM a", ()).await;
    a.sort();
    let mut b: Vec<(String, i64)> = select(session, "SELECT k, n FROM b", ()).await;
    b.sort();
    (a, b)
}

async fn run_batch(session: &Session, kind: BatchType) {
    let mut batch = Batch::new(kind);
    let insert_a = session.prepare("INSERT INTO a (k, c, v) VALUES (?, ?, ?)").await.expect("run_batch");
    batch.append_statement(insert_a.clone());
    batch.append_statement(insert_a);
    batch.append_statement("INSERT INTO b (k, n) VALUES (?, ?)");
    batch.append_statement("UPDATE a SET v = 'literal' WHERE k = 2 AND c = 2");
    let delete = session.prepare("DELETE FROM b WHERE k = ?").await.expect("run_batch");
    batch.append_statement(delete);
    session
        .batch(&batch, ((1, 1, "one"), (1, 2, "two"), ("x", 10_i64), (), ("gone",)))
        .await
        .expect("run_batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_batch_applies_every_statement() {
    let node = TestNode::start();
    let session = setup(&node).await;
    session.query_unpaged("INSERT INTO b (k, n) VALUES ('gone', 1)", ()).await.unwrap();
    run_batch(&session, BatchType::Logged).await;
    let (a, b) = contents(&session).await;
    assert_eq!(a, [(1, 1, "one".into()), (1, 2, "two".into()), (2, 2, "literal".into())]);
    assert_eq!(b, [("x".into(), 10)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlogged_batch_applies_every_statement() {
    let node = TestNode::start();
    let session = setup(&node).await;
    session.query_unpaged("INSERT INTO b (k, n) VALUES ('gone', 1)", ()).await.unwrap();
    run_batch(&session, BatchType::Unlogged).await;
    let (a, b) = contents(&session).await;
    assert_eq!(a, [(1, 1, "one".into()), (1, 2, "two".into()), (2, 2, "literal".into())]);
    assert_eq!(b, [("x".into(), 10)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_cql_text_with_a_timestamp_and_an_empty_batch() {
    let node = TestNode::start();
    let session = setup(&node).await;
    session
        .query_unpaged(
            "BEGIN BATCH USING TIMESTAMP 1000 \
               INSERT INTO a (k, c, v) VALUES (5, 1, 'old'); \
               INSERT INTO b (k, n) VALUES ('t', 1); \
             APPLY BATCH",
            (),
        )
        .await
        .unwrap();
    let times: Vec<(i64,)> = select(&session, "SELECT WRITETIME(v) FROM a WHERE k = 5 AND c = 1", ()).await;
    assert_eq!(times, [(1000,)]);
    // An older batch loses against the newer cells.
    session
        .query_unpaged("BEGIN UNLOGGED BATCH USING TIMESTAMP 999 UPDATE a SET v = 'older' WHERE k = 5 AND c = 1; APPLY BATCH", ())
        .await
        .unwrap();
    let v: Vec<(String,)> = select(&session, "SELECT v FROM a WHERE k = 5 AND c = 1", ()).await;
    assert_eq!(v, [("old".to_string(),)]);
    // An empty batch is legal.
    session.query_unpaged("BEGIN BATCH APPLY BATCH", ()).await.unwrap();
    session.batch(&Batch::new(BatchType::Logged), Vec::<()>::new()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_statement_fails_the_whole_batch() {
    let node = TestNode::start();
    let session = setup(&node).await;
    let result = session
        .query_unpaged(
            "BEGIN BATCH INSERT INTO a (k, c, v) VALUES (9, 9, 'nine'); INSERT INTO missing (k) VALUES (1); APPLY BATCH",
            (),
        )
        .await;
    match result {
        Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::Invalid, _))) => {}
        other => panic!("expected an Invalid error, got {other:?}"),
    }
    let (a, _) = contents(&session).await;
    assert!(a.is_empty(), "nothing of a failed batch is applied: {a:?}");
}
