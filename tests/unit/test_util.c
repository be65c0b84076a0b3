/*
 * Unit tests of the util module's containers: the string map (copied and
 * borrowed keys, growth, reserve) and the arena allocator; then the small
 * helpers (read_whole_file, ARRAY_SIZE, monotonic_seconds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpipe/util.h"

static void put_subjects(struct strmap *map, size_t count)
{
	char key[64];
	for (size_t i = 0; i < count; i++) {
		snprintf(key, sizeof(key), "sub-%06zu/T1w.nii.gz", i);
		assert_true(strmap_put(map, key, i));
	}
	assert_int_equal(map->count, count);
}

static void expect_subjects(const struct strmap *map, size_t count)
{
	char key[64];
	for (size_t i = 0; i < count; i++) {
		size_t value = SIZE_MAX;
		snprintf(key, sizeof(key), "sub-%06zu/T1w.nii.gz", i);
		assert_true(strmap_get(map, key, &value));
		assert_int_equal(value, i);
	}
	snprintf(key, sizeof(key), "sub-%06zu/T1w.nii.gz", count);
	assert_false(strmap_get(map, key, NULL));
}

static void strmap_holds_many_keys(void **unused)
{
	(void)unused;
	struct strmap map = STRMAP_INIT;
	put_subjects(&map, 5000);
	expect_subjects(&map, 5000);
	/* Overwriting keeps one entry. */
	assert_false(strmap_put(&map, "sub-000007/T1w.nii.gz", 42));
	size_t value = 0;
	assert_true(strmap_get(&map, "sub-000007/T1w.nii.gz", &value));
	assert_int_equal(value, 42);
	assert_int_equal(map.count, 5000);
	strmap_release(&map);
	assert_int_equal(map.cap, 0);
	assert_false(strmap_get(&map, "sub-000007/T1w.nii.gz", NULL));
}

/* Tables of several megabytes are allocated apart (on huge pages): they start empty and rehash like the rest. */
static void strmap_big_table(void **unused)
{
	(void)unused;
	struct strmap map = STRMAP_INIT;
	strmap_reserve(&map, 200000); /* 8 MiB of slots */
	assert_int_equal(map.cap, 524288);
	expect_subjects(&map, 0);
	put_subjects(&map, 5000);
	strmap_reserve(&map, 300000); /* 16 MiB: the keys move over */
	assert_int_equal(map.cap, 1048576);
	expect_subjects(&map, 5000);
	strmap_release(&map);
}

static void strmap_copies_keys_unless_borrowed(void **unused)
{
	(void)unused;
	char key[] = "alpha";
	struct strmap copied = STRMAP_INIT;
	strmap_put(&copied, key, 1);
	key[0] = 'A';
	assert_true(strmap_get(&copied, "alpha", NULL));
	assert_false(strmap_get(&copied, "Alpha", NULL));
	strmap_release(&copied);

	/* A borrowed key is the caller's own string: the map neither copies nor frees it. */
	struct strmap borrowed = STRMAP_INIT_BORROWED;
	strmap_put(&borrowed, key, 2);
	struct strmap_entry *found = NULL;
	for (size_t i = 0; i < borrowed.cap; i++)
		if (borrowed.slots[i].key)
			found = &borrowed.slots[i];
	assert_non_null(found);
	assert_ptr_equal(found->key, key);
	strmap_release(&borrowed);
}

static void strmap_reserve_keeps_entries(void **unused)
{
	(void)unused;
	struct strmap map = STRMAP_INIT;
	strmap_put(&map, "a", 1);
	strmap_put(&map, "b", 2);
	strmap_reserve(&map, 10000);
	size_t cap = map.cap;
	assert_true(cap >= 20000);
	char key[32];
	for (size_t i = 0; i < 9998; i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		strmap_put(&map, key, i);
	}
	assert_int_equal(map.cap, cap); /* no rehash while filling what was reserved */
	size_t value = 0;
	assert_true(strmap_get(&map, "b", &value));
	assert_int_equal(value, 2);
	strmap_reserve(&map, 10); /* never shrinks */
	assert_int_equal(map.cap, cap);
	strmap_release(&map);
}

