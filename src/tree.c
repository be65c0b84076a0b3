/*
 * tree: the file-tree `.tree` format, as cpipe-tree(5) (man/cpipe-tree.5)
 * describes it section by section.
 *
 * Parsing is line by line (file-tree's own model): each line finds its parent
 * through a stack of (indent, node) pairs, then is classified as a sub-tree,
 * an assignment, a link or a template. Links and the `->` line's variables
 * are applied once the whole file has been read.
 *
 * Filling substitutes singular values into the template text and re-parses
 * the result until nothing changes, so a value may itself hold placeholders
 * and optional groups; then unfilled optional groups are dropped
 * (cpipe-tree(5), FILLING A TEMPLATE).
 */
#include "cpipe/tree.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A sub-tree that includes itself would otherwise recurse forever. */
#define TREE_MAX_SUBTREE_DEPTH 32
/* Values that refer to themselves (A = "{A}") would otherwise expand forever. */
#define TREE_MAX_FILL_PASSES 32
#define TREE_MAX_FILL_LENGTH ((size_t)8 * 1024)
#define TREE_MAX_FILL_FIELDS 4096

/* Stack node standing for a `->` line: nothing may nest below it. */
#define TREE_NODE_SUBTREE (-2L)

/* ---------------------------------------------------------------- values */

void tree_value_release(struct tree_value *value)
{
	FREE_AND_NULL(value->text);
	value->type = TREE_VALUE_STRING;
	value->integer = 0;
	value->real = 0.0;
}

void tree_value_copy(struct tree_value *dst, const struct tree_value *src)
{
	*dst = *src;
	dst->text = src->text ? xstrdup(src->text) : NULL;
}

double tree_value_number(const struct tree_value *value)
{
	return value->type == TREE_VALUE_INT ? (double)value->integer : value->real;
}

int tree_value_compare(const struct tree_value *a, const struct tree_value *b)
{
	if (!a->text || !b->text)
		return (a->text != NULL) - (b->text != NULL);
	bool a_number = a->type != TREE_VALUE_STRING;
	bool b_number = b->type != TREE_VALUE_STRING;
	/* Python cannot order a number against a string; numbers first keeps sorting total. */
	if (a_number != b_number)
		return a_number ? -1 : 1;
	if (a_number) {
		if (a->type == TREE_VALUE_INT && b->type == TREE_VALUE_INT)
			return (a->integer > b->integer) - (a->integer < b->integer);
		double x = tree_value_number(a), y = tree_value_number(b);
		/* NaN sorts after every number so that the order stays total. */
		if (isnan(x) || isnan(y))
			return isnan(x) - isnan(y);
		return (x > y) - (x < y);
	}
	int c = strcmp(a->text, b->text);
	return (c > 0) - (c < 0);
}

/* ---------------------------------------------------------- placeholders */

static long tree_placeholder_index(const struct tree *tree, const char *name)
{
	for (size_t i = 0; i < tree->placeholder_count; i++)
		if (!strcmp(tree->placeholders[i].name, name))
			return (long)i;
	return -1;
}

static void tree_placeholder_release_values(struct tree_placeholder *placeholder)
{
	for (size_t i = 0; i < placeholder->count; i++)
		tree_value_release(&placeholder->values[i]);
	FREE_AND_NULL(placeholder->values);
	placeholder->count = 0;
}

/* Renumber link groups 0..n-1 and dissolve groups left with fewer than two members. */
static void tree_compact_links(struct tree *tree)
{
	int old_count = tree->link_count;
	int next = 0;
	for (int group = 0; group < old_count; group++) {
		size_t members = 0;
		for (size_t i = 0; i < tree->placeholder_count; i++)
			members += tree->placeholders[i].link == group;
		for (size_t i = 0; i < tree->placeholder_count; i++) {
			if (tree->placeholders[i].link == group)
				tree->placeholders[i].link = members >= 2 ? next : -1;
		}
		if (members >= 2)
			next++;
	}
	tree->link_count = next;
}

static void tree_remove_placeholder(struct tree *tree, size_t index)
{
	struct tree_placeholder *placeholder = &tree->placeholders[index];
	tree_placeholder_release_values(placeholder);
	free(placeholder->name);
	memmove(placeholder, placeholder + 1, (tree->placeholder_count - index - 1) * sizeof(*placeholder));
	tree->placeholder_count--;
	tree_compact_links(tree);
}

