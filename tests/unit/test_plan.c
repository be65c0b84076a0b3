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

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char chain_tree[] = "sub-{subject}\n"
				 "    raw.txt (raw)\n"
				 "    a.txt (a)\n"
				 "    b.txt (b)\n";

static const char chain_recipes[] = "recipes:\n"
				    "  - name: make_a\n"
				    "    in: [raw]\n"
				    "    out: [a]\n"
				    "    run: cp {raw} {a}\n"
				    "  - name: make_b\n"
				    "    in: [a]\n"
				    "    out: [b]\n"
				    "    run: cp {a} {b}\n";

/* The same pipeline with make_b's command edited. */
static const char edited_recipes[] = "recipes:\n"
				     "  - name: make_a\n"
				     "    in: [raw]\n"
				     "    out: [a]\n"
				     "    run: cp {raw} {a}\n"
				     "  - name: make_b\n"
				     "    in: [a]\n"
				     "    out: [b]\n"
				     "    run: cat {a} > {b}\n";

enum { MAKE_A, MAKE_B }; /* graph order: dependencies first */

struct fixture {
	char dir[64];
	char previous_dir[4096];
	struct tree *tree;
	struct recipe_set *set;
	struct graph *graph;
	struct glob_result globbed;
	struct state *state;
	struct plan_decision *decisions;
	struct cp_err err;
};

static void write_file(const char *path, const char *text, time_t mtime)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	/* Fixed seconds: a change never depends on the clock's granularity. */
	struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void free_graph(struct fixture *fx)
{
	graph_free(fx->graph);
	fx->graph = NULL;
	glob_result_release(&fx->globbed);
	memset(&fx->globbed, 0, sizeof(fx->globbed));
	if (fx->tree)
		tree_free(fx->tree);
	fx->tree = NULL;
	recipe_set_free(fx->set);
	fx->set = NULL;
}

/* Build the graph of `recipes` for target b over the study in the working directory. */
static void build(struct fixture *fx, const char *recipes)
{
	free_graph(fx);
	assert_int_equal(tree_parse_string(chain_tree, "test.tree", NULL, &fx->tree, &fx->err), 0);
	assert_int_equal(recipe_load_string(recipes, strlen(recipes), "cpipe.yaml", &fx->set, &fx->err), 0);
	struct strvec sources = STRVEC_INIT;
	graph_source_keys(fx->set, &sources);
	struct glob_request request = {(const char *const *)sources.items, sources.count, ".", NULL, NULL, 0, false};
	assert_int_equal(glob_update(fx->tree, &request, &fx->globbed, &fx->err), 0);
	strvec_release(&sources);
	const char *targets[] = {"b"};
	struct graph_request graph_request = {targets, 1, ".", false, &fx->globbed, NULL, false, NULL};
	assert_int_equal(graph_build(fx->tree, fx->set, &graph_request, &fx->graph, &fx->err), 0);
	assert_int_equal(fx->graph->count, 2);
	assert_string_equal(fx->graph->jobs[MAKE_A].id, "make_a[subject=01]");
	assert_string_equal(fx->graph->jobs[MAKE_B].id, "make_b[subject=01]");
}

/* A fresh state handle: reasons see the database as it was at open. */
static void reopen_state(struct fixture *fx)
{
	state_close(fx->state);
	fx->state = NULL;
	assert_int_equal(state_open(".", &fx->state, &fx->err), 0);
}

/* Decide every job; the stats go through plan_stat_files. */
static void decide(struct fixture *fx, const struct plan_options *opt)
{
	plan_decisions_free(fx->decisions, fx->graph->count);
	uint32_t *ids = NULL;
	assert_int_equal(plan_stat_files(fx->graph, fx->state, &ids, &fx->err), 0);
	assert_int_equal(plan_decide_all(fx->graph, fx->state, opt, ids, &fx->decisions, &fx->err), 0);
	free(ids);
}

static void expect(struct fixture *fx, size_t job, enum plan_action action, enum state_reason reason)
{
	const struct plan_decision *d = &fx->decisions[job];
	if (d->action != action || d->reason != reason)
		fail_msg("%s: %s (%s: %s), expected %s (%s)", fx->graph->jobs[job].id, plan_action_name(d->action),
			 state_reason_string(d->reason), d->detail, plan_action_name(action),
			 state_reason_string(reason));
}

/* Run job `i` as cpipe would: write its outputs, then record its success. */
static void record_run(struct fixture *fx, size_t i)
{
	const struct graph_job *job = &fx->graph->jobs[i];
	for (size_t k = 0; k < job->outputs.count; k++)
		write_file(job->outputs.items[k], "made\n", 2000000);
	struct strbuf definition = STRBUF_INIT;
	struct state_job_query query;
	plan_job_query(job, &definition, &query);
	assert_int_equal(state_record_success_stat(fx->state, &query, NULL, &fx->err), 0);
	strbuf_release(&definition);
}

