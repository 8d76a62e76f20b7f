/* test_compress.c — unit tests of the COMPRESS=DEFLATE layer (imap/compress.c), no network.
 *
 * The "server" here is zlib itself, deflating responses the way servers do: a Z_SYNC_FLUSH
 * (Dovecot, Cyrus) or a Z_PARTIAL_FLUSH (whose empty block ends in the middle of a byte) after
 * each response.  The stream is cut at every byte boundary and fed in two pieces, and fed one
 * byte at a time: the reader must hand out every response whose flush has arrived, never wait
 * for the rest of a block (the interop bug that stalls sessions).  Also: pending() is exact for
 * every window size (IDLE polls the socket only when it says nothing is waiting), corrupt
 * input and data after the stream's end are errors, and what the client deflates is complete
 * at its sync-flush marker.  And which peer addresses compress = auto counts as loopback.
 */
#include "imap-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/un.h>
#include <zlib.h>

static const char *const responses[] = {
    "* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n",
    "* 1 FETCH (UID 7 RFC822.SIZE 4711 FLAGS (\\Seen))\r\n",
    "* 2 FETCH (UID 8 BODY[HEADER] {44}\r\nSubject: hello hello hello hello\r\nX: y\r\n\r\n)\r\n",
    "A0003 OK Fetch completed (0.001 + 0.000 secs).\r\n",
    "* 3 EXISTS\r\n",
};

/* The responses deflated as a server would, with flush after each; ends[i] is the offset
 * just past response i's flush, plain_ends[i] the offset of its end in the plain text. */
static GByteArray *server_stream(int flush, size_t *ends, size_t *plain_ends, GString *plain)
{
	z_stream zs;
	GByteArray *out = g_byte_array_new();
	uint8_t buf[4096];

	memset(&zs, 0, sizeof(zs));
	g_assert_cmpint(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
	for (size_t i = 0; i < G_N_ELEMENTS(responses); i++) {
		zs.next_in = (Bytef *)responses[i];
		zs.avail_in = (uInt)strlen(responses[i]);
		do {
			zs.next_out = buf;
			zs.avail_out = sizeof(buf);
			g_assert_cmpint(deflate(&zs, flush), !=, Z_STREAM_ERROR);
			g_byte_array_append(out, buf, sizeof(buf) - zs.avail_out);
		} while (zs.avail_out == 0);
		ends[i] = out->len;
		g_string_append(plain, responses[i]);
		plain_ends[i] = plain->len;
	}
	deflateEnd(&zs);
	return out;
}

/* Pull everything z decodes now into got (windows of cap bytes). */
static void pull_all(struct imap_zstream *z, GString *got, size_t cap)
{
	uint8_t *buf = g_malloc(cap);
	for (;;) {
		size_t n;
		g_assert_cmpint(imap_zstream_pull(z, buf, cap, &n), ==, 0);
		g_assert_cmpuint(n, <=, cap);
		if (n == 0)
			break;
		g_string_append_len(got, (const char *)buf, (gssize)n);
	}
	g_free(buf);
	g_assert_false(imap_zstream_pending(z));
}

/* The plain text available once k compressed bytes have arrived: every response whose flush
 * is inside them. */
static size_t due(size_t k, const size_t *ends, const size_t *plain_ends)
{
	size_t d = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(responses); i++)
		if (ends[i] <= k)
			d = plain_ends[i];
	return d;
}

static void check_cuts(int flush)
{
	size_t ends[G_N_ELEMENTS(responses)], plain_ends[G_N_ELEMENTS(responses)];
	GString *plain = g_string_new(NULL);
	GByteArray *s = server_stream(flush, ends, plain_ends, plain);

	/* cut at every byte boundary: two pieces */
	for (size_t k = 0; k <= s->len; k++) {
		struct imap_zstream *z;
		GString *got = g_string_new(NULL);
		g_assert_cmpint(imap_zstream_new(&z), ==, 0);
		imap_zstream_push(z, s->data, k);
		pull_all(z, got, 65536);
		g_assert_cmpuint(got->len, >=, due(k, ends, plain_ends));
		g_assert_cmpuint(got->len, <=, plain->len);
		g_assert_true(memcmp(got->str, plain->str, got->len) == 0);
		imap_zstream_push(z, s->data + k, s->len - k);
		pull_all(z, got, 65536);
		g_assert_cmpstr(got->str, ==, plain->str);
		imap_zstream_free(z);
		g_string_free(got, TRUE);
	}
	/* one byte at a time, pulling after each */
	{
		struct imap_zstream *z;
		GString *got = g_string_new(NULL);
		g_assert_cmpint(imap_zstream_new(&z), ==, 0);
		for (size_t k = 1; k <= s->len; k++) {
			imap_zstream_push(z, s->data + k - 1, 1);
			pull_all(z, got, 65536);
			g_assert_cmpuint(got->len, >=, due(k, ends, plain_ends));
			g_assert_true(memcmp(got->str, plain->str, got->len) == 0);
		}
		g_assert_cmpstr(got->str, ==, plain->str);
		imap_zstream_free(z);
		g_string_free(got, TRUE);
	}
	g_byte_array_unref(s);
	g_string_free(plain, TRUE);
}

