/*
 * glob_int.h: what the parts of the glob module share, private to src/glob*.c
 * (nothing outside the module includes it). glob.c builds a "job" from the
 * request, glob_pattern.c turns templates into patterns, glob_walk.c walks
 * the disk, glob_match.c reads each matching file once, and glob_result.c
 * gathers files and values. The algorithm is cpipe-tree(5), GLOBBING.
 */
#ifndef CPIPE_GLOB_INT_H
#define CPIPE_GLOB_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "cpipe/glob.h"
#include "cpipe/template.h"

#include <pcre2.h>
#include <sys/stat.h>
#include <stdint.h>

/* Walk roots: relative templates start at the data directory, '!' ones at the cwd, absolute ones at '/'. */
enum glob_root {
	GLOB_ROOT_DATA,
	GLOB_ROOT_CWD,
	GLOB_ROOT_ABSOLUTE,
	GLOB_ROOT_COUNT,
};

/* Past this many entries a directory's entries are shared out between threads, at most this many. */
#define GLOB_PARALLEL_MIN_ENTRIES 512
#define GLOB_MAX_WORKERS 4

/* ------------------------------------------------------------------ patterns */

/* A template ready to be expanded into variants: its parts and the names of its fields. */
struct source {
	struct template tmpl;
	struct strvec names;         /* every field name, in order of first appearance */
	size_t *part_name;           /* per part: index into names (fields only) */
	size_t optional_name_count;  /* the optional-only names (GLOBBING step 2): names[0 .. count) */
	uint64_t *group_mask;        /* per group: bits of the optional-only names its fields use */
	size_t star_count;           /* '*' wildcards in the whole template */
};

/* One piece of a variant; literals never hold '/', which separates components instead. */
struct piece {
	enum template_part_kind kind;
	const char *text; /* literal bytes (`len` of them), or the field's name */
	size_t len;
	const char *spec;
	size_t name; /* field: index into the source's names */
};

/* A template with its optional groups resolved, split into normalised '/'-separated components. */
struct variant {
	struct piece *pieces;
	size_t count, cap;
	size_t *starts; /* component i is pieces[starts[i] .. starts[i + 1]) */
	size_t component_count, starts_cap;
	bool absolute;
	size_t star_count;
};

/* What building one pattern's regex learned about it. */
struct emitted {
	uint32_t *groups;          /* per source name: capture group number, 0 when absent */
	struct template_spec *types;  /* per source name: the type of its capturing occurrence */
	size_t *component_ends;    /* per component: offset in the regex just after it */
	char **literals;           /* per component: its text when it is plain text, else NULL */
	uint32_t group_count;
};

/*
 * Called for each pattern of a template, in the order they are tried:
 * `subset_group` numbers the distinct optional-group choices; within one,
 * patterns differ only in their wildcards and the first success wins.
 */
typedef int (*pattern_fn)(void *data, const struct source *src, size_t subset_group, const struct variant *v,
			  const char *regex, struct emitted *e, struct cp_err *err);

/* Parse `text` and check every field's spec; fails on a template past GLOB_MAX_VARIANT_BITS. */
int glob_source_init(struct source *src, const char *text, struct cp_err *err);
void glob_source_release(struct source *src);
/*
 * Expand `src` into its patterns. `only_subset` < 0 takes every subset of the
 * optional-only names, else just that one.
 */
int glob_source_each_pattern(const struct source *src, long long only_subset, pattern_fn fn, void *data,
			     struct cp_err *err);

/* ---------------------------------------------------------------------- jobs */

enum rule_kind {
	RULE_FILL,   /* no value: capture it and collect it */
	RULE_EQUAL,  /* a singular value: the capture must equal it */
	RULE_MEMBER, /* a list: the capture must be one of its values */
};

struct name_rule {
	enum rule_kind kind;
	const struct tree_placeholder *placeholder; /* EQUAL and MEMBER */
	size_t slot;                                /* the binding the capture goes to */
};

/* One template (after substitution) of one requested key. */
struct matcher {
	const char *key; /* not owned; NULL for glob_match_path */
	size_t key_rank; /* the key's place among the requested keys, sorted */
	enum glob_root root;
	struct source source;
	struct name_rule *rules;      /* per source name */
	struct strvec slot_names;     /* the bindings of its files, sorted */
	struct tree_value *slot_fixed; /* per slot: a singular or substituted value, text NULL when none */
	size_t *slot_collector;       /* per slot: index of the collector it feeds, SIZE_MAX when none */
	size_t *link_slots;           /* per link group, per member: its slot, SIZE_MAX when absent */
};

