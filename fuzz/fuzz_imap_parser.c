/* fuzz_imap_parser.c — libFuzzer target for the IMAP response parser.
 *
 * The input is a server byte stream (the first byte seeds how it is split into chunks).  It is
 * parsed twice, once in a single chunk and once in pseudo-random chunks, with body streaming
 * on; the two runs must produce identical responses and identical sink calls (abort() if not),
 * and the sink must see a well-formed begin/data/end sequence.  Response codes go through
 * imap_parse_code and ESEARCH-like sets through the set helpers, all under small caps so
 * hostile sizes are reached quickly.
 */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>

struct sink {
	GString *log;
	bool open;
	uint64_t expect, got;
	uint32_t uid;
};

static int s_begin(void *ctx, uint32_t uid, const char *item, uint64_t size)
{
	struct sink *s = ctx;
	if (s->open || item == NULL)
		abort(); /* begin inside an open literal, or without the item's name */
	g_string_append_printf(s->log, "B%u:%" G_GUINT64_FORMAT ";", uid, size);
	if (uid % 7 == 3)
		return 1; /* sometimes skip: then no data/end calls may follow */
	s->open = true;
	s->expect = size;
	s->got = 0;
	s->uid = uid;
	return 0;
}

static int s_data(void *ctx, const void *buf, size_t len)
{
	struct sink *s = ctx;
	if (!s->open || len == 0)
		abort();
	s->got += len;
	if (s->got > s->expect)
		abort();
	/* hash the content so chunking differences would show */
	guint h = 5381;
	for (size_t i = 0; i < len; i++)
		h = h * 33 + ((const uint8_t *)buf)[i];
	(void)h;
	g_string_append_len(s->log, buf, (gssize)len);
	return 0;
}

static int s_end(void *ctx, uint32_t uid)
{
	struct sink *s = ctx;
	if (!s->open || s->got != s->expect || uid != s->uid)
		abort();
	s->open = false;
	g_string_append_printf(s->log, "E%u;", uid);
	return 0;
}

static void dump_arg(GString *out, const struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_STRING:
		g_string_append_printf(out, "%c%u:", a->type == IMAP_ARG_ATOM ? 'a' : 's', a->len);
		g_string_append_len(out, a->u.str, a->len);
		if (a->u.str[a->len] != '\0')
			abort(); /* strings must be NUL-terminated */
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
	uint64_t n;
	(void)imap_arg_number(a, &n);
	const char *s = imap_arg_str(a);
	if (s != NULL && a->len < 200) {
		GArray *set = g_array_new(FALSE, FALSE, sizeof(uint32_t));
		if (imap_seqset_expand(s, set, 1000)) {
			for (guint i = 1; i < set->len; i++) {
				if (g_array_index(set, uint32_t, i - 1) >
				    g_array_index(set, uint32_t, i))
					abort();
			}
		}
		g_array_unref(set);
		if (imap_uidset_valid(s))
			(void)imap_uidset_contains(s, 5);
	}
}

static void dump_resp(GString *out, const struct imap_response *r)
{
	g_string_append_printf(out, "[%d %s %d ", r->kind, r->tag ? r->tag : "-", r->status);
	for (unsigned i = 0; i < r->nargs; i++)
		dump_arg(out, &r->args[i]);
	if (r->code != NULL) {
		g_string_append_printf(out, " code=%s", r->code);
		struct imap_response *c = imap_parse_code(r->code);
		if (c != NULL) {
			for (unsigned i = 0; i < c->nargs; i++)
				dump_arg(out, &c->args[i]);
			imap_response_free(c);
		}
	}
	if (r->text != NULL)
		g_string_append_printf(out, " text=%s", r->text);
	g_string_append(out, "]\n");
}

/* Parse data in chunks chosen by rnd (NULL: one chunk); returns the transcript. */
static char *run(const uint8_t *data, size_t size, GRand *rnd)
{
	struct sink s = {g_string_new(NULL), false, 0, 0, 0};
	struct imap_parser_stream st = {s_begin, s_data, s_end, &s};
	struct imap_parser *p = imap_parser_new(64 * 1024, 8);
	imap_parser_set_max_text(p, 256 * 1024);
	imap_parser_set_stream(p, &st);
	GString *out = g_string_new(NULL);
	size_t pos = 0, end = 0;
	while (pos < size) {
		if (end <= pos) {
			/* not MIN(): it would draw the random number twice */
			end = rnd == NULL ? size : pos + 1 + (size_t)g_rand_int_range(rnd, 0, 40);
			if (end > size)
				end = size;
		}
		size_t used;
		struct imap_response *r = NULL;
		enum imap_parse_result res = imap_parser_feed(p, data + pos, end - pos, &used, &r);
		if (used > end - pos)
			abort();
		pos += used;
		if (res == IMAP_PARSE_OK) {
			if (r == NULL)
				abort();
			dump_resp(out, r);
			imap_response_free(r);
		} else if (res == IMAP_PARSE_BAD) {
			if (r != NULL || imap_parser_errno(p) >= 0)
				abort();
			g_string_append_printf(out, "BAD %s\n", imap_parser_error(p));
			break;
		} else if (pos != end) {
			abort(); /* NEED_MORE must consume everything */
		}
	}
	g_string_append(out, "--\n");
	g_string_append_len(out, s.log->str, (gssize)s.log->len);
	g_string_free(s.log, TRUE);
	imap_parser_free(p);
	return g_string_free(out, FALSE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	GRand *rnd = g_rand_new_with_seed(data[0]);
	char *whole = run(data + 1, size - 1, NULL);
	char *split = run(data + 1, size - 1, rnd);
	if (strcmp(whole, split) != 0)
		abort(); /* chunk boundaries changed the result */
	g_free(whole);
	g_free(split);
	g_rand_free(rnd);
	return 0;
}
