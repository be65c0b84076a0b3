/*
 * graph: the combinations of placeholder values that exist, which a recipe
 * makes jobs for unless it iterates over the product of values: a raw key's
 * come from the files the glob found, a derived key's from its producing
 * recipe, and a recipe's are the join of its inputs' (graph_combos.c does the
 * joining); whether a raw input is on disk; which keys come from disk at all
 * (graph_source_keys). The rest of graph_build is
 * graph.c; what they share, graph_int.h.
 */
#include "cpipe/glob.h"
#include "graph_combos.h"
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int compare_globbed(const void *wanted, const void *file)
{
	const struct glob_file *a = wanted, *f = file;
	int c = strcmp(a->key, f->key);
	return c ? c : strcmp(a->path, f->path);
}

/* Is the raw input there? The glob already listed what exists; only paths it missed cost a stat. */
bool graph_raw_input_exists(struct builder *b, const char *key, const char *path)
{
	const struct glob_result *globbed = b->request->globbed;
	if (globbed && globbed->count) {
		struct glob_file wanted;
		memset(&wanted, 0, sizeof(wanted));
		wanted.key = (char *)key;
		wanted.path = (char *)path;
		/* Jobs are made in the order of the combinations, which is the files' order: try the next file first. */
		size_t next = b->globbed_next;
		const struct glob_file *found = next < globbed->count && !compare_globbed(&wanted, &globbed->files[next])
			? &globbed->files[next]
			: bsearch(&wanted, globbed->files, globbed->count, sizeof(*globbed->files), compare_globbed);
		if (found) {
			b->globbed_next = (size_t)(found - globbed->files) + 1;
			return true;
		}
	}
	struct stat st;
	struct strbuf full = STRBUF_INIT;
	path_join(b->request->data_root ? b->request->data_root : ".", path, &full);
	bool exists = lstat(full.buf, &st) == 0;
	if (b->request->observed)
		glob_observations_add(b->request->observed, GLOB_SEEN_NAME, full.buf, 0, exists ? &st : NULL);
	strbuf_release(&full);
	return exists;
}

/* The names of `names` that iterate (a list of values in the tree): the columns of combinations. */
void graph_iterating_names(const struct builder *b, const struct strvec *names, struct strvec *out)
{
	for (size_t i = 0; i < names->count; i++) {
		const struct tree_placeholder *p = graph_placeholder(b, names->items[i]);
		if (p && p->count && p->multiple && strvec_find(out, names->items[i]) < 0)
			strvec_push(out, names->items[i]);
	}
}

static const struct tree_value none_value = {NULL, TREE_VALUE_STRING, 0, 0.0, false};

/* The value a globbed file has for template name `name` (a scoped P/x without a value was globbed as x). */
static const struct tree_value *file_value(const struct glob_file *file, const char *name)
{
	const char *slash = strrchr(name, '/');
	for (size_t i = 0; i < file->binding_count; i++)
		if (!strcmp(file->bindings[i].name, name))
			return &file->bindings[i].value;
	for (size_t i = 0; slash && i < file->binding_count; i++)
		if (!strcmp(file->bindings[i].name, slash + 1))
			return &file->bindings[i].value;
	return &none_value;
}

/* A raw key's combinations: one per file the glob found. */
static void raw_key_combos(const struct builder *b, const struct key_info *info, struct combos *out)
{
	combos_init(out, &info->iterating);
	const struct glob_result *globbed = b->request->globbed;
	size_t low = 0, high = globbed->count, width = out->names.count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (strcmp(globbed->files[middle].key, info->key) < 0)
			low = middle + 1;
		else
			high = middle;
	}
	const struct tree_value **row = xcalloc(width + 1, sizeof(*row));
	for (size_t i = low; i < globbed->count && !strcmp(globbed->files[i].key, info->key); i++) {
		for (size_t k = 0; k < width; k++)
			row[k] = file_value(&globbed->files[i], out->names.items[k]);
		combos_add(out, row);
	}
	free(row);
}

