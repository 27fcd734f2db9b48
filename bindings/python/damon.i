/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * damon.i - the low-level SWIG module damon.capi: the C API of
 * <damon/damon.h>, function for function, with these conventions:
 *
 *  - one typemap turns a negative int return (-errno) into
 *    OSError(errno, sentence); OSError's constructor picks the subclass
 *    (FileNotFoundError, PermissionError, ...). The sentence is
 *    damon_ctx_errmsg() for calls that record one on their context, a fixed
 *    sentence or strerror() otherwise;
 *  - out-parameters named ret* are not passed: a call with one returns it
 *    (handles as opaque pointers, structs as owned proxies with sz set);
 *  - input structs are created with sz (and for damos_opts the unbounded
 *    maxima) already set;
 *  - the calls that may block (start, stop, commit, pause, resume, step,
 *    unref, probes)
 *    release the GIL.
 *
 * References are not managed here: the `damon` package on top of this
 * module owns handles, keeps a context alive while its targets, schemes
 * and snapshots need it, and is the API to use. This module is not stable.
 */
%module(package="damon", docstring="Raw libdamon C API (SWIG); use the damon package instead.") capi

%{
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <damon/damon.h>

/*
 * The sentence for a failed call. Calls that take a context and record their
 * failures on it get damon_ctx_errmsg(); the others (which keep errmsg
 * untouched, so reading it would show an older failure) get a fixed sentence.
 */
static const char *damon_py_sentence(int err, const damon_ctx *ctx, const char *func)
{
	static const char *const recording[] = {
		"damon_ctx_add_target", "damon_ctx_start", "damon_ctx_stop",
		"damon_ctx_commit", "damon_ctx_step", "damon_ctx_set_attrs",
		"damon_ctx_pause", "damon_ctx_resume",
		"damon_ctx_status", "damon_ctx_backend_status", "damon_ctx_add_scheme",
		"damon_py_ctx_add_cgroup", "damon_cgroup_summary",
		NULL,
	};

	if (err == -ECHILD)
		return "the context was created by the parent process: after fork() the "
		       "child can only free it";
	if (ctx) {
		for (size_t i = 0; recording[i]; i++) {
			const char *msg;

			if (strcmp(func, recording[i]))
				continue;
			msg = damon_ctx_errmsg(ctx);
			if (msg && *msg)
				return msg;
			break;
		}
	}
	if (!strcmp(func, "damon_ctx_new") && err == -EINVAL)
		return "invalid context options: unknown ops, backend or flag, sample_us above "
		       "aggr_us, an interval of 0, min_nr_regions below 3 or above "
		       "max_nr_regions";
	if (!strcmp(func, "damon_ctx_snapshot") && err == -EAGAIN)
		return "no snapshot yet: the first aggregation interval has not ended";
	if (!strcmp(func, "damon_ctx_hotness") || !strcmp(func, "damon_target_hotness")) {
		if (err == -EAGAIN)
			return "no snapshot yet (or a publish was interrupted on this thread): ask "
			       "again later";
		if (err == -ENOENT)
			return "no monitored region overlaps the range";
		if (err == -EINVAL)
			return "the range is empty or wraps around the address space";
	}
	if (!strcmp(func, "damon_probe") && err == -EINVAL)
		return "unknown ops or backend, or a negative pid";
	if (!strcmp(func, "damon_backend_from_name") && err == -EINVAL)
		return "unknown backend name";
	if (!strcmp(func, "damos_add_goal") && err == -EINVAL)
		return "invalid goal: unknown metric or target_value 0";
	if (!strcmp(func, "damos_set_goal_current") && err == -EINVAL)
		return "no user_input goal of this scheme has that index";
	if (!strcmp(func, "damos_add_filter") && err == -EINVAL)
		return "invalid filter: unknown type, addr_start >= addr_end or min_sz > max_sz";
	if (!strcmp(func, "damon_snapshot_region") && err == -ERANGE)
		return "region index out of range";
	return strerror(-err);
}

/* Raise OSError(errno, sentence): OSError.__new__ picks the subclass. */
static void damon_py_raise(int err, const damon_ctx *ctx, const char *func)
{
	PyObject *args, *exc;

	args = Py_BuildValue("(is)", -err, damon_py_sentence(err, ctx, func));
	if (!args)
		return;
	exc = PyObject_Call(PyExc_OSError, args, NULL);
	Py_DECREF(args);
	if (!exc)
		return;
	PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	Py_DECREF(exc);
}

/* The context a wrapped call's first argument is, or NULL. */
#define DAMON_PY_ERRCTX(a)                                                        \
	_Generic((a), damon_ctx * : (const damon_ctx *)(uintptr_t)(a),             \
		 const damon_ctx * : (const damon_ctx *)(uintptr_t)(a),            \
		 default : (const damon_ctx *)NULL)
%}

