#include "cluster.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char status_usage[] =
	"usage: cpipe status [TARGET ...] [options]\n"
	"\n"
	"For each output key of the TARGETs' jobs, count its files: up-to-date, stale\n"
	"(the job would run again), missing, and failed (the last run failed). With\n"
	"-v, one line per job in the same words, with the reason. Results of jobs\n"
	"submitted to a cluster are imported first; jobs still queued or running there\n"
	"are counted on a last line and shown as \"queued\" or \"running\" with -v.\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --set P=V, --skip-missing,\n"
	"  --partial-group: as for run\n"
	"  -v, --verbose   one line per job\n"
	"      --by NAME   a matrix instead: a row per value of placeholder NAME, a column\n"
	"                  per key, a symbol per cell: + up-to-date, ~ stale, - missing,\n"
	"                  ! failed (the worst of the cell's files)\n"
	"      --json      print {\"keys\": [...], \"jobs\": [...]} (with --by also \"by\")\n"
	"  -h, --help      show this help\n";

static const char log_usage[] =
	"usage: cpipe log JOB [-f FILE] [-C DIR] [--data DIR]\n"
	"\n"
	"Print the log of JOB's last run (JOB as `cpipe plan` names it, its placeholders\n"
	"in any order, or a unique prefix of it), after a header: the job, how its last\n"
	"run ended, when and where it started, how long it took, and its command as the\n"
	"recipe file gives it now.\n";

static const char forget_usage[] =
	"usage: cpipe forget [TARGET ...] [options]\n"
	"\n"
	"Drop the state records of the jobs the TARGETs need (all records when no\n"
	"TARGET is given). Their outputs are then adopted as up to date by the next\n"
	"run, or rebuilt with --rebuild-unknown. Files are not touched.\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --set P=V, --skip-missing,\n"
	"  --partial-group: as for run\n";

static const char clean_usage[] =
	"usage: cpipe clean [TARGET ...] [options]\n"
	"\n"
	"Remove the outputs cpipe made for the TARGETs' jobs (for every job it has a\n"
	"record of when no TARGET is given), and drop those records. Jobs of the same\n"
	"recipes whose subject is gone from the study are cleaned too. A file the study\n"
	"reads from disk (a raw input), a path outside the data root, and outputs\n"
	"adopted rather than made by cpipe are never removed.\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --set P=V, --skip-missing:\n  as for run\n"
	"  -n, --dry-run   list what would be removed, remove nothing\n"
	"  -v, --verbose   name each file removed\n"
	"  -h, --help      show this help\n"
	"\n"
	"Exit status: 0, 1 when a file could not be removed, 2 on a usage or input error.\n";

static const char graph_usage[] =
	"usage: cpipe graph [TARGET ...] [options]\n"
	"\n"
	"Print the graph of the jobs the TARGETs need in Graphviz DOT (cpipe graph |\n"
	"dot -Tsvg > dag.svg).\n"
	"\n"
	"  -f FILE, -C DIR, --data DIR, -p NAME=V, --NAME V, --link A,B, --set P=V, --skip-missing,\n"
	"  --partial-group: as for run\n";

static const struct option study_options[] = {
	STUDY_LONG_OPTIONS,
	{"verbose", no_argument, NULL, 'v'},
	{"json", no_argument, NULL, 'J'},
	{"by", required_argument, NULL, 'B'},
	{"dry-run", no_argument, NULL, 'n'},
	{NULL, 0, NULL, 0},
};

/* What status and clean take beyond the study options (a command given NULL takes none of it). */
struct command_flags {
	bool verbose;
	bool json;
	bool dry_run;
	const char *by;
};

/* status's and clean's own options (`context`: their struct command_flags, NULL for the others). */
static int command_flag(int c, const char *arg, void *context)
{
	struct command_flags *flags = context;
	if (!flags)
		return 0;
	switch (c) {
	case 'v': flags->verbose = true; return 1;
	case 'J': flags->json = true; return 1;
	case 'B': flags->by = arg; return 1;
	case 'n': flags->dry_run = true; return 1;
	}
	return 0;
}

