/* test_search.c — unit tests of imap/search.c: search queries built from typed values, their
 * serialisation, and the RFC 3501 expression parser.
 *
 * What must hold, because `.search` paths put user input into UID SEARCH commands: every key
 * kind serialises to its RFC 3501 form; an AND nested inside OR/NOT gets parentheses; dates are
 * written 1-Jan-2025; non-ASCII values become literals ({n+} with LITERAL+, a synchronising
 * literal — a separate chunk — without); values with CR/LF are refused when the query is built;
 * a hostile value (quotes, backslash, braces, parentheses, '*', '%', ']') can never change the
 * command: it stays inside one quoted string whose unescaped content is the value itself; and
 * imap_search_parse reads OR/NOT/parentheses/quoted strings, refuses what it must (unknown
 * keys, sequence numbers, literals, bad dates, too deep or too long expressions) with a reason,
 * and round-trips through imap_search_describe.
 */
#include "cmd_wire.h"

#include <errno.h>
#include <string.h>

#define KOREAN "\xed\x9a\x8c\xec\x9d\x98" /* 회의, 6 bytes of UTF-8 */

/* q serialised as it would go on the wire (cmd_wire: chunks separated by "|"). */
static char *wire_of(const struct imap_search *q, enum imap_literal_mode mode, int *err_r,
                     guint *nchunks_r)
{
	struct imap_cmd *cmd = imap_cmd_new();
	*err_r = imap_search_format(cmd, q, mode);
	char *w = cmd_wire(cmd);
	if (nchunks_r != NULL)
		*nchunks_r = cmd->chunks->len;
	imap_cmd_free(cmd);
	return w;
}

/* describe(q) must be want, and so must the wire form with LITERAL+ (one chunk, the same text
 * when nothing needs a literal).  Frees q. */
static void check(struct imap_search *q, const char *want)
{
	int err;
	guint nchunks;
	g_assert_nonnull(q);
	char *d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, want);
	char *w = wire_of(q, IMAP_LITERAL_SYNC, &err, &nchunks);
	g_assert_cmpint(err, ==, 0);
	if (!imap_search_needs_utf8(q)) {
		g_assert_cmpstr(w, ==, want);
		g_assert_cmpuint(nchunks, ==, 1);
	}
	g_free(w);
	g_free(d);
	imap_search_free(q);
}

static struct imap_search *str(enum imap_search_key key, const char *v)
{
	struct imap_search *q = NULL;
	g_assert_cmpint(imap_search_new_string(key, v, &q), ==, 0);
	return q;
}

static struct imap_search *flag(enum imap_search_key key)
{
	struct imap_search *q = imap_search_new_flag(key);
	g_assert_nonnull(q);
	return q;
}

static struct imap_search *date(enum imap_search_key key, int y, int m, int d)
{
	struct imap_search *q = NULL;
	g_assert_cmpint(imap_search_new_date(key, y, m, d, &q), ==, 0);
	return q;
}

/* ---- building and serialising ------------------------------------------------------------- */

