//! Results are bounded in bytes: a page ends early at `MAX_RESULT_BYTES`, an unpaged query that
//! would exceed it is refused instead of building an unbounded response.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::Arc;

use bytes::Bytes;
use sibyl_cql::executor::expr::BoundValue;
use sibyl_cql::executor::select::MAX_RESULT_BYTES;
use sibyl_cql::executor::{QueryOptions, QueryResult, Values};
use sibyl_cql::{Executor, LocalNode, ReadLimits};
use sibyl_engine::{Engine, EngineOptions, ManualClock};

#[test]
fn large_results_end_pages_early_and_refuse_unpaged_queries() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(EngineOptions::new(dir.path())).unwrap());
    let local = LocalNode {
        cluster_name: "c".into(),
        host_id: uuid::Uuid::from_u128(1),
        data_center: "datacenter1".into(),
        rack: "rack1".into(),
        listen_address: "127.0.0.1".parse().unwrap(),
        rpc_address: "127.0.0.1".parse().unwrap(),
        native_port: 9042,
        storage_port: 7000,
        tokens: vec![0],
    };
    let clock = Arc::new(ManualClock::new(1_767_225_600_000_000));
    let exec = Executor::open(engine, clock, local, ReadLimits::default()).unwrap();
    let run = |q: &str, o: &QueryOptions| exec.query(Some("ks"), q, o);
    let none = QueryOptions::default();
    run("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", &none)
        .unwrap();
    run("CREATE TABLE t (p int, c int, b blob, PRIMARY KEY (p, c))", &none).unwrap();
    let blob = Bytes::from(vec![7u8; 1 << 20]);
    let rows = MAX_RESULT_BYTES / (1 << 20) + 4;
    for c in 0..rows {
        let o = QueryOptions {
            values: Values::Positional(vec![
                BoundValue::Bytes(Bytes::copy_from_slice(&(c as i32).to_be_bytes())),
                BoundValue::Bytes(blob.clone()),
            ]),
            ..QueryOptions::default()
        };
        run("INSERT INTO t (p, c, b) VALUES (1, ?, ?)", &o).unwrap();
    }
    let err = run("SELECT * FROM t WHERE p = 1", &none).unwrap_err();
    assert!(err.to_string().contains("unpaged query exceeds"), "{err}");
    // Paged: pages stop at the byte bound, and every row comes back exactly once.
    let mut o = QueryOptions { page_size: Some(1000), ..QueryOptions::default() };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let QueryResult::Rows(full) = run("SELECT c, b FROM t WHERE p = 1", &o).unwrap() else { panic!() };
        assert!(full.rows.len() < rows, "a page of {} blobs of 1 MiB passed the byte bound", full.rows.len());
        seen.extend(
            full.rows.iter().map(|r| i32::from_be_bytes(r[0].as_ref().unwrap()[..].try_into().unwrap())),
        );
        pages += 1;
        match full.paging_state {
            Some(s) => o.paging_state = Some(s),
            None => break,
        }
    }
    assert!(pages >= 2);
    assert_eq!(seen, (0..rows as i32).collect::<Vec<_>>());
}
