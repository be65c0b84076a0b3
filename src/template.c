#include "cpipe/template.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void push_part(struct template *t, enum template_part_kind kind, const char *text, size_t len,
		      const char *spec, size_t spec_len, int optional)
{
	/* Adjacent literals of the same group merge, so matchers see one run of text. */
	if (kind == TEMPLATE_LITERAL && t->count) {
		struct template_part *last = &t->parts[t->count - 1];
		if (last->kind == TEMPLATE_LITERAL && last->optional == optional) {
			size_t old = strlen(last->text);
			last->text = xrealloc(last->text, old + len + 1);
			memcpy(last->text + old, text, len);
			last->text[old + len] = '\0';
			return;
		}
	}
	if (kind == TEMPLATE_LITERAL && !len)
		return;
	ALLOC_GROW(t->parts, t->count + 1, t->cap);
	struct template_part *p = &t->parts[t->count++];
	p->kind = kind;
	p->text = xstrndup(text, len);
	p->spec = spec ? xstrndup(spec, spec_len) : NULL;
	p->optional = optional;
}

/* ------------------------------------------------------------------ scanning */

/*
 * The one reading of the template grammar: template_parse and
 * template_scan_fields both see a template as this sequence of tokens.
 */
enum scan_token {
	SCAN_TEXT,         /* bytes outside fields ('*' and '?' included) */
	SCAN_FIELD,        /* {name} or {name:spec} */
	SCAN_GROUP_OPEN,   /* the '[' of an optional group */
	SCAN_GROUP_CLOSE,  /* its ']' */
	SCAN_NESTED_GROUP, /* a group holds '[': from here on, the text is scanned outside any group */
};

struct scan_piece {
	enum scan_token token;
	const char *text; /* TEXT: the bytes; FIELD: the name; NESTED_GROUP: the rest of the template */
	size_t len;
	const char *spec; /* FIELD: after ':', or NULL */
	size_t spec_len;
};

typedef int (*scan_fn)(void *data, const struct scan_piece *piece, struct cp_err *err);

static int scan_emit(scan_fn fn, void *data, enum scan_token token, const char *text, size_t len,
		     struct cp_err *err)
{
	struct scan_piece piece = {token, text, len, NULL, 0};
	return fn(data, &piece, err);
}

/* Fields within one group's text (or within text outside groups); an unclosed '{' is text. */
static int scan_run(const char *s, size_t len, scan_fn fn, void *data, struct cp_err *err)
{
	size_t i = 0;
	while (i < len) {
		const char *open = memchr(s + i, '{', len - i);
		const char *close = open ? memchr(open + 1, '}', len - (size_t)(open + 1 - s)) : NULL;
		if (!close)
			return scan_emit(fn, data, SCAN_TEXT, s + i, len - i, err);
		if (open > s + i && scan_emit(fn, data, SCAN_TEXT, s + i, (size_t)(open - s) - i, err) < 0)
			return -1;
		const char *body = open + 1;
		size_t body_len = (size_t)(close - body);
		const char *colon = memchr(body, ':', body_len);
		size_t name_len = colon ? (size_t)(colon - body) : body_len;
		struct scan_piece field = {SCAN_FIELD, body, name_len, colon ? colon + 1 : NULL,
					   colon ? body_len - name_len - 1 : 0};
		if (fn(data, &field, err) < 0)
			return -1;
		i = (size_t)(close - s) + 1;
	}
	return 0;
}

/* Groups first ('[' up to the next ']'; an unclosed '[' is text), then fields inside each run. */
static int scan(const char *text, scan_fn fn, void *data, struct cp_err *err)
{
	size_t len = strlen(text), start = 0, i = 0;
	while (i < len) {
		const char *open = memchr(text + i, '[', len - i);
		const char *close = open ? memchr(open + 1, ']', len - (size_t)(open + 1 - text)) : NULL;
		/* No ']' after this '[' means none after any later '[' either. */
		if (!close)
			break;
		i = (size_t)(open - text);
		size_t body = i + 1, body_len = (size_t)(close - text) - body;
		if (memchr(text + body, '[', body_len)) {
			if (scan_emit(fn, data, SCAN_NESTED_GROUP, text + start, len - start, err) < 0)
				return -1;
			break;
		}
		if (scan_run(text + start, i - start, fn, data, err) < 0 ||
		    scan_emit(fn, data, SCAN_GROUP_OPEN, text + i, 1, err) < 0 ||
		    scan_run(text + body, body_len, fn, data, err) < 0 ||
		    scan_emit(fn, data, SCAN_GROUP_CLOSE, close, 1, err) < 0)
			return -1;
		i = (size_t)(close - text) + 1;
		start = i;
	}
	return scan_run(text + start, len - start, fn, data, err);
}

