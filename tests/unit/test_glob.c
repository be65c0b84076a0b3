/*
 * Unit tests for the glob module: file-tree's update_glob rules (cpipe-tree(5), GLOBBING),
 * one fresh temporary study per test, plus glob_match_path and
 * glob_template_regex on their own.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpipe/glob.h"
#include "test_helpers.h"

/* The study of the running test: a fresh directory, its tree and what the last glob found. */
struct study {
	char root[64];
	struct tree *tree;
	struct glob_result result;
	bool all_parses; /* glob as file-tree does, every parse of a file kept */
};

static int study_setup(void **state)
{
	struct study *study = xcalloc(1, sizeof(*study));
	snprintf(study->root, sizeof(study->root), "/tmp/cpipe-test-glob-XXXXXX");
	if (!mkdtemp(study->root)) {
		free(study);
		return -1;
	}
	*state = study;
	return 0;
}

static int study_teardown(void **state)
{
	struct study *study = *state;
	int rc = remove_tree(study->root);
	if (study->tree)
		tree_free(study->tree);
	glob_result_release(&study->result);
	free(study);
	return rc;
}

/* Create each path below the study root, with its parents; a trailing '/' makes a directory. */
static void make_paths(struct study *study, const char *const *paths)
{
	for (; *paths; paths++) {
		char *full = xasprintf("%s/%s", study->root, *paths);
		for (char *slash = strchr(full + strlen(study->root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
			*slash = '\0';
			assert_true(mkdir(full, 0755) == 0 || errno == EEXIST);
			*slash = '/';
		}
		if (full[strlen(full) - 1] != '/')
			write_text(full, "");
		free(full);
	}
}

/* make_paths for a vector, which it releases. */
static void make_path_vec(struct study *study, struct strvec *paths)
{
	const char **list = xcalloc(paths->count + 1, sizeof(*list));
	for (size_t i = 0; i < paths->count; i++)
		list[i] = paths->items[i];
	make_paths(study, list);
	free(list);
	strvec_release(paths);
}

static void parse_tree(struct study *study, const char *text)
{
	struct cp_err err = CP_ERR_INIT;
	int rc = tree_parse_string(text, "test.tree", NULL, &study->tree, &err);
	if (rc)
		print_error("tree error: %s\n", err.message);
	assert_int_equal(rc, 0);
	cp_err_release(&err);
}

/* Glob `keys` (NULL-terminated) with optional link groups; returns glob_update's result code. */
static int glob_keys(struct study *study, const char *const *keys, const char *const *const *links,
		     const size_t *link_sizes, size_t link_count, struct cp_err *err)
{
	size_t key_count = 0;
	while (keys[key_count])
		key_count++;
	struct glob_request request = {keys, key_count, study->root, links, link_sizes, link_count, study->all_parses, NULL};
	glob_result_release(&study->result);
	return glob_update(study->tree, &request, &study->result, err);
}

static void glob_ok(struct study *study, const char *const *keys)
{
	struct cp_err err = CP_ERR_INIT;
	int rc = glob_keys(study, keys, NULL, NULL, 0, &err);
	if (rc)
		print_error("glob error: %s\n", err.message);
	assert_int_equal(rc, 0);
	cp_err_release(&err);
}

/* A placeholder's values as "a,b,None"; "<undefined>" when it has none. */
static char *values_text(const struct tree *tree, const char *name)
{
	const struct tree_placeholder *placeholder = tree_find_placeholder(tree, name);
	if (!placeholder || !placeholder->count)
		return xstrdup("<undefined>");
	struct strbuf out = STRBUF_INIT;
	for (size_t i = 0; i < placeholder->count; i++) {
		if (i)
			strbuf_addch(&out, ',');
		strbuf_adds(&out, placeholder->values[i].text ? placeholder->values[i].text : "None");
	}
	return strbuf_detach(&out);
}

#define assert_values(tree, name, expected) \
	do { \
		char *actual_ = values_text((tree), (name)); \
		assert_string_equal(actual_, (expected)); \
		free(actual_); \
	} while (0)

/* Globbed values are stored as lists, even with one value. */
static void assert_list(const struct tree *tree, const char *name)
{
	const struct tree_placeholder *placeholder = tree_find_placeholder(tree, name);
	assert_non_null(placeholder);
	assert_true(placeholder->multiple);
}

/* One result line as "key path name=value ..." (None for absent values). */
static char *file_text(const struct glob_file *file)
{
	struct strbuf out = STRBUF_INIT;
	strbuf_addf(&out, "%s %s", file->key ? file->key : "-", file->path);
	for (size_t b = 0; b < file->binding_count; b++)
		strbuf_addf(&out, " %s=%s", file->bindings[b].name,
			    file->bindings[b].value.text ? file->bindings[b].value.text : "None");
	return strbuf_detach(&out);
}

/* All result lines joined with '\n'. */
static char *result_text(const struct glob_result *result)
{
	struct strbuf out = STRBUF_INIT;
	for (size_t i = 0; i < result->count; i++) {
		char *line = file_text(&result->files[i]);
		if (i)
			strbuf_addch(&out, '\n');
		strbuf_adds(&out, line);
		free(line);
	}
	return strbuf_detach(&out);
}

#define assert_result(result, expected) \
	do { \
		char *actual_ = result_text(result); \
		assert_string_equal(actual_, (expected)); \
		free(actual_); \
	} while (0)

static const struct tree_value *binding(const struct glob_file *file, const char *name)
{
	for (size_t b = 0; b < file->binding_count; b++)
		if (!strcmp(file->bindings[b].name, name))
			return &file->bindings[b].value;
	fail_msg("no binding %s", name);
	return NULL;
}

/* ------------------------------------------------------------ update_glob */

/* Values are collected per placeholder, not per file (GLOBBING step 10): optional directory levels give None. */
static void test_optional_directory(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"sub-1/f", "sub-1/ses-x/f", "sub-2/ses-y/f", "sub-3/g", NULL});
	parse_tree(study, "sub-{A}/[ses-{B}]/f (f)\n");
	glob_ok(study, (const char *const[]){"f", NULL});
	assert_values(study->tree, "A", "1,2");
	assert_values(study->tree, "B", "None,x,y");
	assert_list(study->tree, "A");
	assert_list(study->tree, "B");
	assert_result(&study->result, "f sub-1/f A=1 B=None\n"
				      "f sub-1/ses-x/f A=1 B=x\n"
				      "f sub-2/ses-y/f A=2 B=y");
}

