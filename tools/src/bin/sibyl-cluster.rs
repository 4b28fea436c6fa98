//! `sibyl-cluster`: start, stop and kill local multi-node clusters.

use clap::Parser;
use sibyl_tools::launcher::{run, Args};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args, &mut std::io::stdout()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
