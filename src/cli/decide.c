#include "decide.h"

#include "cpipe/exec.h"

#include <stdlib.h>
#include <string.h>

void decide_definition_text(const struct graph_job *job, struct strbuf *out)
{
	strbuf_reset(out);
	strbuf_adds(out, job->definition);
	strbuf_adds(out, "\ncommand:");
	strbuf_adds(out, job->command);
}

void decide_query(const struct graph_job *job, const char *definition, struct state_job_query *query)
{
	memset(query, 0, sizeof(*query));
	query->job_id = job->id;
	query->definition_text = definition;
	query->inputs = (const char *const *)job->inputs.items;
	query->input_count = job->inputs.count;
	query->outputs = (const char *const *)job->outputs.items;
	query->output_count = job->outputs.count;
}

/*
 * One stat per file the jobs name, spread over the CPUs, before the checks
 * read them job by job. `ids` gets the state's number of every path, in job
 * order (inputs then outputs), for the checks to skip the lookup.
 */
static int stat_job_files(struct study *study, uint32_t **ids, struct cp_err *err)
{
	const struct graph *graph = study->graph;
	size_t total = 0;
	for (size_t i = 0; i < graph->count; i++)
		total += graph->jobs[i].inputs.count + graph->jobs[i].outputs.count;
	const char **paths = xcalloc(total + 1, sizeof(*paths));
	size_t n = 0;
	for (size_t i = 0; i < graph->count; i++) {
		const struct graph_job *job = &graph->jobs[i];
		memcpy(paths + n, job->inputs.items, job->inputs.count * sizeof(*paths));
		n += job->inputs.count;
		memcpy(paths + n, job->outputs.items, job->outputs.count * sizeof(*paths));
		n += job->outputs.count;
	}
	*ids = xcalloc(total + 1, sizeof(**ids));
	int rc = state_stat_paths(study->state, paths, n, 0, *ids, err);
	free(paths);
	return rc;
}

/*
 * Whether outputs that exist without a record may be adopted: not when a
 * failed or interrupted attempt could have written them (the database's
 * attempt times), nor when the job's own log shows that cpipe ran it and it
 * did not succeed (the database was lost or deleted after a crash).
 */
static int adoption_allowed(struct study *study, const struct graph_job *job, const struct state_job_query *query,
			    struct strbuf *detail, bool *allowed, struct cp_err *err)
{
	bool suspect;
	if (state_adoption_suspect(study->state, query, &suspect, detail, err) < 0)
		return -1;
	*allowed = !suspect;
	if (suspect)
		return 0;
	struct strbuf log = STRBUF_INIT;
	strbuf_addf(&log, "%s/", EXEC_LOG_DIR);
	exec_job_file_name(job->id, &log);
	strbuf_adds(&log, ".log");
	if (exec_log_ending(log.buf) == EXEC_LOG_UNFINISHED) {
		*allowed = false;
		strbuf_addf(detail, "%s shows a run that did not succeed", log.buf);
	}
	strbuf_release(&log);
	return 0;
}

/* Decide job `i` (its dependencies decided), with `query` filled but for the flags set here. */
static int decide_job(struct study *study, const struct decide_options *opt, struct decision *decisions, size_t i,
		      struct state_job_query *query, struct strbuf *detail, struct cp_err *err)
{
	const struct graph_job *job = &study->graph->jobs[i];
	struct decision *d = &decisions[i];
	query->forced = opt->force_all || (opt->force && job->target);
	query->upstream_runs = false;
	bool blocked = false;
	for (size_t k = 0; k < job->dep_count; k++) {
		enum decision_kind dep = decisions[job->deps[k]].kind;
		query->upstream_runs |= dep == DECISION_RUN;
		blocked |= dep == DECISION_HELD || dep == DECISION_BLOCKED;
	}
	if (state_job_reason(study->state, query, &d->reason, detail, err) < 0)
		return -1;
	if (d->reason == STATE_UP_TO_DATE)
		d->kind = DECISION_UP_TO_DATE;
	else if (d->reason == STATE_RUNNING_ELSEWHERE)
		d->kind = DECISION_HELD;
	else if (d->reason == STATE_NEVER_RECORDED && !opt->rebuild_unknown)
		d->kind = DECISION_ADOPT;
	else
		d->kind = DECISION_RUN;
	if (d->kind == DECISION_ADOPT) {
		bool allowed;
		if (adoption_allowed(study, job, query, detail, &allowed, err) < 0)
			return -1;
		if (!allowed)
			d->kind = DECISION_RUN;
	}
	if (blocked && d->kind == DECISION_RUN)
		d->kind = DECISION_BLOCKED;
	free(d->detail);
	d->detail = xstrdup(detail->buf);
	return 0;
}

