#include "cluster.h"

#include "cpipe/exec.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char run_usage[] =
	"usage: cpipe run [TARGET ...] [options]\n"
	"\n"
	"Make every file of the TARGETs, running only the jobs that are not up to\n"
	"date, in parallel, in the data directory. A TARGET is a template key, a\n"
	"recipe's name (each of its outputs; a key of the same name wins), a pattern\n"
	"over the output paths from the data root ('sub-01/**': * and ? within a\n"
	"directory, ** across directories) or one output path; default: the recipe\n"
	"file's `default:`, else every output of every recipe.\n"
	"\n"
	"  -f, --file FILE        recipe file (default: cpipe.yaml)\n"
	"  -C, --directory DIR    change to DIR first\n"
	"      --data DIR         the data root (default: the recipe file's data:)\n"
	"  -p NAME=V1,V2          restrict or set a placeholder; also --NAME V1,V2 and\n"
	"                         --NAME V1 V2 (the values end at the next option or at\n"
	"                         a word that is a target: a key, a recipe, a path)\n"
	"      --link A,B         glob placeholders A and B as linked (only combinations seen)\n"
	"      --set [RECIPE.]P=V set parameter P (params:) of RECIPE, or of every recipe\n"
	"                         that has one, overriding the recipe file\n"
	"  -j, --jobs N           run at most N jobs at once (default: number of CPUs)\n"
	"  -k, --keep-going       after a failure, keep running what does not depend on it\n"
	"      --max-threads N    sum of running jobs' threads (default: number of CPUs)\n"
	"      --max-ram GB       sum of running jobs' ram_gb (default: physical memory)\n"
	"  -o, --force            rerun the jobs that make the targets (also --overwrite)\n"
	"  -d, --force-all        rerun every job the targets need, and implies -o (also\n"
	"                         --overwrite-dependencies)\n"
	"      --rebuild-unknown  rerun jobs whose outputs exist but were never recorded\n"
	"                         (default: adopt them as up to date, and say so, unless a\n"
	"                         failed or killed run may have written them)\n"
	"      --skip-missing     leave out jobs whose raw inputs are missing (each is\n"
	"                         listed and counted as skipped)\n"
	"      --partial-group    make batch (group) jobs although --NAME narrows their\n"
	"                         batch placeholder, or some inputs are missing\n"
	"  -n, --dry-run          print what would run, as `cpipe plan` does, and run nothing\n"
	"  -m, --pipeline-method local|submit\n"
	"                         fsl-pipe's spelling: local runs here (the default),\n"
	"                         submit is --submit\n"
	"  -q, --quiet            print only failures and the summary\n"
	"  -v, --verbose          also print each job's command, every job a failure\n"
	"                         kept from starting, and every job early cutoff left out\n"
	"  -h, --help             show this help\n"
	"\n"
	"On a terminal a progress line shows the jobs done, running, failed and left,\n"
	"and an estimate of the time left once every job left has a recorded duration\n"
	"(its own, or its recipe's mean); FAILED is red unless NO_COLOR is set.\n"
	"\n"
	"On a cluster (see CLUSTER in cpipe(1)):\n"
	"      --submit[=BACKEND] submit the jobs instead of running them: auto (the\n"
	"                         default: fsl_sub if it has queues, else sbatch,\n"
	"                         else qsub on PATH), fsl_sub, slurm or sge; prints\n"
	"                         the cluster ids; arrays are cut to the scheduler's\n"
	"                         limit (CPIPE_ARRAY_MAX); threads > 1 need a parallel\n"
	"                         environment (resources.pe, CPIPE_FSL_SUB_PE, CPIPE_SGE_PE)\n"
	"      --wait             after submitting, wait until every job has ended\n"
	"      --job-hold ID,...  the first jobs wait for these cluster jobs\n"
	"      --scale-time F     multiply each recipe's minutes by F (rounded up; also\n"
	"                         --scale-jobtime)\n"
	"  -b, --batch            send each chain of dependent jobs over the same\n"
	"                         placeholder values (and batch_label) as one\n"
	"                         cluster job running its steps in order\n"
	"\n"
	"Early cutoff: a job that runs only because jobs it depends on run is checked\n"
	"again when they end, and not run (\"cut off\") when its inputs came out as its\n"
	"last run saw them; `cutoff: false` in a recipe opts out (cpipe-recipes(5)).\n"
	"\n"
	"Before starting jobs, run ends the jobs a killed cpipe run left running\n"
	"(CPIPE_RUN_ID in their environment).\n"
	"\n"
	"Exit status: 0 when every job succeeded, 1 when a job failed, 2 on a usage\n"
	"or input error or a damaged state database, 3 when nothing failed but another\n"
	"live run or the cluster holds some of the jobs (they are left to it), 130 when\n"
	"interrupted.\n";

static const char plan_usage[] =
	"usage: cpipe plan [TARGET ...] [options]\n"
	"\n"
	"Show the jobs `cpipe run` would run, each with the first reason it runs and\n"
	"its command, then a count and the jobs to run per recipe, without running or\n"
	"recording anything (also: cpipe run -n). TARGETs as for run: keys, recipe\n"
	"names, patterns over the output paths ('sub-01/**'), paths.\n"
	"\n"
	"  -f, --file FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B,\n"
	"  --set [RECIPE.]P=V, --skip-missing, --partial-group, -o/--force,\n"
	"  -d/--force-all, --rebuild-unknown: as for run\n"
	"  -v, --verbose          also list the jobs that are up to date, and each\n"
	"                         combination of inputs that makes no job and why\n"
	"      --json             print {\"jobs\": [...], \"summary\": {...}} (see cpipe(1))\n"
	"  -h, --help             show this help\n"
	"\n"
	"Exit status: 0, or 2 on a usage or input error.\n";

struct run_options {
	struct study_options study;
	struct plan_options plan;
	int jobs;
	int max_threads;
	double max_ram_gb;
	bool keep_going;
	bool quiet;
	bool verbose;
	bool json;
	bool dry_run;
	bool submit;
	bool method_local; /* -m local */
	struct submit_options cluster;
};

enum { OPT_MAX_THREADS = 256, OPT_MAX_RAM, OPT_REBUILD_UNKNOWN, OPT_JSON, OPT_SUBMIT, OPT_WAIT, OPT_JOB_HOLD,
       OPT_SCALE_TIME };

