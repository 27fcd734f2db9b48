// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The page cache module: sqlite3_pcache_methods2 over one pool (pool.h),
 * written from the interface's documentation in sqlite3.h.
 *
 * Each cache SQLite creates (one per open database file, usually) takes its
 * pages from the module's one pool. A page is found through one hash table
 * keyed by (cache, page number); each cache keeps a list of all its pages
 * (for xTruncate, xDestroy, and to stay within the cache size SQLite asks
 * for: a clock hand goes round it looking for an unpinned page not fetched
 * since the hand last passed). No list is touched on a hit: a hit only marks
 * its slot referenced, so that the hot path costs what a hash lookup costs.
 *
 * The rules that make dropping a page safe, from the interface:
 *  - a page is pinned from xFetch until xUnpin; SQLite may use its buffer
 *    and extra bytes any time in between, so a pinned page is never dropped;
 *  - "the page cache implementation may choose to evict unpinned pages at
 *    any time": SQLite keeps a page it changed (dirty) pinned until it is
 *    written, so an unpinned page's content is the file's (or the WAL's);
 *  - a dropped page is removed from the hash table before its memory goes:
 *    the next xFetch of that page number misses and SQLite reads it again
 *    from the file. Nothing is ever served from a slot that was released;
 *  - caches created with bPurgeable false (in-memory databases) hold the
 *    only copy of their pages: never dropped.
 * pc_release_range() applies them under the module's lock, then calls
 * madvise() with the lock dropped, on slots nobody can reach any more.
 *
 * Every method takes the one module lock: SQLite calls a cache from one
 * thread at a time, but caches share the pool, and the reclaim thread walks
 * the slots.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "pcache.h"
#include "pool.h"

#define NIL POOL_NONE
/* "The szExtra parameter will a number less than 250" (sqlite3.h). */
#define EXTRA_MAX 256
#define SLOT_HDR  48
#define BATCH	  256

enum slot_state {
	SLOT_FREE = 0,
	SLOT_PINNED,
	SLOT_UNPINNED,
	SLOT_RELEASING, /* out of its cache, memory being given back */
};

/* A slot's header, at the start of its meta; SQLite's extra bytes follow at
 * SLOT_HDR. */
struct pc_slot {
	sqlite3_pcache_page page; /* first: SQLite hands this pointer back */
	struct pc_cache *cache;	  /* owner, NULL when in no cache */
	uint32_t key;		  /* page number */
	uint32_t hnext;		  /* hash chain */
	uint32_t cprev, cnext;	  /* all the cache's pages */
	uint8_t state;		  /* enum slot_state */
	uint8_t ref;		  /* fetched since a clock hand or the reclaimer passed */
};
_Static_assert(sizeof(struct pc_slot) <= SLOT_HDR, "slot header too big");

struct pc_cache {
	struct pc_module *m;
	uint32_t page_sz, extra_sz;
	bool purgeable;
	uint32_t nmax;	/* xCachesize */
	uint32_t npage; /* pinned + unpinned */
	uint32_t nunpinned;
	uint32_t hand;	    /* the clock hand over list (NIL: its head) */
	uint32_t list;	    /* all pages */
	uint32_t max_key;   /* no page has a greater number */
	uint64_t *released; /* per page number: dropped by a release and not
			       read again since (for the reread count) */
	uint32_t released_words;
};

struct pc_module {
	pthread_mutex_t lock;
	struct pool pool;
	uint32_t *buckets;
	uint32_t mask;
	bool touch;
	struct pc_stats st;
};

/*
 * xCreate() is given no pArg: the module registered by xInit() is the one
 * mutable global of this example, set and cleared only by SQLite's
 * serialised xInit()/xShutdown().
 */
static struct pc_module *installed;

static struct pc_slot *slot_of(struct pc_module *m, uint32_t idx)
{
	return pool_meta(&m->pool, idx);
}

static uint32_t bucket_of(const struct pc_module *m, const struct pc_cache *c, uint32_t key)
{
	uint32_t h = key * 0x9e3779b1u ^ (uint32_t)((uintptr_t)c >> 4) * 0x85ebca6bu;

	return (h ^ h >> 15) & m->mask;
}

static uint32_t lookup(struct pc_module *m, struct pc_cache *c, uint32_t key)
{
	uint32_t idx = m->buckets[bucket_of(m, c, key)];

	while (idx != NIL) {
		struct pc_slot *s = slot_of(m, idx);

		if (s->key == key && s->cache == c)
			return idx;
		idx = s->hnext;
	}
	return NIL;
}

static void hash_insert(struct pc_module *m, uint32_t idx)
{
	struct pc_slot *s = slot_of(m, idx);
	uint32_t *b = &m->buckets[bucket_of(m, s->cache, s->key)];

	s->hnext = *b;
	*b = idx;
}

static void hash_remove(struct pc_module *m, uint32_t idx)
{
	struct pc_slot *s = slot_of(m, idx);
	uint32_t *link = &m->buckets[bucket_of(m, s->cache, s->key)];

	while (*link != NIL && *link != idx)
		link = &slot_of(m, *link)->hnext;
	if (*link == idx)
		*link = s->hnext;
	s->hnext = NIL;
}

static void list_add(struct pc_cache *c, uint32_t idx)
{
	struct pc_module *m = c->m;
	struct pc_slot *s = slot_of(m, idx);

	s->cprev = NIL;
	s->cnext = c->list;
	if (c->list != NIL)
		slot_of(m, c->list)->cprev = idx;
	c->list = idx;
}

static void list_remove(struct pc_cache *c, uint32_t idx)
{
	struct pc_module *m = c->m;
	struct pc_slot *s = slot_of(m, idx);

	if (s->cprev != NIL)
		slot_of(m, s->cprev)->cnext = s->cnext;
	else
		c->list = s->cnext;
	if (s->cnext != NIL)
		slot_of(m, s->cnext)->cprev = s->cprev;
	if (c->hand == idx)
		c->hand = s->cnext;
	s->cprev = s->cnext = NIL;
}

/* Take a page out of its cache: unreachable by any later xFetch. */
static void detach(struct pc_module *m, uint32_t idx)
{
	struct pc_slot *s = slot_of(m, idx);
	struct pc_cache *c = s->cache;

	hash_remove(m, idx);
	if (s->state == SLOT_UNPINNED)
		c->nunpinned--;
	list_remove(c, idx);
	c->npage--;
	s->cache = NULL;
	s->state = SLOT_FREE;
}

/* Out of its cache and back to the pool, memory kept for the next page. */
static void drop(struct pc_module *m, uint32_t idx)
{
	detach(m, idx);
	pool_put(&m->pool, idx);
}

/* Out of its cache and its memory given back to the kernel, now. */
static void drop_release(struct pc_module *m, uint32_t idx)
{
	detach(m, idx);
	if (pool_release_data(&m->pool, idx, 1) == 0)
		pool_put_released(&m->pool, idx);
	else
		pool_put(&m->pool, idx);
}

/*
 * The page to evict when the cache is full: the clock hand goes round the
 * cache's pages and stops at an unpinned one not referenced since it last
 * passed (second chance). NIL if every page is pinned.
 */
static uint32_t victim(struct pc_cache *c)
{
	struct pc_module *m = c->m;

	if (!c->nunpinned)
		return NIL;
	/* Two rounds at most: the first clears every reference bit. */
	for (uint64_t n = 0; n <= 2 * (uint64_t)c->npage; n++) {
		uint32_t idx = c->hand != NIL ? c->hand : c->list;
		struct pc_slot *s = slot_of(m, idx);

		c->hand = s->cnext;
		if (s->state != SLOT_UNPINNED)
			continue;
		if (!s->ref)
			return idx;
		s->ref = 0;
	}
	return NIL;
}

static void mark_released(struct pc_cache *c, uint32_t key)
{
	uint32_t w = key / 64;

	if (w >= c->released_words) {
		uint32_t n = w + 1 > c->released_words * 2 ? w + 1 : c->released_words * 2;
		uint64_t *v = realloc(c->released, n * sizeof(*v));

		if (!v)
			return; /* only the reread count loses it */
		memset(v + c->released_words, 0, (n - c->released_words) * sizeof(*v));
		c->released = v;
		c->released_words = n;
	}
	c->released[w] |= 1ULL << (key % 64);
}

/* True (and forgotten) if @key was dropped by a release. */
static bool take_released(struct pc_cache *c, uint32_t key)
{
	uint32_t w = key / 64;
	uint64_t bit = 1ULL << (key % 64);

	if (w >= c->released_words || !(c->released[w] & bit))
		return false;
	c->released[w] &= ~bit;
	return true;
}

/* ------------------------------------------------------------------------ */
/* sqlite3_pcache_methods2                                                  */
/* ------------------------------------------------------------------------ */

static int pc_init(void *arg)
{
	installed = arg;
	return SQLITE_OK;
}

static void pc_shutdown(void *arg)
{
	installed = NULL;
}

static sqlite3_pcache *pc_create(int page_sz, int extra_sz, int purgeable)
{
	struct pc_module *m = installed;
	struct pc_cache *c;

	/* A page that does not fit a slot: SQLite reports SQLITE_NOMEM. */
	if (!m || page_sz <= 0 || (uint32_t)page_sz > m->pool.page_sz || extra_sz < 0 ||
	    extra_sz > EXTRA_MAX)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->m = m;
	c->page_sz = (uint32_t)page_sz;
	c->extra_sz = (uint32_t)extra_sz;
	c->purgeable = purgeable != 0;
	c->nmax = 100; /* until xCachesize */
	c->list = c->hand = NIL;
	return (sqlite3_pcache *)c;
}

static void pc_cachesize(sqlite3_pcache *pc, int n)
{
	struct pc_cache *c = (struct pc_cache *)pc;
	struct pc_module *m = c->m;

	pthread_mutex_lock(&m->lock);
	c->nmax = n > 0 ? (uint32_t)n : 1;
	while (c->purgeable && c->npage > c->nmax) {
		uint32_t idx = victim(c);

		if (idx == NIL)
			break;
		drop(m, idx);
		m->st.evicted++;
	}
	pthread_mutex_unlock(&m->lock);
}

static int pc_pagecount(sqlite3_pcache *pc)
{
	struct pc_cache *c = (struct pc_cache *)pc;
	int n;

	pthread_mutex_lock(&c->m->lock);
	n = (int)c->npage;
	pthread_mutex_unlock(&c->m->lock);
	return n;
}

/* A slot for a page not in the cache, or NIL: createFlag 1 asks only for
 * what is easy, 2 for every effort (sqlite3.h). */
static uint32_t new_slot(struct pc_cache *c, int create)
{
	struct pc_module *m = c->m;
	bool full = c->purgeable && c->npage >= c->nmax;
	uint32_t idx = full ? victim(c) : NIL;

	if (idx != NIL) {
		detach(m, idx);
		m->st.evicted++;
		return idx;
	}
	/* Every page pinned: NULL lets SQLite spill dirty pages and retry. */
	if (full && create < 2)
		return NIL;
	idx = pool_alloc(&m->pool);
	if (idx == NIL && c->purgeable && (idx = victim(c)) != NIL) {
		detach(m, idx);
		m->st.evicted++;
	}
	return idx;
}

static void touch(const struct pc_module *m, const struct pc_cache *c, uint8_t *buf)
{
	/*
	 * Rewrite one byte of each system page with the value it holds: the
	 * content does not change, but the write is what a writes-only monitor
	 * sees. Safe: the page is in the cache and this runs inside xFetch,
	 * under the module's lock, in the thread SQLite serialises this
	 * cache's calls on; no one else writes this buffer meanwhile.
	 */
	for (uint32_t off = 0; off < c->page_sz; off += m->pool.os_page) {
		volatile uint8_t *b = buf + off;

		*b = *b;
	}
}

static sqlite3_pcache_page *pc_fetch(sqlite3_pcache *pc, unsigned int key, int create)
{
	struct pc_cache *c = (struct pc_cache *)pc;
	struct pc_module *m = c->m;
	struct pc_slot *s;
	uint32_t idx;

	pthread_mutex_lock(&m->lock);
	idx = lookup(m, c, key);
	if (idx != NIL) {
		s = slot_of(m, idx);
		if (s->state == SLOT_UNPINNED) {
			c->nunpinned--;
			s->state = SLOT_PINNED;
		}
		s->ref = 1;
		if (m->touch)
			touch(m, c, s->page.pBuf);
		m->st.hits++;
		pthread_mutex_unlock(&m->lock);
		return &s->page;
	}
	if (!create) {
		pthread_mutex_unlock(&m->lock);
		return NULL;
	}
	idx = new_slot(c, create);
	if (idx == NIL) {
		m->st.refused++;
		pthread_mutex_unlock(&m->lock);
		return NULL;
	}
	s = slot_of(m, idx);
	s->page.pBuf = pool_data(&m->pool, idx);
	s->page.pExtra = (uint8_t *)s + SLOT_HDR;
	/* SQLite takes extra bytes starting with zeros for a page it has not
	 * set up yet: a reused slot must look fresh. */
	memset(s->page.pExtra, 0, c->extra_sz);
	s->cache = c;
	s->key = key;
	s->state = SLOT_PINNED;
	s->ref = 1;
	hash_insert(m, idx);
	list_add(c, idx);
	c->npage++;
	if (key > c->max_key)
		c->max_key = key;
	m->st.misses++;
	if (take_released(c, key))
		m->st.reread++;
	pthread_mutex_unlock(&m->lock);
	return &s->page;
}

static void pc_unpin(sqlite3_pcache *pc, sqlite3_pcache_page *pg, int discard)
{
	struct pc_cache *c = (struct pc_cache *)pc;
	struct pc_module *m = c->m;
	uint32_t idx = pool_meta_index(&m->pool, pg);

	pthread_mutex_lock(&m->lock);
	if (discard) {
		drop(m, idx);
	} else if (c->purgeable && c->npage > c->nmax) {
		drop(m, idx);
		m->st.evicted++;
	} else {
		slot_of(m, idx)->state = SLOT_UNPINNED;
		c->nunpinned++;
	}
	pthread_mutex_unlock(&m->lock);
}

static void pc_rekey(sqlite3_pcache *pc, sqlite3_pcache_page *pg, unsigned int old_key,
		     unsigned int new_key)
{
	struct pc_cache *c = (struct pc_cache *)pc;
	struct pc_module *m = c->m;
	uint32_t idx = pool_meta_index(&m->pool, pg), other;

	pthread_mutex_lock(&m->lock);
	/* "Any prior cache entry associated with newKey is guaranteed not to
	 * be pinned": drop it. */
	other = lookup(m, c, new_key);
	if (other != NIL && other != idx)
		drop(m, other);
	hash_remove(m, idx);
	slot_of(m, idx)->key = new_key;
	hash_insert(m, idx);
	if (new_key > c->max_key)
		c->max_key = new_key;
	pthread_mutex_unlock(&m->lock);
}

static void pc_truncate(sqlite3_pcache *pc, unsigned int limit)
{
	struct pc_cache *c = (struct pc_cache *)pc;
	struct pc_module *m = c->m;

	pthread_mutex_lock(&m->lock);
	/* SQLite truncates at the end of every transaction, nearly always
	 * past the last page: keep that O(1), and a short range O(range). */
	if (limit > c->max_key) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	if (c->max_key - limit < c->npage) {
		for (uint32_t key = limit;; key++) {
			uint32_t idx = lookup(m, c, key);

			if (idx != NIL)
				drop(m, idx);
			if (key == c->max_key)
				break;
		}
	} else {
		for (uint32_t idx = c->list, next; idx != NIL; idx = next) {
			next = slot_of(m, idx)->cnext;
			if (slot_of(m, idx)->key >= limit)
				drop(m, idx);
		}
	}
	c->max_key = limit ? limit - 1 : 0;
	pthread_mutex_unlock(&m->lock);
}

static void pc_destroy(sqlite3_pcache *pc)
{
	struct pc_cache *c = (struct pc_cache *)pc;
	struct pc_module *m = c->m;

	pthread_mutex_lock(&m->lock);
	while (c->list != NIL)
		drop_release(m, c->list);
	pthread_mutex_unlock(&m->lock);
	free(c->released);
	free(c);
}

static void pc_shrink(sqlite3_pcache *pc)
{
	struct pc_cache *c = (struct pc_cache *)pc;
	struct pc_module *m = c->m;

	pthread_mutex_lock(&m->lock);
	for (uint32_t idx = c->list, next; idx != NIL; idx = next) {
		next = slot_of(m, idx)->cnext;
		if (slot_of(m, idx)->state == SLOT_UNPINNED)
			drop_release(m, idx);
	}
	pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------------------ */
/* The module                                                               */
/* ------------------------------------------------------------------------ */

int pc_module_new(struct pc_module **ret, uint32_t page_sz, uint32_t nslots)
{
	struct pc_module *m;
	uint32_t nb = 1;
	int err;

	if (page_sz < 512 || page_sz > 65536 || (page_sz & (page_sz - 1)) || !nslots ||
	    nslots >= NIL)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = pool_init(&m->pool, page_sz, nslots, SLOT_HDR + EXTRA_MAX);
	if (err) {
		free(m);
		return err;
	}
	while (nb < nslots && nb < (1u << 31))
		nb <<= 1;
	m->buckets = malloc((size_t)nb * sizeof(*m->buckets));
	if (!m->buckets) {
		pool_fini(&m->pool);
		free(m);
		return -ENOMEM;
	}
	memset(m->buckets, 0xff, (size_t)nb * sizeof(*m->buckets)); /* NIL */
	m->mask = nb - 1;
	pthread_mutex_init(&m->lock, NULL);
	*ret = m;
	return 0;
}

void pc_module_free(struct pc_module *m)
{
	if (!m)
		return;
	pool_fini(&m->pool);
	free(m->buckets);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int pc_module_install(struct pc_module *m)
{
	const sqlite3_pcache_methods2 methods = {
		.iVersion = 1,
		.pArg = m,
		.xInit = pc_init,
		.xShutdown = pc_shutdown,
		.xCreate = pc_create,
		.xCachesize = pc_cachesize,
		.xPagecount = pc_pagecount,
		.xFetch = pc_fetch,
		.xUnpin = pc_unpin,
		.xRekey = pc_rekey,
		.xTruncate = pc_truncate,
		.xDestroy = pc_destroy,
		.xShrink = pc_shrink,
	};

	/* SQLite copies the struct: it may live on the stack. */
	return sqlite3_config(SQLITE_CONFIG_PCACHE2, &methods);
}

void pc_module_set_touch(struct pc_module *m, bool on)
{
	pthread_mutex_lock(&m->lock);
	m->touch = on;
	pthread_mutex_unlock(&m->lock);
}

void pc_module_data_range(const struct pc_module *m, uint64_t *ret_start, uint64_t *ret_end)
{
	*ret_start = (uintptr_t)m->pool.data;
	*ret_end = (uintptr_t)m->pool.meta;
}

uint32_t pc_module_page_size(const struct pc_module *m)
{
	return m->pool.page_sz;
}

void pc_module_stats(struct pc_module *m, struct pc_stats *ret)
{
	pthread_mutex_lock(&m->lock);
	*ret = m->st;
	ret->pages = (uint64_t)(m->pool.nslots - m->pool.nfree);
	ret->resident_bytes = (uint64_t)m->pool.nresident * m->pool.page_sz;
	ret->capacity_bytes = (uint64_t)m->pool.nslots * m->pool.page_sz;
	pthread_mutex_unlock(&m->lock);
}

int pc_module_measure(struct pc_module *m, uint64_t *ret_data, uint64_t *ret_meta)
{
	return pool_measure(&m->pool, ret_data, ret_meta);
}

/* Give back the memory of slots taken out of their caches, in runs. */
static void release_batch(struct pc_module *m, const uint32_t *batch, uint32_t n)
{
	bool ok[BATCH];

	for (uint32_t j = 0, k; j < n; j = k) {
		int err;

		for (k = j + 1; k < n && batch[k] == batch[k - 1] + 1; k++)
			;
		err = pool_release_data(&m->pool, batch[j], k - j);
		for (uint32_t i = j; i < k; i++)
			ok[i] = !err;
	}
	pthread_mutex_lock(&m->lock);
	for (uint32_t j = 0; j < n; j++) {
		slot_of(m, batch[j])->state = SLOT_FREE;
		if (ok[j])
			pool_put_released(&m->pool, batch[j]);
		else
			pool_put(&m->pool, batch[j]);
	}
	m->st.released += n;
	pthread_mutex_unlock(&m->lock);
}

uint64_t pc_release_range(struct pc_module *m, uint64_t start, uint64_t end, uint64_t max_pages)
{
	struct pool *p = &m->pool;
	uint64_t data0 = (uintptr_t)p->data, data1 = (uintptr_t)p->meta, done = 0;
	uint32_t batch[BATCH], i, last;

	/* Pages smaller than the system's share system pages with their
	 * neighbours: this pool gives back whole slots only. */
	if (p->page_sz < p->os_page)
		return 0;
	start = start < data0 ? data0 : start;
	end = end > data1 ? data1 : end;
	if (end <= start)
		return 0;
	/* Slots wholly inside [start, end). */
	i = (uint32_t)((start - data0 + p->page_sz - 1) / p->page_sz);
	last = (uint32_t)((end - data0) / p->page_sz);
	while (i < last && done < max_pages) {
		uint32_t n = 0, scanned = 0;

		/* Short lock holds: SQLite's fetches wait on this lock. */
		pthread_mutex_lock(&m->lock);
		for (; i < last && n < BATCH && done + n < max_pages && scanned < 1024; scanned++) {
			struct pc_slot *s;

			if (i % 64 == 0 && i + 64 <= last && pool_word_free(p, i)) {
				i += 64;
				continue;
			}
			s = slot_of(m, i);
			/* A page fetched since the last pass stays, this time: DAMON
			 * samples one page of a region at a time, a region it finds
			 * cold may still hold a page SQLite just used. */
			if (s->state == SLOT_UNPINNED && s->ref) {
				s->ref = 0;
			} else if (s->state == SLOT_UNPINNED && s->cache->purgeable) {
				mark_released(s->cache, s->key);
				detach(m, i);
				s->state = SLOT_RELEASING;
				batch[n++] = i;
			}
			i++;
		}
		pthread_mutex_unlock(&m->lock);
		if (n)
			release_batch(m, batch, n);
		done += n;
	}
	return done;
}
