/* tree.c — folder nodes, listings and inode numbering (contract and locking in tree.h). */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "names.h"
#include "remote.h"
#include "state.h"

/* One folder's messages at one moment.  Immutable after creation; refcounted so a readdir
 * snapshot can outlive a refresh. */
struct listing {
	gint refs;
	struct ifs_listing_state st; /* what EXAMINE said when this listing was made */
	uint32_t uidvalidity;
	uint32_t epoch;
	GArray *msgs;       /* struct ifs_msg_attr, ascending UID */
	gint64 fetched_at;  /* g_get_monotonic_time() */
	uint64_t serial;    /* unique per listing object: a new one means new contents */
	int64_t newest;     /* largest INTERNALDATE, 0 when empty */
	uint64_t contents;  /* what it holds, as folder_time says (listing_summarize) */
	bool checked;       /* asked the server this mount (false: a saved one, shown as it is
	                     * until the folder itself is used) */
};

struct folder_node {
	uint64_t ino;
	struct folder_node *parent; /* NULL for the root and once detached */
	char *name;                 /* entry name in parent (NULL for the root) */
	char *raw_name;             /* wire name; NULL when it holds no messages */
	GHashTable *children;       /* entry name -> struct folder_node* */
	uint64_t nlookup;
	bool attached;
	unsigned seen_gen, claimed_gen;
	struct listing *listing;    /* NULL until first needed */
	bool refreshing;
	bool hidden;                /* not listed by its parent's readdir (tree.h) */
	uint64_t served_version;    /* contents version last handed to an opendir */
};

struct epoch_rec {
	char *raw_name;
	uint32_t uidvalidity;
};

/* A search result's epoch (tree.h): the hits of one folder life, shown under a directory of
 * search.c.  listing->epoch is the result epoch itself (so snapshots number the hits' inodes
 * with it); base names the folder life. */
struct result_rec {
	uint32_t base;
	struct listing *listing; /* NULL once dropped */
	bool stale;              /* the server said the folder life is gone: ask again */
};

struct ifs_tree {
	GMutex lock;
	GCond refreshed;            /* broadcast after any refresh (folders or listing) ends */
	struct folder_node *root;
	GHashTable *by_ino;         /* uint64 ino -> node (attached, or detached but looked up) */
	GHashTable *by_raw;         /* raw name -> attached node holding messages */
	GHashTable *epoch_ids;      /* "uidvalidity raw_name" -> GUINT_TO_POINTER(epoch) */
	GPtrArray *epochs;          /* struct epoch_rec*, index = epoch (0 unused) */
	GPtrArray *results;         /* struct result_rec*, index = epoch - IFS_RESULT_EPOCH_BIT */
	uint64_t next_ino;
	uint64_t next_serial;
	unsigned gen;
	gint64 folders_at;          /* when LIST last succeeded; 0: never */
	bool folders_refreshing;
	gint64 refresh_us;
	struct imap_pool *pool;
	struct ifs_msgcache *cache;
	struct ifs_bodycache *bodies;   /* nullable */
	struct ifs_notifier *notifier;
	ifs_tree_use_hook use_hook; /* nullable; called with the lock held */
	void *use_ctx;
	struct ifs_state *state;        /* nullable: listings kept on disk (state.h) */
	struct ifs_identity *identity;  /* nullable: every listing's message ids (identity.h) */
	unsigned hide_use;              /* special-use bits of hidden folders (ifs_tree_set_hide) */
	GHashTable *hide_paths;         /* set of mount paths ("a/b") of hidden folders */
};

/* ---- listings ---- */

static struct listing *listing_ref(struct listing *l)
{
	g_atomic_int_inc(&l->refs);
	return l;
}

static void listing_unref(struct listing *l)
{
	if (l != NULL && g_atomic_int_dec_and_test(&l->refs)) {
		g_array_unref(l->msgs);
		g_free(l);
	}
}