static const struct option run_long_options[] = {
	STUDY_LONG_OPTIONS,
	{"jobs", required_argument, NULL, 'j'},
	{"keep-going", no_argument, NULL, 'k'},
	{"max-threads", required_argument, NULL, OPT_MAX_THREADS},
	{"max-ram", required_argument, NULL, OPT_MAX_RAM},
	{"force", no_argument, NULL, 'o'},
	{"overwrite", no_argument, NULL, 'o'},
	{"force-all", no_argument, NULL, 'd'},
	{"overwrite-dependencies", no_argument, NULL, 'd'},
	{"overwrite_dependencies", no_argument, NULL, 'd'},
	{"rebuild-unknown", no_argument, NULL, OPT_REBUILD_UNKNOWN},
	{"dry-run", no_argument, NULL, 'n'},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
	{"json", no_argument, NULL, OPT_JSON},
	{"submit", optional_argument, NULL, OPT_SUBMIT},
	{"wait", no_argument, NULL, OPT_WAIT},
	{"job-hold", required_argument, NULL, OPT_JOB_HOLD},
	{"job_hold", required_argument, NULL, OPT_JOB_HOLD},
	{"scale-time", required_argument, NULL, OPT_SCALE_TIME},
	{"scale-jobtime", required_argument, NULL, OPT_SCALE_TIME},
	{"scale_jobtime", required_argument, NULL, OPT_SCALE_TIME},
	{"pipeline-method", required_argument, NULL, 'm'},
	{"pipeline_method", required_argument, NULL, 'm'},
	{"batch", no_argument, NULL, 'b'},
	{NULL, 0, NULL, 0},
};

static bool parse_count(const char *text, int *out)
{
	char *end;
	long v = strtol(text, &end, 10);
	if (end == text || *end || v < 1 || v > 1000000)
		return false;
	*out = (int)v;
	return true;
}

/* Returns -1 to continue, else the exit code. */
static int parse_run_options(const char *command, const char *usage, int argc, char **argv, struct run_options *opt)
{
	struct strvec storage = STRVEC_INIT;
	int new_argc;
	char **args = study_rewrite_args(argc, argv, run_long_options, &opt->study, &storage, &new_argc);
	opt->plan.failed_run_seen = study_failed_run_logged;
	int rc = -1, c;
	optind = 1;
	while (rc < 0 && (c = getopt_long(new_argc, args, "f:C:p:j:m:kodnqvbh", run_long_options, NULL)) != -1) {
		int handled = study_option(&opt->study, c, optarg);
		if (handled < 0) {
			rc = EXIT_USAGE;
			break;
		}
		if (handled)
			continue;
		char *end;
		switch (c) {
		case 'j':
			if (!parse_count(optarg, &opt->jobs))
				rc = cli_usage_error(command, "-j needs a positive whole number, not '%s'", optarg);
			break;
		case OPT_MAX_THREADS:
			if (!parse_count(optarg, &opt->max_threads))
				rc = cli_usage_error(command, "--max-threads needs a positive whole number");
			break;
		case OPT_MAX_RAM:
			opt->max_ram_gb = strtod(optarg, &end);
			if (end == optarg || *end || !(opt->max_ram_gb > 0))
				rc = cli_usage_error(command, "--max-ram needs a positive number of GB");
			break;
		case 'k': opt->keep_going = true; break;
		case 'o': opt->plan.force = true; break;
		case 'd': opt->plan.force_all = true; break;
		case OPT_REBUILD_UNKNOWN: opt->plan.rebuild_unknown = true; break;
		case 'n': opt->dry_run = true; break;
		case 'q': opt->quiet = true; break;
		case 'v': opt->verbose = true; break;
		case OPT_JSON: opt->json = true; break;
		case OPT_SUBMIT:
			opt->submit = true;
			opt->cluster.backend = optarg;
			break;
		case 'm':
			/* fsl-pipe's -m/--pipeline-method: local runs here, submit is --submit (auto). */
			if (!strcmp(optarg, "local")) {
				opt->method_local = true;
			} else if (!strcmp(optarg, "submit")) {
				if (!opt->submit)
					opt->cluster.backend = NULL;
				opt->submit = true;
			} else {
				rc = cli_usage_error(command, "-m takes local or submit, not '%s'%s", optarg,
						     strcmp(optarg, "dask") ? ""
									    : " (cpipe runs jobs in parallel itself: -m local -j N)");
			}
			break;
		case OPT_WAIT: opt->cluster.wait = true; break;
		case 'b': opt->cluster.batch = true; break;
		case OPT_JOB_HOLD: strvec_split(&opt->cluster.holds, optarg, ',', true); break;
		case OPT_SCALE_TIME:
			opt->cluster.scale_time = strtod(optarg, &end);
			if (end == optarg || *end || !(opt->cluster.scale_time > 0))
				rc = cli_usage_error(command, "--scale-time needs a positive number");
			break;
		case 'h':
			fputs(usage, stdout);
			rc = EXIT_OK;
			break;
		default:
			rc = cli_usage_error(command, "unknown option");
			break;
		}
	}
	for (int i = optind; rc < 0 && i < new_argc; i++)
		strvec_push(&opt->study.targets, args[i]);
	if (rc < 0 && opt->submit && opt->method_local)
		rc = cli_usage_error(command, "-m local and --submit (or -m submit) contradict each other");
	if (rc < 0 && !opt->submit &&
	    (opt->cluster.wait || opt->cluster.holds.count || opt->cluster.scale_time > 0 || opt->cluster.batch))
		rc = cli_usage_error(command, "--wait, --job-hold, --scale-time and --batch go with --submit");
	opt->cluster.quiet = opt->quiet;
	opt->cluster.verbose = opt->verbose;
	free(args);
	/* The -p values point into `storage`: they were copied by cli_parse_placeholder. */
	strvec_release(&storage);
	return rc;
}

static json_t *json_strings(const struct graph_paths *paths)
{
	json_t *array = json_array();
	for (size_t i = 0; i < paths->count; i++) {
		json_t *item = json_string(paths->items[i]);
		json_array_append_new(array, item ? item : json_string("?"));
	}
	return array;
}

/* json_string fails on bytes that are not UTF-8: such names are replaced, never dropped silently. */
static json_t *json_text(const char *text)
{
	json_t *value = json_string(text);
	return value ? value : json_string("(not UTF-8)");
}

