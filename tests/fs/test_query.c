/* test_query.c — unit test of fs/query.c: one `.search` path component turned into a search
 * query (every key, case-insensitive keys, the three date forms counted from a fixed day, size
 * suffixes and the 32-bit limit, every refusal with the reason the log line shows) and the rule
 * that tells a criterion from a folder name (ifs_query_is_criterion), and which other names are
 * near misses worth a hint in the log (ifs_query_near_miss). */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "query.h"

#define KOREAN "\xed\x9a\x8c\xec\x9d\x98" /* 회의 */

/* A fixed "today" for relative dates: 15 March 2025 unless a test says otherwise. */
static GDate *day(int y, int m, int d)
{
	return g_date_new_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y);
}

/* component -> describe() of its query must be want. */
static void gives_on(const GDate *today, const char *component, const char *want)
{
	struct imap_search *q = NULL;
	char *why = NULL;
	if (ifs_query_from_component(component, today, &q, &why) != 0)
		g_error("\"%s\" refused: %s", component, why);
	g_assert_null(why);
	g_assert_nonnull(q);
	char *d = imap_search_describe(q);
	if (strcmp(d, want) != 0)
		g_error("\"%s\" gave \"%s\", want \"%s\"", component, d, want);
	g_free(d);
	imap_search_free(q);
}

static void gives(const char *component, const char *want)
{
	GDate *today = day(2025, 3, 15);
	gives_on(today, component, want);
	g_date_free(today);
}

/* component is refused with -EINVAL and a one-line reason equal to want_why. */
static void refused_on(const GDate *today, const char *component, const char *want_why)
{
	struct imap_search *q = (struct imap_search *)0x1;
	char *why = NULL;
	int err = ifs_query_from_component(component, today, &q, &why);
	if (err != -EINVAL)
		g_error("\"%s\" should be refused, got %d", component, err);
	g_assert_null(q);
	g_assert_nonnull(why);
	if (strcmp(why, want_why) != 0)
		g_error("\"%s\": reason \"%s\", want \"%s\"", component, why, want_why);
	g_assert_null(strpbrk(why, "\r\n"));
	g_free(why);
}

static void refused(const char *component, const char *want_why)
{
	GDate *today = day(2025, 3, 15);
	refused_on(today, component, want_why);
	g_date_free(today);
}

static void test_string_keys(void)
{
	gives("from=alice", "FROM \"alice\"");
	gives("to=bob@example.org", "TO \"bob@example.org\"");
	gives("cc=carol", "CC \"carol\"");
	gives("bcc=dave", "BCC \"dave\"");
	gives("subject=budget", "SUBJECT \"budget\"");
	gives("body=quarterly report", "BODY \"quarterly report\"");
	gives("text=word", "TEXT \"word\"");
	/* keys case-insensitive, values as typed */
	gives("FROM=Alice", "FROM \"Alice\"");
	gives("Subject=MiXeD", "SUBJECT \"MiXeD\"");
	gives("bOdY=x", "BODY \"x\"");
	/* everything after the first '=' is the value */
	gives("subject=a=b", "SUBJECT \"a=b\"");
	gives("subject==", "SUBJECT \"=\"");
	/* hostile characters stay inside the quoted string */
	gives("subject=x\" ) UID 1:* (\\", "SUBJECT \"x\\\" ) UID 1:* (\\\\\"");
	gives("subject={5}", "SUBJECT \"{5}\"");
	/* non-ASCII: a literal (CHARSET UTF-8 is the command's business) */
	struct imap_search *q = NULL;
	char *why = NULL;
	g_assert_cmpint(ifs_query_from_component("subject=" KOREAN, NULL, &q, &why), ==, 0);
	g_assert_true(imap_search_needs_utf8(q));
	char *d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, "SUBJECT {6+}  " KOREAN);
	g_free(d);
	imap_search_free(q);
}

static void test_header(void)
{
	gives("header=X-Spam-Flag:YES", "HEADER \"X-Spam-Flag\" \"YES\"");
	gives("HEADER=List-Id:", "HEADER \"List-Id\" \"\"");
	gives("header=X-A:b:c", "HEADER \"X-A\" \"b:c\"");
	gives("header=Subject: hi", "HEADER \"Subject\" \" hi\"");
	refused("header=X-Spam", "header= needs Name:value");
	refused("header=:YES", "header= needs Name:value");
	refused("header=", "header= needs a value");
}

