/* args.c — building command lines safely: quoted strings, literals, search criteria, UID sets.
 *
 * Every string that comes from outside the program (mailbox names, search words, user names,
 * passwords) reaches the wire through imap_cmd_add_string(), which picks a quoted string for
 * printable ASCII and a literal for anything else and refuses CR, LF and NUL outright.  So no
 * argument can end the command line early and smuggle in a command of its own.  A command is
 * kept as chunks split at synchronising literals, because the client must wait for the
 * server's "+" before sending the literal's bytes.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

/* LITERAL- (RFC 7888) allows non-synchronising literals only up to this size. */
#define LITERAL_MINUS_MAX 4096

struct imap_cmd *imap_cmd_new(void)
{
	struct imap_cmd *cmd = g_new0(struct imap_cmd, 1);
	cmd->chunks = g_ptr_array_new();
	g_ptr_array_add(cmd->chunks, g_string_new(NULL));
	return cmd;
}

void imap_cmd_free(struct imap_cmd *cmd)
{
	if (cmd == NULL)
		return;
	for (guint i = 0; i < cmd->chunks->len; i++) {
		GString *s = g_ptr_array_index(cmd->chunks, i);
		/* may hold credentials: wipe before freeing */
		if (cmd->sensitive)
			memset(s->str, 0, s->allocated_len);
		g_string_free(s, TRUE);
	}
	g_ptr_array_unref(cmd->chunks);
	g_free(cmd->log_prefix);
	g_free(cmd->final_code);
	g_free(cmd);
}

static GString *last_chunk(struct imap_cmd *cmd)
{
	return g_ptr_array_index(cmd->chunks, cmd->chunks->len - 1);
}

void imap_cmd_add_text(struct imap_cmd *cmd, const char *text)
{
	g_string_append(last_chunk(cmd), text);
}

void imap_cmd_finish(struct imap_cmd *cmd)
{
	g_string_append(last_chunk(cmd), "\r\n");
}

int imap_cmd_add_string(struct imap_cmd *cmd, const char *s, size_t len,
                        enum imap_literal_mode mode)
{
	bool plain = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\0')
			return -EINVAL;
		/* quoted strings may carry only 7-bit text (RFC 3501 TEXT-CHAR) */
		if (c < 0x20 || c >= 0x7f)
			plain = false;
	}
	GString *chunk = last_chunk(cmd);
	if (plain) {
		g_string_append_c(chunk, '"');
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				g_string_append_c(chunk, '\\');
			g_string_append_c(chunk, s[i]);
		}
		g_string_append_c(chunk, '"');
		return 0;
	}
	bool nonsync =
	    mode == IMAP_LITERAL_PLUS || (mode == IMAP_LITERAL_MINUS && len <= LITERAL_MINUS_MAX);
	g_string_append_printf(chunk, "{%zu%s}\r\n", len, nonsync ? "+" : "");
	if (!nonsync) {
		chunk = g_string_new(NULL);
		g_ptr_array_add(cmd->chunks, chunk);
	}
	g_string_append_len(chunk, s, (gssize)len);
	return 0;
}

/* The criteria format may contain atom characters (RFC 3501 ATOM-CHAR, plus '*' for sequence
 * sets), spaces, balanced parentheses and "%s".  That excludes quotes, backslashes, braces, '%',
 * ']', controls and everything non-ASCII, so the format cannot start a string or a literal of
 * its own — only the %s arguments can, and they go through imap_cmd_add_string(). */
static bool criteria_char_ok(unsigned char c)
{
	if (c == ' ' || c == '(' || c == ')')
		return true;
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("\"\\{}%]", c) == NULL;
}

int imap_format_search(struct imap_cmd *cmd, bool esearch, enum imap_literal_mode mode,
                       const char *criteria, va_list ap)
{
	/* first pass: validate the format and the arguments, and find out whether any argument
	 * needs CHARSET UTF-8 */
	GPtrArray *vals = g_ptr_array_new();
	bool non_ascii = false;
	int depth = 0;
	int ret = -EINVAL;
	if (*criteria == '\0')
		goto out;
	for (const char *f = criteria; *f != '\0'; f++) {
		if (f[0] == '%' && f[1] == 's') {
			const char *v = va_arg(ap, const char *);
			if (v == NULL)
				goto out;
			for (const unsigned char *q = (const unsigned char *)v; *q; q++) {
				if (*q == '\r' || *q == '\n')
					goto out;
				if (*q >= 0x80)
					non_ascii = true;
			}
			/* CHARSET UTF-8 promises valid UTF-8 */
			if (!g_utf8_validate(v, -1, NULL))
				goto out;
			g_ptr_array_add(vals, (gpointer)v);
			f++;
			continue;
		}
		if (!criteria_char_ok((unsigned char)*f))
			goto out;
		if (*f == '(')
			depth++;
		else if (*f == ')' && --depth < 0)
			goto out;
	}
	if (depth != 0)
		goto out;

	ret = 0;
	imap_cmd_add_text(cmd, "UID SEARCH ");
	if (esearch)
		imap_cmd_add_text(cmd, "RETURN (ALL) ");
	if (non_ascii)
		imap_cmd_add_text(cmd, "CHARSET UTF-8 ");
	guint vi = 0;
	GString *text = g_string_new(NULL);
	for (const char *f = criteria; *f != '\0'; f++) {
		if (f[0] == '%' && f[1] == 's') {
			imap_cmd_add_text(cmd, text->str);
			g_string_truncate(text, 0);
			const char *v = g_ptr_array_index(vals, vi++);
			ret = imap_cmd_add_string(cmd, v, strlen(v), mode);
			if (ret < 0)
				break;
			f++;
		} else {
			g_string_append_c(text, *f);
		}
	}
	imap_cmd_add_text(cmd, text->str);
	g_string_free(text, TRUE);
out:
	g_ptr_array_unref(vals);
	return ret;
}

