/*
 * Unit tests of the sync module: submission records and markers written as
 * cluster jobs leave them, imported into a real SQLite state for a small job
 * graph (make_a: raw -> a, make_b: a -> b). No scheduler is asked: every job
 * here has its marker.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cpipe/plan.h"
#include "cpipe/sync.h"
#include "exec_cluster.h"

#include "chain_study.h"

struct fixture {
	struct chain_study study; /* first, for chain_setup_fixture */
	struct sync_view view;
};

static void fixture_job_file_name(struct fixture *fx, size_t job, struct strbuf *name)
{
	strbuf_reset(name);
	job_file_name(fx->study.graph->jobs[job].id, name);
}

/* The record `cpipe run --submit` leaves for an array of both jobs (tasks 1, 2), with the notes it gives them. */
static void write_submission(struct fixture *fx)
{
	struct strbuf names[2] = {STRBUF_INIT, STRBUF_INIT};
	char *notes[2], *logs[2];
	struct exec_record_member members[2];
	for (size_t job = 0; job < 2; job++) {
		fixture_job_file_name(fx, job, &names[job]);
		notes[job] = sync_definition_note(&fx->study.graph->jobs[job]);
		logs[job] = xasprintf(".cpipe/logs/%s.log", names[job].buf);
		members[job] = (struct exec_record_member){names[job].buf, (long)job + 1, logs[job], notes[job]};
	}
	struct exec_record_head head = {EXEC_CLUSTER_SLURM, "41", 1, NULL};
	assert_int_equal(exec_record_write(".", "array_unit", &head, members, 2, &fx->study.err), 0);
	for (size_t job = 0; job < 2; job++) {
		free(logs[job]);
		free(notes[job]);
		strbuf_release(&names[job]);
	}
}

/* The per-job record cpipe wrote before records per submission: jobs it submitted may still be in flight. */
static void write_old_submission(struct fixture *fx, size_t job)
{
	struct strbuf name = STRBUF_INIT;
	fixture_job_file_name(fx, job, &name);
	char *note = sync_definition_note(&fx->study.graph->jobs[job]);
	char *path = xasprintf("%s/%s.submitted", EXEC_JOBS_DIR, name.buf);
	char *text = xasprintf("cpipe-submitted 1\nbackend slurm\njob 41\ntask %zu\nlog .cpipe/logs/%s.log\n"
			       "time 1\nnote %s\n",
			       job + 1, name.buf, note);
	chain_write_file(path, text, 2000000);
	free(text);
	free(path);
	free(note);
	strbuf_release(&name);
}

/* The marker a job's script writes when it ends. */
static void write_marker(struct fixture *fx, size_t job, const char *text)
{
	struct strbuf name = STRBUF_INIT;
	fixture_job_file_name(fx, job, &name);
	char *path = xasprintf("%s/%s.marker", EXEC_JOBS_DIR, name.buf);
	chain_write_file(path, text, 2000000);
	free(path);
	strbuf_release(&name);
}

static bool submission_left(struct fixture *fx, size_t job)
{
	struct strbuf name = STRBUF_INIT;
	fixture_job_file_name(fx, job, &name);
	struct exec_records *records;
	struct strvec problems = STRVEC_INIT;
	assert_int_equal(exec_records_load(".", &records, &problems, &fx->study.err), 0);
	assert_int_equal(problems.count, 0);
	struct exec_submission sub;
	int found = exec_records_find(records, name.buf, &sub);
	if (found > 0)
		exec_submission_release(&sub);
	exec_records_free(records);
	strbuf_release(&name);
	return found != 0;
}

static void import_all(struct fixture *fx)
{
	sync_view_release(&fx->view);
	assert_int_equal(sync_cluster(fx->study.graph, fx->study.state, &fx->view, &fx->study.err), 0);
}

static int setup(void **vstate)
{
	return chain_setup_fixture(vstate, sizeof(struct fixture));
}

