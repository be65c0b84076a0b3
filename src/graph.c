#include "cpipe/graph.h"

#include "cpipe/glob.h"
#include "graph_combos.h"
#include "graph_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One placeholder bound to one value while expanding. */
struct binding {
	const char *name;
	const struct tree_value *value; /* NULL text = None */
};

struct bindings {
	struct binding *items;
	size_t count;
	size_t cap;
};

/* An iteration axis: one multi-valued placeholder, or one linked group, and the template names bound to it. */
struct axis {
	const struct tree_placeholder *first; /* the placeholder, or any member of the linked group */
	const char **names;                   /* names as written in templates, bound per row (borrowed) */
	const struct tree_placeholder **placeholders; /* per name: the placeholder it resolves to */
	size_t name_count;
	size_t name_cap;
	size_t rows;
};

struct axes {
	struct axis *items;
	size_t count;
	size_t cap;
};

enum { ADD_OK = 0, ADD_ERROR = -1, ADD_SKIPPED = -2 };

static void bindings_push(struct bindings *b, const char *name, const struct tree_value *value)
{
	for (size_t i = 0; i < b->count; i++) {
		if (!strcmp(b->items[i].name, name)) {
			b->items[i].value = value;
			return;
		}
	}
	ALLOC_GROW(b->items, b->count + 1, b->cap);
	b->items[b->count].name = name;
	b->items[b->count].value = value;
	b->count++;
}

static const struct binding *bindings_find(const struct bindings *b, const char *name)
{
	for (size_t i = 0; i < b->count; i++)
		if (!strcmp(b->items[i].name, name))
			return &b->items[i];
	return NULL;
}

static void bindings_copy(struct bindings *dst, const struct bindings *src)
{
	dst->count = 0;
	for (size_t i = 0; i < src->count; i++)
		bindings_push(dst, src->items[i].name, src->items[i].value);
}

/* Forget the axes but keep their arrays for the next key. */
static void axes_reset(struct axes *axes)
{
	for (size_t i = 0; i < axes->count; i++)
		axes->items[i].name_count = 0;
	axes->count = 0;
}

static void axes_release(struct axes *axes)
{
	for (size_t i = 0; i < axes->cap; i++) {
		free(axes->items[i].names);
		free(axes->items[i].placeholders);
	}
	FREE_AND_NULL(axes->items);
	axes->count = 0;
	axes->cap = 0;
}

static void key_names(const struct key_info *info, struct strvec *out);

static struct key_info *key_lookup(struct builder *b, const char *key)
{
	size_t index;
	if (strmap_get(&b->key_index, key, &index))
		return &b->keys[index];
	long template_index = tree_find_template(b->tree, key, b->err);
	if (template_index < 0)
		return NULL;
	struct template parsed = TEMPLATE_INIT;
	const char *path = b->tree->templates[template_index].path;
	if (template_parse(path, &parsed, b->err) < 0)
		return NULL;
	ALLOC_GROW(b->keys, b->key_count + 1, b->key_cap);
	struct key_info *info = &b->keys[b->key_count];
	memset(info, 0, sizeof(*info));
	info->key = xstrdup(key);
	info->path = path;
	template_placeholders(&parsed, &info->required, &info->optional);
	key_names(info, &info->names);
	/* A key is shared by every recipe using it: its iterating names are the tree's. */
	long context = b->context;
	b->context = -1;
	graph_iterating_names(b, &info->names, &info->iterating);
	b->context = context;
	info->parsed = parsed;
	info->producer = recipe_find_producer(b->set, key);
	strmap_put(&b->key_index, key, b->key_count);
	return &b->keys[b->key_count++];
}

/* The placeholders of `info`'s template, required then optional. */
static void key_names(const struct key_info *info, struct strvec *out)
{
	for (size_t i = 0; i < info->required.count; i++)
		if (strvec_find(out, info->required.items[i]) < 0)
			strvec_push(out, info->required.items[i]);
	for (size_t i = 0; i < info->optional.count; i++)
		if (strvec_find(out, info->optional.items[i]) < 0)
			strvec_push(out, info->optional.items[i]);
}

static int prepare_recipes(struct builder *b)
{
	b->recipes = xcalloc(b->set->count, sizeof(*b->recipes));
	for (size_t r = 0; r < b->set->count; r++) {
		const struct recipe *recipe = &b->set->recipes[r];
		struct strvec names = STRVEC_INIT;
		const struct strvec *lists[] = {&recipe->in, &recipe->ref, &recipe->out};
		/* Found once here: every job of the recipe expands its keys by index, not by name. */
		size_t **indexes[] = {&b->recipes[r].in_keys, &b->recipes[r].ref_keys, &b->recipes[r].out_keys};
		for (size_t l = 0; l < 3; l++) {
			*indexes[l] = xcalloc(lists[l]->count + 1, sizeof(**indexes[l]));
			if (lists[l]->count > UINT16_MAX) { /* a job records each path's key in 16 bits */
				cp_err_set(b->err, b->set->file, recipe->line, "recipe '%s': more than %d keys in one list",
					   recipe->name, UINT16_MAX);
				strvec_release(&names);
				return -1;
			}
			for (size_t k = 0; k < lists[l]->count; k++) {
				struct key_info *info = key_lookup(b, lists[l]->items[k]);
				if (!info) {
					strvec_release(&names);
					cp_err_prefix(b->err, "recipe '%s': ", recipe->name);
					return -1;
				}
				key_names(info, &names);
				(*indexes[l])[k] = (size_t)(info - b->keys);
			}
		}
		recipe_var_names(recipe, &names);
		graph_prepare_values(b, r);
		for (size_t i = 0; i < names.count; i++)
			if (strvec_find(&recipe->batch, names.items[i]) < 0)
				strvec_push(&b->recipes[r].iterating, names.items[i]);
		strvec_sort(&b->recipes[r].iterating);
		strvec_release(&names);
	}
	/* Every recipe's keys are known now: what its run's names stand for can be worked out. */
	graph_prepare_commands(b);
	return 0;
}

