/*
 * Unit tests for the state's compact records in memory: attempt facts that
 * rows share, claims loaded in a pass of their own, name indexes that grow past the size they were loaded at, and
 * row ids beyond what the records can hold. Real SQLite databases in a
 * temporary directory per test.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cpipe/state.h"
#include "test_helpers.h"

static struct state *open_in(const char *dir)
{
	struct state *state = NULL;
	struct cp_err err = CP_ERR_INIT;
	if (state_open(dir, &state, &err) != 0)
		fail_msg("state_open: %s", err.message);
	cp_err_release(&err);
	return state;
}

static void record_done(struct state *state, const char *job_id, const char *output,
			const struct state_attempt *attempt)
{
	struct state_file file = {output, {.exists = true, .size = 3, .mtime_ns = 1000, .hash = 7, .hashed = true}};
	struct state_outcome outcome = {
		.job_id = job_id,
		.definition_hash = 1,
		.outputs = &file,
		.output_count = 1,
		.attempt = *attempt,
	};
	struct cp_err err = CP_ERR_INIT;
	if (state_record_success(state, &outcome, &err) != 0)
		fail_msg("state_record_success: %s", err.message);
	cp_err_release(&err);
}

static struct state_job_record lookup(struct state *state, const char *job_id)
{
	struct state_job_record record;
	assert_true(state_job_lookup(state, job_id, &record));
	return record;
}

static void assert_first_attempt(struct state *state, const struct state_job_record *record)
{
	assert_int_equal(record->status, STATE_STATUS_DONE);
	assert_int_equal(record->exit_code, 0);
	assert_int_equal(record->start_ns, 5);
	assert_int_equal(record->end_ns, 6);
	assert_string_equal(record->host, "node1");
	assert_int_equal(record->pid, 42);
	assert_job_log(state, record->job_id, NULL);
	assert_null(record->holder_run);
}

/* Rows with the same attempt facts share them in memory; changing one job's leaves the other's as they were. */
static void test_shared_attempt_stays_per_job(void **vstate)
{
	const char *dir = *vstate;
	struct state *state = open_in(dir);
	struct state_attempt first = {.exit_code = 0, .start_ns = 5, .end_ns = 6, .host = "node1", .pid = 42};
	record_done(state, "r/a", "a.txt", &first);
	record_done(state, "r/b", "b.txt", &first);
	record_done(state, "r/c", "c.txt", &first);
	state_close(state);

	state = open_in(dir);
	struct cp_err err = CP_ERR_INIT;
	struct state_attempt failed = {.exit_code = 3, .start_ns = 7, .end_ns = 8, .host = "node2", .pid = 43,
				       .log_path = "/logs/a.log"};
	assert_int_equal(state_record_failure(state, "r/a", &failed, &err), 0);
	struct state_job_record a = lookup(state, "r/a");
	assert_int_equal(a.status, STATE_STATUS_FAILED);
	assert_int_equal(a.exit_code, 3);
	assert_int_equal(a.start_ns, 7);
	assert_string_equal(a.host, "node2");
	assert_job_log(state, "r/a", "/logs/a.log");
	struct state_job_record b = lookup(state, "r/b");
	assert_first_attempt(state, &b);

	/* A claim is the job's own too, and its release gives back the attempt's facts. */
	assert_int_equal(state_claim_job(state, "r/b", "/logs/b.log", &err), 0);
	b = lookup(state, "r/b");
	assert_int_equal(b.status, STATE_STATUS_RUNNING);
	assert_job_log(state, "r/b", "/logs/b.log");
	assert_string_equal(b.holder_run, state_run_id(state));
	struct state_job_record c = lookup(state, "r/c");
	assert_first_attempt(state, &c);
	assert_int_equal(state_release_claim(state, "r/b", &err), 0);
	b = lookup(state, "r/b");
	assert_first_attempt(state, &b);
	state_close(state);

	state = open_in(dir);
	a = lookup(state, "r/a");
	assert_int_equal(a.status, STATE_STATUS_FAILED);
	assert_int_equal(a.exit_code, 3);
	assert_int_equal(a.end_ns, 8);
	b = lookup(state, "r/b");
	assert_first_attempt(state, &b);
	c = lookup(state, "r/c");
	assert_first_attempt(state, &c);
	state_close(state);
	cp_err_release(&err);
}

enum { CLAIM_JOBS = 12 };

/*
 * Claims loaded at open land on their own jobs, each with its own holder and
 * log, among unclaimed jobs before, between and after them (the load reads a
 * claim's details in a pass of its own over the claimed rows).
 */
