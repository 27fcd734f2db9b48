# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Records in damo's JSON record format, the one damon(1) writes and damo reads.

A record file is a list of records, one per monitoring target; each has the
monitoring intervals and the target's snapshots; a snapshot has its start and
end time (ns, CLOCK_MONOTONIC) and its regions with nr_accesses (samples) and
age (aggregation intervals). Files are plain JSON or zlib-compressed JSON
(damo's default); read() takes either, write() writes either::

    import damon, damon.record

    rec = damon.record.Record(sample_us=5000, aggr_us=100000)
    with damon.Context(aggr_us=100000) as ctx:
        ctx.add_target()
        ctx.start()
        for _ in range(20):
            rec.add(ctx.wait_snapshot(timeout=1))
    damon.record.write("damon.data", [rec])
    for r in damon.record.read("damon.data"):
        print(r.target_id, len(r.snapshots))

damo writes some numbers as text ("4,096", "0 B", "300 ms"): read() takes
those too. The "libdamon" key (backend, what it sees, pid) is libdamon's own;
damo ignores it.
"""

import json as _json
import os as _os
import tempfile as _tempfile
import zlib as _zlib
from typing import List as _List
from typing import NamedTuple as _NamedTuple
from typing import Optional as _Optional

__all__ = ["Region", "Snapshot", "Record", "read", "write", "loads", "dumps"]


class Region(_NamedTuple):
    """[start, end) with nr_accesses (samples) and age (aggregation intervals)."""
    start: int
    end: int
    nr_accesses: int
    age: int


class Snapshot(_NamedTuple):
    start_ns: int
    end_ns: int
    regions: _List[Region]
    sample_us: _Optional[int] = None       # in force, when it differs from the record's
    damos_stats: _Optional[dict] = None    # nr_tried, sz_tried, nr_applied, sz_applied, ...


class Record:
    """One target's record: intervals (us) and snapshots, oldest first."""

    def __init__(self, target_id=0, sample_us=5000, aggr_us=100000, update_us=1000000,
                 kdamond_idx=0, context_idx=0, snapshots=None, backend=None, sees=None,
                 pid=None):
        self.target_id = target_id
        self.sample_us, self.aggr_us, self.update_us = sample_us, aggr_us, update_us
        self.kdamond_idx, self.context_idx = kdamond_idx, context_idx
        self.snapshots = list(snapshots or [])
        self.backend, self.sees, self.pid = backend, sees, pid

    def add(self, snap, target_idx=None):
        """Append a damon.Snapshot (its regions of @target_idx, default this
        record's target_id), starting where the previous one ended."""
        if target_idx is None:
            target_idx = self.target_id
        end = snap.time_ns
        start = self.snapshots[-1].end_ns if self.snapshots else end - snap.aggr_us * 1000
        regions = [Region(r.start, r.end, r.nr_accesses, r.age) for r in snap
                   if r.target_idx == target_idx]
        self.snapshots.append(Snapshot(start, end, regions, snap.sample_us))
        if self.backend is None:
            self.backend = snap.backend
        return self.snapshots[-1]

    def __repr__(self):
        return (f"Record(target_id={self.target_id}, sample_us={self.sample_us}, "
                f"aggr_us={self.aggr_us}, {len(self.snapshots)} snapshots)")


# ---------------------------------------------------------------------------
# damo's numbers as text

_TIME_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9, "d": 86400 * 10**9}
_SIZES = {"B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30,
          "GiB": 1 << 30, "T": 1 << 40, "TiB": 1 << 40, "P": 1 << 50, "PiB": 1 << 50}


def _quantity(v, units=None, scale=1):
    """A number, or damo's text of one: "4,096", "12.000 KiB", "1 s 500 ms"."""
    if v is None or isinstance(v, (int, float)):
        return v
    text = v.replace(",", "").split()
    total = 0
    i = 0
    while i < len(text):
        num = text[i].rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        unit = text[i][len(num):]
        if not unit and i + 1 < len(text) and not text[i + 1][:1].isdigit():
            i += 1
            unit = text[i]
        if unit and (units is None or unit not in units):
            raise ValueError(f"{v!r} is not a number of the expected unit")
        total += float(num) * (units[unit] if unit else 1) / (scale if unit else 1)
        i += 1
    return int(total) if total == int(total) else total


def _int(v, units=None, scale=1):
    q = _quantity(v, units, scale)
    return None if q is None else int(q)