%include <stdint.i>
typedef int pid_t;

/* ------------------------------------------------------------------------ */
/* -errno -> OSError, for every int-returning call                          */
/* ------------------------------------------------------------------------ */

%typemap(out) int {
	if ($1 < 0) {
		damon_py_raise($1, DAMON_PY_ERRCTX(arg1), "$symname");
		SWIG_fail;
	}
	$result = PyLong_FromLong($1);
}
/* ...but a status field holding a -errno is data, not a failure, nor is a
 * node number that is -1 when unknown. */
%typemap(out) int32_t error {
	$result = PyLong_FromLong($1);
}
%typemap(out) int32_t node {
	$result = PyLong_FromLong($1);
}

/* ------------------------------------------------------------------------ */
/* Out-parameters                                                           */
/* ------------------------------------------------------------------------ */

/* A handle out-parameter: the call returns the pointer (no reference
 * management: the damon package does it). */
%define DAMON_OUT_HANDLE(TYPE)
%typemap(in, numinputs=0) TYPE **ret (TYPE *tmp = NULL) {
	$1 = &tmp;
}
%typemap(argout) TYPE **ret {
	Py_XDECREF($result);
	$result = SWIG_NewPointerObj(SWIG_as_voidptr(tmp$argnum), $*1_descriptor, 0);
}
%enddef

DAMON_OUT_HANDLE(damon_ctx)
DAMON_OUT_HANDLE(damon_target)
DAMON_OUT_HANDLE(damos)
DAMON_OUT_HANDLE(damon_snapshot)
DAMON_OUT_HANDLE(damon_cgroup)

/* A struct out-parameter: allocated with sz set, returned owned by Python. */
%define DAMON_OUT_STRUCT(TYPE)
%typemap(in, numinputs=0) struct TYPE *ret (struct TYPE *tmp = NULL) {
	tmp = calloc(1, sizeof(*tmp));
	if (!tmp) {
		PyErr_NoMemory();
		SWIG_fail;
	}
	tmp->sz = sizeof(*tmp);
	$1 = tmp;
}
%typemap(argout) struct TYPE *ret {
	Py_XDECREF($result);
	$result = SWIG_NewPointerObj(SWIG_as_voidptr(tmp$argnum), $1_descriptor, SWIG_POINTER_OWN);
	tmp$argnum = NULL;
}
%typemap(freearg) struct TYPE *ret {
	free(tmp$argnum);
}
%enddef

DAMON_OUT_STRUCT(damon_attrs)
DAMON_OUT_STRUCT(damon_region)
DAMON_OUT_STRUCT(damon_hotness)
DAMON_OUT_STRUCT(damon_snapshot_info)
DAMON_OUT_STRUCT(damon_backend_status)
DAMON_OUT_STRUCT(damon_ctx_status)
DAMON_OUT_STRUCT(damos_stats)
DAMON_OUT_STRUCT(damos_quota_state)
DAMON_OUT_STRUCT(damon_cgroup_summary)

%typemap(in, numinputs=0) uint64_t *ret_next_us (uint64_t tmp = 0) {
	$1 = &tmp;
}
%typemap(argout) uint64_t *ret_next_us {
	Py_XDECREF($result);
	$result = PyLong_FromUnsignedLongLong(tmp$argnum);
}

