/*
 * glob: file-tree's update_glob on PCRE2, as cpipe-tree(5), GLOBBING
 * describes it step by step. This file turns a request into a "job" and runs
 * it; the other parts are private to the module and share glob_int.h:
 *
 *   glob_pattern.c  templates into anchored patterns (steps 5 and 6)
 *   glob_walk.c     the one pruned walk of the disk (step 7)
 *   glob_match.c    typed values, filters, one reading per file (steps 6, 8, 9)
 *   glob_result.c   files, values and links gathered and stored (steps 10, 11)
 *
 * The walk (glob_update) and glob_match_path share the same matching and
 * binding code: a "job" holds the compiled patterns (read-only while
 * walking) and each "worker" (one per thread) what a successful parse writes.
 */
#include "glob_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

/* Step 4 of GLOBBING substitutes every value of lists holding '/': cap the number of combinations. */
#define GLOB_MAX_SUBSTITUTIONS 4096
/* Backtracking budget per match, so a pathological template cannot hang a glob. */
#define GLOB_MATCH_LIMIT 1000000

/*
 * PCRE2's JIT-generated code reads bytes valgrind believes uninitialised, so
 * under valgrind the interpreter is used: same answers, clean reports.
 */
static bool jit_wanted(void)
{
#ifdef RUNNING_ON_VALGRIND
	return !RUNNING_ON_VALGRIND;
#else
	return true;
#endif
}

static bool has_value(const struct tree_placeholder *placeholder)
{
	if (!placeholder || !placeholder->count)
		return false;
	return placeholder->multiple || placeholder->values[0].text;
}

static const char *last_component(const char *name)
{
	const char *slash = strrchr(name, '/');
	return slash ? slash + 1 : name;
}

/* ------------------------------------------------------------------- jobs */

static void matcher_release(struct matcher *m)
{
	glob_source_release(&m->source);
	free(m->rules);
	for (size_t s = 0; s < m->slot_names.count; s++)
		tree_value_release(&m->slot_fixed[s]);
	free(m->slot_fixed);
	strvec_release(&m->slot_names);
	free(m->slot_collector);
	free(m->link_slots);
}

static void pattern_release(struct pattern *p)
{
	pcre2_code_free(p->code);
	free(p->groups);
	free(p->types);
	for (size_t c = 0; p->literals && c < p->depth; c++)
		free(p->literals[c]);
	free(p->literals);
	free(p->classes);
	free(p->component_ends);
	free(p->regex);
}

static void worker_release(struct worker *w)
{
	struct job *job = w->job;
	pcre2_match_data_free(w->match_data);
	for (size_t i = 0; i < w->capture_count; i++) {
		strbuf_release(&w->capture_text[i]);
		strbuf_release(&w->capture_repr[i]);
	}
	free(w->capture_text);
	free(w->capture_repr);
	free(w->capture_values);
	free(w->slot_values);
	free(w->group_stamp);
	for (size_t i = 0; w->collected && i < job->collector_names.count; i++)
		glob_value_rows_release(&w->collected[i]);
	free(w->collected);
	for (size_t g = 0; w->linked && g < job->link_count; g++)
		glob_value_rows_release(&w->linked[g]);
	free(w->linked);
	glob_result_release(&w->result);
	free(w->matcher_strings);
	free(w->file_ranks);
	free(w->pending_matcher);
	free(w->pending_score);
	strvec_release(&w->tie_keys);
	strvec_release(&w->tie_paths);
	strvec_release(&w->tie_messages);
	strbuf_release(&w->subject);
	glob_observations_release(&w->seen);
	for (size_t i = 0; w->levels && i < w->level_count; i++)
		free(w->levels[i]);
	free(w->levels);
	free(w->level_caps);
	free(w->finals);
	free(w->class_stamp);
	free(w->class_ok);
	cp_err_release(&w->err);
}

