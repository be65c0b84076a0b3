/*
 * recipe_include.c: composition (man/cpipe-recipes.5, INCLUDING RECIPE
 * FILES). A recipe file's `include:` entries name other recipe files; each is
 * loaded relative to the including file, with the chain of files that led to
 * it (cycles, messages), and its recipes are added to the set, mounted in a
 * sub-tree: key K becomes SUBTREE/K unless `rename:` maps it to a key of the
 * including tree, recipe NAME becomes SUBTREE/NAME, as the tree names a
 * sub-tree's keys (`->anat (anat)` gives `anat/t1`). Placeholder names need
 * the tree, so recipe_scope_placeholders does them once it is read.
 */
#include "recipe_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One `include:` entry as written; strings borrowed from the node record. */
struct include_entry {
	const char *file;
	const char *subtree;   /* NULL: keys keep their names (fsl-pipe's Pipeline.merge) */
	struct strvec from;    /* rename: from.items[i] (the included file's key) -> to.items[i] */
	struct strvec to;
	int *from_lines;
	int line;
	int rename_line;
};

static void entry_release(struct include_entry *entry)
{
	strvec_release(&entry->from);
	strvec_release(&entry->to);
	free(entry->from_lines);
	memset(entry, 0, sizeof(*entry));
}

/* A sub-tree name: '/'-separated parts of letters, digits, '_', '-' and '.', none empty or starting with '.'. */
static bool valid_subtree(const char *name)
{
	bool part_start = true;
	for (const char *c = name; *c; c++) {
		if (*c == '/') {
			if (part_start)
				return false;
			part_start = true;
			continue;
		}
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
			return false;
		if (part_start && *c == '.')
			return false;
		part_start = false;
	}
	return !part_start;
}

static int entry_fail(const struct recipe_set *set, int line, struct cp_err *err, const char *fmt, ...)
	CP_PRINTF(4, 5);
static int entry_fail(const struct recipe_set *set, int line, struct cp_err *err, const char *fmt, ...)
{
	struct strbuf message = STRBUF_INIT;
	va_list args;
	strbuf_adds(&message, "include: ");
	va_start(args, fmt);
	strbuf_vaddf(&message, fmt, args);
	va_end(args);
	cp_err_set(err, set->file, line, "%s", message.buf);
	strbuf_release(&message);
	return -1;
}

static bool all_digits(const char *text, size_t length)
{
	return length && strspn(text, "0123456789") >= length;
}

