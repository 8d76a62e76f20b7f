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
 * any number of threads at once; mime_message_parse() may run in several threads at once.
 *
 * What is shown (all text views are valid UTF-8 — invalid bytes become U+FFFD — with LF line
 * ends; header views are one line each):
 *  - Header values are RFC 2047-decoded in any charset iconv knows, with GMime's workarounds
 *    for broken mail (GMIME_RFC_COMPLIANCE_LOOSE: encoded words inside quotes or words, missing
 *    spaces, blanks inside a word).  Each encoded word decodes on its own (RFC 2047 §6.2; its
 *    base64 by the rules under "Transfer encodings"), and only then are the bytes of adjacent
 *    words of one charset joined, so a character split across two words comes out whole;
 *    white space between adjacent words is dropped; what cannot be decoded is U+FFFD, as in
 *    bodies (rfc2047.c; display names too).  Raw 8-bit header bytes are read as UTF-8 if
 *    valid, else in the charset the message's first text part declares (so a Korean mail with
 *    raw EUC-KR headers reads right), else windows-1252.
 *  - Charset labels are widened to the supersets real mail uses (iso-8859-1 → windows-1252,
 *    euc-kr → CP949, gb2312 → GB18030, shift_jis → CP932, iso-2022-jp → with the NEC and IBM
 *    rows of CP50220/CP50221 (①, №, ㈱ …) and half-width katakana, …); an unknown or missing
 *    label means UTF-8 if the bytes are valid UTF-8, else windows-1252.  Text is never
 *    dropped: what cannot be decoded is U+FFFD (in ISO-2022-JP the set in force stays, so the
 *    text after it still reads).
 *  - body: in multipart/alternative the plain alternative (text/plain: an alternative of
 *    another text type — text/enriched, Apple's text/watch-html — is shown only when no
 *    alternative is plain or HTML); in multipart/mixed (and every other multipart, e.g.
 *    signed, related) every inline text part in order, separated by a blank line.  When there is no non-blank plain text, the text of the HTML part(s) rendered by
 *    libxml2's HTML parser (scripts, styles and hidden elements dropped, entities decoded,
 *    blocks and <br> as line breaks, links as "text <url>").  A multipart whose boundary is
 *    missing or wrong is re-read with the boundary its body uses, else shown as text.
 *  - body.html: the HTML part(s) converted to UTF-8 (several inline HTML parts are
 *    concatenated); starts with a UTF-8 BOM when converted from another charset, so that a
 *    <meta charset> inside cannot make a browser misread it.
 *  - attachments: every part that is not displayed text — non-text parts (inline or not), text
 *    parts with Content-Disposition: attachment, text/calendar (a nameless one is
 *    "invite.ics"), alternatives' images; the signature part of multipart/signed too.  Data is
 *    transfer-decoded (see "Transfer encodings") but not charset-converted.  A forwarded
 *    message/rfc822 part is NAME.eml holding its exact bytes from the input — the part's body,
 *    also when it has no header block of its own ("[original message goes here]" in a delivery
 *    report) — (NAME: its file name, else its Subject, else "forwarded-N", N counting
 *    forwarded parts from 1).  A nameless part is named from its
 *    type: "part-N.EXT", N its 1-based position in the attachment list (image/png →
 *    "part-2.png").  Duplicates become "NAME (2).EXT", "NAME (3).EXT", … in MIME order.
 *
 * Malformed mail (what Thunderbird, mutt and Python's email package show, where they agree):
 *  - A header block — the message's, or a MIME part's after its boundary — ends at its blank
 *    line or at the first line that cannot be a header field: neither "name:" with a valid
 *    field name (printable US-ASCII but ':', RFC 5322; blanks before the colon are obsolete
 *    syntax and allowed) nor a continuation (a line starting with a blank, after a field).
 *    That line starts the body.  So a message or part with no header at all is all body.  One
 *    exception: an mbox "From " line followed by a header field is skipped — at the very
 *    start, or anywhere in the block (a stray envelope line after other fields; Python's email
 *    package and nodemailer read on too); followed by anything else it starts the body.  (GMime
 *    would skip such lines and read fields until a blank line; mime/ hands it a copy with the
 *    blank line in place, and well-formed mail untouched.  Bodies of leaf parts and forwarded
 *    messages are never changed: NAME.eml still holds the exact input bytes.)
 *  - A part whose Content-Type is not "type/subtype" ("text; charset=…", "text/", "image") is
 *    text/plain (RFC 2045 §5.2), with its charset parameter if it has one — in a
 *    multipart/digest it is message/rfc822 (RFC 2046 §5.1.5), as a part without Content-Type
 *    is.  With several Content-Type fields the last one counts (as in GMime's parser).  A valid
 *    but unknown type ("foo/bar") is an attachment (RFC 2046 §4).
 *  - The rule: body is never empty when the message has non-blank text outside its headers in
 *    a part that is textual or untyped.  Precisely: body is non-empty whenever a readable part
 *    has text that is not all blank once transfer-decoded and converted to UTF-8 (for
 *    text/html: once rendered).  A readable part is a leaf part of type "text/..." (or without a
 *    valid type, outside a digest), not text/calendar, not Content-Disposition: attachment,
 *    not inside a forwarded message (its text is in NAME.eml), and within the limits below.
 *    The text of a multipart in which no part is found (its boundary missing or never used) is
 *    readable as well, unless it re-reads as parts with the boundary its lines use.  When the
 *    parts chosen for display are blank (a blank last alternative), the other readable parts
 *    make the body.  Preamble and epilogue of a multipart that has parts are not shown
 *    (RFC 2046 §5.1.1; mail readers ignore them too).  One exception: GMime keeps preamble and
 *    epilogue as C strings, so in a multipart without parts the text after a NUL byte (which
 *    RFC 5322 forbids anyway) is lost.  The fuzz target checks this rule.
 *
 * Transfer encodings (decode.c: mime_decoder below follows the same rules, so a part fetched
 * and decoded on its own gives the very bytes mime_message_parse gives):
 *  - A leaf part's body is its BODY[section] (RFC 3501): the bytes after its header block up
 *    to the line break before the next delimiter.  That line break (CRLF, or LF alone) belongs
 *    to the delimiter (RFC 2046 §5.1.1), whatever the line break the delimiter line itself
 *    ends in — also when the delimiter is the last line of the input and has none.
 *  - base64: characters outside its alphabet (line breaks, blanks, junk) are skipped; the
 *    first '=' ends the data; a last group of 2 or 3 characters without its padding keeps the
 *    1 or 2 bytes it carries (as Python's email package and nodemailer do); a single character
 *    left over carries no byte.
 *  - quoted-printable: "=XY" (hex digits, either case) is that byte; "=" before a line break
 *    (LF or CRLF), or at the very end of the body, is a soft line break; any other "=" stays
 *    as written, and what follows it is read again as text.
 *  - uuencode (x-uuencode, x-uue): the lines after the first line starting "begin ", up to a
 *    line of length 0 or "end" (nothing before the begin line is output).
 *  - Any other value (7bit, 8bit, binary, unknown) or none: the bytes as they are.
 *
 * Limits (so that hostile mail can neither crash nor hang nor exhaust memory):
 *  - multiparts nested more than 32 levels deep are not descended into (GMime itself stops at
 *    1024 nested multiparts and 512 nested messages; its parser needs no deep stack for that);
 *  - at most 10,000 MIME parts are read (the message is treated as ending before the next);
 *    at most 1,000 header fields per header block and 100,000 per message are kept (later
 *    ones are ignored); a Content-* or address field is cut at 256 KiB, and all of them
 *    together at 1 MiB.  Other header fields (a Subject of several MB) are kept whole.
 *  - Memory while parsing is about: the input (borrowed, not copied — except that a message
 *    whose header block runs on is copied once with the missing blank lines, and one over the
 *    limits above once more without the excess) + GMime's tree (a few hundred
 *    bytes per header field and ~2 KB per part: at most ~100 MB under the limits, typically
 *    well under 1 MB; plus a few copies of the header text — raw, unfolded, decoded: a 12 MB
 *    header block peaked at ~200 MB) + the decoded views being built (+ libxml2's tree of an
 *    HTML part that is rendered: ~4× its size).  Afterwards the struct holds only the views:
 *    the text views (≲ 3× the text parts' size for legacy-charset → UTF-8 growth), body.html,
 *    and every attachment's decoded bytes (≤ the input size); all GMime memory is
 *    released before mime_message_parse returns.  Time is linear in the input (tens of MB/s).
 *
 * Call mime_init() once per process before anything else (it initialises GMime and libxml2;
 * it is idempotent and thread-safe, and mime_message_parse calls it too).
 */
#ifndef IMAPFS_MIME_H
#define IMAPFS_MIME_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void mime_init(void);

enum mime_view {
	MIME_VIEW_SUBJECT = 0, /* "value\n"; "\n" when the header is missing */
	MIME_VIEW_FROM,        /* "Name <addr>, Name <addr>\n" ("addr" alone when there is no
	                          name; a name with , ; < > or " is quoted; a group is
	                          "Group: a, b;"); "\n" when missing */
	MIME_VIEW_TO,          /* as FROM; every To header, in order */
	MIME_VIEW_DATE,        /* the Date header as written (unfolded) + "\n"; "\n" when missing */
	MIME_VIEW_CC,          /* as FROM; absent (NULL) when the header is missing */
	MIME_VIEW_MESSAGE_ID,  /* "value\n" as written (with its <>); absent when missing */
	MIME_VIEW_HEADERS, /* the whole header block, unfolded and decoded, "Name: value\n" each */
	MIME_VIEW_BODY,    /* readable text in UTF-8; always present; empty only when the
	                      message has no readable text (see "Malformed mail" above) */
	MIME_VIEW_BODY_HTML, /* the HTML part in UTF-8; absent when there is none */
	MIME_VIEW_COUNT
};

struct mime_message;

/* Parse len bytes at data (borrowed: not referenced after return).  Never fails on malformed
 * mail — it decodes what it can — so the only error is -EINVAL for impossible arguments (msg_r
 * NULL, data NULL with len > 0, len > 4 GiB).  *msg_r is new (mime_message_free). */
int mime_message_parse(const void *data, size_t len, struct mime_message **msg_r);

void mime_message_free(struct mime_message *msg); /* NULL is a no-op */

/* The bytes of one view, or NULL when the view is absent for this message (see the enum).
 * Borrowed: valid while msg lives (take a g_bytes_ref to keep it longer). */
GBytes *mime_message_view(const struct mime_message *msg, enum mime_view view);

/* The file name a view has in the message directory ("subject", "body.html", …).  Static;
 * NULL for a value outside the enum. */
const char *mime_view_name(enum mime_view view);

/* The Date header parsed as seconds since the epoch (a date without a zone is taken as UTC),
 * or INT64_MIN when missing/unparsable. */
int64_t mime_message_date(const struct mime_message *msg);

/* Attachments: every attachment and non-text inline part, in MIME order.  Names are UTF-8, safe
 * as a directory entry (no '/', no NUL or other control character, no bidi override, not "." or
 * "..", 1..255 bytes, cut on a UTF-8 boundary keeping a short extension) and unique within the
 * message.  Both results are borrowed (valid while msg lives); NULL when i is out of range. */
size_t mime_message_n_attachments(const struct mime_message *msg);
const char *mime_message_attachment_name(const struct mime_message *msg, size_t i);
GBytes *mime_message_attachment_data(const struct mime_message *msg, size_t i);

/* Transfer decoding of a leaf part's body, exactly as mime_message_parse decodes the
 * attachments it returns (with the rules for broken encodings under "Transfer encodings"
 * above: truncated base64 keeps its bytes, …).  The body is the part's BODY[section] (RFC
 * 3501): the bytes after its header block up to, not including, the line break before the
 * next delimiter.  encoding: the Content-Transfer-Encoding value as written, read as GMime's
 * parser reads it (unfolded, case-insensitive, blanks around it allowed; "base64\r\b" is
 * unknown); NULL or unknown: identity.
 * Streaming: step() any number of times with consecutive input, then finish(); output is
 * appended to out (borrowed).  The concatenated output never depends on how the input was
 * split, and a decoder holds constant memory (< 200 bytes) whatever its input.
 * mime_decoder_new never fails; the decoder is new (mime_decoder_free), for one body, and for
 * one thread at a time. */
struct mime_decoder;
struct mime_decoder *mime_decoder_new(const char *encoding);
void mime_decoder_step(struct mime_decoder *d, const void *in, size_t len, GByteArray *out);
void mime_decoder_finish(struct mime_decoder *d, GByteArray *out);
void mime_decoder_free(struct mime_decoder *d); /* NULL is a no-op */

/* ---- a message known by its pieces (pieces.c) ----
 *
 * imapfs may fetch pieces of a message instead of all of it: its header, the MIME header of
 * each part, the bodies of some parts.  mime/ decides from such pieces exactly what it decides
 * from the whole message, because it decides with the same code over the same header bytes:
 * the caller describes the message's part tree with the bytes it has (struct mime_part), and
 * mime_message_from_parts() rebuilds the message with every body it was not given replaced by
 * a marker, parses that with mime_message_parse's rules, and reports for each view and
 * attachment whether its bytes are known, or which part's body they are made of.  Every name,
 * every decision (which parts are attachments, their names and order, which parts body and
 * body.html are made of, whether body.html and cc exist) and every known view is then byte for
 * byte what mime_message_parse gives for the whole message — provided the pieces are the
 * message's own: header blocks and bodies exactly as they are in it, a body without the line
 * break that precedes the next boundary (that line break belongs to the boundary, RFC 2046
 * §5.1.1: it is what IMAP's BODY[section] gives).
 *
 * When the pieces cannot stand for the whole message — mime/ would read the whole message
 * differently from how the part tree describes it — the answer is -EBADMSG and the caller
 * must use the whole message: a header block that does not end in its blank line, or that
 * runs into a line that is neither a field nor a continuation (the malformed-mail rules would
 * repair the whole message), a part whose own header makes it another kind than described (a
 * Content-Type: multipart/... described as a leaf, or the reverse, a multipart whose boundary
 * the parts do not use), a multipart without parts, a body left out whose transfer encoding
 * (uuencode) no marker can stand in for, structure over the limits above, nesting deeper than
 * the views look. */

enum mime_part_kind {
	MIME_PART_LEAF = 0,  /* a part with a body */
	MIME_PART_MULTIPART, /* multipart/...: parts[] are its parts */
	MIME_PART_MESSAGE,   /* message/rfc822 (or global) read as a message: parts[0] stands for
	                      * the forwarded message (its header: the forwarded message's header;
	                      * its body is never needed: leave it NULL) */
};

struct mime_part {
	enum mime_part_kind kind;
	GBytes *header;         /* the part's header block as in the message, ending in its blank
	                         * line; the root's is the message's header (required) */
	GBytes *body;           /* LEAF: its body as in the message (transfer-encoded), without the
	                         * line break before the next boundary; NULL: left out */
	struct mime_part *parts; /* MULTIPART: its parts (n_parts >= 1); MESSAGE: one */
	size_t n_parts;
	unsigned id;            /* the caller's name for the part, given back below */
};

/* Parse a message from its pieces (borrowed; nothing is referenced after return).  0 and
 * *msg_r new (mime_message_free); -EBADMSG (see above); -EINVAL for impossible arguments. */
int mime_message_from_parts(const struct mime_part *root, struct mime_message **msg_r);

/* The header views (subject, from, to, date, cc, message-id, headers) and the date of a
 * message from its header block alone (borrowed), exactly as mime_message_parse gives them for
 * the whole message; nothing else is known (body unknown, no attachments).  -EBADMSG when they
 * may depend on more than the header: raw 8-bit bytes that are not UTF-8 (read in the charset
 * the first text part declares), a header block without its blank line, or one that the
 * malformed-mail rules would repair or the limits cut.  *msg_r new. */
int mime_message_from_header(GBytes *header, struct mime_message **msg_r);

/* Whether view exists for msg, also when its bytes are not known (from parts: body always
 * does, body.html when an HTML part is shown). */
bool mime_message_has_view(const struct mime_message *msg, enum mime_view view);

/* From parts: the ids of the text parts body and body.html are made of, when one of their
 * bodies was left out (then mime_message_view gives NULL for both; parse again with those
 * bodies given); NULL when every view is known.  Borrowed. */
const GArray *mime_message_text_parts(const struct mime_message *msg);

/* How attachment i's bytes are made when mime_message_attachment_data is NULL (its part's
 * body was left out): MIME_DATA_DECODED — the part *part_id_r's body, transfer-decoded with
 * mime_decoder (encoding *encoding_r, borrowed, nullable); MIME_DATA_EXACT — the part's
 * body as it is (a forwarded message: IMAP's BODY[section] of the message/rfc822 part).
 * MIME_DATA_HERE: the data is there. */
enum mime_data_source { MIME_DATA_HERE = 0, MIME_DATA_DECODED, MIME_DATA_EXACT };
enum mime_data_source mime_message_attachment_source(const struct mime_message *msg, size_t i,
                                                     unsigned *part_id_r,
                                                     const char **encoding_r);

#endif /* IMAPFS_MIME_H */
