/*
 * exec: the local process pool (exec_run_local, the backend "local"):
 * admitting jobs by their resources and dependencies, starting each in its
 * own process group, reaping it and judging its exit, and keeping outputs
 * aside or quarantining them. Helpers it shares with exec.c are in exec_int.h;
 * starting a process is exec_spawn.c.
 *
 * The pool is single-threaded. Its signals are blocked for the whole run and
 * only let through while it waits (exec_signals.c), whose handlers merely set
 * flags; so every real action (reaping, killing, callbacks) happens in
 * ordinary code, and no signal can slip in between "check flags" and "sleep".
 */
#include "cpipe/exec.h"
#include "exec_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- the local pool --------------------------------------------------- */

enum pool_state { POOL_WAITING, POOL_RUNNING, POOL_DONE };

struct pool_job {
	enum pool_state state;
	size_t pending_deps; /* dependencies not yet succeeded */
	uint32_t depth;      /* the most jobs on a chain of dependencies before it (starts_before) */
	pid_t pid;           /* also its process group id */
	bool signalled;      /* was running when the run was interrupted */
	int threads;
	double ram_gb;
	char *name;    /* job_file_name(id) */
	char **aside;  /* per output: where the old output was moved, or NULL */
	int log_fd;    /* its log, kept open while it runs (within pool.log_fds_max), else -1 */
};

/* An empty log of a job that succeeded without printing, to become the next job's log (open_log). */
struct log_spare {
	int fd;
	char *path;
	size_t job; /* the job whose name it still has (until name_spare_log), or SIZE_MAX */
};
#define LOG_SPARES_MAX 4

struct pool {
	struct exec_job *jobs;
	size_t count;
	const struct exec_options *opt;
	const char *cwd;
	struct pool_job *state;

	/* dependents of job i: dependents[first_dependent[i] .. first_dependent[i + 1]) */
	size_t *first_dependent;
	size_t *dependents;

	size_t *ready; /* heap of job indices whose dependencies all succeeded, by starts_before */
	size_t ready_count;

	size_t *running; /* job indices, unordered */
	size_t running_count;

	size_t *unreported; /* jobs that succeeded, reported after the next admission (conclude_job) */
	size_t unreported_count;
	size_t unreported_first_dependent; /* the one of their dependants to start first; SIZE_MAX: none */

	int max_jobs;
	int max_threads;
	double max_ram_gb;
	int used_threads;
	double used_ram_gb;

	bool stopping;    /* admit nothing more */
	bool interrupted; /* a stop signal arrived */
	sig_atomic_t interrupts_handled;
	double kill_deadline; /* monotonic; 0 when no SIGKILL is pending */
	double kill_grace_s;
	pid_t *signalled_groups; /* process groups that got SIGTERM */
	size_t signalled_count;

	double start_mono;
	char **envp; /* environ plus EXEC_RUN_ID_VARIABLE when opt->run_id is set; else environ */
	char *run_id_entry;
	struct exec_spawner spawner;
	bool spawner_ready;
	/* Whether .cpipe/prev and .cpipe/failed existed when the run began: if not, no job has anything there to clear. */
	bool prev_area;
	bool failed_area;
	struct log_spare spares[LOG_SPARES_MAX];
	size_t spare_count;
	size_t spares_named; /* spare names handed out: each is new */
	size_t log_fds_held; /* running jobs' logs kept open; at most log_fds_max (a share of RLIMIT_NOFILE) */
	size_t log_fds_max;
	struct exec_progress progress;
};

/*
 * The order ready jobs start in: the deepest first (the most jobs before it
 * on a chain of dependencies), then in index order. A job then mostly runs
 * right after the one that made its inputs, while they are still in the
 * caches, and a study's subjects are finished one after another rather than
 * step by step (bench/FINDINGS.md, "Job order").
 */
static bool starts_before(const struct pool *pool, size_t a, size_t b)
{
	uint32_t depth_a = pool->state[a].depth, depth_b = pool->state[b].depth;
	return depth_a != depth_b ? depth_a > depth_b : a < b;
}

static void heap_push(struct pool *pool, size_t index)
{
	size_t i = pool->ready_count++;
	size_t *h = pool->ready;
	while (i > 0 && starts_before(pool, index, h[(i - 1) / 2])) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = index;
}

static size_t heap_pop(struct pool *pool)
{
	size_t *h = pool->ready;
	size_t top = h[0];
	size_t last = h[--pool->ready_count];
	size_t i = 0, n = pool->ready_count;
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= n)
			break;
		if (child + 1 < n && starts_before(pool, h[child + 1], h[child]))
			child++;
		if (!starts_before(pool, h[child], last))
			break;
		h[i] = h[child];
		i = child;
	}
	if (n)
		h[i] = last;
	return top;
}

/* `rel` under the data root, into `out`. */
static void pool_path(const struct pool *pool, const char *rel, struct strbuf *out)
{
	path_join(pool->cwd, rel, out);
}

static void update_elapsed(struct pool *pool)
{
	pool->progress.elapsed_s = monotonic_seconds() - pool->start_mono;
}

/* Append a "cpipe: ..." line to a job's log; failures to do so are not worth failing over. */
static void log_note(struct pool *pool, size_t index, const char *text)
{
	const char *log = pool->jobs[index].result.log_path;
	if (!log)
		return;
	struct strbuf path = STRBUF_INIT;
	pool_path(pool, log, &path);
	int fd = open(path.buf, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0) {
		struct strbuf line = STRBUF_INIT;
		strbuf_addf(&line, "cpipe: %s\n", text);
		(void)write_all(fd, line.buf, line.len);
		strbuf_release(&line);
		close(fd);
	}
	strbuf_release(&path);
}

