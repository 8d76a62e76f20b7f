/* msgcache.h — the in-memory cache of fetched and parsed messages.
 *
 * Every file of a message directory is served from one fetch of the message: the raw bytes
 * (message.eml) and the struct mime_message parsed from them (all decoded views).  Entries are
 * keyed by a 64-bit key the caller builds from (folder epoch, UID); an epoch stands for one
 * (folder, UIDVALIDITY) pair, so a message's content never changes for its key.
 *
 * Bounded by the bytes held in memory (raw + every view + attachments; a blob in a file counts
 * a nominal IFS_FILE_BLOB_COST, which also bounds the number of open files), least recently
 * used first out; entries in
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
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ifs_msgcache;

#define IFS_FILE_BLOB_COST (256 * 1024)

/* Bytes of one file of a message directory: in memory (mem), or a range of a file (large
 * messages whose body lives in the disk cache, and attachments decoded to a spill file). */
struct ifs_blob {
	GBytes *mem;           /* NULL when in a file, or when the file is absent */
	struct ifs_fd *file;   /* NULL when in memory */
	uint64_t off, size;
};

/* A refcounted file descriptor shared by the blobs of one message. */
struct ifs_fd {
	gint refs;
	int fd;
};
struct ifs_fd *ifs_fd_new(int fd);              /* takes fd */
struct ifs_fd *ifs_fd_ref(struct ifs_fd *f);
void ifs_fd_unref(struct ifs_fd *f);            /* NULL is a no-op; closes at the last */

static inline bool ifs_blob_present(const struct ifs_blob *b)
{
	return b->mem != NULL || b->file != NULL;
}
static inline uint64_t ifs_blob_size(const struct ifs_blob *b)
{
	return b->mem != NULL ? g_bytes_get_size(b->mem) : b->size;
}
void ifs_blob_clear(struct ifs_blob *b);

/* Copy up to len bytes at off of b into buf (or, for memory blobs, point *data_r into the
 * blob without copying: then buf is unused).  Returns the number of bytes (0 at/after the end)
 * or -errno. */
ssize_t ifs_blob_read(const struct ifs_blob *b, uint64_t off, size_t len, char *buf,
                      const char **data_r);

struct ifs_attachment {
	char *name;
	struct ifs_blob data;
};

/* What a caller sees of a cached message; valid until ifs_msgcache_put(). */
struct ifs_cached_msg {
	uint64_t key;
	struct ifs_blob raw;                     /* message.eml */
	struct ifs_blob views[MIME_VIEW_COUNT];  /* absent views: !ifs_blob_present */
	GArray *attachments;                     /* struct ifs_attachment, MIME order */
};

/* Fill msg (zeroed; key set) with the message for key: raw bytes and decoded views.  0 or
 * -errno; on failure the loader leaves nothing allocated in msg. */
typedef int (*ifs_msg_loader)(void *ctx, uint64_t key, struct ifs_cached_msg *msg);

/* Release what a loader put into msg (not msg itself). */
void ifs_cached_msg_clear(struct ifs_cached_msg *msg);

struct ifs_msgcache *ifs_msgcache_new(size_t max_bytes);
void ifs_msgcache_free(struct ifs_msgcache *cache); /* all entries must have been put */

/* The message for key, loading (and parsing) it with loader when absent.  On success *msg_r is
 * a reference the caller must give back with ifs_msgcache_put.  *prefetched_r (nullable):
 * this is the first use of a message put there by read-ahead.  requester names who asks (the
 * FUSE request's pid): a load of key that failed less than a second ago for the same
 * requester fails again without a second try (see msgcache.c); 0 never matches. */
int ifs_msgcache_get(struct ifs_msgcache *cache, uint64_t key, uint64_t requester,
                     ifs_msg_loader loader, void *loader_ctx,
                     const struct ifs_cached_msg **msg_r, bool *prefetched_r);

/* Read-ahead without a disk cache: claim key (true) when it is neither cached nor loading;
 * readers of key then wait until ifs_msgcache_fulfill(). */
bool ifs_msgcache_reserve(struct ifs_msgcache *cache, uint64_t key);

/* End a reservation: loaded (its content is taken; msg itself is not kept) with err 0, or
 * loaded NULL when the read-ahead could not get it (waiting readers then load it
 * themselves). */
void ifs_msgcache_fulfill(struct ifs_msgcache *cache, uint64_t key,
                          struct ifs_cached_msg *loaded, int err);

void ifs_msgcache_put(struct ifs_msgcache *cache, const struct ifs_cached_msg *msg);

/* Forget every entry whose key has (key >> shift) == prefix (a UIDVALIDITY change). */
void ifs_msgcache_drop_prefix(struct ifs_msgcache *cache, uint64_t prefix, unsigned shift);

/* Bytes currently accounted (for tests and debug logs). */
size_t ifs_msgcache_bytes(struct ifs_msgcache *cache);

#endif /* IMAPFS_FS_MSGCACHE_H */
