#include "cli.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The way out of a damaged state database (cpipe(1), FILES), said wherever damage is found. */
static const char state_damaged_way_out[] =
	"'cpipe state check' says more, and 'cpipe state repair' makes jobs with a damaged record run "
	"again. To start afresh, move .cpipe/state.db (and its -wal and -shm files) away: the next run "
	"adopts only outputs whose job logs show a successful run and runs the rest ('cpipe run "
	"--rebuild-unknown' runs every job whose outputs have no record)";

void cli_report(struct cp_err *err)
{
	char *text = cp_err_format(err);
	if (err->kind == CP_ERR_STATE_DAMAGED)
		fprintf(stderr, "cpipe: %s. %s\n", text, state_damaged_way_out);
	else
		fprintf(stderr, "cpipe: %s\n", text);
	free(text);
	cp_err_release(err);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cpipe %s: ", command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nsee 'cpipe %s --help'\n", command);
	return EXIT_USAGE;
}

int cli_parse_placeholder(struct cli_placeholder_settings *settings, const char *text, struct cp_err *err)
{
	const char *equals = strchr(text, '=');
	if (!equals || equals == text) {
		cp_err_set(err, NULL, 0, "placeholder setting '%s' is not NAME=VALUE", text);
		return -1;
	}
	ALLOC_GROW(settings->items, settings->count + 1, settings->cap);
	struct cli_placeholder_setting *s = &settings->items[settings->count++];
	s->name = xstrndup(text, (size_t)(equals - text));
	str_trim(s->name);
	struct strvec init = STRVEC_INIT;
	s->values = init;
	s->multiple = strchr(equals + 1, ',') != NULL;
	strvec_split(&s->values, equals + 1, ',', true);
	/* Values become parts of paths under the data root: none may lead out of it. */
	for (size_t i = 0; i < s->values.count; i++) {
		if (path_leaves_root(s->values.items[i])) {
			cp_err_set(err, NULL, 0, "value '%s' of %s would put paths outside the data root ('/' first or a '..' part)",
				   s->values.items[i], s->name);
			return -1;
		}
	}
	return 0;
}

void cli_apply_placeholders(struct tree *tree, const struct cli_placeholder_settings *settings)
{
	for (size_t i = 0; i < settings->count; i++) {
		const struct cli_placeholder_setting *s = &settings->items[i];
		struct tree_value *values = xcalloc(s->values.count, sizeof(*values));
		for (size_t v = 0; v < s->values.count; v++) {
			values[v].text = s->values.items[v];
			values[v].type = TREE_VALUE_STRING;
			values[v].literal = true; /* a value to match exactly, as a file name has it */
		}
		tree_set_placeholder(tree, s->name, values, s->values.count, s->multiple);
		free(values);
	}
}

void cli_placeholder_settings_release(struct cli_placeholder_settings *settings)
{
	for (size_t i = 0; i < settings->count; i++) {
		free(settings->items[i].name);
		strvec_release(&settings->items[i].values);
	}
	FREE_AND_NULL(settings->items);
	settings->count = 0;
	settings->cap = 0;
}

void cli_print_glob_warnings(const char *who, const struct glob_result *result)
{
	for (size_t i = 0; i < result->warnings.count; i++)
		fprintf(stderr, "%s: warning: %s (cpipe glob --all-parses lists every reading)\n", who,
			result->warnings.items[i]);
}

int cli_read_tree(const char *path, const char *data_dir, struct tree **out, struct cp_err *err)
{
	/* Sub-trees: beside the including file (the tree module's own rule), then the data directory's
	 * trees/, then the trees installed with cpipe. */
	struct strbuf local = STRBUF_INIT;
	path_join(data_dir ? data_dir : ".", "trees", &local);
	const char *dirs[] = {local.buf, CPIPE_TREE_DIR};
	struct tree_search search = {dirs, 2};
	int rc = tree_parse_file(path, &search, out, err);
	strbuf_release(&local);
	for (size_t i = 0; !rc && i < (*out)->warnings.count; i++)
		fprintf(stderr, "cpipe: warning: %s\n", (*out)->warnings.items[i]);
	return rc;
}

void cli_add_escaped(struct strbuf *out, const char *text)
{
	for (const char *s = text; *s;) {
		/* Runs of ordinary bytes go in at once: plans print tens of thousands of ids. */
		size_t run = strcspn(s, "\t\n\r\\");
		strbuf_add(out, s, run);
		s += run;
		switch (*s) {
		case '\t': strbuf_adds(out, "\\t"); break;
		case '\n': strbuf_adds(out, "\\n"); break;
		case '\r': strbuf_adds(out, "\\r"); break;
		case '\\': strbuf_adds(out, "\\\\"); break;
		default: continue; /* the end */
		}
		s++;
	}
}

void cli_phase_done(const char *phase)
{
	static int enabled = -1;
	static double last;
	if (enabled < 0) {
		const char *value = getenv("CPIPE_TIMINGS");
		enabled = value && *value && strcmp(value, "0");
		last = monotonic_seconds();
	}
	if (!enabled)
		return;
	double now = monotonic_seconds();
	if (!phase) {
		last = now;
		return;
	}
	double ms = (now - last) * 1e3;
	fprintf(stderr, "cpipe: timing: %-10s %9.1f ms\n", phase, ms);
	last = now;
}

int cli_silence_stderr(void)
{
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	int null = open("/dev/null", O_WRONLY);
	if (null >= 0) {
		dup2(null, STDERR_FILENO);
		close(null);
	}
	return saved;
}

void cli_restore_stderr(int saved)
{
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
}
