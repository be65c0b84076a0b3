/*
 * tree: the file-tree `.tree` format (file-tree 1.6.1 compatible, see
 * man/cpipe-tree.5). Parses tree files into templates with keys and
 * placeholder values, and fills templates from singular values. Reads tree
 * files and nothing else on disk.
 *
 * Sources: src/tree.c (values, placeholders, templates, filling, printing)
 * and src/tree_parse.c (the parser: nesting, sub-trees and their scoping,
 * links), sharing src/tree_int.h.
 */
#ifndef CPIPE_TREE_H
#define CPIPE_TREE_H

#include "cpipe/template.h"
#include "cpipe/util.h"

/* One placeholder value. A NULL `text` is file-tree's None (an absent optional part). */
enum tree_value_type {
	TREE_VALUE_STRING,
	TREE_VALUE_INT,   /* captured by an integer field: `integer` holds it, `text` its decimal form */
	TREE_VALUE_FLOAT, /* captured by a float field: `real` holds it, `text` its repr */
};

struct tree_value {
	char *text;
	enum tree_value_type type;
	long long integer;
	double real;
	/* Read from a file name by globbing, or given on the command line: data, filled in as it is
	 * and never read as a template (a directory sub-[x] is not an optional part, --subject 'st*r'
	 * no wildcard). Values written in a tree file are templates. */
	bool literal;
};

/*
 * A placeholder's values. Singular: `multiple` false and count 1. Multiple: a
 * list, iterated over. `link` >= 0 puts it in a linked group: all members have
 * the same count and iterate together, row by row.
 */
struct tree_placeholder {
	char *name; /* may hold '/' to scope it to a sub-tree: "P/x" */
	bool multiple;
	struct tree_value *values;
	size_t count;
	int link; /* link group id, or -1 */
};

struct tree_template {
	char *path;    /* full template, normalised, relative to the top level unless absolute or external */
	char *segment; /* the text of its own line (for printing), "." for the top level */
	char **keys;
	size_t key_count;
	long parent;   /* index of the parent template, -1 for the top level and '!' templates */
	bool external; /* written with '!': not below the top level */
	char *file;    /* tree file and line it was defined on, for messages */
	int line;
};

struct tree {
	struct tree_template *templates; /* templates[0] is the top level, key "" and path "." */
	size_t template_count;
	size_t template_cap;
	struct tree_placeholder *placeholders;
	size_t placeholder_count;
	size_t placeholder_cap;
	int link_count;
	char *file; /* the tree file read, or a name given to tree_parse_string */
	/* "file:line: message" for what parses but is likely a mistake (a tab in an indent), its
	 * sub-trees' included; the CLI prints them. */
	struct strvec warnings;
};

/*
 * Where `->name` sub-trees are looked up, after the including file's own
 * directory: these directories in order (for example the -C data directory's
 * trees and cpipe's installed trees/ directory).
 */
struct tree_search {
	const char *const *dirs;
	size_t count;
};

/*
 * Parse a tree file. On error returns -1 and fills `err` with the tree file
 * (the sub-tree's own file for errors inside it), the 1-based line and the
 * reason, and *out is NULL. The caller frees *out with tree_free.
 * A `path` that does not exist is retried with ".tree" appended, as
 * file-tree's read() does.
 */
int tree_parse_file(const char *path, const struct tree_search *search, struct tree **out, struct cp_err *err);

/* Parse tree text; `name` stands for the file in messages and sub-trees resolve from ".". */
int tree_parse_string(const char *text, const char *name, const struct tree_search *search, struct tree **out,
		      struct cp_err *err);

void tree_free(struct tree *tree);

/*
 * True when template `index` or one of its ancestors was written with '!':
 * its path is then relative to the working directory (or absolute), not to
 * the top level.
 */
bool tree_template_is_external(const struct tree *tree, size_t index);

/*
 * The index of the one template with key `key`. Errors (-1): an unknown key
 * ("Template key 'k' not found", with "did you mean X?" when a key is close)
 * or a key several templates share ("multiple templates matching key 'k': a, b").
 */
long tree_find_template(const struct tree *tree, const char *key, struct cp_err *err);

/* Every distinct key, sorted, without duplicated ones (file-tree's template_keys()). */
void tree_template_keys(const struct tree *tree, struct strvec *out);

/*
 * The placeholder for `name`, using file-tree's fallback for scoped names
 * ("A/B/x", then "B/x", then "x"). NULL when none is defined.
 */
const struct tree_placeholder *tree_find_placeholder(const struct tree *tree, const char *name);

/*
 * Set a placeholder (creating it). `values` may hold NULL entries (None);
 * `multiple` false with count 1 makes it singular; count 0 makes it undefined.
 * Setting a member of a linked group unlinks it first.
 */
void tree_set_placeholder(struct tree *tree, const char *name, const struct tree_value *values, size_t count,
			  bool multiple);

/*
 * Put the named placeholders in one linked group. Fails (-1) when one has no
 * value or their value counts differ; groups that share a name merge.
 */
int tree_link(struct tree *tree, const char *const *names, size_t count, struct cp_err *err);

/*
 * file-tree's get(): fill template `index` (its `path`) with singular values,
 * typed by each field's spec, re-parsing filled values as templates (literal
 * values excepted: they go in as they are, after the re-parsing); optional
 * groups with an unfilled or multi-valued placeholder are dropped; the result
 * is normalised. Fails (-1) when a required placeholder has no singular value
 * ("Missing placeholder values for {'b'}") or a value does not fit its spec.
 */
int tree_fill(const struct tree *tree, size_t index, struct strbuf *out, struct cp_err *err);

/*
 * Like tree_fill on an arbitrary template string, with `overrides` (names and
 * singular values, a NULL value or text meaning None) taking precedence over the
 * tree's values. Used to produce every concrete path of a job.
 */
int tree_fill_template(const struct tree *tree, const char *template_text, const char *const *names,
		       const struct tree_value *const *values, size_t override_count, struct strbuf *out,
		       struct cp_err *err);

/*
 * Substitute singular values into `template_text` without dropping anything
 * still unfilled (step 3 of cpipe-tree(5), GLOBBING; filled values are
 * re-parsed as templates). The result is still a template. A literal value
 * whose text would read as template syntax ([, ], {, }, *, ?) is left as its
 * field, for globbing to compare with what it finds.
 */
int tree_substitute_singular(const struct tree *tree, const char *template_text, struct strbuf *out,
			     struct cp_err *err);

/*
 * file-tree's to_string(): placeholders sorted ("k = v", "k = a, b"), "&LINK"
 * lines, a blank line, then the templates indented by 4 spaces.
 */
void tree_to_string(const struct tree *tree, struct strbuf *out);

/* Order values as file-tree sorts them: None first, then ints and floats numerically, strings bytewise. */
int tree_value_compare(const struct tree_value *a, const struct tree_value *b);
/* A number's value as a double (an int converted); for comparing ints with floats. */
double tree_value_number(const struct tree_value *value);
/* Free the value's text; the value becomes a None string. */
void tree_value_release(struct tree_value *value);
/* Deep-copy `src` into `dst`, whose previous content is not freed. */
void tree_value_copy(struct tree_value *dst, const struct tree_value *src);

#endif
