/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What the fuzz targets share: the libFuzzer entry points, a failed
 * property that aborts with what was seen (libFuzzer then saves the input),
 * a reader of the input's bytes, and a scratch directory for targets whose
 * parser reads files.
 */
#ifndef DAMON_FUZZ_H
#define DAMON_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional (weak): a target that needs no set-up leaves it out. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* A property every input must keep; a crash with the reason when not. */
#define FUZZ_CHECK(cond, ...)                                                               \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, \
				#cond);                                                     \
			fprintf(stderr, __VA_ARGS__);                                       \
			fputc('\n', stderr);                                                \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* The input as a stream of numbers and strings; past its end, zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint64_t fuzz_bytes(struct fuzz_in *in, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n && in->left; i++, in->p++, in->left--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	return (uint8_t)fuzz_bytes(in, 1);
}

/* Up to @max bytes, as many as the next byte says; *ret_len set. */
static inline const uint8_t *fuzz_chunk(struct fuzz_in *in, size_t max, size_t *ret_len)
{
	const uint8_t *p;
	size_t n = fuzz_u8(in);

	if (n > max)
		n = max;
	if (n > in->left)
		n = in->left;
	p = in->p;
	in->p += n;
	in->left -= n;
	*ret_len = n;
	return p;
}

/* The input as a NUL-terminated string in a buffer of exactly its size + 1
 * (reads past the NUL are ASan's to see). Free it. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A fresh directory under $TMPDIR (else /tmp), removed at exit; its path. */
const char *fuzz_scratch(void);
/* Write @len bytes to @dir/@rel (created or truncated); abort on failure. */
void fuzz_put(const char *dir, const char *rel, const void *data, size_t len);
/* mkdir -p @dir/@rel. */
void fuzz_mkdirs(const char *dir, const char *rel);

#endif