/* ------------------------------------------------------------------------ */
/* Calls that may block release the GIL                                     */
/* ------------------------------------------------------------------------ */

%define DAMON_NOGIL(FUNC)
%exception FUNC {
	Py_BEGIN_ALLOW_THREADS
	$action
	Py_END_ALLOW_THREADS
}
%enddef

DAMON_NOGIL(damon_ctx_unref)
DAMON_NOGIL(damon_ctx_add_target)
DAMON_NOGIL(damon_ctx_start)
DAMON_NOGIL(damon_ctx_stop)
DAMON_NOGIL(damon_ctx_commit)
DAMON_NOGIL(damon_ctx_step)
DAMON_NOGIL(damon_ctx_pause)
DAMON_NOGIL(damon_ctx_resume)
DAMON_NOGIL(damon_ctx_status)
DAMON_NOGIL(damon_ctx_backend_status)
DAMON_NOGIL(damon_probe)

/* ------------------------------------------------------------------------ */
/* What is not wrapped                                                      */
/* ------------------------------------------------------------------------ */

/* An array argument: damon_py_target_set_ranges() takes a Python sequence. */
%ignore damon_target_set_ranges;
%ignore damon_addr_range;

/* cgroups: damon_py_ctx_add_cgroup() takes the path or fd, and
 * damon_py_cgroup_members() returns a list. */
%ignore damon_ctx_add_cgroup;
%ignore damon_cgroup_opts;
%ignore damon_cgroup_members;
%ignore damon_cgroup_summary::reserved;

/* C conveniences Python has no use for. */
%ignore damon_ctx_unrefp;
%ignore damon_snapshot_unrefp;
%ignore damos_opts_init;      /* the damos_opts constructor calls it */
/* Callbacks, allocator hooks and borrowed strings: not from Python (a log
 * callback would have to take the GIL on the monitor thread). */
%ignore damon_ctx_opts::sysfs_root;
%ignore damon_ctx_opts::proc_root;
%ignore damon_ctx_opts::log_fn;
%ignore damon_ctx_opts::log_userdata;
%ignore damon_ctx_opts::malloc_fn;
%ignore damon_ctx_opts::free_fn;
%ignore damon_ctx_opts::alloc_userdata;
%ignore damon_log_fn;
%ignore damon_malloc_fn;
%ignore damon_free_fn;
%ignore damon_hotness::reserved;
%ignore damon_backend_status::reserved;
%ignore damon_ctx_status::reserved;
/* A borrowed string the library copies: a memcg filter is for the C API. */
%ignore damos_filter_opts::memcg_path;

/* sz is set by the constructors and the out-parameter typemaps. */
%immutable damon_ctx_opts::sz;
%immutable damon_attrs::sz;
%immutable damos_opts::sz;
%immutable damon_region::sz;
%immutable damon_hotness::sz;
%immutable damon_snapshot_info::sz;
%immutable damon_backend_status::sz;
%immutable damon_ctx_status::sz;
%immutable damos_stats::sz;
%immutable damos_goal_opts::sz;
%immutable damos_filter_opts::sz;
%immutable damos_quota_state::sz;
%immutable damon_cgroup_summary::sz;

/* Input structs come with sz (and the unbounded maxima) set. */
%extend damon_ctx_opts {
	damon_ctx_opts()
	{
		struct damon_ctx_opts *o = calloc(1, sizeof(*o));

		if (o)
			o->sz = sizeof(*o);
		return o;
	}
}
%extend damon_attrs {
	damon_attrs()
	{
		struct damon_attrs *a = calloc(1, sizeof(*a));

		if (a)
			a->sz = sizeof(*a);
		return a;
	}
}
%extend damos_opts {
	damos_opts()
	{
		struct damos_opts *o = calloc(1, sizeof(*o));

		if (o)
			damos_opts_init(o);
		return o;
	}
}

