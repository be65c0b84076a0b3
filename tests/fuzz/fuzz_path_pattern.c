/*
 * libFuzzer target for target patterns (path_pattern_match, path_pattern_distance in util):
 * the input is a pattern, a newline, then a path. Neither may crash or leak; a path written
 * with every special character escaped matches itself; a pattern without special characters
 * is at the edit distance from a path, and matches only that path; `**` matches every path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpipe/util.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *pattern, *path;
	fuzz_split_input(data, size, &pattern, &path);

	bool matched = path_pattern_match(pattern, path);
	if (matched != (path_pattern_distance(pattern, path) == 0))
		abort();
	if (!path_is_pattern(pattern) &&
	    (matched != !strcmp(pattern, path) || path_pattern_distance(pattern, path) != str_distance(pattern, path)))
		abort();
	if (!path_pattern_match("**", path))
		abort();
	struct strbuf escaped = STRBUF_INIT;
	for (const char *c = path; *c; c++) {
		if (strchr("*?[\\", *c))
			strbuf_addch(&escaped, '\\');
		strbuf_addch(&escaped, *c);
	}
	if (!path_pattern_match(escaped.buf, path))
		abort();
	strbuf_release(&escaped);
	free(pattern);
	free(path);
	return 0;
}