/* Parse the options every study command takes; returns -1 to go on, else an exit code. */
static int parse_study_args(const char *command, const char *usage, int argc, char **argv,
			    struct study_options *opt, struct command_flags *flags)
{
	return study_parse_args(command, usage, argc, argv, study_options, "f:C:p:vnh", opt, command_flag, flags);
}

/*
 * One word per state, the same in the table, -v, --by and --json: a file is failed when its job's
 * last run failed, else missing when it does not exist, else stale when its job would run, else
 * up-to-date. A job takes the worst of its files.
 */
enum file_state { FILE_UP_TO_DATE, FILE_STALE, FILE_MISSING, FILE_FAILED, FILE_STATES };
static const char *const file_state_words[FILE_STATES] = {"up-to-date", "stale", "missing", "failed"};
static const char file_state_symbols[FILE_STATES] = {'+', '~', '-', '!'};

struct job_status {
	enum file_state state;  /* the worst of its files */
	const char *word;       /* what -v says: the state's word, or where the job is running */
	enum file_state *files; /* one per output */
};

struct status_report {
	struct study *study;
	struct plan_decision *decisions;
	struct sync_view view;
	struct job_status *jobs;
	struct strvec keys;       /* output keys, in the order jobs first make them */
	size_t (*counts)[FILE_STATES];
};

/* The key of output `o` of a job: files follow recipe->out's order. */
static const char *output_key(const struct study *study, const struct graph_job *job, size_t o)
{
	const struct recipe *recipe = &study->recipes->recipes[job->recipe];
	return recipe->out.count == job->outputs.count ? recipe->out.items[o] : recipe->out.items[0];
}

static void classify_job(struct status_report *report, size_t i, struct cp_err *err)
{
	struct study *study = report->study;
	const struct graph_job *job = &study->graph->jobs[i];
	struct plan_decision *d = &report->decisions[i];
	struct job_status *js = &report->jobs[i];
	struct state_job_record record;
	bool known = state_job_lookup(study->state, job->id, &record);
	bool on_cluster = report->view.in_flight[i];
	bool failed = !on_cluster && known && record.status == STATE_STATUS_FAILED;
	bool running = !on_cluster && known && record.status == STATE_STATUS_RUNNING && record.holder_alive;
	/* A claim whose holder died is an interrupted run too. */
	bool interrupted = !on_cluster && known && (record.status == STATE_STATUS_INTERRUPTED ||
						    (record.status == STATE_STATUS_RUNNING && !record.holder_alive));
	if (on_cluster) {
		d->action = PLAN_HELD;
		d->reason = STATE_RUNNING_ELSEWHERE;
		struct strbuf where = STRBUF_INIT;
		strbuf_addf(&where, "on %s as job ", exec_cluster_name(report->view.subs[i].kind));
		exec_submission_cluster_id(&report->view.subs[i], &where);
		plan_set_detail(d, strbuf_detach(&where));
	}
	js->files = xcalloc(job->outputs.count + 1, sizeof(*js->files));
	js->state = FILE_UP_TO_DATE;
	for (size_t o = 0; o < job->outputs.count; o++) {
		struct file_signature sig;
		if (state_file_signature(study->state, job->outputs.items[o], &sig, err) < 0) {
			cp_err_release(err);
			sig.exists = false;
		}
		enum file_state state = failed ? FILE_FAILED : !sig.exists ? FILE_MISSING
				      : d->action == PLAN_RUN ? FILE_STALE : FILE_UP_TO_DATE;
		js->files[o] = state;
		if (state > js->state)
			js->state = state;
		const char *key = output_key(study, job, o);
		long k = strvec_find(&report->keys, key);
		if (k < 0) {
			strvec_push(&report->keys, key);
			report->counts = xrealloc(report->counts, report->keys.count * sizeof(*report->counts));
			memset(report->counts[report->keys.count - 1], 0, sizeof(*report->counts));
			k = (long)report->keys.count - 1;
		}
		report->counts[k][state]++;
	}
	/* Where the job is, when that says more than the state of its files. */
	js->word = on_cluster ? exec_cluster_state_name(report->view.states[i]) : running ? "running"
		 : interrupted && js->state != FILE_FAILED ? "interrupted" : file_state_words[js->state];
}

