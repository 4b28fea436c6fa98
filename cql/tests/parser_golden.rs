//! Golden tests: every statement of `tests/golden/*.cql` is parsed and its rendering compared
//! with `tests/golden/*.out`. Files named `errors*.cql` hold statements that must fail; their
//! rendering is the error message. Run with `SIBYL_BLESS=1` to rewrite the `.out` files.

mod common;

use sibyl_cql::parser::{parse_prepared, parse_prepared_statements, parse_statement};

fn render_file(path: &std::path::Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("readable golden file");
    let expect_errors = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("errors"));
    let mut out = String::new();
    let mut problems = Vec::new();
    let statements = common::split_statements(&text);
    for stmt in &statements {
        for line in stmt.lines() {
            out.push_str("-- ");
            out.push_str(line);
            out.push('\n');
        }
        match parse_prepared(stmt) {
            Ok(parsed) => {
                if expect_errors {
                    problems.push(format!("expected an error, parsed: {stmt}"));
                }
                let walked = parsed.statement.bind_markers();
                if walked != parsed.bind_markers {
                    problems.push(format!(
                        "bind markers differ for {stmt}: parser {:?}, AST walk {walked:?}",
                        parsed.bind_markers
                    ));
                }
                if parse_statement(stmt).as_ref() != Ok(&parsed.statement) {
                    problems.push(format!("parse_statement disagrees with parse_prepared: {stmt}"));
                }
                out.push_str(&format!("{parsed:#?}\n\n"));
            }
            Err(e) => {
                if !expect_errors {
                    problems.push(format!("{stmt}\n  => {e}"));
                }
                out.push_str(&format!("{e}\n\n"));
            }
        }
    }
    // The script parser must split the file into the same statements.
    if !expect_errors {
        match parse_prepared_statements(&format!("{};", statements.join(";\n"))) {
            Ok(script) => {
                let single: Vec<_> = statements.iter().filter_map(|s| parse_prepared(s).ok()).collect();
                if script != single {
                    problems.push(format!("{}: parse_statements disagrees", path.display()));
                }
            }
            Err(e) => problems.push(format!("{}: parse_statements failed: {e}", path.display())),
        }
    }
    (out, problems)
}

#[test]
fn golden() {
    let bless = std::env::var_os("SIBYL_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let files = common::golden_files();
    assert!(files.len() >= 5, "golden files missing");
    for cql in files {
        let (rendered, problems) = render_file(&cql);
        failures.extend(problems.into_iter().map(|p| format!("{}: {p}", cql.display())));
        let out_path = cql.with_extension("out");
        if bless {
            std::fs::write(&out_path, &rendered).expect("writable .out file");
            continue;
        }
        let expected = std::fs::read_to_string(&out_path).unwrap_or_default();
        if expected != rendered {
            let line = expected
                .lines()
                .zip(rendered.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(rendered.lines().count()));
            failures.push(format!(
                "{} differs from the rendering at line {} (run with SIBYL_BLESS=1 to update)\n  expected: {:?}\n  actual:   {:?}",
                out_path.display(),
                line + 1,
                expected.lines().nth(line),
                rendered.lines().nth(line),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
