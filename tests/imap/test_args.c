/* test_args.c — unit tests of everything that puts caller data on the wire, plus small helpers.
 *
 * Quoted string vs literal choice (and LITERAL+/LITERAL- forms), search-criteria formatting
 * with CHARSET UTF-8, refusal of CR/LF/NUL and of criteria text that could open a string or
 * literal, UID-set validation and ESEARCH sequence-set expansion, the errno mapping, and the
 * connect loop falling through to the next getaddrinfo address (IPv6 then IPv4).
 */
#include "cmd_wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

static char *encode(const char *s, size_t len, enum imap_literal_mode mode, int *err_r)
{
	struct imap_cmd *cmd = imap_cmd_new();
	*err_r = imap_cmd_add_string(cmd, s, len, mode);
	char *w = cmd_wire(cmd);
	imap_cmd_free(cmd);
	return w;
}

static void test_quoting(void)
{
	static const struct {
		const char *in;
		enum imap_literal_mode mode;
		const char *out;
	} cases[] = {
	    {"INBOX", IMAP_LITERAL_SYNC, "\"INBOX\""},
	    {"", IMAP_LITERAL_SYNC, "\"\""},
	    {"a \"b\" \\c", IMAP_LITERAL_SYNC, "\"a \\\"b\\\" \\\\c\""},
	    {"x) LOGOUT", IMAP_LITERAL_SYNC, "\"x) LOGOUT\""},
	    {"{5}", IMAP_LITERAL_SYNC, "\"{5}\""},
	    {"caf\xc3\xa9", IMAP_LITERAL_SYNC, "{5}\r\n|caf\xc3\xa9"},
	    {"caf\xc3\xa9", IMAP_LITERAL_PLUS, "{5+}\r\ncaf\xc3\xa9"},
	    {"caf\xc3\xa9", IMAP_LITERAL_MINUS, "{5+}\r\ncaf\xc3\xa9"},
	    {"tab\there", IMAP_LITERAL_SYNC, "{8}\r\n|tab\there"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		int err;
		char *w = encode(cases[i].in, strlen(cases[i].in), cases[i].mode, &err);
		g_assert_cmpint(err, ==, 0);
		g_assert_cmpstr(w, ==, cases[i].out);
		g_free(w);
	}
	/* LITERAL- allows {n+} only up to 4096 bytes */
	char *big = g_strnfill(4097, 'x');
	big[0] = (char)0xc3;
	big[1] = (char)0xa9;
	int err;
	char *w = encode(big, 4097, IMAP_LITERAL_MINUS, &err);
	g_assert_true(g_str_has_prefix(w, "{4097}\r\n|"));
	g_free(w);
	w = encode(big, 4096, IMAP_LITERAL_MINUS, &err);
	g_assert_true(g_str_has_prefix(w, "{4096+}\r\n"));
	g_free(w);
	g_free(big);
}

static void test_quoting_refuses_crlf_nul(void)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
	    {"a\rb", 3}, {"a\nb", 3},          {"x\r\nA1 DELETE INBOX", 18},
	    {"a\0b", 3}, {"caf\xc3\xa9\n", 6},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		for (int mode = IMAP_LITERAL_SYNC; mode <= IMAP_LITERAL_MINUS; mode++) {
			int err;
			char *w = encode(bad[i].s, bad[i].len, (enum imap_literal_mode)mode, &err);
			g_assert_cmpint(err, ==, -EINVAL);
			g_assert_cmpstr(w, ==, ""); /* nothing was appended */
			g_free(w);
		}
	}
}

static int search(char **wire_r, bool esearch, enum imap_literal_mode mode, const char *criteria,
                  ...)
{
	va_list ap;
	va_start(ap, criteria);
	struct imap_cmd *cmd = imap_cmd_new();
	int err = imap_format_search(cmd, esearch, mode, criteria, ap);
	va_end(ap);
	*wire_r = cmd_wire(cmd);
	imap_cmd_free(cmd);
	return err;
}

