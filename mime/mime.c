/* mime.c — parsing one message with GMime and computing all of its decoded views up front.
 *
 * The whole message is parsed once; every view (header values, body text, body.html,
 * attachment names and bytes) is computed right away into GBytes and the GMime tree is dropped,
 * so a struct mime_message is small, immutable and knows every size exactly.  Choosing what a
 * reader sees follows what mail readers do: in multipart/alternative the plain alternative is
 * the body and the HTML one is body.html; in multipart/mixed every inline text part is body, in
 * order; everything else is an attachment.  Depth is capped (MIME_MAX_DEPTH) and every walk here
 * is bounded by it, so hostile nesting costs neither stack nor time.
 */
#include "mime.h"
#include "mime-private.h"

#include <errno.h>
#include <string.h>

#include <gmime/gmime.h>
#include <libxml/parser.h>

#define UTF8_BOM "\xef\xbb\xbf"

struct mime_attachment {
	char *name;   /* unique, safe */
	GBytes *data; /* decoded bytes; NULL when its part's body was left out (pieces.c) */
	enum mime_data_source source; /* how data is made from the part's body */
	unsigned part_id;             /* the part's id, when data is NULL */
	char *encoding;               /* its transfer encoding (MIME_DATA_DECODED), or NULL */
};

struct mime_message {
	GBytes *views[MIME_VIEW_COUNT]; /* NULL: view absent (or, from parts, not known yet) */
	int64_t date;
	struct mime_attachment *attachments;
	size_t n_attachments;
	/* From parts (pieces.c) with readable text parts left out: body and body.html are not
	 * known; text_parts holds the ids of the parts they are made of, has_html says whether
	 * body.html exists.  NULL text_parts: every view is known. */
	GArray *text_parts;
	bool has_html;
};

/* What a subtree may contribute to the displayed body (bit set). */
enum show {
	SHOW_NONE = 0,
	SHOW_PLAIN = 1, /* text/plain and the other readable text types */
	SHOW_HTML = 2,  /* text/html parts */
	SHOW_ALL = SHOW_PLAIN | SHOW_HTML,
};

/* An attachment while the message is being walked: its name is not unique yet. */
struct pending_attachment {
	char *name;
	GBytes *data; /* NULL: the part's body was left out (source, part_id, encoding say which) */
	enum mime_data_source source;
	unsigned part_id;
	char *encoding;
};

struct walk {
	const guint8 *input; /* the raw message (borrowed) */
	size_t input_len;
	GPtrArray *plain;      /* char* UTF-8 pieces of body text */
	GPtrArray *html;       /* char* UTF-8 HTML parts */
	GPtrArray *spare;      /* char* UTF-8 text of readable parts not shown (alternatives not
	                          chosen): the body when the shown ones leave it empty */
	GPtrArray *spare_html; /* the same for HTML parts */
	bool html_converted;   /* some HTML part was not UTF-8 on the wire */
	GArray *atts;          /* struct pending_attachment */
	GPtrArray *boundaries; /* boundaries of the enclosing multiparts (borrowed) */
	unsigned n_forwarded;  /* forwarded messages seen so far */
	unsigned detached;     /* >0: walking a re-parsed copy, offsets do not match input */
	GMimeParserOptions *options;
	const struct mime_absent *absent; /* nullable: bodies left out of a skeleton (pieces.c) */
	GArray *missing_text;  /* ids of readable text parts whose bodies were left out */
	unsigned missing_html; /* ... of them, HTML parts shown as body.html */
};

static GMimeParserOptions *base_options;

