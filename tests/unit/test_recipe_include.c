/* Unit tests for the recipe module's composition (`include:`, src/recipe_include.c). */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpipe/recipe.h"
#include "test_helpers.h"

static char temp_dir[] = "/tmp/cpipe-test-recipe-include-XXXXXX";

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(temp_dir))
		return -1;
	char *lab = xasprintf("%s/lab", temp_dir);
	int rc = mkdir(lab, 0700);
	free(lab);
	return rc;
}

static int group_teardown(void **state)
{
	(void)state;
	return remove_tree(temp_dir) == 0 ? 0 : -1;
}

/* Write `text` to `name` in the temporary directory; returns the path (owned). */
static char *write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", temp_dir, name);
	write_text(path, text);
	return path;
}

/* write_file, for a file no one names afterwards. */
static void put_file(const char *name, const char *text)
{
	free(write_file(name, text));
}

static struct recipe_set *load_ok(const char *path)
{
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	if (recipe_load(path, &set, &err) < 0)
		fail_msg("unexpected error: %s:%d: %s", err.file, err.line, err.message);
	return set;
}

/* Load `path`, expect failure in `file` (a name in the temporary directory) at `line`, with `fragment`. */
static void expect_error(const char *path, const char *file, int line, const char *fragment)
{
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(recipe_load(path, &set, &err), -1);
	assert_null(set);
	char *want_file = xasprintf("%s/%s", temp_dir, file);
	if (!err.file || strcmp(err.file, want_file) || err.line != line || !strstr(err.message, fragment))
		print_error("got %s:%d: %s\nwanted %s:%d: ...%s...\n", err.file ? err.file : "?", err.line,
			    err.message ? err.message : "", want_file, line, fragment);
	assert_string_equal(err.file, want_file);
	assert_int_equal(err.line, line);
	assert_non_null(strstr(err.message, fragment));
	free(want_file);
	cp_err_release(&err);
}

static const char anat_yaml[] = "tree: anat.tree\n"
				"data: elsewhere\n"
				"default: [stats]\n"
				"link: [[a, b]]\n"
				"resources: {minutes: 7}\n"
				"recipes:\n"
				"  - name: brain\n"                                             /* 7 */
				"    in: [t1]\n"
				"    out: [brain]\n"
				"    ref: [logs]\n"
				"    vars: [run]\n"
				"    run: \"bet {t1} {brain} {run} {subject} '{{x}}' }} {logs}\"\n" /* 12 */
				"  - name: stats\n"
				"    in: [brain]\n"
				"    out: [stats]\n"
				"    batch: [run]\n"
				"    resources: {minutes: 3}\n"
				"    run: cat {brain} > {stats}\n";

