/*
 * Unit tests for state_jobs_settled: the checks that threads run at once
 * without writing, against state_job_reason on the same jobs. Real SQLite
 * databases and real files in a temporary directory.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpipe/state.h"
#include "test_helpers.h"

/* More jobs than one thread of state_jobs_settled takes, so that two threads share them. */
enum { JOBS = 1500 };

/* Job i reads paths[2i] and writes paths[2i + 1]; what was done to it since its record is `i % 7` (see kinds). */
struct study {
	char dir[64];
	struct state *state;
	char *paths[2 * JOBS];
	char *job_ids[JOBS];
	const char *definitions[JOBS];
	bool forced[JOBS];
	uint32_t ids[2 * JOBS];
};

enum kind {
	KIND_SETTLED,          /* untouched */
	KIND_SAME_SIZE_EDIT,   /* input rewritten with other content of the same size: a hash says so */
	KIND_TOUCHED,          /* input's mtime only: a hash finds it unchanged, which a peek cannot do */
	KIND_OUTPUT_GONE,      /* output deleted */
	KIND_COMMAND_CHANGED,  /* another definition */
	KIND_FORCED,           /* --force */
	KIND_NEVER_RECORDED,   /* another job id */
	KIND_COUNT
};

static void set_mtime(const char *path, time_t seconds)
{
	struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static struct state_job_query query_of(struct study *study, size_t i)
{
	return (struct state_job_query){
		.job_id = study->job_ids[i],
		.definition_hash = state_definition_hash(study->definitions[i]),
		.inputs = (const char *const *)&study->paths[2 * i],
		.input_count = 1,
		.outputs = (const char *const *)&study->paths[2 * i + 1],
		.output_count = 1,
		.forced = study->forced[i],
	};
}

static void fill_query(void *context, size_t i, struct strbuf *definition, struct state_job_query *query)
{
	struct study *study = context;
	*query = query_of(study, i);
	strbuf_reset(definition);
	strbuf_adds(definition, study->definitions[i]);
	query->definition_hash = state_definition_hash(definition->buf); /* from the thread's own buffer, as the caller's */
	query->input_ids = &study->ids[2 * i];
	query->output_ids = &study->ids[2 * i + 1];
}

static int setup(void **vstate)
{
	struct study *study = xcalloc(1, sizeof(*study));
	snprintf(study->dir, sizeof(study->dir), "/tmp/cpipe-settled-XXXXXX");
	if (!mkdtemp(study->dir))
		return -1;
	struct cp_err err = CP_ERR_INIT;
	if (state_open(study->dir, &study->state, &err) != 0)
		fail_msg("state_open: %s", err.message);
	assert_int_equal(state_begin(study->state, &err), 0);
	for (size_t i = 0; i < JOBS; i++) {
		study->paths[2 * i] = xasprintf("%s/in%zu", study->dir, i);
		study->paths[2 * i + 1] = xasprintf("%s/out%zu", study->dir, i);
		study->job_ids[i] = xasprintf("copy/i=%zu", i);
		study->definitions[i] = "copy";
		write_text(study->paths[2 * i], "input\n");
		write_text(study->paths[2 * i + 1], "output\n");
		set_mtime(study->paths[2 * i], 1000000);
		set_mtime(study->paths[2 * i + 1], 2000000);
		struct state_job_query query = query_of(study, i);
		if (state_record_success_stat(study->state, &query, NULL, &err) != 0)
			fail_msg("state_record_success_stat: %s", err.message);
	}
	assert_int_equal(state_commit(study->state, &err), 0);
	cp_err_release(&err);
	*vstate = study;
	return 0;
}

static int teardown(void **vstate)
{
	struct study *study = *vstate;
	state_close(study->state);
	remove_tree(study->dir);
	for (size_t i = 0; i < JOBS; i++) {
		free(study->paths[2 * i]);
		free(study->paths[2 * i + 1]);
		free(study->job_ids[i]);
	}
	free(study);
	return 0;
}

static void change(struct study *study, size_t i)
{
	switch ((enum kind)(i % KIND_COUNT)) {
	case KIND_SETTLED: break;
	case KIND_SAME_SIZE_EDIT:
		write_text(study->paths[2 * i], "INPUT\n");
		set_mtime(study->paths[2 * i], 1500000);
		break;
	case KIND_TOUCHED: set_mtime(study->paths[2 * i], 1500000); break;
	case KIND_OUTPUT_GONE: assert_int_equal(unlink(study->paths[2 * i + 1]), 0); break;
	case KIND_COMMAND_CHANGED: study->definitions[i] = "copy twice"; break;
	case KIND_FORCED: study->forced[i] = true; break;
	case KIND_NEVER_RECORDED:
		free(study->job_ids[i]);
		study->job_ids[i] = xasprintf("copy/never=%zu", i);
		break;
	case KIND_COUNT: break;
	}
}

static const enum state_reason kind_reason[KIND_COUNT] = {
	[KIND_SETTLED] = STATE_UP_TO_DATE,
	[KIND_SAME_SIZE_EDIT] = STATE_INPUT_CHANGED,
	[KIND_TOUCHED] = STATE_UP_TO_DATE,
	[KIND_OUTPUT_GONE] = STATE_OUTPUT_MISSING,
	[KIND_COMMAND_CHANGED] = STATE_COMMAND_CHANGED,
	[KIND_FORCED] = STATE_FORCED,
	[KIND_NEVER_RECORDED] = STATE_NEVER_RECORDED,
};

static uint64_t hashes_computed(struct state *state)
{
	struct state_stats stats;
	state_stats(state, &stats);
	return stats.hashes_computed;
}

/*
 * Settled exactly when state_job_reason finds the job up to date without a
 * hash; the peeks, two threads at once, hash nothing (a touched input is left
 * to state_job_reason, whose hash then finds it unchanged).
 */
static void test_settled_matches_reason(void **vstate)
{
	struct study *study = *vstate;
	struct cp_err err = CP_ERR_INIT;
	for (size_t i = 0; i < JOBS; i++)
		change(study, i);
	state_refresh(study->state);
	assert_int_equal(state_stat_paths(study->state, (const char *const *)study->paths, 2 * JOBS, 2, study->ids, &err),
			 0);

	bool *settled = xcalloc(JOBS, sizeof(*settled));
	uint64_t hashes = hashes_computed(study->state);
	state_jobs_settled(study->state, JOBS, fill_query, study, 2, settled);
	assert_int_equal(hashes_computed(study->state), hashes);

	size_t touched = 0;
	for (size_t i = 0; i < JOBS; i++) {
		enum kind kind = (enum kind)(i % KIND_COUNT);
		struct state_job_query query = query_of(study, i);
		query.input_ids = &study->ids[2 * i];
		query.output_ids = &study->ids[2 * i + 1];
		enum state_reason reason;
		assert_int_equal(state_job_reason(study->state, &query, &reason, NULL, &err), 0);
		assert_int_equal(reason, kind_reason[kind]);
		assert_int_equal(settled[i], kind == KIND_SETTLED);
		touched += kind == KIND_TOUCHED || kind == KIND_SAME_SIZE_EDIT;
	}
	assert_int_equal(hashes_computed(study->state), hashes + touched);
	free(settled);
	cp_err_release(&err);
}

static void fill_query_without_ids(void *context, size_t i, struct strbuf *definition, struct state_job_query *query)
{
	fill_query(context, i, definition, query);
	query->input_ids = query->output_ids = NULL;
}

/* A claim (even this run's own) and a query without ids are left to state_job_reason. */
static void test_claim_and_no_ids_not_settled(void **vstate)
{
	struct study *study = *vstate;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(state_claim_job(study->state, study->job_ids[0], NULL, &err), 0);
	assert_int_equal(state_stat_paths(study->state, (const char *const *)study->paths, 2 * JOBS, 1, study->ids, &err),
			 0);
	bool *settled = xcalloc(JOBS, sizeof(*settled));
	state_jobs_settled(study->state, JOBS, fill_query, study, 1, settled);
	assert_false(settled[0]);
	assert_true(settled[KIND_COUNT]);
	state_jobs_settled(study->state, JOBS, fill_query_without_ids, study, 1, settled);
	for (size_t i = 0; i < JOBS; i++)
		assert_false(settled[i]);
	free(settled);
	cp_err_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_settled_matches_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_and_no_ids_not_settled, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
