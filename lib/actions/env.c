// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The DAMOS engine's environment on a real system: metrics from /proc and
 * /sys (roots injectable for tests), actions through lib/actions.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../util/proc.h"
#include "actions.h"

/* A whole decimal number at p (blanks before it skipped); its end or NULL. */
static const char *parse_dec(const char *p, uint64_t *ret)
{
	uint64_t v = 0;
	size_t n = 0;

	p += strspn(p, " \t");
	for (; p[n] >= '0' && p[n] <= '9'; n++) {
		uint64_t d = (uint64_t)(p[n] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	if (!n)
		return NULL;
	*ret = v;
	return p + n;
}

int dm_meminfo_field(const char *text, const char *key, uint64_t *ret)
{
	const char *p = text;
	size_t kl = strlen(key);

	if (!kl)
		return -ENOENT;
	while ((p = strstr(p, key))) {
		if ((p == text || p[-1] == '\n' || p[-1] == ' ') && p[kl] == ':') {
			uint64_t v;

			if (!parse_dec(p + kl + 1, &v) || v > UINT64_MAX / 1024)
				return -EINVAL;
			*ret = v * 1024;
			return 0;
		}
		p += kl;
	}
	return -ENOENT;
}

int dm_free_rate(uint64_t total, uint64_t free, uint32_t *ret)
{
	if (!total)
		return -EINVAL;
	/* free > total: a file read while it changed; 128 bits: no overflow */
	*ret = free >= total ? 1000 : (uint32_t)((unsigned __int128)free * 1000 / total);
	return 0;
}

int dm_psi_some_total(const char *text, uint64_t *ret)
{
	const char *p = strstr(text, "some ");
	const char *end = p ? strchr(p, '\n') : NULL;

	/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=N": on the some line */
	p = p ? strstr(p, " total=") : NULL;
	if (!p || (end && p > end) || !parse_dec(p + 7, ret))
		return -EINVAL;
	return 0;
}

int dm_read_free_mem_rate(const char *proc_root, uint32_t *ret)
{
	char path[256], buf[8192];
	uint64_t total, fr;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/meminfo", proc_root ? proc_root : DM_PROC_ROOT_DEFAULT);
	n = dm_proc_read_file(path, buf, sizeof(buf));
	if (n < 0 && n != -ERANGE)
		return (int)n;
	if (dm_meminfo_field(buf, "MemTotal", &total) || dm_meminfo_field(buf, "MemFree", &fr))
		return -EINVAL;
	return dm_free_rate(total, fr, ret);
}

int dm_read_psi_some_us(const char *proc_root, uint64_t *ret)
{
	char path[256], buf[512];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/pressure/memory",
		 proc_root ? proc_root : DM_PROC_ROOT_DEFAULT);
	n = dm_proc_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return dm_psi_some_total(buf, ret);
}

int dm_read_node_mem(const char *sysfs_root, uint32_t nid, uint64_t *ret_total,
		     uint64_t *ret_free)
{
	char path[256], buf[8192];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/devices/system/node/node%u/meminfo",
		 sysfs_root ? sysfs_root : "/sys", nid);
	n = dm_proc_read_file(path, buf, sizeof(buf));
	if (n < 0 && n != -ERANGE)
		return (int)n;
	/* "Node 0 MemTotal:       2014732 kB" */
	if (dm_meminfo_field(buf, "MemTotal", ret_total) ||
	    dm_meminfo_field(buf, "MemFree", ret_free))
		return -EINVAL;
	return 0;
}

static int env_free_mem_rate(void *arg, uint32_t *ret)
{
	return dm_read_free_mem_rate(((struct dm_actions_env *)arg)->proc_root, ret);
}

static int env_psi(void *arg, uint64_t *ret)
{
	return dm_read_psi_some_us(((struct dm_actions_env *)arg)->proc_root, ret);
}

static int env_node_mem(void *arg, uint32_t nid, uint64_t *total, uint64_t *fr)
{
	return dm_read_node_mem(((struct dm_actions_env *)arg)->sysfs_root, nid, total, fr);
}

static uint64_t env_now_ns(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static struct dm_action_target *target_of(struct dm_actions_env *e, pid_t pid)
{
	for (size_t i = 0; i < e->nr_targets; i++)
		if (e->targets[i].pid == pid)
			return &e->targets[i];
	if (e->nr_targets == e->cap_targets) {
		size_t cap = e->cap_targets ? e->cap_targets * 2 : 4;
		struct dm_action_target *v = dm_realloc(e->alloc, e->targets,
							e->cap_targets * sizeof(*v),
							cap * sizeof(*v));

		if (!v)
			return NULL;
		e->targets = v;
		e->cap_targets = cap;
	}
	dm_action_target_init(&e->targets[e->nr_targets], pid, e->proc_root);
	return &e->targets[e->nr_targets++];
}

static int64_t env_apply(void *arg, const struct dm_scheme *s, const struct dm_scheme_target *t,
			 uint64_t start, uint64_t end, uint64_t *ret_passed, struct dm_err *err)
{
	struct dm_actions_env *e = arg;
	struct dm_action_target *at = target_of(e, t->pid);

	if (!at)
		return dm_err_set(err, -ENOMEM, "out of memory applying a scheme");
	return dm_action_apply_filtered(at, s->opts.action, start, end, s->opts.target_nid,
					s->filters, s->nr_filters, ret_passed, err);
}

static void env_release(void *arg, const struct dm_scheme_target *t, uint64_t start,
			uint64_t end)
{
	struct dm_actions_env *e = arg;

	if (e->release)
		e->release(e->release_arg, t, start, end);
}

void dm_actions_env_init(struct dm_actions_env *e, const char *proc_root, const char *sysfs_root,
			 const struct dm_alloc *alloc)
{
	memset(e, 0, sizeof(*e));
	e->proc_root = proc_root;
	e->sysfs_root = sysfs_root;
	e->alloc = alloc;
	e->env.free_mem_rate = env_free_mem_rate;
	e->env.psi_some_us = env_psi;
	e->env.node_mem = env_node_mem;
	e->env.apply = env_apply;
	e->env.release = env_release;
	e->env.now_ns = env_now_ns;
	e->env.arg = e;
}

void dm_actions_env_fini(struct dm_actions_env *e)
{
	for (size_t i = 0; i < e->nr_targets; i++)
		dm_action_target_fini(&e->targets[i]);
	dm_free(e->alloc, e->targets);
	e->targets = NULL;
	e->nr_targets = e->cap_targets = 0;
}
