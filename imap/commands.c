/* commands.c — the read-only IMAP commands: LIST, EXAMINE, UID SEARCH, UID FETCH, NOOP.
 *
 * Each command is built with the safe argument encoder (args.c), run through imap_conn_run()
 * (conn.c) and its untagged responses are turned into the plain structs of imap.h.  Nothing
 * here can change the server: mailboxes are opened with EXAMINE, bodies fetched with
 * BODY.PEEK, and only UID forms are used so results stay valid across expunges.
 */
#include "imap-private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Most UIDs an ESEARCH "ALL" range list may expand to (64 MiB of uint32_t). */
#define MAX_SEARCH_RESULTS (16u * 1024 * 1024)

static int need_mailbox(struct imap_conn *conn)
{
	if (conn->broken)
		return conn->broken_err;
	if (conn->mailbox == NULL)
		return imap_conn_fail_errno(conn, -EINVAL, false, "no mailbox examined");
	return 0;
}

/* ---- LIST ------------------------------------------------------------------------------ */

void imap_folder_free(struct imap_folder *folder)
{
	if (folder == NULL)
		return;
	g_free(folder->raw_name);
	g_free(folder->name);
	g_free(folder);
}

void imap_folder_decode_name(struct imap_folder *folder)
{
	g_clear_pointer(&folder->name, g_free);
	if (imap_mutf7_decode(folder->raw_name, &folder->name) < 0) {
		g_debug("mailbox name %s is not valid modified UTF-7", folder->raw_name);
		folder->name = NULL;
	}
}

static unsigned folder_flag(const char *s)
{
	static const struct {
		const char *name;
		unsigned flag;
	} map[] = {
	    {"\\Noselect", IMAP_FOLDER_NOSELECT},
	    {"\\HasChildren", IMAP_FOLDER_HASCHILDREN},
	    {"\\HasNoChildren", IMAP_FOLDER_HASNOCHILDREN},
	    {"\\Noinferiors", IMAP_FOLDER_NOINFERIORS},
	    {"\\NonExistent", IMAP_FOLDER_NONEXISTENT | IMAP_FOLDER_NOSELECT},
	    {"\\Marked", IMAP_FOLDER_MARKED},
	    {"\\Unmarked", IMAP_FOLDER_UNMARKED},
	    {"\\All", IMAP_FOLDER_ALL},
	    {"\\Archive", IMAP_FOLDER_ARCHIVE},
	    {"\\Drafts", IMAP_FOLDER_DRAFTS},
	    {"\\Flagged", IMAP_FOLDER_FLAGGED},
	    {"\\Junk", IMAP_FOLDER_JUNK},
	    {"\\Sent", IMAP_FOLDER_SENT},
	    {"\\Trash", IMAP_FOLDER_TRASH},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
		if (g_ascii_strcasecmp(s, map[i].name) == 0)
			return map[i].flag;
	}
	return 0;
}

static int list_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	GPtrArray *folders = ctx;
	if (resp->status != IMAP_STATUS_NONE || resp->nargs != 4 ||
	    !imap_arg_is_atom(&resp->args[0], "LIST"))
		return 0;
	const struct imap_arg *fl = &resp->args[1], *delim = &resp->args[2], *name = &resp->args[3];
	const char *raw = imap_arg_str(name);
	if (fl->type != IMAP_ARG_LIST || raw == NULL ||
	    (delim->type != IMAP_ARG_NIL && (delim->type != IMAP_ARG_STRING || delim->len != 1)))
		return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                      "malformed LIST response from %s", conn->host);
	/* A literal may carry a NUL, which no mailbox name can hold (it could never be sent back
	 * in EXAMINE).  Skip that one folder: failing the whole LIST would let one hostile name
	 * hide every other folder. */
	if (strlen(raw) != name->len) {
		g_warning("skipping a mailbox whose name from %s contains a NUL byte", conn->host);
		return 0;
	}
	struct imap_folder *f = g_new0(struct imap_folder, 1);
	f->raw_name = g_strdup(raw);
	imap_folder_decode_name(f);
	f->delimiter = delim->type == IMAP_ARG_NIL ? '\0' : delim->u.str[0];
	for (unsigned i = 0; i < fl->len; i++) {
		const char *s = imap_arg_str(&fl->u.items[i]);
		if (s != NULL)
			f->flags |= folder_flag(s);
	}
	g_ptr_array_add(folders, f);
	return 0;
}

int imap_list(struct imap_conn *conn, bool special_use, GPtrArray **folders_r)
{
	*folders_r = NULL;
	GPtrArray *folders = g_ptr_array_new_with_free_func((GDestroyNotify)imap_folder_free);
	struct imap_cmd *cmd = imap_cmd_new();
	imap_cmd_add_text(cmd, "LIST \"\" \"*\"");
	/* the RETURN option is LIST-EXTENDED syntax (RFC 5258): both must be offered */
	if (special_use && imap_conn_has_cap(conn, "SPECIAL-USE") &&
	    imap_conn_has_cap(conn, "LIST-EXTENDED"))
		imap_cmd_add_text(cmd, " RETURN (SPECIAL-USE)");
	int err = imap_conn_run(conn, cmd, list_cb, folders, NULL);
	imap_cmd_free(cmd);
	if (err < 0) {
		g_ptr_array_unref(folders);
		return err;
	}
	*folders_r = folders;
	return 0;
}

/* ---- EXAMINE --------------------------------------------------------------------------- */

static bool code_number(const char *code, const char *word, uint64_t *n_r)
{
	size_t n = strlen(word);
	if (g_ascii_strncasecmp(code, word, n) != 0 || code[n] != ' ')
		return false;
	return imap_parse_number(code + n + 1, strlen(code + n + 1), n_r);
}

