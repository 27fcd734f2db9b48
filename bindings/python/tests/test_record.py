# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""damon.record: damo's JSON record format from Python, the same damon(1)
writes and reads: round trips, damo's numbers as text, snapshots of a live
context, and files exchanged with the damon command."""

import json
import mmap
import os
import subprocess
import zlib

import damon
import damon.record as rec
import pytest
from conftest import first_snapshot

MiB = 1 << 20
DAMON_TOOL = os.environ.get("DAMON_TOOL")


def sample_records():
    snaps = [rec.Snapshot(i * 10**8, (i + 1) * 10**8,
                          [rec.Region(0, MiB, 20 - i, i), rec.Region(MiB, 4 * MiB, 0, 10 + i)])
             for i in range(3)]
    return [rec.Record(target_id=0, snapshots=snaps, backend="uffd_wp", sees="writes", pid=42),
            rec.Record(target_id=1, sample_us=10000, aggr_us=200000,
                       snapshots=[rec.Snapshot(5, 200000005, [rec.Region(8192, 16384, 3, 1)])])]


@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip(tmp_path, compressed):
    path = tmp_path / "r.json"
    rec.write(path, sample_records(), compressed=compressed)
    data = path.read_bytes()
    assert (data[:1] == b"[") != compressed
    got = rec.read(path)
    want = sample_records()
    assert [(r.target_id, r.sample_us, r.aggr_us, r.backend, r.pid) for r in got] == \
        [(r.target_id, r.sample_us, r.aggr_us, r.backend, r.pid) for r in want]
    assert [r.snapshots for r in got] == [
        [s._replace(sample_us=r.sample_us) for s in r.snapshots] for r in want]
    assert os.listdir(tmp_path) == ["r.json"]


def test_damo_text_numbers():
    """damo writes regions' numbers through its formatters: "4,096", "0 B",
    ages in time; a null intervals object means damo's defaults."""
    obj = [{"kdamond_idx": None, "context_idx": None, "intervals": None, "scheme_idx": None,
            "target_id": 3, "scheme_filters": [], "snapshots": [
                {"start_time": "100000000000", "end_time": "100100000000", "regions": [
                    {"start": "4,096", "end": "1,052,672",
                     "nr_accesses": {"samples": None, "percent": 25},
                     "age": {"usec": "300 ms", "aggr_intervals": None},
                     "probe_hits": [], "sz_filter_passed": "0 B"}],
                 "total_bytes": "1.000 MiB", "damos_stats": None, "sample_interval_us": None}],
            "data_source": "unknown"}]
    (r,) = rec.loads(zlib.compress(json.dumps(obj).encode()))
    assert r.target_id == 3 and r.sample_us is None
    assert r.snapshots[0].start_ns == 100 * 10**9
    assert r.snapshots[0].regions == [rec.Region(4096, 1052672, 5, 3)]


def test_bad_files(tmp_path):
    with pytest.raises(ValueError):
        rec.loads(b'{"not": "a list"}')
    with pytest.raises(ValueError):
        rec.loads(b'[{"snapshots": [{"start_time": 0, "end_time": 1, "regions": '
                  b'[{"start": "12 parsecs", "end": 1}]}]}]')
    with pytest.raises(zlib.error):
        rec.loads(b"\x78\x9c garbage")


def test_live_context_to_damon_report(monitorable, tmp_path):
    """Snapshots of this process, recorded from Python, read by damon(1)."""
    buf = mmap.mmap(-1, 16 * MiB)
    r = rec.Record(sample_us=5000, aggr_us=50000)
    with damon.Context(ops="vaddr", sample_us=5000, aggr_us=50000,
                       cpu_budget_permille=1000) as ctx:
        ctx.add_target()
        ctx.start()
        first_snapshot(ctx)
        for _ in range(5):
            buf[0::mmap.PAGESIZE] = b"\x01" * (16 * MiB // mmap.PAGESIZE)
            snap = ctx.wait_snapshot(timeout=2)
            if snap is not None:
                r.add(snap)
    assert len(r.snapshots) >= 3 and all(s.regions for s in r.snapshots)
    assert all(a.end_ns == b.start_ns for a, b in zip(r.snapshots, r.snapshots[1:]))
    path = tmp_path / "py.json"
    rec.write(path, [r])
    if not DAMON_TOOL:
        pytest.skip("DAMON_TOOL is not set: the damon command is not built here")
    p = subprocess.run([DAMON_TOOL, "report", "access", "-i", str(path), "--raw_number",
                        "--snapshot", "0"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    starts = [int(line.split()[1]) for line in p.stdout.splitlines()
              if line[:1].isdigit() and len(line.split()) == 7]
    assert starts == [g.start for g in r.snapshots[0].regions]


def test_damon_record_to_python(monitorable, tmp_path):
    """What damon record writes, read by damon.record (both formats)."""
    if not DAMON_TOOL:
        pytest.skip("DAMON_TOOL is not set: the damon command is not built here")
    for fmt in ("json", "json_compressed"):
        path = tmp_path / f"cli.{fmt}"
        p = subprocess.run([DAMON_TOOL, "record", "-q", "--backend", "uffd_wp", "--budget",
                            "1000", "-d", "1", "--format", fmt, "-o", str(path), "--",
                            "sleep", "3"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        (r,) = rec.read(path)
        assert r.backend == "uffd_wp" and r.sees == "writes" and r.pid > 0
        assert r.sample_us == 5000 and r.aggr_us == 100000 and len(r.snapshots) >= 3
        assert all(g.end > g.start for s in r.snapshots for g in s.regions)