static void test_flag_keys(void)
{
	static const struct {
		enum imap_search_key key;
		const char *name;
	} flags[] = {
	    {IMAP_SEARCH_ALL, "ALL"},
	    {IMAP_SEARCH_ANSWERED, "ANSWERED"},
	    {IMAP_SEARCH_DELETED, "DELETED"},
	    {IMAP_SEARCH_DRAFT, "DRAFT"},
	    {IMAP_SEARCH_FLAGGED, "FLAGGED"},
	    {IMAP_SEARCH_NEW, "NEW"},
	    {IMAP_SEARCH_OLD, "OLD"},
	    {IMAP_SEARCH_RECENT, "RECENT"},
	    {IMAP_SEARCH_SEEN, "SEEN"},
	    {IMAP_SEARCH_UNANSWERED, "UNANSWERED"},
	    {IMAP_SEARCH_UNDELETED, "UNDELETED"},
	    {IMAP_SEARCH_UNDRAFT, "UNDRAFT"},
	    {IMAP_SEARCH_UNFLAGGED, "UNFLAGGED"},
	    {IMAP_SEARCH_UNSEEN, "UNSEEN"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(flags); i++)
		check(flag(flags[i].key), flags[i].name);
	/* keys that take a value are not flags */
	static const enum imap_search_key not_flags[] = {
	    IMAP_SEARCH_FROM,   IMAP_SEARCH_HEADER,        IMAP_SEARCH_KEYWORD, IMAP_SEARCH_SINCE,
	    IMAP_SEARCH_LARGER, IMAP_SEARCH_UID,           IMAP_SEARCH_NOT,     IMAP_SEARCH_OR,
	    IMAP_SEARCH_AND,    (enum imap_search_key)999,
	};
	for (size_t i = 0; i < G_N_ELEMENTS(not_flags); i++)
		g_assert_null(imap_search_new_flag(not_flags[i]));
}

static void test_string_keys(void)
{
	static const struct {
		enum imap_search_key key;
		const char *want;
	} keys[] = {
	    {IMAP_SEARCH_BCC, "BCC \"alice\""},
	    {IMAP_SEARCH_BODY, "BODY \"alice\""},
	    {IMAP_SEARCH_CC, "CC \"alice\""},
	    {IMAP_SEARCH_FROM, "FROM \"alice\""},
	    {IMAP_SEARCH_SUBJECT, "SUBJECT \"alice\""},
	    {IMAP_SEARCH_TEXT, "TEXT \"alice\""},
	    {IMAP_SEARCH_TO, "TO \"alice\""},
	    {IMAP_SEARCH_X_GM_RAW, "X-GM-RAW \"alice\""},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		struct imap_search *q = str(keys[i].key, "alice");
		g_assert_false(imap_search_needs_utf8(q));
		g_assert_cmpint(imap_search_uses_gmail(q), ==, keys[i].key == IMAP_SEARCH_X_GM_RAW);
		check(q, keys[i].want);
	}
	/* an empty substring is a string too */
	check(str(IMAP_SEARCH_SUBJECT, ""), "SUBJECT \"\"");
	/* other keys are not string keys */
	struct imap_search *q = (struct imap_search *)0x1;
	g_assert_cmpint(imap_search_new_string(IMAP_SEARCH_SEEN, "x", &q), ==, -EINVAL);
	g_assert_null(q);
	g_assert_cmpint(imap_search_new_string(IMAP_SEARCH_HEADER, "x", &q), ==, -EINVAL);
	g_assert_cmpint(imap_search_new_string(IMAP_SEARCH_SINCE, "x", &q), ==, -EINVAL);
	g_assert_cmpint(imap_search_new_string((enum imap_search_key)999, "x", &q), ==, -EINVAL);
	g_assert_cmpint(imap_search_new_string(IMAP_SEARCH_FROM, NULL, &q), ==, -EINVAL);
	g_assert_null(q);
}

static void test_header_keyword_uid(void)
{
	struct imap_search *q = NULL;
	g_assert_cmpint(imap_search_new_header("X-Spam-Flag", "YES", &q), ==, 0);
	check(q, "HEADER \"X-Spam-Flag\" \"YES\"");
	/* an empty value asks for the field's presence */
	g_assert_cmpint(imap_search_new_header("List-Id", "", &q), ==, 0);
	check(q, "HEADER \"List-Id\" \"\"");
	g_assert_cmpint(imap_search_new_header("", "x", &q), ==, -EINVAL);
	g_assert_null(q);
	g_assert_cmpint(imap_search_new_header(NULL, "x", &q), ==, -EINVAL);

	g_assert_cmpint(imap_search_new_keyword(IMAP_SEARCH_KEYWORD, "$Label1", &q), ==, 0);
	check(q, "KEYWORD $Label1");
	g_assert_cmpint(imap_search_new_keyword(IMAP_SEARCH_UNKEYWORD, "Junk", &q), ==, 0);
	check(q, "UNKEYWORD Junk");
	g_assert_cmpint(imap_search_new_keyword(IMAP_SEARCH_SUBJECT, "Junk", &q), ==, -EINVAL);
	g_assert_null(q);

	g_assert_cmpint(imap_search_new_uid("1:5,7,9:*", &q), ==, 0);
	check(q, "UID 1:5,7,9:*");
	static const char *const bad_sets[] = {"",   "0",     "1 2",        "a",
	                                       "1:", "1,(2)", "4294967296", "1\r\n"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad_sets); i++) {
		g_assert_cmpint(imap_search_new_uid(bad_sets[i], &q), ==, -EINVAL);
		g_assert_null(q);
	}
	g_assert_cmpint(imap_search_new_uid(NULL, &q), ==, -EINVAL);
}

static void test_keyword_must_be_atom(void)
{
	static const char *const bad[] = {
	    "",       "a b",  "a(b", "a)", "{5}",   "a%",          "a*",
	    "a\"b",   "a\\b", "a]",  "\t", "a\x7f", "caf\xc3\xa9", "x\r\nA1 DELETE INBOX",
	    "\\Seen",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		for (int k = IMAP_SEARCH_KEYWORD; k <= IMAP_SEARCH_UNKEYWORD; k++) {
			struct imap_search *q = (struct imap_search *)0x1;
			g_assert_cmpint(
			    imap_search_new_keyword((enum imap_search_key)k, bad[i], &q), ==,
			    -EINVAL);
			g_assert_null(q);
		}
	}
	struct imap_search *q = NULL;
	g_assert_cmpint(imap_search_new_keyword(IMAP_SEARCH_KEYWORD, NULL, &q), ==, -EINVAL);
	/* atom characters that are not specials are fine: '[', '$', '-', '.', digits */
	g_assert_cmpint(imap_search_new_keyword(IMAP_SEARCH_KEYWORD, "a[b$c-d.9", &q), ==, 0);
	check(q, "KEYWORD a[b$c-d.9");
}