int imap_examine_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct imap_examine_ctx *ex = ctx;
	uint64_t n;
	if (resp->status == IMAP_STATUS_OK && resp->code != NULL) {
		if (code_number(resp->code, "UIDVALIDITY", &n) && n <= UINT32_MAX) {
			ex->st.uidvalidity = (uint32_t)n;
			ex->have_uidvalidity = true;
		} else if (code_number(resp->code, "UIDNEXT", &n) && n <= UINT32_MAX) {
			ex->st.uidnext = (uint32_t)n;
		} else if (code_number(resp->code, "HIGHESTMODSEQ", &n)) {
			ex->st.highestmodseq = n;
		} else if (g_ascii_strcasecmp(resp->code, "NOMODSEQ") == 0) {
			ex->st.highestmodseq = 0;
		}
	} else if (resp->status == IMAP_STATUS_NONE && resp->nargs == 2 &&
	           imap_arg_is_atom(&resp->args[1], "EXISTS") &&
	           imap_arg_number(&resp->args[0], &n) && n <= UINT32_MAX) {
		ex->st.exists = (uint32_t)n;
	}
	return 0;
}

/* Start an EXAMINE of raw_name: *cmd_r the command (new).  From here on the connection examines
 * no mailbox until the EXAMINE has ended OK (a failed EXAMINE leaves none selected, RFC 3501
 * 6.3.1). */
int imap_examine_begin(struct imap_conn *conn, const char *raw_name, struct imap_cmd **cmd_r,
                         struct imap_mailbox_status *st_r)
{
	return imap_examine_begin_params(conn, raw_name, NULL, cmd_r, st_r);
}

int imap_examine_begin_params(struct imap_conn *conn, const char *raw_name, const char *params,
                              struct imap_cmd **cmd_r, struct imap_mailbox_status *st_r)
{
	memset(st_r, 0, sizeof(*st_r));
	*cmd_r = NULL;
	if (conn->broken)
		return conn->broken_err;
	g_clear_pointer(&conn->mailbox, g_free);
	struct imap_cmd *cmd = imap_cmd_new();
	imap_cmd_add_text(cmd, "EXAMINE ");
	if (imap_cmd_add_string(cmd, raw_name, strlen(raw_name), imap_conn_literal_mode(conn)) < 0) {
		imap_cmd_free(cmd);
		return imap_conn_fail_errno(conn, -EINVAL, false,
		                            "mailbox name contains CR, LF or NUL");
	}
	if (params != NULL) {
		imap_cmd_add_text(cmd, " ");
		imap_cmd_add_text(cmd, params);
	} else if (imap_conn_has_cap(conn, "CONDSTORE")) {
		imap_cmd_add_text(cmd, " (CONDSTORE)");
	}
	*cmd_r = cmd;
	return 0;
}

/* EXAMINE of raw_name ended OK and said ex: the connection now examines it. */
int imap_examine_finish(struct imap_conn *conn, const char *raw_name,
                          const struct imap_examine_ctx *ex, struct imap_mailbox_status *st_r)
{
	if (!ex->have_uidvalidity)
		return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                      "server %s sent no UIDVALIDITY for mailbox %s", conn->host,
		                      raw_name);
	/* a pipelined chain finishes several EXAMINEs in a row: the last one wins (copied
	 * first, in case raw_name is the name being replaced) */
	char *name = g_strdup(raw_name);
	g_free(conn->mailbox);
	conn->mailbox = name;
	conn->mailbox_uidvalidity = ex->st.uidvalidity;
	conn->condstore = imap_conn_has_cap(conn, "CONDSTORE");
	*st_r = ex->st;
	return 0;
}

/* Run the EXAMINE cmd (taken) of raw_name on its own. */
static int examine_alone(struct imap_conn *conn, const char *raw_name, struct imap_cmd *cmd,
                         struct imap_mailbox_status *st_r)
{
	struct imap_examine_ctx ex = {0};
	int err = imap_conn_run(conn, cmd, imap_examine_cb, &ex, NULL);
	imap_cmd_free(cmd);
	return err < 0 ? err : imap_examine_finish(conn, raw_name, &ex, st_r);
}

int imap_examine(struct imap_conn *conn, const char *raw_name, struct imap_mailbox_status *st_r)
{
	struct imap_cmd *cmd;
	int err = imap_examine_begin(conn, raw_name, &cmd, st_r);
	return err < 0 ? err : examine_alone(conn, raw_name, cmd, st_r);
}

/* The gate of commands pipelined after an EXAMINE: see struct imap_examine_gate. */

/* The EXAMINE to pipeline with what needs it (*cmd_r, new); or, for a name that needs a literal
 * (a command with a literal is not pipelined), *cmd_r NULL after examining it on its own
 * (*st_r set). */
int imap_examine_for_pipeline(struct imap_conn *conn, const char *raw_name, struct imap_cmd **cmd_r,
                              struct imap_mailbox_status *st_r)
{
	int err = imap_examine_begin(conn, raw_name, cmd_r, st_r);
	if (err < 0 || (*cmd_r)->chunks->len == 1)
		return err;
	struct imap_cmd *cmd = *cmd_r;
	*cmd_r = NULL;
	return examine_alone(conn, raw_name, cmd, st_r);
}

/* May an answer to a command pipelined after the EXAMINE be used now?  Only once the EXAMINE
 * has ended, and ended OK. */
