/*
 * recipe: load and validate the recipe file (see include/cpipe/recipe.h and
 * man/cpipe-recipes.5).
 *
 * This file builds the recipe set from what recipe_yaml.c read (the two
 * passes over the text: libyaml's events with every node's line, then
 * libcyaml's schema), validates it with the same record of lines, so every
 * message is "file:line: recipe 'x': field: ...", and answers lookups. The
 * `run` string is in recipe_run.c, the checks against the tree in
 * recipe_check.c; src/recipe_int.h is what they share.
 */
#include "recipe_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cyaml/cyaml.h>

/* A recipe file larger than this is surely a mistake (a data file named by -f). */
#define RECIPE_FILE_MAX (16u << 20)

/* ---- building and validating the set ------------------------------------- */

static void copy_list(struct strvec *out, char **items, unsigned count)
{
	for (unsigned i = 0; i < count; i++)
		strvec_push(out, items[i]);
}

static void copy_resources(struct recipe_resources *out, const struct raw_resources *raw)
{
	memset(out, 0, sizeof(*out));
	if (!raw)
		return;
	out->minutes = raw->minutes;
	out->ram_gb = raw->ram_gb;
	out->threads = raw->threads;
	out->queue = raw->queue ? xstrdup(raw->queue) : NULL;
	out->coprocessor = raw->coprocessor ? xstrdup(raw->coprocessor) : NULL;
	out->coprocessor_count = raw->coprocessor_count;
	out->pe = raw->pe ? xstrdup(raw->pe) : NULL;
	copy_list(&out->extra, raw->extra, raw->extra_count);
	copy_list(&out->backend_extra[RECIPE_BACKEND_SLURM], raw->extra_slurm, raw->extra_slurm_count);
	copy_list(&out->backend_extra[RECIPE_BACKEND_SGE], raw->extra_sge, raw->extra_sge_count);
	copy_list(&out->backend_extra[RECIPE_BACKEND_FSL_SUB], raw->extra_fsl_sub, raw->extra_fsl_sub_count);
}

static void merge_list(struct strvec *out, const struct strvec *defaults)
{
	if (!out->count)
		for (size_t i = 0; i < defaults->count; i++)
			strvec_push(out, defaults->items[i]);
}

void recipe_merge_resources(struct recipe_resources *out, const struct recipe_resources *defaults)
{
	if (!out->minutes)
		out->minutes = defaults->minutes;
	if (!out->ram_gb)
		out->ram_gb = defaults->ram_gb;
	if (!out->threads)
		out->threads = defaults->threads;
	if (!out->queue && defaults->queue)
		out->queue = xstrdup(defaults->queue);
	if (!out->coprocessor && defaults->coprocessor)
		out->coprocessor = xstrdup(defaults->coprocessor);
	if (!out->coprocessor_count)
		out->coprocessor_count = defaults->coprocessor_count;
	if (!out->pe && defaults->pe)
		out->pe = xstrdup(defaults->pe);
	merge_list(&out->extra, &defaults->extra);
	for (size_t b = 0; b < RECIPE_BACKEND_COUNT; b++)
		merge_list(&out->backend_extra[b], &defaults->backend_extra[b]);
}

/* The nodes under `prefix.` with the prefix taken off (a recipe's own map). */
static struct recipe_lines *lines_under(const struct recipe_lines *all, const char *prefix)
{
	struct recipe_lines *lines = xcalloc(1, sizeof(*lines));
	size_t length = strlen(prefix);
	for (size_t i = 0; i < all->count; i++) {
		const struct node_line *node = &all->items[i];
		if (strncmp(node->path, prefix, length) || node->path[length] != '.')
			continue;
		ALLOC_GROW(lines->items, lines->count + 1, lines->cap);
		struct node_line *copy = &lines->items[lines->count++];
		*copy = *node;
		copy->path = xstrdup(node->path + length + 1);
		copy->scalar = node->scalar ? xstrdup(node->scalar) : NULL;
	}
	return lines;
}

/* Top-level nodes: everything not inside one recipe. */
static struct recipe_lines *lines_top(const struct recipe_lines *all)
{
	struct recipe_lines *lines = xcalloc(1, sizeof(*lines));
	for (size_t i = 0; i < all->count; i++) {
		const struct node_line *node = &all->items[i];
		if (str_starts_with(node->path, "recipes."))
			continue;
		ALLOC_GROW(lines->items, lines->count + 1, lines->cap);
		struct node_line *copy = &lines->items[lines->count++];
		*copy = *node;
		copy->path = xstrdup(node->path);
		copy->scalar = node->scalar ? xstrdup(node->scalar) : NULL;
	}
	return lines;
}

