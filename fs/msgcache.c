/* msgcache.c — bounded, single-flight cache of parsed messages (contract in msgcache.h). */
#include "msgcache.h"
#include "piece.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

enum entry_state { ENTRY_LOADING, ENTRY_READY, ENTRY_FAILED };

struct entry {
	struct ifs_cached_msg pub; /* first: callers get &pub and we cast back */
	enum entry_state state;
	int err;
	unsigned refs;
	bool in_table;             /* false once evicted/dropped/failed: freed at last put */
	bool prefetched;           /* loaded by read-ahead and not yet used by a reader */
	size_t cost;
	GList lru;                 /* link in cache->lru while READY and in_table */
};

/* A load that just failed answers a new load of the same key by the same requester (the
 * process whose read failed) that starts within this many µs, instead of a second try: the
 * kernel retries a failed readahead READ synchronously at once, and a second network attempt
 * inside the same read() would only double the wait (a whole timeout more when the server
 * stalls) and, while the server is unreachable, start the connection pool's reconnection
 * back-off.  Any other process tries again at once. */
#define FAILURE_ECHO_US 1000000

struct failure {
	int err;
	gint64 at;
	uint64_t requester;
};

struct ifs_msgcache {
	GMutex lock;
	GHashTable *failures;      /* uint64 key -> struct failure* (recent failed loads) */
	GCond loaded;              /* broadcast when any load finishes */
	GHashTable *table;         /* uint64 key -> struct entry* */
	GQueue lru;                /* head: most recently used */
	size_t bytes, max_bytes;
};

struct ifs_fd *ifs_fd_new(int fd)
{
	struct ifs_fd *f = g_new0(struct ifs_fd, 1);
	f->refs = 1;
	f->fd = fd;
	return f;
}

struct ifs_fd *ifs_fd_ref(struct ifs_fd *f)
{
	g_atomic_int_inc(&f->refs);
	return f;
}

void ifs_fd_unref(struct ifs_fd **fp)
{
	struct ifs_fd *f = *fp;

	*fp = NULL;
	if (f != NULL && g_atomic_int_dec_and_test(&f->refs)) {
		close(f->fd);
		g_free(f);
	}
}

void ifs_blob_clear(struct ifs_blob *b)
{
	g_clear_pointer(&b->mem, g_bytes_unref);
	ifs_fd_unref(&b->file);
	b->off = b->size = 0;
}