bool imap_gate_open(struct imap_examine_gate *g)
{
	if (g == NULL)
		return true;
	if (*g->examine_result == IMAP_PIPELINE_PENDING) {
		g->early = true;
		return false;
	}
	return *g->examine_result == 0 && g->ex.have_uidvalidity;
}

/* The EXAMINE's own untagged answers count only until its tagged one: a UIDVALIDITY code
 * among the answers to the FETCH is not the mailbox's (servers send stray codes). */
int imap_gate_examine_cb(struct imap_conn *conn, const struct imap_response *resp,
                         struct imap_examine_gate *g)
{
	if (*g->examine_result != IMAP_PIPELINE_PENDING)
		return 0;
	return imap_examine_cb(conn, resp, &g->ex);
}

/* ---- UID SEARCH ------------------------------------------------------------------------ */

int imap_search_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct imap_search_ctx *sc = ctx;
	if (resp->status != IMAP_STATUS_NONE || resp->nargs < 1)
		return 0;
	uint64_t n;
	if (imap_arg_is_atom(&resp->args[0], "SEARCH")) {
		for (unsigned i = 1; i < resp->nargs; i++) {
			/* a trailing (MODSEQ n) under CONDSTORE is not a UID */
			if (resp->args[i].type == IMAP_ARG_LIST)
				continue;
			if (!imap_arg_number(&resp->args[i], &n) || n == 0 || n > UINT32_MAX)
				return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
				                      "malformed SEARCH response from %s",
				                      conn->host);
			uint32_t u = (uint32_t)n;
			g_array_append_val(sc->uids, u);
		}
		return 0;
	}
	if (!imap_arg_is_atom(&resp->args[0], "ESEARCH"))
		return 0;
	unsigned i = 1;
	if (i < resp->nargs && resp->args[i].type == IMAP_ARG_LIST) {
		/* (TAG "A0005"): ignore answers to other commands */
		const struct imap_arg *l = &resp->args[i];
		if (l->len == 2 && imap_arg_is_atom(&l->u.items[0], "TAG")) {
			const char *t = imap_arg_str(&l->u.items[1]);
			if (t == NULL || strcmp(t, conn->cur_tag) != 0)
				return 0;
		}
		i++;
	}
	if (i < resp->nargs && imap_arg_is_atom(&resp->args[i], "UID"))
		i++;
	for (; i + 1 < resp->nargs; i += 2) {
		if (!imap_arg_is_atom(&resp->args[i], "ALL"))
			continue;
		const char *set = imap_arg_str(&resp->args[i + 1]);
		if (set == NULL || !imap_seqset_expand(set, sc->uids, MAX_SEARCH_RESULTS))
			return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
			                      "malformed or oversized ESEARCH result from %s",
			                      conn->host);
	}
	return 0;
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* plain SEARCH has no defined order: make uids ascending and unique */
void imap_sort_unique_uids(GArray *uids)
{
	guint w = 0;

	g_array_sort(uids, cmp_u32);
	for (guint r = 0; r < uids->len; r++) {
		uint32_t u = g_array_index(uids, uint32_t, r);
		if (w == 0 || g_array_index(uids, uint32_t, w - 1) != u)
			g_array_index(uids, uint32_t, w++) = u;
	}
	g_array_set_size(uids, w);
}

static int search_cmd_v(struct imap_conn *conn, struct imap_cmd **cmd_r, const char *criteria,
                        va_list ap)
{
	struct imap_cmd *cmd = imap_cmd_new();
	int err = imap_format_search(cmd, imap_conn_has_cap(conn, "ESEARCH"),
	                             imap_conn_literal_mode(conn), criteria, ap);
	if (err < 0) {
		imap_cmd_free(cmd);
		return imap_conn_fail_errno(
		    conn, err, false,
		    "invalid search: criteria must be atoms and parentheses, "
		    "arguments valid UTF-8 without CR, LF or NUL");
	}
	*cmd_r = cmd;
	return 0;
}

static int search_cmd(struct imap_conn *conn, struct imap_cmd **cmd_r, const char *criteria, ...)
{
	va_list ap;
	va_start(ap, criteria);
	int err = search_cmd_v(conn, cmd_r, criteria, ap);
	va_end(ap);
	return err;
}

int imap_uid_search(struct imap_conn *conn, GArray **uids_r, const char *criteria, ...)
{
	struct imap_cmd *cmd = NULL;
	*uids_r = NULL;
	int err = need_mailbox(conn);
	if (err < 0)
		return err;
	va_list ap;
	va_start(ap, criteria);
	err = search_cmd_v(conn, &cmd, criteria, ap);
	va_end(ap);
	if (err < 0)
		return err;
	return imap_run_search(conn, cmd, uids_r);
}

int imap_run_search(struct imap_conn *conn, struct imap_cmd *cmd, GArray **uids_r)
{
	struct imap_search_ctx sc = {.uids = g_array_new(FALSE, FALSE, sizeof(uint32_t))};
	int err = imap_conn_run(conn, cmd, imap_search_cb, &sc, NULL);
	imap_cmd_free(cmd);
	if (err < 0) {
		g_array_unref(sc.uids);
		return err;
	}
	imap_sort_unique_uids(sc.uids);
	*uids_r = sc.uids;
	return 0;
}

/* ---- UID FETCH attributes -------------------------------------------------------------- */

/* INTERNALDATE "17-Jul-1996 02:44:25 -0700" (day may be space-padded) -> seconds since the
 * epoch. */