%extend damos_goal_opts {
	damos_goal_opts()
	{
		struct damos_goal_opts *o = calloc(1, sizeof(*o));

		if (o)
			o->sz = sizeof(*o);
		return o;
	}
}
%extend damos_filter_opts {
	damos_filter_opts()
	{
		struct damos_filter_opts *o = calloc(1, sizeof(*o));

		if (o)
			o->sz = sizeof(*o);
		return o;
	}
}

/* Three structs share their names with the calls that fill them. */
%rename(damon_ctx_status_t, %$isclass) damon_ctx_status;
%rename(damon_cgroup_summary_t, %$isclass) damon_cgroup_summary;
%rename(damon_snapshot_info_t, %$isclass) damon_snapshot_info;

/*
 * Docstrings come from the header's kernel-doc comments (swig -doxygen).
 * kernel-doc writes parameters as @name, which doxygen would read as
 * commands: each becomes its plain name.
 */
%define DAMON_DOC_PARAM(NAME)
%feature("doxygen:alias:NAME") "NAME"
%enddef
DAMON_DOC_PARAM(ctx)
DAMON_DOC_PARAM(ret)
DAMON_DOC_PARAM(opts)
DAMON_DOC_PARAM(pid)
DAMON_DOC_PARAM(start)
DAMON_DOC_PARAM(end)
DAMON_DOC_PARAM(t)
DAMON_DOC_PARAM(s)
DAMON_DOC_PARAM(backend)
DAMON_DOC_PARAM(ops)
DAMON_DOC_PARAM(idx)
DAMON_DOC_PARAM(addr)
DAMON_DOC_PARAM(len)
DAMON_DOC_PARAM(ret_next_us)
DAMON_DOC_PARAM(attrs)
DAMON_DOC_PARAM(p)
DAMON_DOC_PARAM(cg)
DAMON_DOC_PARAM(nr)

%include "damon/damon.h"

/* A macro naming an enum constant, which SWIG does not wrap by itself; the
 * C compiler still sees the header's macro. */
#undef DAMON_BACKEND_MAX
%constant int DAMON_BACKEND_MAX = DAMON_BACKEND_MAX;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

%inline %{
/*
 * damon_py_buffer_range() - (address, length) of the memory behind a
 * buffer-protocol object (bytearray, mmap, memoryview, numpy array, ...):
 * the span from its lowest to its highest byte, for strided views too.
 */
PyObject *damon_py_buffer_range(PyObject *obj)
{
	Py_buffer view;
	uintptr_t lo, hi;

	if (PyObject_GetBuffer(obj, &view, PyBUF_STRIDES) < 0) {
		PyErr_Clear();
		if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
			return NULL;
	}
	lo = hi = (uintptr_t)view.buf;
	if (view.ndim == 0 || !view.shape || !view.strides) {
		hi = lo + (uintptr_t)view.len;
	} else {
		int empty = 0;

		hi = lo + (uintptr_t)view.itemsize;
		for (int i = 0; i < view.ndim; i++) {
			Py_ssize_t span;

			if (view.shape[i] == 0) {
				empty = 1;
				break;
			}
			span = (view.shape[i] - 1) * view.strides[i];
			if (span < 0)
				lo -= (uintptr_t)-span;
			else
				hi += (uintptr_t)span;
		}
		if (empty)
			hi = lo;
	}
	PyBuffer_Release(&view);
	return Py_BuildValue("(KK)", (unsigned long long)lo, (unsigned long long)(hi - lo));
}
%}

