/*
 * The state's snapshot: what a load read from the database, kept in
 * `<db>.snapshot` so that the next open reads one file instead of every row
 * through SQLite (most of a no-op's state open at scale). Part of the state
 * module (state_int.h lists its files).
 *
 * Staleness: the schema's triggers (migration 3, state_schema.c) give the
 * `generation` table a new random token on every insert, update or delete of
 * a `files` or `jobs` row, whoever writes (any cpipe, the sqlite3 shell). A
 * snapshot carries the token read in the same read transaction as the rows
 * it was made from, and is used only when the database's token, read in the
 * open's read transaction, is the same. Anything else (another token, a
 * damaged or truncated file, another build's layout) falls back to the rows.
 *
 * The file is a cache, in this build's byte order and sizes, written to a
 * temporary name and renamed, followed by an XXH3 of all of it:
 *
 *   header  magic "CPSTATE2", layout:u64, token[16], file_count, job_count,
 *           job_file_count (u64)
 *   file    path, size:i64, mtime_ns:i64, hash:u64, db_id:u32, hashed:u8
 *   job     name, flags:u8, definition_hash, input_set_hash (u64),
 *           files_at:u64, input_count:u32, output_count:u32,
 *           [attempt: attempt_flags:u8 exit_code:i32 start_ns:i64 end_ns:i64
 *                     [origin: pid:i64 host run_id [log_path]]]
 *           [claim: run host log pid:i64 pid_start:i64]
 *   job_files  job_file_count struct job_file, as in memory
 *   checksum:u64
 *
 * A string is len:u32 (0: NULL, else length + 1) then its bytes and NUL.
 * The job flags are JOB_SNAP_* below, an attempt's ATTEMPT_SNAP_*: an
 * origin is written once for the jobs that share it (they follow each other)
 * and a default log path not at all, as in memory (state_int.h, struct
 * attempt_origin).
 */
#include "state_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char snapshot_magic[8] = {'C', 'P', 'S', 'T', 'A', 'T', 'E', '2'};

/* The in-memory layout the job_files section and the numbers are in. */
#define SNAPSHOT_LAYOUT \
	((uint64_t)sizeof(struct job_file) | (uint64_t)sizeof(void *) << 8 | (uint64_t)sizeof(long) << 16 | \
	 (uint64_t)(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) << 24)

enum {
	JOB_SNAP_PRESENT = 1,
	JOB_SNAP_RECORDED = 2,
	JOB_SNAP_ADOPTED = 4,
	JOB_SNAP_ATTEMPT = 8,       /* an attempt block follows */
	JOB_SNAP_SAME_ATTEMPT = 16, /* the previous job's attempt block (shared in memory) */
	JOB_SNAP_CLAIM = 32,
	JOB_SNAP_OUTCOME_SHIFT = 6, /* two bits of enum job_outcome */
};

enum {
	ATTEMPT_SNAP_ORIGIN = 1,      /* an origin follows */
	ATTEMPT_SNAP_SAME_ORIGIN = 2, /* the last origin written */
	ATTEMPT_SNAP_LOG = 4,         /* the origin has a log path of its own (else none, or the default one) */
	ATTEMPT_SNAP_DEFAULT_LOG = 8,
};

static char *snapshot_path(const struct state *state)
{
	return xasprintf("%s.snapshot", state->db_path);
}

/* ---- Writing ------------------------------------------------------------- */

/* Fields gather in `buf`; the checksum and the file take them a buffer at a time (a call per field costs). */
enum { SNAPSHOT_BUFFER = 256 * 1024 };

struct snapshot_writer {
	int fd;
	XXH3_state_t *sum;
	unsigned char *buf;
	size_t len;
	bool failed;
};

static void sum_and_write(struct snapshot_writer *w, const void *data, size_t size)
{
	XXH3_64bits_update(w->sum, data, size);
	w->failed = w->failed || write_all(w->fd, data, size) < 0;
}

static void flush(struct snapshot_writer *w)
{
	if (!w->failed)
		sum_and_write(w, w->buf, w->len);
	w->len = 0;
}

static void put(struct snapshot_writer *w, const void *data, size_t size)
{
	if (w->failed || size == 0)
		return;
	if (w->len + size > SNAPSHOT_BUFFER)
		flush(w);
	if (size > SNAPSHOT_BUFFER) {
		sum_and_write(w, data, size);
		return;
	}
	memcpy(w->buf + w->len, data, size);
	w->len += size;
}

