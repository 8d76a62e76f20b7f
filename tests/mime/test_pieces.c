/* test_pieces.c — a message from its pieces (mime_message_from_parts) against the same message
 * parsed whole (mime_message_parse), over every message of the golden and malformed corpora.
 *
 * The pieces are cut from the whole message here the way an IMAP server cuts them (RFC 3501
 * sections: each part's header block, and its body without the line break before the next
 * delimiter), by a deliberately plain splitter of its own: where it and GMime disagree about
 * the structure, mime_message_from_parts must say -EBADMSG (the caller then reads the message
 * whole), and where it accepts the pieces, everything it knows must be byte for byte what the
 * whole parse gives:
 *   - with every body given: every view and every attachment;
 *   - with no body given: the header views, which views exist, the attachment names in order,
 *     which part each attachment's bytes come from (decoding that part's body with
 *     mime_decoder, or taking it as it is, gives the whole parse's bytes), and which text
 *     parts body and body.html are made of;
 *   - with those text parts given: body and body.html too.
 * Each message is tried as stored and with every LF made CRLF (what IMAP servers send).
 */
#include "mime.h"
#include "mime-private.h"

#include <errno.h>
#include <string.h>

#include <gmime/gmime.h>

static const char *data_dir;

/* ---- a plain splitter, as a server would cut sections ---- */

struct cut {
	struct mime_part part;
	GPtrArray *children; /* struct cut* */
	const char *body;    /* the part's body in the message */
	size_t body_len;
	char *encoding; /* Content-Transfer-Encoding value, lowercased, or NULL */
	bool is_text;   /* text/ * (for picking which bodies to give) */
};

/* End of the header block at data (just after its blank line), or 0 when there is none. */
static size_t header_end(const char *data, size_t len)
{
	size_t pos = 0;

	if (len >= 2 && data[0] == '\r' && data[1] == '\n')
		return 2;
	if (len >= 1 && data[0] == '\n')
		return 1;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t next;
		if (nl == NULL)
			return 0;
		next = (size_t)(nl - data) + 1;
		if (next < len && data[next] == '\n')
			return next + 1;
		if (next + 1 < len && data[next] == '\r' && data[next + 1] == '\n')
			return next + 2;
		pos = next;
	}
	return 0;
}

static char *field(const char *h, size_t hlen, const char *name)
{
	char *block = g_strndup(h, hlen);
	char *found = NULL;
	char **lines = g_strsplit(block, "\n", -1);
	size_t nlen = strlen(name);

	for (char **l = lines; *l != NULL; l++) {
		if (g_ascii_strncasecmp(*l, name, nlen) == 0 && (*l)[nlen] == ':') {
			GString *v = g_string_new(*l + nlen + 1);
			for (char **c = l + 1; *c != NULL && (**c == ' ' || **c == '\t'); c++)
				g_string_append(v, *c);
			g_free(found);
			found = g_string_free(v, FALSE);
		}
	}
	g_strfreev(lines);
	g_free(block);
	if (found != NULL) {
		for (char *p = found; *p; p++)
			if (*p == '\r')
				*p = ' ';
		g_strstrip(found);
	}
	return found;
}

static void cut_free(struct cut *c)
{
	if (c == NULL)
		return;
	if (c->children != NULL)
		g_ptr_array_unref(c->children);
	g_free(c->part.parts);
	if (c->part.header != NULL)
		g_bytes_unref(c->part.header);
	g_free(c->encoding);
	g_free(c);
}

static unsigned next_id;

/* Cut data[0..len) (a part: header block then body); NULL when the splitter gives up. */
static struct cut *cut_part(const char *data, size_t len, int depth)
{
	size_t he = header_end(data, len);
	struct cut *c;
	char *ct, *enc;
	GMimeContentType *type = NULL;

