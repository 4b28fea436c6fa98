//! sibylsh against a real in-process Sibyl node: `-e`, `-f`, SOURCE, DESCRIBE, errors, paging
//! and the interactive loop (with scripted input).

mod common;

use std::io::Write as _;

use common::TestNode;
use sibyl_tools::shell::interactive::{interactive_loop, LineReader, ReadLine};
use sibyl_tools::shell::{Args, Shell};

const CREATE_KS: &str =
    "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};";

/// Runs sibylsh with `extra` arguments against `node`; returns (status, stdout, stderr).
fn sibylsh(node: &TestNode, extra: &[&str]) -> (i32, String, String) {
    let port = node.port();
    let mut args = vec!["sibylsh", "127.0.0.1", port.as_str()];
    args.extend_from_slice(extra);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = sibyl_tools::shell::run(args, &mut out, &mut err);
    (status, String::from_utf8(out).expect("utf-8 output"), String::from_utf8(err).expect("utf-8 errors"))
}

fn execute(node: &TestNode, cql: &str) -> (i32, String, String) {
    sibylsh(node, &["-e", cql])
}

#[test]
fn execute_mode_creates_inserts_and_selects() {
    let node = TestNode::start();
    let (status, out, err) = execute(
        &node,
        &format!(
            "{CREATE_KS} CREATE TABLE ks.t (k int, c text, v text, PRIMARY KEY (k, c));
             INSERT INTO ks.t (k, c, v) VALUES (1, 'a', 'first');
             INSERT INTO ks.t (k, c, v) VALUES (1, 'b', 'second value');
             INSERT INTO ks.t (k, c) VALUES (22, 'x');
             SELECT * FROM ks.t WHERE k = 1;"
        ),
    );
    assert_eq!((status, err.as_str()), (0, ""), "{out}");
    assert_eq!(
        out,
        "\n k | c | v\n---+---+--------------\n 1 | a |        first\n 1 | b | second value\n\n(2 rows)\n"
    );
    let (status, out, _) = execute(&node, "SELECT v FROM ks.t WHERE k = 22; SELECT * FROM ks.t WHERE k = 3");
    assert_eq!(status, 0);
    assert_eq!(out, "\n v\n------\n null\n\n(1 rows)\n\n k | c | v\n---+---+---\n\n(0 rows)\n");
}

#[test]
fn values_of_every_type_are_formatted_like_cqlsh() {
    let node = TestNode::start();
    let (status, out, err) = execute(
        &node,
        &format!(
            "{CREATE_KS} CREATE TABLE ks.types (k int PRIMARY KEY, a ascii, bi bigint, b blob, bo boolean,
               dt date, dc decimal, d double, du duration, f float, i inet, si smallint, t text, tm time,
               ts timestamp, tu timeuuid, ti tinyint, u uuid, vi varint, l list<text>, s set<int>,
               m map<text, timestamp>, tp tuple<int, text, boolean>, fl frozen<list<inet>>);
             INSERT INTO ks.types (k, a, bi, b, bo, dt, dc, d, du, f, i, si, t, tm, ts, tu, ti, u, vi, l, s, m, tp, fl)
             VALUES (1, 'asc', -9223372036854775808, 0x00ff, true, '2024-02-29', 123.4500, 2.5,
               1y2mo3d4h5m6s7ms8us9ns, 0.1, '10.0.0.1', -32768, 'it''s \\ done', '13:30:54.234',
               '2024-01-02 03:04:05.678+0000', 50554d6e-29bb-11e5-b345-feff819cdc9f, 127,
               550e8400-e29b-41d4-a716-446655440000, 123456789012345678901234567890, ['x', 'y'],
               {{3, 1, 2}}, {{'k': '2020-01-01 00:00:00+0000'}}, (1, 'a', false), ['::1', '127.0.0.1']);
             EXPAND ON;
             SELECT a, bi, b, bo, dt, dc, d, du, f, i, si, t, tm, ts, tu, ti, u, vi, l, s, m, tp, fl
               FROM ks.types WHERE k = 1;"
        ),
    );
    assert_eq!((status, err.as_str()), (0, ""), "{out}");
    let expected = [
        "@ Row 1",
        "----+--------------------------------------",
        " a  | asc",
        " bi | -9223372036854775808",
        " b  | 0x00ff",
        " bo | True",
        " dt | 2024-02-29",
        " dc | 123.4500",
        " d  | 2.5",
        " du | 1y2mo3d4h5m6s7ms8us9ns",
        " f  | 0.1",
        " i  | 10.0.0.1",
        " si | -32768",
        " t  | it's \\\\ done",
        " tm | 13:30:54.234000000",
        " ts | 2024-01-02 03:04:05.678000+0000",
        " tu | 50554d6e-29bb-11e5-b345-feff819cdc9f",
        " ti | 127",
        " u  | 550e8400-e29b-41d4-a716-446655440000",
        " vi | 123456789012345678901234567890",
        " l  | ['x', 'y']",
        " s  | {1, 2, 3}",
        " m  | {'k': '2020-01-01 00:00:00.000000+0000'}",
        " tp | (1, 'a', False)",
        " fl | ['::1', '127.0.0.1']",
        "",
        "(1 rows)",
    ];
    let body = out.split_once("Now Expanded output is enabled\n\n").map(|(_, b)| b).unwrap_or(&out);
    let lines: Vec<&str> = body.lines().collect();
    // The separator is as wide as the widest value.
    assert_eq!(lines[1].len(), "----+-".len() + "{'k': '2020-01-01 00:00:00.000000+0000'}".len() + 1);
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected[1] = lines[1].to_string();
    assert_eq!(lines, expected, "{out}");
}

