/* rfc2047.c — decoding the encoded-words of header values (RFC 2047) for the header views.
 *
 * GMime's decoder joins a run of adjacent encoded-words of one charset by decoding their
 * payloads as one continuous base64 (or quoted-printable) stream; a base64 word that ends in
 * '=' padding ends that stream, and the text of the words after it is lost ("MySurvey.com: …"
 * shown as "MySurvey…").  Its charset conversion also turns what it cannot convert into '?'.
 * So the views decode header text here: words are found as GMime's lenient tokenizer finds
 * them (GMIME_RFC_COMPLIANCE_LOOSE: also inside other words and with blanks inside; white
 * space between adjacent words dropped; but after a stray "=?" that starts no word the scan
 * goes on right after it, where GMime skips to the next '?'), each word is decoded on its own
 * (RFC 2047 §6.2; base64 by the rules of decode.c), and only then are the bytes of adjacent
 * words of one charset joined, so that a character split across two words still comes out
 * whole.  Those
 * bytes are converted by mime_to_utf8 (widened labels, U+FFFD for what cannot be decoded); raw
 * 8-bit text outside the words goes through GMime's guess with the parser options' fallback
 * charsets, as it did before.
 *
 * Address fields are still parsed by GMime: mime_header_normalize_words hands it a copy of the
 * field in which every run of encoded-words is one UTF-8 word of the text decoded here.
 */
#include "mime.h"
#include "mime-private.h"

#include <string.h>

#include <gmime/gmime.h>

enum token_kind {
	TOKEN_LWSP, /* white space */
	TOKEN_RAW,  /* other text */
	TOKEN_WORD, /* an encoded-word */
};

struct token {
	enum token_kind kind;
	size_t start, end; /* where it is in the text */
	char *charset;     /* TOKEN_WORD: its label without a language suffix (RFC 2231) */
	GByteArray *bytes; /* TOKEN_WORD: its decoded bytes */
};

/* A run of encoded-words (white space between them dropped), decoded. */
struct run {
	size_t start, end;
	char *utf8;
};

static bool is_lwsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool opens_word(const char *p)
{
	return p[0] == '=' && p[1] == '?';
}

/* Decode one word's payload: base64 by decode.c's rules, Q as RFC 2047 §4.2 ('_' is a space,
 * "=XY" that byte, anything else — an invalid '=' too — as written). */
static GByteArray *decode_payload(char encoding, const char *p, size_t n)
{
	GByteArray *out = g_byte_array_new();

	if (encoding == 'B') {
		struct mime_decoder *d = mime_decoder_new("base64");
		mime_decoder_step(d, p, n, out);
		mime_decoder_finish(d, out);
		mime_decoder_free(d);
		return out;
	}
	for (size_t i = 0; i < n; i++) {
		guint8 c = (guint8)p[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=' && n - i >= 3 && g_ascii_isxdigit(p[i + 1]) &&
		           g_ascii_isxdigit(p[i + 2])) {
			c = (guint8)(g_ascii_xdigit_value(p[i + 1]) << 4 |
			             g_ascii_xdigit_value(p[i + 2]));
			i += 2;
		}
		g_byte_array_append(out, &c, 1);
	}
	return out;
}

/* At text + pos ("=?"): an encoded-word as GMime's lenient tokenizer finds one — "=?" charset
 * "?" B|Q "?" payload "?=", the charset scanned up to the next '?' and the payload up to the
 * next "?=", blanks included — into *t.  When it is none, raw text goes on from after the "=?"
 * (so a word right after a stray "=?" is still found, as Python's email package finds it). */