int recipe_fail(struct cp_err *err, const struct recipe *r, int line, const char *field, const char *fmt, ...)
{
	struct strbuf message = STRBUF_INIT;
	va_list args;
	strbuf_addf(&message, "recipe '%s': ", r->name ? r->name : "?");
	if (field)
		strbuf_addf(&message, "%s: ", field);
	va_start(args, fmt);
	strbuf_vaddf(&message, fmt, args);
	va_end(args);
	cp_err_set(err, r->file, line ? line : r->line, "%s", message.buf);
	strbuf_release(&message);
	return -1;
}

static bool valid_recipe_name(const char *name)
{
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
			return false;
	return *name && *name != '.' && *name != '-';
}

/* No empty names, no name twice. */
static int check_list(const struct recipe *r, const char *field, const struct strvec *list, struct cp_err *err)
{
	for (size_t i = 0; i < list->count; i++) {
		if (!*list->items[i])
			return recipe_fail(err, r, recipe_item_line(r, field, i), field, "empty name in the list");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(list->items[i], list->items[j]))
				return recipe_fail(err, r, recipe_item_line(r, field, i), field,
						   "'%s' is listed twice", list->items[i]);
	}
	return 0;
}

/* Each name of `list` must not be in `other`. */
static int check_disjoint(const struct recipe *r, const char *field, const struct strvec *list,
			  const char *other_field, const struct strvec *other, const char *why, struct cp_err *err)
{
	for (size_t i = 0; i < list->count; i++)
		if (strvec_find(other, list->items[i]) >= 0)
			return recipe_fail(err, r, recipe_item_line(r, field, i), field, "'%s' is also in '%s'%s",
					   list->items[i], other_field, why);
	return 0;
}

static int check_resources(const struct recipe_resources *res, const struct recipe_lines *lines,
			   const char *file, const char *prefix, struct cp_err *err)
{
	struct {
		const char *name;
		bool ok;
		bool integer;
	} numbers[] = {
		{"minutes", res->minutes > 0, true},
		{"ram_gb", res->ram_gb > 0 && isfinite(res->ram_gb), false},
		{"threads", res->threads > 0, true},
		{"coprocessor_count", res->coprocessor_count > 0, true},
	};
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		char *path = xasprintf("resources.%s", numbers[i].name);
		const struct node_line *node = recipe_lines_find(lines, path);
		free(path);
		/* libcyaml reads "16G" as 16: insist on the whole text being the number */
		if (node && node->scalar && !numbers[i].integer) {
			char *end;
			(void)strtod(node->scalar, &end);
			if (end == node->scalar || *end) {
				cp_err_set(err, file, node->line, "%sresources.%s: expected a number, got '%s'", prefix,
					   numbers[i].name, node->scalar);
				return -1;
			}
		}
		if (node && !numbers[i].ok) {
			cp_err_set(err, file, node->line, "%sresources.%s: must be a positive number, not '%s'", prefix,
				   numbers[i].name, node->scalar ? node->scalar : "");
			return -1;
		}
	}
	const char *strings[] = {"queue", "coprocessor", "pe"};
	const char *values[] = {res->queue, res->coprocessor, res->pe};
	for (size_t i = 0; i < 3; i++) {
		char *path = xasprintf("resources.%s", strings[i]);
		const struct node_line *node = recipe_lines_find(lines, path);
		free(path);
		if (node && (!values[i] || !*values[i])) {
			cp_err_set(err, file, node->line, "%sresources.%s: must not be empty", prefix, strings[i]);
			return -1;
		}
	}
	/* fsl_sub takes "-s NAME,THREADS": a comma or a blank in the name would change its meaning. */
	if (res->pe && res->pe[strcspn(res->pe, ", \t\n")]) {
		cp_err_set(err, file, recipe_lines_line(lines, "resources.pe"),
			   "%sresources.pe: '%s' is not a parallel environment name (no commas or blanks)", prefix, res->pe);
		return -1;
	}
	const char *lists[] = {"extra", "extra_slurm", "extra_sge", "extra_fsl_sub"};
	const struct strvec *items[] = {&res->extra, &res->backend_extra[RECIPE_BACKEND_SLURM],
					&res->backend_extra[RECIPE_BACKEND_SGE], &res->backend_extra[RECIPE_BACKEND_FSL_SUB]};
	for (size_t l = 0; l < 4; l++) {
		for (size_t i = 0; i < items[l]->count; i++) {
			if (*items[l]->items[i])
				continue;
			char *path = xasprintf("resources.%s.%zu", lists[l], i);
			cp_err_set(err, file, recipe_lines_line(lines, path), "%sresources.%s: empty argument", prefix, lists[l]);
			free(path);
			return -1;
		}
	}
	return 0;
}