static gpointer init_once(gpointer unused)
{
	static const char *fallback[] = {"UTF-8", "WINDOWS-1252", "ISO-8859-1", NULL};

	g_mime_init();
	xmlInitParser();
	base_options = g_mime_parser_options_new();
	/* The workarounds GMime offers for real-world breakage: encoded words inside quotes or
	 * words, missing spaces, unquoted specials in parameters and addresses. */
	g_mime_parser_options_set_rfc2047_compliance_mode(base_options, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_address_compliance_mode(base_options, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(base_options,
	                                                    GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_allow_addresses_without_domain(base_options, TRUE);
	g_mime_parser_options_set_fallback_charsets(base_options, fallback);
	return NULL;
}

void mime_init(void)
{
	static GOnce once = G_ONCE_INIT;

	g_once(&once, init_once, NULL);
}

GMimeParserOptions *mime_parser_options(void)
{
	mime_init();
	return base_options;
}

const char *mime_view_name(enum mime_view view)
{
	static const char *const names[MIME_VIEW_COUNT] = {
	    [MIME_VIEW_SUBJECT] = "subject",
	    [MIME_VIEW_FROM] = "from",
	    [MIME_VIEW_TO] = "to",
	    [MIME_VIEW_DATE] = "date",
	    [MIME_VIEW_CC] = "cc",
	    [MIME_VIEW_MESSAGE_ID] = "message-id",
	    [MIME_VIEW_HEADERS] = "headers",
	    [MIME_VIEW_BODY] = "body",
	    [MIME_VIEW_BODY_HTML] = "body.html",
	};

	if ((unsigned)view >= MIME_VIEW_COUNT)
		return NULL;
	return names[view];
}

/* ---- parsing ---- */

/* Parse without copying the input: the memory stream borrows the caller's buffer (GMime only
 * reads it) and *array_r must be released with g_byte_array_free(…, FALSE) after the tree. */
static GMimeMessage *parse_bytes(const void *data, size_t len, GMimeParserOptions *options,
                                 GByteArray **array_r)
{
	GByteArray *array = g_byte_array_new_take((guint8 *)data, len);
	GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(array);
	GMimeParser *parser;
	GMimeMessage *message;

	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	message = g_mime_parser_construct_message(parser, options);
	g_object_unref(parser);
	g_object_unref(stream);
	*array_r = array;
	return message;
}

static void release_parse(GMimeMessage *message, GByteArray *array)
{
	if (message != NULL)
		g_object_unref(message);
	/* the GMime tree (and with it every substream of our buffer) is gone: drop the borrowed
	 * wrapper without freeing the caller's bytes */
	g_byte_array_free(array, FALSE);
}

static bool is_8bit_not_utf8(const char *s)
{
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return !g_utf8_validate(s, -1, NULL);
	return false;
}

static bool header_list_has_raw_8bit(GMimeHeaderList *list)
{
	int n = list != NULL ? g_mime_header_list_get_count(list) : 0;

	for (int i = 0; i < n; i++) {
		const char *raw =
		    g_mime_header_get_raw_value(g_mime_header_list_get_header_at(list, i));
		if (raw != NULL && is_8bit_not_utf8(raw))
			return true;
	}
	return false;
}

/* Finds the charset of the first text part that names a real legacy charset, and whether any
 * header has raw 8-bit bytes that are not UTF-8. */
static void scan_for_hint(GMimeObject *obj, int depth, const char **hint, bool *raw_8bit)
{
	if (obj == NULL || depth > MIME_MAX_DEPTH)
		return;
	if (!*raw_8bit && header_list_has_raw_8bit(g_mime_object_get_header_list(obj)))
		*raw_8bit = true;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++)
			scan_for_hint(g_mime_multipart_get_part(mp, i), depth + 1, hint, raw_8bit);
	} else if (GMIME_IS_PART(obj) && *hint == NULL) {
		GMimeContentType *ct = g_mime_object_get_content_type(obj);
		const char *name;
		if (ct == NULL || !g_mime_content_type_is_type(ct, "text", "*"))
			return;
		name = mime_charset_iconv_name(g_mime_content_type_get_parameter(ct, "charset"));
		if (name != NULL && g_ascii_strcasecmp(name, "UTF-8") != 0 &&
		    g_ascii_strcasecmp(name, "WINDOWS-1252") != 0)
			*hint = name;
	}
}

/* Raw 8-bit header bytes carry no charset.  The body's declared charset is the best guess for
 * them (a Korean mail with a raw EUC-KR subject has an EUC-KR body), so when there are such
 * bytes and the body names a legacy charset, the message is parsed again with that charset
 * tried right after UTF-8.  Returns new options or NULL when the first parse stands. */
static GMimeParserOptions *options_for_raw_headers(GMimeMessage *message)
{
	const char *hint = NULL;
	bool raw_8bit =
	    header_list_has_raw_8bit(g_mime_object_get_header_list(GMIME_OBJECT(message)));
	GMimeParserOptions *options;
	const char *fallback[5];

	scan_for_hint(g_mime_message_get_mime_part(message), 0, &hint, &raw_8bit);
	if (hint == NULL || !raw_8bit)
		return NULL;
	fallback[0] = "UTF-8";
	fallback[1] = hint;
	fallback[2] = "WINDOWS-1252";
	fallback[3] = "ISO-8859-1";
	fallback[4] = NULL;
	options = g_mime_parser_options_clone(base_options);
	g_mime_parser_options_set_fallback_charsets(options, fallback);
	return options;
}

/* ---- header views ---- */

/* Valid UTF-8 on one line: CR/LF (folding) dropped, other controls become spaces, trimmed. */
static char *one_line(const char *s)
{
	char *valid = mime_utf8_sanitize(s != NULL ? s : "", -1, NULL);
	GString *out = g_string_sized_new(strlen(valid) + 1);

	for (const char *p = valid; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\r' || c == '\n')
			continue;
		g_string_append_c(out, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
	}
	g_free(valid);
	g_strstrip(out->str);
	out->len = strlen(out->str);
	return g_string_free(out, FALSE);
}

static GBytes *line_view(const char *value)
{
	char *line = one_line(value);
	char *with_nl = g_strconcat(line, "\n", NULL);
	size_t len = strlen(with_nl);

	g_free(line);
	return g_bytes_new_take(with_nl, len);
}

/* Headers of the message in wire order.  GMime keeps Content-* headers on the root part and
 * the rest on the message; both lists are in offset order, so merge them by offset. */
static GPtrArray *all_headers(GMimeMessage *message)
{
	GMimeHeaderList *a = g_mime_object_get_header_list(GMIME_OBJECT(message));
	GMimeObject *root = g_mime_message_get_mime_part(message);
	GMimeHeaderList *b = root != NULL ? g_mime_object_get_header_list(root) : NULL;
	int na = a != NULL ? g_mime_header_list_get_count(a) : 0;
	int nb = b != NULL ? g_mime_header_list_get_count(b) : 0;
	GPtrArray *out = g_ptr_array_sized_new((guint)(na + nb));
	int i = 0, j = 0;

	while (i < na || j < nb) {
		GMimeHeader *ha = i < na ? g_mime_header_list_get_header_at(a, i) : NULL;
		GMimeHeader *hb = j < nb ? g_mime_header_list_get_header_at(b, j) : NULL;
		if (hb == NULL ||
		    (ha != NULL && g_mime_header_get_offset(ha) <= g_mime_header_get_offset(hb))) {
			g_ptr_array_add(out, ha);
			i++;
		} else {
			g_ptr_array_add(out, hb);
			j++;
		}
	}
	return out;
}

static GMimeHeader *find_header(GPtrArray *headers, const char *name)
{
	for (guint i = 0; i < headers->len; i++) {
		GMimeHeader *h = headers->pdata[i];
		if (g_ascii_strcasecmp(g_mime_header_get_name(h), name) == 0)
			return h;
	}
	return NULL;
}

static void append_display_name(GString *out, const char *name)
{
	/* quoted when it would otherwise read as several addresses or an address */
	if (strpbrk(name, ",;<>\"") == NULL) {
		g_string_append(out, name);
		return;
	}
	g_string_append_c(out, '"');
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

static void append_address_list(GString *out, InternetAddressList *list, int depth);

static void append_address(GString *out, InternetAddress *ia, int depth)
{
	const char *name = internet_address_get_name(ia);
	char *clean_name = one_line(name);

	if (INTERNET_ADDRESS_IS_GROUP(ia)) {
		/* "undisclosed-recipients:;" stays recognisable */
		append_display_name(out, clean_name);
		g_string_append_c(out, ':');
		if (depth < 2)
			append_address_list(
			    out, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
			    depth + 1);
		g_string_append_c(out, ';');
	} else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
		char *addr =
		    one_line(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
		if (clean_name[0] != '\0' && addr[0] != '\0') {
			append_display_name(out, clean_name);
			g_string_append_printf(out, " <%s>", addr);
		} else if (addr[0] != '\0') {
			g_string_append(out, addr);
		} else {
			append_display_name(out, clean_name);
		}
		g_free(addr);
	}
	g_free(clean_name);
}

static void append_address_list(GString *out, InternetAddressList *list, int depth)
{
	int n = list != NULL ? internet_address_list_length(list) : 0;

	for (int i = 0; i < n; i++) {
		/* members follow "Group:" after a space, addresses follow each other after ", " */
		if (i > 0)
			g_string_append(out, ", ");
		else if (out->len > 0 && out->str[out->len - 1] == ':')
			g_string_append_c(out, ' ');
		append_address(out, internet_address_list_get_address(list, i), depth);
	}
}

/* "Name <addr>, Name <addr>\n" from every header called name; NULL when there is none. */
static GBytes *address_view(GPtrArray *headers, const char *name, GMimeParserOptions *options)
{
	GString *out = g_string_new(NULL);
	bool found = false;

	for (guint i = 0; i < headers->len; i++) {
		GMimeHeader *h = headers->pdata[i];
		const char *raw = g_mime_header_get_raw_value(h);
		InternetAddressList *list;
		GString *one;

		if (g_ascii_strcasecmp(g_mime_header_get_name(h), name) != 0)
			continue;
		found = true;
		one = g_string_new(NULL);
		if (raw != NULL) {
			/* display names decoded by the rules of rfc2047.c, not GMime's */
			char *normalized = mime_header_normalize_words(raw, options);
			list = internet_address_list_parse(options, normalized);
			g_free(normalized);
		} else {
			list = NULL;
		}
		append_address_list(one, list, 0);
		if (list != NULL)
			g_object_unref(list);
		if (one->len == 0) {
			/* not addresses at all: show the text rather than nothing */
			char *decoded = mime_header_decode(raw, options);
			char *text = one_line(decoded);
			g_string_append(one, text);
			g_free(text);
			g_free(decoded);
		}
		if (one->len > 0) {
			if (out->len > 0)
				g_string_append(out, ", ");
			g_string_append_len(out, one->str, (gssize)one->len);
		}
		g_string_free(one, TRUE);
	}
	if (!found) {
		g_string_free(out, TRUE);
		return NULL;
	}
	{
		/* names came through one_line(); addresses too; the join is plain ASCII */
		char *line = g_string_free(out, FALSE);
		GBytes *view = line_view(line);
		g_free(line);
		return view;
	}
}

static GBytes *headers_view(GPtrArray *headers, GMimeParserOptions *options)
{
	GString *out = g_string_new(NULL);
	size_t len;

	for (guint i = 0; i < headers->len; i++) {
		GMimeHeader *h = headers->pdata[i];
		char *name = one_line(g_mime_header_get_name(h));
		char *decoded = mime_header_decode(g_mime_header_get_raw_value(h), options);
		char *value = one_line(decoded);
		g_string_append_printf(out, "%s: %s\n", name, value);
		g_free(name);
		g_free(decoded);
		g_free(value);
	}
	len = out->len;
	return g_bytes_new_take(g_string_free(out, FALSE), len);
}

/* Unfolded raw value ("as written"), or NULL when the header is missing. */
static char *raw_value(GPtrArray *headers, const char *name)
{
	GMimeHeader *h = find_header(headers, name);
	const char *raw = h != NULL ? g_mime_header_get_raw_value(h) : NULL;

	if (h == NULL)
		return NULL;
	return one_line(raw);
}

static void compute_header_views(struct mime_message *msg, GMimeMessage *message,
                                 GMimeParserOptions *options)
{
	GPtrArray *headers = all_headers(message);
	GMimeHeader *subject = find_header(headers, "Subject");
	char *date = raw_value(headers, "Date");
	char *message_id = raw_value(headers, "Message-ID");
	char *subject_text = subject != NULL
	                         ? mime_header_decode(g_mime_header_get_raw_value(subject), options)
	                         : NULL;

	msg->views[MIME_VIEW_SUBJECT] = line_view(subject_text != NULL ? subject_text : "");
	g_free(subject_text);
	msg->views[MIME_VIEW_FROM] = address_view(headers, "From", options);
	msg->views[MIME_VIEW_TO] = address_view(headers, "To", options);
	msg->views[MIME_VIEW_CC] = address_view(headers, "Cc", options);
	if (msg->views[MIME_VIEW_FROM] == NULL)
		msg->views[MIME_VIEW_FROM] = line_view("");
	if (msg->views[MIME_VIEW_TO] == NULL)
		msg->views[MIME_VIEW_TO] = line_view("");
	msg->views[MIME_VIEW_DATE] = line_view(date != NULL ? date : "");
	if (message_id != NULL)
		msg->views[MIME_VIEW_MESSAGE_ID] = line_view(message_id);
	msg->views[MIME_VIEW_HEADERS] = headers_view(headers, options);

	msg->date = INT64_MIN;
	if (date != NULL && date[0] != '\0') {
		GDateTime *dt = g_mime_utils_header_decode_date(date);
		if (dt != NULL) {
			msg->date = g_date_time_to_unix(dt);
			g_date_time_unref(dt);
		}
	}
	g_free(date);
	g_free(message_id);
	g_ptr_array_unref(headers);
}

/* ---- body and attachments ---- */

static bool is_blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (!g_ascii_isspace(*s))
			return false;
	return true;
}

/* Where the body of a leaf part really ends, given where GMime's parser ended it (end, before
 * the delimiter at or after it).  GMime takes the line break before a delimiter to be of the kind
 * the delimiter line itself ends in: after a CRLF delimiter line it drops two bytes, after one
 * ending in LF (or in nothing: the input's last line) one.  The line break before the delimiter
 * belongs to the delimiter (RFC 2046 §5.1.1) whatever its kind, so: a CR GMime left in before an
 * LF-ended delimiter is not the part's; a byte GMime dropped before a lone LF is. */
static gint64 body_end(const guint8 *d, gint64 len, gint64 start, gint64 end)
{
	if (end > start && d[end - 1] == '\r' && end + 1 < len && d[end] == '\n' &&
	    d[end + 1] == '-')
		return end - 1;
	if (end + 3 < len && d[end] != '\r' && d[end + 1] == '\n' && d[end + 2] == '-' &&
	    d[end + 3] == '-')
		return end + 1;
	return end;
}

/* Decode the body of a leaf part (GMime's content stream: a window on the parsed buffer) into
 * out: the part's BODY[section], which body_end finds from GMime's window. */
static void decode_content(GMimeStream *stream, struct mime_decoder *decoder, GByteArray *out)
{
	if (GMIME_IS_STREAM_MEM(stream)) {
		GByteArray *buffer = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
		gint64 start = MAX(stream->bound_start, 0);
		gint64 end = stream->bound_end < 0 ? (gint64)buffer->len
		                                   : MIN(stream->bound_end, (gint64)buffer->len);
		end = body_end(buffer->data, (gint64)buffer->len, start, end);
		if (end > start)
			mime_decoder_step(decoder, buffer->data + start, (size_t)(end - start),
			                  out);
	} else {
		/* not parsed from memory (never the case here): read it as GMime has it */
		GMimeStream *mem = g_mime_stream_mem_new();
		GByteArray *raw;
		g_mime_stream_reset(stream);
		g_mime_stream_write_to_stream(stream, mem);
		raw = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		mime_decoder_step(decoder, raw->data, raw->len, out);
		g_object_unref(mem);
	}
}

/* The transfer-decoded bytes of a leaf part, by the one rule fs/ uses too (decode.c). */
static GBytes *part_bytes(GMimePart *part)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *stream = content != NULL ? g_mime_data_wrapper_get_stream(content) : NULL;
	GByteArray *out = g_byte_array_new();
	struct mime_decoder *decoder;

	if (stream == NULL)
		return g_byte_array_free_to_bytes(out);
	decoder = mime_decoder_new(
	    g_mime_content_encoding_to_string(g_mime_data_wrapper_get_encoding(content)));
	decode_content(stream, decoder, out);
	mime_decoder_finish(decoder, out);
	mime_decoder_free(decoder);
	return g_byte_array_free_to_bytes(out);
}

static bool is_attachment_disposition(GMimeObject *obj)
{
	const char *d = g_mime_object_get_disposition(obj);

	return d != NULL && g_ascii_strcasecmp(d, "attachment") == 0;
}

/* The Content-Type field GMime's parser went by: the last one of the part. */
static const char *raw_content_type(GMimeObject *obj)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(obj);

	for (int i = list != NULL ? g_mime_header_list_get_count(list) : 0; i-- > 0;) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "Content-Type") == 0)
			return g_mime_header_get_raw_value(h);
	}
	return NULL;
}

