/*
 * glob_result.c: what the workers found, gathered (cpipe-tree(5), GLOBBING,
 * steps 10 and 11): the distinct values and linked tuples, sorted and stored
 * in the tree; the files, sorted by key then path; one warning per key read
 * two ways.
 */
#include "glob_int.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* -------------------------------------------------------------------- values */

/* Type and text tell values apart: 1 (int) and "1" (string) differ, as in Python; None is one value. */
static bool same_value(const struct tree_value *a, const struct tree_value *b)
{
	if (!a->text || !b->text)
		return !a->text && !b->text;
	return a->type == b->type && !strcmp(a->text, b->text);
}

static bool same_row(const struct tree_value *const *a, const struct tree_value *const *b, size_t width)
{
	for (size_t k = 0; k < width; k++)
		if (a[k] != b[k] && !same_value(a[k], b[k]))
			return false;
	return true;
}

static uint32_t row_hash(const struct tree_value *const *values, size_t width)
{
	uint64_t hash = width;
	for (size_t k = 0; k < width; k++) {
		const struct tree_value *value = values[k];
		uint64_t seed = hash * 31 + (value->text ? (uint64_t)value->type + 1 : 0);
		hash = value->text ? XXH3_64bits_withSeed(value->text, strlen(value->text), seed) : seed;
	}
	return (uint32_t)hash;
}

/* Rows column by column, in tree_value_compare's order. */
static int compare_rows(const struct tree_value *const *a, const struct tree_value *const *b, size_t width)
{
	for (size_t k = 0; k < width; k++) {
		int c = tree_value_compare(a[k], b[k]);
		if (c)
			return c;
	}
	return 0;
}

/* The slot of the row equal to `values`, or the empty one where it goes. */
static struct row_slot *row_slot(const struct value_rows *rows, const struct tree_value *const *values,
				 size_t width, uint32_t hash)
{
	size_t mask = rows->slot_count - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct row_slot *slot = &rows->slots[i];
		if (!slot->row ||
		    (slot->hash == hash && same_row(&rows->cells[(slot->row - 1) * width], values, width)))
			return slot;
	}
}

/* Index every row in a table at most half full, as the string maps are: probes for a new row stay short. */
static void rows_index(struct value_rows *rows, size_t width)
{
	size_t count = rows->slot_count ? rows->slot_count : 64;
	while ((rows->count + 1) * 2 > count)
		count *= 2;
	if (count > (size_t)UINT32_MAX)
		BUG("%zu distinct values", rows->count);
	free(rows->slots);
	rows->slots = xcalloc(count, sizeof(*rows->slots));
	rows->slot_count = count;
	for (size_t r = 0; r < rows->count; r++) {
		const struct tree_value *const *row = &rows->cells[r * width];
		uint32_t hash = row_hash(row, width);
		struct row_slot *slot = row_slot(rows, row, width, hash);
		slot->row = (uint32_t)(r + 1);
		slot->hash = hash;
	}
}

void glob_value_rows_release(struct value_rows *rows)
{
	free(rows->cells);
	free(rows->slots);
	memset(rows, 0, sizeof(*rows));
}

/*
 * Add the row `values` (of `width`) unless an equal row is there; the values must outlive `rows`.
 * While rows come in increasing order (a directory's subjects, read in name order) a row greater
 * than the last is new, and nothing is hashed; the first row out of order indexes them all.
 */
