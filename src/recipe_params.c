/*
 * recipe_params.c: what a recipe adds to the tree's names (man/cpipe-recipes.5):
 * its parameters (`params: {dof: 12}`, constants of `run` that `--set`
 * overrides), its own placeholder values (`placeholders: {subject: [01, 02]}`)
 * and its glob keys (`in: ["*_mask"]`). The first two are mappings of names
 * the user chooses, which libcyaml cannot hold: they are read from the node
 * record of the first pass (recipe_yaml.c).
 */
#include "recipe_int.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading params: and placeholders: -------------------------------------- */

/* A parameter name: a word that `{name}` can hold and `--set RECIPE.NAME=V` can split (no '.'). */
static bool valid_param_name(const char *name)
{
	if (!*name || isdigit((unsigned char)*name) || *name == '-')
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
			return false;
	return true;
}

/* A placeholder name as templates write it: a word, '/' scoping it to a sub-tree. */
static bool valid_placeholder_name(const char *name)
{
	if (!*name || *name == '/')
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '/')
			return false;
	return true;
}

typedef int (*entry_fn)(struct recipe *r, const char *name, const struct node_line *node, struct cp_err *err);

/*
 * Call `entry` for each entry of the mapping field `field` (absent: nothing).
 * A key holding '.' cannot be told from nesting in the record's paths: such a
 * path whose parent is no node is taken as one (invalid) name.
 */
static int each_entry(struct recipe *r, const char *field, const char *example, entry_fn entry, struct cp_err *err)
{
	const struct node_line *top = recipe_lines_find(r->lines, field);
	if (!top)
		return 0;
	if (!top->mapping)
		return recipe_fail(err, r, top->line, field, "must be a mapping of names to values, e.g. %s: %s", field,
				   example);
	size_t length = strlen(field);
	struct strbuf parent = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < r->lines->count && !rc; i++) {
		const struct node_line *node = &r->lines->items[i];
		if (strncmp(node->path, field, length) || node->path[length] != '.')
			continue;
		const char *name = node->path + length + 1;
		const char *dot = strchr(name, '.');
		if (dot) {
			strbuf_reset(&parent);
			strbuf_addf(&parent, "%s.%.*s", field, (int)(dot - name), name);
			if (recipe_lines_find(r->lines, parent.buf))
				continue; /* inside an entry: the entry itself was looked at */
		}
		rc = entry(r, name, node, err);
	}
	strbuf_release(&parent);
	return rc;
}

static int read_param(struct recipe *r, const char *name, const struct node_line *node, struct cp_err *err)
{
	if (!valid_param_name(name))
		return recipe_fail(err, r, node->line, "params",
				   "'%s' is not a parameter name: use letters, digits, '_' and '-', starting with a "
				   "letter or '_'",
				   name);
	if (!node->scalar)
		return recipe_fail(err, r, node->line, "params",
				   "'%s': a parameter has one value (e.g. %s: 12); to make one job per value, give a "
				   "placeholder its values with placeholders:",
				   name, name);
	r->params = xrealloc(r->params, (r->param_count + 1) * sizeof(*r->params));
	r->params[r->param_count].name = xstrdup(name);
	r->params[r->param_count].value = xstrdup(node->scalar);
	r->param_count++;
	return 0;
}

/* The items of the list `placeholders.NAME`: single values only. */
static int list_values(struct recipe *r, const char *name, struct strvec *values, struct cp_err *err)
{
	char *prefix = xasprintf("placeholders.%s.", name);
	size_t length = strlen(prefix);
	int rc = 0;
	for (size_t i = 0; i < r->lines->count && !rc; i++) {
		const struct node_line *item = &r->lines->items[i];
		if (strncmp(item->path, prefix, length) || strchr(item->path + length, '.'))
			continue; /* another entry, or inside an item (the item itself is refused) */
		if (item->scalar)
			strvec_push(values, item->scalar);
		else
			rc = recipe_fail(err, r, item->line, "placeholders",
					 "'%s': each value must be a single value, not a list or a mapping", name);
	}
	free(prefix);
	return rc;
}

