/*
 * exec, cluster part: choosing a backend, job scripts,
 * grouping jobs into arrays with their holds and resources, and
 * exec_cluster_submit. Each scheduler's command lines (submitting a unit,
 * queries, cancels, limits) are in exec_scheduler.c, which this file calls
 * and which never calls back.
 */
#include "exec_cluster.h"
#include "exec_int.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- names ------------------------------------------------------------------ */

const char *exec_cluster_name(enum exec_cluster_kind kind)
{
	switch (kind) {
	case EXEC_CLUSTER_FSL_SUB: return "fsl_sub";
	case EXEC_CLUSTER_SLURM: return "slurm";
	case EXEC_CLUSTER_SGE: return "sge";
	case EXEC_CLUSTER_NONE: break;
	}
	return "none";
}

const char *exec_cluster_state_name(enum exec_cluster_state state)
{
	switch (state) {
	case EXEC_CLUSTER_UNKNOWN: return "unknown";
	case EXEC_CLUSTER_QUEUED: return "queued";
	case EXEC_CLUSTER_RUNNING: return "running";
	case EXEC_CLUSTER_ENDED: return "ended";
	case EXEC_CLUSTER_NEVER: return "never";
	}
	return "unknown";
}

int exec_cluster_choose(const char *name, enum exec_cluster_kind *out, struct cp_err *err)
{
	*out = EXEC_CLUSTER_NONE;
	if (!name || !*name || !strcmp(name, "auto")) {
		bool fsl_sub = exec_on_path("fsl_sub");
		if (fsl_sub && exec_fsl_sub_has_queues())
			*out = EXEC_CLUSTER_FSL_SUB;
		else if (exec_on_path("sbatch"))
			*out = EXEC_CLUSTER_SLURM;
		else if (exec_on_path("qsub"))
			*out = EXEC_CLUSTER_SGE;
		else if (fsl_sub) {
			cp_err_set(err, NULL, 0,
				   "cannot submit: fsl_sub is on PATH but has no queues configured (fsl_sub --has_queues), "
				   "so it would run every job here, one at a time");
			return EXEC_CLUSTER_FSL_SUB_LOCAL;
		} else {
			cp_err_set(err, NULL, 0, "cannot submit: none of fsl_sub, sbatch (SLURM) or qsub (SGE) is on PATH");
			return EXEC_CLUSTER_NONE_ON_PATH;
		}
		return 0;
	}
	if (!strcmp(name, "fsl_sub") || !strcmp(name, "fsl-sub"))
		*out = EXEC_CLUSTER_FSL_SUB;
	else if (!strcmp(name, "slurm"))
		*out = EXEC_CLUSTER_SLURM;
	else if (!strcmp(name, "sge"))
		*out = EXEC_CLUSTER_SGE;
	else {
		cp_err_set(err, NULL, 0, "unknown backend '%s' (auto, fsl_sub, slurm or sge)", name);
		return EXEC_CLUSTER_UNKNOWN_NAME;
	}
	const char *program = *out == EXEC_CLUSTER_FSL_SUB ? "fsl_sub" : *out == EXEC_CLUSTER_SLURM ? "sbatch" : "qsub";
	if (!exec_on_path(program)) {
		cp_err_set(err, NULL, 0, "cannot submit with %s: %s is not on PATH", name, program);
		*out = EXEC_CLUSTER_NONE;
		return -1;
	}
	return 0;
}

/* ---- small text helpers --------------------------------------------------- */