static bool parse_internaldate(const char *s, int64_t *t_r)
{
	static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
	                                     "jul", "aug", "sep", "oct", "nov", "dec"};
	int day, year, hh, mm, ss, zone, end = 0;
	char mon[4], sign;
	if (sscanf(s, " %2d-%3[A-Za-z]-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year, &hh, &mm, &ss,
	           &sign, &zone, &end) != 8 ||
	    s[end] != '\0' || (sign != '+' && sign != '-'))
		return false;
	int month = 0;
	for (int i = 0; i < 12; i++) {
		if (g_ascii_strcasecmp(mon, months[i]) == 0)
			month = i + 1;
	}
	if (month == 0 || zone % 100 >= 60 || zone > 2359)
		return false;
	GDateTime *dt = g_date_time_new_utc(year, month, day, hh, mm, ss);
	if (dt == NULL)
		return false;
	int64_t off = (int64_t)(zone / 100 * 3600 + zone % 100 * 60);
	/* local time = UTC + offset, so UTC = local - offset */
	*t_r = g_date_time_to_unix(dt) - (sign == '+' ? off : -off);
	g_date_time_unref(dt);
	return true;
}

struct attrs_ctx {
	const char *uidset;
	imap_attrs_cb cb;
	void *ctx;
	int err;
};

static const struct imap_arg *fetch_item(const struct imap_arg *list, const char *key)
{
	for (unsigned i = 0; i + 1 < list->len; i += 2) {
		if (imap_arg_is_atom(&list->u.items[i], key))
			return &list->u.items[i + 1];
	}
	return NULL;
}

/* The FETCH list of "* n FETCH (...)", or NULL. */
const struct imap_arg *imap_fetch_list(const struct imap_response *resp)
{
	uint64_t n;
	if (resp->status != IMAP_STATUS_NONE || resp->nargs != 3 ||
	    !imap_arg_number(&resp->args[0], &n) || !imap_arg_is_atom(&resp->args[1], "FETCH") ||
	    resp->args[2].type != IMAP_ARG_LIST)
		return NULL;
	return &resp->args[2];
}

bool imap_fetch_uid(const struct imap_arg *list, uint32_t *uid_r)
{
	const struct imap_arg *a = fetch_item(list, "UID");
	uint64_t n;
	if (a == NULL || !imap_arg_number(a, &n) || n == 0 || n > UINT32_MAX)
		return false;
	*uid_r = (uint32_t)n;
	return true;
}

/* MODSEQ (nullable) and FLAGS (a list) of a FETCH into at_r (flags: a new array of strings
 * borrowed from the response). */
static void fetch_modseq_flags(const struct imap_arg *modseq, const struct imap_arg *flags,
                               struct imap_msg_attrs *at_r)
{
	if (modseq != NULL && modseq->type == IMAP_ARG_LIST && modseq->len == 1)
		imap_arg_number(&modseq->u.items[0], &at_r->modseq);
	char **fl = g_new0(char *, flags->len + 1);
	unsigned nf = 0;
	for (unsigned i = 0; i < flags->len; i++) {
		const char *f = imap_arg_str(&flags->u.items[i]);
		if (f != NULL)
			fl[nf++] = (char *)f;
	}
	at_r->flags = fl;
}

/* An identity value (X-GM-MSGID 123, EMAILID (M1a2b)): the atom itself or the one atom of a
 * list, when it is a short run of printable ASCII (it names files and cache entries); else
 * NULL (NIL included). */
static const char *identity_value(const struct imap_arg *a)
{
	const char *s;

	if (a != NULL && a->type == IMAP_ARG_LIST)
		a = a->len == 1 ? &a->u.items[0] : NULL;
	if (a == NULL || (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) || a->len == 0 ||
	    a->len > IMAP_IDENTITY_MAX)
		return NULL;
	s = a->u.str;
	for (uint32_t i = 0; i < a->len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return NULL;
	return s;
}

/* X-GM-LABELS (a list of astrings, modified UTF-7) decoded: a new NULL-terminated array of new
 * strings (g_strfreev), labels with control characters (or NUL) left out. */
static char **decode_labels(const struct imap_arg *list)
{
	char **out = g_new0(char *, list->len + 1);
	unsigned n = 0;

	for (uint32_t i = 0; i < list->len; i++) {
		const struct imap_arg *a = &list->u.items[i];
		char *utf8 = NULL;
		bool clean = true;
		if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING)
			continue;
		for (uint32_t k = 0; k < a->len && clean; k++)
			clean = (unsigned char)a->u.str[k] >= ' ' && a->u.str[k] != 0x7f;
		if (!clean || a->len == 0)
			continue;
		/* a label that is not modified UTF-7 (Gmail sends some in UTF-8) stays as sent
		 * when it is valid UTF-8 */
		if (imap_mutf7_decode(a->u.str, &utf8) < 0) {
			if (!g_utf8_validate(a->u.str, a->len, NULL))
				continue;
			utf8 = g_strndup(a->u.str, a->len);
		}
		out[n++] = utf8;
	}
	return out;
}

static void fetch_identity(const struct imap_arg *list, struct imap_msg_attrs *at_r)
{
	const struct imap_arg *labels = fetch_item(list, "X-GM-LABELS");

	at_r->email_id = identity_value(fetch_item(list, "X-GM-MSGID"));
	if (at_r->email_id == NULL)
		at_r->email_id = identity_value(fetch_item(list, "EMAILID"));
	at_r->thread_id = identity_value(fetch_item(list, "X-GM-THRID"));
	if (at_r->thread_id == NULL)
		at_r->thread_id = identity_value(fetch_item(list, "THREADID"));
	if (labels != NULL && labels->type == IMAP_ARG_LIST)
		at_r->labels = decode_labels(labels);
}