%inline %{
/*
 * damon_py_snapshot_regions() - every region of @s as a list of tuples
 * (start, end, nr_accesses, age, access_rate_bp, target_idx), in one call.
 */
PyObject *damon_py_snapshot_regions(const damon_snapshot *s)
{
	size_t n = damon_snapshot_nr_regions(s);
	PyObject *list = PyList_New((Py_ssize_t)n);

	if (!list)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		struct damon_region r = { .sz = sizeof(r) };
		PyObject *item;
		int err = damon_snapshot_region(s, i, &r);

		if (err < 0) {
			Py_DECREF(list);
			damon_py_raise(err, NULL, "damon_snapshot_region");
			return NULL;
		}
		item = Py_BuildValue("(KKIIIIIIIiIIK)", (unsigned long long)r.start,
				     (unsigned long long)r.end, (unsigned int)r.nr_accesses,
				     (unsigned int)r.age, (unsigned int)r.access_rate_bp,
				     (unsigned int)r.target_idx, (unsigned int)r.nr_reads,
				     (unsigned int)r.nr_writes, (unsigned int)r.write_bp,
				     (int)r.node, (unsigned int)r.node_bp, (unsigned int)r.nr_cpus,
				     (unsigned long long)r.cpus);
		if (!item) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, item);
	}
	return list;
}
%}

%inline %{
/*
 * damon_py_target_set_ranges() - damon_target_set_ranges() with the ranges
 * as a sequence of (start, end) pairs of ints. None, or OSError with the
 * call's -errno (the damon package puts the context's sentence in it).
 */
PyObject *damon_py_target_set_ranges(damon_target *t, PyObject *ranges)
{
	PyObject *seq = PySequence_Fast(ranges, "ranges must be a sequence of (start, end) pairs");
	struct damon_addr_range *v;
	Py_ssize_t n;
	int err;

	if (!seq)
		return NULL;
	n = PySequence_Fast_GET_SIZE(seq);
	v = calloc(n ? (size_t)n : 1, sizeof(*v));
	if (!v) {
		Py_DECREF(seq);
		return PyErr_NoMemory();
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *pair = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, i),
						 "each range must be a (start, end) pair");

		if (pair && PySequence_Fast_GET_SIZE(pair) != 2)
			PyErr_SetString(PyExc_TypeError, "each range must be a (start, end) pair");
		else if (pair) {
			v[i].start = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(pair, 0));
			if (!PyErr_Occurred())
				v[i].end = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(pair, 1));
		}
		Py_XDECREF(pair);
		if (PyErr_Occurred()) {
			free(v);
			Py_DECREF(seq);
			return NULL;
		}
	}
	Py_DECREF(seq);
	err = damon_target_set_ranges(t, v, (size_t)n);
	free(v);
	if (err < 0) {
		damon_py_raise(err, NULL, "damon_target_set_ranges");
		return NULL;
	}
	Py_RETURN_NONE;
}
%}

%inline %{
/*
 * damon_py_ctx_add_cgroup() - damon_ctx_add_cgroup() with the cgroup given
 * by @path, or when it is None by the open directory @fd.
 */
int damon_py_ctx_add_cgroup(damon_ctx *ctx, const char *path, int fd, damon_cgroup **ret)
{
	struct damon_cgroup_opts o = { .sz = sizeof(o), .path = path, .fd = fd };

	return damon_ctx_add_cgroup(ctx, &o, ret);
}

/*
 * damon_py_cgroup_members() - the member targets followed now, as a list of
 * target pointers (the damon package wraps them).
 */
PyObject *damon_py_cgroup_members(damon_cgroup *cg)
{
	damon_target **v = NULL;
	PyObject *list;
	int n;

	for (;;) {
		int room;

		n = damon_cgroup_members(cg, NULL, 0);
		if (n < 0)
			break;
		room = n + 8; /* members may join in between */
		free(v);
		v = calloc((size_t)room, sizeof(*v));
		if (!v)
			return PyErr_NoMemory();
		n = damon_cgroup_members(cg, v, (size_t)room);
		if (n != -ERANGE)
			break;
	}
	if (n < 0) {
		free(v);
		damon_py_raise(n, NULL, "damon_cgroup_members");
		return NULL;
	}
	list = PyList_New(n);
	for (int i = 0; list && i < n; i++)
		PyList_SET_ITEM(list, i,
				SWIG_NewPointerObj(SWIG_as_voidptr(v[i]), SWIGTYPE_p_damon_target, 0));
	free(v);
	return list;
}
%}