int decide_all(struct study *study, const struct decide_options *opt, struct decision **out, struct cp_err *err)
{
	const struct graph *graph = study->graph;
	*out = NULL;
	uint32_t *ids = NULL;
	if (stat_job_files(study, &ids, err) < 0) {
		free(ids);
		return -1;
	}
	cli_phase_done("stat");
	const uint32_t *next_ids = ids;
	struct decision *decisions = xcalloc(graph->count + 1, sizeof(*decisions));
	struct strbuf definition = STRBUF_INIT, detail = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < graph->count && rc == 0; i++) {
		const struct graph_job *job = &graph->jobs[i];
		struct state_job_query query;
		decide_definition_text(job, &definition);
		decide_query(job, definition.buf, &query);
		query.input_ids = next_ids;
		query.output_ids = next_ids + job->inputs.count;
		next_ids += job->inputs.count + job->outputs.count;
		rc = decide_job(study, opt, decisions, i, &query, &detail, err);
	}
	strbuf_release(&definition);
	strbuf_release(&detail);
	free(ids);
	if (rc < 0) {
		decisions_free(decisions, graph->count);
		return -1;
	}
	*out = decisions;
	return 0;
}

int decide_again(struct study *study, const struct decide_options *opt, struct decision *decisions, size_t i,
		 struct cp_err *err)
{
	const struct graph_job *job = &study->graph->jobs[i];
	state_refresh_paths(study->state, (const char *const *)job->inputs.items, job->inputs.count);
	state_refresh_paths(study->state, (const char *const *)job->outputs.items, job->outputs.count);
	struct strbuf definition = STRBUF_INIT, detail = STRBUF_INIT;
	struct state_job_query query;
	decide_definition_text(job, &definition);
	decide_query(job, definition.buf, &query);
	int rc = decide_job(study, opt, decisions, i, &query, &detail, err);
	strbuf_release(&definition);
	strbuf_release(&detail);
	return rc;
}

void decide_select_runs(const struct graph *graph, const struct decision *decisions, struct run_selection *out)
{
	memset(out, 0, sizeof(*out));
	out->exec_index = xcalloc(graph->count + 1, sizeof(*out->exec_index));
	out->graph_index = xcalloc(graph->count + 1, sizeof(*out->graph_index));
	for (size_t i = 0; i < graph->count; i++) {
		if (decisions[i].kind != DECISION_RUN)
			continue;
		out->exec_index[i] = out->count;
		out->graph_index[out->count++] = i;
		out->dep_total += graph->jobs[i].dep_count;
	}
}

void run_selection_release(struct run_selection *selection)
{
	free(selection->exec_index);
	free(selection->graph_index);
	memset(selection, 0, sizeof(*selection));
}

void decisions_free(struct decision *decisions, size_t count)
{
	for (size_t i = 0; decisions && i < count; i++)
		free(decisions[i].detail);
	free(decisions);
}

const char *decision_kind_name(enum decision_kind kind)
{
	switch (kind) {
	case DECISION_UP_TO_DATE: return "up to date";
	case DECISION_RUN: return "run";
	case DECISION_ADOPT: return "adopt";
	case DECISION_HELD: return "held";
	case DECISION_BLOCKED: return "blocked";
	}
	return "?";
}
