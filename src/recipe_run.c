/*
 * recipe_run.c: the `run` string of a recipe: its `{name}` tokens, their
 * syntax check (recipe_check_run_syntax, for recipe.c), the names it uses and
 * its expansion, each value quoted for where it stands in the shell code
 * (recipe_shell.c).
 */
#include "recipe_int.h"

#include "recipe_shell.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the run string ------------------------------------------------------- */

enum run_token_kind { RUN_TEXT, RUN_NAME, RUN_END, RUN_ERROR };

struct run_token {
	enum run_token_kind kind;
	const char *start; /* text to copy, or the name */
	size_t length;
	size_t offset;     /* of the token in the run string */
	char *problem;     /* RUN_ERROR: what is wrong (owned) */
};

static bool name_char(char c)
{
	/* '*', '?', '[', ']' and '!' for glob keys ({*_mask}) */
	return isalnum((unsigned char)c) || (c && strchr("_-./*?[]!", c));
}

/*
 * The next token of `run` from *pos: a stretch of plain text, a literal brace
 * (from "{{" or "}}"), a `{name}`, the end, or a syntax error.
 */
static void run_next(const char *run, size_t *pos, struct run_token *token)
{
	const char *s = run + *pos;
	token->offset = *pos;
	token->problem = NULL;
	if (!*s) {
		token->kind = RUN_END;
		return;
	}
	if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
		token->kind = RUN_TEXT;
		token->start = s;
		token->length = 1;
		*pos += 2;
		return;
	}
	if (s[0] == '}') {
		token->kind = RUN_ERROR;
		token->problem = xasprintf("a lone '}' at character %zu (write '}}' for a literal '}')", *pos + 1);
		return;
	}
	if (s[0] != '{') {
		size_t length = strcspn(s, "{}");
		token->kind = RUN_TEXT;
		token->start = s;
		token->length = length;
		*pos += length;
		return;
	}
	size_t length = 0;
	while (name_char(s[1 + length]))
		length++;
	if (s[1 + length] == '}' && length > 0) {
		token->kind = RUN_NAME;
		token->start = s + 1;
		token->length = length;
		*pos += length + 2;
		return;
	}
	token->kind = RUN_ERROR;
	const char *close = strchr(s + 1, '}');
	if (s[1] == '}') {
		token->problem = xasprintf("empty '{}' at character %zu (write '{{}}' for a literal '{}')", *pos + 1);
	} else if (!close) {
		token->problem = xasprintf("the '{' at character %zu is never closed (write '{{' for a literal '{')",
					   *pos + 1);
	} else {
		size_t shown = (size_t)(close - s) + 1;
		token->problem = xasprintf("'%.*s' at character %zu is not a substitution: a name holds only letters, "
					   "digits, '_', '-', '.' and '/' (write '{{' and '}}' for literal braces, "
					   "e.g. awk '{{print $1}}' or ${{HOME}})",
					   (int)(shown > 60 ? 60 : shown), s, *pos + 1);
	}
}

/* Line of character `offset` of the run string: exact for `|` blocks, else the field's line. */
static int run_line(const struct recipe *r, size_t offset, int *column)
{
	const struct node_line *node = recipe_lines_find(r->lines, "run");
	*column = 0;
	if (!node)
		return r->line;
	if (node->literal && r->run) {
		int line = node->value_line + 1;
		for (size_t i = 0; i < offset && r->run[i]; i++)
			if (r->run[i] == '\n')
				line++;
		return line;
	}
	/* A column only for the text as written (a mounted recipe's run has its names renamed). */
	if (node->plain && r->run && !strchr(r->run, '\n') && node->value_line == node->line && node->scalar &&
	    !strcmp(node->scalar, r->run))
		*column = node->value_column + (int)offset;
	return node->line;
}

int recipe_run_fail(const struct recipe *r, size_t offset, struct cp_err *err, const char *fmt, ...)
{
	struct strbuf message = STRBUF_INIT;
	va_list args;
	int column;
	int line = run_line(r, offset, &column);
	strbuf_addf(&message, "recipe '%s': run: ", r->name ? r->name : "?");
	va_start(args, fmt);
	strbuf_vaddf(&message, fmt, args);
	va_end(args);
	cp_err_set_at(err, r->file, line, column, "%s", message.buf);
	strbuf_release(&message);
	return -1;
}

