/* limits.c — bounding what GMime has to build for one message.
 *
 * GMime turns every header field, parameter, address and part into objects of a few hundred
 * bytes each, so a 10 MB message of nothing but "X:y" lines, "; a=b" parameters or empty parts
 * costs gigabytes and tens of seconds.  Before GMime sees a message, this pass follows its
 * structure line by line — header blocks, the boundaries their Content-Type fields declare, the
 * parts those boundaries open — and, only if a limit is exceeded, makes a copy without the
 * excess: header fields beyond the per-block / per-message counts are left out, over-long
 * structured fields (Content-*, address lists) are cut, and the message ends before the part
 * that would exceed MIME_MAX_PARTS.  Mail within the limits is handed to GMime untouched.
 */
#include "mime-private.h"

#include <string.h>

/* Distinct boundaries remembered; each costs a header field, so this is never the bottleneck. */
#define MAX_BOUNDARIES   (2 * MIME_MAX_PARTS)
#define MAX_BOUNDARY_LEN 1000

struct shaper {
	const char *data;
	size_t len;
	GString *out;           /* NULL until the first change: then a copy of everything kept */
	size_t copied_to;       /* data[0..copied_to) has been dealt with (kept or dropped) */
	GHashTable *boundaries; /* char* set */
	size_t parts;
	size_t fields;
	size_t structured_bytes;
	bool changed;
};

/* Keep data[copied_to..upto): nothing to do until a change has started the copy. */
static void keep_until(struct shaper *s, size_t upto)
{
	if (s->out != NULL)
		g_string_append_len(s->out, s->data + s->copied_to, (gssize)(upto - s->copied_to));
	s->copied_to = upto;
}

/* Everything from copied_to up to here was kept; data[from..upto) is replaced by repl. */
static void replace(struct shaper *s, size_t from, size_t upto, const char *repl, size_t repl_len)
{
	if (s->out == NULL)
		s->out = g_string_new_len(s->data, (gssize)s->copied_to);
	keep_until(s, from);
	g_string_append_len(s->out, repl, (gssize)repl_len);
	s->copied_to = upto;
	s->changed = true;
}

static size_t line_end(const struct shaper *s, size_t pos)
{
	const char *nl = memchr(s->data + pos, '\n', s->len - pos);

	return nl != NULL ? (size_t)(nl - s->data) + 1 : s->len;
}

static bool is_blank_line(const char *p, size_t n)
{
	return n == 0 || (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n');
}

/* A header line: a field name (no blanks or controls) then ':'. */
static size_t header_name_len(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] != ':' && (unsigned char)p[i] > ' ' && p[i] != 0x7f)
		i++;
	/* GMime tolerates blanks between the name and the colon */
	size_t j = i;
	while (j < n && (p[j] == ' ' || p[j] == '\t'))
		j++;
	return (i > 0 && j < n && p[j] == ':') ? i : 0;
}

static bool name_is_structured(const char *name, size_t n)
{
	static const char *const addresses[] = {
	    "from",
	    "to",
	    "cc",
	    "bcc",
	    "reply-to",
	    "sender",
	    "resent-from",
	    "resent-to",
	    "resent-cc",
	    "resent-bcc",
	    "resent-sender",
	    "resent-reply-to",
	    "mail-followup-to",
	    "mail-reply-to",
	    "disposition-notification-to",
	    "return-receipt-to",
	    NULL,
	};

	if (n >= 8 && g_ascii_strncasecmp(name, "content-", 8) == 0)
		return true;
	for (size_t i = 0; addresses[i] != NULL; i++)
		if (strlen(addresses[i]) == n && g_ascii_strncasecmp(name, addresses[i], n) == 0)
			return true;
	return false;
}

/* Find the boundary parameter of a Content-Type field and remember it. */
static void learn_boundary(struct shaper *s, const char *field, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i++) {
		size_t j, start, end;
		if (g_ascii_strncasecmp(field + i, "boundary", 8) != 0)
			continue;
		j = i + 8;
		while (j < n && g_ascii_isspace(field[j]))
			j++;
		if (j >= n || field[j] != '=')
			continue;
		j++;
		while (j < n && g_ascii_isspace(field[j]))
			j++;
		if (j < n && field[j] == '"') {
			start = ++j;
			while (j < n && field[j] != '"' && field[j] != '\r' && field[j] != '\n')
				j++;
		} else {
			start = j;
			while (j < n && field[j] != ';' && !g_ascii_isspace(field[j]))
				j++;
		}
		end = j;
		while (end > start && (field[end - 1] == ' ' || field[end - 1] == '\t'))
			end--;
		if (end > start && end - start <= MAX_BOUNDARY_LEN &&
		    g_hash_table_size(s->boundaries) < MAX_BOUNDARIES)
			g_hash_table_add(s->boundaries, g_strndup(field + start, end - start));
	}
}

