/*
 * util: errors, allocation, growable strings and arrays, a string hash map,
 * path normalisation and shell quoting. Every other module builds on this.
 */
#ifndef CPIPE_UTIL_H
#define CPIPE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__GNUC__)
#define CP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CP_NORETURN __attribute__((noreturn))
#else
#define CP_PRINTF(f, a)
#define CP_NORETURN
#endif

/*
 * An error travelling up to the CLI. Library code fills it and returns a
 * negative code; only the CLI prints it. `file` is NULL when the error has no
 * source location; `line`/`column` are 1-based, 0 when unknown.
 */
/*
 * What kind of error, when the CLI has more to say about it than the library may (a library
 * names no command: the CLI adds the way out, e.g. which `cpipe` command to run).
 */
enum cp_err_kind {
	CP_ERR_PLAIN = 0,
	CP_ERR_STATE_DAMAGED, /* the state database is damaged */
};

struct cp_err {
	char *message;
	char *file;
	int line;
	int column;
	enum cp_err_kind kind;
};
#define CP_ERR_INIT {NULL, NULL, 0, 0, CP_ERR_PLAIN}

/* Replace any previous content of `err` with a formatted message and location. */
void cp_err_set(struct cp_err *err, const char *file, int line, const char *fmt, ...) CP_PRINTF(4, 5);
/* Like cp_err_set, with a column. */
void cp_err_set_at(struct cp_err *err, const char *file, int line, int column, const char *fmt, ...)
	CP_PRINTF(5, 6);
/* Prefix the existing message with a formatted context ("while reading X: "). */
void cp_err_prefix(struct cp_err *err, const char *fmt, ...) CP_PRINTF(2, 3);
/* Free the message and file; the struct may be reused. */
void cp_err_release(struct cp_err *err);
/* Format "file:line:column: message" (parts omitted when unknown) into a new string. */
char *cp_err_format(const struct cp_err *err);

/* Print "cpipe: BUG: ..." and abort: for states that cannot happen. */
CP_NORETURN void cp_bug(const char *file, int line, const char *fmt, ...) CP_PRINTF(3, 4);
#define BUG(...) cp_bug(__FILE__, __LINE__, __VA_ARGS__)

/* Allocation wrappers: they abort with a message on out-of-memory, never return NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
/* Zeroed memory for a hash table probed at random, every page written once (no zero-page mapping to
 * replace on the first insert); several megabytes go on huge pages (no TLB miss a probe). */
void *xcalloc_table(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) CP_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) CP_PRINTF(1, 0);

#define FREE_AND_NULL(p) \
	do { \
		free(p); \
		(p) = NULL; \
	} while (0)

/* The number of elements of an array (not of a pointer). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Grow `array` (of `cap` elements) so that it holds at least `need` elements. */
#define ALLOC_GROW(array, need, cap) \
	do { \
		if ((need) > (cap)) { \
			size_t cp_new_cap = (cap) ? (cap) * 2 : 8; \
			while (cp_new_cap < (need)) \
				cp_new_cap *= 2; \
			(array) = xrealloc((array), cp_new_cap * sizeof(*(array))); \
			(cap) = cp_new_cap; \
		} \
	} while (0)

/* A growable, always NUL-terminated byte string. STRBUF_INIT is valid and empty. */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
};
extern char strbuf_empty[];
#define STRBUF_INIT {strbuf_empty, 0, 0}

void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_adds(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, char c);
/* Append `n` in decimal, without printf (for keys built once per file or row). */
void strbuf_add_size(struct strbuf *sb, size_t n);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) CP_PRINTF(2, 3);
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap) CP_PRINTF(2, 0);
void strbuf_setlen(struct strbuf *sb, size_t len);
#define strbuf_reset(sb) strbuf_setlen((sb), 0)
/* Free the buffer; the strbuf is STRBUF_INIT again. */
void strbuf_release(struct strbuf *sb);
/* Hand the buffer to the caller (who frees it); the strbuf is STRBUF_INIT again. */
char *strbuf_detach(struct strbuf *sb);

