//! Every CQL type round-trips through prepared statements with typed bind values, including
//! nulls, extreme values, empty values and nested collections; literals in CQL text give the
//! same values as bind markers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::common::{exec, select, TestNode};
use scylla::client::session::Session;
use scylla::value::{
    CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue, CqlVarint, Row,
};
use scylla::{DeserializeRow, SerializeRow};
use uuid::Uuid;

const TABLE: &str = "CREATE TABLE all_types (k int PRIMARY KEY, a ascii, t text, bo boolean, \
     ti tinyint, si smallint, i int, bi bigint, vi varint, f float, d double, dc decimal, b blob, \
     u uuid, tu timeuuid, ts timestamp, dt date, tm time, ip inet, du duration, \
     l list<int>, s set<text>, m map<text, bigint>, fl frozen<list<text>>, fs frozen<set<int>>, \
     fm frozen<map<int, text>>, tp tuple<int, text, double>, lt list<frozen<tuple<int, text>>>, \
     nested map<text, frozen<list<frozen<set<int>>>>>)";

const COLUMNS: &str = "k, a, t, bo, ti, si, i, bi, vi, f, d, dc, b, u, tu, ts, dt, tm, ip, du, l, s, m, \
     fl, fs, fm, tp, lt, nested";

type Tuple = (Option<i32>, Option<String>, Option<f64>);

#[derive(Debug, Clone, PartialEq, Default, SerializeRow, DeserializeRow)]
struct AllTypes {
    k: i32,
    a: Option<String>,
    t: Option<String>,
    bo: Option<bool>,
    ti: Option<i8>,
    si: Option<i16>,
    i: Option<i32>,
    bi: Option<i64>,
    vi: Option<CqlVarint>,
    f: Option<f32>,
    d: Option<f64>,
    dc: Option<CqlDecimal>,
    b: Option<Vec<u8>>,
    u: Option<Uuid>,
    tu: Option<CqlTimeuuid>,
    ts: Option<CqlTimestamp>,
    dt: Option<CqlDate>,
    tm: Option<CqlTime>,
    ip: Option<IpAddr>,
    du: Option<CqlDuration>,
    l: Option<Vec<i32>>,
    s: Option<BTreeSet<String>>,
    m: Option<BTreeMap<String, i64>>,
    fl: Option<Vec<String>>,
    fs: Option<BTreeSet<i32>>,
    fm: Option<BTreeMap<i32, String>>,
    tp: Option<Tuple>,
    lt: Option<Vec<(i32, String)>>,
    nested: Option<BTreeMap<String, Vec<BTreeSet<i32>>>>,
}

fn strings<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn timeuuid(text: &str) -> CqlTimeuuid {
    CqlTimeuuid::from(Uuid::parse_str(text).expect("timeuuid"))
}

/// 2^31 is the epoch of the date type.
const EPOCH_DAY: u32 = 1 << 31;

fn typical(k: i32) -> AllTypes {
    AllTypes {
        k,
        a: Some("plain ascii ~!".into()),
        t: Some("zażółć gęślą jaźń, 東京, 🦀".into()),
        bo: Some(true),
        ti: Some(-7),
        si: Some(1234),
        i: Some(-123_456),
        bi: Some(9_876_543_210),
        vi: Some(CqlVarint::from_signed_bytes_be(vec![
            0x00, 0xff, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
        ])),
        f: Some(3.25),
        d: Some(-1.0e-300),
        dc: Some(CqlDecimal::from_signed_be_bytes_and_exponent(vec![0x30, 0x39], 2)), // 123.45
        b: Some(vec![0, 1, 0x7f, 0x80, 0xff]),
        u: Some(Uuid::parse_str("550e8400-e29b-41d4-a716-446655440000").expect("typical")),
        tu: Some(timeuuid("50554d6e-29bb-11e5-b345-feff819cdc9f")),
        ts: Some(CqlTimestamp(1_704_164_645_678)),
        dt: Some(CqlDate(EPOCH_DAY + 19_724)),
        tm: Some(CqlTime(((13 * 60 + 30) * 60 + 54) * 1_000_000_000 + 234_000_000)),
        ip: Some("192.168.1.20".parse().expect("typical")),
        du: Some(CqlDuration { months: 14, days: 3, nanoseconds: 3_723_004_005_006 }),
        l: Some(vec![3, 1, 2, 1]),
        s: Some(strings(["b", "a", "c"])),
        m: Some([("one".to_string(), 1), ("minus".to_string(), -1)].into_iter().collect()),
        fl: Some(vec!["x".into(), "".into(), "y".into()]),
        fs: Some([5, -5, 0].into_iter().collect()),
        fm: Some([(2, "two".to_string()), (1, "one".to_string())].into_iter().collect()),
        tp: Some((Some(1), Some("tuple".into()), Some(2.5))),
        lt: Some(vec![(1, "a".into()), (2, "b".into())]),
        nested: Some(
            [("n".to_string(), vec![[1, 2].into_iter().collect(), BTreeSet::new()])].into_iter().collect(),
        ),
    }
}

