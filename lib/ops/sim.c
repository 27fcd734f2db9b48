// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>

#include <damon/damon.h>

#include "sim.h"

struct dm_ops_inst {
	struct dm_sim_model *model;
	uint32_t ops;
	const char *proc_root;
	const struct dm_alloc *alloc;
};

static int sim_open(struct dm_ops_inst **ret, const struct dm_ops_cfg *cfg, struct dm_err *err)
{
	struct dm_ops_inst *in;

	if (!cfg->model)
		return dm_err_set(err, -EINVAL, "sim: no access model given");
	in = dm_calloc(cfg->alloc, 1, sizeof(*in));
	if (!in)
		return dm_err_set(err, -ENOMEM, "sim: out of memory");
	in->model = cfg->model;
	in->ops = cfg->ops;
	in->proc_root = cfg->proc_root;
	in->alloc = cfg->alloc;
	*ret = in;
	return 0;
}

static void sim_close(struct dm_ops_inst *in)
{
	dm_free(in->alloc, in);
}

static int sim_target_init(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_err *err)
{
	return 0;
}

static void sim_target_fini(struct dm_ops_inst *in, struct dm_ops_target *t)
{
}

static int sim_update(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_range *ret,
		      size_t cap, struct dm_err *err)
{
	int n;

	if (in->model->layout) {
		n = in->model->layout(in->model->arg, t->pid, ret, cap);
		if (n == -ESRCH)
			return dm_err_set(err, -ESRCH, "sim: target process %d exited", (int)t->pid);
		return n;
	}
	if (in->ops == DAMON_OPS_VADDR)
		return dm_layout_vaddr(in->proc_root, t->pid, ret, cap, err);
	return dm_layout_fixed(t->fixed, t->nr_fixed, ret, cap);
}

static void sim_prepare(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_region *v,
			size_t n)
{
	in->model->nr_prepared += n;
}

static int sim_check(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_region *v,
		     size_t n)
{
	int hits = 0;

	for (size_t i = 0; i < n; i++) {
		v[i].accessed = in->model->accessed(in->model->arg, t->pid, v[i].sampling_addr);
		hits += v[i].accessed;
	}
	in->model->nr_checked += n;
	return hits;
}

static uint64_t sim_app_cost_ns(struct dm_ops_inst *in)
{
	return in->model->app_cost_ns;
}

const struct dm_ops dm_ops_sim = {
	.name = "sim",
	.sees = DAMON_SEES_READS | DAMON_SEES_WRITES,
	.open = sim_open,
	.close = sim_close,
	.target_init = sim_target_init,
	.target_fini = sim_target_fini,
	.update = sim_update,
	.prepare = sim_prepare,
	.check = sim_check,
	.app_cost_ns = sim_app_cost_ns,
};
