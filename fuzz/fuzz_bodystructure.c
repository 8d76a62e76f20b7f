/* fuzz_bodystructure.c — libFuzzer target for the BODYSTRUCTURE parser (imap/bodystructure.c).
 *
 * The input is the text of a BODYSTRUCTURE value.  It is parsed as text and, wrapped in a
 * FETCH answer, through the response parser and imap_bodystructure_from_arg: both must agree
 * (abort() if not).  A tree that parses is checked whole: sections, preorder indexes, the caps,
 * imap_part_find of every section, imap_part_copy; then formatted, parsed again and compared
 * field by field, and the second formatting must equal the first (the canonical text).  A
 * refusal must come with a reason.  Leaks and overflows are the sanitizers' to find.
 */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void params_equal(const struct imap_param *a, unsigned na, const struct imap_param *b,
                         unsigned nb)
{
	check(na == nb);
	for (unsigned i = 0; i < na; i++)
		check(strcmp(a[i].name, b[i].name) == 0 && strcmp(a[i].value, b[i].value) == 0);
}

static bool str_equal(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void trees_equal(const struct imap_part *a, const struct imap_part *b)
{
	check(a->kind == b->kind && a->size == b->size && a->lines == b->lines &&
	      a->index == b->index && a->n_parts == b->n_parts);
	check(str_equal(a->section, b->section) && str_equal(a->type, b->type) &&
	      str_equal(a->subtype, b->subtype) && str_equal(a->id, b->id) &&
	      str_equal(a->description, b->description) && str_equal(a->encoding, b->encoding) &&
	      str_equal(a->disposition, b->disposition));
	params_equal(a->params, a->n_params, b->params, b->n_params);
	params_equal(a->disp_params, a->n_disp_params, b->disp_params, b->n_disp_params);
	for (unsigned i = 0; i < a->n_parts; i++)
		trees_equal(&a->parts[i], &b->parts[i]);
}

/* The tree's own invariants (imap.h); returns the number of parts under p. */
static unsigned check_tree(const struct imap_part *root, const struct imap_part *p, unsigned depth,
                           unsigned *next_index)
{
	check(depth <= IMAP_PART_MAX_DEPTH);
	check(p->index == (*next_index)++);
	check(p->section != NULL && p->type != NULL && p->subtype != NULL);
	const struct imap_part *f = imap_part_find(root, p->section);
	check(f != NULL && strcmp(f->section, p->section) == 0 && f->index <= p->index);
	switch (p->kind) {
	case IMAP_PART_MULTIPART:
		check(p->n_parts >= 1 && strcmp(p->type, "multipart") == 0 && p->size == 0);
		break;
	case IMAP_PART_MESSAGE:
		check(p->n_parts == 1 && strcmp(p->type, "message") == 0);
		break;
	case IMAP_PART_LEAF:
		check(p->n_parts == 0 && p->parts == NULL);
		break;
	default:
		abort();
	}
	unsigned n = 1;
	for (unsigned i = 0; i < p->n_parts; i++) {
		const struct imap_part *c = &p->parts[i];
		/* a child's section: the parent's plus ".k", or a message's multipart body's own */
		if (p->kind == IMAP_PART_MESSAGE && c->kind == IMAP_PART_MULTIPART) {
			check(strcmp(c->section, p->section) == 0);
		} else {
			char *want = p->section[0] == '\0'
			                 ? g_strdup_printf("%u", i + 1)
			                 : g_strdup_printf("%s.%u", p->section, i + 1);
			check(strcmp(c->section, want) == 0);
			g_free(want);
		}
		n += check_tree(root, c, depth + 1, next_index);
	}
	for (unsigned i = 0; i < p->n_params; i++)
		check(imap_part_param(p, p->params[i].name) != NULL);
	return n;
}

/* The same text as a FETCH answer, through the response parser and the arg path. */
static int parse_as_fetch(const uint8_t *data, size_t size, struct imap_part **root_r)
{
	static const char head[] = "* 1 FETCH (UID 1 BODYSTRUCTURE ";
	GByteArray *line = g_byte_array_new();
	g_byte_array_append(line, (const guint8 *)head, sizeof(head) - 1);
	g_byte_array_append(line, data, (guint)size);
	g_byte_array_append(line, (const guint8 *)")\r\n", 3);
	struct imap_parser *p = imap_parser_new(0, 0);
	struct imap_response *resp = NULL;
	size_t used;
	int err = -EBADMSG;
	*root_r = NULL;
	if (imap_parser_feed(p, line->data, line->len, &used, &resp) == IMAP_PARSE_OK &&
	    used == line->len && resp->nargs == 3 && resp->args[2].type == IMAP_ARG_LIST &&
	    resp->args[2].len == 4) {
		char *why = NULL;
		err = imap_bodystructure_from_arg(&resp->args[2].u.items[3], root_r, &why);
		check((err == 0) == (why == NULL));
		g_free(why);
	}
	imap_response_free(resp);
	imap_parser_free(p);
	g_byte_array_unref(line);
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_part *t = NULL, *f = NULL;
	char *why = NULL;
	int err = imap_bodystructure_parse((const char *)data, size, &t, &why);
	check(err == 0 || err == -EBADMSG);
	check((err == 0) == (t != NULL) && (err == 0) == (why == NULL));
	g_free(why);

	/* a CR/LF inside the text could end the FETCH line early and leave the rest to look like
	 * another response: compare only inputs without bare line ends outside literals, i.e.
	 * compare when the FETCH path consumed everything as one response */
	int ferr = parse_as_fetch(data, size, &f);
	if (err == 0 && ferr == 0)
		trees_equal(t, f);
	else if (memchr(data, '\n', size) == NULL && memchr(data, '\r', size) == NULL)
		check(err == ferr);
	imap_part_free(f);

	if (t != NULL) {
		unsigned next = 0;
		unsigned n = check_tree(t, t, 1, &next);
		check(n <= IMAP_PART_MAX_PARTS && n == next);
		check(strcmp(t->section, t->kind == IMAP_PART_MULTIPART ? "" : "1") == 0);

		char *text = imap_bodystructure_format(t);
		struct imap_part *again = NULL;
		check(imap_bodystructure_parse(text, strlen(text), &again, NULL) == 0);
		trees_equal(t, again);
		char *text2 = imap_bodystructure_format(again);
		check(strcmp(text, text2) == 0);

		struct imap_part *copy = imap_part_copy(again);
		imap_part_free(again);
		trees_equal(t, copy);
		imap_part_free(copy);
		g_free(text);
		g_free(text2);
	}
	imap_part_free(t);
	return 0;
}
