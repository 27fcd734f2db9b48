# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Lifetimes: closed contexts, children outliving their context in every
order, garbage-collected cycles, closing from another thread, fork."""

import errno
import gc
import itertools
import os
import threading

import damon
import pytest
from conftest import first_snapshot


def monitor_threads():
    """How many "damon-mon" library threads this process has."""
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                n += f.read().strip() == "damon-mon"
        except FileNotFoundError:
            pass
    return n


def fast_context(**kw):
    return damon.Context(sample_us=1000, aggr_us=10_000, **kw)


def test_closed_context_raises_valueerror():
    ctx = damon.Context()
    t = ctx.add_target()
    s = ctx.add_scheme()
    ctx.close()
    ctx.close()                                  # idempotent
    assert ctx.closed
    assert "closed" in repr(ctx) and "closed" in repr(t)
    for call in (ctx.start, ctx.stop, ctx.commit, ctx.step, ctx.snapshot, ctx.status,
                 ctx.probe, ctx.fileno, ctx.add_target, ctx.add_scheme, ctx.wait_snapshot,
                 lambda: ctx.backend, lambda: ctx.attrs, lambda: ctx.hotness(0x1000, 1),
                 lambda: ctx.set_attrs(aggr_us=1), lambda: t.add_range(1, 2),
                 lambda: t.hotness(0x1000, 1), lambda: s.stats):
        with pytest.raises(ValueError, match="closed damon.Context"):
            call()
    with pytest.raises(ValueError):
        with ctx:
            pass
    assert t.pid == os.getpid()                  # plain data stays readable


def test_with_block_stops_and_frees(monitorable):
    before = monitor_threads()
    with fast_context() as ctx:
        ctx.add_target()
        ctx.start()
        assert ctx.status().running
        assert monitor_threads() == before + 1
    assert ctx.closed
    assert monitor_threads() == before, "leaving the block left the monitor thread running"


def test_snapshot_outlives_context(monitorable):
    with fast_context() as ctx:
        ctx.add_target()
        ctx.start()
        snap = first_snapshot(ctx)
        snap2 = ctx.snapshot()
    gc.collect()
    assert len(snap) > 0 and len(snap2) > 0      # readable after close
    regions = list(snap)
    assert regions == [snap[i] for i in range(len(snap))]
    assert snap.backend == monitorable and snap.seq >= 1
    snap.close()
    assert list(snap) == regions                 # regions already read stay


CHILDREN = ("ctx", "target", "scheme", "snapshot")


def still_works(kind, o, closed):
    if kind == "snapshot":
        assert len(o) > 0 and o[0].end > o[0].start
    elif closed:
        with pytest.raises(ValueError):
            o.status() if kind == "ctx" else o.stats if kind == "scheme" else o.hotness(1, 1)
    elif kind == "target":
        assert o.hotness(0x1000, 1 << 46).bytes_covered > 0
    elif kind == "scheme":
        assert o.stats.nr_snapshots >= 0
    elif kind == "ctx":
        assert o.status().running


@pytest.mark.parametrize("order", list(itertools.permutations(CHILDREN)))
@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed"])
def test_delete_in_every_order(monitorable, order, closed):
    before = monitor_threads()
    objs = {}
    objs["ctx"] = fast_context()
    objs["target"] = objs["ctx"].add_target()
    objs["scheme"] = objs["ctx"].add_scheme(min_nr_accesses=1)
    objs["ctx"].start()
    objs["snapshot"] = first_snapshot(objs["ctx"])
    if closed:
        objs["ctx"].close()
    for name in order:
        del objs[name]
        gc.collect()
        for rest in objs:                       # what is left keeps working
            still_works(rest, objs[rest], closed)
    gc.collect()
    assert monitor_threads() == before, "a context lived on after its last object was freed"


def test_children_keep_the_context(monitorable):
    before = monitor_threads()
    ctx = fast_context()
    t = ctx.add_target()
    ctx.start()
    first_snapshot(ctx)
    del ctx
    gc.collect()
    # The target still has its context: it is still monitored.
    assert monitor_threads() == before + 1
    h = t.hotness(0x1000, 1 << 46)
    assert h.bytes_covered > 0
    del t
    gc.collect()
    assert monitor_threads() == before


def test_cycles_are_collected(monitorable):
    before = monitor_threads()
    for _ in range(5):
        ctx = fast_context()
        cycle = [ctx, ctx.add_target(), ctx.add_scheme()]
        ctx.start()
        cycle.append(first_snapshot(ctx))
        cycle.append(cycle)
        ctx.me = cycle                           # ctx <-> cycle
        del ctx, cycle
    gc.collect()
    assert monitor_threads() == before


def test_close_from_another_thread(monitorable):
    buf = bytearray(1 << 20)
    for _ in range(5):
        ctx = fast_context()
        t = ctx.add_target()
        ctx.start()
        first_snapshot(ctx)
        stop = threading.Event()
        seen = []

        def reader():
            while not stop.is_set():
                try:
                    ctx.hotness(buf)
                    t.hotness(buf)
                    len(ctx.snapshot())
                    ctx.status()
                except ValueError:
                    seen.append("closed")
                    return
                except OSError as e:
                    assert e.errno in (errno.EAGAIN, errno.ENOENT), e

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for th in threads:
            th.start()
        ctx.close()
        stop.set()
        for th in threads:
            th.join()
        assert ctx.closed


def test_wait_snapshot_survives_close(monitorable):
    ctx = fast_context()
    ctx.add_target()
    ctx.start()
    first_snapshot(ctx)
    got = []
    th = threading.Thread(target=lambda: got.append(ctx.wait_snapshot(timeout=0.5)))
    th.start()
    ctx.close()
    th.join()
    # Either a snapshot came first or the wait saw the closed context.
    assert len(got) <= 1


def test_fork_child_gets_echild(monitorable):
    with fast_context() as ctx:
        ctx.add_target()
        ctx.start()
        first_snapshot(ctx)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ctx.stop()
            except ChildProcessError as e:
                code = 0 if e.errno == errno.ECHILD and e.strerror else 2
            except BaseException:
                code = 3
            try:
                ctx.close()                      # frees only, in the child
            except BaseException:
                code = 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, \
            "the child did not get ChildProcessError (ECHILD) from its inherited context"
        assert ctx.status().running              # the parent's context is untouched
