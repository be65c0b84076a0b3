/*
 * Unit tests for exec's cluster backends without a scheduler: the argument
 * vector each one gets (sbatch, qsub, fsl_sub), the grouping of jobs into
 * arrays and chunks with their holds, marker and submission-record parsing,
 * and the questions asked of the scheduler's configuration (answered by
 * small scripts put first on PATH).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif

#include "exec_cluster.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_helpers.h"

/* ---- helpers ------------------------------------------------------------- */

static int setup_dir(void **state)
{
	return temp_dir_setup(state, "/tmp/cpipe-test-exec-cluster-XXXXXX");
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	struct strbuf path = STRBUF_INIT;
	path_join(dir, name, &path);
	FILE *f = fopen(path.buf, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path.buf, mode);
	strbuf_release(&path);
}

/* The argv joined with single spaces, for one comparison per backend. */
static char *argv_text(const struct exec_submit_call *call)
{
	struct strvec argv = STRVEC_INIT;
	struct strbuf text = STRBUF_INIT;
	exec_scheduler_argv(call, &argv);
	for (size_t i = 0; i < argv.count; i++) {
		if (i)
			strbuf_addch(&text, ' ');
		strbuf_adds(&text, argv.items[i]);
	}
	strvec_release(&argv);
	return strbuf_detach(&text);
}

static void expect_argv(const struct exec_submit_call *call, const char *expected)
{
	char *got = argv_text(call);
	assert_string_equal(got, expected);
	free(got);
}

/* A call for an array of 3 tasks in /data, with resources and holds as the tests set them. */
static void array_call(struct exec_submit_call *call, enum exec_cluster_kind kind)
{
	memset(call, 0, sizeof(*call));
	call->kind = kind;
	call->root = "/data";
	call->name = "array_brain";
	call->script = "/data/.cpipe/jobs/array_brain.array.sh";
	call->tasks_file = "/data/.cpipe/jobs/array_brain.tasks";
	call->task_count = 3;
}

static void single_call(struct exec_submit_call *call, enum exec_cluster_kind kind)
{
	memset(call, 0, sizeof(*call));
	call->kind = kind;
	call->root = "/data";
	call->name = "group_mean";
	call->script = "/data/.cpipe/jobs/group_mean.sh";
}

static const char *const extra[] = {"--exclusive"};
static const char *const own_extra[] = {"--comment=x"};

static void with_resources(struct exec_submit_call *call)
{
	call->resources.minutes = 90;
	call->resources.ram_gb = 1.5;
	call->resources.threads = 4;
	call->resources.queue = "short";
	call->resources.extra = extra;
	call->resources.extra_count = 1;
	call->resources.backend_extra = own_extra;
	call->resources.backend_extra_count = 1;
}

/* ---- argv of each backend --------------------------------------------------- */

static void test_slurm_argv(void **state)
{
	(void)state;
	struct exec_submit_call call;
	array_call(&call, EXEC_CLUSTER_SLURM);
	with_resources(&call);
	strvec_push(&call.holds.whole, "7_2");
	strvec_push(&call.holds.corresponding, "8");
	expect_argv(&call, "sbatch --parsable --chdir=/data --job-name=array_brain "
			   "--output=/data/.cpipe/jobs/array_brain.%a.out --kill-on-invalid-dep=yes --array=1-3 "
			   "--dependency=afterok:7_2,aftercorr:8 --time=90 --mem=1536M --cpus-per-task=4 "
			   "--partition=short --exclusive --comment=x /data/.cpipe/jobs/array_brain.array.sh");
	exec_holds_release(&call.holds);

	single_call(&call, EXEC_CLUSTER_SLURM);
	expect_argv(&call, "sbatch --parsable --chdir=/data --job-name=group_mean "
			   "--output=/data/.cpipe/jobs/group_mean.out --kill-on-invalid-dep=yes "
			   "/data/.cpipe/jobs/group_mean.sh");
}

static void test_sge_argv(void **state)
{
	(void)state;
	struct exec_submit_call call;
	array_call(&call, EXEC_CLUSTER_SGE);
	with_resources(&call);
	strvec_push(&call.holds.whole, "7");
	strvec_push(&call.holds.corresponding, "8");
	unsetenv("CPIPE_SGE_PE");
	expect_argv(&call, "qsub -terse -wd /data -N array_brain -o /data/.cpipe/jobs/array_brain.$TASK_ID.out -j y "
			   "-S /bin/sh -t 1-3 -hold_jid 7 -hold_jid_ad 8 -l h_rt=1:30:00 -l h_vmem=1536M -pe smp 4 "
			   "-q short --exclusive --comment=x /data/.cpipe/jobs/array_brain.array.sh");
	/* The environment names the site's PE; a recipe's resources.pe comes first. */
	setenv("CPIPE_SGE_PE", "mpi", 1);
	char *got = argv_text(&call);
	assert_non_null(strstr(got, " -pe mpi 4 "));
	free(got);
	call.resources.pe = "openmp";
	got = argv_text(&call);
	assert_non_null(strstr(got, " -pe openmp 4 "));
	free(got);
	unsetenv("CPIPE_SGE_PE");
	exec_holds_release(&call.holds);

	/* A job name may not start with a digit. */
	single_call(&call, EXEC_CLUSTER_SGE);
	call.name = "01_brain";
	expect_argv(&call, "qsub -terse -wd /data -N j01_brain -o /data/.cpipe/jobs/01_brain.out -j y -S /bin/sh "
			   "/data/.cpipe/jobs/group_mean.sh");
}

static void test_fsl_sub_argv(void **state)
{
	(void)state;
	struct exec_submit_call call;
	unsetenv("CPIPE_FSL_SUB_PE");
	/* The matching array is the only parent: --array_hold, task by task. */
	array_call(&call, EXEC_CLUSTER_FSL_SUB);
	strvec_push(&call.holds.corresponding, "8");
	expect_argv(&call, "fsl_sub -N array_brain -l /data/.cpipe/jobs --array_hold 8 "
			   "-t /data/.cpipe/jobs/array_brain.tasks");
	/* With another parent too, fsl_sub would drop -j: every parent is waited for as a whole. */
	strvec_push(&call.holds.whole, "7");
	expect_argv(&call, "fsl_sub -N array_brain -l /data/.cpipe/jobs -j 7,8 -t /data/.cpipe/jobs/array_brain.tasks");
	exec_holds_release(&call.holds);

	/* Resources: -R in whole GB rounded up, -s with the configured PE name, then the extras. */
	single_call(&call, EXEC_CLUSTER_FSL_SUB);
	with_resources(&call);
	call.resources.pe = "openmp";
	strvec_push(&call.holds.whole, "5");
	strvec_push(&call.holds.whole, "6");
	expect_argv(&call, "fsl_sub -N group_mean -l /data/.cpipe/jobs -T 90 -R 2 -q short -s openmp,4 -j 5,6 "
			   "--exclusive --comment=x /bin/sh /data/.cpipe/jobs/group_mean.sh");
	exec_holds_release(&call.holds);
	call.resources.pe = NULL;
	setenv("CPIPE_FSL_SUB_PE", "shmem", 1);
	char *got = argv_text(&call);
	assert_non_null(strstr(got, " -s shmem,4 "));
	free(got);
	unsetenv("CPIPE_FSL_SUB_PE");
	/* No name at all: no -s (exec_cluster_submit refuses such a job before this point). */
	got = argv_text(&call);
	assert_null(strstr(got, " -s "));
	free(got);
	/* One thread needs no parallel environment. */
	call.resources.threads = 1;
	call.resources.pe = "openmp";
	got = argv_text(&call);
	assert_null(strstr(got, " -s "));
	free(got);
}

static void test_parallel_env(void **state)
{
	(void)state;
	unsetenv("CPIPE_SGE_PE");
	unsetenv("CPIPE_FSL_SUB_PE");
	assert_string_equal(exec_parallel_env(EXEC_CLUSTER_SGE, NULL), "smp");
	assert_null(exec_parallel_env(EXEC_CLUSTER_FSL_SUB, NULL));
	assert_string_equal(exec_parallel_env(EXEC_CLUSTER_FSL_SUB, "openmp"), "openmp");
	setenv("CPIPE_FSL_SUB_PE", "shmem", 1);
	assert_string_equal(exec_parallel_env(EXEC_CLUSTER_FSL_SUB, NULL), "shmem");
	assert_string_equal(exec_parallel_env(EXEC_CLUSTER_SGE, NULL), "smp"); /* SGE has its own variable */
	unsetenv("CPIPE_FSL_SUB_PE");
}

/* ---- grouping into arrays, chunks and holds ------------------------------------ */

/*
 * `n` subjects, each a parent job (group "fov") and a child job (group
 * "brain") needing it, plus one job (group "mean") needing every child.
 * Parents are listed in reverse, so the children's order must come from
 * their parents' tasks.
 */
