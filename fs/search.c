/* search.c — `.search` directories: nodes, running their queries, their results (contract,
 * layout and locking in search.h). */
#include "search.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "names.h"
#include "query.h"
#include "remote.h"

enum snode_kind {
	SN_FOLDER_ROOT,   /* FOLDER/.search */
	SN_FOLDER_RESULT, /* FOLDER/.search/C1/... */
	SN_MOUNT_ROOT,    /* MOUNT/.search */
	SN_MOUNT_RESULT,  /* MOUNT/.search/C1/... */
	SN_MOUNT_DIR,     /* MOUNT/.search/C1/.../FOLDER/PATH */
};

struct snode {
	uint64_t ino;
	enum snode_kind kind;
	struct snode *parent;  /* NULL for roots and once detached */
	uint64_t parent_ino;   /* the folder directory (roots) or the parent node */
	char *name;            /* entry name in the parent */
	char *raw_name;        /* folder scope: the folder; SN_MOUNT_DIR: the folder at this path
	                        * when it has hits (else NULL) */
	GPtrArray *criteria;   /* results: the components from .search down (char *) */
	GHashTable *children;  /* entry name -> struct snode * */
	uint64_t nlookup;
	bool attached;
	bool seen;             /* SN_MOUNT_DIR: part of the result being built ... */
	bool has_hits;         /* ... and a folder with hits of its own */
	/* SN_FOLDER_RESULT and SN_MOUNT_RESULT: */
	gint64 fetched_at;     /* g_get_monotonic_time() of the last good run; 0: never */
	bool running;
	/* what the directory shows: */
	uint32_t epoch;        /* SN_FOLDER_RESULT, SN_MOUNT_DIR: result epoch of the hits, 0 none */
	uint64_t version;      /* changes when what it shows changes (mtime nanoseconds) */
	int64_t newest;        /* newest hit's arrival (mtime); 0: none */
};

struct ifs_search {
	GMutex lock;
	GCond ran;                  /* broadcast when any run ends */
	GHashTable *by_ino;         /* uint64 ino -> struct snode * */
	GHashTable *folder_roots;   /* uint64 folder ino -> its SN_FOLDER_ROOT */
	struct snode *mount_root;   /* NULL until looked up */
	uint64_t next_ino;
	gint64 refresh_us;
	int64_t start_time;
	struct ifs_tree *tree;
	struct imap_pool *pool;
	struct ifs_notifier *notifier;
	uint64_t searches;          /* atomic */
	GHashTable *warned;         /* ".search/..." paths whose refusal was logged (warn_once) */
};

/* ---- nodes ---- */

static struct snode *node_new(struct ifs_search *s, enum snode_kind kind, struct snode *parent,
                              uint64_t parent_ino, const char *name)
{
	struct snode *n = g_new0(struct snode, 1);
	n->ino = s->next_ino++;
	n->kind = kind;
	n->parent = parent;
	n->parent_ino = parent != NULL ? parent->ino : parent_ino;
	n->name = g_strdup(name);
	n->children = g_hash_table_new(g_str_hash, g_str_equal);
	n->attached = true;
	n->criteria = g_ptr_array_new_with_free_func(g_free);
	if (parent != NULL) {
		for (guint i = 0; i < parent->criteria->len; i++)
			g_ptr_array_add(n->criteria, g_strdup(parent->criteria->pdata[i]));
		n->raw_name = g_strdup(parent->raw_name);
		g_hash_table_insert(parent->children, n->name, n);
	}
	g_hash_table_insert(s->by_ino, &n->ino, n);
	return n;
}

/* Free n and the children nobody looks up; children the kernel still knows are detached and
 * freed when forgotten (lock held). */
static void node_free(struct ifs_search *s, struct snode *n)
{
	GList *kids = g_hash_table_get_values(n->children);
	for (GList *l = kids; l != NULL; l = l->next) {
		struct snode *c = l->data;
		c->parent = NULL;
		c->attached = false;
		if (c->nlookup == 0)
			node_free(s, c);
	}
	g_list_free(kids);
	if (n->parent != NULL && g_hash_table_lookup(n->parent->children, n->name) == n)
		g_hash_table_remove(n->parent->children, n->name);
	if (n->kind == SN_FOLDER_ROOT &&
	    g_hash_table_lookup(s->folder_roots, &n->parent_ino) == n)
		g_hash_table_remove(s->folder_roots, &n->parent_ino);
	if (n == s->mount_root)
		s->mount_root = NULL;
	if (n->epoch != 0)
		ifs_tree_drop_result(s->tree, n->epoch);
	g_hash_table_remove(s->by_ino, &n->ino);
	g_hash_table_destroy(n->children);
	g_ptr_array_unref(n->criteria);
	g_free(n->name);
	g_free(n->raw_name);
	g_free(n);
}

