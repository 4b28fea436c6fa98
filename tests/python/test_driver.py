"""The DataStax Python driver, with its default settings, against a real Sibyl node."""
import datetime
import decimal
import ipaddress
import random
import time
import uuid

import pytest
from cassandra import AlreadyExists, ConsistencyLevel, InvalidRequest, Unavailable
from cassandra.cluster import NoHostAvailable
from cassandra.murmur3 import murmur3
from cassandra.protocol import SyntaxException
from cassandra.query import BatchStatement, BatchType, SimpleStatement
from cassandra.util import Duration, OrderedMapSerializedKey, SortedSet


def test_connect_reads_cluster_and_system_schema_metadata(cluster, session):
    meta = cluster.metadata
    assert meta.cluster_name == "Test Cluster"
    assert {"system", "system_schema"} <= set(meta.keyspaces)
    local = session.execute("SELECT * FROM system.local WHERE key='local'").one()
    assert local.release_version.startswith("4.")
    assert local.partitioner == "org.apache.cassandra.dht.Murmur3Partitioner"
    assert len(local.tokens) == 16
    # The driver's token map is built from system.local.tokens.
    assert meta.token_map is not None
    assert len(meta.token_map.ring) == 16
    # The system tables are described in system_schema, so cqlsh can print them.
    assert "local" in meta.keyspaces["system"].tables
    assert "columns" in meta.keyspaces["system_schema"].tables


def test_schema_metadata_follows_ddl(cluster, session, keyspace):
    session.execute(
        "CREATE TABLE t (a int, b text, c timestamp, s text STATIC, v map<text, int>,"
        " PRIMARY KEY ((a, b), c)) WITH CLUSTERING ORDER BY (c DESC) AND comment = 'hi'"
        " AND gc_grace_seconds = 3600"
    )
    t = cluster.metadata.keyspaces[keyspace].tables["t"]
    assert [c.name for c in t.partition_key] == ["a", "b"]
    assert [c.name for c in t.clustering_key] == ["c"]
    assert t.columns["c"].is_reversed
    assert t.columns["s"].is_static
    assert t.columns["v"].cql_type == "map<text, int>"
    assert t.options["comment"] == "hi"
    assert t.options["gc_grace_seconds"] == 3600
    session.execute("ALTER TABLE t ADD w list<int>")
    assert "w" in cluster.metadata.keyspaces[keyspace].tables["t"].columns
    session.execute("ALTER TABLE t DROP w")
    assert "w" not in cluster.metadata.keyspaces[keyspace].tables["t"].columns
    session.execute("DROP TABLE t")
    assert "t" not in cluster.metadata.keyspaces[keyspace].tables


