# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""The Python half of fuzz-python.c: one input's bytes become a sequence of
calls of the damon package and of its SWIG module (damon.capi), with
arguments of every kind Python has: ints of any size and sign, bools, None,
floats, strings, bytes, buffers (bytearrays, memoryviews sliced, reversed,
cast to several dimensions), lists and dicts.

The contract checked: the damon package fails only with TypeError,
ValueError or OSError (its documented errors); the raw capi module also with
OverflowError (SWIG's for an int out of a C type's range). Anything else
(SystemError from a C function that returned NULL without an exception,
AttributeError, a crash, a sanitizer report) is a bug: one() lets it
through and the C side aborts.
"""
import damon
from damon import capi

PACKAGE_ERRORS = (TypeError, ValueError, OSError)
CAPI_ERRORS = PACKAGE_ERRORS + (OverflowError,)

NAMES = ["vaddr", "fvaddr", "paddr", "auto", "kernel", "page_idle", "uffd_wp", "soft_dirty",
         "fault", "stat", "pageout", "cold", "hugepage", "migrate_hot", "free_mem_rate",
         "user_input", "anon", "addr", "target", "none", "", "\0", "vaddr\0x", "é"]
EDGES = [0, 1, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
         -2**63 - 1, 2**128, 4096, 3, 10000]
FIELDS_CTX = ["ops", "backend", "flags", "sample_us", "aggr_us", "update_us", "min_nr_regions",
              "max_nr_regions", "cpu_budget_permille", "seed"]
FIELDS_SCHEME = ["action", "min_sz", "max_sz", "min_nr_accesses", "max_nr_accesses", "min_age",
                 "max_age", "quota_ms", "quota_bytes", "target_nid", "wmarks_metric",
                 "wmarks_high", "apply_interval_us", "flags"]
ATTRS = ["sample_us", "aggr_us", "update_us", "min_nr_regions", "max_nr_regions"]


class Input:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def u8(self):
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n):
        b = self.data[self.pos:self.pos + n]
        self.pos += len(b)
        return b

    def pick(self, seq):
        return seq[self.u8() % len(seq)]

    def buffer(self):
        """A buffer-protocol object over some memory, of some shape."""
        b = bytearray(self.take(self.u8()) or b"\0" * (1 + self.u8()))
        how = self.u8() % 6
        if how == 0:
            return b
        m = memoryview(b)
        if how == 1:
            return m[self.u8() % (len(b) + 1):]
        if how == 2:
            return m[::-(1 + self.u8() % 3)]
        if how == 3:
            return m[::1 + self.u8() % 4]
        if how == 4 and len(b) >= 4:
            rows = 1 + self.u8() % 4
            n = len(b) // rows * rows
            return m[:n].cast("B", [rows, n // rows])
        return memoryview(bytes(b))

    def value(self):
        """An argument of any kind."""
        kind = self.u8() % 12
        if kind == 0:
            return self.u8() - 2
        if kind == 1:
            return int.from_bytes(self.take(8), "little", signed=True)
        if kind == 2:
            return (-1) ** self.u8() * (2 ** (63 + self.u8() % 70) + self.u8() - 128)
        if kind == 3:
            return self.pick(EDGES)
        if kind == 4:
            return bool(self.u8() & 1)
        if kind == 5:
            return None
        if kind == 6:
            return self.pick([0.0, -1.5, 1e300, float("nan"), float("inf"), 4096.0])
        if kind == 7:
            return self.pick(NAMES)
        if kind == 8:
            return self.take(self.u8() % 16)
        if kind == 9:
            return self.buffer()
        if kind == 10:
            return [self.u8()] if self.u8() & 1 else (self.u8(),)
        return {"x": self.u8()}


def package_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except PACKAGE_ERRORS:
        return None


def capi_call(fn, *args):
    try:
        return fn(*args)
    except CAPI_ERRORS:
        return None


def one(data):
    inp = Input(data)
    ctxs, targets, schemes, raw = [], [], [], []
    try:
        for _ in range(24):
            if not inp.left():
                break
            op = inp.u8() % 16
            if op == 0 and len(ctxs) < 2:
                kw = {}
                for _ in range(inp.u8() % 4):
                    kw[inp.pick(FIELDS_CTX[:8] + ["manual", "bogus"])] = inp.value()
                c = package_call(damon.Context, **kw)
                if c is not None:
                    ctxs.append(c)
            elif op == 1 and ctxs:
                t = package_call(inp.pick(ctxs).add_target, pid=inp.value())
                if t is not None:
                    targets.append(t)
            elif op == 2 and targets:
                package_call(inp.pick(targets).add_range, inp.value(), inp.value())
            elif op == 3 and ctxs:
                length = None if inp.u8() & 1 else inp.value()
                package_call(inp.pick(ctxs).hotness, inp.value(), length)
            elif op == 4 and targets:
                package_call(inp.pick(targets).hotness, inp.value())
            elif op == 5 and ctxs:
                kw = {inp.pick(FIELDS_SCHEME[1:]): inp.value() for _ in range(inp.u8() % 3)}
                s = package_call(inp.pick(ctxs).add_scheme, inp.value(), **kw)
                if s is not None:
                    schemes.append(s)
            elif op == 6 and schemes:
                s = inp.pick(schemes)
                package_call(s.add_goal, inp.value(), inp.value(), current_value=inp.value())
                package_call(s.set_goal_current, inp.value(), inp.value())
            elif op == 7 and schemes:
                package_call(inp.pick(schemes).add_filter, inp.value(), matching=inp.value(),
                             addr_start=inp.value(), addr_end=inp.value(),
                             target_idx=inp.value())
            elif op == 8 and ctxs:
                package_call(inp.pick(ctxs).set_attrs, **{inp.pick(ATTRS): inp.value()})
            elif op == 9 and ctxs:
                c = inp.pick(ctxs)
                package_call(c.backend_status, inp.value())
                package_call(lambda: (c.attrs, c.status(), c.backend, c.targets, c.schemes))
                package_call(c.snapshot)
            elif op == 10:
                o = capi.damon_ctx_opts()
                for _ in range(inp.u8() % 4):
                    capi_call(setattr, o, inp.pick(FIELDS_CTX), inp.value())
                p = capi_call(capi.damon_ctx_new, o)
                if p is not None:
                    raw.append(p)
            elif op == 11:
                capi_call(capi.damon_py_buffer_range, inp.value())
            elif op == 12:
                capi_call(capi.damon_backend_from_name, inp.value())
                capi_call(capi.damon_backend_name, inp.value())
                package_call(damon.backend_name, inp.value())
            elif op == 13 and raw:
                p = inp.pick(raw)
                a = capi.damos_opts()
                for _ in range(inp.u8() % 4):
                    capi_call(setattr, a, inp.pick(FIELDS_SCHEME), inp.value())
                capi_call(capi.damon_ctx_add_scheme, p, a)
                capi_call(capi.damon_ctx_hotness, p, inp.value(), inp.value())
                capi_call(capi.damon_ctx_add_target, p, inp.value())
            elif op == 14:
                # objects of the wrong kind where a handle goes
                capi_call(inp.pick([capi.damon_ctx_start, capi.damon_ctx_snapshot,
                                    capi.damon_target_pid, capi.damos_get_stats,
                                    capi.damon_snapshot_nr_regions]), inp.value())
            elif op == 15 and ctxs:
                package_call(inp.pick(ctxs).close)
    finally:
        for c in ctxs:
            c.close()
        for p in raw:
            capi.damon_ctx_unref(p)
