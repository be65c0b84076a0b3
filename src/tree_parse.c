/*
 * tree_parse.c: parsing `.tree` files, for tree.c (cpipe-tree(5)).
 *
 * Parsing is line by line (file-tree's own model): each line finds its parent
 * through a stack of (indent, node) pairs, then is classified as a sub-tree,
 * an assignment, a link or a template. Links and the `->` line's variables
 * are applied once the whole file has been read.
 */
#include "tree_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A sub-tree that includes itself would otherwise recurse forever. */
#define TREE_MAX_SUBTREE_DEPTH 32
/* Stack node standing for a `->` line: nothing may nest below it. */
#define TREE_NODE_SUBTREE (-2L)

/* --------------------------------------------------------------- scoping */

/* A sub-tree's fields take its scope: "{x}" becomes "{P/x}" (`data` is "P/"). */
static int tree_prefix_field(void *data, const char *name, size_t name_len, const char *spec, size_t spec_len,
			     struct strbuf *out, struct cp_err *err)
{
	(void)err;
	struct strbuf scoped = STRBUF_INIT;
	strbuf_adds(&scoped, data);
	strbuf_add(&scoped, name, name_len);
	template_add_field(out, scoped.buf, scoped.len, spec, spec_len);
	strbuf_release(&scoped);
	return 0;
}

/* ---------------------------------------------------------------- parsing */

struct tree_stack_entry {
	size_t indent;
	long node; /* template index, or TREE_NODE_SUBTREE */
	int line;
};

struct tree_pending_link {
	struct strvec names;
	int line;
};

struct tree_parser {
	struct tree *tree;
	const char *file; /* name in messages */
	const char *dir;  /* where this file's sub-trees are looked up first */
	const struct tree_search *search;
	int depth;
	int line;
	struct tree_stack_entry *stack;
	size_t stack_count, stack_cap;
	struct tree_pending_link *links;
	size_t link_count, link_cap;
	int first_tab_line; /* the first line indented with a tab, 0 if none */
	int tab_lines;
	struct cp_err *err;
};

static int tree_parse_text(const char *text, const char *file, const char *dir, const struct tree_search *search,
			   int depth, const struct strvec *override_names, const struct strvec *override_values,
			   struct tree **out, struct cp_err *err);

static int tree_fail(struct tree_parser *parser, const char *fmt, ...) CP_PRINTF(2, 3);
static int tree_fail(struct tree_parser *parser, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *message = xvasprintf(fmt, ap);
	va_end(ap);
	cp_err_set(parser->err, parser->file, parser->line, "%s", message);
	free(message);
	return -1;
}

static bool tree_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

static bool tree_has_space(const char *s)
{
	for (; *s; s++)
		if (tree_is_space(*s))
			return true;
	return false;
}

/* The characters of `forbidden` that occur in `s`, each once, in order of appearance. */
static void tree_forbidden_chars(const char *s, const char *forbidden, struct strbuf *found)
{
	for (; *s; s++)
		if (strchr(forbidden, *s) && !memchr(found->buf, *s, found->len))
			strbuf_addch(found, *s);
}

/* file-tree's message, then the indents a line may have here, so the user sees which one was meant. */
static int tree_fail_indent(struct tree_parser *parser, size_t indent)
{
	struct strbuf in_use = STRBUF_INIT;
	for (size_t i = 0; i < parser->stack_count; i++)
		strbuf_addf(&in_use, "%s%zu (line %d)", i ? ", " : "", parser->stack[i].indent, parser->stack[i].line);
	int rc = tree_fail(parser,
			   "Number of spaces of current line does not match any previous lines: it is indented by "
			   "%zu; the indents in use here are %s, or more than %zu for a child of line %d",
			   indent, in_use.buf, parser->stack[parser->stack_count - 1].indent,
			   parser->stack[parser->stack_count - 1].line);
	strbuf_release(&in_use);
	return rc;
}

