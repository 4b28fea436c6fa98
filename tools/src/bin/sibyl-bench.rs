//! `sibyl-bench`: db_bench-style workloads on Sibyl, RocksDB and fjall. See `docs/benchmarks.md`.

use std::process::ExitCode;

use clap::Parser;
use sibyl_tools::bench::{self, config::BenchConfig};

fn main() -> anyhow::Result<ExitCode> {
    let cfg = BenchConfig::parse();
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
