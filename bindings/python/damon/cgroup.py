# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""cgroup v2 targets: Context.add_cgroup() follows the processes of a cgroup
(damon_ctx_add_cgroup()). Its members are ordinary Targets, added and
dropped as processes enter and leave the cgroup; a Cgroup tells who they are
now and sums their part of a snapshot."""

import collections as _collections
import weakref as _weakref

from . import capi as _capi

CgroupSummary = _collections.namedtuple(
    "CgroupSummary", "nr_members nr_targets nr_joined nr_left nr_regions bytes "
                     "accessed_bytes access_rate_bp snapshot_seq")
CgroupSummary.__doc__ = """A cgroup's part of one snapshot (struct damon_cgroup_summary):
members followed now, member targets with regions in the snapshot, processes
that joined and left since it was added, and the members' regions summed
(bytes, bytes accessed, size-weighted access_rate_bp)."""


# The Cgroup objects made by add(), by the address of their handle, so that
# Target.cgroup answers with the same object (and its path).
_made = _weakref.WeakValueDictionary()


class Cgroup:
    """A followed cgroup of a Context (Context.add_cgroup())."""

    __slots__ = ("_h", "_ptr", "path", "__weakref__")

    def __init__(self, handle, ptr, path):
        self._h = handle
        self._ptr = ptr
        self.path = path
        """The path given (None when given by fd)."""

    @property
    def members(self):
        """The member Targets followed now (each with its pid)."""
        from . import Target

        with self._h.lock:
            self._h.get()
            ptrs = _capi.damon_py_cgroup_members(self._ptr)
            return [Target(self._h, p) for p in ptrs]

    def summary(self, snapshot=None):
        """CgroupSummary of snapshot (a Snapshot; None: the newest).
        BlockingIOError (EAGAIN) before the first snapshot."""
        with self._h.lock:
            self._h.get()
            s = _capi.damon_cgroup_summary(self._ptr,
                                           None if snapshot is None else snapshot._ptr)
        return CgroupSummary(s.nr_members, s.nr_targets, s.nr_joined, s.nr_left, s.nr_regions,
                             s.bytes, s.accessed_bytes, s.access_rate_bp, s.snapshot_seq)

    def __repr__(self):
        return f"<damon.Cgroup {self.path!r}>"


def add(ctx, path, fd):
    """Context.add_cgroup()."""
    if (path is None) == (fd is None):
        raise TypeError("add_cgroup() takes a path or an fd (one of them)")
    if path is not None:
        path = str(path)
        fd = -1
    elif not isinstance(fd, int) or fd < 0:
        raise ValueError(f"fd must be an open directory fd, not {fd!r}")
    ptr = ctx._call(_capi.damon_py_ctx_add_cgroup, path, fd)
    cg = Cgroup(ctx._h, ptr, path)
    _made[int(ptr)] = cg
    return cg


def of_target(handle, target_ptr):
    """Target.cgroup: the Cgroup a member target belongs to, or None
    (damon_target_cgroup())."""
    ptr = _capi.damon_target_cgroup(target_ptr)
    if ptr is None:
        return None
    return _made.get(int(ptr)) or Cgroup(handle, ptr, None)
