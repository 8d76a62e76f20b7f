/* charset.c — turning the bytes of a text part into valid UTF-8 whatever its label says.
 *
 * Real mail lies about charsets in predictable ways (iso-8859-1 text full of windows-1252
 * quotes, euc-kr text with UHC syllables, gb2312 text with GBK characters, "us-ascii" text
 * with 8-bit bytes; "iso-2022-jp" text with Microsoft's CP50221 rows), so labels are widened
 * to the superset browsers use.  Conversion never
 * fails and never drops text: an unknown label falls back to UTF-8-if-valid-else-windows-1252,
 * and bytes the decoder rejects become U+FFFD one at a time.
 */
#include "mime-private.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>

#include <gmime/gmime.h>

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD in UTF-8 */

/* Labels meaning "the sender did not say": the caller guesses instead. */
static const char *const unlabeled[] = {
    "us-ascii",     "ascii",          "ansi_x3.4-1968", "iso646-us", "us",
    "unknown-8bit", "x-unknown",      "unknown",        "8bit",      "7bit",
    "default",      "x-user-defined", "none",           "charset",   NULL,
};

/* Label → the superset to decode with (first column: label, second: iconv name). */
static const char *const widened[][2] = {
    {"utf-8", "UTF-8"},
    {"utf8", "UTF-8"},
    {"iso-8859-1", "WINDOWS-1252"},
    {"iso8859-1", "WINDOWS-1252"},
    {"iso_8859-1", "WINDOWS-1252"},
    {"latin1", "WINDOWS-1252"},
    {"latin-1", "WINDOWS-1252"},
    {"l1", "WINDOWS-1252"},
    {"cp819", "WINDOWS-1252"},
    {"windows-1252", "WINDOWS-1252"},
    {"cp1252", "WINDOWS-1252"},
    {"x-cp1252", "WINDOWS-1252"},
    {"iso-8859-9", "WINDOWS-1254"},
    {"latin5", "WINDOWS-1254"},
    {"tis-620", "CP874"},
    {"iso-8859-11", "CP874"},
    {"windows-874", "CP874"},
    {"euc-kr", "CP949"},
    {"euckr", "CP949"},
    {"ks_c_5601-1987", "CP949"},
    {"ks_c_5601-1989", "CP949"},
    {"ks_c_5601", "CP949"},
    {"ksc5601", "CP949"},
    {"ksc_5601", "CP949"},
    {"korean", "CP949"},
    {"cp949", "CP949"},
    {"uhc", "CP949"},
    {"windows-949", "CP949"},
    {"gb2312", "GB18030"},
    {"gb_2312-80", "GB18030"},
    {"gbk", "GB18030"},
    {"x-gbk", "GB18030"},
    {"cp936", "GB18030"},
    {"euc-cn", "GB18030"},
    {"x-euc-cn", "GB18030"},
    {"chinese", "GB18030"},
    {"gb18030", "GB18030"},
    {"shift_jis", "CP932"},
    {"shift-jis", "CP932"},
    {"sjis", "CP932"},
    {"x-sjis", "CP932"},
    {"ms_kanji", "CP932"},
    {"windows-31j", "CP932"},
    {"cp932", "CP932"},
    {"big5", "BIG5-HKSCS"},
    {"big5-hkscs", "BIG5-HKSCS"},
    {"x-x-big5", "BIG5-HKSCS"},
    {"cn-big5", "BIG5-HKSCS"},
    {"cp950", "BIG5-HKSCS"},
    /* ISO-2022-JP as Japanese mailers send it: with the NEC and IBM rows of Microsoft's
     * CP50220/CP50221/CP50222 (decoded in mime_to_utf8) */
    {"iso-2022-jp", "ISO-2022-JP"},
    {"csiso2022jp", "ISO-2022-JP"},
    {"iso-2022-jp-1", "ISO-2022-JP"},
    {"iso-2022-jp-2", "ISO-2022-JP"},
    {"csiso2022jp2", "ISO-2022-JP"},
    {"iso-2022-jp-ms", "ISO-2022-JP"},
    {"cp50220", "ISO-2022-JP"},
    {"cp50221", "ISO-2022-JP"},
    {"cp50222", "ISO-2022-JP"},
    {"x-cp50220", "ISO-2022-JP"},
    {"x-cp50221", "ISO-2022-JP"},
    {"x-cp50222", "ISO-2022-JP"},
    {"koi8-r", "KOI8-R"},
    {"koi8-u", "KOI8-U"},
};