struct study {
	struct exec_cluster_job *jobs;
	size_t count;
	size_t *deps;
	char **ids;
};

static void make_study(struct study *s, size_t n)
{
	s->count = 2 * n + 1;
	s->jobs = xcalloc(s->count, sizeof(*s->jobs));
	s->deps = xcalloc(2 * n, sizeof(*s->deps));
	s->ids = xcalloc(s->count, sizeof(*s->ids));
	for (size_t i = 0; i < n; i++) {
		s->ids[i] = xasprintf("fov %zu", n - i);
		s->jobs[i].id = s->ids[i];
		s->jobs[i].group = "fov";
		s->ids[n + i] = xasprintf("brain %zu", i + 1);
		s->jobs[n + i].id = s->ids[n + i];
		s->jobs[n + i].group = "brain";
		s->deps[i] = n - 1 - i; /* brain i+1 needs fov i+1, which is job n-1-i */
		s->jobs[n + i].deps = &s->deps[i];
		s->jobs[n + i].dep_count = 1;
		s->deps[n + i] = n + i;
	}
	s->ids[2 * n] = xstrdup("mean");
	s->jobs[2 * n].id = s->ids[2 * n];
	s->jobs[2 * n].group = "mean";
	s->jobs[2 * n].deps = &s->deps[n];
	s->jobs[2 * n].dep_count = n;
}

static void free_study(struct study *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->ids[i]);
	free(s->ids);
	free(s->deps);
	free(s->jobs);
}

static void test_plan_chunks_keep_task_holds(void **state)
{
	(void)state;
	struct study s;
	make_study(&s, 2500);
	struct exec_unit *units;
	size_t unit_count;
	size_t *unit_of = xcalloc(s.count, sizeof(*unit_of)), *task_of = xcalloc(s.count, sizeof(*task_of));
	exec_cluster_plan(s.jobs, s.count, 3, 1000, &units, &unit_count, unit_of, task_of);
	/* fov: 1000 + 1000 + 500, brain likewise, mean alone. */
	assert_int_equal(unit_count, 7);
	size_t expected[] = {1000, 1000, 500, 1000, 1000, 500, 1};
	for (size_t u = 0; u < unit_count; u++) {
		assert_int_equal(units[u].count, expected[u]);
		assert_int_equal(units[u].array, u < 6);
		units[u].job = xasprintf("%zu", 100 + u);
	}
	/* Task k of brain chunk c needs exactly task k of fov chunk c. */
	for (size_t i = 0; i < 2500; i++) {
		size_t child = 2500 + i, parent = s.jobs[child].deps[0];
		assert_int_equal(unit_of[child], unit_of[parent] + 3);
		assert_int_equal(task_of[child], task_of[parent]);
	}
	struct exec_cluster_options opt;
	memset(&opt, 0, sizeof(opt));
	const char *kinds_hold[] = {"102", "102", "102"};
	enum exec_cluster_kind kinds[] = {EXEC_CLUSTER_SLURM, EXEC_CLUSTER_SGE, EXEC_CLUSTER_FSL_SUB};
	for (size_t k = 0; k < 3; k++) {
		opt.kind = kinds[k];
		struct exec_holds holds;
		memset(&holds, 0, sizeof(holds));
		exec_cluster_unit_holds(s.jobs, units, 5, unit_of, task_of, &opt, &holds);
		assert_int_equal(holds.whole.count, 0);
		assert_int_equal(holds.corresponding.count, 1);
		assert_string_equal(holds.corresponding.items[0], kinds_hold[k]);
		exec_holds_release(&holds);
		/* mean needs every task of the three brain chunks: three whole-array ids, not 2500 tasks. */
		exec_cluster_unit_holds(s.jobs, units, 6, unit_of, task_of, &opt, &holds);
		assert_int_equal(holds.corresponding.count, 0);
		assert_int_equal(holds.whole.count, 3);
		for (size_t h = 0; h < 3; h++)
			assert_true(strvec_find(&holds.whole, units[3 + h].job) >= 0);
		exec_holds_release(&holds);
	}
	exec_cluster_units_free(units, unit_count);
	free(unit_of);
	free(task_of);
	free_study(&s);
}

static void test_plan_partial_array_holds_tasks(void **state)
{
	(void)state;
	/* A job needing two of three tasks of an array: SLURM waits for those tasks, the others for the array. */
	struct exec_cluster_job jobs[4];
	memset(jobs, 0, sizeof(jobs));
	size_t deps[] = {0, 2};
	for (size_t i = 0; i < 3; i++) {
		jobs[i].id = i == 0 ? "a" : i == 1 ? "b" : "c";
		jobs[i].group = "step";
	}
	jobs[3].id = "last";
	jobs[3].deps = deps;
	jobs[3].dep_count = 2;
	struct exec_unit *units;
	size_t unit_count, unit_of[4] = {0}, task_of[4] = {0};
	exec_cluster_plan(jobs, 4, 3, 1000, &units, &unit_count, unit_of, task_of);
	assert_int_equal(unit_count, 2);
	units[0].job = xstrdup("41");
	struct exec_cluster_options opt;
	memset(&opt, 0, sizeof(opt));
	struct exec_holds holds;
	memset(&holds, 0, sizeof(holds));
	opt.kind = EXEC_CLUSTER_SLURM;
	exec_cluster_unit_holds(jobs, units, 1, unit_of, task_of, &opt, &holds);
	assert_int_equal(holds.whole.count, 2);
	assert_string_equal(holds.whole.items[0], "41_1");
	assert_string_equal(holds.whole.items[1], "41_3");
	exec_holds_release(&holds);
	opt.kind = EXEC_CLUSTER_FSL_SUB;
	exec_cluster_unit_holds(jobs, units, 1, unit_of, task_of, &opt, &holds);
	assert_int_equal(holds.whole.count, 1);
	assert_string_equal(holds.whole.items[0], "41");
	exec_holds_release(&holds);
	exec_cluster_units_free(units, unit_count);
}

/* ---- markers and submission records ------------------------------------------ */

static void test_marker_parsing(void **state)
{
	const char *dir = *state;
	struct strbuf path = STRBUF_INIT;
	path_join(dir, EXEC_JOBS_DIR, &path);
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_mkdir_p(path.buf, &err), 0);
	struct exec_marker marker;
	assert_int_equal(exec_marker_read(dir, "none", &marker, &err), 0);

	write_file(path.buf, "ok.marker",
		   "cpipe-marker 1\nexit 0\nstart_ns 100\nend_ns 200\nhost node1\nmessage \n"
		   "output 1 42 1700000000.5\noutput 0\n", 0644);
	assert_int_equal(exec_marker_read(dir, "ok", &marker, &err), 1);
	assert_int_equal(marker.exit_code, 0);
	assert_null(marker.message);
	assert_int_equal(marker.start_ns, 100);
	assert_int_equal(marker.end_ns, 200);
	assert_string_equal(marker.host, "node1");
	assert_int_equal(marker.output_count, 2);
	assert_true(marker.outputs[0].exists);
	assert_int_equal(marker.outputs[0].size, 42);
	assert_int_equal(marker.outputs[0].mtime_ns, INT64_C(1700000000500000000));
	assert_false(marker.outputs[1].exists);
	exec_marker_release(&marker);

	write_file(path.buf, "failed.marker",
		   "cpipe-marker 1\nexit 1\nstart_ns 1\nend_ns 2\nhost h\nmessage not run: a did not succeed\n", 0644);
	assert_int_equal(exec_marker_read(dir, "failed", &marker, &err), 1);
	assert_int_equal(marker.exit_code, 1);
	assert_string_equal(marker.message, "not run: a did not succeed");
	exec_marker_release(&marker);

	/* Each of these is malformed: a failed job, never a running or a good one. */
	const char *bad[] = {
		"cpipe-marker 2\nexit 0\n",                  /* unknown version */
		"cpipe-marker 1\nstart_ns 1\n",              /* no exit line */
		"cpipe-marker 1\nexit -1\n",                 /* negative exit */
		"cpipe-marker 1\nexit 0\nstart_ns 12x\n",    /* not a number */
		"cpipe-marker 1\nexit 0\noutput 1 42\n",     /* signature cut short */
		"cpipe-marker 1\nexit 0\noutput 0 42 1.0\n", /* missing file with a signature */
		"cpipe-marker 1\nexit 0\noutput 1 4 1.1234567890\n", /* more than ns precision */
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path.buf, "bad.marker", bad[i], 0644);
		assert_int_equal(exec_marker_read(dir, "bad", &marker, &err), -1);
		assert_non_null(strstr(err.message, "malformed job marker"));
		cp_err_release(&err);
	}
	strbuf_release(&path);
}

