/* The finished graph: its jobs looked up by id, and its release. */
#include "cpipe/graph.h"

#include "graph_int.h"

#include <stdlib.h>

bool graph_find_job(struct graph *graph, const char *id, size_t *index)
{
	if (!graph->by_id.count && graph->count) {
		strmap_reserve(&graph->by_id, graph->count);
		for (size_t i = 0; i < graph->count; i++)
			strmap_put(&graph->by_id, graph->jobs[i].id, i);
	}
	return strmap_get(&graph->by_id, id, index);
}

void graph_free(struct graph *graph)
{
	if (!graph)
		return;
	if (graph->block)
		free(graph->block); /* the jobs live in it */
	else
		free(graph->jobs);
	arena_release(&graph->arena);
	graph_release_recipes(graph);
	strvec_release(&graph->skipped);
	free(graph->group_skips);
	strvec_release(&graph->left_out);
	strvec_release(&graph->warnings);
	strmap_release(&graph->by_id);
	free(graph);
}