/* A node whose directory no longer shows it (lock held). */
static void node_detach(struct ifs_search *s, struct snode *n)
{
	if (n->parent != NULL) {
		g_hash_table_remove(n->parent->children, n->name);
		ifs_notify_inval_entry(s->notifier, n->parent->ino, n->name);
	}
	n->parent = NULL;
	n->attached = false;
	if (n->nlookup == 0)
		node_free(s, n);
}

static struct snode *node_by_ino(struct ifs_search *s, uint64_t ino)
{
	return g_hash_table_lookup(s->by_ino, &ino);
}

/* The result node whose run decides what n shows (itself, or a mount-wide result above). */
static struct snode *result_of(struct snode *n)
{
	while (n != NULL && n->kind == SN_MOUNT_DIR)
		n = n->parent;
	return n;
}

static bool is_result(const struct snode *n)
{
	return n->kind == SN_FOLDER_RESULT || n->kind == SN_MOUNT_RESULT;
}

/* ---- life cycle ---- */

struct ifs_search *ifs_search_new(struct ifs_tree *tree, struct imap_pool *pool,
                                  unsigned refresh_s)
{
	struct ifs_search *s = g_new0(struct ifs_search, 1);
	g_mutex_init(&s->lock);
	g_cond_init(&s->ran);
	s->by_ino = g_hash_table_new(g_int64_hash, g_int64_equal);
	s->folder_roots = g_hash_table_new(g_int64_hash, g_int64_equal);
	s->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	s->next_ino = IFS_SEARCH_INO_BASE;
	s->refresh_us = (gint64)refresh_s * G_USEC_PER_SEC;
	s->start_time = time(NULL);
	s->tree = tree;
	s->pool = pool;
	return s;
}

void ifs_search_free(struct ifs_search *s)
{
	GList *all;
	if (s == NULL)
		return;
	/* every node, children before parents do not matter: free() only unlinks */
	all = g_hash_table_get_values(s->by_ino);
	for (GList *l = all; l != NULL; l = l->next) {
		struct snode *n = l->data;
		g_hash_table_destroy(n->children);
		g_ptr_array_unref(n->criteria);
		g_free(n->name);
		g_free(n->raw_name);
		g_free(n);
	}
	g_list_free(all);
	g_hash_table_destroy(s->by_ino);
	g_hash_table_destroy(s->folder_roots);
	g_hash_table_destroy(s->warned);
	g_cond_clear(&s->ran);
	g_mutex_clear(&s->lock);
	g_free(s);
}

void ifs_search_set_notifier(struct ifs_search *s, struct ifs_notifier *notifier)
{
	g_mutex_lock(&s->lock);
	s->notifier = notifier;
	g_mutex_unlock(&s->lock);
}

uint64_t ifs_search_count(const struct ifs_search *s)
{
	return __atomic_load_n(&s->searches, __ATOMIC_RELAXED);
}

/* ---- running a query ---- */

/* The path of n below .search, for log lines (new string). */
static char *describe(const struct snode *n)
{
	GString *p = g_string_new(NULL);
	for (guint i = 0; i < n->criteria->len; i++)
		g_string_append_printf(p, "/%s", (const char *)n->criteria->pdata[i]);
	return g_string_free(p, FALSE);
}

/* The AND of criteria (a new query), or -EINVAL with *why_r (new) naming the mistake. */
static int build_query(GPtrArray *criteria, struct imap_search **q_r, char **why_r)
{
	GDate *today = g_date_new();
	struct imap_search *all = NULL;
	int err = 0;

	g_date_set_time_t(today, time(NULL));
	for (guint i = 0; i < criteria->len && err == 0; i++) {
		struct imap_search *q;
		if ((err = ifs_query_from_component(criteria->pdata[i], today, &q, why_r)) == 0)
			all = imap_search_and(all, q);
	}
	g_date_free(today);
	if (err < 0) {
		imap_search_free(all);
		return err;
	}
	*q_r = all != NULL ? all : imap_search_new_flag(IMAP_SEARCH_ALL);
	return 0;
}

