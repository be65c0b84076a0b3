/*
 * The graph of the last run, kept in a file (cpipe(1), FILES: .cpipe/graph.cache)
 * so that a rerun over unchanged data skips globbing and building.
 *
 * The file is an image of the graph's memory: its jobs, as this very binary
 * lays them out, then every string and array they point to, each once (two
 * pointers to one string stay one pointer: an input that a job makes is its
 * producer's output string), with every pointer written as an offset from the
 * start of the file and listed in a relocation table. Loading is one read into
 * one block, a checksum, and adding the block's address at each listed place;
 * nothing is parsed. The caller's key (the bytes of the tree and recipe files,
 * the command line, the binary) must equal the stored one, and what the glob
 * saw of the disk (glob_seen) must still be true: every directory it read has
 * the same identity and times, every name it looked up exists (or not) with
 * the same type. Anything else — another key, a changed directory, a short or
 * damaged file — is a miss, and the caller globs and builds as without a cache.
 */
#include "cpipe/graph.h"

#include "graph_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* Bump when the layout of the file (not of the structures: the binary is in the key) changes. */
#define GRAPH_CACHE_VERSION 5
#define GRAPH_CACHE_MAGIC "CPGRAPH"

/* A directory changed this close to the walk could change again within one timestamp tick unseen. */
#define GRAPH_CACHE_RACY_NS (2LL * 1000000000)

struct cache_header {
	char magic[8];
	uint32_t version;
	uint32_t pointer_size;
	uint64_t total_size;
	uint64_t checksum; /* XXH3 of everything after the header */
	uint64_t key_offset, key_length;
	uint64_t jobs_offset, job_count;
	uint64_t recipes_offset, recipe_count; /* struct cached_recipe */
	uint64_t files_offset, file_count;     /* struct glob_file, then per file its uint32 observation */
	uint64_t file_seen_offset;
	uint64_t seen_offset, seen_length, seen_count; /* packed as glob_observations holds them */
	uint64_t lists_offset[4], list_count[4]; /* skipped, left_out, warnings, the glob's warnings */
	uint64_t group_skips_offset, group_skip_count;
	uint64_t definition_hashes_offset;     /* job_count uint64s, or 0: saved without them */
	uint64_t relocs_offset, reloc_count;   /* uint32 positions of pointers, in 8-byte words */
};

/* What the jobs of a recipe share beyond the recipe itself: the values of its `run` names. */
struct cached_recipe {
	struct graph_run_name *names;
	uint64_t name_count;
	bool unbound_fails, checked;
};

enum { LIST_SKIPPED, LIST_LEFT_OUT, LIST_WARNINGS, LIST_GLOB_WARNINGS };

/* ------------------------------------------------------------------ writing */

struct pointer_slot {
	uintptr_t pointer; /* 0: free */
	uint64_t offset;
};

/*
 * The file is written as it is made, through a window of WINDOW bytes, so that
 * writing it costs little memory beyond the table of pointers: every object
 * is written after the objects it points to (so its pointers are known when
 * it is), and the window is flushed only between objects.
 */
#define WINDOW (1u << 20)

struct writer {
	int fd;
	bool failed;          /* a write failed: the file is dropped */
	char *buf;            /* the window: file bytes from `base` on */
	size_t len, cap;
	uint64_t base;
	XXH3_state_t *hash;   /* of everything after the header */
	struct pointer_slot *slots; /* pointer -> where its copy is, so each object is written once */
	size_t slot_count, slot_cap; /* slot_cap a power of two */
	uint32_t *relocs; /* positions / 8: pointers are 8-byte aligned, and a file stays below 32 GiB */
	size_t reloc_count, reloc_alloc;
	uint64_t empty; /* where zero-size arrays point */
};

static size_t slot_index(const struct writer *w, uintptr_t pointer)
{
	/* Fibonacci hashing: arena pointers differ in their low bits, the multiply spreads them. */
	size_t mask = w->slot_cap - 1, i = (size_t)((((uint64_t)pointer >> 3) * 0x9E3779B97F4A7C15ULL) >> 32) & mask;
	while (w->slots[i].pointer && w->slots[i].pointer != pointer)
		i = (i + 1) & mask;
	return i;
}

