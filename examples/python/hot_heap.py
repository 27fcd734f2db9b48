#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""hot_heap: watch the hottest memory of this very interpreter, live.

A thread writes one byte per page of a hot part of a buffer, over and over;
the hot part moves to the next slot of the buffer every --phase seconds.
libdamon monitors the whole process (a Context with one target, pid 0) and
after every snapshot this prints the top regions by access rate, with a heat
bar, and how hot the buffer's current hot part is.

    PYTHONPATH=<builddir>/bindings/python python3 hot_heap.py --duration 10

Exits 77 (after saying why) when no backend can monitor this process here.
"""

import argparse
import mmap
import sys
import threading
import time

import damon

MiB = 1 << 20
PAGE = mmap.PAGESIZE
BAR = 30


class Workload:
    """Writes the current slot of buf, one byte per page, until stopped."""

    def __init__(self, size, hot, use_mmap):
        self.buf = mmap.mmap(-1, size) if use_mmap else bytearray(size)
        self.view = memoryview(self.buf)
        self.hot = hot
        self.nr_slots = size // hot
        self.slot = 0
        self.ones = b"\x01" * len(range(0, hot, PAGE))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hot-writer", daemon=True)

    def hot_view(self):
        base = self.slot * self.hot
        return self.view[base:base + self.hot]

    def _run(self):
        while not self.stop.is_set():
            self.hot_view()[0::PAGE] = self.ones

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join()


def human(n):
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024


def heat_bar(rate_bp):
    full = round(rate_bp * BAR / 10000)
    return "#" * full + "." * (BAR - full)


def show(snap, work, top, clear):
    base, length = damon.capi.damon_py_buffer_range(work.view)
    hot_base, _ = damon.capi.damon_py_buffer_range(work.hot_view())
    out = []
    if clear:
        out.append("\033[H\033[2J")
    out.append(f"snapshot {snap.seq}: backend {snap.backend} (sees {' and '.join(sorted(snap.sees))}),"
               f" sample {snap.sample_us / 1000:.1f} ms, aggregation {snap.aggr_us / 1000:.1f} ms,"
               f" {len(snap)} regions")
    out.append(f"workload: a {human(work.hot)} hot part at slot {work.slot}/{work.nr_slots} of a"
               f" {human(length)} buffer at {base:#x}")
    out.append("")
    out.append(f"{'range':<33} {'size':>8} {'acc':>7} {'age':>5}  heat")
    hottest = sorted(snap, key=lambda r: (r.access_rate_bp, r.size), reverse=True)[:top]
    for r in hottest:
        where = ""
        if r.start < hot_base + work.hot and r.end > hot_base:
            where = "  <- hot part"
        elif r.start < base + length and r.end > base:
            where = "  <- buffer"
        out.append(f"{r.start:016x}-{r.end:016x} {human(r.size):>8}"
                   f" {r.nr_accesses:>3}/{snap.max_nr_accesses:<3} {r.age:>5}"
                   f"  {heat_bar(r.access_rate_bp)} {r.access_rate_bp / 100:5.1f}%{where}")
    print("\n".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10, help="seconds to run (default 10)")
    ap.add_argument("--size", type=int, default=256, help="buffer MiB (default 256)")
    ap.add_argument("--hot", type=int, default=32, help="hot part MiB (default 32)")
    ap.add_argument("--phase", type=float, default=3, help="seconds before the hot part moves")
    ap.add_argument("--top", type=int, default=10, help="regions shown (default 10)")
    ap.add_argument("--aggr-ms", type=float, default=100, help="aggregation interval")
    ap.add_argument("--sample-ms", type=float, default=5, help="sampling interval")
    ap.add_argument("--backend", default="auto", help="auto, " + ", ".join(damon.BACKENDS))
    ap.add_argument("--bytearray", action="store_true", help="a bytearray instead of an mmap")
    ap.add_argument("--clear", action="store_true", help="redraw in place")
    args = ap.parse_args()
    if args.hot <= 0 or args.size < args.hot:
        ap.error("need 0 < --hot <= --size")

    work = Workload(args.size * MiB, args.hot * MiB, not args.bytearray)
    try:
        ctx = damon.Context(backend=args.backend, sample_us=int(args.sample_ms * 1000),
                            aggr_us=int(args.aggr_ms * 1000))
    except (OSError, ValueError) as e:
        print(f"hot_heap: {e}", file=sys.stderr)
        return 1
    with ctx:
        ctx.add_target()             # pid 0: this interpreter
        try:
            ctx.start()
        except OSError as e:
            print(f"hot_heap: cannot monitor this process: {e.strerror}", file=sys.stderr)
            for st in ctx.probe():
                print(f"  {st.name:<10} {'usable ' if st.usable else 'refused'}  {st.reason}",
                      file=sys.stderr)
            return 77
        work.start()
        t0 = last_move = time.monotonic()
        try:
            while time.monotonic() - t0 < args.duration:
                snap = ctx.wait_snapshot(timeout=1)
                if snap is None:
                    continue
                show(snap, work, args.top, args.clear)
                try:
                    h = ctx.hotness(work.hot_view())
                    print(f"hot part: {h.access_rate_bp / 100:.1f}% of samples saw a write,"
                          f" age {h.min_age}..{h.max_age}, {human(h.bytes_covered)} monitored\n",
                          flush=True)
                except OSError as e:
                    print(f"hot part: {e.strerror}\n", flush=True)
                if time.monotonic() - last_move >= args.phase:
                    work.slot = (work.slot + 1) % work.nr_slots
                    last_move = time.monotonic()
        except KeyboardInterrupt:
            pass
        finally:
            work.finish()
        st = ctx.status()
        print(f"{st.nr_snapshots} snapshots on {st.backend}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
