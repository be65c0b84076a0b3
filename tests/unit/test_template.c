/*
 * Unit tests of the template module: splitting template strings into parts,
 * optional groups, and Python-style formatting of typed fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cpipe/template.h"

static void parse_ok(const char *text, struct template *out)
{
	struct cp_err err = CP_ERR_INIT;
	*out = (struct template)TEMPLATE_INIT;
	if (template_parse(text, out, &err) < 0) {
		print_error("parse '%s': %s\n", text, err.message);
		cp_err_release(&err);
		fail();
	}
}

static void assert_part(const struct template *tmpl, size_t index, enum template_part_kind kind, const char *text,
			const char *spec, int optional)
{
	assert_true(index < tmpl->count);
	const struct template_part *part = &tmpl->parts[index];
	assert_int_equal(part->kind, kind);
	assert_string_equal(part->text, text);
	if (spec)
		assert_string_equal(part->spec, spec);
	else
		assert_null(part->spec);
	assert_int_equal(part->optional, optional);
}

static void assert_round_trip(const char *text, const char *expected)
{
	struct template tmpl;
	struct strbuf out = STRBUF_INIT;
	parse_ok(text, &tmpl);
	template_to_string(&tmpl, &out);
	assert_string_equal(out.buf, expected);
	strbuf_release(&out);
	template_release(&tmpl);
}

static void test_parse_parts(void **state)
{
	(void)state;
	struct template tmpl;
	parse_ok("sub-{subject}[_ses-{session}]/run-{run:02d}.nii", &tmpl);
	assert_int_equal(tmpl.count, 7);
	assert_int_equal(tmpl.optional_count, 1);
	assert_part(&tmpl, 0, TEMPLATE_LITERAL, "sub-", NULL, -1);
	assert_part(&tmpl, 1, TEMPLATE_FIELD, "subject", NULL, -1);
	assert_part(&tmpl, 2, TEMPLATE_LITERAL, "_ses-", NULL, 0);
	assert_part(&tmpl, 3, TEMPLATE_FIELD, "session", NULL, 0);
	assert_part(&tmpl, 4, TEMPLATE_LITERAL, "/run-", NULL, -1);
	assert_part(&tmpl, 5, TEMPLATE_FIELD, "run", "02d", -1);
	assert_part(&tmpl, 6, TEMPLATE_LITERAL, ".nii", NULL, -1);
	template_release(&tmpl);
	assert_null(tmpl.parts);
	assert_int_equal(tmpl.count, 0);

	/* Scoped names and an empty spec. */
	parse_ok("{P/x:}", &tmpl);
	assert_int_equal(tmpl.count, 1);
	assert_part(&tmpl, 0, TEMPLATE_FIELD, "P/x", "", -1);
	template_release(&tmpl);

	parse_ok("", &tmpl);
	assert_int_equal(tmpl.count, 0);
	template_release(&tmpl);
}

static void test_optional_groups(void **state)
{
	(void)state;
	struct template tmpl;
	/* Two groups get their own index; adjacent literals of one group merge. */
	parse_ok("a[_{b}][-{c}x]", &tmpl);
	assert_int_equal(tmpl.optional_count, 2);
	assert_part(&tmpl, 0, TEMPLATE_LITERAL, "a", NULL, -1);
	assert_part(&tmpl, 1, TEMPLATE_LITERAL, "_", NULL, 0);
	assert_part(&tmpl, 2, TEMPLATE_FIELD, "b", NULL, 0);
	assert_part(&tmpl, 3, TEMPLATE_LITERAL, "-", NULL, 1);
	assert_part(&tmpl, 4, TEMPLATE_FIELD, "c", NULL, 1);
	assert_part(&tmpl, 5, TEMPLATE_LITERAL, "x", NULL, 1);
	template_release(&tmpl);

	/* A group without a placeholder is plain text, always emitted, without brackets. */
	parse_ok("x[abc].txt", &tmpl);
	assert_int_equal(tmpl.count, 1);
	assert_int_equal(tmpl.optional_count, 0);
	assert_part(&tmpl, 0, TEMPLATE_LITERAL, "xabc.txt", NULL, -1);
	template_release(&tmpl);

	/* Literal groups do not use up a group index. */
	parse_ok("[1]_{A}[_{B}]", &tmpl);
	assert_int_equal(tmpl.optional_count, 1);
	assert_part(&tmpl, 0, TEMPLATE_LITERAL, "1_", NULL, -1);
	assert_part(&tmpl, 1, TEMPLATE_FIELD, "A", NULL, -1);
	assert_part(&tmpl, 3, TEMPLATE_FIELD, "B", NULL, 0);
	template_release(&tmpl);
}

