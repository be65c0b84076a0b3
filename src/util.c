#include "cpipe/util.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

char strbuf_empty[1];

static CP_NORETURN void die_oom(size_t size)
{
	fprintf(stderr, "cpipe: out of memory (allocating %zu bytes)\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		die_oom(size);
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		die_oom(count * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		die_oom(size);
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_vaddf(&sb, fmt, ap);
	return strbuf_detach(&sb);
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

static void err_vset(struct cp_err *err, const char *file, int line, int column, const char *fmt, va_list ap)
	CP_PRINTF(5, 0);

static void err_vset(struct cp_err *err, const char *file, int line, int column, const char *fmt, va_list ap)
{
	if (!err)
		return;
	cp_err_release(err);
	err->message = xvasprintf(fmt, ap);
	err->file = file ? xstrdup(file) : NULL;
	err->line = line;
	err->column = column;
	err->kind = CP_ERR_PLAIN;
}

void cp_err_set(struct cp_err *err, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(err, file, line, 0, fmt, ap);
	va_end(ap);
}

void cp_err_set_at(struct cp_err *err, const char *file, int line, int column, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(err, file, line, column, fmt, ap);
	va_end(ap);
}

void cp_err_prefix(struct cp_err *err, const char *fmt, ...)
{
	if (!err)
		return;
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	strbuf_adds(&sb, err->message ? err->message : "");
	free(err->message);
	err->message = strbuf_detach(&sb);
}

void cp_err_release(struct cp_err *err)
{
	if (!err)
		return;
	FREE_AND_NULL(err->message);
	FREE_AND_NULL(err->file);
	err->line = 0;
	err->column = 0;
	err->kind = CP_ERR_PLAIN;
}

char *cp_err_format(const struct cp_err *err)
{
	struct strbuf sb = STRBUF_INIT;
	if (err->file) {
		strbuf_adds(&sb, err->file);
		if (err->line > 0)
			strbuf_addf(&sb, ":%d", err->line);
		if (err->line > 0 && err->column > 0)
			strbuf_addf(&sb, ":%d", err->column);
		strbuf_adds(&sb, ": ");
	}
	strbuf_adds(&sb, err->message ? err->message : "unknown error");
	return strbuf_detach(&sb);
}

void cp_bug(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cpipe: BUG: %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void strbuf_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 32;
	while (cap < need)
		cap *= 2;
	if (sb->cap == 0) {
		sb->buf = xmalloc(cap);
		sb->buf[0] = '\0';
	} else {
		sb->buf = xrealloc(sb->buf, cap);
	}
	sb->cap = cap;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	strbuf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void strbuf_adds(struct strbuf *sb, const char *s)
{
	strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, char c)
{
	strbuf_grow(sb, 1);
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
}

void strbuf_add_size(struct strbuf *sb, size_t n)
{
	char digits[24];
	size_t at = sizeof(digits);
	do {
		digits[--at] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	strbuf_add(sb, digits + at, sizeof(digits) - at);
}

void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		BUG("bad format string '%s'", fmt);
	strbuf_grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
}

void strbuf_setlen(struct strbuf *sb, size_t len)
{
	if (len > sb->len)
		BUG("strbuf_setlen beyond the end");
	if (sb->cap == 0)
		return;
	sb->len = len;
	sb->buf[len] = '\0';
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->cap)
		free(sb->buf);
	sb->buf = strbuf_empty;
	sb->len = 0;
	sb->cap = 0;
}

char *strbuf_detach(struct strbuf *sb)
{
	char *s = sb->cap ? sb->buf : xstrdup("");
	sb->buf = strbuf_empty;
	sb->len = 0;
	sb->cap = 0;
	return s;
}

void strbuf_add_shell_quoted(struct strbuf *sb, const char *s)
{
	strbuf_addch(sb, '\'');
	/* Copy the runs between quotes whole: this is on the path of every job's command. */
	for (;;) {
		const char *quote = strchr(s, '\'');
		if (!quote) {
			strbuf_adds(sb, s);
			break;
		}
		strbuf_add(sb, s, (size_t)(quote - s));
		strbuf_adds(sb, "'\\''");
		s = quote + 1;
	}
	strbuf_addch(sb, '\'');
}

bool path_leaves_root(const char *text)
{
	if (text[0] == '/')
		return true;
	for (const char *part = text; part; part = strchr(part, '/') ? strchr(part, '/') + 1 : NULL)
		if (part[0] == '.' && part[1] == '.' && (part[2] == '/' || part[2] == '\0'))
			return true;
	return false;
}

void strvec_push_owned(struct strvec *sv, char *s)
{
	ALLOC_GROW(sv->items, sv->count + 1, sv->cap);
	sv->items[sv->count++] = s;
}

void strvec_push(struct strvec *sv, const char *s)
{
	strvec_push_owned(sv, xstrdup(s));
}

void strvec_release(struct strvec *sv)
{
	for (size_t i = 0; i < sv->count; i++)
		free(sv->items[i]);
	FREE_AND_NULL(sv->items);
	sv->count = 0;
	sv->cap = 0;
}

long strvec_find(const struct strvec *sv, const char *s)
{
	for (size_t i = 0; i < sv->count; i++)
		if (!strcmp(sv->items[i], s))
			return (long)i;
	return -1;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strvec_sort(struct strvec *sv)
{
	if (sv->count > 1)
		qsort(sv->items, sv->count, sizeof(*sv->items), compare_strings);
}

void strvec_split(struct strvec *sv, const char *s, char sep, bool trim)
{
	for (;;) {
		const char *end = strchr(s, sep);
		size_t len = end ? (size_t)(end - s) : strlen(s);
		char *piece = xstrndup(s, len);
		strvec_push_owned(sv, trim ? str_trim(piece) : piece);
		if (!end)
			break;
		s = end + 1;
	}
}

uint64_t strhash(const char *s, size_t len)
{
	/* FNV-1a: simple and stable, so names derived from it never change. */
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint32_t map_hash(const char *key)
{
	/* Paths differ in a few middle bytes (sub-000001 vs sub-000002): XXH3 spreads them well and fast. */
	return (uint32_t)XXH3_64bits(key, strlen(key));
}

/*
 * The slot of `key`, or the empty one where it goes. A slot's place comes from
 * the 32 hash bits the entry keeps, so a map stays within 2^32 slots.
 */
static struct strmap_entry *strmap_slot(const struct strmap *map, const char *key, uint32_t hash)
{
	size_t mask = map->cap - 1;
	for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
		struct strmap_entry *e = &map->slots[i];
		if (!e->key || (e->hash == hash && !strcmp(e->key, key)))
			return e;
	}
}

void *xcalloc_table(size_t count, size_t size)
{
	const size_t huge = (size_t)2 << 20;
	if (size && count > SIZE_MAX / size)
		BUG("a table of %zu entries of %zu bytes", count, size);
	size_t bytes = count * size;
	void *table;
	if (bytes < 2 * huge || posix_memalign(&table, huge, bytes)) {
		/*
		 * Fresh pages that calloc leaves untouched would be read first by the
		 * probes and map the shared zero page; the insert that follows then
		 * swaps it out with a TLB flush that interrupts every other thread.
		 * A write to each page now gives it its own page in one fault.
		 */
		table = xcalloc(count, size);
		for (size_t at = 0; at < bytes; at += 4096)
			((volatile char *)table)[at] = 0;
		return table;
	}
	madvise(table, bytes, MADV_HUGEPAGE); /* advice only: without it the table works the same */
	memset(table, 0, bytes);
	return table;
}

static void strmap_rehash(struct strmap *map, size_t cap)
{
	struct strmap old = *map;
	map->slots = xcalloc_table(cap, sizeof(*map->slots));
	map->cap = cap;
	for (size_t i = 0; i < old.cap; i++) {
		if (old.slots[i].key)
			*strmap_slot(map, old.slots[i].key, old.slots[i].hash) = old.slots[i];
	}
	free(old.slots);
}

/* At most half full: linear probing stays short for misses, the common case while filling. */
void strmap_reserve(struct strmap *map, size_t count)
{
	size_t cap = map->cap ? map->cap : 64;
	while (count * 2 > cap)
		cap *= 2;
	if (cap > (size_t)UINT32_MAX + 1)
		BUG("a string map of %zu keys", count);
	if (cap != map->cap)
		strmap_rehash(map, cap);
}

bool strmap_put(struct strmap *map, const char *key, size_t value)
{
	if ((map->count + 1) * 2 > map->cap)
		strmap_reserve(map, map->count + 1);
	if (value > UINT32_MAX)
		BUG("string map value %zu over 2^32", value);
	uint32_t hash = map_hash(key);
	struct strmap_entry *e = strmap_slot(map, key, hash);
	bool is_new = !e->key;
	if (is_new) {
		e->key = map->borrowed ? (char *)key : xstrdup(key);
		e->hash = hash;
		map->count++;
	}
	e->value = (uint32_t)value;
	return is_new;
}

bool strmap_get(const struct strmap *map, const char *key, size_t *value)
{
	if (!map->cap)
		return false;
	struct strmap_entry *e = strmap_slot(map, key, map_hash(key));
	if (!e->key)
		return false;
	if (value)
		*value = e->value;
	return true;
}

void strmap_release(struct strmap *map)
{
	for (size_t i = 0; !map->borrowed && i < map->cap; i++)
		free(map->slots[i].key);
	FREE_AND_NULL(map->slots);
	map->cap = 0;
	map->count = 0;
}

struct arena_chunk {
	struct arena_chunk *next;
	max_align_t data[];
};

/* `size` bytes at a multiple of `align` (a power of two, at most max_align_t's). */
static void *arena_take(struct arena *arena, size_t size, size_t align)
{
	/* Chunks double from 64 KiB to 8 MiB: small graphs stay small, big ones need few chunks. */
	enum { FIRST_CHUNK = 64 << 10, MAX_CHUNK = 8 << 20 };
	size_t pad = (align - ((uintptr_t)arena->cursor & (align - 1))) & (align - 1);
	if (size + pad > arena->left) {
		size_t chunk_size = arena->chunk_size ? arena->chunk_size : FIRST_CHUNK;
		/* A big request gets a chunk of its own; the current chunk stays open for small ones. */
		bool own = size > chunk_size / 4;
		/* Chunks of 2^k bytes in all, header included: malloc serves those without waste. */
		size_t bytes = own ? size : chunk_size - sizeof(struct arena_chunk);
		struct arena_chunk *chunk = xmalloc(sizeof(*chunk) + bytes);
		if (!own && chunk_size < MAX_CHUNK)
			arena->chunk_size = chunk_size * 2;
		if (own && arena->chunks) {
			chunk->next = arena->chunks->next;
			arena->chunks->next = chunk;
			return chunk->data;
		}
		chunk->next = arena->chunks;
		arena->chunks = chunk;
		arena->cursor = (char *)chunk->data;
		arena->left = bytes;
		pad = 0;
	}
	void *p = arena->cursor + pad;
	arena->cursor += pad + size;
	arena->left -= pad + size;
	return p;
}

void *arena_alloc(struct arena *arena, size_t size)
{
	return arena_take(arena, size, _Alignof(max_align_t));
}

void *arena_calloc(struct arena *arena, size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		die_oom(SIZE_MAX);
	void *p = arena_alloc(arena, count * size);
	memset(p, 0, count * size);
	return p;
}

char *arena_strndup(struct arena *arena, const char *s, size_t len)
{
	char *copy = arena_take(arena, len + 1, 1); /* strings need no alignment: pack them */
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

char *arena_strdup(struct arena *arena, const char *s)
{
	return arena_strndup(arena, s, strlen(s));
}

void arena_merge(struct arena *to, struct arena *from)
{
	if (!to->chunks) {
		*to = *from;
	} else if (from->chunks) {
		/* Behind `to`'s current chunk, which stays open for its next allocations. */
		struct arena_chunk **tail = &to->chunks->next;
		while (*tail)
			tail = &(*tail)->next;
		*tail = from->chunks;
	}
	memset(from, 0, sizeof(*from));
}

void arena_release(struct arena *arena)
{
	for (struct arena_chunk *chunk = arena->chunks, *next; chunk; chunk = next) {
		next = chunk->next;
		free(chunk);
	}
	memset(arena, 0, sizeof(*arena));
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *str_trim(char *s)
{
	size_t start = 0, len = strlen(s);
	while (start < len && is_blank(s[start]))
		start++;
	while (len > start && is_blank(s[len - 1]))
		len--;
	memmove(s, s + start, len - start);
	s[len - start] = '\0';
	return s;
}

bool str_starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

bool str_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !memcmp(s + n - m, suffix, m);
}

void path_normalize(const char *path, struct strbuf *out)
{
	bool absolute = path[0] == '/';
	struct strvec parts = STRVEC_INIT;
	struct strvec kept = STRVEC_INIT;
	strvec_split(&parts, path, '/', false);
	for (size_t i = 0; i < parts.count; i++) {
		const char *p = parts.items[i];
		if (!*p || !strcmp(p, "."))
			continue;
		if (!strcmp(p, "..")) {
			if (kept.count && strcmp(kept.items[kept.count - 1], "..")) {
				free(kept.items[--kept.count]);
				continue;
			}
			if (absolute)
				continue;
		}
		strvec_push(&kept, p);
	}
	strbuf_reset(out);
	if (absolute)
		strbuf_addch(out, '/');
	for (size_t i = 0; i < kept.count; i++) {
		if (i)
			strbuf_addch(out, '/');
		strbuf_adds(out, kept.items[i]);
	}
	if (!out->len)
		strbuf_addch(out, '.');
	strvec_release(&parts);
	strvec_release(&kept);
}

/* One `[...]` set at `pattern` (after the '['), against `c`; NULL when the set is not closed (a literal '['). */
static const char *match_set(const char *pattern, char c, bool *matched)
{
	bool negated = *pattern == '!' || *pattern == '^';
	const char *p = pattern + negated;
	bool found = false;
	/* A ']' first in the set is one of its characters. */
	for (bool first = true; *p && (first || *p != ']'); first = false) {
		char low = *p == '\\' && p[1] ? *++p : *p;
		char high = low;
		if (p[1] == '-' && p[2] && p[2] != ']') {
			p += 2;
			high = *p == '\\' && p[1] ? *++p : *p;
		}
		found |= c != '/' && (unsigned char)c >= (unsigned char)low && (unsigned char)c <= (unsigned char)high;
		p++;
	}
	if (*p != ']')
		return NULL;
	*matched = found != negated && c != '/';
	return p + 1;
}

/* One element of a pattern (path_pattern_distance). */
struct pattern_token {
	/* TOKEN_ANY_DIRS is `**` and the '/' after it: no text, or any text that ends in '/'. */
	enum { TOKEN_CHAR, TOKEN_ONE, TOKEN_SET, TOKEN_STAR, TOKEN_ANY, TOKEN_ANY_DIRS } kind;
	char c;          /* TOKEN_CHAR */
	const char *set; /* TOKEN_SET: after its '[' */
};

static size_t tokenize_pattern(const char *pattern, struct pattern_token *out)
{
	size_t n = 0;
	for (const char *p = pattern; *p; n++) {
		bool ignored;
		const char *after;
		if (p[0] == '*' && p[1] == '*') {
			while (*p == '*')
				p++;
			out[n] = (struct pattern_token){*p == '/' ? TOKEN_ANY_DIRS : TOKEN_ANY, 0, NULL};
			p += *p == '/';
		} else if (*p == '*' || *p == '?') {
			out[n] = (struct pattern_token){*p == '*' ? TOKEN_STAR : TOKEN_ONE, 0, NULL};
			p++;
		} else if (*p == '[' && (after = match_set(p + 1, 'a', &ignored))) {
			out[n] = (struct pattern_token){TOKEN_SET, 0, p + 1};
			p = after;
		} else {
			if (*p == '\\' && p[1])
				p++;
			out[n] = (struct pattern_token){TOKEN_CHAR, *p, NULL};
			p++;
		}
	}
	return n;
}

/* Whether one-character token `t` takes `c`. */
static bool token_takes(const struct pattern_token *t, char c)
{
	bool matched = false;
	switch (t->kind) {
	case TOKEN_CHAR: return t->c == c;
	case TOKEN_ONE: return c != '/';
	case TOKEN_SET: match_set(t->set, c, &matched); return matched;
	default: return false;
	}
}

/*
 * One pass of dynamic programming over tokens x characters (no backtracking, so no pattern takes
 * exponential time): row[j] is the cost of matching the tokens so far against path[0..j).
 */
size_t path_pattern_distance(const char *pattern, const char *path)
{
	struct pattern_token *tokens = xcalloc(strlen(pattern) + 1, sizeof(*tokens));
	size_t n = tokenize_pattern(pattern, tokens), m = strlen(path);
	size_t *previous = xcalloc(m + 1, sizeof(*previous)), *row = xcalloc(m + 1, sizeof(*row));
	for (size_t j = 0; j <= m; j++)
		previous[j] = j;
	for (size_t i = 0; i < n; i++) {
		const struct pattern_token *t = &tokens[i];
		bool wildcard = t->kind == TOKEN_STAR || t->kind == TOKEN_ANY || t->kind == TOKEN_ANY_DIRS;
		size_t cheapest_before = previous[0]; /* min of previous[0..j-1], for TOKEN_ANY_DIRS */
		row[0] = previous[0] + !wildcard;
		for (size_t j = 1; j <= m; j++) {
			char c = path[j - 1];
			size_t best = previous[j] + !wildcard; /* the token takes nothing */
			size_t extra; /* the token (or an edit) takes c too */
			if (t->kind == TOKEN_ANY_DIRS)
				extra = c == '/' ? cheapest_before : row[j - 1] + 1;
			else
				extra = row[j - 1] + (wildcard ? t->kind == TOKEN_STAR && c == '/' : 1);
			if (extra < best)
				best = extra;
			if (!wildcard && previous[j - 1] + !token_takes(t, c) < best)
				best = previous[j - 1] + !token_takes(t, c);
			row[j] = best;
			if (previous[j] < cheapest_before)
				cheapest_before = previous[j];
		}
		size_t *swap = previous;
		previous = row;
		row = swap;
	}
	size_t distance = previous[m];
	free(tokens);
	free(previous);
	free(row);
	return distance;
}

bool path_pattern_match(const char *pattern, const char *path)
{
	return path_pattern_distance(pattern, path) == 0;
}

bool path_is_pattern(const char *text)
{
	return strpbrk(text, "*?[\\") != NULL;
}

void path_join(const char *a, const char *b, struct strbuf *out)
{
	strbuf_reset(out);
	if (b[0] == '/' || !a[0]) {
		strbuf_adds(out, b);
		return;
	}
	strbuf_adds(out, a);
	if (!str_ends_with(a, "/"))
		strbuf_addch(out, '/');
	strbuf_adds(out, b);
}

size_t str_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	size_t *row = xcalloc(m + 1, sizeof(*row));
	for (size_t j = 0; j <= m; j++)
		row[j] = j;
	for (size_t i = 1; i <= n; i++) {
		size_t diagonal = row[0];
		row[0] = i;
		for (size_t j = 1; j <= m; j++) {
			size_t above = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diagonal + cost;
			if (above + 1 < best)
				best = above + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diagonal = above;
		}
	}
	size_t result = row[m];
	free(row);
	return result;
}

int64_t timespec_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int64_t wall_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return timespec_ns(&ts);
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int read_whole_file(const char *path, struct strbuf *out, struct cp_err *err)
{
	FILE *file = fopen(path, "rb");
	if (!file) {
		cp_err_set(err, path, 0, "cannot open file: %s", strerror(errno));
		return -1;
	}
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), file)) > 0)
		strbuf_add(out, chunk, n);
	int error = ferror(file) ? errno : 0;
	fclose(file);
	if (error) {
		cp_err_set(err, path, 0, "cannot read file: %s", strerror(error));
		return -1;
	}
	return 0;
}