/*
 * Append `s` quoted for POSIX sh: single quotes around the whole value, each
 * embedded quote written as '\''. The result is always one word and never
 * expands anything.
 */
void strbuf_add_shell_quoted(struct strbuf *sb, const char *s);

/* A growable array of owned strings. */
struct strvec {
	char **items;
	size_t count;
	size_t cap;
};
#define STRVEC_INIT {NULL, 0, 0}
void strvec_push(struct strvec *sv, const char *s);
void strvec_push_owned(struct strvec *sv, char *s);
void strvec_release(struct strvec *sv);
/* Index of `s` in `sv`, or -1. */
long strvec_find(const struct strvec *sv, const char *s);
void strvec_sort(struct strvec *sv);
/* Split `s` at each `sep`; pieces are trimmed of blanks when `trim`. */
void strvec_split(struct strvec *sv, const char *s, char sep, bool trim);

/*
 * String-keyed hash map to a size_t value. Keys are copied, unless the map
 * was set up with STRMAP_INIT_BORROWED: then the caller keeps every key alive
 * and unchanged for the map's lifetime (big maps over strings that already
 * live elsewhere, e.g. in an arena, save a copy per key).
 */
/* 16 bytes a slot: maps over every path of a million-subject study are the largest tables. */
struct strmap_entry {
	char *key;
	uint32_t hash; /* the key hash's low bits: enough for a slot and a cheap compare */
	uint32_t value;
};
struct strmap {
	struct strmap_entry *slots;
	size_t cap; /* a power of two, or 0 */
	size_t count;
	bool borrowed; /* keys are not copied or freed */
};
#define STRMAP_INIT {NULL, 0, 0, false}
#define STRMAP_INIT_BORROWED {NULL, 0, 0, true}
/* FNV-1a of `len` bytes: stable across versions, for names derived from it (not for maps). */
uint64_t strhash(const char *s, size_t len);
/* Insert or overwrite; returns true when the key was new. Values are indexes or counts below 2^32. */
bool strmap_put(struct strmap *map, const char *key, size_t value);
/* Look up `key`; returns true and sets *value when present. */
bool strmap_get(const struct strmap *map, const char *key, size_t *value);
/* Make room for `count` keys in all, so that filling the map does not rehash it. */
void strmap_reserve(struct strmap *map, size_t count);
void strmap_release(struct strmap *map);

/*
 * A bump allocator for many small objects that all die together (a job
 * graph's strings and arrays): allocation is a pointer increment, and
 * arena_release frees everything at once. ARENA_INIT is valid and empty.
 */
struct arena_chunk;
struct arena {
	struct arena_chunk *chunks; /* newest first */
	char *cursor;
	size_t left;
	size_t chunk_size; /* of the next chunk; 0 before the first */
};
#define ARENA_INIT {NULL, NULL, 0, 0}
/* `size` bytes aligned for any object; never NULL (dies when out of memory). */
void *arena_alloc(struct arena *arena, size_t size);
/* `count` zeroed elements of `size` bytes. */
void *arena_calloc(struct arena *arena, size_t count, size_t size);
char *arena_strdup(struct arena *arena, const char *s);
char *arena_strndup(struct arena *arena, const char *s, size_t len);
/* Move all of `from`'s memory into `to` (e.g. a worker's results into the merged ones); `from` is left empty. */
void arena_merge(struct arena *to, struct arena *from);
void arena_release(struct arena *arena);

/* Trim leading and trailing blanks (space, tab, CR, LF) in place; returns s. */
char *str_trim(char *s);
bool str_starts_with(const char *s, const char *prefix);
bool str_ends_with(const char *s, const char *suffix);

/*
 * Python's os.path.normpath on a '/'-separated path: collapses "//", ".", and
 * "x/.." (keeping leading ".." of a relative path); "" becomes ".".
 */
