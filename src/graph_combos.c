#include "graph_combos.h"

#include <stdlib.h>
#include <string.h>

/* A value's part of a row key: type-free (a run captured as 1 by {run:d} and "1" by {run} agree), None apart. */
static void add_cell_key(struct strbuf *key, const struct tree_value *value)
{
	if (!value->text) {
		strbuf_adds(key, "N;");
		return;
	}
	/* Length, ':', text: keys of rows stay unambiguous whatever bytes values hold. */
	strbuf_add_size(key, strlen(value->text));
	strbuf_addch(key, ':');
	strbuf_adds(key, value->text);
}

void combos_init(struct combos *c, const struct strvec *names)
{
	memset(c, 0, sizeof(*c));
	c->key = (struct strbuf)STRBUF_INIT;
	for (size_t i = 0; i < names->count; i++)
		if (strvec_find(&c->names, names->items[i]) < 0)
			strvec_push(&c->names, names->items[i]);
	strvec_sort(&c->names);
}

void combos_release(struct combos *c)
{
	strvec_release(&c->names);
	strbuf_release(&c->key);
	free(c->cells);
	strmap_release(&c->seen);
	strvec_release(&c->index_names);
	strmap_release(&c->index);
	free(c->next);
	memset(c, 0, sizeof(*c));
}

/* The key of row `row` in c->key. */
static void row_key(struct combos *c, const struct tree_value *const *row)
{
	strbuf_reset(&c->key);
	for (size_t k = 0; k < c->names.count; k++)
		add_cell_key(&c->key, row[k]);
}

void combos_add(struct combos *c, const struct tree_value *const *row)
{
	size_t width = c->names.count;
	/* Rows copied in whole by combos_project get their keys only when a row is added after them. */
	for (; c->keyed < c->rows; c->keyed++) {
		row_key(c, c->cells + c->keyed * width);
		strmap_put(&c->seen, c->key.buf, c->keyed);
	}
	row_key(c, row);
	if (strmap_put(&c->seen, c->key.buf, c->rows)) {
		ALLOC_GROW(c->cells, (c->rows + 1) * width + 1, c->cap);
		memcpy(c->cells + c->rows * width, row, width * sizeof(*row));
		c->rows++;
		c->keyed++;
		c->indexed = false;
	}
}

/* For each column of `to`, its column in `from`, or -1. */
static long *column_map(const struct combos *to, const struct combos *from)
{
	long *map = xcalloc(to->names.count + 1, sizeof(*map));
	for (size_t k = 0; k < to->names.count; k++)
		map[k] = strvec_find(&from->names, to->names.items[k]);
	return map;
}

/* Index `c` on the columns `names` (those it has), unless it already is. */
static void combos_index(struct combos *c, const struct strvec *names)
{
	bool same = c->indexed && names->count == c->index_names.count;
	for (size_t i = 0; same && i < names->count; i++)
		same = !strcmp(names->items[i], c->index_names.items[i]);
	if (same)
		return;
	strvec_release(&c->index_names);
	for (size_t i = 0; i < names->count; i++)
		strvec_push(&c->index_names, names->items[i]);
	strmap_release(&c->index);
	free(c->next);
	c->next = xcalloc(c->rows + 1, sizeof(*c->next));
	long *columns = xcalloc(names->count + 1, sizeof(*columns));
	for (size_t i = 0; i < names->count; i++)
		columns[i] = strvec_find(&c->names, names->items[i]);
	struct strbuf key = STRBUF_INIT;
	/* Backwards, so that each chain lists its rows in order. */
	for (size_t r = c->rows; r-- > 0;) {
		strbuf_reset(&key);
		for (size_t i = 0; i < names->count; i++)
			if (columns[i] >= 0)
				add_cell_key(&key, combos_cell(c, r, (size_t)columns[i]));
		size_t first;
		if (strmap_get(&c->index, key.buf, &first))
			c->next[r] = first;
		strmap_put(&c->index, key.buf, r + 1);
	}
	strbuf_release(&key);
	free(columns);
	c->indexed = true;
}