/* An optional directory at the top level: without it the path is still relative (file-tree finds both). */
static void test_optional_top_directory(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"f.txt", "ses-2/f.txt", NULL});
	parse_tree(study, "[ses-{B}]\n    f.txt (f)\n");
	glob_ok(study, (const char *const[]){"f", NULL});
	assert_values(study->tree, "B", "None,2");
	assert_result(&study->result, "f f.txt B=None\nf ses-2/f.txt B=2");
}

/* GLOBBING step 6: {x:02d} takes at most two digits and gives ints; {x:d} takes a sign; {x:f} needs a dot. */
static void test_typed_fields(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"run-03.nii", "run-003.nii", "run-7.nii", "run-x.nii", "d-02.txt",
						"d--3.txt", "d-a.txt", "d-10.txt", "f-2.txt", "f-2.50.txt", NULL});
	parse_tree(study, "run-{run:02d}.nii (run)\nd-{x:d}.txt (d)\nf-{y:f}.txt (f)\n");
	glob_ok(study, (const char *const[]){"run", "d", "f", NULL});
	assert_values(study->tree, "run", "3,7");
	/* Ints sort numerically, not as text. */
	assert_values(study->tree, "x", "-3,2,10");
	assert_values(study->tree, "y", "2.5");
	const struct tree_placeholder *run = tree_find_placeholder(study->tree, "run");
	assert_int_equal(run->values[0].type, TREE_VALUE_INT);
	assert_int_equal(run->values[0].integer, 3);
	const struct tree_placeholder *y = tree_find_placeholder(study->tree, "y");
	assert_int_equal(y->values[0].type, TREE_VALUE_FLOAT);
	assert_true(y->values[0].real == 2.5);
	assert_result(&study->result, "d d--3.txt x=-3\n"
				      "d d-02.txt x=2\n"
				      "d d-10.txt x=10\n"
				      "f f-2.50.txt y=2.5\n"
				      "run run-03.nii run=3\n"
				      "run run-7.nii run=7");
}

/* GLOBBING steps 5 and 9 with all_parses: every successful parse is kept; fields are lazy and need one character. */
static void test_ambiguity(void **state)
{
	struct study *study = *state;
	study->all_parses = true;
	make_paths(study, (const char *const[]){"age/bar_age1", "pair/x_y_z.txt", "pair/_b.txt", NULL});
	parse_tree(study, "age/{A}[_age{B:d}] (age)\npair/{C}_{D}.txt (pair)\n");
	glob_ok(study, (const char *const[]){"age", NULL});
	assert_values(study->tree, "A", "bar,bar_age1");
	assert_values(study->tree, "B", "None,1");
	/* Both parses of the one file are reported, in subset order. */
	assert_result(&study->result, "age age/bar_age1 A=bar_age1 B=None\n"
				      "age age/bar_age1 A=bar B=1");

	glob_ok(study, (const char *const[]){"pair", NULL});
	assert_values(study->tree, "C", "x");
	assert_values(study->tree, "D", "y_z");
	assert_result(&study->result, "pair pair/x_y_z.txt C=x D=y_z");
}

/* By default one parse per file: the most optional parts present; a tie keeps the first and warns once per key. */
static void test_one_parse_per_file(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"age/bar_age1", "func/sub-01_task-rest_run-01_bold.nii.gz",
						"func/sub-01_task-rest_bold.nii.gz", "tie/a_x-1", "tie/b_x-2", NULL});
	parse_tree(study, "age/{A}[_age{B:d}] (age)\n"
			  "func/sub-{subject}_task-{task}[_acq-{acq}][_run-{run}]_bold.nii.gz (bold)\n"
			  "tie/{a}[_x-{b}][_x-{c}] (tie)\n");
	glob_ok(study, (const char *const[]){"age", "bold", NULL});
	assert_values(study->tree, "A", "bar");
	assert_values(study->tree, "B", "1");
	assert_values(study->tree, "task", "rest");
	assert_values(study->tree, "run", "None,01");
	assert_result(&study->result, "age age/bar_age1 A=bar B=1\n"
				      "bold func/sub-01_task-rest_bold.nii.gz acq=None run=None subject=01 task=rest\n"
				      "bold func/sub-01_task-rest_run-01_bold.nii.gz acq=None run=01 subject=01 task=rest");
	assert_int_equal(study->result.warnings.count, 0);

	glob_ok(study, (const char *const[]){"tie", NULL});
	assert_result(&study->result, "tie tie/a_x-1 a=a b=1 c=None\ntie tie/b_x-2 a=b b=2 c=None");
	assert_int_equal(study->result.warnings.count, 1);
	assert_string_equal(study->result.warnings.items[0],
			    "key 'tie': 'tie/a_x-1' reads as a=a, b=1 or as a=a, c=1; cpipe kept the first");

	/* One file, one parse, through glob_match_path too. */
	struct glob_result matches = GLOB_RESULT_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_match_path("{A}[_age{B:d}]", "bar_age1", false, &matches, &err), 1);
	assert_string_equal(matches.files[0].bindings[0].value.text, "bar");
	assert_string_equal(matches.files[0].bindings[1].value.text, "1");
	glob_result_release(&matches);
}

