/*
 * exec: the backend table, helpers shared by all backends (some also by the
 * local pool, through exec_int.h), and what a run left behind (log endings,
 * ending the process groups of earlier runs). The local process pool itself
 * is exec_local.c.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif

#include "cpipe/exec.h"
#include "exec_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#endif

/* ---- small helpers ---------------------------------------------------- */

const char *exec_status_name(enum exec_status status)
{
	switch (status) {
	case EXEC_JOB_PENDING:
		return "pending";
	case EXEC_JOB_OK:
		return "ok";
	case EXEC_JOB_FAILED:
		return "failed";
	case EXEC_JOB_INTERRUPTED:
		return "interrupted";
	case EXEC_JOB_SKIPPED:
		return "skipped";
	case EXEC_JOB_UNNEEDED:
		return "unneeded";
	}
	return "unknown";
}

void exec_job_release(struct exec_job *job)
{
	FREE_AND_NULL(job->result.log_path);
	FREE_AND_NULL(job->result.message);
	FREE_AND_NULL(job->result.quarantine);
	memset(&job->result, 0, sizeof(job->result));
	job->result.exit_code = -1;
}

double exec_now_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int exec_cpu_count(void)
{
#ifdef __linux__
	/* Honour a restricted affinity mask (taskset, containers), as nproc does. */
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
#endif
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

double exec_ram_gb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long page_size = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || page_size <= 0)
		return 1e9;
	return (double)pages * (double)page_size / (1024.0 * 1024.0 * 1024.0);
}

