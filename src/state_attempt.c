/*
 * Attempts in memory: a job's latest finished attempt and its origin (where
 * it ran, where its log went), pooled and shared between the jobs that have
 * the same, and the log path rebuilt when it is the job's default one. Part
 * of the state module (state_int.h lists its files).
 */
#include "state_int.h"

#include <string.h>

static bool same_origin(const struct attempt_origin *a, const struct attempt_origin *b)
{
	return a->pid == b->pid && a->default_log == b->default_log && same_text(a->host, b->host) &&
	       same_text(a->run_id, b->run_id) && same_text(a->log_path, b->log_path);
}

/*
 * The pooled origin of these facts (NULL when there are none): the last one
 * made when the same (a run finishes its jobs in a row), else a new one.
 */
const struct attempt_origin *attempt_origin_from(struct state *state, const struct attempt_origin *facts)
{
	static const struct attempt_origin none;
	if (same_origin(facts, &none))
		return NULL;
	if (state->recent_origin && same_origin(facts, state->recent_origin))
		return state->recent_origin;
	struct attempt_origin *origin = arena_alloc(&state->pool, sizeof(*origin));
	*origin = *facts;
	origin->host = pool_text(state, facts->host, &state->recent_host);
	origin->run_id = pool_text(state, facts->run_id, &state->recent_run);
	origin->log_path = pool_text(state, facts->log_path, NULL);
	state->recent_origin = origin;
	return origin;
}

/* Facts compared by value: a row's origin is not pooled yet. */
static bool same_attempt(const struct job_attempt *a, const struct attempt_origin *a_origin,
			 const struct job_attempt *b)
{
	static const struct attempt_origin none;
	return a->exit_code == b->exit_code && a->start_ns == b->start_ns && a->end_ns == b->end_ns &&
	       same_origin(a_origin, b->origin ? b->origin : &none);
}

/*
 * The attempt block of a row's facts (`origin` as read, its log path the
 * recorded one): the job's own or the last row's when the facts are the same
 * (an adopting run's jobs share one), else a new pooled one. A log at the
 * job's default path is not kept (struct attempt_origin).
 */
const struct job_attempt *attempt_intern(struct state *state, const struct job_entry *job,
					 const struct job_attempt *facts, struct attempt_origin *origin)
{
	if (origin->log_path) {
		strbuf_reset(&state->default_log);
		job_log_path(job->job_id, &state->default_log);
		origin->default_log = !strcmp(origin->log_path, state->default_log.buf);
		if (origin->default_log)
			origin->log_path = NULL;
	}
	static const struct job_attempt none;
	if (same_attempt(facts, origin, &none))
		return NULL;
	if (job->attempt && same_attempt(facts, origin, job->attempt))
		return job->attempt;
	if (state->recent_attempt && same_attempt(facts, origin, state->recent_attempt))
		return state->recent_attempt;
	struct job_attempt *attempt = arena_alloc(&state->attempts, sizeof(*attempt));
	*attempt = *facts;
	attempt->origin = attempt_origin_from(state, origin);
	state->recent_attempt = attempt;
	return attempt;
}

bool attempt_log_path(const struct job_entry *job, struct strbuf *out)
{
	struct attempt_origin origin = job_origin_of(job);
	if (origin.default_log)
		job_log_path(job->job_id, out);
	else if (origin.log_path)
		strbuf_adds(out, origin.log_path);
	return origin.default_log || origin.log_path;
}
