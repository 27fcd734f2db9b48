// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Snapshots from the damon:damon_aggregated tracepoint.
 *
 * kdamond emits one event per region at the end of each aggregation,
 * target by target in the context's order; an event carries the target's
 * position (not an id), the number of regions that target has, and the
 * region's start, end, nr_accesses and age. tracefs is global and other
 * kdamonds emit the same event, so the event is opened with
 * perf_event_open() bound to our kdamond's pid: only its events reach our
 * ring buffer. Field offsets come from the event's format file, not from a
 * struct of ours. A target's block is complete after nr_regions events; an
 * aggregation is complete after the last target's block (or when the next
 * aggregation begins, should the kernel have dropped a target).
 *
 * Pid namespaces: kdamonds/N/pid prints the kdamond's pid in the initial
 * pid namespace, and perf_event_open() looks its pid argument up in the
 * caller's. Kthreads exist only in the initial namespace, so from a child
 * namespace (a container) the kdamond cannot be bound at all, and the same
 * number may name an unrelated task of that namespace: the stream would
 * then follow that task and never carry a record. dm_ktrace_kdamond_visible()
 * tells the cases apart before anything is bound.
 *
 * Waking (k->wake_epfd >= 0): the event wakes its poll waiters on every
 * record (wakeup_events = 1), and its fd joins the runner's epoll set, so
 * the library thread, or in manual mode the caller polling damon_ctx_fd(),
 * steps as soon as an aggregation's records land, not when a timer guesses
 * they have.
 */
#include <errno.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kernel_int.h"
#include "../util/proc.h"
#include "../util/fail.h"

/* PF_KTHREAD of include/linux/sched.h: the flags field of /proc/PID/stat */
#define DM_PF_KTHREAD 0x00200000u

static const char *const event_dirs[] = {
	"kernel/tracing/events/damon/damon_aggregated",
	"kernel/debug/tracing/events/damon/damon_aggregated",
};

/* A whole decimal number of at most UINT32_MAX, up to ';' or the end. */
static bool parse_u32(const char *p, uint32_t *ret)
{
	uint64_t v = 0;
	size_t n = 0;

	for (; p[n] >= '0' && p[n] <= '9'; n++) {
		v = v * 10 + (uint64_t)(p[n] - '0');
		if (v > UINT32_MAX)
			return false;
	}
	if (!n || (p[n] && p[n] != ';'))
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* One "field:TYPE NAME;\toffset:N;\tsize:N;\tsigned:N;" line of a format file. */
static bool parse_field(const char *line, char *name, size_t name_sz, struct dm_kfield *f)
{
	const char *semi, *p, *o, *s;
	size_t len;

	p = strstr(line, "field:");
	semi = p ? strchr(p, ';') : NULL;
	o = semi ? strstr(semi, "offset:") : NULL;
	s = o ? strstr(o, "size:") : NULL;
	if (!s)
		return false;
	/* the name is the last word before ';' (arrays: "NAME[N]") */
	p = semi;
	while (p > line && p[-1] != ' ' && p[-1] != '\t')
		p--;
	len = (size_t)(semi - p);
	if (!len || len >= name_sz)
		return false;
	memcpy(name, p, len);
	name[len] = '\0';
	return parse_u32(o + 7, &f->off) && parse_u32(s + 5, &f->size);
}

int dm_ktrace_parse_format(struct dm_kernel *k, char *text, const char *path, struct dm_err *err)
{
	char name[64], *save = NULL;
	struct {
		const char *name;
		struct dm_kfield *f;
		uint32_t min, max;
	} want[] = {
		{"target_id", &k->f_target, 4, 8},
		{"nr_regions", &k->f_nr_regions, 4, 8},
		{"start", &k->f_start, 8, 8},
		{"end", &k->f_end, 8, 8},
		{"nr_accesses", &k->f_nr_accesses, 4, 8},
		{"age", &k->f_age, 4, 8},
	};
	unsigned int found = 0;

	/* strtok_r: strtok's state is the whole process's */
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct dm_kfield f;

		if (!parse_field(line, name, sizeof(name), &f))
			continue;
		for (size_t j = 0; j < sizeof(want) / sizeof(want[0]); j++) {
			if (strcmp(name, want[j].name))
				continue;
			if (f.size < want[j].min || f.size > want[j].max || f.off > 4096) {
				return dm_err_set(err, -EINVAL,
						  "kernel: %s/%s: field %s has size "
						  "%u at offset %u, which libdamon cannot read",
						  k->fs.root, path, name, f.size, f.off);
			}
			*want[j].f = f;
			found |= 1u << j;
		}
	}
	if (found != (1u << (sizeof(want) / sizeof(want[0]))) - 1)
		return dm_err_set(err, -EINVAL,
				  "kernel: %s/%s lacks a field libdamon needs "
				  "(target_id, nr_regions, start, end, nr_accesses, age)",
				  k->fs.root, path);
	return 0;
}

