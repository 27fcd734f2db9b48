# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""DAMON data-access monitoring for Python programs, through libdamon.

Watch which memory of a process (this one, by default) is hot, with the
kernel's DAMON where it can run and with user-space backends elsewhere::

    import damon

    buf = bytearray(64 << 20)
    with damon.Context(aggr_us=100_000) as ctx:
        ctx.add_target()                  # pid 0: this process
        ctx.start()
        ...                               # work on buf
        snap = ctx.wait_snapshot(timeout=1)
        for r in snap:
            print(hex(r.start), hex(r.end), r.access_rate_bp)
        print(ctx.hotness(buf))           # a buffer stands for its own memory

Units and meanings are the kernel DAMON's: intervals in microseconds,
nr_accesses counts the sampling intervals that saw an access in one
aggregation interval, age counts aggregation intervals. access_rate_bp is
nr_accesses relative to its maximum, in basis points (0..10000).

A failed C call raises OSError(errno, sentence); OSError picks the subclass
(FileNotFoundError, PermissionError, ProcessLookupError, ...). Unknown names
(ops, backend, action) raise ValueError, a closed Context raises ValueError.

Objects keep what they need alive: a Target or Scheme keeps its context's
handle, a Snapshot holds its own reference, so they may outlive the Context
object in any order. Blocking calls release the GIL.
"""

import os as _os
import select as _select
import threading as _threading
import weakref as _weakref
from typing import NamedTuple as _NamedTuple
from typing import Optional as _Optional

from . import capi as _capi

__all__ = [
    "ACTIONS", "BACKENDS", "FILTER_TYPES", "GOAL_METRICS", "OPS", "WMARK_METRICS",
    "DAMOS_F_ALLOW_WRITES_ONLY",
    "Attrs", "BackendStatus", "Context", "Hotness", "IntervalsGoal", "QuotaState", "Region",
    "Scheme",
    "SchemeStats", "Snapshot", "Status", "Target",
    "UNKNOWN", "backend_name", "probe", "version",
]

__version__ = _capi.damon_version_string()

OPS = ("vaddr", "fvaddr", "paddr")
"""Names of enum damon_ops, by value."""

BACKENDS = tuple(_capi.damon_backend_name(b)
                 for b in range(_capi.DAMON_BACKEND_KERNEL, _capi.DAMON_BACKEND_MAX + 1))
"""Names of the backends, in the order AUTO tries them ("kernel" first)."""

ACTIONS = ("stat", "cold", "pageout", "willneed", "hugepage", "nohugepage", "collapse",
           "migrate_hot", "migrate_cold", "lru_prio", "lru_deprio")
"""Names of enum damos_action, by value."""

WMARK_METRICS = ("none", "free_mem_rate")
"""Names of enum damos_wmark_metric, by value."""

GOAL_METRICS = ("user_input", "some_mem_psi_us", "node_mem_used_bp", "node_mem_free_bp")
"""Names of enum damos_goal_metric, by value."""

FILTER_TYPES = ("anon", "memcg", "young", "hugepage_size", "unmapped", "addr", "target")
"""Names of enum damos_filter_type, by value (memcg needs the C API)."""

DAMOS_F_ALLOW_WRITES_ONLY = _capi.DAMOS_F_ALLOW_WRITES_ONLY
"""Scheme flag: allow a cold-side action on a backend that sees writes only."""

_CLOSED = "operation on a closed damon.Context"


def version():
    """The libdamon version in use, as "MAJOR.MINOR.PATCH"."""
    return _capi.damon_version_string()


def backend_name(backend):
    """The name of an enum damon_backend value ("unknown" if none)."""
    if isinstance(backend, bool) or not isinstance(backend, int):
        raise TypeError(f"backend must be an int, not {type(backend).__name__}")
    if not 0 <= backend <= _capi.DAMON_BACKEND_MAX:
        return "unknown"  # C's int would not hold every value: no need to ask
    return _capi.damon_backend_name(backend)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

class BackendStatus(_NamedTuple):
    """How one backend was judged: can it run, and if not, why (one sentence;
    for a usable backend, what it needs and what it sees)."""
    name: str
    usable: bool
    reason: str


UNKNOWN = 0xffffffff  # DAMON_UNKNOWN: what a backend cannot tell


def _known(v):
    return None if v == UNKNOWN else v


class Region(_NamedTuple):
    """One region of a snapshot: [start, end) with its access pattern, and
    who accessed it (None where the backend cannot tell: see damon.h)."""
    start: int
    end: int
    nr_accesses: int
    age: int
    access_rate_bp: int
    target_idx: int
    nr_reads: _Optional[int] = None
    nr_writes: _Optional[int] = None
    write_bp: _Optional[int] = None
    node: _Optional[int] = None
    node_bp: _Optional[int] = None
    nr_cpus: _Optional[int] = None
    cpus: _Optional[int] = None

    @property
    def size(self):
        """end - start, in bytes."""
        return self.end - self.start


class Hotness(_NamedTuple):
    """How hot an address range is in the newest snapshot: access rate
    weighted by size over its monitored part (bytes_covered), the ages seen,
    and the snapshot's sequence number."""
    access_rate_bp: int
    min_age: int
    max_age: int
    bytes_covered: int
    snapshot_seq: int
    write_bp: _Optional[int] = None
    node: _Optional[int] = None
    node_bp: _Optional[int] = None
    nr_cpus: _Optional[int] = None
    cpus: _Optional[int] = None


