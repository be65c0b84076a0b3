/*
 * exec: running jobs that the caller has already chosen and ordered. A job is
 * a shell command with declared outputs, resource needs and dependencies on
 * earlier jobs. Two ways to run them: the local process pool (exec_run with
 * exec_backend_local, exec_local.c) runs them here and reports each start and
 * finish through callbacks; the cluster backends fsl_sub, SLURM and SGE
 * (exec_cluster_submit, below; exec_cluster.c with exec_scheduler.c) submit
 * them and leave marker files that a later call reads. The backend table, the
 * helpers they share and what a run left behind (exec_log_ending,
 * exec_end_runs) are exec.c. exec knows nothing of trees, recipes or the
 * state database.
 *
 * Files exec writes, all relative to the data root (exec_options.cwd):
 *   .cpipe/scripts/<name>.sh     the command of a job run through /bin/sh, as a script
 *   .cpipe/logs/<name>.log       the job's stdout and stderr (default log path)
 *   .cpipe/prev/<name>/<output>  old outputs kept aside while the job runs
 *   .cpipe/failed/<name>/<output> partial outputs of a failed or interrupted job
 * where <name> is util.h's job_file_name(job id).
 */
#ifndef CPIPE_EXEC_H
#define CPIPE_EXEC_H

#include "cpipe/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Directories under the data root, without a trailing slash. */
#define EXEC_STATE_DIR ".cpipe"
#define EXEC_SCRIPT_DIR ".cpipe/scripts"
#define EXEC_LOG_DIR JOB_LOG_DIR /* util.h's: the state rebuilds default log paths */
#define EXEC_PREV_DIR ".cpipe/prev"
#define EXEC_FAILED_DIR ".cpipe/failed"
#define EXEC_JOBS_DIR ".cpipe/jobs" /* readable per-job scripts of cluster backends */

/* How one job ended. */
enum exec_status {
	EXEC_JOB_PENDING = 0, /* not finished (the value before and during a run) */
	EXEC_JOB_OK,          /* exit status 0 and every required output exists */
	EXEC_JOB_FAILED,      /* non-zero exit, killed by a signal, missing output, or could not start */
	EXEC_JOB_INTERRUPTED, /* stopped because the run was interrupted (SIGINT, SIGTERM, SIGHUP) */
	EXEC_JOB_SKIPPED,     /* never started: a dependency did not succeed, or the run stopped */
	EXEC_JOB_UNNEEDED,    /* never started: on_ready said it need not run; counts as succeeded for its dependants */
};

/* A short lower-case word for a status ("ok", "failed", "interrupted", "skipped", "unneeded", "pending"). */
const char *exec_status_name(enum exec_status status);

/*
 * What exec filled in for one job. The strings are owned by the job and freed
 * by exec_job_release(); they stay valid after exec_run returns.
 */
struct exec_result {
	enum exec_status status;
	int exit_code;     /* the exit status when the process exited, else -1 */
	int signal;        /* the signal that killed the process, else 0 */
	double start_time; /* wall-clock seconds since the epoch; 0 when never started */
	double end_time;   /* likewise; for a skipped job, when it was skipped */
	char *log_path;    /* cwd-relative log file; NULL when the job never started. The local pool
	                      leaves none for a job that succeeded without printing (exec_run_local) */
	char *message;     /* why it did not succeed ("exit status 2", "declared output 'x' was not
	                      created", "dependency 'a' failed"); NULL on success */
	char *quarantine;  /* cwd-relative dir holding the partial outputs, or NULL if none were moved */
};

/*
 * What a job asks of the machine or the scheduler; 0 / NULL = not given (the
 * backend's default). The local pool reads threads (<= 0 counts as 1) and
 * ram_gb (<= 0 counts as 0); the cluster backends read all of it. Strings and
 * arrays are borrowed from the caller.
 */
struct exec_resources {
	long minutes;   /* wall-clock limit */
	double ram_gb;  /* memory in GiB */
	long threads;
	const char *queue;
	const char *coprocessor;
	long coprocessor_count;
	const char *pe; /* parallel environment for threads > 1 (SGE -pe, fsl_sub -s); NULL: exec_cluster_submit's default */
	const char *const *extra; /* raw scheduler arguments, passed unchanged */
	size_t extra_count;
	const char *const *backend_extra; /* more, meant for the chosen cluster backend only */
	size_t backend_extra_count;
};

