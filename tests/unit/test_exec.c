/*
 * Unit tests for exec's local backend: real /bin/sh processes in a fresh
 * temporary directory per test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif

#include "cpipe/exec.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_helpers.h"

/* ---- fixtures and helpers ------------------------------------------------ */

struct recorder {
	size_t starts[64];
	size_t start_count;
	size_t finishes[64];
	enum exec_status finish_status[64];
	size_t finish_count;
	size_t ticks;
	size_t max_running;
	bool unneeded[64]; /* what record_ready answers: these need not run */
	size_t ready_calls[64];
	size_t events;            /* callbacks so far: */
	size_t start_event[64];   /* the number of each job's on_start (from 1), */
	size_t finish_event[64];  /* and of its on_finish */
};

static void record_start(void *ctx, size_t index, const struct exec_progress *progress)
{
	struct recorder *r = ctx;
	if (index < 64)
		r->start_event[index] = ++r->events;
	if (r->start_count < 64)
		r->starts[r->start_count] = index;
	r->start_count++;
	if (progress->running > r->max_running)
		r->max_running = progress->running;
	assert_int_equal(progress->total, progress->waiting + progress->running + progress->succeeded +
						  progress->failed + progress->interrupted + progress->skipped +
						  progress->unneeded);
}

static void record_finish(void *ctx, size_t index, const struct exec_result *result,
			  const struct exec_progress *progress)
{
	struct recorder *r = ctx;
	if (index < 64)
		r->finish_event[index] = ++r->events;
	if (r->finish_count < 64) {
		r->finishes[r->finish_count] = index;
		r->finish_status[r->finish_count] = result->status;
	}
	r->finish_count++;
	assert_int_not_equal(result->status, EXEC_JOB_PENDING);
	assert_int_equal(progress->total, progress->waiting + progress->running + progress->succeeded +
						  progress->failed + progress->interrupted + progress->skipped +
						  progress->unneeded);
}

static bool record_ready(void *ctx, size_t index)
{
	struct recorder *r = ctx;
	r->ready_calls[index]++;
	return !r->unneeded[index];
}

static void record_tick(void *ctx, const struct exec_progress *progress)
{
	struct recorder *r = ctx;
	(void)progress;
	r->ticks++;
}

static int setup_dir(void **state)
{
	return temp_dir_setup(state, "/tmp/cpipe-test-exec-XXXXXX");
}

static char *path_in(const char *dir, const char *rel)
{
	return xasprintf("%s/%s", dir, rel);
}

static void write_text_in(const char *dir, const char *rel, const char *text)
{
	char *path = path_in(dir, rel);
	write_text(path, text);
	free(path);
}

/* The file's content, or NULL when it does not exist. */
static char *read_text(const char *dir, const char *rel)
{
	char *path = path_in(dir, rel);
	FILE *f = fopen(path, "r");
	free(path);
	if (!f)
		return NULL;
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb);
}

static bool exists(const char *dir, const char *rel)
{
	char *path = path_in(dir, rel);
	struct stat st;
	bool found = lstat(path, &st) == 0;
	free(path);
	return found;
}

static void assert_text(const char *dir, const char *rel, const char *expected)
{
	char *text = read_text(dir, rel);
	if (!text)
		fail_msg("%s does not exist", rel);
	assert_string_equal(text, expected);
	free(text);
}

/* Largest number in a file of one number per line. */
static long max_line(const char *dir, const char *rel)
{
	char *text = read_text(dir, rel);
	assert_non_null(text);
	long best = 0;
	for (char *p = text; *p;) {
		long v = strtol(p, &p, 10);
		if (v > best)
			best = v;
		while (*p == '\n' || *p == ' ')
			p++;
	}
	free(text);
	return best;
}

static struct exec_options options_for(const char *dir, struct recorder *r)
{
	struct exec_options opt = EXEC_OPTIONS_INIT;
	opt.cwd = dir;
	opt.ctx = r;
	opt.on_start = record_start;
	opt.on_finish = record_finish;
	opt.on_tick = record_tick;
	return opt;
}

static void release_jobs(struct exec_job *jobs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		exec_job_release(&jobs[i]);
}


/* A shell snippet that counts how many jobs are inside it at once, into `counts`. */
#define CONCURRENCY(name, seconds) \
	"mkdir -p running && touch running/" name " && ls running | wc -l >> counts && sleep " seconds \
	" && rm running/" name

/* ---- helpers -------------------------------------------------------------- */

static void test_script_text(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	exec_script_text("evil\nrm -rf /\r", "echo hi", &sb);
	assert_string_equal(sb.buf, "#!/bin/sh\n# cpipe job: evil?rm -rf /?\necho hi\n");
	assert_ptr_equal(exec_backend_find("local"), &exec_backend_local);
	assert_null(exec_backend_find("nope"));
	assert_string_equal(exec_status_name(EXEC_JOB_INTERRUPTED), "interrupted");
	strbuf_release(&sb);
}

static void test_write_file_atomic(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	char *path = path_in(dir, "deep/er/file.sh");
	assert_int_equal(exec_write_file_atomic(path, "abc", 3, 0755, true, &err), 0);
	assert_text(dir, "deep/er/file.sh", "abc");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	free(path);
	/* A file in the way of a directory is an error, not a crash. */
	path = path_in(dir, "deep/er/file.sh/x");
	assert_int_equal(exec_write_file_atomic(path, "abc", 3, 0644, false, &err), -1);
	assert_non_null(err.message);
	free(path);
	cp_err_release(&err);
}

