/*
 * state: cpipe's SQLite state database (`.cpipe/state.db` under the data
 * root). It records what each job read and wrote, and decides whether a job is
 * up to date and, when it is not, why (the first applicable reason).
 *
 * It knows job ids (opaque strings the caller builds, e.g.
 * "recipe/name=value,..."), definition text, and file paths; it knows nothing
 * of trees, recipes or scheduling.
 *
 * Paths are opaque keys that are also passed to stat()/open() as given: the
 * caller passes them normalised and consistently (absolute, or relative to the
 * working directory cpipe runs in). A directory is signed by existence only.
 *
 * Speed: state_open() loads every job and file record into memory with one
 * query per table (a job's recorded files are one blob in its row); checking
 * a job is then stat() calls (state_stat_paths can do them up front, in
 * parallel) and in-memory compares.
 * Content hashes (XXH3-64) are computed lazily: a file is hashed only when its
 * size or mtime differs from the cached signature, and the new hash is cached.
 *
 * Threads: a handle is used by one thread at a time. It may be opened in one
 * thread (e.g. in the background while the caller builds its job graph) and
 * used in another once that thread is joined, but never by two threads at
 * once. Distinct handles are independent: the module keeps no mutable global
 * data (each handle has its own SQLite connection).
 *
 * Concurrency: two cpipe processes may open the same database. A job is
 * claimed (state_claim_job) inside a write transaction before it runs; a claim
 * held by a live process on this host (or by any process on another host)
 * cannot be taken. A claim whose holder died is treated as an interrupted run.
 * Records loaded at open are a snapshot: a job another run finished after our
 * open may be judged stale, but its claim then fails with STATE_CHANGED and
 * the new record is loaded, so the caller decides again and never runs a job
 * twice because it looked too early.
 *
 * Errors: functions return 0 on success and a negative code on failure, with
 * a message in `err` (database errors name the statement that failed).
 *
 * Source: src/state.c (the handle: open, load, transactions, the in-memory
 * records) with src/state_schema.c (schema, migrations, the files blob),
 * state_files.c (signatures, hash cache, state_stat_paths), state_reason.c
 * (reasons, adoption suspects), state_record.c (claims and records),
 * state_check.c (check and repair) and state_list.c (listing), sharing the
 * private src/state_int.h.
 */
#ifndef CPIPE_STATE_H
#define CPIPE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpipe/util.h"

struct state; /* opaque; one open database plus its in-memory records */

/* Return codes (all errors are negative; 0 is success). */
#define STATE_ERROR (-1) /* any failure: I/O, SQLite, bad schema */
#define STATE_HELD (-2)  /* state_claim_job: another live run holds the job */
#define STATE_CHANGED (-3) /* state_claim_job: another run finished the job after this handle loaded it */
#define STATE_BUSY (-4)    /* state_begin: another process held the write lock for the whole lock timeout */

/* How long a write waits for another process's lock before failing (state_set_lock_timeout changes it). */
#define STATE_LOCK_TIMEOUT_MS 60000

/* The schema version this build writes (PRAGMA user_version). */
#define STATE_SCHEMA_VERSION 3

/*
 * Open (creating if needed) `<data_root>/.cpipe/state.db`, creating the
 * `.cpipe` directory. Uses WAL when the filesystem allows it (not on
 * NFS/Lustre/GPFS, or when SQLite refuses), else a rollback journal, silently.
 * Applies schema migrations up to STATE_SCHEMA_VERSION (fails on a newer
 * database), then loads all records into memory. This process's identity
 * (host name, pid, a fresh run id) is used for claims and attempts.
 * On success *out owns the handle (free with state_close); on failure *out is
 * NULL and err is set.
 */
int state_open(const char *data_root, struct state **out, struct cp_err *err);