/*
 * Size the pointer table and the relocation list once: grown on the way, each
 * doubling of these tens of megabytes (at 100,000 subjects) is a rehash and a
 * remapping, which costs every CPU of the process a TLB flush while the state
 * loads. Relocations are bounded exactly (one per pointer field put); the
 * table gets what it will hold: the outputs, the rare `more` parts, the
 * recipes', the glob's and the lists' strings, and room for the binding names
 * (remember() still grows it past that).
 */
static void writer_presize(struct writer *w, const struct graph *graph, const struct glob_result *globbed,
			   const struct strvec *const lists[], size_t list_count)
{
	size_t outputs = 0, objects = 2, relocations = 0;
	for (size_t i = 0; i < graph->count; i++) {
		const struct graph_job *job = &graph->jobs[i];
		outputs += job->outputs.count;
		relocations += 7 + 2 * (size_t)job->binding_count + job->inputs.count + job->outputs.count;
		if (job->more) {
			objects += 6 + job->more->refs.count;
			relocations += 5 + job->more->refs.count;
		}
	}
	for (size_t r = 0; r < graph->recipe_count; r++)
		objects += 1 + 2 * graph->recipes[r].name_count + 16;
	objects += 2 * globbed->count;
	for (size_t l = 0; l < list_count; l++)
		objects += 1 + lists[l]->count;
	relocations += objects; /* the recipes', the glob's and the lists' pointers: one per object at most */
	objects += outputs;
	size_t cap = 1024;
	while (objects * 4 > cap * 3)
		cap *= 2;
	w->slots = xcalloc_table(cap, sizeof(*w->slots));
	w->slot_cap = cap;
	w->relocs = xmalloc(relocations * sizeof(*w->relocs));
	w->reloc_alloc = relocations;
}

static void remember(struct writer *w, const void *pointer, uint64_t offset)
{
	/* Up to 3/4 full: a slot per string and array of the graph is the writer's largest part. */
	if ((w->slot_count + 1) * 4 > w->slot_cap * 3) {
		struct pointer_slot *old = w->slots;
		size_t old_cap = w->slot_cap;
		w->slot_cap = old_cap ? old_cap * 2 : 1024;
		w->slots = xcalloc(w->slot_cap, sizeof(*w->slots));
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].pointer)
				w->slots[slot_index(w, old[i].pointer)] = old[i];
		free(old);
	}
	size_t i = slot_index(w, (uintptr_t)pointer);
	w->slots[i] = (struct pointer_slot){(uintptr_t)pointer, offset};
	w->slot_count++;
}

static bool recall(const struct writer *w, const void *pointer, uint64_t *offset)
{
	if (!w->slot_cap)
		return false;
	size_t i = slot_index(w, (uintptr_t)pointer);
	*offset = w->slots[i].offset;
	return w->slots[i].pointer != 0;
}

static void flush(struct writer *w)
{
	size_t header = sizeof(struct cache_header);
	size_t skip = w->base < header ? header - (size_t)w->base : 0;
	if (skip < w->len)
		XXH3_64bits_update(w->hash, w->buf + skip, w->len - skip);
	w->failed = w->failed || write_all(w->fd, w->buf, w->len) < 0;
	w->base += w->len;
	w->len = 0;
}

static uint64_t position(const struct writer *w)
{
	return w->base + w->len;
}

/* Room for `size` zeroed bytes at a multiple of `alignment`, to be filled before anything else is put. */
static uint64_t reserve_aligned(struct writer *w, size_t size, size_t alignment)
{
	size_t pad = (size_t)(alignment - position(w) % alignment) % alignment;
	if (w->len && w->len + pad + size > w->cap)
		flush(w); /* the position, and so the padding, stay the same */
	if (w->len + pad + size > w->cap) {
		w->cap = w->len + pad + size;
		w->buf = xrealloc(w->buf, w->cap);
	}
	memset(w->buf + w->len, 0, pad + size);
	w->len += pad;
	uint64_t at = position(w);
	w->len += size;
	return at;
}

static uint64_t reserve(struct writer *w, size_t size)
{
	return reserve_aligned(w, size, 8);
}

/* Write a field's bytes at `at`, inside the room just reserved (zeroed: no stray padding bytes in the file). */
static void put_field(struct writer *w, uint64_t at, const void *value, size_t size)
{
	if (at < w->base || at + size > position(w))
		BUG("graph cache: a field outside the window");
	memcpy(w->buf + (at - w->base), value, size);
}

