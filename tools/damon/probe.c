// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon probe: every backend, whether it could monitor here, what it would
 * see, and the sentence libdamon gives for it (damon_probe(3): it only
 * looks, it starts nothing).
 */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include <damon/damon.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: damon probe [--pid PID] [--ops vaddr|paddr] [--json]\n"
		   "Judge each backend for monitoring PID (default: a process of this user\n"
		   "started by damon, i.e. this one) and say why those refused cannot.\n");
}

static const char *sees_str(uint32_t sees)
{
	if (sees == DAMON_SEES_WRITES)
		return "writes";
	if (sees == (DAMON_SEES_READS | DAMON_SEES_WRITES))
		return "reads+writes";
	return "-";
}

int cmd_probe(int argc, char **argv)
{
	static const struct option lo[] = {
		{"pid", required_argument, NULL, 'p'},
		{"ops", required_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	uint32_t ops = DAMON_OPS_VADDR;
	bool json = false;
	uint64_t pid = 0;
	int c, nr_usable = 0;
	struct sbuf b = {0};

	while ((c = getopt_long(argc, argv, "+p:o:jh", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_u64(optarg, &pid) || !pid || pid > INT32_MAX) {
				usage_error("probe", "--pid needs a process id, not \"%s\"",
					    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			if (!strcmp(optarg, "vaddr"))
				ops = DAMON_OPS_VADDR;
			else if (!strcmp(optarg, "paddr"))
				ops = DAMON_OPS_PADDR;
			else {
				usage_error("probe", "--ops is vaddr or paddr, not \"%s\"", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (ops == DAMON_OPS_PADDR && pid)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (json)
		sb_puts(&b, "[");
	else
		printf("%-10s %-8s %-12s %s\n", "backend", "verdict", "sees", "why");
	for (int be = DAMON_BACKEND_KERNEL; be <= DAMON_BACKEND_MAX; be++) {
		struct damon_backend_status st = {.sz = sizeof(st)};
		int err = damon_probe(ops, (pid_t)pid, be, &st);

		if (err) {
			snprintf(st.reason, sizeof(st.reason), "the probe failed: %s",
				 strerror(-err));
			st.usable = 0;
		}
		nr_usable += st.usable != 0;
		if (json) {
			sb_printf(&b,
				  "%s{\"backend\": \"%s\", \"usable\": %s, \"sees\": \"%s\", "
				  "\"reason\": ",
				  be == DAMON_BACKEND_KERNEL ? "" : ", ", damon_backend_name(be),
				  st.usable ? "true" : "false", sees_str(st.sees));
			sb_json_str(&b, st.reason);
			sb_puts(&b, "}");
		} else {
			printf("%-10s %-8s %-12s %s\n", damon_backend_name(be),
			       st.usable ? "usable" : "refused", sees_str(st.sees), st.reason);
		}
	}
	if (json) {
		sb_puts(&b, "]");
		printf("%s\n", b.p ? b.p : "[]");
		sb_free(&b);
	} else if (!pid && ops == DAMON_OPS_VADDR) {
		printf("\n(for this process; 'damon record -- CMD' watches a command from inside "
		       "with uffd_wp or fault when no other backend can)\n");
	}
	return nr_usable ? 0 : 1;
}
