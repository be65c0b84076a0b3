/*
 * glob_match.c: what a matching path yields (cpipe-tree(5), GLOBBING, steps 6,
 * 8 and 9): typed values from the captures, the filters of given values, and
 * one reading per file unless every reading is asked for. Each worker (one
 * per thread) writes only its own state; the job is read-only here.
 */
#include "glob_int.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------------- values */

/* Python int() of a matched integer field; false when it does not fit a long long. */
static bool parse_integer(const char *s, int base, long long *out)
{
	while (*s == ' ')
		s++;
	bool negative = false;
	if (*s == '+' || *s == '-')
		negative = *s++ == '-';
	if (s[0] == '0' && s[1]) {
		char prefix = s[1];
		if ((prefix == 'x' || prefix == 'X') && (base == 0 || base == 16))
			base = 16, s += 2;
		else if ((prefix == 'b' || prefix == 'B') && (base == 0 || base == 2))
			base = 2, s += 2;
		else if ((prefix == 'o' || prefix == 'O') && (base == 0 || base == 8))
			base = 8, s += 2;
	}
	if (!base)
		base = 10;
	unsigned long long limit = negative ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	unsigned long long value = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned digit;
		if (*s >= '0' && *s <= '9')
			digit = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			digit = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			digit = (unsigned)(*s - 'A' + 10);
		else
			return false;
		if (digit >= (unsigned)base || value > (limit - digit) / (unsigned)base)
			return false;
		value = value * (unsigned)base + digit;
	}
	if (!negative)
		*out = (long long)value;
	else if (value == (unsigned long long)LLONG_MAX + 1)
		*out = LLONG_MIN;
	else
		*out = -(long long)value;
	return true;
}

/* Python's repr() of a float: the shortest text that reads back the same. */
static void add_float_repr(struct strbuf *out, double value)
{
	if (isnan(value)) {
		strbuf_adds(out, "nan");
		return;
	}
	if (isinf(value)) {
		strbuf_adds(out, value < 0 ? "-inf" : "inf");
		return;
	}
	char text[64];
	int digits;
	for (digits = 1; digits < 17; digits++) {
		snprintf(text, sizeof(text), "%.*e", digits - 1, value);
		if (strtod(text, NULL) == value)
			break;
	}
	snprintf(text, sizeof(text), "%.*e", digits - 1, value);
	int exponent = atoi(strchr(text, 'e') + 1);
	/* Python switches to exponent form below 1e-4 and from 1e16 on. */
	if (exponent < -4 || exponent >= 16) {
		strbuf_adds(out, text);
		return;
	}
	int decimals = digits - 1 - exponent;
	size_t start = out->len;
	strbuf_addf(out, "%.*f", decimals > 0 ? decimals : 0, value);
	if (!strchr(out->buf + start, '.'))
		strbuf_adds(out, ".0");
}

/*
 * Turn a captured field (NUL-terminated in `text`) into its typed value. The
 * value's text points at `text` or at `repr`. False when the number does not
 * fit, which counts as no match.
 */
static bool convert_field(const struct template_spec *type, char *text, struct strbuf *repr, struct tree_value *out)
{
	out->text = text;
	out->type = TREE_VALUE_STRING;
	out->integer = 0;
	out->real = 0.0;
	out->literal = true; /* a file name's text: data when it fills a path */
	int base = 0;
	switch (type->kind) {
	case TEMPLATE_KIND_STRING:
	case TEMPLATE_KIND_WHITESPACE:
		return true;
	case TEMPLATE_KIND_BINARY: base = 2; goto integer;
	case TEMPLATE_KIND_OCTAL: base = 8; goto integer;
	case TEMPLATE_KIND_HEX: base = 16; goto integer;
	case TEMPLATE_KIND_INT:
	integer:
		if (!parse_integer(text, base, &out->integer))
			return false;
		out->type = TREE_VALUE_INT;
		strbuf_reset(repr);
		strbuf_addf(repr, "%lld", out->integer);
		out->text = repr->buf;
		return true;
	case TEMPLATE_KIND_FIXED:
	case TEMPLATE_KIND_EXPONENT:
	case TEMPLATE_KIND_GENERAL:
	case TEMPLATE_KIND_PERCENT: {
		char *end;
		out->real = strtod(text, &end);
		if (type->kind == TEMPLATE_KIND_PERCENT)
			out->real /= 100.0;
		out->type = TREE_VALUE_FLOAT;
		strbuf_reset(repr);
		add_float_repr(repr, out->real);
		out->text = repr->buf;
		return true;
	}
	}
	return false;
}

