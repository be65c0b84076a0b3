/*
 * Unit tests of the tree module: the `.tree` grammar, filling, sub-trees,
 * to_string and the places where cpipe deliberately differs from file-tree
 * 1.6.1. "Case N" refers to the numbered cases of file-tree.md section 3.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpipe/tree.h"
#include "test_helpers.h"

/* ------------------------------------------------------------- helpers */

static struct tree *parse_ok(const char *text)
{
	struct tree *tree = NULL;
	struct cp_err err = CP_ERR_INIT;
	if (tree_parse_string(text, "test.tree", NULL, &tree, &err) < 0) {
		char *message = cp_err_format(&err);
		print_error("unexpected parse error: %s\n", message);
		free(message);
		cp_err_release(&err);
		fail();
	}
	assert_non_null(tree);
	return tree;
}

/* Parsing must fail at `line` with a message containing `needle`. */
static void parse_fails(const char *text, int line, const char *needle)
{
	struct tree *tree = (struct tree *)1;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(tree_parse_string(text, "bad.tree", NULL, &tree, &err), -1);
	assert_null(tree);
	assert_non_null(err.message);
	if (!strstr(err.message, needle)) {
		print_error("message '%s' lacks '%s'\n", err.message, needle);
		fail();
	}
	assert_string_equal(err.file, "bad.tree");
	assert_int_equal(err.line, line);
	cp_err_release(&err);
}

static void assert_key_path(const struct tree *tree, const char *key, const char *path)
{
	struct cp_err err = CP_ERR_INIT;
	long index = tree_find_template(tree, key, &err);
	if (index < 0) {
		print_error("key '%s': %s\n", key, err.message);
		cp_err_release(&err);
		fail();
	}
	assert_string_equal(tree->templates[index].path, path);
}

/* Fill the template of `key`; `expected` NULL means filling must fail with `needle`. */
static void assert_fill(const struct tree *tree, const char *key, const char *expected, const char *needle)
{
	struct cp_err err = CP_ERR_INIT;
	struct strbuf out = STRBUF_INIT;
	long index = tree_find_template(tree, key, &err);
	assert_true(index >= 0);
	int result = tree_fill(tree, (size_t)index, &out, &err);
	if (expected) {
		if (result < 0) {
			print_error("fill '%s': %s\n", key, err.message);
			fail();
		}
		assert_string_equal(out.buf, expected);
	} else {
		assert_int_equal(result, -1);
		if (!strstr(err.message, needle)) {
			print_error("message '%s' lacks '%s'\n", err.message, needle);
			fail();
		}
	}
	strbuf_release(&out);
	cp_err_release(&err);
}

static void set_value(struct tree *tree, const char *name, const char *text)
{
	struct tree_value value = {(char *)text, TREE_VALUE_STRING, 0, 0.0, false};
	tree_set_placeholder(tree, name, &value, 1, false);
}

static void set_list(struct tree *tree, const char *name, const char *const *texts, size_t count)
{
	struct tree_value *values = calloc(count, sizeof(*values));
	for (size_t i = 0; i < count; i++)
		values[i].text = (char *)texts[i];
	tree_set_placeholder(tree, name, values, count, true);
	free(values);
}

static const struct tree_placeholder *placeholder(const struct tree *tree, const char *name)
{
	for (size_t i = 0; i < tree->placeholder_count; i++)
		if (!strcmp(tree->placeholders[i].name, name))
			return &tree->placeholders[i];
	return NULL;
}

static void assert_singular(const struct tree *tree, const char *name, const char *text)
{
	const struct tree_placeholder *p = placeholder(tree, name);
	assert_non_null(p);
	assert_false(p->multiple);
	assert_int_equal(p->count, 1);
	assert_string_equal(p->values[0].text, text);
}

static void assert_keys(const struct tree *tree, const char *const *expected, size_t count)
{
	struct strvec keys = STRVEC_INIT;
	tree_template_keys(tree, &keys);
	assert_int_equal(keys.count, count);
	for (size_t i = 0; i < count; i++)
		assert_string_equal(keys.items[i], expected[i]);
	strvec_release(&keys);
}

/* tree_fill_template with the values `texts` (NULL: None), read from file names when `literal`. */
static int fill_values(const struct tree *tree, const char *text, const char *const *names, const char *const *texts,
		       size_t count, bool literal, struct strbuf *out, struct cp_err *err)
{
	struct tree_value *values = xcalloc(count + 1, sizeof(*values));
	const struct tree_value **pointers = xcalloc(count + 1, sizeof(*pointers));
	for (size_t i = 0; i < count; i++) {
		values[i].text = (char *)texts[i];
		values[i].literal = literal;
		pointers[i] = &values[i];
	}
	int rc = tree_fill_template(tree, text, names, pointers, count, out, err);
	free(pointers);
	free(values);
	return rc;
}

static char *fill_as(const struct tree *tree, const char *text, const char *const *names, const char *const *values,
		     size_t count, bool literal)
{
	struct cp_err err = CP_ERR_INIT;
	struct strbuf out = STRBUF_INIT;
	if (fill_values(tree, text, names, values, count, literal, &out, &err) < 0) {
		print_error("fill '%s': %s\n", text, err.message);
		cp_err_release(&err);
		fail();
	}
	return strbuf_detach(&out);
}

static char *fill_with(const struct tree *tree, const char *text, const char *const *names,
		       const char *const *values, size_t count)
{
	return fill_as(tree, text, names, values, count, false);
}

/* A scratch directory for tree files, removed with everything created in it. */
struct scratch {
	char dir[64];
};

static void scratch_init(struct scratch *scratch)
{
	strcpy(scratch->dir, "/tmp/cpipe-test-tree-XXXXXX");
	assert_non_null(mkdtemp(scratch->dir));
}

