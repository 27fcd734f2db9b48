// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Writing a record in damo's JSON record format, snapshot by snapshot, as
 * the monitor publishes them: into a temporary file beside the output that
 * is renamed into place once the list is closed, so the output is either
 * the previous file or a complete, valid record, never half of one.
 *
 * A record is one target's (a file holds one, or one per process of a
 * cgroup: rec_writer_next()), with damo's keys in damo's order; the
 * "libdamon" key (backend, what it sees, pid) is libdamon's own and damo
 * ignores it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <damon/damon.h>

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

#include "cli.h"

struct rec_writer {
	int fd;
	int format;
	bool first_snap;
	char *path, *tmp;
	struct sbuf b;
#ifdef HAVE_ZLIB
	z_stream z;
	bool z_on;
#endif
};

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Move what the buffer holds to the file (compressing it if asked). */
static int flush_buf(struct rec_writer *w, bool finish)
{
	int err = 0;

	if (w->b.oom)
		return -ENOMEM;
#ifdef HAVE_ZLIB
	if (w->z_on) {
		char out[65536];
		int zr;

		w->z.next_in = (Bytef *)w->b.p;
		w->z.avail_in = (uInt)w->b.len;
		do {
			w->z.next_out = (Bytef *)out;
			w->z.avail_out = sizeof(out);
			zr = deflate(&w->z, finish ? Z_FINISH : Z_NO_FLUSH);
			if (zr == Z_STREAM_ERROR)
				return -EIO;
			err = write_all(w->fd, out, sizeof(out) - w->z.avail_out);
			if (err)
				return err;
		} while (w->z.avail_out == 0 || (finish && zr != Z_STREAM_END));
		w->b.len = 0;
		return 0;
	}
#endif
	(void)finish;
	if (w->b.len)
		err = write_all(w->fd, w->b.p, w->b.len);
	w->b.len = 0;
	return err;
}

static const char *sees_name(uint32_t sees)
{
	if (sees == DAMON_SEES_WRITES)
		return "writes";
	if (sees == (DAMON_SEES_READS | DAMON_SEES_WRITES))
		return "reads and writes";
	return NULL;
}

/* A record's keys up to its list of snapshots, which is left open. */
static void put_head(struct rec_writer *w, const struct record *h)
{
	sb_printf(&w->b,
		  "{\n\"kdamond_idx\": %" PRId64 ",\n\"context_idx\": %" PRId64 ",\n"
		  "\"intervals\": {\"sample_us\": %" PRIu64 ", \"aggr_us\": %" PRIu64
		  ", \"ops_update_us\": %" PRIu64 ", \"intervals_goal\": {\"access_bp\": 0, "
		  "\"aggrs\": 0, \"min_sample_us\": 0, \"max_sample_us\": 0}},\n"
		  "\"scheme_idx\": null,\n\"target_id\": %" PRIu64 ",\n\"scheme_filters\": [],\n"
		  "\"libdamon\": {\"backend\": ",
		  h->kdamond_idx < 0 ? 0 : h->kdamond_idx, h->context_idx < 0 ? 0 : h->context_idx,
		  h->sample_us, h->aggr_us, h->update_us, h->target_id);
	sb_json_str(&w->b, h->backend);
	sb_puts(&w->b, ", \"sees\": ");
	if (sees_name(h->sees))
		sb_json_str(&w->b, sees_name(h->sees));
	else
		sb_puts(&w->b, "null");
	sb_printf(&w->b, ", \"pid\": %d},\n\"snapshots\": [", (int)h->pid);
}