/* libcyaml reads any word as a boolean: `product: maybe` must not quietly mean something. */
static int check_boolean(const struct recipe_lines *lines, const char *file, const char *where, const char *key,
			 struct cp_err *err)
{
	const struct node_line *node = recipe_lines_find(lines, key);
	static const char *const words[] = {"true", "false", "yes", "no", "on", "off"};
	for (size_t i = 0; node && node->scalar && i < sizeof(words) / sizeof(*words); i++)
		if (!strcasecmp(node->scalar, words[i]))
			return 0;
	if (!node)
		return 0;
	cp_err_set(err, file, node->line, "%s%s: must be true or false", where, key);
	return -1;
}

static int check_recipe(const struct recipe_set *set, size_t index, struct cp_err *err)
{
	const struct recipe *r = &set->recipes[index];
	if (!r->name) {
		cp_err_set(err, r->file, r->line, "recipe #%zu: missing 'name'", index + 1);
		return -1;
	}
	char *where = xasprintf("recipe '%s': ", r->name);
	int bad = check_boolean(r->lines, r->file, where, "product", err) ||
		  check_boolean(r->lines, r->file, where, "cutoff", err);
	free(where);
	if (bad)
		return -1;
	if (!valid_recipe_name(r->name))
		return recipe_fail(err, r, recipe_field_line(r, "name"), "name",
				   "'%s' is not a valid recipe name: use letters, digits, '_', '-' and '.', "
				   "not starting with '.' or '-'",
				   r->name);
	for (size_t j = 0; j < index; j++)
		if (!strcmp(set->recipes[j].name, r->name))
			return recipe_fail(err, r, recipe_field_line(r, "name"), "name",
					   "a recipe of this name is already defined on line %d", set->recipes[j].line);
	if (!r->out.count)
		return recipe_fail(err, r, recipe_field_line(r, "out"), NULL,
				   "missing 'out': a recipe must make at least one template key");
	if (!r->run || !*r->run)
		return recipe_fail(err, r, recipe_field_line(r, "run"), NULL, "missing 'run': the command to run");
	/* The loader reads an empty or null string as none: a batch_label line without a value is a mistake. */
	if ((!r->batch_label || !*r->batch_label) && recipe_lines_line(r->lines, "batch_label"))
		return recipe_fail(err, r, recipe_field_line(r, "batch_label"), "batch_label",
				   "an empty label: name the batch, or leave batch_label out");

	static const char *const lists[] = {"in", "out", "ref", "optional", "batch", "vars"};
	const struct strvec *vectors[] = {&r->in, &r->out, &r->ref, &r->optional, &r->batch, &r->vars};
	for (size_t i = 0; i < 6; i++)
		if (check_list(r, lists[i], vectors[i], err))
			return -1;
	if (check_disjoint(r, "out", &r->out, "in", &r->in, ": a recipe cannot read what it makes", err) ||
	    check_disjoint(r, "ref", &r->ref, "in", &r->in, ": list it once", err) ||
	    check_disjoint(r, "ref", &r->ref, "out", &r->out, ": a recipe cannot read what it makes", err) ||
	    check_disjoint(r, "vars", &r->vars, "batch", &r->batch,
			   ": a placeholder is either iterated over (vars) or not (batch)", err))
		return -1;
	for (size_t i = 0; i < r->optional.count; i++)
		if (strvec_find(&r->in, r->optional.items[i]) < 0 && strvec_find(&r->out, r->optional.items[i]) < 0 &&
		    !recipe_is_key_pattern(r->optional.items[i]))
			return recipe_fail(err, r, recipe_item_line(r, "optional", i), "optional",
					   "'%s' is not in 'in' or 'out' of this recipe", r->optional.items[i]);
	const char *placeholder_lists[] = {"batch", "vars"};
	const struct strvec *placeholder_vectors[] = {&r->batch, &r->vars};
	for (size_t l = 0; l < 2; l++) {
		const struct strvec *names = placeholder_vectors[l];
		for (size_t i = 0; i < names->count; i++)
			if (strvec_find(&r->in, names->items[i]) >= 0 || strvec_find(&r->out, names->items[i]) >= 0 ||
			    strvec_find(&r->ref, names->items[i]) >= 0)
				return recipe_fail(err, r, recipe_item_line(r, placeholder_lists[l], i),
						   placeholder_lists[l],
						   "'%s' is a template key of this recipe; '%s' takes placeholder names",
						   names->items[i], placeholder_lists[l]);
	}
	for (size_t i = 0; i < r->out.count; i++) {
		for (size_t j = 0; j < index; j++) {
			const struct recipe *other = &set->recipes[j];
			if (strvec_find(&other->out, r->out.items[i]) >= 0)
				return recipe_fail(err, r, recipe_item_line(r, "out", i), "out",
						   "'%s' is already made by recipe '%s' (line %d); one key, one recipe",
						   r->out.items[i], other->name, other->line);
		}
	}
	if (recipe_read_params(&set->recipes[index], err))
		return -1;
	char *prefix = xasprintf("recipe '%s': ", r->name);
	int rc = check_resources(&r->resources, r->lines, r->file, prefix, err);
	free(prefix);
	if (rc)
		return -1;
	return recipe_check_run_syntax(r, err);
}

