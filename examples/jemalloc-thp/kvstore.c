// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The workload: an in-memory key-value store whose items and index live in
 * one jemalloc arena (mallocx(..., MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE)).
 *
 * Values are 64 B .. 64 KiB, log-uniform (as many 100-byte values as
 * 30-KiB ones: most items are small, most bytes are in big ones). Keys are
 * loaded in order until the values fill --heap; the popular keys are among
 * the last loaded (a cache whose newest entries are the ones asked for:
 * login tokens, feeds, today's items), so they sit together in memory, which is
 * what lets a 2 MiB page be worth it. Popularity is Zipf over ranks: the
 * top --hot % ranks are the hot keys, in a random order inside that last
 * part, the other ranks spread over the rest in a random order.
 *
 * Requests come at a steady offered load (--rate operations per second, a
 * server's clients), so that how often a page is touched does not depend on
 * how fast this machine happens to be; --rate 0 runs flat out.
 *
 * A get copies the value out and stamps the item (last access time, hit
 * count) and its index entry (access count), as caches do for their
 * eviction policy; so every access writes the item's first bytes and its
 * slot, which write-only monitors (uffd_wp, soft_dirty) see. A set
 * overwrites the value, or (--resize %) replaces the item with one of
 * another size: frees and new extents, the memory jemalloc maps and unmaps
 * while the store runs.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jemalloc/jemalloc.h>

#include "jthp.h"

#define MIN_VAL 64
#define MAX_VAL (64 * 1024)

struct item {
	uint64_t key;
	uint32_t len;	/* value bytes */
	uint32_t hits;	/* gets so far */
	uint64_t atime; /* operation count at the last get: what an LRU reads */
	unsigned char val[];
};

/* An index entry; freq counts its accesses (an LFU eviction policy's
 * input), so every operation writes its slot too. 32 bytes: the table is a
 * power of two in size. */
struct slot {
	uint64_t key;
	struct item *it;
	uint64_t freq;
	uint64_t pad;
};

struct kv {
	struct cfg c;
	int flags; /* mallocx flags: our arena, no thread cache */
	struct slot *tab;
	uint64_t mask;
	uint64_t nr_keys, nr_hot;
	uint64_t live_bytes;
	/* the request generator's state (plain malloc: not part of the store) */
	double *cdf; /* Zipf CDF over ranks */
	uint32_t *key_of_rank;
	uint64_t rng, clock;
	unsigned char *out; /* where a get copies the value */
	uint64_t gets, sets, resizes;
	double ops_per_sec;
};

/* splitmix64: the stored key of key number i, and the random stream. */
static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct kv *kv)
{
	kv->rng += 0x9e3779b97f4a7c15ULL;
	return mix(kv->rng);
}

static double rnd01(struct kv *kv)
{
	return (double)(rnd(kv) >> 11) * (1.0 / 9007199254740992.0);
}

/* Log-uniform value size from a uniform 64-bit number. */
static uint32_t val_size(uint64_t u)
{
	double x = (double)(u >> 11) * (1.0 / 9007199254740992.0);

	return (uint32_t)((double)MIN_VAL * exp2(x * log2((double)MAX_VAL / MIN_VAL)));
}

static struct slot *find(const struct kv *kv, uint64_t key)
{
	uint64_t i = key & kv->mask;

	while (kv->tab[i].key && kv->tab[i].key != key)
		i = (i + 1) & kv->mask;
	return &kv->tab[i];
}

static struct item *new_item(struct kv *kv, uint64_t key, uint32_t len)
{
	struct item *it = mallocx(sizeof(*it) + len, kv->flags);

	if (!it)
		return NULL;
	it->key = key;
	it->len = len;
	it->hits = 0;
	it->atime = kv->clock;
	memset(it->val, (int)(key & 0xff), len);
	kv->live_bytes += sizeof(*it) + len;
	return it;
}

static void free_item(struct kv *kv, struct item *it)
{
	kv->live_bytes -= sizeof(*it) + it->len;
	dallocx(it, kv->flags);
}

int kv_new(struct kv **ret, unsigned int arena, const struct cfg *c)
{
	struct kv *kv = calloc(1, sizeof(*kv));

	if (!kv)
		return -ENOMEM;
	kv->c = *c;
	kv->flags = MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE;
	kv->rng = c->seed;
	kv->out = malloc(MAX_VAL);
	if (!kv->out) {
		free(kv);
		return -ENOMEM;
	}
	*ret = kv;
	return 0;
}

/* The Zipf CDF over @n ranks and the rank -> key map described above. */
static int build_generator(struct kv *kv)
{
	uint64_t n = kv->nr_keys, first_hot = n - kv->nr_hot;
	double sum = 0;

	kv->cdf = malloc(n * sizeof(*kv->cdf));
	kv->key_of_rank = malloc(n * sizeof(*kv->key_of_rank));
	if (!kv->cdf || !kv->key_of_rank)
		return -ENOMEM;
	for (uint64_t r = 0; r < n; r++) {
		sum += pow((double)(r + 1), -kv->c.zipf_s);
		kv->cdf[r] = sum;
	}
	for (uint64_t r = 0; r < n; r++) {
		kv->cdf[r] /= sum;
		/* hot ranks -> the last keys loaded, the others -> the rest */
		kv->key_of_rank[r] = (uint32_t)(r < kv->nr_hot ? first_hot + r : r - kv->nr_hot);
	}
	/* shuffle inside each part (Fisher-Yates) */
	for (uint64_t r = kv->nr_hot; r > 1; r--) {
		uint64_t j = rnd(kv) % r;
		uint32_t t = kv->key_of_rank[r - 1];

		kv->key_of_rank[r - 1] = kv->key_of_rank[j];
		kv->key_of_rank[j] = t;
	}
	for (uint64_t r = n - kv->nr_hot; r > 1; r--) {
		uint32_t *v = kv->key_of_rank + kv->nr_hot;
		uint64_t j = rnd(kv) % r;
		uint32_t t = v[r - 1];

		v[r - 1] = v[j];
		v[j] = t;
	}
	return 0;
}

int kv_load(struct kv *kv)
{
	uint64_t n = 0, bytes = 0, cap = 1;

	/* How many keys fill the heap (a key's first size is fixed by it). */
	while (bytes < kv->c.heap) {
		bytes += sizeof(struct item) + val_size(mix(n ^ kv->c.seed));
		n++;
	}
	/* At most half full, and 2 MiB at least, 2 MiB-aligned: every operation
	 * probes it at random, so it is hot as a whole and a huge page should
	 * be able to hold it (a smaller table would share its 2 MiB with other
	 * memory, and no huge page would be worth it for the rest). */
	while (cap < 2 * n || cap * sizeof(struct slot) < HPAGE_SZ)
		cap <<= 1;
	kv->nr_keys = n;
	kv->nr_hot = n * kv->c.hot_pct / 100;
	if (!kv->nr_hot)
		kv->nr_hot = 1;
	kv->mask = cap - 1;
	kv->tab =
		mallocx(cap * sizeof(*kv->tab), kv->flags | MALLOCX_ZERO | MALLOCX_ALIGN(HPAGE_SZ));
	if (!kv->tab)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t key = mix(i) | 1; /* 0 marks an empty slot */
		struct slot *s = find(kv, key);

		s->key = key;
		s->it = new_item(kv, key, val_size(mix(i ^ kv->c.seed)));
		if (!s->it)
			return -ENOMEM;
	}
	return build_generator(kv);
}

