// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The test-only fault injection hook (fail.h). Built only with
 * -Dfault_injection=true; a release build compiles this file to nothing.
 */
#include "fail.h"

#ifdef DM_FAULT_INJECTION

/* Set by the linker around the section the DM_FAIL() sites are put in. */
extern struct dm_fail_site __start_dm_fail_sites[];
extern struct dm_fail_site __stop_dm_fail_sites[];

static struct dm_fail_site *armed;
static int armed_err;

bool dm_fail_hit(struct dm_fail_site *s)
{
	struct dm_fail_site *want = s;

	__atomic_fetch_add(&s->hits, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&armed, __ATOMIC_ACQUIRE) != s)
		return false;
	/* Only one thread takes the failure: it fails once. */
	if (!__atomic_compare_exchange_n(&armed, &want, NULL, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return false;
	__atomic_fetch_add(&s->fired, 1, __ATOMIC_RELAXED);
	errno = armed_err ? armed_err : s->err;
	return true;
}

size_t dm_fail_sites(struct dm_fail_site **ret)
{
	*ret = __start_dm_fail_sites;
	return (size_t)(__stop_dm_fail_sites - __start_dm_fail_sites);
}

void dm_fail_reset(void)
{
	struct dm_fail_site *v;
	size_t n = dm_fail_sites(&v);

	__atomic_store_n(&armed, NULL, __ATOMIC_RELEASE);
	for (size_t i = 0; i < n; i++) {
		v[i].hits = 0;
		v[i].fired = 0;
	}
}

void dm_fail_arm(struct dm_fail_site *s, int err)
{
	armed_err = err;
	__atomic_store_n(&armed, s, __ATOMIC_RELEASE);
}

#endif
