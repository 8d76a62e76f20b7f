/* pieces.c — a message known by its pieces (mime.h): the caller's part tree rebuilt as a message
 * ("skeleton") in which every body it was not given is a marker, checked to be read by GMime
 * as the tree describes it, then read by mime.c's own rules (mime_parse_with_absent), which
 * take each marker for a part left out.  One set of rules decides for whole messages and for
 * pieces; this file only lays the pieces out and says when they cannot stand for the whole.
 *
 * Why a skeleton and not a second walker over the tree: every decision of mime.c reads GMime's
 * view of the headers (content types, dispositions, RFC 2231/2047 parameters, the charset hint
 * for raw 8-bit headers, the digest default), so giving GMime the very same header bytes in the
 * very same structure is what makes both paths agree; a rule restated here would drift.
 */
#include "mime.h"
#include "mime-private.h"

#include <errno.h>
#include <string.h>

#include <gmime/gmime.h>

/* The skeleton being built. */
struct skeleton {
	GByteArray *out;
	const char *eol; /* the line break the root header uses */
	char prefix[48]; /* markers: prefix + decimal id */
	size_t prefix_len;
	GMimeParserOptions *options;
};

static bool ends_in_blank_line(GBytes *header)
{
	size_t n;
	const char *p = header != NULL ? g_bytes_get_data(header, &n) : NULL;

	if (p == NULL || n == 0)
		return false;
	if (n >= 2 && p[n - 1] == '\n' && p[n - 2] == '\n')
		return true;
	return n >= 3 && p[n - 1] == '\n' && p[n - 2] == '\r' && p[n - 3] == '\n';
}

/* The unfolded value of the last field called name in a header block (GMime's parser keeps
 * the last Content-* field it meets), or NULL.  New string. */
static char *last_field(GBytes *header, const char *name)
{
	size_t len, nlen = strlen(name);
	const char *p = g_bytes_get_data(header, &len), *end = p + len;
	char *found = NULL;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl != NULL ? nl + 1 : end;
		if ((size_t)(line_end - p) > nlen && g_ascii_strncasecmp(p, name, nlen) == 0) {
			const char *q = p + nlen;
			while (q < line_end && (*q == ' ' || *q == '\t'))
				q++;
			if (q < line_end && *q == ':') {
				GString *v = g_string_new(NULL);
				const char *c = q + 1;
				/* the field and its continuation lines, line breaks dropped */
				for (;;) {
					for (; c < line_end; c++)
						if (*c != '\r' && *c != '\n')
							g_string_append_c(v, *c);
					if (line_end >= end ||
					    (*line_end != ' ' && *line_end != '\t'))
						break;
					c = line_end;
					nl = memchr(c, '\n', (size_t)(end - c));
					line_end = nl != NULL ? nl + 1 : end;
				}
				g_free(found);
				found = g_string_free(v, FALSE);
			}
		}
		p = line_end;
	}
	return found;
}

static GMimeContentEncoding encoding_of(GBytes *header)
{
	char *value = last_field(header, "Content-Transfer-Encoding");
	GMimeContentEncoding enc = value != NULL
	                               ? g_mime_content_encoding_from_string(g_strstrip(value))
	                               : GMIME_CONTENT_ENCODING_DEFAULT;

	g_free(value);
	return enc;
}

/* The boundary GMime will split a multipart with this header by, or NULL.  New string. */
static char *boundary_of(struct skeleton *sk, GBytes *header)
{
	char *value = last_field(header, "Content-Type");
	GMimeContentType *ct = value != NULL ? g_mime_content_type_parse(sk->options, value) : NULL;
	const char *b = ct != NULL ? g_mime_content_type_get_parameter(ct, "boundary") : NULL;
	char *boundary = b != NULL && b[0] != '\0' ? g_strdup(b) : NULL;

	if (ct != NULL)
		g_object_unref(ct);
	g_free(value);
	return boundary;
}

static void put(struct skeleton *sk, const void *data, size_t len)
{
	g_byte_array_append(sk->out, data, (guint)len);
}

static void put_str(struct skeleton *sk, const char *s)
{
	put(sk, s, strlen(s));
}

