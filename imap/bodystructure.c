/* bodystructure.c — BODYSTRUCTURE (RFC 3501 7.4.2) into imap's own part tree, and back.
 *
 * A server's outline of a message is advisory: Gmail, Exchange and Outlook.com send broken
 * ones, and the caller (fs/) falls back to the whole message whenever this file says no.  So
 * the tree builder is strict: it accepts RFC 3501 body grammar plus the few tolerances imap.h
 * lists, and refuses everything else with -EBADMSG and a reason.  It works on the response
 * parser's arg tree (so a FETCH answer is not re-serialised) and the text form goes through
 * the same response parser: one parser, whose caps (list depth, token count, string sizes)
 * bound the input before this file sees it.  The builder recurses once per part level, and
 * refuses a level past IMAP_PART_MAX_DEPTH before descending into it, so the C stack stays
 * small whatever the server sends.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

/* Deepest list nesting of extension data we walk (body-extension is recursive). */
#define MAX_EXTENSION_DEPTH 64u
/* Longest section string: 32 levels of up to 5 digits and a dot. */
#define MAX_SECTION_LEN 200u

struct bs_ctx {
	unsigned n_parts;
	char *why;
};

static int bs_fail(struct bs_ctx *c, const char *section, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int bs_fail(struct bs_ctx *c, const char *section, const char *fmt, ...)
{
	if (c->why == NULL) {
		va_list ap;
		va_start(ap, fmt);
		char *msg = g_strdup_vprintf(fmt, ap);
		va_end(ap);
		c->why = g_strdup_printf("BODYSTRUCTURE part \"%s\": %s", section, msg);
		g_free(msg);
	}
	return -EBADMSG;
}

/* A string (quoted or literal) without NUL bytes: the tree keeps C strings. */
static bool is_string(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_STRING && strlen(a->u.str) == a->len;
}

static bool is_nstring(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_NIL || is_string(a);
}

static char *dup_nstring(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_NIL ? NULL : g_strdup(a->u.str);
}

static void free_params(struct imap_param *params, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		g_free(params[i].name);
		g_free(params[i].value);
	}
	g_free(params);
}

static void part_clear(struct imap_part *p)
{
	g_free(p->section);
	g_free(p->type);
	g_free(p->subtype);
	free_params(p->params, p->n_params);
	g_free(p->id);
	g_free(p->description);
	g_free(p->encoding);
	g_free(p->disposition);
	free_params(p->disp_params, p->n_disp_params);
	for (unsigned i = 0; i < p->n_parts; i++)
		part_clear(&p->parts[i]);
	g_free(p->parts);
}

void imap_part_free(struct imap_part *root)
{
	if (root == NULL)
		return;
	part_clear(root);
	g_free(root);
}

/* body-fld-param: NIL, or pairs of strings; () is tolerated as NIL. */
static int parse_params(struct bs_ctx *c, const char *section, const char *what,
                        const struct imap_arg *a, struct imap_param **params_r, unsigned *n_r)
{
	*params_r = NULL;
	*n_r = 0;
	if (a->type == IMAP_ARG_NIL)
		return 0;
	if (a->type != IMAP_ARG_LIST)
		return bs_fail(c, section, "%s are neither a list nor NIL", what);
	if (a->len % 2 != 0)
		return bs_fail(c, section, "%s have a name without a value", what);
	for (unsigned i = 0; i < a->len; i++)
		if (!is_string(&a->u.items[i]))
			return bs_fail(c, section, "%s hold something other than strings", what);
	if (a->len == 0)
		return 0;
	struct imap_param *params = g_new0(struct imap_param, a->len / 2);
	for (unsigned i = 0; i < a->len / 2; i++) {
		params[i].name = g_strdup(a->u.items[2 * i].u.str);
		params[i].value = g_strdup(a->u.items[2 * i + 1].u.str);
	}
	*params_r = params;
	*n_r = a->len / 2;
	return 0;
}

/* body-fld-dsp: NIL or (string params); a bare string is tolerated (Exchange). */
static int parse_disposition(struct bs_ctx *c, struct imap_part *p, const struct imap_arg *a)
{
	if (a->type == IMAP_ARG_NIL)
		return 0;
	if (is_string(a)) {
		p->disposition = g_ascii_strdown(a->u.str, -1);
		return 0;
	}
	if (a->type != IMAP_ARG_LIST || a->len != 2 || !is_string(&a->u.items[0]))
		return bs_fail(c, p->section, "malformed disposition");
	p->disposition = g_ascii_strdown(a->u.items[0].u.str, -1);
	return parse_params(c, p->section, "disposition parameters", &a->u.items[1],
	                    &p->disp_params, &p->n_disp_params);
}

