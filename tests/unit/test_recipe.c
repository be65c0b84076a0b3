/* Unit tests for the recipe module: loading, located errors, checks against a tree view, run expansion. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpipe/recipe.h"
#include "test_helpers.h"

static char temp_dir[] = "/tmp/cpipe-test-recipe-XXXXXX";
static int file_counter;

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(temp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return remove_tree(temp_dir) == 0 ? 0 : -1;
}

/* Write `text` to a new file in the temporary directory; the caller frees the path. */
static char *write_yaml(const char *text)
{
	char *path = xasprintf("%s/recipes-%d.yaml", temp_dir, ++file_counter);
	write_text(path, text);
	return path;
}

static struct recipe_set *load_ok(const char *text)
{
	char *path = write_yaml(text);
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	int rc = recipe_load(path, &set, &err);
	if (rc) {
		char *message = cp_err_format(&err);
		print_error("unexpected error: %s\n", message);
		free(message);
	}
	assert_int_equal(rc, 0);
	assert_non_null(set);
	cp_err_release(&err);
	free(path);
	return set;
}

/* Load `text`, expect failure at `line` with a message containing every given fragment. */
static void expect_load_error(const char *text, int line, const char *fragment, const char *fragment2)
{
	char *path = write_yaml(text);
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(recipe_load(path, &set, &err), -1);
	assert_null(set);
	assert_non_null(err.message);
	assert_non_null(err.file);
	assert_string_equal(err.file, path);
	if (err.line != line || !strstr(err.message, fragment) || (fragment2 && !strstr(err.message, fragment2)))
		print_error("got line %d: %s\nwanted line %d: ...%s...%s...\n", err.line, err.message, line, fragment,
			    fragment2 ? fragment2 : "");
	assert_int_equal(err.line, line);
	assert_non_null(strstr(err.message, fragment));
	if (fragment2)
		assert_non_null(strstr(err.message, fragment2));
	cp_err_release(&err);
	free(path);
}

static const char full_file[] = "tree: study.tree\n"                               /* 1 */
				"data: ../data\n"                                  /* 2 */
				"default: [t1_brain, group_mean]\n"                /* 3 */
				"resources: {queue: short.q, minutes: 10}\n"       /* 4 */
				"recipes:\n"                                       /* 5 */
				"  - name: reorient\n"                             /* 6 */
				"    in: [t1]\n"                                   /* 7 */
				"    out: [t1_reorient]\n"                         /* 8 */
				"    run: fslreorient2std {t1} {t1_reorient}\n"    /* 9 */
				"  - name: brain\n"                                /* 10 */
				"    in:\n"                                        /* 11 */
				"      - t1_reorient\n"                            /* 12 */
				"      - t1_mask\n"                                /* 13 */
				"    out: [t1_brain]\n"                            /* 14 */
				"    ref: [log_dir]\n"                             /* 15 */
				"    optional: [t1_mask]\n"                        /* 16 */
				"    run: |\n"                                     /* 17 */
				"      bet {t1_reorient} {t1_brain}\n"             /* 18 */
				"      echo done > {log_dir}/brain.txt\n"          /* 19 */
				"    resources:\n"                                 /* 20 */
				"      minutes: 30\n"                              /* 21 */
				"      ram_gb: 1.5\n"                              /* 22 */
				"      threads: 4\n"                               /* 23 */
				"      coprocessor: cuda\n"                        /* 24 */
				"      coprocessor_count: 2\n"                     /* 25 */
				"      extra: [--exclusive, '--constraint=a b']\n" /* 26 */
				"  - name: group_mean\n"                           /* 27 */
				"    in: [t1_brain]\n"                             /* 28 */
				"    out: [group_mean]\n"                          /* 29 */
				"    batch: [subject]\n"                           /* 30 */
				"    run: average {t1_brain} -o {group_mean}\n"    /* 31 */
				"  - name: make_t1\n"                              /* 32 */
				"    out: [t1]\n"                                  /* 33 */
				"    vars: [subject]\n"                            /* 34 */
				"    run: touch {t1}\n";                           /* 35 */

static void test_valid_file_with_all_fields(void **state)
{
	(void)state;
	struct recipe_set *set = load_ok(full_file);
	char *expected_tree = xasprintf("%s/study.tree", temp_dir);
	assert_string_equal(set->tree, expected_tree);
	free(expected_tree);
	assert_string_equal(set->dir, temp_dir);
	assert_non_null(strstr(set->data, "/data"));
	assert_null(strstr(set->data, ".."));
	assert_int_equal(set->targets.count, 2);
	assert_string_equal(set->targets.items[1], "group_mean");
	assert_int_equal(set->count, 4);
	assert_int_equal(recipe_set_field_line(set, "default"), 3);
	assert_int_equal(recipe_set_field_line(set, "recipes"), 5);

	const struct recipe *reorient = &set->recipes[0];
	assert_string_equal(reorient->name, "reorient");
	assert_int_equal(reorient->line, 6);
	assert_string_equal(reorient->run, "fslreorient2std {t1} {t1_reorient}");
	/* defaults from the top-level resources */
	assert_int_equal(reorient->resources.minutes, 10);
	assert_string_equal(reorient->resources.queue, "short.q");
	assert_int_equal(reorient->resources.threads, 0);

	assert_int_equal(recipe_find(set, "brain"), 1);
	assert_int_equal(recipe_find(set, "nope"), -1);
	assert_int_equal(recipe_find_producer(set, "t1_brain"), 1);
	assert_int_equal(recipe_find_producer(set, "log_dir"), -1);
	const struct recipe *brain = &set->recipes[1];
	assert_int_equal(brain->in.count, 2);
	assert_string_equal(brain->in.items[1], "t1_mask");
	assert_string_equal(brain->ref.items[0], "log_dir");
	assert_true(recipe_is_optional(brain, "t1_mask"));
	assert_false(recipe_is_optional(brain, "t1_reorient"));
	assert_string_equal(brain->run, "bet {t1_reorient} {t1_brain}\necho done > {log_dir}/brain.txt\n");
	assert_int_equal(brain->resources.minutes, 30);
	assert_true(brain->resources.ram_gb == 1.5);
	assert_int_equal(brain->resources.threads, 4);
	assert_string_equal(brain->resources.queue, "short.q");
	assert_string_equal(brain->resources.coprocessor, "cuda");
	assert_int_equal(brain->resources.coprocessor_count, 2);
	assert_int_equal(brain->resources.extra.count, 2);
	assert_string_equal(brain->resources.extra.items[1], "--constraint=a b");
	assert_int_equal(recipe_field_line(brain, "in"), 11);
	assert_int_equal(recipe_item_line(brain, "in", 1), 13);
	assert_int_equal(recipe_item_line(brain, "in", 7), 11);
	assert_int_equal(recipe_field_line(brain, "resources.threads"), 23);
	assert_int_equal(recipe_field_line(brain, "resources.queue"), 20);
	assert_int_equal(recipe_field_line(brain, "batch"), 10);

	assert_string_equal(set->recipes[2].batch.items[0], "subject");
	assert_string_equal(set->recipes[3].vars.items[0], "subject");
	assert_int_equal(set->recipes[3].in.count, 0);
	recipe_set_free(set);
}

