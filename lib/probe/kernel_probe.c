// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Kernel DAMON through sysfs, judged by reading only.
 *
 * The DAMON sysfs tree is global and root-only, and a machine may already be
 * using it: writing nr_kdamonds fails with EBUSY while any kdamond runs, and
 * when it succeeds it removes every kdamond directory (stopped configurations
 * of other users included). An exclusive DAMON module (DAMON_STAT,
 * DAMON_RECLAIM, DAMON_LRU_SORT) makes every other kdamond start fail. So
 * this file only opens files O_RDONLY, calls faccessat() and fstatat(): it
 * never writes, and it never creates a kdamond to learn something (which is
 * why avail_operations is unknown when no kdamond directory exists).
 *
 * The verdict is one sentence "kernel: <fact>; <fact>; ...": facts that stop
 * the kernel backend first, facts that only inform after. With no stopping
 * fact the kernel backend is usable (lib/kernel does the rest: it takes the
 * lock, reclaims orphans, and still refuses what the probe could not see).
 *
 * Kdamond directories with a libdamon record (lib/kernel/owner.h) are told
 * apart: a live libdamon owner holds DAMON (stopping), a dead one left an
 * orphan that the next start reclaims (informative).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probe.h"
#include "../kernel/owner.h"
#include "../kernel/sysfs.h"
#include "../util/names.h"
#include "../util/fail.h"

#define DAMON_ADMIN "kernel/mm/damon/admin"
#define KDAMONDS DAMON_ADMIN "/kdamonds"

/* Values read from sysfs are short ("on", a pid, "vaddr fvaddr paddr"). */
#define VAL_MAX 128
/* Garbage is quoted in a sentence at most this long. */
#define SHOW_MAX 24
#define CLAUSE_MAX 224
#define SHORT_MAX 96
#define NR_CLAUSES 8

/*
 * The facts found, each in a full and (optionally) a short form: the whole
 * verdict must fit struct damon_backend_status.reason (256 bytes), so when
 * several facts meet, the later ones are said briefly rather than dropped.
 */
struct clauses {
	char text[NR_CLAUSES][CLAUSE_MAX];
	char brief[NR_CLAUSES][SHORT_MAX]; /* "" = as text */
	bool block[NR_CLAUSES];            /* this fact alone stops the kernel backend */
	unsigned int nr;
	unsigned int nr_block;
	bool modules_unknown; /* whether an exclusive module runs could not be read */
};

static void add(struct clauses *c, bool block, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void brief(struct clauses *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct clauses *c, bool block, const char *fmt, ...)
{
	va_list ap;

	if (c->nr == NR_CLAUSES)
		return;
	va_start(ap, fmt);
	vsnprintf(c->text[c->nr], CLAUSE_MAX, fmt, ap);
	va_end(ap);
	c->brief[c->nr][0] = '\0';
	c->block[c->nr] = block;
	c->nr++;
	if (block)
		c->nr_block++;
}

/* The short form of the clause added last. */
static void brief(struct clauses *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->nr)
		return;
	va_start(ap, fmt);
	vsnprintf(c->brief[c->nr - 1], SHORT_MAX, fmt, ap);
	va_end(ap);
}

/*
 * Read a small regular file @dfd/@path into @buf (NUL-terminated, trailing
 * whitespace cut; embedded NULs kept, so use the length). O_NONBLOCK: a FIFO
 * planted where a sysfs file should be must not hang the probe.
 * Return: the length, or -errno (-EISDIR, -EINVAL for anything not a regular
 * file).
 */
