/*
 * Private to the exec module: the helpers exec.c defines and the local pool
 * (exec_local.c) also uses, and how the pool starts a job's process
 * (exec_spawn.c). Nothing outside src/exec*.c includes it.
 */
#ifndef CPIPE_EXEC_INT_H
#define CPIPE_EXEC_INT_H

#include "cpipe/util.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#if (defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))) || \
	(defined(__APPLE__) && defined(__MAC_OS_X_VERSION_MIN_REQUIRED) && __MAC_OS_X_VERSION_MIN_REQUIRED >= 101500)
#define EXEC_HAVE_SPAWN_CHDIR 1 /* posix_spawn can change directory: no fork needed */
#include <spawn.h>
#endif

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

/* An fd of ours moved off 0, 1 and 2 (dup2 onto itself in a child would keep FD_CLOEXEC); -1 stays -1. */
int exec_fd_above_stdio(int fd);

/*
 * Starting the local pool's job processes (exec_spawn.c): what every job of a
 * run shares, set up once. Each job runs in `cwd` in its own process group,
 * stdin /dev/null, stdout and stderr on its log, an empty signal mask and
 * `defaults` back at their default actions.
 */
struct exec_spawner {
	const char *cwd;
	char **envp;
	sigset_t defaults;
	int devnull;
	int log_slot; /* a job's log is put at this fd before spawning: the file actions stay the same */
#ifdef EXEC_HAVE_SPAWN_CHDIR
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t actions;
	bool spawn_ready;
#endif
	/* Programs found on PATH this run (a shell's `hash`): name -> index into paths. */
	struct strmap programs;
	struct strvec paths;
};

/* Set up `s` (borrowing cwd and envp); 0, or -1 with err set and nothing to release. */
int exec_spawner_init(struct exec_spawner *s, const char *cwd, char **envp, const sigset_t *defaults,
		      struct cp_err *err);
void exec_spawner_release(struct exec_spawner *s);

/*
 * Start `words` (a plain command, exec_simple_command_words; its program is
 * looked up on PATH once per run) or, with `words` NULL, `/bin/sh script`,
 * with stdout and stderr on `log_fd`. Returns the pid, or -1 with errno set
 * (the program could not be executed: the caller may go through the shell).
 * posix_spawn where it can change directory: glibc implements it with
 * CLONE_VM|CLONE_VFORK, which skips copying our page tables and the
 * copy-on-write faults that follow a fork; elsewhere fork, and only the shell.
 */
pid_t exec_spawn(struct exec_spawner *s, const char *script, const struct strvec *words, int log_fd);

#endif
