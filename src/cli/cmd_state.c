/*
 * `cpipe state check` and `cpipe state repair`: look at the state database
 * itself (its integrity, records that cannot be decoded, claims of runs that
 * died, recorded files that changed) and make its damage harmless. Both need
 * only the data root: the recipe file is read for `data:`, not the tree.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cpipe/recipe.h"
#include "cpipe/state.h"

static const char state_usage[] =
	"usage: cpipe state check|repair [-f FILE] [-C DIR] [--data DIR]\n"
	"\n"
	"  check   check .cpipe/state.db: PRAGMA integrity_check, job records that\n"
	"          cannot be decoded, claims left by runs that died, and every\n"
	"          recorded file against the disk (changed files are only listed:\n"
	"          their jobs run again anyway)\n"
	"  repair  mark the jobs whose record cannot be decoded, and those claimed\n"
	"          by runs that died, interrupted: they run again and are never\n"
	"          adopted. A database that fails the integrity check cannot be\n"
	"          repaired: move it away (see FILES in cpipe(1))\n"
	"\n"
	"  -f, --file FILE        recipe file (default: cpipe.yaml), for its data:\n"
	"  -C, --directory DIR    change to DIR first\n"
	"      --data DIR         the data root (default: the recipe file's data:)\n"
	"  -h, --help             show this help\n"
	"\n"
	"Exit status: 0 when the database is sound (check) or was repaired (repair),\n"
	"1 when check found damage or claims of dead runs, 2 when the database\n"
	"cannot be opened or on a usage error.\n";

struct check_counts {
	size_t damage; /* integrity, undecodable records, dead claims */
	size_t changed;
};

static int print_problem(const struct state_problem *problem, void *data)
{
	struct check_counts *counts = data;
	bool changed = problem->kind == STATE_PROBLEM_OUTPUT_CHANGED || problem->kind == STATE_PROBLEM_INPUT_CHANGED;
	struct strbuf line = STRBUF_INIT;
	strbuf_adds(&line, changed ? "changed    " : problem->kind == STATE_PROBLEM_DEAD_CLAIM ? "dead claim " : "damaged    ");
	if (problem->job_id)
		cli_add_escaped(&line, problem->job_id);
	else
		strbuf_adds(&line, "database");
	strbuf_adds(&line, ": ");
	if (changed) {
		strbuf_adds(&line, problem->kind == STATE_PROBLEM_OUTPUT_CHANGED ? "output " : "input ");
		cli_add_escaped(&line, problem->path);
		counts->changed++;
	} else {
		if (problem->kind == STATE_PROBLEM_DEAD_CLAIM)
			strbuf_adds(&line, "held by a run that died: ");
		strbuf_adds(&line, problem->text);
		counts->damage++;
	}
	strbuf_addch(&line, '\n');
	fwrite(line.buf, 1, line.len, stdout);
	strbuf_release(&line);
	return 0;
}

static int state_check_command(struct state *state)
{
	struct check_counts counts = {0, 0};
	struct cp_err err = CP_ERR_INIT;
	if (state_check(state, print_problem, &counts, &err) < 0) {
		cli_report(&err);
		return EXIT_USAGE;
	}
	printf("%zu problem%s, %zu changed file%s\n", counts.damage, counts.damage == 1 ? "" : "s", counts.changed,
	       counts.changed == 1 ? "" : "s");
	if (counts.damage)
		fprintf(stderr, "cpipe: 'cpipe state repair' makes damaged records and dead claims harmless; a damaged "
				"database file must be moved away (see FILES in cpipe(1))\n");
	return counts.damage ? EXIT_JOB_FAILED : EXIT_OK;
}

static int state_repair_command(struct state *state)
{
	struct cp_err err = CP_ERR_INIT;
	size_t repaired;
	if (state_repair(state, &repaired, &err) < 0) {
		cli_report(&err);
		return EXIT_USAGE;
	}
	printf("repaired %zu job record%s: they will run again\n", repaired, repaired == 1 ? "" : "s");
	return EXIT_OK;
}

enum { OPT_DATA = 256 };

int cmd_state(int argc, char **argv)
{
	static const struct option options[] = {
		{"file", required_argument, NULL, 'f'},
		{"directory", required_argument, NULL, 'C'},
		{"data", required_argument, NULL, OPT_DATA},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *recipe_file = RECIPE_DEFAULT_FILE, *directory = NULL, *data = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:C:h", options, NULL)) != -1) {
		switch (c) {
		case 'f': recipe_file = optarg; break;
		case 'C': directory = optarg; break;
		case OPT_DATA: data = optarg; break;
		case 'h': fputs(state_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("state", "unknown option");
		}
	}
	if (optind + 1 != argc || (strcmp(argv[optind], "check") != 0 && strcmp(argv[optind], "repair") != 0))
		return cli_usage_error("state", "expected 'check' or 'repair'");
	bool repair = !strcmp(argv[optind], "repair");
	if (directory && chdir(directory) < 0) {
		fprintf(stderr, "cpipe: cannot change to directory '%s'\n", directory);
		return EXIT_USAGE;
	}
	struct cp_err err = CP_ERR_INIT;
	struct recipe_set *set = NULL;
	if (!data && recipe_load(recipe_file, &set, &err) < 0) {
		cli_report(&err);
		return EXIT_USAGE;
	}
	struct state *state = NULL;
	int rc;
	if (state_open_for_check(data ? data : set->data, &state, &err) < 0) {
		cli_report(&err);
		rc = EXIT_USAGE;
	} else {
		rc = repair ? state_repair_command(state) : state_check_command(state);
	}
	state_close(state);
	recipe_set_free(set);
	return rc;
}