/* FNV-1a over what a result shows: its version, so that mtime changes with it. */
static uint64_t mix(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static uint64_t hits_version(uint64_t h, const char *name, const GArray *msgs)
{
	h = mix(h, name, strlen(name) + 1);
	for (guint i = 0; msgs != NULL && i < msgs->len; i++) {
		const struct ifs_msg_attr *m = &g_array_index(msgs, struct ifs_msg_attr, i);
		h = mix(h, &m->uid, sizeof(m->uid));
		h = mix(h, m->flags, strlen(m->flags));
	}
	return h;
}

static int64_t newest_of(const GArray *msgs)
{
	int64_t newest = 0;
	for (guint i = 0; i < msgs->len; i++)
		newest = MAX(newest, g_array_index(msgs, struct ifs_msg_attr, i).internaldate);
	return newest;
}

/* Log why a folder's search failed and turn it into the errno of the directory. */
static int search_failed(const struct snode *n, const char *folder, int result, const char *why)
{
	char *path = describe(n);
	int ret = -EIO;
	switch (result) {
	case -ENOENT:
		ret = -ENOENT; /* the folder is gone */
		break;
	case -EILSEQ:
		g_warning("search .search%s in %s: the server cannot search for non-ASCII text "
		          "(it refused CHARSET UTF-8)",
		          path, folder);
		break;
	case -EOPNOTSUPP:
		g_warning("search .search%s: gmail= needs a server with Gmail's search (X-GM-EXT-1)",
		          path);
		ret = -ENOENT;
		break;
	default:
		if (why == NULL || *why == '\0')
			/* no connection (an outage, offline): the pool logs that once, not per search */
			g_debug("search .search%s in %s: no connection to the server", path, folder);
		else
			g_warning("search .search%s in %s failed: %s", path, folder, why);
		break;
	}
	g_free(path);
	return ret;
}

/* A folder-scope result: the hits of n's query in its folder (lock held on entry and exit,
 * dropped while asking the server). */
static int run_folder(struct ifs_search *s, struct snode *n, struct imap_search *q)
{
	char *raw = g_strdup(n->raw_name); /* n->raw_name is read under the lock only */
	struct ifs_search_hits hits = {.raw_name = raw};
	int ret;

	g_mutex_unlock(&s->lock);
	__atomic_fetch_add(&s->searches, 1, __ATOMIC_RELAXED);
	ret = ifs_remote_search(s->pool, q, &hits, 1);
	g_mutex_lock(&s->lock);
	if (hits.result < 0) {
		ret = search_failed(n, raw, hits.result, hits.why);
	} else {
		uint64_t version = hits_version(14695981039346656037ull, raw, hits.msgs);
		n->newest = newest_of(hits.msgs);
		ret = ifs_tree_set_result(s->tree, &n->epoch, raw, hits.uidvalidity, hits.msgs,
		                          n->ino);
		hits.msgs = NULL;
		if (ret == 0) {
			n->version = version;
			n->fetched_at = g_get_monotonic_time();
		} else {
			g_warning("search: too many search results in this mount; remount");
		}
	}
	if (hits.msgs != NULL)
		g_array_unref(hits.msgs);
	g_free(hits.why);
	g_free(raw);
	return ret;
}

/* The entry name of a mount-wide result's top-level folder component (new string). */
static char *top_entry_name(const char *component)
{
	if (component[0] == '=' || ifs_query_is_criterion(component))
		return g_strconcat("=", component, NULL);
	return g_strdup(component);
}

/* Rebuild the directories of a mount-wide result from the folders with hits (lock held). */
static void apply_mount_hits(struct ifs_search *s, struct snode *res, GPtrArray *folders,
                             struct ifs_search_hits *hits, uint64_t *version_r)
{
	uint64_t version = 14695981039346656037ull;
	GPtrArray *stack = g_ptr_array_new();
	int64_t newest = 0;

	/* mark: every directory below res unseen */
	g_ptr_array_add(stack, res);
	while (stack->len > 0) {
		struct snode *d = g_ptr_array_steal_index(stack, stack->len - 1);
		GHashTableIter it;
		gpointer v;
		g_hash_table_iter_init(&it, d->children);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			struct snode *c = v;
			if (c->kind == SN_MOUNT_DIR) {
				c->seen = c->has_hits = false;
				g_ptr_array_add(stack, c);
			}
		}
	}
	for (guint i = 0; i < folders->len; i++) {
		const struct ifs_folder_path *fp = folders->pdata[i];
		struct snode *d = res;
		if (hits[i].result < 0 || hits[i].msgs == NULL || hits[i].msgs->len == 0)
			continue;
		for (size_t k = 0; fp->path[k] != NULL; k++) {
			char *name = k == 0 ? top_entry_name(fp->path[k]) : g_strdup(fp->path[k]);
			struct snode *c = g_hash_table_lookup(d->children, name);
			if (c == NULL || c->kind != SN_MOUNT_DIR) {
				c = node_new(s, SN_MOUNT_DIR, d, 0, name);
				g_clear_pointer(&c->raw_name, g_free);
			}
			c->seen = true;
			g_free(name);
			d = c;
		}
		if (g_strcmp0(d->raw_name, fp->raw_name) != 0) {
			g_free(d->raw_name);
			d->raw_name = g_strdup(fp->raw_name);
		}
		d->has_hits = true;
		version = hits_version(version, fp->raw_name, hits[i].msgs);
		{
			uint64_t v = hits_version(14695981039346656037ull, fp->raw_name, hits[i].msgs);
			int64_t nw = newest_of(hits[i].msgs);
			if (ifs_tree_set_result(s->tree, &d->epoch, fp->raw_name, hits[i].uidvalidity,
			                        hits[i].msgs, d->ino) == 0) {
				d->version = v;
				d->newest = nw;
				newest = MAX(newest, nw);
			}
			hits[i].msgs = NULL;
		}
	}
	/* sweep: directories no folder with hits needs any more; folder paths that lost theirs */
	g_ptr_array_add(stack, res);
	while (stack->len > 0) {
		struct snode *d = g_ptr_array_steal_index(stack, stack->len - 1);
		GList *kids = g_hash_table_get_values(d->children);
		for (GList *l = kids; l != NULL; l = l->next) {
			struct snode *c = l->data;
			if (c->kind != SN_MOUNT_DIR)
				continue;
			if (!c->seen) {
				node_detach(s, c);
				continue;
			}
			if (!c->has_hits && c->epoch != 0) {
				/* still on the way to folders with hits, but without hits itself */
				ifs_tree_drop_result(s->tree, c->epoch);
				c->epoch = 0;
				c->version = 0;
				c->newest = 0;
				g_clear_pointer(&c->raw_name, g_free);
			}
			g_ptr_array_add(stack, c);
		}
		g_list_free(kids);
	}
	g_ptr_array_free(stack, TRUE);
	res->newest = newest;
	*version_r = version;
}