static char *scratch_path(struct scratch *scratch, const char *relative)
{
	return xasprintf("%s/%s", scratch->dir, relative);
}

static void scratch_mkdir(struct scratch *scratch, const char *relative)
{
	char *path = scratch_path(scratch, relative);
	assert_int_equal(mkdir(path, 0755), 0);
	free(path);
}

static void scratch_write(struct scratch *scratch, const char *relative, const char *text)
{
	char *path = scratch_path(scratch, relative);
	write_text(path, text);
	free(path);
}

static void scratch_release(struct scratch *scratch)
{
	assert_int_equal(remove_tree(scratch->dir), 0);
}

static struct tree *scratch_parse(struct scratch *scratch, const char *relative, const struct tree_search *search)
{
	char *path = scratch_path(scratch, relative);
	struct tree *tree = NULL;
	struct cp_err err = CP_ERR_INIT;
	if (tree_parse_file(path, search, &tree, &err) < 0) {
		char *message = cp_err_format(&err);
		print_error("unexpected parse error: %s\n", message);
		free(message);
		fail();
	}
	free(path);
	return tree;
}

/* Parsing `relative` must fail in file `error_file` (relative to the scratch dir) at `line`. */
static void scratch_parse_fails(struct scratch *scratch, const char *relative, const char *error_file, int line,
				const char *needle)
{
	char *path = scratch_path(scratch, relative);
	char *expected_file = scratch_path(scratch, error_file);
	struct tree *tree = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(tree_parse_file(path, NULL, &tree, &err), -1);
	assert_null(tree);
	if (!strstr(err.message, needle)) {
		print_error("message '%s' lacks '%s'\n", err.message, needle);
		fail();
	}
	assert_string_equal(err.file, expected_file);
	assert_int_equal(err.line, line);
	cp_err_release(&err);
	free(path);
	free(expected_file);
}

/* ------------------------------------------------------- grammar cases */

/* Case 1: nesting, comments, normpath. */
static void test_nesting(void **state)
{
	(void)state;
	struct tree *tree =
		parse_ok("#c\nparent\n    file1.txt\n    child\n        file2\n    file3.txt  #x\nfile4.txt\n");
	assert_key_path(tree, "file2", "parent/child/file2");
	assert_key_path(tree, "child", "parent/child");
	assert_key_path(tree, "", ".");
	assert_key_path(tree, "file3", "parent/file3.txt");
	assert_key_path(tree, "file4", "file4.txt");
	assert_key_path(tree, "file1", "parent/file1.txt");
	assert_int_equal(tree->templates[0].parent, -1);
	long child = tree_find_template(tree, "child", NULL);
	long file2 = tree_find_template(tree, "file2", NULL);
	assert_int_equal(tree->templates[file2].parent, child);
	assert_string_equal(tree->templates[file2].segment, "file2");
	assert_int_equal(tree->templates[file2].line, 5);
	assert_string_equal(tree->templates[file2].file, "test.tree");
	tree_free(tree);
}

/* Tabs count one like a space, CRLF is fine, normpath applies. */
static void test_tabs_count_one(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("a\n\tb\n    c\r\n");
	assert_key_path(tree, "c", "a/b/c");
	/* Read as file-tree reads it, with one warning that names the first tab. */
	assert_int_equal(tree->warnings.count, 1);
	assert_string_equal(tree->warnings.items[0], "test.tree:2: a tab in an indent counts as one space, as in "
						     "file-tree (1 line indented with tabs); indent with spaces");
	tree_free(tree);
	tree = parse_ok("x\n    a/../b.txt\n    ./c.txt\n    d//e.txt\n");
	assert_int_equal(tree->warnings.count, 0);
	assert_key_path(tree, "b", "x/b.txt");
	assert_key_path(tree, "c", "x/c.txt");
	assert_key_path(tree, "e", "x/d/e.txt");
	tree_free(tree);
	/* The first line may be indented; only dedents must match. */
	tree = parse_ok("   a\n         b\n   c\n");
	assert_key_path(tree, "b", "a/b");
	assert_key_path(tree, "c", "c");
	tree_free(tree);
}

/* Case 2: a dedent must land on an earlier indent. */
static void test_bad_dedent(void **state)
{
	(void)state;
	parse_fails("a\n    b\n  c\n", 3,
		    "Number of spaces of current line does not match any previous lines: it is indented by 2; the "
		    "indents in use here are 0 (line 1), 4 (line 2), or more than 4 for a child of line 2");
	parse_fails("a\n  b\n      c\n    d\n", 4, "does not match any previous lines");
	/* Assignments look their parent up too. */
	parse_fails("a\n    b\n  x = 1\n", 3, "does not match any previous lines");
	parse_fails("  a\r\n\tb\r\n", 2, "does not match any previous lines");
}

/* Case 3: an indent-0 assignment empties the stack; an indented one does not. */
static void test_stack_reset(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("a\n    b\nx = 1\n    c\n");
	assert_key_path(tree, "c", "c");
	tree_free(tree);
	tree = parse_ok("a\n    x = 1\n    c\n");
	assert_key_path(tree, "c", "a/c");
	tree_free(tree);
	/* Blank and comment-only lines do not affect nesting. */
	tree = parse_ok("a\n\n   # indented comment\n\n    c\n");
	assert_key_path(tree, "c", "a/c");
	tree_free(tree);
}

