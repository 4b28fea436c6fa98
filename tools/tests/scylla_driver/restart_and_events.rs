//! What a driver relies on across a node restart (schema, data, host id and tokens kept;
//! prepared statements re-prepared), and schema-change events pushed to other sessions.

use std::time::{Duration, Instant};

use crate::common::{exec, select, TestNode};

/// Retries `f` until it succeeds or `limit` passes (the driver reconnects in the background).
async fn eventually<T, E: std::fmt::Debug, F, Fut>(limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() > limit => panic!("still failing after {limit:?}: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_data_and_identity_survive_a_restart() {
    let mut node = TestNode::start();
    let (host_id, tokens) = {
        let session = node.session_in("ks").await;
        session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text)", ()).await.unwrap();
        for k in 0..100 {
            exec(&session, "INSERT INTO t (k, v) VALUES (?, ?)", (k, format!("v{k}"))).await;
        }
        let local: Vec<(uuid::Uuid, Vec<String>)> =
            select(&session, "SELECT host_id, tokens FROM system.local WHERE key = 'local'", ()).await;
        local.into_iter().next().unwrap()
    };
    node.restart();
    let session = node.session().await;
    let state = session.get_cluster_state();
    assert!(state.get_keyspace("ks").is_some_and(|k| k.tables.contains_key("t")), "schema after restart");
    let mut rows: Vec<(i32, String)> = select(&session, "SELECT k, v FROM ks.t", ()).await;
    rows.sort();
    assert_eq!(rows, (0..100).map(|k| (k, format!("v{k}"))).collect::<Vec<_>>());
    let local: Vec<(uuid::Uuid, Vec<String>)> =
        select(&session, "SELECT host_id, tokens FROM system.local WHERE key = 'local'", ()).await;
    let (host_id_after, tokens_after) = local.into_iter().next().unwrap();
    assert_eq!(tokens_after, tokens, "tokens are chosen once and kept");
    assert_eq!(host_id_after, host_id, "the host id identifies the node across restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_work_again_after_a_restart() {
    let mut node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text)", ()).await.unwrap();
    let insert = session.prepare("INSERT INTO t (k, v) VALUES (?, ?)").await.unwrap();
    let read = session.prepare("SELECT v FROM t WHERE k = ?").await.unwrap();
    session.execute_unpaged(&insert, (1, "before")).await.unwrap();
    node.restart();
    // The restarted node knows no prepared statements: EXECUTE gets Unprepared and the driver
    // prepares again on the new connection.
    eventually(Duration::from_secs(20), || session.execute_unpaged(&insert, (2, "after"))).await;
    let result = session.execute_unpaged(&read, (1,)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(result.single_row::<(String,)>().unwrap(), ("before".to_string(),));
    let result = session.execute_unpaged(&read, (2,)).await.unwrap().into_rows_result().unwrap();
    assert_eq!(result.single_row::<(String,)>().unwrap(), ("after".to_string(),));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_by_one_session_reach_another_through_events() {
    let node = TestNode::start();
    // This driver batches the schema work of SCHEMA_CHANGE events until its periodic metadata
    // refresh, and by default that refresh re-reads only the keyspaces events named: with a
    // short interval, the watcher learns of the table only if the event reached it.
    let watcher = scylla::client::session_builder::SessionBuilder::new()
        .known_node_addr(node.address)
        .cluster_metadata_refresh_interval(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let changer = node.session_in("ks").await;
    changer.query_unpaged("CREATE TABLE pushed (k int PRIMARY KEY)", ()).await.unwrap();
    // No refresh_metadata() on the watcher.
    let start = Instant::now();
    loop {
        let state = watcher.get_cluster_state();
        if state.get_keyspace("ks").is_some_and(|k| k.tables.contains_key("pushed")) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the watcher never saw the new table");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
