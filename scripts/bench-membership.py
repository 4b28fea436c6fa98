#!/usr/bin/env python3
"""Streaming benchmark: how fast a node joins and leaves a loaded cluster.

Starts a local three-node cluster (RF 3, so every node holds all the data), loads --mb of rows
through the Python driver, flushes, then bootstraps a fourth node and decommissions it. Prints:
- the client load rate (reference 1: what the same cluster ingests through CQL);
- a plain `cp -r` of one node's data directory (reference 2: the disk, measured in the run);
- the bootstrap: time to join, bytes streamed, MB/s, and the ratio to both references;
- the decommission: time to leave, bytes streamed, MB/s.

Usage (release binaries; `scripts/setup-python.sh` makes .venv):
    cargo build --release -p sibyl-tools --bins
    .venv/bin/python scripts/bench-membership.py --mb 256
"""
import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from cassandra import ConsistencyLevel as CL
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "127.0.70"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=256, help="data to load, in MB (before replication)")
    ap.add_argument("--value-size", type=int, default=1000)
    ap.add_argument("--bin-dir", default=str(ROOT / "target" / "release"))
    args = ap.parse_args()
    launcher = os.path.join(args.bin_dir, "sibyl-cluster")
    tool = os.path.join(args.bin_dir, "sibyltool")
    work = Path(tempfile.mkdtemp(prefix="sibyl-bench-membership-"))
    cdir = work / "c"

    def run(*a, timeout=3600):
        out = subprocess.run([launcher, "--dir", str(cdir), *a], capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise SystemExit(f"sibyl-cluster {a} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def sibyltool(i, *a):
        out = subprocess.run([tool, "-h", f"{PREFIX}.{i}", *a], capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise SystemExit(f"sibyltool {a} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    try:
        yaml = [
            "stream_throughput_outbound: 0MiB/s",
            "ring_delay_ms: 5000",
            "allocate_tokens_for_local_replication_factor: 3",
            "memtable_heap_space: 256MiB",
        ]
        run("start", "-n", "3", "--prefix", PREFIX, *[x for y in yaml for x in ("--yaml", y)])
        cluster = Cluster([f"{PREFIX}.1"])
        session = cluster.connect()
        session.execute("CREATE KEYSPACE bench WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
        session.execute("CREATE TABLE bench.t (k int PRIMARY KEY, v blob)")
        assert cluster.control_connection.wait_for_schema_agreement()
        rows = args.mb * 1_000_000 // args.value_size
        insert = session.prepare("INSERT INTO bench.t (k, v) VALUES (?, ?)")
        insert.consistency_level = CL.ALL
        started = time.time()
        step = 20_000
        for first in range(0, rows, step):
            # Random (incompressible) values: what goes to disk is what was loaded.
            batch = [(k, os.urandom(args.value_size)) for k in range(first, min(rows, first + step))]
            results = execute_concurrent_with_args(session, insert, batch, concurrency=128)
            assert all(ok for ok, _ in results)
            print(f"  loaded {min(rows, first + step)}/{rows} rows", flush=True)
        load_s = time.time() - started
        load_mb_s = args.mb / load_s
        cluster.shutdown()
        for i in (1, 2, 3):
            sibyltool(i, "flush")
        data = cdir / "node1" / "data" / "data"
        data_bytes = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
        copy_to = work / "copy"
        started = time.time()
        shutil.copytree(data, copy_to)
        subprocess.run(["sync"], check=True)
        copy_s = time.time() - started
        shutil.rmtree(copy_to)
        copy_mb_s = data_bytes / 1e6 / copy_s

        started = time.time()
        out = run("add")
        join_s = time.time() - started
        new = int(re.search(r"node(\d+) up", out).group(1))
        netstats = sibyltool(new, "netstats")
        sessions = re.findall(r"Receiving (\d+) partitions, (\d+) bytes \(([\d.]+) MiB/s\)", netstats)
        streamed = sum(int(b) for _, b, _ in sessions)
        # The sources stream one after the other; each session's time is its bytes over its rate.
        stream_s = sum(int(b) / (float(r) * (1 << 20)) for _, b, r in sessions if float(r) > 0)
        session_rates = [float(r) for _, _, r in sessions]

        started = time.time()
        sibyltool(new, "decommission")
        leave_s = time.time() - started
        left = 0
        for i in (1, 2, 3):
            left += sum(int(b) for b in re.findall(r"Unbootstrap [0-9a-f-]+\n +/\S+ Receiving \d+ partitions, (\d+) bytes", sibyltool(i, "netstats")))

        mb = 1e6
        print()
        print(f"data per node: {data_bytes / mb:.1f} MB on disk ({rows} rows of {args.value_size} bytes, RF 3 on 3 nodes)")
        print(f"reference 1, client load at ALL:     {load_mb_s:8.1f} MB/s ({load_s:.1f} s)")
        print(f"reference 2, cp -r of the data dir:  {copy_mb_s:8.1f} MB/s ({copy_s:.1f} s)")
        print(
            f"bootstrap of node{new}: joined in {join_s:.1f} s (ring_delay 5 s included), streamed {streamed / mb:.1f} MB "
            f"in {stream_s:.1f} s of streaming = {streamed / mb / stream_s:.1f} MB/s "
            f"(sessions {', '.join(f'{r:.1f}' for r in session_rates)} MiB/s); {streamed / mb / join_s:.1f} MB/s over the whole join"
        )
        print(
            f"  streaming rate / client load rate: {streamed / mb / stream_s / load_mb_s:.2f}x; / cp rate: {streamed / mb / stream_s / copy_mb_s:.2f}x"
        )
        print(f"decommission of node{new}: left in {leave_s:.1f} s (ring_delay 5 s and 3 s of gossip included), streamed {left / mb:.1f} MB = {left / mb / leave_s:.1f} MB/s end to end")
    finally:
        subprocess.run([launcher, "--dir", str(cdir), "clear"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
