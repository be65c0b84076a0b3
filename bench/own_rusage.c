/*
 * Preloaded into one process (bench/submit.sh: cpipe), this writes that
 * process's own CPU time, user and system, without its children's, to the file
 * $OWN_RUSAGE_OUT when it exits: "USER_S SYS_S". The commands it runs (the
 * scheduler's) are not preloaded: the variable is removed before main runs.
 *
 *   cc -shared -fPIC -O2 -o own_rusage.so bench/own_rusage.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static char out_path[4096];

__attribute__((constructor)) static void own_rusage_start(void)
{
	const char *out = getenv("OWN_RUSAGE_OUT");
	if (out && strlen(out) < sizeof(out_path))
		strcpy(out_path, out);
	unsetenv("LD_PRELOAD");
	unsetenv("OWN_RUSAGE_OUT");
}

__attribute__((destructor)) static void own_rusage_report(void)
{
	struct rusage self;
	if (!out_path[0] || getrusage(RUSAGE_SELF, &self) != 0)
		return;
	FILE *f = fopen(out_path, "w");
	if (!f)
		return;
	fprintf(f, "%.3f %.3f\n", (double)self.ru_utime.tv_sec + (double)self.ru_utime.tv_usec / 1e6,
		(double)self.ru_stime.tv_sec + (double)self.ru_stime.tv_usec / 1e6);
	fclose(f);
}