/* Case 4: values. */
static void test_values(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("subject = 01, 02 ,None\nname = my paper\nq = \"quoted\"\ne =\nt = a,\n");
	const struct tree_placeholder *subject = placeholder(tree, "subject");
	assert_non_null(subject);
	assert_true(subject->multiple);
	assert_int_equal(subject->count, 3);
	assert_string_equal(subject->values[0].text, "01");
	assert_string_equal(subject->values[1].text, "02");
	assert_null(subject->values[2].text);
	assert_int_equal(subject->link, -1);
	assert_singular(tree, "name", "my paper");
	assert_singular(tree, "q", "\"quoted\"");
	assert_singular(tree, "e", "");
	const struct tree_placeholder *t = placeholder(tree, "t");
	assert_int_equal(t->count, 2);
	assert_string_equal(t->values[0].text, "a");
	assert_string_equal(t->values[1].text, "");
	tree_free(tree);

	/* Later lines override earlier ones; scoped names are plain names. */
	tree = parse_ok("a = 1\na = 2, 3\nb = x\nb = y   # a comment\nsub/B = 1\n");
	assert_int_equal(placeholder(tree, "a")->count, 2);
	assert_singular(tree, "b", "y");
	assert_singular(tree, "sub/B", "1");
	tree_free(tree);
}

/* Case 5: assignment errors, and the singular None bug. */
static void test_assignment_errors(void **state)
{
	(void)state;
	/* file-tree 1.6.1 crashes on a singular None; cpipe makes the placeholder undefined. */
	struct tree *tree = parse_ok("x = 1\nx = None\ny = None\n{x}.txt (f)\n");
	assert_null(placeholder(tree, "x"));
	assert_null(placeholder(tree, "y"));
	assert_fill(tree, "f", NULL, "Missing placeholder values for {'x'}");
	tree_free(tree);

	parse_fails("a\na = b = c\n", 2, "too many '='");
	parse_fails(" = 3\n", 1, "has no name");

	/* A file name cannot hold '=': the line is an assignment. */
	tree = parse_ok("acq=x.nii\n");
	assert_singular(tree, "acq", "x.nii");
	assert_int_equal(tree->template_count, 1);
	tree_free(tree);
}

/* Case 6: keys. */
static void test_keys(void **state)
{
	(void)state;
	struct tree *tree =
		parse_ok("file.nii.gz\nT1w.nii.gz (t1,anat)\nlevel_b ()\nsub-{A}/[ses-{B}]/{C}.txt\n[ses-{B}]\n");
	static const char *const expected[] = {"", "[ses-{B}]", "anat", "file", "t1", "{C}"};
	assert_keys(tree, expected, 6);
	assert_key_path(tree, "t1", "T1w.nii.gz");
	assert_key_path(tree, "anat", "T1w.nii.gz");
	assert_key_path(tree, "{C}", "sub-{A}/[ses-{B}]/{C}.txt");
	/* The keyless template exists. */
	bool found = false;
	for (size_t i = 0; i < tree->template_count; i++)
		if (!strcmp(tree->templates[i].path, "level_b"))
			found = tree->templates[i].key_count == 0;
	assert_true(found);
	tree_free(tree);

	parse_fails("T1w.nii.gz (t1, anat)\n", 1, "Unrecognized line T1w.nii.gz (t1, anat)");
	tree = parse_ok("file.txt(k)\nfile(1).txt\nx.txt (a,,b,)\nspaced.txt     (s)\n");
	assert_key_path(tree, "k", "file.txt");
	assert_key_path(tree, "file(1)", "file(1).txt");
	assert_key_path(tree, "a", "x.txt");
	assert_key_path(tree, "b", "x.txt");
	assert_key_path(tree, "s", "spaced.txt");
	tree_free(tree);

	/* A dotfile gets the empty key, which then clashes with the top level. */
	tree = parse_ok(".bashrc\n");
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(tree_find_template(tree, "", &err), -1);
	assert_non_null(strstr(err.message, "multiple templates matching key ''"));
	cp_err_release(&err);
	tree_free(tree);
}

/* Case 7: bad names. */
static void test_bad_names(void **state)
{
	(void)state;
	parse_fails("bad|name.txt\n", 1, "Invalid character(s) \"|\" in file or directory name: bad|name.txt");
	parse_fails("ok\n    a<b>.txt\n", 2, "Invalid character(s) \"<>\"");
	parse_fails("\"q\".txt\n", 1, "Invalid character(s) \"\"\"");
	parse_fails("my file.txt\n", 1, "Unrecognized line my file.txt");
	parse_fails("my file.txt (k)\n", 1, "Unrecognized line");
	parse_fails("!\n", 1, "Unrecognized line");
}

/* Case 8: duplicates are fine until used; typos get a suggestion. */
static void test_duplicates(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("duplicate\ni\n    duplicate\no\n    duplicate\n");
	static const char *const expected[] = {"", "i", "o"};
	assert_keys(tree, expected, 3);
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(tree_find_template(tree, "duplicate", &err), -1);
	assert_string_equal(err.message,
			    "There are multiple templates matching key 'duplicate': duplicate, i/duplicate, o/duplicate");
	cp_err_release(&err);
	tree_free(tree);

	tree = parse_ok("input.txt\noutput.txt\n");
	assert_int_equal(tree_find_template(tree, "inptu", &err), -1);
	assert_non_null(strstr(err.message, "Template key 'inptu' not found"));
	assert_non_null(strstr(err.message, "did you mean input?"));
	cp_err_release(&err);
	assert_int_equal(tree_find_template(tree, "zzzzzzzz", &err), -1);
	assert_null(strstr(err.message, "did you mean"));
	cp_err_release(&err);
	tree_free(tree);
}

/* Case 9: '!' templates and absolute paths. */
static void test_external(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("!/abs/dir\n    f.txt\n!~/bib\n    references.bib\na\n    /abs/g.txt\n");
	assert_fill(tree, "f", "/abs/dir/f.txt", NULL);
	assert_fill(tree, "references", "~/bib/references.bib", NULL);
	assert_fill(tree, "g", "/abs/g.txt", NULL);
	long dir = tree_find_template(tree, "dir", NULL);
	long f = tree_find_template(tree, "f", NULL);
	long a = tree_find_template(tree, "a", NULL);
	assert_true(tree->templates[dir].external);
	assert_int_equal(tree->templates[dir].parent, -1);
	assert_false(tree->templates[f].external);
	assert_true(tree_template_is_external(tree, (size_t)f));
	assert_false(tree_template_is_external(tree, (size_t)a));
	assert_false(tree_template_is_external(tree, 0));
	tree_free(tree);

	parse_fails("a\n    !/abs\n", 2,
		    "Defining a new top-level with '!' is only available at the top-level, but the line '!/abs' is "
		    "indented");
}

