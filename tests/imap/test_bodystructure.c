/* test_bodystructure.c — unit tests of the BODYSTRUCTURE parser (imap/bodystructure.c).
 *
 * RFC 3501's own examples, the section numbers of RFC 3501 6.4.5's example message (nested
 * multiparts and parts inside message/rfc822 parts), the broken shapes real servers send
 * (each refused or tolerated as imap.h says), the depth and size caps (and no stack overflow
 * on 100,000 nested parentheses), the FETCH path against the text path, and the
 * format/parse round trip.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

static struct imap_part *parse_ok(const char *text)
{
	struct imap_part *root = NULL;
	char *why = NULL;
	int err = imap_bodystructure_parse(text, strlen(text), &root, &why);
	if (err != 0)
		g_error("did not parse (%d: %s): %s", err, why, text);
	g_assert_null(why);
	g_assert_nonnull(root);
	return root;
}

/* Refused with -EBADMSG, and why mentions want (NULL: anything). */
static void parse_bad(const char *text, size_t len, const char *want)
{
	struct imap_part *root = (struct imap_part *)(uintptr_t)1;
	char *why = NULL;
	int err = imap_bodystructure_parse(text, len, &root, &why);
	if (err != -EBADMSG)
		g_error("expected -EBADMSG, got %d for: %.200s", err, text);
	g_assert_null(root);
	g_assert_nonnull(why);
	if (want != NULL && strstr(why, want) == NULL)
		g_error("reason \"%s\" does not mention \"%s\"", why, want);
	g_free(why);
}

/* parse_bad with strlen */
#define BAD(text, want) parse_bad(text, strlen(text), want)

static void params_equal(const struct imap_param *a, unsigned na, const struct imap_param *b,
                         unsigned nb)
{
	g_assert_cmpuint(na, ==, nb);
	for (unsigned i = 0; i < na; i++) {
		g_assert_cmpstr(a[i].name, ==, b[i].name);
		g_assert_cmpstr(a[i].value, ==, b[i].value);
	}
}

static void trees_equal(const struct imap_part *a, const struct imap_part *b)
{
	g_assert_cmpint(a->kind, ==, b->kind);
	g_assert_cmpstr(a->section, ==, b->section);
	g_assert_cmpstr(a->type, ==, b->type);
	g_assert_cmpstr(a->subtype, ==, b->subtype);
	params_equal(a->params, a->n_params, b->params, b->n_params);
	g_assert_cmpstr(a->id, ==, b->id);
	g_assert_cmpstr(a->description, ==, b->description);
	g_assert_cmpstr(a->encoding, ==, b->encoding);
	g_assert_cmpuint(a->size, ==, b->size);
	g_assert_cmpuint(a->lines, ==, b->lines);
	g_assert_cmpstr(a->disposition, ==, b->disposition);
	params_equal(a->disp_params, a->n_disp_params, b->disp_params, b->n_disp_params);
	g_assert_cmpuint(a->index, ==, b->index);
	g_assert_cmpuint(a->n_parts, ==, b->n_parts);
	for (unsigned i = 0; i < a->n_parts; i++)
		trees_equal(&a->parts[i], &b->parts[i]);
}

/* format(t) parses back to t, and formatting that gives the same text. */
static void check_round_trip(const struct imap_part *t)
{
	char *text = imap_bodystructure_format(t);
	struct imap_part *again = parse_ok(text);
	trees_equal(t, again);
	char *text2 = imap_bodystructure_format(again);
	g_assert_cmpstr(text, ==, text2);
	struct imap_part *copy = imap_part_copy(t);
	trees_equal(t, copy);
	imap_part_free(copy);
	imap_part_free(again);
	g_free(text);
	g_free(text2);
}

/* Preorder listing "section:type/subtype" of every part, for whole-tree comparisons. */
static void outline(GString *s, const struct imap_part *p)
{
	g_string_append_printf(s, "%s%u=%s:%s/%s", s->len ? " " : "", p->index, p->section, p->type,
	                       p->subtype);
	for (unsigned i = 0; i < p->n_parts; i++)
		outline(s, &p->parts[i]);
}

static char *outline_of(const struct imap_part *p)
{
	GString *s = g_string_new(NULL);
	outline(s, p);
	return g_string_free(s, FALSE);
}