void imap_msg_attrs_clear(struct imap_msg_attrs *at)
{
	g_clear_pointer(&at->flags, g_free);
	g_clear_pointer(&at->labels, g_strfreev);
}

int imap_parse_attrs(struct imap_conn *conn, const struct imap_response *resp,
                     struct imap_msg_attrs *at_r)
{
	const struct imap_arg *list = imap_fetch_list(resp);
	memset(at_r, 0, sizeof(*at_r));
	if (list == NULL || !imap_fetch_uid(list, &at_r->uid))
		return 0;
	const struct imap_arg *size = fetch_item(list, "RFC822.SIZE");
	const struct imap_arg *date = fetch_item(list, "INTERNALDATE");
	const struct imap_arg *flags = fetch_item(list, "FLAGS");
	const struct imap_arg *modseq = fetch_item(list, "MODSEQ");
	/* an unsolicited flag update carries only some items: not what was asked for */
	if (size == NULL || date == NULL || flags == NULL)
		return 0;
	const char *ds = imap_arg_str(date);
	if (!imap_arg_number(size, &at_r->size) || ds == NULL ||
	    !parse_internaldate(ds, &at_r->internaldate) || flags->type != IMAP_ARG_LIST)
		return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                      "malformed FETCH response from %s", conn->host);
	fetch_modseq_flags(modseq, flags, at_r);
	fetch_identity(list, at_r);
	return 1;
}

int imap_parse_flag_change(struct imap_conn *conn, const struct imap_response *resp,
                           struct imap_msg_attrs *at_r)
{
	const struct imap_arg *list = imap_fetch_list(resp);
	memset(at_r, 0, sizeof(*at_r));
	if (list == NULL || !imap_fetch_uid(list, &at_r->uid))
		return 0;
	const struct imap_arg *flags = fetch_item(list, "FLAGS");
	if (flags == NULL || (fetch_item(list, "RFC822.SIZE") != NULL &&
	                      fetch_item(list, "INTERNALDATE") != NULL))
		return 0; /* no flags, or every attribute (imap_parse_attrs) */
	if (flags->type != IMAP_ARG_LIST)
		return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                      "malformed FETCH response from %s", conn->host);
	fetch_modseq_flags(fetch_item(list, "MODSEQ"), flags, at_r);
	return 1;
}

static int attrs_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct attrs_ctx *ac = ctx;
	struct imap_msg_attrs at;
	int r = imap_parse_attrs(conn, resp, &at);
	if (r <= 0)
		return r;
	if (imap_uidset_contains(ac->uidset, at.uid)) {
		r = ac->err == 0 ? ac->cb(&at, ac->ctx) : 0;
		if (r < 0 && ac->err == 0)
			ac->err = r;
	}
	imap_msg_attrs_clear(&at);
	return 0;
}

int imap_uid_fetch_attrs(struct imap_conn *conn, const char *uidset, imap_attrs_cb cb, void *ctx)
{
	return imap_uid_fetch_attrs_since(conn, uidset, 0, cb, ctx);
}

struct imap_cmd *imap_fetch_attrs_cmd(const struct imap_conn *conn, const char *uidset,
                                        uint64_t modseq)
{
	struct imap_cmd *cmd = imap_cmd_new();
	imap_cmd_add_text(cmd, "UID FETCH ");
	imap_cmd_add_text(cmd, uidset);
	imap_cmd_add_text(cmd, " (UID RFC822.SIZE INTERNALDATE FLAGS");
	if (conn->condstore)
		imap_cmd_add_text(cmd, " MODSEQ");
	/* the message's identity in the same FETCH: no round trip of its own */
	if (imap_conn_has_cap(conn, "X-GM-EXT-1"))
		imap_cmd_add_text(cmd, " X-GM-MSGID X-GM-THRID X-GM-LABELS");
	else if (imap_conn_has_cap(conn, "OBJECTID"))
		imap_cmd_add_text(cmd, " EMAILID THREADID");
	imap_cmd_add_text(cmd, ")");
	if (modseq != 0) {
		char since[48];
		g_snprintf(since, sizeof(since), " (CHANGEDSINCE %" G_GUINT64_FORMAT ")", modseq);
		imap_cmd_add_text(cmd, since);
	}
	return cmd;
}

static int attrs_result(struct imap_conn *conn, int err, const struct attrs_ctx *ac)
{
	if (err == 0 && ac->err < 0)
		err = imap_conn_fail_errno(conn, ac->err, false, "FETCH stopped by the caller: %s",
		                           g_strerror(-ac->err));
	return err;
}

int imap_uid_fetch_attrs_since(struct imap_conn *conn, const char *uidset, uint64_t modseq,
                               imap_attrs_cb cb, void *ctx)
{
	int err = need_mailbox(conn);
	if (err < 0)
		return err;
	if (!imap_uidset_valid(uidset))
		return imap_conn_fail_errno(conn, -EINVAL, false, "invalid UID set \"%s\"", uidset);
	if (modseq != 0 && !conn->condstore)
		return imap_conn_fail_errno(conn, -EINVAL, false,
		                            "CHANGEDSINCE needs a mailbox examined with CONDSTORE");
	struct imap_cmd *cmd = imap_fetch_attrs_cmd(conn, uidset, modseq);
	struct attrs_ctx ac = {.uidset = uidset, .cb = cb, .ctx = ctx};
	err = imap_conn_run(conn, cmd, attrs_cb, &ac, NULL);
	imap_cmd_free(cmd);
	return attrs_result(conn, err, &ac);
}

/* ---- a whole listing in one round trip ---------------------------------------------------- */

struct listing_ctx {
	struct imap_search_ctx search;
	struct attrs_ctx attrs;
};

