/* search.c — search criteria as a safe structured type: building, parsing, serialising.
 *
 * A query is a tree of RFC 3501 search keys (struct imap_search).  Nothing user-typed ever
 * reaches the wire as command text: strings go out through imap_cmd_add_string() (a quoted
 * string, or a literal for anything non-ASCII), dates are formatted from numbers, keywords are
 * checked to be atoms, and the only command text is the fixed key names and parentheses
 * written here.  So a value with CR, LF, quotes, braces, parentheses or '*' is just a value:
 * it can never end the command or start another.
 *
 * imap_search_parse() reads the RFC 3501 search-key syntax (OR, NOT, parentheses, quoted
 * strings) into the same tree, so a whole expression typed by a user is rebuilt key by key,
 * never forwarded.  Message sequence numbers are refused: they name different messages from
 * one command to the next, and the mount only knows UIDs.
 */
#include "imap-private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Deepest nesting of NOT/OR/parentheses and most keys in one query: a parser on the stack must
 * not be driven into overflow by a long path component. */
#define MAX_QUERY_DEPTH 32
#define MAX_QUERY_KEYS 256

struct imap_search {
	enum imap_search_key key;
	char *s1, *s2;         /* strings: the value; HEADER: field name and value */
	uint64_t num;          /* LARGER, SMALLER */
	int year, month, day;  /* dates */
	GPtrArray *kids;       /* AND (any number), OR (2), NOT (1) */
};

/* What each key takes, and its wire name. */
enum arg_kind { ARG_NONE, ARG_STRING, ARG_TWO_STRINGS, ARG_ATOM, ARG_DATE, ARG_NUMBER, ARG_SET,
	        ARG_KEYS };

static const struct {
	const char *name;
	enum arg_kind arg;
} keys[] = {
    [IMAP_SEARCH_ALL] = {"ALL", ARG_NONE},
    [IMAP_SEARCH_ANSWERED] = {"ANSWERED", ARG_NONE},
    [IMAP_SEARCH_DELETED] = {"DELETED", ARG_NONE},
    [IMAP_SEARCH_DRAFT] = {"DRAFT", ARG_NONE},
    [IMAP_SEARCH_FLAGGED] = {"FLAGGED", ARG_NONE},
    [IMAP_SEARCH_NEW] = {"NEW", ARG_NONE},
    [IMAP_SEARCH_OLD] = {"OLD", ARG_NONE},
    [IMAP_SEARCH_RECENT] = {"RECENT", ARG_NONE},
    [IMAP_SEARCH_SEEN] = {"SEEN", ARG_NONE},
    [IMAP_SEARCH_UNANSWERED] = {"UNANSWERED", ARG_NONE},
    [IMAP_SEARCH_UNDELETED] = {"UNDELETED", ARG_NONE},
    [IMAP_SEARCH_UNDRAFT] = {"UNDRAFT", ARG_NONE},
    [IMAP_SEARCH_UNFLAGGED] = {"UNFLAGGED", ARG_NONE},
    [IMAP_SEARCH_UNSEEN] = {"UNSEEN", ARG_NONE},
    [IMAP_SEARCH_BCC] = {"BCC", ARG_STRING},
    [IMAP_SEARCH_BODY] = {"BODY", ARG_STRING},
    [IMAP_SEARCH_CC] = {"CC", ARG_STRING},
    [IMAP_SEARCH_FROM] = {"FROM", ARG_STRING},
    [IMAP_SEARCH_SUBJECT] = {"SUBJECT", ARG_STRING},
    [IMAP_SEARCH_TEXT] = {"TEXT", ARG_STRING},
    [IMAP_SEARCH_TO] = {"TO", ARG_STRING},
    [IMAP_SEARCH_X_GM_RAW] = {"X-GM-RAW", ARG_STRING},
    [IMAP_SEARCH_HEADER] = {"HEADER", ARG_TWO_STRINGS},
    [IMAP_SEARCH_KEYWORD] = {"KEYWORD", ARG_ATOM},
    [IMAP_SEARCH_UNKEYWORD] = {"UNKEYWORD", ARG_ATOM},
    [IMAP_SEARCH_BEFORE] = {"BEFORE", ARG_DATE},
    [IMAP_SEARCH_ON] = {"ON", ARG_DATE},
    [IMAP_SEARCH_SINCE] = {"SINCE", ARG_DATE},
    [IMAP_SEARCH_SENTBEFORE] = {"SENTBEFORE", ARG_DATE},
    [IMAP_SEARCH_SENTON] = {"SENTON", ARG_DATE},
    [IMAP_SEARCH_SENTSINCE] = {"SENTSINCE", ARG_DATE},
    [IMAP_SEARCH_LARGER] = {"LARGER", ARG_NUMBER},
    [IMAP_SEARCH_SMALLER] = {"SMALLER", ARG_NUMBER},
    [IMAP_SEARCH_UID] = {"UID", ARG_SET},
    [IMAP_SEARCH_NOT] = {"NOT", ARG_KEYS},
    [IMAP_SEARCH_OR] = {"OR", ARG_KEYS},
    [IMAP_SEARCH_AND] = {"", ARG_KEYS},
};

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static struct imap_search *node_new(enum imap_search_key key)
{
	struct imap_search *q = g_new0(struct imap_search, 1);
	q->key = key;
	return q;
}