/*
 * Job logs. A job's log is created (or emptied) as the job starts, in append
 * mode, so that it can be read while the job runs and is left behind if this
 * process dies (exec_log_ending then reads it as a run that did not finish).
 * A job that succeeds without printing anything leaves no log: its empty file
 * becomes the next job's log by a rename. When no job has taken it by the
 * time its job's success is reported, it is renamed to a spare name first
 * (.cpipe/logs/.spare-<pid>-<n>): the job is then known to have succeeded,
 * and its log must not look like that of a run that died. The spares left at
 * the end are removed. A rename allocates no inode; creating a file does, and
 * that was most of the pool's own time per job (bench/FINDINGS.md, "Full
 * local run").
 */

/* Open job `index`'s log (result.log_path) for writing: a spare renamed to it, else a new or emptied file. */
static int open_log(struct pool *pool, size_t index, struct cp_err *err)
{
	const struct exec_job *job = &pool->jobs[index];
	struct strbuf path = STRBUF_INIT;
	pool_path(pool, job->result.log_path, &path);
	int fd = -1;
	/* Only into the default log directory, where every spare lives: a rename never crosses a file system. */
	while (fd < 0 && !job->log_path && pool->spare_count) {
		struct log_spare spare = pool->spares[--pool->spare_count];
		if (rename(spare.path, path.buf) == 0) {
			fd = spare.fd;
		} else {
			close(spare.fd);
			unlink(spare.path);
		}
		free(spare.path);
	}
	const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC;
	if (fd < 0) {
		fd = open(path.buf, flags, 0644);
		if (fd < 0 && errno == ENOENT && exec_mkdir_parent(path.buf, err) == 0)
			fd = open(path.buf, flags, 0644);
		fd = exec_fd_above_stdio(fd);
	}
	strbuf_release(&path);
	return fd;
}

/* Close a job's log if this process still holds it. */
static void close_log(struct pool *pool, struct pool_job *pj)
{
	if (pj->log_fd < 0)
		return;
	close(pj->log_fd);
	pj->log_fd = -1;
	pool->log_fds_held--;
}

/* Job `index` succeeded: end its log with the success line, or, when it printed nothing, drop the log. */
static void finish_log(struct pool *pool, size_t index)
{
	const struct exec_job *job = &pool->jobs[index];
	struct pool_job *pj = &pool->state[index];
	struct strbuf path = STRBUF_INIT;
	pool_path(pool, job->result.log_path, &path);
	int fd = pj->log_fd;
	if (fd >= 0) {
		pj->log_fd = -1;
		pool->log_fds_held--;
	} else {
		fd = open(path.buf, O_WRONLY | O_APPEND | O_CLOEXEC);
	}
	struct stat st;
	if (fd >= 0 && !job->log_path && fstat(fd, &st) == 0 && st.st_size == 0) {
		if (pool->spare_count < LOG_SPARES_MAX) {
			pool->spares[pool->spare_count++] = (struct log_spare){fd, strbuf_detach(&path), index};
			return;
		}
		unlink(path.buf);
	} else if (fd >= 0) {
		static const char line[] = "cpipe: " EXEC_LOG_SUCCESS_TEXT "\n";
		(void)write_all(fd, line, sizeof(line) - 1);
	}
	if (fd >= 0)
		close(fd);
	strbuf_release(&path);
}

/* Job `index` is about to be reported a success: a spare still under its log's name gets a spare name. */
static void name_spare_log(struct pool *pool, size_t index)
{
	for (size_t k = 0; k < pool->spare_count; k++) {
		struct log_spare *spare = &pool->spares[k];
		if (spare->job != index)
			continue;
		struct strbuf path = STRBUF_INIT;
		char *rel = xasprintf("%s/.spare-%ld-%zu", EXEC_LOG_DIR, (long)getpid(), pool->spares_named++);
		pool_path(pool, rel, &path);
		free(rel);
		if (rename(spare->path, path.buf) == 0) {
			free(spare->path);
			spare->path = strbuf_detach(&path);
			spare->job = SIZE_MAX;
			return;
		}
		strbuf_release(&path);
		close(spare->fd);
		unlink(spare->path);
		free(spare->path);
		*spare = pool->spares[--pool->spare_count];
		return;
	}
}

/* The spares no job took: logs of jobs that printed nothing. */
static void remove_spare_logs(struct pool *pool)
{
	while (pool->spare_count) {
		struct log_spare *spare = &pool->spares[--pool->spare_count];
		close(spare->fd);
		unlink(spare->path);
		free(spare->path);
	}
}

static void set_message(struct exec_result *result, char *message)
{
	free(result->message);
	result->message = message;
}

static void report_finish(struct pool *pool, size_t index)
{
	update_elapsed(pool);
	if (pool->opt->on_finish)
		pool->opt->on_finish(pool->opt->ctx, index, &pool->jobs[index].result, &pool->progress);
}

/* Mark a waiting job skipped with `message` (owned) and report it. */
static void skip_job(struct pool *pool, size_t index, char *message)
{
	struct exec_result *result = &pool->jobs[index].result;
	pool->state[index].state = POOL_DONE;
	result->status = EXEC_JOB_SKIPPED;
	result->end_time = exec_now_real();
	set_message(result, message);
	pool->progress.waiting--;
	pool->progress.skipped++;
	report_finish(pool, index);
}