void tree_set_placeholder(struct tree *tree, const char *name, const struct tree_value *values, size_t count,
			  bool multiple)
{
	long index = tree_placeholder_index(tree, name);
	bool undefined = count == 0 || (count == 1 && !multiple && !values[0].text);
	if (undefined) {
		if (index >= 0)
			tree_remove_placeholder(tree, (size_t)index);
		return;
	}
	/* Copy first: `values` may be this placeholder's own array. */
	struct tree_value *copy = xcalloc(count, sizeof(*copy));
	for (size_t i = 0; i < count; i++)
		tree_value_copy(&copy[i], &values[i]);
	struct tree_placeholder *placeholder;
	if (index < 0) {
		ALLOC_GROW(tree->placeholders, tree->placeholder_count + 1, tree->placeholder_cap);
		placeholder = &tree->placeholders[tree->placeholder_count++];
		placeholder->name = xstrdup(name);
		placeholder->values = NULL;
		placeholder->count = 0;
	} else {
		placeholder = &tree->placeholders[index];
		tree_placeholder_release_values(placeholder);
	}
	placeholder->values = copy;
	placeholder->count = count;
	placeholder->multiple = multiple || count > 1;
	placeholder->link = -1;
	tree_compact_links(tree);
}

/* Set a singular string value (NULL: make it undefined). */
static void tree_set_singular(struct tree *tree, const char *name, const char *text)
{
	struct tree_value value = {(char *)text, TREE_VALUE_STRING, 0, 0.0};
	tree_set_placeholder(tree, name, &value, 1, false);
}

/*
 * The right-hand side of `name = value` as file-tree reads it: a value with a
 * comma is a list of trimmed items ("None" items are None); a lone "None" is
 * undefined (file-tree 1.6.1 crashes there).
 */
static void tree_assign(struct tree *tree, const char *name, const char *text)
{
	if (!strchr(text, ',')) {
		tree_set_singular(tree, name, strcmp(text, "None") ? text : NULL);
		return;
	}
	struct strvec items = STRVEC_INIT;
	strvec_split(&items, text, ',', true);
	struct tree_value *values = xcalloc(items.count, sizeof(*values));
	for (size_t i = 0; i < items.count; i++)
		values[i].text = strcmp(items.items[i], "None") ? items.items[i] : NULL;
	tree_set_placeholder(tree, name, values, items.count, true);
	free(values);
	strvec_release(&items);
}

const struct tree_placeholder *tree_find_placeholder(const struct tree *tree, const char *name)
{
	/* "A/B/x", then "B/x", then "x": a sub-tree's own values win inside it. */
	for (const char *candidate = name;;) {
		long index = tree_placeholder_index(tree, candidate);
		if (index >= 0)
			return &tree->placeholders[index];
		const char *slash = strchr(candidate, '/');
		if (!slash)
			return NULL;
		candidate = slash + 1;
	}
}

int tree_link(struct tree *tree, const char *const *names, size_t count, struct cp_err *err)
{
	if (!count)
		return 0;
	bool *member = xcalloc(tree->placeholder_count, sizeof(*member));
	bool *group_joined = xcalloc((size_t)tree->link_count + 1, sizeof(*group_joined));
	for (size_t i = 0; i < count; i++) {
		long index = tree_placeholder_index(tree, names[i]);
		if (index < 0) {
			cp_err_set(err, NULL, 0, "No parameter value available for %s (a linked placeholder needs a value)",
				   names[i]);
			free(member);
			free(group_joined);
			return -1;
		}
		member[index] = true;
		if (tree->placeholders[index].link >= 0)
			group_joined[tree->placeholders[index].link] = true;
	}
	/* Groups that share a name merge: linking is transitive. */
	for (size_t i = 0; i < tree->placeholder_count; i++) {
		int link = tree->placeholders[i].link;
		if (link >= 0 && group_joined[link])
			member[i] = true;
	}
	long first = -1;
	for (size_t i = 0; i < tree->placeholder_count; i++) {
		if (!member[i])
			continue;
		if (first < 0) {
			first = (long)i;
			continue;
		}
		const struct tree_placeholder *a = &tree->placeholders[first], *b = &tree->placeholders[i];
		if (a->count != b->count) {
			cp_err_set(err, NULL, 0,
				   "linked placeholders must have the same number of values: %s has %zu, %s has %zu",
				   a->name, a->count, b->name, b->count);
			free(member);
			free(group_joined);
			return -1;
		}
	}
	int group = tree->link_count++;
	for (size_t i = 0; i < tree->placeholder_count; i++)
		if (member[i])
			tree->placeholders[i].link = group;
	tree_compact_links(tree);
	free(member);
	free(group_joined);
	return 0;
}