/* ---- scheduling ------------------------------------------------------------ */

static void test_parallel_respects_j(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	struct exec_job jobs[6] = {
		{.id = "j0", .command = CONCURRENCY("j0", "0.3")}, {.id = "j1", .command = CONCURRENCY("j1", "0.3")},
		{.id = "j2", .command = CONCURRENCY("j2", "0.3")}, {.id = "j3", .command = CONCURRENCY("j3", "0.3")},
		{.id = "j4", .command = CONCURRENCY("j4", "0.3")}, {.id = "j5", .command = CONCURRENCY("j5", "0.3")},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = 2;
	struct exec_progress summary;
	struct cp_err err = CP_ERR_INIT;
	double t0 = monotonic_seconds();
	assert_int_equal(exec_run_local(jobs, 6, &opt, &summary, &err), EXEC_RUN_OK);
	double elapsed = monotonic_seconds() - t0;
	assert_int_equal(max_line(dir, "counts"), 2);
	assert_int_equal(r.max_running, 2);
	assert_true(elapsed >= 0.85); /* three rounds of 0.3 s */
	assert_int_equal(summary.succeeded, 6);
	assert_int_equal(r.start_count, 6);
	assert_int_equal(r.finish_count, 6);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(jobs[i].result.status, EXEC_JOB_OK);
		assert_int_equal(jobs[i].result.exit_code, 0);
		assert_true(jobs[i].result.end_time >= jobs[i].result.start_time);
	}
	assert_string_equal(jobs[0].result.log_path, ".cpipe/logs/j0.log");
	assert_true(exists(dir, ".cpipe/scripts/j0.sh"));
	release_jobs(jobs, 6);
}

static void test_resource_admission(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	/* Two jobs of 2 threads under max_threads 2, then two of 3 GiB under 4 GiB, then one oversized. */
	struct exec_job jobs[5] = {
		{.id = "t0", .command = CONCURRENCY("t0", "0.2"), .resources.threads = 2},
		{.id = "t1", .command = CONCURRENCY("t1", "0.2"), .resources.threads = 2},
		{.id = "r0", .command = CONCURRENCY("r0", "0.2"), .resources.ram_gb = 3},
		{.id = "r1", .command = CONCURRENCY("r1", "0.2"), .resources.ram_gb = 3},
		{.id = "huge", .command = CONCURRENCY("huge", "0.2"), .resources = {.threads = 64, .ram_gb = 1000}},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = 4;
	opt.max_threads = 2;
	opt.max_ram_gb = 4;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 5, &opt, NULL, &err), EXEC_RUN_OK);
	assert_int_equal(max_line(dir, "counts"), 1);
	assert_int_equal(jobs[4].result.status, EXEC_JOB_OK); /* larger than the limits, ran alone */
	release_jobs(jobs, 5);
}

static void test_dependencies_order(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	static const size_t on_a[] = {0}, on_bc[] = {1, 2};
	static const char *const out_a[] = {"a.out"}, *const out_b[] = {"b.out"}, *const out_c[] = {"c.out"},
				 *const out_d[] = {"d/deep/d.out"};
	struct exec_job jobs[4] = {
		{.id = "a", .command = "sleep 0.1; echo a >> order; touch a.out", .outputs = out_a, .output_count = 1},
		{.id = "b", .command = "test -f a.out && echo b >> order && touch b.out", .outputs = out_b,
		 .output_count = 1, .deps = on_a, .dep_count = 1},
		{.id = "c", .command = "sleep 0.2; test -f a.out && echo c >> order && touch c.out", .outputs = out_c,
		 .output_count = 1, .deps = on_a, .dep_count = 1},
		{.id = "d", .command = "test -f b.out && test -f c.out && echo d >> order && touch d/deep/d.out",
		 .outputs = out_d, .output_count = 1, .deps = on_bc, .dep_count = 2},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = 4;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 4, &opt, NULL, &err), EXEC_RUN_OK);
	assert_text(dir, "order", "a\nb\nc\nd\n");
	assert_int_equal(r.starts[0], 0);
	assert_int_equal(r.starts[3], 3);
	release_jobs(jobs, 4);
}

/*
 * A success is reported once the next job has taken its slot, so that the caller's bookkeeping
 * runs beside that job, even when that job depends on it; only a dependant the caller is asked
 * about (ask_ready) waits for the report, and is asked after it.
 */