/* At least one value, each once, none empty, none leading out of the data root (as -p's may not). */
static int check_values(struct recipe *r, const char *name, int line, const struct strvec *values,
			struct cp_err *err)
{
	if (!values->count)
		return recipe_fail(err, r, line, "placeholders", "'%s': no values; give at least one", name);
	for (size_t i = 0; i < values->count; i++) {
		const char *value = values->items[i];
		const char *problem = !*value                                  ? "is empty"
				      : path_leaves_root(value)                ? "would lead out of the data root"
				      : strvec_find(values, value) != (long)i ? "is listed twice"
									       : NULL;
		if (problem)
			return recipe_fail(err, r, line, "placeholders", "'%s': the value '%s' %s", name, value, problem);
	}
	return 0;
}

static int read_values(struct recipe *r, const char *name, const struct node_line *node, struct cp_err *err)
{
	if (!valid_placeholder_name(name))
		return recipe_fail(err, r, node->line, "placeholders",
				   "'%s' is not a placeholder name: use letters, digits, '_', '-' and '/'", name);
	if (node->mapping)
		return recipe_fail(err, r, node->line, "placeholders",
				   "'%s': expected a value or a list of values, e.g. %s: [01, 02]", name, name);
	struct strvec values = STRVEC_INIT;
	if (node->scalar)
		strvec_push(&values, node->scalar);
	if ((!node->scalar && list_values(r, name, &values, err)) || check_values(r, name, node->line, &values, err)) {
		strvec_release(&values);
		return -1;
	}
	r->values = xrealloc(r->values, (r->value_count + 1) * sizeof(*r->values));
	r->values[r->value_count].placeholder = xstrdup(name);
	r->values[r->value_count].values = values;
	r->value_count++;
	return 0;
}

int recipe_read_params(struct recipe *r, struct cp_err *err)
{
	if (each_entry(r, "params", "{dof: 12}", read_param, err) ||
	    each_entry(r, "placeholders", "{subject: [01, 02]}", read_values, err))
		return -1;
	/* A parameter changes a job only through `run`: one it does not name would change nothing
	 * (a misspelt {name} in run is caught as unknown). */
	struct strvec names = STRVEC_INIT;
	int rc = recipe_run_names(r, &names, err);
	for (size_t i = 0; !rc && i < r->param_count; i++) {
		if (strvec_find(&names, r->params[i].name) >= 0)
			continue;
		char *path = xasprintf("params.%s", r->params[i].name);
		rc = recipe_fail(err, r, recipe_field_line(r, path), "params", "'%s' is not used in run (as {%s})",
				 r->params[i].name, r->params[i].name);
		free(path);
	}
	strvec_release(&names);
	if (rc)
		return -1;
	for (size_t i = 0; i < r->value_count; i++) {
		const char *name = r->values[i].placeholder;
		if (strvec_find(&r->in, name) >= 0 || strvec_find(&r->out, name) >= 0 || strvec_find(&r->ref, name) >= 0)
			return recipe_fail(err, r, recipe_field_line(r, "placeholders"), "placeholders",
					   "'%s' is a template key of this recipe; placeholders: takes placeholder names",
					   name);
	}
	for (size_t i = 0; i < r->out.count; i++)
		if (recipe_is_key_pattern(r->out.items[i]))
			return recipe_fail(err, r, recipe_item_line(r, "out", i), "out",
					   "'%s' is a glob key; 'out' takes the template keys the recipe makes, one by one",
					   r->out.items[i]);
	return 0;
}

void recipe_params_release(struct recipe *r)
{
	for (size_t i = 0; i < r->param_count; i++) {
		free(r->params[i].name);
		free(r->params[i].value);
	}
	free(r->params);
	for (size_t i = 0; i < r->value_count; i++) {
		free(r->values[i].placeholder);
		strvec_release(&r->values[i].values);
	}
	free(r->values);
	for (size_t i = 0; i < r->pattern_count; i++) {
		free(r->patterns[i].pattern);
		strvec_release(&r->patterns[i].keys);
	}
	free(r->patterns);
}

/* ---- lookups ------------------------------------------------------------------- */

const struct recipe_param *recipe_find_param(const struct recipe *r, const char *name)
{
	for (size_t i = 0; i < r->param_count; i++)
		if (!strcmp(r->params[i].name, name))
			return &r->params[i];
	return NULL;
}

