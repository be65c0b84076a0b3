/*
 * Unit tests of the plan module: a small job graph (make_a: raw -> a, make_b:
 * a -> b, for one subject) over real files and a real SQLite state in a
 * temporary directory, decided after each change a rerun must see.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cpipe/plan.h"

#include "chain_study.h"
#include "claim_holder.h"

/* The same pipeline with make_b's command edited. */
static const char edited_recipes[] = CHAIN_RECIPES("cat {a} > {b}");

struct fixture {
	struct chain_study study; /* first, for chain_setup_fixture */
	struct plan_decision *decisions;
};

/* Decide every job; the stats go through plan_stat_files. */
static void decide(struct fixture *fx, const struct plan_options *opt)
{
	plan_decisions_free(fx->decisions, fx->study.graph->count);
	uint32_t *ids = NULL;
	assert_int_equal(plan_stat_files(fx->study.graph, fx->study.state, &ids, &fx->study.err), 0);
	assert_int_equal(plan_decide_all(fx->study.graph, fx->study.state, opt, ids, &fx->decisions, &fx->study.err), 0);
	free(ids);
}

static void expect(struct fixture *fx, size_t job, enum plan_action action, enum state_reason reason)
{
	const struct plan_decision *d = &fx->decisions[job];
	if (d->action != action || d->reason != reason)
		fail_msg("%s: %s (%s: %s), expected %s (%s)", fx->study.graph->jobs[job].id, plan_action_name(d->action),
			 state_reason_string(d->reason), d->detail, plan_action_name(action),
			 state_reason_string(reason));
}

/* Run job `i` as cpipe would: write its outputs, then record its success. */
static void record_run(struct fixture *fx, size_t i)
{
	const struct graph_job *job = &fx->study.graph->jobs[i];
	for (size_t k = 0; k < job->outputs.count; k++)
		chain_write_file(job->outputs.items[k], "made\n", 2000000);
	struct strbuf definition = STRBUF_INIT;
	struct state_job_query query;
	plan_job_query(job, &definition, &query);
	assert_int_equal(state_record_success_stat(fx->study.state, &query, NULL, &fx->study.err), 0);
	strbuf_release(&definition);
}

/* Both jobs run once: the study is up to date. */
static void make_all(struct fixture *fx)
{
	record_run(fx, MAKE_A);
	record_run(fx, MAKE_B);
	chain_reopen_state(&fx->study);
}

static int setup(void **vstate)
{
	return chain_setup_fixture(vstate, sizeof(struct fixture));
}

static int teardown(void **vstate)
{
	struct fixture *fx = *vstate;
	if (fx->study.graph)
		plan_decisions_free(fx->decisions, fx->study.graph->count);
	chain_teardown(&fx->study);
	free(fx);
	return 0;
}

static void test_nothing_made_yet(void **vstate)
{
	struct fixture *fx = *vstate;
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_OUTPUT_MISSING);
	assert_string_equal(fx->decisions[MAKE_A].detail, "sub-01/a.txt");
	expect(fx, MAKE_B, PLAN_RUN, STATE_OUTPUT_MISSING);
}