static void release_dependent(struct pool *pool, size_t dependant);

/*
 * Job `index` has every dependency behind it: queue it, unless the caller,
 * asked (ask_ready), finds that it need not run (on_ready); such a job ends
 * at once, and its dependants go on as after a success.
 */
static void job_ready(struct pool *pool, size_t index)
{
	if (pool->interrupted || !pool->jobs[index].ask_ready || !pool->opt->on_ready ||
	    pool->opt->on_ready(pool->opt->ctx, index)) {
		heap_push(pool, index);
		return;
	}
	struct exec_result *result = &pool->jobs[index].result;
	pool->state[index].state = POOL_DONE;
	result->status = EXEC_JOB_UNNEEDED;
	result->end_time = exec_now_real();
	pool->progress.waiting--;
	pool->progress.unneeded++;
	report_finish(pool, index);
	for (size_t k = pool->first_dependent[index]; k < pool->first_dependent[index + 1]; k++)
		release_dependent(pool, pool->dependents[k]);
}

/* A job it depends on succeeded or was unneeded: one dependency less to wait for. */
static void release_dependent(struct pool *pool, size_t dependant)
{
	if (--pool->state[dependant].pending_deps == 0 && pool->state[dependant].state == POOL_WAITING)
		job_ready(pool, dependant);
}

/* Skip every waiting job that depends, directly or not, on `failed` (which did not succeed). */
static void skip_dependents(struct pool *pool, size_t failed)
{
	const char *verb = pool->jobs[failed].result.status == EXEC_JOB_INTERRUPTED ? "was interrupted"
	                 : pool->jobs[failed].result.status == EXEC_JOB_SKIPPED     ? "was skipped"
	                                                                            : "failed";
	for (size_t k = pool->first_dependent[failed]; k < pool->first_dependent[failed + 1]; k++) {
		size_t d = pool->dependents[k];
		if (pool->state[d].state != POOL_WAITING)
			continue;
		skip_job(pool, d, xasprintf("dependency '%s' %s", pool->jobs[failed].id, verb));
		skip_dependents(pool, d);
	}
}

/*
 * Move `from` to `to` (replacing whatever is at `to`), creating `to`'s parent.
 * Across file systems, where rename cannot work, fall back to a sibling of
 * `from` named with `suffix`; `*where` receives the path actually used.
 */
static int move_path(const char *from, const char *to, const char *suffix, char **where)
{
	struct cp_err err = CP_ERR_INIT;
	exec_remove_tree(to);
	if (exec_mkdir_parent(to, &err) == 0 && rename(from, to) == 0) {
		*where = xstrdup(to);
		cp_err_release(&err);
		return 0;
	}
	cp_err_release(&err);
	if (errno != EXDEV)
		return -1;
	char *sibling = xasprintf("%s%s", from, suffix);
	exec_remove_tree(sibling);
	if (rename(from, sibling)) {
		free(sibling);
		return -1;
	}
	*where = sibling;
	return 0;
}

/* .cpipe/<area>/<name>[/<output key>] under the data root. */
static void area_path(struct pool *pool, const char *area, size_t index, const char *output, struct strbuf *out)
{
	struct strbuf rel = STRBUF_INIT;
	strbuf_addf(&rel, "%s/%s", area, pool->state[index].name);
	if (output) {
		strbuf_addch(&rel, '/');
		exec_output_key(output, &rel);
	}
	pool_path(pool, rel.buf, out);
	strbuf_release(&rel);
}

/*
 * Before a job runs: clear its old quarantine, create output parents and move
 * existing outputs aside. Returns 0, or -1 with a message (owned) in *why.
 */
static int prepare_outputs(struct pool *pool, size_t index, char **why)
{
	struct exec_job *job = &pool->jobs[index];
	struct pool_job *pj = &pool->state[index];
	struct strbuf path = STRBUF_INIT, aside = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	int rc = 0;

	if (pool->failed_area) {
		area_path(pool, EXEC_FAILED_DIR, index, NULL, &path);
		exec_remove_tree(path.buf);
	}
	pj->aside = job->output_count ? xcalloc(job->output_count, sizeof(*pj->aside)) : NULL;
	for (size_t o = 0; o < job->output_count && !rc; o++) {
		const char *output = job->outputs[o];
		pool_path(pool, output, &path);
		if (exec_mkdir_parent(path.buf, &err)) {
			*why = xasprintf("cannot create the directory of output '%s': %s", output, err.message);
			rc = -1;
			break;
		}
		if (!exec_path_exists_nofollow(path.buf))
			continue;
		strbuf_reset(&aside);
		area_path(pool, EXEC_PREV_DIR, index, output, &aside);
		if (exec_path_exists_nofollow(aside.buf)) {
			/*
			 * Left by a run that died mid-job: the aside copy is the last
			 * good output and the current file is suspect, so keep the
			 * former and quarantine the latter.
			 */
			char *where = NULL;
			struct strbuf failed = STRBUF_INIT;
			area_path(pool, EXEC_FAILED_DIR, index, output, &failed);
			if (move_path(path.buf, failed.buf, ".cpipe-failed", &where) == 0)
				pj->aside[o] = xstrdup(aside.buf);
			else
				rc = -1;
			free(where);
			strbuf_release(&failed);
		} else if (move_path(path.buf, aside.buf, ".cpipe-prev", &pj->aside[o])) {
			rc = -1;
		}
		if (rc)
			*why = xasprintf("cannot move old output '%s' aside: %s", output, strerror(errno));
	}
	cp_err_release(&err);
	strbuf_release(&path);
	strbuf_release(&aside);
	return rc;
}

