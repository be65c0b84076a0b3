/*
 * The shell context of each `{name}` in a recipe's run (recipe_shell.h): a
 * byte-at-a-time POSIX sh lexer that knows just enough to tell bare text from
 * quotes, comments and here-document bodies.
 */
#include "recipe_shell.h"

#include <string.h>

static void push(struct shell_scan *scan, enum shell_context context, char closer)
{
	ALLOC_GROW(scan->frames, scan->count + 1, scan->cap);
	scan->frames[scan->count++] = (struct shell_frame){context, closer, 0};
}

void shell_scan_init(struct shell_scan *scan)
{
	*scan = (struct shell_scan){.delimiter = STRBUF_INIT, .line = STRBUF_INIT};
	push(scan, SHELL_BARE, 0);
}

void shell_scan_release(struct shell_scan *scan)
{
	free(scan->frames);
	strbuf_release(&scan->delimiter);
	strbuf_release(&scan->line);
}

/* A # starts a comment only at the start of a word. */
static bool starts_word(char previous)
{
	return !previous || strchr(" \t\n;&|()", previous);
}

/* A body line ends the here-document when it is the delimiter (after leading tabs, for <<-). */
static void heredoc_line_end(struct shell_scan *scan)
{
	const char *line = scan->line.buf;
	if (scan->heredoc_strip_tabs)
		line += strspn(line, "\t");
	if (!strcmp(line, scan->delimiter.buf))
		scan->heredoc = HEREDOC_NONE;
	strbuf_reset(&scan->line);
}

/* The delimiter after <<: blanks before it are skipped, quotes are removed, a blank or an operator ends it. */
static bool heredoc_word_byte(struct shell_scan *scan, char c)
{
	if (!scan->delimiter.len && (c == ' ' || c == '\t'))
		return true;
	if (!scan->delimiter.len && c == '-' && !scan->heredoc_strip_tabs) {
		scan->heredoc_strip_tabs = true;
		return true;
	}
	if (scan->delimiter.len && strchr(" \t\n;&|<>()", c)) {
		scan->heredoc = HEREDOC_WAIT;
		return false;
	}
	if (!strchr("'\"\\", c))
		strbuf_addch(&scan->delimiter, c);
	return true;
}

static void bare_byte(struct shell_scan *scan, struct shell_frame *top, char c)
{
	switch (c) {
	case '\\': scan->escaped = true; break;
	case '\'': push(scan, SHELL_SINGLE, '\''); break;
	case '"': push(scan, SHELL_DOUBLE, '"'); break;
	case '`':
		if (top->closer == '`')
			scan->count--;
		else
			push(scan, SHELL_BARE, '`');
		break;
	case '(':
		if (scan->previous == '$')
			push(scan, SHELL_BARE, ')');
		else
			top->parens++;
		break;
	case ')':
		if (top->parens)
			top->parens--;
		else if (top->closer == ')')
			scan->count--;
		break;
	case '#':
		scan->comment = starts_word(scan->previous);
		break;
	case '<':
		if (scan->previous == '<') {
			scan->heredoc = HEREDOC_WORD;
			scan->heredoc_strip_tabs = false;
			strbuf_reset(&scan->delimiter);
			c = 0; /* so that a third < starts nothing */
		}
		break;
	default: break;
	}
	scan->previous = c;
}

static void scan_byte(struct shell_scan *scan, char c)
{
	if (scan->heredoc == HEREDOC_BODY) {
		if (c == '\n')
			heredoc_line_end(scan);
		else
			strbuf_addch(&scan->line, c);
		return;
	}
	if (scan->heredoc == HEREDOC_WORD && heredoc_word_byte(scan, c))
		return;
	if (scan->comment && c != '\n')
		return;
	scan->comment = false;
	struct shell_frame *top = &scan->frames[scan->count - 1];
	if (scan->escaped) {
		scan->escaped = false;
		scan->previous = 'x'; /* an escaped byte is an ordinary one */
		return;
	}
	if (c == '\n' && scan->heredoc == HEREDOC_WAIT && scan->count == 1) {
		scan->heredoc = HEREDOC_BODY;
		strbuf_reset(&scan->line);
	}
	switch (top->context) {
	case SHELL_SINGLE:
		if (c == '\'')
			scan->count--;
		break;
	case SHELL_DOUBLE:
		if (c == '\\')
			scan->escaped = true;
		else if (c == '"')
			scan->count--;
		else if (c == '`')
			push(scan, SHELL_BARE, '`');
		else if (c == '(' && scan->previous == '$')
			push(scan, SHELL_BARE, ')');
		break;
	default:
		bare_byte(scan, top, c);
		return;
	}
	scan->previous = c;
}

void shell_scan_text(struct shell_scan *scan, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		scan_byte(scan, text[i]);
}

enum shell_context shell_scan_context(const struct shell_scan *scan)
{
	if (scan->heredoc == HEREDOC_BODY || scan->heredoc == HEREDOC_WORD)
		return SHELL_HEREDOC;
	if (scan->comment)
		return SHELL_COMMENT;
	return scan->frames[scan->count - 1].context;
}