def _region(r):
    nr_reads, nr_writes, write_bp, node, node_bp, nr_cpus, cpus = r[6:]
    return Region(*r[:6], _known(nr_reads), _known(nr_writes), _known(write_bp),
                  None if node < 0 else node, _known(node_bp), _known(nr_cpus),
                  None if nr_cpus == UNKNOWN else cpus)


def _hotness(h):
    return Hotness(h.access_rate_bp, h.min_age, h.max_age, h.bytes_covered, h.snapshot_seq,
                   _known(h.write_bp), None if h.node < 0 else h.node, _known(h.node_bp),
                   _known(h.nr_cpus), None if h.nr_cpus == UNKNOWN else h.cpus)


class SchemeStats(_NamedTuple):
    """A scheme's counters (struct damos_stats, kernel meaning)."""
    nr_tried: int
    sz_tried: int
    nr_applied: int
    sz_applied: int
    qt_exceeds: int
    sz_ops_filter_passed: int
    nr_snapshots: int


class QuotaState(_NamedTuple):
    """A scheme's quota as in force (struct damos_quota_state): effective
    bytes quota of this reset interval (2**64-1: unlimited), bytes charged
    in it, whether the watermarks let the scheme run, the last minimum
    prioritization score."""
    esz: int
    charged_sz: int
    active: bool
    min_score: int


class Status(_NamedTuple):
    """State of a context's monitor. error is the errno (positive, 0 for
    none) that stopped or troubled it, message its sentence; paused is True
    while it runs but is paused (Context.pause())."""
    running: bool
    error: int
    message: str
    nr_snapshots: int
    nr_targets: int
    backend: str
    sample_us: int
    aggr_us: int
    paused: bool


class Attrs(_NamedTuple):
    """Monitoring attributes as set (struct damon_attrs)."""
    sample_us: int
    aggr_us: int
    update_us: int
    min_nr_regions: int
    max_nr_regions: int


class IntervalsGoal(_NamedTuple):
    """Monitoring intervals auto-tuning (struct damon_intervals_goal; Linux
    6.15's intervals goal): every aggrs aggregation intervals the sampling
    interval is scaled so that the access events seen come to access_bp of
    the most observable, within [min_sample_us, max_sample_us]. Samples per
    aggregation stay as set; Status and Snapshot tell the intervals in force."""
    access_bp: int
    aggrs: int
    min_sample_us: int
    max_sample_us: int


_GOAL_BITS = {"access_bp": 32, "aggrs": 32, "min_sample_us": 64, "max_sample_us": 64}