/*
 * Whether a captured value equals a pre-set one. file-tree compares Python
 * objects, so the string "1" never equals the int 1 captured by {run:d} and a
 * pre-set list of strings filters out every file of a typed field. cpipe
 * compares a number and a string as numbers, reading the string as Python's
 * int() or float() would; None equals only None.
 */
static bool values_equal(const struct tree_value *a, const struct tree_value *b)
{
	if (!a->text || !b->text)
		return !a->text && !b->text;
	if (a->type == TREE_VALUE_STRING && b->type == TREE_VALUE_STRING)
		return !strcmp(a->text, b->text);
	if (a->type == TREE_VALUE_INT && b->type == TREE_VALUE_INT)
		return a->integer == b->integer;
	if (a->type != TREE_VALUE_STRING && b->type != TREE_VALUE_STRING)
		return tree_value_number(a) == tree_value_number(b);
	const struct tree_value *number = a->type == TREE_VALUE_STRING ? b : a;
	const char *text = a->type == TREE_VALUE_STRING ? a->text : b->text;
	if (number->type == TREE_VALUE_INT) {
		long long integer;
		return template_parse_int(text, &integer) && integer == number->integer;
	}
	double real;
	return template_parse_float(text, &real) && real == number->real;
}

/* ---------------------------------------------------------------- parses */

static void collect_link(struct worker *w, const struct matcher *m)
{
	const struct job *job = w->job;
	const size_t *members = m->link_slots;
	const struct tree_value *row[64];
	for (size_t g = 0; g < job->link_count; g++, members += job->links[g - 1].size) {
		size_t size = job->links[g].size;
		const struct tree_value **tuple = size <= ARRAY_SIZE(row) ? row : xcalloc(size, sizeof(*tuple));
		bool complete = true;
		for (size_t k = 0; k < size && complete; k++) {
			complete = members[k] != SIZE_MAX;
			if (complete)
				tuple[k] = w->slot_values[members[k]];
		}
		/* A file whose template lacks a linked name adds no row. */
		if (complete)
			glob_value_rows_add(&w->linked[g], tuple, size);
		if (tuple != row)
			free(tuple);
	}
}

/* The key and slot names of `m`'s files, in the worker's result storage (worker.matcher_strings). */
static char **matcher_strings(struct worker *w, const struct matcher *m)
{
	char ***strings = &w->matcher_strings[m - w->job->matchers];
	if (*strings)
		return *strings;
	struct arena *storage = &w->result.storage;
	*strings = arena_alloc(storage, (m->slot_names.count + 1) * sizeof(**strings));
	(*strings)[0] = m->key ? arena_strdup(storage, m->key) : NULL;
	for (size_t s = 0; s < m->slot_names.count; s++)
		(*strings)[s + 1] = arena_strdup(storage, m->slot_names.items[s]);
	return *strings;
}

/*
 * Record the file; its path and values live in one block of the result's
 * storage, its key and binding names are its matcher's (the same for every
 * file of a template: 100,000 subjects' files share one copy, #15).
 */
static void append_file(struct worker *w, const struct matcher *m, const char *subject, size_t length)
{
	struct glob_result *result = &w->result;
	char **shared = matcher_strings(w, m);
	size_t count = m->slot_names.count;
	size_t size = count * sizeof(struct glob_binding) + length + 1;
	for (size_t s = 0; s < count; s++)
		if (w->slot_values[s]->text)
			size += strlen(w->slot_values[s]->text) + 1;
	char *block = arena_alloc(&result->storage, size);
	struct glob_binding *bindings = (struct glob_binding *)(void *)block;
	char *at = block + count * sizeof(*bindings);
	ALLOC_GROW(result->files, result->count + 1, result->cap);
	struct glob_file *file = &result->files[result->count++];
	file->key = shared[0];
	file->path = memcpy(at, subject, length);
	file->path[length] = '\0';
	at += length + 1;
	file->bindings = bindings;
	file->binding_count = count;
	const struct stat *st = w->final_stat;
	bool known = st && S_ISREG(st->st_mode);
	file->size = known ? (int64_t)st->st_size : -1;
	file->mtime_ns = known ? timespec_ns(&st->st_mtim) : 0;
	for (size_t s = 0; s < count; s++) {
		const struct tree_value *value = w->slot_values[s];
		bindings[s].name = shared[s + 1];
		bindings[s].value = *value;
		if (value->text) {
			size_t text_size = strlen(value->text) + 1;
			bindings[s].value.text = memcpy(at, value->text, text_size);
			at += text_size;
		}
	}
	ALLOC_GROW(w->file_ranks, w->file_rank_count + 1, w->file_rank_cap);
	w->file_ranks[w->file_rank_count++] = m->key_rank;
}

