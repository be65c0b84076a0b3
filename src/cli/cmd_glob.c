#include "cli.h"

#include "cpipe/glob.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char glob_usage[] =
	"usage: cpipe glob KEY [KEY ...] -t FILE [-C DATA_DIR] [--link A,B ...]\n"
	"                  [-p NAME=VALUE ...] [--all-parses] [--json]\n"
	"\n"
	"Find the existing files of each template KEY below DATA_DIR (default: the\n"
	"current directory), as file-tree's update_glob does, and print one line per\n"
	"file, sorted: KEY<TAB>PATH<TAB>NAME=VALUE<TAB>... (names sorted; a placeholder\n"
	"whose optional part is absent is left out; tab, newline and backslash in\n"
	"names are written \\t, \\n and \\\\).\n"
	"\n"
	"A file that optional parts let match in several ways is listed once, read\n"
	"with the most optional parts present (a warning names a key where two\n"
	"readings tie); --all-parses lists every reading, as file-tree 1.6 does.\n"
	"\n"
	"  -t, --tree FILE     the .tree file\n"
	"  -C, --data DIR      the directory the tree's top level stands for\n"
	"      --link A,B      link these placeholders: keep only combinations seen together\n"
	"  -p NAME=VALUE       pre-set a placeholder (a comma makes a list): a filter\n"
	"      --all-parses    list every way each file matches (file-tree's answer)\n"
	"      --json          print {\"files\": [...], \"values\": {...}} instead (see cpipe(1))\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 on success (also when nothing matched), 2 on a usage, tree or\n"
	"directory error.\n";

struct glob_options {
	const char *tree_file;
	const char *data_dir;
	bool json;
	bool all_parses;
	struct strvec link_specs;
	struct cli_placeholder_settings settings;
};

static void print_text(const struct glob_result *result)
{
	struct strbuf line = STRBUF_INIT;
	for (size_t i = 0; i < result->count; i++) {
		const struct glob_file *f = &result->files[i];
		strbuf_reset(&line);
		cli_add_escaped(&line, f->key);
		strbuf_addch(&line, '\t');
		cli_add_escaped(&line, f->path);
		for (size_t b = 0; b < f->binding_count; b++) {
			if (!f->bindings[b].value.text)
				continue;
			strbuf_addch(&line, '\t');
			cli_add_escaped(&line, f->bindings[b].name);
			strbuf_addch(&line, '=');
			cli_add_escaped(&line, f->bindings[b].value.text);
		}
		strbuf_addch(&line, '\n');
		fwrite(line.buf, 1, line.len, stdout);
	}
	strbuf_release(&line);
}

/* A JSON string for arbitrary bytes: file names need not be UTF-8, so invalid bytes become U+FFFD. */
static json_t *json_text(const char *text)
{
	json_t *value = json_string(text);
	if (value)
		return value;
	struct strbuf clean = STRBUF_INIT;
	for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
		if (*s < 0x80)
			strbuf_addch(&clean, (char)*s);
		else
			strbuf_adds(&clean, "\xEF\xBF\xBD");
	}
	value = json_string(clean.buf);
	strbuf_release(&clean);
	return value;
}

static json_t *json_value(const struct tree_value *v)
{
	if (!v->text)
		return json_null();
	if (v->type == TREE_VALUE_INT)
		return json_integer(v->integer);
	if (v->type == TREE_VALUE_FLOAT)
		return json_real(v->real);
	return json_text(v->text);
}

static bool name_was_set(const struct strvec *set_before, const char *name)
{
	return strvec_find(set_before, name) >= 0;
}

/* The --link group that names `name`, if any. */
static const struct strvec *link_order(const struct strvec *links, size_t link_count, const char *name)
{
	for (size_t i = 0; i < link_count; i++)
		if (strvec_find(&links[i], name) >= 0)
			return &links[i];
	return NULL;
}

static const struct tree_placeholder *const *sort_members;
static size_t sort_member_count;

static int compare_rows(const void *a, const void *b)
{
	size_t row_a = *(const size_t *)a, row_b = *(const size_t *)b;
	for (size_t m = 0; m < sort_member_count; m++) {
		int c = tree_value_compare(&sort_members[m]->values[row_a], &sort_members[m]->values[row_b]);
		if (c)
			return c;
	}
	return 0;
}