static void test_success_reported_after_next_start(void **state)
{
	const char *dir = *state;
	static const size_t on_0[] = {0};
	struct exec_job jobs[3] = {
		{.id = "a", .command = "echo a >> order"},
		{.id = "b", .command = "echo b >> order", .deps = on_0, .dep_count = 1},
		{.id = "c", .command = "echo c >> order"},
	};
	struct cp_err err = CP_ERR_INIT;
	for (int asking = 0; asking <= 1; asking++) {
		struct recorder r = {0};
		struct exec_options opt = options_for(dir, &r);
		opt.jobs = 1;
		opt.on_ready = record_ready;
		jobs[1].ask_ready = asking;
		assert_int_equal(exec_run_local(jobs, 3, &opt, NULL, &err), EXEC_RUN_OK);
		if (asking) {
			/* b is asked about, once, after a's success is reported, and only then starts. */
			assert_true(r.finish_event[0] < r.start_event[1]);
			assert_int_equal(r.ready_calls[1], 1);
		} else {
			/* b depends on a and starts before a's success is reported; nobody is asked. */
			assert_true(r.start_event[1] < r.finish_event[0]);
			assert_int_equal(r.ready_calls[1], 0);
		}
		assert_int_equal(r.ready_calls[0] + r.ready_calls[2], 0);
		/* Nothing depends on b, and c waits: c starts before b's success is reported. */
		assert_true(r.start_event[2] < r.finish_event[1]);
		assert_int_equal(r.finish_count, 3);
	}
	assert_text(dir, "order", "a\nb\nc\na\nb\nc\n");
	release_jobs(jobs, 3);
}

/*
 * Ready jobs start deepest first, then in index order: with one slot, each
 * chain is finished before the next begins (subject by subject, not step by
 * step), and a job deeper than the rest goes before them however late it
 * comes in the list.
 */
static void test_deepest_first(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	static const size_t on_0[] = {0}, on_1[] = {1}, on_2[] = {2}, on_0_4[] = {0, 4};
	struct exec_job jobs[6] = {
		{.id = "a1", .command = "echo a1 >> order"},
		{.id = "a2", .command = "echo a2 >> order"},
		{.id = "b1", .command = "echo b1 >> order", .deps = on_0, .dep_count = 1},
		{.id = "b2", .command = "echo b2 >> order", .deps = on_1, .dep_count = 1},
		{.id = "c1", .command = "echo c1 >> order", .deps = on_2, .dep_count = 1},
		{.id = "d", .command = "echo d >> order", .deps = on_0_4, .dep_count = 2},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = 1;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 6, &opt, NULL, &err), EXEC_RUN_OK);
	assert_text(dir, "order", "a1\nb1\nc1\nd\na2\nb2\n");
	release_jobs(jobs, 6);
}

/*
 * on_ready: a job found unneeded never starts, ends EXEC_JOB_UNNEEDED and lets its dependants go
 * on (each asked once, even when the one before it is unneeded at the very start).
 */
static void test_unneeded_jobs(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	static const size_t on_0[] = {0}, on_1[] = {1}, on_2[] = {2}, on_4[] = {4};
	struct exec_job jobs[6] = {
		{.id = "a", .command = "echo a >> order"},
		{.id = "b", .command = "echo b >> order", .deps = on_0, .dep_count = 1},
		{.id = "c", .command = "echo c >> order", .deps = on_1, .dep_count = 1},
		{.id = "d", .command = "echo d >> order", .deps = on_2, .dep_count = 1},
		{.id = "e", .command = "echo e >> order"},
		{.id = "f", .command = "echo f >> order", .deps = on_4, .dep_count = 1},
	};
	r.unneeded[1] = r.unneeded[3] = r.unneeded[4] = true;
	for (size_t i = 0; i < 6; i++)
		jobs[i].ask_ready = true;
	struct exec_options opt = options_for(dir, &r);
	opt.on_ready = record_ready;
	opt.jobs = 1;
	struct exec_progress summary;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 6, &opt, &summary, &err), EXEC_RUN_OK);
	/* e is unneeded at once, so f is ready at the start, and it is deeper than a. */
	assert_text(dir, "order", "f\na\nc\n");
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(r.ready_calls[i], 1);
		assert_int_equal(jobs[i].result.status, r.unneeded[i] ? EXEC_JOB_UNNEEDED : EXEC_JOB_OK);
	}
	assert_null(jobs[1].result.log_path);
	assert_string_equal(exec_status_name(EXEC_JOB_UNNEEDED), "unneeded");
	assert_int_equal(summary.succeeded, 3);
	assert_int_equal(summary.unneeded, 3);
	assert_int_equal(r.start_count, 3);
	assert_int_equal(r.finish_count, 6);
	release_jobs(jobs, 6);
}

static void test_invalid_input(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	static const size_t forward[] = {1};
	struct exec_job jobs[2] = {
		{.id = "a", .command = "true", .deps = forward, .dep_count = 1},
		{.id = "b", .command = "true"},
	};
	struct exec_options opt = options_for(dir, &r);
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 2, &opt, NULL, &err), EXEC_RUN_ERROR);
	assert_non_null(strstr(err.message, "does not come before"));
	assert_int_equal(r.start_count + r.finish_count, 0);

	struct exec_job same[2] = {{.id = "x/y", .command = "true"}, {.id = "x/y", .command = "true"}};
	assert_int_equal(exec_run_local(same, 2, &opt, NULL, &err), EXEC_RUN_ERROR);
	assert_non_null(strstr(err.message, "same file name"));
	cp_err_release(&err);

	struct exec_progress summary;
	assert_int_equal(exec_run_local(NULL, 0, &opt, &summary, &err), EXEC_RUN_OK);
	assert_int_equal(summary.total, 0);
	release_jobs(jobs, 2);
	release_jobs(same, 2);
}

/* ---- outputs ---------------------------------------------------------------- */