int rec_writer_open(struct rec_writer **ret, const char *path, int format, const struct record *h)
{
	struct rec_writer *w = calloc(1, sizeof(*w));
	char *dir_copy = NULL;
	int err;

	if (!w)
		return -ENOMEM;
	w->fd = -1;
	w->format = format;
	w->first_snap = true;
	w->path = strdup(path);
	dir_copy = strdup(path);
	if (!w->path || !dir_copy ||
	    asprintf(&w->tmp, "%s/.%s.XXXXXX", dirname(dir_copy), basename(w->path)) < 0) {
		w->tmp = NULL;
		err = -ENOMEM;
		goto fail;
	}
	if (format == REC_JSON_COMPRESSED) {
#ifdef HAVE_ZLIB
		if (deflateInit(&w->z, Z_DEFAULT_COMPRESSION) != Z_OK) {
			err = -ENOMEM;
			goto fail;
		}
		w->z_on = true;
#else
		fprintf(stderr, "damon: this damon was built without zlib: no json_compressed; "
				"use --format json\n");
		err = -EOPNOTSUPP;
		goto fail;
#endif
	}
	/* mkstemp: 0600, as damo's default output permission */
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0) {
		err = -errno;
		fprintf(stderr, "damon: cannot create %s: %s\n", w->tmp, strerror(errno));
		free(w->tmp);
		w->tmp = NULL;
		goto fail;
	}
	sb_puts(&w->b, "[\n");
	put_head(w, h);
	err = flush_buf(w, false);
	if (err)
		goto fail;
	free(dir_copy);
	*ret = w;
	return 0;
fail:
	free(dir_copy);
	rec_writer_close(w, false);
	return err;
}

int rec_writer_snap(struct rec_writer *w, const struct record *h, const struct rsnap *s)
{
	uint64_t total = 0;

	for (size_t i = 0; i < s->nr; i++)
		total += s->r[i].end - s->r[i].start;
	sb_printf(&w->b,
		  "%s\n{\"start_time\": %" PRIu64 ", \"end_time\": %" PRIu64 ", \"regions\": [",
		  w->first_snap ? "" : ",", s->start_ns, s->end_ns);
	for (size_t i = 0; i < s->nr; i++)
		sb_printf(&w->b,
			  "%s\n  {\"start\": %" PRIu64 ", \"end\": %" PRIu64
			  ", \"nr_accesses\": {\"samples\": %u, \"percent\": null}, "
			  "\"age\": {\"usec\": null, \"aggr_intervals\": %u}, \"probe_hits\": [], "
			  "\"sz_filter_passed\": 0}",
			  i ? "," : "", s->r[i].start, s->r[i].end, s->r[i].nr_accesses,
			  s->r[i].age);
	sb_printf(&w->b, "],\n \"total_bytes\": %" PRIu64 ", \"damos_stats\": ", total);
	if (s->has_stats)
		sb_printf(&w->b,
			  "{\"nr_tried\": %" PRIu64 ", \"sz_tried\": %" PRIu64
			  ", \"nr_applied\": %" PRIu64 ", \"sz_applied\": %" PRIu64
			  ", \"sz_ops_filter_passed\": 0, \"qt_exceeds\": %" PRIu64
			  ", \"nr_snapshots\": 0, \"max_nr_snapshots\": 0}",
			  s->stats.nr_tried, s->stats.sz_tried, s->stats.nr_applied,
			  s->stats.sz_applied, s->stats.qt_exceeds);
	else
		sb_puts(&w->b, "null");
	sb_printf(&w->b, ", \"sample_interval_us\": %" PRIu64 "}", rsnap_sample_us(h, s));
	w->first_snap = false;
	return flush_buf(w, false);
}

int rec_writer_next(struct rec_writer *w, const struct record *h)
{
	sb_puts(&w->b, "\n],\n\"data_source\": \"unknown\"\n},\n");
	put_head(w, h);
	w->first_snap = true;
	return flush_buf(w, false);
}

int rec_writer_close(struct rec_writer *w, bool keep)
{
	int err = 0;

	if (!w)
		return 0;
	if (keep && w->fd >= 0) {
		sb_puts(&w->b, "\n],\n\"data_source\": \"unknown\"\n}\n]\n");
		err = flush_buf(w, true);
		if (!err && fsync(w->fd))
			err = -errno;
		if (close(w->fd) && !err)
			err = -errno;
		w->fd = -1;
		if (!err && rename(w->tmp, w->path))
			err = -errno;
		if (err)
			fprintf(stderr, "damon: cannot write %s: %s\n", w->path, strerror(-err));
		else {
			free(w->tmp);
			w->tmp = NULL;
		}
	}
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
#ifdef HAVE_ZLIB
	if (w->z_on)
		deflateEnd(&w->z);
#endif
	sb_free(&w->b);
	free(w->tmp);
	free(w->path);
	free(w);
	return err;
}
