/* pieces.c — fetching pieces of messages: BODYSTRUCTURE, headers, MIME headers, sections,
 * BINARY and BINARY.SIZE (imap_uid_fetch_pieces, imap_examine_fetch_pieces).
 *
 * Each request is one UID FETCH of one UID; the requests are pipelined (a window of them
 * written ahead of their answers, imap-private.h; in rounds of at most
 * IMAP_PIECES_MAX_IN_FLIGHT), optionally after
 * an EXAMINE whose gate (struct imap_examine_gate) keeps answers from being used before the
 * mailbox is known to be the right one.  Answers are matched to requests by UID and to items
 * by the name the server gives them; literals are streamed to the caller's sink through the
 * one response parser (imap_parser_stream), so nothing large is buffered.  Each request ends
 * with its own outcome: a server that cannot give a piece (NO [UNKNOWN-CTE], NO [PARSE]) says
 * so for that request alone, and the caller takes the whole message instead.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

#define MAX_SECTION_CHARS 128u

/* One request of the run, with what the matching needs. */
struct piece_req {
	char **names;     /* per item: the name its answer carries ("BODY[1]<0>"), new */
	guint8 *answered; /* per item: an answer was delivered (or is being streamed) */
	bool structure_done;
};

struct pieces_ctx {
	struct imap_conn *conn;
	struct imap_fetch_request *reqs;
	unsigned n;
	struct piece_req *pr;
	const struct imap_piece_sink *sink;
	struct imap_parser_stream stream;
	/* the round in flight: request first + i is command base + slots[i] of the pipeline
	 * (slots[i] < 0: a request that asks nothing, not sent), whose results are results[] */
	unsigned first, count, base;
	const int *results;
	const int *slots;
	struct imap_examine_gate *gate; /* pipelined after EXAMINE (else NULL) ... */
	uint32_t want_uidvalidity;      /* ... whose UIDVALIDITY must be this */
	/* the literal being streamed */
	unsigned cur_req, cur_item;
};

/* "1.2.3": components of digits, none empty, none zero or with a leading zero. */
static bool section_valid(const char *s)
{
	size_t len = strlen(s);
	if (len > MAX_SECTION_CHARS)
		return false;
	if (len == 0)
		return true;
	const char *p = s;
	for (;;) {
		if (*p < '1' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '\0')
			return true;
		if (*p != '.')
			return false;
		p++;
	}
}

/* The item as sent (spec) and the name its answer carries (name). */
static void item_text(const struct imap_fetch_item *it, GString *spec, GString *name)
{
	const char *s = it->section;
	const char *dot = s[0] != '\0' ? "." : "";
	switch (it->kind) {
	case IMAP_ITEM_BODY:
		g_string_printf(name, "BODY[%s]", s);
		break;
	case IMAP_ITEM_HEADER:
		g_string_printf(name, "BODY[%s%sHEADER]", s, dot);
		break;
	case IMAP_ITEM_MIME:
		g_string_printf(name, "BODY[%s.MIME]", s);
		break;
	case IMAP_ITEM_BINARY:
		g_string_printf(name, "BINARY[%s]", s);
		break;
	case IMAP_ITEM_BINARY_SIZE:
		g_string_printf(name, "BINARY.SIZE[%s]", s);
		break;
	}
	/* the request: BODY.PEEK / BINARY.PEEK so that nothing is marked \Seen */
	if (it->kind == IMAP_ITEM_BINARY_SIZE)
		g_string_assign(spec, name->str);
	else if (it->kind == IMAP_ITEM_BINARY)
		g_string_printf(spec, "BINARY.PEEK%s", name->str + strlen("BINARY"));
	else
		g_string_printf(spec, "BODY.PEEK%s", name->str + strlen("BODY"));
	if ((it->kind == IMAP_ITEM_BODY || it->kind == IMAP_ITEM_BINARY) && it->length > 0) {
		g_string_append_printf(spec, "<%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT ">",
		                       it->offset, it->length);
		g_string_append_printf(name, "<%" G_GUINT64_FORMAT ">", it->offset);
	}
}