/*
 * One job. The caller owns every input pointer; they must stay valid until
 * exec_run returns. Initialise with EXEC_JOB_INIT or zero so `result` is empty.
 */
struct exec_job {
	const char *id;      /* any text (may hold '/', quotes, spaces, newlines); names the job's files
	                        through job_file_name(); ids must be distinct within one run */
	const char *command; /* the full shell command text, run by /bin/sh from a script file; any length */
	const char *log_path; /* cwd-relative or absolute log file, or NULL for .cpipe/logs/<name>.log */
	const char *const *outputs;  /* declared outputs, relative to the data root (absolute also works) */
	const bool *output_optional; /* per output: may be missing after success; NULL = all required */
	size_t output_count;
	const size_t *deps; /* indices of jobs that must succeed first; each must be < this job's index */
	size_t dep_count;
	struct exec_resources resources; /* the pool counts threads and ram_gb */
	bool ask_ready; /* the local pool asks on_ready before starting it */

	struct exec_result result; /* filled by exec */
};
#define EXEC_JOB_INIT {0}

/* Free the strings in job->result and reset it to empty (pending). Inputs are not touched. */
void exec_job_release(struct exec_job *job);

/* Counts during and after a run. Every job is in exactly one of the last seven. */
struct exec_progress {
	size_t total;
	size_t waiting;     /* not started yet ("left") */
	size_t running;
	size_t succeeded;   /* ("done") */
	size_t failed;
	size_t interrupted;
	size_t skipped;
	size_t unneeded;    /* on_ready said they need not run */
	double elapsed_s;   /* since exec_run started */
};

/*
 * Callbacks, each called on the thread that called exec_run, never from a
 * signal handler, and never re-entrantly. `progress` is valid only during the
 * call and already counts the event being reported. Any may be NULL.
 *
 * on_start: job `index` is about to run (before its old outputs are moved
 *   aside and its process is spawned). Called at most once per job.
 * on_finish: job `index` has ended; `result` (== &jobs[index].result) is
 *   final. Called exactly once for every job of the run, including skipped
 *   jobs that never had on_start. The local pool reports a success after
 *   starting the next job for the slot it freed (so its on_start may come
 *   first, even a dependant's), except that a dependant with ask_ready is
 *   released only after on_finish.
 * on_tick: called about every tick_interval_s while exec waits for children,
 *   so a TTY progress line can refresh (elapsed time, counts).
 * on_ready: job `index`, one with ask_ready, has had every dependency succeed
 *   (or be unneeded), each reported by on_finish, and may start. Returning
 *   false ends it as EXEC_JOB_UNNEEDED without starting
 *   it (on_finish follows at once), and its dependants go on as after a
 *   success: the caller's early cutoff, when the jobs it depends on rewrote
 *   its inputs as they were. Not called once the run was interrupted.
 */
typedef void exec_start_fn(void *ctx, size_t index, const struct exec_progress *progress);
typedef void exec_finish_fn(void *ctx, size_t index, const struct exec_result *result,
			    const struct exec_progress *progress);
typedef void exec_tick_fn(void *ctx, const struct exec_progress *progress);
typedef bool exec_ready_fn(void *ctx, size_t index);

struct exec_options {
	const char *cwd;     /* the data root: every job runs here and .cpipe/ lives here; NULL = "." */
	int jobs;            /* most jobs running at once (-j); <= 0 = online CPUs */
	int max_threads;     /* sum of running jobs' threads may not exceed this; <= 0 = online CPUs */
	double max_ram_gb;   /* sum of running jobs' ram_gb may not exceed this; <= 0 = physical RAM */
	bool keep_going;     /* -k: after a failure keep running what does not depend on it */
	double kill_grace_s; /* after SIGTERM to the jobs, wait this long before SIGKILL; <= 0 = 2 s */
	double tick_interval_s; /* on_tick period; <= 0 = 1 s */
	void *ctx;           /* passed to the callbacks */
	exec_start_fn *on_start;
	exec_finish_fn *on_finish;
	exec_tick_fn *on_tick;
	exec_ready_fn *on_ready;
	const char *run_id; /* local backend: put in every job's environment as EXEC_RUN_ID_VARIABLE; NULL: none */
};
#define EXEC_OPTIONS_INIT {NULL, 0, 0, 0.0, false, 0.0, 0.0, NULL, NULL, NULL, NULL, NULL, NULL}

