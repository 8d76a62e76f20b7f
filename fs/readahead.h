/* readahead.h — fetch the next messages of a folder before a sequential reader asks for them.
 *
 * grep -r, find -exec cat and indexers walk a folder's message directories in order.  Each
 * time a message has to be loaded for a reader (a miss of the memory cache), the loader calls
 * ifs_readahead_note().  When two or more loads in a row are of UIDs that follow each other in
 * the folder's listing, the reader is walking the folder — and so is one whose loads keep
 * landing within a few places (16) of the furthest one so far, four in a row: parallel,
 * unordered walkers (ripgrep's thread pool, fd, xargs -P) take the messages roughly in listing
 * order but out of it by a few places.  The next `window` messages after the walk's front that
 * are not yet in the disk cache are queued, and one worker thread streams them, in UID order, with
 * ranged `UID FETCH a,b:c BODY.PEEK[]` commands on a connection of its own, straight into the
 * disk cache (a load of the folder's first message queues a short FIRST_MESSAGE_AHEAD at once:
 * walks start there).  When the reader has consumed half of what was queued ahead of it, more is
 * queued; so the reader almost never waits a round trip, and at most `window` messages
 * (and `window_bytes`) are ever ahead of it (on disk, never in memory).
 *
 * Single flight: the worker claims each message in the disk cache before fetching it, so a
 * reader that wants a message being read ahead waits for it instead of fetching it again, and
 * the worker skips messages a reader is already fetching.
 *
 * Each batch's messages go into one pack of the disk cache (bodycache.h: one file per batch,
 * not per message), except big ones (over IFS_BIG_MESSAGE), which get files of their own.
 *
 * Parse-ahead: with the disk cache, a second thread parses the next PARSE_AHEAD_MESSAGES
 * (and at most parse_bytes) of a walk from the disk cache into the memory cache, waiting for
 * the read-ahead where it has to, so that the decoding (as costly as the transfer) runs on
 * another core instead of on the reader's path.  It never fetches anything itself.
 *
 * Without the disk cache, messages are read ahead into the memory cache instead (parsed by
 * the worker; reserved there first, so readers wait for them the same way): bounded by
 * memory_cache, and the window should then stay well below what it holds.  A reader's first
 * use of such a message counts as a load for the detection (ops.c).
 * Thread-safe.  Lock order: the read-ahead lock is a leaf; it is never held while calling the
 * tree, the disk cache or the network.
 */
#ifndef IMAPFS_FS_READAHEAD_H
#define IMAPFS_FS_READAHEAD_H

#include <imap.h>
#include <stdint.h>

#include "bodycache.h"
#include "piece.h"
#include "msgcache.h"
#include "tree.h"

struct ifs_readahead;

/* pool, bodies (nullable: read ahead into cache), cache and tree are borrowed and must
 * outlive the read-ahead.  window > 0: messages ahead of the reader at most; window_bytes > 0:
 * their RFC822.SIZEs add up to at most this (the first message is always allowed), so a
 * window of big messages cannot evict what the reader has not read yet.  parse_bytes: the
 * parse-ahead's bound (0: no parse-ahead; it needs bodies). */
struct ifs_readahead *ifs_readahead_new(struct imap_pool *pool, struct ifs_bodycache *bodies,
                                        struct ifs_msgcache *cache, struct ifs_tree *tree,
                                        unsigned window, uint64_t window_bytes,
                                        uint64_t parse_bytes);

/* Stops the threads (the fetch in progress ends first) and frees.  NULL is a no-op. */
void ifs_readahead_free(struct ifs_readahead *ra);

/* A reader needed piece (piece.h) of message uid of epoch (it was not in the memory cache, or
 * this is the first use of what read-ahead put there).  Walks are detected per (folder,
 * piece): a walk reading every subject reads ahead outlines, `grep -r --include=body` texts,
 * one reading every message.eml whole messages.  Attachments are not read ahead. */
void ifs_readahead_note(struct ifs_readahead *ra, uint32_t epoch, uint32_t uid, unsigned piece);

/* Read-ahead of pieces (not WHOLE) is done by fn (loader.h: ifs_loader_prefetch), called on
 * the worker thread with the UIDs of a window in ascending order; set before the first note.
 * Without it, pieces are not read ahead.  The messages of a window that whole says are read
 * whole for that piece (loader.h: ifs_loader_reads_whole: small ones, those whose pieces
 * cannot stand for them) are read ahead whole instead, before fn runs for the rest. */
typedef void (*ifs_readahead_piece_fn)(void *ctx, uint32_t epoch, const uint32_t *uids,
                                       unsigned n, unsigned piece);
typedef bool (*ifs_readahead_whole_fn)(void *ctx, uint32_t epoch, uint32_t uid,
                                       uint64_t listed_size, unsigned piece);
void ifs_readahead_set_piece_fetcher(struct ifs_readahead *ra, ifs_readahead_piece_fn fn,
                                     ifs_readahead_whole_fn whole, void *ctx);

/* The message (epoch, uid) is held under another folder entry of its id (loader.h
 * ifs_loader_held_elsewhere: Gmail labels, OBJECTID): not read ahead again, and parsed ahead
 * under that entry's key, which its reader reads it through.  Set before the first note;
 * without it every message of a window is read ahead.  h_r (nullable): that entry (raw_name
 * new). */
struct ifs_readahead_holder {
	uint32_t key_epoch; /* the entry's folder life */
	uint32_t uid;
	char *raw_name;
	uint32_t uidvalidity;
};
typedef bool (*ifs_readahead_held_fn)(void *ctx, uint32_t epoch, uint32_t uid,
                                      struct ifs_readahead_holder *h_r);
void ifs_readahead_set_held_elsewhere(struct ifs_readahead *ra, ifs_readahead_held_fn fn,
                                      void *ctx);

/* Is uid of epoch queued by a walk of whole messages (grep -r, ripgrep: every file of each
 * message, message.eml too)?  Then a piece of it is best answered by its whole message, which
 * is on its way (loader.h). */
bool ifs_readahead_whole_walk_covers(struct ifs_readahead *ra, uint32_t epoch, uint32_t uid);

/* Messages read ahead into the disk cache so far (stats). */
uint64_t ifs_readahead_stored(struct ifs_readahead *ra);

/* Messages the parse-ahead put into the memory cache so far (stats). */
uint64_t ifs_readahead_parsed(struct ifs_readahead *ra);

#endif /* IMAPFS_FS_READAHEAD_H */
