/*
 * state_int.h: what the state module's source files share, private to them
 * (src/state.c and src/state_*.c; nothing outside the module includes it).
 *
 *   state.c         the handle: statements, SQLite access, transactions,
 *                   jobs in memory, open, load and close
 *   state_index.c   the name indexes of files and jobs
 *   state_schema.c  the schema, its migrations, and the blob of a job's files
 *   state_files.c   file signatures: hashing, the hash cache, the per-handle
 *                   stat snapshot (state_stat_paths), file rows
 *   state_reason.c  why a job is not up to date, and adoption's suspects
 *   state_record.c  claims (STATE_HELD, STATE_CHANGED), their holders, and records
 *   state_check.c   integrity check and repair
 *   state_snapshot.c  the loaded records kept in a file for the next open
 *   state_list.c    listing records and their files
 *   state_attempt.c attempts and their origins in memory, log paths
 */
#ifndef CPIPE_STATE_INT_H
#define CPIPE_STATE_INT_H

#include "cpipe/state.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

/* Every statement of the module, prepared once on first use (statement()); the SQL is in state.c. */
enum statement {
	STMT_BEGIN_READ,
	STMT_BEGIN_WRITE,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_LOAD_GENERATION,
	STMT_LOAD_SIZES,
	STMT_LOAD_FILES,
	STMT_LOAD_JOBS,
	STMT_LOAD_CLAIMS,
	STMT_JOB_SELECT,
	STMT_FILE_INSERT,
	STMT_FILE_ID,
	STMT_FILE_UPDATE,
	STMT_CLAIM_SELECT,
	STMT_JOB_FILES_SELECT,
	STMT_FILE_PATH,
	STMT_CLAIM_SET,
	STMT_CLAIM_RELEASE,
	STMT_JOB_SUCCESS,
	STMT_JOB_FAILURE,
	STMT_JOB_INTERRUPT,
	STMT_RUN_INTERRUPT,
	STMT_FORGET_PREFIX,
	STMT_FORGET_NAME,
	STMT_COUNT
};

enum job_outcome { OUTCOME_NONE, OUTCOME_DONE, OUTCOME_FAILED, OUTCOME_INTERRUPTED };

/*
 * One per path of the study (millions at UK Biobank scale): 40 bytes. The
 * hash cache and the remembered stat share one size and mtime: until the
 * file is stat'ed they are the cache's; the stat keeps the cached hash when
 * it finds the same size and mtime and drops it otherwise (a cache that does
 * not match the file is of no use to this handle; its row stays as it was).
 */
struct file_entry {
	const char *path; /* in the pool */
	int64_t size;
	int64_t mtime_ns;
	uint64_t hash;   /* the content's at this size and mtime, when `hashed` */
	uint32_t db_id;  /* 0: no row in `files` yet */
	bool seen : 1;   /* size, mtime and `exists` are this handle's stat of the file */
	bool exists : 1; /* with `seen` */
	bool hashed : 1;
	bool dirty : 1; /* the hash cache changed since it was last written */
};

/* What the remembered stat says (`seen` set): the hash when the cache matched or the file was hashed. */
static inline struct file_signature file_signature_of(const struct file_entry *file)
{
	struct file_signature sig = {.exists = file->exists, .size = file->size, .mtime_ns = file->mtime_ns,
				     .hash = file->hashed ? file->hash : 0, .hashed = file->hashed};
	return sig;
}

/* A file index fits in a job_file's 30 bits (a billion paths would need tens of GB anyway). */
#define FILE_INDEX_LIMIT ((size_t)1 << 30)

/*
 * A recorded file of a job: 28 bytes, packed to 4-byte alignment (records load
 * by the million; x86-64 and AArch64 read the unaligned 64-bit fields at no cost).
 */
struct __attribute__((packed, aligned(4))) job_file {
	uint32_t file : 30; /* index into state->files */
	bool exists : 1;
	bool hashed : 1;
	int64_t size;
	int64_t mtime_ns;
	uint64_t hash;
};