static void job_release(struct job *job)
{
	for (size_t i = 0; i < job->worker_count; i++)
		worker_release(&job->workers[i]);
	free(job->workers);
	for (size_t i = 0; i < job->matcher_count; i++)
		matcher_release(&job->matchers[i]);
	free(job->matchers);
	for (size_t i = 0; i < job->pattern_count; i++)
		pattern_release(&job->patterns[i]);
	free(job->patterns);
	strvec_release(&job->collector_names);
	strmap_release(&job->collector_index);
	free(job->links);
	pcre2_match_context_free(job->match_context);
}

static size_t collector_for(struct job *job, const char *name)
{
	size_t index;
	if (strmap_get(&job->collector_index, name, &index))
		return index;
	strmap_put(&job->collector_index, name, job->collector_names.count);
	strvec_push(&job->collector_names, name);
	return job->collector_names.count - 1;
}

/* Compile one pattern of the matcher being built (job->matchers[job->matcher_count - 1]). */
static int add_pattern(void *data, const struct source *src, size_t subset_group, const struct variant *v,
		       const char *regex, struct emitted *e, struct cp_err *err)
{
	struct job *job = data;
	(void)src;
	int code;
	PCRE2_SIZE offset;
	pcre2_code *compiled = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, 0, &code, &offset, NULL);
	if (!compiled) {
		PCRE2_UCHAR message[256];
		pcre2_get_error_message(code, message, sizeof(message));
		cp_err_set(err, NULL, 0, "cannot compile the pattern %s at offset %zu: %s", regex, (size_t)offset,
			   (const char *)message);
		return -1;
	}
	/* JIT is an optimisation only: without it the interpreter gives the same answers. */
	if (job->jit)
		pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
	ALLOC_GROW(job->patterns, job->pattern_count + 1, job->pattern_cap);
	struct pattern *p = &job->patterns[job->pattern_count++];
	memset(p, 0, sizeof(*p));
	p->matcher = job->matcher_count - 1;
	p->subset_group = job->subset_group_count + subset_group;
	p->code = compiled;
	p->depth = v->component_count;
	p->absolute = v->absolute;
	p->regex = xstrdup(regex);
	/* Take the emitted arrays over. */
	p->groups = e->groups;
	p->types = e->types;
	p->component_ends = e->component_ends;
	p->literals = e->literals;
	e->groups = NULL;
	e->types = NULL;
	e->component_ends = NULL;
	e->literals = NULL;
	return 0;
}

/* Compile every pattern of `text` for a new matcher; the caller fills the matcher's rules and slots. */
static int job_add_matcher(struct job *job, const char *key, enum glob_root root, const char *text,
			   struct cp_err *err)
{
	ALLOC_GROW(job->matchers, job->matcher_count + 1, job->matcher_cap);
	struct matcher *m = &job->matchers[job->matcher_count];
	memset(m, 0, sizeof(*m));
	if (glob_source_init(&m->source, text, err) < 0)
		return -1;
	job->matcher_count++;
	m->key = key;
	m->root = root;
	size_t first_pattern = job->pattern_count;
	if (glob_source_each_pattern(&m->source, -1, add_pattern, job, err) < 0)
		return -1;
	size_t groups = 0;
	for (size_t i = first_pattern; i < job->pattern_count; i++)
		if (job->patterns[i].subset_group + 1 - job->subset_group_count > groups)
			groups = job->patterns[i].subset_group + 1 - job->subset_group_count;
	job->subset_group_count += groups;
	return 0;
}

/* Bindings of glob_match_path: every placeholder under its own name, no filters. */
static void matcher_plain_slots(struct matcher *m)
{
	const struct strvec *names = &m->source.names;
	for (size_t i = 0; i < names->count; i++)
		strvec_push(&m->slot_names, names->items[i]);
	strvec_sort(&m->slot_names);
	m->rules = xcalloc(names->count + 1, sizeof(*m->rules));
	for (size_t i = 0; i < names->count; i++) {
		m->rules[i].kind = RULE_FILL;
		m->rules[i].slot = (size_t)strvec_find(&m->slot_names, names->items[i]);
	}
	m->slot_fixed = xcalloc(m->slot_names.count + 1, sizeof(*m->slot_fixed));
	m->slot_collector = xcalloc(m->slot_names.count + 1, sizeof(*m->slot_collector));
	for (size_t s = 0; s < m->slot_names.count; s++)
		m->slot_collector[s] = SIZE_MAX;
}