static bool parse_word(const char *text, size_t pos, struct token *t)
{
	const char *charset = text + pos + 2, *p = charset, *payload, *end, *star;
	char encoding;

	while (*p != '\0' && *p != '?')
		p++;
	if (p[0] != '?' || p[1] == '\0' || strchr("BbQq", p[1]) == NULL || p[2] != '?')
		return false;
	encoding = g_ascii_toupper(p[1]);
	payload = p + 3;
	end = strstr(payload, "?=");
	if (end == NULL || p == charset || *charset == '*')
		return false; /* no end marker, or no charset */
	star = memchr(charset, '*', (size_t)(p - charset));
	t->kind = TOKEN_WORD;
	t->start = pos;
	t->end = (size_t)(end + 2 - text);
	t->charset = g_strndup(charset, (size_t)((star != NULL ? star : p) - charset));
	t->bytes = decode_payload(encoding, payload, (size_t)(end - payload));
	return true;
}

static void clear_token(gpointer p)
{
	struct token *t = p;

	g_free(t->charset);
	if (t->bytes != NULL)
		g_byte_array_unref(t->bytes);
}

/* The tokens of text, as GMime's tokenizer for unstructured text splits it in its lenient
 * mode (an encoded-word also starts inside a word). */
static GArray *tokenize(const char *text)
{
	GArray *tokens = g_array_new(FALSE, TRUE, sizeof(struct token));
	size_t len = strlen(text), pos = 0;

	g_array_set_clear_func(tokens, clear_token);
	while (pos < len) {
		struct token t = {TOKEN_RAW, pos, pos, NULL, NULL};

		if (is_lwsp(text[pos])) {
			while (pos < len && is_lwsp(text[pos]))
				pos++;
			t.kind = TOKEN_LWSP;
		} else if (opens_word(text + pos) && parse_word(text, pos, &t)) {
			pos = t.end;
		} else {
			if (opens_word(text + pos))
				pos += 2;
			while (pos < len && !is_lwsp(text[pos]) && !opens_word(text + pos))
				pos++;
		}
		t.end = pos;
		g_array_append_val(tokens, t);
	}
	return tokens;
}

static bool same_charset(const char *a, const char *b)
{
	const char *ia = mime_charset_iconv_name(a), *ib = mime_charset_iconv_name(b);

	if (ia != NULL && ib != NULL)
		return g_ascii_strcasecmp(ia, ib) == 0;
	return g_ascii_strcasecmp(a, b) == 0;
}

/* Append len bytes in charset label (the joined bytes of adjacent words) as UTF-8. */
static void append_converted(GString *out, const GByteArray *bytes, const char *label,
                             GMimeParserOptions *options)
{
	char *utf8;
	size_t n;

	if (bytes->len == 0)
		return;
	if (mime_charset_iconv_name(label) == NULL) {
		/* "us-ascii", "unknown-8bit", …: no real charset, guessed as raw 8-bit text is */
		utf8 = g_mime_utils_decode_8bit(options, (const char *)bytes->data, bytes->len);
		n = strlen(utf8);
	} else {
		utf8 = mime_to_utf8((const char *)bytes->data, bytes->len, label, &n);
	}
	g_string_append_len(out, utf8, (gssize)n);
	g_free(utf8);
}

/* The runs of encoded-words of text, each decoded: the words of a run are joined with the
 * white space between them dropped (RFC 2047 §6.2), the bytes of adjacent words of one
 * charset converted together.  A GArray of struct run, in order. */
static GArray *find_runs(const char *text, GMimeParserOptions *options)
{
	GArray *tokens = tokenize(text);
	GArray *runs = g_array_new(FALSE, TRUE, sizeof(struct run));

	for (guint i = 0; i < tokens->len; i++) {
		struct token *t = &g_array_index(tokens, struct token, i);
		GString *utf8;
		GByteArray *pending;
		const char *charset;
		struct run r;

		if (t->kind != TOKEN_WORD)
			continue;
		utf8 = g_string_new(NULL);
		pending = g_byte_array_new();
		charset = t->charset;
		r.start = t->start;
		for (;;) {
			guint next = i + 1;
			struct token *n;

			if (same_charset(charset, t->charset)) {
				g_byte_array_append(pending, t->bytes->data, t->bytes->len);
			} else {
				append_converted(utf8, pending, charset, options);
				g_byte_array_set_size(pending, 0);
				g_byte_array_append(pending, t->bytes->data, t->bytes->len);
				charset = t->charset;
			}
			if (next < tokens->len &&
			    g_array_index(tokens, struct token, next).kind == TOKEN_LWSP)
				next++;
			if (next >= tokens->len)
				break;
			n = &g_array_index(tokens, struct token, next);
			if (n->kind != TOKEN_WORD)
				break;
			i = next;
			t = n;
		}
		append_converted(utf8, pending, charset, options);
		g_byte_array_unref(pending);
		r.end = t->end;
		r.utf8 = g_string_free(utf8, FALSE);
		g_array_append_val(runs, r);
	}
	g_array_unref(tokens);
	return runs;
}

