/* watch.c — the watching thread: NOTIFY or IDLE on a connection of its own, feeding the
 * tree's incremental re-listing (contract and locking in watch.h). */
#include "watch.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Dovecot 2.3.19 stops reporting changes of mailboxes that are not selected once its mailbox
 * list index log has been rotated (every 64 KB of changes: a few hundred), until NOTIFY is set
 * again (it then only finds changes when its mailbox_idle_check_interval, 30 s, passes).  So
 * NOTIFY is renewed after a batch of events when the last SET is this old, and at
 * renew_notify_ms; a change lost meanwhile is caught by the look that follows every SET, or at
 * `refresh`.  The selected mailbox does not depend on that index: its changes come from its
 * own files, at once. */
#define RENEW_AFTER_EVENTS_MS (60u * 1000)
#define RENEW_NOTIFY_MAX_MS   (5u * 60 * 1000)
#define BACKOFF_FIRST_MS      1000u
#define BACKOFF_MAX_MS        60000u

struct ifs_watch {
	struct imap_pool *pool;
	struct ifs_tree *tree;
	unsigned reissue_ms;      /* IDLE ended and begun again this often (idle_renew) */
	unsigned renew_notify_ms; /* NOTIFY set again this often */
	int efd; /* eventfd: the daemon wakes the thread (new folder in use, stop) */
	GThread *thread;

	GMutex lock;     /* guards the fields below */
	GPtrArray *used; /* raw names (new), most recently used first, at most IFS_WATCH_MAX */
	bool dirty;      /* what is watched must change: the set of folders, or the most recent
	                  * one (examined) */
	bool idle_only;  /* the server has no NOTIFY: only used[0] is watched */
	bool stop;
};

static void wake(struct ifs_watch *w)
{
	uint64_t one = 1;
	/* full (2^64-2 wake-ups pending) or interrupted: the thread wakes anyway */
	if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		g_debug("watch: cannot wake the thread: %s", g_strerror(errno));
}