/* Put back every output moved aside and forget the aside area. */
static void restore_outputs(struct pool *pool, size_t index)
{
	struct exec_job *job = &pool->jobs[index];
	struct pool_job *pj = &pool->state[index];
	struct strbuf path = STRBUF_INIT;
	for (size_t o = 0; o < job->output_count && pj->aside; o++) {
		if (!pj->aside[o])
			continue;
		pool_path(pool, job->outputs[o], &path);
		if (rename(pj->aside[o], path.buf)) {
			struct strbuf note = STRBUF_INIT;
			strbuf_addf(&note, "could not restore the old '%s' from '%s': %s", job->outputs[o],
				    pj->aside[o], strerror(errno));
			log_note(pool, index, note.buf);
			strbuf_release(&note);
		}
	}
	area_path(pool, EXEC_PREV_DIR, index, NULL, &path);
	exec_remove_tree(path.buf);
	strbuf_release(&path);
}

/* Move whatever new outputs exist to .cpipe/failed/<name>/. */
static void quarantine_outputs(struct pool *pool, size_t index)
{
	struct exec_job *job = &pool->jobs[index];
	struct strbuf path = STRBUF_INIT, target = STRBUF_INIT;
	size_t moved = 0;
	for (size_t o = 0; o < job->output_count; o++) {
		pool_path(pool, job->outputs[o], &path);
		if (!exec_path_exists_nofollow(path.buf))
			continue;
		strbuf_reset(&target);
		area_path(pool, EXEC_FAILED_DIR, index, job->outputs[o], &target);
		char *where = NULL;
		struct strbuf note = STRBUF_INIT;
		if (move_path(path.buf, target.buf, ".cpipe-failed", &where) == 0) {
			moved++;
			strbuf_addf(&note, "partial output '%s' moved to '%s'", job->outputs[o], where);
		} else {
			strbuf_addf(&note, "could not move partial output '%s' aside: %s", job->outputs[o],
				    strerror(errno));
		}
		log_note(pool, index, note.buf);
		strbuf_release(&note);
		free(where);
	}
	if (moved) {
		struct strbuf rel = STRBUF_INIT;
		strbuf_addf(&rel, "%s/%s", EXEC_FAILED_DIR, pool->state[index].name);
		job->result.quarantine = strbuf_detach(&rel);
	}
	strbuf_release(&path);
	strbuf_release(&target);
}

/* Whether the job moved any old output aside (into .cpipe/prev/<name>/) as it started. */
static bool any_aside(const struct pool_job *pj, size_t output_count)
{
	for (size_t o = 0; pj->aside && o < output_count; o++)
		if (pj->aside[o])
			return true;
	return false;
}

static void free_aside(struct pool_job *pj, size_t output_count)
{
	if (!pj->aside)
		return;
	for (size_t o = 0; o < output_count; o++)
		free(pj->aside[o]);
	FREE_AND_NULL(pj->aside);
}

static void running_remove(struct pool *pool, size_t index)
{
	for (size_t k = 0; k < pool->running_count; k++) {
		if (pool->running[k] != index)
			continue;
		pool->running[k] = pool->running[--pool->running_count];
		pool->used_threads -= pool->state[index].threads;
		pool->used_ram_gb -= pool->state[index].ram_gb;
		return;
	}
	BUG("job %zu is not running", index);
}

/* A job ended (or never got going): settle its outputs, counts and dependents. */
static void conclude_job(struct pool *pool, size_t index)
{
	struct exec_job *job = &pool->jobs[index];
	struct exec_result *result = &job->result;
	struct strbuf path = STRBUF_INIT;

	if (result->status == EXEC_JOB_OK) {
		if (pool->prev_area || any_aside(&pool->state[index], job->output_count)) {
			area_path(pool, EXEC_PREV_DIR, index, NULL, &path);
			exec_remove_tree(path.buf);
		}
		finish_log(pool, index);
	} else {
		close_log(pool, &pool->state[index]);
		if (result->message)
			log_note(pool, index, result->message);
		quarantine_outputs(pool, index);
		restore_outputs(pool, index);
	}
	free_aside(&pool->state[index], job->output_count);
	strbuf_release(&path);

	running_remove(pool, index);
	pool->state[index].state = POOL_DONE;
	pool->progress.running--;
	switch (result->status) {
	case EXEC_JOB_OK:
		pool->progress.succeeded++;
		break;
	case EXEC_JOB_INTERRUPTED:
		pool->progress.interrupted++;
		break;
	default:
		pool->progress.failed++;
		break;
	}
	if (result->status == EXEC_JOB_OK) {
		/*
		 * Reported once the slot it freed is filled again (report_succeeded): the caller's
		 * bookkeeping (recording, hashing outputs) then runs beside the next job instead of
		 * holding up its start, which is often a dependant of this one. Only a dependant the
		 * caller is asked about (on_ready) waits for the report. A failure is reported at once:
		 * it may stop admitting.
		 */
		pool->unreported[pool->unreported_count++] = index;
		for (size_t k = pool->first_dependent[index]; k < pool->first_dependent[index + 1]; k++) {
			size_t d = pool->dependents[k];
			if (!pool->jobs[d].ask_ready)
				release_dependent(pool, d);
			else if (pool->unreported_first_dependent == SIZE_MAX ||
				 starts_before(pool, d, pool->unreported_first_dependent))
				pool->unreported_first_dependent = d;
		}
		return;
	}
	report_finish(pool, index);
	if (!pool->opt->keep_going)
		pool->stopping = true;
	skip_dependents(pool, index);
}