static void arena_aligns_and_copies(void **unused)
{
	(void)unused;
	struct arena arena = ARENA_INIT;
	for (size_t size = 1; size < 100; size++) {
		void *p = arena_alloc(&arena, size);
		assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
		memset(p, 0xab, size);
	}
	char *copy = arena_strdup(&arena, "sub-01 'quoted'");
	assert_string_equal(copy, "sub-01 'quoted'");
	/* Strings are packed; an object after one is aligned again. */
	char *a = arena_strdup(&arena, "ab");
	char *b = arena_strdup(&arena, "cd");
	assert_ptr_equal(b, a + 3);
	void *aligned = arena_alloc(&arena, 8);
	assert_int_equal((uintptr_t)aligned % _Alignof(max_align_t), 0);
	assert_true((char *)aligned > b);
	assert_string_equal(b, "cd");
	char *part = arena_strndup(&arena, "abcdef", 3);
	assert_string_equal(part, "abc");
	size_t *zeroed = arena_calloc(&arena, 1000, sizeof(*zeroed));
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(zeroed[i], 0);
	arena_release(&arena);
	assert_null(arena.chunks);
	assert_int_equal(arena.left, 0);
}

static void arena_serves_big_and_small_requests(void **unused)
{
	(void)unused;
	struct arena arena = ARENA_INIT;
	char *small = arena_strdup(&arena, "before");
	/* Bigger than a chunk: a chunk of its own, and the current chunk stays usable. */
	size_t big_size = (size_t)3 << 20;
	char *big = arena_alloc(&arena, big_size);
	memset(big, 'x', big_size);
	char *after = arena_strdup(&arena, "after");
	assert_true(after > small && after < small + (1 << 20));
	/* Many chunks' worth of small strings stay intact. */
	char **strings = calloc(100000, sizeof(*strings));
	char text[32];
	for (size_t i = 0; i < 100000; i++) {
		snprintf(text, sizeof(text), "path-%zu", i);
		strings[i] = arena_strdup(&arena, text);
	}
	for (size_t i = 0; i < 100000; i += 997) {
		snprintf(text, sizeof(text), "path-%zu", i);
		assert_string_equal(strings[i], text);
	}
	assert_string_equal(small, "before");
	assert_int_equal(big[big_size - 1], 'x');
	free(strings);
	arena_release(&arena);
}

static void arena_merge_keeps_both(void **unused)
{
	(void)unused;
	struct arena to = ARENA_INIT, from = ARENA_INIT, empty = ARENA_INIT;
	char *mine = arena_strdup(&to, "mine");
	char *theirs = arena_strdup(&from, "theirs");
	char *big = arena_alloc(&from, (size_t)1 << 20); /* a chunk of its own */
	memset(big, 'b', (size_t)1 << 20);
	arena_merge(&to, &from);
	assert_null(from.chunks);
	assert_int_equal(from.left, 0);
	/* `to` keeps allocating from its own current chunk, right after its last string. */
	char *next = arena_strdup(&to, "next");
	assert_ptr_equal(next, mine + 5);
	assert_string_equal(theirs, "theirs");
	assert_int_equal(big[((size_t)1 << 20) - 1], 'b');
	/* Into an empty arena: it takes everything over. */
	arena_merge(&empty, &to);
	assert_null(to.chunks);
	assert_string_equal(arena_strdup(&empty, "after"), "after");
	assert_string_equal(mine, "mine");
	arena_release(&empty); /* frees every chunk of both (valgrind and ASan check) */
}

static void read_whole_file_appends_or_says_why(void **unused)
{
	(void)unused;
	char path[] = "/tmp/cpipe-test-util-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *file = fdopen(fd, "w");
	assert_non_null(file);
	for (int i = 0; i < 3000; i++) /* more than one read's chunk */
		fputs("line\n", file);
	fclose(file);
	struct strbuf text = STRBUF_INIT;
	struct cp_err err = CP_ERR_INIT;
	strbuf_adds(&text, "kept:");
	assert_int_equal(read_whole_file(path, &text, &err), 0);
	assert_int_equal(text.len, 5 + 3000 * 5);
	assert_int_equal(strncmp(text.buf, "kept:line\n", 10), 0);
	unlink(path);
	assert_int_equal(read_whole_file(path, &text, &err), -1);
	assert_string_equal(err.file, path);
	assert_non_null(strstr(err.message, "cannot open file: "));
	cp_err_release(&err);
	strbuf_release(&text);
	/* A number of elements, whatever their size. */
	static const double numbers[] = {1, 2, 3};
	assert_int_equal(ARRAY_SIZE(numbers), 3);
}