/* RFC 3501 7.4.2: the BODYSTRUCTURE example, and the BODY example of a single part. */
static void test_rfc3501_examples(void)
{
	struct imap_part *t = parse_ok(
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	    "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) "
	    "\"MIXED\")");
	g_assert_cmpint(t->kind, ==, IMAP_PART_MULTIPART);
	g_assert_cmpstr(t->section, ==, "");
	g_assert_cmpstr(t->type, ==, "multipart");
	g_assert_cmpstr(t->subtype, ==, "mixed");
	g_assert_null(t->encoding);
	g_assert_cmpuint(t->size, ==, 0);
	g_assert_cmpuint(t->n_parts, ==, 2);
	const struct imap_part *a = &t->parts[0], *b = &t->parts[1];
	g_assert_cmpint(a->kind, ==, IMAP_PART_LEAF);
	g_assert_cmpstr(a->section, ==, "1");
	g_assert_cmpstr(a->type, ==, "text");
	g_assert_cmpstr(a->subtype, ==, "plain");
	g_assert_cmpuint(a->n_params, ==, 1);
	g_assert_cmpstr(a->params[0].name, ==, "CHARSET"); /* exactly as sent */
	g_assert_cmpstr(a->params[0].value, ==, "US-ASCII");
	g_assert_null(a->id);
	g_assert_null(a->description);
	g_assert_cmpstr(a->encoding, ==, "7bit");
	g_assert_cmpuint(a->size, ==, 1152);
	g_assert_cmpuint(a->lines, ==, 23);
	g_assert_null(a->disposition);
	g_assert_cmpuint(a->index, ==, 1);
	g_assert_cmpstr(b->section, ==, "2");
	g_assert_cmpstr(b->id, ==, "<960723163407.20117h@cac.washington.edu>");
	g_assert_cmpstr(b->description, ==, "Compiler diff");
	g_assert_cmpstr(b->encoding, ==, "base64");
	g_assert_cmpuint(b->size, ==, 4554);
	g_assert_cmpuint(b->lines, ==, 73);
	g_assert_cmpstr(imap_part_param(b, "name"), ==, "cc.diff");
	g_assert_cmpstr(imap_part_param(b, "Charset"), ==, "US-ASCII");
	g_assert_null(imap_part_param(b, "boundary"));
	g_assert_cmpuint(b->index, ==, 2);
	g_assert_true(imap_part_find(t, "2") == b);
	g_assert_true(imap_part_find(t, "") == t);
	g_assert_null(imap_part_find(t, "3"));
	check_round_trip(t);
	imap_part_free(t);

	t = parse_ok("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92)");
	g_assert_cmpint(t->kind, ==, IMAP_PART_LEAF);
	g_assert_cmpstr(t->section, ==, "1"); /* a single-part message: BODY[1] is its body */
	g_assert_cmpuint(t->size, ==, 3028);
	g_assert_cmpuint(t->lines, ==, 92);
	g_assert_cmpuint(t->n_parts, ==, 0);
	g_assert_null(t->parts);
	g_assert_true(imap_part_find(t, "1") == t);
	check_round_trip(t);
	imap_part_free(t);
}

