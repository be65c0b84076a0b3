/*
 * Unit tests for the state's snapshot (src/state_snapshot.c): an open reads
 * it only while the database's generation token is the one it was made
 * under, gives the same records as reading the rows, and falls back to the
 * rows when it is damaged or any writer (here: SQLite directly, as the
 * sqlite3 shell would) changed a row. Real databases in a temporary directory.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cpipe/state.h"
#include "test_helpers.h"

static struct state *open_in(const char *dir, bool *from_snapshot)
{
	struct state *state = NULL;
	struct cp_err err = CP_ERR_INIT;
	if (state_open(dir, &state, &err) != 0)
		fail_msg("state_open: %s", err.message);
	cp_err_release(&err);
	struct state_stats stats;
	state_stats(state, &stats);
	*from_snapshot = stats.snapshot_loaded;
	return state;
}

static void record_done(struct state *state, const char *job_id, const char *input, const char *output,
			const struct state_attempt *attempt, bool hashed)
{
	struct state_file in = {input, {.exists = true, .size = 5, .mtime_ns = -2, .hash = 11, .hashed = hashed}};
	struct state_file out = {output, {.exists = true, .size = 3, .mtime_ns = 1000, .hash = 7, .hashed = true}};
	struct state_outcome outcome = {
		.job_id = job_id,
		.definition_hash = UINT64_MAX - 3,
		.inputs = &in,
		.input_count = 1,
		.outputs = &out,
		.output_count = 1,
		.attempt = *attempt,
	};
	struct cp_err err = CP_ERR_INIT;
	if (state_record_success(state, &outcome, &err) != 0)
		fail_msg("state_record_success: %s", err.message);
	cp_err_release(&err);
}

/* A study's worth of kinds of record: shared and own attempts, a failure, a claim, a forgotten job. */
static void make_records(const char *dir)
{
	bool from_snapshot;
	struct state *state = open_in(dir, &from_snapshot);
	struct cp_err err = CP_ERR_INIT;
	struct state_attempt shared = {.exit_code = 0, .start_ns = 5, .end_ns = 6, .host = "node1", .pid = 42};
	for (int i = 0; i < 40; i++) {
		char job[32], in[32], out[32];
		snprintf(job, sizeof(job), "r/%02d", i);
		snprintf(in, sizeof(in), "in%02d", i % 7);
		snprintf(out, sizeof(out), "out%02d", i);
		struct state_attempt own = {.exit_code = 0, .start_ns = i, .end_ns = 2 * i, .host = "node2",
					    .pid = i, .log_path = out};
		record_done(state, job, in, out, i % 3 ? &shared : &own, i % 2);
	}
	struct state_attempt failed = {.exit_code = 3, .start_ns = 7, .end_ns = 8, .host = "node3", .pid = 43,
				       .log_path = "/logs/f.log"};
	assert_int_equal(state_record_failure(state, "r/05", &failed, &err), 0);
	assert_int_equal(state_claim_job(state, "r/07", "/logs/claim.log", &err), 0);
	const char *forget[] = {"r/09"};
	assert_int_equal(state_forget(state, NULL, forget, 1, NULL, &err), 0);
	state_close(state);
	cp_err_release(&err);
}

static int dump_file(const struct state_file *file, void *data)
{
	strbuf_addf(data, "  %s %d %lld %lld %llu %d\n", file->path, file->signature.exists, (long long)file->signature.size,
		    (long long)file->signature.mtime_ns, (unsigned long long)file->signature.hash, file->signature.hashed);
	return 0;
}

struct dump {
	struct state *state;
	struct strbuf text;
};

static int dump_job(const struct state_job_record *r, void *data)
{
	struct dump *dump = data;
	struct strbuf log = STRBUF_INIT;
	if (!state_job_log(dump->state, r->job_id, &log))
		strbuf_adds(&log, "-");
	strbuf_addf(&dump->text, "%s %d %d %d %llu %llu %zu %zu %d %lld %lld %s %lld %s %s %s %s %lld\n", r->job_id,
		    (int)r->status, r->recorded, r->adopted, (unsigned long long)r->definition_hash,
		    (unsigned long long)r->input_set_hash, r->input_count, r->output_count, r->exit_code,
		    (long long)r->start_ns, (long long)r->end_ns, r->host ? r->host : "-", (long long)r->pid,
		    r->run_id ? r->run_id : "-", log.buf, r->holder_run ? r->holder_run : "-",
		    r->holder_host ? r->holder_host : "-", (long long)r->holder_pid);
	strbuf_release(&log);
	for (int role = 0; role < 2; role++)
		state_foreach_job_file(dump->state, r->job_id, role, dump_file, &dump->text);
	return 0;
}

/* Every record and recorded file, as text. */
static char *dump_records(struct state *state)
{
	struct dump dump = {state, STRBUF_INIT};
	assert_int_equal(state_foreach_job(state, NULL, dump_job, &dump), 0);
	struct state_stats stats;
	state_stats(state, &stats);
	strbuf_addf(&dump.text, "%zu jobs, %zu files\n", stats.jobs, stats.files);
	return strbuf_detach(&dump.text);
}