int recipe_check_run_syntax(const struct recipe *r, struct cp_err *err)
{
	struct strvec names = STRVEC_INIT;
	int rc = recipe_run_names(r, &names, err);
	strvec_release(&names);
	return rc;
}

/*
 * One pass over the run string: each stretch of text and each {name} (with the shell context the
 * lexer finds it in; SHELL_BARE throughout when `lex` is false) goes to `visit`. A syntax error,
 * a {name} inside a here-document, or a non-zero `visit` stops the walk; returns 0 or -1.
 */
typedef int (*run_visit_fn)(void *ctx, const struct run_token *token, enum shell_context context);

static int run_walk(const struct recipe *r, bool lex, run_visit_fn visit, void *ctx, struct cp_err *err)
{
	struct run_token token;
	struct shell_scan scan;
	size_t pos = 0;
	int rc = 0;
	shell_scan_init(&scan);
	for (;;) {
		run_next(r->run, &pos, &token);
		if (token.kind == RUN_END)
			break;
		if (token.kind == RUN_ERROR) {
			rc = recipe_run_fail(r, token.offset, err, "%s", token.problem);
			free(token.problem);
			break;
		}
		enum shell_context context = lex ? shell_scan_context(&scan) : SHELL_BARE;
		if (token.kind == RUN_TEXT && lex)
			shell_scan_text(&scan, token.start, token.length);
		if (token.kind == RUN_NAME && context == SHELL_HEREDOC) {
			rc = recipe_run_fail(r, token.offset, err,
					     "{%.*s} is inside a here-document, where no quoting keeps a value from being "
					     "read as shell code; set a variable before it and use that inside (x={%.*s}, "
					     "then $x)",
					     (int)token.length, token.start, (int)token.length, token.start);
			break;
		}
		if (visit(ctx, &token, context) != 0) {
			rc = -1;
			break;
		}
	}
	shell_scan_release(&scan);
	return rc;
}

static int collect_name(void *ctx, const struct run_token *token, enum shell_context context)
{
	struct strvec *out = ctx;
	(void)context;
	if (token->kind != RUN_NAME)
		return 0;
	char *name = xstrndup(token->start, token->length);
	if (strvec_find(out, name) < 0)
		strvec_push_owned(out, name);
	else
		free(name);
	return 0;
}

int recipe_run_names(const struct recipe *r, struct strvec *out, struct cp_err *err)
{
	return r->run ? run_walk(r, true, collect_name, out, err) : 0;
}

/* Write `count` NUL-separated values where the shell code put them (see recipe_expand_run). */
static void write_values(struct strbuf *out, enum shell_context context, const char *values, size_t count,
			 struct strbuf *joined)
{
	if (context == SHELL_BARE) {
		for (size_t i = 0; i < count; i++, values += strlen(values) + 1) {
			if (i)
				strbuf_addch(out, ' ');
			strbuf_add_shell_quoted(out, values);
		}
		return;
	}
	strbuf_reset(joined);
	for (size_t i = 0; i < count; i++, values += strlen(values) + 1) {
		if (i)
			strbuf_addch(joined, ' ');
		strbuf_adds(joined, values);
	}
	if (!count)
		return;
	if (context == SHELL_COMMENT) {
		/* A line break in a value would end the comment and start a command. */
		for (size_t i = 0; i < joined->len; i++)
			if (joined->buf[i] == '\n' || joined->buf[i] == '\r')
				joined->buf[i] = '?';
		strbuf_add(out, joined->buf, joined->len);
		return;
	}
	char quote = context == SHELL_DOUBLE ? '"' : '\'';
	strbuf_addch(out, quote);
	strbuf_add_shell_quoted(out, joined->buf);
	strbuf_addch(out, quote);
}

struct expansion {
	const struct recipe *recipe;
	recipe_resolve_fn resolve;
	void *ctx;
	struct strbuf *out;
	struct strbuf values, joined; /* scratch, reused for every {name} */
	struct cp_err *err;
};

/* A parameter's value, a glob key's paths (its keys' in turn), else what the caller's resolver says. */
static int resolve_name(struct expansion *x, const char *name, size_t *count)
{
	const struct recipe_param *param = recipe_find_param(x->recipe, name);
	if (param) {
		strbuf_add(&x->values, param->value, strlen(param->value) + 1);
		(*count)++;
		return 0;
	}
	const struct recipe_key_pattern *pattern = recipe_find_pattern(x->recipe, name);
	for (size_t i = 0; pattern && i < pattern->keys.count; i++) {
		int rc = x->resolve(x->ctx, pattern->keys.items[i], &x->values, count, x->err);
		if (rc)
			return rc;
	}
	if (pattern)
		return 0;
	return x->resolve(x->ctx, name, &x->values, count, x->err);
}

