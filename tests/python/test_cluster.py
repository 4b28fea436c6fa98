"""A real three-node cluster on 127.0.50.1-3, started with the sibyl-cluster launcher.

What a user of a Cassandra cluster relies on: the driver (default settings) discovers every
node from one contact point, DDL reaches every node (schema agreement), QUORUM writes through
one coordinator are read at QUORUM through each other one, a killed node is seen down by the
others within 10 s while QUORUM keeps working and ALL is Unavailable with required/alive, and
the node comes back UN after a restart. sibyltool reports all of it.
"""
import os
import subprocess
import time
from pathlib import Path

import pytest
from cassandra import ConsistencyLevel as CL
from cassandra import Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "127.0.50"
ADDRS = [f"{PREFIX}.{i}" for i in (1, 2, 3)]


def binary(env, name):
    return os.environ.get(env, str(ROOT / "target" / "debug" / name))


LAUNCHER = binary("SIBYL_CLUSTER_BIN", "sibyl-cluster")
SIBYLTOOL = binary("SIBYLTOOL_BIN", "sibyltool")


class Launcher:
    def __init__(self, directory):
        self.dir = str(directory)

    def run(self, *args):
        out = subprocess.run(
            [LAUNCHER, "--dir", self.dir, *args], capture_output=True, text=True, timeout=180
        )
        assert out.returncode == 0, f"sibyl-cluster {args} failed:\n{out.stdout}\n{out.stderr}\n{self.logs(out.stderr)}"
        return out.stdout

    def logs(self, error=""):
        """The tail of every node's log, plain text, the nodes the error names first (CI shows
        only the start of a long failure)."""
        import re

        named = set(re.findall(r"node(\d+)", error))
        logs = sorted(Path(self.dir).glob("node*/system.log"), key=lambda p: (p.parent.name[4:] not in named, p))
        text = ""
        for log in logs:
            plain = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())
            # A panic's message, or the error a node exited with, comes before a backtrace longer
            # than the tail: show it first.
            for m in re.finditer(r"^(.*panicked at .*|Error: .*)$", plain, re.M):
                text += f"--- {log}: {m.group(0)[:200]}\n" + plain[max(0, m.start() - 1500) : m.end() + 600] + "\n"
            text += f"--- {log}\n" + plain[-3000:]
        return text