/* Keys, names, the run string, resources and product of mounted recipes; what the included file's top level does. */
static void test_mounting(void **state)
{
	(void)state;
	char *anat = write_file("lab/anat.yaml", anat_yaml);
	char *top = write_file("top.yaml", "tree: study.tree\n"
					   "product: true\n"
					   "resources: {minutes: 99, threads: 2}\n"
					   "include:\n"
					   "  - {file: lab/anat.yaml, subtree: anat}\n"
					   "  - file: lab/anat.yaml\n"
					   "    subtree: ses/t2\n"
					   "    rename: {t1: T2w, logs: logs}\n"
					   "  - lab/nested.yaml\n"
					   "recipes:\n"
					   "  - {name: own, in: [T2w], out: [T2w_copy], run: 'cp {T2w} {T2w_copy}'}\n");
	char *nested = write_file("lab/nested.yaml", "include: [{file: anat.yaml, subtree: inner}]\n");
	struct recipe_set *set = load_ok(top);
	assert_int_equal(set->count, 7);
	assert_null(set->recipes[0].subtree);
	assert_string_equal(set->recipes[0].file, top);

	const struct recipe *brain = &set->recipes[1];
	assert_string_equal(brain->name, "anat/brain");
	assert_string_equal(brain->subtree, "anat");
	assert_string_equal(brain->file, anat);
	assert_int_equal(brain->line, 7);
	assert_int_equal(recipe_field_line(brain, "run"), 12);
	assert_string_equal(brain->in.items[0], "anat/t1");
	assert_string_equal(brain->out.items[0], "anat/brain");
	assert_string_equal(brain->ref.items[0], "anat/logs");
	assert_string_equal(brain->vars.items[0], "run"); /* placeholders wait for the tree */
	assert_string_equal(brain->run, "bet {anat/t1} {anat/brain} {run} {subject} '{{x}}' }} {anat/logs}");
	/* The included file's defaults, then the including file's for what is still unset. */
	assert_int_equal(brain->resources.minutes, 7);
	assert_int_equal(brain->resources.threads, 2);
	assert_true(brain->product);
	assert_int_equal(set->recipes[2].resources.minutes, 3);

	const struct recipe *t2 = &set->recipes[3];
	assert_string_equal(t2->name, "ses/t2/brain");
	assert_string_equal(t2->subtree, "ses/t2");
	assert_string_equal(t2->in.items[0], "T2w");
	assert_string_equal(t2->ref.items[0], "logs");
	assert_string_equal(t2->run, "bet {T2w} {ses/t2/brain} {run} {subject} '{{x}}' }} {logs}");
	assert_string_equal(set->recipes[4].in.items[0], "ses/t2/brain");

	/* Included without subtree: names stay; the nested file's own mount stays. */
	assert_string_equal(set->recipes[5].name, "inner/brain");
	assert_string_equal(set->recipes[5].subtree, "inner");
	assert_string_equal(set->recipes[5].in.items[0], "inner/t1");

	/* The including file's top level is the one that counts. */
	assert_true(str_ends_with(set->tree, "/study.tree"));
	assert_string_equal(set->data, temp_dir);
	assert_int_equal(set->targets.count, 0);
	assert_int_equal(set->link_count, 0);

	/* Definitions differ between the two mounts, so their state records do too. */
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	recipe_definition_text(brain, &a);
	recipe_definition_text(t2, &b);
	assert_string_not_equal(a.buf, b.buf);
	strbuf_release(&a);
	strbuf_release(&b);
	recipe_set_free(set);
	free(top);
	free(anat);
	free(nested);
}

/* A placeholder named by a mounted recipe takes the scope the tree gives it. */
static int scoped_placeholders(void *ctx, const char *key, struct strvec *required, struct strvec *optional)
{
	(void)ctx;
	(void)optional;
	strvec_push(required, "subject");
	if (str_starts_with(key, "anat/") && strcmp(key, "anat/logs"))
		strvec_push(required, "anat/run");
	return 0;
}

static void test_scope_placeholders(void **state)
{
	(void)state;
	put_file("lab/anat.yaml", anat_yaml);
	char *top = write_file("scope.yaml", "include:\n"
					     "  - {file: lab/anat.yaml, subtree: anat}\n"
					     "recipes:\n"
					     "  - {name: own, out: [x], vars: [run], run: 'echo {run} > {x}'}\n");
	struct recipe_set *set = load_ok(top);
	struct strvec keys = STRVEC_INIT;
	struct recipe_tree_view view = {&keys, scoped_placeholders, NULL, NULL, NULL};
	recipe_scope_placeholders(set, &view);
	assert_string_equal(set->recipes[0].vars.items[0], "run"); /* the file's own recipes are left alone */
	const struct recipe *brain = &set->recipes[1];
	assert_string_equal(brain->vars.items[0], "anat/run");
	assert_string_equal(brain->run, "bet {anat/t1} {anat/brain} {anat/run} {subject} '{{x}}' }} {anat/logs}");
	assert_string_equal(set->recipes[2].batch.items[0], "anat/run");
	strvec_release(&keys);
	recipe_set_free(set);
	free(top);
}

