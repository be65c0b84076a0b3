/*
 * Private to the exec module: the helpers exec.c defines and the local pool
 * (exec_local.c) also uses, the paths of the cluster's files
 * (exec_record.c), how the pool starts a job's process (exec_spawn.c) and
 * handles signals (exec_signals.c) and asks to be scheduled (exec_sched.c).
 * Nothing outside src/exec*.c includes it.
 */
#ifndef CPIPE_EXEC_INT_H
#define CPIPE_EXEC_INT_H

#include "cpipe/util.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__linux__)
/*
 * vfork: the child borrows our memory until it executes, so it costs no page
 * tables, no stack of its own, and can leave the reason an exec failed where
 * we read it.
 */
#define EXEC_HAVE_VFORK 1
#endif

/* The wall clock in seconds (CLOCK_REALTIME): start and finish times of jobs. */
double exec_now_real(void);

/* Make the directory holding `path`; a path without '/' needs nothing. */
int exec_mkdir_parent(const char *path, struct cp_err *err);

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

/* An fd of ours moved off 0, 1 and 2 (dup2 onto itself in a child would keep FD_CLOEXEC); -1 stays -1. */
int exec_fd_above_stdio(int fd);

/*
 * Starting the local pool's job processes (exec_spawn.c): what every job of a
 * run shares, set up once. Each job runs in `cwd` in its own process group,
 * stdin /dev/null, stdout and stderr on its log, an empty signal mask and
 * `defaults` back at their default actions.
 */
struct exec_spawner {
	const char *cwd; /* NULL: the jobs run where we are */
	char **envp;
	int devnull;
	int default_signals[NSIG]; /* the signals of `defaults`, listed once for the child */
	int default_count;
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
 * With vfork the child makes only system calls until it executes; elsewhere
 * it is a fork, and only the shell (whose failure the child cannot report).
 */
pid_t exec_spawn(struct exec_spawner *s, const char *script, const struct strvec *words, int log_fd);

/*
 * The local pool's request to be scheduled promptly when a job ends (exec_sched.c): a short
 * time slice for the calling thread only, its children keeping the default. restore puts the
 * thread's settings back; both do nothing where the system has no such request.
 */
struct exec_sched {
	bool changed;
	uint64_t slice_ns; /* the thread's slice and flags before */
	uint64_t flags;
};
void exec_sched_quick_wakeups(struct exec_sched *s);
void exec_sched_restore(struct exec_sched *s);

/*
 * The local pool's signals (exec_signals.c). exec_signals_install blocks
 * SIGCHLD and the stop signals SIGINT, SIGTERM, SIGHUP (each unless ignored
 * when the run began, as make and sh leave them) and counts stop signals;
 * they get through only inside exec_signals_wait. exec_signals_restore puts
 * the caller's handlers and mask back.
 */
#define EXEC_STOP_SIGNAL_COUNT 3
struct exec_signals {
	sigset_t old_mask;
	sigset_t wait_mask; /* old_mask without our signals: what pselect lets through */
	struct sigaction old_child;
	struct sigaction old_stop[EXEC_STOP_SIGNAL_COUNT];
	bool installed_stop[EXEC_STOP_SIGNAL_COUNT];
};
void exec_signals_install(struct exec_signals *s);
void exec_signals_restore(struct exec_signals *s);
/* What a job's process sets back to the default action: our handled signals, and SIGPIPE and SIGXFSZ. */
void exec_signals_job_defaults(const struct exec_signals *s, sigset_t *defaults);
/* Stop signals received since exec_signals_install. */
sig_atomic_t exec_signals_interrupts(void);
/* Block until a signal arrives or the monotonic time `wake` (0 = never) passes. */
void exec_signals_wait(const struct exec_signals *s, double wake);

#endif
