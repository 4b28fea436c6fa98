//! The `sibyl` node: engine, executor and CQL server wired together from a configuration.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use rand::Rng;
use sibyl_cql::protocol::{EventBus, Limits};
use sibyl_cql::server::CqlHandler;
use sibyl_cql::{Executor, LocalNode, ReadLimits};
use sibyl_engine::{Clock, Engine, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{NodeConfig, NodeSettings};

/// Events buffered per connection before a slow one skips them.
const EVENT_BUFFER: usize = 256;

/// A running node (the engine and executor are shared with the server task).
#[derive(Debug)]
pub struct Node {
    /// The executor.
    pub executor: Arc<Executor>,
    /// The engine.
    pub engine: Arc<Engine>,
    /// Where CQL clients connect.
    pub address: SocketAddr,
    settings: NodeSettings,
}

impl Node {
    /// Opens the engine (replaying the commit log) and the executor. Blocking: call it before
    /// starting the runtime or from a blocking thread.
    pub fn open(config: &NodeConfig) -> Result<Node> {
        let settings = config.node_settings()?;
        let engine_options = config.engine_options()?;
        tracing::info!(data = %engine_options.data_dir.display(), commitlog = %engine_options.commitlog_dir.display(), "opening the storage engine");
        let engine = Arc::new(Engine::open(engine_options).context("cannot open the storage engine")?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut rng = rand::rng();
        let tokens = (0..settings.num_tokens).map(|_| rng.random::<i64>()).collect();
        let local = LocalNode {
            cluster_name: settings.cluster_name.clone(),
            host_id: uuid::Uuid::new_v4(),
            data_center: "datacenter1".into(),
            rack: "rack1".into(),
            listen_address: settings.listen_address,
            rpc_address: settings.rpc_address,
            native_port: settings.native_transport_port,
            tokens,
        };
        let limits = ReadLimits {
            tombstone_warn_threshold: settings.tombstone_warn_threshold,
            tombstone_failure_threshold: settings.tombstone_failure_threshold,
        };
        let executor = Arc::new(
            Executor::open(Arc::clone(&engine), clock, local, limits).context("cannot load the schema")?,
        );
        let local = executor.local();
        tracing::info!(host_id = %local.host_id, cluster = %local.cluster_name, tokens = local.tokens.len(), "node identity");
        let address = SocketAddr::new(settings.rpc_address, settings.native_transport_port);
        Ok(Node { executor, engine, address, settings })
    }

    /// Serves CQL until `shutdown` turns true, then flushes and closes the engine.
    pub async fn serve(self, listener: TcpListener, shutdown: watch::Receiver<bool>) -> Result<()> {
        let limits = Limits {
            max_frame_bytes: self.settings.max_frame_bytes,
            max_connections: self.settings.max_connections,
            max_concurrent_requests_per_connection: self.settings.max_requests_per_connection,
            ..Limits::default()
        };
        let events = EventBus::new(EVENT_BUFFER);
        let handler = Arc::new(CqlHandler::new(Arc::clone(&self.executor), events.clone()));
        let local = listener.local_addr().unwrap_or(self.address);
        tracing::info!("Starting listening for CQL clients on {local} (native protocol v4)");
        sibyl_cql::protocol::serve(listener, handler, limits, events, shutdown)
            .await
            .context("CQL server failed")?;
        tracing::info!("CQL server stopped; flushing memtables and closing the commit log");
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || engine.drain())
            .await
            .context("drain task failed")?
            .context("drain failed")?;
        tracing::info!("node stopped cleanly");
        Ok(())
    }

    /// Threads for blocking work (request execution).
    #[must_use]
    pub fn max_threads(&self) -> usize {
        self.settings.max_threads
    }
}