static void print_job_lines(const struct status_report *report)
{
	struct strbuf line = STRBUF_INIT;
	for (size_t i = 0; i < report->study->graph->count; i++) {
		const struct plan_decision *d = &report->decisions[i];
		strbuf_reset(&line);
		strbuf_addf(&line, "%-11s ", report->jobs[i].word);
		cli_add_escaped(&line, report->study->graph->jobs[i].id);
		if (d->reason != STATE_UP_TO_DATE) {
			strbuf_adds(&line, "  (");
			plan_describe(report->study->graph, report->decisions, i, &line);
			strbuf_addch(&line, ')');
		}
		strbuf_addch(&line, '\n');
		fputs(line.buf, stdout);
	}
	strbuf_release(&line);
}

static void print_key_table(const struct status_report *report)
{
	printf("%-24s %10s %10s %10s %10s\n", "key", "up-to-date", "stale", "missing", "failed");
	for (size_t k = 0; k < report->keys.count; k++)
		printf("%-24s %10zu %10zu %10zu %10zu\n", report->keys.items[k], report->counts[k][FILE_UP_TO_DATE],
		       report->counts[k][FILE_STALE], report->counts[k][FILE_MISSING], report->counts[k][FILE_FAILED]);
	if (report->view.in_flight_count)
		printf("on the cluster: %zu queued, %zu running (cpipe wait)\n", report->view.queued,
		       report->view.running);
}

/* The value a job has for `name`, or NULL when it covers all of them (a group step). */
static const char *job_value(const struct graph_job *job, const char *name)
{
	for (size_t b = 0; b < job->binding_count; b++)
		if (!strcmp(job->binding_names[b], name))
			return job->binding_values[b];
	return NULL;
}

/*
 * The --by matrix: cells[row * keys + key] is the worst state of the files there, or -1. Rows
 * are the placeholder's values in the order jobs have them, then "*" for jobs over all of them.
 */
struct by_matrix {
	struct strvec rows;
	int *cells;
};

static int build_matrix(const struct status_report *report, const char *name, struct by_matrix *m,
			struct cp_err *err)
{
	const struct graph *graph = report->study->graph;
	bool used = false;
	m->rows = (struct strvec)STRVEC_INIT;
	for (size_t i = 0; i < graph->count; i++) {
		const char *value = job_value(&graph->jobs[i], name);
		used = used || value;
		if (value && strvec_find(&m->rows, value) < 0)
			strvec_push(&m->rows, value);
	}
	if (!used) {
		struct strbuf known = STRBUF_INIT;
		for (size_t i = 0; i < graph->count; i++)
			for (size_t b = 0; b < graph->jobs[i].binding_count; b++)
				if (!strstr(known.buf, graph->jobs[i].binding_names[b]))
					strbuf_addf(&known, "%s%s", known.len ? ", " : "", graph->jobs[i].binding_names[b]);
		cp_err_set(err, NULL, 0, "--by %s: no job iterates over '%s'; the jobs' placeholders: %s", name, name,
			   known.len ? known.buf : "none");
		strbuf_release(&known);
		return -1;
	}
	strvec_push(&m->rows, "*");
	size_t width = report->keys.count;
	m->cells = xcalloc(m->rows.count * width + 1, sizeof(*m->cells));
	for (size_t c = 0; c < m->rows.count * width; c++)
		m->cells[c] = -1;
	for (size_t i = 0; i < graph->count; i++) {
		const char *value = job_value(&graph->jobs[i], name);
		size_t row = (size_t)strvec_find(&m->rows, value ? value : "*");
		for (size_t o = 0; o < graph->jobs[i].outputs.count; o++) {
			size_t k = (size_t)strvec_find(&report->keys, output_key(report->study, &graph->jobs[i], o));
			int *cell = &m->cells[row * width + k];
			if ((int)report->jobs[i].files[o] > *cell)
				*cell = (int)report->jobs[i].files[o];
		}
	}
	/* No job over all values: no "*" row. */
	bool star = false;
	for (size_t k = 0; k < width; k++)
		star = star || m->cells[(m->rows.count - 1) * width + k] >= 0;
	if (!star)
		free(m->rows.items[--m->rows.count]);
	return 0;
}