void imap_search_free(struct imap_search *q)
{
	if (q == NULL)
		return;
	g_free(q->s1);
	g_free(q->s2);
	if (q->kids != NULL)
		g_ptr_array_unref(q->kids);
	g_free(q);
}

static struct imap_search *with_kids(enum imap_search_key key)
{
	struct imap_search *q = node_new(key);
	q->kids = g_ptr_array_new_with_free_func((GDestroyNotify)imap_search_free);
	return q;
}

/* A value that may be sent: valid UTF-8 without CR, LF or NUL. */
static bool value_ok(const char *s)
{
	return s != NULL && g_utf8_validate(s, -1, NULL) && strpbrk(s, "\r\n") == NULL;
}

/* RFC 3501 atom: ATOM-CHAR = any CHAR except atom-specials ( ) { SP CTL % * " \ ] */
static bool atom_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p) != NULL)
			return false;
	return true;
}

struct imap_search *imap_search_new_flag(enum imap_search_key key)
{
	if (key > IMAP_SEARCH_UNSEEN || keys[key].arg != ARG_NONE)
		return NULL;
	return node_new(key);
}

int imap_search_new_string(enum imap_search_key key, const char *value, struct imap_search **q_r)
{
	*q_r = NULL;
	if (key >= G_N_ELEMENTS(keys) || keys[key].arg != ARG_STRING || !value_ok(value))
		return -EINVAL;
	*q_r = node_new(key);
	(*q_r)->s1 = g_strdup(value);
	return 0;
}

int imap_search_new_header(const char *field, const char *value, struct imap_search **q_r)
{
	*q_r = NULL;
	if (!value_ok(field) || *field == '\0' || !value_ok(value))
		return -EINVAL;
	*q_r = node_new(IMAP_SEARCH_HEADER);
	(*q_r)->s1 = g_strdup(field);
	(*q_r)->s2 = g_strdup(value);
	return 0;
}

int imap_search_new_keyword(enum imap_search_key key, const char *keyword,
                            struct imap_search **q_r)
{
	*q_r = NULL;
	if ((key != IMAP_SEARCH_KEYWORD && key != IMAP_SEARCH_UNKEYWORD) || !atom_ok(keyword))
		return -EINVAL;
	*q_r = node_new(key);
	(*q_r)->s1 = g_strdup(keyword);
	return 0;
}

int imap_search_new_date(enum imap_search_key key, int year, int month, int day,
                         struct imap_search **q_r)
{
	*q_r = NULL;
	if (key >= G_N_ELEMENTS(keys) || keys[key].arg != ARG_DATE || year < 1 || year > 9999 ||
	    month < 1 || month > 12 || day < 1 ||
	    day > g_date_get_days_in_month((GDateMonth)month, (GDateYear)year))
		return -EINVAL;
	*q_r = node_new(key);
	(*q_r)->year = year;
	(*q_r)->month = month;
	(*q_r)->day = day;
	return 0;
}