/*
 * Report the successes conclude_job kept back and release their dependants that ask on_ready (it
 * released the others); whether there were any.
 */
static bool report_succeeded(struct pool *pool)
{
	size_t count = pool->unreported_count;
	for (size_t k = 0; k < count; k++) {
		size_t index = pool->unreported[k];
		name_spare_log(pool, index);
		report_finish(pool, index);
		for (size_t d = pool->first_dependent[index]; d < pool->first_dependent[index + 1]; d++)
			if (pool->jobs[pool->dependents[d]].ask_ready)
				release_dependent(pool, pool->dependents[d]);
	}
	pool->unreported_count = 0;
	pool->unreported_first_dependent = SIZE_MAX;
	return count > 0;
}

/* Judge a reaped child from its wait status. */
static void judge_exit(struct pool *pool, size_t index, int status)
{
	struct exec_job *job = &pool->jobs[index];
	struct exec_result *result = &job->result;
	result->end_time = exec_now_real();
	if (WIFEXITED(status)) {
		result->exit_code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		result->signal = WTERMSIG(status);
	}

	if (pool->state[index].signalled) {
		/* Whatever it managed before the signal, its outputs cannot be trusted. */
		result->status = EXEC_JOB_INTERRUPTED;
		set_message(result, xstrdup("interrupted"));
		return;
	}
	if (result->signal) {
		result->status = EXEC_JOB_FAILED;
		set_message(result, xasprintf("killed by signal %d (%s)", result->signal, strsignal(result->signal)));
		return;
	}
	if (result->exit_code != 0) {
		result->status = EXEC_JOB_FAILED;
		set_message(result, xasprintf("exit status %d", result->exit_code));
		return;
	}

	struct strbuf path = STRBUF_INIT, missing = STRBUF_INIT;
	size_t missing_count = 0;
	struct stat st;
	for (size_t o = 0; o < job->output_count; o++) {
		if (job->output_optional && job->output_optional[o])
			continue;
		pool_path(pool, job->outputs[o], &path);
		if (stat(path.buf, &st) == 0) /* follows symlinks: a dangling one is missing */
			continue;
		if (missing_count++ == 0) {
			strbuf_addf(&missing, "declared output '%s' was not created", job->outputs[o]);
		} else {
			/* The message names the first; the log gets every one. */
			char *note = xasprintf("declared output '%s' was not created", job->outputs[o]);
			log_note(pool, index, note);
			free(note);
		}
	}
	if (missing_count) {
		result->status = EXEC_JOB_FAILED;
		if (missing_count > 1)
			strbuf_addf(&missing, " (and %zu more)", missing_count - 1);
		set_message(result, strbuf_detach(&missing));
	} else {
		result->status = EXEC_JOB_OK;
	}
	strbuf_release(&missing);
	strbuf_release(&path);
}

/*
 * Write the job's command as a /bin/sh script at `rel` (cwd-relative). Written in place, neither
 * renamed nor fsynced: only this run reads it, and after a crash the job reruns and rewrites it.
 */