/* cpipe-tree(5), NESTING: the parent of a line with this indent (template index, 0 for the top level). */
static int tree_find_parent(struct tree_parser *parser, size_t indent, long *parent)
{
	if (!parser->stack_count) {
		*parent = 0;
		return 0;
	}
	const struct tree_stack_entry *top = &parser->stack[parser->stack_count - 1];
	if (indent > top->indent) {
		*parent = top->node;
	} else {
		size_t i = 0;
		while (i < parser->stack_count && parser->stack[i].indent != indent)
			i++;
		if (i == parser->stack_count)
			return tree_fail_indent(parser, indent);
		*parent = i == 0 ? 0 : parser->stack[i - 1].node;
	}
	if (*parent == TREE_NODE_SUBTREE)
		return tree_fail(parser, "Current line seems to be the child of a sub-tree, which is not supported.");
	return 0;
}

static void tree_push(struct tree_parser *parser, size_t indent, long node)
{
	ALLOC_GROW(parser->stack, parser->stack_count + 1, parser->stack_cap);
	parser->stack[parser->stack_count].indent = indent;
	parser->stack[parser->stack_count].node = node;
	parser->stack[parser->stack_count].line = parser->line;
	parser->stack_count++;
}

static int tree_parse_assignment(struct tree_parser *parser, const char *content)
{
	const char *equals = strchr(content, '=');
	if (strchr(equals + 1, '='))
		return tree_fail(parser, "too many '=' in placeholder assignment '%s' (write NAME = VALUE)", content);
	char *name = str_trim(xstrndup(content, (size_t)(equals - content)));
	char *value = str_trim(xstrdup(equals + 1));
	int result = 0;
	if (!*name)
		result = tree_fail(parser, "placeholder assignment '%s' has no name", content);
	else
		tree_assign(parser->tree, name, value);
	free(name);
	free(value);
	return result;
}

static int tree_parse_link(struct tree_parser *parser, const char *content)
{
	struct strvec items = STRVEC_INIT;
	struct tree_pending_link link = {STRVEC_INIT, parser->line};
	strvec_split(&items, content + strlen("&LINK"), ',', true);
	for (size_t i = 0; i < items.count; i++)
		if (*items.items[i])
			strvec_push(&link.names, items.items[i]);
	strvec_release(&items);
	if (!link.names.count)
		return tree_fail(parser, "&LINK needs placeholder names: &LINK a, b");
	ALLOC_GROW(parser->links, parser->link_count + 1, parser->link_cap);
	parser->links[parser->link_count++] = link;
	return 0;
}

/*
 * Split "PATH (KEYS)" into the path and the keys inside the last trailing
 * parentheses. `*has_keys` is false when there is no key group.
 */
static void tree_split_keys(const char *content, char **path, char **keys, bool *has_keys)
{
	size_t len = strlen(content);
	const char *open = NULL;
	if (len && content[len - 1] == ')') {
		for (const char *p = content + len - 1; p > content; p--) {
			if (p[-1] == '(') {
				open = p - 1;
				break;
			}
		}
	}
	/* A line that is only "(...)" is a name, not a key group. */
	if (!open || open == content) {
		*path = xstrdup(content);
		*keys = NULL;
		*has_keys = false;
		return;
	}
	*path = str_trim(xstrndup(content, (size_t)(open - content)));
	*keys = xstrndup(open + 1, len - (size_t)(open - content) - 2);
	*has_keys = true;
}

