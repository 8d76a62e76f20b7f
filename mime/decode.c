/* decode.c — the transfer decoding of a leaf part's body: the one rule for it.
 *
 * mime_message_parse decodes every leaf part it returns (attachments and text alike) through
 * this decoder, and fs/ decodes a part it fetched on its own (BODY.PEEK[section]) through it as
 * well, so both give the same bytes.  The rules for broken encodings are those of mime.h
 * ("Transfer encodings"): base64 skips what is not in its alphabet, ends at its padding and
 * keeps the bytes of a truncated last group; quoted-printable keeps invalid escapes as they are
 * written; uuencode decodes from the "begin" line to the "end" line (or a line of length 0).
 * Each decoder is a small state machine fed consecutive chunks, so its output never depends on
 * where the input was split, and its memory is constant: nothing but a few bytes of state and,
 * for uuencode, the first bytes of the current line.
 */
#include "mime.h"

#include <stdbool.h>
#include <string.h>

#include <gmime/gmime.h>

/* A uuencoded line carries at most 63 bytes: its length character and 84 data characters. */
#define UU_LINE_MAX 96

enum decoder_kind {
	DECODE_IDENTITY,
	DECODE_BASE64,
	DECODE_QP,
	DECODE_UU,
};

enum uu_state {
	UU_SEEK_BEGIN, /* before the "begin " line: nothing is output */
	UU_DATA,       /* lines of data */
	UU_DONE,       /* after the "end" line (or a line of length 0): nothing is output */
};

struct mime_decoder {
	enum decoder_kind kind;
	/* base64 */
	guint32 bits; /* sextets of the current group, most recent lowest */
	int sextets;  /* in bits: 0..3 */
	bool padded;  /* '=' seen: the data has ended */
	/* quoted-printable: the bytes of an escape not complete yet ("=", "=X", "=\r") */
	unsigned char pending[2];
	int n_pending; /* -1: no escape open; 0..2 bytes after the '=' */
	/* uuencode */
	enum uu_state uu;
	unsigned char line[UU_LINE_MAX]; /* the first bytes of the current line */
	size_t line_len;                 /* bytes of the line so far (may exceed UU_LINE_MAX) */
};

struct mime_decoder *mime_decoder_new(const char *encoding)
{
	struct mime_decoder *d = g_new0(struct mime_decoder, 1);
	/* the value is read as GMime's parser reads the Content-Transfer-Encoding field (unfolded
	 * first: a stray CR or control character inside is then no blank), so a part decoded here
	 * and one decoded in mime_message_parse agree on the encoding too */
	char *value = encoding != NULL ? g_mime_utils_header_unfold(encoding) : NULL;
	GMimeContentEncoding e = value != NULL ? g_mime_content_encoding_from_string(value)
	                                       : GMIME_CONTENT_ENCODING_DEFAULT;

	g_free(value);
	switch (e) {
	case GMIME_CONTENT_ENCODING_BASE64:
		d->kind = DECODE_BASE64;
		break;
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
		d->kind = DECODE_QP;
		break;
	case GMIME_CONTENT_ENCODING_UUENCODE:
		d->kind = DECODE_UU;
		break;
	default:
		d->kind = DECODE_IDENTITY;
		break;
	}
	d->n_pending = -1;
	d->uu = UU_SEEK_BEGIN;
	return d;
}

void mime_decoder_free(struct mime_decoder *d)
{
	g_free(d);
}

/* ---- base64 ---- */

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* The bytes a group of 2 or 3 sextets carries (1 or 2); a single sextet carries none. */
static void base64_flush_partial(struct mime_decoder *d, GByteArray *out)
{
	guint8 bytes[2];

	if (d->sextets == 2) {
		bytes[0] = (guint8)(d->bits >> 4);
		g_byte_array_append(out, bytes, 1);
	} else if (d->sextets == 3) {
		bytes[0] = (guint8)(d->bits >> 10);
		bytes[1] = (guint8)(d->bits >> 2);
		g_byte_array_append(out, bytes, 2);
	}
	d->sextets = 0;
	d->bits = 0;
}

static void base64_step(struct mime_decoder *d, const unsigned char *in, size_t len,
                        GByteArray *out)
{
	guint8 chunk[3 * 256];
	size_t n = 0;

	for (size_t i = 0; i < len && !d->padded; i++) {
		int v = base64_value(in[i]);

		if (v < 0) {
			if (in[i] == '=') {
				/* padding ends the data (what follows is not decoded) */
				g_byte_array_append(out, chunk, (guint)n);
				n = 0;
				base64_flush_partial(d, out);
				d->padded = true;
			}
			continue; /* line breaks, blanks and junk are skipped */
		}
		d->bits = (d->bits << 6) | (guint32)v;
		if (++d->sextets == 4) {
			chunk[n++] = (guint8)(d->bits >> 16);
			chunk[n++] = (guint8)(d->bits >> 8);
			chunk[n++] = (guint8)d->bits;
			d->sextets = 0;
			d->bits = 0;
			if (n == sizeof(chunk)) {
				g_byte_array_append(out, chunk, (guint)n);
				n = 0;
			}
		}
	}
	g_byte_array_append(out, chunk, (guint)n);
}

/* ---- quoted-printable ---- */

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void append_byte(GByteArray *out, unsigned char c)
{
	g_byte_array_append(out, &c, 1);
}

/* g_byte_array_append takes a guint length */
static void append_bytes(GByteArray *out, const unsigned char *p, size_t n)
{
	while (n > 0) {
		guint chunk = (guint)MIN(n, (size_t)G_MAXUINT);
		g_byte_array_append(out, p, chunk);
		p += chunk;
		n -= chunk;
	}
}

