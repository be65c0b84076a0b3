/*
 * recipe_int.h: what the recipe module's source files share, private to them
 * (src/recipe.c and src/recipe_*.c; nothing outside the module includes it).
 *
 *   recipe.c        building and validating the set, loading, lookups,
 *                   identity (recipe_definition_text)
 *   recipe_yaml.c   the node record (path -> line) and the two passes over
 *                   the text: libyaml events, then the libcyaml schema
 *   recipe_run.c    the run string: tokens, names, expansion
 *   recipe_check.c  recipe_check: the checks against the tree
 *   recipe_include.c  `include:`: other recipe files mounted in sub-trees
 *   recipe_shell.c  the small sh lexer behind recipe_run.c (recipe_shell.h)
 *   recipe_params.c params:, placeholders:, --set and glob keys
 */
#ifndef CPIPE_RECIPE_INT_H
#define CPIPE_RECIPE_INT_H

#include "cpipe/recipe.h"

#include <stdbool.h>
#include <stddef.h>

#include <cyaml/cyaml.h>

/* The node record of the first pass (recipe_yaml.c): every node's path and line. */
struct node_line {
	char *path;      /* "recipes.0.in.1"; "" for the root */
	int line;        /* the key's line for a mapping value, the node's own line otherwise */
	int value_line;  /* where the value itself starts */
	int value_column;
	char *scalar;    /* the text of a scalar node, else NULL */
	bool literal;    /* a literal block scalar (`|`): its lines are the text's lines */
	bool plain;      /* a plain (unquoted) scalar */
	bool mapping;    /* a mapping node (params:, placeholders: are read from the record) */
};

struct recipe_lines {
	struct node_line *items;
	size_t count;
	size_t cap;
};

/* What libcyaml loads (recipe_file_schema), before recipe.c builds the set from it. */
struct raw_resources {
	long minutes;
	double ram_gb;
	long threads;
	char *queue;
	char *coprocessor;
	long coprocessor_count;
	char *pe;
	char **extra;
	unsigned extra_count;
	/* In enum recipe_backend order. */
	char **extra_slurm;
	unsigned extra_slurm_count;
	char **extra_sge;
	unsigned extra_sge_count;
	char **extra_fsl_sub;
	unsigned extra_fsl_sub_count;
};

struct raw_recipe {
	char *name;
	char **in;
	unsigned in_count;
	char **out;
	unsigned out_count;
	char **ref;
	unsigned ref_count;
	char **optional;
	unsigned optional_count;
	char **batch;
	unsigned batch_count;
	char **vars;
	unsigned vars_count;
	char *run;
	bool product;
	bool cutoff; /* read only when the node is there (recipe_lines_find): absent means true */
	struct raw_resources *resources;
	char *batch_label;
};

struct raw_file {
	char *tree;
	char *data;
	char **targets;
	unsigned targets_count;
	struct raw_resources *resources;
	bool product;
	struct raw_recipe *recipes;
	unsigned recipes_count;
};

/* ---- composition: `include:` (recipe_include.c) ---- */

/*
 * The file being loaded and how it was reached: the file that included it
 * and the line of that `include:` entry, up to the file the user named
 * (whose `parent` is NULL). Walked to find cycles and to name the chain.
 */
struct include_chain {
	const char *path;                   /* as resolved against the including file */
	const struct include_chain *parent; /* the including file, NULL at the top */
	int line;                           /* line of the `include:` entry in the parent */
	size_t *files_read;                 /* shared by the whole chain: files included so far */
};
/* More included files than this in one load is a runaway (files including others many times over). */
#define RECIPE_INCLUDE_MAX 1000

/* recipe_load for a file reached through `self` (recipe.c). */
int recipe_load_chained(const char *path, const struct include_chain *self, struct recipe_set **out,
			struct cp_err *err);
/* Read the set's `include:` entries, load each file and add its recipes, mounted (recipe_include.c). */
int recipe_include_all(struct recipe_set *set, const struct include_chain *self, struct cp_err *err);
/* Add to an error about `key` of a mounted recipe the key its file wrote and where it is mounted. */
void recipe_explain_mounted_key(const struct recipe *r, const char *key, struct cp_err *err);
/* Fill the unset fields of `out` from the file-wide defaults (recipe.c). */
void recipe_merge_resources(struct recipe_resources *out, const struct recipe_resources *defaults);
/*
 * Append r->run to `out` with each `{name}` written `{rename(name)}` (unchanged when it returns
 * NULL) and literal braces kept doubled (recipe_run.c). The run must have been checked.
 */
typedef const char *(*recipe_rename_fn)(void *ctx, const char *name);
void recipe_rename_run(const struct recipe *r, recipe_rename_fn rename, void *ctx, struct strbuf *out);

/* Free a node record and the record itself; NULL is fine. */
void recipe_lines_free(struct recipe_lines *lines);
/* The node at `path` ("recipes.0.in.1"), or NULL. */
const struct node_line *recipe_lines_find(const struct recipe_lines *lines, const char *path);
/* Line of `path`, else of the nearest enclosing path that has one, else 0. */
int recipe_lines_line(const struct recipe_lines *lines, const char *path);

/* The first pass: syntax, duplicate keys and the node record of `text` into `lines`. */
int recipe_scan_yaml(const char *text, size_t length, const char *file, struct recipe_lines *lines,
		     struct cp_err *err);
/* The libcyaml schema of the whole file (a struct raw_file). */
extern const cyaml_schema_value_t recipe_file_schema;
/* A libcyaml configuration whose log output is captured into `log`. */
void recipe_cyaml_config_init(cyaml_config_t *config, struct strbuf *log);
/* A libcyaml failure (its captured log and code) as a located error. */
void recipe_cyaml_error(const char *log, cyaml_err_t code, const char *file, const struct recipe_lines *lines,
			struct cp_err *err);
/* The name of `names` closest to the misspelt `wrong` ("did you mean"), or NULL. */
const char *recipe_suggest_name(const char *wrong, const struct strvec *names);

/* An error "recipe 'x': field: ..." at `line` (the recipe's own line if 0); returns 0. */
int recipe_fail(struct cp_err *err, const struct recipe *r, int line, const char *field, const char *fmt, ...)
	CP_PRINTF(5, 6);
/* params: and placeholders: of recipe `r`, from its node record (recipe_params.c); 0 or -1. */
int recipe_read_params(struct recipe *r, struct cp_err *err);
/* Release what recipe_read_params and recipe_check put in `r`. */
void recipe_params_release(struct recipe *r);
/* Replace the glob keys of r's in/ref/optional by the tree keys they match (recipe_params.c). */
int recipe_expand_key_patterns(struct recipe *r, const struct strvec *keys, struct cp_err *err);
/* Append the labelled parameters to a definition text (none: nothing). */
void recipe_params_definition(const struct recipe *r, struct strbuf *out);

/* Whether `r`'s run string parses into text and `{name}`s (as recipe_run_names reads it). */
int recipe_check_run_syntax(const struct recipe *r, struct cp_err *err);
/* An error "recipe 'x': run: ..." at the line (and column) of byte `offset` of the run string; returns -1. */
int recipe_run_fail(const struct recipe *r, size_t offset, struct cp_err *err, const char *fmt, ...) CP_PRINTF(4, 5);

#endif