/* GMime's parser builds a part whose Content-Type is not "type/subtype" ("text; charset=…",
 * "text/") as the text/plain that RFC 2045 §5.2 says it is — but the part's own content type
 * then says application/octet-stream, or whatever GMime reads in the unfolded value (a stray
 * CR inside "multipart" vanishes there).  The raw field is what the structure follows.  (In a
 * multipart/digest such a part is message/rfc822: no GMimePart.) */
static bool is_untyped_text(GMimeObject *obj)
{
	const char *raw;

	if (!GMIME_IS_PART(obj))
		return false;
	raw = raw_content_type(obj);
	return raw != NULL && mime_content_type_is_invalid(raw);
}

static const char *media_type(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *t = ct != NULL ? g_mime_content_type_get_media_type(ct) : NULL;

	if (is_untyped_text(obj))
		return "text";
	return t != NULL ? t : "application";
}

static const char *media_subtype(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *t = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;

	if (is_untyped_text(obj))
		return "plain";
	return t != NULL ? t : "octet-stream";
}

/* The charset parameter, also of a Content-Type GMime could not read ("text; charset=…"):
 * a new string (g_free) or NULL. */
static char *charset_of(GMimeObject *obj)
{
	const char *raw, *semi;
	GMimeParamList *params;
	char *label = NULL;

	if (!is_untyped_text(obj))
		return g_strdup(g_mime_object_get_content_type_parameter(obj, "charset"));
	raw = raw_content_type(obj);
	semi = strchr(raw, ';');
	params = semi != NULL ? g_mime_param_list_parse(NULL, semi + 1) : NULL;
	if (params != NULL) {
		GMimeParam *p = g_mime_param_list_get_parameter(params, "charset");
		if (p != NULL)
			label = g_strdup(g_mime_param_get_value(p));
		g_object_unref(params);
	}
	return label;
}