static void test_failure_quarantines_and_restores(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	write_text_in(dir, "out.txt", "old\n");
	static const char *const outs[] = {"out.txt", "new/dir/made.txt"};
	struct exec_job job = {.id = "make out", .command = "echo partial > out.txt; touch new/dir/made.txt; exit 3",
			       .outputs = outs, .output_count = 2};
	struct exec_options opt = options_for(dir, &r);
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(&job, 1, &opt, NULL, &err), EXEC_RUN_FAILED);
	assert_int_equal(job.result.status, EXEC_JOB_FAILED);
	assert_int_equal(job.result.exit_code, 3);
	assert_string_equal(job.result.message, "exit status 3");
	assert_text(dir, "out.txt", "old\n");
	assert_false(exists(dir, "new/dir/made.txt"));
	assert_non_null(job.result.quarantine);
	char *q = xasprintf("%s/out.txt", job.result.quarantine);
	assert_text(dir, q, "partial\n");
	free(q);
	q = xasprintf("%s/new/dir/made.txt", job.result.quarantine);
	assert_true(exists(dir, q));
	free(q);
	char *log = read_text(dir, job.result.log_path);
	assert_non_null(strstr(log, "cpipe: exit status 3"));
	free(log);
	char *prev = xasprintf(".cpipe/prev/%s", strchr(job.result.quarantine + 1, '/') + strlen("/failed/"));
	assert_false(exists(dir, prev));

	/* The same job now succeeds: the new output replaces the old, asides and quarantine go. */
	job.command = "echo new > out.txt; touch new/dir/made.txt";
	char *quarantine = xstrdup(job.result.quarantine);
	assert_int_equal(exec_run_local(&job, 1, &opt, NULL, &err), EXEC_RUN_OK);
	assert_text(dir, "out.txt", "new\n");
	assert_null(job.result.quarantine);
	assert_false(exists(dir, quarantine));
	assert_false(exists(dir, prev));
	free(quarantine);
	free(prev);
	exec_job_release(&job);
}

static void test_missing_output_fails(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	write_text_in(dir, "kept.txt", "good\n");
	static const char *const outs[] = {"kept.txt", "extra.txt"};
	static const char *const dangling[] = {"link.txt"};
	static const char *const optional_outs[] = {"made.txt", "maybe.txt"};
	static const bool optional_flags[] = {false, true};
	struct exec_job jobs[4] = {
		{.id = "forgets", .command = "true", .outputs = outs, .output_count = 2},
		{.id = "dangles", .command = "ln -s nowhere link.txt", .outputs = dangling, .output_count = 1},
		{.id = "optional", .command = "touch made.txt", .outputs = optional_outs,
		 .output_optional = optional_flags, .output_count = 2},
		{.id = "killed", .command = "kill -9 $$"},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.keep_going = true;
	struct exec_progress summary;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 4, &opt, &summary, &err), EXEC_RUN_FAILED);
	assert_int_equal(jobs[0].result.status, EXEC_JOB_FAILED);
	assert_int_equal(jobs[0].result.exit_code, 0);
	assert_string_equal(jobs[0].result.message, "declared output 'kept.txt' was not created (and 1 more)");
	assert_text(dir, "kept.txt", "good\n"); /* the old output is back */
	char *log = read_text(dir, jobs[0].result.log_path);
	assert_non_null(strstr(log, "declared output 'extra.txt' was not created"));
	free(log);
	assert_int_equal(jobs[1].result.status, EXEC_JOB_FAILED);
	assert_false(exists(dir, "link.txt")); /* quarantined */
	assert_int_equal(jobs[2].result.status, EXEC_JOB_OK);
	assert_int_equal(jobs[3].result.status, EXEC_JOB_FAILED);
	assert_int_equal(jobs[3].result.signal, 9);
	assert_int_equal(jobs[3].result.exit_code, -1);
	assert_int_equal(summary.failed, 3);
	assert_int_equal(summary.succeeded, 1);
	release_jobs(jobs, 4);
}

/* ---- failure policy ------------------------------------------------------- */

static void test_keep_going_skips_dependents(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	static const size_t on_bad[] = {0}, on_child[] = {1};
	static const char *const bad_out[] = {"bad.out"};
	struct exec_job jobs[4] = {
		{.id = "bad", .command = "echo partial > bad.out; exit 1", .outputs = bad_out, .output_count = 1},
		{.id = "child", .command = "touch child.out", .deps = on_bad, .dep_count = 1},
		{.id = "grandchild", .command = "touch grandchild.out", .deps = on_child, .dep_count = 1},
		{.id = "other", .command = "touch other.out"},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = 1;
	opt.keep_going = true;
	struct exec_progress summary;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 4, &opt, &summary, &err), EXEC_RUN_FAILED);
	assert_int_equal(jobs[0].result.status, EXEC_JOB_FAILED);
	assert_int_equal(jobs[1].result.status, EXEC_JOB_SKIPPED);
	assert_string_equal(jobs[1].result.message, "dependency 'bad' failed");
	assert_int_equal(jobs[2].result.status, EXEC_JOB_SKIPPED);
	assert_string_equal(jobs[2].result.message, "dependency 'child' was skipped");
	assert_null(jobs[2].result.log_path);
	assert_int_equal(jobs[3].result.status, EXEC_JOB_OK);
	assert_true(exists(dir, "other.out"));
	assert_false(exists(dir, "child.out"));
	assert_false(exists(dir, "bad.out"));
	assert_int_equal(summary.failed, 1);
	assert_int_equal(summary.skipped, 2);
	assert_int_equal(summary.succeeded, 1);
	assert_int_equal(r.start_count, 2);
	assert_int_equal(r.finish_count, 4);
	release_jobs(jobs, 4);
}

