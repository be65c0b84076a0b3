/*
 * graph: the job graph in Graphviz DOT (graph_to_dot); the rest of the
 * module is graph.c and graph_existing.c.
 */
#include "cpipe/graph.h"

static void dot_quoted(struct strbuf *out, const char *text)
{
	strbuf_addch(out, '"');
	for (const char *s = text; *s; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_addch(out, '\\');
		if (*s == '\n')
			strbuf_adds(out, "\\n");
		else
			strbuf_addch(out, *s);
	}
	strbuf_addch(out, '"');
}

void graph_to_dot(const struct graph *graph, struct strbuf *out)
{
	strbuf_adds(out, "digraph cpipe {\n    rankdir=LR;\n    node [shape=box];\n");
	for (size_t i = 0; i < graph->count; i++) {
		strbuf_addf(out, "    j%zu [label=", i);
		dot_quoted(out, graph->jobs[i].id);
		strbuf_adds(out, "];\n");
	}
	for (size_t i = 0; i < graph->count; i++)
		for (size_t d = 0; d < graph->jobs[i].dep_count; d++)
			strbuf_addf(out, "    j%zu -> j%zu;\n", (size_t)graph->jobs[i].deps[d], i);
	strbuf_adds(out, "}\n");
}