static void put_u64(struct snapshot_writer *w, uint64_t value)
{
	put(w, &value, sizeof(value));
}

static void put_u32(struct snapshot_writer *w, uint32_t value)
{
	put(w, &value, sizeof(value));
}

static void put_u8(struct snapshot_writer *w, unsigned value)
{
	unsigned char byte = (unsigned char)value;
	put(w, &byte, 1);
}

static void put_text(struct snapshot_writer *w, const char *text)
{
	size_t len = text ? strlen(text) : 0;
	if (text && len >= UINT32_MAX) {
		w->failed = true;
		return;
	}
	put_u32(w, text ? (uint32_t)len + 1 : 0);
	if (text)
		put(w, text, len + 1); /* with its NUL: the reader hands it on without a copy */
}

/* The attempt block; `*last_origin` is the last origin written, which the next attempt's may repeat. */
static void put_attempt(struct snapshot_writer *w, const struct job_attempt *a,
			const struct attempt_origin **last_origin)
{
	const struct attempt_origin *o = a->origin;
	unsigned flags = 0;
	if (o)
		flags = (o == *last_origin ? ATTEMPT_SNAP_SAME_ORIGIN : ATTEMPT_SNAP_ORIGIN) |
			(o->log_path ? ATTEMPT_SNAP_LOG : 0) | (o->default_log ? ATTEMPT_SNAP_DEFAULT_LOG : 0);
	put_u8(w, flags);
	put_u32(w, (uint32_t)a->exit_code);
	put_u64(w, (uint64_t)a->start_ns);
	put_u64(w, (uint64_t)a->end_ns);
	if (flags & ATTEMPT_SNAP_ORIGIN) {
		put_u64(w, (uint64_t)o->pid);
		put_text(w, o->host);
		put_text(w, o->run_id);
		if (o->log_path)
			put_text(w, o->log_path);
		*last_origin = o;
	}
}

static void put_job(struct snapshot_writer *w, const struct state *state, const struct job_entry *job,
		    const struct job_attempt *previous, const struct attempt_origin **last_origin)
{
	put_text(w, job->job_id);
	unsigned flags = (job->present ? JOB_SNAP_PRESENT : 0) | (job->recorded ? JOB_SNAP_RECORDED : 0) |
			 (job->adopted ? JOB_SNAP_ADOPTED : 0) | (job->claim ? JOB_SNAP_CLAIM : 0) |
			 (unsigned)job->outcome << JOB_SNAP_OUTCOME_SHIFT;
	if (job->attempt)
		flags |= job->attempt == previous ? JOB_SNAP_SAME_ATTEMPT : JOB_SNAP_ATTEMPT;
	put_u8(w, flags);
	put_u64(w, job->definition_hash);
	put_u64(w, job->input_set_hash);
	put_u64(w, job->files ? (uint64_t)(job->files - state->loaded_job_files) : 0);
	put_u32(w, job->input_count);
	put_u32(w, job->output_count);
	if (flags & JOB_SNAP_ATTEMPT)
		put_attempt(w, job->attempt, last_origin);
	if (job->claim) {
		const struct job_claim *c = job->claim;
		put_text(w, c->run);
		put_text(w, c->host);
		put_text(w, c->log);
		put_u64(w, (uint64_t)c->pid);
		put_u64(w, (uint64_t)c->pid_start);
	}
}

/*
 * Keep what the load just read, under `token`. A cache: any failure leaves no
 * file behind (a later open reads the rows) and is not reported.
 */