static void test_no_keep_going_stops_admitting(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	struct exec_job jobs[4] = {
		{.id = "slow", .command = "sleep 0.4; touch slow.out"},
		{.id = "fail", .command = "exit 1"},
		{.id = "later", .command = "touch later.out"},
		{.id = "later2", .command = "touch later2.out"},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = 2;
	struct exec_progress summary;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 4, &opt, &summary, &err), EXEC_RUN_FAILED);
	assert_int_equal(jobs[0].result.status, EXEC_JOB_OK); /* was running: allowed to finish */
	assert_int_equal(jobs[1].result.status, EXEC_JOB_FAILED);
	assert_int_equal(jobs[2].result.status, EXEC_JOB_SKIPPED);
	assert_int_equal(jobs[3].result.status, EXEC_JOB_SKIPPED);
	assert_string_equal(jobs[2].result.message, "not started: the run stopped after a failure");
	assert_true(exists(dir, "slow.out"));
	assert_false(exists(dir, "later.out"));
	assert_false(exists(dir, "later2.out"));
	assert_int_equal(summary.skipped, 2);
	assert_int_equal(summary.waiting, 0);
	release_jobs(jobs, 4);
}

/* ---- commands and names --------------------------------------------------- */

static void test_huge_command(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	size_t payload = 1200 * 1024; /* far above the kernel's 128 KiB per-argument limit */
	struct strbuf cmd = STRBUF_INIT;
	strbuf_adds(&cmd, "printf %s '");
	for (size_t i = 0; i < payload; i++)
		strbuf_addch(&cmd, (char)('a' + i % 26));
	strbuf_adds(&cmd, "' | wc -c > big.txt");
	static const char *const outs[] = {"big.txt"};
	struct exec_job job = {.id = "huge", .command = cmd.buf, .outputs = outs, .output_count = 1};
	struct exec_options opt = options_for(dir, &r);
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(&job, 1, &opt, NULL, &err), EXEC_RUN_OK);
	char *count = read_text(dir, "big.txt");
	assert_int_equal(strtol(count, NULL, 10), (long)payload);
	free(count);
	exec_job_release(&job);
	strbuf_release(&cmd);
}

static void test_hostile_ids(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	static const char *const ids[] = {
		"sub/01 x'y\"z $(touch pwned1) `touch pwned2`;touch pwned3\ntouch pwned4",
		"..", ".", "", "-rf", "../../escape", "a b\tc|d&e>f<g*h?i",
	};
	enum { N = sizeof(ids) / sizeof(ids[0]) };
	struct exec_job jobs[N];
	memset(jobs, 0, sizeof(jobs));
	for (size_t i = 0; i < N; i++) {
		jobs[i].id = ids[i];
		jobs[i].command = "echo hi";
	}
	static const char *const outs[] = {"fail.out"};
	struct exec_job failing[1] = {
		{.id = "$(touch pwned5)/`touch pwned6`", .command = "touch fail.out; false", .outputs = outs,
		 .output_count = 1},
	};
	struct exec_options opt = options_for(dir, &r);
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, N, &opt, NULL, &err), EXEC_RUN_OK);
	assert_int_equal(exec_run_local(failing, 1, &opt, NULL, &err), EXEC_RUN_FAILED);
	for (size_t i = 0; i < N; i++) {
		const char *log = jobs[i].result.log_path;
		assert_true(str_starts_with(log, ".cpipe/logs/"));
		assert_null(strchr(log + strlen(".cpipe/logs/"), '/'));
		assert_true(str_ends_with(log, ".log"));
		assert_text(dir, log, "hi\ncpipe: succeeded\n");
	}
	assert_true(str_starts_with(failing[0].result.quarantine, ".cpipe/failed/"));
	assert_null(strchr(failing[0].result.quarantine + strlen(".cpipe/failed/"), '/'));
	for (int i = 1; i <= 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "pwned%d", i);
		assert_false(exists(dir, name));
		assert_false(exists(dir, ".cpipe/logs/../../pwned1"));
	}
	release_jobs(jobs, N);
	release_jobs(failing, 1);
}

static void test_ticks(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	struct exec_job job = {.id = "tick", .command = "sleep 0.45"};
	struct exec_options opt = options_for(dir, &r);
	opt.tick_interval_s = 0.1;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(&job, 1, &opt, NULL, &err), EXEC_RUN_OK);
	assert_true(r.ticks >= 2);
	assert_true(r.ticks <= 6);
	exec_job_release(&job);
}

/* ---- logs ------------------------------------------------------------------ */

/* How many names in .cpipe/logs start with ".spare-" (spares must not outlive a run). */
static size_t spare_logs(const char *dir)
{
	char *path = path_in(dir, ".cpipe/logs");
	DIR *d = opendir(path);
	free(path);
	assert_non_null(d);
	size_t n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += str_starts_with(e->d_name, ".spare-");
	closedir(d);
	return n;
}

/*
 * A job that succeeds without printing leaves no log; its empty file becomes a later job's log,
 * which holds only that job's output. A spare deleted behind the pool's back (job c) is replaced
 * by a new file; a failure keeps its log, even when the job printed nothing.
 */
