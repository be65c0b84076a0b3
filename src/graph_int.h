/*
 * Private to the graph module: the state of one graph_build (the builder),
 * shared by graph.c, which assembles the jobs, and graph_existing.c, which
 * works out the combinations of values that exist. Nothing outside
 * src/graph*.c includes it.
 */
#ifndef CPIPE_GRAPH_INT_H
#define CPIPE_GRAPH_INT_H

#include "cpipe/graph.h"
#include "cpipe/template.h"
#include "graph_combos.h"

#include <stdbool.h>
#include <stddef.h>

/* What the graph needs to know about one template key, computed once. */
struct key_info {
	char *key;
	const char *path;       /* the tree template's text */
	struct strvec required; /* placeholder names outside [...] */
	struct strvec optional; /* names only inside [...] */
	struct strvec names;    /* required then optional, each once */
	struct strvec iterating; /* those of `names` with a list of values in the tree (set once, the tree is final) */
	struct template parsed; /* `path` split once, for filling it quickly */
	long producer;          /* recipe making this key, or -1 */
	struct combos *combos;  /* the combinations of its values that exist (graph_key_combos); NULL until asked */
	bool combos_shared;     /* `combos` is its producing recipe's own (same columns), not a copy */
};

/* What the graph needs to know about one recipe, computed once. */
struct recipe_info {
	struct strvec iterating; /* placeholder names it iterates over (before dropping singular ones), sorted */
	struct combos *combos;   /* the combinations it makes jobs for (graph_recipe_combos); NULL until asked */
	bool combining;          /* graph_recipe_combos is working on it: meeting it again is a cycle */
	struct tree_placeholder *values; /* its placeholders: values (graph_values.c), each a list */
	size_t value_count;
};

struct frame;

struct builder {
	const struct tree *tree;
	const struct recipe_set *set;
	const struct graph_request *request;
	struct graph *graph;
	struct key_info *keys;
	size_t key_count;
	size_t key_cap;
	struct strmap key_index;
	struct recipe_info *recipes;
	struct strvec stack;      /* job ids on the current path: cycles and messages (it stays short) */
	struct strmap skipped;    /* ids of jobs left out by skip_missing */
	size_t *dep_mark;         /* per job: 1 + the number of the job that last listed it as a dependency */
	size_t dep_mark_cap;
	struct frame **frames;    /* per depth of add_job's recursion: its scratch space */
	size_t frame_count;
	size_t frame_cap;
	const char **names;       /* placeholder names bound by jobs, in the graph's arena */
	size_t name_count;
	size_t name_cap;
	bool in_product;          /* the job being assembled iterates over the product of values */
	struct strvec combining;  /* recipes whose combinations are being worked out, outermost first */
	long context;             /* the recipe whose placeholders: values apply (graph_placeholder), or -1 */
	struct cp_err *err;
};

/* Whether raw input `path` of key `key` is there: in the glob result, else by lstat. */
bool graph_raw_input_exists(const struct builder *b, const char *key, const char *path);

/* The names of `names` that iterate (a list of values in the tree), added to `out` once each. */
void graph_iterating_names(const struct builder *b, const struct strvec *names, struct strvec *out);

/* The combinations of key `key_index`'s iterating placeholders that exist (kept in the key); NULL on error. */
struct combos *graph_key_combos(struct builder *b, size_t key_index);

/* The combinations recipe `recipe_index` makes jobs for (kept in the recipe); NULL on error (a cycle). */
struct combos *graph_recipe_combos(struct builder *b, size_t recipe_index);

/*
 * A recipe's own placeholder values (graph_values.c). Within b->context, such
 * a placeholder has the recipe's values (those the command line's filter lets
 * through, when it narrowed that placeholder) instead of the tree's.
 */
void graph_prepare_values(struct builder *b, size_t recipe_index);
void graph_release_values(struct recipe_info *info);
/* The placeholder `name` as the recipe in b->context sees it; NULL when neither it nor the tree defines it. */
const struct tree_placeholder *graph_placeholder(const struct builder *b, const char *name);
/* Whether recipe `recipe_index` takes `value` for `name`: it has no placeholders: values for it, or one matches. */
bool graph_value_allowed(const struct builder *b, size_t recipe_index, const char *name, const struct tree_value *value);
/* Whether row `row` of `c` has, for every placeholder with values of the recipe in b->context, one of them. */
bool graph_row_allowed(const struct builder *b, const struct combos *c, size_t row);
/* Drop the rows of *c that graph_row_allowed refuses (nothing to do for a recipe without values). */
void graph_filter_combos(const struct builder *b, struct combos **c);

#endif