/* Load the records under `dir`; `problems` gets what could not be read. */
static struct exec_records *load_records(const char *dir, struct strvec *problems)
{
	struct exec_records *records;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_records_load(dir, &records, problems, &err), 0);
	return records;
}

/* The submission of job file name `name`, as the records under `dir` say (1), or 0. */
static int find_record(const char *dir, const char *name, struct exec_submission *out)
{
	struct strvec problems = STRVEC_INIT;
	struct exec_records *records = load_records(dir, &problems);
	assert_int_equal(problems.count, 0);
	int found = exec_records_find(records, name, out);
	exec_records_free(records);
	strvec_release(&problems);
	return found;
}

/* The records under `dir` carry job `name` as `want` says; *back gets it (release it). */
static void expect_record(const char *dir, const char *name, const struct exec_submission *want,
			  struct exec_submission *back)
{
	assert_int_equal(find_record(dir, name, back), 1);
	assert_int_equal(back->kind, want->kind);
	assert_string_equal(back->job, want->job);
	assert_int_equal(back->task, want->task);
	assert_string_equal(back->log_path, want->log_path);
	assert_string_equal(back->note, want->note);
	assert_int_equal(back->submitted_ns, want->submitted_ns);
}

static void test_submission_record(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	struct exec_record_head head = {EXEC_CLUSTER_SLURM, "1234", 99, NULL};
	struct exec_record_member members[] = {
		{"job", 17, ".cpipe/logs/a\nb\\c\td.log", "definition 00ff"},
		{"other", 18, ".cpipe/logs/other.log", NULL},
	};
	assert_int_equal(exec_record_write(dir, "unit", &head, members, 2, &err), 0);
	struct exec_submission back;
	const struct exec_submission want = {EXEC_CLUSTER_SLURM, "1234", 17, ".cpipe/logs/a\nb\\c\td.log",
					     "definition 00ff", 99};
	expect_record(dir, "job", &want, &back);
	struct strbuf id = STRBUF_INIT;
	exec_submission_cluster_id(&back, &id);
	assert_string_equal(id.buf, "1234_17");
	strbuf_release(&id);
	exec_submission_release(&back);
	assert_int_equal(find_record(dir, "nobody", &back), 0);

	/* A job forgotten is left out when saved; the record goes with the last one. */
	struct strvec problems = STRVEC_INIT;
	struct exec_records *records = load_records(dir, &problems);
	exec_records_forget(records, "job");
	assert_int_equal(exec_records_save(records, &err), 0);
	exec_records_free(records);
	assert_int_equal(find_record(dir, "job", &back), 0);
	assert_int_equal(find_record(dir, "other", &back), 1);
	assert_null(back.note);
	exec_submission_release(&back);
	records = load_records(dir, &problems);
	exec_records_forget(records, "other");
	assert_int_equal(exec_records_save(records, &err), 0);
	exec_records_free(records);
	struct strbuf path = STRBUF_INIT;
	path_join(dir, EXEC_JOBS_DIR "/unit.submission", &path);
	assert_int_equal(access(path.buf, F_OK), -1);

	/* A later submission of a job wins over an earlier one, whatever the order they are listed in. */
	struct exec_record_head later = {EXEC_CLUSTER_SLURM, "2000", 200, NULL};
	assert_int_equal(exec_record_write(dir, "b_later", &later, members, 1, &err), 0);
	assert_int_equal(exec_record_write(dir, "z_earlier", &head, members, 1, &err), 0);
	assert_int_equal(find_record(dir, "job", &back), 1);
	assert_string_equal(back.job, "2000");
	exec_submission_release(&back);
	/* ... and the earlier record, carrying nothing else, goes once saved. */
	records = load_records(dir, &problems);
	assert_int_equal(exec_records_save(records, &err), 0);
	exec_records_free(records);
	path_join(dir, EXEC_JOBS_DIR "/z_earlier.submission", &path);
	assert_int_equal(access(path.buf, F_OK), -1);
	assert_int_equal(problems.count, 0);
	strvec_release(&problems);
	strbuf_release(&path);
}

/* Forget the jobs `names` (NULL-terminated) in `records`, save them and free them. */
static void forget_and_save(struct exec_records *records, const char *const *names)
{
	struct cp_err err = CP_ERR_INIT;
	for (; *names; names++)
		exec_records_forget(records, *names);
	assert_int_equal(exec_records_save(records, &err), 0);
	exec_records_free(records);
}

/* Two cpipe calls importing from one record at once (status beside wait): neither brings back what the other took out. */
static void test_records_saved_side_by_side(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	struct exec_record_head head = {EXEC_CLUSTER_SLURM, "7", 1, NULL};
	struct exec_record_member members[] = {{"x", 1, "lx", NULL}, {"y", 2, "ly", NULL}, {"z", 3, "lz", NULL}};
	assert_int_equal(exec_record_write(dir, "unit", &head, members, 3, &err), 0);
	struct strvec problems = STRVEC_INIT;
	struct exec_records *one = load_records(dir, &problems), *other = load_records(dir, &problems);
	forget_and_save(one, (const char *const[]){"x", NULL});
	forget_and_save(other, (const char *const[]){"y", NULL});
	struct exec_submission back;
	assert_int_equal(find_record(dir, "x", &back), 0);
	assert_int_equal(find_record(dir, "y", &back), 0);
	assert_int_equal(find_record(dir, "z", &back), 1);
	exec_submission_release(&back);
	assert_int_equal(problems.count, 0);
	strvec_release(&problems);
}

/*
 * A cpipe that loaded a record, then saves after another one removed it and a
 * new submission wrote a record of the same name (the same jobs, submitted
 * again): the new record is not the one it read, and keeps all its jobs.
 */
static void test_record_replaced_before_save(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	struct exec_record_head old_head = {EXEC_CLUSTER_SLURM, "7", 1, NULL};
	struct exec_record_member members[] = {{"x", 1, "lx", NULL}, {"y", 2, "ly", NULL}};
	assert_int_equal(exec_record_write(dir, "unit", &old_head, members, 2, &err), 0);
	struct strvec problems = STRVEC_INIT;
	struct exec_records *stale = load_records(dir, &problems);
	forget_and_save(load_records(dir, &problems), (const char *const[]){"x", "y", NULL});
	struct exec_record_head new_head = {EXEC_CLUSTER_SLURM, "8", 2, NULL};
	assert_int_equal(exec_record_write(dir, "unit", &new_head, members, 2, &err), 0);
	forget_and_save(stale, (const char *const[]){"x", NULL});
	for (size_t k = 0; k < 2; k++) {
		struct exec_submission back;
		assert_int_equal(find_record(dir, members[k].name, &back), 1);
		assert_string_equal(back.job, "8");
		exec_submission_release(&back);
	}
	assert_int_equal(problems.count, 0);
	strvec_release(&problems);
}

/* A record name in use is not taken again: the tasks of its unit may still read the unit's files. */
static void test_record_unit_name(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	char *name = exec_record_unit_name(dir, "array_a");
	assert_string_equal(name, "array_a");
	struct exec_record_head head = {EXEC_CLUSTER_SLURM, "1", 1, NULL};
	struct exec_record_member member = {"a", 1, "l", NULL};
	assert_int_equal(exec_record_write(dir, name, &head, &member, 1, &err), 0);
	free(name);
	name = exec_record_unit_name(dir, "array_a");
	assert_string_equal(name, "array_a-2");
	free(name);
}

/* The per-job record of the version before is read as it was written. */
static void test_old_submission_record(void **state)
{
	const char *dir = *state;
	struct strbuf path = STRBUF_INIT;
	path_join(dir, EXEC_JOBS_DIR, &path);
	struct cp_err mkdir_err = CP_ERR_INIT;
	assert_int_equal(exec_mkdir_p(path.buf, &mkdir_err), 0);
	write_file(path.buf, "old.submitted",
		   "cpipe-submitted 1\nbackend sge\njob 77\ntask 3\nlog .cpipe/logs/old\\nx.log\ntime 5\n"
		   "note definition 0a\n",
		   0644);
	struct exec_submission back;
	const struct exec_submission want = {EXEC_CLUSTER_SGE, "77", 3, ".cpipe/logs/old\nx.log", "definition 0a", 5};
	expect_record(dir, "old", &want, &back);
	exec_submission_release(&back);
	/* Imported: the old file goes. */
	struct strvec problems = STRVEC_INIT;
	struct exec_records *records = load_records(dir, &problems);
	exec_records_forget(records, "old");
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_records_save(records, &err), 0);
	exec_records_free(records);
	path_join(dir, EXEC_JOBS_DIR "/old.submitted", &path);
	assert_int_equal(access(path.buf, F_OK), -1);
	strvec_release(&problems);
	strbuf_release(&path);
}