#[test]
fn server_errors_print_like_cqlsh_and_set_the_exit_status() {
    let node = TestNode::start();
    let (status, out, err) = execute(
        &node,
        &format!(
            "{CREATE_KS} SELEC 1; SELECT * FROM nope.t; {CREATE_KS} SELECT cluster_name FROM system.local;"
        ),
    );
    assert_eq!(status, 1);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("<stdin>:1:SyntaxException: line 1:0 "), "{err}");
    assert!(
        lines[1]
            .starts_with("<stdin>:1:InvalidRequest: Error from server: code=2200 [Invalid query] message=\""),
        "{err}"
    );
    assert!(lines[1].contains("nope"), "{err}");
    assert!(
        lines[2]
            .starts_with("<stdin>:1:AlreadyExists: Error from server: code=2400 [Already exists] message=\""),
        "{err}"
    );
    // Statements after a failure still run.
    assert!(out.contains(" Test Cluster\n"), "{out}");
}

#[test]
fn script_file_errors_name_the_file_and_line() {
    let node = TestNode::start();
    let mut script = tempfile::NamedTempFile::new().unwrap();
    write!(
        script,
        "-- a script\n{CREATE_KS}\nCREATE TABLE ks.t (k int PRIMARY KEY, v text);\n\nINSERT INTO ks.t (k, v)\n  VALUES (1, 'one');\nINSERT INTO ks.nope (k) VALUES (1);\nSELECT v FROM ks.t\n"
    )
    .unwrap();
    let path = script.path().display().to_string();
    let (status, out, err) = sibylsh(&node, &["-f", &path]);
    assert_eq!(status, 1, "{out}");
    assert!(err.starts_with(&format!("{path}:7:InvalidRequest: ")), "{err}");
    // The last statement has no ';' and still runs.
    assert!(out.contains("\n v\n-----\n one\n\n(1 rows)\n"), "{out}");
}

#[test]
fn successful_script_exits_zero_and_source_runs_nested_files() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner.cql");
    std::fs::write(&inner, "INSERT INTO ks.t (k, v) VALUES (2, 'from inner');\nSELECT * FROM ks.nope;\n")
        .unwrap();
    let (status, out, err) = execute(
        &node,
        &format!(
            "{CREATE_KS} CREATE TABLE ks.t (k int PRIMARY KEY, v text);\nSOURCE '{}'\nSELECT v FROM ks.t WHERE k = 2;",
            inner.display()
        ),
    );
    assert_eq!(status, 1);
    assert!(err.starts_with(&format!("{}:2:InvalidRequest", inner.display())), "{err}");
    assert!(out.contains(" from inner\n"), "{out}");
    let (status, _, err) = execute(&node, "SOURCE '/nonexistent/file.cql'");
    assert_eq!(status, 1);
    assert!(err.contains("Could not open '/nonexistent/file.cql'"), "{err}");
    let (status, out, err) = execute(&node, "SELECT cluster_name FROM system.local");
    assert_eq!((status, err.as_str()), (0, ""));
    assert!(out.contains("(1 rows)"));
}

