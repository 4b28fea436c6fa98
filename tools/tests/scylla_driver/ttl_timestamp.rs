//! USING TTL (short TTLs, then waiting) and USING TIMESTAMP (last write wins; older writes and
//! deletions lose), plus the driver's client-side default timestamp.

use std::time::Duration;

use crate::common::{exec, select, TestNode};
use scylla::statement::Statement;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expires_rows_and_cells() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text, w text)", ()).await.unwrap();
    // A whole row with a TTL bound as a value.
    exec(&session, "INSERT INTO t (k, v, w) VALUES (?, ?, ?) USING TTL ?", (1, "short", "lived", 1)).await;
    // A row without TTL where one cell gets a TTL by UPDATE.
    exec(&session, "INSERT INTO t (k, v, w) VALUES (?, ?, ?)", (2, "stays", "goes")).await;
    exec(&session, "UPDATE t USING TTL 2 SET w = ? WHERE k = ?", ("goes", 2)).await;
    let ttls: Vec<(Option<i32>, Option<i32>)> =
        select(&session, "SELECT TTL(v), TTL(w) FROM t WHERE k = ?", (2,)).await;
    assert_eq!(ttls[0].0, None);
    assert!(matches!(ttls[0].1, Some(1..=2)), "{ttls:?}");
    let ttl1: Vec<(Option<i32>,)> = select(&session, "SELECT TTL(v) FROM t WHERE k = ?", (1,)).await;
    assert!(matches!(ttl1[0].0, Some(0..=1)), "{ttl1:?}");
    assert_eq!(select::<(i32,)>(&session, "SELECT k FROM t WHERE k = ?", (1,)).await.len(), 1);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(
        select::<(i32,)>(&session, "SELECT k FROM t WHERE k = ?", (1,)).await.is_empty(),
        "row 1 expired"
    );
    let row2: Vec<(i32, Option<String>, Option<String>)> =
        select(&session, "SELECT k, v, w FROM t WHERE k = ?", (2,)).await;
    assert_eq!(row2, [(2, Some("stays".to_string()), None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_default_time_to_live_applies_and_ttl_0_overrides_it() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session
        .query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text) WITH default_time_to_live = 1", ())
        .await
        .unwrap();
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?)", (1, "default ttl")).await;
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?) USING TTL 0", (2, "forever")).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let rows: Vec<(i32,)> = select(&session, "SELECT k FROM t", ()).await;
    assert_eq!(rows, [(2,)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn using_timestamp_older_writes_and_deletes_lose() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text)", ()).await.unwrap();
    let read = |k: i32| {
        let session = &session;
        async move {
            select::<(Option<String>, Option<i64>)>(
                session,
                "SELECT v, WRITETIME(v) FROM t WHERE k = ?",
                (k,),
            )
            .await
            .into_iter()
            .next()
        }
    };
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?) USING TIMESTAMP ?", (1, "new", 2000_i64)).await;
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?) USING TIMESTAMP ?", (1, "old", 1000_i64)).await;
    assert_eq!(read(1).await, Some((Some("new".into()), Some(2000))));
    // A deletion older than the data does nothing.
    exec(&session, "DELETE FROM t USING TIMESTAMP ? WHERE k = ?", (1500_i64, 1)).await;
    assert_eq!(read(1).await, Some((Some("new".into()), Some(2000))));
    // A newer deletion wins, and shadows later writes with older timestamps.
    exec(&session, "DELETE FROM t USING TIMESTAMP ? WHERE k = ?", (2500_i64, 1)).await;
    assert_eq!(read(1).await, None);
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?) USING TIMESTAMP ?", (1, "shadowed", 2400_i64)).await;
    assert_eq!(read(1).await, None);
    exec(&session, "UPDATE t USING TIMESTAMP ? SET v = ? WHERE k = ?", (3000_i64, "newest", 1)).await;
    assert_eq!(read(1).await, Some((Some("newest".into()), Some(3000))));
    // Equal timestamps: the larger value wins (Cassandra's tie-break), whatever the order.
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?) USING TIMESTAMP ?", (2, "b", 5000_i64)).await;
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?) USING TIMESTAMP ?", (2, "a", 5000_i64)).await;
    assert_eq!(read(2).await, Some((Some("b".into()), Some(5000))));
    // Equal timestamps of a write and a deletion: the deletion wins.
    exec(&session, "DELETE v FROM t USING TIMESTAMP ? WHERE k = ?", (5000_i64, 2)).await;
    let after = read(2).await;
    assert!(after.is_none() || after == Some((None, None)), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_timestamps_are_used_as_write_times() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text)", ()).await.unwrap();
    // QUERY with the default-timestamp flag (0x20).
    let mut insert = Statement::new("INSERT INTO t (k, v) VALUES (1, 'client time')");
    insert.set_timestamp(Some(123_456_789));
    session.query_unpaged(insert, ()).await.unwrap();
    // EXECUTE with the flag.
    let mut prepared = session.prepare("INSERT INTO t (k, v) VALUES (?, ?)").await.unwrap();
    prepared.set_timestamp(Some(987_654_321));
    session.execute_unpaged(&prepared, (2, "prepared time")).await.unwrap();
    // An explicit USING TIMESTAMP beats the client's default timestamp.
    let mut both = Statement::new("INSERT INTO t (k, v) VALUES (3, 'both') USING TIMESTAMP 42");
    both.set_timestamp(Some(1_000_000));
    session.query_unpaged(both, ()).await.unwrap();
    let mut rows: Vec<(i32, i64)> = select(&session, "SELECT k, WRITETIME(v) FROM t", ()).await;
    rows.sort_unstable();
    assert_eq!(rows, [(1, 123_456_789), (2, 987_654_321), (3, 42)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_outlives_its_expired_insert_while_a_later_cell_lives() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text, w text)", ()).await.unwrap();
    // The INSERT's row marker and v expire; w, written by UPDATE without TTL, keeps the row.
    exec(&session, "INSERT INTO t (k, v) VALUES (?, ?) USING TTL 1", (1, "expires")).await;
    exec(&session, "UPDATE t SET w = ? WHERE k = ?", ("lives", 1)).await;
    // A row whose only content expires disappears with its primary key.
    exec(&session, "UPDATE t USING TTL 1 SET v = ? WHERE k = ?", ("only", 2)).await;
    // TTL on collection elements and bind markers for both TTL and TIMESTAMP.
    session.query_unpaged("CREATE TABLE c (k int PRIMARY KEY, s set<text>)", ()).await.unwrap();
    exec(
        &session,
        "UPDATE c USING TTL ? AND TIMESTAMP ? SET s = s + ? WHERE k = ?",
        (1, 10_i64, vec!["short"], 1),
    )
    .await;
    exec(&session, "UPDATE c SET s = s + ? WHERE k = ?", (vec!["long"], 1)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let rows: Vec<(i32, Option<String>, Option<String>)> =
        select(&session, "SELECT k, v, w FROM t", ()).await;
    assert_eq!(rows, [(1, None, Some("lives".to_string()))]);
    let sets: Vec<(Option<Vec<String>>,)> = select(&session, "SELECT s FROM c WHERE k = ?", (1,)).await;
    assert_eq!(sets, [(Some(vec!["long".to_string()]),)]);
}