static void raw_to_set(const struct raw_file *raw, const struct recipe_lines *all, struct recipe_set *set)
{
	struct strbuf joined = STRBUF_INIT, normal = STRBUF_INIT;
	if (raw->tree) {
		path_join(set->dir, raw->tree, &joined);
		path_normalize(joined.buf, &normal);
		set->tree = strbuf_detach(&normal);
		strbuf_reset(&joined);
	}
	path_join(set->dir, raw->data ? raw->data : ".", &joined);
	path_normalize(joined.buf, &normal);
	set->data = strbuf_detach(&normal);
	strbuf_release(&joined);
	copy_list(&set->targets, raw->targets, raw->targets_count);
	copy_resources(&set->resources, raw->resources);
	set->product = raw->product;
	set->lines = lines_top(all);

	set->count = raw->recipes_count;
	set->recipes = xcalloc(set->count ? set->count : 1, sizeof(*set->recipes));
	for (size_t i = 0; i < set->count; i++) {
		const struct raw_recipe *in = &raw->recipes[i];
		struct recipe *r = &set->recipes[i];
		char prefix[48];
		snprintf(prefix, sizeof(prefix), "recipes.%zu", i);
		r->name = in->name ? xstrdup(in->name) : NULL;
		copy_list(&r->in, in->in, in->in_count);
		copy_list(&r->out, in->out, in->out_count);
		copy_list(&r->ref, in->ref, in->ref_count);
		copy_list(&r->optional, in->optional, in->optional_count);
		copy_list(&r->batch, in->batch, in->batch_count);
		copy_list(&r->vars, in->vars, in->vars_count);
		r->run = in->run ? xstrdup(in->run) : NULL;
		r->product = in->product || raw->product;
		copy_resources(&r->resources, in->resources);
		r->batch_label = in->batch_label ? xstrdup(in->batch_label) : NULL;
		r->file = set->file;
		r->line = recipe_lines_line(all, prefix);
		r->lines = lines_under(all, prefix);
		r->cutoff = in->cutoff || !recipe_lines_find(r->lines, "cutoff");
	}
}

/* Whether `path` is "PARENT.N" for a number N (an entry of a sequence). */
static bool is_entry_of(const char *path, const char *parent)
{
	size_t length = strlen(parent);
	if (strncmp(path, parent, length) || path[length] != '.' || !path[length + 1])
		return false;
	return strspn(path + length + 1, "0123456789") == strlen(path + length + 1);
}