def _intervals_goal(value):
    """None (off), an IntervalsGoal, or a dict of its fields -> IntervalsGoal."""
    if value is None:
        return IntervalsGoal(0, 0, 0, 0)
    if isinstance(value, dict):
        unknown = set(value) - set(IntervalsGoal._fields)
        if unknown:
            raise TypeError(f"intervals_goal: unexpected field(s) {sorted(unknown)}")
        missing = set(IntervalsGoal._fields) - set(value)
        if missing:
            raise TypeError(f"intervals_goal: missing field(s) {sorted(missing)}")
        value = IntervalsGoal(**value)
    if not isinstance(value, IntervalsGoal):
        raise TypeError("intervals_goal must be None, an IntervalsGoal or a dict, not "
                        f"{type(value).__name__}")
    return IntervalsGoal(*(_uint(f"intervals_goal.{n}", v, _GOAL_BITS[n])
                           for n, v in zip(IntervalsGoal._fields, value)))


def _backend_status(st):
    return BackendStatus(_capi.damon_backend_name(st.backend), bool(st.usable), st.reason)


# --------------------------------------------------------------------------
# Argument conversion
# --------------------------------------------------------------------------

def _uint(name, value, bits):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be in 0..{(1 << bits) - 1} (got {value})")
    return value


def _enum(kind, names, value):
    """A name of names, or its index, to the index."""
    if isinstance(value, str):
        try:
            return names.index(value)
        except ValueError:
            raise ValueError(f"unknown {kind} {value!r}; one of: {', '.join(names)}") from None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return value
    raise ValueError(f"unknown {kind} {value!r}; one of: {', '.join(names)}")


def _backend(value):
    if isinstance(value, str):
        try:
            return _capi.damon_backend_from_name(value)
        except OSError:
            raise ValueError(f"unknown backend {value!r}; one of: auto, "
                             f"{', '.join(BACKENDS)}") from None
    if isinstance(value, int) and not isinstance(value, bool) \
            and 0 <= value <= _capi.DAMON_BACKEND_MAX:
        return value
    raise ValueError(f"unknown backend {value!r}; one of: auto, {', '.join(BACKENDS)}")


def _range(addr, length):
    """(address, length) from hotness()'s arguments."""
    if isinstance(addr, int) and not isinstance(addr, bool):
        if length is None:
            raise TypeError("hotness(addr, length): length missing (or pass a buffer)")
        return _uint("addr", addr, 64), _uint("length", length, 64)
    if length is not None:
        raise TypeError("hotness(buffer) takes no length: the buffer is the range")
    return _capi.damon_py_buffer_range(addr)


def probe(ops="vaddr", pid=0):
    """Judge every backend for monitoring pid (0: this process) with ops.

    Only reads: nothing is written, nothing started. Returns a list of
    BackendStatus, one per backend in AUTO's order, each with its sentence.
    """
    o = _enum("ops", OPS, ops)
    p = _uint("pid", pid, 31)
    return [_backend_status(_capi.damon_probe(o, p, b))
            for b in range(_capi.DAMON_BACKEND_KERNEL, _capi.DAMON_BACKEND_MAX + 1)]


# --------------------------------------------------------------------------
# Handles
# --------------------------------------------------------------------------

class _Handle:
    """Owns the one damon_ctx reference of a Context. The Context, its
    Targets and Schemes share it: the C context is freed by close(), or when
    the last of them is gone. The lock serializes calls on the context (the C
    API allows one thread at a time) against close()."""

    __slots__ = ("ptr", "lock", "_fin", "__weakref__")

    def __init__(self, ptr):
        self.ptr = ptr
        self.lock = _threading.RLock()
        self._fin = _weakref.finalize(self, _capi.damon_ctx_unref, ptr)

    def get(self):
        if self.ptr is None:
            raise ValueError(_CLOSED)
        return self.ptr

    def close(self):
        with self.lock:
            ptr, self.ptr = self.ptr, None
            if ptr is None:
                return
            # Stop first: a wait_snapshot() in another thread may hold a
            # C reference, and leaving the block must stop monitoring.
            try:
                _capi.damon_ctx_stop(ptr)
            except OSError:
                pass
            self._fin()


def _errmsg_again(exc, ptr):
    """A target's failure recorded on its context: the context's sentence."""
    msg = _capi.damon_ctx_errmsg(ptr)
    return OSError(exc.errno, msg) if msg else exc