/*
 * state_open for `cpipe state check` and `cpipe state repair`: a job whose
 * recorded files cannot be decoded does not fail the open (it is kept for
 * state_check to report, with no files and not recorded), and no integrity
 * check is made at open (state_check makes one). Use the handle for nothing
 * else than those two and reading.
 *
 * state_open itself refuses an empty (0-byte) state.db, which cpipe never
 * leaves (a new database is created under a temporary name and linked into
 * place with its schema), and runs PRAGMA integrity_check when a -wal or
 * -journal file with content shows that the last writer did not close (or
 * that another process has the database open: the check is then merely
 * unneeded); a
 * damaged database fails with a message saying how to get out of it. When
 * the .cpipe directory or the database is not writable, the database is
 * opened read-only (writes then fail), so a read-only study can be planned
 * and shown.
 */
int state_open_for_check(const char *data_root, struct state **out, struct cp_err *err);

/*
 * Write pending lazy updates (re-hashed file signatures), commit an explicit
 * transaction left open (as state_commit would), close the database and free
 * everything. NULL is a no-op. Errors while flushing are silently dropped: call
 * state_flush first to see them.
 */
void state_close(struct state *state);

/* The path of the database file (owned by the state). */
const char *state_db_path(const struct state *state);

/* This process's run id (owned by the state), stored with claims and attempts. */
const char *state_run_id(const struct state *state);

/*
 * Override the identity used for claims and attempts (tests; a coordinator
 * acting for another process). NULL `run_id`/`host` keep the current values;
 * `pid` <= 0 keeps the current pid. Strings are copied.
 */
void state_set_identity(struct state *state, const char *run_id, const char *host, int64_t pid);

/* ---- Transactions ------------------------------------------------------ */

/*
 * Begin an explicit write transaction (BEGIN IMMEDIATE: takes the write lock,
 * waiting up to the busy timeout). Nests: only the outermost begin/commit pair
 * touches the database. Every write made inside joins it, so a scheduler that
 * wraps each pass of its loop (reap finished jobs, record them, claim new ones)
 * in begin/commit does one fsync per pass, not one per job. Outside an
 * explicit transaction each write function commits on its own.
 * Keep transactions short: a second cpipe run waits on them. Returns
 * STATE_BUSY when the lock timeout passed with the lock held elsewhere (the
 * caller may try again).
 */
int state_begin(struct state *state, struct cp_err *err);

/* Wait up to `milliseconds` for another process's lock before a statement fails (SQLITE_BUSY). */
void state_set_lock_timeout(struct state *state, int milliseconds);

/*
 * End the innermost state_begin; the outermost one writes pending updates and
 * commits. A commit kept waiting by readers (rollback journal) is retried
 * until it goes through: what was written is never dropped for a lock.
 */
int state_commit(struct state *state, struct cp_err *err);

/*
 * Abandon the whole explicit transaction (all nesting levels). The in-memory
 * records may then be ahead of the database: close and reopen to resync.
 */
void state_rollback(struct state *state);

/* Write pending lazy updates now (in their own transaction unless one is open). */
int state_flush(struct state *state, struct cp_err *err);

/* ---- File signatures ---------------------------------------------------- */

/*
 * What a file looked like. `exists` false: all else is 0. `hashed` false with
 * `exists` true: not a regular file (a directory), or not hashed.
 */
struct file_signature {
	bool exists;
	int64_t size;
	int64_t mtime_ns;
	uint64_t hash; /* XXH3-64 of the content, valid when `hashed` */
	bool hashed;
};

/* A path and its signature; the path is borrowed. */
struct state_file {
	const char *path;
	struct file_signature signature;
};

/*
 * Stat `path` now and fill `out`, hashing the content unless the cached record
 * for that path has the same size and mtime (then its hash is reused). A new
 * hash updates the cache (persisted at the next commit/flush/close). A missing
 * file is not an error (exists = false). Fails on other stat/read errors.
 */
int state_file_signature(struct state *state, const char *path, struct file_signature *out, struct cp_err *err);

