/*
 * tree_int.h: what the tree module's source files share, private to them
 * (src/tree.c and src/tree_parse.c; nothing outside the module includes it).
 *
 *   tree.c        values, placeholders, templates, filling, to_string
 *   tree_parse.c  the parser: lines, nesting, sub-trees and their scoping,
 *                 links, the `->` line
 */
#ifndef CPIPE_TREE_INT_H
#define CPIPE_TREE_INT_H

#include "cpipe/tree.h"

#include <stdbool.h>
#include <stddef.h>

/* Where filling looks values up: overrides first, then the tree, at each level of the scope fallback. */
struct tree_lookup {
	const struct tree *tree;
	const char *const *names;
	const struct tree_value *const *values;
	size_t count;
	/*
	 * Leave a field whose value is literal for the caller to put in as data (filling). Without
	 * it a literal value is put in as text, unless the text would read as template syntax: then
	 * the field stays, for globbing to match and compare with the value, as it does with a list.
	 */
	bool keep_literal;
};

/* The index of placeholder `name` in `tree`, or -1. */
long tree_placeholder_index(const struct tree *tree, const char *name);
/* `name = text` as file-tree reads the right-hand side (a list if it has a comma, "None" undefined). */
void tree_assign(struct tree *tree, const char *name, const char *text);
/* Add `key` to the template's keys unless it is there already. */
void tree_template_add_key(struct tree_template *template, const char *key);
/* Append a template (no keys yet) and return its index. */
size_t tree_add_template(struct tree *tree, const char *path, const char *segment, long parent,
			 bool external, const char *file, int line);
/* file-tree's default key: the last path component up to its first dot (owned). */
char *tree_default_key(const char *segment);
/* An empty tree named `name`, with its top-level template ".". */
struct tree *tree_new(const char *name);
/* Substitute singular values until nothing changes: filled values are templates too. */
int tree_substitute(const struct tree_lookup *lookup, const char *text, struct strbuf *out,
		    struct cp_err *err);
/* Give an error without a location the location of a template or line. */
void tree_err_locate(struct cp_err *err, const char *file, int line);

#endif
