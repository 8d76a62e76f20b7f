/* test_mime.c — unit tests of mime/: golden messages, charsets, HTML rendering, attachment
 * names, determinism and robustness against hostile mail.
 *
 * Golden tests: every tests/mime/messages/NAME.eml is parsed and compared with
 * tests/mime/expected/NAME/, and likewise every malformed shape in tests/mime/malformed/
 * (messages/NAME.eml against expected/NAME/, written by make_malformed.py):
 *   VIEW                  exact bytes of that view (subject, from, …, body, body.html)
 *   absent                views that must be absent, one name per line
 *   date-epoch            mime_message_date() in decimal, or "none" for INT64_MIN
 *   attachments.list      the exact attachment list, "name<TAB>size" per line
 *   attachments/NAME      exact bytes of that attachment
 *   headers.contains      text the headers view must contain
 * Every message, golden or generated, also goes through check_invariants(): views valid UTF-8,
 * names safe and unique, a second parse giving identical bytes, and a body that is not empty
 * when readable.c finds readable text (the rule in mime.h).  The big and deep messages
 * are generated here, never committed.
 */
#include "mime.h"
#include "mime-private.h"
#include "readable.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static const char *data_dir;

/* GMime grows its header buffer to the exact size needed at every 4 KB read; glibc's realloc
 * extends such a block in place, ASan's copies it every time, which makes one huge header
 * quadratic.  Sanitizer builds therefore use a smaller "huge" header (still several MB). */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* ---- helpers ---- */

static struct mime_message *parse(const void *data, size_t len)
{
	struct mime_message *msg = NULL;

	g_assert_cmpint(mime_message_parse(data, len, &msg), ==, 0);
	g_assert_nonnull(msg);
	return msg;
}

static struct mime_message *parse_str(const char *s)
{
	return parse(s, strlen(s));
}

/* The view as a NUL-terminated copy (views of text never contain NUL); NULL when absent. */
static char *view(const struct mime_message *msg, enum mime_view v)
{
	GBytes *b = mime_message_view(msg, v);
	gsize len;
	const char *p;

	if (b == NULL)
		return NULL;
	p = g_bytes_get_data(b, &len);
	return g_strndup(p != NULL ? p : "", len);
}

static void assert_view(const struct mime_message *msg, enum mime_view v, const char *want)
{
	char *got = view(msg, v);

	if (want == NULL) {
		g_assert_null(got);
		return;
	}
	g_assert_nonnull(got);
	g_assert_cmpstr(got, ==, want);
	g_free(got);
}

static void assert_valid_utf8_bytes(GBytes *b)
{
	gsize len;
	const char *p = g_bytes_get_data(b, &len);

	/* with an explicit length GLib also rejects embedded NUL */
	g_assert_true(len == 0 || g_utf8_validate(p, (gssize)len, NULL));
}

static void assert_same_message(const struct mime_message *a, const struct mime_message *b)
{
	for (int v = 0; v < MIME_VIEW_COUNT; v++) {
		GBytes *x = mime_message_view(a, v), *y = mime_message_view(b, v);
		g_assert_true((x == NULL) == (y == NULL));
		if (x != NULL)
			g_assert_true(g_bytes_equal(x, y));
	}
	g_assert_cmpint(mime_message_date(a), ==, mime_message_date(b));
	g_assert_cmpuint(mime_message_n_attachments(a), ==, mime_message_n_attachments(b));
	for (size_t i = 0; i < mime_message_n_attachments(a); i++) {
		g_assert_cmpstr(mime_message_attachment_name(a, i), ==,
		                mime_message_attachment_name(b, i));
		g_assert_true(g_bytes_equal(mime_message_attachment_data(a, i),
		                            mime_message_attachment_data(b, i)));
	}
}

/* What must hold for every message whatever its bytes. */
static void check_invariants(const struct mime_message *msg, const void *data, size_t len)
{
	GHashTable *names = g_hash_table_new(g_str_hash, g_str_equal);
	struct mime_message *again;

	for (int v = 0; v < MIME_VIEW_COUNT; v++) {
		GBytes *b = mime_message_view(msg, v);
		g_assert_nonnull(mime_view_name(v));
		if (v == MIME_VIEW_CC || v == MIME_VIEW_MESSAGE_ID || v == MIME_VIEW_BODY_HTML) {
			if (b == NULL)
				continue;
		}
		g_assert_nonnull(b);
		assert_valid_utf8_bytes(b);
		{
			/* the size reported (st_size) is exactly what a reader gets, also for one
			 * that reads the view as a C string */
			gsize n;
			const char *p = g_bytes_get_data(b, &n);
			g_assert_cmpuint(n == 0 ? 0 : strnlen(p, n), ==, n);
		}
		if (v <= MIME_VIEW_MESSAGE_ID) {
			/* one line each: exactly one newline, at the end */
			gsize n;
			const char *p = g_bytes_get_data(b, &n);
			g_assert_cmpuint(n, >=, 1);
			g_assert_true(p[n - 1] == '\n');
			g_assert_null(memchr(p, '\n', n - 1));
		}
	}
	for (size_t i = 0; i < mime_message_n_attachments(msg); i++) {
		const char *name = mime_message_attachment_name(msg, i);
		g_assert_true(mime_name_is_safe(name));
		g_assert_false(g_hash_table_contains(names, name));
		g_hash_table_add(names, (gpointer)name);
		g_assert_nonnull(mime_message_attachment_data(msg, i));
	}
	g_assert_null(mime_message_attachment_name(msg, mime_message_n_attachments(msg)));
	g_hash_table_unref(names);
	/* mime.h: the body is never empty while a readable part has text */
	if (mime_test_has_readable_text(data, len))
		g_assert_cmpuint(g_bytes_get_size(mime_message_view(msg, MIME_VIEW_BODY)), >, 0);

	again = parse(data, len);
	assert_same_message(msg, again);
	mime_message_free(again);
}

static struct mime_message *parse_checked(const void *data, size_t len)
{
	struct mime_message *msg = parse(data, len);

	check_invariants(msg, data, len);
	return msg;
}

/* ---- golden messages ---- */

static void compare_file(const char *path, GBytes *got, const char *what)
{
	gchar *want;
	gsize want_len;
	gsize got_len;
	const char *got_data;

	g_assert_true(g_file_get_contents(path, &want, &want_len, NULL));
	g_assert_nonnull(got);
	got_data = g_bytes_get_data(got, &got_len);
	if (got_len != want_len || (want_len > 0 && memcmp(got_data, want, want_len) != 0)) {
		g_test_message("%s differs from %s:\n--- got (%zu bytes)\n%.*s\n--- want (%zu)\n%s",
		               what, path, got_len, (int)got_len, got_data, want_len, want);
		g_test_fail();
	}
	g_free(want);
}

static enum mime_view view_by_name(const char *name)
{
	for (int v = 0; v < MIME_VIEW_COUNT; v++)
		if (strcmp(mime_view_name(v), name) == 0)
			return v;
	return MIME_VIEW_COUNT;
}

static void check_attachment_list(const struct mime_message *msg, const char *path)
{
	gchar *want;
	GString *got = g_string_new(NULL);

	g_assert_true(g_file_get_contents(path, &want, NULL, NULL));
	for (size_t i = 0; i < mime_message_n_attachments(msg); i++)
		g_string_append_printf(got, "%s\t%zu\n", mime_message_attachment_name(msg, i),
		                       g_bytes_get_size(mime_message_attachment_data(msg, i)));
	g_assert_cmpstr(got->str, ==, want);
	g_string_free(got, TRUE);
	g_free(want);
}

static GBytes *attachment_by_name(const struct mime_message *msg, const char *name)
{
	for (size_t i = 0; i < mime_message_n_attachments(msg); i++)
		if (strcmp(mime_message_attachment_name(msg, i), name) == 0)
			return mime_message_attachment_data(msg, i);
	return NULL;
}

/* One golden message: NAME in the set under data_dir/SET ("." for the well-formed ones,
 * "malformed" for the corpus of broken shapes). */
struct golden_case {
	const char *set;
	char *name;
};

static void test_golden(gconstpointer user_data)
{
	const struct golden_case *c = user_data;
	const char *name = c->name;
	char *eml = g_strdup_printf("%s/%s/messages/%s.eml", data_dir, c->set, name);
	char *dir = g_strdup_printf("%s/%s/expected/%s", data_dir, c->set, name);
	gchar *data;
	gsize len;
	struct mime_message *msg;
	GDir *d;
	const char *entry;
	int checked = 0;

	g_assert_true(g_file_get_contents(eml, &data, &len, NULL));
	msg = parse_checked(data, len);
	d = g_dir_open(dir, 0, NULL);
	g_assert_nonnull(d); /* every golden message has expectations */
	while ((entry = g_dir_read_name(d)) != NULL) {
		char *path = g_build_filename(dir, entry, NULL);
		enum mime_view v = view_by_name(entry);

		checked++;
		if (v != MIME_VIEW_COUNT) {
			compare_file(path, mime_message_view(msg, v), entry);
		} else if (strcmp(entry, "absent") == 0) {
			gchar *text;
			gchar **lines;
			g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
			lines = g_strsplit(g_strstrip(text), "\n", -1);
			for (gchar **l = lines; *l != NULL; l++) {
				g_assert_cmpint(view_by_name(*l), !=, MIME_VIEW_COUNT);
				g_assert_null(mime_message_view(msg, view_by_name(*l)));
			}
			g_strfreev(lines);
			g_free(text);
		} else if (strcmp(entry, "date-epoch") == 0) {
			gchar *text;
			g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
			g_strstrip(text);
			if (strcmp(text, "none") == 0)
				g_assert_cmpint(mime_message_date(msg), ==, INT64_MIN);
			else
				g_assert_cmpint(mime_message_date(msg), ==,
				                g_ascii_strtoll(text, NULL, 10));
			g_free(text);
		} else if (strcmp(entry, "attachments.list") == 0) {
			check_attachment_list(msg, path);
		} else if (strcmp(entry, "headers.contains") == 0) {
			gchar *text;
			char *headers = view(msg, MIME_VIEW_HEADERS);
			g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
			g_assert_nonnull(strstr(headers, text));
			g_free(text);
			g_free(headers);
		} else if (strcmp(entry, "attachments") == 0) {
			GDir *ad = g_dir_open(path, 0, NULL);
			const char *an;
			g_assert_nonnull(ad);
			while ((an = g_dir_read_name(ad)) != NULL) {
				char *ap = g_build_filename(path, an, NULL);
				compare_file(ap, attachment_by_name(msg, an), an);
				g_free(ap);
			}
			g_dir_close(ad);
		} else {
			g_test_message("unknown expectation file %s", path);
			g_test_fail();
		}
		g_free(path);
	}
	g_assert_cmpint(checked, >, 0);
	g_dir_close(d);
	mime_message_free(msg);
	g_free(data);
	g_free(dir);
	g_free(eml);
}

