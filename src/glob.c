/*
 * glob: file-tree's update_glob (see /work/shared/spec/file-tree.md §2.2) on PCRE2.
 *
 * A template becomes a set of anchored patterns: one per subset of its
 * optional-only placeholders (file-tree's 2^k globs) and, within each subset,
 * one per choice of "'*' matches nothing / something", tried in order, the
 * first success winning (file-tree's wildcard variants). Every placeholder is
 * a named group p<N>; a repeated one is a backreference. Each '/'-separated
 * component of a pattern is either plain text (looked up directly, no
 * readdir) or a regex (the directory is read and each entry tried).
 *
 * The data directory is walked once per glob_update for all keys together:
 * a directory is entered only when some pattern's components so far accept
 * the path, checked with PCRE2 partial matching. Patterns sharing the same
 * leading components share one check per directory entry.
 *
 * Plain-text components below an unopened directory are checked with one
 * fstatat each ("sub-01/T1w.nii.gz" from the data directory's fd), and each
 * directory that must be read is read whole and sorted, so files come out
 * nearly in path order. The first big directory (the subjects, usually) is
 * shared out in contiguous ranges between up to one thread per core.
 *
 * The walk (glob_update) and glob_match_path share the same matching and
 * binding code: a "job" holds the compiled patterns (read-only while
 * walking) and each "worker" (one per thread) what a successful parse writes.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "cpipe/glob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

/* A template yields 2^(optional-only placeholders + wildcards) patterns: refuse templates past this. */
#define GLOB_MAX_VARIANT_BITS 12
/* Step 3 substitutes every value of lists holding '/': cap the number of combinations. */
#define GLOB_MAX_SUBSTITUTIONS 4096
/* Backtracking budget per match, so a pathological template cannot hang a glob. */
#define GLOB_MATCH_LIMIT 1000000

/*
 * PCRE2's JIT-generated code reads bytes valgrind believes uninitialised, so
 * under valgrind the interpreter is used: same answers, clean reports.
 */
static bool jit_wanted(void)
{
#ifdef RUNNING_ON_VALGRIND
	return !RUNNING_ON_VALGRIND;
#else
	return true;
#endif
}

/* Walk roots: relative templates start at the data directory, '!' ones at the cwd, absolute ones at '/'. */
enum glob_root {
	GLOB_ROOT_DATA,
	GLOB_ROOT_CWD,
	GLOB_ROOT_ABSOLUTE,
	GLOB_ROOT_COUNT,
};

/* ------------------------------------------------------------ field types */

/* What a field matches, by its spec (the parse module's table: a width on d or n limits the digits). */
static void add_field_regex(struct strbuf *re, const struct template_spec *type)
{
	switch (type->kind) {
	case TEMPLATE_KIND_STRING: strbuf_adds(re, "[^/]+?"); break;
	case TEMPLATE_KIND_WHITESPACE: strbuf_adds(re, "\\s+?"); break;
	case TEMPLATE_KIND_INT:
		if (type->width)
			strbuf_addf(re, " *[0-9]{1,%u}", type->width);
		else
			strbuf_adds(re, "[-+ ]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|[0-9]+)");
		break;
	case TEMPLATE_KIND_BINARY: strbuf_adds(re, "(?:0[bB])?[01]+"); break;
	case TEMPLATE_KIND_OCTAL: strbuf_adds(re, "(?:0[oO])?[0-7]+"); break;
	case TEMPLATE_KIND_HEX: strbuf_adds(re, "(?:0[xX])?[0-9a-fA-F]+"); break;
	case TEMPLATE_KIND_FIXED: strbuf_adds(re, "[-+ ]?[0-9]*\\.[0-9]+"); break;
	case TEMPLATE_KIND_EXPONENT:
		strbuf_adds(re, "[-+ ]?(?:(?:[0-9]*\\.[0-9]+|[0-9]+\\.?)[eE][-+]?[0-9]+|(?i:nan|inf))");
		break;
	case TEMPLATE_KIND_GENERAL:
		strbuf_adds(re, "[-+ ]?(?:(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?|(?i:nan|inf))");
		break;
	case TEMPLATE_KIND_PERCENT: strbuf_adds(re, "[-+ ]?(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)%"); break;
	}
}

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

/* ---------------------------------------------------------------- values */

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

/* A key telling distinct values apart: 1 (int) and "1" (string) are different values, as in Python. */
static void add_value_key(struct strbuf *key, const struct tree_value *value)
{
	if (!value->text) {
		strbuf_adds(key, "N;");
		return;
	}
	/* Type, length, text: keys of tuples stay unambiguous whatever bytes names hold. */
	strbuf_addch(key, value->type == TREE_VALUE_INT ? 'I' : value->type == TREE_VALUE_FLOAT ? 'F' : 'S');
	strbuf_add_size(key, strlen(value->text));
	strbuf_addch(key, ':');
	strbuf_adds(key, value->text);
}

static bool has_value(const struct tree_placeholder *placeholder)
{
	if (!placeholder || !placeholder->count)
		return false;
	return placeholder->multiple || placeholder->values[0].text;
}

static const char *last_component(const char *name)
{
	const char *slash = strrchr(name, '/');
	return slash ? slash + 1 : name;
}

/* -------------------------------------------------------------- variants */

/* A template ready to be expanded into variants: its parts and the names of its fields. */
struct source {
	struct template tmpl;
	struct strvec names;         /* every field name, in order of first appearance */
	size_t *part_name;           /* per part: index into names (fields only) */
	size_t optional_name_count;  /* file-tree's O: names that appear only inside [...] */
	uint64_t *group_mask;        /* per group: bits of the O names its fields use */
	size_t star_count;           /* '*' wildcards in the whole template */
};

static void source_release(struct source *src)
{
	template_release(&src->tmpl);
	strvec_release(&src->names);
	FREE_AND_NULL(src->part_name);
	FREE_AND_NULL(src->group_mask);
}

static int source_init(struct source *src, const char *text, struct cp_err *err)
{
	memset(src, 0, sizeof(*src));
	if (template_parse(text, &src->tmpl, err) < 0)
		return -1;
	struct strvec required = STRVEC_INIT, optional = STRVEC_INIT;
	template_placeholders(&src->tmpl, &required, &optional);
	/* O first, so that its names are bits 0..k-1 of a subset mask. */
	for (size_t i = 0; i < optional.count; i++)
		strvec_push(&src->names, optional.items[i]);
	for (size_t i = 0; i < required.count; i++)
		strvec_push(&src->names, required.items[i]);
	src->optional_name_count = optional.count;
	strvec_release(&required);
	strvec_release(&optional);

	src->part_name = xcalloc(src->tmpl.count, sizeof(*src->part_name));
	src->group_mask = xcalloc(src->tmpl.optional_count + 1, sizeof(*src->group_mask));
	for (size_t i = 0; i < src->tmpl.count; i++) {
		const struct template_part *part = &src->tmpl.parts[i];
		if (part->kind == TEMPLATE_STAR)
			src->star_count++;
		if (part->kind != TEMPLATE_FIELD)
			continue;
		/* Every spec is checked here, not only those of occurrences a variant happens to capture with. */
		struct template_spec type;
		if (template_parse_spec(part->spec, &type, err) < 0) {
			cp_err_prefix(err, "template %s: placeholder '%s': ", text, part->text);
			source_release(src);
			return -1;
		}
		size_t name = (size_t)strvec_find(&src->names, part->text);
		src->part_name[i] = name;
		if (part->optional >= 0 && name < src->optional_name_count)
			src->group_mask[part->optional] |= (uint64_t)1 << name;
	}
	if (src->optional_name_count + src->star_count > GLOB_MAX_VARIANT_BITS) {
		cp_err_set(err, NULL, 0,
			   "template %s has %zu optional placeholders and %zu wildcards; at most %d together are supported",
			   text, src->optional_name_count, src->star_count, GLOB_MAX_VARIANT_BITS);
		source_release(src);
		return -1;
	}
	return 0;
}

/* One piece of a variant; literals never hold '/', which separates components instead. */
struct piece {
	enum template_part_kind kind;
	const char *text; /* literal bytes (`len` of them), or the field's name */
	size_t len;
	const char *spec;
	size_t name; /* field: index into the source's names */
};

/* A template with its optional groups resolved, split into normalised '/'-separated components. */
struct variant {
	struct piece *pieces;
	size_t count, cap;
	size_t *starts; /* component i is pieces[starts[i] .. starts[i + 1]) */
	size_t component_count, starts_cap;
	bool absolute;
	size_t star_count;
};

static void variant_release(struct variant *v)
{
	FREE_AND_NULL(v->pieces);
	FREE_AND_NULL(v->starts);
	memset(v, 0, sizeof(*v));
}

static void pieces_push(struct piece **pieces, size_t *count, size_t *cap, const struct piece *piece)
{
	ALLOC_GROW(*pieces, *count + 1, *cap);
	(*pieces)[(*count)++] = *piece;
}

/* True when every piece of raw component [start, end) is literal; their text goes to `out`. */
static bool literal_text(const struct piece *pieces, size_t start, size_t end, struct strbuf *out)
{
	strbuf_reset(out);
	for (size_t i = start; i < end; i++) {
		if (pieces[i].kind != TEMPLATE_LITERAL)
			return false;
		strbuf_add(out, pieces[i].text, pieces[i].len);
	}
	return true;
}

/*
 * Build the variant keeping the groups in `keep_group`, then normalise it as
 * os.path.normpath would (file-tree normalises its glob patterns and
 * matchers): dropping a group can leave "a//b", and "x/.." pops "x".
 */