def status(addr):
    out = subprocess.run([SIBYLTOOL, "-h", addr, "status"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return {line.split()[1]: line.split()[0] for line in out.stdout.splitlines() if line[:2] in ("UN", "DN", "UJ")}


def wait_for(predicate, timeout, what):
    start = time.time()
    while time.time() - start < timeout:
        if predicate():
            return time.time() - start
        time.sleep(0.25)
    raise AssertionError(f"{what} not reached within {timeout} s")


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    l = Launcher(tmp_path_factory.mktemp("cluster") / "c")
    l.run("start", "-n", "3", "--prefix", PREFIX, "--yaml", "memtable_heap_space: 64MiB")
    yield l
    l.run("clear")


def test_three_nodes_form_one_cluster_and_serve_every_consistency_level(launcher):
    for addr in ADDRS:
        wait_for(lambda: status(addr) == {a: "UN" for a in ADDRS}, 30, f"all UN seen from {addr}")

    cluster, session = pinned_session()
    try:
        # The driver, given one contact point, discovers the three nodes from system.peers.
        assert sorted(h.address for h in cluster.metadata.all_hosts()) == ADDRS
        assert len(cluster.metadata.token_map.ring) == 48

        session.execute(
            "CREATE KEYSPACE ring WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"
        )
        session.execute("CREATE TABLE ring.kv (k int PRIMARY KEY, v text)")
        assert cluster.control_connection.wait_for_schema_agreement()

        insert = SimpleStatement("INSERT INTO ring.kv (k, v) VALUES (%s, %s)", consistency_level=CL.QUORUM)
        select = SimpleStatement("SELECT v FROM ring.kv WHERE k = %s", consistency_level=CL.QUORUM)
        for k in range(40):
            session.execute(insert, (k, f"v{k}"), execution_profile=ADDRS[0])
        for coordinator in ADDRS[1:]:
            got = [session.execute(select, (k,), execution_profile=coordinator).one() for k in range(40)]
            assert [r.v for r in got] == [f"v{k}" for k in range(40)], coordinator
        # Every replica holds every row: ALL through the third node sees them too.
        count = SimpleStatement("SELECT count(*) FROM ring.kv", consistency_level=CL.ALL)
        assert session.execute(count, execution_profile=ADDRS[2]).one().count == 40

        launcher.run("kill", "3")
        took = wait_for(
            lambda: status(ADDRS[0]).get(ADDRS[2]) == "DN" and status(ADDRS[1]).get(ADDRS[2]) == "DN",
            10,
            "node 3 DN on both survivors",
        )
        print(f"killed node marked DN after {took:.1f} s")

        session.execute(insert, (100, "after"), execution_profile=ADDRS[0])
        assert session.execute(select, (100,), execution_profile=ADDRS[1]).one().v == "after"
        one = SimpleStatement("SELECT v FROM ring.kv WHERE k = 7", consistency_level=CL.ONE)
        assert session.execute(one, execution_profile=ADDRS[1]).one().v == "v7"
        with pytest.raises(Unavailable) as err:
            session.execute(
                SimpleStatement("INSERT INTO ring.kv (k, v) VALUES (1, 'x')", consistency_level=CL.ALL),
                execution_profile=ADDRS[0],
            )
        assert "required_replicas': 3" in str(err.value) and "alive_replicas': 2" in str(err.value), err.value

        launcher.run("start", "3")
        for addr in ADDRS:
            wait_for(lambda: status(addr) == {a: "UN" for a in ADDRS}, 30, f"node 3 UN again from {addr}")
        # The driver hears the UP event (or its reconnection schedule fires) and uses node 3 again.
        wait_for(lambda: cluster.metadata.get_host(ADDRS[2]).is_up, 30, "the driver sees node 3 up")
        wait_for(lambda: answers(session, ADDRS[2]), 30, "the driver's pool to node 3 ready")
        # The restarted node coordinates again, and it kept the rows written before the kill.
        got = session.execute(
            SimpleStatement("SELECT v FROM ring.kv WHERE k = 5", consistency_level=CL.ALL),
            execution_profile=ADDRS[2],
        ).one()
        assert got.v == "v5"
    finally:
        cluster.shutdown()


def test_sibyltool_describes_the_cluster(launcher):
    out = subprocess.run([SIBYLTOOL, "-h", ADDRS[1], "describecluster"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Name: sibyl-local" in out.stdout
    versions = [l for l in out.stdout.splitlines() if l.startswith("\t\t")]
    assert len(versions) == 1 and all(a in versions[0] for a in ADDRS), out.stdout
    ep = subprocess.run(
        [SIBYLTOOL, "-h", ADDRS[0], "getendpoints", "ring", "kv", "5"], capture_output=True, text=True
    )
    assert ep.returncode == 0, ep.stderr
    assert sorted(ep.stdout.split()) == ADDRS
    gossip = subprocess.run([SIBYLTOOL, "-h", ADDRS[0], "gossipinfo"], capture_output=True, text=True)
    assert all(f"/{a}" in gossip.stdout for a in ADDRS) and "STATUS" in gossip.stdout
    metrics = subprocess.run(
        ["python3", "-c", f"import urllib.request;print(urllib.request.urlopen('http://{ADDRS[0]}:7199/metrics').read().decode())"],
        capture_output=True,
        text=True,
    )
    assert "sibyl_coordinator_writes_total" in metrics.stdout and 'sibyl_peer_up{peer="127.0.50.2:7000"} 1' in metrics.stdout


def pinned_session():
    """A driver session with one execution profile per node: a request sent with profile `a`
    is coordinated by `a`, and its errors reach the test as sent (no retries)."""
    profiles = {
        a: ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([a]), retry_policy=FallthroughRetryPolicy())
        for a in ADDRS
    }
    cluster = Cluster([ADDRS[0]], execution_profiles=profiles)
    return cluster, cluster.connect()


def create_table(cluster, session, ddl):
    """Creates `ddl`'s table in keyspace `ring` (RF 3) and waits for schema agreement."""
    session.execute(
        "CREATE KEYSPACE IF NOT EXISTS ring WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"
    )
    session.execute(ddl)
    assert cluster.control_connection.wait_for_schema_agreement()


class QuorumWriters:
    """Threads inserting unique keys (k, k) at QUORUM into `table`, each request sent to a node
    `coordinators()` names; acknowledged keys and failures are recorded."""

    def __init__(self, session, table, coordinators, count=2, pause=0.0):
        import threading

        self.insert = session.prepare(f"INSERT INTO {table} (k, v) VALUES (?, ?)")
        self.insert.consistency_level = CL.QUORUM
        self.session, self.coordinators, self.pause = session, coordinators, pause
        self.lock = threading.Lock()
        self.next, self.acked, self.failed, self.stop = 0, [], [], False
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(count)]
        for t in self.threads:
            t.start()

    def run(self, index):
        while not self.stop:
            with self.lock:
                k = self.next
                self.next += 1
                live = self.coordinators()
                coordinator = live[(k + index) % len(live)]
            try:
                self.session.execute(self.insert, (k, k), execution_profile=coordinator)
                with self.lock:
                    self.acked.append(k)
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                with self.lock:
                    self.failed.append((k, coordinator, repr(e)))
            if self.pause:
                time.sleep(self.pause)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


def answers(session, addr):
    """Whether a request pinned to `addr` succeeds now."""
    try:
        session.execute("SELECT release_version FROM system.local", execution_profile=addr)
        return True
    except Exception:  # noqa: BLE001 - not ready yet
        return False


def missing_keys(session, table, keys, consistency, profile=EXEC_PROFILE_DEFAULT):
    """The keys of `keys` that a read at `consistency` does not find."""
    from cassandra.concurrent import execute_concurrent_with_args

    select = session.prepare(f"SELECT v FROM {table} WHERE k = ?")
    select.consistency_level = consistency
    results = execute_concurrent_with_args(session, select, [(k,) for k in keys], concurrency=32, execution_profile=profile)
    return [k for k, (ok, rows) in zip(keys, results) if not ok or rows.one() is None]


def sibyltool(addr, *args, timeout=120):
    out = subprocess.run([SIBYLTOOL, "-h", addr, *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"sibyltool {args} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_hints_then_repair_bring_a_restarted_node_up_to_date(launcher):
    """A node misses writes twice: hints bring the first ones, `sibyltool repair` the second
    (written with handoff disabled). Each time the node alone (CL ONE through itself) has them."""
    cluster, session = pinned_session()
    try:
        create_table(cluster, session, "CREATE TABLE ring.hr (k int PRIMARY KEY, v text)")
        insert = SimpleStatement("INSERT INTO ring.hr (k, v) VALUES (%s, %s)", consistency_level=CL.ONE)
        select_own = SimpleStatement("SELECT k, v FROM ring.hr WHERE k = %s", consistency_level=CL.ONE)

        def node3_has(keys, value):
            # CL ONE through node 3 reads node 3's own replica first (the local replica is closest).
            rows = [session.execute(select_own, (k,), execution_profile=ADDRS[2]).one() for k in keys]
            return all(r is not None and r.v == value for r in rows)

        def restart_node3():
            launcher.run("start", "3")
            for addr in ADDRS:
                wait_for(lambda: status(addr) == {a: "UN" for a in ADDRS}, 30, f"node 3 UN from {addr}")
            wait_for(lambda: cluster.metadata.get_host(ADDRS[2]).is_up, 30, "the driver sees node 3 up")
            wait_for(lambda: answers(session, ADDRS[2]), 30, "the driver's pool to node 3 ready")

        # 1. Hints.
        launcher.run("kill", "3")
        wait_for(lambda: status(ADDRS[0]).get(ADDRS[2]) == "DN", 10, "node 3 DN on node 1")
        for k in range(200):
            session.execute(insert, (k, "hinted"), execution_profile=ADDRS[0])
        pending = sibyltool(ADDRS[0], "listpendinghints")
        assert ADDRS[2] in pending and "DOWN" in pending, pending
        restart_node3()
        wait_for(
            lambda: "does not have any pending hints" in sibyltool(ADDRS[0], "listpendinghints"),
            30,
            "node 1's hints for node 3 delivered",
        )
        assert node3_has(range(200), "hinted")

        # 2. Repair, with handoff disabled so only repair can bring the writes.
        sibyltool(ADDRS[0], "disablehandoff")
        sibyltool(ADDRS[1], "disablehandoff")
        launcher.run("kill", "3")
        wait_for(lambda: status(ADDRS[0]).get(ADDRS[2]) == "DN", 10, "node 3 DN on node 1")
        for k in range(100, 300):
            session.execute(insert, (k, "repaired"), execution_profile=ADDRS[0])
        assert "does not have any pending hints" in sibyltool(ADDRS[0], "listpendinghints")
        restart_node3()
        assert not node3_has(range(200, 300), "repaired")
        out = sibyltool(ADDRS[0], "repair", "ring", "hr", "-full")
        assert "progress: 100%" in out and "finished successfully" in out, out
        assert node3_has(range(100, 300), "repaired") and node3_has(range(100), "hinted")
        history = sibyltool(ADDRS[0], "repair_admin", "list")
        assert "SUCCESS" in history and " 200 " in history, history
        # A second repair finds nothing to do.
        again = sibyltool(ADDRS[2], "repair", "ring", "hr", "-pr")
        assert "finished successfully: " in again and "consistent" in again, again
        assert "differing sub-ranges, 0 partitions repaired" in again, again
        # The history survives a restart of the node.
        launcher.run("stop", "1")
        launcher.run("start", "1")
        for addr in ADDRS:
            wait_for(lambda: status(addr) == {a: "UN" for a in ADDRS}, 30, f"node 1 UN again from {addr}")
        assert sibyltool(ADDRS[0], "repair_admin", "list") == history
    finally:
        sibyltool(ADDRS[0], "enablehandoff")
        sibyltool(ADDRS[1], "enablehandoff")
        cluster.shutdown()


def test_crash_loop_under_quorum_writes_loses_nothing_and_stays_available(launcher):
    """Each node in turn is killed with SIGKILL and restarted while two writers insert unique
    keys at QUORUM through the nodes that are up. Every request coordinated by a live node
    succeeds, and afterwards every acknowledged key is read back at ALL."""
    cluster, session = pinned_session()
    create_table(cluster, session, "CREATE TABLE ring.crash (k int PRIMARY KEY, v int)")
    live = list(ADDRS)
    writers = QuorumWriters(session, "ring.crash", lambda: live)
    try:
        for victim in [3, 2, 3]:
            addr = ADDRS[victim - 1]
            with writers.lock:
                live[:] = [a for a in ADDRS if a != addr]
            time.sleep(0.5)  # requests already sent to the victim finish first
            launcher.run("kill", str(victim))
            time.sleep(2)
            launcher.run("start", str(victim))
            for a in ADDRS:
                wait_for(lambda: status(a) == {x: "UN" for x in ADDRS}, 30, f"node {victim} UN from {a}")
            wait_for(lambda: cluster.metadata.get_host(addr).is_up, 30, f"the driver sees node {victim} up")
            # The driver marks a host up before its connection pool is ready; until a request
            # through it succeeds, a request sent there would fail in the driver (NoHostAvailable)
            # without reaching any node.
            wait_for(lambda: answers(session, addr), 30, f"the driver's pool to node {victim} ready")
            with writers.lock:
                live[:] = list(ADDRS)
            time.sleep(1)
    finally:
        writers.finish()
    print(f"crash loop: {len(writers.acked)} writes acknowledged, {len(writers.failed)} failed")
    assert not writers.failed, writers.failed[:5]
    assert len(writers.acked) > 200
    lost = missing_keys(session, "ring.crash", writers.acked, CL.ALL)
    print(f"lost acknowledged writes: {len(lost)}")
    assert not lost, lost[:10]
    cluster.shutdown()


def test_a_logged_batch_across_partitions_goes_through_the_batchlog(launcher):
    cluster = Cluster([ADDRS[0]])
    session = cluster.connect()
    try:
        create_table(cluster, session, "CREATE TABLE IF NOT EXISTS ring.lb (k int PRIMARY KEY, v text)")
        body = " ".join(f"INSERT INTO ring.lb (k, v) VALUES ({k}, 'b');" for k in range(20))
        session.execute(SimpleStatement(f"BEGIN BATCH {body} APPLY BATCH", consistency_level=CL.QUORUM))
        rows = session.execute(SimpleStatement("SELECT k, v FROM ring.lb", consistency_level=CL.ALL))
        assert sorted((r.k, r.v) for r in rows) == [(k, "b") for k in range(20)]

        def metric(addr, name):
            import urllib.request

            text = urllib.request.urlopen(f"http://{addr}:7199/metrics").read().decode()
            return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name + " "))

        # Stored on two other nodes, and removed from them once applied.
        wait_for(lambda: sum(metric(a, "sibyl_batchlog_removed_total") for a in ADDRS) >= 2, 10, "batch removed")
        stored = sum(metric(a, "sibyl_batchlog_stored_total") for a in ADDRS)
        assert stored >= 2
        assert sum(metric(a, "sibyl_batchlog_pending") for a in ADDRS) == 0

        # The driver's BatchStatement (a protocol BATCH message, LOGGED by default) too.
        from cassandra.query import BatchStatement

        batch = BatchStatement(consistency_level=CL.QUORUM)
        insert = session.prepare("INSERT INTO ring.lb (k, v) VALUES (?, ?)")
        for k in range(20, 40):
            batch.add(insert, (k, "d"))
        session.execute(batch)
        assert sum(metric(a, "sibyl_batchlog_stored_total") for a in ADDRS) >= stored + 2
        wait_for(lambda: sum(metric(a, "sibyl_batchlog_pending") for a in ADDRS) == 0, 10, "driver batch removed")
        rows = session.execute(SimpleStatement("SELECT k FROM ring.lb", consistency_level=CL.ALL))
        assert sorted(r.k for r in rows) == list(range(40))
    finally:
        cluster.shutdown()


def test_a_paused_node_is_marked_down_and_catches_up_through_hints(launcher):
    """SIGSTOP node 3 (alive to TCP, silent to everything) under QUORUM writes through nodes 1
    and 2: every write succeeds, the failure detector marks node 3 down, and after SIGCONT the
    hints bring it every write it missed (read at ONE through node 3 itself)."""
    import signal

    cluster, session = pinned_session()
    create_table(cluster, session, "CREATE TABLE ring.pause (k int PRIMARY KEY, v int)")
    pid = int((Path(launcher.dir) / "node3" / "sibyl.pid").read_text().strip())
    writers = QuorumWriters(session, "ring.pause", lambda: ADDRS[:2], pause=0.002)
    try:
        time.sleep(1)
        os.kill(pid, signal.SIGSTOP)
        took = wait_for(lambda: status(ADDRS[0]).get(ADDRS[2]) == "DN", 30, "paused node 3 DN on node 1")
        print(f"paused node marked DN after {took:.1f} s")
        time.sleep(2)
        os.kill(pid, signal.SIGCONT)
        for addr in ADDRS:
            wait_for(lambda: status(addr) == {a: "UN" for a in ADDRS}, 30, f"node 3 UN again from {addr}")
        time.sleep(1)
    finally:
        os.kill(pid, signal.SIGCONT)
        writers.finish()
    print(f"pause: {len(writers.acked)} writes acknowledged, {len(writers.failed)} failed")
    assert not writers.failed, writers.failed[:5]
    for addr in ADDRS[:2]:
        wait_for(
            lambda: "does not have any pending hints" in sibyltool(addr, "listpendinghints"),
            30,
            f"{addr}'s hints for node 3 delivered",
        )
    wait_for(lambda: cluster.metadata.get_host(ADDRS[2]).is_up, 30, "the driver sees node 3 up")
    wait_for(lambda: answers(session, ADDRS[2]), 30, "the driver's pool to node 3 ready")
    missing = missing_keys(session, "ring.pause", writers.acked, CL.ONE, profile=ADDRS[2])
    print(f"writes missing on node 3 after hints: {len(missing)}")
    assert not missing, missing[:10]
    cluster.shutdown()


def test_cleanup_drops_the_data_of_ranges_a_node_no_longer_replicates(launcher):
    """RF 3 -> 1, then `sibyltool cleanup` on every node: each row stays on its one owner only.
    Going back to RF 3 without repair, a read at ONE through each node sees its own replica, so
    the rows found across the three nodes add up to exactly the rows written."""
    cluster, session = pinned_session()
    try:
        session.execute(
            "CREATE KEYSPACE cleanks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"
        )
        session.execute("CREATE TABLE cleanks.t (k int PRIMARY KEY, v int)")
        assert cluster.control_connection.wait_for_schema_agreement()
        insert = session.prepare("INSERT INTO cleanks.t (k, v) VALUES (?, ?)")
        insert.consistency_level = CL.ALL
        for k in range(300):
            session.execute(insert, (k, k))
        session.execute("ALTER KEYSPACE cleanks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        assert cluster.control_connection.wait_for_schema_agreement()
        for addr in ADDRS:
            out = sibyltool(addr, "cleanup", "cleanks")
            assert "Cleaned up cleanks.t:" in out and "rewritten" in out, out
        one = SimpleStatement("SELECT v FROM cleanks.t WHERE k = %s", consistency_level=CL.ONE)
        assert all(session.execute(one, (k,)).one() is not None for k in range(300)), "an owner lost its rows"
        session.execute("ALTER KEYSPACE cleanks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
        assert cluster.control_connection.wait_for_schema_agreement()
        found = {a: sum(session.execute(one, (k,), execution_profile=a).one() is not None for k in range(300)) for a in ADDRS}
        print(f"rows kept per node after cleanup: {found}")
        assert sum(found.values()) == 300 and all(0 < n < 300 for n in found.values()), found
    finally:
        cluster.shutdown()