static void test_defaults_and_null_lists(void **state)
{
	(void)state;
	struct recipe_set *set = load_ok("recipes:\n  - name: a\n    in:\n    out: [x]\n    run: true\n");
	assert_null(set->tree);
	assert_string_equal(set->data, temp_dir);
	assert_int_equal(set->targets.count, 0);
	assert_int_equal(set->recipes[0].in.count, 0);
	recipe_set_free(set);

	set = load_ok("tree: t.tree\n");
	assert_int_equal(set->count, 0);
	recipe_set_free(set);
}

static void test_load_errors_are_located(void **state)
{
	(void)state;
	expect_load_error("recipes:\n  - name: [a\n", 3, "YAML syntax error", NULL);
	expect_load_error("", 1, "empty", NULL);
	expect_load_error("- a\n", 1, "must be a mapping", NULL);
	expect_load_error("recipes: []\n---\nrecipes: []\n", 2, "one YAML document", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    out: [z]\n", 5,
			  "recipe 'a': out: given twice", "line 3");
	expect_load_error("recipes:\n  - name: a\n    out: y\n    run: x\n", 3, "recipe 'a': out: expected a list", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y, [z]]\n    run: x\n", 3, "out: expected a string", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    resources:\n      minutes: abc\n", 6,
			  "recipe 'a': resources.minutes: expected an integer, got 'abc'", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    resources: {ram_gb: 16G}\n", 5,
			  "resources.ram_gb: expected a number", NULL);
	expect_load_error("recipes:\n  - hello\n", 2, "recipe #1: expected a mapping", NULL);
	expect_load_error("recipes: {a: 1}\n", 1, "recipes: expected a list", NULL);
	expect_load_error("tree: [a]\nrecipes: []\n", 1, "tree: expected a string", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: {y} -x\n", 4, "YAML syntax error",
			  "must be quoted");
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: {y}\n", 4,
			  "recipe 'a': run: expected a string, got a mapping", "must be quoted");
}

static void test_missing_and_invalid_fields(void **state)
{
	(void)state;
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n  - out: [z]\n    run: x\n", 5,
			  "recipe #2: missing 'name'", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n", 2, "recipe 'a': missing 'run'", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run:\n", 4, "recipe 'a': missing 'run'", NULL);
	expect_load_error("recipes:\n  - name: a\n    in: [x]\n    run: x\n", 2, "recipe 'a': missing 'out'", NULL);
	expect_load_error("recipes:\n  - name: a b\n    out: [y]\n    run: x\n", 2, "name: 'a b' is not a valid", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n  - name: a\n    out: [z]\n    run: x\n", 5,
			  "recipe 'a': name: a recipe of this name is already defined on line 2", NULL);
	expect_load_error("recipes:\n  - name: a\n    in: [x, y,\n      x]\n    out: [z]\n    run: x\n", 4,
			  "recipe 'a': in: 'x' is listed twice", NULL);
	expect_load_error("recipes:\n  - name: a\n    in: [x]\n    out: [x]\n    run: x\n", 4,
			  "out: 'x' is also in 'in'", NULL);
	expect_load_error("recipes:\n  - name: a\n    in: [x]\n    out: [y]\n    optional: [z]\n    run: x\n", 5,
			  "optional: 'z' is not in 'in' or 'out'", NULL);
	expect_load_error("recipes:\n  - name: a\n    in: [x]\n    out: [y]\n    batch: [x]\n    run: x\n", 5,
			  "batch: 'x' is a template key of this recipe", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    batch: [s]\n    vars: [s]\n    run: x\n", 5,
			  "vars: 's' is also in 'batch'", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y, '']\n    run: x\n", 3, "out: empty name", NULL);
	expect_load_error("default: [a, '']\nrecipes: []\n", 1, "default: empty target", NULL);
}

static void test_resources_must_be_positive(void **state)
{
	(void)state;
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    resources:\n      threads: 1\n"
			  "      minutes: 0\n",
			  7, "recipe 'a': resources.minutes: must be a positive number, not '0'", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    resources: {ram_gb: -2}\n", 5,
			  "resources.ram_gb: must be a positive", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    resources: {threads: -1}\n", 5,
			  "resources.threads", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    resources: {coprocessor_count: 0}\n", 5,
			  "resources.coprocessor_count", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    resources: {queue: ''}\n", 5,
			  "resources.queue: must not be empty", NULL);
	expect_load_error("resources:\n  minutes: -5\nrecipes: []\n", 2, "resources.minutes: must be a positive", NULL);
}

