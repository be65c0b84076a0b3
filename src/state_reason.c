/*
 * Why a job is not up to date (state_job_reason), and whether outputs about
 * to be adopted may be the work of a failed attempt. Reads only the records
 * in memory and the stat snapshot: no SQL. Part of the state module
 * (state_int.h lists its files).
 */
#include "state_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- Reasons ---------------------------------------------------------------- */

static const char *const reason_strings[STATE_REASON_COUNT] = {
	[STATE_UP_TO_DATE] = "up to date",
	[STATE_FORCED] = "forced",
	[STATE_OUTPUT_MISSING] = "output missing",
	[STATE_NEVER_RECORDED] = "never recorded",
	[STATE_OUTPUT_MODIFIED] = "output modified since recorded",
	[STATE_INPUT_CHANGED] = "input changed",
	[STATE_COMMAND_CHANGED] = "command changed",
	[STATE_INPUT_SET_CHANGED] = "set of inputs changed",
	[STATE_UPSTREAM_RUNS] = "upstream job runs",
	[STATE_PREVIOUS_FAILED] = "previous run failed",
	[STATE_PREVIOUS_INTERRUPTED] = "previous run interrupted",
	[STATE_RUNNING_ELSEWHERE] = "running in another run",
};

const char *state_reason_string(enum state_reason reason)
{
	if ((unsigned)reason >= STATE_REASON_COUNT)
		BUG("bad state_reason %d", (int)reason);
	return reason_strings[reason];
}

void state_reason_describe(enum state_reason reason, const char *detail, struct strbuf *out)
{
	strbuf_adds(out, state_reason_string(reason));
	if (detail && *detail) {
		strbuf_adds(out, ": ");
		strbuf_adds(out, detail);
	}
}

/*
 * One reason check. A `peek` (state_jobs_settled) writes nothing, so threads
 * may run peeks at once: where the check would write (stat a path, hash a
 * file, look up a path, ask whether a claim's holder lives) it gives up,
 * returning CHECK_GAVE_UP, and leaves the job to state_job_reason.
 */
struct reason_check {
	struct state *state;
	struct reason_scratch *scratch;
	bool peek;
};

enum { CHECK_GAVE_UP = 1 };

void reason_scratch_release(struct reason_scratch *scratch)
{
	free(scratch->positions);
	free(scratch->output_files);
	free(scratch->marks);
	memset(scratch, 0, sizeof(*scratch));
}

/* file_seen, but a peek gives up on a path not stat'ed yet. */
static int check_file_seen(const struct reason_check *check, size_t index, struct file_signature *out,
			   struct cp_err *err)
{
	if (check->peek && !check->state->files[index].seen)
		return CHECK_GAVE_UP;
	return file_seen(check->state, index, out, err);
}

/*
 * Whether the file now differs from `recorded`: equal size and mtime mean
 * unchanged; a different size means changed; otherwise the content hash decides.
 */
static int check_file_differs(const struct reason_check *check, size_t index, const struct job_file *recorded,
			      bool *differs, struct cp_err *err)
{
	struct state *state = check->state;
	struct file_signature now;
	int rc = check_file_seen(check, index, &now, err);
	if (rc)
		return rc;
	if (!now.exists || !recorded->exists) {
		*differs = now.exists != recorded->exists;
		return 0;
	}
	if (now.size == recorded->size && now.mtime_ns == recorded->mtime_ns) {
		*differs = false;
		return 0;
	}
	if (now.size != recorded->size || !recorded->hashed) {
		*differs = true;
		return 0;
	}
	if (check->peek && !now.hashed)
		return CHECK_GAVE_UP; /* hashing would fill the hash cache */
	if (file_hash_seen(state, index, err) < 0)
		return STATE_ERROR;
	now = file_signature_of(&state->files[index]);
	*differs = !now.exists || !now.hashed || now.size != recorded->size || now.hash != recorded->hash;
	return 0;
}

int file_differs(struct state *state, size_t index, const struct job_file *recorded, bool *differs,
		 struct cp_err *err)
{
	struct reason_check check = {.state = state, .scratch = &state->reason_scratch};
	return check_file_differs(&check, index, recorded, differs, err);
}

