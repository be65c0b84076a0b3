/*
 * template: one file-tree template string ("sub-{subject}[_ses-{session}]/T1w.nii.gz")
 * split into literal text, placeholder fields, optional groups and wildcards,
 * and Python-style formatting of typed fields ("{run:02d}"). Shared by the
 * tree module (filling) and the glob module (matching); knows nothing of either.
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

/* What a field's format spec converts its value to (file-tree's rule: d n b o x are ints, f % e g floats). */
enum template_type {
	TEMPLATE_TYPE_STRING,
	TEMPLATE_TYPE_INT,
	TEMPLATE_TYPE_FLOAT,
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

/* The type a format spec converts to; NULL or "" is a string. */
enum template_type template_spec_type(const char *spec);

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

#endif