static void variant_build(struct variant *v, const struct source *src, const bool *keep_group)
{
	struct piece *raw = NULL;
	size_t raw_count = 0, raw_cap = 0;
	size_t *raw_starts = NULL, raw_components = 0, raw_starts_cap = 0;
	ALLOC_GROW(raw_starts, 1, raw_starts_cap);
	raw_starts[0] = 0;
	memset(v, 0, sizeof(*v));
	bool first = true;
	for (size_t i = 0; i < src->tmpl.count; i++) {
		const struct template_part *part = &src->tmpl.parts[i];
		/* A dropped leading group ("[ses-{B}]/f.txt") leaves "/f.txt": relative still, not absolute. */
		if (part->optional >= 0 && !keep_group[part->optional]) {
			first = false;
			continue;
		}
		if (part->kind != TEMPLATE_LITERAL) {
			struct piece piece = {part->kind, part->text, strlen(part->text), part->spec,
					      part->kind == TEMPLATE_FIELD ? src->part_name[i] : 0};
			pieces_push(&raw, &raw_count, &raw_cap, &piece);
			first = false;
			continue;
		}
		for (const char *s = part->text;;) {
			const char *slash = strchr(s, '/');
			size_t len = slash ? (size_t)(slash - s) : strlen(s);
			if (len) {
				struct piece piece = {TEMPLATE_LITERAL, s, len, NULL, 0};
				pieces_push(&raw, &raw_count, &raw_cap, &piece);
			}
			if (!slash)
				break;
			if (first && !raw_count)
				v->absolute = true;
			ALLOC_GROW(raw_starts, raw_components + 2, raw_starts_cap);
			raw_starts[++raw_components] = raw_count;
			s = slash + 1;
		}
		first = false;
	}
	ALLOC_GROW(raw_starts, raw_components + 2, raw_starts_cap);
	raw_starts[++raw_components] = raw_count;

	/* Normalise: drop empty and "." components, let ".." pop the previous one. */
	size_t *kept = xcalloc(raw_components + 1, sizeof(*kept));
	bool *kept_is_parent = xcalloc(raw_components + 1, sizeof(*kept_is_parent));
	size_t kept_count = 0;
	struct strbuf text = STRBUF_INIT;
	for (size_t c = 0; c < raw_components; c++) {
		size_t start = raw_starts[c], end = raw_starts[c + 1];
		if (start == end)
			continue;
		bool literal = literal_text(raw, start, end, &text);
		if (literal && !strcmp(text.buf, "."))
			continue;
		if (literal && !strcmp(text.buf, "..")) {
			if (kept_count && !kept_is_parent[kept_count - 1]) {
				kept_count--;
				continue;
			}
			if (v->absolute)
				continue;
		}
		kept_is_parent[kept_count] = literal && !strcmp(text.buf, "..");
		kept[kept_count++] = c;
	}
	strbuf_release(&text);

	v->starts = xcalloc(kept_count + 2, sizeof(*v->starts));
	v->starts_cap = kept_count + 2;
	for (size_t k = 0; k < kept_count; k++) {
		size_t c = kept[k];
		v->starts[v->component_count++] = v->count;
		for (size_t i = raw_starts[c]; i < raw_starts[c + 1]; i++) {
			pieces_push(&v->pieces, &v->count, &v->cap, &raw[i]);
			if (raw[i].kind == TEMPLATE_STAR)
				v->star_count++;
		}
	}
	if (!v->component_count && !v->absolute) {
		/* Everything normalised away: the path is ".", as normpath gives. */
		struct piece dot = {TEMPLATE_LITERAL, ".", 1, NULL, 0};
		v->starts[v->component_count++] = v->count;
		pieces_push(&v->pieces, &v->count, &v->cap, &dot);
	}
	v->starts[v->component_count] = v->count;
	free(kept);
	free(kept_is_parent);
	free(raw);
	free(raw_starts);
}

/* What building one pattern's regex learned about it. */
struct emitted {
	uint32_t *groups;          /* per source name: capture group number, 0 when absent */
	struct template_spec *types;  /* per source name: the type of its capturing occurrence */
	size_t *component_ends;    /* per component: offset in the regex just after it */
	char **literals;           /* per component: its text when it is plain text, else NULL */
	uint32_t group_count;
};

static void emitted_init(struct emitted *e, size_t name_count, size_t component_count)
{
	e->groups = xcalloc(name_count + 1, sizeof(*e->groups));
	e->types = xcalloc(name_count + 1, sizeof(*e->types));
	e->component_ends = xcalloc(component_count + 1, sizeof(*e->component_ends));
	e->literals = xcalloc(component_count + 1, sizeof(*e->literals));
	e->group_count = 0;
}

static void emitted_release(struct emitted *e, size_t component_count)
{
	for (size_t i = 0; e->literals && i < component_count; i++)
		free(e->literals[i]);
	FREE_AND_NULL(e->groups);
	FREE_AND_NULL(e->types);
	FREE_AND_NULL(e->component_ends);
	FREE_AND_NULL(e->literals);
}

static void add_escaped_literal(struct strbuf *re, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-') {
			strbuf_addch(re, (char)c);
		} else if (c >= 0x20 && c < 0x7f) {
			/* A backslash before any ASCII punctuation makes it literal in PCRE2. */
			strbuf_addch(re, '\\');
			strbuf_addch(re, (char)c);
		} else {
			strbuf_addf(re, "\\x{%02x}", c);
		}
	}
}

/*
 * The regex of variant `v` with '*' number j matching something when bit
 * (star_count - 1 - j) of `star_choice` is set, so choice 0 is "every '*'
 * matches nothing" and the first '*' varies slowest.
 */
static int variant_regex(const struct variant *v, const struct source *src, unsigned star_choice,
			 struct strbuf *re, struct emitted *e, struct cp_err *err)
{
	size_t star = 0;
	struct strbuf literal = STRBUF_INIT;
	strbuf_adds(re, "^");
	if (v->absolute)
		strbuf_addch(re, '/');
	for (size_t c = 0; c < v->component_count; c++) {
		size_t start = v->starts[c], end = v->starts[c + 1];
		bool is_literal = true;
		strbuf_reset(&literal);
		if (c)
			strbuf_addch(re, '/');
		/* glob skips hidden entries unless the pattern's component itself starts with '.'. */
		if (start < end && v->pieces[start].kind != TEMPLATE_LITERAL)
			strbuf_adds(re, "(?!\\.)");
		for (size_t i = start; i < end; i++) {
			const struct piece *piece = &v->pieces[i];
			switch (piece->kind) {
			case TEMPLATE_LITERAL:
				add_escaped_literal(re, piece->text, piece->len);
				strbuf_add(&literal, piece->text, piece->len);
				break;
			case TEMPLATE_QUESTION:
				strbuf_adds(re, "[^/]");
				is_literal = false;
				break;
			case TEMPLATE_STAR:
				if ((star_choice >> (v->star_count - 1 - star)) & 1) {
					strbuf_adds(re, "[^/]+?");
					is_literal = false;
				}
				star++;
				break;
			case TEMPLATE_FIELD:
				is_literal = false;
				if (e->groups[piece->name]) {
					/* A repeated placeholder must capture the same text again. */
					strbuf_addf(re, "\\k<p%zu>", piece->name);
					break;
				}
				if (template_parse_spec(piece->spec, &e->types[piece->name], err) < 0) {
					cp_err_prefix(err, "placeholder '%s': ", src->names.items[piece->name]);
					strbuf_release(&literal);
					return -1;
				}
				e->groups[piece->name] = ++e->group_count;
				strbuf_addf(re, "(?<p%zu>", piece->name);
				add_field_regex(re, &e->types[piece->name]);
				strbuf_addch(re, ')');
				break;
			}
		}
		e->component_ends[c] = re->len;
		if (is_literal)
			e->literals[c] = xstrndup(literal.buf, literal.len);
	}
	strbuf_adds(re, "\\z");
	strbuf_release(&literal);
	return 0;
}

/*
 * Called for each pattern of a template, in the order they are tried:
 * `subset_group` numbers the distinct optional-group choices; within one,
 * patterns differ only in their wildcards and the first success wins.
 */
typedef int (*pattern_fn)(void *data, const struct source *src, size_t subset_group, const struct variant *v,
			  const char *regex, struct emitted *e, struct cp_err *err);

/* Expand `src` into its patterns. `only_subset` < 0 takes every subset of O, else just that one. */
static int source_each_pattern(const struct source *src, long long only_subset, pattern_fn fn, void *data,
			       struct cp_err *err)
{
	size_t subset_count = (size_t)1 << src->optional_name_count;
	bool *keep = xcalloc(src->tmpl.optional_count + 1, sizeof(*keep));
	struct strmap seen = STRMAP_INIT;
	struct strbuf re = STRBUF_INIT;
	size_t subset_group = 0;
	int result = 0;
	for (size_t subset = 0; subset < subset_count && !result; subset++) {
		if (only_subset >= 0 && subset != (size_t)only_subset)
			continue;
		/* A group stays when every optional-only placeholder in it is in the subset. */
		for (size_t g = 0; g < src->tmpl.optional_count; g++)
			keep[g] = !(src->group_mask[g] & ~(uint64_t)subset);
		struct variant v;
		variant_build(&v, src, keep);
		unsigned choices = 1u << v.star_count;
		for (unsigned choice = 0; choice < choices && !result; choice++) {
			struct emitted e;
			emitted_init(&e, src->names.count, v.component_count);
			strbuf_reset(&re);
			result = variant_regex(&v, src, choice, &re, &e, err);
			/* Subsets keeping the same groups give the same patterns: try them once. */
			if (!result && choice == 0 && !strmap_put(&seen, re.buf, 0)) {
				emitted_release(&e, v.component_count);
				break;
			}
			if (!result)
				result = fn(data, src, subset_group, &v, re.buf, &e, err);
			emitted_release(&e, v.component_count);
		}
		subset_group++;
		variant_release(&v);
	}
	strbuf_release(&re);
	strmap_release(&seen);
	free(keep);
	return result;
}

