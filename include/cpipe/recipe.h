/*
 * recipe: the study's recipe file (YAML, read with libcyaml; format in
 * man/cpipe-recipes.5). Loads it into recipe structs, validates what can be
 * validated without the tree, and (through recipe_check and a small view the
 * caller supplies) what needs the tree's keys and placeholders. Owns the
 * `{name}` syntax of `run` commands. Knows nothing of the tree's internals.
 *
 * Every error is located: err->file is the recipe file, err->line the 1-based
 * line, and the message names the field ("recipe 'brain': resources.minutes:
 * must be a positive number").
 *
 * Sources: src/recipe.c (building and validating the set, loading, lookups,
 * identity), src/recipe_yaml.c (the libyaml and libcyaml passes with every
 * node's line), src/recipe_run.c (the run string), src/recipe_check.c
 * (recipe_check), src/recipe_shell.c (a sh lexer), sharing src/recipe_int.h.
 */
#ifndef CPIPE_RECIPE_H
#define CPIPE_RECIPE_H

#include "cpipe/util.h"

/* The recipe file looked for when none is named. */
#define RECIPE_DEFAULT_FILE "cpipe.yaml"

/*
 * What a job asks of the machine or the scheduler. Zero / NULL / empty means
 * "not given": the backend uses its default. Values given are always > 0.
 * A recipe's unset fields are filled from the file's top-level `resources:`.
 * This is the loaded form, owning its strings; exec takes the same fields as
 * a struct exec_resources that borrows them (the CLI copies one to the other,
 * as exec knows nothing of recipes).
 */
/* The cluster backends a recipe may give its own scheduler arguments (indexes backend_extra). */
enum recipe_backend { RECIPE_BACKEND_SLURM, RECIPE_BACKEND_SGE, RECIPE_BACKEND_FSL_SUB, RECIPE_BACKEND_COUNT };

struct recipe_resources {
	long minutes;           /* wall-clock limit in minutes */
	double ram_gb;          /* memory in GB (may be fractional) */
	long threads;           /* CPU threads; the local pool counts an unset value as 1 */
	char *queue;            /* queue / partition name */
	char *coprocessor;      /* coprocessor class, e.g. "cuda" (fsl_sub --coprocessor) */
	long coprocessor_count; /* how many coprocessors; 0 = not given (1 when `coprocessor` is set) */
	char *pe;               /* parallel environment for threads > 1 (SGE -pe NAME, fsl_sub -s NAME,N) */
	struct strvec extra;    /* raw scheduler arguments, each one word, passed through unchanged */
	/* Like extra, but only for one backend (resources.extra_slurm, extra_sge, extra_fsl_sub). */
	struct strvec backend_extra[RECIPE_BACKEND_COUNT];
};

struct recipe_lines; /* private: field -> line map of one recipe or of the file's top level */

/*
 * One recipe. The string vectors hold names in file order, without duplicates
 * (duplicates are load errors).
 *   in       template keys the recipe reads and depends on (fsl-pipe In)
 *   out      template keys the recipe makes (fsl-pipe Out); never empty
 *   ref      template keys the recipe reads without depending on them (Ref)
 *   optional keys of `in` or `out` that may be missing: an optional input that
 *            no one makes and is not on disk is skipped, an optional output
 *            that the command did not write is not a failure
 *   batch    placeholders the recipe does not iterate over (fsl-pipe no_iter):
 *            one job covers all their values
 *   vars     placeholders the recipe iterates over although none of its `in`
 *            or `ref` templates uses them (fsl-pipe Var), e.g. for a recipe with
 *            no inputs. A placeholder named in `run` counts as a var too; see
 *            recipe_var_names.
 *   run      the shell command, with `{name}` substitutions (recipe_expand_run)
 *   product  iterate over every combination of the placeholders' values (a
 *            missing input is then an error), not only over the combinations
 *            whose input files exist; true when the file's top-level
 *            `product:` is
 *   cutoff   early cutoff (`cutoff:`, true unless given false): when every
 *            job this recipe's job depends on and that runs rewrites its
 *            outputs as they were, the job is not run (see cpipe-recipes(5));
 *            false runs it whenever one of them runs (a command with side
 *            effects beyond its declared outputs)
 */