static inline void job_file_set(struct job_file *jf, size_t file, const struct file_signature *sig)
{
	jf->file = (uint32_t)file;
	jf->exists = sig->exists;
	jf->hashed = sig->hashed;
	jf->size = sig->size;
	jf->mtime_ns = sig->mtime_ns;
	jf->hash = sig->hash;
}

static inline struct file_signature job_file_signature(const struct job_file *jf)
{
	struct file_signature sig = {
		.exists = jf->exists, .size = jf->size, .mtime_ns = jf->mtime_ns, .hash = jf->hash, .hashed = jf->hashed};
	return sig;
}

/*
 * Where an attempt ran (host, pid and run id, which every job a run finished
 * repeats) and where its log went: in the pool, shared by a run's attempts
 * (see attempt_origin_from). Most logs are at the job's default path (util.h's
 * job_log_path), which is rebuilt from the job id when asked for, not kept:
 * an origin with `default_log` fits any job of its run.
 */
struct attempt_origin {
	const char *host;
	const char *run_id;
	int64_t pid;
	const char *log_path; /* NULL: none, or the default one (`default_log`) */
	bool default_log;
};

/*
 * A job's latest finished attempt: 32 bytes, in state->attempts, never changed once
 * made (a rewrite makes a new one), and shared by consecutive rows with the
 * same facts (an adopting run's jobs).
 */
struct job_attempt {
	int64_t start_ns;
	int64_t end_ns;
	const struct attempt_origin *origin; /* NULL: no host, pid, run id or log recorded */
	int32_t exit_code;
};

/* The claim of the run that holds a job: in the pool, never changed once made. */
struct job_claim {
	const char *run;
	const char *host;
	int64_t pid;
	int64_t pid_start;
	const char *log;
};

/* At most this many outputs per job: the count shares its word with the flags. */
#define JOB_OUTPUTS_LIMIT (((size_t)1 << 26) - 1)

/*
 * One per recorded job (millions at UK Biobank scale): 56 bytes. A no-op
 * reads the hashes, flags and files; the attempt's facts (which every job
 * has, but which repeat across an adopting run's jobs) and the claim (which
 * few jobs have) are pooled blocks of their own.
 */
struct job_entry {
	const char *job_id; /* in the pool */
	/* Inputs then outputs, each part sorted by file index without duplicates. */
	struct job_file *files;
	uint64_t definition_hash;
	uint64_t input_set_hash;
	const struct job_attempt *attempt; /* NULL: no fact of an attempt recorded */
	const struct job_claim *claim;     /* NULL: unclaimed */
	uint32_t input_count;
	uint32_t output_count : 26; /* at most JOB_OUTPUTS_LIMIT */
	unsigned outcome : 2;       /* enum job_outcome */
	bool present : 1;           /* false: forgotten (the index keeps the name) */
	bool files_owned : 1;       /* `files` is its own allocation, not a slice of the loaded array */
	bool recorded : 1;
	bool adopted : 1;
};

/* The job's attempt facts, all 0 and NULL when it has none. */
static inline struct job_attempt job_attempt_of(const struct job_entry *job)
{
	struct job_attempt none = {0};
	return job->attempt ? *job->attempt : none;
}

/* The origin of the job's attempt, all 0 and NULL when it has none. */
static inline struct attempt_origin job_origin_of(const struct job_entry *job)
{
	struct attempt_origin none = {0};
	return job->attempt && job->attempt->origin ? *job->attempt->origin : none;
}

/*
 * An open-addressing hash index over the names of an entry array (files by
 * path, jobs by id). A slot holds entry index + 1 in its low 32 bits (0 is
 * empty) and the low 32 bits of the name's hash in its high ones: a probe
 * compares hashes without touching the entry (a cache miss each at a million
 * subjects), and growing the index never reads an entry. The names stay in
 * the entries.
 */
struct name_index {
	uint64_t *slots;
	size_t cap; /* at most 2^32, or 0 */
	size_t count;
};

