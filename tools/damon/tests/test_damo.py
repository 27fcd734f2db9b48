# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""damo, DAMON's own tool, reads what damon record writes, and damon report
reads what damo writes.

damo is the oracle in ../shared/oracles/damo beside the source tree, or
wherever $DAMO points (its directory, its damo.py, or an executable). Without
it the test is skipped, unless CI=true, where that is a failure.
"""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (check, damon, finish, load_record, need_uffd_wp, record, skip,  # noqa: E402
                    tmpdir)


def find_damo():
    where = os.environ.get("DAMO") or os.path.join(SRCROOT_PARENT, "shared", "oracles", "damo")
    if os.path.isdir(where):
        py = os.path.join(where, "src", "damo.py")
        where = py if os.path.isfile(py) else os.path.join(where, "damo")
    if os.path.isfile(where) and where.endswith(".py"):
        return [sys.executable, where], os.path.dirname(where)
    if os.path.isfile(where) and os.access(where, os.X_OK):
        return [where], os.path.join(os.path.dirname(os.path.realpath(where)), "src")
    return None, None


SRCROOT_PARENT = os.path.dirname(os.path.abspath(os.environ["DAMON_SRCROOT"]))
DAMO, DAMO_SRC = find_damo()


def unavailable(reason):
    if os.environ.get("CI") == "true":
        print(f"FAIL: {reason} (CI=true: the oracle must be there)")
        sys.exit(1)
    skip(reason)


if DAMO is None:
    unavailable("damo not found: set DAMO, or put it in ../shared/oracles/damo")
if shutil.which("file") is None:
    unavailable("damo needs the 'file' command (apt-get install file)")


def damo(*args):
    p = subprocess.run(DAMO + list(map(str, args)), capture_output=True, text=True,
                       timeout=60)
    if p.returncode:
        print(f"damo {' '.join(map(str, args))} -> {p.returncode}\n{p.stdout}{p.stderr}")
    return p


REGION = re.compile(r"^(\d+)\s+addr (\d+)\s+size (\d+)\s+access ([\d.]+)\s+age (\d+)\s*$")


def parse_damo_access(text):
    """damo report access --raw_number: snapshots of (times, intervals, regions)."""
    snaps = []
    for line in text.splitlines():
        m = re.match(r"snapshot time: \[(\d+), (\d+)\]", line)
        if m:
            snaps.append({"time": (int(m[1]), int(m[2])), "regions": []})
            continue
        m = re.match(r"intervals: sample (\d+) aggr (\d+)", line)
        if m and snaps:
            snaps[-1]["intervals"] = (int(m[1]), int(m[2]))
            continue
        m = REGION.match(line)
        if m and snaps:
            snaps[-1]["regions"].append((int(m[2]), int(m[3]), float(m[4]), int(m[5])))
    return snaps


def compare_access(path, rec, label):
    """damo's report of @path against what libdamon wrote in it (@rec)."""
    p = damo("report", "access", "--input", path, "--raw_number")
    check(p.returncode == 0, f"{label}: damo report access reads it", p.stderr.strip())
    got = parse_damo_access(p.stdout)
    r = rec[0]
    sample, aggr = r["intervals"]["sample_us"], r["intervals"]["aggr_us"]
    snaps = r["snapshots"]
    check(len(got) == len(snaps), f"{label}: damo sees every snapshot ({len(snaps)})",
          len(got))
    t0 = snaps[0]["start_time"]
    bad_time = bad_regions = bad_intervals = 0
    nr_regions = 0
    for g, s in zip(got, snaps):
        if g["time"] != (s["start_time"] - t0, s["end_time"] - t0):
            bad_time += 1
        if g.get("intervals") != (sample, aggr):
            bad_intervals += 1
        want = [(x["start"], x["end"] - x["start"], x["nr_accesses"]["samples"] * 1e6 / aggr,
                 x["age"]["aggr_intervals"] * aggr) for x in s["regions"]]
        nr_regions += len(want)
        if len(want) != len(g["regions"]) or any(
                a[0] != b[0] or a[1] != b[1] or abs(a[2] - b[2]) > 1e-3 or a[3] != b[3]
                for a, b in zip(want, g["regions"])):
            bad_regions += 1
            if bad_regions == 1:
                print(f"  first differing snapshot: libdamon {want[:4]} damo {g['regions'][:4]}")
    check(bad_time == 0, f"{label}: snapshot times (relative to the first start) match",
          f"{bad_time} differ")
    check(bad_intervals == 0, f"{label}: damo reads the intervals sample {sample} aggr {aggr}",
          f"{bad_intervals} snapshots differ")
    check(bad_regions == 0,
          f"{label}: every region's start, size, nr_accesses (as hz) and age (as us) match, "
          f"{nr_regions} regions", f"{bad_regions} snapshots differ")


def wss_lines(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+)\s+(\d+) \|", line)
        if m:
            out[int(m[1])] = int(m[2])
        m = re.match(r"^# avr:\s+(\d+)", line)
        if m:
            out["avr"] = int(m[1])
    return out


def compare_wss(path, rec, label):
    p = damo("report", "wss", "--input", path, "--raw_number", "--exclude_samples", "0")
    ours = damon("report", "wss", "-i", path, "--raw_number")
    theirs, mine = wss_lines(p.stdout), wss_lines(ours.stdout)
    sizes = sorted(sum(x["end"] - x["start"] for x in s["regions"]
                       if x["nr_accesses"]["samples"] >= 1) for s in rec[0]["snapshots"])
    want = {q: sizes[min(int(q / 100 * len(sizes)), len(sizes) - 1)] for q in (0, 25, 50, 75, 100)}
    want["avr"] = int(sum(sizes) / len(sizes))
    check(theirs == want, f"{label}: damo report wss gives the working set sizes of the record",
          f"{theirs} vs {want}")
    check(mine == theirs, f"{label}: damon report wss says what damo says", f"{mine} vs {theirs}")