static int write_job_script(const struct pool *pool, const struct exec_job *job, const struct strbuf *rel,
			    struct strbuf *path, struct strbuf *script, char **why)
{
	exec_script_text(job->id, job->command, script);
	pool_path(pool, rel->buf, path);
	int script_fd = open(path->buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	int script_errno = errno;
	bool written = script_fd >= 0 && write_all(script_fd, script->buf, script->len) == 0;
	if (script_fd >= 0) {
		script_errno = errno;
		if (close(script_fd) && written) {
			script_errno = errno;
			written = false;
		}
	}
	if (!written) {
		*why = xasprintf("cannot write the job script '%s': %s", rel->buf, strerror(script_errno));
		return -1;
	}
	return 0;
}

static void start_job(struct pool *pool, size_t index)
{
	struct exec_job *job = &pool->jobs[index];
	struct pool_job *pj = &pool->state[index];
	struct exec_result *result = &job->result;
	struct strbuf script = STRBUF_INIT, rel = STRBUF_INIT, path = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	char *why = NULL;
	bool log_held = false;

	pj->state = POOL_RUNNING;
	pool->running[pool->running_count++] = index;
	pool->used_threads += pj->threads;
	pool->used_ram_gb += pj->ram_gb;
	pool->progress.waiting--;
	pool->progress.running++;
	result->start_time = exec_now_real();
	result->log_path = job->log_path ? xstrdup(job->log_path) : xasprintf("%s/%s.log", EXEC_LOG_DIR, pj->name);
	update_elapsed(pool);
	if (pool->opt->on_start)
		pool->opt->on_start(pool->opt->ctx, index, &pool->progress);

	/* The log first, so that any later failure can be explained in it. */
	int log_fd = open_log(pool, index, &err);
	if (log_fd < 0) {
		why = xasprintf("cannot open the log '%s': %s", result->log_path,
				err.message ? err.message : strerror(errno));
		goto failed;
	}
	/* Kept open for the success line (or to become a spare) unless that would take too many fds. */
	if (pool->log_fds_held < pool->log_fds_max) {
		pj->log_fd = log_fd;
		pool->log_fds_held++;
		log_held = true;
	}
	if (prepare_outputs(pool, index, &why))
		goto failed;

	strbuf_addf(&rel, "%s/%s.sh", EXEC_SCRIPT_DIR, pj->name);
	struct strvec words = STRVEC_INIT;
#ifdef EXEC_HAVE_VFORK
	bool direct = exec_simple_command_words(job->command, &words);
#else
	bool direct = false;
#endif
	if (direct) {
		strvec_push_owned(&words, NULL); /* argv's terminator */
		words.count--;
		pj->pid = exec_spawn(&pool->spawner, rel.buf, &words, log_fd);
	}
	strvec_release(&words);
	/*
	 * Through the shell: a command that needs one, or a plain one whose program could not be
	 * executed (the shell then says why in the log, as on a terminal). A direct job writes no
	 * script: one file less per job.
	 */
	if (!direct || pj->pid < 0) {
		if (write_job_script(pool, job, &rel, &path, &script, &why) < 0)
			goto failed;
		pj->pid = exec_spawn(&pool->spawner, rel.buf, NULL, log_fd);
	}
	if (pj->pid < 0) {
		why = xasprintf("cannot start /bin/sh in '%s': %s", pool->cwd, strerror(errno));
		goto failed;
	}
	goto done;

failed:
	result->status = EXEC_JOB_FAILED;
	result->end_time = exec_now_real();
	set_message(result, why);
	conclude_job(pool, index);
done:
	if (log_fd >= 0 && !log_held) /* else the job's end closes it */
		close(log_fd);
	cp_err_release(&err);
	strbuf_release(&script);
	strbuf_release(&rel);
	strbuf_release(&path);
}

/*
 * Whether job `index` may start now. A job needing more threads or RAM than
 * the limits allow would never fit, so it runs when nothing else is running
 * instead of deadlocking the pool.
 */
static bool job_fits(const struct pool *pool, size_t index)
{
	if (pool->running_count == 0)
		return true;
	if (pool->running_count >= (size_t)pool->max_jobs)
		return false;
	const struct pool_job *pj = &pool->state[index];
	return pool->used_threads + pj->threads <= pool->max_threads &&
	       pool->used_ram_gb + pj->ram_gb <= pool->max_ram_gb * (1 + 1e-9);
}

/*
 * Start ready jobs in order (starts_before) while they fit; none overtakes the first that does not. The
 * successes not yet reported go first when a dependant of theirs that asks on_ready could come before
 * that job.
 */
static void admit_jobs(struct pool *pool)
{
	while (!pool->stopping && pool->ready_count && job_fits(pool, pool->ready[0])) {
		if (pool->unreported_first_dependent != SIZE_MAX &&
		    starts_before(pool, pool->unreported_first_dependent, pool->ready[0]))
			report_succeeded(pool);
		else
			start_job(pool, heap_pop(pool));
	}
}

/*
 * The job's leader has ended. Anything left in its process group (a
 * background process, the rest of a group whose leader alone was killed)
 * could still be writing its outputs after they are judged, recorded or
 * quarantined: kill it. A job that succeeded with such leftovers fails, as
 * its outputs may be incomplete.
 */
static void end_leftovers(struct pool *pool, size_t index)
{
	pid_t group = pool->state[index].pid;
	if (kill(-group, 0) != 0)
		return;
	kill(-group, SIGKILL);
	struct exec_result *result = &pool->jobs[index].result;
	if (result->status == EXEC_JOB_OK) {
		result->status = EXEC_JOB_FAILED;
		set_message(result, xstrdup("processes it started were still running when it exited (killed)"));
	}
}

static void reap_jobs(struct pool *pool)
{
	size_t k = 0;
	while (k < pool->running_count) {
		size_t index = pool->running[k];
		int status = 0;
		pid_t r = waitpid(pool->state[index].pid, &status, WNOHANG);
		if (r == 0 || (r < 0 && errno == EINTR)) {
			k++;
			continue;
		}
		if (r < 0) {
			struct exec_result *result = &pool->jobs[index].result;
			result->status = EXEC_JOB_FAILED;
			result->end_time = exec_now_real();
			set_message(result, xasprintf("lost track of process %ld: %s", (long)pool->state[index].pid,
						      strerror(errno)));
		} else {
			judge_exit(pool, index, status);
			end_leftovers(pool, index);
		}
		/* Removes running[k] by moving the last entry there; look at k again. */
		conclude_job(pool, index);
	}
}

static void kill_signalled_groups(struct pool *pool, int signo)
{
	for (size_t g = 0; g < pool->signalled_count; g++)
		kill(-pool->signalled_groups[g], signo);
}

/* React to SIGINT/SIGTERM/SIGHUP that arrived since the last call. */
static void handle_interrupts(struct pool *pool)
{
	sig_atomic_t seen = exec_signals_interrupts();
	if (seen == pool->interrupts_handled)
		return;
	bool first = pool->interrupts_handled == 0;
	pool->interrupts_handled = seen;
	if (!first) {
		/* Asked twice: no more grace. */
		kill_signalled_groups(pool, SIGKILL);
		pool->kill_deadline = 0;
		return;
	}
	pool->interrupted = true;
	pool->stopping = true;
	for (size_t k = 0; k < pool->running_count; k++) {
		struct pool_job *pj = &pool->state[pool->running[k]];
		pj->signalled = true;
		pool->signalled_groups[pool->signalled_count++] = pj->pid;
		kill(-pj->pid, SIGTERM);
		/* A stopped job could not act on SIGTERM. */
		kill(-pj->pid, SIGCONT);
	}
	pool->kill_deadline = monotonic_seconds() + pool->kill_grace_s;
}

static bool any_group_alive(const struct pool *pool)
{
	for (size_t g = 0; g < pool->signalled_count; g++)
		if (kill(-pool->signalled_groups[g], 0) == 0 || errno == EPERM)
			return true;
	return false;
}

/*
 * After an interruption every job process is reaped, but what they started
 * in their process groups may live on: give it the rest of the grace period,
 * then SIGKILL.
 */
static void finish_interrupt(struct pool *pool, const struct exec_signals *signals)
{
	while (any_group_alive(pool)) {
		if (!pool->kill_deadline || monotonic_seconds() >= pool->kill_deadline) {
			kill_signalled_groups(pool, SIGKILL);
			return;
		}
		exec_signals_wait(signals, pool->kill_deadline);
		handle_interrupts(pool);
	}
}

static int pool_setup(struct pool *pool, struct exec_job *jobs, size_t count, const struct exec_options *opt,
		      struct cp_err *err)
{
	struct strmap names = STRMAP_INIT;
	struct strbuf name = STRBUF_INIT, path = STRBUF_INIT;
	int rc = 0;

