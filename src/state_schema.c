/*
 * The state database's schema and its migrations, and the encoding of the
 * blob that holds a job's recorded files in its row. Part of the state
 * module (state_int.h lists its files).
 */
#include "state_int.h"

#include <endian.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

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
	 * row (see FILES BLOB below). `jobs` is rebuilt for the new column so that its
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
	/*
	 * 3: a token that every write of a `files` or `jobs` row replaces, by
	 * whatever writes it: the snapshot of the loaded records holds only while
	 * the token is the one it was made under (src/state_snapshot.c). Random,
	 * not a counter: a database restored from a copy must not meet its old count.
	 */
	{.sql =
	"CREATE TABLE generation (token BLOB NOT NULL);"
	"INSERT INTO generation VALUES (randomblob(16));"
	"CREATE TRIGGER files_insert_generation AFTER INSERT ON files"
	" BEGIN UPDATE generation SET token = randomblob(16); END;"
	"CREATE TRIGGER files_update_generation AFTER UPDATE ON files"
	" BEGIN UPDATE generation SET token = randomblob(16); END;"
	"CREATE TRIGGER files_delete_generation AFTER DELETE ON files"
	" BEGIN UPDATE generation SET token = randomblob(16); END;"
	"CREATE TRIGGER jobs_insert_generation AFTER INSERT ON jobs"
	" BEGIN UPDATE generation SET token = randomblob(16); END;"
	"CREATE TRIGGER jobs_update_generation AFTER UPDATE ON jobs"
	" BEGIN UPDATE generation SET token = randomblob(16); END;"
	"CREATE TRIGGER jobs_delete_generation AFTER DELETE ON jobs"
	" BEGIN UPDATE generation SET token = randomblob(16); END;"},
};
_Static_assert(ARRAY_SIZE(migrations) == STATE_SCHEMA_VERSION, "one migration per schema version");

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

static void blob_add_u64le(struct strbuf *blob, uint64_t value)
{
	unsigned char bytes[8];
	for (size_t i = 0; i < 8; i++)
		bytes[i] = (unsigned char)(value >> (8 * i));
	strbuf_add(blob, bytes, sizeof(bytes));
}

/* Start a blob (`blob` reset first) for that many inputs then outputs, added next with files_blob_add. */
void files_blob_start(struct strbuf *blob, size_t input_count, size_t output_count)
{
	strbuf_reset(blob);
	strbuf_addch(blob, FILES_BLOB_VERSION);
	strbuf_add_uvarint(blob, input_count);
	strbuf_add_uvarint(blob, output_count);
}

void files_blob_add(struct strbuf *blob, int64_t file_id, const struct file_signature *sig)
{
	strbuf_add_uvarint(blob, (uint64_t)file_id);
	unsigned char flags = 0;
	if (sig->exists)
		flags = sig->hashed ? FILE_EXISTS | FILE_HASHED : FILE_EXISTS;
	strbuf_addch(blob, (char)flags);
	if (flags & FILE_EXISTS) {
		strbuf_add_uvarint(blob, (uint64_t)sig->size);
		blob_add_u64le(blob, (uint64_t)sig->mtime_ns);
	}
	if (flags & FILE_HASHED)
		blob_add_u64le(blob, sig->hash);
}

bool blob_fail(struct files_blob_reader *reader, const char *problem)
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
	int rc = uvarint_read(&reader->at, reader->end, out);
	return rc == 0 || blob_fail(reader, rc == UVARINT_OVERFLOW ? "varint overflows 64 bits" : "truncated");
}

static bool blob_read_u64le(struct files_blob_reader *reader, uint64_t *out)
{
	if (reader->end - reader->at < 8)
		return blob_fail(reader, "truncated");
	uint64_t value;
	memcpy(&value, reader->at, sizeof(value)); /* one load; the bytes are least significant first */
	reader->at += 8;
	*out = le64toh(value);
	return true;
}

/* Begin decoding `size` bytes at `data`: check the version and read the counts. */
bool files_blob_open(struct files_blob_reader *reader, const void *data, size_t size, size_t *input_count,
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
	if (inputs > UINT32_MAX || outputs > JOB_OUTPUTS_LIMIT)
		return blob_fail(reader, "more files than a record holds");
	*input_count = (size_t)inputs;
	*output_count = (size_t)outputs;
	return true;
}

bool files_blob_next(struct files_blob_reader *reader, int64_t *file_id, struct file_signature *sig)
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
	*sig = (struct file_signature){.exists = flags & FILE_EXISTS, .size = (int64_t)size,
				       .mtime_ns = (int64_t)mtime_ns, .hash = hash, .hashed = flags & FILE_HASHED};
	return true;
}

/* After the last file: nothing may be left. */
bool files_blob_close(struct files_blob_reader *reader)
{
	return reader->at == reader->end || blob_fail(reader, "bytes after the last file");
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
	return rc < 0 ? STATE_ERROR : run_sql(state, "DROP TABLE job_files", err);
}

int migrate_schema(struct state *state, struct cp_err *err)
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
		if ((migration->sql && run_sql(state, migration->sql, err) < 0) ||
		    (migration->step && migration->step(state, err) < 0))
			goto fail;
		char *sql = xasprintf("PRAGMA user_version = %d", version + 1);
		int rc = run_sql(state, sql, err);
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
