/* fuzz_imap_parser_deflate.c — libFuzzer target: the response parser behind COMPRESS=DEFLATE.
 *
 * The first byte picks the mode and seeds the chunking.  With its top bit clear the rest is a
 * server's plain byte stream, which this target deflates itself with flushes of every kind
 * (none, partial, sync, full) at points the seed picks, then feeds through the client's
 * inflater (imap/compress.c) in random chunks pulled through random windows into the parser:
 * the transcript must equal the plain stream's parsed directly, so compression is invisible to
 * the parser whatever the flushes.  With the top bit set the rest is taken as the compressed
 * stream itself (hostile or corrupt deflate data): it is decoded and parsed once whole and once
 * in random chunks and windows, and the two runs must agree, error or not.  abort() on any
 * difference; the sanitizers do the rest.  Caps are small so hostile sizes are reached fast.
 */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void dump_arg(GString *out, const struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_STRING:
		g_string_append_printf(out, "%c%u:", a->type == IMAP_ARG_ATOM ? 'a' : 's', a->len);
		g_string_append_len(out, a->u.str, a->len);
		break;
	case IMAP_ARG_NIL:
		g_string_append(out, "N");
		break;
	case IMAP_ARG_STREAMED:
		g_string_append_printf(out, "S%" G_GUINT64_FORMAT, a->u.streamed_size);
		break;
	case IMAP_ARG_LIST:
		g_string_append_c(out, '(');
		for (unsigned i = 0; i < a->len; i++)
			dump_arg(out, &a->u.items[i]);
		g_string_append_c(out, ')');
		break;
	default:
		abort();
	}
}

/* The parser over a growing stream of decoded bytes; its transcript in out. */
struct parse {
	struct imap_parser *p;
	GString *out;
	bool bad;
};

static void parse_init(struct parse *ps)
{
	ps->p = imap_parser_new(64 * 1024, 8);
	imap_parser_set_max_text(ps->p, 256 * 1024);
	ps->out = g_string_new(NULL);
	ps->bad = false;
}

static void parse_feed(struct parse *ps, const uint8_t *buf, size_t len)
{
	size_t pos = 0;
	while (!ps->bad && pos < len) {
		size_t used;
		struct imap_response *r = NULL;
		enum imap_parse_result res =
		    imap_parser_feed(ps->p, buf + pos, len - pos, &used, &r);
		if (used > len - pos)
			abort();
		pos += used;
		if (res == IMAP_PARSE_OK) {
			g_string_append_printf(ps->out, "[%d %s %d ", r->kind,
			                       r->tag ? r->tag : "-", r->status);
			for (unsigned i = 0; i < r->nargs; i++)
				dump_arg(ps->out, &r->args[i]);
			g_string_append_printf(ps->out, " %s %s]\n", r->code ? r->code : "-",
			                       r->text ? r->text : "-");
			imap_response_free(r);
		} else if (res == IMAP_PARSE_BAD) {
			g_string_append_printf(ps->out, "BAD %s\n", imap_parser_error(ps->p));
			ps->bad = true;
		} else if (pos != len) {
			abort(); /* NEED_MORE must consume everything */
		}
	}
}

static char *parse_done(struct parse *ps)
{
	imap_parser_free(ps->p);
	return g_string_free(ps->out, FALSE);
}

/* Decode comp through the client's inflater into the parser: pushed in chunks and pulled
 * through windows chosen by rnd (NULL: whole, one large window).  The transcript ends with
 * the inflater's verdict. */
static char *run_compressed(const uint8_t *comp, size_t len, GRand *rnd)
{
	struct imap_zstream *z;
	struct parse ps;
	uint8_t window[4096];
	size_t pos = 0;
	int err = 0;

	if (imap_zstream_new(&z) < 0)
		abort();
	parse_init(&ps);
	while (err == 0 && !ps.bad && (pos < len || imap_zstream_pending(z))) {
		if (!imap_zstream_pending(z)) {
			size_t n = rnd == NULL ? len : 1 + (size_t)g_rand_int_range(rnd, 0, 64);
			if (n > len - pos)
				n = len - pos;
			imap_zstream_push(z, comp + pos, n);
			pos += n;
		}
		for (;;) {
			size_t cap = rnd == NULL ? sizeof(window)
			                         : 1 + (size_t)g_rand_int_range(rnd, 0, 300);
			size_t got;
			if ((err = imap_zstream_pull(z, window, cap, &got)) < 0)
				break;
			if (got > cap)
				abort();
			if (got == 0) {
				if (imap_zstream_pending(z))
					abort(); /* pending() promised bytes */
				break;
			}
			parse_feed(&ps, window, got);
			if (ps.bad)
				break;
		}
	}
	if (err < 0)
		g_string_append_printf(ps.out, "ZERR %s\n", imap_zstream_error(z));
	imap_zstream_free(z);
	return parse_done(&ps);
}

/* The plain stream deflated with flushes where rnd says. */
static GByteArray *deflate_with_flushes(const uint8_t *plain, size_t len, GRand *rnd)
{
	static const int flushes[] = {Z_NO_FLUSH, Z_PARTIAL_FLUSH, Z_SYNC_FLUSH, Z_FULL_FLUSH};
	GByteArray *out = g_byte_array_new();
	z_stream zs;
	uint8_t buf[4096];
	size_t pos = 0;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, g_rand_int_range(rnd, 1, 10), Z_DEFLATED, -15, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	while (pos < len) {
		size_t n = 1 + (size_t)g_rand_int_range(rnd, 0, 80);
		if (n > len - pos)
			n = len - pos;
		zs.next_in = (Bytef *)plain + pos;
		zs.avail_in = (uInt)n;
		pos += n;
		/* the last piece always ends in a flush: a server flushes what it has sent */
		int flush = pos == len ? Z_SYNC_FLUSH : flushes[g_rand_int_range(rnd, 0, 4)];
		do {
			zs.next_out = buf;
			zs.avail_out = sizeof(buf);
			if (deflate(&zs, flush) == Z_STREAM_ERROR)
				abort();
			g_byte_array_append(out, buf, (guint)(sizeof(buf) - zs.avail_out));
		} while (zs.avail_out == 0);
	}
	deflateEnd(&zs);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	GRand *rnd = g_rand_new_with_seed(data[0]);
	const uint8_t *rest = data + 1;
	size_t len = size - 1;

	if (data[0] & 0x80) {
		char *whole = run_compressed(rest, len, NULL);
		char *split = run_compressed(rest, len, rnd);
		if (strcmp(whole, split) != 0)
			abort(); /* chunks or windows changed the result */
		g_free(whole);
		g_free(split);
	} else {
		struct parse ps;
		parse_init(&ps);
		parse_feed(&ps, rest, len);
		char *direct = parse_done(&ps);
		GByteArray *comp = deflate_with_flushes(rest, len, rnd);
		char *through = run_compressed(comp->data, comp->len, rnd);
		if (strcmp(direct, through) != 0)
			abort(); /* compression was not transparent to the parser */
		g_byte_array_unref(comp);
		g_free(direct);
		g_free(through);
	}
	g_rand_free(rnd);
	return 0;
}
