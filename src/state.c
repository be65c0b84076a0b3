/*
 * state: the SQLite state database and the up-to-date decision. See
 * include/cpipe/state.h for the contract.
 *
 * Layout: every statement lives in `statement_sql[]`, indexed by enum
 * statement, prepared once on first use and reset after each use. All
 * records are loaded at open into arrays with hash indexes over them, so a
 * reason check never touches SQLite. Strings live in a pool freed at close. Writes go to the database first and are
 * then mirrored in memory (job rows are re-read after a write so the two
 * cannot drift).
 *
 * Threads: there is no mutable global or static data, so handles are
 * independent; each has its own SQLite connection, opened without SQLite's
 * per-connection mutex since a handle is used by one thread at a time. The
 * only threads started here are state_stat_paths' workers: they stat paths
 * into their own result slots and touch nothing else.
 */
#include "cpipe/state.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- Schema ---------------------------------------------------------- */

static int migrate_job_files_to_blobs(struct state *state, struct cp_err *err);

/*
 * Migration N (1-based) takes the schema from user_version N-1 to N: its SQL
 * text runs, then its C step (either may be NULL), in one transaction. Append
 * only; never edit a released migration.
 */
struct migration {
	const char *sql;
	int (*step)(struct state *state, struct cp_err *err);
};

static const struct migration migrations[] = {
	/* 1: jobs, the file hash cache, and what each job read and wrote. */
	{.sql =
	"CREATE TABLE jobs ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" status TEXT NOT NULL DEFAULT 'none' CHECK (status IN ('none', 'done', 'failed', 'interrupted')),"
	" recorded INTEGER NOT NULL DEFAULT 0," /* has signatures of a successful or adopted run */
	" adopted INTEGER NOT NULL DEFAULT 0,"
	" definition_hash INTEGER,"
	" input_set_hash INTEGER,"
	" exit_code INTEGER," /* latest finished attempt: */
	" start_ns INTEGER,"
	" end_ns INTEGER,"
	" host TEXT,"
	" pid INTEGER,"
	" run_id TEXT,"
	" log_path TEXT,"
	" holder_run TEXT," /* the claim, NULL when unclaimed: */
	" holder_host TEXT,"
	" holder_pid INTEGER,"
	" holder_pid_start INTEGER,"
	" holder_since INTEGER,"
	" holder_log TEXT"
	");"
	"CREATE TABLE files ("
	" id INTEGER PRIMARY KEY,"
	" path TEXT NOT NULL UNIQUE,"
	" size INTEGER NOT NULL,"
	" mtime_ns INTEGER NOT NULL,"
	" hash INTEGER" /* content hash valid for this size+mtime; NULL: none */
	");"
	"CREATE TABLE job_files ("
	" job INTEGER NOT NULL REFERENCES jobs(id),"
	" role INTEGER NOT NULL," /* 0 input, 1 output */
	" file INTEGER NOT NULL REFERENCES files(id),"
	" present INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" mtime_ns INTEGER NOT NULL,"
	" hash INTEGER NOT NULL,"
	" hashed INTEGER NOT NULL,"
	" PRIMARY KEY (job, role, file)"
	") WITHOUT ROWID;"},
	/*
	 * 2: a job's recorded files move from job_files rows into one blob in its
	 * row (see FILES BLOB). `jobs` is rebuilt for the new column so that its
	 * status CHECK can drop IN: SQLite evaluates an IN list by building a
	 * temporary b-tree, on every write to the table.
	 */
	{.sql =
	"CREATE TABLE jobs_v2 ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" status TEXT NOT NULL DEFAULT 'none'"
	"  CHECK (status = 'none' OR status = 'done' OR status = 'failed' OR status = 'interrupted'),"
	" recorded INTEGER NOT NULL DEFAULT 0," /* has signatures of a successful or adopted run */
	" adopted INTEGER NOT NULL DEFAULT 0,"
	" definition_hash INTEGER,"
	" input_set_hash INTEGER,"
	" exit_code INTEGER," /* latest finished attempt: */
	" start_ns INTEGER,"
	" end_ns INTEGER,"
	" host TEXT,"
	" pid INTEGER,"
	" run_id TEXT,"
	" log_path TEXT,"
	" holder_run TEXT," /* the claim, NULL when unclaimed: */
	" holder_host TEXT,"
	" holder_pid INTEGER,"
	" holder_pid_start INTEGER,"
	" holder_since INTEGER,"
	" holder_log TEXT,"
	" files BLOB" /* what the last successful run read and wrote; NULL: nothing */
	");"
	"INSERT INTO jobs_v2 (id, name, status, recorded, adopted, definition_hash, input_set_hash, exit_code,"
	" start_ns, end_ns, host, pid, run_id, log_path, holder_run, holder_host, holder_pid, holder_pid_start,"
	" holder_since, holder_log)"
	" SELECT id, name, status, recorded, adopted, definition_hash, input_set_hash, exit_code,"
	" start_ns, end_ns, host, pid, run_id, log_path, holder_run, holder_host, holder_pid, holder_pid_start,"
	" holder_since, holder_log FROM jobs;"
	"DROP TABLE jobs;"
	"ALTER TABLE jobs_v2 RENAME TO jobs;",
	 .step = migrate_job_files_to_blobs},
};
_Static_assert(ARRAY_SIZE(migrations) == STATE_SCHEMA_VERSION, "one migration per schema version");

/* ---- Statements -------------------------------------------------------- */

/* job_from_row reads these by position; a load adds `files` after them. */
#define JOB_COLUMNS \
	"name, status, recorded, adopted, definition_hash, input_set_hash, exit_code, start_ns, end_ns," \
	" host, pid, run_id, log_path, holder_run, holder_host, holder_pid, holder_pid_start, holder_log"
#define JOB_COLUMN_COUNT 18

/* Clears the claim, turning it into the latest (interrupted) attempt. Refers to the old row. */
#define INTERRUPT_SET \
	"status = 'interrupted', exit_code = NULL, start_ns = COALESCE(holder_since, start_ns)," \
	" end_ns = ?2, host = COALESCE(holder_host, host), pid = COALESCE(holder_pid, pid)," \
	" run_id = COALESCE(holder_run, run_id), log_path = COALESCE(holder_log, log_path)," \
	" holder_run = NULL, holder_host = NULL, holder_pid = NULL, holder_pid_start = NULL," \
	" holder_since = NULL, holder_log = NULL"

enum statement {
	STMT_BEGIN_READ,
	STMT_BEGIN_WRITE,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_LOAD_SIZES,
	STMT_LOAD_FILES,
	STMT_LOAD_JOBS,
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

static const char *const statement_sql[STMT_COUNT] = {
	[STMT_BEGIN_READ] = "BEGIN",
	[STMT_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	/* max(id) is a b-tree seek; count(*) would read a whole index. Ids are dense unless jobs were forgotten. */
	[STMT_LOAD_SIZES] = "SELECT (SELECT max(id) FROM files), (SELECT max(id) FROM jobs)",
	[STMT_LOAD_FILES] = "SELECT id, path, size, mtime_ns, hash FROM files ORDER BY id",
	[STMT_LOAD_JOBS] = "SELECT " JOB_COLUMNS ", files FROM jobs ORDER BY id",
	[STMT_JOB_SELECT] = "SELECT " JOB_COLUMNS " FROM jobs WHERE name = ?1",
	/* No upsert RETURNING the id: SQLite builds a temporary table for RETURNING on every run. */
	[STMT_FILE_INSERT] = "INSERT OR IGNORE INTO files (path, size, mtime_ns, hash) VALUES (?1, ?2, ?3, ?4)",
	[STMT_FILE_ID] = "SELECT id FROM files WHERE path = ?1",
	[STMT_FILE_UPDATE] = "UPDATE files SET size = ?2, mtime_ns = ?3, hash = ?4 WHERE id = ?1",
	[STMT_CLAIM_SELECT] = "SELECT holder_run, holder_host, holder_pid, holder_pid_start, status, end_ns, run_id"
			      " FROM jobs WHERE name = ?1",
	[STMT_JOB_FILES_SELECT] = "SELECT files FROM jobs WHERE name = ?1",
	[STMT_FILE_PATH] = "SELECT path FROM files WHERE id = ?1",
	[STMT_CLAIM_SET] = "INSERT INTO jobs (name, holder_run, holder_host, holder_pid, holder_pid_start,"
			   " holder_since, holder_log) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
			   " ON CONFLICT (name) DO UPDATE SET holder_run = excluded.holder_run,"
			   " holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,"
			   " holder_pid_start = excluded.holder_pid_start, holder_since = excluded.holder_since,"
			   " holder_log = excluded.holder_log",
	[STMT_CLAIM_RELEASE] = "UPDATE jobs SET holder_run = NULL, holder_host = NULL, holder_pid = NULL,"
			       " holder_pid_start = NULL, holder_since = NULL, holder_log = NULL"
			       " WHERE name = ?1 AND holder_run = ?2",
	/* Re-read with STMT_JOB_SELECT: RETURNING builds a temporary table per run, doubling a record's cost. */
	[STMT_JOB_SUCCESS] =
		"INSERT INTO jobs (name, status, recorded, adopted, definition_hash, input_set_hash, exit_code,"
		" start_ns, end_ns, host, pid, run_id, log_path, files)"
		" VALUES (?1, 'done', 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
		" ON CONFLICT (name) DO UPDATE SET status = 'done', recorded = 1, adopted = excluded.adopted,"
		" definition_hash = excluded.definition_hash, input_set_hash = excluded.input_set_hash,"
		" files = excluded.files,"
		" exit_code = excluded.exit_code, start_ns = excluded.start_ns, end_ns = excluded.end_ns,"
		" host = excluded.host, pid = excluded.pid, run_id = excluded.run_id,"
		" log_path = COALESCE(excluded.log_path, holder_log, log_path),"
		" holder_run = NULL, holder_host = NULL, holder_pid = NULL, holder_pid_start = NULL,"
		" holder_since = NULL, holder_log = NULL",
	[STMT_JOB_FAILURE] =
		"INSERT INTO jobs (name, status, exit_code, start_ns, end_ns, host, pid, run_id, log_path)"
		" VALUES (?1, 'failed', ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		" ON CONFLICT (name) DO UPDATE SET status = 'failed', exit_code = excluded.exit_code,"
		" start_ns = excluded.start_ns, end_ns = excluded.end_ns, host = excluded.host,"
		" pid = excluded.pid, run_id = excluded.run_id,"
		" log_path = COALESCE(excluded.log_path, holder_log, log_path),"
		" holder_run = NULL, holder_host = NULL, holder_pid = NULL, holder_pid_start = NULL,"
		" holder_since = NULL, holder_log = NULL",
	[STMT_JOB_INTERRUPT] = "INSERT INTO jobs (name, status, end_ns) VALUES (?1, 'interrupted', ?2)"
			       " ON CONFLICT (name) DO UPDATE SET " INTERRUPT_SET,
	[STMT_RUN_INTERRUPT] = "UPDATE jobs SET " INTERRUPT_SET " WHERE holder_run = ?1 RETURNING name",
	[STMT_FORGET_PREFIX] = "DELETE FROM jobs WHERE substr(name, 1, length(?1)) = ?1",
	[STMT_FORGET_NAME] = "DELETE FROM jobs WHERE name = ?1",
};

/* ---- In-memory records ------------------------------------------------- */

enum job_outcome { OUTCOME_NONE, OUTCOME_DONE, OUTCOME_FAILED, OUTCOME_INTERRUPTED };

struct file_entry {
	const char *path; /* in the pool */
	uint64_t path_hash;
	int64_t db_id; /* 0: no row in `files` yet */
	/* The hash cache: `cache_hash` is the content hash for this size+mtime. */
	bool cache_valid;
	bool dirty; /* cache changed since it was last written */
	int64_t cache_size;
	int64_t cache_mtime_ns;
	uint64_t cache_hash;
	/* The remembered stat for reason checks (hash filled lazily). */
	bool seen_valid;
	struct file_signature seen;
};

/* A recorded file of a job: 32 bytes (records load by the hundred thousand). */
struct job_file {
	uint32_t file; /* index into state->files */
	bool exists;
	bool hashed;
	int64_t size;
	int64_t mtime_ns;
	uint64_t hash;
};

static void job_file_set(struct job_file *jf, size_t file, const struct file_signature *sig)
{
	jf->file = (uint32_t)file;
	jf->exists = sig->exists;
	jf->hashed = sig->hashed;
	jf->size = sig->size;
	jf->mtime_ns = sig->mtime_ns;
	jf->hash = sig->hash;
}

static struct file_signature job_file_signature(const struct job_file *jf)
{
	struct file_signature sig = {jf->exists, jf->size, jf->mtime_ns, jf->hash, jf->hashed};
	return sig;
}

/* Job strings live in the pool: a rewrite points to a new copy. */
struct job_entry {
	const char *job_id;
	uint64_t job_id_hash;
	bool present; /* false: forgotten (the index keeps the name) */
	bool files_owned; /* `files` is its own allocation, not a slice of the loaded array */
	enum job_outcome outcome;
	bool recorded;
	bool adopted;
	uint64_t definition_hash;
	uint64_t input_set_hash;
	int exit_code;
	int64_t start_ns;
	int64_t end_ns;
	const char *host;
	int64_t pid;
	const char *run_id;
	const char *log_path;
	const char *holder_run;
	const char *holder_host;
	int64_t holder_pid;
	int64_t holder_pid_start;
	const char *holder_log;
	/* Inputs then outputs, each part sorted by file index without duplicates. */
	struct job_file *files;
	size_t input_count;
	size_t output_count;
};

/*
 * An open-addressing hash index over the names of an entry array (files by
 * path, jobs by id). Slots hold entry index + 1 (0 is empty); the names and
 * their hashes stay in the entries, so the index costs 4 bytes a slot.
 */
struct name_index {
	uint32_t *slots;
	size_t cap; /* a power of two, or 0 */
	size_t count;
};

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
	const char *recent_host; /* pooled strings that repeat across job rows (see job_string) */
	const char *recent_run;
	const char *recent_holder_run;

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

	size_t *scratch; /* per-query input positions */
	size_t scratch_cap;
	size_t *output_scratch; /* per-query output file indexes */
	size_t output_scratch_cap;
	unsigned char *marks;
	size_t marks_cap;

	struct state_stats stats;
};

/* ---- Small helpers ------------------------------------------------------- */

int64_t state_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *pool_add(struct arena *pool, const char *s)
{
	return s ? arena_strdup(pool, s) : NULL;
}

static uint64_t name_hash(const char *name)
{
	return XXH3_64bits(name, strlen(name));
}

enum index_kind { INDEX_FILES, INDEX_JOBS };

static void entry_name(const struct state *state, enum index_kind kind, size_t i, const char **name,
		       uint64_t *hash);

/* Resize to hold `count` names at a load factor of at most 1/2. */
static void index_reserve(struct state *state, struct name_index *index, enum index_kind kind, size_t count)
{
	size_t cap = 16;
	while (cap < count * 2)
		cap *= 2;
	if (cap <= index->cap)
		return;
	uint32_t *old = index->slots;
	size_t old_cap = index->cap;
	index->slots = xcalloc(cap, sizeof(*index->slots));
	index->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i])
			continue;
		const char *name;
		uint64_t hash;
		entry_name(state, kind, old[i] - 1, &name, &hash);
		size_t slot = (size_t)hash & (cap - 1);
		while (index->slots[slot])
			slot = (slot + 1) & (cap - 1);
		index->slots[slot] = old[i];
	}
	free(old);
}