/* The buffers of one reason check: the handle's, or one thread's of state_jobs_settled. */
struct reason_scratch {
	size_t *positions; /* per query input: its place among the recorded inputs */
	size_t positions_cap;
	size_t *output_files; /* per query output: its file index */
	size_t output_files_cap;
	unsigned char *marks; /* per recorded input: whether the query has it */
	size_t marks_cap;
};

void reason_scratch_release(struct reason_scratch *scratch);

struct state {
	sqlite3 *db;
	char *db_path;
	sqlite3_stmt *statements[STMT_COUNT];
	int transaction_depth;

	struct file_entry *files;
	size_t file_count;
	size_t file_cap;
	struct name_index file_index;
	size_t *dirty_files;
	size_t dirty_count;
	size_t dirty_cap;

	struct job_entry *jobs;
	size_t job_count;
	size_t job_cap;
	struct name_index job_index;
	struct job_file *loaded_job_files; /* every job's files as loaded, one allocation */
	struct arena pool; /* every string: records load by the hundred thousand and die together */
	struct arena attempts; /* the attempt blocks, apart from the strings: 32 bytes each, they pack unpadded */
	const char *recent_host; /* pooled strings and blocks that repeat across job rows (see job_from_row) */
	const char *recent_run;
	const struct attempt_origin *recent_origin;
	const struct job_attempt *recent_attempt;
	struct strbuf default_log; /* attempt_intern's scratch: a job's default log path */

	char *run_id;
	char *host;
	int64_t pid;
	int64_t pid_start;
	struct strvec dead_runs; /* runs found dead by state_claim_job (their processes may live on) */
	bool check_mode;          /* state_open_for_check: damage is noted, not fatal */
	bool unclean;             /* a journal was left at open: the last writer did not close */
	bool read_only;
	struct strvec damaged_jobs; /* jobs whose files blob could not be decoded (check mode) */
	struct strvec damage_notes; /* what was wrong with each, in the same order */
	int64_t *failure_windows; /* state_adoption_suspect: sorted disjoint [start, end] pairs, built once */
	size_t failure_window_count;
	bool failure_windows_built;

	struct reason_scratch reason_scratch; /* state_job_reason's */

	struct state_stats stats;
};

static inline const char *pool_add(struct arena *pool, const char *s)
{
	return s ? arena_strdup(pool, s) : NULL;
}

static inline bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static inline uint64_t name_hash(const char *name)
{
	return XXH3_64bits(name, strlen(name));
}

static inline void statement_done(sqlite3_stmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

static inline void bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
	sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC); /* NULL binds NULL */
}

static inline void bind_int64(sqlite3_stmt *stmt, int index, int64_t value)
{
	sqlite3_bind_int64(stmt, index, (sqlite3_int64)value);
}

static inline void bind_hash(sqlite3_stmt *stmt, int index, uint64_t value)
{
	sqlite3_bind_int64(stmt, index, (sqlite3_int64)value);
}

/* A blob being decoded; `problem` says what was wrong with it (NULL: nothing yet). */
struct files_blob_reader {
	const unsigned char *start, *at, *end;
	const char *problem;
};

/* Additions to a name index in bulk, a load's (see index_batch_add). */
enum { INDEX_BATCH = 16 };
struct index_batch {
	struct name_index *index;
	uint64_t slots[INDEX_BATCH];
	size_t count;
};

/* Which name index (see struct name_index). */
enum index_kind { INDEX_FILES, INDEX_JOBS };

/* state_index.c: the name indexes. */
void index_reserve(struct name_index *index, size_t count);
size_t index_find(const struct state *state, const struct name_index *index, enum index_kind kind,
		  const char *name, uint64_t hash);
void index_add(struct name_index *index, size_t i, uint64_t hash);
void index_batch_add(struct index_batch *batch, size_t i, uint64_t hash);
void index_batch_flush(struct index_batch *batch);