/* ------------------------------------------------------------- templates */

static bool tree_template_has_key(const struct tree_template *template, const char *key)
{
	for (size_t i = 0; i < template->key_count; i++)
		if (!strcmp(template->keys[i], key))
			return true;
	return false;
}

static void tree_template_add_key(struct tree_template *template, const char *key)
{
	if (tree_template_has_key(template, key))
		return;
	template->keys = xrealloc(template->keys, (template->key_count + 1) * sizeof(*template->keys));
	template->keys[template->key_count++] = xstrdup(key);
}

static size_t tree_add_template(struct tree *tree, const char *path, const char *segment, long parent,
				bool external, const char *file, int line)
{
	ALLOC_GROW(tree->templates, tree->template_count + 1, tree->template_cap);
	struct tree_template *template = &tree->templates[tree->template_count];
	template->path = xstrdup(path);
	template->segment = xstrdup(segment);
	template->keys = NULL;
	template->key_count = 0;
	template->parent = parent;
	template->external = external;
	template->file = file ? xstrdup(file) : NULL;
	template->line = line;
	return tree->template_count++;
}

/* file-tree's default key: the last path component up to its first dot. */
static char *tree_default_key(const char *segment)
{
	size_t len = strlen(segment);
	/* A trailing slash names the same directory; do not let it give the empty key. */
	while (len > 1 && segment[len - 1] == '/')
		len--;
	size_t start = len;
	while (start > 0 && segment[start - 1] != '/')
		start--;
	const char *dot = memchr(segment + start, '.', len - start);
	return xstrndup(segment + start, (size_t)((dot ? dot : segment + len) - (segment + start)));
}

static struct tree *tree_new(const char *name)
{
	struct tree *tree = xcalloc(1, sizeof(*tree));
	tree->file = xstrdup(name);
	size_t top = tree_add_template(tree, ".", ".", -1, false, name, 0);
	tree_template_add_key(&tree->templates[top], "");
	return tree;
}

void tree_free(struct tree *tree)
{
	if (!tree)
		return;
	for (size_t i = 0; i < tree->template_count; i++) {
		struct tree_template *template = &tree->templates[i];
		free(template->path);
		free(template->segment);
		for (size_t k = 0; k < template->key_count; k++)
			free(template->keys[k]);
		free(template->keys);
		free(template->file);
	}
	free(tree->templates);
	for (size_t i = 0; i < tree->placeholder_count; i++) {
		tree_placeholder_release_values(&tree->placeholders[i]);
		free(tree->placeholders[i].name);
	}
	free(tree->placeholders);
	free(tree->file);
	strvec_release(&tree->warnings);
	free(tree);
}

bool tree_template_is_external(const struct tree *tree, size_t index)
{
	for (long i = (long)index; i >= 0 && (size_t)i < tree->template_count; i = tree->templates[i].parent)
		if (tree->templates[i].external)
			return true;
	return false;
}

static void tree_add_suggestions(const struct tree *tree, const char *key, struct strbuf *out)
{
	/* Roughly difflib's 0.6 similarity cutoff, on edit distance. */
	struct strvec close = STRVEC_INIT;
	for (size_t i = 0; i < tree->template_count; i++) {
		const struct tree_template *template = &tree->templates[i];
		for (size_t k = 0; k < template->key_count; k++) {
			const char *candidate = template->keys[k];
			size_t longest = strlen(key) > strlen(candidate) ? strlen(key) : strlen(candidate);
			if (!*candidate || strvec_find(&close, candidate) >= 0)
				continue;
			if (str_distance(key, candidate) * 5 <= longest * 2)
				strvec_push(&close, candidate);
		}
	}
	strvec_sort(&close);
	for (size_t i = 0; i < close.count; i++) {
		strbuf_adds(out, i == 0 ? "; did you mean " : i + 1 == close.count ? " or " : ", ");
		strbuf_adds(out, close.items[i]);
	}
	if (close.count)
		strbuf_addch(out, '?');
	strvec_release(&close);
}