/* ---- headers in every charset the issue lists ---- */

static char *encoded_word(const char *utf8, const char *charset, char *body_r[1], gsize *body_len)
{
	GError *error = NULL;
	gsize len;
	gchar *bytes = g_convert(utf8, -1, charset, "UTF-8", NULL, &len, &error);
	gchar *b64;
	char *word;

	g_assert_no_error(error);
	b64 = g_base64_encode((const guchar *)bytes, len);
	word = g_strdup_printf("=?%s?B?%s?=", charset, b64);
	g_free(b64);
	*body_r = bytes;
	*body_len = len;
	return word;
}

static void test_charsets(void)
{
	static const struct {
		const char *charset;
		const char *text;
	} cases[] = {
	    {"UTF-8", "Grüße, 안녕, 日本, Привет 👋"},
	    {"EUC-KR", "안녕하세요 여러분"},
	    {"CP949", "똠방각하 펲시콜라"}, /* UHC-only syllables */
	    {"ISO-2022-JP", "会議のお知らせ"},
	    {"Shift_JIS", "こんにちは世界"},
	    {"EUC-JP", "日本語のテキスト"},
	    {"GB2312", "你好，世界"},
	    {"GBK", "中文郵件測試"},
	    {"GB18030", "中文𠀀"},
	    {"Big5", "繁體中文測試"},
	    {"KOI8-R", "Отчёт за январь"},
	    {"KOI8-U", "Ґанок і їжак"},
	    {"windows-1251", "Привет, мир"},
	    {"windows-1252", "“Smart” quotes – €5"},
	    {"windows-1250", "Zażółć gęślą jaźń"},
	    {"windows-1253", "Καλημέρα"},
	    {"windows-1254", "Günaydın İstanbul"},
	    {"windows-1255", "שלום"},
	    {"windows-1256", "مرحبا"},
	    {"windows-1257", "Labas rytas ąčę"},
	    {"windows-1258", "Xin chào"},
	    {"ISO-8859-1", "Crème brûlée"},
	    {"ISO-8859-2", "Příliš žluťoučký kůň"},
	    {"ISO-8859-5", "Здравствуйте"},
	    {"ISO-8859-7", "Ελληνικά"},
	    {"ISO-8859-9", "Şişli"},
	    {"ISO-8859-15", "Prix 10€"},
	    {"TIS-620", "สวัสดี"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *body;
		gsize body_len;
		char *word = encoded_word(cases[i].text, cases[i].charset, &body, &body_len);
		char *body_b64 = g_base64_encode((const guchar *)body, body_len);
		char *msg_text = g_strdup_printf("From: =?UTF-8?Q?x?= <x@example.com>\r\n"
		                                 "Subject: %s\r\n"
		                                 "MIME-Version: 1.0\r\n"
		                                 "Content-Type: text/plain; charset=\"%s\"\r\n"
		                                 "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n",
		                                 word, cases[i].charset, body_b64);
		struct mime_message *msg = parse_checked(msg_text, strlen(msg_text));
		char *want_subject = g_strconcat(cases[i].text, "\n", NULL);

		g_test_message("charset %s", cases[i].charset);
		assert_view(msg, MIME_VIEW_SUBJECT, want_subject);
		assert_view(msg, MIME_VIEW_BODY, want_subject);
		mime_message_free(msg);
		g_free(want_subject);
		g_free(msg_text);
		g_free(body_b64);
		g_free(word);
		g_free(body);
	}
}

/* Raw 8-bit headers: guessed from the body's charset, else windows-1252; never dropped. */
static void test_raw_8bit_headers(void)
{
	struct mime_message *msg;
	GString *s = g_string_new(NULL);
	gsize n;
	gchar *koi = g_convert("Отчёт", -1, "KOI8-R", "UTF-8", NULL, &n, NULL);

	g_string_append(s, "Subject: ");
	g_string_append_len(s, koi, (gssize)n);
	g_string_append(s, "\nContent-Type: text/plain; charset=koi8-r\n\nx\n");
	msg = parse_checked(s->str, s->len);
	assert_view(msg, MIME_VIEW_SUBJECT, "Отчёт\n");
	mime_message_free(msg);

	/* no hint: windows-1252 (Portuguese must not turn into Korean) */
	msg = parse_str("Subject: Informa\xe7\xe3o \x93ok\x94\n\nbody\n");
	assert_view(msg, MIME_VIEW_SUBJECT, "Informação “ok”\n");
	mime_message_free(msg);

	/* raw UTF-8 in headers is just UTF-8 */
	msg = parse_str("Subject: 日本語 ok\nFrom: 山田 <y@example.jp>\n\nbody\n");
	assert_view(msg, MIME_VIEW_SUBJECT, "日本語 ok\n");
	assert_view(msg, MIME_VIEW_FROM, "山田 <y@example.jp>\n");
	mime_message_free(msg);
	g_free(koi);
	g_string_free(s, TRUE);
}

static void test_addresses(void)
{
	struct mime_message *msg = parse_str(
	    "From: plain@example.com\n"
	    "To: \"Last, First\" <lf@example.com>, =?UTF-8?Q?Z=C3=B6e?= <zoe@example.com>,\n"
	    "  Group: a@example.com, B <b@example.com>;, <bare@example.com>\n"
	    "To: second-to@example.com\n"
	    "Cc: not an address at all\n"
	    "\nbody\n");
	assert_view(msg, MIME_VIEW_FROM, "plain@example.com\n");
	assert_view(msg, MIME_VIEW_TO,
	            "\"Last, First\" <lf@example.com>, Zöe <zoe@example.com>, "
	            "Group: a@example.com, B <b@example.com>;, bare@example.com, "
	            "second-to@example.com\n");
	{
		char *cc = view(msg, MIME_VIEW_CC);
		g_assert_nonnull(cc);
		g_assert_nonnull(strstr(cc, "not"));
		g_free(cc);
	}
	mime_message_free(msg);
}

static void test_dates(void)
{
	struct mime_message *msg = parse_str("Date: Thu, 01 Jan 1970 00:00:10 +0000\n\nx\n");
	g_assert_cmpint(mime_message_date(msg), ==, 10);
	mime_message_free(msg);
	msg = parse_str("Date: Mon, 15 Jan 2024 09:30:00 +0900 (KST)\n\nx\n");
	g_assert_cmpint(mime_message_date(msg), ==, 1705278600);
	assert_view(msg, MIME_VIEW_DATE, "Mon, 15 Jan 2024 09:30:00 +0900 (KST)\n");
	mime_message_free(msg);
	msg = parse_str("Date: not a date\n\nx\n");
	g_assert_cmpint(mime_message_date(msg), ==, INT64_MIN);
	assert_view(msg, MIME_VIEW_DATE, "not a date\n");
	mime_message_free(msg);
	/* no zone: UTC, whatever the local time zone */
	g_setenv("TZ", "America/New_York", TRUE);
	tzset();
	msg = parse_str("Date: Tue, 1 Jul 2003 10:52:37\n\nx\n");
	g_assert_cmpint(mime_message_date(msg), ==, 1057056757);
	mime_message_free(msg);
	g_unsetenv("TZ");
	tzset();
	/* folded */
	msg = parse_str("Date: Mon, 15 Jan 2024\r\n 09:30:00 +0000\r\n\r\nx\r\n");
	assert_view(msg, MIME_VIEW_DATE, "Mon, 15 Jan 2024 09:30:00 +0000\n");
	g_assert_cmpint(mime_message_date(msg), ==, 1705311000);
	mime_message_free(msg);
}

/* ---- body selection ---- */

static void test_body_selection(void)
{
	struct mime_message *msg;

	/* alternative without plain text: body rendered from HTML */
	msg = parse_str("Content-Type: multipart/alternative; boundary=a\n\n"
	                "--a\nContent-Type: text/html\n\n<p>Only&nbsp;<i>HTML</i></p><p>two</p>\n"
	                "--a--\n");
	assert_view(msg, MIME_VIEW_BODY, "Only HTML\n\ntwo\n");
	assert_view(msg, MIME_VIEW_BODY_HTML, "<p>Only&nbsp;<i>HTML</i></p><p>two</p>");
	mime_message_free(msg);

	/* blank plain alternative: HTML used for the body instead */
	msg = parse_str("Content-Type: multipart/alternative; boundary=a\n\n"
	                "--a\nContent-Type: text/plain\n\n \n"
	                "--a\nContent-Type: text/html\n\n<p>real</p>\n--a--\n");
	assert_view(msg, MIME_VIEW_BODY, "real\n");
	mime_message_free(msg);

	/* alternative whose HTML branch is multipart/related with an inline image */
	msg = parse_str("Content-Type: multipart/alternative; boundary=a\n\n"
	                "--a\nContent-Type: text/plain\n\nplain\n"
	                "--a\nContent-Type: multipart/related; boundary=r\n\n"
	                "--r\nContent-Type: text/html\n\n<img src=cid:i>\n"
	                "--r\nContent-Type: image/gif\nContent-ID: <i>\n"
	                "Content-Transfer-Encoding: base64\n\nR0lGODlh\n--r--\n--a--\n");
	assert_view(msg, MIME_VIEW_BODY, "plain\n");
	assert_view(msg, MIME_VIEW_BODY_HTML, "<img src=cid:i>");
	g_assert_cmpuint(mime_message_n_attachments(msg), ==, 1);
	g_assert_cmpstr(mime_message_attachment_name(msg, 0), ==, "part-1.gif");
	g_assert_cmpuint(g_bytes_get_size(mime_message_attachment_data(msg, 0)), ==, 6);
	mime_message_free(msg);

	/* Apple Mail: the HTML alternative is split around an inline image */
	msg =
	    parse_str("Content-Type: multipart/alternative; boundary=a\n\n"
	              "--a\nContent-Type: text/plain\n\nplain version\n"
	              "--a\nContent-Type: multipart/mixed; boundary=m\n\n"
	              "--m\nContent-Type: text/html\n\n<p>before</p>\n"
	              "--m\nContent-Type: image/png; name=pic.png\nContent-Disposition: inline\n\n"
	              "PNG\n"
	              "--m\nContent-Type: text/html\n\n<p>after</p>\n--m--\n--a--\n");
	assert_view(msg, MIME_VIEW_BODY, "plain version\n");
	assert_view(msg, MIME_VIEW_BODY_HTML, "<p>before</p>\n<p>after</p>");
	g_assert_cmpuint(mime_message_n_attachments(msg), ==, 1);
	g_assert_cmpstr(mime_message_attachment_name(msg, 0), ==, "pic.png");
	mime_message_free(msg);

	/* a delivery report: the status and the returned headers are attachments */
	msg =
	    parse_str("Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
	              "--r\nContent-Type: text/plain\n\nDelivery failed.\n"
	              "--r\nContent-Type: message/delivery-status\n\nStatus: 5.0.0\n"
	              "--r\nContent-Type: message/rfc822\n\nSubject: lost mail\n\nhello\n--r--\n");
	assert_view(msg, MIME_VIEW_BODY, "Delivery failed.\n");
	g_assert_cmpuint(mime_message_n_attachments(msg), ==, 2);
	g_assert_cmpstr(mime_message_attachment_name(msg, 0), ==, "part-1.txt");
	g_assert_cmpstr(mime_message_attachment_name(msg, 1), ==, "lost mail.eml");
	{
		gsize n;
		const char *p = g_bytes_get_data(mime_message_attachment_data(msg, 1), &n);
		g_assert_cmpmem(p, n, "Subject: lost mail\n\nhello", 25);
	}
	mime_message_free(msg);

	/* mixed: every inline text part, in order; text attachments are attachments */
	msg = parse_str("Content-Type: multipart/mixed; boundary=m\n\n"
	                "--m\nContent-Type: text/plain\n\none\n"
	                "--m\nContent-Type: text/x-diff\nContent-Disposition: inline\n\n+two\n"
	                "--m\nContent-Type: text/plain\nContent-Disposition: attachment\n\nthree\n"
	                "--m\nContent-Type: text/plain\n\nfour\n--m--\n");
	assert_view(msg, MIME_VIEW_BODY, "one\n\n+two\n\nfour\n");
	g_assert_cmpuint(mime_message_n_attachments(msg), ==, 1);
	g_assert_cmpstr(mime_message_attachment_name(msg, 0), ==, "part-1.txt");
	mime_message_free(msg);

	/* CRLF → LF in text views; attachments keep their bytes */
	msg = parse_str("Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n");
	assert_view(msg, MIME_VIEW_BODY, "line1\nline2\n");
	mime_message_free(msg);

	/* empty message */
	msg = parse_checked("", 0);
	assert_view(msg, MIME_VIEW_BODY, "");
	assert_view(msg, MIME_VIEW_SUBJECT, "\n");
	mime_message_free(msg);

	/* an HTML part in a legacy charset: converted, with a BOM so its <meta> is overruled */
	msg = parse_str("Content-Type: text/html; charset=iso-8859-1\n\n"
	                "<meta charset=iso-8859-1><p>caf\xe9</p>");
	assert_view(msg, MIME_VIEW_BODY_HTML, "\xef\xbb\xbf<meta charset=iso-8859-1><p>café</p>");
	assert_view(msg, MIME_VIEW_BODY, "café\n");
	mime_message_free(msg);
}

/* ---- HTML rendering ---- */

static void assert_html(const char *html, const char *want)
{
	char *got = mime_html_to_text(html, strlen(html), NULL);

	g_assert_cmpstr(got, ==, want);
	g_free(got);
}

static void test_html(void)
{
	assert_html("", "");
	assert_html("<script>x</script><style>y</style>", "");
	/* inside <body> too, where libxml2 does not move them into <head> */
	assert_html("<body><p>a</p><script>var x;</script><style>p{}</style><p>b</p></body>",
	            "a\n\nb\n");
	assert_html("a<br>b<br><br>c", "a\nb\n\nc\n");
	assert_html("<p>a</p><p>b</p>", "a\n\nb\n");
	assert_html("<div>a</div><div>b</div>", "a\nb\n");
	assert_html("x &amp; &lt;y&gt; &quot;z&quot; &euro;&#65;&#x42;", "x & <y> \"z\" €AB\n");
	assert_html("<a href=\"https://e.com/x\">click</a>", "click <https://e.com/x>\n");
	assert_html("<a href=\"https://e.com/x\">https://e.com/x</a>", "https://e.com/x\n");
	assert_html("<a href=\"https://e.com/\">e.com</a>", "e.com\n");
	assert_html("<a href=\"https://e.com/\"><img src=a.png></a>", "<https://e.com/>\n");
	assert_html("<a href=\"javascript:alert(1)\">js</a>", "js\n");
	assert_html("<a href=\"https://e.com/a\n b\">wrapped</a>", "wrapped <https://e.com/ab>\n");
	assert_html("  lots   of \n\t space  ", "lots of space\n");
	assert_html("<pre>a  b\n  c</pre>", "a  b\n  c\n");
	assert_html("<ul><li>a<ul><li>b</li></ul></li></ul>", "- a\n  - b\n");
	assert_html("<p style=\"DISPLAY : none\">hidden</p><p hidden>also</p>shown", "shown\n");
	assert_html("<html><head><title>T</title></head><body>B</body></html>", "B\n");
	assert_html("<!-- c --><p>t</p>", "t\n");
	assert_html("<p>unclosed <b>bold <i>both", "unclosed bold both\n");
	assert_html("<h1>Title</h1>text", "Title\n\ntext\n");
	assert_html("&#xD800;&#0;ok", "ok\n"); /* libxml2 drops invalid references */
	/* a <meta charset> must not re-decode text that is already UTF-8 */
	assert_html("<meta charset=\"iso-8859-1\"><p>café</p>", "café\n");
	{
		/* 100,000 nested elements: no recursion, no crash, text kept */
		GString *s = g_string_new(NULL);
		char *got;
		for (int i = 0; i < 100000; i++)
			g_string_append(s, "<div>");
		g_string_append(s, "deep text");
		got = mime_html_to_text(s->str, s->len, NULL);
		g_assert_cmpstr(got, ==, "deep text\n");
		g_free(got);
		g_string_free(s, TRUE);
	}
}

/* ---- names ---- */

static void assert_sanitized(const char *in, const char *want)
{
	char *got = mime_name_sanitize(in);

	g_assert_cmpstr(got, ==, want);
	if (got != NULL)
		g_assert_true(mime_name_is_safe(got));
	g_free(got);
}

static void test_names(void)
{
	GHashTable *used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GString *long_name = g_string_new(NULL);
	char *s;

	assert_sanitized("report.pdf", "report.pdf");
	assert_sanitized("  spaced.txt  ", "spaced.txt");
	assert_sanitized("a/b\\c.txt", "a_b\\c.txt");
	assert_sanitized("../../etc/passwd", ".._.._etc_passwd");
	assert_sanitized(".", NULL);
	assert_sanitized("..", NULL);
	assert_sanitized("", NULL);
	assert_sanitized("   ", NULL);
	assert_sanitized(NULL, NULL);
	assert_sanitized("tab\there\x01.txt", "tab_here_.txt");
	assert_sanitized("bad\xff.txt", "bad\xef\xbf\xbd.txt");
	assert_sanitized("invoice\xe2\x80\xae"
	                 "fdp.exe",
	                 "invoice_fdp.exe"); /* U+202E */
	assert_sanitized("...", "...");

	/* 300 bytes of 3-byte characters: cut on a boundary, extension kept */
	for (int i = 0; i < 100; i++)
		g_string_append(long_name, "가");
	g_string_append(long_name, ".pdf");
	s = mime_name_sanitize(long_name->str);
	g_assert_cmpuint(strlen(s), <=, MIME_NAME_MAX);
	g_assert_true(g_str_has_suffix(s, ".pdf"));
	g_assert_true(mime_name_is_safe(s));
	g_assert_cmpuint(strlen(s), ==, 83 * 3 + 4);
	g_free(s);
	/* without an extension: cut to at most 255 bytes on a boundary */
	g_string_truncate(long_name, 300);
	s = mime_name_sanitize(long_name->str);
	g_assert_cmpuint(strlen(s), ==, 255);
	g_assert_true(mime_name_is_safe(s));
	g_free(s);

	s = mime_name_unique(used, "report.pdf");
	g_assert_cmpstr(s, ==, "report.pdf");
	g_free(s);
	s = mime_name_unique(used, "report.pdf");
	g_assert_cmpstr(s, ==, "report (2).pdf");
	g_free(s);
	s = mime_name_unique(used, "report (2).pdf");
	g_assert_cmpstr(s, ==, "report (2) (2).pdf");
	g_free(s);
	s = mime_name_unique(used, "report.pdf");
	g_assert_cmpstr(s, ==, "report (3).pdf");
	g_free(s);
	s = mime_name_unique(used, "README");
	g_free(s);
	s = mime_name_unique(used, "README");
	g_assert_cmpstr(s, ==, "README (2)");
	g_free(s);
	s = mime_name_unique(used, ".hidden");
	g_free(s);
	s = mime_name_unique(used, ".hidden");
	g_assert_cmpstr(s, ==, ".hidden (2)");
	g_free(s);
	/* a duplicate of a 255-byte name still fits */
	{
		char *full = mime_name_fit(long_name->str, "", ".pdf");
		char *dup;
		g_free(mime_name_unique(used, full));
		dup = mime_name_unique(used, full);
		g_assert_cmpuint(strlen(dup), <=, MIME_NAME_MAX);
		g_assert_true(g_str_has_suffix(dup, " (2).pdf"));
		g_assert_true(mime_name_is_safe(dup));
		g_free(dup);
		g_free(full);
	}

	s = mime_name_from_type("image", "png", 2);
	g_assert_cmpstr(s, ==, "part-2.png");
	g_free(s);
	s = mime_name_from_type("image", "jpeg", 3);
	g_assert_cmpstr(s, ==, "part-3.jpg");
	g_free(s);
	s = mime_name_from_type("application", "x-weird/../type", 4);
	g_assert_cmpstr(s, ==, "part-4.bin");
	g_free(s);
	s = mime_name_from_type("image", "AVIF", 5);
	g_assert_cmpstr(s, ==, "part-5.avif");
	g_free(s);
	s = mime_name_from_type("text", "x-something-long", 6);
	g_assert_cmpstr(s, ==, "part-6.txt");
	g_free(s);

	g_assert_false(mime_name_is_safe(""));
	g_assert_false(mime_name_is_safe("a/b"));
	g_assert_false(mime_name_is_safe("."));
	g_assert_false(mime_name_is_safe("a\nb"));
	g_string_free(long_name, TRUE);
	g_hash_table_unref(used);
}

/* ---- charsets (internal) ---- */

static void assert_to_utf8(const char *in, gssize len, const char *label, const char *want)
{
	size_t got_len;
	char *got = mime_to_utf8(in, len < 0 ? strlen(in) : (size_t)len, label, &got_len);

	g_assert_cmpstr(got, ==, want);
	g_assert_cmpuint(got_len, ==, strlen(want));
	g_free(got);
}

static void test_to_utf8(void)
{
	assert_to_utf8("caf\xe9", -1, "iso-8859-1", "café");
	assert_to_utf8("\x93q\x94", -1, "iso-8859-1", "“q”"); /* widened to windows-1252 */
	assert_to_utf8("caf\xe9", -1, "no-such-charset", "café");
	assert_to_utf8("caf\xc3\xa9", -1, "no-such-charset", "café");
	assert_to_utf8("caf\xe9", -1, NULL, "café");
	assert_to_utf8("caf\xe9", -1, "us-ascii", "café");
	assert_to_utf8("a\xff"
	               "b",
	               -1, "utf-8",
	               "a\xef\xbf\xbd"
	               "b");
	assert_to_utf8("a\0b", 3, "utf-8",
	               "a\xef\xbf\xbd"
	               "b");
	assert_to_utf8("\xb0\xa1\xff", -1, "euc-kr", "가\xef\xbf\xbd");
	assert_to_utf8("\x8c\x63", -1, "euc-kr", "똠"); /* a UHC syllable in "euc-kr" text */
	assert_to_utf8("\x1b$B$3$s\x1b(B!", -1, "iso-2022-jp", "こん!");
	assert_to_utf8("\x1b$B$3$", -1, "iso-2022-jp", "こ\xef\xbf\xbd"); /* truncated */
	/* ISO-2022-JP as mailers send it (issue 21 item 6): the standard mapping stays (〜 is
	 * U+301C), the NEC and IBM rows of CP50220/CP50221 decode, what is in no table is U+FFFD
	 * and the kanji after it still read as kanji */
	assert_to_utf8("\x1b$B!A-b-!y!\x1b(B", -1, "iso-2022-jp", "〜№①纊");
	assert_to_utf8("\x1b$B)!$3\x1b(Bx", -1, "ISO-2022-JP", "\xef\xbf\xbdこx");
	assert_to_utf8("\x1b$B-b\x1b(B", -1, "CP50221", "№");
	assert_to_utf8("\x1b(J\\~\x1b(B\\~", -1, "iso-2022-jp", "¥‾\\~"); /* JIS X 0201 Roman */
	assert_to_utf8("\x1b(I12\x1b(B \x0e"
	               "34\x0f",
	               -1, "iso-2022-jp", "ｱｲ ｳｴ");                        /* kana */
	assert_to_utf8("\x1b$(D\x22\x2f\x1b(B", -1, "iso-2022-jp", "˘");   /* JIS X 0212 */
	assert_to_utf8("\x1b$B$3\n$s\x1b(B", -1, "iso-2022-jp", "こ\nん"); /* line break kept */
	assert_to_utf8("a\xe9\x1bZb", -1, "iso-2022-jp", "a\xef\xbf\xbd\xef\xbf\xbdZb");
	/* a set only ISO-2022-JP-2 has: that decoder (here Latin-1 in G2) */
	assert_to_utf8("\x1b.A\x1bNi", -1, "iso-2022-jp-2", "é");
	assert_to_utf8("\xa4\xa4", -1, "big5", "中");
	assert_to_utf8("", 0, "utf-16", "");
	assert_to_utf8("a\0b\0", 4, "utf-16le", "ab");
	g_assert_cmpstr(mime_charset_iconv_name("  \"KS_C_5601-1987\" "), ==, "CP949");
	g_assert_null(mime_charset_iconv_name("unknown-8bit"));
	g_assert_null(mime_charset_iconv_name(""));
}

/* ---- encoded-words in header text (rfc2047.c) ---- */

static void assert_header_decodes(const char *raw, const char *want)
{
	char *got = mime_header_decode(raw, NULL);

	if (strcmp(got, want) != 0) {
		g_test_message("\"%s\" decoded to \"%s\", want \"%s\"", raw, got, want);
		g_test_fail();
	}
	g_free(got);
}

static void test_header_words(void)
{
	/* each word decodes on its own, then adjacent words' bytes are joined (issue 21 item 1) */
	assert_header_decodes("=?UTF-8?B?YWI=?= =?UTF-8?B?Y2Q=?=", "abcd");
	assert_header_decodes("=?utf-8?b?YWI=?=\r\n =?UTF-8?B?Y2Q=?=\t=?UTF-8?Q?e?=", "abcde");
	assert_header_decodes("=?UTF-8?B?YWI?= =?UTF-8?B?Y2Q?=", "abcd"); /* truncated groups */
	assert_header_decodes("=?UTF-8?B?ww==?= =?UTF-8?B?qQ==?=", "\u00e9");
	assert_header_decodes("=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=", "\u00e9");
	/* white space between words is dropped, not between a word and text */
	assert_header_decodes("a =?UTF-8?Q?b?= c", "a b c");
	assert_header_decodes("=?UTF-8?Q?a?= =?ISO-8859-1?Q?=E9?=", "a\u00e9");
	/* lenient: inside a word, blanks in the payload, language suffix, lower-case q */
	assert_header_decodes("Caf=?utf-8?q?=C3=A9?=s", "Caf\u00e9s");
	assert_header_decodes("=?utf-8?q?a b?=", "a b");
	assert_header_decodes("=?UTF-8*en?Q?hi_there?=", "hi there");
	/* Q: '_' is a space, an invalid escape stays as written */
	assert_header_decodes("=?UTF-8?Q?100=25_=ZZ=4?=", "100% =ZZ=4");
	/* not words: no end, no encoding, no charset; an unknown encoding letter */
	assert_header_decodes("=?UTF-8?Q?open", "=?UTF-8?Q?open");
	assert_header_decodes("=?UTF-8?X?a?=", "=?UTF-8?X?a?=");
	assert_header_decodes("=??Q?a?=", "=??Q?a?=");
	assert_header_decodes("a =? b", "a =? b");
	/* a word right after a stray "=?" is still found */
	assert_header_decodes("=?x =?UTF-8?B?YWJj?=", "=?x abc");
	assert_header_decodes("=?UTF-8?B =?UTF-8?Q?d?=", "=?UTF-8?B d");
	/* what cannot be decoded is U+FFFD, never '?' (item 6) */
	assert_header_decodes("=?UTF-8?Q?a=FFb?=", "a\ufffdb");
	/* labels are widened as for bodies; no real charset: guessed as raw text */
	assert_header_decodes("=?ISO-8859-1?Q?=93q=94?=", "\u201cq\u201d");
	assert_header_decodes("=?us-ascii?Q?caf=C3=A9?=", "caf\u00e9");
	assert_header_decodes("=?x-unknown-cs?Q?caf=C3=A9?=", "caf\u00e9");
	{
		/* raw 8-bit text that is no UTF-8 (F6 leads no sequence): still valid UTF-8 out */
		char *got = mime_header_decode("x@exampl\xf6\xb2\xb6\xb2"
		                               "e",
		                               NULL);
		g_assert_true(g_utf8_validate(got, -1, NULL));
		g_assert_true(g_str_has_prefix(got, "x@exampl") && g_str_has_suffix(got, "e"));
		g_free(got);
	}
	assert_header_decodes("", "");
	assert_header_decodes(NULL, "");

	{
		/* address fields: every run of words becomes one UTF-8 word, but not inside <> */
		char *n = mime_header_normalize_words(
		    "=?UTF-8?B?YWI=?= =?UTF-8?B?Y2Q=?= <a@b>, \"=?utf-8?q?x?=\" <=?utf-8?q?y?=@c>",
		    NULL);
		g_assert_cmpstr(
		    n, ==, "=?UTF-8?B?YWJjZA==?= <a@b>, \"=?UTF-8?B?eA==?=\" <=?utf-8?q?y?=@c>");
		g_free(n);
	}
}

/* ---- transfer decoding (decode.c) ---- */

/* Decode in[0..len) as encoding, split into two steps at split (len: one step), or one byte
 * at a time (split == -1). */
static GByteArray *decode_split(const char *encoding, const char *in, size_t len, gssize split)
{
	struct mime_decoder *d = mime_decoder_new(encoding);
	GByteArray *out = g_byte_array_new();

	if (split < 0) {
		for (size_t i = 0; i < len; i++)
			mime_decoder_step(d, in + i, 1, out);
	} else {
		mime_decoder_step(d, in, (size_t)split, out);
		mime_decoder_step(d, in + split, len - (size_t)split, out);
	}
	mime_decoder_finish(d, out);
	mime_decoder_free(d);
	return out;
}

static void assert_decodes(const char *encoding, const char *in, const void *want, size_t want_len)
{
	size_t len = strlen(in);

	/* the output never depends on how the input was split */
	for (gssize split = -1; split <= (gssize)len; split++) {
		GByteArray *out = decode_split(encoding, in, len, split);
		/* (an empty output's data may be NULL: memcmp must not see it) */
		if (out->len != want_len || (want_len > 0 && memcmp(out->data, want, want_len) != 0)) {
			g_test_message("%s of \"%s\" split at %zd: got %u bytes \"%.*s\"",
			               encoding != NULL ? encoding : "(null)", in, split, out->len,
			               (int)out->len, (const char *)out->data);
			g_test_fail();
		}
		g_byte_array_unref(out);
	}
}

#define DECODES(enc, in, want) assert_decodes(enc, in, want, sizeof(want) - 1)

static void test_decoder(void)
{
	/* base64: junk and line breaks skipped, padding ends the data, a truncated last group
	 * keeps the bytes it carries (mime.h, issue 21 item 7) */
	DECODES("base64", "YWJjZA==", "abcd");
	DECODES("base64", "YWJjZA", "abcd");
	DECODES("base64", "YWJjZGU", "abcde");
	DECODES("base64", "YWJjZ", "abc"); /* one sextet is no byte */
	DECODES("BASE64", " YW\r\nJj\n*ZA==\r\n", "abcd");
	DECODES(" Base64 ", "YWI=Y2Q=", "ab");
	DECODES("base64", "", "");
	DECODES("base64", "/+8A", "\xff\xef\x00");
	/* quoted-printable: soft breaks (LF and CRLF), invalid escapes as written, a soft break
	 * at the very end (its line break went to the delimiter) */
	DECODES("quoted-printable", "a=3Db=\r\nc=\nd", "a=bcd");
	DECODES("Quoted-Printable", "caf=e9 caf=C3=A9", "caf\xe9 caf\xc3\xa9");
	DECODES("quoted-printable", "x=", "x");
	DECODES("quoted-printable", "x=\r", "x");
	DECODES("quoted-printable", "x=4", "x=4");
	DECODES("quoted-printable", "=G1 ==41 =\rX =4G", "=G1 =A =\rX =4G");
	DECODES("quoted-printable", "line\r\nnext\r\n", "line\r\nnext\r\n");
	/* uuencode: from the begin line to a line of length 0 or "end"; CRLF too */
	DECODES("x-uuencode", "junk\nbegin 644 f\n#86)C\n`\nend\nafter\n", "abc");
	DECODES("uuencode", "begin 644 f\r\n-2&5L;&\\L('=O<FQD(0  \r\n`\r\nend\r\n",
	        "Hello, world!");
	DECODES("x-uue", "begin 644 f\n#86)C", "abc"); /* last line without line break */
	DECODES("x-uuencode", "#86)C\n", "");          /* no begin line: nothing */
	/* identity: everything else */
	DECODES(NULL, "x\r\n=41", "x\r\n=41");
	DECODES("8bit", "caf\xe9", "caf\xe9");
	DECODES("base64x", "YWJj", "YWJj");
	DECODES("quoted-printable; junk", "=41", "=41");
	/* read as GMime's parser reads the field: unfolded first */
	DECODES(" base64\r\n", "YWJj", "abc");
	DECODES(" base\r\n 64", "YWJj", "YWJj");
	DECODES(" base64\r\b", "YWJj", "YWJj");
	mime_decoder_free(NULL);

	{
		/* mime_message_parse decodes an attachment exactly as the decoder decodes the
		 * part's BODY[section] (the bytes before the CRLF that ends it) */
		static const char msg_text[] =
		    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		    "--b\r\nContent-Type: application/octet-stream; name=a.bin\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\nZGVm\r\nZw\r\n--b--";
		const char *body = strstr(msg_text, "YWJj");
		size_t body_len = (size_t)(strstr(msg_text, "\r\n--b--") - body);
		GByteArray *want = decode_split("base64", body, body_len, (gssize)body_len);
		struct mime_message *msg = parse_checked(msg_text, strlen(msg_text));
		gsize n;
		const void *p = g_bytes_get_data(mime_message_attachment_data(msg, 0), &n);
		g_assert_cmpmem(p, n, want->data, want->len);
		g_assert_cmpmem(p, n, "abcdefg", 7);
		mime_message_free(msg);
		g_byte_array_unref(want);
	}
	{
		/* mixed line breaks: the one before a delimiter belongs to it whatever its kind
		 * (GMime takes it to be the kind the delimiter line ends in) */
		static const char mixed[] =
		    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		    "--b\r\nContent-Type: application/octet-stream; "
		    "name=lf.bin\r\n\r\nline\r\nDATA\n"
		    "--b\r\nContent-Type: application/octet-stream; name=crlf.bin\r\n\r\nDATA\r\n"
		    "--b\nContent-Type: application/octet-stream; name=empty.bin\r\n\r\n\n"
		    "--b--";
		struct mime_message *msg = parse_checked(mixed, strlen(mixed));
		gsize n;
		const void *p;
		g_assert_cmpuint(mime_message_n_attachments(msg), ==, 3);
		p = g_bytes_get_data(mime_message_attachment_data(msg, 0), &n);
		g_assert_cmpmem(p, n, "line\r\nDATA", 10);
		p = g_bytes_get_data(mime_message_attachment_data(msg, 1), &n);
		g_assert_cmpmem(p, n, "DATA", 4);
		g_assert_cmpuint(g_bytes_get_size(mime_message_attachment_data(msg, 2)), ==, 0);
		mime_message_free(msg);
	}
}

/* ---- properties over every message of the test corpora (issue 21) ---- */

/* Every message of the corpora: golden, malformed, and the fuzz target's seeds.  New array of
 * paths (g_free each). */
static GPtrArray *corpus_paths(void)
{
	static const char *const sets[] = {"messages", "malformed/messages",
	                                   "../../fuzz/corpus/fuzz_mime"};
	GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);

	for (size_t i = 0; i < G_N_ELEMENTS(sets); i++) {
		char *dir = g_build_filename(data_dir, sets[i], NULL);
		GDir *d = g_dir_open(dir, 0, NULL);
		const char *name;
		g_assert_nonnull(d);
		while ((name = g_dir_read_name(d)) != NULL)
			g_ptr_array_add(paths, g_build_filename(dir, name, NULL));
		g_dir_close(d);
		g_free(dir);
	}
	return paths;
}

