//! The `sibyl` node: engine, executor and CQL server wired together from a configuration.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use rand::Rng;
use sibyl_cluster::{ClusterConfig, ClusterService, Endpoint, Location};
use sibyl_cql::executor::membership::NodeHooks;
use sibyl_cql::protocol::{EventBus, Limits};
use sibyl_cql::server::CqlHandler;
use sibyl_cql::{Executor, LocalNode, ReadLimits};
use sibyl_engine::{Clock, Engine, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{NodeConfig, NodeSettings};

/// How often this node gossips its LOAD.
const LOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// `<data directory>/repair_history.log`: finished repair sessions.
    repair_history: std::path::PathBuf,
    /// The storage port, already bound when the configuration asked for port 0.
    storage_listener: Option<std::net::TcpListener>,
}

impl Node {
    /// Opens the engine (replaying the commit log) and the executor. Blocking: call it before
    /// starting the runtime or from a blocking thread.
    pub fn open(config: &NodeConfig) -> Result<Node> {
        config.validate()?;
        let mut settings = config.node_settings()?;
        // Port 0 (tests, several nodes on one address) means any free port: bound now and kept
        // until messaging serves on it, so no other process can take it in between.
        let storage_listener = if settings.storage_port == 0 {
            let l = std::net::TcpListener::bind((settings.listen_address, 0))
                .with_context(|| format!("cannot listen on {} (listen_address)", settings.listen_address))?;
            settings.storage_port = l.local_addr()?.port();
            Some(l)
        } else {
            None
        };
        let engine_options = config.engine_options()?;
        let repair_history = engine_options.data_dir.join("repair_history.log");
        tracing::info!(data = %engine_options.data_dir.display(), commitlog = %engine_options.commitlog_dir.display(), "opening the storage engine");
        let engine = Arc::new(Engine::open(engine_options).context("cannot open the storage engine")?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut rng = rand::rng();
        let tokens = (0..settings.num_tokens).map(|_| rng.random::<i64>()).collect();
        let local = LocalNode {
            cluster_name: settings.cluster_name.clone(),
            host_id: uuid::Uuid::new_v4(),
            data_center: settings.dc.clone(),
            rack: settings.rack.clone(),
            listen_address: settings.listen_address,
            rpc_address: settings.rpc_address,
            native_port: settings.native_transport_port,
            storage_port: settings.storage_port,
            tokens,
        };
        let limits = ReadLimits {
            tombstone_warn_threshold: settings.tombstone_warn_threshold,
            tombstone_failure_threshold: settings.tombstone_failure_threshold,
        };
        let executor = Arc::new(
            Executor::open_with_timeouts(
                Arc::clone(&engine),
                Arc::clone(&clock),
                local,
                limits,
                settings.timeouts,
            )
            .context("cannot load the schema")?,
        );
        let hints = sibyl_cluster::hints::HintsService::open(config.hints_config()?, Arc::clone(&clock))
            .context("cannot open the hints directory (hints_directory)")?;
        executor.coordinator().attach_hints(hints);
        let batchlog_dir = config.batchlog_directory();
        let batchlog = sibyl_cluster::batchlog::Batchlog::open(&batchlog_dir).with_context(|| {
            format!("cannot open the batchlog directory {} (batchlog_directory)", batchlog_dir.display())
        })?;
        executor.coordinator().attach_batchlog(batchlog);
        let local = executor.local();
        if executor.bootstrap_state() == "DECOMMISSIONED" {
            anyhow::bail!(
                "This node was decommissioned and will not rejoin the ring. To add it as a new node, delete its data, commit log, hints and batchlog directories first"
            );
        }
        tracing::info!(host_id = %local.host_id, cluster = %local.cluster_name, tokens = local.tokens.len(), "node identity");
        let address = SocketAddr::new(settings.rpc_address, settings.native_transport_port);
        Ok(Node { executor, engine, address, settings, repair_history, storage_listener })
    }

    /// Whether this start must join the ring by streaming (see [`Node::bootstrap`]): a new node
    /// (or one whose bootstrap was interrupted) that is not a seed and has seeds to join, with
    /// `auto_bootstrap`, or one replacing a dead node.
    fn needs_bootstrap(&self) -> bool {
        let exec = &self.executor;
        let new = exec.is_first_boot() || exec.bootstrap_state() == "IN_PROGRESS";
        let me = SocketAddr::new(self.settings.listen_address, self.settings.storage_port);
        // No seeds: nobody to join, the node is a cluster of its own.
        let seed = self.settings.seeds.is_empty() || self.settings.seeds.contains(&me);
        new && ((self.settings.auto_bootstrap && !seed) || self.settings.replace_address.is_some())
    }

    /// Joins the ring by streaming (blocking): learns the ring and the schema from the seeds,
    /// chooses tokens (or takes a dead node's, with `replace_address_first_boot`), keeps them
    /// in `system.local` as `IN_PROGRESS`, streams, and records `COMPLETED`.
    fn bootstrap(exec: &Arc<Executor>, cluster: &ClusterService, settings: &NodeSettings) -> Result<()> {
        let ring_wait = std::time::Duration::from_secs(60).max(settings.ring_delay);
        cluster.wait_for_ring(ring_wait).map_err(|e| anyhow::anyhow!("cannot bootstrap: {e}"))?;
        if !cluster.wait_for_schema(ring_wait) {
            anyhow::bail!("cannot bootstrap: this node's schema did not agree with the cluster's within {ring_wait:?}; check that every node is up and retry");
        }
        let resumed = exec.bootstrap_state() == "IN_PROGRESS";
        let (tokens, replacing) = match settings.replace_address {
            Some(address) => {
                let (dead, tokens) = cluster.replaced_tokens(address).map_err(anyhow::Error::msg)?;
                (tokens, Some(dead))
            }
            None if resumed => (exec.local().tokens, None),
            None => {
                (cluster.choose_tokens(settings.num_tokens as usize, settings.allocate_tokens_for_rf), None)
            }
        };
        if resumed {
            tracing::info!("resuming an interrupted bootstrap with the tokens chosen before");
        }
        exec.set_tokens(tokens.clone()).context("cannot record the chosen tokens")?;
        exec.set_bootstrap_state("IN_PROGRESS").context("cannot record the bootstrap state")?;
        let keyspaces = keyspace_tables(exec);
        let moves = move_settings(settings);
        let started = std::time::Instant::now();
        cluster.bootstrap(&tokens, replacing, &keyspaces, &moves).map_err(|e| {
            anyhow::anyhow!("bootstrap failed: {e}. The node did not join; restart it to retry the bootstrap")
        })?;
        exec.set_bootstrap_state("COMPLETED").context("cannot record the bootstrap state")?;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "bootstrap completed; the node is a member of the ring"
        );
        Ok(())
    }