#define ENV                                                                                        \
	"(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"subject\" "                                         \
	"((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) "                                  \
	"((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")) NIL "                              \
	"((NIL NIL \"mooch\" \"owatagu.siam.edu\")) NIL NIL NIL \"<B27397-0100000@x>\")"
#define PLAIN(n)  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" " #n " 2)"
#define OCTETS(n) "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" " #n ")"

/* RFC 3501 6.4.5's example message, every part's section. */
static void test_rfc3501_sections(void)
{
	const char *text = "(" PLAIN(10) OCTETS(20)                 /* 1, 2 */
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 500 " ENV /* 3 */
	    " (" PLAIN(11)
	        OCTETS(21) " \"MIXED\") 20)"                                         /* 3.1, 3.2 */
	                   "((\"IMAGE\" \"GIF\" NIL \"<gif@x>\" NIL \"BASE64\" 300)" /* 4, 4.1 */
	                   "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 800 " ENV   /* 4.2 */
	                   " (" PLAIN(12)                                            /* 4.2.1 */
	    "(" PLAIN(13) "(\"TEXT\" \"RICHTEXT\" NIL NIL NIL \"7BIT\" 14 1) "       /* 4.2.2.1-2 */
	                  "\"ALTERNATIVE\") \"MIXED\") 30) \"MIXED\") \"MIXED\")";
	struct imap_part *t = parse_ok(text);
	char *o = outline_of(t);
	g_assert_cmpstr(o, ==,
	                "0=:multipart/mixed 1=1:text/plain 2=2:application/octet-stream "
	                "3=3:message/rfc822 4=3:multipart/mixed 5=3.1:text/plain "
	                "6=3.2:application/octet-stream 7=4:multipart/mixed 8=4.1:image/gif "
	                "9=4.2:message/rfc822 10=4.2:multipart/mixed 11=4.2.1:text/plain "
	                "12=4.2.2:multipart/alternative 13=4.2.2.1:text/plain "
	                "14=4.2.2.2:text/richtext");
	g_free(o);
	static const char *const sections[] = {
	    "1", "2", "3", "3.1", "3.2", "4", "4.1", "4.2", "4.2.1", "4.2.2", "4.2.2.1", "4.2.2.2"};
	for (size_t i = 0; i < G_N_ELEMENTS(sections); i++) {
		const struct imap_part *p = imap_part_find(t, sections[i]);
		g_assert_nonnull(p);
		g_assert_cmpstr(p->section, ==, sections[i]);
	}
	/* a message part and its multipart body share the section; find gives the message */
	g_assert_cmpint(imap_part_find(t, "3")->kind, ==, IMAP_PART_MESSAGE);
	g_assert_cmpint(imap_part_find(t, "4.2")->kind, ==, IMAP_PART_MESSAGE);
	g_assert_cmpint(imap_part_find(t, "3")->parts[0].kind, ==, IMAP_PART_MULTIPART);
	g_assert_cmpuint(imap_part_find(t, "3")->lines, ==, 20);
	g_assert_cmpuint(imap_part_find(t, "4.2")->size, ==, 800);
	g_assert_cmpstr(imap_part_find(t, "4.1")->id, ==, "<gif@x>");
	g_assert_null(imap_part_find(t, "4.1.1"));
	g_assert_null(imap_part_find(t, "5"));
	check_round_trip(t);
	imap_part_free(t);

	/* 4.1 a multipart itself (4.1.1, 4.1.2); a single part inside message/rfc822 part 2 is
	 * 2.1; a message/rfc822 whose body is a message/rfc822 (1.1 and 1.1.1) */
	t = parse_ok("(" PLAIN(1) "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 50 " ENV
	                          " " PLAIN(2) " 4)(" OCTETS(3) "(" PLAIN(4) OCTETS(
	                              5) " \"RELATED\") " OCTETS(6) " \"MIXED\") \"MIXED\")");
	o = outline_of(t);
	g_assert_cmpstr(o, ==,
	                "0=:multipart/mixed 1=1:text/plain 2=2:message/rfc822 3=2.1:text/plain "
	                "4=3:multipart/mixed 5=3.1:application/octet-stream "
	                "6=3.2:multipart/related 7=3.2.1:text/plain "
	                "8=3.2.2:application/octet-stream 9=3.3:application/octet-stream");
	g_free(o);
	check_round_trip(t);
	imap_part_free(t);

	t = parse_ok("(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 50 " ENV
	             " (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 40 " ENV " " PLAIN(2) " 3) 4)");
	o = outline_of(t);
	g_assert_cmpstr(o, ==, "0=1:message/rfc822 1=1.1:message/rfc822 2=1.1.1:text/plain");
	g_free(o);
	check_round_trip(t);
	imap_part_free(t);
}

/* Extension data: kept (disposition), checked and dropped (md5, language, location, more). */
static void test_extension_data(void)
{
	struct imap_part *t = parse_ok(
	    "((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 10 1 "
	    "\"md5sum\" (\"INLINE\" NIL) (\"en\" \"de\") \"http://x/\" 7 (\"a\" (1 NIL))) "
	    "(\"APPLICATION\" \"PDF\" (\"NAME\" \"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\") NIL NIL "
	    "\"BASE64\" 100 NIL (\"ATTACHMENT\" (\"FILENAME*\" \"utf-8''r%C3%A9sum%C3%A9.pdf\" "
	    "\"SIZE\" \"75\")) \"fr\" NIL) "
	    "\"ALTERNATIVE\" (\"BOUNDARY\" \"b1\") (\"inline\" NIL) NIL NIL)");
	g_assert_cmpuint(t->n_params, ==, 1);
	g_assert_cmpstr(t->params[0].name, ==, "BOUNDARY");
	g_assert_cmpstr(imap_part_param(t, "boundary"), ==, "b1");
	g_assert_cmpstr(t->disposition, ==, "inline");
	const struct imap_part *a = &t->parts[0], *b = &t->parts[1];
	g_assert_cmpstr(a->encoding, ==, "quoted-printable");
	g_assert_cmpstr(a->disposition, ==, "inline");
	g_assert_cmpuint(a->n_disp_params, ==, 0);
	g_assert_cmpstr(b->disposition, ==, "attachment");
	g_assert_cmpuint(b->n_disp_params, ==, 2);
	g_assert_cmpstr(b->disp_params[0].name, ==, "FILENAME*");
	g_assert_cmpstr(b->disp_params[0].value, ==, "utf-8''r%C3%A9sum%C3%A9.pdf");
	g_assert_cmpstr(imap_part_param(b, "NAME"), ==, "=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=");
	check_round_trip(t);
	imap_part_free(t);

	/* malformed extension data is refused */
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 (\"x\") NIL)", "MD5");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL (1))", "language");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL ())", "location");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL atom)", "extension");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL (\"attachment\") NIL)",
	    "disposition");
}