/* The answers to the two commands differ in kind (SEARCH/ESEARCH vs FETCH): each callback
 * ignores the other's. */
static int listing_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct listing_ctx *lc = ctx;
	int r = imap_search_cb(conn, resp, &lc->search);
	return r < 0 ? r : attrs_cb(conn, resp, &lc->attrs);
}

int imap_uid_list_all(struct imap_conn *conn, GArray **uids_r, imap_attrs_cb cb, void *ctx)
{
	struct imap_cmd *cmds[2] = {NULL, NULL};
	struct listing_ctx lc = {.search = {.uids = NULL},
	                         .attrs = {.uidset = "1:*", .cb = cb, .ctx = ctx}};
	*uids_r = NULL;
	int err = need_mailbox(conn);
	if (err < 0)
		return err;
	if ((err = search_cmd(conn, &cmds[0], "ALL")) < 0)
		return err;
	cmds[1] = imap_fetch_attrs_cmd(conn, "1:*", 0);
	lc.search.uids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	err = imap_conn_run_pipelined(conn, cmds, 2, listing_cb, &lc, NULL);
	imap_cmd_free(cmds[0]);
	imap_cmd_free(cmds[1]);
	err = attrs_result(conn, err, &lc.attrs);
	if (err < 0) {
		g_array_unref(lc.search.uids);
		return err;
	}
	imap_sort_unique_uids(lc.search.uids);
	*uids_r = lc.search.uids;
	return 0;
}

int imap_uid_fetch_changes(struct imap_conn *conn, uint32_t uidnext, bool new_mail,
                           uint64_t modseq, GArray **uids_r, imap_attrs_cb cb, void *ctx)
{
	struct imap_cmd *cmds[3] = {NULL, NULL, NULL};
	/* every FETCH asked for is within 1:* (the callback's filter) */
	struct listing_ctx lc = {.search = {.uids = NULL},
	                         .attrs = {.uidset = "1:*", .cb = cb, .ctx = ctx}};
	unsigned n = 0;
	char set[32];
	int err = need_mailbox(conn);

	if (uids_r != NULL)
		*uids_r = NULL;
	if (err < 0)
		return err;
	if (modseq != 0 && !conn->condstore)
		return imap_conn_fail_errno(conn, -EINVAL, false,
		                            "CHANGEDSINCE needs a mailbox examined with CONDSTORE");
	/* the SEARCH first: an ESEARCH answer is matched to the oldest unfinished command */
	if (uids_r != NULL) {
		if ((err = search_cmd(conn, &cmds[n], "ALL")) < 0)
			goto out;
		n++;
		lc.search.uids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	}
	if (new_mail && uidnext != 0) {
		g_snprintf(set, sizeof(set), "%u:*", uidnext);
		cmds[n++] = imap_fetch_attrs_cmd(conn, set, 0);
	}
	if (modseq != 0 && uidnext > 1) {
		g_snprintf(set, sizeof(set), "1:%u", uidnext - 1);
		cmds[n++] = imap_fetch_attrs_cmd(conn, set, modseq);
	}
	if (n > 0)
		err = imap_conn_run_pipelined(conn, cmds, n, listing_cb, &lc, NULL);
	err = attrs_result(conn, err, &lc.attrs);
	if (err == 0 && uids_r != NULL) {
		imap_sort_unique_uids(lc.search.uids);
		*uids_r = lc.search.uids;
		lc.search.uids = NULL;
	}
out:
	if (lc.search.uids != NULL)
		g_array_unref(lc.search.uids);
	for (unsigned i = 0; i < 3; i++)
		imap_cmd_free(cmds[i]);
	return err;
}

struct examine_listing_ctx {
	struct imap_examine_gate gate;
	struct listing_ctx listing;
};

/* Answers to SEARCH and FETCH are gated (examine_gate); EXAMINE's own are not. */
static int examine_listing_cb(struct imap_conn *conn, const struct imap_response *resp,
                              void *ctx)
{
	struct examine_listing_ctx *el = ctx;
	int r = imap_gate_examine_cb(conn, resp, &el->gate);
	bool follower = resp->status == IMAP_STATUS_NONE && resp->nargs >= 1 &&
	                (imap_arg_is_atom(&resp->args[0], "SEARCH") ||
	                 imap_arg_is_atom(&resp->args[0], "ESEARCH") ||
	                 (resp->nargs >= 2 && imap_arg_is_atom(&resp->args[1], "FETCH")));
	if (r < 0 || (follower && !imap_gate_open(&el->gate)))
		return r;
	return listing_cb(conn, resp, &el->listing);
}

