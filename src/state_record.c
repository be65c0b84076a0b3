/*
 * Claims and records: whether a claim's holder lives; a job is claimed before it runs (a claim that finds a
 * record it did not load fails with STATE_CHANGED), then its success, failure
 * or interruption is recorded; adoption and forgetting. Writes go to the
 * database first, then are mirrored in memory. Part of the state module
 * (state_int.h lists its files).
 */
#include "state_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Claim holders ------------------------------------------------------------ */

/* Field 22 (starttime) of a /proc/PID/stat line, or 0 when the line is cut short. */
static int64_t stat_field_start_time(const char *line)
{
	/* The command name (field 2) may hold spaces and parentheses: skip to the last ')'. */
	const char *p = strrchr(line, ')');
	if (!p)
		return 0;
	p++;
	/* Fields 3.. follow, space-separated; starttime is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return 0;
	}
	return strtoll(p + 1, NULL, 10);
}

/* Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or 0 when unknown. */
int64_t process_start_time(int64_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	struct strbuf text = STRBUF_INIT;
	struct cp_err ignored = CP_ERR_INIT;
	int64_t start = 0;
	if (read_whole_file(path, &text, &ignored) == 0)
		start = stat_field_start_time(text.buf);
	cp_err_release(&ignored);
	strbuf_release(&text);
	return start;
}

/* A holder is dead only when we can tell: same host and the pid is gone or is another process. */
bool holder_alive(const struct state *state, const char *host, int64_t pid, int64_t pid_start)
{
	if (!host || strcmp(host, state->host) != 0)
		return true;
	if (pid <= 0)
		return false;
	if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
		return false;
	if (pid_start != 0) {
		int64_t now_start = process_start_time(pid);
		if (now_start != 0 && now_start != pid_start)
			return false;
	}
	return true;
}

/* ---- Claims and records ---------------------------------------------------- */

/*
 * Re-read a job's recorded files from the database (after another run wrote
 * them): file ids are looked up one by one, as this is rare. A damaged blob
 * fails, naming the job.
 */
static int job_reload_files(struct state *state, size_t job_index, struct cp_err *err)
{
	struct job_entry *job = &state->jobs[job_index];
	sqlite3_stmt *stmt = statement(state, STMT_JOB_FILES_SELECT, err);
	if (!stmt)
		return STATE_ERROR;
	bind_text(stmt, 1, job->job_id);
	int rc = sqlite3_step(stmt);
	struct strbuf blob = STRBUF_INIT;
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_BLOB)
		strbuf_add(&blob, sqlite3_column_blob(stmt, 0), (size_t)sqlite3_column_bytes(stmt, 0));
	statement_done(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		strbuf_release(&blob);
		return db_fail(state, STMT_JOB_FILES_SELECT, err);
	}
	job_clear_files(job);
	if (!blob.len) {
		strbuf_release(&blob);
		return 0;
	}
	struct files_blob_reader reader;
	size_t inputs = 0, outputs = 0;
	struct job_file *files = NULL;
	bool ok = files_blob_open(&reader, blob.buf, blob.len, &inputs, &outputs);
	if (ok)
		files = xcalloc(inputs + outputs + 1, sizeof(*files));
	for (size_t i = 0; ok && i < inputs + outputs; i++) {
		int64_t id;
		struct file_signature sig;
		if (!(ok = files_blob_next(&reader, &id, &sig)))
			break;
		if (!(stmt = statement(state, STMT_FILE_PATH, err))) {
			free(files);
			strbuf_release(&blob);
			return STATE_ERROR;
		}
		bind_int64(stmt, 1, id);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			size_t index = file_intern(state, (const char *)sqlite3_column_text(stmt, 0));
			if (!state->files[index].db_id)
				state->files[index].db_id = id;
			job_file_set(&files[i], index, &sig);
		} else {
			ok = blob_fail(&reader, "unknown file id");
		}
		statement_done(stmt);
	}
	ok = ok && files_blob_close(&reader);
	if (!ok) {
		cp_err_set(err, NULL, 0, "%s: job %s: damaged list of recorded files: %s", state->db_path,
			   job->job_id, reader.problem);
		free(files);
		strbuf_release(&blob);
		return STATE_ERROR;
	}
	job = &state->jobs[job_index]; /* file_intern does not move jobs, but stay safe */
	job->input_count = job_files_normalize(files, inputs);
	job->output_count = job_files_normalize(files + inputs, outputs);
	memmove(files + job->input_count, files + inputs, job->output_count * sizeof(*files));
	job->files = files;
	job->files_owned = true;
	strbuf_release(&blob);
	return 0;
}