/* A mount-wide result: every folder searched in one chain (lock held on entry and exit). */
static int run_mount(struct ifs_search *s, struct snode *n, struct imap_search *q)
{
	GPtrArray *folders = NULL;
	struct ifs_search_hits *hits;
	unsigned ok = 0, failed = 0;
	int ret, first_err = 0;
	uint64_t version;

	g_mutex_unlock(&s->lock);
	ret = ifs_tree_folder_paths(s->tree, &folders);
	if (ret < 0) {
		g_mutex_lock(&s->lock);
		return -EIO;
	}
	hits = g_new0(struct ifs_search_hits, MAX(folders->len, 1));
	for (guint i = 0; i < folders->len; i++)
		hits[i].raw_name = ((struct ifs_folder_path *)folders->pdata[i])->raw_name;
	__atomic_fetch_add(&s->searches, 1, __ATOMIC_RELAXED);
	if (folders->len > 0)
		ifs_remote_search(s->pool, q, hits, folders->len);
	g_mutex_lock(&s->lock);
	for (guint i = 0; i < folders->len; i++) {
		if (hits[i].result == 0) {
			ok++;
		} else if (hits[i].result != -ENOENT) {
			int e = search_failed(n, hits[i].raw_name, hits[i].result, hits[i].why);
			failed++;
			if (first_err == 0)
				first_err = e;
		}
	}
	if (failed > 0 && ok == 0) {
		ret = first_err;
	} else {
		/* folders the server would not search are left out (logged above) */
		apply_mount_hits(s, n, folders, hits, &version);
		n->version = version;
		n->fetched_at = g_get_monotonic_time();
		ret = 0;
	}
	for (guint i = 0; i < folders->len; i++) {
		if (hits[i].msgs != NULL)
			g_array_unref(hits[i].msgs);
		g_free(hits[i].why);
	}
	g_free(hits);
	g_ptr_array_unref(folders);
	return ret;
}