const struct recipe_values *recipe_find_values(const struct recipe *r, const char *name)
{
	for (size_t i = 0; i < r->value_count; i++)
		if (!strcmp(r->values[i].placeholder, name))
			return &r->values[i];
	return NULL;
}

bool recipe_is_key_pattern(const char *name)
{
	return strpbrk(name, "*?[") != NULL;
}

const struct recipe_key_pattern *recipe_find_pattern(const struct recipe *r, const char *pattern)
{
	for (size_t i = 0; i < r->pattern_count; i++)
		if (!strcmp(r->patterns[i].pattern, pattern))
			return &r->patterns[i];
	return NULL;
}

/* ---- --set --------------------------------------------------------------------- */

/* Set parameter `param` of `r` if it declares it; true when it did. */
static bool set_one(struct recipe *r, const char *param, const char *value)
{
	const struct recipe_param *found = recipe_find_param(r, param);
	if (!found)
		return false;
	struct recipe_param *p = &r->params[found - r->params];
	free(p->value);
	p->value = xstrdup(value);
	return true;
}

/* "--set A: WHAT 'NAME'", with the name of `known` the user likely meant, else with `hint`; returns -1. */
static int set_fail(struct cp_err *err, const char *assignment, const char *what, const char *name,
		    const struct strvec *known, const char *hint)
{
	const char *suggestion = recipe_suggest_name(name, known);
	if (suggestion)
		cp_err_set(err, NULL, 0, "--set %s: %s '%s' (did you mean '%s'?)", assignment, what, name, suggestion);
	else
		cp_err_set(err, NULL, 0, "--set %s: %s '%s'%s", assignment, what, name, hint);
	return -1;
}

static int apply_assignment(struct recipe_set *set, const char *assignment, struct cp_err *err)
{
	const char *equals = strchr(assignment, '=');
	if (!equals || equals == assignment) {
		cp_err_set(err, NULL, 0, "--set %s: expected [RECIPE.]PARAM=VALUE, e.g. --set brain.dof=6", assignment);
		return -1;
	}
	char *left = xstrndup(assignment, (size_t)(equals - assignment));
	char *dot = strrchr(left, '.');
	const char *param = dot ? dot + 1 : left;
	struct strvec known = STRVEC_INIT;
	int rc = 0;
	if (dot) {
		*dot = '\0';
		long index = recipe_find(set, left);
		const struct recipe *r = index >= 0 ? &set->recipes[index] : NULL;
		if (!r) {
			for (size_t i = 0; i < set->count; i++)
				strvec_push(&known, set->recipes[i].name);
			rc = set_fail(err, assignment, "no recipe", left, &known, "");
		} else if (!set_one(&set->recipes[index], param, equals + 1)) {
			for (size_t i = 0; i < r->param_count; i++)
				strvec_push(&known, r->params[i].name);
			char *what = xasprintf("recipe '%s' has no parameter", left);
			char *hint = xasprintf(" (declare it with params:, e.g. params: {%s: VALUE})", param);
			rc = set_fail(err, assignment, what, param, &known, hint);
			free(what);
			free(hint);
		}
	} else {
		bool any = false;
		for (size_t i = 0; i < set->count; i++) {
			any = set_one(&set->recipes[i], param, equals + 1) || any;
			for (size_t p = 0; p < set->recipes[i].param_count; p++)
				if (strvec_find(&known, set->recipes[i].params[p].name) < 0)
					strvec_push(&known, set->recipes[i].params[p].name);
		}
		if (!any)
			rc = set_fail(err, assignment, "no recipe has a parameter", param, &known,
				      " (declare it with params: in a recipe)");
	}
	strvec_release(&known);
	free(left);
	return rc;
}

