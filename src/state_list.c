/*
 * Listing: records and their recorded files, as the CLI shows them. Part of
 * the state module (state_int.h lists its files).
 */
#include "state_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- Listing ------------------------------------------------------------ */

const char *state_status_string(enum state_status status)
{
	switch (status) {
	case STATE_STATUS_NONE:
		return "none";
	case STATE_STATUS_RUNNING:
		return "running";
	case STATE_STATUS_DONE:
		return "done";
	case STATE_STATUS_FAILED:
		return "failed";
	case STATE_STATUS_INTERRUPTED:
		return "interrupted";
	}
	BUG("bad state_status %d", (int)status);
}

static void job_to_record(const struct state *state, const struct job_entry *job, struct state_job_record *out)
{
	static const enum state_status from_outcome[] = {
		[OUTCOME_NONE] = STATE_STATUS_NONE,
		[OUTCOME_DONE] = STATE_STATUS_DONE,
		[OUTCOME_FAILED] = STATE_STATUS_FAILED,
		[OUTCOME_INTERRUPTED] = STATE_STATUS_INTERRUPTED,
	};
	memset(out, 0, sizeof(*out));
	out->job_id = job->job_id;
	const struct job_claim *claim = job->claim;
	struct job_attempt attempt = job_attempt_of(job);
	out->status = claim ? STATE_STATUS_RUNNING : from_outcome[job->outcome];
	out->recorded = job->recorded;
	out->adopted = job->adopted;
	out->definition_hash = job->definition_hash;
	out->input_set_hash = job->input_set_hash;
	out->input_count = job->input_count;
	out->output_count = job->output_count;
	out->exit_code = attempt.exit_code;
	out->start_ns = attempt.start_ns;
	out->end_ns = attempt.end_ns;
	struct attempt_origin origin = job_origin_of(job);
	out->host = origin.host;
	out->pid = origin.pid;
	out->run_id = origin.run_id;
	if (!claim)
		return;
	out->holder_run = claim->run;
	out->holder_host = claim->host;
	out->holder_pid = claim->pid;
	out->holder_alive = strcmp(claim->run, state->run_id) == 0 ||
			    holder_alive(state, claim->host, claim->pid, claim->pid_start);
}

bool state_job_lookup(struct state *state, const char *job_id, struct state_job_record *out)
{
	const struct job_entry *job = job_find(state, job_id);
	if (!job)
		return false;
	job_to_record(state, job, out);
	return true;
}

bool state_job_log(struct state *state, const char *job_id, struct strbuf *out)
{
	const struct job_entry *job = job_find(state, job_id);
	if (!job)
		return false;
	if (job->claim && job->claim->log) {
		strbuf_adds(out, job->claim->log);
		return true;
	}
	return attempt_log_path(job, out);
}

static int compare_jobs_by_id(const void *a, const void *b)
{
	const struct job_entry *x = *(const struct job_entry *const *)a;
	const struct job_entry *y = *(const struct job_entry *const *)b;
	return strcmp(x->job_id, y->job_id);
}

int state_foreach_job(struct state *state, const char *prefix,
		      int (*fn)(const struct state_job_record *record, void *data), void *data)
{
	const struct job_entry **list = xmalloc((state->job_count + 1) * sizeof(*list));
	size_t n = 0;
	for (size_t i = 0; i < state->job_count; i++) {
		const struct job_entry *job = &state->jobs[i];
		if (job->present && (!prefix || str_starts_with(job->job_id, prefix)))
			list[n++] = job;
	}
	qsort(list, n, sizeof(*list), compare_jobs_by_id);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct state_job_record record;
		job_to_record(state, list[i], &record);
		rc = fn(&record, data);
	}
	free(list);
	return rc;
}

int state_foreach_job_file(struct state *state, const char *job_id, int role,
			   int (*fn)(const struct state_file *file, void *data), void *data)
{
	const struct job_entry *job = job_find(state, job_id);
	if (!job)
		return 0;
	const struct job_file *part = role == 0 ? job->files : job->files + job->input_count;
	size_t count = role == 0 ? job->input_count : job->output_count;
	for (size_t i = 0; i < count; i++) {
		struct state_file file = {state->files[part[i].file].path, job_file_signature(&part[i])};
		int rc = fn(&file, data);
		if (rc)
			return rc;
	}
	return 0;
}