static void test_search_format(void)
{
	char *w;
	g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, "ALL"), ==, 0);
	g_assert_cmpstr(w, ==, "UID SEARCH ALL");
	g_free(w);
	g_assert_cmpint(search(&w, true, IMAP_LITERAL_SYNC, "ALL"), ==, 0);
	g_assert_cmpstr(w, ==, "UID SEARCH RETURN (ALL) ALL");
	g_free(w);
	g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, "SUBJECT %s", "hello \"world\""), ==,
	                0);
	g_assert_cmpstr(w, ==, "UID SEARCH SUBJECT \"hello \\\"world\\\"\"");
	g_free(w);
	g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, "OR (FROM %s) (SUBJECT %s) UID 1:*",
	                       "bob", "\xeb\xb0\x9b\xec\x9d\x80"),
	                ==, 0);
	g_assert_cmpstr(w, ==,
	                "UID SEARCH CHARSET UTF-8 OR (FROM \"bob\") (SUBJECT {6}\r\n|"
	                "\xeb\xb0\x9b\xec\x9d\x80) UID 1:*");
	g_free(w);
	g_assert_cmpint(search(&w, true, IMAP_LITERAL_PLUS, "SUBJECT %s", "\xc3\xa9"), ==, 0);
	g_assert_cmpstr(w, ==, "UID SEARCH RETURN (ALL) CHARSET UTF-8 SUBJECT {2+}\r\n\xc3\xa9");
	g_free(w);
	g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, "SINCE 1-Jan-2024 NOT DELETED"), ==,
	                0);
	g_assert_cmpstr(w, ==, "UID SEARCH SINCE 1-Jan-2024 NOT DELETED");
	g_free(w);
}

static void test_search_injection_refused(void)
{
	char *w;
	/* arguments with CR/LF */
	g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, "SUBJECT %s", "x\r\nA1 LOGOUT"), ==,
	                -EINVAL);
	g_free(w);
	g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, "SUBJECT %s", "x\n"), ==, -EINVAL);
	g_free(w);
	/* non-UTF-8 argument cannot claim CHARSET UTF-8 */
	g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, "SUBJECT %s", "\xff"), ==, -EINVAL);
	g_free(w);
	g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, "SUBJECT %s", NULL), ==, -EINVAL);
	g_free(w);
	/* criteria text that could open a string, a literal or end the line */
	static const char *const bad[] = {
	    "SUBJECT \"x\"",
	    "SUBJECT {5}",
	    "SUBJECT x\r\nA1 LOGOUT",
	    "ALL\n",
	    "SUBJECT \\x",
	    "(ALL",
	    "ALL)",
	    "%d",
	    "",
	    "SUBJECT x]",
	    "SUBJECT \xc3\xa9",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_cmpint(search(&w, false, IMAP_LITERAL_SYNC, bad[i]), ==, -EINVAL);
		g_free(w);
	}
}

static void test_uidset(void)
{
	static const char *const good[] = {"1", "1:*", "*", "3,5:9", "4294967295", "*:4", "1,2,3"};
	static const char *const bad[] = {"",    "0", "1:",  ":1",    "1,,2", "4294967296",
	                                  "1 2", "a", "1;2", "1:2:3", "-1",   "1,"};
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++)
		g_assert_true(imap_uidset_valid(good[i]));
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(imap_uidset_valid(bad[i]));
	g_assert_true(imap_uidset_contains("3,5:9", 7));
	g_assert_true(imap_uidset_contains("3,5:9", 3));
	g_assert_false(imap_uidset_contains("3,5:9", 4));
	g_assert_true(imap_uidset_contains("10:*", 4000000000u));
	g_assert_false(imap_uidset_contains("10:*", 9));
	g_assert_true(imap_uidset_contains("9:5", 6));
}

static void test_seqset_expand(void)
{
	GArray *a = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_assert_true(imap_seqset_expand("1:3,5,9:7", a, 100));
	uint32_t want[] = {1, 2, 3, 5, 7, 8, 9};
	g_assert_cmpuint(a->len, ==, G_N_ELEMENTS(want));
	for (guint i = 0; i < a->len; i++)
		g_assert_cmpuint(g_array_index(a, uint32_t, i), ==, want[i]);
	g_array_set_size(a, 0);
	g_assert_false(imap_seqset_expand("1:4294967295", a, 1000)); /* over max_count */
	g_assert_false(imap_seqset_expand("1:*", a, 1000));
	g_assert_false(imap_seqset_expand("0", a, 1000));
	g_assert_false(imap_seqset_expand("1,", a, 1000));
	g_assert_false(imap_seqset_expand("", a, 1000));
	g_array_unref(a);
}

