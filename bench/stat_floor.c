/*
 * The kernel's floor for checking that a study's files exist: one fstatat per
 * file, no matching, no output but a count. bench/glob.sh times it beside
 * `cpipe glob` so a limit below this floor shows up as the machine's, not cpipe's.
 * Usage: stat_floor DIR N NAME...   (files DIR/sub-%06d/NAME for 1..N)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	int root = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (root < 0)
		return 2;
	long count = strtol(argv[2], NULL, 10), found = 0;
	char path[256];
	struct stat st;
	for (long i = 1; i <= count; i++) {
		for (int n = 3; n < argc; n++) {
			snprintf(path, sizeof(path), "sub-%06ld/%s", i, argv[n]);
			found += fstatat(root, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
		}
	}
	printf("%ld\n", found);
	return 0;
}
