#include "submit.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- importing markers ------------------------------------------------- */

/* The submission note holds the definition hash the job ran with: "definition HEX". */
static uint64_t note_definition(const char *note, uint64_t fallback)
{
	if (!note || strncmp(note, "definition ", 11))
		return fallback;
	char *end;
	unsigned long long v = strtoull(note + 11, &end, 16);
	return end == note + 11 ? fallback : (uint64_t)v;
}

static bool skipped_message(const char *message)
{
	return message && !strncmp(message, "not run:", 8);
}

static void report_line(const char *what, const char *id, const char *message, const char *log)
{
	struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "%s ", what);
	cli_add_escaped(&line, id);
	strbuf_addf(&line, ": %s", message ? message : "failed");
	if (log)
		strbuf_addf(&line, "; log: %s", log);
	strbuf_addch(&line, '\n');
	fputs(line.buf, stderr);
	strbuf_release(&line);
}

static int import_success(struct study *study, const struct graph_job *job, const struct exec_submission *sub,
			  const struct exec_marker *marker, struct cp_err *err)
{
	struct state *state = study->state;
	uint64_t hash = note_definition(sub->note, plan_definition_hash(job));
	struct state_file *inputs = xcalloc(job->inputs.count + 1, sizeof(*inputs));
	struct state_file *outputs = xcalloc(job->outputs.count + 1, sizeof(*outputs));
	int rc = 0;
	/* Inputs are signed now, as a local run signs them when the job ends. */
	for (size_t i = 0; i < job->inputs.count && rc == 0; i++) {
		inputs[i].path = job->inputs.items[i];
		rc = state_file_signature(state, inputs[i].path, &inputs[i].signature, err);
	}
	for (size_t o = 0; o < job->outputs.count && rc == 0; o++) {
		outputs[o].path = job->outputs.items[o];
		const struct exec_marker_output *seen = o < marker->output_count ? &marker->outputs[o] : NULL;
		if (seen && !seen->exists)
			continue; /* an optional output the job did not write */
		rc = state_file_signature(state, outputs[o].path, &outputs[o].signature, err);
		/*
		 * The coordinator hashes the content itself; if the file changed since the
		 * job wrote it, keep what the job saw, unhashed, so the change is noticed.
		 */
		if (rc == 0 && seen && (outputs[o].signature.size != seen->size ||
					outputs[o].signature.mtime_ns != seen->mtime_ns)) {
			outputs[o].signature.exists = true;
			outputs[o].signature.size = seen->size;
			outputs[o].signature.mtime_ns = seen->mtime_ns;
			outputs[o].signature.hashed = false;
			outputs[o].signature.hash = 0;
		}
	}
	if (rc == 0) {
		struct state_outcome outcome;
		memset(&outcome, 0, sizeof(outcome));
		outcome.job_id = job->id;
		outcome.definition_hash = hash;
		outcome.inputs = inputs;
		outcome.input_count = job->inputs.count;
		outcome.outputs = outputs;
		outcome.output_count = job->outputs.count;
		struct state_attempt attempt = {0, marker->start_ns, marker->end_ns, marker->host, -1, sub->log_path};
		outcome.attempt = attempt;
		rc = state_record_success(state, &outcome, err);
	}
	free(inputs);
	free(outputs);
	return rc;
}

/* Import one job's marker; returns 0 or -1 (database error). */
static int import_marker(struct study *study, struct cluster_view *view, size_t index, const char *name,
			 const struct exec_submission *sub, const struct exec_marker *marker, bool report,
			 struct cp_err *err)
{
	const struct graph_job *job = &study->graph->jobs[index];
	int rc = 0;
	if (marker->exit_code == 0) {
		rc = import_success(study, job, sub, marker, err);
		view->imported_ok += rc == 0;
	} else if (skipped_message(marker->message)) {
		/* It never ran its command: like a skipped local job, nothing is recorded. */
		view->skipped++;
		if (report)
			report_line("skipped", job->id, marker->message, NULL);
	} else {
		struct state_attempt attempt = {marker->exit_code, marker->start_ns, marker->end_ns, marker->host, -1,
						sub->log_path};
		rc = state_record_failure(study->state, job->id, &attempt, err);
		view->imported_failed++;
		if (report)
			report_line("FAILED", job->id, marker->message, sub->log_path);
	}
	if (rc == 0)
		exec_submission_remove(".", name);
	return rc;
}