/* Read the event's id and field layout. -ENOENT when there is no such event. */
static int read_format(struct dm_kernel *k, struct dm_err *err)
{
	char path[160], buf[4096];
	uint64_t id;
	size_t i;
	int rc = -ENOENT;

	for (i = 0; i < sizeof(event_dirs) / sizeof(event_dirs[0]); i++) {
		rc = dm_sysfs_read_u64(&k->fs, &id, NULL, "%s/id", event_dirs[i]);
		if (!rc)
			break;
	}
	if (rc)
		return dm_err_set(err, rc,
				  "kernel: the damon:damon_aggregated tracepoint is not "
				  "available (no %s/%s/id; is tracefs mounted?)",
				  k->fs.root, event_dirs[0]);
	snprintf(path, sizeof(path), "%s/format", event_dirs[i]);
	/* format files exceed DM_SYSFS_VAL_MAX: read it with a bigger buffer */
	rc = dm_sysfs_read(&k->fs, buf, sizeof(buf), err, "%s", path);
	if (rc < 0)
		return rc;
	rc = dm_ktrace_parse_format(k, buf, path, err);
	if (rc)
		return rc;
	k->trace_id = id;
	return 0;
}

bool dm_ktrace_available(struct dm_kernel *k)
{
	return read_format(k, NULL) == 0;
}

bool dm_ktrace_kdamond_visible(const char *proc_root, pid_t pid)
{
	char path[PATH_MAX], buf[1024];
	struct dm_proc_stat st;
	ssize_t n;

	if (pid <= 0)
		return false;
	/* a /proc of another pid namespace (the host's, seen from a
	 * container) shows tasks perf_event_open() cannot find from here */
	if (dm_proc_self_pid(proc_root) != getpid())
		return false;
	if (dm_proc_path(path, sizeof(path), proc_root, pid, "stat") < 0)
		return false;
	n = dm_proc_read_file(path, buf, sizeof(buf));
	if (n < 0 && n != -ERANGE)
		return false;
	/*
	 * "PID (kdamond.N) S PPID ... FLAGS ...": the name alone can be faked
	 * by any task (PR_SET_NAME); PF_KTHREAD cannot, and only the initial
	 * namespace holds kthreads.
	 */
	if (dm_proc_stat_parse(buf, &st) < 0 || strncmp(st.comm, "kdamond.", 8) ||
	    st.nr_fields < 9)
		return false;
	return (st.flags & DM_PF_KTHREAD) != 0;
}

static size_t ring_pages(const struct dm_kernel *k)
{
	/* ~64 bytes per region event; room for 4 aggregations at the maximum */
	size_t want = (size_t)k->attrs.max_nr_regions * 64 * 4, pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = 16;

	while (n * pg < want && n < 1024)
		n *= 2;
	return n;
}