static int teardown(void **vstate)
{
	struct fixture *fx = *vstate;
	sync_view_release(&fx->view);
	chain_teardown(&fx->study);
	free(fx);
	return 0;
}

/* Nothing was ever submitted from here: an empty view, no events. */
static void test_nothing_submitted(void **vstate)
{
	struct fixture *fx = *vstate;
	import_all(fx);
	assert_int_equal(fx->view.count, 2);
	assert_int_equal(fx->view.in_flight_count, 0);
	assert_int_equal(fx->view.event_count, 0);
	assert_false(fx->view.in_flight[MAKE_A]);
}

/* A success becomes the job's record (up to date for plan); a failure a failed attempt, said as an event. */
static void test_success_and_failure(void **vstate)
{
	struct fixture *fx = *vstate;
	assert_int_equal(mkdir(".cpipe/jobs", 0777), 0);
	write_submission(fx);
	chain_write_file("sub-01/a.txt", "made on a node\n", 2000000);
	write_marker(fx, MAKE_A, "cpipe-marker 1\nexit 0\nstart_ns 100\nend_ns 200\nhost node1\nmessage \n");
	write_marker(fx, MAKE_B, "cpipe-marker 1\nexit 2\nstart_ns 300\nend_ns 400\nhost node1\nmessage exit status 2\n");
	import_all(fx);
	assert_int_equal(fx->view.imported_ok, 1);
	assert_int_equal(fx->view.imported_failed, 1);
	assert_int_equal(fx->view.in_flight_count, 0);
	assert_int_equal(fx->view.event_count, 1);
	const struct sync_event *event = &fx->view.events[0];
	assert_int_equal(event->kind, SYNC_JOB_FAILED);
	assert_int_equal(event->job, MAKE_B);
	assert_string_equal(event->message, "exit status 2");
	assert_non_null(strstr(event->log, ".cpipe/logs/"));
	/* Imported once: the record is gone. */
	assert_false(submission_left(fx, MAKE_A));
	assert_false(submission_left(fx, MAKE_B));
	assert_int_equal(access(".cpipe/jobs/array_unit.submission", F_OK), -1);

	struct state_job_record record;
	assert_true(state_job_lookup(fx->study.state, fx->study.graph->jobs[MAKE_A].id, &record));
	assert_true(record.recorded);
	assert_true(record.definition_hash == plan_definition_hash(&fx->study.graph->jobs[MAKE_A], NULL));
	assert_true(state_job_lookup(fx->study.state, fx->study.graph->jobs[MAKE_B].id, &record));
	assert_int_equal(record.status, STATE_STATUS_FAILED);

	struct plan_options opt = {0};
	struct plan_decision *decisions;
	assert_int_equal(plan_decide_all(fx->study.graph, fx->study.state, &opt, NULL, &decisions, &fx->study.err), 0);
	assert_int_equal(decisions[MAKE_A].action, PLAN_UP_TO_DATE);
	assert_int_equal(decisions[MAKE_B].action, PLAN_RUN);
	plan_decisions_free(decisions, fx->study.graph->count);
}

/* A job that never ran its command records nothing; a marker that cannot be read is a failure. */
static void test_skipped_and_broken(void **vstate)
{
	struct fixture *fx = *vstate;
	assert_int_equal(mkdir(".cpipe/jobs", 0777), 0);
	write_submission(fx);
	write_marker(fx, MAKE_A, "cpipe-marker 1\nexit 0\nstart_ns 12x\n");
	write_marker(fx, MAKE_B,
		     "cpipe-marker 1\nexit 1\nstart_ns 1\nend_ns 2\nhost h\nmessage not run: a did not succeed\n");
	import_all(fx);
	assert_int_equal(fx->view.imported_failed, 1);
	assert_int_equal(fx->view.skipped, 1);
	assert_int_equal(fx->view.event_count, 2);
	assert_int_equal(fx->view.events[0].kind, SYNC_JOB_FAILED);
	assert_non_null(strstr(fx->view.events[0].message, "malformed job marker"));
	assert_int_equal(fx->view.events[1].kind, SYNC_JOB_SKIPPED);
	assert_string_equal(fx->view.events[1].message, "not run: a did not succeed");
	struct state_job_record record;
	assert_false(state_job_lookup(fx->study.state, fx->study.graph->jobs[MAKE_B].id, &record));
}

