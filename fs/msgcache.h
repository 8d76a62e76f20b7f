/* msgcache.h — the in-memory cache of fetched and parsed messages.
 *
 * Every file of a message directory is served from one fetch of the message: the raw bytes
 * (message.eml) and the struct mime_message parsed from them (all decoded views).  Entries are
 * keyed by a 64-bit key the caller builds from (folder epoch, UID); an epoch stands for one
 * (folder, UIDVALIDITY) pair, so a message's content never changes for its key.
 *
 * Bounded by bytes (raw + every view + attachments), least recently used first out; entries in
 * use (referenced) are never evicted, so one message larger than the budget still works.
 * Concurrent first requests for one key share one fetch (single-flight): the first caller runs
 * the loader without any lock held, the others wait on a condition variable.  Failed loads are
 * not cached.
 *
 * Locking: one mutex (cache->lock) guards the table, the LRU queue, states and refcounts.  It is
 * a leaf lock: never call into tree or remote while holding it (the loader runs unlocked).
 */
#ifndef IMAPFS_FS_MSGCACHE_H
#define IMAPFS_FS_MSGCACHE_H

#include <glib.h>
#include <mime.h>
#include <stddef.h>
#include <stdint.h>

struct ifs_msgcache;

/* What a caller sees of a cached message; valid until ifs_msgcache_put(). */
struct ifs_cached_msg {
	uint64_t key;
	GBytes *raw;               /* message.eml */
	struct mime_message *mime; /* decoded views */
};

/* Fetch the raw message for key into *raw_r (new reference).  0 or -errno. */
typedef int (*ifs_msg_loader)(void *ctx, uint64_t key, GBytes **raw_r);

struct ifs_msgcache *ifs_msgcache_new(size_t max_bytes);
void ifs_msgcache_free(struct ifs_msgcache *cache); /* all entries must have been put */

/* The message for key, loading (and parsing) it with loader when absent.  On success *msg_r is
 * a reference the caller must give back with ifs_msgcache_put. */
int ifs_msgcache_get(struct ifs_msgcache *cache, uint64_t key, ifs_msg_loader loader,
                     void *loader_ctx, const struct ifs_cached_msg **msg_r);

/* Like get, but never loads: NULL when key is not cached (or still loading). */
const struct ifs_cached_msg *ifs_msgcache_peek(struct ifs_msgcache *cache, uint64_t key);

void ifs_msgcache_put(struct ifs_msgcache *cache, const struct ifs_cached_msg *msg);

/* Forget every entry whose key has (key >> shift) == prefix (a UIDVALIDITY change). */
void ifs_msgcache_drop_prefix(struct ifs_msgcache *cache, uint64_t prefix, unsigned shift);

/* Bytes currently accounted (for tests and debug logs). */
size_t ifs_msgcache_bytes(struct ifs_msgcache *cache);

#endif /* IMAPFS_FS_MSGCACHE_H */
