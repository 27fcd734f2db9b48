/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * libdamon — DAMON's data-access monitoring for every program.
 *
 * One public header. Conventions (see libdamon(7)):
 *  - int-returning calls return >= 0 on success and -errno on failure; errno is
 *    never the way an error is reported. Out-parameters are named ret*, come
 *    last and are written only on success.
 *  - Handles are opaque. A context owns its targets and schemes; pointers to
 *    them are borrowed and stay valid until the context is freed.
 *  - Option and output structs start with `size_t sz`, set by the caller to
 *    sizeof(the struct it was compiled with).
 *  - Units and meanings are the kernel DAMON's: intervals in microseconds,
 *    nr_accesses counts sampling intervals that saw an access within one
 *    aggregation interval, age counts aggregation intervals.
 */
#ifndef DAMON_DAMON_H
#define DAMON_DAMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <damon/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Objects                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct damon_ctx damon_ctx;
typedef struct damon_target damon_target;
typedef struct damos damos;
typedef struct damon_snapshot damon_snapshot;

/* ------------------------------------------------------------------------ */
/* Enums (values are ABI: never renumbered)                                 */
/* ------------------------------------------------------------------------ */

enum damon_ops {
	DAMON_OPS_VADDR = 0,  /* a process's address space, layout from /proc/PID/maps */
	DAMON_OPS_FVADDR = 1, /* fixed virtual ranges of one process */
	DAMON_OPS_PADDR = 2,  /* physical memory */
};

enum damon_backend {
	DAMON_BACKEND_AUTO = 0,
	DAMON_BACKEND_KERNEL = 1,     /* kernel DAMON through sysfs */
	DAMON_BACKEND_PAGE_IDLE = 2,  /* pagemap + idle page tracking */
	DAMON_BACKEND_UFFD_WP = 3,    /* userfaultfd write-protect + PAGEMAP_SCAN, own process */
	DAMON_BACKEND_SOFT_DIRTY = 4, /* soft-dirty bits, processes the caller may ptrace */
	DAMON_BACKEND_FAULT = 5,      /* mprotect + SIGSEGV, own process, opt-in only */
};
#define DAMON_BACKEND_MAX DAMON_BACKEND_FAULT

/* What a backend sees (struct damon_backend_status.sees, snapshot info). */
enum damon_sees {
	DAMON_SEES_READS = 1u << 0,
	DAMON_SEES_WRITES = 1u << 1,
};

/* A value the backend cannot tell (who accessed a region: struct damon_region,
 * struct damon_hotness). Since 0.2. */
#define DAMON_UNKNOWN 0xffffffffu

/* struct damon_ctx_opts.flags */
enum damon_ctx_flags {
	/* No library thread: the caller drives the context with damon_ctx_step(). */
	DAMON_CTX_MANUAL = 1u << 0,
};

/* Log levels passed to damon_log_fn. */
enum damon_log_level {
	DAMON_LOG_ERR = 3,
	DAMON_LOG_WARNING = 4,
	DAMON_LOG_INFO = 6,
	DAMON_LOG_DEBUG = 7,
};

/*
 * Log callback: called from the thread that runs the context (the library
 * thread, or the caller of damon_ctx_step()). @msg is one sentence without a
 * trailing newline. The callback must not drop the last reference to @ctx.
 */
typedef void (*damon_log_fn)(damon_ctx *ctx, int level, const char *msg, void *userdata);

/* Allocator hooks: replacements for malloc/free used for every allocation
 * the context makes (damon_ctx_hotness() and damon_target_hotness() never
 * allocate). Both or neither must be set. */
typedef void *(*damon_malloc_fn)(size_t size, void *userdata);
typedef void (*damon_free_fn)(void *ptr, void *userdata);

/* ------------------------------------------------------------------------ */
/* Option and output structs                                                */
/* ------------------------------------------------------------------------ */

/*
 * Declare a zero-filled options struct with sz set, then assign fields:
 *   DAMON_OPTS(damon_ctx_opts, o, .aggr_us = 200000);
 * Fields left 0 take their documented defaults.
 */
#define DAMON_OPTS(TYPE, NAME, ...)                                                 \
	struct TYPE NAME = { .sz = sizeof(struct TYPE), __VA_ARGS__ }

/*
 * Monitoring intervals auto-tuning (since 0.2), with the meaning of Linux
 * 6.15's intervals goal: every @aggrs aggregation intervals the sampling
 * interval is scaled so that the access events seen in an aggregation (size
 * x nr_accesses, summed over regions) come to @access_bp of the most that
 * could be seen (size x samples per aggregation). Samples per aggregation
 * stay as set (aggr_us / sample_us): the aggregation interval follows the
 * sampling interval, and nr_accesses keeps its range. Ages keep their
 * length in time across a change, as they do over damon_ctx_commit().
 * The kernel backend writes it to DAMON's sysfs (monitoring_attrs/intervals/
 * intervals_goal); libdamon's engine runs the same loop on every other
 * backend. Snapshots and damon_ctx_status() tell the intervals in force; a
 * commit starts again from the intervals set.
 */
struct damon_intervals_goal {
	uint32_t access_bp;      /* 1 .. 10000 */
	uint32_t aggrs;          /* tune every this many aggregation intervals; 0: off */
	uint64_t min_sample_us;  /* the tuned sampling interval stays within */
	uint64_t max_sample_us;  /* [min_sample_us, max_sample_us], which holds sample_us */
};

