// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

int dm_err_set(struct dm_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void dm_err_append(struct dm_err *err, const char *fmt, ...)
{
	size_t len;
	va_list ap;

	if (!err)
		return;
	len = strlen(err->msg);
	if (len && len + 2 < sizeof(err->msg)) {
		memcpy(err->msg + len, "; ", 3);
		len += 2;
	}
	if (len + 1 >= sizeof(err->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg + len, sizeof(err->msg) - len, fmt, ap);
	va_end(ap);
}