/*
 * An output the job's finished run did not write (an optional one) is part of its recorded result:
 * absent now as then, it is no reason to run; if it appears, the record comparison says so.
 */
static bool recorded_absent(const struct job_entry *job, size_t file)
{
	if (!job || !job->recorded)
		return false;
	const struct job_file *outputs = job->files + job->input_count;
	size_t at = job_files_find(outputs, job->output_count, file);
	return at != SIZE_MAX && !outputs[at].exists;
}

static void set_detail(struct strbuf *detail, const char *prefix, const char *text)
{
	if (!detail)
		return;
	strbuf_adds(detail, prefix);
	strbuf_adds(detail, text);
}

void holder_detail(struct strbuf *detail, const char *host, int64_t pid)
{
	if (detail)
		strbuf_addf(detail, "pid %lld on %s", (long long)pid, host ? host : "unknown host");
}

static size_t query_file_id(const struct state *state, uint32_t id)
{
	if (id >= state->file_count)
		BUG("file id %u from another state handle", (unsigned)id);
	return id;
}

/* The file index of a query path: from its id, else looked up (a peek has ids: see state_jobs_settled). */
static size_t query_file(struct state *state, const uint32_t *ids, const char *const *paths, size_t i)
{
	return ids ? query_file_id(state, ids[i]) : file_intern(state, paths[i]);
}

/* The checks that compare with a successful record; *reason stays UP_TO_DATE when all pass. */
static int compare_with_record(const struct reason_check *check, const struct state_job_query *query,
			       struct job_entry *job, const size_t *output_files, enum state_reason *reason,
			       struct strbuf *detail, struct cp_err *err)
{
	struct state *state = check->state;
	struct reason_scratch *scratch = check->scratch;
	const struct job_file *outputs = job->files + job->input_count;
	int rc;
	for (size_t i = 0; i < query->output_count; i++) {
		size_t file = output_files[i];
		size_t at = job_files_find(outputs, job->output_count, file);
		bool differs = true;
		if (at != SIZE_MAX && (rc = check_file_differs(check, file, &outputs[at], &differs, err)))
			return rc;
		if (differs) {
			*reason = STATE_OUTPUT_MODIFIED;
			set_detail(detail, "", query->outputs[i]);
			if (at == SIZE_MAX && detail)
				strbuf_adds(detail, " (not a recorded output)");
			return 0;
		}
	}

	/* Where each query input sits among the recorded inputs (SIZE_MAX: not recorded). */
	ALLOC_GROW(scratch->positions, query->input_count + 1, scratch->positions_cap);
	size_t *positions = scratch->positions;
	for (size_t i = 0; i < query->input_count; i++) {
		size_t file = query_file(state, query->input_ids, query->inputs, i);
		positions[i] = job_files_find(job->files, job->input_count, file);
		if (positions[i] == SIZE_MAX || (query->input_pending && query->input_pending[i]))
			continue;
		bool differs;
		if ((rc = check_file_differs(check, file, &job->files[positions[i]], &differs, err)))
			return rc;
		if (differs) {
			*reason = STATE_INPUT_CHANGED;
			set_detail(detail, "", query->inputs[i]);
			return 0;
		}
	}

	if (query->definition_hash != job->definition_hash) {
		*reason = STATE_COMMAND_CHANGED;
		return 0;
	}

	ALLOC_GROW(scratch->marks, job->input_count + 1, scratch->marks_cap);
	memset(scratch->marks, 0, job->input_count);
	for (size_t i = 0; i < query->input_count; i++) {
		if (positions[i] == SIZE_MAX) {
			*reason = STATE_INPUT_SET_CHANGED;
			set_detail(detail, "added ", query->inputs[i]);
			return 0;
		}
		scratch->marks[positions[i]] = 1;
	}
	for (size_t i = 0; i < job->input_count; i++) {
		if (!scratch->marks[i]) {
			*reason = STATE_INPUT_SET_CHANGED;
			set_detail(detail, "removed ", state->files[job->files[i].file].path);
			return 0;
		}
	}
	return 0;
}

