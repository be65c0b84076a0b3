/*
 * The steps every pipeline command shares: read the recipe file and its tree,
 * apply the command line's placeholder values, glob the raw inputs, build the
 * job graph and open the state database, in that order (cli -> tree/recipe ->
 * glob -> graph -> state). The state database opens in a second thread while
 * glob and graph run: nothing flows between them until the graph is built.
 */
#ifndef CPIPE_CLI_STUDY_H
#define CPIPE_CLI_STUDY_H

#include "cli.h"

#include <getopt.h>

#include "cpipe/glob.h"
#include "cpipe/exec.h"
#include "cpipe/graph.h"
#include "cpipe/plan.h"
#include "cpipe/recipe.h"
#include "cpipe/state.h"

/*
 * The words after `--NAME VALUE` that are no option (`--subject 01 02`, as fsl-pipe takes them):
 * more values of NAME, or targets; which, study_load decides with the tree (cpipe(1), TARGETS).
 */
struct flag_words {
	const char *setting_text; /* the "NAME=VALUE" handed to -p for the flag (identifies its setting) */
	long setting;             /* its index in settings once -p is parsed, else -1 */
	struct strvec words;
};

struct study_options {
	const char *recipe_file; /* -f; NULL = cpipe.yaml */
	const char *directory;   /* -C: change to it first */
	const char *data_dir;    /* --data: overrides the recipe file's data: */
	struct cli_placeholder_settings settings; /* -p NAME=V and --NAME V */
	struct strvec placeholder_flags;          /* names that came as --NAME, checked against the tree */
	struct flag_words *flag_words;            /* per --NAME VALUE followed by more words */
	size_t flag_word_count, flag_word_cap;
	struct strvec link_specs;                 /* --link A,B */
	struct strvec param_settings;             /* --set [RECIPE.]PARAM=VALUE (recipe_set_params) */
	struct strvec targets;
	bool skip_missing;
	bool partial_group; /* --partial-group: batch jobs over a narrowed subset or the inputs that exist */
	bool need_state; /* open .cpipe/state.db */
	bool stat_recorded; /* with need_state: stat the recorded files while the graph is built (for study_decide) */
	bool glob_only;  /* stop after globbing: no graph, no state (study->graph stays NULL) */
};

struct study {
	struct glob_result globbed; /* the raw inputs found on disk */
	struct strvec narrowed;     /* placeholders the command line set (filters), for the graph */
	char *filter_text;          /* the same as the command line wrote them: "--subject 01" */
	char *tree_path, *data_path; /* the tree file and data directory, absolute (NULL if unresolvable) */
	struct recipe_set *recipes;
	struct tree *tree;
	struct graph *graph;
	struct state *state;
	struct study_cache_save *cache_save; /* a graph built this time, written to .cpipe/graph.cache by study_release */
};

/* getopt's code for --set (beyond every command's own codes). */
#define STUDY_OPT_SET 1000

/* Options every pipeline command takes; `extra` are the command's own (may be NULL). */
#define STUDY_LONG_OPTIONS \
	{"set", required_argument, NULL, STUDY_OPT_SET}, \
	{"file", required_argument, NULL, 'f'}, {"directory", required_argument, NULL, 'C'}, \
		{"data", required_argument, NULL, 'D'}, {"placeholder", required_argument, NULL, 'p'}, \
		{"link", required_argument, NULL, 'L'}, {"skip-missing", no_argument, NULL, 'S'}, \
		{"skip_missing", no_argument, NULL, 'S'}, {"partial-group", no_argument, NULL, 'G'}, \
		{"help", no_argument, NULL, 'h'}

/*
 * Handle one option of STUDY_LONG_OPTIONS (`c` as getopt_long returned it).
 * Returns 1 when handled, 0 when `c` is not a study option, -1 on a bad value
 * (already reported).
 */
int study_option(struct study_options *opt, int c, const char *arg);

/*
 * Rewrite argv so that every `--NAME VALUE` / `--NAME=VALUE` whose NAME is not
 * one of `known` becomes `-p NAME=VALUE` (fsl-pipe's per-placeholder flags);
 * the names are remembered in opt->placeholder_flags and checked against the
 * tree later. The words after `--NAME VALUE` up to the next option go to
 * opt->flag_words, for study_load to sort into values and targets. Returns a new argv (free with free(); strings are owned by
 * `storage`) and its count in *new_argc.
 */
char **study_rewrite_args(int argc, char **argv, const struct option *known, struct study_options *opt,
			  struct strvec *storage, int *new_argc);

/*
 * Parse a study command's arguments: the study options, the command's own
 * (`own_option` returns 1 when `c` is one of them, else 0), -h (prints
 * `usage`) and the targets. Returns -1 to go on, else an exit code (an error
 * is already reported).
 */
int study_parse_args(const char *command, const char *usage, int argc, char **argv,
		     const struct option *long_options, const char *short_options, struct study_options *opt,
		     int (*own_option)(int c, const char *arg, void *context), void *context);

/* Run the shared steps; on error prints it and returns EXIT_USAGE (or another exit code). */
int study_load(struct study_options *opt, struct study *study);

/*
 * After the glob: of the placeholders in `preset` (those with values before
 * the glob), a value given on the command line, or listed in the tree (unless
 * a top-level product: true), that no file of the raw keys `keys` has, while
 * the data have other values: -1 with a message listing the known values and
 * suggesting a close one. With --skip-missing a value the tree lists is no
 * error: a line saying so goes to `skipped`. What its own glob sees of the
 * disk goes to `observed` (may be NULL), as study_load's glob does.
 */
int study_check_preset_values(const struct study_options *opt, const struct study *study,
			      const struct strvec *preset, const struct strvec *keys, struct strvec *skipped,
			      struct glob_observations *observed, struct cp_err *err);

/* A recipe's resources as exec takes them (borrowing its strings), but for backend_extra. */
void study_job_resources(const struct recipe_resources *recipe, struct exec_resources *out);

/*
 * A plan_options.failed_run_seen: the job's log (exec's log directory) ends
 * in a run that did not succeed.
 */
bool study_failed_run_logged(const struct graph_job *job, struct strbuf *detail, void *context);

/* Stat the graph's files, then decide every job (plan_decide_all); -1 on error. */
int study_decide(struct study *study, const struct plan_options *opt, struct plan_decision **out,
		 struct cp_err *err);

void study_release(struct study *study);
void study_options_release(struct study_options *opt);

#endif