/* A child at its parent's own path is the parent, under one more key. */
static void test_alias_of_parent(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("data\n    . (data_dir)\n        f.txt\n. (root)\n");
	long data = tree_find_template(tree, "data", NULL);
	assert_int_equal(tree_find_template(tree, "data_dir", NULL), data);
	assert_int_equal(tree_find_template(tree, "root", NULL), 0);
	long f = tree_find_template(tree, "f", NULL);
	assert_int_equal(tree->templates[f].parent, data);
	assert_string_equal(tree->templates[f].path, "data/f.txt");
	assert_int_equal(tree->template_count, 3);
	tree_free(tree);
}

/* Case 10: optional parts. */
static void test_optionals(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("{subject}[_{session}]_T1w.nii.gz (t1)\nx[abc].txt (lit)\nx[a[b]c].txt (nested)\n"
				     "x[a.txt (open)\n");
	assert_fill(tree, "t1", NULL, "Missing placeholder values for {'subject'}");
	set_value(tree, "subject", "A");
	assert_fill(tree, "t1", "A_T1w.nii.gz", NULL);
	set_value(tree, "session", "1");
	assert_fill(tree, "t1", "A_1_T1w.nii.gz", NULL);
	static const char *const sessions[] = {"1", "2"};
	set_list(tree, "session", sessions, 2);
	assert_fill(tree, "t1", "A_T1w.nii.gz", NULL);
	assert_fill(tree, "lit", "xabc.txt", NULL);
	assert_fill(tree, "nested", NULL, "unmatching square brackets");
	assert_fill(tree, "open", "x[a.txt", NULL);

	/* The bracket error is lazy and located at the template's line. */
	struct cp_err err = CP_ERR_INIT;
	struct strbuf out = STRBUF_INIT;
	long nested = tree_find_template(tree, "nested", NULL);
	assert_int_equal(tree_fill(tree, (size_t)nested, &out, &err), -1);
	assert_string_equal(err.file, "test.tree");
	assert_int_equal(err.line, 3);
	cp_err_release(&err);
	strbuf_release(&out);
	tree_free(tree);
}

/* Case 11: format specs and values that are templates. */
static void test_specs_and_nested_values(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("run-{run:02d}.nii (run)\n{t:%H:%M}.txt (time)\n{A}.txt (a)\n");
	set_value(tree, "run", "3");
	assert_fill(tree, "run", "run-03.nii", NULL);
	set_value(tree, "run", "x");
	assert_fill(tree, "run", NULL, "not an integer");
	assert_fill(tree, "time", NULL, "too many ':'");
	set_value(tree, "A", "x_{B}");
	set_value(tree, "B", "y");
	assert_fill(tree, "a", "x_y.txt", NULL);
	set_value(tree, "A", "x[_{B}]");
	set_value(tree, "B", NULL);
	assert_fill(tree, "a", "x.txt", NULL);
	set_value(tree, "B", "2");
	assert_fill(tree, "a", "x_2.txt", NULL);
	/* A value can bring a wildcard. */
	set_value(tree, "A", "01*");
	assert_fill(tree, "a", "01*.txt", NULL);
	/* A value that refers to itself is an error, not a hang. */
	set_value(tree, "A", "{A}");
	assert_fill(tree, "a", NULL, "placeholder 'A' refers to itself: A = {A}");
	set_value(tree, "A", "x_{A:02d}");
	assert_fill(tree, "a", NULL, "refers to itself");
	/* Indirect loops: one that keeps its length, one that grows. */
	set_value(tree, "A", "{B}");
	set_value(tree, "B", "{A}");
	assert_fill(tree, "a", NULL, "keep expanding");
	set_value(tree, "B", "{A}{A}{A}{A}");
	assert_fill(tree, "a", NULL, "makes a path longer than");
	set_value(tree, "B", NULL);
	tree_free(tree);

	/* Typed values from globbing format through their text. */
	tree = parse_ok("{x:03d}_{y:.1f}.txt (f)\n");
	struct tree_value x = {(char *)"7", TREE_VALUE_INT, 7, 0.0, false};
	struct tree_value y = {(char *)"2.25", TREE_VALUE_FLOAT, 0, 2.25, false};
	tree_set_placeholder(tree, "x", &x, 1, false);
	tree_set_placeholder(tree, "y", &y, 1, false);
	assert_fill(tree, "f", "007_2.2.txt", NULL);
	tree_free(tree);
}