static const struct ifs_msg_attr *listing_find(const struct listing *l, uint32_t uid)
{
	guint lo = 0, hi = l->msgs->len;
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		const struct ifs_msg_attr *m = &g_array_index(l->msgs, struct ifs_msg_attr, mid);
		if (m->uid == uid)
			return m;
		if (m->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A 64-bit mix (splitmix64's finaliser): contents numbers from a few fields. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* l->newest and l->contents from its messages.  The contents number is made of UIDVALIDITY,
 * the number of messages and the highest UID: a new message always gets a UID above every
 * other, and an expunge lowers the count, so any change of which messages the folder holds
 * changes it, while flags never do.  It depends on nothing of this mount, so a remount gets
 * the same number for the same contents. */
static void listing_summarize(struct listing *l)
{
	uint32_t last = l->msgs->len > 0
	                    ? g_array_index(l->msgs, struct ifs_msg_attr, l->msgs->len - 1).uid
	                    : 0;
	l->newest = 0;
	for (guint i = 0; i < l->msgs->len; i++)
		l->newest =
		    MAX(l->newest, g_array_index(l->msgs, struct ifs_msg_attr, i).internaldate);
	l->contents =
	    mix64((uint64_t)l->uidvalidity << 32 ^ mix64((uint64_t)l->msgs->len << 32 | last));
}

static bool fresh(const struct ifs_tree *t, gint64 at)
{
	return at != 0 && g_get_monotonic_time() - at < t->refresh_us;
}

/* The epoch of (raw, uidvalidity), made on first use (epochs, below; lock held). */
static uint32_t epoch_for(struct ifs_tree *t, const char *raw, uint32_t uidvalidity);

/* Kernel entries of messages that are gone, and cached `flags` files whose flags changed
 * (lock held). */
static void invalidate_gone(struct ifs_tree *t, uint64_t parent_ino, const struct listing *old,
                            const struct listing *new)
{
	char buf[16];

	for (guint i = 0; i < old->msgs->len; i++) {
		const struct ifs_msg_attr *m = &g_array_index(old->msgs, struct ifs_msg_attr, i);
		const struct ifs_msg_attr *now =
		    new != NULL && new->epoch == old->epoch ? listing_find(new, m->uid) : NULL;
		if (now == NULL) {
			snprintf(buf, sizeof(buf), "%u", m->uid);
			ifs_notify_delete(t->notifier, parent_ino,
			                  ifs_msg_ino(old->epoch, m->uid, IFS_SLOT_MSGDIR), buf);
		} else {
			/* the kernel keeps `flags` and `labels` in its page cache: tell it */
			const char *was = m->ident != NULL ? m->ident->labels : NULL;
			const char *is = now->ident != NULL ? now->ident->labels : NULL;
			if (g_strcmp0(now->flags, m->flags) != 0)
				ifs_notify_inval_inode(
				    t->notifier, ifs_msg_ino(old->epoch, m->uid, IFS_SLOT_FLAGS));
			if (g_strcmp0(was, is) != 0)
				ifs_notify_inval_inode(
				    t->notifier, ifs_msg_ino(old->epoch, m->uid, IFS_SLOT_LABELS));
		}
	}
}

/* The listing of raw saved by an earlier mount (state.h), as a listing object not yet
 * installed (no epoch); NULL when none.  Lock not held. */
static struct listing *saved_listing(struct ifs_tree *t, const char *raw)
{
	struct listing *l;
	struct ifs_listing_state st;
	GArray *msgs = NULL;

	if (ifs_state_load_listing(t->state, raw, &st, &msgs) < 0)
		return NULL;
	l = g_new0(struct listing, 1);
	l->refs = 1;
	l->st = st;
	l->uidvalidity = st.uidvalidity;
	l->msgs = msgs;
	listing_summarize(l);
	return l;
}

/* Make saved listing l (from saved_listing) n's listing, fetched at `at` (lock held). */
static void install_saved(struct ifs_tree *t, struct folder_node *n, struct listing *l,
                          gint64 at)
{
	l->epoch = epoch_for(t, n->raw_name, l->uidvalidity);
	if (l->epoch == 0)
		return;
	l->serial = ++t->next_serial;
	l->fetched_at = at;
	n->listing = listing_ref(l);
	if (t->identity != NULL)
		ifs_identity_set_listing(t->identity, l->epoch, n->raw_name, l->msgs);
}

/* Make n's listing no older than the refresh time; force: even if it is fresh.  Lock held on
 * entry and exit.  n must be pinned by the caller's operation (the kernel holds it). */
static int listing_fresh_locked(struct ifs_tree *t, struct folder_node *n, bool force)
{
	char *raw;
	struct ifs_listing_state st;
	struct listing *prev;
	GArray *msgs = NULL;
	int ret;

	while (n->refreshing)
		g_cond_wait(&t->refreshed, &t->lock);
	if (n->raw_name == NULL || !n->attached)
		return 0;
	if (t->use_hook != NULL)
		t->use_hook(t->use_ctx, n->raw_name);
	if (n->listing != NULL && !force && n->listing->checked && fresh(t, n->listing->fetched_at))
		return 0;
	raw = g_strdup(n->raw_name);
	n->refreshing = true;
	/* The previous listing is immutable: remote.c reads it unlocked to ask only for what
	 * changed since. */
	prev = n->listing != NULL ? listing_ref(n->listing) : NULL;
	g_mutex_unlock(&t->lock);
	/* First listing of this mount: the one saved by the last is the previous one. */
	if (prev == NULL && t->state != NULL)
		prev = saved_listing(t, raw);
	memset(&st, 0, sizeof(st));
	ret = ifs_remote_listing(t->pool, raw, prev != NULL ? &prev->st : NULL,
	                         prev != NULL ? prev->msgs : NULL, &st, &msgs);
	if (ret == 0 && t->bodies != NULL)
		ifs_bodycache_set_uidvalidity(t->bodies, raw, st.uidvalidity);
	if (ret == 0 && msgs != NULL && t->state != NULL)
		ifs_state_save_listing(t->state, raw, &st, msgs);
	g_mutex_lock(&t->lock);
	n->refreshing = false;
	g_cond_broadcast(&t->refreshed);
	if (ret == -ENOENT)
		t->folders_at = 0; /* the folder went away: LIST again at next use */
	if (ret == -EIO && prev != NULL) {
		/* The server cannot be asked (offline, or a connection failed; remote.c logged
		 * it): serve the listing known, stale, so that the next use asks again. */
		if (n->listing == NULL && g_strcmp0(n->raw_name, raw) == 0)
			install_saved(t, n, prev, 0);
		listing_unref(prev);
		g_free(raw);
		return 0;
	}
	if (ret == 0 && msgs == NULL && prev != NULL && n->listing == NULL &&
	    g_strcmp0(n->raw_name, raw) == 0)
		install_saved(t, n, prev, g_get_monotonic_time()); /* the saved one is current */
	if (ret == 0 && msgs == NULL) {
		/* unchanged since prev */
		if (n->listing == prev && prev != NULL && g_strcmp0(n->raw_name, raw) == 0) {
			prev->fetched_at = g_get_monotonic_time(); /* only read under the lock */
			prev->checked = true;
		}
		listing_unref(prev);
		g_free(raw);
		return 0;
	}
	listing_unref(prev);
	if (ret == 0 && g_strcmp0(n->raw_name, raw) == 0) {
		struct listing *l = g_new0(struct listing, 1);
		struct listing *old = n->listing;
		uint32_t uidvalidity = st.uidvalidity;
		l->refs = 1;
		l->serial = ++t->next_serial;
		l->st = st;
		l->uidvalidity = uidvalidity;
		l->epoch = epoch_for(t, raw, uidvalidity);
		l->msgs = msgs;
		msgs = NULL;
		l->fetched_at = g_get_monotonic_time();
		l->checked = true;
		listing_summarize(l);
		if (l->epoch == 0) {
			listing_unref(l);
			ret = -EIO;
		} else {
			if (old != NULL) {
				invalidate_gone(t, n->ino, old, l);
				if (old->epoch != l->epoch) {
					g_message("folder %s: UIDVALIDITY changed; dropping its cache", raw);
					ifs_msgcache_drop_prefix(t->cache, old->epoch, IFS_KEY_EPOCH_SHIFT);
					if (t->identity != NULL)
						ifs_identity_drop(t->identity, old->epoch);
				}
			}
			n->listing = l;
			if (t->identity != NULL)
				ifs_identity_set_listing(t->identity, l->epoch, raw, l->msgs);
			listing_unref(old);
		}
	}
	if (msgs != NULL)
		g_array_unref(msgs);
	g_free(raw);
	return ret;
}

/* ---- nodes ---- */

static struct folder_node *node_new(struct ifs_tree *t, struct folder_node *parent,
                                    const char *name)
{
	struct folder_node *n = g_new0(struct folder_node, 1);
	n->ino = t->next_ino++;
	n->parent = parent;
	n->name = g_strdup(name);
	n->children = g_hash_table_new(g_str_hash, g_str_equal);
	n->attached = true;
	g_hash_table_insert(t->by_ino, &n->ino, n);
	if (parent != NULL)
		g_hash_table_insert(parent->children, n->name, n);
	return n;
}

static void node_free(struct ifs_tree *t, struct folder_node *n)
{
	g_hash_table_remove(t->by_ino, &n->ino);
	listing_unref(n->listing);
	g_hash_table_destroy(n->children);
	g_free(n->name);
	g_free(n->raw_name);
	g_free(n);
}

static void node_set_raw(struct ifs_tree *t, struct folder_node *n, const char *raw)
{
	if (g_strcmp0(n->raw_name, raw) == 0)
		return;
	if (n->raw_name != NULL && g_hash_table_lookup(t->by_raw, n->raw_name) == n)
		g_hash_table_remove(t->by_raw, n->raw_name);
	g_free(n->raw_name);
	n->raw_name = g_strdup(raw);
	g_clear_pointer(&n->listing, listing_unref);
	if (raw != NULL)
		g_hash_table_insert(t->by_raw, n->raw_name, n);
}

/* Remove n and its subtree from the visible tree (lock held).  Nodes the kernel still knows
 * stay in by_ino until forgotten. */
static void node_detach(struct ifs_tree *t, struct folder_node *n)
{
	GList *kids = g_hash_table_get_values(n->children);

	for (GList *l = kids; l != NULL; l = l->next)
		node_detach(t, l->data);
	g_list_free(kids);
	if (n->parent != NULL) {
		g_hash_table_remove(n->parent->children, n->name);
		ifs_notify_inval_entry(t->notifier, n->parent->ino, n->name);
	}
	n->parent = NULL;
	n->attached = false;
	node_set_raw(t, n, NULL);
	if (n->nlookup == 0)
		node_free(t, n);
}

static struct folder_node *node_by_ino(struct ifs_tree *t, uint64_t ino)
{
	return g_hash_table_lookup(t->by_ino, &ino);
}

/* ---- epochs ---- */

static uint32_t epoch_for(struct ifs_tree *t, const char *raw, uint32_t uidvalidity)
{
	char *key = g_strdup_printf("%u %s", uidvalidity, raw);
	gpointer v = g_hash_table_lookup(t->epoch_ids, key);
	struct epoch_rec *rec;

	if (v != NULL) {
		g_free(key);
		return GPOINTER_TO_UINT(v);
	}
	if (t->epochs->len >= IFS_RESULT_EPOCH_BIT) {
		/* 1M (folder, UIDVALIDITY) pairs in one mount: not a real account. */
		g_free(key);
		return 0;
	}
	rec = g_new0(struct epoch_rec, 1);
	rec->raw_name = g_strdup(raw);
	rec->uidvalidity = uidvalidity;
	g_ptr_array_add(t->epochs, rec);
	g_hash_table_insert(t->epoch_ids, key, GUINT_TO_POINTER(t->epochs->len - 1));
	return t->epochs->len - 1;
}

static void epoch_rec_free(gpointer p)
{
	struct epoch_rec *rec = p;
	if (rec != NULL) {
		g_free(rec->raw_name);
		g_free(rec);
	}
}

static void result_rec_free(gpointer p)
{
	struct result_rec *rr = p;
	if (rr != NULL) {
		listing_unref(rr->listing);
		g_free(rr);
	}
}

/* The record of a result epoch, or NULL (lock held). */
static struct result_rec *result_rec(const struct ifs_tree *t, uint32_t epoch)
{
	uint32_t i = epoch - IFS_RESULT_EPOCH_BIT;
	if (!ifs_epoch_is_result(epoch) || i >= t->results->len)
		return NULL;
	return t->results->pdata[i];
}

/* The folder life an epoch stands for: itself, or a result's base (lock held); 0 if unknown. */
static uint32_t base_of(const struct ifs_tree *t, uint32_t epoch)
{
	const struct result_rec *rr;
	if (!ifs_epoch_is_result(epoch))
		return epoch;
	rr = result_rec(t, epoch);
	return rr != NULL ? rr->base : 0;
}

/* ---- life cycle ---- */

struct ifs_tree *ifs_tree_new(struct imap_pool *pool, struct ifs_msgcache *cache,
                              struct ifs_bodycache *bodies, unsigned refresh_s)
{
	struct ifs_tree *t = g_new0(struct ifs_tree, 1);

	g_mutex_init(&t->lock);
	g_cond_init(&t->refreshed);
	t->by_ino = g_hash_table_new(g_int64_hash, g_int64_equal);
	t->by_raw = g_hash_table_new(g_str_hash, g_str_equal);
	t->epoch_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	t->hide_paths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	t->epochs = g_ptr_array_new_with_free_func(epoch_rec_free);
	g_ptr_array_add(t->epochs, NULL); /* epoch 0 means "not a message inode" */
	t->results = g_ptr_array_new_with_free_func(result_rec_free);
	t->next_ino = IFS_ROOT_INO;
	t->root = node_new(t, NULL, NULL);
	t->refresh_us = (gint64)refresh_s * G_USEC_PER_SEC;
	t->pool = pool;
	t->cache = cache;
	t->bodies = bodies;
	return t;
}

static void free_subtree(struct ifs_tree *t, struct folder_node *n)
{
	GList *kids = g_hash_table_get_values(n->children);
	for (GList *l = kids; l != NULL; l = l->next)
		free_subtree(t, l->data);
	g_list_free(kids);
	node_free(t, n);
}

void ifs_tree_free(struct ifs_tree *t)
{
	GList *rest;

	if (t == NULL)
		return;
	free_subtree(t, t->root);
	/* detached nodes the kernel never forgot */
	rest = g_hash_table_get_values(t->by_ino);
	for (GList *l = rest; l != NULL; l = l->next)
		node_free(t, l->data);
	g_list_free(rest);
	g_hash_table_destroy(t->by_ino);
	g_hash_table_destroy(t->by_raw);
	g_hash_table_destroy(t->epoch_ids);
	g_hash_table_destroy(t->hide_paths);
	g_ptr_array_unref(t->epochs);
	g_ptr_array_unref(t->results);
	g_cond_clear(&t->refreshed);
	g_mutex_clear(&t->lock);
	g_free(t);
}

void ifs_tree_set_identity(struct ifs_tree *t, struct ifs_identity *identity)
{
	g_mutex_lock(&t->lock);
	t->identity = identity;
	g_mutex_unlock(&t->lock);
}

void ifs_tree_set_state(struct ifs_tree *t, struct ifs_state *state)
{
	g_mutex_lock(&t->lock);
	t->state = state;
	g_mutex_unlock(&t->lock);
}

void ifs_tree_set_hide(struct ifs_tree *t, unsigned use_flags, char *const *paths)
{
	g_mutex_lock(&t->lock);
	t->hide_use = use_flags;
	g_hash_table_remove_all(t->hide_paths);
	for (size_t i = 0; paths != NULL && paths[i] != NULL; i++)
		g_hash_table_add(t->hide_paths, g_strdup(paths[i]));
	g_mutex_unlock(&t->lock);
}

void ifs_tree_set_notifier(struct ifs_tree *t, struct ifs_notifier *notifier)
{
	g_mutex_lock(&t->lock);
	t->notifier = notifier;
	g_mutex_unlock(&t->lock);
}

/* ---- folder list ---- */

static int cmp_folder(gconstpointer a, gconstpointer b)
{
	const struct imap_folder *x = *(struct imap_folder *const *)a;
	const struct imap_folder *y = *(struct imap_folder *const *)b;
	return strcmp(x->raw_name, y->raw_name);
}

static void sweep(struct ifs_tree *t, struct folder_node *n)
{
	GList *kids = g_hash_table_get_values(n->children);

	for (GList *l = kids; l != NULL; l = l->next) {
		struct folder_node *c = l->data;
		if (c->seen_gen != t->gen) {
			node_detach(t, c);
			continue;
		}
		if (c->claimed_gen != t->gen)
			node_set_raw(t, c, NULL); /* only implied by its children now */
		sweep(t, c);
	}
	g_list_free(kids);
}

/* Lock held. */
static void apply_folders(struct ifs_tree *t, GPtrArray *folders_in)
{
	GPtrArray *folders = g_ptr_array_new();
	GString *at = g_string_new(NULL); /* the mount path of a folder's nodes */

	for (guint i = 0; i < folders_in->len; i++)
		g_ptr_array_add(folders, folders_in->pdata[i]);
	/* Sorted so that which of two clashing folders wins never depends on server order. */
	g_ptr_array_sort(folders, cmp_folder);
	t->gen++;
	t->root->seen_gen = t->gen;
	for (guint i = 0; i < folders->len; i++) {
		const struct imap_folder *f = folders->pdata[i];
		const char *why = NULL;
		struct folder_node *n = t->root;
		char **path;
		bool as_sent;
		const char *name = ifs_folder_shown_name(f->raw_name, f->name, &as_sent, &why);

		if (name == NULL) {
			g_warning("skipping folder with %s", why);
			continue;
		}
		if (as_sent)
			g_message(
			    "folder name \"%s\" is not modified UTF-7 but UTF-8; shown as sent",
			    f->raw_name);
		path = ifs_folder_entry_path(name, f->delimiter, &why);
		if (path == NULL) {
			g_warning("skipping folder \"%s\": %s", f->raw_name, why);
			continue;
		}
		g_string_truncate(at, 0);
		for (size_t k = 0; path[k] != NULL; k++) {
			struct folder_node *c = g_hash_table_lookup(n->children, path[k]);
			if (c == NULL)
				c = node_new(t, n, path[k]);
			if (k > 0)
				g_string_append_c(at, '/');
			g_string_append(at, path[k]);
			/* hidden by its path here, by its attributes once claimed below */
			if (c->seen_gen != t->gen)
				c->hidden = g_hash_table_contains(t->hide_paths, at->str);
			c->seen_gen = t->gen;
			n = c;
		}
		g_strfreev(path);
		if (n->claimed_gen == t->gen) {
			g_warning("skipping folder \"%s\": another folder is already shown under the "
			          "same name", f->raw_name);
			continue;
		}
		n->claimed_gen = t->gen;
		if (f->flags & t->hide_use)
			n->hidden = true;
		node_set_raw(t, n, (f->flags & (IMAP_FOLDER_NOSELECT | IMAP_FOLDER_NONEXISTENT))
		                       ? NULL
		                       : f->raw_name);
	}
	sweep(t, t->root);
	t->folders_at = g_get_monotonic_time();
	g_string_free(at, TRUE);
	g_ptr_array_free(folders, TRUE);
}

/* Does any message of msgs carry an id? */
static bool has_idents(const GArray *msgs)
{
	for (guint i = 0; msgs != NULL && i < msgs->len; i++)
		if (g_array_index(msgs, struct ifs_msg_attr, i).ident != NULL)
			return true;
	return false;
}

void ifs_tree_restore_identities(struct ifs_tree *t)
{
	GPtrArray *raws = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer v;

	if (t->state == NULL || t->identity == NULL) {
		g_ptr_array_unref(raws);
		return;
	}
	g_mutex_lock(&t->lock);
	g_hash_table_iter_init(&it, t->by_raw);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const struct folder_node *n = v;
		if (n->listing == NULL)
			g_ptr_array_add(raws, g_strdup(n->raw_name));
	}
	g_mutex_unlock(&t->lock);
	for (guint i = 0; i < raws->len; i++) {
		struct listing *l = saved_listing(t, raws->pdata[i]);
		uint32_t epoch;
		if (l == NULL)
			continue;
		if (has_idents(l->msgs)) {
			g_mutex_lock(&t->lock);
			epoch = epoch_for(t, raws->pdata[i], l->uidvalidity);
			g_mutex_unlock(&t->lock);
			if (epoch != 0)
				ifs_identity_add_saved(t->identity, epoch, raws->pdata[i], l->msgs);
		}
		listing_unref(l);
	}
	g_ptr_array_unref(raws);
}

void ifs_tree_set_folders(struct ifs_tree *t, GPtrArray *folders)
{
	g_mutex_lock(&t->lock);
	apply_folders(t, folders);
	g_mutex_unlock(&t->lock);
}

/* LIST again when the folder list is older than the refresh time (single-flight).  Lock held
 * on entry and exit; dropped while talking to the server. */
static int folders_fresh_locked(struct ifs_tree *t)
{
	GPtrArray *folders = NULL;
	bool special_use;
	int ret;

	while (t->folders_refreshing)
		g_cond_wait(&t->refreshed, &t->lock);
	if (fresh(t, t->folders_at))
		return 0;
	t->folders_refreshing = true;
	special_use = t->hide_use != 0;
	g_mutex_unlock(&t->lock);
	ret = ifs_remote_list(t->pool, special_use, &folders);
	if (ret == 0 && t->state != NULL)
		ifs_state_save_folders(t->state, folders);
	g_mutex_lock(&t->lock);
	if (ret == 0)
		apply_folders(t, folders);
	else if (ifs_remote_offline())
		ret = 0; /* offline: the folders known stay as they are */
	t->folders_refreshing = false;
	g_cond_broadcast(&t->refreshed);
	if (folders != NULL)
		g_ptr_array_unref(folders);
	return ret;
}

/* ---- first listings for folder times ---- */

/* Give every folder among nodes[0..count) that holds messages and has no listing yet one, so
 * that its attributes show its time from the first stat on (tree.h "Folder times").  Lock held
 * on entry and exit; dropped while asking.  A listing saved by an earlier mount is installed
 * as it is (no network; checked at the folder's first use); the others are listed together,
 * one SEARCH ALL per folder pipelined on one connection (ifs_remote_search: one round trip
 * for all of them with SEARCHRES, two without).  Failures leave a folder without listing (its
 * time is then 0 until it is listed); they were logged by remote.c. */
static void prime_listings_locked(struct ifs_tree *t, struct folder_node **nodes, unsigned count)
{
	GPtrArray *todo = g_ptr_array_new();
	struct listing **saved;
	struct ifs_search_hits *hits;
	char **raws;
	unsigned nhits = 0;
	struct imap_search *all;
	gint64 now;

	for (unsigned i = 0; i < count; i++) {
		struct folder_node *n = nodes[i];
		if (n->attached && n->raw_name != NULL && n->listing == NULL && !n->refreshing) {
			n->refreshing = true; /* single-flight with listing_fresh_locked */
			n->nlookup++;         /* pinned while the lock is dropped */
			g_ptr_array_add(todo, n);
		}
	}
	if (todo->len == 0) {
		g_ptr_array_free(todo, TRUE);
		return;
	}
	raws = g_new0(char *, todo->len);
	saved = g_new0(struct listing *, todo->len);
	hits = g_new0(struct ifs_search_hits, todo->len);
	for (guint i = 0; i < todo->len; i++)
		raws[i] = g_strdup(((struct folder_node *)todo->pdata[i])->raw_name);
	g_mutex_unlock(&t->lock);

	for (guint i = 0; i < todo->len; i++) {
		if (t->state != NULL)
			saved[i] = saved_listing(t, raws[i]);
		if (saved[i] == NULL)
			hits[nhits++].raw_name = raws[i];
	}
	all = imap_search_new_flag(IMAP_SEARCH_ALL);
	if (nhits > 1)
		ifs_remote_search(t->pool, all, hits, nhits);
	imap_search_free(all);
	for (unsigned k = 0; k < nhits; k++) {
		/* One folder, or a search that did not say where the folder's UIDs stand (the
		 * server sent no UIDNEXT, or examined no folder without hits: MULTISEARCH): an
		 * ordinary first listing, which later refreshes can build on. */
		if (nhits == 1 || (hits[k].result == 0 && hits[k].st.uidnext == 0)) {
			if (hits[k].msgs != NULL)
				g_clear_pointer(&hits[k].msgs, g_array_unref);
			hits[k].result = ifs_remote_listing(t->pool, hits[k].raw_name, NULL, NULL,
			                                    &hits[k].st, &hits[k].msgs);
		}
		if (hits[k].result != 0)
			continue;
		if (t->bodies != NULL)
			ifs_bodycache_set_uidvalidity(t->bodies, hits[k].raw_name,
			                              hits[k].st.uidvalidity);
		if (t->state != NULL)
			ifs_state_save_listing(t->state, hits[k].raw_name, &hits[k].st,
			                       hits[k].msgs);
	}

	g_mutex_lock(&t->lock);
	now = g_get_monotonic_time();
	for (guint i = 0, k = 0; i < todo->len; i++) {
		struct folder_node *n = todo->pdata[i];
		bool same =
		    n->attached && n->listing == NULL && g_strcmp0(n->raw_name, raws[i]) == 0;
		struct listing *l = saved[i];

		if (l == NULL && k < nhits && hits[k].raw_name == raws[i]) {
			const struct ifs_search_hits *h = &hits[k++];
			if (h->result == 0 && same) {
				l = g_new0(struct listing, 1);
				l->refs = 1;
				l->st = h->st;
				l->uidvalidity = h->st.uidvalidity;
				l->msgs = g_array_ref(h->msgs);
				l->checked = true;
				listing_summarize(l);
			}
		}
		if (l != NULL && same)
			install_saved(t, n, l, now); /* an epoch and a serial: as any listing */
		listing_unref(l);
		n->refreshing = false;
		if (--n->nlookup == 0 && !n->attached)
			node_free(t, n);
	}
	g_cond_broadcast(&t->refreshed);
	for (unsigned k = 0; k < nhits; k++) {
		if (hits[k].msgs != NULL)
			g_array_unref(hits[k].msgs);
		g_free(hits[k].why);
	}
	for (guint i = 0; i < todo->len; i++)
		g_free(raws[i]);
	g_free(raws);
	g_free(saved);
	g_free(hits);
	g_ptr_array_free(todo, TRUE);
}

/* The same for one folder. */
static void prime_listing_locked(struct ifs_tree *t, struct folder_node *n)
{
	prime_listings_locked(t, &n, 1);
}

/* ---- watching (watch.c) ---- */

void ifs_tree_set_use_hook(struct ifs_tree *t, ifs_tree_use_hook hook, void *ctx)
{
	g_mutex_lock(&t->lock);
	t->use_hook = hook;
	t->use_ctx = ctx;
	g_mutex_unlock(&t->lock);
}

int ifs_tree_refresh_folder(struct ifs_tree *t, const char *raw_name)
{
	struct folder_node *n;
	struct listing *before;
	int ret;

	g_mutex_lock(&t->lock);
	n = g_hash_table_lookup(t->by_raw, raw_name);
	if (n == NULL || !n->attached || n->listing == NULL) {
		/* never listed: nothing of it is cached, its first readdir lists it */
		g_mutex_unlock(&t->lock);
		return 0;
	}
	/* Pinned like a kernel lookup: the lock is dropped while listing, and a LIST meanwhile
	 * may detach the node (freed at the last forget). */
	n->nlookup++;
	before = listing_ref(n->listing);
	ret = listing_fresh_locked(t, n, true);
	if (n->listing != before && n->attached) {
		/* The directory's attributes (mtime, size) and the kernel's cached readdir are
		 * stale now; and a name that appeared may sit in the dentry cache as a negative
		 * entry from an earlier lookup. */
		char buf[16];
		ifs_notify_inval_inode(t->notifier, n->ino);
		for (guint i = 0; n->listing != NULL && before->epoch == n->listing->epoch &&
		                  i < n->listing->msgs->len; i++) {
			uint32_t uid = g_array_index(n->listing->msgs, struct ifs_msg_attr, i).uid;
			if (listing_find(before, uid) != NULL)
				continue;
			snprintf(buf, sizeof(buf), "%u", uid);
			ifs_notify_inval_entry(t->notifier, n->ino, buf);
		}
	}
	listing_unref(before);
	if (--n->nlookup == 0 && !n->attached)
		node_free(t, n);
	g_mutex_unlock(&t->lock);
	return ret;
}

/* ---- lookups ---- */

bool ifs_tree_is_folder(struct ifs_tree *t, uint64_t ino)
{
	bool ok;
	if (ifs_ino_is_msg(ino))
		return false;
	g_mutex_lock(&t->lock);
	ok = node_by_ino(t, ino) != NULL;
	g_mutex_unlock(&t->lock);
	return ok;
}

/* A folder directory's mtime (tree.h "Folder times"): its newest message's INTERNALDATE; 0
 * for a directory without messages of its own (the root, an implied or \Noselect parent, an
 * empty folder). */
static int64_t folder_mtime(const struct ifs_tree *t, const struct folder_node *n)
{
	if (n->raw_name != NULL && n->listing != NULL)
		return n->listing->newest;
	return 0;
}

/* Seconds until what folder directory n shows may be out of date (lock held): its folder list
 * and, once it has one, its listing, count from when they were fetched.  Its attributes need
 * its listing (tree.h "Folder times"): prime_listings_locked makes it first. */
static double fresh_for(const struct ifs_tree *t, const struct folder_node *n)
{
	gint64 now = g_get_monotonic_time();
	gint64 left = t->folders_at != 0 ? t->folders_at + t->refresh_us - now : 0;

	if (n->raw_name != NULL && n->listing != NULL)
		left = MIN(left, n->listing->fetched_at + t->refresh_us - now);
	return left > 0 ? (double)left / G_USEC_PER_SEC : 0.0;
}

/* Refresh what a folder directory shows when it may be out of date, for its attributes (lock
 * held; n pinned by the caller).  Failures keep what is known: they are logged, and the
 * attributes describe that. */
static void node_fresh_locked(struct ifs_tree *t, struct folder_node *n)
{
	if (folders_fresh_locked(t) == 0 && n->attached && n->raw_name != NULL &&
	    n->listing != NULL)
		listing_fresh_locked(t, n, false);
}

/* What folder directory n shows (lock held): the contents of its listing and the names of its
 * child folders; never 0.  Order-independent over the children (a hash table), and made of
 * nothing but what the server says, so the same contents give the same number on every mount. */
static uint64_t dir_version(const struct folder_node *n)
{
	uint64_t version = n->raw_name != NULL && n->listing != NULL ? n->listing->contents : 0;
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, n->children);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const struct folder_node *c = v;
		uint64_t h = 1469598103934665603ull; /* FNV-1a of the entry name */
		if (c->hidden)
			continue; /* not shown */
		for (const char *p = c->name; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		version += mix64(h);
	}
	return version * 2u + 1u;
}

/* The nanoseconds of a folder's mtime are its contents version (tree.h "Folder times"), so
 * that a change of what the directory shows always changes its mtime: the kernel compares it
 * to drop the directory listing it keeps (there is no opendir to tell it otherwise). */
static long folder_mtime_nsec(const struct folder_node *n)
{
	return (long)(dir_version(n) % 1000000000u);
}

int ifs_tree_lookup(struct ifs_tree *t, uint64_t parent, const char *name,
                    bool refresh_children, struct ifs_node_info *info_r)
{
	struct folder_node *n, *c;
	uint32_t uid;
	int ret = 0;

	if (ifs_ino_is_msg(parent))
		return -ENOTDIR;
	g_mutex_lock(&t->lock);
	n = node_by_ino(t, parent);
	if (n == NULL || !n->attached) {
		ret = -ENOENT;
		goto out;
	}
	if (ifs_parse_uid(name, &uid)) {
		const struct ifs_msg_attr *m = NULL;
		if (n->raw_name == NULL) {
			ret = -ENOENT;
			goto out;
		}
		/* A UID already listed is immutable: no need to ask the server again.  An unknown
		 * one may be new mail, so refresh first when the listing is old. */
		if (n->listing == NULL || listing_find(n->listing, uid) == NULL) {
			ret = listing_fresh_locked(t, n, false);
			if (ret < 0)
				goto out;
		}
		if (n->listing != NULL)
			m = listing_find(n->listing, uid);
		if (m == NULL) {
			ret = -ENOENT;
			goto out;
		}
		info_r->ino = ifs_msg_ino(n->listing->epoch, uid, IFS_SLOT_MSGDIR);
		info_r->is_msgdir = true;
		info_r->mtime = m->internaldate;
		info_r->mtime_nsec = 0;
		info_r->fresh_for = 0;
		goto out;
	}
	c = g_hash_table_lookup(n->children, name);
	if (c == NULL || !fresh(t, t->folders_at)) {
		ret = folders_fresh_locked(t);
		if (ret < 0)
			goto out;
		c = n->attached ? g_hash_table_lookup(n->children, name) : NULL;
	}
	if (c == NULL) {
		ret = -ENOENT;
		goto out;
	}
	c->nlookup++; /* pins c while the lock is dropped below */
	prime_listing_locked(t, c);
	if (refresh_children)
		node_fresh_locked(t, c);
	info_r->ino = c->ino;
	info_r->is_msgdir = false;
	info_r->mtime = folder_mtime(t, c);
	info_r->mtime_nsec = folder_mtime_nsec(c);
	info_r->fresh_for = fresh_for(t, c);
out:
	g_mutex_unlock(&t->lock);
	return ret;
}

int ifs_tree_folder_info(struct ifs_tree *t, uint64_t ino, bool refresh,
                         struct ifs_node_info *info_r)
{
	struct folder_node *n;
	int ret = 0;

	g_mutex_lock(&t->lock);
	n = node_by_ino(t, ino);
	if (n != NULL)
		prime_listing_locked(t, n); /* the kernel holds n: it asks for its attributes */
	if (n != NULL && refresh)
		node_fresh_locked(t, n);
	if (n == NULL) {
		ret = -ENOENT;
	} else {
		info_r->ino = ino;
		info_r->is_msgdir = false;
		info_r->mtime = folder_mtime(t, n);
		info_r->mtime_nsec = folder_mtime_nsec(n);
		info_r->fresh_for = fresh_for(t, n);
	}
	g_mutex_unlock(&t->lock);
	return ret;
}

void ifs_tree_ref(struct ifs_tree *t, uint64_t ino)
{
	struct folder_node *n;

	if (ifs_ino_is_msg(ino))
		return;
	g_mutex_lock(&t->lock);
	n = node_by_ino(t, ino);
	if (n != NULL)
		n->nlookup++;
	g_mutex_unlock(&t->lock);
}

void ifs_tree_forget(struct ifs_tree *t, uint64_t ino, uint64_t count)
{
	struct folder_node *n;

	if (ifs_ino_is_msg(ino) || ino == IFS_ROOT_INO)
		return;
	g_mutex_lock(&t->lock);
	n = node_by_ino(t, ino);
	if (n != NULL) {
		n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
		if (n->nlookup == 0 && !n->attached)
			node_free(t, n);
	}
	g_mutex_unlock(&t->lock);
}

void ifs_msg_info_clear(struct ifs_msg_info *info)
{
	g_clear_pointer(&info->raw_name, g_free);
	g_clear_pointer(&info->flags, g_free);
	g_clear_pointer(&info->ident, ifs_msg_ident_unref);
}

/* The record of epoch and the folder's listing if that listing is still of this epoch (the
 * folder was not re-listed under another UIDVALIDITY since); NULL otherwise.  Lock held. */
static struct listing *current_listing(const struct ifs_tree *t, uint32_t epoch,
                                       const struct epoch_rec **rec_r)
{
	const struct epoch_rec *rec;
	const struct result_rec *rr = NULL;
	uint32_t base = epoch;
	struct folder_node *n;

	if (ifs_epoch_is_result(epoch)) {
		rr = result_rec(t, epoch);
		if (rr == NULL || rr->listing == NULL)
			return NULL;
		base = rr->base;
	}
	if (base == 0 || base >= t->epochs->len)
		return NULL;
	rec = t->epochs->pdata[base];
	n = g_hash_table_lookup(t->by_raw, rec->raw_name);
	if (rr != NULL) {
		/* hits of a folder life the folder's own listing has seen end are no more (epochs
		 * are numbered in the order lives are first seen: a later life has a larger one) */
		if (n != NULL && n->listing != NULL && n->listing->epoch > base)
			return NULL;
	} else if (n == NULL || n->listing == NULL || n->listing->epoch != epoch) {
		return NULL;
	}
	if (rec_r != NULL)
		*rec_r = rec;
	return rr != NULL ? rr->listing : n->listing;
}

int ifs_tree_msg_info(struct ifs_tree *t, uint32_t epoch, uint32_t uid, bool want_flags,
                      struct ifs_msg_info *info_r)
{
	const struct epoch_rec *rec = NULL;
	const struct listing *l;
	const struct ifs_msg_attr *m = NULL;
	int ret = -ENOENT;

	memset(info_r, 0, sizeof(*info_r));
	g_mutex_lock(&t->lock);
	l = current_listing(t, epoch, &rec);
	if (l == NULL)
		goto out;
	m = listing_find(l, uid);
	if (m == NULL)
		goto out;
	info_r->raw_name = g_strdup(rec->raw_name);
	info_r->uidvalidity = rec->uidvalidity;
	info_r->size = m->size;
	info_r->internaldate = m->internaldate;
	if (want_flags)
		info_r->flags = g_strdup(m->flags);
	info_r->ident = ifs_msg_ident_ref(m->ident);
	ret = 0;
out:
	g_mutex_unlock(&t->lock);
	return ret;
}

int ifs_tree_epoch_folder(struct ifs_tree *t, uint32_t epoch, char **raw_name_r,
                          uint32_t *uidvalidity_r)
{
	int ret = -ENOENT;

	g_mutex_lock(&t->lock);
	epoch = base_of(t, epoch);
	if (epoch != 0 && epoch < t->epochs->len) {
		const struct epoch_rec *rec = t->epochs->pdata[epoch];
		*raw_name_r = g_strdup(rec->raw_name);
		*uidvalidity_r = rec->uidvalidity;
		ret = 0;
	}
	g_mutex_unlock(&t->lock);
	return ret;
}

int ifs_tree_uids_around(struct ifs_tree *t, uint32_t epoch, uint32_t uid, int max_after,
                         uint32_t *prev_r, GArray *after_r)
{
	const struct listing *l;
	const struct ifs_msg_attr *m;
	int ret = -ENOENT;

	*prev_r = 0;
	g_mutex_lock(&t->lock);
	l = current_listing(t, epoch, NULL);
	if (l == NULL)
		goto out;
	m = listing_find(l, uid);
	if (m == NULL)
		goto out;
	{
		const struct ifs_msg_attr *first = &g_array_index(l->msgs, struct ifs_msg_attr, 0);
		guint i = (guint)(m - first);
		if (i > 0)
			*prev_r = first[i - 1].uid;
		if (max_after >= 0) {
			for (guint k = i + 1; k < l->msgs->len && k <= i + (guint)max_after; k++) {
				struct ifs_uid_size us = {first[k].uid, first[k].size};
				g_array_append_val(after_r, us);
			}
		} else {
			for (guint n = 1; n <= i && n <= (guint) - (gint64)max_after; n++) {
				struct ifs_uid_size us = {first[i - n].uid, first[i - n].size};
				g_array_append_val(after_r, us);
			}
		}
	}
	ret = 0;
out:
	g_mutex_unlock(&t->lock);
	return ret;
}

uint32_t ifs_tree_uid_after(struct ifs_tree *t, uint32_t epoch, uint32_t uid, int k)
{
	const struct listing *l;
	const struct ifs_msg_attr *m;
	uint32_t ret = 0;

	g_mutex_lock(&t->lock);
	l = current_listing(t, epoch, NULL);
	m = l != NULL ? listing_find(l, uid) : NULL;
	if (m != NULL) {
		const struct ifs_msg_attr *first = &g_array_index(l->msgs, struct ifs_msg_attr, 0);
		guint i = (guint)(m - first);
		gint64 at = (gint64)i + k;
		ret = first[CLAMP(at, 0, (gint64)l->msgs->len - 1)].uid;
	}
	g_mutex_unlock(&t->lock);
	return ret;
}

void ifs_tree_epoch_stale(struct ifs_tree *t, uint32_t epoch)
{
	struct listing *l;

	g_mutex_lock(&t->lock);
	if (ifs_epoch_is_result(epoch)) {
		struct result_rec *rr = result_rec(t, epoch);
		if (rr != NULL)
			rr->stale = true;
		epoch = base_of(t, epoch);
	}
	l = current_listing(t, epoch, NULL);
	if (l != NULL)
		l->fetched_at = 0; /* only ever read under the lock */
	g_mutex_unlock(&t->lock);
}

/* ---- search results ---- */

uint32_t ifs_tree_base_epoch(struct ifs_tree *t, uint32_t epoch)
{
	uint32_t base;
	if (!ifs_epoch_is_result(epoch))
		return epoch;
	g_mutex_lock(&t->lock);
	base = base_of(t, epoch);
	g_mutex_unlock(&t->lock);
	return base;
}

int ifs_tree_set_result(struct ifs_tree *t, uint32_t *epoch_io, const char *raw,
                        uint32_t uidvalidity, GArray *msgs, uint64_t parent_ino)
{
	struct result_rec *rr;
	struct listing *l;
	uint32_t base;

	g_mutex_lock(&t->lock);
	base = epoch_for(t, raw, uidvalidity);
	rr = result_rec(t, *epoch_io);
	if (base == 0 || (rr == NULL && t->results->len >= IFS_RESULT_EPOCH_BIT - 1)) {
		g_mutex_unlock(&t->lock);
		g_array_unref(msgs);
		return -EIO; /* a million folder lives or search results in one mount */
	}
	if (rr == NULL || rr->base != base) {
		/* a new folder life gets new inode numbers, as in the folder itself */
		if (rr != NULL && rr->listing != NULL)
			invalidate_gone(t, parent_ino, rr->listing, NULL);
		rr = g_new0(struct result_rec, 1);
		rr->base = base;
		g_ptr_array_add(t->results, rr);
		*epoch_io = IFS_RESULT_EPOCH_BIT + (t->results->len - 1);
	}
	{
		/* the search saw a later life of the folder than its listing: list it again */
		struct folder_node *n = g_hash_table_lookup(t->by_raw, raw);
		if (n != NULL && n->listing != NULL && n->listing->epoch < base)
			n->listing->fetched_at = 0;
	}
	l = g_new0(struct listing, 1);
	l->refs = 1;
	l->serial = ++t->next_serial;
	l->uidvalidity = uidvalidity;
	l->epoch = *epoch_io;
	l->msgs = msgs;
	l->fetched_at = g_get_monotonic_time();
	listing_summarize(l);
	if (rr->listing != NULL)
		invalidate_gone(t, parent_ino, rr->listing, l);
	listing_unref(rr->listing);
	rr->listing = l;
	rr->stale = false;
	g_mutex_unlock(&t->lock);
	return 0;
}

bool ifs_tree_result_stale(struct ifs_tree *t, uint32_t epoch)
{
	bool stale;
	g_mutex_lock(&t->lock);
	const struct result_rec *rr = result_rec(t, epoch);
	stale = rr == NULL || rr->stale || current_listing(t, epoch, NULL) == NULL;
	g_mutex_unlock(&t->lock);
	return stale;
}

void ifs_tree_drop_result(struct ifs_tree *t, uint32_t epoch)
{
	struct result_rec *rr;
	g_mutex_lock(&t->lock);
	rr = result_rec(t, epoch);
	if (rr != NULL)
		g_clear_pointer(&rr->listing, listing_unref);
	g_mutex_unlock(&t->lock);
}

/* ---- readdir snapshots ---- */

struct dir_child {
	char *name;
	uint64_t ino;
	int64_t mtime;
	long mtime_nsec;
	double fresh_for;
};

struct ifs_folder_dir {
	uint64_t ino, parent_ino;
	GArray *children;         /* struct dir_child, sorted by name */
	struct listing *listing;  /* NULL: no messages */
};

static void dir_child_clear(void *p)
{
	g_free(((struct dir_child *)p)->name);
}

static int cmp_child(gconstpointer a, gconstpointer b)
{
	return strcmp(((const struct dir_child *)a)->name, ((const struct dir_child *)b)->name);
}

int ifs_tree_open_folder(struct ifs_tree *t, uint64_t ino, struct ifs_folder_dir **dir_r,
                         bool *unchanged_r)
{
	struct ifs_folder_dir *d;
	struct folder_node *n;
	GHashTableIter it;
	gpointer v;
	int ret;

	if (ifs_ino_is_msg(ino))
		return -ENOTDIR;
	g_mutex_lock(&t->lock);
	n = node_by_ino(t, ino);
	if (n == NULL || !n->attached) {
		g_mutex_unlock(&t->lock);
		return -ENOENT;
	}
	ret = folders_fresh_locked(t);
	if (ret == 0)
		ret = listing_fresh_locked(t, n, false);
	if (ret == 0 && !n->attached)
		ret = -ENOENT;
	if (ret < 0) {
		g_mutex_unlock(&t->lock);
		return ret;
	}
	{
		/* the children's times, for readdirplus (n is pinned by the kernel) */
		GPtrArray *kids = g_ptr_array_new();
		g_hash_table_iter_init(&it, n->children);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			if (!((struct folder_node *)v)->hidden)
				g_ptr_array_add(kids, v);
		}
		prime_listings_locked(t, (struct folder_node **)kids->pdata, kids->len);
		g_ptr_array_free(kids, TRUE);
		if (!n->attached) {
			g_mutex_unlock(&t->lock);
			return -ENOENT;
		}
	}
	d = g_new0(struct ifs_folder_dir, 1);
	d->ino = ino;
	d->parent_ino = n->parent != NULL ? n->parent->ino : IFS_ROOT_INO;
	d->children = g_array_new(FALSE, FALSE, sizeof(struct dir_child));
	g_array_set_clear_func(d->children, dir_child_clear);
	g_hash_table_iter_init(&it, n->children);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct folder_node *c = v;
		if (c->hidden)
			continue; /* reachable by name only (tree.h "Hidden folders") */
		struct dir_child dc = {g_strdup(c->name), c->ino, folder_mtime(t, c),
		                       folder_mtime_nsec(c), fresh_for(t, c)};
		g_array_append_val(d->children, dc);
	}
	if (n->raw_name != NULL && n->listing != NULL)
		d->listing = listing_ref(n->listing);
	g_array_sort(d->children, cmp_child);
	{
		uint64_t version = dir_version(n);
		*unchanged_r = n->served_version == version;
		n->served_version = version;
	}
	g_mutex_unlock(&t->lock);
	*dir_r = d;
	return 0;
}