/*
 * Bindings of glob_update (GLOBBING steps 2 and 8): a placeholder with a value
 * filters, one without is collected under its last path component (a scoped
 * P/x with no value falls back to x), and `fixed` (singular and substituted
 * values, names and values) are added to every file.
 */
static void matcher_tree_slots(struct job *job, struct matcher *m, const struct strvec *fixed_names,
			       const struct tree_value *fixed_values)
{
	const struct strvec *names = &m->source.names;
	struct strvec final_names = STRVEC_INIT;
	m->rules = xcalloc(names->count + 1, sizeof(*m->rules));
	for (size_t i = 0; i < names->count; i++) {
		const struct tree_placeholder *placeholder = tree_find_placeholder(job->tree, names->items[i]);
		struct name_rule *rule = &m->rules[i];
		if (has_value(placeholder)) {
			rule->kind = placeholder->multiple ? RULE_MEMBER : RULE_EQUAL;
			rule->placeholder = placeholder;
			strvec_push(&final_names, names->items[i]);
		} else {
			rule->kind = RULE_FILL;
			strvec_push(&final_names, last_component(names->items[i]));
		}
		if (strvec_find(&m->slot_names, final_names.items[i]) < 0)
			strvec_push(&m->slot_names, final_names.items[i]);
	}
	for (size_t i = 0; i < fixed_names->count; i++)
		if (strvec_find(&m->slot_names, fixed_names->items[i]) < 0)
			strvec_push(&m->slot_names, fixed_names->items[i]);
	strvec_sort(&m->slot_names);

	size_t slots = m->slot_names.count;
	m->slot_fixed = xcalloc(slots + 1, sizeof(*m->slot_fixed));
	m->slot_collector = xcalloc(slots + 1, sizeof(*m->slot_collector));
	for (size_t s = 0; s < slots; s++)
		m->slot_collector[s] = SIZE_MAX;
	for (size_t i = 0; i < names->count; i++) {
		size_t slot = (size_t)strvec_find(&m->slot_names, final_names.items[i]);
		m->rules[i].slot = slot;
		if (m->rules[i].kind == RULE_FILL)
			m->slot_collector[slot] = collector_for(job, final_names.items[i]);
	}
	for (size_t i = 0; i < fixed_names->count; i++) {
		size_t slot = (size_t)strvec_find(&m->slot_names, fixed_names->items[i]);
		if (!m->slot_fixed[slot].text)
			tree_value_copy(&m->slot_fixed[slot], &fixed_values[i]);
	}

	size_t members = 0;
	for (size_t g = 0; g < job->link_count; g++)
		members += job->links[g].size;
	m->link_slots = xcalloc(members + 1, sizeof(*m->link_slots));
	size_t at = 0;
	for (size_t g = 0; g < job->link_count; g++) {
		for (size_t k = 0; k < job->links[g].size; k++, at++) {
			const char *name = job->links[g].names[k];
			long slot = strvec_find(&m->slot_names, name);
			if (slot < 0)
				slot = strvec_find(&m->slot_names, last_component(name));
			m->link_slots[at] = slot < 0 ? SIZE_MAX : (size_t)slot;
		}
	}
	strvec_release(&final_names);
}

/* Give each regex prefix ending at a component boundary an id: one partial match per entry and id. */
static void job_assign_classes(struct job *job)
{
	struct strmap classes = STRMAP_INIT;
	struct strbuf key = STRBUF_INIT;
	for (size_t i = 0; i < job->pattern_count; i++) {
		struct pattern *p = &job->patterns[i];
		p->classes = xcalloc(p->depth + 1, sizeof(*p->classes));
		for (size_t c = 0; c < p->depth; c++) {
			strbuf_reset(&key);
			strbuf_addch(&key, (char)('0' + job->matchers[p->matcher].root));
			strbuf_add(&key, p->regex, p->component_ends[c]);
			size_t id;
			if (!strmap_get(&classes, key.buf, &id)) {
				id = job->class_count++;
				strmap_put(&classes, key.buf, id);
			}
			p->classes[c] = id;
		}
	}
	strbuf_release(&key);
	strmap_release(&classes);
}

