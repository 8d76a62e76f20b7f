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
 * exactly those of the input: inside a forwarded message this pass only follows the structure
 * as GMime reads it (a boundary declared in there may be one of an enclosing multipart too,
 * and GMime gives such a delimiter to the innermost multipart).
 */
#include "mime-private.h"

#include <string.h>

#include <gmime/gmime.h>

/* Multiparts nested deeper than the views look (mime.h) need no repair: their boundaries are
 * not followed, so nothing inside them is changed.  This also bounds the per-line work. */
#define MAX_TRACKED (MIME_MAX_DEPTH + 1)

/* An open multipart. */
struct bound {
	char *delimiter; /* "--boundary" */
	bool digest;     /* multipart/digest: a part without a valid type is a message */
};

struct scan {
	const char *data;
	size_t len;
	GArray *bounds;   /* struct bound of the open multiparts, innermost last */
	guint quiet_from; /* inside a forwarded message opened with this many bounds open (no
	                     insertions there); G_MAXUINT outside */
	GString *out;     /* NULL until the first insertion */
	size_t copied_to; /* data[0..copied_to) is in out */
};

/* What a header block says about the body after it. */
enum body_kind {
	BODY_LEAF,      /* opaque content up to the next delimiter */
	BODY_MULTIPART, /* a boundary was pushed */
	BODY_MESSAGE,   /* a forwarded message: another header block */
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

/* Length of the name of a field as GMime reads one (no blank or control inside; 8-bit passes),
 * 0 when the line is none.  Inside forwarded messages, where GMime's reading stands. */
static size_t gmime_field_name(const char *line, size_t n)
{
	size_t i = 0, name;

	while (i < n && line[i] != ':' && (unsigned char)line[i] > ' ' && line[i] != 0x7f)
		i++;
	name = i;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return (name > 0 && i < n && line[i] == ':') ? name : 0;
}

/* Is line[0..n) (without its line break) a delimiter of an open multipart?  As GMime's
 * parser: "--boundary" or "--boundary--", then only blanks, checked innermost first.
 * Returns 1 (opening) or 2 (closing) with the multipart's index in *level_r, or 0. */
static int match_boundary(const struct scan *s, const char *line, size_t n, guint *level_r)
{
	if (n < 2 || line[0] != '-' || line[1] != '-')
		return 0;
	for (guint i = s->bounds->len; i-- > 0;) {
		const char *b = g_array_index(s->bounds, struct bound, i).delimiter;
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

static void close_bounds(struct scan *s, guint keep)
{
	for (guint i = keep; i < s->bounds->len; i++)
		g_free(g_array_index(s->bounds, struct bound, i).delimiter);
	g_array_set_size(s->bounds, keep);
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

static bool is_type_token(unsigned char c)
{
	/* RFC 2045 token: no controls, blanks or tspecials (8-bit passes, as in GMime) */
	return c > ' ' && c != 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static const char *skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		for (int depth = 0; *p != '\0';) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
			p++;
		}
	}
}

bool mime_content_type_is_invalid(const char *value)
{
	const char *p = skip_cfws(value), *start;

	while (is_type_token((unsigned char)*p))
		p++;
	p = skip_cfws(p);
	if (*p != '/')
		return true;
	start = p = skip_cfws(p + 1);
	while (is_type_token((unsigned char)*p))
		p++;
	return p == start;
}

/* What GMime's parser makes of a header block's last Content-Type field (data[from..to),
 * after the colon; have_type false when there is none) and its first
 * Content-Transfer-Encoding (GMime does not parse an encoded message/rfc822 as a message).
 * part: the block is a part's, right after a delimiter of the innermost multipart. */
static enum body_kind learn_type(struct scan *s, size_t from, size_t to, bool have_type,
                                 bool encoded, bool part)
{
	bool digest = part && s->bounds->len > 0 &&
	              g_array_index(s->bounds, struct bound, s->bounds->len - 1).digest;
	/* a Content-Type field beyond this size is cut by limits.c anyway */
	char *value =
	    have_type ? g_strndup(s->data + from, MIN(to - from, MIME_MAX_STRUCTURED_FIELD)) : NULL;
	GMimeContentType *ct = NULL;
	enum body_kind kind = BODY_LEAF;

	if (value == NULL || mime_content_type_is_invalid(value)) {
		/* text/plain, or in a digest message/rfc822 (RFC 2046 §5.1.5) */
		kind = digest && !encoded ? BODY_MESSAGE : BODY_LEAF;
	} else {
		ct = g_mime_content_type_parse(NULL, value);
		if (g_mime_content_type_is_type(ct, "multipart", "*")) {
			const char *boundary = g_mime_content_type_get_parameter(ct, "boundary");
			if (boundary != NULL && s->bounds->len < MAX_TRACKED) {
				struct bound b = {
				    g_strconcat("--", boundary, NULL),
				    g_mime_content_type_is_type(ct, "multipart", "digest")};
				g_array_append_val(s->bounds, b);
				kind = BODY_MULTIPART;
			}
		} else if (g_mime_content_type_is_type(ct, "message", "*") && !encoded) {
			const char *sub = g_mime_content_type_get_media_subtype(ct);
			if (g_ascii_strcasecmp(sub, "rfc822") == 0 ||
			    g_ascii_strcasecmp(sub, "rfc2822") == 0 ||
			    g_ascii_strcasecmp(sub, "global") == 0 ||
			    g_ascii_strcasecmp(sub, "news") == 0)
				kind = BODY_MESSAGE;
		}
		g_object_unref(ct);
	}
	g_free(value);
	return kind;
}

static bool is_encoded(const char *value, size_t n)
{
	char *v = g_strndup(value, MIN(n, 256));
	GMimeContentEncoding e = g_mime_content_encoding_from_string(v);

	g_free(v);
	return e == GMIME_CONTENT_ENCODING_BASE64 || e == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	       e == GMIME_CONTENT_ENCODING_UUENCODE;
}

/* Whether the line at pos is a "From " envelope line with a header field after it: GMime
 * skips such a line at the start of a message, and so does this pass — also anywhere else in
 * a header block (a stray mbox line after other fields), as Python's email package and
 * nodemailer skip it and read on. */
static bool is_envelope_line(const struct scan *s, size_t pos)
{
	size_t end = line_end(s, pos), next_end;

	if (end - pos < 5 || memcmp(s->data + pos, "From ", 5) != 0 || end >= s->len)
		return false;
	next_end = line_end(s, end);
	return mime_is_header_field(s->data + end, content_len(s, end, next_end));
}

/* One header block from pos — the message's, a part's (part) or a forwarded
 * message's: returns where what follows it starts (the body, or a delimiter line that ended
 * the block), inserting the blank line where the block runs on, and in *kind_r what the body
 * is. */
static size_t scan_header_block(struct scan *s, size_t pos, bool part, enum body_kind *kind_r)
{
	size_t ct_from = 0, ct_to = 0, fields = 0;
	bool in_ct = false, have_ct = false, quiet = s->quiet_from != G_MAXUINT;
	int encoding = -1; /* the first Content-Transfer-Encoding: -1 none yet, 0/1 */

	*kind_r = BODY_LEAF;
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
				ct_to = pos + n;
		} else if (quiet ? gmime_field_name(line, n) > 0 : mime_is_header_field(line, n)) {
			const char *colon = memchr(line, ':', n);
			size_t value = (size_t)(colon + 1 - s->data);
			fields++;
			in_ct = n >= 12 && g_ascii_strncasecmp(line, "content-type", 12) == 0 &&
			        (line[12] == ':' || line[12] == ' ' || line[12] == '\t');
			if (in_ct) {
				have_ct = true;
				ct_from = value;
				ct_to = pos + n;
			}
			if (encoding < 0 && n >= 25 &&
			    g_ascii_strncasecmp(line, "content-transfer-encoding", 25) == 0 &&
			    (line[25] == ':' || line[25] == ' ' || line[25] == '\t'))
				encoding = is_encoded(s->data + value, pos + n - value);
		} else if (quiet) {
			in_ct = false; /* GMime skips the line and reads on */
		} else if (is_envelope_line(s, pos)) {
			in_ct = false; /* skipped, as GMime skips it */
		} else {
			insert_separator(s, pos);
			break;
		}
		pos = end;
	}
	*kind_r = learn_type(s, ct_from, ct_to, have_ct, encoding == 1, part);
	return pos;
}