/* Record a job that left the scheduler without a marker as failed. */
static int import_lost(struct study *study, struct cluster_view *view, size_t index, const char *name,
		       const struct exec_submission *sub, bool report, struct cp_err *err)
{
	const struct graph_job *job = &study->graph->jobs[index];
	struct strbuf message = STRBUF_INIT;
	strbuf_adds(&message, "ended without a result (killed, timed out, or never started?): ");
	exec_submission_cluster_id(sub, &message);
	strbuf_addf(&message, " on %s", exec_cluster_name(sub->kind));
	struct state_attempt attempt = {-1, 0, state_now_ns(), NULL, -1, sub->log_path};
	int rc = state_record_failure(study->state, job->id, &attempt, err);
	view->imported_failed++;
	if (report)
		report_line("FAILED", job->id, message.buf, sub->log_path);
	strbuf_release(&message);
	if (rc == 0)
		exec_submission_remove(".", name);
	return rc;
}

int cluster_sync(struct study *study, struct cluster_view *view, bool report, struct cp_err *err)
{
	const struct graph *graph = study->graph;
	memset(view, 0, sizeof(*view));
	view->count = graph->count;
	view->subs = xcalloc(graph->count + 1, sizeof(*view->subs));
	view->states = xcalloc(graph->count + 1, sizeof(*view->states));
	view->in_flight = xcalloc(graph->count + 1, sizeof(*view->in_flight));
	/* Nothing was ever submitted from here: no records to read. */
	if (access(EXEC_JOBS_DIR, F_OK) != 0)
		return 0;
	struct strbuf name = STRBUF_INIT;
	size_t *pending = xcalloc(graph->count + 1, sizeof(*pending));
	size_t pending_count = 0;
	int rc = state_begin(study->state, err);
	for (size_t i = 0; i < graph->count && rc == 0; i++) {
		strbuf_reset(&name);
		exec_job_file_name(graph->jobs[i].id, &name);
		struct exec_submission sub = EXEC_SUBMISSION_INIT;
		struct cp_err read_err = CP_ERR_INIT;
		int found = exec_submission_read(".", name.buf, &sub, &read_err);
		if (found < 0) {
			fprintf(stderr, "cpipe: warning: %s; ignoring it\n", read_err.message);
			cp_err_release(&read_err);
			continue;
		}
		if (!found)
			continue;
		struct exec_marker marker;
		int have = exec_marker_read(".", name.buf, &marker, &read_err);
		if (have < 0) {
			/* A marker that cannot be parsed is a failed job, not a running one. */
			struct exec_marker broken;
			memset(&broken, 0, sizeof(broken));
			broken.exit_code = 1;
			broken.message = read_err.message;
			rc = import_marker(study, view, i, name.buf, &sub, &broken, report, err);
			cp_err_release(&read_err);
			exec_submission_release(&sub);
		} else if (have) {
			rc = import_marker(study, view, i, name.buf, &sub, &marker, report, err);
			exec_marker_release(&marker);
			exec_submission_release(&sub);
		} else {
			view->subs[i] = sub;
			pending[pending_count++] = i;
		}
	}
	if (pending_count && rc == 0) {
		const struct exec_submission **subs = xcalloc(pending_count, sizeof(*subs));
		enum exec_cluster_state *states = xcalloc(pending_count, sizeof(*states));
		for (size_t p = 0; p < pending_count; p++)
			subs[p] = &view->subs[pending[p]];
		struct cp_err query_err = CP_ERR_INIT;
		bool query_ok = exec_cluster_query(subs, pending_count, states, &query_err) == 0;
		if (!query_ok) {
			fprintf(stderr, "cpipe: warning: cannot ask the scheduler about %zu submitted job%s: %s\n",
				pending_count, pending_count == 1 ? "" : "s", query_err.message);
			cp_err_release(&query_err);
		}
		const struct exec_submission **never = xcalloc(pending_count, sizeof(*never));
		size_t never_count = 0;
		for (size_t p = 0; p < pending_count && rc == 0; p++) {
			size_t i = pending[p];
			enum exec_cluster_state state = query_ok ? states[p] : EXEC_CLUSTER_QUEUED;
			if (state == EXEC_CLUSTER_QUEUED || state == EXEC_CLUSTER_RUNNING) {
				view->in_flight[i] = true;
				view->states[i] = state;
				view->in_flight_count++;
				view->queued += state == EXEC_CLUSTER_QUEUED;
				view->running += state == EXEC_CLUSTER_RUNNING;
				continue;
			}
			strbuf_reset(&name);
			exec_job_file_name(graph->jobs[i].id, &name);
			/* It may have ended between our reading and the query: read again. */
			struct exec_marker marker;
			struct cp_err read_err = CP_ERR_INIT;
			int have = exec_marker_read(".", name.buf, &marker, &read_err);
			cp_err_release(&read_err);
			if (have > 0) {
				rc = import_marker(study, view, i, name.buf, &view->subs[i], &marker, report, err);
				exec_marker_release(&marker);
			} else if (state == EXEC_CLUSTER_NEVER) {
				never[never_count++] = &view->subs[i];
				view->skipped++;
				if (report)
					report_line("skipped", graph->jobs[i].id,
						    "not run: a job it depends on failed (cancelled on the cluster)", NULL);
				continue; /* its record is needed by the cancel below */
			} else {
				rc = import_lost(study, view, i, name.buf, &view->subs[i], report, err);
			}
			exec_submission_release(&view->subs[i]);
		}
		/*
		 * A scheduler that does not drop jobs whose dependency failed (SLURM without
		 * --kill-on-invalid-dep, as real fsl_sub submits) keeps them pending for ever:
		 * cancel them, and forget them only once the cancel went through.
		 */
		if (never_count) {
			struct cp_err cancel_err = CP_ERR_INIT;
			bool cancelled = exec_cluster_cancel(never, never_count, &cancel_err) == 0;
			if (!cancelled) {
				fprintf(stderr, "cpipe: warning: %s; they stay recorded and are cancelled on the next call\n",
					cancel_err.message);
				cp_err_release(&cancel_err);
			}
			for (size_t p = 0; p < pending_count; p++) {
				size_t i = pending[p];
				if (!view->subs[i].job || view->in_flight[i])
					continue;
				if (cancelled) {
					strbuf_reset(&name);
					exec_job_file_name(graph->jobs[i].id, &name);
					exec_submission_remove(".", name.buf);
				}
				exec_submission_release(&view->subs[i]);
			}
		}
		free(never);
		free(subs);
		free(states);
	}
	if (rc == 0)
		rc = state_commit(study->state, err);
	else
		state_rollback(study->state);
	free(pending);
	strbuf_release(&name);
	return rc;
}

