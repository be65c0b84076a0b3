/*
 * recipe: load and validate the recipe file (see include/cpipe/recipe.h and
 * man/cpipe-recipes.5).
 *
 * Loading takes two passes over the text. The first uses libyaml's event API
 * to catch syntax errors and duplicate keys and to record, for every node, its
 * path ("recipes.2.resources.minutes") and line. The second is libcyaml with
 * the schema below; its log output (an error and a backtrace of fields and
 * sequence entries) is captured and turned back into a path, which the first
 * pass's record turns into a line. Validation of the loaded values then uses
 * the same record, so every message is "file:line: recipe 'x': field: ...".
 */
#include "cpipe/recipe.h"

#include "recipe_shell.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

/* A recipe file larger than this is surely a mistake (a data file named by -f). */
#define RECIPE_FILE_MAX (16u << 20)

/* ---- the node record of the first pass ---------------------------------- */

struct node_line {
	char *path;      /* "recipes.0.in.1"; "" for the root */
	int line;        /* the key's line for a mapping value, the node's own line otherwise */
	int value_line;  /* where the value itself starts */
	int value_column;
	char *scalar;    /* the text of a scalar node, else NULL */
	bool literal;    /* a literal block scalar (`|`): its lines are the text's lines */
	bool plain;      /* a plain (unquoted) scalar */
};

struct recipe_lines {
	struct node_line *items;
	size_t count;
	size_t cap;
};

static void lines_push(struct recipe_lines *lines, const char *path, int line, const yaml_event_t *event)
{
	ALLOC_GROW(lines->items, lines->count + 1, lines->cap);
	struct node_line *node = &lines->items[lines->count++];
	memset(node, 0, sizeof(*node));
	node->path = xstrdup(path);
	node->line = line;
	node->value_line = (int)event->start_mark.line + 1;
	node->value_column = (int)event->start_mark.column + 1;
	if (event->type == YAML_SCALAR_EVENT) {
		node->scalar = xstrndup((const char *)event->data.scalar.value, event->data.scalar.length);
		node->literal = event->data.scalar.style == YAML_LITERAL_SCALAR_STYLE;
		node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	}
}

static void lines_free(struct recipe_lines *lines)
{
	if (!lines)
		return;
	for (size_t i = 0; i < lines->count; i++) {
		free(lines->items[i].path);
		free(lines->items[i].scalar);
	}
	free(lines->items);
	free(lines);
}

static const struct node_line *lines_find(const struct recipe_lines *lines, const char *path)
{
	if (!lines)
		return NULL;
	for (size_t i = 0; i < lines->count; i++)
		if (!strcmp(lines->items[i].path, path))
			return &lines->items[i];
	return NULL;
}

/* Line of `path`, else of the nearest enclosing path that has one, else 0. */
static int lines_line(const struct recipe_lines *lines, const char *path)
{
	char *copy = xstrdup(path);
	int line = 0;
	for (;;) {
		const struct node_line *node = lines_find(lines, copy);
		if (node) {
			line = node->line;
			break;
		}
		char *dot = strrchr(copy, '.');
		if (!dot)
			break;
		*dot = '\0';
	}
	free(copy);
	return line;
}

static void describe_path(const struct recipe_lines *lines, const char *path, struct strbuf *out);

/* ---- first pass: libyaml events ------------------------------------------ */

struct scan_frame {
	bool mapping;
	char *path;
	size_t index;       /* next sequence entry */
	bool have_key;      /* a mapping key was read, its value comes next */
	char *key;
	int key_line;
	struct strvec keys; /* keys seen, for duplicates */
};

static char *child_path(const char *parent, const char *child)
{
	return *parent ? xasprintf("%s.%s", parent, child) : xstrdup(child);
}

static const char *event_kind(const yaml_event_t *event)
{
	switch (event->type) {
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_ALIAS_EVENT:
		return "an alias";
	default:
		return "a value";
	}
}

/* Whether 0-based line `line` of `text` reads "run: {...", which YAML takes for a mapping. */
static bool run_starts_with_brace(const char *text, size_t length, size_t line)
{
	size_t pos = 0;
	for (size_t current = 0; current < line && pos < length; pos++)
		if (text[pos] == '\n')
			current++;
	while (pos < length && (text[pos] == ' ' || text[pos] == '-'))
		pos++;
	if (length - pos < 4 || strncmp(text + pos, "run:", 4))
		return false;
	for (pos += 4; pos < length && text[pos] == ' ';)
		pos++;
	return pos < length && text[pos] == '{';
}

/*
 * Parse `text` with libyaml and record every node. Errors: YAML syntax, a key
 * given twice in one mapping, a key that is not a plain value, more than one
 * document, and an empty file or a top level that is not a mapping.
 */