/*
 * Stat and hash `path` with no handle, database or cache. Compute nodes do
 * not use it (their job script writes size and mtime with stat(1), and the
 * coordinator signs the files with state_file_signature before
 * state_record_success); the unit tests use it to sign files as another
 * process would, independently of the handle under test.
 */
int state_signature_compute(const char *path, struct file_signature *out, struct cp_err *err);

/* XXH3-64 of a job's definition text (expanded command + recipe definition). */
uint64_t state_definition_hash(const char *definition_text);

/* XXH3-64 of the SET of paths: order and duplicates do not matter. */
uint64_t state_input_set_hash(const char *const *paths, size_t count);

/*
 * Forget the stat results remembered for reason checks. state_job_reason stats
 * each path once per handle and reuses the result (a snapshot, so a file that
 * is both an output and a downstream input costs one stat); recording a job
 * or state_file_signature re-stats its files. Call this to see outside edits.
 */
void state_refresh(struct state *state);

/*
 * Stat `paths[0..count)` now and remember the results exactly as
 * state_job_reason's own stat would (the per-handle snapshot that
 * state_refresh forgets), so that checking jobs over these paths afterwards
 * stats nothing. A path is stat'ed at most once (duplicates are allowed) and
 * not at all when a result is already remembered. The stat calls run in up
 * to `threads` threads (0: the number of online CPUs, at most 8), the calling
 * thread being one of them, each thread taking at least 256 of them (so with
 * fewer than 512 paths to stat, all run in the calling thread); so do the
 * lookups of the paths in the handle's path index (each thread taking at least
 * 1024), while adding new paths to it stays in the calling thread. Counts in
 * state_stats().stat_calls. A missing path (ENOENT, ENOTDIR) is remembered as
 * not existing; any other stat error fails with "cannot stat PATH: REASON"
 * for the first such path in `paths` order, as state_job_reason would, and
 * leaves the failed paths unremembered (the other results are kept).
 * `ids` (may be NULL) gets, for each path, the handle's number for it: given
 * back in a state_job_query, it spares the path lookup there.
 */
int state_stat_paths(struct state *state, const char *const *paths, size_t count, unsigned threads,
		     uint32_t *ids, struct cp_err *err);

/*
 * Stat, as state_stat_paths does (in `threads`), every path the database has a record of
 * (with `made_only`, only those some recorded job made: the caller knows the
 * raw files from its own walk and gives them with state_learn_stat) and this
 * handle has not stat'ed yet: on an up-to-date study those are the very
 * files the next checks need, known before the caller's job graph is. A
 * path that cannot be stat'ed is left for state_job_reason to report if a
 * job needs it.
 *
 * With a `share` (may be NULL), other threads may join in: a thread that has
 * finished its own work calls stat_share_help, which waits for the stat to
 * start and then takes its share of the calls until none are left (it
 * returns at once when the stat is over). The thread that would have called
 * state_stat_recorded calls stat_share_end instead when no stat will come
 * (the open failed), so that helpers never wait for nothing.
 * stat_share_free after all of them have returned.
 */
struct stat_share;
struct stat_share *stat_share_new(void);
void stat_share_free(struct stat_share *share);
void state_stat_recorded(struct state *state, unsigned threads, bool made_only, struct stat_share *share);
void stat_share_end(struct stat_share *share);
void stat_share_help(struct stat_share *share);

/*
 * What the caller's own stat of `path` found (an existing file: exists, size
 * and mtime as stat() gives them; no hash), remembered as state_stat_paths
 * would remember it. A path this handle has stat'ed already keeps its result.
 */
void state_learn_stat(struct state *state, const char *path, const struct file_signature *sig);

/* ---- Reasons ------------------------------------------------------------- */

/*
 * Why a job runs, in order of precedence (state_job_reason returns the first
 * that applies). Values are stable: they may be printed or stored.
 */
