/*
 * glob_result.c: what the workers found, gathered (cpipe-tree(5), GLOBBING,
 * steps 10 and 11): the distinct values and linked tuples, sorted and stored
 * in the tree; the files, sorted by key then path; one warning per key read
 * two ways.
 */
#include "glob_int.h"

#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------------- values */

/* A key telling distinct values apart: 1 (int) and "1" (string) are different values, as in Python. */
static void add_value_key(struct strbuf *key, const struct tree_value *value)
{
	if (!value->text) {
		strbuf_adds(key, "N;");
		return;
	}
	/* Type, length, text: keys of tuples stay unambiguous whatever bytes names hold. */
	strbuf_addch(key, value->type == TREE_VALUE_INT ? 'I' : value->type == TREE_VALUE_FLOAT ? 'F' : 'S');
	strbuf_add_size(key, strlen(value->text));
	strbuf_addch(key, ':');
	strbuf_adds(key, value->text);
}

void glob_value_set_release(struct value_set *set, size_t width)
{
	strmap_release(&set->seen);
	for (size_t v = 0; v < set->count * width; v++)
		tree_value_release(&set->values[v]);
	free(set->values);
	memset(set, 0, sizeof(*set));
}

/* Add `values` (a tuple of `width`) to `set` unless an equal tuple is there. */
void glob_value_set_add(struct value_set *set, struct strbuf *key, const struct tree_value *const *values,
			size_t width)
{
	strbuf_reset(key);
	for (size_t k = 0; k < width; k++)
		add_value_key(key, values[k]);
	if (strmap_get(&set->seen, key->buf, NULL))
		return;
	strmap_put(&set->seen, key->buf, set->count);
	ALLOC_GROW(set->values, (set->count + 1) * width, set->cap);
	for (size_t k = 0; k < width; k++)
		tree_value_copy(&set->values[set->count * width + k], values[k]);
	set->count++;
}