static bool type_is(GMimeObject *obj, const char *type, const char *subtype)
{
	return g_ascii_strcasecmp(media_type(obj), type) == 0 &&
	       (subtype == NULL || g_ascii_strcasecmp(media_subtype(obj), subtype) == 0);
}

/* What a leaf text part is for the body: SHOW_PLAIN, SHOW_HTML, or SHOW_NONE (an attachment). */
static enum show leaf_text_kind(GMimeObject *obj)
{
	if (!type_is(obj, "text", NULL) || type_is(obj, "text", "calendar") ||
	    is_attachment_disposition(obj))
		return SHOW_NONE;
	return type_is(obj, "text", "html") ? SHOW_HTML : SHOW_PLAIN;
}

/* What an alternative offers besides SHOW_PLAIN (text/plain) and SHOW_HTML: readable text of
 * another type (text/enriched, Apple's text/watch-html).  Shown as plain text, but chosen in a
 * multipart/alternative only when no alternative is plain or HTML (mime.h). */
#define OFFERS_OTHER_TEXT 4u

/* Which kinds of displayable text a subtree holds (SHOW_* bits and OFFERS_OTHER_TEXT). */
static unsigned provides(GMimeObject *obj, int depth)
{
	unsigned kinds = 0;

	if (obj == NULL || depth > MIME_MAX_DEPTH)
		return 0;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		if (depth == MIME_MAX_DEPTH)
			return 0;
		for (int i = 0; i < n && (kinds & SHOW_ALL) != SHOW_ALL; i++)
			kinds |= provides(g_mime_multipart_get_part(mp, i), depth + 1);
		return kinds;
	}
	if (GMIME_IS_PART(obj) && !type_is(obj, "message", NULL)) {
		enum show kind = leaf_text_kind(obj);
		if (kind == SHOW_PLAIN && !type_is(obj, "text", "plain"))
			return OFFERS_OTHER_TEXT;
		return kind;
	}
	return 0;
}

static void add_attachment(struct walk *w, char *name, GBytes *data)
{
	struct pending_attachment a = {name, data, MIME_DATA_HERE, 0, NULL};

	g_array_append_val(w->atts, a);
}

/* An attachment whose part's body was left out: fs/ gets its bytes from the part itself. */
static void add_absent_attachment(struct walk *w, char *name, enum mime_data_source source,
                                  unsigned id, GMimeObject *obj)
{
	struct pending_attachment a = {name, NULL, source, id, NULL};

	if (source == MIME_DATA_DECODED && GMIME_IS_PART(obj))
		a.encoding = g_strdup(g_mime_content_encoding_to_string(
		    g_mime_part_get_content_encoding(GMIME_PART(obj))));
	g_array_append_val(w->atts, a);
}

/* Is the body of leaf obj one of the skeleton's markers (pieces.c)?  Then *id_r is the id of
 * the part it stands for. */
static bool absent_part(struct walk *w, GMimeObject *obj, unsigned *id_r)
{
	GBytes *data;
	size_t len;
	const char *p;
	uint64_t id = 0;
	bool found = false;

	if (w->absent == NULL || w->detached > 0 || !GMIME_IS_PART(obj))
		return false;
	data = part_bytes(GMIME_PART(obj));
	p = g_bytes_get_data(data, &len);
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	if (len > w->absent->prefix_len && len <= w->absent->prefix_len + 10 &&
	    memcmp(p, w->absent->prefix, w->absent->prefix_len) == 0) {
		found = true;
		for (size_t i = w->absent->prefix_len; i < len && found; i++) {
			found = g_ascii_isdigit(p[i]);
			id = id * 10 + (uint64_t)(p[i] - '0');
		}
		found = found && id <= G_MAXUINT;
	}
	g_bytes_unref(data);
	*id_r = (unsigned)id;
	return found;
}