static void test_unmatched_brackets(void **state)
{
	(void)state;
	struct template tmpl;
	parse_ok("x[a.txt", &tmpl);
	assert_int_equal(tmpl.count, 1);
	assert_part(&tmpl, 0, TEMPLATE_LITERAL, "x[a.txt", NULL, -1);
	template_release(&tmpl);

	parse_ok("a]b{c", &tmpl);
	assert_int_equal(tmpl.count, 1);
	assert_part(&tmpl, 0, TEMPLATE_LITERAL, "a]b{c", NULL, -1);
	template_release(&tmpl);

	parse_ok("c}{d}", &tmpl);
	assert_int_equal(tmpl.count, 2);
	assert_part(&tmpl, 0, TEMPLATE_LITERAL, "c}", NULL, -1);
	assert_part(&tmpl, 1, TEMPLATE_FIELD, "d", NULL, -1);
	template_release(&tmpl);

	/* A field ends at the first '}': no nesting. */
	parse_ok("{a{b}c}", &tmpl);
	assert_part(&tmpl, 0, TEMPLATE_FIELD, "a{b", NULL, -1);
	assert_part(&tmpl, 1, TEMPLATE_LITERAL, "c}", NULL, -1);
	template_release(&tmpl);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct template tmpl = TEMPLATE_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(template_parse("x[a[b]c].txt", &tmpl, &err), -1);
	assert_non_null(strstr(err.message, "unmatching square brackets"));
	assert_non_null(strstr(err.message, "x[a[b]c].txt"));
	assert_null(tmpl.parts);
	cp_err_release(&err);

	/* An error after earlier groups leaves `out` released. */
	assert_int_equal(template_parse("{a}[_{b}]x[a[b]c]", &tmpl, &err), -1);
	assert_null(tmpl.parts);
	assert_int_equal(tmpl.count, 0);
	cp_err_release(&err);

	assert_int_equal(template_parse("{t:%H:%M}.txt", &tmpl, &err), -1);
	assert_non_null(strstr(err.message, "too many ':'"));
	cp_err_release(&err);
	assert_int_equal(template_parse("[_{t:a:b}]", &tmpl, &err), -1);
	assert_null(tmpl.parts);
	cp_err_release(&err);
}

static void test_wildcards(void **state)
{
	(void)state;
	struct template tmpl;
	parse_ok("a*b?c[_{x}*]", &tmpl);
	assert_part(&tmpl, 0, TEMPLATE_LITERAL, "a", NULL, -1);
	assert_part(&tmpl, 1, TEMPLATE_STAR, "*", NULL, -1);
	assert_part(&tmpl, 2, TEMPLATE_LITERAL, "b", NULL, -1);
	assert_part(&tmpl, 3, TEMPLATE_QUESTION, "?", NULL, -1);
	assert_part(&tmpl, 4, TEMPLATE_LITERAL, "c", NULL, -1);
	assert_part(&tmpl, 7, TEMPLATE_STAR, "*", NULL, 0);
	template_release(&tmpl);
}

static void test_placeholders(void **state)
{
	(void)state;
	struct template tmpl;
	struct strvec required = STRVEC_INIT, optional = STRVEC_INIT;
	parse_ok("{a}[_{b}]/{c}{a}[{d}_{a}_{b}]", &tmpl);
	template_placeholders(&tmpl, &required, &optional);
	assert_int_equal(required.count, 2);
	assert_string_equal(required.items[0], "a");
	assert_string_equal(required.items[1], "c");
	assert_int_equal(optional.count, 2);
	assert_string_equal(optional.items[0], "b");
	assert_string_equal(optional.items[1], "d");
	strvec_release(&required);
	/* Either output may be NULL. */
	template_placeholders(&tmpl, &required, NULL);
	assert_int_equal(required.count, 2);
	template_placeholders(&tmpl, NULL, NULL);
	strvec_release(&required);
	strvec_release(&optional);
	template_release(&tmpl);
}