/* Write `offset` (0: NULL) as the pointer at `at`, listing it for relocation. */
static void set_pointer(struct writer *w, uint64_t at, uint64_t offset)
{
	put_field(w, at, &offset, sizeof(offset));
	if (!offset)
		return;
	ALLOC_GROW(w->relocs, w->reloc_count + 1, w->reloc_alloc);
	w->relocs[w->reloc_count++] = (uint32_t)(at / 8);
}

/* A copy of `s`, not remembered: for strings only one object points to. */
static uint64_t put_new_string(struct writer *w, const char *s)
{
	if (!s)
		return 0;
	size_t size = strlen(s) + 1;
	uint64_t at = reserve_aligned(w, size, 1);
	put_field(w, at, s, size);
	return at;
}

static uint64_t put_string(struct writer *w, const char *s)
{
	uint64_t at;
	if (!s)
		return 0;
	if (recall(w, s, &at))
		return at;
	at = put_new_string(w, s);
	remember(w, s, at);
	return at;
}

/* An array of `count` pointers (to the given offsets) and a NULL after them. */
static uint64_t put_pointer_array(struct writer *w, const uint64_t *offsets, size_t count)
{
	uint64_t at = reserve(w, (count + 1) * sizeof(char *));
	for (size_t i = 0; i < count; i++)
		set_pointer(w, at + i * sizeof(char *), offsets[i]);
	return at;
}

/* An array of `size` bytes (no pointers in it), written once per address. */
static uint64_t put_blob(struct writer *w, const void *data, size_t size)
{
	uint64_t at;
	if (!data)
		return 0;
	if (!size)
		return w->empty;
	if (recall(w, data, &at))
		return at;
	at = reserve(w, size);
	put_field(w, at, data, size);
	remember(w, data, at);
	return at;
}

/* `count` strings and a NULL after them, written once per address: the strings first. */
static uint64_t put_strings(struct writer *w, const char *const *items, size_t count)
{
	uint64_t at;
	if (!items)
		return 0;
	if (recall(w, items, &at))
		return at;
	uint64_t *offsets = xcalloc(count + 1, sizeof(*offsets));
	for (size_t i = 0; i < count; i++)
		offsets[i] = put_string(w, items[i]);
	at = put_pointer_array(w, offsets, count);
	free(offsets);
	remember(w, items, at);
	return at;
}

#define FIELD(base, type, field) ((base) + offsetof(type, field))

static uint64_t put_more(struct writer *w, const struct graph_job *job)
{
	const struct graph_job_more *more = job->more;
	uint64_t at;
	if (!more)
		return 0;
	if (recall(w, more, &at))
		return at;
	uint64_t refs = put_strings(w, (const char *const *)more->refs.items, more->refs.count);
	uint64_t input_keys = put_blob(w, more->input_keys, job->inputs.count * sizeof(uint16_t));
	uint64_t output_keys = put_blob(w, more->output_keys, job->outputs.count * sizeof(uint16_t));
	uint64_t ref_keys = put_blob(w, more->ref_keys, more->refs.count * sizeof(uint16_t));
	uint64_t optional = put_blob(w, more->output_optional, job->outputs.count * sizeof(bool));
	at = reserve(w, sizeof(*more));
	put_field(w, FIELD(at, struct graph_job_more, refs.count), &more->refs.count, sizeof(more->refs.count));
	set_pointer(w, FIELD(at, struct graph_job_more, refs.items), refs);
	set_pointer(w, FIELD(at, struct graph_job_more, input_keys), input_keys);
	set_pointer(w, FIELD(at, struct graph_job_more, output_keys), output_keys);
	set_pointer(w, FIELD(at, struct graph_job_more, ref_keys), ref_keys);
	set_pointer(w, FIELD(at, struct graph_job_more, output_optional), optional);
	remember(w, more, at);
	return at;
}

/*
 * What a job points to, put before the jobs. Only what other jobs may point to
 * goes through the pointer table: its outputs (a later job's input is the same
 * string), its binding names (shared by a recipe's jobs) and its rare `more`.
 * The rest is the job's own and is written without a look-up, which keeps the
 * table at about one slot per output rather than one per string and array.
 */
struct job_parts {
	uint64_t id, binding_names, binding_values, inputs, outputs, deps, more;
};

static uint64_t put_job_strings(struct writer *w, char *const *items, size_t count, bool outputs)
{
	uint64_t *offsets = xcalloc(count + 1, sizeof(*offsets));
	for (size_t i = 0; i < count; i++) {
		if (outputs) {
			offsets[i] = put_new_string(w, items[i]);
			remember(w, items[i], offsets[i]);
		} else if (!recall(w, items[i], &offsets[i])) {
			offsets[i] = put_new_string(w, items[i]);
		}
	}
	uint64_t at = put_pointer_array(w, offsets, count);
	free(offsets);
	return at;
}

