/* readable.c — does a raw message have readable text?  A judge of mime.h's rule, written apart
 * from mime/'s own code path.
 *
 * It reads the structure line by line by the rules mime.h states — where a header block ends,
 * that the last Content-Type counts, that a part without a valid one is text/plain (a
 * message in a digest), boundaries matched as RFC 2046 and GMime's parser match them — and
 * never uses separator.c or the walk in mime.c.  For the byte-level work it borrows
 * primitives: GMime for parameters, dispositions and transfer decoding, mime/'s
 * Content-Type syntax check, charset conversion and HTML rendering.  It is conservative: where
 * the structure is ambiguous it makes no claim (over the limits of mime.h; nesting deeper than
 * MAX_DEPTH; boundaries that are prefixes of one another; several Content-Transfer-Encoding or
 * Content-Disposition fields in one part; a transfer encoding other than the identity ones,
 * base64 and quoted-printable; a multipart's Content-Type with bytes outside printable ASCII; a
 * multipart in which no part is found but a line starts with "--", since mime/ then re-reads it
 * with a guessed boundary, or that holds a NUL byte; for the leaves also a part whose header
 * runs into its delimiter without its blank line, and a header with an mbox envelope line).
 * mime_test_leaves_strict claims only well-formed mail (readable.h).
 */
#include "readable.h"

#include "mime.h"
#include "mime-private.h"

#include <string.h>

#include <gmime/gmime.h>

#define MAX_DEPTH 24 /* well below MIME_MAX_DEPTH */

struct judge {
	const char *d;
	GPtrArray *bounds; /* "--boundary" of the enclosing multiparts (owned) */
	bool found;
	bool ambiguous; /* no claim about the whole message */
	GArray *leaves; /* struct mime_test_leaf, when listing them (mime_test_leaves) */
	bool unsplit;   /* no claim about the leaves: a multipart mime/ re-reads, nesting too deep,
	                   a leaf with several Content-Transfer-Encoding fields, a header block
	                   without its blank line (judge_entity) */
	bool strict;    /* leaves of well-formed mail only (mime_test_leaves_strict) */
};

/* One header field's value: from after its colon to the end of its last continuation line. */
struct value {
	size_t from, to;
	unsigned count; /* how many such fields the block has */
};

struct header {
	struct value type, encoding, disposition;
	size_t body;      /* where the body starts */
	bool blank_ended; /* the block ended with its blank line (RFC 5322 §2.1) */
	bool envelope;    /* it held an mbox "From " envelope line */
};

/* End of the line at pos (after its '\n'), not beyond end. */
static size_t next_line(const struct judge *j, size_t pos, size_t end)
{
	const char *nl = memchr(j->d + pos, '\n', end - pos);

	return nl == NULL ? end : (size_t)(nl + 1 - j->d);
}

/* Length of the line without "\n" or "\r\n". */
static size_t text_len(const struct judge *j, size_t pos, size_t next)
{
	size_t n = next - pos;

	if (n > 0 && j->d[pos + n - 1] == '\n') {
		n--;
		if (n > 0 && j->d[pos + n - 1] == '\r')
			n--;
	}
	return n;
}

/* The length of the field name when the line is "name:" or "name  :", else 0. */
static size_t field_name(const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);
	size_t name;

	if (colon == NULL)
		return 0;
	name = (size_t)(colon - line);
	while (name > 0 && (line[name - 1] == ' ' || line[name - 1] == '\t'))
		name--;
	for (size_t i = 0; i < name; i++)
		if (!g_ascii_isgraph(line[i]))
			return 0; /* a blank, control or 8-bit byte inside the name */
	return name;
}

