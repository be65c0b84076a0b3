#include "study.h"

#include "cpipe/exec.h"
#include "cpipe/glob.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int study_option(struct study_options *opt, int c, const char *arg)
{
	struct cp_err err = CP_ERR_INIT;
	switch (c) {
	case 'f': opt->recipe_file = arg; return 1;
	case 'C': opt->directory = arg; return 1;
	case 'D': opt->data_dir = arg; return 1;
	case 'L': strvec_push(&opt->link_specs, arg); return 1;
	case STUDY_OPT_SET: strvec_push(&opt->param_settings, arg); return 1;
	case 'S': opt->skip_missing = true; return 1;
	case 'G': opt->partial_group = true; return 1;
	case 'p':
		if (cli_parse_placeholder(&opt->settings, arg, &err) < 0) {
			cli_report(&err);
			return -1;
		}
		/* getopt hands over the very string the rewrite made for a --NAME with more words. */
		for (size_t i = 0; i < opt->flag_word_count; i++)
			if (opt->flag_words[i].setting_text == arg)
				opt->flag_words[i].setting = (long)opt->settings.count - 1;
		return 1;
	default:
		return 0;
	}
}

static bool is_known_long(const struct option *known, const char *name, size_t len)
{
	for (const struct option *o = known; o->name; o++)
		if (strlen(o->name) == len && !strncmp(o->name, name, len))
			return true;
	return false;
}

char **study_rewrite_args(int argc, char **argv, const struct option *known, struct study_options *opt,
			  struct strvec *storage, int *new_argc)
{
	char **out = xcalloc((size_t)argc * 2 + 1, sizeof(*out));
	int n = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (i > 0 && !strcmp(a, "--")) {
			while (i < argc)
				out[n++] = argv[i++];
			break;
		}
		if (i == 0 || strncmp(a, "--", 2) || !a[2]) {
			out[n++] = argv[i];
			continue;
		}
		const char *name = a + 2;
		const char *equals = strchr(name, '=');
		size_t len = equals ? (size_t)(equals - name) : strlen(name);
		if (is_known_long(known, name, len)) {
			out[n++] = argv[i];
			continue;
		}
		/* --NAME VALUE or --NAME=VALUE sets placeholder NAME; '-' and '_' are the same in NAME. */
		const char *value = equals ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
		char *placeholder = xstrndup(name, len);
		strvec_push(&opt->placeholder_flags, placeholder);
		if (!value) {
			strvec_push_owned(storage, xasprintf("%s", placeholder));
		} else {
			strvec_push_owned(storage, xasprintf("%s=%s", placeholder, value));
		}
		free(placeholder);
		out[n++] = "-p";
		out[n++] = storage->items[storage->count - 1];
		/* `--NAME V1 V2 ...`: the words up to the next option are values or targets (study_load). */
		if (equals || !value || i + 1 >= argc || argv[i + 1][0] == '-')
			continue;
		ALLOC_GROW(opt->flag_words, opt->flag_word_count + 1, opt->flag_word_cap);
		struct flag_words *group = &opt->flag_words[opt->flag_word_count++];
		*group = (struct flag_words){out[n - 1], -1, STRVEC_INIT};
		while (i + 1 < argc && argv[i + 1][0] != '-')
			strvec_push(&group->words, argv[++i]);
	}
	out[n] = NULL;
	*new_argc = n;
	return out;
}

int study_parse_args(const char *command, const char *usage, int argc, char **argv,
		     const struct option *long_options, const char *short_options, struct study_options *opt,
		     int (*own_option)(int c, const char *arg, void *context), void *context)
{
	struct strvec storage = STRVEC_INIT;
	int new_argc, c, rc = -1;
	char **args = study_rewrite_args(argc, argv, long_options, opt, &storage, &new_argc);
	optind = 1;
	while (rc < 0 && (c = getopt_long(new_argc, args, short_options, long_options, NULL)) != -1) {
		int handled = study_option(opt, c, optarg);
		if (handled < 0)
			rc = EXIT_USAGE;
		else if (handled || own_option(c, optarg, context))
			continue;
		else if (c == 'h') {
			fputs(usage, stdout);
			rc = EXIT_OK;
		} else {
			rc = cli_usage_error(command, "unknown option");
		}
	}
	for (int i = optind; rc < 0 && i < new_argc; i++)
		strvec_push(&opt->targets, args[i]);
	free(args);
	strvec_release(&storage);
	return rc;
}