static void test_to_string(void **state)
{
	(void)state;
	assert_round_trip("sub-{subject}[_ses-{session}]/{run:02d}*?.nii", "sub-{subject}[_ses-{session}]/{run:02d}*?.nii");
	assert_round_trip("[{a}][{b}]", "[{a}][{b}]");
	assert_round_trip("x[abc].txt", "xabc.txt");
	assert_round_trip("x[a.txt", "x[a.txt");
	assert_round_trip("{P/x:}", "{P/x:}");
}

static void assert_format(const char *spec, const char *value, const char *expected)
{
	struct strbuf out = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	strbuf_adds(&out, "<");
	if (template_format(spec, value, &out, &err) < 0) {
		print_error("format '%s' with '%s': %s\n", spec ? spec : "(null)", value, err.message);
		fail();
	}
	assert_string_equal(out.buf + 1, expected);
	strbuf_release(&out);
}

static void assert_format_fails(const char *spec, const char *value, const char *needle)
{
	struct strbuf out = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(template_format(spec, value, &out, &err), -1);
	if (!strstr(err.message, needle)) {
		print_error("message '%s' lacks '%s'\n", err.message, needle);
		fail();
	}
	cp_err_release(&err);
	strbuf_release(&out);
}

static void test_format(void **state)
{
	(void)state;
	assert_format(NULL, "raw", "raw");
	assert_format("", "raw", "raw");
	assert_format("02d", "3", "03");
	assert_format("02d", "123", "123");
	assert_format("03d", "-3", "-03");
	assert_format("5d", "42", "   42");
	assert_format("d", "-3", "-3");
	assert_format("d", " 7 ", "7");
	assert_format("d", "+7", "7");
	assert_format("d", "1_000", "1000");
	assert_format("d", "007", "7");
	assert_format(".2f", "2", "2.00");
	assert_format(".2f", "3.14159", "3.14");
	assert_format("f", "1.5", "1.500000");
	assert_format("06.1f", "-2.25", "-002.2");
	assert_format("x", "255", "ff");
	assert_format("X", "255", "FF");
	assert_format("x", "-255", "-ff");
	assert_format("x", "-9223372036854775808", "-8000000000000000");
	assert_format("b", "5", "101");
	assert_format("08b", "5", "00000101");
	assert_format("b", "-5", "-101");
	assert_format("b", "0", "0");
	assert_format("o", "8", "10");
	assert_format("e", "12345.678", "1.234568e+04");
	assert_format("g", "0.0001", "0.0001");
	assert_format(".1%", "0.25", "25.0%");
	assert_format("s", "ab", "ab");
	assert_format("5s", "ab", "ab   ");
	assert_format(".1s", "ab", "a");
}

static void test_format_errors(void **state)
{
	(void)state;
	assert_format_fails("02d", "x", "not an integer");
	assert_format_fails("d", "3.0", "not an integer");
	assert_format_fails("d", "", "not an integer");
	assert_format_fails("d", "0x10", "not an integer");
	/* cpipe's integers are 64-bit; Python's are not. */
	assert_format_fails("d", "99999999999999999999", "not an integer");
	assert_format_fails(".2f", "abc", "not a number");
	assert_format_fails("f", "0x10", "not a number");
	assert_format_fails("f", "1.5 x", "not a number");
	assert_format_fails(".2d", "3", "precision is not allowed");
	assert_format_fails("q", "3", "unsupported format spec");
	assert_format_fails(">5", "3", "unsupported format spec");
	assert_format_fails("%H", "3", "unsupported format spec");
	assert_format_fails("5000d", "3", "unsupported format spec");
	assert_format_fails(".d", "3", "unsupported format spec");
}

static enum template_field_kind kind_of(const char *spec)
{
	struct template_spec parsed;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(template_parse_spec(spec, &parsed, &err), 0);
	return parsed.kind;
}