/* Name from Content-Disposition filename / Content-Type name (RFC 2231 and 2047 decoded by
 * GMime), sanitized; NULL when absent or unusable. */
static char *given_name(GMimeObject *obj)
{
	const char *name = g_mime_object_get_content_disposition_parameter(obj, "filename");

	if (name == NULL || name[0] == '\0')
		name = g_mime_object_get_content_type_parameter(obj, "name");
	return mime_name_sanitize(name);
}

static bool has_suffix_ci(const char *s, const char *suffix)
{
	size_t sl = strlen(s), xl = strlen(suffix);

	return sl >= xl && g_ascii_strcasecmp(s + sl - xl, suffix) == 0;
}

/* NAME.eml for a forwarded message: its file name, else its subject, else forwarded-N. */
static char *forwarded_name(struct walk *w, GMimeObject *obj, GMimeMessage *inner)
{
	char *name = given_name(obj);
	char *result;

	w->n_forwarded++;
	if (name == NULL && inner != NULL) {
		GMimeHeaderList *list = g_mime_object_get_header_list(GMIME_OBJECT(inner));
		GMimeHeader *h =
		    list != NULL ? g_mime_header_list_get_header(list, "Subject") : NULL;
		const char *raw = h != NULL ? g_mime_header_get_raw_value(h) : NULL;
		if (raw != NULL) {
			char *subject = mime_header_decode(raw, w->options);
			name = mime_name_sanitize(subject);
			g_free(subject);
		}
	}
	if (name == NULL)
		return g_strdup_printf("forwarded-%u.eml", w->n_forwarded);
	if (has_suffix_ci(name, ".eml"))
		return name;
	result = mime_name_fit(name, "", ".eml");
	g_free(name);
	return result;
}

static gint64 first_offset(GMimeHeaderList *list)
{
	if (list == NULL || g_mime_header_list_get_count(list) == 0)
		return -1;
	return g_mime_header_get_offset(g_mime_header_list_get_header_at(list, 0));
}

/* Where the body of a part starts in the input: after the blank line that ends its header block
 * (found from its last header field), or -1 when it has no header to anchor on. */
static gint64 body_offset(const struct walk *w, GMimeObject *obj)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(obj);
	int n = list != NULL ? g_mime_header_list_get_count(list) : 0;
	gint64 pos;

	if (n == 0)
		return -1;
	pos = g_mime_header_get_offset(g_mime_header_list_get_header_at(list, n - 1));
	if (pos < 0 || (guint64)pos >= w->input_len)
		return -1;
	for (size_t i = (size_t)pos; i < w->input_len; i++) {
		if (w->input[i] != '\n')
			continue;
		if (i + 1 < w->input_len && w->input[i + 1] == '\n')
			return (gint64)(i + 2);
		if (i + 2 < w->input_len && w->input[i + 1] == '\r' && w->input[i + 2] == '\n')
			return (gint64)(i + 3);
	}
	return (gint64)w->input_len; /* the header block ends the input: an empty body */
}

/* Whether line[0..n) is a delimiter of boundary, as GMime's parser matches one: "--boundary"
 * or "--boundary--", then only blanks. */
static bool is_delimiter_line(const guint8 *line, size_t n, const char *boundary)
{
	size_t bl = strlen(boundary);

	if (n < bl + 2 || line[0] != '-' || line[1] != '-' || memcmp(line + 2, boundary, bl) != 0)
		return false;
	line += bl + 2;
	n -= bl + 2;
	if (n >= 2 && line[0] == '-' && line[1] == '-') {
		line += 2;
		n -= 2;
	}
	for (size_t i = 0; i < n; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
			return false;
	return true;
}

/* The bytes of the input from start (a line's start) up to the line break before the next
 * delimiter of any enclosing multipart (that is where GMime's parser ended the part too), or
 * to the end of the input. */
static GBytes *input_to_delimiter(const struct walk *w, size_t start)
{
	size_t pos = start, end = w->input_len;

	while (pos < w->input_len && end == w->input_len) {
		const guint8 *nl = memchr(w->input + pos, '\n', w->input_len - pos);
		size_t next = nl != NULL ? (size_t)(nl - w->input) + 1 : w->input_len;
		for (guint i = 0; i < w->boundaries->len; i++) {
			if (is_delimiter_line(w->input + pos, next - pos,
			                      w->boundaries->pdata[i])) {
				end = pos;
				if (end > start && w->input[end - 1] == '\n')
					end--;
				if (end > start && w->input[end - 1] == '\r')
					end--;
				break;
			}
		}
		pos = next;
	}
	return g_bytes_new(w->input + start, end - start);
}

/* The forwarded message exactly as it is in the input: the body of its message/rfc822 part (obj)
 * — from the first header of the inner message when the part has no header of its own — up to
 * the line break before the next delimiter.  Also without a header block of its own (a
 * delivery report's "[original message goes here]", where GMime builds no message or an
 * empty one) it keeps its bytes.  With no anchor at all, GMime writes it out. */
static GBytes *forwarded_bytes(struct walk *w, GMimeObject *obj, GMimeMessage *inner)
{
	gint64 a, b, start = w->detached == 0 ? body_offset(w, obj) : -1;

	if (start >= 0)
		return input_to_delimiter(w, (size_t)start);
	if (inner == NULL)
		return g_bytes_new(NULL, 0);
	a = first_offset(g_mime_object_get_header_list(GMIME_OBJECT(inner)));
	b = g_mime_message_get_mime_part(inner) != NULL
	        ? first_offset(g_mime_object_get_header_list(g_mime_message_get_mime_part(inner)))
	        : -1;
	start = (a >= 0 && (b < 0 || a <= b)) ? a : b;
	if (start < 0 || (guint64)start > w->input_len || w->detached > 0) {
		GMimeStream *mem = g_mime_stream_mem_new();
		GByteArray *array;
		g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, mem);
		array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
		g_object_unref(mem);
		return g_byte_array_free_to_bytes(array);
	}
	return input_to_delimiter(w, (size_t)start);
}