/* The environment variable that names the run a local job belongs to (exec_end_runs finds it). */
#define EXEC_RUN_ID_VARIABLE "CPIPE_RUN_ID"

/* The last line of a job's log when the local backend judged it a success ("cpipe: " first). */
#define EXEC_LOG_SUCCESS_TEXT "succeeded"

/* What exec_run returns (besides the negative internal error). */
enum exec_run_code {
	EXEC_RUN_ERROR = -1,       /* internal or usage error; err is set; no job was started */
	EXEC_RUN_OK = 0,           /* every job succeeded (or was unneeded) */
	EXEC_RUN_FAILED = 1,       /* at least one job failed or was skipped */
	EXEC_RUN_INTERRUPTED = 130 /* a signal stopped the run; the CLI should exit 130 */
};

/*
 * A way of running a job list here and waiting for it: exec_run() dispatches
 * through it. The only one is "local"; the cluster backends do not wait for
 * their jobs and have their own entry points (exec_cluster_submit).
 */
struct exec_backend {
	const char *name; /* "local" */
	int (*run)(struct exec_job *jobs, size_t count, const struct exec_options *opt,
		   struct exec_progress *summary, struct cp_err *err);
};

extern const struct exec_backend exec_backend_local;

/* The backend called `name`, or NULL when there is none. */
const struct exec_backend *exec_backend_find(const char *name);

/*
 * Run `count` jobs through `backend`. `jobs` must be in an order where every
 * dependency comes before its dependents (deps[i] < own index). Each job's
 * previous result is released first. `summary` (may be NULL) receives the
 * final counts. Returns an enum exec_run_code; on EXEC_RUN_ERROR `err` says
 * why (bad dependency index, two ids with the same file name, cannot create
 * .cpipe/ directories) and no callback was called.
 */
int exec_run(const struct exec_backend *backend, struct exec_job *jobs, size_t count,
	     const struct exec_options *opt, struct exec_progress *summary, struct cp_err *err);

/*
 * The local backend: a pool of processes on this machine.
 *
 * - At most opt->jobs children at once; a job is admitted only while the sums
 *   of running jobs' threads and ram_gb stay within the limits. A job larger
 *   than a limit on its own runs alone instead of waiting forever. Ready jobs
 *   start deepest first (the longest chain of dependencies before them), then
 *   in index order, and none overtakes the first, so a big job is never
 *   starved.
 * - Each job: create every output's parent directory, move existing outputs
 *   to .cpipe/prev/<name>/, then run it in cwd in its own process group,
 *   stdin /dev/null, stdout and stderr to the log (truncated, appending): a
 *   plain command (exec_simple_command_words) is executed directly, its
 *   program looked up on PATH once per run; any other is written to
 *   .cpipe/scripts/<name>.sh and run as `/bin/sh script`.
 * - Every job has EXEC_RUN_ID_VARIABLE=opt->run_id in its environment (when
 *   set), so that exec_end_runs can find it if this process is killed.
 * - When a job's process ends, whatever is left in its process group is
 *   killed (SIGKILL): nothing may write the outputs after they are judged.
 * - Success = exit 0, no process left in its group, and every non-optional
 *   output exists (a dangling symlink does not count). Then the aside copies
 *   are deleted and "cpipe: succeeded" is appended to the log (its last line);
 *   a default log (.cpipe/logs/) the job wrote nothing into is removed instead
 *   (its file is reused for a later job's log, saving a file creation).
 * - Otherwise the new outputs go to .cpipe/failed/<name>/ (replacing an
 *   earlier quarantine) and the old ones are put back; a line starting
 *   "cpipe:" explaining the failure is appended to the log.
 * - Without keep_going the first failure stops admitting jobs; running jobs
 *   finish and the rest are skipped. With it only (transitive) dependents of
 *   a job that did not succeed are skipped.
 * - SIGINT, SIGTERM or SIGHUP (unless ignored when the run began) stop
 *   admitting; running process groups get SIGTERM, then SIGKILL after
 *   kill_grace_s (at once on a second signal); they end interrupted. The
 *   previous signal dispositions and mask are restored before returning.
 * Never sleeps in a poll loop: it blocks in pselect until a child exits, a
 * signal arrives or a tick or kill deadline passes. Children are started with
 * vfork (fork where there is none) and reaped by pid only, so the caller's
 * other children are left alone. Signal state is process-wide: one run at a
 * time per process, and callbacks must not start another.
 */