size_t ifs_folder_dir_count(const struct ifs_folder_dir *d)
{
	return d->children->len + (d->listing != NULL ? d->listing->msgs->len : 0);
}

void ifs_folder_dir_entry(const struct ifs_folder_dir *d, size_t i, char *buf,
                          const char **name_r, struct ifs_node_info *info_r)
{
	if (i < d->children->len) {
		const struct dir_child *c = &g_array_index(d->children, struct dir_child, i);
		*name_r = c->name;
		info_r->ino = c->ino;
		info_r->is_msgdir = false;
		info_r->mtime = c->mtime;
		info_r->mtime_nsec = c->mtime_nsec;
		info_r->fresh_for = c->fresh_for;
	} else {
		const struct ifs_msg_attr *m = &g_array_index(d->listing->msgs, struct ifs_msg_attr,
		                                              i - d->children->len);
		snprintf(buf, 11, "%u", m->uid);
		*name_r = buf;
		info_r->ino = ifs_msg_ino(d->listing->epoch, m->uid, IFS_SLOT_MSGDIR);
		info_r->is_msgdir = true;
		info_r->mtime = m->internaldate;
		info_r->mtime_nsec = 0;
		info_r->fresh_for = 0;
	}
}

/* Readdir offsets that survive a refresh between two READDIRs of one pass: ".", ".." and the
 * child folders by position (the folder list rarely changes), message directories by UID (a
 * refresh may add or drop messages; the pass goes on after the last UID it returned). */