static int validate(struct imap_conn *conn, const struct imap_fetch_request *reqs, unsigned n)
{
	bool binary = imap_conn_has_cap(conn, "BINARY");
	for (unsigned r = 0; r < n; r++) {
		if (reqs[r].uid == 0)
			return imap_conn_fail_errno(conn, -EINVAL, false, "UID 0 asked for");
		if (reqs[r].n_items > 0 && reqs[r].items == NULL)
			return imap_conn_fail_errno(conn, -EINVAL, false, "items missing");
		for (unsigned i = 0; i < reqs[r].n_items; i++) {
			const struct imap_fetch_item *it = &reqs[r].items[i];
			if (it->section == NULL || !section_valid(it->section))
				return imap_conn_fail_errno(
				    conn, -EINVAL, false, "invalid section \"%s\"",
				    it->section != NULL ? it->section : "(null)");
			if (it->kind > IMAP_ITEM_BINARY_SIZE)
				return imap_conn_fail_errno(conn, -EINVAL, false,
				                            "unknown item kind");
			if (it->kind == IMAP_ITEM_MIME && it->section[0] == '\0')
				return imap_conn_fail_errno(conn, -EINVAL, false,
				                            "MIME header of no part asked for");
			if (it->length > 0 && it->kind != IMAP_ITEM_BODY &&
			    it->kind != IMAP_ITEM_BINARY)
				return imap_conn_fail_errno(conn, -EINVAL, false,
				                            "a partial fetch of a header or size");
			if ((it->kind == IMAP_ITEM_BINARY || it->kind == IMAP_ITEM_BINARY_SIZE) &&
			    !binary)
				return imap_conn_fail_errno(conn, -EINVAL, false,
				                            "server %s does not offer BINARY",
				                            conn->host);
		}
	}
	return 0;
}

static struct imap_cmd *request_cmd(const struct imap_fetch_request *req)
{
	struct imap_cmd *cmd = imap_cmd_new();
	GString *text = g_string_new(NULL), *spec = g_string_new(NULL), *name = g_string_new(NULL);
	g_string_printf(text, "UID FETCH %u (UID", req->uid);
	if (req->bodystructure)
		g_string_append(text, " BODYSTRUCTURE");
	for (unsigned i = 0; i < req->n_items; i++) {
		item_text(&req->items[i], spec, name);
		g_string_append_c(text, ' ');
		g_string_append(text, spec->str);
	}
	g_string_append_c(text, ')');
	imap_cmd_add_text(cmd, text->str);
	g_string_free(text, TRUE);
	g_string_free(spec, TRUE);
	g_string_free(name, TRUE);
	return cmd;
}

static void ctx_init(struct pieces_ctx *pc, struct imap_conn *conn, struct imap_fetch_request *reqs,
                     unsigned n, const struct imap_piece_sink *sink)
{
	GString *spec = g_string_new(NULL), *name = g_string_new(NULL);
	memset(pc, 0, sizeof(*pc));
	pc->conn = conn;
	pc->reqs = reqs;
	pc->n = n;
	pc->sink = sink;
	pc->pr = g_new0(struct piece_req, n);
	for (unsigned r = 0; r < n; r++) {
		reqs[r].answered = false;
		pc->pr[r].names = g_new0(char *, reqs[r].n_items);
		pc->pr[r].answered = g_new0(guint8, reqs[r].n_items);
		for (unsigned i = 0; i < reqs[r].n_items; i++) {
			item_text(&reqs[r].items[i], spec, name);
			pc->pr[r].names[i] = g_strdup(name->str);
		}
	}
	g_string_free(spec, TRUE);
	g_string_free(name, TRUE);
}

static void ctx_clear(struct pieces_ctx *pc)
{
	for (unsigned r = 0; r < pc->n; r++) {
		for (unsigned i = 0; i < pc->reqs[r].n_items; i++)
			g_free(pc->pr[r].names[i]);
		g_free(pc->pr[r].names);
		g_free(pc->pr[r].answered);
	}
	g_free(pc->pr);
}

/* Forget what was delivered of requests [first, first + count) (they are asked again). */
static void ctx_reset(struct pieces_ctx *pc, unsigned first, unsigned count)
{
	for (unsigned r = first; r < first + count; r++) {
		memset(pc->pr[r].answered, 0, pc->reqs[r].n_items);
		pc->pr[r].structure_done = false;
	}
}

/* May answers be used now (the EXAMINE gate), and is request r's command still running? */
static bool usable(struct pieces_ctx *pc, unsigned r)
{
	if (pc->gate != NULL &&
	    (!imap_gate_open(pc->gate) || pc->gate->ex.st.uidvalidity != pc->want_uidvalidity))
		return false;
	int slot = pc->slots[r - pc->first];
	return slot >= 0 && pc->results[pc->base + slot] == IMAP_PIPELINE_PENDING;
}

/* The first request of the round for uid that asked for the item named name and has had no
 * answer to it: true and *req_r, *item_r; false when none. */