/* The shapes of issue 20 item 8, and RFC 3501 grammar violations. */
static void test_broken_shapes(void)
{
	/* Gmail's empty multipart: refused, alone or as a child */
	BAD("(\"ALTERNATIVE\")", "fewer than 7");
	BAD("((\"ALTERNATIVE\")" PLAIN(5) " \"MIXED\")", "part \"1\"");
	/* a multipart with no children at all cannot even be told from a broken single part */
	BAD("(\"MIXED\" NIL NIL NIL)", "fewer than 7");

	/* Exchange's bare-string disposition: tolerated, no parameters */
	struct imap_part *t = parse_ok("(\"APPLICATION\" \"PDF\" (\"NAME\" \"x.pdf\") NIL NIL "
	                               "\"BASE64\" 100 NIL \"attachment\" NIL NIL)");
	g_assert_cmpstr(t->disposition, ==, "attachment");
	g_assert_cmpuint(t->n_disp_params, ==, 0);
	check_round_trip(t);
	imap_part_free(t);
	t = parse_ok("(" PLAIN(1) "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 9 NIL \"INLINE\") "
	                          "\"MIXED\" NIL \"Attachment\")");
	g_assert_cmpstr(t->disposition, ==, "attachment");
	g_assert_cmpstr(t->parts[1].disposition, ==, "inline");
	imap_part_free(t);

	/* NIL (grammar) and () (tolerated) for empty parameter lists */
	t = parse_ok("((\"TEXT\" \"PLAIN\" () NIL NIL \"7BIT\" 1 1 NIL (\"attachment\" ())) "
	             "\"MIXED\" ())");
	g_assert_cmpuint(t->n_params, ==, 0);
	g_assert_cmpuint(t->parts[0].n_params, ==, 0);
	g_assert_null(t->parts[0].params);
	g_assert_cmpstr(t->parts[0].disposition, ==, "attachment");
	imap_part_free(t);
	t = parse_ok("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL (\"attachment\" NIL))");
	g_assert_cmpstr(t->disposition, ==, "attachment");
	imap_part_free(t);

	/* missing extension data (everything after the size or lines, after the subtype) */
	t = parse_ok("(" OCTETS(7) "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 9 " ENV
	                           " " PLAIN(3) " 2) \"MIXED\")");
	g_assert_cmpuint(t->parts[0].size, ==, 7);
	g_assert_cmpuint(t->parts[0].lines, ==, 0);
	g_assert_cmpuint(t->parts[1].lines, ==, 2);
	imap_part_free(t);

	/* Outlook.com's zero-length vCalendar part: parses (size 0; fs/ decides) */
	t = parse_ok(
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 12 1)"
	    "(\"TEXT\" \"CALENDAR\" (\"CHARSET\" \"utf-8\" \"METHOD\" \"REQUEST\") NIL NIL "
	    "\"7BIT\" 0 0 NIL NIL NIL NIL) \"ALTERNATIVE\")");
	g_assert_cmpuint(t->parts[1].size, ==, 0);
	g_assert_cmpstr(imap_part_param(&t->parts[1], "method"), ==, "REQUEST");
	check_round_trip(t);
	imap_part_free(t);

	/* stray NILs where a list belongs */
	BAD("NIL", "not one parenthesised list");
	BAD("(NIL " PLAIN(1) " \"MIXED\")", NULL);
	BAD("(" PLAIN(1) " NIL \"MIXED\")", NULL);
	BAD("(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 9 " ENV " NIL 2)", "not a list");
	BAD("(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 9 NIL " PLAIN(1) " 2)", "envelope");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL (NIL NIL))", "disposition");
	/* other grammar violations */
	BAD("(" PLAIN(1) ")", "without a subtype");
	BAD("(" PLAIN(1) " NIL)", "without a subtype");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10)", "line count");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL NIL 10 1)", "encoding");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" \"10\" 1)", "size");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" -1 1)", "size");
	BAD("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 99999999999999999999 1)", "size");
	BAD("(\"TEXT\" \"PLAIN\" (\"CHARSET\") NIL NIL \"7BIT\" 1 1)", "without a value");
	BAD("(\"TEXT\" \"PLAIN\" \"CHARSET\" NIL NIL \"7BIT\" 1 1)", "neither a list nor NIL");
	BAD("(\"TEXT\" \"PLAIN\" (\"A\" NIL) NIL NIL \"7BIT\" 1 1)", "other than strings");
	BAD("(TEXT PLAIN NIL NIL NIL \"7BIT\" 1 1)", "not a string");
	BAD("(\"TEXT\" NIL NIL NIL NIL \"7BIT\" 1 1)", "not a string");
	BAD("(\"TEXT\" \"PLAIN\" NIL (\"id\") NIL \"7BIT\" 1 1)", "id");
	BAD("()", "empty list");
	BAD("", "not one parenthesised list");
	BAD("(" PLAIN(1) " \"MIXED\") trailing", "not one parenthesised list");
	BAD("(" PLAIN(1) " \"MIXED\"", "does not parse");
	BAD("(" PLAIN(1) " \"MIXED\")\r\n" PLAIN(1), "does not parse");
	/* a NUL inside a literal string: the tree keeps C strings */
	static const char nul[] = "(\"TEXT\" \"PLAIN\" ({3}\r\na\0b \"v\") NIL NIL \"7BIT\" 1 1)";
	parse_bad(nul, sizeof(nul) - 1, "other than strings");
	/* surrounding spaces are fine */
	t = parse_ok("  " PLAIN(1) "  ");
	imap_part_free(t);
}