/* GLOBBING step 5: a placeholder written twice must capture the same text. */
static void test_repeated_placeholder(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"x/x.txt", "x/y.txt", "y/y_y.txt", NULL});
	parse_tree(study, "{a}/{a}.txt (same)\n{b}/{b}_{b}.txt (thrice)\n");
	glob_ok(study, (const char *const[]){"same", "thrice", NULL});
	assert_values(study->tree, "a", "x");
	assert_values(study->tree, "b", "y");
	assert_result(&study->result, "same x/x.txt a=x\nthrice y/y_y.txt b=y");
}

/* GLOBBING step 11: links store the observed tuples, None first, overwriting earlier values. */
static void test_link(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"sub-1/f", "sub-1/ses-x/f", "sub-2/ses-y/f", NULL});
	/* A pre-set value of a linked name is overwritten, although it filters the matches first. */
	parse_tree(study, "A = 1, 2, 3\nsub-{A}/[ses-{B}]/f (f)\n");
	const char *const names[] = {"A", "B"};
	const char *const *links[] = {names};
	size_t sizes[] = {2};
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_keys(study, (const char *const[]){"f", NULL}, links, sizes, 1, &err), 0);
	assert_values(study->tree, "A", "1,1,2");
	assert_values(study->tree, "B", "None,x,y");
	const struct tree_placeholder *a = tree_find_placeholder(study->tree, "A");
	const struct tree_placeholder *b = tree_find_placeholder(study->tree, "B");
	assert_true(a->link >= 0);
	assert_int_equal(a->link, b->link);

	/* A link name no template has is an error, not a silently emptied group. */
	const char *const bad[] = {"A", "nope"};
	const char *const *bad_links[] = {bad};
	assert_int_equal(glob_keys(study, (const char *const[]){"f", NULL}, bad_links, sizes, 1, &err), -1);
	assert_non_null(strstr(err.message, "nope"));
	cp_err_release(&err);
}

/* GLOBBING steps 8 and 10: pre-set values filter matches and are never changed. */
static void test_preset_filters(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"sub-1/f", "sub-2/f", "sub-3/f", "run-03.nii", "run-04.nii",
						"run-7.nii", NULL});
	parse_tree(study, "subject = 1, 3\nrun = 3, 07\nsub-{subject}/f (f)\nrun-{run:02d}.nii (run)\n");
	glob_ok(study, (const char *const[]){"f", NULL});
	assert_values(study->tree, "subject", "1,3");
	assert_result(&study->result, "f sub-1/f subject=1\nf sub-3/f subject=3");

	/* cpipe fix: string pre-sets match typed fields numerically (file-tree matches nothing here). */
	glob_ok(study, (const char *const[]){"run", NULL});
	assert_values(study->tree, "run", "3,07");
	assert_result(&study->result, "run run-03.nii run=3\nrun run-7.nii run=7");
	assert_int_equal(binding(&study->result.files[0], "run")->type, TREE_VALUE_INT);
}

/* A pre-set string reads as a float as Python's float() would: "0x1p3" is no number, " 8" is 8.0. */
static void test_preset_float(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"v-8.0.txt", "v-2.5.txt", NULL});
	parse_tree(study, "v = 0x1p3, 2.5\nv-{v:f}.txt (v)\n");
	glob_ok(study, (const char *const[]){"v", NULL});
	assert_result(&study->result, "v v-2.5.txt v=2.5");
	tree_free(study->tree);
	parse_tree(study, "v = 8, 2.5\nv-{v:f}.txt (v)\n");
	glob_ok(study, (const char *const[]){"v", NULL});
	assert_result(&study->result, "v v-2.5.txt v=2.5\nv v-8.0.txt v=8.0");
}

/* A singular pre-set value is substituted into the template and reported for every file. */
static void test_preset_singular(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"sub-1/ses-a/f", "sub-1/ses-b/f", "sub-2/ses-c/f", NULL});
	parse_tree(study, "subject = 1\nsub-{subject}/ses-{session}/f (f)\n");
	glob_ok(study, (const char *const[]){"f", NULL});
	assert_values(study->tree, "subject", "1");
	assert_false(tree_find_placeholder(study->tree, "subject")->multiple);
	assert_values(study->tree, "session", "a,b");
	assert_result(&study->result, "f sub-1/ses-a/f session=a subject=1\n"
				      "f sub-1/ses-b/f session=b subject=1");
}

/* GLOBBING step 10: several keys union their values before sorting. */
static void test_multiple_keys(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"a-1.txt", "b-2-q.txt", NULL});
	parse_tree(study, "a-{x}.txt (a)\nb-{x}-{y}.txt (b)\n");
	glob_ok(study, (const char *const[]){"b", "a", "a", NULL});
	assert_values(study->tree, "x", "1,2");
	assert_values(study->tree, "y", "q");
	/* Sorted by key, then path, whatever the order asked; a repeated key counts once. */
	assert_result(&study->result, "a a-1.txt x=1\nb b-2-q.txt x=2 y=q");
}