static int scan_yaml(const char *text, size_t length, const char *file, struct recipe_lines *lines,
		     struct cp_err *err)
{
	yaml_parser_t parser;
	yaml_event_t event;
	struct scan_frame *stack = NULL;
	size_t depth = 0, cap = 0;
	int documents = 0, rc = 0;
	bool root_seen = false;

	if (!yaml_parser_initialize(&parser))
		BUG("libyaml could not initialise a parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, length);
	for (bool done = false; !done && rc == 0;) {
		if (!yaml_parser_parse(&parser, &event)) {
			const yaml_mark_t *mark = parser.problem ? &parser.problem_mark : &parser.mark;
			cp_err_set_at(err, file, (int)mark->line + 1, (int)mark->column + 1, "YAML syntax error: %s%s%s%s",
				      parser.problem ? parser.problem : "unknown problem", parser.context ? " " : "",
				      parser.context ? parser.context : "",
				      run_starts_with_brace(text, length, mark->line)
					      ? " (a command that starts with '{' must be quoted: run: \"{x} ...\")"
					      : "");
			rc = -1;
			break;
		}
		int line = (int)event.start_mark.line + 1;
		switch (event.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++documents > 1) {
				cp_err_set(err, file, line, "a recipe file holds one YAML document; remove the second '---'");
				rc = -1;
			}
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			assert(depth > 0);
			depth--;
			free(stack[depth].path);
			free(stack[depth].key);
			strvec_release(&stack[depth].keys);
			if (depth > 0 && stack[depth - 1].mapping)
				stack[depth - 1].have_key = false;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT: {
			char *path;
			int node_line = line;
			if (depth == 0) {
				if (event.type != YAML_MAPPING_START_EVENT) {
					cp_err_set(err, file, line,
						   "the recipe file must be a mapping with 'recipes:' (and 'tree:', ...), "
						   "not %s",
						   event_kind(&event));
					rc = -1;
					break;
				}
				root_seen = true;
				path = xstrdup("");
			} else {
				struct scan_frame *top = &stack[depth - 1];
				if (top->mapping && !top->have_key) {
					if (event.type != YAML_SCALAR_EVENT) {
						cp_err_set(err, file, line, "%s%sa field name must be a plain word, not %s",
							   top->path, *top->path ? ": " : "", event_kind(&event));
						rc = -1;
						break;
					}
					const char *key = (const char *)event.data.scalar.value;
					if (strvec_find(&top->keys, key) >= 0) {
						char *first = child_path(top->path, key);
						struct strbuf where = STRBUF_INIT;
						describe_path(lines, first, &where);
						cp_err_set(err, file, line, "%s: given twice (first on line %d)", where.buf,
							   lines_line(lines, first));
						strbuf_release(&where);
						free(first);
						rc = -1;
						break;
					}
					strvec_push(&top->keys, key);
					free(top->key);
					top->key = xstrdup(key);
					top->key_line = line;
					top->have_key = true;
					break;
				}
				if (top->mapping) {
					path = child_path(top->path, top->key);
					node_line = top->key_line;
					top->have_key = false;
				} else {
					char index[32];
					snprintf(index, sizeof(index), "%zu", top->index++);
					path = child_path(top->path, index);
				}
			}
			lines_push(lines, path, node_line, &event);
			if (event.type == YAML_MAPPING_START_EVENT || event.type == YAML_SEQUENCE_START_EVENT) {
				ALLOC_GROW(stack, depth + 1, cap);
				struct scan_frame *frame = &stack[depth++];
				memset(frame, 0, sizeof(*frame));
				frame->mapping = event.type == YAML_MAPPING_START_EVENT;
				frame->path = path;
			} else {
				free(path);
			}
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&event);
	}
	if (rc == 0 && !root_seen) {
		cp_err_set(err, file, 1, "the recipe file is empty: it needs at least 'recipes:'");
		rc = -1;
	}
	while (depth > 0) {
		depth--;
		free(stack[depth].path);
		free(stack[depth].key);
		strvec_release(&stack[depth].keys);
	}
	free(stack);
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- second pass: the libcyaml schema ------------------------------------ */

struct raw_resources {
	long minutes;
	double ram_gb;
	long threads;
	char *queue;
	char *coprocessor;
	long coprocessor_count;
	char *pe;
	char **extra;
	unsigned extra_count;
	/* In enum recipe_backend order. */
	char **extra_slurm;
	unsigned extra_slurm_count;
	char **extra_sge;
	unsigned extra_sge_count;
	char **extra_fsl_sub;
	unsigned extra_fsl_sub_count;
};

struct raw_recipe {
	char *name;
	char **in;
	unsigned in_count;
	char **out;
	unsigned out_count;
	char **ref;
	unsigned ref_count;
	char **optional;
	unsigned optional_count;
	char **batch;
	unsigned batch_count;
	char **vars;
	unsigned vars_count;
	char *run;
	bool product;
	struct raw_resources *resources;
};

struct raw_file {
	char *tree;
	char *data;
	char **targets;
	unsigned targets_count;
	struct raw_resources *resources;
	bool product;
	struct raw_recipe *recipes;
	unsigned recipes_count;
};

/*
 * Every field is optional for libcyaml: required ones are checked afterwards,
 * where the message can name the recipe and its line.
 */
#define OPT CYAML_FLAG_OPTIONAL
#define STRING_FIELD(key, type, member) \
	CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER_NULL_STR | OPT, type, member, 0, CYAML_UNLIMITED)
#define LIST_FIELD(key, type, member) \
	CYAML_FIELD_SEQUENCE(key, CYAML_FLAG_POINTER_NULL | OPT, type, member, &string_schema, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t string_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t resource_fields[] = {
	CYAML_FIELD_INT("minutes", OPT, struct raw_resources, minutes),
	CYAML_FIELD_FLOAT("ram_gb", OPT, struct raw_resources, ram_gb),
	CYAML_FIELD_INT("threads", OPT, struct raw_resources, threads),
	STRING_FIELD("queue", struct raw_resources, queue),
	STRING_FIELD("coprocessor", struct raw_resources, coprocessor),
	CYAML_FIELD_INT("coprocessor_count", OPT, struct raw_resources, coprocessor_count),
	STRING_FIELD("pe", struct raw_resources, pe),
	LIST_FIELD("extra", struct raw_resources, extra),
	LIST_FIELD("extra_slurm", struct raw_resources, extra_slurm),
	LIST_FIELD("extra_sge", struct raw_resources, extra_sge),
	LIST_FIELD("extra_fsl_sub", struct raw_resources, extra_fsl_sub),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t recipe_fields[] = {
	STRING_FIELD("name", struct raw_recipe, name),
	LIST_FIELD("in", struct raw_recipe, in),
	LIST_FIELD("out", struct raw_recipe, out),
	LIST_FIELD("ref", struct raw_recipe, ref),
	LIST_FIELD("optional", struct raw_recipe, optional),
	LIST_FIELD("batch", struct raw_recipe, batch),
	LIST_FIELD("vars", struct raw_recipe, vars),
	STRING_FIELD("run", struct raw_recipe, run),
	CYAML_FIELD_BOOL("product", OPT, struct raw_recipe, product),
	CYAML_FIELD_MAPPING_PTR("resources", CYAML_FLAG_POINTER_NULL | OPT, struct raw_recipe, resources,
				resource_fields),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t recipe_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_recipe, recipe_fields),
};

static const cyaml_schema_field_t file_fields[] = {
	STRING_FIELD("tree", struct raw_file, tree),
	STRING_FIELD("data", struct raw_file, data),
	CYAML_FIELD_SEQUENCE_COUNT("default", CYAML_FLAG_POINTER_NULL | OPT, struct raw_file, targets, targets_count,
				   &string_schema, 0, CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("resources", CYAML_FLAG_POINTER_NULL | OPT, struct raw_file, resources,
				resource_fields),
	CYAML_FIELD_BOOL("product", OPT, struct raw_file, product),
	/* A list of lists, which libcyaml cannot hold: read from the node record (read_links). */
	CYAML_FIELD_IGNORE("link", OPT),
	CYAML_FIELD_SEQUENCE("recipes", CYAML_FLAG_POINTER_NULL | OPT, struct raw_file, recipes, &recipe_schema, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_file, file_fields),
};

/* The fields allowed in the mapping at `path` (for "did you mean"). */
static const cyaml_schema_field_t *fields_at(const char *path)
{
	if (!*path)
		return file_fields;
	if (!strcmp(path, "resources") || str_ends_with(path, ".resources"))
		return resource_fields;
	return recipe_fields;
}

static void log_capture(cyaml_log_t level, void *ctx, const char *fmt, va_list args) CP_PRINTF(3, 0);
static void log_capture(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	if (level >= CYAML_LOG_ERROR)
		strbuf_vaddf(ctx, fmt, args);
}

/*
 * The name in `names` the user most likely meant by `wrong`, or NULL: one that
 * starts with the other ("outputs" for "out", "res" for "resources"), else
 * the nearest by edit distance if within a third of the length (at least 1).
 */
static const char *suggest_name(const char *wrong, const struct strvec *names)
{
	const char *best = NULL, *best_prefix = NULL;
	size_t best_distance = SIZE_MAX, best_prefix_distance = SIZE_MAX;
	for (size_t i = 0; names && i < names->count; i++) {
		const char *candidate = names->items[i];
		size_t distance = str_distance(wrong, candidate);
		bool prefix = strlen(candidate) >= 2 && strlen(wrong) >= 2 &&
			      (str_starts_with(wrong, candidate) || str_starts_with(candidate, wrong));
		if (prefix && distance < best_prefix_distance) {
			best_prefix = candidate;
			best_prefix_distance = distance;
		}
		if (distance < best_distance) {
			best = candidate;
			best_distance = distance;
		}
	}
	if (!best)
		return NULL;
	size_t length = strlen(wrong) > strlen(best) ? strlen(wrong) : strlen(best);
	size_t allowed = length / 3 ? length / 3 : 1;
	if (best_distance <= allowed)
		return best;
	return best_prefix;
}

static const char *suggest_field(const char *wrong, const cyaml_schema_field_t *fields)
{
	struct strvec names = STRVEC_INIT;
	for (const cyaml_schema_field_t *field = fields; field->key; field++)
		strvec_push(&names, field->key);
	const char *suggestion = suggest_name(wrong, &names);
	/* point into the static schema, not into `names` */
	for (const cyaml_schema_field_t *field = fields; suggestion && field->key; field++)
		if (!strcmp(field->key, suggestion)) {
			suggestion = field->key;
			break;
		}
	strvec_release(&names);
	return suggestion;
}

/*
 * "recipe 'brain': resources.minutes" for a path into the file, "tree" for a
 * top-level one. List indices are left out: the line says which item.
 */
static void describe_path(const struct recipe_lines *lines, const char *path, struct strbuf *out)
{
	struct strvec parts = STRVEC_INIT;
	strvec_split(&parts, path, '.', false);
	size_t start = 0;
	if (parts.count >= 2 && !strcmp(parts.items[0], "recipes") && isdigit((unsigned char)parts.items[1][0])) {
		char *name_path = xasprintf("recipes.%s.name", parts.items[1]);
		const struct node_line *name = lines_find(lines, name_path);
		free(name_path);
		if (name && name->scalar && *name->scalar)
			strbuf_addf(out, "recipe '%s'", name->scalar);
		else
			strbuf_addf(out, "recipe #%ld", strtol(parts.items[1], NULL, 10) + 1);
		start = 2;
	}
	bool first = true;
	for (size_t i = start; i < parts.count; i++) {
		if (isdigit((unsigned char)parts.items[i][0]))
			continue;
		strbuf_adds(out, first ? (out->len ? ": " : "") : ".");
		strbuf_adds(out, parts.items[i]);
		first = false;
	}
	if (!out->len)
		strbuf_adds(out, "recipe file");
	strvec_release(&parts);
}

static const char *yaml_kind_name(const char *cyaml_name)
{
	if (!strncmp(cyaml_name, "SEQUENCE", 8))
		return "a list";
	if (!strncmp(cyaml_name, "MAPPING", 7))
		return "a mapping";
	if (!strcmp(cyaml_name, "SCALAR"))
		return "a single value";
	if (!strcmp(cyaml_name, "ALIAS"))
		return "an alias";
	if (!strcmp(cyaml_name, "INT") || !strcmp(cyaml_name, "UINT"))
		return "an integer";
	if (!strcmp(cyaml_name, "FLOAT"))
		return "a number";
	if (!strcmp(cyaml_name, "STRING"))
		return "a string";
	return NULL;
}

/* Reword one of libcyaml's messages for users; `path` is the mapping or node concerned. */
static void reword(const char *reason, const char *path, struct strbuf *out)
{
	char what[64], got[64];
	const char *value;
	if (str_starts_with(reason, "Unexpected key: ")) {
		const char *key = reason + strlen("Unexpected key: ");
		const cyaml_schema_field_t *fields = fields_at(path);
		const char *suggestion = suggest_field(key, fields);
		strbuf_addf(out, "unknown field '%s'", key);
		if (suggestion) {
			strbuf_addf(out, " (did you mean '%s'?)", suggestion);
		} else {
			strbuf_adds(out, " (expected one of:");
			for (const cyaml_schema_field_t *field = fields; field->key; field++)
				strbuf_addf(out, "%s %s", field == fields ? "" : ",", field->key);
			strbuf_addch(out, ')');
		}
	} else if ((value = strstr(reason, " value: ")) && str_starts_with(reason, "Invalid ")) {
		size_t kind_length = (size_t)(value - reason) - strlen("Invalid ");
		char *kind = xstrndup(reason + strlen("Invalid "), kind_length);
		const char *name = yaml_kind_name(kind);
		strbuf_addf(out, "expected %s, got %s", name ? name : kind, value + strlen(" value: "));
		free(kind);
	} else if (sscanf(reason, "Expecting %63s got event: %63s", what, got) == 2) {
		size_t length = strlen(what);
		if (length && what[length - 1] == ',')
			what[length - 1] = '\0';
		const char *want = yaml_kind_name(what), *have = yaml_kind_name(got);
		strbuf_addf(out, "expected %s, got %s", want ? want : what, have ? have : got);
	} else {
		strbuf_adds(out, reason);
	}
}

/*
 * Turn libcyaml's captured log (a message, then "Backtrace:" and one line per
 * enclosing field or sequence entry, innermost first) into a located error.
 */
static void cyaml_error(const char *log, cyaml_err_t code, const char *file, const struct recipe_lines *lines,
			struct cp_err *err)
{
	struct strvec log_lines = STRVEC_INIT, segments = STRVEC_INIT;
	char *reason = NULL;
	int frame_line = 0;

	strvec_split(&log_lines, log, '\n', true);
	bool in_backtrace = false;
	for (size_t i = 0; i < log_lines.count; i++) {
		char *text = log_lines.items[i];
		if (str_starts_with(text, "Load: "))
			text += strlen("Load: ");
		if (!strcmp(text, "Backtrace:")) {
			in_backtrace = true;
			continue;
		}
		if (!in_backtrace) {
			if (!reason && *text)
				reason = xstrdup(text);
			continue;
		}
		/* Frames: "in mapping field 'X' (line: L, column: C)", "in sequence entry 'N' (...)". */
		const char *quote = strchr(text, '\'');
		const char *end = quote ? strchr(quote + 1, '\'') : NULL;
		const char *where = strstr(text, "(line: ");
		if (where && !frame_line)
			frame_line = atoi(where + strlen("(line: "));
		if (!quote || !end)
			continue;
		char *name = xstrndup(quote + 1, (size_t)(end - quote - 1));
		if (str_starts_with(text, "in sequence entry")) {
			/* libcyaml counts entries from 1 */
			char *index = xasprintf("%ld", strtol(name, NULL, 10) - 1);
			free(name);
			name = index;
		}
		strvec_push_owned(&segments, name);
	}

	struct strbuf path = STRBUF_INIT, message = STRBUF_INIT;
	for (size_t i = segments.count; i-- > 0;) {
		if (path.len)
			strbuf_addch(&path, '.');
		strbuf_adds(&path, segments.items[i]);
	}
	int line = frame_line;
	const struct node_line *node = lines_find(lines, path.buf);
	if (node)
		line = node->line;
	if (reason && str_starts_with(reason, "Unexpected key: ")) {
		char *key_path = child_path(path.buf, reason + strlen("Unexpected key: "));
		if ((node = lines_find(lines, key_path)))
			line = node->line;
		free(key_path);
		if (path.len) {
			describe_path(lines, path.buf, &message);
			strbuf_adds(&message, ": ");
		}
		reword(reason, path.buf, &message);
	} else {
		describe_path(lines, path.buf, &message);
		strbuf_adds(&message, ": ");
		if (reason)
			reword(reason, path.buf, &message);
		else
			strbuf_adds(&message, cyaml_strerror(code));
		/* `run: {tool} ...` is a YAML flow mapping, a classic surprise */
		if (str_ends_with(path.buf, "run") && str_ends_with(message.buf, "got a mapping"))
			strbuf_adds(&message, " (a command that starts with '{' must be quoted: run: \"{x} ...\")");
	}
	cp_err_set(err, file, line ? line : 1, "%s", message.buf);
	strbuf_release(&message);
	strbuf_release(&path);
	strvec_release(&segments);
	strvec_release(&log_lines);
	free(reason);
}

static void cyaml_config_init(cyaml_config_t *config, struct strbuf *log)
{
	memset(config, 0, sizeof(*config));
	config->log_fn = log_capture;
	config->log_ctx = log;
	config->mem_fn = cyaml_mem;
	config->log_level = CYAML_LOG_ERROR;
	config->flags = CYAML_CFG_DEFAULT;
}

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

/* Fill the unset fields of `out` from the file-wide defaults. */
static void merge_resources(struct recipe_resources *out, const struct recipe_resources *defaults)
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

static int recipe_fail(struct cp_err *err, const struct recipe *r, int line, const char *field, const char *fmt,
		       ...) CP_PRINTF(5, 6);
static int recipe_fail(struct cp_err *err, const struct recipe *r, int line, const char *field, const char *fmt, ...)
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
		const struct node_line *node = lines_find(lines, path);
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
		const struct node_line *node = lines_find(lines, path);
		free(path);
		if (node && (!values[i] || !*values[i])) {
			cp_err_set(err, file, node->line, "%sresources.%s: must not be empty", prefix, strings[i]);
			return -1;
		}
	}
	/* fsl_sub takes "-s NAME,THREADS": a comma or a blank in the name would change its meaning. */
	if (res->pe && res->pe[strcspn(res->pe, ", \t\n")]) {
		cp_err_set(err, file, lines_line(lines, "resources.pe"),
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
			cp_err_set(err, file, lines_line(lines, path), "%sresources.%s: empty argument", prefix, lists[l]);
			free(path);
			return -1;
		}
	}
	return 0;
}

static int check_run_syntax(const struct recipe *r, struct cp_err *err);

/* libcyaml reads any word as a boolean: `product: maybe` must not quietly mean something. */
static int check_boolean(const struct recipe_lines *lines, const char *file, const char *where, struct cp_err *err)
{
	const struct node_line *node = lines_find(lines, "product");
	static const char *const words[] = {"true", "false", "yes", "no", "on", "off"};
	for (size_t i = 0; node && node->scalar && i < sizeof(words) / sizeof(*words); i++)
		if (!strcasecmp(node->scalar, words[i]))
			return 0;
	if (!node)
		return 0;
	cp_err_set(err, file, node->line, "%sproduct: must be true or false", where);
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
	int bad = check_boolean(r->lines, r->file, where, err);
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
		if (strvec_find(&r->in, r->optional.items[i]) < 0 && strvec_find(&r->out, r->optional.items[i]) < 0)
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
	char *prefix = xasprintf("recipe '%s': ", r->name);
	int rc = check_resources(&r->resources, r->lines, r->file, prefix, err);
	free(prefix);
	if (rc)
		return -1;
	return check_run_syntax(r, err);
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
		r->file = set->file;
		r->line = lines_line(all, prefix);
		r->lines = lines_under(all, prefix);
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
	const struct node_line *link = lines_find(set->lines, "link");
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
		cp_err_set(err, set->file, lines_line(set->lines, prefix.buf),
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
	    check_boolean(set->lines, set->file, "", err))
		return -1;
	for (size_t i = 0; i < set->targets.count; i++) {
		char path[48];
		snprintf(path, sizeof(path), "default.%zu", i);
		if (!*set->targets.items[i]) {
			cp_err_set(err, set->file, lines_line(set->lines, path), "default: empty target name");
			return -1;
		}
	}
	for (size_t i = 0; i < set->count; i++)
		if (check_recipe(set, i, err))
			return -1;
	/* Checked before merging, so that an error points at the field actually written. */
	for (size_t i = 0; i < set->count; i++)
		merge_resources(&set->recipes[i].resources, &set->resources);
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

int recipe_load_string(const char *text, size_t length, const char *name, struct recipe_set **out,
		       struct cp_err *err)
{
	struct recipe_lines *all = xcalloc(1, sizeof(*all));
	struct raw_file *raw = NULL;
	struct strbuf log = STRBUF_INIT;
	cyaml_config_t config;
	cyaml_config_init(&config, &log);
	int rc = -1;

	*out = NULL;
	if (scan_yaml(text, length, name, all, err))
		goto done;
	cyaml_err_t code = cyaml_load_data((const uint8_t *)text, length, &config, &file_schema, (cyaml_data_t **)&raw,
					   NULL);
	if (code != CYAML_OK) {
		cyaml_error(log.buf, code, name, all, err);
		goto done;
	}
	struct recipe_set *set = xcalloc(1, sizeof(*set));
	set->file = xstrdup(name);
	set->dir = directory_of(name);
	raw_to_set(raw, all, set);
	if (check_set(set, err)) {
		recipe_set_free(set);
		goto done;
	}
	*out = set;
	rc = 0;
done:
	if (raw)
		cyaml_free(&config, &file_schema, raw, 0);
	strbuf_release(&log);
	lines_free(all);
	return rc;
}

int recipe_load(const char *path, struct recipe_set **out, struct cp_err *err)
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
	int rc = recipe_load_string(text.buf, text.len, path, out, err);
	strbuf_release(&text);
	return rc;
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
	recipe_resources_release(&r->resources);
	lines_free(r->lines);
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
	lines_free(set->lines);
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
	int line = lines_line(r->lines, field);
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
	int line = lines_line(set->lines, field);
	return line ? line : 1;
}

/* ---- the run string ------------------------------------------------------- */

enum run_token_kind { RUN_TEXT, RUN_NAME, RUN_END, RUN_ERROR };

struct run_token {
	enum run_token_kind kind;
	const char *start; /* text to copy, or the name */
	size_t length;
	size_t offset;     /* of the token in the run string */
	char *problem;     /* RUN_ERROR: what is wrong (owned) */
};

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == '/';
}

