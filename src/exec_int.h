/*
 * Private to the exec module: the helpers exec.c defines and the local pool
 * (exec_local.c) also uses, and the paths of the cluster's files
 * (exec_record.c). Nothing outside src/exec*.c includes it.
 */
#ifndef CPIPE_EXEC_INT_H
#define CPIPE_EXEC_INT_H

#include "cpipe/util.h"

#include <stdbool.h>
#include <stddef.h>

/* The wall clock in seconds (CLOCK_REALTIME): start and finish times of jobs. */
double exec_now_real(void);

/* Make the directory holding `path`; a path without '/' needs nothing. */
int exec_mkdir_parent(const char *path, struct cp_err *err);

/* Write all of `data` to `fd`, retrying short writes and EINTR; 0 or -1 (errno set). */
int exec_write_all(int fd, const void *data, size_t len);

/* rm -rf `path`; a missing path is fine. Errors are ignored: this only tidies. */
void exec_remove_tree(const char *path);

/* Whether `path` exists, not following a final symbolic link. */
bool exec_path_exists_nofollow(const char *path);

/* The path an output takes under .cpipe/prev/<name>/ or .cpipe/failed/<name>/, kept inside it. */
void exec_output_key(const char *output, struct strbuf *out);

/* `cwd`/`rel` into `out` (reset first), or `rel` alone when cwd is "." or NULL. */
void exec_root_path(const char *cwd, const char *rel, struct strbuf *out);

/* .cpipe/jobs/<name><suffix> under `cwd`, into `out` (reset first). */
void exec_record_path(const char *cwd, const char *name, const char *suffix, struct strbuf *out);

#endif