/*
 * Collect the iteration axes for `names` that `fixed` does not bind yet:
 * multi-valued placeholders, one axis per linked group. A required name
 * without any value is an error; an optional one is simply left unfilled.
 */
static int collect_axes(struct builder *b, const struct strvec *names, const struct strvec *required,
			const struct bindings *fixed, const char *key, const char *job_id, struct axes *axes)
{
	for (size_t i = 0; i < names->count; i++) {
		const char *name = names->items[i];
		if (fixed && bindings_find(fixed, name))
			continue;
		const struct tree_placeholder *p = graph_placeholder(b, name);
		if (!p || !p->count) {
			if (required && strvec_find(required, name) >= 0) {
				const char *filter = b->request->filter_text;
				if (filter && *filter) {
					cp_err_set(b->err, NULL, 0,
						   "placeholder '%s' has no value (needed by key '%s'%s%s): no file "
						   "matches the command line's %s",
						   name, key, job_id ? " of job " : "", job_id ? job_id : "", filter);
					return -1;
				}
				cp_err_set(b->err, NULL, 0,
					   "placeholder '%s' has no value (needed by key '%s'%s%s); set it in the "
					   "tree, with -p %s=VALUE, or make sure files exist to glob",
					   name, key, job_id ? " of job " : "", job_id ? job_id : "", name);
				return -1;
			}
			continue;
		}
		if (!p->multiple)
			continue;
		struct axis *axis = NULL;
		for (size_t a = 0; a < axes->count; a++) {
			const struct tree_placeholder *first = axes->items[a].first;
			if (first == p || (p->link >= 0 && first->link == p->link)) {
				axis = &axes->items[a];
				break;
			}
		}
		if (!axis) {
			if (axes->count == axes->cap) {
				size_t old_cap = axes->cap;
				ALLOC_GROW(axes->items, axes->count + 1, axes->cap);
				memset(axes->items + old_cap, 0, (axes->cap - old_cap) * sizeof(*axes->items));
			}
			axis = &axes->items[axes->count++];
			axis->first = p;
			axis->rows = p->count;
			axis->name_count = 0;
		}
		if (axis->name_count == axis->name_cap) {
			axis->name_cap = axis->name_cap ? axis->name_cap * 2 : 4;
			axis->names = xrealloc(axis->names, axis->name_cap * sizeof(*axis->names));
			axis->placeholders = xrealloc(axis->placeholders, axis->name_cap * sizeof(*axis->placeholders));
		}
		axis->placeholders[axis->name_count] = p;
		axis->names[axis->name_count++] = name;
	}
	return 0;
}

/* Bind row `rows[a]` of every axis into `out` (which already holds the fixed bindings). */
static void bind_row(const struct axes *axes, const size_t *rows, struct bindings *out)
{
	for (size_t a = 0; a < axes->count; a++) {
		const struct axis *axis = &axes->items[a];
		for (size_t n = 0; n < axis->name_count; n++)
			bindings_push(out, axis->names[n], &axis->placeholders[n]->values[rows[a]]);
	}
}

/* Advance an odometer over the axes (last axis fastest); false when done. */
static bool next_row(const struct axes *axes, size_t *rows)
{
	for (size_t a = axes->count; a-- > 0;) {
		if (++rows[a] < axes->items[a].rows)
			return true;
		rows[a] = 0;
	}
	return false;
}

static bool axes_empty(const struct axes *axes)
{
	for (size_t a = 0; a < axes->count; a++)
		if (!axes->items[a].rows)
			return true;
	return false;
}

/* What `name` fills in: the job's value, else the tree's singular value; NULL when there is none. */
static const char *fill_value(const struct builder *b, const struct bindings *binding, const char *name)
{
	const struct binding *bound = bindings_find(binding, name);
	if (bound)
		return bound->value->text;
	const struct tree_placeholder *p = graph_placeholder(b, name);
	return p && p->count == 1 && !p->multiple ? p->values[0].text : NULL;
}

/* A value that cannot change the shape of a path: no template syntax, wildcard or separator. */
static bool plain_value(const char *value)
{
	return *value && strcmp(value, ".") && strcmp(value, "..") && !strpbrk(value, "{}[]*?/");
}

/*
 * The common case of filling, on the template parsed once: every field has a plain value and
 * every optional group is kept. Returns 1 when done, 0 when the tree module must do it (values
 * that are templates themselves, dropped groups, wildcards, errors to report), -1 on error.
 * One pass: each field's value is looked up once, and a format error counts only when no later
 * field sends the path to the tree module anyway.
 */
static int fill_path_quickly(const struct builder *b, const struct key_info *info, const struct bindings *binding,
			     struct strbuf *out)
{
	const struct template *t = &info->parsed;
	bool failed = false;
	strbuf_reset(out);
	for (size_t i = 0; i < t->count; i++) {
		const struct template_part *part = &t->parts[i];
		if (part->kind == TEMPLATE_STAR || part->kind == TEMPLATE_QUESTION)
			goto slow;
		if (part->kind != TEMPLATE_FIELD) {
			if (!failed)
				strbuf_adds(out, part->text);
			continue;
		}
		const char *value = fill_value(b, binding, part->text);
		if (!value || !plain_value(value))
			goto slow;
		if (failed)
			continue;
		if (!part->spec)
			strbuf_adds(out, value);
		else if (template_format(part->spec, value, out, b->err) < 0)
			failed = true;
	}
	if (failed) {
		cp_err_prefix(b->err, "key '%s': ", info->key);
		return -1;
	}
	return 1;
slow:
	if (failed)
		cp_err_release(b->err);
	return 0;
}