/* The combinations of `info`'s iterating placeholders that exist; NULL on error. */
struct combos *graph_key_combos(struct builder *b, size_t key_index)
{
	if (b->keys[key_index].combos)
		return b->keys[key_index].combos;
	struct combos *c = xcalloc(1, sizeof(*c));
	long producer = b->keys[key_index].producer;
	if (producer < 0) {
		raw_key_combos(b, &b->keys[key_index], c);
	} else {
		struct combos *made = graph_recipe_combos(b, (size_t)producer);
		if (!made) {
			free(c);
			return NULL;
		}
		/* The usual output has exactly its recipe's columns: share them rather than copy every row. */
		struct strvec *names = &b->keys[key_index].iterating;
		bool same = made->names.count == names->count;
		for (size_t i = 0; same && i < names->count; i++)
			same = strvec_find(&made->names, names->items[i]) >= 0;
		if (same) {
			free(c);
			b->keys[key_index].combos_shared = true;
			return b->keys[key_index].combos = made;
		}
		combos_project(made, names, c);
	}
	return b->keys[key_index].combos = c;
}

/* The iterating names of `names` that `c` has no column for, crossed in: linked groups row by row. */
static void cross_uncovered(const struct builder *b, const struct strvec *names, struct combos **c)
{
	struct strvec done = STRVEC_INIT;
	for (size_t i = 0; i < names->count; i++) {
		const char *name = names->items[i];
		if (strvec_find(&(*c)->names, name) >= 0 || strvec_find(&done, name) >= 0)
			continue;
		const struct tree_placeholder *p = graph_placeholder(b, name);
		struct strvec group = STRVEC_INIT;
		for (size_t j = i; j < names->count; j++) {
			const struct tree_placeholder *q = graph_placeholder(b, names->items[j]);
			if (strvec_find(&(*c)->names, names->items[j]) < 0 &&
			    (q == p || (p->link >= 0 && q->link == p->link)))
				strvec_push(&group, names->items[j]);
		}
		struct combos values, *crossed = xcalloc(1, sizeof(*crossed));
		combos_init(&values, &group);
		const struct tree_value **row = xcalloc(group.count + 1, sizeof(*row));
		for (size_t v = 0; v < p->count; v++) {
			for (size_t k = 0; k < values.names.count; k++)
				row[k] = &graph_placeholder(b, values.names.items[k])->values[v];
			combos_add(&values, row);
		}
		combos_join(*c, &values, crossed);
		combos_release(*c);
		free(*c);
		*c = crossed;
		for (size_t k = 0; k < group.count; k++)
			strvec_push(&done, group.items[k]);
		free(row);
		combos_release(&values);
		strvec_release(&group);
	}
	strvec_release(&done);
}

/*
 * For plan -v: the combinations of one input of recipe `r` that make no job,
 * because another required input does not exist for them.
 */
static void note_left_out(struct builder *b, size_t r, struct combos *made, struct combos *inputs,
			  const char *const *keys, size_t input_count)
{
	const char *name = b->set->recipes[r].name;
	struct strmap seen = STRMAP_INIT;
	struct strbuf line = STRBUF_INIT;
	for (size_t i = 0; input_count > 1 && i < input_count; i++) {
		for (size_t row = 0; row < inputs[i].rows; row++) {
			if (combos_has_match(made, &inputs[i], row))
				continue;
			strbuf_reset(&line);
			strbuf_addf(&line, "%s: no job for ", name);
			combos_describe_row(&inputs[i], row, &line);
			strbuf_addf(&line, ": a %s file exists for it, but no ", keys[i]);
			bool first = true;
			for (size_t j = 0; j < input_count; j++) {
				if (j == i || combos_has_match(&inputs[j], &inputs[i], row))
					continue;
				strbuf_addf(&line, "%s%s", first ? "" : " or ", keys[j]);
				first = false;
			}
			strbuf_adds(&line, first ? "combination of the other inputs" : " file");
			if (strmap_put(&seen, line.buf, 0))
				strvec_push(&b->graph->left_out, line.buf);
		}
	}
	strbuf_release(&line);
	strmap_release(&seen);
}

/*
 * The combinations of the `count` input combinations that exist together, cut
 * down to `iterating` and crossed with the values of names no input has. A
 * single input (the usual recipe) is only cut down: joining it with the
 * one empty row would copy every row once more.
 */
