#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- importing markers ------------------------------------------------- */

static void report_job(const char *what, const struct graph_job *job, const char *message, const char *log)
{
	struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "%s ", what);
	cli_add_escaped(&line, job->id);
	strbuf_addf(&line, ": %s", message ? message : "failed");
	if (log)
		strbuf_addf(&line, "; log: %s", log);
	strbuf_addch(&line, '\n');
	fputs(line.buf, stderr);
	strbuf_release(&line);
}

int cluster_sync(struct study *study, struct sync_view *view, bool report, struct cp_err *err)
{
	int rc = sync_cluster(study->graph, study->state, view, err);
	for (size_t e = 0; e < view->event_count; e++) {
		const struct sync_event *event = &view->events[e];
		const struct graph_job *job = &study->graph->jobs[event->job];
		switch (event->kind) {
		case SYNC_JOB_FAILED:
			if (report)
				report_job("FAILED", job, event->message, event->log);
			break;
		case SYNC_JOB_SKIPPED:
			if (report)
				report_job("skipped", job, event->message, NULL);
			break;
		case SYNC_UNREADABLE_RECORD:
			fprintf(stderr, "cpipe: warning: %s; ignoring it\n", event->message);
			break;
		case SYNC_QUERY_FAILED:
			fprintf(stderr, "cpipe: warning: cannot ask the scheduler about %zu submitted job%s: %s\n",
				event->count, event->count == 1 ? "" : "s", event->message);
			break;
		case SYNC_CANCEL_FAILED:
			fprintf(stderr, "cpipe: warning: %s; they stay recorded and are cancelled on the next call\n",
				event->message);
			break;
		}
	}
	return rc;
}

void cluster_hold_in_flight(const struct sync_view *view, struct plan_decision *decisions)
{
	struct strbuf where = STRBUF_INIT;
	for (size_t i = 0; i < view->count; i++) {
		if (!view->in_flight[i])
			continue;
		decisions[i].action = PLAN_HELD;
		decisions[i].reason = STATE_RUNNING_ELSEWHERE;
		strbuf_reset(&where);
		strbuf_addf(&where, "%s on %s as job ", exec_cluster_state_name(view->states[i]),
			    exec_cluster_name(view->subs[i].kind));
		exec_submission_cluster_id(&view->subs[i], &where);
		plan_set_detail(&decisions[i], strbuf_detach(&where));
	}
	strbuf_release(&where);
}

/* ---- submitting ---------------------------------------------------------------- */

struct submit_context {
	struct study *study;
	const size_t *graph_index;
	enum exec_cluster_kind kind;
	bool quiet;
};

static void on_submit(void *data, const size_t *indices, size_t count, size_t tasks, const char *cluster_id)
{
	struct submit_context *ctx = data;
	const struct graph_job *first = &ctx->study->graph->jobs[ctx->graph_index[indices[0]]];
	struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "%s\t", cluster_id);
	if (tasks) {
		strbuf_addf(&line, "array of %zu: %s", tasks, ctx->study->recipes->recipes[first->recipe].name);
		if (count > tasks)
			strbuf_addf(&line, " (batches, %zu jobs)", count);
		strbuf_addch(&line, '\n');
	} else {
		/* A batch: its jobs in the order they run. */
		for (size_t k = 0; k < count; k++) {
			strbuf_adds(&line, k ? ", " : count > 1 ? "batch: " : "");
			cli_add_escaped(&line, ctx->study->graph->jobs[ctx->graph_index[indices[k]]].id);
		}
		strbuf_addch(&line, '\n');
	}
	fputs(line.buf, stdout);
	fflush(stdout);
	strbuf_release(&line);
}

/* ", N batches" for the summary line, or "" without any. */
static const char *batches_text(size_t count, char *buffer, size_t size)
{
	if (!count)
		return "";
	snprintf(buffer, size, ", %zu batch%s", count, count == 1 ? "" : "es");
	return buffer;
}

