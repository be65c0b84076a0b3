/*
 * File signatures: stat and XXH3 hashing, the hash cache of each path (its
 * `files` row), and the per-handle stat snapshot that reason checks read,
 * filled on all CPUs by state_stat_paths. Part of the state module
 * (state_int.h lists its files).
 */
#include "state_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- Hashing ---------------------------------------------------------- */

uint64_t state_definition_hash(const char *definition_text)
{
	return XXH3_64bits(definition_text, strlen(definition_text));
}

static int compare_string_pointers(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

uint64_t state_input_set_hash(const char *const *paths, size_t count)
{
	const char **sorted = xmalloc((count ? count : 1) * sizeof(*sorted));
	memcpy(sorted, paths, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), compare_string_pointers);
	XXH3_state_t *xs = XXH3_createState();
	if (!xs)
		BUG("XXH3_createState failed");
	XXH3_64bits_reset(xs);
	for (size_t i = 0; i < count; i++) {
		if (i > 0 && !strcmp(sorted[i], sorted[i - 1]))
			continue;
		/* The NUL separates paths so that {"ab"} and {"a", "b"} differ. */
		XXH3_64bits_update(xs, sorted[i], strlen(sorted[i]) + 1);
	}
	uint64_t hash = XXH3_64bits_digest(xs);
	XXH3_freeState(xs);
	free(sorted);
	return hash;
}

static void signature_from_stat(const struct stat *st, struct file_signature *out)
{
	memset(out, 0, sizeof(*out));
	out->exists = true;
	/* A directory is signed by existence only: its size and mtime follow its entries. */
	if (S_ISDIR(st->st_mode))
		return;
	out->size = (int64_t)st->st_size;
	out->mtime_ns = timespec_ns(&st->st_mtim);
}

/*
 * stat() into a signature without hash; a missing path is exists = false.
 * Returns 0 or the errno of another failure. Safe in any thread.
 */
static int stat_path(const char *path, struct file_signature *out)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		int error = errno;
		memset(out, 0, sizeof(*out));
		return error == ENOENT || error == ENOTDIR ? 0 : error;
	}
	signature_from_stat(&st, out);
	return 0;
}

static int stat_failed(const char *path, int error, struct cp_err *err)
{
	cp_err_set(err, NULL, 0, "cannot stat %s: %s", path, strerror(error));
	return STATE_ERROR;
}

static int stat_signature(const char *path, struct file_signature *out, struct cp_err *err)
{
	int error = stat_path(path, out);
	return error ? stat_failed(path, error, err) : 0;
}

/*
 * Hash a regular file's content; `out` gets the size and mtime seen by fstat
 * on the open file, so the hash and the signature describe the same file.
 */
static int hash_file(const char *path, struct file_signature *out, uint64_t *bytes, struct cp_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			memset(out, 0, sizeof(*out));
			return 0;
		}
		cp_err_set(err, NULL, 0, "cannot open %s: %s", path, strerror(errno));
		return STATE_ERROR;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		cp_err_set(err, NULL, 0, "cannot stat %s: %s", path, strerror(errno));
		close(fd);
		return STATE_ERROR;
	}
	signature_from_stat(&st, out);
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	/*
	 * Reads of up to 1 MiB, but no larger a buffer than the file needs: one of
	 * 1 MiB is a mapping of its own, made and unmade for every small input a
	 * chain's first step signs before it starts.
	 */
	enum { CHUNK = 1 << 20, SMALLEST = 4096 };
	size_t size = st.st_size < CHUNK - SMALLEST ? (size_t)st.st_size + SMALLEST : CHUNK;
	char *buf = xmalloc(size);
	XXH3_state_t *xs = XXH3_createState();
	if (!xs)
		BUG("XXH3_createState failed");
	XXH3_64bits_reset(xs);
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			cp_err_set(err, NULL, 0, "cannot read %s: %s", path, strerror(errno));
			rc = STATE_ERROR;
			break;
		}
		if (n == 0)
			break;
		XXH3_64bits_update(xs, buf, (size_t)n);
		*bytes += (uint64_t)n;
	}
	out->hash = XXH3_64bits_digest(xs);
	out->hashed = rc == 0;
	XXH3_freeState(xs);
	free(buf);
	close(fd);
	return rc;
}