/* Read the captures of a successful match; false when a typed value does not fit (no match then). */
static bool read_captures(struct worker *w, const struct pattern *p, const char *subject)
{
	const struct matcher *m = &w->job->matchers[p->matcher];
	PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(w->match_data);
	for (size_t i = 0; i < m->source.names.count; i++) {
		struct tree_value *value = &w->capture_values[i];
		uint32_t group = p->groups[i];
		if (!group || ovector[2 * group] == PCRE2_UNSET) {
			memset(value, 0, sizeof(*value));
			continue;
		}
		struct strbuf *text = &w->capture_text[i];
		strbuf_reset(text);
		strbuf_add(text, subject + ovector[2 * group], ovector[2 * group + 1] - ovector[2 * group]);
		if (!convert_field(&p->types[i], text->buf, &w->capture_repr[i], value))
			return false;
	}
	return true;
}

/*
 * GLOBBING step 8 for one parse: check the captures against pre-set values and bind
 * them to the matcher's slots. False when a filter rejects the parse.
 */
static bool bind_parse(struct worker *w, const struct pattern *p)
{
	const struct matcher *m = &w->job->matchers[p->matcher];
	static const struct tree_value none = {NULL, TREE_VALUE_STRING, 0, 0.0, false};
	for (size_t s = 0; s < m->slot_names.count; s++)
		w->slot_values[s] = NULL;
	for (size_t i = 0; i < m->source.names.count; i++) {
		const struct tree_value *value = &w->capture_values[i];
		const struct name_rule *rule = &m->rules[i];
		if (rule->kind == RULE_EQUAL && !values_equal(value, &rule->placeholder->values[0]))
			return false;
		if (rule->kind == RULE_MEMBER) {
			bool found = false;
			for (size_t v = 0; v < rule->placeholder->count && !found; v++)
				found = values_equal(value, &rule->placeholder->values[v]);
			if (!found)
				return false;
		}
		/* Names sharing a binding (P/x fell back to x) must agree. */
		const struct tree_value **slot = &w->slot_values[rule->slot];
		if (*slot && !values_equal(*slot, value))
			return false;
		*slot = value;
	}
	for (size_t s = 0; s < m->slot_names.count; s++)
		if (!w->slot_values[s])
			w->slot_values[s] = m->slot_fixed[s].text ? &m->slot_fixed[s] : &none;
	return true;
}

/*
 * GLOBBING steps 10 and 11 for the last file recorded: collect its values and linked tuples.
 * They are its bindings, which stay where they are until the result is released.
 */
static void collect_slots(struct worker *w, const struct matcher *m)
{
	const struct glob_file *file = &w->result.files[w->result.count - 1];
	for (size_t s = 0; s < file->binding_count; s++)
		w->slot_values[s] = &file->bindings[s].value;
	for (size_t s = 0; s < m->slot_names.count; s++)
		if (m->slot_collector[s] != SIZE_MAX)
			glob_value_rows_add(&w->collected[m->slot_collector[s]], &w->slot_values[s], 1);
	if (w->job->link_count)
		collect_link(w, m);
}

/* The rank of a parse: how many optional-only placeholders it found in the name. */
static size_t parse_score(const struct worker *w, const struct pattern *p)
{
	const struct matcher *m = &w->job->matchers[p->matcher];
	size_t score = 0;
	for (size_t i = 0; i < m->source.optional_name_count; i++)
		score += w->capture_values[i].text != NULL;
	return score;
}

static void describe_bindings(const struct glob_file *file, struct strbuf *out)
{
	bool first = true;
	for (size_t b = 0; b < file->binding_count; b++) {
		if (!file->bindings[b].value.text)
			continue;
		strbuf_adds(out, first ? "" : ", ");
		strbuf_addf(out, "%s=%s", file->bindings[b].name, file->bindings[b].value.text);
		first = false;
	}
	if (first)
		strbuf_adds(out, "no value");
}