static uint64_t zipf_rank(struct kv *kv)
{
	double u = rnd01(kv);
	uint64_t lo = 0, hi = kv->nr_keys - 1;

	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;

		if (kv->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void one_op(struct kv *kv)
{
	uint64_t key = mix(kv->key_of_rank[zipf_rank(kv)]) | 1, dice = rnd(kv);
	struct slot *s = find(kv, key);
	struct item *it = s->it;

	kv->clock++;
	s->freq++;
	if (dice % 100 >= kv->c.set_pct) {
		memcpy(kv->out, it->val, it->len);
		it->atime = kv->clock;
		it->hits++;
		kv->gets++;
		return;
	}
	kv->sets++;
	if ((dice >> 32) % 100 < kv->c.resize_pct) {
		struct item *n = new_item(kv, key, val_size(rnd(kv)));

		if (n) {
			free_item(kv, it);
			s->it = n;
			kv->resizes++;
			return;
		}
	}
	memset(it->val, (int)(kv->clock & 0xff), it->len);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void kv_run(struct kv *kv, unsigned int seconds)
{
	double t0 = now_sec(), t = t0;
	uint64_t ops0 = kv->clock;

	while (t - t0 < seconds) {
		for (int i = 0; i < 1024; i++)
			one_op(kv);
		t = now_sec();
		if (kv->c.rate) {
			/* ahead of the offered load: wait for the next requests */
			double due = t0 + (double)(kv->clock - ops0) / kv->c.rate;

			if (due > t) {
				struct timespec ts = {
					(time_t)(due - t),
					(long)((due - t - (double)(time_t)(due - t)) * 1e9)};

				nanosleep(&ts, NULL);
				t = now_sec();
			}
		}
	}
	kv->ops_per_sec = (double)(kv->clock - ops0) / (t - t0);
}

void kv_get_stats(const struct kv *kv, struct kv_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->nr_keys = kv->nr_keys;
	ret->nr_hot_keys = kv->nr_hot;
	ret->live_bytes = kv->live_bytes;
	for (uint64_t i = kv->nr_keys - kv->nr_hot; i < kv->nr_keys; i++) {
		const struct slot *s = find(kv, mix(i) | 1);

		ret->hot_bytes += sizeof(struct item) + s->it->len;
	}
	ret->hot_access_share = kv->cdf ? kv->cdf[kv->nr_hot - 1] : 0;
	ret->gets = kv->gets;
	ret->sets = kv->sets;
	ret->resizes = kv->resizes;
	ret->ops_per_sec = kv->ops_per_sec;
}

void kv_for_each_hot(const struct kv *kv, void (*fn)(uint64_t start, uint64_t end, void *arg),
		     void *arg)
{
	fn((uintptr_t)kv->tab, (uintptr_t)(kv->tab + kv->mask + 1), arg);
	for (uint64_t i = kv->nr_keys - kv->nr_hot; i < kv->nr_keys; i++) {
		const struct item *it = find(kv, mix(i) | 1)->it;

		fn((uintptr_t)it, (uintptr_t)it->val + it->len, arg);
	}
}

void kv_free(struct kv *kv)
{
	if (!kv)
		return;
	if (kv->tab) {
		for (uint64_t i = 0; i <= kv->mask; i++)
			if (kv->tab[i].it)
				free_item(kv, kv->tab[i].it);
		dallocx(kv->tab, kv->flags);
	}
	free(kv->cdf);
	free(kv->key_of_rank);
	free(kv->out);
	free(kv);
}