long tree_find_template(const struct tree *tree, const char *key, struct cp_err *err)
{
	long found = -1;
	size_t matches = 0;
	for (size_t i = 0; i < tree->template_count; i++) {
		if (tree_template_has_key(&tree->templates[i], key)) {
			if (found < 0)
				found = (long)i;
			matches++;
		}
	}
	if (matches == 1)
		return found;
	struct strbuf message = STRBUF_INIT;
	if (!matches) {
		strbuf_addf(&message, "Template key '%s' not found in the file-tree", key);
		tree_add_suggestions(tree, key, &message);
	} else {
		strbuf_addf(&message, "There are multiple templates matching key '%s': ", key);
		const char *separator = "";
		for (size_t i = 0; i < tree->template_count; i++) {
			if (!tree_template_has_key(&tree->templates[i], key))
				continue;
			strbuf_addf(&message, "%s%s", separator, tree->templates[i].path);
			separator = ", ";
		}
	}
	cp_err_set(err, tree->file, 0, "%s", message.buf);
	strbuf_release(&message);
	return -1;
}

void tree_template_keys(const struct tree *tree, struct strvec *out)
{
	struct strmap seen = STRMAP_INIT;
	struct strvec order = STRVEC_INIT;
	for (size_t i = 0; i < tree->template_count; i++) {
		const struct tree_template *template = &tree->templates[i];
		for (size_t k = 0; k < template->key_count; k++) {
			size_t uses = 0;
			if (!strmap_get(&seen, template->keys[k], &uses))
				strvec_push(&order, template->keys[k]);
			strmap_put(&seen, template->keys[k], uses + 1);
		}
	}
	strvec_sort(&order);
	for (size_t i = 0; i < order.count; i++) {
		size_t uses = 0;
		strmap_get(&seen, order.items[i], &uses);
		/* Duplicated keys are hidden, as file-tree's template_keys() does. */
		if (uses == 1)
			strvec_push(out, order.items[i]);
	}
	strvec_release(&order);
	strmap_release(&seen);
}

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

/* ---------------------------------------------------------------- filling */

/* Where filling looks values up: overrides first, then the tree, at each level of the scope fallback. */
struct tree_lookup {
	const struct tree *tree;
	const char *const *names;
	const char *const *values;
	size_t count;
};

enum tree_lookup_kind {
	TREE_LOOKUP_UNDEFINED,
	TREE_LOOKUP_SINGULAR,
	TREE_LOOKUP_MULTIPLE,
};

/* `*resolved` gets the scope level the value was found at ("x" for "P/x" falling back). */
static enum tree_lookup_kind tree_lookup_value(const struct tree_lookup *lookup, const char *name,
					       const char **text, const char **resolved)
{
	for (const char *candidate = name;;) {
		bool overridden = false;
		for (size_t i = 0; i < lookup->count; i++) {
			if (strcmp(lookup->names[i], candidate))
				continue;
			overridden = true;
			if (lookup->values[i]) {
				*text = lookup->values[i];
				*resolved = candidate;
				return TREE_LOOKUP_SINGULAR;
			}
			break;
		}
		/* An override of None makes this scope level undefined, as update(x=None) does. */
		long index = overridden ? -1 : tree_placeholder_index(lookup->tree, candidate);
		if (index >= 0) {
			const struct tree_placeholder *placeholder = &lookup->tree->placeholders[index];
			if (placeholder->multiple)
				return TREE_LOOKUP_MULTIPLE;
			if (placeholder->count == 1 && placeholder->values[0].text) {
				*text = placeholder->values[0].text;
				*resolved = candidate;
				return TREE_LOOKUP_SINGULAR;
			}
		}
		const char *slash = strchr(candidate, '/');
		if (!slash)
			return TREE_LOOKUP_UNDEFINED;
		candidate = slash + 1;
	}
}

struct tree_substitution {
	const struct tree_lookup *lookup;
	bool changed;
	size_t fields; /* substituted so far, over all passes */
};

