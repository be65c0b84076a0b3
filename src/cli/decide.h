/*
 * Deciding, job by job in dependency order, which jobs of a study run and why:
 * shared by `run`, `plan` and `status`.
 */
#ifndef CPIPE_CLI_DECIDE_H
#define CPIPE_CLI_DECIDE_H

#include "study.h"

enum decision_kind {
	DECISION_UP_TO_DATE,
	DECISION_RUN,
	DECISION_ADOPT,   /* outputs exist with no record, and no failed or crashed run wrote them: taken as up to date */
	DECISION_HELD,    /* another live run holds it */
	DECISION_BLOCKED, /* a job it depends on is held */
};

struct decision {
	enum decision_kind kind;
	enum state_reason reason;
	char *detail;
};

struct decide_options {
	bool force;           /* run the jobs making the requested targets */
	bool force_all;       /* run every job of the graph */
	bool rebuild_unknown; /* run jobs whose outputs exist without a record instead of adopting them */
};

/* Everything that defines a job's result for the state database: the command and the recipe. */
void decide_definition_text(const struct graph_job *job, struct strbuf *out);

/* Fill `query` for `job` (pointers borrow from job and `definition`). */
void decide_query(const struct graph_job *job, const char *definition, struct state_job_query *query);

/* Decide every job of study->graph; `out` gets graph->count entries (decisions_free). -1 on error. */
int decide_all(struct study *study, const struct decide_options *opt, struct decision **out, struct cp_err *err);

/*
 * Decide job `i` again with fresh stats of its files (its record was just
 * reloaded: state_claim_job said STATE_CHANGED). -1 on error.
 */
int decide_again(struct study *study, const struct decide_options *opt, struct decision *decisions, size_t i,
		 struct cp_err *err);

void decisions_free(struct decision *decisions, size_t count);

/*
 * The jobs decided DECISION_RUN, numbered in graph order for a backend:
 * `graph_index[e]` is the graph job of backend job e, `exec_index[i]` the
 * backend job of graph job i (valid only for jobs that run), and `dep_total`
 * bounds the dependencies they can have among themselves.
 */
struct run_selection {
	size_t count;
	size_t *graph_index;
	size_t *exec_index;
	size_t dep_total;
};

void decide_select_runs(const struct graph *graph, const struct decision *decisions, struct run_selection *out);
void run_selection_release(struct run_selection *selection);

/* "run", "up to date", "adopt", "held", "blocked". */
const char *decision_kind_name(enum decision_kind kind);

#endif