static int read_small(int dfd, const char *path, char *buf, size_t sz)
{
	struct stat st;
	size_t len = 0;
	int fd, rc = 0;

	buf[0] = '\0';
	fd = DM_FAIL(EACCES) ? -1 : openat(dfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if ((DM_FAIL(EIO) ? -1 : fstat(fd, &st)) < 0) {
		rc = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	while (len < sz - 1) {
		ssize_t n = DM_FAIL(EIO) ? -1 : read(fd, buf + len, sz - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	rc = (int)len;
out:
	close(fd);
	return rc;
}

/* Quote @len bytes of @in for a sentence: printable ASCII only, bounded. */
static const char *show(char out[SHOW_MAX + 4], const char *in, size_t len)
{
	size_t i, n = len < SHOW_MAX ? len : SHOW_MAX;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];

		out[i] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
	}
	if (len > SHOW_MAX)
		memcpy(out + n, "...", 3), n += 3;
	out[n] = '\0';
	return out;
}

/* A decimal number and nothing else (sysfs prints "71\n"; the newline is cut). */
static bool parse_ulong(const char *s, size_t len, unsigned long *ret)
{
	unsigned long v = 0;
	size_t i;

	if (!len || len > 9) /* no index, pid or count of DAMON's is longer */
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	*ret = v;
	return true;
}

/* @n bytes read are exactly @word (a NUL inside is not the end). */
static bool is_word(const char *val, int n, const char *word)
{
	return n >= 0 && (size_t)n == strlen(word) && !memcmp(val, word, (size_t)n);
}

/* A directory name the kernel gives an index: "0", "1", ... (no leading zeros). */
static bool is_index(const char *name, unsigned long *ret)
{
	if (name[0] == '0' && name[1] != '\0')
		return false;
	return parse_ulong(name, strlen(name), ret);
}

/* ------------------------------------------------------------------------ */

/* An exclusive DAMON module that runs makes every other kdamond start fail. */
static void probe_modules(int root, const char *sysfs_root, bool privileged, struct clauses *c)
{
	char path[96], val[VAL_MAX], q[SHOW_MAX + 4];
	size_t i;

	for (i = 0; i < dm_nr_exclusive_modules; i++) {
		const char *mod = dm_exclusive_modules[i].module;
		const char *name = dm_exclusive_modules[i].name;
		int n;

		snprintf(path, sizeof(path), "module/%s/parameters/enabled", mod);
		n = read_small(root, path, val, sizeof(val));
		if (n == -ENOENT || n == -ENOTDIR)
			continue; /* not built, or built without the parameter */
		if (n < 0) {
			/* the parameter is 0600: unreadable without root, said already */
			if ((n == -EACCES || n == -EPERM) && !privileged)
				continue;
			add(c, false, "whether %s runs is unknown (%s/%s: %s)", name, sysfs_root,
			    path, strerror(-n));
			brief(c, "whether %s runs is unknown", name);
			c->modules_unknown = true;
			continue;
		}
		if (is_word(val, n, "Y") || is_word(val, n, "y") || is_word(val, n, "1")) {
			add(c, true,
			    "%s is running and DAMON allows no other kdamond while it runs; "
			    "write N to %s/%s or use another backend",
			    name, sysfs_root, path);
			brief(c, "%s is running and excludes every other kdamond", name);
		} else if (!is_word(val, n, "N") && !is_word(val, n, "n") && !is_word(val, n, "0")) {
			add(c, false,
			    "whether %s runs is unknown (its enabled parameter reads \"%s\")",
			    name, show(q, val, (size_t)n));
			brief(c, "whether %s runs is unknown", name);
			c->modules_unknown = true;
		}
	}
}

/* What one kdamond directory says about itself. */
enum kd_state { KD_OFF, KD_ON, KD_UNKNOWN };

struct kd_seen {
	unsigned int nr[3];      /* by enum kd_state */
	unsigned long first[3];  /* lowest index seen in each state */
	char detail[3][64];      /* of that lowest one: "pid 71", what state reads */
	/* avail_operations of the first context found, or why there is none */
	int avail_rc;            /* length, or -errno; -ENODEV: no context dir */
	char avail[VAL_MAX];
	unsigned int nr_dirs;
	/* kdamonds with a libdamon record: a live owner, or a dead one */
	unsigned int nr_live, nr_orphan;
	unsigned long live_idx, orphan_idx;
	pid_t live_owner, orphan_owner;
	bool live_other_ns; /* that live owner counts pids in another pid namespace */
};

static void read_kd(int kds, const char *name, unsigned long idx, struct kd_seen *s,
		    bool privileged, const struct dm_probe_in *in)
{
	char path[64], val[VAL_MAX], q[SHOW_MAX + 4], detail[64];
	struct dm_owner_rec rec;
	unsigned long pid;
	enum kd_state st;
	int n;

	enum dm_owner_state os = dm_owner_read(in->run_dir, in->proc_root, idx, &rec);

	switch (os) {
	case DM_OWNER_ALIVE:
	case DM_OWNER_OTHER_NS: /* cannot be judged from here: taken as alive */
		if (!s->nr_live++ || idx < s->live_idx) {
			s->live_idx = idx;
			s->live_owner = rec.owner;
			s->live_other_ns = os == DM_OWNER_OTHER_NS;
		}
		return;
	case DM_OWNER_ORPHAN:
		if (!s->nr_orphan++ || idx < s->orphan_idx) {
			s->orphan_idx = idx;
			s->orphan_owner = rec.owner;
		}
		return;
	default:
		break; /* no record (or a broken one): not libdamon's */
	}

	snprintf(path, sizeof(path), "%s/state", name);
	n = read_small(kds, path, val, sizeof(val));
	if (is_word(val, n, "on")) {
		st = KD_ON;
		snprintf(path, sizeof(path), "%s/pid", name);
		n = read_small(kds, path, val, sizeof(val));
		if (n > 0 && parse_ulong(val, (size_t)n, &pid) && pid > 0)
			snprintf(detail, sizeof(detail), "pid %lu", pid);
		else
			snprintf(detail, sizeof(detail), "pid unknown");
	} else if (is_word(val, n, "off")) {
		st = KD_OFF;
		detail[0] = '\0';
	} else if (n >= 0) {
		st = KD_UNKNOWN;
		snprintf(detail, sizeof(detail), "its state reads \"%s\"", show(q, val, (size_t)n));
	} else {
		st = KD_UNKNOWN;
		if ((n == -EACCES || n == -EPERM) && !privileged)
			snprintf(detail, sizeof(detail), "its state is root-only");
		else
			snprintf(detail, sizeof(detail), "its state is unreadable: %s",
				 strerror(-n));
	}
	if (!s->nr[st] || idx < s->first[st]) {
		s->first[st] = idx;
		memcpy(s->detail[st], detail, sizeof(detail));
	}
	s->nr[st]++;
}

/* The first contexts/M/avail_operations under kdamond @name, if not found yet. */
static void read_avail(int kds, const char *name, struct kd_seen *s)
{
	char path[64], file[96];
	struct dirent *de;
	unsigned long m;
	DIR *d;
	int fd;

	if (s->avail_rc >= 0 || (s->avail_rc != -ENODEV && s->avail_rc != -ENOENT))
		return; /* found one already, or met an error worth reporting */
	snprintf(path, sizeof(path), "%s/contexts", name);
	fd = DM_FAIL(EACCES) ? -1 : openat(kds, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		int n;

		if (!is_index(de->d_name, &m))
			continue;
		snprintf(file, sizeof(file), "%s/avail_operations", de->d_name);
		n = read_small(dirfd(d), file, s->avail, sizeof(s->avail));
		if (n == -ENOTDIR)
			continue; /* a file named like a context: not one */
		s->avail_rc = n;
		if (n >= 0 || n != -ENOENT)
			break;
	}
	closedir(d);
}

static void probe_kdamonds(int root, bool privileged, struct kd_seen *s, struct clauses *c,
			   const struct dm_probe_in *in)
{
	struct dirent *de;
	unsigned long idx;
	DIR *d;
	int fd;

	fd = DM_FAIL(EACCES) ? -1 : openat(root, KDAMONDS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		add(c, true, "%s cannot be listed (%s)", KDAMONDS, strerror(errno));
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		add(c, true, "%s cannot be listed (%s)", KDAMONDS, strerror(errno));
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!is_index(de->d_name, &idx))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		s->nr_dirs++;
		read_kd(dirfd(d), de->d_name, idx, s, privileged, in);
		read_avail(dirfd(d), de->d_name, s);
	}
	closedir(d);
}

/*
 * A kdamond without libdamon's record belongs to someone else. Name the one
 * that matters most: a running one (nr_kdamonds cannot change), then one in
 * an unknown state, then a stopped one (writing nr_kdamonds would erase its
 * configuration). libdamon's own: a live owner holds DAMON; a dead owner's
 * kdamond is reclaimed by the next start.
 */
static void say_kdamonds(const struct kd_seen *s, struct clauses *c)
{
	unsigned int more = s->nr_dirs - 1;
	char tail[48] = "";

	if (s->nr_live && s->live_other_ns) {
		add(c, true,
		    "kdamond %lu belongs to libdamon process %d in another pid namespace, which "
		    "cannot be checked from here and so counts as running; stop its context "
		    "there or use another backend",
		    s->live_idx, (int)s->live_owner);
		brief(c, "kdamond %lu is libdamon's (another pid namespace)", s->live_idx);
	} else if (s->nr_live) {
		add(c, true,
		    "kdamond %lu belongs to libdamon process %d, which is still running; stop "
		    "its context or use another backend",
		    s->live_idx, (int)s->live_owner);
		brief(c, "kdamond %lu is libdamon process %d's", s->live_idx, (int)s->live_owner);
	}
	if (s->nr_orphan) {
		add(c, false,
		    "kdamond %lu was left by libdamon process %d, which is gone; starting "
		    "reclaims it",
		    s->orphan_idx, (int)s->orphan_owner);
		brief(c, "kdamond %lu is an orphan of libdamon's", s->orphan_idx);
	}

	if (more)
		snprintf(tail, sizeof(tail), " (%u kdamond directories in all)", s->nr_dirs);
	if (s->nr[KD_ON] == 1) {
		add(c, true,
		    "kdamond %lu (%s) is running and is not libdamon's, so nr_kdamonds cannot "
		    "change; stop it or use another backend%s",
		    s->first[KD_ON], s->detail[KD_ON], tail);
		brief(c, "kdamond %lu (%s) is running and is not libdamon's", s->first[KD_ON],
		      s->detail[KD_ON]);
	} else if (s->nr[KD_ON]) {
		add(c, true,
		    "kdamond %lu (%s) and %u more are running and are not libdamon's, so "
		    "nr_kdamonds cannot change; stop them or use another backend",
		    s->first[KD_ON], s->detail[KD_ON], s->nr[KD_ON] - 1);
		brief(c, "kdamond %lu (%s) and %u more are running, not libdamon's",
		      s->first[KD_ON], s->detail[KD_ON], s->nr[KD_ON] - 1);
	} else if (s->nr[KD_UNKNOWN]) {
		add(c, true,
		    "kdamond %lu exists and is not libdamon's (%s), so libdamon leaves DAMON "
		    "alone%s",
		    s->first[KD_UNKNOWN], s->detail[KD_UNKNOWN], tail);
		brief(c, "kdamond %lu exists and is not libdamon's", s->first[KD_UNKNOWN]);
	} else if (s->nr[KD_OFF]) {
		add(c, true,
		    "kdamond %lu exists (off) and is not libdamon's, and writing nr_kdamonds would "
		    "erase it; remove it or use another backend%s",
		    s->first[KD_OFF], tail);
		brief(c, "kdamond %lu exists (off) and is not libdamon's", s->first[KD_OFF]);
	}
}

/* Is the wanted operations set among the words of avail_operations? */
static void say_avail(const struct kd_seen *s, const char *want, bool privileged,
		      struct clauses *c)
{
	char q[SHOW_MAX + 4], words[VAL_MAX];
	int n = s->avail_rc;

	if (!s->nr_dirs) {
		add(c, false,
		    "whether this kernel's DAMON offers %s cannot be read without writing "
		    "nr_kdamonds (no kdamond directory exists)",
		    want);
		brief(c, "whether it offers %s is unknown", want);
		return;
	}
	if (n == -ENODEV || n == -ENOENT) {
		add(c, false,
		    "whether this kernel's DAMON offers %s is unknown (no kdamond context lists "
		    "avail_operations)",
		    want);
		brief(c, "whether it offers %s is unknown", want);
		return;
	}
	if (n < 0) {
		if ((n == -EACCES || n == -EPERM) && !privileged)
			return;
		add(c, false,
		    "whether this kernel's DAMON offers %s is unknown (avail_operations: %s)",
		    want, strerror(-n));
		brief(c, "whether it offers %s is unknown", want);
		return;
	}
	if (memchr(s->avail, '\0', (size_t)n)) {
		add(c, true, "avail_operations reads \"%s\", so %s is not offered",
		    show(q, s->avail, (size_t)n), want);
		return;
	}
	if (dm_sysfs_has_word(s->avail, want))
		return; /* offered */
	if (!n) {
		add(c, true, "this kernel's DAMON offers no operations set, so no %s", want);
		return;
	}
	/* "paddr only, no vaddr"; several words read "vaddr fvaddr only, no paddr" */
	snprintf(words, sizeof(words), "%s", show(q, s->avail, (size_t)n));
	add(c, true, "this kernel's DAMON offers %s only, no %s", words, want);
	brief(c, "no %s in avail_operations", want);
}

/*
 * "kernel: " + clauses (those that stop the backend first) + the version's
 * limit, within @sz. A clause is said in full when the short forms of the
 * later clauses of its kind (stopping facts, then informative ones) still
 * fit, else briefly, else not at all (a tiny buffer, or an informative clause
 * with no room left): never cut in the middle.
 */
static void compose(const struct clauses *c, char *reason, size_t sz)
{
	const char *full[NR_CLAUSES + 1], *terse[NR_CLAUSES + 1];
	bool block[NR_CLAUSES + 1];
	unsigned int nr = 0, pass, i, j;
	size_t room, len, rest;
	bool first = true;

	if (!reason || !sz)
		return;
	if (!c->nr_block && c->modules_unknown) {
		full[nr] = "no kdamond holds DAMON here";
		block[nr] = true;
		terse[nr++] = "no kdamond holds DAMON here";
	} else if (!c->nr_block) {
		full[nr] = "nothing holds DAMON here (no exclusive module, no kdamond)";
		block[nr] = true;
		terse[nr++] = "nothing holds DAMON here";
	}
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < c->nr; i++) {
			if (c->block[i] != !pass)
				continue;
			full[nr] = c->text[i];
			block[nr] = c->block[i];
			terse[nr++] = c->brief[i][0] ? c->brief[i] : c->text[i];
		}
	}

	room = sz;
	len = (size_t)snprintf(reason, room, "kernel: ");
	if (len >= room)
		len = room - 1;
	for (i = 0; i < nr; i++) {
		const char *sep = first ? "" : "; ";
		const char *pick = NULL;

		/*
		 * keep room for the short forms of the later clauses of the same
		 * kind: stopping facts before informative ones
		 */
		for (rest = 0, j = i + 1; j < nr; j++)
			rest += block[j] == block[i] ? strlen(terse[j]) + 2 : 0;
		if (len + strlen(sep) + strlen(full[i]) + rest < room)
			pick = full[i];
		else if (len + strlen(sep) + strlen(terse[i]) < room)
			pick = terse[i];
		if (!pick)
			continue;
		len += (size_t)snprintf(reason + len, room - len, "%s%s", sep, pick);
		first = false;
	}
	reason[len] = '\0';
}

