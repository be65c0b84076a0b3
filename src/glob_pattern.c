/*
 * glob_pattern.c: templates into anchored PCRE2 patterns (cpipe-tree(5),
 * GLOBBING, steps 5 and 6).
 *
 * A template becomes a set of patterns: one per subset of its optional-only
 * placeholders and, within each subset, one per choice of "'*' matches
 * nothing / something", tried in order, the first success winning. Every
 * placeholder is a named group p<N>; a repeated one is a backreference. Each
 * '/'-separated component of a pattern is either plain text (looked up
 * directly, no readdir) or a regex (the directory is read and each entry tried).
 */
#include "glob_int.h"

#include <stdlib.h>
#include <string.h>

/* A template yields 2^(optional-only placeholders + wildcards) patterns: refuse templates past this. */
#define GLOB_MAX_VARIANT_BITS 12

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

void glob_source_release(struct source *src)
{
	template_release(&src->tmpl);
	strvec_release(&src->names);
	FREE_AND_NULL(src->part_name);
	FREE_AND_NULL(src->group_mask);
}

int glob_source_init(struct source *src, const char *text, struct cp_err *err)
{
	memset(src, 0, sizeof(*src));
	if (template_parse(text, &src->tmpl, err) < 0)
		return -1;
	struct strvec required = STRVEC_INIT, optional = STRVEC_INIT;
	template_placeholders(&src->tmpl, &required, &optional);
	/* Optional-only names first, so that they are bits 0..k-1 of a subset mask. */
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
			glob_source_release(src);
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
		glob_source_release(src);
		return -1;
	}
	return 0;
}

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
 * Expand `src` into its patterns. `only_subset` < 0 takes every subset of the
 * optional-only names, else just that one.
 */
int glob_source_each_pattern(const struct source *src, long long only_subset, pattern_fn fn, void *data,
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
