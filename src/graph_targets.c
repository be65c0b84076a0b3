/*
 * The targets of a graph, as the command line names them (TARGETS in cpipe(1)): each is, in
 * this order, a template key (every file of it; a raw key only when no recipe has its name), a
 * recipe's name (every file of each of its `out` keys), a pattern over the output paths (`*`,
 * `?`, `[...]`, `**`), or one output path.
 * A target that names nothing is an error that offers the keys, recipes and files close to it.
 */
#include "graph_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NEAREST_MAX = 3 };

/*
 * A pattern target's search over every output path of every job the recipes make: how many it
 * takes, and the nearest of the others (for the message when it takes none).
 */
struct pattern_search {
	const char *pattern;
	size_t taken;
	size_t seen;
	char *nearest[NEAREST_MAX]; /* the first paths not taken at the smallest distance */
	size_t nearest_count;
	size_t distance; /* theirs */
	size_t cutoff; /* a path further than this is no suggestion */
};

static void search_init(struct pattern_search *search, const char *pattern)
{
	memset(search, 0, sizeof(*search));
	search->pattern = pattern;
	/* Roughly the tree's "did you mean" cutoff (two changes in five), on the pattern's own characters. */
	size_t own = 0;
	for (const char *p = pattern; *p; p++)
		own += *p != '*';
	search->cutoff = own * 2 / 5;
}

static void search_release(struct pattern_search *search)
{
	for (size_t i = 0; i < search->nearest_count; i++)
		free(search->nearest[i]);
}

/* Keep `path` among the nearest: the first few at the smallest distance within the cutoff. */
static void keep_nearest(struct pattern_search *search, const char *path)
{
	size_t distance = path_pattern_distance(search->pattern, path);
	if (distance > search->cutoff || (search->nearest_count && distance > search->distance))
		return;
	if (search->nearest_count && distance < search->distance) {
		for (size_t i = 0; i < search->nearest_count; i++)
			free(search->nearest[i]);
		search->nearest_count = 0;
	}
	search->distance = distance;
	if (search->nearest_count < NEAREST_MAX)
		search->nearest[search->nearest_count++] = xstrdup(path);
}

static bool pattern_wants(void *context, const char *path)
{
	struct pattern_search *search = context;
	search->seen++;
	/* A file whose own name has pattern characters ("[x]") is taken as it is written too. */
	if (!strcmp(search->pattern, path) || path_pattern_match(search->pattern, path)) {
		search->taken++;
		return true;
	}
	if (!search->taken)
		keep_nearest(search, path);
	return false;
}

/* Only looks: every output path goes to the nearest, none is taken. */
static bool nearest_only(void *context, const char *path)
{
	struct pattern_search *search = context;
	search->seen++;
	keep_nearest(search, path);
	return false;
}

/* Run `wants` over every output path of every `out` key. */
static int search_outputs(struct builder *b, bool (*wants)(void *, const char *), struct pattern_search *search)
{
	struct output_filter filter = {wants, search};
	for (size_t r = 0; r < b->set->count; r++)
		for (size_t k = 0; k < b->set->recipes[r].out.count; k++)
			if (graph_request_key(b, b->set->recipes[r].out.items[k], &filter) < 0)
				return -1;
	return 0;
}

/* The keys and recipe names close to `target` (the tree's cutoff, on edit distance). */
static void close_names(const struct builder *b, const char *target, struct strvec *out)
{
	struct strvec keys = STRVEC_INIT;
	tree_template_keys(b->tree, &keys);
	for (size_t i = 0; i < keys.count + b->set->count; i++) {
		bool is_key = i < keys.count;
		const char *name = is_key ? keys.items[i] : b->set->recipes[i - keys.count].name;
		if (!is_key && strvec_find(&keys, name) >= 0)
			continue; /* the key of that name is what it would mean */
		size_t longest = strlen(name) > strlen(target) ? strlen(name) : strlen(target);
		if (*name && str_distance(target, name) * 5 <= longest * 2)
			strvec_push_owned(out, is_key ? xstrdup(name) : xasprintf("%s (a recipe)", name));
	}
	strvec_release(&keys);
}

/* "did you mean a, b or c?" over `names` then the search's nearest paths. */
static void add_suggestions(struct strbuf *message, const struct strvec *names, const struct pattern_search *search)
{
	size_t total = names->count + search->nearest_count;
	for (size_t i = 0; i < total; i++) {
		strbuf_adds(message, i == 0 ? "; did you mean " : i + 1 == total ? " or " : ", ");
		strbuf_adds(message, i < names->count ? names->items[i] : search->nearest[i - names->count]);
	}
	if (total)
		strbuf_addch(message, '?');
}

/*
 * Fail on `message`; a target from the recipe file's `default:` (entry `entry`, else -1) is that
 * file's error, at the entry's line.
 */