/* state.c: SQLite access, transactions, jobs in memory. */
int db_fail_sql(struct state *state, const char *sql, struct cp_err *err);
int db_fail(struct state *state, enum statement id, struct cp_err *err);
sqlite3_stmt *statement(struct state *state, enum statement id, struct cp_err *err);
int statement_run(struct state *state, enum statement id, sqlite3_stmt *stmt, struct cp_err *err);
int statement_exec(struct state *state, enum statement id, struct cp_err *err);
char *column_strdup(sqlite3_stmt *stmt, int column);
int write_begin(struct state *state, struct cp_err *err);
void rollback_quietly(struct state *state);
int write_end(struct state *state, int rc, struct cp_err *err);
void records_release(struct state *state);
const char *pool_text(struct state *state, const char *text, const char **recent);
size_t job_add(struct state *state, const char *job_id, uint64_t hash, struct index_batch *batch);
void job_clear_files(struct job_entry *job);
struct job_entry *job_find(const struct state *state, const char *job_id);
size_t job_intern(struct state *state, const char *job_id);
enum job_outcome outcome_from_text(const char *text);
int job_reload(struct state *state, const char *job_id, struct cp_err *err);
size_t job_files_normalize(struct job_file *part, size_t count);
size_t job_files_find(const struct job_file *part, size_t count, size_t file_index);
int run_sql(struct state *state, const char *sql, struct cp_err *err);
int pragma_int(struct state *state, const char *sql, int *out, struct cp_err *err);
int integrity_check(struct state *state, struct strvec *problems, struct cp_err *err);

/* state_schema.c: the files blob (see its format there) and the migrations run at open. */
void files_blob_start(struct strbuf *blob, size_t input_count, size_t output_count);
void files_blob_add(struct strbuf *blob, int64_t file_id, const struct file_signature *sig);
bool blob_fail(struct files_blob_reader *reader, const char *problem);
bool files_blob_open(struct files_blob_reader *reader, const void *data, size_t size, size_t *input_count,
		     size_t *output_count);
bool files_blob_next(struct files_blob_reader *reader, int64_t *file_id, struct file_signature *sig);
bool files_blob_close(struct files_blob_reader *reader);
int migrate_schema(struct state *state, struct cp_err *err);

/* state_snapshot.c: the loaded records kept in a file, under the token of the database they were read from. */
#define SNAPSHOT_TOKEN_BYTES 16
int snapshot_load(struct state *state, const unsigned char token[SNAPSHOT_TOKEN_BYTES]);
void snapshot_write(const struct state *state, const unsigned char token[SNAPSHOT_TOKEN_BYTES],
		    size_t job_file_count);

/* state_files.c: the file entries, their hash cache and the stat snapshot. */
size_t file_add(struct state *state, const char *path, uint64_t hash, struct index_batch *batch);
size_t file_intern(struct state *state, const char *path);
void file_learn(struct state *state, size_t index, const struct file_signature *sig);
int file_seen(struct state *state, size_t index, struct file_signature *out, struct cp_err *err);
int file_hash_seen(struct state *state, size_t index, struct cp_err *err);
int file_store(struct state *state, size_t index, struct cp_err *err);
int flush_dirty_files(struct state *state, struct cp_err *err);
size_t work_thread_count(unsigned wanted, size_t work, size_t per_thread);
void work_run_threads(void *(*work)(void *), void *arg, size_t threads);
bool work_take(atomic_size_t *next, size_t count, size_t chunk, size_t *from, size_t *to);

/* state_attempt.c: attempts and their origins, pooled and shared; a job's last attempt's log path (false: none). */
const struct attempt_origin *attempt_origin_from(struct state *state, const struct attempt_origin *facts);
const struct job_attempt *attempt_intern(struct state *state, const struct job_entry *job,
					 const struct job_attempt *facts, struct attempt_origin *origin);
bool attempt_log_path(const struct job_entry *job, struct strbuf *out);

/* state_record.c: claim holders (the start time is /proc's, in clock ticks since boot; 0 when unknown). */
int64_t process_start_time(int64_t pid);
bool holder_alive(const struct state *state, const char *host, int64_t pid, int64_t pid_start);

/* state_reason.c: comparing a recorded file with the disk (state_check uses them too). */
int file_differs(struct state *state, size_t index, const struct job_file *recorded, bool *differs,
		 struct cp_err *err);
void holder_detail(struct strbuf *detail, const char *host, int64_t pid);

#endif
