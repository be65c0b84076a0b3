/*
 * A job's command, expanded when asked for instead of stored with every job:
 * a million-subject study has millions of jobs, and their commands were the
 * largest part of the graph. What the jobs of a recipe share (its definition
 * text, what the names of its `run` stand for beyond the job's own paths and
 * bindings) is worked out once per recipe while the graph is built.
 */
#include "cpipe/graph.h"

#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

/* Whether `name` is asked for already (each name of the table once). */
static bool has_name(const struct graph_recipe *shared, const char *name)
{
	for (size_t i = 0; i < shared->name_count; i++)
		if (!strcmp(shared->names[i].name, name))
			return true;
	return false;
}

/* What `name` stands for in recipe b->context when the job has no path of it and does not bind it. */
static void add_run_name(struct builder *b, struct graph_recipe *shared, const char *name)
{
	if (has_name(shared, name))
		return;
	ALLOC_GROW(shared->names, shared->name_count + 1, shared->name_cap);
	struct graph_run_name *n = &shared->names[shared->name_count++];
	memset(n, 0, sizeof(*n));
	n->name = xstrdup(name);
	const struct tree_placeholder *p = graph_placeholder(b, name);
	/* A key with no paths (an optional input that is absent) expands to nothing. */
	n->empty_key = strmap_get(&b->key_index, name, NULL) && !p;
	n->has_values = p != NULL;
	struct strbuf values = STRBUF_INIT;
	for (size_t i = 0; p && i < p->count; i++) {
		const char *text = p->values[i].text ? p->values[i].text : "";
		strbuf_add(&values, text, strlen(text) + 1);
	}
	n->value_count = p ? p->count : 0;
	n->values_len = values.len;
	n->values = strbuf_detach(&values);
	shared->unbound_fails = shared->unbound_fails || (!n->empty_key && !n->has_values);
}

void graph_prepare_commands(struct builder *b)
{
	struct graph *g = b->graph;
	g->recipes = xcalloc(b->set->count + 1, sizeof(*g->recipes));
	g->recipe_count = b->set->count;
	long outer = b->context;
	for (size_t r = 0; r < b->set->count; r++) {
		const struct recipe *recipe = &b->set->recipes[r];
		struct graph_recipe *shared = &g->recipes[r];
		shared->recipe = recipe;
		struct strbuf definition = STRBUF_INIT;
		recipe_definition_text(recipe, &definition);
		shared->definition = strbuf_detach(&definition);
		/* The names recipe_expand_run asks the resolver for: a glob key's keys, never a parameter. */
		struct strvec names = STRVEC_INIT;
		struct cp_err ignored = CP_ERR_INIT;
		recipe_run_names(recipe, &names, &ignored); /* a syntax error is reported by the first job's check */
		cp_err_release(&ignored);
		b->context = (long)r;
		for (size_t i = 0; i < names.count; i++) {
			if (recipe_find_param(recipe, names.items[i]))
				continue;
			const struct recipe_key_pattern *pattern = recipe_find_pattern(recipe, names.items[i]);
			for (size_t k = 0; pattern && k < pattern->keys.count; k++)
				add_run_name(b, shared, pattern->keys.items[k]);
			if (!pattern)
				add_run_name(b, shared, names.items[i]);
		}
		strvec_release(&names);
	}
	b->context = outer;
}

void graph_release_recipes(struct graph *g)
{
	for (size_t r = 0; g->recipes && r < g->recipe_count; r++) {
		for (size_t i = 0; i < g->recipes[r].name_count; i++) {
			free(g->recipes[r].names[i].name);
			free(g->recipes[r].names[i].values);
		}
		free(g->recipes[r].names);
		free(g->recipes[r].definition);
	}
	FREE_AND_NULL(g->recipes);
}

/* A value for recipe_expand_run: the text and its NUL. */
static void add_value(struct strbuf *values, size_t *count, const char *text)
{
	strbuf_add(values, text, strlen(text) + 1);
	(*count)++;
}

/* The paths of `role` whose key (in `keys`, the recipe's list for the role) is `name`. */
static bool add_paths_of_key(const struct graph_paths *role, const uint16_t *key_of, const struct strvec *keys,
			     const char *name, struct strbuf *values, size_t *count)
{
	bool found = false;
	for (size_t i = 0; i < role->count; i++) {
		if (strcmp(keys->items[key_of ? key_of[i] : i], name))
			continue;
		/* A relative path starting with '-' (a file name on disk such as "--output=..") is
		 * written "./-..." so that no program takes it for an option. */
		if (role->items[i][0] == '-') {
			char *dotted = xasprintf("./%s", role->items[i]);
			add_value(values, count, dotted);
			free(dotted);
		} else {
			add_value(values, count, role->items[i]);
		}
		found = true;
	}
	return found;
}

static int resolve_run_name(void *ctx, const char *name, struct strbuf *values, size_t *count, struct cp_err *err)
{
	const struct graph_job *job = ctx;
	const struct recipe *recipe = job->shared->recipe;
	const struct graph_job_more *more = job->more;
	/* A key of the recipe: its paths. */
	bool found = add_paths_of_key(&job->inputs, more ? more->input_keys : NULL, &recipe->in, name, values, count);
	found = add_paths_of_key(&job->outputs, more ? more->output_keys : NULL, &recipe->out, name, values, count) ||
		found;
	if (more)
		found = add_paths_of_key(&more->refs, more->ref_keys, &recipe->ref, name, values, count) || found;
	if (found)
		return 0;
	const struct graph_run_name *known = NULL;
	for (size_t i = 0; !known && i < job->shared->name_count; i++)
		if (!strcmp(job->shared->names[i].name, name))
			known = &job->shared->names[i];
	if (known && known->empty_key)
		return 0;
	/* A placeholder: the job's value, else the tree's (or the recipe's placeholders:) value(s). */
	for (size_t i = 0; i < job->binding_count; i++) {
		if (!strcmp(job->binding_names[i], name)) {
			add_value(values, count, job->binding_values[i]);
			return 0;
		}
	}
	if (!known || !known->has_values) { /* recipe_check let it through: a placeholder of the tree, but with no value */
		cp_err_set(err, NULL, 0, "placeholder '%s' has no value: set it in the tree, with -p %s=VALUE or "
					 "with the recipe's placeholders:", name, name);
		return -1;
	}
	strbuf_add(values, known->values, known->values_len);
	*count += known->value_count;
	return 0;
}

int graph_check_command(struct graph_recipe *shared, const struct graph_job *job, struct cp_err *err)
{
	/* The first job finds what is wrong with the recipe; later ones can only lack a placeholder's value. */
	if (shared->checked && !shared->unbound_fails)
		return 0;
	struct strbuf command = STRBUF_INIT;
	int rc = recipe_expand_run(shared->recipe, resolve_run_name, (void *)job, &command, err);
	strbuf_release(&command);
	shared->checked = rc == 0;
	return rc;
}

void graph_job_command(const struct graph_job *job, struct strbuf *out)
{
	struct cp_err err = CP_ERR_INIT;
	if (recipe_expand_run(job->shared->recipe, resolve_run_name, (void *)job, out, &err) < 0)
		BUG("job %s: the command graph_build checked no longer expands: %s", job->id, err.message);
}

char *graph_job_command_dup(const struct graph_job *job)
{
	struct strbuf command = STRBUF_INIT;
	graph_job_command(job, &command);
	return strbuf_detach(&command);
}

const char *graph_job_definition(const struct graph_job *job)
{
	return job->shared->definition;
}

const bool *graph_job_output_optional(const struct graph_job *job)
{
	return job->more ? job->more->output_optional : NULL;
}