/* What the command line offers instead when exec refuses a backend (`refusal`: its negative return). */
static void add_hint(struct cp_err *err, int refusal)
{
	const char *hint = refusal == EXEC_CLUSTER_FSL_SUB_LOCAL
				   ? "; run without --submit to run them here in parallel, or use --submit=fsl_sub to go "
				     "through it anyway"
			   : refusal == EXEC_CLUSTER_NONE_ON_PATH ? "; run without --submit to run the jobs here"
			   : refusal == EXEC_CLUSTER_BLANK_ROOT
				   ? ": use --submit=slurm or --submit=sge, or a data root without blanks"
				   : "";
	char *message = xasprintf("%s%s", err->message ? err->message : "", hint);
	free(err->message);
	err->message = message;
}

/*
 * A job's batch key for -b: its recipe's batch_label and its placeholder
 * values, so that subjects never mix. When some recipe has a label, jobs of
 * recipes without one are never merged (NULL), as with fsl-pipe.
 */
static char *batch_key(const struct recipe_set *recipes, const struct graph_job *job)
{
	bool labelled = false;
	for (size_t r = 0; r < recipes->count && !labelled; r++)
		labelled = recipes->recipes[r].batch_label != NULL;
	const char *label = recipes->recipes[job->recipe].batch_label;
	if (labelled && !label)
		return NULL;
	struct strbuf key = STRBUF_INIT;
	label = label ? label : "";
	strbuf_addf(&key, "%zu:%s", strlen(label), label);
	for (size_t b = 0; b < job->binding_count; b++)
		strbuf_addf(&key, " %zu:%s=%zu:%s", strlen(job->binding_names[b]), job->binding_names[b],
			    strlen(job->binding_values[b]), job->binding_values[b]);
	return strbuf_detach(&key);
}

/* Which of a recipe's resources.extra_<backend> lists goes to `kind`. */
static enum recipe_backend backend_extra_index(enum exec_cluster_kind kind)
{
	return kind == EXEC_CLUSTER_SGE ? RECIPE_BACKEND_SGE
	       : kind == EXEC_CLUSTER_FSL_SUB ? RECIPE_BACKEND_FSL_SUB
					      : RECIPE_BACKEND_SLURM;
}