/* body-extension: nstring / number / "(" body-extension *(SP body-extension) ")" */
static bool valid_extension(const struct imap_arg *a, unsigned depth)
{
	uint64_t n;
	if (is_nstring(a) || imap_arg_number(a, &n))
		return true;
	if (a->type != IMAP_ARG_LIST || a->len == 0 || depth >= MAX_EXTENSION_DEPTH)
		return false;
	for (unsigned i = 0; i < a->len; i++)
		if (!valid_extension(&a->u.items[i], depth + 1))
			return false;
	return true;
}

/* The extension data from the disposition on (items[from..]): dsp, lang, loc, extensions. */
static int parse_ext_tail(struct bs_ctx *c, struct imap_part *p, const struct imap_arg *items,
                          unsigned from, unsigned len)
{
	int err;
	if (from < len && (err = parse_disposition(c, p, &items[from])) < 0)
		return err;
	if (from + 1 < len) {
		/* body-fld-lang: nstring / "(" string *(SP string) ")" */
		const struct imap_arg *lang = &items[from + 1];
		bool ok = is_nstring(lang);
		if (lang->type == IMAP_ARG_LIST && lang->len > 0) {
			ok = true;
			for (unsigned i = 0; i < lang->len; i++)
				ok = ok && is_string(&lang->u.items[i]);
		}
		if (!ok)
			return bs_fail(c, p->section, "malformed language");
	}
	if (from + 2 < len && !is_nstring(&items[from + 2]))
		return bs_fail(c, p->section, "malformed location");
	for (unsigned i = from + 3; i < len; i++)
		if (!valid_extension(&items[i], 0))
			return bs_fail(c, p->section, "malformed extension data");
	return 0;
}

static bool valid_address_list(const struct imap_arg *a)
{
	if (a->type == IMAP_ARG_NIL)
		return true;
	if (a->type != IMAP_ARG_LIST || a->len == 0)
		return false;
	for (unsigned i = 0; i < a->len; i++) {
		const struct imap_arg *addr = &a->u.items[i];
		if (addr->type != IMAP_ARG_LIST || addr->len != 4)
			return false;
		for (unsigned j = 0; j < 4; j++)
			if (!is_nstring(&addr->u.items[j]))
				return false;
	}
	return true;
}

/* envelope: (date subject from sender reply-to to cc bcc in-reply-to message-id) */
static bool valid_envelope(const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_LIST || a->len != 10)
		return false;
	for (unsigned i = 0; i < 10; i++) {
		bool ok = (i < 2 || i > 7) ? is_nstring(&a->u.items[i])
		                           : valid_address_list(&a->u.items[i]);
		if (!ok)
			return false;
	}
	return true;
}

static char *child_section(const char *parent, unsigned i)
{
	return parent[0] == '\0' ? g_strdup_printf("%u", i) : g_strdup_printf("%s.%u", parent, i);
}

static bool is_multipart_arg(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_LIST && a->len > 0 && a->u.items[0].type == IMAP_ARG_LIST;
}

static int parse_part(struct bs_ctx *c, const struct imap_arg *a, struct imap_part *p,
                      char *section, unsigned depth);

static int parse_multipart(struct bs_ctx *c, const struct imap_arg *a, struct imap_part *p,
                           unsigned depth)
{
	const struct imap_arg *items = a->u.items;
	unsigned k = 0;
	int err;
	while (k < a->len && items[k].type == IMAP_ARG_LIST)
		k++;
	if (k == a->len || !is_string(&items[k]))
		return bs_fail(c, p->section, "multipart without a subtype");
	p->kind = IMAP_PART_MULTIPART;
	p->type = g_strdup("multipart");
	p->subtype = g_ascii_strdown(items[k].u.str, -1);
	p->parts = g_new0(struct imap_part, k);
	p->n_parts = k;
	for (unsigned i = 0; i < k; i++) {
		char *sec = child_section(p->section, i + 1);
		if ((err = parse_part(c, &items[i], &p->parts[i], sec, depth + 1)) < 0)
			return err;
	}
	/* body-ext-mpart: params [dsp [lang [loc *extension]]] */
	if (k + 1 < a->len && (err = parse_params(c, p->section, "multipart parameters",
	                                          &items[k + 1], &p->params, &p->n_params)) < 0)
		return err;
	return parse_ext_tail(c, p, items, k + 2, a->len);
}

