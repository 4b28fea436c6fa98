//! INSERT / UPDATE / DELETE through prepared statements with typed bind values: cells, rows,
//! clustering ranges, whole partitions, static columns and collection elements, on a table
//! with a composite partition key and a DESC clustering column.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{exec, select, TestNode};
use scylla::client::session::Session;

const TABLE: &str = "CREATE TABLE ev (a int, b text, c int, d text, s text STATIC, v text, n bigint, \
     l list<int>, st set<text>, m map<text, int>, PRIMARY KEY ((a, b), c, d)) \
     WITH CLUSTERING ORDER BY (c DESC, d ASC)";

async fn setup(node: &TestNode) -> Session {
    let session = node.session_in("ks").await;
    session.query_unpaged(TABLE, ()).await.expect("setup");
    session
}

type Key = (i32, String);
type Row = (i32, String, Option<String>, Option<String>);
type StaticOnly = (i32, String, Option<i32>, Option<String>, Option<String>);
type Collections = (Option<Vec<i32>>, Option<BTreeSet<String>>, Option<BTreeMap<String, i32>>);

async fn partition(session: &Session, key: &Key) -> Vec<Row> {
    select(session, "SELECT c, d, s, v FROM ev WHERE a = ? AND b = ?", key).await
}

async fn fill(session: &Session, key: &Key, cs: std::ops::RangeInclusive<i32>) {
    for c in cs {
        for d in ["x", "y"] {
            exec(
                session,
                "INSERT INTO ev (a, b, c, d, v) VALUES (?, ?, ?, ?, ?)",
                (key.0, &key.1, c, d, format!("v{c}{d}")),
            )
            .await;
        }
    }
}

