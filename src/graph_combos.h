/*
 * Private to the graph module: sets of placeholder-value combinations ("combos"),
 * the rows a recipe iterates over when its jobs come from the files that exist.
 * A combo set is a small relation: named columns (sorted), distinct rows of
 * values. Values are borrowed (from the glob result or the tree) and compared
 * by text, None being its own value.
 */
#ifndef CPIPE_GRAPH_COMBOS_H
#define CPIPE_GRAPH_COMBOS_H

#include "cpipe/tree.h"
#include "cpipe/util.h"

struct combos {
	struct strvec names;             /* the columns, sorted */
	const struct tree_value **cells; /* rows * names.count, row after row */
	size_t rows;
	size_t cap;
	struct strmap seen;              /* a row's key -> the row, to keep rows distinct */
	size_t keyed;                    /* rows in `seen` (the first ones; see combos_project) */
	struct strbuf key;               /* scratch for a row's key */
	/* An index on some of the columns (the last set asked for): per key, its rows chained. */
	struct strvec index_names;
	struct strmap index;             /* key -> 1 + first row */
	size_t *next;                    /* per row: 1 + the next row with the same key, 0 at the end */
	bool indexed;
};

/* Empty, with `names` (need not be sorted) as its columns. */
void combos_init(struct combos *c, const struct strvec *names);
void combos_release(struct combos *c);

/* Add one row (values in column order) unless an equal row is there. */
void combos_add(struct combos *c, const struct tree_value *const *row);

/* The value of column `column` in row `row`. */
static inline const struct tree_value *combos_cell(const struct combos *c, size_t row, size_t column)
{
	return c->cells[row * c->names.count + column];
}

/*
 * `out` (initialised here) becomes the natural join of `a` and `b`: every
 * pair of rows that agree on the columns they share, merged (`b` gets indexed).
 */
void combos_join(const struct combos *a, struct combos *b, struct combos *out);

/* `out` (initialised here) becomes `in` cut down to the columns in `names` that it has, rows kept distinct. */
void combos_project(const struct combos *in, const struct strvec *names, struct combos *out);

/*
 * The rows of `c` that agree with `values` on the columns `names` (parallel
 * arrays; names `c` lacks are ignored): calls `fn` with each row until it
 * returns non-zero, and returns that, else 0. An index on those columns is
 * built on first use.
 */
typedef int (*combos_row_fn)(void *ctx, size_t row);
int combos_each_matching(struct combos *c, const char *const *names, const struct tree_value *const *values,
			 size_t count, combos_row_fn fn, void *ctx);

/* Whether some row of `c` agrees with row `row` of `other` on every column `c` has. */
bool combos_has_match(struct combos *c, const struct combos *other, size_t row);

/* Append "name=value, ..." of row `row` (None values left out; "(no placeholder)" when nothing is left). */
void combos_describe_row(const struct combos *c, size_t row, struct strbuf *out);

#endif
