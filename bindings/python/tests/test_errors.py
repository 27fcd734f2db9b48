# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Argument and state errors: a C -errno arrives as OSError(errno, sentence),
unknown names as ValueError, wrong Python types as TypeError."""

import errno

import damon
import pytest


def _pid_that_does_not_exist():
    with open("/proc/sys/kernel/pid_max") as f:
        return int(f.read()) + 1


def check_oserror(excinfo, code, *words):
    e = excinfo.value
    want = type(OSError(code, "x"))           # the subclass OSError picks
    assert type(e) is want, f"expected {want.__name__}, got {type(e).__name__}: {e!r}"
    assert e.errno == code, f"expected {errno.errorcode[code]}, got {e.errno}: {e}"
    assert e.strerror and e.strerror[0].isalpha(), f"no sentence: {e!r}"
    for w in words:
        assert w in e.strerror, f"expected {w!r} in the sentence, got {e.strerror!r}"


def test_bad_names_are_valueerror():
    with pytest.raises(ValueError, match="unknown ops 'vaddrs'"):
        damon.Context(ops="vaddrs")
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        damon.Context(backend="nope")
    with pytest.raises(ValueError):
        damon.Context(backend=99)
    with damon.Context() as ctx:
        with pytest.raises(ValueError, match="unknown action 'stats'"):
            ctx.add_scheme(action="stats")
        with pytest.raises(ValueError):
            ctx.add_scheme(wmarks_metric="free")


def test_bad_types_and_ranges():
    with pytest.raises(TypeError):
        damon.Context(sample_us=1.5)
    with pytest.raises(ValueError):
        damon.Context(aggr_us=-1)
    with pytest.raises(ValueError):
        damon.Context(min_nr_regions=1 << 32)
    with damon.Context() as ctx:
        with pytest.raises(ValueError):
            ctx.add_target(pid=-1)
        with pytest.raises(TypeError):
            ctx.add_scheme(min_sz="1")
        with pytest.raises(TypeError):
            ctx.add_scheme(no_such_field=1)
        with pytest.raises(TypeError):
            ctx.set_attrs(no_such_attr=1)


def test_backend_name_of_anything():
    # found by tests/fuzz/fuzz-python: 2**64 went on to C's int (OverflowError)
    assert damon.backend_name(1 << 64) == "unknown"
    assert damon.backend_name(-1) == "unknown"
    assert damon.backend_name(damon.BACKENDS.index("uffd_wp") + 1) == "uffd_wp"
    with pytest.raises(TypeError):
        damon.backend_name(float("inf"))


def test_attrs_einval_with_sentence():
    with pytest.raises(OSError) as ei:
        damon.Context(sample_us=10_000, aggr_us=5_000)
    check_oserror(ei, errno.EINVAL, "sample_us")
    with pytest.raises(OSError) as ei:
        damon.Context(min_nr_regions=2)
    check_oserror(ei, errno.EINVAL, "min_nr_regions")
    with pytest.raises(OSError) as ei:
        damon.Context(min_nr_regions=50, max_nr_regions=20)
    check_oserror(ei, errno.EINVAL)
    with damon.Context() as ctx:
        with pytest.raises(OSError) as ei:
            ctx.set_attrs(sample_us=ctx.attrs.aggr_us + 1)
        check_oserror(ei, errno.EINVAL, "sample_us")


def test_intervals_goal():
    goal = damon.IntervalsGoal(access_bp=400, aggrs=4, min_sample_us=1000, max_sample_us=50_000)
    with damon.Context(intervals_goal=goal) as ctx:
        assert ctx.intervals_goal == goal
        ctx.set_attrs(sample_us=2000)              # the goal stays
        assert ctx.intervals_goal == goal
        with pytest.raises(OSError) as ei:
            ctx.set_attrs(sample_us=500)           # below min_sample_us
        check_oserror(ei, errno.EINVAL, "intervals goal", "sample_us")
        ctx.set_attrs(intervals_goal=None)
        assert ctx.intervals_goal is None
        ctx.set_attrs(sample_us=500)               # fixed intervals: fine
    with damon.Context() as ctx:
        assert ctx.intervals_goal is None
        for bad, word in ((dict(goal._asdict(), access_bp=0), "access_bp"),
                          (dict(goal._asdict(), access_bp=10_001), "access_bp"),
                          (dict(goal._asdict(), min_sample_us=60_000), "min_sample_us")):
            with pytest.raises(OSError) as ei:
                ctx.set_attrs(intervals_goal=bad)
            check_oserror(ei, errno.EINVAL, word)
        with pytest.raises(TypeError, match="missing"):
            ctx.set_attrs(intervals_goal=dict(access_bp=1))
        with pytest.raises(TypeError):
            ctx.set_attrs(intervals_goal=(1, 2, 3, 4))


def test_omitted_means_c_defaults():
    with damon.Context() as ctx:
        assert ctx.attrs == damon.Attrs(5000, 100000, 1000000, 10, 1000)
    with damon.Context(aggr_us=200_000, max_nr_regions=500) as ctx:
        assert ctx.attrs == damon.Attrs(5000, 200000, 1000000, 10, 500)


def test_start_without_target():
    with damon.Context() as ctx:
        with pytest.raises(OSError) as ei:
            ctx.start()
        check_oserror(ei, errno.EINVAL, "target")


def test_targets():
    with damon.Context() as ctx:
        with pytest.raises(ProcessLookupError) as ei:
            ctx.add_target(pid=_pid_that_does_not_exist())
        check_oserror(ei, errno.ESRCH)
        t = ctx.add_target()
        assert t.pid > 0
        with pytest.raises(OSError) as ei:
            t.add_range(0x1000, 0x2000)      # vaddr takes its ranges from the maps
        check_oserror(ei, errno.EINVAL, "vaddr")
    with damon.Context(ops="fvaddr") as ctx:
        t = ctx.add_target()
        with pytest.raises(OSError) as ei:
            t.add_range(0x2000, 0x1000)
        check_oserror(ei, errno.EINVAL, "empty or inverted")
        t.add_range(0x1000, 0x3000)
        with pytest.raises(OSError) as ei:
            t.add_range(0x2000, 0x4000)
        check_oserror(ei, errno.EINVAL)
        with pytest.raises(OSError) as ei:
            ctx.add_target().add_range(0, 0)
        check_oserror(ei, errno.EINVAL)
        # set_ranges replaces them all; a failed call leaves them as they were
        with pytest.raises(OSError) as ei:
            t.set_ranges([(0x5000, 0x6000), (0x1000, 0x2000), (0x1800, 0x3000)])
        check_oserror(ei, errno.EINVAL, "overlaps")
        with pytest.raises(OSError) as ei:
            t.set_ranges([])
        check_oserror(ei, errno.EINVAL, "at least one")
        with pytest.raises(TypeError):
            t.set_ranges([(0x1000, 0x2000, 0x3000)])
        with pytest.raises(ValueError):
            t.set_ranges([(-1, 0x2000)])
        with pytest.raises(OSError) as ei:
            t.add_range(0x2000, 0x4000)          # the old range is still there
        check_oserror(ei, errno.EINVAL, "overlaps")
        t.set_ranges([(0x8000, 0x9000), (0x4000, 0x5000)])
        t.add_range(0x1000, 0x3000)              # the old one is gone
    with damon.Context() as ctx:
        with pytest.raises(OSError) as ei:
            ctx.add_target().set_ranges([(0x1000, 0x2000)])
        check_oserror(ei, errno.EINVAL, "vaddr")
    with damon.Context(ops="paddr") as ctx:
        with pytest.raises(OSError) as ei:
            ctx.add_target(pid=1)
        check_oserror(ei, errno.EINVAL)


def test_schemes():
    with damon.Context() as ctx:
        s = ctx.add_scheme()
        assert s.action == "stat"
        assert s.stats == damon.SchemeStats(0, 0, 0, 0, 0, 0, 0)
        with pytest.raises(OSError) as ei:
            ctx.add_scheme(min_nr_accesses=5, max_nr_accesses=1)
        check_oserror(ei, errno.EINVAL, "minimum above its maximum")
        with pytest.raises(OSError) as ei:
            ctx.add_scheme(wmarks_metric="free_mem_rate", wmarks_high=100, wmarks_mid=500,
                           wmarks_low=50)
        check_oserror(ei, errno.EINVAL)
        with pytest.raises(OSError) as ei:
            ctx.add_scheme(flags=1 << 30)
        check_oserror(ei, errno.EINVAL, "flags")
        # The API's own example: executed, or refused with a sentence by a
        # version that does not execute quotas yet.
        try:
            s = ctx.add_scheme(action="stat", min_nr_accesses=5, quota_bytes=1 << 20)
        except OSError as e:
            assert e.errno == errno.EOPNOTSUPP, e
            assert "quota" in e.strerror, e
        assert ctx.add_scheme(max_nr_accesses=0).action == "stat"     # "never accessed"


def test_not_running():
    with damon.Context() as ctx:
        ctx.add_target()
        with pytest.raises(OSError) as ei:
            ctx.stop()
        check_oserror(ei, errno.EALREADY, "not running")
        with pytest.raises(OSError) as ei:
            ctx.commit()
        check_oserror(ei, errno.EALREADY, "not running")
        with pytest.raises(OSError) as ei:
            ctx.step()                           # not manual
        check_oserror(ei, errno.EINVAL, "thread")
        for call in (ctx.pause, ctx.resume):
            with pytest.raises(OSError) as ei:
                call()
            check_oserror(ei, errno.EINVAL, "not running")
        with pytest.raises(BlockingIOError) as ei:
            ctx.snapshot()
        check_oserror(ei, errno.EAGAIN, "no snapshot yet")
        with pytest.raises(BlockingIOError) as ei:
            ctx.hotness(0x1000, 4096)
        check_oserror(ei, errno.EAGAIN)
        assert not ctx.status().running


def test_hotness_arguments():
    buf = bytearray(4096)
    with damon.Context() as ctx:
        t = ctx.add_target()
        with pytest.raises(OSError) as ei:
            ctx.hotness(0x1000, 0)
        check_oserror(ei, errno.EINVAL)
        with pytest.raises(OSError) as ei:
            t.hotness((1 << 64) - 4096, 8192)
        check_oserror(ei, errno.EINVAL)
        with pytest.raises(TypeError):
            ctx.hotness(0x1000)                  # length missing
        with pytest.raises(TypeError):
            ctx.hotness(buf, 10)                 # a buffer is its own range
        with pytest.raises(TypeError):
            ctx.hotness("not a buffer")
        with pytest.raises(OSError) as ei:
            ctx.hotness(bytearray())             # empty
        check_oserror(ei, errno.EINVAL)


def test_stop_twice(monitorable):
    with damon.Context(sample_us=1000, aggr_us=10_000) as ctx:
        ctx.add_target()
        ctx.start()
        with pytest.raises(OSError) as ei:
            ctx.start()
        check_oserror(ei, errno.EBUSY, "already running")
        ctx.commit()
        ctx.stop()
        with pytest.raises(OSError) as ei:
            ctx.stop()
        check_oserror(ei, errno.EALREADY, "not running")
        with pytest.raises(OSError) as ei:
            ctx.commit()
        check_oserror(ei, errno.EALREADY)
        ctx.start()                              # a stopped context starts again
        ctx.stop()
        with pytest.raises(OSError) as ei:
            ctx.pause()                          # stopped: nothing to pause
        check_oserror(ei, errno.EINVAL, "not running")


def test_errors_are_oserror_subclasses():
    # OSError(errno, msg) picks the subclass, as the C errors come through it.
    assert type(OSError(errno.ENOENT, "x")) is FileNotFoundError
    with damon.Context() as ctx:
        with pytest.raises(OSError) as ei:
            ctx.stop()
        assert isinstance(ei.value, OSError) and ei.value.filename is None


def test_buffer_ranges():
    rng = damon.capi.damon_py_buffer_range
    b = bytearray(4096 * 4)
    base, n = rng(b)
    assert n == len(b) and base > 0
    m = memoryview(b)
    assert rng(m[4096:8192]) == (base + 4096, 4096)
    assert rng(m[::2]) == (base, len(b) - 1)             # strided: lowest to highest byte
    assert rng(m[::-1]) == (base, len(b))                # negative stride
    assert rng(m.cast("B", (4, 4096))) == (base, len(b))  # 2-D
    assert rng(m.cast("I")) == (base, len(b))
    assert rng(b"read-only")[1] == 9
    assert rng(m[0:0])[1] == 0
    with pytest.raises(TypeError):
        rng(12)


def test_wait_snapshot_needs_the_thread():
    with damon.Context(manual=True) as ctx:
        with pytest.raises(ValueError, match="manual"):
            ctx.wait_snapshot(timeout=0)
