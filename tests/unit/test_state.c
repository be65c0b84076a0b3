/*
 * Unit tests for the state module: real SQLite databases and real files in a
 * temporary directory per test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cpipe/state.h"
#include "claim_holder.h"
#include "test_helpers.h"

struct fixture {
	char dir[64];
	struct state *state;
	/* A job with two inputs and two outputs, plus a spare input. */
	char *in1, *in2, *in3, *out1, *out2;
	const char *inputs[3];
	const char *outputs[2];
	struct state_job_query query;
};

static char *fx_path(struct fixture *fx, const char *name)
{
	return xasprintf("%s/%s", fx->dir, name);
}

/* Set mtime to a fixed second so that "changed mtime" never depends on clock granularity. */
static void set_mtime(const char *path, time_t seconds)
{
	struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void open_state(struct fixture *fx)
{
	struct cp_err err = CP_ERR_INIT;
	int rc = state_open(fx->dir, &fx->state, &err);
	if (rc != 0)
		fail_msg("state_open: %s", err.message);
	cp_err_release(&err);
}

static void reopen_state(struct fixture *fx)
{
	state_close(fx->state);
	fx->state = NULL;
	open_state(fx);
}

static int setup(void **vstate)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/cpipe-state-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	fx->in1 = fx_path(fx, "in1.txt");
	fx->in2 = fx_path(fx, "in2.txt");
	fx->in3 = fx_path(fx, "in3.txt");
	fx->out1 = fx_path(fx, "out1.txt");
	fx->out2 = fx_path(fx, "out2.txt");
	write_text(fx->in1, "input one\n");
	write_text(fx->in2, "input two\n");
	write_text(fx->in3, "input three\n");
	set_mtime(fx->in1, 1000000);
	set_mtime(fx->in2, 1000000);
	set_mtime(fx->in3, 1000000);
	fx->inputs[0] = fx->in1;
	fx->inputs[1] = fx->in2;
	fx->inputs[2] = fx->in3;
	fx->outputs[0] = fx->out1;
	fx->outputs[1] = fx->out2;
	fx->query = (struct state_job_query){
		.job_id = "recipe/subject=01",
		.definition_hash = state_definition_hash("cat in1 in2 > out1; cp out1 out2"),
		.inputs = fx->inputs,
		.input_count = 2,
		.outputs = fx->outputs,
		.output_count = 2,
	};
	open_state(fx);
	*vstate = fx;
	return 0;
}

static int teardown(void **vstate)
{
	struct fixture *fx = *vstate;
	state_close(fx->state);
	remove_tree(fx->dir);
	free(fx->in1);
	free(fx->in2);
	free(fx->in3);
	free(fx->out1);
	free(fx->out2);
	free(fx);
	return 0;
}

/* The reason for the fixture's query after forgetting remembered stats; detail into *detail. */
static enum state_reason reason_detail(struct fixture *fx, const struct state_job_query *query, struct strbuf *detail)
{
	struct cp_err err = CP_ERR_INIT;
	enum state_reason reason;
	state_refresh(fx->state);
	int rc = state_job_reason(fx->state, query, &reason, detail, &err);
	if (rc != 0)
		fail_msg("state_job_reason: %s", err.message);
	cp_err_release(&err);
	return reason;
}

static enum state_reason reason_of(struct fixture *fx, const struct state_job_query *query)
{
	return reason_detail(fx, query, NULL);
}

static void make_outputs(struct fixture *fx)
{
	write_text(fx->out1, "output one\n");
	write_text(fx->out2, "output two\n");
	set_mtime(fx->out1, 2000000);
	set_mtime(fx->out2, 2000000);
}

static void record(struct fixture *fx, const struct state_job_query *query)
{
	struct cp_err err = CP_ERR_INIT;
	struct state_attempt attempt = {.exit_code = 0, .start_ns = 1, .end_ns = 2, .log_path = "/logs/job.log"};
	if (state_record_success_stat(fx->state, query, &attempt, &err) != 0)
		fail_msg("state_record_success_stat: %s", err.message);
	cp_err_release(&err);
}

static uint64_t hashes_computed(struct fixture *fx)
{
	struct state_stats stats;
	state_stats(fx->state, &stats);
	return stats.hashes_computed;
}

/* ---- Schema and persistence -------------------------------------------------- */

static void test_schema_version(void **vstate)
{
	struct fixture *fx = *vstate;
	struct stat st;
	assert_int_equal(stat(state_db_path(fx->state), &st), 0);
	assert_true(strstr(state_db_path(fx->state), "/.cpipe/state.db") != NULL);

	sqlite3 *db;
	assert_int_equal(sqlite3_open(state_db_path(fx->state), &db), SQLITE_OK);
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), STATE_SCHEMA_VERSION);
	sqlite3_finalize(stmt);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	struct state_stats stats;
	state_stats(fx->state, &stats);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), stats.wal ? "wal" : "delete");
	sqlite3_finalize(stmt);
	assert_int_equal(stats.schema_version, STATE_SCHEMA_VERSION);

	/* A database from a newer cpipe is refused. */
	state_close(fx->state);
	fx->state = NULL;
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(state_open(fx->dir, &fx->state, &err), STATE_ERROR);
	assert_null(fx->state);
	assert_non_null(strstr(err.message, "schema version 99"));
	cp_err_release(&err);
}

static void test_reopen_persists(void **vstate)
{
	struct fixture *fx = *vstate;
	make_outputs(fx);
	record(fx, &fx->query);
	reopen_state(fx);

	struct state_job_record rec;
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_int_equal(rec.status, STATE_STATUS_DONE);
	assert_true(rec.recorded);
	assert_false(rec.adopted);
	assert_int_equal(rec.input_count, 2);
	assert_int_equal(rec.output_count, 2);
	assert_job_log(fx->state, fx->query.job_id, "/logs/job.log");
	assert_int_equal(rec.start_ns, 1);
	assert_int_equal(rec.end_ns, 2);
	assert_int_equal(rec.pid, getpid());
	assert_true(rec.definition_hash == fx->query.definition_hash);
	assert_true(rec.input_set_hash == state_input_set_hash(fx->inputs, 2));
	assert_null(rec.holder_run);

	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	/* Nothing changed: the no-op check hashes nothing. */
	assert_int_equal(hashes_computed(fx), 0);
}

/* ---- Schema version 2: recorded files in a blob per job ------------------------ */

/* The schema as migration 1 creates it (a copy: a released migration never changes). */
static const char schema_v1[] =
	"CREATE TABLE jobs ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" status TEXT NOT NULL DEFAULT 'none' CHECK (status IN ('none', 'done', 'failed', 'interrupted')),"
	" recorded INTEGER NOT NULL DEFAULT 0,"
	" adopted INTEGER NOT NULL DEFAULT 0,"
	" definition_hash INTEGER,"
	" input_set_hash INTEGER,"
	" exit_code INTEGER,"
	" start_ns INTEGER,"
	" end_ns INTEGER,"
	" host TEXT,"
	" pid INTEGER,"
	" run_id TEXT,"
	" log_path TEXT,"
	" holder_run TEXT,"
	" holder_host TEXT,"
	" holder_pid INTEGER,"
	" holder_pid_start INTEGER,"
	" holder_since INTEGER,"
	" holder_log TEXT"
	");"
	"CREATE TABLE files ("
	" id INTEGER PRIMARY KEY,"
	" path TEXT NOT NULL UNIQUE,"
	" size INTEGER NOT NULL,"
	" mtime_ns INTEGER NOT NULL,"
	" hash INTEGER"
	");"
	"CREATE TABLE job_files ("
	" job INTEGER NOT NULL REFERENCES jobs(id),"
	" role INTEGER NOT NULL,"
	" file INTEGER NOT NULL REFERENCES files(id),"
	" present INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" mtime_ns INTEGER NOT NULL,"
	" hash INTEGER NOT NULL,"
	" hashed INTEGER NOT NULL,"
	" PRIMARY KEY (job, role, file)"
	") WITHOUT ROWID;";

static sqlite3 *open_db(struct fixture *fx)
{
	char *path = fx_path(fx, ".cpipe/state.db");
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	free(path);
	return db;
}

static void db_exec(sqlite3 *db, const char *sql)
{
	char *message = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK)
		fail_msg("%s: %s", sql, message);
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	int64_t value = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return value;
}

