/*
 * exec, cluster part: the files a submission leaves for later cpipe calls to
 * read: submission records (what was submitted, and where) and the markers
 * job scripts write on the compute node when they end.
 */
#include "exec_cluster.h"
#include "exec_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- small file helpers --------------------------------------------------- */

void exec_root_path(const char *cwd, const char *rel, struct strbuf *out)
{
	strbuf_reset(out);
	if (!cwd || !strcmp(cwd, "."))
		strbuf_adds(out, rel);
	else
		path_join(cwd, rel, out);
}

/* Read a whole file into `out`; returns 1, 0 when it does not exist, -1 with err. */
static int read_file(const char *path, struct strbuf *out, struct cp_err *err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		cp_err_set(err, NULL, 0, "cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	char buffer[8192];
	size_t n;
	while ((n = fread(buffer, 1, sizeof(buffer), f)) > 0)
		strbuf_add(out, buffer, n);
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		cp_err_set(err, NULL, 0, "cannot read '%s'", path);
		return -1;
	}
	return 1;
}

/* Record values may hold any byte but newline: backslash and newline are escaped. */
static void add_escaped(struct strbuf *out, const char *text)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			strbuf_adds(out, "\\\\");
		else if (*p == '\n')
			strbuf_adds(out, "\\n");
		else
			strbuf_addch(out, *p);
	}
}

static char *unescape(const char *text)
{
	struct strbuf out = STRBUF_INIT;
	for (const char *p = text; *p; p++) {
		if (*p == '\\' && p[1] == 'n') {
			strbuf_addch(&out, '\n');
			p++;
		} else if (*p == '\\' && p[1] == '\\') {
			strbuf_addch(&out, '\\');
			p++;
		} else {
			strbuf_addch(&out, *p);
		}
	}
	return strbuf_detach(&out);
}

static bool parse_int64(const char *text, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (end == text || *end || errno)
		return false;
	*out = (int64_t)v;
	return true;
}

/* "1700000000.123456789" (stat %.9Y) -> ns. */
static bool parse_mtime(const char *text, int64_t *out)
{
	const char *dot = strchr(text, '.');
	char *secs = dot ? xstrndup(text, (size_t)(dot - text)) : xstrdup(text);
	int64_t s = 0, ns = 0;
	bool ok = parse_int64(secs, &s);
	free(secs);
	if (ok && dot) {
		int digits = 0;
		for (const char *p = dot + 1; *p; p++, digits++) {
			if (*p < '0' || *p > '9' || digits >= 9)
				return false;
			ns = ns * 10 + (*p - '0');
		}
		for (; digits < 9; digits++)
			ns *= 10;
	}
	*out = s * 1000000000 + ns;
	return ok;
}

/* ---- submission records --------------------------------------------------- */

void exec_record_path(const char *cwd, const char *name, const char *suffix, struct strbuf *out)
{
	struct strbuf rel = STRBUF_INIT;
	strbuf_addf(&rel, "%s/%s%s", EXEC_JOBS_DIR, name, suffix);
	exec_root_path(cwd, rel.buf, out);
	strbuf_release(&rel);
}

int exec_submission_write(const char *cwd, const char *name, const struct exec_submission *sub,
			  struct cp_err *err)
{
	struct strbuf text = STRBUF_INIT, path = STRBUF_INIT;
	strbuf_addf(&text, "cpipe-submitted 1\nbackend %s\njob %s\ntask %ld\nlog ", exec_cluster_name(sub->kind),
		    sub->job, sub->task);
	add_escaped(&text, sub->log_path ? sub->log_path : "");
	strbuf_addf(&text, "\ntime %lld\n", (long long)sub->submitted_ns);
	if (sub->note) {
		strbuf_adds(&text, "note ");
		add_escaped(&text, sub->note);
		strbuf_addch(&text, '\n');
	}
	exec_record_path(cwd, name, ".submitted", &path);
	int rc = exec_write_file_atomic(path.buf, text.buf, text.len, 0644, false, err);
	strbuf_release(&text);
	strbuf_release(&path);
	return rc;
}

