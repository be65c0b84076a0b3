/*
 * graph: a recipe's own placeholder values (`placeholders: {subject: [01,
 * 02]}`, man/cpipe-recipes.5). While the graph works on such a recipe
 * (builder.context), the placeholder has the recipe's values instead of the
 * tree's: the recipe iterates over them (every combination that exists, or
 * their product), and the combinations of its inputs keep only rows with one
 * of them. A command-line filter on the placeholder still narrows: the
 * recipe's values are cut down to those it lets through.
 */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

/* Whether `value` is the value written `text`: the same text, or the same number for a typed one. */
static bool value_is(const struct tree_value *value, const char *text)
{
	if (!value->text)
		return false;
	if (!strcmp(value->text, text))
		return true;
	char *end;
	if (value->type == TREE_VALUE_INT) {
		long long number = strtoll(text, &end, 10);
		return end != text && !*end && number == value->integer;
	}
	if (value->type == TREE_VALUE_FLOAT) {
		double number = strtod(text, &end);
		return end != text && !*end && number == value->real;
	}
	return false;
}

void graph_prepare_values(struct builder *b, size_t r)
{
	const struct recipe *recipe = &b->set->recipes[r];
	struct recipe_info *info = &b->recipes[r];
	info->values = xcalloc(recipe->value_count + 1, sizeof(*info->values));
	info->value_count = recipe->value_count;
	for (size_t i = 0; i < recipe->value_count; i++) {
		const struct recipe_values *own = &recipe->values[i];
		const struct tree_placeholder *tree = tree_find_placeholder(b->tree, own->placeholder);
		bool narrowed = b->request->narrowed && strvec_find(b->request->narrowed, own->placeholder) >= 0;
		struct tree_placeholder *p = &info->values[i];
		p->name = xstrdup(own->placeholder);
		p->multiple = true;
		p->link = -1;
		p->values = xcalloc(own->values.count + 1, sizeof(*p->values));
		for (size_t v = 0; v < own->values.count; v++) {
			const char *text = own->values.items[v];
			bool let_through = !narrowed || !tree;
			for (size_t t = 0; !let_through && t < tree->count; t++)
				let_through = value_is(&tree->values[t], text);
			if (!let_through)
				continue;
			p->values[p->count].text = xstrdup(text);
			p->values[p->count].literal = true; /* a value, as a file name would have it */
			p->values[p->count++].type = TREE_VALUE_STRING;
		}
	}
}

void graph_release_values(struct recipe_info *info)
{
	for (size_t i = 0; i < info->value_count; i++) {
		for (size_t v = 0; v < info->values[i].count; v++)
			free(info->values[i].values[v].text);
		free(info->values[i].values);
		free(info->values[i].name);
	}
	free(info->values);
}

static const struct tree_placeholder *values_of(const struct builder *b, long r, const char *name)
{
	if (r < 0)
		return NULL;
	const struct recipe_info *info = &b->recipes[r];
	for (size_t i = 0; i < info->value_count; i++)
		if (!strcmp(info->values[i].name, name))
			return &info->values[i];
	return NULL;
}

static const struct tree_placeholder *own_values(const struct builder *b, const char *name)
{
	return values_of(b, b->context, name);
}

bool graph_value_allowed(const struct builder *b, size_t r, const char *name, const struct tree_value *value)
{
	const struct tree_placeholder *own = values_of(b, (long)r, name);
	bool found = !own;
	for (size_t v = 0; own && v < own->count && !found; v++)
		found = value_is(value, own->values[v].text);
	return found;
}

const struct tree_placeholder *graph_placeholder(const struct builder *b, const char *name)
{
	const struct tree_placeholder *own = own_values(b, name);
	return own ? own : tree_find_placeholder(b->tree, name);
}

bool graph_row_allowed(const struct builder *b, const struct combos *c, size_t row)
{
	if (b->context < 0)
		return true;
	/* The command line's filter let none of the recipe's values through: no row at all. */
	const struct recipe_info *info = &b->recipes[b->context];
	for (size_t i = 0; i < info->value_count; i++)
		if (!info->values[i].count && strvec_find(&info->iterating, info->values[i].name) >= 0)
			return false;
	for (size_t k = 0; k < c->names.count; k++)
		if (!graph_value_allowed(b, (size_t)b->context, c->names.items[k], combos_cell(c, row, k)))
			return false;
	return true;
}

void graph_filter_combos(const struct builder *b, struct combos **c)
{
	if (b->context < 0 || !b->recipes[b->context].value_count)
		return;
	struct combos *kept = xcalloc(1, sizeof(*kept));
	combos_init(kept, &(*c)->names);
	for (size_t row = 0; row < (*c)->rows; row++)
		if (graph_row_allowed(b, *c, row))
			combos_add(kept, &(*c)->cells[row * (*c)->names.count]);
	combos_release(*c);
	free(*c);
	*c = kept;
}