static void test_sync_flush_every_cut(void)
{
	check_cuts(Z_SYNC_FLUSH);
}

static void test_partial_flush_every_cut(void)
{
	check_cuts(Z_PARTIAL_FLUSH);
}

/* pending() says exactly whether decoded bytes wait, for every window size, including a
 * window that the last bytes fill exactly. */
static void test_pending_exact(void)
{
	size_t ends[G_N_ELEMENTS(responses)], plain_ends[G_N_ELEMENTS(responses)];
	GString *plain = g_string_new(NULL);
	GByteArray *s = server_stream(Z_SYNC_FLUSH, ends, plain_ends, plain);

	for (size_t cap = 1; cap <= plain->len + 1; cap++) {
		struct imap_zstream *z;
		GString *got = g_string_new(NULL);
		uint8_t *buf = g_malloc(cap);
		g_assert_cmpint(imap_zstream_new(&z), ==, 0);
		imap_zstream_push(z, s->data, s->len);
		for (;;) {
			size_t n;
			bool waiting = got->len < plain->len;
			g_assert_cmpint(imap_zstream_pending(z), ==, waiting);
			g_assert_cmpint(imap_zstream_pull(z, buf, cap, &n), ==, 0);
			if (!waiting) {
				g_assert_cmpuint(n, ==, 0);
				break;
			}
			g_assert_cmpuint(n, >, 0);
			g_string_append_len(got, (const char *)buf, (gssize)n);
		}
		g_assert_cmpstr(got->str, ==, plain->str);
		g_free(buf);
		imap_zstream_free(z);
		g_string_free(got, TRUE);
	}
	g_byte_array_unref(s);
	g_string_free(plain, TRUE);
}

static void test_corrupt(void)
{
	static const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct imap_zstream *z;
	uint8_t buf[64];
	size_t n;

	g_assert_cmpint(imap_zstream_new(&z), ==, 0);
	imap_zstream_push(z, bad, sizeof(bad));
	g_assert_cmpint(imap_zstream_pull(z, buf, sizeof(buf), &n), ==, -EPROTO);
	g_assert_nonnull(strstr(imap_zstream_error(z), "corrupt compressed data"));
	imap_zstream_free(z);

	/* a good response, then garbage: the response comes out, then the error */
	size_t ends[G_N_ELEMENTS(responses)], plain_ends[G_N_ELEMENTS(responses)];
	GString *plain = g_string_new(NULL);
	GByteArray *s = server_stream(Z_SYNC_FLUSH, ends, plain_ends, plain);
	g_assert_cmpint(imap_zstream_new(&z), ==, 0);
	imap_zstream_push(z, s->data, ends[0]);
	g_assert_cmpint(imap_zstream_pull(z, buf, sizeof(buf), &n), ==, 0);
	g_assert_cmpuint(n, ==, plain_ends[0]);
	imap_zstream_push(z, bad, sizeof(bad));
	g_assert_cmpint(imap_zstream_pull(z, buf, sizeof(buf), &n), ==, -EPROTO);
	imap_zstream_free(z);
	g_byte_array_unref(s);
	g_string_free(plain, TRUE);
}

