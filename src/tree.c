/*
 * tree: the file-tree `.tree` format, as cpipe-tree(5) (man/cpipe-tree.5)
 * describes it section by section. This file holds the tree itself: values,
 * placeholders, templates, filling and printing; the parser (nesting,
 * sub-trees and their scoping, links) is in tree_parse.c, and
 * src/tree_int.h is what the two share.
 *
 * Filling substitutes singular values into the template text and re-parses
 * the result until nothing changes, so a value may itself hold placeholders
 * and optional groups; then unfilled optional groups are dropped
 * (cpipe-tree(5), FILLING A TEMPLATE).
 */
#include "tree_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Values that refer to themselves (A = "{A}") would otherwise expand forever. */
#define TREE_MAX_FILL_PASSES 32
#define TREE_MAX_FILL_LENGTH ((size_t)8 * 1024)
#define TREE_MAX_FILL_FIELDS 4096

/* ---------------------------------------------------------------- values */

void tree_value_release(struct tree_value *value)
{
	FREE_AND_NULL(value->text);
	value->type = TREE_VALUE_STRING;
	value->integer = 0;
	value->real = 0.0;
	value->literal = false;
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

long tree_placeholder_index(const struct tree *tree, const char *name)
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
	struct tree_value value = {(char *)text, TREE_VALUE_STRING, 0, 0.0, false};
	tree_set_placeholder(tree, name, &value, 1, false);
}

/*
 * The right-hand side of `name = value` as file-tree reads it: a value with a
 * comma is a list of trimmed items ("None" items are None); a lone "None" is
 * undefined (file-tree 1.6.1 crashes there).
 */
void tree_assign(struct tree *tree, const char *name, const char *text)
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

void tree_template_add_key(struct tree_template *template, const char *key)
{
	if (tree_template_has_key(template, key))
		return;
	template->keys = xrealloc(template->keys, (template->key_count + 1) * sizeof(*template->keys));
	template->keys[template->key_count++] = xstrdup(key);
}

size_t tree_add_template(struct tree *tree, const char *path, const char *segment, long parent,
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
char *tree_default_key(const char *segment)
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

struct tree *tree_new(const char *name)
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

/* ---------------------------------------------------------------- filling */

enum tree_lookup_kind {
	TREE_LOOKUP_UNDEFINED,
	TREE_LOOKUP_SINGULAR,
	TREE_LOOKUP_MULTIPLE,
};

/* `*resolved` gets the scope level the value was found at ("x" for "P/x" falling back). */
static enum tree_lookup_kind tree_lookup_value(const struct tree_lookup *lookup, const char *name,
					       const struct tree_value **value, const char **resolved)
{
	for (const char *candidate = name;;) {
		bool overridden = false;
		for (size_t i = 0; i < lookup->count; i++) {
			if (strcmp(lookup->names[i], candidate))
				continue;
			overridden = true;
			if (lookup->values[i] && lookup->values[i]->text) {
				*value = lookup->values[i];
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
				*value = &placeholder->values[0];
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

/* The literal singular value `name` fills in, or NULL: one to put in as data, not as a template. */
static const struct tree_value *tree_literal_value(const struct tree_lookup *lookup, const char *name)
{
	const struct tree_value *value = NULL;
	const char *resolved = NULL;
	if (tree_lookup_value(lookup, name, &value, &resolved) != TREE_LOOKUP_SINGULAR || !value->literal)
		return NULL;
	return value;
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

/*
 * Whether `text`, put into a template, would be read as something other than itself: a group,
 * a field or a wildcard. Text holding '/' spans directories and is put in all the same, as
 * globbing puts in every value of a list holding '/'.
 */
static bool tree_reads_as_syntax(const char *text)
{
	return text[strcspn(text, "[]{}*?")] && !strchr(text, '/');
}

static int tree_substitute_field(void *data, const char *name, size_t name_len, const char *spec, size_t spec_len,
				 struct strbuf *out, struct cp_err *err)
{
	struct tree_substitution *substitution = data;
	char *key = xstrndup(name, name_len);
	const struct tree_value *value = NULL;
	const char *resolved = NULL;
	int result = 0;
	if (tree_lookup_value(substitution->lookup, key, &value, &resolved) == TREE_LOOKUP_SINGULAR &&
	    !(value->literal && substitution->lookup->keep_literal)) {
		const char *text = value->text;
		if (tree_refers_to(text, resolved)) {
			cp_err_set(err, NULL, 0, "placeholder '%s' refers to itself: %s = %s", key, resolved, text);
			free(key);
			return -1;
		}
		char *spec_text = spec ? xstrndup(spec, spec_len) : NULL;
		size_t start = out->len;
		result = template_format(spec_text, text, out, err);
		if (result < 0)
			cp_err_prefix(err, "placeholder '%s': ", key);
		free(spec_text);
		if (!result && value->literal && tree_reads_as_syntax(out->buf + start)) {
			strbuf_setlen(out, start);
			template_add_field(out, name, name_len, spec, spec_len);
			free(key);
			return 0;
		}
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
int tree_substitute(const struct tree_lookup *lookup, const char *text, struct strbuf *out,
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
		if (part->kind != TEMPLATE_FIELD || tree_literal_value(lookup, part->text))
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
		/* A tree-file value with braces (A = {b}) made them: name the path it gave. */
		bool from_value = strcmp(filled.buf, text) != 0;
		cp_err_set(err, NULL, 0, "Missing placeholder values for {%s} in %s%s%s", names.buf, text,
			   from_value ? "; a placeholder value holds braces, giving the path " : "",
			   from_value ? filled.buf : "");
		strbuf_release(&names);
		free(unfilled_group);
		goto done;
	}
	/* Literal values go in only now, as data: nothing in them is read as template syntax. */
	struct strbuf path = STRBUF_INIT;
	result = 0;
	for (size_t i = 0; i < parsed.count && !result; i++) {
		const struct template_part *part = &parsed.parts[i];
		if (part->optional >= 0 && (size_t)part->optional < parsed.optional_count && unfilled_group[part->optional])
			continue;
		if (part->kind != TEMPLATE_FIELD) {
			strbuf_adds(&path, part->text);
			continue;
		}
		result = template_format(part->spec, tree_literal_value(lookup, part->text)->text, &path, err);
		if (result < 0)
			cp_err_prefix(err, "placeholder '%s': ", part->text);
	}
	free(unfilled_group);
	if (!result)
		path_normalize(path.buf, out);
	strbuf_release(&path);
done:
	strvec_release(&missing);
	template_release(&parsed);
	strbuf_release(&filled);
	return result;
}

/* Give an error without a location the location of a template or line. */
void tree_err_locate(struct cp_err *err, const char *file, int line)
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
	struct tree_lookup lookup = {tree, NULL, NULL, 0, true};
	if (tree_fill_text(&lookup, template->path, out, err) < 0) {
		tree_err_locate(err, template->file, template->line);
		return -1;
	}
	return 0;
}

int tree_fill_template(const struct tree *tree, const char *template_text, const char *const *names,
		       const struct tree_value *const *values, size_t override_count, struct strbuf *out,
		       struct cp_err *err)
{
	struct tree_lookup lookup = {tree, names, values, override_count, true};
	return tree_fill_text(&lookup, template_text, out, err);
}

int tree_substitute_singular(const struct tree *tree, const char *template_text, struct strbuf *out,
			     struct cp_err *err)
{
	struct tree_lookup lookup = {tree, NULL, NULL, 0, false};
	return tree_substitute(&lookup, template_text, out, err);
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