/* The text of a readable part: to the body (shown) or to the spares. */
static void add_text_piece(struct walk *w, GMimeObject *obj, enum show kind, bool shown)
{
	GBytes *raw = part_bytes(GMIME_PART(obj));
	char *label = charset_of(obj);
	gsize raw_len;
	const char *raw_data = g_bytes_get_data(raw, &raw_len);
	size_t len;
	char *text = mime_to_utf8(raw_data != NULL ? raw_data : "", raw_len, label, &len);

	g_bytes_unref(raw);
	len = mime_normalize_newlines(text, len);
	text[len] = '\0';
	if (!shown) {
		g_ptr_array_add(kind == SHOW_HTML ? w->spare_html : w->spare, text);
	} else if (kind == SHOW_HTML) {
		const char *iconv_name = mime_charset_iconv_name(label);
		if (iconv_name != NULL && g_ascii_strcasecmp(iconv_name, "UTF-8") != 0)
			w->html_converted = true;
		g_ptr_array_add(w->html, text);
	} else {
		g_ptr_array_add(w->plain, text);
	}
	g_free(label);
}

static void walk_object(struct walk *w, GMimeObject *obj, int depth, unsigned show);

/* The boundary the parts of a broken multipart really use: the first "--X" line of its text. */
static char *guess_boundary(const char *text)
{
	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *nl = strchr(line, '\n');
		size_t n = nl != NULL ? (size_t)(nl - line) : strlen(line);
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		if (n > 2 && line[0] == '-' && line[1] == '-') {
			if (n > 4 && line[n - 1] == '-' && line[n - 2] == '-')
				n -= 2; /* a closing delimiter */
			if (n > 2 && n - 2 <= 200)
				return g_strndup(line + 2, n - 2);
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	return NULL;
}

/* A multipart in which GMime found no parts (boundary parameter missing or not the one the
 * body uses): everything is in its preamble.  Re-parse that with the boundary the body does
 * use; failing that, show the text as it is — never drop it.  Re-parsed text goes through the
 * same structure limits, and a rescue inside a rescued part only shows text: the re-parsed
 * regions are disjoint, so all rescues together cost at most one more copy of the input. */
static void rescue_multipart(struct walk *w, GMimeMultipart *mp, int depth, unsigned show)
{
	const char *prologue = g_mime_multipart_get_prologue(mp);
	const char *epilogue = g_mime_multipart_get_epilogue(mp);
	bool both = prologue != NULL && prologue[0] != '\0' && epilogue != NULL;
	char *text = g_strconcat(prologue != NULL ? prologue : "", both ? "\n" : "",
	                         epilogue != NULL ? epilogue : "", NULL);
	char *boundary = guess_boundary(text);
	const char *old = g_mime_object_get_content_type_parameter(GMIME_OBJECT(mp), "boundary");

	if (boundary != NULL && (old == NULL || strcmp(old, boundary) != 0) &&
	    depth + 1 < MIME_MAX_DEPTH && w->detached == 0) {
		char *quoted = g_mime_utils_quote_string(boundary);
		char *doc = g_strdup_printf("Content-Type: %s/%s; boundary=%s\n\n%s",
		                            media_type(GMIME_OBJECT(mp)),
		                            media_subtype(GMIME_OBJECT(mp)), quoted, text);
		size_t doc_len = strlen(doc), shaped_len = 0, repaired_len = 0;
		/* its parts' header blocks may run on as well (see mime_message_parse) */
		char *repaired = mime_repair_separators(doc, doc_len, &repaired_len);
		char *shaped;
		GMimeStream *stream;
		GMimeParser *parser;
		GMimeObject *part;

		if (repaired != NULL) {
			g_free(doc);
			doc = repaired;
			doc_len = repaired_len;
		}
		shaped = mime_limit_structure(doc, doc_len, &shaped_len);
		stream = shaped != NULL ? g_mime_stream_mem_new_with_buffer(shaped, shaped_len)
		                        : g_mime_stream_mem_new_with_buffer(doc, doc_len);
		parser = g_mime_parser_new_with_stream(stream);

		/* the stream holds its own copy; the text is no longer needed */
		g_free(shaped);
		g_free(doc);
		g_free(quoted);
		part = g_mime_parser_construct_part(parser, w->options);
		g_object_unref(parser);
		g_object_unref(stream);
		if (part != NULL && GMIME_IS_MULTIPART(part) &&
		    g_mime_multipart_get_count(GMIME_MULTIPART(part)) > 0) {
			g_free(boundary);
			g_free(text);
			w->detached++;
			walk_object(w, part, depth + 1, show);
			w->detached--;
			g_object_unref(part);
			return;
		}
		if (part != NULL)
			g_object_unref(part);
	}
	g_free(boundary);
	if (!is_blank(text)) {
		size_t len;
		char *utf8 = mime_to_utf8(text, strlen(text), NULL, &len);
		len = mime_normalize_newlines(utf8, len);
		utf8[len] = '\0';
		g_ptr_array_add((show & SHOW_PLAIN) ? w->plain : w->spare, utf8);
	}
	g_free(text);
}

static void walk_multipart(struct walk *w, GMimeMultipart *mp, int depth, unsigned show)
{
	GMimeObject *obj = GMIME_OBJECT(mp);
	int n = g_mime_multipart_get_count(mp);
	const char *boundary = g_mime_object_get_content_type_parameter(obj, "boundary");
	int plain_child = -1, html_child = -1, other_child = -1;

	if (depth >= MIME_MAX_DEPTH)
		return; /* deeper parts are not descended into */
	if (n == 0) {
		rescue_multipart(w, mp, depth, show);
		return;
	}
	if (type_is(obj, "multipart", "alternative")) {
		/* RFC 2046: the last alternative is the richest; take the last of each kind */
		for (int i = 0; i < n; i++) {
			unsigned kinds = provides(g_mime_multipart_get_part(mp, i), depth + 1);
			if (kinds & SHOW_PLAIN)
				plain_child = i;
			if (kinds & SHOW_HTML)
				html_child = i;
			if (kinds & OFFERS_OTHER_TEXT)
				other_child = i;
		}
		/* text/enriched or text/watch-html never wins over plain text or HTML */
		if (plain_child < 0 && html_child < 0)
			plain_child = other_child;
	}
	if (boundary != NULL)
		g_ptr_array_add(w->boundaries, (gpointer)boundary);
	for (int i = 0; i < n; i++) {
		unsigned child_show = show;
		if (type_is(obj, "multipart", "alternative")) {
			child_show = SHOW_NONE;
			if (i == plain_child)
				child_show |= show & SHOW_PLAIN;
			if (i == html_child)
				child_show |= show & SHOW_HTML;
			/* neither plain nor HTML on offer: show the last alternative as it is */
			if (plain_child < 0 && html_child < 0 && i == n - 1)
				child_show = show;
		}
		walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1, child_show);
	}
	if (boundary != NULL)
		g_ptr_array_set_size(w->boundaries, w->boundaries->len - 1);
}