	if (he == 0 || depth > 40)
		return NULL;
	c = g_new0(struct cut, 1);
	c->part.id = next_id++;
	c->part.header = g_bytes_new(data, he);
	c->body = data + he;
	c->body_len = len - he;
	ct = field(data, he, "Content-Type");
	enc = field(data, he, "Content-Transfer-Encoding");
	c->encoding = enc != NULL ? g_ascii_strdown(enc, -1) : NULL;
	g_free(enc);
	if (ct != NULL)
		type = g_mime_content_type_parse(NULL, ct);
	c->is_text = type == NULL || g_mime_content_type_is_type(type, "text", "*");
	if (type != NULL && g_mime_content_type_is_type(type, "multipart", "*") &&
	    g_mime_content_type_get_parameter(type, "boundary") != NULL) {
		char *delim =
		    g_strconcat("--", g_mime_content_type_get_parameter(type, "boundary"), NULL);
		size_t dl = strlen(delim), pos = 0, start = 0;
		bool open = false, closed = false;
		c->part.kind = MIME_PART_MULTIPART;
		c->children = g_ptr_array_new_with_free_func((GDestroyNotify)cut_free);
		while (pos < c->body_len && !closed) {
			const char *l = c->body + pos;
			const char *nl = memchr(l, '\n', c->body_len - pos);
			size_t next = nl != NULL ? (size_t)(nl - c->body) + 1 : c->body_len;
			if (next - pos >= dl && memcmp(l, delim, dl) == 0) {
				bool closing =
				    next - pos >= dl + 2 && l[dl] == '-' && l[dl + 1] == '-';
				if (open) {
					size_t end = pos;
					struct cut *child;
					/* the line break before the delimiter belongs to it */
					if (end > start && c->body[end - 1] == '\n')
						end--;
					if (end > start && c->body[end - 1] == '\r')
						end--;
					child = cut_part(c->body + start, end - start, depth + 1);
					if (child == NULL) {
						g_free(delim);
						g_free(ct);
						g_object_unref(type);
						cut_free(c);
						return NULL;
					}
					g_ptr_array_add(c->children, child);
				}
				open = !closing;
				closed = closing;
				start = next;
			}
			pos = next;
		}
		if (open && start <= c->body_len) {
			struct cut *child =
			    cut_part(c->body + start, c->body_len - start, depth + 1);
			if (child != NULL)
				g_ptr_array_add(c->children, child);
		}
		g_free(delim);
		c->part.n_parts = c->children->len;
		c->part.parts = g_new0(struct mime_part, c->children->len + 1);
	} else if (type != NULL &&
	           (g_mime_content_type_is_type(type, "message", "rfc822") ||
	            g_mime_content_type_is_type(type, "message", "global")) &&
	           (c->encoding == NULL || strcmp(c->encoding, "7bit") == 0 ||
	            strcmp(c->encoding, "8bit") == 0 || strcmp(c->encoding, "binary") == 0)) {
		size_t ihe = header_end(c->body, c->body_len);
		c->part.kind = MIME_PART_MESSAGE;
		c->children = g_ptr_array_new_with_free_func((GDestroyNotify)cut_free);
		if (ihe > 0) {
			struct cut *inner = g_new0(struct cut, 1);
			inner->part.id = next_id++;
			inner->part.header = g_bytes_new(c->body, ihe);
			g_ptr_array_add(c->children, inner);
		}
		c->part.n_parts = c->children->len;
		c->part.parts = g_new0(struct mime_part, c->children->len + 1);
	} else {
		c->part.kind = MIME_PART_LEAF;
	}
	if (type != NULL)
		g_object_unref(type);
	g_free(ct);
	return c;
}

/* Fill the mime_part arrays from the cut tree; give the bodies wanted (give: NULL = none,
 * "all", or a set of ids). */
static void lay_out(struct cut *c, bool all, GHashTable *ids)
{
	if (c->part.kind == MIME_PART_LEAF) {
		bool give = all || (ids != NULL &&
		                    g_hash_table_contains(ids, GUINT_TO_POINTER(c->part.id)));
		c->part.body = give ? g_bytes_new_static(c->body, c->body_len) : NULL;
	}
	for (guint i = 0; c->children != NULL && i < c->children->len; i++) {
		struct cut *k = c->children->pdata[i];
		lay_out(k, all, ids);
		c->part.parts[i] = k->part;
	}
}

static void drop_bodies(struct cut *c)
{
	if (c->part.body != NULL)
		g_bytes_unref(c->part.body);
	c->part.body = NULL;
	for (guint i = 0; c->children != NULL && i < c->children->len; i++)
		drop_bodies(c->children->pdata[i]);
}