struct damon_ctx_opts {
	size_t sz;
	uint32_t ops;            /* enum damon_ops, default VADDR */
	uint32_t backend;        /* enum damon_backend, default AUTO */
	uint64_t sample_us;      /* default 5000 */
	uint64_t aggr_us;        /* default 100000 */
	uint64_t update_us;      /* default 1000000 */
	uint32_t min_nr_regions; /* default 10, at least 3 */
	uint32_t max_nr_regions; /* default 1000, at least min_nr_regions */
	uint32_t flags;          /* enum damon_ctx_flags */
	uint32_t cpu_budget_permille; /* user-space backends' overhead budget in permille of one
					 CPU (monitor + application faults); default 20 (2%) */
	/* Roots used instead of "/sys" and "/proc" (tests, fixtures); NULL = the real ones. */
	const char *sysfs_root;
	const char *proc_root;
	damon_log_fn log_fn;     /* NULL: the library stays silent */
	void *log_userdata;
	damon_malloc_fn malloc_fn; /* NULL: malloc/free */
	damon_free_fn free_fn;
	void *alloc_userdata;
	uint64_t seed;           /* random seed for sampling addresses and splits; 0 = from the clock */
	struct damon_intervals_goal intervals_goal; /* since 0.2; aggrs 0: fixed intervals */
};

/* Monitoring attributes, for reading and changing them on a live context. */
struct damon_attrs {
	size_t sz;
	uint64_t sample_us, aggr_us, update_us;
	uint32_t min_nr_regions, max_nr_regions;
	struct damon_intervals_goal intervals_goal; /* since 0.2 */
};

/* One region of a snapshot. */
struct damon_region {
	size_t sz;               /* caller: sizeof(struct damon_region) */
	uint64_t start, end;     /* [start, end) */
	uint32_t nr_accesses;    /* kernel meaning, 0 .. aggr_us / sample_us */
	uint32_t age;            /* kernel meaning, in aggregation intervals */
	uint32_t access_rate_bp; /* nr_accesses / (aggr_us / sample_us), in basis points */
	uint32_t target_idx;     /* position of the target in its context (order of
				    damon_ctx_add_target() calls, from 0; a cgroup's
				    members take the next places as they join) */
	/*
	 * Who accessed it (since 0.2), over the samples of this aggregation
	 * interval that saw an access; DAMON_UNKNOWN where the backend cannot
	 * tell. fault tells everything; uffd_wp and soft_dirty see writes only
	 * (nr_writes = nr_accesses, the rest unknown); kernel and page_idle
	 * tell none of it.
	 */
	uint32_t nr_reads;       /* samples that saw a read (0 .. nr_accesses) */
	uint32_t nr_writes;      /* samples that saw a write (a sample may see both) */
	uint32_t write_bp;       /* nr_writes / nr_accesses in bp (0 when not accessed) */
	int32_t node;            /* NUMA node of the CPUs that made most accesses; -1 unknown */
	uint32_t node_bp;        /* that node's share of the accesses, in bp */
	uint32_t nr_cpus;        /* distinct CPUs that accessed it (counted modulo 64) */
	uint64_t cpus;           /* those CPUs, bit (cpu % 64); 0 when unknown */
};

/* What damon_ctx_hotness() and damon_target_hotness() answer. */
struct damon_hotness {
	size_t sz;               /* caller: sizeof(struct damon_hotness) */
	uint32_t access_rate_bp; /* size-weighted over the monitored part of [addr, addr+len) */
	uint32_t min_age, max_age;
	uint32_t reserved;
	uint64_t bytes_covered;  /* how much of [addr, addr+len) is monitored */
	uint64_t snapshot_seq;
	/* Who accessed it (since 0.2; struct damon_region), over the covering
	 * regions weighted by size and accesses; DAMON_UNKNOWN (node -1) when a
	 * covering region cannot tell. */
	uint32_t write_bp;       /* share of the accesses that were writes, in bp */
	int32_t node;            /* the node whose CPUs made most of the accesses */
	uint32_t node_bp;        /* its share, in bp */
	uint32_t nr_cpus;        /* CPUs in cpus */
	uint64_t cpus;           /* the CPUs that accessed it, bit (cpu % 64) */
};

/* Facts about one snapshot. */
struct damon_snapshot_info {
	size_t sz;
	uint64_t seq;            /* 1 for the first snapshot of a context, then +1 each */
	uint64_t time_ns;        /* CLOCK_MONOTONIC at the end of its aggregation interval */
	uint64_t sample_us;      /* sampling interval in force (after overhead budget stretching) */
	uint64_t aggr_us;        /* aggregation interval in force */
	uint32_t backend;        /* enum damon_backend that produced it */
	uint32_t sees;           /* enum damon_sees */
	uint32_t nr_targets;
	uint32_t max_nr_accesses; /* aggr_us / sample_us */
	uint32_t nr_samples;     /* sampling intervals actually taken in this aggregation
				    interval (fewer than max_nr_accesses when the monitor ran
				    late); access_rate_bp = nr_accesses * 10000 / nr_samples */
	uint32_t reserved;
};

/* A backend as judged for one context or one (ops, pid). */
struct damon_backend_status {
	size_t sz;
	uint32_t backend;        /* enum damon_backend */
	uint32_t usable;         /* 1: it can run; 0: refused, see reason */
	uint32_t sees;           /* enum damon_sees: what it would see */
	uint32_t reserved;
	char reason[256];        /* one sentence: why refused, or what it needs and does */
};

/* State of a context's monitor (failures of the monitor itself land here). */
struct damon_ctx_status {
	size_t sz;
	uint32_t running;        /* 1 while monitoring */
	int32_t error;           /* 0, or the -errno that stopped or troubled the monitor */
	uint64_t nr_snapshots;   /* published so far */
	uint32_t nr_targets;     /* targets alive */
	uint32_t backend;        /* enum damon_backend in use (AUTO before start) */
	uint64_t sample_us;      /* intervals in force */
	uint64_t aggr_us;
	char message[256];       /* sentence for error, "" when error is 0 */
	uint32_t paused;         /* 1 while running but paused (damon_ctx_pause()) */
	uint32_t reserved;
};