#[test]
fn describe_prints_create_statements_listings_and_the_cluster() {
    let node = TestNode::start();
    let (status, out, err) = execute(
        &node,
        &format!(
            "{CREATE_KS} CREATE TABLE ks.t1 (k int PRIMARY KEY, v text); CREATE TABLE ks.t2 (k int PRIMARY KEY);
             DESCRIBE KEYSPACES;"
        ),
    );
    assert_eq!((status, err.as_str()), (0, ""));
    let listing: Vec<&str> = out.lines().collect();
    assert_eq!(listing[0], "");
    assert!(listing[1].split_whitespace().any(|n| n == "ks"), "{out}");
    assert!(listing[1].split_whitespace().any(|n| n == "system_schema"), "{out}");

    let (status, out, _) = sibylsh(&node, &["-k", "ks", "-e", "DESC TABLES"]);
    assert_eq!(status, 0);
    assert_eq!(out, "\nt1  t2\n\n");

    let (status, out, _) = execute(&node, "DESCRIBE TABLE ks.t1");
    assert_eq!(status, 0);
    assert!(out.starts_with("\nCREATE TABLE ks.t1 (\n    k int PRIMARY KEY,\n    v text\n)"), "{out}");
    assert!(out.ends_with(";\n\n"), "{out}");

    let (status, out, _) = execute(&node, "DESCRIBE KEYSPACE ks");
    assert_eq!(status, 0);
    let statements: Vec<&str> = out.trim().split("\n\n").collect();
    assert_eq!(statements.len(), 3, "{out}");
    assert!(statements[0].starts_with("CREATE KEYSPACE ks WITH replication"), "{out}");
    assert!(statements[1].starts_with("CREATE TABLE ks.t1"), "{out}");
    assert!(statements[2].starts_with("CREATE TABLE ks.t2"), "{out}");

    let (status, out, _) = execute(&node, "DESCRIBE CLUSTER");
    assert_eq!(status, 0);
    assert_eq!(
        out,
        "\nCluster: Test Cluster\nPartitioner: org.apache.cassandra.dht.Murmur3Partitioner\nSnitch: org.apache.cassandra.locator.SimpleSnitch\n\n"
    );

    // cqlsh shows only the server's message for DESCRIBE errors.
    let (status, _, err) = execute(&node, "DESCRIBE TABLE ks.nope");
    assert_eq!(status, 1);
    assert!(err.starts_with("<stdin>:1:") && !err.contains("code=2200"), "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn keyspace_option_uses_the_keyspace_and_fails_for_a_missing_one() {
    let node = TestNode::start();
    let (status, ..) = execute(&node, &format!("{CREATE_KS} CREATE TABLE ks.t (k int PRIMARY KEY)"));
    assert_eq!(status, 0);
    let (status, out, err) =
        sibylsh(&node, &["-k", "ks", "-e", "INSERT INTO t (k) VALUES (5); SELECT * FROM t"]);
    assert_eq!((status, err.as_str()), (0, ""));
    assert!(out.contains("\n k\n---\n 5\n"), "{out}");
    let (status, _, err) = sibylsh(&node, &["-k", "missing", "-e", "SELECT * FROM t"]);
    assert_eq!(status, 1);
    assert!(err.contains("InvalidRequest"), "{err}");
}

#[test]
fn batch_mode_fetches_every_page_under_one_header() {
    let node = TestNode::start();
    let mut cql = format!("{CREATE_KS} CREATE TABLE ks.t (p int, c int, PRIMARY KEY (p, c));");
    for c in 0..25 {
        cql.push_str(&format!("INSERT INTO ks.t (p, c) VALUES (0, {c});"));
    }
    cql.push_str("PAGING 4; SELECT c FROM ks.t WHERE p = 0;");
    let (status, out, err) = execute(&node, &cql);
    assert_eq!((status, err.as_str()), (0, ""));
    let body = out.split_once("Page size: 4\n").unwrap().1;
    let expected: String = std::iter::once("\n c\n----\n".to_string())
        .chain((0..25).map(|c| format!(" {c:>2}\n")))
        .chain(std::iter::once("\n(25 rows)\n".to_string()))
        .collect();
    assert_eq!(body, expected);
    let (status, out, _) = execute(&node, "PAGING OFF; SELECT count(*) FROM ks.t WHERE p = 0");
    assert_eq!(status, 0);
    assert!(out.starts_with("Disabled Query paging.\n\n count\n-------\n    25\n"), "{out}");
}

#[test]
fn settings_commands_answer_like_cqlsh() {
    let node = TestNode::start();
    let (status, out, err) = execute(
        &node,
        "CONSISTENCY; CONSISTENCY QUORUM; CONSISTENCY; SERIAL CONSISTENCY LOCAL_SERIAL; SERIAL CONSISTENCY;
         EXPAND; PAGING; PAGING 10; TRACING; TRACING ON; SELECT cluster_name FROM system.local",
    );
    assert_eq!(status, 0, "{err}");
    let expected = "Current consistency level is ONE.\nConsistency level set to QUORUM.\n\
         Current consistency level is QUORUM.\nSerial consistency level set to LOCAL_SERIAL.\n\
         Current serial consistency level is LOCAL_SERIAL.\n\
         Expanded output is currently disabled. Use EXPAND ON to enable.\n\
         Query paging is currently enabled. Use PAGING OFF to disable\nPage size: 100\nPage size: 10\n\
         Tracing is currently disabled. Use TRACING ON to enable.\n";
    assert!(out.starts_with(expected), "{out}");
    assert!(err.contains("TRACING is not supported"), "{err}");
    let (status, _, err) = execute(&node, "CONSISTENCY STRONG");
    assert_eq!(status, 1);
    assert_eq!(err, "<stdin>:1:Improper CONSISTENCY command.\n");
}

#[test]
fn connection_failure_is_reported_with_status_1() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status =
        sibyl_tools::shell::run(["sibylsh", "127.0.0.1", &port, "-e", "SELECT 1"], &mut out, &mut err);
    assert_eq!(status, 1);
    let err = String::from_utf8(err).unwrap();
    assert!(err.starts_with(&format!("Connection error: could not connect to 127.0.0.1:{port}")), "{err}");
}