int state_signature_compute(const char *path, struct file_signature *out, struct cp_err *err)
{
	uint64_t bytes = 0;
	return hash_file(path, out, &bytes, err);
}

/* ---- Files in memory ------------------------------------------------------- */

/* Add a path known not to be indexed yet; with a `batch`, to the index through it. */
size_t file_add(struct state *state, const char *path, uint64_t hash, struct index_batch *batch)
{
	if (state->file_count >= FILE_INDEX_LIMIT)
		BUG("more than %zu paths in the state", FILE_INDEX_LIMIT);
	ALLOC_GROW(state->files, state->file_count + 1, state->file_cap);
	struct file_entry *file = &state->files[state->file_count];
	memset(file, 0, sizeof(*file));
	file->path = pool_add(&state->pool, path);
	if (batch)
		index_batch_add(batch, state->file_count, hash);
	else
		index_add(&state->file_index, state->file_count, hash);
	return state->file_count++;
}

size_t file_intern(struct state *state, const char *path)
{
	uint64_t hash = name_hash(path);
	size_t index = index_find(state, &state->file_index, INDEX_FILES, path, hash);
	return index != SIZE_MAX ? index : file_add(state, path, hash, NULL);
}

static void file_mark_dirty(struct state *state, size_t index)
{
	struct file_entry *file = &state->files[index];
	if (file->dirty)
		return;
	file->dirty = true;
	ALLOC_GROW(state->dirty_files, state->dirty_count + 1, state->dirty_cap);
	state->dirty_files[state->dirty_count++] = index;
}

/*
 * Remember a stat of the file (its hash, if any, is not used): the cached hash
 * stays when size and mtime are the cache's. Touches only this entry, so the
 * stat threads may call it, each on its own files.
 */
static void file_take_stat(struct file_entry *file, const struct file_signature *sig)
{
	file->seen = true;
	file->exists = sig->exists;
	if (file->hashed && sig->exists && file->size == sig->size && file->mtime_ns == sig->mtime_ns)
		return;
	file->size = sig->size;
	file->mtime_ns = sig->mtime_ns;
	file->hash = 0;
	file->hashed = false;
}

/* Remember a signature; a hashed one goes into the hash cache (written at the next commit). */
void file_learn(struct state *state, size_t index, const struct file_signature *sig)
{
	struct file_entry *file = &state->files[index];
	if (!sig->exists || !sig->hashed) {
		file_take_stat(file, sig);
		return;
	}
	bool cached = file->hashed && file->size == sig->size && file->mtime_ns == sig->mtime_ns &&
		      file->hash == sig->hash;
	file->seen = file->exists = file->hashed = true;
	file->size = sig->size;
	file->mtime_ns = sig->mtime_ns;
	file->hash = sig->hash;
	if (!cached)
		file_mark_dirty(state, index);
}

/* The file's remembered signature (stat once per handle), hash filled only when known. */
int file_seen(struct state *state, size_t index, struct file_signature *out, struct cp_err *err)
{
	struct file_entry *file = &state->files[index];
	if (!file->seen) {
		struct file_signature sig;
		state->stats.stat_calls++;
		if (stat_signature(file->path, &sig, err) < 0)
			return STATE_ERROR;
		file_take_stat(file, &sig);
	}
	*out = file_signature_of(file);
	return 0;
}

/*
 * Fill the hash of the remembered signature: from the cache when size+mtime
 * match, else by reading the file (which also refreshes size+mtime).
 */