static void print_matrix(const struct status_report *report, const char *name, const struct by_matrix *m)
{
	size_t first = strlen(name);
	for (size_t r = 0; r < m->rows.count; r++)
		if (strlen(m->rows.items[r]) > first)
			first = strlen(m->rows.items[r]);
	struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "%-*s", (int)first, name);
	for (size_t k = 0; k < report->keys.count; k++)
		strbuf_addf(&line, "  %s", report->keys.items[k]);
	puts(line.buf);
	for (size_t r = 0; r < m->rows.count; r++) {
		strbuf_reset(&line);
		cli_add_escaped(&line, m->rows.items[r]);
		for (size_t pad = strlen(m->rows.items[r]); pad < first; pad++)
			strbuf_addch(&line, ' ');
		for (size_t k = 0; k < report->keys.count; k++) {
			int cell = m->cells[r * report->keys.count + k];
			/* The symbol sits under the first letter of its key's name. */
			strbuf_addf(&line, "  %c%*s", cell < 0 ? ' ' : file_state_symbols[cell],
				    (int)strlen(report->keys.items[k]) - 1, "");
		}
		while (line.len && line.buf[line.len - 1] == ' ')
			strbuf_setlen(&line, line.len - 1);
		puts(line.buf);
	}
	printf("+ up-to-date  ~ stale  - missing  ! failed%s\n",
	       m->rows.count && !strcmp(m->rows.items[m->rows.count - 1], "*") ? "  (* = over all values)" : "");
	strbuf_release(&line);
}

/* json_string refuses bytes that are not UTF-8: such text is replaced, never dropped. */
static json_t *status_json_text(const char *text)
{
	json_t *value = json_string(text);
	return value ? value : json_string("(not UTF-8)");
}