/* Records that are cut short, malformed or hostile are refused whole, each said with its file and line. */
static void test_bad_submission_records(void **state)
{
	const char *dir = *state;
	static const struct {
		const char *text;
		const char *why;
	} bad[] = {
		{"cpipe-submission 1\nbackend slurm\njob 5\ntime 1\nmember\t1\ta\tl\n", "no end line"},
		{"cpipe-submission 1\nbackend slurm\njob 5\ntime 1\nmember\t1\ta\tl\nmember\t2\tb", "malformed member"},
		{"cpipe-submission 1\nbackend slurm\njob 5\nmember\t1\ta\tl\nend 2\n", "does not count"},
		{"cpipe-submission 1\nbackend pbs\njob 5\nmember\t1\ta\tl\nend 1\n", "unknown backend"},
		{"cpipe-submission 1\nbackend slurm\njob -x\nmember\t1\ta\tl\nend 1\n", "job id"},
		{"cpipe-submission 1\nbackend slurm\njob 5 6\nmember\t1\ta\tl\nend 1\n", "job id"},
		{"cpipe-submission 1\nbackend slurm\njob 5\nmember\t1\t../../etc/passwd\tl\nend 1\n", "malformed member"},
		{"cpipe-submission 1\nbackend slurm\njob 5\nmember\t1\t.hidden\tl\nend 1\n", "malformed member"},
		{"cpipe-submission 1\nbackend slurm\njob 5\nmember\t-1\ta\tl\nend 1\n", "malformed member"},
		{"cpipe-submission 1\nbackend slurm\njob 5\nmember\tx\ta\tl\nend 1\n", "malformed member"},
		{"cpipe-submission 1\nbackend slurm\njob 5\nmember\t1\ta\t\nend 1\n", "malformed member"},
		{"cpipe-submission 1\nbackend slurm\njob 5\nmember\t1\ta\tl\tn\textra\nend 1\n", "malformed member"},
		{"cpipe-submission 1\nbackend slurm\njob 5\nmember\t1\ta\tl\nend 1\nmember\t2\tb\tl\n", "after its end"},
		{"cpipe-submission 1\nbackend slurm\nmember\t1\ta\tl\nend 1\n", "no backend or job id"},
		{"cpipe-submission 1\nbackend slurm\njob 5\ntime soon\nmember\t1\ta\tl\nend 1\n", "time"},
		/* The token names a file removed with the record. */
		{"cpipe-submission 1\nbackend slurm\njob 5\ntoken ../../../etc/x\nmember\t1\ta\tl\nend 1\n", "token"},
		{"cpipe-submission 1\nbackend slurm\njob 5\ntoken 0123456789ABCDEF\nmember\t1\ta\tl\nend 1\n", "token"},
		{"cpipe-submission 1\nbackend\nend 0\n", "without a value"},
		{"cpipe-submission 2\nbackend slurm\njob 5\nend 0\n", "not a submission record"},
		{"", "not a submission record"},
	};
	struct strbuf path = STRBUF_INIT;
	path_join(dir, EXEC_JOBS_DIR, &path);
	struct cp_err mkdir_err = CP_ERR_INIT;
	assert_int_equal(exec_mkdir_p(path.buf, &mkdir_err), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path.buf, "bad.submission", bad[i].text, 0644);
		struct strvec problems = STRVEC_INIT;
		struct exec_records *records = load_records(dir, &problems);
		struct exec_submission back;
		assert_int_equal(exec_records_find(records, "a", &back), 0);
		if (problems.count != 1 || !strstr(problems.items[0], bad[i].why) ||
		    !strstr(problems.items[0], "bad.submission:"))
			fail_msg("record %zu: %s", i, problems.count ? problems.items[0] : "(accepted)");
		exec_records_free(records);
		strvec_release(&problems);
	}
	/* Beside a good record, a bad one takes nothing from it; keys of a later version are passed over. */
	write_file(path.buf, "good.submission",
		   "cpipe-submission 1\nbackend slurm\njob 5\nqueue long\nmember\t1\tg\t.cpipe/logs/g.log\nend 1\n", 0644);
	struct strvec problems = STRVEC_INIT;
	struct exec_records *records = load_records(dir, &problems);
	struct exec_submission back;
	assert_int_equal(exec_records_find(records, "g", &back), 1);
	exec_submission_release(&back);
	assert_int_equal(problems.count, 1);
	exec_records_free(records);
	strvec_release(&problems);
	write_file(path.buf, "bad.submitted", "cpipe-submitted 1\nbackend pbs\njob 5\n", 0644);
	records = load_records(dir, &problems);
	assert_int_equal(problems.count, 2);
	exec_records_free(records);
	strvec_release(&problems);
	strbuf_release(&path);
}

/* ---- questions to the scheduler's configuration ------------------------------ */

/* PATH = `dir` and the system's directories; restored by restore_path. */
static char *saved_path;

static void path_first(const char *dir)
{
	saved_path = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	char *path = xasprintf("%s:%s", dir, saved_path);
	setenv("PATH", path, 1);
	free(path);
}

static void path_only(const char *dir)
{
	saved_path = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	setenv("PATH", dir, 1);
}

static void restore_path(void)
{
	setenv("PATH", saved_path, 1);
	free(saved_path);
}

static void test_array_limit(void **state)
{
	const char *dir = *state;
	path_first(dir);
	write_file(dir, "scontrol", "#!/bin/sh\necho 'MailProg                = /bin/true'\n"
				    "echo 'MaxArraySize            = 1001'\necho 'MaxJobCount = 100000'\n", 0755);
	assert_int_equal(exec_cluster_array_limit(EXEC_CLUSTER_SLURM), 1000);
	write_file(dir, "scontrol", "#!/bin/sh\necho 'MaxArraySize            = 0'\n", 0755);
	assert_int_equal(exec_cluster_array_limit(EXEC_CLUSTER_SLURM), 0);
	/* Unanswered: SLURM's default. */
	write_file(dir, "scontrol", "#!/bin/sh\necho 'slurm_load_ctl_conf error' >&2; exit 1\n", 0755);
	assert_int_equal(exec_cluster_array_limit(EXEC_CLUSTER_SLURM), 1000);
	write_file(dir, "qconf", "#!/bin/sh\nprintf 'max_u_jobs                   0\\nmax_aj_tasks                 75000\\n'\n",
		   0755);
	assert_int_equal(exec_cluster_array_limit(EXEC_CLUSTER_SGE), 75000);
	write_file(dir, "qconf", "#!/bin/sh\nprintf 'max_aj_tasks 0\\n'\n", 0755);
	assert_true(exec_cluster_array_limit(EXEC_CLUSTER_SGE) == SIZE_MAX);
	restore_path();
	/* fsl_sub asks the scheduler under it; with none on PATH there is no limit. */
	path_only(dir);
	assert_true(exec_cluster_array_limit(EXEC_CLUSTER_FSL_SUB) == SIZE_MAX);
	write_file(dir, "squeue", "#!/bin/sh\nexit 0\n", 0755);
	write_file(dir, "scontrol", "#!/bin/sh\necho 'MaxArraySize = 501'\n", 0755);
	assert_int_equal(exec_cluster_array_limit(EXEC_CLUSTER_FSL_SUB), 500);
	restore_path();
}

static void test_choose_auto(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	enum exec_cluster_kind kind;
	path_only(dir);
	/* fsl_sub without queues would run everything here, one job at a time: sbatch is chosen. */
	write_file(dir, "fsl_sub", "#!/bin/sh\n[ \"$1\" = --has_queues ] && { echo No; exit 1; }\nexit 2\n", 0755);
	write_file(dir, "sbatch", "#!/bin/sh\nexit 0\n", 0755);
	assert_int_equal(exec_cluster_choose("auto", &kind, &err), 0);
	assert_int_equal(kind, EXEC_CLUSTER_SLURM);
	/* Asked for by name, it is used anyway. */
	assert_int_equal(exec_cluster_choose("fsl_sub", &kind, &err), 0);
	assert_int_equal(kind, EXEC_CLUSTER_FSL_SUB);
	/* With queues, fsl_sub comes first. */
	write_file(dir, "fsl_sub", "#!/bin/sh\n[ \"$1\" = --has_queues ] && { echo Yes; exit 0; }\nexit 2\n", 0755);
	assert_int_equal(exec_cluster_choose(NULL, &kind, &err), 0);
	assert_int_equal(kind, EXEC_CLUSTER_FSL_SUB);
	/* Only fsl_sub, without queues: say why nothing is chosen. */
	write_file(dir, "fsl_sub", "#!/bin/sh\nexit 1\n", 0755);
	struct strbuf path = STRBUF_INIT;
	path_join(dir, "sbatch", &path);
	unlink(path.buf);
	strbuf_release(&path);
	assert_int_equal(exec_cluster_choose("auto", &kind, &err), EXEC_CLUSTER_FSL_SUB_LOCAL);
	assert_non_null(strstr(err.message, "has no queues configured"));
	cp_err_release(&err);
	assert_int_equal(exec_cluster_choose("pbs", &kind, &err), EXEC_CLUSTER_UNKNOWN_NAME);
	assert_non_null(strstr(err.message, "unknown backend 'pbs'"));
	cp_err_release(&err);
	restore_path();
}