/* Open, check where the records came from, and give them as text. */
static char *records_of(const char *dir, bool expect_snapshot)
{
	bool from_snapshot;
	struct state *state = open_in(dir, &from_snapshot);
	assert_int_equal(from_snapshot, expect_snapshot);
	char *text = dump_records(state);
	state_close(state);
	return text;
}

static void run_sql_on(const char *dir, const char *sql)
{
	char *path = xasprintf("%s/.cpipe/state.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
	free(path);
}

/* The second open after a change reads the snapshot the first one made, with the same records. */
static void test_snapshot_same_records(void **vstate)
{
	const char *dir = *vstate;
	make_records(dir);
	char *rows = records_of(dir, false);
	assert_non_null(strstr(rows, "r/07 1 ")); /* running: the claim came through */
	char *snapshot = records_of(dir, true);
	assert_string_equal(snapshot, rows);
	/* The snapshot's records are the ones later writes start from. */
	bool from_snapshot;
	struct state *state = open_in(dir, &from_snapshot);
	struct cp_err err = CP_ERR_INIT;
	struct state_attempt again = {.exit_code = 0, .start_ns = 9, .end_ns = 10, .host = "node4", .pid = 44};
	record_done(state, "r/11", "in02", "out11", &again, true);
	assert_int_equal(state_release_claim(state, "r/07", &err), 0);
	char *written = dump_records(state);
	state_close(state);
	char *after = records_of(dir, false);
	assert_string_equal(after, written);
	free(rows);
	free(snapshot);
	free(written);
	free(after);
	cp_err_release(&err);
}

/* Any write to a row, by any writer, makes the next open read the rows. */
static void test_snapshot_stale_after_any_write(void **vstate)
{
	const char *dir = *vstate;
	make_records(dir);
	free(records_of(dir, false));
	static const char *const writes[] = {
		"UPDATE jobs SET exit_code = 9 WHERE name = 'r/05'",
		"UPDATE files SET hash = 12345 WHERE path = 'out03'",
		"INSERT INTO files (path, size, mtime_ns) VALUES ('new', 1, 2)",
		"DELETE FROM files WHERE path = 'new'",
		"INSERT INTO jobs (name, status) VALUES ('r/new', 'failed')",
		"DELETE FROM jobs WHERE name = 'r/new'",
		"DELETE FROM jobs",
	};
	for (size_t i = 0; i < sizeof(writes) / sizeof(*writes); i++) {
		free(records_of(dir, true));
		run_sql_on(dir, writes[i]);
		char *rows = records_of(dir, false); /* (asserts the snapshot was not used) */
		if (i == 0) {
			/* r/05's exit code, the ninth field of its line. */
			const char *line = strstr(rows, "r/05 ");
			assert_non_null(line);
			int exit_code = 0;
			assert_int_equal(sscanf(line, "%*s %*d %*d %*d %*u %*u %*u %*u %d", &exit_code), 1);
			assert_int_equal(exit_code, 9);
		}
		char *snapshot = records_of(dir, true);
		assert_string_equal(snapshot, rows);
		free(rows);
		free(snapshot);
	}
}

/* A snapshot cut short, with a byte changed or with bytes after it is not used; the rows are. */
static void test_snapshot_damaged_falls_back(void **vstate)
{
	const char *dir = *vstate;
	make_records(dir);
	char *rows = records_of(dir, false);
	char *path = xasprintf("%s/.cpipe/state.db.snapshot", dir);
	struct strbuf good = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(read_whole_file(path, &good, &err), 0);
	size_t cuts[] = {0, 10, 40, good.len / 2, good.len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(*cuts) * 3; i++) {
		struct strbuf bad = STRBUF_INIT;
		size_t at = cuts[i / 3];
		if (i % 3 == 0) {
			strbuf_add(&bad, good.buf, at); /* cut short */
		} else if (i % 3 == 1) {
			strbuf_add(&bad, good.buf, good.len); /* one byte changed */
			bad.buf[at] ^= 0x40;
		} else {
			strbuf_add(&bad, good.buf, good.len); /* bytes after it */
			strbuf_add(&bad, good.buf, at + 1);
		}
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(bad.buf, 1, bad.len, f), bad.len);
		assert_int_equal(fclose(f), 0);
		char *loaded = records_of(dir, false);
		assert_string_equal(loaded, rows);
		free(loaded);
		strbuf_release(&bad);
	}
	/* The open that fell back wrote a good one again. */
	char *snapshot = records_of(dir, true);
	assert_string_equal(snapshot, rows);
	free(snapshot);
	free(rows);
	free(path);
	strbuf_release(&good);
	cp_err_release(&err);
}