/* Case 12: links. */
static void test_links(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("A = 1, 2, 3\nB = a, b, c\n&LINK A, B\n{A}_{B}.txt (f)\n");
	const struct tree_placeholder *a = placeholder(tree, "A"), *b = placeholder(tree, "B");
	assert_int_equal(tree->link_count, 1);
	assert_int_equal(a->link, 0);
	assert_int_equal(b->link, 0);
	/* Iterating the linked group row by row gives 1_a, 2_b, 3_c. */
	static const char *const expected[] = {"1_a.txt", "2_b.txt", "3_c.txt"};
	const char *const names[] = {"A", "B"};
	for (size_t row = 0; row < a->count; row++) {
		const char *values[] = {a->values[row].text, b->values[row].text};
		char *path = fill_with(tree, tree->templates[tree_find_template(tree, "f", NULL)].path, names,
				       values, 2);
		assert_string_equal(path, expected[row]);
		free(path);
	}
	/* Multi-valued placeholders do not fill. */
	assert_fill(tree, "f", NULL, "Missing placeholder values for {'A', 'B'}");
	tree_free(tree);

	tree = parse_ok("A = 1, 2, 3\nB = a, b, c\n{A}_{B}.txt (f)\n");
	assert_int_equal(tree->link_count, 0);
	assert_int_equal(placeholder(tree, "A")->link, -1);
	tree_free(tree);

	parse_fails("A = 1, 2\n\n&LINK A, B\n", 3, "No parameter value available for B");
	/* file-tree accepts unequal lengths and crashes while iterating; cpipe rejects them here. */
	parse_fails("A = 1, 2, 3\nB = a, b\n&LINK A, B\n", 3, "same number of values");
	parse_fails("&LINK\n", 1, "&LINK needs placeholder names");

	/* Links are applied after the whole file: a later value counts. */
	tree = parse_ok("&LINK A, B\nA = 1, 2\nB = x, y\n");
	assert_int_equal(tree->link_count, 1);
	tree_free(tree);

	/* Transitive merging. */
	tree = parse_ok("A = 1, 2\nB = 3, 4\nC = 5, 6\nD = 7, 8\nE = 9, 0\n&LINK A, B\n&LINK D, E\n&LINK B, C\n");
	assert_int_equal(tree->link_count, 2);
	assert_int_equal(placeholder(tree, "A")->link, placeholder(tree, "C")->link);
	assert_int_equal(placeholder(tree, "B")->link, placeholder(tree, "C")->link);
	assert_int_equal(placeholder(tree, "D")->link, placeholder(tree, "E")->link);
	assert_int_not_equal(placeholder(tree, "A")->link, placeholder(tree, "D")->link);
	/* Merging groups checks every member's length. */
	static const char *const three[] = {"p", "q", "r"};
	set_list(tree, "F", three, 3);
	const char *const join[] = {"F", "E"};
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(tree_link(tree, join, 2, &err), -1);
	assert_non_null(strstr(err.message, "same number of values"));
	cp_err_release(&err);
	const char *const join_groups[] = {"A", "E"};
	assert_int_equal(tree_link(tree, join_groups, 2, &err), 0);
	assert_int_equal(tree->link_count, 1);
	/* Setting a member unlinks it; a group left with one member dissolves. */
	static const char *const pair[] = {"x", "y"};
	set_list(tree, "A", pair, 2);
	assert_int_equal(placeholder(tree, "A")->link, -1);
	assert_int_equal(placeholder(tree, "B")->link, 0);
	tree_free(tree);

	tree = parse_ok("A = 1, 2\nB = 3, 4\n&LINK A, B\n");
	set_value(tree, "B", NULL);
	assert_null(placeholder(tree, "B"));
	assert_int_equal(tree->link_count, 0);
	assert_int_equal(placeholder(tree, "A")->link, -1);
	tree_free(tree);
}

/* Case 13: what iteration needs: filling each combination, and the missing-value errors. */
static void test_iteration_filling(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("A = 1, 2\nB = a, b\n{B}/{A}.txt (f)\n{A}[_{B}].txt (g)\n");
	const char *const names[] = {"B", "A"};
	static const char *const expected[] = {"a/1.txt", "a/2.txt", "b/1.txt", "b/2.txt"};
	const struct tree_placeholder *a = placeholder(tree, "A"), *b = placeholder(tree, "B");
	size_t n = 0;
	for (size_t i = 0; i < b->count; i++) {
		for (size_t j = 0; j < a->count; j++) {
			const char *values[] = {b->values[i].text, a->values[j].text};
			char *path = fill_with(tree, "{B}/{A}.txt", names, values, 2);
			assert_string_equal(path, expected[n++]);
			free(path);
		}
	}
	/* B undefined: required fails, optional is dropped. */
	set_value(tree, "B", NULL);
	const char *const only_a[] = {"A"};
	const char *const one[] = {"1"};
	struct cp_err err = CP_ERR_INIT;
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(fill_values(tree, "{B}/{A}.txt", only_a, one, 1, false, &out, &err), -1);
	assert_non_null(strstr(err.message, "Missing placeholder values for {'B'}"));
	cp_err_release(&err);
	char *path = fill_with(tree, "{A}[_{B}].txt", only_a, one, 1);
	assert_string_equal(path, "1.txt");
	free(path);
	/* An override of None makes a value undefined. */
	const char *const b_name[] = {"A", "B"};
	const char *const b_none[] = {"2", NULL};
	set_value(tree, "B", "z");
	path = fill_with(tree, "{A}[_{B}].txt", b_name, b_none, 2);
	assert_string_equal(path, "2.txt");
	free(path);
	strbuf_release(&out);
	tree_free(tree);
}

/*
 * Values read from file names are data: every byte a file name may hold fills in as it is, however
 * the template around it is written, while a tree file's own values stay templates.
 */