class Target:
    """One address space monitored by a Context (Context.add_target())."""

    __slots__ = ("_h", "_ptr", "_pid", "__weakref__")

    def __init__(self, handle, ptr):
        self._h = handle
        self._ptr = ptr
        self._pid = _capi.damon_target_pid(ptr)

    @property
    def pid(self):
        """The process monitored (the real pid for 0: this process)."""
        return self._pid

    @property
    def idx(self):
        """Its place in the context: the target_idx of its regions."""
        return _capi.damon_target_idx(self._ptr)

    @property
    def alive(self):
        """False once dropped (its process exited, or it left its cgroup)."""
        return bool(_capi.damon_target_alive(self._ptr))

    @property
    def cgroup(self):
        """The damon.cgroup.Cgroup that made this target one of its
        members, or None for a target added by pid."""
        from . import cgroup

        return cgroup.of_target(self._h, self._ptr)

    def add_range(self, start, end):
        """Add the initial region [start, end) of an fvaddr or paddr target.

        Before Context.start() only (EBUSY after); ranges may not overlap.
        """
        start = _uint("start", start, 64)
        end = _uint("end", end, 64)
        with self._h.lock:
            ptr = self._h.get()
            try:
                _capi.damon_target_add_range(self._ptr, start, end)
            except OSError as e:
                raise _errmsg_again(e, ptr) from None

    def set_ranges(self, ranges):
        """Replace every range of an fvaddr or paddr target with ranges, an
        iterable of (start, end) pairs in any order (they may not overlap).

        Stopped: in force at once. Running: in force from the next
        Context.commit(), which keeps the counts and ages of the regions
        inside the new ranges, drops what lies outside and starts new memory
        as new regions (memory that comes and goes, an allocator's extents).
        """
        pairs = []
        for i, r in enumerate(ranges):
            try:
                start, end = r
            except (TypeError, ValueError):
                raise TypeError(f"range {i} must be a (start, end) pair, not {r!r}") from None
            pairs.append((_uint("start", start, 64), _uint("end", end, 64)))
        with self._h.lock:
            ptr = self._h.get()
            try:
                _capi.damon_py_target_set_ranges(self._ptr, pairs)
            except OSError as e:
                raise _errmsg_again(e, ptr) from None

    def hotness(self, addr, length=None):
        """Hotness of [addr, addr + length) of this target, or of the memory
        of a buffer (bytearray, mmap, memoryview, numpy array, ...), in the
        newest snapshot. BlockingIOError (EAGAIN) before the first snapshot,
        FileNotFoundError (ENOENT) if no monitored region overlaps."""
        a, n = _range(addr, length)
        with self._h.lock:
            self._h.get()
            h = _capi.damon_target_hotness(self._ptr, a, n)
        return _hotness(h)

    def __repr__(self):
        state = " (context closed)" if self._h.ptr is None else ""
        return f"<damon.Target pid={self._pid}{state}>"


class Scheme:
    """An operation scheme of a Context (Context.add_scheme())."""

    __slots__ = ("_h", "_ptr", "action", "__weakref__")

    def __init__(self, handle, ptr, action):
        self._h = handle
        self._ptr = ptr
        self.action = action

    @property
    def stats(self):
        """The scheme's counters: SchemeStats (struct damos_stats)."""
        with self._h.lock:
            self._h.get()
            st = _capi.damos_get_stats(self._ptr)
        return SchemeStats(st.nr_tried, st.sz_tried, st.nr_applied, st.sz_applied,
                           st.qt_exceeds, st.sz_ops_filter_passed, st.nr_snapshots)

    @property
    def quota(self):
        """The quota in force: QuotaState (struct damos_quota_state)."""
        with self._h.lock:
            self._h.get()
            q = _capi.damos_get_quota(self._ptr)
        return QuotaState(q.esz, q.charged_sz, bool(q.active), q.min_score)

    def add_goal(self, metric, target_value, *, current_value=0, nid=0):
        """Add a quota goal (struct damos_goal_opts): metric is one of
        GOAL_METRICS; the effective quota is tuned so that the metric's
        current value reaches target_value. Returns the goal's index (for
        set_goal_current())."""
        g = _capi.damos_goal_opts()
        g.metric = _enum("goal metric", GOAL_METRICS, metric)
        g.target_value = _uint("target_value", target_value, 64)
        g.current_value = _uint("current_value", current_value, 64)
        g.nid = _uint("nid", nid, 32)
        with self._h.lock:
            self._h.get()
            return _capi.damos_add_goal(self._ptr, g)

    def set_goal_current(self, idx, current_value):
        """Feed the current value of a "user_input" goal."""
        with self._h.lock:
            self._h.get()
            _capi.damos_set_goal_current(self._ptr, _uint("idx", idx, 32),
                                         _uint("current_value", current_value, 64))

    def add_filter(self, type, *, matching=True, allow=False, target_idx=0, addr_start=0,
                   addr_end=0, min_sz=0, max_sz=0):
        """Add a filter (struct damos_filter_opts): type is one of
        FILTER_TYPES; matching=True makes it about memory of the type,
        False about all other memory; allow=True lets that memory pass,
        False rejects it. The first filter about a piece of memory decides."""
        f = _capi.damos_filter_opts()
        f.type = _enum("filter type", FILTER_TYPES, type)
        f.matching = int(bool(matching))
        f.allow = int(bool(allow))
        f.target_idx = _uint("target_idx", target_idx, 32)
        f.addr_start = _uint("addr_start", addr_start, 64)
        f.addr_end = _uint("addr_end", addr_end, 64)
        f.min_sz = _uint("min_sz", min_sz, 64)
        f.max_sz = _uint("max_sz", max_sz, 64)
        with self._h.lock:
            self._h.get()
            _capi.damos_add_filter(self._ptr, f)

    def __repr__(self):
        return f"<damon.Scheme action={self.action!r}>"