static const struct cut *find_cut(const struct cut *c, unsigned id)
{
	if (c->part.id == id)
		return c;
	for (guint i = 0; c->children != NULL && i < c->children->len; i++) {
		const struct cut *f = find_cut(c->children->pdata[i], id);
		if (f != NULL)
			return f;
	}
	return NULL;
}

/* ---- comparing ---- */

static void assert_same_bytes(GBytes *a, GBytes *b, const char *what)
{
	if (a == NULL || b == NULL) {
		if (a != b)
			g_error("%s: present on one side only", what);
		return;
	}
	if (!g_bytes_equal(a, b))
		g_error("%s differs: %zu bytes whole, %zu from parts", what, g_bytes_get_size(a),
		        g_bytes_get_size(b));
}

static GBytes *decode_part(const struct cut *c, const char *encoding)
{
	struct mime_decoder *d = mime_decoder_new(encoding);
	GByteArray *out = g_byte_array_new();

	/* in two steps, cut in the middle: decoding must not depend on how input arrives */
	mime_decoder_step(d, c->body, c->body_len / 2, out);
	mime_decoder_step(d, c->body + c->body_len / 2, c->body_len - c->body_len / 2, out);
	mime_decoder_finish(d, out);
	mime_decoder_free(d);
	return g_byte_array_free_to_bytes(out);
}

struct tally {
	unsigned compared, refused, headers_alone;
};