static void print_plan_json(const struct study *study, const struct plan_decision *decisions, bool verbose)
{
	const struct graph *graph = study->graph;
	json_t *root = json_object(), *jobs = json_array();
	size_t counts[5] = {0};
	for (size_t i = 0; i < graph->count; i++) {
		const struct graph_job *job = &graph->jobs[i];
		const struct plan_decision *d = &decisions[i];
		counts[d->action]++;
		if (d->action == PLAN_UP_TO_DATE && !verbose)
			continue;
		json_t *o = json_object(), *placeholders = json_object(), *deps = json_array();
		json_object_set_new(o, "id", json_text(job->id));
		json_object_set_new(o, "recipe", json_text(study->recipes->recipes[job->recipe].name));
		for (size_t b = 0; b < job->binding_count; b++)
			json_object_set_new(placeholders, job->binding_names[b], json_text(job->binding_values[b]));
		json_object_set_new(o, "placeholders", placeholders);
		json_object_set_new(o, "action", json_string(plan_action_name(d->action)));
		json_object_set_new(o, "reason", json_string(state_reason_string(d->reason)));
		json_object_set_new(o, "detail", json_text(d->detail ? d->detail : ""));
		if (d->action == PLAN_RUN && d->conditional) {
			/* Early cutoff: it runs only if one of these changes its output. */
			json_t *triggers = json_array();
			for (size_t k = 0; k < job->dep_count; k++)
				if (decisions[job->deps[k]].action == PLAN_RUN)
					json_array_append_new(triggers, json_text(graph->jobs[job->deps[k]].id));
			json_object_set_new(o, "runs_if_changed", triggers);
		}
		char *command = graph_job_command_dup(job);
		json_object_set_new(o, "command", json_text(command));
		free(command);
		json_object_set_new(o, "inputs", json_strings(&job->inputs));
		json_object_set_new(o, "outputs", json_strings(&job->outputs));
		for (size_t k = 0; k < job->dep_count; k++)
			json_array_append_new(deps, json_text(graph->jobs[job->deps[k]].id));
		json_object_set_new(o, "depends_on", deps);
		json_array_append_new(jobs, o);
	}
	json_object_set_new(root, "jobs", jobs);
	json_t *summary = json_object();
	json_object_set_new(summary, "run", json_integer((json_int_t)counts[PLAN_RUN]));
	json_object_set_new(summary, "up_to_date", json_integer((json_int_t)counts[PLAN_UP_TO_DATE]));
	json_object_set_new(summary, "adopt", json_integer((json_int_t)counts[PLAN_ADOPT]));
	json_object_set_new(summary, "held", json_integer((json_int_t)(counts[PLAN_HELD] + counts[PLAN_BLOCKED])));
	json_object_set_new(summary, "skipped", json_integer((json_int_t)graph->skipped.count));
	json_object_set_new(root, "summary", summary);
	json_t *skipped = json_array(), *left_out = json_array();
	for (size_t i = 0; i < graph->skipped.count; i++)
		json_array_append_new(skipped, json_text(graph->skipped.items[i]));
	for (size_t i = 0; i < graph->left_out.count; i++)
		json_array_append_new(left_out, json_text(graph->left_out.items[i]));
	json_object_set_new(root, "skipped", skipped);
	json_object_set_new(root, "left_out", left_out);
	json_dumpf(root, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
	fputc('\n', stdout);
	json_decref(root);
}

static void print_plan_text(const struct study *study, const struct plan_decision *decisions, bool verbose)
{
	const struct graph *graph = study->graph;
	size_t counts[5] = {0}, conditional = 0;
	struct strbuf line = STRBUF_INIT;
	for (size_t i = 0; i < graph->count; i++) {
		const struct plan_decision *d = &decisions[i];
		counts[d->action]++;
		if (d->action == PLAN_UP_TO_DATE && !verbose)
			continue;
		strbuf_reset(&line);
		const char *kind = plan_action_name(d->action);
		strbuf_adds(&line, kind);
		strbuf_add(&line, "           ", 11 - (strlen(kind) < 10 ? strlen(kind) : 10));
		cli_add_escaped(&line, graph->jobs[i].id);
		strbuf_adds(&line, "  (");
		plan_describe(graph, decisions, i, &line);
		conditional += d->action == PLAN_RUN && d->conditional;
		strbuf_adds(&line, ")\n");
		if (d->action == PLAN_RUN) {
			strbuf_adds(&line, "    ");
			graph_job_command(&graph->jobs[i], &line);
			strbuf_addch(&line, '\n');
		}
		fwrite(line.buf, 1, line.len, stdout);
	}
	/* plan -v: the combinations of inputs that make no job (not errors: the data are uneven). */
	for (size_t i = 0; verbose && i < graph->left_out.count; i++) {
		strbuf_reset(&line);
		strbuf_adds(&line, "left out   ");
		cli_add_escaped(&line, graph->left_out.items[i]);
		strbuf_addch(&line, '\n');
		fwrite(line.buf, 1, line.len, stdout);
	}
	printf("%zu to run", counts[PLAN_RUN]);
	if (conditional)
		printf(" (%zu only if what they depend on changes)", conditional);
	printf(", %zu up to date, %zu to adopt, %zu held by another run", counts[PLAN_UP_TO_DATE], counts[PLAN_ADOPT],
	       counts[PLAN_HELD] + counts[PLAN_BLOCKED]);
	if (graph->skipped.count)
		printf(", %zu skipped", graph->skipped.count);
	if (graph->left_out.count && !verbose)
		printf(" (%zu combination%s of inputs make no job: plan -v lists them)", graph->left_out.count,
		       graph->left_out.count == 1 ? "" : "s");
	putchar('\n');
	if (counts[PLAN_RUN]) {
		/* Recipes in file order, each with its jobs to run: the shape of a big plan at a glance. */
		size_t *per_recipe = xcalloc(study->recipes->count + 1, sizeof(*per_recipe));
		for (size_t i = 0; i < graph->count; i++)
			per_recipe[graph->jobs[i].recipe] += decisions[i].action == PLAN_RUN;
		strbuf_reset(&line);
		strbuf_adds(&line, "to run by recipe:");
		for (size_t r = 0; r < study->recipes->count; r++)
			if (per_recipe[r])
				strbuf_addf(&line, " %s %zu,", study->recipes->recipes[r].name, per_recipe[r]);
		line.buf[line.len - 1] = '\n';
		fwrite(line.buf, 1, line.len, stdout);
		free(per_recipe);
	}
	strbuf_release(&line);
}

/*
 * The steps plan and run share: load the study, import cluster results, decide every job.
 * Returns EXIT_OK with everything filled, or the exit code after reporting the error.
 */
static int load_and_decide(struct run_options *opt, struct study *study, struct sync_view *view,
			   struct plan_decision **decisions, bool report_imports)
{
	opt->study.need_state = true;
	opt->study.stat_recorded = true;
	int rc = study_load(&opt->study, study);
	if (rc != EXIT_OK)
		return rc;
	struct cp_err err = CP_ERR_INIT;
	memset(view, 0, sizeof(*view));
	*decisions = NULL;
	/* Results of cluster jobs come in first, whatever the command does next. */
	int synced = cluster_sync(study, view, report_imports, &err);
	cli_phase_done("sync");
	if (synced < 0 || study_decide(study, &opt->plan, decisions, &err) < 0) {
		cli_report(&err);
		plan_decisions_free(*decisions, study->graph->count);
		*decisions = NULL;
		sync_view_release(view);
		study_release(study);
		return EXIT_USAGE;
	}
	cli_phase_done("decide");
	return EXIT_OK;
}

static void release_decided(struct study *study, struct sync_view *view, struct plan_decision *decisions)
{
	plan_decisions_free(decisions, study->graph->count);
	sync_view_release(view);
	study_release(study);
}

/* Print what run would do; plan and run -n. */
static int plan(struct run_options *opt)
{
	struct study study;
	struct sync_view view;
	struct plan_decision *decisions;
	int rc = load_and_decide(opt, &study, &view, &decisions, false);
	if (rc != EXIT_OK)
		return rc;
	cluster_hold_in_flight(&view, decisions);
	if (opt->json)
		print_plan_json(&study, decisions, opt->verbose);
	else
		print_plan_text(&study, decisions, opt->verbose);
	cli_phase_done("print");
	release_decided(&study, &view, decisions);
	cli_phase_done("release");
	return EXIT_OK;
}

int cmd_plan(int argc, char **argv)
{
	struct run_options opt;
	memset(&opt, 0, sizeof(opt));
	int rc = parse_run_options("plan", plan_usage, argc, argv, &opt);
	if (rc < 0)
		rc = plan(&opt);
	study_options_release(&opt.study);
	strvec_release(&opt.cluster.holds);
	return rc;
}

/* What the exec callbacks need to record results and print progress. */
struct run_context {
	struct study *study;
	const struct run_options *opt;
	struct exec_job *exec_jobs;
	const size_t *graph_index; /* exec job -> graph job */
	const struct plan_decision *decisions;
	bool tty;
	bool color;
	bool progress_shown;
	/* Jobs a failure or an interruption kept from starting: listed with -v, else counted. */
	size_t not_started;
	size_t cut_off; /* early cutoff: not run, their inputs came out as they were (named with -v) */
	/* The time left: each job's expected seconds (its last run, else its recipe's mean; < 0 unknown). */
	double *expected;
	double *started_at;       /* monotonic start of each running job, 0 when not running */
	double expected_waiting;  /* sum over the jobs not started yet */
	size_t unknown_waiting;   /* of those, how many have no estimate */
	int slots;
	size_t in_transaction; /* records since state_begin */
	int64_t transaction_start;
	struct cp_err record_err;
	bool record_failed;
	bool stopping; /* the run was interrupted: no more waiting for a lock */
	/* Per exec job, while it runs: its inputs as signed when it started (what its result is made of). */
	struct state_file **started_inputs;
};

static void flush_records(struct run_context *ctx)
{
	if (!ctx->in_transaction)
		return;
	if (state_commit(ctx->study->state, &ctx->record_err) < 0)
		ctx->record_failed = true;
	ctx->in_transaction = 0;
}

static void clear_progress(struct run_context *ctx)
{
	if (ctx->progress_shown) {
		fputs("\r\033[K", stderr);
		ctx->progress_shown = false;
	}
}

/* Seconds left if the jobs keep to their estimates and the slots stay full; < 0 when unknown. */
static double time_left(const struct run_context *ctx, const struct exec_progress *p, size_t count)
{
	if (ctx->unknown_waiting)
		return -1;
	double now = monotonic_seconds(), left = ctx->expected_waiting;
	for (size_t e = 0; e < count; e++) {
		if (ctx->started_at[e] <= 0)
			continue;
		if (ctx->expected[e] < 0)
			return -1;
		double rest = ctx->expected[e] - (now - ctx->started_at[e]);
		left += rest > 0 ? rest : 0;
	}
	size_t busy = p->waiting + p->running;
	size_t slots = (size_t)ctx->slots < busy ? (size_t)ctx->slots : busy;
	/* The running sums may drift a hair below zero. */
	return slots && left > 0 ? left / (double)slots : 0;
}

static void show_progress(struct run_context *ctx, const struct exec_progress *p)
{
	if (!ctx->tty || ctx->opt->quiet)
		return;
	fprintf(stderr, "\r\033[K[%zu done, %zu running, %zu failed, %zu left] %.1f s", p->succeeded + p->unneeded, p->running,
		p->failed + p->interrupted, p->waiting, p->elapsed_s);
	double left = time_left(ctx, p, p->total);
	if (left >= 0)
		fprintf(stderr, ", about %.0f s left", left + 0.5);
	ctx->progress_shown = true;
}

static void on_tick(void *data, const struct exec_progress *progress)
{
	struct run_context *ctx = data;
	/* Keep transactions short so another cpipe run is never kept waiting long. */
	if (ctx->in_transaction && state_now_ns() - ctx->transaction_start > 500000000)
		flush_records(ctx);
	show_progress(ctx, progress);
}

/*
 * Sign a job's inputs as it starts: an input edited while the job runs then
 * differs from its record, and the job is stale (not up to date with a
 * result made from a mix). Cheap: an input just written by an upstream job
 * is in the hash cache, so this is a stat.
 */
static void sign_inputs_at_start(struct run_context *ctx, size_t index)
{
	const struct graph_job *job = &ctx->study->graph->jobs[ctx->graph_index[index]];
	struct state_file *inputs = xcalloc(job->inputs.count + 1, sizeof(*inputs));
	for (size_t i = 0; i < job->inputs.count; i++) {
		inputs[i].path = job->inputs.items[i];
		/* An input that cannot be read now fails the job's record at the end instead. */
		struct cp_err ignored = CP_ERR_INIT;
		if (state_file_signature(ctx->study->state, inputs[i].path, &inputs[i].signature, &ignored) < 0)
			memset(&inputs[i].signature, 0, sizeof(inputs[i].signature));
		cp_err_release(&ignored);
	}
	ctx->started_inputs[index] = inputs;
}

static void on_start(void *data, size_t index, const struct exec_progress *progress)
{
	struct run_context *ctx = data;
	sign_inputs_at_start(ctx, index);
	ctx->started_at[index] = monotonic_seconds();
	if (ctx->expected[index] >= 0)
		ctx->expected_waiting -= ctx->expected[index];
	else
		ctx->unknown_waiting--;
	if (ctx->opt->verbose) {
		clear_progress(ctx);
		fprintf(stderr, "start  %s\n    %s\n", ctx->exec_jobs[index].id, ctx->exec_jobs[index].command);
	}
	show_progress(ctx, progress);
}

/*
 * Early cutoff: a conditional job whose jobs that ran have ended is decided
 * again on its inputs as they came out. In doubt (an error), it runs.
 */
static bool on_ready(void *data, size_t index)
{
	struct run_context *ctx = data;
	size_t i = ctx->graph_index[index];
	enum state_reason reason;
	struct cp_err err = CP_ERR_INIT;
	int rc = plan_cutoff_check(ctx->study->graph, ctx->study->state, i, &reason, NULL, &err);
	cp_err_release(&err);
	return rc < 0 || reason != STATE_UP_TO_DATE;
}

/* Record a job early cutoff left out; should its files have changed meanwhile, it stays to run next time. */
static int record_unneeded(struct run_context *ctx, const struct graph_job *job)
{
	struct strbuf definition = STRBUF_INIT;
	struct state_job_query query;
	plan_job_query(job, &definition, &query);
	bool recorded;
	int rc = state_record_unchanged(ctx->study->state, &query, &recorded, NULL, &ctx->record_err);
	if (rc == 0 && !recorded)
		rc = state_release_claim(ctx->study->state, job->id, &ctx->record_err);
	strbuf_release(&definition);
	return rc;
}

/* Whether SIGINT, SIGTERM or SIGHUP is waiting (exec blocks them outside its wait). */
static bool stop_requested(void)
{
	sigset_t pending;
	sigpending(&pending);
	return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1 ||
	       sigismember(&pending, SIGHUP) == 1;
}

/* Record a job that succeeded: its inputs as they were when it started, its outputs as they are now. */
static int record_success(struct run_context *ctx, size_t index, const struct graph_job *job,
			  const struct state_attempt *attempt)
{
	struct state *state = ctx->study->state;
	struct state_file *inputs = ctx->started_inputs[index];
	struct state_file *outputs = xcalloc(job->outputs.count + 1, sizeof(*outputs));
	int rc = 0;
	for (size_t o = 0; o < job->outputs.count && rc == 0; o++) {
		outputs[o].path = job->outputs.items[o];
		rc = state_file_signature(state, outputs[o].path, &outputs[o].signature, &ctx->record_err);
	}
	for (size_t i = 0; i < job->inputs.count && rc == 0; i++) {
		struct file_signature now;
		if (!inputs[i].signature.exists ||
		    (state_file_signature(state, inputs[i].path, &now, &ctx->record_err) == 0 &&
		     (now.size != inputs[i].signature.size || now.hash != inputs[i].signature.hash))) {
			clear_progress(ctx);
			fprintf(stderr, "cpipe: %s changed while %s ran: it will run again\n", inputs[i].path, job->id);
		}
	}
	if (rc == 0) {
		struct state_outcome outcome = {
			.job_id = job->id,
			/* The command that ran, expanded once for exec (execute). */
			.definition_hash = plan_definition_hash(job, ctx->exec_jobs[index].command),
			.inputs = inputs,
			.input_count = job->inputs.count,
			.outputs = outputs,
			.output_count = job->outputs.count,
			.attempt = *attempt,
		};
		rc = state_record_success(state, &outcome, &ctx->record_err);
	}
	free(outputs);
	return rc;
}

static void record_result(struct run_context *ctx, size_t index, const struct exec_result *result)
{
	struct state *state = ctx->study->state;
	const struct graph_job *job = &ctx->study->graph->jobs[ctx->graph_index[index]];
	if (!ctx->in_transaction) {
		/*
		 * A result is never dropped for a lock: wait as long as another process holds it,
		 * unless the user stops the run (the job then counts as interrupted and reruns).
		 */
		ctx->stopping |= result->status == EXEC_JOB_INTERRUPTED;
		if (ctx->stopping && ctx->record_failed)
			return; /* gave up on the lock already: do not wait again for each job */
		struct cp_err busy = CP_ERR_INIT;
		int begun;
		while ((begun = state_begin(state, &busy)) == STATE_BUSY && !ctx->stopping &&
		       !(ctx->stopping = stop_requested())) {
			clear_progress(ctx);
			fprintf(stderr, "cpipe: %s: still locked by another process; waiting to record %s\n",
				state_db_path(state), job->id);
			cp_err_release(&busy);
		}
		if (begun < 0) {
			cp_err_set(&ctx->record_err, NULL, 0, "%s; jobs whose results could not be recorded will run again",
				   busy.message);
			cp_err_release(&busy);
			ctx->record_failed = true;
			return;
		}
		ctx->transaction_start = state_now_ns();
	}
	ctx->in_transaction++;
	struct state_attempt attempt = {result->exit_code, (int64_t)(result->start_time * 1e9),
					(int64_t)(result->end_time * 1e9), NULL, 0, result->log_path};
	int rc = 0;
	switch (result->status) {
	case EXEC_JOB_OK:
		rc = record_success(ctx, index, job, &attempt);
		break;
	case EXEC_JOB_FAILED:
		rc = state_record_failure(state, job->id, &attempt, &ctx->record_err);
		break;
	case EXEC_JOB_INTERRUPTED:
		rc = state_mark_interrupted(state, job->id, &ctx->record_err);
		break;
	case EXEC_JOB_UNNEEDED:
		rc = record_unneeded(ctx, job);
		break;
	default:
		rc = state_release_claim(state, job->id, &ctx->record_err);
		break;
	}
	FREE_AND_NULL(ctx->started_inputs[index]);
	if (rc < 0)
		ctx->record_failed = true;
	if (ctx->in_transaction >= 512)
		flush_records(ctx);
}

static void on_finish(void *data, size_t index, const struct exec_result *result, const struct exec_progress *progress)
{
	struct run_context *ctx = data;
	record_result(ctx, index, result);
	const char *id = ctx->exec_jobs[index].id;
	if (ctx->started_at[index] > 0) {
		ctx->started_at[index] = 0;
	} else if (ctx->expected[index] >= 0) {
		ctx->expected_waiting -= ctx->expected[index]; /* finished without starting: skipped */
	} else {
		ctx->unknown_waiting--;
	}
	clear_progress(ctx);
	struct strbuf line = STRBUF_INIT;
	/* Red and yellow on a terminal only, and never when NO_COLOR asks for none. */
	const char *red = ctx->color ? "\033[31m" : "", *yellow = ctx->color ? "\033[33m" : "",
		   *plain = ctx->color ? "\033[0m" : "";
	switch (result->status) {
	case EXEC_JOB_OK:
		if (!ctx->opt->quiet && !ctx->tty)
			strbuf_addf(&line, "done   %s (%.2f s)\n", id, result->end_time - result->start_time);
		break;
	case EXEC_JOB_FAILED:
		strbuf_addf(&line, "%sFAILED%s %s: %s; log: %s\n", red, plain, id,
			    result->message ? result->message : "failed", result->log_path ? result->log_path : "none");
		if (result->quarantine)
			strbuf_addf(&line, "       partial outputs moved to %s\n", result->quarantine);
		break;
	case EXEC_JOB_INTERRUPTED:
		strbuf_addf(&line, "%sinterrupted%s %s\n", yellow, plain, id);
		break;
	case EXEC_JOB_UNNEEDED:
		ctx->cut_off++;
		if (ctx->opt->verbose)
			strbuf_addf(&line, "cut off %s: its inputs came out as they were; not run\n", id);
		break;
	case EXEC_JOB_SKIPPED:
		if (ctx->opt->verbose) {
			strbuf_addf(&line, "skipped %s: %s\n", id, result->message ? result->message : "not run");
		} else {
			/* Hundreds of these after one failure would bury it: one line at the end. */
			ctx->not_started++;
		}
		break;
	default:
		break;
	}
	fputs(line.buf, stderr);
	strbuf_release(&line);
	show_progress(ctx, progress);
}

/* Claim every job to run; a job another live run holds is left out with its dependents. */
static int claim_jobs(struct study *study, const struct plan_options *opt, struct plan_decision *decisions,
		      struct cp_err *err)
{
	struct strbuf log = STRBUF_INIT;
	if (state_begin(study->state, err) < 0)
		return -1;
	for (size_t i = 0; i < study->graph->count; i++) {
		struct plan_decision *d = &decisions[i];
		const struct graph_job *job = &study->graph->jobs[i];
		for (size_t k = 0; d->action == PLAN_RUN && k < job->dep_count; k++)
			if (decisions[job->deps[k]].action == PLAN_HELD || decisions[job->deps[k]].action == PLAN_BLOCKED)
				d->action = PLAN_BLOCKED;
		if (d->action != PLAN_RUN)
			continue;
		strbuf_reset(&log);
		job_log_path(job->id, &log);
		int rc = state_claim_job(study->state, job->id, log.buf, err);
		/* Another run finished it meanwhile: decide on its new record (a second change is taken as held). */
		if (rc == STATE_CHANGED) {
			cp_err_release(err);
			if (plan_decide_again(study->graph, study->state, opt, decisions, i, err) < 0) {
				state_rollback(study->state);
				strbuf_release(&log);
				return -1;
			}
			rc = d->action == PLAN_RUN ? state_claim_job(study->state, job->id, log.buf, err) : 0;
			if (rc == STATE_CHANGED)
				rc = STATE_HELD;
		}
		if (rc == STATE_HELD) {
			/* Said with the others held, after every claim (report_held). */
			plan_set_detail(d, xstrdup(err->message));
			cp_err_release(err);
			d->action = PLAN_HELD;
		} else if (rc < 0) {
			state_rollback(study->state);
			strbuf_release(&log);
			return -1;
		}
	}
	strbuf_release(&log);
	return state_commit(study->state, err);
}

/*
 * Jobs another live run or the cluster holds, and those waiting for them, in one line (each
 * with -v): with hundreds of subjects one line per job would say nothing more. Returns how many
 * were left out.
 */
static size_t report_held(const struct study *study, const struct sync_view *view,
			  const struct plan_decision *decisions, bool verbose, bool quiet)
{
	size_t held = 0, blocked = 0;
	struct strvec holders = STRVEC_INIT;
	struct strbuf holder = STRBUF_INIT;
	for (size_t i = 0; i < study->graph->count; i++) {
		blocked += decisions[i].action == PLAN_BLOCKED;
		if (decisions[i].action != PLAN_HELD)
			continue;
		held++;
		/* A cluster job's detail says where it is; another run's names its pid and host. */
		bool on_cluster = view->in_flight && view->in_flight[i];
		strbuf_reset(&holder);
		strbuf_addf(&holder, "%s%s", on_cluster ? "" : "run ",
			    decisions[i].detail && *decisions[i].detail ? decisions[i].detail : "unknown");
		if (strvec_find(&holders, holder.buf) < 0)
			strvec_push(&holders, holder.buf);
		if (verbose)
			fprintf(stderr, "cpipe: not running %s: held: %s\n", study->graph->jobs[i].id, holder.buf);
	}
	if (held && !quiet) {
		struct strbuf line = STRBUF_INIT;
		strbuf_addf(&line, "cpipe: %zu job%s held (", held, held == 1 ? " is" : "s are");
		for (size_t h = 0; h < holders.count && h < 3; h++)
			strbuf_addf(&line, "%s%s", h ? "; " : "", holders.items[h]);
		if (holders.count > 3)
			strbuf_addf(&line, "; %zu more", holders.count - 3);
		strbuf_addch(&line, ')');
		if (blocked)
			strbuf_addf(&line, " and %zu more wait%s for %s", blocked, blocked == 1 ? "s" : "",
				    held == 1 ? "it" : "them");
		fprintf(stderr, "%s; they are left to %s%s\n", line.buf, holders.count == 1 ? "it" : "them",
			verbose ? "" : " (-v lists them)");
		strbuf_release(&line);
	}
	strbuf_release(&holder);
	strvec_release(&holders);
	return held + blocked;
}

/*
 * A cpipe killed outright (kill -9) leaves its jobs running. Before this run
 * starts any job again, the processes of every dead run that could still be
 * writing are ended, or two writers would make one output: the runs whose
 * attempt at a job about to run was interrupted (`runs`, gathered before the
 * claims turn those jobs into this run's), and those that died holding a claim.
 */
static void interrupted_runs(struct study *study, const struct plan_decision *decisions, struct strvec *runs)
{
	for (size_t i = 0; i < study->graph->count; i++) {
		struct state_job_record record;
		if (decisions[i].action == PLAN_RUN && state_job_lookup(study->state, study->graph->jobs[i].id, &record) &&
		    record.status == STATE_STATUS_INTERRUPTED && record.run_id && strvec_find(runs, record.run_id) < 0)
			strvec_push(runs, record.run_id);
	}
}

static void end_orphans(struct study *study, struct strvec *runs, bool quiet)
{
	state_dead_runs(study->state, runs);
	size_t groups = exec_end_runs((const char *const *)runs->items, runs->count, 0);
	if (groups && !quiet)
		fprintf(stderr, "cpipe: ended %zu process group%s left running by a cpipe run that was killed\n",
			groups, groups == 1 ? "" : "s");
}

static int adopt_jobs(struct study *study, struct plan_decision *decisions, bool quiet, struct cp_err *err)
{
	size_t adopted = 0;
	struct strbuf definition = STRBUF_INIT;
	if (state_begin(study->state, err) < 0)
		return -1;
	for (size_t i = 0; i < study->graph->count; i++) {
		if (decisions[i].action != PLAN_ADOPT)
			continue;
		struct state_job_query query;
		plan_job_query(&study->graph->jobs[i], &definition, &query);
		if (state_adopt(study->state, &query, err) < 0) {
			state_rollback(study->state);
			strbuf_release(&definition);
			return -1;
		}
		adopted++;
	}
	strbuf_release(&definition);
	if (adopted && !quiet)
		fprintf(stderr,
			"cpipe: adopted %zu job%s whose outputs existed without a record as up to date "
			"(--rebuild-unknown reruns them)\n",
			adopted, adopted == 1 ? "" : "s");
	return state_commit(study->state, err);
}

/* Each job's last successful run; a job never run takes its recipe's mean over the graph's jobs. */
static void estimate_durations(struct study *study, const size_t *graph_index, size_t count, struct run_context *ctx)
{
	size_t recipes = study->recipes->count;
	double *sum = xcalloc(recipes + 1, sizeof(*sum));
	size_t *known = xcalloc(recipes + 1, sizeof(*known));
	for (size_t i = 0; i < study->graph->count; i++) {
		struct state_job_record record;
		if (state_job_lookup(study->state, study->graph->jobs[i].id, &record) && record.recorded &&
		    !record.adopted && record.end_ns > record.start_ns) {
			sum[study->graph->jobs[i].recipe] += (double)(record.end_ns - record.start_ns) / 1e9;
			known[study->graph->jobs[i].recipe]++;
		}
	}
	ctx->expected = xcalloc(count + 1, sizeof(*ctx->expected));
	ctx->started_at = xcalloc(count + 1, sizeof(*ctx->started_at));
	for (size_t e = 0; e < count; e++) {
		const struct graph_job *job = &study->graph->jobs[graph_index[e]];
		struct state_job_record record;
		if (state_job_lookup(study->state, job->id, &record) && record.recorded && !record.adopted &&
		    record.end_ns > record.start_ns)
			ctx->expected[e] = (double)(record.end_ns - record.start_ns) / 1e9;
		else
			ctx->expected[e] = known[job->recipe] ? sum[job->recipe] / (double)known[job->recipe] : -1;
		if (ctx->expected[e] >= 0)
			ctx->expected_waiting += ctx->expected[e];
		else
			ctx->unknown_waiting++;
	}
	free(sum);
	free(known);
}

static int execute(struct study *study, struct plan_decision *decisions, const struct run_options *opt)
{
	const struct graph *graph = study->graph;
	struct plan_runs selection;
	plan_select_runs(graph, decisions, &selection);
	size_t count = selection.count;
	const size_t *exec_index = selection.exec_index, *graph_index = selection.graph_index;
	struct exec_job *jobs = xcalloc(count + 1, sizeof(*jobs));
	char **commands = xcalloc(count + 1, sizeof(*commands)); /* the graph keeps none */
	size_t *deps = xcalloc(selection.dep_total + 1, sizeof(*deps));
	size_t dep_used = 0;
	for (size_t e = 0; e < count; e++) {
		const struct graph_job *job = &graph->jobs[graph_index[e]];
		const struct recipe *recipe = &study->recipes->recipes[job->recipe];
		struct exec_job *x = &jobs[e];
		x->id = job->id;
		x->command = commands[e] = graph_job_command_dup(job);
		x->outputs = (const char *const *)job->outputs.items;
		x->output_optional = graph_job_output_optional(job);
		x->output_count = job->outputs.count;
		study_job_resources(&recipe->resources, &x->resources);
		/* Early cutoff decides it again once what it depends on has been recorded (on_ready). */
		x->ask_ready = decisions[graph_index[e]].conditional;
		x->deps = deps + dep_used;
		for (size_t k = 0; k < job->dep_count; k++)
			if (decisions[job->deps[k]].action == PLAN_RUN)
				deps[dep_used + x->dep_count++] = exec_index[job->deps[k]];
		dep_used += x->dep_count;
	}
	struct run_context ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.study = study;
	ctx.opt = opt;
	ctx.exec_jobs = jobs;
	ctx.graph_index = graph_index;
	ctx.decisions = decisions;
	ctx.tty = isatty(STDERR_FILENO);
	const char *no_color = getenv("NO_COLOR");
	ctx.color = ctx.tty && !(no_color && *no_color);
	ctx.slots = opt->jobs ? opt->jobs : exec_cpu_count();
	estimate_durations(study, graph_index, count, &ctx);
	ctx.started_inputs = xcalloc(count + 1, sizeof(*ctx.started_inputs));
	const char *lock_timeout = getenv("CPIPE_LOCK_TIMEOUT");
	if (lock_timeout && atof(lock_timeout) > 0)
		state_set_lock_timeout(study->state, (int)(atof(lock_timeout) * 1000));
	struct exec_options exec_opt = EXEC_OPTIONS_INIT;
	exec_opt.cwd = ".";
	exec_opt.run_id = state_run_id(study->state);
	exec_opt.jobs = opt->jobs;
	/* An explicit -j is what the user wants at once: the thread budget must not cap it lower. */
	exec_opt.max_threads = opt->max_threads ? opt->max_threads
			       : (opt->jobs > exec_cpu_count() ? opt->jobs : 0);
	exec_opt.max_ram_gb = opt->max_ram_gb;
	exec_opt.keep_going = opt->keep_going;
	exec_opt.ctx = &ctx;
	exec_opt.on_start = on_start;
	exec_opt.on_finish = on_finish;
	exec_opt.on_tick = on_tick;
	exec_opt.on_ready = on_ready;
	struct exec_progress summary;
	memset(&summary, 0, sizeof(summary));
	struct cp_err err = CP_ERR_INIT;
	int code = exec_run(&exec_backend_local, jobs, count, &exec_opt, &summary, &err);
	flush_records(&ctx);
	clear_progress(&ctx);
	int rc;
	if (code == EXEC_RUN_ERROR) {
		cli_report(&err);
		/* Nothing started: give the claims back. */
		for (size_t e = 0; e < count; e++)
			state_release_claim(study->state, jobs[e].id, &err);
		cp_err_release(&err);
		rc = EXIT_USAGE;
	} else {
		if (code == EXEC_RUN_INTERRUPTED && state_interrupt_run(study->state, &err) < 0)
			cli_report(&err);
		if (ctx.not_started)
			fprintf(stderr, "cpipe: %zu job%s not started (cpipe run -v lists each with its reason)\n",
				ctx.not_started, ctx.not_started == 1 ? "" : "s");
		struct strbuf cut_off = STRBUF_INIT;
		if (ctx.cut_off)
			strbuf_addf(&cut_off, ", %zu cut off (inputs unchanged%s)", ctx.cut_off,
				    opt->verbose ? "" : "; -v names them");
		fprintf(stderr, "cpipe: %zu done, %zu failed, %zu interrupted, %zu skipped%s in %.2f s\n",
			summary.succeeded, summary.failed, summary.interrupted, summary.skipped + graph->skipped.count,
			cut_off.buf, summary.elapsed_s);
		strbuf_release(&cut_off);
		rc = code == EXEC_RUN_OK ? EXIT_OK : code == EXEC_RUN_INTERRUPTED ? EXIT_INTERRUPTED : EXIT_JOB_FAILED;
	}
	if (ctx.record_failed) {
		cli_report(&ctx.record_err);
		if (rc == EXIT_OK)
			rc = EXIT_JOB_FAILED;
	}
	for (size_t e = 0; e < count; e++) {
		exec_job_release(&jobs[e]);
		free(ctx.started_inputs[e]);
		free(commands[e]);
	}
	free(ctx.started_inputs);
	free(jobs);
	free(commands);
	free(deps);
	free(ctx.expected);
	free(ctx.started_at);
	plan_runs_release(&selection);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	struct run_options opt;
	memset(&opt, 0, sizeof(opt));
	int rc = parse_run_options("run", run_usage, argc, argv, &opt);
	if (rc >= 0)
		goto out;
	if (opt.dry_run) {
		rc = opt.submit ? cli_usage_error("run", "-n/--dry-run and --submit do not go together; cpipe "
								"plan shows what would be submitted")
				: plan(&opt);
		goto out;
	}
	struct study study;
	struct sync_view view;
	struct plan_decision *decisions;
	struct cp_err err = CP_ERR_INIT;
	if ((rc = load_and_decide(&opt, &study, &view, &decisions, !opt.quiet)) != EXIT_OK)
		goto out;
	if (adopt_jobs(&study, decisions, opt.quiet, &err) < 0) {
		cli_report(&err);
		rc = EXIT_USAGE;
		goto done;
	}
	size_t in_flight = 0;
	for (size_t i = 0; i < study.graph->count; i++) {
		if (!view.in_flight[i])
			continue;
		in_flight++;
		/*
		 * A job queued or running on the cluster is never run a second time: a local
		 * run holds it (and its dependants); a new submission waits for its cluster id.
		 */
		if (!opt.submit)
			continue;
		decisions[i].action = PLAN_UP_TO_DATE;
	}
	if (!opt.submit)
		cluster_hold_in_flight(&view, decisions);
	struct strvec dead_runs = STRVEC_INIT;
	interrupted_runs(&study, decisions, &dead_runs);
	if (claim_jobs(&study, &opt.plan, decisions, &err) < 0) {
		cli_report(&err);
		strvec_release(&dead_runs);
		rc = EXIT_USAGE;
		goto done;
	}
	if (!opt.submit)
		end_orphans(&study, &dead_runs, opt.quiet);
	strvec_release(&dead_runs);
	size_t to_run = 0, held = report_held(&study, &view, decisions, opt.verbose, opt.quiet);
	for (size_t i = 0; i < study.graph->count; i++)
		to_run += decisions[i].action == PLAN_RUN;
	if (!to_run) {
		if (!opt.quiet && opt.submit && in_flight)
			fprintf(stderr, "cpipe: nothing to submit (%zu job%s already queued or running on the cluster)\n",
				in_flight, in_flight == 1 ? "" : "s");
		else if (!opt.quiet && study.graph->skipped.count)
			fprintf(stderr, "cpipe: nothing to do (%zu job%s up to date, %zu skipped)\n",
				study.graph->count - held, study.graph->count - held == 1 ? "" : "s",
				study.graph->skipped.count);
		else if (!opt.quiet && held)
			fprintf(stderr, "cpipe: nothing else to do (%zu job%s up to date); run again when they end\n",
				study.graph->count - held, study.graph->count - held == 1 ? "" : "s");
		else if (!opt.quiet)
			fprintf(stderr, "cpipe: nothing to do (%zu job%s up to date)\n", study.graph->count - held,
				study.graph->count - held == 1 ? "" : "s");
		rc = held ? EXIT_HELD : EXIT_OK;
		if (opt.submit && opt.cluster.wait && in_flight)
			rc = cluster_wait(&study, opt.quiet);
	} else if (opt.submit) {
		rc = cluster_submit(&study, decisions, &view, &opt.cluster);
		if (held && rc == EXIT_OK)
			rc = EXIT_HELD;
	} else {
		rc = execute(&study, decisions, &opt);
		if (held && rc == EXIT_OK)
			rc = EXIT_HELD;
	}
	cli_phase_done("run");
done:
	release_decided(&study, &view, decisions);
	cli_phase_done("release");
out:
	study_options_release(&opt.study);
	strvec_release(&opt.cluster.holds);
	return rc;
}