/* ------------------------------------------------------------------- parsing */

struct parse_state {
	const char *whole;     /* the template, for messages */
	struct template *out;
	struct template group; /* the parts of the open group, until its ']' */
	bool in_group;
	int group_count;       /* groups holding a field so far */
};

static void add_text(struct template *t, const char *s, size_t len, int optional)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '*' || s[i] == '?')
			push_part(t, s[i] == '*' ? TEMPLATE_STAR : TEMPLATE_QUESTION, &s[i], 1, NULL, 0, optional);
		else
			push_part(t, TEMPLATE_LITERAL, &s[i], 1, NULL, 0, optional);
	}
}

/* A group's parts join the template at its ']': a group without a placeholder is plain text. */
static void close_group(struct parse_state *state)
{
	bool has_field = false;
	for (size_t p = 0; p < state->group.count; p++)
		has_field |= state->group.parts[p].kind == TEMPLATE_FIELD;
	for (size_t p = 0; p < state->group.count; p++) {
		const struct template_part *part = &state->group.parts[p];
		push_part(state->out, part->kind, part->text, strlen(part->text), part->spec,
			  part->spec ? strlen(part->spec) : 0, has_field ? state->group_count : -1);
	}
	template_release(&state->group);
	if (has_field)
		state->group_count++;
	state->in_group = false;
}

static int parse_piece(void *data, const struct scan_piece *piece, struct cp_err *err)
{
	struct parse_state *state = data;
	struct template *target = state->in_group ? &state->group : state->out;
	int optional = state->in_group ? state->group_count : -1;
	switch (piece->token) {
	case SCAN_TEXT:
		add_text(target, piece->text, piece->len, optional);
		return 0;
	case SCAN_FIELD:
		if (piece->spec && memchr(piece->spec, ':', piece->spec_len)) {
			cp_err_set(err, NULL, 0, "too many ':' in placeholder '{%.*s}' of template %s",
				   (int)(piece->len + 1 + piece->spec_len), piece->text, state->whole);
			return -1;
		}
		push_part(target, TEMPLATE_FIELD, piece->text, piece->len, piece->spec, piece->spec_len, optional);
		return 0;
	case SCAN_GROUP_OPEN:
		state->in_group = true;
		return 0;
	case SCAN_GROUP_CLOSE:
		close_group(state);
		return 0;
	case SCAN_NESTED_GROUP:
		cp_err_set(err, NULL, 0, "can not parse %s, because unmatching square brackets were found",
			   state->whole);
		return -1;
	}
	return 0;
}

int template_parse(const char *text, struct template *out, struct cp_err *err)
{
	struct parse_state state = {text, out, TEMPLATE_INIT, false, 0};
	if (scan(text, parse_piece, &state, err) < 0) {
		template_release(&state.group);
		template_release(out);
		return -1;
	}
	out->optional_count = (size_t)state.group_count;
	return 0;
}

void template_release(struct template *tmpl)
{
	for (size_t i = 0; i < tmpl->count; i++) {
		free(tmpl->parts[i].text);
		free(tmpl->parts[i].spec);
	}
	FREE_AND_NULL(tmpl->parts);
	tmpl->count = 0;
	tmpl->cap = 0;
	tmpl->optional_count = 0;
}

/* ----------------------------------------------------------------- rewriting */

struct rewrite_state {
	template_field_fn fn;
	void *data;
	struct strbuf *out;
};

static int rewrite_piece(void *data, const struct scan_piece *piece, struct cp_err *err)
{
	struct rewrite_state *state = data;
	switch (piece->token) {
	case SCAN_TEXT:
	case SCAN_GROUP_OPEN:
	case SCAN_GROUP_CLOSE:
		strbuf_add(state->out, piece->text, piece->len);
		return 0;
	case SCAN_FIELD:
		return state->fn(state->data, piece->text, piece->len, piece->spec, piece->spec_len, state->out, err);
	case SCAN_NESTED_GROUP:
		/* Its text comes next, as text and fields outside any group. */
		return 0;
	}
	return 0;
}

int template_scan_fields(const char *text, template_field_fn fn, void *data, struct strbuf *out,
			 struct cp_err *err)
{
	struct rewrite_state state = {fn, data, out};
	return scan(text, rewrite_piece, &state, err);
}

void template_add_field(struct strbuf *out, const char *name, size_t name_len, const char *spec, size_t spec_len)
{
	strbuf_addch(out, '{');
	strbuf_add(out, name, name_len);
	if (spec) {
		strbuf_addch(out, ':');
		strbuf_add(out, spec, spec_len);
	}
	strbuf_addch(out, '}');
}