static void test_logs_of_silent_jobs(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	static const size_t after_ac[] = {0, 1}, after_bd[] = {2, 3};
	struct exec_job jobs[6] = {
		{.id = "a", .command = "true"},
		{.id = "c", .command = "sleep 0.3; rm -f .cpipe/logs/.spare-*"},
		{.id = "b", .command = "echo from-b", .deps = after_ac, .dep_count = 2},
		{.id = "d", .command = "echo from-d; echo err-d >&2", .deps = after_ac, .dep_count = 2},
		{.id = "f", .command = "sleep 0.1", .deps = after_bd, .dep_count = 2},
		{.id = "e", .command = "sleep 0.2; false", .deps = after_bd, .dep_count = 2},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = 2;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 6, &opt, NULL, &err), EXEC_RUN_FAILED);
	assert_int_equal(jobs[4].result.status, EXEC_JOB_OK);
	assert_int_equal(jobs[5].result.status, EXEC_JOB_FAILED);
	for (size_t i = 0; i < 6; i++)
		assert_non_null(jobs[i].result.log_path);
	assert_false(exists(dir, jobs[0].result.log_path));
	assert_false(exists(dir, jobs[1].result.log_path));
	assert_false(exists(dir, jobs[4].result.log_path));
	assert_text(dir, jobs[2].result.log_path, "from-b\ncpipe: succeeded\n");
	assert_text(dir, jobs[3].result.log_path, "from-d\nerr-d\ncpipe: succeeded\n");
	assert_text(dir, jobs[5].result.log_path, "cpipe: exit status 1\n");
	assert_int_equal(spare_logs(dir), 0);
	release_jobs(jobs, 6);
}

/* With few file descriptors the pool keeps fewer logs open while jobs run: the logs come out the same. */
static void test_logs_with_few_fds(void **state)
{
	struct rlimit old, few;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	few = old;
	few.rlim_cur = 20; /* five logs held at most (a quarter): the others are reopened when they end */
	const char *dir = *state;
	struct recorder r = {0};
	enum { N = 8 };
	struct exec_job jobs[N];
	memset(jobs, 0, sizeof(jobs));
	char ids[N][8], commands[N][32];
	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "j%zu", i);
		snprintf(commands[i], sizeof(commands[i]), i % 2 ? "sleep 0.3" : "sleep 0.3; echo out-%zu", i);
		jobs[i].id = ids[i];
		jobs[i].command = commands[i];
	}
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = N;
	opt.max_threads = N;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &few), 0);
	int rc = exec_run_local(jobs, N, &opt, NULL, &err);
	/* Before any assertion: a failed one must not leave the limit low for the other tests. */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, EXEC_RUN_OK);
	assert_int_equal(r.max_running, N);
	for (size_t i = 0; i < N; i++) {
		char want[32];
		snprintf(want, sizeof(want), "out-%zu\ncpipe: succeeded\n", i);
		if (i % 2)
			assert_false(exists(dir, jobs[i].result.log_path));
		else
			assert_text(dir, jobs[i].result.log_path, want);
	}
	assert_int_equal(spare_logs(dir), 0);
	release_jobs(jobs, N);
}

/*
 * A plain command's program is looked up on PATH once per run. When it is gone by the time a
 * later job runs it, the job goes through the shell, which says why; a program without "#!" runs
 * through the shell too.
 */
/*
 * Under valgrind posix_spawn is a fork and an exec: a program that cannot be executed makes the
 * child exit 127 instead of an error the pool could go through the shell on.
 */
static bool spawn_errors_reported(void)
{
	const char *preload = getenv("LD_PRELOAD");
	return !(preload && strstr(preload, "vgpreload"));
}

static void test_program_on_path(void **state)
{
	const char *dir = *state;
	struct recorder r = {0};
	char *bin = path_in(dir, "bin");
	assert_int_equal(mkdir(bin, 0755), 0);
	write_text_in(dir, "bin/tool", "#!/bin/sh\necho tool \"$@\"\n");
	write_text_in(dir, "bin/plain", "echo plain \"$@\"\n");
	char *tool = path_in(dir, "bin/tool"), *plain = path_in(dir, "bin/plain");
	assert_int_equal(chmod(tool, 0755), 0);
	assert_int_equal(chmod(plain, 0755), 0);
	const char *old_path = getenv("PATH");
	char *saved = old_path ? xstrdup(old_path) : NULL;
	char *path = xasprintf("%s:%s", bin, old_path ? old_path : "/usr/bin:/bin");
	setenv("PATH", path, 1);
	static const size_t first[] = {0}, second[] = {1}, third[] = {2};
	struct exec_job jobs[4] = {
		{.id = "one", .command = "tool one"},
		{.id = "plain", .command = "plain two", .deps = first, .dep_count = 1},
		{.id = "rm", .command = "rm bin/tool", .deps = second, .dep_count = 1},
		{.id = "three", .command = "tool three", .deps = third, .dep_count = 1},
	};
	struct exec_options opt = options_for(dir, &r);
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_run_local(jobs, 4, &opt, NULL, &err), EXEC_RUN_FAILED);
	if (saved)
		setenv("PATH", saved, 1);
	else
		unsetenv("PATH");
	assert_text(dir, jobs[0].result.log_path, "tool one\ncpipe: succeeded\n");
	if (spawn_errors_reported()) {
		assert_text(dir, jobs[1].result.log_path, "plain two\ncpipe: succeeded\n");
		assert_int_equal(jobs[3].result.status, EXEC_JOB_FAILED);
		assert_int_equal(jobs[3].result.exit_code, 127);
		char *log = read_text(dir, jobs[3].result.log_path);
		assert_non_null(log);
		assert_non_null(strstr(log, "not found"));
		free(log);
	}
	release_jobs(jobs, 4);
	free(saved);
	free(path);
	free(tool);
	free(plain);
	free(bin);
}

