#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char tree_usage[] =
	"usage: cpipe tree FILE [-C DATA_DIR] [-p NAME=VALUE[,VALUE...] ...]\n"
	"\n"
	"Parse a file-tree .tree file and print it as file-tree's to_string() does,\n"
	"then a blank line and one line per template key: KEY<TAB>TEMPLATE, the\n"
	"template's full path (below DATA_DIR when -C is given).\n"
	"\n"
	"  -C, --data DIR      the directory the tree's top level stands for\n"
	"  -p NAME=VALUE       set a placeholder (a comma makes a list), overriding the file\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 on success, 2 when the tree cannot be read (the message names\n"
	"the tree file and line).\n";

int cmd_tree(int argc, char **argv)
{
	static const struct option options[] = {
		{"data", required_argument, NULL, 'C'},
		{"placeholder", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cli_placeholder_settings settings = {NULL, 0, 0};
	struct cp_err err = CP_ERR_INIT;
	const char *data_dir = NULL;
	int rc = EXIT_USAGE;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "C:p:h", options, NULL)) != -1) {
		switch (c) {
		case 'C':
			data_dir = optarg;
			break;
		case 'p':
			if (cli_parse_placeholder(&settings, optarg, &err) < 0) {
				cli_report(&err);
				goto out;
			}
			break;
		case 'h':
			fputs(tree_usage, stdout);
			rc = EXIT_OK;
			goto out;
		default:
			rc = cli_usage_error("tree", "unknown option");
			goto out;
		}
	}
	if (optind != argc - 1) {
		rc = cli_usage_error("tree", "expected exactly one tree FILE");
		goto out;
	}
	struct tree *tree = NULL;
	if (cli_read_tree(argv[optind], data_dir, &tree, &err) < 0) {
		cli_report(&err);
		goto out;
	}
	cli_apply_placeholders(tree, &settings);

	struct strbuf text = STRBUF_INIT, full = STRBUF_INIT, normal = STRBUF_INIT;
	tree_to_string(tree, &text);
	strbuf_addch(&text, '\n');
	struct strvec keys = STRVEC_INIT;
	tree_template_keys(tree, &keys);
	for (size_t i = 0; i < keys.count; i++) {
		long index = tree_find_template(tree, keys.items[i], &err);
		if (index < 0 || !keys.items[i][0]) {
			cp_err_release(&err);
			continue;
		}
		const struct tree_template *t = &tree->templates[index];
		path_join(data_dir && !t->external ? data_dir : "", t->path, &full);
		path_normalize(full.buf, &normal);
		cli_add_escaped(&text, keys.items[i]);
		strbuf_addch(&text, '\t');
		cli_add_escaped(&text, normal.buf);
		strbuf_addch(&text, '\n');
	}
	fputs(text.buf, stdout);
	strvec_release(&keys);
	strbuf_release(&text);
	strbuf_release(&full);
	strbuf_release(&normal);
	tree_free(tree);
	rc = EXIT_OK;
out:
	cli_placeholder_settings_release(&settings);
	return rc;
}