static void test_errno_mapping(void)
{
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_OK, NULL), ==, 0);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_NO, NULL), ==, -ENOENT);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_NO, "NONEXISTENT"), ==, -ENOENT);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_NO, "AUTHENTICATIONFAILED"), ==,
	                -EACCES);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_NO, "NOPERM"), ==, -EACCES);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_NO, "NOPERMX"), ==, -ENOENT);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_BAD, NULL), ==, -EPROTO);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_BYE, NULL), ==, -ECONNABORTED);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_LOST, NULL), ==, -ECONNABORTED);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_TIMEOUT, NULL), ==, -ETIMEDOUT);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_PROTOCOL, NULL), ==, -EPROTO);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_TLS_VERIFY, NULL), ==, -EKEYREJECTED);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_LOGIN_REFUSED, NULL), ==, -EACCES);
	g_assert_cmpint(imap_outcome_to_errno(IMAP_OUTCOME_INSECURE, NULL), ==, -EPROTO);
}

/* A listening socket on addr; returns its fd and fills the port in. */
static int listener(struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM, 0);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)ss, len), ==, 0);
	g_assert_cmpint(listen(fd, 4), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)ss, &len), ==, 0);
	return fd;
}

static void test_connect_tries_every_address(void)
{
	/* ::1 on a closed port first, then 127.0.0.1 listening: must end up on the second; and
	 * the other way round (IPv4 refused, IPv6 answers). */
	for (int v6_listens = 0; v6_listens <= 1; v6_listens++) {
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
		                          .sin6_addr = IN6ADDR_LOOPBACK_INIT};
		struct sockaddr_in a4 = {.sin_family = AF_INET};
		a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		struct sockaddr_storage s6 = {0}, s4 = {0};
		memcpy(&s6, &a6, sizeof(a6));
		memcpy(&s4, &a4, sizeof(a4));
		int l6 = listener(&s6, sizeof(a6)), l4 = listener(&s4, sizeof(a4));
		/* close the one that must refuse, keeping its (now free) port */
		if (v6_listens)
			close(l4);
		else
			close(l6);
		struct addrinfo ai6 = {.ai_family = AF_INET6,
		                       .ai_socktype = SOCK_STREAM,
		                       .ai_addr = (struct sockaddr *)&s6,
		                       .ai_addrlen = sizeof(a6)};
		struct addrinfo ai4 = {.ai_family = AF_INET,
		                       .ai_socktype = SOCK_STREAM,
		                       .ai_addr = (struct sockaddr *)&s4,
		                       .ai_addrlen = sizeof(a4)};
		if (v6_listens)
			ai4.ai_next = &ai6;
		else
			ai6.ai_next = &ai4;
		int fd = -1;
		int err = imap_connect_addrinfo(v6_listens ? &ai4 : &ai6, 1000, &fd);
		g_assert_cmpint(err, ==, 0);
		g_assert_cmpint(fd, >=, 0);
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		g_assert_cmpint(getpeername(fd, (struct sockaddr *)&peer, &pl), ==, 0);
		g_assert_cmpint(peer.ss_family, ==, v6_listens ? AF_INET6 : AF_INET);
		close(fd);
		close(v6_listens ? l6 : l4);
		/* nothing listens any more: the last error is reported */
		fd = -1;
		err = imap_connect_addrinfo(v6_listens ? &ai4 : &ai6, 1000, &fd);
		g_assert_cmpint(err, ==, -ECONNREFUSED);
		g_assert_cmpint(fd, ==, -1);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/args/quoting", test_quoting);
	g_test_add_func("/args/quoting-refuses-crlf-nul", test_quoting_refuses_crlf_nul);
	g_test_add_func("/args/search-format", test_search_format);
	g_test_add_func("/args/search-injection-refused", test_search_injection_refused);
	g_test_add_func("/args/uidset", test_uidset);
	g_test_add_func("/args/seqset-expand", test_seqset_expand);
	g_test_add_func("/errors/mapping", test_errno_mapping);
	g_test_add_func("/net/connect-tries-every-address", test_connect_tries_every_address);
	return g_test_run();
}