static void put_job_parts(struct writer *w, const struct graph_job *job, struct job_parts *parts)
{
	parts->id = put_new_string(w, job->id);
	parts->binding_names = put_strings(w, job->binding_names, job->binding_count);
	parts->binding_values = put_job_strings(w, job->binding_values, job->binding_count, false);
	parts->inputs = put_job_strings(w, job->inputs.items, job->inputs.count, false);
	parts->outputs = put_job_strings(w, job->outputs.items, job->outputs.count, true);
	parts->deps = !job->deps ? 0 : !job->dep_count ? w->empty : reserve(w, job->dep_count * sizeof(uint32_t));
	if (job->deps && job->dep_count)
		put_field(w, parts->deps, job->deps, job->dep_count * sizeof(uint32_t));
	parts->more = put_more(w, job);
}

static uint64_t put_job(struct writer *w, const struct graph_job *job, const struct job_parts *parts)
{
	uint64_t at = reserve(w, sizeof(*job));
	/* `shared` is set again on load from `recipe`. */
	put_field(w, FIELD(at, struct graph_job, inputs.count), &job->inputs.count, sizeof(job->inputs.count));
	put_field(w, FIELD(at, struct graph_job, outputs.count), &job->outputs.count, sizeof(job->outputs.count));
	put_field(w, FIELD(at, struct graph_job, recipe), &job->recipe, sizeof(job->recipe));
	put_field(w, FIELD(at, struct graph_job, binding_count), &job->binding_count, sizeof(job->binding_count));
	put_field(w, FIELD(at, struct graph_job, dep_count), &job->dep_count, sizeof(job->dep_count));
	put_field(w, FIELD(at, struct graph_job, target), &job->target, sizeof(job->target));
	put_field(w, FIELD(at, struct graph_job, cutoff), &job->cutoff, sizeof(job->cutoff));
	set_pointer(w, FIELD(at, struct graph_job, id), parts->id);
	set_pointer(w, FIELD(at, struct graph_job, binding_names), parts->binding_names);
	set_pointer(w, FIELD(at, struct graph_job, binding_values), parts->binding_values);
	set_pointer(w, FIELD(at, struct graph_job, inputs.items), parts->inputs);
	set_pointer(w, FIELD(at, struct graph_job, outputs.items), parts->outputs);
	set_pointer(w, FIELD(at, struct graph_job, deps), parts->deps);
	set_pointer(w, FIELD(at, struct graph_job, more), parts->more);
	return at;
}

static void put_recipes(struct writer *w, struct cache_header *h, const struct graph *graph)
{
	uint64_t *names = xcalloc(graph->recipe_count + 1, sizeof(*names));
	for (size_t r = 0; r < graph->recipe_count; r++) {
		const struct graph_recipe *shared = &graph->recipes[r];
		uint64_t *strings = xcalloc(2 * shared->name_count + 1, sizeof(*strings));
		for (size_t i = 0; i < shared->name_count; i++) {
			const struct graph_run_name *name = &shared->names[i];
			strings[2 * i] = put_string(w, name->name);
			strings[2 * i + 1] = put_blob(w, name->values, name->values ? name->values_len + 1 : 0);
		}
		names[r] = reserve(w, (shared->name_count + 1) * sizeof(struct graph_run_name));
		for (size_t i = 0; i < shared->name_count; i++) {
			const struct graph_run_name *name = &shared->names[i];
			uint64_t n = names[r] + i * sizeof(*name);
			put_field(w, FIELD(n, struct graph_run_name, empty_key), &name->empty_key, sizeof(bool));
			put_field(w, FIELD(n, struct graph_run_name, has_values), &name->has_values, sizeof(bool));
			put_field(w, FIELD(n, struct graph_run_name, values_len), &name->values_len, sizeof(size_t));
			put_field(w, FIELD(n, struct graph_run_name, value_count), &name->value_count, sizeof(size_t));
			set_pointer(w, FIELD(n, struct graph_run_name, name), strings[2 * i]);
			set_pointer(w, FIELD(n, struct graph_run_name, values), strings[2 * i + 1]);
		}
		free(strings);
	}
	h->recipe_count = graph->recipe_count;
	h->recipes_offset = reserve(w, (graph->recipe_count + 1) * sizeof(struct cached_recipe));
	for (size_t r = 0; r < graph->recipe_count; r++) {
		const struct graph_recipe *shared = &graph->recipes[r];
		uint64_t at = h->recipes_offset + r * sizeof(struct cached_recipe);
		uint64_t name_count = shared->name_count;
		put_field(w, FIELD(at, struct cached_recipe, name_count), &name_count, sizeof(name_count));
		put_field(w, FIELD(at, struct cached_recipe, unbound_fails), &shared->unbound_fails, sizeof(bool));
		put_field(w, FIELD(at, struct cached_recipe, checked), &shared->checked, sizeof(bool));
		set_pointer(w, FIELD(at, struct cached_recipe, names), names[r]);
	}
	free(names);
}

