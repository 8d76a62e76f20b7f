/* parser.c — incremental parser for IMAP server responses.
 *
 * Bytes go in as they arrive from the socket, in chunks of any size (one byte at a time works);
 * complete responses come out as a small tree (struct imap_response / struct imap_arg): atoms,
 * quoted strings with escapes, literals {n}, {n+} and ~{n}, NIL, nested lists, and for status
 * responses the "[code]" and text.  The state survives between calls, so there is no line-length
 * limit of the kind that breaks imaplib; memory stays bounded by explicit caps instead: response
 * text (IMAP_MAX_RESPONSE_TEXT), token count, list depth, literal size (64-bit with overflow
 * check), and the buffered-literal cap.  Body literals of FETCH responses can be streamed to a
 * callback instead of being buffered, so a 50 MB message never sits in memory.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

enum pstate {
	P_START, /* first byte of a response */
	P_TAG,   /* inside the tag */
	P_SP,    /* between tokens */
	P_ATOM,
	P_TILDE, /* saw '~', maybe literal8 */
	P_QUOTED,
	P_QESC,    /* after a backslash in a quoted string */
	P_LIT_LEN, /* inside {...} */
	P_LIT_CR,  /* after '}' */
	P_LIT_LF,  /* after '}' CR */
	P_LIT_DATA,
	P_RT_START, /* right after a status word */
	P_RT_SP,    /* after the space following a status word */
	P_CODE,     /* inside [...] */
	P_CODE_END, /* after ']' */
	P_TEXT,     /* free text up to the end of the line */
	P_CR,       /* CR seen at the end of the response, LF expected */
};

enum lit_mode {
	LIT_BUFFER,
	LIT_STREAM,
	LIT_SKIP,
};

struct imap_parser {
	uint64_t max_literal;
	unsigned max_depth;
	size_t max_text;
	const struct imap_parser_stream *stream;

	enum pstate state;
	GByteArray *tok;  /* the token being read */
	GPtrArray *stack; /* of GArray<struct imap_arg>: [0] is the top level */
	GStringChunk *strings;
	size_t text_bytes; /* non-literal bytes of this response so far */
	size_t tokens;
	unsigned bracket;   /* '[' nesting inside an atom */
	unsigned top_index; /* tokens completed at depth 0 (not counting the tag) */

	struct imap_response *resp; /* being built: kind, tag, status */
	GString *code;
	GString *text;
	bool have_code;

	/* literal in progress */
	uint64_t lit_size;
	uint64_t lit_left;
	bool lit_digits;
	bool lit_plus;
	enum lit_mode lit_mode;

	/* FETCH tracking for streaming */
	bool is_fetch;
	bool have_uid;
	uint32_t uid;

	char *error;
	int err;
};

static void free_args(struct imap_arg *args, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			free_args(args[i].u.items, args[i].len);
	}
	g_free(args);
}

void imap_response_free(struct imap_response *resp)
{
	if (resp == NULL)
		return;
	g_free(resp->tag);
	g_free(resp->code);
	g_free(resp->text);
	free_args(resp->args, resp->nargs);
	if (resp->strings != NULL)
		g_string_chunk_free(resp->strings);
	g_free(resp);
}

void imap_parser_reset(struct imap_parser *p)
{
	/* Elements of open lists may own closed sub-lists; free them properly. */
	while (p->stack->len > 0) {
		GArray *a = g_ptr_array_steal_index(p->stack, p->stack->len - 1);
		unsigned n = a->len;
		free_args((struct imap_arg *)(void *)g_array_free(a, FALSE), n);
	}
	if (p->strings != NULL)
		g_string_chunk_free(p->strings);
	p->strings = NULL;
	imap_response_free(p->resp);
	p->resp = NULL;
	g_byte_array_set_size(p->tok, 0);
	g_string_truncate(p->code, 0);
	g_string_truncate(p->text, 0);
	p->have_code = false;
	p->state = P_START;
	p->text_bytes = 0;
	p->tokens = 0;
	p->bracket = 0;
	p->top_index = 0;
	p->lit_size = p->lit_left = 0;
	p->lit_digits = p->lit_plus = false;
	p->lit_mode = LIT_BUFFER;
	p->is_fetch = p->have_uid = false;
	p->uid = 0;
	g_clear_pointer(&p->error, g_free);
	p->err = 0;
}

