//! Real-client compatibility: the DataStax Python driver (default settings) and cqlsh, run by
//! pytest (`tests/python/`) against the `sibyl` binary this package builds.
//!
//! `scripts/setup-python.sh` creates `.venv` with the pinned client versions on first use.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;
use std::process::Command;

#[test]
fn python_driver_and_cqlsh_suite_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let setup = Command::new("bash")
        .arg(root.join("scripts/setup-python.sh"))
        .current_dir(root)
        .output()
        .expect("run setup-python.sh");
    assert!(
        setup.status.success(),
        "scripts/setup-python.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&setup.stdout),
        String::from_utf8_lossy(&setup.stderr)
    );
    let out = Command::new(root.join(".venv/bin/pytest"))
        .args(["-q", "-p", "no:cacheprovider", "tests/python"])
        .env("SIBYL_BIN", env!("CARGO_BIN_EXE_sibyl"))
        .env("SIBYL_CLUSTER_BIN", env!("CARGO_BIN_EXE_sibyl-cluster"))
        .env("SIBYLTOOL_BIN", env!("CARGO_BIN_EXE_sibyltool"))
        .current_dir(root)
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}