/* Both jobs run once: the study is up to date. */
static void make_all(struct fixture *fx)
{
	record_run(fx, MAKE_A);
	record_run(fx, MAKE_B);
	reopen_state(fx);
}

static int setup(void **vstate)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	strcpy(fx->dir, "/tmp/cpipe-plan-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	assert_non_null(getcwd(fx->previous_dir, sizeof(fx->previous_dir)));
	/* Job paths are relative to the data root, as the command line sees them. */
	assert_int_equal(chdir(fx->dir), 0);
	assert_int_equal(mkdir("sub-01", 0777), 0);
	write_file("sub-01/raw.txt", "raw\n", 1000000);
	build(fx, chain_recipes);
	reopen_state(fx);
	*vstate = fx;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **vstate)
{
	struct fixture *fx = *vstate;
	if (fx->graph)
		plan_decisions_free(fx->decisions, fx->graph->count);
	state_close(fx->state);
	free_graph(fx);
	cp_err_release(&fx->err);
	assert_int_equal(chdir(fx->previous_dir), 0);
	nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
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
	plan_decisions_free(fx->decisions, fx->graph->count);
	assert_int_equal(plan_decide_all(fx->graph, fx->state, &opt, NULL, &fx->decisions, &fx->err), 0);
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
	write_file("sub-01/raw.txt", "new raw data\n", 3000000);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_INPUT_CHANGED);
	assert_string_equal(fx->decisions[MAKE_A].detail, "sub-01/raw.txt");
	expect(fx, MAKE_B, PLAN_RUN, STATE_UPSTREAM_RUNS);
}

static void test_command_changed(void **vstate)
{
	struct fixture *fx = *vstate;
	make_all(fx);
	uint64_t before = plan_definition_hash(&fx->graph->jobs[MAKE_B]);
	build(fx, edited_recipes);
	assert_true(plan_definition_hash(&fx->graph->jobs[MAKE_B]) != before);
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
	write_file("sub-01/a.txt", "made elsewhere\n", 2000000);
	write_file("sub-01/b.txt", "made elsewhere\n", 2000000);
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
	assert_int_equal(state_record_failure(fx->state, "other/job", &failed, &fx->err), 0);
	write_file("sub-01/a.txt", "partial\n", now / 1000000000 - 1);
	reopen_state(fx);
	opt = (struct plan_options){0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_RUN, STATE_NEVER_RECORDED);
	assert_non_null(strstr(fx->decisions[MAKE_A].detail, "was written while a job failed or was interrupted"));
}

/* A job another live run has claimed is held; a job needing it is blocked, not run. */
static void test_held_and_blocked(void **vstate)
{
	struct fixture *fx = *vstate;
	int ready[2], release[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* Another cpipe run: claims make_a, then holds it until told to exit. */
		close(ready[0]);
		close(release[1]);
		struct state *other = NULL;
		struct cp_err child_err = CP_ERR_INIT;
		char status = 'n';
		if (state_open(".", &other, &child_err) == 0 &&
		    state_claim_job(other, "make_a[subject=01]", NULL, &child_err) == 0)
			status = 'y';
		state_close(other);
		if (write(ready[1], &status, 1) != 1)
			_exit(2);
		char byte;
		while (read(release[0], &byte, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	char status = 0;
	assert_int_equal(read(ready[0], &status, 1), 1);
	assert_int_equal(status, 'y');
	reopen_state(fx);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_HELD, STATE_RUNNING_ELSEWHERE);
	expect(fx, MAKE_B, PLAN_BLOCKED, STATE_OUTPUT_MISSING);

	struct plan_runs runs;
	plan_select_runs(fx->graph, fx->decisions, &runs);
	assert_int_equal(runs.count, 0);
	plan_runs_release(&runs);

	close(release[1]);
	close(ready[0]);
	int wstatus;
	assert_int_equal(waitpid(child, &wstatus, 0), child);
	assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
}

/* The jobs that run are numbered for a backend in graph order. */
static void test_select_runs(void **vstate)
{
	struct fixture *fx = *vstate;
	record_run(fx, MAKE_A);
	reopen_state(fx);
	struct plan_options opt = {0};
	decide(fx, &opt);
	expect(fx, MAKE_A, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
	expect(fx, MAKE_B, PLAN_RUN, STATE_OUTPUT_MISSING);
	struct plan_runs runs;
	plan_select_runs(fx->graph, fx->decisions, &runs);
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
	assert_int_equal(plan_decide_again(fx->graph, fx->state, &opt, fx->decisions, MAKE_A, &fx->err), 0);
	expect(fx, MAKE_A, PLAN_UP_TO_DATE, STATE_UP_TO_DATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nothing_made_yet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_up_to_date, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_changed_runs_downstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_or_rebuild_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_and_blocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_select_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decide_again, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