const char *mime_charset_iconv_name(const char *label)
{
	char buf[64];
	size_t n;

	if (label == NULL)
		return NULL;
	while (*label == ' ' || *label == '\t' || *label == '"' || *label == '\'')
		label++;
	n = strlen(label);
	while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == '\t' || label[n - 1] == '"' ||
	                 label[n - 1] == '\''))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return NULL;
	for (size_t i = 0; i < n; i++)
		buf[i] = g_ascii_tolower(label[i]);
	buf[n] = '\0';

	for (size_t i = 0; unlabeled[i] != NULL; i++)
		if (strcmp(buf, unlabeled[i]) == 0)
			return NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(widened); i++)
		if (strcmp(buf, widened[i][0]) == 0)
			return widened[i][1];
	/* GMime knows the aliases of everything else (e.g. windows-1251 → CP1251). */
	return g_mime_charset_iconv_name(buf);
}

char *mime_utf8_sanitize(const char *data, gssize len, size_t *len_r)
{
	const char *p = data, *end, *valid_end;
	GString *out;

	if (len < 0)
		len = (gssize)strlen(data);
	end = data + len;
	out = g_string_sized_new((gsize)len + 1);
	while (p < end) {
		/* With an explicit length, GLib stops at embedded NUL too: both get replaced. */
		g_utf8_validate_len(p, (gsize)(end - p), &valid_end);
		g_string_append_len(out, p, valid_end - p);
		if (valid_end >= end)
			break;
		g_string_append(out, REPLACEMENT);
		p = valid_end + 1;
	}
	if (len_r != NULL)
		*len_r = out->len;
	return g_string_free(out, FALSE);
}

/* iconv from charset name to UTF-8; bytes it rejects become U+FFFD.  Returns false when iconv
 * does not know the name (nothing appended then). */
