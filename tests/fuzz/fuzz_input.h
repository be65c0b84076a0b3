/* What the libFuzzer targets share: reading their input. */
#ifndef CPIPE_FUZZ_INPUT_H
#define CPIPE_FUZZ_INPUT_H

#include <stdint.h>
#include <string.h>

#include "cpipe/util.h"

/*
 * An input of two C strings, "FIRST\nSECOND" (cut at the first NUL: they are C strings; no
 * newline gives an empty SECOND). Both are the caller's to free.
 */
static inline void fuzz_split_input(const uint8_t *data, size_t size, char **first, char **second)
{
	const char *text = (const char *)data;
	size_t length = strnlen(text, size);
	const char *newline = memchr(text, '\n', length);
	*first = xstrndup(text, newline ? (size_t)(newline - text) : length);
	*second = newline ? xstrndup(newline + 1, length - (size_t)(newline + 1 - text)) : xstrdup("");
}

#endif