void cluster_view_release(struct cluster_view *view)
{
	for (size_t i = 0; view->subs && i < view->count; i++)
		exec_submission_release(&view->subs[i]);
	free(view->subs);
	free(view->states);
	free(view->in_flight);
	memset(view, 0, sizeof(*view));
}

void cluster_hold_in_flight(struct study *study, const struct cluster_view *view, struct plan_decision *decisions,
			    bool quiet)
{
	struct strbuf line = STRBUF_INIT;
	for (size_t i = 0; i < view->count; i++) {
		if (!view->in_flight[i])
			continue;
		decisions[i].action = PLAN_HELD;
		decisions[i].reason = STATE_RUNNING_ELSEWHERE;
		strbuf_reset(&line);
		strbuf_addf(&line, "%s on %s as job ", exec_cluster_state_name(view->states[i]),
			    exec_cluster_name(view->subs[i].kind));
		exec_submission_cluster_id(&view->subs[i], &line);
		free(decisions[i].detail);
		decisions[i].detail = xstrdup(line.buf);
		if (!quiet) {
			strbuf_reset(&line);
			strbuf_adds(&line, "cpipe: not running ");
			cli_add_escaped(&line, study->graph->jobs[i].id);
			strbuf_addf(&line, ": held, it is %s (cpipe wait)\n", decisions[i].detail);
			fputs(line.buf, stderr);
		}
	}
	strbuf_release(&line);
}

