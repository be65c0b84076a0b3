/*
 * template: the one home of the template grammar (cpipe-tree(5), TEMPLATE
 * SYNTAX). A file-tree template string ("sub-{subject}[_ses-{session}]/T1w.nii.gz")
 * split into literal text, placeholder fields, optional groups and wildcards;
 * a scan handing each field to a callback; format specs ("{run:02d}") and the
 * kind of value each gives; Python's int() and float(); Python-style
 * formatting. Shared by the tree module (filling) and the glob module
 * (matching); knows nothing of either.
 */
#ifndef CPIPE_TEMPLATE_H
#define CPIPE_TEMPLATE_H

#include "cpipe/util.h"

enum template_part_kind {
	TEMPLATE_LITERAL,
	TEMPLATE_FIELD,    /* {name} or {name:spec} */
	TEMPLATE_STAR,     /* '*': any run of characters within one path component */
	TEMPLATE_QUESTION, /* '?': one character */
};

/*
 * What a field's format spec makes of its value, by the spec's type letter
 * (the table of Python's parse module, which file-tree matches files with):
 * d n b o x X read and write integers, f F e E g G % floats; no type is any
 * text, and "s" is whitespace when matching (as parse reads it) but the value
 * itself when formatting.
 */
enum template_field_kind {
	TEMPLATE_KIND_STRING,
	TEMPLATE_KIND_WHITESPACE, /* s */
	TEMPLATE_KIND_INT,        /* d n: decimal, or a 0x/0b/0o literal when matching */
	TEMPLATE_KIND_BINARY,     /* b */
	TEMPLATE_KIND_OCTAL,      /* o */
	TEMPLATE_KIND_HEX,        /* x X */
	TEMPLATE_KIND_FIXED,      /* f F: a dot is required when matching */
	TEMPLATE_KIND_EXPONENT,   /* e E */
	TEMPLATE_KIND_GENERAL,    /* g G: int, float, exponent, nan or inf */
	TEMPLATE_KIND_PERCENT,    /* %: the value is divided by 100 when matching */
};

/* A format spec as cpipe takes it: [0][width][.precision][type]. */
struct template_spec {
	bool zero;
	unsigned width;
	int precision; /* -1 when absent */
	char type;     /* '\0' when absent */
	enum template_field_kind kind;
};

struct template_part {
	enum template_part_kind kind;
	char *text;   /* the literal text, or the placeholder name of a field */
	char *spec;   /* a field's format spec (after ':'), or NULL */
	int optional; /* index of the [...] group holding this part, or -1 when required */
};

struct template {
	struct template_part *parts;
	size_t count;
	size_t cap;
	size_t optional_count; /* number of [...] groups that hold at least one field */
};
#define TEMPLATE_INIT {NULL, 0, 0, 0}

/*
 * Split `text` into parts. A "[...]" with no field becomes plain literal text;
 * unmatched brackets and braces are literal. Fails (-1, err without location)
 * on a nested "[" inside an optional group or a field spec with a second ':'.
 * `out` must be TEMPLATE_INIT or released; on failure it is left released.
 */
int template_parse(const char *text, struct template *out, struct cp_err *err);
void template_release(struct template *tmpl);

/*
 * Parse a field's format spec; NULL or "" is a plain string field. Fails (-1,
 * err without location) on anything but [0][width][.precision][type] with
 * width and precision below 1000 and type one of d n b o x X f F e E g G % s.
 */
int template_parse_spec(const char *spec, struct template_spec *out, struct cp_err *err);

/* Whether a field of this kind holds an integer, or a float. */
bool template_kind_is_int(enum template_field_kind kind);
bool template_kind_is_float(enum template_field_kind kind);

/*
 * Python's int() and float() of a whole string (blanks around it allowed, '_'
 * between the digits of an integer): false when Python would raise or the
 * integer does not fit a long long. Hex floats ("0x1p3") and "nan(...)", which
 * C's strtod reads, are not numbers here, as in Python.
 */
bool template_parse_int(const char *text, long long *out);
bool template_parse_float(const char *text, double *out);

/*
 * Append `value` formatted by `spec` as Python's format() would after file-tree's
 * int()/float() conversion ("3" with "02d" gives "03"). Fails (-1) when the value
 * does not convert or the spec is not one cpipe supports
 * ([0][width][.precision][type], type one of d n b o x X f F e E g G % s).
 */
int template_format(const char *spec, const char *value, struct strbuf *out, struct cp_err *err);

/*
 * Placeholder names of `tmpl` in order of first appearance, without duplicates:
 * `required` gets those written outside any [...] group, `optional_only` those
 * that appear only inside groups. Either may be NULL.
 */
void template_placeholders(const struct template *tmpl, struct strvec *required, struct strvec *optional_only);

/* Write the template back as text (fields as {name} or {name:spec}, groups in []). */
void template_to_string(const struct template *tmpl, struct strbuf *out);

/* Append one field as template text: "{name}", or "{name:spec}" when `spec` is not NULL. */
void template_add_field(struct strbuf *out, const char *name, size_t name_len, const char *spec, size_t spec_len);
/* Append one part as template text (a field as template_add_field writes it), without its group's brackets. */
void template_add_part(struct strbuf *out, const struct template_part *part);

/*
 * Called for every field of a scanned template; appends what replaces it to
 * `out`. `spec` is NULL when the field has no ':'.
 */
typedef int (*template_field_fn)(void *data, const char *name, size_t name_len, const char *spec, size_t spec_len,
				 struct strbuf *out, struct cp_err *err);

/*
 * Copy `text` to `out`, handing every field to `fn`. Fields and groups are
 * found exactly as template_parse finds them, and everything else is copied
 * byte for byte, so the output parses the same way. What template_parse
 * rejects is not reported here: a group holding '[' ends the groups (the rest
 * is scanned as text outside any group), and a spec holding ':' is passed on.
 * Returns -1 when `fn` does.
 */
int template_scan_fields(const char *text, template_field_fn fn, void *data, struct strbuf *out,
			 struct cp_err *err);

#endif