void exec_script_text(const char *id, const char *command, struct strbuf *out)
{
	strbuf_adds(out, "#!/bin/sh\n# cpipe job: ");
	/* A newline in the id would end the comment and turn the rest into code. */
	for (const char *p = id; *p; p++) {
		unsigned char c = (unsigned char)*p;
		strbuf_addch(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
	strbuf_addch(out, '\n');
	strbuf_adds(out, command);
	if (!*command || command[strlen(command) - 1] != '\n')
		strbuf_addch(out, '\n');
}

int exec_mkdir_p(const char *path, struct cp_err *err)
{
	/* Mostly the directory is there already (an output's, for the 2nd job of a subject on): one stat. */
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (mkdir(path, 0777) == 0)
		return 0;
	if (errno == EEXIST) {
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		cp_err_set(err, NULL, 0, "cannot create directory '%s': a file is in the way", path);
		return -1;
	}
	if (errno != ENOENT) {
		cp_err_set(err, NULL, 0, "cannot create directory '%s': %s", path, strerror(errno));
		return -1;
	}
	/* A parent is missing: make it, then try again. */
	const char *slash = strrchr(path, '/');
	while (slash && slash > path && slash[-1] == '/')
		slash--;
	if (!slash || slash == path) {
		cp_err_set(err, NULL, 0, "cannot create directory '%s': %s", path, strerror(ENOENT));
		return -1;
	}
	char *parent = xstrndup(path, (size_t)(slash - path));
	int rc = exec_mkdir_p(parent, err);
	free(parent);
	if (rc)
		return rc;
	if (mkdir(path, 0777) == 0 || (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
		return 0;
	cp_err_set(err, NULL, 0, "cannot create directory '%s': %s", path, strerror(errno));
	return -1;
}

/* Make the directory holding `path`; a path without '/' needs nothing. */
int exec_mkdir_parent(const char *path, struct cp_err *err)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	char *parent = xstrndup(path, (size_t)(slash - path));
	int rc = exec_mkdir_p(parent, err);
	free(parent);
	return rc;
}

int exec_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode, bool durable,
			   struct cp_err *err)
{
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0 && errno == ENOENT) {
		if (exec_mkdir_parent(path, err)) {
			free(tmp);
			return -1;
		}
		/* A failed mkstemp may have scribbled over the Xs. */
		free(tmp);
		tmp = xasprintf("%s.tmp.XXXXXX", path);
		fd = mkstemp(tmp);
	}
	if (fd < 0) {
		cp_err_set(err, NULL, 0, "cannot create '%s': %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	const char *what = "write";
	int failed = fchmod(fd, (mode_t)mode) || write_all(fd, data, len);
	if (!failed && durable && fsync(fd)) {
		what = "fsync";
		failed = 1;
	}
	int saved = errno;
	if (close(fd) && !failed) {
		what = "close";
		saved = errno;
		failed = 1;
	}
	if (!failed && rename(tmp, path)) {
		what = "rename";
		saved = errno;
		failed = 1;
	}
	if (failed) {
		cp_err_set(err, NULL, 0, "cannot %s '%s': %s", what, path, strerror(saved));
		unlink(tmp);
	}
	free(tmp);
	return failed ? -1 : 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* rm -rf `path`; a missing path is fine. Errors are ignored: this only tidies. */
void exec_remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool exec_path_exists_nofollow(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/*
 * The path an output takes under .cpipe/prev/<name>/ or .cpipe/failed/<name>/:
 * normalised, with ".." components and a leading '/' made harmless so the copy
 * can never land outside that directory.
 */
void exec_output_key(const char *output, struct strbuf *out)
{
	struct strbuf norm = STRBUF_INIT;
	path_normalize(output, &norm);
	const char *p = norm.buf;
	if (*p == '/') {
		strbuf_adds(out, "_root");
		p++;
	}
	while (*p) {
		const char *end = strchrnul(p, '/');
		if (out->len)
			strbuf_addch(out, '/');
		if (end - p == 2 && p[0] == '.' && p[1] == '.')
			strbuf_adds(out, "_up");
		else
			strbuf_add(out, p, (size_t)(end - p));
		p = *end ? end + 1 : end;
	}
	if (!out->len)
		strbuf_adds(out, "_dot");
	strbuf_release(&norm);
}

/* ---- backend table ---------------------------------------------------- */

const struct exec_backend exec_backend_local = {"local", exec_run_local};

static const struct exec_backend *const backends[] = {&exec_backend_local};

const struct exec_backend *exec_backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}

int exec_run(const struct exec_backend *backend, struct exec_job *jobs, size_t count,
	     const struct exec_options *opt, struct exec_progress *summary, struct cp_err *err)
{
	return backend->run(jobs, count, opt, summary, err);
}

/* ---- what a run left behind ------------------------------------------- */

enum exec_log_ending exec_log_ending(const char *log_path)
{
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? EXEC_LOG_ABSENT : EXEC_LOG_UNFINISHED;
	static const char last_line[] = "cpipe: " EXEC_LOG_SUCCESS_TEXT "\n";
	char tail[sizeof(last_line)];
	size_t want = sizeof(last_line) - 1;
	struct stat st;
	bool succeeded = fstat(fd, &st) == 0 && (size_t)st.st_size >= want &&
			 pread(fd, tail, want, st.st_size - (off_t)want) == (ssize_t)want &&
			 memcmp(tail, last_line, want) == 0;
	close(fd);
	return succeeded ? EXEC_LOG_SUCCEEDED : EXEC_LOG_UNFINISHED;
}

/* Whether /proc/PID/environ holds NAME=VALUE for one of `run_ids`. */
static bool process_has_run_id(const char *pid, const char *const *run_ids, size_t count, struct strbuf *buf)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/environ", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false; /* gone, a zombie, or another user's */
	strbuf_reset(buf);
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		strbuf_add(buf, chunk, (size_t)n);
	close(fd);
	static const char prefix[] = EXEC_RUN_ID_VARIABLE "=";
	for (size_t at = 0; at < buf->len; at += strlen(buf->buf + at) + 1) {
		const char *entry = buf->buf + at;
		if (strncmp(entry, prefix, sizeof(prefix) - 1) != 0)
			continue;
		for (size_t i = 0; i < count; i++)
			if (!strcmp(entry + sizeof(prefix) - 1, run_ids[i]))
				return true;
	}
	return false;
}

/* The process groups of every live process (zombies have no environment) carrying one of the run ids. */
static size_t find_run_groups(const char *const *run_ids, size_t count, pid_t **groups, size_t *cap)
{
	DIR *proc = opendir("/proc");
	if (!proc)
		return 0;
	struct strbuf buf = STRBUF_INIT;
	size_t found = 0;
	pid_t self = getpid(), own_group = getpgrp();
	struct dirent *entry;
	while ((entry = readdir(proc))) {
		char *end;
		long pid = strtol(entry->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self || !process_has_run_id(entry->d_name, run_ids, count, &buf))
			continue;
		pid_t group = getpgid((pid_t)pid);
		bool known = group <= 0 || group == own_group;
		for (size_t g = 0; g < found && !known; g++)
			known = (*groups)[g] == group;
		if (known)
			continue;
		ALLOC_GROW(*groups, found + 1, *cap);
		(*groups)[found++] = group;
	}
	closedir(proc);
	strbuf_release(&buf);
	return found;
}

static void signal_groups(const pid_t *groups, size_t count, int signo)
{
	for (size_t g = 0; g < count; g++)
		kill(-groups[g], signo);
}

size_t exec_end_runs(const char *const *run_ids, size_t count, double grace_s)
{
	if (!count)
		return 0;
	pid_t *groups = NULL;
	size_t cap = 0;
	size_t ended = find_run_groups(run_ids, count, &groups, &cap);
	signal_groups(groups, ended, SIGTERM);
	signal_groups(groups, ended, SIGCONT);
	double deadline = monotonic_seconds() + (grace_s > 0 ? grace_s : 2.0);
	struct timespec pause = {0, 20 * 1000 * 1000};
	size_t left = ended;
	/* Until nothing of those runs is left: a killed process's children may have taken a new group. */
	for (unsigned rounds = 0; left && rounds < 1000; rounds++) {
		nanosleep(&pause, NULL);
		left = find_run_groups(run_ids, count, &groups, &cap);
		if (left && monotonic_seconds() >= deadline)
			signal_groups(groups, left, SIGKILL);
		else if (left)
			signal_groups(groups, left, SIGTERM);
	}
	free(groups);
	return ended;
}
