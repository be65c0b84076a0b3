/*
 * glob: the observations of a walk (glob_observations in cpipe/glob.h),
 * packed as they are recorded. Each observation is:
 *   a byte: the kind in bits 0-1, the type (st_mode & S_IFMT) >> 12 in bits 2-5;
 *   varints: how many bytes of the previous path it starts with, how many it
 *   ends with (after those), how many bytes come between, then those bytes;
 *   a varint: file_from;
 *   for a directory: its device, inode, mtime and ctime, 8 bytes each.
 * A stream's first path has nothing before it, so two streams laid end to end
 * (glob_observations_merge) read back as one.
 */
#include "cpipe/glob.h"

#include <string.h>

/* Four of the kind byte's bits carry the type: S_IFMT is 0170000. */
#define TYPE_SHIFT 12
#define KIND_BITS 2

static bool get_varint(struct glob_seen_reader *r, uint64_t *value)
{
	const unsigned char *bytes = (const unsigned char *)r->bytes, *at = bytes + r->at;
	if (uvarint_read(&at, bytes + r->length, value) < 0)
		return false;
	r->at = (size_t)(at - bytes);
	return true;
}

static void put_u64(struct strbuf *out, uint64_t value)
{
	strbuf_add(out, &value, sizeof(value));
}

static bool get_u64(struct glob_seen_reader *r, uint64_t *value)
{
	if (r->length - r->at < sizeof(*value))
		return false;
	memcpy(value, r->bytes + r->at, sizeof(*value));
	r->at += sizeof(*value);
	return true;
}

void glob_observations_add(struct glob_observations *seen, enum glob_seen_kind kind, const char *path,
			   size_t file_from, const struct stat *st)
{
	if (!*path)
		path = ".";
	uint32_t type = st ? (uint32_t)(st->st_mode & S_IFMT) : 0;
	strbuf_addch(&seen->packed, (char)(kind | (type >> TYPE_SHIFT) << KIND_BITS));
	const char *last = seen->last.buf;
	size_t length = strlen(path), last_length = seen->last.len, start = 0, end = 0;
	while (start < length && start < last_length && path[start] == last[start])
		start++;
	while (end < length - start && end < last_length - start &&
	       path[length - 1 - end] == last[last_length - 1 - end])
		end++;
	strbuf_add_uvarint(&seen->packed, start);
	strbuf_add_uvarint(&seen->packed, end);
	strbuf_add_uvarint(&seen->packed, length - start - end);
	strbuf_add(&seen->packed, path + start, length - start - end);
	strbuf_add_uvarint(&seen->packed, file_from);
	if (kind == GLOB_SEEN_DIRECTORY) {
		if (!st)
			BUG("a directory read is observed with its stat");
		put_u64(&seen->packed, (uint64_t)st->st_dev);
		put_u64(&seen->packed, (uint64_t)st->st_ino);
		put_u64(&seen->packed, (uint64_t)timespec_ns(&st->st_mtim));
		put_u64(&seen->packed, (uint64_t)timespec_ns(&st->st_ctim));
	}
	strbuf_reset(&seen->last);
	strbuf_add(&seen->last, path, length);
	seen->count++;
}

void glob_observations_merge(struct glob_observations *to, struct glob_observations *from)
{
	if (!to->count) {
		struct glob_observations moved = *to;
		*to = *from;
		*from = moved;
	} else if (from->count) {
		strbuf_add(&to->packed, from->packed.buf, from->packed.len);
		to->count += from->count;
		struct strbuf last = to->last;
		to->last = from->last;
		from->last = last;
	}
	glob_observations_release(from);
}

void glob_observations_release(struct glob_observations *seen)
{
	strbuf_release(&seen->packed);
	strbuf_release(&seen->last);
	seen->count = 0;
}

void glob_seen_reader_init(struct glob_seen_reader *reader, const char *bytes, size_t length)
{
	reader->bytes = bytes;
	reader->length = length;
	reader->at = 0;
	reader->path = (struct strbuf)STRBUF_INIT;
	reader->previous = (struct strbuf)STRBUF_INIT;
}

int glob_seen_next(struct glob_seen_reader *r, struct glob_seen *seen)
{
	if (r->at == r->length)
		return 0;
	unsigned char head = (unsigned char)r->bytes[r->at++];
	uint64_t start, end, between, file_from;
	memset(seen, 0, sizeof(*seen));
	seen->kind = (enum glob_seen_kind)(head & ((1u << KIND_BITS) - 1));
	seen->type = (uint32_t)(head >> KIND_BITS) << TYPE_SHIFT;
	if (seen->kind > GLOB_SEEN_NO_DIRECTORY || (head >> KIND_BITS) > (S_IFMT >> TYPE_SHIFT))
		return -1;
	struct strbuf swap = r->previous;
	r->previous = r->path;
	r->path = swap;
	const struct strbuf *previous = &r->previous;
	if (!get_varint(r, &start) || !get_varint(r, &end) || !get_varint(r, &between) ||
	    start > previous->len || end > previous->len - start || between > r->length - r->at)
		return -1;
	strbuf_reset(&r->path);
	strbuf_add(&r->path, previous->buf, (size_t)start);
	strbuf_add(&r->path, r->bytes + r->at, (size_t)between);
	strbuf_add(&r->path, previous->buf + previous->len - end, (size_t)end);
	r->at += (size_t)between;
	if (!get_varint(r, &file_from) || file_from > r->path.len || !r->path.len || strlen(r->path.buf) != r->path.len)
		return -1;
	seen->path = r->path.buf;
	seen->file_from = (size_t)file_from;
	if (seen->kind == GLOB_SEEN_DIRECTORY) {
		uint64_t times[2];
		if (!get_u64(r, &seen->device) || !get_u64(r, &seen->inode) || !get_u64(r, &times[0]) ||
		    !get_u64(r, &times[1]))
			return -1;
		seen->mtime_ns = (int64_t)times[0];
		seen->ctime_ns = (int64_t)times[1];
	}
	return 1;
}

void glob_seen_reader_release(struct glob_seen_reader *reader)
{
	strbuf_release(&reader->path);
	strbuf_release(&reader->previous);
}
