/* query.c — one path component below `.search` turned into a search query (see query.h).
 *
 * Pure functions over the imap/ query type: no locks, no I/O, so every rule here is unit
 * tested on its own (tests/fs/test_query.c).  The component is user input typed into a path:
 * it is only ever split and converted into typed values (strings, dates, numbers, atoms);
 * imap/search.c decides how each value travels on the wire.
 */
#include "query.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* key=value components */
static const struct {
	const char *name;
	enum imap_search_key key;
} string_keys[] = {
    {"from", IMAP_SEARCH_FROM}, {"to", IMAP_SEARCH_TO},           {"cc", IMAP_SEARCH_CC},
    {"bcc", IMAP_SEARCH_BCC},   {"subject", IMAP_SEARCH_SUBJECT}, {"body", IMAP_SEARCH_BODY},
    {"text", IMAP_SEARCH_TEXT},
};

static const struct {
	const char *name;
	enum imap_search_key key;
} date_keys[] = {
    {"since", IMAP_SEARCH_SINCE},
    {"before", IMAP_SEARCH_BEFORE},
    {"on", IMAP_SEARCH_ON},
};

/* bare components */
static const struct {
	const char *name;
	enum imap_search_key key;
} flag_keys[] = {
    {"seen", IMAP_SEARCH_SEEN},         {"unseen", IMAP_SEARCH_UNSEEN},
    {"flagged", IMAP_SEARCH_FLAGGED},   {"unflagged", IMAP_SEARCH_UNFLAGGED},
    {"answered", IMAP_SEARCH_ANSWERED}, {"unanswered", IMAP_SEARCH_UNANSWERED},
    {"draft", IMAP_SEARCH_DRAFT},       {"undraft", IMAP_SEARCH_UNDRAFT},
};

bool ifs_query_is_criterion(const char *component)
{
	if (strchr(component, '=') != NULL)
		return true;
	for (size_t i = 0; i < G_N_ELEMENTS(flag_keys); i++)
		if (g_ascii_strcasecmp(component, flag_keys[i].name) == 0)
			return true;
	return false;
}

/* Every key= name, for near misses. */
static const char *const value_keys[] = {
    "from",   "to", "cc",     "bcc",     "subject", "body",    "text", "since",
    "before", "on", "larger", "smaller", "header",  "keyword", "imap", "gmail"};

/* Levenshtein distance of a and b (lower-case ASCII compared), capped: any distance above
 * cap is cap + 1.  Names are short; longer ones are never near. */
static unsigned distance(const char *a, const char *b, unsigned cap)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[33];

	if (la > 32 || lb > 32 || (la > lb ? la - lb : lb - la) > cap)
		return cap + 1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned sub =
			    diag + (g_ascii_tolower(a[i - 1]) != g_ascii_tolower(b[j - 1]));
			row[j] = MIN(MIN(up + 1, row[j - 1] + 1), sub);
			diag = up;
		}
	}
	return MIN(row[lb], cap + 1);
}

bool ifs_query_near_miss(const char *component, char **hint_r)
{
	const char *colon = strchr(component, ':');
	/* one typo in a short word, two in a longer one */
	unsigned cap = strlen(component) >= 6 ? 2 : 1;

	*hint_r = NULL;
	if (ifs_query_is_criterion(component))
		return false;
	for (size_t i = 0; i < G_N_ELEMENTS(value_keys); i++) {
		size_t n = strlen(value_keys[i]);
		if (g_ascii_strcasecmp(component, value_keys[i]) == 0) {
			*hint_r = g_strdup_printf("%s needs a value: %s=VALUE", value_keys[i],
			                          value_keys[i]);
			return true;
		}
		if (colon != NULL && (size_t)(colon - component) == n &&
		    g_ascii_strncasecmp(component, value_keys[i], n) == 0) {
			*hint_r = g_strdup_printf("criteria are written %s=VALUE, with '='",
			                          value_keys[i]);
			return true;
		}
	}
	if (strlen(component) < 4)
		return false; /* "ab" is one typo from "cc", "on" and "to": not a near miss */
	for (size_t i = 0; i < G_N_ELEMENTS(flag_keys); i++) {
		if (distance(component, flag_keys[i].name, cap) <= cap) {
			*hint_r = g_strdup_printf("did you mean %s?", flag_keys[i].name);
			return true;
		}
	}
	for (size_t i = 0; i < G_N_ELEMENTS(value_keys); i++) {
		if (strlen(value_keys[i]) >= 4 && distance(component, value_keys[i], cap) <= cap) {
			*hint_r = g_strdup_printf("did you mean %s=VALUE?", value_keys[i]);
			return true;
		}
	}
	return false;
}