/* Does n, or a folder path below it, hold hits of a folder life that ended (lock held)? */
static bool hits_stale(struct ifs_search *s, struct snode *n)
{
	GHashTableIter it;
	gpointer v;
	if (n->epoch != 0 && ifs_tree_result_stale(s->tree, n->epoch))
		return true;
	if (n->kind == SN_FOLDER_RESULT)
		return false; /* its children are criteria with results of their own */
	g_hash_table_iter_init(&it, n->children);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct snode *c = v;
		if (c->kind == SN_MOUNT_DIR && hits_stale(s, c))
			return true;
	}
	return false;
}

static bool result_fresh(struct ifs_search *s, struct snode *n)
{
	if (n->fetched_at == 0 || g_get_monotonic_time() - n->fetched_at >= s->refresh_us)
		return false;
	return !hits_stale(s, n);
}

/* Make result node n no older than the refresh time (single-flight; lock held on entry and
 * exit, n pinned by the caller).  A failure keeps an earlier result, and returns the error only
 * when there is none. */
static int result_run_locked(struct ifs_search *s, struct snode *n)
{
	struct imap_search *q = NULL;
	char *why = NULL;
	GPtrArray *criteria;
	int ret;

	while (n->running)
		g_cond_wait(&s->ran, &s->lock);
	if (result_fresh(s, n))
		return 0;
	criteria = g_ptr_array_ref(n->criteria);
	if (build_query(criteria, &q, &why) < 0) {
		/* a relative date that went out of range, say: checked at lookup already */
		g_warning("search .search/...: %s", why);
		g_free(why);
		g_ptr_array_unref(criteria);
		return -ENOENT;
	}
	g_ptr_array_unref(criteria);
	n->running = true;
	ret = n->kind == SN_FOLDER_RESULT ? run_folder(s, n, q) : run_mount(s, n, q);
	n->running = false;
	g_cond_broadcast(&s->ran);
	imap_search_free(q);
	if (ret < 0 && n->fetched_at != 0)
		ret = 0; /* keep serving what was found before */
	return ret;
}

/* ---- attributes ---- */

static double fresh_for(struct ifs_search *s, const struct snode *n)
{
	const struct snode *r = result_of((struct snode *)n);
	gint64 left;
	if (r == NULL || !is_result(r))
		return (double)s->refresh_us / G_USEC_PER_SEC; /* roots show nothing that changes */
	left = r->fetched_at + s->refresh_us - g_get_monotonic_time();
	return left > 0 ? (double)left / G_USEC_PER_SEC : 0.0;
}

static void node_info(struct ifs_search *s, const struct snode *n, struct ifs_node_info *info_r)
{
	uint64_t version = n->version;
	if (n->kind != SN_FOLDER_RESULT) {
		/* what the directory shows includes its child directories */
		GHashTableIter it;
		gpointer v;
		g_hash_table_iter_init(&it, n->children);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			const struct snode *c = v;
			if (c->kind == SN_MOUNT_DIR)
				version += (g_str_hash(c->name) * 31u + c->ino) * 1000003u;
		}
	}
	info_r->ino = n->ino;
	info_r->is_msgdir = false;
	info_r->mtime = n->newest > 0 ? n->newest : s->start_time;
	info_r->mtime_nsec = (long)((version * 2u + 1u) % 1000000000u);
	info_r->fresh_for = fresh_for(s, n);
}

/* ---- operations ---- */

#define WARNED_MAX 1024

/* Log why FOLDER/.search<path of n>/name is no criterion, once per path (lock held). */
static void warn_once(struct ifs_search *s, struct snode *n, const char *name, const char *why)
{
	const struct snode *root = n;
	char *path = describe(n);
	char *full;

	while (root->parent != NULL)
		root = root->parent;
	full = g_strdup_printf("%s%s.search%s/%s", root->raw_name != NULL ? root->raw_name : "",
	                       root->raw_name != NULL ? "/" : "", path, name);

	g_free(path);
	if (g_hash_table_contains(s->warned, full)) {
		g_free(full);
		return;
	}
	if (g_hash_table_size(s->warned) >= WARNED_MAX)
		g_hash_table_remove_all(s->warned); /* bounded: a scripted loop may say it again */
	g_warning("search: %s: %s", full, why);
	g_hash_table_add(s->warned, full);
}