/*
 * Whether the job's latest finished attempt in the database (`status`,
 * `end_ns`, `run_id` as read now) is not the one this handle knows: another
 * run finished it after our snapshot was taken (its results may have waited
 * in that run's open transaction).
 */
static bool finished_elsewhere(struct state *state, const char *job_id, const char *status, int64_t end_ns,
			       const char *run_id)
{
	enum job_outcome outcome = outcome_from_text(status);
	if (outcome == OUTCOME_NONE)
		return false;
	const struct job_entry *job = job_find(state, job_id);
	if (!job)
		return true;
	const char *known_run = job_origin_of(job).run_id;
	return job->outcome != outcome || job_attempt_of(job).end_ns != end_ns || !known_run != !run_id ||
	       (run_id && strcmp(known_run, run_id) != 0);
}

int state_claim_job(struct state *state, const char *job_id, const char *log_path, struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = 0;
	sqlite3_stmt *stmt = statement(state, STMT_CLAIM_SELECT, err);
	if (!stmt) {
		rc = STATE_ERROR;
		goto out;
	}
	bind_text(stmt, 1, job_id);
	int step = sqlite3_step(stmt);
	char *holder_run = NULL, *holder_host = NULL;
	int64_t holder_pid = 0, holder_pid_start = 0;
	bool changed = false;
	if (step == SQLITE_ROW) {
		holder_run = column_strdup(stmt, 0);
		holder_host = column_strdup(stmt, 1);
		holder_pid = sqlite3_column_int64(stmt, 2);
		holder_pid_start = sqlite3_column_int64(stmt, 3);
		changed = finished_elsewhere(state, job_id, (const char *)sqlite3_column_text(stmt, 4),
					     sqlite3_column_int64(stmt, 5), (const char *)sqlite3_column_text(stmt, 6));
	}
	statement_done(stmt);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = db_fail(state, STMT_CLAIM_SELECT, err);
		goto release;
	}
	if (changed) {
		/* Decided on a stale snapshot: take the new record in, for the caller to decide again. */
		if ((rc = job_reload(state, job_id, err)) < 0 ||
		    (rc = job_reload_files(state, job_intern(state, job_id), err)) < 0)
			goto release;
		cp_err_set(err, NULL, 0, "job %s was finished by another run after this one looked at it", job_id);
		rc = STATE_CHANGED;
		goto release;
	}
	if (holder_run && strcmp(holder_run, state->run_id) != 0) {
		if (holder_alive(state, holder_host, holder_pid, holder_pid_start)) {
			cp_err_set(err, NULL, 0, "job %s is held by run %s (pid %lld on host %s)", job_id, holder_run,
				   (long long)holder_pid, holder_host ? holder_host : "unknown");
			rc = STATE_HELD;
			goto release;
		}
		/* Its job processes may outlive it: the caller ends them before running the job again. */
		if (strvec_find(&state->dead_runs, holder_run) < 0)
			strvec_push(&state->dead_runs, holder_run);
		/* The dead holder's attempt becomes an interrupted one, so a later release keeps that fact. */
		if (!(stmt = statement(state, STMT_JOB_INTERRUPT, err))) {
			rc = STATE_ERROR;
			goto release;
		}
		bind_text(stmt, 1, job_id);
		bind_int64(stmt, 2, state_now_ns());
		if ((rc = statement_run(state, STMT_JOB_INTERRUPT, stmt, err)) < 0)
			goto release;
	}
	if (!(stmt = statement(state, STMT_CLAIM_SET, err))) {
		rc = STATE_ERROR;
		goto release;
	}
	bind_text(stmt, 1, job_id);
	bind_text(stmt, 2, state->run_id);
	bind_text(stmt, 3, state->host);
	bind_int64(stmt, 4, state->pid);
	bind_int64(stmt, 5, state->pid_start);
	bind_int64(stmt, 6, state_now_ns());
	bind_text(stmt, 7, log_path);
	if ((rc = statement_run(state, STMT_CLAIM_SET, stmt, err)) < 0)
		goto release;
	rc = job_reload(state, job_id, err);
release:
	free(holder_run);
	free(holder_host);