enum state_reason {
	STATE_UP_TO_DATE = 0,
	STATE_FORCED,             /* query.forced */
	STATE_OUTPUT_MISSING,     /* detail: the first missing output */
	STATE_NEVER_RECORDED,     /* all outputs exist, no successful run recorded and no attempt: adopt or run */
	STATE_OUTPUT_MODIFIED,    /* detail: "PATH" (size/content differs from what the job wrote, or not recorded) */
	STATE_INPUT_CHANGED,      /* detail: the first input whose size/content differs from when the job ran */
	STATE_COMMAND_CHANGED,    /* the definition hash differs */
	STATE_INPUT_SET_CHANGED,  /* detail: "added PATH" or "removed PATH" */
	STATE_UPSTREAM_RUNS,      /* query.upstream_runs */
	STATE_PREVIOUS_FAILED,    /* detail: "exit code N" */
	STATE_PREVIOUS_INTERRUPTED, /* marked interrupted, or claimed by a run that died; detail: "pid N on HOST" */
	STATE_RUNNING_ELSEWHERE,  /* claimed by a live run (state_claim_job will fail); detail: "pid N on HOST" */
	STATE_REASON_COUNT
};

/*
 * The stable lower-case text of a reason: "up to date", "forced", "output
 * missing", "never recorded", "output modified since recorded", "input
 * changed", "command changed", "set of inputs changed", "upstream job runs",
 * "previous run failed", "previous run interrupted", "running in another run".
 */
const char *state_reason_string(enum state_reason reason);

/* Append "REASON" or "REASON: DETAIL" (when detail is non-empty) to `out`. */
void state_reason_describe(enum state_reason reason, const char *detail, struct strbuf *out);

/*
 * One job as the caller sees it now. All pointers are borrowed for the call.
 * `inputs` is a set (order and duplicates ignored); outputs are checked in order.
 */
struct state_job_query {
	const char *job_id;
	uint64_t definition_hash; /* state_definition_hash of the expanded command + recipe definition */
	const char *const *inputs;
	size_t input_count;
	const char *const *outputs;
	size_t output_count;
	/* May be NULL: state_stat_paths' ids of these very inputs and outputs, in order. */
	const uint32_t *input_ids;
	const uint32_t *output_ids;
	bool forced;        /* --force on this job */
	bool upstream_runs; /* the caller will run a job this one depends on */
	/*
	 * Early cutoff: this run holds the job's claim, and the jobs it depends on
	 * that ran have ended: is it up to date with the files as they are now?
	 * This run's own claim is then no reason to run.
	 */
	bool cutoff_check;
	/*
	 * May be NULL: per input, whether a job the caller will run writes it.
	 * Such an input is not compared with the record (it is not final yet):
	 * the job is then at most "upstream job runs", for the caller to check
	 * again once that job has ended (early cutoff).
	 */
	const bool *input_pending;
};

/*
 * Decide whether the job is up to date; *reason is the first applicable
 * reason (see enum state_reason), `detail` (reset first, may be NULL) gets the
 * path or number that explains it. Precedence notes:
 *  - A claim by another live run comes first (after forced): RUNNING_ELSEWHERE
 *    even when an output is missing, since that run is making it.
 *  - An output or input is compared by size+mtime first; only if they differ
 *    is the content hash compared (computed lazily), so a `touch` that keeps
 *    the content is not a change. The new mtime is cached so the file is not
 *    hashed again next time.
 *  - Output/input/command/input-set checks apply only to jobs with a
 *    successful (or adopted) record; a job that only ever failed or was
 *    interrupted gets "previous run failed/interrupted".
 *  - A record left by a claim whose holder is dead (same host, pid gone or
 *    reused) is "previous run interrupted".
 * Fails only on I/O errors (stat other than ENOENT, unreadable files).
 */
int state_job_reason(struct state *state, const struct state_job_query *query, enum state_reason *reason,
		     struct strbuf *detail, struct cp_err *err);

/*
 * Fill `query` for job i of a state_jobs_settled (its definition text in
 * `definition`, the calling thread's own buffer). Called from several threads
 * at once, so it may only read what they share.
 */