#define MSG_OFF_BASE ((uint64_t)1 << 32)

uint64_t ifs_folder_dir_next_off(const struct ifs_folder_dir *d, size_t i)
{
	if (i < d->children->len)
		return 3 + (uint64_t)i;
	return MSG_OFF_BASE +
	       g_array_index(d->listing->msgs, struct ifs_msg_attr, i - d->children->len).uid;
}

size_t ifs_folder_dir_index_at(const struct ifs_folder_dir *d, uint64_t off)
{
	size_t lo = 0, hi;
	uint32_t after;

	if (off < MSG_OFF_BASE)
		return MIN((size_t)(off > 2 ? off - 2 : 0), d->children->len);
	if (d->listing == NULL)
		return d->children->len;
	/* the first message with a UID above the last one returned */
	after = (uint32_t)MIN(off - MSG_OFF_BASE, G_MAXUINT32);
	hi = d->listing->msgs->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g_array_index(d->listing->msgs, struct ifs_msg_attr, mid).uid <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return d->children->len + lo;
}

uint64_t ifs_folder_dir_ino(const struct ifs_folder_dir *d)
{
	return d->ino;
}

uint64_t ifs_folder_dir_parent(const struct ifs_folder_dir *d)
{
	return d->parent_ino;
}

void ifs_folder_dir_free(struct ifs_folder_dir *d)
{
	if (d == NULL)
		return;
	g_array_unref(d->children);
	listing_unref(d->listing);
	g_free(d);
}