out:
	if (rc == STATE_HELD || rc == STATE_CHANGED) {
		/* Not a database failure: end our transaction normally, keeping the caller's message. */
		struct cp_err ignored = CP_ERR_INIT;
		write_end(state, 0, &ignored);
		cp_err_release(&ignored);
		return rc;
	}
	return write_end(state, rc, err);
}

void state_dead_runs(struct state *state, struct strvec *out)
{
	for (size_t i = 0; i < state->dead_runs.count; i++)
		if (strvec_find(out, state->dead_runs.items[i]) < 0)
			strvec_push(out, state->dead_runs.items[i]);
	const char *last_alive = NULL;
	for (size_t i = 0; i < state->job_count; i++) {
		const struct job_claim *claim = state->jobs[i].claim;
		if (!state->jobs[i].present || !claim || claim->run == last_alive || !strcmp(claim->run, state->run_id))
			continue;
		if (holder_alive(state, claim->host, claim->pid, claim->pid_start)) {
			last_alive = claim->run; /* claims of one run share its pooled run id */
			continue;
		}
		if (strvec_find(out, claim->run) < 0)
			strvec_push(out, claim->run);
	}
}

void state_refresh_paths(struct state *state, const char *const *paths, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		size_t index = index_find(state, &state->file_index, INDEX_FILES, paths[i], name_hash(paths[i]));
		if (index != SIZE_MAX)
			state->files[index].seen = false;
	}
}

int state_release_claim(struct state *state, const char *job_id, struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt = statement(state, STMT_CLAIM_RELEASE, err);
	if (stmt) {
		bind_text(stmt, 1, job_id);
		bind_text(stmt, 2, state->run_id);
		rc = statement_run(state, STMT_CLAIM_RELEASE, stmt, err);
		if (rc == 0)
			rc = job_reload(state, job_id, err);
	}
	return write_end(state, rc, err);
}

/*
 * The caller's signature is the file as the job read or wrote it: cache it,
 * and make later reason checks stat the file again rather than trust a
 * signature made elsewhere. Fills `out` with the file's index.
 */
static void learn_job_file(struct state *state, const struct state_file *entry, struct job_file *out)
{
	size_t index = file_intern(state, entry->path);
	file_learn(state, index, &entry->signature);
	state->files[index].seen = false;
	job_file_set(out, index, &entry->signature);
}

/* Give each file a row (for its id) and encode them into `blob`. */
static int encode_job_files(struct state *state, const struct job_file *files, size_t input_count,
			    size_t output_count, struct strbuf *blob, struct cp_err *err)
{
	files_blob_start(blob, input_count, output_count);
	for (size_t i = 0; i < input_count + output_count; i++) {
		if (file_store(state, files[i].file, err) < 0)
			return STATE_ERROR;
		struct file_signature sig = job_file_signature(&files[i]);
		files_blob_add(blob, state->files[files[i].file].db_id, &sig);
	}
	return 0;
}

static int record_success(struct state *state, const struct state_outcome *outcome, bool adopted,
			  struct cp_err *err)
{
	const struct state_attempt *attempt = &outcome->attempt;
	if (outcome->input_count > UINT32_MAX || outcome->output_count > JOB_OUTPUTS_LIMIT) {
		cp_err_set(err, NULL, 0, "job %s: %zu inputs and %zu outputs, more than cpipe records (%zu outputs at most)",
			   outcome->job_id, outcome->input_count, outcome->output_count, JOB_OUTPUTS_LIMIT);
		return STATE_ERROR;
	}
	const char **input_paths = xmalloc((outcome->input_count + 1) * sizeof(*input_paths));
	for (size_t i = 0; i < outcome->input_count; i++)
		input_paths[i] = outcome->inputs[i].path;
	uint64_t input_set_hash = state_input_set_hash(input_paths, outcome->input_count);
	free(input_paths);

	size_t total = outcome->input_count + outcome->output_count;
	struct job_file *files = xmalloc((total ? total : 1) * sizeof(*files));
	for (size_t i = 0; i < outcome->input_count; i++)
		learn_job_file(state, &outcome->inputs[i], &files[i]);
	for (size_t i = 0; i < outcome->output_count; i++)
		learn_job_file(state, &outcome->outputs[i], &files[outcome->input_count + i]);
	size_t inputs = job_files_normalize(files, outcome->input_count);
	size_t outputs = job_files_normalize(files + outcome->input_count, outcome->output_count);
	memmove(files + inputs, files + outcome->input_count, outputs * sizeof(*files));