static bool find_item(struct pieces_ctx *pc, uint32_t uid, const char *name, unsigned *req_r,
                      unsigned *item_r)
{
	for (unsigned r = pc->first; r < pc->first + pc->count; r++) {
		if (pc->reqs[r].uid != uid || !usable(pc, r))
			continue;
		for (unsigned i = 0; i < pc->reqs[r].n_items; i++) {
			if (!pc->pr[r].answered[i] &&
			    g_ascii_strcasecmp(pc->pr[r].names[i], name) == 0) {
				*req_r = r;
				*item_r = i;
				return true;
			}
		}
	}
	return false;
}

static int stream_begin(void *ctx, uint32_t uid, const char *item, uint64_t size)
{
	struct pieces_ctx *pc = ctx;
	unsigned r, i;
	if (pc->sink->begin == NULL || item == NULL || !find_item(pc, uid, item, &r, &i))
		return 1; /* skip */
	pc->pr[r].answered[i] = 1;
	pc->cur_req = r;
	pc->cur_item = i;
	int e = pc->sink->begin(pc->sink->ctx, r, i, size);
	return e < 0 ? e : e > 0 ? 1 : 0;
}

static int stream_data(void *ctx, const void *buf, size_t len)
{
	struct pieces_ctx *pc = ctx;
	return pc->sink->data(pc->sink->ctx, buf, len);
}

static int stream_end(void *ctx, uint32_t uid)
{
	struct pieces_ctx *pc = ctx;
	return pc->sink->end(pc->sink->ctx, pc->cur_req, pc->cur_item);
}

static int sink_failed(struct imap_conn *conn, int err)
{
	return imap_conn_fail_errno(conn, err, true, "piece sink failed: %s", g_strerror(-err));
}

/* A value that was not streamed: a quoted string, NIL (empty), or a literal that came before
 * the UID. */
static int deliver_value(struct pieces_ctx *pc, uint32_t uid, const char *name,
                         const struct imap_arg *v)
{
	const struct imap_piece_sink *s = pc->sink;
	unsigned r, i;
	if (v->type != IMAP_ARG_STRING && v->type != IMAP_ARG_NIL)
		return 0; /* streamed already (or skipped), or not a value of this kind */
	if (s->begin == NULL || !find_item(pc, uid, name, &r, &i))
		return 0;
	pc->pr[r].answered[i] = 1;
	size_t len = v->type == IMAP_ARG_STRING ? v->len : 0;
	int e = s->begin(s->ctx, r, i, len);
	if (e > 0)
		return 0; /* the sink skips it */
	if (e == 0 && len > 0)
		e = s->data(s->ctx, v->u.str, len);
	if (e == 0)
		e = s->end(s->ctx, r, i);
	return e < 0 ? sink_failed(pc->conn, e) : 0;
}

static int deliver_size(struct pieces_ctx *pc, uint32_t uid, const char *name,
                        const struct imap_arg *v)
{
	unsigned r, i;
	uint64_t size;
	if (pc->sink->size == NULL || !imap_arg_number(v, &size) ||
	    !find_item(pc, uid, name, &r, &i))
		return 0;
	pc->pr[r].answered[i] = 1;
	int e = pc->sink->size(pc->sink->ctx, r, i, size);
	return e < 0 ? sink_failed(pc->conn, e) : 0;
}

static int deliver_structure(struct pieces_ctx *pc, uint32_t uid, const struct imap_arg *v)
{
	if (pc->sink->structure == NULL)
		return 0;
	for (unsigned r = pc->first; r < pc->first + pc->count; r++) {
		if (pc->reqs[r].uid != uid || !pc->reqs[r].bodystructure ||
		    pc->pr[r].structure_done || !usable(pc, r))
			continue;
		pc->pr[r].structure_done = true;
		struct imap_part *root = NULL;
		char *why = NULL;
		int err = imap_bodystructure_from_arg(v, &root, &why);
		if (err < 0) {
			/* for the sink to read, through imap_conn_error; not a failure of the
			 * connection */
			g_string_printf(pc->conn->error,
			                "server %s sent a BODYSTRUCTURE for UID %u "
			                "that is refused: %s",
			                pc->conn->host, uid, why);
			g_free(why);
		}
		int e = pc->sink->structure(pc->sink->ctx, r, root, err);
		imap_part_free(root);
		return e < 0 ? sink_failed(pc->conn, e) : 0;
	}
	return 0;
}