class Snapshot:
    """The result of one aggregation interval: immutable, readable after its
    Context is closed. A sequence of Region (len(), iteration, indexing),
    target by target, each target's regions sorted by address."""

    __slots__ = ("_ptr", "_fin", "_lock", "_regions", "seq", "time_ns", "sample_us",
                 "aggr_us", "backend", "sees", "nr_targets", "max_nr_accesses", "__weakref__")

    def __init__(self, ptr):
        self._ptr = ptr
        self._fin = _weakref.finalize(self, _capi.damon_snapshot_unref, ptr)
        self._lock = _threading.Lock()
        self._regions = None
        info = _capi.damon_snapshot_info(ptr)
        self.seq = info.seq
        """1 for a context's first snapshot, then +1 each."""
        self.time_ns = info.time_ns
        """CLOCK_MONOTONIC (time.monotonic_ns()) at the end of its aggregation."""
        self.sample_us = info.sample_us
        """Sampling interval in force (after overhead budget stretching)."""
        self.aggr_us = info.aggr_us
        """Aggregation interval in force."""
        self.backend = _capi.damon_backend_name(info.backend)
        """The backend that produced it."""
        self.sees = frozenset(name for bit, name in ((_capi.DAMON_SEES_READS, "reads"),
                                                     (_capi.DAMON_SEES_WRITES, "writes"))
                              if info.sees & bit)
        """What that backend sees: {"reads", "writes"} or {"writes"}."""
        self.nr_targets = info.nr_targets
        self.max_nr_accesses = info.max_nr_accesses
        """aggr_us / sample_us: the nr_accesses of a region accessed at every sample."""

    def regions(self):
        """Every region, as a tuple of Region."""
        if self._regions is None:
            with self._lock:
                if self._regions is None:
                    if self._ptr is None:
                        raise ValueError("operation on a closed damon.Snapshot")
                    self._regions = tuple(_region(r)
                                          for r in _capi.damon_py_snapshot_regions(self._ptr))
        return self._regions

    def __len__(self):
        return len(self.regions())

    def __getitem__(self, idx):
        return self.regions()[idx]

    def __iter__(self):
        return iter(self.regions())

    def close(self):
        """Drop the C snapshot now (regions already read stay readable)."""
        with self._lock:
            self._ptr = None
            self._fin()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"<damon.Snapshot seq={self.seq} backend={self.backend} "
                f"aggr_us={self.aggr_us} sample_us={self.sample_us}>")


# --------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------

_SCHEME_FIELDS = {
    "target_nid": 32, "min_sz": 64, "max_sz": 64, "min_nr_accesses": 32, "max_nr_accesses": 32,
    "min_age": 32, "max_age": 32, "apply_interval_us": 64, "quota_ms": 64, "quota_bytes": 64,
    "quota_reset_interval_ms": 64, "weight_sz": 32, "weight_nr_accesses": 32, "weight_age": 32,
    "wmarks_interval_us": 64, "wmarks_high": 32, "wmarks_mid": 32, "wmarks_low": 32, "flags": 32,
}