static int fill_path(struct builder *b, const struct key_info *info, const struct bindings *binding,
		     struct strbuf *out)
{
	int quick = fill_path_quickly(b, info, binding, out);
	if (quick)
		return quick < 0 ? -1 : 0;
	const char **names = xcalloc(binding->count + 1, sizeof(*names));
	const struct tree_value **values = xcalloc(binding->count + 1, sizeof(*values));
	for (size_t i = 0; i < binding->count; i++) {
		names[i] = binding->items[i].name;
		values[i] = binding->items[i].value;
	}
	strbuf_reset(out);
	int rc = tree_fill_template(b->tree, info->path, names, values, binding->count, out, b->err);
	free(names);
	free(values);
	if (rc < 0)
		cp_err_prefix(b->err, "key '%s': ", info->key);
	return rc;
}

static void make_job_id(const struct recipe *recipe, const struct bindings *binding, struct strbuf *out)
{
	strbuf_reset(out);
	strbuf_adds(out, recipe->name);
	bool open = false;
	for (size_t i = 0; i < binding->count; i++) {
		if (!binding->items[i].value->text)
			continue;
		strbuf_addch(out, open ? ',' : '[');
		open = true;
		strbuf_adds(out, binding->items[i].name);
		strbuf_addch(out, '=');
		strbuf_adds(out, binding->items[i].value->text);
	}
	if (open)
		strbuf_addch(out, ']');
}

static int compare_bindings(const void *a, const void *b)
{
	return strcmp(((const struct binding *)a)->name, ((const struct binding *)b)->name);
}

/*
 * The paths of one role (inputs, outputs, refs) of a job being assembled, with
 * each path's key (its index in the recipe's list for the role). The path
 * strings are already in the graph's arena.
 */
struct pending_paths {
	char **paths;
	uint16_t *keys;
	bool *optional;
	size_t count;
	size_t cap;
};

/*
 * The scratch space of one add_job call: add_job recurses (an input's producer
 * is added while the job is assembled), so there is one frame per depth, and
 * its arrays are reused by every job assembled at that depth.
 */
struct frame {
	struct pending_paths inputs, outputs, refs;
	size_t *deps;
	size_t dep_count;
	size_t dep_cap;
	struct bindings binding;  /* the job's own bindings */
	struct bindings full;     /* the job's bindings plus one row of a key's axes */
	struct bindings restricted; /* what a producer of an input is bound by */
	struct axes axes;
	size_t *rows;
	size_t row_cap;
	uint16_t key_slot;        /* the index of the key being expanded in the recipe's list for its role */
	struct strbuf id;
	struct strbuf path;
};

static struct frame *frame_enter(struct builder *b)
{
	size_t depth = b->depth;
	if (depth == b->frame_count) {
		ALLOC_GROW(b->frames, depth + 1, b->frame_cap);
		b->frames[depth] = xcalloc(1, sizeof(**b->frames));
		struct strbuf init = STRBUF_INIT;
		b->frames[depth]->id = b->frames[depth]->path = init;
		b->frame_count++;
	}
	struct frame *f = b->frames[depth];
	f->inputs.count = f->outputs.count = f->refs.count = 0;
	f->dep_count = 0;
	f->binding.count = 0;
	return f;
}

static void pending_paths_release(struct pending_paths *p)
{
	free(p->paths);
	free(p->keys);
	free(p->optional);
}

static void frame_free(struct frame *f)
{
	pending_paths_release(&f->inputs);
	pending_paths_release(&f->outputs);
	pending_paths_release(&f->refs);
	free(f->deps);
	free(f->binding.items);
	free(f->full.items);
	free(f->restricted.items);
	axes_release(&f->axes);
	free(f->rows);
	strbuf_release(&f->id);
	strbuf_release(&f->path);
	free(f);
}

/* Add `path` (a string in the graph's arena already) of key number `key` of its role. */
static void pending_add(struct pending_paths *p, char *path, uint16_t key, bool optional)
{
	if (p->count + 1 > p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		p->paths = xrealloc(p->paths, p->cap * sizeof(*p->paths));
		p->keys = xrealloc(p->keys, p->cap * sizeof(*p->keys));
		p->optional = xrealloc(p->optional, p->cap * sizeof(*p->optional));
	}
	p->keys[p->count] = key;
	p->optional[p->count] = optional;
	p->paths[p->count++] = path;
}

/* The job's copy of a role's paths into `items` (count + 1 slots, NULL-terminated). */
static void pending_to_job(const struct pending_paths *p, char **items, struct graph_paths *paths)
{
	paths->count = p->count;
	paths->items = items;
	if (p->count) /* an empty role may have no array at all: memcpy wants a pointer even for 0 bytes */
		memcpy(items, p->paths, p->count * sizeof(*items));
	items[p->count] = NULL;
}

/* Whether a role's paths are one per key in the recipe's order, which the job need not record. */
static bool keys_in_order(const struct pending_paths *p, size_t key_count)
{
	if (p->count != key_count)
		return false;
	for (size_t i = 0; i < p->count; i++)
		if (p->keys[i] != i)
			return false;
	return true;
}

/* The job's copy of a role's keys, or NULL when they are in order. */
static uint16_t *pending_keys(struct arena *arena, const struct pending_paths *p, size_t key_count)
{
	if (keys_in_order(p, key_count))
		return NULL;
	uint16_t *keys = arena_alloc(arena, (p->count + 1) * sizeof(*keys));
	if (p->count)
		memcpy(keys, p->keys, p->count * sizeof(*keys));
	return keys;
}

static int add_job(struct builder *b, size_t recipe_index, const struct bindings *binding, size_t *index_out);

static void chain_message(struct builder *b, struct strbuf *out)
{
	for (size_t i = b->depth; i-- > 0;) {
		strbuf_adds(out, i + 1 == b->depth ? "needed by " : " <- ");
		strbuf_adds(out, b->frames[i]->id.buf);
	}
}

/*
 * Make sure the file of `info` under `binding` can exist: if a recipe makes it,
 * add that job (setting *dep); otherwise check the raw file is on disk.
 * Returns ADD_OK, ADD_SKIPPED (missing, skip_missing or optional), ADD_ERROR.
 */
