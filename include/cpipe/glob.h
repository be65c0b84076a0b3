/*
 * glob: file-tree's update_glob, as cpipe-tree(5), GLOBBING describes it.
 * Turns templates into anchored PCRE2 patterns, walks the data directory once
 * (pruned by each template's literal prefix) and extracts placeholder values
 * from the files that exist. Knows nothing of recipes. The module spreads over
 * src/glob.c and src/glob_*.c, which share the private src/glob_int.h.
 */
#ifndef CPIPE_GLOB_H
#define CPIPE_GLOB_H

#include "cpipe/tree.h"
#include "cpipe/util.h"

#include <sys/stat.h>

/* A placeholder value captured from one file; `value.text` NULL for an absent optional part. */
struct glob_binding {
	char *name;
	struct tree_value value;
};

/*
 * One existing file that matched a template. Its strings (key, path, binding
 * names and value texts) are owned by the glob_result holding it: read them,
 * copy them, but never free or realloc them one by one.
 */
struct glob_file {
	char *key;  /* the template key asked for; NULL from glob_match_path */
	char *path; /* relative to the data directory (absolute for absolute templates, cwd-relative for '!' ones) */
	struct glob_binding *bindings; /* every placeholder of the template, sorted by name */
	size_t binding_count;
	/* What the walk's own lstat saw, when it stat'ed the file and found a regular file (then stat
	   says the same; else size is -1): the CLI hands it to the state, which need not stat it again. */
	int64_t size;
	int64_t mtime_ns;
};


struct glob_result {
	struct glob_file *files; /* sorted by key, then path */
	size_t count;
	size_t cap;
	struct arena storage; /* private: the files' strings and bindings; freed by glob_result_release */
	struct strvec warnings; /* one line per key with a file read two ways equally well (for the CLI,
	                           which says how to see every reading) */
};
#define GLOB_RESULT_INIT {NULL, 0, 0, ARENA_INIT, STRVEC_INIT}

/*
 * What a walk learnt from the disk, so that a cache of what was built from it
 * (graph_cache.c) can check it is still true: each directory read (its
 * identity and times, stat'ed before reading), each plain-text name looked up
 * (exists, type) and each directory that was not there to enter.
 */
enum glob_seen_kind {
	GLOB_SEEN_DIRECTORY,    /* read whole: stat (following links) taken before reading */
	GLOB_SEEN_NAME,         /* looked up with lstat: `type` (st_mode & S_IFMT), 0 when missing */
	GLOB_SEEN_NO_DIRECTORY, /* a directory to enter that could not be opened: missing */
};

/* One observation, as glob_seen_next reads it back. */
struct glob_seen {
	const char *path; /* from the working directory of the walk ("." for the data directory) */
	size_t file_from; /* path + file_from is the path as a glob_file of the request gives it */
	enum glob_seen_kind kind;
	uint32_t type;
	uint64_t device, inode;   /* GLOB_SEEN_DIRECTORY */
	int64_t mtime_ns, ctime_ns;
};

/*
 * The observations, packed: they are held from the walk until the cache is
 * saved, through the graph's build and the state's load (a walk of 100,000
 * subjects looks up 100,000 names). Each is a byte of kind and type, its path
 * as what it shares with the previous path's start and end plus the bytes
 * between, its file_from, and for a directory its identity and times: a
 * subject's name costs a few bytes. A cache file keeps the same bytes.
 */
struct glob_observations {
	struct strbuf packed;
	size_t count;
	struct strbuf last; /* the path packed last: the next is packed against it */
};
#define GLOB_OBSERVATIONS_INIT {STRBUF_INIT, 0, STRBUF_INIT}

/* Record one observation; `st` is the stat made (NULL: the name or directory is missing). */
void glob_observations_add(struct glob_observations *seen, enum glob_seen_kind kind, const char *path,
			   size_t file_from, const struct stat *st);
/* Move every observation of `from` after those of `to`; `from` is left empty. */
void glob_observations_merge(struct glob_observations *to, struct glob_observations *from);
void glob_observations_release(struct glob_observations *seen);

/* Reads packed observations back, in the order they were added. */
struct glob_seen_reader {
	const char *bytes;
	size_t length, at;
	struct strbuf path, previous;
};
void glob_seen_reader_init(struct glob_seen_reader *reader, const char *bytes, size_t length);
/* The next observation into `*seen` (its path valid until the next call): 1, or 0 at the end, or -1
   when the bytes are not what glob_observations_add writes (a damaged cache file). */
int glob_seen_next(struct glob_seen_reader *reader, struct glob_seen *seen);
void glob_seen_reader_release(struct glob_seen_reader *reader);

struct glob_request {
	const char *const *keys; /* template keys to glob */
	size_t key_count;
	const char *root;        /* the data directory that relative templates start from */
	/* groups of placeholder names to link (file-tree's link=): `links[i]` has `link_sizes[i]` names */
	const char *const *const *links;
	const size_t *link_sizes;
	size_t link_count;
	/* file-tree's answer: every way a file matches (each optional subset) is a separate file entry */
	bool all_parses;
	/* where to record what the walk saw of the disk (glob_seen); NULL: nothing is recorded */
	struct glob_observations *observed;
};

/*
 * One parse per file: when optional parts let a file match a template in
 * several ways, only the parse with the most optional-only placeholders
 * present is kept (so "task-x_run-01_bold" gives task=x, run=01, not
 * task=x_run-01); on a tie, the first in pattern order, and `warnings` gets
 * one line per key naming a file read two ways. `all_parses` keeps them all.
 *
 * update_glob: find the existing files of every requested key and set, in
 * `tree`, each placeholder that had no value to the sorted set of values found
 * (stored as a list, None first); linked names get a linked group of the
 * distinct observed tuples, overwriting earlier values. Pre-set values act as
 * filters (a number captured by a typed field equals a pre-set string that
 * reads as that number). The matched files are appended to `result` (may be
 * NULL). Fails (-1) on an unknown or ambiguous key, a template that cannot be
 * parsed or has more than 12 optional placeholders and '*' wildcards together,
 * a link name that no globbed template has, or an unreadable directory other
 * than one that does not exist; on failure nothing is appended and the tree's
 * values are unchanged.
 */
int glob_update(struct tree *tree, const struct glob_request *request, struct glob_result *result,
		struct cp_err *err);

void glob_result_release(struct glob_result *result);

/*
 * The PCRE2 pattern (anchored, one named group per placeholder) that file
 * names must match for template `template_text`, with every optional group
 * included when `with_optionals` is true. For tests, fuzzing and debugging.
 * A template with '*' wildcards has one pattern per wildcard choice ("matches
 * nothing" or "matches something"), written one per line in the order they are
 * tried: the first that matches wins, as in file-tree.
 */
int glob_template_regex(const char *template_text, bool with_optionals, struct strbuf *out, struct cp_err *err);

/*
 * Match one relative path against a template (all 2^k optional variants, as
 * update_glob does). Returns the number of distinct successful parses kept
 * (0 for none; at most 1 unless `all_parses`, see glob_update) and appends
 * each parse's bindings to `matches` (may be NULL) as a glob_file with `path`
 * set and `key` NULL; -1 on a template error. Hidden components only match
 * where the template spells their leading '.'.
 */
int glob_match_path(const char *template_text, const char *path, bool all_parses, struct glob_result *matches,
		    struct cp_err *err);

#endif
