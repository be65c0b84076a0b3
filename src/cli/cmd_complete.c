/*
 * `cpipe __complete CWORD WORD...`: what the shell may complete the word at
 * index CWORD of the command line WORD... (bash's COMP_CWORD and COMP_WORDS;
 * WORD 0 is the program). Serves completions/cpipe.bash, so that the shell
 * function stays a few lines and every answer comes from cpipe itself:
 *   - command names at index 1;
 *   - a command's options, read from its own --help (so they cannot drift),
 *     plus --NAME for each placeholder of the study;
 *   - placeholder values after --NAME and -p NAME=, from globbing the study;
 *   - template keys where a command takes targets or keys, recipe names for
 *     `cpipe log` (a job name's unique prefix).
 * It prints one candidate per line, already filtered by the word's prefix, and
 * exits 0; it exits 3 when the shell should complete a file name and 4 for a
 * directory. Errors (no study here, a broken recipe file) give no candidates.
 */
#include "study.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { COMPLETE_FILES = 3, COMPLETE_DIRS = 4 };

struct completion {
	char **words;
	int count;
	int current;          /* index of the word being completed */
	const char *prefix;   /* what of it is typed */
	const char *command;  /* words[1], or NULL */
	struct strvec options;       /* the command's options, from its --help */
	struct strvec options_valued; /* those that take a value */
};

static void emit(const struct completion *c, const char *candidate)
{
	if (!strncmp(candidate, c->prefix, strlen(c->prefix)))
		puts(candidate);
}

/* An option's value in help text is written in capitals: FILE, DIR, N, NAME=V1,V2, ID,... */
static bool is_value_word(const char *word)
{
	if (!*word || !(*word >= 'A' && *word <= 'Z'))
		return false;
	return strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=,.[]") == strlen(word);
}

static void add_options(struct strvec *to, const struct strvec *group)
{
	for (size_t i = 0; i < group->count; i++)
		if (strvec_find(to, group->items[i]) < 0)
			strvec_push(to, group->items[i]);
}

/*
 * Options of one help line: "  -f, --file FILE   text" (aliases share the value) or
 * "  -f FILE, -C DIR, --data DIR: as for run". The line's text ends the options.
 */
static void read_help_line(struct completion *c, char *line)
{
	struct strvec group = STRVEC_INIT;
	char *save = NULL;
	for (char *word = strtok_r(line, " \t\n", &save); word; word = strtok_r(NULL, " \t\n", &save)) {
		size_t len = strlen(word);
		bool colon = len && word[len - 1] == ':';
		while (len && (word[len - 1] == ',' || word[len - 1] == ':'))
			word[--len] = '\0';
		bool value = is_value_word(word);
		if (word[0] == '-' && len > 1) {
			char *optional = strstr(word, "[=");
			if (optional)
				*optional = '\0';
			/* --NAME stands for the placeholders, listed from the study instead. */
			if (strncmp(word, "--", 2) || !is_value_word(word + 2))
				strvec_push(&group, word);
		} else if (value) {
			add_options(&c->options_valued, &group);
		} else {
			break;
		}
		if (value || colon) {
			add_options(&c->options, &group);
			strvec_release(&group);
		}
		if (colon)
			break;
	}
	add_options(&c->options, &group);
	strvec_release(&group);
}