int imap_search_new_number(enum imap_search_key key, uint64_t n, struct imap_search **q_r)
{
	*q_r = NULL;
	/* RFC 3501 number: 32 bits unsigned */
	if ((key != IMAP_SEARCH_LARGER && key != IMAP_SEARCH_SMALLER) || n > UINT32_MAX)
		return -EINVAL;
	*q_r = node_new(key);
	(*q_r)->num = n;
	return 0;
}

int imap_search_new_uid(const char *uidset, struct imap_search **q_r)
{
	*q_r = NULL;
	if (uidset == NULL || !imap_uidset_valid(uidset))
		return -EINVAL;
	*q_r = node_new(IMAP_SEARCH_UID);
	(*q_r)->s1 = g_strdup(uidset);
	return 0;
}

struct imap_search *imap_search_not(struct imap_search *q)
{
	struct imap_search *n = with_kids(IMAP_SEARCH_NOT);
	g_ptr_array_add(n->kids, q);
	return n;
}

struct imap_search *imap_search_or(struct imap_search *a, struct imap_search *b)
{
	struct imap_search *n = with_kids(IMAP_SEARCH_OR);
	g_ptr_array_add(n->kids, a);
	g_ptr_array_add(n->kids, b);
	return n;
}

struct imap_search *imap_search_and(struct imap_search *a, struct imap_search *b)
{
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	if (a->key != IMAP_SEARCH_AND) {
		struct imap_search *n = with_kids(IMAP_SEARCH_AND);
		g_ptr_array_add(n->kids, a);
		a = n;
	}
	if (b->key == IMAP_SEARCH_AND) {
		/* flatten: (a AND (b1 b2)) is a b1 b2 */
		while (b->kids->len > 0)
			g_ptr_array_add(a->kids, g_ptr_array_steal_index(b->kids, 0));
		imap_search_free(b);
	} else {
		g_ptr_array_add(a->kids, b);
	}
	return a;
}

static bool any_key(const struct imap_search *q, bool (*pred)(const struct imap_search *))
{
	if (pred(q))
		return true;
	for (guint i = 0; q->kids != NULL && i < q->kids->len; i++)
		if (any_key(q->kids->pdata[i], pred))
			return true;
	return false;
}

static bool non_ascii(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p; p++)
		if (*p >= 0x80)
			return true;
	return false;
}

static bool node_non_ascii(const struct imap_search *q)
{
	return non_ascii(q->s1) || non_ascii(q->s2);
}

bool imap_search_needs_utf8(const struct imap_search *q)
{
	return any_key(q, node_non_ascii);
}

static bool node_gmraw(const struct imap_search *q)
{
	return q->key == IMAP_SEARCH_X_GM_RAW;
}

bool imap_search_uses_gmail(const struct imap_search *q)
{
	return any_key(q, node_gmraw);
}

/* ---- serialising ------------------------------------------------------------------------ */

static int format_key(struct imap_cmd *cmd, const struct imap_search *q,
                      enum imap_literal_mode mode, bool nested);

static int format_list(struct imap_cmd *cmd, const GPtrArray *kids, enum imap_literal_mode mode)
{
	for (guint i = 0; i < kids->len; i++) {
		int err;
		if (i > 0)
			imap_cmd_add_text(cmd, " ");
		if ((err = format_key(cmd, kids->pdata[i], mode, true)) < 0)
			return err;
	}
	return 0;
}

/* nested: q is an operand of OR/NOT (or inside a list): an AND of several keys needs
 * parentheses there. */
static int format_key(struct imap_cmd *cmd, const struct imap_search *q,
                      enum imap_literal_mode mode, bool nested)
{
	char buf[64];
	int err = 0;

