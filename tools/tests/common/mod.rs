//! An in-process Sibyl node for tests: its own tempdir, port and runtime thread.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use sibyl_tools::config::NodeConfig;
use sibyl_tools::node::Node;
use tokio::sync::watch;

/// A running node; dropping it stops the node and removes its data.
pub struct TestNode {
    /// Where CQL clients connect.
    pub address: SocketAddr,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    /// Starts a node on 127.0.0.1 and a free port.
    pub fn start() -> TestNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("local address");
        let yaml = format!(
            "data_file_directories:\n  - {}\ncommitlog_directory: {}\nnative_transport_port: {}\nstorage_port: 0\nadmin_port: 0\n",
            dir.path().join("data").display(),
            dir.path().join("commitlog").display(),
            address.port()
        );
        let config = NodeConfig::parse(&yaml, "test").expect("config");
        let node = Node::open(&config).expect("open node");
        let (tx, rx) = watch::channel(false);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(32)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                listener.set_nonblocking(true).expect("nonblocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                node.serve(listener, rx).await.expect("node serves");
            });
        });
        TestNode { address, shutdown: Some(tx), thread: Some(thread), _dir: dir }
    }

    /// The port as text, for command-line arguments.
    pub fn port(&self) -> String {
        self.address.port().to_string()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
