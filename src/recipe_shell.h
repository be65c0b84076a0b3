/*
 * Private to the recipe module: where a `{name}` of a recipe's `run` stands in
 * the shell code around it, so that its value can be written to stay one piece
 * of data there (man 5 cpipe-recipes, SUBSTITUTION). A small POSIX sh lexer
 * that follows quotes, command substitutions, comments and here-documents
 * through the text between substitutions; it does not parse the command.
 */
#ifndef CPIPE_RECIPE_SHELL_H
#define CPIPE_RECIPE_SHELL_H

#include <stdbool.h>
#include <stddef.h>

#include "cpipe/util.h"

enum shell_context {
	SHELL_BARE,    /* plain command text (also inside $(...) and `...`) */
	SHELL_DOUBLE,  /* inside "..." */
	SHELL_SINGLE,  /* inside '...' */
	SHELL_COMMENT, /* after a # that starts a word, up to the end of the line */
	SHELL_HEREDOC, /* in the body of a here-document (<<WORD), or in its WORD */
};

struct shell_frame {
	enum shell_context context; /* SHELL_BARE, SHELL_DOUBLE or SHELL_SINGLE; `...` counts as bare */
	char closer;                /* what ends it: ')' for $(...), '`', '"', '\'', 0 for the command */
	int parens;                 /* open ( inside a $(...) frame */
};

struct shell_scan {
	struct shell_frame *frames; /* innermost last; frames[0] is the command itself */
	size_t count, cap;
	char previous;          /* the byte before, for $( and << and a # that starts a word */
	bool escaped;           /* that byte was an unquoted backslash */
	bool comment;
	/* A here-document: its delimiter is read after <<, its body starts at the next newline and
	 * ends at a line equal to the delimiter. */
	enum { HEREDOC_NONE, HEREDOC_WORD, HEREDOC_WAIT, HEREDOC_BODY } heredoc;
	bool heredoc_strip_tabs; /* <<- */
	struct strbuf delimiter;
	struct strbuf line;      /* the body line so far */
};

void shell_scan_init(struct shell_scan *scan);
void shell_scan_release(struct shell_scan *scan);
/* Move past `len` bytes of shell code. */
void shell_scan_text(struct shell_scan *scan, const char *text, size_t len);
/* Where the next byte would stand. */
enum shell_context shell_scan_context(const struct shell_scan *scan);

#endif