void glob_value_rows_add(struct value_rows *rows, const struct tree_value *const *values, size_t width)
{
	if (rows->count && !rows->slots) {
		const struct tree_value *const *last = &rows->cells[(rows->count - 1) * width];
		int order = compare_rows(last, values, width);
		if (!order && same_row(last, values, width))
			return;
		if (order >= 0)
			rows_index(rows, width);
	}
	uint32_t hash = 0;
	struct row_slot *slot = NULL;
	if (rows->slots) {
		if ((rows->count + 1) * 2 > rows->slot_count)
			rows_index(rows, width);
		hash = row_hash(values, width);
		slot = row_slot(rows, values, width, hash);
		if (slot->row)
			return;
	}
	ALLOC_GROW(rows->cells, (rows->count + 1) * width, rows->cap);
	memcpy(&rows->cells[rows->count * width], values, width * sizeof(*values));
	rows->count++;
	if (slot) {
		slot->row = (uint32_t)rows->count;
		slot->hash = hash;
	}
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

typedef int (*order_fn)(const void *a, const void *b, const void *context);

/*
 * Stable merge sort of pointers. The walk reads each directory in name order, so what it found
 * is mostly in order already: a half that needs no merging costs one comparison.
 */
static void merge_sort(const void **items, const void **scratch, size_t count, order_fn order, const void *context)
{
	if (count < 2)
		return;
	size_t half = count / 2;
	merge_sort(items, scratch, half, order, context);
	merge_sort(items + half, scratch, count - half, order, context);
	if (order(items[half - 1], items[half], context) <= 0)
		return;
	size_t i = 0, j = half, k = 0;
	while (i < half && j < count)
		scratch[k++] = order(items[j], items[i], context) < 0 ? items[j++] : items[i++];
	while (i < half)
		scratch[k++] = items[i++];
	while (j < count)
		scratch[k++] = items[j++];
	memcpy(items, scratch, count * sizeof(*items));
}

/* Rows (pointers to their first cell) column by column; the context points at the width. */
static int order_rows(const void *a, const void *b, const void *context)
{
	return compare_rows(a, b, *(const size_t *)context);
}

/* One worker's rows, as pointers to their first cell, sorted; ties (1 and 1.0) keep the order first seen. */
static const void **sorted_rows(const struct value_rows *rows, size_t width)
{
	const void **sorted = xcalloc(rows->count + 1, sizeof(*sorted));
	const void **scratch = xcalloc(rows->count + 1, sizeof(*scratch));
	for (size_t r = 0; r < rows->count; r++)
		sorted[r] = &rows->cells[r * width];
	merge_sort(sorted, scratch, rows->count, order_rows, &width);
	free(scratch);
	return sorted;
}

/*
 * Merge the sorted distinct rows `a` and `b` into `out`, a row of `b` equal to one of `a` left
 * out; among ties, `a`'s come first. Returns the number of rows in `out`.
 */
static size_t merge_distinct(const void **a, size_t a_count, const void **b, size_t b_count, const void **out,
			     size_t width)
{
	/* Workers share out a directory in ranges of names: their rows often follow each other. */
	if (!a_count || !b_count || compare_rows(a[a_count - 1], b[0], width) < 0) {
		memcpy(out, a, a_count * sizeof(*out));
		memcpy(out + a_count, b, b_count * sizeof(*out));
		return a_count + b_count;
	}
	size_t i = 0, j = 0, k = 0, tie_start = 0;
	while (i < a_count || j < b_count) {
		bool from_a = j == b_count || (i < a_count && compare_rows(a[i], b[j], width) <= 0);
		const void *next = from_a ? a[i++] : b[j++];
		if (!k || compare_rows(out[k - 1], next, width))
			tie_start = k;
		/* Only rows that compare equal can be the same row: look among them. */
		bool seen = false;
		for (size_t t = tie_start; t < k && !seen && !from_a; t++)
			seen = same_row(out[t], next, width);
		if (!seen)
			out[k++] = next;
	}
	return k;
}

/*
 * Every worker's rows (of a collector, or of link group `index` when `link`), sorted, each
 * distinct row once: where workers found the same row, the first worker's is kept. Returns the
 * rows as pointers to their first cell (the caller frees the array), their number in *count.
 */
static const void **merged_rows(struct job *job, bool link, size_t index, size_t width, size_t *count)
{
	const void **merged = NULL;
	size_t merged_count = 0;
	for (size_t k = 0; k < job->worker_count; k++) {
		const struct value_rows *rows = link ? &job->workers[k].linked[index] : &job->workers[k].collected[index];
		const void **sorted = sorted_rows(rows, width);
		if (!merged) {
			merged = sorted;
			merged_count = rows->count;
			continue;
		}
		const void **both = xcalloc(merged_count + rows->count + 1, sizeof(*both));
		merged_count = merge_distinct(merged, merged_count, sorted, rows->count, both, width);
		free(merged);
		free(sorted);
		merged = both;
	}
	*count = merged_count;
	return merged;
}

/* GLOBBING steps 10 and 11: merge what the workers collected and store it in the tree. */
int glob_job_store(struct job *job, struct cp_err *err)
{
	for (size_t i = 0; i < job->collector_names.count; i++) {
		size_t count;
		const void **rows = merged_rows(job, false, i, 1, &count);
		struct tree_value *values = xcalloc(count + 1, sizeof(*values));
		for (size_t r = 0; r < count; r++)
			values[r] = **(const struct tree_value *const *)rows[r];
		/* The tree copies the values: they live in the files' storage. */
		if (count)
			tree_set_placeholder(job->tree, job->collector_names.items[i], values, count, true);
		free(values);
		free(rows);
	}
	for (size_t g = 0; g < job->link_count; g++) {
		const struct link_group *link = &job->links[g];
		size_t count;
		const void **rows = merged_rows(job, true, g, link->size, &count);
		struct tree_value *column = xcalloc(count + 1, sizeof(*column));
		for (size_t k = 0; k < link->size; k++) {
			for (size_t r = 0; r < count; r++)
				column[r] = *((const struct tree_value *const *)rows[r])[k];
			tree_set_placeholder(job->tree, link->names[k], column, count, true);
		}
		free(column);
		free(rows);
		if (count && tree_link(job->tree, link->names, link->size, err) < 0)
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
	if (!to->files) {
		/* The first worker's array becomes the result's: no copy. */
		to->files = from->files;
		to->count = from->count;
		to->cap = from->cap;
		from->files = NULL;
	} else if (from->count) {
		ALLOC_GROW(to->files, to->count + from->count, to->cap);
		memcpy(to->files + to->count, from->files, from->count * sizeof(*from->files));
		to->count += from->count;
	}
	arena_merge(&to->storage, &from->storage);
	FREE_AND_NULL(from->files);
	from->count = 0;
	from->cap = 0;
}

static int order_paths(const void *a, const void *b, const void *context)
{
	(void)context;
	return strcmp(((const struct glob_file *)a)->path, ((const struct glob_file *)b)->path);
}

/* Whether the files are in key rank order, then path order: the walk of one key finds them so. */
static bool files_in_order(const struct glob_file *files, const size_t *ranks, size_t count)
{
	for (size_t i = 1; i < count; i++)
		if (ranks[i] < ranks[i - 1] || (ranks[i] == ranks[i - 1] && strcmp(files[i - 1].path, files[i].path) > 0))
			return false;
	return true;
}

/*
 * Order files by key rank (a stable counting sort), then by path (stable: the parses of one file
 * keep their order). Walking sorted directories already gives paths nearly in order.
 */
static void sort_files(struct glob_file *files, const size_t *ranks, size_t count, size_t rank_count)
{
	if (files_in_order(files, ranks, count))
		return;
	size_t *starts = xcalloc(rank_count + 2, sizeof(*starts));
	for (size_t i = 0; i < count; i++)
		starts[ranks[i] + 1]++;
	for (size_t r = 0; r < rank_count; r++)
		starts[r + 1] += starts[r];
	const void **sorted = xcalloc(count + 1, sizeof(*sorted));
	const void **scratch = xcalloc(count + 1, sizeof(*scratch));
	size_t *next = xcalloc(rank_count + 1, sizeof(*next));
	memcpy(next, starts, rank_count * sizeof(*next));
	for (size_t i = 0; i < count; i++)
		sorted[next[ranks[i]]++] = &files[i];
	for (size_t r = 0; r < rank_count; r++)
		merge_sort(sorted + starts[r], scratch, starts[r + 1] - starts[r], order_paths, NULL);
	struct glob_file *copy = xcalloc(count + 1, sizeof(*copy));
	for (size_t i = 0; i < count; i++)
		copy[i] = *(const struct glob_file *)sorted[i];
	memcpy(files, copy, count * sizeof(*files));
	free(copy);
	free(next);
	free(scratch);
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