/* ------------------------------------------------------------------- jobs */

enum rule_kind {
	RULE_FILL,   /* no value: capture it and collect it */
	RULE_EQUAL,  /* a singular value: the capture must equal it */
	RULE_MEMBER, /* a list: the capture must be one of its values */
};

struct name_rule {
	enum rule_kind kind;
	const struct tree_placeholder *placeholder; /* EQUAL and MEMBER */
	size_t slot;                                /* the binding the capture goes to */
};

/* One template (after substitution) of one requested key. */
struct matcher {
	const char *key; /* not owned; NULL for glob_match_path */
	size_t key_rank; /* the key's place among the requested keys, sorted */
	enum glob_root root;
	struct source source;
	struct name_rule *rules;      /* per source name */
	struct strvec slot_names;     /* the bindings of its files, sorted */
	struct tree_value *slot_fixed; /* per slot: a singular or substituted value, text NULL when none */
	size_t *slot_collector;       /* per slot: index of the collector it feeds, SIZE_MAX when none */
	size_t *link_slots;           /* per link group, per member: its slot, SIZE_MAX when absent */
};

struct pattern {
	size_t matcher;
	size_t subset_group; /* job-wide id of (matcher, subset) */
	pcre2_code *code;
	uint32_t *groups;         /* per matcher name: capture group, 0 when absent (None) */
	struct template_spec *types; /* per matcher name */
	size_t depth;             /* number of components */
	char **literals;          /* per component: plain text, or NULL for a regex component */
	size_t *classes;          /* per component: id of the regex prefix ending with it */
	size_t *component_ends;
	char *regex;
	bool absolute;
};

/* A link group of the request. */
struct link_group {
	const char *const *names;
	size_t size;
};

/* Distinct values (tuples of `width` values for a link group), in the order first seen. */
struct value_set {
	struct strmap seen;
	struct tree_value *values; /* count * width */
	size_t count, cap;
};

/* Past this many entries a directory's entries are shared out between threads. */
#define GLOB_PARALLEL_MIN_ENTRIES 512
#define GLOB_MAX_WORKERS 4

struct job;

/*
 * What one thread needs to match and record files: the job is read-only
 * during the walk, everything a match writes is here. Worker 0 is the
 * calling thread; the others exist only while a big directory is shared out.
 */
struct worker {
	struct job *job;
	pcre2_match_data *match_data;
	struct strbuf *capture_text, *capture_repr; /* per matcher name */
	struct tree_value *capture_values;
	size_t capture_count;
	const struct tree_value **slot_values;
	struct strbuf key;
	/* Per subject: which subset groups have already succeeded (the first wildcard variant wins). */
	unsigned *group_stamp;
	unsigned subject_stamp;
	struct value_set *collected; /* per job collector */
	struct value_set *linked;    /* per link group */
	struct glob_result result;   /* the files this worker found */
	size_t *file_ranks;          /* per file of `result`: its key's rank */
	size_t file_rank_count, file_rank_cap;
	/* One parse per file: the parses of the current subject and key, waiting for the best to be kept. */
	size_t pending_start;        /* first file of `result` parsed from the current subject and key */
	size_t *pending_matcher;     /* per pending file: its matcher */
	size_t *pending_score;       /* per pending file: optional placeholders present */
	size_t pending_cap;
	struct strvec tie_keys, tie_paths, tie_messages; /* per key: the first file read two ways equally well */

	/* Walk state. */
	const char *root; /* the root directory, for messages */
	struct strbuf subject;
	size_t **levels; /* per depth: the patterns still possible below it */
	size_t *level_caps;
	size_t level_count;
	size_t *finals;
	size_t finals_cap;
	unsigned *class_stamp;
	bool *class_ok;
	unsigned stamp;
	struct cp_err err;
	bool failed;
};

struct job {
	struct tree *tree; /* NULL for glob_match_path */
	bool jit;
	struct matcher *matchers;
	size_t matcher_count, matcher_cap;
	struct pattern *patterns;
	size_t pattern_count, pattern_cap;
	size_t subset_group_count;
	size_t class_count;
	size_t deepest; /* components of the deepest pattern */
	struct strvec collector_names; /* placeholders to collect values of */
	struct strmap collector_index;
	struct link_group *links;
	size_t link_count;
	bool keep_files;  /* whether workers record files */
	bool all_parses;  /* keep every parse of a file (file-tree), not only the best */
	pcre2_match_context *match_context;
	struct worker *workers;
	size_t worker_count;
	bool shared_out; /* a directory was already shared out between workers */
};

static void matcher_release(struct matcher *m)
{
	source_release(&m->source);
	free(m->rules);
	for (size_t s = 0; s < m->slot_names.count; s++)
		tree_value_release(&m->slot_fixed[s]);
	free(m->slot_fixed);
	strvec_release(&m->slot_names);
	free(m->slot_collector);
	free(m->link_slots);
}

static void pattern_release(struct pattern *p)
{
	pcre2_code_free(p->code);
	free(p->groups);
	free(p->types);
	for (size_t c = 0; p->literals && c < p->depth; c++)
		free(p->literals[c]);
	free(p->literals);
	free(p->classes);
	free(p->component_ends);
	free(p->regex);
}

static void value_set_release(struct value_set *set, size_t width)
{
	strmap_release(&set->seen);
	for (size_t v = 0; v < set->count * width; v++)
		tree_value_release(&set->values[v]);
	free(set->values);
	memset(set, 0, sizeof(*set));
}

static void worker_release(struct worker *w)
{
	struct job *job = w->job;
	pcre2_match_data_free(w->match_data);
	for (size_t i = 0; i < w->capture_count; i++) {
		strbuf_release(&w->capture_text[i]);
		strbuf_release(&w->capture_repr[i]);
	}
	free(w->capture_text);
	free(w->capture_repr);
	free(w->capture_values);
	free(w->slot_values);
	strbuf_release(&w->key);
	free(w->group_stamp);
	for (size_t i = 0; w->collected && i < job->collector_names.count; i++)
		value_set_release(&w->collected[i], 1);
	free(w->collected);
	for (size_t g = 0; w->linked && g < job->link_count; g++)
		value_set_release(&w->linked[g], job->links[g].size);
	free(w->linked);
	glob_result_release(&w->result);
	free(w->file_ranks);
	free(w->pending_matcher);
	free(w->pending_score);
	strvec_release(&w->tie_keys);
	strvec_release(&w->tie_paths);
	strvec_release(&w->tie_messages);
	strbuf_release(&w->subject);
	for (size_t i = 0; w->levels && i < w->level_count; i++)
		free(w->levels[i]);
	free(w->levels);
	free(w->level_caps);
	free(w->finals);
	free(w->class_stamp);
	free(w->class_ok);
	cp_err_release(&w->err);
}

static void job_release(struct job *job)
{
	for (size_t i = 0; i < job->worker_count; i++)
		worker_release(&job->workers[i]);
	free(job->workers);
	for (size_t i = 0; i < job->matcher_count; i++)
		matcher_release(&job->matchers[i]);
	free(job->matchers);
	for (size_t i = 0; i < job->pattern_count; i++)
		pattern_release(&job->patterns[i]);
	free(job->patterns);
	strvec_release(&job->collector_names);
	strmap_release(&job->collector_index);
	free(job->links);
	pcre2_match_context_free(job->match_context);
}

static size_t collector_for(struct job *job, const char *name)
{
	size_t index;
	if (strmap_get(&job->collector_index, name, &index))
		return index;
	strmap_put(&job->collector_index, name, job->collector_names.count);
	strvec_push(&job->collector_names, name);
	return job->collector_names.count - 1;
}

/* Compile one pattern of the matcher being built (job->matchers[job->matcher_count - 1]). */
static int add_pattern(void *data, const struct source *src, size_t subset_group, const struct variant *v,
		       const char *regex, struct emitted *e, struct cp_err *err)
{
	struct job *job = data;
	(void)src;
	int code;
	PCRE2_SIZE offset;
	pcre2_code *compiled = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, 0, &code, &offset, NULL);
	if (!compiled) {
		PCRE2_UCHAR message[256];
		pcre2_get_error_message(code, message, sizeof(message));
		cp_err_set(err, NULL, 0, "cannot compile the pattern %s at offset %zu: %s", regex, (size_t)offset,
			   (const char *)message);
		return -1;
	}
	/* JIT is an optimisation only: without it the interpreter gives the same answers. */
	if (job->jit)
		pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
	ALLOC_GROW(job->patterns, job->pattern_count + 1, job->pattern_cap);
	struct pattern *p = &job->patterns[job->pattern_count++];
	memset(p, 0, sizeof(*p));
	p->matcher = job->matcher_count - 1;
	p->subset_group = job->subset_group_count + subset_group;
	p->code = compiled;
	p->depth = v->component_count;
	p->absolute = v->absolute;
	p->regex = xstrdup(regex);
	/* Take the emitted arrays over. */
	p->groups = e->groups;
	p->types = e->types;
	p->component_ends = e->component_ends;
	p->literals = e->literals;
	e->groups = NULL;
	e->types = NULL;
	e->component_ends = NULL;
	e->literals = NULL;
	return 0;
}