static void test_dates(void)
{
	static const struct {
		enum imap_search_key key;
		const char *name;
	} keys[] = {
	    {IMAP_SEARCH_BEFORE, "BEFORE"}, {IMAP_SEARCH_ON, "ON"},
	    {IMAP_SEARCH_SINCE, "SINCE"},   {IMAP_SEARCH_SENTBEFORE, "SENTBEFORE"},
	    {IMAP_SEARCH_SENTON, "SENTON"}, {IMAP_SEARCH_SENTSINCE, "SENTSINCE"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		char *want = g_strdup_printf("%s 1-Jan-2025", keys[i].name);
		check(date(keys[i].key, 2025, 1, 1), want);
		g_free(want);
	}
	/* every month name, one- and two-digit days, four-digit years */
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	for (int m = 1; m <= 12; m++) {
		char *want = g_strdup_printf("SINCE 28-%s-1999", months[m - 1]);
		check(date(IMAP_SEARCH_SINCE, 1999, m, 28), want);
		g_free(want);
	}
	check(date(IMAP_SEARCH_ON, 2024, 2, 29), "ON 29-Feb-2024");
	check(date(IMAP_SEARCH_ON, 9999, 12, 31), "ON 31-Dec-9999");
	check(date(IMAP_SEARCH_ON, 5, 3, 9), "ON 9-Mar-0005");
	static const int bad[][3] = {
	    {2025, 2, 29}, {2025, 2, 30}, {2100, 2, 29}, {2025, 4, 31},
	    {2025, 13, 1}, {2025, 0, 1},  {2025, 1, 0},  {2025, 1, 32},
	    {0, 1, 1},     {10000, 1, 1}, {-1, 1, 1},    {2025, -1, 1},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		struct imap_search *q = (struct imap_search *)0x1;
		g_assert_cmpint(
		    imap_search_new_date(IMAP_SEARCH_SINCE, bad[i][0], bad[i][1], bad[i][2], &q),
		    ==, -EINVAL);
		g_assert_null(q);
	}
	struct imap_search *q = NULL;
	g_assert_cmpint(imap_search_new_date(IMAP_SEARCH_FROM, 2025, 1, 1, &q), ==, -EINVAL);
	g_assert_cmpint(imap_search_new_date(IMAP_SEARCH_LARGER, 2025, 1, 1, &q), ==, -EINVAL);
}

static void test_numbers(void)
{
	struct imap_search *q = NULL;
	g_assert_cmpint(imap_search_new_number(IMAP_SEARCH_LARGER, 1500, &q), ==, 0);
	check(q, "LARGER 1500");
	g_assert_cmpint(imap_search_new_number(IMAP_SEARCH_SMALLER, 0, &q), ==, 0);
	check(q, "SMALLER 0");
	g_assert_cmpint(imap_search_new_number(IMAP_SEARCH_SMALLER, UINT32_MAX, &q), ==, 0);
	check(q, "SMALLER 4294967295");
	/* RFC 3501 numbers are 32-bit */
	g_assert_cmpint(imap_search_new_number(IMAP_SEARCH_LARGER, (uint64_t)UINT32_MAX + 1, &q),
	                ==, -EINVAL);
	g_assert_null(q);
	g_assert_cmpint(imap_search_new_number(IMAP_SEARCH_LARGER, UINT64_MAX, &q), ==, -EINVAL);
	g_assert_cmpint(imap_search_new_number(IMAP_SEARCH_UID, 5, &q), ==, -EINVAL);
	g_assert_cmpint(imap_search_new_number(IMAP_SEARCH_SINCE, 5, &q), ==, -EINVAL);
	g_assert_null(q);
}

static void test_combinators(void)
{
	check(imap_search_not(flag(IMAP_SEARCH_SEEN)), "NOT SEEN");
	check(imap_search_or(str(IMAP_SEARCH_FROM, "alice"), str(IMAP_SEARCH_FROM, "bob")),
	      "OR FROM \"alice\" FROM \"bob\"");
	check(imap_search_and(str(IMAP_SEARCH_FROM, "alice"), flag(IMAP_SEARCH_UNSEEN)),
	      "FROM \"alice\" UNSEEN");
	/* NULL on either side gives the other */
	struct imap_search *s = flag(IMAP_SEARCH_SEEN);
	g_assert_true(imap_search_and(NULL, s) == s);
	g_assert_true(imap_search_and(s, NULL) == s);
	g_assert_null(imap_search_and(NULL, NULL));
	imap_search_free(s);
	imap_search_free(NULL); /* a no-op */

	/* an AND inside NOT or OR needs parentheses, else it would change meaning */
	check(imap_search_not(imap_search_and(str(IMAP_SEARCH_FROM, "a"), flag(IMAP_SEARCH_SEEN))),
	      "NOT (FROM \"a\" SEEN)");
	check(imap_search_or(imap_search_and(flag(IMAP_SEARCH_SEEN), flag(IMAP_SEARCH_FLAGGED)),
	                     flag(IMAP_SEARCH_DRAFT)),
	      "OR (SEEN FLAGGED) DRAFT");
	check(imap_search_or(flag(IMAP_SEARCH_DRAFT),
	                     imap_search_and(flag(IMAP_SEARCH_SEEN), flag(IMAP_SEARCH_FLAGGED))),
	      "OR DRAFT (SEEN FLAGGED)");
	check(imap_search_not(imap_search_or(
	          flag(IMAP_SEARCH_SEEN),
	          imap_search_not(imap_search_and(date(IMAP_SEARCH_SINCE, 2025, 1, 1),
	                                          date(IMAP_SEARCH_BEFORE, 2025, 2, 1))))),
	      "NOT OR SEEN NOT (SINCE 1-Jan-2025 BEFORE 1-Feb-2025)");
	/* an OR or NOT inside an AND needs none (fixed arity) */
	check(imap_search_and(flag(IMAP_SEARCH_SEEN),
	                      imap_search_or(flag(IMAP_SEARCH_DRAFT), flag(IMAP_SEARCH_FLAGGED))),
	      "SEEN OR DRAFT FLAGGED");
	/* AND of ANDs is flattened */
	check(imap_search_and(imap_search_and(flag(IMAP_SEARCH_SEEN), flag(IMAP_SEARCH_DRAFT)),
	                      imap_search_and(flag(IMAP_SEARCH_FLAGGED), flag(IMAP_SEARCH_OLD))),
	      "SEEN DRAFT FLAGGED OLD");
	check(imap_search_not(imap_search_and(
	          imap_search_and(flag(IMAP_SEARCH_SEEN), flag(IMAP_SEARCH_DRAFT)),
	          imap_search_and(flag(IMAP_SEARCH_FLAGGED), flag(IMAP_SEARCH_OLD)))),
	      "NOT (SEEN DRAFT FLAGGED OLD)");
	/* every value kind in one query */
	struct imap_search *h = NULL, *k = NULL, *n = NULL, *u = NULL;
	g_assert_cmpint(imap_search_new_header("X-A", "b c", &h), ==, 0);
	g_assert_cmpint(imap_search_new_keyword(IMAP_SEARCH_KEYWORD, "$Work", &k), ==, 0);
	g_assert_cmpint(imap_search_new_number(IMAP_SEARCH_LARGER, 10240, &n), ==, 0);
	g_assert_cmpint(imap_search_new_uid("3:9", &u), ==, 0);
	struct imap_search *all = imap_search_and(h, k);
	all = imap_search_and(all, n);
	all = imap_search_and(all, u);
	all = imap_search_and(all, date(IMAP_SEARCH_SENTON, 2024, 12, 24));
	all = imap_search_and(all,
	                      imap_search_or(str(IMAP_SEARCH_TO, "x"), str(IMAP_SEARCH_CC, "y")));
	check(all, "HEADER \"X-A\" \"b c\" KEYWORD $Work LARGER 10240 UID 3:9 SENTON 24-Dec-2024 "
	           "OR TO \"x\" CC \"y\"");
}

static void test_non_ascii_literals(void)
{
	int err;
	guint nchunks;
	struct imap_search *q = str(IMAP_SEARCH_SUBJECT, KOREAN);
	g_assert_true(imap_search_needs_utf8(q));
	/* LITERAL+: one chunk, {n+} */
	char *w = wire_of(q, IMAP_LITERAL_PLUS, &err, &nchunks);
	g_assert_cmpint(err, ==, 0);
	g_assert_cmpstr(w, ==, "SUBJECT {6+}\r\n" KOREAN);
	g_assert_cmpuint(nchunks, ==, 1);
	g_free(w);
	/* LITERAL- allows {n+} for small literals */
	w = wire_of(q, IMAP_LITERAL_MINUS, &err, &nchunks);
	g_assert_cmpstr(w, ==, "SUBJECT {6+}\r\n" KOREAN);
	g_assert_cmpuint(nchunks, ==, 1);
	g_free(w);
	/* neither: a synchronising literal, its bytes in a chunk of their own (sent after "+") */
	w = wire_of(q, IMAP_LITERAL_SYNC, &err, &nchunks);
	g_assert_cmpint(err, ==, 0);
	g_assert_cmpstr(w, ==, "SUBJECT {6}\r\n|" KOREAN);
	g_assert_cmpuint(nchunks, ==, 2);
	g_free(w);
	/* describe shows it inline, with no raw line break (it is for log lines) */
	char *d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, "SUBJECT {6+}  " KOREAN);
	g_assert_null(strpbrk(d, "\r\n"));
	g_free(d);

	/* several literals, nested in OR and NOT: each is its own chunk without LITERAL+ */
	struct imap_search *h = NULL;
	g_assert_cmpint(imap_search_new_header("X-\xc3\xa9", "caf\xc3\xa9", &h), ==, 0);
	struct imap_search *o =
	    imap_search_or(q, imap_search_not(imap_search_and(h, flag(IMAP_SEARCH_SEEN))));
	g_assert_true(imap_search_needs_utf8(o));
	w = wire_of(o, IMAP_LITERAL_SYNC, &err, &nchunks);
	g_assert_cmpstr(w, ==,
	                "OR SUBJECT {6}\r\n|" KOREAN " NOT (HEADER {4}\r\n|X-\xc3\xa9 {5}\r\n|"
	                "caf\xc3\xa9 SEEN)");
	g_assert_cmpuint(nchunks, ==, 4);
	g_free(w);
	w = wire_of(o, IMAP_LITERAL_PLUS, &err, &nchunks);
	g_assert_cmpstr(w, ==,
	                "OR SUBJECT {6+}\r\n" KOREAN " NOT (HEADER {4+}\r\nX-\xc3\xa9 {5+}\r\n"
	                "caf\xc3\xa9 SEEN)");
	g_assert_cmpuint(nchunks, ==, 1);
	g_free(w);
	imap_search_free(o);

	/* a non-ASCII header value alone (the field name ASCII) needs CHARSET UTF-8 too */
	g_assert_cmpint(imap_search_new_header("Subject", KOREAN, &h), ==, 0);
	g_assert_true(imap_search_needs_utf8(h));
	imap_search_free(h);
	g_assert_cmpint(imap_search_new_header("X-\xc3\xa9", "x", &h), ==, 0);
	g_assert_true(imap_search_needs_utf8(h));
	imap_search_free(h);

	/* ASCII only: no CHARSET needed, no literal */
	q = imap_search_and(str(IMAP_SEARCH_BODY, "plain"), flag(IMAP_SEARCH_SEEN));
	g_assert_false(imap_search_needs_utf8(q));
	g_assert_false(imap_search_uses_gmail(q));
	imap_search_free(q);
	/* X-GM-RAW deep inside is found */
	q = imap_search_not(
	    imap_search_or(flag(IMAP_SEARCH_SEEN), str(IMAP_SEARCH_X_GM_RAW, "has:attachment")));
	g_assert_true(imap_search_uses_gmail(q));
	imap_search_free(q);
}