static void test_cancel_status(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	struct exec_submission slurm = EXEC_SUBMISSION_INIT, sge = EXEC_SUBMISSION_INIT;
	slurm.kind = EXEC_CLUSTER_SLURM;
	slurm.job = "12";
	slurm.task = 3;
	sge.kind = EXEC_CLUSTER_SGE;
	sge.job = "40";
	const struct exec_submission *subs[] = {&slurm};
	path_only(dir);
	/* The arguments are written where the test can read them: "12_3". */
	struct strbuf path = STRBUF_INIT;
	path_join(dir, "args", &path);
	char *script = xasprintf("#!/bin/sh\necho \"$@\" >'%s'\n", path.buf);
	write_file(dir, "scancel", script, 0755);
	free(script);
	assert_int_equal(exec_cluster_cancel(subs, 1, &err), 0);
	write_file(dir, "scancel", "#!/bin/sh\necho 'scancel: fatal: Unable to contact slurm controller' >&2\nexit 1\n", 0755);
	assert_int_equal(exec_cluster_cancel(subs, 1, &err), -1);
	assert_non_null(strstr(err.message, "Unable to contact slurm controller"));
	cp_err_release(&err);
	/* qdel of a job that has ended: fine; any other complaint: not cancelled. */
	subs[0] = &sge;
	write_file(dir, "qdel", "#!/bin/sh\necho 'denied: job \"40\" does not exist' >&2\nexit 1\n", 0755);
	assert_int_equal(exec_cluster_cancel(subs, 1, &err), 0);
	write_file(dir, "qdel", "#!/bin/sh\necho 'unable to contact qmaster' >&2\nexit 2\n", 0755);
	assert_int_equal(exec_cluster_cancel(subs, 1, &err), -1);
	cp_err_release(&err);
	restore_path();
	FILE *f = fopen(path.buf, "r");
	assert_non_null(f);
	char line[64] = "";
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_string_equal(line, "12_3\n");
	strbuf_release(&path);
}

/* exec_cluster_submit refuses, before writing anything, what fsl_sub cannot carry. */
static void test_fsl_sub_refusals(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	struct strbuf root = STRBUF_INIT;
	path_join(dir, "data root", &root);
	assert_int_equal(exec_mkdir_p(root.buf, &err), 0);
	struct exec_cluster_job job;
	memset(&job, 0, sizeof(job));
	job.id = "brain";
	job.command = "true";
	struct exec_cluster_options opt;
	memset(&opt, 0, sizeof(opt));
	opt.kind = EXEC_CLUSTER_FSL_SUB;
	opt.cwd = root.buf;
	assert_int_equal(exec_cluster_submit(&job, 1, &opt, NULL, &err), EXEC_CLUSTER_BLANK_ROOT);
	assert_non_null(strstr(err.message, "contains a space"));
	assert_null(strstr(err.message, "--submit")); /* the command line's hint is the CLI's */
	cp_err_release(&err);
	struct strbuf jobs_dir = STRBUF_INIT;
	path_join(root.buf, EXEC_JOBS_DIR, &jobs_dir);
	assert_int_equal(access(jobs_dir.buf, F_OK), -1);

	unsetenv("CPIPE_FSL_SUB_PE");
	opt.cwd = dir;
	job.resources.threads = 2;
	assert_int_equal(exec_cluster_submit(&job, 1, &opt, NULL, &err), -1);
	assert_non_null(strstr(err.message, "asks for 2 threads"));
	cp_err_release(&err);
	strbuf_release(&jobs_dir);
	strbuf_release(&root);
}

/* ---- batches (-b) -------------------------------------------------------------- */

/*
 * `subjects` chains a -> b -> c, one batch key per subject, then `group`
 * needing every c (its own key), then `late` of subject 1 needing c1 and
 * group: merging it into subject 1's batch would make the two batches wait
 * for each other, so it must stay apart.
 */
struct chains {
	struct exec_cluster_job jobs[16];
	size_t deps[32];
	char *ids[16], *keys[16];
	size_t count;
};

static void make_chains(struct chains *c, size_t subjects, bool late)
{
	memset(c, 0, sizeof(*c));
	static const char *const steps[] = {"a", "b", "c"};
	static const long minutes[] = {10, 20, 5};
	static const double ram[] = {1, 4, 2};
	size_t used = 0;
	for (size_t s = 0; s < subjects; s++)
		for (size_t k = 0; k < 3; k++) {
			size_t i = c->count++;
			c->ids[i] = xasprintf("%s%zu", steps[k], s + 1);
			c->keys[i] = xasprintf("subject=%zu", s + 1);
			c->jobs[i].id = c->ids[i];
			c->jobs[i].command = "true";
			c->jobs[i].group = steps[k];
			c->jobs[i].batch = c->keys[i];
			c->jobs[i].resources.minutes = minutes[k];
			c->jobs[i].resources.ram_gb = ram[k];
			c->jobs[i].resources.threads = k == 1 ? 2 : 1;
			c->jobs[i].resources.pe = "openmp";
			if (k) {
				c->deps[used] = i - 1;
				c->jobs[i].deps = &c->deps[used++];
				c->jobs[i].dep_count = 1;
			}
		}
	if (!late)
		return;
	size_t g = c->count++;
	c->ids[g] = xstrdup("group");
	c->jobs[g].id = c->ids[g];
	c->jobs[g].command = "true";
	c->jobs[g].resources.pe = "openmp";
	c->jobs[g].deps = &c->deps[used];
	for (size_t s = 0; s < subjects; s++)
		c->deps[used++] = 3 * s + 2;
	c->jobs[g].dep_count = subjects;
	size_t l = c->count++;
	c->ids[l] = xstrdup("late1");
	c->keys[l] = xstrdup("subject=1");
	c->jobs[l].id = c->ids[l];
	c->jobs[l].command = "true";
	c->jobs[l].batch = c->keys[l];
	c->jobs[l].resources.pe = "openmp";
	c->deps[used] = 2;
	c->deps[used + 1] = g;
	c->jobs[l].deps = &c->deps[used];
	c->jobs[l].dep_count = 2;
}

static void free_chains(struct chains *c)
{
	for (size_t i = 0; i < c->count; i++) {
		exec_cluster_job_release(&c->jobs[i]);
		free(c->ids[i]);
		free(c->keys[i]);
	}
}

/* The text of file `name` under `dir` ("" when unreadable). */
static char *read_text(const char *dir, const char *name)
{
	struct strbuf path = STRBUF_INIT;
	path_join(dir, name, &path);
	struct strbuf text = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	if (read_whole_file(path.buf, &text, &err) < 0)
		cp_err_release(&err);
	strbuf_release(&path);
	return strbuf_detach(&text);
}

/* Files directly in `dir`/.cpipe/jobs. */
static size_t count_job_files(const char *dir)
{
	struct strbuf path = STRBUF_INIT;
	path_join(dir, EXEC_JOBS_DIR, &path);
	DIR *listing = opendir(path.buf);
	assert_non_null(listing);
	size_t files = 0;
	struct dirent *entry;
	while ((entry = readdir(listing)))
		files += entry->d_name[0] != '.';
	closedir(listing);
	strbuf_release(&path);
	return files;
}

/* The cluster id in the submission record of job file name `name`. */
static char *record_job(const char *dir, const char *name)
{
	struct exec_submission sub;
	assert_int_equal(find_record(dir, name, &sub), 1);
	char *job = xstrdup(sub.job);
	exec_submission_release(&sub);
	return job;
}

/*
 * Submit the chains through a stand-in for `program` (first on PATH) that
 * logs its arguments to DIR/calls, emptied first, and prints the next id
 * (the call's number); at most `array_max` tasks an array.
 */
static void submit_chains(const char *dir, const char *program, enum exec_cluster_kind kind, struct chains *c,
			  size_t array_max, struct exec_cluster_summary *summary)
{
	char *text = xasprintf("#!/bin/sh\necho \"$*\" >>'%s/calls'\nwc -l <'%s/calls'\n", dir, dir);
	write_file(dir, program, text, 0755);
	free(text);
	struct strbuf calls = STRBUF_INIT;
	path_join(dir, "calls", &calls);
	unlink(calls.buf);
	strbuf_release(&calls);
	struct exec_cluster_options opt;
	memset(&opt, 0, sizeof(opt));
	opt.kind = kind;
	opt.cwd = dir;
	opt.array_max = array_max;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_cluster_submit(c->jobs, c->count, &opt, summary, &err), 0);
}

