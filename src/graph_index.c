/*
 * The maps graph_build finds jobs by while it assembles them: a job's id, and each of its output
 * paths, to the job's index. They are the build's largest random-access tables (three million
 * jobs at a million subjects), so a slot is 8 bytes, the key's 32-bit hash and 1 + the job's
 * index, and a key is compared through the job it names instead of being kept in the slot.
 */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SLOT_INDEX_BITS 32

static uint32_t key_hash(const char *key)
{
	return (uint32_t)XXH3_64bits(key, strlen(key));
}

static bool job_has_output(const struct graph_job *job, const char *path)
{
	for (size_t i = 0; i < job->outputs.count; i++)
		if (!strcmp(job->outputs.items[i], path))
			return true;
	return false;
}

static bool job_matches(const struct graph_job *job, const char *key, enum job_map_kind kind)
{
	return kind == JOB_MAP_ID ? !strcmp(job->id, key) : job_has_output(job, key);
}

/* At most half full, as strmap: probes for a key not there (most lookups while building) stay short. */
static void job_map_grow(struct job_map *map, size_t count)
{
	size_t cap = map->cap ? map->cap : 64;
	while (count * 2 > cap)
		cap *= 2;
	if (cap == map->cap)
		return;
	uint64_t *slots = xcalloc_table(cap, sizeof(*slots));
	for (size_t i = 0; i < map->cap; i++) {
		uint64_t slot = map->slots[i];
		if (!slot)
			continue;
		size_t at = (size_t)(slot >> SLOT_INDEX_BITS) & (cap - 1);
		while (slots[at])
			at = (at + 1) & (cap - 1);
		slots[at] = slot;
	}
	free(map->slots);
	map->slots = slots;
	map->cap = cap;
}

long graph_job_map_find(const struct builder *b, const struct job_map *map, const char *key)
{
	if (!map->cap)
		return -1;
	uint32_t hash = key_hash(key);
	for (size_t at = hash & (map->cap - 1);; at = (at + 1) & (map->cap - 1)) {
		uint64_t slot = map->slots[at];
		if (!slot)
			return -1;
		size_t job = (size_t)(slot & UINT32_MAX) - 1;
		if ((uint32_t)(slot >> SLOT_INDEX_BITS) == hash && job_matches(&b->graph->jobs[job], key, map->kind))
			return (long)job;
	}
}

/* Add `key` of job `job` (already in the graph); the caller knows it is not there yet. */
static void job_map_add(struct job_map *map, const char *key, size_t job)
{
	if (job >= UINT32_MAX)
		BUG("job index %zu over 2^32", job);
	job_map_grow(map, map->count + 1);
	uint32_t hash = key_hash(key);
	size_t at = hash & (map->cap - 1);
	while (map->slots[at])
		at = (at + 1) & (map->cap - 1);
	map->slots[at] = (uint64_t)hash << SLOT_INDEX_BITS | (uint64_t)(job + 1);
	map->count++;
}

void graph_index_job(struct builder *b, size_t job)
{
	const struct graph_job *record = &b->graph->jobs[job];
	for (size_t i = 0; i < record->outputs.count; i++)
		job_map_add(&b->by_output, record->outputs.items[i], job);
	job_map_add(&b->by_id, record->id, job);
}

void graph_job_map_release(struct job_map *map)
{
	FREE_AND_NULL(map->slots);
	map->cap = map->count = 0;
}

/*
 * Jobs and outputs per combination of recipe `r`: one of each recipe it needs, itself included
 * (each once); a batch recipe makes one job for many combinations, and is not counted.
 */
static void count_upstream(const struct builder *b, size_t r, bool *seen, size_t *jobs, size_t *outputs)
{
	if (seen[r])
		return;
	seen[r] = true;
	if (!b->set->recipes[r].batch.count) {
		*jobs += 1;
		*outputs += b->set->recipes[r].out.count;
	}
	const struct recipe_info *info = &b->recipes[r];
	for (size_t i = 0; i < b->set->recipes[r].in.count; i++)
		if (b->keys[info->in_keys[i]].producer >= 0)
			count_upstream(b, (size_t)b->keys[info->in_keys[i]].producer, seen, jobs, outputs);
}

void graph_reserve_for(struct builder *b, size_t r, size_t rows)
{
	bool *seen = xcalloc(b->set->count, sizeof(*seen));
	size_t jobs = 0, outputs = 0;
	count_upstream(b, r, seen, &jobs, &outputs);
	free(seen);
	if (rows * outputs >= UINT32_MAX / 2) /* more than a map holds: let it fail where it would anyway */
		return;
	job_map_grow(&b->by_id, rows * jobs);
	job_map_grow(&b->by_output, rows * outputs);
}