/* Run `sql` with ?1 bound to a blob and ?2 to the fixture's job id. */
static void db_exec_blob(struct fixture *fx, sqlite3 *db, const char *sql, const void *blob, size_t size)
{
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	sqlite3_bind_blob(stmt, 1, blob, (int)size, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, fx->query.job_id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
}

static void insert_v1_file(sqlite3 *db, int64_t id, const char *path, const struct file_signature *sig)
{
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO files VALUES (?1, ?2, ?3, ?4, ?5)", -1, &stmt, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, sig->size);
	sqlite3_bind_int64(stmt, 4, sig->mtime_ns);
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)sig->hash);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
}

static void insert_v1_job_file(sqlite3 *db, int64_t job, int role, int64_t file, const struct file_signature *sig)
{
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO job_files VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1,
					    &stmt, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(stmt, 1, job);
	sqlite3_bind_int(stmt, 2, role);
	sqlite3_bind_int64(stmt, 3, file);
	sqlite3_bind_int(stmt, 4, sig->exists);
	sqlite3_bind_int64(stmt, 5, sig->size);
	sqlite3_bind_int64(stmt, 6, sig->mtime_ns);
	sqlite3_bind_int64(stmt, 7, (sqlite3_int64)sig->hash);
	sqlite3_bind_int(stmt, 8, sig->hashed);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
}

/* A recorded file and its signature, collected by state_foreach_job_file. */
struct collected_files {
	struct state_file files[8];
	char *paths[8];
	size_t count;
};

static int collect_signatures(const struct state_file *file, void *data)
{
	struct collected_files *c = data;
	assert_true(c->count < 8);
	c->paths[c->count] = xstrdup(file->path);
	c->files[c->count] = (struct state_file){c->paths[c->count], file->signature};
	c->count++;
	return 0;
}

static void collected_release(struct collected_files *c)
{
	for (size_t i = 0; i < c->count; i++)
		free(c->paths[i]);
	c->count = 0;
}

/* The signature recorded for `path` in role `role` of the fixture's job (fails when there is none). */
static struct file_signature recorded_signature(struct fixture *fx, int role, const char *path)
{
	struct collected_files c = {.count = 0};
	assert_int_equal(state_foreach_job_file(fx->state, fx->query.job_id, role, collect_signatures, &c), 0);
	size_t at = 0;
	while (at < c.count && strcmp(c.files[at].path, path) != 0)
		at++;
	if (at == c.count)
		fail_msg("%s is not a recorded file of role %d", path, role);
	struct file_signature sig = c.files[at].signature;
	collected_release(&c);
	return sig;
}

static void assert_signature_equal(const struct file_signature *a, const struct file_signature *b)
{
	assert_int_equal(a->exists, b->exists);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->mtime_ns, b->mtime_ns);
	assert_true(a->hash == b->hash);
	assert_int_equal(a->hashed, b->hashed);
}

static void test_migrate_from_v1(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	state_close(fx->state);
	fx->state = NULL;
	char *db_path = fx_path(fx, ".cpipe/state.db");
	assert_int_equal(unlink(db_path), 0);
	for (const char *const *suffix = (const char *const[]){"-wal", "-shm", NULL}; *suffix; suffix++) {
		char *extra = xasprintf("%s%s", db_path, *suffix);
		unlink(extra);
		free(extra);
	}
	free(db_path);

	/* A version 1 database: the fixture's job done, a failed job, and one row naming no file. */
	const char *paths[] = {fx->in1, fx->in2, fx->out1, fx->out2};
	struct file_signature sigs[4];
	sqlite3 *db = open_db(fx);
	db_exec(db, schema_v1);
	db_exec(db, "PRAGMA user_version = 1");
	for (int i = 0; i < 4; i++) {
		assert_int_equal(state_signature_compute(paths[i], &sigs[i], &err), 0);
		insert_v1_file(db, i + 1, paths[i], &sigs[i]);
	}
	char *sql = xasprintf("INSERT INTO jobs (id, name, status, recorded, definition_hash, input_set_hash,"
			      " exit_code, start_ns, end_ns, host, pid, run_id, log_path)"
			      " VALUES (1, '%s', 'done', 1, %lld, %lld, 0, 1, 2, 'h1', 7, 'r1', '/logs/v1.log'),"
			      " (2, 'other/failed', 'failed', 0, NULL, NULL, 3, 1, 2, 'h1', 8, 'r1', NULL)",
			      fx->query.job_id, (long long)fx->query.definition_hash,
			      (long long)state_input_set_hash(fx->inputs, 2));
	db_exec(db, sql);
	free(sql);
	for (int i = 0; i < 4; i++)
		insert_v1_job_file(db, 1, i < 2 ? 0 : 1, i + 1, &sigs[i]);
	insert_v1_job_file(db, 1, 0, 99, &sigs[0]);
	sqlite3_close(db);

	open_state(fx);
	db = open_db(fx);
	assert_int_equal(db_int(db, "PRAGMA user_version"), STATE_SCHEMA_VERSION);
	/* Schema 3: one generation token, replaced by each kind of write to either table. */
	assert_int_equal(db_int(db, "SELECT count(*) FROM generation WHERE length(token) = 16"), 1);
	assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), 6);
	db_exec(db, "CREATE TEMP TABLE seen AS SELECT token FROM generation;"
		    "UPDATE jobs SET exit_code = exit_code WHERE name = 'other/failed'");
	assert_int_equal(db_int(db, "SELECT count(*) FROM generation WHERE token IN (SELECT token FROM seen)"), 0);
	assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'job_files'"), 0);
	/* The rebuilt table keeps its constraints. */
	assert_int_equal(sqlite3_exec(db, "UPDATE jobs SET status = 'bogus'", NULL, NULL, NULL), SQLITE_CONSTRAINT);
	sqlite3_close(db);

	struct state_job_record rec;
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_int_equal(rec.status, STATE_STATUS_DONE);
	assert_int_equal(rec.input_count, 2);
	assert_int_equal(rec.output_count, 2);
	assert_job_log(fx->state, fx->query.job_id, "/logs/v1.log");
	for (int i = 0; i < 4; i++) {
		struct file_signature sig = recorded_signature(fx, i < 2 ? 0 : 1, paths[i]);
		assert_signature_equal(&sig, &sigs[i]);
	}
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	assert_int_equal(hashes_computed(fx), 0);
	struct strbuf detail = STRBUF_INIT;
	struct state_job_query failed = fx->query;
	failed.job_id = "other/failed";
	assert_int_equal(reason_detail(fx, &failed, &detail), STATE_PREVIOUS_FAILED);
	assert_string_equal(detail.buf, "exit code 3");

	/* Same size, new content: found through the migrated hash. */
	write_text(fx->in2, "input TWO\n");
	assert_int_equal(reason_detail(fx, &fx->query, &detail), STATE_INPUT_CHANGED);
	assert_string_equal(detail.buf, fx->in2);
	reopen_state(fx);
	assert_int_equal(reason_of(fx, &fx->query), STATE_INPUT_CHANGED);
	strbuf_release(&detail);
	cp_err_release(&err);
}

/* Extreme values survive the blob: negative and huge numbers, missing and unhashed files. */
static void test_files_blob_round_trip(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	char *missing = fx_path(fx, "missing");
	struct state_file inputs[] = {
		{fx->in1, {true, 0, -1, 0, true}},
		{missing, {false, 0, 0, 0, false}},
		{fx->dir, {true, 0, 0, 0, false}},
	};
	struct state_file outputs[] = {{fx->out1, {true, INT64_MAX, INT64_MIN, UINT64_MAX, true}}};
	struct state_outcome outcome = {
		.job_id = fx->query.job_id,
		.inputs = inputs,
		.input_count = 3,
		.outputs = outputs,
		.output_count = 1,
	};
	assert_int_equal(state_record_success(fx->state, &outcome, &err), 0);
	reopen_state(fx);
	for (size_t i = 0; i < 3; i++) {
		struct file_signature sig = recorded_signature(fx, 0, inputs[i].path);
		assert_signature_equal(&sig, &inputs[i].signature);
	}
	struct file_signature sig = recorded_signature(fx, 1, fx->out1);
	assert_signature_equal(&sig, &outputs[0].signature);
	free(missing);
	cp_err_release(&err);
}

