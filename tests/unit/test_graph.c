/* Unit tests of the graph module: jobs, edges, order, batching, links, cycles and missing inputs. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cpipe/glob.h"
#include "cpipe/graph.h"
#include "test_helpers.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char chain_tree[] = "sub-{subject}\n"
				 "    raw.txt (raw)\n"
				 "    a.txt (a)\n"
				 "    b.txt (b)\n"
				 "group.txt (group)\n";

static const char chain_recipes[] = "recipes:\n"
				    "  - name: make_a\n"
				    "    in: [raw]\n"
				    "    out: [a]\n"
				    "    run: cp {raw} {a}\n"
				    "  - name: make_b\n"
				    "    in: [a]\n"
				    "    out: [b]\n"
				    "    run: cp {a} {b}\n"
				    "  - name: gather\n"
				    "    in: [b]\n"
				    "    out: [group]\n"
				    "    batch: [subject]\n"
				    "    run: cat {b} > {group}\n";

struct fixture {
	char dir[64];
	struct tree *tree;
	struct recipe_set *set;
	struct graph *graph;
	struct glob_result globbed;
	struct graph_missing_input missing; /* what the last build said of a missing raw input */
	struct cp_err err;
};

static void make_file(const char *dir, const char *path)
{
	char full[512];
	snprintf(full, sizeof(full), "%s/%s", dir, path);
	/* Create the parents one by one: names may hold any character. */
	for (char *slash = strchr(full + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(full, 0777);
		*slash = '/';
	}
	write_text(full, "x\n");
}

/* Parse, glob the raw key, and build the graph for `targets`. Returns graph_build's result. */
static int build(struct fixture *fx, const char *tree_text, const char *recipe_text, const char *const *targets,
		 size_t target_count, bool skip_missing)
{
	assert_int_equal(tree_parse_string(tree_text, "test.tree", NULL, &fx->tree, &fx->err), 0);
	assert_int_equal(recipe_load_string(recipe_text, strlen(recipe_text), "cpipe.yaml", &fx->set, &fx->err), 0);
	struct strvec sources = STRVEC_INIT;
	graph_source_keys(fx->set, &sources);
	struct glob_request request = {(const char *const *)sources.items, sources.count, fx->dir, NULL, NULL, 0, false, NULL};
	assert_int_equal(glob_update(fx->tree, &request, &fx->globbed, &fx->err), 0);
	strvec_release(&sources);
	/* Half the tests see the glob's list of raw inputs, half find them with stat alone. */
	struct graph_request graph_request = {targets, target_count, fx->dir, skip_missing,
					      target_count && strlen(targets[0]) % 2 ? &fx->globbed : NULL, NULL, false,
					      NULL, &fx->missing, NULL};
	return graph_build(fx->tree, fx->set, &graph_request, &fx->graph, &fx->err);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	strcpy(fx->dir, "/tmp/cpipe-graph-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(remove_tree(fx->dir), 0);
	graph_free(fx->graph);
	glob_result_release(&fx->globbed);
	strvec_release(&fx->missing.names);
	if (fx->tree)
		tree_free(fx->tree);
	recipe_set_free(fx->set);
	cp_err_release(&fx->err);
	free(fx);
	return 0;
}

static long job_index(const struct graph *graph, const char *id)
{
	for (size_t i = 0; i < graph->count; i++)
		if (!strcmp(graph->jobs[i].id, id))
			return (long)i;
	return -1;
}

static bool depends_on(const struct graph *graph, const char *job, const char *dep)
{
	long j = job_index(graph, job), d = job_index(graph, dep);
	assert_true(j >= 0 && d >= 0);
	for (size_t k = 0; k < graph->jobs[j].dep_count; k++)
		if (graph->jobs[j].deps[k] == (size_t)d)
			return true;
	return false;
}

static void test_chain_and_group(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	make_file(fx->dir, "sub-02/raw.txt");
	const char *targets[] = {"group"};
	assert_int_equal(build(fx, chain_tree, chain_recipes, targets, 1, false), 0);
	const struct graph *g = fx->graph;
	assert_int_equal(g->count, 5);
	assert_true(depends_on(g, "make_b[subject=01]", "make_a[subject=01]"));
	assert_true(depends_on(g, "gather", "make_b[subject=01]"));
	assert_true(depends_on(g, "gather", "make_b[subject=02]"));
	assert_false(depends_on(g, "make_b[subject=02]", "make_a[subject=01]"));
	/* Dependencies come first, and only the group job is a target. */
	for (size_t i = 0; i < g->count; i++) {
		for (size_t k = 0; k < g->jobs[i].dep_count; k++)
			assert_true(g->jobs[i].deps[k] < i);
		assert_int_equal(g->jobs[i].target, !strcmp(g->jobs[i].id, "gather"));
	}
	/* The batched key expands to every subject's path, each quoted. */
	const struct graph_job *gather = &g->jobs[job_index(g, "gather")];
	char *command = graph_job_command_dup(gather);
	assert_string_equal(command, "cat 'sub-01/b.txt' 'sub-02/b.txt' > 'group.txt'");
	free(command);
	assert_int_equal(gather->inputs.count, 2);
	assert_string_equal(gather->outputs.items[0], "group.txt");
}

/* graph_cache_save then graph_cache_load: the same jobs, strings, edges and shared pointers. */
static void test_cache_round_trip(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	make_file(fx->dir, "sub-02/raw.txt");
	assert_int_equal(tree_parse_string(chain_tree, "test.tree", NULL, &fx->tree, &fx->err), 0);
	assert_int_equal(recipe_load_string(chain_recipes, strlen(chain_recipes), "cpipe.yaml", &fx->set, &fx->err), 0);
	struct glob_observations seen = GLOB_OBSERVATIONS_INIT;
	struct glob_request glob = {(const char *const[]){"raw"}, 1, fx->dir, NULL, NULL, 0, false, &seen};
	assert_int_equal(glob_update(fx->tree, &glob, &fx->globbed, &fx->err), 0);
	/* The subjects' directory read, each raw.txt looked up by name. */
	assert_int_equal(seen.count, 3);
	struct graph_request request = {(const char *const[]){"group"}, 1, fx->dir, false, &fx->globbed, NULL, false,
					NULL, NULL, &seen};
	assert_int_equal(graph_build(fx->tree, fx->set, &request, &fx->graph, &fx->err), 0);
	char path[128];
	/* Beside the directory, not in it: writing it there would change the directory the glob read. */
	snprintf(path, sizeof(path), "%s.cache", fx->dir);
	/* Not written while the directory read is younger than the walk's start minus 2 s. */
	assert_int_equal(graph_cache_save(path, "key", 3, fx->graph, NULL, &fx->globbed, &seen, 0), 1);
	/* The caller's number per job comes back with the loaded graph; a built one has none. */
	uint64_t *hashes = xcalloc(fx->graph->count + 1, sizeof(*hashes));
	for (size_t i = 0; i < fx->graph->count; i++)
		hashes[i] = 0x9E3779B97F4A7C15ULL * (i + 1);
	assert_null(fx->graph->definition_hashes);
	assert_int_equal(graph_cache_save(path, "key", 3, fx->graph, hashes, &fx->globbed, &seen, INT64_MAX / 2), 0);
	glob_observations_release(&seen);

	struct graph *loaded = NULL;
	struct glob_result files = GLOB_RESULT_INIT;
	assert_int_equal(graph_cache_load(path, "kez", 3, fx->set, &loaded, &files), -1);
	assert_int_equal(graph_cache_load(path, "key", 3, fx->set, &loaded, &files), 0);
	const struct graph *g = fx->graph;
	assert_int_equal(loaded->count, g->count);
	assert_non_null(loaded->definition_hashes);
	for (size_t i = 0; i < g->count; i++)
		assert_true(loaded->definition_hashes[i] == hashes[i]);
	free(hashes);
	for (size_t i = 0; i < g->count; i++) {
		const struct graph_job *a = &g->jobs[i], *b = &loaded->jobs[i];
		assert_string_equal(a->id, b->id);
		assert_int_equal(a->binding_count, b->binding_count);
		for (size_t k = 0; k < a->binding_count; k++) {
			assert_string_equal(a->binding_names[k], b->binding_names[k]);
			assert_string_equal(a->binding_values[k], b->binding_values[k]);
		}
		assert_int_equal(a->inputs.count, b->inputs.count);
		for (size_t k = 0; k < a->inputs.count; k++)
			assert_string_equal(a->inputs.items[k], b->inputs.items[k]);
		assert_null(b->inputs.items[b->inputs.count]);
		assert_int_equal(a->dep_count, b->dep_count);
		for (size_t k = 0; k < a->dep_count; k++) {
			assert_int_equal(a->deps[k], b->deps[k]);
			/* A made input is its producer's output string, in the loaded graph too. */
			const struct graph_job *producer = &loaded->jobs[b->deps[k]];
			bool shared = false;
			for (size_t m = 0; m < b->inputs.count; m++)
				shared = shared || b->inputs.items[m] == producer->outputs.items[0];
			assert_true(shared);
		}
		assert_int_equal(a->target, b->target);
		char *before = graph_job_command_dup(a), *after = graph_job_command_dup(b);
		assert_string_equal(before, after);
		free(before);
		free(after);
	}
	/* The raw files, with the size the replay's lstat found. */
	assert_int_equal(files.count, fx->globbed.count);
	for (size_t i = 0; i < files.count; i++) {
		assert_string_equal(files.files[i].path, fx->globbed.files[i].path);
		assert_int_equal(files.files[i].size, 2);
	}
	glob_result_release(&files);
	graph_free(loaded);

	/* One byte changed: the checksum refuses it. */
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, -9, SEEK_END);
	fputc('!', f);
	fclose(f);
	loaded = NULL;
	assert_int_equal(graph_cache_load(path, "key", 3, fx->set, &loaded, &files), -1);
	assert_null(loaded);
	assert_int_equal(files.count, 0);
	assert_int_equal(unlink(path), 0);
}

static void test_target_path_and_singular_identity(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	make_file(fx->dir, "sub-02/raw.txt");
	const char *targets[] = {"sub-02/b.txt"};
	assert_int_equal(build(fx, chain_tree, chain_recipes, targets, 1, false), 0);
	assert_int_equal(fx->graph->count, 2);
	assert_true(job_index(fx->graph, "make_b[subject=02]") >= 0);
	assert_true(fx->graph->jobs[job_index(fx->graph, "make_b[subject=02]")].target);
}

static void test_singular_value_keeps_job_id(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	char tree_text[256];
	snprintf(tree_text, sizeof(tree_text), "subject = 01\n%s", chain_tree);
	const char *targets[] = {"b"};
	assert_int_equal(build(fx, tree_text, chain_recipes, targets, 1, false), 0);
	/* The same id as in a run over many subjects, so the state database recognises the job. */
	assert_true(job_index(fx->graph, "make_b[subject=01]") >= 0);
}

/* The chain recipes iterating over the product of values (a missing input is an error), or not. */
static char *chain_with_product(bool product)
{
	return xasprintf("product: %s\n%s", product ? "true" : "false", chain_recipes);
}

static void test_missing_input_shows_chain(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	const char *tree_text = "subject = 01, 02\nsub-{subject}\n    raw.txt (raw)\n    a.txt (a)\n    b.txt (b)\n"
				"group.txt (group)\n";
	const char *targets[] = {"group"};
	char *recipes = chain_with_product(true);
	assert_int_equal(build(fx, tree_text, recipes, targets, 1, false), -1);
	free(recipes);
	assert_non_null(strstr(fx->err.message, "sub-02/raw.txt"));
	assert_non_null(strstr(fx->err.message, "make_a[subject=02] <- make_b[subject=02] <- gather"));
	assert_non_null(strstr(fx->err.message, "drop product: to make jobs only for the files that exist"));
	/* Flags are the command line's to suggest: the library says what they would need. */
	assert_null(strstr(fx->err.message, "--"));
	assert_true(fx->missing.found);
	assert_true(fx->missing.in_product);
	assert_int_equal(fx->missing.names.count, 1);
	assert_string_equal(fx->missing.names.items[0], "subject");
}

/*
 * By default jobs come from the files that exist: the raw files' combinations, carried
 * through make_a and make_b to the group job, which lists only what exists; plan -v's lines say
 * what a recipe with two inputs left out.
 */
static void test_jobs_from_existing_files(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/ses-1/raw.txt");
	make_file(fx->dir, "sub-01/ses-2/raw.txt");
	make_file(fx->dir, "sub-02/ses-1/raw.txt");
	make_file(fx->dir, "sub-01/ses-1/other.txt");
	make_file(fx->dir, "sub-03/ses-1/other.txt");
	const char *tree_text = "sub-{subject}/ses-{session}\n    raw.txt (raw)\n    other.txt (other)\n    a.txt (a)\n"
				"    b.txt (b)\n    both.txt (both)\ngroup.txt (group)\n";
	char *recipes = xasprintf("%.*s    batch: [subject, session]\n    run: cat {b} > {group}\n"
				  "  - {name: pair, in: [raw, other], out: [both], run: 'cat {raw} {other} > {both}'}\n",
				  (int)(strstr(chain_recipes, "    batch:") - chain_recipes), chain_recipes);
	/* "group" has an odd length: build() hands the graph the glob's result. */
	const char *targets[] = {"group", "both"};
	int built = build(fx, tree_text, recipes, targets, 2, false);
	if (built)
		print_error("%s\n", fx->err.message);
	assert_int_equal(built, 0);
	free(recipes);
	/* 3 make_a, 3 make_b, the group and one pair: not 3 subjects x 2 sessions. */
	assert_int_equal(fx->graph->count, 8);
	assert_true(job_index(fx->graph, "make_b[session=2,subject=01]") >= 0);
	assert_int_equal(job_index(fx->graph, "make_b[session=2,subject=02]"), -1);
	long gather = job_index(fx->graph, "gather");
	assert_true(gather >= 0);
	assert_int_equal(fx->graph->jobs[gather].inputs.count, 3);
	assert_int_equal(fx->graph->jobs[gather].dep_count, 3);
	assert_true(job_index(fx->graph, "pair[session=1,subject=01]") >= 0);
	assert_int_equal(fx->graph->left_out.count, 3);
	assert_string_equal(fx->graph->left_out.items[0],
			    "pair: no job for session=2, subject=01: a raw file exists for it, but no other file");
	assert_string_equal(fx->graph->left_out.items[2],
			    "pair: no job for session=1, subject=03: a other file exists for it, but no raw file");
	assert_int_equal(fx->graph->skipped.count, 0);
	assert_int_equal(fx->graph->warnings.count, 0);
}

/* Placeholders no input has (vars) multiply the existing combinations; linked ones go row by row. */
static void test_vars_cross_existing(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	make_file(fx->dir, "sub-02/raw.txt");
	const char *tree_text = "low = 1, 2\nhigh = 8, 9\n&LINK low, high\nkind = a, b\n"
				"sub-{subject}\n    raw.txt (raw)\n    out_{low}_{high}_{kind}.txt (out)\n";
	const char *recipes = "recipes:\n  - {name: cut, in: [raw], out: [out], vars: [low, high, kind], "
			      "run: 'cp {raw} {out}'}\n";
	const char *targets[] = {"out"};
	assert_int_equal(build(fx, tree_text, recipes, targets, 1, false), 0);
	/* 2 subjects x 2 linked rows x 2 kinds, not x 4 (low, high) pairs. */
	assert_int_equal(fx->graph->count, 8);
	assert_true(job_index(fx->graph, "cut[high=9,kind=b,low=2,subject=02]") >= 0);
	assert_int_equal(job_index(fx->graph, "cut[high=9,kind=b,low=1,subject=02]"), -1);
}

/*
 * A recipe's placeholders: values replace the tree's for it alone: its jobs (from the files that
 * exist, or their product), a batch job's files, and what its producers make; a consumer needing
 * another value finds no producer for it.
 */
static void test_recipe_values(void **state)
{
	struct fixture *fx = *state;
	for (int s = 1; s <= 4; s++) {
		char path[32];
		snprintf(path, sizeof(path), "sub-0%d/raw.txt", s);
		make_file(fx->dir, path);
	}
	const char *tree_text = "sub-{subject}\n    raw.txt (raw)\n    a.txt (a)\n    b_{fwhm}.txt (b)\n"
				"    c_{fwhm}.txt (c)\n    u.txt (u)\ngroup.txt (group)\n";
	const char *recipes = "recipes:\n"
			      "  - {name: make_a, in: [raw], out: [a], run: 'cp {raw} {a}'}\n"
			      "  - name: make_b\n    in: [a]\n    out: [b]\n"
			      "    placeholders: {subject: ['01', '03'], fwhm: [4, 8]}\n    run: echo {fwhm} > {b}\n"
			      "  - {name: gather, in: [a], out: [group], batch: [subject], run: 'cat {a} > {group}',\n"
			      "     placeholders: {subject: ['02', '03']}}\n"
			      "  - {name: make_c, in: [b], out: [c], run: 'cp {b} {c}', placeholders: {fwhm: [4]}}\n"
			      "  - {name: use, in: [raw, group], out: [u], run: 'cat {raw} {group} > {u}'}\n";
	/* Odd lengths: jobs from the files that exist. Every subject's u reads the one group file. */
	const char *targets[] = {"b", "group", "u"};
	int built = build(fx, tree_text, recipes, targets, 3, false);
	if (built)
		print_error("%s\n", fx->err.message);
	assert_int_equal(built, 0);
	/* make_b: 2 subjects x 2 fwhm; make_a for 01, 02, 03; one gather; use for 4 subjects. */
	assert_int_equal(fx->graph->count, 12);
	assert_true(depends_on(fx->graph, "use[subject=01]", "gather"));
	assert_true(job_index(fx->graph, "make_b[fwhm=8,subject=03]") >= 0);
	assert_int_equal(job_index(fx->graph, "make_b[fwhm=4,subject=02]"), -1);
	assert_int_equal(job_index(fx->graph, "make_a[subject=04]"), -1);
	long gather = job_index(fx->graph, "gather");
	assert_true(gather >= 0);
	assert_int_equal(fx->graph->jobs[gather].inputs.count, 2);
	assert_string_equal(fx->graph->jobs[gather].inputs.items[0], "sub-02/a.txt");
	graph_free(fx->graph);
	fx->graph = NULL;
	glob_result_release(&fx->globbed);
	tree_free(fx->tree);
	recipe_set_free(fx->set);

	/* An even length: the product of values. make_c (fwhm 4 only) for subject 02 needs a b that
	 * make_b does not make for 02. */
	const char *product_targets[] = {"cc"};
	const char *renamed = "    c_{fwhm}.txt (cc)\n";
	char *tree2 = xasprintf("%.*s%sgroup.txt (group)\n", (int)(strstr(tree_text, "    c_") - tree_text), tree_text,
				renamed);
	char *recipes2 = xasprintf("%.*sout: [cc], run: 'cp {b} {cc}', placeholders: {fwhm: [4]}}\n",
				   (int)(strstr(recipes, "out: [c]") - recipes), recipes);
	assert_int_equal(build(fx, tree2, recipes2, product_targets, 1, false), -1);
	assert_non_null(strstr(fx->err.message, "input 'sub-02/b_4.txt' (key b) does not exist and no recipe makes it "
						"(recipe 'make_b' makes it only for its placeholders: values)"));
	free(tree2);
	free(recipes2);
}

/* A group job over a placeholder the command line narrowed is left out, unless partial_group. */
static void test_narrowed_group_left_out(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	make_file(fx->dir, "sub-02/raw.txt");
	const char *tree_text = "subject = 01\nsub-{subject}\n    raw.txt (raw)\n    a.txt (a)\n    b.txt (b)\n"
				"group.txt (group)\n";
	struct strvec narrowed = STRVEC_INIT;
	strvec_push(&narrowed, "subject");
	assert_int_equal(tree_parse_string(tree_text, "test.tree", NULL, &fx->tree, &fx->err), 0);
	assert_int_equal(recipe_load_string(chain_recipes, strlen(chain_recipes), "cpipe.yaml", &fx->set, &fx->err), 0);
	struct glob_request glob = {(const char *const[]){"raw"}, 1, fx->dir, NULL, NULL, 0, false, NULL};
	assert_int_equal(glob_update(fx->tree, &glob, &fx->globbed, &fx->err), 0);
	for (int partial = 0; partial < 2; partial++) {
		struct graph_request request = {NULL, 0, fx->dir, false, &fx->globbed, &narrowed, partial,
						"--subject 01", NULL, NULL};
		assert_int_equal(graph_build(fx->tree, fx->set, &request, &fx->graph, &fx->err), 0);
		assert_int_equal(job_index(fx->graph, "gather") >= 0, partial);
		assert_true(job_index(fx->graph, "make_b[subject=01]") >= 0);
		assert_int_equal(fx->graph->skipped.count, !partial);
		/* The CLI adds how to make it anyway (--partial-group): the line is marked for it. */
		assert_int_equal(fx->graph->group_skip_count, !partial);
		if (!partial) {
			assert_string_equal(fx->graph->skipped.items[0],
					    "gather: left out: it covers every subject, and the command line "
					    "(--subject 01) narrows subject to a subset; its output would silently "
					    "cover part of the study");
			assert_int_equal(fx->graph->group_skips[0].line, 0);
			assert_int_equal(fx->graph->group_skips[0].reason, GRAPH_GROUP_NARROWED);
		}
		graph_free(fx->graph);
		fx->graph = NULL;
	}
	strvec_release(&narrowed);
}

/* A requested key whose raw input has no file: a warning, not an error. */
static void test_nothing_to_make_warns(void **state)
{
	struct fixture *fx = *state;
	const char *tree_text = "sub-{subject}\n    raw.txt (raw)\n    a.txt (a)\n    b.txt (b)\ngroup.txt (group)\n";
	const char *targets[] = {"b"};
	assert_int_equal(build(fx, tree_text, chain_recipes, targets, 1, false), 0);
	assert_int_equal(fx->graph->count, 0);
	assert_int_equal(fx->graph->warnings.count, 1);
	assert_string_equal(fx->graph->warnings.items[0], "b: nothing to make: no raw file was found");
}

static void test_skip_missing(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	const char *tree_text = "subject = 01, 02\nsub-{subject}\n    raw.txt (raw)\n    a.txt (a)\n    b.txt (b)\n"
				"group.txt (group)\n";
	const char *targets[] = {"b"};
	char *recipes = chain_with_product(true);
	assert_int_equal(build(fx, tree_text, recipes, targets, 1, true), 0);
	free(recipes);
	assert_int_equal(fx->graph->count, 2);
	assert_true(job_index(fx->graph, "make_b[subject=01]") >= 0);
	assert_int_equal(job_index(fx->graph, "make_b[subject=02]"), -1);
	assert_int_equal(fx->graph->skipped.count, 1);
}

/* Two jobs making one file: found through the map of outputs, each job named (the even target: stat, no glob). */
static void test_two_jobs_one_output(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	make_file(fx->dir, "sub-02/raw.txt");
	const char *tree_text = "subject = 01, 02\nsub-{subject}\n    raw.txt (raw)\n    a.txt (a)\nshared.txt (shared)\n"
				"sub-{subject}\n    b.txt (bb)\n";
	const char *recipes = "recipes:\n"
			      "  - name: first\n    in: [raw]\n    out: [a]\n    run: cp {raw} {a}\n"
			      "  - name: squash\n    in: [a]\n    out: [shared, bb]\n    run: cp {a} {shared}; cp {a} {bb}\n";
	const char *targets[] = {"bb"};
	assert_int_equal(build(fx, tree_text, recipes, targets, 1, false), -1);
	assert_non_null(strstr(fx->err.message, "jobs squash[subject=01] and squash[subject=02] both make 'shared.txt'"));
}

static void test_cycle(void **state)
{
	struct fixture *fx = *state;
	const char *tree_text = "x.txt (x)\ny.txt (y)\n";
	const char *recipes = "recipes:\n"
			      "  - name: forward\n    in: [x]\n    out: [y]\n    run: cp {x} {y}\n"
			      "  - name: backward\n    in: [y]\n    out: [x]\n    run: cp {y} {x}\n";
	const char *targets[] = {"y"};
	assert_int_equal(build(fx, tree_text, recipes, targets, 1, false), -1);
	assert_non_null(strstr(fx->err.message, "cycle"));
	assert_non_null(strstr(fx->err.message, "forward"));
	assert_non_null(strstr(fx->err.message, "backward"));
}

static void test_linked_placeholders_iterate_together(void **state)
{
	struct fixture *fx = *state;
	const char *tree_text = "A = 1, 2\nB = x, y\n&LINK A, B\n{A}_{B}.in (raw)\n{A}_{B}.out (done)\n";
	const char *recipes = "recipes:\n  - name: step\n    in: [raw]\n    out: [done]\n    run: cp {raw} {done}\n";
	make_file(fx->dir, "1_x.in");
	make_file(fx->dir, "2_y.in");
	const char *targets[] = {"done"};
	assert_int_equal(build(fx, tree_text, recipes, targets, 1, false), 0);
	assert_int_equal(fx->graph->count, 2);
	assert_true(job_index(fx->graph, "step[A=1,B=x]") >= 0);
	assert_true(job_index(fx->graph, "step[A=2,B=y]") >= 0);
}

static void test_hostile_values_are_quoted(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-$(rm -rf x)'q/raw.txt");
	const char *targets[] = {"a"};
	assert_int_equal(build(fx, chain_tree, chain_recipes, targets, 1, false), 0);
	assert_int_equal(fx->graph->count, 1);
	char *command = graph_job_command_dup(&fx->graph->jobs[0]);
	assert_string_equal(command, "cp 'sub-$(rm -rf x)'\\''q/raw.txt' 'sub-$(rm -rf x)'\\''q/a.txt'");
	free(command);
}

static void test_unknown_target(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	const char *targets[] = {"nothing/here.txt"};
	assert_int_equal(build(fx, chain_tree, chain_recipes, targets, 1, false), -1);
	assert_non_null(strstr(fx->err.message, "nothing/here.txt"));
}

/* How many jobs of `graph` are targets, and whether each job whose id starts with `prefix` is one. */
static size_t count_targets(const struct graph *graph, const char *prefix)
{
	size_t targets = 0;
	for (size_t i = 0; i < graph->count; i++) {
		targets += graph->jobs[i].target;
		assert_int_equal(graph->jobs[i].target, !strncmp(graph->jobs[i].id, prefix, strlen(prefix)));
	}
	return targets;
}

static void test_pattern_target(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	make_file(fx->dir, "sub-02/raw.txt");
	make_file(fx->dir, "sub-03/raw.txt");
	/* An odd length: the jobs come from the globbed files. */
	const char *targets[] = {"sub-0[23]/b.txt"};
	assert_int_equal(build(fx, chain_tree, chain_recipes, targets, 1, false), 0);
	assert_int_equal(fx->graph->count, 4);
	assert_int_equal(count_targets(fx->graph, "make_b["), 2);
	assert_true(job_index(fx->graph, "make_b[subject=03]") >= 0);
	assert_true(job_index(fx->graph, "make_a[subject=01]") < 0);
}

/* Build the chain for `target` over subjects 01 and 02: all four jobs, `target_jobs` of them targets. */
static void build_two_subjects(struct fixture *fx, const char *target, const char *prefix, size_t target_jobs)
{
	make_file(fx->dir, "sub-01/raw.txt");
	make_file(fx->dir, "sub-02/raw.txt");
	const char *targets[] = {target};
	assert_int_equal(build(fx, chain_tree, chain_recipes, targets, 1, false), 0);
	assert_int_equal(fx->graph->count, 4);
	assert_int_equal(count_targets(fx->graph, prefix), target_jobs);
}

static void test_pattern_target_over_product(void **state)
{
	/* An even length: every combination of the tree's values; `**` reaches every directory. */
	build_two_subjects(*state, "**/?.txt", "make_", 4);
}

static void test_recipe_target(void **state)
{
	struct fixture *fx = *state;
	build_two_subjects(fx, "make_b", "make_b[", 2);
	assert_int_equal(fx->graph->warnings.count, 0);
}

static void test_pattern_matching_nothing_suggests(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	const char *targets[] = {"sub-1/*"};
	assert_int_equal(build(fx, chain_tree, chain_recipes, targets, 1, false), -1);
	assert_non_null(strstr(fx->err.message, "matches none of the 3 files the recipes make; did you mean "
						"sub-01/a.txt or sub-01/b.txt?"));
}

static void test_dot(void **state)
{
	struct fixture *fx = *state;
	make_file(fx->dir, "sub-01/raw.txt");
	const char *targets[] = {"b"};
	assert_int_equal(build(fx, chain_tree, chain_recipes, targets, 1, false), 0);
	struct strbuf dot = STRBUF_INIT;
	graph_to_dot(fx->graph, &dot);
	assert_non_null(strstr(dot.buf, "digraph"));
	assert_non_null(strstr(dot.buf, "j0 -> j1"));
	strbuf_release(&dot);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain_and_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_target_path_and_singular_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_singular_value_keeps_job_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_input_shows_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_skip_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jobs_from_existing_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vars_cross_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipe_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_narrowed_group_left_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_to_make_warns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_jobs_one_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linked_placeholders_iterate_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_values_are_quoted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pattern_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pattern_target_over_product, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipe_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pattern_matching_nothing_suggests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