/* ... (PLAIN) ... nested depth parts deep: multiparts or message/rfc822 parts. */
static char *nested(unsigned depth, bool messages)
{
	GString *s = g_string_new(NULL);
	for (unsigned i = 1; i < depth; i++)
		g_string_append(
		    s, messages ? "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 9 " ENV " " : "(");
	g_string_append(s, PLAIN(1));
	for (unsigned i = 1; i < depth; i++)
		g_string_append(s, messages ? " 1)" : " \"MIXED\")");
	return g_string_free(s, FALSE);
}

static void test_caps(void)
{
	for (int m = 0; m < 2; m++) {
		char *ok = nested(IMAP_PART_MAX_DEPTH, m);
		struct imap_part *t = parse_ok(ok);
		const struct imap_part *p = t;
		unsigned levels = 1;
		while (p->n_parts > 0) {
			p = &p->parts[0];
			levels++;
		}
		g_assert_cmpuint(levels, ==, IMAP_PART_MAX_DEPTH);
		g_assert_cmpint(p->kind, ==, IMAP_PART_LEAF);
		check_round_trip(t);
		imap_part_free(t);
		g_free(ok);
		char *deep = nested(IMAP_PART_MAX_DEPTH + 1, m);
		BAD(deep, "deeper than 32");
		g_free(deep);
	}

	/* 10,000 parts in all (a multipart with 9,999 children) parse, 10,001 do not */
	for (unsigned n = IMAP_PART_MAX_PARTS; n <= IMAP_PART_MAX_PARTS + 1; n++) {
		GString *s = g_string_new("(");
		for (unsigned i = 1; i < n; i++)
			g_string_append(s, OCTETS(1));
		g_string_append(s, " \"MIXED\")");
		if (n == IMAP_PART_MAX_PARTS) {
			struct imap_part *t = parse_ok(s->str);
			g_assert_cmpuint(t->n_parts, ==, IMAP_PART_MAX_PARTS - 1);
			g_assert_cmpstr(t->parts[9998].section, ==, "9999");
			g_assert_cmpuint(t->parts[9998].index, ==, 9999);
			imap_part_free(t);
		} else {
			BAD(s->str, "more than 10000 parts");
		}
		g_string_free(s, TRUE);
	}

	/* 100,000 nested parentheses: refused by the response parser's depth cap, no stack
	 * overflow; the same closed, and unclosed */
	GString *s = g_string_new(NULL);
	for (int i = 0; i < 100000; i++)
		g_string_append_c(s, '(');
	BAD(s->str, "deeper");
	for (int i = 0; i < 100000; i++)
		g_string_append_c(s, ')');
	BAD(s->str, "deeper");
	g_string_free(s, TRUE);
}

