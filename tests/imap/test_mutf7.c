/* test_mutf7.c — unit tests of modified UTF-7 mailbox-name conversion (RFC 3501 5.1.3).
 *
 * Known pairs both ways (RFC examples, Korean and astral-plane names), every class of malformed
 * input the decoder must refuse, and a randomised round trip in both directions.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

static const struct {
	const char *wire;
	const char *utf8;
} pairs[] = {
    {"INBOX", "INBOX"},
    {"", ""},
    {"&-", "&"},
    {"a&-b", "a&b"},
    {"&-&-", "&&"},
    {"&Jjo-", "\u263a"},
    {"&U,BTFw-", "\u53f0\u5317"},
    {"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"},
    {"&2D3cAA-", "\U0001F400"},
    {"&vBvHQNO4ycDVaA-", "\ubc1b\uc740\ud3b8\uc9c0\ud568"},
    {"Entw&APw-rfe", "Entw\u00fcrfe"},
    {"&AOk-t&AOk-", "\u00e9t\u00e9"},
    {"&Jjo-&-", "\u263a&"},
    {"tab&AAk-x", "tab\tx"},
    {"del&AH8-", "del\x7f"},
    {"&AOkA6QDp-", "\u00e9\u00e9\u00e9"}, /* 48 bits: no padding at all */
};

static void test_decode_valid(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(pairs); i++) {
		char *out = NULL;
		g_assert_cmpint(imap_mutf7_decode(pairs[i].wire, &out), ==, 0);
		g_assert_cmpstr(out, ==, pairs[i].utf8);
		g_free(out);
	}
}

static void test_encode_valid(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(pairs); i++) {
		char *out = NULL;
		g_assert_cmpint(imap_mutf7_encode(pairs[i].utf8, &out), ==, 0);
		g_assert_cmpstr(out, ==, pairs[i].wire);
		g_free(out);
	}
}

static void test_decode_malformed(void)
{
	static const char *const bad[] = {
	    "Inbox&AGE-",  /* base64 used for printable ASCII 'a' */
	    "&ACY-",       /* '&' itself in base64 (must be "&-") */
	    "&ACA-",       /* space in base64 */
	    "&Jjo",        /* unterminated */
	    "&",           /* unterminated */
	    "abc&",        /* unterminated */
	    "&-&",         /* unterminated after a valid "&-" */
	    "&2D0-",       /* lone high surrogate */
	    "&3AA-",       /* lone low surrogate */
	    "&2D3YPQ-",    /* high surrogate followed by another high */
	    "&2D0AOk-",    /* high surrogate followed by a BMP char */
	    "&Jjp-",       /* non-zero padding bits */
	    "&JjoA-",      /* a spare base64 character */
	    "&AAA-",       /* NUL */
	    "&Jjo-&Jjo-",  /* two runs back to back (an encoder would merge them) */
	    "&Jjo=-",      /* '=' padding is not used */
	    "&Jjo/-",      /* '/' is ',' in modified base64 */
	    "caf\xc3\xa9", /* raw 8-bit */
	    "a\tb",        /* raw control character */
	    "a\x7f",       /* raw DEL */
	    "&Jjo-\x80",   /* raw 8-bit after a run */
	    "&AOkA6QDp",   /* unterminated after full units */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *out = (char *)"sentinel";
		int r = imap_mutf7_decode(bad[i], &out);
		if (r != -EINVAL)
			g_test_message("accepted malformed %s", bad[i]);
		g_assert_cmpint(r, ==, -EINVAL);
		g_assert_null(out);
	}
}

static void test_encode_invalid_utf8(void)
{
	static const char *const bad[] = {
	    "\xff", "abc\xc3", "\xed\xa0\x80", /* a surrogate written in UTF-8 */
	    "\xc0\x80",                        /* overlong NUL */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *out = (char *)"sentinel";
		g_assert_cmpint(imap_mutf7_encode(bad[i], &out), ==, -EINVAL);
		g_assert_null(out);
	}
}

static gunichar random_char(GRand *rnd)
{
	switch (g_rand_int_range(rnd, 0, 5)) {
	case 0:
		return (gunichar)g_rand_int_range(rnd, 0x20, 0x7f);
	case 1:
		return '&';
	case 2:
		return (gunichar)g_rand_int_range(rnd, 1, 0x20);
	case 3: {
		gunichar c;
		do
			c = (gunichar)g_rand_int_range(rnd, 0x80, 0x10000);
		while (c >= 0xd800 && c <= 0xdfff);
		return c;
	}
	default:
		return (gunichar)g_rand_int_range(rnd, 0x10000, 0x110000);
	}
}

static void test_round_trip_random(void)
{
	GRand *rnd = g_rand_new_with_seed(20240601);
	for (int n = 0; n < 20000; n++) {
		GString *s = g_string_new(NULL);
		int len = g_rand_int_range(rnd, 0, 12);
		for (int i = 0; i < len; i++)
			g_string_append_unichar(s, random_char(rnd));
		char *wire = NULL, *back = NULL, *wire2 = NULL;
		g_assert_cmpint(imap_mutf7_encode(s->str, &wire), ==, 0);
		/* the wire form is printable ASCII only */
		for (const char *p = wire; *p; p++)
			g_assert_true(*p >= 0x20 && *p < 0x7f);
		g_assert_cmpint(imap_mutf7_decode(wire, &back), ==, 0);
		g_assert_cmpstr(back, ==, s->str);
		g_assert_cmpint(imap_mutf7_encode(back, &wire2), ==, 0);
		g_assert_cmpstr(wire2, ==, wire);
		g_free(wire);
		g_free(wire2);
		g_free(back);
		g_string_free(s, TRUE);
	}
	g_rand_free(rnd);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mutf7/decode-valid", test_decode_valid);
	g_test_add_func("/mutf7/encode-valid", test_encode_valid);
	g_test_add_func("/mutf7/decode-malformed", test_decode_malformed);
	g_test_add_func("/mutf7/encode-invalid-utf8", test_encode_invalid_utf8);
	g_test_add_func("/mutf7/round-trip-random", test_round_trip_random);
	return g_test_run();
}
