#include "cpipe/sync.h"

#include "cpipe/plan.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *sync_definition_note(const struct graph_job *job)
{
	return xasprintf("definition %016" PRIx64, plan_definition_hash(job, NULL));
}

/*
 * The definition hash the job ran with, which its submission note holds
 * (sync_definition_note); only a note without one costs expanding the command.
 */
static uint64_t note_definition(const char *note, const struct graph_job *job)
{
	if (note && !strncmp(note, "definition ", 11)) {
		char *end;
		unsigned long long v = strtoull(note + 11, &end, 16);
		if (end != note + 11)
			return (uint64_t)v;
	}
	return plan_definition_hash(job, NULL);
}

static bool skipped_message(const char *message)
{
	return message && !strncmp(message, "not run:", 8);
}

/* Something for the caller to say; returns it for fields beyond these. */
static struct sync_event *add_event(struct sync_view *view, enum sync_event_kind kind, size_t job,
				    const char *message, const char *log)
{
	ALLOC_GROW(view->events, view->event_count + 1, view->event_cap);
	struct sync_event *event = &view->events[view->event_count++];
	*event = (struct sync_event){
		.kind = kind,
		.job = job,
		.message = message ? xstrdup(message) : NULL,
		.log = log ? xstrdup(log) : NULL,
	};
	return event;
}