/* Run the command's --help in a child and read its options from what it prints. */
static void read_command_options(struct completion *c, const struct cli_command *command)
{
	int fds[2];
	if (pipe(fds) < 0)
		return;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		char name[64], help[] = "--help";
		snprintf(name, sizeof(name), "%s", command->name);
		char *argv[] = {name, help, NULL};
		int rc = command->run(2, argv);
		fflush(stdout);
		_exit(rc);
	}
	close(fds[1]);
	FILE *in = pid > 0 ? fdopen(fds[0], "r") : NULL;
	char *line = NULL;
	size_t cap = 0;
	while (in && getline(&line, &cap, in) > 0) {
		const char *text = line + strspn(line, " \t");
		if (text != line && *text == '-')
			read_help_line(c, line);
	}
	free(line);
	if (in)
		fclose(in);
	else
		close(fds[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* Where the study is: -f/--file, -C/--directory and --data as the command line gives them. */
static void read_study_location(const struct completion *c, struct study_options *opt)
{
	for (int i = 2; i < c->count; i++) {
		const char *word = c->words[i];
		const char *next = i + 1 < c->count && i + 1 != c->current ? c->words[i + 1] : NULL;
		if ((!strcmp(word, "-f") || !strcmp(word, "--file")) && next)
			opt->recipe_file = next;
		else if ((!strcmp(word, "-C") || !strcmp(word, "--directory")) && next)
			opt->directory = next;
		else if (!strcmp(word, "--data") && next)
			opt->data_dir = next;
		else if (!strncmp(word, "--file=", 7))
			opt->recipe_file = word + 7;
		else if (!strncmp(word, "--data=", 7))
			opt->data_dir = word + 7;
	}
}

/* The study as far as globbing, quietly: completion must not print errors into the prompt. */
static bool load_study(const struct completion *c, struct study_options *opt, struct study *study)
{
	read_study_location(c, opt);
	opt->glob_only = true;
	int saved = cli_silence_stderr();
	bool loaded = study_load(opt, study) == EXIT_OK;
	cli_restore_stderr(saved);
	return loaded;
}

/*
 * The values of placeholder `name` for a word that may already hold "NAME=" or "--NAME=" (`start`
 * bytes) and a list: each candidate is the word up to its last comma, then a value.
 */
static void emit_values(const struct completion *c, const struct tree *tree, const char *name, size_t start)
{
	const struct tree_placeholder *p = tree_find_placeholder(tree, name);
	const char *comma = strrchr(c->prefix + start, ',');
	size_t head = comma ? (size_t)(comma - c->prefix) + 1 : start;
	struct strbuf candidate = STRBUF_INIT;
	for (size_t i = 0; p && i < p->count; i++) {
		if (!p->values[i].text)
			continue;
		strbuf_reset(&candidate);
		strbuf_add(&candidate, c->prefix, head);
		strbuf_adds(&candidate, p->values[i].text);
		emit(c, candidate.buf);
	}
	strbuf_release(&candidate);
}

static void emit_placeholder_flags(const struct completion *c, const struct tree *tree)
{
	struct strbuf flag = STRBUF_INIT;
	for (size_t i = 0; i < tree->placeholder_count; i++) {
		if (strchr(tree->placeholders[i].name, '/'))
			continue;
		strbuf_reset(&flag);
		strbuf_addf(&flag, "--%s", tree->placeholders[i].name);
		emit(c, flag.buf);
	}
	strbuf_release(&flag);
}

static bool takes_keys(const char *command)
{
	static const char *const commands[] = {"run", "plan", "status", "forget", "graph", "wait", "glob"};
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		if (!strcmp(command, commands[i]))
			return true;
	return false;
}

/* Targets: the keys recipes make (every template key for glob, which reads raw files too). */
static void emit_keys(const struct completion *c, const struct study *study)
{
	struct strvec keys = STRVEC_INIT;
	if (!strcmp(c->command, "glob")) {
		tree_template_keys(study->tree, &keys);
	} else {
		for (size_t r = 0; r < study->recipes->count; r++)
			for (size_t k = 0; k < study->recipes->recipes[r].out.count; k++)
				if (strvec_find(&keys, study->recipes->recipes[r].out.items[k]) < 0)
					strvec_push(&keys, study->recipes->recipes[r].out.items[k]);
	}
	strvec_sort(&keys);
	for (size_t i = 0; i < keys.count; i++)
		if (*keys.items[i])
			emit(c, keys.items[i]);
	strvec_release(&keys);
}

/* After -p: NAME= first, then NAME=VALUE. */
static void complete_setting(const struct completion *c, const struct tree *tree)
{
	const char *equals = strchr(c->prefix, '=');
	if (!equals) {
		struct strbuf candidate = STRBUF_INIT;
		for (size_t i = 0; i < tree->placeholder_count; i++) {
			strbuf_reset(&candidate);
			strbuf_addf(&candidate, "%s=", tree->placeholders[i].name);
			emit(c, candidate.buf);
		}
		strbuf_release(&candidate);
		return;
	}
	char *name = xstrndup(c->prefix, (size_t)(equals - c->prefix));
	emit_values(c, tree, name, (size_t)(equals - c->prefix) + 1);
	free(name);
}

/* --NAME=VALUE in one word. */
static bool complete_flag_value(const struct completion *c, const struct tree *tree)
{
	const char *equals = strchr(c->prefix, '=');
	if (strncmp(c->prefix, "--", 2) || !equals)
		return false;
	char *name = xstrndup(c->prefix + 2, (size_t)(equals - c->prefix) - 2);
	bool known = tree_find_placeholder(tree, name) != NULL;
	if (known)
		emit_values(c, tree, name, (size_t)(equals - c->prefix) + 1);
	free(name);
	return known;
}

/* --set's values: RECIPE.PARAM= for each recipe's parameter, and PARAM= once per name. */
static void emit_params(const struct completion *c, const struct recipe_set *set)
{
	struct strvec names = STRVEC_INIT;
	struct strbuf candidate = STRBUF_INIT;
	for (size_t r = 0; r < set->count; r++) {
		for (size_t p = 0; p < set->recipes[r].param_count; p++) {
			const char *name = set->recipes[r].params[p].name;
			strbuf_reset(&candidate);
			strbuf_addf(&candidate, "%s.%s=", set->recipes[r].name, name);
			emit(c, candidate.buf);
			if (strvec_find(&names, name) < 0)
				strvec_push(&names, name);
		}
	}
	for (size_t i = 0; i < names.count; i++) {
		strbuf_reset(&candidate);
		strbuf_addf(&candidate, "%s=", names.items[i]);
		emit(c, candidate.buf);
	}
	strbuf_release(&candidate);
	strvec_release(&names);
}

static int complete_in_study(struct completion *c, const char *previous)
{
	struct study_options opt;
	memset(&opt, 0, sizeof(opt));
	struct study study;
	if (!load_study(c, &opt, &study)) {
		study_options_release(&opt);
		return EXIT_OK;
	}
	if (previous && (!strcmp(previous, "-p") || !strcmp(previous, "--placeholder")))
		complete_setting(c, study.tree);
	else if (previous && !strncmp(previous, "--", 2) && tree_find_placeholder(study.tree, previous + 2))
		emit_values(c, study.tree, previous + 2, 0);
	else if (previous && !strcmp(previous, "--set"))
		emit_params(c, study.recipes);
	else if (complete_flag_value(c, study.tree))
		;
	else if (c->prefix[0] == '-')
		emit_placeholder_flags(c, study.tree);
	else if (previous && strvec_find(&c->options_valued, previous) >= 0)
		; /* a value cpipe cannot know (-j N, --link A,B) */
	else if (takes_keys(c->command))
		emit_keys(c, &study);
	else if (!strcmp(c->command, "log"))
		for (size_t r = 0; r < study.recipes->count; r++)
			emit(c, study.recipes->recipes[r].name);
	study_release(&study);
	study_options_release(&opt);
	return EXIT_OK;
}

int cli_complete(int argc, char **argv, const struct cli_command *commands, size_t command_count)
{
	/* argv: __complete CWORD WORD0 WORD1 ... */
	if (argc < 3)
		return EXIT_USAGE;
	struct completion c = {0};
	c.words = argv + 2;
	c.count = argc - 2;
	c.current = atoi(argv[1]);
	if (c.current < 1 || c.current > c.count)
		return EXIT_USAGE;
	c.prefix = c.current < c.count ? c.words[c.current] : "";
	if (c.current == 1) {
		for (size_t i = 0; i < command_count; i++)
			emit(&c, commands[i].name);
		emit(&c, "--help");
		emit(&c, "--version");
		return EXIT_OK;
	}
	c.command = c.words[1];
	const struct cli_command *command = NULL;
	for (size_t i = 0; i < command_count && !command; i++)
		if (!strcmp(commands[i].name, c.command))
			command = &commands[i];
	if (!command)
		return EXIT_OK;
	const char *previous = c.words[c.current - 1];
	if (!strcmp(previous, "-f") || !strcmp(previous, "--file") || !strcmp(previous, "-t") ||
	    !strcmp(previous, "--tree") || (!strcmp(c.command, "tree") && c.prefix[0] != '-'))
		return COMPLETE_FILES;
	if (!strcmp(previous, "-C") || !strcmp(previous, "--directory") || !strcmp(previous, "--data"))
		return COMPLETE_DIRS;
	read_command_options(&c, command);
	if (c.prefix[0] == '-')
		for (size_t i = 0; i < c.options.count; i++)
			emit(&c, c.options.items[i]);
	int rc = EXIT_OK;
	if (strcmp(c.command, "init"))
		rc = complete_in_study(&c, previous);
	else if (c.prefix[0] != '-')
		rc = COMPLETE_DIRS;
	strvec_release(&c.options);
	strvec_release(&c.options_valued);
	return rc;
}
