#include "submit.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char status_usage[] =
	"usage: cpipe status [TARGET ...] [options]\n"
	"\n"
	"For each output key of the TARGETs' jobs, count its files: up to date, stale\n"
	"(the job would run again), missing, and failed (the last run failed). With\n"
	"-v, one line per job with its state and reason. Results of jobs submitted to\n"
	"a cluster are imported first; jobs still queued or running there are counted\n"
	"on a last line and shown as \"queued\" or \"running\" with -v.\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --skip-missing,\n"
	"  --partial-group: as for run\n"
	"  -v, --verbose   one line per job\n"
	"  -h, --help      show this help\n";

static const char log_usage[] =
	"usage: cpipe log JOB [-f FILE] [-C DIR] [--data DIR]\n"
	"\n"
	"Print the log of JOB's last run (JOB as `cpipe plan` names it, or a unique\n"
	"prefix of it).\n";

static const char forget_usage[] =
	"usage: cpipe forget [TARGET ...] [options]\n"
	"\n"
	"Drop the state records of the jobs the TARGETs need (all records when no\n"
	"TARGET is given). Their outputs are then adopted as up to date by the next\n"
	"run, or rebuilt with --rebuild-unknown. Files are not touched.\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --skip-missing,\n"
	"  --partial-group: as for run\n";

static const char graph_usage[] =
	"usage: cpipe graph [TARGET ...] [options]\n"
	"\n"
	"Print the graph of the jobs the TARGETs need in Graphviz DOT (cpipe graph |\n"
	"dot -Tsvg > dag.svg).\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --skip-missing,\n"
	"  --partial-group: as for run\n";

static const struct option study_options[] = {
	STUDY_LONG_OPTIONS,
	{"verbose", no_argument, NULL, 'v'},
	{NULL, 0, NULL, 0},
};

/* Parse the options every study command takes; returns -1 to go on, else an exit code. */
static int parse_study_args(const char *command, const char *usage, int argc, char **argv,
			    struct study_options *opt, bool *verbose)
{
	struct strvec storage = STRVEC_INIT;
	int new_argc, c, rc = -1;
	char **args = study_rewrite_args(argc, argv, study_options, opt, &storage, &new_argc);
	optind = 1;
	while (rc < 0 && (c = getopt_long(new_argc, args, "f:C:p:vh", study_options, NULL)) != -1) {
		int handled = study_option(opt, c, optarg);
		if (handled < 0)
			rc = EXIT_USAGE;
		else if (handled)
			continue;
		else if (c == 'v' && verbose)
			*verbose = true;
		else if (c == 'h') {
			fputs(usage, stdout);
			rc = EXIT_OK;
		} else {
			rc = cli_usage_error(command, "unknown option");
		}
	}
	for (int i = optind; rc < 0 && i < new_argc; i++)
		strvec_push(&opt->targets, args[i]);
	free(args);
	strvec_release(&storage);
	return rc;
}

struct key_counts {
	size_t up_to_date, stale, missing, failed;
};