ssize_t ifs_blob_read(const struct ifs_blob *b, uint64_t off, size_t len, char *buf,
                      const char **data_r)
{
	uint64_t size = ifs_blob_size(b);

	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	if (b->mem != NULL) {
		*data_r = (const char *)g_bytes_get_data(b->mem, NULL) + off;
		return (ssize_t)len;
	}
	if (b->file == NULL)
		return -ENOENT;
	for (size_t done = 0; done < len;) {
		ssize_t n = pread(b->file->fd, buf + done, len - done, (off_t)(b->off + off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file is shorter than it was: never serve a short file */
		done += (size_t)n;
	}
	*data_r = buf;
	return (ssize_t)len;
}

void ifs_cached_msg_clear(struct ifs_cached_msg *m)
{
	ifs_blob_clear(&m->raw);
	for (int v = 0; v < MIME_VIEW_COUNT; v++)
		ifs_blob_clear(&m->views[v]);
	if (m->attachments != NULL) {
		for (guint i = 0; i < m->attachments->len; i++) {
			struct ifs_attachment *a =
			    &g_array_index(m->attachments, struct ifs_attachment, i);
			g_free(a->name);
			ifs_blob_clear(&a->data);
			g_free(a->src.section);
			g_free(a->src.encoding);
		}
		g_clear_pointer(&m->attachments, g_array_unref);
	}
	g_clear_pointer(&m->pieces, g_hash_table_unref);
	g_clear_pointer(&m->structure, imap_part_free);
	g_clear_pointer(&m->text_sections, g_ptr_array_unref);
}

static void entry_free(struct entry *e)
{
	ifs_cached_msg_clear(&e->pub);
	g_free(e);
}

static size_t blob_cost(const struct ifs_blob *b)
{
	if (b->mem != NULL)
		return g_bytes_get_size(b->mem);
	return b->file != NULL ? IFS_FILE_BLOB_COST : 0;
}

static size_t message_cost(const struct ifs_cached_msg *m)
{
	size_t cost = blob_cost(&m->raw) + 1024;
	for (int v = 0; v < MIME_VIEW_COUNT; v++)
		cost += blob_cost(&m->views[v]);
	for (guint i = 0; m->attachments != NULL && i < m->attachments->len; i++) {
		const struct ifs_attachment *a =
		    &g_array_index(m->attachments, struct ifs_attachment, i);
		/* a file shared by many attachments is counted once per attachment: fine */
		cost += blob_cost(&a->data) + strlen(a->name) + 64;
	}
	if (m->pieces != NULL)
		cost += ifs_pieceset_bytes(m->pieces);
	return cost;
}

/* Remove e from the table and LRU (lock held); frees it if nobody holds it. */
static void detach(struct ifs_msgcache *c, struct entry *e)
{
	if (!e->in_table)
		return;
	g_hash_table_remove(c->table, &e->pub.key);
	e->in_table = false;
	if (e->state == ENTRY_READY) {
		g_queue_unlink(&c->lru, &e->lru);
		c->bytes -= e->cost;
	}
	if (e->refs == 0)
		entry_free(e);
}

static void evict(struct ifs_msgcache *c)
{
	GList *l = c->lru.tail;
	while (c->bytes > c->max_bytes && l != NULL) {
		GList *prev = l->prev;
		struct entry *e = l->data;
		if (e->refs == 0)
			detach(c, e);
		l = prev;
	}
}

struct ifs_msgcache *ifs_msgcache_new(size_t max_bytes)
{
	struct ifs_msgcache *c = g_new0(struct ifs_msgcache, 1);
	g_mutex_init(&c->lock);
	g_cond_init(&c->loaded);
	c->table = g_hash_table_new(g_int64_hash, g_int64_equal);
	c->failures = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	g_queue_init(&c->lru);
	c->max_bytes = max_bytes;
	return c;
}

void ifs_msgcache_free(struct ifs_msgcache *c)
{
	GHashTableIter it;
	gpointer v;

	if (c == NULL)
		return;
	g_hash_table_iter_init(&it, c->table);
	while (g_hash_table_iter_next(&it, NULL, &v))
		entry_free(v);
	g_hash_table_destroy(c->table);
	g_hash_table_destroy(c->failures);
	g_cond_clear(&c->loaded);
	g_mutex_clear(&c->lock);
	g_free(c);
}

/* A load of e ended (lock held): publish loaded (ret 0) or the failure, wake waiters, drop
 * the loader's reference.  Returns whether e is still referenced by the loader: never. */
static void finish_load(struct ifs_msgcache *c, struct entry *e, struct ifs_cached_msg *loaded,
                        int ret)
{
	if (ret == 0) {
		e->pub = *loaded;
		e->cost = message_cost(&e->pub);
		e->state = ENTRY_READY;
		if (e->in_table) {
			g_queue_push_head_link(&c->lru, &e->lru);
			c->bytes += e->cost;
			evict(c);
		}
	} else {
		e->state = ENTRY_FAILED;
		e->err = ret;
		if (e->in_table) {
			g_hash_table_remove(c->table, &e->pub.key);
			e->in_table = false;
		}
	}
	g_cond_broadcast(&c->loaded);
}

static struct entry *new_loading(struct ifs_msgcache *c, uint64_t key)
{
	struct entry *e = g_new0(struct entry, 1);
	e->pub.key = key;
	e->state = ENTRY_LOADING;
	e->refs = 1;
	e->in_table = true;
	e->lru.data = e;
	g_hash_table_insert(c->table, &e->pub.key, e);
	return e;
}

int ifs_msgcache_get(struct ifs_msgcache *c, uint64_t key, uint64_t requester,
                     ifs_msg_loader loader, void *loader_ctx,
                     const struct ifs_cached_msg **msg_r, bool *prefetched_r)
{
	struct entry *e;
	struct ifs_cached_msg loaded;
	int ret;

	if (prefetched_r != NULL)
		*prefetched_r = false;
	g_mutex_lock(&c->lock);
	for (;;) {
		e = g_hash_table_lookup(c->table, &key);
		if (e == NULL)
			break;
		e->refs++;
		while (e->state == ENTRY_LOADING)
			g_cond_wait(&c->loaded, &c->lock);
		if (e->state == ENTRY_FAILED) {
			ret = e->err;
			if (--e->refs == 0 && !e->in_table)
				entry_free(e);
			if (ret == -EAGAIN)
				continue; /* a read-ahead gave up: load it ourselves */
			g_mutex_unlock(&c->lock);
			return ret;
		}
		if (e->in_table) {
			g_queue_unlink(&c->lru, &e->lru);
			g_queue_push_head_link(&c->lru, &e->lru);
		}
		if (e->prefetched && prefetched_r != NULL)
			*prefetched_r = true;
		e->prefetched = false;
		g_mutex_unlock(&c->lock);
		*msg_r = &e->pub;
		return 0;
	}
	{
		struct failure *f = g_hash_table_lookup(c->failures, &key);
		if (f != NULL && requester != 0 && f->requester == requester &&
		    g_get_monotonic_time() - f->at < FAILURE_ECHO_US) {
			ret = f->err;
			g_mutex_unlock(&c->lock);
			return ret;
		}
	}
	e = new_loading(c, key);
	g_mutex_unlock(&c->lock);

	/* The network and the parser run without the lock. */
	memset(&loaded, 0, sizeof(loaded));
	loaded.key = key;
	ret = loader(loader_ctx, key, &loaded);

	g_mutex_lock(&c->lock);
	finish_load(c, e, &loaded, ret);
	if (ret < 0) {
		struct failure *f = g_new(struct failure, 1);
		uint64_t *k = g_new(uint64_t, 1);
		f->err = ret;
		f->at = g_get_monotonic_time();
		f->requester = requester;
		*k = key;
		if (g_hash_table_size(c->failures) > 256)
			g_hash_table_remove_all(c->failures); /* only the last moments matter */
		g_hash_table_replace(c->failures, k, f);
		if (--e->refs == 0)
			entry_free(e);
		g_mutex_unlock(&c->lock);
		return ret;
	}
	g_mutex_unlock(&c->lock);
	*msg_r = &e->pub;
	return 0;
}

bool ifs_msgcache_reserve(struct ifs_msgcache *c, uint64_t key)
{
	bool reserved = false;

	g_mutex_lock(&c->lock);
	if (g_hash_table_lookup(c->table, &key) == NULL) {
		new_loading(c, key);
		reserved = true;
	}
	g_mutex_unlock(&c->lock);
	return reserved;
}

void ifs_msgcache_fulfill(struct ifs_msgcache *c, uint64_t key, struct ifs_cached_msg *loaded,
                          int err)
{
	struct entry *e;

	g_mutex_lock(&c->lock);
	e = g_hash_table_lookup(c->table, &key);
	/* Reserved entries stay in the table until fulfilled (drop_prefix skips LOADING). */
	g_assert(e != NULL && e->state == ENTRY_LOADING);
	if (loaded != NULL)
		loaded->key = key;
	if (err == 0)
		e->prefetched = true;
	finish_load(c, e, loaded, loaded != NULL ? err : -EAGAIN);
	if (--e->refs == 0) {
		if (!e->in_table)
			entry_free(e);
		else
			evict(c);
	}
	g_mutex_unlock(&c->lock);
}

void ifs_msgcache_put(struct ifs_msgcache *c, const struct ifs_cached_msg *msg)
{
	struct entry *e = (struct entry *)msg;

	if (msg == NULL)
		return;
	g_mutex_lock(&c->lock);
	if (--e->refs == 0) {
		if (!e->in_table)
			entry_free(e);
		else
			evict(c);
	}
	g_mutex_unlock(&c->lock);
}

void ifs_msgcache_drop_prefix(struct ifs_msgcache *c, uint64_t prefix, unsigned shift)
{
	GHashTableIter it;
	gpointer v;
	GPtrArray *victims = g_ptr_array_new();

	g_mutex_lock(&c->lock);
	g_hash_table_iter_init(&it, c->table);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct entry *e = v;
		if ((e->pub.key >> shift) == prefix && e->state == ENTRY_READY)
			g_ptr_array_add(victims, e);
	}
	for (guint i = 0; i < victims->len; i++)
		detach(c, victims->pdata[i]);
	g_mutex_unlock(&c->lock);
	g_ptr_array_free(victims, TRUE);
}

size_t ifs_msgcache_bytes(struct ifs_msgcache *c)
{
	size_t n;
	g_mutex_lock(&c->lock);
	n = c->bytes;
	g_mutex_unlock(&c->lock);
	return n;
}

int ifs_msgcache_peek(struct ifs_msgcache *c, uint64_t key, bool wait,
                      const struct ifs_cached_msg **msg_r)
{
	struct entry *e;

	g_mutex_lock(&c->lock);
	e = g_hash_table_lookup(c->table, &key);
	if (e != NULL && e->state == ENTRY_LOADING && wait) {
		e->refs++;
		while (e->state == ENTRY_LOADING)
			g_cond_wait(&c->loaded, &c->lock);
		if (e->state != ENTRY_READY) {
			if (--e->refs == 0 && !e->in_table)
				entry_free(e);
			e = NULL;
		} else {
			e->refs--; /* taken again below */
		}
	}
	if (e == NULL || e->state != ENTRY_READY) {
		g_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	e->refs++;
	if (e->in_table) {
		g_queue_unlink(&c->lru, &e->lru);
		g_queue_push_head_link(&c->lru, &e->lru);
	}
	e->prefetched = false;
	g_mutex_unlock(&c->lock);
	*msg_r = &e->pub;
	return 0;
}