static void test_did_you_mean_for_fields(void **state)
{
	(void)state;
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n  - name: b\n    inn: [y]\n    out: [z]\n"
			  "    run: x\n",
			  6, "recipe 'b': unknown field 'inn'", "did you mean 'in'?");
	expect_load_error("tre: a.tree\nrecipes: []\n", 1, "unknown field 'tre'", "did you mean 'tree'?");
	expect_load_error("recipes: []\nres: {minutes: 5}\n", 2, "unknown field 'res'", "did you mean 'resources'?");
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    resources:\n      queue: q\n"
			  "      minuts: 3\n",
			  7, "recipe 'a': resources: unknown field 'minuts'", "did you mean 'minutes'?");
	expect_load_error("recipes:\n  - name: a\n    outputs: [y]\n    run: x\n", 3, "unknown field 'outputs'",
			  "did you mean 'out'?");
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    colour: red\n    run: x\n", 4,
			  "unknown field 'colour'", "expected one of: name, in, out");
}

/* `link:` groups and `product:` (top-level, merged into every recipe, or per recipe). */
static void test_link_and_product(void **state)
{
	(void)state;
	struct recipe_set *set = load_ok("link: [[subject, session], [task, run, echo]]\nrecipes:\n"
					 "  - {name: a, in: [t1], out: [x], run: 'true'}\n"
					 "  - {name: b, in: [x], out: [y], run: 'true', product: true}\n");
	assert_int_equal(set->link_count, 2);
	assert_int_equal(set->links[0].count, 2);
	assert_string_equal(set->links[0].items[1], "session");
	assert_int_equal(set->links[1].count, 3);
	assert_string_equal(set->links[1].items[2], "echo");
	assert_false(set->product);
	assert_false(set->recipes[0].product);
	assert_true(set->recipes[1].product);
	recipe_set_free(set);

	set = load_ok("product: true\nlink:\n  - [a, b]\nrecipes:\n  - {name: a, in: [t1], out: [x], run: 'true'}\n");
	assert_true(set->product);
	assert_true(set->recipes[0].product);
	assert_int_equal(set->link_count, 1);
	recipe_set_free(set);

	expect_load_error("recipes: []\nlink: subject,session\n", 2, "link: must be a list of lists", NULL);
	expect_load_error("recipes: []\nlink: [subject, session]\n", 2, "link: must be a list of lists", NULL);
	expect_load_error("recipes: []\nlink:\n  - [subject]\n", 3, "at least two placeholders", NULL);
	expect_load_error("recipes: []\nlink: []\n", 2, "link: an empty list", NULL);
	expect_load_error("recipes: []\nlink: [[a, [b]]]\n", 2, "link: must be a list of lists", NULL);
	expect_load_error("recipes: []\nproduct: maybe\n", 2, "product: must be true or false", NULL);
	expect_load_error("recipes:\n  - {name: a, out: [x], run: 'true', product: 2}\n", 2,
			  "recipe 'a': product: must be true or false", NULL);
}

static void test_duplicate_outputs(void **state)
{
	(void)state;
	expect_load_error("recipes:\n  - name: a\n    out: [y, w]\n    run: x\n  - name: b\n    out:\n      - z\n"
			  "      - w\n    run: x\n",
			  8, "recipe 'b': out: 'w' is already made by recipe 'a' (line 2)", NULL);
}

static void test_run_syntax_errors(void **state)
{
	(void)state;
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: echo ${HOME:-x}\n", 4,
			  "run: '{HOME:-x}' at character 7 is not a substitution", "{{");
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: echo {y\n", 4, "never closed", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: echo y}\n", 4, "a lone '}'", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: echo {} y\n", 4, "empty '{}'", NULL);
	/* in a literal block the error points at the line inside the block */
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: |\n      echo a\n      awk '{print $1}' f\n", 6,
			  "'{print $1}'", "awk '{{print $1}}'");

	char *path = write_yaml("recipes:\n  - name: a\n    out: [y]\n    run: echo y}\n");
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(recipe_load(path, &set, &err), -1);
	assert_int_equal(err.column, 16);
	cp_err_release(&err);
	free(path);
}

/* A resolver over a fixed table: each name maps to a list of values. */
struct table_entry {
	const char *name;
	const char *values[4];
};

static int table_resolve(void *ctx, const char *name, struct strbuf *values, size_t *count, struct cp_err *err)
{
	for (const struct table_entry *entry = ctx; entry->name; entry++) {
		if (strcmp(entry->name, name))
			continue;
		if (!entry->values[0]) {
			cp_err_set(err, NULL, 0, "no value for %s", name);
			return -1;
		}
		for (size_t i = 0; i < 4 && entry->values[i]; i++) {
			strbuf_add(values, entry->values[i], strlen(entry->values[i]) + 1);
			(*count)++;
		}
		return 0;
	}
	return RECIPE_UNKNOWN_NAME;
}

static const struct table_entry table[] = {
	{"t1", {"sub-01/T1w.nii.gz"}},
	{"t1_brain", {"sub 01/it's.nii.gz"}},
	{"all", {"a.nii", "b c.nii", "$(rm -rf x).nii"}},
	{"subject", {"01"}},
	{"broken", {NULL}},
	{"evil", {"a\nrm -rf x", "'$(b)'"}},
	{NULL, {NULL}},
};

static char *expand(const char *yaml, int *rc, struct cp_err *err)
{
	struct recipe_set *set = load_ok(yaml);
	struct strbuf out = STRBUF_INIT;
	*rc = recipe_expand_run(&set->recipes[0], table_resolve, (void *)table, &out, err);
	recipe_set_free(set);
	return strbuf_detach(&out);
}