/* A path another handle added to `files` after this one loaded is found, not duplicated. */
static void test_file_row_added_elsewhere(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	struct state *other;
	assert_int_equal(state_open(fx->dir, &other, &err), 0);
	struct state_job_query q = fx->query;
	q.job_id = "other/job=1";
	q.inputs = (const char *const[]){fx->in3};
	q.input_count = 1;
	assert_int_equal(state_record_success_stat(other, &q, NULL, &err), 0);
	state_close(other);

	/* fx->state loaded before in3 had a row. */
	const char *inputs[] = {fx->in1, fx->in3};
	q = fx->query;
	q.inputs = inputs;
	record(fx, &q);
	reopen_state(fx);
	struct state_stats stats;
	state_stats(fx->state, &stats);
	assert_int_equal(stats.files, 4); /* in1, in3, out1, out2: in3 once */
	assert_int_equal(reason_of(fx, &q), STATE_UP_TO_DATE);
	struct file_signature sig = recorded_signature(fx, 0, fx->in3);
	assert_true(sig.exists && sig.hashed);
	assert_int_equal(hashes_computed(fx), 0);
	cp_err_release(&err);
}

static void test_damaged_files_blob(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	record(fx, &fx->query);
	state_close(fx->state);
	fx->state = NULL;

	sqlite3 *db = open_db(fx);
	sqlite3_stmt *stmt;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT files FROM jobs", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	size_t size = (size_t)sqlite3_column_bytes(stmt, 0);
	unsigned char *blob = xmalloc(size);
	memcpy(blob, sqlite3_column_blob(stmt, 0), size);
	sqlite3_finalize(stmt);

	/* `||` makes text: each damage casts back to a blob. */
	static const char *const damages[] = {
		"UPDATE jobs SET files = substr(files, 1, length(files) - 1)",              /* truncated */
		"UPDATE jobs SET files = CAST(files || x'00' AS BLOB)",                     /* a byte too many */
		"UPDATE jobs SET files = CAST(x'07' || substr(files, 2) AS BLOB)",          /* unknown version */
		"UPDATE jobs SET files = x'01ffffffff0f00'",                                /* more files than bytes */
		"UPDATE jobs SET files = x'01010001ff'",                                    /* unknown flags */
		"UPDATE jobs SET files = x'0101000700'",                                    /* no such file id */
		"UPDATE jobs SET files = x'010100ffffffffffffffffff7f00'",                  /* id beyond 64 bits */
	};
	for (size_t i = 0; i < sizeof(damages) / sizeof(damages[0]); i++) {
		db_exec_blob(fx, db, "UPDATE jobs SET files = ?1 WHERE name = ?2", blob, size);
		db_exec(db, damages[i]);
		assert_int_equal(state_open(fx->dir, &fx->state, &err), STATE_ERROR);
		assert_null(fx->state);
		if (!strstr(err.message, fx->query.job_id) || !strstr(err.message, "damaged"))
			fail_msg("damage %zu: %s", i, err.message);
	}
	/* Any damaged byte is either still a valid blob or an error naming the job, never a crash. */
	unsigned char *flipped = xmalloc(size);
	for (size_t i = 0; i < size; i++) {
		memcpy(flipped, blob, size);
		flipped[i] ^= 0xff;
		db_exec_blob(fx, db, "UPDATE jobs SET files = ?1 WHERE name = ?2", flipped, size);
		if (state_open(fx->dir, &fx->state, &err) == 0) {
			state_close(fx->state);
			fx->state = NULL;
		} else {
			assert_non_null(strstr(err.message, fx->query.job_id));
		}
	}
	db_exec_blob(fx, db, "UPDATE jobs SET files = ?1 WHERE name = ?2", blob, size);
	sqlite3_close(db);
	open_state(fx);
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	free(flipped);
	free(blob);
	cp_err_release(&err);
}

/* ---- Reasons -------------------------------------------------------------- */

static void test_reason_precedence(void **vstate)
{
	struct fixture *fx = *vstate;
	struct strbuf detail = STRBUF_INIT;
	struct state_job_query q = fx->query;

	assert_int_equal(reason_detail(fx, &q, &detail), STATE_OUTPUT_MISSING);
	assert_string_equal(detail.buf, fx->out1);
	make_outputs(fx);
	assert_int_equal(reason_of(fx, &q), STATE_NEVER_RECORDED);
	record(fx, &q);
	assert_int_equal(reason_detail(fx, &q, &detail), STATE_UP_TO_DATE);
	assert_string_equal(detail.buf, "");

	/* Build up changes from the lowest precedence to the highest. */
	q.upstream_runs = true;
	assert_int_equal(reason_of(fx, &q), STATE_UPSTREAM_RUNS);

	const char *more_inputs[] = {fx->in1, fx->in2, fx->in3};
	q.inputs = more_inputs;
	q.input_count = 3;
	assert_int_equal(reason_detail(fx, &q, &detail), STATE_INPUT_SET_CHANGED);
	{
		char *want = xasprintf("added %s", fx->in3);
		assert_string_equal(detail.buf, want);
		free(want);
	}

	q.definition_hash = state_definition_hash("cat in1 in2 in3 > out1; cp out1 out2");
	assert_int_equal(reason_of(fx, &q), STATE_COMMAND_CHANGED);

	write_text(fx->in2, "input TWO, longer\n");
	assert_int_equal(reason_detail(fx, &q, &detail), STATE_INPUT_CHANGED);
	assert_string_equal(detail.buf, fx->in2);

	write_text(fx->out2, "tampered\n");
	assert_int_equal(reason_detail(fx, &q, &detail), STATE_OUTPUT_MODIFIED);
	assert_string_equal(detail.buf, fx->out2);

	assert_int_equal(unlink(fx->out1), 0);
	assert_int_equal(reason_detail(fx, &q, &detail), STATE_OUTPUT_MISSING);
	assert_string_equal(detail.buf, fx->out1);

	q.forced = true;
	assert_int_equal(reason_of(fx, &q), STATE_FORCED);

	struct strbuf text = STRBUF_INIT;
	state_reason_describe(STATE_INPUT_CHANGED, "a/b.txt", &text);
	assert_string_equal(text.buf, "input changed: a/b.txt");
	strbuf_reset(&text);
	state_reason_describe(STATE_COMMAND_CHANGED, "", &text);
	assert_string_equal(text.buf, "command changed");
	strbuf_release(&text);
	strbuf_release(&detail);
}

static void test_input_set_removed(void **vstate)
{
	struct fixture *fx = *vstate;
	struct strbuf detail = STRBUF_INIT;
	make_outputs(fx);
	record(fx, &fx->query);

	/* Order and duplicates do not change the set. */
	const char *reordered[] = {fx->in2, fx->in1, fx->in2};
	struct state_job_query q = fx->query;
	q.inputs = reordered;
	q.input_count = 3;
	assert_int_equal(reason_of(fx, &q), STATE_UP_TO_DATE);

	q.input_count = 1; /* only in2 */
	assert_int_equal(reason_detail(fx, &q, &detail), STATE_INPUT_SET_CHANGED);
	char *want = xasprintf("removed %s", fx->in1);
	assert_string_equal(detail.buf, want);
	free(want);

	const char *ab[] = {"a", "b"}, *ba[] = {"b", "a", "b"}, *joined[] = {"ab"};
	assert_true(state_input_set_hash(ab, 2) == state_input_set_hash(ba, 3));
	assert_true(state_input_set_hash(ab, 2) != state_input_set_hash(joined, 1));
	strbuf_release(&detail);
}

static void test_touch_does_not_rerun(void **vstate)
{
	struct fixture *fx = *vstate;
	make_outputs(fx);
	record(fx, &fx->query);
	uint64_t base = hashes_computed(fx);

	/* Same content, new mtime: rehash once, unchanged. */
	set_mtime(fx->in1, 1500000);
	set_mtime(fx->out1, 2500000);
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	assert_int_equal(hashes_computed(fx) - base, 2);
	/* The new mtime is cached: no second hash, in this handle or the next. */
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	assert_int_equal(hashes_computed(fx) - base, 2);
	reopen_state(fx);
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	assert_int_equal(hashes_computed(fx), 0);
}

static void test_content_change_same_size(void **vstate)
{
	struct fixture *fx = *vstate;
	struct strbuf detail = STRBUF_INIT;
	make_outputs(fx);
	record(fx, &fx->query);

	write_text(fx->in1, "input ONE\n"); /* same length */
	set_mtime(fx->in1, 1500000);
	assert_int_equal(reason_detail(fx, &fx->query, &detail), STATE_INPUT_CHANGED);
	assert_string_equal(detail.buf, fx->in1);

	/* Restoring the content (with yet another mtime) makes it up to date again. */
	write_text(fx->in1, "input one\n");
	set_mtime(fx->in1, 1600000);
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);

	/* An output rewritten with the same size but other content was modified. */
	write_text(fx->out1, "output ONE\n");
	set_mtime(fx->out1, 2500000);
	assert_int_equal(reason_detail(fx, &fx->query, &detail), STATE_OUTPUT_MODIFIED);
	assert_string_equal(detail.buf, fx->out1);

	/* A missing input is a changed input. */
	write_text(fx->out1, "output one\n");
	unlink(fx->in2);
	assert_int_equal(reason_detail(fx, &fx->query, &detail), STATE_INPUT_CHANGED);
	assert_string_equal(detail.buf, fx->in2);
	strbuf_release(&detail);
}