void template_add_part(struct strbuf *out, const struct template_part *part)
{
	if (part->kind == TEMPLATE_FIELD)
		template_add_field(out, part->text, strlen(part->text), part->spec, part->spec ? strlen(part->spec) : 0);
	else
		strbuf_adds(out, part->text);
}

/* ------------------------------------------------------------- format specs */

static enum template_field_kind kind_of_type(char type)
{
	switch (type) {
	case 'd': case 'n': return TEMPLATE_KIND_INT;
	case 'b': return TEMPLATE_KIND_BINARY;
	case 'o': return TEMPLATE_KIND_OCTAL;
	case 'x': case 'X': return TEMPLATE_KIND_HEX;
	case 'f': case 'F': return TEMPLATE_KIND_FIXED;
	case 'e': case 'E': return TEMPLATE_KIND_EXPONENT;
	case 'g': case 'G': return TEMPLATE_KIND_GENERAL;
	case '%': return TEMPLATE_KIND_PERCENT;
	case 's': return TEMPLATE_KIND_WHITESPACE;
	default: return TEMPLATE_KIND_STRING;
	}
}

bool template_kind_is_int(enum template_field_kind kind)
{
	return kind >= TEMPLATE_KIND_INT && kind <= TEMPLATE_KIND_HEX;
}

bool template_kind_is_float(enum template_field_kind kind)
{
	return kind >= TEMPLATE_KIND_FIXED && kind <= TEMPLATE_KIND_PERCENT;
}

int template_parse_spec(const char *spec, struct template_spec *out, struct cp_err *err)
{
	const char *s = spec ? spec : "";
	out->zero = false;
	out->width = 0;
	out->precision = -1;
	out->type = '\0';
	out->kind = TEMPLATE_KIND_STRING;
	if (*s == '0') {
		out->zero = true;
		s++;
	}
	while (*s >= '0' && *s <= '9' && out->width < 1000)
		out->width = out->width * 10 + (unsigned)(*s++ - '0');
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			goto bad;
		out->precision = 0;
		while (*s >= '0' && *s <= '9' && out->precision < 1000)
			out->precision = out->precision * 10 + (*s++ - '0');
	}
	if (*s && strchr("dnboxXfFeEgG%s", *s))
		out->type = *s++;
	if (*s || out->width >= 1000 || out->precision >= 1000)
		goto bad;
	out->kind = kind_of_type(out->type);
	return 0;
bad:
	cp_err_set(err, NULL, 0, "unsupported format spec ':%s' (cpipe takes [0][width][.precision][type])", spec);
	return -1;
}

/* ------------------------------------------------------------------- numbers */

static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

bool template_parse_int(const char *text, long long *out)
{
	const char *s = skip_blanks(text);
	bool negative = false;
	if (*s == '+' || *s == '-')
		negative = *s++ == '-';
	if (!(*s >= '0' && *s <= '9'))
		return false;
	/* Accumulate the magnitude unsigned: LLONG_MIN's does not fit a long long. */
	unsigned long long limit = negative ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	unsigned long long value = 0;
	while ((*s >= '0' && *s <= '9') || (*s == '_' && s[1] >= '0' && s[1] <= '9')) {
		if (*s != '_') {
			unsigned digit = (unsigned)(*s - '0');
			if (value > (limit - digit) / 10)
				return false;
			value = value * 10 + digit;
		}
		s++;
	}
	if (*skip_blanks(s))
		return false;
	*out = negative ? (long long)(0ULL - value) : (long long)value;
	return true;
}

bool template_parse_float(const char *text, double *out)
{
	char *end;
	/* strtod also reads hex floats and "nan(...)", which Python's float() rejects. */
	if (strpbrk(text, "xX("))
		return false;
	errno = 0;
	*out = strtod(text, &end);
	if (end == text || errno)
		return false;
	return !*skip_blanks(end);
}

/* ---------------------------------------------------------------- formatting */

static void add_padded(struct strbuf *out, const char *body, const struct template_spec *f, bool numeric)
{
	size_t len = strlen(body);
	size_t width = (size_t)f->width;
	if (len >= width) {
		strbuf_adds(out, body);
		return;
	}
	size_t pad = width - len;
	if (numeric && f->zero) {
		/* Zeros go after the sign, as Python does. */
		if (*body == '-' || *body == '+') {
			strbuf_addch(out, *body++);
		}
		for (size_t i = 0; i < pad; i++)
			strbuf_addch(out, '0');
		strbuf_adds(out, body);
	} else if (numeric) {
		for (size_t i = 0; i < pad; i++)
			strbuf_addch(out, ' ');
		strbuf_adds(out, body);
	} else {
		strbuf_adds(out, body);
		for (size_t i = 0; i < pad; i++)
			strbuf_addch(out, ' ');
	}
}