/* The child criterion node name of n (a root or a result), running its query first; lock
 * held.  Logs and refuses a component that is not a criterion. */
static int lookup_criterion(struct ifs_search *s, struct snode *n, const char *name,
                            struct snode **c_r)
{
	struct snode *c = g_hash_table_lookup(n->children, name);
	enum snode_kind kind =
	    n->kind == SN_FOLDER_ROOT || n->kind == SN_FOLDER_RESULT ? SN_FOLDER_RESULT
	                                                             : SN_MOUNT_RESULT;
	int ret;

	if (c == NULL) {
		struct imap_search *q = NULL;
		char *why = NULL;
		GDate *today = g_date_new();
		g_date_set_time_t(today, time(NULL));
		ret = ifs_query_from_component(name, today, &q, &why);
		g_date_free(today);
		imap_search_free(q);
		if (ret < 0) {
			/* Quiet unless the user could have meant a criterion, and then once per
			 * name: `mkdir .search/newdir` looks its name up first (then fails EROFS).
			 */
			char *hint = NULL;
			if (ifs_query_is_criterion(name) || ifs_query_near_miss(name, &hint))
				warn_once(s, n, name, hint != NULL ? hint : why);
			g_free(hint);
			g_free(why);
			return -ENOENT;
		}
		c = node_new(s, kind, n, 0, name);
		g_ptr_array_add(c->criteria, g_strdup(name));
	}
	c->nlookup++; /* pins c while the lock is dropped */
	ret = result_run_locked(s, c);
	if (ret < 0) {
		c->nlookup--;
		if (c->nlookup == 0 && c->fetched_at == 0)
			node_free(s, c);
		return ret;
	}
	*c_r = c;
	return 0;
}

/* The hit uid among what n shows (a folder result, or a mount-wide folder path), refreshing a
 * stale result when uid is not among the hits yet (lock held). */
static int lookup_hit(struct ifs_search *s, struct snode *n, uint32_t uid,
                      struct ifs_node_info *info_r)
{
	struct snode *r = result_of(n);
	if (n->epoch != 0 && ifs_tree_result_lookup(s->tree, n->epoch, uid, info_r) == 0)
		return 0;
	if (r == NULL || r->fetched_at == 0 || result_fresh(s, r))
		return -ENOENT;
	r->nlookup++;
	result_run_locked(s, r);
	r->nlookup--;
	if (n->epoch == 0 || !n->attached)
		return -ENOENT;
	return ifs_tree_result_lookup(s->tree, n->epoch, uid, info_r);
}

/* A folder path directory name below n (a mount-wide result or one of its folder paths), with
 * the result made fresh first (lock held).  Counts one kernel lookup. */
static int lookup_folder_path(struct ifs_search *s, struct snode *n, const char *name,
                              struct ifs_node_info *info_r)
{
	struct snode *c;
	int ret = result_run_locked(s, result_of(n));
	if (ret < 0)
		return ret;
	c = n->attached ? g_hash_table_lookup(n->children, name) : NULL;
	if (c == NULL || c->kind != SN_MOUNT_DIR)
		return -ENOENT;
	c->nlookup++;
	node_info(s, c, info_r);
	return 0;
}

int ifs_search_lookup(struct ifs_search *s, uint64_t parent, const char *name,
                      struct ifs_node_info *info_r)
{
	struct snode *n, *c = NULL;
	uint32_t uid;
	int ret = 0;