static bool declares_message(const char *field, size_t n)
{
	/* "Content-Type: message/rfc822" (or global/news): the body starts with a header block */
	const char *p = memchr(field, ':', n);
	size_t rest;

	if (p == NULL)
		return false;
	p++;
	rest = n - (size_t)(p - field);
	while (rest > 0 && g_ascii_isspace(*p)) {
		p++;
		rest--;
	}
	return (rest >= 14 && g_ascii_strncasecmp(p, "message/rfc822", 14) == 0) ||
	       (rest >= 14 && g_ascii_strncasecmp(p, "message/global", 14) == 0) ||
	       (rest >= 12 && g_ascii_strncasecmp(p, "message/news", 12) == 0);
}

/* Is the line data[pos..end) "--boundary" or "--boundary--" for a declared boundary?
 * Returns 1 for an opening delimiter, 2 for a closing one, 0 otherwise. */
static int delimiter_kind(const struct shaper *s, size_t pos, size_t end)
{
	const char *p = s->data + pos + 2;
	size_t n = end - pos - 2;
	char *key;
	int kind = 0;

	while (n > 0 &&
	       (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0 || n > MAX_BOUNDARY_LEN + 2)
		return 0;
	key = g_strndup(p, n);
	if (g_hash_table_contains(s->boundaries, key))
		kind = 1;
	else if (n > 2 && p[n - 1] == '-' && p[n - 2] == '-') {
		key[n - 2] = '\0';
		if (g_hash_table_contains(s->boundaries, key))
			kind = 2;
	}
	g_free(key);
	return kind;
}

/* One header block starting at pos; returns where its body starts and whether that body is an
 * embedded message (another header block). */
static size_t shape_header_block(struct shaper *s, size_t pos, bool *body_is_message)
{
	size_t block_fields = 0;

	*body_is_message = false;
	while (pos < s->len) {
		size_t end = line_end(s, pos), name_len, field_end, kept_end;
		const char *line = s->data + pos;

		if (is_blank_line(line, end - pos))
			return end;
		name_len = header_name_len(line, end - pos);
		if (name_len == 0 && line[0] != ' ' && line[0] != '\t')
			return pos; /* not a header: GMime starts the body here too */
		field_end = end;
		while (field_end < s->len &&
		       (s->data[field_end] == ' ' || s->data[field_end] == '\t'))
			field_end = line_end(s, field_end);

		kept_end = field_end;
		if (block_fields >= MIME_MAX_FIELDS_PER_BLOCK || s->fields >= MIME_MAX_FIELDS) {
			kept_end = pos; /* dropped */
		} else if (name_len > 0 && name_is_structured(line, name_len)) {
			size_t budget = MIME_MAX_STRUCTURED_BYTES - s->structured_bytes;
			size_t allowed = MIN(budget, MIME_MAX_STRUCTURED_FIELD);
			if (field_end - pos > allowed)
				kept_end = pos + allowed;
			s->structured_bytes += kept_end - pos;
		}
		if (kept_end > pos) {
			block_fields++;
			s->fields++;
			if (name_len == 12 && g_ascii_strncasecmp(line, "content-type", 12) == 0) {
				learn_boundary(s, line, kept_end - pos);
				*body_is_message = declares_message(line, kept_end - pos);
			}
		}
		keep_until(s, pos);
		if (kept_end == field_end) {
			keep_until(s, field_end);
		} else if (kept_end == pos) {
			replace(s, pos, field_end, "", 0);
		} else {
			/* cut: whatever was kept, then the line break the field needs */
			replace(s, pos, field_end, line, kept_end - pos);
			g_string_append_c(s->out, '\n');
		}
		pos = field_end;
	}
	return pos;
}

char *mime_limit_structure(const char *data, size_t len, size_t *len_r)
{
	struct shaper s = {0};
	size_t pos = 0;
	bool in_headers = true;

	s.data = data;
	s.len = len;
	s.boundaries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	while (pos < len) {
		if (in_headers) {
			bool message;
			pos = shape_header_block(&s, pos, &message);
			in_headers = message;
			continue;
		}
		size_t end = line_end(&s, pos);
		if (end - pos > 2 && data[pos] == '-' && data[pos + 1] == '-' &&
		    g_hash_table_size(s.boundaries) > 0) {
			int kind = delimiter_kind(&s, pos, end);
			if (kind == 1 && ++s.parts > MIME_MAX_PARTS) {
				/* the message ends before the part that would be one too many */
				replace(&s, pos, len, "", 0);
				pos = len;
				break;
			}
			if (kind == 1)
				in_headers = true;
		}
		pos = end;
	}
	keep_until(&s, len);
	g_hash_table_unref(s.boundaries);
	if (!s.changed) {
		if (s.out != NULL)
			g_string_free(s.out, TRUE);
		return NULL;
	}
	*len_r = s.out->len;
	return g_string_free(s.out, FALSE);
}