static void test_literal_values(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("A = x_{subject}\nsub-{subject}/[ses-{session}/]{subject}_T1w.nii.gz (t1)\n"
				     "{a}_{b}.txt (ab)\n{run:02d}.txt (run)\n{A}.txt (nested)\n");
	static const char *const hostile[] = {"[x]", "a[b", "q]", "{y}", "{", "}", "*", "?", "\\[", "$x", "'\"`",
					      " s p ", "-lead", "new\nline", "\xc3\xbc"};
	const char *const names[] = {"subject", "session"};
	for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
		struct strbuf want = STRBUF_INIT;
		const char *values[] = {hostile[i], NULL};
		strbuf_addf(&want, "sub-%s/%s_T1w.nii.gz", hostile[i], hostile[i]);
		char *path = fill_as(tree, tree->templates[tree_find_template(tree, "t1", NULL)].path, names, values, 2,
				     true);
		assert_string_equal(path, want.buf);
		free(path);
		values[1] = hostile[i];
		strbuf_reset(&want);
		strbuf_addf(&want, "sub-%s/ses-%s/%s_T1w.nii.gz", hostile[i], hostile[i], hostile[i]);
		path = fill_as(tree, tree->templates[tree_find_template(tree, "t1", NULL)].path, names, values, 2, true);
		assert_string_equal(path, want.buf);
		free(path);
		strbuf_release(&want);
	}
	/* Brackets split over two values make no optional part. */
	const char *const ab[] = {"a", "b"};
	const char *const split[] = {"x[", "]y"};
	char *path = fill_as(tree, "{a}_{b}.txt", ab, split, 2, true);
	assert_string_equal(path, "x[_]y.txt");
	free(path);
	/* A tree file's value that is a template takes a literal value in. */
	const char *const subject[] = {"subject"};
	const char *const bracketed[] = {"[z]"};
	path = fill_as(tree, "{A}.txt", subject, bracketed, 1, true);
	assert_string_equal(path, "x_[z].txt");
	free(path);
	/* The same text, not from a file name, is a template, as in file-tree. */
	path = fill_as(tree, "{A}.txt", subject, bracketed, 1, false);
	assert_string_equal(path, "x_z.txt");
	free(path);
	/* A spec formats a literal value; one that does not fit is an error naming it. */
	const char *const run[] = {"run"};
	const char *const three[] = {"3"}, *const word[] = {"x"};
	path = fill_as(tree, "{run:02d}.txt", run, three, 1, true);
	assert_string_equal(path, "03.txt");
	free(path);
	struct strbuf out = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(fill_values(tree, "{run:02d}.txt", run, word, 1, true, &out, &err), -1);
	assert_non_null(strstr(err.message, "placeholder 'run'"));
	cp_err_release(&err);
	/* A singular literal value in the tree itself fills tree_fill's paths the same way. */
	struct tree_value literal = {(char *)"[w]", TREE_VALUE_STRING, 0, 0.0, true};
	tree_set_placeholder(tree, "subject", &literal, 1, false);
	assert_fill(tree, "t1", "sub-[w]/[w]_T1w.nii.gz", NULL);
	assert_fill(tree, "nested", "x_[w].txt", NULL);
	strbuf_release(&out);
	tree_free(tree);
}

/* tree_substitute_singular keeps what it cannot fill. */
static void test_substitute_singular(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("a = x\nrun = 4\nmany = 1, 2\nv = {b}_{a}\n");
	struct strbuf out = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(tree_substitute_singular(tree, "{a}/[{b}_]{run:02d}_{many}/{v}*/x[q].txt", &out, &err), 0);
	assert_string_equal(out.buf, "x/[{b}_]04_{many}/{b}_x*/x[q].txt");
	strbuf_release(&out);
	tree_free(tree);
}

/* ------------------------------------------------------------ sub-trees */

static void test_subtree_with_precursor(void **state)
{
	(void)state;
	struct scratch scratch;
	scratch_init(&scratch);
	scratch_write(&scratch, "child.tree",
		      "paper_name = default\n{paper_name}.pdf (output)\n{subject}/notes.txt (notes)\n"
		      "figures\n    fig-{n:02d}.png (figure)\n");
	scratch_write(&scratch, "parent.tree",
		      "paper_name = mine\nsubject = 01\nversions\n    ->child (versioned)\n"
		      "    ->child paper_name=other,n=3 (v1,v2)\n{paper_name}.pdf (main)\n");
	struct tree *tree = scratch_parse(&scratch, "parent.tree", NULL);
	/* The sub-tree's own default wins inside it; the parent supplies the rest. */
	assert_fill(tree, "versioned/output", "versions/default.pdf", NULL);
	assert_fill(tree, "main", "mine.pdf", NULL);
	assert_fill(tree, "versioned/notes", "versions/01/notes.txt", NULL);
	assert_fill(tree, "v1/output", "versions/other.pdf", NULL);
	assert_fill(tree, "v2/figure", "versions/figures/fig-03.png", NULL);
	assert_fill(tree, "versioned/figure", NULL, "Missing placeholder values for {'versioned/n'}");
	/* The sub-tree's top is the `->` line's parent, under key "P/". */
	assert_key_path(tree, "versioned/", "versions");
	assert_key_path(tree, "versions", "versions");
	assert_key_path(tree, "versioned/output", "versions/{versioned/paper_name}.pdf");
	assert_singular(tree, "versioned/paper_name", "default");
	assert_singular(tree, "v1/paper_name", "other");
	assert_singular(tree, "v1/n", "3");
	assert_singular(tree, "paper_name", "mine");
	/* The fallback lookup. */
	const struct tree_placeholder *found = tree_find_placeholder(tree, "v1/paper_name");
	assert_string_equal(found->values[0].text, "other");
	found = tree_find_placeholder(tree, "x/y/subject");
	assert_string_equal(found->name, "subject");
	assert_null(tree_find_placeholder(tree, "x/nothing"));
	/* Templates keep the sub-tree file and line for messages. */
	long figure = tree_find_template(tree, "v2/figure", NULL);
	assert_int_equal(tree->templates[figure].line, 5);
	assert_non_null(strstr(tree->templates[figure].file, "child.tree"));
	tree_free(tree);
	scratch_release(&scratch);
}