	pool->jobs = jobs;
	pool->count = count;
	pool->opt = opt;
	pool->cwd = opt->cwd && *opt->cwd ? opt->cwd : ".";
	pool->max_jobs = opt->jobs > 0 ? opt->jobs : exec_cpu_count();
	pool->max_threads = opt->max_threads > 0 ? opt->max_threads : exec_cpu_count();
	pool->max_ram_gb = opt->max_ram_gb > 0 ? opt->max_ram_gb : exec_ram_gb();
	pool->kill_grace_s = opt->kill_grace_s > 0 ? opt->kill_grace_s : 2.0;
	pool->start_mono = monotonic_seconds();
	pool->state = xcalloc(count, sizeof(*pool->state));
	pool->first_dependent = xcalloc(count + 1, sizeof(*pool->first_dependent));
	pool->ready = xcalloc(count, sizeof(*pool->ready));
	pool->running = xcalloc((size_t)pool->max_jobs, sizeof(*pool->running));
	pool->unreported = xcalloc((size_t)pool->max_jobs, sizeof(*pool->unreported));
	pool->unreported_first_dependent = SIZE_MAX;
	pool->signalled_groups = xcalloc((size_t)pool->max_jobs, sizeof(*pool->signalled_groups));
	pool->progress.total = count;
	pool->progress.waiting = count;

	size_t edges = 0;
	for (size_t i = 0; i < count && !rc; i++) {
		struct exec_job *job = &jobs[i];
		exec_job_release(job);
		if (!job->id || !job->command) {
			cp_err_set(err, NULL, 0, "job %zu has no %s", i, job->id ? "command" : "id");
			rc = -1;
			break;
		}
		if (job->output_count && !job->outputs) {
			cp_err_set(err, NULL, 0, "job '%s' has %zu outputs but no output list", job->id,
				   job->output_count);
			rc = -1;
			break;
		}
		for (size_t d = 0; d < job->dep_count; d++) {
			if (job->deps[d] < i && pool->state[job->deps[d]].depth >= pool->state[i].depth)
				pool->state[i].depth = pool->state[job->deps[d]].depth + 1;
			if (job->deps[d] >= i) {
				cp_err_set(err, NULL, 0,
					   "job '%s' (index %zu) depends on index %zu, which does not come before it",
					   job->id, i, job->deps[d]);
				rc = -1;
				break;
			}
			pool->first_dependent[job->deps[d] + 1]++;
			edges++;
		}
		strbuf_reset(&name);
		job_file_name(job->id, &name);
		size_t other;
		if (!rc && strmap_get(&names, name.buf, &other)) {
			cp_err_set(err, NULL, 0, "jobs '%s' and '%s' have the same file name '%s'", jobs[other].id,
				   job->id, name.buf);
			rc = -1;
		}
		strmap_put(&names, name.buf, i);
		pool->state[i].name = strbuf_detach(&name);
		pool->state[i].log_fd = -1;
		pool->state[i].pending_deps = job->dep_count;
		pool->state[i].threads = job->resources.threads > 0 ? (int)job->resources.threads : 1;
		pool->state[i].ram_gb = job->resources.ram_gb > 0 ? job->resources.ram_gb : 0;
	}
	if (!rc) {
		/* Counting sort of the edges by dependency: dependents of i follow first_dependent[i]. */
		for (size_t i = 0; i < count; i++)
			pool->first_dependent[i + 1] += pool->first_dependent[i];
		pool->dependents = xcalloc(edges ? edges : 1, sizeof(*pool->dependents));
		size_t *fill = xcalloc(count, sizeof(*fill));
		for (size_t i = 0; i < count; i++)
			for (size_t d = 0; d < jobs[i].dep_count; d++) {
				size_t dep = jobs[i].deps[d];
				pool->dependents[pool->first_dependent[dep] + fill[dep]++] = i;
			}
		free(fill);
	}
	static const char *const dirs[] = {EXEC_SCRIPT_DIR, EXEC_LOG_DIR};
	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]) && !rc && count; d++) {
		pool_path(pool, dirs[d], &path);
		rc = exec_mkdir_p(path.buf, err);
	}
	pool->envp = environ;
	if (opt->run_id) {
		/* Every job carries the run id, so that a later run can find what outlived a killed one. */
		size_t n = 0;
		while (environ[n])
			n++;
		pool->envp = xcalloc(n + 2, sizeof(*pool->envp));
		pool->run_id_entry = xasprintf("%s=%s", EXEC_RUN_ID_VARIABLE, opt->run_id);
		size_t kept = 0;
		for (size_t i = 0; i < n; i++)
			if (!str_starts_with(environ[i], EXEC_RUN_ID_VARIABLE "="))
				pool->envp[kept++] = environ[i];
		pool->envp[kept] = pool->run_id_entry;
	}
	pool_path(pool, EXEC_PREV_DIR, &path);
	pool->prev_area = exec_path_exists_nofollow(path.buf);
	pool_path(pool, EXEC_FAILED_DIR, &path);
	pool->failed_area = exec_path_exists_nofollow(path.buf);
	/* A quarter of the open-file limit for held logs leaves the rest to SQLite, the jobs' pipes and the caller. */
	struct rlimit files;
	pool->log_fds_max = 64;
	if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY)
		pool->log_fds_max = (size_t)files.rlim_cur / 4;
	strmap_release(&names);
	strbuf_release(&name);
	strbuf_release(&path);
	return rc;
}

