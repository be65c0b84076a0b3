/*
 * The kernel's floor for checking that a study's files exist: one fstatat per
 * file, no matching, no output but a count. bench/glob.sh times it beside
 * `cpipe glob` so a limit below this floor shows up as the machine's, not cpipe's.
 * Usage: stat_floor [--by-name] DIR N NAME...   (files DIR/sub-%06d/NAME for 1..N)
 * The files go subject by subject; --by-name takes each NAME across all
 * subjects in turn instead, the order in which a state stats its outputs when
 * records come step by step (bench/FINDINGS.md, "stat order").
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static long stat_one(int root, long subject, const char *name)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "sub-%06ld/%s", subject, name);
	return fstatat(root, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int main(int argc, char **argv)
{
	int by_name = argc > 1 && !strcmp(argv[1], "--by-name");
	argv += by_name;
	argc -= by_name;
	if (argc < 4)
		return 2;
	int root = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (root < 0)
		return 2;
	long count = strtol(argv[2], NULL, 10), found = 0;
	if (by_name) {
		for (int n = 3; n < argc; n++)
			for (long i = 1; i <= count; i++)
				found += stat_one(root, i, argv[n]);
	} else {
		for (long i = 1; i <= count; i++)
			for (int n = 3; n < argc; n++)
				found += stat_one(root, i, argv[n]);
	}
	printf("%ld\n", found);
	return 0;
}