static int tree_parse_template(struct tree_parser *parser, const char *content, size_t indent, long parent,
			       long *node)
{
	struct tree *tree = parser->tree;
	bool external = content[0] == '!';
	if (external && indent != 0)
		return tree_fail(parser,
				 "Defining a new top-level with '!' is only available at the top-level, but the line "
				 "'%s' is indented",
				 content);
	char *path_text, *keys_text;
	bool has_keys;
	tree_split_keys(external ? content + 1 : content, &path_text, &keys_text, &has_keys);
	struct strbuf bad = STRBUF_INIT, joined = STRBUF_INIT, path = STRBUF_INIT;
	struct strvec keys = STRVEC_INIT;
	int result = -1;
	if (!*path_text || tree_has_space(path_text) || (has_keys && (tree_has_space(keys_text) ||
								      strchr(keys_text, ')') || strchr(keys_text, '(')))) {
		tree_fail(parser, "Unrecognized line %s", content);
		goto done;
	}
	tree_forbidden_chars(path_text, "<>\"|", &bad);
	if (bad.len) {
		tree_fail(parser, "Invalid character(s) \"%s\" in file or directory name: %s", bad.buf, path_text);
		goto done;
	}
	if (has_keys) {
		struct strvec items = STRVEC_INIT;
		strvec_split(&items, keys_text, ',', true);
		for (size_t i = 0; i < items.count; i++)
			if (*items.items[i])
				strvec_push(&keys, items.items[i]);
		strvec_release(&items);
	} else {
		strvec_push_owned(&keys, tree_default_key(path_text));
	}
	if (external) {
		path_normalize(path_text, &path);
	} else {
		path_join(tree->templates[parent].path, path_text, &joined);
		path_normalize(joined.buf, &path);
	}
	/* A child at its parent's own path is the parent, under one more key. */
	if (!external && !strcmp(path.buf, tree->templates[parent].path))
		*node = parent;
	else
		*node = (long)tree_add_template(tree, path.buf, path_text, external ? -1 : parent, external,
						parser->file, parser->line);
	for (size_t i = 0; i < keys.count; i++)
		tree_template_add_key(&tree->templates[*node], keys.items[i]);
	result = 0;
done:
	free(path_text);
	free(keys_text);
	strbuf_release(&bad);
	strbuf_release(&joined);
	strbuf_release(&path);
	strvec_release(&keys);
	return result;
}

static int tree_find_subtree(struct tree_parser *parser, const char *name, struct strbuf *found)
{
	struct strbuf file_name = STRBUF_INIT;
	strbuf_adds(&file_name, name);
	if (!str_ends_with(name, ".tree"))
		strbuf_adds(&file_name, ".tree");
	size_t extra = parser->search ? parser->search->count : 0;
	for (size_t i = 0; i <= extra; i++) {
		const char *dir = i == 0 ? parser->dir : parser->search->dirs[i - 1];
		struct stat st;
		if (!dir)
			continue;
		path_join(dir, file_name.buf, found);
		if (!stat(found->buf, &st) && S_ISREG(st.st_mode)) {
			strbuf_release(&file_name);
			return 0;
		}
	}
	strbuf_release(&file_name);
	return tree_fail(parser, "No file tree found for %s", name);
}

static void tree_dirname(const char *path, struct strbuf *out)
{
	const char *slash = strrchr(path, '/');
	strbuf_reset(out);
	if (!slash)
		strbuf_addch(out, '.');
	else if (slash == path)
		strbuf_addch(out, '/');
	else
		strbuf_add(out, path, (size_t)(slash - path));
}

static int tree_read_file(const char *path, struct strbuf *out, struct cp_err *err)
{
	if (read_whole_file(path, out, err) < 0)
		return -1;
	const char *nul = memchr(out->buf, '\0', out->len);
	if (nul) {
		int line = 1;
		for (const char *p = out->buf; p < nul; p++)
			line += *p == '\n';
		cp_err_set(err, path, line, "tree file contains a NUL byte");
		return -1;
	}
	return 0;
}

/*
 * Put the templates of `sub` below template `parent`. With a precursor P the
 * keys become "P/k", the sub-tree's top "P/", fields "{P/x}" and values "P/x".
 * Without one, singular values are baked into the templates and multi-valued
 * ones join the parent, unless the parent already has them.
 */