/* Whether `value` holds a field named `name` ("{name}" or "{name:spec}"). */
static bool tree_refers_to(const char *value, const char *name)
{
	size_t len = strlen(name);
	for (const char *open = strchr(value, '{'); open; open = strchr(open + 1, '{'))
		if (!strncmp(open + 1, name, len) && (open[len + 1] == '}' || open[len + 1] == ':'))
			return true;
	return false;
}

static int tree_substitute_field(void *data, const char *name, size_t name_len, const char *spec, size_t spec_len,
				 struct strbuf *out, struct cp_err *err)
{
	struct tree_substitution *substitution = data;
	char *key = xstrndup(name, name_len);
	const char *text = NULL, *resolved = NULL;
	int result = 0;
	if (tree_lookup_value(substitution->lookup, key, &text, &resolved) == TREE_LOOKUP_SINGULAR) {
		if (tree_refers_to(text, resolved)) {
			cp_err_set(err, NULL, 0, "placeholder '%s' refers to itself: %s = %s", key, resolved, text);
			free(key);
			return -1;
		}
		char *spec_text = spec ? xstrndup(spec, spec_len) : NULL;
		result = template_format(spec_text, text, out, err);
		if (result < 0)
			cp_err_prefix(err, "placeholder '%s': ", key);
		free(spec_text);
		substitution->changed = true;
		/* Stop a value that multiplies itself within one pass, too. */
		if (!result && (out->len > TREE_MAX_FILL_LENGTH || ++substitution->fields > TREE_MAX_FILL_FIELDS)) {
			cp_err_set(err, NULL, 0,
				   "filling placeholder '%s' makes a path longer than %zu bytes or with more than %d "
				   "placeholders (does a value refer to itself?)",
				   key, TREE_MAX_FILL_LENGTH, TREE_MAX_FILL_FIELDS);
			result = -1;
		}
	} else {
		template_add_field(out, name, name_len, spec, spec_len);
	}
	free(key);
	return result;
}

/* Substitute singular values until nothing changes: filled values are templates too. */
static int tree_substitute(const struct tree_lookup *lookup, const char *text, struct strbuf *out,
			   struct cp_err *err)
{
	struct strbuf current = STRBUF_INIT, next = STRBUF_INIT;
	strbuf_adds(&current, text);
	struct tree_substitution substitution = {lookup, false, 0};
	for (int pass = 0;; pass++) {
		substitution.changed = false;
		strbuf_reset(&next);
		if (template_scan_fields(current.buf, tree_substitute_field, &substitution, &next, err) < 0)
			goto fail;
		struct strbuf swap = current;
		current = next;
		next = swap;
		if (!substitution.changed)
			break;
		if (pass + 1 >= TREE_MAX_FILL_PASSES || current.len > TREE_MAX_FILL_LENGTH) {
			cp_err_set(err, NULL, 0,
				   "placeholder values keep expanding while filling %s (does a value refer to itself?)",
				   text);
			goto fail;
		}
	}
	strbuf_reset(out);
	strbuf_add(out, current.buf, current.len);
	strbuf_release(&current);
	strbuf_release(&next);
	return 0;
fail:
	strbuf_release(&current);
	strbuf_release(&next);
	return -1;
}