bool dm_kernel_probe(const struct dm_probe_in *in, char *reason, size_t reason_sz)
{
	const char *sysfs_root = in->sysfs_root ? in->sysfs_root : "/sys";
	const char *want = dm_ops_name(in->ops);
	struct clauses c = { .nr = 0 };
	struct kd_seen s = { .avail_rc = -ENODEV };
	char val[VAL_MAX], q[SHOW_MAX + 4];
	bool privileged = true;
	unsigned long nr;
	struct stat st;
	int root, n;

	root = DM_FAIL(EACCES) ? -1 : open(sysfs_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		if (reason && reason_sz)
			snprintf(reason, reason_sz, "kernel: %s cannot be opened (%s)",
				 sysfs_root, strerror(errno));
		return false;
	}
	if (fstatat(root, "kernel/mm/damon", &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
		if (reason && reason_sz)
			snprintf(reason, reason_sz,
				 "kernel: this kernel has no DAMON sysfs interface "
				 "(CONFIG_DAMON_SYSFS)");
		close(root);
		return false;
	}
	if (fstatat(root, KDAMONDS, &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
		if (reason && reason_sz)
			snprintf(reason, reason_sz,
				 "kernel: %s/kernel/mm/damon has no admin/kdamonds directory, so "
				 "DAMON cannot be driven through sysfs",
				 sysfs_root);
		close(root);
		return false;
	}

	/* 1. may this process write the tree at all (the files are 0600)? */
	if (faccessat(root, KDAMONDS "/nr_kdamonds", W_OK, AT_EACCESS) < 0) {
		int e = errno;

		if (e == EACCES || e == EPERM) {
			privileged = false;
			add(&c, true,
			    "the DAMON sysfs files are root-only and this process cannot write "
			    "admin/kdamonds/nr_kdamonds");
			brief(&c, "the DAMON sysfs files are root-only");
		} else if (e == EROFS) {
			add(&c, true, "sysfs is mounted read-only here");
		} else if (e == ENOENT) {
			add(&c, true, "the DAMON sysfs tree has no admin/kdamonds/nr_kdamonds");
		} else {
			add(&c, true, "admin/kdamonds/nr_kdamonds cannot be checked (%s)",
			    strerror(e));
		}
	}

	/* 2. an exclusive module running */
	probe_modules(root, sysfs_root, privileged, &c);

	/* 3. kdamonds of someone else, and avail_operations on the way */
	probe_kdamonds(root, privileged, &s, &c, in);
	say_kdamonds(&s, &c);

	n = read_small(root, KDAMONDS "/nr_kdamonds", val, sizeof(val));
	if (n >= 0 && !parse_ulong(val, (size_t)n, &nr))
		add(&c, true, "admin/kdamonds/nr_kdamonds reads \"%s\", not a number",
		    show(q, val, (size_t)n));
	else if (n >= 0 && nr != s.nr_dirs)
		add(&c, false, "nr_kdamonds reads %lu but %u kdamond directories exist", nr,
		    s.nr_dirs);
	else if (n < 0 && n != -ENOENT && !((n == -EACCES || n == -EPERM) && !privileged))
		add(&c, true, "admin/kdamonds/nr_kdamonds is unreadable (%s)", strerror(-n));

	/* 4. the operations set */
	if (!want)
		add(&c, true, "operations set %u is unknown", in->ops);
	else
		say_avail(&s, want, privileged, &c);

	/* 5. a paddr context monitors physical memory as one target */
	if (in->ops == DAMON_OPS_PADDR && in->nr_targets > 1)
		add(&c, true, "paddr takes exactly one target, not %u", in->nr_targets);

	close(root);
	compose(&c, reason, reason_sz);
	return c.nr_block == 0;
}
