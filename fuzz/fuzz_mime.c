/* fuzz_mime.c — libFuzzer target for mime/: raw bytes → mime_message_parse → every view and
 * every attachment, checking the contract of mime.h on whatever comes out.
 *
 * Invariants (abort on violation): parsing never fails; text views are valid UTF-8 without NUL;
 * one-line views (subject … message-id) end in their only newline; views that may not be
 * absent are present; attachment names are safe directory entries and unique; body is not
 * empty when the message has readable text (the rule in mime.h, judged apart from mime/'s own
 * code path by tests/mime/readable.c); and every 16th input parses a second time to the very
 * same bytes (determinism).  GLib criticals are fatal:
 * they mean mime/ called GMime or GLib wrongly.
 */
#include "mime.h"
#include "mime-private.h"
#include "readable.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

	if (++runs % 16 == 0) {
		struct mime_message *again = NULL;
		CHECK(mime_message_parse(data, size, &again) == 0);
		check_same(msg, again);
		mime_message_free(again);
	}
	mime_message_free(msg);
	return 0;
}
