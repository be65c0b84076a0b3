/*
 * Private to the exec module: what exec_scheduler.c owns, each scheduler's
 * command lines: submitting one unit (a job or an array), and the limits
 * and settings it asks the scheduler about. exec_cluster.c calls it; the
 * queries and cancels it also owns are public (cpipe/exec.h).
 */
#ifndef CPIPE_EXEC_SCHEDULER_H
#define CPIPE_EXEC_SCHEDULER_H

#include "cpipe/exec.h"

/* What a submission waits for. */
struct exec_holds {
	struct strvec whole;         /* ids (jobs, SLURM array tasks "J_T", whole arrays) that must succeed */
	struct strvec corresponding; /* array ids whose task i must succeed before task i here */
};

/* Everything one scheduler call needs. Paths are absolute. */
struct exec_submit_call {
	enum exec_cluster_kind kind;
	const char *root;  /* the data root */
	char *name;        /* job name (a file name: [A-Za-z0-9._-]) */
	char *script;      /* the job script, or the array script for SLURM/SGE arrays */
	char *tasks_file;  /* arrays: one command per line (fsl_sub -t); NULL for single jobs */
	size_t task_count; /* 0 for a single job */
	const char *token; /* the submission's token: fsl_sub passes it to a single job's script (NULL: none) */
	struct exec_holds holds;
	struct exec_resources resources; /* the largest of its jobs', minutes already scaled */
};

/*
 * Build the scheduler's argument vector for `call` (argv[0] is the program);
 * the unit tests check command lines with it, without a scheduler.
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