/* A submission record that cannot be read is ignored, and said. */
static void test_unreadable_record(void **vstate)
{
	struct fixture *fx = *vstate;
	assert_int_equal(mkdir(".cpipe/jobs", 0777), 0);
	struct strbuf name = STRBUF_INIT;
	fixture_job_file_name(fx, MAKE_A, &name);
	char *path = xasprintf("%s/%s.submitted", EXEC_JOBS_DIR, name.buf);
	chain_write_file(path, "cpipe-submitted 1\nbackend pbs\njob 5\n", 2000000);
	free(path);
	strbuf_release(&name);
	import_all(fx);
	assert_int_equal(fx->view.event_count, 1);
	assert_int_equal(fx->view.events[0].kind, SYNC_UNREADABLE_RECORD);
	assert_non_null(strstr(fx->view.events[0].message, "malformed submission record"));
	assert_int_equal(fx->view.in_flight_count, 0);
}

/*
 * make_a ended on the node, make_b did not: make_a is imported and its record
 * line goes; make_b (task 2 of job 41) stays in flight, as no scheduler is
 * here to say otherwise.
 */
static void import_a_alone(struct fixture *fx)
{
	chain_write_file("sub-01/a.txt", "made on a node\n", 2000000);
	write_marker(fx, MAKE_A, "cpipe-marker 1\nexit 0\nstart_ns 100\nend_ns 200\nhost node1\nmessage \n");
	char *path = xstrdup(getenv("PATH"));
	setenv("PATH", "/nonexistent", 1);
	import_all(fx);
	setenv("PATH", path, 1);
	free(path);
	assert_int_equal(fx->view.imported_ok, 1);
	assert_int_equal(fx->view.in_flight_count, 1);
	assert_true(fx->view.in_flight[MAKE_B]);
	assert_string_equal(fx->view.subs[MAKE_B].job, "41");
	assert_int_equal(fx->view.subs[MAKE_B].task, 2);
	assert_false(submission_left(fx, MAKE_A));
	assert_true(submission_left(fx, MAKE_B));
}

/* A job imported from a record of several: the record keeps the others, still in flight. */
static void test_record_keeps_the_rest(void **vstate)
{
	struct fixture *fx = *vstate;
	assert_int_equal(mkdir(".cpipe/jobs", 0777), 0);
	write_submission(fx);
	import_a_alone(fx);
	/* Once make_b ends, the record goes. */
	write_marker(fx, MAKE_B, "cpipe-marker 1\nexit 2\nstart_ns 300\nend_ns 400\nhost node1\nmessage exit status 2\n");
	import_all(fx);
	assert_int_equal(fx->view.imported_failed, 1);
	assert_int_equal(access(".cpipe/jobs/array_unit.submission", F_OK), -1);
}

/* Records written by the version before, one per job, are still imported (jobs in flight during an upgrade). */
static void test_old_records(void **vstate)
{
	struct fixture *fx = *vstate;
	assert_int_equal(mkdir(".cpipe/jobs", 0777), 0);
	write_old_submission(fx, MAKE_A);
	write_old_submission(fx, MAKE_B);
	import_a_alone(fx);
	assert_non_null(strstr(fx->view.subs[MAKE_B].log_path, ".cpipe/logs/"));
	struct state_job_record record;
	assert_true(state_job_lookup(fx->study.state, fx->study.graph->jobs[MAKE_A].id, &record));
	assert_true(record.definition_hash == plan_definition_hash(&fx->study.graph->jobs[MAKE_A], NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nothing_submitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_success_and_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skipped_and_broken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_keeps_the_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_records, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