static int tree_fill_text(const struct tree_lookup *lookup, const char *text, struct strbuf *out,
			  struct cp_err *err)
{
	struct strbuf filled = STRBUF_INIT;
	struct template parsed = TEMPLATE_INIT;
	struct strvec missing = STRVEC_INIT;
	int result = -1;
	if (tree_substitute(lookup, text, &filled, err) < 0)
		goto done;
	if (template_parse(filled.buf, &parsed, err) < 0)
		goto done;
	/* A group survives only if every placeholder in it was filled. */
	bool *unfilled_group = xcalloc(parsed.optional_count + 1, sizeof(*unfilled_group));
	for (size_t i = 0; i < parsed.count; i++) {
		const struct template_part *part = &parsed.parts[i];
		if (part->kind != TEMPLATE_FIELD)
			continue;
		if (part->optional >= 0 && (size_t)part->optional < parsed.optional_count)
			unfilled_group[part->optional] = true;
		else if (part->optional < 0 && strvec_find(&missing, part->text) < 0)
			strvec_push(&missing, part->text);
	}
	if (missing.count) {
		struct strbuf names = STRBUF_INIT;
		strvec_sort(&missing);
		for (size_t i = 0; i < missing.count; i++)
			strbuf_addf(&names, "%s'%s'", i ? ", " : "", missing.items[i]);
		/* A value with braces (a directory named "{a}") made them: name the path it gave. */
		bool from_value = strcmp(filled.buf, text) != 0;
		cp_err_set(err, NULL, 0, "Missing placeholder values for {%s} in %s%s%s", names.buf, text,
			   from_value ? "; a placeholder value holds braces, giving the path " : "",
			   from_value ? filled.buf : "");
		strbuf_release(&names);
		free(unfilled_group);
		goto done;
	}
	struct strbuf path = STRBUF_INIT;
	for (size_t i = 0; i < parsed.count; i++) {
		const struct template_part *part = &parsed.parts[i];
		if (part->optional >= 0 && (size_t)part->optional < parsed.optional_count && unfilled_group[part->optional])
			continue;
		strbuf_adds(&path, part->text);
	}
	free(unfilled_group);
	path_normalize(path.buf, out);
	strbuf_release(&path);
	result = 0;
done:
	strvec_release(&missing);
	template_release(&parsed);
	strbuf_release(&filled);
	return result;
}

/* Give an error without a location the location of a template or line. */
static void tree_err_locate(struct cp_err *err, const char *file, int line)
{
	if (!err || err->file || !file)
		return;
	err->file = xstrdup(file);
	err->line = line;
}

int tree_fill(const struct tree *tree, size_t index, struct strbuf *out, struct cp_err *err)
{
	if (index >= tree->template_count)
		BUG("tree_fill: template %zu of %zu", index, tree->template_count);
	const struct tree_template *template = &tree->templates[index];
	struct tree_lookup lookup = {tree, NULL, NULL, 0};
	if (tree_fill_text(&lookup, template->path, out, err) < 0) {
		tree_err_locate(err, template->file, template->line);
		return -1;
	}
	return 0;
}

int tree_fill_template(const struct tree *tree, const char *template_text, const char *const *names,
		       const char *const *values, size_t override_count, struct strbuf *out, struct cp_err *err)
{
	struct tree_lookup lookup = {tree, names, values, override_count};
	return tree_fill_text(&lookup, template_text, out, err);
}

