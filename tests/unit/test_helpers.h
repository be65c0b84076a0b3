/*
 * Helpers shared by the unit tests: temporary files and directories. Include
 * after <cmocka.h> (the helpers assert) and with <ftw.h>'s nftw declared
 * (_XOPEN_SOURCE 500 or later, or _GNU_SOURCE, before the first include).
 */
#ifndef CPIPE_TEST_HELPERS_H
#define CPIPE_TEST_HELPERS_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int remove_tree_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* Remove `dir` and everything below it, without following symbolic links. */
static inline int remove_tree(const char *dir)
{
	return nftw(dir, remove_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Create or truncate the file at `path` and write `text` into it. */
static inline void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

#endif