/* The observations as they are packed, in pieces of at most a window. */
static void put_seen(struct writer *w, struct cache_header *h, const struct glob_observations *seen)
{
	h->seen_count = seen->count;
	h->seen_length = seen->packed.len;
	h->seen_offset = position(w);
	for (size_t done = 0; done < seen->packed.len;) {
		size_t piece = seen->packed.len - done < WINDOW ? seen->packed.len - done : WINDOW;
		put_field(w, reserve_aligned(w, piece, 1), seen->packed.buf + done, piece);
		done += piece;
	}
}

static void put_globbed(struct writer *w, struct cache_header *h, const struct glob_result *globbed,
			const struct glob_observations *seen)
{
	put_seen(w, h, seen);
	/* Strings first, then the records, one after the other. */
	for (size_t i = 0; i < globbed->count; i++) {
		put_string(w, globbed->files[i].key);
		put_string(w, globbed->files[i].path);
	}
	h->file_count = globbed->count;
	for (size_t i = 0; i < globbed->count; i++) {
		const struct glob_file *file = &globbed->files[i];
		uint64_t at = reserve(w, sizeof(struct glob_file));
		if (!i)
			h->files_offset = at;
		int64_t unknown = -1; /* size: replaced on load by a fresh lstat where the walk made one */
		put_field(w, FIELD(at, struct glob_file, size), &unknown, sizeof(unknown));
		set_pointer(w, FIELD(at, struct glob_file, key), put_string(w, file->key));
		set_pointer(w, FIELD(at, struct glob_file, path), put_string(w, file->path));
	}
	/* Which observation of a name gives each file's size and time on load. */
	struct strmap index = STRMAP_INIT;
	struct glob_seen_reader reader;
	struct glob_seen item;
	glob_seen_reader_init(&reader, seen->packed.buf, seen->packed.len);
	for (size_t i = 1; glob_seen_next(&reader, &item) > 0; i++)
		if (item.kind == GLOB_SEEN_NAME)
			strmap_put(&index, item.path + item.file_from, i);
	glob_seen_reader_release(&reader);
	for (size_t i = 0; i < globbed->count; i++) {
		size_t found = 0;
		uint32_t observation = strmap_get(&index, globbed->files[i].path, &found) ? (uint32_t)found : 0;
		uint64_t at = reserve_aligned(w, sizeof(observation), sizeof(observation));
		if (!i)
			h->file_seen_offset = at;
		put_field(w, at, &observation, sizeof(observation));
	}
	strmap_release(&index);
}

/* Whether every directory the walk read was last changed clearly before it began (see GRAPH_CACHE_RACY_NS),
   and the observations read back whole. */
static bool settled(const struct glob_observations *seen, int64_t walk_start_ns)
{
	struct glob_seen_reader reader;
	struct glob_seen s;
	int more;
	glob_seen_reader_init(&reader, seen->packed.buf, seen->packed.len);
	while ((more = glob_seen_next(&reader, &s)) > 0)
		if (s.kind == GLOB_SEEN_DIRECTORY &&
		    (s.mtime_ns > walk_start_ns - GRAPH_CACHE_RACY_NS || s.ctime_ns > walk_start_ns - GRAPH_CACHE_RACY_NS))
			break;
	glob_seen_reader_release(&reader);
	return more == 0;
}