/* state check reads the rows (it looks for damage in them), and leaves a good snapshot alone. */
static void test_snapshot_not_for_check(void **vstate)
{
	const char *dir = *vstate;
	make_records(dir);
	free(records_of(dir, false));
	struct state *state = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(state_open_for_check(dir, &state, &err), 0);
	struct state_stats stats;
	state_stats(state, &stats);
	assert_false(stats.snapshot_loaded);
	state_close(state);
	free(records_of(dir, true));
	cp_err_release(&err);
}

/*
 * A record's log path and run come back as recorded, from the rows and from
 * the snapshot: a log at the job's default path (which the state rebuilds
 * from the id instead of keeping) and any other (kept), and each job's run
 * when runs interleave (runs are shared between a run's jobs).
 */
struct log_case {
	const char *job_id;
	const char *log; /* NULL: no log; "" : the job's default path, built with job_log_path */
	const char *expect; /* the path as the default rule should give it (NULL: `log`) */
	int run;            /* which of four runs recorded it */
};

static const struct log_case log_cases[] = {
	{"plain", "", ".cpipe/logs/plain.log", 0},
	{"brain[subject=01]", "", NULL, 0},
	{"-lead 'quoted' \"x\"\n/../y", "", NULL, 1},
	{"same-a", "", ".cpipe/logs/same-a.log", 0},
	{"same-b", "", ".cpipe/logs/same-b.log", 0}, /* the same attempt facts as same-a */
	{"custom", "/logs/custom.log", NULL, 1},
	{"other", ".cpipe/logs/plain.log", NULL, 0}, /* another job's default path */
	{"moved", "logs/moved.log", NULL, 2},        /* the default file name in another directory */
	{"nolog", NULL, NULL, 2},
	{"back", "", ".cpipe/logs/back.log", 0}, /* run 0 again after others */
	{"pid", "", NULL, 3},                    /* run 0's host and run id, another pid (a cluster job's) */
};
enum { LOG_CASES = sizeof(log_cases) / sizeof(*log_cases) };
static const char *const log_runs[] = {"run-a", "run-b", "run-c", "run-a"};
static const char *const log_hosts[] = {"ha", "hb", "hc", "ha"};

/* Case i's start time: same-a and same-b share theirs (and so their whole attempt). */
static int64_t log_case_start(size_t i)
{
	return log_cases[i].job_id[0] == 's' ? 1 : (int64_t)i + 10;
}

static void log_case_path(const struct log_case *c, struct strbuf *out)
{
	if (c->log && !*c->log)
		job_log_path(c->job_id, out);
	else if (c->log)
		strbuf_adds(out, c->log);
}

static void assert_log_cases(const char *dir, bool expect_snapshot)
{
	bool from_snapshot;
	struct state *state = open_in(dir, &from_snapshot);
	assert_int_equal(from_snapshot, expect_snapshot);
	for (size_t i = 0; i < LOG_CASES; i++) {
		const struct log_case *c = &log_cases[i];
		struct strbuf want = STRBUF_INIT;
		log_case_path(c, &want);
		if (c->expect)
			assert_string_equal(want.buf, c->expect);
		assert_job_log(state, c->job_id, c->log ? want.buf : NULL);
		struct state_job_record record;
		assert_true(state_job_lookup(state, c->job_id, &record));
		assert_string_equal(record.run_id, log_runs[c->run]);
		assert_string_equal(record.host, log_hosts[c->run]);
		assert_int_equal(record.pid, 100 + c->run);
		assert_int_equal(record.start_ns, log_case_start(i));
		strbuf_release(&want);
	}
	state_close(state);
}

static void test_snapshot_log_paths_and_runs(void **vstate)
{
	const char *dir = *vstate;
	bool from_snapshot;
	struct state *state = open_in(dir, &from_snapshot);
	for (size_t i = 0; i < LOG_CASES; i++) {
		const struct log_case *c = &log_cases[i];
		state_set_identity(state, log_runs[c->run], log_hosts[c->run], 100 + c->run);
		struct strbuf log = STRBUF_INIT;
		log_case_path(c, &log);
		int64_t start = log_case_start(i);
		struct state_attempt attempt = {.start_ns = start, .end_ns = start + 1,
						.log_path = c->log ? log.buf : NULL};
		char out[32];
		snprintf(out, sizeof(out), "out%zu", i);
		record_done(state, c->job_id, "in", out, &attempt, true);
		strbuf_release(&log);
	}
	state_close(state);
	assert_log_cases(dir, false);
	assert_log_cases(dir, true);
	/* The database keeps every path whole, the default ones too. */
	char *path = xasprintf("%s/.cpipe/state.db", dir);
	sqlite3 *db;
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT log_path FROM jobs WHERE name = 'plain'", -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), ".cpipe/logs/plain.log");
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	free(path);
}

static int setup(void **vstate)
{
	return temp_dir_setup(vstate, "/tmp/cpipe-state-snapshot-XXXXXX");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot_same_records, setup, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_stale_after_any_write, setup, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_damaged_falls_back, setup, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_not_for_check, setup, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_log_paths_and_runs, setup, temp_dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
