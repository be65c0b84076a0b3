/*
 * state: the handle of the SQLite state database. See include/cpipe/state.h
 * for the contract and src/state_int.h for the module's other files.
 *
 * Layout: every statement lives in `statement_sql[]`, indexed by enum
 * statement, prepared once on first use and reset after each use. All
 * records are loaded at open into arrays with hash indexes over them, so a
 * reason check never touches SQLite. Strings live in a pool freed at close.
 * Writes go to the database first and are then mirrored in memory (job rows
 * are re-read after a write so the two cannot drift).
 *
 * Threads: there is no mutable global or static data, so handles are
 * independent; each has its own SQLite connection, opened without SQLite's
 * per-connection mutex since a handle is used by one thread at a time. The
 * only threads the module starts are state_stat_paths' workers
 * (state_files.c): they stat paths into their own result slots and touch
 * nothing else.
 */
#include "state_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- Statements -------------------------------------------------------- */

/* job_from_row reads these by position, then the claim's (CLAIM_COLUMNS) from JOB_CLAIM_COLUMN on. */
#define JOB_COLUMNS \
	"name, status, recorded, adopted, definition_hash, input_set_hash, exit_code, start_ns, end_ns," \
	" host, pid, run_id, log_path"
#define JOB_CLAIM_COLUMN 13
#define CLAIM_COLUMNS "holder_run, holder_host, holder_pid, holder_pid_start, holder_log"
/* A load's row: JOB_COLUMNS, the claim's run (NULL: unclaimed), and the files. */
#define LOAD_CLAIMED_COLUMN JOB_CLAIM_COLUMN
#define LOAD_FILES_COLUMN (JOB_CLAIM_COLUMN + 1)

/* Clears the claim, turning it into the latest (interrupted) attempt. Refers to the old row. */
#define INTERRUPT_SET \
	"status = 'interrupted', exit_code = NULL, start_ns = COALESCE(holder_since, start_ns)," \
	" end_ns = ?2, host = COALESCE(holder_host, host), pid = COALESCE(holder_pid, pid)," \
	" run_id = COALESCE(holder_run, run_id), log_path = COALESCE(holder_log, log_path)," \
	" holder_run = NULL, holder_host = NULL, holder_pid = NULL, holder_pid_start = NULL," \
	" holder_since = NULL, holder_log = NULL"