/* `link: [[a, b], ...]`: each group a list of at least two placeholder names. */
static int read_links(struct recipe_set *set, struct cp_err *err)
{
	const struct node_line *link = recipe_lines_find(set->lines, "link");
	if (!link)
		return 0;
	struct strbuf prefix = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < set->lines->count && !rc; i++) {
		const struct node_line *node = &set->lines->items[i];
		if (!str_starts_with(node->path, "link.") && !(node == link && node->scalar))
			continue;
		bool group = is_entry_of(node->path, "link") && !node->scalar;
		/* Nodes come in document order: a name belongs to the group read last. */
		strbuf_reset(&prefix);
		strbuf_addf(&prefix, "link.%zu", set->link_count ? set->link_count - 1 : 0);
		bool name = set->link_count && is_entry_of(node->path, prefix.buf) && node->scalar && node->plain &&
			    *node->scalar;
		if (group) {
			set->links = xrealloc(set->links, (set->link_count + 1) * sizeof(*set->links));
			set->links[set->link_count++] = (struct strvec)STRVEC_INIT;
		} else if (name) {
			strvec_push(&set->links[set->link_count - 1], node->scalar);
		} else {
			rc = -1;
		}
		if (rc)
			cp_err_set(err, set->file, node->line,
				   "link: must be a list of lists of placeholder names, e.g. link: [[subject, session]]");
	}
	for (size_t g = 0; !rc && g < set->link_count; g++) {
		if (set->links[g].count >= 2)
			continue;
		strbuf_reset(&prefix);
		strbuf_addf(&prefix, "link.%zu", g);
		cp_err_set(err, set->file, recipe_lines_line(set->lines, prefix.buf),
			   "link: a group links at least two placeholders");
		rc = -1;
	}
	if (!rc && !set->link_count) {
		cp_err_set(err, set->file, link->line, "link: an empty list; remove it or give [[a, b], ...]");
		rc = -1;
	}
	strbuf_release(&prefix);
	return rc;
}

static int check_set(struct recipe_set *set, struct cp_err *err)
{
	if (check_resources(&set->resources, set->lines, set->file, "", err) || read_links(set, err) ||
	    check_boolean(set->lines, set->file, "", "product", err))
		return -1;
	for (size_t i = 0; i < set->targets.count; i++) {
		char path[48];
		snprintf(path, sizeof(path), "default.%zu", i);
		if (!*set->targets.items[i]) {
			cp_err_set(err, set->file, recipe_lines_line(set->lines, path), "default: empty target name");
			return -1;
		}
	}
	for (size_t i = 0; i < set->count; i++)
		if (check_recipe(set, i, err))
			return -1;
	/* Checked before merging, so that an error points at the field actually written. */
	for (size_t i = 0; i < set->count; i++)
		recipe_merge_resources(&set->recipes[i].resources, &set->resources);
	return 0;
}

static char *directory_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* Load `text`, read from `name` and included as `self` says, then the files it includes. */
static int load_text(const char *text, size_t length, const char *name, const struct include_chain *self,
		     struct recipe_set **out, struct cp_err *err)
{
	struct recipe_lines *all = xcalloc(1, sizeof(*all));
	struct raw_file *raw = NULL;
	struct strbuf log = STRBUF_INIT;
	cyaml_config_t config;
	recipe_cyaml_config_init(&config, &log);
	int rc = -1;

	*out = NULL;
	if (recipe_scan_yaml(text, length, name, all, err))
		goto done;
	cyaml_err_t code = cyaml_load_data((const uint8_t *)text, length, &config, &recipe_file_schema, (cyaml_data_t **)&raw,
					   NULL);
	if (code != CYAML_OK) {
		recipe_cyaml_error(log.buf, code, name, all, err);
		goto done;
	}
	struct recipe_set *set = xcalloc(1, sizeof(*set));
	set->file = xstrdup(name);
	set->dir = directory_of(name);
	raw_to_set(raw, all, set);
	if (check_set(set, err) || recipe_include_all(set, self, err)) {
		recipe_set_free(set);
		goto done;
	}
	*out = set;
	rc = 0;
done:
	if (raw)
		cyaml_free(&config, &recipe_file_schema, raw, 0);
	strbuf_release(&log);
	recipe_lines_free(all);
	return rc;
}

int recipe_load_string(const char *text, size_t length, const char *name, struct recipe_set **out,
		       struct cp_err *err)
{
	size_t files_read = 0;
	struct include_chain self = {name, NULL, 0, &files_read};
	return load_text(text, length, name, &self, out, err);
}

int recipe_load_chained(const char *path, const struct include_chain *self, struct recipe_set **out,
			struct cp_err *err)
{
	struct strbuf text = STRBUF_INIT;
	char chunk[8192];
	size_t got;
	*out = NULL;
	FILE *file = fopen(path, "rb");
	if (!file) {
		cp_err_set(err, path, 0, "cannot open recipe file: %s", strerror(errno));
		return -1;
	}
	while ((got = fread(chunk, 1, sizeof(chunk), file)) > 0) {
		if (text.len + got > RECIPE_FILE_MAX) {
			fclose(file);
			strbuf_release(&text);
			cp_err_set(err, path, 0, "recipe file is larger than %u MiB: is it the right file?",
				   RECIPE_FILE_MAX >> 20);
			return -1;
		}
		strbuf_add(&text, chunk, got);
	}
	if (ferror(file)) {
		int saved = errno;
		fclose(file);
		strbuf_release(&text);
		cp_err_set(err, path, 0, "cannot read recipe file: %s", strerror(saved));
		return -1;
	}
	fclose(file);
	int rc = load_text(text.buf, text.len, path, self, out, err);
	strbuf_release(&text);
	return rc;
}

