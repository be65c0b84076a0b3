/*
 * glob_walk.c: the walk of the disk (cpipe-tree(5), GLOBBING, step 7).
 *
 * The disk is walked once per glob_update for all keys together: a directory
 * is entered only when some pattern's components so far accept the path,
 * checked with PCRE2 partial matching. Patterns sharing the same leading
 * components share one check per directory entry.
 *
 * Plain-text components below an unopened directory are checked with one
 * fstatat each ("sub-01/T1w.nii.gz" from the data directory's fd), and each
 * directory that must be read is read whole and sorted, so files come out
 * nearly in path order. The first big directory (the subjects, usually) is
 * shared out in contiguous ranges between up to one thread per core.
 */
#include "glob_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Past this, a path relative to an open ancestor is not handed to the kernel: the directory is opened. */
#define GLOB_MAX_RELATIVE_PATH 1024

/*
 * Where a directory is: `fd` is an open ancestor (or the directory itself),
 * and the path from it is the subject from `offset` on. Directories are
 * opened only when they must be read, so a plain-text file below a regex
 * directory costs one fstatat rather than an open, a stat and a close.
 */
struct place {
	int fd;
	size_t offset;
};

/* Whether `errno` after opening a directory means "nothing there" rather than a failure. */
static bool missing_errno(int error)
{
	return error == ENOENT || error == ENOTDIR || error == ELOOP || error == ENAMETOOLONG;
}

/* The walk's subject (a path from the walk's root), as an observation's path from the working directory. */
static void observe(struct worker *w, enum glob_seen_kind kind, const struct stat *st)
{
	if (!w->observing)
		return;
	if (!strcmp(w->root, ".") || !strcmp(w->root, "/")) {
		glob_observations_add(&w->seen, kind, w->subject.buf, 0, st);
		return;
	}
	struct strbuf path = STRBUF_INIT;
	path_join(w->root, w->subject.buf, &path);
	glob_observations_add(&w->seen, kind, path.buf, path.len - w->subject.len, st);
	strbuf_release(&path);
}

static void subject_push(struct worker *w, const char *name, size_t length)
{
	if (w->subject.len && w->subject.buf[w->subject.len - 1] != '/')
		strbuf_addch(&w->subject, '/');
	strbuf_add(&w->subject, name, length);
}

/* The offset of paths below the subject's directory, once that directory is the open one. */
static size_t offset_below(const struct worker *w)
{
	if (!w->subject.len || w->subject.buf[w->subject.len - 1] == '/')
		return w->subject.len;
	return w->subject.len + 1;
}

static int walk_error(struct worker *w, int error)
{
	cp_err_set(&w->err, NULL, 0, "cannot read directory %s%s%s: %s", w->root,
		   w->subject.len && w->root[strlen(w->root) - 1] != '/' ? "/" : "", w->subject.buf, strerror(error));
	w->failed = true;
	return -1;
}

