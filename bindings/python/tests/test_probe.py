# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""damon.probe() and Context.probe(): every backend judged, with a reason."""

import damon
import pytest


@pytest.mark.parametrize("ops", damon.OPS)
def test_probe_lists_every_backend(ops):
    got = damon.probe(ops=ops, pid=0)
    assert [st.name for st in got] == list(damon.BACKENDS), f"probe({ops!r}) gave {got}"
    assert damon.BACKENDS == ("kernel", "page_idle", "uffd_wp", "soft_dirty", "fault")
    for st in got:
        assert isinstance(st, damon.BackendStatus)
        assert isinstance(st.usable, bool)
        assert isinstance(st.reason, str) and st.reason, f"{st.name}: empty reason"
        assert st.reason.startswith(st.name + ":"), f"reason does not name its backend: {st}"
        name, usable, reason = st          # a plain 3-tuple too
        assert (name, usable, reason) == (st.name, st.usable, st.reason)


def test_probe_defaults_are_vaddr_self():
    assert damon.probe() == damon.probe("vaddr", 0)


def test_probe_argument_errors():
    with pytest.raises(ValueError, match="unknown ops"):
        damon.probe(ops="vaddrx")
    with pytest.raises(ValueError):
        damon.probe(ops=7)
    with pytest.raises(ValueError):
        damon.probe(pid=-1)
    with pytest.raises(TypeError):
        damon.probe(pid="1")


def test_context_probe_matches_backends():
    with damon.Context() as ctx:
        assert ctx.backend == "auto"
        got = ctx.probe()
        assert [st.name for st in got] == list(damon.BACKENDS)
        for st in got:
            assert st.reason, st
            assert ctx.backend_status(st.name) == st
        with pytest.raises(ValueError):
            ctx.backend_status("auto")
        with pytest.raises(ValueError, match="unknown backend"):
            ctx.backend_status("uffd")


def test_context_probe_after_start_records_auto(monitorable):
    with damon.Context() as ctx:
        ctx.add_target()
        ctx.start()
        assert ctx.backend == monitorable
        st = ctx.backend_status(ctx.backend)
        assert st.usable, st
        assert ctx.probe()[damon.BACKENDS.index(ctx.backend)] == st