/* A FETCH answer's BODYSTRUCTURE (imap_bodystructure_from_arg) gives the tree the text does,
 * also with literals for strings. */
static void test_fetch_path(void)
{
	const char *bs = "((\"TEXT\" \"PLAIN\" (\"CHARSET\" {5}\r\nutf-8) NIL NIL \"7BIT\" 10 1)"
	                 "(\"APPLICATION\" \"ZIP\" (\"NAME\" \"a \\\"b\\\\c\\\".zip\") NIL NIL "
	                 "\"BASE64\" 44 NIL (\"attachment\" (\"filename\" \"x.zip\"))) \"MIXED\")";
	GString *line = g_string_new("* 3 FETCH (UID 7 BODYSTRUCTURE ");
	g_string_append(line, bs);
	g_string_append(line, ")\r\n");
	struct imap_parser *p = imap_parser_new(0, 0);
	struct imap_response *resp = NULL;
	size_t used;
	g_assert_cmpint(imap_parser_feed(p, (const guint8 *)line->str, line->len, &used, &resp), ==,
	                IMAP_PARSE_OK);
	g_assert_cmpuint(used, ==, line->len);
	const struct imap_arg *list = &resp->args[2];
	g_assert_true(imap_arg_is_atom(&list->u.items[2], "BODYSTRUCTURE"));
	struct imap_part *a = NULL, *b = parse_ok(bs);
	char *why = NULL;
	g_assert_cmpint(imap_bodystructure_from_arg(&list->u.items[3], &a, &why), ==, 0);
	g_assert_null(why);
	trees_equal(a, b);
	g_assert_cmpstr(a->parts[0].params[0].value, ==, "utf-8");
	g_assert_cmpstr(imap_part_param(&a->parts[1], "name"), ==, "a \"b\\c\".zip");
	check_round_trip(a);
	imap_part_free(a);
	/* the FETCH path refuses what the text path refuses */
	g_assert_cmpint(imap_bodystructure_from_arg(&list->u.items[1], &a, &why), ==, -EBADMSG);
	g_assert_null(a);
	g_assert_nonnull(why);
	g_free(why);
	imap_part_free(b);
	imap_response_free(resp);
	imap_parser_free(p);
	g_string_free(line, TRUE);
}