    /// Serves CQL until `shutdown` turns true, then flushes and closes the engine.
    pub async fn serve(mut self, listener: TcpListener, external: watch::Receiver<bool>) -> Result<()> {
        // Our own stop signal: the caller's, or a decommission that completed.
        let (stop, shutdown) = watch::channel(false);
        {
            let stop = stop.clone();
            let mut external = external;
            tokio::spawn(async move {
                while !*external.borrow() {
                    if external.changed().await.is_err() {
                        return;
                    }
                }
                let _ = stop.send(true);
            });
        }
        let limits = Limits {
            max_frame_bytes: self.settings.max_frame_bytes,
            max_connections: self.settings.max_connections,
            max_concurrent_requests_per_connection: self.settings.max_requests_per_connection,
            ..Limits::default()
        };
        let events = EventBus::new(EVENT_BUFFER);
        let storage_listener = self.storage_listener.take();
        let bootstrap = self.needs_bootstrap();
        let cluster = self.join_cluster(&events, storage_listener, !bootstrap).await?;
        let admin_listener = TcpListener::bind(self.settings.admin).await.with_context(|| {
            format!("cannot listen for sibyltool on {} (admin_address/admin_port)", self.settings.admin)
        })?;
        // Port 0 (tests) is bound as is: the system picks a free port, with no window for another
        // process to take it first.
        let admin_address = admin_listener.local_addr().unwrap_or(self.settings.admin);
        tracing::info!("admin endpoint (sibyltool, Prometheus /metrics) on {admin_address}");
        let admin_state = crate::admin::AdminState {
            executor: Arc::clone(&self.executor),
            cluster: cluster.clone(),
            started: std::time::Instant::now(),
            repair: sibyl_cluster::repair::RepairService::with_history(
                Arc::clone(self.executor.coordinator()),
                &self.repair_history,
            )
            .with_context(|| format!("cannot read the repair history {}", self.repair_history.display()))?,
            moves: move_settings(&self.settings),
            stop,
        };
        tokio::spawn(crate::admin::serve(admin_listener, admin_state, shutdown.clone()));
        if bootstrap {
            let (exec, c, settings) = (Arc::clone(&self.executor), cluster.clone(), self.settings.clone());
            let joined = tokio::task::spawn_blocking(move || Node::bootstrap(&exec, &c, &settings))
                .await
                .context("bootstrap task failed")?;
            if let Err(e) = joined {
                cluster.shutdown();
                return Err(e);
            }
        }
        if let Some(batchlog) = self.executor.coordinator().batchlog() {
            let exec = Arc::clone(&self.executor);
            let apply: sibyl_cluster::batchlog::ApplyFn = Arc::new(move |m, age| exec.replay_batch(m, age));
            batchlog
                .start_replay(
                    apply,
                    sibyl_cluster::batchlog::REPLAY_INTERVAL,
                    self.settings.timeouts.write * 2,
                )
                .context("cannot start the batchlog replay thread")?;
        }
        let handler = Arc::new(CqlHandler::new(Arc::clone(&self.executor), events.clone()));
        let local = listener.local_addr().unwrap_or(self.address);
        tracing::info!("Starting listening for CQL clients on {local} (native protocol v4)");
        sibyl_cql::protocol::serve(listener, handler, limits, events, shutdown)
            .await
            .context("CQL server failed")?;
        tracing::info!(
            "CQL server stopped; leaving the cluster, flushing memtables and closing the commit log"
        );
        cluster.shutdown();
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || engine.drain())
            .await
            .context("drain task failed")?
            .context("drain failed")?;
        tracing::info!("node stopped cleanly");
        Ok(())
    }

    /// Starts internode messaging and gossip on `storage_port` and joins the cluster through
    /// the seeds.
    async fn join_cluster(
        &self,
        events: &EventBus,
        storage_listener: Option<std::net::TcpListener>,
        normal: bool,
    ) -> Result<ClusterService> {
        let local = self.executor.local();
        let hooks =
            NodeHooks::new(&self.executor, events.clone()).context("cannot start the peers worker")?;
        let generation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
            .unwrap_or(1);
        let config = ClusterConfig {
            cluster_name: local.cluster_name.clone(),
            local: Endpoint(SocketAddr::new(local.listen_address, local.storage_port)),
            location: Location { dc: local.data_center.clone(), rack: local.rack.clone() },
            seeds: self.settings.seeds.iter().copied().map(Endpoint).collect(),
            phi_convict_threshold: self.settings.phi_convict_threshold,
            host_id: local.host_id,
            tokens: local.tokens.clone(),
            rpc_address: local.rpc_address,
            native_port: local.native_port,
            release_version: sibyl_cql::executor::RELEASE_VERSION.to_string(),
            generation,
            normal,
            stream_throughput_bytes_per_sec: self.settings.stream_throughput_bytes_per_sec,
        };
        let cluster = ClusterService::start_on(
            config,
            Arc::clone(self.executor.coordinator()),
            hooks,
            storage_listener,
        )
        .await
        .with_context(|| {
            format!(
                "cannot listen for other nodes on {}:{} (storage_port)",
                local.listen_address, local.storage_port
            )
        })?;
        self.executor.attach_cluster(cluster.clone());
        // LOAD (bytes on disk) for other nodes' `sibyltool status`, as Cassandra gossips it.
        let (weak_cluster, weak_exec) = (cluster.clone(), Arc::downgrade(&self.executor));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(LOAD_INTERVAL);
            loop {
                every.tick().await;
                let Some(exec) = weak_exec.upgrade() else { break };
                weak_cluster.set_load(crate::admin::local_load(&exec) as u64);
            }
        });
        Ok(cluster)
    }

    /// Threads for blocking work (request execution).
    #[must_use]
    pub fn max_threads(&self) -> usize {
        self.settings.max_threads
    }
}

/// The replicated keyspaces and their tables: what a ring change streams.
#[must_use]
pub fn keyspace_tables(exec: &Executor) -> Vec<sibyl_cluster::operations::KeyspaceTables> {
    let schema = exec.schema();
    let mut out = Vec::new();
    for (name, ks) in schema.keyspaces() {
        let Ok(strategy) = exec.keyspace_strategy(&schema, name) else { continue };
        if matches!(strategy, sibyl_cluster::ReplicationStrategy::Local) {
            continue;
        }
        out.push(sibyl_cluster::operations::KeyspaceTables {
            keyspace: name.clone(),
            strategy,
            tables: ks.tables.values().map(|t| t.id).collect(),
        });
    }
    out
}

/// `ring_delay_ms` and `consistent_rangemovement`.
#[must_use]
pub fn move_settings(settings: &NodeSettings) -> sibyl_cluster::operations::MoveSettings {
    sibyl_cluster::operations::MoveSettings {
        ring_delay: settings.ring_delay,
        consistent_range_movement: settings.consistent_rangemovement,
    }
}
