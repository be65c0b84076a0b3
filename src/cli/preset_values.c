/*
 * Placeholder values given before the glob (on the command line, or listed in
 * the tree) that no file has. Jobs come from the files that exist, so such a
 * value would silently make nothing: it is an error that lists the values the
 * data do have and suggests the close one ("sub-01" -> "01").
 */
#include "study.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Past this many known values the message shows the first and last few. */
#define KNOWN_SHOWN_MAX 12

/* The texts of `name`'s values in the globbed files (a typed field's 1 as "1"). */
static void found_values(const struct glob_result *globbed, const char *name, struct strmap *out)
{
	for (size_t i = 0; i < globbed->count; i++) {
		const struct glob_file *file = &globbed->files[i];
		for (size_t b = 0; b < file->binding_count; b++)
			if (file->bindings[b].value.text && !strcmp(file->bindings[b].name, name))
				strmap_put(out, file->bindings[b].value.text, 0);
	}
}

/* Whether a pre-set text is among the found ones, read as a number too ("01" is the 1 of {run:d}). */
static bool value_found(const struct strmap *found, const char *value)
{
	if (strmap_get(found, value, NULL))
		return true;
	char *end;
	long long number = strtoll(value, &end, 10);
	if (end == value || *end)
		return false;
	char decimal[32];
	snprintf(decimal, sizeof(decimal), "%lld", number);
	return strmap_get(found, decimal, NULL);
}

/* The values of `name` on disk: glob the raw keys again with the tree's own values, `name` left open. */
static int known_values(const struct study *study, const struct strvec *keys, const char *name, struct strvec *out,
			struct glob_observations *observed, struct cp_err *err)
{
	struct tree *fresh = NULL;
	if (!study->tree_path || !study->data_path)
		return 0;
	if (cli_read_tree(study->tree_path, study->data_path, &fresh, err) < 0)
		return -1;
	tree_set_placeholder(fresh, name, NULL, 0, false);
	struct glob_request request = {(const char *const *)keys->items, keys->count, ".", NULL, NULL, 0, false,
				       observed};
	int rc = glob_update(fresh, &request, NULL, err);
	const struct tree_placeholder *p = rc == 0 ? tree_find_placeholder(fresh, name) : NULL;
	for (size_t v = 0; p && v < p->count; v++)
		if (p->values[v].text)
			strvec_push(out, p->values[v].text);
	tree_free(fresh);
	return rc;
}

static bool is_number(const char *text)
{
	return *text && strspn(text, "0123456789") == strlen(text);
}

/* Whether `prefix` (`length` bytes) reads as file-name text ("sub-", "subject"), not as digits of a value. */
static bool name_like(const char *prefix, size_t length)
{
	for (size_t i = 0; i < length; i++)
		if ((prefix[i] >= 'a' && prefix[i] <= 'z') || (prefix[i] >= 'A' && prefix[i] <= 'Z'))
			return true;
	return false;
}

/*
 * "did you mean": the longest known value that `wrong` ends with after text from the file name
 * ("sub-01" or "subjectB"), else the nearest by edit distance.
 */
static void suggest_value(const char *wrong, const struct strvec *known, struct strbuf *out)
{
	size_t length = strlen(wrong);
	const char *suffix = NULL;
	for (size_t i = 0; i < known->count; i++) {
		size_t k = strlen(known->items[i]);
		if (length > k && !strcmp(wrong + length - k, known->items[i]) && name_like(wrong, length - k) &&
		    (!suffix || k > strlen(suffix)))
			suffix = known->items[i];
	}
	if (suffix) {
		strbuf_addf(out, "; did you mean '%s'? (the '%.*s' is part of the file name, not of the value)", suffix,
			    (int)(length - strlen(suffix)), wrong);
		return;
	}
	const char *best = NULL;
	size_t best_distance = (strlen(wrong) + 2) / 3;
	for (size_t i = 0; i < known->count; i++) {
		/* Numbers are close only when equal ("1" and "01"): 02 is no typo of 01. */
		if (is_number(wrong) && is_number(known->items[i])) {
			if (strtoll(wrong, NULL, 10) == strtoll(known->items[i], NULL, 10))
				best = known->items[i];
			continue;
		}
		size_t distance = str_distance(wrong, known->items[i]);
		if (distance <= best_distance && (!best || distance < str_distance(wrong, best)))
			best = known->items[i];
	}
	if (best)
		strbuf_addf(out, "; did you mean '%s'?", best);
}

