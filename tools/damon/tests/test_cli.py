# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""damon(1) as a user runs it: usage and exit codes, probe, a record that
ends by the target's exit, by SIGINT and by SIGTERM (complete JSON each
time, nothing left behind), reports of records and of live processes, the
live view, and a command that executes another program."""

import glob
import json
import os
import signal
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DAMON, MON, WORKLOAD, check, damon, finish, load_record,  # noqa: E402
                    need_uffd_wp, record, tmpdir)


def usage_and_help():
    for sub in (["probe"], ["record"], ["report", "access"], ["report", "wss"],
                ["report", "heatmap"], ["live"], ["export"]):
        p = damon(*sub, "--help")
        check(p.returncode == 0 and "usage: damon" in p.stdout,
              f"damon {' '.join(sub)} --help: usage on stdout, exit 0", p.returncode)
        p = damon(*sub, "--no-such-option")
        check(p.returncode == 2 and "usage: damon" in p.stderr,
              f"damon {' '.join(sub)} --no-such-option: usage on stderr, exit 2",
              (p.returncode, p.stderr[:200]))
    for args in (["record"], ["record", "--pid", "1", "--", "true"], ["record", "--pid", "x"],
                 ["record", "--backend", "nope", "--pid", "1"], ["record", "-d", "soon", "true"],
                 ["report"], ["report", "nothing"], ["report", "access"],
                 ["report", "access", "-i", "f", "--pid", "1"],
                 ["report", "heatmap", "-i", "f", "-o", "x.gif"],
                 ["export", "--pid", "1"], ["export", "--prometheus", "--pid", "1"],
                 ["export", "--prometheus", "--listen", "nocolon", "--pid", "1"],
                 ["probe", "extra"], ["bogus"], [],
                 ["record", "--cgroup", "/sys/fs/cgroup", "--pid", "1"],
                 ["record", "--cgroup", "/sys/fs/cgroup", "--", "true"],
                 ["live", "--cgroup", "/sys/fs/cgroup"],
                 ["report", "access", "--cgroup", "/sys/fs/cgroup"]):
        p = damon(*args)
        check(p.returncode == 2 and "usage: damon" in p.stderr,
              f"damon {' '.join(args)}: usage line on stderr, exit 2",
              (p.returncode, p.stderr[:200]))


def cgroup_refused(d):
    """damon record --cgroup on what is no cgroup v2 directory: the library's
    sentence, exit 1, no output file. (An explicit user-space backend: the
    refusal comes before any start.)"""
    out = os.path.join(d, "cg.json")
    for path, words in ((d, "cgroup v2"), (os.path.join(d, "none"), "no such directory")):
        p = damon("record", "-q", "-B", "soft_dirty", "--cgroup", path, "-o", out)
        check(p.returncode == 1 and words in p.stderr and not os.path.exists(out),
              f"damon record --cgroup {path}: refused saying \"{words}\", exit 1",
              (p.returncode, p.stderr[:300]))
    p = damon("record", "-q", "-B", "uffd_wp", "--cgroup", d, "-o", out)
    check(p.returncode == 1 and "calling process only" in p.stderr,
          "damon record -B uffd_wp --cgroup: refused, uffd_wp watches this process only",
          (p.returncode, p.stderr[:300]))


def probe():
    p = damon("probe")
    names = [line.split()[0] for line in p.stdout.splitlines()[1:6]]
    check(names == ["kernel", "page_idle", "uffd_wp", "soft_dirty", "fault"],
          "damon probe: every backend, one per line", names)
    js = json.loads(damon("probe", "--json").stdout)
    check(all(st["reason"] for st in js) and len(js) == 5,
          "damon probe --json: five verdicts, each with its sentence")
    usable = any(st["usable"] for st in js)
    check(p.returncode == (0 if usable else 1), "damon probe: exit 0 iff a backend is usable")


def interrupted(sig, d):
    """A record ended by @sig: exit 0, complete JSON, no temporary file."""
    out = os.path.join(d, f"sig{sig}.json")
    p = subprocess.Popen([DAMON, "record", "-q", *MON, "-o", out, "--", WORKLOAD, "32", "4", "20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        check(False, f"{signal.Signals(sig).name} ends damon record within 10 s")
        return
    check(p.returncode == 0, f"{signal.Signals(sig).name} ends damon record cleanly (exit 0)",
          (p.returncode, err))
    try:
        rec = load_record(out)
        n = len(rec[0]["snapshots"])
    except (OSError, ValueError) as e:
        n = f"not JSON: {e}"
    check(isinstance(n, int) and n >= 5,
          f"after {signal.Signals(sig).name} the file is complete JSON with its snapshots", n)
    check(not glob.glob(os.path.join(d, ".sig*")), "no temporary file is left behind")


def records(d):
    out = os.path.join(d, "exit.json")
    p, info = record(out, seconds=1.5, size=32, hot=4)
    rec = load_record(out)
    r = rec[0]
    check(p.returncode == 0 and "monitoring ended" not in p.stdout,
          "the workload's exit ends damon record, exit 0", p.stderr)
    check(r["libdamon"]["backend"] == "uffd_wp" and r["libdamon"]["sees"] == "writes",
          "the record says which backend watched and what it sees", r["libdamon"])
    snaps = r["snapshots"]
    check(all(a["end_time"] == b["start_time"] for a, b in zip(snaps, snaps[1:])),
          "each snapshot starts where the one before ended")
    hs, he = info["hot"]
    hot_rate = [sum(g["nr_accesses"]["samples"] * (min(g["end"], he) - max(g["start"], hs))
                    for g in s["regions"] if g["start"] < he and g["end"] > hs)
                / (he - hs) / 20 for s in snaps[-3:]]
    check(min(hot_rate) > 0.3, "the workload's hot part is seen hot in the last snapshots",
          hot_rate)

    packed = os.path.join(d, "exit.data")
    record(packed, seconds=1, size=16, hot=2, fmt="json_compressed")
    with open(packed, "rb") as f:
        data = f.read()
    check(data[:1] == b"x" and json.loads(zlib.decompress(data))[0]["snapshots"],
          "--format json_compressed writes zlib-compressed JSON")

    # nothing is left behind when monitoring cannot start
    bad = os.path.join(d, "refused.json")
    p = damon("record", "--backend", "uffd_wp", "--pid", "1", "-o", bad)
    check(p.returncode == 1 and "uffd_wp" in p.stderr and not os.path.exists(bad),
          "a refused --pid: exit 1, the reasons, no file", (p.returncode, p.stderr[-300:]))

    for sig in (signal.SIGINT, signal.SIGTERM):
        interrupted(sig, d)

    # reports of the record
    p = damon("report", "access", "-i", out, "--snapshot", "last")
    check(p.returncode == 0 and p.stdout.count("snapshot ") == 1 and "total size:" in p.stdout,
          "damon report access --snapshot last: one snapshot", p.stdout[:300])
    p = damon("report", "wss", "-i", out, "--raw_number", "--all_wss", "--sortby", "time")
    lines = [x for x in p.stdout.splitlines() if x and not x.startswith("#")]
    check(len(lines) == len(snaps), "damon report wss --all_wss: one line per snapshot",
          len(lines))
    p = damon("report", "access", "-i", os.path.join(d, "missing.json"))
    check(p.returncode == 1 and "cannot read" in p.stderr, "a missing record: exit 1, why")
    with open(os.path.join(d, "cut.json"), "w") as f:
        f.write(open(out).read()[:500])
    p = damon("report", "access", "-i", os.path.join(d, "cut.json"))
    check(p.returncode == 1 and "not a record" in p.stderr, "a truncated record: exit 1, why",
          p.stderr)


def live_reports():
    p = damon("report", "access", "-d", "1.5", *MON, "--", WORKLOAD, "16", "2", "3", timeout=30)
    check(p.returncode == 0 and "record: target 0" in p.stdout and "total size:" in p.stdout,
          "damon report access without -i monitors the command and reports", p.stderr[-300:])
    p = damon("live", "--json", "-d", "1.5", *MON, "--", WORKLOAD, "16", "2", "3", timeout=30)
    objs = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    check(p.returncode == 0 and len(objs) >= 5 and all(o["regions"] for o in objs),
          "damon live --json: one JSON object per snapshot", (p.returncode, len(objs)))
    p = damon("live", "--no-clear", "--top", "5", "-d", "1", *MON, "--", WORKLOAD, "16", "2", "3")
    check(p.returncode == 0 and "damon live: pid" in p.stdout and "heat" in p.stdout,
          "damon live: the view", p.stdout[:200])


def exec_chain(d):
    """A shell that executes the workload: the agent follows the exec."""
    out = os.path.join(d, "exec.json")
    p = damon("record", "-q", *MON, "-o", out, "--", "/bin/sh", "-c",
              f"exec {WORKLOAD} 32 4 2", timeout=30)
    rec = load_record(out)
    buf = [line.split() for line in p.stdout.splitlines() if line.startswith("buf ")]
    hs, he = (int(buf[0][4], 16), int(buf[0][5], 16)) if buf else (0, 0)
    seen = any(g["nr_accesses"]["samples"] and g["start"] < he and g["end"] > hs
               for s in rec[0]["snapshots"] for g in s["regions"])
    check(p.returncode == 0 and seen, "after sh executes the workload, its writes are recorded",
          (p.returncode, p.stderr[-200:]))


def main():
    usage_and_help()
    probe()
    cgroup_refused(tmpdir())
    need_uffd_wp()
    d = tmpdir()
    records(d)
    live_reports()
    exec_chain(d)
    finish()


main()