static void compare_message(const char *name, const char *data, size_t len, struct tally *t)
{
	struct mime_message *whole = NULL, *bare = NULL, *full = NULL, *texts = NULL;
	struct cut *root;
	int ret;

	g_assert_cmpint(mime_message_parse(data, len, &whole), ==, 0);
	next_id = 1;
	root = cut_part(data, len, 0);
	if (root == NULL) {
		mime_message_free(whole);
		return;
	}
	/* 0. the header alone: the header views */
	{
		struct mime_message *hdr = NULL;
		ret = mime_message_from_header(root->part.header, &hdr);
		if (ret == 0) {
			static const enum mime_view hv[] = {MIME_VIEW_SUBJECT, MIME_VIEW_FROM,
			                                    MIME_VIEW_TO,      MIME_VIEW_DATE,
			                                    MIME_VIEW_CC,      MIME_VIEW_MESSAGE_ID,
			                                    MIME_VIEW_HEADERS};
			for (size_t i = 0; i < G_N_ELEMENTS(hv); i++)
				assert_same_bytes(mime_message_view(whole, hv[i]),
				                  mime_message_view(hdr, hv[i]), name);
			g_assert_cmpint(mime_message_date(whole), ==, mime_message_date(hdr));
			g_assert_true(mime_message_has_view(hdr, MIME_VIEW_BODY));
			g_assert_null(mime_message_view(hdr, MIME_VIEW_BODY));
			g_assert_cmpuint(mime_message_n_attachments(hdr), ==, 0);
			t->headers_alone++;
		} else {
			g_assert_cmpint(ret, ==, -EBADMSG);
		}
		mime_message_free(hdr);
	}
	/* 1. no body given */
	lay_out(root, false, NULL);
	ret = mime_message_from_parts(&root->part, &bare);
	if (ret == -EBADMSG) {
		g_test_message("%s: pieces refused (read whole)", name);
		t->refused++;
		goto out;
	}
	g_assert_cmpint(ret, ==, 0);
	for (int v = 0; v < MIME_VIEW_COUNT; v++) {
		char *what = g_strdup_printf("%s: view %s", name, mime_view_name(v));
		if (v == MIME_VIEW_BODY || v == MIME_VIEW_BODY_HTML) {
			if (mime_message_text_parts(bare) == NULL)
				assert_same_bytes(mime_message_view(whole, v),
				                  mime_message_view(bare, v), what);
			if (mime_message_has_view(bare, v) != (mime_message_view(whole, v) != NULL))
				g_error("%s: exists %d from parts", what,
				        mime_message_has_view(bare, v));
		} else {
			assert_same_bytes(mime_message_view(whole, v), mime_message_view(bare, v),
			                  what);
		}
		g_free(what);
	}
	g_assert_cmpint(mime_message_date(whole), ==, mime_message_date(bare));
	g_assert_cmpuint(mime_message_n_attachments(whole), ==, mime_message_n_attachments(bare));
	for (size_t i = 0; i < mime_message_n_attachments(whole); i++) {
		unsigned id = 0;
		const char *enc = NULL;
		enum mime_data_source src = mime_message_attachment_source(bare, i, &id, &enc);
		GBytes *got;
		const struct cut *c;
		char *what = g_strdup_printf("%s: attachment %zu", name, i);

		g_assert_cmpstr(mime_message_attachment_name(whole, i), ==,
		                mime_message_attachment_name(bare, i));
		if (src == MIME_DATA_HERE) {
			got = g_bytes_ref(mime_message_attachment_data(bare, i));
		} else {
			g_assert_null(mime_message_attachment_data(bare, i));
			c = find_cut(root, id);
			g_assert_nonnull(c);
			got = src == MIME_DATA_EXACT ? g_bytes_new(c->body, c->body_len)
			                             : decode_part(c, enc);
		}
		assert_same_bytes(mime_message_attachment_data(whole, i), got, what);
		g_bytes_unref(got);
		g_free(what);
	}
	/* 2. the text parts it asks for given: body and body.html known and the same */
	if (mime_message_text_parts(bare) != NULL) {
		const GArray *ids = mime_message_text_parts(bare);
		GHashTable *set = g_hash_table_new(g_direct_hash, g_direct_equal);
		for (guint i = 0; i < ids->len; i++)
			g_hash_table_add(set, GUINT_TO_POINTER(g_array_index(ids, unsigned, i)));
		drop_bodies(root);
		lay_out(root, false, set);
		g_hash_table_unref(set);
		g_assert_cmpint(mime_message_from_parts(&root->part, &texts), ==, 0);
		g_assert_null(mime_message_text_parts(texts));
		assert_same_bytes(mime_message_view(whole, MIME_VIEW_BODY),
		                  mime_message_view(texts, MIME_VIEW_BODY), name);
		assert_same_bytes(mime_message_view(whole, MIME_VIEW_BODY_HTML),
		                  mime_message_view(texts, MIME_VIEW_BODY_HTML), name);
	}
	/* 3. every body given: everything the same, all data here */
	drop_bodies(root);
	lay_out(root, true, NULL);
	g_assert_cmpint(mime_message_from_parts(&root->part, &full), ==, 0);
	for (int v = 0; v < MIME_VIEW_COUNT; v++)
		assert_same_bytes(mime_message_view(whole, v), mime_message_view(full, v), name);
	for (size_t i = 0; i < mime_message_n_attachments(whole); i++) {
		g_assert_cmpstr(mime_message_attachment_name(whole, i), ==,
		                mime_message_attachment_name(full, i));
		if (mime_message_attachment_source(full, i, NULL, NULL) == MIME_DATA_HERE)
			assert_same_bytes(mime_message_attachment_data(whole, i),
			                  mime_message_attachment_data(full, i), name);
	}
	t->compared++;
out:
	drop_bodies(root);
	mime_message_free(whole);
	mime_message_free(bare);
	mime_message_free(full);
	mime_message_free(texts);
	cut_free(root);
}

static char *to_crlf(const char *data, size_t len, size_t *len_r)
{
	GString *s = g_string_sized_new(len + len / 20);

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			g_string_append_c(s, '\r');
		g_string_append_c(s, data[i]);
	}
	*len_r = s->len;
	return g_string_free(s, FALSE);
}

static void corpus(const char *sub, struct tally *t)
{
	char *dir = g_build_filename(data_dir, sub, NULL);
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *e;

	g_assert_nonnull(d);
	while ((e = g_dir_read_name(d)) != NULL) {
		char *path;
		gchar *data, *crlf;
		gsize len;
		size_t crlf_len;

		if (!g_str_has_suffix(e, ".eml"))
			continue;
		path = g_build_filename(dir, e, NULL);
		g_assert_true(g_file_get_contents(path, &data, &len, NULL));
		compare_message(e, data, len, t);
		crlf = to_crlf(data, len, &crlf_len);
		compare_message(e, crlf, crlf_len, t);
		g_free(crlf);
		g_free(data);
		g_free(path);
	}
	g_dir_close(d);
	g_free(dir);
}