static void walk_leaf(struct walk *w, GMimeObject *obj, unsigned show)
{
	enum show kind = leaf_text_kind(obj);
	unsigned id = 0;
	bool absent = absent_part(w, obj, &id);
	char *name;

	if (type_is(obj, "message", "rfc822") || type_is(obj, "message", "global")) {
		/* a forwarded message GMime could not parse as one (e.g. base64-encoded) */
		name = forwarded_name(w, obj, NULL);
		if (absent)
			add_absent_attachment(w, name, MIME_DATA_DECODED, id, obj);
		else
			add_attachment(w, name, part_bytes(GMIME_PART(obj)));
		return;
	}
	if (kind != SHOW_NONE) {
		/* readable text: body when this branch is shown, else an alternative not chosen */
		if (!absent) {
			add_text_piece(w, obj, kind, (show & kind) != 0);
			return;
		}
		g_array_append_val(w->missing_text, id);
		if (kind == SHOW_HTML && (show & kind) != 0)
			w->missing_html++;
		return;
	}
	name = given_name(obj);
	if (name == NULL && type_is(obj, "text", "calendar"))
		name = g_strdup("invite.ics");
	if (name == NULL)
		name = mime_name_from_type(media_type(obj), media_subtype(obj), w->atts->len + 1);
	if (absent)
		add_absent_attachment(w, name, MIME_DATA_DECODED, id, obj);
	else
		add_attachment(w, name, part_bytes(GMIME_PART(obj)));
}

static void walk_object(struct walk *w, GMimeObject *obj, int depth, unsigned show)
{
	if (obj == NULL || depth > MIME_MAX_DEPTH)
		return;
	if (GMIME_IS_MULTIPART(obj)) {
		walk_multipart(w, GMIME_MULTIPART(obj), depth, show);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		GMimeObject *inner_root =
		    inner != NULL ? g_mime_message_get_mime_part(inner) : NULL;
		unsigned id;
		/* a skeleton's forwarded message: its body is a marker naming the part (in a part
		 * of its own when the forwarded message is a multipart: pieces.c) */
		if (inner_root != NULL && GMIME_IS_MULTIPART(inner_root) &&
		    g_mime_multipart_get_count(GMIME_MULTIPART(inner_root)) == 1)
			inner_root = g_mime_multipart_get_part(GMIME_MULTIPART(inner_root), 0);
		if (inner_root != NULL && absent_part(w, inner_root, &id))
			add_absent_attachment(w, forwarded_name(w, obj, inner), MIME_DATA_EXACT, id,
			                      obj);
		else
			add_attachment(w, forwarded_name(w, obj, inner), forwarded_bytes(w, obj, inner));
	} else if (GMIME_IS_PART(obj)) {
		walk_leaf(w, obj, show);
	}
}

/* Non-blank pieces, each ending in a newline, separated by a blank line. */
static GBytes *join_pieces(GPtrArray *pieces)
{
	GString *out = g_string_new(NULL);
	size_t len;

	for (guint i = 0; i < pieces->len; i++) {
		const char *p = pieces->pdata[i];
		if (is_blank(p))
			continue;
		if (out->len > 0)
			g_string_append_c(out, '\n');
		g_string_append(out, p);
		if (out->str[out->len - 1] != '\n')
			g_string_append_c(out, '\n');
	}
	len = out->len;
	return g_bytes_new_take(g_string_free(out, FALSE), len);
}

/* The body from plain pieces, else (when they are all blank) from the rendered HTML ones. */
static GBytes *body_text(GPtrArray *plain, GPtrArray *html)
{
	bool plain_blank = true;
	GPtrArray *rendered;
	GBytes *body;

	for (guint i = 0; i < plain->len && plain_blank; i++)
		plain_blank = is_blank(plain->pdata[i]);
	if (!plain_blank || html->len == 0)
		return join_pieces(plain);
	rendered = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < html->len; i++) {
		const char *h = html->pdata[i];
		g_ptr_array_add(rendered, mime_html_to_text(h, strlen(h), NULL));
	}
	body = join_pieces(rendered);
	g_ptr_array_unref(rendered);
	return body;
}

static void compute_body_views(struct mime_message *msg, struct walk *w)
{
	if (w->missing_text->len > 0) {
		/* from parts, text left out: body and body.html wait for it (pieces.c) */
		msg->text_parts = g_array_ref(w->missing_text);
		msg->has_html = w->html->len + w->missing_html > 0;
		return;
	}
	msg->views[MIME_VIEW_BODY] = body_text(w->plain, w->html);
	if (g_bytes_get_size(msg->views[MIME_VIEW_BODY]) == 0 &&
	    (w->spare->len > 0 || w->spare_html->len > 0)) {
		/* the parts chosen for display are blank (a blank last alternative): the body is
		 * never empty while a readable part has text (mime.h) */
		g_bytes_unref(msg->views[MIME_VIEW_BODY]);
		msg->views[MIME_VIEW_BODY] = body_text(w->spare, w->spare_html);
	}

	if (w->html->len > 0) {
		/* Several HTML parts (Apple Mail splits one around inline images) read best as one
		 * document.  A converted document still says <meta charset=…> inside; the BOM makes
		 * browsers read the file as the UTF-8 it now is. */
		GString *out = g_string_new(w->html_converted ? UTF8_BOM : "");
		size_t len;
		for (guint i = 0; i < w->html->len; i++) {
			const char *h = w->html->pdata[i];
			if (i > 0 && out->len > 0 && out->str[out->len - 1] != '\n')
				g_string_append_c(out, '\n');
			g_string_append(out, h);
		}
		len = out->len;
		msg->views[MIME_VIEW_BODY_HTML] = g_bytes_new_take(g_string_free(out, FALSE), len);
	}
}

static void compute_attachments(struct mime_message *msg, struct walk *w)
{
	GHashTable *used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	msg->n_attachments = w->atts->len;
	msg->attachments = g_new0(struct mime_attachment, w->atts->len + 1);
	for (guint i = 0; i < w->atts->len; i++) {
		struct pending_attachment *a =
		    &g_array_index(w->atts, struct pending_attachment, i);
		msg->attachments[i].name = mime_name_unique(used, a->name);
		msg->attachments[i].data = a->data;
		msg->attachments[i].source = a->source;
		msg->attachments[i].part_id = a->part_id;
		msg->attachments[i].encoding = a->encoding;
		g_free(a->name);
		a->name = NULL;
		a->data = NULL;
		a->encoding = NULL;
	}
	g_hash_table_unref(used);
}

static void free_pending_attachment(gpointer p)
{
	struct pending_attachment *a = p;

	g_free(a->name);
	g_free(a->encoding);
	if (a->data != NULL)
		g_bytes_unref(a->data);
}

