/*
 * libFuzzer target for the recipe module: arbitrary bytes as a recipe file
 * (recipe_load_string), then what the CLI does with a loaded set: --set
 * assignments, the checks against a small fixed tree view (glob keys,
 * placeholders, parameters), the names and the expansion of every `run`, and
 * each recipe's definition text. Nothing may crash, leak or trip a sanitizer;
 * errors are fine.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpipe/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A tree of a few keys over subject, session, run and fwhm. */
static const char *const tree_keys[] = {"t1", "t1_brain", "brain_mask", "csf_mask", "group", "smooth", "logs"};

static int view_placeholders(void *ctx, const char *key, struct strvec *required, struct strvec *optional)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof(tree_keys) / sizeof(*tree_keys); i++) {
		if (strcmp(key, tree_keys[i]))
			continue;
		if (strcmp(key, "group") && strcmp(key, "logs")) {
			strvec_push(required, "subject");
			strvec_push(optional, "session");
		}
		if (!strcmp(key, "smooth"))
			strvec_push(required, "fwhm");
		return 0;
	}
	return -1;
}

static bool view_singular(void *ctx, const char *placeholder)
{
	(void)ctx;
	return !strcmp(placeholder, "space");
}

static bool view_defined(void *ctx, const char *placeholder)
{
	(void)ctx;
	return !strcmp(placeholder, "space") || !strcmp(placeholder, "fwhm") || !strcmp(placeholder, "run");
}

/* Every name resolves to two values, one of them hostile; "none" to nothing. */
static int resolve(void *ctx, const char *name, struct strbuf *values, size_t *count, struct cp_err *err)
{
	(void)ctx;
	(void)err;
	if (!strcmp(name, "none"))
		return 0;
	if (!strcmp(name, "unknown"))
		return RECIPE_UNKNOWN_NAME;
	static const char hostile[] = "a 'b' \"c\" $(d)\n#e";
	strbuf_add(values, name, strlen(name) + 1);
	strbuf_add(values, hostile, sizeof(hostile));
	*count += 2;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct recipe_set *set = NULL;
	struct cp_err err = CP_ERR_INIT;
	if (recipe_load_string((const char *)data, size, "fuzz.yaml", &set, &err) == 0) {
		/* --set every parameter of the first recipe, one way then the other. */
		struct strvec settings = STRVEC_INIT;
		for (size_t i = 0; set->count && i < set->recipes[0].param_count; i++) {
			const char *name = set->recipes[0].params[i].name;
			strvec_push_owned(&settings, xasprintf("%s=x'y", name));
			strvec_push_owned(&settings, xasprintf("%s.%s=$(z)", set->recipes[0].name, name));
		}
		strvec_push(&settings, "no.such=1");
		cp_err_release(&err);
		recipe_set_params(set, &settings, &err);
		strvec_release(&settings);

		struct strvec keys = STRVEC_INIT;
		for (size_t i = 0; i < sizeof(tree_keys) / sizeof(*tree_keys); i++)
			strvec_push(&keys, tree_keys[i]);
		struct recipe_tree_view view = {&keys, view_placeholders, view_singular, NULL, view_defined};
		cp_err_release(&err);
		recipe_check(set, &view, &err);
		strvec_release(&keys);

		struct strbuf out = STRBUF_INIT;
		for (size_t r = 0; r < set->count; r++) {
			struct strvec names = STRVEC_INIT;
			cp_err_release(&err);
			recipe_run_names(&set->recipes[r], &names, &err);
			recipe_var_names(&set->recipes[r], &names);
			strvec_release(&names);
			strbuf_reset(&out);
			cp_err_release(&err);
			recipe_expand_run(&set->recipes[r], resolve, NULL, &out, &err);
			strbuf_reset(&out);
			recipe_definition_text(&set->recipes[r], &out);
			recipe_field_line(&set->recipes[r], "params");
		}
		strbuf_release(&out);
		recipe_set_free(set);
	}
	cp_err_release(&err);
	return 0;
}
