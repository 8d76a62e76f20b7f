/* test_names.c — unit test of fs/names.c: how folder-name components become directory entries
 * (the numeric-folder rule, escaping, refusals) and UID parsing. */
#include <glib.h>
#include <string.h>

#include "names.h"

static void check_entry(const char *component, const char *expected)
{
	const char *why = NULL;
	char *got = ifs_folder_entry_name(component, &why);

	if (expected == NULL) {
		g_assert_null(got);
		g_assert_nonnull(why);
		return;
	}
	g_assert_cmpstr(got, ==, expected);
	/* reversible */
	char *back = ifs_folder_component(got);
	g_assert_cmpstr(back, ==, component);
	g_free(back);
	g_free(got);
}

static void test_digit_rule(void)
{
	check_entry("2024", "2024.d");
	check_entry("0", "0.d");
	check_entry("007", "007.d");
	check_entry("2024.d", "2024.d.d");
	check_entry("2024.d.d", "2024.d.d.d");
	check_entry("2024.dx", "2024.dx");
	check_entry("2024x", "2024x");
	check_entry("x2024", "x2024");
	check_entry("2024.", "2024.");
	check_entry(".d", ".d");
	check_entry("INBOX", "INBOX");
	check_entry("받은편지함", "받은편지함");
}

/* Every folder has a hidden ".search" directory: a folder of that name steps aside. */
static void test_search_rule(void)
{
	check_entry(".search", ".search.d");
	check_entry(".search.d", ".search.d.d");
	check_entry(".search.d.d", ".search.d.d.d");
	check_entry(".searchx", ".searchx");
	check_entry("search", "search");
	check_entry(".Search", ".Search");
	check_entry(".search.", ".search.");
}

static void test_unsafe(void)
{
	check_entry("", NULL);
	check_entry(".", NULL);
	check_entry("..", NULL);
	check_entry("...", "...");
	check_entry("a/b", "a\xe2\x88\x95" "b");
	check_entry("/", "\xe2\x88\x95");
	check_entry("\xff\xfe", NULL);

	char *long_name = g_strnfill(255, 'a');
	check_entry(long_name, long_name);
	g_free(long_name);
	long_name = g_strnfill(256, 'a');
	check_entry(long_name, NULL);
	g_free(long_name);
	/* 254 digits become 256 bytes with ".d": refused rather than cut */
	long_name = g_strnfill(254, '1');
	check_entry(long_name, NULL);
	g_free(long_name);
}

static void test_path(void)
{
	const char *why = NULL;
	char **p = ifs_folder_entry_path("Archive/2024", '/', &why);
	g_assert_nonnull(p);
	g_assert_cmpuint(g_strv_length(p), ==, 2);
	g_assert_cmpstr(p[0], ==, "Archive");
	g_assert_cmpstr(p[1], ==, "2024.d");
	g_strfreev(p);

	p = ifs_folder_entry_path("a.b/c", '.', &why);
	g_assert_cmpstr(p[0], ==, "a");
	g_assert_cmpstr(p[1], ==, "b\xe2\x88\x95" "c");
	g_strfreev(p);

	p = ifs_folder_entry_path("flat/name.1", '\0', &why);
	g_assert_cmpuint(g_strv_length(p), ==, 1);
	g_strfreev(p);

	g_assert_null(ifs_folder_entry_path("a//b", '/', &why));
	g_assert_null(ifs_folder_entry_path("/a", '/', &why));
	g_assert_null(ifs_folder_entry_path("a/", '/', &why));
	g_assert_null(ifs_folder_entry_path("a/../b", '/', &why));
	g_assert_null(ifs_folder_entry_path("", '/', &why));
	g_assert_null(ifs_folder_entry_path(NULL, '/', &why));
}

static void test_uid(void)
{
	guint32 uid = 0;
	g_assert_true(ifs_parse_uid("1", &uid));
	g_assert_cmpuint(uid, ==, 1);
	g_assert_true(ifs_parse_uid("4294967295", &uid));
	g_assert_cmpuint(uid, ==, 4294967295u);
	g_assert_false(ifs_parse_uid("4294967296", &uid));
	g_assert_false(ifs_parse_uid("0", &uid));
	g_assert_false(ifs_parse_uid("01", &uid));
	g_assert_false(ifs_parse_uid("1.d", &uid));
	g_assert_false(ifs_parse_uid("", &uid));
	g_assert_false(ifs_parse_uid("99999999999", &uid));
	g_assert_false(ifs_parse_uid("+1", &uid));
}

/* The one rule for which folder name the tree shows (ifs_folder_shown_name). */
static void test_shown_name(void)
{
	bool as_sent = true;
	const char *why = NULL;
	const char *raw_utf8 = "Entw\xc3\xbcrfe";

	/* decoded: the decoding, whatever the wire name */
	g_assert_cmpstr(ifs_folder_shown_name("Entw&APw-rfe", "Entw\xc3\xbcrfe", &as_sent, &why), ==,
	                "Entw\xc3\xbcrfe");
	g_assert_false(as_sent);
	/* not modified UTF-7 but UTF-8 with a non-ASCII byte: shown as sent */
	g_assert_true(ifs_folder_shown_name(raw_utf8, NULL, &as_sent, &why) == raw_utf8);
	g_assert_true(as_sent);
	/* broken modified UTF-7 in pure ASCII, and bytes that are not UTF-8: not shown */
	why = NULL;
	g_assert_null(ifs_folder_shown_name("&AGE-", NULL, &as_sent, &why));
	g_assert_nonnull(why);
	g_assert_false(as_sent);
	g_assert_null(ifs_folder_shown_name("&Jjo", NULL, NULL, NULL));
	g_assert_null(ifs_folder_shown_name("Latin1 \xe9t\xe9", NULL, &as_sent, &why));
	g_assert_false(as_sent);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/names/digit-rule", test_digit_rule);
	g_test_add_func("/names/search-rule", test_search_rule);
	g_test_add_func("/names/unsafe", test_unsafe);
	g_test_add_func("/names/path", test_path);
	g_test_add_func("/names/uid", test_uid);
	g_test_add_func("/names/shown-name", test_shown_name);
	return g_test_run();
}
