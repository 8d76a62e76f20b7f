/* bench_mime.c — decoding throughput of mime/ next to GMime's bare parser.
 *
 * Generates a deterministic ~50 MB mix of realistic messages in memory (plain ASCII,
 * quoted-printable Latin-1, base64 UTF-8 Korean, 8-bit EUC-KR, HTML-only newsletters,
 * multipart/alternative, multipart/mixed with base64 attachments), then times, over several
 * runs, (a) g_mime_parser_construct_message alone and (b) mime_message_parse plus reading every
 * view and attachment, and prints the median throughput of each in MB/s of input.
 *
 * Usage: bench_mime [TOTAL_MB [RUNS]]   (defaults 50 and 5)
 */
#include "mime.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const words[] = {
    "the",      "meeting", "report",   "quarterly", "results",  "please", "review",   "attached",
    "schedule", "project", "deadline", "thanks",    "regards",  "update", "customer", "invoice",
    "budget",   "server",  "release",  "notes",     "tomorrow", "office", "support",  "ticket",
};
static const char *const korean[] = {
    "안녕하세요", "회의", "자료", "검토", "부탁드립니다", "일정", "보고서", "감사합니다",
};
static const char *const latin[] = {
    "café", "résumé", "naïve", "über", "façade", "crème", "brûlée", "Grüße", "señor",
};

static void sentence(GString *s, GRand *r, const char *const *list, int n, int count)
{
	for (int i = 0; i < count; i++) {
		g_string_append(s, list[g_rand_int_range(r, 0, n)]);
		g_string_append_c(s, (i % 12 == 11) ? '\n' : ' ');
	}
	g_string_append(s, ".\n");
}

static void text(GString *s, GRand *r, size_t bytes)
{
	size_t start = s->len;
	while (s->len - start < bytes)
		sentence(s, r, words, G_N_ELEMENTS(words), 40);
}

static void headers(GString *m, GRand *r, const char *content_type, const char *cte)
{
	g_string_append_printf(m,
	                       "Return-Path: <sender%u@example.com>\r\n"
	                       "Received: from mx.example.com by mail.example.org; "
	                       "Mon, 15 Jan 2024 09:30:00 +0000\r\n"
	                       "From: =?UTF-8?B?6rmA7LKg7IiY?= <sender%u@example.com>\r\n"
	                       "To: Recipient <rcpt@example.org>, other@example.org\r\n"
	                       "Subject: =?UTF-8?Q?Report_caf=C3=A9_%u?=\r\n"
	                       "Date: Mon, 15 Jan 2024 09:30:00 +0000\r\n"
	                       "Message-ID: <%u@example.com>\r\n"
	                       "MIME-Version: 1.0\r\n"
	                       "Content-Type: %s\r\n",
	                       g_rand_int(r) % 1000, g_rand_int(r) % 1000, g_rand_int(r) % 1000,
	                       g_rand_int(r), content_type);
	if (cte != NULL)
		g_string_append_printf(m, "Content-Transfer-Encoding: %s\r\n", cte);
	g_string_append(m, "\r\n");
}

static void base64_lines(GString *m, const void *data, size_t len)
{
	gchar *b = g_base64_encode(data, len);
	for (size_t i = 0, n = strlen(b); i < n; i += 76) {
		g_string_append_len(m, b + i, (gssize)MIN(76, n - i));
		g_string_append(m, "\r\n");
	}
	g_free(b);
}

static void html(GString *s, GRand *r, size_t bytes)
{
	size_t start = s->len;
	g_string_append(s, "<html><head><style>p{margin:0}</style><script>var t=1;</script>"
	                   "</head><body><table><tr><td>");
	while (s->len - start < bytes) {
		g_string_append(s, "<p>");
		sentence(s, r, words, G_N_ELEMENTS(words), 30);
		g_string_append(s, " &amp; <a href=\"https://example.com/track?id=12345\">more</a>"
		                   "<br>&nbsp;</p>\n<div><img src=\"x.png\" alt=\"pic\"></div>\n");
	}
	g_string_append(s, "</td></tr></table></body></html>\n");
}