/* The entry named `name` (whose hash is `hash`), or SIZE_MAX. */
static size_t index_find(const struct state *state, const struct name_index *index, enum index_kind kind,
			 const char *name, uint64_t hash)
{
	if (!index->cap)
		return SIZE_MAX;
	for (size_t slot = (size_t)hash & (index->cap - 1);; slot = (slot + 1) & (index->cap - 1)) {
		if (!index->slots[slot])
			return SIZE_MAX;
		const char *other;
		uint64_t other_hash;
		entry_name(state, kind, index->slots[slot] - 1, &other, &other_hash);
		if (other_hash == hash && !strcmp(other, name))
			return index->slots[slot] - 1;
	}
}

/* Add entry `i`, whose name is not indexed yet. */
static void index_add(struct state *state, struct name_index *index, enum index_kind kind, size_t i)
{
	if (i + 1 > UINT32_MAX)
		BUG("more than 4G state records");
	if ((index->count + 1) * 2 > index->cap)
		index_reserve(state, index, kind, index->count + 1);
	const char *name;
	uint64_t hash;
	entry_name(state, kind, i, &name, &hash);
	size_t slot = (size_t)hash & (index->cap - 1);
	while (index->slots[slot])
		slot = (slot + 1) & (index->cap - 1);
	index->slots[slot] = (uint32_t)(i + 1);
	index->count++;
}

/* Field 22 (starttime) of a /proc/PID/stat line, or 0 when the line is cut short. */
static int64_t stat_field_start_time(const char *line)
{
	/* The command name (field 2) may hold spaces and parentheses: skip to the last ')'. */
	const char *p = strrchr(line, ')');
	if (!p)
		return 0;
	p++;
	/* Fields 3.. follow, space-separated; starttime is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return 0;
	}
	return strtoll(p + 1, NULL, 10);
}

/* Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or 0 when unknown. */
static int64_t process_start_time(int64_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	struct strbuf text = STRBUF_INIT;
	struct cp_err ignored = CP_ERR_INIT;
	int64_t start = 0;
	if (read_whole_file(path, &text, &ignored) == 0)
		start = stat_field_start_time(text.buf);
	cp_err_release(&ignored);
	strbuf_release(&text);
	return start;
}

/* A holder is dead only when we can tell: same host and the pid is gone or is another process. */
static bool holder_alive(const struct state *state, const char *host, int64_t pid, int64_t pid_start)
{
	if (!host || strcmp(host, state->host) != 0)
		return true;
	if (pid <= 0)
		return false;
	if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
		return false;
	if (pid_start != 0) {
		int64_t now_start = process_start_time(pid);
		if (now_start != 0 && now_start != pid_start)
			return false;
	}
	return true;
}

/* ---- SQLite access ----------------------------------------------------------- */

/* How to get out of a damaged database: said wherever damage is found. */
#define DAMAGE_WAY_OUT \
	"the state database is damaged; 'cpipe state check' says more, and 'cpipe state repair' makes jobs with a" \
	" damaged record run again. To start afresh, move .cpipe/state.db (and its -wal and -shm files) away:" \
	" the next run adopts only outputs whose job logs show a successful run and runs the rest" \
	" ('cpipe run --rebuild-unknown' runs every job whose outputs have no record)"

static int db_fail_sql(struct state *state, const char *sql, struct cp_err *err)
{
	int code = sqlite3_extended_errcode(state->db);
	const char *hint = "";
	if ((code & 0xff) == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		hint = "; " DAMAGE_WAY_OUT;
	else if (sqlite3_system_errno(state->db) == EFBIG)
		hint = "; the file size limit (ulimit -f) is below what the state database needs";
	cp_err_set(err, NULL, 0, "%s: %s (in SQL: %s)%s", state->db_path, sqlite3_errmsg(state->db), sql, hint);
	return STATE_ERROR;
}

static int db_fail(struct state *state, enum statement id, struct cp_err *err)
{
	return db_fail_sql(state, statement_sql[id], err);
}

/* The prepared statement `id`, reset and unbound; NULL (err set) when it cannot be prepared. */
static sqlite3_stmt *statement(struct state *state, enum statement id, struct cp_err *err)
{
	assert(id < STMT_COUNT);
	if (!state->statements[id]) {
		if (sqlite3_prepare_v3(state->db, statement_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
				       &state->statements[id], NULL) != SQLITE_OK) {
			db_fail(state, id, err);
			return NULL;
		}
	}
	return state->statements[id];
}

static void statement_done(sqlite3_stmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

/* Step a statement that returns no rows (or whose rows are ignored) to completion, then reset it. */
static int statement_run(struct state *state, enum statement id, sqlite3_stmt *stmt, struct cp_err *err)
{
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		db_fail(state, id, err);
		statement_done(stmt);
		return STATE_ERROR;
	}
	statement_done(stmt);
	return 0;
}

/* Run a statement with no parameters. */
static int statement_exec(struct state *state, enum statement id, struct cp_err *err)
{
	sqlite3_stmt *stmt = statement(state, id, err);
	if (!stmt)
		return STATE_ERROR;
	return statement_run(state, id, stmt, err);
}

static void bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
	sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC); /* NULL binds NULL */
}

static void bind_int64(sqlite3_stmt *stmt, int index, int64_t value)
{
	sqlite3_bind_int64(stmt, index, (sqlite3_int64)value);
}

static void bind_hash(sqlite3_stmt *stmt, int index, uint64_t value)
{
	sqlite3_bind_int64(stmt, index, (sqlite3_int64)value);
}

static char *column_strdup(sqlite3_stmt *stmt, int column)
{
	const unsigned char *text = sqlite3_column_text(stmt, column);
	return text ? xstrdup((const char *)text) : NULL;
}

/* ---- FILES BLOB: a job's recorded files in its row ---------------------------- */

/*
 * The files a job's last successful run read and wrote are one BLOB in its
 * `jobs` row (the `files` column; NULL: none), so loading a job reads one
 * row. Bytes, never host-order words, so the format is endian-independent:
 *
 *   blob   = version:u8 input_count:uv output_count:uv file{input_count + output_count}
 *   file   = file_id:uv flags:u8 [size:uv mtime_ns:u64le]   (when flags has EXISTS)
 *            [hash:u64le]                                   (when flags has HASHED)
 *   flags  = FILE_EXISTS (1) | FILE_HASHED (2, only with FILE_EXISTS); no other bit
 *
 * version is FILES_BLOB_VERSION; the inputs come first. file_id is the row id
 * of the path in `files`. `uv` is an unsigned LEB128 varint (7 bits a byte,
 * low group first, bit 7 set on all but the last byte, at most 10 bytes);
 * u64le is 8 bytes, least significant first. Signed values (size, mtime_ns)
 * are stored as their two's-complement uint64. Fields left out read as 0
 * (state.h: a missing file's signature is all 0, an unhashed one's hash too).
 * A typical file takes about 20 bytes. The decoder accepts only an exact blob
 * (known version, complete files, known flags and file ids, no byte left
 * over), so a truncated or garbled blob is an error naming the job, never a
 * crash or a read past its end.
 */
enum { FILES_BLOB_VERSION = 1, FILE_EXISTS = 1, FILE_HASHED = 2 };

static void blob_add_uvarint(struct strbuf *blob, uint64_t value)
{
	unsigned char bytes[10];
	size_t n = 0;
	do {
		bytes[n] = (unsigned char)(value & 0x7f);
		value >>= 7;
		if (value)
			bytes[n] |= 0x80;
		n++;
	} while (value);
	strbuf_add(blob, bytes, n);
}

static void blob_add_u64le(struct strbuf *blob, uint64_t value)
{
	unsigned char bytes[8];
	for (size_t i = 0; i < 8; i++)
		bytes[i] = (unsigned char)(value >> (8 * i));
	strbuf_add(blob, bytes, sizeof(bytes));
}

/* Start a blob (`blob` reset first) for that many inputs then outputs, added next with files_blob_add. */
static void files_blob_start(struct strbuf *blob, size_t input_count, size_t output_count)
{
	strbuf_reset(blob);
	strbuf_addch(blob, FILES_BLOB_VERSION);
	blob_add_uvarint(blob, input_count);
	blob_add_uvarint(blob, output_count);
}

static void files_blob_add(struct strbuf *blob, int64_t file_id, const struct file_signature *sig)
{
	blob_add_uvarint(blob, (uint64_t)file_id);
	unsigned char flags = 0;
	if (sig->exists)
		flags = sig->hashed ? FILE_EXISTS | FILE_HASHED : FILE_EXISTS;
	strbuf_addch(blob, (char)flags);
	if (flags & FILE_EXISTS) {
		blob_add_uvarint(blob, (uint64_t)sig->size);
		blob_add_u64le(blob, (uint64_t)sig->mtime_ns);
	}
	if (flags & FILE_HASHED)
		blob_add_u64le(blob, sig->hash);
}

/* A blob being decoded; `problem` says what was wrong with it (NULL: nothing yet). */
struct files_blob_reader {
	const unsigned char *start, *at, *end;
	const char *problem;
};

static bool blob_fail(struct files_blob_reader *reader, const char *problem)
{
	reader->problem = problem;
	return false;
}

static bool blob_read_u8(struct files_blob_reader *reader, unsigned *out)
{
	if (reader->at == reader->end)
		return blob_fail(reader, "truncated");
	*out = *reader->at++;
	return true;
}

static bool blob_read_uvarint(struct files_blob_reader *reader, uint64_t *out)
{
	uint64_t value = 0;
	for (unsigned shift = 0;; shift += 7) {
		unsigned byte;
		if (!blob_read_u8(reader, &byte))
			return false;
		/* The tenth byte holds the 64th bit only. */
		if (shift == 63 && byte > 1)
			return blob_fail(reader, "varint overflows 64 bits");
		value |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80))
			break;
	}
	*out = value;
	return true;
}

static bool blob_read_u64le(struct files_blob_reader *reader, uint64_t *out)
{
	if (reader->end - reader->at < 8)
		return blob_fail(reader, "truncated");
	uint64_t value = 0;
	for (size_t i = 0; i < 8; i++)
		value |= (uint64_t)reader->at[i] << (8 * i);
	reader->at += 8;
	*out = value;
	return true;
}

/* Begin decoding `size` bytes at `data`: check the version and read the counts. */
static bool files_blob_open(struct files_blob_reader *reader, const void *data, size_t size, size_t *input_count,
			    size_t *output_count)
{
	reader->start = reader->at = data;
	reader->end = reader->start + size;
	reader->problem = NULL;
	unsigned version;
	uint64_t inputs, outputs;
	if (!blob_read_u8(reader, &version))
		return false;
	if (version != FILES_BLOB_VERSION)
		return blob_fail(reader, "unknown encoding version");
	if (!blob_read_uvarint(reader, &inputs) || !blob_read_uvarint(reader, &outputs))
		return false;
	/* A file takes at least 2 bytes: a damaged count must not size an allocation. */
	size_t left = (size_t)(reader->end - reader->at);
	if (inputs > left / 2 || outputs > left / 2 - inputs)
		return blob_fail(reader, "more files than bytes");
	*input_count = (size_t)inputs;
	*output_count = (size_t)outputs;
	return true;
}