/* Early cutoff records a claimed job up to date only with its files as its last run saw them. */
static void test_record_unchanged(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	struct strbuf detail = STRBUF_INIT;
	make_outputs(fx);
	record(fx, &fx->query);
	struct file_signature before = recorded_signature(fx, 0, fx->in1);

	/* Rewritten with the same content (an upstream job reran): recorded, new mtime, attempt kept. */
	assert_int_equal(state_claim_job(fx->state, fx->query.job_id, NULL, &err), 0);
	write_text(fx->in1, "input one\n");
	set_mtime(fx->in1, 1500000);
	bool recorded = false;
	assert_int_equal(state_record_unchanged(fx->state, &fx->query, &recorded, &detail, &err), 0);
	assert_true(recorded);
	struct file_signature after = recorded_signature(fx, 0, fx->in1);
	assert_int_equal(after.mtime_ns, 1500000LL * 1000000000LL);
	assert_true(after.hash == before.hash);
	struct state_job_record job;
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &job));
	assert_null(job.holder_run);
	assert_int_equal(job.start_ns, 1);
	assert_int_equal(job.end_ns, 2);
	assert_job_log(fx->state, fx->query.job_id, "/logs/job.log");
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);

	/* The content changed: nothing is written, the claim stays, and detail says why. */
	assert_int_equal(state_claim_job(fx->state, fx->query.job_id, NULL, &err), 0);
	write_text(fx->in1, "input ONE\n");
	set_mtime(fx->in1, 1600000);
	assert_int_equal(state_record_unchanged(fx->state, &fx->query, &recorded, &detail, &err), 0);
	assert_false(recorded);
	assert_string_equal(detail.buf, fx->in1);
	after = recorded_signature(fx, 0, fx->in1);
	assert_int_equal(after.mtime_ns, 1500000LL * 1000000000LL);
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &job));
	assert_non_null(job.holder_run);
	/* A changed definition is no cutoff either. */
	write_text(fx->in1, "input one\n");
	struct state_job_query edited = fx->query;
	edited.definition_hash = state_definition_hash("cat in1 in2 > out1;  cp out1 out2");
	assert_int_equal(state_record_unchanged(fx->state, &edited, &recorded, NULL, &err), 0);
	assert_false(recorded);
	strbuf_release(&detail);
	cp_err_release(&err);
}

/* An input a job that runs will rewrite is not compared: the job only waits for that job. */
static void test_input_pending(void **vstate)
{
	struct fixture *fx = *vstate;
	make_outputs(fx);
	record(fx, &fx->query);
	write_text(fx->in1, "input ONE\n");
	unlink(fx->in2);
	struct state_job_query query = fx->query;
	static const bool first_pending[] = {true, false}, both_pending[] = {true, true};
	query.upstream_runs = true;
	query.input_pending = first_pending;
	assert_int_equal(reason_of(fx, &query), STATE_INPUT_CHANGED); /* in2 is not pending */
	query.input_pending = both_pending;
	assert_int_equal(reason_of(fx, &query), STATE_UPSTREAM_RUNS);
	/* The set of inputs still counts, and so does the definition. */
	query.input_count = 1;
	assert_int_equal(reason_of(fx, &query), STATE_INPUT_SET_CHANGED);
	query.input_count = 2;
	query.definition_hash = state_definition_hash("edited");
	assert_int_equal(reason_of(fx, &query), STATE_COMMAND_CHANGED);
}

static void test_failed_and_interrupted(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	struct strbuf detail = STRBUF_INIT;
	struct state_attempt failed = {.exit_code = 3, .start_ns = 10, .end_ns = 20, .log_path = "/logs/f.log"};

	/* Outputs left by a failed first attempt are not "never recorded". */
	make_outputs(fx);
	assert_int_equal(state_record_failure(fx->state, fx->query.job_id, &failed, &err), 0);
	assert_int_equal(reason_detail(fx, &fx->query, &detail), STATE_PREVIOUS_FAILED);
	assert_string_equal(detail.buf, "exit code 3");
	struct state_job_record rec;
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_int_equal(rec.status, STATE_STATUS_FAILED);
	assert_false(rec.recorded);
	assert_job_log(fx->state, fx->query.job_id, "/logs/f.log");

	record(fx, &fx->query);
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);

	/* A failure after a success keeps the signatures; the failure still reruns the job. */
	assert_int_equal(state_record_failure(fx->state, fx->query.job_id, &failed, &err), 0);
	assert_int_equal(reason_of(fx, &fx->query), STATE_PREVIOUS_FAILED);
	struct state_job_query upstream = fx->query;
	upstream.upstream_runs = true;
	assert_int_equal(reason_of(fx, &upstream), STATE_UPSTREAM_RUNS);

	assert_int_equal(state_mark_interrupted(fx->state, fx->query.job_id, &err), 0);
	assert_int_equal(reason_of(fx, &fx->query), STATE_PREVIOUS_INTERRUPTED);
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_int_equal(rec.status, STATE_STATUS_INTERRUPTED);

	reopen_state(fx);
	assert_int_equal(reason_of(fx, &fx->query), STATE_PREVIOUS_INTERRUPTED);
	strbuf_release(&detail);
	cp_err_release(&err);
}

static void test_adopt(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	assert_int_equal(reason_of(fx, &fx->query), STATE_NEVER_RECORDED);
	assert_int_equal(state_adopt(fx->state, &fx->query, &err), 0);
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	struct state_job_record rec;
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_true(rec.adopted);
	assert_int_equal(rec.status, STATE_STATUS_DONE);
	reopen_state(fx);
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_true(rec.adopted);
	cp_err_release(&err);
}

static void test_directory_output(void **vstate)
{
	struct fixture *fx = *vstate;
	char *outdir = fx_path(fx, "outdir");
	assert_int_equal(mkdir(outdir, 0777), 0);
	const char *outputs[] = {outdir};
	struct state_job_query q = fx->query;
	q.outputs = outputs;
	q.output_count = 1;
	record(fx, &q);
	char *inner = xasprintf("%s/new", outdir);
	write_text(inner, "x");
	assert_int_equal(reason_of(fx, &q), STATE_UP_TO_DATE);
	unlink(inner);
	rmdir(outdir);
	assert_int_equal(reason_of(fx, &q), STATE_OUTPUT_MISSING);
	free(inner);
	free(outdir);
}

/* ---- Stat up front, threads --------------------------------------------------- */

static uint64_t stat_calls(struct fixture *fx)
{
	struct state_stats stats;
	state_stats(fx->state, &stats);
	return stats.stat_calls;
}

/* The reason and detail of `query` without forgetting remembered stats. */
static enum state_reason reason_now(struct fixture *fx, const struct state_job_query *query, struct strbuf *detail)
{
	struct cp_err err = CP_ERR_INIT;
	enum state_reason reason;
	if (state_job_reason(fx->state, query, &reason, detail, &err) != 0)
		fail_msg("state_job_reason: %s", err.message);
	cp_err_release(&err);
	return reason;
}

static void test_stat_paths(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	struct strbuf detail = STRBUF_INIT;
	make_outputs(fx);
	record(fx, &fx->query);
	char *missing = fx_path(fx, "missing.txt");
	const char *paths[] = {fx->in1, missing, fx->in1, fx->dir, fx->in2, fx->out1, fx->out2, missing};
	state_refresh(fx->state);
	uint64_t before = stat_calls(fx);
	assert_int_equal(state_stat_paths(fx->state, paths, 8, 4, NULL, &err), 0);
	assert_int_equal(stat_calls(fx), before + 6); /* each distinct path once */
	assert_int_equal(state_stat_paths(fx->state, paths, 8, 0, NULL, &err), 0);
	assert_int_equal(stat_calls(fx), before + 6); /* already remembered */

	/* Checks over those paths stat nothing, and give what checks that stat themselves give. */
	const char *dir_inputs[] = {fx->in1, fx->dir};
	const char *missing_outputs[] = {fx->out1, missing};
	struct state_job_query queries[3] = {fx->query, fx->query, fx->query};
	queries[1].inputs = dir_inputs;
	queries[2].outputs = missing_outputs;
	enum state_reason want[3] = {STATE_UP_TO_DATE, STATE_INPUT_SET_CHANGED, STATE_OUTPUT_MISSING};
	for (size_t i = 0; i < 3; i++) {
		state_refresh(fx->state);
		assert_int_equal(state_stat_paths(fx->state, paths, 8, 1, NULL, &err), 0);
		before = stat_calls(fx);
		assert_int_equal(reason_now(fx, &queries[i], &detail), want[i]);
		assert_int_equal(stat_calls(fx), before);
		char *first = xstrdup(detail.buf);
		assert_int_equal(reason_detail(fx, &queries[i], &detail), want[i]); /* stats afresh */
		assert_string_equal(detail.buf, first);
		free(first);
	}
	/* A snapshot, as with state_job_reason's own stats: an edit shows after state_refresh. */
	assert_int_equal(state_stat_paths(fx->state, paths, 8, 1, NULL, &err), 0);
	write_text(fx->in1, "input one, edited\n");
	assert_int_equal(reason_now(fx, &fx->query, NULL), STATE_UP_TO_DATE);
	assert_int_equal(reason_of(fx, &fx->query), STATE_INPUT_CHANGED);
	free(missing);
	strbuf_release(&detail);
	cp_err_release(&err);
}

