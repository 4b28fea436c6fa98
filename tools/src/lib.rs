//! Sibyl's command-line tools. The code of each tool lives in a module here so it can be tested;
//! `src/bin/` holds only the thin `main` functions.

pub mod admin;
pub mod bench;
pub mod config;
pub mod launcher;
pub mod node;
pub mod shell;
pub mod sibyltool;