static void worker_init(struct job *job, struct worker *w, uint32_t most_groups, size_t names, size_t slots)
{
	memset(w, 0, sizeof(*w));
	w->job = job;
	w->match_data = pcre2_match_data_create(most_groups + 1, NULL);
	if (!w->match_data)
		BUG("PCRE2 ran out of memory");
	w->capture_count = names;
	w->capture_text = xcalloc(names + 1, sizeof(*w->capture_text));
	w->capture_repr = xcalloc(names + 1, sizeof(*w->capture_repr));
	for (size_t i = 0; i < names; i++) {
		w->capture_text[i] = (struct strbuf)STRBUF_INIT;
		w->capture_repr[i] = (struct strbuf)STRBUF_INIT;
	}
	w->capture_values = xcalloc(names + 1, sizeof(*w->capture_values));
	w->slot_values = xcalloc(slots + 1, sizeof(*w->slot_values));
	w->group_stamp = xcalloc(job->subset_group_count + 1, sizeof(*w->group_stamp));
	w->collected = xcalloc(job->collector_names.count + 1, sizeof(*w->collected));
	w->linked = xcalloc(job->link_count + 1, sizeof(*w->linked));
	w->result = (struct glob_result)GLOB_RESULT_INIT;
	w->matcher_strings = xcalloc(job->matcher_count + 1, sizeof(*w->matcher_strings));
	w->tie_keys = w->tie_paths = w->tie_messages = (struct strvec)STRVEC_INIT;
	w->subject = (struct strbuf)STRBUF_INIT;
	w->level_count = job->deepest + 2;
	w->levels = xcalloc(w->level_count, sizeof(*w->levels));
	w->level_caps = xcalloc(w->level_count, sizeof(*w->level_caps));
	w->class_stamp = xcalloc(job->class_count + 1, sizeof(*w->class_stamp));
	w->class_ok = xcalloc(job->class_count + 1, sizeof(*w->class_ok));
	w->err = (struct cp_err)CP_ERR_INIT;
	w->seen = (struct glob_observations)GLOB_OBSERVATIONS_INIT;
}

/* Set up `count` workers; worker 0 is the calling thread. */
static void job_prepare_workers(struct job *job, size_t count)
{
	uint32_t most_groups = 0;
	for (size_t i = 0; i < job->pattern_count; i++) {
		uint32_t groups = 0;
		pcre2_pattern_info(job->patterns[i].code, PCRE2_INFO_CAPTURECOUNT, &groups);
		if (groups > most_groups)
			most_groups = groups;
		if (job->patterns[i].depth > job->deepest)
			job->deepest = job->patterns[i].depth;
	}
	job->match_context = pcre2_match_context_create(NULL);
	if (!job->match_context)
		BUG("PCRE2 ran out of memory");
	pcre2_set_match_limit(job->match_context, GLOB_MATCH_LIMIT);
	size_t names = 0, slots = 0;
	for (size_t i = 0; i < job->matcher_count; i++) {
		if (job->matchers[i].source.names.count > names)
			names = job->matchers[i].source.names.count;
		if (job->matchers[i].slot_names.count > slots)
			slots = job->matchers[i].slot_names.count;
	}
	job->worker_count = count;
	job->workers = xcalloc(count, sizeof(*job->workers));
	for (size_t i = 0; i < count; i++)
		worker_init(job, &job->workers[i], most_groups, names, slots);
}

/* Threads worth using: the online processors, within reason. */
static size_t worker_count_wanted(void)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	if (online < 1)
		return 1;
	return online > GLOB_MAX_WORKERS ? GLOB_MAX_WORKERS : (size_t)online;
}

