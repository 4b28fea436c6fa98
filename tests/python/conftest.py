"""Fixtures: a real Sibyl node (the `sibyl` binary) on a free port, in a temporary directory.

The binary is taken from $SIBYL_BIN, else target/debug/sibyl (scripts/test.sh builds it).
Every test module gets its own node; tests isolate themselves with their own keyspaces.
"""
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from cassandra.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.port = free_port()
        self.admin_port = free_port()
        self.binary = os.environ.get("SIBYL_BIN", str(ROOT / "target" / "debug" / "sibyl"))
        self.log = self.dir / "node.log"
        self.proc = None

    def config(self):
        path = self.dir / "sibyl.yaml"
        path.write_text(
            "data_file_directories:\n"
            f"  - {self.dir / 'data'}\n"
            f"commitlog_directory: {self.dir / 'commitlog'}\n"
            f"hints_directory: {self.dir / 'hints'}\n"
            f"batchlog_directory: {self.dir / 'batchlog'}\n"
            "commitlog_sync: batch\n"
            f"native_transport_port: {self.port}\n"
            "storage_port: 0\n"
            f"admin_port: {self.admin_port}\n"
            "memtable_heap_space: 64MiB\n"
        )
        return path

    def start(self):
        cfg = self.config()
        self.proc = subprocess.Popen(
            [self.binary, "--config", str(cfg)],
            cwd=self.dir,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sibyl exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("sibyl did not start listening within 60 s:\n" + self.log.read_text())

    def stop(self):
        """SIGTERM, and the node must exit cleanly (status 0) within 30 s."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("node"))
    n.start()
    yield n
    code = n.stop()
    assert code == 0, f"node did not stop cleanly: {n.log.read_text()[-4000:]}"


@pytest.fixture(scope="module")
def cluster(node):
    # Default settings: full schema and token metadata, as applications run it.
    c = Cluster(["127.0.0.1"], port=node.port)
    yield c
    c.shutdown()


@pytest.fixture(scope="module")
def session(cluster):
    return cluster.connect()


@pytest.fixture
def keyspace(session):
    name = "ks_" + uuid.uuid4().hex[:12]
    session.execute(
        f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    session.set_keyspace(name)
    yield name
    session.execute(f"DROP KEYSPACE IF EXISTS {name}")
