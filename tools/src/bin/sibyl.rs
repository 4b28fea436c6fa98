//! `sibyl`: runs a Sibyl node.
//!
//! ```text
//! sibyl                      # the embedded single-node default (conf/sibyl.yaml)
//! sibyl --config FILE        # another cassandra.yaml-style configuration
//! ```
//! Ctrl-C or SIGTERM stops it cleanly: the CQL server stops accepting, in-flight requests
//! finish, memtables are flushed and the commit log is closed.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use sibyl_tools::config::NodeConfig;
use sibyl_tools::node::Node;

#[derive(Debug, Parser)]
#[command(name = "sibyl", about = "Run a Sibyl node (Cassandra-compatible, CQL native protocol v4)")]
struct Args {
    /// Configuration file (cassandra.yaml key names); the embedded default if omitted.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = NodeConfig::load(args.config.as_deref())?;
    let node = Node::open(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(node.max_threads())
        .thread_name("sibyl")
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(node.address).await.with_context(|| {
            format!(
                "cannot listen on {} (is another node running? set rpc_address / native_transport_port)",
                node.address
            )
        })?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
        });
        node.serve(listener, rx).await
    })
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the node");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
