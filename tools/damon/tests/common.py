# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""What the damon(1) tests share: where things are, running damon, skipping."""

import json
import os
import subprocess
import sys
import tempfile

DAMON = os.environ["DAMON_TOOL"]
WORKLOAD = os.environ["DAMON_WORKLOAD"]
SRCROOT = os.environ["DAMON_SRCROOT"]
SKIP = 77
FAILED = []


def skip(reason):
    """Exit as meson's skipped test, saying why."""
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


# The commands these tests run preload libdamon-agent.so into an
# uninstrumented workload; built with AddressSanitizer the agent needs ASan's
# runtime loaded first, which a preloaded library cannot have. The plain
# build (build-ci in scripts/test.sh) runs them; an ASan build skips them.
if "address" in os.environ.get("DAMON_TEST_SANITIZE", ""):
    skip("the agent is built with AddressSanitizer and cannot be preloaded into an "
         "uninstrumented program (ASan's runtime must be loaded first); the build "
         "without sanitizers runs these tests")


def check(cond, what, got=None):
    """Record a failed expectation (what was expected, what came)."""
    if cond:
        print(f"ok: {what}")
    else:
        print(f"FAIL: {what}" + (f"; got: {got}" if got is not None else ""))
        FAILED.append(what)


def finish():
    print(f"{len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)


def damon(*args, timeout=30, check_rc=None, **kw):
    """Run damon; returns the CompletedProcess."""
    p = subprocess.run([DAMON, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check_rc is not None and p.returncode != check_rc:
        print(f"damon {' '.join(map(str, args))} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        raise SystemExit(1)
    return p


def need_uffd_wp():
    """Skip unless uffd_wp can watch a process from inside (the agent's way)."""
    p = damon("probe", "--json", check_rc=None)
    for st in json.loads(p.stdout):
        if st["backend"] == "uffd_wp":
            if not st["usable"]:
                skip(f"uffd_wp cannot run here: {st['reason']}")
            return
    skip("damon probe did not judge uffd_wp")


# Small intervals so a test of a few seconds holds tens of snapshots, the
# layout is read soon after the workload maps its buffer, and the overhead
# budget does not stretch the intervals under the tests' workload.
MON = ["--backend", "uffd_wp", "--sample", "5000", "--aggr", "100000", "--updr", "200000",
       "--budget", "1000"]


def record(path, seconds=2.5, fmt="json", size=64, hot=8, extra=()):
    """damon record of the workload until it exits; returns (proc, buf info)."""
    p = damon("record", "-q", *MON, "--format", fmt, "-o", path, *extra, "--",
              WORKLOAD, size, hot, seconds, timeout=seconds + 20)
    info = None
    for line in p.stdout.splitlines():
        f = line.split()
        if f and f[0] == "buf":
            info = {"buf": (int(f[1], 16), int(f[2], 16)), "hot": (int(f[4], 16), int(f[5], 16))}
    return p, info


def tmpdir():
    return tempfile.mkdtemp(prefix="damon-test-")


def load_record(path):
    """Our own reading of a record (plain or zlib-compressed JSON)."""
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    if data[:1] != b"[":
        data = zlib.decompress(data)
    return json.loads(data)
