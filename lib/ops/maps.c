// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "maps.h"
#include "../util/fail.h"
#include "../util/proc.h"

static bool is_eol(char c)
{
	return c == '\n' || c == '\0';
}

static const char *parse_dec(const char *p, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned int n = 0;

	for (; *p >= '0' && *p <= '9'; p++, n++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	if (!n)
		return NULL;
	*ret = v;
	return p;
}

static const char *skip_spaces(const char *p, bool required)
{
	if (required && *p != ' ' && *p != '\t')
		return NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int dm_maps_parse_line(const char *line, struct dm_map *ret)
{
	const char *p = line;
	uint64_t major, minor;
	size_t n;

	if (!line || !ret)
		return -EINVAL;
	memset(ret, 0, offsetof(struct dm_map, name) + 1);

	p = dm_parse_hex(p, 16, &ret->start);
	if (!p || *p++ != '-')
		return -EINVAL;
	p = dm_parse_hex(p, 16, &ret->end);
	if (!p || ret->start >= ret->end)
		return -EINVAL;
	p = skip_spaces(p, true);
	if (!p)
		return -EINVAL;

	/* perms: exactly [r-][w-][x-][ps] */
	if (p[0] == 'r')
		ret->perms |= DM_MAP_READ;
	else if (p[0] != '-')
		return -EINVAL;
	if (p[1] == 'w')
		ret->perms |= DM_MAP_WRITE;
	else if (p[1] != '-')
		return -EINVAL;
	if (p[2] == 'x')
		ret->perms |= DM_MAP_EXEC;
	else if (p[2] != '-')
		return -EINVAL;
	if (p[3] == 's')
		ret->perms |= DM_MAP_SHARED;
	else if (p[3] != 'p')
		return -EINVAL;
	p = skip_spaces(p + 4, true);
	if (!p)
		return -EINVAL;

	p = dm_parse_hex(p, 16, &ret->offset);
	if (!p)
		return -EINVAL;
	p = skip_spaces(p, true);
	if (!p)
		return -EINVAL;

	p = dm_parse_hex(p, 8, &major);
	if (!p || *p++ != ':')
		return -EINVAL;
	p = dm_parse_hex(p, 8, &minor);
	if (!p)
		return -EINVAL;
	ret->dev_major = (uint32_t)major;
	ret->dev_minor = (uint32_t)minor;
	p = skip_spaces(p, true);
	if (!p)
		return -EINVAL;

	p = parse_dec(p, &ret->inode);
	if (!p)
		return -EINVAL;
	if (is_eol(*p)) {
		ret->name[0] = '\0';
		return 0;
	}
	p = skip_spaces(p, true);
	if (!p)
		return -EINVAL;

	for (n = 0; !is_eol(p[n]); n++)
		;
	if (n >= DM_MAP_NAME_MAX) {
		ret->name_truncated = 1;
		n = DM_MAP_NAME_MAX - 1;
	}
	memcpy(ret->name, p, n);
	ret->name[n] = '\0';
	return 0;
}

bool dm_map_is_vsyscall(const struct dm_map *m)
{
	return !strcmp(m->name, "[vsyscall]");
}

bool dm_map_is_special(const struct dm_map *m)
{
	static const char *const ordinary[] = {"[heap]", "[stack", "[anon:", "[anon_shmem:"};
	size_t i;

	if (m->name[0] != '[')
		return false;
	for (i = 0; i < sizeof(ordinary) / sizeof(ordinary[0]); i++)
		if (!strncmp(m->name, ordinary[i], strlen(ordinary[i])))
			return false;
	/* [vdso], [vvar], [vvar_vclock], [vsyscall], [uprobes], [sigpage], ... */
	return true;
}

static int feed_line(const char *line, dm_maps_cb cb, void *userdata)
{
	struct dm_map m;

	if (dm_maps_parse_line(line, &m) < 0)
		return 0;
	return cb(&m, userdata);
}

int dm_maps_foreach_text(const char *text, size_t len, dm_maps_cb cb, void *userdata)
{
	char line[8192];
	size_t i = 0;
	int r;

	if (!text || !cb)
		return -EINVAL;
	while (i < len) {
		size_t n = 0;

		while (i + n < len && !is_eol(text[i + n]))
			n++;
		/* Copy: the parser needs a terminator inside @len. */
		if (n < sizeof(line)) {
			memcpy(line, text + i, n);
			line[n] = '\0';
			r = feed_line(line, cb, userdata);
			if (r)
				return r;
		}
		i += n + 1;
	}
	return 0;
}

int dm_maps_foreach(const char *path, dm_maps_cb cb, void *userdata)
{
	char buf[8192];
	size_t len = 0;
	bool skipping = false;
	int fd, r = 0;

	if (!path || !cb)
		return -EINVAL;
	fd = DM_FAIL(EACCES) ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = DM_FAIL(EIO) ? -1 : read(fd, buf + len, sizeof(buf) - 1 - len);
		size_t pos = 0;
		char *nl;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = memchr(buf + pos, '\n', len - pos))) {
			*nl = '\0';
			if (!skipping) {
				r = feed_line(buf + pos, cb, userdata);
				if (r)
					goto out;
			}
			skipping = false;
			pos = (size_t)(nl - buf) + 1;
		}
		if (n == 0) {
			/* A last line without '\n'. */
			if (pos < len && !skipping)
				r = feed_line(buf + pos, cb, userdata);
			break;
		}
		if (pos == 0 && len == sizeof(buf) - 1) {
			/* A line longer than the buffer: drop it up to its '\n'. */
			skipping = true;
			len = 0;
			continue;
		}
		memmove(buf, buf + pos, len - pos);
		len -= pos;
	}
out:
	close(fd);
	return r;
}

struct read_acc {
	const struct dm_alloc *a;
	struct dm_map *v;
	size_t nr, cap;
};

static int read_cb(const struct dm_map *m, void *userdata)
{
	struct read_acc *acc = userdata;

	if (acc->nr == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 64;
		struct dm_map *v;

		v = dm_realloc(acc->a, acc->v, acc->cap * sizeof(*v), cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		acc->v = v;
		acc->cap = cap;
	}
	acc->v[acc->nr++] = *m;
	return 0;
}

int dm_maps_read(const char *path, const struct dm_alloc *a, struct dm_map **ret, size_t *ret_nr)
{
	struct read_acc acc = {.a = a};
	int r;

	if (!ret || !ret_nr)
		return -EINVAL;
	r = dm_maps_foreach(path, read_cb, &acc);
	if (r < 0) {
		dm_free(a, acc.v);
		return r;
	}
	*ret = acc.v;
	*ret_nr = acc.nr;
	return 0;
}

size_t dm_maps_to_ranges(const struct dm_map *maps, size_t nr, struct dm_range *out)
{
	uint64_t prev_end = 0;
	size_t i, n = 0;

	for (i = 0; i < nr; i++) {
		if (dm_map_is_vsyscall(&maps[i]))
			continue;
		if (maps[i].start >= maps[i].end || maps[i].start < prev_end)
			continue;
		out[n].start = maps[i].start;
		out[n].end = maps[i].end;
		prev_end = maps[i].end;
		n++;
	}
	return n;
}