static int pieces_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct pieces_ctx *pc = ctx;
	int err;
	if (pc->gate != NULL && (err = imap_gate_examine_cb(conn, resp, pc->gate)) < 0)
		return err;
	const struct imap_arg *list = imap_fetch_list(resp);
	uint32_t uid;
	if (list == NULL || !imap_fetch_uid(list, &uid))
		return 0;
	for (unsigned r = pc->first; r < pc->first + pc->count; r++)
		if (pc->reqs[r].uid == uid && usable(pc, r))
			pc->reqs[r].answered = true;
	for (unsigned k = 0; k + 1 < list->len; k += 2) {
		const struct imap_arg *key = &list->u.items[k], *v = &list->u.items[k + 1];
		if (key->type != IMAP_ARG_ATOM)
			continue;
		if (g_ascii_strcasecmp(key->u.str, "BODYSTRUCTURE") == 0)
			err = deliver_structure(pc, uid, v);
		else if (g_ascii_strncasecmp(key->u.str, "BINARY.SIZE[", 12) == 0)
			err = deliver_size(pc, uid, key->u.str, v);
		else if (g_ascii_strncasecmp(key->u.str, "BODY[", 5) == 0 ||
		         g_ascii_strncasecmp(key->u.str, "BINARY[", 7) == 0)
			err = deliver_value(pc, uid, key->u.str, v);
		else
			err = 0;
		if (err < 0)
			return err;
	}
	return 0;
}

/* Does the tagged answer's code start with the atom word? */
static bool code_is(const char *code, const char *word)
{
	size_t n = strlen(word);
	return code != NULL && g_ascii_strncasecmp(code, word, n) == 0 &&
	       (code[n] == '\0' || code[n] == ' ');
}

/* A request's outcome from its command's result and tagged answer. */
static int request_result(const struct imap_cmd *cmd, int result)
{
	if (result < 0 && cmd->final_status == IMAP_STATUS_NO &&
	    (code_is(cmd->final_code, "UNKNOWN-CTE") || code_is(cmd->final_code, "PARSE")))
		return -EBADMSG;
	return result;
}

/* A request that asks for nothing (no BODYSTRUCTURE, no item) is answered without a command:
 * "UID FETCH n (UID)" would cost the server a lookup and the wire a line for nothing. */
static bool asks_nothing(const struct imap_fetch_request *req)
{
	return !req->bodystructure && req->n_items == 0;
}

/* Run requests [first, first + count) as commands after the n_pre commands of pre (the
 * EXAMINE, or none), pipelined.  results: n_pre + count entries. */
static int run_round(struct pieces_ctx *pc, struct imap_cmd **pre, unsigned n_pre, unsigned first,
                     unsigned count, int *results)
{
	struct imap_cmd **cmds = g_new0(struct imap_cmd *, n_pre + count);
	unsigned *which = g_new0(unsigned, count); /* cmds[n_pre + k] is request which[k] */
	int *slots = g_new0(int, count);           /* and request first + i is command slots[i] */
	unsigned sent = 0;
	int err = 0;

	for (unsigned i = 0; i < n_pre; i++)
		cmds[i] = pre[i];
	for (unsigned i = 0; i < count; i++) {
		if (asks_nothing(&pc->reqs[first + i])) {
			pc->reqs[first + i].result = 0;
			slots[i] = -1;
			continue;
		}
		slots[i] = (int)sent;
		which[sent] = first + i;
		cmds[n_pre + sent++] = request_cmd(&pc->reqs[first + i]);
	}
	pc->first = first;
	pc->count = count;
	pc->base = n_pre;
	pc->results = results;
	pc->slots = slots;
	if (n_pre + sent > 0) {
		imap_parser_set_stream(pc->conn->parser, &pc->stream);
		err = imap_conn_run_pipelined(pc->conn, cmds, n_pre + sent, pieces_cb, pc, results);
		imap_parser_set_stream(pc->conn->parser, NULL);
	}
	for (unsigned k = 0; k < sent; k++) {
		pc->reqs[which[k]].result = request_result(cmds[n_pre + k], results[n_pre + k]);
		imap_cmd_free(cmds[n_pre + k]);
	}
	pc->slots = NULL;
	g_free(slots);
	g_free(which);
	g_free(cmds);
	return err;
}

/* Requests [from, n) on the examined mailbox, round after round. */
static int run_rounds(struct pieces_ctx *pc, unsigned from)
{
	int *results = g_new0(int, IMAP_PIECES_MAX_IN_FLIGHT);
	pc->gate = NULL;
	for (unsigned first = from; first < pc->n && !pc->conn->broken;
	     first += IMAP_PIECES_MAX_IN_FLIGHT) {
		unsigned count = MIN(pc->n - first, IMAP_PIECES_MAX_IN_FLIGHT);
		run_round(pc, NULL, 0, first, count, results);
	}
	g_free(results);
	return pc->conn->broken ? pc->conn->broken_err : 0;
}