int imap_examine_list_all(struct imap_conn *conn, const char *raw_name,
                          struct imap_mailbox_status *st_r, GArray **uids_r, imap_attrs_cb cb,
                          void *ctx)
{
	struct imap_cmd *cmds[3] = {NULL, NULL, NULL};
	int results[3] = {IMAP_PIPELINE_PENDING, IMAP_PIPELINE_PENDING, IMAP_PIPELINE_PENDING};
	struct examine_listing_ctx el = {
	    .gate = {.examine_result = &results[0]},
	    .listing = {.search = {.uids = NULL}, .attrs = {.uidset = "1:*", .cb = cb, .ctx = ctx}}};
	int err;

	*uids_r = NULL;
	if ((err = imap_examine_for_pipeline(conn, raw_name, &cmds[0], st_r)) < 0)
		return err;
	if (cmds[0] == NULL) {
		/* examined on its own */
		if (st_r->exists == 0) {
			*uids_r = g_array_new(FALSE, FALSE, sizeof(uint32_t));
			return 0;
		}
		return imap_uid_list_all(conn, uids_r, cb, ctx);
	}
	/* the FETCH asks for MODSEQ when the EXAMINE asks for CONDSTORE */
	conn->condstore = imap_conn_has_cap(conn, "CONDSTORE");
	if ((err = search_cmd(conn, &cmds[1], "ALL")) < 0) {
		imap_cmd_free(cmds[0]);
		return err;
	}
	cmds[2] = imap_fetch_attrs_cmd(conn, "1:*", 0);
	el.listing.search.uids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	err = imap_conn_run_pipelined(conn, cmds, 3, examine_listing_cb, &el, results);
	for (int i = 0; i < 3; i++)
		imap_cmd_free(cmds[i]);
	if (results[0] < 0 || conn->broken) {
		g_array_unref(el.listing.search.uids);
		return results[0] < 0 ? results[0] : conn->broken_err;
	}
	if ((err = imap_examine_finish(conn, raw_name, &el.gate.ex, st_r)) < 0 || el.gate.early) {
		g_array_unref(el.listing.search.uids);
		return err < 0 ? err : -EAGAIN;
	}
	if (st_r->exists == 0) {
		/* "1:*" of an empty mailbox: an error on some servers, and nothing to list */
		g_array_set_size(el.listing.search.uids, 0);
	} else {
		err = results[1] < 0 ? results[1] : results[2];
		err = attrs_result(conn, err, &el.listing.attrs);
		if (err < 0) {
			g_array_unref(el.listing.search.uids);
			return err;
		}
	}
	imap_sort_unique_uids(el.listing.search.uids);
	*uids_r = el.listing.search.uids;
	return 0;
}

/* ---- UID FETCH bodies ------------------------------------------------------------------ */

struct body_ctx {
	const char *uidset;
	const struct imap_body_sink *sink;
	struct imap_parser_stream stream;
	struct imap_examine_gate *gate; /* pipelined after EXAMINE (else NULL) ... */
	uint32_t want_uidvalidity;      /* ... whose UIDVALIDITY must be this */
};

/* Is a body for uid to be delivered? */
static bool body_wanted(struct body_ctx *bc, uint32_t uid)
{
	if (!imap_uidset_contains(bc->uidset, uid))
		return false; /* not ours */
	if (bc->gate == NULL)
		return true;
	return imap_gate_open(bc->gate) && bc->gate->ex.st.uidvalidity == bc->want_uidvalidity;
}

static int stream_begin(void *ctx, uint32_t uid, const char *item, uint64_t size)
{
	struct body_ctx *bc = ctx;
	if (!body_wanted(bc, uid))
		return 1; /* skip */
	return bc->sink->begin(bc->sink->ctx, uid, size);
}

static int stream_data(void *ctx, const void *buf, size_t len)
{
	struct body_ctx *bc = ctx;
	return bc->sink->data(bc->sink->ctx, buf, len);
}

static int stream_end(void *ctx, uint32_t uid)
{
	struct body_ctx *bc = ctx;
	return bc->sink->end(bc->sink->ctx, uid);
}

/* A body that was buffered because its UID came after it: deliver it now. */
static int body_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct body_ctx *bc = ctx;
	const struct imap_arg *list = imap_fetch_list(resp);
	uint32_t uid;
	if (list == NULL || !imap_fetch_uid(list, &uid) || !body_wanted(bc, uid))
		return 0;
	for (unsigned i = 0; i + 1 < list->len; i += 2) {
		const struct imap_arg *k = &list->u.items[i], *v = &list->u.items[i + 1];
		if (k->type != IMAP_ARG_ATOM || v->type != IMAP_ARG_STRING ||
		    g_ascii_strncasecmp(k->u.str, "BODY[", 5) != 0)
			continue;
		int r = bc->sink->begin(bc->sink->ctx, uid, v->len);
		if (r == 0 && v->len > 0)
			r = bc->sink->data(bc->sink->ctx, v->u.str, v->len);
		if (r == 0)
			r = bc->sink->end(bc->sink->ctx, uid);
		if (r < 0)
			return imap_conn_fail_errno(conn, r, true, "body sink failed: %s",
			                            g_strerror(-r));
	}
	return 0;
}

static struct imap_cmd *fetch_body_cmd(const char *uidset, enum imap_section section,
                                       uint64_t offset, uint64_t length)
{
	struct imap_cmd *cmd = imap_cmd_new();
	GString *items = g_string_new(NULL);
	g_string_append_printf(items, "UID FETCH %s (UID BODY.PEEK[%s]", uidset,
	                       section == IMAP_SECTION_HEADER ? "HEADER" : "");
	if (length > 0)
		g_string_append_printf(items, "<%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT ">",
		                       offset, length);
	g_string_append_c(items, ')');
	imap_cmd_add_text(cmd, items->str);
	g_string_free(items, TRUE);
	return cmd;
}

static void body_stream_init(struct body_ctx *bc)
{
	bc->stream.begin = stream_begin;
	bc->stream.data = stream_data;
	bc->stream.end = stream_end;
	bc->stream.ctx = bc;
}

int imap_uid_fetch_body(struct imap_conn *conn, const char *uidset, enum imap_section section,
                        uint64_t offset, uint64_t length, const struct imap_body_sink *sink)
{
	int err = need_mailbox(conn);
	if (err < 0)
		return err;
	if (!imap_uidset_valid(uidset))
		return imap_conn_fail_errno(conn, -EINVAL, false, "invalid UID set \"%s\"", uidset);
	struct imap_cmd *cmd = fetch_body_cmd(uidset, section, offset, length);
	struct body_ctx bc = {.uidset = uidset, .sink = sink};
	body_stream_init(&bc);
	imap_parser_set_stream(conn->parser, &bc.stream);
	err = imap_conn_run(conn, cmd, body_cb, &bc, NULL);
	imap_parser_set_stream(conn->parser, NULL);
	imap_cmd_free(cmd);
	return err;
}