int dm_ktrace_open(struct dm_kernel *k, struct dm_err *err)
{
	struct perf_event_attr pa;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), n;
	int rc, fd;

	rc = read_format(k, err);
	if (rc)
		return rc;
	memset(&pa, 0, sizeof(pa));
	pa.type = PERF_TYPE_TRACEPOINT;
	pa.size = sizeof(pa);
	pa.config = k->trace_id;
	pa.sample_period = 1;
	pa.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_RAW;
	/* event times comparable with CLOCK_MONOTONIC (delay measurements) */
	pa.use_clockid = 1;
	pa.clockid = CLOCK_MONOTONIC;
	/* poll waiters (the runner's epoll set) wake on every record (the default is at
	 * half the ring, which an aggregation of a few regions never fills) */
	if (k->wake_epfd >= 0)
		pa.wakeup_events = 1;
	/* bound to our kdamond: other kdamonds' events never reach us */
	fd = (int)(DM_FAIL(EACCES) ? -1
				   : syscall(SYS_perf_event_open, &pa, k->kdamond_pid, -1, -1,
					     PERF_FLAG_FD_CLOEXEC));
	if (fd < 0)
		return dm_err_set(err, -errno,
				  "kernel: perf_event_open of damon:damon_aggregated "
				  "(id %llu) for kdamond pid %d failed: %s",
				  (unsigned long long)k->trace_id, (int)k->kdamond_pid,
				  strerror(errno));
	n = ring_pages(k);
	k->ring_sz = (n + 1) * pg;
	k->ring = DM_FAIL(ENOMEM)
			  ? MAP_FAILED
			  : mmap(NULL, k->ring_sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (k->ring == MAP_FAILED) {
		rc = -errno;
		k->ring = NULL;
		close(fd);
		return dm_err_set(err, rc,
				  "kernel: mapping the perf ring buffer (%zu pages) "
				  "failed: %s",
				  n, strerror(-rc));
	}
	if (k->wake_epfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN};

		if ((DM_FAIL(ENOMEM) ? -1 : epoll_ctl(k->wake_epfd, EPOLL_CTL_ADD, fd, &ev)) < 0) {
			rc = -errno;
			munmap(k->ring, k->ring_sz);
			k->ring = NULL;
			close(fd);
			return dm_err_set(err, rc,
					  "kernel: adding the perf event to the context's "
					  "epoll set failed: %s",
					  strerror(-rc));
		}
	}
	k->trace_fd = fd;
	k->resync = true;
	return 0;
}

static uint64_t field(const uint8_t *raw, uint32_t len, const struct dm_kfield *f, bool *bad)
{
	uint64_t v = 0;

	if (f->off + f->size > len) {
		*bad = true;
		return 0;
	}
	if (f->size == 8) {
		memcpy(&v, raw + f->off, 8);
	} else {
		uint32_t w;

		memcpy(&w, raw + f->off, 4);
		v = w;
	}
	return v;
}

/* One region event. Publishes when it completes an aggregation. */
static int take(struct dm_kernel *k, uint64_t t_ns, const uint8_t *raw, uint32_t len,
		struct dm_err *err)
{
	bool bad = false;
	uint64_t tpos = field(raw, len, &k->f_target, &bad);
	uint64_t nr = field(raw, len, &k->f_nr_regions, &bad);
	struct dm_kreg g;
	int rc = 0;

	g.start = field(raw, len, &k->f_start, &bad);
	g.end = field(raw, len, &k->f_end, &bad);
	g.nr_accesses = (uint32_t)field(raw, len, &k->f_nr_accesses, &bad);
	g.age = (uint32_t)field(raw, len, &k->f_age, &bad);
	g.tpos = (uint32_t)tpos;
	g.pad = 0;
	if (bad || !nr || g.end <= g.start || tpos >= UINT32_MAX)
		return 0; /* not a record we understand: skip it */

