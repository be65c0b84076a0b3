/*
 * exec: starting a local job's process (for exec_local.c, through
 * exec_int.h): telling a plain command from one that needs /bin/sh, finding
 * a plain command's program on PATH once per run, and spawning the process
 * with what every job of a run shares (attributes and file actions) set up
 * once.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np, dup3 */
#endif

#include "cpipe/exec.h"
#include "exec_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
 * relative entry (the job's directory is not ours to resolve against);
 * posix_spawnp then searches as usual.
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
	s->cwd = cwd;
	s->envp = envp;
	s->defaults = *defaults;
	s->devnull = exec_fd_above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
	s->log_slot = s->devnull < 0 ? -1 : fcntl(s->devnull, F_DUPFD_CLOEXEC, 3);
	if (s->devnull < 0 || s->log_slot < 0) {
		cp_err_set(err, NULL, 0, "cannot open /dev/null: %s", strerror(errno));
		exec_spawner_release(s);
		return -1;
	}
#ifdef EXEC_HAVE_SPAWN_CHDIR
	sigset_t empty;
	sigemptyset(&empty);
	int rc = posix_spawnattr_init(&s->attr);
	if (!rc) {
		rc = posix_spawn_file_actions_init(&s->actions);
		if (rc)
			posix_spawnattr_destroy(&s->attr);
	}
	s->spawn_ready = !rc;
	if (!rc)
		rc = posix_spawnattr_setflags(&s->attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
								POSIX_SPAWN_SETSIGDEF);
	if (!rc)
		rc = posix_spawnattr_setpgroup(&s->attr, 0);
	if (!rc)
		rc = posix_spawnattr_setsigmask(&s->attr, &empty);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&s->attr, &s->defaults);
	if (!rc)
		rc = posix_spawn_file_actions_addchdir_np(&s->actions, s->cwd);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&s->actions, s->devnull, 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&s->actions, s->log_slot, 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&s->actions, s->log_slot, 2);
	if (rc) {
		cp_err_set(err, NULL, 0, "cannot set up posix_spawn: %s", strerror(rc));
		exec_spawner_release(s);
		return -1;
	}
#endif
	return 0;
}

void exec_spawner_release(struct exec_spawner *s)
{
#ifdef EXEC_HAVE_SPAWN_CHDIR
	if (s->spawn_ready) {
		posix_spawn_file_actions_destroy(&s->actions);
		posix_spawnattr_destroy(&s->attr);
		s->spawn_ready = false;
	}
#endif
	if (s->log_slot >= 0)
		close(s->log_slot);
	if (s->devnull >= 0)
		close(s->devnull);
	s->log_slot = s->devnull = -1;
	strmap_release(&s->programs);
	strvec_release(&s->paths);
}

pid_t exec_spawn(struct exec_spawner *s, const char *script, const struct strvec *words, int log_fd)
{
#ifdef EXEC_HAVE_SPAWN_CHDIR
	/* The file actions take the log from a fixed slot: built once, not per job. */
#ifdef __linux__
	if (dup3(log_fd, s->log_slot, O_CLOEXEC) < 0)
		return -1;
#else
	if (dup2(log_fd, s->log_slot) < 0 || fcntl(s->log_slot, F_SETFD, FD_CLOEXEC) < 0)
		return -1;
#endif
	pid_t pid = -1;
	int rc;
	const char *program = words ? program_path(s, words->items[0]) : NULL;
	if (program) {
		/* A plain command runs without a shell in between, as make does: one exec less per job. */
		rc = posix_spawn(&pid, program, &s->actions, &s->attr, words->items, s->envp);
	} else if (words) {
		rc = posix_spawnp(&pid, words->items[0], &s->actions, &s->attr, words->items, s->envp);
	} else {
		char *const argv[] = {"sh", (char *)script, NULL};
		rc = posix_spawn(&pid, "/bin/sh", &s->actions, &s->attr, argv, s->envp);
	}
	if (rc) {
		errno = rc;
		return -1;
	}
	return pid;
#else
	(void)words;
	pid_t pid = fork();
	if (pid != 0) {
		/* Also in the parent, so kill(-pid) is right even before the child runs. */
		if (pid > 0)
			setpgid(pid, pid);
		return pid;
	}

	/* The child: only async-signal-safe calls from here to exec. */
	setpgid(0, 0);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	/* Our flag-setting handlers must not swallow a signal sent before exec. */
	for (int signo = 1; signo < NSIG; signo++)
		if (sigismember(&s->defaults, signo) == 1)
			sigaction(signo, &dfl, NULL);
	static const char failed[] = "cpipe: cannot change to the data directory or execute /bin/sh\n";
	sigset_t empty;
	sigemptyset(&empty);
	if (chdir(s->cwd) == 0 && dup2(s->devnull, 0) >= 0 && dup2(log_fd, 1) >= 0 && dup2(log_fd, 2) >= 0) {
		sigprocmask(SIG_SETMASK, &empty, NULL);
		execle("/bin/sh", "sh", script, (char *)NULL, s->envp);
	}
	if (write(log_fd, failed, sizeof(failed) - 1) < 0)
		_exit(127);
	_exit(127);
#endif
}
