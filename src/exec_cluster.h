/*
 * Private to the exec module: what exec_cluster.c (scripts, records,
 * grouping) and exec_scheduler.c (each scheduler's command lines) share.
 */
#ifndef CPIPE_EXEC_CLUSTER_H
#define CPIPE_EXEC_CLUSTER_H

#include "cpipe/exec.h"

/* One submission: a single job or an array of jobs (tasks 1..count in `members` order). */
struct exec_unit {
	size_t *members; /* job indices */
	size_t count;
	bool array;
	char *job; /* the scheduler's id, once submitted */
};

/* What a submission waits for. */
struct exec_holds {
	struct strvec whole;         /* ids (jobs, SLURM array tasks "J_T", whole arrays) that must succeed */
	struct strvec corresponding; /* array ids whose task i must succeed before task i here */
};

/* The resources of a submission: the largest of its jobs' (borrowed strings). */
struct exec_unit_resources {
	long minutes; /* already scaled by --scale-time and rounded up */
	double ram_gb;
	long threads;
	const char *queue;
	const char *coprocessor;
	long coprocessor_count;
	const char *pe;
	const char *const *extra;
	size_t extra_count;
	const char *const *backend_extra;
	size_t backend_extra_count;
};

/* Everything one scheduler call needs. Paths are absolute. */
struct exec_submit_call {
	enum exec_cluster_kind kind;
	const char *root;  /* the data root */
	char *name;        /* job name (a file name: [A-Za-z0-9._-]) */
	char *script;      /* the job script, or the array script for SLURM/SGE arrays */
	char *tasks_file;  /* arrays: one command per line (fsl_sub -t); NULL for single jobs */
	size_t task_count; /* 0 for a single job */
	struct exec_holds holds;
	struct exec_unit_resources resources;
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

void exec_unit_resources(const struct exec_cluster_job *jobs, const struct exec_unit *unit,
			 const struct exec_cluster_options *opt, struct exec_unit_resources *out);

/*
 * Build the scheduler's argument vector for `call` (argv[0] is the program).
 * Exposed so that tests can check command lines without a scheduler.
 */
void exec_scheduler_argv(const struct exec_submit_call *call, struct strvec *argv);

/*
 * Submit `call`: run the command, parse the id it prints into *job_id
 * (owned by the caller). Returns 0, or -1 with err (the program's exit
 * status and stderr) when it failed; *job_id may then still be set.
 */
int exec_scheduler_submit(const struct exec_submit_call *call, char **job_id, struct cp_err *err);

/*
 * The parallel environment a job of `threads` > 1 asks for: the recipe's
 * `pe`, else $CPIPE_FSL_SUB_PE (fsl_sub) or $CPIPE_SGE_PE (SGE); for SGE else
 * "smp", for fsl_sub else NULL (none: fsl_sub refuses names its site does
 * not define, so cpipe cannot guess one).
 */
const char *exec_parallel_env(enum exec_cluster_kind kind, const char *pe);

/* `fsl_sub --has_queues` succeeded: fsl_sub submits to a cluster rather than running jobs here. */
bool exec_fsl_sub_has_queues(void);

/*
 * Run argv (argv[0] looked up on PATH), stdin /dev/null, collecting stdout
 * and stderr. *status gets the exit status (128+N for a signal). Returns 0,
 * or -1 with err when the program could not be started.
 */
int exec_run_capture(const struct strvec *argv, struct strbuf *out, struct strbuf *errout, int *status,
		     struct cp_err *err);

#endif
