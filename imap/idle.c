/* idle.c — waiting for the server to report changes: NOTIFY SET (RFC 5465) and IDLE
 * (RFC 2177).  The contract is in imap.h.  The caller (a watching thread of the daemon) only
 * learns WHICH mailboxes changed; it then asks for the changes with the ordinary listing
 * commands on another connection, so nothing here interprets message numbers (an EXPUNGE's
 * sequence number is meaningless to a client that keeps no sequence map).
 *
 * The wait is one poll() on the socket and a wake-up fd, so an idle mount costs no CPU
 * between the server's pushes; bytes already received (our read buffer, or TLS records
 * OpenSSL decrypted ahead) are parsed before polling, since poll() cannot see them.
 */
#include "imap-private.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "imap"

/* The mailbox an untagged response during IDLE says changed, or NULL (borrowed). */
static const char *changed_mailbox(const struct imap_conn *conn, const struct imap_response *r)
{
	if (r->status != IMAP_STATUS_NONE || r->nargs < 1)
		return NULL;
	if (r->nargs >= 2 && imap_arg_is_atom(&r->args[0], "STATUS"))
		return imap_arg_str(&r->args[1]);
	if (imap_arg_is_atom(&r->args[0], "VANISHED"))
		return conn->mailbox;
	if (r->nargs >= 2 &&
	    (imap_arg_is_atom(&r->args[1], "EXISTS") || imap_arg_is_atom(&r->args[1], "EXPUNGE") ||
	     imap_arg_is_atom(&r->args[1], "FETCH")))
		return conn->mailbox;
	return NULL;
}

/* What a watcher wants to hear of (RFC 5465 requires MessageExpunge with MessageNew, and both
 * with FlagChange, for the selected mailbox). */
#define EVENTS "(MessageNew MessageExpunge FlagChange)"

/* imap_untagged_cb for commands run between waits: a change reported meanwhile is kept. */
static int collect_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	const char *box = changed_mailbox(conn, resp);
	if (box != NULL && ctx != NULL)
		g_hash_table_add(ctx, g_strdup(box));
	return 0;
}

/* imap_examine_cb, and what a watcher must not miss meanwhile.  A change of the mailbox being
 * left (EXISTS etc. before the tagged answer) is recorded under its name; the caller looks at
 * both anyway. */
static int examine_collect_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct {
		struct imap_examine_ctx ex;
		GHashTable *changed;
	} *c = ctx;
	collect_cb(conn, resp, c->changed);
	return imap_examine_cb(conn, resp, &c->ex);
}

int imap_watch_examine(struct imap_conn *conn, const char *raw_name, GHashTable *changed)
{
	struct {
		struct imap_examine_ctx ex;
		GHashTable *changed;
	} c = {.changed = changed};
	struct imap_mailbox_status st;
	struct imap_cmd *cmd;
	int err = imap_examine_begin(conn, raw_name, &cmd, &st);

	if (err < 0)
		return err;
	err = imap_conn_run(conn, cmd, examine_collect_cb, &c, NULL);
	imap_cmd_free(cmd);
	return err < 0 ? err : imap_examine_finish(conn, raw_name, &c.ex, &st);
}

int imap_watch_noop(struct imap_conn *conn, GHashTable *changed)
{
	struct imap_cmd *cmd = imap_cmd_new();
	int err;

	imap_cmd_add_text(cmd, "NOOP");
	err = imap_conn_run(conn, cmd, collect_cb, changed, NULL);
	imap_cmd_free(cmd);
	return err;
}

int imap_notify_set(struct imap_conn *conn, bool selected, const char *const *raw_names, unsigned n,
                    GHashTable *changed)
{
	struct imap_cmd *cmd;
	int err = 0;

	if (!imap_conn_has_cap(conn, "NOTIFY"))
		return imap_conn_fail_errno(conn, -EOPNOTSUPP, false,
		                            "server %s does not offer NOTIFY", conn->host);
	cmd = imap_cmd_new();
	if (n == 0 && !selected) {
		imap_cmd_add_text(cmd, "NOTIFY NONE");
	} else {
		imap_cmd_add_text(cmd, "NOTIFY SET");
		if (selected)
			imap_cmd_add_text(cmd, " (SELECTED " EVENTS ")");
		if (n > 0)
			imap_cmd_add_text(cmd, " (MAILBOXES (");
		for (unsigned i = 0; i < n && err == 0; i++) {
			if (i > 0)
				imap_cmd_add_text(cmd, " ");
			err = imap_cmd_add_string(cmd, raw_names[i], strlen(raw_names[i]),
			                          imap_conn_literal_mode(conn));
		}
		if (n > 0)
			imap_cmd_add_text(cmd, ") " EVENTS ")");
	}
	if (err < 0) {
		imap_cmd_free(cmd);
		return imap_conn_fail_errno(conn, err, false, "a mailbox name cannot be sent");
	}
	cmd->what = "NOTIFY";
	err = imap_conn_run(conn, cmd, collect_cb, changed, NULL);
	imap_cmd_free(cmd);
	/* After the SET: Dovecot 2.3 then reports HIGHESTMODSEQ in its STATUS events, which is
	 * how a change of flags alone shows in a mailbox that is not selected. */
	if (err == 0 && n > 0 && imap_conn_has_cap(conn, "CONDSTORE")) {
		cmd = imap_cmd_new();
		imap_cmd_add_text(cmd, "ENABLE CONDSTORE");
		err = imap_conn_run(conn, cmd, collect_cb, changed, NULL);
		imap_cmd_free(cmd);
	}
	return err;
}