static void test_batches_submit(void **state)
{
	const char *dir = *state;
	static const char *const programs[] = {"sbatch", "qsub", "fsl_sub"};
	static const enum exec_cluster_kind kinds[] = {EXEC_CLUSTER_SLURM, EXEC_CLUSTER_SGE, EXEC_CLUSTER_FSL_SUB};
	/* The batch of a, b, c: 35 minutes, 4 GB, 2 threads; the holds of late1 (a plain job on its own). */
	static const char *const batch_resources[] = {"--time=35 --mem=4096M --cpus-per-task=2 ",
						      "-l h_rt=0:35:00 -l h_vmem=4096M -pe openmp 2 ",
						      "-T 35 -R 4 -s openmp,2 "};
	static const char *const late_holds[] = {"--dependency=afterok:1:3 ", "-hold_jid 1,3 ", "-j 1,3 "};
	path_first(dir);
	for (size_t k = 0; k < 3; k++) {
		struct chains c;
		make_chains(&c, 2, true);
		struct exec_cluster_summary summary;
		submit_chains(dir, programs[k], kinds[k], &c, 1000, &summary);
		/* Two batches of three, the group job, and late1 apart: 4 submissions for 8 jobs. */
		assert_int_equal(summary.jobs, 8);
		assert_int_equal(summary.submissions, 4);
		assert_int_equal(summary.batches, 2);
		assert_int_equal(summary.arrays, 0);
		char *log = read_text(dir, "calls");
		assert_non_null(log);
		struct strvec lines = STRVEC_INIT;
		if (*log)
			log[strlen(log) - 1] = '\0'; /* the last newline */
		strvec_split(&lines, log, '\n', true);
		if (lines.count != 4 || !strstr(lines.items[0], batch_resources[k]) || !strstr(lines.items[3], late_holds[k]))
			fprintf(stderr, "%s\n", log);
		assert_int_equal(lines.count, 4);
		assert_non_null(strstr(lines.items[0], batch_resources[k]));
		assert_non_null(strstr(lines.items[3], late_holds[k]));
		strvec_release(&lines);
		free(log);
		/*
		 * A batch's jobs' scripts are in one file, as an array's are: a runner, its
		 * scripts and its record for each batch, a script and a record for the others.
		 */
		if (k == 0) {
			size_t files = count_job_files(dir);
			if (files != 3 * 2 + 2 * 2)
				fail_msg("%zu files in .cpipe/jobs for 2 batches and 2 jobs", files);
		}
		/* Every step keeps its own record, with its batch's cluster id. */
		static const char *const names[] = {"a1", "b1", "c1", "a2", "b2", "c2", "group", "late1"};
		static const char *const expected_job[] = {"1", "1", "1", "2", "2", "2", "3", "4"};
		for (size_t i = 0; i < 8; i++) {
			char *job = record_job(dir, names[i]);
			assert_string_equal(job, expected_job[i]);
			free(job);
		}
		free_chains(&c);
	}
	/* The batch's script runs the steps' own scripts, in order. */
	struct strbuf name = STRBUF_INIT, rel = STRBUF_INIT;
	job_file_name("batch:a1", &name);
	strbuf_addf(&rel, "%s/%s.sh", EXEC_JOBS_DIR, name.buf);
	char *script = read_text(dir, rel.buf);
	assert_non_null(script);
	const char *a = strstr(script, "\nstep 1 a1\n"), *b = strstr(script, "\nstep 2 b1\n"),
		   *cc = strstr(script, "\nstep 3 c1\n");
	assert_true(a && b && cc && a < b && b < cc);
	free(script);
	strbuf_release(&name);
	strbuf_release(&rel);
	restore_path();
}

static void test_batches_as_array_tasks(void **state)
{
	const char *dir = *state;
	path_first(dir);
	struct chains c;
	make_chains(&c, 3, false);
	struct exec_cluster_summary summary;
	submit_chains(dir, "sbatch", EXEC_CLUSTER_SLURM, &c, 2, &summary); /* the limit: chunks of 2 and 1 */
	/* Three subjects' batches as array tasks, cut to the limit: 2 arrays, 9 jobs. */
	assert_int_equal(summary.submissions, 2);
	assert_int_equal(summary.arrays, 2);
	assert_int_equal(summary.jobs, 9);
	assert_int_equal(summary.batches, 3);
	char *log = read_text(dir, "calls");
	assert_non_null(strstr(log, "--array=1-2 "));
	assert_non_null(strstr(log, "--array=1-1 "));
	free(log);
	/* c2 is task 2 of the first array: SLURM names it 1_2. */
	struct exec_submission sub;
	assert_int_equal(find_record(dir, "c2", &sub), 1);
	assert_string_equal(sub.job, "1");
	assert_int_equal(sub.task, 2);
	exec_submission_release(&sub);
	/* Without keys nothing is merged: three arrays of steps. */
	for (size_t i = 0; i < c.count; i++)
		c.jobs[i].batch = NULL;
	submit_chains(dir, "sbatch", EXEC_CLUSTER_SLURM, &c, 1000, &summary);
	assert_int_equal(summary.submissions, 3);
	assert_int_equal(summary.batches, 0);
	free_chains(&c);
	restore_path();
}

/* The path under `dir` of the file in .cpipe/jobs whose name starts with `prefix` and ends with `suffix`. */
static char *job_file_ending(const char *dir, const char *prefix, const char *suffix)
{
	struct strbuf path = STRBUF_INIT;
	path_join(dir, EXEC_JOBS_DIR, &path);
	DIR *listing = opendir(path.buf);
	assert_non_null(listing);
	char *found = NULL;
	struct dirent *entry;
	while (!found && (entry = readdir(listing))) {
		size_t n = strlen(entry->d_name);
		if (!strncmp(entry->d_name, prefix, strlen(prefix)) && n > strlen(suffix) &&
		    !strcmp(entry->d_name + n - strlen(suffix), suffix))
			found = xasprintf("%s/%s", EXEC_JOBS_DIR, entry->d_name);
	}
	closedir(listing);
	strbuf_release(&path);
	assert_non_null(found);
	return found;
}

/*
 * A submission writes a few files per array, not one per job: 60 subjects of
 * three chained steps in arrays of 25 tasks are 9 arrays of 4 files each (the
 * launcher, the scripts, the task list, the record). Each task runs its own
 * script, reading nothing of the others'.
 */
