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
	char *name; /* names its files (.cpipe/jobs/<name>.*), once written */
};

/*
 * Jobs merged into batches (exec_batch.c): batch b runs jobs
 * members[start[b] .. start[b + 1]) in that order (dependencies first), and
 * jobs[b] stands for it where units are planned, held and given resources:
 * its deps are batch indices (each below b), its holds the union of its
 * jobs' outside parents; a batch of several sums their minutes (0 when one
 * has none), takes the most ram and threads, and names its group
 * "g1+g2+..." so that one batch per subject can become an array task.
 */
struct exec_batches {
	size_t count;
	size_t *start;    /* count + 1 offsets into members */
	size_t *members;  /* job indices */
	size_t *batch_of; /* job -> batch */
	struct exec_cluster_job *jobs; /* per batch */
	char **names;     /* per batch: the name its unit is given (a batch of one: its job's), from exec_batches_name */
	char **groups;    /* owned group names of batches of several */
	size_t *dep_storage;
	const char **outside_id_storage;
	const struct exec_submission **outside_storage;
};

/* Merge `jobs` into batches (see exec_batch.c); release with exec_batches_release. */
void exec_batches_form(const struct exec_cluster_job *jobs, size_t count, struct exec_batches *out);
size_t exec_batch_size(const struct exec_batches *batches, size_t b);
/* Name every batch (`names`: the jobs' file names): a batch of one after its job. */
void exec_batches_name(struct exec_batches *batches, const struct exec_cluster_job *jobs, char *const *names);
/*
 * Append the shell text that runs batch `b` of several jobs in data root
 * `root`: its jobs' scripts are entries first_entry, first_entry + 1, ... of
 * the unit's scripts file, which the text reads with the functions
 * exec_scripts_reader defines before it.
 */
void exec_batch_runner(const struct exec_cluster_job *jobs, const struct exec_batches *batches, size_t b,
		       char *const *names, const char *root, size_t first_entry, struct strbuf *out);
void exec_batches_release(struct exec_batches *batches);

/* What a submission record says of the submission as a whole. */
struct exec_record_head {
	enum exec_cluster_kind kind;
	const char *job; /* the scheduler's id */
	int64_t submitted_ns;
	const char *token; /* the submission's token (see exec_cluster_job_script), or NULL */
};

/* The digits of a submission's token, and the length of the line that names it: "# cpipe submission T\n". */
#define EXEC_TOKEN_DIGITS 16
#define EXEC_TOKEN_LINE (19 + EXEC_TOKEN_DIGITS + 1)

/* fsl_sub's task list of a unit: <unit>.<token>.tasks, a name no later submission writes (see exec_cluster.c). */
void exec_tasks_path(const char *cwd, const char *unit, const char *token, struct strbuf *out);

/* One job a submission carries: its array task (0: none), file name, log and note (may be NULL). */
struct exec_record_member {
	const char *name;
	long task;
	const char *log_path;
	const char *note;
};

/*
 * Write the record of a submission (.cpipe/jobs/<unit>.submission, see
 * exec_records_load) atomically: the head, one line per member, and an end
 * line counting them, without which a reader refuses it.
 */
int exec_record_write(const char *cwd, const char *unit, const struct exec_record_head *head,
		      const struct exec_record_member *members, size_t count, struct cp_err *err);

/*
 * `base`, or `base`-2, -3, ...: the first name no record uses. A unit whose
 * record is still there may have tasks yet to start, which read its files;
 * they are not overwritten. Free with free().
 */
char *exec_record_unit_name(const char *cwd, const char *base);

/*
 * A script's owner: the submission with token `token` (EXEC_TOKEN_DIGITS hex
 * digits), whose file `file` (the unit's scripts file, or the job's own
 * script) names that token in one of its first lines while the submission is
 * the unit's. A later submission that takes the unit's name writes the file
 * again with its own token: a task of the earlier one, started late or still
 * running, then runs nothing and records nothing.
 */
struct exec_script_owner {
	const char *file;  /* as the script sees it: relative to the data root, or absolute; NULL for a
	                      job script run by a launcher or runner, which defined current and stale */
	const char *token;
	int token_argument; /* the positional parameter that overrides `token` (fsl_sub passes it), 0: none */
};

/*
 * Append the shell text defining cpipe_token, cpipe_file, current (true
 * while cpipe_file names the token) and stale (what a task says when not),
 * and, with `entries`, entry N (script N of a scripts file); then the text
 * ends the script, saying why on stderr, unless current is true.
 */
void exec_scripts_reader(const struct exec_script_owner *owner, bool entries, struct strbuf *out);

/*
 * Append the job script of `job` (file name `name`, data root `root`,
 * submitted by `owner`) to `out`; `parent_names`/`parent_ids` are the file
 * names and ids of the jobs whose markers it checks first.
 */
void exec_cluster_job_script(const struct exec_cluster_job *job, const char *name, const char *root,
			     const struct strvec *parent_names, const struct strvec *parent_ids,
			     const struct exec_script_owner *owner, struct strbuf *out);

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