static bool convert_with_iconv(const char *data, size_t len, const char *name, GString *out)
{
	iconv_t cd = iconv_open("UTF-8", name);
	char chunk[8192];
	char *in = (char *)data;
	size_t inleft = len;

	if (cd == (iconv_t)-1)
		return false;
	while (inleft > 0) {
		char *o = chunk;
		size_t oleft = sizeof(chunk);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		int err = errno;

		g_string_append_len(out, chunk, o - chunk);
		if (r != (size_t)-1 || err == E2BIG)
			continue;
		/* EILSEQ: one bad byte; EINVAL: a truncated sequence at the end.  Either way, mark
		 * it and go on with the next byte from a reset decoder state. */
		g_string_append(out, REPLACEMENT);
		in++;
		inleft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	{
		/* Flush the shift state of stateful decoders (ISO-2022-JP). */
		char *o = chunk;
		size_t oleft = sizeof(chunk);
		iconv(cd, NULL, NULL, &o, &oleft);
		g_string_append_len(out, chunk, o - chunk);
	}
	iconv_close(cd);
	return true;
}

/* ---- ISO-2022-JP as Japanese mailers send it ---- */

/* The character sets an ISO-2022-JP text switches between (RFC 1468, plus what the CP50220 /
 * CP50221 / CP50222 family sends under the same label). */
enum jis_set {
	JIS_ASCII,
	JIS_ROMAN, /* JIS X 0201 Roman: ASCII with ¥ and ‾ */
	JIS_KANA,  /* JIS X 0201 half-width katakana (ESC ( I, or SO … SI) */
	JIS_X0208, /* two bytes per character */
	JIS_X0212, /* two bytes per character, the supplementary set */
};

struct jis_decoder {
	iconv_t standard; /* ISO-2022-JP, kept in its JIS X 0208 state: the standard mapping */
	iconv_t vendor; /* CP932: NEC row 13 (①, №, ㈱ …) and NEC-selected IBM rows 89-92 */
	iconv_t x0212;  /* EUC-JP, which carries JIS X 0212 after 0x8F */
	GString *out;
};

/* The escape sequence at p (n bytes left): its length and the set it selects, or 0 when it is
 * not one of ISO-2022-JP's; -1 when it selects a set only ISO-2022-JP-2 has. */
static int jis_escape(const guint8 *p, size_t n, enum jis_set *set_r)
{
	static const struct {
		const char *seq;
		enum jis_set set;
	} known[] = {
	    {"\x1b(B", JIS_ASCII},       {"\x1b(J", JIS_ROMAN},  {"\x1b(H", JIS_ROMAN},
	    {"\x1b(I", JIS_KANA},        {"\x1b$@", JIS_X0208},  {"\x1b$B", JIS_X0208},
	    {"\x1b$(B", JIS_X0208},      {"\x1b$(@", JIS_X0208}, {"\x1b$(D", JIS_X0212},
	    {"\x1b&@\x1b$B", JIS_X0208},
	};
	static const char *const jp2[] = {"\x1b$A", "\x1b$(C", "\x1b.A", "\x1b.F", "\x1bN"};

	for (size_t i = 0; i < G_N_ELEMENTS(known); i++) {
		size_t l = strlen(known[i].seq);
		if (n >= l && memcmp(p, known[i].seq, l) == 0) {
			*set_r = known[i].set;
			return (int)l;
		}
	}
	for (size_t i = 0; i < G_N_ELEMENTS(jp2); i++) {
		size_t l = strlen(jp2[i]);
		if (n >= l && memcmp(p, jp2[i], l) == 0)
			return -1;
	}
	return 0;
}

/* Convert in[0..n) with cd, appending to out; false when cd stopped at an invalid sequence
 * (*in_r then points at it). */
static bool jis_iconv(iconv_t cd, const guint8 **in_r, size_t *n_r, GString *out)
{
	char chunk[1024];

	while (*n_r > 0) {
		char *in = (char *)*in_r, *o = chunk;
		size_t oleft = sizeof(chunk);
		size_t r = iconv(cd, &in, n_r, &o, &oleft);
		int err = errno;

		*in_r = (const guint8 *)in;
		g_string_append_len(out, chunk, o - chunk);
		if (r == (size_t)-1 && err != E2BIG)
			return false;
	}
	return true;
}

/* One JIS X 0208 character the standard mapping lacks: the vendor rows, by their Shift_JIS
 * code (CP932), else U+FFFD. */
static void jis_vendor_char(struct jis_decoder *d, guint8 j1, guint8 j2)
{
	guint8 sjis[2];
	const guint8 *in = sjis;
	size_t n = 2;

	/* the Shift_JIS layout of row j1, cell j2 (JIS X 0208 Annex 1) */
	sjis[0] = (guint8)(((j1 + 1) >> 1) + (j1 <= 0x5e ? 0x70 : 0xb0));
	sjis[1] = (guint8)(j2 + ((j1 & 1) ? (j2 >= 0x60 ? 0x20 : 0x1f) : 0x7e));
	if (d->vendor != (iconv_t)-1)
		iconv(d->vendor, NULL, NULL, NULL, NULL);
	if (d->vendor == (iconv_t)-1 || !jis_iconv(d->vendor, &in, &n, d->out))
		g_string_append(d->out, REPLACEMENT);
}

/* A run of JIS X 0208 byte pairs (all in 0x21..0x7e). */
static void jis_x0208_run(struct jis_decoder *d, const guint8 *p, size_t n)
{
	const guint8 *esc = (const guint8 *)"\x1b$B";
	size_t esc_n = 3;

	iconv(d->standard, NULL, NULL, NULL, NULL);
	jis_iconv(d->standard, &esc, &esc_n, d->out);
	while (n > 0 && !jis_iconv(d->standard, &p, &n, d->out)) {
		/* iconv keeps its JIS X 0208 state past the character it rejects */
		jis_vendor_char(d, p[0], p[1]);
		p += 2;
		n -= 2;
	}
}

static void jis_x0212_char(struct jis_decoder *d, guint8 j1, guint8 j2)
{
	guint8 euc[3] = {0x8f, (guint8)(j1 | 0x80), (guint8)(j2 | 0x80)};
	const guint8 *in = euc;
	size_t n = 3;

	if (d->x0212 != (iconv_t)-1)
		iconv(d->x0212, NULL, NULL, NULL, NULL);
	if (d->x0212 == (iconv_t)-1 || !jis_iconv(d->x0212, &in, &n, d->out))
		g_string_append(d->out, REPLACEMENT);
}

static bool is_jis_byte(guint8 c)
{
	return c >= 0x21 && c <= 0x7e;
}

/* ISO-2022-JP with the vendor extensions Japanese mailers send under that label: the JIS X
 * 0208 characters iconv's ISO-2022-JP knows decode as it decodes them, the NEC and IBM rows of
 * CP50220/CP50221 as CP932 has them, half-width katakana (ESC ( I, SO/SI) and JIS X 0212 too;
 * a byte that fits none of them is U+FFFD, and the set in force stays (no resynchronisation
 * to ASCII that would turn the rest of a line into Latin letters).  Returns false when the
 * text uses a set only ISO-2022-JP-2 has, or the converters are missing. */
static bool iso2022jp_to_utf8(const guint8 *p, size_t len, GString *out)
{
	struct jis_decoder d = {iconv_open("UTF-8", "ISO-2022-JP"), iconv_open("UTF-8", "CP932"),
	                        iconv_open("UTF-8", "EUC-JP"), out};
	enum jis_set set = JIS_ASCII;
	bool shifted = false, ok = d.standard != (iconv_t)-1;
	size_t i = 0;

	while (ok && i < len) {
		guint8 c = p[i];
		enum jis_set next;
		int esc;

		if (c == 0x1b) {
			esc = jis_escape(p + i, len - i, &next);
			if (esc < 0) {
				ok = false;
				break;
			}
			if (esc == 0) {
				g_string_append(out, REPLACEMENT); /* an escape of no set */
				i++;
			} else {
				set = next;
				i += (size_t)esc;
			}
		} else if (c == 0x0e || c == 0x0f) {
			shifted = c == 0x0e;
			i++;
		} else if (c < 0x21 || c == 0x7f) {
			g_string_append_c(out,
			                  (char)c); /* controls and line breaks, in every set */
			i++;
		} else if (shifted || set == JIS_KANA) {
			if (c <= 0x5f)
				g_string_append_unichar(out, 0xff61 + (gunichar)(c - 0x21));
			else
				g_string_append(out, REPLACEMENT);
			i++;
		} else if (set == JIS_X0208 || set == JIS_X0212) {
			size_t run = i;
			while (run + 1 < len && is_jis_byte(p[run]) && is_jis_byte(p[run + 1]))
				run += 2;
			if (run == i) {
				g_string_append(out, REPLACEMENT); /* a lone byte or an 8-bit one */
				i++;
			} else if (set == JIS_X0208) {
				jis_x0208_run(&d, p + i, run - i);
				i = run;
			} else {
				for (; i < run; i += 2)
					jis_x0212_char(&d, p[i], p[i + 1]);
			}
		} else if (c >= 0x80) {
			g_string_append(out, REPLACEMENT);
			i++;
		} else if (set == JIS_ROMAN && (c == 0x5c || c == 0x7e)) {
			g_string_append(out, c == 0x5c ? "\u00a5" : "\u203e");
			i++;
		} else {
			g_string_append_c(out, (char)c);
			i++;
		}
	}
	if (d.standard != (iconv_t)-1)
		iconv_close(d.standard);
	if (d.vendor != (iconv_t)-1)
		iconv_close(d.vendor);
	if (d.x0212 != (iconv_t)-1)
		iconv_close(d.x0212);
	return ok;
}

char *mime_to_utf8(const char *data, size_t len, const char *label, size_t *len_r)
{
	const char *name = mime_charset_iconv_name(label);
	GString *out;
	char *result;

	if (name != NULL && g_ascii_strcasecmp(name, "UTF-8") == 0)
		return mime_utf8_sanitize(data, (gssize)len, len_r);
	if (name != NULL && g_ascii_strcasecmp(name, "ISO-2022-JP") == 0) {
		out = g_string_sized_new(len + len / 2 + 1);
		if (iso2022jp_to_utf8((const guint8 *)data, len, out)) {
			result = mime_utf8_sanitize(out->str, (gssize)out->len, len_r);
			g_string_free(out, TRUE);
			return result;
		}
		/* a set only ISO-2022-JP-2 has (Chinese, Korean, Latin-1, Greek) */
		g_string_free(out, TRUE);
		name = "ISO-2022-JP-2";
	}
	if (name == NULL) {
		/* No usable label: UTF-8 when the bytes say so, else the usual Western default. */
		if (g_utf8_validate_len(data, len, NULL))
			return mime_utf8_sanitize(data, (gssize)len, len_r);
		name = "WINDOWS-1252";
	}
	out = g_string_sized_new(len + len / 2 + 1);
	if (!convert_with_iconv(data, len, name, out)) {
		g_string_free(out, TRUE);
		return mime_to_utf8(data, len, NULL, len_r);
	}
	/* iconv's output is UTF-8 already; this only replaces NULs from the source text. */
	result = mime_utf8_sanitize(out->str, (gssize)out->len, len_r);
	g_string_free(out, TRUE);
	return result;
}

size_t mime_normalize_newlines(char *s, size_t len)
{
	size_t r, w = 0;

	for (r = 0; r < len; r++) {
		if (s[r] == '\r') {
			s[w++] = '\n';
			if (r + 1 < len && s[r + 1] == '\n')
				r++;
		} else {
			s[w++] = s[r];
		}
	}
	return w;
}