static void test_data_after_end(void)
{
	z_stream zs;
	uint8_t comp[256], buf[256];
	struct imap_zstream *z;
	size_t n;

	memset(&zs, 0, sizeof(zs));
	g_assert_cmpint(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
	zs.next_in = (Bytef *)"* BYE\r\n";
	zs.avail_in = 7;
	zs.next_out = comp;
	zs.avail_out = sizeof(comp) - 1;
	g_assert_cmpint(deflate(&zs, Z_FINISH), ==, Z_STREAM_END);
	size_t len = sizeof(comp) - 1 - zs.avail_out;
	deflateEnd(&zs);
	comp[len++] = 'x';

	/* the BYE comes out (a server's last words), then the error */
	g_assert_cmpint(imap_zstream_new(&z), ==, 0);
	imap_zstream_push(z, comp, len);
	g_assert_cmpint(imap_zstream_pull(z, buf, sizeof(buf), &n), ==, 0);
	g_assert_cmpuint(n, ==, 7);
	g_assert_true(memcmp(buf, "* BYE\r\n", 7) == 0);
	g_assert_true(imap_zstream_pending(z));
	g_assert_cmpint(imap_zstream_pull(z, buf, sizeof(buf), &n), ==, -EPROTO);
	g_assert_nonnull(strstr(imap_zstream_error(z), "after the end"));
	g_assert_cmpint(imap_zstream_pull(z, buf, sizeof(buf), &n), ==, -EPROTO);
	imap_zstream_free(z);
}

/* What the client sends decodes completely at once (sync flush), a small and a large write,
 * and the counters add up. */
static void test_client_deflate(void)
{
	struct imap_zstream *z;
	GByteArray *wire = g_byte_array_new();
	z_stream zs;
	GString *big = g_string_new(NULL);
	uint64_t raw_in, plain_in, raw_out, plain_out;

	for (int i = 0; big->len < 3 * 1024 * 1024; i++)
		g_string_append_printf(big, "A%04d UID FETCH %d (BODY.PEEK[HEADER])\r\n", i, i);
	g_assert_cmpint(imap_zstream_new(&z), ==, 0);
	memset(&zs, 0, sizeof(zs));
	g_assert_cmpint(inflateInit2(&zs, -15), ==, Z_OK);
	const char *lines[] = {"A0003 ENABLE QRESYNC\r\n", big->str, "A0005 NOOP\r\n"};
	size_t sent = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		size_t len = strlen(lines[i]);
		g_byte_array_set_size(wire, 0);
		g_assert_cmpint(imap_zstream_deflate(z, lines[i], len, wire), ==, 0);
		sent += wire->len;
		/* a sync flush ends in an empty stored block: 00 00 ff ff */
		g_assert_cmpuint(wire->len, >=, 4);
		g_assert_true(memcmp(wire->data + wire->len - 4, "\0\0\xff\xff", 4) == 0);
		char *out = g_malloc(len + 1);
		zs.next_in = wire->data;
		zs.avail_in = wire->len;
		zs.next_out = (Bytef *)out;
		zs.avail_out = (uInt)len + 1;
		g_assert_cmpint(inflate(&zs, Z_SYNC_FLUSH), ==, Z_OK);
		g_assert_cmpuint(zs.avail_in, ==, 0);
		g_assert_cmpuint((size_t)((char *)zs.next_out - out), ==, len);
		g_assert_true(memcmp(out, lines[i], len) == 0);
		g_free(out);
	}
	imap_zstream_counts(z, &raw_in, &plain_in, &raw_out, &plain_out);
	g_assert_cmpuint(raw_out, ==, sent);
	g_assert_cmpuint(plain_out, ==, strlen(lines[0]) + big->len + strlen(lines[2]));
	g_assert_cmpuint(raw_out * 4, <, plain_out); /* repetitive commands do shrink */
	inflateEnd(&zs);
	imap_zstream_free(z);
	g_byte_array_unref(wire);
	g_string_free(big, TRUE);
}

static bool loopback4(const char *addr)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	g_assert_cmpint(inet_pton(AF_INET, addr, &in.sin_addr), ==, 1);
	return imap_sockaddr_is_loopback((struct sockaddr *)&in, sizeof(in));
}

static bool loopback6(const char *addr)
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	g_assert_cmpint(inet_pton(AF_INET6, addr, &in6.sin6_addr), ==, 1);
	return imap_sockaddr_is_loopback((struct sockaddr *)&in6, sizeof(in6));
}

/* compress = auto: 127.0.0.0/8, ::1 and IPv4-mapped 127/8 are loopback; nothing else is
 * (neighbours of those ranges, the unspecified address, another family, a short length). */
static void test_loopback_addresses(void)
{
	g_assert_true(loopback4("127.0.0.1"));
	g_assert_true(loopback4("127.255.254.3"));
	g_assert_false(loopback4("128.0.0.1"));
	g_assert_false(loopback4("126.255.255.255"));
	g_assert_false(loopback4("10.0.0.1"));
	g_assert_false(loopback4("0.0.0.0"));
	g_assert_false(loopback4("1.0.0.127"));
	g_assert_true(loopback6("::1"));
	g_assert_true(loopback6("::ffff:127.0.0.1"));
	g_assert_true(loopback6("::ffff:127.1.2.3"));
	g_assert_false(loopback6("::ffff:10.0.0.1"));
	g_assert_false(loopback6("::2"));
	g_assert_false(loopback6("::"));
	g_assert_false(loopback6("::127.0.0.1")); /* IPv4-compatible, not mapped */
	g_assert_false(loopback6("2001:db8::1"));
	g_assert_false(loopback6("fe80::1"));

	struct sockaddr_in in = {.sin_family = AF_INET};
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_assert_false(imap_sockaddr_is_loopback((struct sockaddr *)&in, sizeof(in) - 4));
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	g_assert_false(imap_sockaddr_is_loopback((struct sockaddr *)&un, sizeof(un)));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/compress/sync_flush_every_cut", test_sync_flush_every_cut);
	g_test_add_func("/compress/partial_flush_every_cut", test_partial_flush_every_cut);
	g_test_add_func("/compress/pending_exact", test_pending_exact);
	g_test_add_func("/compress/corrupt", test_corrupt);
	g_test_add_func("/compress/data_after_end", test_data_after_end);
	g_test_add_func("/compress/client_deflate", test_client_deflate);
	g_test_add_func("/compress/loopback_addresses", test_loopback_addresses);
	return g_test_run();
}