static void test_flags(void)
{
	static const struct {
		const char *component;
		const char *want;
	} flags[] = {
	    {"seen", "SEEN"},           {"unseen", "UNSEEN"},     {"flagged", "FLAGGED"},
	    {"unflagged", "UNFLAGGED"}, {"answered", "ANSWERED"}, {"unanswered", "UNANSWERED"},
	    {"draft", "DRAFT"},         {"undraft", "UNDRAFT"},   {"SEEN", "SEEN"},
	    {"UnSeen", "UNSEEN"},       {"Flagged", "FLAGGED"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(flags); i++) {
		gives(flags[i].component, flags[i].want);
		g_assert_true(ifs_query_is_criterion(flags[i].component));
	}
	gives("keyword=$Label1", "KEYWORD $Label1");
	gives("Keyword=Work", "KEYWORD Work");
	refused("keyword=a b", "bad keyword \"a b\" (an IMAP atom: no spaces, quotes, parentheses, "
	                       "braces, %, * or ])");
	refused("keyword={5}", "bad keyword \"{5}\" (an IMAP atom: no spaces, quotes, parentheses, "
	                       "braces, %, * or ])");
	refused("keyword=\\Seen", "bad keyword \"\\Seen\" (an IMAP atom: no spaces, quotes, "
	                          "parentheses, braces, %, * or ])");
	refused("keyword=", "keyword= needs a value");
	/* a flag word with '=' is a key=value component of an unknown key */
	refused("seen=yes", "unknown search key \"seen\"");
	refused("seen=", "seen= needs a value");
}

static void test_imap_and_gmail(void)
{
	gives("imap=OR FROM alice FROM bob", "OR FROM \"alice\" FROM \"bob\"");
	gives("IMAP=not seen", "NOT SEEN");
	gives("imap=(FROM a SEEN) OR TO b CC c", "FROM \"a\" SEEN OR TO \"b\" CC \"c\"");
	gives("imap=NOT (SINCE 1-Jan-2025 LARGER 5)", "NOT (SINCE 1-Jan-2025 LARGER 5)");
	gives("imap=SUBJECT \"a \\\"b\\\"\"", "SUBJECT \"a \\\"b\\\"\"");
	refused("imap=OR SEEN", "bad IMAP search expression: search key expected");
	refused("imap=FOO", "bad IMAP search expression: unknown search key \"FOO\"");
	refused("imap=1:5", "bad IMAP search expression: message sequence numbers are not "
	                    "supported (use UID 1:5)");
	refused("imap=SUBJECT {5}", "bad IMAP search expression: unexpected character '{' in "
	                            "SUBJECT");
	refused("imap=(SEEN", "bad IMAP search expression: missing ')'");
	/* Gmail's syntax only through gmail=, where the server's support is checked */
	refused("imap=X-GM-RAW \"has:attachment\"", "X-GM-RAW is written gmail=QUERY");
	refused("imap=SEEN NOT OR DRAFT x-gm-raw foo", "X-GM-RAW is written gmail=QUERY");
	refused("imap=", "imap= needs a value");

	struct imap_search *q = NULL;
	char *why = NULL;
	g_assert_cmpint(ifs_query_from_component("gmail=has:attachment in:inbox", NULL, &q, &why),
	                ==, 0);
	g_assert_true(imap_search_uses_gmail(q));
	char *d = imap_search_describe(q);
	g_assert_cmpstr(d, ==, "X-GM-RAW \"has:attachment in:inbox\"");
	g_free(d);
	imap_search_free(q);
	gives("GMAIL=\"quoted\" (x)", "X-GM-RAW \"\\\"quoted\\\" (x)\"");
	refused("gmail=", "gmail= needs a value");
}

static void test_unknown_and_empty(void)
{
	refused("foo=bar", "unknown search key \"foo\"");
	refused("Foo=bar", "unknown search key \"foo\"");
	refused("=bar", "unknown search key \"\"");
	refused("deleted=1", "unknown search key \"deleted\"");
	refused("foo", "not a search criterion (key=value, or a flag such as unseen)");
	refused("deleted", "not a search criterion (key=value, or a flag such as unseen)");
	refused("", "not a search criterion (key=value, or a flag such as unseen)");
	refused("from=", "from= needs a value");
	refused("SUBJECT=", "subject= needs a value");
	refused("since=", "since= needs a value");
	refused("larger=", "larger= needs a value");
	refused("subject=\xff\xfe", "the value cannot be searched for (not UTF-8)");
	refused("gmail=\xc3", "the value cannot be searched for (not UTF-8)");
}

/* ---- dates -------------------------------------------------------------------------------- */

static void date_is(const GDate *today, const char *value, int y, int m, int d)
{
	int gy = 0, gm = 0, gd = 0;
	if (!ifs_query_parse_date(value, today, &gy, &gm, &gd))
		g_error("date \"%s\" refused", value);
	if (gy != y || gm != m || gd != d)
		g_error("date \"%s\" gave %04d-%02d-%02d, want %04d-%02d-%02d", value, gy, gm, gd,
		        y, m, d);
}

static void date_bad(const GDate *today, const char *value)
{
	int y = 0, m = 0, d = 0;
	if (ifs_query_parse_date(value, today, &y, &m, &d))
		g_error("date \"%s\" taken as %04d-%02d-%02d", value, y, m, d);
}

static void test_date_forms(void)
{
	GDate *t = day(2025, 3, 15);
	date_is(t, "2025-01-01", 2025, 1, 1);
	date_is(t, "1999-12-31", 1999, 12, 31);
	date_is(t, "2024-02-29", 2024, 2, 29);
	date_is(t, "0001-01-01", 1, 1, 1);
	date_is(t, "1-Jan-2025", 2025, 1, 1);
	date_is(t, "01-jan-2025", 2025, 1, 1);
	date_is(t, "31-DEC-1999", 1999, 12, 31);
	/* absolute forms need no today */
	date_is(NULL, "2025-06-30", 2025, 6, 30);
	date_is(NULL, "30-Jun-2025", 2025, 6, 30);
	static const char *const bad[] = {
	    "2025-02-30",
	    "2025-02-29",
	    "2100-02-29",
	    "2025-04-31",
	    "2025-13-01",
	    "2025-00-10",
	    "2025-01-00",
	    "0000-01-01",
	    "2025-1-01",
	    "2025-01-1",
	    "25-01-01",
	    "2025/01/01",
	    "2025-01-01x",
	    " 2025-01-01",
	    "2025-01-01 ",
	    "20250101",
	    "2025-+1-01",
	    "+202-01-01",
	    "2025- 1-01",
	    "2025-01- 1",
	    "2025--1-01",
	    "30-Feb-2025",
	    "1-Jan-25",
	    "1-Jan- 202",
	    "1-Jan-+202",
	    "yesterday",
	    "",
	    "today",
	    "d",
	    "-7d",
	    "7",
	    "7x",
	    "7dd",
	    "7 d",
	    "+7d",
	    " 7d",
	    "100001d",
	    "99999999999999999999d",
	    "0x7d",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		date_bad(t, bad[i]);
	g_date_free(t);
}

static void test_relative_dates(void)
{
	GDate *t = day(2025, 3, 15);
	date_is(t, "0d", 2025, 3, 15);
	date_is(t, "1d", 2025, 3, 14);
	date_is(t, "7d", 2025, 3, 8);
	date_is(t, "7D", 2025, 3, 8);
	date_is(t, "15d", 2025, 2, 28); /* across the end of a short February */
	date_is(t, "2w", 2025, 3, 1);
	date_is(t, "3W", 2025, 2, 22);
	date_is(t, "3m", 2024, 12, 15); /* into the previous year */
	date_is(t, "12m", 2024, 3, 15);
	date_is(t, "1y", 2024, 3, 15);
	date_is(t, "10Y", 2015, 3, 15);
	date_is(t, "365d", 2024, 3, 15); /* 2024 is a leap year: 366 days back would be the 14th */
	date_is(t, "100000d", 1751, 5, 31);
	/* relative dates need today */
	date_bad(NULL, "7d");
	GDate invalid;
	g_date_clear(&invalid, 1);
	date_bad(&invalid, "7d");
	g_date_free(t);

	/* month ends: a month back from the 31st is the last day of the shorter month */
	t = day(2025, 3, 31);
	date_is(t, "1m", 2025, 2, 28);
	date_is(t, "13m", 2024, 2, 29);
	date_is(t, "1d", 2025, 3, 30);
	date_is(t, "31d", 2025, 2, 28);
	g_date_free(t);
	t = day(2024, 3, 31);
	date_is(t, "1m", 2024, 2, 29);
	g_date_free(t);
	t = day(2025, 5, 31);
	date_is(t, "1m", 2025, 4, 30);
	g_date_free(t);
	t = day(2025, 1, 31);
	date_is(t, "2m", 2024, 11, 30);
	g_date_free(t);
	/* leap days */
	t = day(2024, 2, 29);
	date_is(t, "1y", 2023, 2, 28);
	date_is(t, "4y", 2020, 2, 29);
	date_is(t, "12m", 2023, 2, 28);
	date_is(t, "1d", 2024, 2, 28);
	date_is(t, "1w", 2024, 2, 22);
	g_date_free(t);
	t = day(2024, 3, 1);
	date_is(t, "1d", 2024, 2, 29);
	date_is(t, "1y", 2023, 3, 1);
	g_date_free(t);
	t = day(2025, 3, 1);
	date_is(t, "1d", 2025, 2, 28);
	g_date_free(t);
	/* year boundary */
	t = day(2025, 1, 1);
	date_is(t, "1d", 2024, 12, 31);
	date_is(t, "1w", 2024, 12, 25);
	date_is(t, "1m", 2024, 12, 1);
	g_date_free(t);
	/* back before year 1: refused, not clamped to today (nor a GLib critical) */
	t = day(2025, 3, 15);
	date_is(t, "2024y", 1, 3, 15);
	date_bad(t, "2025y");
	date_bad(t, "3000y");
	date_bad(t, "99999y");
	date_is(t, "24290m", 1, 1, 15);
	date_bad(t, "24291m");
	date_bad(t, "30000m");
	date_bad(t, "100000m");
	g_date_free(t);
	t = day(5, 1, 1);
	date_bad(t, "100000w");
	date_bad(t, "5000d");
	g_date_free(t);
}

static void test_date_keys(void)
{
	gives("since=2025-01-01", "SINCE 1-Jan-2025");
	gives("before=1-Feb-2025", "BEFORE 1-Feb-2025");
	gives("on=2024-02-29", "ON 29-Feb-2024");
	gives("Since=7d", "SINCE 8-Mar-2025");
	gives("BEFORE=2w", "BEFORE 1-Mar-2025");
	gives("on=3m", "ON 15-Dec-2024");
	gives("since=1y", "SINCE 15-Mar-2024");
	GDate *t = day(2024, 2, 29);
	gives_on(t, "since=1y", "SINCE 28-Feb-2023");
	g_date_free(t);
	static const char *const why_tail = "\" (YYYY-MM-DD, 1-Jan-2025, or 7d 2w 3m 1y ago)";
	static const char *const bad[] = {"2025-02-30", "30-Feb-2025", "7x",
	                                  "yesterday",  "2025-+1-01",  "3000y"};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		char *c = g_strdup_printf("since=%s", bad[i]);
		char *why = g_strdup_printf("bad date \"%s%s", bad[i], why_tail);
		refused(c, why);
		g_free(c);
		g_free(why);
	}
	refused("before=2025-02-30",
	        "bad date \"2025-02-30\" (YYYY-MM-DD, 1-Jan-2025, or 7d 2w 3m 1y ago)");
	refused("on=2025-02-30",
	        "bad date \"2025-02-30\" (YYYY-MM-DD, 1-Jan-2025, or 7d 2w 3m 1y ago)");
	/* relative without a today */
	refused_on(NULL, "since=7d",
	           "bad date \"7d\" (YYYY-MM-DD, 1-Jan-2025, or 7d 2w 3m 1y ago)");
}

/* ---- sizes -------------------------------------------------------------------------------- */

static void test_sizes(void)
{
	static const struct {
		const char *s;
		uint64_t n;
	} good[] = {
	    {"0", 0},
	    {"1500", 1500},
	    {"10K", 10240},
	    {"10k", 10240},
	    {"2M", 2097152},
	    {"2m", 2097152},
	    {"1G", 1073741824},
	    {"3g", 3221225472u},
	    {"4294967295", 4294967295u},
	    {"4194303K", 4294966272u},
	    {"4095M", 4293918720u},
	    {"0G", 0},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		uint64_t n = 1;
		if (!ifs_query_parse_size(good[i].s, &n))
			g_error("size \"%s\" refused", good[i].s);
		g_assert_cmpuint(n, ==, good[i].n);
	}
	/* past 32 bits, malformed, or a suffix IMAP does not know */
	static const char *const bad[] = {
	    "4294967296",
	    "4G",
	    "4194304K",
	    "4096M",
	    "18446744073709551615",
	    "18446744073709551616",
	    "99999999999999999999999G",
	    "",
	    "K",
	    "-1",
	    "+1",
	    " 1",
	    "1 K",
	    "1.5M",
	    "10KB",
	    "1T",
	    "0x10",
	    "1e3",
	    "1k1",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		uint64_t n = 0;
		if (ifs_query_parse_size(bad[i], &n))
			g_error("size \"%s\" taken as %" G_GUINT64_FORMAT, bad[i], n);
	}
	gives("larger=10K", "LARGER 10240");
	gives("smaller=1M", "SMALLER 1048576");
	gives("LARGER=1500", "LARGER 1500");
	gives("smaller=4294967295", "SMALLER 4294967295");
	refused("larger=10X", "bad size \"10X\" (bytes, or a number with K, M or G)");
	refused("larger=4G", "bad size \"4G\" (bytes, or a number with K, M or G)");
	refused("smaller=4294967296",
	        "bad size \"4294967296\" (bytes, or a number with K, M or G)");
	refused("smaller=-5", "bad size \"-5\" (bytes, or a number with K, M or G)");
}

static void test_is_criterion(void)
{
	static const char *const yes[] = {
	    "from=x",     "a=b",     "=",         "x=",      "imap=NOT SEEN",
	    "seen",       "SEEN",    "UnSeen",    "undraft", "answered",
	    "unanswered", "flagged", "unflagged", "draft",   "2024=x"};
	static const char *const no[] = {"INBOX", "Archive", "2024",       "2024.d",
	                                 "seenx", "xseen",   "deleted",    "recent",
	                                 "",      "from",    "받은편지함", ".search"};
	for (size_t i = 0; i < G_N_ELEMENTS(yes); i++)
		if (!ifs_query_is_criterion(yes[i]))
			g_error("\"%s\" should be a criterion", yes[i]);
	for (size_t i = 0; i < G_N_ELEMENTS(no); i++)
		if (ifs_query_is_criterion(no[i]))
			g_error("\"%s\" should be a folder name", no[i]);
}

/* What is quietly not found, and what gets a hint (ifs_query_near_miss). */
static void near(const char *component, const char *want_hint)
{
	char *hint = NULL;
	bool got = ifs_query_near_miss(component, &hint);
	if (want_hint == NULL) {
		if (got)
			g_error("\"%s\" taken for a near miss: %s", component, hint);
		g_assert_null(hint);
		return;
	}
	if (!got || strcmp(hint, want_hint) != 0)
		g_error("\"%s\": hint \"%s\", want \"%s\"", component, got ? hint : "(none)",
		        want_hint);
	g_free(hint);
}

static void test_near_miss(void)
{
	/* quiet: mkdir's lookup, folder-like names, short words, criteria themselves */
	near("newdir", NULL);
	near("Projects", NULL);
	near("INBOX", NULL);
	near("ab", NULL);
	near("xyz", NULL);
	near("unseen", NULL);
	near("from=alice", NULL);
	near("seen", NULL);
	near("Sent", NULL);
	/* a key without its value, or with ':' */
	near("subject", "subject needs a value: subject=VALUE");
	near("From", "from needs a value: from=VALUE");
	near("from:alice", "criteria are written from=VALUE, with '='");
	near("since:7d", "criteria are written since=VALUE, with '='");
	/* typos */
	near("unsen", "did you mean unseen?");
	near("flaged", "did you mean flagged?");
	near("UNFLAGGD", "did you mean unflagged?");
	near("subjet", "did you mean subject=VALUE?");
	near("bfore", "did you mean before=VALUE?");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/query/string-keys", test_string_keys);
	g_test_add_func("/query/header", test_header);
	g_test_add_func("/query/flags-keyword", test_flags);
	g_test_add_func("/query/imap-gmail", test_imap_and_gmail);
	g_test_add_func("/query/unknown-and-empty", test_unknown_and_empty);
	g_test_add_func("/query/date-forms", test_date_forms);
	g_test_add_func("/query/relative-dates", test_relative_dates);
	g_test_add_func("/query/date-keys", test_date_keys);
	g_test_add_func("/query/sizes", test_sizes);
	g_test_add_func("/query/is-criterion", test_is_criterion);
	g_test_add_func("/query/near-miss", test_near_miss);
	return g_test_run();
}