fn extremes(k: i32) -> AllTypes {
    AllTypes {
        k,
        a: Some(String::new()),
        t: Some("\u{0}quote ' and \"double\" \\ back".into()),
        bo: Some(false),
        ti: Some(i8::MIN),
        si: Some(i16::MAX),
        i: Some(i32::MIN),
        bi: Some(i64::MAX),
        vi: Some(CqlVarint::from_signed_bytes_be(vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
        f: Some(f32::MIN_POSITIVE),
        d: Some(f64::MAX),
        dc: Some(CqlDecimal::from_signed_be_bytes_and_exponent(vec![0x85], -10)), // -123E+10
        b: Some(Vec::new()),
        u: Some(Uuid::nil()),
        tu: Some(timeuuid("00000000-0000-1000-8000-000000000000")),
        ts: Some(CqlTimestamp(-62_135_596_800_000)), // 0001-01-01
        dt: Some(CqlDate(0)),
        tm: Some(CqlTime(86_399_999_999_999)),
        ip: Some("2001:db8::ff00:42:8329".parse().expect("extremes")),
        du: Some(CqlDuration { months: -1, days: -2, nanoseconds: -3 }),
        l: Some(vec![i32::MIN, i32::MAX]),
        s: Some(strings([""])),
        m: Some([(String::new(), i64::MIN)].into_iter().collect()),
        // Frozen empty collections are values, not null.
        fl: Some(Vec::new()),
        fs: Some(BTreeSet::new()),
        fm: Some(BTreeMap::new()),
        tp: Some((None, Some(String::new()), None)),
        lt: Some(vec![(0, String::new())]),
        nested: Some([(String::new(), Vec::new())].into_iter().collect()),
    }
}

async fn setup(node: &TestNode) -> Session {
    let session = node.session_in("ks").await;
    session.query_unpaged(TABLE, ()).await.expect("setup");
    session
}

async fn insert(session: &Session, row: &AllTypes) {
    let markers = vec!["?"; COLUMNS.split(',').count()].join(", ");
    exec(session, &format!("INSERT INTO all_types ({COLUMNS}) VALUES ({markers})"), row).await;
}

async fn read(session: &Session, k: i32) -> Option<AllTypes> {
    let rows: Vec<AllTypes> =
        select(session, &format!("SELECT {COLUMNS} FROM all_types WHERE k = ?"), (k,)).await;
    assert!(rows.len() <= 1);
    rows.into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_bind_markers() {
    let node = TestNode::start();
    let session = setup(&node).await;
    for row in [typical(1), extremes(2)] {
        insert(&session, &row).await;
        assert_eq!(read(&session, row.k).await.as_ref(), Some(&row));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nulls_round_trip_and_empty_non_frozen_collections_are_null() {
    let node = TestNode::start();
    let session = setup(&node).await;
    let nulls = AllTypes { k: 3, ..AllTypes::default() };
    insert(&session, &nulls).await;
    assert_eq!(read(&session, 3).await, Some(nulls));
    // Non-frozen empty collections are stored as nothing: they read back as null.
    let empties = AllTypes {
        k: 4,
        l: Some(Vec::new()),
        s: Some(BTreeSet::new()),
        m: Some(BTreeMap::new()),
        ..AllTypes::default()
    };
    insert(&session, &empties).await;
    assert_eq!(read(&session, 4).await, Some(AllTypes { k: 4, ..AllTypes::default() }));
    // Overwriting values with nulls deletes them.
    insert(&session, &typical(5)).await;
    insert(&session, &AllTypes { k: 5, ..AllTypes::default() }).await;
    assert_eq!(read(&session, 5).await, Some(AllTypes { k: 5, ..AllTypes::default() }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_floating_point_values_round_trip() {
    let node = TestNode::start();
    let session = setup(&node).await;
    for (k, f, d) in
        [(10, f32::NAN, f64::NAN), (11, f32::INFINITY, f64::NEG_INFINITY), (12, -0.0_f32, -0.0_f64)]
    {
        exec(&session, "INSERT INTO all_types (k, f, d) VALUES (?, ?, ?)", (k, f, d)).await;
        let rows: Vec<(f32, f64)> = select(&session, "SELECT f, d FROM all_types WHERE k = ?", (k,)).await;
        let (rf, rd) = rows[0];
        assert_eq!(rf.to_bits(), f.to_bits(), "float for k={k}");
        assert_eq!(rd.to_bits(), d.to_bits(), "double for k={k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literals_in_cql_text_equal_bound_values() {
    let node = TestNode::start();
    let session = setup(&node).await;
    let literal = format!(
        "INSERT INTO all_types ({COLUMNS}) VALUES (20, 'plain ascii ~!', 'zażółć gęślą jaźń, 東京, 🦀', true, \
         -7, 1234, -123456, 9876543210, 4705231507263399452400, 3.25, -1.0e-300, 123.45, 0x00017f80ff, \
         550e8400-e29b-41d4-a716-446655440000, 50554d6e-29bb-11e5-b345-feff819cdc9f, \
         '2024-01-02 03:04:05.678+0000', '2024-01-02', '13:30:54.234', '192.168.1.20', \
         1y2mo3d1h2m3s4ms5us6ns, [3, 1, 2, 1], {{'b', 'a', 'c'}}, {{'one': 1, 'minus': -1}}, \
         ['x', '', 'y'], {{5, -5, 0}}, {{2: 'two', 1: 'one'}}, (1, 'tuple', 2.5), [(1, 'a'), (2, 'b')], \
         {{'n': [{{1, 2}}, {{}}]}})"
    );
    session.query_unpaged(literal, ()).await.unwrap();
    let from_literals = read(&session, 20).await.expect("row inserted with literals");
    assert_eq!(from_literals, typical(20));
    // The same through the unprepared path with values (the driver prepares it).
    session
        .query_unpaged("INSERT INTO all_types (k, vi, dc, du) VALUES (21, -1, -0.001, -1d)", ())
        .await
        .unwrap();
    let rows: Vec<(CqlVarint, CqlDecimal, CqlDuration)> =
        select(&session, "SELECT vi, dc, du FROM all_types WHERE k = ?", (21,)).await;
    assert_eq!(
        rows,
        [(
            CqlVarint::from_signed_bytes_be(vec![0xff]),
            CqlDecimal::from_signed_be_bytes_and_exponent(vec![0xff], 3),
            CqlDuration { months: 0, days: -1, nanoseconds: 0 }
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_metadata_carries_the_exact_types() {
    let node = TestNode::start();
    let session = setup(&node).await;
    insert(&session, &typical(30)).await;
    let result = session
        .query_unpaged(format!("SELECT {COLUMNS} FROM all_types WHERE k = 30"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let row: Row = result.single_row().unwrap();
    let value = |i: usize| row.columns[i].clone().expect("non-null");
    assert!(matches!(value(1), CqlValue::Ascii(_)), "{:?}", value(1));
    assert!(matches!(value(2), CqlValue::Text(_)));
    assert!(matches!(value(8), CqlValue::Varint(_)));
    assert!(matches!(value(14), CqlValue::Timeuuid(_)));
    assert!(matches!(value(13), CqlValue::Uuid(_)));
    assert!(matches!(value(16), CqlValue::Date(_)));
    assert!(matches!(value(17), CqlValue::Time(_)));
    assert!(matches!(value(19), CqlValue::Duration(_)));
    assert!(matches!(value(21), CqlValue::Set(_)));
    assert!(matches!(value(22), CqlValue::Map(_)));
    assert!(matches!(value(26), CqlValue::Tuple(_)));
    assert_eq!(
        value(26),
        CqlValue::Tuple(vec![
            Some(CqlValue::Int(1)),
            Some(CqlValue::Text("tuple".into())),
            Some(CqlValue::Double(2.5))
        ])
    );
}