/* ---- interruption ----------------------------------------------------------- */

static volatile sig_atomic_t test_handler_hits;
static void test_handler(int signo)
{
	(void)signo;
	test_handler_hits++;
}

/* Fork a helper that waits until every file in `ready` exists under `dir`, then sends `signo` to us. */
static pid_t signal_when_ready(const char *dir, const char *const *ready, size_t ready_count, int signo)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid)
		return pid;
	for (int tries = 0; tries < 2000; tries++) {
		size_t found = 0;
		for (size_t i = 0; i < ready_count; i++)
			found += exists(dir, ready[i]);
		if (found == ready_count)
			break;
		usleep(10000);
	}
	kill(parent, signo);
	_exit(0);
}

static pid_t read_pid(const char *dir, const char *rel)
{
	char *text = read_text(dir, rel);
	assert_non_null(text);
	pid_t pid = (pid_t)strtol(text, NULL, 10);
	free(text);
	assert_true(pid > 1);
	return pid;
}

/*
 * Whether a process (or a member of process group `pgid`) is alive. A zombie
 * is dead: where PID 1 is slow to reap orphans (some containers), kill(pid, 0)
 * alone would still find them.
 */
static bool proc_matches(pid_t pid, pid_t pgid)
{
#ifdef __linux__
	DIR *proc = opendir("/proc");
	assert_non_null(proc);
	bool found = false;
	struct dirent *entry;
	while (!found && (entry = readdir(proc))) {
		if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
			continue;
		char *path = xasprintf("/proc/%s/stat", entry->d_name);
		FILE *f = fopen(path, "r");
		free(path);
		if (!f)
			continue;
		char buf[1024];
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		char *close_paren = strrchr(buf, ')');
		char state;
		long ppid, group;
		if (!close_paren || sscanf(close_paren + 1, " %c %ld %ld", &state, &ppid, &group) != 3)
			continue;
		long this_pid = strtol(entry->d_name, NULL, 10);
		if (state != 'Z' && (pid ? this_pid == pid : group == pgid))
			found = true;
	}
	closedir(proc);
	return found;
#else
	return kill(pid ? pid : -pgid, 0) == 0;
#endif
}

/*
 * A SIGKILL is delivered, not obeyed at once: a loaded machine may show a killed member a moment
 * later. Gone within 3 s counts as gone; a member that outlives that was never killed.
 */
