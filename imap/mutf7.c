/* mutf7.c — modified UTF-7 mailbox names (RFC 3501 section 5.1.3) to and from UTF-8.
 *
 * Servers name mailboxes in modified UTF-7: printable ASCII stands for itself ('&' as "&-"),
 * everything else is UTF-16BE in base64 (',' instead of '/') between '&' and '-'.  The decoder
 * accepts only the canonical form, so that encode(decode(x)) == x for every x it accepts: that
 * rules out printable ASCII inside base64, two base64 runs back to back, non-zero padding bits,
 * spare base64 characters, lone surrogates, NUL, raw 8-bit bytes and an unterminated '&'.  A
 * name that fails to decode keeps its raw form (struct imap_folder.name is NULL).
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static bool printable_ascii(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Decode the base64 run starting at in (just after '&', up to but excluding '-') into out.
 * Returns the number of input bytes used (run length), or -1. */
static ssize_t decode_run(const char *in, GString *out)
{
	uint32_t bits = 0;
	unsigned nbits = 0;
	uint32_t high = 0; /* pending high surrogate */
	size_t i = 0;
	for (; in[i] != '-'; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			return -1; /* includes NUL: unterminated */
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return -1; /* high surrogate not followed by low */
			uint32_t cp = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
			high = 0;
			char buf[6];
			g_string_append_len(out, buf, g_unichar_to_utf8(cp, buf));
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return -1; /* lone low surrogate */
		} else if (unit == 0 || printable_ascii(unit)) {
			return -1; /* NUL, or ASCII that should have been written plainly */
		} else {
			char buf[6];
			g_string_append_len(out, buf, g_unichar_to_utf8(unit, buf));
		}
	}
	/* leftover bits are padding: fewer than 6 (else a spare character) and all zero */
	if (high != 0 || nbits >= 6 || bits != 0 || i == 0)
		return -1;
	return (ssize_t)i;
}

int imap_mutf7_decode(const char *in, char **out_r)
{
	GString *out = g_string_new(NULL);
	size_t i = 0;
	while (in[i] != '\0') {
		unsigned char c = (unsigned char)in[i];
		if (c != '&') {
			if (!printable_ascii(c))
				goto bad;
			g_string_append_c(out, (char)c);
			i++;
			continue;
		}
		if (in[i + 1] == '-') {
			g_string_append_c(out, '&');
			i += 2;
			continue;
		}
		ssize_t n = decode_run(in + i + 1, out);
		if (n < 0)
			goto bad;
		i += 1 + (size_t)n + 1;
		/* a second run right after this one would have been merged by any encoder */
		if (in[i] == '&' && in[i + 1] != '-')
			goto bad;
	}
	*out_r = g_string_free(out, FALSE);
	return 0;
bad:
	g_string_free(out, TRUE);
	*out_r = NULL;
	return -EINVAL;
}

static void flush_bits(GString *out, uint32_t *bits, unsigned *nbits)
{
	while (*nbits >= 6) {
		*nbits -= 6;
		g_string_append_c(out, b64_chars[(*bits >> *nbits) & 0x3f]);
	}
	*bits &= (1u << *nbits) - 1;
}

int imap_mutf7_encode(const char *utf8, char **out_r)
{
	*out_r = NULL;
	if (!g_utf8_validate(utf8, -1, NULL))
		return -EINVAL;
	GString *out = g_string_new(NULL);
	const char *p = utf8;
	while (*p != '\0') {
		gunichar c = g_utf8_get_char(p);
		if (printable_ascii(c)) {
			g_string_append(out, c == '&' ? "&-" : (char[]){(char)c, '\0'});
			p++;
			continue;
		}
		/* a run of everything up to the next printable ASCII character */
		uint32_t bits = 0;
		unsigned nbits = 0;
		g_string_append_c(out, '&');
		while (*p != '\0' && !printable_ascii(c = g_utf8_get_char(p))) {
			gunichar2 units[2];
			int n = 1;
			if (c >= 0x10000) {
				units[0] = (gunichar2)(0xd800 + ((c - 0x10000) >> 10));
				units[1] = (gunichar2)(0xdc00 + ((c - 0x10000) & 0x3ff));
				n = 2;
			} else {
				units[0] = (gunichar2)c;
			}
			for (int k = 0; k < n; k++) {
				bits = (bits << 16) | units[k];
				nbits += 16;
				flush_bits(out, &bits, &nbits);
			}
			p = g_utf8_next_char(p);
		}
		if (nbits > 0)
			g_string_append_c(out, b64_chars[(bits << (6 - nbits)) & 0x3f]);
		g_string_append_c(out, '-');
	}
	*out_r = g_string_free(out, FALSE);
	return 0;
}