static int require_file(struct builder *b, const struct key_info *info, const char *path,
			const struct bindings *binding, bool optional, struct bindings *restricted, long *dep)
{
	*dep = -1;
	/* A producer with its own placeholders: values makes no file for other values it iterates over. */
	bool made = info->producer >= 0;
	for (size_t i = 0; made && i < b->recipes[info->producer].iterating.count; i++) {
		const struct binding *bound = bindings_find(binding, b->recipes[info->producer].iterating.items[i]);
		made = !bound || graph_value_allowed(b, (size_t)info->producer, bound->name, bound->value);
	}
	if (made) {
		long found = graph_job_map_find(b, &b->by_output, path);
		if (found >= 0) {
			*dep = found;
			return ADD_OK;
		}
		const struct recipe_info *producer = &b->recipes[info->producer];
		restricted->count = 0;
		for (size_t i = 0; i < producer->iterating.count; i++) {
			const struct binding *bound = bindings_find(binding, producer->iterating.items[i]);
			if (bound)
				bindings_push(restricted, bound->name, bound->value);
		}
		size_t index;
		int rc = add_job(b, (size_t)info->producer, restricted, &index);
		if (rc == ADD_OK)
			*dep = (long)index;
		return rc;
	}
	if (graph_raw_input_exists(b, info->key, path))
		return ADD_OK;
	if (optional)
		return ADD_SKIPPED;
	struct strbuf message = STRBUF_INIT;
	strbuf_addf(&message, "input '%s' (key %s) does not exist and no recipe makes it%s%s%s; ", path, info->key,
		    info->producer >= 0 ? " (recipe '" : "", info->producer >= 0 ? b->set->recipes[info->producer].name : "",
		    info->producer >= 0 ? "' makes it only for its placeholders: values)" : "");
	chain_message(b, &message);
	if (b->request->skip_missing) {
		strvec_push_owned(&b->graph->skipped, strbuf_detach(&message));
		return ADD_SKIPPED;
	}
	/* The ways round it are the command line's to name. */
	if (b->in_product)
		strbuf_adds(&message, " (the recipe iterates over every combination of the placeholders' values, as "
				      "product: asks; drop product: to make jobs only for the files that exist");
	struct graph_missing_input *missing = b->request->missing;
	if (missing) {
		missing->found = true;
		missing->in_product = b->in_product;
		for (size_t i = 0; i < info->iterating.count; i++)
			strvec_push(&missing->names, info->iterating.items[i]);
	}
	cp_err_set(b->err, NULL, 0, "%s", message.buf);
	strbuf_release(&message);
	return ADD_ERROR;
}

/*
 * Every path of key `key` for the job assembled in frame `f`: placeholders its
 * bindings leave open (batched ones) expand over all their values. Inputs
 * (kind 0) also get their producers added as dependencies.
 */
/*
 * Add the path of `info` under the bindings in f->full to the job assembled in
 * `f`; inputs (kind 0) are made sure to exist and get their producers as
 * dependencies. `seen` (may be NULL) keeps repeated paths out. A missing input
 * that `droppable` lets go is left out of the command; otherwise ADD_SKIPPED
 * leaves the whole job out.
 */
static int add_key_path(struct builder *b, struct frame *f, const struct key_info *info, bool optional, int kind,
			bool droppable, struct strmap *seen)
{
	if (fill_path(b, info, &f->full, &f->path) < 0)
		return ADD_ERROR;
	if (seen && !strmap_put(seen, f->path.buf, 0))
		return ADD_OK;
	struct arena *arena = &b->graph->arena;
	if (kind != 0) {
		pending_add(kind == 1 ? &f->outputs : &f->refs, arena_strndup(arena, f->path.buf, f->path.len),
			    f->key_slot, kind == 1 && optional);
		return ADD_OK;
	}
	long dep;
	int status = require_file(b, info, f->path.buf, &f->full, optional, &f->restricted, &dep);
	if (status == ADD_SKIPPED)
		return droppable ? ADD_OK : ADD_SKIPPED; /* e.g. an absent optional input: the command gets nothing */
	if (status == ADD_ERROR)
		return ADD_ERROR;
	/* A file a job makes is stored once: its producer's output is this job's input. */
	char *stored = NULL;
	if (dep >= 0) {
		ALLOC_GROW(f->deps, f->dep_count + 1, f->dep_cap);
		f->deps[f->dep_count++] = (size_t)dep;
		const struct graph_paths *made = &b->graph->jobs[dep].outputs;
		for (size_t i = 0; !stored && i < made->count; i++)
			if (!strcmp(made->items[i], f->path.buf))
				stored = made->items[i];
	}
	pending_add(&f->inputs, stored ? stored : arena_strndup(arena, f->path.buf, f->path.len), f->key_slot,
		    optional);
	return ADD_OK;
}

struct existing_paths {
	struct builder *builder;
	struct frame *frame;
	const struct key_info *info;
	const struct combos *combos;
	bool optional;
	bool droppable;
	struct strmap seen;
	int rc;
};

static int add_existing_path(void *ctx, size_t row)
{
	struct existing_paths *e = ctx;
	struct frame *f = e->frame;
	if (!graph_row_allowed(e->builder, e->combos, row))
		return 0; /* a value the recipe's placeholders: leaves out */
	bindings_copy(&f->full, &f->binding);
	for (size_t k = 0; k < e->combos->names.count; k++)
		if (!bindings_find(&f->binding, e->combos->names.items[k]))
			bindings_push(&f->full, e->combos->names.items[k], combos_cell(e->combos, row, k));
	e->rc = add_key_path(e->builder, f, e->info, e->optional, 0, e->droppable, &e->seen);
	return e->rc != ADD_OK;
}