/* ------------------------------------------------------------------------ */
/* DAMOS: operation schemes                                                 */
/* ------------------------------------------------------------------------ */

enum damos_action {
	DAMOS_STAT = 0,
	DAMOS_COLD,
	DAMOS_PAGEOUT,
	DAMOS_WILLNEED,
	DAMOS_HUGEPAGE,
	DAMOS_NOHUGEPAGE,
	DAMOS_COLLAPSE,
	DAMOS_MIGRATE_HOT,
	DAMOS_MIGRATE_COLD,
	DAMOS_LRU_PRIO,
	DAMOS_LRU_DEPRIO,
};

enum damos_wmark_metric {
	DAMOS_WMARK_NONE = 0,
	DAMOS_WMARK_FREE_MEM_RATE = 1,
};

/* struct damos_opts.flags */
enum damos_flags {
	/* Allow a cold-side action on a backend that sees writes only. */
	DAMOS_F_ALLOW_WRITES_ONLY = 1u << 0,
};

#ifndef __cplusplus
/*
 * Declare a struct damos_opts with the unbounded maxima set, then the given
 * fields (which may override them). C only: C++ callers use damos_opts_init().
 */
#define DAMOS_OPTS(NAME, ...)                                                       \
	_Pragma("GCC diagnostic push")                                              \
	_Pragma("GCC diagnostic ignored \"-Woverride-init\"")                      \
	struct damos_opts NAME = { .sz = sizeof(struct damos_opts),                   \
				   .max_sz = UINT64_MAX,                              \
				   .max_nr_accesses = UINT32_MAX,                     \
				   .max_age = UINT32_MAX,                             \
				   __VA_ARGS__ };                                     \
	_Pragma("GCC diagnostic pop")
#endif

struct damos_opts {
	size_t sz;
	uint32_t action;                     /* enum damos_action */
	uint32_t target_nid;                 /* migrate_hot/cold destination node */
	uint64_t min_sz, max_sz;             /* access pattern; max UINT64_MAX = unbounded */
	uint32_t min_nr_accesses, max_nr_accesses; /* max UINT32_MAX = unbounded; 0 = never accessed */
	uint32_t min_age, max_age;           /* aggregation intervals; max UINT32_MAX = unbounded */
	uint64_t apply_interval_us;          /* 0 = every aggregation interval */
	uint64_t quota_ms, quota_bytes;      /* 0 = no such limit */
	uint64_t quota_reset_interval_ms;
	uint32_t weight_sz, weight_nr_accesses, weight_age; /* prioritization weights, permil */
	uint32_t wmarks_metric;              /* enum damos_wmark_metric */
	uint64_t wmarks_interval_us;
	uint32_t wmarks_high, wmarks_mid, wmarks_low; /* permil */
	uint32_t flags;                      /* enum damos_flags */
};

struct damos_stats {
	size_t sz;
	uint64_t nr_tried, sz_tried, nr_applied, sz_applied, qt_exceeds;
	uint64_t sz_ops_filter_passed, nr_snapshots;
};

/* Quota goal metrics (struct damos_goal_opts.metric), the kernel's. */
enum damos_goal_metric {
	DAMOS_GOAL_USER_INPUT = 0,         /* current value given by damos_set_goal_current() */
	DAMOS_GOAL_SOME_MEM_PSI_US = 1,    /* "some" memory stall time per reset interval, us */
	DAMOS_GOAL_NODE_MEM_USED_BP = 2,   /* node @nid's used memory, bp of its total */
	DAMOS_GOAL_NODE_MEM_FREE_BP = 3,   /* node @nid's free memory, bp of its total */
};

/* A quota goal: the effective quota is tuned so that current reaches target. */
struct damos_goal_opts {
	size_t sz;
	uint32_t metric;         /* enum damos_goal_metric */
	uint32_t nid;            /* NUMA node of the node_mem_* metrics */
	uint64_t target_value;   /* > 0, in the metric's unit */
	uint64_t current_value;  /* user_input only: the first value */
};

/* Filter types (struct damos_filter_opts.type), the kernel's values. */
enum damos_filter_type {
	DAMOS_FILTER_ANON = 0,           /* anonymous pages (ops layer) */
	DAMOS_FILTER_MEMCG = 1,          /* pages of a memory cgroup (kernel backend only) */
	DAMOS_FILTER_YOUNG = 2,          /* recently accessed pages (kernel backend only) */
	DAMOS_FILTER_HUGEPAGE_SIZE = 3,  /* pages of a folio size in [min_sz, max_sz] (ops) */
	DAMOS_FILTER_UNMAPPED = 4,       /* pages mapped by no process (kernel backend only) */
	DAMOS_FILTER_ADDR = 5,           /* [addr_start, addr_end) (core layer) */
	DAMOS_FILTER_TARGET = 6,         /* the target at position target_idx (core layer) */
};

struct damos_filter_opts {
	size_t sz;
	uint32_t type;           /* enum damos_filter_type */
	uint32_t matching;       /* 1: the filter is about memory of the type; 0: all other memory */
	uint32_t allow;          /* 1: memory it is about passes; 0: it is rejected */
	uint32_t target_idx;     /* DAMOS_FILTER_TARGET */
	uint64_t addr_start, addr_end; /* DAMOS_FILTER_ADDR */
	uint64_t min_sz, max_sz; /* DAMOS_FILTER_HUGEPAGE_SIZE, bytes */
	const char *memcg_path;  /* DAMOS_FILTER_MEMCG (kernel backend), copied */
};

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * damon_version() - the version of the library in use at run time.
 *
 * Return: DAMON_VERSION_NUMBER of the loaded library (major * 10000 + minor * 100 + patch).
 * Since: 0.1
 */