/* Compile every pattern of `text` for a new matcher; the caller fills the matcher's rules and slots. */
static int job_add_matcher(struct job *job, const char *key, enum glob_root root, const char *text,
			   struct cp_err *err)
{
	ALLOC_GROW(job->matchers, job->matcher_count + 1, job->matcher_cap);
	struct matcher *m = &job->matchers[job->matcher_count];
	memset(m, 0, sizeof(*m));
	if (source_init(&m->source, text, err) < 0)
		return -1;
	job->matcher_count++;
	m->key = key;
	m->root = root;
	size_t first_pattern = job->pattern_count;
	if (source_each_pattern(&m->source, -1, add_pattern, job, err) < 0)
		return -1;
	size_t groups = 0;
	for (size_t i = first_pattern; i < job->pattern_count; i++)
		if (job->patterns[i].subset_group + 1 - job->subset_group_count > groups)
			groups = job->patterns[i].subset_group + 1 - job->subset_group_count;
	job->subset_group_count += groups;
	return 0;
}

/* Bindings of glob_match_path: every placeholder under its own name, no filters. */
static void matcher_plain_slots(struct matcher *m)
{
	const struct strvec *names = &m->source.names;
	for (size_t i = 0; i < names->count; i++)
		strvec_push(&m->slot_names, names->items[i]);
	strvec_sort(&m->slot_names);
	m->rules = xcalloc(names->count + 1, sizeof(*m->rules));
	for (size_t i = 0; i < names->count; i++) {
		m->rules[i].kind = RULE_FILL;
		m->rules[i].slot = (size_t)strvec_find(&m->slot_names, names->items[i]);
	}
	m->slot_fixed = xcalloc(m->slot_names.count + 1, sizeof(*m->slot_fixed));
	m->slot_collector = xcalloc(m->slot_names.count + 1, sizeof(*m->slot_collector));
	for (size_t s = 0; s < m->slot_names.count; s++)
		m->slot_collector[s] = SIZE_MAX;
}

/*
 * Bindings of glob_update (§2.2 steps 1, 6 and 7): a placeholder with a value
 * filters, one without is collected under its last path component (a scoped
 * P/x with no value falls back to x), and `fixed` (singular and substituted
 * values, names and values) are added to every file.
 */
static void matcher_tree_slots(struct job *job, struct matcher *m, const struct strvec *fixed_names,
			       const struct tree_value *fixed_values)
{
	const struct strvec *names = &m->source.names;
	struct strvec final_names = STRVEC_INIT;
	m->rules = xcalloc(names->count + 1, sizeof(*m->rules));
	for (size_t i = 0; i < names->count; i++) {
		const struct tree_placeholder *placeholder = tree_find_placeholder(job->tree, names->items[i]);
		struct name_rule *rule = &m->rules[i];
		if (has_value(placeholder)) {
			rule->kind = placeholder->multiple ? RULE_MEMBER : RULE_EQUAL;
			rule->placeholder = placeholder;
			strvec_push(&final_names, names->items[i]);
		} else {
			rule->kind = RULE_FILL;
			strvec_push(&final_names, last_component(names->items[i]));
		}
		if (strvec_find(&m->slot_names, final_names.items[i]) < 0)
			strvec_push(&m->slot_names, final_names.items[i]);
	}
	for (size_t i = 0; i < fixed_names->count; i++)
		if (strvec_find(&m->slot_names, fixed_names->items[i]) < 0)
			strvec_push(&m->slot_names, fixed_names->items[i]);
	strvec_sort(&m->slot_names);

	size_t slots = m->slot_names.count;
	m->slot_fixed = xcalloc(slots + 1, sizeof(*m->slot_fixed));
	m->slot_collector = xcalloc(slots + 1, sizeof(*m->slot_collector));
	for (size_t s = 0; s < slots; s++)
		m->slot_collector[s] = SIZE_MAX;
	for (size_t i = 0; i < names->count; i++) {
		size_t slot = (size_t)strvec_find(&m->slot_names, final_names.items[i]);
		m->rules[i].slot = slot;
		if (m->rules[i].kind == RULE_FILL)
			m->slot_collector[slot] = collector_for(job, final_names.items[i]);
	}
	for (size_t i = 0; i < fixed_names->count; i++) {
		size_t slot = (size_t)strvec_find(&m->slot_names, fixed_names->items[i]);
		if (!m->slot_fixed[slot].text)
			tree_value_copy(&m->slot_fixed[slot], &fixed_values[i]);
	}

	size_t members = 0;
	for (size_t g = 0; g < job->link_count; g++)
		members += job->links[g].size;
	m->link_slots = xcalloc(members + 1, sizeof(*m->link_slots));
	size_t at = 0;
	for (size_t g = 0; g < job->link_count; g++) {
		for (size_t k = 0; k < job->links[g].size; k++, at++) {
			const char *name = job->links[g].names[k];
			long slot = strvec_find(&m->slot_names, name);
			if (slot < 0)
				slot = strvec_find(&m->slot_names, last_component(name));
			m->link_slots[at] = slot < 0 ? SIZE_MAX : (size_t)slot;
		}
	}
	strvec_release(&final_names);
}

/* Give each regex prefix ending at a component boundary an id: one partial match per entry and id. */
static void job_assign_classes(struct job *job)
{
	struct strmap classes = STRMAP_INIT;
	struct strbuf key = STRBUF_INIT;
	for (size_t i = 0; i < job->pattern_count; i++) {
		struct pattern *p = &job->patterns[i];
		p->classes = xcalloc(p->depth + 1, sizeof(*p->classes));
		for (size_t c = 0; c < p->depth; c++) {
			strbuf_reset(&key);
			strbuf_addch(&key, (char)('0' + job->matchers[p->matcher].root));
			strbuf_add(&key, p->regex, p->component_ends[c]);
			size_t id;
			if (!strmap_get(&classes, key.buf, &id)) {
				id = job->class_count++;
				strmap_put(&classes, key.buf, id);
			}
			p->classes[c] = id;
		}
	}
	strbuf_release(&key);
	strmap_release(&classes);
}

static void worker_init(struct job *job, struct worker *w, uint32_t most_groups, size_t names, size_t slots)
{
	memset(w, 0, sizeof(*w));
	w->job = job;
	w->match_data = pcre2_match_data_create(most_groups + 1, NULL);
	if (!w->match_data)
		BUG("PCRE2 ran out of memory");
	w->capture_count = names;
	w->capture_text = xcalloc(names + 1, sizeof(*w->capture_text));
	w->capture_repr = xcalloc(names + 1, sizeof(*w->capture_repr));
	for (size_t i = 0; i < names; i++) {
		w->capture_text[i] = (struct strbuf)STRBUF_INIT;
		w->capture_repr[i] = (struct strbuf)STRBUF_INIT;
	}
	w->capture_values = xcalloc(names + 1, sizeof(*w->capture_values));
	w->slot_values = xcalloc(slots + 1, sizeof(*w->slot_values));
	w->key = (struct strbuf)STRBUF_INIT;
	w->group_stamp = xcalloc(job->subset_group_count + 1, sizeof(*w->group_stamp));
	w->collected = xcalloc(job->collector_names.count + 1, sizeof(*w->collected));
	w->linked = xcalloc(job->link_count + 1, sizeof(*w->linked));
	w->result = (struct glob_result)GLOB_RESULT_INIT;
	w->tie_keys = w->tie_paths = w->tie_messages = (struct strvec)STRVEC_INIT;
	w->subject = (struct strbuf)STRBUF_INIT;
	w->level_count = job->deepest + 2;
	w->levels = xcalloc(w->level_count, sizeof(*w->levels));
	w->level_caps = xcalloc(w->level_count, sizeof(*w->level_caps));
	w->class_stamp = xcalloc(job->class_count + 1, sizeof(*w->class_stamp));
	w->class_ok = xcalloc(job->class_count + 1, sizeof(*w->class_ok));
	w->err = (struct cp_err)CP_ERR_INIT;
}

/* Set up `count` workers; worker 0 is the calling thread. */
static void job_prepare_workers(struct job *job, size_t count)
{
	uint32_t most_groups = 0;
	for (size_t i = 0; i < job->pattern_count; i++) {
		uint32_t groups = 0;
		pcre2_pattern_info(job->patterns[i].code, PCRE2_INFO_CAPTURECOUNT, &groups);
		if (groups > most_groups)
			most_groups = groups;
		if (job->patterns[i].depth > job->deepest)
			job->deepest = job->patterns[i].depth;
	}
	job->match_context = pcre2_match_context_create(NULL);
	if (!job->match_context)
		BUG("PCRE2 ran out of memory");
	pcre2_set_match_limit(job->match_context, GLOB_MATCH_LIMIT);
	size_t names = 0, slots = 0;
	for (size_t i = 0; i < job->matcher_count; i++) {
		if (job->matchers[i].source.names.count > names)
			names = job->matchers[i].source.names.count;
		if (job->matchers[i].slot_names.count > slots)
			slots = job->matchers[i].slot_names.count;
	}
	job->worker_count = count;
	job->workers = xcalloc(count, sizeof(*job->workers));
	for (size_t i = 0; i < count; i++)
		worker_init(job, &job->workers[i], most_groups, names, slots);
}

