/* mime-private.h — helpers shared between the files of mime/ (and its unit tests), not part of
 * the public contract in mime.h: charset conversion to valid UTF-8 (charset.c), HTML-to-text
 * rendering (html.c) and attachment file-name rules (names.c).  Every function here is pure
 * (output depends only on its arguments) and thread-safe.
 */
#ifndef IMAPFS_MIME_PRIVATE_H
#define IMAPFS_MIME_PRIVATE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

/* Multipart / message nesting deeper than this is not descended into (GMime itself stops at
 * 1024 nested multiparts and 512 nested messages; see mime.h). */
#define MIME_MAX_DEPTH 32

/* Longest directory entry name, in bytes (NAME_MAX). */
#define MIME_NAME_MAX 255

/* What GMime is given to build at most (see limits.c and the memory bound in mime.h). */
#define MIME_MAX_PARTS            10000         /* MIME parts (boundary delimiters) */
#define MIME_MAX_FIELDS_PER_BLOCK 1000          /* header fields in one header block */
#define MIME_MAX_FIELDS           100000        /* header fields in the whole message */
#define MIME_MAX_STRUCTURED_FIELD (256 * 1024)  /* bytes of one Content-* or address field */
#define MIME_MAX_STRUCTURED_BYTES (1024 * 1024) /* bytes of all of them together */

/* --- limits.c --- */

/* Check the structure of len bytes of raw message against the limits above.  NULL when the
 * message is within them (parse data as is); else a new buffer (g_free) without the excess —
 * fields beyond the counts left out, over-long structured fields cut, the message ended before
 * part MIME_MAX_PARTS + 1 — with its length in *len_r. */
char *mime_limit_structure(const char *data, size_t len, size_t *len_r);

/* --- separator.c --- */

/* Whether a Content-Type field value is not "type/subtype" (comments and blanks allowed around
 * the tokens), read as GMime's parser reads it: such a part is text/plain (RFC 2045 §5.2). */
bool mime_content_type_is_invalid(const char *value);

/* Whether line[0..n) (without its line break) starts a header field: a name of printable
 * US-ASCII other than ':' (RFC 5322 ftext), optional blanks, then ':'. */
bool mime_is_header_field(const char *line, size_t n);

/* Find where every header block of len bytes of raw message really ends (see mime.h): at its
 * blank line, or at the first line that is neither a header field nor a continuation.  NULL
 * when no block runs on into its text (parse data as is);
 * else a new buffer (g_free) with the missing line break inserted before each line that ends a
 * block, its length in *len_r. */
char *mime_repair_separators(const char *data, size_t len, size_t *len_r);

/* --- mime.c --- */

/* Bodies left out of a message rebuilt from its pieces (pieces.c): each was replaced by a
 * marker, prefix followed by the part's id in decimal (once transfer-decoded). */
struct mime_absent {
	const char *prefix;
	size_t prefix_len;
};

/* The parser options every parse of mime/ starts from (GMime's workarounds for broken mail).
 * GMime's; never free them. */
struct _GMimeParserOptions;
struct mime_message;
struct _GMimeParserOptions *mime_parser_options(void);

/* mime_message_parse, where leaves whose decoded body is a marker of absent (nullable) are
 * parts left out: attachments without data, text parts listed in text_parts. */
int mime_parse_with_absent(const void *data, size_t len, const struct mime_absent *absent,
                           struct mime_message **msg_r);

/* Drop what msg says beyond its header views (mime_message_from_header): body and body.html
 * become unknown (text_parts empty), attachments none. */
void mime_message_keep_headers_only(struct mime_message *msg);

/* --- charset.c --- */

/* The iconv name to decode a MIME charset label with, or NULL when the label says "no real
 * charset" (missing, us-ascii, unknown-8bit, …: the caller then guesses UTF-8, else
 * windows-1252).  Labels are widened to the superset real mail actually uses (WHATWG Encoding
 * practice): iso-8859-1 → WINDOWS-1252, euc-kr/ks_c_5601 → CP949, gb2312/gbk → GB18030,
 * shift_jis → CP932, big5 → BIG5-HKSCS, tis-620 → CP874, iso-8859-9 → WINDOWS-1254; the
 * ISO-2022-JP family (iso-2022-jp, -jp-2, cp50220/1/2, …) → ISO-2022-JP, which mime_to_utf8
 * decodes with the vendor rows (charset.c).  Static or
 * GMime-owned string; never free it. */
