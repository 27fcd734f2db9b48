/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * An error with its sentence. Every layer below the API reports failures as
 * -errno plus one sentence a person can act on; lib/api copies the sentence
 * into the calling thread's slot of the context (damon_ctx_errmsg()).
 */
#ifndef DAMON_UTIL_ERR_H
#define DAMON_UTIL_ERR_H

#define DM_ERRMSG_MAX 512

struct dm_err {
	int code;                 /* 0 or -errno */
	char msg[DM_ERRMSG_MAX];
};

/* Record -errno @code and a printf-style sentence; returns @code so callers
 * can write `return dm_err_set(err, -EINVAL, "...")`. @err may be NULL. */
int dm_err_set(struct dm_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Append "; " and more words to an existing sentence (bounded). */
void dm_err_append(struct dm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void dm_err_clear(struct dm_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

#endif
