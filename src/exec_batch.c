/*
 * exec, batching: jobs with the same batch key (exec_cluster_job.batch) that
 * depend on one another and ask the scheduler for the same things (apart
 * from time, memory and threads) are merged into one cluster submission. Its
 * script runs the jobs' own scripts one after the other, so each job keeps
 * its own marker and submission record and cpipe status, wait and sync see
 * every step (cpipe-recipes(5), BATCHING). exec_cluster_submit plans and
 * submits batches as it used to plan jobs; a job without a key, or one that
 * cannot join, is a batch of one.
 */
#include "exec_cluster.h"

#include <stdlib.h>
#include <string.h>

static bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool same_words(const char *const *a, size_t a_count, const char *const *b, size_t b_count)
{
	if (a_count != b_count)
		return false;
	for (size_t i = 0; i < a_count; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

/* One submission can carry both jobs: everything but time, memory and threads is asked for alike. */
static bool compatible(const struct exec_resources *a, const struct exec_resources *b)
{
	return same_text(a->queue, b->queue) && same_text(a->coprocessor, b->coprocessor) &&
	       a->coprocessor_count == b->coprocessor_count && same_text(a->pe, b->pe) &&
	       same_words(a->extra, a->extra_count, b->extra, b->extra_count) &&
	       same_words(a->backend_extra, a->backend_extra_count, b->backend_extra, b->backend_extra_count);
}

/*
 * The rank a batch holding `job` needs: one more than the highest rank of
 * the batches its parents are in (leaving out batch `own`), 0 without any.
 */
static size_t rank_above_parents(const struct exec_cluster_job *job, const size_t *batch_of, const size_t *rank,
				 size_t own)
{
	size_t need = 0;
	for (size_t k = 0; k < job->dep_count; k++) {
		size_t b = batch_of[job->deps[k]];
		if (b != own && rank[b] + 1 > need)
			need = rank[b] + 1;
	}
	return need;
}

/* Batches in creation order (ids), each with its rank and first job. */
struct forming {
	size_t *batch_of; /* job -> batch id */
	size_t *rank;     /* every batch a batch needs has a lower rank: merging never makes a cycle */
	size_t *head;     /* its first job */
	bool *needed;     /* a job outside it depends on it already: its rank is fixed */
	size_t made;
};

/*
 * The batch of its parents job `i` may join, or SIZE_MAX. Joining must keep
 * every batch's parents at lower ranks; a batch nothing depends on yet may
 * rise to make room, one that is needed may not (its dependants could
 * then need it and it them: A -> group -> B with A, B alike stays apart).
 */
static size_t batch_to_join(const struct exec_cluster_job *jobs, size_t i, struct forming *f)
{
	const struct exec_cluster_job *job = &jobs[i];
	if (!job->batch)
		return SIZE_MAX;
	for (size_t k = 0; k < job->dep_count; k++) {
		size_t b = f->batch_of[job->deps[k]];
		const struct exec_cluster_job *lead = &jobs[f->head[b]];
		if (!same_text(lead->batch, job->batch) || !compatible(&lead->resources, &job->resources))
			continue;
		size_t need = rank_above_parents(job, f->batch_of, f->rank, b);
		if (need > f->rank[b]) {
			if (f->needed[b])
				continue;
			f->rank[b] = need;
		}
		return b;
	}
	return SIZE_MAX;
}

/* A batch in the final order: by rank, then first job, so parents come before children. */
struct batch_order {
	size_t rank, head, id;
};

static int compare_batches(const void *a, const void *b)
{
	const struct batch_order *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->head < y->head ? -1 : x->head > y->head;
}

/* Add `value` to the `count` entries at `list` unless it is there. */
static void add_index(size_t *list, size_t *count, size_t value)
{
	for (size_t i = 0; i < *count; i++)
		if (list[i] == value)
			return;
	list[(*count)++] = value;
}

/* The job that stands for batch `b` in planning and submitting (members already filled). */
static void batch_job(const struct exec_cluster_job *jobs, struct exec_batches *out, size_t b, size_t *dep_used,
		      size_t *outside_used)
{
	const size_t *members = out->members + out->start[b];
	size_t member_count = out->start[b + 1] - out->start[b];
	const struct exec_cluster_job *lead = &jobs[members[0]];
	struct exec_cluster_job *x = &out->jobs[b];
	*x = *lead;
	x->cluster_id = NULL;
	x->log_path = NULL;
	size_t *deps = out->dep_storage + *dep_used;
	const char **outside_ids = out->outside_id_storage + *outside_used;
	const struct exec_submission **outside = out->outside_storage + *outside_used;
	x->dep_count = 0;
	x->outside_count = 0;
	for (size_t m = 0; m < member_count; m++) {
		const struct exec_cluster_job *job = &jobs[members[m]];
		for (size_t k = 0; k < job->dep_count; k++)
			if (out->batch_of[job->deps[k]] != b)
				add_index(deps, &x->dep_count, out->batch_of[job->deps[k]]);
		for (size_t o = 0; o < job->outside_count; o++) {
			size_t seen = 0;
			while (seen < x->outside_count && strcmp(outside_ids[seen], job->outside_ids[o]))
				seen++;
			if (seen == x->outside_count) {
				outside_ids[x->outside_count] = job->outside_ids[o];
				outside[x->outside_count++] = job->outside[o];
			}
		}
	}
	x->deps = deps;
	x->outside_ids = outside_ids;
	x->outside = outside;
	*dep_used += x->dep_count;
	*outside_used += x->outside_count;
	if (member_count == 1)
		return;
	/* Time adds up (run one after the other); memory and threads are the most any step needs. */
	struct strbuf group = STRBUF_INIT;
	bool named = true;
	for (size_t m = 0; m < member_count; m++) {
		const struct exec_cluster_job *job = &jobs[members[m]];
		if (m) {
			x->resources.minutes =
				x->resources.minutes > 0 && job->resources.minutes > 0 ? x->resources.minutes + job->resources.minutes : 0;
			if (job->resources.ram_gb > x->resources.ram_gb)
				x->resources.ram_gb = job->resources.ram_gb;
			if (job->resources.threads > x->resources.threads)
				x->resources.threads = job->resources.threads;
			strbuf_addch(&group, '+');
		}
		named = named && job->group;
		if (job->group)
			strbuf_adds(&group, job->group);
	}
	/* Batches of the same recipes (one per subject) may go into one array. */
	out->groups[b] = named ? strbuf_detach(&group) : NULL;
	x->group = out->groups[b];
	x->command = NULL;
	x->outputs = NULL;
	x->output_optional = NULL;
	x->output_count = 0;
	strbuf_release(&group);
}

void exec_batches_form(const struct exec_cluster_job *jobs, size_t count, struct exec_batches *out)
{
	memset(out, 0, sizeof(*out));
	struct forming f = {xcalloc(count + 1, sizeof(size_t)), xcalloc(count + 1, sizeof(size_t)),
			    xcalloc(count + 1, sizeof(size_t)), xcalloc(count + 1, sizeof(bool)), 0};
	size_t dep_total = 0, outside_total = 0;
	for (size_t i = 0; i < count; i++) {
		size_t b = batch_to_join(jobs, i, &f);
		if (b == SIZE_MAX) {
			b = f.made++;
			f.head[b] = i;
			f.rank[b] = rank_above_parents(&jobs[i], f.batch_of, f.rank, SIZE_MAX);
		}
		f.batch_of[i] = b;
		for (size_t k = 0; k < jobs[i].dep_count; k++)
			if (f.batch_of[jobs[i].deps[k]] != b)
				f.needed[f.batch_of[jobs[i].deps[k]]] = true;
		dep_total += jobs[i].dep_count;
		outside_total += jobs[i].outside_count;
	}
	struct batch_order *order = xcalloc(f.made + 1, sizeof(*order));
	for (size_t b = 0; b < f.made; b++)
		order[b] = (struct batch_order){f.rank[b], f.head[b], b};
	qsort(order, f.made, sizeof(*order), compare_batches);
	size_t *position = xcalloc(f.made + 1, sizeof(size_t));
	for (size_t p = 0; p < f.made; p++)
		position[order[p].id] = p;

	out->count = f.made;
	out->batch_of = xcalloc(count + 1, sizeof(size_t));
	out->start = xcalloc(f.made + 1, sizeof(size_t));
	out->members = xcalloc(count + 1, sizeof(size_t));
	for (size_t i = 0; i < count; i++) {
		out->batch_of[i] = position[f.batch_of[i]];
		out->start[out->batch_of[i] + 1]++;
	}
	for (size_t b = 0; b < f.made; b++)
		out->start[b + 1] += out->start[b];
	size_t *filled = xcalloc(f.made + 1, sizeof(size_t));
	for (size_t i = 0; i < count; i++) {
		size_t b = out->batch_of[i];
		out->members[out->start[b] + filled[b]++] = i; /* in job order: dependencies first */
	}
	out->jobs = xcalloc(f.made + 1, sizeof(*out->jobs));
	out->groups = xcalloc(f.made + 1, sizeof(char *));
	out->names = xcalloc(f.made + 1, sizeof(char *));
	out->dep_storage = xcalloc(dep_total + 1, sizeof(size_t));
	out->outside_id_storage = xcalloc(outside_total + 1, sizeof(char *));
	out->outside_storage = xcalloc(outside_total + 1, sizeof(struct exec_submission *));
	size_t dep_used = 0, outside_used = 0;
	for (size_t b = 0; b < f.made; b++)
		batch_job(jobs, out, b, &dep_used, &outside_used);
	free(filled);
	free(position);
	free(order);
	free(f.batch_of);
	free(f.rank);
	free(f.head);
	free(f.needed);
}

size_t exec_batch_size(const struct exec_batches *batches, size_t b)
{
	return batches->start[b + 1] - batches->start[b];
}

/*
 * The runner of a batch of several jobs: each job's own script in turn. A
 * step after a failed one it needs finds its parent's marker and records
 * "not run"; steps that do not need it still run. The batch itself ends
 * with status 0, so that jobs held on it outside judge by the markers too
 * (a failed step must not cancel the dependants of the steps that succeeded).
 * Stopped (SIGTERM: time limit, cancel), the step running records itself as
 * killed and the batch marks the steps it has not reached as not run. Each
 * step's script is read from the unit's scripts file when it starts, in a
 * subshell (its traps, exits and redirections stay its own), once the file
 * is still the submission's (exec_scripts_reader's current).
 */
void exec_batch_runner(const struct exec_cluster_job *jobs, const struct exec_batches *batches, size_t b,
		       char *const *names, const char *root, size_t first_entry, struct strbuf *out)
{
	const size_t *members = batches->members + batches->start[b];
	size_t member_count = exec_batch_size(batches, b);
	strbuf_addf(out, "# cpipe batch of %zu jobs, run one after the other in this cluster job:\n", member_count);
	for (size_t m = 0; m < member_count; m++) {
		strbuf_adds(out, "#   ");
		for (const char *p = jobs[members[m]].id; *p; p++)
			strbuf_addch(out, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
		strbuf_addch(out, '\n');
	}
	strbuf_adds(out, "# Each job's script checks the jobs it needs, runs its command and writes its own\n"
			 "# marker, which is what cpipe status/wait/run read.\ncd ");
	strbuf_add_shell_quoted(out, root);
	strbuf_addf(out, " || exit 1\n"
			 "# stop: SIGTERM (time limit, cancel) reached the batch or the step it runs\n"
			 "# (status 143; the scheduler may signal that first): run no further step. A\n"
			 "# scheduler may send SIGTERM more than once: from here on the batch (and what\n"
			 "# it runs to write the markers) ignores it; SIGKILL still ends it.\n"
			 "stopped=\n"
			 "stop() {\n"
			 "\tstopped=1\n"
			 "\ttrap '' TERM\n"
			 "}\n"
			 "trap stop TERM\n\n"
			 "# step ENTRY NAME: run job NAME's script, entry ENTRY of the scripts file; once\n"
			 "# the batch was told to stop, write a marker saying the job did not run instead.\n"
			 "# A batch whose submission lost its name runs and records nothing more.\n"
			 "step() {\n"
			 "\tcurrent || { printf 'cpipe: %%s\\n' \"$stale\" >&2; exit 1; }\n"
			 "\tif [ -z \"$stopped\" ]; then\n"
			 "\t\tscript=$(entry \"$1\")\n"
			 "\t\t[ -n \"$script\" ] || { echo \"cpipe: cannot read $2's script from $cpipe_file\" >&2; exit 1; }\n"
			 "\t\t(set -- && eval \"$script\")\n"
			 "\t\t[ $? -ne 143 ] || stop\n"
			 "\t\treturn\n"
			 "\tfi\n"
			 "\tmarker=%s/$2.marker\n"
			 "\tprintf 'cpipe-marker 1\\nexit 1\\nstart_ns 0\\nend_ns 0\\nhost %%s\\nmessage %%s\\n' \"$(hostname)\" \\\n"
			 "\t\t'not run: its batch was stopped (time limit reached or job cancelled) before it' \\\n"
			 "\t\t>\"$marker.tmp.$$\" && mv -f \"$marker.tmp.$$\" \"$marker\"\n"
			 "}\n\n",
		     EXEC_JOBS_DIR);
	for (size_t m = 0; m < member_count; m++)
		strbuf_addf(out, "step %zu %s\n", first_entry + m, names[members[m]]); /* file names: [A-Za-z0-9._-] */
	strbuf_adds(out, "[ -z \"$stopped\" ] || exit 143\nexit 0\n");
}

void exec_batches_name(struct exec_batches *batches, const struct exec_cluster_job *jobs, char *const *names)
{
	struct strbuf text = STRBUF_INIT, name = STRBUF_INIT;
	for (size_t b = 0; b < batches->count; b++) {
		const size_t *members = batches->members + batches->start[b];
		if (exec_batch_size(batches, b) == 1) {
			batches->names[b] = xstrdup(names[members[0]]);
			continue;
		}
		strbuf_reset(&text);
		strbuf_addf(&text, "batch:%s", jobs[members[0]].id);
		job_file_name(text.buf, &name);
		batches->names[b] = strbuf_detach(&name);
	}
	strbuf_release(&text);
	strbuf_release(&name);
}

void exec_batches_release(struct exec_batches *batches)
{
	for (size_t b = 0; b < batches->count; b++) {
		free(batches->groups[b]);
		free(batches->names ? batches->names[b] : NULL);
	}
	free(batches->groups);
	free(batches->names);
	free(batches->jobs);
	free(batches->batch_of);
	free(batches->start);
	free(batches->members);
	free(batches->dep_storage);
	free(batches->outside_id_storage);
	free(batches->outside_storage);
	memset(batches, 0, sizeof(*batches));
}
