/* charset.c — turning the bytes of a text part into valid UTF-8 whatever its label says.
 *
 * Real mail lies about charsets in predictable ways (iso-8859-1 text full of windows-1252
 * quotes, euc-kr text with UHC syllables, gb2312 text with GBK characters, "us-ascii" text
 * with 8-bit bytes), so labels are widened to the superset browsers use.  Conversion never
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

char *mime_to_utf8(const char *data, size_t len, const char *label, size_t *len_r)
{
	const char *name = mime_charset_iconv_name(label);
	GString *out;
	char *result;

	if (name != NULL && g_ascii_strcasecmp(name, "UTF-8") == 0)
		return mime_utf8_sanitize(data, (gssize)len, len_r);
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