	switch (keys[q->key].arg) {
	case ARG_NONE:
		imap_cmd_add_text(cmd, keys[q->key].name);
		return 0;
	case ARG_STRING:
	case ARG_TWO_STRINGS:
		imap_cmd_add_text(cmd, keys[q->key].name);
		imap_cmd_add_text(cmd, " ");
		if ((err = imap_cmd_add_string(cmd, q->s1, strlen(q->s1), mode)) < 0)
			return err;
		if (q->s2 != NULL) {
			imap_cmd_add_text(cmd, " ");
			err = imap_cmd_add_string(cmd, q->s2, strlen(q->s2), mode);
		}
		return err;
	case ARG_ATOM:
	case ARG_SET:
		/* validated at construction: an atom / a UID set cannot hold anything special */
		imap_cmd_add_text(cmd, keys[q->key].name);
		imap_cmd_add_text(cmd, " ");
		imap_cmd_add_text(cmd, q->s1);
		return 0;
	case ARG_DATE:
		g_snprintf(buf, sizeof(buf), "%s %d-%s-%04d", keys[q->key].name, q->day,
		           month_names[q->month - 1], q->year);
		imap_cmd_add_text(cmd, buf);
		return 0;
	case ARG_NUMBER:
		g_snprintf(buf, sizeof(buf), "%s %" G_GUINT64_FORMAT, keys[q->key].name, q->num);
		imap_cmd_add_text(cmd, buf);
		return 0;
	case ARG_KEYS:
		break;
	}
	if (q->key == IMAP_SEARCH_AND) {
		if (q->kids->len == 0) {
			imap_cmd_add_text(cmd, "ALL");
			return 0;
		}
		if (q->kids->len == 1)
			return format_key(cmd, q->kids->pdata[0], mode, nested);
		if (nested)
			imap_cmd_add_text(cmd, "(");
		err = format_list(cmd, q->kids, mode);
		if (nested)
			imap_cmd_add_text(cmd, ")");
		return err;
	}
	imap_cmd_add_text(cmd, keys[q->key].name);
	imap_cmd_add_text(cmd, " ");
	return format_list(cmd, q->kids, mode);
}

int imap_search_format(struct imap_cmd *cmd, const struct imap_search *q,
                       enum imap_literal_mode mode)
{
	return format_key(cmd, q, mode, false);
}