void snapshot_write(const struct state *state, const unsigned char token[SNAPSHOT_TOKEN_BYTES],
		    size_t job_file_count)
{
	char *path = snapshot_path(state);
	char *temp = xasprintf("%s.new-%lld", path, (long long)getpid());
	struct snapshot_writer w = {.fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666),
				    .sum = XXH3_createState(), .buf = xmalloc(SNAPSHOT_BUFFER)};
	if (w.fd < 0 || !w.sum) {
		w.failed = true;
		goto out;
	}
	XXH3_64bits_reset(w.sum);
	put(&w, snapshot_magic, sizeof(snapshot_magic));
	put_u64(&w, SNAPSHOT_LAYOUT);
	put(&w, token, SNAPSHOT_TOKEN_BYTES);
	put_u64(&w, state->file_count);
	put_u64(&w, state->job_count);
	put_u64(&w, job_file_count);
	for (size_t i = 0; i < state->file_count; i++) {
		const struct file_entry *file = &state->files[i];
		put_text(&w, file->path);
		put_u64(&w, (uint64_t)file->size);
		put_u64(&w, (uint64_t)file->mtime_ns);
		put_u64(&w, file->hash);
		put_u32(&w, file->db_id);
		put_u8(&w, file->hashed);
	}
	const struct job_attempt *previous = NULL;
	const struct attempt_origin *last_origin = NULL;
	for (size_t i = 0; i < state->job_count; i++) {
		put_job(&w, state, &state->jobs[i], previous, &last_origin);
		previous = state->jobs[i].attempt;
	}
	put(&w, state->loaded_job_files, job_file_count * sizeof(struct job_file));
	flush(&w);
	uint64_t checksum = XXH3_64bits_digest(w.sum);
	put(&w, &checksum, sizeof(checksum));
	flush(&w);
out:
	if (w.fd >= 0 && close(w.fd) != 0)
		w.failed = true;
	if (w.failed || rename(temp, path) != 0)
		unlink(temp);
	free(w.buf);
	XXH3_freeState(w.sum);
	free(temp);
	free(path);
}

/* ---- Reading ------------------------------------------------------------- */

/*
 * A buffered read of the file: get() hands out `size` contiguous bytes. The
 * checksum takes what was handed out in large pieces, as the writer's.
 */
struct snapshot_reader {
	int fd;
	unsigned char *buf;
	size_t at, len;
	size_t summed; /* buf[0, summed) is in the checksum */
	XXH3_state_t *sum;
	bool failed;
};

static void sum_handed_out(struct snapshot_reader *r)
{
	XXH3_64bits_update(r->sum, r->buf + r->summed, r->at - r->summed);
	r->summed = r->at;
}

static bool fill(struct snapshot_reader *r, size_t size)
{
	if (size > SNAPSHOT_BUFFER) {
		r->failed = true;
		return false;
	}
	sum_handed_out(r);
	memmove(r->buf, r->buf + r->at, r->len - r->at);
	r->len -= r->at;
	r->at = r->summed = 0;
	while (r->len < size) {
		ssize_t n = read(r->fd, r->buf + r->len, SNAPSHOT_BUFFER - r->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r->failed = true;
			return false;
		}
		r->len += (size_t)n;
	}
	return true;
}

static inline const unsigned char *get(struct snapshot_reader *r, size_t size)
{
	if (r->failed || (r->len - r->at < size && !fill(r, size)))
		return NULL;
	const unsigned char *p = r->buf + r->at;
	r->at += size;
	return p;
}

