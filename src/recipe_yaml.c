/*
 * recipe_yaml.c: reading the recipe file's text, for recipe.c.
 *
 * Loading takes two passes over the text. The first uses libyaml's event API
 * to catch syntax errors and duplicate keys and to record, for every node, its
 * path ("recipes.2.resources.minutes") and line. The second is libcyaml with
 * the schema below; its log output (an error and a backtrace of fields and
 * sequence entries) is captured and turned back into a path, which the first
 * pass's record turns into a line. Validation of the loaded values (recipe.c)
 * then uses the same record, so every message is "file:line: recipe 'x':
 * field: ...".
 */
#include "recipe_int.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

/* ---- the node record of the first pass ---------------------------------- */

static void lines_push(struct recipe_lines *lines, const char *path, int line, const yaml_event_t *event)
{
	ALLOC_GROW(lines->items, lines->count + 1, lines->cap);
	struct node_line *node = &lines->items[lines->count++];
	memset(node, 0, sizeof(*node));
	node->path = xstrdup(path);
	node->line = line;
	node->value_line = (int)event->start_mark.line + 1;
	node->value_column = (int)event->start_mark.column + 1;
	node->mapping = event->type == YAML_MAPPING_START_EVENT;
	if (event->type == YAML_SCALAR_EVENT) {
		node->scalar = xstrndup((const char *)event->data.scalar.value, event->data.scalar.length);
		node->literal = event->data.scalar.style == YAML_LITERAL_SCALAR_STYLE;
		node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	}
}

void recipe_lines_free(struct recipe_lines *lines)
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

const struct node_line *recipe_lines_find(const struct recipe_lines *lines, const char *path)
{
	if (!lines)
		return NULL;
	for (size_t i = 0; i < lines->count; i++)
		if (!strcmp(lines->items[i].path, path))
			return &lines->items[i];
	return NULL;
}

/* Line of `path`, else of the nearest enclosing path that has one, else 0. */
int recipe_lines_line(const struct recipe_lines *lines, const char *path)
{
	char *copy = xstrdup(path);
	int line = 0;
	for (;;) {
		const struct node_line *node = recipe_lines_find(lines, copy);
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
int recipe_scan_yaml(const char *text, size_t length, const char *file, struct recipe_lines *lines,
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
							   recipe_lines_line(lines, first));
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
	CYAML_FIELD_BOOL("cutoff", OPT, struct raw_recipe, cutoff),
	CYAML_FIELD_MAPPING_PTR("resources", CYAML_FLAG_POINTER_NULL | OPT, struct raw_recipe, resources,
				resource_fields),
	STRING_FIELD("batch_label", struct raw_recipe, batch_label),
	/* Mappings of names the user chooses, which libcyaml cannot hold: read from the node record
	 * (recipe_read_params). */
	CYAML_FIELD_IGNORE("params", OPT),
	CYAML_FIELD_IGNORE("placeholders", OPT),
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
	/* Its `rename:` maps any keys: read from the node record (recipe_include.c). */
	CYAML_FIELD_IGNORE("include", OPT),
	CYAML_FIELD_SEQUENCE("recipes", CYAML_FLAG_POINTER_NULL | OPT, struct raw_file, recipes, &recipe_schema, 0,
			     CYAML_UNLIMITED),
	CYAML_FIELD_END,
};

const cyaml_schema_value_t recipe_file_schema = {
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
const char *recipe_suggest_name(const char *wrong, const struct strvec *names)
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
	const char *suggestion = recipe_suggest_name(wrong, &names);
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
		const struct node_line *name = recipe_lines_find(lines, name_path);
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
void recipe_cyaml_error(const char *log, cyaml_err_t code, const char *file, const struct recipe_lines *lines,
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
	const struct node_line *node = recipe_lines_find(lines, path.buf);
	if (node)
		line = node->line;
	if (reason && str_starts_with(reason, "Unexpected key: ")) {
		char *key_path = child_path(path.buf, reason + strlen("Unexpected key: "));
		if ((node = recipe_lines_find(lines, key_path)))
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

void recipe_cyaml_config_init(cyaml_config_t *config, struct strbuf *log)
{
	memset(config, 0, sizeof(*config));
	config->log_fn = log_capture;
	config->log_ctx = log;
	config->mem_fn = cyaml_mem;
	config->log_level = CYAML_LOG_ERROR;
	config->flags = CYAML_CFG_DEFAULT;
}
