/* remote.c — IMAP conversations on pooled connections (see remote.h).  The only file of fs/
 * that calls imap_* command functions; it turns their errors into what a FUSE reply needs. */
#include "remote.h"

#include <errno.h>
#include <string.h>

/* Bodies received (counted where they arrive), for the stats xattr and the exit log. */
static uint64_t stat_bodies, stat_bytes;

/* Offline state (see remote.h), one per process like the counters above: a daemon talks to
 * one server.  off_lock guards the fields after it; under it only a pool's lock is taken
 * (imap_pool_interrupt, when going offline), and it is never taken under a pool's lock. */
static GMutex off_lock;
static GCond off_changed;       /* signalled when the daemon goes offline */
static bool off_now;
static uint64_t off_periods;    /* times the daemon went offline */
static uint64_t off_fast;       /* atomic: calls failed at once because offline */
static GPtrArray *off_pools;    /* the reconnector's pools (borrowed), interrupted when going
                                 * offline; NULL without a reconnector */

bool ifs_remote_unreachable_error(int err)
{
	switch (-err) {
	case ECONNREFUSED:
	case ETIMEDOUT:
	case ENETUNREACH:
	case ENETDOWN:
	case EHOSTUNREACH: /* also: the host name does not resolve (imap.h) */
	case EHOSTDOWN:
	case ECONNRESET:
	case ECONNABORTED: /* the server closed the connection before or during the login */
	case EPIPE:
	case EADDRNOTAVAIL:
		return true;
	default:
		return false; /* refused login, certificate, protocol: not a network outage */
	}
}

void ifs_remote_set_offline(const char *why, bool say)
{
	g_mutex_lock(&off_lock);
	if (!off_now) {
		off_now = true;
		off_periods++;
		if (say)
			g_message("offline: serving what is known and cached until the server "
			          "answers again (%s)", why);
		/* calls already waiting on other connections to the server give up now rather
		 * than each after its own timeout */
		for (guint i = 0; off_pools != NULL && i < off_pools->len; i++) {
			bool seen = false; /* pools may be shared (few connections) */
			for (guint k = 0; k < i; k++)
				seen = seen || off_pools->pdata[k] == off_pools->pdata[i];
			if (!seen)
				imap_pool_interrupt(off_pools->pdata[i], why);
		}
		g_cond_broadcast(&off_changed);
	}
	g_mutex_unlock(&off_lock);
}

bool ifs_remote_offline(void)
{
	bool now;

	g_mutex_lock(&off_lock);
	now = off_now;
	g_mutex_unlock(&off_lock);
	return now;
}

void ifs_remote_offline_stats(bool *offline_r, uint64_t *periods_r, uint64_t *fast_fails_r)
{
	g_mutex_lock(&off_lock);
	*offline_r = off_now;
	*periods_r = off_periods;
	g_mutex_unlock(&off_lock);
	*fast_fails_r = __atomic_load_n(&off_fast, __ATOMIC_RELAXED);
}

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

	/* Offline: fail at once; the reconnector alone knocks on the server's door, so no
	 * reader ever waits for the timeout of a server known to be unreachable. */
	if (ifs_remote_offline()) {
		__atomic_fetch_add(&off_fast, 1, __ATOMIC_RELAXED);
		return -EIO;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		struct imap_conn *conn = NULL;
		char *why = NULL;
		bool retry;

		ret = imap_pool_acquire(pool, &conn, &why);
		if (ret < 0) {
			/* The pool logs an outage once when it starts and once when it ends; a line
			 * per failed request would flood the log while the server is down. */
			g_debug("%s: cannot get an IMAP connection: %s", what,
			        why ? why : g_strerror(-ret));
			if (ifs_remote_unreachable_error(ret))
				ifs_remote_set_offline(why ? why : g_strerror(-ret), true);
			g_free(why);
			return to_fuse_errno(ret == -ENOENT ? -EIO : ret);
		}
		ret = fn(conn, ctx);
		if (ret == -ETIMEDOUT && ifs_remote_offline()) {
			/* another call has found the server silent meanwhile: said already */
			g_debug("%s: %s", what, imap_conn_error(conn));
			imap_pool_release(pool, conn);
			__atomic_fetch_add(&off_fast, 1, __ATOMIC_RELAXED);
			return -EIO;
		}
		if (ret == -ETIMEDOUT) {
			/* The server stopped answering for `timeout`: it cannot be reached.  Going
			 * offline now makes the calls waiting on other connections give up, and
			 * no later call waits for the timeout again (issue 12). */
			g_warning("%s: %s", what, imap_conn_error(conn));
			ifs_remote_set_offline(imap_conn_error(conn), true);
			imap_pool_release(pool, conn);
			return -EIO;
		}
		retry = attempt == 0 && ret == -ECONNABORTED && imap_conn_is_broken(conn);
		if (ifs_remote_offline() && ifs_remote_unreachable_error(ret)) {
			/* given up because the daemon went offline meanwhile (interrupted): as if it
			 * had been offline from the start, and no retry */
			g_debug("%s: %s", what, imap_conn_error(conn));
			imap_pool_release(pool, conn);
			__atomic_fetch_add(&off_fast, 1, __ATOMIC_RELAXED);
			return -EIO;
		}
		/* A connection the server had closed is retried quietly; a failure that stands is
		 * worth a warning. */
		if (retry)
			g_debug("%s: %s (retrying on a new connection)", what, imap_conn_error(conn));
		else if (ret < 0 && ret != -ENOENT && ret != -ESTALE)
			g_warning("%s: %s", what, imap_conn_error(conn));
		imap_pool_release(pool, conn);
		if (!retry)
			break;
	}
	return to_fuse_errno(ret);
}