/* GLOBBING step 5: glob skips hidden entries unless the template spells the dot. */
static void test_hidden(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){".hidden.txt", "a.txt", ".git/x.txt", "d/x.txt", ".cfg/y", NULL});
	parse_tree(study, "{name}.txt (t)\n{dir}/x.txt (x)\n.cfg/{file} (c)\n");
	glob_ok(study, (const char *const[]){"t", "x", "c", NULL});
	assert_values(study->tree, "name", "a");
	assert_values(study->tree, "dir", "d");
	assert_values(study->tree, "file", "y");
}

/* GLOBBING step 5: a capture never holds '/', so a field stays within one path component. */
static void test_no_slash_in_capture(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"d/e.txt", "top.txt", "a/b_c/d", NULL});
	parse_tree(study, "{name}.txt (t)\n{x}_{y}/d (d)\n");
	glob_ok(study, (const char *const[]){"t", "d", NULL});
	assert_values(study->tree, "name", "top");
	assert_values(study->tree, "x", "<undefined>");
	assert_int_equal(study->result.count, 1);
}

/* Globbed values are file names: marked literal, they fill back into the very paths they came from. */
static void test_values_are_literal(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"sub-[x]/f.txt", "sub-{y}/f.txt", "sub-*?/f.txt", NULL});
	parse_tree(study, "sub-{s}\n    f.txt (f)\n");
	glob_ok(study, (const char *const[]){"f", NULL});
	assert_values(study->tree, "s", "*?,[x],{y}");
	const struct tree_placeholder *s = tree_find_placeholder(study->tree, "s");
	for (size_t i = 0; i < s->count; i++) {
		assert_true(s->values[i].literal);
		struct strbuf path = STRBUF_INIT, want = STRBUF_INIT;
		struct cp_err err = CP_ERR_INIT;
		const char *const names[] = {"s"};
		const struct tree_value *const values[] = {&s->values[i]};
		assert_int_equal(tree_fill_template(study->tree, "sub-{s}/f.txt", names, values, 1, &path, &err), 0);
		strbuf_addf(&want, "sub-%s/f.txt", s->values[i].text);
		assert_string_equal(path.buf, want.buf);
		strbuf_release(&path);
		strbuf_release(&want);
	}
}

/*
 * A literal singular value (one given on the command line) is matched exactly, as a list of one
 * is, at the data root too: its brackets, braces, '*' and '?' are never template syntax.
 */
static void test_preset_literal(void **state)
{
	struct study *study = *state;
	const char *const values[] = {"[x]", "a[b]c", "st*r", "q?", "{y}", "[s-{y}]", "e\\[f]", "plain", NULL};
	make_paths(study, (const char *const[]){"[x].txt", "x.txt", "a[b]c.txt", "ac.txt", "abc.txt", "st*r.txt",
						"star.txt", "q?.txt", "qq.txt", "{y}.txt", "[s-{y}].txt", "e\\[f].txt",
						"e\\f.txt", "plain.txt", NULL});
	parse_tree(study, "{s}.txt (f)\n");
	for (const char *const *value = values; *value; value++) {
		struct tree_value literal = {(char *)*value, TREE_VALUE_STRING, 0, 0.0, true};
		tree_set_placeholder(study->tree, "s", &literal, 1, false);
		glob_ok(study, (const char *const[]){"f", NULL});
		char *want = xasprintf("f %s.txt s=%s", *value, *value);
		assert_result(&study->result, want);
		free(want);
	}
}

/* GLOBBING step 5: '*' matches nothing first, '?' exactly one character; their text is not kept. */
static void test_wildcards(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"sub-1_abc.nii", "sub-2_.nii", "sub-3.nii", "f1.txt", "f12.txt",
						"xyz", NULL});
	parse_tree(study, "sub-{s}_*.nii (star)\nf?.txt (question)\n{A}* (greedy)\n");
	glob_ok(study, (const char *const[]){"star", "question", NULL});
	assert_values(study->tree, "s", "1,2");
	assert_result(&study->result, "question f1.txt\nstar sub-1_abc.nii s=1\nstar sub-2_.nii s=2");
	/* "* matches nothing" is tried first, so the field takes the whole name. */
	struct glob_result matches = GLOB_RESULT_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_match_path("{A}*", "xyz", true, &matches, &err), 1);
	assert_string_equal(binding(&matches.files[0], "A")->text, "xyz");
	glob_result_release(&matches);
}

/* GLOBBING step 7: files and directories are not told apart. */
static void test_files_and_directories(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"sub-01/", "sub-04.txt", "other/", NULL});
	parse_tree(study, "sub-{s} (s)\n");
	glob_ok(study, (const char *const[]){"s", NULL});
	assert_values(study->tree, "s", "01,04.txt");
}

/* A data directory that does not exist gives no matches, not an error. */
static void test_missing_directory(void **state)
{
	struct study *study = *state;
	parse_tree(study, "subject = 1, 2\nsub-{subject}/{name}.txt (t)\n");
	char *missing = xasprintf("%s/nowhere", study->root);
	struct glob_request request = {(const char *const[]){"t"}, 1, missing, NULL, NULL, 0, false, NULL};
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_update(study->tree, &request, &study->result, &err), 0);
	assert_int_equal(study->result.count, 0);
	assert_values(study->tree, "name", "<undefined>");
	assert_values(study->tree, "subject", "1,2");
	free(missing);
}