/* Inputs of a job that leaves placeholders open (batched ones): their combinations that exist. 1: not possible. */
static int expand_existing(struct builder *b, struct frame *f, size_t key_index, bool optional)
{
	const struct key_info *info = &b->keys[key_index];
	const struct strvec *open = &info->iterating;
	size_t open_count = 0;
	for (size_t i = 0; i < open->count; i++)
		open_count += !bindings_find(&f->binding, open->items[i]);
	struct combos *combos = open_count ? graph_key_combos(b, key_index) : NULL;
	bool covered = combos != NULL;
	for (size_t i = 0; covered && i < open->count; i++)
		covered = bindings_find(&f->binding, open->items[i]) || strvec_find(&combos->names, open->items[i]) >= 0;
	if (open_count && !combos)
		return ADD_ERROR;
	if (!covered)
		return 1;
	const char **names = xcalloc(f->binding.count + 1, sizeof(*names));
	const struct tree_value **values = xcalloc(f->binding.count + 1, sizeof(*values));
	for (size_t i = 0; i < f->binding.count; i++) {
		names[i] = f->binding.items[i].name;
		values[i] = f->binding.items[i].value;
	}
	struct existing_paths e = {b, f, info, combos, optional, optional || b->request->partial_group,
				   STRMAP_INIT, ADD_OK};
	combos_each_matching(combos, names, values, f->binding.count, add_existing_path, &e);
	strmap_release(&e.seen);
	free(names);
	free(values);
	return e.rc;
}

/*
 * Every path of key `key` for the job assembled in frame `f`: placeholders its
 * bindings leave open (batched ones) expand over the combinations of values
 * that exist, or over all their values when `product`. Inputs (kind 0) also
 * get their producers added as dependencies.
 */
static int expand_key(struct builder *b, struct frame *f, size_t key_index, bool optional, int kind, bool product)
{
	if (kind == 0 && !product) {
		int rc = expand_existing(b, f, key_index, optional);
		if (rc != 1)
			return rc;
	}
	const struct key_info *info = &b->keys[key_index];
	axes_reset(&f->axes);
	int rc = collect_axes(b, &info->names, &info->required, &f->binding, info->key, f->id.buf, &f->axes);
	if (rc < 0 || axes_empty(&f->axes))
		return rc;
	if (f->axes.count + 1 > f->row_cap) {
		f->row_cap = f->axes.count + 1;
		f->rows = xrealloc(f->rows, f->row_cap * sizeof(*f->rows));
	}
	memset(f->rows, 0, f->row_cap * sizeof(*f->rows));
	/* Linked rows restricted to fewer names repeat paths: keep each once. A single row
	 * (the usual job) cannot repeat, and needs no map. */
	struct strmap seen = STRMAP_INIT;
	bool droppable = optional || (f->axes.count && b->request->partial_group);
	do {
		bindings_copy(&f->full, &f->binding);
		bind_row(&f->axes, f->rows, &f->full);
		rc = add_key_path(b, f, info, optional, kind, droppable, f->axes.count ? &seen : NULL);
	} while (rc == ADD_OK && next_row(&f->axes, f->rows));
	strmap_release(&seen);
	return rc;
}

/* The graph's copy of a placeholder name: every job binding it shares one. */
static const char *shared_name(struct builder *b, const char *name)
{
	for (size_t i = 0; i < b->name_count; i++)
		if (!strcmp(b->names[i], name))
			return b->names[i];
	ALLOC_GROW(b->names, b->name_count + 1, b->name_cap);
	return b->names[b->name_count++] = arena_strdup(&b->graph->arena, name);
}

/* The names `f` binds, shared with the recipe's previous job when they are the same (they nearly always are). */
static const char *const *job_binding_names(struct builder *b, const struct frame *f, size_t recipe_index)
{
	struct recipe_info *info = &b->recipes[recipe_index];
	bool same = info->binding_names && info->binding_count == f->binding.count;
	for (size_t i = 0; same && i < f->binding.count; i++)
		same = !strcmp(info->binding_names[i], f->binding.items[i].name);
	if (same)
		return info->binding_names;
	const char **names = arena_alloc(&b->graph->arena, (f->binding.count + 1) * sizeof(*names));
	for (size_t i = 0; i < f->binding.count; i++)
		names[i] = shared_name(b, f->binding.items[i].name);
	names[f->binding.count] = NULL;
	info->binding_names = names;
	info->binding_count = f->binding.count;
	return names;
}

/* What only some jobs have (struct graph_job_more), or NULL. */
static const struct graph_job_more *job_more(struct builder *b, const struct frame *f, const struct recipe *recipe)
{
	bool optional = false;
	for (size_t i = 0; i < f->outputs.count; i++)
		optional = optional || f->outputs.optional[i];
	if (!optional && !f->refs.count && keys_in_order(&f->inputs, recipe->in.count) &&
	    keys_in_order(&f->outputs, recipe->out.count))
		return NULL;
	struct arena *arena = &b->graph->arena;
	struct graph_job_more *more = arena_calloc(arena, 1, sizeof(*more));
	pending_to_job(&f->refs, arena_alloc(arena, (f->refs.count + 1) * sizeof(char *)), &more->refs);
	more->input_keys = pending_keys(arena, &f->inputs, recipe->in.count);
	more->output_keys = pending_keys(arena, &f->outputs, recipe->out.count);
	more->ref_keys = pending_keys(arena, &f->refs, recipe->ref.count);
	if (optional) {
		more->output_optional = arena_alloc(arena, f->outputs.count * sizeof(bool));
		memcpy(more->output_optional, f->outputs.optional, f->outputs.count * sizeof(bool));
	}
	return more;
}