static void print_json(const struct status_report *report, const char *by, const struct by_matrix *m)
{
	const struct graph *graph = report->study->graph;
	json_t *root = json_object(), *keys = json_array(), *jobs = json_array();
	for (size_t k = 0; k < report->keys.count; k++) {
		json_t *o = json_object();
		json_object_set_new(o, "key", status_json_text(report->keys.items[k]));
		for (int s = 0; s < FILE_STATES; s++)
			json_object_set_new(o, file_state_words[s], json_integer((json_int_t)report->counts[k][s]));
		json_array_append_new(keys, o);
	}
	for (size_t i = 0; i < graph->count; i++) {
		const struct graph_job *job = &graph->jobs[i];
		const struct plan_decision *d = &report->decisions[i];
		json_t *o = json_object(), *placeholders = json_object(), *outputs = json_array();
		json_object_set_new(o, "id", status_json_text(job->id));
		json_object_set_new(o, "recipe", status_json_text(report->study->recipes->recipes[job->recipe].name));
		for (size_t b = 0; b < job->binding_count; b++)
			json_object_set_new(placeholders, job->binding_names[b], status_json_text(job->binding_values[b]));
		json_object_set_new(o, "placeholders", placeholders);
		json_object_set_new(o, "state", json_string(report->jobs[i].word));
		json_object_set_new(o, "reason", json_string(state_reason_string(d->reason)));
		json_object_set_new(o, "detail", status_json_text(d->detail ? d->detail : ""));
		for (size_t f = 0; f < job->outputs.count; f++) {
			json_t *file = json_object();
			json_object_set_new(file, "path", status_json_text(job->outputs.items[f]));
			json_object_set_new(file, "key", status_json_text(output_key(report->study, job, f)));
			json_object_set_new(file, "state", json_string(file_state_words[report->jobs[i].files[f]]));
			json_array_append_new(outputs, file);
		}
		json_object_set_new(o, "outputs", outputs);
		json_array_append_new(jobs, o);
	}
	json_object_set_new(root, "keys", keys);
	json_object_set_new(root, "jobs", jobs);
	json_t *cluster = json_object();
	json_object_set_new(cluster, "queued", json_integer((json_int_t)report->view.queued));
	json_object_set_new(cluster, "running", json_integer((json_int_t)report->view.running));
	json_object_set_new(root, "cluster", cluster);
	if (by) {
		json_t *rows = json_array();
		for (size_t r = 0; r < m->rows.count; r++) {
			json_t *row = json_object(), *cells = json_object();
			json_object_set_new(row, "value", status_json_text(m->rows.items[r]));
			for (size_t k = 0; k < report->keys.count; k++) {
				int cell = m->cells[r * report->keys.count + k];
				json_object_set_new(cells, report->keys.items[k],
						    cell < 0 ? json_null() : json_string(file_state_words[cell]));
			}
			json_object_set_new(row, "keys", cells);
			json_array_append_new(rows, row);
		}
		json_t *matrix = json_object();
		json_object_set_new(matrix, "placeholder", status_json_text(by));
		json_object_set_new(matrix, "rows", rows);
		json_object_set_new(root, "by", matrix);
	}
	json_dumpf(root, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
	fputc('\n', stdout);
	json_decref(root);
}

int cmd_status(int argc, char **argv)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	struct command_flags flags = {0};
	int rc = parse_study_args("status", status_usage, argc, argv, &opt, &flags);
	if (rc < 0 && flags.dry_run)
		rc = cli_usage_error("status", "unknown option -n (status changes nothing)");
	if (rc >= 0)
		goto out;
	opt.need_state = true;
	opt.stat_recorded = true;
	struct study study;
	if ((rc = study_load(&opt, &study)) != EXIT_OK)
		goto out;
	struct status_report report = {&study, NULL, {0}, NULL, STRVEC_INIT, NULL};
	struct plan_options plan = {.failed_run_seen = study_failed_run_logged};
	struct cp_err err = CP_ERR_INIT;
	struct by_matrix matrix = {STRVEC_INIT, NULL};
	rc = EXIT_USAGE;
	if (cluster_sync(&study, &report.view, true, &err) < 0 || study_decide(&study, &plan, &report.decisions, &err) < 0) {
		cli_report(&err);
		goto done;
	}
	report.jobs = xcalloc(study.graph->count + 1, sizeof(*report.jobs));
	for (size_t i = 0; i < study.graph->count; i++)
		classify_job(&report, i, &err);
	if (flags.by && build_matrix(&report, flags.by, &matrix, &err) < 0) {
		cli_report(&err);
		goto done;
	}
	if (flags.json) {
		print_json(&report, flags.by, &matrix);
	} else if (flags.by) {
		print_matrix(&report, flags.by, &matrix);
	} else {
		if (flags.verbose)
			print_job_lines(&report);
		print_key_table(&report);
	}
	rc = EXIT_OK;
done:
	for (size_t i = 0; report.jobs && i < study.graph->count; i++)
		free(report.jobs[i].files);
	free(report.jobs);
	free(report.counts);
	free(matrix.cells);
	strvec_release(&matrix.rows);
	strvec_release(&report.keys);
	plan_decisions_free(report.decisions, study.graph->count);
	sync_view_release(&report.view);
	study_release(&study);
out:
	study_options_release(&opt);
	return rc;
}