/* Errors: unknown keys (with a suggestion), bad format specs. */
static void test_errors(void **state)
{
	struct study *study = *state;
	parse_tree(study, "input.txt\nbad-{x:5z}.txt (bad)\n");
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_keys(study, (const char *const[]){"inptu", NULL}, NULL, NULL, 0, &err), -1);
	assert_non_null(strstr(err.message, "input"));
	assert_int_equal(glob_keys(study, (const char *const[]){"bad", NULL}, NULL, NULL, 0, &err), -1);
	assert_non_null(strstr(err.message, "format spec"));
	cp_err_release(&err);
}

/* GLOBBING step 4: list values holding '/' are substituted one by one instead of captured. */
static void test_values_with_slash(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"a/b/f.txt", "c/f.txt", "d/f.txt", NULL});
	parse_tree(study, "where = a/b, c\n{where}/f.txt (f)\n");
	glob_ok(study, (const char *const[]){"f", NULL});
	assert_values(study->tree, "where", "a/b,c");
	assert_result(&study->result, "f a/b/f.txt where=a/b\nf c/f.txt where=c");
}

/* Absolute ('!') templates walk from their own literal prefix and report absolute paths. */
static void test_absolute_template(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"ext/r-1.txt", "ext/r-2.txt", NULL});
	char *text = xasprintf("!%s/ext\n    r-{r}.txt (r)\n", study->root);
	parse_tree(study, text);
	free(text);
	struct glob_request request = {(const char *const[]){"r"}, 1, "/nonexistent-data-dir", NULL, NULL, 0, false, NULL};
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_update(study->tree, &request, &study->result, &err), 0);
	assert_values(study->tree, "r", "1,2");
	assert_int_equal(study->result.count, 2);
	char *expected = xasprintf("%s/ext/r-1.txt", study->root);
	assert_string_equal(study->result.files[0].path, expected);
	free(expected);
}

/* Sub-tree placeholders (P/x) with no value are collected under their last component. */
static void test_scoped_placeholder(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"data/v-1.txt", "data/v-2.txt", NULL});
	char *sub = xasprintf("%s/part.tree", study->root);
	write_text(sub, "v-{x}.txt (f)\n");
	const char *dirs[] = {study->root};
	struct tree_search search = {dirs, 1};
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(tree_parse_string("data\n    ->part (P)\n", "main.tree", &search, &study->tree, &err), 0);
	glob_ok(study, (const char *const[]){"P/f", NULL});
	assert_values(study->tree, "x", "1,2");
	assert_result(&study->result, "P/f data/v-1.txt x=1\nP/f data/v-2.txt x=2");
	free(sub);
	cp_err_release(&err);
}

/* Literal directories are entered directly; the top level itself has key "". */
static void test_literal_paths(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"group/mean.nii", "sub-1/anat/T1w.nii", "sub-2/anat/T2w.nii", NULL});
	parse_tree(study, "group\n    mean.nii (mean)\nsub-{s}\n    anat\n        T1w.nii (t1)\n");
	glob_ok(study, (const char *const[]){"mean", "t1", "", NULL});
	assert_values(study->tree, "s", "1");
	assert_result(&study->result, " .\nmean group/mean.nii\nt1 sub-1/anat/T1w.nii s=1");
}

/* A file the walk lstat'ed itself carries what it saw; a symlink (stat would follow it) and a name
   matched from a directory listing carry nothing. */
static void test_walk_stat(void **state)
{
	struct study *study = *state;
	make_paths(study, (const char *const[]){"sub-1/anat/", "sub-2/anat/", "sub-3.txt", NULL});
	char *real = xasprintf("%s/sub-1/anat/T1w.nii", study->root);
	char *link = xasprintf("%s/sub-2/anat/T1w.nii", study->root);
	write_text(real, "12345");
	assert_int_equal(symlink(real, link), 0);
	parse_tree(study, "sub-{s}\n    anat\n        T1w.nii (t1)\nsub-{s}.txt (text)\n");
	glob_ok(study, (const char *const[]){"t1", "text", NULL});
	struct stat st;
	assert_int_equal(stat(real, &st), 0);
	assert_int_equal(study->result.count, 3);
	for (size_t i = 0; i < study->result.count; i++) {
		const struct glob_file *file = &study->result.files[i];
		bool real_one = !strcmp(file->path, "sub-1/anat/T1w.nii");
		assert_int_equal(file->size, real_one ? 5 : -1);
		if (real_one) {
			assert_int_equal(file->mtime_ns, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
		}
	}
	free(real);
	free(link);
}

/* A directory big enough to be shared out between threads: values and order as with one. */
static void test_many_subjects(void **state)
{
	struct study *study = *state;
	struct strvec paths = STRVEC_INIT;
	for (int i = 1500; i >= 1; i--) {
		strvec_push_owned(&paths, xasprintf("sub-%04d/a.txt", i));
		if (i % 2)
			strvec_push_owned(&paths, xasprintf("sub-%04d/ses-%d/b.txt", i, i % 3));
	}
	strvec_push(&paths, "sub-x.txt");
	make_path_vec(study, &paths);
	parse_tree(study, "sub-{s}\n    a.txt (a)\n    [ses-{t:d}]/b.txt (b)\n");
	const char *const names[] = {"s", "t"};
	const char *const *links[] = {names};
	size_t sizes[] = {2};
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_keys(study, (const char *const[]){"b", "a", NULL}, links, sizes, 1, &err), 0);
	assert_int_equal(study->result.count, 1500 + 750);
	for (size_t i = 1; i < study->result.count; i++) {
		const struct glob_file *previous = &study->result.files[i - 1], *file = &study->result.files[i];
		int order = strcmp(previous->key, file->key);
		assert_true(order < 0 || (order == 0 && strcmp(previous->path, file->path) < 0));
	}
	assert_string_equal(study->result.files[0].path, "sub-0001/a.txt");
	assert_string_equal(study->result.files[1500].path, "sub-0001/ses-1/b.txt");
	/* A template's files share its key and binding names: a copy per thread that found some, not per file. */
	const char *keys[8], *names_seen[8];
	size_t key_copies = 0, name_copies = 0;
	for (size_t i = 0; i < 1500; i++) {
		const struct glob_file *file = &study->result.files[i];
		assert_int_equal(file->binding_count, 1);
		bool known_key = false, known_name = false;
		for (size_t k = 0; k < key_copies; k++)
			known_key = known_key || keys[k] == file->key;
		for (size_t k = 0; k < name_copies; k++)
			known_name = known_name || names_seen[k] == file->bindings[0].name;
		if (!known_key && key_copies < 8)
			keys[key_copies] = file->key;
		if (!known_name && name_copies < 8)
			names_seen[name_copies] = file->bindings[0].name;
		key_copies += !known_key;
		name_copies += !known_name;
	}
	/* At most four walking threads (GLOB_MAX_WORKERS in src/glob_int.h). */
	assert_true(key_copies <= 4 && name_copies <= 4);
	/* The link rows come from b's files only (a has no t), sorted, from both threads' halves. */
	const struct tree_placeholder *s_values = tree_find_placeholder(study->tree, "s");
	const struct tree_placeholder *t_values = tree_find_placeholder(study->tree, "t");
	assert_int_equal(s_values->count, 750);
	assert_true(s_values->link >= 0 && s_values->link == t_values->link);
	assert_string_equal(s_values->values[0].text, "0001");
	assert_int_equal(t_values->values[0].integer, 1);
	assert_string_equal(s_values->values[749].text, "1499");
	assert_int_equal(t_values->values[749].integer, 1499 % 3);
	cp_err_release(&err);
}