static void test_subtree_without_precursor(void **state)
{
	(void)state;
	struct scratch scratch;
	scratch_init(&scratch);
	scratch_write(&scratch, "child.tree", "paper_name = default\nrun = 1, 2\n{paper_name}_{run}.pdf (output)\n");
	scratch_write(&scratch, "late.tree", "->child\npaper_name = z\n{paper_name}.txt (main)\n");
	scratch_write(&scratch, "early.tree", "run = 5, 6\n->child\n");
	scratch_write(&scratch, "early_singular.tree", "run = 5\nsub\n    ->child\n");
	struct tree *tree = scratch_parse(&scratch, "late.tree", NULL);
	/* Singular values are baked in for good; multi-valued ones join the parent. */
	assert_key_path(tree, "output", "default_{run}.pdf");
	assert_fill(tree, "main", "z.txt", NULL);
	const struct tree_placeholder *run = placeholder(tree, "run");
	assert_non_null(run);
	assert_int_equal(run->count, 2);
	tree_free(tree);

	scratch_parse_fails(&scratch, "early.tree", "early.tree", 2,
			    "Sub-tree placeholder values for {'run'} conflict with those set in the parent tree.");
	/* Any parent value set before the `->` line conflicts with a multi-valued one of the sub-tree. */
	scratch_parse_fails(&scratch, "early_singular.tree", "early_singular.tree", 3, "conflict");
	scratch_release(&scratch);
}

static void test_subtree_search_path(void **state)
{
	(void)state;
	struct scratch scratch;
	scratch_init(&scratch);
	scratch_mkdir(&scratch, "study");
	scratch_mkdir(&scratch, "library");
	scratch_write(&scratch, "library/anat.tree", "from_library.txt (which)\n");
	scratch_write(&scratch, "library/only.tree", "only.txt (only)\n");
	scratch_write(&scratch, "study/anat.tree", "from_study.txt (which)\n");
	scratch_write(&scratch, "study/main.tree", "a\n    ->anat.tree (x)\nb\n    ->only (y)\n");
	char *library = scratch_path(&scratch, "library");
	const char *dirs[] = {library};
	struct tree_search search = {dirs, 1};
	/* The including file's own directory comes first. */
	struct tree *tree = scratch_parse(&scratch, "study/main.tree", &search);
	assert_key_path(tree, "x/which", "a/from_study.txt");
	assert_key_path(tree, "y/only", "b/only.txt");
	tree_free(tree);

	/* Without the search path, "only" is not found. */
	scratch_parse_fails(&scratch, "study/main.tree", "study/main.tree", 4, "No file tree found for only");
	/* ".tree" is appended to a file name given without it. */
	char *without_suffix = scratch_path(&scratch, "study/main");
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(tree_parse_file(without_suffix, &search, &tree, &err), 0);
	tree_free(tree);
	free(without_suffix);
	free(library);
	scratch_release(&scratch);
}

static void test_subtree_errors(void **state)
{
	(void)state;
	struct scratch scratch;
	scratch_init(&scratch);
	scratch_write(&scratch, "broken.tree", "ok.txt\n\nbad|name\n");
	scratch_write(&scratch, "uses_broken.tree", "x\n    ->broken (b)\n");
	scratch_write(&scratch, "child_of_subtree.tree", "->links\n    file.txt\n");
	scratch_write(&scratch, "self.tree", "->self (again)\n");
	scratch_write(&scratch, "links.tree", "a = 1, 2\nb = 3, 4\n&LINK a, b\n{a}{b}.txt (f)\n");
	scratch_write(&scratch, "uses_links.tree", "->links (p)\n->links\n");
	scratch_write(&scratch, "bad_variable.tree", "->links a (p)\n");
	scratch_write(&scratch, "bad_name.tree", "->li:nks\n");
	scratch_write(&scratch, "bad_precursor.tree", "->links (p/q)\n");
	/* Errors inside a sub-tree name the sub-tree's own file and line. */
	scratch_parse_fails(&scratch, "uses_broken.tree", "broken.tree", 3, "Invalid character(s) \"|\"");
	scratch_parse_fails(&scratch, "child_of_subtree.tree", "child_of_subtree.tree", 2,
			    "Current line seems to be the child of a sub-tree, which is not supported.");
	scratch_parse_fails(&scratch, "self.tree", "self.tree", 1, "sub-trees nested more than");
	scratch_parse_fails(&scratch, "bad_variable.tree", "bad_variable.tree", 1, "must be written name=value");
	scratch_parse_fails(&scratch, "bad_name.tree", "bad_name.tree", 1,
			    "Invalid character(s) \":\" in sub-tree name: li:nks");
	scratch_parse_fails(&scratch, "bad_precursor.tree", "bad_precursor.tree", 1,
			    "Invalid character(s) \"/\" in sub-tree name: p/q");

	/* Links travel with the sub-tree: scoped with a precursor, as they are without. */
	struct tree *tree = scratch_parse(&scratch, "uses_links.tree", NULL);
	assert_int_equal(tree->link_count, 2);
	assert_int_equal(placeholder(tree, "p/a")->link, placeholder(tree, "p/b")->link);
	assert_int_equal(placeholder(tree, "a")->link, placeholder(tree, "b")->link);
	assert_int_not_equal(placeholder(tree, "a")->link, placeholder(tree, "p/a")->link);
	assert_key_path(tree, "p/f", "{p/a}{p/b}.txt");
	tree_free(tree);
	scratch_release(&scratch);
}

/* --------------------------------------------------------- to_string */

static char *to_string(const struct tree *tree)
{
	struct strbuf out = STRBUF_INIT;
	tree_to_string(tree, &out);
	return strbuf_detach(&out);
}

static void test_to_string(void **state)
{
	(void)state;
	struct tree *tree = parse_ok("subject = 02, 01, None\nB = x\nC = a, b\nD = c, d\ne =\n&LINK D, C\n"
				     "sub-{subject}\n    zeta\n        z.txt\n    T1w.nii.gz (t1)\n    anat ()\n"
				     "        T2.nii (T2,t2)\n    beta.txt\n!/ext\n    e.txt\n");
	char *text = to_string(tree);
	assert_string_equal(text, "B = x\n"
				  "C = a, b\n"
				  "D = c, d\n"
				  "e =\n"
				  "subject = 02, 01, None\n"
				  "&LINK C, D\n"
				  "\n"
				  ".\n"
				  "    sub-{subject}\n"
				  "        T1w.nii.gz (t1)\n"
				  "        beta.txt\n"
				  "        anat ()\n"
				  "            T2.nii (T2,t2)\n"
				  "        zeta\n"
				  "            z.txt\n"
				  "!/ext\n"
				  "    e.txt\n");
	/* Reading the output back gives the same text. */
	struct tree *again = parse_ok(text);
	char *text_again = to_string(again);
	assert_string_equal(text, text_again);
	free(text_again);
	tree_free(again);
	free(text);
	tree_free(tree);
}

