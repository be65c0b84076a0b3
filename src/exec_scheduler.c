/*
 * exec, cluster part: each scheduler's command lines (exec_scheduler.h).
 * Submitting (sbatch, qsub, fsl_sub), asking where jobs are (one squeue or
 * qstat per call), cancelling, and the scheduler's limits (array size,
 * fsl_sub's queues, parallel environments). Every program is run with an
 * argument vector, never through a shell. Calls nothing in exec_cluster.c.
 */
#include "exec_scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- finding and running a program --------------------------------------- */

bool exec_on_path(const char *program)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/bin:/bin";
	struct strvec dirs = STRVEC_INIT;
	struct strbuf full = STRBUF_INIT;
	strvec_split(&dirs, path, ':', false);
	bool found = false;
	for (size_t i = 0; i < dirs.count && !found; i++) {
		strbuf_reset(&full);
		path_join(*dirs.items[i] ? dirs.items[i] : ".", program, &full);
		struct stat st;
		found = stat(full.buf, &st) == 0 && S_ISREG(st.st_mode) && access(full.buf, X_OK) == 0;
	}
	strbuf_release(&full);
	strvec_release(&dirs);
	return found;
}


int exec_run_capture(const struct strvec *argv, struct strbuf *out, struct strbuf *errout, int *status,
		     struct cp_err *err)
{
	int out_pipe[2], err_pipe[2];
	if (pipe(out_pipe) < 0) {
		cp_err_set(err, NULL, 0, "cannot run %s: pipe: %s", argv->items[0], strerror(errno));
		return -1;
	}
	if (pipe(err_pipe) < 0) {
		cp_err_set(err, NULL, 0, "cannot run %s: pipe: %s", argv->items[0], strerror(errno));
		close(out_pipe[0]);
		close(out_pipe[1]);
		return -1;
	}
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
	posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
	posix_spawn_file_actions_addclose(&actions, err_pipe[0]);
	posix_spawn_file_actions_addclose(&actions, out_pipe[1]);
	posix_spawn_file_actions_addclose(&actions, err_pipe[1]);
	char **args = xcalloc(argv->count + 1, sizeof(*args));
	for (size_t i = 0; i < argv->count; i++)
		args[i] = argv->items[i];
	pid_t pid;
	int spawned = posix_spawnp(&pid, args[0], &actions, NULL, args, environ);
	posix_spawn_file_actions_destroy(&actions);
	free(args);
	close(out_pipe[1]);
	close(err_pipe[1]);
	if (spawned != 0) {
		close(out_pipe[0]);
		close(err_pipe[0]);
		cp_err_set(err, NULL, 0, "cannot run %s: %s", argv->items[0], strerror(spawned));
		return -1;
	}
	struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
	struct strbuf *sinks[2] = {out, errout};
	int open_count = 2;
	char buffer[8192];
	while (open_count > 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_count--;
			} else if (sinks[i]) {
				strbuf_add(sinks[i], buffer, (size_t)n);
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	int wstatus = 0;
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	*status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : 255;
	return 0;
}

/* ---- submission command lines ------------------------------------------------ */

static void push_joined(struct strvec *argv, const char *prefix, const struct strvec *items, const char *sep)
{
	struct strbuf arg = STRBUF_INIT;
	strbuf_adds(&arg, prefix);
	for (size_t i = 0; i < items->count; i++) {
		if (i)
			strbuf_adds(&arg, sep);
		strbuf_adds(&arg, items->items[i]);
	}
	strvec_push_owned(argv, strbuf_detach(&arg));
}

/* Round up without libm (the module links only libc). */
static long round_up(double value)
{
	long whole = (long)value;
	return (double)whole < value - 1e-9 ? whole + 1 : whole;
}

static long ceil_mb(double gb)
{
	return round_up(gb * 1024.0);
}

static void push_extra(const struct exec_resources *r, struct strvec *argv)
{
	for (size_t i = 0; i < r->extra_count; i++)
		strvec_push(argv, r->extra[i]);
	for (size_t i = 0; i < r->backend_extra_count; i++)
		strvec_push(argv, r->backend_extra[i]);
}

const char *exec_parallel_env(enum exec_cluster_kind kind, const char *pe)
{
	const char *configured = getenv(kind == EXEC_CLUSTER_SGE ? "CPIPE_SGE_PE" : "CPIPE_FSL_SUB_PE");
	if (pe)
		return pe;
	if (configured && *configured)
		return configured;
	/* SGE has no standard name; "smp" is the most common one. */
	return kind == EXEC_CLUSTER_SGE ? "smp" : NULL;
}

static void slurm_argv(const struct exec_submit_call *call, struct strvec *argv)
{
	const struct exec_resources *r = &call->resources;
	strvec_push(argv, "sbatch");
	strvec_push(argv, "--parsable");
	strvec_push_owned(argv, xasprintf("--chdir=%s", call->root));
	strvec_push_owned(argv, xasprintf("--job-name=%s", call->name));
	strvec_push_owned(argv, xasprintf("--output=%s/%s/%s%s.out", call->root, EXEC_JOBS_DIR, call->name,
					  call->task_count ? ".%a" : ""));
	/* A dependant of a failed job is cancelled instead of pending for ever. */
	strvec_push(argv, "--kill-on-invalid-dep=yes");
	if (call->task_count)
		strvec_push_owned(argv, xasprintf("--array=1-%zu", call->task_count));
	if (call->holds.whole.count || call->holds.corresponding.count) {
		struct strbuf dep = STRBUF_INIT;
		strbuf_adds(&dep, "--dependency=");
		if (call->holds.whole.count) {
			strbuf_adds(&dep, "afterok");
			for (size_t i = 0; i < call->holds.whole.count; i++)
				strbuf_addf(&dep, ":%s", call->holds.whole.items[i]);
		}
		if (call->holds.corresponding.count) {
			if (call->holds.whole.count)
				strbuf_addch(&dep, ',');
			strbuf_adds(&dep, "aftercorr");
			for (size_t i = 0; i < call->holds.corresponding.count; i++)
				strbuf_addf(&dep, ":%s", call->holds.corresponding.items[i]);
		}
		strvec_push_owned(argv, strbuf_detach(&dep));
	}
	if (r->minutes > 0)
		strvec_push_owned(argv, xasprintf("--time=%ld", r->minutes));
	if (r->ram_gb > 0)
		strvec_push_owned(argv, xasprintf("--mem=%ldM", ceil_mb(r->ram_gb)));
	if (r->threads > 0)
		strvec_push_owned(argv, xasprintf("--cpus-per-task=%ld", r->threads));
	if (r->queue)
		strvec_push_owned(argv, xasprintf("--partition=%s", r->queue));
	if (r->coprocessor)
		strvec_push_owned(argv, xasprintf("--gres=gpu:%ld", r->coprocessor_count > 0 ? r->coprocessor_count : 1));
	push_extra(r, argv);
	strvec_push(argv, call->script);
}

static void sge_argv(const struct exec_submit_call *call, struct strvec *argv)
{
	const struct exec_resources *r = &call->resources;
	strvec_push(argv, "qsub");
	strvec_push(argv, "-terse");
	strvec_push(argv, "-wd");
	strvec_push(argv, call->root);
	strvec_push(argv, "-N");
	/* SGE job names may not start with a digit. */
	strvec_push_owned(argv, xasprintf("%s%s", call->name[0] >= '0' && call->name[0] <= '9' ? "j" : "", call->name));
	strvec_push(argv, "-o");
	/* $TASK_ID is expanded by SGE itself, not by a shell. */
	strvec_push_owned(argv, xasprintf("%s/%s/%s%s.out", call->root, EXEC_JOBS_DIR, call->name,
					  call->task_count ? ".$TASK_ID" : ""));
	strvec_push(argv, "-j");
	strvec_push(argv, "y");
	strvec_push(argv, "-S");
	strvec_push(argv, "/bin/sh");
	if (call->task_count) {
		strvec_push(argv, "-t");
		strvec_push_owned(argv, xasprintf("1-%zu", call->task_count));
	}
	if (call->holds.whole.count) {
		strvec_push(argv, "-hold_jid");
		push_joined(argv, "", &call->holds.whole, ",");
	}
	if (call->holds.corresponding.count) {
		strvec_push(argv, "-hold_jid_ad");
		push_joined(argv, "", &call->holds.corresponding, ",");
	}
	if (r->minutes > 0) {
		strvec_push(argv, "-l");
		strvec_push_owned(argv, xasprintf("h_rt=%ld:%02ld:00", r->minutes / 60, r->minutes % 60));
	}
	if (r->ram_gb > 0) {
		strvec_push(argv, "-l");
		strvec_push_owned(argv, xasprintf("h_vmem=%ldM", ceil_mb(r->ram_gb)));
	}
	if (r->threads > 1) {
		strvec_push(argv, "-pe");
		strvec_push(argv, exec_parallel_env(EXEC_CLUSTER_SGE, r->pe));
		strvec_push_owned(argv, xasprintf("%ld", r->threads));
	}
	if (r->queue) {
		strvec_push(argv, "-q");
		strvec_push(argv, r->queue);
	}
	if (r->coprocessor) {
		strvec_push(argv, "-l");
		strvec_push_owned(argv, xasprintf("gpu=%ld", r->coprocessor_count > 0 ? r->coprocessor_count : 1));
	}
	push_extra(r, argv);
	strvec_push(argv, call->script);
}

static void fsl_sub_argv(const struct exec_submit_call *call, struct strvec *argv)
{
	const struct exec_resources *r = &call->resources;
	strvec_push(argv, "fsl_sub");
	strvec_push(argv, "-N");
	strvec_push(argv, call->name);
	strvec_push(argv, "-l");
	strvec_push_owned(argv, xasprintf("%s/%s", call->root, EXEC_JOBS_DIR));
	if (r->minutes > 0) {
		strvec_push(argv, "-T");
		strvec_push_owned(argv, xasprintf("%ld", r->minutes));
	}
	if (r->ram_gb > 0) {
		strvec_push(argv, "-R");
		strvec_push_owned(argv, xasprintf("%ld", round_up(r->ram_gb)));
	}
	if (r->queue) {
		strvec_push(argv, "-q");
		strvec_push(argv, r->queue);
	}
	const char *pe = exec_parallel_env(EXEC_CLUSTER_FSL_SUB, r->pe);
	if (r->threads > 1 && pe) { /* exec_cluster_submit refuses threads > 1 without a name */
		strvec_push(argv, "-s");
		strvec_push_owned(argv, xasprintf("%s,%ld", pe, r->threads));
	}
	if (r->coprocessor) {
		strvec_push(argv, "-c");
		strvec_push(argv, r->coprocessor);
		if (r->coprocessor_count > 1) {
			strvec_push(argv, "--coprocessor_multi");
			strvec_push_owned(argv, xasprintf("%ld", r->coprocessor_count));
		}
	}
	/*
	 * --array_hold ID: task i waits for task i of array ID (SLURM aftercorr). fsl_sub's
	 * plugins drop -j when it is given, so it is used only when that array is the only
	 * parent; otherwise every parent is waited for as a whole with -j.
	 */
	if (call->holds.corresponding.count == 1 && !call->holds.whole.count) {
		strvec_push(argv, "--array_hold");
		strvec_push(argv, call->holds.corresponding.items[0]);
	} else if (call->holds.whole.count || call->holds.corresponding.count) {
		struct strvec holds = STRVEC_INIT;
		for (size_t i = 0; i < call->holds.whole.count; i++)
			strvec_push(&holds, call->holds.whole.items[i]);
		for (size_t i = 0; i < call->holds.corresponding.count; i++)
			strvec_push(&holds, call->holds.corresponding.items[i]);
		strvec_push(argv, "-j");
		push_joined(argv, "", &holds, ",");
		strvec_release(&holds);
	}
	push_extra(r, argv);
	if (call->task_count) {
		strvec_push(argv, "-t");
		strvec_push(argv, call->tasks_file);
	} else {
		strvec_push(argv, "/bin/sh");
		strvec_push(argv, call->script);
		/* fsl_sub's job reads the script when it starts; the token is what it keeps of this submission. */
		if (call->token)
			strvec_push(argv, call->token);
	}
}

void exec_scheduler_argv(const struct exec_submit_call *call, struct strvec *argv)
{
	switch (call->kind) {
	case EXEC_CLUSTER_SLURM: slurm_argv(call, argv); break;
	case EXEC_CLUSTER_SGE: sge_argv(call, argv); break;
	case EXEC_CLUSTER_FSL_SUB: fsl_sub_argv(call, argv); break;
	case EXEC_CLUSTER_NONE: BUG("no scheduler");
	}
}

/* The first line of `text`, trimmed, up to the first of `stops`. */
static char *first_token(const char *text, const char *stops)
{
	char *line = xstrndup(text, strcspn(text, "\n"));
	str_trim(line);
	line[strcspn(line, stops)] = '\0';
	return line;
}

int exec_scheduler_submit(const struct exec_submit_call *call, char **job_id, struct cp_err *err)
{
	struct strvec argv = STRVEC_INIT;
	struct strbuf out = STRBUF_INIT, errout = STRBUF_INIT;
	*job_id = NULL;
	exec_scheduler_argv(call, &argv);
	int status = 0;
	int rc = exec_run_capture(&argv, &out, &errout, &status, err);
	if (rc == 0) {
		/* sbatch --parsable: "ID[;cluster]"; qsub -terse: "ID[.tasks]"; fsl_sub: "ID". */
		*job_id = first_token(out.buf, call->kind == EXEC_CLUSTER_SLURM ? ";" :
						call->kind == EXEC_CLUSTER_SGE ? "." : " \t");
		if (status != 0 || !**job_id) {
			str_trim(errout.buf);
			errout.len = strlen(errout.buf);
			cp_err_set(err, NULL, 0, "%s failed (exit status %d) submitting %s: %s", argv.items[0], status,
				   call->name, errout.len ? errout.buf : "(no message)");
			rc = -1;
		}
	}
	strvec_release(&argv);
	strbuf_release(&out);
	strbuf_release(&errout);
	return rc;
}

bool exec_fsl_sub_has_queues(void)
{
	struct strvec argv = STRVEC_INIT;
	strvec_push(&argv, "fsl_sub");
	strvec_push(&argv, "--has_queues");
	int status = 1;
	struct cp_err err = CP_ERR_INIT;
	if (exec_run_capture(&argv, NULL, NULL, &status, &err) < 0)
		cp_err_release(&err);
	strvec_release(&argv);
	return status == 0;
}

/* ---- where jobs are ------------------------------------------------------------ */

/* Which program to ask about a submission: fsl_sub's go to the scheduler under it. */
static enum exec_cluster_kind query_kind(enum exec_cluster_kind kind)
{
	if (kind != EXEC_CLUSTER_FSL_SUB)
		return kind;
	if (exec_on_path("squeue"))
		return EXEC_CLUSTER_SLURM;
	if (exec_on_path("qstat"))
		return EXEC_CLUSTER_SGE;
	return EXEC_CLUSTER_NONE;
}

/*
 * The value of `key` in the output of a configuration listing, where each
 * line is "KEY = VALUE" (scontrol) or "KEY VALUE" (qconf); -1 when absent.
 */
static long config_value(const char *text, const char *key)
{
	size_t key_len = strlen(key);
	for (const char *line = text; *line;) {
		const char *end = line + strcspn(line, "\n");
		if ((size_t)(end - line) > key_len && !strncmp(line, key, key_len) &&
		    (line[key_len] == ' ' || line[key_len] == '\t' || line[key_len] == '=')) {
			const char *value = line + key_len + strspn(line + key_len, " \t=");
			char *stop;
			long v = strtol(value, &stop, 10);
			return stop == value || v < 0 ? -1 : v;
		}
		line = *end ? end + 1 : end;
	}
	return -1;
}

size_t exec_cluster_array_limit(enum exec_cluster_kind kind)
{
	kind = query_kind(kind);
	if (kind == EXEC_CLUSTER_NONE)
		return SIZE_MAX;
	bool slurm = kind == EXEC_CLUSTER_SLURM;
	struct strvec argv = STRVEC_INIT;
	strvec_push(&argv, slurm ? "scontrol" : "qconf");
	strvec_push(&argv, slurm ? "show" : "-sconf");
	if (slurm)
		strvec_push(&argv, "config");
	struct strbuf out = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	int status = 1;
	long value = -1;
	if (exec_run_capture(&argv, &out, NULL, &status, &err) < 0)
		cp_err_release(&err);
	else if (status == 0)
		value = config_value(out.buf, slurm ? "MaxArraySize" : "max_aj_tasks");
	strvec_release(&argv);
	strbuf_release(&out);
	/* The defaults when the configuration cannot be read: SLURM's 1001 (ids 0-1000), SGE's 75000. */
	if (value < 0)
		value = slurm ? 1001 : 75000;
	if (value == 0)
		return slurm ? 0 : SIZE_MAX; /* SLURM: arrays are disabled; SGE: no limit */
	/* SLURM's limit bounds the task id, and cpipe's tasks count from 1. */
	return slurm ? (size_t)value - 1 : (size_t)value;
}

static enum exec_cluster_state slurm_state(const char *state, const char *reason)
{
	bool never = reason && !strcmp(reason, "DependencyNeverSatisfied");
	/* --kill-on-invalid-dep turns those into CANCELLED with the same reason. */
	if (!strcmp(state, "PENDING") || (never && !strcmp(state, "CANCELLED")))
		return never ? EXEC_CLUSTER_NEVER : EXEC_CLUSTER_QUEUED;
	if (!strcmp(state, "RUNNING") || !strcmp(state, "COMPLETING") || !strcmp(state, "CONFIGURING") ||
	    !strcmp(state, "SIGNALING") || !strcmp(state, "STAGE_OUT") || !strcmp(state, "RESIZING"))
		return EXEC_CLUSTER_RUNNING;
	if (!strcmp(state, "SUSPENDED") || !strncmp(state, "REQUEUE", 7) || !strcmp(state, "RESV_DEL_HOLD") ||
	    !strcmp(state, "SPECIAL_EXIT"))
		return EXEC_CLUSTER_QUEUED;
	return EXEC_CLUSTER_ENDED; /* COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ... */
}

/*
 * Call fn for each task number in an array spec: "3", "1-10", "1-10:2",
 * "2-4,7,9-12%5" (SLURM's "%N" limit and SGE's ":step" understood).
 */
static void for_each_task(const char *spec, void (*fn)(void *ctx, long task), void *ctx)
{
	struct strvec parts = STRVEC_INIT;
	char *copy = xstrdup(spec);
	copy[strcspn(copy, "%")] = '\0';
	strvec_split(&parts, copy, ',', true);
	for (size_t i = 0; i < parts.count; i++) {
		char *end;
		long first = strtol(parts.items[i], &end, 10), last = first, step = 1;
		if (end == parts.items[i])
			continue;
		if (*end == '-')
			last = strtol(end + 1, &end, 10);
		if (*end == ':')
			step = strtol(end + 1, &end, 10);
		if (step < 1)
			step = 1;
		/* A runaway range from a garbled line must not loop for ever. */
		if (last - first > 10000000)
			last = first + 10000000;
		for (long t = first; t <= last; t += step)
			fn(ctx, t);
	}
	strvec_release(&parts);
	free(copy);
}

struct state_table {
	struct strmap map;   /* "J" or "J_T" -> index into states */
	enum exec_cluster_state *states;
	size_t count, cap;
	const char *job;
	enum exec_cluster_state current;
};

static void table_put(struct state_table *t, const char *key, enum exec_cluster_state state)
{
	ALLOC_GROW(t->states, t->count + 1, t->cap);
	t->states[t->count] = state;
	strmap_put(&t->map, key, t->count);
	t->count++;
}

static void table_put_task(void *ctx, long task)
{
	struct state_table *t = ctx;
	char *key = xasprintf("%s_%ld", t->job, task);
	table_put(t, key, t->current);
	free(key);
}

static bool table_get(const struct state_table *t, const char *key, enum exec_cluster_state *out)
{
	size_t index;
	if (!strmap_get(&t->map, key, &index))
		return false;
	*out = t->states[index];
	return true;
}

static void table_release(struct state_table *t)
{
	strmap_release(&t->map);
	free(t->states);
}

/* Add a line's id ("J", "J_T", "J_[spec]") with its state. */
static void table_add_id(struct state_table *t, const char *id, enum exec_cluster_state state)
{
	const char *underscore = strchr(id, '_');
	if (!underscore || underscore[1] != '[') {
		table_put(t, id, state);
		return;
	}
	char *job = xstrndup(id, (size_t)(underscore - id));
	char *spec = xstrdup(underscore + 2);
	spec[strcspn(spec, "]")] = '\0';
	t->job = job;
	t->current = state;
	for_each_task(spec, table_put_task, t);
	free(spec);
	free(job);
}

/* The state of each submission ("JOB" or "JOB_TASK" in the table); `absent` for one not listed. */
static void table_look_up(const struct state_table *t, const struct exec_submission *const *subs, size_t count,
			  enum exec_cluster_state *states, enum exec_cluster_state absent)
{
	struct strbuf key = STRBUF_INIT;
	for (size_t i = 0; i < count; i++) {
		strbuf_reset(&key);
		strbuf_adds(&key, subs[i]->job);
		if (subs[i]->task > 0)
			strbuf_addf(&key, "_%ld", subs[i]->task);
		if (!table_get(t, key.buf, &states[i]))
			states[i] = absent;
	}
	strbuf_release(&key);
}

static int query_slurm(const struct exec_submission *const *subs, size_t count, enum exec_cluster_state *states,
		       struct cp_err *err)
{
	struct strvec jobs = STRVEC_INIT, argv = STRVEC_INIT;
	for (size_t i = 0; i < count; i++)
		if (strvec_find(&jobs, subs[i]->job) < 0)
			strvec_push(&jobs, subs[i]->job);
	strvec_push(&argv, "squeue");
	strvec_push(&argv, "-h");
	strvec_push(&argv, "-t");
	strvec_push(&argv, "all");
	push_joined(&argv, "--jobs=", &jobs, ",");
	strvec_push(&argv, "-o");
	strvec_push(&argv, "%i %T %r");
	struct strbuf out = STRBUF_INIT, errout = STRBUF_INIT;
	int status = 0;
	int rc = exec_run_capture(&argv, &out, &errout, &status, err);
	if (rc == 0 && status != 0 && !strstr(errout.buf, "Invalid job id")) {
		str_trim(errout.buf);
		cp_err_set(err, NULL, 0, "squeue failed (exit status %d): %s", status, errout.buf);
		rc = -1;
	}
	struct state_table table;
	memset(&table, 0, sizeof(table));
	if (rc == 0 && status == 0) {
		struct strvec lines = STRVEC_INIT;
		strvec_split(&lines, out.buf, '\n', true);
		for (size_t l = 0; l < lines.count; l++) {
			struct strvec fields = STRVEC_INIT;
			strvec_split(&fields, lines.items[l], ' ', true);
			if (fields.count >= 2)
				table_add_id(&table, fields.items[0],
					     slurm_state(fields.items[1], fields.count >= 3 ? fields.items[2] : NULL));
			strvec_release(&fields);
		}
		strvec_release(&lines);
	}
	if (rc == 0)
		table_look_up(&table, subs, count, states, EXEC_CLUSTER_UNKNOWN);
	table_release(&table);
	strvec_release(&jobs);
	strvec_release(&argv);
	strbuf_release(&out);
	strbuf_release(&errout);
	return rc;
}

static enum exec_cluster_state sge_state(const char *state)
{
	if (strchr(state, 'E'))
		return EXEC_CLUSTER_NEVER;
	if (strchr(state, 'r') || strchr(state, 't') || strchr(state, 'd'))
		return EXEC_CLUSTER_RUNNING;
	return EXEC_CLUSTER_QUEUED;
}

static int query_sge(const struct exec_submission *const *subs, size_t count, enum exec_cluster_state *states,
		     struct cp_err *err)
{
	struct strvec argv = STRVEC_INIT;
	strvec_push(&argv, "qstat");
	strvec_push(&argv, "-u");
	strvec_push(&argv, "*");
	strvec_push(&argv, "-g");
	strvec_push(&argv, "d");
	struct strbuf out = STRBUF_INIT, errout = STRBUF_INIT;
	int status = 0;
	int rc = exec_run_capture(&argv, &out, &errout, &status, err);
	if (rc == 0 && status != 0) {
		str_trim(errout.buf);
		cp_err_set(err, NULL, 0, "qstat failed (exit status %d): %s", status, errout.buf);
		rc = -1;
	}
	struct state_table table;
	memset(&table, 0, sizeof(table));
	if (rc == 0) {
		struct strvec lines = STRVEC_INIT;
		strvec_split(&lines, out.buf, '\n', false);
		/* Columns are fixed-width; the task column starts under its header. */
		size_t task_column = 0;
		for (size_t l = 0; l < lines.count; l++) {
			const char *line = lines.items[l];
			const char *header = strstr(line, "ja-task-ID");
			if (header) {
				task_column = (size_t)(header - line);
				continue;
			}
			struct strvec fields = STRVEC_INIT;
			strvec_split(&fields, line, ' ', true);
			/* Drop the empty fields left by runs of spaces. */
			size_t n = 0;
			for (size_t f = 0; f < fields.count; f++)
				if (*fields.items[f])
					fields.items[n++] = fields.items[f];
				else
					free(fields.items[f]);
			fields.count = n;
			if (n >= 5 && fields.items[0][0] >= '0' && fields.items[0][0] <= '9') {
				enum exec_cluster_state state = sge_state(fields.items[4]);
				char *tasks = task_column && strlen(line) > task_column ? xstrdup(line + task_column) : NULL;
				if (tasks)
					str_trim(tasks);
				table_put(&table, fields.items[0], state);
				if (tasks && *tasks) {
					table.job = fields.items[0];
					table.current = state;
					for_each_task(tasks, table_put_task, &table);
				}
				free(tasks);
			}
			strvec_release(&fields);
		}
		strvec_release(&lines);
	}
	/* qstat lists every job SGE still has: one it does not list has ended. */
	if (rc == 0)
		table_look_up(&table, subs, count, states, EXEC_CLUSTER_ENDED);
	table_release(&table);
	strvec_release(&argv);
	strbuf_release(&out);
	strbuf_release(&errout);
	return rc;
}

int exec_cluster_query(const struct exec_submission *const *subs, size_t count, enum exec_cluster_state *states,
		       struct cp_err *err)
{
	for (size_t i = 0; i < count; i++)
		states[i] = EXEC_CLUSTER_UNKNOWN;
	if (!count)
		return 0;
	/* Group by the program to ask; in practice all submissions use one. */
	const struct exec_submission **part = xcalloc(count, sizeof(*part));
	enum exec_cluster_state *part_states = xcalloc(count, sizeof(*part_states));
	size_t *where = xcalloc(count, sizeof(*where));
	int rc = 0;
	enum exec_cluster_kind kinds[2] = {EXEC_CLUSTER_SLURM, EXEC_CLUSTER_SGE};
	for (int k = 0; k < 2 && rc == 0; k++) {
		size_t n = 0;
		for (size_t i = 0; i < count; i++)
			if (query_kind(subs[i]->kind) == kinds[k]) {
				where[n] = i;
				part[n++] = subs[i];
			}
		if (!n)
			continue;
		rc = kinds[k] == EXEC_CLUSTER_SLURM ? query_slurm(part, n, part_states, err)
						    : query_sge(part, n, part_states, err);
		for (size_t j = 0; rc == 0 && j < n; j++)
			states[where[j]] = part_states[j];
	}
	if (rc < 0)
		for (size_t i = 0; i < count; i++)
			states[i] = EXEC_CLUSTER_UNKNOWN;
	free(part);
	free(part_states);
	free(where);
	return rc;
}

int exec_cluster_cancel(const struct exec_submission *const *subs, size_t count, struct cp_err *err)
{
	int rc = 0;
	enum exec_cluster_kind kinds[2] = {EXEC_CLUSTER_SLURM, EXEC_CLUSTER_SGE};
	struct strbuf id = STRBUF_INIT, out = STRBUF_INIT, errout = STRBUF_INIT;
	for (int k = 0; k < 2; k++) {
		struct strvec argv = STRVEC_INIT;
		strvec_push(&argv, kinds[k] == EXEC_CLUSTER_SLURM ? "scancel" : "qdel");
		for (size_t i = 0; i < count; i++) {
			if (query_kind(subs[i]->kind) != kinds[k])
				continue;
			strbuf_reset(&id);
			strbuf_adds(&id, subs[i]->job);
			if (kinds[k] == EXEC_CLUSTER_SLURM && subs[i]->task > 0)
				strbuf_addf(&id, "_%ld", subs[i]->task);
			if (strvec_find(&argv, id.buf) < 0)
				strvec_push(&argv, id.buf);
		}
		int status = 0;
		if (argv.count > 1 && rc == 0) {
			strbuf_reset(&out);
			strbuf_reset(&errout);
			rc = exec_run_capture(&argv, &out, &errout, &status, err);
			/*
			 * scancel exits 0 for jobs that ended meanwhile, qdel says they do not exist:
			 * both are fine. Anything else (no controller) means nothing was cancelled.
			 */
			if (rc == 0 && status != 0 &&
			    (kinds[k] == EXEC_CLUSTER_SLURM || !strstr(errout.buf, "does not exist"))) {
				str_trim(errout.buf);
				cp_err_set(err, NULL, 0, "%s failed (exit status %d): %s", argv.items[0], status,
					   errout.buf[0] ? errout.buf : "(no message)");
				rc = -1;
			}
		}
		strvec_release(&argv);
	}
	strbuf_release(&id);
	strbuf_release(&out);
	strbuf_release(&errout);
	return rc;
}
