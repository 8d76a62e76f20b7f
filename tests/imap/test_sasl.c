/* test_sasl.c — unit tests of the JSON reader for OAuth2 error challenges (imap/sasl.c).
 *
 * The challenge comes from the server, so the reader must take well-formed objects from real
 * servers (Gmail, Microsoft, Dovecot) and return NULL, never crash or read past the end, on
 * anything else: truncated text, deep nesting, bad escapes, trailing garbage.
 */
#include "imap-private.h"

#include <string.h>

static char *field(const char *json, const char *key)
{
	/* a copy without the terminating NUL, so a read past len shows under ASan */
	size_t n = strlen(json);
	char *buf = g_memdup2(json, n);
	char *v = imap_sasl_json_field(buf, n, key);
	g_free(buf);
	return v;
}

static void check(const char *json, const char *key, const char *want)
{
	char *v = field(json, key);
	g_assert_cmpstr(v, ==, want);
	g_free(v);
}

static void test_real_challenges(void)
{
	const char *gmail = "{\"status\":\"400\",\"schemes\":\"Bearer\","
	                    "\"scope\":\"https://mail.google.com/\"}";
	check(gmail, "status", "400");
	check(gmail, "scope", "https://mail.google.com/");
	check(gmail, "missing", NULL);
	const char *dovecot = "{\"status\":\"invalid_token\"}";
	check(dovecot, "status", "invalid_token");
	check(dovecot, "scope", NULL);
	check(" { \"status\" : 401 , \"scope\" : \"a b\" } \r\n", "status", "401");
	check("{\"openid-configuration\":\"https://x/\",\"status\":\"invalid_token\"}", "status",
	      "invalid_token");
}

static void test_escapes_and_nesting(void)
{
	check("{\"status\":\"a\\\"b\\\\c\\/d\\u0041\\u00e9\"}", "status", "a\"b\\c/dA\xc3\xa9");
	check("{\"x\":{\"status\":\"inner\"},\"status\":\"outer\"}", "status", "outer");
	check("{\"x\":[1,{\"a\":[true,null]},\"s\"],\"status\":\"ok\"}", "status", "ok");
	check("{\"status\":{\"nested\":1}}", "status", NULL);
	check("{\"status\":\"first\",\"status\":\"second\"}", "status", "first");
	check("{\"status\":\"\\ud800\"}", "status", "?");
	check("{}", "status", NULL);
}

static void test_malformed(void)
{
	const char *bad[] = {
	    "",
	    "[]",
	    "{",
	    "{\"status\"",
	    "{\"status\":",
	    "{\"status\":\"abc",
	    "{\"status\":\"abc\"",
	    "{\"status\":\"abc\",}",
	    "{\"status\":\"a\\q\"}",
	    "{\"status\":\"a\\u12\"}",
	    "{\"status\":\"x\"} trailing",
	    "{status:\"x\"}",
	    "{\"status\":\"a\nb\"}",
	    "{\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]],\"status\":\"deep\"}",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *v = field(bad[i], "status");
		if (v != NULL)
			g_error("malformed %s gave %s", bad[i], v);
	}
	g_assert_null(imap_sasl_json_field(NULL, 0, "status"));
	/* an embedded NUL ends nothing early: the length rules */
	g_assert_null(imap_sasl_json_field("{\"status\":\"a\0b\"}", 16, "status"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sasl/json/real-challenges", test_real_challenges);
	g_test_add_func("/sasl/json/escapes-and-nesting", test_escapes_and_nesting);
	g_test_add_func("/sasl/json/malformed", test_malformed);
	return g_test_run();
}