/*
 * Values found out of order, again and again, and by both threads (the subjects are shared
 * out): each distinct value once, sorted. 1 and 1.0 are different values that sort equal: they
 * keep the order the walk first saw them in, whichever thread saw them.
 */
static void test_values_across_threads(void **state)
{
	struct study *study = *state;
	struct strvec paths = STRVEC_INIT;
	for (int i = 1; i <= 1200; i++) {
		strvec_push_owned(&paths, xasprintf("sub-%04d/ses-%d/f.txt", i, (i * 37) % 400));
		strvec_push_owned(&paths, xasprintf(i <= 300 ? "sub-%04d/y-1.0.txt" : "sub-%04d/x-1.txt", i));
		if (i > 900)
			strvec_push_owned(&paths, xasprintf("sub-%04d/y-0.0.txt", i));
		/* The last value of the first half is the first of the second. */
		strvec_push_owned(&paths, xasprintf("sub-%04d/n-%s.txt", i, i < 600 ? "a" : i > 601 ? "z" : "m"));
	}
	make_path_vec(study, &paths);
	parse_tree(study, "sub-{s}\n    ses-{t}/f.txt (f)\n    x-{r:d}.txt (x)\n    y-{r:f}.txt (y)\n    n-{n}.txt (n)\n");
	glob_ok(study, (const char *const[]){"f", "x", "y", "n", NULL});
	assert_values(study->tree, "n", "a,m,z");
	/* 400 sessions, each found three times, scattered over the subjects. */
	const struct tree_placeholder *sessions = tree_find_placeholder(study->tree, "t");
	assert_int_equal(sessions->count, 400);
	for (size_t i = 1; i < sessions->count; i++)
		assert_true(strcmp(sessions->values[i - 1].text, sessions->values[i].text) < 0);
	assert_values(study->tree, "r", "0.0,1.0,1");
	assert_int_equal(tree_find_placeholder(study->tree, "s")->count, 1200);
	assert_int_equal(study->result.count, 1200 * 3 + 300);

	/* The int first: it is the value worker 0 (the first half) saw. */
	make_paths(study, (const char *const[]){"sub-0001/x-1.txt", NULL});
	tree_free(study->tree);
	parse_tree(study, "sub-{s}\n    x-{r:d}.txt (x)\n    y-{r:f}.txt (y)\n");
	glob_ok(study, (const char *const[]){"x", "y", NULL});
	assert_values(study->tree, "r", "0.0,1,1.0");
}

/*
 * The walk reads each directory in name order (strcmp's, bytes unsigned): 7.0 and 7 sort equal,
 * so the value first seen comes first, and "v-7.0.txt" comes before "v-7.txt".
 */