char *imap_search_describe(const struct imap_search *q)
{
	struct imap_cmd *cmd = imap_cmd_new();
	GString *out = g_string_new(NULL);
	/* LITERAL+ keeps it one chunk; a literal shows as {n+} followed by its bytes */
	if (imap_search_format(cmd, q, IMAP_LITERAL_PLUS) == 0)
		g_string_append(out, ((GString *)g_ptr_array_index(cmd->chunks, 0))->str);
	imap_cmd_free(cmd);
	/* for a log line: no raw line breaks */
	for (char *p = out->str; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return g_string_free(out, FALSE);
}

/* ---- parsing the RFC 3501 syntax ---------------------------------------------------------- */

struct parser {
	const char *p;
	int depth;
	unsigned nkeys;
	char *err;
};

static int parse_fail(struct parser *ps, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static int parse_fail(struct parser *ps, const char *fmt, ...)
{
	if (ps->err == NULL) {
		va_list ap;
		va_start(ap, fmt);
		ps->err = g_strdup_vprintf(fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static void skip_spaces(struct parser *ps)
{
	while (*ps->p == ' ')
		ps->p++;
}

/* One token that is a value: a quoted string (\" and \\ escapes) or an atom.  *tok_r new. */
static int parse_value(struct parser *ps, const char *what, char **tok_r)
{
	GString *s = g_string_new(NULL);
	skip_spaces(ps);
	if (*ps->p == '"') {
		ps->p++;
		while (*ps->p != '"') {
			if (*ps->p == '\0') {
				g_string_free(s, TRUE);
				return parse_fail(ps, "unterminated quoted string");
			}
			if (*ps->p == '\\' && (ps->p[1] == '"' || ps->p[1] == '\\'))
				ps->p++;
			g_string_append_c(s, *ps->p++);
		}
		ps->p++;
	} else {
		while (*ps->p != '\0' && *ps->p != ' ' && *ps->p != '(' && *ps->p != ')') {
			if (*ps->p == '{' || *ps->p == '"' || (unsigned char)*ps->p < 0x20) {
				g_string_free(s, TRUE);
				return parse_fail(ps, "unexpected character '%c' in %s", *ps->p,
				                  what);
			}
			g_string_append_c(s, *ps->p++);
		}
		if (s->len == 0) {
			g_string_free(s, TRUE);
			return parse_fail(ps, "%s expected", what);
		}
	}
	*tok_r = g_string_free(s, FALSE);
	return 0;
}

/* RFC 3501 date: d-Mon-yyyy (1 or 2 digit day), optionally quoted. */
bool imap_search_parse_date(const char *s, int *year_r, int *month_r, int *day_r)
{
	int day, year, end = 0;
	char mon[4];
	/* the shape first, digits only: sscanf alone would take "1-Jan- 202" or "1-Jan-+202" */
	size_t dlen = strspn(s, "0123456789");
	if ((dlen != 1 && dlen != 2) || strlen(s) != dlen + 9 || s[dlen] != '-' ||
	    s[dlen + 4] != '-' || strspn(s + dlen + 5, "0123456789") != 4)
		return false;
	if (sscanf(s, "%2d-%3[A-Za-z]-%4d%n", &day, mon, &year, &end) != 3 || s[end] != '\0')
		return false;
	for (int m = 0; m < 12; m++) {
		if (g_ascii_strcasecmp(mon, month_names[m]) == 0) {
			if (year < 1 || day < 1 ||
			    day > g_date_get_days_in_month((GDateMonth)(m + 1), (GDateYear)year))
				return false;
			*year_r = year;
			*month_r = m + 1;
			*day_r = day;
			return true;
		}
	}
	return false;
}

static int parse_key(struct parser *ps, struct imap_search **q_r);

/* Keys up to ')' (inside parentheses) or the end: their AND. */
static int parse_keys(struct parser *ps, bool in_parens, struct imap_search **q_r)
{
	struct imap_search *all = NULL;
	*q_r = NULL;
	for (;;) {
		struct imap_search *q;
		int err;
		skip_spaces(ps);
		if (*ps->p == '\0') {
			if (in_parens) {
				imap_search_free(all);
				return parse_fail(ps, "missing ')'");
			}
			break;
		}
		if (*ps->p == ')') {
			if (!in_parens) {
				imap_search_free(all);
				return parse_fail(ps, "unbalanced ')'");
			}
			break;
		}
		if ((err = parse_key(ps, &q)) < 0) {
			imap_search_free(all);
			return err;
		}
		all = imap_search_and(all, q);
	}
	if (all == NULL)
		return parse_fail(ps, in_parens ? "empty parentheses" : "empty search");
	*q_r = all;
	return 0;
}

static int parse_key(struct parser *ps, struct imap_search **q_r)
{
	char *word = NULL, *v1 = NULL, *v2 = NULL;
	int err = 0;
	size_t k;

	*q_r = NULL;
	if (++ps->nkeys > MAX_QUERY_KEYS)
		return parse_fail(ps, "too many search keys (at most %d)", MAX_QUERY_KEYS);
	skip_spaces(ps);
	if (*ps->p == '(') {
		if (++ps->depth > MAX_QUERY_DEPTH)
			return parse_fail(ps, "nested too deeply (at most %d)", MAX_QUERY_DEPTH);
		ps->p++;
		if ((err = parse_keys(ps, true, q_r)) < 0)
			return err;
		ps->p++; /* ')' */
		ps->depth--;
		return 0;
	}
	if (*ps->p == '"')
		return parse_fail(ps, "a search key expected, not a string");
	if ((err = parse_value(ps, "search key", &word)) < 0)
		return err;
	for (k = 0; k < G_N_ELEMENTS(keys); k++)
		if (k != IMAP_SEARCH_AND && g_ascii_strcasecmp(word, keys[k].name) == 0)
			break;
	if (k == G_N_ELEMENTS(keys)) {
		if (g_ascii_isdigit(word[0]) || word[0] == '*' || word[0] == '$')
			err = parse_fail(ps, "message sequence numbers are not supported (use UID %s)",
			                 word);
		else
			err = parse_fail(ps, "unknown search key \"%s\"", word);
		g_free(word);
		return err;
	}
	g_free(word);
	switch (keys[k].arg) {
	case ARG_NONE:
		*q_r = node_new((enum imap_search_key)k);
		return 0;
	case ARG_STRING:
		if ((err = parse_value(ps, keys[k].name, &v1)) == 0 &&
		    imap_search_new_string((enum imap_search_key)k, v1, q_r) < 0)
			err = parse_fail(ps, "invalid %s value", keys[k].name);
		break;
	case ARG_TWO_STRINGS:
		if ((err = parse_value(ps, "HEADER field name", &v1)) == 0 &&
		    (err = parse_value(ps, "HEADER value", &v2)) == 0 &&
		    imap_search_new_header(v1, v2, q_r) < 0)
			err = parse_fail(ps, "invalid HEADER field or value");
		break;
	case ARG_ATOM:
		if ((err = parse_value(ps, keys[k].name, &v1)) == 0 &&
		    imap_search_new_keyword((enum imap_search_key)k, v1, q_r) < 0)
			err = parse_fail(ps, "invalid keyword \"%s\"", v1);
		break;
	case ARG_DATE: {
		int y, m, d;
		if ((err = parse_value(ps, keys[k].name, &v1)) == 0 &&
		    (!imap_search_parse_date(v1, &y, &m, &d) ||
		     imap_search_new_date((enum imap_search_key)k, y, m, d, q_r) < 0))
			err = parse_fail(ps, "invalid date \"%s\" (want e.g. 1-Jan-2025)", v1);
		break;
	}
	case ARG_NUMBER: {
		uint64_t n;
		if ((err = parse_value(ps, keys[k].name, &v1)) == 0 &&
		    (!imap_parse_number(v1, strlen(v1), &n) ||
		     imap_search_new_number((enum imap_search_key)k, n, q_r) < 0))
			err = parse_fail(ps, "invalid number \"%s\"", v1);
		break;
	}
	case ARG_SET:
		if ((err = parse_value(ps, "UID set", &v1)) == 0 && imap_search_new_uid(v1, q_r) < 0)
			err = parse_fail(ps, "invalid UID set \"%s\"", v1);
		break;
	case ARG_KEYS: {
		struct imap_search *a = NULL, *b = NULL;
		if (++ps->depth > MAX_QUERY_DEPTH)
			return parse_fail(ps, "nested too deeply (at most %d)", MAX_QUERY_DEPTH);
		if ((err = parse_key(ps, &a)) < 0)
			return err;
		if (k == IMAP_SEARCH_OR && (err = parse_key(ps, &b)) < 0) {
			imap_search_free(a);
			return err;
		}
		ps->depth--;
		*q_r = k == IMAP_SEARCH_OR ? imap_search_or(a, b) : imap_search_not(a);
		return 0;
	}
	}
	g_free(v1);
	g_free(v2);
	return err;
}

int imap_search_parse(const char *expr, struct imap_search **q_r, char **err_r)
{
	struct parser ps = {.p = expr};
	int err;

	*q_r = NULL;
	if (err_r != NULL)
		*err_r = NULL;
	if (expr == NULL || !value_ok(expr)) {
		if (err_r != NULL)
			*err_r = g_strdup("not valid UTF-8, or contains a line break");
		return -EINVAL;
	}
	err = parse_keys(&ps, false, q_r);
	if (err < 0) {
		if (err_r != NULL)
			*err_r = ps.err;
		else
			g_free(ps.err);
		return err;
	}
	g_free(ps.err);
	return 0;
}