int file_hash_seen(struct state *state, size_t index, struct cp_err *err)
{
	struct file_entry *file = &state->files[index];
	assert(file->seen);
	/* A directory never has a cached hash: hash_file finds out and signs it by existence. */
	if (!file->exists || file->hashed)
		return 0;
	struct file_signature sig;
	uint64_t bytes = 0;
	if (hash_file(file->path, &sig, &bytes, err) < 0)
		return STATE_ERROR;
	if (sig.hashed) {
		state->stats.hashes_computed++;
		state->stats.bytes_hashed += bytes;
	}
	file_learn(state, index, &sig);
	return 0;
}

int state_file_signature(struct state *state, const char *path, struct file_signature *out, struct cp_err *err)
{
	size_t index = file_intern(state, path);
	state->files[index].seen = false;
	if (file_seen(state, index, out, err) < 0 || file_hash_seen(state, index, err) < 0)
		return STATE_ERROR;
	*out = file_signature_of(&state->files[index]);
	return 0;
}

void state_refresh(struct state *state)
{
	for (size_t i = 0; i < state->file_count; i++)
		state->files[i].seen = false;
}

/* state_stat_paths: a thread is worth starting for this many stat calls (about 1 µs each when cached). */
enum { STAT_PATHS_PER_THREAD = 256, STAT_AUTO_THREADS_MAX = 8, STAT_THREADS_MAX = 64, STAT_CHUNK = 64 };

/*
 * The stat calls of one state_stat_paths, shared by its threads: each takes
 * the next STAT_CHUNK queued files until none are left and writes the result
 * into the file's own entry (each entry is written by one thread only; the
 * array is not resized while they run). No per-path copies: at a million
 * subjects they would cost hundreds of megabytes.
 */
struct stat_batch {
	struct file_entry *files;
	const uint32_t *queued;
	size_t count;
	atomic_size_t next;
	atomic_bool failed; /* some stat failed for another reason than a missing path */
};

/* The next `chunk` of `count` items shared by threads through `next` into [*from, *to); false when none are left. */
bool work_take(atomic_size_t *next, size_t count, size_t chunk, size_t *from, size_t *to)
{
	*from = atomic_fetch_add(next, chunk);
	if (*from >= count)
		return false;
	*to = count - *from < chunk ? count : *from + chunk;
	return true;
}

static void *stat_batch_run(void *arg)
{
	struct stat_batch *batch = arg;
	size_t from, to;
	while (work_take(&batch->next, batch->count, STAT_CHUNK, &from, &to)) {
		for (size_t i = from; i < to; i++) {
			struct file_entry *file = &batch->files[batch->queued[i]];
			struct file_signature sig;
			if (stat_path(file->path, &sig) == 0) {
				file_take_stat(file, &sig);
			} else {
				file->seen = false;
				atomic_store(&batch->failed, true);
			}
		}
	}
	return NULL;
}

/* How many threads (the caller's included) to use for `work` items, each thread taking at least `per_thread`. */
size_t work_thread_count(unsigned wanted, size_t work, size_t per_thread)
{
	size_t threads = wanted;
	if (threads == 0) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		threads = online < 1 ? 1 : online > STAT_AUTO_THREADS_MAX ? STAT_AUTO_THREADS_MAX : (size_t)online;
	}
	if (threads > STAT_THREADS_MAX)
		threads = STAT_THREADS_MAX;
	size_t useful = work / per_thread;
	if (threads > useful)
		threads = useful;
	return threads ? threads : 1;
}

/* Run `work(arg)` in `threads` threads, this one included; a thread that cannot start leaves its share to the others. */
void work_run_threads(void *(*work)(void *), void *arg, size_t threads)
{
	pthread_t *ids = xcalloc(threads, sizeof(*ids));
	bool *started = xcalloc(threads, sizeof(*started));
	for (size_t k = 1; k < threads; k++)
		started[k] = pthread_create(&ids[k], NULL, work, arg) == 0;
	work(arg);
	for (size_t k = 1; k < threads; k++)
		if (started[k])
			pthread_join(ids[k], NULL);
	free(started);
	free(ids);
}

/*
 * Stat the files queued[0..n) in threads and remember the results. A failure
 * leaves its file unremembered; with `err`, the first one in queue order is
 * reported (stat'ed again here for its errno: failures are rare).
 */