/* Threads worth using: the online processors, within reason. */
static size_t worker_count_wanted(void)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	if (online < 1)
		return 1;
	return online > GLOB_MAX_WORKERS ? GLOB_MAX_WORKERS : (size_t)online;
}

/* ---------------------------------------------------------------- parses */

/* Add `values` (a tuple of `width`) to `set` unless an equal tuple is there. */
static void value_set_add(struct value_set *set, struct strbuf *key, const struct tree_value *const *values,
			  size_t width)
{
	strbuf_reset(key);
	for (size_t k = 0; k < width; k++)
		add_value_key(key, values[k]);
	if (strmap_get(&set->seen, key->buf, NULL))
		return;
	strmap_put(&set->seen, key->buf, set->count);
	ALLOC_GROW(set->values, (set->count + 1) * width, set->cap);
	for (size_t k = 0; k < width; k++)
		tree_value_copy(&set->values[set->count * width + k], values[k]);
	set->count++;
}

static void collect_link(struct worker *w, const struct matcher *m)
{
	const struct job *job = w->job;
	const size_t *members = m->link_slots;
	const struct tree_value *row[64];
	for (size_t g = 0; g < job->link_count; g++, members += job->links[g - 1].size) {
		size_t size = job->links[g].size;
		const struct tree_value **tuple = size <= 64 ? row : xcalloc(size, sizeof(*tuple));
		bool complete = true;
		for (size_t k = 0; k < size && complete; k++) {
			complete = members[k] != SIZE_MAX;
			if (complete)
				tuple[k] = w->slot_values[members[k]];
		}
		/* A file whose template lacks a linked name adds no row. */
		if (complete)
			value_set_add(&w->linked[g], &w->key, tuple, size);
		if (tuple != row)
			free(tuple);
	}
}