static bool files_blob_next(struct files_blob_reader *reader, int64_t *file_id, struct file_signature *sig)
{
	uint64_t id, size = 0, mtime_ns = 0, hash = 0;
	unsigned flags;
	if (!blob_read_uvarint(reader, &id) || !blob_read_u8(reader, &flags))
		return false;
	if (flags & ~(unsigned)(FILE_EXISTS | FILE_HASHED) || flags == FILE_HASHED)
		return blob_fail(reader, "bad flags");
	if (flags & FILE_EXISTS && (!blob_read_uvarint(reader, &size) || !blob_read_u64le(reader, &mtime_ns)))
		return false;
	if (flags & FILE_HASHED && !blob_read_u64le(reader, &hash))
		return false;
	*file_id = (int64_t)id;
	*sig = (struct file_signature){flags & FILE_EXISTS, (int64_t)size, (int64_t)mtime_ns, hash,
				       flags & FILE_HASHED};
	return true;
}

/* After the last file: nothing may be left. */
static bool files_blob_close(struct files_blob_reader *reader)
{
	return reader->at == reader->end || blob_fail(reader, "bytes after the last file");
}

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
	out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
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
	enum { CHUNK = 1 << 20 };
	char *buf = xmalloc(CHUNK);
	XXH3_state_t *xs = XXH3_createState();
	if (!xs)
		BUG("XXH3_createState failed");
	XXH3_64bits_reset(xs);
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
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

static void entry_name(const struct state *state, enum index_kind kind, size_t i, const char **name,
		       uint64_t *hash)
{
	if (kind == INDEX_FILES) {
		*name = state->files[i].path;
		*hash = state->files[i].path_hash;
	} else {
		*name = state->jobs[i].job_id;
		*hash = state->jobs[i].job_id_hash;
	}
}

/* Add a path known not to be indexed yet. */
static size_t file_add(struct state *state, const char *path, uint64_t hash)
{
	ALLOC_GROW(state->files, state->file_count + 1, state->file_cap);
	struct file_entry *file = &state->files[state->file_count];
	memset(file, 0, sizeof(*file));
	file->path = pool_add(&state->pool, path);
	file->path_hash = hash;
	index_add(state, &state->file_index, INDEX_FILES, state->file_count);
	return state->file_count++;
}

static size_t file_intern(struct state *state, const char *path)
{
	uint64_t hash = name_hash(path);
	size_t index = index_find(state, &state->file_index, INDEX_FILES, path, hash);
	return index != SIZE_MAX ? index : file_add(state, path, hash);
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

/* Put a hashed signature in the cache (and the remembered stat). */
static void file_learn(struct state *state, size_t index, const struct file_signature *sig)
{
	struct file_entry *file = &state->files[index];
	file->seen = *sig;
	file->seen_valid = true;
	if (!sig->exists || !sig->hashed)
		return;
	if (file->cache_valid && file->cache_size == sig->size && file->cache_mtime_ns == sig->mtime_ns &&
	    file->cache_hash == sig->hash)
		return;
	file->cache_valid = true;
	file->cache_size = sig->size;
	file->cache_mtime_ns = sig->mtime_ns;
	file->cache_hash = sig->hash;
	file_mark_dirty(state, index);
}

/* The file's remembered signature (stat once per handle), hash not necessarily filled. */
static int file_seen(struct state *state, size_t index, const struct file_signature **out, struct cp_err *err)
{
	struct file_entry *file = &state->files[index];
	if (!file->seen_valid) {
		state->stats.stat_calls++;
		if (stat_signature(file->path, &file->seen, err) < 0)
			return STATE_ERROR;
		file->seen_valid = true;
	}
	*out = &file->seen;
	return 0;
}

/*
 * Fill the hash of the remembered signature: from the cache when size+mtime
 * match, else by reading the file (which also refreshes size+mtime).
 */
static int file_hash_seen(struct state *state, size_t index, struct cp_err *err)
{
	struct file_entry *file = &state->files[index];
	assert(file->seen_valid);
	if (!file->seen.exists || file->seen.hashed)
		return 0;
	/* A directory never has a cached hash: hash_file finds out and signs it by existence. */
	if (file->cache_valid && file->cache_size == file->seen.size && file->cache_mtime_ns == file->seen.mtime_ns) {
		file->seen.hash = file->cache_hash;
		file->seen.hashed = true;
		return 0;
	}
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
	state->files[index].seen_valid = false;
	const struct file_signature *seen;
	if (file_seen(state, index, &seen, err) < 0 || file_hash_seen(state, index, err) < 0)
		return STATE_ERROR;
	*out = state->files[index].seen;
	return 0;
}

void state_refresh(struct state *state)
{
	for (size_t i = 0; i < state->file_count; i++)
		state->files[i].seen_valid = false;
}

/* state_stat_paths: a thread is worth starting for this many stat calls (about 1 µs each when cached). */
enum { STAT_PATHS_PER_THREAD = 256, STAT_AUTO_THREADS_MAX = 8, STAT_THREADS_MAX = 64, STAT_CHUNK = 64 };

/*
 * The stat calls of one state_stat_paths, shared by its threads: each takes
 * the next STAT_CHUNK items until none are left. Threads only read `paths`
 * and write their own items' results and errors.
 */
struct stat_batch {
	const char **paths;
	struct file_signature *results;
	int *errors; /* 0 or the errno of a stat failure */
	size_t count;
	atomic_size_t next;
};

static void *stat_batch_run(void *arg)
{
	struct stat_batch *batch = arg;
	for (;;) {
		size_t from = atomic_fetch_add(&batch->next, STAT_CHUNK);
		if (from >= batch->count)
			return NULL;
		size_t to = batch->count - from < STAT_CHUNK ? batch->count : from + STAT_CHUNK;
		for (size_t i = from; i < to; i++)
			batch->errors[i] = stat_path(batch->paths[i], &batch->results[i]);
	}
}

/* How many threads (the caller's included) to use for `work` stat calls. */
static size_t stat_thread_count(unsigned wanted, size_t work)
{
	size_t threads = wanted;
	if (threads == 0) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		threads = online < 1 ? 1 : online > STAT_AUTO_THREADS_MAX ? STAT_AUTO_THREADS_MAX : (size_t)online;
	}
	if (threads > STAT_THREADS_MAX)
		threads = STAT_THREADS_MAX;
	size_t useful = work / STAT_PATHS_PER_THREAD;
	if (threads > useful)
		threads = useful;
	return threads ? threads : 1;
}

/* Run the batch in `threads` threads, this one included; work a thread could not start for is done here. */
static void stat_batch_run_threads(struct stat_batch *batch, size_t threads)
{
	pthread_t *ids = xcalloc(threads, sizeof(*ids));
	bool *started = xcalloc(threads, sizeof(*started));
	for (size_t k = 1; k < threads; k++)
		started[k] = pthread_create(&ids[k], NULL, stat_batch_run, batch) == 0;
	stat_batch_run(batch);
	for (size_t k = 1; k < threads; k++)
		if (started[k])
			pthread_join(ids[k], NULL);
	free(started);
	free(ids);
}

/*
 * Stat the files queued[0..n) in threads and remember the results. A failure
 * leaves its file unremembered; with `err`, the first one is reported.
 */
static int stat_queued_files(struct state *state, const size_t *queued, size_t n, unsigned threads,
			     struct cp_err *err)
{
	struct stat_batch batch = {
		.paths = xmalloc((n + 1) * sizeof(*batch.paths)),
		.results = xmalloc((n + 1) * sizeof(*batch.results)),
		.errors = xmalloc((n + 1) * sizeof(*batch.errors)),
		.count = n,
	};
	atomic_init(&batch.next, 0);
	for (size_t i = 0; i < n; i++)
		batch.paths[i] = state->files[queued[i]].path;
	stat_batch_run_threads(&batch, stat_thread_count(threads, n));

	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct file_entry *file = &state->files[queued[i]];
		file->seen = batch.results[i];
		file->seen_valid = !batch.errors[i];
		if (batch.errors[i] && rc == 0 && err)
			rc = stat_failed(file->path, batch.errors[i], err);
	}
	state->stats.stat_calls += n;
	free(batch.paths);
	free(batch.results);
	free(batch.errors);
	return rc;
}

int state_stat_paths(struct state *state, const char *const *paths, size_t count, unsigned threads,
		     uint32_t *ids, struct cp_err *err)
{
	/*
	 * Interning grows the file index, which is not thread safe: it is done
	 * here first. A queued file is marked seen at once so that a duplicate
	 * is not queued twice; its result is filled in before this returns.
	 */
	size_t *queued = xmalloc((count + 1) * sizeof(*queued));
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		size_t index = file_intern(state, paths[i]);
		if (ids)
			ids[i] = (uint32_t)index;
		if (state->files[index].seen_valid)
			continue;
		state->files[index].seen_valid = true;
		queued[n++] = index;
	}
	int rc = stat_queued_files(state, queued, n, threads, err);
	free(queued);
	return rc;
}

void state_stat_recorded(struct state *state, unsigned threads)
{
	size_t *queued = xmalloc((state->file_count + 1) * sizeof(*queued));
	size_t n = 0;
	for (size_t i = 0; i < state->file_count; i++)
		if (!state->files[i].seen_valid)
			queued[n++] = i;
	stat_queued_files(state, queued, n, threads, NULL);
	free(queued);
}