static int stat_queued_files(struct state *state, const uint32_t *queued, size_t n, unsigned threads,
			     struct cp_err *err)
{
	struct stat_batch batch = {.files = state->files, .queued = queued, .count = n};
	atomic_init(&batch.next, 0);
	atomic_init(&batch.failed, false);
	work_run_threads(stat_batch_run, &batch, work_thread_count(threads, n, STAT_PATHS_PER_THREAD));
	state->stats.stat_calls += n;
	if (!atomic_load(&batch.failed) || !err)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct file_entry *file = &state->files[queued[i]];
		if (file->seen)
			continue;
		struct file_signature sig;
		int error = stat_path(file->path, &sig);
		if (error)
			return stat_failed(file->path, error, err);
	}
	return 0;
}

/* state_stat_paths' lookups: a thread is worth starting for this many (a probe into the index each). */
enum { FIND_PATHS_PER_THREAD = 1024, FIND_CHUNK = 256 };

/* A path's file index with this bit set: it is not stat'ed yet (indexes stay below FILE_INDEX_LIMIT). */
#define FOUND_UNSEEN ((uint32_t)1 << 31)
#define FOUND_NONE UINT32_MAX /* not indexed yet */

/*
 * The path lookups of one state_stat_paths, shared by its threads: each takes
 * the next FIND_CHUNK paths and writes their slots of `found`. They only read
 * the index and the entries; what changes them is left to the calling thread.
 */
struct find_batch {
	const struct state *state;
	const char *const *paths;
	size_t count;
	uint32_t *found;
	atomic_size_t next;
};

static void *find_batch_run(void *arg)
{
	struct find_batch *batch = arg;
	const struct state *state = batch->state;
	size_t from, to;
	while (work_take(&batch->next, batch->count, FIND_CHUNK, &from, &to)) {
		for (size_t i = from; i < to; i++) {
			const char *path = batch->paths[i];
			size_t index = index_find(state, &state->file_index, INDEX_FILES, path, name_hash(path));
			batch->found[i] = index == SIZE_MAX	       ? FOUND_NONE
					  : state->files[index].seen ? (uint32_t)index
								     : (uint32_t)index | FOUND_UNSEEN;
		}
	}
	return NULL;
}

int state_stat_paths(struct state *state, const char *const *paths, size_t count, unsigned threads,
		     uint32_t *ids, struct cp_err *err)
{
	/* Known paths are looked up in threads (`ids` doubles as their results); the rest is done here. */
	uint32_t *found = ids ? ids : xmalloc((count + 1) * sizeof(*found));
	struct find_batch find = {.state = state, .paths = paths, .count = count, .found = found};
	atomic_init(&find.next, 0);
	work_run_threads(find_batch_run, &find, work_thread_count(threads, count, FIND_PATHS_PER_THREAD));
	/*
	 * Interning grows the file index, which is not thread safe: it is done
	 * here. A queued file is marked seen at once so that a duplicate is not
	 * queued twice; its result is filled in before this returns.
	 */
	uint32_t *queued = xmalloc((count + 1) * sizeof(*queued));
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		if (!(found[i] & FOUND_UNSEEN))
			continue; /* stat'ed already, and `ids` has its index */
		/* A path not indexed may have been added for a duplicate of it before this one. */
		size_t index = found[i] == FOUND_NONE ? file_intern(state, paths[i]) : found[i] & ~FOUND_UNSEEN;
		found[i] = (uint32_t)index;
		if (state->files[index].seen)
			continue;
		state->files[index].seen = true;
		queued[n++] = (uint32_t)index;
	}
	if (found != ids)
		free(found);
	int rc = stat_queued_files(state, queued, n, threads, err);
	free(queued);
	return rc;
}

/*
 * Reorder queued[0..n) so that the files of one directory are next to each
 * other. A stat walks its path from the data root, and the directory it
 * walks through last is then still in the CPU's caches for the next file:
 * files come in record order, one directory's outputs a whole study apart,
 * and on a study of 10,000 subject directories a stat in directory order
 * costs about a fifth less (bench/FINDINGS.md, "stat order"). Directories are
 * told apart by a hash of their name; two that share a bucket interleave,
 * which costs only locality.
 */