struct imap_parser *imap_parser_new(uint64_t max_literal, unsigned max_depth)
{
	struct imap_parser *p = g_new0(struct imap_parser, 1);
	p->max_literal = max_literal ? max_literal : IMAP_DEFAULT_MAX_LITERAL;
	p->max_depth = max_depth ? max_depth : IMAP_DEFAULT_MAX_DEPTH;
	p->max_text = IMAP_MAX_RESPONSE_TEXT;
	p->tok = g_byte_array_new();
	p->stack = g_ptr_array_new();
	p->code = g_string_new(NULL);
	p->text = g_string_new(NULL);
	imap_parser_reset(p);
	return p;
}

void imap_parser_free(struct imap_parser *p)
{
	if (p == NULL)
		return;
	imap_parser_reset(p);
	g_ptr_array_unref(p->stack);
	g_byte_array_unref(p->tok);
	g_string_free(p->code, TRUE);
	g_string_free(p->text, TRUE);
	g_free(p);
}

void imap_parser_set_stream(struct imap_parser *p, const struct imap_parser_stream *stream)
{
	p->stream = stream;
}

void imap_parser_set_max_text(struct imap_parser *p, size_t max_text)
{
	p->max_text = max_text;
}

bool imap_parser_in_literal(const struct imap_parser *p)
{
	return p->state == P_LIT_DATA;
}

const char *imap_parser_error(const struct imap_parser *p)
{
	return p->error != NULL ? p->error : "";
}

int imap_parser_errno(const struct imap_parser *p)
{
	return p->err;
}

