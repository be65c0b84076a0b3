/*
 * Helpers shared by the unit tests: temporary files and directories. Include
 * after <cmocka.h> (the helpers assert) and with <ftw.h>'s nftw and mkdtemp
 * declared (_GNU_SOURCE, or _XOPEN_SOURCE 700, before the first include).
 */
#ifndef CPIPE_TEST_HELPERS_H
#define CPIPE_TEST_HELPERS_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * cmocka setup: make a fresh directory from `template` (ending in XXXXXX) and
 * leave its malloc'd path in *state, for temp_dir_teardown.
 */
static inline int temp_dir_setup(void **state, const char *template)
{
	char *dir = strdup(template);
	if (!dir || !mkdtemp(dir)) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

/* cmocka teardown for temp_dir_setup: remove the directory and free its path. */
static inline int temp_dir_teardown(void **state)
{
	char *dir = *state;
	int rc = remove_tree(dir);
	free(dir);
	return rc == 0 ? 0 : -1;
}

#ifdef CPIPE_STATE_H
/* Assert that `job_id`'s log path (state_job_log) is `want`, or that it has none (`want` NULL). */
static inline void assert_job_log(struct state *state, const char *job_id, const char *want)
{
	struct strbuf log = STRBUF_INIT;
	bool found = state_job_log(state, job_id, &log);
	assert_int_equal(found, want != NULL);
	assert_string_equal(log.buf, want ? want : "");
	strbuf_release(&log);
}
#endif

#endif
