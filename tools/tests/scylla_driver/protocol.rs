//! Protocol features the driver uses: compression (lz4, snappy), large values, unset bind
//! values, and many concurrent requests on one connection.

use crate::common::{exec, select, TestNode};
use futures::{StreamExt, TryStreamExt};
use scylla::client::session_builder::SessionBuilder;
use scylla::client::Compression;
use scylla::value::MaybeUnset;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_connections_carry_large_values() {
    let node = TestNode::start();
    let setup = node.session_in("ks").await;
    setup.query_unpaged("CREATE TABLE big (k int PRIMARY KEY, b blob, t text)", ()).await.unwrap();
    // Compressible and incompressible values of a few MiB (the frame limit is 16 MiB).
    let text = "sibyl ".repeat(500_000);
    let noise: Vec<u8> = (0..3_000_000_u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (k, compression) in [(1, None), (2, Some(Compression::Lz4)), (3, Some(Compression::Snappy))] {
        let session = SessionBuilder::new()
            .known_node_addr(node.address)
            .compression(compression)
            .use_keyspace("ks", false)
            .build()
            .await
            .unwrap_or_else(|e| panic!("connect with {compression:?}: {e}"));
        exec(&session, "INSERT INTO big (k, b, t) VALUES (?, ?, ?)", (k, &noise, &text)).await;
        let rows: Vec<(Vec<u8>, String)> = select(&session, "SELECT b, t FROM big WHERE k = ?", (k,)).await;
        assert_eq!(rows.len(), 1, "{compression:?}");
        assert!(rows[0].0 == noise, "blob through {compression:?}");
        assert!(rows[0].1 == text, "text through {compression:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_bind_values_leave_cells_untouched() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v text, w text)", ()).await.unwrap();
    exec(&session, "INSERT INTO t (k, v, w) VALUES (?, ?, ?)", (1, "v1", "w1")).await;
    // Unset (length -2) writes nothing; null (length -1) deletes.
    exec(
        &session,
        "INSERT INTO t (k, v, w) VALUES (?, ?, ?)",
        (1, MaybeUnset::Set("v2"), MaybeUnset::<&str>::Unset),
    )
    .await;
    let rows: Vec<(Option<String>, Option<String>)> =
        select(&session, "SELECT v, w FROM t WHERE k = ?", (1,)).await;
    assert_eq!(rows, [(Some("v2".to_string()), Some("w1".to_string()))]);
    exec(&session, "UPDATE t SET v = ?, w = ? WHERE k = ?", (MaybeUnset::<&str>::Unset, None::<&str>, 1))
        .await;
    let rows: Vec<(Option<String>, Option<String>)> =
        select(&session, "SELECT v, w FROM t WHERE k = ?", (1,)).await;
    assert_eq!(rows, [(Some("v2".to_string()), None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_concurrent_requests_on_one_connection() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE t (k int PRIMARY KEY, v int)", ()).await.unwrap();
    let insert = session.prepare("INSERT INTO t (k, v) VALUES (?, ?)").await.unwrap();
    // More requests in flight than the node's per-connection limit (1024): the node stops
    // reading until some finish, and every request still completes.
    const REQUESTS: i32 = 5000;
    futures::stream::iter(0..REQUESTS)
        .map(|k| {
            let (insert, session) = (&insert, &session);
            async move { session.execute_unpaged(insert, (k, k * 2)).await }
        })
        .buffer_unordered(2000)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let (n,): (i64,) = session
        .query_unpaged("SELECT count(*) FROM t", ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    assert_eq!(n, i64::from(REQUESTS));
}