int combos_each_matching(struct combos *c, const char *const *names, const struct tree_value *const *values,
			 size_t count, combos_row_fn fn, void *ctx)
{
	struct strvec shared = STRVEC_INIT;
	for (size_t i = 0; i < count; i++)
		if (strvec_find(&c->names, names[i]) >= 0 && strvec_find(&shared, names[i]) < 0)
			strvec_push(&shared, names[i]);
	strvec_sort(&shared);
	combos_index(c, &shared);
	struct strbuf key = STRBUF_INIT;
	for (size_t i = 0; i < shared.count; i++)
		for (size_t j = 0; j < count; j++)
			if (!strcmp(names[j], shared.items[i])) {
				add_cell_key(&key, values[j]);
				break;
			}
	size_t at = 0;
	int rc = 0;
	if (strmap_get(&c->index, key.buf, &at))
		for (; at && !rc; at = c->next[at - 1])
			rc = fn(ctx, at - 1);
	strbuf_release(&key);
	strvec_release(&shared);
	return rc;
}

static int found_row(void *ctx, size_t row)
{
	(void)ctx, (void)row;
	return 1;
}

bool combos_has_match(struct combos *c, const struct combos *other, size_t row)
{
	size_t width = other->names.count;
	const char **names = xcalloc(width + 1, sizeof(*names));
	for (size_t k = 0; k < width; k++)
		names[k] = other->names.items[k];
	int found = combos_each_matching(c, names, other->cells + row * width, width, found_row, NULL);
	free(names);
	return found != 0;
}

struct join_state {
	const struct combos *a, *b;
	struct combos *out;
	const long *from_a, *from_b;
	size_t row_a;
	const struct tree_value **row;
};

static int join_row(void *ctx, size_t row_b)
{
	struct join_state *s = ctx;
	for (size_t k = 0; k < s->out->names.count; k++)
		s->row[k] = s->from_a[k] >= 0 ? combos_cell(s->a, s->row_a, (size_t)s->from_a[k])
					      : combos_cell(s->b, row_b, (size_t)s->from_b[k]);
	combos_add(s->out, s->row);
	return 0;
}

void combos_join(const struct combos *a, struct combos *b, struct combos *out)
{
	struct strvec names = STRVEC_INIT;
	for (size_t i = 0; i < a->names.count; i++)
		strvec_push(&names, a->names.items[i]);
	for (size_t i = 0; i < b->names.count; i++)
		strvec_push(&names, b->names.items[i]);
	combos_init(out, &names);
	strvec_release(&names);
	long *from_a = column_map(out, a), *from_b = column_map(out, b);
	const struct tree_value **row = xcalloc(out->names.count + 1, sizeof(*row));
	const char **a_names = xcalloc(a->names.count + 1, sizeof(*a_names));
	for (size_t k = 0; k < a->names.count; k++)
		a_names[k] = a->names.items[k];
	struct join_state state = {a, b, out, from_a, from_b, 0, row};
	for (size_t r = 0; r < a->rows; r++) {
		state.row_a = r;
		combos_each_matching(b, a_names, a->cells + r * a->names.count, a->names.count, join_row,
				     &state);
	}
	free(a_names);
	free(row);
	free(from_a);
	free(from_b);
}

void combos_project(const struct combos *in, const struct strvec *names, struct combos *out)
{
	struct strvec kept = STRVEC_INIT;
	for (size_t i = 0; i < names->count; i++)
		if (strvec_find(&in->names, names->items[i]) >= 0)
			strvec_push(&kept, names->items[i]);
	combos_init(out, &kept);
	strvec_release(&kept);
	long *from = column_map(out, in);
	if (out->names.count == in->names.count) {
		/* Every column kept (in the same, sorted order): the rows are distinct already. */
		out->cap = in->rows * in->names.count + 1;
		out->cells = xcalloc(out->cap, sizeof(*out->cells));
		if (in->rows)
			memcpy(out->cells, in->cells, in->rows * in->names.count * sizeof(*out->cells));
		out->rows = in->rows;
		free(from);
		return;
	}
	const struct tree_value **row = xcalloc(out->names.count + 1, sizeof(*row));
	for (size_t r = 0; r < in->rows; r++) {
		for (size_t k = 0; k < out->names.count; k++)
			row[k] = combos_cell(in, r, (size_t)from[k]);
		combos_add(out, row);
	}
	free(row);
	free(from);
}

void combos_describe_row(const struct combos *c, size_t row, struct strbuf *out)
{
	bool first = true;
	for (size_t k = 0; k < c->names.count; k++) {
		const struct tree_value *value = combos_cell(c, row, k);
		if (!value->text)
			continue;
		strbuf_addf(out, "%s%s=%s", first ? "" : ", ", c->names.items[k], value->text);
		first = false;
	}
	if (first)
		strbuf_adds(out, "(no placeholder)");
}