bool ifs_query_parse_date(const char *value, const GDate *today, int *year_r, int *month_r,
                          int *day_r)
{
	int y, m, d, end = 0;
	unsigned long n;
	char unit, *stop;

	/* YYYY-MM-DD, digits only (sscanf alone would take signs and spaces: "2025-+1-01") */
	if (strlen(value) == 10 && value[4] == '-' && value[7] == '-' &&
	    strspn(value, "0123456789") == 4 && strspn(value + 5, "0123456789") == 2 &&
	    strspn(value + 8, "0123456789") == 2 &&
	    sscanf(value, "%4d-%2d-%2d%n", &y, &m, &d, &end) == 3 && value[end] == '\0') {
		if (m < 1 || m > 12 || d < 1 || y < 1 ||
		    d > g_date_get_days_in_month((GDateMonth)m, (GDateYear)y))
			return false;
		*year_r = y;
		*month_r = m;
		*day_r = d;
		return true;
	}
	/* the IMAP form 1-Jan-2025 */
	if (imap_search_parse_date(value, year_r, month_r, day_r))
		return true;
	/* relative: 7d 2w 3m 1y, counted back from today */
	if (!g_ascii_isdigit(value[0]))
		return false;
	n = strtoul(value, &stop, 10);
	unit = (char)g_ascii_tolower(*stop);
	if (stop[0] == '\0' || stop[1] != '\0' || n > 100000 || !strchr("dwmy", unit) ||
	    today == NULL || !g_date_valid(today))
		return false;
	/* GLib will not go back before 1 January of year 1 (a critical, and the date left as it
	 * was): refuse such a date here instead of searching from today */
	if ((unit == 'd' && n >= g_date_get_julian(today)) ||
	    (unit == 'w' && n * 7 >= g_date_get_julian(today)) ||
	    (unit == 'm' &&
	     n > (g_date_get_year(today) - 1) * 12ul + g_date_get_month(today) - 1) ||
	    (unit == 'y' && n >= g_date_get_year(today)))
		return false;
	GDate when = *today;
	switch (unit) {
	case 'd':
		g_date_subtract_days(&when, (guint)n);
		break;
	case 'w':
		g_date_subtract_days(&when, (guint)n * 7);
		break;
	case 'm':
		g_date_subtract_months(&when, (guint)n);
		break;
	case 'y':
		g_date_subtract_years(&when, (guint)n);
		break;
	}
	if (!g_date_valid(&when) || g_date_get_year(&when) < 1)
		return false;
	*year_r = g_date_get_year(&when);
	*month_r = g_date_get_month(&when);
	*day_r = g_date_get_day(&when);
	return true;
}

bool ifs_query_parse_size(const char *value, uint64_t *bytes_r)
{
	char *end;
	uint64_t n, mult = 1;

	if (!g_ascii_isdigit(value[0]))
		return false;
	errno = 0;
	n = g_ascii_strtoull(value, &end, 10);
	if (errno != 0)
		return false;
	if (*end != '\0') {
		switch (g_ascii_toupper(*end)) {
		case 'K':
			mult = 1024;
			break;
		case 'M':
			mult = 1024 * 1024;
			break;
		case 'G':
			mult = 1024 * 1024 * 1024;
			break;
		default:
			return false;
		}
		if (end[1] != '\0')
			return false;
	}
	if (n > UINT32_MAX / mult)
		return false; /* IMAP sizes are 32-bit numbers */
	*bytes_r = n * mult;
	return true;
}