/* Text safe for one line of a shell comment or message: control characters become '?'. */
static void add_one_line(struct strbuf *out, const char *text)
{
	for (const char *p = text; *p; p++) {
		unsigned char c = (unsigned char)*p;
		strbuf_addch(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

/* ---- job scripts --------------------------------------------------------- */

/* Width of a line of a scripts file's table: two numbers of up to 15 digits, a blank and a newline. */
#define ARRAY_TABLE_LINE 32

/* Append a shell word for a one-line message (control characters replaced). */
static void add_quoted_message(struct strbuf *out, const char *message)
{
	struct strbuf line = STRBUF_INIT;
	add_one_line(&line, message);
	strbuf_add_shell_quoted(out, line.buf);
	strbuf_release(&line);
}

/* The line naming a submission's token, first in its scripts files, second in a job's own script. */
static void add_token_line(struct strbuf *out, const char *token)
{
	strbuf_addf(out, "# cpipe submission %s\n", token);
}

void exec_scripts_reader(const struct exec_script_owner *owner, bool entries, struct strbuf *out)
{
	strbuf_adds(out, "# current: this task's submission still owns cpipe_file, whose first lines name its\n"
			 "# token; a later submission that took the name wrote it again with its own.\n");
	if (owner->token_argument)
		strbuf_addf(out, "cpipe_token=${%d:-%s}\n", owner->token_argument, owner->token);
	else
		strbuf_addf(out, "cpipe_token=%s\n", owner->token);
	strbuf_adds(out, "cpipe_file=");
	strbuf_add_shell_quoted(out, owner->file);
	strbuf_adds(out, "\ncurrent() {\n"
			 "\thead -c 64 \"$cpipe_file\" 2>/dev/null | grep -qx \"# cpipe submission $cpipe_token\"\n"
			 "}\n"
			 "stale=\"this task belongs to an earlier submission: a later one took its name and wrote \"\\\n"
			 "\"$cpipe_file again, so it runs nothing and records nothing\"\n"
			 "current || { printf 'cpipe: %s\\n' \"$stale\" >&2; exit 1; }\n");
	if (!entries)
		return;
	strbuf_addf(out, "# entry N: script N of cpipe_file, whose line N after the first (%d bytes a line)\n"
			 "# holds the script's byte offset and length: nothing else of the file is read.\n"
			 "entry() {\n"
			 "\tset -- $(tail -c +$((%d + ($1 - 1) * %d + 1)) \"$cpipe_file\" | head -c %d)\n"
			 "\ttail -c +$(($1 + 1)) \"$cpipe_file\" | head -c \"$2\"\n"
			 "}\n",
		    ARRAY_TABLE_LINE, EXEC_TOKEN_LINE, ARRAY_TABLE_LINE, ARRAY_TABLE_LINE);
}

void exec_cluster_job_script(const struct exec_cluster_job *job, const char *name, const char *root,
			     const struct strvec *parent_names, const struct strvec *parent_ids,
			     const struct exec_script_owner *owner, struct strbuf *out)
{
	struct strbuf message = STRBUF_INIT;
	strbuf_adds(out, "#!/bin/sh\n");
	if (owner->file)
		add_token_line(out, owner->token);
	strbuf_adds(out, "# cpipe job: ");
	add_one_line(out, job->id);
	strbuf_adds(out, "\n"
			 "# Written by cpipe for a cluster scheduler. It runs the recipe's command in the\n"
			 "# data root, checks the declared outputs, and records the result in the marker\n"
			 "# file (written to a temporary name, then renamed); cpipe status/wait/run read it.\n"
			 "cd ");
	strbuf_add_shell_quoted(out, root);
	strbuf_adds(out, " || exit 1\n");
	/* What runs it from a scripts file has checked the token just now (and defined current). */
	if (owner->file)
		exec_scripts_reader(owner, false, out); /* before the log is opened: it is the later job's too */
	strbuf_addf(out, "marker=%s/%s.marker\n", EXEC_JOBS_DIR, name);
	strbuf_adds(out, "start=$(date +%s%N)\nunneeded=\n\n");
	strbuf_adds(out, "# signature FILE: one marker line for a declared output (size, mtime in ns), also\n"
			 "# when stat fails: cpipe pairs the lines with the outputs in order.\n"
			 "signature() {\n"
			 "\tif [ -e \"$1\" ] && stat -L -c 'output 1 %s %.9Y' -- \"$1\" 2>/dev/null; then :; else echo 'output 0'; fi\n"
			 "}\n\n"
			 "# finish STATUS MESSAGE: write the marker, then end the job with STATUS. A\n"
			 "# scheduler may send SIGTERM more than once, to every process of the job: from\n"
			 "# here on it is ignored (by what finish runs too), so that the marker is written\n"
			 "# once and whole; SIGKILL still ends the job. The message is printed with\n"
			 "# printf: sh's echo reads backslashes in it (an output named a\\cb). A job whose\n"
			 "# submission lost its name while it ran writes no marker: that is the later one's.\n"
			 "finish() {\n"
			 "\ttrap '' TERM\n"
			 "\tcurrent || { printf 'cpipe: %s\\n' \"$stale\"; exit 1; }\n"
			 "\ttmp=$marker.tmp.$$\n"
			 "\t{\n"
			 "\t\techo 'cpipe-marker 1'\n"
			 "\t\techo \"exit $1\"\n"
			 "\t\techo \"start_ns $start\"\n"
			 "\t\techo \"end_ns $(date +%s%N)\"\n"
			 "\t\techo \"host $(hostname)\"\n"
			 "\t\tprintf 'message %s\\n' \"$2\"\n"
			 "\t\t[ -z \"$unneeded\" ] || echo 'unneeded 1'\n");
	for (size_t o = 0; o < job->output_count; o++) {
		strbuf_adds(out, "\t\tsignature ");
		strbuf_add_shell_quoted(out, job->outputs[o]);
		strbuf_addch(out, '\n');
	}
	strbuf_adds(out, "\t} >\"$tmp\" && mv -f \"$tmp\" \"$marker\"\n"
			 "\t[ -z \"$2\" ] || printf 'cpipe: %s\\n' \"$2\"\n"
			 "\texit \"$1\"\n"
			 "}\n\n"
			 "# needs NAME MESSAGE: a job this one depends on must have succeeded (SGE's\n"
			 "# -hold_jid also releases the dependants of a failed job).\n"
			 "needs() {\n"
			 "\tgrep -qx 'exit 0' \".cpipe/jobs/$1.marker\" 2>/dev/null || finish 1 \"$2\"\n"
			 "}\n\n"
			 "killed='killed by SIGTERM (time limit reached or job cancelled)'\n"
			 "trap 'finish 143 \"$killed\"' TERM\n");
	/* Once the log exists, a stop is recorded as one (cpipe's tests wait for the log). */
	strbuf_addf(out, "exec >%s/%s.log 2>&1\n", EXEC_LOG_DIR, name);
	for (size_t p = 0; p < parent_names->count; p++) {
		strbuf_reset(&message);
		strbuf_addf(&message, "not run: %s, which it depends on, did not succeed", parent_ids->items[p]);
		strbuf_adds(out, "needs ");
		strbuf_adds(out, parent_names->items[p]); /* a file name: [A-Za-z0-9._-] only */
		strbuf_addch(out, ' ');
		add_quoted_message(out, message.buf);
		strbuf_addch(out, '\n');
	}
	if (job->skip_check) {
		strbuf_adds(out, "\n# Early cutoff: the caller's check says whether the inputs came out as they were.\n"
				 "if /bin/sh -c ");
		strbuf_add_shell_quoted(out, job->skip_check);
		strbuf_adds(out, "; then unneeded=1; finish 0 ''; fi\n");
	}
	/* Create the outputs' directories, as the local backend does. */
	struct strvec dirs = STRVEC_INIT;
	for (size_t o = 0; o < job->output_count; o++) {
		const char *slash = strrchr(job->outputs[o], '/');
		if (!slash || slash == job->outputs[o])
			continue;
		char *dir = xstrndup(job->outputs[o], (size_t)(slash - job->outputs[o]));
		if (strvec_find(&dirs, dir) < 0)
			strvec_push(&dirs, dir);
		free(dir);
	}
	for (size_t d = 0; d < dirs.count; d++) {
		strbuf_adds(out, "mkdir -p -- ");
		strbuf_add_shell_quoted(out, dirs.items[d]);
		strbuf_addch(out, '\n');
	}
	strvec_release(&dirs);
	strbuf_adds(out, "\n/bin/sh -c ");
	strbuf_add_shell_quoted(out, job->command);
	strbuf_adds(out, "\nstatus=$?\n"
			 "# 143: SIGTERM killed the command; the scheduler may signal it before this script.\n"
			 "[ \"$status\" -ne 143 ] || finish 143 \"$killed\"\n"
			 "[ \"$status\" -eq 0 ] || finish \"$status\" \"exit status $status\"\n");
	for (size_t o = 0; o < job->output_count; o++) {
		if (job->output_optional && job->output_optional[o])
			continue;
		strbuf_reset(&message);
		strbuf_addf(&message, "declared output '%s' was not created", job->outputs[o]);
		strbuf_adds(out, "[ -e ");
		strbuf_add_shell_quoted(out, job->outputs[o]);
		strbuf_adds(out, " ] || finish 1 ");
		add_quoted_message(out, message.buf);
		strbuf_addch(out, '\n');
	}
	strbuf_adds(out, "finish 0 ''\n");
	strbuf_release(&message);
}

void exec_cluster_job_release(struct exec_cluster_job *job)
{
	FREE_AND_NULL(job->cluster_id);
	FREE_AND_NULL(job->log_path);
}

/* ---- grouping jobs into submissions ---------------------------------------- */

struct sort_item {
	size_t depth;
	const char *group;
	size_t index;
};

static int compare_items(const void *a, const void *b)
{
	const struct sort_item *x = a, *y = b;
	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	if (x->group != y->group) {
		if (!x->group || !y->group)
			return x->group ? -1 : 1;
		int c = strcmp(x->group, y->group);
		if (c)
			return c;
	}
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Where a job's first parent is: its unit, then its task in that unit. */
struct task_key {
	size_t unit;
	size_t task;
	size_t index;
};

static int compare_tasks(const void *a, const void *b)
{
	const struct task_key *x = a, *y = b;
	if (x->unit != y->unit)
		return x->unit < y->unit ? -1 : 1;
	if (x->task != y->task)
		return x->task < y->task ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static struct exec_unit *new_unit(struct exec_unit **units, size_t *count, size_t *cap, size_t members, bool array)
{
	ALLOC_GROW(*units, *count + 1, *cap);
	struct exec_unit *u = &(*units)[(*count)++];
	memset(u, 0, sizeof(*u));
	u->members = xcalloc(members, sizeof(*u->members));
	u->count = members;
	u->array = array;
	return u;
}

/*
 * Split the jobs into units: runs of same group and same depth (longest chain
 * of dependencies below them, so no two depend on each other) of at least
 * array_min jobs become arrays, the rest single jobs. Units come out in
 * depth order, so every unit's parents are submitted before it. Within an
 * array, tasks are ordered like the tasks of the array their first parent is
 * in, so that task i needs task i of the parent array (SLURM aftercorr).
 * A run longer than array_max is cut into arrays of array_max tasks (the
 * last one shorter); a child run cut the same way as its parent run keeps
 * task i of chunk c on task i of the parent's chunk c.
 */
void exec_cluster_plan(const struct exec_cluster_job *jobs, size_t count, size_t array_min, size_t array_max,
		       struct exec_unit **units_out, size_t *unit_count, size_t *unit_of, size_t *task_of)
{
	if (array_max < 1)
		array_max = 1;
	size_t *depth = xcalloc(count + 1, sizeof(*depth));
	struct sort_item *items = xcalloc(count + 1, sizeof(*items));
	for (size_t i = 0; i < count; i++) {
		for (size_t k = 0; k < jobs[i].dep_count; k++) {
			size_t d = jobs[i].deps[k];
			if (d >= i)
				BUG("job %zu depends on later job %zu", i, d);
			if (depth[d] + 1 > depth[i])
				depth[i] = depth[d] + 1;
		}
		items[i].depth = depth[i];
		items[i].group = jobs[i].group;
		items[i].index = i;
	}
	qsort(items, count, sizeof(*items), compare_items);
	struct exec_unit *units = NULL;
	size_t units_count = 0, units_cap = 0;
	struct task_key *keys = xcalloc(count + 1, sizeof(*keys));
	for (size_t start = 0; start < count;) {
		size_t end = start + 1;
		while (end < count && items[start].group && items[end].group && items[end].depth == items[start].depth &&
		       !strcmp(items[end].group, items[start].group))
			end++;
		size_t n = end - start;
		if (n >= array_min && items[start].group) {
			for (size_t k = 0; k < n; k++) {
				const struct exec_cluster_job *job = &jobs[items[start + k].index];
				keys[k].index = items[start + k].index;
				keys[k].unit = job->dep_count ? unit_of[job->deps[0]] : 0;
				keys[k].task = job->dep_count ? task_of[job->deps[0]] : 0;
			}
			qsort(keys, n, sizeof(*keys), compare_tasks);
			for (size_t first = 0; first < n; first += array_max) {
				size_t length = n - first < array_max ? n - first : array_max;
				struct exec_unit *u = new_unit(&units, &units_count, &units_cap, length, true);
				for (size_t k = 0; k < length; k++) {
					u->members[k] = keys[first + k].index;
					unit_of[u->members[k]] = units_count - 1;
					task_of[u->members[k]] = k + 1;
				}
			}
		} else {
			for (size_t k = 0; k < n; k++) {
				struct exec_unit *u = new_unit(&units, &units_count, &units_cap, 1, false);
				u->members[0] = items[start + k].index;
				unit_of[u->members[0]] = units_count - 1;
				task_of[u->members[0]] = 0;
			}
		}
		start = end;
	}
	free(keys);
	free(items);
	free(depth);
	*units_out = units;
	*unit_count = units_count;
}

void exec_cluster_units_free(struct exec_unit *units, size_t count)
{
	for (size_t u = 0; u < count; u++) {
		free(units[u].members);
		free(units[u].job);
		free(units[u].name);
	}
	free(units);
}

/* True when task k of `unit` needs exactly task k of `parent` from that unit. */
static bool corresponds(const struct exec_cluster_job *jobs, const struct exec_unit *unit, size_t parent_unit,
			const struct exec_unit *parent, const size_t *unit_of, const size_t *task_of)
{
	if (!unit->array || !parent->array || unit->count != parent->count)
		return false;
	for (size_t k = 0; k < unit->count; k++) {
		const struct exec_cluster_job *job = &jobs[unit->members[k]];
		size_t seen = 0;
		for (size_t d = 0; d < job->dep_count; d++) {
			if (unit_of[job->deps[d]] != parent_unit)
				continue;
			if (task_of[job->deps[d]] != k + 1)
				return false;
			seen++;
		}
		if (seen != 1)
			return false;
	}
	return true;
}

/*
 * SLURM holds name single array tasks ("J_T"); when a unit needs every task
 * of array J, hold it on "J" instead: one id rather than thousands.
 */
static void collapse_whole_arrays(const struct exec_unit *units, size_t unit_index, struct strvec *whole)
{
	for (size_t u = 0; u < unit_index; u++) {
		if (!units[u].array || !units[u].job)
			continue;
		size_t length = strlen(units[u].job), tasks = 0;
		for (size_t i = 0; i < whole->count; i++)
			tasks += !strncmp(whole->items[i], units[u].job, length) && whole->items[i][length] == '_';
		if (tasks != units[u].count)
			continue;
		size_t kept = 0;
		for (size_t i = 0; i < whole->count; i++) {
			if (!strncmp(whole->items[i], units[u].job, length) && whole->items[i][length] == '_')
				free(whole->items[i]);
			else
				whole->items[kept++] = whole->items[i];
		}
		whole->count = kept;
		strvec_push(whole, units[u].job);
	}
}

void exec_cluster_unit_holds(const struct exec_cluster_job *jobs, const struct exec_unit *units, size_t unit_index,
			     const size_t *unit_of, const size_t *task_of, const struct exec_cluster_options *opt,
			     struct exec_holds *holds)
{
	const struct exec_unit *unit = &units[unit_index];
	enum exec_cluster_kind kind = opt->kind;
	bool root = false;
	struct strbuf id = STRBUF_INIT;
	for (size_t k = 0; k < unit->count; k++) {
		const struct exec_cluster_job *job = &jobs[unit->members[k]];
		if (!job->dep_count && !job->outside_count)
			root = true;
		for (size_t d = 0; d < job->dep_count; d++) {
			size_t pu = unit_of[job->deps[d]];
			const struct exec_unit *parent = &units[pu];
			strbuf_reset(&id);
			/* SLURM has aftercorr, SGE -hold_jid_ad, fsl_sub --array_hold (see fsl_sub_argv). */
			if (parent->array && corresponds(jobs, unit, pu, parent, unit_of, task_of)) {
				strbuf_adds(&id, parent->job);
				if (strvec_find(&holds->corresponding, id.buf) < 0)
					strvec_push(&holds->corresponding, id.buf);
				continue;
			}
			strbuf_adds(&id, parent->job);
			/* SLURM can wait for one task of an array; the others wait for the whole array. */
			if (parent->array && kind == EXEC_CLUSTER_SLURM)
				strbuf_addf(&id, "_%zu", task_of[job->deps[d]]);
			if (strvec_find(&holds->whole, id.buf) < 0)
				strvec_push(&holds->whole, id.buf);
		}
		for (size_t o = 0; o < job->outside_count; o++) {
			const struct exec_submission *sub = job->outside[o];
			strbuf_reset(&id);
			if (kind == EXEC_CLUSTER_SLURM && sub->kind == EXEC_CLUSTER_SLURM)
				exec_submission_cluster_id(sub, &id);
			else
				strbuf_adds(&id, sub->job);
			if (strvec_find(&holds->whole, id.buf) < 0)
				strvec_push(&holds->whole, id.buf);
		}
	}
	if (kind == EXEC_CLUSTER_SLURM)
		collapse_whole_arrays(units, unit_index, &holds->whole);
	if (root || unit->count == 0)
		for (size_t h = 0; h < opt->hold_count; h++)
			if (strvec_find(&holds->whole, opt->holds[h]) < 0)
				strvec_push(&holds->whole, opt->holds[h]);
	strbuf_release(&id);
}

void exec_holds_release(struct exec_holds *holds)
{
	strvec_release(&holds->whole);
	strvec_release(&holds->corresponding);
}

/* ---- submission ----------------------------------------------------------------- */

/* The absolute data root, for scripts that run elsewhere. */
static char *absolute_root(const char *cwd, struct cp_err *err)
{
	char *resolved = realpath(cwd ? cwd : ".", NULL);
	if (!resolved)
		cp_err_set(err, NULL, 0, "cannot resolve the data root '%s': %s", cwd ? cwd : ".", strerror(errno));
	return resolved;
}

void exec_unit_resources(const struct exec_cluster_job *jobs, const struct exec_unit *unit,
			 const struct exec_cluster_options *opt, struct exec_resources *out)
{
	memset(out, 0, sizeof(*out));
	double scale = opt->scale_time > 0 ? opt->scale_time : 1.0;
	for (size_t k = 0; k < unit->count; k++) {
		const struct exec_resources *job = &jobs[unit->members[k]].resources;
		if (job->minutes > 0) {
			double scaled = (double)job->minutes * scale;
			long minutes = (long)scaled;
			if ((double)minutes < scaled - 1e-9)
				minutes++; /* rounding up, as fsl-pipe's --scale-jobtime */
			if (minutes < 1)
				minutes = 1;
			if (minutes > out->minutes)
				out->minutes = minutes;
		}
		if (job->ram_gb > out->ram_gb)
			out->ram_gb = job->ram_gb;
		if (job->threads > out->threads)
			out->threads = job->threads;
		if (!out->queue && job->queue)
			out->queue = job->queue;
		if (!out->coprocessor && job->coprocessor) {
			out->coprocessor = job->coprocessor;
			out->coprocessor_count = job->coprocessor_count > 0 ? job->coprocessor_count : 1;
		}
		if (!out->pe && job->pe)
			out->pe = job->pe;
		if (!out->extra_count && job->extra_count) {
			out->extra = job->extra;
			out->extra_count = job->extra_count;
		}
		if (!out->backend_extra_count && job->backend_extra_count) {
			out->backend_extra = job->backend_extra;
			out->backend_extra_count = job->backend_extra_count;
		}
	}
}

/*
 * Does a marker of a job of the unit exist already (they were removed before
 * submitting)? Then fsl_sub ran the job in the foreground; it may have stopped
 * at the first failing task of an array, leaving the others without one.
 */
static bool unit_ran_in_foreground(const char *cwd, const size_t *jobs, size_t count, char *const *names)
{
	struct strbuf path = STRBUF_INIT;
	bool any = false;
	for (size_t k = 0; k < count && !any; k++) {
		exec_record_path(cwd, names[jobs[k]], ".marker", &path);
		any = access(path.buf, F_OK) == 0;
	}
	strbuf_release(&path);
	return any;
}

/* What fsl_sub cannot carry, found before anything is written or submitted. */
static int check_fsl_sub(const struct exec_cluster_job *jobs, size_t count, const char *root, struct cp_err *err)
{
	const char *blank = root + strcspn(root, " \t\n");
	if (*blank) {
		cp_err_set(err, NULL, 0,
			   "cannot submit through fsl_sub: the data root '%s' contains a %s, which fsl_sub writes "
			   "unquoted into its job scripts (--chdir, -o) and splits its -t task file path on; "
			   "nothing was submitted",
			   root, *blank == ' ' ? "space" : "blank");
		return EXEC_CLUSTER_BLANK_ROOT;
	}
	for (size_t i = 0; i < count; i++) {
		if (jobs[i].resources.threads > 1 && !exec_parallel_env(EXEC_CLUSTER_FSL_SUB, jobs[i].resources.pe)) {
			cp_err_set(err, NULL, 0,
				   "cannot submit '%s' through fsl_sub: it asks for %ld threads, and fsl_sub needs the name "
				   "of one of the site's parallel environments for that (-s NAME,THREADS; `fsl_sub "
				   "--show_config` lists them): set resources.pe in the recipe file or CPIPE_FSL_SUB_PE; "
				   "nothing was submitted",
				   jobs[i].id, jobs[i].resources.threads);
			return -1;
		}
	}
	return 0;
}

static size_t array_max(const struct exec_cluster_options *opt)
{
	if (opt->array_max)
		return opt->array_max;
	const char *fixed = getenv("CPIPE_ARRAY_MAX");
	if (fixed && *fixed) {
		char *end;
		unsigned long long v = strtoull(fixed, &end, 10);
		if (!*end && v > 0)
			return (size_t)v;
	}
	return exec_cluster_array_limit(opt->kind);
}

/*
 * Each job's file name, distinct within the submission; -1 with err (after
 * naming every job) when two jobs share one or a job depends on a later one.
 * Clears what an earlier submission filled in the jobs.
 */
static int name_jobs(struct exec_cluster_job *jobs, size_t count, char **names, struct cp_err *err)
{
	int rc = 0;
	struct strbuf text = STRBUF_INIT;
	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < count; i++) {
		strbuf_reset(&text);
		job_file_name(jobs[i].id, &text);
		names[i] = strbuf_detach(&text);
		size_t other;
		if (strmap_get(&seen, names[i], &other)) {
			cp_err_set(err, NULL, 0, "jobs '%s' and '%s' have the same file name '%s'", jobs[other].id,
				   jobs[i].id, names[i]);
			rc = -1;
		}
		strmap_put(&seen, names[i], i);
		for (size_t k = 0; k < jobs[i].dep_count && rc == 0; k++)
			if (jobs[i].deps[k] >= i) {
				cp_err_set(err, NULL, 0, "job '%s' depends on a job that comes after it", jobs[i].id);
				rc = -1;
			}
		exec_cluster_job_release(&jobs[i]);
	}
	strmap_release(&seen);
	strbuf_release(&text);
	return rc;
}

/* What every unit's submission shares. Units are made of batches (a job on its own is a batch of one). */
struct submission {
	struct exec_cluster_job *jobs;
	char **names;
	const char *cwd;
	const char *root;
	struct exec_batches *batches;
	struct exec_unit *units;
	size_t *unit_of, *task_of;
	const struct exec_cluster_options *opt;
	struct exec_cluster_summary *summary;
	char token[EXEC_TOKEN_DIGITS + 1]; /* names this submission in its files (exec_scripts_reader) */
};

/*
 * A token no other submission has: random, else (no /dev/urandom) the time
 * and process id, which no two submissions from one machine share.
 */
static void make_token(char *out)
{
	uint64_t value = 0;
	FILE *random = fopen("/dev/urandom", "rb");
	if (!random || fread(&value, sizeof(value), 1, random) != 1)
		value = (uint64_t)wall_clock_ns() ^ ((uint64_t)getpid() << 40);
	if (random)
		fclose(random);
	snprintf(out, EXEC_TOKEN_DIGITS + 1, "%016llx", (unsigned long long)value);
}

/* Job `i`'s script (owned by `owner`): exec_cluster_job_script with the file names and ids of the jobs it checks first. */
static void job_script_text(const struct submission *s, size_t i, const struct exec_script_owner *owner,
			    struct strbuf *out)
{
	const struct exec_cluster_job *job = &s->jobs[i];
	struct strvec parent_names = STRVEC_INIT, parent_ids = STRVEC_INIT;
	struct strbuf name = STRBUF_INIT;
	for (size_t k = 0; k < job->dep_count; k++) {
		strvec_push(&parent_names, s->names[job->deps[k]]);
		strvec_push(&parent_ids, s->jobs[job->deps[k]].id);
	}
	for (size_t o = 0; o < job->outside_count; o++) {
		strbuf_reset(&name);
		job_file_name(job->outside_ids[o], &name);
		strvec_push(&parent_names, name.buf);
		strvec_push(&parent_ids, job->outside_ids[o]);
	}
	exec_cluster_job_script(job, s->names[i], s->root, &parent_names, &parent_ids, owner, out);
	strvec_release(&parent_names);
	strvec_release(&parent_ids);
	strbuf_release(&name);
}

/* A unit's scripts file: the token's line, then a table of `entries` blank lines that scripts_entry_done fills. */
static void scripts_begin(struct strbuf *out, const char *token, size_t entries)
{
	strbuf_grow(out, EXEC_TOKEN_LINE + entries * ARRAY_TABLE_LINE);
	add_token_line(out, token);
	for (size_t k = 0; k < entries; k++)
		strbuf_addf(out, "%*s\n", ARRAY_TABLE_LINE - 1, "");
}

/* Entry `entry` (1-based) is the text from `start` to the end. */
static void scripts_entry_done(struct strbuf *out, size_t entry, size_t start)
{
	char line[ARRAY_TABLE_LINE + 1];
	snprintf(line, sizeof(line), "%15zu %15zu\n", start, out->len - start);
	memcpy(out->buf + EXEC_TOKEN_LINE + (entry - 1) * ARRAY_TABLE_LINE, line, ARRAY_TABLE_LINE);
}

/* Append the scripts of batch `b`'s jobs as entries `first`, `first` + 1, ... of `out`. */
static void add_batch_entries(const struct submission *s, size_t b, size_t first,
			      const struct exec_script_owner *owner, struct strbuf *out)
{
	const struct exec_batches *batches = s->batches;
	for (size_t m = 0; m < exec_batch_size(batches, b); m++) {
		size_t start = out->len;
		job_script_text(s, batches->members[batches->start[b] + m], owner, out);
		scripts_entry_done(out, first + m, start);
	}
}

/*
 * The files of unit `unit`, which is no array: a job on its own has its
 * script, <unit>.sh; a batch has its runner there and its jobs' scripts in
 * <unit>.scripts, as an array's tasks have theirs (one file per
 * submission, not one per job), which the runner reads one at a time.
 */
static int write_single_files(const struct submission *s, const struct exec_unit *unit, struct cp_err *err)
{
	const struct exec_batches *batches = s->batches;
	size_t b = unit->members[0];
	struct strbuf path = STRBUF_INIT, text = STRBUF_INIT, file = STRBUF_INIT;
	/* fsl_sub reads the script when the job starts: its command line carries the token. */
	struct exec_script_owner owner = {NULL, s->token, s->opt->kind == EXEC_CLUSTER_FSL_SUB};
	int rc = 0;
	if (exec_batch_size(batches, b) == 1) {
		strbuf_addf(&file, "%s/%s.sh", EXEC_JOBS_DIR, unit->name);
		owner.file = file.buf;
		job_script_text(s, batches->members[batches->start[b]], &owner, &text);
	} else {
		strbuf_addf(&file, "%s/%s/%s.scripts", s->root, EXEC_JOBS_DIR, unit->name);
		owner.file = file.buf;
		struct exec_script_owner steps = {NULL, s->token, 0};
		struct strbuf scripts = STRBUF_INIT;
		scripts_begin(&scripts, s->token, exec_batch_size(batches, b));
		add_batch_entries(s, b, 1, &steps, &scripts);
		exec_record_path(s->cwd, unit->name, ".scripts", &path);
		rc = exec_write_file_atomic(path.buf, scripts.buf, scripts.len, 0644, false, err);
		strbuf_release(&scripts);
		strbuf_adds(&text, "#!/bin/sh\n");
		exec_scripts_reader(&owner, true, &text);
		exec_batch_runner(s->jobs, batches, b, s->names, s->root, 1, &text);
	}
	exec_record_path(s->cwd, unit->name, ".sh", &path);
	if (rc == 0)
		rc = exec_write_file_atomic(path.buf, text.buf, text.len, 0755, false, err);
	strbuf_release(&path);
	strbuf_release(&text);
	strbuf_release(&file);
	return rc;
}

void exec_tasks_path(const char *cwd, const char *unit, const char *token, struct strbuf *out)
{
	char *suffix = xasprintf(".%s.tasks", token);
	exec_record_path(cwd, unit, suffix, out);
	free(suffix);
}

/*
 * An array unit's files, named after the unit: its task list (one command
 * per task, which fsl_sub -t takes as it is), its scripts, and the launcher
 * the scheduler runs. Submitting 10,000 subjects made tens of thousands of
 * script files, one per job, and every file created cost more the more had
 * been deleted before: here every task's script is in <unit>.scripts, after
 * the token's line and a table of fixed-width lines (byte offset and length
 * of each script), and the launcher reads its own line of the table and then
 * its own script, nothing else of the file (tail | head). A task that is a
 * batch has its runner there, which reads its jobs' scripts, entries after
 * the tasks', the same way.
 *
 * SLURM and SGE keep a copy of the launcher, token and all, from the moment
 * it is submitted. fsl_sub copies neither: its job reads line N of the task
 * list when it starts, so the list has a name of its own for each
 * submission (<unit>.<token>.tasks, removed with the unit's record) and
 * gives the launcher the token.
 */
static int write_array_files(const struct submission *s, const struct exec_unit *unit, struct cp_err *err)
{
	const struct exec_batches *batches = s->batches;
	const struct exec_cluster_job *first = &batches->jobs[unit->members[0]];
	struct strbuf path = STRBUF_INIT, tasks = STRBUF_INIT, scripts = STRBUF_INIT, text = STRBUF_INIT;
	char *launcher = xasprintf("%s/%s/%s.array.sh", s->root, EXEC_JOBS_DIR, unit->name);
	char *file = xasprintf("%s/%s/%s.scripts", s->root, EXEC_JOBS_DIR, unit->name);
	struct exec_script_owner owner = {NULL, s->token, 0}, launcher_owner = {file, s->token, 2};
	int rc = 0;
	size_t entries = unit->count;
	for (size_t k = 0; k < unit->count; k++)
		if (exec_batch_size(batches, unit->members[k]) > 1)
			entries += exec_batch_size(batches, unit->members[k]);
	scripts_begin(&scripts, s->token, entries);
	/* The tasks first, then the jobs of the tasks that are batches. */
	size_t next = unit->count + 1;
	for (size_t k = 0; k < unit->count; k++) {
		size_t b = unit->members[k];
		size_t start = scripts.len;
		if (exec_batch_size(batches, b) == 1) {
			job_script_text(s, batches->members[batches->start[b]], &owner, &scripts);
		} else {
			exec_batch_runner(s->jobs, batches, b, s->names, s->root, next, &scripts);
			next += exec_batch_size(batches, b);
		}
		scripts_entry_done(&scripts, k + 1, start);
		strbuf_adds(&tasks, "/bin/sh ");
		strbuf_add_shell_quoted(&tasks, launcher);
		strbuf_addf(&tasks, " %zu %s\n", k + 1, s->token);
	}
	next = unit->count + 1;
	for (size_t k = 0; k < unit->count; k++) {
		size_t b = unit->members[k];
		if (exec_batch_size(batches, b) == 1)
			continue;
		add_batch_entries(s, b, next, &owner, &scripts);
		next += exec_batch_size(batches, b);
	}
	exec_tasks_path(s->cwd, unit->name, s->token, &path);
	rc = exec_write_file_atomic(path.buf, tasks.buf, tasks.len, 0644, false, err);
	exec_record_path(s->cwd, unit->name, ".scripts", &path);
	if (rc == 0)
		rc = exec_write_file_atomic(path.buf, scripts.buf, scripts.len, 0644, false, err);
	strbuf_addf(&text, "#!/bin/sh\n# cpipe array job: %zu tasks of '", unit->count);
	add_one_line(&text, first->group ? first->group : "");
	strbuf_addf(&text,
		    "'. Task N (the first argument, else the scheduler's\n"
		    "# task id) runs script N of %s.scripts, reading only its own.\n",
		    unit->name);
	exec_scripts_reader(&launcher_owner, true, &text);
	strbuf_addf(&text,
		    "task=${1:-${SLURM_ARRAY_TASK_ID:-${SGE_TASK_ID:-}}}\n"
		    "case $task in\n"
		    "'' | *[!0-9]*) number=0 ;;\n"
		    "*) number=$task ;;\n"
		    "esac\n"
		    "if [ \"$number\" -lt 1 ] || [ \"$number\" -gt %zu ]; then\n"
		    "\techo \"cpipe: no task '$task' in %s.array.sh\" >&2\n"
		    "\texit 1\n"
		    "fi\n"
		    "script=$(entry \"$number\")\n"
		    "[ -n \"$script\" ] || { echo \"cpipe: cannot read task $task's script from $cpipe_file\" >&2; exit 1; }\n"
		    "set --\n"
		    "eval \"$script\"\n",
		    unit->count, unit->name);
	exec_record_path(s->cwd, unit->name, ".array.sh", &path);
	if (rc == 0)
		rc = exec_write_file_atomic(path.buf, text.buf, text.len, 0755, false, err);
	free(launcher);
	free(file);
	strbuf_release(&path);
	strbuf_release(&tasks);
	strbuf_release(&scripts);
	strbuf_release(&text);
	return rc;
}

/*
 * Name every unit and write the files it runs: nothing is submitted unless
 * all of them could be written. A job on its own is named after it; a batch
 * or an array after its first job, unless a record still in flight has that
 * name. Each unit's files name the submission's token (see
 * exec_scripts_reader), so that a task of an earlier unit of that name runs
 * none of them.
 */
static int write_unit_files(struct submission *s, size_t unit_count, struct cp_err *err)
{
	int rc = 0;
	struct strbuf name = STRBUF_INIT;
	for (size_t u = 0; u < unit_count && rc == 0; u++) {
		struct exec_unit *unit = &s->units[u];
		const char *base = s->batches->names[unit->members[0]];
		if (unit->array) {
			strbuf_reset(&name);
			char *id = xasprintf("array:%s", s->batches->jobs[unit->members[0]].id);
			job_file_name(id, &name);
			free(id);
			base = name.buf;
		}
		unit->name = unit->array || exec_batch_size(s->batches, unit->members[0]) > 1
				     ? exec_record_unit_name(s->cwd, base)
				     : xstrdup(base);
		rc = unit->array ? write_array_files(s, unit, err) : write_single_files(s, unit, err);
	}
	strbuf_release(&name);
	return rc;
}

/* Submit unit `u` (its parents' units submitted) and write its jobs' submission records. */
static int submit_unit(struct submission *s, size_t u, struct cp_err *err)
{
	struct exec_unit *unit = &s->units[u];
	const struct exec_batches *batches = s->batches;
	const struct exec_cluster_options *opt = s->opt;
	int rc = 0;
	struct strbuf path = STRBUF_INIT, text = STRBUF_INIT;
	/* The unit's jobs, batch after batch, and each one's array task. */
	size_t job_count = 0;
	for (size_t k = 0; k < unit->count; k++)
		job_count += exec_batch_size(batches, unit->members[k]);
	size_t *job_of = xcalloc(job_count + 1, sizeof(size_t)), *task = xcalloc(job_count + 1, sizeof(size_t));
	job_count = 0;
	for (size_t k = 0; k < unit->count; k++)
		for (size_t m = 0; m < exec_batch_size(batches, unit->members[k]); m++) {
			job_of[job_count] = batches->members[batches->start[unit->members[k]] + m];
			task[job_count++] = unit->array ? k + 1 : 0;
		}
	/* Old results must not be mistaken for the new run's. */
	for (size_t k = 0; k < job_count; k++) {
		exec_record_path(s->cwd, s->names[job_of[k]], ".marker", &path);
		unlink(path.buf);
	}
	struct exec_submit_call call;
	memset(&call, 0, sizeof(call));
	call.root = s->root;
	call.kind = opt->kind;
	call.task_count = unit->array ? unit->count : 0;
	call.name = unit->name;
	call.token = s->token;
	if (unit->array) {
		call.script = xasprintf("%s/%s/%s.array.sh", s->root, EXEC_JOBS_DIR, unit->name);
		exec_tasks_path(s->root, unit->name, s->token, &path);
		call.tasks_file = strbuf_detach(&path);
	} else {
		call.script = xasprintf("%s/%s/%s.sh", s->root, EXEC_JOBS_DIR, unit->name);
	}
	exec_cluster_unit_holds(batches->jobs, s->units, u, s->unit_of, s->task_of, opt, &call.holds);
	exec_unit_resources(batches->jobs, unit, opt, &call.resources);
	char *job_id = NULL;
	bool foreground = false;
	if (rc == 0) {
		int submitted = exec_scheduler_submit(&call, &job_id, err);
		foreground = unit_ran_in_foreground(s->cwd, job_of, job_count, s->names);
		if (submitted < 0 && foreground) {
			/* fsl_sub's shell mode ran the job here and passed on its failure. */
			cp_err_release(err);
			submitted = 0;
		}
		if (submitted < 0)
			rc = -1;
	}
	if (rc == 0) {
		if (!job_id || !*job_id) {
			free(job_id);
			job_id = xstrdup("0");
		}
		unit->job = job_id;
		job_id = NULL;
		s->summary->submissions++;
		s->summary->arrays += unit->array;
		s->summary->jobs += job_count;
		for (size_t k = 0; k < unit->count; k++)
			s->summary->batches += exec_batch_size(batches, unit->members[k]) > 1;
		s->summary->foreground |= foreground;
		struct exec_record_head head = {opt->kind, unit->job, wall_clock_ns(), s->token};
		struct exec_record_member *members = xcalloc(job_count + 1, sizeof(*members));
		for (size_t k = 0; k < job_count; k++) {
			struct exec_cluster_job *job = &s->jobs[job_of[k]];
			members[k] = (struct exec_record_member){s->names[job_of[k]], (long)task[k], job->log_path, job->note};
			struct exec_submission sub = {opt->kind, unit->job, (long)task[k], NULL, NULL, head.submitted_ns};
			strbuf_reset(&text);
			exec_submission_cluster_id(&sub, &text);
			job->cluster_id = xstrdup(text.buf);
		}
		/* One record for the unit, not one per job: a file per job is what made submitting slow. */
		char *record = exec_record_unit_name(s->cwd, unit->name);
		rc = exec_record_write(s->cwd, record, &head, members, job_count, err);
		free(record);
		free(members);
		if (opt->on_submit)
			opt->on_submit(opt->ctx, job_of, job_count, call.task_count, unit->job);
	}
	free(job_of);
	free(task);
	free(job_id);
	free(call.script);
	free(call.tasks_file);
	exec_holds_release(&call.holds);
	strbuf_release(&path);
	strbuf_release(&text);
	return rc;
}

int exec_cluster_submit(struct exec_cluster_job *jobs, size_t count, const struct exec_cluster_options *opt,
			struct exec_cluster_summary *summary, struct cp_err *err)
{
	struct exec_cluster_summary local_summary;
	if (!summary)
		summary = &local_summary;
	memset(summary, 0, sizeof(*summary));
	if (opt->kind == EXEC_CLUSTER_NONE)
		BUG("exec_cluster_submit without a backend");
	const char *cwd = opt->cwd ? opt->cwd : ".";
	char *root = absolute_root(cwd, err);
	if (!root)
		return -1;
	int refused = opt->kind == EXEC_CLUSTER_FSL_SUB ? check_fsl_sub(jobs, count, root, err) : 0;
	if (refused < 0) {
		free(root);
		return refused;
	}
	struct strbuf path = STRBUF_INIT;
	int rc = 0;
	exec_root_path(cwd, EXEC_JOBS_DIR, &path);
	if (exec_mkdir_p(path.buf, err) < 0) {
		free(root);
		strbuf_release(&path);
		return -1;
	}
	exec_root_path(cwd, EXEC_LOG_DIR, &path);
	if (exec_mkdir_p(path.buf, err) < 0) {
		free(root);
		strbuf_release(&path);
		return -1;
	}
	strbuf_release(&path);

	char **names = xcalloc(count + 1, sizeof(*names));
	rc = name_jobs(jobs, count, names, err);
	for (size_t i = 0; i < count && rc == 0; i++)
		jobs[i].log_path = xasprintf("%s/%s.log", EXEC_LOG_DIR, names[i]);
	struct exec_batches batches;
	memset(&batches, 0, sizeof(batches));
	if (rc == 0) {
		exec_batches_form(jobs, count, &batches);
		exec_batches_name(&batches, jobs, names);
	}

	struct submission s = {jobs, names, cwd, root, &batches, NULL, xcalloc(batches.count + 1, sizeof(size_t)),
			       xcalloc(batches.count + 1, sizeof(size_t)), opt, summary, ""};
	make_token(s.token);
	size_t unit_count = 0;
	if (rc == 0) {
		size_t most = array_max(opt);
		/* A limit below 2 tasks leaves nothing an array would be good for. */
		size_t least = most < 2 ? SIZE_MAX : opt->array_min ? opt->array_min : EXEC_ARRAY_MIN;
		exec_cluster_plan(batches.jobs, batches.count, least, most, &s.units, &unit_count, s.unit_of, s.task_of);
	}
	if (rc == 0)
		rc = write_unit_files(&s, unit_count, err);
	for (size_t u = 0; u < unit_count && rc == 0; u++)
		rc = submit_unit(&s, u, err);
	exec_cluster_units_free(s.units, unit_count);
	exec_batches_release(&batches);
	free(s.unit_of);
	free(s.task_of);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	free(root);
	return rc;
}