int ifs_tree_open_result(struct ifs_tree *t, uint64_t ino, uint64_t parent_ino, uint32_t epoch,
                         const struct ifs_child_entry *children, size_t nchildren,
                         struct ifs_folder_dir **dir_r)
{
	struct ifs_folder_dir *d = g_new0(struct ifs_folder_dir, 1);

	d->ino = ino;
	d->parent_ino = parent_ino;
	d->children = g_array_new(FALSE, FALSE, sizeof(struct dir_child));
	g_array_set_clear_func(d->children, dir_child_clear);
	for (size_t i = 0; i < nchildren; i++) {
		const struct ifs_child_entry *c = &children[i];
		struct dir_child dc = {g_strdup(c->name), c->info.ino, c->info.mtime,
		                       c->info.mtime_nsec, c->info.fresh_for};
		g_array_append_val(d->children, dc);
	}
	g_array_sort(d->children, cmp_child);
	if (epoch != 0) {
		struct listing *l;
		g_mutex_lock(&t->lock);
		l = current_listing(t, epoch, NULL);
		if (l != NULL)
			d->listing = listing_ref(l);
		g_mutex_unlock(&t->lock);
	}
	*dir_r = d;
	return 0;
}

int ifs_tree_result_lookup(struct ifs_tree *t, uint32_t epoch, uint32_t uid,
                           struct ifs_node_info *info_r)
{
	const struct listing *l;
	const struct ifs_msg_attr *m = NULL;