static void monotonic_seconds_never_goes_back(void **unused)
{
	(void)unused;
	double first = monotonic_seconds();
	struct timespec pause = {0, 20 * 1000 * 1000};
	assert_int_equal(nanosleep(&pause, NULL), 0);
	double second = monotonic_seconds();
	assert_true(second - first >= 0.019);
	assert_true(second - first < 10);
}

static void path_patterns_match_as_documented(void **unused)
{
	(void)unused;
	static const struct {
		const char *pattern, *path;
		bool match;
	} cases[] = {
		{"sub-01/**", "sub-01/anat/T1w.nii.gz", true},
		{"sub-01/**", "sub-01/T1w.nii.gz", true},
		{"sub-01/**", "sub-010/T1w.nii.gz", false},
		{"sub-01/*", "sub-01/anat/T1w.nii.gz", false}, /* * stays within a directory */
		{"sub-01/*", "sub-01/T1w.nii.gz", true},
		{"**/*.pdf", "report.pdf", true},              /* **+/ may be no directory at all */
		{"**/*.pdf", "a/b/report.pdf", true},
		{"**/*.pdf", "a/b/report.pdfx", false},
		{"*/T1w_?.txt", "sub-1/T1w_a.txt", true},
		{"*/T1w_?.txt", "sub-1/T1w_ab.txt", false},
		{"sub-0?/x", "sub-0/x", false},
		{"sub-?/x", "sub-//x", false},               /* ? takes no separator */
		{"sub-[0-1]2/x", "sub-12/x", true},
		{"sub-[!0-1]2/x", "sub-12/x", false},
		{"sub-[!0-1]2/x", "sub-22/x", true},
		{"sub-[]x]/y", "sub-]/y", true},              /* ']' first is in the set */
		{"sub-[x/y", "sub-[x/y", true},               /* an open '[' is itself */
		{"a\\*b", "a*b", true},                       /* a backslash takes the next as it is */
		{"a\\*b", "axb", false},
		{"**", "anything/at/all", true},
		{"", "", true},
		{"x", "", false},
		{"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"sub-01/**/x", "sub-01/x", true},
		{"sub-01/**/x", "sub-01/a/b/x", true},
		{"sub-01/**/x", "sub-01/ax", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (path_pattern_match(cases[i].pattern, cases[i].path) != cases[i].match)
			fail_msg("'%s' against '%s' should %smatch", cases[i].pattern, cases[i].path,
				 cases[i].match ? "" : "not ");
	}
	/* No backtracking: a pattern of many `**` against a long path answers at once. */
	char long_path[4001];
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	double start = monotonic_seconds();
	assert_false(path_pattern_match("**a**a**a**a**a**a**a**a**a**a**b", long_path));
	assert_true(monotonic_seconds() - start < 1);
	assert_true(path_is_pattern("sub-*/x"));
	assert_true(path_is_pattern("a[b]"));
	assert_false(path_is_pattern("sub-01/T1w.nii.gz"));
}

static void path_pattern_distance_counts_changes(void **unused)
{
	(void)unused;
	assert_int_equal(path_pattern_distance("sub-01/**", "sub-01/a/b"), 0);
	assert_int_equal(path_pattern_distance("sub-1/**", "sub-01/a/b"), 1);     /* one character added */
	assert_int_equal(path_pattern_distance("sub-01/T1w_brian.nii.gz", "sub-01/T1w_brain.nii.gz"), 2);
	assert_int_equal(path_pattern_distance("abc", "abc"), 0);
	assert_int_equal(path_pattern_distance("abc", ""), 3);
	assert_int_equal(path_pattern_distance("", "ab"), 2);
	assert_int_equal(path_pattern_distance("a?c", "abd"), 1);
	assert_int_equal(path_pattern_distance("a[xy]c", "ayc"), 0);
	assert_int_equal(path_pattern_distance("a[xy]c", "azc"), 1);
	assert_int_equal(path_pattern_distance("*.txt", "dir/a.txt"), 1); /* * across a separator costs it */
	assert_int_equal(path_pattern_distance("**.txt", "dir/a.txt"), 0);
	/* Without wildcards it is the edit distance. */
	assert_int_equal(path_pattern_distance("kitten", "sitting"), str_distance("kitten", "sitting"));
}

/* Job file names are safe from hostile ids, distinct for distinct ids, and capped. */
static void job_file_names_are_safe_and_distinct(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	job_file_name("brain_subject-01.v2", &sb);
	assert_string_equal(sb.buf, "brain_subject-01.v2");

	static const char *const hostile[] = {
		"a/b", "a_b", "", ".", "..", "-rf", "../../etc/passwd", "x'y\"z $(rm -rf /) `id`\n;|&<>*?",
		"\xff\xfe unicode \xc3\xa9",
	};
	struct strvec seen = STRVEC_INIT;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		strbuf_reset(&sb);
		job_file_name(hostile[i], &sb);
		assert_true(sb.len > 0);
		assert_null(strchr(sb.buf, '/'));
		assert_true(sb.buf[0] != '.' && sb.buf[0] != '-');
		for (const char *p = sb.buf; *p; p++)
			assert_non_null(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p));
		assert_int_equal(strvec_find(&seen, sb.buf), -1); /* distinct ids, distinct names */
		strvec_push(&seen, sb.buf);
	}
	/* Long ids are capped but stay distinct. */
	char long_a[400], long_b[400];
	memset(long_a, 'a', sizeof(long_a) - 1);
	long_a[sizeof(long_a) - 1] = '\0';
	memcpy(long_b, long_a, sizeof(long_b));
	long_b[350] = 'b';
	strbuf_reset(&sb);
	job_file_name(long_a, &sb);
	assert_true(sb.len < 120);
	char *first = strbuf_detach(&sb);
	job_file_name(long_b, &sb);
	assert_string_not_equal(first, sb.buf);
	free(first);
	strvec_release(&seen);
	strbuf_release(&sb);
}