int exec_run_local(struct exec_job *jobs, size_t count, const struct exec_options *opt,
		   struct exec_progress *summary, struct cp_err *err);

/*
 * Helpers shared with the cluster backends.
 */

/*
 * Append the text of a /bin/sh script running `command` to `out`: a "#!/bin/sh"
 * line, a comment naming the job (control characters in `id` replaced, so the
 * id can never become code), then the command verbatim and a newline.
 */
void exec_script_text(const char *id, const char *command, struct strbuf *out);

/*
 * Write `len` bytes of `data` to `path` (mode `mode`, e.g. 0755) atomically:
 * to a temporary name in the same directory, optionally fsynced (`durable`),
 * then renamed. Creates missing parent directories. Returns 0, or -1 with
 * `err` set (the temporary file is removed).
 */
int exec_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode, bool durable,
			   struct cp_err *err);

/* Create `path` and its missing parents (mode 0777 & ~umask), like mkdir -p. Returns 0 or -1 with err. */
int exec_mkdir_p(const char *path, struct cp_err *err);

/*
 * When `command` is one simple command (words of letters, digits and
 * _@%+=:,./- or single-quoted text, separated by blanks; the first word no
 * assignment and no shell builtin or keyword), append its words, unquoted, to
 * `words` and return true: the local backend then executes it directly, as
 * make does, without a /bin/sh in between. Anything else (pipes, redirections,
 * variables, globbing, &&, a backslash) returns false and the job runs through
 * /bin/sh with the same result.
 */
bool exec_simple_command_words(const char *command, struct strvec *words);

/*
 * End every process on this machine whose environment names one of
 * `run_ids` (EXEC_RUN_ID_VARIABLE, set by the local backend): the jobs of a
 * run that was killed outright and could not stop them. Each one's whole
 * process group gets SIGTERM (and SIGCONT), then SIGKILL once `grace_s`
 * (<= 0: 2 s) has passed; returns when none is left (Linux /proc; elsewhere
 * nothing is found). A job that cleared its environment and left its
 * process group is out of reach. Returns the number of process groups found.
 */
size_t exec_end_runs(const char *const *run_ids, size_t count, double grace_s);

/* What a job's log says about how its last local run ended. */
enum exec_log_ending {
	EXEC_LOG_ABSENT,    /* no log: the job never ran here */
	EXEC_LOG_SUCCEEDED, /* its last line is "cpipe: " EXEC_LOG_SUCCESS_TEXT */
	EXEC_LOG_UNFINISHED /* it failed, was interrupted, or its run died (or the log is unreadable) */
};
enum exec_log_ending exec_log_ending(const char *log_path);

/* Number of online CPUs (at least 1). */
int exec_cpu_count(void);
/* Physical RAM in GiB (a large value when unknown). */
double exec_ram_gb(void);

/* ==== Cluster backends: fsl_sub, SLURM, SGE ================================
 *
 * Cluster jobs are submitted all at once and run later on other machines;
 * the coordinator (the cpipe process that submits) exits and a later cpipe
 * call learns what happened from files the jobs leave behind. Compute nodes
 * never open the state database. Files, all under the data root
 * (exec_cluster_options.cwd), <name> being job_file_name(job id):
 *
 *   .cpipe/jobs/<name>.sh         the job script of a job submitted alone or
 *                                 run by a batch (an array task's is in its
 *                                 array's .scripts): checks the markers of the
 *                                 jobs it depends on (fails fast when one did
 *                                 not succeed: SGE's -hold_jid also releases
 *                                 dependants of failed jobs), runs the
 *                                 command, checks the declared outputs,
 *                                 writes the marker
 *   .cpipe/jobs/<name>.marker     the result, written to a temporary name and
 *                                 renamed (exec_marker_read)
 *   .cpipe/jobs/<unit>.submission the submission record of a unit (a job,
 *                                 a batch or an array): backend, cluster id
 *                                 and the jobs it carries (exec_records_load);
 *                                 a job it carries without a marker is "in
 *                                 flight"
 *   .cpipe/jobs/<unit>.tasks      an array's task list, one command per line
 *                                 (fsl_sub -t takes it as it is)
 *   .cpipe/jobs/<unit>.scripts    an array's tasks' scripts, after a table of
 *                                 fixed-width lines: each one's byte offset
 *                                 and length
 *   .cpipe/jobs/<unit>.array.sh   the array script: the task (its argument,
 *                                 else the scheduler's task id) reads its line
 *                                 of the table, then its script alone, and
 *                                 runs it
 *   .cpipe/jobs/<unit>.out        the scheduler's own output for a submission
 *   .cpipe/logs/<name>.log        the job's stdout and stderr, as for local runs
 */

