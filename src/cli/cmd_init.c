#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char cli_bids_tree[]; /* trees/bids.tree, built into the binary (CMakeLists.txt) */

static const char init_usage[] =
	"usage: cpipe init [DIR] [--bids | --no-bids]\n"
	"\n"
	"Start a study in DIR (default: the current directory): write a commented recipe\n"
	"file, cpipe.yaml, and the tree it names, study.tree, ready for `cpipe plan`.\n"
	"A directory that looks like a BIDS dataset (a dataset_description.json, or\n"
	"sub-* directories with ses-* or anat, func, dwi... inside) gets cpipe's BIDS\n"
	"tree, with one example step per T1w image, one per BOLD run and one group\n"
	"step; any other directory gets a small per-subject example.\n"
	"Existing files are never overwritten.\n"
	"\n"
	"      --bids          write the BIDS study whatever DIR holds\n"
	"      --no-bids       write the plain example whatever DIR holds\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 when both files were written, 2 when DIR is not a directory or\n"
	"already has cpipe.yaml or study.tree (nothing is written then).\n";

/* The derivatives these recipes make are in the BIDS tree already (derivatives/cpipe/...). */
static const char bids_recipes[] =
	"# The recipes of this study: how each file of study.tree that is not raw data is\n"
	"# made (study.tree is cpipe's BIDS tree; its derivatives/cpipe part lists what\n"
	"# these recipes make). `cpipe plan` shows what `cpipe run` would do; man 5\n"
	"# cpipe-recipes has the format, man 5 cpipe-tree the tree's.\n"
	"tree: study.tree\n"
	"default: [T1w_stats, bold_group]\n"
	"\n"
	"recipes:\n"
	"  # One job per T1w image that exists. {T1w} and {T1w_stats} become that job's\n"
	"  # paths, quoted for the shell. Replace wc with your tool, e.g.\n"
	"  # fslstats {T1w} -M > {T1w_stats}.\n"
	"  - name: T1w_step\n"
	"    in: [T1w]\n"
	"    out: [T1w_stats]\n"
	"    run: wc -c < {T1w} > {T1w_stats}\n"
	"    resources: {minutes: 30, ram_gb: 4, threads: 1}\n"
	"\n"
	"  # One job per BOLD run that exists.\n"
	"  - name: bold_step\n"
	"    in: [bold]\n"
	"    out: [bold_stats]\n"
	"    run: wc -c < {bold} > {bold_stats}\n"
	"\n"
	"  # One job over all of them (batch): {bold_stats} stands for every file. A\n"
	"  # group analysis goes here; this one lists what it was given.\n"
	"  - name: bold_group\n"
	"    in: [bold_stats]\n"
	"    out: [bold_group]\n"
	"    batch: [subject, session, task, acq, run, echo]\n"
	"    run: printf '%s\\n' {bold_stats} > {bold_group}\n";

static const char plain_tree[] =
	"# Where the study's files live: one line per directory or file, indented below\n"
	"# its parent. {subject} is a placeholder, found by globbing the files that\n"
	"# exist; (t1) is the key recipes use for the file. man 5 cpipe-tree.\n"
	"sub-{subject}\n"
	"    T1w.nii.gz (t1)\n"
	"    T1w_brain.nii.gz (t1_brain)\n"
	"group\n"
	"    T1w_brains.txt (group_t1_brains)\n";

static const char plain_recipes[] =
	"# The recipes of this study: how each file of study.tree that is not raw data is\n"
	"# made. Put each subject's T1w.nii.gz in sub-ID/, then `cpipe plan` shows what\n"
	"# `cpipe run` would do. man 5 cpipe-recipes has the format.\n"
	"tree: study.tree\n"
	"default: [group_t1_brains]\n"
	"\n"
	"recipes:\n"
	"  # One job per subject. Replace cp with your tool, e.g. bet {t1} {t1_brain}.\n"
	"  - name: brain\n"
	"    in: [t1]\n"
	"    out: [t1_brain]\n"
	"    run: cp {t1} {t1_brain}\n"
	"    resources: {minutes: 30, ram_gb: 4, threads: 1}\n"
	"\n"
	"  # One job over every subject (batch): {t1_brain} stands for all their files.\n"
	"  - name: group\n"
	"    in: [t1_brain]\n"
	"    out: [group_t1_brains]\n"
	"    batch: [subject]\n"
	"    run: printf '%s\\n' {t1_brain} > {group_t1_brains}\n";