static int job_reason(const struct reason_check *check, const struct state_job_query *query,
		      enum state_reason *reason, struct strbuf *detail, struct cp_err *err)
{
	struct state *state = check->state;
	if (detail)
		strbuf_reset(detail);
	*reason = STATE_UP_TO_DATE;
	if (query->forced && !query->cutoff_check) {
		*reason = STATE_FORCED;
		return 0;
	}

	/*
	 * A live run's claim comes before the files: what that run is writing
	 * now says nothing yet (a missing output is no reason to run it twice).
	 */
	struct job_entry *job = job_find(state, query->job_id);
	const struct job_claim *claim = job ? job->claim : NULL;
	if (claim && check->peek)
		return CHECK_GAVE_UP;
	bool claimed_by_live_run = claim && strcmp(claim->run, state->run_id) != 0 &&
				   holder_alive(state, claim->host, claim->pid, claim->pid_start);
	if (claimed_by_live_run) {
		*reason = STATE_RUNNING_ELSEWHERE;
		holder_detail(detail, claim->host, claim->pid);
		return 0;
	}

	/* Each output's file index, looked up once for both passes. */
	struct reason_scratch *scratch = check->scratch;
	ALLOC_GROW(scratch->output_files, query->output_count + 1, scratch->output_files_cap);
	size_t *output_files = scratch->output_files;
	for (size_t i = 0; i < query->output_count; i++) {
		struct file_signature now;
		output_files[i] = query_file(state, query->output_ids, query->outputs, i);
		int rc = check_file_seen(check, output_files[i], &now, err);
		if (rc)
			return rc;
		if (!now.exists && !recorded_absent(job, output_files[i])) {
			*reason = STATE_OUTPUT_MISSING;
			set_detail(detail, "", query->outputs[i]);
			return 0;
		}
	}

	if (!job || (!job->recorded && !claim && job->outcome == OUTCOME_NONE)) {
		*reason = STATE_NEVER_RECORDED;
		return 0;
	}
	if (job->recorded) {
		int rc = compare_with_record(check, query, job, output_files, reason, detail, err);
		if (rc)
			return rc;
		if (*reason != STATE_UP_TO_DATE)
			return 0;
	}
	if (query->upstream_runs && !query->cutoff_check) {
		*reason = STATE_UPSTREAM_RUNS;
		return 0;
	}
	/* A claim is the latest attempt: it outranks the outcome recorded before it. */
	bool ours = claim && strcmp(claim->run, state->run_id) == 0;
	if (claim && !(ours && query->cutoff_check)) {
		*reason = ours ? STATE_RUNNING_ELSEWHERE : STATE_PREVIOUS_INTERRUPTED;
		holder_detail(detail, claim->host, claim->pid);
		return 0;
	}
	if (job->outcome == OUTCOME_FAILED) {
		*reason = STATE_PREVIOUS_FAILED;
		if (detail)
			strbuf_addf(detail, "exit code %d", job_attempt_of(job).exit_code);
		return 0;
	}
	if (job->outcome == OUTCOME_INTERRUPTED) {
		*reason = STATE_PREVIOUS_INTERRUPTED;
		struct attempt_origin origin = job_origin_of(job);
		holder_detail(detail, origin.host, origin.pid);
		return 0;
	}
	return 0;
}

int state_job_reason(struct state *state, const struct state_job_query *query, enum state_reason *reason,
		     struct strbuf *detail, struct cp_err *err)
{
	struct reason_check check = {.state = state, .scratch = &state->reason_scratch};
	return job_reason(&check, query, reason, detail, err) < 0 ? STATE_ERROR : 0;
}

/* ---- Settled jobs, in threads ------------------------------------------------ */

/* A thread of state_jobs_settled is worth starting for this many jobs (about a microsecond each). */
enum { SETTLE_JOBS_PER_THREAD = 512, SETTLE_CHUNK = 256 };

/* The jobs of one state_jobs_settled, shared by its threads: each takes the next SETTLE_CHUNK. */
struct settle_batch {
	struct state *state;
	size_t count;
	state_query_fn *fill;
	void *context;
	bool *settled; /* each slot written by the one thread that took its job */
	atomic_size_t next;
};