	struct strbuf blob = STRBUF_INIT;
	if (write_begin(state, err) < 0) {
		free(files);
		return STATE_ERROR;
	}
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt;
	if (encode_job_files(state, files, inputs, outputs, &blob, err) < 0 ||
	    !(stmt = statement(state, STMT_JOB_SUCCESS, err)))
		goto out;
	bind_text(stmt, 1, outcome->job_id);
	sqlite3_bind_int(stmt, 2, adopted);
	bind_hash(stmt, 3, outcome->definition_hash);
	bind_hash(stmt, 4, input_set_hash);
	sqlite3_bind_int(stmt, 5, attempt->exit_code);
	bind_int64(stmt, 6, attempt->start_ns);
	bind_int64(stmt, 7, attempt->end_ns);
	bind_text(stmt, 8, attempt->host ? attempt->host : state->host);
	bind_int64(stmt, 9, attempt->pid ? attempt->pid : state->pid);
	bind_text(stmt, 10, state->run_id);
	bind_text(stmt, 11, attempt->log_path);
	sqlite3_bind_blob(stmt, 12, blob.buf, (int)blob.len, SQLITE_STATIC);
	if (statement_run(state, STMT_JOB_SUCCESS, stmt, err) < 0 || job_reload(state, outcome->job_id, err) < 0)
		goto out;
	size_t job_index = job_intern(state, outcome->job_id);
	struct job_entry *job = &state->jobs[job_index];
	job_clear_files(job);
	job->files = files;
	job->files_owned = true;
	job->input_count = inputs;
	job->output_count = outputs;
	files = NULL;
	rc = 0;
out:
	free(files);
	strbuf_release(&blob);
	return write_end(state, rc, err);
}

int state_record_success(struct state *state, const struct state_outcome *outcome, struct cp_err *err)
{
	return record_success(state, outcome, false, err);
}

/* Sign the query's files now (fresh stats, cache-aware hashing) and record them. */
static int record_current(struct state *state, const struct state_job_query *query,
			  const struct state_attempt *attempt, bool adopted, struct cp_err *err)
{
	size_t total = query->input_count + query->output_count;
	struct state_file *files = xcalloc(total ? total : 1, sizeof(*files));
	int rc = 0;
	for (size_t i = 0; i < total && rc == 0; i++) {
		files[i].path = i < query->input_count ? query->inputs[i] : query->outputs[i - query->input_count];
		rc = state_file_signature(state, files[i].path, &files[i].signature, err);
	}
	if (rc == 0) {
		struct state_outcome outcome = {
			.job_id = query->job_id,
			.definition_hash = query->definition_hash,
			.inputs = files,
			.input_count = query->input_count,
			.outputs = files + query->input_count,
			.output_count = query->output_count,
		};
		if (attempt)
			outcome.attempt = *attempt;
		rc = record_success(state, &outcome, adopted, err);
	}
	free(files);
	return rc;
}

int state_record_success_stat(struct state *state, const struct state_job_query *query,
			      const struct state_attempt *attempt, struct cp_err *err)
{
	return record_current(state, query, attempt, false, err);
}

int state_adopt(struct state *state, const struct state_job_query *query, struct cp_err *err)
{
	return record_current(state, query, NULL, true, err);
}

int state_record_unchanged(struct state *state, const struct state_job_query *query, bool *recorded,
			   struct strbuf *detail, struct cp_err *err)
{
	*recorded = false;
	struct state_job_query check = *query;
	check.cutoff_check = true;
	state_refresh_paths(state, query->inputs, query->input_count);
	state_refresh_paths(state, query->outputs, query->output_count);
	enum state_reason reason;
	if (state_job_reason(state, &check, &reason, detail, err) < 0)
		return STATE_ERROR;
	struct job_entry *job = job_find(state, query->job_id);
	if (reason != STATE_UP_TO_DATE || !job || !job->recorded)
		return 0;

