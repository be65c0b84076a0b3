/*
 * recipe_check.c: recipe_check, the checks of a recipe set against the tree
 * (through the caller's struct recipe_tree_view): keys, placeholders, links.
 */
#include "recipe_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks against the tree ---------------------------------------------- */

struct placeholder_sets {
	struct strvec read;      /* every placeholder of in and ref templates */
	struct strvec all;       /* of every template of the recipe */
};

static void add_unique(struct strvec *to, const struct strvec *from)
{
	for (size_t i = 0; i < from->count; i++)
		if (strvec_find(to, from->items[i]) < 0)
			strvec_push(to, from->items[i]);
}

static int unknown_key(const struct recipe *r, const struct recipe_tree_view *view, const char *field, size_t index,
		       const char *key, struct cp_err *err)
{
	const char *suggestion = recipe_suggest_name(key, view->keys);
	if (suggestion)
		return recipe_fail(err, r, recipe_item_line(r, field, index), field,
				   "unknown template key '%s' (did you mean '%s'?)", key, suggestion);
	return recipe_fail(err, r, recipe_item_line(r, field, index), field,
			   "unknown template key '%s': the tree has no such key", key);
}

static int check_recipe_against_tree(const struct recipe *r, const struct recipe_tree_view *view,
				     struct cp_err *err)
{
	struct placeholder_sets sets = {STRVEC_INIT, STRVEC_INIT};
	struct strvec required = STRVEC_INIT, optional = STRVEC_INIT, names = STRVEC_INIT, recipe_keys = STRVEC_INIT;
	const char *fields[] = {"in", "ref", "out"};
	const struct strvec *lists[] = {&r->in, &r->ref, &r->out};
	int rc = -1;

	for (size_t l = 0; l < 3; l++) {
		for (size_t i = 0; i < lists[l]->count; i++) {
			const char *key = lists[l]->items[i];
			strvec_release(&required);
			strvec_release(&optional);
			if (view->placeholders(view->ctx, key, &required, &optional) < 0) {
				unknown_key(r, view, fields[l], i, key, err);
				goto done;
			}
			if (l < 2) {
				add_unique(&sets.read, &required);
				add_unique(&sets.read, &optional);
			}
			add_unique(&sets.all, &required);
			add_unique(&sets.all, &optional);
			strvec_push(&recipe_keys, key);
		}
	}

	const char *placeholder_fields[] = {"batch", "vars"};
	const struct strvec *placeholder_lists[] = {&r->batch, &r->vars};
	for (size_t l = 0; l < 2; l++) {
		for (size_t i = 0; i < placeholder_lists[l]->count; i++) {
			const char *name = placeholder_lists[l]->items[i];
			if (strvec_find(&sets.all, name) >= 0)
				continue;
			const char *suggestion = recipe_suggest_name(name, &sets.all);
			recipe_fail(err, r, recipe_item_line(r, placeholder_fields[l], i), placeholder_fields[l],
				    "'%s' is no placeholder of this recipe's templates%s%s%s", name,
				    suggestion ? " (did you mean '" : "", suggestion ? suggestion : "",
				    suggestion ? "'?)" : "");
			goto done;
		}
	}

	if (recipe_run_names(r, &names, err))
		goto done;
	for (size_t i = 0; i < names.count; i++) {
		const char *name = names.items[i];
		if (strvec_find(&recipe_keys, name) >= 0 || strvec_find(&sets.all, name) >= 0)
			continue;
		char *braced = xasprintf("{%s}", name);
		const char *at = strstr(r->run, braced);
		size_t offset = at ? (size_t)(at - r->run) : 0;
		free(braced);
		struct strvec known = STRVEC_INIT;
		add_unique(&known, &recipe_keys);
		add_unique(&known, &sets.all);
		const char *suggestion = recipe_suggest_name(name, &known);
		bool tree_key = view->keys && strvec_find(view->keys, name) >= 0;
		if (tree_key)
			recipe_run_fail(r, offset, err,
				 "'{%s}' is a template key this recipe does not list: add it to 'in' (or 'ref')", name);
		else if (suggestion)
			recipe_run_fail(r, offset, err, "unknown name '{%s}' (did you mean '{%s}'?)", name, suggestion);
		else
			recipe_run_fail(r, offset, err,
				 "unknown name '{%s}': not a key in in/out/ref nor a placeholder of the recipe's "
				 "templates (write '{{' and '}}' for literal braces, e.g. ${{%s}})",
				 name, name);
		strvec_release(&known);
		goto done;
	}

	/* Whatever an output's path needs, some input, batch, var or run placeholder must supply. */
	for (size_t i = 0; i < r->out.count; i++) {
		strvec_release(&required);
		strvec_release(&optional);
		view->placeholders(view->ctx, r->out.items[i], &required, &optional);
		for (size_t p = 0; p < required.count; p++) {
			const char *name = required.items[p];
			if (strvec_find(&sets.read, name) >= 0 || strvec_find(&r->batch, name) >= 0 ||
			    strvec_find(&r->vars, name) >= 0 || strvec_find(&names, name) >= 0 ||
			    (view->singular && view->singular(view->ctx, name)))
				continue;
			recipe_fail(err, r, recipe_item_line(r, "out", i), "out",
				    "placeholder '%s' of '%s' is not covered: no 'in' or 'ref' template uses it; "
				    "add it to 'vars' (one job per value) or 'batch' (one job for all values)",
				    name, r->out.items[i]);
			goto done;
		}
	}
	rc = 0;
done:
	strvec_release(&sets.read);
	strvec_release(&sets.all);
	strvec_release(&required);
	strvec_release(&optional);
	strvec_release(&names);
	strvec_release(&recipe_keys);
	return rc;
}

int recipe_check(const struct recipe_set *set, const struct recipe_tree_view *view, struct cp_err *err)
{
	struct strvec required = STRVEC_INIT, optional = STRVEC_INIT;
	for (size_t i = 0; i < set->targets.count; i++) {
		const char *key = set->targets.items[i];
		/* A recipe's name, a pattern or a path is a target too: the graph resolves it (TARGETS in cpipe(1)). */
		if (recipe_find(set, key) >= 0 || path_is_pattern(key) || strchr(key, '/'))
			continue;
		int rc = view->placeholders(view->ctx, key, &required, &optional);
		strvec_release(&required);
		strvec_release(&optional);
		if (rc < 0) {
			char path[48];
			snprintf(path, sizeof(path), "default.%zu", i);
			const char *suggestion = recipe_suggest_name(key, view->keys);
			cp_err_set(err, set->file, recipe_set_field_line(set, path),
				   "default: unknown template key '%s'%s%s%s", key, suggestion ? " (did you mean '" : "",
				   suggestion ? suggestion : "", suggestion ? "'?)" : "");
			return -1;
		}
	}
	for (size_t i = 0; i < set->count; i++)
		if (check_recipe_against_tree(&set->recipes[i], view, err))
			return -1;
	return 0;
}
