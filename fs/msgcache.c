/* msgcache.c — bounded, single-flight cache of parsed messages (contract in msgcache.h). */
#include "msgcache.h"

#include <errno.h>
#include <stdbool.h>

enum entry_state { ENTRY_LOADING, ENTRY_READY, ENTRY_FAILED };

struct entry {
	struct ifs_cached_msg pub; /* first: callers get &pub and we cast back */
	enum entry_state state;
	int err;
	unsigned refs;
	bool in_table;             /* false once evicted/dropped/failed: freed at last put */
	size_t cost;
	GList lru;                 /* link in cache->lru while READY and in_table */
};

struct ifs_msgcache {
	GMutex lock;
	GCond loaded;              /* broadcast when any load finishes */
	GHashTable *table;         /* uint64 key -> struct entry* */
	GQueue lru;                /* head: most recently used */
	size_t bytes, max_bytes;
};

static void entry_free(struct entry *e)
{
	g_clear_pointer(&e->pub.raw, g_bytes_unref);
	mime_message_free(e->pub.mime);
	g_free(e);
}

static size_t message_cost(GBytes *raw, const struct mime_message *m)
{
	size_t cost = g_bytes_get_size(raw) + 1024;
	for (int v = 0; v < MIME_VIEW_COUNT; v++) {
		GBytes *b = mime_message_view(m, v);
		if (b != NULL)
			cost += g_bytes_get_size(b);
	}
	for (size_t i = 0; i < mime_message_n_attachments(m); i++)
		cost += g_bytes_get_size(mime_message_attachment_data(m, i));
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
	g_cond_clear(&c->loaded);
	g_mutex_clear(&c->lock);
	g_free(c);
}

int ifs_msgcache_get(struct ifs_msgcache *c, uint64_t key, ifs_msg_loader loader,
                     void *loader_ctx, const struct ifs_cached_msg **msg_r)
{
	struct entry *e;
	GBytes *raw = NULL;
	struct mime_message *mime = NULL;
	int ret;

	g_mutex_lock(&c->lock);
	e = g_hash_table_lookup(c->table, &key);
	if (e != NULL) {
		e->refs++;
		while (e->state == ENTRY_LOADING)
			g_cond_wait(&c->loaded, &c->lock);
		if (e->state == ENTRY_FAILED) {
			ret = e->err;
			if (--e->refs == 0 && !e->in_table)
				entry_free(e);
			g_mutex_unlock(&c->lock);
			return ret;
		}
		if (e->in_table) {
			g_queue_unlink(&c->lru, &e->lru);
			g_queue_push_head_link(&c->lru, &e->lru);
		}
		g_mutex_unlock(&c->lock);
		*msg_r = &e->pub;
		return 0;
	}
	e = g_new0(struct entry, 1);
	e->pub.key = key;
	e->state = ENTRY_LOADING;
	e->refs = 1;
	e->in_table = true;
	e->lru.data = e;
	g_hash_table_insert(c->table, &e->pub.key, e);
	g_mutex_unlock(&c->lock);

	/* The network and the parser run without the lock. */
	ret = loader(loader_ctx, key, &raw);
	if (ret == 0)
		ret = mime_message_parse(g_bytes_get_data(raw, NULL), g_bytes_get_size(raw), &mime);

	g_mutex_lock(&c->lock);
	if (ret == 0) {
		e->pub.raw = raw;
		e->pub.mime = mime;
		e->cost = message_cost(raw, mime);
		e->state = ENTRY_READY;
		if (e->in_table) {
			g_queue_push_head_link(&c->lru, &e->lru);
			c->bytes += e->cost;
			evict(c);
		}
	} else {
		g_clear_pointer(&raw, g_bytes_unref);
		e->state = ENTRY_FAILED;
		e->err = ret;
		if (e->in_table) {
			g_hash_table_remove(c->table, &e->pub.key);
			e->in_table = false;
		}
	}
	g_cond_broadcast(&c->loaded);
	if (ret < 0) {
		if (--e->refs == 0)
			entry_free(e);
		g_mutex_unlock(&c->lock);
		return ret;
	}
	g_mutex_unlock(&c->lock);
	*msg_r = &e->pub;
	return 0;
}

const struct ifs_cached_msg *ifs_msgcache_peek(struct ifs_msgcache *c, uint64_t key)
{
	struct entry *e;

	g_mutex_lock(&c->lock);
	e = g_hash_table_lookup(c->table, &key);
	if (e != NULL && e->state == ENTRY_READY)
		e->refs++;
	else
		e = NULL;
	g_mutex_unlock(&c->lock);
	return e != NULL ? &e->pub : NULL;
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