static void target_error(struct builder *b, long entry, const struct strbuf *message)
{
	if (entry < 0) {
		cp_err_set(b->err, NULL, 0, "%s", message->buf);
		return;
	}
	char field[48];
	snprintf(field, sizeof(field), "default.%ld", entry);
	cp_err_set(b->err, b->set->file, recipe_set_field_line(b->set, field), "default: %s", message->buf);
}

static int request_pattern(struct builder *b, const char *pattern, long entry)
{
	struct pattern_search search;
	struct strbuf normal = STRBUF_INIT;
	/* "./sub-01/" and "sub-01//x" are what "sub-01/" and "sub-01/x" are: output paths are normalised. */
	path_normalize(pattern, &normal);
	search_init(&search, normal.buf);
	int rc = search_outputs(b, pattern_wants, &search);
	if (rc == 0 && !search.taken) {
		struct strbuf message = STRBUF_INIT;
		struct strvec none = STRVEC_INIT;
		strbuf_addf(&message, "target '%s' matches none of the %zu files the recipes make", pattern, search.seen);
		add_suggestions(&message, &none, &search);
		target_error(b, entry, &message);
		strbuf_release(&message);
		rc = -1;
	}
	search_release(&search);
	strbuf_release(&normal);
	return rc;
}

/* `target` names nothing: an error offering what is close to it. */
static int no_such_target(struct builder *b, const char *target, long entry)
{
	struct pattern_search search;
	struct strvec names = STRVEC_INIT;
	struct strbuf normal = STRBUF_INIT;
	path_normalize(target, &normal);
	search_init(&search, normal.buf);
	close_names(b, target, &names);
	/* Files the recipes cannot even list (a product recipe short of a value) are only no suggestion. */
	if (search_outputs(b, nearest_only, &search) < 0)
		cp_err_release(b->err);
	struct strbuf message = STRBUF_INIT;
	strbuf_addf(&message, "target '%s' is no template key, recipe or file any recipe makes", target);
	add_suggestions(&message, &names, &search);
	target_error(b, entry, &message);
	strbuf_release(&message);
	search_release(&search);
	strvec_release(&names);
	strbuf_release(&normal);
	return -1;
}

/*
 * A key that is also the name of another recipe than the one making it is the key; say so, with
 * the keys that make the recipe's files. (When the recipe makes the key, both are its jobs.)
 */
static void note_key_over_recipe(struct builder *b, const char *key)
{
	long r = recipe_find(b->set, key);
	long producer = recipe_find_producer(b->set, key);
	if (r < 0 || r == producer)
		return;
	const struct strvec *out = &b->set->recipes[r].out;
	struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "target '%s' is a template key and the name of another recipe: it makes key %s", key, key);
	if (producer >= 0)
		strbuf_addf(&line, " (recipe %s)", b->set->recipes[producer].name);
	strbuf_addf(&line, "; name recipe %s's output%s for its files: ", key, out->count == 1 ? "" : "s");
	for (size_t k = 0; k < out->count; k++)
		strbuf_addf(&line, "%s%s", k ? " " : "", out->items[k]);
	strvec_push_owned(&b->graph->warnings, strbuf_detach(&line));
}

/* Request one target; `entry` is its index in `default:` when it comes from there, else -1. */
static int request_target(struct builder *b, const char *target, long entry)
{
	struct cp_err ignored = CP_ERR_INIT;
	bool is_key = tree_find_template(b->tree, target, &ignored) >= 0;
	cp_err_release(&ignored);
	long r = recipe_find(b->set, target);
	/* A raw key is nothing to make: a recipe of its name is what is meant. */
	if (is_key && (r < 0 || recipe_find_producer(b->set, target) >= 0)) {
		note_key_over_recipe(b, target);
		return graph_request_key(b, target, NULL);
	}
	if (r >= 0) {
		const struct strvec *out = &b->set->recipes[r].out;
		for (size_t k = 0; k < out->count; k++)
			if (graph_request_key(b, out->items[k], NULL) < 0)
				return -1;
		return 0;
	}
	if (path_is_pattern(target))
		return request_pattern(b, target, entry);
	int found = graph_request_path(b, target);
	return found == 1 ? no_such_target(b, target, entry) : found;
}

int graph_request_targets(struct builder *b)
{
	const struct graph_request *request = b->request;
	struct strvec targets = STRVEC_INIT;
	for (size_t i = 0; i < request->target_count; i++)
		strvec_push(&targets, request->targets[i]);
	for (size_t i = 0; !request->target_count && i < b->set->targets.count; i++)
		strvec_push(&targets, b->set->targets.items[i]);
	if (!targets.count) {
		for (size_t r = 0; r < b->set->count; r++)
			for (size_t k = 0; k < b->set->recipes[r].out.count; k++)
				strvec_push(&targets, b->set->recipes[r].out.items[k]);
	}
	bool from_default = !request->target_count && b->set->targets.count;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < targets.count; i++)
		rc = request_target(b, targets.items[i], from_default ? (long)i : -1);
	strvec_release(&targets);
	return rc;
}