/* The record of the job assembled in `f`, in the graph's arena; commit_job adds it. */
static void fill_job(struct builder *b, struct frame *f, size_t recipe_index, struct graph_job *job)
{
	struct graph *g = b->graph;
	struct arena *arena = &g->arena;
	const struct recipe *recipe = &b->set->recipes[recipe_index];
	memset(job, 0, sizeof(*job));
	job->id = arena_strndup(arena, f->id.buf, f->id.len);
	job->shared = &g->recipes[recipe_index];
	job->recipe = (uint32_t)recipe_index;
	job->binding_count = (uint32_t)f->binding.count;
	job->binding_names = job_binding_names(b, f, recipe_index);
	/* One block for the job's arrays: values, inputs and outputs (each NULL-terminated), dependencies. */
	size_t pointers = (f->binding.count + 1) + (f->inputs.count + 1) + (f->outputs.count + 1);
	char **block = arena_alloc(arena, pointers * sizeof(char *) + (f->dep_count + 1) * sizeof(uint32_t));
	job->binding_values = block;
	for (size_t i = 0; i < f->binding.count; i++) {
		const char *value = f->binding.items[i].value->text;
		job->binding_values[i] = arena_strdup(arena, value ? value : "");
	}
	job->binding_values[f->binding.count] = NULL;
	block += f->binding.count + 1;
	pending_to_job(&f->inputs, block, &job->inputs);
	block += f->inputs.count + 1;
	pending_to_job(&f->outputs, block, &job->outputs);
	block += f->outputs.count + 1;
	job->deps = (uint32_t *)block;
	job->more = job_more(b, f, recipe);
	job->cutoff = recipe->cutoff;
	/* Dependencies, each once: a mark per job, stamped with this job's number, keeps it linear
	 * (32 bits: the arena would run out long before 4 billion jobs). */
	if (g->count + 1 > b->dep_mark_cap) {
		size_t old_cap = b->dep_mark_cap;
		ALLOC_GROW(b->dep_mark, g->count + 1, b->dep_mark_cap);
		memset(b->dep_mark + old_cap, 0, (b->dep_mark_cap - old_cap) * sizeof(*b->dep_mark));
	}
	for (size_t i = 0; i < f->dep_count; i++) {
		size_t dep = f->deps[i];
		if (b->dep_mark[dep] == g->count + 1)
			continue;
		b->dep_mark[dep] = (uint32_t)(g->count + 1);
		job->deps[job->dep_count++] = (uint32_t)dep;
	}
}

/* Add `job` (fill_job) to the graph; returns its index. */
static size_t commit_job(struct builder *b, const struct graph_job *job)
{
	struct graph *g = b->graph;
	ALLOC_GROW(g->jobs, g->count + 1, g->cap);
	g->jobs[g->count] = *job;
	graph_index_job(b, g->count);
	return g->count++;
}

/* Whether recipe `r` iterates over the product of values: asked for, or no glob result to take combinations from. */
static bool recipe_iterates_product(const struct builder *b, size_t r)
{
	return b->set->recipes[r].product || !b->request->globbed;
}

/* The line just added to graph->skipped is about a group job. */
static void note_group_skip(struct graph *graph, enum graph_group_skip_reason reason)
{
	ALLOC_GROW(graph->group_skips, graph->group_skip_count + 1, graph->group_skip_cap);
	graph->group_skips[graph->group_skip_count++] = (struct graph_group_skip){graph->skipped.count - 1, reason};
}

/*
 * A batch job over a placeholder the command line narrowed would make a group
 * output from part of the study: left out (and said so) unless partial_group.
 */
static bool group_narrowed(struct builder *b, const struct recipe *recipe, const char *id)
{
	const struct strvec *narrowed = b->request->narrowed;
	for (size_t i = 0; narrowed && !b->request->partial_group && i < recipe->batch.count; i++) {
		if (strvec_find(narrowed, recipe->batch.items[i]) < 0)
			continue;
		const char *filter = b->request->filter_text;
		strvec_push_owned(&b->graph->skipped,
				  xasprintf("%s: left out: it covers every %s, and the command line (%s) narrows %s "
					    "to a subset; its output would silently cover part of the study",
					    id, recipe->batch.items[i], filter && *filter ? filter : "-p",
					    recipe->batch.items[i]));
		note_group_skip(b->graph, GRAPH_GROUP_NARROWED);
		strmap_put(&b->skipped, id, 0);
		return true;
	}
	return false;
}

static int assemble_job(struct builder *b, size_t recipe_index, const struct bindings *binding_in,
			size_t *index_out);

/* Add (or find) the job of recipe `recipe_index` for `binding`, seeing the placeholders as that recipe does. */
static int add_job(struct builder *b, size_t recipe_index, const struct bindings *binding, size_t *index_out)
{
	long outer = b->context;
	b->context = (long)recipe_index;
	int rc = assemble_job(b, recipe_index, binding, index_out);
	b->context = outer;
	return rc;
}