int ifs_query_from_component(const char *component, const GDate *today, struct imap_search **q_r,
                             char **why_r)
{
	const char *eq = strchr(component, '=');
	char *key;
	const char *value;
	int y, m, d, err = -EINVAL;

	*q_r = NULL;
	*why_r = NULL;
	if (eq == NULL) {
		for (size_t i = 0; i < G_N_ELEMENTS(flag_keys); i++) {
			if (g_ascii_strcasecmp(component, flag_keys[i].name) == 0) {
				*q_r = imap_search_new_flag(flag_keys[i].key);
				return 0;
			}
		}
		*why_r = g_strdup("not a search criterion (key=value, or a flag such as unseen)");
		return -EINVAL;
	}
	key = g_ascii_strdown(component, eq - component);
	value = eq + 1;
	if (*value == '\0') {
		*why_r = g_strdup_printf("%s= needs a value", key);
		goto out;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(string_keys); i++) {
		if (strcmp(key, string_keys[i].name) == 0) {
			if ((err = imap_search_new_string(string_keys[i].key, value, q_r)) < 0)
				*why_r = g_strdup("the value cannot be searched for (not UTF-8)");
			goto out;
		}
	}
	for (size_t i = 0; i < G_N_ELEMENTS(date_keys); i++) {
		if (strcmp(key, date_keys[i].name) == 0) {
			if (!ifs_query_parse_date(value, today, &y, &m, &d) ||
			    (err = imap_search_new_date(date_keys[i].key, y, m, d, q_r)) < 0) {
				err = -EINVAL;
				*why_r = g_strdup_printf("bad date \"%s\" (YYYY-MM-DD, 1-Jan-2025, or "
				                         "7d 2w 3m 1y ago)",
				                         value);
			}
			goto out;
		}
	}
	if (strcmp(key, "larger") == 0 || strcmp(key, "smaller") == 0) {
		uint64_t n;
		if (!ifs_query_parse_size(value, &n) ||
		    (err = imap_search_new_number(key[0] == 'l' ? IMAP_SEARCH_LARGER
		                                                : IMAP_SEARCH_SMALLER,
		                                  n, q_r)) < 0) {
			err = -EINVAL;
			*why_r = g_strdup_printf("bad size \"%s\" (bytes, or a number with K, M or G)",
			                         value);
		}
		goto out;
	}
	if (strcmp(key, "header") == 0) {
		const char *colon = strchr(value, ':');
		char *field = colon != NULL ? g_strndup(value, colon - value) : NULL;
		if (field == NULL || *field == '\0' ||
		    (err = imap_search_new_header(field, colon + 1, q_r)) < 0) {
			err = -EINVAL;
			*why_r = g_strdup("header= needs Name:value");
		}
		g_free(field);
		goto out;
	}
	if (strcmp(key, "keyword") == 0) {
		if ((err = imap_search_new_keyword(IMAP_SEARCH_KEYWORD, value, q_r)) < 0)
			*why_r = g_strdup_printf("bad keyword \"%s\" (an IMAP atom: no spaces, "
			                         "quotes, parentheses, braces, %%, * or ])",
			                         value);
		goto out;
	}
	if (strcmp(key, "imap") == 0) {
		char *perr = NULL;
		if ((err = imap_search_parse(value, q_r, &perr)) < 0) {
			*why_r = g_strdup_printf("bad IMAP search expression: %s", perr);
			g_free(perr);
		} else if (imap_search_uses_gmail(*q_r)) {
			/* only through gmail=, where the server's support is checked */
			g_clear_pointer(q_r, imap_search_free);
			err = -EINVAL;
			*why_r = g_strdup("X-GM-RAW is written gmail=QUERY");
		}
		goto out;
	}
	if (strcmp(key, "gmail") == 0) {
		if ((err = imap_search_new_string(IMAP_SEARCH_X_GM_RAW, value, q_r)) < 0)
			*why_r = g_strdup("the value cannot be searched for (not UTF-8)");
		goto out;
	}
	*why_r = g_strdup_printf("unknown search key \"%s\"", key);
out:
	g_free(key);
	return err;
}