static void pool_release(struct pool *pool)
{
	for (size_t i = 0; i < pool->count && pool->state; i++) {
		free(pool->state[i].name);
		free_aside(&pool->state[i], pool->jobs[i].output_count);
	}
	free(pool->state);
	free(pool->first_dependent);
	free(pool->dependents);
	free(pool->ready);
	free(pool->running);
	free(pool->unreported);
	free(pool->signalled_groups);
	if (pool->envp != environ)
		free(pool->envp);
	free(pool->run_id_entry);
	remove_spare_logs(pool);
	if (pool->spawner_ready)
		exec_spawner_release(&pool->spawner);
}

int exec_run_local(struct exec_job *jobs, size_t count, const struct exec_options *opt,
		   struct exec_progress *summary, struct cp_err *err)
{
	static const struct exec_options defaults = EXEC_OPTIONS_INIT;
	struct pool pool;
	struct exec_signals signals;
	struct exec_sched sched = {0};
	memset(&pool, 0, sizeof(pool));
	if (!opt)
		opt = &defaults;

	if (pool_setup(&pool, jobs, count, opt, err)) {
		pool_release(&pool);
		return EXEC_RUN_ERROR;
	}
	exec_signals_install(&signals);
	if (count) {
		sigset_t job_defaults;
		exec_signals_job_defaults(&signals, &job_defaults);
		if (exec_spawner_init(&pool.spawner, pool.cwd, pool.envp, &job_defaults, err)) {
			exec_signals_restore(&signals);
			pool_release(&pool);
			return EXEC_RUN_ERROR;
		}
		pool.spawner_ready = true;
		exec_sched_quick_wakeups(&sched);
	}

	double tick_interval = opt->tick_interval_s > 0 ? opt->tick_interval_s : 1.0;
	double next_tick = pool.start_mono + tick_interval;
	for (size_t i = 0; i < count; i++)
		if (!jobs[i].dep_count) /* not pending_deps: an unneeded job already released its dependants */
			job_ready(&pool, i);

	for (;;) {
		admit_jobs(&pool);
		if (report_succeeded(&pool))
			admit_jobs(&pool); /* their dependants */
		if (!pool.running_count)
			break;
		double wake = opt->on_tick ? next_tick : 0;
		if (pool.kill_deadline && (!wake || pool.kill_deadline < wake))
			wake = pool.kill_deadline;
		exec_signals_wait(&signals, wake);
		/* Reap before acting on a signal, so a job that already ended is not called interrupted. */
		reap_jobs(&pool);
		handle_interrupts(&pool);
		double now = monotonic_seconds();
		if (pool.kill_deadline && now >= pool.kill_deadline) {
			kill_signalled_groups(&pool, SIGKILL);
			pool.kill_deadline = 0;
		}
		if (opt->on_tick && now >= next_tick) {
			update_elapsed(&pool);
			opt->on_tick(opt->ctx, &pool.progress);
			next_tick = now + tick_interval;
		}
	}

	/* A signal that came while the last job was being concluded is still pending: take it now. */
	struct timespec zero = {0, 0};
	pselect(0, NULL, NULL, NULL, &zero, &signals.wait_mask);
	handle_interrupts(&pool);
	if (pool.interrupted)
		finish_interrupt(&pool, &signals);

	for (size_t i = 0; i < count; i++)
		if (pool.state[i].state == POOL_WAITING)
			skip_job(&pool, i,
				 xstrdup(pool.interrupted ? "not started: the run was interrupted"
							  : "not started: the run stopped after a failure"));

	exec_sched_restore(&sched);
	exec_signals_restore(&signals);
	update_elapsed(&pool);
	if (summary)
		*summary = pool.progress;
	int rc = pool.interrupted ? EXEC_RUN_INTERRUPTED
	       : pool.progress.succeeded + pool.progress.unneeded == count ? EXEC_RUN_OK
	                                          : EXEC_RUN_FAILED;
	pool_release(&pool);
	return rc;
}