/* Varints round-trip at every length, and a cut or oversized one is refused without reading past the end. */
static void uvarints_round_trip_and_refuse_damage(void **state)
{
	(void)state;
	static const uint64_t values[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, (uint64_t)1 << 63, UINT64_MAX};
	static const size_t lengths[] = {1, 1, 1, 2, 2, 2, 3, 5, 10, 10};
	struct strbuf buf = STRBUF_INIT;
	for (size_t i = 0; i < sizeof(values) / sizeof(*values); i++) {
		strbuf_reset(&buf);
		strbuf_add_uvarint(&buf, values[i]);
		assert_int_equal(buf.len, lengths[i]);
		const unsigned char *at = (const unsigned char *)buf.buf, *end = at + buf.len;
		uint64_t got = 0;
		assert_int_equal(uvarint_read(&at, end, &got), 0);
		assert_true(got == values[i]);
		assert_ptr_equal(at, end);
		/* Every cut of it is truncated. */
		for (size_t cut = 0; cut < buf.len; cut++) {
			at = (const unsigned char *)buf.buf;
			assert_int_equal(uvarint_read(&at, at + cut, &got), UVARINT_TRUNCATED);
		}
	}
	/* Ten bytes whose last holds more than the 64th bit. */
	static const unsigned char too_big[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
	const unsigned char *at = too_big;
	uint64_t got = 0;
	assert_int_equal(uvarint_read(&at, too_big + sizeof(too_big), &got), UVARINT_OVERFLOW);
	strbuf_release(&buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strmap_holds_many_keys),
		cmocka_unit_test(strmap_big_table),
		cmocka_unit_test(strmap_copies_keys_unless_borrowed),
		cmocka_unit_test(strmap_reserve_keeps_entries),
		cmocka_unit_test(arena_aligns_and_copies),
		cmocka_unit_test(arena_serves_big_and_small_requests),
		cmocka_unit_test(arena_merge_keeps_both),
		cmocka_unit_test(read_whole_file_appends_or_says_why),
		cmocka_unit_test(monotonic_seconds_never_goes_back),
		cmocka_unit_test(path_patterns_match_as_documented),
		cmocka_unit_test(path_pattern_distance_counts_changes),
		cmocka_unit_test(uvarints_round_trip_and_refuse_damage),
		cmocka_unit_test(job_file_names_are_safe_and_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