static void put_graph(struct writer *w, struct cache_header *h, const void *key, size_t key_length,
		      const struct graph *graph, const uint64_t *definition_hashes, const struct glob_result *globbed,
		      const struct glob_observations *seen)
{
	const struct strvec *lists[4] = {&graph->skipped, &graph->left_out, &graph->warnings, &globbed->warnings};
	writer_presize(w, graph, globbed, lists, 4);
	reserve(w, sizeof(*h)); /* written last, in place */
	w->empty = reserve(w, 8);
	h->key_length = key_length;
	h->key_offset = reserve(w, key_length);
	put_field(w, h->key_offset, key, key_length);
	struct job_parts *parts = xmalloc((graph->count + 1) * sizeof(*parts));
	for (size_t i = 0; i < graph->count; i++)
		put_job_parts(w, &graph->jobs[i], &parts[i]);
	h->job_count = graph->count;
	for (size_t i = 0; i < graph->count; i++) {
		uint64_t at = put_job(w, &graph->jobs[i], &parts[i]);
		if (!i)
			h->jobs_offset = at;
	}
	free(parts);
	put_recipes(w, h, graph);
	put_globbed(w, h, globbed, seen);
	for (int l = 0; l < 4; l++) {
		h->list_count[l] = lists[l]->count;
		h->lists_offset[l] = put_strings(w, (const char *const *)lists[l]->items, lists[l]->count);
	}
	h->group_skip_count = graph->group_skip_count;
	/* Field by field: the records' padding was never written. */
	for (size_t i = 0; i < graph->group_skip_count; i++) {
		const struct graph_group_skip *skip = &graph->group_skips[i];
		uint64_t at = reserve(w, sizeof(*skip));
		if (!i)
			h->group_skips_offset = at;
		put_field(w, FIELD(at, struct graph_group_skip, line), &skip->line, sizeof(skip->line));
		put_field(w, FIELD(at, struct graph_group_skip, reason), &skip->reason, sizeof(skip->reason));
	}
	/* One at a time, as the relocations below: the window need not hold them all. */
	for (size_t i = 0; definition_hashes && i < graph->count; i++) {
		uint64_t at = reserve(w, sizeof(*definition_hashes));
		if (!i)
			h->definition_hashes_offset = at;
		put_field(w, at, &definition_hashes[i], sizeof(*definition_hashes));
	}
	/* The relocations are not relocated: a copy of the list, in pieces. */
	size_t count = w->reloc_count;
	h->reloc_count = count;
	for (size_t i = 0; i < count; i++) {
		uint64_t at = reserve_aligned(w, sizeof(uint32_t), sizeof(uint32_t));
		if (!i)
			h->relocs_offset = at;
		put_field(w, at, &w->relocs[i], sizeof(uint32_t));
	}
	flush(w);
	h->total_size = w->base;
	h->checksum = XXH3_64bits_digest(w->hash);
}

int graph_cache_save(const char *path, const void *key, size_t key_length, const struct graph *graph,
		     const uint64_t *definition_hashes, const struct glob_result *globbed,
		     const struct glob_observations *seen, int64_t walk_start_ns)
{
	if (!settled(seen, walk_start_ns))
		return 1;
	for (size_t i = 0; i < graph->count; i++)
		if (graph->jobs[i].shared != &graph->recipes[graph->jobs[i].recipe])
			return -1;
	struct strbuf temporary = STRBUF_INIT;
	strbuf_addf(&temporary, "%s.%ld.tmp", path, (long)getpid());
	struct writer w;
	memset(&w, 0, sizeof(w));
	w.fd = open(temporary.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		strbuf_release(&temporary);
		return -1;
	}
	w.cap = WINDOW;
	w.buf = xmalloc(w.cap);
	w.hash = XXH3_createState();
	if (!w.hash)
		BUG("XXH3 ran out of memory");
	XXH3_64bits_reset(w.hash);
	struct cache_header h;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, GRAPH_CACHE_MAGIC, sizeof(h.magic));
	h.version = GRAPH_CACHE_VERSION;
	h.pointer_size = sizeof(void *);
	put_graph(&w, &h, key, key_length, graph, definition_hashes, globbed, seen);
	/* Past 32 GiB a relocation's word index would not fit. */
	bool ok = !w.failed && h.total_size / 8 <= UINT32_MAX && pwrite(w.fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h);
	ok = close(w.fd) == 0 && ok;
	ok = ok && rename(temporary.buf, path) == 0;
	if (!ok)
		unlink(temporary.buf);
	strbuf_release(&temporary);
	XXH3_freeState(w.hash);
	free(w.buf);
	free(w.slots);
	free(w.relocs);
	return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ loading */