static struct combos *join_inputs(struct builder *b, size_t r, const struct strvec *iterating,
				  struct combos *const *inputs, const char *const *keys, size_t count)
{
	struct combos *joined = NULL;
	for (size_t i = 1; i < count; i++) {
		struct combos *next = xcalloc(1, sizeof(*next));
		combos_join(joined ? joined : inputs[0], inputs[i], next);
		if (joined) {
			combos_release(joined);
			free(joined);
		}
		joined = next;
	}
	struct combos *made = xcalloc(1, sizeof(*made));
	if (count) {
		combos_project(joined ? joined : inputs[0], iterating, made);
	} else {
		struct strvec no_names = STRVEC_INIT;
		const struct tree_value *unit[1] = {NULL};
		combos_init(made, &no_names);
		combos_add(made, unit);
	}
	if (joined) {
		combos_release(joined);
		free(joined);
	}
	cross_uncovered(b, iterating, &made);
	if (count > 1) {
		struct combos *projected = xcalloc(count, sizeof(*projected));
		for (size_t i = 0; i < count; i++)
			combos_project(inputs[i], iterating, &projected[i]);
		note_left_out(b, r, made, projected, keys, count);
		for (size_t i = 0; i < count; i++)
			combos_release(&projected[i]);
		free(projected);
	}
	return made;
}

/*
 * The combinations recipe `r` makes jobs for: those of its required inputs
 * that exist together (joined on the placeholders they share), cut down to
 * the placeholders it iterates over, crossed with the values of those no
 * input has. NULL on error (a cycle between recipes).
 */
struct combos *graph_recipe_combos(struct builder *b, size_t r)
{
	if (b->recipes[r].combos)
		return b->recipes[r].combos;
	const struct recipe *recipe = &b->set->recipes[r];
	if (b->recipes[r].combining) {
		struct strbuf cycle = STRBUF_INIT;
		for (size_t i = (size_t)strvec_find(&b->combining, recipe->name); i < b->combining.count; i++)
			strbuf_addf(&cycle, "%s -> ", b->combining.items[i]);
		cp_err_set(b->err, b->set->file, recipe->line, "dependency cycle: %s%s", cycle.buf, recipe->name);
		strbuf_release(&cycle);
		return NULL;
	}
	b->recipes[r].combining = true;
	strvec_push(&b->combining, recipe->name);
	long outer = b->context;
	b->context = (long)r;
	struct strvec iterating = STRVEC_INIT;
	graph_iterating_names(b, &b->recipes[r].iterating, &iterating);
	struct combos **inputs = xcalloc(recipe->in.count + 1, sizeof(*inputs));
	const char **keys = xcalloc(recipe->in.count + 1, sizeof(*keys));
	size_t input_count = 0;
	bool failed = false;
	for (size_t i = 0; i < recipe->in.count && !failed; i++) {
		if (recipe_is_optional(recipe, recipe->in.items[i]))
			continue;
		size_t key_index;
		strmap_get(&b->key_index, recipe->in.items[i], &key_index);
		inputs[input_count] = graph_key_combos(b, key_index);
		failed = !inputs[input_count];
		keys[input_count++] = recipe->in.items[i];
	}
	struct combos *made = NULL;
	if (!failed) {
		made = join_inputs(b, r, &iterating, inputs, keys, input_count);
		graph_filter_combos(b, &made);
	}
	b->context = outer;
	free(inputs);
	free(keys);
	strvec_release(&iterating);
	b->recipes[r].combining = false;
	free(b->combining.items[--b->combining.count]);
	return b->recipes[r].combos = made;
}

void graph_source_keys(const struct recipe_set *set, struct strvec *out)
{
	for (size_t r = 0; r < set->count; r++) {
		const struct strvec *lists[] = {&set->recipes[r].in, &set->recipes[r].ref};
		for (size_t l = 0; l < 2; l++) {
			for (size_t k = 0; k < lists[l]->count; k++) {
				const char *key = lists[l]->items[k];
				if (recipe_find_producer(set, key) < 0 && strvec_find(out, key) < 0)
					strvec_push(out, key);
			}
		}
	}
}
