//! Shared helpers for the driver tests: an in-process Sibyl node per test (its own tempdir,
//! port and runtime thread, so tests run in parallel) and driver sessions connected to it.

#![allow(dead_code, reason = "each test file uses a different subset of the helpers")]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use sibyl_tools::config::NodeConfig;
use sibyl_tools::node::Node;
use tokio::sync::watch;

/// A running node; dropping it stops the node (flushing its memtables) and removes its data.
pub struct TestNode {
    /// Where CQL clients connect.
    pub address: SocketAddr,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNode").field("address", &self.address).finish()
    }
}

impl TestNode {
    /// Starts a node on 127.0.0.1 and a free port. The node is opened (commit log replayed)
    /// on its own thread, so this may be called from async code.
    pub fn start() -> TestNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let (shutdown, thread) = spawn_node(dir.path(), listener);
        TestNode { address, shutdown: Some(shutdown), thread: Some(thread), dir }
    }

    /// Stops the node cleanly and starts it again on the same directories and port (clients
    /// reconnect to the same address).
    pub fn restart(&mut self) {
        self.stop();
        let listener = std::net::TcpListener::bind(self.address).expect("bind the same port again");
        let (shutdown, thread) = spawn_node(self.dir.path(), listener);
        self.shutdown = Some(shutdown);
        self.thread = Some(thread);
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// A driver session with default settings (schema metadata on, as applications have it).
    pub async fn session(&self) -> Session {
        SessionBuilder::new()
            .known_node_addr(self.address)
            .build()
            .await
            .expect("driver connects to the node")
    }

    /// A session whose keyspace `ks` (SimpleStrategy, replication factor 1) exists and is in use.
    pub async fn session_in(&self, ks: &str) -> Session {
        let session = self.session().await;
        session
            .query_unpaged(
                format!(
                    "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
                ),
                (),
            )
            .await
            .expect("create keyspace");
        session.use_keyspace(ks, false).await.expect("use keyspace");
        session
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens a node on `dir` and serves `listener` on a thread with its own runtime; returns once
/// the node is open (its commit log replayed).
fn spawn_node(
    dir: &std::path::Path,
    listener: std::net::TcpListener,
) -> (watch::Sender<bool>, JoinHandle<()>) {
    let port = listener.local_addr().expect("local address").port();
    let yaml = format!(
        "data_file_directories:\n  - {}\ncommitlog_directory: {}\nnative_transport_port: {port}\nstorage_port: 0\nadmin_port: 0\n",
        dir.join("data").display(),
        dir.join("commitlog").display(),
    );
    let config = NodeConfig::parse(&yaml, "test").expect("test configuration");
    let (tx, rx) = watch::channel(false);
    let (opened_tx, opened_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let node = match Node::open(&config) {
            Ok(n) => n,
            Err(e) => {
                let _ = opened_tx.send(Err(format!("{e:#}")));
                return;
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(node.max_threads().min(64))
            .enable_all()
            .build()
            .expect("node runtime");
        let _ = opened_tx.send(Ok(()));
        runtime.block_on(async move {
            listener.set_nonblocking(true).expect("nonblocking listener");
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            node.serve(listener, rx).await.expect("node serves until shutdown");
        });
    });
    match opened_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("cannot open the node: {e}"),
        Err(_) => panic!("the node thread died while opening the node"),
    }
    (tx, thread)
}

/// The seed of a randomized test: `SIBYL_TEST_SEED` if set, else a fresh one. Printed, so a
/// failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("SIBYL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("seed: {seed} (set SIBYL_TEST_SEED={seed} to replay)");
    seed
}

/// Prepares `cql` and executes it with `values` (typed bind values, checked by the driver
/// against the PREPARE metadata).
pub async fn exec(session: &Session, cql: &str, values: impl scylla::serialize::row::SerializeRow) {
    let prepared = session.prepare(cql).await.unwrap_or_else(|e| panic!("prepare {cql}: {e}"));
    session.execute_unpaged(&prepared, values).await.unwrap_or_else(|e| panic!("execute {cql}: {e}"));
}

/// Prepares `cql`, executes it with `values` and reads every row as `R`.
pub async fn select<R>(
    session: &Session,
    cql: &str,
    values: impl scylla::serialize::row::SerializeRow,
) -> Vec<R>
where
    R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
{
    let prepared = session.prepare(cql).await.unwrap_or_else(|e| panic!("prepare {cql}: {e}"));
    let result =
        session.execute_unpaged(&prepared, values).await.unwrap_or_else(|e| panic!("execute {cql}: {e}"));
    let rows = result.into_rows_result().unwrap_or_else(|e| panic!("{cql} returned no rows result: {e}"));
    rows.rows::<R>()
        .unwrap_or_else(|e| panic!("{cql}: unexpected column types: {e}"))
        .collect::<Result<Vec<R>, _>>()
        .unwrap_or_else(|e| panic!("{cql}: cannot deserialize: {e}"))
}