/* Text with every run of white space (and control characters) one space, trimmed; quotes
 * and backslashes dropped when strip_quotes (an address view quotes display names). */
static char *squeeze(const char *s, bool strip_quotes)
{
	GString *out = g_string_new(NULL);
	bool space = false;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 0x7f) {
			space = out->len > 0;
			continue;
		}
		if (strip_quotes && (*p == '"' || *p == '\\'))
			continue;
		if (space)
			g_string_append_c(out, ' ');
		space = false;
		g_string_append_c(out, (char)*p);
	}
	return g_string_free(out, FALSE);
}

/* The reference decoding of one strict RFC 2047 word ("=?cs?B|Q?text?=", no blank or '?'
 * inside) on its own: GLib's base64, Q by hand, then the charset; NULL when it makes no claim
 * (a base64 text that is not whole groups, bytes that are not text on their own — half a
 * character split across words —, a label that means no charset). */
static char *reference_word(const char *charset, char encoding, const char *text, size_t n)
{
	GByteArray *bytes = g_byte_array_new();
	char *label = g_strndup(charset, strcspn(charset, "*"));
	char *utf8 = NULL;

	if (encoding == 'B' || encoding == 'b') {
		char *copy = g_strndup(text, n);
		gsize len = 0;
		guchar *raw = n % 4 == 0 ? g_base64_decode(copy, &len) : NULL;
		if (raw != NULL)
			g_byte_array_append(bytes, raw, (guint)len);
		g_free(raw);
		g_free(copy);
		if (n % 4 != 0)
			goto out;
	} else {
		for (size_t i = 0; i < n; i++) {
			guint8 c = (guint8)text[i];
			if (c == '_')
				c = ' ';
			else if (c == '=' && n - i >= 3 && g_ascii_isxdigit(text[i + 1]) &&
			         g_ascii_isxdigit(text[i + 2])) {
				c = (guint8)(g_ascii_xdigit_value(text[i + 1]) * 16 +
				             g_ascii_xdigit_value(text[i + 2]));
				i += 2;
			}
			g_byte_array_append(bytes, &c, 1);
		}
	}
	if (mime_charset_iconv_name(label) == NULL)
		goto out;
	utf8 = mime_to_utf8((const char *)bytes->data, bytes->len, label, NULL);
	for (const char *p = utf8; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar u = g_utf8_get_char(p);
		if (u == 0xfffd || u < 0x20 || (u >= 0x7f && u < 0xa0)) {
			g_free(utf8);
			utf8 = NULL;
			break;
		}
	}
out:
	g_byte_array_unref(bytes);
	g_free(label);
	return utf8;
}

