/*
 * plan: why each job of a graph runs, or does not. Walks the graph in
 * dependency order and asks the state, job by job, with the text whose hash
 * means "the command changed" (the recipe's definition and the expanded
 * command); turns the state's reason into an action: run, up to date, adopt
 * (outputs that exist without a record), held (another live run has it) or
 * blocked (a job it depends on is held). A job that runs only because jobs
 * it depends on run is conditional (early cutoff): the caller asks again,
 * with plan_cutoff_check, once they have ended. Reads graph and state,
 * writes neither; `run`, `plan` and `status` share it.
 */
#ifndef CPIPE_PLAN_H
#define CPIPE_PLAN_H

#include "cpipe/graph.h"
#include "cpipe/state.h"

enum plan_action {
	PLAN_UP_TO_DATE,
	PLAN_RUN,
	PLAN_ADOPT,   /* outputs exist with no record, and no failed or crashed run wrote them: taken as up to date */
	PLAN_HELD,    /* another live run holds it */
	PLAN_BLOCKED, /* a job it depends on is held */
};

/* One per job, millions in a big study: 32 bytes, and a detail that is one of the job's paths is not copied. */
struct plan_decision {
	/*
	 * The state's detail (a path, a run), or why outputs are not adopted;
	 * NULL when there is none. Set it with plan_set_detail: when it is a
	 * path of the job it points into the graph (detail_owned false).
	 */
	char *detail;
	/*
	 * Early cutoff: PLAN_RUN only because jobs it depends on run
	 * (STATE_UPSTREAM_RUNS) and its recipe allows cutoff; decided again when
	 * they have ended (plan_cutoff_check). `trigger` is the first of those
	 * jobs, `trigger_count` how many there are.
	 */
	uint32_t trigger;
	uint32_t trigger_count;
	enum plan_action action;
	enum state_reason reason;
	bool conditional;
	bool detail_owned; /* detail was allocated for it (plan_decisions_free frees it) */
	/* What plan_definition_hash gives for the job: kept with a graph that is saved (graph_cache_save). */
	uint64_t definition_hash;
};

/* Replace d's detail by `detail` (allocated, or NULL), which d now owns. */
void plan_set_detail(struct plan_decision *d, char *detail);

struct plan_options {
	bool force;           /* run the jobs making the requested targets */
	bool force_all;       /* run every job of the graph */
	bool rebuild_unknown; /* run jobs whose outputs exist without a record instead of adopting them */
	/*
	 * May be NULL. Whether something besides the database (the job's own
	 * log) shows that a run of `job` started and did not succeed, so its
	 * outputs are not adopted; then says what in `detail`. The caller knows
	 * where logs are; this module does not.
	 */
	bool (*failed_run_seen)(const struct graph_job *job, struct strbuf *detail, void *context);
	void *context;
};

/*
 * The hash of everything that defines a job's result (the recipe's definition
 * and the expanded command) as the state records it: when it differs from the
 * recorded one, the command changed. `command` is the job's command when the
 * caller has it expanded already (graph_job_command), or NULL to expand it.
 */
uint64_t plan_definition_hash(const struct graph_job *job, const char *command);

/* Fill `query` for `job` (its definition text goes to `definition`, a scratch buffer); the query borrows from the job. */
void plan_job_query(const struct graph_job *job, struct strbuf *definition, struct state_job_query *query);

/*
 * Stat every file the graph's jobs name, on all CPUs, before the checks read
 * them job by job. *ids (free with free()) gets the state's number of each
 * path, job by job in graph order, inputs then outputs, for plan_decide_all.
 */
int plan_stat_files(const struct graph *graph, struct state *state, uint32_t **ids, struct cp_err *err);

/*
 * Decide every job of `graph`; *out gets graph->count decisions
 * (plan_decisions_free). `ids`: plan_stat_files' numbers, or NULL. -1 on error.
 */
int plan_decide_all(const struct graph *graph, struct state *state, const struct plan_options *opt,
		    const uint32_t *ids, struct plan_decision **out, struct cp_err *err);

/*
 * Decide job `i` again with fresh stats of its files (its record was just
 * reloaded: state_claim_job said STATE_CHANGED). -1 on error.
 */
int plan_decide_again(const struct graph *graph, struct state *state, const struct plan_options *opt,
		      struct plan_decision *decisions, size_t i, struct cp_err *err);

/*
 * Early cutoff: job `i`, decided conditional, whose jobs that ran have all
 * ended. Is it up to date with its files as they are now (fresh stats; this
 * run's claim on it is no reason to run)? *reason gets STATE_UP_TO_DATE when
 * it need not run, else why it runs, with `detail` (may be NULL). -1 on error.
 */
int plan_cutoff_check(const struct graph *graph, struct state *state, size_t i, enum state_reason *reason,
		      struct strbuf *detail, struct cp_err *err);

/*
 * Append why job `i` runs: "runs if JOB changes its output" (or "... or one
 * of N other jobs changes theirs") for a conditional decision, else the
 * state's reason and detail (state_reason_describe).
 */
void plan_describe(const struct graph *graph, const struct plan_decision *decisions, size_t i, struct strbuf *out);

void plan_decisions_free(struct plan_decision *decisions, size_t count);

/*
 * The jobs decided PLAN_RUN, numbered in graph order for a backend:
 * `graph_index[e]` is the graph job of backend job e, `exec_index[i]` the
 * backend job of graph job i (valid only for jobs that run), and `dep_total`
 * bounds the dependencies they can have among themselves.
 */
struct plan_runs {
	size_t count;
	size_t *graph_index;
	size_t *exec_index;
	size_t dep_total;
};

void plan_select_runs(const struct graph *graph, const struct plan_decision *decisions, struct plan_runs *out);
void plan_runs_release(struct plan_runs *runs);

/* "run", "up to date", "adopt", "held", "blocked". */
const char *plan_action_name(enum plan_action action);

#endif