static void test_array_files(void **state)
{
	const char *dir = *state;
	path_first(dir);
	enum { SUBJECTS = 60, JOBS = 3 * SUBJECTS };
	struct exec_cluster_job *jobs = xcalloc(JOBS, sizeof(*jobs));
	size_t *deps = xcalloc(JOBS, sizeof(*deps));
	char *ids[JOBS], *commands[JOBS];
	static const char *const steps[] = {"a", "b", "c"};
	for (size_t i = 0; i < JOBS; i++) {
		size_t step = i / SUBJECTS, subject = i % SUBJECTS;
		ids[i] = xasprintf("%s%zu", steps[step], subject + 1);
		commands[i] = xasprintf("echo %s >ran-%s", ids[i], ids[i]);
		jobs[i].id = ids[i];
		jobs[i].command = commands[i];
		jobs[i].group = steps[step];
		if (step) {
			deps[i] = i - SUBJECTS;
			jobs[i].deps = &deps[i];
			jobs[i].dep_count = 1;
		}
	}
	char *text = xasprintf("#!/bin/sh\necho \"$*\" >>'%s/calls'\nwc -l <'%s/calls'\n", dir, dir);
	write_file(dir, "sbatch", text, 0755);
	free(text);
	struct exec_cluster_options opt;
	memset(&opt, 0, sizeof(opt));
	opt.kind = EXEC_CLUSTER_SLURM;
	opt.cwd = dir;
	opt.array_max = 25;
	struct exec_cluster_summary summary;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_cluster_submit(jobs, JOBS, &opt, &summary, &err), 0);
	assert_int_equal(summary.jobs, JOBS);
	assert_int_equal(summary.arrays, 9);
	assert_int_equal(summary.submissions, 9);
	size_t files = count_job_files(dir);
	if (files != 4 * summary.arrays)
		fail_msg("%zu files in .cpipe/jobs for %zu arrays of %d jobs", files, summary.arrays, JOBS);
	/* Every job has its record; b2 is task 2 of the 4th array (ids 1, 2, ...). */
	struct exec_submission sub;
	assert_int_equal(find_record(dir, "b2", &sub), 1);
	assert_string_equal(sub.job, "4");
	assert_int_equal(sub.task, 2);
	exec_submission_release(&sub);

	/* The other tasks' scripts made poison: task 2 reads only its own. */
	struct strbuf path = STRBUF_INIT, scripts = STRBUF_INIT, name = STRBUF_INIT;
	job_file_name("array:b1", &name);
	strbuf_addf(&path, "%s/%s/%s.scripts", dir, EXEC_JOBS_DIR, name.buf);
	assert_int_equal(read_whole_file(path.buf, &scripts, &err), 0);
	unsigned long long offset = 0, length = 0;
	assert_int_equal(sscanf(scripts.buf + EXEC_TOKEN_LINE + 32, "%llu %llu", &offset, &length), 2);
	for (size_t k = EXEC_TOKEN_LINE + 25 * 32; k < scripts.len; k++)
		if (k < offset || k >= offset + length)
			scripts.buf[k] = k % 8 == 0 ? '\n' : "exit 99"[k % 8 - 1];
	assert_int_equal(exec_write_file_atomic(path.buf, scripts.buf, scripts.len, 0644, false, &err), 0);
	/* b2 needs a2 to have succeeded. */
	write_file(dir, EXEC_JOBS_DIR "/a2.marker", "cpipe-marker 1\nexit 0\n", 0644);
	struct strbuf cmd = STRBUF_INIT;
	/* The task from SLURM's task id, then from the argument (fsl_sub's task list). */
	strbuf_addf(&cmd, "cd '%s' && SLURM_ARRAY_TASK_ID=2 /bin/sh .cpipe/jobs/%s.array.sh", dir, name.buf);
	assert_int_equal(system(cmd.buf), 0);
	char *ran = read_text(dir, "ran-b2");
	assert_string_equal(ran, "b2\n");
	free(ran);
	struct exec_marker marker;
	assert_int_equal(exec_marker_read(dir, "b2", &marker, &err), 1);
	assert_int_equal(marker.exit_code, 0);
	exec_marker_release(&marker);
	strbuf_reset(&cmd);
	strbuf_addf(&cmd, "cd '%s' && /bin/sh .cpipe/jobs/%s.array.sh 3 >/dev/null 2>&1", dir, name.buf);
	assert_int_equal(WEXITSTATUS(system(cmd.buf)), 99);
	/* A task the array does not have fails, and says so. */
	for (size_t t = 0; t < 3; t++) {
		static const char *const bad[] = {"26", "0", "x"};
		strbuf_reset(&cmd);
		strbuf_addf(&cmd, "cd '%s' && /bin/sh .cpipe/jobs/%s.array.sh %s 2>&1 | grep -q 'no task'", dir,
			    name.buf, bad[t]);
		assert_int_equal(system(cmd.buf), 0);
	}
	/* The task list runs the same launcher, task by task. */
	char *tasks = job_file_ending(dir, name.buf, ".tasks");
	char *list = read_text(dir, tasks);
	assert_non_null(strstr(list, ".array.sh' 25 "));
	free(list);
	free(tasks);
	strbuf_release(&cmd);
	strbuf_release(&path);
	strbuf_release(&scripts);
	strbuf_release(&name);
	for (size_t i = 0; i < JOBS; i++) {
		exec_cluster_job_release(&jobs[i]);
		free(ids[i]);
		free(commands[i]);
	}
	free(jobs);
	free(deps);
	restore_path();
}

static void test_batch_waits_for_an_outside_parent(void **state)
{
	(void)state;
	/* b needs a (same key) and x (another key): a and b are one batch, submitted after x's. */
	struct exec_cluster_job jobs[3];
	memset(jobs, 0, sizeof(jobs));
	size_t deps[] = {0, 1};
	jobs[0].id = "a";
	jobs[0].batch = "s1";
	jobs[1].id = "x";
	jobs[1].batch = "template";
	jobs[2].id = "b";
	jobs[2].batch = "s1";
	jobs[2].deps = deps;
	jobs[2].dep_count = 2;
	struct exec_batches batches;
	exec_batches_form(jobs, 3, &batches);
	assert_int_equal(batches.count, 2);
	assert_int_equal(batches.batch_of[1], 0);
	assert_int_equal(batches.batch_of[0], 1);
	assert_int_equal(batches.batch_of[2], 1);
	assert_int_equal(exec_batch_size(&batches, 1), 2);
	assert_int_equal(batches.jobs[1].dep_count, 1);
	assert_int_equal(batches.jobs[1].deps[0], 0);
	exec_batches_release(&batches);
}

static void test_batches_need_alike_resources(void **state)
{
	(void)state;
	struct chains c;
	make_chains(&c, 1, false);
	c.jobs[1].resources.queue = "gpu"; /* b asks for another queue: a, then b, then c on their own */
	struct exec_batches batches;
	exec_batches_form(c.jobs, c.count, &batches);
	assert_int_equal(batches.count, 3);
	exec_batches_release(&batches);
	c.jobs[1].resources.queue = NULL;
	c.jobs[2].resources.minutes = 0; /* a step without a time limit: the batch has none */
	exec_batches_form(c.jobs, c.count, &batches);
	assert_int_equal(batches.count, 1);
	assert_int_equal(batches.jobs[0].resources.minutes, 0);
	assert_true(batches.jobs[0].resources.ram_gb == 4);
	assert_string_equal(batches.jobs[0].group, "a+b+c");
	exec_batches_release(&batches);
	free_chains(&c);
}

/* Run `script` (under `dir`) with /bin/sh; returns its exit status. */
static int run_script(const char *dir, const char *script)
{
	struct strvec argv = STRVEC_INIT;
	struct strbuf path = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	path_join(dir, script, &path);
	strvec_push(&argv, "/bin/sh");
	strvec_push(&argv, path.buf);
	int status = -1;
	assert_int_equal(exec_run_capture(&argv, NULL, NULL, &status, &err), 0);
	strvec_release(&argv);
	strbuf_release(&path);
	return status;
}

/* Job file `name`'s marker says it did not succeed, with `message`. */
static void expect_marker(const char *dir, const char *name, int exit_code, const char *message)
{
	struct exec_marker marker;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_marker_read(dir, name, &marker, &err), 1);
	assert_int_equal(marker.exit_code, exit_code);
	assert_non_null(marker.message);
	assert_string_equal(marker.message, message);
	exec_marker_release(&marker);
}

static const char killed[] = "killed by SIGTERM (time limit reached or job cancelled)";

/* A submission's token for scripts written here: the file they are written to names it. */
static const char test_token[] = "0123456789abcdef";

/* Write job `job`'s script, owned by a submission of token test_token, to .cpipe/jobs/<name>.sh under `dir`. */
static void write_job_script(const char *dir, const struct exec_cluster_job *job, const char *name)
{
	struct strvec none = STRVEC_INIT;
	struct strbuf script = STRBUF_INIT;
	char *rel = xasprintf("%s/%s.sh", EXEC_JOBS_DIR, name);
	struct exec_script_owner owner = {rel, test_token, 0};
	exec_cluster_job_script(job, name, dir, &none, &none, &owner, &script);
	write_file(dir, rel, script.buf, 0644);
	free(rel);
	strbuf_release(&script);
}

/* The directories a job script writes in, under `dir`. */
static void make_job_dirs(const char *dir)
{
	struct cp_err err = CP_ERR_INIT;
	struct strbuf path = STRBUF_INIT;
	path_join(dir, EXEC_JOBS_DIR, &path);
	assert_int_equal(exec_mkdir_p(path.buf, &err), 0);
	strbuf_reset(&path);
	path_join(dir, EXEC_LOG_DIR, &path);
	assert_int_equal(exec_mkdir_p(path.buf, &err), 0);
	strbuf_release(&path);
}

/*
 * A failure message names an output, whose name may hold backslashes: the
 * marker keeps the message as it is (an `echo` that reads "\c" as "stop here"
 * would glue the next marker line to it) and every output's line.
 */
static void test_job_script_message_backslashes(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	make_job_dirs(dir);
	static const char *const outputs[] = {"a\\cb.txt", "c\\nd.txt"};
	struct exec_cluster_job job;
	memset(&job, 0, sizeof(job));
	job.id = "slashes";
	job.command = "true";
	job.outputs = outputs;
	job.output_count = 2;
	write_job_script(dir, &job, "slashes");
	assert_int_equal(run_script(dir, EXEC_JOBS_DIR "/slashes.sh"), 1);
	expect_marker(dir, "slashes", 1, "declared output 'a\\cb.txt' was not created");
	struct exec_marker marker;
	assert_int_equal(exec_marker_read(dir, "slashes", &marker, &err), 1);
	assert_int_equal(marker.output_count, 2);
	exec_marker_release(&marker);
	char *text = read_text(dir, EXEC_LOG_DIR "/slashes.log");
	assert_non_null(strstr(text, "cpipe: declared output 'a\\cb.txt' was not created\n"));
	free(text);
}