typedef void state_query_fn(void *context, size_t i, struct strbuf *definition, struct state_job_query *query);

/*
 * For each job i in [0, count) whose query `fill` gives: settled[i] is true
 * when state_job_reason would find it STATE_UP_TO_DATE and needs no write to
 * say so; false when it would find another reason, and also when saying
 * so needs a write (a path not stat'ed yet, a file to hash, a claim whose
 * holder is to be checked, a query without input_ids and output_ids): ask
 * state_job_reason about those. Writes nothing to the handle, which nothing
 * else may use meanwhile; runs in up to `threads` threads (0: the online
 * CPUs, at most 8), each taking at least 512 jobs, the calling thread one of them.
 */
void state_jobs_settled(struct state *state, size_t count, state_query_fn *fill, void *context, unsigned threads,
			bool *settled);

/* ---- Claims and records --------------------------------------------------- */

/* One attempt's facts. Strings are borrowed; NULL host/pid 0 mean this process. */
struct state_attempt {
	int exit_code;
	int64_t start_ns; /* wall clock, ns since the epoch; 0 when unknown */
	int64_t end_ns;
	const char *host;
	int64_t pid;
	const char *log_path; /* NULL: keep the log path given to state_claim_job */
};

/*
 * Claim `job_id` for this run before running it, atomically (BEGIN IMMEDIATE,
 * or inside the caller's explicit transaction). Reads the holder from the
 * database, not the snapshot. Succeeds (0) when nobody holds the job, this run
 * already holds it, or the holder is dead (same host and kill(pid, 0) fails
 * with ESRCH, or /proc/PID shows a different process start time). Returns
 * STATE_HELD, with "job J is held by run R (pid P on host H)" in err, when a
 * live holder has it; STATE_CHANGED, with "job J was finished by another run
 * after this one looked at it" in err and the job's new record (files too)
 * loaded, when the database holds a finished attempt this handle did not
 * know of: decide again (state_refresh_paths, then state_job_reason); a holder on another host always counts as live (clear
 * it with state_mark_interrupted). `log_path` (may be NULL) is stored so
 * `cpipe log` finds the log while the job runs. Creates the record if needed.
 */
int state_claim_job(struct state *state, const char *job_id, const char *log_path, struct cp_err *err);

/*
 * Append to `out` (skipping ids already there) the run ids of claims whose
 * holder is dead on this host: the claims in the snapshot, and those that
 * state_claim_job took over. A run killed outright leaves its jobs' processes
 * running; the caller must end them (their environment names the run id,
 * see exec_end_runs) before it runs those jobs again.
 */
void state_dead_runs(struct state *state, struct strvec *out);

/* Forget the remembered stat results of these paths only (see state_refresh). */
void state_refresh_paths(struct state *state, const char *const *paths, size_t count);

/*
 * Whether the outputs of a job about to be adopted (STATE_NEVER_RECORDED)
 * may be the work of a failed or interrupted attempt: *suspect is true when
 * an output's mtime lies within the time (give or take a second) during
 * which any job recorded as failed or interrupted ran; `detail` (may be
 * NULL) is appended "PATH was written while a job failed or was
 * interrupted". Catches a partial output that moved out of its job's reach
 * (a directory renamed while the job ran). Fails only on I/O errors.
 */
int state_adoption_suspect(struct state *state, const struct state_job_query *query, bool *suspect,
			   struct strbuf *detail, struct cp_err *err);

/* Drop this run's claim on a job it did not run after all; the record is otherwise unchanged. */
int state_release_claim(struct state *state, const char *job_id, struct cp_err *err);

/* What a successful attempt read and wrote. Everything is borrowed. */
struct state_outcome {
	const char *job_id;
	uint64_t definition_hash; /* state_definition_hash() of the definition text */
	const struct state_file *inputs;
	size_t input_count;
	const struct state_file *outputs;
	size_t output_count;
	struct state_attempt attempt;
};