static void format_binary(long long v, struct strbuf *out)
{
	unsigned long long u = v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
	char tmp[80];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + (u & 1));
		u >>= 1;
	} while (u);
	if (v < 0)
		strbuf_addch(out, '-');
	while (n)
		strbuf_addch(out, tmp[--n]);
}

int template_format(const char *spec, const char *value, struct strbuf *out, struct cp_err *err)
{
	struct template_spec f;
	if (!spec || !*spec) {
		strbuf_adds(out, value);
		return 0;
	}
	if (template_parse_spec(spec, &f, err) < 0)
		return -1;
	struct strbuf body = STRBUF_INIT;
	if (template_kind_is_int(f.kind)) {
		long long v;
		if (!template_parse_int(value, &v)) {
			cp_err_set(err, NULL, 0, "value '%s' is not an integer, as format '{:%s}' needs", value, spec);
			return -1;
		}
		if (f.precision >= 0) {
			cp_err_set(err, NULL, 0, "precision is not allowed in integer format '{:%s}'", spec);
			return -1;
		}
		/* Negate in unsigned arithmetic: -LLONG_MIN does not fit a long long. */
		unsigned long long magnitude = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
		switch (f.type) {
		case 'b': format_binary(v, &body); break;
		case 'o': strbuf_addf(&body, v < 0 ? "-%llo" : "%llo", magnitude); break;
		case 'x': strbuf_addf(&body, v < 0 ? "-%llx" : "%llx", magnitude); break;
		case 'X': strbuf_addf(&body, v < 0 ? "-%llX" : "%llX", magnitude); break;
		default: strbuf_addf(&body, "%lld", v); break;
		}
		add_padded(out, body.buf, &f, true);
	} else if (template_kind_is_float(f.kind)) {
		double v;
		if (!template_parse_float(value, &v)) {
			cp_err_set(err, NULL, 0, "value '%s' is not a number, as format '{:%s}' needs", value, spec);
			return -1;
		}
		int precision = f.precision >= 0 ? f.precision : 6;
		if (f.type == '%')
			strbuf_addf(&body, "%.*f%%", precision, v * 100.0);
		else if (f.type == 'e')
			strbuf_addf(&body, "%.*e", precision, v);
		else if (f.type == 'E')
			strbuf_addf(&body, "%.*E", precision, v);
		else if (f.type == 'g')
			strbuf_addf(&body, "%.*g", precision, v);
		else if (f.type == 'G')
			strbuf_addf(&body, "%.*G", precision, v);
		else
			strbuf_addf(&body, "%.*f", precision, v);
		add_padded(out, body.buf, &f, true);
	} else {
		if (f.precision >= 0)
			strbuf_add(&body, value, strnlen(value, (size_t)f.precision));
		else
			strbuf_adds(&body, value);
		add_padded(out, body.buf, &f, false);
	}
	strbuf_release(&body);
	return 0;
}

void template_placeholders(const struct template *tmpl, struct strvec *required, struct strvec *optional_only)
{
	struct strvec req = STRVEC_INIT, opt = STRVEC_INIT;
	for (size_t i = 0; i < tmpl->count; i++) {
		const struct template_part *p = &tmpl->parts[i];
		if (p->kind != TEMPLATE_FIELD)
			continue;
		if (p->optional < 0) {
			if (strvec_find(&req, p->text) < 0)
				strvec_push(&req, p->text);
		} else if (strvec_find(&opt, p->text) < 0) {
			strvec_push(&opt, p->text);
		}
	}
	for (size_t i = 0; optional_only && i < opt.count; i++)
		if (strvec_find(&req, opt.items[i]) < 0)
			strvec_push(optional_only, opt.items[i]);
	for (size_t i = 0; required && i < req.count; i++)
		strvec_push(required, req.items[i]);
	strvec_release(&req);
	strvec_release(&opt);
}

void template_to_string(const struct template *tmpl, struct strbuf *out)
{
	int open = -1;
	for (size_t i = 0; i < tmpl->count; i++) {
		const struct template_part *p = &tmpl->parts[i];
		if (p->optional != open) {
			if (open >= 0)
				strbuf_addch(out, ']');
			if (p->optional >= 0)
				strbuf_addch(out, '[');
			open = p->optional;
		}
		template_add_part(out, p);
	}
	if (open >= 0)
		strbuf_addch(out, ']');
}