struct tree_view_context {
	const struct tree *tree;
};

static int view_placeholders(void *ctx, const char *key, struct strvec *required, struct strvec *optional)
{
	const struct tree_view_context *view = ctx;
	struct cp_err err = CP_ERR_INIT;
	long index = tree_find_template(view->tree, key, &err);
	cp_err_release(&err);
	if (index < 0)
		return -1;
	struct template parsed = TEMPLATE_INIT;
	if (template_parse(view->tree->templates[index].path, &parsed, &err) < 0) {
		cp_err_release(&err);
		return 0;
	}
	template_placeholders(&parsed, required, optional);
	template_release(&parsed);
	return 0;
}

static bool view_defined(void *ctx, const char *name)
{
	const struct tree_view_context *view = ctx;
	return tree_find_placeholder(view->tree, name) != NULL;
}

static bool view_singular(void *ctx, const char *name)
{
	const struct tree_view_context *view = ctx;
	const struct tree_placeholder *p = tree_find_placeholder(view->tree, name);
	return p && p->count == 1 && !p->multiple;
}

/* fsl-pipe accepts --NAME with '_' or '-': map a flag to the tree's spelling, or fail. */
static int check_placeholder_flags(struct study_options *opt, const struct tree *tree)
{
	for (size_t i = 0; i < opt->placeholder_flags.count; i++) {
		const char *flag = opt->placeholder_flags.items[i];
		const char *match = NULL;
		struct strbuf alt = STRBUF_INIT;
		for (size_t p = 0; p < tree->placeholder_count && !match; p++)
			if (!strcmp(tree->placeholders[p].name, flag))
				match = tree->placeholders[p].name;
		for (size_t t = 0; t < tree->template_count && !match; t++) {
			strbuf_reset(&alt);
			strbuf_addf(&alt, "{%s", flag);
			if (strstr(tree->templates[t].path, alt.buf))
				match = flag;
		}
		for (const char *c = flag; *c && !match; c++) {
			if (*c != '-' && *c != '_')
				continue;
			/* Try the other spelling of every separator. */
			strbuf_reset(&alt);
			for (const char *d = flag; *d; d++)
				strbuf_addch(&alt, *d == '-' ? '_' : (*d == '_' ? '-' : *d));
			for (size_t p = 0; p < tree->placeholder_count && !match; p++)
				if (!strcmp(tree->placeholders[p].name, alt.buf))
					match = tree->placeholders[p].name;
			break;
		}
		if (!match) {
			fprintf(stderr, "cpipe: unknown option '--%s' (no placeholder of that name in the tree)\n", flag);
			strbuf_release(&alt);
			return -1;
		}
		for (size_t s = 0; s < opt->settings.count; s++) {
			if (!strcmp(opt->settings.items[s].name, flag) && strcmp(flag, match)) {
				free(opt->settings.items[s].name);
				opt->settings.items[s].name = xstrdup(match);
			}
			if (!strcmp(opt->settings.items[s].name, match) && !opt->settings.items[s].values.count) {
				fprintf(stderr, "cpipe: option '--%s' needs a value\n", flag);
				strbuf_release(&alt);
				return -1;
			}
		}
		strbuf_release(&alt);
	}
	return 0;
}

/* A word after `--NAME V1` that is no value of NAME but a target: a key, a recipe, or a path or pattern. */
static bool names_target(const struct study *study, const char *word)
{
	struct cp_err ignored = CP_ERR_INIT;
	bool is_key = tree_find_template(study->tree, word, &ignored) >= 0;
	cp_err_release(&ignored);
	return is_key || recipe_find(study->recipes, word) >= 0 || strchr(word, '/') || path_is_pattern(word);
}

static bool tree_lists_value(const struct tree *tree, const char *name, const char *word)
{
	const struct tree_placeholder *p = tree_find_placeholder(tree, name);
	for (size_t v = 0; p && v < p->count; v++)
		if (p->values[v].text && !strcmp(p->values[v].text, word))
			return true;
	return false;
}