const char *mime_charset_iconv_name(const char *label);

/* Convert len bytes of text in charset label (nullable) to UTF-8.  Never fails: invalid or
 * unconvertible input bytes become U+FFFD, an unknown charset falls back to UTF-8 if the bytes
 * are valid UTF-8, else windows-1252 (every byte maps to something).  NUL becomes U+FFFD so
 * the result is also a C string.  Returns a new string (g_free), its length in *len_r
 * (nullable). */
char *mime_to_utf8(const char *data, size_t len, const char *label, size_t *len_r);

/* Valid UTF-8 copy of len bytes (len < 0: NUL-terminated), invalid sequences and NUL replaced
 * with U+FFFD.  New string (g_free); length in *len_r (nullable). */
char *mime_utf8_sanitize(const char *data, gssize len, size_t *len_r);

/* In-place: CRLF and lone CR become LF.  Returns the new length.  s need not be NUL-terminated. */
size_t mime_normalize_newlines(char *s, size_t len);

/* --- rfc2047.c --- */

struct _GMimeParserOptions; /* GMimeParserOptions */

/* A raw header value (folded or not) decoded to text: encoded-words found as GMime's lenient
 * tokenizer finds them, each decoded on its own (base64 by decode.c's rules), the bytes of
 * adjacent words of one charset joined and then converted by mime_to_utf8 (U+FFFD for what
 * cannot be decoded); white space between adjacent words dropped; raw 8-bit text guessed with
 * options' fallback charsets (g_mime_utils_decode_8bit).  Valid UTF-8, unfolded, not yet one
 * line (control characters may remain).  New string (g_free). */
char *mime_header_decode(const char *raw, struct _GMimeParserOptions *options);

/* A raw address field unfolded, with every run of encoded-words outside an angle-bracketed
 * address replaced by one "=?UTF-8?B?…?=" word holding the run's text as mime_header_decode
 * decodes it, so that GMime's address parser reads display names by these rules.  New string
 * (g_free). */
char *mime_header_normalize_words(const char *raw, struct _GMimeParserOptions *options);

/* --- html.c --- */

/* Render len bytes of UTF-8 HTML as readable text with libxml2's HTML parser (never a regex):
 * script/style/head/hidden content dropped, entities decoded, whitespace collapsed (except in
 * <pre>), block elements and <br> become line breaks, list items get "- ", links keep their URL
 * ("text <url>"), images show "[alt]".  Result is valid UTF-8, lines have no trailing blanks,
 * at most one blank line in a row, and it ends in "\n" unless empty.  New string (g_free),
 * length in *len_r (nullable). */
char *mime_html_to_text(const char *html, size_t len, size_t *len_r);

/* --- names.c --- */

/* Clean a proposed attachment name (UTF-8 or not): invalid UTF-8 → U+FFFD; '/', '\0', control
 * characters (C0, DEL, C1) and bidi overrides → '_'; surrounding blanks trimmed; cut to
 * MIME_NAME_MAX bytes on a UTF-8 boundary, keeping a short extension.  Returns NULL when
 * nothing usable is left ("", ".", ".."), else a new string (g_free). */
char *mime_name_sanitize(const char *name);

/* Name for a part that has none: "part-INDEX.EXT" with EXT from the MIME type (e.g.
 * image/png → "part-2.png", unknown → "part-2.bin").  New string (g_free). */
char *mime_name_from_type(const char *type, const char *subtype, size_t index);

/* Make name (already sanitized) unique among the keys of used: the first one keeps its name,
 * later ones become "stem (2).ext", "stem (3).ext", … (still ≤ MIME_NAME_MAX bytes; the
 * smallest free number).  The returned name (new, g_free) has been added to used, a
 * g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL) owned by the caller whose values
 * are this function's bookkeeping. */
char *mime_name_unique(GHashTable *used, const char *name);

/* Fit stem + suffix + ext into MIME_NAME_MAX bytes by cutting stem on a UTF-8 boundary.  ext
 * and suffix may be "".  New string (g_free). */
char *mime_name_fit(const char *stem, const char *suffix, const char *ext);

/* True when name obeys the directory-entry rules above (used by tests and the fuzzer). */
bool mime_name_is_safe(const char *name);

#endif /* IMAPFS_MIME_PRIVATE_H */