static void put_bytes(struct skeleton *sk, GBytes *b)
{
	size_t len;
	const void *data = g_bytes_get_data(b, &len);

	if (len > 0)
		put(sk, data, len);
}

/* A marker for part id in a body with encoding enc: it decodes to prefix + id. */
static int put_marker(struct skeleton *sk, unsigned id, GMimeContentEncoding enc)
{
	char *marker = g_strdup_printf("%s%u", sk->prefix, id);

	switch (enc) {
	case GMIME_CONTENT_ENCODING_UUENCODE:
		g_free(marker);
		return -EBADMSG; /* its begin/end lines cannot be made up faithfully */
	case GMIME_CONTENT_ENCODING_BASE64: {
		char *b64 = g_base64_encode((const guchar *)marker, strlen(marker));
		put_str(sk, b64);
		g_free(b64);
		break;
	}
	default: /* identity, and quoted-printable: the marker has no '=' */
		put_str(sk, marker);
		break;
	}
	put_str(sk, sk->eol);
	g_free(marker);
	return 0;
}

static int put_part(struct skeleton *sk, const struct mime_part *p, int depth);

/* A forwarded message: its header, and a body that GMime reads as one leaf holding the marker
 * of the message/rfc822 part (what is inside is never looked at: its bytes are the part's). */
static int put_message(struct skeleton *sk, const struct mime_part *p)
{
	const struct mime_part *inner = p->n_parts == 1 ? &p->parts[0] : NULL;
	char *boundary;
	int ret;

	if (inner == NULL || !ends_in_blank_line(inner->header))
		return -EBADMSG;
	put_bytes(sk, inner->header);
	boundary = boundary_of(sk, inner->header);
	if (boundary == NULL)
		return put_marker(sk, p->id, encoding_of(inner->header));
	/* a forwarded multipart: one part of its own, plain, holding the marker */
	put_str(sk, "--");
	put_str(sk, boundary);
	put_str(sk, sk->eol);
	put_str(sk, sk->eol);
	ret = put_marker(sk, p->id, GMIME_CONTENT_ENCODING_DEFAULT);
	put_str(sk, "--");
	put_str(sk, boundary);
	put_str(sk, "--");
	put_str(sk, sk->eol);
	g_free(boundary);
	return ret;
}

static int put_part(struct skeleton *sk, const struct mime_part *p, int depth)
{
	char *boundary;
	int ret = 0;

	/* the views do not look deeper (mime.h): such a message is read whole */
	if (depth >= MIME_MAX_DEPTH || !ends_in_blank_line(p->header))
		return -EBADMSG;
	put_bytes(sk, p->header);
	switch (p->kind) {
	case MIME_PART_LEAF:
		if (p->body != NULL)
			put_bytes(sk, p->body);
		else
			ret = put_marker(sk, p->id, encoding_of(p->header));
		return ret;
	case MIME_PART_MESSAGE:
		return put_message(sk, p);
	case MIME_PART_MULTIPART:
		break;
	default:
		return -EINVAL;
	}
	if (p->n_parts == 0 || (boundary = boundary_of(sk, p->header)) == NULL)
		return -EBADMSG;
	for (size_t i = 0; i < p->n_parts && ret == 0; i++) {
		put_str(sk, "--");
		put_str(sk, boundary);
		put_str(sk, sk->eol);
		ret = put_part(sk, &p->parts[i], depth + 1);
		/* the line break before a delimiter belongs to the delimiter */
		put_str(sk, sk->eol);
	}
	put_str(sk, "--");
	put_str(sk, boundary);
	put_str(sk, "--");
	put_str(sk, sk->eol);
	g_free(boundary);
	return ret;
}

/* Does GMime read the skeleton as the tree describes it (the same kind at every place, the
 * same number of parts in every multipart)?  Inside forwarded messages nothing is compared:
 * they are one attachment each. */