/* ---- submitting ---------------------------------------------------------------- */

struct submit_context {
	struct study *study;
	const size_t *graph_index;
	enum exec_cluster_kind kind;
	bool quiet;
};

static void on_submit(void *data, const size_t *indices, size_t count, const char *cluster_id)
{
	struct submit_context *ctx = data;
	const struct graph_job *first = &ctx->study->graph->jobs[ctx->graph_index[indices[0]]];
	struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "%s\t", cluster_id);
	if (count > 1)
		strbuf_addf(&line, "array of %zu: %s\n", count, ctx->study->recipes->recipes[first->recipe].name);
	else {
		cli_add_escaped(&line, first->id);
		strbuf_addch(&line, '\n');
	}
	fputs(line.buf, stdout);
	fflush(stdout);
	strbuf_release(&line);
}

/* Which of a recipe's resources.extra_<backend> lists goes to `kind`. */
static enum recipe_backend backend_extra_index(enum exec_cluster_kind kind)
{
	return kind == EXEC_CLUSTER_SGE ? RECIPE_BACKEND_SGE
	       : kind == EXEC_CLUSTER_FSL_SUB ? RECIPE_BACKEND_FSL_SUB
					      : RECIPE_BACKEND_SLURM;
}

int cluster_submit(struct study *study, struct plan_decision *decisions, const struct cluster_view *view,
		   const struct submit_options *opt)
{
	const struct graph *graph = study->graph;
	struct cp_err err = CP_ERR_INIT;
	enum exec_cluster_kind kind;
	if (exec_cluster_choose(opt->backend, &kind, &err) < 0) {
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
	size_t dep_used = 0, outside_used = 0;
	for (size_t e = 0; e < count; e++) {
		const struct graph_job *job = &graph->jobs[graph_index[e]];
		const struct recipe_resources *r = &study->recipes->recipes[job->recipe].resources;
		struct exec_cluster_job *x = &jobs[e];
		x->id = job->id;
		x->command = job->command;
		x->outputs = (const char *const *)job->outputs.items;
		x->output_optional = job->output_optional;
		x->output_count = job->outputs.count;
		x->group = study->recipes->recipes[job->recipe].name;
		notes[e] = xasprintf("definition %016" PRIx64, plan_definition_hash(job));
		x->note = notes[e];
		x->minutes = r->minutes;
		x->ram_gb = r->ram_gb;
		x->threads = r->threads;
		x->queue = r->queue;
		x->coprocessor = r->coprocessor;
		x->coprocessor_count = r->coprocessor_count;
		x->pe = r->pe;
		x->extra = (const char *const *)r->extra.items;
		x->extra_count = r->extra.count;
		const struct strvec *own = &r->backend_extra[backend_extra_index(kind)];
		x->backend_extra = (const char *const *)own->items;
		x->backend_extra_count = own->count;
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
	double started = (double)state_now_ns() / 1e9;
	int submitted = exec_cluster_submit(jobs, count, &exec_opt, &summary, &err);
	int rc = EXIT_OK;
	if (submitted < 0) {
		cli_report(&err);
		rc = EXIT_JOB_FAILED;
	}
	/* The coordinator exits: the cluster, not our claim, now stands for these jobs. */
	for (size_t e = 0; e < count; e++) {
		if (state_release_claim(study->state, jobs[e].id, &err) < 0)
			cli_report(&err);
	}
	if (!opt->quiet || submitted < 0)
		fprintf(stderr, "cpipe: submitted %zu of %zu job%s to %s in %zu submission%s (%zu array%s) in %.2f s%s\n",
			summary.jobs, count, count == 1 ? "" : "s", exec_cluster_name(kind), summary.submissions,
			summary.submissions == 1 ? "" : "s", summary.arrays, summary.arrays == 1 ? "" : "s",
			(double)state_now_ns() / 1e9 - started,
			summary.foreground ? "; fsl_sub ran them in the foreground (no cluster)" : "");
	if (submitted < 0 && summary.jobs)
		fprintf(stderr, "cpipe: the %zu submitted job%s can run (every job they need was submitted before them) and "
				"stay in flight; the other %zu were not submitted: run again once the cause is fixed\n",
			summary.jobs, summary.jobs == 1 ? "" : "s", count - summary.jobs);
	for (size_t e = 0; e < count; e++)
		exec_cluster_job_release(&jobs[e]);
	for (size_t e = 0; e < count; e++)
		free(notes[e]);
	free(notes);
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
	size_t failed = 0, skipped = 0, succeeded = 0;
	double start = (double)state_now_ns() / 1e9;
	struct cp_err err = CP_ERR_INIT;
	bool shown = false;
	for (unsigned round = 0;; round++) {
		struct cluster_view view;
		if (cluster_sync(study, &view, true, &err) < 0) {
			if (shown)
				fputs("\r\033[K", stderr);
			cli_report(&err);
			cluster_view_release(&view);
			return EXIT_USAGE;
		}
		failed += view.imported_failed;
		skipped += view.skipped;
		succeeded += view.imported_ok;
		size_t left = view.in_flight_count;
		if (tty) {
			fprintf(stderr, "\r\033[K[%zu done, %zu running, %zu queued, %zu failed, %zu skipped] %.0f s", succeeded,
				view.running, view.queued, failed, skipped, (double)state_now_ns() / 1e9 - start);
			shown = true;
		}
		cluster_view_release(&view);
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
	if (!quiet)
		fprintf(stderr, "cpipe: %zu done, %zu failed, %zu skipped on the cluster in %.1f s%s\n", succeeded, failed,
			skipped, (double)state_now_ns() / 1e9 - start,
			failed_records > failed ? "; earlier failures remain (cpipe status -v)" : "");
	return failed || skipped || failed_records ? EXIT_JOB_FAILED : EXIT_OK;
}

/* ---- cpipe wait --------------------------------------------------------------------- */

static const char wait_usage[] =
	"usage: cpipe wait [TARGET ...] [options]\n"
	"\n"
	"Wait until every submitted job of the TARGETs (see `cpipe run --submit`) has\n"
	"left the cluster, importing each result into the state database as it comes,\n"
	"with a progress line on a terminal. The scheduler is asked once per poll for\n"
	"all jobs (CPIPE_POLL_INTERVAL seconds; default: 1 s, backing off to 30 s).\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --skip-missing: as for run\n"
	"  -q, --quiet     print only failures and the summary\n"
	"  -h, --help      show this help\n"
	"\n"
	"Exit status: 0 when every job succeeded, 1 when a job failed or was skipped\n"
	"(or the last attempt of a job of the TARGETs failed), 2 on a usage error.\n";

static const struct option wait_options[] = {
	STUDY_LONG_OPTIONS,
	{"quiet", no_argument, NULL, 'q'},
	{NULL, 0, NULL, 0},
};

int cmd_wait(int argc, char **argv)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	struct strvec storage = STRVEC_INIT;
	int new_argc, c, rc = -1;
	bool quiet = false;
	char **args = study_rewrite_args(argc, argv, wait_options, &opt, &storage, &new_argc);
	optind = 1;
	while (rc < 0 && (c = getopt_long(new_argc, args, "f:C:p:qh", wait_options, NULL)) != -1) {
		int handled = study_option(&opt, c, optarg);
		if (handled < 0)
			rc = EXIT_USAGE;
		else if (handled)
			continue;
		else if (c == 'q')
			quiet = true;
		else if (c == 'h') {
			fputs(wait_usage, stdout);
			rc = EXIT_OK;
		} else
			rc = cli_usage_error("wait", "unknown option");
	}
	for (int i = optind; rc < 0 && i < new_argc; i++)
		strvec_push(&opt.targets, args[i]);
	free(args);
	strvec_release(&storage);
	if (rc < 0) {
		opt.need_state = true;
		struct study study;
		rc = study_load(&opt, &study);
		if (rc == EXIT_OK) {
			rc = cluster_wait(&study, quiet);
			study_release(&study);
		}
	}
	study_options_release(&opt);
	return rc;
}
