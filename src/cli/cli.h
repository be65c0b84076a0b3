/*
 * The command-line tool: argument parsing, subcommands, printing, exit codes.
 * Library modules never print; every command reports their errors here.
 */
#ifndef CPIPE_CLI_H
#define CPIPE_CLI_H

#include "cpipe/glob.h"
#include "cpipe/tree.h"
#include "cpipe/util.h"

/* Exit codes shared by every command. */
enum {
	EXIT_OK = 0,
	EXIT_JOB_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_HELD = 3, /* nothing failed, but another live run holds some of the jobs */
	EXIT_INTERRUPTED = 130,
};

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Print "cpipe: <location>: <message>" for `err` to stderr and release it. */
void cli_report(struct cp_err *err);
/* Print "cpipe <command>: <message>" plus a hint to --help; returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...) CP_PRINTF(2, 3);

/*
 * A `-p NAME=VALUE[,VALUE...]` setting (also `--NAME=VALUE`). A value with a
 * comma is a list, as in a tree file.
 */
struct cli_placeholder_setting {
	char *name;
	struct strvec values;
	bool multiple;
};
struct cli_placeholder_settings {
	struct cli_placeholder_setting *items;
	size_t count;
	size_t cap;
};

/* Parse "NAME=V1,V2" into `settings`; -1 with err when there is no '=' or no name. */
int cli_parse_placeholder(struct cli_placeholder_settings *settings, const char *text, struct cp_err *err);
/* Apply the settings to `tree` (each replaces the tree's own value). */
void cli_apply_placeholders(struct tree *tree, const struct cli_placeholder_settings *settings);
void cli_placeholder_settings_release(struct cli_placeholder_settings *settings);

/* Print glob_update's warnings, each saying how to list every reading; `who` is "cpipe" or "cpipe glob". */
void cli_print_glob_warnings(const char *who, const struct glob_result *result);

/* Read a tree file with the standard search path for sub-trees; prints the tree's warnings only. */
int cli_read_tree(const char *path, const char *data_dir, struct tree **out, struct cp_err *err);

/*
 * With CPIPE_TIMINGS=1 in the environment, print to stderr the wall time since
 * the previous call as the time `phase` took; a NULL `phase` only restarts the
 * clock. Otherwise do nothing. For profiling the phases of a command.
 */
void cli_phase_done(const char *phase);

/* Send stderr to /dev/null (for a step whose errors are not the user's business); returns what
 * cli_restore_stderr needs to undo it. */
int cli_silence_stderr(void);
void cli_restore_stderr(int saved);

/* Append `text` with tab, newline, CR and backslash escaped, for one-line-per-record output. */
void cli_add_escaped(struct strbuf *out, const char *text);

int cmd_tree(int argc, char **argv);
int cmd_glob(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_state(int argc, char **argv);
int cmd_init(int argc, char **argv);
/* The hidden `cpipe __unchanged FILE` a cluster job script runs for early cutoff (cmd_unchanged.c). */
int cmd_unchanged(int argc, char **argv);

/* The hidden `cpipe __complete CWORD WORD...` behind completions/cpipe.bash (see cmd_complete.c). */
int cli_complete(int argc, char **argv, const struct cli_command *commands, size_t command_count);

#endif
