#include "cpipe/plan.h"

#include <stdlib.h>
#include <string.h>

static void definition_text(const struct graph_job *job, const char *command, struct strbuf *out)
{
	strbuf_reset(out);
	strbuf_adds(out, graph_job_definition(job));
	strbuf_adds(out, "\ncommand:");
	if (command)
		strbuf_adds(out, command);
	else
		graph_job_command(job, out);
}

uint64_t plan_definition_hash(const struct graph_job *job, const char *command)
{
	struct strbuf definition = STRBUF_INIT;
	definition_text(job, command, &definition);
	uint64_t hash = state_definition_hash(definition.buf);
	strbuf_release(&definition);
	return hash;
}

static void fill_query(const struct graph_job *job, uint64_t definition_hash, struct state_job_query *query)
{
	memset(query, 0, sizeof(*query));
	query->job_id = job->id;
	query->definition_hash = definition_hash;
	query->inputs = (const char *const *)job->inputs.items;
	query->input_count = job->inputs.count;
	query->outputs = (const char *const *)job->outputs.items;
	query->output_count = job->outputs.count;
}

void plan_job_query(const struct graph_job *job, struct strbuf *definition, struct state_job_query *query)
{
	definition_text(job, NULL, definition);
	fill_query(job, state_definition_hash(definition->buf), query);
}

/*
 * Job i's query for a decision. A graph from the cache has every job's
 * definition hash (the decisions before it was saved made them): expanding
 * each command again was two thirds of a no-op's decide.
 */
static void decision_query(const struct graph *graph, size_t i, struct strbuf *definition,
			   struct state_job_query *query)
{
	if (graph->definition_hashes)
		fill_query(&graph->jobs[i], graph->definition_hashes[i], query);
	else
		plan_job_query(&graph->jobs[i], definition, query);
}

int plan_stat_files(const struct graph *graph, struct state *state, uint32_t **ids, struct cp_err *err)
{
	size_t total = 0;
	for (size_t i = 0; i < graph->count; i++)
		total += graph->jobs[i].inputs.count + graph->jobs[i].outputs.count;
	*ids = xcalloc(total + 1, sizeof(**ids));
	/* In chunks of jobs: an array of every path would be 8 bytes a path at the run's peak. */
	enum { CHUNK = 1 << 16 };
	const char **paths = NULL;
	size_t n = 0, cap = 0, done = 0;
	int rc = 0;
	for (size_t i = 0; i < graph->count && rc == 0; i++) {
		const struct graph_job *job = &graph->jobs[i];
		ALLOC_GROW(paths, n + job->inputs.count + job->outputs.count + 1, cap);
		memcpy(paths + n, job->inputs.items, job->inputs.count * sizeof(*paths));
		n += job->inputs.count;
		memcpy(paths + n, job->outputs.items, job->outputs.count * sizeof(*paths));
		n += job->outputs.count;
		if (n >= CHUNK || i + 1 == graph->count) {
			rc = state_stat_paths(state, paths, n, 0, *ids + done, err);
			done += n;
			n = 0;
		}
	}
	free(paths);
	return rc;
}

/*
 * Whether outputs that exist without a record may be adopted: not when a
 * failed or interrupted attempt could have written them (the database's
 * attempt times), nor when the caller sees a run that did not succeed (the
 * database was lost or deleted after a crash, but the job's log remains).
 */
static int adoption_allowed(struct state *state, const struct plan_options *opt, const struct graph_job *job,
			    const struct state_job_query *query, struct strbuf *detail, bool *allowed,
			    struct cp_err *err)
{
	bool suspect;
	if (state_adoption_suspect(state, query, &suspect, detail, err) < 0)
		return -1;
	*allowed = !suspect;
	if (!suspect && opt->failed_run_seen && opt->failed_run_seen(job, detail, opt->context))
		*allowed = false;
	return 0;
}