static int assemble_job(struct builder *b, size_t recipe_index, const struct bindings *binding_in,
			size_t *index_out)
{
	const struct recipe *recipe = &b->set->recipes[recipe_index];
	struct frame *f = frame_enter(b);
	bindings_copy(&f->binding, binding_in);
	/* Singular values are part of the identity too, so `--subject 01` names the same job as a full run. */
	const struct strvec *iterating = &b->recipes[recipe_index].iterating;
	for (size_t i = 0; i < iterating->count; i++) {
		if (bindings_find(&f->binding, iterating->items[i]))
			continue;
		const struct tree_placeholder *p = graph_placeholder(b, iterating->items[i]);
		if (p && p->count == 1 && !p->multiple)
			bindings_push(&f->binding, iterating->items[i], &p->values[0]);
	}
	if (f->binding.count > 1)
		qsort(f->binding.items, f->binding.count, sizeof(*f->binding.items), compare_bindings);
	make_job_id(recipe, &f->binding, &f->id);
	long existing = graph_job_map_find(b, &b->by_id, f->id.buf);
	if (existing >= 0) {
		*index_out = (size_t)existing;
		return ADD_OK;
	}
	if (strmap_get(&b->skipped, f->id.buf, NULL))
		return ADD_SKIPPED;
	if (group_narrowed(b, recipe, f->id.buf))
		return ADD_SKIPPED;
	size_t on_stack = 0;
	while (on_stack < b->depth && strcmp(b->frames[on_stack]->id.buf, f->id.buf))
		on_stack++;
	if (on_stack < b->depth) {
		struct strbuf cycle = STRBUF_INIT;
		for (size_t i = on_stack; i < b->depth; i++)
			strbuf_addf(&cycle, "%s -> ", b->frames[i]->id.buf);
		strbuf_adds(&cycle, f->id.buf);
		cp_err_set(b->err, b->set->file, recipe->line, "dependency cycle: %s", cycle.buf);
		strbuf_release(&cycle);
		return ADD_ERROR;
	}
	b->depth++;

	int rc = ADD_OK;
	bool product = recipe_iterates_product(b, recipe_index), outer_product = b->in_product;
	b->in_product = product;
	const struct recipe_info *info = &b->recipes[recipe_index];
	for (size_t i = 0; rc == ADD_OK && i < recipe->in.count; i++) {
		f->key_slot = (uint16_t)i;
		rc = expand_key(b, f, info->in_keys[i], recipe_is_optional(recipe, recipe->in.items[i]), 0, product);
	}
	for (size_t i = 0; rc == ADD_OK && i < recipe->out.count; i++) {
		f->key_slot = (uint16_t)i;
		rc = expand_key(b, f, info->out_keys[i], recipe_is_optional(recipe, recipe->out.items[i]), 1, product);
	}
	for (size_t i = 0; rc == ADD_OK && i < recipe->ref.count; i++) {
		f->key_slot = (uint16_t)i;
		rc = expand_key(b, f, info->ref_keys[i], false, 2, product);
	}
	b->in_product = outer_product;

	struct graph_job job;
	if (rc == ADD_OK) {
		fill_job(b, f, recipe_index, &job);
		if (graph_check_command(&b->graph->recipes[recipe_index], &job, b->err) < 0)
			rc = ADD_ERROR;
	}
	for (size_t i = 0; rc == ADD_OK && i < f->outputs.count; i++) {
		long other = graph_job_map_find(b, &b->by_output, f->outputs.paths[i]);
		if (other >= 0) {
			cp_err_set(b->err, b->set->file, recipe_field_line(recipe, "out"),
				   "jobs %s and %s both make '%s'; a recipe must iterate over every placeholder "
				   "of its outputs",
				   b->graph->jobs[other].id, f->id.buf, f->outputs.paths[i]);
			rc = ADD_ERROR;
		}
	}
	b->depth--;
	/* A group job never quietly disappears with a missing input: it is listed too. */
	if (rc == ADD_SKIPPED && recipe->batch.count) {
		strvec_push_owned(&b->graph->skipped,
				  xasprintf("%s: left out: some of its inputs are missing (see above)", f->id.buf));
		note_group_skip(b->graph, GRAPH_GROUP_INPUTS_MISSING);
	}
	if (rc == ADD_SKIPPED)
		strmap_put(&b->skipped, f->id.buf, 0);
	if (rc == ADD_OK)
		*index_out = commit_job(b, &job);
	return rc;
}

/* The raw keys upstream of recipe `r` that have no file at all (each once). */
static void keys_without_files(struct builder *b, size_t r, struct strvec *visited, struct strvec *out)
{
	const struct recipe *recipe = &b->set->recipes[r];
	if (strvec_find(visited, recipe->name) >= 0)
		return;
	strvec_push(visited, recipe->name);
	for (size_t i = 0; i < recipe->in.count; i++) {
		size_t key_index;
		if (recipe_is_optional(recipe, recipe->in.items[i]) ||
		    !strmap_get(&b->key_index, recipe->in.items[i], &key_index))
			continue;
		const struct key_info *info = &b->keys[key_index];
		if (info->producer >= 0)
			keys_without_files(b, (size_t)info->producer, visited, out);
		else if (info->combos && !info->combos->rows && strvec_find(out, info->key) < 0)
			strvec_push(out, info->key);
	}
}

/* A requested key with no combination to make: a warning that says why, not an error. */
static void note_nothing_to_make(struct builder *b, const char *key, size_t r)
{
	struct strvec visited = STRVEC_INIT, missing = STRVEC_INIT;
	keys_without_files(b, r, &visited, &missing);
	const char *filter = b->request->filter_text;
	struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "%s: nothing to make: ", key);
	if (missing.count) {
		strbuf_adds(&line, "no ");
		for (size_t i = 0; i < missing.count; i++)
			strbuf_addf(&line, "%s%s", i ? " or " : "", missing.items[i]);
		strbuf_adds(&line, " file was found");
		if (filter && *filter)
			strbuf_addf(&line, " that matches %s", filter);
	} else {
		strbuf_addf(&line, "no combination of placeholder values has every input of recipe '%s'%s%s%s",
			    b->set->recipes[r].name, b->set->recipes[r].value_count ? " among its placeholders: values" : "",
			    filter && *filter ? " that matches " : "", filter ? filter : "");
	}
	strvec_push_owned(&b->graph->warnings, strbuf_detach(&line));
	strvec_release(&visited);
	strvec_release(&missing);
}

/* Whether `filter` (NULL: every file) wants the file of `info` under `row`; a file that cannot be named is no match. */
static bool filter_wants(struct builder *b, const struct output_filter *filter, const struct key_info *info,
			 const struct bindings *row, struct strbuf *path)
{
	if (!filter)
		return true;
	/* Named as the producing recipe sees its placeholders (its own placeholders: values). */
	long outer = b->context;
	b->context = info->producer;
	int filled = fill_path(b, info, row, path);
	b->context = outer;
	if (filled < 0) {
		cp_err_release(b->err);
		return false;
	}
	return filter->wants(filter->context, path->buf);
}