/*
 * The marker has one line per declared output, in order, which the import
 * pairs with the job's outputs: a `stat` that fails on one (gone again, an
 * unreadable mount) must not shift the next output's signature onto it.
 */
static void test_job_script_signature_per_output(void **state)
{
	const char *dir = *state;
	make_job_dirs(dir);
	path_first(dir);
	write_file(dir, "stat", "#!/bin/sh\nfor last; do :; done\ncase $last in first*) exit 1 ;; esac\nexec /usr/bin/stat \"$@\"\n",
		   0755);
	static const char *const outputs[] = {"first.txt", "second.txt"};
	struct exec_cluster_job job;
	memset(&job, 0, sizeof(job));
	job.id = "two";
	job.command = "echo 1 >first.txt && echo 22 >second.txt";
	job.outputs = outputs;
	job.output_count = 2;
	write_job_script(dir, &job, "two");
	assert_int_equal(run_script(dir, EXEC_JOBS_DIR "/two.sh"), 0);
	struct exec_marker marker;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_marker_read(dir, "two", &marker, &err), 1);
	assert_int_equal(marker.output_count, 2);
	assert_false(marker.outputs[0].exists);
	assert_true(marker.outputs[1].exists);
	assert_int_equal(marker.outputs[1].size, 3);
	exec_marker_release(&marker);
	restore_path();
}

/*
 * A job that started while its submission owned its unit's name and ends
 * after a later submission took the name (and wrote the job's script again
 * with its token) writes no marker: the later submission would import it as
 * its own job's result. It says why in its log and fails.
 */
static void test_job_script_outlived_by_its_name(void **state)
{
	const char *dir = *state;
	make_job_dirs(dir);
	struct exec_cluster_job job;
	memset(&job, 0, sizeof(job));
	job.id = "late";
	job.command = "sed -i s/0123456789abcdef/fedcba9876543210/ .cpipe/jobs/late.sh";
	write_job_script(dir, &job, "late");
	char *copy = read_text(dir, EXEC_JOBS_DIR "/late.sh");
	write_file(dir, "copy.sh", copy, 0644); /* what SLURM keeps of it */
	free(copy);
	assert_int_equal(run_script(dir, "copy.sh"), 1);
	struct exec_marker marker;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_marker_read(dir, "late", &marker, &err), 0);
	char *text = read_text(dir, EXEC_LOG_DIR "/late.log");
	assert_non_null(strstr(text, "earlier submission"));
	free(text);
	/* Started once the name was taken, it runs nothing and leaves the log (the later job's) alone. */
	write_file(dir, EXEC_LOG_DIR "/late.log", "", 0644);
	assert_int_equal(run_script(dir, "copy.sh"), 1);
	text = read_text(dir, EXEC_LOG_DIR "/late.log");
	assert_string_equal(text, "");
	free(text);
	assert_int_equal(exec_marker_read(dir, "late", &marker, &err), 0);
}

/*
 * A job stopped on the cluster: the scheduler may send SIGTERM to every
 * process of the job, in any order, and more than once (SLURM signals each
 * process it finds, children first, and may go round again). Here the first
 * reaches the job script, or the command alone; `hostname`, run while the
 * marker is being written, sends a second to the script and to itself. Either
 * way the marker says, whole and once, that the job was killed, and what the
 * script runs while writing it runs to its end.
 */
static void test_job_script_killed_twice(void **state)
{
	const char *dir = *state;
	struct cp_err err = CP_ERR_INIT;
	struct strbuf path = STRBUF_INIT;
	make_job_dirs(dir);
	path_first(dir);
	char *stub = xasprintf("#!/bin/sh\n[ -e '%s/again' ] || { : >'%s/again'; kill -TERM $(cat '%s/job.pid') $$; }\n"
			       "echo node-7\n",
			       dir, dir, dir);
	write_file(dir, "hostname", stub, 0755);
	free(stub);

	static const char *const commands[] = {"echo $PPID >job.pid; kill -TERM $PPID",
					       "echo $PPID >job.pid; kill -TERM $$"};
	static const char *const outputs[] = {"out.txt"};
	for (size_t k = 0; k < 2; k++) {
		strbuf_reset(&path);
		path_join(dir, "again", &path);
		unlink(path.buf);
		struct exec_cluster_job job;
		memset(&job, 0, sizeof(job));
		job.id = "stopped";
		job.command = commands[k];
		job.outputs = outputs;
		job.output_count = 1;
		struct strvec none = STRVEC_INIT;
		struct strbuf script = STRBUF_INIT;
		struct exec_script_owner owner = {EXEC_JOBS_DIR "/stopped.sh", test_token, 0};
		exec_cluster_job_script(&job, "stopped", dir, &none, &none, &owner, &script);
		/* The log appears once a stop is recorded as one: the trap comes first. */
		const char *trap = strstr(script.buf, "\ntrap "), *log = strstr(script.buf, "\nexec >");
		assert_true(trap && log && trap < log);
		write_file(dir, EXEC_JOBS_DIR "/stopped.sh", script.buf, 0644);
		strbuf_release(&script);
		assert_int_equal(run_script(dir, EXEC_JOBS_DIR "/stopped.sh"), 143);

		expect_marker(dir, "stopped", 143, killed);
		struct exec_marker marker;
		assert_int_equal(exec_marker_read(dir, "stopped", &marker, &err), 1);
		assert_non_null(marker.host);
		assert_string_equal(marker.host, "node-7");
		assert_true(marker.start_ns > 0 && marker.end_ns >= marker.start_ns);
		assert_int_equal(marker.output_count, 1);
		assert_false(marker.outputs[0].exists);
		exec_marker_release(&marker);
		/* What the script says goes to the job's log, never into the marker. */
		char *text = read_text(dir, EXEC_JOBS_DIR "/stopped.marker");
		assert_null(strstr(text, "cpipe:"));
		free(text);
		text = read_text(dir, EXEC_LOG_DIR "/stopped.log");
		assert_non_null(strstr(text, "cpipe: killed by SIGTERM"));
		free(text);
	}
	restore_path();
	strbuf_release(&path);
}

/*
 * SIGTERM may reach the step a batch runs and not (or not yet) the batch:
 * the step records itself as killed, the batch runs no further step and
 * marks the one it did not reach as not run.
 */
static void test_batch_stopped_through_its_step(void **state)
{
	const char *dir = *state;
	path_first(dir);
	struct chains c;
	make_chains(&c, 1, false);
	c.jobs[1].command = "kill -TERM $$";
	struct exec_cluster_summary summary;
	submit_chains(dir, "sbatch", EXEC_CLUSTER_SLURM, &c, 1000, &summary);
	assert_int_equal(summary.batches, 1);
	struct strbuf name = STRBUF_INIT, rel = STRBUF_INIT;
	job_file_name("batch:a1", &name);
	strbuf_addf(&rel, "%s/%s.sh", EXEC_JOBS_DIR, name.buf);
	assert_int_equal(run_script(dir, rel.buf), 143);
	struct exec_marker marker;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(exec_marker_read(dir, "a1", &marker, &err), 1);
	assert_int_equal(marker.exit_code, 0);
	exec_marker_release(&marker);
	expect_marker(dir, "b1", 143, killed);
	expect_marker(dir, "c1", 1, "not run: its batch was stopped (time limit reached or job cancelled) before it");
	strbuf_release(&name);
	strbuf_release(&rel);
	free_chains(&c);
	restore_path();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slurm_argv),
		cmocka_unit_test(test_sge_argv),
		cmocka_unit_test(test_fsl_sub_argv),
		cmocka_unit_test(test_parallel_env),
		cmocka_unit_test(test_plan_chunks_keep_task_holds),
		cmocka_unit_test(test_plan_partial_array_holds_tasks),
		cmocka_unit_test_setup_teardown(test_marker_parsing, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_submission_record, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_record_unit_name, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_records_saved_side_by_side, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_record_replaced_before_save, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_job_script_message_backslashes, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_old_submission_record, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_bad_submission_records, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_array_limit, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_choose_auto, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_cancel_status, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_fsl_sub_refusals, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_batches_submit, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_array_files, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_batches_as_array_tasks, setup_dir, temp_dir_teardown),
		cmocka_unit_test(test_batch_waits_for_an_outside_parent),
		cmocka_unit_test(test_batches_need_alike_resources),
		cmocka_unit_test_setup_teardown(test_job_script_killed_twice, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_job_script_outlived_by_its_name, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_job_script_signature_per_output, setup_dir, temp_dir_teardown),
		cmocka_unit_test_setup_teardown(test_batch_stopped_through_its_step, setup_dir, temp_dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