int exec_submission_read(const char *cwd, const char *name, struct exec_submission *out, struct cp_err *err)
{
	struct exec_submission empty = EXEC_SUBMISSION_INIT;
	*out = empty;
	struct strbuf path = STRBUF_INIT, text = STRBUF_INIT;
	exec_record_path(cwd, name, ".submitted", &path);
	int rc = read_file(path.buf, &text, err);
	if (rc <= 0)
		goto out;
	struct strvec lines = STRVEC_INIT;
	strvec_split(&lines, text.buf, '\n', false);
	bool magic = lines.count && !strcmp(lines.items[0], "cpipe-submitted 1");
	for (size_t i = 1; magic && i < lines.count; i++) {
		char *line = lines.items[i];
		char *space = strchr(line, ' ');
		if (!space)
			continue;
		*space = '\0';
		const char *value = space + 1;
		if (!strcmp(line, "backend")) {
			if (exec_cluster_choose(value, &out->kind, err) < 0 && out->kind == EXEC_CLUSTER_NONE) {
				/* The tool may be off PATH now; the record is still valid. */
				cp_err_release(err);
				out->kind = !strcmp(value, "fsl_sub") ? EXEC_CLUSTER_FSL_SUB
					    : !strcmp(value, "slurm") ? EXEC_CLUSTER_SLURM
					    : !strcmp(value, "sge")   ? EXEC_CLUSTER_SGE
								      : EXEC_CLUSTER_NONE;
			}
		} else if (!strcmp(line, "job")) {
			free(out->job);
			out->job = xstrdup(value);
		} else if (!strcmp(line, "task")) {
			out->task = strtol(value, NULL, 10);
		} else if (!strcmp(line, "log")) {
			free(out->log_path);
			out->log_path = unescape(value);
		} else if (!strcmp(line, "note")) {
			free(out->note);
			out->note = unescape(value);
		} else if (!strcmp(line, "time")) {
			parse_int64(value, &out->submitted_ns);
		}
	}
	strvec_release(&lines);
	if (!magic || !out->job || out->kind == EXEC_CLUSTER_NONE) {
		cp_err_set(err, NULL, 0, "malformed submission record '%s'", path.buf);
		exec_submission_release(out);
		rc = -1;
	}
out:
	strbuf_release(&path);
	strbuf_release(&text);
	return rc;
}

void exec_submission_release(struct exec_submission *submission)
{
	free(submission->job);
	free(submission->log_path);
	free(submission->note);
	struct exec_submission empty = EXEC_SUBMISSION_INIT;
	*submission = empty;
}

void exec_submission_remove(const char *cwd, const char *name)
{
	struct strbuf path = STRBUF_INIT;
	exec_record_path(cwd, name, ".submitted", &path);
	unlink(path.buf);
	strbuf_release(&path);
}

void exec_submission_cluster_id(const struct exec_submission *submission, struct strbuf *out)
{
	strbuf_adds(out, submission->job);
	if (submission->task <= 0)
		return;
	/* fsl_sub names no scheduler: its tasks are addressed the way the one underneath does. */
	bool sge = submission->kind == EXEC_CLUSTER_SGE ||
		   (submission->kind == EXEC_CLUSTER_FSL_SUB && !exec_on_path("squeue") && exec_on_path("qstat"));
	strbuf_addf(out, "%c%ld", sge ? '.' : '_', submission->task);
}

/* ---- markers --------------------------------------------------------------- */

int exec_marker_read(const char *cwd, const char *name, struct exec_marker *out, struct cp_err *err)
{
	memset(out, 0, sizeof(*out));
	struct strbuf path = STRBUF_INIT, text = STRBUF_INIT;
	exec_record_path(cwd, name, ".marker", &path);
	int rc = read_file(path.buf, &text, err);
	if (rc <= 0)
		goto out;
	struct strvec lines = STRVEC_INIT;
	strvec_split(&lines, text.buf, '\n', false);
	bool ok = lines.count && !strcmp(lines.items[0], "cpipe-marker 1");
	bool have_exit = false;
	size_t cap = 0;
	for (size_t i = 1; ok && i < lines.count; i++) {
		char *line = lines.items[i];
		char *space = strchr(line, ' ');
		if (!space)
			continue;
		*space = '\0';
		char *value = space + 1;
		int64_t number = 0;
		if (!strcmp(line, "exit")) {
			ok = parse_int64(value, &number) && number >= 0 && number < 100000;
			out->exit_code = (int)number;
			have_exit = true;
		} else if (!strcmp(line, "start_ns")) {
			ok = parse_int64(value, &out->start_ns);
		} else if (!strcmp(line, "end_ns")) {
			ok = parse_int64(value, &out->end_ns);
		} else if (!strcmp(line, "unneeded")) {
			out->unneeded = !strcmp(value, "1");
		} else if (!strcmp(line, "host")) {
			free(out->host);
			out->host = xstrdup(value);
		} else if (!strcmp(line, "message")) {
			free(out->message);
			out->message = *value ? xstrdup(value) : NULL;
		} else if (!strcmp(line, "output")) {
			ALLOC_GROW(out->outputs, out->output_count + 1, cap);
			struct exec_marker_output *o = &out->outputs[out->output_count++];
			memset(o, 0, sizeof(*o));
			struct strvec parts = STRVEC_INIT;
			strvec_split(&parts, value, ' ', true);
			if (parts.count == 1 && !strcmp(parts.items[0], "0"))
				o->exists = false;
			else if (parts.count == 3 && !strcmp(parts.items[0], "1"))
				o->exists = parse_int64(parts.items[1], &o->size) && parse_mtime(parts.items[2], &o->mtime_ns);
			else
				ok = false;
			if (parts.count == 3 && !o->exists)
				ok = false;
			strvec_release(&parts);
		}
	}
	strvec_release(&lines);
	if (!ok || !have_exit) {
		cp_err_set(err, NULL, 0, "malformed job marker '%s'", path.buf);
		exec_marker_release(out);
		rc = -1;
	}
out:
	strbuf_release(&path);
	strbuf_release(&text);
	return rc;
}

void exec_marker_release(struct exec_marker *marker)
{
	free(marker->message);
	free(marker->host);
	free(marker->outputs);
	memset(marker, 0, sizeof(*marker));
}