unsigned int damon_version(void);

/**
 * damon_version_string() - the version as "MAJOR.MINOR.PATCH".
 *
 * Return: a static string, never NULL.
 * Since: 0.1
 */
const char *damon_version_string(void);

/* ------------------------------------------------------------------------ */
/* Contexts                                                                 */
/* ------------------------------------------------------------------------ */

/**
 * damon_ctx_new() - create a monitoring context.
 * @ret: where the new context is stored (one reference, owned by the caller).
 * @opts: options, or NULL for every default.
 *
 * Nothing runs until damon_ctx_start(). The context remembers the process
 * that created it: after fork() every call on it from the child returns
 * -ECHILD, except damon_ctx_unref().
 *
 * Return: 0 or
 *  -EINVAL  @ret NULL; opts->sz too small, or unknown non-zero bytes past the
 *           fields this library knows; an unknown ops, backend or flag;
 *           sample_us > aggr_us; min_nr_regions < 3; min > max; only one of
 *           malloc_fn/free_fn set.
 *  -ENOMEM  out of memory.
 *  -EMFILE, -ENFILE  no file descriptor left for the context's own (the
 *           eventfd of damon_ctx_fd(); with DAMON_CTX_MANUAL its epoll and
 *           timer fds).
 * Since: 0.1
 */
int damon_ctx_new(damon_ctx **ret, const struct damon_ctx_opts *opts);

/**
 * damon_ctx_ref() - take one more reference.
 * Return: @ctx. Safe from any thread.
 * Since: 0.1
 */
damon_ctx *damon_ctx_ref(damon_ctx *ctx);

/**
 * damon_ctx_unref() - drop one reference; the last one stops a running
 * context, joins its thread, closes its fds and frees it.
 * @ctx: a context or NULL.
 *
 * In a child after fork() it only frees memory and closes file descriptors:
 * it never touches the parent's userfaultfd registrations or kdamonds.
 * Return: NULL.
 * Since: 0.1
 */
damon_ctx *damon_ctx_unref(damon_ctx *ctx);

/** damon_ctx_unrefp() - damon_ctx_unref(*p), for __attribute__((cleanup)). Since: 0.1 */
void damon_ctx_unrefp(damon_ctx **p);

/**
 * damon_ctx_add_target() - add an address space to monitor.
 * @ctx: a context that is not running, or running (then the target is
 *       picked up by the next damon_ctx_commit()).
 * @pid: vaddr/fvaddr: the process, 0 = the calling process; paddr: must be 0.
 * @ret: where the borrowed target pointer is stored; may be NULL.
 *
 * The context runs while any target lives (kernel semantics); a target that
 * exits is reported to the log callback and damon_ctx_status(), and dropped:
 * it keeps its place (target_idx) but no later start or commit monitors it.
 *
 * Return: 0 or
 *  -EINVAL  @ctx NULL; @pid negative; paddr with @pid != 0 or a second target.
 *  -ESRCH   no process @pid.
 *  -ECHILD  @ctx was inherited through fork().
 *  -ENOMEM  out of memory.
 * Since: 0.1
 */
int damon_ctx_add_target(damon_ctx *ctx, pid_t pid, damon_target **ret);

/**
 * damon_target_add_range() - add an initial region [@start, @end) to a
 * target: the monitored ranges of fvaddr, or of paddr (default: every System
 * RAM range). Ranges of one target may not overlap.
 *
 * Return: 0 or
 *  -EINVAL  @t NULL; @start >= @end; not an fvaddr or paddr target; overlaps
 *           a range already added.
 *  -EBUSY   the context is running (add ranges before damon_ctx_start(),
 *           or change them with damon_target_set_ranges()).
 *  -ECHILD, -ENOMEM.
 * Since: 0.1
 */
int damon_target_add_range(damon_target *t, uint64_t start, uint64_t end);

/* A range of addresses [start, end), for damon_target_set_ranges(). Since: 0.1 */
struct damon_addr_range {
	uint64_t start;
	uint64_t end;
};

/**
 * damon_target_set_ranges() - replace every range of an fvaddr or paddr
 * target with the @nr ranges at @ranges (in any order; they may not
 * overlap; the array is copied). On a stopped context they are in force at
 * once. On a running one they are in force from the next
 * damon_ctx_commit(), which lays the target out again the way the kernel
 * commits new regions of a target: the parts of the regions inside the new
 * ranges keep their counts and ages, the parts outside are dropped, and
 * memory that was not monitored starts as new regions. This is how the
 * monitored set follows memory that comes and goes (an allocator's
 * extents). Calling it again before the commit replaces the ranges given
 * before.
 *
 * Return: 0 or
 *  -EINVAL  @t NULL; @nr 0 or @ranges NULL; a range empty or inverted; two
 *           ranges overlap; the target belongs to a vaddr context (whose
 *           ranges come from the process's mappings).
 *  -ECHILD, -ENOMEM.
 * Since: 0.1
 */
int damon_target_set_ranges(damon_target *t, const struct damon_addr_range *ranges, size_t nr);

/**
 * damon_target_pid() - the pid the target monitors (the real pid for 0).
 * Return: the pid, or -EINVAL for NULL.
 * Since: 0.1
 */
int damon_target_pid(const damon_target *t);

/* ------------------------------------------------------------------------ */
/* cgroup v2 targets                                                        */
/* ------------------------------------------------------------------------ */