/* Ids from state_stat_paths stand for their paths in a query; state_stat_recorded stats what was recorded. */
static void test_stat_paths_ids(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	record(fx, &fx->query);
	const char *paths[] = {fx->in1, fx->in2, fx->out1, fx->out2, fx->in1};
	uint32_t ids[5];
	state_refresh(fx->state);
	assert_int_equal(state_stat_paths(fx->state, paths, 5, 1, ids, &err), 0);
	assert_int_equal(ids[0], ids[4]); /* one id per path */
	assert_int_not_equal(ids[0], ids[1]);
	struct state_job_query query = fx->query;
	query.input_ids = ids;
	query.output_ids = ids + 2;
	uint64_t before = stat_calls(fx);
	assert_int_equal(reason_now(fx, &query, NULL), STATE_UP_TO_DATE);
	assert_int_equal(stat_calls(fx), before);

	write_text(fx->in2, "input two, edited\n");
	state_refresh(fx->state);
	state_stat_recorded(fx->state, 1, false, NULL);
	before = stat_calls(fx);
	assert_int_equal(reason_now(fx, &query, NULL), STATE_INPUT_CHANGED);
	assert_int_equal(reason_now(fx, &fx->query, NULL), STATE_INPUT_CHANGED);
	/* The recorded files were stat'ed already; only the changed input is read to hash it. */
	assert_int_equal(stat_calls(fx), before);
}

enum { MANY_JOBS = 300 };

/* MANY_JOBS recorded jobs, each with an input, a never-existing input and an output (paths[3i..3i+2]). */
static void record_many(struct fixture *fx, char **paths, struct state_job_query *queries)
{
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(state_begin(fx->state, &err), 0);
	for (size_t i = 0; i < MANY_JOBS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "in%zu", i);
		paths[3 * i] = fx_path(fx, name);
		snprintf(name, sizeof(name), "gone%zu", i); /* an input that never exists */
		paths[3 * i + 1] = fx_path(fx, name);
		snprintf(name, sizeof(name), "out%zu", i);
		paths[3 * i + 2] = fx_path(fx, name);
		write_text(paths[3 * i], paths[3 * i]);
		write_text(paths[3 * i + 2], paths[3 * i + 2]);
		queries[i] = (struct state_job_query){
			.job_id = paths[3 * i + 2],
			.definition_hash = state_definition_hash("copy"),
			.inputs = (const char *const *)&paths[3 * i],
			.input_count = 2,
			.outputs = (const char *const *)&paths[3 * i + 2],
			.output_count = 1,
		};
		record(fx, &queries[i]);
	}
	assert_int_equal(state_commit(fx->state, &err), 0);
	cp_err_release(&err);
}

/* Enough paths for several threads: the results equal those of checks one stat at a time. */
static void test_stat_paths_threads(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	enum { JOBS = MANY_JOBS };
	char *paths[3 * JOBS];
	struct state_job_query queries[JOBS];
	record_many(fx, paths, queries);
	for (size_t i = 0; i < JOBS; i += 7)
		write_text(paths[3 * i], "changed");
	for (size_t i = 0; i < JOBS; i += 11)
		assert_int_equal(unlink(paths[3 * i + 2]), 0);

	enum state_reason threaded[JOBS];
	struct strvec details = STRVEC_INIT;
	struct strbuf detail = STRBUF_INIT;
	state_refresh(fx->state);
	uint64_t before = stat_calls(fx);
	assert_int_equal(state_stat_paths(fx->state, (const char *const *)paths, 3 * JOBS, 4, NULL, &err), 0);
	assert_int_equal(stat_calls(fx), before + 3 * JOBS);
	for (size_t i = 0; i < JOBS; i++) {
		threaded[i] = reason_now(fx, &queries[i], &detail);
		strvec_push(&details, detail.buf);
	}
	assert_int_equal(stat_calls(fx), before + 3 * JOBS);
	state_refresh(fx->state);
	for (size_t i = 0; i < JOBS; i++) {
		enum state_reason want = i % 11 == 0 ? STATE_OUTPUT_MISSING
					 : i % 7 == 0 ? STATE_INPUT_CHANGED
						      : STATE_UP_TO_DATE;
		assert_int_equal(reason_now(fx, &queries[i], &detail), want);
		assert_int_equal(threaded[i], want);
		assert_string_equal(details.items[i], detail.buf);
	}
	for (size_t i = 0; i < 3 * JOBS; i++)
		free(paths[i]);
	strvec_release(&details);
	strbuf_release(&detail);
	cp_err_release(&err);
}

struct shared_stat_job {
	struct state *state;
	struct stat_share *share;
};

static void *stat_recorded_in_thread(void *arg)
{
	struct shared_stat_job *job = arg;
	state_stat_recorded(job->state, 1, false, job->share);
	return NULL;
}

/*
 * state_stat_recorded with another thread helping: every recorded file
 * is stat'ed once, and the checks then need no stat; a helper returns at once
 * when the stat ended without starting (the open failed).
 */
static void test_stat_recorded_shared(void **vstate)
{
	struct fixture *fx = *vstate;
	char *paths[3 * MANY_JOBS];
	struct state_job_query queries[MANY_JOBS];
	record_many(fx, paths, queries);
	for (size_t i = 0; i < MANY_JOBS; i += 5)
		assert_int_equal(unlink(paths[3 * i + 2]), 0);

	state_refresh(fx->state);
	uint64_t before = stat_calls(fx);
	struct shared_stat_job job = {fx->state, stat_share_new()};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, stat_recorded_in_thread, &job), 0);
	stat_share_help(job.share);
	assert_int_equal(pthread_join(thread, NULL), 0);
	stat_share_free(job.share);
	assert_int_equal(stat_calls(fx), before + 3 * MANY_JOBS);
	for (size_t i = 0; i < MANY_JOBS; i++)
		assert_int_equal(reason_now(fx, &queries[i], NULL), i % 5 == 0 ? STATE_OUTPUT_MISSING : STATE_UP_TO_DATE);
	assert_int_equal(stat_calls(fx), before + 3 * MANY_JOBS);

	struct stat_share *ended = stat_share_new();
	stat_share_end(ended);
	stat_share_help(ended);
	stat_share_free(ended);
	for (size_t i = 0; i < 3 * MANY_JOBS; i++)
		free(paths[i]);
}

/*
 * With made_only, state_stat_recorded leaves the raw inputs; what the caller
 * learned of them (state_learn_stat) is used as a stat would be, and a path
 * stat'ed already keeps its own result.
 */