static void queue_group_by_directory(const struct file_entry *files, uint32_t *queued, size_t n)
{
	if (n < 2)
		return;
	size_t buckets = 1;
	while (buckets < n)
		buckets <<= 1;
	uint32_t *bucket = xmalloc(n * sizeof(*bucket));
	uint32_t *start = xcalloc(buckets + 1, sizeof(*start));
	for (size_t i = 0; i < n; i++) {
		const char *path = files[queued[i]].path;
		const char *slash = strrchr(path, '/');
		bucket[i] = (uint32_t)(XXH3_64bits(path, slash ? (size_t)(slash - path) : 0) & (buckets - 1));
		start[bucket[i] + 1]++;
	}
	for (size_t b = 0; b < buckets; b++)
		start[b + 1] += start[b];
	uint32_t *grouped = xmalloc(n * sizeof(*grouped));
	for (size_t i = 0; i < n; i++)
		grouped[start[bucket[i]]++] = queued[i];
	memcpy(queued, grouped, n * sizeof(*queued));
	free(grouped);
	free(start);
	free(bucket);
}

/*
 * The recorded files not stat'ed yet, in a queue of their indexes (*n of
 * them, a directory's together); with `made_only`, only those some recorded
 * job made. Freed by the caller.
 */
static uint32_t *queue_recorded(const struct state *state, bool made_only, size_t *n)
{
	bool *made = NULL;
	if (made_only) {
		made = xcalloc(state->file_count + 1, sizeof(*made));
		for (size_t j = 0; j < state->job_count; j++) {
			const struct job_entry *job = &state->jobs[j];
			for (size_t k = job->input_count; job->present && k < job->input_count + job->output_count; k++)
				made[job->files[k].file] = true;
		}
	}
	uint32_t *queued = xmalloc((state->file_count + 1) * sizeof(*queued));
	*n = 0;
	for (size_t i = 0; i < state->file_count; i++)
		if (!state->files[i].seen && (!made || made[i]))
			queued[(*n)++] = (uint32_t)i;
	free(made);
	queue_group_by_directory(state->files, queued, *n);
	return queued;
}

/*
 * A state_stat_recorded that other threads may join (stat_share_help).
 * `phase` and `helpers` are under `lock`; the batch lives on the stat's own
 * stack and is gone once it is over and no helper is left.
 */
struct stat_share {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	enum { SHARE_WAITING, SHARE_RUNNING, SHARE_OVER } phase;
	size_t helpers;
	struct stat_batch *batch;
};

struct stat_share *stat_share_new(void)
{
	struct stat_share *share = xcalloc(1, sizeof(*share));
	pthread_mutex_init(&share->lock, NULL);
	pthread_cond_init(&share->changed, NULL);
	share->phase = SHARE_WAITING;
	return share;
}

void stat_share_free(struct stat_share *share)
{
	if (!share)
		return;
	pthread_cond_destroy(&share->changed);
	pthread_mutex_destroy(&share->lock);
	free(share);
}

/* Move the share to `phase`; at SHARE_OVER, wait until its helpers have left the batch. */
static void share_enter(struct stat_share *share, int phase, struct stat_batch *batch)
{
	pthread_mutex_lock(&share->lock);
	share->batch = batch;
	share->phase = phase;
	pthread_cond_broadcast(&share->changed);
	while (phase == SHARE_OVER && share->helpers)
		pthread_cond_wait(&share->changed, &share->lock);
	pthread_mutex_unlock(&share->lock);
}

void stat_share_end(struct stat_share *share)
{
	share_enter(share, SHARE_OVER, NULL);
}