struct pattern {
	size_t matcher;
	size_t subset_group; /* job-wide id of (matcher, subset) */
	pcre2_code *code;
	uint32_t *groups;         /* per matcher name: capture group, 0 when absent (None) */
	struct template_spec *types; /* per matcher name */
	size_t depth;             /* number of components */
	char **literals;          /* per component: plain text, or NULL for a regex component */
	size_t *classes;          /* per component: id of the regex prefix ending with it */
	size_t *component_ends;
	char *regex;
	bool absolute;
};

/* A link group of the request. */
struct link_group {
	const char *const *names;
	size_t size;
};

/*
 * Distinct rows of `width` values (a collector's values, or a link group's tuples), in the order
 * first seen. A cell points at a binding of a file in the worker's result, whose storage never
 * moves, so a row copies nothing; `slots` finds a row by its values' identity (type and text,
 * None equal to None: Python's set), each slot the row's index + 1 (0 when empty) and its hash.
 */
struct value_rows {
	const struct tree_value **cells; /* count * width */
	size_t count, cap;
	struct row_slot {
		uint32_t row;
		uint32_t hash;
	} *slots;
	size_t slot_count; /* a power of two, or 0 */
};

struct job;

/*
 * What one thread needs to match and record files: the job is read-only
 * during the walk, everything a match writes is here. Worker 0 is the
 * calling thread; the others exist only while a big directory is shared out.
 */
struct worker {
	struct job *job;
	pcre2_match_data *match_data;
	struct strbuf *capture_text, *capture_repr; /* per matcher name */
	struct tree_value *capture_values;
	size_t capture_count;
	const struct tree_value **slot_values;
	/* Per subject: which subset groups have already succeeded (the first wildcard variant wins). */
	unsigned *group_stamp;
	unsigned subject_stamp;
	struct value_rows *collected; /* per job collector */
	struct value_rows *linked;    /* per link group */
	struct glob_result result;   /* the files this worker found */
	/* Per matcher: its key, then its slot names, copied once into result's storage at its first
	   file (NULL before), which its files' key and binding names then point to. */
	char ***matcher_strings;
	size_t *file_ranks;          /* per file of `result`: its key's rank */
	size_t file_rank_count, file_rank_cap;
	/* One parse per file: the parses of the current subject and key, waiting for the best to be kept. */
	size_t pending_start;        /* first file of `result` parsed from the current subject and key */
	size_t *pending_matcher;     /* per pending file: its matcher */
	size_t *pending_score;       /* per pending file: optional placeholders present */
	size_t pending_cap;
	struct strvec tie_keys, tie_paths, tie_messages; /* per key: the first file read two ways equally well */

	/* Walk state. */
	const struct stat *final_stat; /* the lstat of the name being matched, when the walk made one */
	const char *root; /* the root directory, for messages */
	struct strbuf subject;
	size_t **levels; /* per depth: the patterns still possible below it */
	size_t *level_caps;
	size_t level_count;
	size_t *finals;
	size_t finals_cap;
	unsigned *class_stamp;
	bool *class_ok;
	unsigned stamp;
	struct cp_err err;
	bool failed;
	bool observing;                /* record what the disk showed in `seen` (glob_request.observed) */
	struct glob_observations seen;
};

struct job {
	struct tree *tree; /* NULL for glob_match_path */
	bool jit;
	struct matcher *matchers;
	size_t matcher_count, matcher_cap;
	struct pattern *patterns;
	size_t pattern_count, pattern_cap;
	size_t subset_group_count;
	size_t class_count;
	size_t deepest; /* components of the deepest pattern */
	struct strvec collector_names; /* placeholders to collect values of */
	struct strmap collector_index;
	struct link_group *links;
	size_t link_count;
	bool all_parses;  /* keep every parse of a file (file-tree), not only the best */
	pcre2_match_context *match_context;
	struct worker *workers;
	size_t worker_count;
	bool shared_out; /* a directory was already shared out between workers */
};

/* glob_match.c: read and record the files matching `candidates`, one reading per file. */
void glob_match_candidates(struct worker *w, const size_t *candidates, size_t count, const char *subject,
			   size_t length);

/* glob_walk.c: the walk from one root. */
int glob_walk_root(struct job *job, enum glob_root root, const char *directory);

/* glob_result.c: value rows, files and ties gathered from the workers, values stored in the tree. */
void glob_value_rows_add(struct value_rows *rows, const struct tree_value *const *values, size_t width);
void glob_value_rows_release(struct value_rows *rows);
bool glob_same_bindings(const struct glob_file *a, const struct glob_file *b);
void glob_job_collect_files(struct job *job, struct glob_result *result, size_t rank_count, bool sort);
void glob_job_collect_ties(struct job *job, struct strvec *warnings);
int glob_job_store(struct job *job, struct cp_err *err);

#endif
