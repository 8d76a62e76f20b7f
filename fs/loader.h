/* loader.h — the one path from (message, piece) to what a message directory shows: the
 * memory cache (msgcache.h), then the disk cache (bodycache.h), then the server (remote.h),
 * then decoding (message.c for a whole message, mime/ for pieces through structure.h).
 * Pieces are those of piece.h.
 *
 * The whole message wins: a piece asked for while the whole message is held in memory or on
 * disk, or is being fetched (by read-ahead or another reader), is answered by the whole
 * message's entry instead (it knows everything), and so is every piece of a message whose
 * pieces cannot stand for it (a broken BODYSTRUCTURE, a section the server cannot give, a
 * message mime/ would read otherwise): that is remembered, in memory and in the disk cache.
 * With `fetch = whole` every piece is answered by the whole message.
 *
 * Every load that misses the memory cache tells the read-ahead (readahead.h), with its piece,
 * so a walk that reads one kind of file gets that piece read ahead.
 */
#ifndef IMAPFS_FS_LOADER_H
#define IMAPFS_FS_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "ifs.h"
#include "piece.h"

/* Who the operation this thread is running serves (ifs_msgcache_get's requester: the FUSE
 * request's pid); ops.c sets it at the start of every operation, 0 elsewhere. */
extern __thread uint64_t ifs_cur_requester;

/* One message as the read path knows it, resolved once per request. */
struct ifs_msg_ref {
	uint32_t epoch;       /* the inode's: a search result's or its folder's (tree.h) */
	uint32_t uid;         /* the inode's */
	/* The folder entry the message is read through: what every cache is keyed by and what
	 * is fetched.  The folder life of epoch and uid, unless the message is listed in
	 * another folder too under one id (identity.h) and that entry holds it already. */
	uint32_t key_epoch;
	uint32_t key_uid;
	char *raw_name;       /* key_epoch's folder's wire name */
	uint32_t uidvalidity; /* key_epoch's */
	uint64_t listed_size; /* RFC822.SIZE from the listing (a claim, checked by OUTLINE) */
};

/* Resolve (epoch, uid): -ENOENT when the message is not listed (any more). */
int ifs_msg_ref_init(struct ifs *fs, uint32_t epoch, uint32_t uid, struct ifs_msg_ref *ref_r);
void ifs_msg_ref_clear(struct ifs_msg_ref *ref);

/* Is (epoch, uid)'s message held (memory, disk, or being fetched) under another folder entry
 * of its id (identity.h), which ifs_msg_ref_init would read it through?  For the read-ahead:
 * such a message is not fetched again, and is parsed ahead under that entry's key.  When it
 * is and key_epoch_r is not NULL: that entry's folder life, UID, folder wire name (new) and
 * UIDVALIDITY. */
bool ifs_loader_held_elsewhere(struct ifs *fs, uint32_t epoch, uint32_t uid, uint32_t *key_epoch_r,
                               uint32_t *key_uid_r, char **raw_name_r, uint32_t *uidvalidity_r);

/* The entry for piece of ref's message: 0 and *m_r (give it back with ifs_msgcache_put), or
 * -errno as remote.h (-ENOENT: expunged, or the folder's life ended).  (*m_r)->piece is
 * IFS_PIECE_WHOLE when the whole message answered (see above).  *prefetched_r (nullable): the
 * entry was put there by read-ahead and this is its first use. */
int ifs_loader_get(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                   const struct ifs_cached_msg **m_r, bool *prefetched_r);

/* As ifs_loader_get, but the read-ahead is told of asked instead of piece: the piece a walk
 * reads, when piece is asked on its behalf (msgdir.c lists a message directory for a reader
 * of its files). */
int ifs_loader_get_for(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                       unsigned asked, const struct ifs_cached_msg **m_r, bool *prefetched_r);

/* piece's entry (or the whole message's, as ifs_loader_get) if it is held in memory or on disk
 * or is being read ahead (then waited for), without a fetch of its own; -ENOENT when not. */
int ifs_loader_piece_if_held(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                             const struct ifs_cached_msg **m_r);

/* The exact size of attachment a (of parts, ref's PARTS entry) from the server's BINARY.SIZE,
 * checked with a 2-byte BINARY fetch (see loader.c): 0 and *size_r, or -ENOENT when it
 * cannot be had that way (no BINARY, a part decoded here, a claim that failed: then the size
 * costs the attachment's bytes). */
struct ifs_attachment;
int ifs_loader_checked_size(struct ifs *fs, const struct ifs_msg_ref *ref,
                            const struct ifs_cached_msg *parts, const struct ifs_attachment *a,
                            uint64_t *size_r);

/* The whole message's entry if it is held (memory, disk, or being fetched: then waited for),
 * without fetching anything; -ENOENT when it is not. */
int ifs_loader_whole_if_held(struct ifs *fs, const struct ifs_msg_ref *ref,
                             const struct ifs_cached_msg **m_r);

/* Is piece of message uid of epoch (listed_size: its RFC822.SIZE) answered by the whole
 * message: fetch = whole, a message found to be read whole, or a small one beyond its outline
 * (piece.h)?  No I/O: the read-ahead asks it of every message of a window. */
bool ifs_loader_reads_whole(struct ifs *fs, uint32_t epoch, uint32_t uid, uint64_t listed_size,
                            unsigned piece);

/* Messages found this mount to be read whole (their pieces cannot stand for them): stats. */
uint64_t ifs_loader_whole_only_count(void);

/* Pieces (OUTLINE, PARTS, TEXTS) read ahead this mount by ifs_loader_prefetch: stats. */
uint64_t ifs_loader_prefetched_count(void);

/* Read-ahead of pieces (readahead.h calls it on its worker): make piece (OUTLINE, PARTS or
 * TEXTS) of uids[0..n) of epoch's folder held — in the disk cache, else the memory cache —
 * fetching what is not, the pieces each one needs first, in one round trip per piece level.
 * Messages held whole, read whole, or being fetched by someone else are skipped. */
void ifs_loader_prefetch(struct ifs *fs, uint32_t epoch, const uint32_t *uids, unsigned n,
                         unsigned piece);

#endif /* IMAPFS_FS_LOADER_H */