static void test_crlf_refused(void)
{
	static const char *const bad[] = {
	    "a\rb", "a\nb", "\r\n A1 DELETE INBOX", "x\r\nA1 LOGOUT", "\n", "caf\xc3\xa9\n",
	    "\xff", "\xc3", "a\xed\xa0\x80", /* invalid UTF-8 cannot be sent as CHARSET UTF-8 */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		struct imap_search *q = (struct imap_search *)0x1;
		g_assert_cmpint(imap_search_new_string(IMAP_SEARCH_SUBJECT, bad[i], &q), ==,
		                -EINVAL);
		g_assert_null(q);
		g_assert_cmpint(imap_search_new_string(IMAP_SEARCH_X_GM_RAW, bad[i], &q), ==,
		                -EINVAL);
		g_assert_cmpint(imap_search_new_header("Subject", bad[i], &q), ==, -EINVAL);
		g_assert_null(q);
		g_assert_cmpint(imap_search_new_header(bad[i], "x", &q), ==, -EINVAL);
		g_assert_null(q);
	}
}

/* w must be exactly `prefix "..."` where the quoted string is one RFC 3501 quoted string
 * (only \" and \\ escapes, no other quote or backslash) whose content is value: nothing of the
 * value escaped into the command. */
static void assert_one_quoted(const char *w, const char *prefix, const char *value)
{
	size_t pl = strlen(prefix);
	g_assert_true(strncmp(w, prefix, pl) == 0);
	const char *p = w + pl;
	g_assert_cmpint(*p, ==, '"');
	GString *got = g_string_new(NULL);
	for (p++; *p != '"'; p++) {
		g_assert_cmpint(*p, !=, '\0');
		g_assert_cmpint(*p, !=, '\r');
		g_assert_cmpint(*p, !=, '\n');
		if (*p == '\\') {
			p++;
			g_assert_true(*p == '"' || *p == '\\');
		}
		g_string_append_c(got, *p);
	}
	g_assert_cmpstr(p + 1, ==, ""); /* the closing quote ends the command text */
	g_assert_cmpstr(got->str, ==, value);
	g_string_free(got, TRUE);
}