int imap_idle_begin(struct imap_conn *conn)
{
	char line[32];
	int err;

	if (!imap_conn_has_cap(conn, "IDLE"))
		return imap_conn_fail_errno(conn, -EOPNOTSUPP, false,
		                            "server %s does not offer IDLE", conn->host);
	if (conn->broken)
		return conn->broken_err;
	g_string_truncate(conn->error, 0);
	conn->next_tag++;
	g_snprintf(conn->cur_tag, sizeof(conn->cur_tag), "A%04u", conn->next_tag);
	g_snprintf(line, sizeof(line), "%s IDLE\r\n", conn->cur_tag);
	if ((err = imap_conn_send_line(conn, line)) < 0)
		return err;
	for (;;) {
		struct imap_response *resp;
		if ((err = imap_conn_read(conn, &resp)) < 0)
			return err;
		if (resp->kind == IMAP_RESP_CONTINUATION) {
			imap_response_free(resp);
			return 0;
		}
		if (resp->kind == IMAP_RESP_TAGGED) {
			/* refused (NO/BAD), or a tagged OK without ever idling: either way the
			 * server is not idling; the connection stays in step */
			char *why = imap_response_reason(resp);
			err = imap_conn_fail(conn,
			                     resp->status == IMAP_STATUS_OK ? IMAP_OUTCOME_PROTOCOL
			                     : resp->status == IMAP_STATUS_NO ? IMAP_OUTCOME_NO
			                                                      : IMAP_OUTCOME_BAD,
			                     resp->code, "IDLE failed: %s", why);
			g_free(why);
			imap_response_free(resp);
			return err;
		}
		imap_response_free(resp); /* whatever came before the "+": looked at afresh */
	}
}

int imap_idle_wait(struct imap_conn *conn, int wake_fd, unsigned timeout_ms, GHashTable *changed)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	bool got = false;
	int err;

	if (conn->broken)
		return conn->broken_err;
	for (;;) {
		struct imap_response *resp;
		const char *box;

		if (!imap_conn_buffered(conn)) {
			struct pollfd pfd[2] = {{.fd = conn->fd, .events = POLLIN},
			                        {.fd = wake_fd, .events = POLLIN}};
			gint64 left = deadline - g_get_monotonic_time();
			int r;

			if (got || left <= 0)
				return 0;
			r = poll(pfd, wake_fd >= 0 ? 2 : 1,
			         left / 1000 + 1 > INT_MAX ? INT_MAX : (int)(left / 1000 + 1));
			if (r < 0 && errno != EINTR)
				return imap_conn_fail_errno(conn, -errno, true, "poll: %s",
				                            g_strerror(errno));
			if (r <= 0)
				continue;
			if (wake_fd >= 0 && (pfd[1].revents & POLLIN) != 0)
				return 1;
		}
		if ((err = imap_conn_read(conn, &resp)) < 0)
			return err;
		if (resp->kind != IMAP_RESP_UNTAGGED) {
			err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
			                     "server %s ended IDLE on its own", conn->host);
			imap_response_free(resp);
			return err;
		}
		box = changed_mailbox(conn, resp);
		if (box != NULL) {
			g_hash_table_add(changed, g_strdup(box));
			got = true;
		}
		imap_response_free(resp);
	}
}

int imap_idle_done(struct imap_conn *conn, GHashTable *changed)
{
	int err;

	if ((err = imap_conn_send_line(conn, "DONE\r\n")) < 0)
		return err;
	for (;;) {
		struct imap_response *resp;
		if ((err = imap_conn_read(conn, &resp)) < 0)
			return err;
		if (resp->kind == IMAP_RESP_TAGGED) {
			if (strcmp(resp->tag, conn->cur_tag) != 0)
				err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
				                     "server %s answered tag %s to IDLE %s",
				                     conn->host, resp->tag, conn->cur_tag);
			else if (resp->status != IMAP_STATUS_OK)
				err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, resp->code,
				                     "IDLE ended with a failure");
			imap_response_free(resp);
			return err;
		}
		collect_cb(conn, resp, changed);
		imap_response_free(resp);
	}
}