struct exec_submission;

enum exec_cluster_kind {
	EXEC_CLUSTER_NONE = 0,
	EXEC_CLUSTER_FSL_SUB, /* fsl_sub, whatever it runs on (also its no-cluster shell mode) */
	EXEC_CLUSTER_SLURM,   /* sbatch / squeue / scancel */
	EXEC_CLUSTER_SGE,     /* qsub / qstat / qdel */
};

/* "fsl_sub", "slurm", "sge" ("none" for EXEC_CLUSTER_NONE). */
const char *exec_cluster_name(enum exec_cluster_kind kind);

/*
 * Why no cluster backend can be used, when the caller may offer another way
 * (exec_cluster_choose, exec_cluster_submit; -1 is any other reason).
 */
enum exec_cluster_refusal {
	EXEC_CLUSTER_UNKNOWN_NAME = -2,  /* not the name of a backend */
	EXEC_CLUSTER_FSL_SUB_LOCAL = -3, /* auto: only fsl_sub, with no queues (it would run every job here) */
	EXEC_CLUSTER_NONE_ON_PATH = -4,  /* auto: none of fsl_sub, sbatch, qsub is on PATH */
	EXEC_CLUSTER_BLANK_ROOT = -5,    /* fsl_sub with a data root holding a blank */
};

/*
 * Choose a backend by name: "fsl_sub" (also "fsl-sub"), "slurm", "sge", or
 * "auto" (or NULL/""): fsl_sub when it is on PATH and `fsl_sub --has_queues`
 * says it has queues (without, it would run every job in the foreground, one
 * at a time), else sbatch, else qsub. Returns 0 with *out set, or a negative
 * enum exec_cluster_refusal (-1: the named backend's program is not on PATH)
 * with err saying why none can be used.
 */
int exec_cluster_choose(const char *name, enum exec_cluster_kind *out, struct cp_err *err);

/* True when `program` is an executable file in a directory of $PATH. */
bool exec_on_path(const char *program);

/*
 * One job to submit. Inputs are borrowed from the caller until
 * exec_cluster_submit returns; outputs are owned by the job (freed by
 * exec_cluster_job_release).
 */
struct exec_cluster_job {
	const char *id;      /* as for struct exec_job: names the job's files */
	const char *command; /* the shell command, run by /bin/sh -c in the data root */
	const char *const *outputs;  /* declared outputs, data-root relative */
	const bool *output_optional; /* NULL = all required */
	size_t output_count;
	const size_t *deps;  /* indices of jobs in this submission it needs; each < own index */
	size_t dep_count;
	/*
	 * Jobs outside this submission that are still queued or running (from an
	 * earlier submission): their ids and submission records. The job is held
	 * on their cluster ids and its script checks their markers.
	 */
	const char *const *outside_ids;
	const struct exec_submission *const *outside;
	size_t outside_count;
	/* Jobs with the same non-NULL group that do not depend on one another may go into one array. */
	const char *group;
	/*
	 * Jobs with the same non-NULL batch key, each depending on another of
	 * them, whose resources differ only in minutes, ram_gb and threads, go
	 * to the scheduler as ONE job running them in dependency order (fsl-pipe's
	 * batching). A merge that would make one batch wait for another that
	 * waits for it is not made. Each job keeps its own script, marker and
	 * submission record (with the batch's cluster id).
	 */
	const char *batch;
	const char *note; /* one line kept in the submission record for the caller (NULL: none) */
	/*
	 * NULL, or a shell command the job script runs once the jobs it needs
	 * have succeeded, before the command: when it exits 0 the command is not
	 * run and the marker says the job was unneeded (the caller's early
	 * cutoff); any other exit runs the command.
	 */
	const char *skip_check;
	struct exec_resources resources; /* what the job asks of the scheduler */

	/* Filled by exec_cluster_submit. */
	char *cluster_id; /* "123", "123_4" (SLURM array task), "123.4" (SGE task); NULL if not submitted */
	char *log_path;   /* .cpipe/logs/<name>.log */
};

