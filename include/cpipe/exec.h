/*
 * exec: running jobs that the caller has already chosen and ordered. A job is
 * a shell command with declared outputs, resource needs and dependencies on
 * earlier jobs; exec runs them through a backend (today: a local process pool;
 * later: fsl_sub, slurm, sge) and reports each start and finish through
 * callbacks. exec knows nothing of trees, recipes or the state database.
 *
 * Files exec writes, all relative to the data root (exec_options.cwd):
 *   .cpipe/scripts/<name>.sh     the job's command as a /bin/sh script
 *   .cpipe/logs/<name>.log       the job's stdout and stderr (default log path)
 *   .cpipe/prev/<name>/<output>  old outputs kept aside while the job runs
 *   .cpipe/failed/<name>/<output> partial outputs of a failed or interrupted job
 * where <name> is exec_job_file_name(job id).
 */
#ifndef CPIPE_EXEC_H
#define CPIPE_EXEC_H

#include "cpipe/util.h"

#include <stdbool.h>
#include <stddef.h>

/* Directories under the data root, without a trailing slash. */
#define EXEC_STATE_DIR ".cpipe"
#define EXEC_SCRIPT_DIR ".cpipe/scripts"
#define EXEC_LOG_DIR ".cpipe/logs"
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
};

/* A short lower-case word for a status ("ok", "failed", "interrupted", "skipped", "pending"). */
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
	char *log_path;    /* cwd-relative log file; NULL when the job never started */
	char *message;     /* why it did not succeed ("exit status 2", "declared output 'x' was not
	                      created", "dependency 'a' failed"); NULL on success */
	char *quarantine;  /* cwd-relative dir holding the partial outputs, or NULL if none were moved */
};

/*
 * One job. The caller owns every input pointer; they must stay valid until
 * exec_run returns. Initialise with EXEC_JOB_INIT or zero so `result` is empty.
 */
struct exec_job {
	const char *id;      /* any text (may hold '/', quotes, spaces, newlines); names the job's files
	                        through exec_job_file_name(); ids must be distinct within one run */
	const char *command; /* the full shell command text, run by /bin/sh from a script file; any length */
	const char *log_path; /* cwd-relative or absolute log file, or NULL for .cpipe/logs/<name>.log */
	const char *const *outputs;  /* declared outputs, relative to the data root (absolute also works) */
	const bool *output_optional; /* per output: may be missing after success; NULL = all required */
	size_t output_count;
	const size_t *deps; /* indices of jobs that must succeed first; each must be < this job's index */
	size_t dep_count;
	int threads;   /* threads the job uses; <= 0 counts as 1 */
	double ram_gb; /* memory the job needs in GiB; <= 0 counts as 0 */

	struct exec_result result; /* filled by exec */
};
#define EXEC_JOB_INIT {0}

/* Free the strings in job->result and reset it to empty (pending). Inputs are not touched. */
void exec_job_release(struct exec_job *job);

/* Counts during and after a run. Every job is in exactly one of the last six. */
struct exec_progress {
	size_t total;
	size_t waiting;     /* not started yet ("left") */
	size_t running;
	size_t succeeded;   /* ("done") */
	size_t failed;
	size_t interrupted;
	size_t skipped;
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
 *   jobs that never had on_start.
 * on_tick: called about every tick_interval_s while exec waits for children,
 *   so a TTY progress line can refresh (elapsed time, counts).
 */
typedef void exec_start_fn(void *ctx, size_t index, const struct exec_progress *progress);
typedef void exec_finish_fn(void *ctx, size_t index, const struct exec_result *result,
			    const struct exec_progress *progress);
typedef void exec_tick_fn(void *ctx, const struct exec_progress *progress);

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
};
#define EXEC_OPTIONS_INIT {NULL, 0, 0, 0.0, false, 0.0, 0.0, NULL, NULL, NULL, NULL}

/* What exec_run returns (besides the negative internal error). */
enum exec_run_code {
	EXEC_RUN_ERROR = -1,       /* internal or usage error; err is set; no job was started */
	EXEC_RUN_OK = 0,           /* every job succeeded */
	EXEC_RUN_FAILED = 1,       /* at least one job failed or was skipped */
	EXEC_RUN_INTERRUPTED = 130 /* a signal stopped the run; the CLI should exit 130 */
};

/*
 * A backend: one way of running a job list. exec_run() dispatches through it,
 * so the CLI only picks a backend by name.
 */
struct exec_backend {
	const char *name; /* "local", later "fsl_sub", "slurm", "sge" */
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
 *   start in index order (no overtaking), so a big job is never starved.
 * - Each job: create every output's parent directory, move existing outputs
 *   to .cpipe/prev/<name>/, write .cpipe/scripts/<name>.sh, run `/bin/sh
 *   script` in cwd in its own process group, stdin /dev/null, stdout and
 *   stderr to the log (truncated).
 * - Success = exit 0 and every non-optional output exists (a dangling symlink
 *   does not count). Then the aside copies are deleted.
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
 * posix_spawn (fork where posix_spawn cannot change directory) and reaped by
 * pid only, so the caller's other children are left alone. Signal state is
 * process-wide: one run at a time per process, and callbacks must not start
 * another.
 */
int exec_run_local(struct exec_job *jobs, size_t count, const struct exec_options *opt,
		   struct exec_progress *summary, struct cp_err *err);

/*
 * Helpers shared with the cluster backends.
 */

/*
 * Append to `out` a file name for job `id`: letters, digits, '.', '_' and '-'
 * kept, every other byte (and a leading '.' or '-') replaced by '_', runs of
 * '_' collapsed, at most about 100 bytes. When anything was changed, "-" and
 * 8 hex digits of a hash of the whole id are appended, so distinct ids get
 * distinct names. Never empty, never "." or "..", never holds '/'.
 */
void exec_job_file_name(const char *id, struct strbuf *out);

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

/* Number of online CPUs (at least 1). */
int exec_cpu_count(void);
/* Physical RAM in GiB (a large value when unknown). */
double exec_ram_gb(void);

#endif