/* ---- LIST ---- */

struct list_ctx {
	bool special_use;
	GPtrArray **folders_r;
};

static int list_fn(struct imap_conn *conn, void *ctx)
{
	struct list_ctx *lc = ctx;
	return imap_list(conn, lc->special_use, lc->folders_r);
}

int ifs_remote_list(struct imap_pool *pool, bool special_use, GPtrArray **folders_r)
{
	struct list_ctx lc = {special_use, folders_r};
	*folders_r = NULL;
	return with_conn(pool, "LIST", list_fn, &lc);
}

int ifs_remote_list_on(struct imap_conn *conn, bool special_use, GPtrArray **folders_r,
                       char **why_r)
{
	struct list_ctx lc = {special_use, folders_r};
	int ret;

	*folders_r = NULL;
	*why_r = NULL;
	ret = list_fn(conn, &lc);
	if (ret < 0)
		*why_r = g_strdup(imap_conn_error(conn));
	return to_fuse_errno(ret);
}

/* ---- listing ---- */

struct listing_ctx {
	const char *raw_name;
	const struct ifs_listing_state *prev;
	GArray *prev_msgs;
	struct ifs_listing_state st;
	GArray *uids;  /* from SEARCH, ascending; NULL: accept every UID */
	GArray *msgs;
	GArray *flag_changes; /* QRESYNC: known messages' new flags (size and date unset) */
	bool unchanged;
};