static void test_corpora(void)
{
	struct tally t = {0, 0, 0};

	corpus("messages", &t);
	corpus("malformed/messages", &t);
	g_test_message("%u compared, %u refused, %u header views from the header alone", t.compared,
	               t.refused, t.headers_alone);
	g_assert_cmpuint(t.headers_alone, >=, 30);
	/* the splitter is plain, but it reads every well-formed message as GMime does */
	g_assert_cmpuint(t.compared, >=, 30);
}

/* ---- hand-made cases ---- */

static struct mime_part leaf(const char *header, const char *body, unsigned id)
{
	struct mime_part p = {MIME_PART_LEAF,
	                      g_bytes_new_static(header, strlen(header)),
	                      body != NULL ? g_bytes_new_static(body, strlen(body)) : NULL,
	                      NULL,
	                      0,
	                      id};
	return p;
}

static void test_refusals(void)
{
	struct mime_message *m = NULL;
	struct mime_part kids[1];
	struct mime_part root;

	/* a header block without its blank line */
	root = leaf("Subject: x\r\n", "text\r\n", 1);
	g_assert_cmpint(mime_message_from_parts(&root, &m), ==, -EBADMSG);
	/* a header that runs into a line that is no field: the whole message gets repaired */
	root = leaf("Subject: x\r\nthis is text\r\n\r\n", "more\r\n", 1);
	g_assert_cmpint(mime_message_from_parts(&root, &m), ==, -EBADMSG);
	/* described as a leaf, but its Content-Type says multipart with a boundary its body uses */
	root = leaf("Content-Type: multipart/mixed; boundary=b\r\n\r\n",
	            "--b\r\n\r\nhi\r\n--b--\r\n", 1);
	g_assert_cmpint(mime_message_from_parts(&root, &m), ==, -EBADMSG);
	/* a multipart without a boundary parameter */
	kids[0] = leaf("Content-Type: text/plain\r\n\r\n", "hi", 2);
	root = (struct mime_part){MIME_PART_MULTIPART,
	                          g_bytes_new_static("Content-Type: multipart/mixed\r\n\r\n", 33),
	                          NULL,
	                          kids,
	                          1,
	                          1};
	g_assert_cmpint(mime_message_from_parts(&root, &m), ==, -EBADMSG);
	/* a multipart without parts */
	root = (struct mime_part){
	    MIME_PART_MULTIPART,
	    g_bytes_new_static("Content-Type: multipart/mixed; boundary=b\r\n\r\n", 45),
	    NULL,
	    kids,
	    0,
	    1};
	g_assert_cmpint(mime_message_from_parts(&root, &m), ==, -EBADMSG);
	/* a uuencoded attachment left out */
	kids[0] = leaf("Content-Type: application/octet-stream\r\n"
	               "Content-Transfer-Encoding: x-uuencode\r\n\r\n",
	               NULL, 2);
	root = (struct mime_part){
	    MIME_PART_MULTIPART,
	    g_bytes_new_static("Content-Type: multipart/mixed; boundary=b\r\n\r\n", 45),
	    NULL,
	    kids,
	    1,
	    1};
	g_assert_cmpint(mime_message_from_parts(&root, &m), ==, -EBADMSG);
	g_assert_null(m);
}

/* A body that happens to look like a marker of another message is text, not a part left out:
 * every message gets markers of its own. */
static void test_marker_is_private(void)
{
	struct mime_message *m = NULL;
	struct mime_part root =
	    leaf("Subject: t\r\n\r\n", "imapfs-left-out-0000000000000000-7\r\n", 1);

	g_assert_cmpint(mime_message_from_parts(&root, &m), ==, 0);
	g_assert_null(mime_message_text_parts(m));
	g_assert_cmpstr(g_bytes_get_data(mime_message_view(m, MIME_VIEW_BODY), NULL), ==,
	                "imapfs-left-out-0000000000000000-7\n");
	mime_message_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	data_dir = g_getenv("MIME_TEST_DATA");
	if (data_dir == NULL)
		data_dir = MIME_TEST_DATA_DEFAULT;
	mime_init();
	g_test_add_func("/pieces/corpora", test_corpora);
	g_test_add_func("/pieces/refusals", test_refusals);
	g_test_add_func("/pieces/marker_is_private", test_marker_is_private);
	return g_test_run();
}
