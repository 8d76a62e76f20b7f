/* fuzz_mime.c — libFuzzer target for mime/: raw bytes → mime_message_parse → every view and
 * every attachment, checking the contract of mime.h on whatever comes out.
 *
 * Invariants (abort on violation): parsing never fails; text views are valid UTF-8 without NUL;
 * one-line views (subject … message-id) end in their only newline; views that may not be
 * absent are present; attachment names are safe directory entries and unique; body is not
 * empty when the message has readable text (the rule in mime.h, judged apart from mime/'s own
 * code path by tests/mime/readable.c); and every 16th input parses a second time to the very
 * same bytes (determinism).  Issue 21's rules: the transfer decoder (decode.c) gives the same
 * bytes however its input is split, for every encoding; header text decodes (rfc2047.c) to
 * valid UTF-8 and its address form still parses; and every attachment is the transfer-decoded
 * body of a leaf part as readable.c splits the message (no byte the part does not have, none
 * missing), wherever that judge makes a claim.  GLib criticals are fatal: they mean mime/
 * called GMime or GLib wrongly.
 */
#include "mime.h"
#include "mime-private.h"
#include "readable.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static void check_view(const struct mime_message *msg, enum mime_view v)
{
	GBytes *b = mime_message_view(msg, v);
	gsize len;
	const char *p;

	if (b == NULL) {
		CHECK(v == MIME_VIEW_CC || v == MIME_VIEW_MESSAGE_ID || v == MIME_VIEW_BODY_HTML);
		return;
	}
	p = g_bytes_get_data(b, &len);
	/* an explicit length makes GLib reject embedded NUL as well */
	CHECK(len == 0 || g_utf8_validate(p, (gssize)len, NULL));
	if (v <= MIME_VIEW_MESSAGE_ID) {
		CHECK(len >= 1 && p[len - 1] == '\n');
		CHECK(memchr(p, '\n', len - 1) == NULL);
	}
}

static void check_same(const struct mime_message *a, const struct mime_message *b)
{
	for (int v = 0; v < MIME_VIEW_COUNT; v++) {
		GBytes *x = mime_message_view(a, v), *y = mime_message_view(b, v);
		CHECK((x == NULL) == (y == NULL));
		CHECK(x == NULL || g_bytes_equal(x, y));
	}
	CHECK(mime_message_date(a) == mime_message_date(b));
	CHECK(mime_message_n_attachments(a) == mime_message_n_attachments(b));
	for (size_t i = 0; i < mime_message_n_attachments(a); i++) {
		CHECK(strcmp(mime_message_attachment_name(a, i),
		             mime_message_attachment_name(b, i)) == 0);
		CHECK(g_bytes_equal(mime_message_attachment_data(a, i),
		                    mime_message_attachment_data(b, i)));
	}
}

static GByteArray *decode(const char *encoding, const uint8_t *data, size_t size, size_t split)
{
	struct mime_decoder *d = mime_decoder_new(encoding);
	GByteArray *out = g_byte_array_new();

	mime_decoder_step(d, data, split, out);
	mime_decoder_step(d, data + split, size - split, out);
	mime_decoder_finish(d, out);
	mime_decoder_free(d);
	return out;
}

/* decode.c: the output does not depend on where the input is split. */
static void check_decoder(const uint8_t *data, size_t size)
{
	static const char *const encodings[] = {"base64", "quoted-printable", "x-uuencode", NULL};
	size_t split = size > 0 ? data[0] % (size + 1) : 0;

	for (size_t e = 0; e < G_N_ELEMENTS(encodings); e++) {
		GByteArray *whole = decode(encodings[e], data, size, size);
		GByteArray *half = decode(encodings[e], data, size, size / 2);
		GByteArray *some = decode(encodings[e], data, size, split);
		/* an empty GByteArray may hold data == NULL: memcmp only when there are bytes */
		CHECK(whole->len == half->len &&
		      (whole->len == 0 || memcmp(whole->data, half->data, whole->len) == 0));
		CHECK(whole->len == some->len &&
		      (whole->len == 0 || memcmp(whole->data, some->data, whole->len) == 0));
		/* base64 and quoted-printable never make more bytes than they are given, the
		 * identity gives them back (a short uuencoded line may claim more) */
		if (e < 2)
			CHECK(whole->len <= size);
		if (encodings[e] == NULL)
			CHECK(whole->len == size &&
			      (size == 0 || memcmp(whole->data, data, size) == 0));
		g_byte_array_unref(whole);
		g_byte_array_unref(half);
		g_byte_array_unref(some);
	}
}

/* rfc2047.c on the input as one header value. */
static void check_header_text(const uint8_t *data, size_t size)
{
	char *raw = g_strndup((const char *)data, MIN(size, 4096));
	char *text = mime_header_decode(raw, NULL);
	char *words = mime_header_normalize_words(raw, NULL);
	InternetAddressList *list;

	CHECK(g_utf8_validate(text, -1, NULL));
	list = internet_address_list_parse(NULL, words);
	if (list != NULL)
		g_object_unref(list);
	g_free(words);
	g_free(text);
	g_free(raw);
}

/* Every attachment of well-formed mail is the decoded body of a leaf part as the judge splits
 * the message. */
static void check_attachments(const struct mime_message *msg, const uint8_t *data, size_t size)
{
	GArray *leaves = mime_test_leaves_strict(data, size);

	for (size_t a = 0; leaves != NULL && a < mime_message_n_attachments(msg); a++) {
		gsize n;
		const void *p = g_bytes_get_data(mime_message_attachment_data(msg, a), &n);
		bool found = false;
		for (guint l = 0; l < leaves->len && !found; l++) {
			const struct mime_test_leaf *leaf =
			    &g_array_index(leaves, struct mime_test_leaf, l);
			GByteArray *out = decode(leaf->encoding, (const uint8_t *)leaf->body,
			                         leaf->len, leaf->len);
			found = out->len == n && (n == 0 || memcmp(out->data, p, n) == 0);
			g_byte_array_unref(out);
		}
		CHECK(found);
	}
	if (leaves != NULL)
		g_array_unref(leaves);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool initialized;
	static unsigned long runs;
	struct mime_message *msg = NULL;
	GHashTable *names;

	if (!initialized) {
		mime_init();
		g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR);
		initialized = true;
	}
	CHECK(mime_message_parse(data, size, &msg) == 0);
	CHECK(msg != NULL);
	for (int v = 0; v < MIME_VIEW_COUNT; v++)
		check_view(msg, v);
	/* malformed mail never loses its text */
	if (mime_test_has_readable_text(data, size))
		CHECK(g_bytes_get_size(mime_message_view(msg, MIME_VIEW_BODY)) > 0);

	names = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t i = 0; i < mime_message_n_attachments(msg); i++) {
		const char *name = mime_message_attachment_name(msg, i);
		CHECK(mime_name_is_safe(name));
		CHECK(!g_hash_table_contains(names, name));
		g_hash_table_add(names, (gpointer)name);
		CHECK(mime_message_attachment_data(msg, i) != NULL);
	}
	g_hash_table_unref(names);
	check_attachments(msg, data, size);
	check_decoder(data, size);
	check_header_text(data, size);

	if (++runs % 16 == 0) {
		struct mime_message *again = NULL;
		CHECK(mime_message_parse(data, size, &again) == 0);
		check_same(msg, again);
		mime_message_free(again);
	}
	mime_message_free(msg);
	return 0;
}