static void test_hostile_values(void)
{
	static const struct {
		const char *value;
		const char *want; /* the exact wire form */
	} cases[] = {
	    {"\"", "SUBJECT \"\\\"\""},
	    {"\\", "SUBJECT \"\\\\\""},
	    {"{5}", "SUBJECT \"{5}\""},
	    {"{5+}", "SUBJECT \"{5+}\""},
	    {"x) LOGOUT", "SUBJECT \"x) LOGOUT\""},
	    {"(", "SUBJECT \"(\""},
	    {"*", "SUBJECT \"*\""},
	    {"%", "SUBJECT \"%\""},
	    {"]", "SUBJECT \"]\""},
	    {"x\" ) UID STORE 1:* +FLAGS (\\Deleted) (\"",
	     "SUBJECT \"x\\\" ) UID STORE 1:* +FLAGS (\\\\Deleted) (\\\"\""},
	    {"\\\" A1 DELETE INBOX", "SUBJECT \"\\\\\\\" A1 DELETE INBOX\""},
	    {"a\"b\\c {5} ) * % ] (", "SUBJECT \"a\\\"b\\\\c {5} ) * % ] (\""},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		for (int mode = IMAP_LITERAL_SYNC; mode <= IMAP_LITERAL_MINUS; mode++) {
			int err;
			guint nchunks;
			struct imap_search *q = str(IMAP_SEARCH_SUBJECT, cases[i].value);
			char *w = wire_of(q, (enum imap_literal_mode)mode, &err, &nchunks);
			g_assert_cmpint(err, ==, 0);
			g_assert_cmpstr(w, ==, cases[i].want);
			g_assert_cmpuint(nchunks, ==, 1);
			assert_one_quoted(w, "SUBJECT ", cases[i].value);
			g_free(w);
			imap_search_free(q);
		}
		/* the same value as both strings of HEADER, and inside NOT (...) */
		struct imap_search *h = NULL;
		g_assert_cmpint(imap_search_new_header(cases[i].value, cases[i].value, &h), ==, 0);
		char *d = imap_search_describe(h);
		const char *quoted = cases[i].want + strlen("SUBJECT ");
		char *want = g_strdup_printf("HEADER %s %s", quoted, quoted);
		g_assert_cmpstr(d, ==, want);
		g_free(want);
		g_free(d);
		struct imap_search *n =
		    imap_search_not(imap_search_and(h, str(IMAP_SEARCH_FROM, cases[i].value)));
		d = imap_search_describe(n);
		want = g_strdup_printf("NOT (HEADER %s %s FROM %s)", quoted, quoted, quoted);
		g_assert_cmpstr(d, ==, want);
		g_free(want);
		g_free(d);
		imap_search_free(n);
	}
	/* the parse -> serialise path keeps hostile values in one string as well */
	struct imap_search *q = NULL;
	char *why = NULL;
	g_assert_cmpint(imap_search_parse("SUBJECT \"a\\\"b\\\\c {5} ) * % ] (\"", &q, &why), ==,
	                0);
	g_assert_null(why);
	char *d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, "SUBJECT \"a\\\"b\\\\c {5} ) * % ] (\"");
	assert_one_quoted(d, "SUBJECT ", "a\"b\\c {5} ) * % ] (");
	g_free(d);
	imap_search_free(q);
	/* a value that is an atom in the expression but holds specials is still quoted */
	g_assert_cmpint(imap_search_parse("BODY a*b%c]d\\e", &q, &why), ==, 0);
	d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, "BODY \"a*b%c]d\\\\e\"");
	g_free(d);
	imap_search_free(q);
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* expr parses, describes as want, and want parses back to itself. */
static void parses_to(const char *expr, const char *want)
{
	struct imap_search *q = NULL, *q2 = NULL;
	char *why = NULL;
	if (imap_search_parse(expr, &q, &why) != 0)
		g_error("\"%s\" did not parse: %s", expr, why);
	g_assert_null(why);
	char *d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, want);
	g_assert_cmpint(imap_search_parse(d, &q2, &why), ==, 0);
	char *d2 = imap_search_describe(q2);
	g_assert_cmpstr(d2, ==, want);
	g_free(d2);
	g_free(d);
	imap_search_free(q2);
	imap_search_free(q);
}

