/*
 * sync: bring the state database up to date with the cluster. Compute nodes
 * never touch SQLite; a cluster job leaves a marker file (exec) when it ends.
 * For every job of a graph with a submission record, sync imports its marker
 * into the state (a success with the marker's output signatures, a job its
 * script found unneeded (early cutoff) checked again and recorded up to
 * date with state_record_unchanged, or a failure with its log), asks the scheduler once about all the others, and
 * returns what is still queued or running: the cluster view that `run`,
 * `plan`, `status` and `wait` act on. What the caller may want to say (a
 * failure, a skip, a warning) comes back as events, in the order they
 * happened.
 */
#ifndef CPIPE_SYNC_H
#define CPIPE_SYNC_H

#include "cpipe/exec.h"
#include "cpipe/graph.h"
#include "cpipe/state.h"

enum sync_event_kind {
	SYNC_JOB_FAILED,          /* job, message (may be NULL), log (may be NULL) */
	SYNC_JOB_SKIPPED,         /* job, message: it never ran because a job it needs failed */
	SYNC_UNREADABLE_RECORD,   /* message: a submission record that cannot be read (ignored) */
	SYNC_QUERY_FAILED,        /* count jobs, message: the scheduler could not be asked; kept in flight */
	SYNC_CANCEL_FAILED,       /* message: jobs that will never run could not be cancelled; kept for next time */
};

struct sync_event {
	enum sync_event_kind kind;
	size_t job;    /* graph index, for SYNC_JOB_* */
	size_t count;  /* for SYNC_QUERY_FAILED */
	char *message;
	char *log;
};

/* What sync_cluster learnt about each job of the graph. */
struct sync_view {
	size_t count;                     /* graph->count */
	struct exec_submission *subs;     /* per job; kind EXEC_CLUSTER_NONE when not in flight */
	enum exec_cluster_state *states;  /* per job, for those in flight: QUEUED or RUNNING */
	bool *in_flight;                  /* submitted and still queued or running */
	size_t in_flight_count;
	size_t queued, running;
	size_t imported_ok, imported_failed, skipped; /* during this call */
	size_t imported_unneeded; /* of the markers imported, jobs early cutoff left out (recorded up to date) */
	struct sync_event *events;
	size_t event_count, event_cap;
};

/*
 * For every job of `graph` with a submission record under the working
 * directory: import its marker when there is one (state_record_success with
 * the marker's output signatures and the definition hash the job was
 * submitted with, or state_record_failure with the log path), else ask the
 * scheduler (one query for all of them) whether it is still queued or
 * running. Jobs that will never run (a job they need failed) are cancelled
 * and counted as skipped; jobs gone from the scheduler without a marker are
 * recorded as failed. Returns 0, or -1 with err (a database error); a failed
 * scheduler query is an event, and its jobs are kept in flight. The view
 * (sync_view_release) is filled either way.
 */
int sync_cluster(const struct graph *graph, struct state *state, struct sync_view *view, struct cp_err *err);
void sync_view_release(struct sync_view *view);

/*
 * The note a job's submission carries (exec_cluster_job.note): the hash of
 * its definition when it was submitted, which sync_cluster records when the
 * job succeeds, even if the recipe changed meanwhile. Free with free().
 */
char *sync_definition_note(const struct graph_job *job);

#endif
