//! `sibylsh`: an interactive CQL shell for Sibyl, like cqlsh.
//!
//! ```text
//! sibylsh [host] [port]            # interactive (default 127.0.0.1 9042)
//! sibylsh -e 'SELECT ...;'         # execute and exit
//! sibylsh -f script.cql            # run a script and exit
//! ```
//! The shell lives in `sibyl_tools::shell`; this only hands it the real stdout and stderr.

fn main() {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let status = sibyl_tools::shell::run(std::env::args_os(), &mut out, &mut err);
    std::process::exit(status);
}
