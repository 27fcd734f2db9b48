# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Shared fixtures of the Python twins of the C API tests."""

import damon
import pytest


def _self_backend():
    """The backend AUTO would pick to monitor this process, or None."""
    for st in damon.probe("vaddr", 0):
        if st.usable:
            return st.name
    return None


@pytest.fixture(scope="session")
def monitorable():
    """Skip (saying why) unless some backend can monitor this process."""
    if _self_backend() is None:
        reasons = "; ".join(st.reason for st in damon.probe("vaddr", 0))
        pytest.skip(f"no backend can monitor this process here: {reasons}")
    return _self_backend()


def first_snapshot(ctx, timeout=5.0):
    """Wait for a context's first snapshot; fail saying so if none comes."""
    snap = ctx.wait_snapshot(timeout=timeout)
    assert snap is not None, f"no snapshot within {timeout} s; status {ctx.status()}"
    return snap