/*
 * Sort the words after each `--NAME V1`: more values of NAME up to the first word that names a
 * target (which, and all after it, are targets). A word that is a target and a value the tree
 * lists for NAME is ambiguous: an error. Before cli_apply_placeholders (the tree's own values).
 */
static int sort_flag_words(struct study_options *opt, const struct study *study)
{
	for (size_t g = 0; g < opt->flag_word_count; g++) {
		const struct flag_words *group = &opt->flag_words[g];
		if (group->setting < 0)
			continue;
		struct cli_placeholder_setting *s = &opt->settings.items[group->setting];
		bool targets = false;
		for (size_t w = 0; w < group->words.count; w++) {
			const char *word = group->words.items[w];
			if (!targets && names_target(study, word)) {
				if (tree_lists_value(study->tree, s->name, word)) {
					fprintf(stderr,
						"cpipe: '%s' after --%s is both a value of %s and a target: write "
						"--%s=...,%s for the value, or put the target before --%s\n",
						word, s->name, s->name, s->name, word, s->name);
					return -1;
				}
				targets = true;
			}
			if (targets) {
				strvec_push(&opt->targets, word);
				continue;
			}
			if (path_leaves_root(word)) {
				fprintf(stderr, "cpipe: value '%s' of %s would put paths outside the data root ('/' first "
						"or a '..' part)\n", word, s->name);
				return -1;
			}
			strvec_push(&s->values, word);
			s->multiple = true;
		}
	}
	return 0;
}

static int glob_sources(struct study_options *opt, struct study *study, const struct strvec *source_keys,
			struct glob_observations *observed, struct cp_err *err)
{
	const struct strvec keys = *source_keys;
	/* The recipe file's `link:` groups, then the command line's --link ones. */
	const struct recipe_set *set = study->recipes;
	size_t link_count = set->link_count + opt->link_specs.count;
	struct strvec *names = xcalloc(link_count + 1, sizeof(*names));
	const char **arrays[64];
	size_t sizes[64];
	int rc = 0;
	if (link_count > 64) {
		cp_err_set(err, NULL, 0, "at most 64 link groups (link: and --link together)");
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < link_count; i++) {
		for (size_t k = 0; i < set->link_count && k < set->links[i].count; k++)
			strvec_push(&names[i], set->links[i].items[k]);
		if (i >= set->link_count)
			strvec_split(&names[i], opt->link_specs.items[i - set->link_count], ',', true);
		arrays[i] = (const char **)names[i].items;
		sizes[i] = names[i].count;
	}
	if (rc == 0 && keys.count) {
		struct glob_request request = {(const char *const *)keys.items, keys.count, ".",
					       (const char *const *const *)arrays, sizes, link_count, false, observed};
		rc = glob_update(study->tree, &request, &study->globbed, err);
	}
	for (size_t i = 0; i < link_count; i++)
		strvec_release(&names[i]);
	free(names);
	return rc;
}

/*
 * Opening the state reads every record, and building the graph needs none of
 * them: on two cores the state opens in a thread while glob and graph run.
 * The same thread then stats the files recorded jobs made, which on an
 * up-to-date study are the ones the reason checks will ask about; the main
 * thread joins that stat once its graph is built, and the raw files' stats
 * come from the glob's own walk (learn_globbed_stats).
 */
struct state_opening {
	pthread_t thread;
	bool started;
	bool stat_recorded;
	int rc;
	struct state *state;
	struct stat_share *share; /* with stat_recorded: the main thread joins the stat when its graph is built */
	struct cp_err err;
};

static void *open_state(void *arg)
{
	struct state_opening *opening = arg;
	opening->rc = state_open(".", &opening->state, &opening->err);
	/* The raw files come from the glob's own stats (learn_globbed_stats). */
	if (opening->rc == 0 && opening->share)
		state_stat_recorded(opening->state, 1, true, opening->share);
	else if (opening->share)
		stat_share_end(opening->share);
	return NULL;
}