/* Bulk bytes straight into `dest` (the job_files array: no copy through the buffer). */
static bool get_into(struct snapshot_reader *r, void *dest, size_t size)
{
	size_t buffered = r->len - r->at < size ? r->len - r->at : size;
	memcpy(dest, r->buf + r->at, buffered);
	r->at += buffered;
	sum_handed_out(r);
	for (size_t done = buffered; done < size && !r->failed;) {
		ssize_t n = read(r->fd, (char *)dest + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r->failed = true;
		else
			done += (size_t)n;
	}
	if (!r->failed)
		XXH3_64bits_update(r->sum, (char *)dest + buffered, size - buffered);
	return !r->failed;
}

/* A number of `size` bytes into `out` (0 once the read failed). */
static void get_number(struct snapshot_reader *r, void *out, size_t size)
{
	const unsigned char *p = get(r, size);
	if (p)
		memcpy(out, p, size);
	else
		memset(out, 0, size);
}

static uint64_t get_u64(struct snapshot_reader *r)
{
	uint64_t value;
	get_number(r, &value, sizeof(value));
	return value;
}

static uint32_t get_u32(struct snapshot_reader *r)
{
	uint32_t value;
	get_number(r, &value, sizeof(value));
	return value;
}

static unsigned get_u8(struct snapshot_reader *r)
{
	const unsigned char *p = get(r, 1);
	return p ? *p : 0;
}

/* A string in the buffer (NULL: a NULL one), valid until the next get(); a damaged one fails the read. */
static const char *get_text_here(struct snapshot_reader *r)
{
	uint32_t n = get_u32(r);
	if (n == 0)
		return NULL;
	const char *p = (const char *)get(r, n);
	if (p && strlen(p) != n - 1)
		p = NULL; /* no NUL at its end, or one before it */
	r->failed |= !p;
	return p;
}

/* A string, pooled (NULL stays NULL; `recent` as in pool_text shares a repeated one). */
static const char *get_text(struct snapshot_reader *r, struct state *state, const char **recent)
{
	const char *text = get_text_here(r);
	return text ? pool_text(state, text, recent) : NULL;
}

/* The attempt block put_attempt wrote; `*last_origin` as there. */
static const struct job_attempt *read_attempt(struct snapshot_reader *r, struct state *state,
					      const struct attempt_origin **last_origin)
{
	unsigned flags = get_u8(r);
	bool origin = flags & ATTEMPT_SNAP_ORIGIN, same = flags & ATTEMPT_SNAP_SAME_ORIGIN;
	bool log = flags & ATTEMPT_SNAP_LOG, default_log = flags & ATTEMPT_SNAP_DEFAULT_LOG;
	/* A damaged byte must not name an origin never read, nor give a job two logs. */
	if ((origin && same) || (same && !*last_origin) || (log && default_log))
		return NULL;
	struct job_attempt *a = arena_alloc(&state->attempts, sizeof(*a));
	a->exit_code = (int32_t)get_u32(r);
	a->start_ns = (int64_t)get_u64(r);
	a->end_ns = (int64_t)get_u64(r);
	a->origin = same ? *last_origin : NULL;
	if (origin) {
		struct attempt_origin facts = {.pid = (int64_t)get_u64(r), .default_log = default_log};
		facts.host = get_text(r, state, &state->recent_host);
		facts.run_id = get_text(r, state, &state->recent_run);
		facts.log_path = log ? get_text(r, state, NULL) : NULL;
		if (log && !facts.log_path)
			return NULL;
		a->origin = *last_origin = attempt_origin_from(state, &facts);
	}
	return a;
}

static bool read_job(struct snapshot_reader *r, struct state *state, struct job_entry *job,
		     const struct job_attempt *previous, const struct attempt_origin **last_origin,
		     size_t job_file_count, uint64_t *files_at)
{
	unsigned flags = get_u8(r);
	job->present = flags & JOB_SNAP_PRESENT;
	job->recorded = flags & JOB_SNAP_RECORDED;
	job->adopted = flags & JOB_SNAP_ADOPTED;
	job->outcome = (flags >> JOB_SNAP_OUTCOME_SHIFT) & 3;
	job->definition_hash = get_u64(r);
	job->input_set_hash = get_u64(r);
	*files_at = get_u64(r);
	uint32_t inputs = get_u32(r), outputs = get_u32(r);
	if (outputs > JOB_OUTPUTS_LIMIT || *files_at > job_file_count ||
	    (uint64_t)inputs + outputs > job_file_count - *files_at)
		return false;
	job->input_count = inputs;
	job->output_count = outputs;
	if (flags & JOB_SNAP_SAME_ATTEMPT) {
		if (!previous || flags & JOB_SNAP_ATTEMPT)
			return false;
		job->attempt = previous;
	} else if (flags & JOB_SNAP_ATTEMPT) {
		job->attempt = read_attempt(r, state, last_origin);
		if (!job->attempt)
			return false;
	}
	if (flags & JOB_SNAP_CLAIM) {
		struct job_claim *c = arena_alloc(&state->pool, sizeof(*c));
		c->run = get_text(r, state, &state->recent_run);
		c->host = get_text(r, state, &state->recent_host);
		c->log = get_text(r, state, NULL);
		c->pid = (int64_t)get_u64(r);
		c->pid_start = (int64_t)get_u64(r);
		if (!c->run)
			return false;
		job->claim = c;
	}
	return !r->failed;
}

static bool read_records(struct snapshot_reader *r, struct state *state, off_t file_size)
{
	uint64_t file_count = get_u64(r), job_count = get_u64(r), job_file_count = get_u64(r);
	/* Every record takes bytes of the file: a damaged count must not size an allocation. */
	uint64_t most = (uint64_t)file_size;
	if (r->failed || file_count > most / 8 || job_count > most / 8 ||
	    job_file_count > most / sizeof(struct job_file) || file_count >= FILE_INDEX_LIMIT ||
	    job_count > UINT32_MAX - 1)
		return false;
	state->files = xrealloc(state->files, (file_count ? file_count : 1) * sizeof(*state->files));
	state->file_cap = file_count;
	index_reserve(&state->file_index, file_count);
	struct index_batch batch = {.index = &state->file_index};
	for (uint64_t i = 0; i < file_count && !r->failed; i++) {
		const char *path = get_text_here(r);
		if (!path)
			return false;
		size_t index = file_add(state, path, name_hash(path), &batch);
		struct file_entry *file = &state->files[index];
		file->size = (int64_t)get_u64(r);
		file->mtime_ns = (int64_t)get_u64(r);
		file->hash = get_u64(r);
		file->db_id = get_u32(r);
		file->hashed = get_u8(r) != 0;
	}
	index_batch_flush(&batch);

	state->jobs = xrealloc(state->jobs, (job_count ? job_count : 1) * sizeof(*state->jobs));
	state->job_cap = job_count;
	index_reserve(&state->job_index, job_count);
	batch = (struct index_batch){.index = &state->job_index};
	const struct job_attempt *previous = NULL;
	const struct attempt_origin *last_origin = NULL;
	for (uint64_t i = 0; i < job_count && !r->failed; i++) {
		const char *name = get_text_here(r);
		if (!name)
			return false;
		size_t index = job_add(state, name, name_hash(name), &batch);
		struct job_entry *job = &state->jobs[index];
		uint64_t files_at;
		if (!read_job(r, state, job, previous, &last_origin, job_file_count, &files_at))
			return false;
		job->files = (struct job_file *)(uintptr_t)files_at; /* an offset until the array is read */
		previous = job->attempt;
	}
	index_batch_flush(&batch);
	if (r->failed)
		return false;
	struct job_file *all = xmalloc((job_file_count ? job_file_count : 1) * sizeof(*all));
	state->loaded_job_files = all;
	if (!get_into(r, all, job_file_count * sizeof(*all)))
		return false;
	for (size_t i = 0; i < state->job_count; i++) {
		struct job_entry *job = &state->jobs[i];
		job->files = job->input_count + job->output_count ? all + (size_t)(uintptr_t)job->files : NULL;
		for (size_t k = 0; k < job->input_count + job->output_count; k++)
			if (job->files[k].file >= state->file_count)
				return false;
	}
	return true;
}

int snapshot_load(struct state *state, const unsigned char token[SNAPSHOT_TOKEN_BYTES])
{
	char *path = snapshot_path(state);
	struct snapshot_reader r = {.fd = open(path, O_RDONLY | O_CLOEXEC)};
	free(path);
	if (r.fd < 0)
		return 0;
	bool loaded = false;
	struct stat st;
	r.buf = xmalloc(SNAPSHOT_BUFFER);
	r.sum = XXH3_createState();
	if (!r.sum || fstat(r.fd, &st) != 0)
		goto out;
	XXH3_64bits_reset(r.sum);
	const unsigned char *head = get(&r, sizeof(snapshot_magic) + 8 + SNAPSHOT_TOKEN_BYTES);
	if (!head || memcmp(head, snapshot_magic, sizeof(snapshot_magic)) != 0)
		goto out;
	uint64_t layout;
	memcpy(&layout, head + sizeof(snapshot_magic), sizeof(layout));
	if (layout != SNAPSHOT_LAYOUT || memcmp(head + sizeof(snapshot_magic) + 8, token, SNAPSHOT_TOKEN_BYTES) != 0)
		goto out;
	if (!read_records(&r, state, st.st_size))
		goto out;
	sum_handed_out(&r);
	uint64_t expected = XXH3_64bits_digest(r.sum), checksum;
	const unsigned char *tail = get(&r, sizeof(checksum));
	if (!tail)
		goto out;
	memcpy(&checksum, tail, sizeof(checksum));
	/* Nothing may follow the checksum. */
	loaded = checksum == expected && r.at == r.len && read(r.fd, r.buf, 1) == 0;
out:
	close(r.fd);
	free(r.buf);
	XXH3_freeState(r.sum);
	if (!loaded)
		records_release(state);
	return loaded;
}