/// Scripted input for the interactive loop; records the prompts it was shown.
struct Script {
    lines: std::vec::IntoIter<&'static str>,
    prompts: Vec<String>,
}

impl LineReader for Script {
    fn read_line(&mut self, prompt: &str) -> ReadLine {
        self.prompts.push(prompt.to_string());
        match self.lines.next() {
            Some("^C") => ReadLine::Interrupted,
            Some(line) => ReadLine::Line(line.to_string()),
            None => ReadLine::Eof,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_mode_prompts_continues_lines_and_pauses_between_pages() {
    let node = TestNode::start();
    let args = Args {
        host: "127.0.0.1".into(),
        port: node.address.port(),
        keyspace: None,
        execute: None,
        file: None,
        request_timeout: 10,
        connect_timeout: 5,
        username: None,
        password: None,
    };
    let mut shell = Shell::connect(&args).await.unwrap();
    let mut script = Script {
        lines: vec![
            CREATE_KS,
            "USE ks;",
            "CREATE TABLE t (",
            "  k int PRIMARY KEY)",
            ";",
            "SELECT * FROM",
            "^C",
            "INSERT INTO t (k) VALUES (1);",
            "INSERT INTO t (k) VALUES (2); INSERT INTO t (k) VALUES (3);",
            "PAGING 2",
            "SELECT * FROM t;",
            "",
            "EXIT",
            "SELECT * FROM never_run;",
        ]
        .into_iter(),
        prompts: Vec::new(),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    interactive_loop(&mut shell, &mut script, &mut out, &mut err).await;
    let (out, err) = (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap());
    assert_eq!(err, "");
    assert_eq!(
        script.prompts,
        [
            "sibylsh> ",
            "sibylsh> ",
            "sibylsh:ks> ",
            "   ... ",
            "   ... ",
            "sibylsh:ks> ",
            "   ... ",
            "sibylsh:ks> ",
            "sibylsh:ks> ",
            "sibylsh:ks> ",
            "sibylsh:ks> ",
            "---MORE---",
            "sibylsh:ks> ",
        ]
    );
    // Rows come in token order: Murmur3 tokens of int 1, 2, 3 are increasing. Each page has its
    // header and a blank line; the row count comes last.
    let body = out.split_once("Page size: 2\n").unwrap().1;
    assert_eq!(body, "\n k\n---\n 1\n 2\n\n k\n---\n 3\n\n(3 rows)\n");
}
