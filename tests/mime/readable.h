/* readable.h — an independent judge of mime.h's rule "body is never empty when the message has
 * non-blank text outside its headers in a part that is textual or untyped", for the unit tests
 * (tests/mime/test_mime.c) and the fuzz target (fuzz/fuzz_mime.c).
 */
#ifndef IMAPFS_TESTS_MIME_READABLE_H
#define IMAPFS_TESTS_MIME_READABLE_H

#include <stdbool.h>
#include <stddef.h>

/* True when len bytes of raw message (borrowed) certainly have a readable part with non-blank
 * text, so that mime/'s body view must not be empty.  False when they have none, and also
 * wherever the judge makes no claim (see readable.c). */
bool mime_test_has_readable_text(const void *data, size_t len);

#endif /* IMAPFS_TESTS_MIME_READABLE_H */