/* Strings that need escapes or literals, 8-bit bytes, every field set: format, parse, same. */
static void test_round_trip(void)
{
	struct imap_part *t = parse_ok(
	    "((\"Text\" \"HTML\" (\"charset\" \"UTF-8\" \"x\" {7}\r\na\r\nb\"\\c) \"<id>\" "
	    "{4}\r\n\r\n\r\n \"8BIT\" 123 4 NIL (\"Inline\" (\"filename\" \"caf\xc3\xa9.html\")))"
	    "(\"MESSAGE\" \"GLOBAL\" NIL NIL \"desc\" \"8bit\" 77 " ENV
	    " " OCTETS(8) " 5) "
	                  "(\"message\" \"global\" NIL NIL NIL \"base64\" 12) "
	                  "\"Related\" (\"type\" \"text/html\") \"attachment\")");
	const struct imap_part *h = &t->parts[0];
	g_assert_cmpstr(h->type, ==, "text");
	g_assert_cmpstr(h->subtype, ==, "html");
	g_assert_cmpstr(h->params[1].value, ==, "a\r\nb\"\\c");
	g_assert_cmpstr(h->description, ==, "\r\n\r\n");
	g_assert_cmpstr(h->disposition, ==, "inline");
	g_assert_cmpstr(h->disp_params[0].value, ==, "caf\xc3\xa9.html");
	/* message/global in the message form is a message part, in the basic form a leaf */
	g_assert_cmpint(t->parts[1].kind, ==, IMAP_PART_MESSAGE);
	g_assert_cmpstr(t->parts[1].parts[0].section, ==, "2.1");
	g_assert_cmpint(t->parts[2].kind, ==, IMAP_PART_LEAF);
	g_assert_cmpstr(t->subtype, ==, "related");
	g_assert_cmpstr(t->disposition, ==, "attachment");
	check_round_trip(t);
	imap_part_free(t);

	/* the canonical text itself, for one small tree */
	t = parse_ok("((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 1) "
	             "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 9 NIL (\"attachment\" "
	             "(\"filename\" \"a.png\"))) \"MIXED\" (\"boundary\" \"xx\"))");
	char *text = imap_bodystructure_format(t);
	g_assert_cmpstr(
	    text, ==,
	    "((\"text\" \"plain\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7bit\" 5 1 NIL NIL)"
	    "(\"image\" \"png\" NIL NIL NIL \"base64\" 9 NIL (\"attachment\" (\"filename\" "
	    "\"a.png\"))) \"mixed\" (\"boundary\" \"xx\") NIL)");
	g_free(text);
	imap_part_free(t);

	g_assert_null(imap_bodystructure_format(NULL));
	g_assert_null(imap_part_copy(NULL));
	imap_part_free(NULL);
	g_assert_null(imap_part_find(NULL, ""));
	g_assert_null(imap_part_param(NULL, "x"));
}

/* A copy is deep: freeing the original leaves it whole; a copy of a subtree keeps its
 * sections and indexes. */
static void test_copy(void)
{
	struct imap_part *t =
	    parse_ok("(" PLAIN(1) "(" OCTETS(2) PLAIN(3) " \"ALTERNATIVE\" "
	                                                 "(\"boundary\" \"b\")) \"MIXED\")");
	struct imap_part *c = imap_part_copy(t);
	struct imap_part *sub = imap_part_copy(&t->parts[1]);
	char *before = imap_bodystructure_format(t);
	imap_part_free(t);
	char *after = imap_bodystructure_format(c);
	g_assert_cmpstr(before, ==, after);
	g_assert_cmpstr(sub->section, ==, "2");
	g_assert_cmpuint(sub->index, ==, 2);
	g_assert_cmpstr(sub->parts[1].section, ==, "2.2");
	g_assert_cmpstr(imap_part_param(sub, "BOUNDARY"), ==, "b");
	g_free(before);
	g_free(after);
	imap_part_free(c);
	imap_part_free(sub);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/bodystructure/rfc3501-examples", test_rfc3501_examples);
	g_test_add_func("/bodystructure/rfc3501-sections", test_rfc3501_sections);
	g_test_add_func("/bodystructure/extension-data", test_extension_data);
	g_test_add_func("/bodystructure/broken-shapes", test_broken_shapes);
	g_test_add_func("/bodystructure/caps", test_caps);
	g_test_add_func("/bodystructure/fetch-path", test_fetch_path);
	g_test_add_func("/bodystructure/round-trip", test_round_trip);
	g_test_add_func("/bodystructure/copy", test_copy);
	return g_test_run();
}
