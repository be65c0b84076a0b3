/*
 * exec: starting a local job's process (for exec_local.c, through
 * exec_int.h): telling a plain command from one that needs /bin/sh, finding
 * a plain command's program on PATH once per run, and starting the process
 * with what every job of a run shares set up once.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* vfork, strchrnul */
#endif

#include "cpipe/exec.h"
#include "exec_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int exec_fd_above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return moved;
}

/* Shell words that are not programs: such a command needs the shell. */
static const char *const shell_only_words[] = {
	"!", ".", ":", "[[", "alias", "break", "case", "cd", "command", "continue", "do", "done", "elif",
	"else", "esac", "eval", "exec", "exit", "export", "fi", "for", "function", "getopts", "hash", "if",
	"in", "local", "read", "readonly", "return", "select", "set", "shift", "source", "then", "times",
	"trap", "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while", "{", "}",
};

static bool plain_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_@%+=:,./-", c);
}

bool exec_simple_command_words(const char *command, struct strvec *words)
{
	struct strvec found = STRVEC_INIT;
	struct strbuf word = STRBUF_INIT;
	const char *s = command;
	bool simple = true;
	while (simple) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		strbuf_reset(&word);
		while (simple && *s && *s != ' ' && *s != '\t') {
			if (plain_word_char(*s)) {
				strbuf_addch(&word, *s++);
			} else if (*s == '\'') {
				const char *close = strchr(s + 1, '\'');
				if (!close)
					simple = false;
				else {
					strbuf_add(&word, s + 1, (size_t)(close - s - 1));
					s = close + 1;
				}
			} else {
				simple = false; /* anything else may mean something to the shell */
			}
		}
		if (simple)
			strvec_push(&found, word.buf);
	}
	if (simple && found.count) {
		const char *first = found.items[0];
		/* An assignment or a builtin needs the shell; so does a program named by a quoted '='. */
		simple = !strchr(first, '=') && *first;
		for (size_t i = 0; simple && i < sizeof(shell_only_words) / sizeof(*shell_only_words); i++)
			simple = strcmp(first, shell_only_words[i]) != 0;
	}
	simple = simple && found.count > 0;
	if (simple) {
		for (size_t i = 0; i < found.count; i++)
			strvec_push(words, found.items[i]);
	}
	strvec_release(&found);
	strbuf_release(&word);
	return simple;
}

/*
 * Where the shell would find `program` (no '/' in it) on PATH: the first
 * executable regular file, or NULL when PATH has none, or has an empty or
 * relative entry (the job's directory is not ours to resolve against):
 * the job then goes through the shell, which searches as it always does.
 */
static char *find_on_path(const char *program)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		return NULL;
	struct strbuf candidate = STRBUF_INIT;
	char *found = NULL;
	for (const char *dir = path; !found;) {
		const char *end = strchrnul(dir, ':');
		if (end == dir || *dir != '/')
			break;
		strbuf_reset(&candidate);
		strbuf_add(&candidate, dir, (size_t)(end - dir));
		strbuf_addch(&candidate, '/');
		strbuf_adds(&candidate, program);
		struct stat st;
		if (stat(candidate.buf, &st) == 0 && S_ISREG(st.st_mode) && access(candidate.buf, X_OK) == 0)
			found = strbuf_detach(&candidate);
		if (!*end)
			break;
		dir = end + 1;
	}
	strbuf_release(&candidate);
	return found;
}

/* The program to execute for `words`: a path as given, else PATH's answer, looked up once per run. */
static const char *program_path(struct exec_spawner *s, const char *program)
{
	if (strchr(program, '/'))
		return program;
	size_t at;
	if (strmap_get(&s->programs, program, &at))
		return s->paths.items[at];
	char *found = find_on_path(program);
	if (!found)
		return NULL;
	strmap_put(&s->programs, program, s->paths.count);
	strvec_push_owned(&s->paths, found);
	return found;
}

int exec_spawner_init(struct exec_spawner *s, const char *cwd, char **envp, const sigset_t *defaults,
		      struct cp_err *err)
{
	memset(s, 0, sizeof(*s));
	s->cwd = cwd && strcmp(cwd, ".") ? cwd : NULL;
	s->envp = envp;
	for (int signo = 1; signo < NSIG; signo++)
		if (sigismember(defaults, signo) == 1)
			s->default_signals[s->default_count++] = signo;
	s->devnull = exec_fd_above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (s->devnull < 0) {
		cp_err_set(err, NULL, 0, "cannot open /dev/null: %s", strerror(errno));
		exec_spawner_release(s);
		return -1;
	}
	return 0;
}

void exec_spawner_release(struct exec_spawner *s)
{
	if (s->devnull >= 0)
		close(s->devnull);
	s->devnull = -1;
	strmap_release(&s->programs);
	strvec_release(&s->paths);
}

/* What a job's child does, all of it prepared before the child exists. */
struct spawn_child {
	const struct exec_spawner *s;
	const char *program;
	char *const *argv;
	int log_fd;
	volatile int exec_errno; /* why the child could not execute; vfork shares it with us */
};

/*
 * The child: system calls only, from here to exec. Our signals are blocked
 * throughout a run (exec_signals.c), so no handler of ours can run in the
 * child before their default actions are back.
 */
static _Noreturn void spawn_child_run(struct spawn_child *c)
{
	const struct exec_spawner *s = c->s;
	setpgid(0, 0);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int k = 0; k < s->default_count; k++)
		sigaction(s->default_signals[k], &dfl, NULL);
	sigset_t empty;
	sigemptyset(&empty);
	if ((!s->cwd || chdir(s->cwd) == 0) && dup2(s->devnull, 0) >= 0 && dup2(c->log_fd, 1) >= 0 &&
	    dup2(c->log_fd, 2) >= 0) {
		sigprocmask(SIG_SETMASK, &empty, NULL);
		execve(c->program, c->argv, s->envp);
	}
	c->exec_errno = errno ? errno : ENOEXEC;
#ifndef EXEC_HAVE_VFORK
	/* A forked child cannot tell us: say it in the log. */
	static const char failed[] = "cpipe: cannot change to the data directory or execute /bin/sh\n";
	if (write(c->log_fd, failed, sizeof(failed) - 1) < 0)
		_exit(127);
#endif
	_exit(127);
}

pid_t exec_spawn(struct exec_spawner *s, const char *script, const struct strvec *words, int log_fd)
{
	char *const shell_argv[] = {"sh", (char *)script, NULL};
	struct spawn_child child = {s, "/bin/sh", shell_argv, log_fd, 0};
	if (words) {
		/* A plain command runs without a shell in between, as make does: one exec less per job. */
		child.program = program_path(s, words->items[0]);
		child.argv = words->items;
		if (!child.program) {
			errno = ENOENT; /* the shell then searches PATH as it does and says why */
			return -1;
		}
	}
#ifdef EXEC_HAVE_VFORK
	pid_t pid = vfork();
#else
	pid_t pid = fork();
#endif
	if (pid == 0)
		spawn_child_run(&child);
	if (pid < 0)
		return -1;
#ifdef EXEC_HAVE_VFORK
	/* The child has executed or exited by now; if it exited, it is ours to reap. */
	if (child.exec_errno) {
		int why = child.exec_errno;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = why;
		return -1;
	}
#else
	/* Also in the parent, so kill(-pid) is right even before the child runs. */
	setpgid(pid, pid);
#endif
	return pid;
}