static void test_run_expansion(void **state)
{
	(void)state;
	struct cp_err err = CP_ERR_INIT;
	int rc;
	char *text = expand("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_brain]\n"
			    "    run: bet {t1} {t1_brain} --id {subject}\n",
			    &rc, &err);
	assert_int_equal(rc, 0);
	assert_string_equal(text, "bet 'sub-01/T1w.nii.gz' 'sub 01/it'\\''s.nii.gz' --id '01'");
	free(text);

	text = expand("recipes:\n  - name: a\n    in: [all]\n    out: [t1]\n    run: merge {all} > {t1}\n", &rc, &err);
	assert_int_equal(rc, 0);
	assert_string_equal(text, "merge 'a.nii' 'b c.nii' '$(rm -rf x).nii' > 'sub-01/T1w.nii.gz'");
	free(text);

	/* {{ and }} are literal braces, for the shell's ${...} and awk programs */
	text = expand("recipes:\n  - name: a\n    out: [t1]\n"
		      "    run: \"echo ${{HOME}} | awk '{{print $1}}' > {t1} # {{{subject}}}\"\n",
		      &rc, &err);
	assert_int_equal(rc, 0);
	assert_string_equal(text, "echo ${HOME} | awk '{print $1}' > 'sub-01/T1w.nii.gz' # {01}");
	free(text);

	/* ${HOME} is {HOME}: unknown here, with a hint about {{ */
	text = expand("recipes:\n  - name: a\n    out: [t1]\n    run: cp ${HOME}/x {t1}\n", &rc, &err);
	assert_int_equal(rc, -1);
	assert_int_equal(err.line, 4);
	assert_non_null(strstr(err.message, "recipe 'a': run: unknown name '{HOME}'"));
	assert_non_null(strstr(err.message, "${{HOME}}"));
	cp_err_release(&err);
	free(text);

	/* a resolver's own error keeps its text and gains the location */
	text = expand("recipes:\n  - name: a\n    out: [t1]\n    run: cp {broken} {t1}\n", &rc, &err);
	assert_int_equal(rc, -1);
	assert_int_equal(err.line, 4);
	assert_non_null(err.file);
	assert_non_null(strstr(err.message, "recipe 'a': run: {broken}: no value for broken"));
	cp_err_release(&err);
	free(text);
}

/* run: TEXT (YAML, as written after `run: `) expands to WANT. */
static void assert_expands(const char *run_yaml, const char *want)
{
	struct cp_err err = CP_ERR_INIT;
	int rc;
	char *yaml = xasprintf("recipes:\n  - name: a\n    in: [t1, all, evil]\n    out: [t1_brain]\n    run: %s\n",
			       run_yaml);
	char *text = expand(yaml, &rc, &err);
	if (rc != 0 || strcmp(text, want))
		print_error("run: %s\n got: %s (rc %d: %s)\nwant: %s\n", run_yaml, text, rc,
			    err.message ? err.message : "", want);
	assert_int_equal(rc, 0);
	assert_string_equal(text, want);
	free(text);
	free(yaml);
}

/* Each {name} is written for where it stands in the shell code, and stays data there. */
static void test_run_quoting_contexts(void **state)
{
	(void)state;
	/* Inside "...": the quote is closed around one quoted word. */
	assert_expands("'echo \"subject {subject}\" > {t1_brain}'",
		       "echo \"subject \"'01'\"\" > 'sub 01/it'\\''s.nii.gz'");
	/* A batched key inside quotes stays one word, its values joined by spaces. */
	assert_expands("'echo \"all: {all}\"'", "echo \"all: \"'a.nii b c.nii $(rm -rf x).nii'\"\"");
	/* Inside '...': the same with single quotes. */
	assert_expands("\"echo '{t1}' '<{evil}>'\"",
		       "echo '''sub-01/T1w.nii.gz''' '<''a\nrm -rf x '\\''$(b)'\\''''>'");
	/* $(...) is command text again, also inside "..."; a quote inside it is its own. */
	assert_expands("'echo \"$(cat {t1})\" \"$(basename \"{t1}\")\"'",
		       "echo \"$(cat 'sub-01/T1w.nii.gz')\" \"$(basename \"\"'sub-01/T1w.nii.gz'\"\")\"");
	/* An escaped quote opens nothing; a # inside a word starts no comment. */
	assert_expands("\"echo \\\\'{subject} a#{subject}\"", "echo \\''01' a#'01'");
	/* In a comment a line break in a value cannot end the comment. */
	assert_expands("|\n      cp {t1} {t1_brain}  # {evil}\n      echo {subject}",
		       "cp 'sub-01/T1w.nii.gz' 'sub 01/it'\\''s.nii.gz'  # a?rm -rf x '$(b)'\necho '01'\n");
	/* After a here-document's end, substitution goes on as usual. */
	assert_expands("|\n      cat <<-EOF > {t1_brain}\n      x {{y}}\n      EOF\n      cp {t1} {t1_brain}",
		       "cat <<-EOF > 'sub 01/it'\\''s.nii.gz'\nx {y}\nEOF\ncp 'sub-01/T1w.nii.gz' 'sub 01/it'\\''s.nii.gz'\n");
	/* Inside one, no quoting helps: refused when the file is loaded, with the way out. */
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: |\n      cat <<'EOF' > {y}\n"
			  "      line {subject}\n      EOF\n",
			  6, "{subject} is inside a here-document", "(x={subject}, then $x)");
}

static void test_run_and_var_names(void **state)
{
	(void)state;
	struct recipe_set *set = load_ok("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_brain]\n"
					 "    batch: [session]\n    vars: [run]\n"
					 "    run: x {t1} {subject} {t1} {{lit}} {session} {t1_brain} {sub/x}\n");
	struct strvec names = STRVEC_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(recipe_run_names(&set->recipes[0], &names, &err), 0);
	assert_int_equal(names.count, 5);
	assert_string_equal(names.items[0], "t1");
	assert_string_equal(names.items[1], "subject");
	assert_string_equal(names.items[2], "session");
	assert_string_equal(names.items[3], "t1_brain");
	assert_string_equal(names.items[4], "sub/x");
	strvec_release(&names);

	recipe_var_names(&set->recipes[0], &names);
	assert_int_equal(names.count, 3);
	assert_string_equal(names.items[0], "run");
	assert_string_equal(names.items[1], "subject");
	assert_string_equal(names.items[2], "sub/x");
	strvec_release(&names);
	recipe_set_free(set);
}