	/* The signatures the check compared, hashed (from the cache unless the file was touched). */
	size_t total = query->input_count + query->output_count;
	struct state_file *files = xcalloc(total + 1, sizeof(*files));
	for (size_t i = 0; i < total; i++) {
		files[i].path = i < query->input_count ? query->inputs[i] : query->outputs[i - query->input_count];
		size_t index = file_intern(state, files[i].path);
		if (file_seen(state, index, &files[i].signature, err) < 0 || file_hash_seen(state, index, err) < 0) {
			free(files);
			return STATE_ERROR;
		}
		files[i].signature = file_signature_of(&state->files[index]);
	}
	/* The last attempt stays the record's: its times estimate the next run, its log is the job's. */
	struct job_attempt last = job_attempt_of(job); /* pooled: valid after the rewrite */
	struct attempt_origin last_origin = job_origin_of(job);
	struct strbuf log = STRBUF_INIT;
	bool logged = attempt_log_path(job, &log);
	struct state_outcome outcome = {
		.job_id = query->job_id,
		.definition_hash = job->definition_hash,
		.inputs = files,
		.input_count = query->input_count,
		.outputs = files + query->input_count,
		.output_count = query->output_count,
		.attempt = {last.exit_code, last.start_ns, last.end_ns, last_origin.host, last_origin.pid,
			    logged ? log.buf : NULL},
	};
	int rc = record_success(state, &outcome, job->adopted, err);
	strbuf_release(&log);
	free(files);
	*recorded = rc == 0;
	return rc;
}

int state_record_failure(struct state *state, const char *job_id, const struct state_attempt *attempt,
			 struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt = statement(state, STMT_JOB_FAILURE, err);
	if (stmt) {
		bind_text(stmt, 1, job_id);
		sqlite3_bind_int(stmt, 2, attempt->exit_code);
		bind_int64(stmt, 3, attempt->start_ns);
		bind_int64(stmt, 4, attempt->end_ns);
		bind_text(stmt, 5, attempt->host ? attempt->host : state->host);
		bind_int64(stmt, 6, attempt->pid ? attempt->pid : state->pid);
		bind_text(stmt, 7, state->run_id);
		bind_text(stmt, 8, attempt->log_path);
		rc = statement_run(state, STMT_JOB_FAILURE, stmt, err);
		if (rc == 0)
			rc = job_reload(state, job_id, err);
	}
	return write_end(state, rc, err);
}

int state_mark_interrupted(struct state *state, const char *job_id, struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt = statement(state, STMT_JOB_INTERRUPT, err);
	if (stmt) {
		bind_text(stmt, 1, job_id);
		bind_int64(stmt, 2, state_now_ns());
		rc = statement_run(state, STMT_JOB_INTERRUPT, stmt, err);
		if (rc == 0)
			rc = job_reload(state, job_id, err);
	}
	return write_end(state, rc, err);
}

int state_interrupt_run(struct state *state, struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	struct strvec names = STRVEC_INIT;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt = statement(state, STMT_RUN_INTERRUPT, err);
	if (stmt) {
		bind_text(stmt, 1, state->run_id);
		bind_int64(stmt, 2, state_now_ns());
		int step;
		while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
			strvec_push(&names, (const char *)sqlite3_column_text(stmt, 0));
		statement_done(stmt);
		if (step == SQLITE_DONE)
			rc = 0;
		else
			db_fail(state, STMT_RUN_INTERRUPT, err);
	}
	for (size_t i = 0; i < names.count && rc == 0; i++)
		rc = job_reload(state, names.items[i], err);
	strvec_release(&names);
	return write_end(state, rc, err);
}

/* Run a forget statement bound to `text`; adds the jobs removed. */
static int forget_run(struct state *state, enum statement id, const char *text, size_t *removed, struct cp_err *err)
{
	sqlite3_stmt *stmt = statement(state, id, err);
	if (!stmt)
		return STATE_ERROR;
	bind_text(stmt, 1, text);
	if (statement_run(state, id, stmt, err) < 0)
		return STATE_ERROR;
	*removed += (size_t)sqlite3_changes(state->db);
	return 0;
}

int state_forget(struct state *state, const char *prefix, const char *const *job_ids, size_t count,
		 size_t *forgotten, struct cp_err *err)
{
	size_t removed = 0;
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = 0;
	if (prefix)
		rc = forget_run(state, STMT_FORGET_PREFIX, prefix, &removed, err);
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = forget_run(state, STMT_FORGET_NAME, job_ids[i], &removed, err);
	rc = write_end(state, rc, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < state->job_count; i++) {
		struct job_entry *job = &state->jobs[i];
		if (!job->present)
			continue;
		bool match = prefix && str_starts_with(job->job_id, prefix);
		for (size_t k = 0; k < count && !match; k++)
			match = !strcmp(job->job_id, job_ids[k]);
		if (match) {
			job->present = false;
			job_clear_files(job);
		}
	}
	if (forgotten)
		*forgotten = removed;
	return 0;
}
