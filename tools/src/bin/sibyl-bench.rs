//! `sibyl-bench`: db_bench-style workloads on Sibyl, RocksDB and fjall. See `docs/benchmarks.md`.

use std::process::ExitCode;

use clap::Parser;
use sibyl_tools::bench::{self, config::BenchConfig};

fn main() -> anyhow::Result<ExitCode> {
    let cfg = BenchConfig::parse();
    // The engines' logs (flushes, compactions with their levels and bytes) on stderr, when asked
    // for, e.g. RUST_LOG=sibyl_engine=info.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
    let outcome = bench::run(&cfg)?;
    if outcome.failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("\n{} check(s) FAILED (wrong or missing data):", outcome.failures.len());
    for f in &outcome.failures {
        eprintln!("  {f}");
    }
    Ok(ExitCode::FAILURE)
}
