"""cqlsh (the PyPI package, unmodified) against a real Sibyl node, in -e and -f mode."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

CQLSH = str(Path(sys.executable).parent / "cqlsh")


def cqlsh(node, *args, stdin=None):
    env = dict(os.environ, CQLSH_NO_BUNDLED="TRUE", HOME=str(node.dir))
    p = subprocess.run([CQLSH, "127.0.0.1", str(node.port), *args], capture_output=True, text=True,
                       timeout=120, env=env, input=stdin)
    return p.returncode, p.stdout, p.stderr


def test_cqlsh_runs_ddl_dml_and_prints_tables(node):
    code, out, err = cqlsh(node, "-e", """
        CREATE KEYSPACE shell WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};
        CREATE TABLE shell.users (id int PRIMARY KEY, name text, tags set<text>);
        INSERT INTO shell.users (id, name, tags) VALUES (1, 'ada', {'math', 'engines'});
        INSERT INTO shell.users (id, name) VALUES (2, 'alan');
        SELECT * FROM shell.users;
    """)
    assert code == 0, err
    assert " id | name | tags" in out
    assert "  1 |  ada | {'engines', 'math'}" in out
    assert "  2 | alan |                null" in out
    assert "(2 rows)" in out


def test_cqlsh_describe_is_answered_by_the_server(node):
    cqlsh(node, "-e", "CREATE KEYSPACE IF NOT EXISTS d WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};"
                      "CREATE TABLE IF NOT EXISTS d.t (p int, c text, v int, PRIMARY KEY (p, c)) WITH CLUSTERING ORDER BY (c DESC);")
    code, out, err = cqlsh(node, "-e", "DESCRIBE KEYSPACE d")
    assert code == 0, err
    assert "CREATE KEYSPACE d WITH replication" in out
    assert "CREATE TABLE d.t (" in out
    assert "PRIMARY KEY (p, c)" in out
    assert "CLUSTERING ORDER BY (c DESC)" in out
    code, out, err = cqlsh(node, "-e", "DESCRIBE TABLE d.t")
    assert code == 0 and "CREATE TABLE d.t" in out, err
    code, out, err = cqlsh(node, "-e", "DESCRIBE KEYSPACES")
    assert code == 0 and "system_schema" in out and "d" in out.split(), err
    code, out, err = cqlsh(node, "-e", "DESCRIBE CLUSTER")
    assert code == 0 and "Cluster: Test Cluster" in out and "Murmur3Partitioner" in out, err


def test_cqlsh_reports_errors_with_a_nonzero_status(node):
    code, out, err = cqlsh(node, "-e", "SELEC 1")
    assert code != 0
    assert "SyntaxException" in err and "line 1:0" in err
    code, out, err = cqlsh(node, "-e", "SELECT * FROM nosuch.tbl")
    assert code != 0
    assert "InvalidRequest" in err


def test_cqlsh_runs_a_script_file(node, tmp_path):
    script = tmp_path / "s.cql"
    script.write_text(
        "CREATE KEYSPACE IF NOT EXISTS f WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\n"
        "USE f;\n"
        "CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY, v text);\n"
        "INSERT INTO t (k, v) VALUES (1, 'one');\n"
        "SELECT v FROM t WHERE k = 1;\n")
    code, out, err = cqlsh(node, "-f", str(script))
    assert code == 0, err
    assert " one" in out