struct recipe {
	char *name;
	struct strvec in;
	struct strvec out;
	struct strvec ref;
	struct strvec optional;
	struct strvec batch;
	struct strvec vars;
	char *run;
	bool product;
	bool cutoff;
	struct recipe_resources resources;
	const char *file; /* the recipe file (owned by the set), for messages */
	int line;         /* line of the recipe's entry under `recipes:` */
	struct recipe_lines *lines;
};

/*
 * A loaded recipe file. `tree` and `data` are joined to `dir` and normalised:
 * relative to the working directory of the process when it loaded the file
 * (absolute when the recipe path was).
 */
struct recipe_set {
	char *file;              /* the path as given to recipe_load */
	char *dir;               /* the directory of `file` ("." for a bare name) */
	char *tree;              /* `tree:` resolved against dir; NULL when the file has no `tree:` */
	char *data;              /* `data:` resolved against dir; `dir` when not given */
	struct strvec targets;   /* `default:` template keys built when no target is named; may be empty */
	struct strvec *links;    /* `link: [[a, b], ...]`: groups of placeholders globbed as linked (as --link) */
	size_t link_count;
	bool product;            /* top-level `product:` (already merged into each recipe) */
	struct recipe_resources resources; /* top-level `resources:` (defaults, already merged into each recipe) */
	struct recipe *recipes;  /* in file order */
	size_t count;
	struct recipe_lines *lines;
};

/*
 * Read, parse and validate the recipe file at `path`. On success returns 0 and
 * *out owns a new set (free it with recipe_set_free). On error returns -1,
 * *out is NULL and `err` holds file, line and a message naming the field:
 * YAML syntax errors, wrong types, unknown keys (with "did you mean 'in'?"),
 * missing `name`/`out`/`run`, duplicate recipe names, two recipes making the
 * same key, a key listed twice or in both `in` and `out`, `optional` naming a
 * key not in `in`/`out`, a name in both `batch` and `vars` or that is also one
 * of the recipe's keys, resources that are not positive, and `run` syntax
 * errors (an unclosed `{`, a stray `}`, an empty or malformed `{}`).
 * A `link:` that is not a list of lists of at least two plain names is an
 * error too. Checks that need the tree are in recipe_check.
 */
int recipe_load(const char *path, struct recipe_set **out, struct cp_err *err);

/*
 * Like recipe_load on YAML text in memory (tests, fuzzing). `name` stands for
 * the file in messages and its directory is the one relative paths resolve
 * against.
 */
int recipe_load_string(const char *text, size_t length, const char *name, struct recipe_set **out,
		       struct cp_err *err);

/* Free a set and everything in it. NULL is fine. */
void recipe_set_free(struct recipe_set *set);

/* Index of the recipe called `name`, or -1. */
long recipe_find(const struct recipe_set *set, const char *name);

/* Index of the recipe whose `out` lists `key`, or -1 (at most one does: load checks it). */
long recipe_find_producer(const struct recipe_set *set, const char *key);

/* True when `key` is listed in the recipe's `optional`. */
bool recipe_is_optional(const struct recipe *r, const char *key);

/*
 * Line of a field of the recipe, for messages: `field` is a top-level field
 * ("name", "in", "out", "ref", "optional", "batch", "vars", "run",
 * "resources") or a resource ("resources.minutes", ...). Falls back to the
 * line of the enclosing field, then to r->line, when the field is absent.
 * Never fails: 0 only for a recipe not made by recipe_load.
 */
int recipe_field_line(const struct recipe *r, const char *field);

/*
 * Line of item `index` (0-based) of a list field ("in", "out", "ref",
 * "optional", "batch", "vars", "resources.extra"); the field's own line when
 * there is no such item (e.g. a flow list on one line gives the same line).
 */
int recipe_item_line(const struct recipe *r, const char *field, size_t index);

/* Line of a top-level field of the file ("tree", "data", "default", "recipes", "resources"), or 1. */
int recipe_set_field_line(const struct recipe_set *set, const char *field);