	/* a pause longer than half an aggregation: the block we were in is
	 * over, whatever it said (we attached in the middle of one) */
	if (k->pending_left && k->last_ev_ns && t_ns - k->last_ev_ns > k->attrs.aggr_us * 500) {
		k->pending_left = 0;
		k->nr_pending = 0;
		k->resync = true;
	}
	k->last_ev_ns = t_ns;
	if (k->pending_left && tpos != k->pending_tpos) {
		/* a block ended early: records were lost */
		k->pending_left = 0;
		k->resync = true;
	}
	if (!k->pending_left) {
		/* a new target block */
		if (tpos == 0 || tpos <= k->pending_tpos) {
			/* a new aggregation; publish what a dropped target left */
			if (k->nr_pending && !k->resync)
				rc = dm_kernel_publish(k, k->nr_pending, err);
			k->nr_pending = 0;
			k->resync = tpos != 0;
		}
		k->pending_tpos = (uint32_t)tpos;
		k->pending_left = (uint32_t)nr;
	}
	k->pending_left--;
	if (k->resync)
		return rc;
	if (dm_kernel_regbuf(k, k->nr_pending + 1))
		return dm_err_set(err, -ENOMEM, "kernel: out of memory");
	k->regbuf[k->nr_pending++] = g;
	if (!k->pending_left && k->pending_tpos + 1 >= k->nr_targets) {
		rc = dm_kernel_publish(k, k->nr_pending, err);
		if (k->last_agg_ns && t_ns > k->last_agg_ns) {
			uint64_t p = (t_ns - k->last_agg_ns) / 1000;

			/* a smoothed period; outliers (a lost aggregation) count less */
			if (p > k->attrs.aggr_us * 20)
				p = k->attrs.aggr_us * 20;
			k->agg_period_us = k->agg_period_us ? (k->agg_period_us * 3 + p) / 4 : p;
		}
		k->last_agg_ns = t_ns;
		k->nr_pending = 0;
		k->pending_tpos = UINT32_MAX - 1; /* the next block starts an aggregation */
	}
	return rc;
}

int dm_ktrace_read(struct dm_kernel *k, struct dm_err *err)
{
	struct perf_event_mmap_page *meta = k->ring;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *data = (uint8_t *)k->ring + pg;
	uint64_t size = k->ring_sz - pg, head, tail;
	uint8_t tmp[512];
	int rc = 0;

	if (!meta)
		return 0;
	head = atomic_load_explicit((_Atomic uint64_t *)&meta->data_head, memory_order_acquire);
	tail = meta->data_tail;
	while (tail < head && !rc) {
		struct perf_event_header h;
		uint64_t off = tail % size;
		const uint8_t *rec;

		/* a record may wrap around the end of the ring */
		for (size_t i = 0; i < sizeof(h); i++)
			((uint8_t *)&h)[i] = data[(off + i) % size];
		if (h.size < sizeof(h) || tail + h.size > head)
			break;
		if (off + h.size <= size) {
			rec = data + off;
		} else {
			size_t first = (size_t)(size - off);

			if (h.size > sizeof(tmp)) {
				tail += h.size;
				continue;
			}
			memcpy(tmp, data + off, first);
			memcpy(tmp + first, data, h.size - first);
			rec = tmp;
		}
		if (h.type == PERF_RECORD_SAMPLE && h.size >= sizeof(h) + 12) {
			uint64_t t_ns;
			uint32_t len;

			/* PERF_SAMPLE_TIME then PERF_SAMPLE_RAW: u64 time, u32 size, data */
			memcpy(&t_ns, rec + sizeof(h), 8);
			memcpy(&len, rec + sizeof(h) + 8, 4);
			if (sizeof(h) + 12 + (size_t)len <= h.size)
				rc = take(k, t_ns, rec + sizeof(h) + 12, len, err);
		} else if (h.type == PERF_RECORD_LOST) {
			uint64_t lost = 0;

			if (h.size >= sizeof(h) + 16)
				memcpy(&lost, rec + sizeof(h) + 8, 8);
			k->lost += lost;
			k->pending_left = 0;
			k->nr_pending = 0;
			k->resync = true;
		}
		tail += h.size;
	}
	atomic_store_explicit((_Atomic uint64_t *)&meta->data_tail, tail, memory_order_release);
	return rc;
}

void dm_ktrace_committed(struct dm_kernel *k)
{
	k->agg_period_us = 0; /* new intervals */
	/* positions may mean other targets now: wait for a fresh aggregation */
	k->pending_left = 0;
	k->nr_pending = 0;
	k->resync = true;
}

void dm_ktrace_close(struct dm_kernel *k)
{
	if (k->ring)
		munmap(k->ring, k->ring_sz);
	k->ring = NULL;
	if (k->trace_fd >= 0 && k->wake_epfd >= 0)
		epoll_ctl(k->wake_epfd, EPOLL_CTL_DEL, k->trace_fd, NULL);
	if (k->trace_fd >= 0)
		close(k->trace_fd);
	k->trace_fd = -1;
}
