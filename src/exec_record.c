/*
 * exec, cluster part: the files a submission leaves for later cpipe calls to
 * read: submission records (what was submitted, and where) and the markers
 * job scripts write on the compute node when they end.
 */
#include "exec_cluster.h"
#include "exec_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

/* Record values may hold any byte but newline and tab: backslash, newline and tab are escaped. */
static void add_escaped(struct strbuf *out, const char *text)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			strbuf_adds(out, "\\\\");
		else if (*p == '\n')
			strbuf_adds(out, "\\n");
		else if (*p == '\t')
			strbuf_adds(out, "\\t");
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
		} else if (*p == '\\' && p[1] == 't') {
			strbuf_addch(&out, '\t');
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

#define RECORD_SUFFIX ".submission"
#define LEGACY_SUFFIX ".submitted"

static enum exec_cluster_kind kind_named(const char *name)
{
	return !strcmp(name, "fsl_sub") ? EXEC_CLUSTER_FSL_SUB
	       : !strcmp(name, "slurm") ? EXEC_CLUSTER_SLURM
	       : !strcmp(name, "sge")   ? EXEC_CLUSTER_SGE
					: EXEC_CLUSTER_NONE;
}

/* A job's file name as job_file_name makes them: it names the job's marker, so nothing else. */
static bool file_name_ok(const char *name)
{
	if (!*name || *name == '.' || *name == '-')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-' || *p == '.'))
			return false;
	return true;
}

/* A scheduler's job id goes into its commands' arguments: one word, not an option. */
static bool job_id_ok(const char *id)
{
	if (!*id || *id == '-')
		return false;
	for (const char *p = id; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* A submission's token names a file: EXEC_TOKEN_DIGITS (16) hex digits, nothing else. */
static bool token_ok(const char *token)
{
	size_t n = 0;
	for (; token[n]; n++)
		if (!((token[n] >= '0' && token[n] <= '9') || (token[n] >= 'a' && token[n] <= 'f')))
			return false;
	return n == EXEC_TOKEN_DIGITS;
}

/* One job of a record file. */
struct record_member {
	char *name;
	long task;
	char *log_path;
	char *note;
	size_t file;
	bool forgotten; /* imported, or carried again by a later submission: left out when saved */
};

/* One record file: a submission of one or more jobs, or an old per-job record. */
struct record_file {
	char *path;
	bool legacy;
	enum exec_cluster_kind kind;
	char *job;
	int64_t submitted_ns;
	char *token; /* the submission's (see exec_cluster_job_script), NULL in older records */
	size_t first, count; /* its members */
	bool changed;
};

struct exec_records {
	char *cwd;
	struct record_file *files;
	size_t file_count, file_cap;
	struct record_member *members;
	size_t member_count, member_cap;
	struct strmap index; /* job file name -> the member that carries it now */
};

int exec_record_write(const char *cwd, const char *unit, const struct exec_record_head *head,
		      const struct exec_record_member *members, size_t count, struct cp_err *err)
{
	struct strbuf text = STRBUF_INIT, path = STRBUF_INIT;
	strbuf_addf(&text, "cpipe-submission 1\nbackend %s\njob %s\ntime %lld\n", exec_cluster_name(head->kind),
		    head->job, (long long)head->submitted_ns);
	if (head->token)
		strbuf_addf(&text, "token %s\n", head->token);
	for (size_t k = 0; k < count; k++) {
		strbuf_addf(&text, "member\t%ld\t%s\t", members[k].task, members[k].name);
		add_escaped(&text, members[k].log_path ? members[k].log_path : "");
		if (members[k].note) {
			strbuf_addch(&text, '\t');
			add_escaped(&text, members[k].note);
		}
		strbuf_addch(&text, '\n');
	}
	/* A record without its last line was cut short: it is refused rather than read in part. */
	strbuf_addf(&text, "end %zu\n", count);
	exec_record_path(cwd, unit, RECORD_SUFFIX, &path);
	int rc = exec_write_file_atomic(path.buf, text.buf, text.len, 0644, false, err);
	strbuf_release(&text);
	strbuf_release(&path);
	return rc;
}

char *exec_record_unit_name(const char *cwd, const char *base)
{
	struct strbuf path = STRBUF_INIT;
	char *name = xstrdup(base);
	/* A record still there may carry jobs in flight, whose tasks read the unit's files. */
	for (unsigned n = 2;; n++) {
		exec_record_path(cwd, name, RECORD_SUFFIX, &path);
		if (access(path.buf, F_OK) != 0)
			break;
		free(name);
		name = xasprintf("%s-%u", base, n);
	}
	strbuf_release(&path);
	return name;
}

static struct record_file *add_file(struct exec_records *records, const char *path, bool legacy)
{
	ALLOC_GROW(records->files, records->file_count + 1, records->file_cap);
	struct record_file *file = &records->files[records->file_count++];
	memset(file, 0, sizeof(*file));
	file->path = xstrdup(path);
	file->legacy = legacy;
	file->first = records->member_count;
	return file;
}

static struct record_member *add_member(struct exec_records *records)
{
	ALLOC_GROW(records->members, records->member_count + 1, records->member_cap);
	struct record_member *member = &records->members[records->member_count++];
	memset(member, 0, sizeof(*member));
	member->file = records->file_count - 1;
	return member;
}

/* Drop what a file that turned out malformed added. */
static void drop_last_file(struct exec_records *records)
{
	struct record_file *file = &records->files[--records->file_count];
	for (size_t m = file->first; m < records->member_count; m++) {
		free(records->members[m].name);
		free(records->members[m].log_path);
		free(records->members[m].note);
	}
	records->member_count = file->first;
	free(file->path);
	free(file->job);
	free(file->token);
}

/* "member TASK NAME LOG [NOTE]", tab-separated, after "member". */
static bool parse_member(struct exec_records *records, char *fields)
{
	struct strvec parts = STRVEC_INIT;
	strvec_split(&parts, fields, '\t', false);
	int64_t task = -1;
	bool ok = (parts.count == 3 || parts.count == 4) && parse_int64(parts.items[0], &task) && task >= 0 &&
		  task <= INT32_MAX && file_name_ok(parts.items[1]) && *parts.items[2];
	if (ok) {
		struct record_member *member = add_member(records);
		member->task = (long)task;
		member->name = xstrdup(parts.items[1]);
		member->log_path = unescape(parts.items[2]);
		member->note = parts.count == 4 ? unescape(parts.items[3]) : NULL;
	}
	strvec_release(&parts);
	return ok;
}

/* A record file's text (cpipe-submission 1); false with err naming the line at fault. */
static bool parse_record(struct exec_records *records, const char *path, char *text, struct cp_err *err)
{
	struct record_file *file = add_file(records, path, false);
	struct strvec lines = STRVEC_INIT;
	strvec_split(&lines, text, '\n', false);
	size_t line = 0;
	const char *why = NULL;
	bool ended = false;
	if (!lines.count || strcmp(lines.items[0], "cpipe-submission 1"))
		why = "not a submission record";
	for (line = 1; !why && line < lines.count; line++) {
		char *key = lines.items[line];
		size_t length = strcspn(key, " \t");
		if (!*key && line + 1 == lines.count)
			break; /* the newline ending the last line */
		if (ended) {
			why = "text after its end";
			break;
		}
		if (!key[length]) {
			why = "a line without a value";
			break;
		}
		char *value = key + length + 1;
		key[length] = '\0';
		if (!strcmp(key, "backend")) {
			file->kind = kind_named(value);
			why = file->kind == EXEC_CLUSTER_NONE ? "an unknown backend" : NULL;
		} else if (!strcmp(key, "job")) {
			free(file->job);
			file->job = xstrdup(value);
			why = job_id_ok(value) ? NULL : "a job id that is not one word";
		} else if (!strcmp(key, "time")) {
			why = parse_int64(value, &file->submitted_ns) ? NULL : "a time that is not a number";
		} else if (!strcmp(key, "token")) {
			free(file->token);
			file->token = xstrdup(value);
			why = token_ok(value) ? NULL : "a token that is not 16 hex digits";
		} else if (!strcmp(key, "member")) {
			why = parse_member(records, value) ? NULL : "a malformed member line";
		} else if (!strcmp(key, "end")) {
			int64_t n = -1;
			why = parse_int64(value, &n) && n == (int64_t)(records->member_count - file->first)
				      ? NULL
				      : "an end line that does not count its members";
			ended = true;
		}
		/* Other keys: written by a later version, for it alone. */
		if (why)
			break;
	}
	if (!why && !ended)
		why = "no end line (cut short?)", line = lines.count - 1;
	if (!why && (!file->job || file->kind == EXEC_CLUSTER_NONE))
		why = "no backend or job id";
	strvec_release(&lines);
	if (why) {
		cp_err_set(err, path, (int)line + 1, "malformed submission record: %s", why);
		drop_last_file(records);
		return false;
	}
	file->count = records->member_count - file->first;
	return true;
}

/* An old per-job record (cpipe-submitted 1, <name>.submitted), as that version wrote it. */
static bool parse_legacy(struct exec_records *records, const char *path, const char *name, const char *text,
			 struct cp_err *err)
{
	struct record_file *file = add_file(records, path, true);
	struct record_member *member = add_member(records);
	member->name = xstrdup(name);
	struct strvec lines = STRVEC_INIT;
	strvec_split(&lines, text, '\n', false);
	bool magic = lines.count && !strcmp(lines.items[0], "cpipe-submitted 1");
	for (size_t i = 1; magic && i < lines.count; i++) {
		char *line = lines.items[i];
		char *space = strchr(line, ' ');
		if (!space)
			continue;
		*space = '\0';
		const char *value = space + 1;
		if (!strcmp(line, "backend")) {
			file->kind = kind_named(value);
		} else if (!strcmp(line, "job")) {
			free(file->job);
			file->job = xstrdup(value);
		} else if (!strcmp(line, "task")) {
			member->task = strtol(value, NULL, 10);
		} else if (!strcmp(line, "log")) {
			free(member->log_path);
			member->log_path = unescape(value);
		} else if (!strcmp(line, "note")) {
			free(member->note);
			member->note = unescape(value);
		} else if (!strcmp(line, "time")) {
			parse_int64(value, &file->submitted_ns);
		}
	}
	strvec_release(&lines);
	if (!magic || !file->job || !job_id_ok(file->job) || file->kind == EXEC_CLUSTER_NONE) {
		cp_err_set(err, NULL, 0, "malformed submission record '%s'", path);
		drop_last_file(records);
		return false;
	}
	file->count = 1;
	return true;
}

/* Index the members of the last file read; of two records carrying one job, the later submission's wins. */
static void index_last_file(struct exec_records *records)
{
	const struct record_file *file = &records->files[records->file_count - 1];
	for (size_t m = file->first; m < file->first + file->count; m++) {
		size_t other;
		if (strmap_get(&records->index, records->members[m].name, &other)) {
			const struct record_file *was = &records->files[records->members[other].file];
			bool newer = file->submitted_ns > was->submitted_ns ||
				     (file->submitted_ns == was->submitted_ns && strcmp(file->path, was->path) > 0);
			size_t loser = newer ? other : m;
			records->members[loser].forgotten = true;
			records->files[records->members[loser].file].changed = true;
			if (!newer)
				continue;
		}
		strmap_put(&records->index, records->members[m].name, m);
	}
}

static bool has_suffix(const char *name, const char *suffix, size_t *base_length)
{
	size_t n = strlen(name), s = strlen(suffix);
	*base_length = n > s ? n - s : 0;
	return n > s && !strcmp(name + n - s, suffix);
}

int exec_records_load(const char *cwd, struct exec_records **out, struct strvec *problems, struct cp_err *err)
{
	struct exec_records *records = xcalloc(1, sizeof(*records));
	records->cwd = xstrdup(cwd ? cwd : ".");
	*out = records;
	struct strbuf dir = STRBUF_INIT, path = STRBUF_INIT, text = STRBUF_INIT;
	exec_root_path(cwd, EXEC_JOBS_DIR, &dir);
	DIR *listing = opendir(dir.buf);
	int rc = 0;
	if (!listing) {
		if (errno != ENOENT) {
			cp_err_set(err, NULL, 0, "cannot list '%s': %s", dir.buf, strerror(errno));
			rc = -1;
		}
		goto out;
	}
	struct dirent *entry;
	/* Both kinds of record, from one listing: no open() for each job that has none. */
	while ((entry = readdir(listing))) {
		size_t base;
		bool record = has_suffix(entry->d_name, RECORD_SUFFIX, &base);
		if (!record && !has_suffix(entry->d_name, LEGACY_SUFFIX, &base))
			continue;
		path_join(dir.buf, entry->d_name, &path);
		strbuf_reset(&text);
		struct cp_err read_err = CP_ERR_INIT;
		int found = read_file(path.buf, &text, &read_err);
		bool ok = found > 0;
		if (found > 0 && record) {
			ok = parse_record(records, path.buf, text.buf, &read_err);
		} else if (found > 0) {
			char *name = xstrndup(entry->d_name, base);
			ok = parse_legacy(records, path.buf, name, text.buf, &read_err);
			free(name);
		}
		if (ok)
			index_last_file(records);
		else if (found != 0)
			strvec_push_owned(problems, cp_err_format(&read_err));
		cp_err_release(&read_err);
		strbuf_reset(&path);
	}
	closedir(listing);
out:
	strbuf_release(&dir);
	strbuf_release(&path);
	strbuf_release(&text);
	return rc;
}

int exec_records_find(const struct exec_records *records, const char *name, struct exec_submission *out)
{
	struct exec_submission empty = EXEC_SUBMISSION_INIT;
	*out = empty;
	size_t m;
	if (!records || !strmap_get(&records->index, name, &m) || records->members[m].forgotten)
		return 0;
	const struct record_member *member = &records->members[m];
	const struct record_file *file = &records->files[member->file];
	out->kind = file->kind;
	out->job = xstrdup(file->job);
	out->task = member->task;
	out->log_path = member->log_path ? xstrdup(member->log_path) : NULL;
	out->note = member->note ? xstrdup(member->note) : NULL;
	out->submitted_ns = file->submitted_ns;
	return 1;
}

void exec_records_forget(struct exec_records *records, const char *name)
{
	size_t m;
	if (!records || !strmap_get(&records->index, name, &m))
		return;
	records->members[m].forgotten = true;
	records->files[records->members[m].file].changed = true;
}

static int remove_record(const char *path, struct cp_err *err)
{
	if (unlink(path) < 0 && errno != ENOENT) {
		cp_err_set(err, NULL, 0, "cannot remove '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Rewrite `file` without the jobs forgotten in it, removing it when none is
 * left. It is read again first: another cpipe (a `status` beside a `wait`)
 * may have rewritten it since it was loaded, and what that one imported must
 * not come back. Gone, unreadable or another submission's by now, it is left
 * as it is.
 */
static int save_file(const struct exec_records *records, const struct record_file *file, struct cp_err *err)
{
	if (file->legacy)
		return remove_record(file->path, err);
	struct strmap forgotten = STRMAP_INIT;
	for (size_t m = file->first; m < file->first + file->count; m++)
		if (records->members[m].forgotten)
			strmap_put(&forgotten, records->members[m].name, m);
	struct exec_records *now = xcalloc(1, sizeof(*now));
	struct strbuf text = STRBUF_INIT;
	struct cp_err read_err = CP_ERR_INIT;
	int rc = 0;
	/* Removed and written again by a new submission (a unit name is taken again once free), it is
	 * another record: the jobs forgotten here are that submission's, in flight. */
	if (read_file(file->path, &text, &read_err) > 0 && parse_record(now, file->path, text.buf, &read_err) &&
	    now->files[0].kind == file->kind && !strcmp(now->files[0].job, file->job) &&
	    now->files[0].submitted_ns == file->submitted_ns) {
		const struct record_file *disk = &now->files[0];
		struct exec_record_member *kept = xcalloc(disk->count + 1, sizeof(*kept));
		size_t left = 0, ignored;
		for (size_t m = 0; m < disk->count; m++) {
			const struct record_member *member = &now->members[m];
			if (!strmap_get(&forgotten, member->name, &ignored))
				kept[left++] = (struct exec_record_member){member->name, member->task, member->log_path,
									   member->note};
		}
		const char *slash = strrchr(file->path, '/');
		const char *base = slash ? slash + 1 : file->path;
		/* Written where it was read from: the unit's name is the file's. */
		char *unit = xstrndup(base, strlen(base) - strlen(RECORD_SUFFIX));
		struct exec_record_head head = {disk->kind, disk->job, disk->submitted_ns, disk->token};
		if (!left) {
			rc = remove_record(file->path, err);
			/* fsl_sub's task list of an array goes with it: its name is this submission's alone. */
			struct strbuf tasks = STRBUF_INIT;
			if (rc == 0 && disk->token) {
				exec_tasks_path(records->cwd, unit, disk->token, &tasks);
				rc = remove_record(tasks.buf, err);
			}
			strbuf_release(&tasks);
		} else if (left < disk->count)
			rc = exec_record_write(records->cwd, unit, &head, kept, left, err);
		free(unit);
		free(kept);
	}
	cp_err_release(&read_err);
	strbuf_release(&text);
	exec_records_free(now);
	strmap_release(&forgotten);
	return rc;
}

int exec_records_save(struct exec_records *records, struct cp_err *err)
{
	size_t changed = 0;
	for (size_t f = 0; records && f < records->file_count; f++)
		changed += records->files[f].changed;
	if (!changed)
		return 0;
	/* One saver at a time, so that each reads what the one before wrote. */
	struct strbuf path = STRBUF_INIT;
	exec_record_path(records->cwd, "", ".records-lock", &path);
	int lock = open(path.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock >= 0)
		flock(lock, LOCK_EX);
	strbuf_release(&path);
	int rc = 0;
	for (size_t f = 0; f < records->file_count && rc == 0; f++) {
		if (records->files[f].changed)
			rc = save_file(records, &records->files[f], err);
		records->files[f].changed = rc < 0;
	}
	if (lock >= 0)
		close(lock);
	return rc;
}

void exec_records_free(struct exec_records *records)
{
	if (!records)
		return;
	for (size_t m = 0; m < records->member_count; m++) {
		free(records->members[m].name);
		free(records->members[m].log_path);
		free(records->members[m].note);
	}
	for (size_t f = 0; f < records->file_count; f++) {
		free(records->files[f].path);
		free(records->files[f].job);
		free(records->files[f].token);
	}
	free(records->members);
	free(records->files);
	strmap_release(&records->index);
	free(records->cwd);
	free(records);
}

void exec_submission_release(struct exec_submission *submission)
{
	free(submission->job);
	free(submission->log_path);
	free(submission->note);
	/* One already empty is not written: a table of them (sync's, a slot per job) keeps its untouched pages. */
	if (submission->kind != EXEC_CLUSTER_NONE || submission->job || submission->task || submission->log_path ||
	    submission->note || submission->submitted_ns) {
		struct exec_submission empty = EXEC_SUBMISSION_INIT;
		*submission = empty;
	}
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