static void test_claims_load_on_their_jobs(void **vstate)
{
	const char *dir = *vstate;
	static const bool claimed[CLAIM_JOBS] = {false, true, true, false, false, true,
						 false, false, false, false, true, true};
	struct state *state = open_in(dir);
	struct cp_err err = CP_ERR_INIT;
	struct state_attempt first = {.exit_code = 0, .start_ns = 5, .end_ns = 6, .host = "node1", .pid = 42};
	char job[32], text[64];
	for (size_t i = 0; i < CLAIM_JOBS; i++) {
		snprintf(job, sizeof(job), "r/%zu", i);
		snprintf(text, sizeof(text), "out%zu.txt", i);
		/* Every third claimed job has no record: its row is the claim's. */
		if (i % 3)
			record_done(state, job, text, &first);
	}
	for (size_t i = 0; i < CLAIM_JOBS; i++) {
		if (!claimed[i])
			continue;
		snprintf(job, sizeof(job), "r/%zu", i);
		snprintf(text, sizeof(text), "run-%zu", i);
		char host[32];
		snprintf(host, sizeof(host), "host%zu", i);
		state_set_identity(state, text, host, (int64_t)(100000 + i));
		snprintf(text, sizeof(text), "/logs/%zu.log", i);
		assert_int_equal(state_claim_job(state, job, text, &err), 0);
	}
	state_close(state);

	state = open_in(dir);
	for (size_t i = 0; i < CLAIM_JOBS; i++) {
		snprintf(job, sizeof(job), "r/%zu", i);
		struct state_job_record record;
		bool known = state_job_lookup(state, job, &record);
		assert_int_equal(known, i % 3 || claimed[i]);
		if (!known)
			continue;
		if (!claimed[i]) {
			assert_first_attempt(state, &record);
			continue;
		}
		assert_int_equal(record.status, STATE_STATUS_RUNNING);
		snprintf(text, sizeof(text), "run-%zu", i);
		assert_string_equal(record.holder_run, text);
		snprintf(text, sizeof(text), "host%zu", i);
		assert_string_equal(record.holder_host, text);
		assert_int_equal(record.holder_pid, 100000 + i);
		snprintf(text, sizeof(text), "/logs/%zu.log", i);
		assert_job_log(state, job, text);
	}
	state_close(state);
	cp_err_release(&err);
}

enum { GROWTH_PATHS = 5000 };

static char **numbered_paths(const char *dir, const char *prefix, size_t count)
{
	char **paths = calloc(count, sizeof(*paths));
	assert_non_null(paths);
	for (size_t i = 0; i < count; i++)
		paths[i] = xasprintf("%s/%s%zu", dir, prefix, i);
	return paths;
}

static void free_paths(char **paths, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(paths[i]);
	free(paths);
}

/* Ids of `paths` from state_stat_paths; each must be distinct. */
static uint32_t *path_ids(struct state *state, char **paths, size_t count)
{
	uint32_t *ids = calloc(count, sizeof(*ids));
	assert_non_null(ids);
	struct cp_err err = CP_ERR_INIT;
	if (state_stat_paths(state, (const char *const *)paths, count, 1, ids, &err) != 0)
		fail_msg("state_stat_paths: %s", err.message);
	cp_err_release(&err);
	return ids;
}

/* The file index, loaded at its exact size, keeps finding every path while thousands more are added. */
static void test_index_grows_past_load(void **vstate)
{
	const char *dir = *vstate;
	struct state *state = open_in(dir);
	char **old = numbered_paths(dir, "old", GROWTH_PATHS);
	struct state_attempt attempt = {.host = "node1", .pid = 1};
	/* Recorded paths get rows, so the next open loads them. */
	for (size_t i = 0; i < GROWTH_PATHS; i += 500)
		record_done(state, old[i], old[i], &attempt);
	state_close(state);

	state = open_in(dir);
	char **fresh = numbered_paths(dir, "new", GROWTH_PATHS);
	uint32_t *old_ids = path_ids(state, old, GROWTH_PATHS);
	uint32_t *fresh_ids = path_ids(state, fresh, GROWTH_PATHS);
	uint32_t *old_again = path_ids(state, old, GROWTH_PATHS);
	uint32_t *fresh_again = path_ids(state, fresh, GROWTH_PATHS);
	assert_memory_equal(old_ids, old_again, GROWTH_PATHS * sizeof(*old_ids));
	assert_memory_equal(fresh_ids, fresh_again, GROWTH_PATHS * sizeof(*fresh_ids));
	unsigned char *used = calloc(2 * GROWTH_PATHS + 1, 1);
	assert_non_null(used);
	for (size_t i = 0; i < GROWTH_PATHS; i++) {
		assert_true(old_ids[i] < 2 * GROWTH_PATHS && fresh_ids[i] < 2 * GROWTH_PATHS);
		assert_false(used[old_ids[i]]);
		used[old_ids[i]] = 1;
		assert_false(used[fresh_ids[i]]);
		used[fresh_ids[i]] = 1;
	}
	for (size_t i = 0; i < GROWTH_PATHS; i += 500) {
		struct state_job_record record = lookup(state, old[i]);
		assert_int_equal(record.output_count, 1);
	}
	free(used);
	free(old_ids);
	free(fresh_ids);
	free(old_again);
	free(fresh_again);
	free_paths(old, GROWTH_PATHS);
	free_paths(fresh, GROWTH_PATHS);
	state_close(state);
}

/* Open the state after running `sql` on its (existing) database: it must fail with `message`. */
static void assert_open_refused_after(const char *dir, const char *sql, const char *message)
{
	char *path = xasprintf("%s/.cpipe/state.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(path);
	struct state *state = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(state_open(dir, &state, &err), STATE_ERROR);
	assert_null(state);
	if (!strstr(err.message, message))
		fail_msg("expected \"%s\" in: %s", message, err.message);
	cp_err_release(&err);
}

/* A row id past what a record holds is refused with a message, not loaded into a table of its size. */
static void test_row_ids_beyond_records(void **vstate)
{
	const char *dir = *vstate;
	state_close(open_in(dir));
	assert_open_refused_after(dir, "INSERT INTO files (id, path, size, mtime_ns) VALUES (1073741824, 'x', 0, 0)",
				  "row ids up to 1073741824, more than cpipe can load");
	assert_open_refused_after(dir,
				  "DELETE FROM files; INSERT INTO files (id, path, size, mtime_ns) VALUES (-5, 'x', 0, 0)",
				  "file row id -5 out of range; the state database is damaged");
}

static int setup(void **vstate)
{
	return temp_dir_setup(vstate, "/tmp/cpipe-state-records-XXXXXX");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shared_attempt_stays_per_job, setup, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_claims_load_on_their_jobs, setup, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_index_grows_past_load, setup, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_row_ids_beyond_records, setup, temp_dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