/*
 * Record a successful run from explicit signatures (no stat here): the path
 * for results imported from a compute node's marker file. Replaces the job's
 * recorded inputs/outputs, definition hash and input-set hash; status done;
 * clears any claim. The given signatures also refresh the hash cache; later
 * reason checks stat those paths afresh.
 */
int state_record_success(struct state *state, const struct state_outcome *outcome, struct cp_err *err);

/*
 * Convenience: stat and hash (cache-aware, fresh stats) the query's inputs and
 * outputs now, then state_record_success. `attempt` may be NULL (exit 0, no
 * times, this process).
 */
int state_record_success_stat(struct state *state, const struct state_job_query *query,
			      const struct state_attempt *attempt, struct cp_err *err);

/*
 * Early cutoff: a job this run claimed, to run only because jobs it depends
 * on ran, which have ended. Stat its files afresh and check it as
 * state_job_reason does with query->cutoff_check (forced and upstream_runs
 * ignored). Up to date: its record is rewritten with the signatures just
 * compared (an input only touched keeps its content and gets its new mtime),
 * keeping the definition and the last attempt's facts and log, the claim is
 * cleared, and *recorded is true. Otherwise nothing is written, *recorded is
 * false and `detail` (may be NULL) says why it is not up to date: the claim
 * stays for the caller to release. It never records a job whose files
 * differ from what its last run read and wrote.
 */
int state_record_unchanged(struct state *state, const struct state_job_query *query, bool *recorded,
			   struct strbuf *detail, struct cp_err *err);

/*
 * Record a failed attempt: status failed with its exit code/times/host/pid/log;
 * clears any claim. The signatures of the last successful run are kept.
 */
int state_record_failure(struct state *state, const char *job_id, const struct state_attempt *attempt,
			 struct cp_err *err);

/* Mark one job interrupted (e.g. killed by ^C) and clear its claim, whoever holds it. */
int state_mark_interrupted(struct state *state, const char *job_id, struct cp_err *err);

/* Mark every job this run still holds interrupted (clean shutdown after a signal). */
int state_interrupt_run(struct state *state, struct cp_err *err);

/*
 * Record the job as done with its files' current signatures (stat + hash) and
 * the query's definition: for outputs that exist but were never recorded
 * (STATE_NEVER_RECORDED) when the caller adopts them. Marks the record adopted.
 */
int state_adopt(struct state *state, const struct state_job_query *query, struct cp_err *err);

/*
 * Delete records: every job whose id starts with `prefix` (NULL: none; "":
 * all) and every id in `job_ids[0..count)`. Uses the database, so it also
 * removes records written after open. *forgotten (may be NULL) gets the
 * number of jobs removed. A claim of a live run is removed too: the CLI
 * should not forget jobs during a run.
 */
int state_forget(struct state *state, const char *prefix, const char *const *job_ids, size_t count,
		 size_t *forgotten, struct cp_err *err);

/* ---- Listing ------------------------------------------------------------ */

enum state_status {
	STATE_STATUS_NONE = 0, /* a record with no finished attempt (only a released claim) */
	STATE_STATUS_RUNNING,  /* claimed; see holder_alive */
	STATE_STATUS_DONE,
	STATE_STATUS_FAILED,
	STATE_STATUS_INTERRUPTED,
};

/* "none", "running", "done", "failed", "interrupted". */
const char *state_status_string(enum state_status status);

/*
 * A job's record as loaded (plus this handle's own writes). Strings are owned
 * by the state and valid until the next write to that job or state_close.
 * Attempt fields describe the latest finished attempt; holder_* the claim.
 */
struct state_job_record {
	const char *job_id;
	enum state_status status; /* RUNNING when claimed, else the latest outcome */
	bool recorded;            /* has signatures from a successful or adopted run */
	bool adopted;
	uint64_t definition_hash;
	uint64_t input_set_hash;
	size_t input_count;
	size_t output_count;
	int exit_code;
	int64_t start_ns;
	int64_t end_ns;
	const char *host;     /* may be NULL */
	int64_t pid;
	const char *run_id;   /* may be NULL */
	const char *holder_run;  /* NULL when unclaimed */
	const char *holder_host;
	int64_t holder_pid;
	bool holder_alive; /* computed at lookup time */
};

