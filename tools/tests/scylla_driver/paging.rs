//! Paging over 10,000 rows with the driver's pager and with manual paging states: every row
//! exactly once, in clustering order within a partition and in token order across partitions.

use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::common::TestNode;
use futures::{StreamExt, TryStreamExt};
use rand::{Rng, SeedableRng};
use scylla::client::session::Session;
use scylla::response::PagingState;
use scylla::statement::Statement;

const ROWS: i32 = 10_000;
/// Concurrent inserts while loading.
const LOAD_CONCURRENCY: usize = 64;

async fn load_one_partition(session: &Session) {
    session
        .query_unpaged("CREATE TABLE wide (p int, c int, v text, PRIMARY KEY (p, c))", ())
        .await
        .expect("load_one_partition");
    let insert =
        session.prepare("INSERT INTO wide (p, c, v) VALUES (?, ?, ?)").await.expect("load_one_partition");
    futures::stream::iter(0..ROWS)
        .map(|c| {
            let insert = &insert;
            async move { session.execute_unpaged(insert, (0, c, format!("value {c}"))).await }
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .expect("load_one_partition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pager_reads_a_wide_partition_in_clustering_order_exactly_once() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    load_one_partition(&session).await;
    // Prepared, with a page size that divides the row count, and unprepared with one that
    // does not.
    let mut prepared = session.prepare("SELECT c, v FROM wide WHERE p = ?").await.unwrap();
    prepared.set_page_size(1000);
    let rows: Vec<(i32, String)> = session
        .execute_iter(prepared, (0,))
        .await
        .unwrap()
        .rows_stream::<(i32, String)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), ROWS as usize);
    for (i, (c, v)) in rows.iter().enumerate() {
        assert_eq!(*c, i as i32, "row {i} out of order");
        assert_eq!(v, &format!("value {c}"));
    }
    let statement = Statement::new("SELECT c FROM wide WHERE p = 0").with_page_size(333);
    let cs: Vec<(i32,)> = session
        .query_iter(statement, ())
        .await
        .unwrap()
        .rows_stream::<(i32,)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(cs.into_iter().map(|(c,)| c).collect::<Vec<_>>(), (0..ROWS).collect::<Vec<_>>());
    // Reversed order and a LIMIT larger than a page.
    let statement =
        Statement::new("SELECT c FROM wide WHERE p = 0 ORDER BY c DESC LIMIT 2500").with_page_size(1000);
    let cs: Vec<(i32,)> = session
        .query_iter(statement, ())
        .await
        .unwrap()
        .rows_stream::<(i32,)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        cs.into_iter().map(|(c,)| c).collect::<Vec<_>>(),
        (ROWS - 2500..ROWS).rev().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_paging_states_resume_on_another_connection() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    load_one_partition(&session).await;
    let mut prepared = session.prepare("SELECT c FROM wide WHERE p = ?").await.unwrap();
    prepared.set_page_size(1000);
    let other = node.session().await;
    other.use_keyspace("ks", false).await.unwrap();
    let mut state = PagingState::start();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        // Alternate sessions: a paging state is not tied to a connection.
        let s = if pages % 2 == 0 { &session } else { &other };
        let (result, response) = s.execute_single_page(&prepared, (0,), state).await.unwrap();
        let rows = result.into_rows_result().unwrap();
        assert!(rows.rows_num() <= 1000, "a page holds at most the page size");
        seen.extend(rows.rows::<(i32,)>().unwrap().map(|r| r.unwrap().0));
        pages += 1;
        match response.into_paging_control_flow() {
            ControlFlow::Break(()) => break,
            ControlFlow::Continue(next) => state = next,
        }
        assert!(pages <= 11, "too many pages");
    }
    assert_eq!(seen, (0..ROWS).collect::<Vec<_>>());
    assert!(pages == 10 || pages == 11, "{pages} pages for {ROWS} rows of 1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pager_reads_every_partition_once_in_token_order() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session.query_unpaged("CREATE TABLE narrow (k bigint PRIMARY KEY, v int)", ()).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(crate::common::seed());
    let keys: HashSet<i64> = (0..ROWS).map(|_| rng.random()).collect();
    let insert = session.prepare("INSERT INTO narrow (k, v) VALUES (?, ?)").await.unwrap();
    futures::stream::iter(keys.iter().copied())
        .map(|k| {
            let insert = &insert;
            let session = &session;
            async move { session.execute_unpaged(insert, (k, (k % 1000) as i32)).await }
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let statement = Statement::new("SELECT token(k), k, v FROM narrow").with_page_size(777);
    let rows: Vec<(i64, i64, i32)> = session
        .query_iter(statement, ())
        .await
        .unwrap()
        .rows_stream::<(i64, i64, i32)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), keys.len());
    let returned: HashSet<i64> = rows.iter().map(|r| r.1).collect();
    assert_eq!(returned, keys, "every partition exactly once");
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "rows in strictly increasing token order");
    assert!(rows.iter().all(|(_, k, v)| *v == (k % 1000) as i32));
    // The tokens are the driver's own.
    let prepared = session.prepare("SELECT k FROM narrow WHERE k = ?").await.unwrap();
    for (token, k, _) in rows.iter().take(100) {
        let computed = prepared.calculate_token(&(k,)).unwrap().unwrap();
        assert_eq!(computed.value(), *token, "token of {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_skips_deleted_rows_and_ranges_across_page_boundaries() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session
        .query_unpaged("CREATE TABLE t (p int, c int, s text STATIC, v int, PRIMARY KEY (p, c))", ())
        .await
        .unwrap();
    let insert = session.prepare("INSERT INTO t (p, c, v) VALUES (?, ?, ?)").await.unwrap();
    const PARTITIONS: i32 = 20;
    const PER_PARTITION: i32 = 150;
    let keys: Vec<(i32, i32)> =
        (0..PARTITIONS).flat_map(|p| (0..PER_PARTITION).map(move |c| (p, c))).collect();
    futures::stream::iter(keys)
        .map(|(p, c)| {
            let (insert, session) = (&insert, &session);
            async move { session.execute_unpaged(insert, (p, c, p * 1000 + c)).await }
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    for p in 0..PARTITIONS {
        crate::common::exec(&session, "UPDATE t SET s = ? WHERE p = ?", (format!("static {p}"), p)).await;
    }
    // Deleted rows, a deleted range, and a whole deleted partition.
    let delete_row = session.prepare("DELETE FROM t WHERE p = ? AND c = ?").await.unwrap();
    for p in 0..PARTITIONS {
        for c in (0..PER_PARTITION).filter(|c| c % 3 == 0) {
            session.execute_unpaged(&delete_row, (p, c)).await.unwrap();
        }
        crate::common::exec(&session, "DELETE FROM t WHERE p = ? AND c >= ? AND c < ?", (p, 40, 100)).await;
    }
    crate::common::exec(&session, "DELETE FROM t WHERE p = ?", (7,)).await;
    let alive = |p: i32, c: i32| p != 7 && c % 3 != 0 && !(40..100).contains(&c);

    // One partition, small pages.
    let statement = Statement::new("SELECT c, s, v FROM t WHERE p = 3").with_page_size(7);
    let rows: Vec<(i32, Option<String>, i32)> = session
        .query_iter(statement, ())
        .await
        .unwrap()
        .rows_stream::<(i32, Option<String>, i32)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let expected: Vec<(i32, Option<String>, i32)> = (0..PER_PARTITION)
        .filter(|c| alive(3, *c))
        .map(|c| (c, Some("static 3".to_string()), 3000 + c))
        .collect();
    assert_eq!(rows, expected);

    // The whole table: partitions in token order, rows in clustering order, each once.
    let statement = Statement::new("SELECT token(p), p, c, s FROM t").with_page_size(37);
    let rows: Vec<(i64, i32, i32, Option<String>)> = session
        .query_iter(statement, ())
        .await
        .unwrap()
        .rows_stream::<(i64, i32, i32, Option<String>)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let expected_count =
        (0..PARTITIONS).map(|p| (0..PER_PARTITION).filter(|c| alive(p, *c)).count()).sum::<usize>();
    assert_eq!(rows.len(), expected_count);
    assert!(rows.windows(2).all(|w| (w[0].0, w[0].2) < (w[1].0, w[1].2)), "token, then clustering order");
    assert!(rows
        .iter()
        .all(|(_, p, c, s)| alive(*p, *c) && s.as_deref() == Some(format!("static {p}").as_str())));

    // Aggregates count every page's rows, whatever the page size.
    let count = Statement::new("SELECT count(*) FROM t").with_page_size(10);
    let (n,): (i64,) =
        session.query_unpaged(count, ()).await.unwrap().into_rows_result().unwrap().single_row().unwrap();
    assert_eq!(n, expected_count as i64);
}
