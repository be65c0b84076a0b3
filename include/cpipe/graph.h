/*
 * graph: the jobs needed for the requested targets. Expands recipes over the
 * combinations of placeholder values that exist (by default: those of the
 * globbed files of its raw inputs, and for a derived input those its
 * producing recipe makes; a recipe with several inputs gets the combinations
 * for which every required input exists), or, for a recipe with `product:`,
 * over every combination of the tree's values (linked groups iterate
 * together). Batched placeholders are covered by a single job. Links every
 * input to the job making it, and orders the jobs so that each comes after
 * the jobs it depends on. Runs nothing; it only stats raw inputs that no
 * recipe makes, to tell a missing input from a present one.
 *
 * graph.c assembles the jobs (bindings, paths, inputs, dependency
 * edges, order) and holds graph_build;
 * graph_targets.c turns the targets into requests (keys, recipe names,
 * patterns over the output paths, paths); graph_existing.c works out which
 * combinations exist, whether a raw input is there and which keys are raw;
 * graph_jobs.c looks jobs up by id and frees the graph; graph_combos.c holds
 * the relation of combinations they join; graph_values.c a recipe's own
 * placeholder values (placeholders:); graph_command.c expands a job's command
 * when asked for (it is not stored); graph_dot.c writes DOT.
 */
#ifndef CPIPE_GRAPH_H
#define CPIPE_GRAPH_H

#include "cpipe/glob.h"
#include "cpipe/recipe.h"
#include "cpipe/tree.h"
#include "cpipe/util.h"

#include <stdbool.h>
#include <stdint.h>

/* The paths of one role of a job. */
struct graph_paths {
	char **items; /* NULL-terminated */
	size_t count;
};

/*
 * What every job of one recipe shares: the recipe, its definition text and
 * what the names of its `run` stand for when neither the job's paths nor its
 * bindings give them (graph_command.c fills it; private to the graph module).
 */
struct graph_recipe;

/*
 * What only some jobs have, kept out of the job record to keep that small:
 * the paths of `ref` keys, which key each path comes from when a role's paths
 * are not simply one per key in the recipe's order (a batched key, an absent
 * optional input), and which outputs are optional.
 */
struct graph_job_more {
	struct graph_paths refs;  /* every `ref` path */
	uint16_t *input_keys;     /* per input: index of its key in the recipe's `in`; NULL: input i is key i */
	uint16_t *output_keys;    /* per output: index into `out`; NULL: output i is key i */
	uint16_t *ref_keys;       /* per ref path: index into `ref`; NULL: path i is key i */
	bool *output_optional;    /* per output: may be missing after success; NULL: none may */
};

/*
 * One concrete job. Paths are relative to the data root unless the template is
 * absolute. Every string and array of a job lives in its graph's arena. The
 * record is kept small (a million-subject study has millions of jobs): the
 * command is not stored but expanded when asked for (graph_job_command),
 * arrays shared by the jobs of a recipe are stored once, and counts and
 * indexes are 32-bit. graph_cache.c writes it field by field: a new field
 * must be added there too (and GRAPH_CACHE_VERSION raised).
 */
struct graph_job {
	char *id;          /* "recipe" or "recipe[name=value,...]" over its iterating placeholders */
	const struct graph_recipe *shared; /* its recipe's shared part (definition, how `run` expands) */
	const char *const *binding_names; /* the iterating placeholders, sorted (shared by jobs binding the same) */
	char **binding_values;        /* their values ("" stands for an absent optional part) */
	struct graph_paths inputs;    /* every `in` path, in recipe order, batched keys expanded (a file a job
	                                 makes is that job's output string, not a copy) */
	struct graph_paths outputs;   /* every `out` path */
	uint32_t *deps;               /* indices of jobs making this job's inputs; all smaller than its own */
	const struct graph_job_more *more; /* NULL for the usual job: see struct graph_job_more */
	uint32_t recipe;              /* index into the recipe set */
	uint32_t binding_count;
	uint32_t dep_count;
	bool target;                  /* makes a file that was asked for (not only a dependency) */
	bool cutoff;                  /* its recipe's `cutoff:` (early cutoff allowed) */
};

/* Why a line of graph.skipped left a group (batch) job out: the CLI says how to make it anyway. */
enum graph_group_skip_reason {
	GRAPH_GROUP_NARROWED,         /* the command line narrowed a placeholder it covers */
	GRAPH_GROUP_INPUTS_MISSING,   /* some of its inputs are missing (skip_missing) */
};

struct graph_group_skip {
	size_t line; /* index into graph.skipped */
	enum graph_group_skip_reason reason;
};

struct graph {
	struct graph_job *jobs; /* dependencies first */
	size_t count;
	size_t cap;
	struct arena arena;     /* the jobs' strings and arrays: thousands of small pieces freed at once */
	struct graph_recipe *recipes; /* per recipe of the set: what its jobs share */
	size_t recipe_count;
	struct strvec skipped;  /* one line per requested job left out and why (skip_missing, a narrowed group) */
	struct graph_group_skip *group_skips; /* the lines of `skipped` about group jobs (they name no flag) */
	size_t group_skip_count, group_skip_cap;
	struct strvec left_out; /* one line per combination of a recipe's inputs that makes no job, and why */
	struct strvec warnings; /* e.g. a requested key with nothing to make because no raw file exists */
	struct strmap by_id;     /* job id -> job index (keys borrowed from the jobs); built by the first
	                            graph_find_job, not before: few commands look jobs up by id */
	void *block;            /* a graph from graph_cache_load: its jobs and their strings live in this block */
	const uint64_t *definition_hashes; /* a graph from graph_cache_load: per job, what the saver gave (in
	                                      the block); else NULL */
};