/* Only blanks and line-break characters in p[0..n). */
static bool lwsp_only(const char *p, size_t n)
{
	while (n > 0 &&
	       (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	return n == 0;
}

static bool named(const char *line, size_t name, const char *want)
{
	return name == strlen(want) && g_ascii_strncasecmp(line, want, name) == 0;
}

/* Is line (n > 0 bytes) only CRs? */
static bool lone_crs(const char *line, size_t n)
{
	size_t i = 0;

	while (i < n && line[i] == '\r')
		i++;
	return n > 0 && i == n;
}

static size_t read_header(const struct judge *j, size_t pos, size_t end, struct header *h)
{
	struct value *open = NULL; /* the field that continuation lines extend */
	unsigned fields = 0;

	memset(h, 0, sizeof(*h));
	while (pos < end) {
		size_t next = next_line(j, pos, end), n = text_len(j, pos, next), name;
		const char *line = j->d + pos;

		if (n == 0 && next > pos && j->d[next - 1] == '\n') {
			h->body = next;
			h->blank_ended = true;
			return next;
		}
		if (next == end && lone_crs(line, next - pos)) {
			/* the block's last bytes are CRs without a LF: GMime's parser takes them
			 * for the end of the header (the body is empty), not for a body line */
			h->body = end;
			return end;
		}
		if ((line[0] == ' ' || line[0] == '\t') && fields > 0) {
			if (open != NULL)
				open->to = pos + n;
		} else if ((name = field_name(line, n)) > 0) {
			const char *colon = memchr(line, ':', n);
			fields++;
			open = named(line, name, "Content-Type")                ? &h->type
			       : named(line, name, "Content-Transfer-Encoding") ? &h->encoding
			       : named(line, name, "Content-Disposition")       ? &h->disposition
			                                                        : NULL;
			if (open != NULL) {
				open->from = (size_t)(colon + 1 - j->d);
				open->to = pos + n;
				open->count++;
			}
		} else if (n >= 5 && memcmp(line, "From ", 5) == 0 && next < end &&
		           field_name(j->d + next, text_len(j, next, next_line(j, next, end))) >
		               0) {
			/* an mbox envelope line with a header field after it: skipped */
			open = NULL;
			h->envelope = true;
		} else {
			break; /* not a header field: the body starts with this line */
		}
		pos = next;
	}
	h->body = pos;
	return pos;
}

static char *value_text(const struct judge *j, const struct value *v)
{
	return g_strndup(j->d + v->from, v->to - v->from);
}

/* A value as GMime reads it for the part (its Content-Transfer-Encoding, its disposition):
 * unfolded, which drops the CR and LF of a fold and a stray CR inside the value with them. */
static char *unfolded_text(const struct judge *j, const struct value *v)
{
	char *raw = value_text(j, v);
	char *u = g_mime_utils_header_unfold(raw);

	g_free(raw);
	return u;
}

/* Blank as mime/ counts it (g_ascii_isspace: a form feed or vertical tab is blank too). */
static bool blank(const char *s)
{
	while (*s != '\0' && g_ascii_isspace(*s))
		s++;
	return *s == '\0';
}

/* The line is "--B" or "--B--" (then only blanks) for the boundary b ("--B"). */
static bool delimits(const char *line, size_t n, const char *b, bool *closing)
{
	size_t bl = strlen(b), rest;

	if (n < bl || memcmp(line, b, bl) != 0)
		return false;
	*closing = n >= bl + 2 && line[bl] == '-' && line[bl + 1] == '-' &&
	           lwsp_only(line + bl + 2, n - bl - 2);
	rest = *closing ? bl + 2 : bl;
	return *closing || lwsp_only(line + rest, n - rest);
}

static bool mentions_boundary(const char *p, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i++)
		if (g_ascii_strncasecmp(p + i, "boundary", 8) == 0)
			return true;
	return false;
}

static void judge_text(struct judge *j, const char *data, size_t len, const char *charset,
                       bool html)
{
	size_t n;
	char *text = mime_to_utf8(data, len, charset, &n);

	if (html) {
		char *rendered = mime_html_to_text(text, n, NULL);
		g_free(text);
		text = rendered;
	}
	if (!blank(text))
		j->found = true;
	g_free(text);
}

static void judge_entity(struct judge *j, size_t start, size_t end, bool digest, int depth);

/* A multipart in which no part is found: its text is shown as it is, unless a line of it
 * starts with "--" (mime/ then tries that as the boundary: no claim) or it holds a NUL byte
 * (GMime keeps preamble and epilogue as C strings: the text after a NUL is lost, see mime.h). */
static void judge_partless(struct judge *j, size_t start, size_t end)
{
	j->unsplit = true; /* mime/ may find parts in it with a guessed boundary */
	if (memchr(j->d + start, '\0', end - start) != NULL)
		return;
	for (size_t pos = start; pos < end; pos = next_line(j, pos, end))
		if (end - pos >= 2 && j->d[pos] == '-' && j->d[pos + 1] == '-')
			return;
	judge_text(j, j->d + start, end - start, NULL, false);
}

/* Only printable ASCII and tabs in s. */
static bool printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static void judge_multipart(struct judge *j, size_t start, size_t end, const char *boundary,
                            bool digest, int depth)
{
	char *b = g_strconcat("--", boundary, NULL);
	size_t part = 0, pos;
	bool in_part = false, any = false;

	/* boundaries that are prefixes of one another make delimiters ambiguous: GMime gives a
	 * line to the innermost multipart, this judge splits from the outside in */
	for (guint i = 0; i < j->bounds->len; i++) {
		const char *o = j->bounds->pdata[i];
		if (g_str_has_prefix(o, b) || g_str_has_prefix(b, o)) {
			j->ambiguous = true;
			g_free(b);
			return;
		}
	}
	g_ptr_array_add(j->bounds, b);
	for (pos = start; pos < end;) {
		size_t next = next_line(j, pos, end);
		bool closing;

		if (delimits(j->d + pos, text_len(j, pos, next), b, &closing)) {
			if (in_part) {
				/* the line break before a delimiter belongs to the delimiter */
				size_t stop = pos;
				if (stop > part && j->d[stop - 1] == '\n')
					stop--;
				if (stop > part && j->d[stop - 1] == '\r')
					stop--;
				judge_entity(j, part, MAX(stop, part), digest, depth + 1);
			}
			any = any || !closing;
			in_part = !closing;
			part = next;
			if (closing)
				break; /* the epilogue is not shown */
		}
		pos = next;
	}
	if (in_part)
		judge_entity(j, part, end, digest, depth + 1);
	g_ptr_array_set_size(j->bounds, j->bounds->len - 1);
	if (!any)
		judge_partless(j, start, end);
}

static void judge_entity(struct judge *j, size_t start, size_t end, bool digest, int depth)
{
	struct header h;
	GMimeContentType *ct = NULL;
	char *charset = NULL;
	bool text = false, html = false, multipart = false, type_ascii = true;

	if (depth > MAX_DEPTH || j->ambiguous) {
		j->unsplit = true;
		return;
	}
	read_header(j, start, end, &h);
	if (j->leaves != NULL && !h.blank_ended &&
	    (j->strict || h.envelope || (depth > 0 && h.body == end && end > start))) {
		/* a header block without its blank line: where GMime's parser puts the body of a
		 * part whose header runs into its delimiter (an empty message/rfc822 part gets a
		 * line break there) is not a rule to judge by; the strict judge claims nothing
		 * about a block that runs into a body line, an envelope line or the end either */
		j->unsplit = true;
	}
	if (h.type.count > 0) {
		char *v = value_text(j, &h.type);
		type_ascii = printable_ascii(v);
		if (!mime_content_type_is_invalid(v)) {
			ct = g_mime_content_type_parse(NULL, v);
		} else if (!digest) {
			/* text/plain (RFC 2045 §5.2), with the charset parameter if any */
			const char *semi = strchr(v, ';');
			GMimeParamList *params =
			    semi != NULL ? g_mime_param_list_parse(NULL, semi + 1) : NULL;
			GMimeParam *p = params != NULL
			                    ? g_mime_param_list_get_parameter(params, "charset")
			                    : NULL;
			charset = p != NULL ? g_strdup(g_mime_param_get_value(p)) : NULL;
			text = true;
			if (params != NULL)
				g_object_unref(params);
		}
		g_free(v);
	} else {
		text = !digest; /* in a digest a part without type is a message (RFC 2046) */
	}

	if ((ct != NULL && g_mime_content_type_is_type(ct, "message", "*")) ||
	    (ct == NULL && !text)) {
		/* a forwarded message (its text is in NAME.eml): a boundary declared in it may be
		 * one of an enclosing multipart too, which GMime then gives the delimiter to */
		if (j->bounds->len > 0 && mentions_boundary(j->d + h.body, end - h.body))
			j->ambiguous = true;
	} else if (ct != NULL && g_mime_content_type_is_type(ct, "multipart", "*")) {
		const char *boundary = g_mime_content_type_get_parameter(ct, "boundary");
		multipart = true;
		bool is_digest = g_mime_content_type_is_type(ct, "multipart", "digest");
		if (!type_ascii)
			j->ambiguous = true; /* RFC 2046 boundaries are 7-bit: where GMime's
			                      * parameter parser and its multipart parser stop at an
			                      * 8-bit byte is not a rule to judge by */
		else if (boundary != NULL)
			judge_multipart(j, h.body, end, boundary, is_digest, depth);
		else
			judge_partless(j, h.body, end);
	} else if (ct != NULL && g_mime_content_type_is_type(ct, "text", "*") &&
	           !g_mime_content_type_is_type(ct, "text", "calendar")) {
		text = true;
		html = g_mime_content_type_is_type(ct, "text", "html");
		charset = g_strdup(g_mime_content_type_get_parameter(ct, "charset"));
	}
	if (ct != NULL)
		g_object_unref(ct);
	if (!multipart && j->leaves != NULL) {
		struct mime_test_leaf leaf = {j->d + h.body, end - h.body,
		                              h.encoding.count == 1 ? unfolded_text(j, &h.encoding)
		                                                    : NULL};
		g_array_append_val(j->leaves, leaf);
		if (h.encoding.count > 1)
			j->unsplit = true;
	}

	if (text && h.disposition.count <= 1 && h.encoding.count <= 1) {
		GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
		bool attachment = false;
		if (h.disposition.count == 1) {
			/* unfolded, as GMime parses the disposition mime.c asks of the part */
			char *v = unfolded_text(j, &h.disposition);
			GMimeContentDisposition *cd = g_mime_content_disposition_parse(NULL, v);
			attachment = g_mime_content_disposition_is_attachment(cd);
			g_object_unref(cd);
			g_free(v);
		}
		if (h.encoding.count == 1) {
			char *v = value_text(j, &h.encoding);
			enc = strpbrk(g_strstrip(v), "\r\n") == NULL
			          ? g_mime_content_encoding_from_string(v)
			          : GMIME_CONTENT_ENCODING_UUENCODE; /* folded: no claim */
			g_free(v);
		}
		if (!attachment && enc != GMIME_CONTENT_ENCODING_UUENCODE) {
			const char *body = j->d + h.body;
			size_t len = end - h.body;
			if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
			    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
				GMimeEncoding state;
				char *out;
				size_t n;
				g_mime_encoding_init_decode(&state, enc);
				out = g_malloc(g_mime_encoding_outlen(&state, len) + 1);
				n = g_mime_encoding_flush(&state, body, len, out);
				judge_text(j, out, n, charset, html);
				g_free(out);
			} else {
				judge_text(j, body, len, charset, html);
			}
		}
	}
	g_free(charset);
}