struct prefix_search {
	const char *prefix;
	size_t matches;
	char *job_id;
	bool exact;
};

static int collect_match(const struct state_job_record *record, void *data)
{
	struct prefix_search *search = data;
	if (!strcmp(record->job_id, search->prefix) || !search->matches) {
		free(search->job_id);
		search->job_id = xstrdup(record->job_id);
	}
	search->matches++;
	/* An exact match wins over longer ids that share it as a prefix. */
	search->exact = !strcmp(record->job_id, search->prefix);
	return search->exact ? 1 : 0;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A job id names its placeholders in sorted order ("count[session=a,subject=03]"); a user may
 * write them in any order. Returns the sorted form, or NULL when `name` is not "recipe[a=x,...]".
 */
static char *sorted_job_name(const char *name)
{
	const char *open = strchr(name, '['), *close = strrchr(name, ']');
	if (!open || !close || close[1] || close < open)
		return NULL;
	struct strvec pairs = STRVEC_INIT;
	char *inside = xstrndup(open + 1, (size_t)(close - open - 1));
	strvec_split(&pairs, inside, ',', false);
	free(inside);
	char *sorted = NULL;
	bool pairs_ok = pairs.count > 1;
	for (size_t i = 0; i < pairs.count; i++)
		pairs_ok = pairs_ok && strchr(pairs.items[i], '=');
	if (pairs_ok) {
		qsort(pairs.items, pairs.count, sizeof(*pairs.items), compare_strings);
		struct strbuf out = STRBUF_INIT;
		strbuf_add(&out, name, (size_t)(open - name) + 1);
		for (size_t i = 0; i < pairs.count; i++)
			strbuf_addf(&out, "%s%s", i ? "," : "", pairs.items[i]);
		strbuf_addch(&out, ']');
		sorted = strbuf_detach(&out);
	}
	strvec_release(&pairs);
	return sorted;
}

/*
 * The job's command as the recipe file gives it now (with the command line's placeholder values),
 * if the study loads, quietly, and has the job. `opt` names the JOB as its target: it is set
 * aside, so that the graph has every job.
 */
static char *current_command(struct study_options *opt, const char *job_id)
{
	struct strvec job = opt->targets;
	opt->targets = (struct strvec)STRVEC_INIT;
	const char *directory = opt->directory;
	opt->directory = NULL; /* cmd_log is already there */
	struct study study;
	int saved = cli_silence_stderr();
	int rc = study_load(opt, &study);
	cli_restore_stderr(saved);
	opt->targets = job;
	opt->directory = directory;
	char *command = NULL;
	size_t index;
	if (rc == EXIT_OK && graph_find_job(study.graph, job_id, &index))
		command = graph_job_command_dup(&study.graph->jobs[index]);
	if (rc == EXIT_OK)
		study_release(&study);
	return command;
}

/* What a reader of a log wants first: which job, how its last run ended, when, where, what it ran. */
static void print_log_header(const struct state_job_record *record, const char *log_path, const char *command)
{
	printf("# job       %s\n", record->job_id);
	printf("# status    %s", state_status_string(record->status));
	if (record->status == STATE_STATUS_DONE || record->status == STATE_STATUS_FAILED)
		printf(" (exit status %d)", record->exit_code);
	putchar('\n');
	if (record->start_ns > 0) {
		time_t start = (time_t)(record->start_ns / 1000000000);
		struct tm local;
		char when[64];
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", localtime_r(&start, &local));
		printf("# started   %s", when);
		if (record->host)
			printf(" on %s (pid %lld)", record->host, (long long)record->pid);
		putchar('\n');
		if (record->end_ns >= record->start_ns)
			printf("# duration  %.2f s\n", (double)(record->end_ns - record->start_ns) / 1e9);
	}
	if (command)
		printf("# command   %s\n", command);
	printf("# log       %s\n", log_path);
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
	const char *name = opt.targets.items[0];
	char *sorted = sorted_job_name(name);
	struct prefix_search search = {name, 0, NULL, false};
	state_foreach_job(state, name, collect_match, &search);
	if (!search.matches && sorted) {
		search.prefix = sorted;
		state_foreach_job(state, sorted, collect_match, &search);
	}
	struct state_job_record record;
	struct strbuf log_path = STRBUF_INIT;
	rc = EXIT_USAGE;
	if (!search.matches) {
		fprintf(stderr, "cpipe: no job '%s' in the state database\n", name);
	} else if (search.matches > 1 && !search.exact) {
		fprintf(stderr, "cpipe: '%s' names %zu jobs; give more of the id\n", name, search.matches);
	} else if (!state_job_lookup(state, search.job_id, &record) ||
		   !state_job_log(state, search.job_id, &log_path)) {
		fprintf(stderr, "cpipe: job %s has no log (it never ran here)\n", search.job_id);
	} else {
		struct strbuf path = STRBUF_INIT;
		path_join(opt.data_dir ? opt.data_dir : set->data, log_path.buf, &path);
		FILE *f = fopen(path.buf, "r");
		/* A local job that succeeded without printing leaves no log (cpipe(1), FILES). */
		bool no_output = !f && errno == ENOENT && record.status == STATE_STATUS_DONE;
		if (!f && !no_output) {
			fprintf(stderr, "cpipe: cannot read log %s of job %s\n", path.buf, search.job_id);
		} else {
			char *command = current_command(&opt, search.job_id);
			print_log_header(&record, log_path.buf, command);
			free(command);
			char buffer[65536];
			size_t n;
			struct strbuf text = STRBUF_INIT;
			while (f && (n = fread(buffer, 1, sizeof(buffer), f)) > 0)
				strbuf_add(&text, buffer, n);
			if (f)
				fclose(f);
			/* The last line of a successful job's log is cpipe's own (cpipe(1), FILES). */
			static const char trailer[] = "cpipe: " EXEC_LOG_SUCCESS_TEXT "\n";
			if (!text.len || !strcmp(text.buf, trailer))
				puts("(the job printed nothing)");
			fwrite(text.buf, 1, text.len, stdout);
			strbuf_release(&text);
			rc = EXIT_OK;
		}
		strbuf_release(&path);
	}
	strbuf_release(&log_path);
	free(sorted);
	free(search.job_id);
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

/* What `cpipe clean` gathers: the jobs to clean and the files to remove. */
struct clean_plan {
	const struct study *study;
	struct strvec recipes;  /* with targets: the recipes of the targets' jobs */
	struct strvec job_ids;  /* records to drop */
	struct strvec files;    /* recorded outputs to remove */
	size_t kept;            /* recorded outputs that are raw inputs now, or outside the data root */
};

/* A path cpipe may remove: below the data root, and not a file the study reads from disk. */
static bool removable(const struct study *study, const char *path)
{
	if (path[0] == '/' || !strcmp(path, "..") || !strncmp(path, "../", 3))
		return false;
	for (size_t i = 0; i < study->globbed.count; i++)
		if (!strcmp(study->globbed.files[i].path, path))
			return false;
	return true;
}

static int collect_output(const struct state_file *file, void *data)
{
	struct clean_plan *plan = data;
	struct stat st;
	if (lstat(file->path, &st) < 0)
		return 0;
	if (!removable(plan->study, file->path))
		plan->kept++;
	else if (strvec_find(&plan->files, file->path) < 0)
		strvec_push(&plan->files, file->path);
	return 0;
}

/* Job "recipe[...]" (or "recipe") belongs to one of plan->recipes, or there are no targets. */
static int collect_job(const struct state_job_record *record, void *data)
{
	struct clean_plan *plan = data;
	size_t length = strcspn(record->job_id, "[");
	bool wanted = plan->recipes.count == 0;
	for (size_t r = 0; r < plan->recipes.count && !wanted; r++)
		wanted = strlen(plan->recipes.items[r]) == length && !strncmp(plan->recipes.items[r], record->job_id, length);
	size_t index;
	/* With targets, a job of the graph is wanted; one of the same recipe that the graph no
	 * longer has (its subject is gone) is wanted too. */
	if (plan->recipes.count && graph_find_job(plan->study->graph, record->job_id, &index))
		wanted = true;
	if (!wanted)
		return 0;
	strvec_push(&plan->job_ids, record->job_id);
	/* Adopted outputs were made outside cpipe: they are not cpipe's to remove. */
	if (record->recorded && !record->adopted)
		state_foreach_job_file(plan->study->state, record->job_id, 1, collect_output, plan);
	return 0;
}

int cmd_clean(int argc, char **argv)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	struct command_flags flags = {0};
	int rc = parse_study_args("clean", clean_usage, argc, argv, &opt, &flags);
	if (rc < 0 && (flags.json || flags.by))
		rc = cli_usage_error("clean", "--json and --by are status options");
	if (rc >= 0)
		goto out;
	opt.need_state = true;
	bool all = opt.targets.count == 0;
	struct study study;
	if ((rc = study_load(&opt, &study)) != EXIT_OK)
		goto out;
	struct clean_plan plan = {&study, STRVEC_INIT, STRVEC_INIT, STRVEC_INIT, 0};
	for (size_t i = 0; !all && i < study.graph->count; i++) {
		const char *name = study.recipes->recipes[study.graph->jobs[i].recipe].name;
		if (strvec_find(&plan.recipes, name) < 0)
			strvec_push(&plan.recipes, name);
	}
	if (all || plan.recipes.count)
		state_foreach_job(study.state, NULL, collect_job, &plan);
	strvec_sort(&plan.files);
	struct cp_err err = CP_ERR_INIT;
	size_t removed = 0;
	rc = EXIT_OK;
	for (size_t i = 0; i < plan.files.count; i++) {
		if (flags.dry_run) {
			printf("would remove %s\n", plan.files.items[i]);
		} else if (unlink(plan.files.items[i]) == 0) {
			removed++;
			if (flags.verbose)
				printf("removed %s\n", plan.files.items[i]);
		} else {
			fprintf(stderr, "cpipe: cannot remove %s: %s\n", plan.files.items[i], strerror(errno));
			rc = EXIT_JOB_FAILED;
		}
	}
	size_t forgotten = 0;
	if (!flags.dry_run && plan.job_ids.count &&
	    state_forget(study.state, NULL, (const char *const *)plan.job_ids.items, plan.job_ids.count, &forgotten,
			 &err) < 0) {
		cli_report(&err);
		rc = EXIT_USAGE;
	}
	if (flags.dry_run)
		printf("would remove %zu file%s of %zu job%s", plan.files.count, plan.files.count == 1 ? "" : "s",
		       plan.job_ids.count, plan.job_ids.count == 1 ? "" : "s");
	else
		printf("removed %zu file%s; forgot %zu job record%s", removed, removed == 1 ? "" : "s", forgotten,
		       forgotten == 1 ? "" : "s");
	if (plan.kept)
		printf(" (kept %zu recorded output%s that %s raw input%s now or outside the data root)", plan.kept,
		       plan.kept == 1 ? "" : "s", plan.kept == 1 ? "is a" : "are", plan.kept == 1 ? "" : "s");
	putchar('\n');
	strvec_release(&plan.recipes);
	strvec_release(&plan.job_ids);
	strvec_release(&plan.files);
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