static void print_linked_group(const struct tree *tree, const size_t *members, size_t member_count, json_t *values)
{
	const struct tree_placeholder **placeholders = xcalloc(member_count + 1, sizeof(*placeholders));
	struct strbuf name = STRBUF_INIT;
	for (size_t m = 0; m < member_count; m++) {
		placeholders[m] = &tree->placeholders[members[m]];
		if (m)
			strbuf_addch(&name, '&');
		strbuf_adds(&name, placeholders[m]->name);
	}
	size_t rows = placeholders[0]->count;
	size_t *order = xcalloc(rows + 1, sizeof(*order));
	for (size_t r = 0; r < rows; r++)
		order[r] = r;
	sort_members = placeholders;
	sort_member_count = member_count;
	qsort(order, rows, sizeof(*order), compare_rows);
	json_t *list = json_array();
	for (size_t r = 0; r < rows; r++) {
		json_t *tuple = json_array();
		for (size_t m = 0; m < member_count; m++)
			json_array_append_new(tuple, json_value(&placeholders[m]->values[order[r]]));
		json_array_append_new(list, tuple);
	}
	json_object_set_new(values, name.buf, list);
	strbuf_release(&name);
	free(order);
	free(placeholders);
}

static int print_json(const struct tree *tree, const struct glob_result *result, const struct strvec *set_before,
		      const struct strvec *links, size_t link_count)
{
	json_t *root = json_object();
	json_t *files = json_array();
	for (size_t i = 0; i < result->count; i++) {
		const struct glob_file *f = &result->files[i];
		json_t *file = json_object();
		json_t *placeholders = json_object();
		json_object_set_new(file, "key", json_text(f->key));
		json_object_set_new(file, "path", json_text(f->path));
		for (size_t b = 0; b < f->binding_count; b++)
			json_object_set_new(placeholders, f->bindings[b].name, json_value(&f->bindings[b].value));
		json_object_set_new(file, "placeholders", placeholders);
		json_array_append_new(files, file);
	}
	json_object_set_new(root, "files", files);

	json_t *values = json_object();
	bool *done = xcalloc(tree->placeholder_count, sizeof(*done));
	for (size_t i = 0; i < tree->placeholder_count; i++) {
		const struct tree_placeholder *p = &tree->placeholders[i];
		if (done[i] || !p->count || (name_was_set(set_before, p->name) && p->link < 0))
			continue;
		if (p->link < 0) {
			json_t *list = json_array();
			for (size_t v = 0; v < p->count; v++)
				json_array_append_new(list, json_value(&p->values[v]));
			json_object_set_new(values, p->name, list);
			continue;
		}
		/* A linked group prints as "A&B": [[a1, b1], ...], members in --link order, rows sorted. */
		size_t members[64], member_count = 0;
		const struct strvec *order = link_order(links, link_count, p->name);
		for (size_t o = 0; order && o < order->count && member_count < 64; o++) {
			const struct tree_placeholder *m = tree_find_placeholder(tree, order->items[o]);
			if (m && m->link == p->link)
				members[member_count++] = (size_t)(m - tree->placeholders);
		}
		for (size_t j = i; j < tree->placeholder_count && member_count < 64; j++) {
			bool listed = false;
			for (size_t m = 0; m < member_count; m++)
				listed |= members[m] == j;
			if (tree->placeholders[j].link == p->link && !listed)
				members[member_count++] = j;
		}
		/* A group the tree linked with its values set before the glob is no glob result. */
		bool all_set_before = true;
		for (size_t m = 0; m < member_count; m++) {
			all_set_before &= name_was_set(set_before, tree->placeholders[members[m]].name);
			done[members[m]] = true;
		}
		if (!all_set_before)
			print_linked_group(tree, members, member_count, values);
	}
	free(done);
	json_object_set_new(root, "values", values);
	int rc = json_dumpf(root, stdout, JSON_COMPACT | JSON_ENSURE_ASCII) < 0 ? -1 : 0;
	fputc('\n', stdout);
	json_decref(root);
	return rc;
}

