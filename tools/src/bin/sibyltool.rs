//! `sibyltool`: Sibyl's nodetool.

use clap::Parser;
use sibyl_tools::sibyltool::{normalize_args, run, Args};

fn main() -> std::process::ExitCode {
    let args = Args::parse_from(normalize_args(std::env::args()));
    let mut out = std::io::stdout();
    match run(&args, &mut out) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
