/* remote.c — IMAP conversations on pooled connections (see remote.h).  The only file of fs/
 * that calls imap_* command functions; it turns their errors into what a FUSE reply needs. */
#include "remote.h"

#include <errno.h>
#include <string.h>

/* A command function run on one connection. */
typedef int (*remote_fn)(struct imap_conn *conn, void *ctx);

static int to_fuse_errno(int err)
{
	switch (err) {
	case 0:
	case -ENOENT:
	case -ENOMEM:
	case -ESTALE:
		return err;
	default:
		return -EIO;
	}
}

/* Run fn on a pooled connection; retry once on a fresh connection when the first attempt found
 * the connection already closed by the server (not on timeouts: that would double the wait). */
static int with_conn(struct imap_pool *pool, const char *what, remote_fn fn, void *ctx)
{
	int ret = -EIO;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct imap_conn *conn = NULL;
		char *why = NULL;
		bool retry;

		ret = imap_pool_acquire(pool, &conn, &why);
		if (ret < 0) {
			g_warning("%s: cannot get an IMAP connection: %s", what,
			          why ? why : g_strerror(-ret));
			g_free(why);
			return to_fuse_errno(ret == -ENOENT ? -EIO : ret);
		}
		ret = fn(conn, ctx);
		retry = attempt == 0 && ret == -ECONNABORTED && imap_conn_is_broken(conn);
		if (ret < 0 && ret != -ENOENT && ret != -ESTALE)
			g_warning("%s: %s%s", what, imap_conn_error(conn),
			          retry ? " (retrying on a new connection)" : "");
		imap_pool_release(pool, conn);
		if (!retry)
			break;
	}
	return to_fuse_errno(ret);
}

/* ---- LIST ---- */

static int list_fn(struct imap_conn *conn, void *ctx)
{
	return imap_list(conn, ctx);
}

int ifs_remote_list(struct imap_pool *pool, GPtrArray **folders_r)
{
	*folders_r = NULL;
	return with_conn(pool, "LIST", list_fn, folders_r);
}

/* ---- listing ---- */

struct listing_ctx {
	const char *raw_name;
	uint32_t uidvalidity;
	GArray *uids;  /* from SEARCH, ascending */
	GArray *msgs;
};

static void msg_attr_clear(void *p)
{
	struct ifs_msg_attr *m = p;
	g_free(m->flags);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_attr(const void *a, const void *b)
{
	return cmp_u32(&((const struct ifs_msg_attr *)a)->uid,
	               &((const struct ifs_msg_attr *)b)->uid);
}

static int attrs_cb(const struct imap_msg_attrs *a, void *p)
{
	struct listing_ctx *ctx = p;
	struct ifs_msg_attr m = {.uid = a->uid, .size = a->size, .internaldate = a->internaldate};
	GString *flags = g_string_new(NULL);

	/* Only what SEARCH reported: one consistent snapshot of the folder. */
	if (bsearch(&a->uid, ctx->uids->data, ctx->uids->len, sizeof(uint32_t), cmp_u32) == NULL) {
		g_string_free(flags, TRUE);
		return 0;
	}
	for (size_t i = 0; a->flags != NULL && a->flags[i] != NULL; i++) {
		/* \Recent belongs to one IMAP session (ours), not to the message. */
		if (g_ascii_strcasecmp(a->flags[i], "\\Recent") == 0)
			continue;
		g_string_append(flags, a->flags[i]);
		g_string_append_c(flags, '\n');
	}
	m.flags = g_string_free(flags, FALSE);
	g_array_append_val(ctx->msgs, m);
	return 0;
}

static int listing_fn(struct imap_conn *conn, void *p)
{
	struct listing_ctx *ctx = p;
	struct imap_mailbox_status st;
	int ret;

	g_clear_pointer(&ctx->uids, g_array_unref);
	g_array_set_size(ctx->msgs, 0);
	ret = imap_examine(conn, ctx->raw_name, &st);
	if (ret < 0)
		return ret;
	ctx->uidvalidity = st.uidvalidity;
	ret = imap_uid_search(conn, &ctx->uids, "ALL");
	if (ret < 0)
		return ret;
	g_array_sort(ctx->uids, cmp_u32);
	if (ctx->uids->len == 0)
		return 0;
	/* One command for the whole folder, never one per message. */
	ret = imap_uid_fetch_attrs(conn, "1:*", attrs_cb, ctx);
	if (ret < 0)
		return ret;
	g_array_sort(ctx->msgs, cmp_attr);
	/* A server repeating a UID must not give us two entries with one name. */
	for (guint i = 1; i < ctx->msgs->len;) {
		if (g_array_index(ctx->msgs, struct ifs_msg_attr, i).uid ==
		    g_array_index(ctx->msgs, struct ifs_msg_attr, i - 1).uid)
			g_array_remove_index(ctx->msgs, i);
		else
			i++;
	}
	return 0;
}

int ifs_remote_listing(struct imap_pool *pool, const char *raw_name, uint32_t *uidvalidity_r,
                       GArray **msgs_r)
{
	struct listing_ctx ctx = {.raw_name = raw_name};
	char *what = g_strdup_printf("listing %s", raw_name);
	int ret;

	ctx.msgs = g_array_new(FALSE, FALSE, sizeof(struct ifs_msg_attr));
	g_array_set_clear_func(ctx.msgs, msg_attr_clear);
	ret = with_conn(pool, what, listing_fn, &ctx);
	g_free(what);
	g_clear_pointer(&ctx.uids, g_array_unref);
	if (ret < 0) {
		g_array_unref(ctx.msgs);
		return ret;
	}
	*uidvalidity_r = ctx.uidvalidity;
	*msgs_r = ctx.msgs;
	return 0;
}

/* ---- one message ---- */

struct fetch_ctx {
	const char *raw_name;
	uint32_t uidvalidity;
	uint32_t uid;
	GBytes *raw;
};

static int fetch_fn(struct imap_conn *conn, void *p)
{
	struct fetch_ctx *ctx = p;
	const char *cur = imap_conn_mailbox(conn);
	int ret;

	if (cur == NULL || strcmp(cur, ctx->raw_name) != 0) {
		struct imap_mailbox_status st;
		ret = imap_examine(conn, ctx->raw_name, &st);
		if (ret < 0)
			return ret;
		if (st.uidvalidity != ctx->uidvalidity)
			return -ESTALE;
	}
	g_clear_pointer(&ctx->raw, g_bytes_unref);
	return imap_uid_fetch_message(conn, ctx->uid, &ctx->raw);
}

int ifs_remote_fetch(struct imap_pool *pool, const char *raw_name, uint32_t uidvalidity,
                     uint32_t uid, GBytes **raw_r)
{
	struct fetch_ctx ctx = {.raw_name = raw_name, .uidvalidity = uidvalidity, .uid = uid};
	char *what = g_strdup_printf("fetching UID %u of %s", uid, raw_name);
	int ret = with_conn(pool, what, fetch_fn, &ctx);

	g_free(what);
	if (ret < 0) {
		g_clear_pointer(&ctx.raw, g_bytes_unref);
		return ret;
	}
	*raw_r = ctx.raw;
	return 0;
}