static void state_opening_start(struct state_opening *opening)
{
	struct cp_err init = CP_ERR_INIT;
	opening->err = init;
	opening->state = NULL;
	opening->share = opening->stat_recorded ? stat_share_new() : NULL;
	opening->started = pthread_create(&opening->thread, NULL, open_state, opening) == 0;
	if (!opening->started)
		open_state(opening);
}

/* Wait for the state; on failure moves the error to `err` and returns -1. */
static int state_opening_finish(struct state_opening *opening, struct state **out, struct cp_err *err)
{
	if (opening->share)
		stat_share_help(opening->share);
	if (opening->started)
		pthread_join(opening->thread, NULL);
	opening->started = false;
	stat_share_free(opening->share);
	opening->share = NULL;
	*out = opening->state;
	if (opening->rc < 0) {
		*err = opening->err;
		return -1;
	}
	return 0;
}

/* What the glob saw of the raw files: the state need not stat them again. */
static void learn_globbed_stats(struct state *state, const struct glob_result *globbed)
{
	for (size_t i = 0; i < globbed->count; i++) {
		const struct glob_file *file = &globbed->files[i];
		if (file->size < 0)
			continue;
		struct file_signature sig = {.exists = true, .size = file->size, .mtime_ns = file->mtime_ns};
		state_learn_stat(state, file->path, &sig);
	}
}

/* A `tree:` that names no file is the recipe file's error: point at its line and say where the
 * name was looked for (the recipe file's directory), not at a tree file that does not exist. */
static int check_tree_exists(const struct recipe_set *recipes, const char *file, struct cp_err *err)
{
	const char *tree = recipes->tree;
	char *with_suffix = xasprintf("%s.tree", tree);
	bool found = !access(tree, F_OK) || (!str_ends_with(tree, ".tree") && !access(with_suffix, F_OK));
	free(with_suffix);
	if (found)
		return 0;
	char *cwd = getcwd(NULL, 0), *dir = realpath(recipes->dir, NULL);
	struct strbuf joined = STRBUF_INIT, looked = STRBUF_INIT;
	path_join(cwd ? cwd : ".", tree, &joined);
	path_normalize(joined.buf, &looked);
	cp_err_set(err, file, recipe_set_field_line(recipes, "tree"),
		   "tree: no such file: %s%s (a relative tree: is taken from the recipe file's directory, %s)",
		   looked.buf, str_ends_with(tree, ".tree") ? "" : ", nor with .tree added", dir ? dir : recipes->dir);
	strbuf_release(&joined);
	strbuf_release(&looked);
	free(cwd);
	free(dir);
	return -1;
}

/* The command line's placeholder values: the names the graph treats as narrowed, and their text for messages. */
/* How to make the group jobs the graph left out anyway, added to their lines (which name no flag). */
static void add_partial_group_hints(struct graph *graph)
{
	for (size_t i = 0; i < graph->group_skip_count; i++) {
		char **line = &graph->skipped.items[graph->group_skips[i].line];
		char *hinted = xasprintf(graph->group_skips[i].reason == GRAPH_GROUP_NARROWED
						 ? "%s (give --partial-group to make it from the subset)"
						 : "%s; give --partial-group to make it from the inputs that exist",
					 *line);
		free(*line);
		*line = hinted;
	}
}

/* The command-line ways round a missing raw input, added to graph_build's message (which names no flag). */
static void add_missing_input_hint(const struct graph_missing_input *missing, struct cp_err *err)
{
	struct strbuf message = STRBUF_INIT;
	strbuf_adds(&message, err->message);
	if (missing->in_product) {
		const struct strvec *names = &missing->names;
		if (names->count > 1) {
			strbuf_adds(&message, ", or link the placeholders that go together: --link ");
			for (size_t i = 0; i < names->count; i++)
				strbuf_addf(&message, "%s%s", i ? "," : "", names->items[i]);
			strbuf_adds(&message, " or link: [[");
			for (size_t i = 0; i < names->count; i++)
				strbuf_addf(&message, "%s%s", i ? ", " : "", names->items[i]);
			strbuf_adds(&message, "]]");
		}
		strbuf_adds(&message, "; --skip-missing leaves such jobs out)");
	} else {
		strbuf_adds(&message, " (use --skip-missing to leave such jobs out)");
	}
	free(err->message);
	err->message = strbuf_detach(&message);
}