static void test_stat_made_only_and_learn(void **vstate)
{
	struct fixture *fx = *vstate;
	char *paths[3 * MANY_JOBS];
	struct state_job_query queries[MANY_JOBS];
	record_many(fx, paths, queries);
	state_refresh(fx->state);
	uint64_t before = stat_calls(fx);
	state_stat_recorded(fx->state, 1, true, NULL);
	assert_int_equal(stat_calls(fx), before + MANY_JOBS); /* the outputs only */
	for (size_t i = 0; i < MANY_JOBS; i++) {
		struct file_signature sig;
		struct cp_err err = CP_ERR_INIT;
		assert_int_equal(state_signature_compute(paths[3 * i], &sig, &err), 0);
		if (i % 3 == 0)
			sig.size += 1; /* a learned change is a change */
		state_learn_stat(fx->state, paths[3 * i], &sig);
		state_learn_stat(fx->state, paths[3 * i + 1], &(struct file_signature){.exists = false});
		state_learn_stat(fx->state, paths[3 * i + 2], &(struct file_signature){.exists = false});
	}
	before = stat_calls(fx);
	for (size_t i = 0; i < MANY_JOBS; i++) {
		enum state_reason reason = reason_now(fx, &queries[i], NULL);
		if (i % 3 == 0)
			assert_int_not_equal(reason, STATE_UP_TO_DATE);
		else
			assert_int_equal(reason, STATE_UP_TO_DATE);
	}
	assert_int_equal(stat_calls(fx), before);
	/* Paths the database never saw: each one grows the handle's file array. */
	for (size_t i = 0; i < 4 * MANY_JOBS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "new%zu", i);
		char *path = fx_path(fx, name);
		state_learn_stat(fx->state, path, &(struct file_signature){.exists = true, .size = (int64_t)i});
		struct cp_err err = CP_ERR_INIT;
		assert_int_equal(state_stat_paths(fx->state, (const char *const *)&path, 1, 1, NULL, &err), 0);
		free(path);
	}
	assert_int_equal(stat_calls(fx), before); /* all of them known already */
	for (size_t i = 0; i < 3 * MANY_JOBS; i++)
		free(paths[i]);
}

/* A stat error other than "missing" fails as state_job_reason's own stat does, naming the path. */
static void test_stat_paths_error(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	char name[300];
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	char *too_long = fx_path(fx, name); /* ENAMETOOLONG */
	const char *paths[] = {fx->in1, too_long, fx->in2};
	uint64_t before = stat_calls(fx);
	assert_int_equal(state_stat_paths(fx->state, paths, 3, 2, NULL, &err), STATE_ERROR);
	char *message = xstrdup(err.message);
	assert_non_null(strstr(message, "cannot stat"));
	assert_non_null(strstr(message, too_long));
	assert_int_equal(stat_calls(fx), before + 3);

	/* The failed path is not remembered: a check stats it again and fails the same way. */
	const char *outputs[] = {too_long};
	struct state_job_query q = fx->query;
	q.outputs = outputs;
	q.output_count = 1;
	enum state_reason reason;
	assert_int_equal(state_job_reason(fx->state, &q, &reason, NULL, &err), STATE_ERROR);
	assert_string_equal(err.message, message);
	assert_int_equal(stat_calls(fx), before + 4);
	free(message);
	free(too_long);
	cp_err_release(&err);
}

struct open_job {
	const char *dir;
	struct state *state;
	struct cp_err err;
};

static void *open_in_thread(void *data)
{
	struct open_job *job = data;
	if (state_open(job->dir, &job->state, &job->err) != 0)
		job->state = NULL;
	return NULL;
}

/* Opened in one thread while another works, used in that other one after the join. */
static void test_open_in_thread(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	record(fx, &fx->query);
	state_close(fx->state);
	fx->state = NULL;

	struct open_job job = {fx->dir, NULL, CP_ERR_INIT};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, open_in_thread, &job), 0);
	/* Meanwhile this thread does unrelated work with the same modules. */
	struct strbuf text = STRBUF_INIT;
	for (int i = 0; i < 1000; i++)
		strbuf_addf(&text, "%d", i);
	struct file_signature sig;
	assert_int_equal(state_signature_compute(fx->in1, &sig, &err), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	if (!job.state)
		fail_msg("state_open in a thread: %s", job.err.message);
	fx->state = job.state;
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	strbuf_release(&text);
	cp_err_release(&job.err);
	cp_err_release(&err);
}

/* ---- Explicit records, listing, forgetting ----------------------------------- */

static int collect_ids(const struct state_job_record *record, void *data)
{
	strvec_push(data, record->job_id);
	return 0;
}

static int collect_files(const struct state_file *file, void *data)
{
	strvec_push(data, file->path);
	return 0;
}

static void test_explicit_record(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);

	/* What a compute node would put in its marker file. */
	struct state_file inputs[2] = {{fx->in1, {0}}, {fx->in2, {0}}};
	struct state_file outputs[2] = {{fx->out1, {0}}, {fx->out2, {0}}};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(state_signature_compute(inputs[i].path, &inputs[i].signature, &err), 0);
		assert_int_equal(state_signature_compute(outputs[i].path, &outputs[i].signature, &err), 0);
		assert_true(outputs[i].signature.hashed);
	}
	struct state_outcome outcome = {
		.job_id = fx->query.job_id,
		.definition_hash = fx->query.definition_hash,
		.inputs = inputs,
		.input_count = 2,
		.outputs = outputs,
		.output_count = 2,
		.attempt = {.exit_code = 0, .start_ns = 100, .end_ns = 200, .host = "node042", .pid = 4242,
			    .log_path = "/logs/node.log"},
	};
	assert_int_equal(state_record_success(fx->state, &outcome, &err), 0);
	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	/* The marker's hashes went into the cache: importing hashed nothing here. */
	assert_int_equal(hashes_computed(fx), 0);

	struct state_job_record rec;
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_string_equal(rec.host, "node042");
	assert_int_equal(rec.pid, 4242);
	assert_job_log(fx->state, fx->query.job_id, "/logs/node.log");

	struct strvec paths = STRVEC_INIT;
	assert_int_equal(state_foreach_job_file(fx->state, fx->query.job_id, 1, collect_files, &paths), 0);
	assert_int_equal(paths.count, 2);
	strvec_sort(&paths);
	assert_string_equal(paths.items[0], fx->out1);
	assert_string_equal(paths.items[1], fx->out2);
	strvec_release(&paths);

	struct file_signature sig;
	assert_int_equal(state_file_signature(fx->state, fx->out1, &sig, &err), 0);
	assert_true(sig.exists && sig.hashed);
	assert_true(sig.hash == outputs[0].signature.hash);
	assert_int_equal(hashes_computed(fx), 0);
	char *missing = fx_path(fx, "missing");
	assert_int_equal(state_file_signature(fx->state, missing, &sig, &err), 0);
	assert_false(sig.exists);
	free(missing);
	cp_err_release(&err);
}

static void test_listing_and_forget(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	const char *ids[] = {"b/y=1", "a/x=2", "a/x=1", "ab/z=1"};
	for (size_t i = 0; i < 4; i++) {
		struct state_job_query q = fx->query;
		q.job_id = ids[i];
		record(fx, &q);
	}
	struct strvec seen = STRVEC_INIT;
	assert_int_equal(state_foreach_job(fx->state, NULL, collect_ids, &seen), 0);
	assert_int_equal(seen.count, 4);
	assert_string_equal(seen.items[0], "a/x=1");
	assert_string_equal(seen.items[1], "a/x=2");
	assert_string_equal(seen.items[2], "ab/z=1");
	assert_string_equal(seen.items[3], "b/y=1");
	strvec_release(&seen);
	assert_int_equal(state_foreach_job(fx->state, "a/", collect_ids, &seen), 0);
	assert_int_equal(seen.count, 2);
	strvec_release(&seen);

	size_t forgotten = 0;
	assert_int_equal(state_forget(fx->state, "a/", NULL, 0, &forgotten, &err), 0);
	assert_int_equal(forgotten, 2);
	struct state_job_record rec;
	assert_false(state_job_lookup(fx->state, "a/x=1", &rec));
	assert_true(state_job_lookup(fx->state, "ab/z=1", &rec));
	const char *list[] = {"b/y=1", "no/such=job"};
	assert_int_equal(state_forget(fx->state, NULL, list, 2, &forgotten, &err), 0);
	assert_int_equal(forgotten, 1);

	reopen_state(fx);
	assert_false(state_job_lookup(fx->state, "a/x=1", &rec));
	assert_false(state_job_lookup(fx->state, "b/y=1", &rec));
	assert_true(state_job_lookup(fx->state, "ab/z=1", &rec));
	struct state_job_query q = fx->query;
	q.job_id = "a/x=1";
	assert_int_equal(reason_of(fx, &q), STATE_NEVER_RECORDED);
	/* A forgotten job can be recorded again. */
	record(fx, &q);
	assert_int_equal(reason_of(fx, &q), STATE_UP_TO_DATE);

	assert_int_equal(state_forget(fx->state, "", NULL, 0, &forgotten, &err), 0);
	assert_int_equal(forgotten, 2);
	struct state_stats stats;
	state_stats(fx->state, &stats);
	assert_int_equal(stats.jobs, 0);
	cp_err_release(&err);
}