static int parse_glob_options(int argc, char **argv, struct glob_options *opt, int *rc)
{
	static const struct option options[] = {
		{"tree", required_argument, NULL, 't'},
		{"data", required_argument, NULL, 'C'},
		{"link", required_argument, NULL, 'l'},
		{"placeholder", required_argument, NULL, 'p'},
		{"json", no_argument, NULL, 'J'},
		{"all-parses", no_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cp_err err = CP_ERR_INIT;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:C:p:h", options, NULL)) != -1) {
		switch (c) {
		case 't': opt->tree_file = optarg; break;
		case 'C': opt->data_dir = optarg; break;
		case 'l': strvec_push(&opt->link_specs, optarg); break;
		case 'J': opt->json = true; break;
		case 'A': opt->all_parses = true; break;
		case 'p':
			if (cli_parse_placeholder(&opt->settings, optarg, &err) < 0) {
				cli_report(&err);
				*rc = EXIT_USAGE;
				return -1;
			}
			break;
		case 'h':
			fputs(glob_usage, stdout);
			*rc = EXIT_OK;
			return -1;
		default:
			*rc = cli_usage_error("glob", "unknown option");
			return -1;
		}
	}
	if (!opt->tree_file) {
		*rc = cli_usage_error("glob", "no tree file: give one with -t FILE");
		return -1;
	}
	if (optind >= argc) {
		*rc = cli_usage_error("glob", "no template KEY given");
		return -1;
	}
	return 0;
}

int cmd_glob(int argc, char **argv)
{
	struct glob_options opt = {NULL, NULL, false, false, STRVEC_INIT, {NULL, 0, 0}};
	struct cp_err err = CP_ERR_INIT;
	struct tree *tree = NULL;
	struct glob_result result = GLOB_RESULT_INIT;
	struct strvec set_before = STRVEC_INIT;
	struct strvec *link_names = NULL;
	int rc = EXIT_USAGE;
	if (parse_glob_options(argc, argv, &opt, &rc) < 0)
		goto out;
	if (cli_read_tree(opt.tree_file, opt.data_dir, &tree, &err) < 0) {
		cli_report(&err);
		goto out;
	}
	cli_apply_placeholders(tree, &opt.settings);
	for (size_t i = 0; i < tree->placeholder_count; i++)
		if (tree->placeholders[i].count)
			strvec_push(&set_before, tree->placeholders[i].name);

	size_t link_count = opt.link_specs.count;
	link_names = xcalloc(link_count, sizeof(*link_names));
	const char **link_arrays[64];
	size_t link_sizes[64];
	if (link_count > 64) {
		rc = cli_usage_error("glob", "at most 64 --link groups");
		goto out;
	}
	for (size_t i = 0; i < link_count; i++) {
		strvec_split(&link_names[i], opt.link_specs.items[i], ',', true);
		link_arrays[i] = (const char **)link_names[i].items;
		link_sizes[i] = link_names[i].count;
	}
	struct glob_request request = {
		(const char *const *)(argv + optind), (size_t)(argc - optind), opt.data_dir ? opt.data_dir : ".",
		(const char *const *const *)link_arrays, link_sizes, link_count, opt.all_parses, NULL,
	};
	if (glob_update(tree, &request, &result, &err) < 0) {
		cli_report(&err);
		goto out;
	}
	cli_print_glob_warnings("cpipe glob", &result);
	if (opt.json) {
		if (print_json(tree, &result, &set_before, link_names, link_count) < 0) {
			fprintf(stderr, "cpipe glob: could not write JSON\n");
			goto out;
		}
	} else {
		print_text(&result);
	}
	rc = fflush(stdout) ? EXIT_USAGE : EXIT_OK;
out:
	for (size_t i = 0; link_names && i < opt.link_specs.count; i++)
		strvec_release(&link_names[i]);
	free(link_names);
	strvec_release(&set_before);
	glob_result_release(&result);
	if (tree)
		tree_free(tree);
	strvec_release(&opt.link_specs);
	cli_placeholder_settings_release(&opt.settings);
	return rc;
}