/* Request the files of target key `key` that `filter` wants: one job per combination its recipe makes. */
static int request_existing(struct builder *b, struct key_info *info, size_t r, const struct output_filter *filter)
{
	const struct combos *combos = graph_recipe_combos(b, r);
	if (!combos)
		return -1;
	graph_reserve_for(b, r, combos->rows);
	if (!combos->rows && !filter)
		note_nothing_to_make(b, info->key, r);
	struct bindings row = {NULL, 0, 0};
	struct strbuf path = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < combos->rows && rc == 0; i++) {
		row.count = 0;
		for (size_t k = 0; k < combos->names.count; k++)
			bindings_push(&row, combos->names.items[k], combos_cell(combos, i, k));
		if (!filter_wants(b, filter, info, &row, &path))
			continue;
		size_t index;
		int status = add_job(b, r, &row, &index);
		if (status == ADD_ERROR)
			rc = -1;
		else if (status == ADD_OK)
			b->graph->jobs[index].target = true;
	}
	free(row.items);
	strbuf_release(&path);
	return rc;
}

int graph_request_key(struct builder *b, const char *key, const struct output_filter *filter)
{
	struct key_info *info = key_lookup(b, key);
	if (!info) {
		cp_err_prefix(b->err, "target: ");
		return -1;
	}
	if (info->producer < 0) {
		cp_err_set(b->err, NULL, 0, "no recipe makes key '%s' (it is a raw input)", key);
		return -1;
	}
	if (!recipe_iterates_product(b, (size_t)info->producer))
		return request_existing(b, info, (size_t)info->producer, filter);
	b->in_product = true;
	b->context = info->producer;
	struct axes axes = {NULL, 0, 0};
	struct strbuf path = STRBUF_INIT;
	int rc = collect_axes(b, &info->names, &info->required, NULL, key, NULL, &axes);
	if (rc < 0 || axes_empty(&axes))
		goto out;
	size_t *rows = xcalloc(axes.count + 1, sizeof(*rows));
	struct bindings full = {NULL, 0, 0}, restricted = {NULL, 0, 0};
	do {
		full.count = 0;
		bind_row(&axes, rows, &full);
		if (fill_path(b, info, &full, &path) < 0) {
			rc = -1;
			break;
		}
		if (filter && !filter->wants(filter->context, path.buf))
			continue;
		long dep;
		if (require_file(b, info, path.buf, &full, false, &restricted, &dep) == ADD_ERROR) {
			rc = -1;
			break;
		}
		if (dep >= 0)
			b->graph->jobs[dep].target = true;
	} while (next_row(&axes, rows));
	free(full.items);
	free(restricted.items);
	free(rows);
out:
	b->in_product = false;
	b->context = -1;
	axes_release(&axes);
	strbuf_release(&path);
	return rc;
}

int graph_request_path(struct builder *b, const char *target)
{
	struct strbuf normal = STRBUF_INIT;
	path_normalize(target, &normal);
	int rc = 1;
	for (size_t r = 0; rc == 1 && r < b->set->count; r++) {
		const struct recipe *recipe = &b->set->recipes[r];
		for (size_t k = 0; rc == 1 && k < recipe->out.count; k++) {
			struct key_info *info = key_lookup(b, recipe->out.items[k]);
			if (!info) {
				rc = -1;
				break;
			}
			struct glob_result matches = GLOB_RESULT_INIT;
			int found = glob_match_path(info->path, normal.buf, false, &matches, b->err);
			if (found < 0) {
				rc = -1;
			} else if (found > 0) {
				/* The best parse names the file's placeholders, as in globbing. */
				const struct glob_file *match = &matches.files[0];
				struct bindings fixed = {NULL, 0, 0}, restricted = {NULL, 0, 0};
				for (size_t i = 0; i < match->binding_count; i++)
					bindings_push(&fixed, match->bindings[i].name, &match->bindings[i].value);
				long dep;
				rc = require_file(b, info, normal.buf, &fixed, false, &restricted, &dep) == ADD_ERROR ? -1 : 0;
				if (dep >= 0)
					b->graph->jobs[dep].target = true;
				free(fixed.items);
				free(restricted.items);
			}
			glob_result_release(&matches);
		}
	}
	strbuf_release(&normal);
	return rc;
}

int graph_build(const struct tree *tree, const struct recipe_set *set, const struct graph_request *request,
		struct graph **out, struct cp_err *err)
{
	struct builder b;
	memset(&b, 0, sizeof(b));
	b.tree = tree;
	b.set = set;
	b.request = request;
	b.err = err;
	b.context = -1;
	b.graph = xcalloc(1, sizeof(*b.graph));
	b.by_output.kind = JOB_MAP_OUTPUT;
	b.by_id.kind = JOB_MAP_ID;
	b.graph->by_id = (struct strmap)STRMAP_INIT_BORROWED;
	*out = NULL;
	int rc = prepare_recipes(&b);

	if (rc == 0)
		rc = graph_request_targets(&b);

	for (size_t i = 0; i < b.key_count; i++) {
		if (b.keys[i].combos && !b.keys[i].combos_shared) {
			combos_release(b.keys[i].combos);
			free(b.keys[i].combos);
		}
		free(b.keys[i].key);
		strvec_release(&b.keys[i].required);
		strvec_release(&b.keys[i].optional);
		strvec_release(&b.keys[i].names);
		strvec_release(&b.keys[i].iterating);
		template_release(&b.keys[i].parsed);
	}
	free(b.keys);
	strmap_release(&b.key_index);
	for (size_t r = 0; b.recipes && r < set->count; r++) {
		strvec_release(&b.recipes[r].iterating);
		free(b.recipes[r].in_keys);
		free(b.recipes[r].out_keys);
		free(b.recipes[r].ref_keys);
		graph_release_values(&b.recipes[r]);
		if (b.recipes[r].combos)
			combos_release(b.recipes[r].combos);
		free(b.recipes[r].combos);
	}
	free(b.recipes);
	strmap_release(&b.skipped);
	graph_job_map_release(&b.by_output);
	graph_job_map_release(&b.by_id);
	free(b.dep_mark);
	for (size_t i = 0; i < b.frame_count; i++)
		frame_free(b.frames[i]);
	free(b.frames);
	free(b.names);
	strvec_release(&b.combining);
	if (rc < 0) {
		graph_free(b.graph);
		return -1;
	}
	*out = b.graph;
	return 0;
}