/* A sub-* directory is a BIDS subject when it holds a session or a modality directory. */
static bool is_bids_subject(const char *dir, const char *name)
{
	static const char *const kinds[] = {"anat", "func", "dwi", "fmap", "perf", "meg", "eeg", "pet"};
	struct strbuf path = STRBUF_INIT;
	path_join(dir, name, &path);
	DIR *listing = opendir(path.buf);
	bool found = false;
	for (struct dirent *entry; listing && !found && (entry = readdir(listing));) {
		found = !strncmp(entry->d_name, "ses-", 4);
		for (size_t i = 0; !found && i < sizeof(kinds) / sizeof(*kinds); i++)
			found = !strcmp(entry->d_name, kinds[i]);
	}
	if (listing)
		closedir(listing);
	strbuf_release(&path);
	return found;
}

/* BIDS marks a dataset with dataset_description.json; a copied subset may only have its subjects. */
static bool looks_like_bids(const char *dir)
{
	struct strbuf path = STRBUF_INIT;
	path_join(dir, "dataset_description.json", &path);
	bool bids = !access(path.buf, F_OK);
	strbuf_release(&path);
	DIR *listing = bids ? NULL : opendir(dir);
	for (struct dirent *entry; listing && !bids && (entry = readdir(listing));)
		bids = !strncmp(entry->d_name, "sub-", 4) && is_bids_subject(dir, entry->d_name);
	if (listing)
		closedir(listing);
	return bids;
}

/* Create `name` in `dir` with `text`; never replaces a file (O_EXCL). */
static int write_new_file(const char *dir, const char *name, const char *text)
{
	struct strbuf path = STRBUF_INIT;
	path_join(dir, name, &path);
	int fd = open(path.buf, O_WRONLY | O_CREAT | O_EXCL, 0644);
	int rc = 0;
	if (fd < 0) {
		fprintf(stderr, "cpipe: cannot create %s: %s\n", path.buf, strerror(errno));
		rc = -1;
	} else {
		FILE *out = fdopen(fd, "w");
		fputs(text, out);
		if (fclose(out) != 0) {
			fprintf(stderr, "cpipe: cannot write %s: %s\n", path.buf, strerror(errno));
			rc = -1;
		}
	}
	strbuf_release(&path);
	return rc;
}

int cmd_init(int argc, char **argv)
{
	static const struct option options[] = {
		{"bids", no_argument, NULL, 'B'},
		{"no-bids", no_argument, NULL, 'N'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int bids = -1; /* -1: decide from what the directory holds */
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'B': bids = 1; break;
		case 'N': bids = 0; break;
		case 'h': fputs(init_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("init", "unknown option");
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("init", "expected at most one DIR");
	const char *dir = optind < argc ? argv[optind] : ".";
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cpipe: %s is not a directory\n", dir);
		return EXIT_USAGE;
	}
	static const char *const names[] = {"cpipe.yaml", "study.tree"};
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		struct strbuf path = STRBUF_INIT;
		path_join(dir, names[i], &path);
		bool exists = !access(path.buf, F_OK);
		if (exists)
			fprintf(stderr, "cpipe: %s already exists; cpipe init writes nothing over it\n", path.buf);
		strbuf_release(&path);
		if (exists)
			return EXIT_USAGE;
	}
	if (bids < 0)
		bids = looks_like_bids(dir);
	if (write_new_file(dir, "study.tree", bids ? cli_bids_tree : plain_tree) < 0)
		return EXIT_USAGE;
	if (write_new_file(dir, "cpipe.yaml", bids ? bids_recipes : plain_recipes) < 0)
		return EXIT_USAGE;
	printf("wrote %s/cpipe.yaml and %s/study.tree (%s); next: cpipe plan%s%s\n", dir, dir,
	       bids ? "a BIDS study" : "a per-subject example", strcmp(dir, ".") ? " -C " : "",
	       strcmp(dir, ".") ? dir : "");
	return EXIT_OK;
}