static int tree_merge_subtree(struct tree_parser *parser, const struct tree *sub, long parent,
			      const char *precursor)
{
	struct tree *tree = parser->tree;
	struct strbuf prefix = STRBUF_INIT, segment = STRBUF_INIT, joined = STRBUF_INIT, path = STRBUF_INIT;
	struct strbuf key = STRBUF_INIT;
	long *map = xcalloc(sub->template_count, sizeof(*map));
	struct tree_lookup sub_lookup = {sub, NULL, NULL, 0, false};
	int result = -1;
	if (precursor)
		strbuf_addf(&prefix, "%s/", precursor);

	if (!precursor) {
		struct strvec conflicts = STRVEC_INIT;
		for (size_t i = 0; i < sub->placeholder_count; i++) {
			const struct tree_placeholder *placeholder = &sub->placeholders[i];
			if (placeholder->multiple && tree_placeholder_index(tree, placeholder->name) >= 0)
				strvec_push(&conflicts, placeholder->name);
		}
		if (conflicts.count) {
			struct strbuf names = STRBUF_INIT;
			for (size_t i = 0; i < conflicts.count; i++)
				strbuf_addf(&names, "%s'%s'", i ? ", " : "", conflicts.items[i]);
			tree_fail(parser,
				  "Sub-tree placeholder values for {%s} conflict with those set in the parent tree.",
				  names.buf);
			strbuf_release(&names);
			strvec_release(&conflicts);
			goto done;
		}
		strvec_release(&conflicts);
	}

	map[0] = parent;
	for (size_t k = 0; k < sub->templates[0].key_count; k++) {
		const char *sub_key = sub->templates[0].keys[k];
		strbuf_reset(&key);
		strbuf_addf(&key, "%s%s", prefix.buf, sub_key);
		/* Without a precursor the sub-tree's top key "" would duplicate the tree's own. */
		if (key.len)
			tree_template_add_key(&tree->templates[parent], key.buf);
	}
	for (size_t i = 1; i < sub->template_count; i++) {
		const struct tree_template *template = &sub->templates[i];
		int rewritten;
		strbuf_reset(&segment);
		if (precursor)
			rewritten = template_scan_fields(template->segment, tree_prefix_field, prefix.buf, &segment,
						       parser->err);
		else
			rewritten = tree_substitute(&sub_lookup, template->segment, &segment, parser->err);
		if (rewritten < 0) {
			tree_err_locate(parser->err, template->file, template->line);
			goto done;
		}
		long new_parent = template->parent < 0 ? -1 : map[template->parent];
		if (template->external || new_parent < 0) {
			path_normalize(segment.buf, &path);
		} else {
			path_join(tree->templates[new_parent].path, segment.buf, &joined);
			path_normalize(joined.buf, &path);
		}
		if (new_parent >= 0 && !strcmp(path.buf, tree->templates[new_parent].path))
			map[i] = new_parent;
		else
			map[i] = (long)tree_add_template(tree, path.buf, segment.buf, new_parent, template->external,
							 template->file, template->line);
		for (size_t k = 0; k < template->key_count; k++) {
			strbuf_reset(&key);
			strbuf_addf(&key, "%s%s", prefix.buf, template->keys[k]);
			tree_template_add_key(&tree->templates[map[i]], key.buf);
		}
	}

	for (size_t i = 0; i < sub->placeholder_count; i++) {
		const struct tree_placeholder *placeholder = &sub->placeholders[i];
		if (!precursor && !placeholder->multiple)
			continue;
		strbuf_reset(&key);
		strbuf_addf(&key, "%s%s", prefix.buf, placeholder->name);
		tree_set_placeholder(tree, key.buf, placeholder->values, placeholder->count, placeholder->multiple);
	}
	for (int group = 0; group < sub->link_count; group++) {
		struct strvec names = STRVEC_INIT;
		for (size_t i = 0; i < sub->placeholder_count; i++) {
			const struct tree_placeholder *placeholder = &sub->placeholders[i];
			if (placeholder->link != group || (!precursor && !placeholder->multiple))
				continue;
			strvec_push_owned(&names, xasprintf("%s%s", prefix.buf, placeholder->name));
		}
		int linked = tree_link(tree, (const char *const *)names.items, names.count, parser->err);
		strvec_release(&names);
		if (linked < 0) {
			tree_err_locate(parser->err, parser->file, parser->line);
			goto done;
		}
	}
	result = 0;
done:
	free(map);
	strbuf_release(&prefix);
	strbuf_release(&segment);
	strbuf_release(&joined);
	strbuf_release(&path);
	strbuf_release(&key);
	return result;
}