static bool same_shape(GMimeObject *obj, const struct mime_part *p)
{
	switch (p->kind) {
	case MIME_PART_LEAF:
		return GMIME_IS_PART(obj);
	case MIME_PART_MESSAGE:
		return GMIME_IS_MESSAGE_PART(obj);
	case MIME_PART_MULTIPART:
		if (!GMIME_IS_MULTIPART(obj) ||
		    (size_t)g_mime_multipart_get_count(GMIME_MULTIPART(obj)) != p->n_parts)
			return false;
		for (size_t i = 0; i < p->n_parts; i++)
			if (!same_shape(g_mime_multipart_get_part(GMIME_MULTIPART(obj), (int)i),
			                &p->parts[i]))
				return false;
		return true;
	}
	return false;
}

static bool skeleton_has_shape(struct skeleton *sk, const struct mime_part *root)
{
	GMimeStream *stream =
	    g_mime_stream_mem_new_with_buffer((const char *)sk->out->data, sk->out->len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *message;
	GMimeObject *top;
	bool ok;

	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	message = g_mime_parser_construct_message(parser, sk->options);
	top = message != NULL ? g_mime_message_get_mime_part(message) : NULL;
	ok = top != NULL && same_shape(top, root);
	if (message != NULL)
		g_object_unref(message);
	g_object_unref(parser);
	g_object_unref(stream);
	return ok;
}

int mime_message_from_parts(const struct mime_part *root, struct mime_message **msg_r)
{
	struct skeleton sk;
	struct mime_absent absent;
	size_t hlen, fixed_len;
	const char *h;
	char *fixed;
	int ret;

	if (root == NULL || msg_r == NULL || root->header == NULL)
		return -EINVAL;
	*msg_r = NULL;
	mime_init();
	memset(&sk, 0, sizeof(sk));
	h = g_bytes_get_data(root->header, &hlen);
	sk.eol = memmem(h, hlen, "\r\n", 2) != NULL ? "\r\n" : "\n";
	/* a marker no real body holds: a fresh random name for every message */
	g_snprintf(sk.prefix, sizeof(sk.prefix), "imapfs-left-out-%08x%08x-", g_random_int(),
	           g_random_int());
	sk.prefix_len = strlen(sk.prefix);
	sk.options = mime_parser_options();
	sk.out = g_byte_array_new();

	ret = put_part(&sk, root, 0);
	if (ret == 0) {
		/* what the malformed-mail rules or the limits would change is not the server's
		 * picture of the message (mime.h): read it whole */
		fixed = mime_repair_separators((const char *)sk.out->data, sk.out->len, &fixed_len);
		if (fixed == NULL)
			fixed = mime_limit_structure((const char *)sk.out->data, sk.out->len,
			                             &fixed_len);
		if (fixed != NULL) {
			g_free(fixed);
			ret = -EBADMSG;
		}
	}
	if (ret == 0 && !skeleton_has_shape(&sk, root))
		ret = -EBADMSG;
	if (ret == 0) {
		absent.prefix = sk.prefix;
		absent.prefix_len = sk.prefix_len;
		ret = mime_parse_with_absent(sk.out->data, sk.out->len, &absent, msg_r);
	}
	g_byte_array_unref(sk.out);
	return ret;
}

/* Raw 8-bit bytes that are not UTF-8: their charset is guessed from the text parts (mime.h). */
static bool has_raw_8bit(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return !g_utf8_validate(p, (gssize)len, NULL);
	return false;
}

int mime_message_from_header(GBytes *header, struct mime_message **msg_r)
{
	size_t len, fixed_len;
	const char *h;
	char *fixed;
	int ret;

	if (header == NULL || msg_r == NULL)
		return -EINVAL;
	*msg_r = NULL;
	h = g_bytes_get_data(header, &len);
	if (!ends_in_blank_line(header) || has_raw_8bit(h, len))
		return -EBADMSG;
	fixed = mime_repair_separators(h, len, &fixed_len);
	if (fixed == NULL)
		fixed = mime_limit_structure(h, len, &fixed_len);
	if (fixed != NULL) {
		g_free(fixed);
		return -EBADMSG;
	}
	ret = mime_parse_with_absent(h, len, NULL, msg_r);
	if (ret == 0)
		mime_message_keep_headers_only(*msg_r);
	return ret;
}
