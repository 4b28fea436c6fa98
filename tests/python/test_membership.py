"""Elastic membership on real processes: bootstrap, decommission, removenode and replace.

A cluster started with the sibyl-cluster launcher on 127.0.51.x grows 3 -> 4 -> 5 nodes and
shrinks back to 3 while driver threads write at QUORUM; a dead node is removed with removenode
and another replaced; bootstraps killed midway (the joining node, then a source) fail clearly
and succeed when run again. Every check reads what was acknowledged: at QUORUM, at ALL, or at
ONE through a single node (which then answers from its own replica).
"""
import re
import struct
import time

import pytest
from cassandra import ConsistencyLevel as CL
from cassandra.cluster import Cluster, ExecutionProfile
from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement

from test_cluster import LAUNCHER, SIBYLTOOL, Launcher, QuorumWriters, answers, missing_keys, wait_for  # noqa: F401

PREFIX = "127.0.51"
YAML = [
    "memtable_heap_space: 64MiB",
    "ring_delay_ms: 2000",
    "allocate_tokens_for_local_replication_factor: 3",
]


def addr(i):
    return f"{PREFIX}.{i}"


def tool(i, *args, timeout=300, check=True):
    import subprocess

    out = subprocess.run([SIBYLTOOL, "-h", addr(i), *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, f"sibyltool -h {addr(i)} {args} failed:\n{out.stdout}\n{out.stderr}"
    return out


def ring(i, keyspace=None):
    """`status` through node i: {address: (state, owns %, host id)}."""
    out = tool(i, "status", *([keyspace] if keyspace else [])).stdout
    rows = {}
    for line in out.splitlines():
        if line[:1] in "UD" and line[1:2] in "NJLM" and line[2:3] == " ":
            cols = line.split()
            owns = float(cols[-3].rstrip("%")) if cols[-3].endswith("%") else None
            rows[cols[1]] = (cols[0], owns, cols[-2])
    return rows


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    l = Launcher(tmp_path_factory.mktemp("membership") / "c")
    l.run("start", "-n", "3", "--prefix", PREFIX, *[a for y in YAML for a in ("--yaml", y)])
    yield l
    import os
    # SIBYL_KEEP_CLUSTER=1 keeps the nodes' directories (their logs) for a post-mortem.
    l.run("stop" if os.environ.get("SIBYL_KEEP_CLUSTER") else "clear")


def session_for_all():
    profiles = {
        addr(i): ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy([addr(i)]), retry_policy=FallthroughRetryPolicy()
        )
        for i in range(1, 16)
    }
    cluster = Cluster([addr(1)], execution_profiles=profiles)
    return cluster, cluster.connect()


def replicated_by(cluster, keyspace, keys, address):
    """The keys whose replicas (by the driver's token map) include `address`."""
    out = []
    for k in keys:
        hosts = cluster.metadata.get_replicas(keyspace, struct.pack(">i", k))
        if any(h.address == address for h in hosts):
            out.append(k)
    return out


def balance(i, keyspace):
    owns = [o for (_, o, _) in ring(i, keyspace).values() if o is not None]
    return max(owns) / min(owns)


def wait_ring(i, members, timeout=60):
    """Waits until node i sees exactly `members` (node numbers), all UN."""
    want = {addr(m) for m in members}
    wait_for(
        lambda: {a for a, (s, _, _) in ring(i).items()} == want and all(s == "UN" for (s, _, _) in ring(i).values()),
        timeout,
        f"node{i} seeing {sorted(want)} all UN",
    )


def test_grow_to_five_and_shrink_back_to_three_under_quorum_writes(launcher):
    cluster, session = session_for_all()
    members = [1, 2, 3]
    writers = None
    try:
        session.execute("CREATE KEYSPACE grow WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
        session.execute("CREATE TABLE grow.t (k int PRIMARY KEY, v int)")
        assert cluster.control_connection.wait_for_schema_agreement()
        for m in members:
            wait_for(lambda: answers(session, addr(m)), 30, f"driver pool to node{m}")
        writers = QuorumWriters(session, "grow.t", lambda: [addr(m) for m in members], count=2, pause=0.01)
        time.sleep(2)
        report = []

        def check(step):
            with writers.lock:
                acked = list(writers.acked)
            assert missing_keys(session, "grow.t", acked, CL.QUORUM) == [], f"{step}: acknowledged writes lost"
            imbalance = balance(1, "grow")
            report.append(f"{step}: {len(acked)} acknowledged writes readable at QUORUM, owns max/min {imbalance:.2f}")
            return acked, imbalance

        for new in (4, 5):
            started = time.time()
            out = launcher.run("add")
            assert f"node{new} up" in out, out
            joined = time.time() - started
            wait_ring(1, members + [new])
            wait_for(lambda: answers(session, addr(new)), 30, f"driver pool to node{new}")
            netstats = tool(new, "netstats").stdout
            assert "Mode: NORMAL" in netstats and "Bootstrap" in netstats and "completed" in netstats, netstats
            received = sum(int(b) for b in re.findall(r"Receiving \d+ partitions, (\d+) bytes", netstats))
            members.append(new)
            acked, imbalance = check(f"3 -> {new}" if new == 4 else "4 -> 5")
            assert imbalance <= 1.5, f"ownership max/min {imbalance:.2f} after adding node{new}"
            # Node `new` alone has every acknowledged key it replicates: what it streamed plus
            # what it was sent as a pending replica while it joined.
            wait_for(lambda: replicated_by(cluster, "grow", acked[:50], addr(new)), 30, "the driver's token map")
            mine = replicated_by(cluster, "grow", acked, addr(new))
            assert len(mine) > len(acked) // 5, f"node{new} replicates only {len(mine)} of {len(acked)} keys"
            assert missing_keys(session, "grow.t", mine, CL.ONE, profile=addr(new)) == [], f"node{new} misses keys"
            report.append(f"  node{new} joined in {joined:.1f} s, received {received} bytes, holds {len(mine)} keys")

        for leaving in (5, 4):
            members.remove(leaving)
            time.sleep(0.5)
            started = time.time()
            out = tool(leaving, "decommission").stdout
            assert "Decommissioned" in out, out
            took = time.time() - started
            wait_for(lambda: not launcher_running(launcher, leaving), 30, f"node{leaving} to stop")
            wait_ring(1, members)
            hosts = lambda: {h.address for h in cluster.metadata.all_hosts()}  # noqa: E731
            wait_for(lambda: addr(leaving) not in hosts(), 30, f"the driver to drop node{leaving}")
            check(f"decommission node{leaving} ({took:.1f} s)")
        writers.finish()
        print("\n".join(report))
        print(f"writes: {len(writers.acked)} acknowledged, {len(writers.failed)} failed")
        assert writers.failed == [], writers.failed[:5]
        # A decommissioned node refuses to come back.
        import subprocess

        out = subprocess.run([LAUNCHER, "--dir", launcher.dir, "start", "5"], capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and "was decommissioned" in node_log(launcher, 5), out.stdout + out.stderr
    finally:
        if writers is not None:
            writers.finish()
        cluster.shutdown()


def launcher_running(launcher, i):
    import subprocess

    out = subprocess.run([LAUNCHER, "--dir", launcher.dir, "status"], capture_output=True, text=True, timeout=30)
    return any(line.startswith(f"node{i} ") and line.endswith("running") for line in out.stdout.splitlines())


def running_nodes(launcher):
    """The node numbers the launcher has running."""
    import subprocess

    out = subprocess.run([LAUNCHER, "--dir", launcher.dir, "status"], capture_output=True, text=True, timeout=30)
    return sorted(int(line.split()[0][4:]) for line in out.stdout.splitlines() if line.startswith("node") and line.endswith("running"))


def absent(session, table, keys, consistency, profile):
    """The keys a read at `consistency` through `profile` does not find; a failed read fails the
    test with its error."""
    from cassandra.concurrent import execute_concurrent_with_args

    select = session.prepare(f"SELECT v FROM {table} WHERE k = ?")
    select.consistency_level = consistency
    missing, errors = [], []
    todo = list(keys)
    for attempt in range(3):
        results = execute_concurrent_with_args(
            session, select, [(k,) for k in todo], concurrency=32, execution_profile=profile, raise_on_first_error=False
        )
        errors = [(k, r) for k, (ok, r) in zip(todo, results) if not ok]
        missing += [k for k, (ok, r) in zip(todo, results) if ok and r.one() is None]
        # A read that failed (a driver connection still settling) is asked again.
        todo = [k for k, _ in errors]
        if not todo:
            break
        time.sleep(1)
    assert not errors, f"{len(errors)} reads through {profile} failed three times, first: {errors[0]}"
    return sorted(missing)


def write_all(session, table, keys):
    from cassandra.concurrent import execute_concurrent_with_args

    insert = session.prepare(f"INSERT INTO {table} (k, v) VALUES (?, ?)")
    insert.consistency_level = CL.ALL
    results = execute_concurrent_with_args(session, insert, [(k, k) for k in keys], concurrency=32)
    assert all(ok for ok, _ in results)


def test_removenode_restreams_a_dead_nodes_ranges_and_replace_takes_over_another(launcher):
    cluster, session = session_for_all()
    try:
        out = launcher.run("add")
        new = int(re.search(r"node(\d+) up", out).group(1))
        wait_ring(1, [1, 2, 3, new])
        session.execute("CREATE KEYSPACE rm WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
        session.execute("CREATE TABLE rm.t (k int PRIMARY KEY, v int)")
        assert cluster.control_connection.wait_for_schema_agreement()
        keys = list(range(3000))
        write_all(session, "rm.t", keys)

        # removenode: the new node dies for good.
        host_id = ring(1)[addr(new)][2]
        launcher.run("kill", str(new))
        wait_for(lambda: ring(1).get(addr(new), ("",))[0] == "DN", 30, f"node{new} DN")
        refused = tool(1, "removenode", ring(1)[addr(1)][2], check=False)
        assert refused.returncode != 0 and "Cannot remove self" in refused.stderr, refused.stderr
        started = time.time()
        tool(1, "removenode", host_id)
        took = time.time() - started
        assert "COMPLETED" in tool(1, "removenode", "status").stdout
        wait_ring(1, [1, 2, 3])
        wait_ring(2, [1, 2, 3])
        peers = {str(r.peer) for r in session.execute("SELECT peer FROM system.peers", execution_profile=addr(1))}
        assert addr(new) not in peers, peers
        # The driver dropped the host (TOPOLOGY_CHANGE REMOVED_NODE), without a restart.
        wait_for(lambda: addr(new) not in {h.address for h in cluster.metadata.all_hosts()}, 30, "the driver to drop the host")
        # Every key has its three replicas again: each node alone (ONE, its own replica) has
        # every key, before anything (a read at ALL would repair) could fill a gap.
        for i in (1, 2, 3):
            assert missing_keys(session, "rm.t", keys, CL.ONE, profile=addr(i)) == [], f"node{i} misses keys"
        assert missing_keys(session, "rm.t", keys, CL.ALL) == []
        print(f"removenode of {host_id} took {took:.1f} s")

        # replace: node 3 dies; a new node takes over its tokens and data.
        tokens_3 = ring(1)[addr(3)]
        launcher.run("kill", "3")
        wait_for(lambda: ring(1)[addr(3)][0] == "DN", 30, "node3 DN")
        started = time.time()
        out = launcher.run("add", "--replace", addr(3))
        replacement = int(re.search(r"node(\d+) up", out).group(1))
        took = time.time() - started
        wait_ring(1, [1, 2, replacement])
        wait_for(lambda: answers(session, addr(replacement)), 30, "driver pool to the replacement")
        # RF 3 on three nodes: the replacement alone has every key.
        assert missing_keys(session, "rm.t", keys, CL.ONE, profile=addr(replacement)) == []
        assert ring(1)[addr(replacement)][2] != tokens_3[2], "the replacement has its own host id"
        print(f"replace of {addr(3)} by {addr(replacement)} took {took:.1f} s")
    finally:
        cluster.shutdown()


def test_a_bootstrap_killed_midway_fails_clearly_and_succeeds_when_run_again(launcher):
    """The joining node is killed mid-stream, then restarted: it resumes with the same tokens.
    Then a source is killed under another joining node: that bootstrap fails with a message
    naming the source, and succeeds once the source is back and the node is started again."""
    cluster, session = session_for_all()
    try:
        members = running_nodes(launcher)
        wait_ring(1, members)
        # Only this test's data streams, so every stream to a joining node lasts seconds.
        for ks in ("grow", "rm"):
            session.execute(f"DROP KEYSPACE IF EXISTS {ks}")
        session.execute("CREATE KEYSPACE slow WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
        session.execute("CREATE TABLE slow.t (k int PRIMARY KEY, v text)")
        assert cluster.control_connection.wait_for_schema_agreement()
        from cassandra.concurrent import execute_concurrent_with_args

        insert = session.prepare("INSERT INTO slow.t (k, v) VALUES (?, ?)")
        insert.consistency_level = CL.ALL
        # About 8 MB; at 1 megabit/s each source's stream (over a megabyte) lasts seconds.
        keys = list(range(8000))
        assert all(ok for ok, _ in execute_concurrent_with_args(session, insert, [(k, "x" * 1000) for k in keys], concurrency=32))
        for m in members:
            tool(m, "setstreamthroughput", "1")

        def sending_to(i):
            """The member streaming to node i now, if any."""
            for m in members:
                out = tool(m, "netstats", timeout=10, check=False).stdout
                if re.search(re.escape(f"/{addr(i)} Sending") + r".*running", out):
                    return m
            return None

        # 1. Kill the joining node mid-stream; start it again.
        out = launcher.run("add", "--no-wait")
        first = int(re.search(r"node(\d+) started", out).group(1))
        wait_for(lambda: sending_to(first), 60, f"a stream to node{first}")
        launcher.run("kill", str(first))
        assert "bootstrap completed" not in node_log(launcher, first), "the bootstrap ended before the kill"
        assert ring(1)[addr(first)][0] in ("UJ", "DJ")
        # The cluster keeps taking writes with the joining node down (at ONE: a pending replica
        # counts towards the level, so RF 2 at QUORUM needs it, as in Cassandra).
        during = SimpleStatement("INSERT INTO slow.t (k, v) VALUES (-1, 'during')", consistency_level=CL.ONE)
        session.execute(during, execution_profile=addr(1))
        for m in members:
            tool(m, "setstreamthroughput", "0")
        launcher.run("start", str(first))
        log = node_log(launcher, first)
        assert "resuming an interrupted bootstrap" in log, log[-3000:]
        wait_ring(1, members + [first])
        wait_for(lambda: answers(session, addr(first)), 30, "driver pool to the resumed node")
        wait_for(lambda: replicated_by(cluster, "slow", keys[:50], addr(first)), 30, "the driver's token map")
        mine = replicated_by(cluster, "slow", keys, addr(first))
        assert mine and absent(session, "slow.t", mine, CL.ONE, addr(first)) == []

        # 2. Kill a source mid-stream: the bootstrap fails clearly, and works once run again.
        members.append(first)
        for m in members:
            tool(m, "setstreamthroughput", "1")
        out = launcher.run("add", "--no-wait")
        second = int(re.search(r"node(\d+) started", out).group(1))
        senders = []
        try:
            wait_for(lambda: senders.append(sending_to(second)) or senders[-1], 60, f"a stream to node{second}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{node_log(launcher, second)[-4000:]}") from None
        source = senders[-1]
        launcher.run("kill", str(source))
        wait_for(lambda: not launcher_running(launcher, second), 60, f"node{second} to give up")
        log = node_log(launcher, second)
        assert "bootstrap failed" in log and "restart it to retry" in log, log[-2000:]
        launcher.run("start", str(source))
        wait_for(lambda: ring(1)[addr(source)][0] == "UN", 60, f"node{source} back UN")
        for m in members:
            tool(m, "setstreamthroughput", "0")
        launcher.run("start", str(second))
        wait_ring(1, members + [second])
        wait_for(lambda: answers(session, addr(second)), 30, "driver pool to the retried node")
        wait_for(lambda: replicated_by(cluster, "slow", keys[:50], addr(second)), 30, "the driver's token map")
        mine = replicated_by(cluster, "slow", keys, addr(second))
        assert mine and absent(session, "slow.t", mine, CL.ONE, addr(second)) == []
    finally:
        cluster.shutdown()


def node_log(launcher, i):
    from pathlib import Path

    return (Path(launcher.dir) / f"node{i}" / "system.log").read_text()