/* A file read two ways equally well: remember the first such file of each key (the smallest path). */
static void note_tie(struct worker *w, const struct glob_file *kept, const struct glob_file *other)
{
	const char *key = kept->key ? kept->key : "";
	long at = strvec_find(&w->tie_keys, key);
	if (at >= 0 && strcmp(w->tie_paths.items[at], kept->path) <= 0)
		return;
	struct strbuf message = STRBUF_INIT;
	strbuf_addf(&message, "key '%s': '%s' reads as ", key, kept->path);
	describe_bindings(kept, &message);
	strbuf_adds(&message, " or as ");
	describe_bindings(other, &message);
	strbuf_adds(&message, "; cpipe kept the first");
	if (at < 0) {
		strvec_push(&w->tie_keys, key);
		strvec_push(&w->tie_paths, kept->path);
		strvec_push_owned(&w->tie_messages, strbuf_detach(&message));
		return;
	}
	free(w->tie_paths.items[at]);
	w->tie_paths.items[at] = xstrdup(kept->path);
	free(w->tie_messages.items[at]);
	w->tie_messages.items[at] = strbuf_detach(&message);
}

/*
 * One parse per file: of the parses of the current subject for one key (the
 * files from pending_start on), keep the one with the most optional parts
 * present, the first of them on a tie, and collect its values.
 */
static void keep_best_parse(struct worker *w)
{
	struct glob_result *result = &w->result;
	size_t start = w->pending_start, count = result->count - start;
	if (!count)
		return;
	size_t best = 0;
	for (size_t i = 1; i < count; i++)
		if (w->pending_score[i] > w->pending_score[best])
			best = i;
	for (size_t i = 0; i < count; i++) {
		if (i != best && w->pending_score[i] == w->pending_score[best] &&
		    !glob_same_bindings(&result->files[start + best], &result->files[start + i])) {
			note_tie(w, &result->files[start + best], &result->files[start + i]);
			break;
		}
	}
	result->files[start] = result->files[start + best];
	result->count = start + 1;
	w->file_rank_count = start + 1;
	collect_slots(w, &w->job->matchers[w->pending_matcher[best]]);
	w->pending_start = result->count;
}

/* A parse that passed the filters, kept until the subject's parses for its key are all known. */
static void add_pending_parse(struct worker *w, const struct pattern *p, const char *subject, size_t length)
{
	const struct matcher *m = &w->job->matchers[p->matcher];
	size_t at = w->result.count - w->pending_start;
	if (at && w->job->matchers[w->pending_matcher[0]].key != m->key)
		keep_best_parse(w), at = 0;
	if (at + 1 > w->pending_cap) {
		w->pending_cap = (at + 1) * 2;
		w->pending_matcher = xrealloc(w->pending_matcher, w->pending_cap * sizeof(*w->pending_matcher));
		w->pending_score = xrealloc(w->pending_score, w->pending_cap * sizeof(*w->pending_score));
	}
	w->pending_matcher[at] = p->matcher;
	w->pending_score[at] = parse_score(w, p);
	append_file(w, m, subject, length);
}

/*
 * Try `count` candidate patterns (in job order) on `subject`: for each subset
 * group, the first success. Every parse is kept (file-tree) with all_parses,
 * else only the best parse of each key.
 */
void glob_match_candidates(struct worker *w, const size_t *candidates, size_t count, const char *subject,
			   size_t length)
{
	struct job *job = w->job;
	if (++w->subject_stamp == 0) {
		memset(w->group_stamp, 0, (job->subset_group_count + 1) * sizeof(*w->group_stamp));
		w->subject_stamp = 1;
	}
	w->pending_start = w->result.count;
	for (size_t i = 0; i < count; i++) {
		const struct pattern *p = &job->patterns[candidates[i]];
		if (w->group_stamp[p->subset_group] == w->subject_stamp)
			continue;
		int rc = pcre2_match(p->code, (PCRE2_SPTR)subject, length, 0, 0, w->match_data, job->match_context);
		if (rc < 0 || !read_captures(w, p, subject))
			continue;
		w->group_stamp[p->subset_group] = w->subject_stamp;
		if (!bind_parse(w, p))
			continue;
		if (!job->all_parses) {
			add_pending_parse(w, p, subject, length);
			continue;
		}
		append_file(w, &job->matchers[p->matcher], subject, length);
		collect_slots(w, &job->matchers[p->matcher]);
	}
	if (!job->all_parses)
		keep_best_parse(w);
}