static char *read_whole(const char *path, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(struct cache_header)) {
		close(fd);
		return NULL;
	}
	*size = (size_t)st.st_size;
	char *block = xmalloc(*size);
	size_t done = 0;
	while (done < *size) {
		ssize_t n = read(fd, block + done, *size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	if (done != *size)
		FREE_AND_NULL(block);
	return block;
}

static bool within(uint64_t offset, uint64_t count, size_t element, size_t size)
{
	return offset <= size && count <= (size - offset) / (element ? element : 1);
}

/* Check the header, the checksum and the key, and turn every offset into a pointer. */
static bool block_ready(char *block, size_t size, const void *key, size_t key_length)
{
	struct cache_header h;
	memcpy(&h, block, sizeof(h));
	if (memcmp(h.magic, GRAPH_CACHE_MAGIC, sizeof(h.magic)) || h.version != GRAPH_CACHE_VERSION ||
	    h.pointer_size != sizeof(void *) || h.total_size != size)
		return false;
	if (XXH3_64bits(block + sizeof(h), size - sizeof(h)) != h.checksum)
		return false;
	if (h.key_length != key_length || !within(h.key_offset, key_length, 1, size) ||
	    memcmp(block + h.key_offset, key, key_length))
		return false;
	if (!within(h.jobs_offset, h.job_count, sizeof(struct graph_job), size) ||
	    !within(h.recipes_offset, h.recipe_count, sizeof(struct cached_recipe), size) ||
	    !within(h.files_offset, h.file_count, sizeof(struct glob_file), size) ||
	    !within(h.file_seen_offset, h.file_count, sizeof(uint32_t), size) ||
	    !within(h.seen_offset, h.seen_length, 1, size) ||
	    h.seen_count > h.seen_length || /* an observation takes bytes */
	    (h.definition_hashes_offset && !within(h.definition_hashes_offset, h.job_count, sizeof(uint64_t), size)) ||
	    !within(h.relocs_offset, h.reloc_count, sizeof(uint32_t), size))
		return false;
	const char *relocs = block + h.relocs_offset;
	for (uint64_t i = 0; i < h.reloc_count; i++) {
		uint32_t word;
		uint64_t offset;
		memcpy(&word, relocs + i * sizeof(word), sizeof(word));
		uint64_t position = (uint64_t)word * 8;
		if (position > size - sizeof(uint64_t))
			return false;
		memcpy(&offset, block + position, sizeof(offset));
		if (!offset || offset >= size)
			return false;
		char *pointer = block + offset;
		memcpy(block + position, &pointer, sizeof(pointer));
	}
	return true;
}

/* Is what the walk saw still so? A read name that is a regular file gives the file's size and time. */
static bool still_true(const struct glob_seen *seen, struct stat *st, bool *stat_made)
{
	*stat_made = false;
	switch (seen->kind) {
	case GLOB_SEEN_DIRECTORY:
		if (stat(seen->path, st) < 0)
			return false;
		return (uint64_t)st->st_dev == seen->device && (uint64_t)st->st_ino == seen->inode &&
		       timespec_ns(&st->st_mtim) == seen->mtime_ns && timespec_ns(&st->st_ctim) == seen->ctime_ns;
	case GLOB_SEEN_NAME:
		if (lstat(seen->path, st) < 0)
			return seen->type == 0;
		*stat_made = true;
		return (uint32_t)(st->st_mode & S_IFMT) == seen->type;
	case GLOB_SEEN_NO_DIRECTORY:
		return stat(seen->path, st) < 0 || !S_ISDIR(st->st_mode);
	}
	return false;
}

static bool replay(const struct cache_header *h, char *block, struct glob_file *files)
{
	const uint32_t *file_seen = (const uint32_t *)(void *)(block + h->file_seen_offset);
	/* Per observation: the size and time of the regular file it found (size -1: none). */
	int64_t *sizes = xcalloc(h->seen_count + 1, sizeof(*sizes));
	int64_t *times = xcalloc(h->seen_count + 1, sizeof(*times));
	bool same = true;
	struct glob_seen_reader reader;
	struct glob_seen seen;
	size_t count = 0;
	glob_seen_reader_init(&reader, block + h->seen_offset, h->seen_length);
	while (same && count < h->seen_count && glob_seen_next(&reader, &seen) > 0) {
		struct stat st;
		bool stat_made;
		same = still_true(&seen, &st, &stat_made);
		bool regular = stat_made && S_ISREG(st.st_mode);
		sizes[count] = regular ? (int64_t)st.st_size : -1;
		times[count++] = regular ? timespec_ns(&st.st_mtim) : 0;
	}
	/* Every observation read, and nothing after them. */
	same = same && count == h->seen_count && reader.at == reader.length;
	glob_seen_reader_release(&reader);
	for (size_t f = 0; same && f < h->file_count; f++) {
		if (!file_seen[f] || file_seen[f] > h->seen_count)
			continue;
		files[f].size = sizes[file_seen[f] - 1];
		files[f].mtime_ns = times[file_seen[f] - 1];
	}
	free(sizes);
	free(times);
	return same;
}

static void take_strings(struct strvec *out, char *const *items, uint64_t count)
{
	for (uint64_t i = 0; i < count; i++)
		strvec_push(out, items[i]);
}

static void take_recipes(struct graph *graph, const struct recipe_set *set, const struct cached_recipe *cached)
{
	graph->recipes = xcalloc(set->count + 1, sizeof(*graph->recipes));
	graph->recipe_count = set->count;
	for (size_t r = 0; r < set->count; r++) {
		struct graph_recipe *shared = &graph->recipes[r];
		shared->recipe = &set->recipes[r];
		struct strbuf definition = STRBUF_INIT;
		recipe_definition_text(shared->recipe, &definition);
		shared->definition = strbuf_detach(&definition);
		shared->unbound_fails = cached[r].unbound_fails;
		shared->checked = cached[r].checked;
		shared->name_count = shared->name_cap = cached[r].name_count;
		shared->names = xcalloc(shared->name_count + 1, sizeof(*shared->names));
		for (size_t i = 0; i < shared->name_count; i++) {
			const struct graph_run_name *from = &cached[r].names[i];
			struct graph_run_name *to = &shared->names[i];
			*to = *from;
			to->name = xstrdup(from->name);
			to->values = NULL;
			if (from->values) {
				to->values = xmalloc(from->values_len + 1);
				memcpy(to->values, from->values, from->values_len + 1);
			}
		}
	}
}

int graph_cache_load(const char *path, const void *key, size_t key_length, const struct recipe_set *set,
		     struct graph **graph_out, struct glob_result *globbed)
{
	size_t size;
	char *block = read_whole(path, &size);
	if (!block)
		return -1;
	struct cache_header h;
	memcpy(&h, block, sizeof(h));
	bool ready = block_ready(block, size, key, key_length) && h.recipe_count == set->count;
	const struct graph_job *jobs = (const struct graph_job *)(void *)(block + h.jobs_offset);
	for (size_t i = 0; ready && i < h.job_count; i++)
		ready = jobs[i].recipe < set->count;
	if (!ready) {
		free(block);
		return -1;
	}
	struct glob_file *files = xcalloc(h.file_count + 1, sizeof(*files));
	memcpy(files, block + h.files_offset, h.file_count * sizeof(*files));
	if (!replay(&h, block, files)) {
		free(files);
		free(block);
		return -1;
	}
	struct graph *graph = xcalloc(1, sizeof(*graph));
	graph->block = block;
	graph->jobs = (struct graph_job *)(void *)(block + h.jobs_offset);
	graph->count = graph->cap = h.job_count;
	if (h.definition_hashes_offset)
		graph->definition_hashes = (const uint64_t *)(void *)(block + h.definition_hashes_offset);
	take_recipes(graph, set, (const struct cached_recipe *)(void *)(block + h.recipes_offset));
	for (size_t i = 0; i < graph->count; i++)
		graph->jobs[i].shared = &graph->recipes[graph->jobs[i].recipe];
	struct strvec *lists[4] = {&graph->skipped, &graph->left_out, &graph->warnings, &globbed->warnings};
	for (int l = 0; l < 4; l++)
		take_strings(lists[l], (char *const *)(void *)(h.lists_offset[l] ? block + h.lists_offset[l] : NULL),
			     h.list_count[l]);
	graph->group_skip_count = graph->group_skip_cap = h.group_skip_count;
	graph->group_skips = xcalloc(h.group_skip_count + 1, sizeof(*graph->group_skips));
	if (h.group_skip_count)
		memcpy(graph->group_skips, block + h.group_skips_offset, h.group_skip_count * sizeof(*graph->group_skips));
	globbed->files = files;
	globbed->count = globbed->cap = h.file_count;
	*graph_out = graph;
	return 0;
}