int cluster_submit(struct study *study, struct plan_decision *decisions, const struct sync_view *view,
		   const struct submit_options *opt)
{
	const struct graph *graph = study->graph;
	struct cp_err err = CP_ERR_INIT;
	enum exec_cluster_kind kind;
	int chosen = exec_cluster_choose(opt->backend, &kind, &err);
	if (chosen < 0) {
		if (chosen == EXEC_CLUSTER_UNKNOWN_NAME)
			cp_err_set(&err, NULL, 0, "unknown --submit backend '%s' (auto, fsl_sub, slurm or sge)",
				   opt->backend);
		add_hint(&err, chosen);
		cli_report(&err);
		return EXIT_USAGE;
	}
	struct plan_runs selection;
	plan_select_runs(graph, decisions, &selection);
	size_t count = selection.count, dep_total = selection.dep_total;
	const size_t *exec_index = selection.exec_index, *graph_index = selection.graph_index;
	struct exec_cluster_job *jobs = xcalloc(count + 1, sizeof(*jobs));
	size_t *deps = xcalloc(dep_total + 1, sizeof(*deps));
	const char **outside_ids = xcalloc(dep_total + 1, sizeof(*outside_ids));
	const struct exec_submission **outside = xcalloc(dep_total + 1, sizeof(*outside));
	char **notes = xcalloc(count + 1, sizeof(*notes));
	char **commands = xcalloc(count + 1, sizeof(*commands)); /* the graph keeps none */
	char **checks = xcalloc(count + 1, sizeof(*checks));
	struct strbuf check = STRBUF_INIT;
	char **batch_keys = xcalloc(count + 1, sizeof(*batch_keys));
	size_t dep_used = 0, outside_used = 0;
	for (size_t e = 0; e < count; e++) {
		const struct graph_job *job = &graph->jobs[graph_index[e]];
		const struct recipe_resources *r = &study->recipes->recipes[job->recipe].resources;
		struct exec_cluster_job *x = &jobs[e];
		x->id = job->id;
		x->command = commands[e] = graph_job_command_dup(job);
		x->outputs = (const char *const *)job->outputs.items;
		x->output_optional = graph_job_output_optional(job);
		x->output_count = job->outputs.count;
		x->group = study->recipes->recipes[job->recipe].name;
		notes[e] = sync_definition_note(job);
		x->note = notes[e];
		/* Early cutoff on the node: a job that cannot be checked (or whose check cannot be written) runs. */
		if (decisions[graph_index[e]].conditional && cluster_skip_check(study, graph_index[e], &check, &err) < 0)
			cli_report(&err);
		else if (check.len)
			x->skip_check = checks[e] = strbuf_detach(&check);
		if (opt->batch)
			x->batch = batch_keys[e] = batch_key(study->recipes, job);
		study_job_resources(r, &x->resources);
		const struct strvec *own = &r->backend_extra[backend_extra_index(kind)];
		x->resources.backend_extra = (const char *const *)own->items;
		x->resources.backend_extra_count = own->count;
		x->deps = deps + dep_used;
		x->outside_ids = outside_ids + outside_used;
		x->outside = outside + outside_used;
		for (size_t k = 0; k < job->dep_count; k++) {
			size_t d = job->deps[k];
			if (decisions[d].action == PLAN_RUN)
				deps[dep_used + x->dep_count++] = exec_index[d];
			else if (view->in_flight[d]) {
				outside_ids[outside_used + x->outside_count] = graph->jobs[d].id;
				outside[outside_used + x->outside_count++] = &view->subs[d];
			}
		}
		dep_used += x->dep_count;
		outside_used += x->outside_count;
	}
	struct submit_context ctx = {study, graph_index, kind, opt->quiet};
	struct exec_cluster_options exec_opt;
	memset(&exec_opt, 0, sizeof(exec_opt));
	exec_opt.cwd = ".";
	exec_opt.kind = kind;
	exec_opt.scale_time = opt->scale_time;
	exec_opt.holds = (const char *const *)opt->holds.items;
	exec_opt.hold_count = opt->holds.count;
	exec_opt.on_submit = on_submit;
	exec_opt.ctx = &ctx;
	struct exec_cluster_summary summary;
	char batches[48];
	double started = (double)state_now_ns() / 1e9;
	int submitted = exec_cluster_submit(jobs, count, &exec_opt, &summary, &err);
	int rc = EXIT_OK;
	if (submitted < 0) {
		add_hint(&err, submitted);
		cli_report(&err);
		rc = EXIT_JOB_FAILED;
	}
	/* The coordinator exits: the cluster, not our claim, now stands for these jobs. */
	for (size_t e = 0; e < count; e++) {
		if (state_release_claim(study->state, jobs[e].id, &err) < 0)
			cli_report(&err);
	}
	if (!opt->quiet || submitted < 0)
		fprintf(stderr, "cpipe: submitted %zu of %zu job%s to %s in %zu submission%s (%zu array%s%s) in %.2f s%s\n",
			summary.jobs, count, count == 1 ? "" : "s", exec_cluster_name(kind), summary.submissions,
			summary.submissions == 1 ? "" : "s", summary.arrays, summary.arrays == 1 ? "" : "s",
			batches_text(summary.batches, batches, sizeof(batches)),
			(double)state_now_ns() / 1e9 - started,
			summary.foreground ? "; fsl_sub ran them in the foreground (no cluster)" : "");
	if (submitted < 0 && summary.jobs)
		fprintf(stderr, "cpipe: the %zu submitted job%s can run (every job they need was submitted before them) and "
				"stay in flight; the other %zu were not submitted: run again once the cause is fixed\n",
			summary.jobs, summary.jobs == 1 ? "" : "s", count - summary.jobs);
	for (size_t e = 0; e < count; e++)
		exec_cluster_job_release(&jobs[e]);
	for (size_t e = 0; e < count; e++) {
		free(notes[e]);
		free(commands[e]);
		free(checks[e]);
		free(batch_keys[e]);
	}
	free(notes);
	free(commands);
	free(checks);
	free(batch_keys);
	strbuf_release(&check);
	free(jobs);
	free(deps);
	free(outside_ids);
	free(outside);
	plan_runs_release(&selection);
	if (rc != EXIT_OK)
		return rc;
	if (opt->wait || summary.foreground) {
		/* Foreground jobs have already ended: import them now. */
		int waited = cluster_wait(study, opt->quiet || !opt->wait);
		if (opt->wait || waited != EXIT_OK)
			rc = waited;
	}
	return rc;
}

