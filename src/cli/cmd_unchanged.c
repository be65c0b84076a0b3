/*
 * Early cutoff on a cluster: a compute node never opens the state database,
 * so at submission the coordinator writes what a conditional job's last run
 * read and wrote (its recorded signatures) beside its job script, and the
 * script runs the hidden `cpipe __unchanged FILE` before the command: exit 0
 * when every file is as recorded (the job is then not run). The coordinator
 * checks again when it imports the marker (state_record_unchanged).
 *
 * The file, .cpipe/jobs/<name>.unchanged: a line "cpipe-unchanged 1", then
 * one line per recorded input and output, the path last:
 *   "f SIZE HASH PATH"  a regular file, SIZE bytes, XXH3-64 HASH (16 hex digits)
 *   "d PATH"            a directory (signed by existence)
 *   "0 PATH"            a file that did not exist (an optional output)
 */
#include "cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UNCHANGED_HEADER "cpipe-unchanged 1"

struct expectations {
	struct strbuf text;
	bool usable; /* false: a path holds a newline, or a file was recorded unhashed */
};

static int add_expectation(const struct state_file *file, void *data)
{
	struct expectations *e = data;
	const struct file_signature *sig = &file->signature;
	if (strchr(file->path, '\n')) {
		e->usable = false;
		return 1;
	}
	if (!sig->exists)
		strbuf_adds(&e->text, "0 ");
	else if (sig->hashed)
		strbuf_addf(&e->text, "f %" PRId64 " %016" PRIx64 " ", sig->size, sig->hash);
	else
		strbuf_adds(&e->text, "d ");
	strbuf_adds(&e->text, file->path);
	strbuf_addch(&e->text, '\n');
	return 0;
}

/* The running binary, for a node that sees the same file system (a cluster's shared install). */
static char *self_path(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

int cluster_skip_check(struct study *study, size_t i, struct strbuf *command, struct cp_err *err)
{
	const struct graph_job *job = &study->graph->jobs[i];
	struct expectations e = {STRBUF_INIT, true};
	strbuf_reset(command);
	strbuf_adds(&e.text, UNCHANGED_HEADER "\n");
	for (int role = 0; role < 2 && e.usable; role++)
		state_foreach_job_file(study->state, job->id, role, add_expectation, &e);
	char *self = e.usable ? self_path() : NULL;
	int rc = 0;
	if (self) {
		struct strbuf name = STRBUF_INIT, path = STRBUF_INIT;
		job_file_name(job->id, &name);
		strbuf_addf(&path, "%s/%s.unchanged", EXEC_JOBS_DIR, name.buf);
		rc = exec_write_file_atomic(path.buf, e.text.buf, e.text.len, 0644, false, err);
		if (rc == 0) {
			strbuf_add_shell_quoted(command, self);
			strbuf_adds(command, " __unchanged ");
			strbuf_add_shell_quoted(command, path.buf);
		}
		strbuf_release(&name);
		strbuf_release(&path);
	}
	free(self);
	strbuf_release(&e.text);
	return rc;
}

/* Whether `path` is now as recorded (`kind` 'f', 'd' or '0' with size and hash); false with `why` when not. */
static bool as_recorded(const char *kind, const char *path, int64_t size, uint64_t hash, struct strbuf *why)
{
	/* A regular file of another size differs without being read (as locally: file_differs). */
	struct stat st;
	bool same = false;
	if (kind[0] != 'f' || stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (int64_t)st.st_size == size) {
		struct file_signature now;
		struct cp_err err = CP_ERR_INIT;
		if (state_signature_compute(path, &now, &err) < 0) {
			strbuf_adds(why, err.message);
			cp_err_release(&err);
			return false;
		}
		same = kind[0] == '0'   ? !now.exists
		       : kind[0] == 'd' ? now.exists && !now.hashed
					: now.exists && now.hashed && now.size == size && now.hash == hash;
	}
	if (!same)
		strbuf_addf(why, "%s differs from what the job's last run saw", path);
	return same;
}

int cmd_unchanged(int argc, char **argv)
{
	if (argc != 2) {
		fputs("usage: cpipe __unchanged FILE (written by cpipe run --submit)\n", stderr);
		return EXIT_USAGE;
	}
	struct strbuf text = STRBUF_INIT, why = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	if (read_whole_file(argv[1], &text, &err) < 0) {
		cli_report(&err);
		return EXIT_USAGE;
	}
	struct strvec lines = STRVEC_INIT;
	strvec_split(&lines, text.buf, '\n', false);
	bool ok = lines.count && !strcmp(lines.items[0], UNCHANGED_HEADER);
	size_t files = 0;
	bool same = ok;
	for (size_t l = 1; ok && same && l < lines.count; l++) {
		const char *line = lines.items[l];
		int64_t size = 0;
		uint64_t hash = 0;
		int skip = 2;
		if (!*line)
			continue; /* after the last newline */
		if (line[0] == 'f') {
			/* The path starts after exactly one blank: it may itself start with one. */
			ok = sscanf(line, "f %" SCNd64 " %" SCNx64 "%n", &size, &hash, &skip) == 2 && line[skip] == ' ';
			skip++;
		} else
			ok = (line[0] == '0' || line[0] == 'd') && line[1] == ' ';
		ok = ok && line[skip];
		files++;
		if (ok)
			same = as_recorded(line, line + skip, size, hash, &why);
	}
	ok = ok && files; /* a job has at least one output: an empty list is no record */
	int rc = !ok ? EXIT_USAGE : same ? EXIT_OK : EXIT_JOB_FAILED;
	if (!ok)
		fprintf(stderr, "cpipe: %s: not a list of recorded files; the job runs\n", argv[1]);
	else if (!same)
		fprintf(stderr, "cpipe: %s: the job runs\n", why.buf);
	else
		fputs("cpipe: every input and output is as the job's last run left it: not run (early cutoff)\n", stderr);
	strvec_release(&lines);
	strbuf_release(&text);
	strbuf_release(&why);
	return rc;
}