char *mime_repair_separators(const char *data, size_t len, size_t *len_r)
{
	struct scan s = {0};
	enum body_kind kind;
	size_t pos;

	s.data = data;
	s.len = len;
	s.bounds = g_array_new(FALSE, FALSE, sizeof(struct bound));
	s.quiet_from = G_MAXUINT;
	pos = scan_header_block(&s, 0, false, &kind);
	/* With no multipart open and no forwarded message to enter, the rest is one leaf body:
	 * no header block can follow (most mail is this, so its body is not scanned at all). */
	while (pos < len && (kind == BODY_MESSAGE || s.bounds->len > 0)) {
		size_t end = line_end(&s, pos);
		guint level;
		int delimiter;

		if (kind == BODY_MESSAGE) {
			/* a forwarded message: follow it, change nothing in it */
			if (s.quiet_from == G_MAXUINT)
				s.quiet_from = s.bounds->len;
			pos = scan_header_block(&s, pos, false, &kind);
			continue;
		}
		delimiter = match_boundary(&s, data + pos, content_len(&s, pos, end), &level);
		kind = BODY_LEAF;
		/* a delimiter closes every multipart nested in its own (and itself, closing); one
		 * of a multipart around the forwarded message ends it with its part */
		if (delimiter != 0)
			close_bounds(&s, delimiter == 2 ? level : level + 1);
		if (delimiter != 0 && level < s.quiet_from)
			s.quiet_from = G_MAXUINT;
		if (delimiter == 1)
			pos = scan_header_block(&s, end, true, &kind);
		else
			pos = end;
	}
	close_bounds(&s, 0);
	g_array_unref(s.bounds);
	if (s.out == NULL)
		return NULL;
	g_string_append_len(s.out, data + s.copied_to, (gssize)(len - s.copied_to));
	*len_r = s.out->len;
	return g_string_free(s.out, FALSE);
}