typedef struct damon_cgroup damon_cgroup;

/* What damon_ctx_add_cgroup() follows. Since 0.2. */
struct damon_cgroup_opts {
	size_t sz;               /* caller: sizeof(struct damon_cgroup_opts) */
	const char *path;        /* the cgroup's directory, e.g. "/sys/fs/cgroup/app";
				    NULL: use fd */
	int32_t fd;              /* with path NULL: an open cgroup directory (duplicated;
				    the caller keeps its own) */
	uint32_t flags;          /* none defined yet: 0 */
};

/* A cgroup's part of one snapshot, and its membership so far. Since 0.2. */
struct damon_cgroup_summary {
	size_t sz;               /* caller: sizeof(struct damon_cgroup_summary) */
	uint32_t nr_members;     /* member processes followed now */
	uint32_t nr_targets;     /* member targets that have regions in the snapshot */
	uint64_t nr_joined;      /* processes that became members since the call that added it */
	uint64_t nr_left;        /* members dropped since (exited, or moved out) */
	uint64_t nr_regions;     /* the members' regions in the snapshot */
	uint64_t bytes;          /* the bytes those regions cover */
	uint64_t accessed_bytes; /* of which in regions with nr_accesses > 0 */
	uint32_t access_rate_bp; /* size-weighted access_rate_bp over the members' regions */
	uint32_t reserved;
	uint64_t snapshot_seq;   /* the snapshot summed */
};

/**
 * damon_ctx_add_cgroup() - monitor the processes of a cgroup v2 group, and
 * follow who belongs to it.
 * @ctx: a vaddr context, stopped or running (then members join at the next
 *       layout update, as below).
 * @opts: the cgroup: a path, or an open directory fd.
 * @ret: where the borrowed cgroup handle is stored; may be NULL.
 *
 * Every process cgroup.procs lists (thread-group leaders; its threads share
 * the address space) becomes an ordinary vaddr target of the context, with
 * its own id, regions, hotness (damon_target_hotness()) and target_idx in
 * snapshots, and damon_target_cgroup() naming the cgroup. libdamon reads
 * cgroup.procs again at start and at every update interval (update_us):
 * a process that appeared (forked inside, or moved in) is added as a new
 * target, a member that is no longer listed (exited, or moved out) is
 * dropped as a target that exits is: it keeps its id, leaves the
 * snapshots, and the log callback says so (DAMON_LOG_INFO, one sentence
 * naming the cgroup, pid and target id), which is also the way joins are
 * told. A member's exit may be noticed sooner by the sampling itself. On
 * the kernel backend members are written to the kdamond at the commit that
 * follows each change (the kernel's own commit), under the rules its pid
 * targets follow. A dropped member is never added back: a pid listed again
 * later becomes a new target.
 *
 * A running context keeps running while its cgroups exist, on the
 * user-space backends even when a cgroup has no member for a while; the
 * kernel's kdamond stops by itself when no target is left (the context
 * then ends, as it does when its last pid target exits). damon_ctx_start()
 * needs a member or another live target.
 *
 * Only page_idle, soft_dirty and kernel can monitor other processes:
 * uffd_wp and fault watch the calling process only, and a context with a
 * cgroup refuses them (explicitly requested: -EOPNOTSUPP here; AUTO never
 * picks them).
 *
 * Return: 0 or
 *  -EINVAL      @ctx or @opts NULL; bad sz or unknown flags; path NULL and
 *               fd not open; not a vaddr context; a directory that is not
 *               a cgroup v2 one (not on a cgroup2 file system, e.g.
 *               cgroup v1, or without cgroup.procs).
 *  -ENOENT      no such directory.
 *  -ENOTDIR     the path is not a directory.
 *  -EOPNOTSUPP  the context asked for uffd_wp or fault.
 *  -EPERM       cgroup.procs cannot be read by this process.
 *  -ECHILD, -ENOMEM.
 * Since: 0.2
 */
int damon_ctx_add_cgroup(damon_ctx *ctx, const struct damon_cgroup_opts *opts,
			 damon_cgroup **ret);

/**
 * damon_cgroup_members() - the member targets followed now.
 * @ret: room for @nr target pointers (borrowed); may be NULL with @nr 0 to
 *       count.
 *
 * Return: the number of members (0 .. @nr written), or -EINVAL (@cg NULL;
 * @ret NULL with @nr > 0), -ERANGE (more members than @nr: nothing
 * written; ask again with more room), -ECHILD.
 * Since: 0.2
 */
int damon_cgroup_members(damon_cgroup *cg, damon_target **ret, size_t nr);

/**
 * damon_cgroup_summary() - the cgroup's part of snapshot @s (NULL: the
 * newest): its members' regions summed, with the membership counts.
 *
 * Return: 0 or -EINVAL (@cg NULL; ret NULL or ret->sz too small), -EAGAIN
 * (@s NULL and no snapshot yet), -ECHILD.
 * Since: 0.2
 */
int damon_cgroup_summary(damon_cgroup *cg, const damon_snapshot *s,
			 struct damon_cgroup_summary *ret);

/**
 * damon_target_cgroup() - the cgroup a target was added for, or NULL for a
 * target added by damon_ctx_add_target() (or @t NULL).
 * Since: 0.2
 */
damon_cgroup *damon_target_cgroup(const damon_target *t);

/**
 * damon_target_idx() - the target's place in its context: the target_idx
 * its regions carry in snapshots (struct damon_region), which is how a
 * snapshot's regions are matched to a cgroup's member targets.
 * Return: the index (from 0), or -EINVAL (NULL).
 * Since: 0.2
 */
int damon_target_idx(const damon_target *t);