static void test_definition_text(void **state)
{
	(void)state;
	const char *base = "recipes:\n  - name: a\n    in: [t1]\n    out: [t2]\n    run: cp {t1} {t2}\n";
	struct recipe_set *one = load_ok(base);
	struct recipe_set *same = load_ok("# a comment and other resources\nresources: {queue: long}\nrecipes:\n"
					  "  - name: a\n    in: [t1]\n    out: [t2]\n"
					  "    run: cp {t1} {t2}\n    resources: {minutes: 5, threads: 8}\n");
	struct recipe_set *changed = load_ok("recipes:\n  - name: a\n    in: [t1]\n    out: [t2]\n"
					     "    run: cp -p {t1} {t2}\n");
	struct recipe_set *swapped = load_ok("recipes:\n  - name: a\n    ref: [t1]\n    out: [t2]\n"
					     "    run: cp {t1} {t2}\n");
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, c = STRBUF_INIT, d = STRBUF_INIT;
	recipe_definition_text(&one->recipes[0], &a);
	recipe_definition_text(&same->recipes[0], &b);
	recipe_definition_text(&changed->recipes[0], &c);
	recipe_definition_text(&swapped->recipes[0], &d);
	assert_string_equal(a.buf, b.buf);
	assert_string_not_equal(a.buf, c.buf);
	assert_string_not_equal(a.buf, d.buf);
	assert_non_null(strstr(a.buf, "cp {t1} {t2}"));
	strbuf_release(&a);
	strbuf_release(&b);
	strbuf_release(&c);
	strbuf_release(&d);
	recipe_set_free(one);
	recipe_set_free(same);
	recipe_set_free(changed);
	recipe_set_free(swapped);
}

/* ---- params:, placeholders: and --set ------------------------------------ */