/* "; known: a, b, c", a long list shortened to its first and last values. */
static void add_known(const struct strvec *known, struct strbuf *out)
{
	bool shorten = known->count > KNOWN_SHOWN_MAX;
	strbuf_adds(out, "; known: ");
	for (size_t i = 0; i < known->count; i++) {
		if (shorten && i == KNOWN_SHOWN_MAX - 3) {
			strbuf_adds(out, ", …");
			i = known->count - 3;
		}
		strbuf_addf(out, "%s%s", i ? ", " : "", known->items[i]);
	}
	if (shorten)
		strbuf_addf(out, " (%zu values)", known->count);
}

/* The placeholders the raw keys' templates use: only their values can be looked for on disk. */
static void globbed_names(const struct tree *tree, const struct strvec *keys, struct strvec *out)
{
	for (size_t k = 0; k < keys->count; k++) {
		struct cp_err ignored = CP_ERR_INIT;
		long index = tree_find_template(tree, keys->items[k], &ignored);
		struct template parsed = TEMPLATE_INIT;
		if (index >= 0 && template_parse(tree->templates[index].path, &parsed, &ignored) == 0)
			template_placeholders(&parsed, out, out);
		template_release(&parsed);
		cp_err_release(&ignored);
	}
}

int study_check_preset_values(const struct study_options *opt, const struct study *study,
			      const struct strvec *preset, const struct strvec *keys, struct strvec *skipped,
			      struct glob_observations *observed, struct cp_err *err)
{
	const struct tree *tree = study->tree;
	struct strvec names = STRVEC_INIT;
	globbed_names(tree, keys, &names);
	int rc = 0;
	for (size_t i = 0; i < tree->placeholder_count && !rc; i++) {
		const struct tree_placeholder *p = &tree->placeholders[i];
		if (strvec_find(&names, p->name) < 0 || strvec_find(preset, p->name) < 0)
			continue;
		bool from_command_line = false;
		for (size_t s = 0; s < opt->settings.count && !from_command_line; s++)
			from_command_line = !strcmp(opt->settings.items[s].name, p->name);
		/* The tree's own lists are checked unless a product recipe file wants its missing files as errors. */
		if (!from_command_line && study->recipes->product)
			continue;
		bool skip = !from_command_line && opt->skip_missing;
		struct strmap found = STRMAP_INIT;
		found_values(&study->globbed, p->name, &found);
		for (size_t v = 0; v < p->count && !rc; v++) {
			const char *value = p->values[v].text;
			if (!value || value_found(&found, value))
				continue;
			struct strvec known = STRVEC_INIT;
			if (known_values(study, keys, p->name, &known, observed, err) < 0) {
				strvec_release(&known);
				rc = -1;
				continue;
			}
			/* No file at all, or a value that exists but not with the other filters: the graph says so. */
			bool exists = !known.count;
			for (size_t k = 0; k < known.count && !exists; k++)
				exists = !strcmp(known.items[k], value);
			if (exists) {
				strvec_release(&known);
				continue;
			}
			struct strbuf message = STRBUF_INIT;
			if (from_command_line)
				strbuf_addf(&message, "--%s %s: no such %s", p->name, value, p->name);
			else
				strbuf_addf(&message, "%s sets %s to %s, which no file has", tree->file, p->name, value);
			add_known(&known, &message);
			suggest_value(value, &known, &message);
			strvec_release(&known);
			/* With --skip-missing, a listed value without files is one more thing not made, and said so. */
			if (skip) {
				strbuf_addf(&message, "; nothing is made for %s %s", p->name, value);
				strvec_push_owned(skipped, strbuf_detach(&message));
				continue;
			}
			if (!from_command_line)
				strbuf_adds(&message, " (remove it from the tree, give --skip-missing to leave it out, or "
						      "product: true to have its missing files listed)");
			cp_err_set(err, NULL, 0, "%s", message.buf);
			strbuf_release(&message);
			rc = -1;
		}
		strmap_release(&found);
	}
	strvec_release(&names);
	return rc;
}