fn cds(rows: &[Row]) -> Vec<(i32, &str)> {
    rows.iter().map(|r| (r.0, r.1.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_come_back_in_clustering_order_desc_then_asc() {
    let node = TestNode::start();
    let session = setup(&node).await;
    let key: Key = (7, "seven".into());
    fill(&session, &key, 1..=3).await;
    let rows = partition(&session, &key).await;
    assert_eq!(cds(&rows), [(3, "x"), (3, "y"), (2, "x"), (2, "y"), (1, "x"), (1, "y")]);
    assert_eq!(rows[0].3.as_deref(), Some("v3x"));
    // ORDER BY the reverse of the clustering order.
    let reversed: Vec<(i32, String)> =
        select(&session, "SELECT c, d FROM ev WHERE a = ? AND b = ? ORDER BY c ASC, d DESC", &key).await;
    assert_eq!(reversed.first(), Some(&(1, "y".to_string())));
    assert_eq!(reversed.last(), Some(&(3, "x".to_string())));
    // Slices and IN on the clustering columns, and LIMIT.
    let slice: Vec<(i32, String)> = select(
        &session,
        "SELECT c, d FROM ev WHERE a = ? AND b = ? AND c > ? AND c <= ?",
        (7, "seven", 1, 2),
    )
    .await;
    assert_eq!(slice, [(2, "x".to_string()), (2, "y".to_string())]);
    let within: Vec<(i32, String)> = select(
        &session,
        "SELECT c, d FROM ev WHERE a = ? AND b = ? AND c IN (1, 3) AND d = ?",
        (7, "seven", "y"),
    )
    .await;
    assert_eq!(within, [(3, "y".to_string()), (1, "y".to_string())]);
    let limited: Vec<(i32, String)> =
        select(&session, "SELECT c, d FROM ev WHERE a = ? AND b = ? LIMIT 3", &key).await;
    assert_eq!(limited.len(), 3);
    // Another partition with the same first key component is a different partition.
    assert!(partition(&session, &(7, "other".into())).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_overwrite_cells_and_create_rows() {
    let node = TestNode::start();
    let session = setup(&node).await;
    let key: Key = (1, "k".into());
    fill(&session, &key, 1..=1).await;
    exec(
        &session,
        "UPDATE ev SET v = ?, n = ? WHERE a = ? AND b = ? AND c = ? AND d = ?",
        ("new", 42_i64, 1, "k", 1, "x"),
    )
    .await;
    // UPDATE of a row that does not exist creates it (without a row marker).
    exec(&session, "UPDATE ev SET v = ? WHERE a = ? AND b = ? AND c = ? AND d = ?", ("made", 1, "k", 9, "z"))
        .await;
    let rows: Vec<(i32, String, Option<String>, Option<i64>)> =
        select(&session, "SELECT c, d, v, n FROM ev WHERE a = ? AND b = ?", &key).await;
    assert_eq!(
        rows,
        [
            (9, "z".into(), Some("made".into()), None),
            (1, "x".into(), Some("new".into()), Some(42)),
            (1, "y".into(), Some("v1y".into()), None),
        ]
    );
    // Setting a cell to null deletes it; a row created by UPDATE then disappears entirely.
    exec(
        &session,
        "UPDATE ev SET v = ? WHERE a = ? AND b = ? AND c = ? AND d = ?",
        (None::<String>, 1, "k", 9, "z"),
    )
    .await;
    let rows = partition(&session, &key).await;
    assert_eq!(cds(&rows), [(1, "x"), (1, "y")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_cells_rows_clustering_ranges_and_partitions() {
    let node = TestNode::start();
    let session = setup(&node).await;
    let key: Key = (2, "del".into());
    let other: Key = (2, "keep".into());
    fill(&session, &key, 1..=6).await;
    fill(&session, &other, 1..=2).await;

    // A cell: the row stays (it has a row marker from INSERT).
    exec(&session, "DELETE v FROM ev WHERE a = ? AND b = ? AND c = ? AND d = ?", (2, "del", 6, "x")).await;
    let rows = partition(&session, &key).await;
    assert_eq!(rows[0], (6, "x".to_string(), None, None));
    // A row.
    exec(&session, "DELETE FROM ev WHERE a = ? AND b = ? AND c = ? AND d = ?", (2, "del", 6, "x")).await;
    assert_eq!(cds(&partition(&session, &key).await)[0], (6, "y"));
    // All rows with a clustering prefix.
    exec(&session, "DELETE FROM ev WHERE a = ? AND b = ? AND c = ?", (2, "del", 5)).await;
    // A clustering range.
    exec(&session, "DELETE FROM ev WHERE a = ? AND b = ? AND c >= ? AND c < ?", (2, "del", 2, 4)).await;
    assert_eq!(cds(&partition(&session, &key).await), [(6, "y"), (4, "x"), (4, "y"), (1, "x"), (1, "y")]);
    // A range on the second clustering column within a first.
    exec(&session, "DELETE FROM ev WHERE a = ? AND b = ? AND c = ? AND d > ?", (2, "del", 4, "x")).await;
    assert_eq!(cds(&partition(&session, &key).await), [(6, "y"), (4, "x"), (1, "x"), (1, "y")]);
    // Writes after a range deletion are visible again.
    exec(&session, "INSERT INTO ev (a, b, c, d, v) VALUES (?, ?, ?, ?, ?)", (2, "del", 3, "back", "again"))
        .await;
    assert_eq!(cds(&partition(&session, &key).await), [(6, "y"), (4, "x"), (3, "back"), (1, "x"), (1, "y")]);
    // The whole partition, including its static cell.
    exec(&session, "UPDATE ev SET s = ? WHERE a = ? AND b = ?", ("static", 2, "del")).await;
    exec(&session, "DELETE FROM ev WHERE a = ? AND b = ?", &key).await;
    assert!(partition(&session, &key).await.is_empty());
    // The other partition is untouched.
    assert_eq!(cds(&partition(&session, &other).await), [(2, "x"), (2, "y"), (1, "x"), (1, "y")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_columns_belong_to_the_partition() {
    let node = TestNode::start();
    let session = setup(&node).await;
    let key: Key = (3, "st".into());
    fill(&session, &key, 1..=2).await;
    exec(&session, "UPDATE ev SET s = ? WHERE a = ? AND b = ?", ("shared", 3, "st")).await;
    let rows = partition(&session, &key).await;
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.2.as_deref() == Some("shared")), "{rows:?}");
    // INSERT with a static value and a row sets it for the whole partition.
    exec(&session, "INSERT INTO ev (a, b, c, d, s) VALUES (?, ?, ?, ?, ?)", (3, "st", 0, "z", "changed"))
        .await;
    let rows = partition(&session, &key).await;
    assert!(rows.iter().all(|r| r.2.as_deref() == Some("changed")), "{rows:?}");
    // SELECT DISTINCT reads the partition key and static columns.
    let distinct: Vec<(i32, String, Option<String>)> =
        select(&session, "SELECT DISTINCT a, b, s FROM ev WHERE a = ? AND b = ?", &key).await;
    assert_eq!(distinct, [(3, "st".to_string(), Some("changed".to_string()))]);
    // A partition with only a static value returns one row with null clustering columns.
    exec(&session, "INSERT INTO ev (a, b, s) VALUES (?, ?, ?)", (4, "only", "alone")).await;
    let rows: Vec<StaticOnly> =
        select(&session, "SELECT a, b, c, d, s FROM ev WHERE a = ? AND b = ?", (4, "only")).await;
    assert_eq!(rows, [(4, "only".to_string(), None, None, Some("alone".to_string()))]);
    // Deleting the static cell leaves the rows.
    exec(&session, "DELETE s FROM ev WHERE a = ? AND b = ?", &key).await;
    let rows = partition(&session, &key).await;
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.2.is_none()), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_elements_are_added_replaced_and_removed() {
    let node = TestNode::start();
    let session = setup(&node).await;
    let pk = (5, "coll", 1, "x");
    let where_ = "WHERE a = ? AND b = ? AND c = ? AND d = ?";
    let s = &session;
    let read = || async move {
        let rows: Vec<Collections> = select(s, &format!("SELECT l, st, m FROM ev {where_}"), pk).await;
        rows.into_iter().next().expect("the row exists")
    };
    exec(
        &session,
        "INSERT INTO ev (a, b, c, d, l) VALUES (?, ?, ?, ?, ?)",
        (5, "coll", 1, "x", vec![1, 2, 3]),
    )
    .await;
    exec(&session, &format!("UPDATE ev SET l = l + ? {where_}"), (vec![4], 5, "coll", 1, "x")).await;
    exec(&session, &format!("UPDATE ev SET l = ? + l {where_}"), (vec![0], 5, "coll", 1, "x")).await;
    assert_eq!(read().await.0, Some(vec![0, 1, 2, 3, 4]));
    exec(&session, &format!("UPDATE ev SET l[1] = ? {where_}"), (10, 5, "coll", 1, "x")).await;
    exec(&session, &format!("DELETE l[0] FROM ev {where_}"), pk).await;
    assert_eq!(read().await.0, Some(vec![10, 2, 3, 4]));
    exec(&session, &format!("UPDATE ev SET l = l - ? {where_}"), (vec![2, 4], 5, "coll", 1, "x")).await;
    assert_eq!(read().await.0, Some(vec![10, 3]));

    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
    exec(
        &session,
        &format!("UPDATE ev SET st = st + ? {where_}"),
        (set(&["b", "a", "c"]), 5, "coll", 1, "x"),
    )
    .await;
    exec(&session, &format!("UPDATE ev SET st = st - ? {where_}"), (set(&["a"]), 5, "coll", 1, "x")).await;
    assert_eq!(read().await.1, Some(set(&["b", "c"])));

    let map =
        |items: &[(&str, i32)]| items.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>();
    exec(
        &session,
        &format!("UPDATE ev SET m = m + ? {where_}"),
        (map(&[("x", 1), ("y", 2)]), 5, "coll", 1, "x"),
    )
    .await;
    exec(&session, &format!("UPDATE ev SET m[?] = ? {where_}"), ("z", 3, 5, "coll", 1, "x")).await;
    exec(&session, &format!("DELETE m[?] FROM ev {where_}"), ("x", 5, "coll", 1, "x")).await;
    assert_eq!(read().await.2, Some(map(&[("y", 2), ("z", 3)])));
    exec(&session, &format!("UPDATE ev SET m = m - ? {where_}"), (set(&["y"]), 5, "coll", 1, "x")).await;
    assert_eq!(read().await.2, Some(map(&[("z", 3)])));

    // Overwriting with a whole collection replaces it; an empty collection is null.
    exec(
        &session,
        &format!("UPDATE ev SET l = ?, st = ?, m = ? {where_}"),
        (vec![9], set(&[]), map(&[]), 5, "coll", 1, "x"),
    )
    .await;
    assert_eq!(read().await, (Some(vec![9]), None, None));
    // Deleting a whole collection.
    exec(&session, &format!("DELETE l FROM ev {where_}"), pk).await;
    assert_eq!(read().await, (None, None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_markers_for_in_lists_limits_and_named_markers() {
    let node = TestNode::start();
    let session = setup(&node).await;
    for a in 0..4 {
        fill(&session, &(a, "in".into()), 1..=3).await;
    }
    // `IN ?` takes a list; the partition key is (a, b).
    let rows: Vec<(i32, i32, String)> = select(
        &session,
        "SELECT a, c, d FROM ev WHERE a IN ? AND b = ? AND c = ? AND d IN ?",
        (vec![0, 2, 3], "in", 2, vec!["y", "x"]),
    )
    .await;
    let mut rows = rows;
    rows.sort();
    let expected: Vec<(i32, i32, String)> =
        [0, 2, 3].iter().flat_map(|a| [(*a, 2, "x".to_string()), (*a, 2, "y".to_string())]).collect();
    assert_eq!(rows, expected);
    // LIMIT ?.
    let rows: Vec<(i32, String)> =
        select(&session, "SELECT c, d FROM ev WHERE a = ? AND b = ? LIMIT ?", (1, "in", 4)).await;
    assert_eq!(rows.len(), 4);
    // Named markers are bound by position in the driver, by name in the statement.
    let rows: Vec<(String,)> =
        select(&session, "SELECT v FROM ev WHERE a = :a AND b = :b AND c = :c AND d = :d", (2, "in", 3, "y"))
            .await;
    assert_eq!(rows, [("v3y".to_string(),)]);
}
