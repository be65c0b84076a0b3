/*
 * The cluster side of the CLI: submitting a study's jobs to fsl_sub, SLURM or
 * SGE (`cpipe run --submit`), importing the markers the jobs leave into the
 * state database (every run, status and wait does it first), and waiting
 * (`cpipe run --submit --wait`, `cpipe wait`).
 */
#ifndef CPIPE_CLI_SUBMIT_H
#define CPIPE_CLI_SUBMIT_H

#include "study.h"

#include "cpipe/exec.h"

/* What cluster_sync learnt about each job of the study's graph. */
struct cluster_view {
	size_t count;                     /* graph->count */
	struct exec_submission *subs;     /* per job; kind EXEC_CLUSTER_NONE when not in flight */
	enum exec_cluster_state *states;  /* per job, for those in flight: QUEUED or RUNNING */
	bool *in_flight;                  /* submitted and still queued or running */
	size_t in_flight_count;
	size_t queued, running;
	size_t imported_ok, imported_failed, skipped; /* during this call */
};

/*
 * For every job of the graph with a submission record: import its marker
 * when there is one (state_record_success with the marker's output
 * signatures, or state_record_failure with the log path), else ask the
 * scheduler (one query for all of them) whether it is still queued or
 * running. Jobs that will never run (a parent failed) are cancelled and
 * reported as skipped; jobs gone from the scheduler without a marker are
 * recorded as failed. With `report`, each failure and skip is printed to
 * stderr. Returns 0, or -1 with err (a database error); a failed scheduler
 * query is reported and its jobs are kept in flight.
 */
int cluster_sync(struct study *study, struct cluster_view *view, bool report, struct cp_err *err);
void cluster_view_release(struct cluster_view *view);

/* Mark in-flight jobs as held (for a local run or plan), saying so unless quiet. */
void cluster_hold_in_flight(struct study *study, const struct cluster_view *view, struct plan_decision *decisions,
			    bool quiet);

struct submit_options {
	const char *backend;  /* --submit's value: NULL/"auto", "fsl_sub", "slurm", "sge" */
	double scale_time;    /* --scale-time; 0 = 1 */
	struct strvec holds;  /* --job-hold ids */
	bool wait;
	bool quiet;
	bool verbose;
};

/*
 * Submit every job whose decision is PLAN_RUN (claims already taken by
 * the caller are released after submission), held on in-flight parents from
 * `view`; print the cluster ids on stdout. With opt->wait, then wait as
 * cluster_wait does. Returns an exit code.
 */
int cluster_submit(struct study *study, struct plan_decision *decisions, const struct cluster_view *view,
		   const struct submit_options *opt);

/*
 * Poll (one scheduler query per poll) until no job of the graph is in
 * flight, with a progress line on a terminal. Returns EXIT_OK, or
 * EXIT_JOB_FAILED when a job failed or was skipped while waiting or when a
 * job of the graph's last attempt failed.
 */
int cluster_wait(struct study *study, bool quiet);

#endif