/**
 * damon_target_alive() - is the target still monitored (not dropped)?
 * Return: 1 (monitored, or waiting for a start or commit), 0 (dropped: its
 * process exited, or it left its cgroup), -EINVAL (NULL).
 * Since: 0.2
 */
int damon_target_alive(const damon_target *t);

/**
 * damon_ctx_start() - pick a backend (if AUTO) and start monitoring.
 *
 * Without DAMON_CTX_MANUAL one library thread named "damon-mon" runs the
 * context, with every signal blocked. With it, nothing runs until the caller
 * calls damon_ctx_step().
 *
 * A context whose monitor ended by itself (every target exited) may be
 * started again without damon_ctx_stop() first, once a target was added.
 * Targets that exited while monitored were dropped and are left out.
 *
 * Return: 0 or
 *  -EINVAL      no target; fvaddr target without ranges.
 *  -EBUSY       already running.
 *  -EOPNOTSUPP  no backend can run this context here; damon_ctx_errmsg()
 *               lists why each was refused (damon_ctx_backend_status() too).
 *  -EPERM       the chosen backend needs a privilege the caller lacks.
 *  -ESRCH       a target process is gone (one not dropped yet), or every
 *               target was dropped.
 *  -ECHILD, -ENOMEM, or another -errno the backend met (sentence in errmsg).
 * Since: 0.1
 */
int damon_ctx_start(damon_ctx *ctx);

/**
 * damon_ctx_stop() - stop monitoring; joins the library thread, disarms
 * every sample page. The newest snapshot stays readable.
 *
 * Return: 0 or -EINVAL (NULL), -EALREADY (not running; also after the
 * monitor ended by itself because every target exited), -ECHILD.
 * Since: 0.1
 */
int damon_ctx_stop(damon_ctx *ctx);

/**
 * damon_ctx_set_attrs() - change monitoring attributes. On a stopped context
 * they take effect at start; on a running one at damon_ctx_commit().
 *
 * Return: 0 or -EINVAL (same rules as damon_ctx_new()), -ECHILD.
 * Since: 0.1
 */
int damon_ctx_set_attrs(damon_ctx *ctx, const struct damon_attrs *attrs);

/**
 * damon_ctx_get_attrs() - the attributes as set (not as stretched by the
 * overhead budget: see struct damon_snapshot_info for those).
 * Return: 0 or -EINVAL, -ECHILD.
 * Since: 0.1
 */
int damon_ctx_get_attrs(const damon_ctx *ctx, struct damon_attrs *ret);

/**
 * damon_ctx_commit() - apply attributes, targets and schemes changed since
 * start to a running context. The change is applied before the next sample.
 *
 * Return: 0 or -EINVAL (NULL), -EALREADY (not running), -ECHILD, or the
 * -errno of a new target that could not be prepared.
 * Since: 0.1
 */
int damon_ctx_commit(damon_ctx *ctx);

/**
 * damon_ctx_pause() - pause a running context, as the kernel's pause file
 * pauses a kdamond: it keeps its targets, regions (with the counts of the
 * aggregation interval under way), schemes and newest snapshot, which the
 * hotness calls and damon_ctx_snapshot() keep answering from; it takes no
 * sample, applies no scheme and publishes nothing. User-space backends
 * disarm their sample pages (the application pays nothing) and the library
 * thread sleeps until resumed, stopped or committed to; with
 * DAMON_CTX_MANUAL the fd stays unreadable and damon_ctx_step() does
 * nothing. On the kernel backend the kdamond's context pause file is set
 * (and committed). A paused context may be committed to (the change is
 * in force when it resumes) and stopped (the next start is not paused). A
 * target that exits while paused is noticed after resume. Pausing a paused
 * context does nothing.
 *
 * Return: 0 or -EINVAL (NULL; the context is not running: never started,
 * stopped, or its monitor ended), -EOPNOTSUPP (kernel backend: this
 * kernel's DAMON has no pause file, or the kdamond is outside the caller's
 * pid namespace; stop and start instead), -ECHILD, or the -errno of a
 * sysfs write (kernel backend; sentence in errmsg).
 * Since: 0.1
 */
int damon_ctx_pause(damon_ctx *ctx);

/**
 * damon_ctx_resume() - continue a paused context with the regions it had.
 * Paused time counts in no interval: the aggregation interval under way
 * goes on where it stopped, and the first sample after resume is armed
 * after resume, so nothing written while paused is counted. Resuming a
 * context that is not paused does nothing.
 *
 * Return: 0 or the errors of damon_ctx_pause().
 * Since: 0.1
 */
int damon_ctx_resume(damon_ctx *ctx);

/**
 * damon_ctx_backend() - the backend the context runs on.
 * Return: enum damon_backend (DAMON_BACKEND_AUTO before the first start), or
 * -EINVAL, -ECHILD.
 * Since: 0.1
 */
int damon_ctx_backend(const damon_ctx *ctx);

/**
 * damon_backend_name() - "auto", "kernel", "page_idle", "uffd_wp",
 * "soft_dirty", "fault"; "unknown" for anything else. Never NULL.
 * Since: 0.1
 */
const char *damon_backend_name(int backend);

/**
 * damon_backend_from_name() - the enum damon_backend for a name of
 * damon_backend_name(). Return: the value or -EINVAL.
 * Since: 0.1
 */
int damon_backend_from_name(const char *name);

/**
 * damon_ctx_errmsg() - one sentence on the last call that failed on @ctx in
 * the calling thread. Never NULL ("" if none failed, "no context" for NULL).
 * The string belongs to the calling thread and stays valid until its next
 * call of damon_ctx_errmsg().
 * Since: 0.1
 */