static void test_transactions_batch(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	struct state_stats before, after;
	state_stats(fx->state, &before);
	assert_int_equal(state_begin(fx->state, &err), 0);
	assert_int_equal(state_begin(fx->state, &err), 0); /* nests */
	for (int i = 0; i < 200; i++) {
		char *id = xasprintf("batch/n=%d", i);
		struct state_job_query q = fx->query;
		q.job_id = id;
		assert_int_equal(state_claim_job(fx->state, id, NULL, &err), 0);
		record(fx, &q);
		free(id);
	}
	assert_int_equal(state_commit(fx->state, &err), 0);
	state_stats(fx->state, &after);
	assert_int_equal(after.transactions, before.transactions);
	assert_int_equal(state_commit(fx->state, &err), 0);
	state_stats(fx->state, &after);
	assert_int_equal(after.transactions, before.transactions + 1);

	/* A rolled-back batch leaves nothing in the database. */
	assert_int_equal(state_begin(fx->state, &err), 0);
	assert_int_equal(state_claim_job(fx->state, "rolled/back=1", NULL, &err), 0);
	state_rollback(fx->state);
	reopen_state(fx);
	struct state_job_record rec;
	assert_false(state_job_lookup(fx->state, "rolled/back=1", &rec));
	assert_true(state_job_lookup(fx->state, "batch/n=199", &rec));
	cp_err_release(&err);
}

/* ---- Claims ----------------------------------------------------------------- */

static void test_claim_live_child(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	struct claim_holder holder;
	claim_holder_start(&holder, fx->dir, fx->query.job_id, "/logs/child.log");
	pid_t child = holder.pid;

	assert_int_equal(state_claim_job(fx->state, fx->query.job_id, NULL, &err), STATE_HELD);
	char *pid_text = xasprintf("pid %d", (int)child);
	assert_non_null(strstr(err.message, pid_text));
	free(pid_text);

	/* Reasons see the claim after a reopen (the snapshot is taken at open). */
	make_outputs(fx);
	reopen_state(fx);
	struct strbuf detail = STRBUF_INIT;
	assert_int_equal(reason_detail(fx, &fx->query, &detail), STATE_RUNNING_ELSEWHERE);
	struct state_job_record rec;
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_int_equal(rec.status, STATE_STATUS_RUNNING);
	assert_true(rec.holder_alive);
	assert_int_equal(rec.holder_pid, child);
	assert_job_log(fx->state, fx->query.job_id, "/logs/child.log");

	/* The child dies without cleaning up: its claim expires and reads as interrupted. */
	claim_holder_stop(&holder);
	assert_int_equal(reason_detail(fx, &fx->query, &detail), STATE_PREVIOUS_INTERRUPTED);
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_false(rec.holder_alive);
	cp_err_release(&err);
	assert_int_equal(state_claim_job(fx->state, fx->query.job_id, NULL, &err), 0);
	assert_true(state_job_lookup(fx->state, fx->query.job_id, &rec));
	assert_string_equal(rec.holder_run, state_run_id(fx->state));
	/* Taking over a dead claim records the dead attempt as interrupted. */
	assert_int_equal(state_release_claim(fx->state, fx->query.job_id, &err), 0);
	assert_int_equal(reason_of(fx, &fx->query), STATE_PREVIOUS_INTERRUPTED);
	strbuf_release(&detail);
	cp_err_release(&err);
}

static pid_t dead_pid(void)
{
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	int wstatus;
	assert_int_equal(waitpid(child, &wstatus, 0), child);
	return child;
}

static void test_claim_identities(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	struct state *other = NULL;
	assert_int_equal(state_open(fx->dir, &other, &err), 0);
	struct state_job_record rec;

	/* A live process on this host (our parent) holds job a. */
	state_set_identity(other, "run-parent", NULL, (int64_t)getppid());
	assert_int_equal(state_claim_job(other, "a", NULL, &err), 0);
	assert_int_equal(state_claim_job(fx->state, "a", NULL, &err), STATE_HELD);
	assert_non_null(strstr(err.message, "run-parent"));
	/* Claiming again under the same run id is fine. */
	assert_int_equal(state_claim_job(other, "a", NULL, &err), 0);

	/* A dead process on this host: its claim expires. */
	state_set_identity(other, "run-dead", NULL, (int64_t)dead_pid());
	assert_int_equal(state_claim_job(other, "b", NULL, &err), 0);
	assert_int_equal(state_claim_job(fx->state, "b", NULL, &err), 0);

	/* Another host: cannot tell, so it is live until marked interrupted. */
	state_set_identity(other, "run-remote", "some-other-host", 12345);
	assert_int_equal(state_claim_job(other, "c", NULL, &err), 0);
	assert_int_equal(state_claim_job(fx->state, "c", NULL, &err), STATE_HELD);
	assert_non_null(strstr(err.message, "some-other-host"));
	assert_int_equal(state_mark_interrupted(fx->state, "c", &err), 0);
	assert_true(state_job_lookup(fx->state, "c", &rec));
	assert_int_equal(rec.status, STATE_STATUS_INTERRUPTED);
	assert_string_equal(rec.host, "some-other-host");
	assert_int_equal(state_claim_job(fx->state, "c", NULL, &err), 0);

	/* Releasing: only our own claim. */
	assert_int_equal(state_release_claim(fx->state, "a", &err), 0);
	assert_int_equal(state_claim_job(fx->state, "a", NULL, &err), STATE_HELD);

	/* Interrupting our run marks what we hold. */
	assert_int_equal(state_interrupt_run(fx->state, &err), 0);
	assert_true(state_job_lookup(fx->state, "b", &rec));
	assert_int_equal(rec.status, STATE_STATUS_INTERRUPTED);
	assert_null(rec.holder_run);
	assert_true(state_job_lookup(fx->state, "c", &rec));
	assert_int_equal(rec.status, STATE_STATUS_INTERRUPTED);
	state_close(other);
	cp_err_release(&err);
}