static enum imap_parse_result fail(struct imap_parser *p, int err, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static enum imap_parse_result fail(struct imap_parser *p, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_free(p->error);
	p->error = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	p->err = err;
	return IMAP_PARSE_BAD;
}

static GArray *top(struct imap_parser *p)
{
	return g_ptr_array_index(p->stack, p->stack->len - 1);
}

static unsigned depth(const struct imap_parser *p)
{
	return p->stack->len - 1;
}

static void begin_response(struct imap_parser *p)
{
	p->resp = g_new0(struct imap_response, 1);
	p->strings = g_string_chunk_new(4096);
	g_ptr_array_add(p->stack, g_array_new(FALSE, TRUE, sizeof(struct imap_arg)));
}

static bool status_word(const char *s, enum imap_status *st_r)
{
	static const struct {
		const char *word;
		enum imap_status st;
	} words[] = {
	    {"OK", IMAP_STATUS_OK},   {"NO", IMAP_STATUS_NO},           {"BAD", IMAP_STATUS_BAD},
	    {"BYE", IMAP_STATUS_BYE}, {"PREAUTH", IMAP_STATUS_PREAUTH},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(words); i++) {
		if (g_ascii_strcasecmp(s, words[i].word) == 0) {
			*st_r = words[i].st;
			return true;
		}
	}
	return false;
}

static bool prefix_ci(const char *s, const char *prefix)
{
	return g_ascii_strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Append a finished token to the current list and do the bookkeeping that depends on
 * position: status detection at depth 0, FETCH/UID tracking at depth 1. */
static enum imap_parse_result add_arg(struct imap_parser *p, struct imap_arg *arg)
{
	if (++p->tokens > IMAP_MAX_RESPONSE_TOKENS)
		return fail(p, -EPROTO, "response has more than %u tokens",
		            IMAP_MAX_RESPONSE_TOKENS);
	GArray *cur = top(p);
	if (depth(p) == 1 && p->is_fetch && cur->len % 2 == 1) {
		const struct imap_arg *key = &g_array_index(cur, struct imap_arg, cur->len - 1);
		uint64_t n;
		if (imap_arg_is_atom(key, "UID") && imap_arg_number(arg, &n) && n <= UINT32_MAX) {
			p->uid = (uint32_t)n;
			p->have_uid = true;
		}
	}
	g_array_append_val(cur, *arg);
	if (depth(p) == 0) {
		p->top_index++;
		const struct imap_arg *a = &g_array_index(cur, struct imap_arg, cur->len - 1);
		enum imap_status st;
		if (p->top_index == 1 && a->type == IMAP_ARG_ATOM && status_word(a->u.str, &st)) {
			p->resp->status = st;
			/* the status word itself is not kept in args */
			g_array_set_size(cur, cur->len - 1);
			p->state = P_RT_START;
			return IMAP_PARSE_OK;
		}
		if (p->top_index == 2 && p->resp->kind == IMAP_RESP_UNTAGGED &&
		    imap_arg_is_atom(a, "FETCH"))
			p->is_fetch = true;
	}
	p->state = P_SP;
	return IMAP_PARSE_OK;
}

static enum imap_parse_result finish_atom(struct imap_parser *p)
{
	struct imap_arg arg = {0};
	if (p->tok->len == 3 && g_ascii_strncasecmp((const char *)p->tok->data, "NIL", 3) == 0) {
		arg.type = IMAP_ARG_NIL;
	} else {
		arg.type = IMAP_ARG_ATOM;
		arg.len = p->tok->len;
		arg.u.str =
		    g_string_chunk_insert_len(p->strings, (const char *)p->tok->data, p->tok->len);
	}
	g_byte_array_set_size(p->tok, 0);
	return add_arg(p, &arg);
}

static enum imap_parse_result finish_string(struct imap_parser *p)
{
	struct imap_arg arg = {0};
	arg.type = IMAP_ARG_STRING;
	arg.len = p->tok->len;
	arg.u.str = g_string_chunk_insert_len(p->strings, (const char *)p->tok->data, p->tok->len);
	g_byte_array_set_size(p->tok, 0);
	return add_arg(p, &arg);
}

static enum imap_parse_result open_list(struct imap_parser *p)
{
	if (depth(p) + 1 > p->max_depth)
		return fail(p, -EPROTO, "response nests lists deeper than %u levels", p->max_depth);
	if (++p->tokens > IMAP_MAX_RESPONSE_TOKENS)
		return fail(p, -EPROTO, "response has more than %u tokens",
		            IMAP_MAX_RESPONSE_TOKENS);
	g_ptr_array_add(p->stack, g_array_new(FALSE, TRUE, sizeof(struct imap_arg)));
	return IMAP_PARSE_OK;
}

static enum imap_parse_result close_list(struct imap_parser *p)
{
	if (depth(p) == 0)
		return fail(p, -EPROTO, "unbalanced ')' in response");
	GArray *a = g_ptr_array_steal_index(p->stack, p->stack->len - 1);
	struct imap_arg arg = {0};
	arg.type = IMAP_ARG_LIST;
	arg.len = a->len;
	arg.u.items = (struct imap_arg *)(void *)g_array_free(a, FALSE);
	p->tokens--; /* counted at open */
	return add_arg(p, &arg);
}

/* Called with the literal's size known and its header (including CRLF) consumed. */
static enum imap_parse_result start_literal(struct imap_parser *p)
{
	uint64_t size = p->lit_size;
	if (size > p->max_literal)
		return fail(p, -EPROTO,
		            "server sent a literal of %" G_GUINT64_FORMAT
		            " bytes, over the limit of %" G_GUINT64_FORMAT " bytes",
		            size, p->max_literal);
	GArray *cur = top(p);
	bool body = false;
	const char *item = NULL;
	if (p->is_fetch && depth(p) == 1 && cur->len % 2 == 1) {
		const struct imap_arg *key = &g_array_index(cur, struct imap_arg, cur->len - 1);
		item = key->type == IMAP_ARG_ATOM ? key->u.str : NULL;
		body = key->type == IMAP_ARG_ATOM &&
		       (prefix_ci(key->u.str, "BODY[") || prefix_ci(key->u.str, "BINARY[") ||
		        g_ascii_strcasecmp(key->u.str, "RFC822") == 0);
	}
	p->lit_left = size;
	p->lit_mode = LIT_BUFFER;
	if (body && p->stream != NULL && p->have_uid) {
		int r = p->stream->begin(p->stream->ctx, p->uid, item, size);
		if (r < 0)
			return fail(p, r, "body sink refused the message (%s)", g_strerror(-r));
		p->lit_mode = r == 1 ? LIT_SKIP : LIT_STREAM;
	} else if (!body && size > IMAP_MAX_BUFFERED_LITERAL) {
		return fail(p, -EPROTO,
		            "server sent a literal of %" G_GUINT64_FORMAT
		            " bytes, over the limit of %u bytes for data kept in memory",
		            size, IMAP_MAX_BUFFERED_LITERAL);
	} else if (size > G_MAXUINT32 / 2) {
		/* a body buffered because its UID came late: GByteArray cannot go further */
		return fail(p, -EPROTO,
		            "server sent a literal of %" G_GUINT64_FORMAT
		            " bytes, too large to buffer",
		            size);
	}
	p->state = P_LIT_DATA;
	return IMAP_PARSE_OK;
}

static enum imap_parse_result finish_literal(struct imap_parser *p)
{
	if (p->lit_mode == LIT_BUFFER) {
		return finish_string(p);
	}
	if (p->lit_mode == LIT_STREAM) {
		int r = p->stream->end(p->stream->ctx, p->uid);
		if (r < 0)
			return fail(p, r, "body sink failed (%s)", g_strerror(-r));
	}
	struct imap_arg arg = {0};
	arg.type = IMAP_ARG_STREAMED;
	arg.u.streamed_size = p->lit_size;
	p->lit_mode = LIT_BUFFER;
	return add_arg(p, &arg);
}

static struct imap_response *finish_response(struct imap_parser *p)
{
	struct imap_response *resp = p->resp;
	GArray *a = g_ptr_array_steal_index(p->stack, 0);
	resp->nargs = a->len;
	resp->args = (struct imap_arg *)(void *)g_array_free(a, FALSE);
	resp->strings = p->strings;
	if (p->have_code)
		resp->code = g_strndup(p->code->str, p->code->len);
	if (resp->status != IMAP_STATUS_NONE || resp->kind == IMAP_RESP_CONTINUATION)
		resp->text = g_strndup(p->text->str, p->text->len);
	p->strings = NULL;
	p->resp = NULL;
	imap_parser_reset(p);
	return resp;
}

static bool count_text(struct imap_parser *p, size_t *counted, size_t upto)
{
	if (upto > *counted) {
		size_t n = upto - *counted;
		if (p->text_bytes + n > p->max_text)
			return false;
		p->text_bytes += n;
		*counted = upto;
	}
	return true;
}

static enum imap_parse_result too_long(struct imap_parser *p)
{
	return fail(p, -EPROTO, "response longer than %zu bytes (excluding literals)", p->max_text);
}

static bool is_ctl(uint8_t c)
{
	return c < 0x20 || c == 0x7f;
}

/* End of the response line (CRLF or bare LF).  Lists must be closed. */
static enum imap_parse_result end_line(struct imap_parser *p)
{
	if (depth(p) > 0)
		return fail(p, -EPROTO, "response line ends inside a parenthesised list");
	if (p->resp->kind == IMAP_RESP_TAGGED && p->resp->status == IMAP_STATUS_NONE)
		return fail(p, -EPROTO, "tagged response without OK, NO or BAD");
	if (p->resp->kind == IMAP_RESP_UNTAGGED && p->resp->status == IMAP_STATUS_NONE &&
	    p->top_index == 0)
		return fail(p, -EPROTO, "empty untagged response");
	return IMAP_PARSE_OK;
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const uint8_t *buf, size_t len,
                                        size_t *consumed_r, struct imap_response **resp_r)
{
	size_t i = 0;
	size_t counted = 0; /* bytes before this offset were counted in text_bytes */
	enum imap_parse_result r;
	*resp_r = NULL;
	*consumed_r = 0;
	if (p->err != 0)
		return IMAP_PARSE_BAD;

	while (i < len) {
		uint8_t c = buf[i];

		if (p->state == P_LIT_DATA) {
			size_t n = len - i;
			if (n > p->lit_left)
				n = (size_t)p->lit_left;
			if (p->lit_mode == LIT_BUFFER) {
				g_byte_array_append(p->tok, buf + i, (guint)n);
			} else if (p->lit_mode == LIT_STREAM && n > 0) {
				int e = p->stream->data(p->stream->ctx, buf + i, n);
				if (e < 0) {
					*consumed_r = i;
					return fail(p, e, "body sink failed (%s)", g_strerror(-e));
				}
			}
			i += n;
			p->lit_left -= n;
			if (p->lit_left == 0 && (r = finish_literal(p)) != IMAP_PARSE_OK)
				goto bad;
			continue;
		}

		/* everything else counts against the response-text cap (each byte once, even
		 * when a state hands it on to the next state) */
		if (!count_text(p, &counted, i + 1)) {
			r = too_long(p);
			goto bad;
		}

		switch (p->state) {
		case P_START:
			begin_response(p);
			if (c == '+') {
				p->resp->kind = IMAP_RESP_CONTINUATION;
				p->state = P_RT_START;
				i++;
				break;
			}
			p->state = P_TAG;
			continue; /* reprocess c as part of the tag */
		case P_TAG:
			if (c == ' ') {
				if (p->tok->len == 0) {
					r = fail(p, -EPROTO, "response starts with a space");
					goto bad;
				}
				if (p->tok->len == 1 && p->tok->data[0] == '*') {
					p->resp->kind = IMAP_RESP_UNTAGGED;
				} else {
					p->resp->kind = IMAP_RESP_TAGGED;
					p->resp->tag =
					    g_strndup((const char *)p->tok->data, p->tok->len);
				}
				g_byte_array_set_size(p->tok, 0);
				p->state = P_SP;
			} else if (is_ctl(c) || c == '(' || c == ')' || c == '"' || c == '{' ||
			           c == '%' || c >= 0x80) {
				r = fail(p, -EPROTO, "malformed response tag");
				goto bad;
			} else {
				g_byte_array_append(p->tok, &c, 1);
			}
			i++;
			break;
		case P_SP:
			i++;
			switch (c) {
			case ' ':
				break;
			case '(':
				if ((r = open_list(p)) != IMAP_PARSE_OK)
					goto bad;
				break;
			case ')':
				if ((r = close_list(p)) != IMAP_PARSE_OK)
					goto bad;
				break;
			case '"':
				p->state = P_QUOTED;
				break;
			case '{':
				p->lit_size = 0;
				p->lit_digits = p->lit_plus = false;
				p->state = P_LIT_LEN;
				break;
			case '~':
				p->state = P_TILDE;
				break;
			case '\r':
				p->state = P_CR;
				break;
			case '\n':
				if ((r = end_line(p)) != IMAP_PARSE_OK)
					goto bad;
				*consumed_r = i;
				*resp_r = finish_response(p);
				return IMAP_PARSE_OK;
			default:
				if (is_ctl(c)) {
					r = fail(p, -EPROTO, "control character 0x%02x in response",
					         c);
					goto bad;
				}
				i--;
				p->state = P_ATOM;
				break;
			}
			break;
		case P_TILDE:
			if (c == '{') {
				i++;
				p->lit_size = 0;
				p->lit_digits = p->lit_plus = false;
				p->state = P_LIT_LEN;
			} else {
				g_byte_array_append(p->tok, (const guint8 *)"~", 1);
				p->state = P_ATOM;
			}
			break;
		case P_ATOM: {
			/* take a run of plain atom characters at once: a 10 MB SEARCH line is
			 * mostly that */
			size_t j = i;
			while (j < len && buf[j] > ' ' && buf[j] != 0x7f && buf[j] != '(' &&
			       buf[j] != ')' && buf[j] != '[' && buf[j] != ']' && buf[j] != '"' &&
			       p->bracket == 0)
				j++;
			if (j > i) {
				if (!count_text(p, &counted, j)) {
					r = too_long(p);
					goto bad;
				}
				g_byte_array_append(p->tok, buf + i, (guint)(j - i));
				i = j;
				break;
			}
			if (p->bracket > 0) {
				if (c == '\r' || c == '\n' || c == 0) {
					r = fail(p, -EPROTO, "unterminated '[' in response");
					goto bad;
				}
				if (c == '[') {
					if (++p->bracket > p->max_depth) {
						r = fail(p, -EPROTO, "brackets nested too deeply");
						goto bad;
					}
				} else if (c == ']') {
					p->bracket--;
				}
				g_byte_array_append(p->tok, &c, 1);
				i++;
				break;
			}
			if (c == '[') {
				p->bracket = 1;
				g_byte_array_append(p->tok, &c, 1);
				i++;
				break;
			}
			if (c == ']') {
				/* a stray ']' in an atom: tolerate, servers put it in flags */
				g_byte_array_append(p->tok, &c, 1);
				i++;
				break;
			}
			if (c == '"') {
				r = fail(p, -EPROTO, "quote inside an atom");
				goto bad;
			}
			if (c == 0 || (is_ctl(c) && c != '\r' && c != '\n')) {
				r = fail(p, -EPROTO, "control character 0x%02x in response", c);
				goto bad;
			}
			/* delimiter: finish the atom and let P_SP handle c */
			if ((r = finish_atom(p)) != IMAP_PARSE_OK)
				goto bad;
			break;
		}
		case P_QUOTED: {
			size_t j = i;
			while (j < len && buf[j] != '"' && buf[j] != '\\' && buf[j] != '\r' &&
			       buf[j] != '\n' && buf[j] != 0)
				j++;
			if (j > i) {
				if (!count_text(p, &counted, j)) {
					r = too_long(p);
					goto bad;
				}
				g_byte_array_append(p->tok, buf + i, (guint)(j - i));
				i = j;
				break;
			}
			i++;
			if (c == '"') {
				if ((r = finish_string(p)) != IMAP_PARSE_OK)
					goto bad;
			} else if (c == '\\') {
				p->state = P_QESC;
			} else {
				r = fail(p, -EPROTO, "unterminated quoted string");
				goto bad;
			}
			break;
		}
		case P_QESC:
			i++;
			if (c == '\r' || c == '\n' || c == 0) {
				r = fail(p, -EPROTO, "unterminated quoted string");
				goto bad;
			}
			g_byte_array_append(p->tok, &c, 1);
			p->state = P_QUOTED;
			break;
		case P_LIT_LEN:
			i++;
			if (c >= '0' && c <= '9' && !p->lit_plus) {
				unsigned d = c - '0';
				if (p->lit_size > (UINT64_MAX - d) / 10) {
					r = fail(p, -EPROTO,
					         "literal size does not fit in 64 bits");
					goto bad;
				}
				p->lit_size = p->lit_size * 10 + d;
				p->lit_digits = true;
			} else if (c == '+' && p->lit_digits && !p->lit_plus) {
				p->lit_plus = true;
			} else if (c == '}' && p->lit_digits) {
				p->state = P_LIT_CR;
			} else {
				r = fail(p, -EPROTO, "malformed literal size");
				goto bad;
			}
			break;
		case P_LIT_CR:
			i++;
			if (c == '\r') {
				p->state = P_LIT_LF;
			} else if (c == '\n') {
				if ((r = start_literal(p)) != IMAP_PARSE_OK)
					goto bad;
			} else {
				r = fail(p, -EPROTO, "literal size not followed by end of line");
				goto bad;
			}
			if (p->state == P_LIT_DATA && p->lit_left == 0 &&
			    (r = finish_literal(p)) != IMAP_PARSE_OK)
				goto bad;
			break;
		case P_LIT_LF:
			i++;
			if (c != '\n') {
				r = fail(p, -EPROTO, "literal size not followed by end of line");
				goto bad;
			}
			if ((r = start_literal(p)) != IMAP_PARSE_OK)
				goto bad;
			if (p->lit_left == 0 && (r = finish_literal(p)) != IMAP_PARSE_OK)
				goto bad;
			break;
		case P_RT_START:
			if (c == ' ') {
				i++;
				p->state = P_RT_SP;
			} else {
				p->state = P_RT_SP; /* tolerate a missing space */
			}
			break;
		case P_RT_SP:
			if (c == '[' && p->resp->kind != IMAP_RESP_CONTINUATION) {
				i++;
				p->have_code = true;
				p->state = P_CODE;
			} else {
				p->state = P_TEXT;
			}
			break;
		case P_CODE:
			i++;
			if (c == ']') {
				p->state = P_CODE_END;
			} else if (c == '\r' || c == '\n' || c == 0) {
				r = fail(p, -EPROTO, "unterminated response code");
				goto bad;
			} else {
				g_string_append_c(p->code, (char)c);
			}
			break;
		case P_CODE_END:
			if (c == ' ')
				i++;
			p->state = P_TEXT;
			break;
		case P_TEXT: {
			size_t j = i;
			while (j < len && buf[j] != '\r' && buf[j] != '\n' && buf[j] != 0)
				j++;
			if (j > i) {
				if (!count_text(p, &counted, j)) {
					r = too_long(p);
					goto bad;
				}
				g_string_append_len(p->text, (const char *)buf + i,
				                    (gssize)(j - i));
				i = j;
				break;
			}
			i++;
			if (c == 0) {
				r = fail(p, -EPROTO, "NUL in response text");
				goto bad;
			}
			if (c == '\r') {
				p->state = P_CR;
				break;
			}
			*consumed_r = i;
			*resp_r = finish_response(p);
			return IMAP_PARSE_OK;
		}
		case P_CR:
			i++;
			if (c != '\n') {
				r = fail(p, -EPROTO, "CR not followed by LF in response");
				goto bad;
			}
			if ((r = end_line(p)) != IMAP_PARSE_OK)
				goto bad;
			*consumed_r = i;
			*resp_r = finish_response(p);
			return IMAP_PARSE_OK;
		case P_LIT_DATA:
			g_assert_not_reached();
		}
		/* P_RT_* transitions may complete a line when the next byte is CR/LF: handled by
		 * P_TEXT, which treats CR/LF as the end. */
	}
	*consumed_r = i;
	return IMAP_PARSE_NEED_MORE;

bad:
	*consumed_r = i;
	return r;
}

/* ---- helpers over args ---------------------------------------------------------------- */

bool imap_arg_is_atom(const struct imap_arg *arg, const char *word)
{
	return arg->type == IMAP_ARG_ATOM && g_ascii_strcasecmp(arg->u.str, word) == 0;
}

const char *imap_arg_str(const struct imap_arg *arg)
{
	if (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_STRING)
		return arg->u.str;
	return NULL;
}

bool imap_parse_number(const char *s, size_t len, uint64_t *n_r)
{
	uint64_t n = 0;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = s[i] - '0';
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*n_r = n;
	return true;
}

bool imap_arg_number(const struct imap_arg *arg, uint64_t *n_r)
{
	if (arg->type != IMAP_ARG_ATOM)
		return false;
	return imap_parse_number(arg->u.str, arg->len, n_r);
}

struct imap_response *imap_parse_code(const char *code)
{
	/* "* X <code>\r\n" is parsed as an ordinary untagged response; the dummy X keeps a code
	 * such as "OK" from being taken for a status word. */
	struct imap_parser *p = imap_parser_new(0, 0);
	GString *line = g_string_new("* X ");
	g_string_append(line, code);
	g_string_append(line, "\r\n");
	struct imap_response *resp = NULL;
	size_t used;
	enum imap_parse_result r =
	    imap_parser_feed(p, (const uint8_t *)line->str, line->len, &used, &resp);
	if (r != IMAP_PARSE_OK || used != line->len) {
		imap_response_free(resp);
		resp = NULL;
	} else {
		/* drop the dummy */
		memmove(resp->args, resp->args + 1, (resp->nargs - 1) * sizeof(*resp->args));
		resp->nargs--;
	}
	g_string_free(line, TRUE);
	imap_parser_free(p);
	return resp;
}