/*
 * A raw input that does not exist and no recipe makes, which graph_build
 * fails on unless skip_missing. Its message names no command-line flag: the
 * CLI adds what would help (skipping such jobs; linking `names` when the job
 * comes from the product of several placeholders' values).
 */
struct graph_missing_input {
	bool found;          /* graph_build failed on such an input */
	bool in_product;     /* the job iterates over every combination of `names`' values */
	struct strvec names; /* the placeholders the job iterates over; released by the caller */
};

struct graph_request {
	const char *const *targets; /* template keys, recipe names, patterns over the output paths
	                               ("sub-01/" then two stars) or paths; none = the set's `default:`, else every `out` key */
	size_t target_count;
	const char *data_root;      /* where raw inputs are looked for */
	bool skip_missing;          /* drop jobs whose raw inputs are missing instead of failing */
	const struct glob_result *globbed; /* the raw keys' files found by glob_update (may be NULL):
	                                      a raw input listed there exists without another stat; the
	                                      combinations that exist come from it (NULL: every recipe
	                                      iterates over the product of the tree's values) */
	const struct strvec *narrowed; /* placeholders the command line restricted (may be NULL): a
	                                  batch job over one of them is left out, unless partial_group */
	bool partial_group;         /* make batch jobs over the narrowed subset, and (with skip_missing)
	                               over the inputs that exist */
	const char *filter_text;    /* the command line's filters ("--subject 01"), named in messages; may be NULL */
	struct graph_missing_input *missing; /* filled when a missing raw input fails the build; may be NULL */
	struct glob_observations *observed; /* where to record the raw inputs stat'ed (a cache replays them); may be NULL */
};

/*
 * The template keys whose files must come from disk: every `in`/`ref` key no
 * recipe makes. The CLI globs these to learn the placeholder values.
 */
void graph_source_keys(const struct recipe_set *set, struct strvec *out);

/*
 * Build the graph for `request` from `tree` (placeholder values already set
 * from the tree, the command line and globbing) and `set` (already checked with
 * recipe_check). Returns 0 with *out owned by the caller (graph_free), or -1
 * with `err`: a target that names nothing or a pattern matching no file
 * (offering what is close), a placeholder a job needs without a value, two jobs making one file, a cycle
 * (naming its recipes), or a missing raw input that nothing makes (showing the
 * chain of jobs that needed it, and for a `product:` recipe that dropping
 * product: would fix it; request->missing gets the rest) unless skip_missing. A requested key with no combination to make is
 * no error: `warnings` says why, and so does a target that is a key and the
 * name of another recipe (the key wins).
 */
int graph_build(const struct tree *tree, const struct recipe_set *set, const struct graph_request *request,
		struct graph **out, struct cp_err *err);

void graph_free(struct graph *graph);

/* The index of the job named `id` in *index; false when there is none. */
bool graph_find_job(struct graph *graph, const char *id, size_t *index);

/*
 * Append job's command to `out`: its recipe's `run` with each {name} replaced
 * by the job's paths and values, shell-quoted (recipe_expand_run). The recipe
 * set the graph was built from must still be alive. graph_build expanded it
 * once to check it, so this cannot fail.
 */
void graph_job_command(const struct graph_job *job, struct strbuf *out);
/* The same in a new string, for the caller to free. */
char *graph_job_command_dup(const struct graph_job *job);

/* The definition text of job's recipe (recipe_definition_text): with its command, what "command changed" compares. */
const char *graph_job_definition(const struct graph_job *job);

/* Per output of `job`: whether it may be missing after success; NULL when none may (exec_job.output_optional). */
const bool *graph_job_output_optional(const struct graph_job *job);

/*
 * graph_cache.c: the graph of the last run, kept in a file (cpipe(1), FILES).
 *
 * graph_cache_save writes `graph`, what of `globbed` later steps read (keys,
 * paths, warnings) and what the walk and the build saw of the disk (`seen`)
 * under `key` (the caller's bytes: whatever the graph was built from besides
 * the disk). A directory read that changed less than 2 s before the walk
 * began (`walk_start_ns`, wall clock) could change again within one timestamp
 * tick unseen: then nothing is written (1). `definition_hashes` (may be NULL)
 * gives one number per job that the loaded graph hands back as its
 * definition_hashes: the caller's, for what the graph alone determines (the
 * plan's hash of each job's definition). Returns 0 when written, -1 when it
 * could not be.
 *
 * graph_cache_load gives the graph back (0) when the file holds `key` and
 * every observation is still true; `globbed` (empty before) then gets the
 * files with their key and path, the size and time of a fresh lstat where the
 * walk made one, and no bindings; their strings live in the graph's block, so
 * the graph must outlive them. `set` is the recipe set the graph was built
 * from (loaded again). Anything else (no file, another key, a change on disk,
 * a short or damaged file) returns -1 with nothing changed.
 */
int graph_cache_save(const char *path, const void *key, size_t key_length, const struct graph *graph,
		     const uint64_t *definition_hashes, const struct glob_result *globbed,
		     const struct glob_observations *seen, int64_t walk_start_ns);
int graph_cache_load(const char *path, const void *key, size_t key_length, const struct recipe_set *set,
		     struct graph **graph, struct glob_result *globbed);

/* Write the job graph in Graphviz DOT: one node per job, an edge from each dependency. */
void graph_to_dot(const struct graph *graph, struct strbuf *out);

#endif