static void msg_attr_clear(void *p)
{
	struct ifs_msg_attr *m = p;
	g_free(m->flags);
	ifs_msg_ident_unref(m->ident);
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

/* Append what the server said of one message to msgs (struct ifs_msg_attr). */
static void append_attr(GArray *msgs, const struct imap_msg_attrs *a)
{
	struct ifs_msg_attr m = {.uid = a->uid, .size = a->size, .internaldate = a->internaldate};
	GString *flags = g_string_new(NULL);

	for (size_t i = 0; a->flags != NULL && a->flags[i] != NULL; i++) {
		/* \Recent belongs to one IMAP session (ours), not to the message. */
		if (g_ascii_strcasecmp(a->flags[i], "\\Recent") == 0)
			continue;
		g_string_append(flags, a->flags[i]);
		g_string_append_c(flags, '\n');
	}
	m.flags = g_string_free(flags, FALSE);
	m.ident = ifs_msg_ident_new(a->email_id, a->thread_id, a->labels);
	g_array_append_val(msgs, m);
}

static int attrs_cb(const struct imap_msg_attrs *a, void *p)
{
	struct listing_ctx *ctx = p;

	/* Only what SEARCH reported: one consistent snapshot of the folder. */
	if (ctx->uids != NULL &&
	    bsearch(&a->uid, ctx->uids->data, ctx->uids->len, sizeof(uint32_t), cmp_u32) == NULL)
		return 0;
	append_attr(ctx->msgs, a);
	return 0;
}

/* Sort by UID; of repeated UIDs keep the last one appended (the newest news). */
static void sort_unique(GArray *msgs)
{
	guint w = 0;

	/* g_array_sort is stable (GLib >= 2.32): equal UIDs keep their order. */
	g_array_sort(msgs, cmp_attr);
	for (guint r = 0; r < msgs->len; r++) {
		struct ifs_msg_attr *m = &g_array_index(msgs, struct ifs_msg_attr, r);
		if (w > 0 && g_array_index(msgs, struct ifs_msg_attr, w - 1).uid == m->uid) {
			msg_attr_clear(&g_array_index(msgs, struct ifs_msg_attr, w - 1));
			g_array_index(msgs, struct ifs_msg_attr, w - 1) = *m;
			continue;
		}
		g_array_index(msgs, struct ifs_msg_attr, w++) = *m;
	}
	/* the tail now holds moved-out copies: drop them without freeing their flags */
	g_array_set_clear_func(msgs, NULL);
	g_array_set_size(msgs, w);
	g_array_set_clear_func(msgs, msg_attr_clear);
}

static int full_listing(struct imap_conn *conn, struct listing_ctx *ctx)
{
	int ret;

	if (ctx->st.exists == 0)
		return imap_uid_search(conn, &ctx->uids, "ALL");
	/* One round trip for the whole folder (SEARCH and FETCH pipelined), never one command
	 * per message. */
	ret = imap_uid_list_all(conn, &ctx->uids, attrs_cb, ctx);
	if (ret < 0)
		return ret;
	sort_unique(ctx->msgs);
	return 0;
}

static struct ifs_msg_attr *find_attr(GArray *msgs, uint32_t uid)
{
	struct ifs_msg_attr key = {.uid = uid};
	return bsearch(&key, msgs->data, msgs->len, sizeof(struct ifs_msg_attr), cmp_attr);
}

static int keep_listed(struct imap_conn *conn, struct listing_ctx *ctx);
static void append_copies(GArray *dst, const GArray *src);
static int settle(struct imap_conn *conn, struct listing_ctx *ctx, GArray *msgs);

/* RFC 7162: only what changed since the previous listing. */
static int incremental_listing(struct imap_conn *conn, struct listing_ctx *ctx)
{
	const struct ifs_listing_state *prev = ctx->prev;
	GArray *changes = ctx->msgs;
	GArray *msgs;
	int ret;
	/* fewer messages than before: mail was expunged, whatever arrived */
	bool expunged = ctx->st.exists < ctx->prev_msgs->len;

	/* New mail, flag changes and (when certainly needed) which UIDs are left, in one round
	 * trip.  "n:*" also returns the highest UID when it is below n: attrs_cb keeps it, and
	 * the merge below makes it harmless; attrs_cb takes every answer (ctx->uids is set only
	 * once the SEARCH has ended), the SEARCH filters below. */
	ret = imap_uid_fetch_changes(
	    conn, prev->uidnext, ctx->st.uidnext != prev->uidnext,
	    ctx->st.highestmodseq != prev->highestmodseq ? prev->highestmodseq : 0,
	    expunged ? &ctx->uids : NULL, attrs_cb, ctx);
	if (ret < 0)
		return ret;
	/* previous messages, then the changes (which win in sort_unique) */
	msgs = g_array_sized_new(FALSE, FALSE, sizeof(struct ifs_msg_attr),
	                         ctx->prev_msgs->len + changes->len);
	g_array_set_clear_func(msgs, msg_attr_clear);
	append_copies(msgs, ctx->prev_msgs);
	return settle(conn, ctx, msgs);
}

/* Append copies (flags too) of src's messages to dst. */
static void append_copies(GArray *dst, const GArray *src)
{
	for (guint i = 0; i < src->len; i++) {
		struct ifs_msg_attr m = g_array_index(src, struct ifs_msg_attr, i);
		m.flags = g_strdup(m.flags);
		m.ident = ifs_msg_ident_ref(m.ident);
		g_array_append_val(dst, m);
	}
}

/* msgs (taken) holds the previous listing brought up to date: append the changes the server
 * reported with every attribute (ctx->msgs, which win in sort_unique), make it ctx->msgs,
 * and check it against EXISTS. */
static int settle(struct imap_conn *conn, struct listing_ctx *ctx, GArray *msgs)
{
	append_copies(msgs, ctx->msgs);
	sort_unique(msgs);
	g_array_unref(ctx->msgs);
	ctx->msgs = msgs;
	return keep_listed(conn, ctx);
}

/* ctx->msgs, the previous listing updated with the changes, should hold EXISTS messages; if
 * not, ask which UIDs are left (ctx->uids when a SEARCH ALL went along already). */
static int keep_listed(struct imap_conn *conn, struct listing_ctx *ctx)
{
	GArray *msgs = ctx->msgs;
	int ret;

	if (msgs->len != ctx->st.exists) {
		/* Something was expunged (or arrived meanwhile): which UIDs are still there? */
		GArray *keep;
		if (ctx->uids == NULL) {
			ret = imap_uid_search(conn, &ctx->uids, "ALL");
			if (ret < 0)
				return ret;
		}
		keep = g_array_sized_new(FALSE, FALSE, sizeof(struct ifs_msg_attr), ctx->uids->len);
		g_array_set_clear_func(keep, msg_attr_clear);
		for (guint i = 0; i < ctx->uids->len; i++) {
			struct ifs_msg_attr *m = find_attr(msgs, g_array_index(ctx->uids, uint32_t, i));
			if (m != NULL) {
				struct ifs_msg_attr c = *m;
				c.flags = g_strdup(m->flags);
				c.ident = ifs_msg_ident_ref(m->ident);
				g_array_append_val(keep, c);
			}
		}
		if (keep->len != ctx->uids->len) {
			/* UIDs we have never seen below UIDNEXT: not a case to be clever about */
			g_array_unref(keep);
			g_array_set_size(ctx->msgs, 0);
			ret = imap_uid_fetch_attrs(conn, "1:*", attrs_cb, ctx);
			if (ret < 0)
				return ret;
			sort_unique(ctx->msgs);
			return 0;
		}
		g_array_unref(ctx->msgs);
		ctx->msgs = keep;
	}
	return 0;
}

/* The previous listing and this EXAMINE describe the same life of the folder (same
 * UIDVALIDITY) with known UIDNEXTs, so they can be compared at all. */
static bool same_folder_life(const struct listing_ctx *ctx)
{
	const struct ifs_listing_state *prev = ctx->prev;

	return prev != NULL && ctx->prev_msgs != NULL && prev->uidvalidity == ctx->st.uidvalidity &&
	       prev->uidnext != 0 && ctx->st.uidnext != 0;
}

/* Nothing changed since the previous listing: same UIDNEXT, EXISTS and HIGHESTMODSEQ, and the
 * previous listing holds EXISTS messages.  New mail moves UIDNEXT (UIDs are never reused) and
 * an expunge without new mail lowers EXISTS, so only flag changes can hide behind equal
 * numbers, and under CONDSTORE they move HIGHESTMODSEQ.  Without CONDSTORE both HIGHESTMODSEQs
 * are 0 and a flag change goes unseen until the message set changes. */
static bool listing_unchanged(const struct listing_ctx *ctx)
{
	const struct ifs_listing_state *prev = ctx->prev, *now = &ctx->st;

	return same_folder_life(ctx) && prev->uidnext == now->uidnext &&
	       prev->exists == now->exists && prev->highestmodseq == now->highestmodseq &&
	       ctx->prev_msgs->len == now->exists;
}

static void set_state(struct listing_ctx *ctx, const struct imap_mailbox_status *st)
{
	ctx->st.uidvalidity = st->uidvalidity;
	ctx->st.uidnext = st->uidnext;
	ctx->st.exists = st->exists;
	ctx->st.highestmodseq = st->highestmodseq;
}

static int flag_change_cb(uint32_t uid, char **flags, void *p)
{
	struct listing_ctx *ctx = p;
	struct imap_msg_attrs a = {.uid = uid, .flags = flags};

	append_attr(ctx->flag_changes, &a);
	return 0;
}

/* QRESYNC (RFC 7162): expunges, flag changes and new mail since the previous listing in one
 * round trip (imap_examine_qresync).  -EOPNOTSUPP: the server would not; nothing was
 * learnt, and the connection examines nothing. */
static int qresync_listing(struct imap_conn *conn, struct listing_ctx *ctx)
{
	const struct ifs_listing_state *prev = ctx->prev;
	const struct imap_resync_sink sink = {flag_change_cb, attrs_cb, ctx};
	struct imap_mailbox_status st;
	GArray *vanished = NULL, *msgs;
	int ret;

	ret = imap_examine_qresync(conn, ctx->raw_name, prev->uidvalidity, prev->highestmodseq,
	                           prev->uidnext, &st, &vanished, &sink);
	if (ret < 0 && ret != -ESTALE)
		return ret;
	set_state(ctx, &st);
	if (ret == -ESTALE) /* another life of the folder: nothing of the old one holds */
		return full_listing(conn, ctx);
	if (listing_unchanged(ctx)) {
		ctx->unchanged = true;
		g_array_unref(vanished);
		return 0;
	}
	/* the previous listing without what vanished, with the new flags, then the new mail
	 * (which wins in sort_unique) */
	sort_unique(ctx->flag_changes);
	msgs = g_array_sized_new(FALSE, FALSE, sizeof(struct ifs_msg_attr),
	                         ctx->prev_msgs->len + ctx->msgs->len);
	g_array_set_clear_func(msgs, msg_attr_clear);
	for (guint i = 0; i < ctx->prev_msgs->len; i++) {
		struct ifs_msg_attr m = g_array_index(ctx->prev_msgs, struct ifs_msg_attr, i);
		struct ifs_msg_attr *changed = find_attr(ctx->flag_changes, m.uid);
		if (imap_uid_ranges_contain(vanished, m.uid))
			continue;
		m.flags = g_strdup(changed != NULL ? changed->flags : m.flags);
		m.ident = ifs_msg_ident_ref(m.ident);
		g_array_append_val(msgs, m);
	}
	g_array_unref(vanished);
	return settle(conn, ctx, msgs);
}

/* May the previous listing be brought up to date with QRESYNC on conn? */
static bool can_resync(struct imap_conn *conn, const struct listing_ctx *ctx)
{
	const struct ifs_listing_state *prev = ctx->prev;

	return prev != NULL && ctx->prev_msgs != NULL && imap_conn_qresync(conn) &&
	       prev->uidvalidity != 0 && prev->uidnext != 0 && prev->highestmodseq != 0;
}

static int listing_fn(struct imap_conn *conn, void *p)
{
	struct listing_ctx *ctx = p;
	struct imap_mailbox_status st;
	int ret;

	g_clear_pointer(&ctx->uids, g_array_unref);
	g_array_set_size(ctx->msgs, 0);
	g_array_set_size(ctx->flag_changes, 0);
	ctx->unchanged = false;
	if (can_resync(conn, ctx)) {
		ret = qresync_listing(conn, ctx);
		if (ret != -EOPNOTSUPP)
			return ret;
		/* the server would not after all: as without QRESYNC */
		g_clear_pointer(&ctx->uids, g_array_unref);
		g_array_set_size(ctx->msgs, 0);
	}
	if (ctx->prev == NULL) {
		/* A first listing needs nothing from the EXAMINE to know what to ask next: all
		 * three commands in one round trip. */
		ret = imap_examine_list_all(conn, ctx->raw_name, &st, &ctx->uids, attrs_cb, ctx);
		if (ret < 0 && ret != -EAGAIN)
			return ret;
		set_state(ctx, &st);
		if (ret == -EAGAIN) {
			/* the server answered before examining: start over, one step at a time */
			g_clear_pointer(&ctx->uids, g_array_unref);
			g_array_set_size(ctx->msgs, 0);
			return full_listing(conn, ctx);
		}
		sort_unique(ctx->msgs);
		return 0;
	}
	ret = imap_examine(conn, ctx->raw_name, &st);
	if (ret < 0)
		return ret;
	set_state(ctx, &st);
	if (listing_unchanged(ctx)) {
		ctx->unchanged = true;
		return 0;
	}
	/* RFC 7162: ask only for the changes, when both listings were made under CONDSTORE */
	if (same_folder_life(ctx) && ctx->prev->highestmodseq != 0 && ctx->st.highestmodseq != 0)
		return incremental_listing(conn, ctx);
	return full_listing(conn, ctx);
}

int ifs_remote_listing(struct imap_pool *pool, const char *raw_name,
                       const struct ifs_listing_state *prev, GArray *prev_msgs,
                       struct ifs_listing_state *st_r, GArray **msgs_r)
{
	struct listing_ctx ctx = {.raw_name = raw_name, .prev = prev, .prev_msgs = prev_msgs};
	char *what = g_strdup_printf("listing %s", raw_name);
	int ret;

	ctx.msgs = g_array_new(FALSE, FALSE, sizeof(struct ifs_msg_attr));
	g_array_set_clear_func(ctx.msgs, msg_attr_clear);
	ctx.flag_changes = g_array_new(FALSE, FALSE, sizeof(struct ifs_msg_attr));
	g_array_set_clear_func(ctx.flag_changes, msg_attr_clear);
	ret = with_conn(pool, what, listing_fn, &ctx);
	g_free(what);
	g_clear_pointer(&ctx.uids, g_array_unref);
	g_array_unref(ctx.flag_changes);
	if (ret < 0 || ctx.unchanged) {
		g_array_unref(ctx.msgs);
		ctx.msgs = NULL;
	}
	if (ret < 0)
		return ret;
	*st_r = ctx.st;
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

/* Does conn examine raw_name in the life (UIDVALIDITY) the caller's UIDs belong to?  One that
 * examined it in an earlier life (the folder was deleted and recreated since) must examine it
 * again, so that a UID is never fetched from the wrong life. */
static bool examines(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity)
{
	const char *cur = imap_conn_mailbox(conn);

	return cur != NULL && strcmp(cur, raw_name) == 0 &&
	       imap_conn_uidvalidity(conn) == uidvalidity;
}

static int fetch_fn(struct imap_conn *conn, void *p)
{
	struct fetch_ctx *ctx = p;
	struct imap_mailbox_status st;

	g_clear_pointer(&ctx->raw, g_bytes_unref);
	if (examines(conn, ctx->raw_name, ctx->uidvalidity))
		return imap_uid_fetch_message(conn, ctx->uid, &ctx->raw);
	/* EXAMINE in the same round trip; -ESTALE if the folder's UIDVALIDITY changed */
	return imap_examine_fetch_message(conn, ctx->raw_name, ctx->uidvalidity, ctx->uid,
	                                  &ctx->raw, &st);
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
	__atomic_fetch_add(&stat_bodies, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&stat_bytes, g_bytes_get_size(ctx.raw), __ATOMIC_RELAXED);
	*raw_r = ctx.raw;
	return 0;
}

/* ---- bodies into a sink ---- */

struct bodies_ctx {
	const char *raw_name;
	uint32_t uidvalidity;
	const char *uidset;
	const struct imap_body_sink *sink;
	struct imap_body_sink counting; /* wraps sink to count what arrives */
};

static int count_begin(void *p, uint32_t uid, uint64_t size)
{
	struct bodies_ctx *ctx = p;
	int r = ctx->sink->begin(ctx->sink->ctx, uid, size);
	if (r == 0) {
		__atomic_fetch_add(&stat_bodies, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&stat_bytes, size, __ATOMIC_RELAXED);
	}
	return r;
}

static int count_data(void *p, const void *buf, size_t len)
{
	struct bodies_ctx *ctx = p;
	return ctx->sink->data(ctx->sink->ctx, buf, len);
}

static int count_end(void *p, uint32_t uid)
{
	struct bodies_ctx *ctx = p;
	return ctx->sink->end(ctx->sink->ctx, uid);
}

static int bodies_fn(struct imap_conn *conn, void *p)
{
	struct bodies_ctx *ctx = p;
	struct imap_mailbox_status st;

	if (examines(conn, ctx->raw_name, ctx->uidvalidity))
		return imap_uid_fetch_body(conn, ctx->uidset, IMAP_SECTION_FULL, 0, 0,
		                           &ctx->counting);
	/* Examined in the same round trip as the FETCH, which delivers nothing unless the
	 * folder still has the UIDVALIDITY the UIDs belong to (-ESTALE otherwise). */
	return imap_examine_fetch_body(conn, ctx->raw_name, ctx->uidvalidity, ctx->uidset,
	                               &ctx->counting, &st);
}

int ifs_remote_fetch_bodies(struct imap_pool *pool, const char *raw_name, uint32_t uidvalidity,
                            const char *uidset, const struct imap_body_sink *sink)
{
	struct bodies_ctx ctx = {.raw_name = raw_name, .uidvalidity = uidvalidity,
	                         .uidset = uidset, .sink = sink};
	char *what = g_strdup_printf("fetching UID %s of %s", uidset, raw_name);
	int ret;

	ctx.counting.begin = count_begin;
	ctx.counting.data = count_data;
	ctx.counting.end = count_end;
	ctx.counting.ctx = &ctx;
	ret = with_conn(pool, what, bodies_fn, &ctx);
	g_free(what);
	return ret;
}

/* ---- pieces ---- */

static uint64_t stat_pieces, stat_piece_bytes;

struct pieces_ctx {
	const char *raw_name;
	uint32_t uidvalidity;
	struct imap_fetch_request *reqs;
	unsigned n;
	const struct imap_piece_sink *sink;
	struct imap_piece_sink counting; /* wraps sink to count what arrives */
};

static int pc_structure(void *p, unsigned req, const struct imap_part *root, int err)
{
	struct pieces_ctx *ctx = p;
	return ctx->sink->structure != NULL ? ctx->sink->structure(ctx->sink->ctx, req, root, err)
	                                    : 0;
}

static int pc_size(void *p, unsigned req, unsigned item, uint64_t size)
{
	struct pieces_ctx *ctx = p;
	return ctx->sink->size != NULL ? ctx->sink->size(ctx->sink->ctx, req, item, size) : 0;
}

static int pc_begin(void *p, unsigned req, unsigned item, uint64_t size)
{
	struct pieces_ctx *ctx = p;
	int r = ctx->sink->begin(ctx->sink->ctx, req, item, size);
	if (r == 0)
		__atomic_fetch_add(&stat_piece_bytes, size, __ATOMIC_RELAXED);
	return r;
}

static int pc_data(void *p, const void *buf, size_t len)
{
	struct pieces_ctx *ctx = p;
	return ctx->sink->data(ctx->sink->ctx, buf, len);
}

static int pc_end(void *p, unsigned req, unsigned item)
{
	struct pieces_ctx *ctx = p;
	return ctx->sink->end(ctx->sink->ctx, req, item);
}

static int pieces_fn(struct imap_conn *conn, void *p)
{
	struct pieces_ctx *ctx = p;
	struct imap_mailbox_status st;

	if (examines(conn, ctx->raw_name, ctx->uidvalidity))
		return imap_uid_fetch_pieces(conn, ctx->reqs, ctx->n, &ctx->counting);
	return imap_examine_fetch_pieces(conn, ctx->raw_name, ctx->uidvalidity, ctx->reqs, ctx->n,
	                                 &ctx->counting, &st);
}

int ifs_remote_fetch_pieces(struct imap_pool *pool, const char *raw_name, uint32_t uidvalidity,
                            struct imap_fetch_request *reqs, unsigned n,
                            const struct imap_piece_sink *sink)
{
	struct pieces_ctx ctx = {.raw_name = raw_name, .uidvalidity = uidvalidity, .reqs = reqs,
	                         .n = n, .sink = sink};
	char *what = n == 1 ? g_strdup_printf("fetching pieces of UID %u of %s", reqs[0].uid,
	                                      raw_name)
	                    : g_strdup_printf("fetching pieces of %u messages of %s", n, raw_name);
	int ret;

	ctx.counting.structure = pc_structure;
	ctx.counting.size = pc_size;
	ctx.counting.begin = pc_begin;
	ctx.counting.data = pc_data;
	ctx.counting.end = pc_end;
	ctx.counting.ctx = &ctx;
	__atomic_fetch_add(&stat_pieces, n, __ATOMIC_RELAXED);
	ret = with_conn(pool, what, pieces_fn, &ctx);
	g_free(what);
	return ret;
}

void ifs_remote_piece_stats(uint64_t *pieces_r, uint64_t *bytes_r)
{
	*pieces_r = __atomic_load_n(&stat_pieces, __ATOMIC_RELAXED);
	*bytes_r = __atomic_load_n(&stat_piece_bytes, __ATOMIC_RELAXED);
}

void ifs_remote_stats(uint64_t *bodies_r, uint64_t *bytes_r)
{
	*bodies_r = __atomic_load_n(&stat_bodies, __ATOMIC_RELAXED);
	*bytes_r = __atomic_load_n(&stat_bytes, __ATOMIC_RELAXED);
}

/* ---- search ---- */

struct search_ctx {
	const struct imap_search *q;
	struct ifs_search_hits *hits;
	unsigned n;
};

static int search_attrs_cb(unsigned job, const struct imap_msg_attrs *a, void *p)
{
	struct search_ctx *ctx = p;
	append_attr(ctx->hits[job].msgs, a);
	return 0;
}

static int search_fn(struct imap_conn *conn, void *p)
{
	struct search_ctx *ctx = p;
	struct imap_search_job *jobs = g_new0(struct imap_search_job, ctx->n);
	int err;

	for (unsigned i = 0; i < ctx->n; i++) {
		jobs[i].raw_name = ctx->hits[i].raw_name;
		/* a retry on a fresh connection starts over */
		g_array_set_size(ctx->hits[i].msgs, 0);
	}
	err = imap_search_folders(conn, ctx->q, jobs, ctx->n, search_attrs_cb, ctx);
	for (unsigned i = 0; i < ctx->n; i++) {
		struct ifs_search_hits *h = &ctx->hits[i];
		h->result = err < 0 ? err : jobs[i].result;
		h->uidvalidity = jobs[i].st.uidvalidity;
		h->st.uidvalidity = jobs[i].st.uidvalidity;
		h->st.uidnext = jobs[i].st.uidnext;
		h->st.exists = jobs[i].st.exists;
		h->st.highestmodseq = jobs[i].st.highestmodseq;
		if (jobs[i].uids != NULL)
			g_array_unref(jobs[i].uids);
		if (h->result == 0) {
			sort_unique(h->msgs);
			continue;
		}
		if (h->result != -ENOENT && h->result != -EILSEQ && h->result != -EOPNOTSUPP)
			h->result = -EIO;
		g_free(h->why);
		h->why = g_strdup(imap_conn_error(conn));
	}
	g_free(jobs);
	return err;
}

int ifs_remote_search(struct imap_pool *pool, const struct imap_search *q,
                      struct ifs_search_hits *hits, unsigned n)
{
	struct search_ctx ctx = {q, hits, n};
	int ret;

	for (unsigned i = 0; i < n; i++) {
		hits[i].result = -EIO;
		hits[i].uidvalidity = 0;
		hits[i].why = NULL;
		hits[i].msgs = g_array_new(FALSE, FALSE, sizeof(struct ifs_msg_attr));
		g_array_set_clear_func(hits[i].msgs, msg_attr_clear);
	}
	ret = with_conn(pool, "SEARCH", search_fn, &ctx);
	for (unsigned i = 0; i < n; i++) {
		if (ret < 0)
			hits[i].result = ret;
		if (hits[i].result < 0)
			g_clear_pointer(&hits[i].msgs, g_array_unref);
	}
	return ret;
}

/* ---- reconnecting ---- */

#define RECONNECT_FIRST_MS 1000
#define RECONNECT_MAX_MS   30000

struct ifs_reconnector {
	struct imap_pool *probe;
	GPtrArray *pools; /* struct imap_pool *, borrowed */
	GThread *thread;
	bool stop;        /* under off_lock */
};

/* One attempt to reach the server; true when it answered (and the daemon is online again). */
static bool probe_once(struct ifs_reconnector *r)
{
	struct imap_conn *conn = NULL;
	char *why = NULL;
	int ret;

	imap_pool_retry_now(r->probe);
	ret = imap_pool_acquire(r->probe, &conn, &why);
	if (ret < 0 && ifs_remote_unreachable_error(ret)) {
		g_debug("offline: still cannot reach the server: %s", why ? why : g_strerror(-ret));
		g_free(why);
		return false;
	}
	g_free(why);
	if (ret == 0) {
		/* An idle connection of the pool proves nothing: ask the server. */
		ret = imap_noop(conn);
		imap_pool_release(r->probe, conn); /* closed when the NOOP broke it */
		if (ret < 0)
			return false;
	}
	/* ret < 0 here: the server answered but refused the login or the certificate.  It is
	 * reachable, so not offline: readers get EIO from the pools' own back-off (which logs
	 * the refusal), as when no outage came first. */
	/* every pool may connect at once now, not at the end of its own back-off */
	for (guint i = 0; i < r->pools->len; i++)
		imap_pool_retry_now(r->pools->pdata[i]);
	g_mutex_lock(&off_lock);
	off_now = false;
	g_mutex_unlock(&off_lock);
	g_message("online again: listings catch up at their next use");
	return true;
}

static gpointer reconnect_thread(gpointer p)
{
	struct ifs_reconnector *r = p;
	unsigned backoff_ms = RECONNECT_FIRST_MS;

	g_mutex_lock(&off_lock);
	while (!r->stop) {
		gint64 until;
		if (!off_now) {
			backoff_ms = RECONNECT_FIRST_MS;
			g_cond_wait(&off_changed, &off_lock);
			continue;
		}
		until = g_get_monotonic_time() + (gint64)backoff_ms * 1000;
		while (!r->stop && g_cond_wait_until(&off_changed, &off_lock, until))
			;
		if (r->stop)
			break;
		g_mutex_unlock(&off_lock);
		if (!probe_once(r))
			backoff_ms = MIN(backoff_ms * 2, RECONNECT_MAX_MS);
		g_mutex_lock(&off_lock);
	}
	g_mutex_unlock(&off_lock);
	return NULL;
}

struct ifs_reconnector *ifs_remote_reconnector_new(struct imap_pool *probe,
                                                   struct imap_pool *const *pools, unsigned n)
{
	struct ifs_reconnector *r = g_new0(struct ifs_reconnector, 1);

	r->probe = probe;
	r->pools = g_ptr_array_new();
	for (unsigned i = 0; i < n; i++)
		g_ptr_array_add(r->pools, pools[i]);
	g_mutex_lock(&off_lock);
	off_pools = r->pools;
	g_mutex_unlock(&off_lock);
	r->thread = g_thread_new("reconnect", reconnect_thread, r);
	return r;
}

void ifs_remote_reconnector_free(struct ifs_reconnector *r)
{
	if (r == NULL)
		return;
	g_mutex_lock(&off_lock);
	r->stop = true;
	off_pools = NULL;
	g_cond_broadcast(&off_changed);
	g_mutex_unlock(&off_lock);
	g_thread_join(r->thread);
	g_ptr_array_unref(r->pools);
	g_free(r);
}

/* ---- quota ---- */

struct quota_ctx {
	struct imap_quota *q;
	int answer; /* GETQUOTAROOT's outcome: a refusal is no connection failure */
};

static int quota_fn(struct imap_conn *conn, void *p)
{
	struct quota_ctx *ctx = p;
	int err = imap_getquotaroot(conn, "INBOX", ctx->q);

	ctx->answer = err;
	if (err == -EOPNOTSUPP || err == -ENOENT || err == -EACCES || err == -EPROTO) {
		if (err != -EOPNOTSUPP && !imap_conn_is_broken(conn))
			g_debug("GETQUOTAROOT: %s", imap_conn_error(conn));
		return imap_conn_is_broken(conn) ? err : 0;
	}
	return err;
}

int ifs_remote_quota(struct imap_pool *pool, struct imap_quota *q_r)
{
	struct quota_ctx ctx = {q_r, 0};
	int ret = with_conn(pool, "GETQUOTAROOT", quota_fn, &ctx);

	if (ret < 0)
		return ret;
	if (ctx.answer == -EOPNOTSUPP)
		return -EOPNOTSUPP;
	return ctx.answer < 0 ? -ENOENT : 0;
}