_ATTR_FIELDS = ("sample_us", "aggr_us", "update_us", "min_nr_regions", "max_nr_regions")
_ATTR_BITS = {"sample_us": 64, "aggr_us": 64, "update_us": 64, "min_nr_regions": 32,
              "max_nr_regions": 32}


class Context:
    """One monitoring context: attributes, targets, schemes, run on one
    backend.

    ops: "vaddr" (a process's address space), "fvaddr" (fixed ranges of one)
    or "paddr" (physical memory). backend: "auto" (the first that can run,
    see probe()) or one of BACKENDS. Intervals in microseconds; every
    argument left out (None) takes the C default (sample 5 ms, aggregation
    100 ms, layout update 1 s, 10..1000 regions, a 2% CPU budget).
    manual=True: no library thread, drive it with step(). seed: for the
    sampling addresses (0: from the clock).

    Used as a context manager, leaving the block stops monitoring (if it
    runs) and frees the context; close() does the same. Targets, Schemes and
    Snapshots stay valid Python objects afterwards; using the context
    through them raises ValueError, snapshots stay readable.
    """

    def __init__(self, ops="vaddr", backend="auto", sample_us=None, aggr_us=None,
                 update_us=None, min_nr_regions=None, max_nr_regions=None,
                 cpu_budget_permille=None, *, manual=False, seed=None, intervals_goal=None):
        o = _capi.damon_ctx_opts()
        o.ops = _enum("ops", OPS, ops)
        o.backend = _backend(backend)
        if cpu_budget_permille is not None:
            o.cpu_budget_permille = _uint("cpu_budget_permille", cpu_budget_permille, 32)
        if seed is not None:
            o.seed = _uint("seed", seed, 64)
        o.flags = _capi.DAMON_CTX_MANUAL if manual else 0
        attrs = {}
        for name, value in (("sample_us", sample_us), ("aggr_us", aggr_us),
                            ("update_us", update_us), ("min_nr_regions", min_nr_regions),
                            ("max_nr_regions", max_nr_regions)):
            if value is not None:
                attrs[name] = _uint(name, value, _ATTR_BITS[name])
        if intervals_goal is not None:
            attrs["intervals_goal"] = intervals_goal
        self._targets = []
        self._schemes = []
        self._manual = bool(manual)
        self._h = _Handle(_capi.damon_ctx_new(o))
        if attrs:
            # Through set_attrs(), which says what is wrong in a sentence
            # (damon_ctx_new() has no context to keep one on).
            try:
                self.set_attrs(**attrs)
            except BaseException:
                self._h.close()
                raise

    # -- lifetime ---------------------------------------------------------

    def close(self):
        """Stop monitoring if it runs and free the context. Idempotent."""
        self._h.close()

    @property
    def closed(self):
        return self._h.ptr is None

    def __enter__(self):
        self._h.get()
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self.closed:
            return "<damon.Context closed>"
        return f"<damon.Context backend={self.backend} targets={len(self._targets)}>"

    def _call(self, fn, *args):
        with self._h.lock:
            return fn(self._h.get(), *args)

    # -- setup ------------------------------------------------------------

    def add_target(self, pid=0):
        """Add an address space: vaddr/fvaddr the process pid (0: this
        process), paddr physical memory (pid 0). On a running context the
        target joins at the next commit(). Returns a Target."""
        pid = _uint("pid", pid, 31)
        t = Target(self._h, self._call(_capi.damon_ctx_add_target, pid))
        self._targets.append(t)
        return t

    def add_cgroup(self, path=None, *, fd=None):
        """Follow the processes of a cgroup v2 group (a path, or an open
        directory fd): each member is a Target, added and dropped as
        processes join and leave; returns a damon.cgroup.Cgroup."""
        from . import cgroup

        return cgroup.add(self, path, fd)

    @property
    def targets(self):
        """The targets added, in order (Region.target_idx counts them)."""
        return tuple(self._targets)

    def add_scheme(self, action="stat", *, target_nid=None, min_sz=None, max_sz=None,
                   min_nr_accesses=None, max_nr_accesses=None, min_age=None, max_age=None,
                   apply_interval_us=None, quota_ms=None, quota_bytes=None,
                   quota_reset_interval_ms=None, weight_sz=None, weight_nr_accesses=None,
                   weight_age=None, wmarks_metric=None, wmarks_interval_us=None,
                   wmarks_high=None, wmarks_mid=None, wmarks_low=None, flags=None,
                   goals=(), filters=()):
        """Add an operation scheme (struct damos_opts; kernel meanings).

        action: one of ACTIONS. The access pattern (min/max_sz,
        min/max_nr_accesses, min/max_age) matches every region when left
        out: unset maxima are unbounded; max_nr_accesses=0 means "never
        accessed". goals and filters: dicts of Scheme.add_goal() and
        Scheme.add_filter() arguments, added in order. Returns a Scheme;
        its stats count what it matched and applied.
        """
        o = _capi.damos_opts()
        o.action = _enum("action", ACTIONS, action)
        values = dict(target_nid=target_nid, min_sz=min_sz, max_sz=max_sz,
                      min_nr_accesses=min_nr_accesses, max_nr_accesses=max_nr_accesses,
                      min_age=min_age, max_age=max_age, apply_interval_us=apply_interval_us,
                      quota_ms=quota_ms, quota_bytes=quota_bytes,
                      quota_reset_interval_ms=quota_reset_interval_ms, weight_sz=weight_sz,
                      weight_nr_accesses=weight_nr_accesses, weight_age=weight_age,
                      wmarks_interval_us=wmarks_interval_us, wmarks_high=wmarks_high,
                      wmarks_mid=wmarks_mid, wmarks_low=wmarks_low, flags=flags)
        for name, value in values.items():
            if value is not None:
                setattr(o, name, _uint(name, value, _SCHEME_FIELDS[name]))
        if wmarks_metric is not None:
            o.wmarks_metric = _enum("wmarks_metric", WMARK_METRICS, wmarks_metric)
        s = Scheme(self._h, self._call(_capi.damon_ctx_add_scheme, o), ACTIONS[o.action])
        self._schemes.append(s)
        for g in goals:
            s.add_goal(**g)
        for f in filters:
            s.add_filter(**f)
        return s

    @property
    def schemes(self):
        """The schemes added, in order."""
        return tuple(self._schemes)

    @property
    def attrs(self):
        """The monitoring attributes as set: Attrs."""
        a = self._call(_capi.damon_ctx_get_attrs)
        return Attrs(a.sample_us, a.aggr_us, a.update_us, a.min_nr_regions, a.max_nr_regions)

    @property
    def intervals_goal(self):
        """The intervals auto-tuning goal as set: an IntervalsGoal, or None
        when the intervals are fixed."""
        a = self._call(_capi.damon_ctx_get_attrs)
        g = a.intervals_goal   # a view into a: keep a alive while reading it
        if not g.aggrs:
            return None
        return IntervalsGoal(g.access_bp, g.aggrs, g.min_sample_us, g.max_sample_us)

    def set_attrs(self, **attrs):
        """Change monitoring attributes (those of Attrs, and intervals_goal:
        an IntervalsGoal, a dict of its fields, or None for fixed intervals;
        the others keep their value). Effective at start() on a stopped
        context, at commit() on a running one."""
        goal = None
        if "intervals_goal" in attrs:
            goal = _intervals_goal(attrs.pop("intervals_goal"))
        for name in attrs:
            if name not in _ATTR_FIELDS:
                raise TypeError(f"set_attrs() got an unexpected keyword argument {name!r}")
        with self._h.lock:
            ptr = self._h.get()
            cur = _capi.damon_ctx_get_attrs(ptr)
            new = _capi.damon_attrs()
            for name in _ATTR_FIELDS:
                value = attrs.get(name)
                setattr(new, name, getattr(cur, name) if value is None
                        else _uint(name, value, _ATTR_BITS[name]))
            for name in IntervalsGoal._fields:
                setattr(new.intervals_goal, name,
                        getattr(cur.intervals_goal, name) if goal is None else getattr(goal, name))
            _capi.damon_ctx_set_attrs(ptr, new)

    # -- running ----------------------------------------------------------

    def start(self):
        """Pick the backend (if "auto") and start monitoring."""
        self._call(_capi.damon_ctx_start)

    def stop(self):
        """Stop monitoring (OSError EALREADY if it does not run). The newest
        snapshot stays readable."""
        self._call(_capi.damon_ctx_stop)

    def commit(self):
        """Apply attributes, targets and schemes changed since start() to
        the running context."""
        self._call(_capi.damon_ctx_commit)

    def pause(self):
        """Pause the running context, as the kernel's pause file does: it
        keeps its regions, schemes and newest snapshot (hotness() and
        snapshot() keep answering), samples nothing, applies nothing and
        costs next to nothing. Pausing twice does nothing. OSError EINVAL if
        it does not run; EOPNOTSUPP on a kernel backend whose DAMON has no
        pause file (stop() and start() instead)."""
        self._call(_capi.damon_ctx_pause)

    def resume(self):
        """Let a paused context go on with the regions it had; the paused
        time counts in no interval and nothing written while paused is
        counted. Resuming a context that is not paused does nothing."""
        self._call(_capi.damon_ctx_resume)

    def step(self):
        """manual=True: do the work that is due; returns the microseconds
        until more will be due (the update interval while paused)."""
        return self._call(_capi.damon_ctx_step)

    def fileno(self):
        """A file descriptor for poll/select: readable after each new
        snapshot (library thread), or when step() is due (manual)."""
        return self._call(_capi.damon_ctx_fd)

    @property
    def backend(self):
        """The backend in use: "uffd_wp", ...; "auto" before the first start."""
        return _capi.damon_backend_name(self._call(_capi.damon_ctx_backend))

    def backend_status(self, backend):
        """How one backend was judged for this context (at its last start,
        or probed now if it never started): BackendStatus."""
        b = _backend(backend)
        if b == _capi.DAMON_BACKEND_AUTO:
            raise ValueError("backend_status() takes a backend, not \"auto\"")
        return _backend_status(self._call(_capi.damon_ctx_backend_status, b))

    def probe(self):
        """backend_status() of every backend, in AUTO's order."""
        return [self.backend_status(b)
                for b in range(_capi.DAMON_BACKEND_KERNEL, _capi.DAMON_BACKEND_MAX + 1)]

    def status(self):
        """The monitor's state: Status (running, the error that ended it,
        snapshots published, intervals in force)."""
        st = self._call(_capi.damon_ctx_status)
        return Status(bool(st.running), -st.error, st.message, st.nr_snapshots, st.nr_targets,
                      _capi.damon_backend_name(st.backend), st.sample_us, st.aggr_us,
                      bool(st.paused))

    # -- results ----------------------------------------------------------

    def snapshot(self):
        """The newest Snapshot; BlockingIOError (EAGAIN) before the first."""
        return Snapshot(self._call(_capi.damon_ctx_snapshot))

    def wait_snapshot(self, timeout=None):
        """Wait until a snapshot newer than the last one waited for is
        published (at most timeout seconds; None: no limit) and return the
        newest; None on timeout. For a context with its library thread."""
        if self._manual:
            raise ValueError("wait_snapshot() needs the library thread: with manual=True, "
                             "call step() and snapshot()")
        with self._h.lock:
            ptr = self._h.get()
            fd = _capi.damon_ctx_fd(ptr)
            # Keep the fd open even if close() runs in another thread.
            _capi.damon_ctx_ref(ptr)
        try:
            p = _select.poll()
            p.register(fd, _select.POLLIN)
            if not p.poll(None if timeout is None else max(0, int(timeout * 1000))):
                return None
            try:
                _os.read(fd, 8)
            except BlockingIOError:
                pass
        finally:
            _capi.damon_ctx_unref(ptr)
        return self.snapshot()

    def hotness(self, addr, length=None):
        """Hotness of [addr, addr + length) of the first target, or of the
        memory of a buffer (bytearray, mmap, memoryview, numpy array, ...),
        in the newest snapshot: Hotness. BlockingIOError (EAGAIN) before the
        first snapshot, FileNotFoundError (ENOENT) if no monitored region
        overlaps."""
        a, n = _range(addr, length)
        h = self._call(_capi.damon_ctx_hotness, a, n)
        return _hotness(h)