def test_dml_cells_rows_ranges_partitions_and_collections(session, keyspace):
    session.execute("CREATE TABLE t (p int, c int, v text, st text STATIC, l list<int>, s set<text>,"
                    " m map<text, int>, PRIMARY KEY (p, c))")
    for c in range(10):
        session.execute("INSERT INTO t (p, c, v) VALUES (1, %s, %s)", (c, f"v{c}"))
    session.execute("UPDATE t SET st = 'shared' WHERE p = 1")
    rows = list(session.execute("SELECT c, v, st FROM t WHERE p = 1"))
    assert [r.c for r in rows] == list(range(10))
    assert {r.st for r in rows} == {"shared"}
    # Cell, row, range, then slice reads.
    session.execute("DELETE v FROM t WHERE p = 1 AND c = 0")
    assert session.execute("SELECT v FROM t WHERE p = 1 AND c = 0").one().v is None
    session.execute("DELETE FROM t WHERE p = 1 AND c = 1")
    session.execute("DELETE FROM t WHERE p = 1 AND c >= 5 AND c < 8")
    got = [r.c for r in session.execute("SELECT c FROM t WHERE p = 1")]
    assert got == [0, 2, 3, 4, 8, 9]
    got = [r.c for r in session.execute("SELECT c FROM t WHERE p = 1 AND c > 2 AND c <= 8 ORDER BY c DESC")]
    assert got == [8, 4, 3]
    got = [r.c for r in session.execute("SELECT c FROM t WHERE p = 1 AND c IN (9, 2, 7)")]
    assert got == [2, 9]
    # Collections: whole values and element operations.
    session.execute("UPDATE t SET l = [1, 2], s = {'a'}, m = {'x': 1} WHERE p = 2 AND c = 0")
    session.execute("UPDATE t SET l = l + [3], l = [0] + l, s = s + {'b'}, m['y'] = 2 WHERE p = 2 AND c = 0")
    r = session.execute("SELECT l, s, m FROM t WHERE p = 2 AND c = 0").one()
    assert r.l == [0, 1, 2, 3]
    assert r.s == SortedSet(["a", "b"])
    assert dict(r.m) == {"x": 1, "y": 2}
    session.execute("UPDATE t SET l = l - [1], s = s - {'a'}, l[0] = 10 WHERE p = 2 AND c = 0")
    session.execute("DELETE m['x'], l[1] FROM t WHERE p = 2 AND c = 0")
    r = session.execute("SELECT l, s, m FROM t WHERE p = 2 AND c = 0").one()
    assert r.l == [10, 3]
    assert r.s == SortedSet(["b"])
    assert dict(r.m) == {"y": 2}
    # Whole partition.
    session.execute("DELETE FROM t WHERE p = 1")
    assert session.execute("SELECT * FROM t WHERE p = 1").one() is None
    # DISTINCT, COUNT, LIMIT, PER PARTITION LIMIT.
    for p in range(3, 6):
        for c in range(4):
            session.execute("INSERT INTO t (p, c) VALUES (%s, %s)", (p, c))
    assert sorted(r.p for r in session.execute("SELECT DISTINCT p FROM t")) == [2, 3, 4, 5]
    assert session.execute("SELECT COUNT(*) FROM t WHERE p = 3").one().count == 4
    assert len(list(session.execute("SELECT * FROM t LIMIT 5"))) == 5
    assert len(list(session.execute("SELECT * FROM t PER PARTITION LIMIT 1"))) == 4


TYPES = {
    "asci": ("ascii", "plain ascii"),
    "txt": ("text", "héllo wörld ✓"),
    "vc": ("varchar", ""),
    "bo": ("boolean", True),
    "ti": ("tinyint", -128),
    "si": ("smallint", 32767),
    "i": ("int", -2147483648),
    "bi": ("bigint", 9223372036854775807),
    "vi": ("varint", 123456789012345678901234567890),
    "f": ("float", 1.5),
    "d": ("double", -2.25e100),
    "de": ("decimal", decimal.Decimal("-123.4560")),
    "bl": ("blob", b"\x00\x01\xff"),
    "u": ("uuid", uuid.UUID("123e4567-e89b-42d3-a456-426614174000")),
    "tu": ("timeuuid", uuid.UUID("5c3a1d20-a9a5-11ef-8000-000000000001")),
    "ts": ("timestamp", datetime.datetime(2024, 2, 29, 12, 34, 56, 789000)),
    "dt": ("date", datetime.date(1969, 7, 20)),
    "tm": ("time", datetime.time(23, 59, 59, 999999)),
    "ine": ("inet", "2001:db8::1"),
    "ine4": ("inet", "10.1.2.3"),
    "du": ("duration", Duration(1, 2, 3_000_000_000)),
    "li": ("list<int>", [3, 1, 2]),
    "se": ("set<text>", SortedSet(["b", "a"])),
    "ma": ("map<int, text>", {2: "two", 1: "one"}),
    "fl": ("frozen<list<frozen<set<int>>>>", [SortedSet([1]), SortedSet([2, 3])]),
    "fm": ("frozen<map<text, frozen<list<int>>>>", {"k": [1, 2]}),
    "tup": ("tuple<int, text, boolean>", (1, "x", None)),
}


