/*
 * Unit tests for the cluster resources of a recipe file: the parallel
 * environment (`pe`) and the scheduler arguments meant for one backend only
 * (`extra_slurm`, `extra_sge`, `extra_fsl_sub`), their top-level defaults and
 * the messages for bad values.
 */
#include "cpipe/recipe.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static struct recipe_set *load(const char *text)
{
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	int rc = recipe_load_string(text, strlen(text), "cpipe.yaml", &set, &err);
	if (rc != 0)
		fail_msg("load failed: %s:%d: %s", err.file ? err.file : "?", err.line, err.message);
	return set;
}

/* The message of a file that must not load, with its line. */
static void expect_error(const char *text, int line, const char *message)
{
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	assert_int_equal(recipe_load_string(text, strlen(text), "cpipe.yaml", &set, &err), -1);
	assert_null(set);
	if (!strstr(err.message, message))
		fail_msg("'%s' lacks '%s'", err.message, message);
	assert_int_equal(err.line, line);
	cp_err_release(&err);
}

static void test_pe_and_backend_extras(void **state)
{
	(void)state;
	struct recipe_set *set = load("resources:\n"
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
}

static void test_bad_values(void **state)
{
	(void)state;
	static const char head[] = "recipes:\n  - name: a\n    out: [x]\n    run: touch {x}\n    resources:\n";
	char text[512];
	snprintf(text, sizeof(text), "%s      pe: smp,4\n", head);
	expect_error(text, 6, "resources.pe: 'smp,4' is not a parallel environment name");
	snprintf(text, sizeof(text), "%s      pe: 'open mp'\n", head);
	expect_error(text, 6, "not a parallel environment name");
	snprintf(text, sizeof(text), "%s      pe: ''\n", head);
	expect_error(text, 6, "resources.pe: must not be empty");
	snprintf(text, sizeof(text), "%s      extra_sge: ['-l', '']\n", head);
	expect_error(text, 6, "resources.extra_sge: empty argument");
	snprintf(text, sizeof(text), "%s      extra_pbs: [-x]\n", head);
	expect_error(text, 6, "extra_pbs");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pe_and_backend_extras),
		cmocka_unit_test(test_bad_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
