/* qresync.c — re-listing a mailbox in one round trip with QRESYNC (RFC 7162).
 *
 * A client that remembers a mailbox's UIDVALIDITY, HIGHESTMODSEQ and UIDNEXT can name the first
 * two in its EXAMINE; the server then answers, before the EXAMINE's tagged OK, with the UIDs
 * expunged since (VANISHED (EARLIER)) and the flags of every message changed since (FETCH).
 * New mail comes from a UID FETCH of the attributes from the old UIDNEXT on, pipelined after
 * the EXAMINE: together one round trip, where CONDSTORE alone needs an EXAMINE to learn that
 * something changed and then a second round trip to ask what.  Answers are used only once the
 * EXAMINE has ended OK for the life (UIDVALIDITY) the caller knows; those that came earlier,
 * or belong to another life, are never delivered.  The contract is imap_examine_qresync in
 * imap.h; connections enable QRESYNC at login (conn.c).
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

/* A flag change the EXAMINE reported, kept until the EXAMINE has ended OK. */
struct flag_change {
	uint32_t uid;
	char **flags; /* g_strdupv */
};

struct resync {
	const struct imap_resync_sink *sink;
	uint32_t uidvalidity;
	char uidset[24];              /* "uidnext:*" */
	const int *examine_result;    /* IMAP_PIPELINE_PENDING while the EXAMINE runs */
	struct imap_examine_ctx ex;   /* what the EXAMINE's own answers said */
	GArray *changes;              /* struct flag_change, until delivered */
	GArray *vanished;             /* struct imap_uid_range */
	bool delivered;               /* changes went to the sink */
	bool early;                   /* a FETCH of new mail was answered during the EXAMINE */
	int err;                      /* the sink's first failure */
};

static void flag_change_clear(void *p)
{
	g_strfreev(((struct flag_change *)p)->flags);
}

/* Has the EXAMINE ended OK, for the life the caller knows? */
static bool same_life(const struct resync *rs)
{
	return *rs->examine_result == 0 && rs->ex.have_uidvalidity &&
	       rs->ex.st.uidvalidity == rs->uidvalidity;
}

/* The EXAMINE's flag changes to the sink, once, before any new mail. */
static void deliver_changes(struct resync *rs)
{
	if (rs->delivered || !same_life(rs))
		return;
	rs->delivered = true;
	for (guint i = 0; i < rs->changes->len && rs->err == 0; i++) {
		struct flag_change *c = &g_array_index(rs->changes, struct flag_change, i);
		rs->err = rs->sink->flags(c->uid, c->flags, rs->sink->ctx);
	}
	g_array_set_size(rs->changes, 0);
}

/* "* VANISHED (EARLIER) set": the EXAMINE's report of what was expunged since modseq. */
static int vanished_earlier(struct imap_conn *conn, const struct imap_response *resp,
                            struct resync *rs)
{
	const struct imap_arg *tag = &resp->args[1];
	const char *set;

	if (resp->nargs != 3 || tag->type != IMAP_ARG_LIST || tag->len != 1 ||
	    !imap_arg_is_atom(&tag->u.items[0], "EARLIER"))
		return 0; /* an expunge now, not a report of the past: the next listing's */
	set = imap_arg_str(&resp->args[2]);
	if (set == NULL || !imap_seqset_ranges(set, rs->vanished))
		return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                      "malformed VANISHED response from %s", conn->host);
	return 0;
}

static int resync_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct resync *rs = ctx;
	struct imap_msg_attrs at;
	int r;

	if (*rs->examine_result == IMAP_PIPELINE_PENDING) {
		/* the EXAMINE's own answers */
		if ((r = imap_examine_cb(conn, resp, &rs->ex)) < 0)
			return r;
		if (resp->status == IMAP_STATUS_NONE && resp->nargs >= 2 &&
		    imap_arg_is_atom(&resp->args[0], "VANISHED"))
			return vanished_earlier(conn, resp, rs);
		if ((r = imap_parse_flag_change(conn, resp, &at)) != 0) {
			if (r > 0) {
				struct flag_change c = {at.uid, g_strdupv(at.flags)};
				g_array_append_val(rs->changes, c);
				imap_msg_attrs_clear(&at);
			}
			return r < 0 ? r : 0;
		}
		/* every attribute: an answer to the FETCH before the EXAMINE ended, perhaps
		 * about the mailbox examined before; asked again after */
		if ((r = imap_parse_attrs(conn, resp, &at)) > 0) {
			rs->early = true;
			imap_msg_attrs_clear(&at);
		}
		return r < 0 ? r : 0;
	}
	if (!same_life(rs))
		return 0;
	deliver_changes(rs);
	if ((r = imap_parse_attrs(conn, resp, &at)) <= 0)
		return r; /* flag changes and expunges reported now: the next listing's */
	if (rs->err == 0 && imap_uidset_contains(rs->uidset, at.uid))
		rs->err = rs->sink->attrs(&at, rs->sink->ctx);
	imap_msg_attrs_clear(&at);
	return 0;
}