void exec_cluster_job_release(struct exec_cluster_job *job);

struct exec_cluster_options {
	const char *cwd; /* the data root; NULL = "." (made absolute for the scripts) */
	enum exec_cluster_kind kind;
	double scale_time;        /* multiply minutes by this, rounding up; <= 0 = 1 */
	size_t array_min;         /* smallest group submitted as an array; 0 = EXEC_ARRAY_MIN */
	/*
	 * Most tasks in one array; longer groups are split into chunks of this
	 * many (task i of chunk c still waits for task i of the parent array's
	 * chunk c). 0 = $CPIPE_ARRAY_MAX if set, else what the scheduler allows
	 * (exec_cluster_array_limit).
	 */
	size_t array_max;
	const char *const *holds; /* --job-hold: outside cluster ids every root job waits for */
	size_t hold_count;
	/*
	 * Called after each submission with the indices of the jobs it carries
	 * (in task order, a batch's jobs one after the other) and its number of
	 * array tasks (0: a single job or batch); may be NULL.
	 */
	void (*on_submit)(void *ctx, const size_t *indices, size_t count, size_t tasks, const char *cluster_id);
	void *ctx;
};
#define EXEC_ARRAY_MIN 3

struct exec_cluster_summary {
	size_t jobs;        /* jobs submitted */
	size_t submissions; /* scheduler calls that submitted something */
	size_t arrays;      /* of which array submissions */
	size_t batches;     /* batches of several jobs submitted (as single jobs or array tasks) */
	bool foreground;    /* fsl_sub ran jobs in the foreground (its no-cluster shell mode) */
};

/*
 * The most tasks one array may have on `kind`'s scheduler, asked with one
 * command: SLURM's MaxArraySize - 1 (`scontrol show config`; task ids run
 * from 1), SGE's max_aj_tasks (`qconf -sconf`), for fsl_sub the limit of the
 * scheduler under it. SIZE_MAX when there is no limit (0 in the
 * configuration, or fsl_sub with no scheduler), 0 when SLURM has arrays
 * disabled (MaxArraySize=0); when the question cannot be answered, the
 * scheduler's default (SLURM 1000, SGE 75000).
 */
size_t exec_cluster_array_limit(enum exec_cluster_kind kind);

/*
 * Write every job's script and submit the jobs, dependencies first, each
 * held on the cluster ids of its parents (in this submission or outside),
 * merging same-batch jobs into batches (a script .cpipe/jobs/<batch>.sh
 * running their scripts in turn), grouping same-group independent jobs or
 * batches into arrays of at least array_min tasks (chunks of at most
 * array_max). Before anything is written it refuses
 * what cannot work: fsl_sub with a data root holding a blank (fsl_sub writes
 * the directory unquoted into its job script and splits -t's path on
 * blanks), and fsl_sub with threads > 1 but no parallel environment name
 * (job->pe, else $CPIPE_FSL_SUB_PE). For SGE the name is job->pe, else
 * $CPIPE_SGE_PE, else "smp". An old marker of a job is removed before it is submitted and the
 * submission record is written after. When fsl_sub runs a job in the
 * foreground (shell mode: it blocks, the id means nothing, and a failing job
 * makes fsl_sub exit non-zero), the job's marker is what counts: a non-zero
 * fsl_sub exit with a new marker present is not a submission error.
 * Returns 0, or -1 with err on the first submission that failed
 * (EXEC_CLUSTER_BLANK_ROOT for fsl_sub's blank, nothing submitted). Units are
 * submitted parents first, so the jobs submitted before it can all run: they
 * keep their records and stay in flight; summary says how many there are.
 */
int exec_cluster_submit(struct exec_cluster_job *jobs, size_t count, const struct exec_cluster_options *opt,
			struct exec_cluster_summary *summary, struct cp_err *err);

/* A job's submission, as its submission record says. */
struct exec_submission {
	enum exec_cluster_kind kind;
	char *job;      /* the scheduler's job id ("123") */
	long task;      /* array task index (1-based), 0 for a plain job */
	char *log_path; /* data-root relative */
	char *note;     /* the caller's note, or NULL */
	int64_t submitted_ns;
};
#define EXEC_SUBMISSION_INIT {EXEC_CLUSTER_NONE, NULL, 0, NULL, NULL, 0}
void exec_submission_release(struct exec_submission *submission);

