# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""cgroup v2 targets (Context.add_cgroup()), the twin of tests/test-cgroup.c:
errors anywhere; as root with a cgroup2 mount, a cgroup made for the test
whose process writes memory, forks a child that exits, and leaves."""

import errno
import os
import subprocess
import sys
import time

import damon
import pytest

WRITER = r"""
import mmap, os, sys, time
buf = mmap.mmap(-1, 8 << 20)
ones = b"\x01" * (len(buf) // mmap.PAGESIZE)
sys.stdin.readline()  # in the cgroup now: the child is born there
if os.fork() == 0:
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        buf[0::mmap.PAGESIZE] = ones
    os._exit(0)
print("ready", flush=True)
while True:
    buf[0::mmap.PAGESIZE] = ones
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pass
"""


def test_errors(tmp_path):
    with damon.Context() as ctx:
        with pytest.raises(FileNotFoundError):
            ctx.add_cgroup("/nonexistent/libdamon-cgroup")
        f = tmp_path / "file"
        f.write_text("")
        with pytest.raises(NotADirectoryError):
            ctx.add_cgroup(str(f))
        with pytest.raises(OSError) as e:
            ctx.add_cgroup(str(tmp_path))
        assert e.value.errno == errno.EINVAL
        assert "cgroup v2" in e.value.strerror
        with pytest.raises(TypeError):
            ctx.add_cgroup()
        t = ctx.add_target(pid=0)
        assert t.idx == 0 and t.alive and t.cgroup is None
    with damon.Context(backend="uffd_wp") as ctx:
        with pytest.raises(OSError) as e:
            ctx.add_cgroup(str(tmp_path))
        assert e.value.errno == errno.EOPNOTSUPP
        assert "calling process only" in e.value.strerror


def _cgroup2_root():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    return None


@pytest.fixture
def cgroup_dir():
    root = _cgroup2_root() if os.geteuid() == 0 else None
    if root is None:
        pytest.skip("needs root and a cgroup2 mount to make a cgroup")
    path = os.path.join(root, f"libdamon-pytest-{os.getpid()}")
    os.mkdir(path)
    try:
        yield root, path
    finally:
        for _ in range(100):
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.02)


def _wait(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_members_follow_the_cgroup(cgroup_dir):
    root, path = cgroup_dir
    sd = [st for st in damon.probe("vaddr", os.getppid()) if st.name == "soft_dirty"][0]
    if not sd.usable:
        pytest.skip(f"soft_dirty cannot monitor other processes here: {sd.reason}")
    p = subprocess.Popen([sys.executable, "-c", WRITER], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, start_new_session=True)
    try:
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(p.pid))
        p.stdin.write(b"go\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == b"ready"
        with damon.Context(backend="soft_dirty", aggr_us=50_000, update_us=100_000) as ctx:
            cg = ctx.add_cgroup(path)
            ctx.start()
            # the worker, and its child until the child exits
            assert p.pid in [t.pid for t in cg.members]
            assert _wait(lambda: [t.pid for t in cg.members] == [p.pid]), cg.members
            worker = cg.members[0]
            assert worker.alive and worker.cgroup is cg
            assert _wait(lambda: cg.summary().accessed_bytes >= 4 << 20), cg.summary()
            s = cg.summary(ctx.snapshot())
            assert s.nr_members == 1 and s.nr_joined >= 1 and s.bytes >= 8 << 20
            # moved out: dropped
            with open(os.path.join(root, "cgroup.procs"), "w") as f:
                f.write(str(p.pid))
            assert _wait(lambda: not worker.alive), cg.summary()
            assert cg.members == []
            assert cg.summary().nr_left == cg.summary().nr_joined
    finally:
        p.kill()
        p.wait()


def test_before_start(cgroup_dir):
    root, path = cgroup_dir
    with damon.Context(backend="soft_dirty") as ctx:
        cg = ctx.add_cgroup(path)
        assert cg.path == path and cg.members == []
        with pytest.raises(BlockingIOError):
            cg.summary()
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            by_fd = ctx.add_cgroup(fd=fd)
        finally:
            os.close(fd)
        assert by_fd.path is None and by_fd.members == []
        # an empty cgroup and no other target: nothing to start
        with pytest.raises(ProcessLookupError) as e:
            ctx.start()
        assert "no process" in e.value.strerror