static int parse_single(struct bs_ctx *c, const struct imap_arg *a, struct imap_part *p,
                        unsigned depth)
{
	const struct imap_arg *items = a->u.items;
	unsigned len = a->len;
	int err;

	if (len < 7)
		return bs_fail(c, p->section, "a part with %u fields, fewer than 7", len);
	if (!is_string(&items[0]) || !is_string(&items[1]))
		return bs_fail(c, p->section, "type or subtype is not a string");
	p->type = g_ascii_strdown(items[0].u.str, -1);
	p->subtype = g_ascii_strdown(items[1].u.str, -1);
	if ((err = parse_params(c, p->section, "body parameters", &items[2], &p->params,
	                        &p->n_params)) < 0)
		return err;
	if (!is_nstring(&items[3]) || !is_nstring(&items[4]))
		return bs_fail(c, p->section, "malformed id or description");
	p->id = dup_nstring(&items[3]);
	p->description = dup_nstring(&items[4]);
	if (!is_string(&items[5]))
		return bs_fail(c, p->section, "the encoding is not a string");
	p->encoding = g_ascii_strdown(items[5].u.str, -1);
	if (!imap_arg_number(&items[6], &p->size))
		return bs_fail(c, p->section, "the size is not a number");

	unsigned next = 7;
	bool message = strcmp(p->type, "message") == 0 &&
	               (strcmp(p->subtype, "rfc822") == 0 ||
	                (strcmp(p->subtype, "global") == 0 && len >= 10 &&
	                 items[7].type == IMAP_ARG_LIST && items[8].type == IMAP_ARG_LIST));
	if (message) {
		p->kind = IMAP_PART_MESSAGE;
		if (len < 10)
			return bs_fail(c, p->section,
			               "a message part without envelope, body or lines");
		if (!valid_envelope(&items[7]))
			return bs_fail(c, p->section, "malformed envelope");
		if (items[8].type != IMAP_ARG_LIST)
			return bs_fail(c, p->section, "the message part's body is not a list");
		char *sec = is_multipart_arg(&items[8]) ? g_strdup(p->section)
		                                        : child_section(p->section, 1);
		p->parts = g_new0(struct imap_part, 1);
		p->n_parts = 1;
		if ((err = parse_part(c, &items[8], &p->parts[0], sec, depth + 1)) < 0)
			return err;
		if (!imap_arg_number(&items[9], &p->lines))
			return bs_fail(c, p->section, "the line count is not a number");
		next = 10;
	} else {
		p->kind = IMAP_PART_LEAF;
		if (strcmp(p->type, "text") == 0) {
			if (len < 8 || !imap_arg_number(&items[7], &p->lines))
				return bs_fail(c, p->section, "a text part without a line count");
			next = 8;
		}
	}
	/* body-ext-1part: md5 [dsp [lang [loc *extension]]] */
	if (next < len && !is_nstring(&items[next]))
		return bs_fail(c, p->section, "malformed MD5");
	return parse_ext_tail(c, p, items, next + 1, len);
}

/* Fill p (zeroed) from a; section is taken (owned by p from here on). */
static int parse_part(struct bs_ctx *c, const struct imap_arg *a, struct imap_part *p,
                      char *section, unsigned depth)
{
	p->section = section;
	if (depth > IMAP_PART_MAX_DEPTH)
		return bs_fail(c, section, "parts nested deeper than %u levels",
		               IMAP_PART_MAX_DEPTH);
	if (strlen(section) > MAX_SECTION_LEN)
		return bs_fail(c, "", "section number too long");
	if (++c->n_parts > IMAP_PART_MAX_PARTS)
		return bs_fail(c, section, "more than %u parts", IMAP_PART_MAX_PARTS);
	p->index = c->n_parts - 1;
	if (a->type == IMAP_ARG_NIL)
		return bs_fail(c, section, "NIL where a part belongs");
	if (a->type != IMAP_ARG_LIST)
		return bs_fail(c, section, "a string or atom where a part belongs");
	if (a->len == 0)
		return bs_fail(c, section, "an empty list where a part belongs");
	if (a->u.items[0].type == IMAP_ARG_LIST)
		return parse_multipart(c, a, p, depth);
	return parse_single(c, a, p, depth);
}