/* Check every strict encoded-word of value (a field called name) against the views; returns
 * how many were checked. */
static unsigned check_field_words(const struct mime_message *msg, const char *path,
                                  const char *name, const char *value)
{
	static const struct {
		const char *field;
		enum mime_view view;
	} views[] = {{"Subject", MIME_VIEW_SUBJECT},
	             {"From", MIME_VIEW_FROM},
	             {"To", MIME_VIEW_TO},
	             {"Cc", MIME_VIEW_CC}};
	unsigned checked = 0;

	for (const char *p = strstr(value, "=?"); p != NULL; p = strstr(p + 2, "=?")) {
		const char *cs = p + 2, *q = cs + strcspn(cs, "? \t\r\n"), *text, *end;
		char *want, *want_q;
		if (q == cs || q[0] != '?' || strchr("BbQq", q[1]) == NULL || q[1] == '\0' ||
		    q[2] != '?')
			continue;
		text = q + 3;
		end = text + strcspn(text, "? \t\r\n");
		if (end[0] != '?' || end[1] != '=')
			continue;
		{
			char *charset = g_strndup(cs, (size_t)(q - cs));
			char *ref = reference_word(charset, q[1], text, (size_t)(end - text));
			g_free(charset);
			if (ref == NULL)
				continue;
			want = squeeze(ref, false);
			want_q = squeeze(ref, true);
			g_free(ref);
		}
		if (want[0] != '\0') {
			char *headers = view(msg, MIME_VIEW_HEADERS);
			char *got = squeeze(headers, false);
			checked++;
			if (strstr(got, want) == NULL) {
				g_test_message(
				    "%s: %s's word \"%.*s\" (\"%s\") is missing from headers: %s",
				    path, name, (int)(end + 2 - p), p, want, got);
				g_test_fail();
			}
			g_free(got);
			g_free(headers);
			for (size_t v = 0; v < G_N_ELEMENTS(views); v++) {
				/* a word inside an angle-bracketed address is no display name */
				const char *lt = g_strrstr_len(value, p - value, "<");
				const char *gt = g_strrstr_len(value, p - value, ">");
				char *text_view;
				if (g_ascii_strcasecmp(name, views[v].field) != 0 ||
				    (lt != NULL && (gt == NULL || gt < lt)))
					continue;
				text_view = view(msg, views[v].view);
				got = squeeze(text_view != NULL ? text_view : "", v > 0);
				if (strstr(got, v > 0 ? want_q : want) == NULL) {
					g_test_message("%s: %s's word \"%.*s\" (\"%s\") is missing "
					               "from %s: %s",
					               path, name, (int)(end + 2 - p), p, want,
					               mime_view_name(views[v].view), got);
					g_test_fail();
				}
				g_free(got);
				g_free(text_view);
			}
		}
		g_free(want);
		g_free(want_q);
	}
	return checked;
}