/* `->NAME [k=v, k2=v2] [(P1,P2)]` */
static int tree_parse_subtree(struct tree_parser *parser, const char *content, long parent)
{
	char *rest = str_trim(xstrdup(content + 2));
	struct strvec precursors = STRVEC_INIT, variables = STRVEC_INIT;
	struct strvec names = STRVEC_INIT, values = STRVEC_INIT;
	struct strbuf bad = STRBUF_INIT, found = STRBUF_INIT, dir = STRBUF_INIT;
	struct tree *sub = NULL;
	char *name = NULL;
	int result = -1;

	size_t len = strlen(rest);
	char *open = len && rest[len - 1] == ')' ? strrchr(rest, '(') : NULL;
	if (open) {
		rest[len - 1] = '\0';
		struct strvec items = STRVEC_INIT;
		strvec_split(&items, open + 1, ',', true);
		*open = '\0';
		for (size_t i = 0; i < items.count; i++) {
			if (!*items.items[i])
				continue;
			tree_forbidden_chars(items.items[i], "(){}/ \t\r\v\f", &bad);
			if (bad.len) {
				tree_fail(parser, "Invalid character(s) \"%s\" in sub-tree name: %s", bad.buf,
					  items.items[i]);
				strvec_release(&items);
				goto done;
			}
			strvec_push(&precursors, items.items[i]);
		}
		strvec_release(&items);
		str_trim(rest);
	}
	size_t name_len = 0;
	while (rest[name_len] && !tree_is_space(rest[name_len]))
		name_len++;
	name = xstrndup(rest, name_len);
	if (!*name) {
		tree_fail(parser, "sub-tree line '%s' has no tree name (write ->NAME)", content);
		goto done;
	}
	tree_forbidden_chars(name, "<>:\"/\\|?*", &bad);
	if (bad.len) {
		tree_fail(parser, "Invalid character(s) \"%s\" in sub-tree name: %s", bad.buf, name);
		goto done;
	}
	strvec_split(&variables, rest + name_len, ',', true);
	for (size_t i = 0; i < variables.count; i++) {
		const char *item = variables.items[i];
		if (!*item)
			continue;
		const char *equals = strchr(item, '=');
		if (!equals || strchr(equals + 1, '=')) {
			tree_fail(parser, "sub-tree variable '%s' must be written name=value", item);
			goto done;
		}
		strvec_push_owned(&names, str_trim(xstrndup(item, (size_t)(equals - item))));
		strvec_push_owned(&values, str_trim(xstrdup(equals + 1)));
		if (!*names.items[names.count - 1]) {
			tree_fail(parser, "sub-tree variable '%s' has no name", item);
			goto done;
		}
	}
	if (parser->depth + 1 >= TREE_MAX_SUBTREE_DEPTH) {
		tree_fail(parser, "sub-trees nested more than %d deep at %s (does a sub-tree include itself?)",
			  TREE_MAX_SUBTREE_DEPTH, name);
		goto done;
	}
	if (tree_find_subtree(parser, name, &found) < 0)
		goto done;
	struct strbuf text = STRBUF_INIT;
	if (tree_read_file(found.buf, &text, parser->err) < 0) {
		/* Point at the `->` line: the sub-tree file itself could not be read. */
		if (parser->err) {
			cp_err_prefix(parser->err, "sub-tree %s: ", found.buf);
			FREE_AND_NULL(parser->err->file);
			tree_err_locate(parser->err, parser->file, parser->line);
		}
		strbuf_release(&text);
		goto done;
	}
	tree_dirname(found.buf, &dir);
	int parsed = tree_parse_text(text.buf, found.buf, dir.buf, parser->search, parser->depth + 1, &names, &values,
				     &sub, parser->err);
	strbuf_release(&text);
	if (parsed < 0)
		goto done;
	for (size_t i = 0; i < sub->warnings.count; i++)
		if (strvec_find(&parser->tree->warnings, sub->warnings.items[i]) < 0)
			strvec_push(&parser->tree->warnings, sub->warnings.items[i]);
	if (!precursors.count) {
		if (tree_merge_subtree(parser, sub, parent, NULL) < 0)
			goto done;
	}
	for (size_t i = 0; i < precursors.count; i++)
		if (tree_merge_subtree(parser, sub, parent, precursors.items[i]) < 0)
			goto done;
	result = 0;
done:
	tree_free(sub);
	free(name);
	free(rest);
	strvec_release(&precursors);
	strvec_release(&variables);
	strvec_release(&names);
	strvec_release(&values);
	strbuf_release(&bad);
	strbuf_release(&found);
	strbuf_release(&dir);
	return result;
}