static void describe_filters(const struct cli_placeholder_settings *settings, struct study *study)
{
	struct strbuf text = STRBUF_INIT;
	for (size_t i = 0; i < settings->count; i++) {
		const struct cli_placeholder_setting *s = &settings->items[i];
		if (strvec_find(&study->narrowed, s->name) < 0)
			strvec_push(&study->narrowed, s->name);
		strbuf_addf(&text, "--%s ", s->name);
		for (size_t v = 0; v < s->values.count; v++)
			strbuf_addf(&text, "%s%s", v ? "," : "", s->values.items[v]);
		strbuf_addch(&text, ' ');
	}
	if (text.len)
		text.buf[--text.len] = '\0';
	study->filter_text = strbuf_detach(&text);
}

/* Glob the raw inputs and build the graph, recording what of the disk they saw in `seen` (may be NULL). */
static int glob_and_build(struct study_options *opt, struct study *study, struct glob_observations *seen,
			  struct cp_err *err)
{
	struct graph_missing_input missing = {false, false, STRVEC_INIT};
	struct graph_request request = {(const char *const *)opt->targets.items, opt->targets.count, ".",
					opt->skip_missing, &study->globbed, &study->narrowed, opt->partial_group,
					study->filter_text, &missing, seen};
	struct strvec source_keys = STRVEC_INIT, preset = STRVEC_INIT, preset_skipped = STRVEC_INIT;
	graph_source_keys(study->recipes, &source_keys);
	for (size_t i = 0; i < study->tree->placeholder_count; i++)
		if (study->tree->placeholders[i].count)
			strvec_push(&preset, study->tree->placeholders[i].name);
	int built = glob_sources(opt, study, &source_keys, seen, err);
	if (built == 0)
		built = study_check_preset_values(opt, study, &preset, &source_keys, &preset_skipped, seen, err);
	strvec_release(&source_keys);
	strvec_release(&preset);
	cli_phase_done("glob");
	if (built == 0 && !opt->glob_only)
		built = graph_build(study->tree, study->recipes, &request, &study->graph, err);
	if (built < 0 && missing.found)
		add_missing_input_hint(&missing, err);
	strvec_release(&missing.names);
	if (built == 0 && study->graph)
		add_partial_group_hints(study->graph);
	/* Listed and counted with the jobs the graph left out. */
	for (size_t i = 0; built == 0 && study->graph && i < preset_skipped.count; i++)
		strvec_push(&study->graph->skipped, preset_skipped.items[i]);
	strvec_release(&preset_skipped);
	if (!opt->glob_only)
		cli_phase_done("graph");
	return built;
}

/*
 * The graph cache (graph_cache.c; cpipe(1), FILES): its key is every byte
 * the graph is built from besides the disk — the recipe and tree files read,
 * the command line's targets, filters and flags, the data directory and the
 * cpipe binary itself — and not what only says how to run (-j, plan or run),
 * so that plan, status and run share it.
 */
#define GRAPH_CACHE_FILE ".cpipe/graph.cache"

static void key_add(struct strbuf *key, const void *bytes, size_t length)
{
	uint64_t n = length;
	strbuf_add(key, (const char *)&n, sizeof(n));
	strbuf_add(key, bytes, length);
}

static void key_add_text(struct strbuf *key, const char *text)
{
	key_add(key, text ? text : "", text ? strlen(text) + 1 : 0);
}

/* A file the graph was built from: its resolved name and its bytes. False when it cannot be read. */
static bool key_add_file(struct strbuf *key, const char *path, struct strvec *done)
{
	char *resolved = realpath(path, NULL);
	if (!resolved)
		return false;
	if (strvec_find(done, resolved) >= 0) {
		free(resolved);
		return true;
	}
	strvec_push(done, resolved);
	key_add_text(key, resolved);
	free(resolved);
	struct strbuf bytes = STRBUF_INIT;
	struct cp_err ignored = CP_ERR_INIT;
	bool ok = read_whole_file(path, &bytes, &ignored) == 0;
	cp_err_release(&ignored);
	key_add(key, bytes.buf, bytes.len);
	strbuf_release(&bytes);
	return ok;
}

