/* quota.c — GETQUOTAROOT (RFC 9208, which RFC 2087 servers answer alike): how much of which
 * resource the quota roots of a mailbox allow, reduced to the figures a file system shows.
 *
 * The answer is untagged QUOTAROOT (the mailbox and its roots, possibly none) and one QUOTA per
 * root: a list of (resource usage limit) triples.  Hostile input is harmless: a QUOTA of a root
 * the QUOTAROOT did not name, a triple that is not (atom number number), and numbers over 63
 * bits are ignored; a usage above its limit counts as full. */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

struct quota_ctx {
	GPtrArray *roots; /* from QUOTAROOT (new strings); NULL until it came */
	GArray *quotas;   /* struct root_quota, in the order the QUOTA responses came */
};

struct root_quota {
	char *root;
	struct imap_quota_resource storage, messages;
};

/* One (usage, limit) of a QUOTA response into r, keeping the tighter of two for one root. */
static void take(struct imap_quota_resource *r, uint64_t usage, uint64_t limit)
{
	uint64_t avail = usage < limit ? limit - usage : 0;
	if (r->present && (r->limit > r->usage ? r->limit - r->usage : 0) <= avail)
		return;
	r->present = true;
	r->usage = usage;
	r->limit = limit;
}

static int quota_cb(struct imap_conn *conn, const struct imap_response *resp, void *p)
{
	struct quota_ctx *ctx = p;

	if (resp->status != IMAP_STATUS_NONE || resp->nargs < 2)
		return 0;
	if (imap_arg_is_atom(&resp->args[0], "QUOTAROOT")) {
		if (ctx->roots == NULL)
			ctx->roots = g_ptr_array_new_with_free_func(g_free);
		for (unsigned i = 2; i < resp->nargs; i++) {
			const char *root = imap_arg_str(&resp->args[i]);
			if (root != NULL)
				g_ptr_array_add(ctx->roots, g_strdup(root));
		}
		return 0;
	}
	if (!imap_arg_is_atom(&resp->args[0], "QUOTA") || resp->nargs != 3 ||
	    imap_arg_str(&resp->args[1]) == NULL || resp->args[2].type != IMAP_ARG_LIST)
		return 0;
	struct root_quota rq = {g_strdup(imap_arg_str(&resp->args[1])), {0}, {0}};
	const struct imap_arg *list = &resp->args[2];
	for (unsigned i = 0; i + 2 < list->len + 0u; i += 3) {
		const struct imap_arg *name = &list->u.items[i];
		uint64_t usage, limit;
		if (name->type != IMAP_ARG_ATOM ||
		    !imap_arg_number(&list->u.items[i + 1], &usage) ||
		    !imap_arg_number(&list->u.items[i + 2], &limit) || usage > INT64_MAX ||
		    limit > INT64_MAX)
			continue;
		if (imap_arg_is_atom(name, "STORAGE"))
			take(&rq.storage, usage, limit);
		else if (imap_arg_is_atom(name, "MESSAGE"))
			take(&rq.messages, usage, limit);
	}
	g_array_append_val(ctx->quotas, rq);
	return 0;
}

static bool named(const GPtrArray *roots, const char *root)
{
	for (guint i = 0; roots != NULL && i < roots->len; i++)
		if (strcmp(roots->pdata[i], root) == 0)
			return true;
	return false;
}

int imap_getquotaroot(struct imap_conn *conn, const char *raw_name, struct imap_quota *q_r)
{
	struct quota_ctx ctx = {NULL, g_array_new(FALSE, FALSE, sizeof(struct root_quota))};
	struct imap_cmd *cmd;
	int err;

	memset(q_r, 0, sizeof(*q_r));
	if (conn->broken) {
		err = conn->broken_err;
		goto out;
	}
	if (!imap_conn_has_cap(conn, "QUOTA")) {
		err = imap_conn_fail_errno(conn, -EOPNOTSUPP, false, "the server offers no QUOTA");
		goto out;
	}
	cmd = imap_cmd_new();
	imap_cmd_add_text(cmd, "GETQUOTAROOT ");
	if (imap_cmd_add_string(cmd, raw_name, strlen(raw_name), imap_conn_literal_mode(conn)) <
	    0) {
		imap_cmd_free(cmd);
		err = imap_conn_fail_errno(conn, -EINVAL, false,
		                           "mailbox name contains CR, LF or NUL");
		goto out;
	}
	err = imap_conn_run(conn, cmd, quota_cb, &ctx, NULL);
	imap_cmd_free(cmd);
	if (err < 0)
		goto out;
	/* Every root of the mailbox counts: what is left is the least any of them leaves. */
	for (guint i = 0; i < ctx.quotas->len; i++) {
		const struct root_quota *rq = &g_array_index(ctx.quotas, struct root_quota, i);
		if (!named(ctx.roots, rq->root))
			continue;
		if (rq->storage.present)
			take(&q_r->storage, rq->storage.usage, rq->storage.limit);
		if (rq->messages.present)
			take(&q_r->messages, rq->messages.usage, rq->messages.limit);
	}
	/* roots: the distinct roots named that answered */
	for (guint r = 0; ctx.roots != NULL && r < ctx.roots->len; r++) {
		bool again = false, answered = false;
		for (guint e = 0; e < r && !again; e++)
			again = strcmp(ctx.roots->pdata[e], ctx.roots->pdata[r]) == 0;
		for (guint i = 0; i < ctx.quotas->len && !again && !answered; i++)
			answered = strcmp(g_array_index(ctx.quotas, struct root_quota, i).root,
			                  ctx.roots->pdata[r]) == 0;
		if (answered)
			q_r->roots++;
	}
out:
	for (guint i = 0; i < ctx.quotas->len; i++)
		g_free(g_array_index(ctx.quotas, struct root_quota, i).root);
	g_array_unref(ctx.quotas);
	if (ctx.roots != NULL)
		g_ptr_array_unref(ctx.roots);
	return err;
}
