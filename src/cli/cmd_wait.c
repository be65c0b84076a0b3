/* `cpipe wait`: block until the submitted jobs of the targets have left the cluster. */
#include "cluster.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char wait_usage[] =
	"usage: cpipe wait [TARGET ...] [options]\n"
	"\n"
	"Wait until every submitted job of the TARGETs (see `cpipe run --submit`) has\n"
	"left the cluster, importing each result into the state database as it comes,\n"
	"with a progress line on a terminal. The scheduler is asked once per poll for\n"
	"all jobs (CPIPE_POLL_INTERVAL seconds; default: 1 s, backing off to 30 s).\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --set P=V, --skip-missing:\n  as for run\n"
	"  -q, --quiet     print only failures and the summary\n"
	"  -h, --help      show this help\n"
	"\n"
	"Exit status: 0 when every job succeeded, 1 when a job failed or was skipped\n"
	"(or the last attempt of a job of the TARGETs failed), 2 on a usage error.\n";

static const struct option wait_options[] = {
	STUDY_LONG_OPTIONS,
	{"quiet", no_argument, NULL, 'q'},
	{NULL, 0, NULL, 0},
};

static int wait_option(int c, const char *arg, void *context)
{
	(void)arg;
	bool *quiet = context;
	if (c != 'q')
		return 0;
	*quiet = true;
	return 1;
}

int cmd_wait(int argc, char **argv)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	bool quiet = false;
	int rc = study_parse_args("wait", wait_usage, argc, argv, wait_options, "f:C:p:qh", &opt, wait_option, &quiet);
	if (rc < 0) {
		opt.need_state = true;
		struct study study;
		rc = study_load(&opt, &study);
		if (rc == EXIT_OK) {
			rc = cluster_wait(&study, quiet);
			study_release(&study);
		}
	}
	study_options_release(&opt);
	return rc;
}