void state_stat_recorded(struct state *state, unsigned threads, bool made_only, struct stat_share *share)
{
	size_t n;
	uint32_t *queued = queue_recorded(state, made_only, &n);
	struct stat_batch batch = {.files = state->files, .queued = queued, .count = n};
	atomic_init(&batch.next, 0);
	atomic_init(&batch.failed, false);
	if (share)
		share_enter(share, SHARE_RUNNING, &batch);
	work_run_threads(stat_batch_run, &batch, work_thread_count(threads, n, STAT_PATHS_PER_THREAD));
	if (share)
		share_enter(share, SHARE_OVER, NULL);
	state->stats.stat_calls += n;
	free(queued);
}

void state_learn_stat(struct state *state, const char *path, const struct file_signature *sig)
{
	size_t index = file_intern(state, path); /* may move state->files */
	struct file_entry *file = &state->files[index];
	if (!file->seen)
		file_take_stat(file, sig);
}

void stat_share_help(struct stat_share *share)
{
	pthread_mutex_lock(&share->lock);
	while (share->phase == SHARE_WAITING)
		pthread_cond_wait(&share->changed, &share->lock);
	if (share->phase == SHARE_RUNNING) {
		struct stat_batch *batch = share->batch;
		share->helpers++;
		pthread_mutex_unlock(&share->lock);
		stat_batch_run(batch);
		pthread_mutex_lock(&share->lock);
		share->helpers--;
		pthread_cond_broadcast(&share->changed);
	}
	pthread_mutex_unlock(&share->lock);
}

/* Run a file row statement: ?1 is bound by the caller, ?2..?4 get the file's hash cache. */
static int file_row_write(struct state *state, enum statement id, sqlite3_stmt *stmt, const struct file_entry *file,
			  struct cp_err *err)
{
	bind_int64(stmt, 2, file->hashed ? file->size : -1);
	bind_int64(stmt, 3, file->hashed ? file->mtime_ns : -1);
	if (file->hashed)
		bind_hash(stmt, 4, file->hash);
	else
		sqlite3_bind_null(stmt, 4);
	return statement_run(state, id, stmt, err);
}

/* Set db_id from the row of the file's path. */
static int file_find_row(struct state *state, struct file_entry *file, struct cp_err *err)
{
	sqlite3_stmt *stmt = statement(state, STMT_FILE_ID, err);
	if (!stmt)
		return STATE_ERROR;
	bind_text(stmt, 1, file->path);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		file->db_id = sqlite3_column_int64(stmt, 0);
	statement_done(stmt);
	return rc == SQLITE_ROW ? 0 : db_fail(state, STMT_FILE_ID, err);
}

/* Write the file's row (its hash cache) if it has none or it is dirty; sets db_id. */
int file_store(struct state *state, size_t index, struct cp_err *err)
{
	struct file_entry *file = &state->files[index];
	if (file->db_id && !file->dirty)
		return 0;
	sqlite3_stmt *stmt;
	if (!file->db_id) {
		if (!(stmt = statement(state, STMT_FILE_INSERT, err)))
			return STATE_ERROR;
		bind_text(stmt, 1, file->path);
		if (file_row_write(state, STMT_FILE_INSERT, stmt, file, err) < 0)
			return STATE_ERROR;
		if (sqlite3_changes(state->db) == 1) {
			file->db_id = sqlite3_last_insert_rowid(state->db);
			file->dirty = false;
			return 0;
		}
		/* Ignored: another run added the path after our load. */
		if (file_find_row(state, file, err) < 0)
			return STATE_ERROR;
	}
	if (!(stmt = statement(state, STMT_FILE_UPDATE, err)))
		return STATE_ERROR;
	bind_int64(stmt, 1, file->db_id);
	if (file_row_write(state, STMT_FILE_UPDATE, stmt, file, err) < 0)
		return STATE_ERROR;
	file->dirty = false;
	return 0;
}

int flush_dirty_files(struct state *state, struct cp_err *err)
{
	while (state->dirty_count > 0) {
		size_t index = state->dirty_files[state->dirty_count - 1];
		if (state->files[index].dirty && file_store(state, index, err) < 0)
			return STATE_ERROR;
		state->dirty_count--;
	}
	return 0;
}