static void test_up_to_date(void **vstate)
{
	struct fixture *fx = *vstate;
	make_all(fx);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
	expect(fx, MAKE_B, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
	/* Without plan_stat_files' numbers the decisions are the same. */
	plan_decisions_free(fx->decisions, fx->study.graph->count);
	assert_int_equal(plan_decide_all(fx->study.graph, fx->study.state, &opt, NULL, &fx->decisions, &fx->study.err), 0);
	expect(fx, MAKE_B, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
}

static void test_output_missing(void **vstate)
{
	struct fixture *fx = *vstate;
	make_all(fx);
	assert_int_equal(unlink("sub-01/b.txt"), 0);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
	expect(fx, MAKE_B, PLAN_RUN, STATE_OUTPUT_MISSING);
	assert_string_equal(fx->decisions[MAKE_B].detail, "sub-01/b.txt");
}

/* A changed raw input reruns its job, and the job after it because its upstream runs. */
static void test_input_changed_runs_downstream(void **vstate)
{
	struct fixture *fx = *vstate;
	make_all(fx);
	chain_write_file("sub-01/raw.txt", "new raw data\n", 3000000);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_INPUT_CHANGED);
	assert_string_equal(fx->decisions[MAKE_A].detail, "sub-01/raw.txt");
	expect(fx, MAKE_B, PLAN_RUN, STATE_UPSTREAM_RUNS);
}

/*
 * Early cutoff: make_b runs only because make_a runs, so it is conditional, and said so; once
 * make_a has rewritten a.txt as it was, the check finds make_b up to date, and after a real
 * change it runs. A deleted a.txt is pending for make_b, not a changed input.
 */
static void test_conditional(void **vstate)
{
	struct fixture *fx = *vstate;
	make_all(fx);
	chain_write_file("sub-01/raw.txt", "new raw data\n", 3000000);
	struct plan_options opt = {0};
	decide(fx, &opt);
	assert_false(fx->decisions[MAKE_A].conditional);
	assert_true(fx->decisions[MAKE_B].conditional);
	assert_int_equal(fx->decisions[MAKE_B].trigger, MAKE_A);
	assert_int_equal(fx->decisions[MAKE_B].trigger_count, 1);
	struct strbuf text = STRBUF_INIT;
	plan_describe(fx->study.graph, fx->decisions, MAKE_B, &text);
	assert_string_equal(text.buf, "runs if make_a[subject=01] changes its output");
	strbuf_reset(&text);
	plan_describe(fx->study.graph, fx->decisions, MAKE_A, &text);
	assert_string_equal(text.buf, "input changed: sub-01/raw.txt");

	/* make_a reruns and writes a.txt as it was ("made\n"), with a new mtime. */
	record_run(fx, MAKE_A);
	chain_write_file("sub-01/a.txt", "made\n", 4000000);
	enum state_reason reason;
	assert_int_equal(plan_cutoff_check(fx->study.graph, fx->study.state, MAKE_B, &reason, NULL, &fx->study.err), 0);
	assert_int_equal(reason, STATE_UP_TO_DATE);
	chain_write_file("sub-01/a.txt", "made otherwise\n", 5000000);
	strbuf_reset(&text);
	assert_int_equal(plan_cutoff_check(fx->study.graph, fx->study.state, MAKE_B, &reason, &text, &fx->study.err), 0);
	assert_int_equal(reason, STATE_INPUT_CHANGED);
	assert_string_equal(text.buf, "sub-01/a.txt");

	/* Deleted, a.txt is remade by make_a: make_b waits for it. */
	assert_int_equal(unlink("sub-01/a.txt"), 0);
	state_refresh(fx->study.state);
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_OUTPUT_MISSING);
	expect(fx, MAKE_B, PLAN_RUN, STATE_UPSTREAM_RUNS);
	assert_true(fx->decisions[MAKE_B].conditional);
	/* Forced jobs are never conditional. */
	opt.force_all = true;
	decide(fx, &opt);
	assert_false(fx->decisions[MAKE_B].conditional);
	strbuf_release(&text);
}

static void test_command_changed(void **vstate)
{
	struct fixture *fx = *vstate;
	make_all(fx);
	uint64_t before = plan_definition_hash(&fx->study.graph->jobs[MAKE_B], NULL);
	/* A command the caller expanded already hashes as the one plan expands itself. */
	char *command = graph_job_command_dup(&fx->study.graph->jobs[MAKE_B]);
	assert_true(plan_definition_hash(&fx->study.graph->jobs[MAKE_B], command) == before);
	assert_true(plan_definition_hash(&fx->study.graph->jobs[MAKE_B], "true") != before);
	free(command);
	chain_build(&fx->study, edited_recipes);
	assert_true(plan_definition_hash(&fx->study.graph->jobs[MAKE_B], NULL) != before);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
	expect(fx, MAKE_B, PLAN_RUN, STATE_COMMAND_CHANGED);
}

/* --force reruns the jobs making the targets; --force-all every job. */
static void test_forced(void **vstate)
{
	struct fixture *fx = *vstate;
	make_all(fx);
	struct plan_options opt = {.force = true};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
	expect(fx, MAKE_B, PLAN_RUN, STATE_FORCED);
	opt = (struct plan_options){.force_all = true};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_FORCED);
	expect(fx, MAKE_B, PLAN_RUN, STATE_FORCED);
}