/* One node under "include.N.": a field of the entry, or a pair of its `rename:`. */
static int read_entry_node(const struct recipe_set *set, const struct node_line *node, const char *rest,
			   struct include_entry *entry, struct cp_err *err)
{
	static const char *const fields[] = {"file", "subtree", "rename"};
	const char *dot = strchr(rest, '.');
	size_t length = dot ? (size_t)(dot - rest) : strlen(rest);
	if (dot && length == 6 && !strncmp(rest, "rename", 6)) {
		const char *key = dot + 1;
		if (all_digits(key, strlen(key)) || !node->scalar)
			return entry_fail(set, node->line, err,
					  "rename: expected a mapping of the included file's keys to this tree's keys, "
					  "e.g. rename: {t1: T1w}");
		if (!*node->scalar)
			return entry_fail(set, node->line, err, "rename: '%s' is renamed to nothing", key);
		/* The new name stands in `{name}`s of the run string, which take these characters. */
		if (node->scalar[strspn(node->scalar, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")])
			return entry_fail(set, node->line, err,
					  "rename: '%s' is not a key name: use letters, digits, '_', '-', '.' and '/'",
					  node->scalar);
		strvec_push(&entry->from, key);
		strvec_push(&entry->to, node->scalar);
		entry->from_lines = xrealloc(entry->from_lines, entry->from.count * sizeof(*entry->from_lines));
		entry->from_lines[entry->from.count - 1] = node->line;
		return 0;
	}
	if (all_digits(rest, length))
		return entry_fail(set, node->line, err,
				  "each entry is a file name or a mapping {file: F, subtree: S, rename: {...}}");
	size_t field = 0;
	while (field < ARRAY_SIZE(fields) && (strlen(fields[field]) != length || strncmp(rest, fields[field], length)))
		field++;
	if (field == ARRAY_SIZE(fields)) {
		char *name = xstrndup(rest, length);
		struct strvec names = STRVEC_INIT;
		for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
			strvec_push(&names, fields[i]);
		const char *suggestion = recipe_suggest_name(name, &names);
		entry_fail(set, node->line, err, "unknown field '%s' (%s%s%s)", name,
			   suggestion ? "did you mean '" : "expected one of: file, subtree, rename",
			   suggestion ? suggestion : "", suggestion ? "'?" : "");
		strvec_release(&names);
		free(name);
		return -1;
	}
	if (dot) /* under file: or subtree: */
		return 0;
	if (field == 2) {
		entry->rename_line = node->line;
		if (node->scalar)
			return entry_fail(set, node->line, err,
					  "rename: expected a mapping of the included file's keys to this tree's keys, "
					  "e.g. rename: {t1: T1w}");
		return 0;
	}
	if (!node->scalar || !*node->scalar)
		return entry_fail(set, node->line, err, "%s: expected one %s", fields[field],
				  field == 0 ? "file name" : "sub-tree name");
	if (field == 1 && !valid_subtree(node->scalar))
		return entry_fail(set, node->line, err,
				  "subtree: '%s' is not a sub-tree name: use letters, digits, '_', '-' and '.', "
				  "with '/' between the names of nested sub-trees",
				  node->scalar);
	if (field == 0)
		entry->file = node->scalar;
	else
		entry->subtree = node->scalar;
	return 0;
}

/* Entry `index` of `include:` (which exists) into `entry`. */
static int read_entry(const struct recipe_set *set, size_t index, struct include_entry *entry, struct cp_err *err)
{
	char *prefix = xasprintf("include.%zu", index);
	size_t length = strlen(prefix);
	const struct node_line *node = recipe_lines_find(set->lines, prefix);
	int rc = 0;
	memset(entry, 0, sizeof(*entry));
	entry->line = node->line;
	if (node->scalar)
		entry->file = node->scalar;
	for (size_t i = 0; i < set->lines->count && !rc; i++) {
		const struct node_line *item = &set->lines->items[i];
		if (!strncmp(item->path, prefix, length) && item->path[length] == '.')
			rc = read_entry_node(set, item, item->path + length + 1, entry, err);
	}
	free(prefix);
	if (!rc && (!entry->file || !*entry->file))
		rc = entry_fail(set, entry->line, err, "an entry without 'file:' (the recipe file to include)");
	return rc;
}

/* Whether `a` and `b` name one file (the same path when one cannot be resolved). */
static bool same_file(const char *a, const char *b)
{
	char *real_a = realpath(a, NULL), *real_b = realpath(b, NULL);
	bool same;
	if (real_a && real_b) {
		same = !strcmp(real_a, real_b);
	} else {
		struct strbuf normal_a = STRBUF_INIT, normal_b = STRBUF_INIT;
		path_normalize(a, &normal_a);
		path_normalize(b, &normal_b);
		same = !strcmp(normal_a.buf, normal_b.buf);
		strbuf_release(&normal_a);
		strbuf_release(&normal_b);
	}
	free(real_a);
	free(real_b);
	return same;
}

/* "top.yaml -> a.yaml -> ... -> self" into `out`. */
static void describe_chain(const struct include_chain *self, struct strbuf *out)
{
	if (self->parent) {
		describe_chain(self->parent, out);
		strbuf_adds(out, " -> ");
	}
	strbuf_adds(out, self->path);
}

/*
 * An error inside `path` (reached from `self` at `line`) says where it was
 * included from: "(included from cpipe.yaml:3, from top.yaml:2)".
 * Errors from deeper files already say so, with their own file.
 */
static void add_included_from(const char *path, const struct include_chain *self, int line, struct cp_err *err)
{
	if (!err->file || strcmp(err->file, path))
		return;
	struct strbuf message = STRBUF_INIT;
	strbuf_addf(&message, "%s (included from %s:%d", err->message ? err->message : "", self->path, line);
	for (const struct include_chain *c = self; c->parent; c = c->parent)
		strbuf_addf(&message, ", from %s:%d", c->parent->path, c->line);
	strbuf_addch(&message, ')');
	free(err->message);
	err->message = strbuf_detach(&message);
}

/* The name key `key` of an included recipe takes once mounted (owned). */
static char *mounted_key(const struct include_entry *entry, const char *key)
{
	long i = strvec_find(&entry->from, key);
	if (i >= 0)
		return xstrdup(entry->to.items[i]);
	return entry->subtree ? xasprintf("%s/%s", entry->subtree, key) : xstrdup(key);
}

struct key_renaming {
	const struct include_entry *entry;
	const struct recipe *recipe;
	struct strvec names; /* what run_key returned, freed after the run is rewritten */
};

/* A key of the recipe in its run string takes its mounted name; a placeholder waits for the tree. */
static const char *run_key(void *ctx, const char *name)
{
	struct key_renaming *renaming = ctx;
	const struct recipe *r = renaming->recipe;
	if (strvec_find(&r->in, name) < 0 && strvec_find(&r->out, name) < 0 && strvec_find(&r->ref, name) < 0)
		return NULL;
	strvec_push_owned(&renaming->names, mounted_key(renaming->entry, name));
	return renaming->names.items[renaming->names.count - 1];
}

static void mount_list(const struct include_entry *entry, struct strvec *list)
{
	for (size_t i = 0; i < list->count; i++) {
		char *mounted = mounted_key(entry, list->items[i]);
		free(list->items[i]);
		list->items[i] = mounted;
	}
}

static void mount_recipe(const struct include_entry *entry, struct recipe *r)
{
	struct key_renaming renaming = {entry, r, STRVEC_INIT};
	struct strbuf run = STRBUF_INIT;
	recipe_rename_run(r, run_key, &renaming, &run);
	free(r->run);
	r->run = strbuf_detach(&run);
	strvec_release(&renaming.names);
	mount_list(entry, &r->in);
	mount_list(entry, &r->out);
	mount_list(entry, &r->ref);
	mount_list(entry, &r->optional);
	if (!entry->subtree)
		return;
	char *name = xasprintf("%s/%s", entry->subtree, r->name);
	free(r->name);
	r->name = name;
	char *subtree = r->subtree ? xasprintf("%s/%s", entry->subtree, r->subtree) : xstrdup(entry->subtree);
	free(r->subtree);
	r->subtree = subtree;
}

/* Every `rename:` key must be a key of some included recipe (before mounting): anything else is a typo. */
static int check_renames(const struct recipe_set *set, const struct include_entry *entry,
			 const struct recipe_set *sub, struct cp_err *err)
{
	struct strvec keys = STRVEC_INIT;
	for (size_t r = 0; r < sub->count; r++) {
		const struct strvec *lists[] = {&sub->recipes[r].in, &sub->recipes[r].out, &sub->recipes[r].ref};
		for (size_t l = 0; l < ARRAY_SIZE(lists); l++)
			for (size_t k = 0; k < lists[l]->count; k++)
				strvec_push(&keys, lists[l]->items[k]);
	}
	int rc = 0;
	for (size_t i = 0; i < entry->from.count && !rc; i++) {
		if (strvec_find(&keys, entry->from.items[i]) >= 0)
			continue;
		const char *suggestion = recipe_suggest_name(entry->from.items[i], &keys);
		rc = entry_fail(set, entry->from_lines[i], err, "rename: no recipe of %s uses a key '%s'%s%s%s",
				sub->file, entry->from.items[i], suggestion ? " (did you mean '" : "",
				suggestion ? suggestion : "", suggestion ? "'?)" : "");
	}
	strvec_release(&keys);
	return rc;
}

/*
 * A mounted recipe must not take the name or a key of a recipe the set has
 * (one name, one key, one recipe), nor have `rename:` give two of its keys
 * one name.
 */
static int check_mounted(const struct recipe_set *set, const struct include_entry *entry, const struct recipe *r,
			 struct cp_err *err)
{
	struct strvec keys = STRVEC_INIT;
	const struct strvec *lists[] = {&r->in, &r->out, &r->ref};
	int rc = 0;
	for (size_t l = 0; l < ARRAY_SIZE(lists) && !rc; l++)
		for (size_t k = 0; k < lists[l]->count && !rc; k++) {
			if (strvec_find(&keys, lists[l]->items[k]) >= 0)
				rc = entry_fail(set, entry->rename_line ? entry->rename_line : entry->line, err,
						"rename: recipe '%s' of %s (line %d) would have two keys called '%s'",
						r->name, r->file, r->line, lists[l]->items[k]);
			strvec_push(&keys, lists[l]->items[k]);
		}
	strvec_release(&keys);
	for (size_t j = 0; j < set->count && !rc; j++) {
		const struct recipe *other = &set->recipes[j];
		if (!strcmp(other->name, r->name))
			return entry_fail(set, entry->line, err,
					  "recipe '%s' of %s (line %d) has the name of recipe '%s' (%s:%d): "
					  "mount the file in a sub-tree of its own (subtree:)",
					  r->name, r->file, r->line, other->name, other->file, other->line);
		for (size_t k = 0; k < r->out.count; k++)
			if (strvec_find(&other->out, r->out.items[k]) >= 0)
				return entry_fail(set, entry->line, err,
						  "recipe '%s' of %s (line %d) makes '%s', which recipe '%s' (%s:%d) "
						  "makes already; one key, one recipe (subtree: or rename: tells them apart)",
						  r->name, r->file, r->line, r->out.items[k], other->name, other->file,
						  other->line);
	}
	return rc;
}

/* Move the mounted recipes of `sub`, each checked against those already in `set`, and the files they name. */
static int adopt(struct recipe_set *set, const struct include_entry *entry, struct recipe_set *sub,
		 struct cp_err *err)
{
	set->recipes = xrealloc(set->recipes, (set->count + sub->count + 1) * sizeof(*set->recipes));
	for (size_t i = 0; i < sub->count; i++) {
		if (check_mounted(set, entry, &sub->recipes[i], err) < 0)
			return -1;
		struct recipe *r = &set->recipes[set->count++];
		*r = sub->recipes[i];
		memset(&sub->recipes[i], 0, sizeof(sub->recipes[i]));
		recipe_merge_resources(&r->resources, &set->resources);
		r->product = r->product || set->product;
	}
	/* The recipes' `file` points into these strings. */
	strvec_push_owned(&set->included, sub->file);
	sub->file = NULL;
	for (size_t i = 0; i < sub->included.count; i++)
		strvec_push_owned(&set->included, sub->included.items[i]);
	sub->included.count = 0;
	return 0;
}

static int include_one(struct recipe_set *set, const struct include_chain *self, struct include_entry *entry,
		       struct cp_err *err)
{
	struct strbuf joined = STRBUF_INIT, path = STRBUF_INIT;
	path_join(set->dir, entry->file, &joined);
	path_normalize(joined.buf, &path);
	strbuf_release(&joined);
	struct recipe_set *sub = NULL;
	int rc = -1;
	for (const struct include_chain *c = self; c; c = c->parent) {
		if (!same_file(c->path, path.buf))
			continue;
		struct strbuf chain = STRBUF_INIT;
		describe_chain(self, &chain);
		entry_fail(set, entry->line, err, "'%s' is already being read: a cycle %s -> %s", entry->file, chain.buf,
			   path.buf);
		strbuf_release(&chain);
		goto done;
	}
	struct stat info;
	if (stat(path.buf, &info) < 0 || access(path.buf, R_OK) < 0) {
		entry_fail(set, entry->line, err, "cannot read '%s' (%s): %s", entry->file, path.buf, strerror(errno));
		goto done;
	}
	/* A directory, a device or a pipe is no recipe file (and reading one could block). */
	if (!S_ISREG(info.st_mode)) {
		entry_fail(set, entry->line, err, "'%s' (%s) is not a file", entry->file, path.buf);
		goto done;
	}
	if (++*self->files_read > RECIPE_INCLUDE_MAX) {
		entry_fail(set, entry->line, err, "more than %d recipe files included in all: does a file include "
			   "others many times over?", RECIPE_INCLUDE_MAX);
		goto done;
	}
	struct include_chain next = {path.buf, self, entry->line, self->files_read};
	if (recipe_load_chained(path.buf, &next, &sub, err) < 0) {
		add_included_from(path.buf, self, entry->line, err);
		goto done;
	}
	if (check_renames(set, entry, sub, err) < 0)
		goto done;
	for (size_t i = 0; i < sub->count; i++)
		mount_recipe(entry, &sub->recipes[i]);
	if (adopt(set, entry, sub, err) < 0)
		goto done;
	rc = 0;
done:
	recipe_set_free(sub);
	strbuf_release(&path);
	return rc;
}

int recipe_include_all(struct recipe_set *set, const struct include_chain *self, struct cp_err *err)
{
	const struct node_line *list = recipe_lines_find(set->lines, "include");
	if (!list)
		return 0;
	/* A list's first node below it is its entry 0; a mapping's is one of its keys. */
	const struct node_line *first = list + 1 < set->lines->items + set->lines->count ? list + 1 : NULL;
	bool mapping = first && str_starts_with(first->path, "include.") && !isdigit((unsigned char)first->path[8]);
	if (list->scalar || mapping)
		return entry_fail(set, list->line, err,
				  "expected a list, e.g. include: [{file: anat.yaml, subtree: anat}]");
	for (size_t i = 0;; i++) {
		char path[48];
		snprintf(path, sizeof(path), "include.%zu", i);
		if (!recipe_lines_find(set->lines, path))
			return 0;
		struct include_entry entry;
		int rc = read_entry(set, i, &entry, err);
		if (!rc)
			rc = include_one(set, self, &entry, err);
		entry_release(&entry);
		if (rc)
			return -1;
	}
}

void recipe_explain_mounted_key(const struct recipe *r, const char *key, struct cp_err *err)
{
	size_t length = r->subtree ? strlen(r->subtree) : 0;
	if (!length || strncmp(key, r->subtree, length) || key[length] != '/')
		return;
	char *message = xasprintf("%s; %s writes '%s', mounted in sub-tree '%s' (include:)", err->message, r->file,
				  key + length + 1, r->subtree);
	free(err->message);
	err->message = message;
}

/* ---- placeholders, once the tree is read --------------------------------- */

struct scoping {
	const struct recipe *recipe;
	const struct strvec *placeholders; /* of the recipe's templates */
	struct strvec names;               /* what scoped_name returned */
};

/* SUBTREE/NAME, then with leading parts of SUBTREE dropped, when the recipe's templates have it. */
static const char *scoped_name(void *ctx, const char *name)
{
	struct scoping *scoping = ctx;
	const struct recipe *r = scoping->recipe;
	if (strvec_find(&r->in, name) >= 0 || strvec_find(&r->out, name) >= 0 || strvec_find(&r->ref, name) >= 0 ||
	    recipe_find_param(r, name))
		return NULL;
	for (const char *scope = r->subtree; scope; scope = strchr(scope, '/') ? strchr(scope, '/') + 1 : NULL) {
		char *candidate = xasprintf("%s/%s", scope, name);
		if (strvec_find(scoping->placeholders, candidate) >= 0) {
			strvec_push_owned(&scoping->names, candidate);
			return candidate;
		}
		free(candidate);
	}
	return NULL;
}

static void scope_list(struct scoping *scoping, struct strvec *list)
{
	for (size_t i = 0; i < list->count; i++) {
		const char *scoped = scoped_name(scoping, list->items[i]);
		if (!scoped)
			continue;
		free(list->items[i]);
		list->items[i] = xstrdup(scoped);
	}
}

void recipe_scope_placeholders(struct recipe_set *set, const struct recipe_tree_view *view)
{
	for (size_t i = 0; i < set->count; i++) {
		struct recipe *r = &set->recipes[i];
		if (!r->subtree)
			continue;
		struct strvec placeholders = STRVEC_INIT;
		const struct strvec *lists[] = {&r->in, &r->out, &r->ref};
		for (size_t l = 0; l < ARRAY_SIZE(lists); l++)
			for (size_t k = 0; k < lists[l]->count; k++)
				/* An unknown key adds nothing; recipe_check reports it. */
				(void)view->placeholders(view->ctx, lists[l]->items[k], &placeholders, &placeholders);
		struct scoping scoping = {r, &placeholders, STRVEC_INIT};
		scope_list(&scoping, &r->batch);
		scope_list(&scoping, &r->vars);
		for (size_t v = 0; v < r->value_count; v++) {
			const char *scoped = scoped_name(&scoping, r->values[v].placeholder);
			if (scoped) {
				free(r->values[v].placeholder);
				r->values[v].placeholder = xstrdup(scoped);
			}
		}
		struct strbuf run = STRBUF_INIT;
		recipe_rename_run(r, scoped_name, &scoping, &run);
		free(r->run);
		r->run = strbuf_detach(&run);
		strvec_release(&scoping.names);
		strvec_release(&placeholders);
	}
}
