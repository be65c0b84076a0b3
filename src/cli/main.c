#include "cli.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const struct cli_command commands[] = {
	{"run", cmd_run, "make the targets: run every job that is not up to date"},
	{"plan", cmd_plan, "show what run would do, and why, without running anything"},
	{"wait", cmd_wait, "wait for the jobs submitted to a cluster to end, importing their results"},
	{"status", cmd_status, "count each key's files: up to date, stale, missing, failed"},
	{"log", cmd_log, "print the log of a job's last run"},
	{"clean", cmd_clean, "remove the outputs cpipe made (never a raw input) and their records"},
	{"forget", cmd_forget, "drop the state records of jobs (their outputs are then adopted or rebuilt)"},
	{"state", cmd_state, "check the state database (state check) or make its damage harmless (state repair)"},
	{"graph", cmd_graph, "print the job graph in Graphviz DOT"},
	{"tree", cmd_tree, "parse a .tree file and print its templates and placeholders"},
	{"glob", cmd_glob, "find the files of template keys on disk and their placeholder values"},
	{"init", cmd_init, "start a study: write a commented cpipe.yaml and study.tree (BIDS-aware)"},
};

static void print_help(FILE *out)
{
	fprintf(out, "usage: cpipe [--version] [--help] COMMAND [ARGS]\n\n"
		     "cpipe runs file-tree pipelines: declarative recipes over a .tree file.\n\n"
		     "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'cpipe COMMAND --help' describes one command; man cpipe(1) describes them all.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_help(stderr);
		return EXIT_USAGE;
	}
	/*
	 * Past the file size limit (ulimit -f) a write fails with EFBIG, which cpipe reports,
	 * instead of SIGXFSZ killing it without a word. Jobs get the default back.
	 */
	signal(SIGXFSZ, SIG_IGN);
#ifdef M_MMAP_THRESHOLD
	/*
	 * Pin glibc's mmap threshold at its default (128 KiB). Left dynamic, it rises to the size
	 * of the first big block freed (a grown array, the glob's file list), after which blocks
	 * that size come from the heap and stay in the process once freed. Pinned, each is its own
	 * mapping, returned at free: -1.3 MiB peak RSS on a no-op at 10,000 subjects
	 * (bench/FINDINGS.md, mem10k).
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
#ifdef M_ARENA_MAX
	/*
	 * One malloc arena for all threads: the state loader's thread (and the stat threads) would
	 * each get an arena of their own, whose free space the main thread never reuses. Small
	 * blocks still come lock-free from each thread's cache: -0.4 MiB peak RSS, same CPU, on a
	 * no-op at 10,000 subjects (bench/FINDINGS.md, mem10k).
	 */
	mallopt(M_ARENA_MAX, 1);
#endif
#ifdef M_MXFAST
	/*
	 * No fastbins: freed small blocks are merged at once instead of all together at the next
	 * big allocation, which on a no-op at 100,000 subjects was the first one `sync` made
	 * (12-15 ms of merging; 0.2 ms without), and is otherwise the same CPU
	 * (bench/FINDINGS.md, nooptail).
	 */
	mallopt(M_MXFAST, 0);
#endif
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		print_help(stdout);
		return EXIT_OK;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("cpipe %s\n", CPIPE_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(name, "__complete"))
		return cli_complete(argc - 1, argv + 1, commands, sizeof(commands) / sizeof(*commands));
	if (!strcmp(name, "__unchanged"))
		return cmd_unchanged(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++) {
		if (!strcmp(commands[i].name, name))
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "cpipe: '%s' is not a cpipe command; see 'cpipe --help'\n", name);
	return EXIT_USAGE;
}
