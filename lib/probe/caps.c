// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Capabilities of the calling process: libcap when built with it, otherwise
 * the CapEff line of /proc/self/status. Only the effective set counts: it is
 * what the kernel checks when the process opens a file or calls ioctl().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBCAP
#include <sys/capability.h>
#endif

#include "probe.h"
#include "../util/fail.h"
#include "../util/proc.h"

bool dm_status_capeff(const char *text, uint64_t *ret)
{
	for (const char *line = text; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *p;
		uint64_t v;

		if (strncmp(line, "CapEff:", 7))
			continue;
		/* "CapEff:\t000001ffffffffff": 16 hex digits, nothing else */
		p = dm_parse_hex(line + 7 + strspn(line + 7, " \t"), 16, &v);
		if (!p || (*p != '\n' && *p != '\0'))
			return false;
		*ret = v;
		return true;
	}
	return false;
}

#ifdef HAVE_LIBCAP

bool dm_has_cap(int cap)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t caps;

	if (cap < 0 || !CAP_IS_SUPPORTED(cap))
		return false;
	caps = cap_get_proc();
	if (!caps)
		return false;
	if (cap_get_flag(caps, (cap_value_t)cap, CAP_EFFECTIVE, &v) < 0)
		v = CAP_CLEAR;
	cap_free(caps);
	return v == CAP_SET;
}

#else /* !HAVE_LIBCAP */

/*
 * /proc/self/status is a few kB (more with many groups); 16 kB holds it on
 * every kernel seen. If CapEff is not in what was read, the answer is "no".
 */
#define STATUS_MAX 16384

static bool read_capeff(uint64_t *ret)
{
	char *buf;
	size_t len = 0;
	bool found = false;
	int fd;

	fd = DM_FAIL(EACCES) ? -1 : open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	buf = DM_FAIL(ENOMEM) ? NULL : malloc(STATUS_MAX);
	if (!buf) {
		close(fd);
		return false;
	}
	while (len < STATUS_MAX - 1) {
		ssize_t n = DM_FAIL(EIO) ? -1 : read(fd, buf + len, STATUS_MAX - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';

	found = dm_status_capeff(buf, ret);
	free(buf);
	return found;
}

bool dm_has_cap(int cap)
{
	uint64_t eff;

	if (cap < 0 || cap > 63)
		return false;
	if (!read_capeff(&eff))
		return false;
	return (eff >> cap) & 1;
}

#endif /* HAVE_LIBCAP */
