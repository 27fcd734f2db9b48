// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/* Which table runs a backend number (backend.h). */
#include "backend.h"

const struct dm_backend_ops *dm_backend_get(int backend, bool sim)
{
	if (sim)
		return &dm_backend_engine;
	switch (backend) {
	case DAMON_BACKEND_KERNEL:
		return &dm_backend_kernel;
	case DAMON_BACKEND_PAGE_IDLE:
	case DAMON_BACKEND_UFFD_WP:
	case DAMON_BACKEND_SOFT_DIRTY:
	case DAMON_BACKEND_FAULT:
		return &dm_backend_engine;
	default:
		return NULL;
	}
}

bool dm_backend_sees_others(int backend)
{
	/* uffd_wp and fault arm the calling process's own memory */
	return backend != DAMON_BACKEND_UFFD_WP && backend != DAMON_BACKEND_FAULT;
}