static void drain(struct ifs_watch *w)
{
	uint64_t n;
	if (read(w->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		g_debug("watch: eventfd: %s", g_strerror(errno));
}

/* The tree's use hook (tree lock held). */
static void on_use(void *ctx, const char *raw_name)
{
	struct ifs_watch *w = ctx;
	int at = -1;
	bool was_dirty;

	/* the watcher's own re-listings are no use by anyone */
	if (g_thread_self() == w->thread)
		return;
	g_mutex_lock(&w->lock);
	for (guint i = 0; i < w->used->len && at < 0; i++)
		if (strcmp(w->used->pdata[i], raw_name) == 0)
			at = (int)i;
	if (at == 0) {
		g_mutex_unlock(&w->lock);
		return;
	}
	was_dirty = w->dirty;
	if (at > 0) {
		char *name = g_ptr_array_steal_index(w->used, (guint)at);
		g_ptr_array_insert(w->used, 0, name);
		w->dirty = true; /* a new most recent folder: the one to examine */
	} else {
		if (w->used->len == IFS_WATCH_MAX)
			g_ptr_array_remove_index(w->used, w->used->len - 1);
		g_ptr_array_insert(w->used, 0, g_strdup(raw_name));
		w->dirty = true;
	}
	if (w->dirty && !was_dirty)
		wake(w);
	g_mutex_unlock(&w->lock);
}

static bool stopping(struct ifs_watch *w)
{
	bool stop;
	g_mutex_lock(&w->lock);
	stop = w->stop;
	g_mutex_unlock(&w->lock);
	return stop;
}

static bool nothing_used(struct ifs_watch *w)
{
	bool none;
	g_mutex_lock(&w->lock);
	none = w->used->len == 0;
	g_mutex_unlock(&w->lock);
	return none;
}

/* Sleep until woken (or timeout_ms; -1: no timeout). */
static void sleep_wake(struct ifs_watch *w, int timeout_ms)
{
	struct pollfd pfd = {.fd = w->efd, .events = POLLIN};
	if (poll(&pfd, 1, timeout_ms) > 0)
		drain(w);
}

/* The folders to watch now (new array of new strings); clears dirty. */
static GPtrArray *snapshot(struct ifs_watch *w)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	g_mutex_lock(&w->lock);
	for (guint i = 0; i < w->used->len && (i == 0 || !w->idle_only); i++)
		g_ptr_array_add(names, g_strdup(w->used->pdata[i]));
	w->dirty = false;
	g_mutex_unlock(&w->lock);
	return names;
}

static void refresh_all(struct ifs_watch *w, GHashTable *changed)
{
	GHashTableIter it;
	gpointer name;

	g_hash_table_iter_init(&it, changed);
	while (g_hash_table_iter_next(&it, &name, NULL))
		ifs_tree_refresh_folder(w->tree, name);
	g_hash_table_remove_all(changed);
}

/* Do names (the folders to watch) differ from the set NOTIFY was last set with? */
static bool set_differs(GPtrArray *names, GHashTable *watched)
{
	if (names->len != g_hash_table_size(watched))
		return true;
	for (guint i = 0; i < names->len; i++)
		if (!g_hash_table_contains(watched, names->pdata[i]))
			return true;
	return false;
}

/* Examine the most recently used folder on conn (*sel_r: the one examined, new; NULL when
 * none is).  Both the folder that stops being the examined one and the one that starts are
 * looked at once: a change made while the watch moves may be reported by neither way (an
 * event for the examined mailbox comes from its own sync, which starts afresh at EXAMINE;
 * Dovecot drops an event of the other kind for the mailbox examined when it fires). */
static int select_front(struct imap_conn *conn, const char *front, char **sel_r,
                        GHashTable *changed)
{
	int err;

	if (g_strcmp0(*sel_r, front) == 0)
		return 0;
	if (*sel_r != NULL)
		g_hash_table_add(changed, g_strdup(*sel_r));
	g_clear_pointer(sel_r, g_free);
	err = imap_watch_examine(conn, front, changed);
	if (err < 0)
		return err;
	*sel_r = g_strdup(front);
	g_hash_table_add(changed, g_strdup(front));
	return 0;
}

/* Watch on conn until stopped (0) or the connection fails (-errno).  With NOTIFY: the most
 * recently used folder is examined and watched as the selected mailbox, every folder in use is
 * named in NOTIFY's MAILBOXES (the examined one is reported as selected); NOTIFY is set again
 * when the set changes and to renew it.  Without: the examined folder only, through IDLE. */
static int watch_conn(struct ifs_watch *w, struct imap_conn *conn, bool notify, bool idle,
                      GHashTable *changed, GHashTable *watched)
{
	char *sel = NULL; /* the folder examined on conn */
	bool renew = false;
	gint64 set_at = 0;
	int ret = 0;

	for (;;) {
		GPtrArray *names = snapshot(w);
		guint n = names->len;
		gint64 renew_at, reissue_at;
		int err = 0;

		if (n > 0)
			err = select_front(conn, names->pdata[0], &sel, changed);
		if (err < 0 && !imap_conn_is_broken(conn)) {
			/* the folder went away (say): the others are still watched */
			g_message("watch: %s", imap_conn_error(conn));
			err = 0;
		}
		if (err == 0 && n > 0 && notify && (renew || set_differs(names, watched))) {
			err = imap_notify_set(conn, true, (const char *const *)names->pdata, n,
			                      changed);
			if (err == 0) {
				/* A change just before the SET may have been reported by neither
				 * the old NOTIFY nor the new (Dovecot starts the new one from the
				 * state it finds): look at every folder once (one EXAMINE each
				 * when nothing changed). */
				g_hash_table_remove_all(watched);
				for (guint i = 0; i < n; i++) {
					g_hash_table_add(watched, g_strdup(names->pdata[i]));
					if (g_strcmp0(sel, names->pdata[i]) != 0)
						g_hash_table_add(changed,
						                 g_strdup(names->pdata[i]));
				}
				set_at = g_get_monotonic_time();
				renew = false;
			}
		}
		g_ptr_array_unref(names);
		if (err < 0 && imap_conn_is_broken(conn)) {
			ret = err;
			break;
		}
		if (n == 0 || err < 0 || (!notify && sel == NULL)) {
			/* nothing to watch (or a folder name the server refused): wait for the
			 * daemon */
			if (err < 0)
				g_message("watch: %s", imap_conn_error(conn));
			refresh_all(w, changed);
			sleep_wake(w, -1);
			if (stopping(w))
				break;
			continue;
		}
		if (idle && (err = imap_idle_begin(conn)) < 0) {
			ret = err;
			break;
		}
		refresh_all(w, changed);
		reissue_at = g_get_monotonic_time() + (gint64)w->reissue_ms * 1000;
		renew_at = set_at + (gint64)w->renew_notify_ms * 1000;
		for (;;) {
			gint64 now = g_get_monotonic_time();
			gint64 until = notify ? MIN(reissue_at, renew_at) : reissue_at;
			gint64 left = (until - now) / 1000;
			int r = imap_idle_wait(
			    conn, w->efd, left > 0 ? (unsigned)MIN(left, G_MAXUINT) : 0, changed);
			bool again;

			if (r < 0) {
				ret = r;
				goto out;
			}
			if (r == 1) {
				drain(w);
				g_mutex_lock(&w->lock);
				again = w->stop || w->dirty;
				g_mutex_unlock(&w->lock);
				if (!again)
					continue;
				if (idle && (err = imap_idle_done(conn, changed)) < 0) {
					ret = err;
					goto out;
				}
				if (stopping(w))
					goto out;
				break; /* watch the new set */
			}
			now = g_get_monotonic_time();
			if (g_hash_table_size(changed) > 0) {
				bool others = g_hash_table_size(watched) > 1 || sel == NULL;
				refresh_all(w, changed);
				/* only the other folders' events depend on the index that Dovecot
				 * stops watching */
				if (notify && others &&
				    now - set_at >= (gint64)RENEW_AFTER_EVENTS_MS * 1000)
					renew = true;
			}
			if (notify && now >= renew_at)
				renew = true;
			if (!renew && now < reissue_at)
				continue;
			/* keep-alive, or NOTIFY to renew: end IDLE (changes reported meanwhile are
			 * kept) and begin again (with NOTIFY to renew: set it again first) */
			err = idle ? imap_idle_done(conn, changed) : 0;
			if (err == 0 && renew)
				break;
			if (err == 0)
				err = idle ? imap_idle_begin(conn) : imap_watch_noop(conn, changed);
			if (err < 0) {
				ret = err;
				goto out;
			}
			reissue_at = g_get_monotonic_time() + (gint64)w->reissue_ms * 1000;
		}
	}
out:
	g_free(sel);
	return ret;
}

static gpointer run(gpointer p)
{
	struct ifs_watch *w = p;
	GHashTable *changed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTable *watched = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	unsigned backoff = 0;
	bool connected_before = false;

	while (!stopping(w)) {
		struct imap_conn *conn = NULL;
		bool notify, idle;
		int err;

		/* no connection before there is something to watch (a session idle for 30
		 * minutes outside IDLE would be logged out anyway) */
		while (!stopping(w) && nothing_used(w))
			sleep_wake(w, -1);
		if (stopping(w))
			break;
		if (backoff > 0) {
			sleep_wake(w, (int)backoff);
			if (stopping(w))
				break;
		}
		if (imap_pool_acquire(w->pool, &conn, NULL) < 0) {
			backoff =
			    backoff == 0 ? BACKOFF_FIRST_MS : MIN(backoff * 2, BACKOFF_MAX_MS);
			continue;
		}
		notify = imap_conn_has_cap(conn, "NOTIFY");
		idle = imap_conn_has_cap(conn, "IDLE");
		if (!notify && !idle) {
			imap_pool_release(w->pool, conn);
			g_message(
			    "watch: the server offers neither NOTIFY nor IDLE; changes are seen "
			    "after `refresh` seconds");
			while (!stopping(w))
				sleep_wake(w, -1);
			break;
		}
		if (!connected_before)
			g_message("watch: watching the folders in use with %s",
			          notify ? "NOTIFY" : "IDLE (the most recently used folder)");
		g_mutex_lock(&w->lock);
		w->idle_only = !notify;
		g_mutex_unlock(&w->lock);
		/* whatever happened while no session watched is caught by watch_conn: every
		 * folder it starts watching is looked at once */
		connected_before = true;
		err = watch_conn(w, conn, notify, idle, changed, watched);
		if (err < 0) {
			g_message("watch: connection lost (%s); watching again after reconnecting",
			          imap_conn_error(conn));
			/* a NOTIFY or an examined folder the next user of the slot must not inherit
			 */
			imap_pool_discard(w->pool, conn);
			backoff =
			    backoff == 0 ? BACKOFF_FIRST_MS : MIN(backoff * 2, BACKOFF_MAX_MS);
		} else {
			imap_pool_discard(w->pool, conn);
			backoff = 0;
		}
		g_hash_table_remove_all(changed);
		g_hash_table_remove_all(watched); /* a new session watches nothing yet */
	}
	g_hash_table_unref(changed);
	g_hash_table_unref(watched);
	return NULL;
}

struct ifs_watch *ifs_watch_new(struct imap_pool *pool, struct ifs_tree *tree, unsigned renew_s)
{
	struct ifs_watch *w = g_new0(struct ifs_watch, 1);

	w->pool = pool;
	w->tree = tree;
	w->reissue_ms = MAX(renew_s, 1u) * 1000;
	w->renew_notify_ms = MIN(w->reissue_ms, RENEW_NOTIFY_MAX_MS);
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		g_warning("watch: eventfd: %s; changes are seen after `refresh` seconds",
		          g_strerror(errno));
		g_free(w);
		return NULL;
	}
	g_mutex_init(&w->lock);
	w->used = g_ptr_array_new_with_free_func(g_free);
	/* the hook compares with w->thread: set before the hook is installed */
	w->thread = g_thread_new("imapfs-watch", run, w);
	ifs_tree_set_use_hook(tree, on_use, w);
	return w;
}

void ifs_watch_free(struct ifs_watch *w)
{
	if (w == NULL)
		return;
	ifs_tree_set_use_hook(w->tree, NULL, NULL); /* no hook runs past this */
	g_mutex_lock(&w->lock);
	w->stop = true;
	g_mutex_unlock(&w->lock);
	wake(w);
	g_thread_join(w->thread);
	close(w->efd);
	g_ptr_array_unref(w->used);
	g_mutex_clear(&w->lock);
	g_free(w);
}