void plan_set_detail(struct plan_decision *d, char *detail)
{
	if (d->detail_owned)
		free(d->detail);
	d->detail = detail;
	d->detail_owned = detail != NULL;
}

/* The job's input or output `path` (the graph's string), or NULL. */
static char *job_path(const struct graph_job *job, const char *path)
{
	const struct graph_paths *roles[] = {&job->outputs, &job->inputs};
	for (size_t r = 0; r < 2; r++)
		for (size_t i = 0; i < roles[r]->count; i++)
			if (!strcmp(roles[r]->items[i], path))
				return roles[r]->items[i];
	return NULL;
}

/* Per input of `job`: whether a job that runs makes it (the jobs making its inputs are its dependencies). */
static bool *inputs_made_by_runs(const struct graph *graph, const struct plan_decision *decisions,
				 const struct graph_job *job)
{
	struct strmap rewritten = STRMAP_INIT_BORROWED;
	for (size_t k = 0; k < job->dep_count; k++) {
		const struct graph_job *dep = &graph->jobs[job->deps[k]];
		for (size_t o = 0; decisions[job->deps[k]].action == PLAN_RUN && o < dep->outputs.count; o++)
			strmap_put(&rewritten, dep->outputs.items[o], 0);
	}
	bool *pending = xcalloc(job->inputs.count + 1, sizeof(*pending));
	for (size_t k = 0; k < job->inputs.count; k++)
		pending[k] = strmap_get(&rewritten, job->inputs.items[k], NULL);
	strmap_release(&rewritten);
	return pending;
}

/* Decide job `i` (its dependencies decided), with `query` filled but for the flags set here. */
static int decide_job(const struct graph *graph, struct state *state, const struct plan_options *opt,
		      struct plan_decision *decisions, size_t i, struct state_job_query *query, struct strbuf *detail,
		      struct cp_err *err)
{
	const struct graph_job *job = &graph->jobs[i];
	struct plan_decision *d = &decisions[i];
	query->forced = opt->force_all || (opt->force && job->target);
	query->upstream_runs = false;
	bool blocked = false;
	d->trigger_count = 0;
	for (size_t k = 0; k < job->dep_count; k++) {
		enum plan_action dep = decisions[job->deps[k]].action;
		if (dep == PLAN_RUN && !d->trigger_count++)
			d->trigger = job->deps[k];
		blocked |= dep == PLAN_HELD || dep == PLAN_BLOCKED;
	}
	query->upstream_runs = d->trigger_count > 0;
	/* An input a job that runs rewrites is not final: how it comes out is for early cutoff to see. */
	bool *pending = d->trigger_count && job->cutoff ? inputs_made_by_runs(graph, decisions, job) : NULL;
	query->input_pending = pending;
	int rc = state_job_reason(state, query, &d->reason, detail, err);
	query->input_pending = NULL;
	free(pending);
	if (rc < 0)
		return -1;
	if (d->reason == STATE_UP_TO_DATE)
		d->action = PLAN_UP_TO_DATE;
	else if (d->reason == STATE_RUNNING_ELSEWHERE)
		d->action = PLAN_HELD;
	else if (d->reason == STATE_NEVER_RECORDED && !opt->rebuild_unknown)
		d->action = PLAN_ADOPT;
	else
		d->action = PLAN_RUN;
	if (d->action == PLAN_ADOPT) {
		bool allowed;
		if (adoption_allowed(state, opt, job, query, detail, &allowed, err) < 0)
			return -1;
		if (!allowed)
			d->action = PLAN_RUN;
	}
	if (blocked && d->action == PLAN_RUN)
		d->action = PLAN_BLOCKED;
	/*
	 * Only a job whose last attempt succeeded: the check that may leave it out compares with that
	 * run (a job that failed since runs whatever its inputs, and a cluster node could not tell).
	 */
	struct state_job_record record;
	d->conditional = d->action == PLAN_RUN && d->reason == STATE_UPSTREAM_RUNS && job->cutoff &&
			 state_job_lookup(state, job->id, &record) && record.recorded &&
			 record.status == STATE_STATUS_DONE;
	/* Most details ("output missing: PATH") name a path of the job, which the graph keeps anyway. */
	plan_set_detail(d, NULL);
	d->detail = detail->len ? job_path(job, detail->buf) : NULL;
	if (!d->detail && detail->len)
		plan_set_detail(d, xstrdup(detail->buf));
	return 0;
}