int cmd_status(int argc, char **argv)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	bool verbose = false;
	int rc = parse_study_args("status", status_usage, argc, argv, &opt, &verbose);
	if (rc >= 0)
		goto out;
	opt.need_state = true;
	opt.stat_recorded = true;
	struct study study;
	if ((rc = study_load(&opt, &study)) != EXIT_OK)
		goto out;
	struct decision *decisions = NULL;
	struct decide_options decide = {false, false, false};
	struct cp_err err = CP_ERR_INIT;
	struct cluster_view view;
	if (cluster_sync(&study, &view, true, &err) < 0 || decide_all(&study, &decide, &decisions, &err) < 0) {
		cli_report(&err);
		rc = EXIT_USAGE;
		cluster_view_release(&view);
		study_release(&study);
		goto out;
	}
	struct strvec keys = STRVEC_INIT;
	struct key_counts *counts = NULL;
	size_t counts_cap = 0;
	struct strbuf line = STRBUF_INIT;
	for (size_t i = 0; i < study.graph->count; i++) {
		const struct graph_job *job = &study.graph->jobs[i];
		const struct recipe *recipe = &study.recipes->recipes[job->recipe];
		struct state_job_record record;
		bool known = state_job_lookup(study.state, job->id, &record);
		bool failed = known && record.status == STATE_STATUS_FAILED;
		/* A claim whose holder died is an interrupted run too. */
		bool interrupted = known && (record.status == STATE_STATUS_INTERRUPTED ||
					     (record.status == STATE_STATUS_RUNNING && !record.holder_alive));
		bool running = known && record.status == STATE_STATUS_RUNNING && record.holder_alive;
		bool on_cluster = view.in_flight[i];
		if (on_cluster) {
			failed = interrupted = running = false;
			decisions[i].kind = DECISION_HELD;
			decisions[i].reason = STATE_RUNNING_ELSEWHERE;
			struct strbuf where = STRBUF_INIT;
			strbuf_addf(&where, "on %s as job ", exec_cluster_name(view.subs[i].kind));
			exec_submission_cluster_id(&view.subs[i], &where);
			free(decisions[i].detail);
			decisions[i].detail = strbuf_detach(&where);
		}
		if (verbose) {
			const char *word = on_cluster ? exec_cluster_state_name(view.states[i])
					 : failed ? "failed" : interrupted ? "interrupted" : running ? "running"
					 : decisions[i].kind == DECISION_RUN ? "stale" : decision_kind_name(decisions[i].kind);
			strbuf_reset(&line);
			strbuf_addf(&line, "%-11s ", word);
			cli_add_escaped(&line, job->id);
			if (decisions[i].reason != STATE_UP_TO_DATE) {
				strbuf_adds(&line, "  (");
				state_reason_describe(decisions[i].reason, decisions[i].detail, &line);
				strbuf_addch(&line, ')');
			}
			strbuf_addch(&line, '\n');
			fputs(line.buf, stdout);
		}
		/* Each output file of the job counts under its key; files follow recipe->out's order. */
		for (size_t o = 0; o < job->outputs.count; o++) {
			const char *key = recipe->out.count == job->outputs.count ? recipe->out.items[o] : recipe->out.items[0];
			long k = strvec_find(&keys, key);
			if (k < 0) {
				strvec_push(&keys, key);
				ALLOC_GROW(counts, keys.count, counts_cap);
				memset(&counts[keys.count - 1], 0, sizeof(*counts));
				k = (long)keys.count - 1;
			}
			struct file_signature sig;
			if (state_file_signature(study.state, job->outputs.items[o], &sig, &err) < 0) {
				cp_err_release(&err);
				sig.exists = false;
			}
			if (failed)
				counts[k].failed++;
			else if (!sig.exists)
				counts[k].missing++;
			else if (decisions[i].kind == DECISION_RUN)
				counts[k].stale++;
			else
				counts[k].up_to_date++;
		}
	}
	printf("%-24s %10s %10s %10s %10s\n", "key", "up-to-date", "stale", "missing", "failed");
	for (size_t k = 0; k < keys.count; k++)
		printf("%-24s %10zu %10zu %10zu %10zu\n", keys.items[k], counts[k].up_to_date, counts[k].stale,
		       counts[k].missing, counts[k].failed);
	if (view.in_flight_count)
		printf("on the cluster: %zu queued, %zu running (cpipe wait)\n", view.queued, view.running);
	strbuf_release(&line);
	free(counts);
	strvec_release(&keys);
	decisions_free(decisions, study.graph->count);
	cluster_view_release(&view);
	study_release(&study);
	rc = EXIT_OK;
out:
	study_options_release(&opt);
	return rc;
}

struct prefix_search {
	const char *prefix;
	size_t matches;
	char *job_id;
	char *log_path;
};

static int collect_match(const struct state_job_record *record, void *data)
{
	struct prefix_search *search = data;
	if (!strcmp(record->job_id, search->prefix) || !search->matches) {
		free(search->job_id);
		free(search->log_path);
		search->job_id = xstrdup(record->job_id);
		search->log_path = record->log_path ? xstrdup(record->log_path) : NULL;
	}
	search->matches++;
	/* An exact match wins over longer ids that share it as a prefix. */
	return !strcmp(record->job_id, search->prefix) ? 1 : 0;
}

