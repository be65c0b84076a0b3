/*
 * libFuzzer target for the tree module: arbitrary bytes as a .tree text, then
 * printing it and filling every template. Nothing may crash, leak or trip a
 * sanitizer; errors are fine.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpipe/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The parser takes a C string: stop at an embedded NUL, as a reader would. */
	char *text = xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';

	/* No search directories, so `->x` lines only look in the working directory. */
	struct tree_search search = {NULL, 0};
	struct tree *tree = NULL;
	struct cp_err err = CP_ERR_INIT;
	if (tree_parse_string(text, "fuzz.tree", &search, &tree, &err) == 0) {
		struct strbuf out = STRBUF_INIT;
		tree_to_string(tree, &out);

		/* What to_string prints must parse again. */
		struct tree *again = NULL;
		struct cp_err again_err = CP_ERR_INIT;
		if (tree_parse_string(out.buf, "printed.tree", &search, &again, &again_err) == 0)
			tree_free(again);
		cp_err_release(&again_err);

		for (size_t i = 0; i < tree->template_count; i++) {
			strbuf_reset(&out);
			cp_err_release(&err);
			tree_fill(tree, i, &out, &err);
			strbuf_reset(&out);
			cp_err_release(&err);
			tree_substitute_singular(tree, tree->templates[i].path, &out, &err);
		}
		struct strvec keys = STRVEC_INIT;
		tree_template_keys(tree, &keys);
		for (size_t i = 0; i < keys.count; i++) {
			cp_err_release(&err);
			tree_find_template(tree, keys.items[i], &err);
		}
		strvec_release(&keys);
		strbuf_release(&out);
		tree_free(tree);
	}
	cp_err_release(&err);
	free(text);
	return 0;
}