int mime_message_parse(const void *data, size_t len, struct mime_message **msg_r)
{
	return mime_parse_with_absent(data, len, NULL, msg_r);
}

int mime_parse_with_absent(const void *data, size_t len, const struct mime_absent *absent,
                           struct mime_message **msg_r)
{
	struct mime_message *msg;
	GMimeParserOptions *options = NULL;
	GMimeMessage *message;
	GByteArray *array;
	struct walk w;
	char *shaped, *repaired;
	size_t shaped_len = 0, repaired_len = 0;

	if (msg_r == NULL || (data == NULL && len > 0) || len > G_MAXUINT)
		return -EINVAL;
	*msg_r = NULL;
	if (data == NULL)
		data = "";
	mime_init();
	/* a header block that runs into its text: GMime gets a copy with the blank line that
	 * ends it (separator.c), so that the text stays the body */
	repaired = mime_repair_separators(data, len, &repaired_len);
	if (repaired != NULL) {
		data = repaired;
		len = repaired_len;
	}
	/* pathological structure: GMime gets a copy without the excess (limits.c) */
	shaped = mime_limit_structure(data, len, &shaped_len);
	if (shaped != NULL) {
		data = shaped;
		len = shaped_len;
	}

	message = parse_bytes(data, len, base_options, &array);
	if (message != NULL && (options = options_for_raw_headers(message)) != NULL) {
		release_parse(message, array);
		message = parse_bytes(data, len, options, &array);
	}

	msg = g_new0(struct mime_message, 1);
	msg->date = INT64_MIN;
	memset(&w, 0, sizeof(w));
	w.input = data;
	w.input_len = len;
	w.plain = g_ptr_array_new_with_free_func(g_free);
	w.html = g_ptr_array_new_with_free_func(g_free);
	w.spare = g_ptr_array_new_with_free_func(g_free);
	w.spare_html = g_ptr_array_new_with_free_func(g_free);
	w.atts = g_array_new(FALSE, TRUE, sizeof(struct pending_attachment));
	g_array_set_clear_func(w.atts, free_pending_attachment);
	w.boundaries = g_ptr_array_new();
	w.options = options != NULL ? options : base_options;
	w.absent = absent;
	w.missing_text = g_array_new(FALSE, FALSE, sizeof(unsigned));

	if (message != NULL) {
		compute_header_views(msg, message, options != NULL ? options : base_options);
		walk_object(&w, g_mime_message_get_mime_part(message), 0, SHOW_ALL);
	} else {
		/* GMime only gives up on an empty stream: every view is then empty */
		for (enum mime_view v = MIME_VIEW_SUBJECT; v <= MIME_VIEW_DATE; v++)
			msg->views[v] = g_bytes_new_static("\n", 1);
		msg->views[MIME_VIEW_HEADERS] = g_bytes_new_static("", 0);
	}
	compute_body_views(msg, &w);
	compute_attachments(msg, &w);

	g_ptr_array_unref(w.plain);
	g_ptr_array_unref(w.html);
	g_ptr_array_unref(w.spare);
	g_ptr_array_unref(w.spare_html);
	g_array_unref(w.atts);
	g_ptr_array_unref(w.boundaries);
	g_array_unref(w.missing_text);
	release_parse(message, array);
	if (options != NULL)
		g_mime_parser_options_free(options);
	g_free(shaped);
	g_free(repaired);
	*msg_r = msg;
	return 0;
}

void mime_message_free(struct mime_message *msg)
{
	if (msg == NULL)
		return;
	for (int v = 0; v < MIME_VIEW_COUNT; v++)
		if (msg->views[v] != NULL)
			g_bytes_unref(msg->views[v]);
	for (size_t i = 0; i < msg->n_attachments; i++) {
		g_free(msg->attachments[i].name);
		g_free(msg->attachments[i].encoding);
		if (msg->attachments[i].data != NULL)
			g_bytes_unref(msg->attachments[i].data);
	}
	g_free(msg->attachments);
	if (msg->text_parts != NULL)
		g_array_unref(msg->text_parts);
	g_free(msg);
}

GBytes *mime_message_view(const struct mime_message *msg, enum mime_view view)
{
	if (msg == NULL || (unsigned)view >= MIME_VIEW_COUNT)
		return NULL;
	return msg->views[view];
}

int64_t mime_message_date(const struct mime_message *msg)
{
	return msg != NULL ? msg->date : INT64_MIN;
}

size_t mime_message_n_attachments(const struct mime_message *msg)
{
	return msg != NULL ? msg->n_attachments : 0;
}

const char *mime_message_attachment_name(const struct mime_message *msg, size_t i)
{
	if (msg == NULL || i >= msg->n_attachments)
		return NULL;
	return msg->attachments[i].name;
}

GBytes *mime_message_attachment_data(const struct mime_message *msg, size_t i)
{
	if (msg == NULL || i >= msg->n_attachments)
		return NULL;
	return msg->attachments[i].data;
}

bool mime_message_has_view(const struct mime_message *msg, enum mime_view view)
{
	if (msg == NULL || (unsigned)view >= MIME_VIEW_COUNT)
		return false;
	if (msg->text_parts != NULL && view == MIME_VIEW_BODY)
		return true;
	if (msg->text_parts != NULL && view == MIME_VIEW_BODY_HTML)
		return msg->has_html;
	return msg->views[view] != NULL;
}

const GArray *mime_message_text_parts(const struct mime_message *msg)
{
	return msg != NULL ? msg->text_parts : NULL;
}

enum mime_data_source mime_message_attachment_source(const struct mime_message *msg, size_t i,
                                                     unsigned *part_id_r, const char **encoding_r)
{
	if (msg == NULL || i >= msg->n_attachments)
		return MIME_DATA_HERE;
	if (part_id_r != NULL)
		*part_id_r = msg->attachments[i].part_id;
	if (encoding_r != NULL)
		*encoding_r = msg->attachments[i].encoding;
	return msg->attachments[i].source;
}

void mime_message_keep_headers_only(struct mime_message *msg)
{
	g_clear_pointer(&msg->views[MIME_VIEW_BODY], g_bytes_unref);
	g_clear_pointer(&msg->views[MIME_VIEW_BODY_HTML], g_bytes_unref);
	for (size_t i = 0; i < msg->n_attachments; i++) {
		g_free(msg->attachments[i].name);
		g_free(msg->attachments[i].encoding);
		if (msg->attachments[i].data != NULL)
			g_bytes_unref(msg->attachments[i].data);
	}
	g_clear_pointer(&msg->attachments, g_free);
	msg->n_attachments = 0;
	if (msg->text_parts == NULL)
		msg->text_parts = g_array_new(FALSE, FALSE, sizeof(unsigned));
	msg->has_html = false;
}