def _from_obj(obj):
    intervals = obj.get("intervals") or {}
    r = Record(target_id=_int(obj.get("target_id")) or 0,
               sample_us=_int(intervals.get("sample_us"), _TIME_NS, 1000),
               aggr_us=_int(intervals.get("aggr_us"), _TIME_NS, 1000),
               update_us=_int(intervals.get("ops_update_us"), _TIME_NS, 1000),
               kdamond_idx=obj.get("kdamond_idx"), context_idx=obj.get("context_idx"))
    mine = obj.get("libdamon") or {}
    r.backend, r.sees, r.pid = mine.get("backend"), mine.get("sees"), mine.get("pid")
    sample, aggr = r.sample_us or 5000, r.aggr_us or 100000   # damo's defaults
    for s in obj.get("snapshots", []):
        regions = []
        for g in s.get("regions", []):
            acc, age = g.get("nr_accesses") or {}, g.get("age") or {}
            n = _quantity(acc.get("samples"))
            if n is None and acc.get("percent") is not None:
                n = _quantity(acc["percent"]) * (aggr // sample) / 100
            a = _quantity(age.get("aggr_intervals"))
            if a is None and age.get("usec") is not None:
                a = _quantity(age["usec"], _TIME_NS, 1000) / aggr
            regions.append(Region(_int(g["start"], _SIZES), _int(g["end"], _SIZES),
                                  int(n or 0), int(a or 0)))
        snap = Snapshot(_int(s["start_time"], _TIME_NS), _int(s["end_time"], _TIME_NS), regions,
                        _int(s.get("sample_interval_us"), _TIME_NS, 1000), s.get("damos_stats"))
        r.snapshots.append(snap)
    # damo adds a fake last snapshot (one region 0-0) to one-snapshot records
    last = r.snapshots[-1] if len(r.snapshots) >= 2 else None
    if last and len(last.regions) == 1 and last.regions[0].start == last.regions[0].end == 0:
        r.snapshots.pop()
    return r


def _to_obj(r):
    return {
        "kdamond_idx": r.kdamond_idx if r.kdamond_idx is not None else 0,
        "context_idx": r.context_idx if r.context_idx is not None else 0,
        "intervals": {"sample_us": r.sample_us, "aggr_us": r.aggr_us,
                      "ops_update_us": r.update_us,
                      "intervals_goal": {"access_bp": 0, "aggrs": 0, "min_sample_us": 0,
                                         "max_sample_us": 0}},
        "scheme_idx": None,
        "target_id": r.target_id,
        "scheme_filters": [],
        "libdamon": {"backend": r.backend, "sees": r.sees, "pid": r.pid},
        "snapshots": [{
            "start_time": s.start_ns, "end_time": s.end_ns,
            "regions": [{"start": g.start, "end": g.end,
                         "nr_accesses": {"samples": g.nr_accesses, "percent": None},
                         "age": {"usec": None, "aggr_intervals": g.age},
                         "probe_hits": [], "sz_filter_passed": 0} for g in s.regions],
            "total_bytes": sum(g.end - g.start for g in s.regions),
            "damos_stats": s.damos_stats,
            "sample_interval_us": s.sample_us if s.sample_us is not None else r.sample_us,
        } for s in r.snapshots],
        "data_source": "unknown",
    }


def loads(data):
    """Records from the bytes or text of a record file (plain or compressed)."""
    if isinstance(data, (bytes, bytearray)):
        # zlib's header: deflate (CM 8), the first two bytes a multiple of 31
        if len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
            data = _zlib.decompress(data)
        data = data.decode()
    objs = _json.loads(data)
    if not isinstance(objs, list):
        raise ValueError("a record file holds a list of records")
    return [_from_obj(o) for o in objs]


def dumps(records, compressed=False):
    """The bytes of a record file holding @records."""
    text = _json.dumps([_to_obj(r) for r in records], indent=1).encode()
    return _zlib.compress(text) if compressed else text


def read(path):
    """The records of a file damon(1) or damo wrote."""
    with open(path, "rb") as f:
        return loads(f.read())


def write(path, records, compressed=False):
    """Write @records to @path: complete or not at all (a temporary file
    beside it is renamed into place)."""
    data = dumps(records, compressed)
    d = _os.path.dirname(_os.path.abspath(path))
    fd, tmp = _tempfile.mkstemp(dir=d, prefix="." + _os.path.basename(path) + ".")
    try:
        with _os.fdopen(fd, "wb") as f:
            f.write(data)
        _os.replace(tmp, path)
    except BaseException:
        _os.unlink(tmp)
        raise