/* Run a file row statement: ?1 is bound by the caller, ?2..?4 get the file's hash cache. */
static int file_row_write(struct state *state, enum statement id, sqlite3_stmt *stmt, const struct file_entry *file,
			  struct cp_err *err)
{
	bind_int64(stmt, 2, file->cache_valid ? file->cache_size : -1);
	bind_int64(stmt, 3, file->cache_valid ? file->cache_mtime_ns : -1);
	if (file->cache_valid)
		bind_hash(stmt, 4, file->cache_hash);
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
static int file_store(struct state *state, size_t index, struct cp_err *err)
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

static int flush_dirty_files(struct state *state, struct cp_err *err)
{
	while (state->dirty_count > 0) {
		size_t index = state->dirty_files[state->dirty_count - 1];
		if (state->files[index].dirty && file_store(state, index, err) < 0)
			return STATE_ERROR;
		state->dirty_count--;
	}
	return 0;
}

/* ---- Transactions -------------------------------------------------------- */

/* Writes join the caller's explicit transaction, or run in their own. */
static int write_begin(struct state *state, struct cp_err *err)
{
	if (state->transaction_depth > 0)
		return 0;
	return statement_exec(state, STMT_BEGIN_WRITE, err);
}

static void rollback_quietly(struct state *state)
{
	struct cp_err ignored = CP_ERR_INIT;
	if (sqlite3_get_autocommit(state->db) == 0)
		statement_exec(state, STMT_ROLLBACK, &ignored);
	cp_err_release(&ignored);
}

static int write_end(struct state *state, int rc, struct cp_err *err)
{
	if (state->transaction_depth > 0)
		return rc;
	if (rc < 0) {
		rollback_quietly(state);
		return rc;
	}
	if (flush_dirty_files(state, err) < 0) {
		rollback_quietly(state);
		return STATE_ERROR;
	}
	/*
	 * A rollback journal's commit waits for readers to leave: keep waiting
	 * (each try waits the busy timeout) rather than lose what was written.
	 */
	while (statement_exec(state, STMT_COMMIT, err) < 0) {
		if ((sqlite3_extended_errcode(state->db) & 0xff) != SQLITE_BUSY) {
			rollback_quietly(state);
			return STATE_ERROR;
		}
		cp_err_release(err);
	}
	state->stats.transactions++;
	return 0;
}

int state_begin(struct state *state, struct cp_err *err)
{
	if (state->transaction_depth == 0 && statement_exec(state, STMT_BEGIN_WRITE, err) < 0)
		return (sqlite3_extended_errcode(state->db) & 0xff) == SQLITE_BUSY ? STATE_BUSY : STATE_ERROR;
	state->transaction_depth++;
	return 0;
}

void state_set_lock_timeout(struct state *state, int milliseconds)
{
	sqlite3_busy_timeout(state->db, milliseconds);
}

int state_commit(struct state *state, struct cp_err *err)
{
	if (state->transaction_depth <= 0)
		BUG("state_commit without state_begin");
	if (--state->transaction_depth > 0)
		return 0;
	return write_end(state, 0, err);
}

void state_rollback(struct state *state)
{
	if (state->transaction_depth == 0)
		return;
	state->transaction_depth = 0;
	rollback_quietly(state);
}

int state_flush(struct state *state, struct cp_err *err)
{
	if (state->dirty_count == 0)
		return 0;
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	return write_end(state, flush_dirty_files(state, err), err);
}

/* ---- Jobs in memory ------------------------------------------------------- */

static void job_clear_files(struct job_entry *job)
{
	if (job->files_owned)
		free(job->files);
	job->files = NULL;
	job->files_owned = false;
	job->input_count = 0;
	job->output_count = 0;
}

static struct job_entry *job_find(const struct state *state, const char *job_id)
{
	size_t index = index_find(state, &state->job_index, INDEX_JOBS, job_id, name_hash(job_id));
	if (index == SIZE_MAX || !state->jobs[index].present)
		return NULL;
	return &state->jobs[index];
}

static size_t job_add(struct state *state, const char *job_id, uint64_t hash);

static size_t job_intern(struct state *state, const char *job_id)
{
	uint64_t hash = name_hash(job_id);
	size_t index = index_find(state, &state->job_index, INDEX_JOBS, job_id, hash);
	return index != SIZE_MAX ? index : job_add(state, job_id, hash);
}

/* Add a job id known not to be indexed yet. */
static size_t job_add(struct state *state, const char *job_id, uint64_t hash)
{
	ALLOC_GROW(state->jobs, state->job_count + 1, state->job_cap);
	struct job_entry *job = &state->jobs[state->job_count];
	memset(job, 0, sizeof(*job));
	job->job_id = pool_add(&state->pool, job_id);
	job->job_id_hash = hash;
	index_add(state, &state->job_index, INDEX_JOBS, state->job_count);
	return state->job_count++;
}

/*
 * Point a job string at a pooled copy of the column (an old copy just stays in
 * the pool). `recent` (may be NULL) remembers the last copy made for this
 * column: host and run id repeat from job to job, so they are stored once.
 */
static void job_string(struct state *state, const char **slot, sqlite3_stmt *stmt, int column, const char **recent)
{
	const char *text = (const char *)sqlite3_column_text(stmt, column);
	if (!text) {
		*slot = NULL;
		return;
	}
	if (*slot && !strcmp(text, *slot))
		return;
	if (recent && *recent && !strcmp(text, *recent)) {
		*slot = *recent;
		return;
	}
	*slot = pool_add(&state->pool, text);
	if (recent)
		*recent = *slot;
}

static enum job_outcome outcome_from_text(const char *text)
{
	if (!text)
		return OUTCOME_NONE;
	if (!strcmp(text, "done"))
		return OUTCOME_DONE;
	if (!strcmp(text, "failed"))
		return OUTCOME_FAILED;
	if (!strcmp(text, "interrupted"))
		return OUTCOME_INTERRUPTED;
	return OUTCOME_NONE;
}

/* Fill a job's row fields from a row of JOB_COLUMNS (files untouched). */
static void job_from_row(struct state *state, struct job_entry *job, sqlite3_stmt *stmt)
{
	job->present = true;
	job->outcome = outcome_from_text((const char *)sqlite3_column_text(stmt, 1));
	job->recorded = sqlite3_column_int(stmt, 2) != 0;
	job->adopted = sqlite3_column_int(stmt, 3) != 0;
	job->definition_hash = (uint64_t)sqlite3_column_int64(stmt, 4);
	job->input_set_hash = (uint64_t)sqlite3_column_int64(stmt, 5);
	job->exit_code = sqlite3_column_int(stmt, 6);
	job->start_ns = sqlite3_column_int64(stmt, 7);
	job->end_ns = sqlite3_column_int64(stmt, 8);
	job_string(state, &job->host, stmt, 9, &state->recent_host);
	job->pid = sqlite3_column_int64(stmt, 10);
	job_string(state, &job->run_id, stmt, 11, &state->recent_run);
	job_string(state, &job->log_path, stmt, 12, NULL);
	job_string(state, &job->holder_run, stmt, 13, &state->recent_holder_run);
	/* Few jobs are claimed: the other claim columns are read only when one is. */
	if (!job->holder_run) {
		job->holder_host = job->holder_log = NULL;
		job->holder_pid = job->holder_pid_start = 0;
		return;
	}
	job_string(state, &job->holder_host, stmt, 14, &state->recent_host);
	job->holder_pid = sqlite3_column_int64(stmt, 15);
	job->holder_pid_start = sqlite3_column_int64(stmt, 16);
	job_string(state, &job->holder_log, stmt, 17, NULL);
}

/* Re-read one job's row after a write (files untouched); a missing row forgets the job. */
static int job_reload(struct state *state, const char *job_id, struct cp_err *err)
{
	sqlite3_stmt *stmt = statement(state, STMT_JOB_SELECT, err);
	if (!stmt)
		return STATE_ERROR;
	bind_text(stmt, 1, job_id);
	int rc = sqlite3_step(stmt);
	size_t index = job_intern(state, job_id);
	struct job_entry *job = &state->jobs[index];
	if (rc == SQLITE_ROW) {
		job_from_row(state, job, stmt);
	} else if (rc == SQLITE_DONE) {
		job->present = false;
		job_clear_files(job);
	} else {
		db_fail(state, STMT_JOB_SELECT, err);
		statement_done(stmt);
		return STATE_ERROR;
	}
	statement_done(stmt);
	return 0;
}

static int compare_job_files(const void *a, const void *b)
{
	const struct job_file *x = a, *y = b;
	return x->file < y->file ? -1 : x->file > y->file;
}

/* Sort a part and drop duplicate files (the last one wins); returns the new count. */
static size_t job_files_normalize(struct job_file *part, size_t count)
{
	if (count < 2)
		return count;
	bool sorted = true;
	for (size_t i = 1; i < count && sorted; i++)
		sorted = part[i - 1].file < part[i].file;
	if (sorted)
		return count;
	/* A stable order is not needed: duplicates carry the same path, and either signature will do. */
	qsort(part, count, sizeof(*part), compare_job_files);
	size_t out = 0;
	for (size_t i = 0; i < count; i++) {
		if (out > 0 && part[out - 1].file == part[i].file)
			part[out - 1] = part[i];
		else
			part[out++] = part[i];
	}
	return out;
}

/* The position of `file` in a sorted part, or SIZE_MAX. */
static size_t job_files_find(const struct job_file *part, size_t count, size_t file_index)
{
	uint32_t file = (uint32_t)file_index;
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (part[mid].file == file)
			return mid;
		if (part[mid].file < file)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

/* ---- Open, load, close ------------------------------------------------------ */

static int exec_sql(struct state *state, const char *sql, struct cp_err *err)
{
	if (sqlite3_exec(state->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail_sql(state, sql, err);
	return 0;
}

static int pragma_int(struct state *state, const char *sql, int *out, struct cp_err *err)
{
	sqlite3_stmt *stmt;
	if (sqlite3_prepare_v2(state->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return db_fail_sql(state, sql, err);
	int rc = sqlite3_step(stmt);
	*out = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail_sql(state, sql, err);
	return 0;
}

/* Filesystems where SQLite's WAL (shared memory between processes) must not be used. */
static bool filesystem_allows_wal(const char *dir)
{
	struct statfs fs;
	if (statfs(dir, &fs) != 0)
		return true;
	switch ((unsigned long)fs.f_type) {
	case 0x6969UL:     /* NFS */
	case 0x0BD00BD0UL: /* Lustre */
	case 0x47504653UL: /* GPFS */
	case 0x517BUL:     /* SMB */
	case 0xFF534D42UL: /* CIFS */
	case 0xFE534D42UL: /* SMB2 */
	case 0x19830326UL: /* BeeGFS */
	case 0x00C36400UL: /* CephFS */
	case 0x65735546UL: /* FUSE (sshfs and others) */
		return false;
	default:
		return true;
	}
}

/* WAL when allowed and SQLite agrees; otherwise the rollback journal, silently. */
static int setup_journal(struct state *state, const char *dir, struct cp_err *err)
{
	bool wal = false;
	if (filesystem_allows_wal(dir)) {
		sqlite3_stmt *stmt;
		static const char wal_sql[] = "PRAGMA journal_mode = WAL";
		if (sqlite3_prepare_v2(state->db, wal_sql, -1, &stmt, NULL) == SQLITE_OK) {
			if (sqlite3_step(stmt) == SQLITE_ROW) {
				const char *mode = (const char *)sqlite3_column_text(stmt, 0);
				wal = mode && !strcmp(mode, "wal");
			}
			sqlite3_finalize(stmt);
		}
	}
	if (!wal) {
		/* Leaving WAL needs exclusive access; if another process has it open, keep what it has. */
		sqlite3_exec(state->db, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
		sqlite3_stmt *stmt;
		if (sqlite3_prepare_v2(state->db, "PRAGMA journal_mode", -1, &stmt, NULL) == SQLITE_OK) {
			if (sqlite3_step(stmt) == SQLITE_ROW) {
				const char *mode = (const char *)sqlite3_column_text(stmt, 0);
				wal = mode && !strcmp(mode, "wal");
			}
			sqlite3_finalize(stmt);
		}
	}
	state->stats.wal = wal;
	/* WAL with NORMAL is durable across application crashes; a rollback journal wants FULL. */
	if (exec_sql(state, wal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL", err) < 0)
		return STATE_ERROR;
	/*
	 * Reads go through a memory map (no copy into the page cache, no malloc per page); the
	 * load scans every page once, so a small page cache suffices until it is done (see load).
	 */
	if (exec_sql(state, "PRAGMA mmap_size = 0", err) < 0)
		return STATE_ERROR;
	return exec_sql(state, "PRAGMA cache_size = -1024", err);
}

static const char migrate_update_sql[] = "UPDATE jobs SET files = ?2 WHERE id = ?1";

/*
 * Migration 2: write a job's blob from its files encoded so far (`entries`,
 * counts[0] inputs then counts[1] outputs), then empty them for the next job.
 */
static int migrate_write_blob(struct state *state, sqlite3_stmt *update, int64_t job_id, size_t counts[2],
			      struct strbuf *entries, struct cp_err *err)
{
	if (counts[0] + counts[1] == 0)
		return 0;
	struct strbuf blob = STRBUF_INIT;
	files_blob_start(&blob, counts[0], counts[1]);
	strbuf_add(&blob, entries->buf, entries->len);
	bind_int64(update, 1, job_id);
	sqlite3_bind_blob(update, 2, blob.buf, (int)blob.len, SQLITE_STATIC);
	int rc = sqlite3_step(update);
	statement_done(update);
	strbuf_release(&blob);
	strbuf_reset(entries);
	counts[0] = counts[1] = 0;
	return rc == SQLITE_DONE ? 0 : db_fail_sql(state, migrate_update_sql, err);
}

/*
 * Migration 2's step: encode each job's job_files rows (inputs first, in file
 * id order) into its `files` blob, then drop job_files. A row naming a file
 * with no `files` row was ignored by version 1's load, so it is left out.
 */
static int migrate_job_files_to_blobs(struct state *state, struct cp_err *err)
{
	static const char select_sql[] =
		"SELECT job, role, file, present, size, mtime_ns, hash, hashed FROM job_files"
		" WHERE file IN (SELECT id FROM files) ORDER BY job, role, file";
	sqlite3_stmt *select = NULL, *update = NULL;
	if (sqlite3_prepare_v2(state->db, select_sql, -1, &select, NULL) != SQLITE_OK)
		return db_fail_sql(state, select_sql, err);
	if (sqlite3_prepare_v2(state->db, migrate_update_sql, -1, &update, NULL) != SQLITE_OK) {
		sqlite3_finalize(select);
		return db_fail_sql(state, migrate_update_sql, err);
	}
	struct strbuf entries = STRBUF_INIT;
	size_t counts[2] = {0, 0};
	int64_t job = 0;
	int step = SQLITE_DONE, rc = 0;
	while (rc == 0 && (step = sqlite3_step(select)) == SQLITE_ROW) {
		int64_t row_job = sqlite3_column_int64(select, 0);
		if (row_job != job)
			rc = migrate_write_blob(state, update, job, counts, &entries, err);
		job = row_job;
		struct file_signature sig = {
			.exists = sqlite3_column_int(select, 3) != 0,
			.size = sqlite3_column_int64(select, 4),
			.mtime_ns = sqlite3_column_int64(select, 5),
			.hash = (uint64_t)sqlite3_column_int64(select, 6),
			.hashed = sqlite3_column_int(select, 7) != 0,
		};
		files_blob_add(&entries, sqlite3_column_int64(select, 2), &sig);
		counts[sqlite3_column_int(select, 1) == 0 ? 0 : 1]++;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_fail_sql(state, select_sql, err);
	if (rc == 0)
		rc = migrate_write_blob(state, update, job, counts, &entries, err);
	sqlite3_finalize(select);
	sqlite3_finalize(update);
	strbuf_release(&entries);
	return rc < 0 ? STATE_ERROR : exec_sql(state, "DROP TABLE job_files", err);
}

static int migrate(struct state *state, struct cp_err *err)
{
	int version;
	if (pragma_int(state, "PRAGMA user_version", &version, err) < 0)
		return STATE_ERROR;
	if (version > STATE_SCHEMA_VERSION) {
		cp_err_set(err, NULL, 0, "%s: schema version %d is newer than this cpipe understands (%d)",
			   state->db_path, version, STATE_SCHEMA_VERSION);
		return STATE_ERROR;
	}
	if (version == STATE_SCHEMA_VERSION)
		goto done;
	if (statement_exec(state, STMT_BEGIN_WRITE, err) < 0)
		return STATE_ERROR;
	/* Another process may have migrated while we waited for the lock. */
	if (pragma_int(state, "PRAGMA user_version", &version, err) < 0)
		goto fail;
	for (; version < STATE_SCHEMA_VERSION; version++) {
		const struct migration *migration = &migrations[version];
		if ((migration->sql && exec_sql(state, migration->sql, err) < 0) ||
		    (migration->step && migration->step(state, err) < 0))
			goto fail;
		char *sql = xasprintf("PRAGMA user_version = %d", version + 1);
		int rc = exec_sql(state, sql, err);
		free(sql);
		if (rc < 0)
			goto fail;
	}
	if (statement_exec(state, STMT_COMMIT, err) < 0)
		goto fail;
done:
	state->stats.schema_version = STATE_SCHEMA_VERSION;
	return 0;
fail:
	rollback_quietly(state);
	return STATE_ERROR;
}

/* A lookup table from database ids (1..max) to entry indexes, all SIZE_MAX. */
static size_t *id_table(int64_t max_id)
{
	size_t count = max_id > 0 ? (size_t)max_id + 1 : 1;
	size_t *table = xmalloc(count * sizeof(*table));
	for (size_t i = 0; i < count; i++)
		table[i] = SIZE_MAX;
	return table;
}

/*
 * Decode the `files` blob of a loaded job row into `*all` (growing it) from
 * `*used` on, mapping file ids to file indexes. A damaged blob fails, naming the job.
 */
static int load_job_files(struct job_entry *job, sqlite3_stmt *stmt, const size_t *file_by_id,
			  int64_t max_file_id, struct job_file **all, size_t *used, size_t *all_cap, struct cp_err *err)
{
	const void *data = sqlite3_column_blob(stmt, JOB_COLUMN_COUNT);
	size_t size = (size_t)sqlite3_column_bytes(stmt, JOB_COLUMN_COUNT);
	if (!data)
		return 0; /* NULL: no recorded files */
	struct files_blob_reader reader;
	size_t inputs, outputs;
	if (!files_blob_open(&reader, data, size, &inputs, &outputs))
		goto damaged;
	ALLOC_GROW(*all, *used + inputs + outputs, *all_cap);
	for (size_t i = 0; i < inputs + outputs; i++) {
		int64_t id;
		struct file_signature sig;
		if (!files_blob_next(&reader, &id, &sig))
			goto damaged;
		if (id <= 0 || id > max_file_id || file_by_id[id] == SIZE_MAX) {
			blob_fail(&reader, "unknown file id");
			goto damaged;
		}
		job_file_set(&(*all)[(*used)++], file_by_id[id], &sig);
	}
	if (!files_blob_close(&reader))
		goto damaged;
	job->input_count = inputs;
	job->output_count = outputs;
	return 0;
damaged:
	cp_err_set(err, NULL, 0, "job %s: damaged list of recorded files: %s (at byte %zu of %zu)", job->job_id,
		   reader.problem, (size_t)(reader.at - reader.start), size);
	return STATE_ERROR;
}

/* Fill the in-memory records with one query per table (after one query for their sizes). */
static int load(struct state *state, struct cp_err *err)
{
	size_t *file_by_id = NULL;
	int64_t max_file_id = 0, max_job_id = 0;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt;

	if (statement_exec(state, STMT_BEGIN_READ, err) < 0)
		return STATE_ERROR;

	/* Sizes first, so arrays and indexes are allocated once. */
	if (!(stmt = statement(state, STMT_LOAD_SIZES, err)))
		goto out;
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		db_fail(state, STMT_LOAD_SIZES, err);
		statement_done(stmt);
		goto out;
	}
	max_file_id = sqlite3_column_int64(stmt, 0);
	max_job_id = sqlite3_column_int64(stmt, 1);
	statement_done(stmt);
	size_t file_rows = max_file_id > 0 ? (size_t)max_file_id : 0;
	size_t job_rows = max_job_id > 0 ? (size_t)max_job_id : 0;
	ALLOC_GROW(state->files, file_rows, state->file_cap);
	index_reserve(state, &state->file_index, INDEX_FILES, file_rows);
	ALLOC_GROW(state->jobs, job_rows, state->job_cap);
	index_reserve(state, &state->job_index, INDEX_JOBS, job_rows);
	file_by_id = id_table(max_file_id);

	if (!(stmt = statement(state, STMT_LOAD_FILES, err)))
		goto out;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(stmt, 0);
		const char *path = (const char *)sqlite3_column_text(stmt, 1);
		size_t index = file_add(state, path, name_hash(path));
		struct file_entry *file = &state->files[index];
		file->db_id = id;
		if (sqlite3_column_type(stmt, 4) != SQLITE_NULL) {
			file->cache_valid = true;
			file->cache_size = sqlite3_column_int64(stmt, 2);
			file->cache_mtime_ns = sqlite3_column_int64(stmt, 3);
			file->cache_hash = (uint64_t)sqlite3_column_int64(stmt, 4);
		}
		if (id > 0 && id <= max_file_id)
			file_by_id[id] = index;
	}
	statement_done(stmt);
	if (rc != SQLITE_DONE) {
		rc = db_fail(state, STMT_LOAD_FILES, err);
		goto out;
	}

	if (!(stmt = statement(state, STMT_LOAD_JOBS, err))) {
		rc = STATE_ERROR;
		goto out;
	}
	/* Every job's files go into one array; until it stops growing, a job's `files` is its offset into it. */
	struct job_file *all = NULL;
	size_t used = 0, all_cap = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		/* Names are UNIQUE in the table: no lookup needed. */
		const char *name = (const char *)sqlite3_column_text(stmt, 0);
		size_t index = job_add(state, name, name_hash(name)); /* may grow state->jobs */
		struct job_entry *job = &state->jobs[index];
		job_from_row(state, job, stmt);
		job->files = (struct job_file *)(uintptr_t)used;
		size_t before = used;
		if (load_job_files(job, stmt, file_by_id, max_file_id, &all, &used, &all_cap, err) < 0) {
			if (!state->check_mode) {
				char *what = xstrdup(err->message);
				cp_err_set(err, NULL, 0, "%s: %s; %s", state->db_path, what, DAMAGE_WAY_OUT);
				free(what);
				break;
			}
			/* Noted for state check and state repair; the job is not trusted meanwhile. */
			strvec_push(&state->damaged_jobs, name);
			strvec_push(&state->damage_notes, err->message);
			cp_err_release(err);
			used = before;
			job->input_count = job->output_count = 0;
			job->recorded = false;
		}
	}
	statement_done(stmt);
	state->loaded_job_files = all;
	for (size_t i = 0; i < state->job_count; i++) {
		struct job_entry *job = &state->jobs[i];
		job->files = job->input_count + job->output_count ? all + (size_t)(uintptr_t)job->files : NULL;
	}
	if (rc == SQLITE_ROW) {
		rc = STATE_ERROR; /* a damaged blob; err is set */
		goto out;
	}
	if (rc != SQLITE_DONE) {
		rc = db_fail(state, STMT_LOAD_JOBS, err);
		goto out;
	}
	/* Slices are sorted when file ids grew with file indexes; make sure. */
	for (size_t i = 0; i < state->job_count; i++) {
		struct job_entry *entry = &state->jobs[i];
		size_t inputs = job_files_normalize(entry->files, entry->input_count);
		size_t outputs = job_files_normalize(entry->files + entry->input_count, entry->output_count);
		if (inputs != entry->input_count)
			memmove(entry->files + inputs, entry->files + entry->input_count,
				outputs * sizeof(*entry->files));
		entry->input_count = inputs;
		entry->output_count = outputs;
	}
	rc = statement_exec(state, STMT_COMMIT, err);
	/* A large batch writes many pages per transaction: keep them in memory (16 MiB) rather than spill. */
	if (rc == 0)
		rc = exec_sql(state, "PRAGMA cache_size = -16384", err);
out:
	if (rc < 0)
		rollback_quietly(state);
	free(file_by_id);
	return rc < 0 ? STATE_ERROR : 0;
}

/* Whether `path` exists with content: a journal left there means its last writer did not close. */
static bool journal_left(const char *db_path, const char *suffix)
{
	char *path = xasprintf("%s%s", db_path, suffix);
	struct stat st;
	bool left = stat(path, &st) == 0 && st.st_size > 0;
	free(path);
	return left;
}

/* Finalize the prepared statements (before closing the connection they belong to). */
static void statements_finalize(struct state *state)
{
	for (size_t i = 0; i < STMT_COUNT; i++) {
		sqlite3_finalize(state->statements[i]);
		state->statements[i] = NULL;
	}
}

/*
 * Create the database with its schema under a temporary name, then link it
 * into place: a concurrent run never sees a state.db without its schema, so
 * an empty state.db always means damage. Losing the race to another run's
 * creation is fine (its file is used).
 */
static int create_database(struct state *state, struct cp_err *err)
{
	char *final_path = state->db_path;
	char *temp_path = xasprintf("%s.new-%lld", final_path, (long long)state->pid);
	unlink(temp_path);
	state->db_path = temp_path;
	int rc = STATE_ERROR;
	if (sqlite3_open_v2(temp_path, &state->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		cp_err_set(err, NULL, 0, "cannot create %s: %s", temp_path,
			   state->db ? sqlite3_errmsg(state->db) : "out of memory");
	} else {
		rc = migrate(state, err);
	}
	statements_finalize(state);
	sqlite3_close(state->db);
	state->db = NULL;
	state->db_path = final_path;
	if (rc == 0 && link(temp_path, final_path) != 0 && errno != EEXIST) {
		/* A file system without hard links: rename, which a concurrent creation may replace; both are empty. */
		if (rename(temp_path, final_path) != 0) {
			cp_err_set(err, NULL, 0, "cannot create %s: %s", final_path, strerror(errno));
			rc = STATE_ERROR;
		}
	}
	unlink(temp_path);
	free(temp_path);
	return rc;
}

/* A URI naming `path` for a read-only open; `immutable` when no other writer's WAL is to be read. */
static char *read_only_uri(const char *path, bool immutable)
{
	struct strbuf uri = STRBUF_INIT;
	strbuf_adds(&uri, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("/._-", *p))
			strbuf_addch(&uri, (char)*p);
		else
			strbuf_addf(&uri, "%%%02X", *p);
	}
	strbuf_adds(&uri, immutable ? "?mode=ro&immutable=1" : "?mode=ro");
	return strbuf_detach(&uri);
}

/* Run PRAGMA integrity_check; each line other than "ok" goes to `problems`. */
static int integrity_check(struct state *state, struct strvec *problems, struct cp_err *err)
{
	static const char sql[] = "PRAGMA integrity_check";
	sqlite3_stmt *stmt;
	if (sqlite3_prepare_v2(state->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return db_fail_sql(state, sql, err);
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(stmt, 0);
		if (line && strcmp(line, "ok") != 0)
			strvec_push(problems, line);
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		/* The check itself hit the damage: that is its finding. */
		if ((sqlite3_extended_errcode(state->db) & 0xff) != SQLITE_CORRUPT &&
		    sqlite3_extended_errcode(state->db) != SQLITE_NOTADB)
			return db_fail_sql(state, sql, err);
		strvec_push(problems, sqlite3_errmsg(state->db));
	}
	return 0;
}

static int open_database(const char *data_root, bool check_mode, struct state **out, struct cp_err *err)
{
	*out = NULL;
	struct strbuf dir = STRBUF_INIT;
	path_join(data_root, ".cpipe", &dir);
	if (mkdir(dir.buf, 0777) != 0 && errno != EEXIST) {
		cp_err_set(err, NULL, 0, "cannot create %s: %s", dir.buf, strerror(errno));
		strbuf_release(&dir);
		return STATE_ERROR;
	}

	struct state *state = xcalloc(1, sizeof(*state));
	state->check_mode = check_mode;
	struct strbuf path = STRBUF_INIT;
	path_join(dir.buf, "state.db", &path);
	state->db_path = strbuf_detach(&path);

	char host[256];
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	state->host = xstrdup(host);
	state->pid = (int64_t)getpid();
	state->pid_start = process_start_time(state->pid);
	state->run_id = xasprintf("%s:%lld:%llx", state->host, (long long)state->pid,
				  (unsigned long long)state_now_ns());

	/* A study the user may only read (shared, archived) can still be planned and shown. */
	state->read_only = access(dir.buf, W_OK) != 0 || (access(state->db_path, F_OK) == 0 && access(state->db_path, W_OK) != 0);
	struct stat st;
	if (stat(state->db_path, &st) == 0) {
		if (st.st_size == 0) {
			cp_err_set(err, NULL, 0, "%s: the file is empty (0 bytes), which cpipe never leaves; %s",
				   state->db_path, DAMAGE_WAY_OUT);
			goto fail;
		}
	} else if (errno != ENOENT) {
		cp_err_set(err, NULL, 0, "cannot stat %s: %s", state->db_path, strerror(errno));
		goto fail;
	} else if (state->read_only) {
		cp_err_set(err, NULL, 0, "%s does not exist and %s is not writable", state->db_path, dir.buf);
		goto fail;
	} else if (create_database(state, err) < 0) {
		goto fail;
	}
	state->unclean = journal_left(state->db_path, "-wal") || journal_left(state->db_path, "-journal");

	int opened;
	if (state->read_only) {
		char *uri = read_only_uri(state->db_path, !journal_left(state->db_path, "-wal"));
		opened = sqlite3_open_v2(uri, &state->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
		free(uri);
	} else {
		opened = sqlite3_open_v2(state->db_path, &state->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	}
	if (opened != SQLITE_OK) {
		cp_err_set(err, NULL, 0, "cannot open %s: %s", state->db_path,
			   state->db ? sqlite3_errmsg(state->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(state->db, 1);
	/* Another run's transactions are short; waiting a while beats failing. */
	sqlite3_busy_timeout(state->db, STATE_LOCK_TIMEOUT_MS);
	if ((!state->read_only && setup_journal(state, dir.buf, err) < 0) || migrate(state, err) < 0 ||
	    load(state, err) < 0)
		goto fail;
	/* After a crash, check what is cheap to check only then (a full scan of the file). */
	if (state->unclean && !check_mode) {
		struct strvec problems = STRVEC_INIT;
		int rc = integrity_check(state, &problems, err);
		bool damaged = rc == 0 && problems.count;
		if (damaged)
			cp_err_set(err, NULL, 0, "%s: the integrity check after an unclean shutdown failed; %s",
				   state->db_path, DAMAGE_WAY_OUT);
		strvec_release(&problems);
		if (rc < 0 || damaged)
			goto fail;
	}
	strbuf_release(&dir);
	*out = state;
	return 0;
fail:
	strbuf_release(&dir);
	state_close(state);
	return STATE_ERROR;
}

int state_open(const char *data_root, struct state **out, struct cp_err *err)
{
	return open_database(data_root, false, out, err);
}

int state_open_for_check(const char *data_root, struct state **out, struct cp_err *err)
{
	return open_database(data_root, true, out, err);
}

void state_close(struct state *state)
{
	if (!state)
		return;
	if (state->db) {
		struct cp_err ignored = CP_ERR_INIT;
		if (state->transaction_depth > 0) {
			state->transaction_depth = 1;
			state_commit(state, &ignored);
		}
		if (!state->read_only)
			state_flush(state, &ignored);
		cp_err_release(&ignored);
		statements_finalize(state);
		sqlite3_close(state->db);
	}
	free(state->files);
	free(state->file_index.slots);
	free(state->dirty_files);
	for (size_t i = 0; i < state->job_count; i++)
		job_clear_files(&state->jobs[i]);
	free(state->jobs);
	free(state->job_index.slots);
	free(state->loaded_job_files);
	arena_release(&state->pool);
	free(state->run_id);
	free(state->host);
	strvec_release(&state->dead_runs);
	strvec_release(&state->damaged_jobs);
	strvec_release(&state->damage_notes);
	free(state->failure_windows);
	free(state->db_path);
	free(state->scratch);
	free(state->output_scratch);
	free(state->marks);
	free(state);
}

const char *state_db_path(const struct state *state)
{
	return state->db_path;
}

const char *state_run_id(const struct state *state)
{
	return state->run_id;
}

void state_set_identity(struct state *state, const char *run_id, const char *host, int64_t pid)
{
	if (run_id) {
		free(state->run_id);
		state->run_id = xstrdup(run_id);
	}
	if (host) {
		free(state->host);
		state->host = xstrdup(host);
	}
	if (pid > 0) {
		state->pid = pid;
		state->pid_start = process_start_time(pid);
	}
}

/* ---- Reasons ---------------------------------------------------------------- */

static const char *const reason_strings[STATE_REASON_COUNT] = {
	[STATE_UP_TO_DATE] = "up to date",
	[STATE_FORCED] = "forced",
	[STATE_OUTPUT_MISSING] = "output missing",
	[STATE_NEVER_RECORDED] = "never recorded",
	[STATE_OUTPUT_MODIFIED] = "output modified since recorded",
	[STATE_INPUT_CHANGED] = "input changed",
	[STATE_COMMAND_CHANGED] = "command changed",
	[STATE_INPUT_SET_CHANGED] = "set of inputs changed",
	[STATE_UPSTREAM_RUNS] = "upstream job runs",
	[STATE_PREVIOUS_FAILED] = "previous run failed",
	[STATE_PREVIOUS_INTERRUPTED] = "previous run interrupted",
	[STATE_RUNNING_ELSEWHERE] = "running in another run",
};

const char *state_reason_string(enum state_reason reason)
{
	if ((unsigned)reason >= STATE_REASON_COUNT)
		BUG("bad state_reason %d", (int)reason);
	return reason_strings[reason];
}

void state_reason_describe(enum state_reason reason, const char *detail, struct strbuf *out)
{
	strbuf_adds(out, state_reason_string(reason));
	if (detail && *detail) {
		strbuf_adds(out, ": ");
		strbuf_adds(out, detail);
	}
}

/*
 * Whether the file now differs from `recorded`: equal size and mtime mean
 * unchanged; a different size means changed; otherwise the content hash decides.
 */
static int file_differs(struct state *state, size_t index, const struct job_file *recorded, bool *differs,
			struct cp_err *err)
{
	const struct file_signature *now;
	if (file_seen(state, index, &now, err) < 0)
		return STATE_ERROR;
	if (!now->exists || !recorded->exists) {
		*differs = now->exists != recorded->exists;
		return 0;
	}
	if (now->size == recorded->size && now->mtime_ns == recorded->mtime_ns) {
		*differs = false;
		return 0;
	}
	if (now->size != recorded->size || !recorded->hashed) {
		*differs = true;
		return 0;
	}
	if (file_hash_seen(state, index, err) < 0)
		return STATE_ERROR;
	now = &state->files[index].seen;
	*differs = !now->exists || !now->hashed || now->size != recorded->size || now->hash != recorded->hash;
	return 0;
}

static void set_detail(struct strbuf *detail, const char *prefix, const char *text)
{
	if (!detail)
		return;
	strbuf_adds(detail, prefix);
	strbuf_adds(detail, text);
}

static void holder_detail(struct strbuf *detail, const char *host, int64_t pid)
{
	if (detail)
		strbuf_addf(detail, "pid %lld on %s", (long long)pid, host ? host : "unknown host");
}

/* The checks that compare with a successful record; *reason stays UP_TO_DATE when all pass. */
static size_t query_file_id(const struct state *state, uint32_t id)
{
	if (id >= state->file_count)
		BUG("file id %u from another state handle", (unsigned)id);
	return id;
}

static int compare_with_record(struct state *state, const struct state_job_query *query, struct job_entry *job,
			       const size_t *output_files, enum state_reason *reason, struct strbuf *detail,
			       struct cp_err *err)
{
	const struct job_file *outputs = job->files + job->input_count;
	for (size_t i = 0; i < query->output_count; i++) {
		size_t file = output_files[i];
		size_t at = job_files_find(outputs, job->output_count, file);
		bool differs = true;
		if (at != SIZE_MAX && file_differs(state, file, &outputs[at], &differs, err) < 0)
			return STATE_ERROR;
		if (differs) {
			*reason = STATE_OUTPUT_MODIFIED;
			set_detail(detail, "", query->outputs[i]);
			if (at == SIZE_MAX && detail)
				strbuf_adds(detail, " (not a recorded output)");
			return 0;
		}
	}

	/* Where each query input sits among the recorded inputs (SIZE_MAX: not recorded). */
	ALLOC_GROW(state->scratch, query->input_count + 1, state->scratch_cap);
	size_t *positions = state->scratch;
	for (size_t i = 0; i < query->input_count; i++) {
		size_t file = query->input_ids ? query_file_id(state, query->input_ids[i]) : file_intern(state, query->inputs[i]);
		positions[i] = job_files_find(job->files, job->input_count, file);
		if (positions[i] == SIZE_MAX)
			continue;
		bool differs;
		if (file_differs(state, file, &job->files[positions[i]], &differs, err) < 0)
			return STATE_ERROR;
		if (differs) {
			*reason = STATE_INPUT_CHANGED;
			set_detail(detail, "", query->inputs[i]);
			return 0;
		}
	}

	if (state_definition_hash(query->definition_text ? query->definition_text : "") != job->definition_hash) {
		*reason = STATE_COMMAND_CHANGED;
		return 0;
	}

	ALLOC_GROW(state->marks, job->input_count + 1, state->marks_cap);
	memset(state->marks, 0, job->input_count);
	for (size_t i = 0; i < query->input_count; i++) {
		if (positions[i] == SIZE_MAX) {
			*reason = STATE_INPUT_SET_CHANGED;
			set_detail(detail, "added ", query->inputs[i]);
			return 0;
		}
		state->marks[positions[i]] = 1;
	}
	for (size_t i = 0; i < job->input_count; i++) {
		if (!state->marks[i]) {
			*reason = STATE_INPUT_SET_CHANGED;
			set_detail(detail, "removed ", state->files[job->files[i].file].path);
			return 0;
		}
	}
	return 0;
}

int state_job_reason(struct state *state, const struct state_job_query *query, enum state_reason *reason,
		     struct strbuf *detail, struct cp_err *err)
{
	if (detail)
		strbuf_reset(detail);
	*reason = STATE_UP_TO_DATE;
	if (query->forced) {
		*reason = STATE_FORCED;
		return 0;
	}

	/*
	 * A live run's claim comes before the files: what that run is writing
	 * now says nothing yet (a missing output is no reason to run it twice).
	 */
	struct job_entry *job = job_find(state, query->job_id);
	bool claimed_by_live_run = job && job->holder_run && strcmp(job->holder_run, state->run_id) != 0 &&
				   holder_alive(state, job->holder_host, job->holder_pid, job->holder_pid_start);
	if (claimed_by_live_run) {
		*reason = STATE_RUNNING_ELSEWHERE;
		holder_detail(detail, job->holder_host, job->holder_pid);
		return 0;
	}

	/* Each output's file index, looked up once for both passes. */
	ALLOC_GROW(state->output_scratch, query->output_count + 1, state->output_scratch_cap);
	size_t *output_files = state->output_scratch;
	for (size_t i = 0; i < query->output_count; i++) {
		const struct file_signature *now;
		output_files[i] = query->output_ids ? query_file_id(state, query->output_ids[i])
						    : file_intern(state, query->outputs[i]);
		if (file_seen(state, output_files[i], &now, err) < 0)
			return STATE_ERROR;
		if (!now->exists) {
			*reason = STATE_OUTPUT_MISSING;
			set_detail(detail, "", query->outputs[i]);
			return 0;
		}
	}

	if (!job || (!job->recorded && !job->holder_run && job->outcome == OUTCOME_NONE)) {
		*reason = STATE_NEVER_RECORDED;
		return 0;
	}
	if (job->recorded) {
		if (compare_with_record(state, query, job, output_files, reason, detail, err) < 0)
			return STATE_ERROR;
		if (*reason != STATE_UP_TO_DATE)
			return 0;
	}
	if (query->upstream_runs) {
		*reason = STATE_UPSTREAM_RUNS;
		return 0;
	}
	/* A claim is the latest attempt: it outranks the outcome recorded before it. */
	if (job->holder_run) {
		bool ours = strcmp(job->holder_run, state->run_id) == 0;
		*reason = ours ? STATE_RUNNING_ELSEWHERE : STATE_PREVIOUS_INTERRUPTED;
		holder_detail(detail, job->holder_host, job->holder_pid);
		return 0;
	}
	if (job->outcome == OUTCOME_FAILED) {
		*reason = STATE_PREVIOUS_FAILED;
		if (detail)
			strbuf_addf(detail, "exit code %d", job->exit_code);
		return 0;
	}
	if (job->outcome == OUTCOME_INTERRUPTED) {
		*reason = STATE_PREVIOUS_INTERRUPTED;
		holder_detail(detail, job->host, job->pid);
		return 0;
	}
	return 0;
}

/* ---- Adoption ---------------------------------------------------------------- */

/* A file written this close to a failed attempt's start or end may be its work (clocks are coarse). */
#define FAILURE_WINDOW_MARGIN_NS 1000000000LL

static int compare_windows(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* The times during which a failed or interrupted attempt ran, merged into disjoint windows. */
static void build_failure_windows(struct state *state)
{
	size_t count = 0, cap = 0;
	int64_t *windows = NULL;
	int64_t now = state_now_ns();
	for (size_t i = 0; i < state->job_count; i++) {
		const struct job_entry *job = &state->jobs[i];
		if (!job->present || (job->outcome != OUTCOME_FAILED && job->outcome != OUTCOME_INTERRUPTED) ||
		    job->start_ns <= 0)
			continue;
		ALLOC_GROW(windows, 2 * (count + 1), cap);
		windows[2 * count] = job->start_ns - FAILURE_WINDOW_MARGIN_NS;
		windows[2 * count + 1] = (job->end_ns > 0 ? job->end_ns : now) + FAILURE_WINDOW_MARGIN_NS;
		count++;
	}
	if (count)
		qsort(windows, count, 2 * sizeof(*windows), compare_windows);
	size_t merged = 0;
	for (size_t i = 0; i < count; i++) {
		if (merged && windows[2 * i] <= windows[2 * merged - 1]) {
			if (windows[2 * i + 1] > windows[2 * merged - 1])
				windows[2 * merged - 1] = windows[2 * i + 1];
			continue;
		}
		windows[2 * merged] = windows[2 * i];
		windows[2 * merged + 1] = windows[2 * i + 1];
		merged++;
	}
	state->failure_windows = windows;
	state->failure_window_count = merged;
	state->failure_windows_built = true;
}

static bool in_failure_window(const struct state *state, int64_t t)
{
	size_t lo = 0, hi = state->failure_window_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t < state->failure_windows[2 * mid])
			hi = mid;
		else if (t > state->failure_windows[2 * mid + 1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

int state_adoption_suspect(struct state *state, const struct state_job_query *query, bool *suspect,
			   struct strbuf *detail, struct cp_err *err)
{
	*suspect = false;
	if (!state->failure_windows_built)
		build_failure_windows(state);
	for (size_t i = 0; i < query->output_count && state->failure_window_count; i++) {
		size_t index = query->output_ids ? query_file_id(state, query->output_ids[i])
						 : file_intern(state, query->outputs[i]);
		const struct file_signature *now;
		if (file_seen(state, index, &now, err) < 0)
			return STATE_ERROR;
		if (now->exists && now->mtime_ns && in_failure_window(state, now->mtime_ns)) {
			*suspect = true;
			if (detail)
				strbuf_addf(detail, "%s was written while a job failed or was interrupted",
					    query->outputs[i]);
			return 0;
		}
	}
	return 0;
}

/* ---- Claims and records ---------------------------------------------------- */

/*
 * Re-read a job's recorded files from the database (after another run wrote
 * them): file ids are looked up one by one, as this is rare. A damaged blob
 * fails, naming the job.
 */
static int job_reload_files(struct state *state, size_t job_index, struct cp_err *err)
{
	struct job_entry *job = &state->jobs[job_index];
	sqlite3_stmt *stmt = statement(state, STMT_JOB_FILES_SELECT, err);
	if (!stmt)
		return STATE_ERROR;
	bind_text(stmt, 1, job->job_id);
	int rc = sqlite3_step(stmt);
	struct strbuf blob = STRBUF_INIT;
	if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) == SQLITE_BLOB)
		strbuf_add(&blob, sqlite3_column_blob(stmt, 0), (size_t)sqlite3_column_bytes(stmt, 0));
	statement_done(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		strbuf_release(&blob);
		return db_fail(state, STMT_JOB_FILES_SELECT, err);
	}
	job_clear_files(job);
	if (!blob.len) {
		strbuf_release(&blob);
		return 0;
	}
	struct files_blob_reader reader;
	size_t inputs = 0, outputs = 0;
	struct job_file *files = NULL;
	bool ok = files_blob_open(&reader, blob.buf, blob.len, &inputs, &outputs);
	if (ok)
		files = xcalloc(inputs + outputs + 1, sizeof(*files));
	for (size_t i = 0; ok && i < inputs + outputs; i++) {
		int64_t id;
		struct file_signature sig;
		if (!(ok = files_blob_next(&reader, &id, &sig)))
			break;
		if (!(stmt = statement(state, STMT_FILE_PATH, err))) {
			free(files);
			strbuf_release(&blob);
			return STATE_ERROR;
		}
		bind_int64(stmt, 1, id);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			size_t index = file_intern(state, (const char *)sqlite3_column_text(stmt, 0));
			if (!state->files[index].db_id)
				state->files[index].db_id = id;
			job_file_set(&files[i], index, &sig);
		} else {
			ok = blob_fail(&reader, "unknown file id");
		}
		statement_done(stmt);
	}
	ok = ok && files_blob_close(&reader);
	if (!ok) {
		cp_err_set(err, NULL, 0, "%s: job %s: damaged list of recorded files: %s", state->db_path,
			   job->job_id, reader.problem);
		free(files);
		strbuf_release(&blob);
		return STATE_ERROR;
	}
	job = &state->jobs[job_index]; /* file_intern does not move jobs, but stay safe */
	job->input_count = job_files_normalize(files, inputs);
	job->output_count = job_files_normalize(files + inputs, outputs);
	memmove(files + job->input_count, files + inputs, job->output_count * sizeof(*files));
	job->files = files;
	job->files_owned = true;
	strbuf_release(&blob);
	return 0;
}

/*
 * Whether the job's latest finished attempt in the database (`status`,
 * `end_ns`, `run_id` as read now) is not the one this handle knows: another
 * run finished it after our snapshot was taken (its results may have waited
 * in that run's open transaction).
 */
static bool finished_elsewhere(struct state *state, const char *job_id, const char *status, int64_t end_ns,
			       const char *run_id)
{
	enum job_outcome outcome = outcome_from_text(status);
	if (outcome == OUTCOME_NONE)
		return false;
	const struct job_entry *job = job_find(state, job_id);
	if (!job)
		return true;
	return job->outcome != outcome || job->end_ns != end_ns || !job->run_id != !run_id ||
	       (run_id && strcmp(job->run_id, run_id) != 0);
}

int state_claim_job(struct state *state, const char *job_id, const char *log_path, struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = 0;
	sqlite3_stmt *stmt = statement(state, STMT_CLAIM_SELECT, err);
	if (!stmt) {
		rc = STATE_ERROR;
		goto out;
	}
	bind_text(stmt, 1, job_id);
	int step = sqlite3_step(stmt);
	char *holder_run = NULL, *holder_host = NULL;
	int64_t holder_pid = 0, holder_pid_start = 0;
	bool changed = false;
	if (step == SQLITE_ROW) {
		holder_run = column_strdup(stmt, 0);
		holder_host = column_strdup(stmt, 1);
		holder_pid = sqlite3_column_int64(stmt, 2);
		holder_pid_start = sqlite3_column_int64(stmt, 3);
		changed = finished_elsewhere(state, job_id, (const char *)sqlite3_column_text(stmt, 4),
					     sqlite3_column_int64(stmt, 5), (const char *)sqlite3_column_text(stmt, 6));
	}
	statement_done(stmt);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = db_fail(state, STMT_CLAIM_SELECT, err);
		goto release;
	}
	if (changed) {
		/* Decided on a stale snapshot: take the new record in, for the caller to decide again. */
		if ((rc = job_reload(state, job_id, err)) < 0 ||
		    (rc = job_reload_files(state, job_intern(state, job_id), err)) < 0)
			goto release;
		cp_err_set(err, NULL, 0, "job %s was finished by another run after this one looked at it", job_id);
		rc = STATE_CHANGED;
		goto release;
	}
	if (holder_run && strcmp(holder_run, state->run_id) != 0) {
		if (holder_alive(state, holder_host, holder_pid, holder_pid_start)) {
			cp_err_set(err, NULL, 0, "job %s is held by run %s (pid %lld on host %s)", job_id, holder_run,
				   (long long)holder_pid, holder_host ? holder_host : "unknown");
			rc = STATE_HELD;
			goto release;
		}
		/* Its job processes may outlive it: the caller ends them before running the job again. */
		if (strvec_find(&state->dead_runs, holder_run) < 0)
			strvec_push(&state->dead_runs, holder_run);
		/* The dead holder's attempt becomes an interrupted one, so a later release keeps that fact. */
		if (!(stmt = statement(state, STMT_JOB_INTERRUPT, err))) {
			rc = STATE_ERROR;
			goto release;
		}
		bind_text(stmt, 1, job_id);
		bind_int64(stmt, 2, state_now_ns());
		if ((rc = statement_run(state, STMT_JOB_INTERRUPT, stmt, err)) < 0)
			goto release;
	}
	if (!(stmt = statement(state, STMT_CLAIM_SET, err))) {
		rc = STATE_ERROR;
		goto release;
	}
	bind_text(stmt, 1, job_id);
	bind_text(stmt, 2, state->run_id);
	bind_text(stmt, 3, state->host);
	bind_int64(stmt, 4, state->pid);
	bind_int64(stmt, 5, state->pid_start);
	bind_int64(stmt, 6, state_now_ns());
	bind_text(stmt, 7, log_path);
	if ((rc = statement_run(state, STMT_CLAIM_SET, stmt, err)) < 0)
		goto release;
	rc = job_reload(state, job_id, err);
release:
	free(holder_run);
	free(holder_host);
out:
	if (rc == STATE_HELD || rc == STATE_CHANGED) {
		/* Not a database failure: end our transaction normally, keeping the caller's message. */
		struct cp_err ignored = CP_ERR_INIT;
		write_end(state, 0, &ignored);
		cp_err_release(&ignored);
		return rc;
	}
	return write_end(state, rc, err);
}

void state_dead_runs(struct state *state, struct strvec *out)
{
	for (size_t i = 0; i < state->dead_runs.count; i++)
		if (strvec_find(out, state->dead_runs.items[i]) < 0)
			strvec_push(out, state->dead_runs.items[i]);
	const char *last_alive = NULL;
	for (size_t i = 0; i < state->job_count; i++) {
		const struct job_entry *job = &state->jobs[i];
		if (!job->present || !job->holder_run || job->holder_run == last_alive ||
		    !strcmp(job->holder_run, state->run_id))
			continue;
		if (holder_alive(state, job->holder_host, job->holder_pid, job->holder_pid_start)) {
			last_alive = job->holder_run; /* claims of one run share its pooled run id */
			continue;
		}
		if (strvec_find(out, job->holder_run) < 0)
			strvec_push(out, job->holder_run);
	}
}

void state_refresh_paths(struct state *state, const char *const *paths, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		size_t index = index_find(state, &state->file_index, INDEX_FILES, paths[i], name_hash(paths[i]));
		if (index != SIZE_MAX)
			state->files[index].seen_valid = false;
	}
}

int state_release_claim(struct state *state, const char *job_id, struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt = statement(state, STMT_CLAIM_RELEASE, err);
	if (stmt) {
		bind_text(stmt, 1, job_id);
		bind_text(stmt, 2, state->run_id);
		rc = statement_run(state, STMT_CLAIM_RELEASE, stmt, err);
		if (rc == 0)
			rc = job_reload(state, job_id, err);
	}
	return write_end(state, rc, err);
}

/*
 * The caller's signature is the file as the job read or wrote it: cache it,
 * and make later reason checks stat the file again rather than trust a
 * signature made elsewhere. Fills `out` with the file's index.
 */
static void learn_job_file(struct state *state, const struct state_file *entry, struct job_file *out)
{
	size_t index = file_intern(state, entry->path);
	file_learn(state, index, &entry->signature);
	state->files[index].seen_valid = false;
	job_file_set(out, index, &entry->signature);
}

/* Give each file a row (for its id) and encode them into `blob`. */
static int encode_job_files(struct state *state, const struct job_file *files, size_t input_count,
			    size_t output_count, struct strbuf *blob, struct cp_err *err)
{
	files_blob_start(blob, input_count, output_count);
	for (size_t i = 0; i < input_count + output_count; i++) {
		if (file_store(state, files[i].file, err) < 0)
			return STATE_ERROR;
		struct file_signature sig = job_file_signature(&files[i]);
		files_blob_add(blob, state->files[files[i].file].db_id, &sig);
	}
	return 0;
}

static int record_success(struct state *state, const struct state_outcome *outcome, bool adopted,
			  struct cp_err *err)
{
	const struct state_attempt *attempt = &outcome->attempt;
	const char **input_paths = xmalloc((outcome->input_count + 1) * sizeof(*input_paths));
	for (size_t i = 0; i < outcome->input_count; i++)
		input_paths[i] = outcome->inputs[i].path;
	uint64_t input_set_hash = state_input_set_hash(input_paths, outcome->input_count);
	free(input_paths);

	size_t total = outcome->input_count + outcome->output_count;
	struct job_file *files = xmalloc((total ? total : 1) * sizeof(*files));
	for (size_t i = 0; i < outcome->input_count; i++)
		learn_job_file(state, &outcome->inputs[i], &files[i]);
	for (size_t i = 0; i < outcome->output_count; i++)
		learn_job_file(state, &outcome->outputs[i], &files[outcome->input_count + i]);
	size_t inputs = job_files_normalize(files, outcome->input_count);
	size_t outputs = job_files_normalize(files + outcome->input_count, outcome->output_count);
	memmove(files + inputs, files + outcome->input_count, outputs * sizeof(*files));

	struct strbuf blob = STRBUF_INIT;
	if (write_begin(state, err) < 0) {
		free(files);
		return STATE_ERROR;
	}
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt;
	if (encode_job_files(state, files, inputs, outputs, &blob, err) < 0 ||
	    !(stmt = statement(state, STMT_JOB_SUCCESS, err)))
		goto out;
	bind_text(stmt, 1, outcome->job_id);
	sqlite3_bind_int(stmt, 2, adopted);
	bind_hash(stmt, 3, outcome->definition_hash);
	bind_hash(stmt, 4, input_set_hash);
	sqlite3_bind_int(stmt, 5, attempt->exit_code);
	bind_int64(stmt, 6, attempt->start_ns);
	bind_int64(stmt, 7, attempt->end_ns);
	bind_text(stmt, 8, attempt->host ? attempt->host : state->host);
	bind_int64(stmt, 9, attempt->pid ? attempt->pid : state->pid);
	bind_text(stmt, 10, state->run_id);
	bind_text(stmt, 11, attempt->log_path);
	sqlite3_bind_blob(stmt, 12, blob.buf, (int)blob.len, SQLITE_STATIC);
	if (statement_run(state, STMT_JOB_SUCCESS, stmt, err) < 0 || job_reload(state, outcome->job_id, err) < 0)
		goto out;
	size_t job_index = job_intern(state, outcome->job_id);
	struct job_entry *job = &state->jobs[job_index];
	job_clear_files(job);
	job->files = files;
	job->files_owned = true;
	job->input_count = inputs;
	job->output_count = outputs;
	files = NULL;
	rc = 0;
out:
	free(files);
	strbuf_release(&blob);
	return write_end(state, rc, err);
}

int state_record_success(struct state *state, const struct state_outcome *outcome, struct cp_err *err)
{
	return record_success(state, outcome, false, err);
}

/* Sign the query's files now (fresh stats, cache-aware hashing) and record them. */
static int record_current(struct state *state, const struct state_job_query *query,
			  const struct state_attempt *attempt, bool adopted, struct cp_err *err)
{
	size_t total = query->input_count + query->output_count;
	struct state_file *files = xcalloc(total ? total : 1, sizeof(*files));
	int rc = 0;
	for (size_t i = 0; i < total && rc == 0; i++) {
		files[i].path = i < query->input_count ? query->inputs[i] : query->outputs[i - query->input_count];
		rc = state_file_signature(state, files[i].path, &files[i].signature, err);
	}
	if (rc == 0) {
		struct state_outcome outcome = {
			.job_id = query->job_id,
			.definition_hash = state_definition_hash(query->definition_text ? query->definition_text : ""),
			.inputs = files,
			.input_count = query->input_count,
			.outputs = files + query->input_count,
			.output_count = query->output_count,
		};
		if (attempt)
			outcome.attempt = *attempt;
		rc = record_success(state, &outcome, adopted, err);
	}
	free(files);
	return rc;
}

int state_record_success_stat(struct state *state, const struct state_job_query *query,
			      const struct state_attempt *attempt, struct cp_err *err)
{
	return record_current(state, query, attempt, false, err);
}

int state_adopt(struct state *state, const struct state_job_query *query, struct cp_err *err)
{
	return record_current(state, query, NULL, true, err);
}

int state_record_failure(struct state *state, const char *job_id, const struct state_attempt *attempt,
			 struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt = statement(state, STMT_JOB_FAILURE, err);
	if (stmt) {
		bind_text(stmt, 1, job_id);
		sqlite3_bind_int(stmt, 2, attempt->exit_code);
		bind_int64(stmt, 3, attempt->start_ns);
		bind_int64(stmt, 4, attempt->end_ns);
		bind_text(stmt, 5, attempt->host ? attempt->host : state->host);
		bind_int64(stmt, 6, attempt->pid ? attempt->pid : state->pid);
		bind_text(stmt, 7, state->run_id);
		bind_text(stmt, 8, attempt->log_path);
		rc = statement_run(state, STMT_JOB_FAILURE, stmt, err);
		if (rc == 0)
			rc = job_reload(state, job_id, err);
	}
	return write_end(state, rc, err);
}

int state_mark_interrupted(struct state *state, const char *job_id, struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt = statement(state, STMT_JOB_INTERRUPT, err);
	if (stmt) {
		bind_text(stmt, 1, job_id);
		bind_int64(stmt, 2, state_now_ns());
		rc = statement_run(state, STMT_JOB_INTERRUPT, stmt, err);
		if (rc == 0)
			rc = job_reload(state, job_id, err);
	}
	return write_end(state, rc, err);
}

int state_interrupt_run(struct state *state, struct cp_err *err)
{
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	struct strvec names = STRVEC_INIT;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt = statement(state, STMT_RUN_INTERRUPT, err);
	if (stmt) {
		bind_text(stmt, 1, state->run_id);
		bind_int64(stmt, 2, state_now_ns());
		int step;
		while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
			strvec_push(&names, (const char *)sqlite3_column_text(stmt, 0));
		statement_done(stmt);
		if (step == SQLITE_DONE)
			rc = 0;
		else
			db_fail(state, STMT_RUN_INTERRUPT, err);
	}
	for (size_t i = 0; i < names.count && rc == 0; i++)
		rc = job_reload(state, names.items[i], err);
	strvec_release(&names);
	return write_end(state, rc, err);
}

/* Run a forget statement bound to `text`; adds the jobs removed. */
static int forget_run(struct state *state, enum statement id, const char *text, size_t *removed, struct cp_err *err)
{
	sqlite3_stmt *stmt = statement(state, id, err);
	if (!stmt)
		return STATE_ERROR;
	bind_text(stmt, 1, text);
	if (statement_run(state, id, stmt, err) < 0)
		return STATE_ERROR;
	*removed += (size_t)sqlite3_changes(state->db);
	return 0;
}

int state_forget(struct state *state, const char *prefix, const char *const *job_ids, size_t count,
		 size_t *forgotten, struct cp_err *err)
{
	size_t removed = 0;
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	int rc = 0;
	if (prefix)
		rc = forget_run(state, STMT_FORGET_PREFIX, prefix, &removed, err);
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = forget_run(state, STMT_FORGET_NAME, job_ids[i], &removed, err);
	rc = write_end(state, rc, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < state->job_count; i++) {
		struct job_entry *job = &state->jobs[i];
		if (!job->present)
			continue;
		bool match = prefix && str_starts_with(job->job_id, prefix);
		for (size_t k = 0; k < count && !match; k++)
			match = !strcmp(job->job_id, job_ids[k]);
		if (match) {
			job->present = false;
			job_clear_files(job);
		}
	}
	if (forgotten)
		*forgotten = removed;
	return 0;
}

/* ---- Check and repair ------------------------------------------------------ */

static int report_problem(int (*fn)(const struct state_problem *problem, void *data), void *data,
			  enum state_problem_kind kind, const char *job_id, const char *path, const char *text)
{
	struct state_problem problem = {kind, job_id, path, text};
	return fn(&problem, data);
}

/* Report each recorded file of `job` that differs now. */
static int check_job_files(struct state *state, struct job_entry *job,
			   int (*fn)(const struct state_problem *problem, void *data), void *data, struct cp_err *err)
{
	for (size_t i = 0; i < job->input_count + job->output_count; i++) {
		bool differs;
		size_t file = job->files[i].file;
		if (file_differs(state, file, &job->files[i], &differs, err) < 0)
			return STATE_ERROR;
		int rc = differs ? report_problem(fn, data, i < job->input_count ? STATE_PROBLEM_INPUT_CHANGED
										  : STATE_PROBLEM_OUTPUT_CHANGED,
						  job->job_id, state->files[file].path, NULL)
				 : 0;
		if (rc)
			return rc;
	}
	return 0;
}

int state_check(struct state *state, int (*fn)(const struct state_problem *problem, void *data), void *data,
		struct cp_err *err)
{
	struct strvec problems = STRVEC_INIT;
	int rc = integrity_check(state, &problems, err);
	for (size_t i = 0; i < problems.count && rc == 0; i++)
		rc = report_problem(fn, data, STATE_PROBLEM_INTEGRITY, NULL, NULL, problems.items[i]);
	strvec_release(&problems);
	for (size_t i = 0; i < state->damaged_jobs.count && rc == 0; i++)
		rc = report_problem(fn, data, STATE_PROBLEM_DAMAGED_RECORD, state->damaged_jobs.items[i], NULL,
				    state->damage_notes.items[i]);
	state_stat_recorded(state, 0);
	struct strbuf holder = STRBUF_INIT;
	for (size_t i = 0; i < state->job_count && rc == 0; i++) {
		struct job_entry *job = &state->jobs[i];
		if (!job->present)
			continue;
		if (job->holder_run && !holder_alive(state, job->holder_host, job->holder_pid, job->holder_pid_start)) {
			strbuf_reset(&holder);
			holder_detail(&holder, job->holder_host, job->holder_pid);
			rc = report_problem(fn, data, STATE_PROBLEM_DEAD_CLAIM, job->job_id, NULL, holder.buf);
		}
		if (rc == 0 && job->recorded)
			rc = check_job_files(state, job, fn, data, err);
	}
	strbuf_release(&holder);
	return rc;
}

int state_repair(struct state *state, size_t *repaired, struct cp_err *err)
{
	static const char forget_files_sql[] =
		"UPDATE jobs SET status = 'interrupted', recorded = 0, files = NULL WHERE name = ?1";
	*repaired = 0;
	if (write_begin(state, err) < 0)
		return STATE_ERROR;
	sqlite3_stmt *update;
	int rc = 0;
	if (sqlite3_prepare_v2(state->db, forget_files_sql, -1, &update, NULL) != SQLITE_OK)
		return write_end(state, db_fail_sql(state, forget_files_sql, err), err);
	for (size_t i = 0; i < state->damaged_jobs.count && rc == 0; i++) {
		bind_text(update, 1, state->damaged_jobs.items[i]);
		rc = sqlite3_step(update) == SQLITE_DONE ? 0 : db_fail_sql(state, forget_files_sql, err);
		statement_done(update);
		*repaired += rc == 0;
	}
	sqlite3_finalize(update);
	for (size_t i = 0; i < state->job_count && rc == 0; i++) {
		struct job_entry *job = &state->jobs[i];
		if (!job->present || !job->holder_run ||
		    holder_alive(state, job->holder_host, job->holder_pid, job->holder_pid_start))
			continue;
		sqlite3_stmt *stmt = statement(state, STMT_JOB_INTERRUPT, err);
		if (!stmt) {
			rc = STATE_ERROR;
			break;
		}
		bind_text(stmt, 1, job->job_id);
		bind_int64(stmt, 2, state_now_ns());
		rc = statement_run(state, STMT_JOB_INTERRUPT, stmt, err);
		*repaired += rc == 0;
	}
	rc = write_end(state, rc, err);
	if (rc == 0) {
		strvec_release(&state->damaged_jobs);
		strvec_release(&state->damage_notes);
	}
	return rc;
}

/* ---- Listing ------------------------------------------------------------ */

const char *state_status_string(enum state_status status)
{
	switch (status) {
	case STATE_STATUS_NONE:
		return "none";
	case STATE_STATUS_RUNNING:
		return "running";
	case STATE_STATUS_DONE:
		return "done";
	case STATE_STATUS_FAILED:
		return "failed";
	case STATE_STATUS_INTERRUPTED:
		return "interrupted";
	}
	BUG("bad state_status %d", (int)status);
}

static void job_to_record(const struct state *state, const struct job_entry *job, struct state_job_record *out)
{
	static const enum state_status from_outcome[] = {
		[OUTCOME_NONE] = STATE_STATUS_NONE,
		[OUTCOME_DONE] = STATE_STATUS_DONE,
		[OUTCOME_FAILED] = STATE_STATUS_FAILED,
		[OUTCOME_INTERRUPTED] = STATE_STATUS_INTERRUPTED,
	};
	memset(out, 0, sizeof(*out));
	out->job_id = job->job_id;
	out->status = job->holder_run ? STATE_STATUS_RUNNING : from_outcome[job->outcome];
	out->recorded = job->recorded;
	out->adopted = job->adopted;
	out->definition_hash = job->definition_hash;
	out->input_set_hash = job->input_set_hash;
	out->input_count = job->input_count;
	out->output_count = job->output_count;
	out->exit_code = job->exit_code;
	out->start_ns = job->start_ns;
	out->end_ns = job->end_ns;
	out->host = job->host;
	out->pid = job->pid;
	out->run_id = job->run_id;
	out->log_path = job->holder_run && job->holder_log ? job->holder_log : job->log_path;
	out->holder_run = job->holder_run;
	out->holder_host = job->holder_run ? job->holder_host : NULL;
	out->holder_pid = job->holder_run ? job->holder_pid : 0;
	out->holder_alive = job->holder_run &&
			    (strcmp(job->holder_run, state->run_id) == 0 ||
			     holder_alive(state, job->holder_host, job->holder_pid, job->holder_pid_start));
}

bool state_job_lookup(struct state *state, const char *job_id, struct state_job_record *out)
{
	const struct job_entry *job = job_find(state, job_id);
	if (!job)
		return false;
	job_to_record(state, job, out);
	return true;
}

static int compare_jobs_by_id(const void *a, const void *b)
{
	const struct job_entry *x = *(const struct job_entry *const *)a;
	const struct job_entry *y = *(const struct job_entry *const *)b;
	return strcmp(x->job_id, y->job_id);
}

int state_foreach_job(struct state *state, const char *prefix,
		      int (*fn)(const struct state_job_record *record, void *data), void *data)
{
	const struct job_entry **list = xmalloc((state->job_count + 1) * sizeof(*list));
	size_t n = 0;
	for (size_t i = 0; i < state->job_count; i++) {
		const struct job_entry *job = &state->jobs[i];
		if (job->present && (!prefix || str_starts_with(job->job_id, prefix)))
			list[n++] = job;
	}
	qsort(list, n, sizeof(*list), compare_jobs_by_id);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct state_job_record record;
		job_to_record(state, list[i], &record);
		rc = fn(&record, data);
	}
	free(list);
	return rc;
}

int state_foreach_job_file(struct state *state, const char *job_id, int role,
			   int (*fn)(const struct state_file *file, void *data), void *data)
{
	const struct job_entry *job = job_find(state, job_id);
	if (!job)
		return 0;
	const struct job_file *part = role == 0 ? job->files : job->files + job->input_count;
	size_t count = role == 0 ? job->input_count : job->output_count;
	for (size_t i = 0; i < count; i++) {
		struct state_file file = {state->files[part[i].file].path, job_file_signature(&part[i])};
		int rc = fn(&file, data);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- Diagnostics ------------------------------------------------------- */

void state_stats(const struct state *state, struct state_stats *out)
{
	*out = state->stats;
	out->jobs = 0;
	for (size_t i = 0; i < state->job_count; i++)
		out->jobs += state->jobs[i].present;
	out->files = state->file_count;
}