static void free_runs(GArray *runs)
{
	for (guint i = 0; i < runs->len; i++)
		g_free(g_array_index(runs, struct run, i).utf8);
	g_array_unref(runs);
}

/* Raw header text (no encoded-word in it) as UTF-8: 8-bit bytes guessed by GMime with the
 * parser options' fallback charsets. */
static void append_raw(GString *out, const char *p, size_t n, GMimeParserOptions *options)
{
	for (size_t i = 0; i < n; i++) {
		if ((guint8)p[i] >= 0x80) {
			char *utf8 = g_mime_utils_decode_8bit(options, p, n);
			g_string_append(out, utf8);
			g_free(utf8);
			return;
		}
	}
	g_string_append_len(out, p, (gssize)n);
}

char *mime_header_decode(const char *raw, GMimeParserOptions *options)
{
	char *text = g_mime_utils_header_unfold(raw != NULL ? raw : "");
	GArray *runs = find_runs(text, options);
	GString *out = g_string_sized_new(strlen(text) + 1);
	size_t pos = 0;

	for (guint i = 0; i < runs->len; i++) {
		const struct run *r = &g_array_index(runs, struct run, i);
		append_raw(out, text + pos, r->start - pos, options);
		g_string_append(out, r->utf8);
		pos = r->end;
	}
	append_raw(out, text + pos, strlen(text) - pos, options);
	free_runs(runs);
	g_free(text);
	{
		/* GMime's guess for raw 8-bit text passes some invalid sequences through */
		char *valid = mime_utf8_sanitize(out->str, (gssize)out->len, NULL);
		g_string_free(out, TRUE);
		return valid;
	}
}

char *mime_header_normalize_words(const char *raw, GMimeParserOptions *options)
{
	char *text = g_mime_utils_header_unfold(raw != NULL ? raw : "");
	GArray *runs = find_runs(text, options);
	GString *out = g_string_sized_new(strlen(text) + 1);
	size_t pos = 0, scanned = 0;
	bool quoted = false, angle = false;
	int comment = 0;

	for (guint i = 0; i < runs->len; i++) {
		const struct run *r = &g_array_index(runs, struct run, i);
		/* where the run starts: inside an angle-bracketed address it is not a word */
		for (; scanned < r->start; scanned++) {
			char c = text[scanned];
			if ((quoted || comment > 0) && c == '\\' && text[scanned + 1] != '\0')
				scanned++;
			else if (quoted)
				quoted = c != '"';
			else if (comment > 0)
				comment += c == '(' ? 1 : c == ')' ? -1 : 0;
			else if (c == '"')
				quoted = true;
			else if (c == '(')
				comment = 1;
			else if (c == '<')
				angle = true;
			else if (c == '>')
				angle = false;
		}
		scanned = r->end; /* the word's own text is no quote or bracket */
		if (angle && !quoted && comment == 0)
			continue;
		g_string_append_len(out, text + pos, (gssize)(r->start - pos));
		{
			char *b64 = g_base64_encode((const guchar *)r->utf8, strlen(r->utf8));
			g_string_append_printf(out, "=?UTF-8?B?%s?=", b64);
			g_free(b64);
		}
		pos = r->end;
	}
	g_string_append(out, text + pos);
	free_runs(runs);
	g_free(text);
	return g_string_free(out, FALSE);
}
