// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Python argument conversion (bindings/python): the SWIG wrapper's
 * converters and typemaps (damon.i), its buffer helper and the damon
 * package's checks, driven by libFuzzer through an embedded interpreter.
 *
 * Why this way: what can corrupt memory there is C (the generated wrapper,
 * the typemaps, damon_py_buffer_range() walking strided buffers, the library
 * behind them); only code running in this process, built with the
 * sanitizers and libFuzzer's counters, is seen by both. So the interpreter
 * runs here, and fuzz_python.py turns each input into calls with arguments
 * of every kind; a random test in pytest would meet the same code blind,
 * without coverage to steer it and without ASan to tell a bad read.
 *
 * Properties (fuzz_python.py): only the documented exceptions come out of
 * the package (TypeError, ValueError, OSError) and of the raw module (also
 * OverflowError); no crash, no sanitizer report.
 */
#include <Python.h>

#include "fuzz.h"

static PyObject *one;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	PyObject *mod;

	Py_InitializeEx(0);
	if (PyRun_SimpleString("import sys; sys.path[:0] = ['" DM_PYPATH "', '" DM_FUZZDIR "']"))
		abort();
	mod = PyImport_ImportModule("fuzz_python");
	if (!mod) {
		PyErr_Print();
		abort();
	}
	one = PyObject_GetAttrString(mod, "one");
	if (!one)
		abort();
	Py_DECREF(mod);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PyObject *b = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size), *r;

	if (!b)
		abort();
	r = PyObject_CallOneArg(one, b);
	Py_DECREF(b);
	if (!r) {
		fprintf(stderr, "fuzz-python: an exception the API does not document:\n");
		PyErr_Print();
		abort();
	}
	Py_DECREF(r);
	return 0;
}