	g_mutex_lock(&t->lock);
	l = current_listing(t, epoch, NULL);
	if (l != NULL)
		m = listing_find(l, uid);
	if (m != NULL) {
		info_r->ino = ifs_msg_ino(epoch, uid, IFS_SLOT_MSGDIR);
		info_r->is_msgdir = true;
		info_r->mtime = m->internaldate;
		info_r->mtime_nsec = 0;
		info_r->fresh_for = 0;
	}
	g_mutex_unlock(&t->lock);
	return m != NULL ? 0 : -ENOENT;
}

/* ---- folders for a mount-wide search ---- */

void ifs_folder_path_free(struct ifs_folder_path *fp)
{
	if (fp == NULL)
		return;
	g_free(fp->raw_name);
	g_strfreev(fp->path);
	g_free(fp);
}

static int cmp_folder_path(gconstpointer a, gconstpointer b)
{
	return strcmp((*(struct ifs_folder_path *const *)a)->raw_name,
	              (*(struct ifs_folder_path *const *)b)->raw_name);
}

int ifs_tree_folder_paths(struct ifs_tree *t, GPtrArray **folders_r)
{
	GPtrArray *out;
	GHashTableIter it;
	gpointer v;
	int ret;

	*folders_r = NULL;
	g_mutex_lock(&t->lock);
	ret = folders_fresh_locked(t);
	if (ret < 0 && t->folders_at == 0) {
		g_mutex_unlock(&t->lock);
		return ret;
	}
	out = g_ptr_array_new_with_free_func((GDestroyNotify)ifs_folder_path_free);
	g_hash_table_iter_init(&it, t->by_raw);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const struct folder_node *n = v;
		GPtrArray *names = g_ptr_array_new();
		struct ifs_folder_path *fp;
		bool hidden = false;
		for (const struct folder_node *p = n; p != NULL; p = p->parent)
			hidden = hidden || p->hidden;
		if (!n->attached || hidden) {
			/* hidden: searched as a walk of the mount sees it (tree.h "Hidden folders")
			 */
			g_ptr_array_free(names, TRUE);
			continue;
		}
		for (const struct folder_node *p = n; p != NULL && p->parent != NULL; p = p->parent)
			g_ptr_array_insert(names, 0, g_strdup(p->name));
		g_ptr_array_add(names, NULL);
		fp = g_new0(struct ifs_folder_path, 1);
		fp->raw_name = g_strdup(n->raw_name);
		fp->path = (char **)g_ptr_array_free(names, FALSE);
		g_ptr_array_add(out, fp);
	}
	g_mutex_unlock(&t->lock);
	g_ptr_array_sort(out, cmp_folder_path);
	*folders_r = out;
	return 0;
}

int ifs_tree_folder_raw(struct ifs_tree *t, uint64_t ino, char **raw_r)
{
	struct folder_node *n;
	int ret = 0;

	*raw_r = NULL;
	if (ifs_ino_is_msg(ino))
		return -ENOTDIR;
	g_mutex_lock(&t->lock);
	n = node_by_ino(t, ino);
	if (n == NULL || !n->attached)
		ret = -ENOENT;
	else
		*raw_r = g_strdup(n->raw_name);
	g_mutex_unlock(&t->lock);
	return ret;
}