/* ---- Varints ----------------------------------------------------------- */

void strbuf_add_uvarint(struct strbuf *out, uint64_t value)
{
	unsigned char bytes[10];
	size_t n = 0;
	do {
		bytes[n] = (unsigned char)(value & 0x7f);
		value >>= 7;
		if (value)
			bytes[n] |= 0x80;
		n++;
	} while (value);
	strbuf_add(out, bytes, n);
}

int uvarint_read(const unsigned char **at, const unsigned char *end, uint64_t *value)
{
	const unsigned char *p = *at;
	/* Most are one byte (counts, small sizes): no loop for them. */
	if (p != end && *p < 0x80) {
		*value = *p;
		*at = p + 1;
		return 0;
	}
	uint64_t sum = 0;
	for (unsigned shift = 0;; shift += 7) {
		if (p == end)
			return UVARINT_TRUNCATED;
		unsigned byte = *p++;
		/* The tenth byte holds the 64th bit only. */
		if (shift == 63 && byte > 1)
			return UVARINT_OVERFLOW;
		sum |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80))
			break;
	}
	*value = sum;
	*at = p;
	return 0;
}

/* ---- Job file names ---------------------------------------------------- */

/* Longest sanitized base name, before the hash suffix: well under NAME_MAX with ".log" etc. */
#define FILE_NAME_MAX_BASE 100

void job_file_name(const char *id, struct strbuf *out)
{
	size_t start = out->len;
	bool changed = false;
	for (const char *p = id; *p; p++) {
		unsigned char c = (unsigned char)*p;
		bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    c == '_' || c == '-' || c == '.';
		/* A leading '.' would hide the file or make "." / ".."; a leading '-' looks like an option. */
		if (out->len == start && (c == '.' || c == '-'))
			safe = false;
		if (out->len - start >= FILE_NAME_MAX_BASE) {
			changed = true;
			break;
		}
		if (safe) {
			strbuf_addch(out, (char)c);
			continue;
		}
		changed = true;
		if (out->len == start || out->buf[out->len - 1] != '_')
			strbuf_addch(out, '_');
	}
	if (out->len == start)
		changed = true;
	if (changed)
		strbuf_addf(out, "%s%08x", out->len == start ? "_" : "-",
			    (unsigned)(strhash(id, strlen(id)) & 0xffffffffu));
}

void job_log_path(const char *id, struct strbuf *out)
{
	strbuf_adds(out, JOB_LOG_DIR "/");
	job_file_name(id, out);
	strbuf_adds(out, ".log");
}
