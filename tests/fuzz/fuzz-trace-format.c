// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The format file of the damon:damon_aggregated tracepoint
 * (lib/kernel/trace.c, dm_ktrace_parse_format): where each field of a
 * record lies. The input is the text of the file; the seeds are the files of
 * the 6.12 and 7.2 kernels recorded in the VM.
 *
 * Properties: a layout accepted has all six fields, each within the first
 * 4096 bytes of a record with a size the reader takes (4 to 8 bytes, 8 for
 * the addresses), so that no record read with it reaches past its end;
 * a refusal says why in a NUL-terminated sentence.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "kernel/kernel_int.h"

static void check_field(const struct dm_kfield *f, uint32_t min, const char *name)
{
	FUZZ_CHECK(f->size >= min && f->size <= 8, "%s: size %u", name, f->size);
	FUZZ_CHECK(f->off <= 4096, "%s: offset %u", name, f->off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dm_kernel *k = calloc(1, sizeof(*k));
	struct dm_err err = {0};
	char *text = fuzz_text(data, size);
	int rc;

	if (!k)
		abort();
	strcpy(k->fs.root, "/sys");
	rc = dm_ktrace_parse_format(k, text, "format", &err);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "returned %d", rc);
	if (rc) {
		FUZZ_CHECK(err.code == rc && memchr(err.msg, '\0', sizeof(err.msg)) && err.msg[0],
			   "no sentence");
	} else {
		check_field(&k->f_target, 4, "target_id");
		check_field(&k->f_nr_regions, 4, "nr_regions");
		check_field(&k->f_start, 8, "start");
		check_field(&k->f_end, 8, "end");
		check_field(&k->f_nr_accesses, 4, "nr_accesses");
		check_field(&k->f_age, 4, "age");
	}
	free(text);
	free(k);
	return 0;
}