static int import_success(struct state *state, const struct graph_job *job, const struct exec_submission *sub,
			  const struct exec_marker *marker, struct cp_err *err)
{
	uint64_t hash = note_definition(sub->note, job);
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

/*
 * Early cutoff on the node: the job did not run its command. The coordinator
 * checks the files again; should they differ now, nothing is recorded and
 * the job runs next time.
 */
static int import_unneeded(struct state *state, const struct graph_job *job, struct sync_view *view,
			   struct cp_err *err)
{
	struct strbuf definition = STRBUF_INIT;
	struct state_job_query query;
	plan_job_query(job, &definition, &query);
	bool recorded;
	int rc = state_record_unchanged(state, &query, &recorded, NULL, err);
	view->imported_unneeded += rc == 0 && recorded;
	strbuf_release(&definition);
	return rc;
}

/* Import one job's marker; returns 0 or -1 (database error). */
static int import_marker(const struct graph *graph, struct state *state, struct sync_view *view,
			 struct exec_records *records, size_t index, const char *name, const struct exec_submission *sub,
			 const struct exec_marker *marker, struct cp_err *err)
{
	const struct graph_job *job = &graph->jobs[index];
	int rc = 0;
	if (marker->exit_code == 0 && marker->unneeded) {
		rc = import_unneeded(state, job, view, err);
	} else if (marker->exit_code == 0) {
		rc = import_success(state, job, sub, marker, err);
		view->imported_ok += rc == 0;
	} else if (skipped_message(marker->message)) {
		/* It never ran its command: like a skipped local job, nothing is recorded. */
		view->skipped++;
		add_event(view, SYNC_JOB_SKIPPED, index, marker->message, NULL);
	} else {
		struct state_attempt attempt = {marker->exit_code, marker->start_ns, marker->end_ns, marker->host, -1,
						sub->log_path};
		rc = state_record_failure(state, job->id, &attempt, err);
		view->imported_failed++;
		add_event(view, SYNC_JOB_FAILED, index, marker->message, sub->log_path);
	}
	if (rc == 0)
		exec_records_forget(records, name);
	return rc;
}

/* Record a job that left the scheduler without a marker as failed. */
static int import_lost(const struct graph *graph, struct state *state, struct sync_view *view,
		       struct exec_records *records, size_t index, const char *name, const struct exec_submission *sub,
		       struct cp_err *err)
{
	const struct graph_job *job = &graph->jobs[index];
	struct strbuf message = STRBUF_INIT;
	strbuf_adds(&message, "ended without a result (killed, timed out, or never started?): ");
	exec_submission_cluster_id(sub, &message);
	strbuf_addf(&message, " on %s", exec_cluster_name(sub->kind));
	struct state_attempt attempt = {-1, 0, state_now_ns(), NULL, -1, sub->log_path};
	int rc = state_record_failure(state, job->id, &attempt, err);
	view->imported_failed++;
	add_event(view, SYNC_JOB_FAILED, index, message.buf, sub->log_path);
	strbuf_release(&message);
	if (rc == 0)
		exec_records_forget(records, name);
	return rc;
}

int sync_cluster(const struct graph *graph, struct state *state, struct sync_view *view, struct cp_err *err)
{
	memset(view, 0, sizeof(*view));
	view->count = graph->count;
	view->subs = xcalloc(graph->count + 1, sizeof(*view->subs));
	view->states = xcalloc(graph->count + 1, sizeof(*view->states));
	view->in_flight = xcalloc(graph->count + 1, sizeof(*view->in_flight));
	/* Nothing was ever submitted from here: no records to read. */
	if (access(EXEC_JOBS_DIR, F_OK) != 0)
		return 0;
	struct exec_records *records = NULL;
	struct strvec problems = STRVEC_INIT;
	int rc = exec_records_load(".", &records, &problems, err);
	for (size_t p = 0; p < problems.count; p++)
		add_event(view, SYNC_UNREADABLE_RECORD, 0, problems.items[p], NULL);
	strvec_release(&problems);
	struct strbuf name = STRBUF_INIT;
	size_t *pending = xcalloc(graph->count + 1, sizeof(*pending));
	size_t pending_count = 0;
	bool began = rc == 0;
	if (began)
		rc = state_begin(state, err);
	for (size_t i = 0; i < graph->count && rc == 0; i++) {
		strbuf_reset(&name);
		job_file_name(graph->jobs[i].id, &name);
		struct exec_submission sub = EXEC_SUBMISSION_INIT;
		struct cp_err read_err = CP_ERR_INIT;
		if (!exec_records_find(records, name.buf, &sub))
			continue;
		struct exec_marker marker;
		int have = exec_marker_read(".", name.buf, &marker, &read_err);
		if (have < 0) {
			/* A marker that cannot be parsed is a failed job, not a running one. */
			struct exec_marker broken;
			memset(&broken, 0, sizeof(broken));
			broken.exit_code = 1;
			broken.message = read_err.message;
			rc = import_marker(graph, state, view, records, i, name.buf, &sub, &broken, err);
			cp_err_release(&read_err);
			exec_submission_release(&sub);
		} else if (have) {
			rc = import_marker(graph, state, view, records, i, name.buf, &sub, &marker, err);
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
			add_event(view, SYNC_QUERY_FAILED, 0, query_err.message, NULL)->count = pending_count;
			cp_err_release(&query_err);
		}
		const struct exec_submission **never = xcalloc(pending_count, sizeof(*never));
		size_t never_count = 0;
		for (size_t p = 0; p < pending_count && rc == 0; p++) {
			size_t i = pending[p];
			enum exec_cluster_state where = query_ok ? states[p] : EXEC_CLUSTER_QUEUED;
			if (where == EXEC_CLUSTER_QUEUED || where == EXEC_CLUSTER_RUNNING) {
				view->in_flight[i] = true;
				view->states[i] = where;
				view->in_flight_count++;
				view->queued += where == EXEC_CLUSTER_QUEUED;
				view->running += where == EXEC_CLUSTER_RUNNING;
				continue;
			}
			strbuf_reset(&name);
			job_file_name(graph->jobs[i].id, &name);
			/* It may have ended between our reading and the query: read again. */
			struct exec_marker marker;
			struct cp_err read_err = CP_ERR_INIT;
			int have = exec_marker_read(".", name.buf, &marker, &read_err);
			cp_err_release(&read_err);
			if (have > 0) {
				rc = import_marker(graph, state, view, records, i, name.buf, &view->subs[i], &marker, err);
				exec_marker_release(&marker);
			} else if (where == EXEC_CLUSTER_NEVER) {
				never[never_count++] = &view->subs[i];
				view->skipped++;
				add_event(view, SYNC_JOB_SKIPPED, i,
					  "not run: a job it depends on failed (cancelled on the cluster)", NULL);
				continue; /* its record is needed by the cancel below */
			} else {
				rc = import_lost(graph, state, view, records, i, name.buf, &view->subs[i], err);
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
				add_event(view, SYNC_CANCEL_FAILED, 0, cancel_err.message, NULL);
				cp_err_release(&cancel_err);
			}
			for (size_t p = 0; p < pending_count; p++) {
				size_t i = pending[p];
				if (!view->subs[i].job || view->in_flight[i])
					continue;
				if (cancelled) {
					strbuf_reset(&name);
					job_file_name(graph->jobs[i].id, &name);
					exec_records_forget(records, name.buf);
				}
				exec_submission_release(&view->subs[i]);
			}
		}
		free(never);
		free(subs);
		free(states);
	}
	if (rc == 0)
		rc = state_commit(state, err);
	else if (began)
		state_rollback(state);
	/* Records lose the jobs imported only once the state holds them: at worst one is imported twice. */
	if (rc == 0)
		rc = exec_records_save(records, err);
	exec_records_free(records);
	free(pending);
	strbuf_release(&name);
	return rc;
}

void sync_view_release(struct sync_view *view)
{
	for (size_t i = 0; view->subs && i < view->count; i++)
		exec_submission_release(&view->subs[i]);
	for (size_t e = 0; e < view->event_count; e++) {
		free(view->events[e].message);
		free(view->events[e].log);
	}
	free(view->events);
	free(view->subs);
	free(view->states);
	free(view->in_flight);
	memset(view, 0, sizeof(*view));
}
