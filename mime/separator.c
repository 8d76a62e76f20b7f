/* separator.c — finding where each header block really ends.
 *
 * A header block ends at its blank line, or at the first line that cannot be a header field
 * (neither "name:" with a valid field name nor a continuation of the field before): that line
 * starts the body, as in Python's email package and the mail readers users compare us with.
 * GMime instead skips such lines and keeps reading fields until a blank line, so the text of a
 * message or part whose header runs straight into its text — or that has no header at all —
 * vanishes.  This pass follows the structure as GMime's parser will (the top-level header
 * block, the boundaries of multiparts, the header block after each boundary) and, only where a
 * block ends on a line that is not a header field, makes a copy with the missing line break
 * inserted before that line.  Well-formed mail is handed to GMime untouched.  The bodies of
 * leaf parts and forwarded messages are never changed, so a forwarded message's bytes stay
 * exactly those of the input.
 */
#include "mime-private.h"

#include <string.h>

#include <gmime/gmime.h>

/* Multiparts nested deeper than the views look (mime.h) need no repair: their boundaries are
 * not followed, so nothing inside them is changed.  This also bounds the per-line work. */
#define MAX_TRACKED (MIME_MAX_DEPTH + 1)

struct scan {
	const char *data;
	size_t len;
	GPtrArray *bounds; /* char* "--boundary" of the open multiparts, innermost last (owned) */
	GString *out;      /* NULL until the first insertion */
	size_t copied_to;  /* data[0..copied_to) is in out */
};

static size_t line_end(const struct scan *s, size_t pos)
{
	const char *nl = memchr(s->data + pos, '\n', s->len - pos);

	return nl != NULL ? (size_t)(nl - s->data) + 1 : s->len;
}

/* Length of the line data[pos..end) without its line break. */
static size_t content_len(const struct scan *s, size_t pos, size_t end)
{
	if (end > pos && s->data[end - 1] == '\n')
		end--;
	if (end > pos && s->data[end - 1] == '\r')
		end--;
	return end - pos;
}

