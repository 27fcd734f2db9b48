# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Monitoring this process: a hot part of an mmap or a bytearray written by
a thread is found hot, the rest cold; snapshots, schemes, status, manual
drive."""

import mmap
import select
import threading
import time

import damon
import pytest
from conftest import first_snapshot

MiB = 1 << 20
PAGE = mmap.PAGESIZE


class Writer:
    """A thread writing one byte per page of a memoryview, over and over."""

    def __init__(self, view):
        self.view = view
        self.ones = b"\x01" * len(range(0, len(view), PAGE))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            self.view[0::PAGE] = self.ones

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def wait_until_hot(ctx, hot, cold, timeout=10.0):
    """Snapshots until hot >= 5x cold (and hot at all); the last pair."""
    deadline = time.monotonic() + timeout
    h = c = None
    while time.monotonic() < deadline:
        if ctx.wait_snapshot(timeout=1) is None:
            continue
        h, c = ctx.hotness(hot), ctx.hotness(cold)
        if ctx.snapshot().seq >= 5 and h.access_rate_bp >= 1000 \
                and h.access_rate_bp >= 5 * c.access_rate_bp:
            break
    return h, c


def test_hot_part_of_an_mmap(monitorable):
    mm = mmap.mmap(-1, 128 * MiB)
    view = memoryview(mm)
    hot, rest = view[:16 * MiB], view[16 * MiB:]
    with Writer(hot), damon.Context() as ctx:
        t = ctx.add_target(pid=0)
        ctx.start()
        assert ctx.backend == monitorable
        h, c = wait_until_hot(ctx, hot, rest)
        assert h is not None, f"no snapshot in 10 s: {ctx.status()}"
        assert h.access_rate_bp >= 1000 and h.access_rate_bp >= 5 * c.access_rate_bp, \
            f"expected the written 16 MiB >= 5x hotter than the other 112 MiB: hot {h}, rest {c}"
        assert h.bytes_covered == 16 * MiB and c.bytes_covered == 112 * MiB, (h, c)
        assert t.hotness(hot) == ctx.hotness(hot) or t.hotness(hot).snapshot_seq > h.snapshot_seq
        # The same through the address and length.
        addr = damon.capi.damon_py_buffer_range(hot)[0]
        ha = ctx.hotness(addr, 16 * MiB)
        assert ha.bytes_covered == 16 * MiB and ha.snapshot_seq >= h.snapshot_seq
        # A region of the snapshot covers the hot part and is hot itself.
        snap = ctx.snapshot()
        hottest = max((r for r in snap if r.start < addr + 16 * MiB and r.end > addr),
                      key=lambda r: r.access_rate_bp)
        assert hottest.access_rate_bp >= 1000, f"{hottest} in {list(snap)}"
    del view, hot, rest
    mm.close()


def test_hot_bytearray(monitorable):
    hot = bytearray(16 * MiB)
    cold = mmap.mmap(-1, 64 * MiB)
    cold[0::PAGE] = b"\x01" * (64 * MiB // PAGE)     # populated once, then left alone
    with Writer(memoryview(hot)), damon.Context() as ctx:
        ctx.add_target()
        ctx.start()
        h, c = wait_until_hot(ctx, hot, cold)
        assert h is not None, f"no snapshot in 10 s: {ctx.status()}"
        assert h.access_rate_bp >= 1000 and h.access_rate_bp >= 5 * c.access_rate_bp, \
            f"expected the bytearray >= 5x hotter than the mmap: bytearray {h}, mmap {c}"
        assert h.bytes_covered == len(hot), h
    cold.close()


def test_snapshot_contents(monitorable):
    with damon.Context(sample_us=1000, aggr_us=20_000) as ctx:
        ctx.add_target()
        s = ctx.add_scheme(min_nr_accesses=0)
        ctx.start()
        first = first_snapshot(ctx)
        for _ in range(3):
            snap = first_snapshot(ctx)
        assert snap.seq > first.seq
        assert snap.backend == ctx.backend
        assert snap.sees and snap.sees <= {"reads", "writes"}
        assert snap.nr_targets == 1
        assert snap.max_nr_accesses == snap.aggr_us // snap.sample_us
        regions = list(snap)
        assert len(regions) == len(snap) > 0
        assert snap[-1] == regions[-1] and snap[1:3] == tuple(regions[1:3])
        with pytest.raises(IndexError):
            snap[len(snap)]
        prev_end = 0
        for r in regions:
            assert isinstance(r, damon.Region)
            assert r.start < r.end and r.start >= prev_end, f"unsorted or overlapping: {r}"
            assert r.size == r.end - r.start
            assert 0 <= r.nr_accesses <= snap.max_nr_accesses, r
            assert 0 <= r.access_rate_bp <= 10000 and r.target_idx == 0, r
            prev_end = r.end
        st = ctx.status()
        assert st.running and st.error == 0 and st.message == ""
        assert st.nr_snapshots >= snap.seq and st.nr_targets == 1 and st.backend == ctx.backend
        time.sleep(0.1)
        stats = s.stats
        assert stats.nr_snapshots > 0 and stats.sz_tried > 0, stats
        ctx.stop()
        assert not ctx.status().running
        assert ctx.snapshot().seq >= snap.seq        # the newest stays readable


def test_manual_drive(monitorable):
    with damon.Context(sample_us=1000, aggr_us=10_000, manual=True) as ctx:
        ctx.add_target()
        ctx.start()
        assert ctx.fileno() >= 0
        deadline = time.monotonic() + 5
        snap = None
        while snap is None and time.monotonic() < deadline:
            next_us = ctx.step()
            assert isinstance(next_us, int) and next_us >= 0
            try:
                snap = ctx.snapshot()
            except BlockingIOError:
                time.sleep(next_us / 1e6)
        assert snap is not None, "no snapshot after 5 s of step()"
        assert snap.seq == 1
        ctx.stop()


def test_commit_and_attrs_while_running(monitorable):
    with damon.Context(sample_us=1000, aggr_us=10_000) as ctx:
        ctx.add_target()
        ctx.start()
        first_snapshot(ctx)
        ctx.set_attrs(aggr_us=20_000)
        ctx.add_scheme()
        ctx.commit()
        assert ctx.attrs.aggr_us == 20_000
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            snap = first_snapshot(ctx)
            if snap.aggr_us >= 20_000:
                break
        assert snap.aggr_us >= 20_000, f"the committed aggr_us never showed: {snap}"
        first_snapshot(ctx)
        first_snapshot(ctx)
        stats = ctx.schemes[0].stats
        assert stats.nr_snapshots > 0, f"the committed scheme never ran: {stats}"


def test_threads_run_while_waiting(monitorable):
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    th = threading.Thread(target=count)
    th.start()
    try:
        with damon.Context(sample_us=1000, aggr_us=50_000) as ctx:
            ctx.add_target()
            ctx.start()
            before = counter[0]
            first_snapshot(ctx)
            ctx.stop()
            assert counter[0] > before, "no Python thread ran while the context was waited on"
    finally:
        stop.set()
        th.join()


def test_pause_and_resume(monitorable):
    """Paused: no snapshot for 10 aggregation intervals although the hot part
    is written, hotness answers from the newest snapshot; resumed: snapshots
    again, the hot part still hot, memory written only while paused cold."""
    mm = mmap.mmap(-1, 64 * MiB)
    view = memoryview(mm)
    hot, paused_only = view[:8 * MiB], view[32 * MiB:]
    with Writer(hot), damon.Context(ops="fvaddr", sample_us=2000, aggr_us=40_000) as ctx:
        t = ctx.add_target()
        addr, length = damon.capi.damon_py_buffer_range(view)
        t.add_range(addr, addr + length)
        ctx.start()
        h, _ = wait_until_hot(ctx, hot, paused_only)
        assert h is not None and h.access_rate_bp >= 1000, f"not hot before the pause: {h}"
        ctx.pause()
        ctx.pause()                              # idempotent
        st = ctx.status()
        assert st.running and st.paused, st
        seq = ctx.snapshot().seq
        with Writer(paused_only):
            assert ctx.wait_snapshot(timeout=0.4) is None or ctx.snapshot().seq == seq
        assert ctx.snapshot().seq == seq, "a snapshot was published while paused"
        assert ctx.hotness(hot).snapshot_seq == seq
        ctx.resume()
        ctx.resume()                             # idempotent
        assert not ctx.status().paused
        worst = 0
        for _ in range(3):
            snap = first_snapshot(ctx)
            worst = max(worst, ctx.hotness(paused_only).access_rate_bp)
        assert snap.seq > seq, "no snapshot after resume"
        assert worst < 250, f"memory written only while paused reads {worst} bp after resume"
        h = ctx.hotness(hot)
        assert h.access_rate_bp >= 1000, f"the hot part is not hot after resume: {h}"
    del view, hot, paused_only
    mm.close()


def test_pause_manual(monitorable):
    with damon.Context(sample_us=1000, aggr_us=10_000, update_us=300_000, manual=True) as ctx:
        ctx.add_target()
        ctx.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ctx.status().nr_snapshots < 2:
            time.sleep(ctx.step() / 1e6)
        assert ctx.status().nr_snapshots >= 2
        ctx.pause()
        seq = ctx.snapshot().seq
        p = select.poll()
        p.register(ctx.fileno(), select.POLLIN)
        assert not p.poll(200), "the fd became readable while paused"
        assert ctx.step() == 300_000             # nothing due: the update interval
        assert ctx.snapshot().seq == seq
        ctx.resume()
        assert p.poll(0), "the fd is not readable at once after resume"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ctx.snapshot().seq <= seq:
            time.sleep(ctx.step() / 1e6)
        assert ctx.snapshot().seq > seq, "no snapshot after resume"


def _runs(snap):
    """Maximal runs of adjacent regions: [start, end, youngest, oldest]."""
    runs = []
    for r in snap:
        if runs and runs[-1][1] == r.start:
            runs[-1][1] = r.end
            runs[-1][2] = min(runs[-1][2], r.age)
            runs[-1][3] = max(runs[-1][3], r.age)
        else:
            runs.append([r.start, r.end, r.age, r.age])
    return runs


def test_set_ranges_follows_commits(monitorable):
    """Ranges set on a running context are monitored from the next commit
    on, not before; memory kept across the commit keeps its regions' ages."""
    part, gap = 4 * MiB, 2 * MiB
    mm = mmap.mmap(-1, 3 * part + 2 * gap)
    view = memoryview(mm)
    base, _ = damon.capi.damon_py_buffer_range(view)
    a = (base, base + part)
    b = (a[1] + gap, a[1] + gap + part)
    c = (b[1] + gap, b[1] + gap + part)
    with damon.Context(ops="fvaddr", backend="uffd_wp", sample_us=1000,
                       aggr_us=20_000) as ctx:
        t = ctx.add_target()
        t.set_ranges([b, a])
        ctx.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ctx.status().nr_snapshots < 5:
            ctx.wait_snapshot(timeout=1)
        assert [tuple(r[:2]) for r in _runs(ctx.snapshot())] == [a, b]
        t.set_ranges([c, b])
        seq = ctx.snapshot().seq
        while ctx.snapshot().seq < seq + 2:
            assert ctx.wait_snapshot(timeout=5) is not None
        before = _runs(ctx.snapshot())
        assert [tuple(r[:2]) for r in before] == [a, b], "in force before the commit"
        ctx.commit()
        seq = ctx.snapshot().seq
        while ctx.snapshot().seq < seq + 1:
            assert ctx.wait_snapshot(timeout=5) is not None
        after = _runs(ctx.snapshot())
        assert [tuple(r[:2]) for r in after] == [b, c]
        assert after[0][2] >= before[1][2], f"B lost its ages: {before[1]} -> {after[0]}"
        assert after[1][3] < after[0][2], f"C is not younger than B: {after}"
    del view
    mm.close()