/* ---- waiting ----------------------------------------------------------------------- */

static double poll_interval(unsigned round)
{
	const char *fixed = getenv("CPIPE_POLL_INTERVAL");
	if (fixed && *fixed) {
		double v = strtod(fixed, NULL);
		if (v > 0)
			return v;
	}
	/* Start quickly, then back off: a big cluster's controller should not be hammered. */
	double v = 1;
	for (unsigned i = 0; i < round && v < 30; i++)
		v *= 1.5;
	return v > 30 ? 30 : v;
}

static void sleep_seconds(double seconds)
{
	time_t whole = (time_t)seconds;
	struct timespec ts = {whole, (long)((seconds - (double)whole) * 1e9)};
	while (nanosleep(&ts, &ts) < 0)
		;
}

int cluster_wait(struct study *study, bool quiet)
{
	bool tty = isatty(STDERR_FILENO) && !quiet;
	size_t failed = 0, skipped = 0, succeeded = 0, cut_off = 0;
	double start = (double)state_now_ns() / 1e9;
	struct cp_err err = CP_ERR_INIT;
	bool shown = false;
	for (unsigned round = 0;; round++) {
		struct sync_view view;
		if (cluster_sync(study, &view, true, &err) < 0) {
			if (shown)
				fputs("\r\033[K", stderr);
			cli_report(&err);
			sync_view_release(&view);
			return EXIT_USAGE;
		}
		failed += view.imported_failed;
		skipped += view.skipped;
		succeeded += view.imported_ok;
		cut_off += view.imported_unneeded;
		size_t left = view.in_flight_count;
		if (tty) {
			fprintf(stderr, "\r\033[K[%zu done, %zu running, %zu queued, %zu failed, %zu skipped] %.0f s", succeeded,
				view.running, view.queued, failed, skipped, (double)state_now_ns() / 1e9 - start);
			shown = true;
		}
		sync_view_release(&view);
		if (!left)
			break;
		sleep_seconds(poll_interval(round));
	}
	if (shown)
		fputs("\r\033[K", stderr);
	/* Jobs of the graph whose last attempt failed, whenever that was. */
	size_t failed_records = 0;
	for (size_t i = 0; i < study->graph->count; i++) {
		struct state_job_record record;
		if (state_job_lookup(study->state, study->graph->jobs[i].id, &record) &&
		    record.status == STATE_STATUS_FAILED)
			failed_records++;
	}
	char cut[64] = "";
	if (cut_off)
		snprintf(cut, sizeof(cut), ", %zu cut off (inputs unchanged)", cut_off);
	if (!quiet)
		fprintf(stderr, "cpipe: %zu done, %zu failed, %zu skipped%s on the cluster in %.1f s%s\n", succeeded, failed,
			skipped, cut, (double)state_now_ns() / 1e9 - start,
			failed_records > failed ? "; earlier failures remain (cpipe status -v)" : "");
	return failed || skipped || failed_records ? EXIT_JOB_FAILED : EXIT_OK;
}
