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
 * (recipe_check), src/recipe_include.c (`include:`), src/recipe_shell.c (a
 * sh lexer), src/recipe_params.c (params:, placeholders:, --set, glob keys),
 * sharing src/recipe_int.h.
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

/* A parameter (`params: {dof: 12}`): a constant `{dof}` in `run`, overridden by `--set`. */
struct recipe_param {
	char *name;
	char *value; /* the file's default, or the command line's value (recipe_set_params) */
};

/* A recipe's own values of a placeholder (`placeholders: {subject: [01, 02]}`). */
struct recipe_values {
	char *placeholder;
	struct strvec values; /* in file order, at least one */
};

/* A glob key of in/ref/optional (`in: ["*_mask"]`) and the tree keys it stands for. */
struct recipe_key_pattern {
	char *pattern;
	struct strvec keys; /* filled by recipe_check, in the tree's order */
};

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
	/* `batch_label:` (fsl-pipe's batch='label'): with `run --submit -b`, only jobs of recipes with the same
	   label are merged into one cluster job; NULL: unlabelled (merged with other unlabelled jobs only when no
	   recipe of the file has a label). Not part of the definition: it changes no output. */
	char *batch_label;
	const char *file; /* the recipe file (owned by the set), for messages */
	int line;         /* line of the recipe's entry under `recipes:` */
	struct recipe_lines *lines;
	/*
	 * Composition (`include:`, src/recipe_include.c): the sub-tree an
	 * included recipe is mounted in ("anat"; "study/anat" when an included
	 * file includes in turn), NULL for a recipe of the file itself or one
	 * included without `subtree:`. Its name and keys already carry the
	 * prefix; recipe_scope_placeholders uses it for placeholder names.
	 */
	char *subtree;
	/* params:, placeholders: and glob keys (src/recipe_params.c), each in file order. */
	struct recipe_param *params;
	size_t param_count;
	struct recipe_values *values;
	size_t value_count;
	struct recipe_key_pattern *patterns; /* recipe_check replaces each in in/ref/optional by its keys */
	size_t pattern_count;
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
	struct recipe *recipes;  /* in file order, then those of each `include:` in order */
	size_t count;
	struct recipe_lines *lines;
	struct strvec included;  /* every file read through `include:` (a recipe's `file` may be one) */
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