static int compare_optional_text(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

bool glob_same_bindings(const struct glob_file *a, const struct glob_file *b)
{
	if (a->binding_count != b->binding_count)
		return false;
	for (size_t i = 0; i < a->binding_count; i++) {
		const struct tree_value *x = &a->bindings[i].value, *y = &b->bindings[i].value;
		if (strcmp(a->bindings[i].name, b->bindings[i].name) || x->type != y->type ||
		    compare_optional_text(x->text, y->text))
			return false;
	}
	return true;
}

static int compare_values(const void *a, const void *b)
{
	return tree_value_compare(a, b);
}

/* One row of a link group, for sorting rows column by column. */
struct row_ref {
	const struct tree_value *values;
	size_t size;
};

static int compare_rows(const void *left, const void *right)
{
	const struct row_ref *a = left, *b = right;
	for (size_t k = 0; k < a->size; k++) {
		int c = tree_value_compare(&a->values[k], &b->values[k]);
		if (c)
			return c;
	}
	return 0;
}

static void sort_rows(struct tree_value *rows, size_t count, size_t size)
{
	if (count < 2)
		return;
	struct row_ref *refs = xcalloc(count + 1, sizeof(*refs));
	struct tree_value *sorted = xcalloc(count * size + 1, sizeof(*sorted));
	for (size_t i = 0; i < count; i++) {
		refs[i].values = &rows[i * size];
		refs[i].size = size;
	}
	qsort(refs, count, sizeof(*refs), compare_rows);
	for (size_t i = 0; i < count; i++)
		memcpy(&sorted[i * size], refs[i].values, size * sizeof(*sorted));
	memcpy(rows, sorted, count * size * sizeof(*sorted));
	free(sorted);
	free(refs);
}

/* GLOBBING steps 10 and 11: merge what the workers collected and store it in the tree. */
int glob_job_store(struct job *job, struct cp_err *err)
{
	struct worker *main_worker = &job->workers[0];
	for (size_t k = 1; k < job->worker_count; k++) {
		struct worker *w = &job->workers[k];
		for (size_t i = 0; i < job->collector_names.count; i++) {
			const struct value_set *set = &w->collected[i];
			for (size_t v = 0; v < set->count; v++) {
				const struct tree_value *value = &set->values[v];
				glob_value_set_add(&main_worker->collected[i], &main_worker->key, &value, 1);
			}
		}
		for (size_t g = 0; g < job->link_count; g++) {
			size_t size = job->links[g].size;
			const struct value_set *set = &w->linked[g];
			const struct tree_value **tuple = xcalloc(size + 1, sizeof(*tuple));
			for (size_t r = 0; r < set->count; r++) {
				for (size_t c = 0; c < size; c++)
					tuple[c] = &set->values[r * size + c];
				glob_value_set_add(&main_worker->linked[g], &main_worker->key, tuple, size);
			}
			free(tuple);
		}
	}
	for (size_t i = 0; i < job->collector_names.count; i++) {
		struct value_set *set = &main_worker->collected[i];
		if (!set->count)
			continue;
		qsort(set->values, set->count, sizeof(*set->values), compare_values);
		tree_set_placeholder(job->tree, job->collector_names.items[i], set->values, set->count, true);
	}
	for (size_t g = 0; g < job->link_count; g++) {
		const struct link_group *link = &job->links[g];
		struct value_set *set = &main_worker->linked[g];
		sort_rows(set->values, set->count, link->size);
		struct tree_value *column = xcalloc(set->count + 1, sizeof(*column));
		for (size_t k = 0; k < link->size; k++) {
			for (size_t r = 0; r < set->count; r++)
				column[r] = set->values[r * link->size + k];
			tree_set_placeholder(job->tree, link->names[k], column, set->count, true);
		}
		free(column);
		if (set->count && tree_link(job->tree, link->names, link->size, err) < 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- results */

void glob_result_release(struct glob_result *result)
{
	strvec_release(&result->warnings);
	FREE_AND_NULL(result->files);
	result->count = 0;
	result->cap = 0;
	arena_release(&result->storage);
}

/* Move `from`'s files (and the storage they live in) to the end of `to`. */
static void result_move(struct glob_result *to, struct glob_result *from)
{
	if (from->count) {
		ALLOC_GROW(to->files, to->count + from->count, to->cap);
		memcpy(to->files + to->count, from->files, from->count * sizeof(*from->files));
		to->count += from->count;
	}
	arena_merge(&to->storage, &from->storage);
	FREE_AND_NULL(from->files);
	from->count = 0;
	from->cap = 0;
}

/* Stable merge sort by path: the parses of one file keep their order. */
static void sort_by_path(struct glob_file *files, struct glob_file *scratch, size_t count)
{
	if (count < 2)
		return;
	size_t half = count / 2;
	sort_by_path(files, scratch, half);
	sort_by_path(files + half, scratch, count - half);
	if (strcmp(files[half - 1].path, files[half].path) <= 0)
		return;
	size_t i = 0, j = half, k = 0;
	while (i < half && j < count)
		scratch[k++] = strcmp(files[j].path, files[i].path) < 0 ? files[j++] : files[i++];
	while (i < half)
		scratch[k++] = files[i++];
	while (j < count)
		scratch[k++] = files[j++];
	memcpy(files, scratch, count * sizeof(*files));
}

/*
 * Order files by key rank (a stable counting sort), then by path. Walking
 * sorted directories already gives paths nearly in order, and the merge sort
 * skips runs that are in order, so this is close to linear.
 */
static void sort_files(struct glob_file *files, const size_t *ranks, size_t count, size_t rank_count)
{
	if (!count)
		return;
	size_t *starts = xcalloc(rank_count + 2, sizeof(*starts));
	for (size_t i = 0; i < count; i++)
		starts[ranks[i] + 1]++;
	for (size_t r = 0; r < rank_count; r++)
		starts[r + 1] += starts[r];
	struct glob_file *sorted = xcalloc(count + 1, sizeof(*sorted));
	size_t *next = xcalloc(rank_count + 1, sizeof(*next));
	memcpy(next, starts, rank_count * sizeof(*next));
	for (size_t i = 0; i < count; i++)
		sorted[next[ranks[i]]++] = files[i];
	for (size_t r = 0; r < rank_count; r++)
		sort_by_path(sorted + starts[r], files, starts[r + 1] - starts[r]);
	memcpy(files, sorted, count * sizeof(*files));
	free(next);
	free(sorted);
	free(starts);
}

/* A file parsed several ways with the same bindings is kept once (files of one key and path are adjacent). */
static void result_unique(struct glob_result *result, size_t start)
{
	size_t kept = start, run = start;
	for (size_t i = start; i < result->count; i++) {
		struct glob_file *file = &result->files[i];
		if (kept == start || compare_optional_text(file->key, result->files[run].key) ||
		    strcmp(file->path, result->files[run].path))
			run = kept;
		bool duplicate = false;
		for (size_t j = run; j < kept && !duplicate; j++)
			duplicate = glob_same_bindings(&result->files[j], file);
		if (!duplicate)
			result->files[kept++] = *file;
	}
	result->count = kept;
}

/* Gather every worker's files into `result`, sorted by key then path, without duplicated parses. */
void glob_job_collect_files(struct job *job, struct glob_result *result, size_t rank_count, bool sort)
{
	size_t start = result->count, total = 0;
	for (size_t k = 0; k < job->worker_count; k++)
		total += job->workers[k].result.count;
	size_t *ranks = xcalloc(total + 1, sizeof(*ranks));
	size_t at = 0;
	for (size_t k = 0; k < job->worker_count; k++) {
		struct worker *w = &job->workers[k];
		if (w->file_rank_count)
			memcpy(ranks + at, w->file_ranks, w->file_rank_count * sizeof(*ranks));
		at += w->file_rank_count;
		result_move(result, &w->result);
	}
	if (sort && total)
		sort_files(result->files + start, ranks, total, rank_count);
	result_unique(result, start);
	free(ranks);
}

/* One warning per key read two ways equally well, for its smallest such path, sorted by key. */
void glob_job_collect_ties(struct job *job, struct strvec *warnings)
{
	struct strvec keys = STRVEC_INIT, paths = STRVEC_INIT, messages = STRVEC_INIT;
	for (size_t k = 0; k < job->worker_count; k++) {
		const struct worker *w = &job->workers[k];
		for (size_t i = 0; i < w->tie_keys.count; i++) {
			long at = strvec_find(&keys, w->tie_keys.items[i]);
			if (at < 0) {
				strvec_push(&keys, w->tie_keys.items[i]);
				strvec_push(&paths, w->tie_paths.items[i]);
				strvec_push(&messages, w->tie_messages.items[i]);
			} else if (strcmp(w->tie_paths.items[i], paths.items[at]) < 0) {
				free(paths.items[at]);
				paths.items[at] = xstrdup(w->tie_paths.items[i]);
				free(messages.items[at]);
				messages.items[at] = xstrdup(w->tie_messages.items[i]);
			}
		}
	}
	/* Each message starts with its key, so sorting the messages sorts by key. */
	strvec_sort(&messages);
	for (size_t i = 0; i < messages.count; i++)
		strvec_push(warnings, messages.items[i]);
	strvec_release(&keys);
	strvec_release(&paths);
	strvec_release(&messages);
}