/*
 * What recipe_check needs to know about the tree, supplied by the caller so
 * that this module does not depend on the tree module.
 *   keys          every template key of the tree, used to check names and to
 *                 suggest close ones
 *   placeholders  append to `required` the placeholders that key's template
 *                 always uses and to `optional` those only in its optional
 *                 parts (file-tree's `[...]`); return 0, or -1 when `key` is not
 *                 a template key (vectors untouched)
 *   singular      may be NULL; true when a placeholder has exactly one value
 *                 (in the tree or from the command line), so it never needs
 *                 covering (see recipe_check)
 *   ctx           passed to the callbacks
 */
struct recipe_tree_view {
	const struct strvec *keys;
	int (*placeholders)(void *ctx, const char *key, struct strvec *required, struct strvec *optional);
	bool (*singular)(void *ctx, const char *placeholder);
	void *ctx;
};

/*
 * Validate the set against the tree. Returns 0, or -1 with a located error
 * for the first problem found:
 *   - a key in in/out/ref/optional/default that the tree does not have
 *     ("did you mean 't1_brain'?")
 *   - a name in `batch` or `vars` that is no placeholder of any of the
 *     recipe's templates
 *   - a `{name}` in `run` that is neither one of the recipe's keys nor a
 *     placeholder of its templates (or in batch/vars); a hint mentions `{{`
 *   - an `out` template placeholder that the recipe does not cover: every
 *     required placeholder of every `out` template must be a placeholder of
 *     some `in` or `ref` template, or be in `batch` or `vars`, or be named in
 *     `run`, or be singular (otherwise several jobs would write one file).
 *     Optional placeholders need no cover: an unfilled optional part is
 *     dropped from the path.
 */
int recipe_check(const struct recipe_set *set, const struct recipe_tree_view *view, struct cp_err *err);

/*
 * Resolver for recipe_expand_run: append each value that replaces `{name}` to
 * `values` followed by a NUL byte (a path or a placeholder value; a batched
 * key gives several, an absent optional input none) and add their number to
 * *count. Return 0 on success, RECIPE_UNKNOWN_NAME when `name` means nothing
 * here (recipe_expand_run then writes the located error, `err` untouched), or
 * -1 with `err` filled.
 */
#define RECIPE_UNKNOWN_NAME 1
typedef int (*recipe_resolve_fn)(void *ctx, const char *name, struct strbuf *values, size_t *count,
				 struct cp_err *err);

/*
 * Append the recipe's `run` to `out` with each `{name}` replaced by its
 * values, `{{` written as `{` and `}}` as `}`; everything else is copied
 * unchanged (the command is shell code written by the user). The values are
 * data, quoted for where they stand in that code: as one quoted word each in
 * plain text; as one quoted word inside "..." or '...' (the quote is closed
 * around it); with line breaks made harmless in a comment. A `{name}` in a
 * here-document is refused when the file is loaded. Returns 0, or -1 with a
 * located error (the run field's line) for a syntax error, an unknown name, or
 * a resolver failure; on error `out` may hold a partial command.
 */
int recipe_expand_run(const struct recipe *r, recipe_resolve_fn resolve, void *ctx, struct strbuf *out,
		      struct cp_err *err);

/*
 * Append to `out` each distinct name used as `{name}` in the recipe's `run`,
 * in order of first use. Returns 0, or -1 with a located error for a syntax
 * error (never for a recipe made by recipe_load, whose `run` was checked).
 */
int recipe_run_names(const struct recipe *r, struct strvec *out, struct cp_err *err);

/*
 * Append to `out` the placeholders the recipe iterates over beyond those of
 * its `in`/`ref` templates: its `vars`, then each name in `run` that is not one
 * of its in/out/ref keys and not in `vars` or `batch` (such a name can only be
 * a placeholder, which recipe_check verifies). Distinct, in that order.
 */
void recipe_var_names(const struct recipe *r, struct strvec *out);

/*
 * Append a canonical text of everything in the recipe that affects its
 * results: name, in, out, ref, optional, batch, vars and run, each labelled
 * and length-prefixed so that no two different recipes give the same text.
 * Resources and line numbers are not part of it. The state module hashes it
 * to notice that a recipe changed.
 */
void recipe_definition_text(const struct recipe *r, struct strbuf *out);

/* Release the contents of resources; the struct is all zero afterwards. */
void recipe_resources_release(struct recipe_resources *resources);

#endif