/* One message of kind k into m. */
static void make_message(GString *m, GRand *r, int k)
{
	GString *body = g_string_new(NULL);

	switch (k) {
	case 0: /* plain ASCII */
		headers(m, r, "text/plain; charset=us-ascii", "7bit");
		text(m, r, (size_t)g_rand_int_range(r, 2000, 20000));
		break;
	case 1: { /* quoted-printable Latin-1 */
		headers(m, r, "text/plain; charset=iso-8859-1", "quoted-printable");
		while (body->len < (size_t)g_rand_int_range(r, 2000, 15000))
			sentence(body, r, latin, G_N_ELEMENTS(latin), 30);
		gsize n;
		gchar *l1 =
		    g_convert(body->str, (gssize)body->len, "ISO-8859-1", "UTF-8", NULL, &n, NULL);
		for (gsize i = 0, col = 0; i < n; i++) {
			unsigned char c = (unsigned char)l1[i];
			if (col > 70) {
				g_string_append(m, "=\r\n");
				col = 0;
			}
			if (c == '\n') {
				g_string_append(m, "\r\n");
				col = 0;
			} else if (c >= 0x80 || c == '=') {
				g_string_append_printf(m, "=%02X", c);
				col += 3;
			} else {
				g_string_append_c(m, (char)c);
				col++;
			}
		}
		g_free(l1);
		break;
	}
	case 2: /* base64 UTF-8 Korean */
		headers(m, r, "text/plain; charset=utf-8", "base64");
		while (body->len < (size_t)g_rand_int_range(r, 3000, 20000))
			sentence(body, r, korean, G_N_ELEMENTS(korean), 30);
		base64_lines(m, body->str, body->len);
		break;
	case 3: { /* 8-bit EUC-KR */
		gsize n;
		gchar *euc;
		headers(m, r, "text/plain; charset=euc-kr", "8bit");
		while (body->len < (size_t)g_rand_int_range(r, 3000, 20000))
			sentence(body, r, korean, G_N_ELEMENTS(korean), 30);
		euc = g_convert(body->str, (gssize)body->len, "EUC-KR", "UTF-8", NULL, &n, NULL);
		g_string_append_len(m, euc, (gssize)n);
		g_free(euc);
		break;
	}
	case 4: /* HTML-only newsletter */
		headers(m, r, "text/html; charset=utf-8", "8bit");
		html(m, r, (size_t)g_rand_int_range(r, 20000, 60000));
		break;
	case 5: /* multipart/alternative */
		headers(m, r, "multipart/alternative; boundary=\"ALT\"", NULL);
		g_string_append(m, "--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
		text(m, r, (size_t)g_rand_int_range(r, 2000, 10000));
		g_string_append(m, "\r\n--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n");
		html(m, r, (size_t)g_rand_int_range(r, 5000, 30000));
		g_string_append(m, "\r\n--ALT--\r\n");
		break;
	default: { /* multipart/mixed with attachments */
		int n = g_rand_int_range(r, 1, 4);
		headers(m, r, "multipart/mixed; boundary=\"MIX\"", NULL);
		g_string_append(m, "--MIX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
		text(m, r, 2000);
		for (int i = 0; i < n; i++) {
			size_t len = (size_t)g_rand_int_range(r, 100000, 1000000);
			guint8 *bin = g_malloc(len);
			for (size_t j = 0; j < len; j++)
				bin[j] = (guint8)g_rand_int(r);
			g_string_append_printf(
			    m, "\r\n--MIX\r\nContent-Type: application/pdf; "
			       "name=\"report.pdf\"\r\nContent-Disposition: attachment; "
			       "filename=\"report.pdf\"\r\n"
			       "Content-Transfer-Encoding: base64\r\n\r\n");
			base64_lines(m, bin, len);
			g_free(bin);
		}
		g_string_append(m, "\r\n--MIX--\r\n");
		break;
	}
	}
	g_string_free(body, TRUE);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	size_t total_mb = argc > 1 ? (size_t)atoi(argv[1]) : 50;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	GRand *r = g_rand_new_with_seed(42);
	GPtrArray *msgs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	GArray *kind_of = g_array_new(FALSE, FALSE, sizeof(int));
	static const char *const kind_names[7] = {
	    "plain ASCII", "QP Latin-1",  "base64 Korean",     "8-bit EUC-KR",
	    "HTML-only",   "alternative", "mixed+attachments",
	};
	size_t total = 0, kinds[7] = {0}, kind_bytes[7] = {0};
	double(*kind_t)[7];
	double *t_gmime, *t_mime;
	volatile size_t sink = 0;

	if (runs < 1)
		runs = 1;
	mime_init();
	/* plain 25%, QP 15%, Korean base64 10%, EUC-KR 10%, HTML-only 15%, alternative 20%,
	 * mixed with attachments 5% (which carry most of the bytes) */
	while (total < total_mb * 1024 * 1024) {
		static const int mix[20] = {0, 0, 0, 0, 0, 1, 1, 1, 2, 2,
		                            3, 3, 4, 4, 4, 5, 5, 5, 5, 6};
		int k = mix[g_rand_int_range(r, 0, 20)];
		GString *m = g_string_new(NULL);
		make_message(m, r, k);
		total += m->len;
		kinds[k]++;
		kind_bytes[k] += m->len;
		g_array_append_val(kind_of, k);
		g_ptr_array_add(msgs, g_bytes_new_take(m->str, m->len));
		g_string_free(m, FALSE);
	}
	printf("corpus: %u messages, %.1f MB (plain %zu, qp %zu, b64-korean %zu, euc-kr %zu, "
	       "html %zu, alternative %zu, mixed+attachments %zu)\n",
	       msgs->len, total / 1048576.0, kinds[0], kinds[1], kinds[2], kinds[3], kinds[4],
	       kinds[5], kinds[6]);

	t_gmime = g_new(double, runs);
	t_mime = g_new(double, runs);
	kind_t = g_malloc0_n((gsize)runs, sizeof(*kind_t));
	for (int run = 0; run < runs; run++) {
		GTimer *t = g_timer_new();
		for (guint i = 0; i < msgs->len; i++) {
			gsize len;
			const void *d = g_bytes_get_data(msgs->pdata[i], &len);
			GMimeStream *s = g_mime_stream_mem_new_with_buffer(d, len);
			GMimeParser *p = g_mime_parser_new_with_stream(s);
			GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
			sink += m != NULL;
			if (m != NULL)
				g_object_unref(m);
			g_object_unref(p);
			g_object_unref(s);
		}
		t_gmime[run] = g_timer_elapsed(t, NULL);

		g_timer_start(t);
		for (guint i = 0; i < msgs->len; i++) {
			gsize len;
			const void *d = g_bytes_get_data(msgs->pdata[i], &len);
			struct mime_message *m;
			double t0 = g_timer_elapsed(t, NULL);
			if (mime_message_parse(d, len, &m) != 0)
				return 1;
			for (int v = 0; v < MIME_VIEW_COUNT; v++) {
				GBytes *b = mime_message_view(m, v);
				sink += b != NULL ? g_bytes_get_size(b) : 0;
			}
			for (size_t a = 0; a < mime_message_n_attachments(m); a++)
				sink += g_bytes_get_size(mime_message_attachment_data(m, a)) +
				        strlen(mime_message_attachment_name(m, a));
			mime_message_free(m);
			kind_t[run][g_array_index(kind_of, int, i)] +=
			    g_timer_elapsed(t, NULL) - t0;
		}
		t_mime[run] = g_timer_elapsed(t, NULL);
		g_timer_destroy(t);
		printf("run %d: gmime %.3f s, mime %.3f s\n", run + 1, t_gmime[run], t_mime[run]);
	}
	{
		double g = median(t_gmime, runs), m = median(t_mime, runs);
		double mb = total / 1048576.0;
		printf("median of %d runs over %.1f MB:\n", runs, mb);
		printf("  GMime g_mime_parser_construct_message only : %8.1f MB/s (%.3f s)\n",
		       mb / g, g);
		printf("  mime_message_parse + all views/attachments : %8.1f MB/s (%.3f s)\n",
		       mb / m, m);
		printf("  messages/s (mime)                          : %8.0f\n", msgs->len / m);
		printf("mime_message_parse + all views, by kind (median):\n");
		for (int k = 0; k < 7; k++) {
			double v[64];
			int n = MIN(runs, 64);
			for (int run = 0; run < n; run++)
				v[run] = kind_t[run][k];
			if (kinds[k] > 0)
				printf("  %-18s %4zu msgs %6.1f MB %8.1f MB/s\n", kind_names[k],
				       kinds[k], kind_bytes[k] / 1048576.0,
				       kind_bytes[k] / 1048576.0 / median(v, n));
		}
	}
	g_free(t_gmime);
	g_free(t_mime);
	g_free(kind_t);
	g_array_unref(kind_of);
	g_ptr_array_unref(msgs);
	g_rand_free(r);
	return sink == 0;
}