int imap_bodystructure_from_arg(const struct imap_arg *arg, struct imap_part **root_r, char **why_r)
{
	struct bs_ctx c = {0};
	struct imap_part *root = g_new0(struct imap_part, 1);
	char *section = g_strdup(is_multipart_arg(arg) ? "" : "1");
	int err = parse_part(&c, arg, root, section, 1);
	*root_r = NULL;
	if (err < 0) {
		imap_part_free(root);
		if (why_r != NULL)
			*why_r = c.why;
		else
			g_free(c.why);
		return err;
	}
	g_free(c.why);
	if (why_r != NULL)
		*why_r = NULL;
	*root_r = root;
	return 0;
}

int imap_bodystructure_parse(const char *text, size_t len, struct imap_part **root_r, char **why_r)
{
	/* "* X <text>" is an ordinary untagged response to the parser (X keeps the list from
	 * being read as a status word's text), with the list one level less deep than inside a
	 * FETCH answer, so text and FETCH accept the same lists. */
	struct imap_parser *p = imap_parser_new(0, IMAP_DEFAULT_MAX_DEPTH - 1);
	GByteArray *line = g_byte_array_sized_new((guint)MIN(len + 6, G_MAXUINT32 / 2));
	struct imap_response *resp = NULL;
	size_t used = 0;
	int err = -EBADMSG;

	*root_r = NULL;
	if (why_r != NULL)
		*why_r = NULL;
	if (len > IMAP_MAX_RESPONSE_TEXT + (size_t)IMAP_MAX_BUFFERED_LITERAL) {
		if (why_r != NULL)
			*why_r = g_strdup("BODYSTRUCTURE text too long");
		goto out;
	}
	g_byte_array_append(line, (const guint8 *)"* X ", 4);
	g_byte_array_append(line, (const guint8 *)text, (guint)len);
	g_byte_array_append(line, (const guint8 *)"\r\n", 2);
	enum imap_parse_result r = imap_parser_feed(p, line->data, line->len, &used, &resp);
	if (r != IMAP_PARSE_OK || used != line->len) {
		if (why_r != NULL)
			*why_r = g_strdup_printf("BODYSTRUCTURE text does not parse: %s",
			                         r == IMAP_PARSE_BAD  ? imap_parser_error(p)
			                         : r == IMAP_PARSE_OK ? "text after the list"
			                                              : "incomplete");
		goto out;
	}
	if (resp->status != IMAP_STATUS_NONE || resp->nargs != 2 ||
	    resp->args[1].type != IMAP_ARG_LIST) {
		if (why_r != NULL)
			*why_r = g_strdup("BODYSTRUCTURE text is not one parenthesised list");
		goto out;
	}
	err = imap_bodystructure_from_arg(&resp->args[1], root_r, why_r);
out:
	imap_response_free(resp);
	g_byte_array_unref(line);
	imap_parser_free(p);
	return err;
}

/* ---- format ------------------------------------------------------------------------------ */

static void fmt_string(GString *o, const char *s)
{
	if (strpbrk(s, "\r\n") != NULL) {
		g_string_append_printf(o, "{%zu}\r\n%s", strlen(s), s);
		return;
	}
	g_string_append_c(o, '"');
	for (const char *q = s; *q != '\0'; q++) {
		if (*q == '"' || *q == '\\')
			g_string_append_c(o, '\\');
		g_string_append_c(o, *q);
	}
	g_string_append_c(o, '"');
}

static void fmt_nstring(GString *o, const char *s)
{
	if (s == NULL)
		g_string_append(o, "NIL");
	else
		fmt_string(o, s);
}

static void fmt_params(GString *o, const struct imap_param *params, unsigned n)
{
	if (n == 0) {
		g_string_append(o, "NIL");
		return;
	}
	g_string_append_c(o, '(');
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			g_string_append_c(o, ' ');
		fmt_string(o, params[i].name);
		g_string_append_c(o, ' ');
		fmt_string(o, params[i].value);
	}
	g_string_append_c(o, ')');
}