/* Whether line[0..n) starts a header field (the syntax of mime.h, written here again). */
static bool corpus_field(const char *line, size_t n)
{
	size_t i = 0;

	while (i < n && (unsigned char)line[i] > ' ' && (unsigned char)line[i] < 0x7f &&
	       line[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < n && line[i] == ':';
}

/* The message's own header fields, unfolded, by mime.h's rule for where the block ends: pairs
 * name, value in a new array (g_free each). */
static GPtrArray *top_fields(const char *d, size_t len)
{
	GPtrArray *fields = g_ptr_array_new_with_free_func(g_free);
	GString *value = NULL;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(d + pos, '\n', len - pos);
		size_t next = nl != NULL ? (size_t)(nl - d) + 1 : len, n = next - pos;
		const char *line = d + pos;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0)
			break;
		if ((line[0] == ' ' || line[0] == '\t') && value != NULL) {
			g_string_append_len(value, line, (gssize)n);
		} else if (corpus_field(line, n)) {
			const char *colon = memchr(line, ':', n);
			size_t name = (size_t)(colon - line);
			while (name > 0 && (line[name - 1] == ' ' || line[name - 1] == '\t'))
				name--;
			if (value != NULL)
				g_ptr_array_add(fields, g_string_free(value, FALSE));
			g_ptr_array_add(fields, g_strndup(line, name));
			value = g_string_new_len(colon + 1, (gssize)(line + n - colon - 1));
		} else if (!(n > 5 && memcmp(line, "From ", 5) == 0)) {
			break; /* the body starts here (an mbox "From " line is skipped) */
		}
		pos = next;
	}
	if (value != NULL)
		g_ptr_array_add(fields, g_string_free(value, FALSE));
	return fields;
}

