/*
 * A small study for the unit tests of the modules after the graph (plan,
 * sync): one subject's raw file in a temporary directory that is the working
 * directory (job paths are relative to the data root, as for the CLI), the
 * graph of make_a (raw -> a) and make_b (a -> b) for target b, and a real
 * state database. Included by one test source each: its functions are static.
 */
#ifndef CPIPE_TEST_CHAIN_STUDY_H
#define CPIPE_TEST_CHAIN_STUDY_H

#include "cpipe/graph.h"
#include "cpipe/state.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char chain_tree[] = "sub-{subject}\n"
				 "    raw.txt (raw)\n"
				 "    a.txt (a)\n"
				 "    b.txt (b)\n";

/* The recipes with make_b's command as `make_b_run` says. */
#define CHAIN_RECIPES(make_b_run) \
	"recipes:\n" \
	"  - name: make_a\n" \
	"    in: [raw]\n" \
	"    out: [a]\n" \
	"    run: cp {raw} {a}\n" \
	"  - name: make_b\n" \
	"    in: [a]\n" \
	"    out: [b]\n" \
	"    run: " make_b_run "\n"

static const char chain_recipes[] = CHAIN_RECIPES("cp {a} {b}");

enum { MAKE_A, MAKE_B }; /* graph order: dependencies first */

struct chain_study {
	char dir[64];
	char previous_dir[4096];
	struct tree *tree;
	struct recipe_set *set;
	struct graph *graph;
	struct glob_result globbed;
	struct state *state;
	struct cp_err err;
};

static void chain_write_file(const char *path, const char *text, time_t mtime)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	/* Fixed seconds: a change never depends on the clock's granularity. */
	struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void chain_free_graph(struct chain_study *study)
{
	graph_free(study->graph);
	study->graph = NULL;
	glob_result_release(&study->globbed);
	memset(&study->globbed, 0, sizeof(study->globbed));
	if (study->tree)
		tree_free(study->tree);
	study->tree = NULL;
	recipe_set_free(study->set);
	study->set = NULL;
}

/* (Re)build the graph of `recipes` for target b over the study on disk. */
static void chain_build(struct chain_study *study, const char *recipes)
{
	chain_free_graph(study);
	assert_int_equal(tree_parse_string(chain_tree, "test.tree", NULL, &study->tree, &study->err), 0);
	assert_int_equal(recipe_load_string(recipes, strlen(recipes), "cpipe.yaml", &study->set, &study->err), 0);
	struct strvec sources = STRVEC_INIT;
	graph_source_keys(study->set, &sources);
	struct glob_request request = {(const char *const *)sources.items, sources.count, ".", NULL, NULL, 0, false, NULL};
	assert_int_equal(glob_update(study->tree, &request, &study->globbed, &study->err), 0);
	strvec_release(&sources);
	const char *targets[] = {"b"};
	struct graph_request graph_request = {targets, 1, ".", false, &study->globbed, NULL, false, NULL, NULL, NULL};
	assert_int_equal(graph_build(study->tree, study->set, &graph_request, &study->graph, &study->err), 0);
	assert_int_equal(study->graph->count, 2);
	assert_string_equal(study->graph->jobs[MAKE_A].id, "make_a[subject=01]");
	assert_string_equal(study->graph->jobs[MAKE_B].id, "make_b[subject=01]");
}

/* A fresh state handle: reasons see the database as it was at open. */
static void chain_reopen_state(struct chain_study *study)
{
	state_close(study->state);
	study->state = NULL;
	assert_int_equal(state_open(".", &study->state, &study->err), 0);
}

static void chain_setup(struct chain_study *study)
{
	strcpy(study->dir, "/tmp/cpipe-chain-XXXXXX");
	assert_non_null(mkdtemp(study->dir));
	assert_non_null(getcwd(study->previous_dir, sizeof(study->previous_dir)));
	assert_int_equal(chdir(study->dir), 0);
	assert_int_equal(mkdir("sub-01", 0777), 0);
	chain_write_file("sub-01/raw.txt", "raw\n", 1000000);
	chain_build(study, chain_recipes);
	chain_reopen_state(study);
}

/* A cmocka setup for a fixture of `size` bytes whose first member is its struct chain_study. */
static int chain_setup_fixture(void **vstate, size_t size)
{
	struct chain_study *study = xcalloc(1, size);
	chain_setup(study);
	*vstate = study;
	return 0;
}

static int chain_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void chain_teardown(struct chain_study *study)
{
	state_close(study->state);
	chain_free_graph(study);
	cp_err_release(&study->err);
	assert_int_equal(chdir(study->previous_dir), 0);
	nftw(study->dir, chain_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
