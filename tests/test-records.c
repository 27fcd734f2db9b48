// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The record files damon(1) reads (tools/damon/records.c): numbers a file
 * may hold that no integer of the record can (seen while writing
 * fuzz-records, reproduced through it under UBSan). Each converted a
 * double out of its type's range, which is undefined; now they load
 * clamped, and NaN reads as 0.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "cli.h"

/* Load @text as a record file. */
static int load_text(const char *text, struct records *rs)
{
	char path[] = "/tmp/libdamon-records-XXXXXX";
	int fd = mkstemp(path), err;
	size_t len = strlen(text);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
	close(fd);
	err = records_load(path, rs);
	unlink(path);
	return err;
}

/* An index of 1e30, and a time of infinity minus infinity. */
static void test_index_and_nan(void)
{
	struct records rs = {0};

	EXPECT_EQ(load_text("[{\"kdamond_idx\": 1e30, \"context_idx\": -3, \"target_id\": 1e30,"
			    " \"snapshots\": [{\"start_time\": \"1e999 -1e999\", \"end_time\": 7,"
			    " \"regions\": [{\"start\": 0, \"end\": 4096}]}]}]",
			    &rs),
		  0);
	CU_ASSERT_FATAL(rs.nr == 1 && rs.v[0].nr == 1);
	CU_ASSERT(rs.v[0].kdamond_idx == INT64_MAX);
	CU_ASSERT(rs.v[0].context_idx == -1);
	CU_ASSERT(rs.v[0].target_id == UINT64_MAX);
	CU_ASSERT(rs.v[0].s[0].start_ns == 0);
	CU_ASSERT(rs.v[0].s[0].end_ns == 7);
	records_free(&rs);
}

/* A rate of infinity percent, where the sampling interval is longer than
 * the aggregation interval (no whole sample per aggregation: inf * 0). */
static void test_percent_inf(void)
{
	struct records rs = {0};

	EXPECT_EQ(load_text("[{\"intervals\": {\"sample_us\": 100000, \"aggr_us\": 5000},"
			    " \"snapshots\": [{\"regions\": [{\"start\": 0, \"end\": 4096,"
			    " \"nr_accesses\": {\"percent\": 1e999},"
			    " \"age\": {\"usec\": \"1e999 -1e999\"}}]}]}]",
			    &rs),
		  0);
	CU_ASSERT_FATAL(rs.nr == 1 && rs.v[0].nr == 1 && rs.v[0].s[0].nr == 1);
	CU_ASSERT(rs.v[0].s[0].r[0].nr_accesses == 0);
	CU_ASSERT(rs.v[0].s[0].r[0].age == 0);
	records_free(&rs);
}

int main(void)
{
	CU_pSuite s;
	int fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("records", NULL, NULL);
	CU_add_test(s, "an index of 1e30, a time of inf - inf", test_index_and_nan);
	CU_add_test(s, "inf percent with no sample per aggregation", test_percent_inf);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = (int)(CU_get_number_of_failures() + CU_get_number_of_tests_failed());
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