/* The binary and the files read; before changing to the data directory (their names are relative to here). */
static bool graph_key_files(const struct study *study, struct strbuf *key)
{
	/* The binary by its name: valgrind answers readlink of /proc/self/exe with its client, not stat. A
	 * binary replaced since it started reads as "NAME (deleted)", which names no file. */
	char exe[4096];
	ssize_t length = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat self;
	if (length <= 0)
		return false;
	exe[length] = '\0';
	if (stat(exe, &self) < 0)
		return false;
	int64_t identity[4] = {(int64_t)self.st_dev, (int64_t)self.st_ino, (int64_t)self.st_size,
			       timespec_ns(&self.st_mtim)};
	key_add(key, identity, sizeof(identity));
	struct strvec done = STRVEC_INIT;
	const struct recipe_set *set = study->recipes;
	bool ok = key_add_file(key, set->file, &done);
	for (size_t i = 0; ok && i < set->included.count; i++)
		ok = key_add_file(key, set->included.items[i], &done);
	ok = ok && key_add_file(key, study->tree->file, &done);
	/* The tree as parsed, so that a sub-tree holding only placeholders (no template names its file) counts too. */
	struct strbuf parsed = STRBUF_INIT;
	tree_to_string(study->tree, &parsed);
	key_add(key, parsed.buf, parsed.len);
	strbuf_release(&parsed);
	for (size_t i = 0; ok && i < study->tree->template_count; i++) {
		/* "file:line" for messages: the sub-trees read. */
		const char *where = study->tree->templates[i].file;
		const char *colon = where ? strrchr(where, ':') : NULL;
		char *name = colon ? xstrndup(where, (size_t)(colon - where)) : NULL;
		if (name)
			ok = key_add_file(key, name, &done);
		free(name);
	}
	strvec_release(&done);
	return ok;
}

/* The command line's part, once its words are sorted into values and targets. */
static void graph_key_options(const struct study_options *opt, const struct study *study, struct strbuf *key)
{
	key_add_text(key, study->data_path);
	for (size_t i = 0; i < opt->settings.count; i++) {
		const struct cli_placeholder_setting *s = &opt->settings.items[i];
		key_add_text(key, s->name);
		key_add(key, &s->multiple, sizeof(s->multiple));
		for (size_t v = 0; v < s->values.count; v++)
			key_add_text(key, s->values.items[v]);
		key_add_text(key, "");
	}
	const struct strvec *lists[] = {&opt->targets, &opt->link_specs, &opt->param_settings};
	for (size_t l = 0; l < sizeof(lists) / sizeof(*lists); l++) {
		key_add(key, &lists[l]->count, sizeof(lists[l]->count));
		for (size_t i = 0; i < lists[l]->count; i++)
			key_add_text(key, lists[l]->items[i]);
	}
	bool flags[2] = {opt->skip_missing, opt->partial_group};
	key_add(key, flags, sizeof(flags));
}

/*
 * A graph to keep in the cache, written when the study is released: by then
 * the state is closed and the plan printed (or the run over), so writing it
 * neither delays the output nor adds its tables to the peak of memory, which
 * is set while the state loads beside the graph.
 */
struct study_cache_save {
	struct strbuf key;
	struct glob_observations seen;
	int64_t walk_start;
	uint64_t *definition_hashes; /* per job, from study_decide (NULL if none decided) */
};

static void save_graph_cache(struct study *study)
{
	struct study_cache_save *save = study->cache_save;
	/* A cache that cannot be written is no error: the next run globs again. */
	graph_cache_save(GRAPH_CACHE_FILE, save->key.buf, save->key.len, study->graph, save->definition_hashes,
			 &study->globbed, &save->seen, save->walk_start);
	cli_phase_done("cache save");
	strbuf_release(&save->key);
	glob_observations_release(&save->seen);
	free(save->definition_hashes);
	free(save);
	study->cache_save = NULL;
}