static void test_walk_name_order(void **state)
{
	struct study *study = *state;
	struct strvec paths = STRVEC_INIT;
	for (int i = 1; i <= 700; i++) {
		strvec_push_owned(&paths, xasprintf("v-%d.txt", i));
		strvec_push_owned(&paths, xasprintf("v-%d.0.txt", i));
	}
	/* Names of 23 bytes and more (the walk keeps longer names apart), zeros in front. */
	for (int i = 701, width = 17; i <= 720; i++, width++) {
		strvec_push_owned(&paths, xasprintf("v-%0*d.txt", width, i));
		strvec_push_owned(&paths, xasprintf("v-%0*d.0.txt", width, i));
	}
	strvec_push(&paths, "v-\xc3\xa9.txt");
	strvec_push(&paths, "v-.txt");
	make_path_vec(study, &paths);
	parse_tree(study, "v-{r:d}.txt (int)\nv-{r:f}.txt (float)\nv-{name}.txt (any)\n");
	glob_ok(study, (const char *const[]){"int", "float", NULL});
	const struct tree_placeholder *values = tree_find_placeholder(study->tree, "r");
	assert_int_equal(values->count, 1440);
	for (size_t i = 0; i < values->count; i++) {
		char *expected = xasprintf(i % 2 ? "%zu" : "%zu.0", i / 2 + 1);
		assert_string_equal(values->values[i].text, expected);
		free(expected);
	}
	/* Every name but "v-.txt" (a field takes a character at least), by bytes: the non-ASCII name last. */
	glob_ok(study, (const char *const[]){"any", NULL});
	assert_int_equal(study->result.count, 1441);
	char *most_zeros = xasprintf("v-%036d.0.txt", 720);
	assert_string_equal(study->result.files[0].path, most_zeros);
	free(most_zeros);
	assert_string_equal(study->result.files[1440].path, "v-\xc3\xa9.txt");
}

/* --------------------------------------------------------- single paths */

static void test_match_path(void **state)
{
	(void)state;
	struct glob_result matches = GLOB_RESULT_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_match_path("{A}[_age{B:d}]", "bar_age1", true, &matches, &err), 2);
	assert_result(&matches, "- bar_age1 A=bar_age1 B=None\n- bar_age1 A=bar B=1");
	assert_int_equal(binding(&matches.files[1], "B")->type, TREE_VALUE_INT);
	glob_result_release(&matches);

	assert_int_equal(glob_match_path("{A}_{B}.txt", "_b.txt", true, &matches, &err), 0);
	assert_int_equal(glob_match_path("{A}_{B}.txt", "x_y_z.txt", true, NULL, &err), 1);
	assert_int_equal(glob_match_path("run-{r:02d}", "run-003", true, NULL, &err), 0);
	assert_int_equal(glob_match_path("run-{r:02d}", "run- 7", true, NULL, &err), 1);
	assert_int_equal(glob_match_path("{x:f}", "2", true, NULL, &err), 0);
	assert_int_equal(glob_match_path("v{x:f}", "v.5", true, NULL, &err), 1);
	/* ".5" is a hidden name: a field starting a component does not match it, as glob would not list it. */
	assert_int_equal(glob_match_path("{x:f}", ".5", true, NULL, &err), 0);
	assert_int_equal(glob_match_path("{x:d}", "0x1f", true, &matches, &err), 1);
	assert_int_equal(binding(&matches.files[0], "x")->integer, 31);
	glob_result_release(&matches);
	/* Case-sensitive, whole path, and a template's normalisation applies. */
	assert_int_equal(glob_match_path("Sub-{s}", "sub-1", true, NULL, &err), 0);
	assert_int_equal(glob_match_path("sub-{s}", "sub-1/x", true, NULL, &err), 0);
	assert_int_equal(glob_match_path("sub-{s}/[ses-{t}]/f", "sub-1/f", true, NULL, &err), 1);
	/* Regex metacharacters in names are literal; a newline in a name is just a byte. */
	assert_int_equal(glob_match_path("a.(b)+[c]$_{x}", "a.(b)+c$_1", true, NULL, &err), 1);
	assert_int_equal(glob_match_path("a.(b)+[c]$_{x}", "aX(b)+c$_1", true, NULL, &err), 0);
	assert_int_equal(glob_match_path("f_{x}", "f_a\n", true, &matches, &err), 1);
	assert_string_equal(binding(&matches.files[0], "x")->text, "a\n");
	glob_result_release(&matches);
	/* Template errors are -1 with a message. */
	assert_int_equal(glob_match_path("{x:q}", "1", true, NULL, &err), -1);
	assert_non_null(err.message);
	assert_int_equal(glob_match_path("x[a[b]c]", "x", true, NULL, &err), -1);
	cp_err_release(&err);
}

static void test_template_regex(void **state)
{
	(void)state;
	struct strbuf out = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(glob_template_regex("sub-{A}/[ses-{B}]/f.{run:02d}", true, &out, &err), 0);
	assert_string_equal(out.buf, "^sub-(?<p1>[^/]+?)/ses-(?<p0>[^/]+?)/f\\.(?<p2> *[0-9]{1,2})\\z");
	strbuf_reset(&out);
	assert_int_equal(glob_template_regex("sub-{A}/[ses-{B}]/f.{run:02d}", false, &out, &err), 0);
	assert_string_equal(out.buf, "^sub-(?<p1>[^/]+?)/f\\.(?<p2> *[0-9]{1,2})\\z");
	strbuf_reset(&out);
	/* A repeated name is a backreference; hidden entries are refused where a field starts a component. */
	assert_int_equal(glob_template_regex("{a}/{a}.txt", true, &out, &err), 0);
	assert_string_equal(out.buf, "^(?!\\.)(?<p0>[^/]+?)/(?!\\.)\\k<p0>\\.txt\\z");
	strbuf_reset(&out);
	/* One line per wildcard variant, "matches nothing" first. */
	assert_int_equal(glob_template_regex("/abs/x*", false, &out, &err), 0);
	assert_string_equal(out.buf, "^/abs/x\\z\n^/abs/x[^/]+?\\z");
	strbuf_release(&out);
	cp_err_release(&err);
}