/* What state_jobs_settled needs to make the queries of plan_decide_all's jobs. */
struct settle_context {
	const struct graph *graph;
	const struct plan_options *opt;
	const uint32_t *ids;
	const size_t *id_offsets; /* job i's ids start at ids + id_offsets[i] */
	struct plan_decision *decisions; /* each thread writes its jobs' definition_hash */
};

static void settle_query(void *context, size_t i, struct strbuf *definition, struct state_job_query *query)
{
	const struct settle_context *settle = context;
	const struct graph_job *job = &settle->graph->jobs[i];
	decision_query(settle->graph, i, definition, query);
	settle->decisions[i].definition_hash = query->definition_hash;
	query->input_ids = settle->ids + settle->id_offsets[i];
	query->output_ids = query->input_ids + job->inputs.count;
	query->forced = settle->opt->force_all || (settle->opt->force && job->target);
}

/* Per job: whether its own check, all threads at once, finds it up to date (see state_jobs_settled). */
static bool *settle_jobs(const struct graph *graph, struct state *state, const struct plan_options *opt,
			 const uint32_t *ids, struct plan_decision *decisions)
{
	size_t *id_offsets = xmalloc((graph->count + 1) * sizeof(*id_offsets));
	size_t offset = 0;
	for (size_t i = 0; i < graph->count; i++) {
		id_offsets[i] = offset;
		offset += graph->jobs[i].inputs.count + graph->jobs[i].outputs.count;
	}
	struct settle_context settle = {
		.graph = graph, .opt = opt, .ids = ids, .id_offsets = id_offsets, .decisions = decisions};
	bool *settled = xcalloc(graph->count + 1, sizeof(*settled));
	state_jobs_settled(state, graph->count, settle_query, &settle, 0, settled);
	free(id_offsets);
	return settled;
}

static bool a_dependency_runs(const struct plan_decision *decisions, const struct graph_job *job)
{
	for (size_t k = 0; k < job->dep_count; k++)
		if (decisions[job->deps[k]].action == PLAN_RUN)
			return true;
	return false;
}

/*
 * With ids, the checks that need no write run first in threads (settle_jobs);
 * then, in job order, a settled job none of whose dependencies runs is up to
 * date, as decide_job would find it, and every other job is decided here.
 */
int plan_decide_all(const struct graph *graph, struct state *state, const struct plan_options *opt,
		    const uint32_t *ids, struct plan_decision **out, struct cp_err *err)
{
	*out = NULL;
	const uint32_t *next_ids = ids;
	struct plan_decision *decisions = xcalloc(graph->count + 1, sizeof(*decisions));
	bool *settled = ids ? settle_jobs(graph, state, opt, ids, decisions) : NULL;
	struct strbuf definition = STRBUF_INIT, detail = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < graph->count && rc == 0; i++) {
		const struct graph_job *job = &graph->jobs[i];
		struct state_job_query query;
		if (settled && settled[i] && !a_dependency_runs(decisions, job)) {
			decisions[i].action = PLAN_UP_TO_DATE;
			decisions[i].reason = STATE_UP_TO_DATE;
			next_ids += job->inputs.count + job->outputs.count;
			continue;
		}
		if (settled) { /* the settle made its hash */
			fill_query(job, decisions[i].definition_hash, &query);
		} else {
			decision_query(graph, i, &definition, &query);
			decisions[i].definition_hash = query.definition_hash;
		}
		if (next_ids) {
			query.input_ids = next_ids;
			query.output_ids = next_ids + job->inputs.count;
			next_ids += job->inputs.count + job->outputs.count;
		}
		rc = decide_job(graph, state, opt, decisions, i, &query, &detail, err);
	}
	free(settled);
	strbuf_release(&definition);
	strbuf_release(&detail);
	if (rc < 0) {
		plan_decisions_free(decisions, graph->count);
		return -1;
	}
	*out = decisions;
	return 0;
}