/*
 * The next token of `run` from *pos: a stretch of plain text, a literal brace
 * (from "{{" or "}}"), a `{name}`, the end, or a syntax error.
 */
static void run_next(const char *run, size_t *pos, struct run_token *token)
{
	const char *s = run + *pos;
	token->offset = *pos;
	token->problem = NULL;
	if (!*s) {
		token->kind = RUN_END;
		return;
	}
	if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
		token->kind = RUN_TEXT;
		token->start = s;
		token->length = 1;
		*pos += 2;
		return;
	}
	if (s[0] == '}') {
		token->kind = RUN_ERROR;
		token->problem = xasprintf("a lone '}' at character %zu (write '}}' for a literal '}')", *pos + 1);
		return;
	}
	if (s[0] != '{') {
		size_t length = strcspn(s, "{}");
		token->kind = RUN_TEXT;
		token->start = s;
		token->length = length;
		*pos += length;
		return;
	}
	size_t length = 0;
	while (name_char(s[1 + length]))
		length++;
	if (s[1 + length] == '}' && length > 0) {
		token->kind = RUN_NAME;
		token->start = s + 1;
		token->length = length;
		*pos += length + 2;
		return;
	}
	token->kind = RUN_ERROR;
	const char *close = strchr(s + 1, '}');
	if (s[1] == '}') {
		token->problem = xasprintf("empty '{}' at character %zu (write '{{}}' for a literal '{}')", *pos + 1);
	} else if (!close) {
		token->problem = xasprintf("the '{' at character %zu is never closed (write '{{' for a literal '{')",
					   *pos + 1);
	} else {
		size_t shown = (size_t)(close - s) + 1;
		token->problem = xasprintf("'%.*s' at character %zu is not a substitution: a name holds only letters, "
					   "digits, '_', '-', '.' and '/' (write '{{' and '}}' for literal braces, "
					   "e.g. awk '{{print $1}}' or ${{HOME}})",
					   (int)(shown > 60 ? 60 : shown), s, *pos + 1);
	}
}