/* ------------------------------------------------------------ glob_update */

/*
 * GLOBBING step 4: a list value holding '/' cannot be captured (captures never hold
 * '/'), so the template is expanded once per value. `text` has the singular
 * values in; each resulting template and its substituted values go to a new
 * matcher.
 */
struct expansion {
	const char *name;
	const struct tree_placeholder *placeholder;
};

static int substitute_choice(const struct source *src, const struct expansion *expansions, size_t expansion_count,
			     const size_t *choice, struct strbuf *out, bool *possible, struct cp_err *err)
{
	const struct template *t = &src->tmpl;
	bool *dropped = xcalloc(t->optional_count + 1, sizeof(*dropped));
	*possible = true;
	/* A None value drops its optional groups; in a required place the combination cannot exist. */
	for (size_t i = 0; i < t->count; i++) {
		const struct template_part *part = &t->parts[i];
		if (part->kind != TEMPLATE_FIELD)
			continue;
		for (size_t e = 0; e < expansion_count; e++) {
			if (strcmp(part->text, expansions[e].name) || expansions[e].placeholder->values[choice[e]].text)
				continue;
			if (part->optional < 0)
				*possible = false;
			else
				dropped[part->optional] = true;
		}
	}
	int open = -1, rc = 0;
	strbuf_reset(out);
	for (size_t i = 0; i < t->count && *possible && !rc; i++) {
		const struct template_part *part = &t->parts[i];
		if (part->optional >= 0 && dropped[part->optional])
			continue;
		if (part->optional != open) {
			if (open >= 0)
				strbuf_addch(out, ']');
			if (part->optional >= 0)
				strbuf_addch(out, '[');
			open = part->optional;
		}
		const char *value = NULL;
		for (size_t e = 0; e < expansion_count && !value && part->kind == TEMPLATE_FIELD; e++)
			if (!strcmp(part->text, expansions[e].name))
				value = expansions[e].placeholder->values[choice[e]].text;
		if (value)
			rc = template_format(part->spec, value, out, err);
		else
			template_add_part(out, part);
	}
	if (open >= 0)
		strbuf_addch(out, ']');
	free(dropped);
	return rc;
}

static enum glob_root template_root(const struct tree *tree, size_t index, const char *path)
{
	if (path[0] == '/')
		return GLOB_ROOT_ABSOLUTE;
	return tree_template_is_external(tree, index) ? GLOB_ROOT_CWD : GLOB_ROOT_DATA;
}

