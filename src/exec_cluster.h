/*
 * Private to the exec module: what exec_cluster.c owns (job scripts,
 * markers and submission records, grouping jobs into arrays, their holds and
 * resources, and exec_cluster_submit's steps) and its unit tests use. It
 * calls into exec_scheduler.c (exec_scheduler.h), never the other way.
 */
#ifndef CPIPE_EXEC_CLUSTER_H
#define CPIPE_EXEC_CLUSTER_H

#include "exec_scheduler.h"

/* One submission: a single job or an array of jobs (tasks 1..count in `members` order). */
struct exec_unit {
	size_t *members; /* job indices */
	size_t count;
	bool array;
	char *job; /* the scheduler's id, once submitted */
};

/* Write a submission record (.cpipe/jobs/<name>.submitted) atomically. */
int exec_submission_write(const char *cwd, const char *name, const struct exec_submission *sub, struct cp_err *err);

/*
 * Append the job script of `job` (file name `name`, data root `root`) to
 * `out`; `parent_names`/`parent_ids` are the file names and ids of the jobs
 * whose markers it checks first.
 */
void exec_cluster_job_script(const struct exec_cluster_job *job, const char *name, const char *root,
			     const struct strvec *parent_names, const struct strvec *parent_ids, struct strbuf *out);

/*
 * Group jobs into submissions (see exec_cluster.c). `unit_of` and `task_of`
 * (count entries, zeroed by the caller) get each job's unit and task
 * (1-based, 0 for a single job). *units_out is freed with exec_cluster_units_free.
 */
void exec_cluster_plan(const struct exec_cluster_job *jobs, size_t count, size_t array_min, size_t array_max,
		       struct exec_unit **units_out, size_t *unit_count, size_t *unit_of, size_t *task_of);
void exec_cluster_units_free(struct exec_unit *units, size_t count);

/* The holds of unit `unit_index`, whose parents' units are already submitted (units[].job set). */
void exec_cluster_unit_holds(const struct exec_cluster_job *jobs, const struct exec_unit *units, size_t unit_index,
			     const size_t *unit_of, const size_t *task_of, const struct exec_cluster_options *opt,
			     struct exec_holds *holds);
void exec_holds_release(struct exec_holds *holds);

/* The resources of `unit`: the largest of its jobs', minutes scaled by opt->scale_time. */
void exec_unit_resources(const struct exec_cluster_job *jobs, const struct exec_unit *unit,
			 const struct exec_cluster_options *opt, struct exec_resources *out);

#endif