/*
 * A recipe file may include others (`include:`, see man/cpipe-recipes.5):
 * recipe_load reads them, relative to the including file, and adds their
 * recipes with each key K renamed `SUBTREE/K` (or as `rename:` says) and each
 * name `SUBTREE/NAME`. Errors inside an included file carry that file and
 * line, and say where it was included from; a missing file or an include
 * cycle is an error at the `include:` entry, naming the chain. An included
 * file's `tree:`, `data:`, `default:` and `link:` are ignored (they let the
 * file run on its own); its `resources:` and `product:` apply to its recipes.
 * Placeholder names need the tree: see recipe_scope_placeholders.
 */

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
 * "resources", "params", "placeholders"), a resource ("resources.minutes",
 * ...) or an entry ("params.dof"). Falls back to the
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
 *   defined       may be NULL; true when the tree defines placeholder `name`
 *                 (it has values, from the tree, the command line or the
 *                 glob): `{name}` in `run` and `vars` may then name it although
 *                 no template of the recipe uses it (fsl-pipe's Var)
 */
struct recipe_tree_view {
	const struct strvec *keys;
	int (*placeholders)(void *ctx, const char *key, struct strvec *required, struct strvec *optional);
	bool (*singular)(void *ctx, const char *placeholder);
	void *ctx;
	bool (*defined)(void *ctx, const char *placeholder);
};

/*
 * Validate the set against the tree, first replacing each glob key of
 * in/ref/optional by the tree keys it matches (fnmatch, `*` also matching
 * '/'; the recipe's own outputs left out; kept in r->patterns for `{pattern}`
 * in run). Returns 0, or -1 with a located error for the first problem found:
 *   - a glob key that matches no key, or one in `out`
 *   - a key in in/out/ref/optional/default that the tree does not have
 *     ("did you mean 't1_brain'?")
 *   - a name in `batch` or `vars` that is no placeholder of the recipe's
 *     templates, its `placeholders:` or the tree (view->defined)
 *   - a `{name}` in `run` that is neither one of the recipe's keys, a
 *     parameter, a glob key of it, nor a placeholder as for `vars`; a hint
 *     mentions `{{`
 *   - a parameter whose name is also a key or placeholder of the tree
 *   - a placeholder that no template of the recipe uses, yet has several
 *     values (so the recipe iterates over it), while no `out` template
 *     carries it: its jobs would write the same files
 *   - an `out` template placeholder that the recipe does not cover: every
 *     required placeholder of every `out` template must be a placeholder of
 *     some `in` or `ref` template, or be in `batch` or `vars`, or be named in
 *     `run`, or be singular (otherwise several jobs would write one file).
 *     Optional placeholders need no cover: an unfilled optional part is
 *     dropped from the path.
 */
int recipe_check(struct recipe_set *set, const struct recipe_tree_view *view, struct cp_err *err);

/*
 * Name the placeholders of each recipe mounted in a sub-tree (by `include:`)
 * as the tree scopes them, file-tree's way: a placeholder X the recipe names
 * in `batch`, `vars`, `placeholders:` or `run` (not a parameter) becomes `SUBTREE/X` when one of the recipe's
 * templates has that placeholder, else the same with leading components
 * dropped (`A/B/X`, `B/X`), else stays X (one of the including tree's). Call
 * it before recipe_check; recipes of the file itself are left alone.
 */
void recipe_scope_placeholders(struct recipe_set *set, const struct recipe_tree_view *view);

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
 * of its in/out/ref keys, a parameter or a glob key and not in `vars` or
 * `batch` (such a name can only be a placeholder, which recipe_check
 * verifies). Distinct, in that order. A placeholder only in `placeholders:`
 * is not one: those values only matter where the recipe iterates anyway.
 */
void recipe_var_names(const struct recipe *r, struct strvec *out);

/*
 * Append a canonical text of everything in the recipe that affects its
 * results: name, in, out, ref, optional, batch, vars, run, and (only when the
 * recipe has them, so older recipes keep their text) its parameters' values
 * (not its placeholders: values, which choose jobs: a job's inputs and command
 * say what it got of them), each labelled
 * and length-prefixed so that no two different recipes give the same text.
 * Resources and line numbers are not part of it. The state module hashes it
 * to notice that a recipe changed.
 */
void recipe_definition_text(const struct recipe *r, struct strbuf *out);

/*
 * Apply the command line's `--set` assignments: "RECIPE.PARAM=VALUE" sets that
 * recipe's parameter, "PARAM=VALUE" the parameter of that name of every
 * recipe that declares it (at least one must). The RECIPE.PARAM ones are
 * applied last, so they win over PARAM ones in any order; among equals the
 * last wins. Returns 0, or -1 with an error (no file, no line: it is the
 * command line's) naming what is wrong: no '=', an unknown recipe or
 * parameter ("did you mean").
 */
int recipe_set_params(struct recipe_set *set, const struct strvec *assignments, struct cp_err *err);

/* The parameter `name` of the recipe, or NULL. */
const struct recipe_param *recipe_find_param(const struct recipe *r, const char *name);

/* The recipe's own values of placeholder `name` (placeholders:), or NULL. */
const struct recipe_values *recipe_find_values(const struct recipe *r, const char *name);

/* Whether `name` holds a shell-style wildcard (`*`, `?`, `[`): a glob key. */
bool recipe_is_key_pattern(const char *name);

/* The glob key `pattern` of `r` (after recipe_check expanded it), or NULL. */
const struct recipe_key_pattern *recipe_find_pattern(const struct recipe *r, const char *pattern);

/* Release the contents of resources; the struct is all zero afterwards. */
void recipe_resources_release(struct recipe_resources *resources);

#endif