/* Line of character `offset` of the run string: exact for `|` blocks, else the field's line. */
static int run_line(const struct recipe *r, size_t offset, int *column)
{
	const struct node_line *node = lines_find(r->lines, "run");
	*column = 0;
	if (!node)
		return r->line;
	if (node->literal && r->run) {
		int line = node->value_line + 1;
		for (size_t i = 0; i < offset && r->run[i]; i++)
			if (r->run[i] == '\n')
				line++;
		return line;
	}
	if (node->plain && r->run && !strchr(r->run, '\n') && node->value_line == node->line)
		*column = node->value_column + (int)offset;
	return node->line;
}

static int run_fail(const struct recipe *r, size_t offset, struct cp_err *err, const char *fmt, ...)
	CP_PRINTF(4, 5);
static int run_fail(const struct recipe *r, size_t offset, struct cp_err *err, const char *fmt, ...)
{
	struct strbuf message = STRBUF_INIT;
	va_list args;
	int column;
	int line = run_line(r, offset, &column);
	strbuf_addf(&message, "recipe '%s': run: ", r->name ? r->name : "?");
	va_start(args, fmt);
	strbuf_vaddf(&message, fmt, args);
	va_end(args);
	cp_err_set_at(err, r->file, line, column, "%s", message.buf);
	strbuf_release(&message);
	return -1;
}