static const char *const statement_sql[STMT_COUNT] = {
	[STMT_BEGIN_READ] = "BEGIN",
	[STMT_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	/* max(id) is a b-tree seek; count(*) would read a whole index. Ids are dense unless jobs were forgotten. */
	[STMT_LOAD_GENERATION] = "SELECT token FROM generation",
	[STMT_LOAD_SIZES] = "SELECT (SELECT max(id) FROM files), (SELECT max(id) FROM jobs)",
	[STMT_LOAD_FILES] = "SELECT id, path, size, mtime_ns, hash FROM files ORDER BY id",
	/*
	 * Each column a row returns costs, and few jobs are claimed: the load reads a claim's
	 * details in a second pass over the claimed rows only (STMT_LOAD_CLAIMS, same transaction).
	 */
	[STMT_LOAD_JOBS] = "SELECT " JOB_COLUMNS ", holder_run, files FROM jobs ORDER BY id",
	[STMT_LOAD_CLAIMS] = "SELECT " CLAIM_COLUMNS " FROM jobs WHERE holder_run IS NOT NULL ORDER BY id",
	[STMT_JOB_SELECT] = "SELECT " JOB_COLUMNS ", " CLAIM_COLUMNS " FROM jobs WHERE name = ?1",
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

/* ---- Small helpers ------------------------------------------------------- */

int64_t state_now_ns(void)
{
	return wall_clock_ns();
}

/* ---- SQLite access ----------------------------------------------------------- */

/* What every damage message starts its explanation with; the CLI adds the way out (CP_ERR_STATE_DAMAGED). */
#define DAMAGED "the state database is damaged"

int db_fail_sql(struct state *state, const char *sql, struct cp_err *err)
{
	int code = sqlite3_extended_errcode(state->db);
	const char *hint = "";
	if ((code & 0xff) == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		hint = "; " DAMAGED;
	else if (sqlite3_system_errno(state->db) == EFBIG)
		hint = "; the file size limit (ulimit -f) is below what the state database needs";
	cp_err_set(err, NULL, 0, "%s: %s (in SQL: %s)%s", state->db_path, sqlite3_errmsg(state->db), sql, hint);
	if (*hint && hint[2] == DAMAGED[0])
		err->kind = CP_ERR_STATE_DAMAGED;
	return STATE_ERROR;
}

int db_fail(struct state *state, enum statement id, struct cp_err *err)
{
	return db_fail_sql(state, statement_sql[id], err);
}

/* The prepared statement `id`, reset and unbound; NULL (err set) when it cannot be prepared. */
sqlite3_stmt *statement(struct state *state, enum statement id, struct cp_err *err)
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

/* Step a statement that returns no rows (or whose rows are ignored) to completion, then reset it. */
int statement_run(struct state *state, enum statement id, sqlite3_stmt *stmt, struct cp_err *err)
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
int statement_exec(struct state *state, enum statement id, struct cp_err *err)
{
	sqlite3_stmt *stmt = statement(state, id, err);
	if (!stmt)
		return STATE_ERROR;
	return statement_run(state, id, stmt, err);
}

char *column_strdup(sqlite3_stmt *stmt, int column)
{
	const unsigned char *text = sqlite3_column_text(stmt, column);
	return text ? xstrdup((const char *)text) : NULL;
}

/* ---- Transactions -------------------------------------------------------- */

/* Writes join the caller's explicit transaction, or run in their own. */
int write_begin(struct state *state, struct cp_err *err)
{
	if (state->transaction_depth > 0)
		return 0;
	return statement_exec(state, STMT_BEGIN_WRITE, err);
}

void rollback_quietly(struct state *state)
{
	struct cp_err ignored = CP_ERR_INIT;
	if (sqlite3_get_autocommit(state->db) == 0)
		statement_exec(state, STMT_ROLLBACK, &ignored);
	cp_err_release(&ignored);
}

int write_end(struct state *state, int rc, struct cp_err *err)
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

_Static_assert(sizeof(void *) != 8 || sizeof(struct job_entry) == 56, "a job record stays 56 bytes");
_Static_assert(sizeof(void *) != 8 || sizeof(struct file_entry) == 40, "a file record stays 40 bytes");
_Static_assert(sizeof(struct job_file) == 28, "a recorded file stays 28 bytes");

void job_clear_files(struct job_entry *job)
{
	if (job->files_owned)
		free(job->files);
	job->files = NULL;
	job->files_owned = false;
	job->input_count = 0;
	job->output_count = 0;
}

struct job_entry *job_find(const struct state *state, const char *job_id)
{
	size_t index = index_find(state, &state->job_index, INDEX_JOBS, job_id, name_hash(job_id));
	if (index == SIZE_MAX || !state->jobs[index].present)
		return NULL;
	return &state->jobs[index];
}

size_t job_intern(struct state *state, const char *job_id)
{
	uint64_t hash = name_hash(job_id);
	size_t index = index_find(state, &state->job_index, INDEX_JOBS, job_id, hash);
	return index != SIZE_MAX ? index : job_add(state, job_id, hash, NULL);
}

/* Add a job id known not to be indexed yet; with a `batch`, to the index through it. */
size_t job_add(struct state *state, const char *job_id, uint64_t hash, struct index_batch *batch)
{
	ALLOC_GROW(state->jobs, state->job_count + 1, state->job_cap);
	struct job_entry *job = &state->jobs[state->job_count];
	memset(job, 0, sizeof(*job));
	job->job_id = pool_add(&state->pool, job_id);
	if (batch)
		index_batch_add(batch, state->job_count, hash);
	else
		index_add(&state->job_index, state->job_count, hash);
	return state->job_count++;
}

/* A column's text (NULL when NULL); valid until the statement steps or is reset. */
static const char *column_text(sqlite3_stmt *stmt, int column)
{
	return (const char *)sqlite3_column_text(stmt, column);
}

/*
 * A pooled copy of `text` (NULL stays NULL). `recent` (may be NULL) remembers
 * the last copy made for this column: host and run id repeat from job to job,
 * so they are stored once.
 */
const char *pool_text(struct state *state, const char *text, const char **recent)
{
	if (!text)
		return NULL;
	if (recent && same_text(text, *recent))
		return *recent;
	const char *copy = pool_add(&state->pool, text);
	if (recent)
		*recent = copy;
	return copy;
}

/* The attempt block of a row (see attempt_intern). */
static const struct job_attempt *attempt_from_row(struct state *state, const struct job_entry *job,
						   sqlite3_stmt *stmt)
{
	struct attempt_origin origin = {
		.host = column_text(stmt, 9),
		.pid = sqlite3_column_int64(stmt, 10),
		.run_id = column_text(stmt, 11),
		.log_path = column_text(stmt, 12),
	};
	struct job_attempt facts = {
		.exit_code = sqlite3_column_int(stmt, 6),
		.start_ns = sqlite3_column_int64(stmt, 7),
		.end_ns = sqlite3_column_int64(stmt, 8),
	};
	return attempt_intern(state, job, &facts, &origin);
}

/*
 * The claim block of a row whose CLAIM_COLUMNS start at column `at` (NULL:
 * unclaimed): the job's own when unchanged, else a new pooled one.
 */
static const struct job_claim *claim_from_row(struct state *state, const struct job_entry *job, sqlite3_stmt *stmt,
					      int at)
{
	/* Few jobs are claimed: the other claim columns are read only when one is. */
	const char *run = column_text(stmt, at);
	if (!run)
		return NULL;
	struct job_claim row = {
		.run = run,
		.host = column_text(stmt, at + 1),
		.pid = sqlite3_column_int64(stmt, at + 2),
		.pid_start = sqlite3_column_int64(stmt, at + 3),
		.log = column_text(stmt, at + 4),
	};
	const struct job_claim *old = job->claim;
	if (old && old->pid == row.pid && old->pid_start == row.pid_start && same_text(old->run, row.run) &&
	    same_text(old->host, row.host) && same_text(old->log, row.log))
		return old;
	struct job_claim *claim = arena_alloc(&state->pool, sizeof(*claim));
	*claim = row;
	/* A run's claims share its run id and host with each other and with its attempts. */
	claim->run = pool_text(state, row.run, &state->recent_run);
	claim->host = pool_text(state, row.host, &state->recent_host);
	claim->log = pool_text(state, row.log, NULL);
	return claim;
}

enum job_outcome outcome_from_text(const char *text)
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

/* A load's mark on a claimed job until load_claims reads its claim. */
static const struct job_claim claim_pending;

/* Fill a job's row fields but the claim from a row of JOB_COLUMNS (files untouched). */
static void job_unclaimed_from_row(struct state *state, struct job_entry *job, sqlite3_stmt *stmt)
{
	job->present = true;
	job->outcome = outcome_from_text(column_text(stmt, 1));
	job->recorded = sqlite3_column_int(stmt, 2) != 0;
	job->adopted = sqlite3_column_int(stmt, 3) != 0;
	job->definition_hash = (uint64_t)sqlite3_column_int64(stmt, 4);
	job->input_set_hash = (uint64_t)sqlite3_column_int64(stmt, 5);
	job->attempt = attempt_from_row(state, job, stmt);
}

/* Fill a job's row fields from a row of JOB_COLUMNS then CLAIM_COLUMNS (files untouched). */
static void job_from_row(struct state *state, struct job_entry *job, sqlite3_stmt *stmt)
{
	job_unclaimed_from_row(state, job, stmt);
	job->claim = claim_from_row(state, job, stmt, JOB_CLAIM_COLUMN);
}

/* Re-read one job's row after a write (files untouched); a missing row forgets the job. */
int job_reload(struct state *state, const char *job_id, struct cp_err *err)
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
size_t job_files_normalize(struct job_file *part, size_t count)
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
size_t job_files_find(const struct job_file *part, size_t count, size_t file_index)
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

int run_sql(struct state *state, const char *sql, struct cp_err *err)
{
	if (sqlite3_exec(state->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail_sql(state, sql, err);
	return 0;
}

int pragma_int(struct state *state, const char *sql, int *out, struct cp_err *err)
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
	if (run_sql(state, wal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL", err) < 0)
		return STATE_ERROR;
	/*
	 * No memory map: its pages would count in the process's memory (the whole file,
	 * hundreds of MB at a million subjects). The load reads every page once, so a
	 * page cache of 128 KiB does until it is done (1 MiB was a MiB of a no-op's peak);
	 * writes get a larger one after it (see load).
	 */
	if (run_sql(state, "PRAGMA mmap_size = 0", err) < 0)
		return STATE_ERROR;
	return run_sql(state, "PRAGMA cache_size = -128", err);
}

/* No entry for this id in an id_table. */
#define NO_ENTRY UINT32_MAX

/* A lookup table from database ids (1..max) to file indexes (below FILE_INDEX_LIMIT: 4 bytes do), all NO_ENTRY. */
static uint32_t *id_table(int64_t max_id)
{
	size_t count = max_id > 0 ? (size_t)max_id + 1 : 1;
	uint32_t *table = xmalloc(count * sizeof(*table));
	for (size_t i = 0; i < count; i++)
		table[i] = NO_ENTRY;
	return table;
}

/*
 * Decode the `files` blob of a loaded job row into `*all` (growing it) from
 * `*used` on, mapping file ids to file indexes. A damaged blob fails, naming the job.
 */
static int load_job_files(struct job_entry *job, sqlite3_stmt *stmt, const uint32_t *file_by_id,
			  int64_t max_file_id, struct job_file **all, size_t *used, size_t *all_cap, struct cp_err *err)
{
	const void *data = sqlite3_column_blob(stmt, LOAD_FILES_COLUMN);
	size_t size = (size_t)sqlite3_column_bytes(stmt, LOAD_FILES_COLUMN);
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
		if (id <= 0 || id > max_file_id || file_by_id[id] == NO_ENTRY) {
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

/*
 * The claim details of the `claimed` jobs the load marked with &claim_pending.
 * The query runs in the load's transaction, so its rows are those jobs, in
 * the same (id, so job index) order.
 */
static int load_claims(struct state *state, size_t claimed, struct cp_err *err)
{
	sqlite3_stmt *stmt = statement(state, STMT_LOAD_CLAIMS, err);
	if (!stmt)
		return STATE_ERROR;
	size_t next = 0, found = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && found < claimed) {
		while (state->jobs[next].claim != &claim_pending)
			next++;
		struct job_entry *job = &state->jobs[next];
		job->claim = NULL;
		job->claim = claim_from_row(state, job, stmt, 0);
		found++;
	}
	statement_done(stmt);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(state, STMT_LOAD_CLAIMS, err);
	if (rc == SQLITE_ROW || found != claimed) {
		/* One transaction's two scans of a table disagree: only a damaged file does that. */
		cp_err_set(err, NULL, 0, "%s: %zu claimed jobs but %s%zu claims; %s", state->db_path, claimed,
			   rc == SQLITE_ROW ? "more than " : "", found, DAMAGED);
		err->kind = CP_ERR_STATE_DAMAGED;
		return STATE_ERROR;
	}
	return 0;
}

/*
 * The database's generation token (see src/state_snapshot.c), in the load's
 * read transaction; `*have` stays false when its row is not there.
 */
static int load_generation(struct state *state, unsigned char token[SNAPSHOT_TOKEN_BYTES], bool *have,
			   struct cp_err *err)
{
	sqlite3_stmt *stmt = statement(state, STMT_LOAD_GENERATION, err);
	if (!stmt)
		return STATE_ERROR;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) == SNAPSHOT_TOKEN_BYTES) {
		memcpy(token, sqlite3_column_blob(stmt, 0), SNAPSHOT_TOKEN_BYTES);
		*have = true;
	}
	statement_done(stmt);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(state, STMT_LOAD_GENERATION, err);
}

/*
 * Fill the in-memory records from the snapshot when it holds, else with one
 * query per table (after one query for their sizes), keeping them in a new snapshot.
 */
static int load(struct state *state, struct cp_err *err)
{
	uint32_t *file_by_id = NULL;
	int64_t max_file_id = 0, max_job_id = 0;
	int rc = STATE_ERROR;
	sqlite3_stmt *stmt;

	if (statement_exec(state, STMT_BEGIN_READ, err) < 0)
		return STATE_ERROR;
	unsigned char token[SNAPSHOT_TOKEN_BYTES];
	bool have_token = false, keep = false;
	size_t used = 0;
	if (load_generation(state, token, &have_token, err) < 0)
		goto out;
	/* State check reads the rows themselves: it looks for damage the snapshot would hide. */
	if (have_token && !state->check_mode && snapshot_load(state, token)) {
		state->stats.snapshot_loaded = true;
		goto loaded;
	}

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
	/* Records hold 32-bit row ids and indexes (30-bit file indexes). */
	if (max_file_id >= (int64_t)FILE_INDEX_LIMIT || max_job_id > UINT32_MAX - 1) {
		cp_err_set(err, NULL, 0, "%s: row ids up to %lld, more than cpipe can load", state->db_path,
			   (long long)(max_file_id > max_job_id ? max_file_id : max_job_id));
		goto out;
	}
	size_t file_rows = max_file_id > 0 ? (size_t)max_file_id : 0;
	size_t job_rows = max_job_id > 0 ? (size_t)max_job_id : 0;
	/* Exactly as many as the rows: a no-op adds none, and a doubled array would be a third of them unused. */
	state->files = xrealloc(state->files, (file_rows ? file_rows : 1) * sizeof(*state->files));
	state->file_cap = file_rows;
	index_reserve(&state->file_index, file_rows);
	state->jobs = xrealloc(state->jobs, (job_rows ? job_rows : 1) * sizeof(*state->jobs));
	state->job_cap = job_rows;
	index_reserve(&state->job_index, job_rows);
	file_by_id = id_table(max_file_id);

	if (!(stmt = statement(state, STMT_LOAD_FILES, err)))
		goto out;
	bool bad_id = false;
	struct index_batch batch = {.index = &state->file_index};
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(stmt, 0);
		const char *path = (const char *)sqlite3_column_text(stmt, 1);
		if ((bad_id = id <= 0)) {
			/* cpipe never writes one, and a record holds ids from 1 to FILE_INDEX_LIMIT - 1. */
			cp_err_set(err, NULL, 0, "%s: file row id %lld out of range; %s", state->db_path, (long long)id,
				   DAMAGED);
			err->kind = CP_ERR_STATE_DAMAGED;
			break;
		}
		size_t index = file_add(state, path, name_hash(path), &batch);
		struct file_entry *file = &state->files[index];
		file->db_id = (uint32_t)id; /* from 1 to max_file_id, checked above */
		if (sqlite3_column_type(stmt, 4) != SQLITE_NULL) {
			file->hashed = true;
			file->size = sqlite3_column_int64(stmt, 2);
			file->mtime_ns = sqlite3_column_int64(stmt, 3);
			file->hash = (uint64_t)sqlite3_column_int64(stmt, 4);
		}
		if (id <= max_file_id)
			file_by_id[id] = (uint32_t)index; /* below FILE_INDEX_LIMIT (file_add) */
	}
	statement_done(stmt);
	index_batch_flush(&batch);
	if (bad_id) {
		rc = STATE_ERROR;
		goto out;
	}
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
	size_t all_cap = 0, claimed = 0;
	batch = (struct index_batch){.index = &state->job_index};
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		/* Names are UNIQUE in the table: no lookup needed. */
		const char *name = (const char *)sqlite3_column_text(stmt, 0);
		size_t index = job_add(state, name, name_hash(name), &batch); /* may grow state->jobs */
		struct job_entry *job = &state->jobs[index];
		job_unclaimed_from_row(state, job, stmt);
		job->claim = sqlite3_column_type(stmt, LOAD_CLAIMED_COLUMN) != SQLITE_NULL ? &claim_pending : NULL;
		claimed += job->claim != NULL;
		job->files = (struct job_file *)(uintptr_t)used;
		size_t before = used;
		if (load_job_files(job, stmt, file_by_id, max_file_id, &all, &used, &all_cap, err) < 0) {
			if (!state->check_mode) {
				char *what = xstrdup(err->message);
				cp_err_set(err, NULL, 0, "%s: %s; %s", state->db_path, what, DAMAGED);
				err->kind = CP_ERR_STATE_DAMAGED;
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
	index_batch_flush(&batch);
	/* The array grew by doubling: give back what no job uses (shrinking a large block moves no data). */
	state->loaded_job_files = all = used ? xrealloc(all, used * sizeof(*all)) : all;
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
	if (claimed && (rc = load_claims(state, claimed, err)) < 0)
		goto out;
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
	keep = have_token && !state->check_mode && !state->read_only;
loaded:
	rc = statement_exec(state, STMT_COMMIT, err);
	/* After the read transaction: writing the file must not hold back a writer (a rollback journal's). */
	if (rc == 0 && keep)
		snapshot_write(state, token, used);
	/* A large batch writes many pages per transaction: keep them in memory (16 MiB) rather than spill. */
	if (rc == 0)
		rc = run_sql(state, "PRAGMA cache_size = -16384", err);
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
		rc = migrate_schema(state, err);
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
int integrity_check(struct state *state, struct strvec *problems, struct cp_err *err)
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
	state->default_log = (struct strbuf)STRBUF_INIT;
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
				   state->db_path, DAMAGED);
			err->kind = CP_ERR_STATE_DAMAGED;
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
	if ((!state->read_only && setup_journal(state, dir.buf, err) < 0) || migrate_schema(state, err) < 0 ||
	    load(state, err) < 0)
		goto fail;
	/* After a crash, check what is cheap to check only then (a full scan of the file). */
	if (state->unclean && !check_mode) {
		struct strvec problems = STRVEC_INIT;
		int rc = integrity_check(state, &problems, err);
		bool damaged = rc == 0 && problems.count;
		if (damaged) {
			cp_err_set(err, NULL, 0, "%s: the integrity check after an unclean shutdown failed; %s",
				   state->db_path, DAMAGED);
			err->kind = CP_ERR_STATE_DAMAGED;
		}
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

/* Free the records of files and jobs, their indexes and pool, leaving none (a fresh handle's). */
void records_release(struct state *state)
{
	free(state->files);
	state->files = NULL;
	state->file_count = state->file_cap = 0;
	free(state->file_index.slots);
	state->file_index = (struct name_index){0};
	for (size_t i = 0; i < state->job_count; i++)
		job_clear_files(&state->jobs[i]);
	free(state->jobs);
	state->jobs = NULL;
	state->job_count = state->job_cap = 0;
	free(state->job_index.slots);
	state->job_index = (struct name_index){0};
	free(state->loaded_job_files);
	state->loaded_job_files = NULL;
	arena_release(&state->pool);
	arena_release(&state->attempts);
	state->recent_host = state->recent_run = NULL;
	state->recent_origin = NULL;
	state->recent_attempt = NULL;
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
	records_release(state);
	free(state->dirty_files);
	free(state->run_id);
	free(state->host);
	strvec_release(&state->dead_runs);
	strvec_release(&state->damaged_jobs);
	strvec_release(&state->damage_notes);
	free(state->failure_windows);
	free(state->db_path);
	reason_scratch_release(&state->reason_scratch);
	strbuf_release(&state->default_log);
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

/* ---- Diagnostics ------------------------------------------------------- */

void state_stats(const struct state *state, struct state_stats *out)
{
	*out = state->stats;
	out->jobs = 0;
	for (size_t i = 0; i < state->job_count; i++)
		out->jobs += state->jobs[i].present;
	out->files = state->file_count;
}