def fault_usable():
    st = [s for s in damon.probe(ops="fvaddr", pid=0) if s.name == "fault"]
    return bool(st and st[0].usable)


@pytest.mark.skipif(not fault_usable(), reason="the fault backend cannot run here "
                    "(x86-64 and Linux >= 6.11 needed)")
def test_who_accessed_fault():
    """fault tells writes from reads and the CPUs; uffd_wp tells writes only.
    (A private mapping: fault leaves shared ones alone, and mmap(-1, ...)
    is shared by default.)"""
    mm = mmap.mmap(-1, 64 * MiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    view = memoryview(mm)
    hot = view[8 * MiB:16 * MiB]
    with Writer(hot), damon.Context(ops="fvaddr", backend="fault",
                                   cpu_budget_permille=1000) as ctx:
        t = ctx.add_target(pid=0)
        addr, length = damon.capi.damon_py_buffer_range(view)
        t.add_range(addr, addr + length)
        ctx.start()
        h, _ = wait_until_hot(ctx, hot, view[32 * MiB:])
        assert ctx.backend == "fault"
        assert h.access_rate_bp >= 1000
        assert h.write_bp is not None and h.write_bp >= 5000, h
        assert h.nr_cpus is not None and h.nr_cpus >= 1 and h.cpus, h
        assert h.node is not None and h.node >= 0, h
        regions = [r for r in ctx.snapshot() if r.nr_accesses]
        assert regions and all(r.nr_writes is not None for r in regions)
    with Writer(hot), damon.Context(ops="fvaddr", backend="uffd_wp") as ctx:
        t = ctx.add_target(pid=0)
        t.add_range(addr, addr + length)
        ctx.start()
        h, _ = wait_until_hot(ctx, hot, view[32 * MiB:])
        assert h.write_bp is None and h.node is None and h.nr_cpus is None, h
        r = [r for r in ctx.snapshot() if r.nr_accesses][0]
        assert r.nr_writes == r.nr_accesses and r.nr_reads is None, r
    del view, hot
    mm.close()
