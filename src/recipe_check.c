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
		recipe_fail(err, r, recipe_item_line(r, field, index), field,
			    "unknown template key '%s' (did you mean '%s'?)", key, suggestion);
	else
		recipe_fail(err, r, recipe_item_line(r, field, index), field,
			    "unknown template key '%s': the tree has no such key", key);
	recipe_explain_mounted_key(r, key, err);
	return -1;
}

/* Whether `name` is a placeholder the recipe may name beyond its templates' (fsl-pipe's Var). */
static bool known_placeholder(const struct recipe *r, const struct recipe_tree_view *view,
			      const struct strvec *tree_names, const char *name)
{
	return strvec_find(tree_names, name) >= 0 || (view->defined && view->defined(view->ctx, name)) ||
	       recipe_find_values(r, name);
}

/* A parameter may not hide a key or a placeholder: `{name}` would mean two things. */
static int check_params(const struct recipe *r, const struct recipe_tree_view *view, const struct strvec *tree_names,
			struct cp_err *err)
{
	for (size_t i = 0; i < r->param_count; i++) {
		const char *name = r->params[i].name;
		bool key = view->keys && strvec_find(view->keys, name) >= 0;
		if (!key && !known_placeholder(r, view, tree_names, name))
			continue;
		char *path = xasprintf("params.%s", name);
		int line = recipe_field_line(r, path);
		free(path);
		return recipe_fail(err, r, line, "params", "'%s' is also a %s of the tree; give the parameter another name",
				   name, key ? "template key" : "placeholder");
	}
	for (size_t i = 0; i < r->value_count; i++) {
		const char *name = r->values[i].placeholder;
		struct strvec vars = STRVEC_INIT;
		recipe_var_names(r, &vars);
		bool used = strvec_find(tree_names, name) >= 0 || (view->defined && view->defined(view->ctx, name)) ||
			    strvec_find(&vars, name) >= 0 || strvec_find(&r->batch, name) >= 0;
		strvec_release(&vars);
		if (used)
			continue;
		char *path = xasprintf("placeholders.%s", name);
		int line = recipe_field_line(r, path);
		free(path);
		const char *suggestion = recipe_suggest_name(name, tree_names);
		return recipe_fail(err, r, line, "placeholders", "'%s' is no placeholder of the tree nor of this recipe%s%s%s",
				   name, suggestion ? " (did you mean '" : "", suggestion ? suggestion : "",
				   suggestion ? "'?)" : "");
	}
	return 0;
}

/*
 * A placeholder no template of the recipe uses, yet with several values, makes one job per value:
 * with no output carrying it they would all write the same files.
 */
static int check_iterating_vars(const struct recipe *r, const struct recipe_tree_view *view,
				const struct strvec *template_names, struct cp_err *err)
{
	struct strvec vars = STRVEC_INIT;
	recipe_var_names(r, &vars);
	int rc = 0;
	for (size_t i = 0; i < vars.count && !rc; i++) {
		const char *name = vars.items[i];
		if (strvec_find(template_names, name) >= 0)
			continue;
		const struct recipe_values *own = recipe_find_values(r, name);
		/* Values still unknown (from the glob, later) leave it to the graph's "both make" check. */
		bool several = own ? own->values.count > 1
				   : view->singular && !view->singular(view->ctx, name) &&
					     (!view->defined || view->defined(view->ctx, name));
		if (!several)
			continue;
		long in_vars = strvec_find(&r->vars, name);
		int line = in_vars >= 0 ? recipe_item_line(r, "vars", (size_t)in_vars) : recipe_field_line(r, "run");
		rc = recipe_fail(err, r, line, NULL,
				 "placeholder '%s' has several values, so the recipe makes one job per value, but no "
				 "template of the recipe carries it and the jobs would write the same files: put {%s} "
				 "in an 'out' template, list it in 'batch', or give it one value",
				 name, name);
	}
	strvec_release(&vars);
	return rc;
}

static int check_recipe_against_tree(const struct recipe *r, const struct recipe_tree_view *view,
				     const struct strvec *tree_names, struct cp_err *err)
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
			if (strvec_find(&sets.all, name) >= 0 || (l == 1 && known_placeholder(r, view, tree_names, name)))
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
		if (strvec_find(&recipe_keys, name) >= 0 || strvec_find(&sets.all, name) >= 0 ||
		    recipe_find_param(r, name) || recipe_find_pattern(r, name) ||
		    (!recipe_is_key_pattern(name) && known_placeholder(r, view, tree_names, name)))
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
		if (recipe_is_key_pattern(name))
			recipe_run_fail(r, offset, err,
					"'{%s}' is a glob key this recipe does not list: add it to 'in' (or 'ref')", name);
		else if (tree_key)
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
			    strvec_find(&r->vars, name) >= 0 || strvec_find(&names, name) >= 0 || recipe_find_values(r, name) ||
			    (view->singular && view->singular(view->ctx, name)))
				continue;
			recipe_fail(err, r, recipe_item_line(r, "out", i), "out",
				    "placeholder '%s' of '%s' is not covered: no 'in' or 'ref' template uses it; "
				    "add it to 'vars' (one job per value) or 'batch' (one job for all values)",
				    name, r->out.items[i]);
			goto done;
		}
	}
	if (check_params(r, view, tree_names, err) || check_iterating_vars(r, view, &sets.all, err))
		goto done;
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

int recipe_check(struct recipe_set *set, const struct recipe_tree_view *view, struct cp_err *err)
{
	struct strvec required = STRVEC_INIT, optional = STRVEC_INIT, tree_names = STRVEC_INIT;
	/* Every placeholder some template of the tree uses: `{name}` and vars may name any of them. */
	for (size_t i = 0; view->keys && i < view->keys->count; i++) {
		if (view->placeholders(view->ctx, view->keys->items[i], &required, &optional) == 0) {
			add_unique(&tree_names, &required);
			add_unique(&tree_names, &optional);
		}
		strvec_release(&required);
		strvec_release(&optional);
	}
	for (size_t i = 0; i < set->targets.count; i++) {
		const char *key = set->targets.items[i];
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
			strvec_release(&tree_names);
			return -1;
		}
	}
	int rc = 0;
	for (size_t i = 0; i < set->count && !rc; i++)
		rc = recipe_expand_key_patterns(&set->recipes[i], view->keys, err) ||
		     check_recipe_against_tree(&set->recipes[i], view, &tree_names, err);
	strvec_release(&tree_names);
	return rc ? -1 : 0;
}