static void test_parse(void)
{
	parses_to("OR FROM alice FROM bob", "OR FROM \"alice\" FROM \"bob\"");
	parses_to("NOT SEEN", "NOT SEEN");
	parses_to("FROM alice NOT SEEN", "FROM \"alice\" NOT SEEN");
	parses_to("(FROM alice SEEN)", "FROM \"alice\" SEEN");
	parses_to("NOT (FROM alice SEEN)", "NOT (FROM \"alice\" SEEN)");
	parses_to("OR (FROM alice SEEN) (TO bob)", "OR (FROM \"alice\" SEEN) TO \"bob\"");
	parses_to("OR (SUBJECT x) (OR SEEN DRAFT)", "OR SUBJECT \"x\" OR SEEN DRAFT");
	parses_to("((SEEN) (DRAFT))", "SEEN DRAFT");
	parses_to("  SEEN   UNSEEN  ", "SEEN UNSEEN");
	parses_to("(SEEN)FLAGGED", "SEEN FLAGGED");
	parses_to("NOT(SEEN)", "NOT SEEN");
	/* case-insensitive keys and month names */
	parses_to("or from Alice not seen", "OR FROM \"Alice\" NOT SEEN");
	parses_to("Since 1-jan-2025 BeFoRe 01-FEB-2025", "SINCE 1-Jan-2025 BEFORE 1-Feb-2025");
	parses_to("x-gm-raw \"has:attachment in:inbox\"", "X-GM-RAW \"has:attachment in:inbox\"");
	/* quoted strings with \" and \\ escapes; spaces and parentheses inside are text */
	parses_to("SUBJECT \"say \\\"hi\\\" \\\\o/\"", "SUBJECT \"say \\\"hi\\\" \\\\o/\"");
	parses_to("SUBJECT \"(a b) NOT c\"", "SUBJECT \"(a b) NOT c\"");
	parses_to("SUBJECT \"\"", "SUBJECT \"\"");
	/* every kind of key */
	parses_to("ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED "
	          "UNDRAFT UNFLAGGED UNSEEN",
	          "ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED "
	          "UNDRAFT UNFLAGGED UNSEEN");
	parses_to("BCC a BODY b CC c FROM d SUBJECT e TEXT f TO g",
	          "BCC \"a\" BODY \"b\" CC \"c\" FROM \"d\" SUBJECT \"e\" TEXT \"f\" TO \"g\"");
	parses_to("HEADER X-Spam yes HEADER \"List-Id\" \"\"",
	          "HEADER \"X-Spam\" \"yes\" HEADER \"List-Id\" \"\"");
	parses_to("KEYWORD $Label1 UNKEYWORD Junk", "KEYWORD $Label1 UNKEYWORD Junk");
	parses_to("BEFORE 1-Jan-2025 ON 29-Feb-2024 SINCE \"31-Dec-1999\" SENTBEFORE 2-Mar-2020 "
	          "SENTON 3-Apr-2021 SENTSINCE 4-May-2022",
	          "BEFORE 1-Jan-2025 ON 29-Feb-2024 SINCE 31-Dec-1999 SENTBEFORE 2-Mar-2020 "
	          "SENTON 3-Apr-2021 SENTSINCE 4-May-2022");
	parses_to("LARGER 1000 SMALLER 4294967295", "LARGER 1000 SMALLER 4294967295");
	parses_to("UID 1:5,9 UID *", "UID 1:5,9 UID *");
	/* non-ASCII values: literals when serialised, parsed back from a quoted form */
	struct imap_search *q = NULL;
	char *why = NULL;
	g_assert_cmpint(imap_search_parse("SUBJECT " KOREAN, &q, &why), ==, 0);
	g_assert_true(imap_search_needs_utf8(q));
	char *d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, "SUBJECT {6+}  " KOREAN);
	g_free(d);
	imap_search_free(q);
	g_assert_cmpint(imap_search_parse("FROM \"" KOREAN " x\"", &q, &why), ==, 0);
	d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, "FROM {8+}  " KOREAN " x");
	g_free(d);
	imap_search_free(q);
	/* err_r may be NULL */
	g_assert_cmpint(imap_search_parse("SEEN", &q, NULL), ==, 0);
	imap_search_free(q);
	g_assert_cmpint(imap_search_parse("NOPE", &q, NULL), ==, -EINVAL);
	g_assert_null(q);
}