static bool state_dir_exists(void)
{
	struct stat st;
	return stat(".cpipe", &st) == 0 && S_ISDIR(st.st_mode);
}

int study_load(struct study_options *opt, struct study *study)
{
	struct cp_err err = CP_ERR_INIT;
	memset(study, 0, sizeof(*study));
	cli_phase_done(NULL);
	if (opt->directory && chdir(opt->directory) < 0) {
		fprintf(stderr, "cpipe: cannot change to directory '%s': %s\n", opt->directory, strerror(errno));
		return EXIT_USAGE;
	}
	const char *file = opt->recipe_file ? opt->recipe_file : RECIPE_DEFAULT_FILE;
	if (access(file, F_OK) < 0 && !opt->recipe_file) {
		fprintf(stderr, "cpipe: no recipe file: %s does not exist here (use -f FILE or -C DIR)\n", file);
		return EXIT_USAGE;
	}
	if (recipe_load(file, &study->recipes, &err) < 0 ||
	    recipe_set_params(study->recipes, &opt->param_settings, &err) < 0)
		goto fail;
	if (!study->recipes->tree) {
		cp_err_set(&err, file, recipe_set_field_line(study->recipes, "tree"),
			   "the recipe file names no tree: add 'tree: FILE.tree'");
		goto fail;
	}
	if (check_tree_exists(study->recipes, file, &err) < 0)
		goto fail;
	const char *data = opt->data_dir ? opt->data_dir : study->recipes->data;
	if (cli_read_tree(study->recipes->tree, data, &study->tree, &err) < 0)
		goto fail;
	/* Only the commands that read the state (plan, status, run...) use the cache; none without .cpipe. */
	struct strbuf key = STRBUF_INIT;
	bool cacheable = opt->need_state && !opt->glob_only && graph_key_files(study, &key);
	/* Kept for reading the tree again (study_check_preset_values) from the data root. */
	study->tree_path = realpath(study->recipes->tree, NULL);
	study->data_path = realpath(data, NULL);
	/* Jobs run in the data root and the state database keys paths from there. */
	if (chdir(data) < 0) {
		fprintf(stderr, "cpipe: cannot change to the data directory '%s': %s\n", data, strerror(errno));
		strbuf_release(&key);
		study_release(study);
		return EXIT_USAGE;
	}
	if (check_placeholder_flags(opt, study->tree) < 0 || sort_flag_words(opt, study) < 0) {
		strbuf_release(&key);
		study_release(study);
		return EXIT_USAGE;
	}
	cacheable = cacheable && study->data_path && state_dir_exists();
	if (cacheable)
		graph_key_options(opt, study, &key);
	cli_apply_placeholders(study->tree, &opt->settings);
	struct strvec keys = STRVEC_INIT;
	tree_template_keys(study->tree, &keys);
	struct tree_view_context view_context = {study->tree};
	struct recipe_tree_view view = {&keys, view_placeholders, view_singular, &view_context, view_defined};
	recipe_scope_placeholders(study->recipes, &view);
	int checked = recipe_check(study->recipes, &view, &err);
	strvec_release(&keys);
	if (checked < 0) {
		strbuf_release(&key);
		goto fail;
	}
	cli_phase_done("parse");
	struct state_opening opening = {0};
	opening.stat_recorded = opt->stat_recorded;
	if (opt->need_state)
		state_opening_start(&opening);
	describe_filters(&opt->settings, study);
	struct glob_observations seen = GLOB_OBSERVATIONS_INIT;
	int built;
	if (cacheable && graph_cache_load(GRAPH_CACHE_FILE, key.buf, key.len, study->recipes, &study->graph,
					  &study->globbed) == 0) {
		built = 0;
		cli_phase_done("graph cache");
	} else {
		int64_t walk_start = wall_clock_ns();
		built = glob_and_build(opt, study, cacheable ? &seen : NULL, &err);
		if (built == 0 && opt->glob_only) {
			strbuf_release(&key);
			return EXIT_OK;
		}
		if (built == 0 && cacheable) {
			struct study_cache_save *save = xmalloc(sizeof(*save));
			save->key = key;
			save->seen = seen;
			save->walk_start = walk_start;
			save->definition_hashes = NULL;
			study->cache_save = save;
			key = (struct strbuf)STRBUF_INIT;
			seen = (struct glob_observations)GLOB_OBSERVATIONS_INIT;
		}
	}
	glob_observations_release(&seen);
	strbuf_release(&key);
	if (opt->need_state) {
		/* A glob or graph error wins over the state's own; the state is closed either way. */
		struct cp_err state_err = CP_ERR_INIT;
		if (state_opening_finish(&opening, &study->state, &state_err) < 0 && built == 0) {
			err = state_err;
			built = -1;
		} else {
			cp_err_release(&state_err);
		}
		if (built == 0 && opt->stat_recorded)
			learn_globbed_stats(study->state, &study->globbed);
		cli_phase_done("state wait");
	}
	if (built < 0)
		goto fail;
	cli_print_glob_warnings("cpipe", &study->globbed);
	for (size_t i = 0; i < study->graph->warnings.count; i++)
		fprintf(stderr, "cpipe: warning: %s\n", study->graph->warnings.items[i]);
	for (size_t i = 0; i < study->graph->skipped.count; i++)
		fprintf(stderr, "cpipe: skipped: %s\n", study->graph->skipped.items[i]);
	return EXIT_OK;
fail:
	cli_report(&err);
	study_release(study);
	return EXIT_USAGE;
}

