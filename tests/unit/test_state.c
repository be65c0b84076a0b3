/*
 * Unit tests for the state module: real SQLite databases and real files in a
 * temporary directory per test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
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
		.definition_text = "cat in1 in2 > out1; cp out1 out2",
		.inputs = fx->inputs,
		.input_count = 2,
		.outputs = fx->outputs,
		.output_count = 2,
	};
	open_state(fx);
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
	state_close(fx->state);
	nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
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
	assert_string_equal(rec.log_path, "/logs/job.log");
	assert_int_equal(rec.start_ns, 1);
	assert_int_equal(rec.end_ns, 2);
	assert_int_equal(rec.pid, getpid());
	assert_true(rec.definition_hash == state_definition_hash(fx->query.definition_text));
	assert_true(rec.input_set_hash == state_input_set_hash(fx->inputs, 2));
	assert_null(rec.holder_run);

	assert_int_equal(reason_of(fx, &fx->query), STATE_UP_TO_DATE);
	/* Nothing changed: the no-op check hashes nothing. */
	assert_int_equal(hashes_computed(fx), 0);
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

	q.definition_text = "cat in1 in2 in3 > out1; cp out1 out2";
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
	assert_string_equal(rec.log_path, "/logs/f.log");

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
		.definition_hash = state_definition_hash(fx->query.definition_text),
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
	assert_string_equal(rec.log_path, "/logs/node.log");

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
	int ready[2], release[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* Another cpipe run: claims the job, then holds it until told to exit. */
		close(ready[0]);
		close(release[1]);
		struct state *other = NULL;
		struct cp_err child_err = CP_ERR_INIT;
		char status = 'n';
		if (state_open(fx->dir, &other, &child_err) == 0 &&
		    state_claim_job(other, fx->query.job_id, "/logs/child.log", &child_err) == 0)
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
	assert_string_equal(rec.log_path, "/logs/child.log");

	/* The child dies without cleaning up: its claim expires and reads as interrupted. */
	close(release[1]);
	int wstatus;
	assert_int_equal(waitpid(child, &wstatus, 0), child);
	close(ready[0]);
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
	assert_int_equal(sqlite3_exec(db, "DROP TABLE job_files; DROP TABLE jobs", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(state_claim_job(fx->state, "x", NULL, &err), STATE_ERROR);
	assert_non_null(strstr(err.message, "no such table"));
	assert_non_null(strstr(err.message, "FROM jobs WHERE name = ?1"));
	cp_err_release(&err);
}

/* ---- Performance (opt-in: CPIPE_STATE_PERF=<jobs>) ------------------------------ */

static double seconds_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

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
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_int_equal(state_begin(fx->state, &err), 0);
	for (size_t i = 0; i < jobs; i++) {
		char id[64];
		snprintf(id, sizeof(id), "perf/n=%zu", i);
		const char *in[] = {paths[2 * i], paths[2 * i + 1]};
		const char *out[] = {outs[2 * i], outs[2 * i + 1]};
		struct state_job_query q = {id, "definition", in, 2, out, 2, false, false};
		if (state_adopt(fx->state, &q, &err) != 0)
			fail_msg("%s", err.message);
	}
	assert_int_equal(state_commit(fx->state, &err), 0);
	print_message("record %zu jobs: %.3f s\n", jobs, seconds_since(&start));

	state_close(fx->state);
	fx->state = NULL;
	clock_gettime(CLOCK_MONOTONIC, &start);
	open_state(fx);
	double open_s = seconds_since(&start);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (size_t i = 0; i < jobs; i++) {
		char id[64];
		snprintf(id, sizeof(id), "perf/n=%zu", i);
		const char *in[] = {paths[2 * i], paths[2 * i + 1]};
		const char *out[] = {outs[2 * i], outs[2 * i + 1]};
		struct state_job_query q = {id, "definition", in, 2, out, 2, false, false};
		enum state_reason reason;
		assert_int_equal(state_job_reason(fx->state, &q, &reason, NULL, &err), 0);
		assert_int_equal(reason, STATE_UP_TO_DATE);
	}
	struct state_stats stats;
	state_stats(fx->state, &stats);
	print_message("no-op: open+load %.3f s, check %.3f s (%zu jobs, %zu files, %llu stats, %llu hashes)\n",
		      open_s, seconds_since(&start), stats.jobs, stats.files, (unsigned long long)stats.stat_calls,
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reason_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_set_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_touch_does_not_rerun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_content_change_same_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_and_interrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explicit_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_and_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_live_child, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_identities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_names_statement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_perf_noop, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