bool mime_test_has_readable_text(const void *data, size_t len)
{
	struct judge j = {0};
	size_t shaped_len;
	char *shaped;

	if (data == NULL || len == 0)
		return false;
	shaped = mime_limit_structure(data, len, &shaped_len);
	if (shaped != NULL) {
		g_free(shaped); /* over the limits: no claim */
		return false;
	}
	mime_init();
	j.d = data;
	j.bounds = g_ptr_array_new_with_free_func(g_free);
	judge_entity(&j, 0, len, false, 0);
	g_ptr_array_unref(j.bounds);
	return j.found && !j.ambiguous;
}

static void clear_leaf(gpointer p)
{
	g_free(((struct mime_test_leaf *)p)->encoding);
}

/* Well-formed text as the strict judge reads it: printable ASCII, tabs and line breaks (LF or
 * CRLF), nothing else. */
static bool well_formed_text(const char *d, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '\r' ? i + 1 == len || d[i + 1] != '\n'
		              : c > 0x7e || (c < 0x20 && c != '\t' && c != '\n'))
			return false;
	}
	return true;
}

static GArray *leaves(const void *data, size_t len, bool strict)
{
	struct judge j = {0};
	size_t shaped_len;
	char *shaped = data != NULL ? mime_limit_structure(data, len, &shaped_len) : NULL;

	if (data == NULL || shaped != NULL) {
		g_free(shaped); /* over the limits: no claim */
		return NULL;
	}
	if (strict && !well_formed_text(data, len))
		return NULL;
	mime_init();
	j.d = data;
	j.strict = strict;
	j.bounds = g_ptr_array_new_with_free_func(g_free);
	j.leaves = g_array_new(FALSE, TRUE, sizeof(struct mime_test_leaf));
	g_array_set_clear_func(j.leaves, clear_leaf);
	judge_entity(&j, 0, len, false, 0);
	g_ptr_array_unref(j.bounds);
	if (j.ambiguous || j.unsplit) {
		g_array_unref(j.leaves);
		return NULL;
	}
	return j.leaves;
}

GArray *mime_test_leaves(const void *data, size_t len)
{
	return leaves(data, len, false);
}

GArray *mime_test_leaves_strict(const void *data, size_t len)
{
	return leaves(data, len, true);
}