/* expr is refused, and the reason contains reason. */
static void refused(const char *expr, const char *reason)
{
	struct imap_search *q = (struct imap_search *)0x1;
	char *why = NULL;
	int err = imap_search_parse(expr, &q, &why);
	if (err != -EINVAL)
		g_error("\"%s\" should have been refused (%d)", expr, err);
	g_assert_null(q);
	g_assert_nonnull(why);
	if (strstr(why, reason) == NULL)
		g_error("\"%s\": reason \"%s\" does not say \"%s\"", expr, why, reason);
	g_assert_null(strpbrk(why, "\r\n")); /* one line */
	g_free(why);
}

static void test_parse_errors(void)
{
	refused("FOO", "unknown search key \"FOO\"");
	refused("SEEN BOGUS", "unknown search key \"BOGUS\"");
	refused("OR SEEN BOGUS", "unknown search key \"BOGUS\"");
	refused("1:5", "message sequence numbers are not supported");
	refused("SEEN 42", "message sequence numbers are not supported (use UID 42)");
	refused("*", "message sequence numbers are not supported");
	refused("$", "message sequence numbers are not supported");
	refused("(SEEN", "missing ')'");
	refused("((SEEN)", "missing ')'");
	refused("SEEN)", "unbalanced ')'");
	refused(")", "unbalanced ')'");
	refused("()", "empty parentheses");
	refused("", "empty search");
	refused("   ", "empty search");
	refused("NOT", "search key expected");
	refused("OR SEEN", "search key expected");
	refused("SUBJECT", "SUBJECT expected");
	refused("HEADER X-Spam", "HEADER value expected");
	refused("\"SEEN\"", "a search key expected, not a string");
	refused("SUBJECT \"abc", "unterminated quoted string");
	refused("SUBJECT \"abc\\\"", "unterminated quoted string");
	refused("SUBJECT {5}", "unexpected character '{'");
	refused("SUBJECT {5+}", "unexpected character '{'");
	refused("SUBJECT a{5}", "unexpected character '{'");
	refused("SUBJECT a\"b\"", "unexpected character '\"'");
	refused("SUBJECT a\tb", "unexpected character");
	refused("SINCE 30-Feb-2025", "invalid date \"30-Feb-2025\"");
	refused("SINCE 2025-01-01", "invalid date");
	refused("SINCE 1-Foo-2025", "invalid date");
	refused("SINCE 1-Jan-25", "invalid date");
	refused("SINCE 1-January-2025", "invalid date");
	refused("ON 0-Jan-2025", "invalid date");
	refused("BEFORE \"1-Jan-2025 \"", "invalid date");
	refused("LARGER x", "invalid number \"x\"");
	refused("LARGER -1", "invalid number");
	refused("LARGER 4294967296", "invalid number");
	refused("SMALLER 1K", "invalid number");
	refused("KEYWORD \"a b\"", "invalid keyword");
	refused("KEYWORD a%b", "invalid keyword");
	refused("UNKEYWORD \"\\\\Seen\"", "invalid keyword");
	refused("UID 0", "invalid UID set");
	refused("UID 1:x", "invalid UID set");
	refused("SEEN\r\nA1 DELETE INBOX", "line break");
	refused("SUBJECT \"x\nA1 DELETE INBOX\"", "line break");
	refused("SUBJECT \xff", "not valid UTF-8");
	/* nesting: at most 32 levels of NOT, OR and parentheses, together */
	GString *s = g_string_new(NULL);
	for (int i = 0; i < 32; i++)
		g_string_append(s, "NOT ");
	g_string_append(s, "SEEN");
	struct imap_search *q = NULL;
	g_assert_cmpint(imap_search_parse(s->str, &q, NULL), ==, 0);
	imap_search_free(q);
	g_string_prepend(s, "NOT ");
	refused(s->str, "nested too deeply (at most 32)");
	g_string_truncate(s, 0);
	for (int i = 0; i < 32; i++)
		g_string_append_c(s, '(');
	g_string_append(s, "SEEN");
	for (int i = 0; i < 32; i++)
		g_string_append_c(s, ')');
	g_assert_cmpint(imap_search_parse(s->str, &q, NULL), ==, 0);
	char *d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, "SEEN");
	g_free(d);
	imap_search_free(q);
	g_string_prepend_c(s, '(');
	g_string_append_c(s, ')');
	refused(s->str, "nested too deeply (at most 32)");
	g_string_truncate(s, 0);
	for (int i = 0; i < 16; i++)
		g_string_append(s, "OR SEEN (");
	g_string_append(s, "NOT SEEN");
	for (int i = 0; i < 16; i++)
		g_string_append_c(s, ')');
	refused(s->str, "nested too deeply");
	/* a very deep expression is refused, not a stack overflow */
	g_string_truncate(s, 0);
	for (int i = 0; i < 100000; i++)
		g_string_append_c(s, '(');
	refused(s->str, "nested too deeply");
	g_string_truncate(s, 0);
	for (int i = 0; i < 100000; i++)
		g_string_append(s, "NOT ");
	refused(s->str, "nested too deeply");
	/* at most 256 keys */
	g_string_truncate(s, 0);
	for (int i = 0; i < 256; i++)
		g_string_append(s, i ? " SEEN" : "SEEN");
	g_assert_cmpint(imap_search_parse(s->str, &q, NULL), ==, 0);
	imap_search_free(q);
	g_string_append(s, " SEEN");
	refused(s->str, "too many search keys (at most 256)");
	g_string_free(s, TRUE);
}