static bool log_shows_failure(const struct graph_job *job, struct strbuf *detail, void *context)
{
	const char *failed_job = context;
	if (strcmp(job->id, failed_job))
		return false;
	strbuf_adds(detail, "its log shows a failed run");
	return true;
}

/* Outputs without a record are adopted, unless --rebuild-unknown or the caller saw a failed run. */
static void test_adopt_or_rebuild_unknown(void **vstate)
{
	struct fixture *fx = *vstate;
	chain_write_file("sub-01/a.txt", "made elsewhere\n", 2000000);
	chain_write_file("sub-01/b.txt", "made elsewhere\n", 2000000);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_ADOPT, STATE_NEVER_RECORDED);
	expect(fx, MAKE_B, PLAN_ADOPT, STATE_NEVER_RECORDED);

	opt = (struct plan_options){.rebuild_unknown = true};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_NEVER_RECORDED);
	expect(fx, MAKE_B, PLAN_RUN, STATE_NEVER_RECORDED);

	opt = (struct plan_options){.failed_run_seen = log_shows_failure, .context = (void *)"make_b[subject=01]"};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_ADOPT, STATE_NEVER_RECORDED);
	expect(fx, MAKE_B, PLAN_RUN, STATE_NEVER_RECORDED);
	assert_string_equal(fx->decisions[MAKE_B].detail, "its log shows a failed run");

	/* Outputs written while a job failed are not adopted either. */
	int64_t now = state_now_ns();
	struct state_attempt failed = {.exit_code = 1, .start_ns = now - 2000000000LL, .end_ns = now};
	assert_int_equal(state_record_failure(fx->study.state, "other/job", &failed, &fx->study.err), 0);
	chain_write_file("sub-01/a.txt", "partial\n", now / 1000000000 - 1);
	chain_reopen_state(&fx->study);
	opt = (struct plan_options){0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_NEVER_RECORDED);
	assert_non_null(strstr(fx->decisions[MAKE_A].detail, "was written while a job failed or was interrupted"));
}

/* A job another live run has claimed is held; a job needing it is blocked, not run. */
static void test_held_and_blocked(void **vstate)
{
	struct fixture *fx = *vstate;
	struct claim_holder holder;
	claim_holder_start(&holder, ".", "make_a[subject=01]", NULL);
	chain_reopen_state(&fx->study);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_HELD, STATE_RUNNING_ELSEWHERE);
	expect(fx, MAKE_B, PLAN_BLOCKED, STATE_OUTPUT_MISSING);

	struct plan_runs runs;
	plan_select_runs(fx->study.graph, fx->decisions, &runs);
	assert_int_equal(runs.count, 0);
	plan_runs_release(&runs);

	claim_holder_stop(&holder);
}

/* The jobs that run are numbered for a backend in graph order. */
static void test_select_runs(void **vstate)
{
	struct fixture *fx = *vstate;
	record_run(fx, MAKE_A);
	chain_reopen_state(&fx->study);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
	expect(fx, MAKE_B, PLAN_RUN, STATE_OUTPUT_MISSING);
	struct plan_runs runs;
	plan_select_runs(fx->study.graph, fx->decisions, &runs);
	assert_int_equal(runs.count, 1);
	assert_int_equal(runs.graph_index[0], MAKE_B);
	assert_int_equal(runs.exec_index[MAKE_B], 0);
	assert_int_equal(runs.dep_total, 1);
	plan_runs_release(&runs);
	assert_string_equal(plan_action_name(PLAN_ADOPT), "adopt");
}

/* A job decided again after another run finished it sees its new record. */
static void test_decide_again(void **vstate)
{
	struct fixture *fx = *vstate;
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_OUTPUT_MISSING);
	record_run(fx, MAKE_A);
	assert_int_equal(plan_decide_again(fx->study.graph, fx->study.state, &opt, fx->decisions, MAKE_A, &fx->study.err), 0);
	expect(fx, MAKE_A, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nothing_made_yet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_up_to_date, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_changed_runs_downstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conditional, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_or_rebuild_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_and_blocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_select_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decide_again, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