static bool only_lwsp(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

bool mime_is_header_field(const char *line, size_t n)
{
	size_t i = 0;

	/* RFC 5322 ftext: printable US-ASCII but ':' */
	while (i < n && (unsigned char)line[i] >= 33 && (unsigned char)line[i] <= 126 &&
	       line[i] != ':')
		i++;
	if (i == 0)
		return false;
	/* blanks before the colon are obsolete syntax (RFC 5322 §4.5) that GMime accepts too */
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < n && line[i] == ':';
}

/* Is line[0..n) (without its line break) a delimiter of an open multipart?  As GMime's
 * parser: "--boundary" or "--boundary--", then only blanks, checked innermost first.
 * Returns 1 (opening) or 2 (closing) with the multipart's index in *level_r, or 0. */
static int match_boundary(const struct scan *s, const char *line, size_t n, guint *level_r)
{
	if (n < 2 || line[0] != '-' || line[1] != '-')
		return 0;
	for (guint i = s->bounds->len; i-- > 0;) {
		const char *b = s->bounds->pdata[i];
		size_t bl = strlen(b);
		if (n < bl || memcmp(line, b, bl) != 0)
			continue;
		*level_r = i;
		if (n >= bl + 2 && line[bl] == '-' && line[bl + 1] == '-' &&
		    only_lwsp(line + bl + 2, n - bl - 2))
			return 2;
		if (only_lwsp(line + bl, n - bl))
			return 1;
	}
	return 0;
}

/* The header block ends at pos without a blank line: insert one, in the line-break style of
 * the line before (or of this line at the very start). */
static void insert_separator(struct scan *s, size_t pos)
{
	bool crlf;

	if (pos >= 2)
		crlf = s->data[pos - 1] == '\n' && s->data[pos - 2] == '\r';
	else {
		size_t end = line_end(s, pos);
		crlf = end - pos >= 2 && s->data[end - 1] == '\n' && s->data[end - 2] == '\r';
	}
	if (s->out == NULL)
		s->out = g_string_sized_new(s->len + 64);
	g_string_append_len(s->out, s->data + s->copied_to, (gssize)(pos - s->copied_to));
	g_string_append(s->out, crlf ? "\r\n" : "\n");
	s->copied_to = pos;
}

/* A multipart's header: remember its boundary, as GMime will use it (the last Content-Type
 * field counts; an invalid one makes the part text/plain). */
static void learn_multipart(struct scan *s, size_t ct_start, size_t ct_end)
{
	const char *colon = memchr(s->data + ct_start, ':', ct_end - ct_start);
	size_t from = (size_t)(colon - s->data) + 1;
	/* a Content-Type field beyond this size is cut by limits.c anyway */
	size_t n = MIN(ct_end - from, MIME_MAX_STRUCTURED_FIELD);
	char *value;
	GMimeContentType *ct;
	const char *boundary;

	if (s->bounds->len >= MAX_TRACKED)
		return;
	value = g_strndup(s->data + from, n);
	ct = g_mime_content_type_parse(NULL, value);
	boundary = g_mime_content_type_is_type(ct, "multipart", "*")
	               ? g_mime_content_type_get_parameter(ct, "boundary")
	               : NULL;
	if (boundary != NULL)
		g_ptr_array_add(s->bounds, g_strconcat("--", boundary, NULL));
	g_object_unref(ct);
	g_free(value);
}

/* Whether the line at pos is a "From " envelope line with a header field after it: GMime
 * skips such a line at the start of a message, and so does this pass. */
static bool is_envelope_line(const struct scan *s, size_t pos)
{
	size_t end = line_end(s, pos), next_end;

	if (end - pos < 5 || memcmp(s->data + pos, "From ", 5) != 0 || end >= s->len)
		return false;
	next_end = line_end(s, end);
	return mime_is_header_field(s->data + end, content_len(s, end, next_end));
}

/* One header block from pos: returns where what follows it starts (the body, or a delimiter
 * line that ended the block), inserting the blank line where the block runs on. */
static size_t scan_header_block(struct scan *s, size_t pos, bool toplevel)
{
	size_t ct_start = 0, ct_end = 0, fields = 0;
	bool in_ct = false;

	while (pos < s->len) {
		size_t end = line_end(s, pos), n = content_len(s, pos, end);
		const char *line = s->data + pos;
		guint level;

		if (n == 0 && end > pos) {
			pos = end; /* the blank line */
			break;
		}
		if (match_boundary(s, line, n, &level) != 0)
			return pos; /* a part without content: the caller reads the delimiter */
		if ((line[0] == ' ' || line[0] == '\t') && fields > 0) {
			if (in_ct)
				ct_end = end;
		} else if (mime_is_header_field(line, n)) {
			fields++;
			in_ct = n >= 12 && g_ascii_strncasecmp(line, "content-type", 12) == 0 &&
			        (line[12] == ':' || line[12] == ' ' || line[12] == '\t');
			if (in_ct) {
				ct_start = pos;
				ct_end = end;
			}
		} else if (!(toplevel && pos == 0 && is_envelope_line(s, pos))) {
			insert_separator(s, pos);
			break;
		}
		pos = end;
	}
	if (ct_end > ct_start)
		learn_multipart(s, ct_start, ct_end);
	return pos;
}

char *mime_repair_separators(const char *data, size_t len, size_t *len_r)
{
	struct scan s = {0};
	size_t pos;

	s.data = data;
	s.len = len;
	s.bounds = g_ptr_array_new_with_free_func(g_free);
	pos = scan_header_block(&s, 0, true);
	while (pos < len) {
		size_t end = line_end(&s, pos);
		guint level;
		int kind = match_boundary(&s, data + pos, content_len(&s, pos, end), &level);

		/* a delimiter closes every multipart nested in its own */
		if (kind != 0)
			g_ptr_array_set_size(s.bounds, level + 1);
		if (kind == 2)
			g_ptr_array_set_size(s.bounds, level);
		pos = kind == 1 ? scan_header_block(&s, end, false) : end;
	}
	g_ptr_array_unref(s.bounds);
	if (s.out == NULL)
		return NULL;
	g_string_append_len(s.out, data + s.copied_to, (gssize)(len - s.copied_to));
	*len_r = s.out->len;
	return g_string_free(s.out, FALSE);
}
