//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The golden `.cql` files, sorted.
pub fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/parser");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cql"))
        .collect();
    files.sort();
    files
}

/// Splits a golden file into statements. A statement ends with a line whose last non-blank
/// character is `;` (that `;` is dropped, so statements can also test errors at end of input).
/// Lines starting with `--` before a statement are comments of the file, not of the statement.
/// A `;` that does not end a line (as between batch children) does not split.
pub fn split_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if current.trim().is_empty() && (line.trim_start().starts_with("--") || line.trim().is_empty()) {
            current.clear();
            continue;
        }
        let trimmed = line.trim_end();
        if let Some(stmt_end) = trimmed.strip_suffix(';') {
            current.push_str(stmt_end);
            out.push(current.trim().to_string());
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    assert!(current.trim().is_empty(), "golden file ends with an unterminated statement: {current}");
    out
}

/// Every statement of every golden file.
pub fn all_golden_statements() -> Vec<String> {
    golden_files()
        .iter()
        .flat_map(|f| split_statements(&std::fs::read_to_string(f).expect("readable golden file")))
        .collect()
}