static int tree_parse_line(struct tree_parser *parser, const char *raw)
{
	const char *comment = strchr(raw, '#');
	size_t len = comment ? (size_t)(comment - raw) : strlen(raw);
	size_t indent = 0;
	while (indent < len && tree_is_space(raw[indent]))
		indent++;
	char *content = str_trim(xstrndup(raw + indent, len - indent));
	long parent = 0, node = -1;
	int result = 0;
	if (!*content)
		goto done;
	if (memchr(raw, '\t', indent) && !parser->tab_lines++)
		parser->first_tab_line = parser->line;
	if (tree_find_parent(parser, indent, &parent) < 0) {
		result = -1;
		goto done;
	}
	while (parser->stack_count && parser->stack[parser->stack_count - 1].indent >= indent)
		parser->stack_count--;
	if (str_starts_with(content, "->")) {
		result = tree_parse_subtree(parser, content, parent);
		node = TREE_NODE_SUBTREE;
	} else if (strchr(content, '=')) {
		result = tree_parse_assignment(parser, content);
	} else if (str_starts_with(content, "&LINK")) {
		result = tree_parse_link(parser, content);
	} else {
		result = tree_parse_template(parser, content, indent, parent, &node);
	}
	if (!result && node != -1)
		tree_push(parser, indent, node);
done:
	free(content);
	return result;
}

static int tree_parse_text(const char *text, const char *file, const char *dir, const struct tree_search *search,
			   int depth, const struct strvec *override_names, const struct strvec *override_values,
			   struct tree **out, struct cp_err *err)
{
	struct tree_parser parser = {0};
	struct strbuf line = STRBUF_INIT;
	int result = -1;
	parser.tree = tree_new(file);
	parser.file = file;
	parser.dir = dir;
	parser.search = search;
	parser.depth = depth;
	parser.err = err;
	*out = NULL;

	for (const char *start = text; *start;) {
		const char *end = strchr(start, '\n');
		size_t len = end ? (size_t)(end - start) : strlen(start);
		parser.line++;
		strbuf_reset(&line);
		strbuf_add(&line, start, len);
		if (tree_parse_line(&parser, line.buf) < 0)
			goto done;
		if (!end)
			break;
		start = end + 1;
	}
	/* The `->` line's variables override the sub-tree file's own values. */
	for (size_t i = 0; override_names && i < override_names->count; i++)
		tree_assign(parser.tree, override_names->items[i], override_values->items[i]);
	for (size_t i = 0; i < parser.link_count; i++) {
		const struct tree_pending_link *link = &parser.links[i];
		if (tree_link(parser.tree, (const char *const *)link->names.items, link->names.count, err) < 0) {
			parser.line = link->line;
			tree_err_locate(err, file, link->line);
			cp_err_prefix(err, "&LINK: ");
			goto done;
		}
	}
	if (parser.tab_lines)
		strvec_push_owned(&parser.tree->warnings,
				  xasprintf("%s:%d: a tab in an indent counts as one space, as in file-tree (%d "
					    "line%s indented with tabs); indent with spaces",
					    file, parser.first_tab_line, parser.tab_lines, parser.tab_lines == 1 ? "" : "s"));
	*out = parser.tree;
	parser.tree = NULL;
	result = 0;
done:
	tree_free(parser.tree);
	for (size_t i = 0; i < parser.link_count; i++)
		strvec_release(&parser.links[i].names);
	free(parser.links);
	free(parser.stack);
	strbuf_release(&line);
	return result;
}

int tree_parse_string(const char *text, const char *name, const struct tree_search *search, struct tree **out,
		      struct cp_err *err)
{
	return tree_parse_text(text, name ? name : "<string>", ".", search, 0, NULL, NULL, out, err);
}

int tree_parse_file(const char *path, const struct tree_search *search, struct tree **out, struct cp_err *err)
{
	struct strbuf text = STRBUF_INIT, dir = STRBUF_INIT, with_suffix = STRBUF_INIT;
	struct stat st;
	*out = NULL;
	/* Like file-tree's read(): "study" finds "study.tree". */
	if (stat(path, &st) && !str_ends_with(path, ".tree")) {
		strbuf_addf(&with_suffix, "%s.tree", path);
		if (!stat(with_suffix.buf, &st))
			path = with_suffix.buf;
	}
	int result = tree_read_file(path, &text, err);
	if (!result) {
		tree_dirname(path, &dir);
		result = tree_parse_text(text.buf, path, dir.buf, search, 0, NULL, NULL, out, err);
	}
	strbuf_release(&text);
	strbuf_release(&dir);
	strbuf_release(&with_suffix);
	return result;
}