static int check_run_syntax(const struct recipe *r, struct cp_err *err)
{
	struct strvec names = STRVEC_INIT;
	int rc = recipe_run_names(r, &names, err);
	strvec_release(&names);
	return rc;
}

/* The shell code the user wrote goes through the lexer; a {name} takes the context it finds. */
static void run_scan_text(struct shell_scan *scan, const struct run_token *token)
{
	shell_scan_text(scan, token->start, token->length);
}

static int run_fail_heredoc(const struct recipe *r, const struct run_token *token, struct cp_err *err)
{
	return run_fail(r, token->offset, err,
			"{%.*s} is inside a here-document, where no quoting keeps a value from being read as "
			"shell code; set a variable before it and use that inside (x={%.*s}, then $x)",
			(int)token->length, token->start, (int)token->length, token->start);
}

int recipe_run_names(const struct recipe *r, struct strvec *out, struct cp_err *err)
{
	struct run_token token;
	struct shell_scan scan;
	size_t pos = 0;
	int rc = 0;
	if (!r->run)
		return 0;
	shell_scan_init(&scan);
	for (;;) {
		run_next(r->run, &pos, &token);
		if (token.kind == RUN_END)
			break;
		if (token.kind == RUN_ERROR) {
			rc = run_fail(r, token.offset, err, "%s", token.problem);
			free(token.problem);
			break;
		}
		if (token.kind == RUN_TEXT) {
			run_scan_text(&scan, &token);
			continue;
		}
		if (shell_scan_context(&scan) == SHELL_HEREDOC) {
			rc = run_fail_heredoc(r, &token, err);
			break;
		}
		char *name = xstrndup(token.start, token.length);
		if (strvec_find(out, name) < 0)
			strvec_push_owned(out, name);
		else
			free(name);
	}
	shell_scan_release(&scan);
	return rc;
}

