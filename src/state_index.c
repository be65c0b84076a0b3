/*
 * The name indexes of the state's files and jobs (struct name_index in
 * state_int.h): open addressing over entry arrays, added to one name at a
 * time or, while loading, in prefetched batches. Part of the state module
 * (state_int.h lists its files).
 */
#include "state_int.h"

#include <stdlib.h>
#include <string.h>

static const char *entry_name(const struct state *state, enum index_kind kind, size_t i)
{
	return kind == INDEX_FILES ? state->files[i].path : state->jobs[i].job_id;
}

static uint64_t slot_make(size_t i, uint64_t hash)
{
	return (uint64_t)(uint32_t)hash << 32 | (uint64_t)(i + 1);
}

/*
 * Where a probe for `tag` starts among `cap` slots: the tag scaled to the
 * range (any `cap` up to 2^32, so the index need not round up to a power of two).
 */
static size_t slot_home(uint32_t tag, size_t cap)
{
	return (size_t)(((uint64_t)tag * cap) >> 32);
}

static size_t slot_next(size_t at, size_t cap)
{
	return at + 1 == cap ? 0 : at + 1;
}

/* Put a slot at its place in `slots` (`cap` of them, no more than 2^32). */
static void slot_place(uint64_t *slots, size_t cap, uint64_t slot)
{
	size_t at = slot_home((uint32_t)(slot >> 32), cap);
	while (slots[at])
		at = slot_next(at, cap);
	slots[at] = slot;
}

/*
 * Resize to hold `count` names at a load factor of at most 2/3: a probe
 * compares the 32 hash bits in the slots it passes, so a fuller index costs
 * little, and the index takes 12 bytes a name (a power of two at 1/2 took 16 to 32).
 */
void index_reserve(struct name_index *index, size_t count)
{
	size_t cap = count + count / 2 + 1;
	if (cap < 16)
		cap = 16;
	if (cap <= index->cap)
		return;
	if (cap > (size_t)UINT32_MAX + 1)
		BUG("a name index of %zu names", count);
	uint64_t *old = index->slots;
	size_t old_cap = index->cap;
	index->slots = xcalloc_table(cap, sizeof(*index->slots));
	index->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i])
			slot_place(index->slots, cap, old[i]);
	free(old);
}

/* The entry named `name` (whose hash is `hash`), or SIZE_MAX. */
size_t index_find(const struct state *state, const struct name_index *index, enum index_kind kind,
		  const char *name, uint64_t hash)
{
	if (!index->cap)
		return SIZE_MAX;
	uint32_t tag = (uint32_t)hash;
	for (size_t at = slot_home(tag, index->cap);; at = slot_next(at, index->cap)) {
		uint64_t slot = index->slots[at];
		if (!slot)
			return SIZE_MAX;
		size_t i = (size_t)(uint32_t)slot - 1;
		if ((uint32_t)(slot >> 32) == tag && !strcmp(entry_name(state, kind, i), name))
			return i;
	}
}

/* Make room for `more` names: a third full after a resize, room to grow before the next. */
static void index_room(struct name_index *index, size_t more)
{
	if ((index->count + more) * 3 > index->cap * 2)
		index_reserve(index, 2 * (index->count + more));
}

/* Add entry `i`, whose name (hashing to `hash`) is not indexed yet. */
void index_add(struct name_index *index, size_t i, uint64_t hash)
{
	if (i + 1 > UINT32_MAX)
		BUG("more than 4G state records");
	index_room(index, 1);
	slot_place(index->slots, index->cap, slot_make(i, hash));
	index->count++;
}

/*
 * index_add, deferred: the slot's home is prefetched now and the slot placed
 * with the next INDEX_BATCH - 1 additions, so that the cache misses of their
 * random homes overlap (a load adds hundreds of thousands of names to
 * indexes of megabytes). Until index_batch_flush, lookups miss the pending ones.
 */
void index_batch_add(struct index_batch *batch, size_t i, uint64_t hash)
{
	struct name_index *index = batch->index;
	if (i + 1 > UINT32_MAX)
		BUG("more than 4G state records");
	if (batch->count == INDEX_BATCH)
		index_batch_flush(batch);
	/* Room for the pending ones and this: a load's exact reserve must not grow the index. */
	index_room(index, batch->count + 1);
	__builtin_prefetch(&index->slots[slot_home((uint32_t)hash, index->cap)], 1);
	batch->slots[batch->count++] = slot_make(i, hash);
}

void index_batch_flush(struct index_batch *batch)
{
	struct name_index *index = batch->index;
	for (size_t k = 0; k < batch->count; k++)
		slot_place(index->slots, index->cap, batch->slots[k]);
	index->count += batch->count;
	batch->count = 0;
}