static void test_spec_kind(void **state)
{
	(void)state;
	assert_int_equal(kind_of(NULL), TEMPLATE_KIND_STRING);
	assert_int_equal(kind_of(""), TEMPLATE_KIND_STRING);
	assert_int_equal(kind_of("5"), TEMPLATE_KIND_STRING);
	assert_int_equal(kind_of("s"), TEMPLATE_KIND_WHITESPACE);
	static const char *const ints[] = {"d", "02d", "n", "b", "o", "x", "X"};
	for (size_t i = 0; i < ARRAY_SIZE(ints); i++)
		assert_true(template_kind_is_int(kind_of(ints[i])));
	static const char *const floats[] = {"f", ".2f", "F", "e", "E", "g", "G", "%"};
	for (size_t i = 0; i < ARRAY_SIZE(floats); i++)
		assert_true(template_kind_is_float(kind_of(floats[i])));
	struct template_spec parsed;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(template_parse_spec("03.2f", &parsed, &err), 0);
	assert_true(parsed.zero);
	assert_int_equal(parsed.width, 3);
	assert_int_equal(parsed.precision, 2);
	assert_int_equal(parsed.type, 'f');
	assert_int_equal(template_parse_spec("1.5000f", &parsed, &err), -1);
	assert_non_null(strstr(err.message, "unsupported format spec"));
	cp_err_release(&err);
}

/* Python's int() and float(): what a pre-set value reads as, and what a typed field formats. */
static void test_numbers(void **state)
{
	(void)state;
	long long integer;
	assert_true(template_parse_int(" -1_000 ", &integer));
	assert_int_equal(integer, -1000);
	assert_true(template_parse_int("-9223372036854775808", &integer));
	assert_true(integer == LLONG_MIN);
	assert_true(template_parse_int("0000000000000000000000000000000000000000000000000000000000000000007", &integer));
	assert_int_equal(integer, 7);
	assert_false(template_parse_int("9223372036854775808", &integer));
	assert_false(template_parse_int("1__0", &integer));
	assert_false(template_parse_int("0x10", &integer));
	assert_false(template_parse_int("", &integer));
	double real;
	assert_true(template_parse_float(" 2.5e1\t", &real));
	assert_true(real == 25.0);
	assert_true(template_parse_float("-inf", &real));
	/* float("0x1p3") and float("nan(1)") raise in Python, though C's strtod reads them. */
	assert_false(template_parse_float("0x1p3", &real));
	assert_false(template_parse_float("0X10", &real));
	assert_false(template_parse_float("nan(1)", &real));
	assert_false(template_parse_float("1.5x", &real));
}

/* Every field handed over, everything else copied byte for byte, as template_parse reads it. */
static int shout_field(void *data, const char *name, size_t name_len, const char *spec, size_t spec_len,
		       struct strbuf *out, struct cp_err *err)
{
	(void)data, (void)err;
	strbuf_addf(out, "<%.*s%s%.*s>", (int)name_len, name, spec ? "|" : "", (int)spec_len, spec ? spec : "");
	return 0;
}

static void assert_scanned(const char *text, const char *expected)
{
	struct strbuf out = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(template_scan_fields(text, shout_field, NULL, &out, &err), 0);
	assert_string_equal(out.buf, expected);
	strbuf_release(&out);
}

static void test_scan_fields(void **state)
{
	(void)state;
	assert_scanned("sub-{subject}[_ses-{session:02d}]/*.nii", "sub-<subject>[_ses-<session|02d>]/*.nii");
	assert_scanned("a{b[c}]d", "a{b[c}]d");
	assert_scanned("{x[}]", "{x[}]");
	assert_scanned("[{a}]x[{b}[{c}]]", "[<a>]x[<b>[<c>]]");
	assert_scanned("{t:a:b}{", "<t|a:b>{");
	assert_scanned("[no end {x}", "[no end <x>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_parts),
		cmocka_unit_test(test_optional_groups),
		cmocka_unit_test(test_unmatched_brackets),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_wildcards),
		cmocka_unit_test(test_placeholders),
		cmocka_unit_test(test_to_string),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_errors),
		cmocka_unit_test(test_spec_kind),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_scan_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