void study_job_resources(const struct recipe_resources *recipe, struct exec_resources *out)
{
	*out = (struct exec_resources){
		.minutes = recipe->minutes,
		.ram_gb = recipe->ram_gb,
		.threads = recipe->threads,
		.queue = recipe->queue,
		.coprocessor = recipe->coprocessor,
		.coprocessor_count = recipe->coprocessor_count,
		.pe = recipe->pe,
		.extra = (const char *const *)recipe->extra.items,
		.extra_count = recipe->extra.count,
	};
}

bool study_failed_run_logged(const struct graph_job *job, struct strbuf *detail, void *context)
{
	(void)context;
	struct strbuf log = STRBUF_INIT;
	job_log_path(job->id, &log);
	bool failed = exec_log_ending(log.buf) == EXEC_LOG_UNFINISHED;
	if (failed)
		strbuf_addf(detail, "%s shows a run that did not succeed", log.buf);
	strbuf_release(&log);
	return failed;
}

int study_decide(struct study *study, const struct plan_options *opt, struct plan_decision **out,
		 struct cp_err *err)
{
	*out = NULL;
	uint32_t *ids = NULL;
	int rc = plan_stat_files(study->graph, study->state, &ids, err);
	if (rc == 0) {
		cli_phase_done("stat");
		rc = plan_decide_all(study->graph, study->state, opt, ids, out, err);
	}
	free(ids);
	/* A graph to be saved keeps each job's definition hash: a later decide need not expand its command. */
	struct study_cache_save *save = study->cache_save;
	if (rc == 0 && save && !save->definition_hashes) {
		save->definition_hashes = xmalloc((study->graph->count + 1) * sizeof(*save->definition_hashes));
		for (size_t i = 0; i < study->graph->count; i++)
			save->definition_hashes[i] = (*out)[i].definition_hash;
	}
	return rc;
}

void study_release(struct study *study)
{
	strvec_release(&study->narrowed);
	free(study->filter_text);
	free(study->tree_path);
	free(study->data_path);
	state_close(study->state);
	if (study->cache_save)
		save_graph_cache(study);
	graph_free(study->graph);
	glob_result_release(&study->globbed);
	if (study->tree)
		tree_free(study->tree);
	recipe_set_free(study->recipes);
	memset(study, 0, sizeof(*study));
}

void study_options_release(struct study_options *opt)
{
	cli_placeholder_settings_release(&opt->settings);
	strvec_release(&opt->placeholder_flags);
	for (size_t i = 0; i < opt->flag_word_count; i++)
		strvec_release(&opt->flag_words[i].words);
	FREE_AND_NULL(opt->flag_words);
	opt->flag_word_count = opt->flag_word_cap = 0;
	strvec_release(&opt->link_specs);
	strvec_release(&opt->param_settings);
	strvec_release(&opt->targets);
}