/* Open the subject's directory; -1 with errno set when that fails. */
static int open_subject(const struct worker *w, struct place place)
{
	if (w->subject.len > place.offset)
		return openat(place.fd, w->subject.buf + place.offset, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fcntl(place.fd, F_DUPFD_CLOEXEC, 0);
}

static void level_push(struct worker *w, size_t level, size_t *count, size_t pattern)
{
	ALLOC_GROW(w->levels[level], *count + 1, w->level_caps[level]);
	w->levels[level][(*count)++] = pattern;
}

static void finals_push(struct worker *w, size_t *count, size_t pattern)
{
	ALLOC_GROW(w->finals, *count + 1, w->finals_cap);
	w->finals[(*count)++] = pattern;
}

static int walk_directory(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count);

/*
 * The entry just added to the subject: match it with the first `finals` of
 * w->finals, walk into it with the first `children` of the next level's
 * patterns, then take it off the subject (back to `base` bytes).
 */
static int visit_entry(struct worker *w, struct place place, size_t depth, size_t finals, size_t children,
		       size_t base)
{
	if (finals)
		glob_match_candidates(w, w->finals, finals, w->subject.buf, w->subject.len);
	int rc = children ? walk_directory(w, place, depth + 1, w->levels[depth + 1], children) : 0;
	strbuf_setlen(&w->subject, base);
	return rc;
}

/* Plain-text components: look the name up directly, as glob does for components without wildcards. */
static int walk_literals(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count)
{
	struct job *job = w->job;
	size_t base = w->subject.len;
	for (size_t i = 0; i < count; i++) {
		const char *name = job->patterns[active[i]].literals[depth];
		bool seen = !name || !*name;
		for (size_t j = 0; j < i && !seen; j++) {
			const char *other = job->patterns[active[j]].literals[depth];
			seen = other && !strcmp(other, name);
		}
		if (seen)
			continue;
		size_t finals = 0, children = 0;
		for (size_t j = i; j < count; j++) {
			const struct pattern *p = &job->patterns[active[j]];
			if (!p->literals[depth] || strcmp(p->literals[depth], name))
				continue;
			if (p->depth == depth + 1)
				finals_push(w, &finals, active[j]);
			else
				level_push(w, depth + 1, &children, active[j]);
		}
		subject_push(w, name, strlen(name));
		struct stat st;
		/* lexists(), as glob checks a name without wildcards. */
		if (finals) {
			if (fstatat(place.fd, w->subject.buf + place.offset, &st, AT_SYMLINK_NOFOLLOW))
				finals = 0;
			observe(w, GLOB_SEEN_NAME, finals ? &st : NULL);
		}
		w->final_stat = finals ? &st : NULL;
		int rc = visit_entry(w, place, depth, finals, children, base);
		w->final_stat = NULL;
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Names shorter than this are kept in the entry itself. */
#define ENTRY_INLINE_NAME 24

/*
 * One directory entry. A short name (most are: "sub-000001") is kept in the entry, so that
 * sorting and walking a big directory read the entries in order instead of chasing each name
 * to wherever the listing put it; a longer one lives in a buffer of the reader.
 */
struct entry {
	union {
		char text[ENTRY_INLINE_NAME];
		const char *pointer;
	} name;
	uint32_t length; /* a name has at most NAME_MAX bytes */
	unsigned char type;
};

static const char *entry_name(const struct entry *entry)
{
	return entry->length < ENTRY_INLINE_NAME ? entry->name.text : entry->name.pointer;
}

static void swap_entries(struct entry *a, struct entry *b)
{
	struct entry t = *a;
	*a = *b;
	*b = t;
}

/*
 * Sort entries in strcmp's order by their names from byte `depth` on: a multikey quicksort
 * (Bentley and Sedgewick), which reads the bytes names share ("sub-0...") once per level
 * instead of once per comparison. The two smaller parts are sorted by recursion and the largest
 * by the loop, so the recursion stays within log2(n) levels whatever the names.
 */
static void sort_entries(struct entry *entries, size_t count, size_t depth)
{
	while (count > 1) {
		if (count < 12) {
			for (size_t i = 1; i < count; i++)
				for (size_t j = i; j > 0 && strcmp(entry_name(&entries[j - 1]) + depth, entry_name(&entries[j]) + depth) > 0; j--)
					swap_entries(&entries[j - 1], &entries[j]);
			return;
		}
		unsigned char pivot = (unsigned char)entry_name(&entries[count / 2])[depth];
		/* [0, less) below the pivot's byte, [less, more) equal to it, [more, count) above. */
		size_t less = 0, i = 0, more = count;
		while (i < more) {
			unsigned char byte = (unsigned char)entry_name(&entries[i])[depth];
			if (byte < pivot)
				swap_entries(&entries[less++], &entries[i++]);
			else if (byte > pivot)
				swap_entries(&entries[i], &entries[--more]);
			else
				i++;
		}
		struct {
			struct entry *at;
			size_t count, depth;
		} parts[3] = {{entries, less, depth},
			      {entries + less, pivot ? more - less : 0, depth + 1},
			      {entries + more, count - more, depth}};
		size_t largest = 0;
		for (size_t p = 1; p < 3; p++)
			if (parts[p].count > parts[largest].count)
				largest = p;
		for (size_t p = 0; p < 3; p++)
			if (p != largest)
				sort_entries(parts[p].at, parts[p].count, parts[p].depth);
		entries = parts[largest].at;
		count = parts[largest].count;
		depth = parts[largest].depth;
	}
}

/*
 * Read all of `dir` but "." and "..", sorted by name, so that files come out
 * nearly in path order and a big directory can be shared out in ranges. Long
 * names go to `names`, where they do not move as more are read.
 */
static int read_entries(struct worker *w, DIR *dir, struct arena *names, struct entry **out, size_t *count)
{
	struct entry *entries = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *entry = readdir(dir);
		if (!entry) {
			if (errno)
				rc = walk_error(w, errno);
			break;
		}
		const char *name = entry->d_name;
		if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		ALLOC_GROW(entries, n + 1, cap);
		size_t length = strlen(name);
		if (length < ENTRY_INLINE_NAME)
			memcpy(entries[n].name.text, name, length + 1);
		else
			entries[n].name.pointer = arena_strndup(names, name, length);
		entries[n].length = (uint32_t)length;
		entries[n++].type = entry->d_type;
	}
	sort_entries(entries, n, 0);
	*out = entries;
	*count = n;
	return rc;
}

/* Regex components: try each entry of the directory (whose fd is `place.fd`). */
static int walk_entries(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count,
			const struct entry *entries, size_t entry_count)
{
	struct job *job = w->job;
	size_t base = w->subject.len;
	for (size_t e = 0; e < entry_count; e++) {
		const char *name = entry_name(&entries[e]);
		/* Only directories (or what may be one: links, unknown types) can lead further down. */
		unsigned char type = entries[e].type;
		bool maybe_directory = type == DT_DIR || type == DT_LNK || type == DT_UNKNOWN;
		subject_push(w, name, entries[e].length);
		if (++w->stamp == 0) {
			memset(w->class_stamp, 0, (job->class_count + 1) * sizeof(*w->class_stamp));
			w->stamp = 1;
		}
		size_t finals = 0, children = 0;
		size_t entry_length = w->subject.len;
		for (size_t i = 0; i < count; i++) {
			const struct pattern *p = &job->patterns[active[i]];
			if (p->literals[depth])
				continue;
			if (p->depth == depth + 1) {
				finals_push(w, &finals, active[i]);
				continue;
			}
			if (!maybe_directory)
				continue;
			size_t id = p->classes[depth];
			if (w->class_stamp[id] != w->stamp) {
				/* "dir/" against the whole pattern: a partial match means something may match below. */
				strbuf_addch(&w->subject, '/');
				int partial = pcre2_match(p->code, (PCRE2_SPTR)w->subject.buf, w->subject.len, 0,
							  PCRE2_PARTIAL_HARD, w->match_data, job->match_context);
				strbuf_setlen(&w->subject, entry_length);
				w->class_stamp[id] = w->stamp;
				w->class_ok[id] = partial == PCRE2_ERROR_PARTIAL;
			}
			if (w->class_ok[id])
				level_push(w, depth + 1, &children, active[i]);
		}
		if (visit_entry(w, place, depth, finals, children, base) < 0)
			return -1;
	}
	return 0;
}

/* One worker's share of a big directory. */
struct share {
	struct worker *worker;
	struct place place;
	size_t depth;
	const size_t *active;
	size_t count;
	const struct entry *entries;
	size_t entry_count;
	int rc;
};

static void *share_run(void *data)
{
	struct share *share = data;
	share->rc = walk_entries(share->worker, share->place, share->depth, share->active, share->count,
				 share->entries, share->entry_count);
	return NULL;
}

/*
 * Share the entries of a big directory out between the workers in
 * contiguous ranges, so worker k's files sort after worker k-1's. Done once
 * per glob, for the first big directory (where the subjects usually are).
 */
static int walk_shared(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count,
		       const struct entry *entries, size_t entry_count)
{
	struct job *job = w->job;
	size_t workers = job->worker_count;
	job->shared_out = true;
	/* The active list lives in worker 0's scratch, which it keeps using: the others read a copy. */
	size_t *active_copy = xcalloc(count + 1, sizeof(*active_copy));
	memcpy(active_copy, active, count * sizeof(*active_copy));
	struct share *shares = xcalloc(workers, sizeof(*shares));
	pthread_t *threads = xcalloc(workers, sizeof(*threads));
	bool *started = xcalloc(workers, sizeof(*started));
	size_t from = 0;
	for (size_t k = 0; k < workers; k++) {
		size_t to = entry_count * (k + 1) / workers;
		struct worker *worker = &job->workers[k];
		if (k) {
			worker->root = w->root;
			strbuf_reset(&worker->subject);
			strbuf_add(&worker->subject, w->subject.buf, w->subject.len);
		}
		shares[k] = (struct share){worker, place, depth, k ? active_copy : active, count, entries + from,
					   to - from, 0};
		from = to;
	}
	for (size_t k = 1; k < workers; k++)
		started[k] = !pthread_create(&threads[k], NULL, share_run, &shares[k]);
	share_run(&shares[0]);
	int rc = shares[0].rc;
	for (size_t k = 1; k < workers; k++) {
		/* A thread that could not start leaves its share to this one. */
		if (started[k])
			pthread_join(threads[k], NULL);
		else
			share_run(&shares[k]);
		if (shares[k].rc < 0 && rc >= 0) {
			rc = -1;
			cp_err_set(&w->err, NULL, 0, "%s", job->workers[k].err.message);
			w->failed = true;
		}
	}
	free(started);
	free(threads);
	free(shares);
	free(active_copy);
	return rc;
}

static int walk_directory(struct worker *w, struct place place, size_t depth, const size_t *active, size_t count)
{
	bool any_literal = false, any_regex = false;
	for (size_t i = 0; i < count; i++) {
		if (w->job->patterns[active[i]].literals[depth])
			any_literal = true;
		else
			any_regex = true;
	}
	int opened = -1, rc = 0;
	if (w->subject.len > place.offset + GLOB_MAX_RELATIVE_PATH) {
		opened = open_subject(w, place);
		if (opened < 0 && missing_errno(errno)) {
			observe(w, GLOB_SEEN_NO_DIRECTORY, NULL);
			return 0;
		}
		if (opened < 0)
			return walk_error(w, errno);
		place = (struct place){opened, offset_below(w)};
	}
	if (any_literal)
		rc = walk_literals(w, place, depth, active, count);
	if (any_regex && !rc) {
		/* Reading needs the directory open; it then becomes the base of everything below. */
		int fd = open_subject(w, place);
		DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
		struct stat st;
		if (dir && w->observing && fstat(fd, &st) == 0)
			observe(w, GLOB_SEEN_DIRECTORY, &st);
		else if (dir && w->observing)
			rc = walk_error(w, errno);
		if (!dir) {
			int error = errno;
			if (fd >= 0)
				close(fd);
			if (missing_errno(error))
				observe(w, GLOB_SEEN_NO_DIRECTORY, NULL);
			rc = missing_errno(error) ? 0 : walk_error(w, error);
		} else if (rc) {
			closedir(dir);
		} else {
			struct arena names = ARENA_INIT;
			struct entry *entries = NULL;
			size_t entry_count = 0;
			struct place here = {fd, offset_below(w)};
			struct job *job = w->job;
			rc = read_entries(w, dir, &names, &entries, &entry_count);
			if (!rc && w == &job->workers[0] && !job->shared_out && job->worker_count > 1 &&
			    entry_count >= GLOB_PARALLEL_MIN_ENTRIES)
				rc = walk_shared(w, here, depth, active, count, entries, entry_count);
			else if (!rc)
				rc = walk_entries(w, here, depth, active, count, entries, entry_count);
			free(entries);
			arena_release(&names);
			closedir(dir);
		}
	}
	if (opened >= 0)
		close(opened);
	return rc;
}

/* Walk from one root with every pattern that starts there (worker 0 leads). */
int glob_walk_root(struct job *job, enum glob_root root, const char *directory)
{
	struct worker *w = &job->workers[0];
	size_t top = 0, roots = 0;
	for (size_t i = 0; i < job->pattern_count; i++) {
		if (job->matchers[job->patterns[i].matcher].root != root)
			continue;
		if (job->patterns[i].depth)
			level_push(w, 0, &top, i);
		else
			finals_push(w, &roots, i);
	}
	if (!top && !roots)
		return 0;
	w->root = directory;
	strbuf_reset(&w->subject);
	int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* A data directory that does not exist simply has no files. */
	if (fd < 0 && missing_errno(errno)) {
		observe(w, GLOB_SEEN_NO_DIRECTORY, NULL);
		return 0;
	}
	if (fd < 0)
		return walk_error(w, errno);
	if (root == GLOB_ROOT_ABSOLUTE)
		strbuf_addch(&w->subject, '/');
	int rc = 0;
	/* Only "/" itself has no component. */
	if (roots)
		glob_match_candidates(w, w->finals, roots, w->subject.buf, w->subject.len);
	if (top)
		rc = walk_directory(w, (struct place){fd, w->subject.len}, 0, w->levels[0], top);
	close(fd);
	return rc;
}