def normalize(name, value):
    if name.startswith("ine"):
        return ipaddress.ip_address(value)
    if isinstance(value, OrderedMapSerializedKey):
        return dict(value)
    if name == "tm":
        return value.time() if hasattr(value, "time") else value
    if name == "dt":
        return value.date() if hasattr(value, "date") else value
    return value


@pytest.mark.parametrize("prepared", [False, True])
def test_every_type_round_trips(session, keyspace, prepared):
    cols = ", ".join(f"{n} {t}" for n, (t, _) in TYPES.items())
    session.execute(f"CREATE TABLE types (k int PRIMARY KEY, {cols})")
    names = list(TYPES)
    placeholders = ", ".join(["?" if prepared else "%s"] * (len(names) + 1))
    insert = f"INSERT INTO types (k, {', '.join(names)}) VALUES ({placeholders})"
    values = [1] + [v for _, v in TYPES.values()]
    if prepared:
        session.execute(session.prepare(insert), values)
    else:
        session.execute(insert, values)
    session.execute("INSERT INTO types (k) VALUES (2)")
    row = session.execute("SELECT * FROM types WHERE k = 1").one()
    for n, (_, v) in TYPES.items():
        got = getattr(row, n)
        assert normalize(n, got) == normalize(n, v), f"{n}: sent {v!r}, got {got!r}"
    nulls = session.execute("SELECT * FROM types WHERE k = 2").one()
    assert all(getattr(nulls, n) is None for n in names)


def test_prepared_statements_with_positional_and_named_markers(session, keyspace):
    session.execute("CREATE TABLE p (k int, c int, v text, PRIMARY KEY (k, c))")
    ins = session.prepare("INSERT INTO p (k, c, v) VALUES (?, ?, ?) USING TTL ?")
    assert [c.name for c in ins.column_metadata] == ["k", "c", "v", "[ttl]"]
    assert ins.routing_key_indexes == [0]
    for c in range(5):
        session.execute(ins, (7, c, f"x{c}", 0))
    sel = session.prepare("SELECT v FROM p WHERE k = :key AND c IN :cs")
    got = [r.v for r in session.execute(sel, {"key": 7, "cs": [4, 1]})]
    assert got == ["x1", "x4"]
    lim = session.prepare("SELECT c FROM p WHERE k = ? LIMIT ?")
    assert [r.c for r in session.execute(lim, (7, 2))] == [0, 1]
    # Unset values leave columns alone (protocol v4).
    from cassandra.query import UNSET_VALUE
    session.execute(session.prepare("UPDATE p SET v = ? WHERE k = ? AND c = ?"), (UNSET_VALUE, 7, 0))
    assert session.execute("SELECT v FROM p WHERE k = 7 AND c = 0").one().v == "x0"


def test_paging_over_ten_thousand_rows_returns_each_row_once_in_order(session, keyspace):
    session.execute("CREATE TABLE big (p int, c int, v text, PRIMARY KEY (p, c))")
    ins = session.prepare("INSERT INTO big (p, c, v) VALUES (?, ?, ?)")
    from cassandra.concurrent import execute_concurrent_with_args
    args = [(p, c, "x" * 20) for p in range(20) for c in range(500)]
    results = execute_concurrent_with_args(session, ins, args, concurrency=64)
    assert all(ok for ok, _ in results)
    # Inside one partition, and across partitions in token order.
    stmt = SimpleStatement("SELECT c FROM big WHERE p = 3", fetch_size=97)
    assert [r.c for r in session.execute(stmt)] == list(range(500))
    stmt = SimpleStatement("SELECT p, c FROM big", fetch_size=333)
    rows = [(r.p, r.c) for r in session.execute(stmt)]
    assert len(rows) == 10_000
    assert len(set(rows)) == 10_000
    tokens = [murmur3(p.to_bytes(4, "big", signed=True)) for p, _ in rows]
    assert tokens == sorted(tokens)
    # Paging with a LIMIT stops at the limit.
    stmt = SimpleStatement("SELECT p FROM big LIMIT 1234", fetch_size=100)
    assert len(list(session.execute(stmt))) == 1234