/* Look `job_id` up; returns true and fills *out when a record exists. */
bool state_job_lookup(struct state *state, const char *job_id, struct state_job_record *out);

/*
 * Append `job_id`'s log path to `out`: the claim's while the job is claimed,
 * else its latest attempt's. False (nothing appended) when the job has no
 * record or no log. Not in the record: most are the default path, which the
 * state rebuilds from the job id (util.h's job_log_path) instead of keeping.
 */
bool state_job_log(struct state *state, const char *job_id, struct strbuf *out);

/*
 * Call fn for every record whose id starts with `prefix` (NULL or "": all), in
 * job id order. Stops early and returns fn's value when fn returns non-zero;
 * else returns 0. fn must not write to the state.
 */
int state_foreach_job(struct state *state, const char *prefix,
		      int (*fn)(const struct state_job_record *record, void *data), void *data);

/*
 * Call fn for each recorded input (role 0) or output (role 1) of `job_id`, as
 * signed at the last successful run. Returns fn's first non-zero value, else 0
 * (also when the job has no record).
 */
int state_foreach_job_file(struct state *state, const char *job_id, int role,
			   int (*fn)(const struct state_file *file, void *data), void *data);

/* ---- Check and repair ------------------------------------------------------ */

enum state_problem_kind {
	STATE_PROBLEM_INTEGRITY,      /* text: a line of PRAGMA integrity_check */
	STATE_PROBLEM_DAMAGED_RECORD, /* job_id, text: its recorded files cannot be decoded */
	STATE_PROBLEM_DEAD_CLAIM,     /* job_id, text: "pid N on HOST", a run that died holding it */
	STATE_PROBLEM_OUTPUT_CHANGED, /* job_id, path: a recorded output differs from its record */
	STATE_PROBLEM_INPUT_CHANGED,  /* job_id, path: a recorded input differs (the job is stale) */
};

/* One finding of state_check; pointers valid during the call. */
struct state_problem {
	enum state_problem_kind kind;
	const char *job_id; /* NULL for INTEGRITY */
	const char *path;   /* the file, for *_CHANGED */
	const char *text;
};

/*
 * Check the database (PRAGMA integrity_check; records that could not be
 * decoded, with a handle from state_open_for_check), the claims of runs
 * that died, and every recorded file against the disk. Calls fn for each
 * finding, in that order; stops and returns fn's value when it is non-zero.
 * Fails (negative) only when it cannot check.
 */
int state_check(struct state *state, int (*fn)(const struct state_problem *problem, void *data), void *data,
		struct cp_err *err);

/*
 * Make the damage state_check reports harmless: a job whose recorded files
 * could not be decoded loses them and is marked interrupted (it runs again,
 * it is never adopted), and a claim of a dead run becomes an interrupted
 * attempt. *repaired gets the number of jobs changed. A damaged file
 * (integrity) cannot be repaired here.
 */
int state_repair(struct state *state, size_t *repaired, struct cp_err *err);

/* ---- Diagnostics ---------------------------------------------------------- */

struct state_stats {
	uint64_t hashes_computed; /* files hashed by this handle */
	uint64_t bytes_hashed;
	uint64_t stat_calls;
	uint64_t transactions; /* outermost commits */
	size_t jobs;           /* records in memory */
	size_t files;          /* paths in memory */
	bool wal;              /* journal mode is WAL */
	bool snapshot_loaded;  /* the records came from the snapshot, not the rows (cpipe(1) FILES) */
	int schema_version;
};

void state_stats(const struct state *state, struct state_stats *out);

/* Wall-clock time in ns since the epoch (for state_attempt). */
int64_t state_now_ns(void);

#endif
