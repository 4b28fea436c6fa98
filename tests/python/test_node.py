"""The node process: restarts keep schema and data, and bad frames never hurt other clients."""
import socket
import struct

from cassandra.cluster import Cluster

from conftest import Node


def connect(node):
    c = Cluster(["127.0.0.1"], port=node.port)
    return c, c.connect()


def test_schema_and_acknowledged_writes_survive_sigterm_and_sigkill(tmp_path):
    node = Node(tmp_path)
    node.start()
    c, s = connect(node)
    s.execute("CREATE KEYSPACE k WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE k.t (p int, c int, v text, PRIMARY KEY (p, c))")
    ins = s.prepare("INSERT INTO k.t (p, c, v) VALUES (?, ?, ?)")
    for i in range(100):
        s.execute(ins, (i % 7, i, f"v{i}"))
    host_id = s.execute("SELECT host_id FROM system.local").one().host_id
    c.shutdown()
    assert node.stop() == 0
    node.start()
    c, s = connect(node)
    assert s.execute("SELECT host_id FROM system.local").one().host_id == host_id
    assert s.execute("SELECT count(*) FROM k.t").one().count == 100
    for i in range(100, 200):
        s.execute("INSERT INTO k.t (p, c, v) VALUES (%s, %s, %s)", (i % 7, i, f"v{i}"))
    c.shutdown()
    # commitlog_sync: batch in the test config: acknowledged writes are on disk.
    node.kill()
    node.start()
    c, s = connect(node)
    assert s.execute("SELECT count(*) FROM k.t").one().count == 200
    assert "t" in c.metadata.keyspaces["k"].tables
    c.shutdown()
    assert node.stop() == 0


def frame(version, stream, opcode, body):
    return struct.pack(">BBhBi", version, 0, stream, opcode, len(body)) + body


def read_frame(sock):
    header = b""
    while len(header) < 9:
        chunk = sock.recv(9 - len(header))
        if not chunk:
            return None
        header += chunk
    version, flags, stream, opcode, length = struct.unpack(">BBhBi", header)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return version, stream, opcode, body


def closed(sock):
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_garbage_truncated_and_oversize_frames_get_a_protocol_error_and_a_close(node):
    c, s = connect(node)
    s.execute("SELECT * FROM system.local")
    startup = struct.pack(">H", 1) + struct.pack(">H", 11) + b"CQL_VERSION" + struct.pack(">H", 5) + b"3.0.0"
    cases = {
        "garbage opcode": frame(4, 3, 0x77, b"xx"),
        "oversize length": frame(4, 4, 0x07, b"")[:5] + struct.pack(">i", 1 << 30),
        # The header's length is right, but a string inside claims more bytes than the body has.
        "truncated body": frame(4, 5, 0x01, startup[:-7] + struct.pack(">H", 60000) + b"3.0.0"),
        "unsupported version": frame(0x42, 6, 0x05, b""),
    }
    for name, data in cases.items():
        sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        sock.sendall(data)
        reply = read_frame(sock)
        assert reply is not None, name
        version, stream, opcode, body = reply
        assert opcode == 0x00, name  # ERROR
        code = struct.unpack(">i", body[:4])[0]
        assert code == 0x000A, f"{name}: error code {code:#x}"
        if name == "unsupported version":
            assert version == 0x84
            assert b"Invalid or unsupported protocol version (66)" in body
        assert closed(sock), f"{name}: connection left open"
        sock.close()
        # The driver's connection is unaffected.
        assert s.execute("SELECT key FROM system.local").one().key == "local"
    c.shutdown()


def sibyltool(node, *args):
    import os
    import subprocess
    from conftest import ROOT

    binary = os.environ.get("SIBYLTOOL_BIN", str(ROOT / "target" / "debug" / "sibyltool"))
    out = subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(node.admin_port), *args], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_compaction_options_reach_the_engine_and_sibyltool_compacts(tmp_path):
    from cassandra import InvalidRequest
    from cassandra.protocol import ConfigurationException
    import pytest

    node = Node(tmp_path)
    node.start()
    c, s = connect(node)
    s.execute("CREATE KEYSPACE k WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    with pytest.raises((ConfigurationException, InvalidRequest), match="sstable_size_in_mb"):
        s.execute(
            "CREATE TABLE k.bad (p int PRIMARY KEY) WITH compaction = "
            "{'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': '-1'}"
        )
    s.execute(
        "CREATE TABLE k.t (p int, c int, v text, PRIMARY KEY (p, c)) WITH compaction = "
        "{'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': '1'}"
    )
    ins = s.prepare("INSERT INTO k.t (p, c, v) VALUES (?, ?, ?)")
    for round in range(5):
        for i in range(40):
            s.execute(ins, (i, round, f"v{round}-{i}" * 20))
        sibyltool(node, "flush", "k", "t")
    for i in range(0, 40, 2):
        s.execute("DELETE FROM k.t WHERE p = %s", (i,))
    sibyltool(node, "compact", "k", "t")
    stats = sibyltool(node, "tablestats", "k.t")
    assert "Table: t" in stats and "Compactions completed:" in stats, stats
    assert "pending tasks:" in sibyltool(node, "compactionstats")
    assert "Partition Size" in sibyltool(node, "tablehistograms", "k", "t")

    # ALTER TABLE reaches the engine: a size-tiered major compaction leaves one SSTable.
    s.execute("ALTER TABLE k.t WITH compaction = {'class': 'SizeTieredCompactionStrategy', 'min_threshold': '2'}")
    meta = s.execute("SELECT compaction FROM system_schema.tables WHERE keyspace_name = 'k' AND table_name = 't'").one()
    assert meta.compaction["class"].endswith("SizeTieredCompactionStrategy")
    sibyltool(node, "compact", "k", "t")
    assert "SSTable count: 1\n" in sibyltool(node, "tablestats", "k.t")
    rows = sorted((r.p, r.c) for r in s.execute("SELECT p, c FROM k.t"))
    assert rows == [(p, r) for p in range(1, 40, 2) for r in range(5)], "deleted partitions stay deleted"
    sibyltool(node, "setcompactionthroughput", "16")
    assert "16 MB/s" in sibyltool(node, "getcompactionthroughput")
    sibyltool(node, "stop", "COMPACTION")
    c.shutdown()
    assert node.stop() == 0