static void test_error_names_statement(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(state_db_path(fx->state), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE jobs", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(state_claim_job(fx->state, "x", NULL, &err), STATE_ERROR);
	assert_non_null(strstr(err.message, "no such table"));
	assert_non_null(strstr(err.message, "FROM jobs WHERE name = ?1"));
	cp_err_release(&err);
}

/* ---- Performance (opt-in: CPIPE_STATE_PERF=<jobs>) ------------------------------ */

static void test_perf_noop(void **vstate)
{
	struct fixture *fx = *vstate;
	const char *env = getenv("CPIPE_STATE_PERF");
	if (!env) {
		skip();
		return;
	}
	size_t jobs = strtoul(env, NULL, 10);
	struct cp_err err = CP_ERR_INIT;
	/* Job i reads file i and i+1 and writes outputs 2 files: ~4 file records per job. */
	char **paths = xmalloc((2 * jobs + 1) * sizeof(*paths));
	for (size_t i = 0; i < 2 * jobs + 1; i++) {
		paths[i] = xasprintf("%s/f%zu", fx->dir, i);
		write_text(paths[i], paths[i]);
	}
	char **outs = xmalloc(2 * jobs * sizeof(*outs));
	for (size_t i = 0; i < 2 * jobs; i++) {
		outs[i] = xasprintf("%s/o%zu", fx->dir, i);
		write_text(outs[i], outs[i]);
	}
	double start = monotonic_seconds();
	assert_int_equal(state_begin(fx->state, &err), 0);
	for (size_t i = 0; i < jobs; i++) {
		char id[64];
		snprintf(id, sizeof(id), "perf/n=%zu", i);
		const char *in[] = {paths[2 * i], paths[2 * i + 1]};
		const char *out[] = {outs[2 * i], outs[2 * i + 1]};
		struct state_job_query q = {id, state_definition_hash("definition"), in, 2, out, 2, NULL, NULL, false, false, false, NULL};
		if (state_adopt(fx->state, &q, &err) != 0)
			fail_msg("%s", err.message);
	}
	assert_int_equal(state_commit(fx->state, &err), 0);
	print_message("record %zu jobs: %.3f s\n", jobs, monotonic_seconds() - start);

	state_close(fx->state);
	fx->state = NULL;
	start = monotonic_seconds();
	open_state(fx);
	double open_s = monotonic_seconds() - start;
	start = monotonic_seconds();
	for (size_t i = 0; i < jobs; i++) {
		char id[64];
		snprintf(id, sizeof(id), "perf/n=%zu", i);
		const char *in[] = {paths[2 * i], paths[2 * i + 1]};
		const char *out[] = {outs[2 * i], outs[2 * i + 1]};
		struct state_job_query q = {id, state_definition_hash("definition"), in, 2, out, 2, NULL, NULL, false, false, false, NULL};
		enum state_reason reason;
		assert_int_equal(state_job_reason(fx->state, &q, &reason, NULL, &err), 0);
		assert_int_equal(reason, STATE_UP_TO_DATE);
	}
	struct state_stats stats;
	state_stats(fx->state, &stats);
	print_message("no-op: open+load %.3f s, check %.3f s (%zu jobs, %zu files, %llu stats, %llu hashes)\n",
		      open_s, monotonic_seconds() - start, stats.jobs, stats.files, (unsigned long long)stats.stat_calls,
		      (unsigned long long)stats.hashes_computed);
	assert_int_equal(stats.hashes_computed, 0);
	for (size_t i = 0; i < 2 * jobs + 1; i++)
		free(paths[i]);
	for (size_t i = 0; i < 2 * jobs; i++)
		free(outs[i]);
	free(paths);
	free(outs);
	cp_err_release(&err);
}

/* ---- Concurrency, damage and adoption (issue 11) ------------------------------ */

/* A second handle on the fixture's database, as another run (`run_id`, `pid`; 0: ours) would have. */
static struct state *open_other_run(struct fixture *fx, const char *run_id, int64_t pid)
{
	struct cp_err err = CP_ERR_INIT;
	struct state *other = NULL;
	if (state_open(fx->dir, &other, &err) != 0)
		fail_msg("state_open: %s", err.message);
	state_set_identity(other, run_id, NULL, pid);
	return other;
}

/* A run that looked before another finished the job must not run it again: its claim says so. */
static void test_claim_sees_job_finished_elsewhere(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	/* `late` takes its snapshot now: the job has no record, its outputs are missing. */
	struct state *late = open_other_run(fx, "run-late", 0);
	enum state_reason reason;
	assert_int_equal(state_job_reason(late, &fx->query, &reason, NULL, &err), 0);
	assert_int_equal(reason, STATE_OUTPUT_MISSING);

	/* The first run claims, runs and records the job, all after that snapshot. */
	assert_int_equal(state_claim_job(fx->state, fx->query.job_id, NULL, &err), 0);
	make_outputs(fx);
	record(fx, &fx->query);

	assert_int_equal(state_claim_job(late, fx->query.job_id, NULL, &err), STATE_CHANGED);
	assert_non_null(strstr(err.message, "was finished by another run"));
	cp_err_release(&err);
	/* The new record was loaded: decided again with fresh stats, the job is up to date. */
	state_refresh_paths(late, fx->query.inputs, fx->query.input_count);
	state_refresh_paths(late, fx->query.outputs, fx->query.output_count);
	assert_int_equal(state_job_reason(late, &fx->query, &reason, NULL, &err), 0);
	assert_int_equal(reason, STATE_UP_TO_DATE);
	/* Nothing known changed since: a claim goes through (a forced rerun, say). */
	assert_int_equal(state_claim_job(late, fx->query.job_id, NULL, &err), 0);
	state_close(late);
	cp_err_release(&err);
}

/* A live run's claim outranks a missing output; a dead run's claim is listed for its orphans. */
static void test_claims_of_live_and_dead_runs(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	struct state *other = open_other_run(fx, "run-parent", (int64_t)getppid());
	assert_int_equal(state_claim_job(other, fx->query.job_id, NULL, &err), 0);
	state_set_identity(other, "run-dead", NULL, (int64_t)dead_pid());
	assert_int_equal(state_claim_job(other, "dead/job", NULL, &err), 0);
	state_close(other);
	reopen_state(fx);

	struct strbuf detail = STRBUF_INIT;
	assert_int_equal(reason_detail(fx, &fx->query, &detail), STATE_RUNNING_ELSEWHERE);
	struct strvec runs = STRVEC_INIT;
	state_dead_runs(fx->state, &runs);
	assert_int_equal(runs.count, 1);
	assert_string_equal(runs.items[0], "run-dead");
	strvec_release(&runs);
	strbuf_release(&detail);
	cp_err_release(&err);
}

/* An empty state.db is damage, refused with the way out; a new database never is empty. */
static void test_empty_database_refused(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	state_close(fx->state);
	fx->state = NULL;
	char *db = fx_path(fx, ".cpipe/state.db");
	struct stat st;
	assert_int_equal(stat(db, &st), 0);
	assert_true(st.st_size > 0);
	assert_int_equal(truncate(db, 0), 0);
	char *wal = fx_path(fx, ".cpipe/state.db-wal");
	unlink(wal);
	free(wal);
	assert_int_equal(state_open(fx->dir, &fx->state, &err), STATE_ERROR);
	assert_null(fx->state);
	assert_non_null(strstr(err.message, "empty (0 bytes)"));
	assert_int_equal(err.kind, CP_ERR_STATE_DAMAGED);
	/* Without the file, a new one is made (with its schema) and no temporary file is left. */
	assert_int_equal(unlink(db), 0);
	open_state(fx);
	assert_int_equal(stat(db, &st), 0);
	assert_true(st.st_size > 0);
	char *temp = xasprintf("%s.new-%d", db, (int)getpid());
	assert_int_equal(access(temp, F_OK), -1);
	free(temp);
	free(db);
	cp_err_release(&err);
}

static int count_problems(const struct state_problem *problem, void *data)
{
	size_t *counts = data;
	counts[problem->kind]++;
	return 0;
}

/* A damaged record stops state_open; check finds it, repair makes the job run again. */
static void test_check_and_repair(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	make_outputs(fx);
	record(fx, &fx->query);
	state_close(fx->state);
	fx->state = NULL;
	sqlite3 *db = open_db(fx);
	db_exec(db, "UPDATE jobs SET files = x'01ff'");
	sqlite3_close(db);
	assert_int_equal(state_open(fx->dir, &fx->state, &err), STATE_ERROR);
	/* The library says what is damaged; the CLI adds the way out for this kind. */
	assert_non_null(strstr(err.message, "the state database is damaged"));
	assert_int_equal(err.kind, CP_ERR_STATE_DAMAGED);

	assert_int_equal(state_open_for_check(fx->dir, &fx->state, &err), 0);
	size_t counts[STATE_PROBLEM_INPUT_CHANGED + 1] = {0};
	assert_int_equal(state_check(fx->state, count_problems, counts, &err), 0);
	assert_int_equal(counts[STATE_PROBLEM_DAMAGED_RECORD], 1);
	assert_int_equal(counts[STATE_PROBLEM_INTEGRITY], 0);
	size_t repaired;
	assert_int_equal(state_repair(fx->state, &repaired, &err), 0);
	assert_int_equal(repaired, 1);
	reopen_state(fx);
	assert_int_equal(reason_of(fx, &fx->query), STATE_PREVIOUS_INTERRUPTED);

	/* A recorded output changed on disk is listed by check. */
	record(fx, &fx->query);
	write_text(fx->out1, "changed\n");
	memset(counts, 0, sizeof(counts));
	assert_int_equal(state_check(fx->state, count_problems, counts, &err), 0);
	assert_int_equal(counts[STATE_PROBLEM_OUTPUT_CHANGED], 1);
	assert_int_equal(counts[STATE_PROBLEM_DAMAGED_RECORD], 0);
	cp_err_release(&err);
}

/* Outputs written while a job failed are not to be adopted; older ones are. */
static void test_adoption_suspect(void **vstate)
{
	struct fixture *fx = *vstate;
	struct cp_err err = CP_ERR_INIT;
	int64_t now = state_now_ns();
	struct state_attempt failed = {.exit_code = 1, .start_ns = now - 2000000000LL, .end_ns = now};
	assert_int_equal(state_record_failure(fx->state, "other/job", &failed, &err), 0);
	write_text(fx->out1, "partial\n");
	write_text(fx->out2, "partial\n");
	struct strbuf detail = STRBUF_INIT;
	bool suspect;
	reopen_state(fx);
	assert_int_equal(state_adoption_suspect(fx->state, &fx->query, &suspect, &detail, &err), 0);
	assert_true(suspect);
	assert_non_null(strstr(detail.buf, "was written while a job failed or was interrupted"));
	make_outputs(fx); /* mtimes long before the failure */
	reopen_state(fx);
	assert_int_equal(state_adoption_suspect(fx->state, &fx->query, &suspect, NULL, &err), 0);
	assert_false(suspect);
	strbuf_release(&detail);
	cp_err_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_blob_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_row_added_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_files_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reason_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_set_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_touch_does_not_rerun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_content_change_same_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_unchanged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_and_interrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_paths_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_paths_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_recorded_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_made_only_and_learn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_paths_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_in_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explicit_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_and_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_live_child, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_identities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_names_statement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_sees_job_finished_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claims_of_live_and_dead_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_database_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_and_repair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adoption_suspect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_perf_noop, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
