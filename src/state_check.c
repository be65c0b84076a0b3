/*
 * `cpipe state check` and `cpipe state repair`: integrity, damaged records,
 * claims of dead runs, and recorded files against the disk. Part of the
 * state module (state_int.h lists its files).
 */
#include "state_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- Check and repair ------------------------------------------------------ */

static int report_problem(int (*fn)(const struct state_problem *problem, void *data), void *data,
			  enum state_problem_kind kind, const char *job_id, const char *path, const char *text)
{
	struct state_problem problem = {kind, job_id, path, text};
	return fn(&problem, data);
}

/* Report each recorded file of `job` that differs now. */
static int check_job_files(struct state *state, struct job_entry *job,
			   int (*fn)(const struct state_problem *problem, void *data), void *data, struct cp_err *err)
{
	for (size_t i = 0; i < job->input_count + job->output_count; i++) {
		bool differs;
		size_t file = job->files[i].file;
		if (file_differs(state, file, &job->files[i], &differs, err) < 0)
			return STATE_ERROR;
		int rc = differs ? report_problem(fn, data, i < job->input_count ? STATE_PROBLEM_INPUT_CHANGED
										  : STATE_PROBLEM_OUTPUT_CHANGED,
						  job->job_id, state->files[file].path, NULL)
				 : 0;
		if (rc)
			return rc;
	}
	return 0;
}

int state_check(struct state *state, int (*fn)(const struct state_problem *problem, void *data), void *data,
		struct cp_err *err)
{
	struct strvec problems = STRVEC_INIT;
	int rc = integrity_check(state, &problems, err);
	for (size_t i = 0; i < problems.count && rc == 0; i++)
		rc = report_problem(fn, data, STATE_PROBLEM_INTEGRITY, NULL, NULL, problems.items[i]);
	strvec_release(&problems);
	for (size_t i = 0; i < state->damaged_jobs.count && rc == 0; i++)
		rc = report_problem(fn, data, STATE_PROBLEM_DAMAGED_RECORD, state->damaged_jobs.items[i], NULL,
				    state->damage_notes.items[i]);
	state_stat_recorded(state, 0, false, NULL);
	struct strbuf holder = STRBUF_INIT;
	for (size_t i = 0; i < state->job_count && rc == 0; i++) {
		struct job_entry *job = &state->jobs[i];
		if (!job->present)
			continue;
		const struct job_claim *claim = job->claim;
		if (claim && !holder_alive(state, claim->host, claim->pid, claim->pid_start)) {
			strbuf_reset(&holder);
			holder_detail(&holder, claim->host, claim->pid);
			rc = report_problem(fn, data, STATE_PROBLEM_DEAD_CLAIM, job->job_id, NULL, holder.buf);
		}
		if (rc == 0 && job->recorded)
			rc = check_job_files(state, job, fn, data, err);
	}
	strbuf_release(&holder);
	return rc;
}

int state_repair(struct state *state, size_t *repaired, struct cp_err *err)
{
	static const char forget_files_sql[] =
		"UPDATE jobs SET status = 'interrupted', recorded = 0, files = NULL WHERE name = ?1";
	*repaired = 0;
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	sqlite3_stmt *update;
	int rc = 0;
	if (sqlite3_prepare_v2(state->db, forget_files_sql, -1, &update, NULL) != SQLITE_OK)
		return write_end(state, db_fail_sql(state, forget_files_sql, err), err);
	for (size_t i = 0; i < state->damaged_jobs.count && rc == 0; i++) {
		bind_text(update, 1, state->damaged_jobs.items[i]);
		rc = sqlite3_step(update) == SQLITE_DONE ? 0 : db_fail_sql(state, forget_files_sql, err);
		statement_done(update);
		*repaired += rc == 0;
	}
	sqlite3_finalize(update);
	for (size_t i = 0; i < state->job_count && rc == 0; i++) {
		struct job_entry *job = &state->jobs[i];
		const struct job_claim *claim = job->claim;
		if (!job->present || !claim || holder_alive(state, claim->host, claim->pid, claim->pid_start))
			continue;
		sqlite3_stmt *stmt = statement(state, STMT_JOB_INTERRUPT, err);
		if (!stmt) {
			rc = STATE_ERROR;
			break;
		}
		bind_text(stmt, 1, job->job_id);
		bind_int64(stmt, 2, state_now_ns());
		rc = statement_run(state, STMT_JOB_INTERRUPT, stmt, err);
		*repaired += rc == 0;
	}
	rc = write_end(state, rc, err);
	if (rc == 0) {
		strvec_release(&state->damaged_jobs);
		strvec_release(&state->damage_notes);
	}
	return rc;
}