static void set_results(struct imap_fetch_request *reqs, unsigned from, unsigned n, int err)
{
	for (unsigned r = from; r < n; r++)
		reqs[r].result = err;
}

static void stream_init(struct pieces_ctx *pc)
{
	pc->stream.begin = stream_begin;
	pc->stream.data = stream_data;
	pc->stream.end = stream_end;
	pc->stream.ctx = pc;
}

int imap_uid_fetch_pieces(struct imap_conn *conn, struct imap_fetch_request *reqs, unsigned n,
                          const struct imap_piece_sink *sink)
{
	struct pieces_ctx pc;
	int err;
	if (conn->broken) {
		set_results(reqs, 0, n, conn->broken_err);
		return conn->broken_err;
	}
	if ((err = validate(conn, reqs, n)) < 0 ||
	    (conn->mailbox == NULL &&
	     (err = imap_conn_fail_errno(conn, -EINVAL, false, "no mailbox examined")) < 0)) {
		set_results(reqs, 0, n, err);
		return err;
	}
	/* a request never sent (the connection failed first) keeps this */
	set_results(reqs, 0, n, -ECONNABORTED);
	ctx_init(&pc, conn, reqs, n, sink);
	stream_init(&pc);
	err = run_rounds(&pc, 0);
	ctx_clear(&pc);
	if (err < 0)
		for (unsigned r = 0; r < n; r++)
			if (reqs[r].result == -ECONNABORTED)
				reqs[r].result = err;
	return err;
}

int imap_examine_fetch_pieces(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                              struct imap_fetch_request *reqs, unsigned n,
                              const struct imap_piece_sink *sink, struct imap_mailbox_status *st_r)
{
	struct imap_cmd *examine = NULL;
	struct imap_examine_gate gate = {0};
	struct pieces_ctx pc;
	int err;

	memset(st_r, 0, sizeof(*st_r));
	if (conn->broken) {
		set_results(reqs, 0, n, conn->broken_err);
		return conn->broken_err;
	}
	if ((err = validate(conn, reqs, n)) < 0) {
		set_results(reqs, 0, n, err);
		return err;
	}
	if ((err = imap_examine_for_pipeline(conn, raw_name, &examine, st_r)) < 0) {
		set_results(reqs, 0, n, err);
		return err;
	}
	if (examine == NULL) {
		/* examined on its own (a name that needs a literal) */
		if (st_r->uidvalidity != uidvalidity) {
			set_results(reqs, 0, n, -ESTALE);
			return -ESTALE;
		}
		return imap_uid_fetch_pieces(conn, reqs, n, sink);
	}
	unsigned count = MIN(n, IMAP_PIECES_MAX_IN_FLIGHT);
	int *results = g_new0(int, 1 + count);
	set_results(reqs, 0, n, -ECONNABORTED);
	ctx_init(&pc, conn, reqs, n, sink);
	stream_init(&pc);
	pc.gate = &gate;
	pc.want_uidvalidity = uidvalidity;
	gate.examine_result = &results[0];
	run_round(&pc, &examine, 1, 0, count, results);
	imap_cmd_free(examine);
	int ex_result = results[0];
	g_free(results);
	pc.gate = NULL;

	if (ex_result < 0) {
		/* no such mailbox, or the connection failed */
		err = ex_result;
		set_results(reqs, 0, n, err);
		goto out;
	}
	if (conn->broken) {
		err = conn->broken_err;
		goto out;
	}
	if ((err = imap_examine_finish(conn, raw_name, &gate.ex, st_r)) < 0) {
		set_results(reqs, 0, n, err);
		goto out;
	}
	if (st_r->uidvalidity != uidvalidity) {
		/* nothing was delivered: the answers were about another life of the mailbox */
		err = -ESTALE;
		set_results(reqs, 0, n, err);
		goto out;
	}
	if (gate.early) {
		/* the server answered before it had finished the EXAMINE: ask again, all of it */
		ctx_reset(&pc, 0, count);
		set_results(reqs, 0, n, -ECONNABORTED);
		err = run_rounds(&pc, 0);
	} else {
		err = run_rounds(&pc, count);
	}
out:
	ctx_clear(&pc);
	if (err < 0 && err != -ESTALE)
		for (unsigned r = 0; r < n; r++)
			if (reqs[r].result == -ECONNABORTED)
				reqs[r].result = err;
	return err;
}
