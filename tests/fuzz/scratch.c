// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Files for the targets whose parsers read files (fuzz.h): one scratch
 * directory per process, under $TMPDIR or /tmp, removed at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static char scratch[PATH_MAX];

static void remove_scratch(void)
{
	char cmd[PATH_MAX + 32];

	/* only the directory this process made: the name came from mkdtemp */
	if (scratch[0] && snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch) < (int)sizeof(cmd) &&
	    system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", scratch);
}

const char *fuzz_scratch(void)
{
	const char *tmp = getenv("TMPDIR");

	if (scratch[0])
		return scratch;
	snprintf(scratch, sizeof(scratch), "%s/libdamon-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(remove_scratch);
	return scratch;
}

void fuzz_mkdirs(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	size_t base = strlen(dir) + 1;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	for (char *s = p + base; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			abort();
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		abort();
}

void fuzz_put(const char *dir, const char *rel, const void *data, size_t len)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len)) {
		fprintf(stderr, "fuzz: writing %s: %s\n", p, strerror(errno));
		abort();
	}
	close(fd);
}