static void fmt_disposition(GString *o, const struct imap_part *p)
{
	if (p->disposition == NULL) {
		g_string_append(o, "NIL");
		return;
	}
	g_string_append_c(o, '(');
	fmt_string(o, p->disposition);
	g_string_append_c(o, ' ');
	fmt_params(o, p->disp_params, p->n_disp_params);
	g_string_append_c(o, ')');
}

static void fmt_part(GString *o, const struct imap_part *p)
{
	g_string_append_c(o, '(');
	if (p->kind == IMAP_PART_MULTIPART) {
		for (unsigned i = 0; i < p->n_parts; i++)
			fmt_part(o, &p->parts[i]);
		g_string_append_c(o, ' ');
		fmt_string(o, p->subtype);
		g_string_append_c(o, ' ');
		fmt_params(o, p->params, p->n_params);
		g_string_append_c(o, ' ');
		fmt_disposition(o, p);
		g_string_append_c(o, ')');
		return;
	}
	fmt_string(o, p->type);
	g_string_append_c(o, ' ');
	fmt_string(o, p->subtype);
	g_string_append_c(o, ' ');
	fmt_params(o, p->params, p->n_params);
	g_string_append_c(o, ' ');
	fmt_nstring(o, p->id);
	g_string_append_c(o, ' ');
	fmt_nstring(o, p->description);
	g_string_append_c(o, ' ');
	fmt_string(o, p->encoding != NULL ? p->encoding : "7bit");
	g_string_append_printf(o, " %" G_GUINT64_FORMAT, p->size);
	if (p->kind == IMAP_PART_MESSAGE && p->n_parts == 1) {
		g_string_append(o, " (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ");
		fmt_part(o, &p->parts[0]);
		g_string_append_printf(o, " %" G_GUINT64_FORMAT, p->lines);
	} else if (strcmp(p->type, "text") == 0) {
		g_string_append_printf(o, " %" G_GUINT64_FORMAT, p->lines);
	}
	g_string_append(o, " NIL ");
	fmt_disposition(o, p);
	g_string_append_c(o, ')');
}

char *imap_bodystructure_format(const struct imap_part *root)
{
	if (root == NULL)
		return NULL;
	GString *o = g_string_new(NULL);
	fmt_part(o, root);
	return g_string_free(o, FALSE);
}

/* ---- copy, find, param ------------------------------------------------------------------ */

static struct imap_param *copy_params(const struct imap_param *params, unsigned n)
{
	if (n == 0)
		return NULL;
	struct imap_param *c = g_new0(struct imap_param, n);
	for (unsigned i = 0; i < n; i++) {
		c[i].name = g_strdup(params[i].name);
		c[i].value = g_strdup(params[i].value);
	}
	return c;
}

static void copy_into(struct imap_part *dst, const struct imap_part *src)
{
	*dst = *src;
	dst->section = g_strdup(src->section);
	dst->type = g_strdup(src->type);
	dst->subtype = g_strdup(src->subtype);
	dst->params = copy_params(src->params, src->n_params);
	dst->id = g_strdup(src->id);
	dst->description = g_strdup(src->description);
	dst->encoding = g_strdup(src->encoding);
	dst->disposition = g_strdup(src->disposition);
	dst->disp_params = copy_params(src->disp_params, src->n_disp_params);
	dst->parts = src->n_parts > 0 ? g_new0(struct imap_part, src->n_parts) : NULL;
	for (unsigned i = 0; i < src->n_parts; i++)
		copy_into(&dst->parts[i], &src->parts[i]);
}

struct imap_part *imap_part_copy(const struct imap_part *root)
{
	if (root == NULL)
		return NULL;
	struct imap_part *c = g_new0(struct imap_part, 1);
	copy_into(c, root);
	return c;
}

const struct imap_part *imap_part_find(const struct imap_part *root, const char *section)
{
	if (root == NULL || section == NULL)
		return NULL;
	if (strcmp(root->section, section) == 0)
		return root;
	for (unsigned i = 0; i < root->n_parts; i++) {
		const struct imap_part *f = imap_part_find(&root->parts[i], section);
		if (f != NULL)
			return f;
	}
	return NULL;
}

const char *imap_part_param(const struct imap_part *p, const char *name)
{
	for (unsigned i = 0; p != NULL && i < p->n_params; i++)
		if (g_ascii_strcasecmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}