/* Record the file; its strings live in one block of the result's storage. */
static void append_file(struct worker *w, const struct matcher *m, const char *subject, size_t length)
{
	struct glob_result *result = &w->result;
	size_t count = m->slot_names.count;
	size_t key_size = m->key ? strlen(m->key) + 1 : 0;
	size_t size = count * sizeof(struct glob_binding) + key_size + length + 1;
	for (size_t s = 0; s < count; s++) {
		size += strlen(m->slot_names.items[s]) + 1;
		if (w->slot_values[s]->text)
			size += strlen(w->slot_values[s]->text) + 1;
	}
	char *block = arena_alloc(&result->storage, size);
	struct glob_binding *bindings = (struct glob_binding *)(void *)block;
	char *at = block + count * sizeof(*bindings);
	ALLOC_GROW(result->files, result->count + 1, result->cap);
	struct glob_file *file = &result->files[result->count++];
	file->key = NULL;
	if (m->key) {
		file->key = memcpy(at, m->key, key_size);
		at += key_size;
	}
	file->path = memcpy(at, subject, length);
	file->path[length] = '\0';
	at += length + 1;
	file->bindings = bindings;
	file->binding_count = count;
	for (size_t s = 0; s < count; s++) {
		const struct tree_value *value = w->slot_values[s];
		size_t name_size = strlen(m->slot_names.items[s]) + 1;
		bindings[s].name = memcpy(at, m->slot_names.items[s], name_size);
		at += name_size;
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

static int compare_optional_text(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static bool same_bindings(const struct glob_file *a, const struct glob_file *b)
{
	if (a->binding_count != b->binding_count)
		return false;
	for (size_t i = 0; i < a->binding_count; i++) {
		const struct tree_value *x = &a->bindings[i].value, *y = &b->bindings[i].value;
		if (strcmp(a->bindings[i].name, b->bindings[i].name) || x->type != y->type ||
		    compare_optional_text(x->text, y->text))
			return false;
	}
	return true;
}

/*
 * Step 6 for one parse: check the captures against pre-set values and bind
 * them to the matcher's slots. False when a filter rejects the parse.
 */
static bool bind_parse(struct worker *w, const struct pattern *p)
{
	const struct matcher *m = &w->job->matchers[p->matcher];
	static const struct tree_value none = {NULL, TREE_VALUE_STRING, 0, 0.0};
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

/* Steps 7-8 for the bound slot values: collect the values and the linked tuples. */
static void collect_slots(struct worker *w, const struct matcher *m)
{
	for (size_t s = 0; s < m->slot_names.count; s++)
		if (m->slot_collector[s] != SIZE_MAX)
			value_set_add(&w->collected[m->slot_collector[s]], &w->key, &w->slot_values[s], 1);
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
	strbuf_adds(&message, "; cpipe kept the first (cpipe glob --all-parses lists every reading)");
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
		    !same_bindings(&result->files[start + best], &result->files[start + i])) {
			note_tie(w, &result->files[start + best], &result->files[start + i]);
			break;
		}
	}
	result->files[start] = result->files[start + best];
	result->count = start + 1;
	w->file_rank_count = start + 1;
	const struct glob_file *file = &result->files[start];
	for (size_t s = 0; s < file->binding_count; s++)
		w->slot_values[s] = &file->bindings[s].value;
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
static void match_candidates(struct worker *w, const size_t *candidates, size_t count, const char *subject,
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
		collect_slots(w, &job->matchers[p->matcher]);
		if (job->keep_files)
			append_file(w, &job->matchers[p->matcher], subject, length);
	}
	if (!job->all_parses)
		keep_best_parse(w);
}

/* ------------------------------------------------------------------ walk */

/* Past this, a path relative to an open ancestor is not handed to the kernel: the directory is opened. */
#define GLOB_MAX_RELATIVE_PATH 1024

/*
 * Where a directory is: `fd` is an open ancestor (or the directory itself),
 * and the path from it is the subject from `offset` on. Directories are
 * opened only when they must be read, so a plain-text file below a regex
 * directory costs one fstatat rather than an open, a stat and a close.
 */
struct place {
	int fd;
	size_t offset;
};

/* Whether `errno` after opening a directory means "nothing there" rather than a failure. */
static bool missing_errno(int error)
{
	return error == ENOENT || error == ENOTDIR || error == ELOOP || error == ENAMETOOLONG;
}

static void subject_push(struct worker *w, const char *name)
{
	if (w->subject.len && w->subject.buf[w->subject.len - 1] != '/')
		strbuf_addch(&w->subject, '/');
	strbuf_adds(&w->subject, name);
}

/* The offset of paths below the subject's directory, once that directory is the open one. */
static size_t offset_below(const struct worker *w)
{
	if (!w->subject.len || w->subject.buf[w->subject.len - 1] == '/')
		return w->subject.len;
	return w->subject.len + 1;
}

static int walk_error(struct worker *w, int error)
{
	cp_err_set(&w->err, NULL, 0, "cannot read directory %s%s%s: %s", w->root,
		   w->subject.len && w->root[strlen(w->root) - 1] != '/' ? "/" : "", w->subject.buf, strerror(error));
	w->failed = true;
	return -1;
}

/* Open the subject's directory; -1 with errno set when that fails. */
static int open_subject(const struct worker *w, struct place place)
{
	if (w->subject.len > place.offset)
		return openat(place.fd, w->subject.buf + place.offset, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fcntl(place.fd, F_DUPFD_CLOEXEC, 0);
}

static void level_push(struct worker *w, size_t level, size_t *count, size_t pattern)
{
	ALLOC_GROW(w->levels[level], *count + 1, w->level_caps[level]);
	w->levels[level][(*count)++] = pattern;
}

static void finals_push(struct worker *w, size_t *count, size_t pattern)
{
	ALLOC_GROW(w->finals, *count + 1, w->finals_cap);
	w->finals[(*count)++] = pattern;
}

static int walk_directory(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count);

/* Plain-text components: look the name up directly, as glob does for components without wildcards. */
static int walk_literals(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count)
{
	struct job *job = w->job;
	size_t base = w->subject.len;
	for (size_t i = 0; i < count; i++) {
		const char *name = job->patterns[active[i]].literals[depth];
		bool seen = !name || !*name;
		for (size_t j = 0; j < i && !seen; j++) {
			const char *other = job->patterns[active[j]].literals[depth];
			seen = other && !strcmp(other, name);
		}
		if (seen)
			continue;
		size_t finals = 0, children = 0;
		for (size_t j = i; j < count; j++) {
			const struct pattern *p = &job->patterns[active[j]];
			if (!p->literals[depth] || strcmp(p->literals[depth], name))
				continue;
			if (p->depth == depth + 1)
				finals_push(w, &finals, active[j]);
			else
				level_push(w, depth + 1, &children, active[j]);
		}
		subject_push(w, name);
		struct stat st;
		/* lexists(), as glob checks a name without wildcards. */
		if (finals && !fstatat(place.fd, w->subject.buf + place.offset, &st, AT_SYMLINK_NOFOLLOW))
			match_candidates(w, w->finals, finals, w->subject.buf, w->subject.len);
		int rc = children ? walk_directory(w, place, depth + 1, w->levels[depth + 1], children) : 0;
		strbuf_setlen(&w->subject, base);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* One directory entry; the names live in a buffer of the reader. */
struct entry {
	const char *name;
	unsigned char type;
};

static int compare_entries(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/*
 * Read all of `dir` but "." and "..", sorted by name, so that files come out
 * nearly in path order and a big directory can be shared out in ranges.
 */
static int read_entries(struct worker *w, DIR *dir, struct strbuf *names, struct entry **out, size_t *count)
{
	size_t *offsets = NULL, offsets_cap = 0, types_cap = 0, n = 0;
	unsigned char *types = NULL;
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *entry = readdir(dir);
		if (!entry) {
			if (errno)
				rc = walk_error(w, errno);
			break;
		}
		const char *name = entry->d_name;
		if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		ALLOC_GROW(offsets, n + 1, offsets_cap);
		ALLOC_GROW(types, n + 1, types_cap);
		offsets[n] = names->len;
		types[n++] = entry->d_type;
		strbuf_add(names, name, strlen(name) + 1);
	}
	/* Names moved while the buffer grew: point at them only now. */
	struct entry *entries = xcalloc(n + 1, sizeof(*entries));
	for (size_t i = 0; i < n; i++) {
		entries[i].name = names->buf + offsets[i];
		entries[i].type = types[i];
	}
	qsort(entries, n, sizeof(*entries), compare_entries);
	free(offsets);
	free(types);
	*out = entries;
	*count = n;
	return rc;
}

/* Regex components: try each entry of the directory (whose fd is `place.fd`). */
static int walk_entries(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count,
			const struct entry *entries, size_t entry_count)
{
	struct job *job = w->job;
	size_t base = w->subject.len;
	for (size_t e = 0; e < entry_count; e++) {
		const char *name = entries[e].name;
		/* Only directories (or what may be one: links, unknown types) can lead further down. */
		unsigned char type = entries[e].type;
		bool maybe_directory = type == DT_DIR || type == DT_LNK || type == DT_UNKNOWN;
		subject_push(w, name);
		if (++w->stamp == 0) {
			memset(w->class_stamp, 0, (job->class_count + 1) * sizeof(*w->class_stamp));
			w->stamp = 1;
		}
		size_t finals = 0, children = 0;
		size_t entry_length = w->subject.len;
		for (size_t i = 0; i < count; i++) {
			const struct pattern *p = &job->patterns[active[i]];
			if (p->literals[depth])
				continue;
			if (p->depth == depth + 1) {
				finals_push(w, &finals, active[i]);
				continue;
			}
			if (!maybe_directory)
				continue;
			size_t id = p->classes[depth];
			if (w->class_stamp[id] != w->stamp) {
				/* "dir/" against the whole pattern: a partial match means something may match below. */
				strbuf_addch(&w->subject, '/');
				int partial = pcre2_match(p->code, (PCRE2_SPTR)w->subject.buf, w->subject.len, 0,
							  PCRE2_PARTIAL_HARD, w->match_data, job->match_context);
				strbuf_setlen(&w->subject, entry_length);
				w->class_stamp[id] = w->stamp;
				w->class_ok[id] = partial == PCRE2_ERROR_PARTIAL;
			}
			if (w->class_ok[id])
				level_push(w, depth + 1, &children, active[i]);
		}
		if (finals)
			match_candidates(w, w->finals, finals, w->subject.buf, w->subject.len);
		int rc = children ? walk_directory(w, place, depth + 1, w->levels[depth + 1], children) : 0;
		strbuf_setlen(&w->subject, base);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* One worker's share of a big directory. */
struct share {
	struct worker *worker;
	struct place place;
	size_t depth;
	const size_t *active;
	size_t count;
	const struct entry *entries;
	size_t entry_count;
	int rc;
};

static void *share_run(void *data)
{
	struct share *share = data;
	share->rc = walk_entries(share->worker, share->place, share->depth, share->active, share->count,
				 share->entries, share->entry_count);
	return NULL;
}

/*
 * Share the entries of a big directory out between the workers in
 * contiguous ranges, so worker k's files sort after worker k-1's. Done once
 * per glob, for the first big directory (where the subjects usually are).
 */
static int walk_shared(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count,
		       const struct entry *entries, size_t entry_count)
{
	struct job *job = w->job;
	size_t workers = job->worker_count;
	job->shared_out = true;
	/* The active list lives in worker 0's scratch, which it keeps using: the others read a copy. */
	size_t *active_copy = xcalloc(count + 1, sizeof(*active_copy));
	memcpy(active_copy, active, count * sizeof(*active_copy));
	struct share *shares = xcalloc(workers, sizeof(*shares));
	pthread_t *threads = xcalloc(workers, sizeof(*threads));
	bool *started = xcalloc(workers, sizeof(*started));
	size_t from = 0;
	for (size_t k = 0; k < workers; k++) {
		size_t to = entry_count * (k + 1) / workers;
		struct worker *worker = &job->workers[k];
		if (k) {
			worker->root = w->root;
			strbuf_reset(&worker->subject);
			strbuf_add(&worker->subject, w->subject.buf, w->subject.len);
		}
		shares[k] = (struct share){worker, place, depth, k ? active_copy : active, count, entries + from,
					   to - from, 0};
		from = to;
	}
	for (size_t k = 1; k < workers; k++)
		started[k] = !pthread_create(&threads[k], NULL, share_run, &shares[k]);
	share_run(&shares[0]);
	int rc = shares[0].rc;
	for (size_t k = 1; k < workers; k++) {
		/* A thread that could not start leaves its share to this one. */
		if (started[k])
			pthread_join(threads[k], NULL);
		else
			share_run(&shares[k]);
		if (shares[k].rc < 0 && rc >= 0) {
			rc = -1;
			cp_err_set(&w->err, NULL, 0, "%s", job->workers[k].err.message);
			w->failed = true;
		}
	}
	free(started);
	free(threads);
	free(shares);
	free(active_copy);
	return rc;
}

static int walk_directory(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count)
{
	bool any_literal = false, any_regex = false;
	for (size_t i = 0; i < count; i++) {
		if (w->job->patterns[active[i]].literals[depth])
			any_literal = true;
		else
			any_regex = true;
	}
	int opened = -1, rc = 0;
	if (w->subject.len > place.offset + GLOB_MAX_RELATIVE_PATH) {
		opened = open_subject(w, place);
		if (opened < 0)
			return missing_errno(errno) ? 0 : walk_error(w, errno);
		place = (struct place){opened, offset_below(w)};
	}
	if (any_literal)
		rc = walk_literals(w, place, depth, active, count);
	if (any_regex && !rc) {
		/* Reading needs the directory open; it then becomes the base of everything below. */
		int fd = open_subject(w, place);
		DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
		if (!dir) {
			int error = errno;
			if (fd >= 0)
				close(fd);
			rc = missing_errno(error) ? 0 : walk_error(w, error);
		} else {
			struct strbuf names = STRBUF_INIT;
			struct entry *entries = NULL;
			size_t entry_count = 0;
			struct place here = {fd, offset_below(w)};
			struct job *job = w->job;
			rc = read_entries(w, dir, &names, &entries, &entry_count);
			if (!rc && w == &job->workers[0] && !job->shared_out && job->worker_count > 1 &&
			    entry_count >= GLOB_PARALLEL_MIN_ENTRIES)
				rc = walk_shared(w, here, depth, active, count, entries, entry_count);
			else if (!rc)
				rc = walk_entries(w, here, depth, active, count, entries, entry_count);
			free(entries);
			strbuf_release(&names);
			closedir(dir);
		}
	}
	if (opened >= 0)
		close(opened);
	return rc;
}

/* Walk from one root with every pattern that starts there (worker 0 leads). */
static int walk_root(struct job *job, enum glob_root root, const char *directory)
{
	struct worker *w = &job->workers[0];
	size_t top = 0, roots = 0;
	for (size_t i = 0; i < job->pattern_count; i++) {
		if (job->matchers[job->patterns[i].matcher].root != root)
			continue;
		if (job->patterns[i].depth)
			level_push(w, 0, &top, i);
		else
			finals_push(w, &roots, i);
	}
	if (!top && !roots)
		return 0;
	w->root = directory;
	strbuf_reset(&w->subject);
	int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		/* A data directory that does not exist simply has no files. */
		return missing_errno(errno) ? 0 : walk_error(w, errno);
	if (root == GLOB_ROOT_ABSOLUTE)
		strbuf_addch(&w->subject, '/');
	int rc = 0;
	/* Only "/" itself has no component. */
	if (roots)
		match_candidates(w, w->finals, roots, w->subject.buf, w->subject.len);
	if (top)
		rc = walk_directory(w, (struct place){fd, w->subject.len}, 0, w->levels[0], top);
	close(fd);
	return rc;
}

/* ---------------------------------------------------------------- results */

void glob_result_release(struct glob_result *result)
{
	strvec_release(&result->warnings);
	FREE_AND_NULL(result->files);
	result->count = 0;
	result->cap = 0;
	arena_release(&result->storage);
}

/* Move `from`'s files (and the storage they live in) to the end of `to`. */
static void result_move(struct glob_result *to, struct glob_result *from)
{
	if (from->count) {
		ALLOC_GROW(to->files, to->count + from->count, to->cap);
		memcpy(to->files + to->count, from->files, from->count * sizeof(*from->files));
		to->count += from->count;
	}
	arena_merge(&to->storage, &from->storage);
	FREE_AND_NULL(from->files);
	from->count = 0;
	from->cap = 0;
}

/* Stable merge sort by path: the parses of one file keep their order. */
static void sort_by_path(struct glob_file *files, struct glob_file *scratch, size_t count)
{
	if (count < 2)
		return;
	size_t half = count / 2;
	sort_by_path(files, scratch, half);
	sort_by_path(files + half, scratch, count - half);
	if (strcmp(files[half - 1].path, files[half].path) <= 0)
		return;
	size_t i = 0, j = half, k = 0;
	while (i < half && j < count)
		scratch[k++] = strcmp(files[j].path, files[i].path) < 0 ? files[j++] : files[i++];
	while (i < half)
		scratch[k++] = files[i++];
	while (j < count)
		scratch[k++] = files[j++];
	memcpy(files, scratch, count * sizeof(*files));
}

/*
 * Order files by key rank (a stable counting sort), then by path. Walking
 * sorted directories already gives paths nearly in order, and the merge sort
 * skips runs that are in order, so this is close to linear.
 */
static void sort_files(struct glob_file *files, const size_t *ranks, size_t count, size_t rank_count)
{
	if (!count)
		return;
	size_t *starts = xcalloc(rank_count + 2, sizeof(*starts));
	for (size_t i = 0; i < count; i++)
		starts[ranks[i] + 1]++;
	for (size_t r = 0; r < rank_count; r++)
		starts[r + 1] += starts[r];
	struct glob_file *sorted = xcalloc(count + 1, sizeof(*sorted));
	size_t *next = xcalloc(rank_count + 1, sizeof(*next));
	memcpy(next, starts, rank_count * sizeof(*next));
	for (size_t i = 0; i < count; i++)
		sorted[next[ranks[i]]++] = files[i];
	for (size_t r = 0; r < rank_count; r++)
		sort_by_path(sorted + starts[r], files, starts[r + 1] - starts[r]);
	memcpy(files, sorted, count * sizeof(*files));
	free(next);
	free(sorted);
	free(starts);
}

/* A file parsed several ways with the same bindings is kept once (files of one key and path are adjacent). */
static void result_unique(struct glob_result *result, size_t start)
{
	size_t kept = start, run = start;
	for (size_t i = start; i < result->count; i++) {
		struct glob_file *file = &result->files[i];
		if (kept == start || compare_optional_text(file->key, result->files[run].key) ||
		    strcmp(file->path, result->files[run].path))
			run = kept;
		bool duplicate = false;
		for (size_t j = run; j < kept && !duplicate; j++)
			duplicate = same_bindings(&result->files[j], file);
		if (!duplicate)
			result->files[kept++] = *file;
	}
	result->count = kept;
}

/* Gather every worker's files into `result`, sorted by key then path, without duplicated parses. */
static void job_collect_files(struct job *job, struct glob_result *result, size_t rank_count, bool sort)
{
	size_t start = result->count, total = 0;
	for (size_t k = 0; k < job->worker_count; k++)
		total += job->workers[k].result.count;
	size_t *ranks = xcalloc(total + 1, sizeof(*ranks));
	size_t at = 0;
	for (size_t k = 0; k < job->worker_count; k++) {
		struct worker *w = &job->workers[k];
		if (w->file_rank_count)
			memcpy(ranks + at, w->file_ranks, w->file_rank_count * sizeof(*ranks));
		at += w->file_rank_count;
		result_move(result, &w->result);
	}
	if (sort && total)
		sort_files(result->files + start, ranks, total, rank_count);
	result_unique(result, start);
	free(ranks);
}

/* One warning per key read two ways equally well, for its smallest such path, sorted by key. */
static void job_collect_ties(struct job *job, struct strvec *warnings)
{
	struct strvec keys = STRVEC_INIT, paths = STRVEC_INIT, messages = STRVEC_INIT;
	for (size_t k = 0; k < job->worker_count; k++) {
		const struct worker *w = &job->workers[k];
		for (size_t i = 0; i < w->tie_keys.count; i++) {
			long at = strvec_find(&keys, w->tie_keys.items[i]);
			if (at < 0) {
				strvec_push(&keys, w->tie_keys.items[i]);
				strvec_push(&paths, w->tie_paths.items[i]);
				strvec_push(&messages, w->tie_messages.items[i]);
			} else if (strcmp(w->tie_paths.items[i], paths.items[at]) < 0) {
				free(paths.items[at]);
				paths.items[at] = xstrdup(w->tie_paths.items[i]);
				free(messages.items[at]);
				messages.items[at] = xstrdup(w->tie_messages.items[i]);
			}
		}
	}
	/* Each message starts with its key, so sorting the messages sorts by key. */
	strvec_sort(&messages);
	for (size_t i = 0; i < messages.count; i++)
		strvec_push(warnings, messages.items[i]);
	strvec_release(&keys);
	strvec_release(&paths);
	strvec_release(&messages);
}

/* ------------------------------------------------------------ glob_update */

/*
 * Step 3: a list value holding '/' cannot be captured (captures never hold
 * '/'), so the template is expanded once per value. `text` has the singular
 * values in; each resulting template and its substituted values go to a new
 * matcher.
 */
struct expansion {
	const char *name;
	const struct tree_placeholder *placeholder;
};

static int substitute_choice(const struct source *src, const struct expansion *expansions, size_t expansion_count,
			     const size_t *choice, struct strbuf *out, bool *possible, struct cp_err *err)
{
	const struct template *t = &src->tmpl;
	bool *dropped = xcalloc(t->optional_count + 1, sizeof(*dropped));
	*possible = true;
	/* A None value drops its optional groups; in a required place the combination cannot exist. */
	for (size_t i = 0; i < t->count; i++) {
		const struct template_part *part = &t->parts[i];
		if (part->kind != TEMPLATE_FIELD)
			continue;
		for (size_t e = 0; e < expansion_count; e++) {
			if (strcmp(part->text, expansions[e].name) || expansions[e].placeholder->values[choice[e]].text)
				continue;
			if (part->optional < 0)
				*possible = false;
			else
				dropped[part->optional] = true;
		}
	}
	int open = -1, rc = 0;
	strbuf_reset(out);
	for (size_t i = 0; i < t->count && *possible && !rc; i++) {
		const struct template_part *part = &t->parts[i];
		if (part->optional >= 0 && dropped[part->optional])
			continue;
		if (part->optional != open) {
			if (open >= 0)
				strbuf_addch(out, ']');
			if (part->optional >= 0)
				strbuf_addch(out, '[');
			open = part->optional;
		}
		if (part->kind != TEMPLATE_FIELD) {
			strbuf_adds(out, part->text);
			continue;
		}
		const char *value = NULL;
		for (size_t e = 0; e < expansion_count && !value; e++)
			if (!strcmp(part->text, expansions[e].name))
				value = expansions[e].placeholder->values[choice[e]].text;
		if (value) {
			rc = template_format(part->spec, value, out, err);
			continue;
		}
		template_add_field(out, part->text, strlen(part->text), part->spec, part->spec ? strlen(part->spec) : 0);
	}
	if (open >= 0)
		strbuf_addch(out, ']');
	free(dropped);
	return rc;
}

static enum glob_root template_root(const struct tree *tree, size_t index, const char *path)
{
	if (path[0] == '/')
		return GLOB_ROOT_ABSOLUTE;
	return tree_template_is_external(tree, index) ? GLOB_ROOT_CWD : GLOB_ROOT_DATA;
}

/* Steps 1-3 for one key: its matchers, with their fixed values and filters. */
static int job_add_key(struct job *job, const char *key, struct cp_err *err)
{
	struct tree *tree = job->tree;
	long index = tree_find_template(tree, key, err);
	if (index < 0)
		return -1;
	const char *path = tree->templates[index].path;
	enum glob_root root = template_root(tree, (size_t)index, path);
	struct strbuf substituted = STRBUF_INIT, text = STRBUF_INIT;
	struct strvec fixed_names = STRVEC_INIT;
	struct tree_value *fixed_values = NULL;
	struct source original = {0}, source = {0};
	struct expansion *expansions = NULL;
	size_t *choice = NULL;
	int rc = -1;

	/* Step 6 adds the singular values of the template's own placeholders to every file. */
	if (source_init(&original, path, err) < 0)
		goto done;
	fixed_values = xcalloc(original.names.count + 16, sizeof(*fixed_values));
	for (size_t i = 0; i < original.names.count; i++) {
		const struct tree_placeholder *placeholder = tree_find_placeholder(tree, original.names.items[i]);
		if (has_value(placeholder) && !placeholder->multiple) {
			fixed_values[fixed_names.count] = placeholder->values[0];
			strvec_push(&fixed_names, original.names.items[i]);
		}
	}
	if (tree_substitute_singular(tree, path, &substituted, err) < 0 ||
	    source_init(&source, substituted.buf, err) < 0)
		goto done;

	size_t expansion_count = 0, combinations = 1;
	expansions = xcalloc(source.names.count + 1, sizeof(*expansions));
	for (size_t i = 0; i < source.names.count; i++) {
		const struct tree_placeholder *placeholder = tree_find_placeholder(tree, source.names.items[i]);
		if (!has_value(placeholder) || !placeholder->multiple)
			continue;
		bool slash = false;
		for (size_t v = 0; v < placeholder->count && !slash; v++)
			slash = placeholder->values[v].text && strchr(placeholder->values[v].text, '/');
		if (!slash)
			continue;
		expansions[expansion_count].name = source.names.items[i];
		expansions[expansion_count++].placeholder = placeholder;
		combinations *= placeholder->count;
		if (combinations > GLOB_MAX_SUBSTITUTIONS) {
			cp_err_set(err, NULL, 0,
				   "template %s: more than %d combinations of values holding '/' to substitute", path,
				   GLOB_MAX_SUBSTITUTIONS);
			goto done;
		}
	}
	if (!expansion_count) {
		if (job_add_matcher(job, key, root, substituted.buf, err) < 0)
			goto done;
		matcher_tree_slots(job, &job->matchers[job->matcher_count - 1], &fixed_names, fixed_values);
		rc = 0;
		goto done;
	}
	choice = xcalloc(expansion_count, sizeof(*choice));
	size_t base_fixed = fixed_names.count;
	for (size_t combination = 0; combination < combinations; combination++) {
		size_t rest = combination;
		for (size_t e = expansion_count; e-- > 0;) {
			choice[e] = rest % expansions[e].placeholder->count;
			rest /= expansions[e].placeholder->count;
		}
		bool possible;
		if (substitute_choice(&source, expansions, expansion_count, choice, &text, &possible, err) < 0)
			goto done;
		if (!possible)
			continue;
		while (fixed_names.count > base_fixed)
			free(fixed_names.items[--fixed_names.count]);
		struct tree_value *values = xcalloc(base_fixed + expansion_count + 1, sizeof(*values));
		memcpy(values, fixed_values, base_fixed * sizeof(*values));
		for (size_t e = 0; e < expansion_count; e++) {
			if (!expansions[e].placeholder->values[choice[e]].text)
				continue;
			values[fixed_names.count] = expansions[e].placeholder->values[choice[e]];
			strvec_push(&fixed_names, expansions[e].name);
		}
		int added = job_add_matcher(job, key, root, text.buf, err);
		if (!added)
			matcher_tree_slots(job, &job->matchers[job->matcher_count - 1], &fixed_names, values);
		free(values);
		if (added < 0)
			goto done;
	}
	rc = 0;
done:
	if (rc < 0)
		cp_err_prefix(err, "key '%s': ", key);
	free(choice);
	free(expansions);
	source_release(&original);
	source_release(&source);
	free(fixed_values);
	strvec_release(&fixed_names);
	strbuf_release(&substituted);
	strbuf_release(&text);
	return rc;
}

static int compare_values(const void *a, const void *b)
{
	return tree_value_compare(a, b);
}

/* One row of a link group, for sorting rows column by column. */
struct row_ref {
	const struct tree_value *values;
	size_t size;
};

static int compare_rows(const void *left, const void *right)
{
	const struct row_ref *a = left, *b = right;
	for (size_t k = 0; k < a->size; k++) {
		int c = tree_value_compare(&a->values[k], &b->values[k]);
		if (c)
			return c;
	}
	return 0;
}

static void sort_rows(struct tree_value *rows, size_t count, size_t size)
{
	if (count < 2)
		return;
	struct row_ref *refs = xcalloc(count + 1, sizeof(*refs));
	struct tree_value *sorted = xcalloc(count * size + 1, sizeof(*sorted));
	for (size_t i = 0; i < count; i++) {
		refs[i].values = &rows[i * size];
		refs[i].size = size;
	}
	qsort(refs, count, sizeof(*refs), compare_rows);
	for (size_t i = 0; i < count; i++)
		memcpy(&sorted[i * size], refs[i].values, size * sizeof(*sorted));
	memcpy(rows, sorted, count * size * sizeof(*sorted));
	free(sorted);
	free(refs);
}

/* Steps 8 and 9: merge what the workers collected and store it in the tree. */
static int job_store(struct job *job, struct cp_err *err)
{
	struct worker *main_worker = &job->workers[0];
	for (size_t k = 1; k < job->worker_count; k++) {
		struct worker *w = &job->workers[k];
		for (size_t i = 0; i < job->collector_names.count; i++) {
			const struct value_set *set = &w->collected[i];
			for (size_t v = 0; v < set->count; v++) {
				const struct tree_value *value = &set->values[v];
				value_set_add(&main_worker->collected[i], &main_worker->key, &value, 1);
			}
		}
		for (size_t g = 0; g < job->link_count; g++) {
			size_t size = job->links[g].size;
			const struct value_set *set = &w->linked[g];
			const struct tree_value **tuple = xcalloc(size + 1, sizeof(*tuple));
			for (size_t r = 0; r < set->count; r++) {
				for (size_t c = 0; c < size; c++)
					tuple[c] = &set->values[r * size + c];
				value_set_add(&main_worker->linked[g], &main_worker->key, tuple, size);
			}
			free(tuple);
		}
	}
	for (size_t i = 0; i < job->collector_names.count; i++) {
		struct value_set *set = &main_worker->collected[i];
		if (!set->count)
			continue;
		qsort(set->values, set->count, sizeof(*set->values), compare_values);
		tree_set_placeholder(job->tree, job->collector_names.items[i], set->values, set->count, true);
	}
	for (size_t g = 0; g < job->link_count; g++) {
		const struct link_group *link = &job->links[g];
		struct value_set *set = &main_worker->linked[g];
		sort_rows(set->values, set->count, link->size);
		struct tree_value *column = xcalloc(set->count + 1, sizeof(*column));
		for (size_t k = 0; k < link->size; k++) {
			for (size_t r = 0; r < set->count; r++)
				column[r] = set->values[r * link->size + k];
			tree_set_placeholder(job->tree, link->names[k], column, set->count, true);
		}
		free(column);
		if (set->count && tree_link(job->tree, link->names, link->size, err) < 0)
			return -1;
	}
	return 0;
}

int glob_update(struct tree *tree, const struct glob_request *request, struct glob_result *result,
		struct cp_err *err)
{
	struct job job = {0};
	job.tree = tree;
	job.jit = jit_wanted();
	job.all_parses = request->all_parses;
	/* Choosing one parse per file needs the parses recorded, even when no one reads the files. */
	job.keep_files = result != NULL || !job.all_parses;
	struct strvec keys = STRVEC_INIT;
	int rc = -1;

	job.links = xcalloc(request->link_count + 1, sizeof(*job.links));
	for (size_t g = 0; g < request->link_count; g++) {
		if (!request->link_sizes[g])
			continue;
		job.links[job.link_count].names = request->links[g];
		job.links[job.link_count++].size = request->link_sizes[g];
	}
	for (size_t i = 0; i < request->key_count; i++) {
		if (strvec_find(&keys, request->keys[i]) >= 0)
			continue;
		strvec_push(&keys, request->keys[i]);
		if (job_add_key(&job, request->keys[i], err) < 0)
			goto done;
	}
	/* A link name no globbed template uses would silently empty the group. */
	for (size_t g = 0, at = 0; g < job.link_count; g++) {
		for (size_t k = 0; k < job.links[g].size; k++, at++) {
			bool used = false;
			for (size_t m = 0; m < job.matcher_count && !used; m++)
				used = job.matchers[m].link_slots[at] != SIZE_MAX;
			if (!used) {
				cp_err_set(err, NULL, 0, "cannot link '%s': no globbed template has this placeholder",
					   job.links[g].names[k]);
				goto done;
			}
		}
	}
	/* Rank each matcher's key by name: results sort by key, then path. */
	strvec_sort(&keys);
	for (size_t m = 0; m < job.matcher_count; m++)
		job.matchers[m].key_rank = (size_t)strvec_find(&keys, job.matchers[m].key);
	job_assign_classes(&job);
	job_prepare_workers(&job, worker_count_wanted());
	const char *directories[GLOB_ROOT_COUNT] = {request->root ? request->root : ".", ".", "/"};
	for (int root = 0; root < GLOB_ROOT_COUNT; root++) {
		if (walk_root(&job, (enum glob_root)root, directories[root]) < 0) {
			cp_err_set(err, NULL, 0, "%s", job.workers[0].err.message);
			goto done;
		}
	}
	if (job_store(&job, err) < 0)
		goto done;
	if (result) {
		job_collect_files(&job, result, keys.count, true);
		job_collect_ties(&job, &result->warnings);
	}
	rc = 0;
done:
	strvec_release(&keys);
	job_release(&job);
	return rc;
}

/* ---------------------------------------------------------- single paths */

struct regex_lines {
	struct strbuf *out;
	size_t count;
};

static int add_regex_line(void *data, const struct source *src, size_t subset_group, const struct variant *v,
			  const char *regex, struct emitted *e, struct cp_err *err)
{
	struct regex_lines *lines = data;
	(void)src, (void)subset_group, (void)v, (void)e, (void)err;
	if (lines->count++)
		strbuf_addch(lines->out, '\n');
	strbuf_adds(lines->out, regex);
	return 0;
}

int glob_template_regex(const char *template_text, bool with_optionals, struct strbuf *out, struct cp_err *err)
{
	struct source src;
	if (source_init(&src, template_text, err) < 0)
		return -1;
	long long subset = with_optionals ? (long long)(((uint64_t)1 << src.optional_name_count) - 1) : 0;
	struct regex_lines lines = {out, 0};
	int rc = source_each_pattern(&src, subset, add_regex_line, &lines, err);
	source_release(&src);
	return rc;
}

int glob_match_path(const char *template_text, const char *path, bool all_parses, struct glob_result *matches,
		    struct cp_err *err)
{
	struct job job = {0};
	struct glob_result local = GLOB_RESULT_INIT;
	struct glob_result *target = matches ? matches : &local;
	size_t first_file = target->count;
	int rc = -1;
	job.jit = false;
	job.keep_files = true;
	job.all_parses = all_parses;
	if (job_add_matcher(&job, NULL, GLOB_ROOT_DATA, template_text, err) < 0)
		goto done;
	matcher_plain_slots(&job.matchers[0]);
	job_prepare_workers(&job, 1);
	size_t *all = xcalloc(job.pattern_count + 1, sizeof(*all));
	for (size_t i = 0; i < job.pattern_count; i++)
		all[i] = i;
	match_candidates(&job.workers[0], all, job.pattern_count, path, strlen(path));
	free(all);
	/* Count distinct parses: the same bindings reached through two subsets count once. */
	job_collect_files(&job, target, 1, false);
	rc = (int)(target->count - first_file);
done:
	glob_result_release(&local);
	job_release(&job);
	return rc;
}