int recipe_load(const char *path, struct recipe_set **out, struct cp_err *err)
{
	size_t files_read = 0;
	struct include_chain self = {path, NULL, 0, &files_read};
	return recipe_load_chained(path, &self, out, err);
}

void recipe_resources_release(struct recipe_resources *resources)
{
	free(resources->queue);
	free(resources->coprocessor);
	free(resources->pe);
	strvec_release(&resources->extra);
	for (size_t b = 0; b < RECIPE_BACKEND_COUNT; b++)
		strvec_release(&resources->backend_extra[b]);
	memset(resources, 0, sizeof(*resources));
}

static void recipe_release(struct recipe *r)
{
	free(r->name);
	strvec_release(&r->in);
	strvec_release(&r->out);
	strvec_release(&r->ref);
	strvec_release(&r->optional);
	strvec_release(&r->batch);
	strvec_release(&r->vars);
	free(r->run);
	free(r->batch_label);
	recipe_resources_release(&r->resources);
	recipe_lines_free(r->lines);
	free(r->subtree);
	recipe_params_release(r);
}

void recipe_set_free(struct recipe_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->count; i++)
		recipe_release(&set->recipes[i]);
	free(set->recipes);
	free(set->file);
	free(set->dir);
	free(set->tree);
	free(set->data);
	strvec_release(&set->targets);
	for (size_t g = 0; g < set->link_count; g++)
		strvec_release(&set->links[g]);
	free(set->links);
	recipe_resources_release(&set->resources);
	recipe_lines_free(set->lines);
	strvec_release(&set->included);
	free(set);
}

/* ---- lookups --------------------------------------------------------------- */

long recipe_find(const struct recipe_set *set, const char *name)
{
	for (size_t i = 0; i < set->count; i++)
		if (set->recipes[i].name && !strcmp(set->recipes[i].name, name))
			return (long)i;
	return -1;
}

long recipe_find_producer(const struct recipe_set *set, const char *key)
{
	for (size_t i = 0; i < set->count; i++)
		if (strvec_find(&set->recipes[i].out, key) >= 0)
			return (long)i;
	return -1;
}

bool recipe_is_optional(const struct recipe *r, const char *key)
{
	return strvec_find(&r->optional, key) >= 0;
}

int recipe_field_line(const struct recipe *r, const char *field)
{
	int line = recipe_lines_line(r->lines, field);
	return line ? line : r->line;
}

int recipe_item_line(const struct recipe *r, const char *field, size_t index)
{
	char *path = xasprintf("%s.%zu", field, index);
	int line = recipe_field_line(r, path);
	free(path);
	return line;
}

int recipe_set_field_line(const struct recipe_set *set, const char *field)
{
	int line = recipe_lines_line(set->lines, field);
	return line ? line : 1;
}

/* ---- identity --------------------------------------------------------------- */

static void definition_string(struct strbuf *out, const char *label, const char *value)
{
	value = value ? value : "";
	strbuf_addf(out, "%s %zu:%s\n", label, strlen(value), value);
}

static void definition_list(struct strbuf *out, const char *label, const struct strvec *list)
{
	strbuf_addf(out, "%s %zu\n", label, list->count);
	for (size_t i = 0; i < list->count; i++)
		strbuf_addf(out, "  %zu:%s\n", strlen(list->items[i]), list->items[i]);
}

void recipe_definition_text(const struct recipe *r, struct strbuf *out)
{
	strbuf_adds(out, "cpipe-recipe 1\n");
	definition_string(out, "name", r->name);
	definition_list(out, "in", &r->in);
	definition_list(out, "out", &r->out);
	definition_list(out, "ref", &r->ref);
	definition_list(out, "optional", &r->optional);
	definition_list(out, "batch", &r->batch);
	definition_list(out, "vars", &r->vars);
	definition_string(out, "run", r->run);
	recipe_params_definition(r, out);
}