/* GLOBBING steps 1 to 4 for one key: its matchers, with their fixed values and filters. */
static int job_add_key(struct job *job, const char *key, struct cp_err *err)
{
	struct tree *tree = job->tree;
	long index = tree_find_template(tree, key, err);
	if (index < 0)
		return -1;
	const char *path = tree->templates[index].path;
	enum glob_root root = template_root(tree, (size_t)index, path);
	struct strbuf substituted = STRBUF_INIT, text = STRBUF_INIT;
	struct strvec fixed_names = STRVEC_INIT;
	struct tree_value *fixed_values = NULL;
	struct source original = {0}, source = {0};
	struct expansion *expansions = NULL;
	size_t *choice = NULL;
	int rc = -1;

	/* Step 8 adds the singular values of the template's own placeholders to every file. */
	if (glob_source_init(&original, path, err) < 0)
		goto done;
	fixed_values = xcalloc(original.names.count + 16, sizeof(*fixed_values));
	for (size_t i = 0; i < original.names.count; i++) {
		const struct tree_placeholder *placeholder = tree_find_placeholder(tree, original.names.items[i]);
		if (has_value(placeholder) && !placeholder->multiple) {
			fixed_values[fixed_names.count] = placeholder->values[0];
			strvec_push(&fixed_names, original.names.items[i]);
		}
	}
	if (tree_substitute_singular(tree, path, &substituted, err) < 0 ||
	    glob_source_init(&source, substituted.buf, err) < 0)
		goto done;

	size_t expansion_count = 0, combinations = 1;
	expansions = xcalloc(source.names.count + 1, sizeof(*expansions));
	for (size_t i = 0; i < source.names.count; i++) {
		const struct tree_placeholder *placeholder = tree_find_placeholder(tree, source.names.items[i]);
		if (!has_value(placeholder) || !placeholder->multiple)
			continue;
		bool slash = false;
		for (size_t v = 0; v < placeholder->count && !slash; v++)
			slash = placeholder->values[v].text && strchr(placeholder->values[v].text, '/');
		if (!slash)
			continue;
		expansions[expansion_count].name = source.names.items[i];
		expansions[expansion_count++].placeholder = placeholder;
		combinations *= placeholder->count;
		if (combinations > GLOB_MAX_SUBSTITUTIONS) {
			cp_err_set(err, NULL, 0,
				   "template %s: more than %d combinations of values holding '/' to substitute", path,
				   GLOB_MAX_SUBSTITUTIONS);
			goto done;
		}
	}
	if (!expansion_count) {
		if (job_add_matcher(job, key, root, substituted.buf, err) < 0)
			goto done;
		matcher_tree_slots(job, &job->matchers[job->matcher_count - 1], &fixed_names, fixed_values);
		rc = 0;
		goto done;
	}
	choice = xcalloc(expansion_count, sizeof(*choice));
	size_t base_fixed = fixed_names.count;
	for (size_t combination = 0; combination < combinations; combination++) {
		size_t rest = combination;
		for (size_t e = expansion_count; e-- > 0;) {
			choice[e] = rest % expansions[e].placeholder->count;
			rest /= expansions[e].placeholder->count;
		}
		bool possible;
		if (substitute_choice(&source, expansions, expansion_count, choice, &text, &possible, err) < 0)
			goto done;
		if (!possible)
			continue;
		while (fixed_names.count > base_fixed)
			free(fixed_names.items[--fixed_names.count]);
		struct tree_value *values = xcalloc(base_fixed + expansion_count + 1, sizeof(*values));
		memcpy(values, fixed_values, base_fixed * sizeof(*values));
		for (size_t e = 0; e < expansion_count; e++) {
			if (!expansions[e].placeholder->values[choice[e]].text)
				continue;
			values[fixed_names.count] = expansions[e].placeholder->values[choice[e]];
			strvec_push(&fixed_names, expansions[e].name);
		}
		int added = job_add_matcher(job, key, root, text.buf, err);
		if (!added)
			matcher_tree_slots(job, &job->matchers[job->matcher_count - 1], &fixed_names, values);
		free(values);
		if (added < 0)
			goto done;
	}
	rc = 0;
done:
	if (rc < 0)
		cp_err_prefix(err, "key '%s': ", key);
	free(choice);
	free(expansions);
	glob_source_release(&original);
	glob_source_release(&source);
	free(fixed_values);
	strvec_release(&fixed_names);
	strbuf_release(&substituted);
	strbuf_release(&text);
	return rc;
}

int glob_update(struct tree *tree, const struct glob_request *request, struct glob_result *result,
		struct cp_err *err)
{
	struct job job = {0};
	job.tree = tree;
	job.jit = jit_wanted();
	job.all_parses = request->all_parses;
	struct strvec keys = STRVEC_INIT;
	int rc = -1;