int recipe_set_params(struct recipe_set *set, const struct strvec *assignments, struct cp_err *err)
{
	/* Every recipe's first, then one recipe's: the narrower setting wins whatever the order. */
	for (int narrow = 0; narrow < 2; narrow++) {
		for (size_t i = 0; i < assignments->count; i++) {
			const char *a = assignments->items[i];
			const char *equals = strchr(a, '=');
			const char *dot = memchr(a, '.', equals ? (size_t)(equals - a) : strlen(a));
			if ((dot != NULL) == (narrow == 1) && apply_assignment(set, a, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- glob keys ----------------------------------------------------------------- */

static struct recipe_key_pattern *add_pattern(struct recipe *r, const char *pattern)
{
	const struct recipe_key_pattern *found = recipe_find_pattern(r, pattern);
	if (found)
		return &r->patterns[found - r->patterns];
	r->patterns = xrealloc(r->patterns, (r->pattern_count + 1) * sizeof(*r->patterns));
	struct recipe_key_pattern *p = &r->patterns[r->pattern_count++];
	p->pattern = xstrdup(pattern);
	p->keys = (struct strvec)STRVEC_INIT;
	return p;
}

/* Whether `key` is named one by one in in/out/ref: a glob key leaves it to that listing. */
static bool listed(const struct recipe *r, const char *key)
{
	return strvec_find(&r->in, key) >= 0 || strvec_find(&r->out, key) >= 0 || strvec_find(&r->ref, key) >= 0;
}

/*
 * Replace the glob keys of `field` (`list`) by the keys of `candidates` they
 * match. A key listed by name elsewhere in the recipe is left to that listing.
 */
static int expand_field(struct recipe *r, const char *field, struct strvec *list, const struct strvec *candidates,
			struct cp_err *err)
{
	struct strvec expanded = STRVEC_INIT;
	for (size_t i = 0; i < list->count; i++) {
		const char *item = list->items[i];
		if (!recipe_is_key_pattern(item)) {
			if (strvec_find(&expanded, item) < 0)
				strvec_push(&expanded, item);
			continue;
		}
		struct recipe_key_pattern *pattern = add_pattern(r, item);
		size_t matched = 0;
		for (size_t k = 0; k < candidates->count; k++) {
			const char *key = candidates->items[k];
			if (fnmatch(item, key, 0) || recipe_is_key_pattern(key))
				continue;
			matched++;
			if (strvec_find(&pattern->keys, key) < 0)
				strvec_push(&pattern->keys, key);
			if (strvec_find(&expanded, key) < 0 && (!listed(r, key) || !strcmp(field, "optional")))
				strvec_push(&expanded, key);
		}
		if (!matched) {
			strvec_release(&expanded);
			return recipe_fail(err, r, recipe_item_line(r, field, i), field,
					   "the glob key '%s' matches no %s", item,
					   strcmp(field, "optional") ? "template key of the tree (other than this recipe's outputs)"
								     : "key of this recipe's in or out");
		}
	}
	strvec_release(list);
	*list = expanded;
	return 0;
}

int recipe_expand_key_patterns(struct recipe *r, const struct strvec *keys, struct cp_err *err)
{
	struct strvec candidates = STRVEC_INIT;
	for (size_t k = 0; keys && k < keys->count; k++)
		if (strvec_find(&r->out, keys->items[k]) < 0)
			strvec_push(&candidates, keys->items[k]);
	int rc = expand_field(r, "in", &r->in, &candidates, err);
	if (!rc)
		rc = expand_field(r, "ref", &r->ref, &candidates, err);
	strvec_release(&candidates);
	if (rc)
		return -1;
	/* optional: picks among what the recipe reads and makes. */
	for (size_t i = 0; i < r->in.count; i++)
		strvec_push(&candidates, r->in.items[i]);
	for (size_t i = 0; i < r->out.count; i++)
		strvec_push(&candidates, r->out.items[i]);
	rc = expand_field(r, "optional", &r->optional, &candidates, err);
	strvec_release(&candidates);
	return rc;
}

/* ---- identity ------------------------------------------------------------------ */

/*
 * placeholders: values are left out: they choose which jobs exist, and what a job reads or is
 * given of them is in its inputs and command already; adding a subject to the list must not
 * rerun the others.
 */
void recipe_params_definition(const struct recipe *r, struct strbuf *out)
{
	if (r->param_count)
		strbuf_addf(out, "params %zu\n", r->param_count);
	for (size_t i = 0; i < r->param_count; i++)
		strbuf_addf(out, "  %zu:%s %zu:%s\n", strlen(r->params[i].name), r->params[i].name,
			    strlen(r->params[i].value), r->params[i].value);
}