/* No text of a header's encoded-words is missing from the decoded views: each word decoded
 * on its own is the reference (issue 21 item 1). */
static void test_corpus_header_words(void)
{
	GPtrArray *paths = corpus_paths();
	unsigned checked = 0;

	for (guint i = 0; i < paths->len; i++) {
		const char *path = paths->pdata[i];
		gchar *data;
		gsize len;
		struct mime_message *msg;
		GPtrArray *fields;

		g_assert_true(g_file_get_contents(path, &data, &len, NULL));
		msg = parse(data, len);
		fields = top_fields(data, len);
		for (guint f = 0; f + 1 < fields->len; f += 2)
			checked +=
			    check_field_words(msg, path, fields->pdata[f], fields->pdata[f + 1]);
		g_ptr_array_unref(fields);
		mime_message_free(msg);
		g_free(data);
	}
	g_test_message("%u encoded-words checked in %u messages", checked, paths->len);
	g_assert_cmpuint(checked, >=, 30);
	g_ptr_array_unref(paths);
}

/* No attachment has a byte its part does not have, nor lacks one: every attachment is the
 * transfer-decoded body of a leaf part as readable.c splits the message apart from mime/'s
 * code path (the line break before a delimiter belongs to the delimiter; issue 21 items 2, 4,
 * 7).  Forwarded messages are their part's body as it is. */
static void test_corpus_attachments(void)
{
	GPtrArray *paths = corpus_paths();
	unsigned checked = 0, messages = 0;

	for (guint i = 0; i < paths->len; i++) {
		const char *path = paths->pdata[i];
		gchar *data;
		gsize len;
		struct mime_message *msg;
		GArray *leaves;

		g_assert_true(g_file_get_contents(path, &data, &len, NULL));
		leaves = mime_test_leaves(data, len);
		msg = parse(data, len);
		for (size_t a = 0; leaves != NULL && a < mime_message_n_attachments(msg); a++) {
			GBytes *att = mime_message_attachment_data(msg, a);
			bool found = false;
			for (guint l = 0; l < leaves->len && !found; l++) {
				const struct mime_test_leaf *leaf =
				    &g_array_index(leaves, struct mime_test_leaf, l);
				struct mime_decoder *d = mime_decoder_new(leaf->encoding);
				GByteArray *out = g_byte_array_new();
				gsize n;
				const void *p = g_bytes_get_data(att, &n);
				mime_decoder_step(d, leaf->body, leaf->len, out);
				mime_decoder_finish(d, out);
				mime_decoder_free(d);
				found = out->len == n && (n == 0 || memcmp(out->data, p, n) == 0);
				g_byte_array_unref(out);
			}
			checked++;
			if (!found) {
				gsize n;
				const char *p = g_bytes_get_data(att, &n);
				char *tail =
				    g_strndup(p != NULL ? p + n - MIN(n, 8) : "", MIN(n, 8));
				char *shown = g_strescape(tail, NULL);
				g_test_message(
				    "%s: attachment %s (%zu bytes, ending \"%s\") is no part's "
				    "body",
				    path, mime_message_attachment_name(msg, a), n, shown);
				g_test_fail();
				g_free(shown);
				g_free(tail);
			}
		}
		messages += leaves != NULL;
		if (leaves != NULL)
			g_array_unref(leaves);
		mime_message_free(msg);
		g_free(data);
	}
	g_test_message("%u attachments checked in %u of %u messages", checked, messages,
	               paths->len);
	g_assert_cmpuint(checked, >=, 20);
	g_ptr_array_unref(paths);
}

/* ---- robustness ---- */

/* Time one parse; the bound is generous (sanitizer builds are slow) but catches a hang or a
 * quadratic blow-up. */
static struct mime_message *timed_parse(const void *data, size_t len, double max_seconds)
{
	GTimer *t = g_timer_new();
	struct mime_message *msg = parse(data, len);
	double s = g_timer_elapsed(t, NULL);

	g_test_message("parsed %zu bytes in %.3f s", len, s);
	g_assert_cmpfloat(s, <, max_seconds);
	g_timer_destroy(t);
	return msg;
}