int cmd_log(int argc, char **argv)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	int rc = parse_study_args("log", log_usage, argc, argv, &opt, NULL);
	if (rc >= 0)
		goto out;
	if (opt.targets.count != 1) {
		rc = cli_usage_error("log", "expected exactly one JOB");
		goto out;
	}
	/* The log needs only the state database: load the recipes for the data root, not the graph. */
	struct cp_err err = CP_ERR_INIT;
	struct recipe_set *set = NULL;
	if (opt.directory && chdir(opt.directory) < 0) {
		fprintf(stderr, "cpipe: cannot change to directory '%s'\n", opt.directory);
		rc = EXIT_USAGE;
		goto out;
	}
	if (recipe_load(opt.recipe_file ? opt.recipe_file : RECIPE_DEFAULT_FILE, &set, &err) < 0) {
		cli_report(&err);
		rc = EXIT_USAGE;
		goto out;
	}
	struct state *state = NULL;
	if (state_open(opt.data_dir ? opt.data_dir : set->data, &state, &err) < 0) {
		cli_report(&err);
		recipe_set_free(set);
		rc = EXIT_USAGE;
		goto out;
	}
	struct prefix_search search = {opt.targets.items[0], 0, NULL, NULL};
	int exact = state_foreach_job(state, opt.targets.items[0], collect_match, &search);
	rc = EXIT_USAGE;
	if (!search.matches) {
		fprintf(stderr, "cpipe: no job '%s' in the state database\n", opt.targets.items[0]);
	} else if (search.matches > 1 && !exact) {
		fprintf(stderr, "cpipe: '%s' names %zu jobs; give more of the id\n", opt.targets.items[0], search.matches);
	} else if (!search.log_path) {
		fprintf(stderr, "cpipe: job %s has no log (it never ran here)\n", search.job_id);
	} else {
		struct strbuf path = STRBUF_INIT;
		path_join(opt.data_dir ? opt.data_dir : set->data, search.log_path, &path);
		FILE *f = fopen(path.buf, "r");
		if (!f) {
			fprintf(stderr, "cpipe: cannot read log %s of job %s\n", path.buf, search.job_id);
		} else {
			char buffer[65536];
			size_t n;
			while ((n = fread(buffer, 1, sizeof(buffer), f)) > 0)
				fwrite(buffer, 1, n, stdout);
			fclose(f);
			rc = EXIT_OK;
		}
		strbuf_release(&path);
	}
	free(search.job_id);
	free(search.log_path);
	state_close(state);
	recipe_set_free(set);
out:
	study_options_release(&opt);
	return rc;
}

int cmd_forget(int argc, char **argv)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	int rc = parse_study_args("forget", forget_usage, argc, argv, &opt, NULL);
	if (rc >= 0)
		goto out;
	opt.need_state = true;
	bool all = opt.targets.count == 0;
	struct study study;
	if ((rc = study_load(&opt, &study)) != EXIT_OK)
		goto out;
	struct cp_err err = CP_ERR_INIT;
	size_t forgotten = 0;
	const char **ids = xcalloc(study.graph->count + 1, sizeof(*ids));
	for (size_t i = 0; i < study.graph->count; i++)
		ids[i] = study.graph->jobs[i].id;
	if (state_forget(study.state, all ? "" : NULL, ids, all ? 0 : study.graph->count, &forgotten, &err) < 0) {
		cli_report(&err);
		rc = EXIT_USAGE;
	} else {
		printf("forgot %zu job record%s\n", forgotten, forgotten == 1 ? "" : "s");
	}
	free(ids);
	study_release(&study);
out:
	study_options_release(&opt);
	return rc;
}

int cmd_graph(int argc, char **argv)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	int rc = parse_study_args("graph", graph_usage, argc, argv, &opt, NULL);
	if (rc >= 0)
		goto out;
	struct study study;
	if ((rc = study_load(&opt, &study)) != EXIT_OK)
		goto out;
	struct strbuf dot = STRBUF_INIT;
	graph_to_dot(study.graph, &dot);
	fputs(dot.buf, stdout);
	strbuf_release(&dot);
	study_release(&study);
out:
	study_options_release(&opt);
	return rc;
}