/* Feed one byte to the open escape ("=" and d->pending).  Returns true when the byte was
 * consumed, false when the escape turned out invalid: it has then been output as written and
 * the byte must be read again as ordinary text (it may open the next escape). */
static bool qp_escape_byte(struct mime_decoder *d, unsigned char c, GByteArray *out)
{
	if (d->n_pending == 0) {
		if (c == '\n') {
			d->n_pending = -1; /* soft line break */
			return true;
		}
		if (c == '\r' || hex_value(c) >= 0) {
			d->pending[0] = c;
			d->n_pending = 1;
			return true;
		}
		append_byte(out, '=');
		d->n_pending = -1;
		return false;
	}
	/* one byte pending: "=\r" or "=X" */
	if (d->pending[0] == '\r') {
		d->n_pending = -1;
		if (c == '\n')
			return true; /* soft line break (CRLF) */
		g_byte_array_append(out, (const guint8 *)"=\r", 2);
		return false;
	}
	d->n_pending = -1;
	if (hex_value(c) >= 0) {
		append_byte(out, (unsigned char)(hex_value(d->pending[0]) << 4 | hex_value(c)));
		return true;
	}
	append_byte(out, '=');
	append_byte(out, d->pending[0]);
	return false;
}

static void qp_step(struct mime_decoder *d, const unsigned char *in, size_t len, GByteArray *out)
{
	size_t i = 0;

	while (i < len) {
		if (d->n_pending >= 0) {
			if (qp_escape_byte(d, in[i], out))
				i++;
			continue;
		}
		{
			/* a run of ordinary bytes up to the next '=' */
			const unsigned char *eq = memchr(in + i, '=', len - i);
			size_t run = eq != NULL ? (size_t)(eq - (in + i)) : len - i;
			append_bytes(out, in + i, run);
			i += run;
			if (eq != NULL) {
				d->n_pending = 0;
				i++;
			}
		}
	}
}

static void qp_finish(struct mime_decoder *d, GByteArray *out)
{
	/* "=" or "=\r" at the very end: a soft line break whose line break is the one before
	 * the next delimiter (which belongs to the delimiter); "=X" stays as written */
	if (d->n_pending == 1 && d->pending[0] != '\r') {
		append_byte(out, '=');
		append_byte(out, d->pending[0]);
	}
	d->n_pending = -1;
}

/* ---- uuencode ---- */

static int uu_value(unsigned char c)
{
	return (c - ' ') & 0x3f; /* '`' is 0 as well as ' ' */
}

/* One complete line (its first min(len, UU_LINE_MAX) bytes in d->line). */
static void uu_line(struct mime_decoder *d, GByteArray *out)
{
	size_t n = MIN(d->line_len, (size_t)UU_LINE_MAX);
	const unsigned char *p = d->line;

	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	if (d->uu == UU_SEEK_BEGIN) {
		if (n >= 6 && memcmp(p, "begin ", 6) == 0)
			d->uu = UU_DATA;
		return;
	}
	if (d->uu != UU_DATA)
		return;
	if (n == 0)
		return; /* an empty line between data lines */
	{
		int want = uu_value(p[0]);
		guint8 bytes[64];
		int got = 0;

		if (want == 0 || (n == 3 && memcmp(p, "end", 3) == 0)) {
			d->uu = UU_DONE;
			return;
		}
		/* groups of 4 characters; characters missing at the end of the line count as 0 */
		for (size_t i = 1; got < want; i += 4) {
			int v[4];
			for (int k = 0; k < 4; k++)
				v[k] = i + k < n ? uu_value(p[i + k]) : 0;
			bytes[got++] = (guint8)(v[0] << 2 | v[1] >> 4);
			if (got < want)
				bytes[got++] = (guint8)(v[1] << 4 | v[2] >> 2);
			if (got < want)
				bytes[got++] = (guint8)(v[2] << 6 | v[3]);
		}
		g_byte_array_append(out, bytes, (guint)got);
	}
}

static void uu_step(struct mime_decoder *d, const unsigned char *in, size_t len, GByteArray *out)
{
	for (size_t i = 0; i < len && d->uu != UU_DONE; i++) {
		if (d->line_len < UU_LINE_MAX)
			d->line[d->line_len] = in[i];
		d->line_len++;
		if (in[i] == '\n') {
			uu_line(d, out);
			d->line_len = 0;
		}
	}
}

/* ---- the API ---- */

void mime_decoder_step(struct mime_decoder *d, const void *in, size_t len, GByteArray *out)
{
	if (d == NULL || in == NULL || len == 0)
		return;
	switch (d->kind) {
	case DECODE_BASE64:
		base64_step(d, in, len, out);
		break;
	case DECODE_QP:
		qp_step(d, in, len, out);
		break;
	case DECODE_UU:
		uu_step(d, in, len, out);
		break;
	case DECODE_IDENTITY:
		append_bytes(out, in, len);
		break;
	}
}

void mime_decoder_finish(struct mime_decoder *d, GByteArray *out)
{
	if (d == NULL)
		return;
	switch (d->kind) {
	case DECODE_BASE64:
		/* a last group of 2 or 3 characters without its padding keeps its bytes */
		if (!d->padded)
			base64_flush_partial(d, out);
		d->padded = true;
		break;
	case DECODE_QP:
		qp_finish(d, out);
		break;
	case DECODE_UU:
		/* a last line without a line break */
		if (d->line_len > 0 && d->uu != UU_DONE)
			uu_line(d, out);
		d->line_len = 0;
		d->uu = UU_DONE;
		break;
	case DECODE_IDENTITY:
		break;
	}
}