def test_batches_logged_and_unlogged(session, keyspace):
    session.execute("CREATE TABLE b (k int, c int, v int, PRIMARY KEY (k, c))")
    ins = session.prepare("INSERT INTO b (k, c, v) VALUES (?, ?, ?)")
    for kind in (BatchType.LOGGED, BatchType.UNLOGGED):
        batch = BatchStatement(batch_type=kind)
        for i in range(10):
            batch.add(ins, (int(kind == BatchType.LOGGED), i, i))
        batch.add("UPDATE b SET v = 100 WHERE k = %s AND c = 0", (int(kind == BatchType.LOGGED),))
        session.execute(batch)
    for k in (0, 1):
        rows = list(session.execute("SELECT c, v FROM b WHERE k = %s", (k,)))
        assert len(rows) == 10
        assert rows[0].v == 100
    session.execute("BEGIN BATCH APPLY BATCH")
    session.execute("BEGIN UNLOGGED BATCH USING TIMESTAMP 5 INSERT INTO b (k, c, v) VALUES (9, 9, 9); "
                    "DELETE FROM b WHERE k = 0 AND c = 1; APPLY BATCH")
    assert session.execute("SELECT writetime(v) FROM b WHERE k = 9 AND c = 9").one()[0] == 5


def test_ttl_expiry_and_using_timestamp(session, keyspace):
    session.execute("CREATE TABLE e (k int PRIMARY KEY, v text, w text) WITH default_time_to_live = 0")
    session.execute("INSERT INTO e (k, v, w) VALUES (1, 'short', 'kept') USING TTL 1")
    session.execute("UPDATE e USING TTL 100 SET w = 'kept' WHERE k = 1")
    r = session.execute("SELECT ttl(v), ttl(w) FROM e WHERE k = 1").one()
    assert 0 < r[0] <= 1 and 90 < r[1] <= 100
    time.sleep(2.2)
    r = session.execute("SELECT v, w FROM e WHERE k = 1").one()
    assert r.v is None and r.w == "kept"
    # The newer timestamp wins whatever the arrival order.
    session.execute("INSERT INTO e (k, v) VALUES (2, 'new') USING TIMESTAMP 2000")
    session.execute("INSERT INTO e (k, v) VALUES (2, 'old') USING TIMESTAMP 1000")
    assert session.execute("SELECT v FROM e WHERE k = 2").one().v == "new"
    session.execute("DELETE FROM e USING TIMESTAMP 1500 WHERE k = 2")
    assert session.execute("SELECT v FROM e WHERE k = 2").one().v == "new"
    session.execute("DELETE FROM e USING TIMESTAMP 2500 WHERE k = 2")
    assert session.execute("SELECT v FROM e WHERE k = 2").one() is None
    # Table default TTL.
    session.execute("CREATE TABLE e2 (k int PRIMARY KEY, v text) WITH default_time_to_live = 1")
    session.execute("INSERT INTO e2 (k, v) VALUES (1, 'x')")
    time.sleep(2.2)
    assert session.execute("SELECT * FROM e2 WHERE k = 1").one() is None