void path_normalize(const char *path, struct strbuf *out);
/* os.path.join(a, b): an absolute `b` replaces `a`. The result is not normalised. */
void path_join(const char *a, const char *b, struct strbuf *out);

/* Whether `text`, as (part of) a path, could lead above where it is put: it starts with '/' or has a ".." part. */
bool path_leaves_root(const char *text);

/*
 * Whether `path` matches the shell-style `pattern`: `*` is any text and `?` any one character
 * within one path part, `[abc]`/`[a-z]`/`[!abc]` one character of (or not of) a set, `**` any text
 * across parts (`**` followed by `/` also no part at all: `**` + `/x` matches `x`), a backslash
 * takes the next character as it is. Does not normalise either side.
 */
bool path_pattern_match(const char *pattern, const char *path);
/*
 * How far `path` is from matching `pattern` (0 when it matches): the fewest characters to add,
 * drop or change in `path`, a wildcard taking what it would match. For "did you mean" suggestions
 * of a pattern that matches nothing; for a pattern without wildcards, the edit distance.
 */
size_t path_pattern_distance(const char *pattern, const char *path);
/* Whether `text` has a character path_pattern_match treats specially (`*`, `?`, `[`, `\`). */
bool path_is_pattern(const char *text);

/* Edit distance between two strings, for "did you mean" suggestions. */
size_t str_distance(const char *a, const char *b);

/* Seconds on the monotonic clock (for durations; unrelated to the time of day). */
double monotonic_seconds(void);

/* The time of day in nanoseconds since the epoch: the clock files' times are on. */
int64_t wall_clock_ns(void);

/* A struct timespec (a file's st_mtim, a clock's reading) in nanoseconds. */
struct timespec;
int64_t timespec_ns(const struct timespec *t);

/* Write all of `data` to `fd`, retrying short writes and EINTR; 0, or -1 (errno set unless a write wrote nothing). */
int write_all(int fd, const void *data, size_t len);

/*
 * Append the whole content of the file at `path` to `out`. Fails (-1) with
 * `err` located at `path` ("cannot open file: ..." or "cannot read file: ...").
 */
int read_whole_file(const char *path, struct strbuf *out, struct cp_err *err);

/*
 * Unsigned LEB128 varints (7 bits a byte, lowest first, the high bit set on
 * every byte but the last): how the state's files blob and the graph cache's
 * packed observations keep numbers that are mostly small.
 * strbuf_add_uvarint appends one (1 to 10 bytes). uvarint_read reads one from
 * [*at, end) and moves *at past it: 0, or UVARINT_TRUNCATED when the bytes end
 * first, or UVARINT_OVERFLOW when it holds more than 64 bits (*at is then
 * left anywhere inside).
 */
void strbuf_add_uvarint(struct strbuf *out, uint64_t value);
enum { UVARINT_TRUNCATED = -1, UVARINT_OVERFLOW = -2 };
int uvarint_read(const unsigned char **at, const unsigned char *end, uint64_t *value);

/*
 * Job file names, which the executors name a job's files by and the state
 * rebuilds a job's default log path with (so it keeps only paths that differ).
 *
 * job_file_name appends to `out` a file name for job `id`: letters, digits,
 * '.', '_' and '-' kept, every other byte (and a leading '.' or '-') replaced
 * by '_', runs of '_' collapsed, at most about 100 bytes. When anything was
 * changed, "-" and 8 hex digits of a hash of the whole id are appended, so
 * distinct ids get distinct names. Never empty, never "." or "..", never holds '/'.
 */
void job_file_name(const char *id, struct strbuf *out);

/* Where a job's stdout and stderr go unless its recipe says otherwise, under the data root. */
#define JOB_LOG_DIR ".cpipe/logs"
/* Append JOB_LOG_DIR "/" job_file_name(id) ".log", a job's default log path, to `out`. */
void job_log_path(const char *id, struct strbuf *out);

#endif