/* Job i's query, its files to be stat'ed again: jobs that ran since may have rewritten them. */
static void fresh_job_query(const struct graph *graph, struct state *state, size_t i, struct strbuf *definition,
			    struct state_job_query *query)
{
	const struct graph_job *job = &graph->jobs[i];
	state_refresh_paths(state, (const char *const *)job->inputs.items, job->inputs.count);
	state_refresh_paths(state, (const char *const *)job->outputs.items, job->outputs.count);
	plan_job_query(job, definition, query);
}

int plan_decide_again(const struct graph *graph, struct state *state, const struct plan_options *opt,
		      struct plan_decision *decisions, size_t i, struct cp_err *err)
{
	struct strbuf definition = STRBUF_INIT, detail = STRBUF_INIT;
	struct state_job_query query;
	fresh_job_query(graph, state, i, &definition, &query);
	int rc = decide_job(graph, state, opt, decisions, i, &query, &detail, err);
	strbuf_release(&definition);
	strbuf_release(&detail);
	return rc;
}

int plan_cutoff_check(const struct graph *graph, struct state *state, size_t i, enum state_reason *reason,
		      struct strbuf *detail, struct cp_err *err)
{
	struct strbuf definition = STRBUF_INIT;
	struct state_job_query query;
	fresh_job_query(graph, state, i, &definition, &query);
	query.cutoff_check = true;
	int rc = state_job_reason(state, &query, reason, detail, err);
	strbuf_release(&definition);
	return rc;
}

void plan_describe(const struct graph *graph, const struct plan_decision *decisions, size_t i, struct strbuf *out)
{
	const struct plan_decision *d = &decisions[i];
	if (!d->conditional || d->action != PLAN_RUN) {
		state_reason_describe(d->reason, d->detail, out);
		return;
	}
	strbuf_adds(out, "runs if ");
	strbuf_adds(out, graph->jobs[d->trigger].id);
	if (d->trigger_count == 1)
		strbuf_adds(out, " changes its output");
	else
		strbuf_addf(out, " or one of %zu other jobs changes its output", (size_t)d->trigger_count - 1);
}

void plan_select_runs(const struct graph *graph, const struct plan_decision *decisions, struct plan_runs *out)
{
	memset(out, 0, sizeof(*out));
	out->exec_index = xcalloc(graph->count + 1, sizeof(*out->exec_index));
	out->graph_index = xcalloc(graph->count + 1, sizeof(*out->graph_index));
	for (size_t i = 0; i < graph->count; i++) {
		if (decisions[i].action != PLAN_RUN)
			continue;
		out->exec_index[i] = out->count;
		out->graph_index[out->count++] = i;
		out->dep_total += graph->jobs[i].dep_count;
	}
}

void plan_runs_release(struct plan_runs *runs)
{
	free(runs->exec_index);
	free(runs->graph_index);
	memset(runs, 0, sizeof(*runs));
}

void plan_decisions_free(struct plan_decision *decisions, size_t count)
{
	for (size_t i = 0; decisions && i < count; i++)
		plan_set_detail(&decisions[i], NULL);
	free(decisions);
}

const char *plan_action_name(enum plan_action action)
{
	switch (action) {
	case PLAN_UP_TO_DATE: return "up to date";
	case PLAN_RUN: return "run";
	case PLAN_ADOPT: return "adopt";
	case PLAN_HELD: return "held";
	case PLAN_BLOCKED: return "blocked";
	}
	return "?";
}