static void test_to_string_subtree_round_trip(void **state)
{
	(void)state;
	struct scratch scratch;
	scratch_init(&scratch);
	scratch_write(&scratch, "child.tree", "n = 1\nf-{n}.txt (f)\n. (alias)\n");
	scratch_write(&scratch, "parent.tree", "d\n    ->child (p)\n");
	struct tree *tree = scratch_parse(&scratch, "parent.tree", NULL);
	char *text = to_string(tree);
	assert_string_equal(text, "p/n = 1\n\n.\n    d (d,p/,p/alias)\n        f-{p/n}.txt (p/f)\n");
	struct tree *again = parse_ok(text);
	assert_key_path(again, "p/", "d");
	assert_fill(again, "p/f", "d/f-1.txt", NULL);
	tree_free(again);
	free(text);
	tree_free(tree);
	scratch_release(&scratch);
}

/* --------------------------------------------------------------- values */

static void test_value_compare(void **state)
{
	(void)state;
	struct tree_value none = {NULL, TREE_VALUE_STRING, 0, 0.0, false};
	struct tree_value nine = {(char *)"9", TREE_VALUE_STRING, 0, 0.0, false};
	struct tree_value ten = {(char *)"10", TREE_VALUE_STRING, 0, 0.0, false};
	struct tree_value b = {(char *)"b", TREE_VALUE_STRING, 0, 0.0, false};
	struct tree_value int_nine = {(char *)"9", TREE_VALUE_INT, 9, 0.0, false};
	struct tree_value int_ten = {(char *)"10", TREE_VALUE_INT, 10, 0.0, false};
	struct tree_value half = {(char *)"9.5", TREE_VALUE_FLOAT, 0, 9.5, false};
	assert_true(tree_value_compare(&none, &nine) < 0);
	assert_true(tree_value_compare(&nine, &none) > 0);
	assert_int_equal(tree_value_compare(&none, &none), 0);
	/* Strings compare bytewise: "10" < "9" < "b". */
	assert_true(tree_value_compare(&ten, &nine) < 0);
	assert_true(tree_value_compare(&nine, &b) < 0);
	/* Numbers compare numerically, and before strings. */
	assert_true(tree_value_compare(&int_nine, &int_ten) < 0);
	assert_true(tree_value_compare(&int_nine, &half) < 0);
	assert_true(tree_value_compare(&half, &int_ten) < 0);
	assert_true(tree_value_compare(&int_ten, &nine) < 0);
	assert_true(tree_value_compare(&none, &int_nine) < 0);

	struct tree_value copy;
	tree_value_copy(&copy, &half);
	assert_string_equal(copy.text, "9.5");
	assert_true(copy.text != half.text);
	assert_int_equal(copy.type, TREE_VALUE_FLOAT);
	tree_value_release(&copy);
	assert_null(copy.text);
}

/* ------------------------------------------------------------ trees/ */

static void test_shipped_trees(void **state)
{
	(void)state;
	static const char *const files[] = {"mydata.tree", "bids.tree", "study.tree", "anat_preproc.tree"};
	struct tree_search search = {NULL, 0};
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		char *path = xasprintf("%s/trees/%s", CPIPE_SOURCE_DIR, files[i]);
		struct tree *tree = NULL;
		struct cp_err err = CP_ERR_INIT;
		if (tree_parse_file(path, &search, &tree, &err) < 0) {
			print_error("%s: %s:%d: %s\n", files[i], err.file, err.line, err.message);
			fail();
		}
		if (!strcmp(files[i], "mydata.tree")) {
			assert_key_path(tree, "t1_brain", "subject{subject}/T1w_brain.nii.gz");
			set_value(tree, "subject", "A");
			assert_fill(tree, "t1_reorient", "subjectA/T1w_reorient.nii.gz", NULL);
		} else if (!strcmp(files[i], "bids.tree")) {
			set_value(tree, "subject", "01");
			assert_fill(tree, "T1w", "sub-01/anat/sub-01_T1w.nii.gz", NULL);
			set_value(tree, "session", "a");
			assert_fill(tree, "T1w", "sub-01/ses-a/anat/sub-01_ses-a_T1w.nii.gz", NULL);
		} else if (!strcmp(files[i], "study.tree")) {
			set_value(tree, "subject", "01");
			assert_fill(tree, "anat/brain", "sub-01/anat/T1w_brain.nii.gz", NULL);
		}
		tree_free(tree);
		free(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_tabs_count_one),
		cmocka_unit_test(test_bad_dedent),
		cmocka_unit_test(test_stack_reset),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_assignment_errors),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_external),
		cmocka_unit_test(test_alias_of_parent),
		cmocka_unit_test(test_optionals),
		cmocka_unit_test(test_specs_and_nested_values),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_iteration_filling),
		cmocka_unit_test(test_literal_values),
		cmocka_unit_test(test_substitute_singular),
		cmocka_unit_test(test_subtree_with_precursor),
		cmocka_unit_test(test_subtree_without_precursor),
		cmocka_unit_test(test_subtree_search_path),
		cmocka_unit_test(test_subtree_errors),
		cmocka_unit_test(test_to_string),
		cmocka_unit_test(test_to_string_subtree_round_trip),
		cmocka_unit_test(test_value_compare),
		cmocka_unit_test(test_shipped_trees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
