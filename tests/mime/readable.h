/* readable.h — an independent judge of mime.h's rule "body is never empty when the message has
 * non-blank text outside its headers in a part that is textual or untyped", for the unit tests
 * (tests/mime/test_mime.c) and the fuzz target (fuzz/fuzz_mime.c).
 */
#ifndef IMAPFS_TESTS_MIME_READABLE_H
#define IMAPFS_TESTS_MIME_READABLE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

/* True when len bytes of raw message (borrowed) certainly have a readable part with non-blank
 * text, so that mime/'s body view must not be empty.  False when they have none, and also
 * wherever the judge makes no claim (see readable.c). */
bool mime_test_has_readable_text(const void *data, size_t len);

/* A leaf part as the judge splits a message: its body — the bytes after its header block up
 * to the line break before the next delimiter (RFC 2046 §5.1.1), borrowed from the message —
 * and the value of its Content-Transfer-Encoding field (NULL when it has none). */
struct mime_test_leaf {
	const char *body;
	size_t len;
	char *encoding;
};

/* Every leaf part of len bytes of raw message (forwarded messages not descended into), in
 * MIME order, by the rules of mime.h and apart from mime/'s code path: a GArray of struct
 * mime_test_leaf (new; g_array_unref frees it whole), or NULL where the judge makes no claim
 * about the structure (see readable.c, and a multipart in which no part is found). */
GArray *mime_test_leaves(const void *data, size_t len);

/* The same for well-formed mail only — printable ASCII, tabs and LF or CRLF line breaks, every
 * header block ended by its blank line, no mbox envelope lines — NULL for anything else.  The
 * fuzz target asks this one: on such mail RFC 2045/2046 alone fix every leaf, while the
 * repairs of malformed mail are pinned by the corpus files that test_mime.c checks with
 * mime_test_leaves. */
GArray *mime_test_leaves_strict(const void *data, size_t len);

#endif /* IMAPFS_TESTS_MIME_READABLE_H */