bool imap_uidset_valid(const char *set)
{
	/* set = (number / "*") [":" (number / "*")] *("," ...) ; numbers are non-zero 32-bit */
	const char *p = set;
	if (*p == '\0')
		return false;
	for (;;) {
		for (int side = 0; side < 2; side++) {
			if (*p == '*') {
				p++;
			} else {
				const char *s = p;
				while (*p >= '0' && *p <= '9')
					p++;
				uint64_t n;
				if (!imap_parse_number(s, (size_t)(p - s), &n) || n == 0 ||
				    n > UINT32_MAX)
					return false;
			}
			if (side == 0 && *p == ':')
				p++;
			else
				break;
		}
		if (*p == '\0')
			return true;
		if (*p != ',')
			return false;
		p++;
	}
}

/* Read one number of a set; '*' gives UINT32_MAX. */
static bool set_number(const char **p, uint32_t *n_r, bool allow_star)
{
	if (allow_star && **p == '*') {
		(*p)++;
		*n_r = UINT32_MAX;
		return true;
	}
	const char *s = *p;
	while (**p >= '0' && **p <= '9')
		(*p)++;
	uint64_t n;
	if (!imap_parse_number(s, (size_t)(*p - s), &n) || n == 0 || n > UINT32_MAX)
		return false;
	*n_r = (uint32_t)n;
	return true;
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

bool imap_seqset_expand(const char *set, GArray *out, size_t max_count)
{
	const char *p = set;
	size_t start_len = out->len;
	for (;;) {
		uint32_t lo, hi;
		if (!set_number(&p, &lo, false))
			return false;
		hi = lo;
		if (*p == ':') {
			p++;
			if (!set_number(&p, &hi, false))
				return false;
		}
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if ((uint64_t)(out->len - start_len) + (hi - lo) + 1 > max_count)
			return false;
		for (uint64_t n = lo; n <= hi; n++) {
			uint32_t v = (uint32_t)n;
			g_array_append_val(out, v);
		}
		if (*p == '\0')
			break;
		if (*p != ',')
			return false;
		p++;
	}
	g_array_sort(out, cmp_u32);
	return true;
}

static gint cmp_range(gconstpointer a, gconstpointer b)
{
	const struct imap_uid_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

bool imap_seqset_ranges(const char *set, GArray *ranges)
{
	const char *p = set;
	for (;;) {
		struct imap_uid_range r;
		if (!set_number(&p, &r.lo, false))
			return false;
		r.hi = r.lo;
		if (*p == ':') {
			p++;
			if (!set_number(&p, &r.hi, false))
				return false;
		}
		if (r.lo > r.hi) {
			uint32_t t = r.lo;
			r.lo = r.hi;
			r.hi = t;
		}
		g_array_append_val(ranges, r);
		if (*p == '\0')
			break;
		if (*p != ',')
			return false;
		p++;
	}
	return true;
}

void imap_uid_ranges_normalise(GArray *ranges)
{
	guint w = 0;

	g_array_sort(ranges, cmp_range);
	for (guint r = 0; r < ranges->len; r++) {
		struct imap_uid_range cur = g_array_index(ranges, struct imap_uid_range, r);
		struct imap_uid_range *last =
		    w > 0 ? &g_array_index(ranges, struct imap_uid_range, w - 1) : NULL;
		/* overlapping or adjacent: one range */
		if (last != NULL && (uint64_t)cur.lo <= (uint64_t)last->hi + 1) {
			if (cur.hi > last->hi)
				last->hi = cur.hi;
			continue;
		}
		g_array_index(ranges, struct imap_uid_range, w++) = cur;
	}
	g_array_set_size(ranges, w);
}

bool imap_uid_ranges_contain(const GArray *ranges, uint32_t uid)
{
	guint lo = 0, hi = ranges->len;

	/* the last range starting at or below uid */
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		if (g_array_index(ranges, struct imap_uid_range, mid).lo <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && g_array_index(ranges, struct imap_uid_range, lo - 1).hi >= uid;
}

bool imap_uidset_contains(const char *set, uint32_t uid)
{
	const char *p = set;
	for (;;) {
		uint32_t lo, hi;
		if (!set_number(&p, &lo, true))
			return false;
		hi = lo;
		if (*p == ':') {
			p++;
			if (!set_number(&p, &hi, true))
				return false;
		}
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		/* "n:*" where n > UIDNEXT-1 still matches the last message (RFC 3501), so treat
		 * '*' as "anything from lo on" */
		if (uid >= lo && uid <= hi)
			return true;
		if (*p != ',')
			return false;
		p++;
	}
}