static int expand_token(void *data, const struct run_token *token, enum shell_context context)
{
	struct expansion *x = data;
	const struct recipe *r = x->recipe;
	if (token->kind == RUN_TEXT) {
		strbuf_add(x->out, token->start, token->length);
		return 0;
	}
	char *name = xstrndup(token->start, token->length);
	size_t count = 0;
	strbuf_reset(&x->values);
	int rc = resolve_name(x, name, &count);
	if (rc == RECIPE_UNKNOWN_NAME) {
		recipe_run_fail(r, token->offset, x->err,
				"unknown name '{%s}': not a key of this recipe nor a placeholder "
				"(write '{{' and '}}' for literal braces, e.g. ${{%s}})",
				name, name);
	} else if (rc < 0) {
		int column;
		int line = run_line(r, token->offset, &column);
		cp_err_prefix(x->err, "recipe '%s': run: {%s}: ", r->name ? r->name : "?", name);
		if (!x->err->file) {
			x->err->file = xstrdup(r->file ? r->file : "");
			x->err->line = line;
			x->err->column = column;
		}
	} else {
		write_values(x->out, context, x->values.buf, count, &x->joined);
	}
	free(name);
	return rc;
}

int recipe_expand_run(const struct recipe *r, recipe_resolve_fn resolve, void *ctx, struct strbuf *out,
		      struct cp_err *err)
{
	if (!r->run)
		return recipe_run_fail(r, 0, err, "no command");
	struct expansion x = {r, resolve, ctx, out, STRBUF_INIT, STRBUF_INIT, err};
	/* Most commands have no quotes, comments or here-documents: every {name} stands bare, and the
	 * lexer (run once per job) is skipped. */
	bool lex = strpbrk(r->run, "'\"\\`#<") != NULL;
	int rc = run_walk(r, lex, expand_token, &x, err);
	strbuf_release(&x.values);
	strbuf_release(&x.joined);
	return rc;
}

struct renaming {
	recipe_rename_fn rename;
	void *ctx;
	struct strbuf *out;
};

static int rename_token(void *data, const struct run_token *token, enum shell_context context)
{
	struct renaming *x = data;
	(void)context;
	if (token->kind == RUN_TEXT) {
		/* Plain text never holds a brace: a lone one is a literal, written doubled. */
		bool literal = token->length == 1 && (*token->start == '{' || *token->start == '}');
		strbuf_add(x->out, token->start, token->length);
		if (literal)
			strbuf_add(x->out, token->start, 1);
		return 0;
	}
	char *name = xstrndup(token->start, token->length);
	const char *renamed = x->rename(x->ctx, name);
	strbuf_addf(x->out, "{%s}", renamed ? renamed : name);
	free(name);
	return 0;
}

void recipe_rename_run(const struct recipe *r, recipe_rename_fn rename, void *ctx, struct strbuf *out)
{
	struct renaming x = {rename, ctx, out};
	struct cp_err ignored = CP_ERR_INIT;
	if (r->run)
		run_walk(r, false, rename_token, &x, &ignored);
	cp_err_release(&ignored);
}

void recipe_var_names(const struct recipe *r, struct strvec *out)
{
	struct strvec names = STRVEC_INIT;
	struct cp_err ignored = CP_ERR_INIT;
	for (size_t i = 0; i < r->vars.count; i++)
		if (strvec_find(out, r->vars.items[i]) < 0)
			strvec_push(out, r->vars.items[i]);
	recipe_run_names(r, &names, &ignored);
	cp_err_release(&ignored);
	for (size_t i = 0; i < names.count; i++) {
		const char *name = names.items[i];
		if (strvec_find(&r->in, name) >= 0 || strvec_find(&r->out, name) >= 0 ||
		    strvec_find(&r->ref, name) >= 0 || strvec_find(&r->batch, name) >= 0 || strvec_find(out, name) >= 0 ||
		    recipe_find_param(r, name) || recipe_is_key_pattern(name))
			continue;
		strvec_push(out, name);
	}
	strvec_release(&names);
}