/* Untagged answers to EXAMINE + UID FETCH: each callback ignores the other's kind. */
static int examine_body_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct body_ctx *bc = ctx;
	int r = imap_gate_examine_cb(conn, resp, bc->gate);
	return r < 0 ? r : body_cb(conn, resp, bc);
}

int imap_examine_fetch_body(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                            const char *uidset, const struct imap_body_sink *sink,
                            struct imap_mailbox_status *st_r)
{
	struct imap_cmd *cmds[2] = {NULL, NULL};
	int results[2] = {IMAP_PIPELINE_PENDING, IMAP_PIPELINE_PENDING};
	struct imap_examine_gate gate = {.examine_result = &results[0]};
	struct body_ctx bc = {.uidset = uidset, .sink = sink, .gate = &gate,
	                      .want_uidvalidity = uidvalidity};
	int err;

	memset(st_r, 0, sizeof(*st_r));
	if (!conn->broken && !imap_uidset_valid(uidset))
		return imap_conn_fail_errno(conn, -EINVAL, false, "invalid UID set \"%s\"", uidset);
	if ((err = imap_examine_for_pipeline(conn, raw_name, &cmds[0], st_r)) < 0)
		return err;
	if (cmds[0] == NULL) {
		/* examined on its own */
		if (st_r->uidvalidity != uidvalidity)
			return -ESTALE;
		return imap_uid_fetch_body(conn, uidset, IMAP_SECTION_FULL, 0, 0, sink);
	}
	cmds[1] = fetch_body_cmd(uidset, IMAP_SECTION_FULL, 0, 0);
	body_stream_init(&bc);
	imap_parser_set_stream(conn->parser, &bc.stream);
	err = imap_conn_run_pipelined(conn, cmds, 2, examine_body_cb, &bc, results);
	imap_parser_set_stream(conn->parser, NULL);
	imap_cmd_free(cmds[0]);
	imap_cmd_free(cmds[1]);
	if (results[0] < 0)
		return results[0]; /* no such mailbox, or the connection failed */
	if (conn->broken)
		return conn->broken_err;
	int ferr = imap_examine_finish(conn, raw_name, &gate.ex, st_r);
	if (ferr < 0)
		return ferr;
	if (st_r->uidvalidity != uidvalidity)
		return -ESTALE; /* nothing was delivered */
	if (gate.early)
		return imap_uid_fetch_body(conn, uidset, IMAP_SECTION_FULL, 0, 0, sink);
	return err;
}

struct message_ctx {
	uint32_t uid;
	GByteArray *buf;
	bool done;
};

static int msg_begin(void *ctx, uint32_t uid, uint64_t size)
{
	struct message_ctx *mc = ctx;
	if (uid != mc->uid)
		return 1;
	g_byte_array_set_size(mc->buf, 0);
	mc->done = false;
	return 0;
}

static int msg_data(void *ctx, const void *buf, size_t len)
{
	struct message_ctx *mc = ctx;
	if ((uint64_t)mc->buf->len + len > G_MAXUINT32 / 2)
		return -EFBIG;
	g_byte_array_append(mc->buf, buf, (guint)len);
	return 0;
}

static int msg_end(void *ctx, uint32_t uid)
{
	struct message_ctx *mc = ctx;
	mc->done = true;
	return 0;
}

/* One message into memory; raw_name NULL: the examined mailbox, else EXAMINE raw_name in the
 * same round trip (imap_examine_fetch_body). */
static int fetch_message(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                         uint32_t uid, GBytes **body_r, struct imap_mailbox_status *st_r)
{
	*body_r = NULL;
	char set[16];
	g_snprintf(set, sizeof(set), "%u", uid);
	struct message_ctx mc = {.uid = uid, .buf = g_byte_array_new()};
	struct imap_body_sink sink = {msg_begin, msg_data, msg_end, &mc};
	int err = raw_name == NULL
	              ? imap_uid_fetch_body(conn, set, IMAP_SECTION_FULL, 0, 0, &sink)
	              : imap_examine_fetch_body(conn, raw_name, uidvalidity, set, &sink, st_r);
	if (err == 0 && !mc.done)
		err = imap_conn_fail(conn, IMAP_OUTCOME_NO, NULL,
		                     "server returned no body for UID %u (expunged?)", uid);
	if (err < 0) {
		g_byte_array_unref(mc.buf);
		return err;
	}
	*body_r = g_byte_array_free_to_bytes(mc.buf);
	return 0;
}

int imap_uid_fetch_message(struct imap_conn *conn, uint32_t uid, GBytes **body_r)
{
	return fetch_message(conn, NULL, 0, uid, body_r, NULL);
}

int imap_examine_fetch_message(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                               uint32_t uid, GBytes **body_r, struct imap_mailbox_status *st_r)
{
	return fetch_message(conn, raw_name, uidvalidity, uid, body_r, st_r);
}

/* ---- NOOP ------------------------------------------------------------------------------ */

int imap_noop(struct imap_conn *conn)
{
	struct imap_cmd *cmd = imap_cmd_new();
	imap_cmd_add_text(cmd, "NOOP");
	int err = imap_conn_run(conn, cmd, NULL, NULL, NULL);
	imap_cmd_free(cmd);
	return err;
}