static void *settle_batch_run(void *arg)
{
	struct settle_batch *batch = arg;
	struct reason_scratch scratch = {0};
	struct reason_check check = {.state = batch->state, .scratch = &scratch, .peek = true};
	struct strbuf definition = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT; /* a peek fails nowhere: it gives up where state_job_reason could fail */
	size_t from, to;
	while (work_take(&batch->next, batch->count, SETTLE_CHUNK, &from, &to)) {
		for (size_t i = from; i < to; i++) {
			struct state_job_query query;
			enum state_reason reason;
			batch->fill(batch->context, i, &definition, &query);
			/* Without ids the check would look paths up, growing the path index. */
			batch->settled[i] = query.input_ids && query.output_ids &&
					    job_reason(&check, &query, &reason, NULL, &err) == 0 &&
					    reason == STATE_UP_TO_DATE;
		}
	}
	cp_err_release(&err);
	strbuf_release(&definition);
	reason_scratch_release(&scratch);
	return NULL;
}

void state_jobs_settled(struct state *state, size_t count, state_query_fn *fill, void *context, unsigned threads,
			bool *settled)
{
	struct settle_batch batch = {.state = state, .count = count, .fill = fill, .context = context, .settled = settled};
	atomic_init(&batch.next, 0);
	work_run_threads(settle_batch_run, &batch, work_thread_count(threads, count, SETTLE_JOBS_PER_THREAD));
}

/* ---- Adoption ---------------------------------------------------------------- */

/* A file written this close to a failed attempt's start or end may be its work (clocks are coarse). */
#define FAILURE_WINDOW_MARGIN_NS 1000000000LL

static int compare_windows(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* The times during which a failed or interrupted attempt ran, merged into disjoint windows. */
static void build_failure_windows(struct state *state)
{
	size_t count = 0, cap = 0;
	int64_t *windows = NULL;
	int64_t now = state_now_ns();
	for (size_t i = 0; i < state->job_count; i++) {
		const struct job_entry *job = &state->jobs[i];
		if (!job->present || (job->outcome != OUTCOME_FAILED && job->outcome != OUTCOME_INTERRUPTED))
			continue;
		struct job_attempt attempt = job_attempt_of(job);
		if (attempt.start_ns <= 0)
			continue;
		ALLOC_GROW(windows, 2 * (count + 1), cap);
		windows[2 * count] = attempt.start_ns - FAILURE_WINDOW_MARGIN_NS;
		windows[2 * count + 1] = (attempt.end_ns > 0 ? attempt.end_ns : now) + FAILURE_WINDOW_MARGIN_NS;
		count++;
	}
	if (count)
		qsort(windows, count, 2 * sizeof(*windows), compare_windows);
	size_t merged = 0;
	for (size_t i = 0; i < count; i++) {
		if (merged && windows[2 * i] <= windows[2 * merged - 1]) {
			if (windows[2 * i + 1] > windows[2 * merged - 1])
				windows[2 * merged - 1] = windows[2 * i + 1];
			continue;
		}
		windows[2 * merged] = windows[2 * i];
		windows[2 * merged + 1] = windows[2 * i + 1];
		merged++;
	}
	state->failure_windows = windows;
	state->failure_window_count = merged;
	state->failure_windows_built = true;
}

static bool in_failure_window(const struct state *state, int64_t t)
{
	size_t lo = 0, hi = state->failure_window_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t < state->failure_windows[2 * mid])
			hi = mid;
		else if (t > state->failure_windows[2 * mid + 1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

int state_adoption_suspect(struct state *state, const struct state_job_query *query, bool *suspect,
			   struct strbuf *detail, struct cp_err *err)
{
	*suspect = false;
	if (!state->failure_windows_built)
		build_failure_windows(state);
	for (size_t i = 0; i < query->output_count && state->failure_window_count; i++) {
		size_t index = query_file(state, query->output_ids, query->outputs, i);
		struct file_signature now;
		if (file_seen(state, index, &now, err) < 0)
			return STATE_ERROR;
		if (now.exists && now.mtime_ns && in_failure_window(state, now.mtime_ns)) {
			*suspect = true;
			if (detail)
				strbuf_addf(detail, "%s was written while a job failed or was interrupted",
					    query->outputs[i]);
			return 0;
		}
	}
	return 0;
}
