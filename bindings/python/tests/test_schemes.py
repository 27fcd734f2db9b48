# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""DAMOS through Python: the twins of tests/test-actions.c's API parts --
collapse of a hot range in this process, a user_input goal moving the
quota, filters and goals checked, the writes-only refusal."""

import ctypes
import mmap
import threading
import time

import damon
import pytest

MiB = 1 << 20
PAGE = mmap.PAGESIZE


def anon_huge_kb(addr):
    """AnonHugePages of the mapping holding addr, from /proc/self/smaps."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= addr < hi
            elif inside and line.startswith("AnonHugePages:"):
                return int(line.split()[1])
    return -1


def step_for(ctx, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.step()
        time.sleep(0.001)


def test_collapse_hot_range(monitorable):
    if monitorable != "uffd_wp":
        pytest.skip(f"written for uffd_wp; AUTO picks {monitorable} here")
    size = 64 * MiB
    buf = mmap.mmap(-1, size + 2 * MiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    view = memoryview(buf)
    # 2 MiB-align the hot part inside the buffer
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    off = (-addr) % (2 * MiB)
    view[off:off + size:PAGE] = b"\x01" * (size // PAGE)
    hot = view[off + 16 * MiB:off + 24 * MiB]
    stop = threading.Event()

    def writer():
        ones = b"\x02" * (len(hot) // PAGE)
        while not stop.is_set():
            hot[0::PAGE] = ones

    with damon.Context(ops="fvaddr", backend="uffd_wp", sample_us=2000, aggr_us=40000,
                       update_us=200000, min_nr_regions=20, cpu_budget_permille=1000,
                       manual=True) as ctx:
        ctx.add_target(pid=0).add_range(addr + off, addr + off + size)
        s = ctx.add_scheme("collapse", min_nr_accesses=3, min_sz=2 * MiB)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        ctx.start()
        step_for(ctx, 4)
        stop.set()
        t.join()
        kb = anon_huge_kb(addr + off + 16 * MiB)
        st = s.stats
        assert kb >= 4096, f"hot 8 MiB collapsed: AnonHugePages {kb} kB, stats {st}"
        assert st.sz_applied > 0
    del hot, view
    buf.close()


def test_goal_moves_quota(monitorable):
    with damon.Context(backend=monitorable, sample_us=2000, aggr_us=40000,
                       cpu_budget_permille=1000, manual=True) as ctx:
        ctx.add_target(pid=0)
        s = ctx.add_scheme("willneed", quota_reset_interval_ms=40,
                           goals=[dict(metric="user_input", target_value=100)])
        ctx.start()
        step_for(ctx, 2)
        grown = s.quota.esz
        assert grown > 256 * 1024, f"under-achieved goal grew the quota: {s.quota}"
        s.set_goal_current(0, 1000)
        step_for(ctx, 0.3)
        assert s.quota.esz < grown // 100, f"over-achieved goal shrank it: {s.quota}"
        assert s.stats.nr_snapshots > 0


def test_goal_and_filter_errors():
    with damon.Context() as ctx:
        s = ctx.add_scheme("stat")
        assert s.add_goal("user_input", 5) == 0
        assert s.add_goal("some_mem_psi_us", 1000) == 1
        with pytest.raises(ValueError):
            s.add_goal("no_such_metric", 1)
        with pytest.raises(OSError) as e:
            s.add_goal("user_input", 0)
        assert "target_value" in str(e.value)
        with pytest.raises(OSError):
            s.set_goal_current(1, 5)  # a PSI goal, not user_input
        s.add_filter("addr", addr_start=4096, addr_end=8192, allow=True)
        with pytest.raises(OSError):
            s.add_filter("addr", addr_start=8192, addr_end=4096)
        q = s.quota
        assert q.esz == (1 << 64) - 1 and q.charged_sz == 0


def test_writes_only_refusal(monitorable):
    if monitorable != "uffd_wp":
        pytest.skip(f"needs a writes-only backend; AUTO picks {monitorable} here")
    with damon.Context() as ctx:
        ctx.add_target(pid=0)
        ctx.add_scheme("pageout", max_nr_accesses=0)
        with pytest.raises(OSError) as e:
            ctx.start()
        assert "writes only" in str(e.value)
    with damon.Context(backend="uffd_wp") as ctx:
        ctx.add_target(pid=0)
        with pytest.raises(OSError):
            ctx.add_scheme("cold")
        ctx.add_scheme("cold", flags=damon.DAMOS_F_ALLOW_WRITES_ONLY)
        with pytest.raises(OSError) as e:
            ctx.add_scheme("lru_prio")
        assert "kernel backend" in str(e.value)