def damo_parser(path):
    """damo's own JSON record parser, run on @path (what 'report' uses once
    it has recognised a JSON file)."""
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import _damo_records as r;"
            "recs = r.parse_json_file(sys.argv[2]);"
            "print(json.dumps([{'sample': x.intervals.sample, 'aggr': x.intervals.aggr,"
            " 'snaps': [[s.start_time, s.end_time, [[g.start, g.end, g.nr_accesses.samples,"
            " g.age.aggr_intervals] for g in s.regions]] for s in x.snapshots]} for x in recs]))")
    p = subprocess.run([sys.executable, "-c", code, DAMO_SRC, path], capture_output=True,
                       text=True, timeout=60)
    return json.loads(p.stdout) if p.returncode == 0 else p.stderr


def main():
    need_uffd_wp()
    d = tmpdir()
    plain, packed = os.path.join(d, "rec.json"), os.path.join(d, "rec.data")

    # libdamon's records, plain and compressed, of a real workload; each ends
    # when the workload exits
    p, info = record(plain, seconds=2.5)
    check(p.returncode == 0 and info, "damon record -- workload ends with it, exit 0",
          p.stderr)
    p2, _ = record(packed, seconds=2.5, fmt="json_compressed")
    check(p2.returncode == 0, "damon record --format json_compressed", p2.stderr)
    rec, rec2 = load_record(plain), load_record(packed)
    check(len(rec[0]["snapshots"]) >= 10, "the record holds >= 10 snapshots",
          len(rec[0]["snapshots"]))

    # damo at this commit recognises a plain JSON record only if file(1)
    # calls it "JSON data"; file >= 5.43 says "JSON text data". There damo's
    # own JSON parser is run on it instead.
    kind = subprocess.run(["file", "-b", plain], capture_output=True, text=True).stdout.strip()
    if kind == "JSON data":
        compare_access(plain, rec, "plain JSON")
    else:
        print(f"note: file(1) says {kind!r}; damo's report looks for 'JSON data': "
              "checking the plain record with damo's JSON parser")
        got = damo_parser(plain)
        want = [{"sample": r["intervals"]["sample_us"], "aggr": r["intervals"]["aggr_us"],
                 "snaps": [[s["start_time"], s["end_time"],
                            [[g["start"], g["end"], g["nr_accesses"]["samples"],
                              g["age"]["aggr_intervals"]] for g in s["regions"]]]
                           for s in r["snapshots"]]} for r in rec]
        check(got == want, "plain JSON: damo's parser reads every snapshot, region, "
              "nr_accesses, age and the intervals as written", str(got)[:300])
    compare_access(packed, rec2, "compressed")
    compare_wss(packed, rec2, "compressed")

    # damo's records read by damon: damo writes JSON from a trace (the
    # format perf script prints), with numbers as text ("4,096")
    trace = os.path.join(d, "trace.txt")
    regions = {  # target id -> snapshots of (start, end, nr_accesses, age)
        0: [[(4096, 1 << 20, 5, 3), (1 << 20, 3 << 20, 0, 7)],
            [(4096, 1 << 20, 20, 4), (1 << 20, 3 << 20, 1, 0)],
            [(4096, 2 << 20, 11, 0), (2 << 20, 3 << 20, 0, 9)]],
        1: [[(1 << 30, (1 << 30) + 8192, 2, 1)], [(1 << 30, (1 << 30) + 8192, 0, 2)],
            [(1 << 30, (1 << 30) + 8192, 0, 3)]],
    }
    with open(trace, "w") as f:
        for i in range(3):
            for tid, snaps in regions.items():
                for (s, e, n, a) in snaps[i]:
                    f.write(f"kdamond.0 4452 [000] {100.1 + i / 10:.6f}: damon:damon_aggregated: "
                            f"target_id={tid} nr_regions={len(snaps[i])} {s}-{e}: {n} {a}\n")
    for fmt in ("json", "json_compressed"):
        out = os.path.join(d, f"damo.{fmt}")
        p = damo("convert_record_format", "--record_file", trace, "--format", fmt,
                 "--output_file", out)
        check(p.returncode == 0 and os.path.exists(out), f"damo writes a {fmt} record")
        ours = damon("report", "access", "-i", out, "--raw_number")
        check(ours.returncode == 0, f"damon report access reads damo's {fmt} record",
              ours.stderr)
        seen, cur = {}, None
        for line in ours.stdout.splitlines():
            m = re.match(r"record: target (\d+)", line)
            if m:
                cur = int(m[1])
                seen[cur] = []
            m = re.match(r"snapshot \d+ time", line)
            if m:
                seen[cur].append([])
            m = re.match(r"^\d+\s+(\d+)\s+(\d+)\s+\d+\s+(\d+)/\d+\s+[\d.]+%\s+(\d+)$", line)
            if m:
                # ages print in us with damo's default 100 ms aggregation
                seen[cur][-1].append((int(m[1]), int(m[2]), int(m[3]), int(m[4]) // 100000))
        check(seen == regions, f"damon reads damo's {fmt} record: two targets, their "
              "regions, nr_accesses and ages", f"{seen} vs {regions}")
    shutil.rmtree(d)
    finish()


main()
