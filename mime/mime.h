/* mime.h — the whole public contract of imapfs's decoded-views library.
 *
 * Given the raw bytes of one message, mime/ produces the files a user sees in a message
 * directory: subject, from, to, cc, date, message-id, headers, body, body.html and
 * attachments/NAME — decoded to UTF-8 (RFC 2047/2231, transfer encodings, legacy charsets).  It
 * knows nothing of IMAP or FUSE and depends on GMime (and GLib, libxml2 for HTML rendering).
 *
 * Every view is computed when the message is parsed, so its exact size is known before anyone
 * reads it (the filesystem reports exact st_size), and the output is a pure function of the input
 * bytes (deterministic).  A struct mime_message is immutable once returned and may be read from
 * any number of threads at once.
 *
 * Call mime_init() once per process before anything else (it initialises GMime).
 */
#ifndef IMAPFS_MIME_H
#define IMAPFS_MIME_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

void mime_init(void);

enum mime_view {
	MIME_VIEW_SUBJECT = 0, /* "value\n"; "\n" when the header is missing */
	MIME_VIEW_FROM,        /* "Name <addr>, Name <addr>\n"; "\n" when missing */
	MIME_VIEW_TO,          /* as FROM */
	MIME_VIEW_DATE,        /* the Date header as written (unfolded) + "\n"; "\n" when missing */
	MIME_VIEW_CC,          /* as FROM; absent (NULL) when the header is missing */
	MIME_VIEW_MESSAGE_ID,  /* "value\n"; absent when missing */
	MIME_VIEW_HEADERS,     /* the whole header block, unfolded and decoded, "Name: value\n" each */
	MIME_VIEW_BODY,        /* readable text in UTF-8; always present (may be empty) */
	MIME_VIEW_BODY_HTML,   /* the HTML part in UTF-8; absent when there is none */
	MIME_VIEW_COUNT
};

struct mime_message;

/* Parse len bytes at data (borrowed: copied or not referenced after return).  Never fails on
 * malformed mail — it decodes what it can — so the only error is -ENOMEM/-EINVAL for impossible
 * arguments.  *msg_r is new (mime_message_free). */
int mime_message_parse(const void *data, size_t len, struct mime_message **msg_r);

void mime_message_free(struct mime_message *msg); /* NULL is a no-op */

/* The bytes of one view, or NULL when the view is absent for this message (see the enum).
 * Borrowed: valid while msg lives. */
GBytes *mime_message_view(const struct mime_message *msg, enum mime_view view);

/* The file name a view has in the message directory ("subject", "body.html", …).  Static. */
const char *mime_view_name(enum mime_view view);

/* The Date header parsed as seconds since the epoch, or INT64_MIN when missing/unparsable. */
int64_t mime_message_date(const struct mime_message *msg);

/* Attachments: every attachment and non-text inline part, in MIME order.  Names are UTF-8, safe
 * as a directory entry (no '/', no NUL, not "." or "..", 1..255 bytes, cut on a UTF-8 boundary)
 * and unique within the message.  Both results are borrowed (valid while msg lives). */
size_t mime_message_n_attachments(const struct mime_message *msg);
const char *mime_message_attachment_name(const struct mime_message *msg, size_t i);
GBytes *mime_message_attachment_data(const struct mime_message *msg, size_t i);

#endif /* IMAPFS_MIME_H */
