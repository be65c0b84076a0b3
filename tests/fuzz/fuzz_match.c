/*
 * libFuzzer target for the template matcher: the input is a template, a
 * newline, then a path. Both glob_template_regex and glob_match_path must
 * neither crash nor leak, and must agree on whether the template is valid;
 * the one parse kept by default must be one of the parses all_parses lists.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpipe/glob.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *template_text, *path;
	fuzz_split_input(data, size, &template_text, &path);

	struct strbuf regex = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	int with = glob_template_regex(template_text, true, &regex, &err);
	strbuf_reset(&regex);
	int without = glob_template_regex(template_text, false, &regex, &err);

	struct glob_result matches = GLOB_RESULT_INIT;
	int count = glob_match_path(template_text, path, true, &matches, &err);
	/* Every template error is found by both, and a count is what was appended. */
	if ((with < 0) != (count < 0) || (without < 0 && with >= 0))
		abort();
	if (count >= 0 && (size_t)count != matches.count)
		abort();
	for (size_t i = 0; i < matches.count; i++) {
		const struct glob_file *file = &matches.files[i];
		if (strcmp(file->path, path))
			abort();
		for (size_t b = 1; b < file->binding_count; b++)
			if (strcmp(file->bindings[b - 1].name, file->bindings[b].name) >= 0)
				abort();
	}
	struct glob_result best = GLOB_RESULT_INIT;
	int kept = glob_match_path(template_text, path, false, &best, &err);
	if (kept != (count > 0 ? 1 : count))
		abort();
	bool listed = kept <= 0;
	for (size_t i = 0; kept > 0 && i < matches.count && !listed; i++) {
		const struct glob_file *file = &matches.files[i];
		listed = file->binding_count == best.files[0].binding_count;
		for (size_t b = 0; listed && b < file->binding_count; b++) {
			const char *x = file->bindings[b].value.text, *y = best.files[0].bindings[b].value.text;
			listed = (!x && !y) || (x && y && !strcmp(x, y));
		}
	}
	if (!listed)
		abort();
	glob_result_release(&best);
	glob_result_release(&matches);
	strbuf_release(&regex);
	cp_err_release(&err);
	free(template_text);
	free(path);
	return 0;
}