const char *damon_ctx_errmsg(const damon_ctx *ctx);

/**
 * damon_ctx_status() - the monitor's state: running, error that ended it
 * (a target exited, ...), snapshots published, intervals in force.
 * Return: 0 or -EINVAL, -ECHILD.
 * Since: 0.1
 */
int damon_ctx_status(damon_ctx *ctx, struct damon_ctx_status *ret);

/**
 * damon_ctx_backend_status() - how @backend was judged for this context:
 * at its last start (AUTO records every backend), or probed now if it has
 * not started.
 * @backend: DAMON_BACKEND_KERNEL .. DAMON_BACKEND_MAX.
 * Return: 0 or -EINVAL, -ECHILD.
 * Since: 0.1
 */
int damon_ctx_backend_status(damon_ctx *ctx, int backend, struct damon_backend_status *ret);

/**
 * damon_probe() - judge @backend for monitoring @pid (0 = the caller) with
 * @ops, reading only: nothing is written anywhere, nothing is started.
 * Return: 0 or -EINVAL (unknown ops/backend, NULL @ret, bad sz).
 * Since: 0.1
 */
int damon_probe(uint32_t ops, pid_t pid, int backend, struct damon_backend_status *ret);

/* ------------------------------------------------------------------------ */
/* Manual drive                                                             */
/* ------------------------------------------------------------------------ */

/**
 * damon_ctx_step() - with DAMON_CTX_MANUAL: do the work that is due
 * (samples, aggregation, layout update) and say when more will be due.
 * @ret_next_us: microseconds until the next work is due; may be NULL. While
 * paused nothing is due: it is the update interval (a bounded wait), and
 * the fd becomes readable only once damon_ctx_resume() is called.
 *
 * Return: 0 or -EINVAL (NULL, or a context with its own thread), -EALREADY
 * (not running: never started, stopped, or every target exited earlier),
 * -ESRCH (the last target exited during this step: the monitor has ended;
 * damon_ctx_status() says how), -ECHILD.
 * Since: 0.1
 */
int damon_ctx_step(damon_ctx *ctx, uint64_t *ret_next_us);

/**
 * damon_ctx_fd() - a file descriptor for poll/epoll. With the library thread
 * it is readable after each new snapshot (read 8 bytes to reset it); with
 * DAMON_CTX_MANUAL it is readable when damon_ctx_step() is due.
 * Return: the fd (owned by the context) or -EINVAL, -ECHILD.
 * Since: 0.1
 */
int damon_ctx_fd(const damon_ctx *ctx);

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * damon_ctx_snapshot() - the newest snapshot, with one reference for the
 * caller. Safe from any thread.
 * Return: 0 or -EINVAL, -ECHILD, -EAGAIN (none published yet).
 * Since: 0.1
 */
int damon_ctx_snapshot(damon_ctx *ctx, damon_snapshot **ret);

/** damon_snapshot_ref() - one more reference. Return: @s. Any thread. Since: 0.1 */
damon_snapshot *damon_snapshot_ref(damon_snapshot *s);

/** damon_snapshot_unref() - drop one; NULL-safe. Return: NULL. Any thread. Since: 0.1 */
damon_snapshot *damon_snapshot_unref(damon_snapshot *s);

/** damon_snapshot_unrefp() - for __attribute__((cleanup)). Since: 0.1 */
void damon_snapshot_unrefp(damon_snapshot **p);

/**
 * damon_snapshot_nr_regions() - regions of every target, target by target,
 * each target's sorted by address. Return: the count (0 for NULL).
 * Since: 0.1
 */
size_t damon_snapshot_nr_regions(const damon_snapshot *s);

/**
 * damon_snapshot_region() - copy region @idx.
 * Return: 0 or -EINVAL (NULL, bad ret->sz), -ERANGE (@idx >= nr_regions).
 * Since: 0.1
 */
int damon_snapshot_region(const damon_snapshot *s, size_t idx, struct damon_region *ret);

/**
 * damon_snapshot_info() - sequence number, time, intervals in force, backend.
 * Return: 0 or -EINVAL.
 * Since: 0.1
 */
int damon_snapshot_info(const damon_snapshot *s, struct damon_snapshot_info *ret);

/**
 * damon_ctx_hotness() - how hot [@addr, @addr + @len) of the context's first
 * target is in the newest snapshot. Lock-free, never allocates,
 * async-signal-safe, safe from any thread while the monitor publishes. The
 * caller holds a reference to @ctx.
 *
 * Return: 0 or
 *  -EINVAL  NULL, @len 0, @addr + @len overflows, bad ret->sz.
 *  -EAGAIN  no snapshot yet, or a signal handler interrupted a publish on
 *           this same thread (manual mode): ask again later.
 *  -ENOENT  no monitored region overlaps the range.
 *  -ECHILD  inherited through fork().
 * Since: 0.1
 */
int damon_ctx_hotness(damon_ctx *ctx, uint64_t addr, uint64_t len, struct damon_hotness *ret);

/**
 * damon_target_hotness() - damon_ctx_hotness() for any target of a context.
 * Return: as damon_ctx_hotness(); -ENOENT also when @t left the newest snapshot.
 * Since: 0.1
 */
int damon_target_hotness(damon_target *t, uint64_t addr, uint64_t len, struct damon_hotness *ret);

/* ------------------------------------------------------------------------ */
/* Schemes                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * damos_opts_init() - fill @opts with the defaults of DAMOS_OPTS(): sz set,
 * every field 0 except the unbounded maxima (max_sz, max_nr_accesses,
 * max_age). For bindings and callers that cannot use the macro.
 * Return: 0 or -EINVAL (NULL).
 * Since: 0.1
 */
