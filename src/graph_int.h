/*
 * Private to the graph module: the state of one graph_build (the builder),
 * shared by graph.c, which assembles the jobs, graph_existing.c, which works
 * out the combinations of values that exist, and graph_command.c, which
 * works out what each recipe's jobs share for their commands. Nothing outside
 * src/graph*.c includes it.
 */
#ifndef CPIPE_GRAPH_INT_H
#define CPIPE_GRAPH_INT_H

#include "cpipe/graph.h"
#include "cpipe/template.h"
#include "graph_combos.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* What a name of a recipe's `run` stands for when the job has no path of it and does not bind it. */
struct graph_run_name {
	char *name;
	bool empty_key;     /* a key with no paths for the job (an absent optional input): nothing */
	bool has_values;    /* a placeholder with a value: `values`; neither: an error */
	char *values;       /* its values as the recipe sees them, each with its NUL */
	size_t values_len;
	size_t value_count;
};

struct graph_recipe {
	const struct recipe *recipe;
	char *definition;   /* recipe_definition_text */
	struct graph_run_name *names; /* each name recipe_expand_run asks graph_command.c's resolver for, once */
	size_t name_count, name_cap;
	bool unbound_fails; /* some name needs the job to bind it: each job's command is checked */
	bool checked;       /* a job's command was expanded once (graph_check_command) */
};

/* What the graph needs to know about one recipe, computed once. */
struct recipe_info {
	struct strvec iterating; /* placeholder names it iterates over (before dropping singular ones), sorted */
	struct combos *combos;   /* the combinations it makes jobs for (graph_recipe_combos); NULL until asked */
	bool combining;          /* graph_recipe_combos is working on it: meeting it again is a cycle */
	struct tree_placeholder *values; /* its placeholders: values (graph_values.c), each a list */
	size_t value_count;
	const char *const *binding_names; /* the names its last job bound, shared by the jobs binding the same */
	size_t binding_count;
	size_t *in_keys, *out_keys, *ref_keys; /* per key of the recipe's lists: its index in builder.keys */
};

struct frame;

/* A build-time map to job indexes (graph_index.c): by a job's id, or by any of its output paths. */
enum job_map_kind { JOB_MAP_ID, JOB_MAP_OUTPUT };
struct job_map {
	uint64_t *slots; /* per slot: the key's 32-bit hash, then 1 + the job's index; 0 is empty */
	size_t cap;
	size_t count;
	enum job_map_kind kind;
};

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
	size_t depth;             /* jobs on the current path: frames[0..depth) hold their ids (cycles, messages) */
	struct strmap skipped;    /* ids of jobs left out by skip_missing */
	size_t globbed_next;      /* the glob result's file after the raw input last found there */
	/* Kept while building only (at a million subjects they are 128 MB each): */
	struct job_map by_output; /* output path -> job index */
	struct job_map by_id;     /* job id -> job index */
	uint32_t *dep_mark;       /* per job: 1 + the number of the job that last listed it as a dependency */
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

/* The job `map` has for `key` (an id or an output path, as the map's kind), or -1. */
long graph_job_map_find(const struct builder *b, const struct job_map *map, const char *key);
/* Add job number `job` of the graph (committed) to b->by_id and b->by_output. */
void graph_index_job(struct builder *b, size_t job);
void graph_job_map_release(struct job_map *map);
/* Size b->by_id and b->by_output for the jobs `rows` combinations of recipe `r` will likely add. */
void graph_reserve_for(struct builder *b, size_t r, size_t rows);

/* Fill graph->recipes: per recipe, its definition and what its run's names stand for (graph_command.c). */
void graph_prepare_commands(struct builder *b);
void graph_release_recipes(struct graph *graph);
/*
 * Expand the command of `job` (not committed yet) once, as graph_job_command will, when that can
 * fail: for the first job of a recipe, or when a name needs a binding. 0, or -1 with `err`.
 */
int graph_check_command(struct graph_recipe *shared, const struct graph_job *job, struct cp_err *err);

/* Whether raw input `path` of key `key` is there: in the glob result, else by lstat. */
bool graph_raw_input_exists(struct builder *b, const char *key, const char *path);

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

/*
 * Which files of a key a target takes: `wants` is asked for the path of every file of every job
 * the key's recipe would make (see graph_request_key). For a target pattern.
 */
struct output_filter {
	bool (*wants)(void *context, const char *path);
	void *context;
};

/*
 * Request the files of template key `key` that `filter` wants (NULL: all of them): each makes its
 * job a target. A key no recipe makes is an error.
 */
int graph_request_key(struct builder *b, const char *key, const struct output_filter *filter);

/* Request the one file `target` (a path) of an `out` key; 1 (no error set) when it is a file of no `out` key. */
int graph_request_path(struct builder *b, const char *target);

/* Request the request's targets, or else the set's `default:`, else every `out` key (graph_targets.c). */
int graph_request_targets(struct builder *b);

#endif
