//! `sibyltool`: Sibyl's nodetool.

use clap::Parser;
use sibyl_tools::sibyltool::{run, Args};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut out = std::io::stdout();
    match run(&args, &mut out) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