/* Write `count` NUL-separated values where the shell code put them (see recipe_expand_run). */
static void write_values(struct strbuf *out, enum shell_context context, const char *values, size_t count,
			 struct strbuf *joined)
{
	if (context == SHELL_BARE) {
		for (size_t i = 0; i < count; i++, values += strlen(values) + 1) {
			if (i)
				strbuf_addch(out, ' ');
			strbuf_add_shell_quoted(out, values);
		}
		return;
	}
	strbuf_reset(joined);
	for (size_t i = 0; i < count; i++, values += strlen(values) + 1) {
		if (i)
			strbuf_addch(joined, ' ');
		strbuf_adds(joined, values);
	}
	if (!count)
		return;
	if (context == SHELL_COMMENT) {
		/* A line break in a value would end the comment and start a command. */
		for (size_t i = 0; i < joined->len; i++)
			if (joined->buf[i] == '\n' || joined->buf[i] == '\r')
				joined->buf[i] = '?';
		strbuf_add(out, joined->buf, joined->len);
		return;
	}
	char quote = context == SHELL_DOUBLE ? '"' : '\'';
	strbuf_addch(out, quote);
	strbuf_add_shell_quoted(out, joined->buf);
	strbuf_addch(out, quote);
}

int recipe_expand_run(const struct recipe *r, recipe_resolve_fn resolve, void *ctx, struct strbuf *out,
		      struct cp_err *err)
{
	struct run_token token;
	struct shell_scan scan;
	struct strbuf values = STRBUF_INIT, joined = STRBUF_INIT;
	size_t pos = 0;
	int rc = 0;
	if (!r->run)
		return run_fail(r, 0, err, "no command");
	/* Most commands have no quotes, comments or here-documents: every {name} stands bare. */
	bool plain = !strpbrk(r->run, "'\"\\`#<");
	shell_scan_init(&scan);
	for (;;) {
		run_next(r->run, &pos, &token);
		if (token.kind == RUN_END)
			break;
		if (token.kind == RUN_ERROR) {
			rc = run_fail(r, token.offset, err, "%s", token.problem);
			free(token.problem);
			break;
		}
		if (token.kind == RUN_TEXT) {
			strbuf_add(out, token.start, token.length);
			if (!plain)
				run_scan_text(&scan, &token);
			continue;
		}
		enum shell_context context = plain ? SHELL_BARE : shell_scan_context(&scan);
		if (context == SHELL_HEREDOC) {
			rc = run_fail_heredoc(r, &token, err);
			break;
		}
		char *name = xstrndup(token.start, token.length);
		size_t count = 0;
		strbuf_reset(&values);
		rc = resolve(ctx, name, &values, &count, err);
		if (rc == RECIPE_UNKNOWN_NAME) {
			run_fail(r, token.offset, err,
				 "unknown name '{%s}': not a key of this recipe nor a placeholder "
				 "(write '{{' and '}}' for literal braces, e.g. ${{%s}})",
				 name, name);
		} else if (rc < 0) {
			int column;
			int line = run_line(r, token.offset, &column);
			cp_err_prefix(err, "recipe '%s': run: {%s}: ", r->name ? r->name : "?", name);
			if (!err->file) {
				err->file = xstrdup(r->file ? r->file : "");
				err->line = line;
				err->column = column;
			}
		} else {
			write_values(out, context, values.buf, count, &joined);
		}
		free(name);
		if (rc != 0) {
			rc = -1;
			break;
		}
	}
	shell_scan_release(&scan);
	strbuf_release(&values);
	strbuf_release(&joined);
	return rc;
}