def test_errors_become_the_drivers_exceptions(session, keyspace):
    session.execute("CREATE TABLE x (k int PRIMARY KEY, v int)")
    with pytest.raises(SyntaxException) as e:
        session.execute("SELEC * FROM x")
    assert "line 1:0" in str(e.value)
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM x WHERE v = 1")
    assert "ALLOW FILTERING" in str(e.value)
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM nope")
    with pytest.raises(InvalidRequest):
        session.execute("INSERT INTO x (k, v) VALUES ('text', 1)")
    with pytest.raises(AlreadyExists):
        session.execute("CREATE TABLE x (k int PRIMARY KEY)")
    session.execute("CREATE TABLE IF NOT EXISTS x (k int PRIMARY KEY)")
    # A keyspace with RF 3 on one node cannot reach QUORUM.
    session.execute(
        "CREATE KEYSPACE rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    try:
        session.execute("CREATE TABLE rf3.t (k int PRIMARY KEY)")
        # The driver's default retry policy tries the next host once, then gives up.
        with pytest.raises((Unavailable, NoHostAvailable)) as e:
            session.execute(SimpleStatement("INSERT INTO rf3.t (k) VALUES (1)",
                                            consistency_level=ConsistencyLevel.QUORUM))
        assert "Cannot achieve consistency level QUORUM" in str(e.value)
        err = e.value if isinstance(e.value, Unavailable) else list(e.value.errors.values())[0]
        assert isinstance(err, Unavailable)
        assert (err.required_replicas, err.alive_replicas) == (2, 1)
        session.execute(SimpleStatement("INSERT INTO rf3.t (k) VALUES (1)", consistency_level=ConsistencyLevel.ONE))
    finally:
        session.execute("DROP KEYSPACE rf3")
    # ALLOW FILTERING makes the filtered query legal.
    session.execute("INSERT INTO x (k, v) VALUES (1, 1)")
    session.execute("INSERT INTO x (k, v) VALUES (2, 2)")
    assert [r.k for r in session.execute("SELECT k FROM x WHERE v = 2 ALLOW FILTERING")] == [2]


def test_token_of_random_keys_equals_the_drivers_murmur3(session, keyspace):
    session.execute("CREATE TABLE tok (k blob PRIMARY KEY)")
    rng = random.Random(20261123)
    keys = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(200)]
    ins = session.prepare("INSERT INTO tok (k) VALUES (?)")
    for k in keys:
        session.execute(ins, (k,))
    sel = session.prepare("SELECT token(k) FROM tok WHERE k = ?")
    for k in keys:
        assert session.execute(sel, (k,)).one()[0] == murmur3(k), k.hex()
    # Token-range scans select exactly the keys in the range.
    lo, hi = -(2**62), 2**62
    got = {r.k for r in session.execute("SELECT k FROM tok WHERE token(k) > %s AND token(k) <= %s", (lo, hi))}
    assert got == {k for k in keys if lo < murmur3(k) <= hi}


def test_functions_users_rely_on(session, keyspace):
    session.execute("CREATE TABLE f (k int, t timeuuid, ts timestamp, PRIMARY KEY (k, t))")
    session.execute("INSERT INTO f (k, t, ts) VALUES (1, now(), toTimestamp(now()))")
    r = session.execute("SELECT t, ts, toUnixTimestamp(t) AS ms, blobAsInt(intAsBlob(k)) AS kk FROM f WHERE k = 1").one()
    assert r.t.version == 1
    assert abs((r.ts - datetime.datetime.utcnow()).total_seconds()) < 60
    assert r.kk == 1
    got = list(session.execute(
        "SELECT k FROM f WHERE k = 1 AND t > maxTimeuuid('2000-01-01 00:00+0000') AND t < minTimeuuid('2999-01-01 00:00+0000')"))
    assert len(got) == 1


def test_lightweight_transactions_apply_exactly_once_under_contention(session, keyspace):
    session.execute("CREATE TABLE lwt (k int PRIMARY KEY, owner text, n int)")
    ins = session.prepare("INSERT INTO lwt (k, owner, n) VALUES (?, ?, 0) IF NOT EXISTS")
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: session.execute(ins, (1, f"client{i}")), range(64)))
    assert sum(r.was_applied for r in results) == 1
    owner = session.execute("SELECT owner FROM lwt WHERE k = 1").one().owner
    loser = next(r for r in results if not r.was_applied)
    assert loser.one().owner == owner
    # Compare-and-set increments: every successful CAS moves n by exactly one.
    cas = session.prepare("UPDATE lwt SET n = ? WHERE k = 1 IF n = ?")

    def bump(_):
        while True:
            n = session.execute("SELECT n FROM lwt WHERE k = 1").one().n
            if session.execute(cas, (n + 1, n)).was_applied:
                return

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(40)))
    assert session.execute("SELECT n FROM lwt WHERE k = 1").one().n == 40
    r = session.execute("UPDATE lwt SET owner = 'x' WHERE k = 2 IF EXISTS")
    assert not r.was_applied
