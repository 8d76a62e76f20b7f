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
#include <imap.h>
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
/* Drops *fp's reference (closing at the last) and sets *fp to NULL; *fp NULL is a no-op. */
void ifs_fd_unref(struct ifs_fd **fp);

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

/* Where an attachment's bytes come from when they are not in data (a message known by its
 * pieces, piece.h): its part's body, decoded or as it is (mime.h enum mime_data_source). */
struct ifs_att_source {
	enum mime_data_source kind; /* MIME_DATA_HERE: data holds the bytes */
	char *section;              /* the part's IMAP section */
	char *encoding;             /* its transfer encoding (MIME_DATA_DECODED), nullable */
	bool size_known;            /* size is the exact decoded size (piece.h: PARTS) */
	uint64_t size;
};

struct ifs_attachment {
	char *name;
	struct ifs_blob data;
	struct ifs_att_source src;
};

/* What a caller sees of a cached message — or of one of its pieces (piece.h); valid until
 * ifs_msgcache_put().  A whole message (piece IFS_PIECE_WHOLE) fills raw, views and
 * attachments.  A piece entry holds what that piece makes known: views_known says which views
 * are exactly what the whole message gives (present or absent); attachments (from PARTS on)
 * have names and sources but no data; an attachment piece holds its bytes in raw. */
struct ifs_cached_msg {
	uint64_t key;
	unsigned piece;                          /* enum ifs_piece */
	struct ifs_blob raw;                     /* message.eml; an attachment piece's bytes */
	struct ifs_blob views[MIME_VIEW_COUNT];  /* absent views: !ifs_blob_present */
	GArray *attachments;                     /* struct ifs_attachment, MIME order; NULL in a
	                                          * piece entry that does not know them */
	/* pieces only (NULL / 0 in a whole message's entry): */
	uint32_t views_known;                    /* bit v: views[v] is known */
	bool has_html;                           /* body.html exists (known from PARTS on) */
	GHashTable *pieces;                      /* the piece set this entry was made from */
	struct imap_part *structure;             /* the message's BODYSTRUCTURE */
	GPtrArray *text_sections;                /* PARTS: the sections TEXTS fetches (char*) */
	bool eml_size_known;                     /* OUTLINE on: message.eml's exact size */
	uint64_t eml_size;
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

/* The entry for key if it is held, without loading it: 0 and *msg_r (put it back), or -ENOENT.
 * wait: an entry being loaded is waited for (else it counts as not held). */
int ifs_msgcache_peek(struct ifs_msgcache *cache, uint64_t key, bool wait,
                      const struct ifs_cached_msg **msg_r);

/* Forget every entry whose key has (key >> shift) == prefix (a UIDVALIDITY change). */
void ifs_msgcache_drop_prefix(struct ifs_msgcache *cache, uint64_t prefix, unsigned shift);

/* Bytes currently accounted (for tests and debug logs). */
size_t ifs_msgcache_bytes(struct ifs_msgcache *cache);

#endif /* IMAPFS_FS_MSGCACHE_H */