int damos_opts_init(struct damos_opts *opts);

/**
 * damon_ctx_add_scheme() - add an operation scheme (kernel semantics:
 * access pattern, apply interval, quotas with prioritization, goals,
 * watermarks, filters, stats). User-space backends execute it in libdamon's
 * core: madvise() for the calling process, process_madvise() for others
 * (cold, pageout, willneed, collapse; needs CAP_SYS_NICE), libnuma for
 * migrate_hot/migrate_cold; lru_prio/lru_deprio run on the kernel backend
 * only. Whatever cannot run on the backend chosen fails here (explicit
 * backend) or at damon_ctx_start() (AUTO) with -EOPNOTSUPP or -EPERM.
 * @ret: the borrowed scheme; may be NULL.
 *
 * Return: 0 or
 *  -EINVAL      NULL; bad sz; unknown action or flag; min > max in the
 *               pattern; watermarks not high >= mid >= low.
 *  -EOPNOTSUPP  the requested backend cannot execute this scheme: a
 *               cold-side action (cold, pageout, nohugepage, migrate_cold,
 *               lru_deprio) on a backend that sees writes only, without
 *               DAMOS_F_ALLOW_WRITES_ONLY; lru_prio/lru_deprio off the
 *               kernel backend (sentence in errmsg).
 *  -ECHILD, -ENOMEM.
 * Since: 0.1
 */
int damon_ctx_add_scheme(damon_ctx *ctx, const struct damos_opts *opts, damos **ret);

/**
 * damos_get_stats() - the scheme's counters (kernel meaning).
 * Return: 0 or -EINVAL, -ECHILD.
 * Since: 0.1
 */
int damos_get_stats(const damos *s, struct damos_stats *ret);

/**
 * damos_add_goal() - add a quota goal to a scheme. With goals the effective
 * bytes quota is tuned by feedback at every quota reset interval: raised
 * while the goals are under-achieved (current < target), lowered while
 * over-achieved, as the kernel does (highest current/target ratio of all
 * goals; quota_bytes and quota_ms still cap it). On the kernel backend
 * the kernel tunes it: damon_ctx_start() fails with -EOPNOTSUPP naming the
 * metric when this kernel's DAMON lacks it.
 * @opts: the goal; DAMOS_GOAL_USER_INPUT starts at opts->current_value.
 *
 * Return: the goal's index in the scheme (0, 1, ...) or
 *  -EINVAL  NULL; bad sz; unknown metric; target_value 0.
 *  -ECHILD, -ENOMEM.
 * Since: 0.1
 */
int damos_add_goal(damos *s, const struct damos_goal_opts *opts);

/**
 * damos_set_goal_current() - feed the current value of a
 * DAMOS_GOAL_USER_INPUT goal (e.g. a latency the application measured).
 * Safe while the context runs; used at the next quota reset. On a running
 * kernel backend it is passed to the kernel before this returns (a goal
 * added since the last start or commit: at the next commit).
 * @idx: what damos_add_goal() returned.
 *
 * Return: 0 or -EINVAL (NULL; no such goal; not a user_input goal), -ECHILD,
 * -EIO (kernel backend: the kernel did not take the value; errmsg says why).
 * Since: 0.1
 */
int damos_set_goal_current(damos *s, unsigned int idx, uint64_t current_value);

/**
 * damos_add_filter() - add a filter to a scheme. Filters of one layer are
 * looked at in the order added; the first that is about a piece of memory
 * decides (allow: it passes; else it is rejected). Memory no filter is about
 * passes, unless the layer's last filter allows (then it is rejected), as
 * in the kernel. Core layer: addr, target. Ops layer: anon and
 * hugepage_size (user-space backends read /proc/PID/pagemap; hugepage sizes
 * there are 4 KiB or PMD-sized), memcg, young, unmapped (kernel backend
 * only: damon_ctx_start() fails with -EOPNOTSUPP on another backend). The
 * kernel backend refuses (-EOPNOTSUPP at start) what that kernel's DAMON
 * lacks or would judge otherwise: allow on kernels whose filters only
 * reject; an allowing addr/target filter together with ops-layer filters;
 * ops-layer filters on vaddr/fvaddr for actions but stat and migrations.
 *
 * Return: 0 or
 *  -EINVAL      NULL; bad sz; unknown type; addr_start >= addr_end;
 *               min_sz > max_sz; memcg without memcg_path.
 *  -ECHILD, -ENOMEM.
 * Since: 0.1
 */
int damos_add_filter(damos *s, const struct damos_filter_opts *opts);

struct damos_quota_state {
	size_t sz;               /* caller: sizeof(struct damos_quota_state) */
	uint64_t esz;            /* effective bytes quota of this reset interval */
	uint64_t charged_sz;     /* charged in this reset interval */
	uint32_t active;         /* 1: watermarks (if any) let the scheme run */
	uint32_t min_score;      /* prioritization score threshold last used, 0..99 */
};

/**
 * damos_get_quota() - the scheme's quota state: the effective bytes quota
 * in force for the current reset interval (UINT64_MAX: unlimited), what
 * was charged in it, and whether the watermarks keep the scheme active.
 * On the kernel backend esz is the kernel's effective quota, read with the
 * stats (every update interval, at least 100 ms apart; kernels without
 * quotas/effective_bytes: not read); the kernel exports neither the
 * charged bytes nor the minimum score (0) nor the watermarks' verdict.
 * Return: 0 or -EINVAL, -ECHILD.
 * Since: 0.1
 */
int damos_get_quota(const damos *s, struct damos_quota_state *ret);

#ifdef __cplusplus
}
#endif

#endif /* DAMON_DAMON_H */