int tree_substitute_singular(const struct tree *tree, const char *template_text, struct strbuf *out,
			     struct cp_err *err)
{
	struct tree_lookup lookup = {tree, NULL, NULL, 0};
	return tree_substitute(&lookup, template_text, out, err);
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
	struct tree_lookup sub_lookup = {sub, NULL, NULL, 0};
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

/* ------------------------------------------------------------ to_string */

static void tree_print_values(const struct tree *tree, struct strbuf *out)
{
	size_t count = tree->placeholder_count;
	size_t *order = xcalloc(count, sizeof(*order));
	for (size_t i = 0; i < count; i++)
		order[i] = i;
	/* Insertion sort by name: placeholder lists are short. */
	for (size_t i = 1; i < count; i++) {
		size_t current = order[i], j = i;
		while (j > 0 && strcmp(tree->placeholders[order[j - 1]].name, tree->placeholders[current].name) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = current;
	}
	for (size_t i = 0; i < count; i++) {
		const struct tree_placeholder *placeholder = &tree->placeholders[order[i]];
		size_t start = out->len;
		strbuf_addf(out, "%s = ", placeholder->name);
		for (size_t v = 0; v < placeholder->count; v++) {
			const char *text = placeholder->values[v].text;
			strbuf_addf(out, "%s%s", v ? ", " : "", text ? text : "None");
		}
		/* "e =" and "t = a, " read back the same without their trailing blank. */
		while (out->len > start && out->buf[out->len - 1] == ' ')
			strbuf_setlen(out, out->len - 1);
		strbuf_addch(out, '\n');
	}
	struct strvec groups = STRVEC_INIT;
	for (int group = 0; group < tree->link_count; group++) {
		struct strbuf line = STRBUF_INIT;
		for (size_t i = 0; i < count; i++) {
			const struct tree_placeholder *placeholder = &tree->placeholders[order[i]];
			if (placeholder->link == group)
				strbuf_addf(&line, "%s%s", line.len ? ", " : "&LINK ", placeholder->name);
		}
		if (line.len)
			strvec_push(&groups, line.buf);
		strbuf_release(&line);
	}
	strvec_sort(&groups);
	for (size_t i = 0; i < groups.count; i++)
		strbuf_addf(out, "%s\n", groups.items[i]);
	strvec_release(&groups);
	free(order);
}

/* Templates in printing order: files (no children) before directories, then by name. */
struct tree_printer {
	const struct tree *tree;
	bool *is_directory;
	struct strbuf *out;
};

static int tree_print_order(const struct tree_printer *printer, size_t a, size_t b)
{
	bool a_dir = printer->is_directory[a], b_dir = printer->is_directory[b];
	if (a_dir != b_dir)
		return a_dir ? 1 : -1;
	return strcmp(printer->tree->templates[a].segment, printer->tree->templates[b].segment);
}

static void tree_sort_indices(const struct tree_printer *printer, size_t *items, size_t count)
{
	/* Insertion sort: a directory has few children. */
	for (size_t i = 1; i < count; i++) {
		size_t current = items[i], j = i;
		while (j > 0 && tree_print_order(printer, items[j - 1], current) > 0) {
			items[j] = items[j - 1];
			j--;
		}
		items[j] = current;
	}
}

static void tree_print_keys(const struct tree_template *template, bool top, struct strbuf *out)
{
	char *default_key = tree_default_key(template->segment);
	size_t printed = 0;
	bool only_default = template->key_count == 1 && !strcmp(template->keys[0], default_key);
	if (top) {
		/* The top level's "" key is implied and cannot be written. */
		for (size_t k = 0; k < template->key_count; k++) {
			if (!*template->keys[k])
				continue;
			strbuf_addf(out, "%s%s", printed++ ? "," : " (", template->keys[k]);
		}
		if (printed)
			strbuf_addch(out, ')');
	} else if (!template->key_count) {
		strbuf_adds(out, " ()");
	} else if (!only_default) {
		strbuf_adds(out, " (");
		for (size_t k = 0; k < template->key_count; k++)
			strbuf_addf(out, "%s%s", k ? "," : "", template->keys[k]);
		strbuf_addch(out, ')');
	}
	free(default_key);
}

static void tree_print_template(const struct tree_printer *printer, size_t index, size_t depth)
{
	const struct tree *tree = printer->tree;
	const struct tree_template *template = &tree->templates[index];
	struct strbuf *out = printer->out;
	for (size_t i = 0; i < depth * 4; i++)
		strbuf_addch(out, ' ');
	if (template->external)
		strbuf_addch(out, '!');
	strbuf_adds(out, template->segment);
	tree_print_keys(template, index == 0, out);
	strbuf_addch(out, '\n');
	if (!printer->is_directory[index])
		return;

	size_t *children = xcalloc(tree->template_count, sizeof(*children));
	size_t count = 0;
	for (size_t i = index + 1; i < tree->template_count; i++)
		if (tree->templates[i].parent == (long)index)
			children[count++] = i;
	tree_sort_indices(printer, children, count);
	for (size_t i = 0; i < count; i++)
		tree_print_template(printer, children[i], depth + 1);
	free(children);
}

void tree_to_string(const struct tree *tree, struct strbuf *out)
{
	tree_print_values(tree, out);
	strbuf_addch(out, '\n');
	if (!tree->template_count)
		return;
	struct tree_printer printer = {tree, xcalloc(tree->template_count, sizeof(bool)), out};
	for (size_t i = 0; i < tree->template_count; i++)
		if (tree->templates[i].parent >= 0)
			printer.is_directory[tree->templates[i].parent] = true;
	/* The top level first (as "."), then the '!' templates. */
	tree_print_template(&printer, 0, 0);
	size_t *roots = xcalloc(tree->template_count, sizeof(*roots));
	size_t count = 0;
	for (size_t i = 1; i < tree->template_count; i++)
		if (tree->templates[i].parent < 0)
			roots[count++] = i;
	tree_sort_indices(&printer, roots, count);
	for (size_t i = 0; i < count; i++)
		tree_print_template(&printer, roots[i], 0);
	free(roots);
	free(printer.is_directory);
}