static void test_parse_date(void)
{
	static const struct {
		const char *s;
		int y, m, d;
	} good[] = {
	    {"1-Jan-2025", 2025, 1, 1},    {"01-Jan-2025", 2025, 1, 1},
	    {"31-dec-1999", 1999, 12, 31}, {"29-FEB-2024", 2024, 2, 29},
	    {"9-Sep-0009", 9, 9, 9},       {"15-Jun-2030", 2030, 6, 15},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		int y = 0, m = 0, d = 0;
		g_assert_true(imap_search_parse_date(good[i].s, &y, &m, &d));
		g_assert_cmpint(y, ==, good[i].y);
		g_assert_cmpint(m, ==, good[i].m);
		g_assert_cmpint(d, ==, good[i].d);
	}
	static const char *const bad[] = {
	    "",
	    "1-Jan-25",
	    "1-Jan-202",
	    "1-January-2025",
	    "1-Jan-2025x",
	    " 1-Jan-2025",
	    "1-Jan-2025 ",
	    "29-Feb-2023",
	    "0-Jan-2025",
	    "32-Jan-2025",
	    "1-Foo-2025",
	    "1-Jan-0000",
	    "1/Jan/2025",
	    "2025-01-01",
	    "1-Jan- 202",
	    "1-Jan-+202",
	    "1-Jan--202",
	    "+1-Jan-2025",
	    "1 -Jan-2025",
	    "001-Jan-2025",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		int y = 0, m = 0, d = 0;
		if (imap_search_parse_date(bad[i], &y, &m, &d))
			g_error("\"%s\" was taken as %d-%d-%d", bad[i], y, m, d);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/search/flag-keys", test_flag_keys);
	g_test_add_func("/search/string-keys", test_string_keys);
	g_test_add_func("/search/header-keyword-uid", test_header_keyword_uid);
	g_test_add_func("/search/keyword-must-be-atom", test_keyword_must_be_atom);
	g_test_add_func("/search/dates", test_dates);
	g_test_add_func("/search/numbers", test_numbers);
	g_test_add_func("/search/combinators", test_combinators);
	g_test_add_func("/search/non-ascii-literals", test_non_ascii_literals);
	g_test_add_func("/search/crlf-refused", test_crlf_refused);
	g_test_add_func("/search/hostile-values", test_hostile_values);
	g_test_add_func("/search/parse", test_parse);
	g_test_add_func("/search/parse-errors", test_parse_errors);
	g_test_add_func("/search/parse-date", test_parse_date);
	return g_test_run();
}