/* The UID FETCH of new mail on its own, after the EXAMINE (literal names, early answers). */
static int fetch_alone(struct imap_conn *conn, struct resync *rs)
{
	struct imap_cmd *cmd = imap_fetch_attrs_cmd(conn, rs->uidset, 0);
	int err = imap_conn_run(conn, cmd, resync_cb, rs, NULL);

	imap_cmd_free(cmd);
	return err;
}

int imap_examine_qresync(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                         uint64_t modseq, uint32_t uidnext, struct imap_mailbox_status *st_r,
                         GArray **vanished_r, const struct imap_resync_sink *sink)
{
	struct imap_cmd *cmds[2] = {NULL, NULL};
	int results[2] = {IMAP_PIPELINE_PENDING, IMAP_PIPELINE_PENDING};
	struct resync rs = {.sink = sink, .uidvalidity = uidvalidity,
	                    .examine_result = &results[0]};
	char params[80];
	int err;

	*vanished_r = NULL;
	memset(st_r, 0, sizeof(*st_r));
	if (conn->broken)
		return conn->broken_err;
	if (conn->qresync == IMAP_QRESYNC_OFF || modseq == 0 || uidnext == 0 || uidvalidity == 0)
		return imap_conn_fail_errno(conn, -EINVAL, false,
		                            "QRESYNC is not enabled, or nothing to resync from");
	g_snprintf(rs.uidset, sizeof(rs.uidset), "%u:*", uidnext);
	g_snprintf(params, sizeof(params), "(QRESYNC (%u %" G_GUINT64_FORMAT "))", uidvalidity,
	           modseq);
	if ((err = imap_examine_begin_params(conn, raw_name, params, &cmds[0], st_r)) < 0)
		return err;
	rs.changes = g_array_new(FALSE, FALSE, sizeof(struct flag_change));
	g_array_set_clear_func(rs.changes, flag_change_clear);
	rs.vanished = g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	/* QRESYNC implies CONDSTORE: the FETCH may ask for MODSEQ */
	conn->condstore = true;
	if (cmds[0]->chunks->len == 1) {
		cmds[1] = imap_fetch_attrs_cmd(conn, rs.uidset, 0);
		err = imap_conn_run_pipelined(conn, cmds, 2, resync_cb, &rs, results);
	} else {
		/* a literal in the name: nothing can follow it in the same round trip */
		err = imap_conn_run(conn, cmds[0], resync_cb, &rs, NULL);
		results[0] = err;
		results[1] = IMAP_PIPELINE_PENDING;
	}
	if (results[0] < 0) {
		if (results[0] == -EPROTO && !conn->broken) {
			/* BAD: the server does not take the parameter after all */
			conn->qresync = IMAP_QRESYNC_OFF;
			err = imap_conn_fail_errno(conn, -EOPNOTSUPP, false,
			                           "server %s refused EXAMINE (QRESYNC ...)",
			                           conn->host);
		} else {
			err = results[0];
		}
		goto out;
	}
	if (conn->broken) {
		err = conn->broken_err;
		goto out;
	}
	if ((err = imap_examine_finish(conn, raw_name, &rs.ex, st_r)) < 0)
		goto out;
	if (st_r->uidvalidity != uidvalidity) {
		err = -ESTALE; /* nothing was delivered */
		goto out;
	}
	deliver_changes(&rs);
	if (results[1] == IMAP_PIPELINE_PENDING || rs.early)
		err = fetch_alone(conn, &rs);
	else
		err = results[1];
	if (err == 0 && rs.err < 0)
		err = imap_conn_fail_errno(conn, rs.err, false, "re-listing stopped by the caller: %s",
		                           g_strerror(-rs.err));
	if (err == 0) {
		imap_uid_ranges_normalise(rs.vanished);
		*vanished_r = rs.vanished;
		rs.vanished = NULL;
	}
out:
	imap_cmd_free(cmds[0]);
	imap_cmd_free(cmds[1]);
	g_array_unref(rs.changes);
	if (rs.vanished != NULL)
		g_array_unref(rs.vanished);
	return err;
}
