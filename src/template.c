#include "cpipe/template.h"

#include <errno.h>
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

/* Parse the text of one group (or of everything outside groups) for fields and wildcards. */
static int parse_run(struct template *t, const char *s, size_t len, int optional, const char *whole,
		     struct cp_err *err)
{
	size_t i = 0;
	while (i < len) {
		char c = s[i];
		if (c == '{') {
			const char *close = memchr(s + i + 1, '}', len - i - 1);
			if (close) {
				const char *body = s + i + 1;
				size_t body_len = (size_t)(close - body);
				const char *colon = memchr(body, ':', body_len);
				if (colon && memchr(colon + 1, ':', body_len - (size_t)(colon + 1 - body))) {
					cp_err_set(err, NULL, 0, "too many ':' in placeholder '{%.*s}' of template %s",
						   (int)body_len, body, whole);
					return -1;
				}
				size_t name_len = colon ? (size_t)(colon - body) : body_len;
				push_part(t, TEMPLATE_FIELD, body, name_len, colon ? colon + 1 : NULL,
					  colon ? body_len - name_len - 1 : 0, optional);
				i = (size_t)(close - s) + 1;
				continue;
			}
		}
		if (c == '*' || c == '?') {
			push_part(t, c == '*' ? TEMPLATE_STAR : TEMPLATE_QUESTION, &s[i], 1, NULL, 0, optional);
			i++;
			continue;
		}
		push_part(t, TEMPLATE_LITERAL, &s[i], 1, NULL, 0, optional);
		i++;
	}
	return 0;
}

int template_parse(const char *text, struct template *out, struct cp_err *err)
{
	size_t len = strlen(text);
	size_t start = 0, i = 0;
	int group = 0;
	while (i < len) {
		if (text[i] != '[') {
			i++;
			continue;
		}
		const char *close = memchr(text + i + 1, ']', len - i - 1);
		if (!close) {
			i++;
			continue;
		}
		size_t body = i + 1, body_len = (size_t)(close - text) - body;
		if (memchr(text + body, '[', body_len)) {
			cp_err_set(err, NULL, 0,
				   "can not parse %s, because unmatching square brackets were found", text);
			template_release(out);
			return -1;
		}
		if (parse_run(out, text + start, i - start, -1, text, err) < 0)
			goto fail;
		struct template group_parts = TEMPLATE_INIT;
		if (parse_run(&group_parts, text + body, body_len, group, text, err) < 0) {
			template_release(&group_parts);
			goto fail;
		}
		bool has_field = false;
		for (size_t p = 0; p < group_parts.count; p++)
			has_field |= group_parts.parts[p].kind == TEMPLATE_FIELD;
		/* A group without a placeholder is always kept, as plain text. */
		for (size_t p = 0; p < group_parts.count; p++) {
			const struct template_part *part = &group_parts.parts[p];
			push_part(out, part->kind, part->text, strlen(part->text), part->spec,
				  part->spec ? strlen(part->spec) : 0, has_field ? group : -1);
		}
		template_release(&group_parts);
		if (has_field)
			group++;
		i = (size_t)(close - text) + 1;
		start = i;
	}
	if (parse_run(out, text + start, len - start, -1, text, err) < 0)
		goto fail;
	out->optional_count = (size_t)group;
	return 0;
fail:
	template_release(out);
	return -1;
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

enum template_type template_spec_type(const char *spec)
{
	if (!spec || !*spec)
		return TEMPLATE_TYPE_STRING;
	switch (spec[strlen(spec) - 1]) {
	case 'd': case 'n': case 'b': case 'o': case 'x': case 'X':
		return TEMPLATE_TYPE_INT;
	case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case '%':
		return TEMPLATE_TYPE_FLOAT;
	default:
		return TEMPLATE_TYPE_STRING;
	}
}

struct format_spec {
	bool zero;
	int width;
	int precision; /* -1 when absent */
	char type;     /* '\0' when absent */
};

static int parse_spec(const char *spec, struct format_spec *f, struct cp_err *err)
{
	const char *s = spec;
	f->zero = false;
	f->width = 0;
	f->precision = -1;
	f->type = '\0';
	if (*s == '0') {
		f->zero = true;
		s++;
	}
	while (*s >= '0' && *s <= '9' && f->width < 1000)
		f->width = f->width * 10 + (*s++ - '0');
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			goto bad;
		f->precision = 0;
		while (*s >= '0' && *s <= '9' && f->precision < 1000)
			f->precision = f->precision * 10 + (*s++ - '0');
	}
	if (*s && strchr("dnboxXfFeEgG%s", *s))
		f->type = *s++;
	if (*s || f->width >= 1000 || f->precision >= 1000)
		goto bad;
	return 0;
bad:
	cp_err_set(err, NULL, 0, "unsupported format spec ':%s' (cpipe takes [0][width][.precision][type])", spec);
	return -1;
}

/* Python's int(): optional blanks and sign around decimal digits, '_' between digits. */
static int parse_python_int(const char *value, long long *out)
{
	char digits[64];
	size_t n = 0;
	const char *s = value;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '+' || *s == '-')
		digits[n++] = *s++;
	if (!(*s >= '0' && *s <= '9'))
		return -1;
	while ((*s >= '0' && *s <= '9') || (*s == '_' && s[1] >= '0' && s[1] <= '9')) {
		if (*s != '_') {
			if (n >= sizeof(digits) - 1)
				return -1;
			digits[n++] = *s;
		}
		s++;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s)
		return -1;
	digits[n] = '\0';
	errno = 0;
	*out = strtoll(digits, NULL, 10);
	return errno ? -1 : 0;
}

static int parse_python_float(const char *value, double *out)
{
	char *end;
	/* strtod also reads hex floats and "nan(...)", which Python's float() rejects. */
	if (strpbrk(value, "xX("))
		return -1;
	errno = 0;
	*out = strtod(value, &end);
	if (end == value || errno)
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	return *end ? -1 : 0;
}

static void add_padded(struct strbuf *out, const char *body, const struct format_spec *f, bool numeric)
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
	struct format_spec f;
	if (!spec || !*spec) {
		strbuf_adds(out, value);
		return 0;
	}
	if (parse_spec(spec, &f, err) < 0)
		return -1;
	enum template_type type = template_spec_type(spec);
	struct strbuf body = STRBUF_INIT;
	if (type == TEMPLATE_TYPE_INT) {
		long long v;
		if (parse_python_int(value, &v) < 0) {
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
	} else if (type == TEMPLATE_TYPE_FLOAT) {
		double v;
		if (parse_python_float(value, &v) < 0) {
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
		if (p->kind == TEMPLATE_FIELD) {
			strbuf_addch(out, '{');
			strbuf_adds(out, p->text);
			if (p->spec) {
				strbuf_addch(out, ':');
				strbuf_adds(out, p->spec);
			}
			strbuf_addch(out, '}');
		} else {
			strbuf_adds(out, p->text);
		}
	}
	if (open >= 0)
		strbuf_addch(out, ']');
}