	job.links = xcalloc(request->link_count + 1, sizeof(*job.links));
	for (size_t g = 0; g < request->link_count; g++) {
		if (!request->link_sizes[g])
			continue;
		job.links[job.link_count].names = request->links[g];
		job.links[job.link_count++].size = request->link_sizes[g];
	}
	for (size_t i = 0; i < request->key_count; i++) {
		if (strvec_find(&keys, request->keys[i]) >= 0)
			continue;
		strvec_push(&keys, request->keys[i]);
		if (job_add_key(&job, request->keys[i], err) < 0)
			goto done;
	}
	/* A link name no globbed template uses would silently empty the group. */
	for (size_t g = 0, at = 0; g < job.link_count; g++) {
		for (size_t k = 0; k < job.links[g].size; k++, at++) {
			bool used = false;
			for (size_t m = 0; m < job.matcher_count && !used; m++)
				used = job.matchers[m].link_slots[at] != SIZE_MAX;
			if (!used) {
				cp_err_set(err, NULL, 0, "cannot link '%s': no globbed template has this placeholder",
					   job.links[g].names[k]);
				goto done;
			}
		}
	}
	/* Rank each matcher's key by name: results sort by key, then path. */
	strvec_sort(&keys);
	for (size_t m = 0; m < job.matcher_count; m++)
		job.matchers[m].key_rank = (size_t)strvec_find(&keys, job.matchers[m].key);
	job_assign_classes(&job);
	job_prepare_workers(&job, worker_count_wanted());
	for (size_t k = 0; k < job.worker_count; k++)
		job.workers[k].observing = request->observed != NULL;
	const char *directories[GLOB_ROOT_COUNT] = {request->root ? request->root : ".", ".", "/"};
	for (int root = 0; root < GLOB_ROOT_COUNT; root++) {
		if (glob_walk_root(&job, (enum glob_root)root, directories[root]) < 0) {
			cp_err_set(err, NULL, 0, "%s", job.workers[0].err.message);
			goto done;
		}
	}
	if (glob_job_store(&job, err) < 0)
		goto done;
	for (size_t k = 0; request->observed && k < job.worker_count; k++)
		glob_observations_merge(request->observed, &job.workers[k].seen);
	if (result) {
		glob_job_collect_files(&job, result, keys.count, true);
		glob_job_collect_ties(&job, &result->warnings);
	}
	rc = 0;
done:
	strvec_release(&keys);
	job_release(&job);
	return rc;
}

/* ---------------------------------------------------------- single paths */

struct regex_lines {
	struct strbuf *out;
	size_t count;
};

static int add_regex_line(void *data, const struct source *src, size_t subset_group, const struct variant *v,
			  const char *regex, struct emitted *e, struct cp_err *err)
{
	struct regex_lines *lines = data;
	(void)src, (void)subset_group, (void)v, (void)e, (void)err;
	if (lines->count++)
		strbuf_addch(lines->out, '\n');
	strbuf_adds(lines->out, regex);
	return 0;
}

int glob_template_regex(const char *template_text, bool with_optionals, struct strbuf *out, struct cp_err *err)
{
	struct source src;
	if (glob_source_init(&src, template_text, err) < 0)
		return -1;
	long long subset = with_optionals ? (long long)(((uint64_t)1 << src.optional_name_count) - 1) : 0;
	struct regex_lines lines = {out, 0};
	int rc = glob_source_each_pattern(&src, subset, add_regex_line, &lines, err);
	glob_source_release(&src);
	return rc;
}

int glob_match_path(const char *template_text, const char *path, bool all_parses, struct glob_result *matches,
		    struct cp_err *err)
{
	struct job job = {0};
	struct glob_result local = GLOB_RESULT_INIT;
	struct glob_result *target = matches ? matches : &local;
	size_t first_file = target->count;
	int rc = -1;
	job.jit = false;
	job.all_parses = all_parses;
	if (job_add_matcher(&job, NULL, GLOB_ROOT_DATA, template_text, err) < 0)
		goto done;
	matcher_plain_slots(&job.matchers[0]);
	job_prepare_workers(&job, 1);
	size_t *all = xcalloc(job.pattern_count + 1, sizeof(*all));
	for (size_t i = 0; i < job.pattern_count; i++)
		all[i] = i;
	glob_match_candidates(&job.workers[0], all, job.pattern_count, path, strlen(path));
	free(all);
	/* Count distinct parses: the same bindings reached through two subsets count once. */
	glob_job_collect_files(&job, target, 1, false);
	rc = (int)(target->count - first_file);
done:
	glob_result_release(&local);
	job_release(&job);
	return rc;
}