/*
 * Observations read back as they were added: paths packed against the one before (sharing its start,
 * its end, both, or nothing), two streams merged end to end, a directory's identity and times kept,
 * and a subject's looked-up name costs a few bytes rather than a record and a copy of its path.
 */
static void test_observations_packed(void **state)
{
	(void)state;
	struct stat file, directory;
	memset(&file, 0, sizeof(file));
	memset(&directory, 0, sizeof(directory));
	file.st_mode = S_IFREG | 0644;
	directory.st_mode = S_IFDIR | 0755;
	directory.st_dev = 77;
	directory.st_ino = (ino_t)1 << 40;
	directory.st_mtim.tv_sec = 1700000000;
	directory.st_mtim.tv_nsec = 5;
	directory.st_ctim.tv_sec = 1700000001;
	directory.st_ctim.tv_nsec = 999999999;
	static const char *const first[] = {"", "data/sub-1/T1w.nii.gz", "data/sub-11/T1w.nii.gz",
					    "data/sub-1/T1w.nii.gz", "data/sub-1", "data/sub-1/x/sub-1"};
	static const char *const second[] = {"aa", "a", "aaa", "ba", "b"};
	struct glob_observations seen = GLOB_OBSERVATIONS_INIT, more = GLOB_OBSERVATIONS_INIT;
	glob_observations_add(&seen, GLOB_SEEN_DIRECTORY, first[0], 0, &directory);
	for (size_t i = 1; i < sizeof(first) / sizeof(*first); i++)
		glob_observations_add(&seen, i % 2 ? GLOB_SEEN_NAME : GLOB_SEEN_NO_DIRECTORY, first[i], 5,
				      i % 2 ? &file : NULL);
	for (size_t i = 0; i < sizeof(second) / sizeof(*second); i++)
		glob_observations_add(&more, GLOB_SEEN_NAME, second[i], 0, i == 3 ? NULL : &file);
	glob_observations_merge(&seen, &more);
	assert_int_equal(more.count, 0);
	assert_int_equal(seen.count, 11);
	/* Packed against the last path of the merged stream, not of the first. */
	glob_observations_add(&seen, GLOB_SEEN_NAME, "bb", 1, &file);

	struct glob_seen_reader reader;
	struct glob_seen item;
	glob_seen_reader_init(&reader, seen.packed.buf, seen.packed.len);
	assert_int_equal(glob_seen_next(&reader, &item), 1);
	assert_string_equal(item.path, ".");
	assert_int_equal(item.kind, GLOB_SEEN_DIRECTORY);
	assert_int_equal(item.type, S_IFDIR);
	assert_true(item.device == 77 && item.inode == (uint64_t)1 << 40);
	assert_true(item.mtime_ns == 1700000000000000005LL && item.ctime_ns == 1700000001999999999LL);
	for (size_t i = 1; i < sizeof(first) / sizeof(*first); i++) {
		assert_int_equal(glob_seen_next(&reader, &item), 1);
		assert_string_equal(item.path, first[i]);
		assert_int_equal(item.kind, i % 2 ? GLOB_SEEN_NAME : GLOB_SEEN_NO_DIRECTORY);
		assert_int_equal(item.type, i % 2 ? S_IFREG : 0);
		assert_int_equal(item.file_from, 5);
	}
	for (size_t i = 0; i < sizeof(second) / sizeof(*second); i++) {
		assert_int_equal(glob_seen_next(&reader, &item), 1);
		assert_string_equal(item.path, second[i]);
		assert_int_equal(item.type, i == 3 ? 0 : S_IFREG);
		assert_int_equal(item.file_from, 0);
	}
	assert_int_equal(glob_seen_next(&reader, &item), 1);
	assert_string_equal(item.path, "bb");
	assert_int_equal(item.file_from, 1);
	assert_int_equal(glob_seen_next(&reader, &item), 0);
	glob_seen_reader_release(&reader);

	/* Cut anywhere, the bytes do not read back whole. */
	for (size_t cut = 0; cut < seen.packed.len; cut++) {
		int rc;
		glob_seen_reader_init(&reader, seen.packed.buf, cut);
		while ((rc = glob_seen_next(&reader, &item)) > 0)
			;
		assert_true(rc < 0 || reader.at == cut);
		glob_seen_reader_release(&reader);
	}
	glob_observations_release(&seen);

	struct glob_observations subjects = GLOB_OBSERVATIONS_INIT;
	char path[64];
	for (int i = 1; i <= 1000; i++) {
		snprintf(path, sizeof(path), "sub-%06d/T1w.nii.gz", i);
		glob_observations_add(&subjects, GLOB_SEEN_NAME, path, 0, &file);
	}
	assert_true(subjects.packed.len <= 8 * subjects.count);
	glob_observations_release(&subjects);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_optional_directory, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_typed_fields, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_ambiguity, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_optional_top_directory, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_one_parse_per_file, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_repeated_placeholder, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_link, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_preset_filters, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_preset_float, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_preset_singular, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_multiple_keys, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_hidden, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_values_are_literal, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_preset_literal, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_no_slash_in_capture, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_wildcards, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_files_and_directories, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_missing_directory, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_errors, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_values_with_slash, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_absolute_template, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_scoped_placeholder, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_walk_stat, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_literal_paths, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_many_subjects, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_values_across_threads, study_setup, study_teardown),
		cmocka_unit_test_setup_teardown(test_walk_name_order, study_setup, study_teardown),
		cmocka_unit_test(test_observations_packed),
		cmocka_unit_test(test_match_path),
		cmocka_unit_test(test_template_regex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