	g_mutex_lock(&s->lock);
	if (!ifs_ino_is_search(parent)) {
		/* FOLDER/.search or MOUNT/.search */
		char *raw = NULL;
		if (strcmp(name, IFS_SEARCH_DIR) != 0) {
			ret = -ENOENT;
			goto out;
		}
		if ((ret = ifs_tree_folder_raw(s->tree, parent, &raw)) < 0)
			goto out;
		if (parent == IFS_ROOT_INO) {
			g_free(raw);
			if (s->mount_root == NULL)
				s->mount_root = node_new(s, SN_MOUNT_ROOT, NULL, parent, name);
			c = s->mount_root;
		} else if (raw == NULL) {
			ret = -ENOENT; /* \Noselect or implied: nothing to search */
			goto out;
		} else {
			c = g_hash_table_lookup(s->folder_roots, &parent);
			if (c != NULL && g_strcmp0(c->raw_name, raw) != 0) {
				/* the folder directory names another folder now */
				g_hash_table_remove(s->folder_roots, &parent);
				c->attached = false;
				c = NULL;
			}
			if (c == NULL) {
				c = node_new(s, SN_FOLDER_ROOT, NULL, parent, name);
				c->raw_name = g_strdup(raw);
				g_hash_table_insert(s->folder_roots, &c->parent_ino, c);
			}
			g_free(raw);
		}
		c->nlookup++;
		node_info(s, c, info_r);
		goto out;
	}
	n = node_by_ino(s, parent);
	if (n == NULL || !n->attached) {
		ret = -ENOENT;
		goto out;
	}
	if (n->kind == SN_MOUNT_DIR || ifs_parse_uid(name, &uid)) {
		if (ifs_parse_uid(name, &uid)) {
			ret = lookup_hit(s, n, uid, info_r);
			goto out;
		}
		ret = lookup_folder_path(s, n, name, info_r); /* a deeper folder of the path */
		goto out;
	}
	if (n->kind == SN_MOUNT_RESULT && (name[0] == '=' || !ifs_query_is_criterion(name))) {
		ret = lookup_folder_path(s, n, name, info_r); /* a top-level folder */
		goto out;
	}
	if ((ret = lookup_criterion(s, n, name, &c)) < 0)
		goto out;
	node_info(s, c, info_r);
out:
	g_mutex_unlock(&s->lock);
	return ret;
}

int ifs_search_info(struct ifs_search *s, uint64_t ino, bool refresh,
                    struct ifs_node_info *info_r)
{
	struct snode *n;
	int ret = 0;

	g_mutex_lock(&s->lock);
	n = node_by_ino(s, ino);
	if (n == NULL) {
		ret = -ENOENT;
		goto out;
	}
	if (refresh && n->attached) {
		struct snode *r = result_of(n);
		if (r != NULL && is_result(r) && r->fetched_at != 0)
			result_run_locked(s, r); /* the kernel holds n, and so its ancestors */
	}
	node_info(s, n, info_r);
out:
	g_mutex_unlock(&s->lock);
	return ret;
}

int ifs_search_open_dir(struct ifs_search *s, uint64_t ino, struct ifs_folder_dir **dir_r)
{
	struct ifs_child_entry *kids;
	struct snode *n, *r;
	GHashTableIter it;
	gpointer v;
	size_t nk = 0;
	int ret = 0;

	g_mutex_lock(&s->lock);
	n = node_by_ino(s, ino);
	if (n == NULL || !n->attached) {
		g_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	r = result_of(n);
	if (r != NULL && is_result(r))
		ret = result_run_locked(s, r);
	if (ret == 0 && !n->attached)
		ret = -ENOENT;
	if (ret < 0) {
		g_mutex_unlock(&s->lock);
		return ret;
	}
	/* criteria children are never listed: only a mount-wide result's folder paths */
	kids = g_new0(struct ifs_child_entry, g_hash_table_size(n->children) + 1);
	g_hash_table_iter_init(&it, n->children);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const struct snode *c = v;
		if (c->kind != SN_MOUNT_DIR)
			continue;
		kids[nk].name = c->name;
		node_info(s, c, &kids[nk].info);
		nk++;
	}
	ret = ifs_tree_open_result(s->tree, ino, n->parent_ino,
	                           n->kind == SN_FOLDER_RESULT || n->kind == SN_MOUNT_DIR ? n->epoch
	                                                                                 : 0,
	                           kids, nk, dir_r);
	g_free(kids);
	g_mutex_unlock(&s->lock);
	return ret;
}

void ifs_search_ref(struct ifs_search *s, uint64_t ino)
{
	struct snode *n;
	g_mutex_lock(&s->lock);
	n = node_by_ino(s, ino);
	if (n != NULL)
		n->nlookup++;
	g_mutex_unlock(&s->lock);
}

void ifs_search_forget(struct ifs_search *s, uint64_t ino, uint64_t count)
{
	struct snode *n;
	g_mutex_lock(&s->lock);
	n = node_by_ino(s, ino);
	if (n != NULL) {
		n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
		/* a mount-wide result's folder path lives as long as the result shows it */
		if (n->nlookup == 0 && (n->kind != SN_MOUNT_DIR || !n->attached))
			node_free(s, n);
	}
	g_mutex_unlock(&s->lock);
}