static void test_errors(void **state)
{
	(void)state;
	put_file("lab/anat.yaml", anat_yaml);
	char *path = write_file("e.yaml", "include:\n  - {file: lab/broken.yaml, subtree: b}\n");
	put_file("lab/broken.yaml", "recipes:\n  - name: x\n    out: [y]\n    run: 'cp {y'\n");
	expect_error(path, "lab/broken.yaml", 4, "the '{' at character 4 is never closed (write '{{' for a literal '{') (included from ");
	put_file("lab/broken.yaml", "include: [{file: ../e.yaml, subtree: c}]\n");
	expect_error(path, "lab/broken.yaml", 1, "is already being read: a cycle");
	put_file("lab/broken.yaml", "include: [{file: broken.yaml}]\n");
	expect_error(path, "lab/broken.yaml", 1, "'broken.yaml' is already being read");
	put_file("e.yaml", "include:\n  - {file: lab/anat.yaml, rename: {t1: T1w, brian: b}}\n");
	expect_error(path, "e.yaml", 2, "rename: no recipe of");
	put_file("e.yaml", "include:\n  - {file: lab/anat.yaml, rename: {t1: brain}}\n");
	expect_error(path, "e.yaml", 2, "would have two keys called 'brain'");
	put_file("e.yaml", "recipes:\n  - {name: brain, out: [q], run: x}\ninclude:\n  - {file: lab/anat.yaml}\n");
	expect_error(path, "e.yaml", 4, "recipe 'brain' of ");
	put_file("e.yaml", "recipes:\n  - {name: a, out: [brain], run: x}\ninclude:\n  - {file: lab/anat.yaml}\n");
	expect_error(path, "e.yaml", 4, "makes 'brain', which recipe 'a'");
	put_file("e.yaml", "include:\n  - {file: lab/anat.yaml, subtree: 'a//b'}\n");
	expect_error(path, "e.yaml", 2, "subtree: 'a//b' is not a sub-tree name");
	put_file("e.yaml", "include:\n  - {file: lab/anat.yaml, subtree: [a]}\n");
	expect_error(path, "e.yaml", 2, "subtree: expected one sub-tree name");
	put_file("e.yaml", "include:\n  - {file: lab/anat.yaml, mount: a}\n");
	expect_error(path, "e.yaml", 2, "unknown field 'mount'");
	put_file("e.yaml", "include:\n  - {subtree: a}\n");
	expect_error(path, "e.yaml", 2, "an entry without 'file:'");
	put_file("e.yaml", "include:\n  - [lab/anat.yaml]\n");
	expect_error(path, "e.yaml", 2, "each entry is a file name or a mapping");
	put_file("e.yaml", "include: {file: lab/anat.yaml}\n");
	expect_error(path, "e.yaml", 1, "include: expected a list");
	put_file("e.yaml", "include: lab/anat.yaml\n");
	expect_error(path, "e.yaml", 1, "include: expected a list");
	put_file("e.yaml", "include: [{file: lab/anat.yaml, rename: [t1]}]\n");
	expect_error(path, "e.yaml", 1, "rename: expected a mapping");
	put_file("e.yaml", "include: [{file: lab/anat.yaml, rename: {t1: ''}}]\n");
	expect_error(path, "e.yaml", 1, "rename: 't1' is renamed to nothing");
	put_file("e.yaml", "include: [{file: lab/anat.yaml, rename: {t1: 'T1 w'}}]\n");
	expect_error(path, "e.yaml", 1, "rename: 'T1 w' is not a key name");
	put_file("e.yaml", "include: [{file: lab/none.yaml}]\n");
	expect_error(path, "e.yaml", 1, "cannot read 'lab/none.yaml'");
	put_file("e.yaml", "include: [lab]\n");
	expect_error(path, "e.yaml", 1, "'lab' (");
	put_file("e.yaml", "include: [/dev/stdin]\n");
	expect_error(path, "e.yaml", 1, "is not a file");
	/* Each file includes the next twice: 2^12 loads would be a runaway. */
	for (int level = 0; level < 12; level++) {
		char name[32], text[128];
		snprintf(name, sizeof(name), "lab/d%d.yaml", level);
		snprintf(text, sizeof(text), "include:\n  - {file: d%d.yaml, subtree: a}\n  - {file: d%d.yaml, subtree: b}\n",
			 level + 1, level + 1);
		put_file(name, text);
	}
	put_file("lab/d12.yaml", "recipes: []\n");
	put_file("e.yaml", "include: [lab/d0.yaml]\n");
	expect_error(path, "lab/d11.yaml", 3, "more than 1000 recipe files included in all");
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mounting),
		cmocka_unit_test(test_scope_placeholders),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