/*
 * The submission records under a data root, read once. One file per
 * scheduler submission, .cpipe/jobs/<unit>.submission: "cpipe-submission 1",
 * then "backend B", "job ID", "time NS", one tab-separated line per job it
 * carries ("member", its task, file name, log, note: backslash, newline and
 * tab escaped), and "end N" counting those lines (a record without it was cut
 * short and is refused). Also the per-job records older versions wrote
 * (.cpipe/jobs/<name>.submitted: jobs they submitted may still be in flight).
 * A job two records carry belongs to the later submission.
 */
struct exec_records;

/*
 * Read every record under `cwd` (NULL = ".") from one listing of
 * .cpipe/jobs; a record that cannot be read or parsed is left out and a
 * message naming it (file:line) pushed to `problems`. Returns 0 (*out set,
 * free it with exec_records_free), or -1 with err when the directory cannot
 * be listed (*out is set and empty then).
 */
int exec_records_load(const char *cwd, struct exec_records **out, struct strvec *problems, struct cp_err *err);
/* Returns 1 and fills *out (release it) when a record carries job file name `name`, else 0. */
int exec_records_find(const struct exec_records *records, const char *name, struct exec_submission *out);
/* The job's result was imported: exec_records_save leaves it out of its record. */
void exec_records_forget(struct exec_records *records, const char *name);
/*
 * Rewrite each record that lost jobs (exec_records_forget, or carried by a
 * later submission) with those left, removing it when none is. 0, or -1 with err.
 */
int exec_records_save(struct exec_records *records, struct cp_err *err);
void exec_records_free(struct exec_records *records);

/* "123", "123_4" or "123.4": how the record's scheduler names the job or task. */
void exec_submission_cluster_id(const struct exec_submission *submission, struct strbuf *out);

/* One declared output as the job script saw it after the command. */
struct exec_marker_output {
	bool exists;
	int64_t size;
	int64_t mtime_ns;
};

/* A job's result (.cpipe/jobs/<name>.marker). */
struct exec_marker {
	int exit_code;   /* 0 = the command succeeded and every required output exists */
	char *message;   /* why not ("exit status 2", "declared output 'x' was not created",
	                    "not run: 'a' it depends on did not succeed"); NULL on success */
	int64_t start_ns;
	int64_t end_ns;
	char *host;
	bool unneeded; /* exit 0 without running the command: the job's skip_check passed */
	struct exec_marker_output *outputs; /* in declared order */
	size_t output_count;
};

/* Returns 1 and fills *out when the marker exists, 0 when not, -1 with err when it is malformed. */
int exec_marker_read(const char *cwd, const char *name, struct exec_marker *out, struct cp_err *err);
void exec_marker_release(struct exec_marker *marker);

/* Where a submitted job is, as the scheduler sees it. */
enum exec_cluster_state {
	EXEC_CLUSTER_UNKNOWN = 0, /* the scheduler does not know the id (finished and purged, never
	                             existed, or fsl_sub's meaningless shell-mode id) */
	EXEC_CLUSTER_QUEUED,
	EXEC_CLUSTER_RUNNING,
	EXEC_CLUSTER_ENDED,       /* finished (any way); the marker tells how */
	EXEC_CLUSTER_NEVER,       /* waits on a dependency that can never be met: cancel it */
};

/* "unknown", "queued", "running", "ended", "never". */
const char *exec_cluster_state_name(enum exec_cluster_state state);

/*
 * Ask the scheduler, with ONE command, where each of `count` submissions is
 * (`states` gets count entries). SLURM: squeue -h -t all -j ID,... ; SGE:
 * qstat -u '*'; fsl_sub: whichever of squeue/qstat is on PATH, else every
 * job is UNKNOWN. Returns 0, or -1 with err when the query itself failed
 * (states then all UNKNOWN and the caller should not conclude anything).
 */
int exec_cluster_query(const struct exec_submission *const *subs, size_t count, enum exec_cluster_state *states,
		       struct cp_err *err);

/*
 * Cancel the given submissions (one scancel/qdel call). Jobs that ended
 * meanwhile are fine. Returns 0, or -1 with err when the scheduler could not
 * be asked (then nothing may have been cancelled).
 */
int exec_cluster_cancel(const struct exec_submission *const *subs, size_t count, struct cp_err *err);

#endif