static void test_deep_multipart(void)
{
	GString *s = g_string_new("Subject: deep\nMIME-Version: 1.0\n");
	struct mime_message *msg;

	for (int i = 0; i < 10000; i++)
		g_string_append_printf(
		    s, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
	g_string_append(s, "Content-Type: text/plain\n\nbottom\n");
	for (int i = 9999; i >= 0; i--)
		g_string_append_printf(s, "--b%d--\n", i);
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	assert_view(msg, MIME_VIEW_SUBJECT, "deep\n");
	/* beyond the depth cap: not descended into */
	assert_view(msg, MIME_VIEW_BODY, "");
	mime_message_free(msg);
	g_string_free(s, TRUE);
}

static void test_depth_cap(void)
{
	/* a leaf MIME_MAX_DEPTH multiparts down is shown, one level deeper it is not */
	for (int depth = MIME_MAX_DEPTH; depth <= MIME_MAX_DEPTH + 1; depth++) {
		GString *s = g_string_new("Subject: d\n");
		struct mime_message *msg;
		for (int i = 0; i < depth; i++)
			g_string_append_printf(
			    s, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
		g_string_append(s, "Content-Type: text/plain\n\nleaf\n");
		for (int i = depth - 1; i >= 0; i--)
			g_string_append_printf(s, "--b%d--\n", i);
		msg = parse_checked(s->str, s->len);
		assert_view(msg, MIME_VIEW_BODY, depth <= MIME_MAX_DEPTH ? "leaf\n" : "");
		mime_message_free(msg);
		g_string_free(s, TRUE);
	}
}

static void test_deep_rfc822(void)
{
	GString *s = g_string_new("Subject: outer\nMIME-Version: 1.0\n");
	struct mime_message *msg;

	for (int i = 0; i < 10000; i++)
		g_string_append_printf(s, "Content-Type: message/rfc822\n\nSubject: level %d\n", i);
	g_string_append(s, "Content-Type: text/plain\n\nbottom\n");
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	g_assert_cmpuint(mime_message_n_attachments(msg), ==, 1);
	g_assert_cmpstr(mime_message_attachment_name(msg, 0), ==, "level 0.eml");
	mime_message_free(msg);
	g_string_free(s, TRUE);

	/* multiparts and messages alternating */
	s = g_string_new("Subject: mixed nesting\n");
	for (int i = 0; i < 5000; i++)
		g_string_append_printf(s,
		                       "Content-Type: multipart/mixed; boundary=\"m%d\"\n\n--m%d\n"
		                       "Content-Type: message/rfc822\n\nSubject: %d\n",
		                       i, i, i);
	g_string_append(s, "\nbottom\n");
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	mime_message_free(msg);
	g_string_free(s, TRUE);
}

static void test_big_header(void)
{
	/* a 4 MB folded Subject of encoded words and an 8 MB unfolded junk header (a quarter of
	 * that under ASan, see SANITIZED) */
	GString *s = g_string_new("From: a@example.com\nSubject:");
	struct mime_message *msg;
	char *subject;
	size_t scale = SANITIZED ? 4 : 1;
	size_t words = 4 * 1024 * 1024 / 20 / scale;

	for (size_t i = 0; i < words; i++)
		g_string_append(s, " =?UTF-8?Q?=C3=A9?=\n");
	g_string_append(s, "X-Junk: ");
	for (size_t i = 0; i < 8 * 1024 * 1024 / 8 / scale; i++)
		g_string_append(s, "abcdefg ");
	g_string_append(s, "\nTo: b@example.com\n\nbody\n");
	msg = timed_parse(s->str, s->len, 60);
	subject = view(msg, MIME_VIEW_SUBJECT);
	/* adjacent encoded words join without the whitespace between them */
	g_assert_cmpuint(strlen(subject), ==, words * 2 + 1);
	g_assert_true(g_str_has_prefix(subject, "éé"));
	assert_view(msg, MIME_VIEW_TO, "b@example.com\n");
	assert_view(msg, MIME_VIEW_BODY, "body\n");
	assert_valid_utf8_bytes(mime_message_view(msg, MIME_VIEW_HEADERS));
	g_free(subject);
	mime_message_free(msg);
	g_string_free(s, TRUE);
}

static void test_big_message(void)
{
	/* 50 MB: a text body, a 37 MB base64 attachment, a 2 MB HTML part */
	const size_t attach_len = 37u * 1024 * 1024;
	guint8 *attach = g_malloc(attach_len);
	GString *s = g_string_new("Subject: big\nMIME-Version: 1.0\n"
	                          "Content-Type: multipart/mixed; boundary=BIG\n\n"
	                          "--BIG\nContent-Type: text/plain\n\nhello\n"
	                          "--BIG\nContent-Type: application/octet-stream; name=big.bin\n"
	                          "Content-Transfer-Encoding: base64\n\n");
	guint32 x = 12345;
	gchar *b64;
	struct mime_message *msg;
	GBytes *data;

	for (size_t i = 0; i < attach_len; i++) {
		x = x * 1103515245u + 12345u;
		attach[i] = (guint8)(x >> 16);
	}
	b64 = g_base64_encode(attach, attach_len);
	for (size_t i = 0, n = strlen(b64); i < n; i += 76) {
		g_string_append_len(s, b64 + i, (gssize)MIN(76, n - i));
		g_string_append_c(s, '\n');
	}
	g_free(b64);
	g_string_append(s, "--BIG\nContent-Type: text/html\n\n");
	while (s->len < 50u * 1024 * 1024)
		g_string_append(s, "<p>paragraph &amp; <a href=\"https://e.com\">link</a></p>\n");
	g_string_append(s, "--BIG--\n");

	msg = timed_parse(s->str, s->len, 120);
	assert_view(msg, MIME_VIEW_BODY, "hello\n");
	g_assert_cmpuint(mime_message_n_attachments(msg), ==, 1);
	data = mime_message_attachment_data(msg, 0);
	g_assert_cmpuint(g_bytes_get_size(data), ==, attach_len);
	g_assert_true(memcmp(g_bytes_get_data(data, NULL), attach, attach_len) == 0);
	g_assert_nonnull(mime_message_view(msg, MIME_VIEW_BODY_HTML));
	mime_message_free(msg);
	g_free(attach);
	g_string_free(s, TRUE);

	/* 50 MB of HTML only: rendered without libxml2's 10 MB text limit cutting it */
	s = g_string_new("Content-Type: text/html\n\n<p>");
	while (s->len < 50u * 1024 * 1024)
		g_string_append(s, "word &amp; ");
	g_string_append(s, "END</p>\n");
	msg = timed_parse(s->str, s->len, 120);
	{
		GBytes *body = mime_message_view(msg, MIME_VIEW_BODY);
		gsize n;
		const char *p = g_bytes_get_data(body, &n);
		g_assert_cmpuint(n, >, 30u * 1024 * 1024); /* "word &amp; " → "word & " */
		g_assert_true(n >= 4 && memcmp(p + n - 4, "END\n", 4) == 0);
	}
	mime_message_free(msg);
	g_string_free(s, TRUE);
}

static void test_many_parts(void)
{
	GString *s = g_string_new("Content-Type: multipart/mixed; boundary=p\n\n");
	struct mime_message *msg;

	/* twice the part limit: the message ends where the limit is reached */
	for (int i = 0; i < 2 * MIME_MAX_PARTS; i++)
		g_string_append(s, "--p\nContent-Type: application/pdf; name=same.pdf\n\nx\n");
	g_string_append(s, "--p--\n");
	msg = timed_parse(s->str, s->len, 60);
	check_invariants(msg, s->str, s->len);
	g_assert_cmpuint(mime_message_n_attachments(msg), ==, MIME_MAX_PARTS);
	g_assert_cmpstr(mime_message_attachment_name(msg, 0), ==, "same.pdf");
	g_assert_cmpstr(mime_message_attachment_name(msg, MIME_MAX_PARTS - 1), ==,
	                "same (10000).pdf");
	mime_message_free(msg);
	g_string_free(s, TRUE);

	/* 2,000,000 empty parts in 10 MB: bounded like any other */
	s = g_string_new("Subject: tiny parts\nContent-Type: multipart/mixed; boundary=p\n\n");
	while (s->len < 10u * 1024 * 1024)
		g_string_append(s, "--p\n\n");
	g_string_append(s, "--p\nContent-Type: text/plain\n\nnot reached\n--p--\n");
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	assert_view(msg, MIME_VIEW_SUBJECT, "tiny parts\n");
	assert_view(msg, MIME_VIEW_BODY, "");
	mime_message_free(msg);
	g_string_free(s, TRUE);
}

/* Millions of tiny header fields, parameters or addresses: GMime would build an object for
 * each (gigabytes); the limits keep them to a bounded number, and the message still reads. */
static void test_header_floods(void)
{
	GString *s = g_string_new("Subject: flood\n");
	struct mime_message *msg;
	char *headers;
	size_t lines = 0;

	while (s->len < 10u * 1024 * 1024)
		g_string_append(s, "X:y\n");
	g_string_append(s, "\nbody\n");
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	assert_view(msg, MIME_VIEW_SUBJECT, "flood\n");
	assert_view(msg, MIME_VIEW_BODY, "body\n");
	headers = view(msg, MIME_VIEW_HEADERS);
	for (const char *p = headers; *p != '\0'; p++)
		lines += *p == '\n';
	g_assert_cmpuint(lines, ==, MIME_MAX_FIELDS_PER_BLOCK);
	g_free(headers);
	mime_message_free(msg);
	g_string_free(s, TRUE);

	/* 2,000,000 parameters */
	s = g_string_new("Subject: params\nContent-Type: text/plain; charset=utf-8");
	while (s->len < 10u * 1024 * 1024)
		g_string_append(s, "; a=b");
	g_string_append(s, "\n\nbody \xc3\xa9\n");
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	assert_view(msg, MIME_VIEW_BODY, "body é\n");
	mime_message_free(msg);
	g_string_free(s, TRUE);

	/* 1,400,000 addresses */
	s = g_string_new("Subject: addresses\nTo: first@example.com");
	while (s->len < 10u * 1024 * 1024)
		g_string_append(s, ", a@b.c");
	g_string_append(s, "\n\nbody\n");
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	{
		char *to = view(msg, MIME_VIEW_TO);
		g_assert_true(g_str_has_prefix(to, "first@example.com, a@b.c, "));
		g_assert_cmpuint(strlen(to), <=, MIME_MAX_STRUCTURED_FIELD + 16);
		g_free(to);
	}
	assert_view(msg, MIME_VIEW_BODY, "body\n");
	mime_message_free(msg);
	g_string_free(s, TRUE);
}

/* Wrong boundaries, hostile versions: a rescued multipart is held to the same limits, and
 * wrong boundaries nested in wrong boundaries do not multiply the work. */
static void test_rescue_bounded(void)
{
	GString *s = g_string_new("Subject: rescue\nContent-Type: multipart/mixed; boundary=A\n\n");
	struct mime_message *msg;

	while (s->len < 10u * 1024 * 1024)
		g_string_append(s, "--B\n\n");
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	mime_message_free(msg);
	g_string_free(s, TRUE);

	s = g_string_new("Subject: nested rescue\n");
	for (int i = 0; i < 40; i++)
		g_string_append_printf(s,
		                       "Content-Type: multipart/mixed; boundary=declared%d\n\n"
		                       "--used%d\n",
		                       i, i);
	g_string_append(s, "Content-Type: text/plain\n\n");
	while (s->len < 5u * 1024 * 1024)
		g_string_append(s, "payload line\n");
	msg = timed_parse(s->str, s->len, 30);
	check_invariants(msg, s->str, s->len);
	{
		/* the text is shown (as text, not dropped) */
		char *body = view(msg, MIME_VIEW_BODY);
		g_assert_nonnull(strstr(body, "payload line\npayload line\n"));
		g_free(body);
	}
	mime_message_free(msg);
	g_string_free(s, TRUE);
}

/* The limits pass leaves ordinary mail alone (no copy at all). */
static void test_limits_untouched(void)
{
	const char *msg = "Subject: x\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
	                  "--b\nContent-Type: text/plain\n\nhi\n--b--\n";
	size_t n;

	g_assert_null(mime_limit_structure(msg, strlen(msg), &n));
}

/* Deterministic garbage and mutations of the golden messages: never a crash, always the
 * invariants. */
static void test_garbage(void)
{
	GRand *rand = g_rand_new_with_seed(20240127);
	static const char *const pieces[] = {
	    "Content-Type: multipart/mixed; boundary=x\n",
	    "--x\n",
	    "--x--\n",
	    "\n",
	    "Content-Transfer-Encoding: base64\n",
	    "Content-Transfer-Encoding: quoted-printable\n",
	    "=?utf-8?b?",
	    "?=",
	    "=?iso-2022-jp?q?=1b$B",
	    "Subject: ",
	    "\xff\xfe\x80",
	    "Content-Type: text/html; charset=euc-kr\n",
	    "<a href=x>",
	    "<script>",
	    "&#x",
	    "Content-Type: message/rfc822\n",
	    "Content-Disposition: attachment; filename*0*=",
	    "utf-8''%ff%00",
	    "filename*1=\"..\"\n",
	    "\r",
	    "\0",
	    "=\n",
	    "begin 644 f\n",
	};

	for (int round = 0; round < 300; round++) {
		GString *s = g_string_new(NULL);
		int n = g_rand_int_range(rand, 0, 60);
		struct mime_message *msg;
		for (int i = 0; i < n; i++) {
			if (g_rand_boolean(rand)) {
				const char *p =
				    pieces[g_rand_int_range(rand, 0, G_N_ELEMENTS(pieces))];
				g_string_append_len(s, p, p[0] == '\0' ? 1 : (gssize)strlen(p));
			} else {
				g_string_append_c(s, (char)g_rand_int_range(rand, 0, 256));
			}
		}
		msg = parse(s->str, s->len);
		check_invariants(msg, s->str, s->len);
		mime_message_free(msg);
		g_string_free(s, TRUE);
	}
	g_rand_free(rand);
}

/* mime_repair_separators(in) is in with one "\n" inserted right before the text line. */
static void assert_one_break_before(const char *in, const char *line)
{
	size_t len = 0;
	char *out = mime_repair_separators(in, strlen(in), &len);
	const char *at = strstr(in, line);

	g_assert_nonnull(out);
	g_assert_nonnull(at);
	g_assert_cmpuint(len, ==, strlen(in) + 1);
	g_assert_cmpmem(out, at - in, in, at - in);
	g_assert_cmpint(out[at - in], ==, '\n');
	g_assert_cmpstr(out + (at - in) + 1, ==, at);
	g_free(out);
}

/* separator.c: well-formed mail goes to GMime untouched (every golden message), a run-on
 * header block gets exactly the one missing line break, and nothing changes inside a
 * forwarded message — even where it reuses the boundary of the multipart around it. */
static void test_separator(void)
{
	GDir *d;
	const char *entry;
	char *dir = g_build_filename(data_dir, "messages", NULL);
	unsigned n = 0;
	static const char runon[] = "Subject: a\r\nText.\r\n";
	static const char forward[] =
	    "Content-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Type: text/plain\nRun-on text.\n"
	    "--b\nContent-Type: message/rfc822\n\n"
	    "Subject: inner\nContent-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Type: text/plain\nInner run-on.\n--b--\n"
	    "--b--\n";
	static const char after[] = "Content-Type: multipart/mixed; boundary=b\n\n"
	                            "--b\nContent-Type: message/rfc822\n\n"
	                            "Subject: inner\n\nInner text.\n"
	                            "--b\nContent-Type: text/plain\nAfter the forward.\n--b--\n";
	size_t len = 0;
	char *out;

	d = g_dir_open(dir, 0, NULL);
	g_assert_nonnull(d);
	while ((entry = g_dir_read_name(d)) != NULL) {
		char *path = g_build_filename(dir, entry, NULL);
		gchar *data;
		gsize data_len;
		g_assert_true(g_file_get_contents(path, &data, &data_len, NULL));
		out = mime_repair_separators(data, data_len, &len);
		if (out != NULL)
			g_test_message("%s was changed", entry);
		g_assert_null(out);
		n++;
		g_free(data);
		g_free(path);
	}
	g_dir_close(d);
	g_free(dir);
	g_assert_cmpuint(n, >=, 20);

	out = mime_repair_separators(runon, strlen(runon), &len);
	g_assert_nonnull(out);
	g_assert_cmpstr(out, ==, "Subject: a\r\n\r\nText.\r\n");
	g_assert_cmpuint(len, ==, strlen(runon) + 2);
	g_free(out);

	assert_one_break_before(forward, "Run-on text.");
	/* after the forwarded message's part, header blocks are repaired again */
	assert_one_break_before(after, "After the forward.");
}

/* A stray CR inside "multipart" makes the Content-Type invalid where GMime's parser reads it
 * (so it builds text/plain), though the unfolded value reads as a type: text/plain it is. */
static void test_untyped_views(void)
{
	struct mime_message *msg =
	    parse_str("Subject: a\nContent-Type: m\rultipart/mixed; boundary=x\n\nThe text.\n");
	char *body = view(msg, MIME_VIEW_BODY);

	g_assert_cmpstr(body, ==, "The text.\n");
	g_assert_cmpuint(mime_message_n_attachments(msg), ==, 0);
	g_free(body);
	mime_message_free(msg);
}

/* The judge of readable text (readable.c) that check_invariants and the fuzz target rely on
 * must say yes where the rule of mime.h applies, and no where it does not. */
static void test_readable_judge(void)
{
	static const struct {
		const char *message;
		bool readable;
	} cases[] = {
	    {"Subject: a\n\nText.\n", true},
	    {"Subject: a\nText runs on.\n", true},
	    {"Just text.\n", true},
	    {"Subject: a\r\nContent-Type: text; charset=us-ascii\r\n\r\nNo subtype.\r\n", true},
	    {"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n"
	     "Run-on part.\n--b--\n",
	     true},
	    {"Content-Type: text/html\n\n<p>Words</p>\n", true},
	    {"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nSGVsbG8=\n", true},
	    {"Subject: a\n\n \t\n\n", false},
	    {"Subject: only a header", false},
	    {"Content-Type: text/html\n\n<script>x()</script>\n", false},
	    {"Content-Type: image/png\n\nnot text\n", false},
	    {"Content-Type: text/plain\nContent-Disposition: attachment\n\nfile\n", false},
	    {"Content-Type: text/calendar\n\nBEGIN:VCALENDAR\n", false},
	    {"Content-Type: message/rfc822\n\nSubject: inner\n\nforwarded\n", false},
	    {"Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: x\n\ny\n--b--\n",
	     false},
	    {"Content-Type: multipart/mixed; boundary=b\n\npreamble\n--b\n"
	     "Content-Type: image/png\n\nx\n--b--\nepilogue\n",
	     false},
	    /* no claim: a part-less multipart whose lines start with "--" */
	    {"Content-Type: multipart/mixed\n\n--x\nContent-Type: image/png\n\nx\n", false},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const char *m = cases[i].message;
		if (mime_test_has_readable_text(m, strlen(m)) != cases[i].readable) {
			g_test_message("judge wrong on case %zu: %s", i, m);
			g_test_fail();
		}
	}
}

static void test_api_edges(void)
{
	struct mime_message *msg = NULL;

	g_assert_cmpint(mime_message_parse(NULL, 5, &msg), ==, -EINVAL);
	g_assert_cmpint(mime_message_parse("x", 1, NULL), ==, -EINVAL);
	g_assert_cmpint(mime_message_parse(NULL, 0, &msg), ==, 0);
	g_assert_nonnull(msg);
	mime_message_free(msg);
	mime_message_free(NULL);
	g_assert_null(mime_message_view(NULL, MIME_VIEW_BODY));
	g_assert_cmpuint(mime_message_n_attachments(NULL), ==, 0);
	g_assert_cmpstr(mime_view_name(MIME_VIEW_BODY_HTML), ==, "body.html");
	g_assert_cmpstr(mime_view_name(MIME_VIEW_MESSAGE_ID), ==, "message-id");
	g_assert_null(mime_view_name(MIME_VIEW_COUNT));
}

/* Views are immutable and parsing is thread-safe: parse the same message from 4 threads. */
static gpointer parse_thread(gpointer data)
{
	const char *text = data;

	for (int i = 0; i < 50; i++) {
		struct mime_message *msg = parse_str(text);
		char *body = view(msg, MIME_VIEW_BODY);
		g_assert_cmpstr(body, ==, "Hello world <https://e.com/>\n");
		g_free(body);
		mime_message_free(msg);
	}
	return NULL;
}

static void test_threads(void)
{
	static const char text[] = "Subject: =?euc-kr?b?vsiz58fPvLy/5A==?=\n"
	                           "Content-Type: text/html; charset=euc-kr\n\n"
	                           "<p>Hello <a href='https://e.com/'>world</a></p>";
	GThread *threads[4];

	for (int i = 0; i < 4; i++)
		threads[i] = g_thread_new("parse", parse_thread, (gpointer)text);
	for (int i = 0; i < 4; i++)
		g_thread_join(threads[i]);
}

static gint compare_names(gconstpointer a, gconstpointer b, gpointer unused)
{
	const struct golden_case *x = *(struct golden_case *const *)a;
	const struct golden_case *y = *(struct golden_case *const *)b;

	return strcmp(x->name, y->name);
}

static void free_golden_case(gpointer p)
{
	struct golden_case *c = p;

	g_free(c->name);
	g_free(c);
}

/* Register /mime/PREFIX/NAME for every SET/messages/NAME.eml; returns how many. */
static guint add_golden_set(GPtrArray *cases, const char *set, const char *prefix)
{
	char *messages = g_build_filename(data_dir, set, "messages", NULL);
	GDir *d = g_dir_open(messages, 0, NULL);
	const char *entry;
	guint first = cases->len;

	g_assert_nonnull(d);
	while ((entry = g_dir_read_name(d)) != NULL) {
		struct golden_case *c;
		if (!g_str_has_suffix(entry, ".eml"))
			continue;
		c = g_new0(struct golden_case, 1);
		c->set = set;
		c->name = g_strndup(entry, strlen(entry) - 4);
		g_ptr_array_add(cases, c);
	}
	g_dir_close(d);
	g_free(messages);
	/* sort the new ones only: registration order is test order */
	g_qsort_with_data(cases->pdata + first, (gint)(cases->len - first), sizeof(gpointer),
	                  compare_names, NULL);
	for (guint i = first; i < cases->len; i++) {
		struct golden_case *c = cases->pdata[i];
		char *path = g_strdup_printf("/mime/%s/%s", prefix, c->name);
		g_test_add_data_func(path, c, test_golden);
		g_free(path);
	}
	return cases->len - first;
}

int main(int argc, char **argv)
{
	GPtrArray *cases = g_ptr_array_new_with_free_func(free_golden_case);

	g_test_init(&argc, &argv, NULL);
	mime_init();
	data_dir = g_getenv("MIME_TEST_DATA");
	if (data_dir == NULL)
		data_dir = MIME_TEST_DATA_DEFAULT;

	g_assert_cmpuint(add_golden_set(cases, ".", "golden"), >=, 20);
	/* malformed shapes (make_malformed.py), each with LF and with CRLF line ends */
	g_assert_cmpuint(add_golden_set(cases, "malformed", "malformed"), >=, 30);

	g_test_add_func("/mime/charsets", test_charsets);
	g_test_add_func("/mime/raw-8bit-headers", test_raw_8bit_headers);
	g_test_add_func("/mime/addresses", test_addresses);
	g_test_add_func("/mime/dates", test_dates);
	g_test_add_func("/mime/body-selection", test_body_selection);
	g_test_add_func("/mime/html", test_html);
	g_test_add_func("/mime/names", test_names);
	g_test_add_func("/mime/to-utf8", test_to_utf8);
	g_test_add_func("/mime/decoder", test_decoder);
	g_test_add_func("/mime/header-words", test_header_words);
	g_test_add_func("/mime/corpus/header-words", test_corpus_header_words);
	g_test_add_func("/mime/corpus/attachments", test_corpus_attachments);
	g_test_add_func("/mime/api-edges", test_api_edges);
	g_test_add_func("/mime/readable-judge", test_readable_judge);
	g_test_add_func("/mime/separator", test_separator);
	g_test_add_func("/mime/untyped-views", test_untyped_views);
	g_test_add_func("/mime/threads", test_threads);
	g_test_add_func("/mime/robust/depth-cap", test_depth_cap);
	g_test_add_func("/mime/robust/deep-multipart", test_deep_multipart);
	g_test_add_func("/mime/robust/deep-rfc822", test_deep_rfc822);
	g_test_add_func("/mime/robust/big-header", test_big_header);
	g_test_add_func("/mime/robust/big-message", test_big_message);
	g_test_add_func("/mime/robust/many-parts", test_many_parts);
	g_test_add_func("/mime/robust/header-floods", test_header_floods);
	g_test_add_func("/mime/robust/limits-untouched", test_limits_untouched);
	g_test_add_func("/mime/robust/rescue-bounded", test_rescue_bounded);
	g_test_add_func("/mime/robust/garbage", test_garbage);

	{
		int rc = g_test_run();
		g_ptr_array_unref(cases);
		return rc;
	}
}