void recipe_var_names(const struct recipe *r, struct strvec *out)
{
	struct strvec names = STRVEC_INIT;
	struct cp_err ignored = CP_ERR_INIT;
	for (size_t i = 0; i < r->vars.count; i++)
		if (strvec_find(out, r->vars.items[i]) < 0)
			strvec_push(out, r->vars.items[i]);
	recipe_run_names(r, &names, &ignored);
	cp_err_release(&ignored);
	for (size_t i = 0; i < names.count; i++) {
		const char *name = names.items[i];
		if (strvec_find(&r->in, name) >= 0 || strvec_find(&r->out, name) >= 0 ||
		    strvec_find(&r->ref, name) >= 0 || strvec_find(&r->batch, name) >= 0 || strvec_find(out, name) >= 0)
			continue;
		strvec_push(out, name);
	}
	strvec_release(&names);
}

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
	const char *suggestion = suggest_name(key, view->keys);
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
			const char *suggestion = suggest_name(name, &sets.all);
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
		const char *suggestion = suggest_name(name, &known);
		bool tree_key = view->keys && strvec_find(view->keys, name) >= 0;
		if (tree_key)
			run_fail(r, offset, err,
				 "'{%s}' is a template key this recipe does not list: add it to 'in' (or 'ref')", name);
		else if (suggestion)
			run_fail(r, offset, err, "unknown name '{%s}' (did you mean '{%s}'?)", name, suggestion);
		else
			run_fail(r, offset, err,
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
		int rc = view->placeholders(view->ctx, key, &required, &optional);
		strvec_release(&required);
		strvec_release(&optional);
		if (rc < 0) {
			char path[48];
			snprintf(path, sizeof(path), "default.%zu", i);
			const char *suggestion = suggest_name(key, view->keys);
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
}