static void test_params_and_values(void **state)
{
	(void)state;
	struct recipe_set *set = load_ok("recipes:\n  - name: brain\n    out: [t1_brain]\n"
					 "    params: {dof: 12, note: \"it's $(x)\"}\n"
					 "    placeholders:\n      subject: [\"01\", \"02\"]\n      run: 1\n"
					 "    run: \"bet {dof} '{note}' > {t1_brain}\"\n"
					 "  - name: other\n    out: [t1]\n    params: {dof: 3}\n    run: x {dof} > {t1}\n");
	const struct recipe *r = &set->recipes[0];
	assert_int_equal(r->param_count, 2);
	assert_string_equal(recipe_find_param(r, "dof")->value, "12");
	assert_string_equal(recipe_find_param(r, "note")->value, "it's $(x)");
	assert_null(recipe_find_param(r, "subject"));
	const struct recipe_values *subject = recipe_find_values(r, "subject");
	assert_non_null(subject);
	assert_int_equal(subject->values.count, 2);
	assert_string_equal(subject->values.items[0], "01"); /* as written, not the number 1 */
	assert_string_equal(recipe_find_values(r, "run")->values.items[0], "1");

	/* A parameter is substituted like any value: quoted for where it stands. */
	struct strbuf out = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(recipe_expand_run(r, table_resolve, (void *)table, &out, &err), 0);
	assert_string_equal(out.buf, "bet '12' '''it'\\''s $(x)''' > 'sub 01/it'\\''s.nii.gz'");

	/* The values are part of the definition: a changed default changes it. */
	struct strbuf before = STRBUF_INIT, after = STRBUF_INIT;
	recipe_definition_text(r, &before);
	struct strvec settings = STRVEC_INIT;
	strvec_push(&settings, "brain.dof=6");
	strvec_push(&settings, "dof=7");
	assert_int_equal(recipe_set_params(set, &settings, &err), 0);
	recipe_definition_text(r, &after);
	assert_string_not_equal(before.buf, after.buf);
	/* The recipe's own setting wins over the every-recipe one given after it. */
	assert_string_equal(recipe_find_param(r, "dof")->value, "6");
	assert_string_equal(recipe_find_param(&set->recipes[1], "dof")->value, "7");
	strvec_release(&settings);

	const char *wrong[][2] = {
		{"dof", "expected [RECIPE.]PARAM=VALUE"},
		{"=1", "expected [RECIPE.]PARAM=VALUE"},
		{"nope=1", "no recipe has a parameter 'nope'"},
		{"brainn.dof=1", "no recipe 'brainn' (did you mean 'brain'?)"},
		{"other.note=1", "recipe 'other' has no parameter 'note'"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(wrong); i++) {
		strvec_push(&settings, wrong[i][0]);
		assert_int_equal(recipe_set_params(set, &settings, &err), -1);
		if (!strstr(err.message, wrong[i][1]))
			print_error("--set %s: %s\n", wrong[i][0], err.message);
		assert_non_null(strstr(err.message, wrong[i][1]));
		assert_null(err.file);
		cp_err_release(&err);
		strvec_release(&settings);
	}
	strbuf_release(&before);
	strbuf_release(&after);
	strbuf_release(&out);
	recipe_set_free(set);

	/* A recipe without the new fields keeps its definition text (no rerun after an upgrade). */
	set = load_ok("recipes:\n  - name: a\n    out: [t1]\n    run: x\n");
	recipe_definition_text(&set->recipes[0], &before);
	assert_null(strstr(before.buf, "params"));
	assert_null(strstr(before.buf, "placeholders"));
	strbuf_release(&before);
	recipe_set_free(set);
}

static void test_params_errors(void **state)
{
	(void)state;
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    params: {dof: 1, x: 2}\n    run: x {dof}\n", 4,
			  "recipe 'a': params: 'x' is not used in run (as {x})", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    params:\n      dof: [1, 2]\n    run: x {dof}\n", 5,
			  "params: 'dof': a parameter has one value", "placeholders:");
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    params: [dof]\n    run: x\n", 4,
			  "params: must be a mapping of names to values", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    params: {a.b: 1}\n    run: x {a.b}\n", 4,
			  "params: 'a.b' is not a parameter name", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    params: {1x: 1}\n    run: x\n", 4,
			  "params: '1x' is not a parameter name", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    placeholders: {subject: []}\n    run: x\n", 4,
			  "placeholders: 'subject': no values", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    placeholders: {subject: [a, a]}\n    run: x\n",
			  4, "'subject': the value 'a' is listed twice", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    placeholders: {subject: {a: 1}}\n    run: x\n",
			  4, "'subject': expected a value or a list of values", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    placeholders: {subject: [[a]]}\n    run: x\n",
			  4, "'subject': each value must be a single value", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    placeholders: {subject: [a, \"\"]}\n    run: x\n",
			  4, "'subject': the value '' is empty", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    placeholders: {subject: [a, ../b]}\n    run: x\n",
			  4, "'subject': the value '../b' would lead out of the data root", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [t1]\n    placeholders: {t1: a}\n    run: x\n", 4,
			  "'t1' is a template key of this recipe", NULL);
	expect_load_error("recipes:\n  - name: a\n    out: [\"t*\"]\n    run: x\n", 3, "out: 't*' is a glob key", NULL);
}

/* ---- recipe_check against a fake tree ------------------------------------ */

struct fake_template {
	const char *key;
	const char *required[3];
	const char *optional[2];
};

static const struct fake_template fake_templates[] = {
	{"t1", {"subject"}, {"session"}},
	{"t1_reorient", {"subject"}, {"session"}},
	{"t1_brain", {"subject"}, {"session"}},
	{"t1_run", {"subject", "run"}, {NULL}},
	{"group_mean", {NULL}, {NULL}},
	{"group_version", {"version"}, {NULL}},
	{"logs", {NULL}, {NULL}},
	{NULL, {NULL}, {NULL}},
};

static int fake_placeholders(void *ctx, const char *key, struct strvec *required, struct strvec *optional)
{
	(void)ctx;
	for (const struct fake_template *t = fake_templates; t->key; t++) {
		if (strcmp(t->key, key))
			continue;
		for (size_t i = 0; i < 3 && t->required[i]; i++)
			strvec_push(required, t->required[i]);
		for (size_t i = 0; i < 2 && t->optional[i]; i++)
			strvec_push(optional, t->optional[i]);
		return 0;
	}
	return -1;
}

static bool fake_singular(void *ctx, const char *placeholder)
{
	(void)ctx;
	return !strcmp(placeholder, "version");
}

static struct strvec fake_keys;

static struct recipe_tree_view fake_view(void)
{
	if (!fake_keys.count)
		for (const struct fake_template *t = fake_templates; t->key; t++)
			strvec_push(&fake_keys, t->key);
	struct recipe_tree_view view = {&fake_keys, fake_placeholders, fake_singular, NULL, NULL};
	return view;
}

static void expect_check_error(const char *yaml, int line, const char *fragment, const char *fragment2)
{
	struct recipe_set *set = load_ok(yaml);
	struct recipe_tree_view view = fake_view();
	struct cp_err err = CP_ERR_INIT;
	int rc = recipe_check(set, &view, &err);
	if (rc != -1 || err.line != line || !strstr(err.message, fragment) ||
	    (fragment2 && !strstr(err.message, fragment2)))
		print_error("got %d line %d: %s\nwanted line %d: ...%s...\n", rc, err.line,
			    err.message ? err.message : "(none)", line, fragment);
	assert_int_equal(rc, -1);
	assert_int_equal(err.line, line);
	assert_string_equal(err.file, set->file);
	assert_non_null(strstr(err.message, fragment));
	if (fragment2)
		assert_non_null(strstr(err.message, fragment2));
	cp_err_release(&err);
	recipe_set_free(set);
}

/* Load `yaml` and check it against the fake tree: both must succeed. */
static struct recipe_set *check_ok(const char *yaml)
{
	struct recipe_set *set = load_ok(yaml);
	struct recipe_tree_view view = fake_view();
	struct cp_err err = CP_ERR_INIT;
	int rc = recipe_check(set, &view, &err);
	if (rc)
		print_error("%s\n", err.message);
	assert_int_equal(rc, 0);
	return set;
}

static void test_check_valid(void **state)
{
	(void)state;
	struct recipe_set *set = check_ok("default: [group_mean]\nrecipes:\n"
					 "  - name: reorient\n    in: [t1]\n    out: [t1_reorient]\n"
					 "    run: cp {t1} {t1_reorient}\n"
					 "  - name: mean\n    in: [t1_reorient]\n    out: [group_mean]\n    ref: [logs]\n"
					 "    batch: [subject]\n    run: avg {t1_reorient} > {group_mean} 2> {logs}/x\n"
					 "  - name: make\n    out: [t1_run]\n    vars: [subject]\n"
					 "    run: echo {run} > {t1_run}\n"
					 "  - name: version\n    in: [group_mean]\n    out: [group_version]\n"
					 "    run: cp {group_mean} {group_version}\n");
	recipe_set_free(set);
}

/* Glob keys: replaced by the keys they match (not the recipe's outputs), {pattern} is all their paths. */
static void test_glob_keys(void **state)
{
	(void)state;
	struct recipe_set *set = check_ok("recipes:\n  - name: a\n    in: [\"t1_*\", t1]\n    ref: [\"lo?s\"]\n"
					  "    optional: [\"t1_r*\"]\n    out: [t1_brain]\n"
					  "    run: x {t1_*} {t1} {lo?s} > {t1_brain}\n");
	struct cp_err err = CP_ERR_INIT;
	const struct recipe *r = &set->recipes[0];
	/* t1_brain is the recipe's output; t1 is listed by name anyway. */
	assert_int_equal(r->in.count, 3);
	assert_string_equal(r->in.items[0], "t1_reorient");
	assert_string_equal(r->in.items[1], "t1_run");
	assert_string_equal(r->in.items[2], "t1");
	assert_int_equal(r->ref.count, 1);
	assert_string_equal(r->ref.items[0], "logs");
	assert_int_equal(r->optional.count, 2);
	assert_true(recipe_is_optional(r, "t1_run") && recipe_is_optional(r, "t1_reorient"));
	struct strvec vars = STRVEC_INIT;
	recipe_var_names(r, &vars);
	assert_int_equal(vars.count, 0);
	strvec_release(&vars);
	static const struct table_entry paths[] = {
		{"t1_reorient", {"r.nii"}}, {"t1_run", {"run 1.nii", "run 2.nii"}}, {"t1", {"t1.nii"}},
		{"logs", {"logs"}},         {"t1_brain", {"b.nii"}},                {NULL, {NULL}},
	};
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(recipe_expand_run(r, table_resolve, (void *)paths, &out, &err), 0);
	assert_string_equal(out.buf, "x 'r.nii' 'run 1.nii' 'run 2.nii' 't1.nii' 'logs' > 'b.nii'");
	strbuf_release(&out);
	recipe_set_free(set);

	expect_check_error("recipes:\n  - name: a\n    in:\n      - t1\n      - \"*_mask\"\n    out: [t1_brain]\n"
			   "    run: x\n",
			   5, "in: the glob key '*_mask' matches no template key", NULL);
	expect_check_error("recipes:\n  - name: a\n    in: [t1]\n    optional: [\"*_mask\"]\n    out: [t1_brain]\n"
			   "    run: x\n",
			   4, "optional: the glob key '*_mask' matches no key of this recipe's in or out", NULL);
	expect_check_error("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_brain]\n    run: x {t1_*} > {t1_brain}\n",
			   5, "'{t1_*}' is a glob key this recipe does not list", NULL);
}

/* {name} and vars may name a placeholder no template of the recipe uses; params may not hide one. */
static bool fake_defined(void *ctx, const char *placeholder)
{
	(void)ctx;
	return !strcmp(placeholder, "fwhm") || !strcmp(placeholder, "version");
}

static int check_with_defined(const char *yaml, struct cp_err *err)
{
	struct recipe_set *set = load_ok(yaml);
	struct recipe_tree_view view = fake_view();
	view.defined = fake_defined;
	int rc = recipe_check(set, &view, err);
	recipe_set_free(set);
	return rc;
}

/* check_with_defined fails at `line` with `fragment` in the message. */
static void expect_defined_error(const char *yaml, int line, const char *fragment)
{
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(check_with_defined(yaml, &err), -1);
	if (err.line != line || !strstr(err.message, fragment))
		print_error("got line %d: %s\nwanted line %d: ...%s...\n", err.line, err.message, line, fragment);
	assert_int_equal(err.line, line);
	assert_non_null(strstr(err.message, fragment));
	cp_err_release(&err);
}

static void test_any_placeholder(void **state)
{
	(void)state;
	struct cp_err err = CP_ERR_INIT;
	/* version: a constant of the tree that no template of the recipe uses. */
	assert_int_equal(check_with_defined("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_brain]\n"
					    "    vars: [version]\n    run: x {version} > {t1_brain}\n",
					    &err),
			 0);
	/* fwhm has several values and no output carries it ... */
	expect_defined_error("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_brain]\n    run: x {fwhm} > {t1_brain}\n",
			     5, "placeholder 'fwhm' has several values");
	/* ... unless the recipe gives it one value. */
	assert_int_equal(check_with_defined("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_brain]\n"
					    "    placeholders: {fwhm: 4}\n    run: x {fwhm} > {t1_brain}\n",
					    &err),
			 0);
	expect_defined_error("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_brain]\n"
			     "    params: {run: 1}\n    run: x {run} > {t1_brain}\n",
			     5, "params: 'run' is also a placeholder of the tree");
	expect_defined_error("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_brain]\n"
			     "    placeholders: {subjet: [a]}\n    run: x\n",
			     5, "'subjet' is no placeholder of the tree nor of this recipe");
}

static void test_check_errors(void **state)
{
	(void)state;
	expect_check_error("recipes:\n  - name: a\n    in:\n      - t1\n      - t1_brian\n    out: [group_mean]\n"
			   "    batch: [subject]\n    run: x\n",
			   5, "recipe 'a': in: unknown template key 't1_brian'", "did you mean 't1_brain'?");
	expect_check_error("recipes:\n  - name: a\n    in: [t1]\n    out: [zzzzzz]\n    run: x\n", 4,
			   "unknown template key 'zzzzzz': the tree has no such key", NULL);
	expect_check_error("default: [t1, group_men]\nrecipes: []\n", 1, "default: unknown template key 'group_men'",
			   "did you mean 'group_mean'?");
	/* an output placeholder nothing covers */
	expect_check_error("recipes:\n  - name: a\n    in: [group_mean]\n    out: [t1_brain]\n    run: x\n", 4,
			   "out: placeholder 'subject' of 't1_brain' is not covered", "'vars'");
	expect_check_error("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_run]\n    run: x {t1} {t1_run}\n", 4,
			   "placeholder 'run' of 't1_run' is not covered", NULL);
	expect_check_error("recipes:\n  - name: a\n    in: [t1]\n    out: [group_mean]\n    batch: [subjet]\n"
			   "    run: x\n",
			   5, "batch: 'subjet' is no placeholder of this recipe's templates", "did you mean 'subject'?");
	expect_check_error("recipes:\n  - name: a\n    out: [t1]\n    vars: [subject, colour]\n    run: x\n", 4,
			   "vars: 'colour' is no placeholder", NULL);
	/* names in run */
	expect_check_error("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_reorient]\n"
			   "    run: cp ${HOME}/x {t1_reorient}\n",
			   5, "run: unknown name '{HOME}'", "${{HOME}}");
	expect_check_error("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_reorient]\n"
			   "    run: cp {t1} {t1_reorent}\n",
			   5, "unknown name '{t1_reorent}' (did you mean '{t1_reorient}'?)", NULL);
	expect_check_error("recipes:\n  - name: a\n    in: [t1]\n    out: [t1_reorient]\n"
			   "    run: cp {t1} {t1_reorient} {logs}\n",
			   5, "'{logs}' is a template key this recipe does not list", NULL);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(recipe_load("/nonexistent/cpipe.yaml", &set, &err), -1);
	assert_null(set);
	assert_string_equal(err.file, "/nonexistent/cpipe.yaml");
	assert_non_null(strstr(err.message, "cannot open"));
	cp_err_release(&err);
}

static void test_load_string(void **state)
{
	(void)state;
	static const char text[] = "tree: t.tree\nrecipes:\n  - {name: a, out: [x], run: 'touch {x}'}\n";
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(recipe_load_string(text, strlen(text), "study/cpipe.yaml", &set, &err), 0);
	assert_string_equal(set->dir, "study");
	assert_string_equal(set->tree, "study/t.tree");
	assert_string_equal(set->data, "study");
	assert_int_equal(set->recipes[0].line, 3);
	recipe_set_free(set);
}

/* The cluster resources pe and extra_<backend>: values, top-level defaults, messages. */
static void test_pe_and_backend_extras(void **state)
{
	(void)state;
	struct recipe_set *set = load_ok("resources:\n"
					 "  pe: openmp\n"
					 "  extra_fsl_sub: [--not_requeueable]\n"
					 "recipes:\n"
					 "  - name: a\n"
					 "    out: [x]\n"
					 "    run: touch {x}\n"
					 "    resources: {threads: 4, extra: [--x], extra_slurm: [--exclusive, --comment=y]}\n"
					 "  - name: b\n"
					 "    out: [y]\n"
					 "    run: touch {y}\n"
					 "    resources: {pe: shmem, extra_sge: ['-l', 'gpu=1']}\n");
	const struct recipe_resources *a = &set->recipes[0].resources, *b = &set->recipes[1].resources;
	/* a: pe and extra_fsl_sub from the top level, its own extra and extra_slurm. */
	assert_string_equal(a->pe, "openmp");
	assert_int_equal(a->extra.count, 1);
	assert_int_equal(a->backend_extra[RECIPE_BACKEND_SLURM].count, 2);
	assert_string_equal(a->backend_extra[RECIPE_BACKEND_SLURM].items[1], "--comment=y");
	assert_int_equal(a->backend_extra[RECIPE_BACKEND_SGE].count, 0);
	assert_int_equal(a->backend_extra[RECIPE_BACKEND_FSL_SUB].count, 1);
	assert_string_equal(a->backend_extra[RECIPE_BACKEND_FSL_SUB].items[0], "--not_requeueable");
	/* b: its own pe wins. */
	assert_string_equal(b->pe, "shmem");
	assert_int_equal(b->backend_extra[RECIPE_BACKEND_SGE].count, 2);
	assert_string_equal(b->backend_extra[RECIPE_BACKEND_SGE].items[1], "gpu=1");
	assert_int_equal(b->backend_extra[RECIPE_BACKEND_FSL_SUB].count, 1);
	recipe_set_free(set);

	const char *head = "recipes:\n  - name: a\n    out: [x]\n    run: touch {x}\n    resources:\n";
	const char *bad[][2] = {
		{"      pe: smp,4\n", "resources.pe: 'smp,4' is not a parallel environment name"},
		{"      pe: 'open mp'\n", "not a parallel environment name"},
		{"      pe: ''\n", "resources.pe: must not be empty"},
		{"      extra_sge: ['-l', '']\n", "resources.extra_sge: empty argument"},
		{"      extra_pbs: [-x]\n", "extra_pbs"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = xasprintf("%s%s", head, bad[i][0]);
		expect_load_error(text, 6, bad[i][1], NULL);
		free(text);
	}
}

static void test_example_study_recipes(void **state)
{
	(void)state;
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	int rc = recipe_load(CPIPE_SOURCE_DIR "/recipes/mydata.yaml", &set, &err);
	if (rc)
		print_error("%s\n", err.message);
	assert_int_equal(rc, 0);
	assert_true(set->count >= 3);
	assert_true(recipe_find_producer(set, "t1_brain") >= 0);
	assert_non_null(strstr(set->tree, "mydata.tree"));
	recipe_set_free(set);
}

/* batch_label (fsl-pipe's batch='label'): kept for run -b, not part of the definition; never empty. */
static void test_batch_label(void **state)
{
	(void)state;
	struct recipe_set *set = load_ok("recipes:\n  - name: a\n    out: [y]\n    run: x\n    batch_label: anat\n"
					 "  - name: b\n    out: [z]\n    run: x\n");
	assert_string_equal(set->recipes[0].batch_label, "anat");
	assert_null(set->recipes[1].batch_label);
	struct strbuf labelled = STRBUF_INIT, plain = STRBUF_INIT;
	recipe_definition_text(&set->recipes[0], &labelled);
	set->recipes[0].batch_label[0] = 'x';
	recipe_definition_text(&set->recipes[0], &plain);
	assert_string_equal(labelled.buf, plain.buf);
	strbuf_release(&labelled);
	strbuf_release(&plain);
	recipe_set_free(set);
	expect_load_error("recipes:\n  - name: a\n    out: [y]\n    run: x\n    batch_label: ''\n", 5,
			  "recipe 'a': batch_label", "empty label");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_file_with_all_fields),
		cmocka_unit_test(test_defaults_and_null_lists),
		cmocka_unit_test(test_load_errors_are_located),
		cmocka_unit_test(test_missing_and_invalid_fields),
		cmocka_unit_test(test_resources_must_be_positive),
		cmocka_unit_test(test_did_you_mean_for_fields),
		cmocka_unit_test(test_link_and_product),
		cmocka_unit_test(test_duplicate_outputs),
		cmocka_unit_test(test_run_syntax_errors),
		cmocka_unit_test(test_run_expansion),
		cmocka_unit_test(test_run_quoting_contexts),
		cmocka_unit_test(test_run_and_var_names),
		cmocka_unit_test(test_definition_text),
		cmocka_unit_test(test_check_valid),
		cmocka_unit_test(test_check_errors),
		cmocka_unit_test(test_params_and_values),
		cmocka_unit_test(test_params_errors),
		cmocka_unit_test(test_glob_keys),
		cmocka_unit_test(test_any_placeholder),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_load_string),
		cmocka_unit_test(test_example_study_recipes),
		cmocka_unit_test(test_pe_and_backend_extras),
		cmocka_unit_test(test_batch_label),
	};
	int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
	strvec_release(&fake_keys);
	return failed;
}
