/*
 * The cluster side of the CLI: submitting a study's jobs to fsl_sub, SLURM or
 * SGE (`cpipe run --submit`), saying what importing their markers found (the
 * sync module imports them; every run, status and wait does it first), and
 * waiting (`cpipe run --submit --wait`, `cpipe wait`).
 */
#ifndef CPIPE_CLI_CLUSTER_H
#define CPIPE_CLI_CLUSTER_H

#include "study.h"

#include "cpipe/exec.h"
#include "cpipe/sync.h"

/*
 * sync_cluster (markers into state records; the view of what is still in
 * flight), then print what it says: warnings always, each failure and skip
 * with `report`. Returns 0, or -1 with err (a database error); the view
 * (sync_view_release) is filled either way.
 */
int cluster_sync(struct study *study, struct sync_view *view, bool report, struct cp_err *err);

/* Mark in-flight jobs as held (for a local run or plan), each with where it is; run says so. */
void cluster_hold_in_flight(const struct sync_view *view, struct plan_decision *decisions);

struct submit_options {
	const char *backend;  /* --submit's value: NULL/"auto", "fsl_sub", "slurm", "sge" */
	double scale_time;    /* --scale-time; 0 = 1 */
	struct strvec holds;  /* --job-hold ids */
	bool wait;
	bool batch;           /* -b: chains of same-label jobs over the same placeholder values as one cluster job */
	bool quiet;
	bool verbose;
};

/*
 * Submit every job whose decision is PLAN_RUN (claims already taken by
 * the caller are released after submission), held on in-flight parents from
 * `view`; print the cluster ids on stdout. With opt->wait, then wait as
 * cluster_wait does. Returns an exit code.
 */
int cluster_submit(struct study *study, struct plan_decision *decisions, const struct sync_view *view,
		   const struct submit_options *opt);

/*
 * Poll (one scheduler query per poll) until no job of the graph is in
 * flight, with a progress line on a terminal. Returns EXIT_OK, or
 * EXIT_JOB_FAILED when a job failed or was skipped while waiting or when a
 * job of the graph's last attempt failed.
 */
int cluster_wait(struct study *study, bool quiet);

/*
 * Early cutoff for graph job `i` on a cluster (cmd_unchanged.c): write what
 * its last run read and wrote to .cpipe/jobs/<name>.unchanged and put in
 * `command` the check its job script runs first (`cpipe __unchanged FILE`,
 * with this binary's path: the nodes must see it there). `command` stays
 * empty when the job cannot be checked so (a path with a newline, a file
 * recorded unhashed): it then runs. -1 with err when the file cannot be
 * written.
 */
int cluster_skip_check(struct study *study, size_t i, struct strbuf *command, struct cp_err *err);

#endif