static bool gone_soon(pid_t pid, pid_t pgid)
{
	for (int i = 0; i < 150; i++) {
		if (!proc_matches(pid, pgid))
			return true;
		struct timespec pause = {0, 20 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	return false;
}

static void run_interrupt(const char *dir, int signo)
{
	struct recorder r = {0};
	write_text_in(dir, "out.a", "old\n");
	static const char *const out_a[] = {"out.a"};
	static const size_t on_a[] = {0};
	struct exec_job jobs[5] = {
		{.id = "a", .command = "echo $$ > pg.a; echo partial > out.a; touch started.a; sleep 30", .outputs = out_a,
		 .output_count = 1},
		/* Ignores SIGTERM (and so does its sleep): only SIGKILL after the grace period ends it. */
		{.id = "b", .command = "trap '' TERM; echo $$ > pg.b; touch started.b; sleep 30; sleep 30"},
		/* A background grandchild in the same process group must die too. */
		{.id = "c", .command = "sleep 30 & echo $! > bg.c; echo $$ > pg.c; touch started.c; wait"},
		{.id = "d", .command = "touch d.out"},
		{.id = "e", .command = "touch e.out", .deps = on_a, .dep_count = 1},
	};
	struct exec_options opt = options_for(dir, &r);
	opt.jobs = 3;
	opt.max_threads = 8; /* the default is the CPU count, maybe 2 */
	opt.kill_grace_s = 0.5;
	opt.keep_going = true;

	/* The caller's handlers must be back in place afterwards. */
	struct sigaction mine, before, after;
	memset(&mine, 0, sizeof(mine));
	mine.sa_handler = test_handler;
	sigemptyset(&mine.sa_mask);
	sigaction(signo, &mine, &before);
	test_handler_hits = 0;

	static const char *const ready[] = {"started.a", "started.b", "started.c"};
	pid_t helper = signal_when_ready(dir, ready, 3, signo);
	struct exec_progress summary;
	struct cp_err err = CP_ERR_INIT;
	double t0 = monotonic_seconds();
	int rc = exec_run_local(jobs, 5, &opt, &summary, &err);
	double elapsed = monotonic_seconds() - t0;
	int status;
	assert_int_equal(waitpid(helper, &status, 0), helper);

	assert_int_equal(rc, EXEC_RUN_INTERRUPTED);
	assert_true(elapsed < 10);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(jobs[i].result.status, EXEC_JOB_INTERRUPTED);
		assert_string_equal(jobs[i].result.message, "interrupted");
	}
	assert_int_equal(jobs[1].result.signal, SIGKILL);
	assert_int_equal(jobs[3].result.status, EXEC_JOB_SKIPPED);
	assert_string_equal(jobs[3].result.message, "not started: the run was interrupted");
	assert_int_equal(jobs[4].result.status, EXEC_JOB_SKIPPED);
	assert_false(exists(dir, "d.out"));
	assert_int_equal(summary.interrupted, 3);
	assert_int_equal(summary.skipped, 2);
	assert_int_equal(summary.running, 0);

	/* Old output back, partial one quarantined. */
	assert_text(dir, "out.a", "old\n");
	assert_text(dir, ".cpipe/failed/a/out.a", "partial\n");

	/* Every process group is gone, grandchild included. */
	static const char *const pgs[] = {"pg.a", "pg.b", "pg.c"};
	for (size_t i = 0; i < 3; i++) {
		pid_t pg = read_pid(dir, pgs[i]);
		assert_true(gone_soon(0, pg));
	}
	assert_true(gone_soon(read_pid(dir, "bg.c"), 0));

	sigaction(signo, &before, &after);
	assert_ptr_equal(after.sa_handler, test_handler);
	assert_int_equal(test_handler_hits, 0);
	release_jobs(jobs, 5);
}

static void test_interrupt_sigterm(void **state)
{
	run_interrupt(*state, SIGTERM);
}

static void test_interrupt_sigint(void **state)
{
	run_interrupt(*state, SIGINT);
}

/* ---- overhead ------------------------------------------------------------- */

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static void test_overhead(void **state)
{
	const char *dir = *state;
	enum { N = 200 };
	struct exec_job *jobs = xcalloc(N, sizeof(*jobs));
	char (*ids)[16] = xcalloc(N, sizeof(*ids));
	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "noop-%zu", i);
		jobs[i].id = ids[i];
		jobs[i].command = ":";
	}
	struct exec_options opt = EXEC_OPTIONS_INIT;
	opt.cwd = dir;
	opt.jobs = 4;
	struct cp_err err = CP_ERR_INIT;
	double cpu0 = cpu_seconds(), t0 = monotonic_seconds();
	assert_int_equal(exec_run_local(jobs, N, &opt, NULL, &err), EXEC_RUN_OK);
	double cpu = cpu_seconds() - cpu0, wall = monotonic_seconds() - t0;
	printf("exec overhead: %d no-op jobs, %.3f ms wall/job, %.3f ms of our CPU/job (spawn included)\n", N,
	       wall * 1000 / N, cpu * 1000 / N);
	release_jobs(jobs, N);
	free(jobs);
	free(ids);
}

static void expect_words(const char *command, const char *const *expected, size_t count)
{
	struct strvec words = STRVEC_INIT;
	bool simple = exec_simple_command_words(command, &words);
	assert_int_equal(simple, count > 0);
	assert_int_equal(words.count, count);
	for (size_t i = 0; i < count; i++)
		assert_string_equal(words.items[i], expected[i]);
	strvec_release(&words);
}

static void test_simple_command_words(void **state)
{
	(void)state;
	const char *const copy[] = {"cp", "sub 01/in.txt", "sub-01/out.txt"};
	expect_words("cp 'sub 01/in.txt'   'sub-01/out.txt'", copy, 3);
	const char *const flags[] = {"bet", "a.nii.gz", "b", "-f", "0.5", "--x=1"};
	expect_words("bet a.nii.gz b -f 0.5 --x=1", flags, 6);
	const char *const quoted[] = {"echo", "$(rm -rf /) `x` ; | > &"};
	expect_words("echo '$(rm -rf /) `x` ; | > &'", quoted, 2);
	/* Anything the shell would interpret goes through the shell. */
	const char *const none[] = {NULL};
	expect_words("cp a b && echo done", none, 0);
	expect_words("cat a > b", none, 0);
	expect_words("echo $HOME", none, 0);
	expect_words("cp a* b", none, 0);
	expect_words("cp 'it'\\''s' b", none, 0);
	expect_words("FOO=1 prog", none, 0);
	expect_words("cd sub && make", none, 0);
	expect_words("exit 3", none, 0);
	expect_words("echo 'unterminated", none, 0);
	expect_words("   ", none, 0);
	expect_words("a\nb", none, 0);
}

int main(void)
{
	/* A runner started in the background may leave SIGINT ignored, which exec honours. */
	signal(SIGINT, SIG_DFL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_command_words),
		cmocka_unit_test(test_script_text),
		cmocka_unit_test_setup_teardown(test_write_file_atomic, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_parallel_respects_j, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_resource_admission, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_dependencies_order, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_deepest_first, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_unneeded_jobs, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_success_reported_after_next_start, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_invalid_input, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_failure_quarantines_and_restores, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_missing_output_fails, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_keep_going_skips_dependents, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_no_keep_going_stops_admitting, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_huge_command, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_ids, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_ticks, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_logs_of_silent_jobs, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_logs_with_few_fds, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_program_on_path, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_sigterm, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_sigint, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_overhead, setup_dir, temp_dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
