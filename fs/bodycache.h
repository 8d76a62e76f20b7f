/* bodycache.h — the persistent on-disk cache of raw messages and pieces of messages.
 *
 * One directory per account (cache_dir, default $XDG_CACHE_HOME/imapfs/<account>, else
 * ~/.cache/imapfs/<account>), mode 0700, owned by the user (a directory owned by someone else
 * is refused).  Layout (format version 2):
 *
 *     <dir>/lock                   flock()ed for the life of the daemon (one daemon per dir)
 *     <dir>/identity               "host port user" the entries came from; another identity
 *                                  wipes the cache (the same account name now means another
 *                                  mailbox)
 *     <dir>/format                 "2\n": the version of this layout (see "Versions")
 *     <dir>/<F>/<UIDVALIDITY>/<UID>.<SIZE>   the whole message, byte for byte (mode 0600)
 *     <dir>/<F>/<UIDVALIDITY>/<UID>-<PIECE>.<SIZE>   a piece of it (PIECE decimal, never 0)
 *     <dir>/<F>/<UIDVALIDITY>/<FIRST>-<LAST>.<RANDOM>.pack
 *                                  a pack: the entries one read-ahead batch fetched (FIRST
 *                                  and LAST: its lowest and highest UID)
 *     <dir>/<F>/<UIDVALIDITY>/.tmp-XXXXXX    a file being written
 *     <dir>/state/...              the folder list and listings (state.h); wiped with the
 *                                  entries when the identity differs
 *
 * Entries.  An entry is keyed by (folder, UIDVALIDITY, UID, piece).  A piece is a uint32_t:
 * IFS_BODYCACHE_WHOLE (0) is the whole message (BODY.PEEK[]); every other value names a piece
 * fs/ defines (an outline, a part's MIME header, a text part, an attachment's decoded bytes)
 * and is opaque here: the cache never relates a piece to its message or to other pieces (a
 * whole message and pieces of it are separate entries, stored and evicted independently).
 * The functions without _piece in their name are those of piece 0.
 *
 * Why packs: creating a file is the expensive part of storing a small message (measured on
 * this project's ext4 VM: ~0.6 ms of kernel time per file, 40x tmpfs, ten times the cost of
 * receiving the message), so the read-ahead stores a batch of entries in one file (they may
 * mix UIDs and pieces).  A pack is the members' bytes back to back from offset 0, then one
 * 24-byte record per member (uid u32, piece u32, offset u64, size u64) and a 20-byte footer
 * (data length u64, member count u32, "IFSPACK2"), integers little-endian; at startup a pack
 * whose trailer does not describe exactly the file is removed.  A pack is the unit of
 * eviction (all its members go together); its members are readable as soon as each one has
 * arrived, from the temporary file (which is then renamed, so open descriptors stay valid).
 *
 * where F is the first 32 hex digits of SHA-256 of the folder's raw (wire) name, so no server
 * folder name ever becomes a path component.  An entry never changes: a message, and each
 * piece of it, is immutable for its key.  It is written to a temporary file in its final
 * directory, fdatasync()ed, then rename()d, so a crash (of the daemon or the machine) never
 * leaves a truncated file under a final name; SIZE in the name is checked against the file
 * size when the cache is opened anyway, and stale temporary files are removed then.
 *
 * Versions.  <dir>/format is written at open (temporary file, fsync, rename).  A cache without
 * it is a version-1 cache (imapfs before pieces): its files are all whole messages, and its
 * packs end in "IFSPACK1" with 0 where the piece is, so they read as version 2 unchanged
 * (IFSPACK1 packs are still read: their members are piece 0); the file is then written.  A
 * format file that says anything but "2\n" (a newer or unknown version, or damage) makes
 * open wipe every entry, with one message in the log, and write "2\n": an entry is never
 * read in a format it was not written in.  (The saved state under state/ is versioned on its
 * own, state.h, and is kept.)  Version 1 code meeting a version 2 cache removes the piece
 * files and IFSPACK2 packs as damaged and keeps the whole messages.
 *
 * Bounded by bytes: least recently used file first out.  "Used" is the file's mtime (files are
 * immutable, so it is free for that purpose): set at creation and on every hit of an entry
 * in it, read back at startup to rebuild the LRU order.  Pieces count exactly as messages do:
 * in the bytes, in the LRU order, in eviction, in ifs_bodycache_usage's entries, and in
 * ifs_bodycache_set_uidvalidity (which drops every piece of another life).
 *
 * Single flight, per (folder, UIDVALIDITY, UID, piece): ifs_bodycache_get_piece() either
 * returns an entry, or hands the caller a writer that claims the key (every other caller of
 * that key waits until the writer commits or aborts).  Claims of different pieces of one UID
 * are independent; ifs_bodycache_claimed() tells a caller that the whole message (or any
 * piece) is being fetched, so that it can wait for that instead of fetching a piece of it.
 *
 * Locking: one mutex (bc->lock), a leaf lock; no I/O on entries is done while holding it except
 * unlink/rename of entries (cheap metadata operations, kept under the lock so the index and the
 * directory never disagree).
 */
#ifndef IMAPFS_FS_BODYCACHE_H
#define IMAPFS_FS_BODYCACHE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

struct ifs_bodycache;
struct ifs_bodycache_writer;

/* Open (creating it 0700 if needed) the cache directory dir, lock it, check it belongs to the
 * user, remove stale temporary files and invalid entries, wipe it when identity (any one-line
 * string naming the mailbox, e.g. "host port user") differs from the stored one, wipe its
 * entries when its format is not one this code reads ("Versions" above), write the format,
 * and evict down to max_bytes.  -EBUSY: another imapfs uses dir.  On failure *errmsg_r is a new
 * one-line message (no "imapfs: " prefix).  *bc_r is new (ifs_bodycache_free). */
int ifs_bodycache_open(const char *dir, uint64_t max_bytes, const char *identity,
                       struct ifs_bodycache **bc_r, char **errmsg_r);

/* NULL is a no-op; no writer or pack may be live. */
void ifs_bodycache_free(struct ifs_bodycache *bc);

/* F of the layout above: the first 32 hex digits of SHA-256 of folder (its wire name). */
#define IFS_FOLDER_HASH_LEN 32
void ifs_bodycache_folder_hash(const char *folder, char out[IFS_FOLDER_HASH_LEN + 1]);

/* The default cache directory of an account (new string). */
char *ifs_bodycache_default_dir(const char *account);

/* The piece that is the whole message (BODY.PEEK[]); other pieces are fs/'s to number. */
#define IFS_BODYCACHE_WHOLE 0u

/* How ifs_bodycache_get() ended. */
enum ifs_bodycache_result {
	IFS_BODYCACHE_HIT = 0, /* *fd_r (O_RDONLY, caller closes), *offset_r and *size_r are set:
	                        * the entry is the size bytes at offset of fd */
	IFS_BODYCACHE_CLAIMED, /* absent; *w_r is a new writer the caller must commit or abort */
	IFS_BODYCACHE_BUSY,    /* absent and being fetched by someone else (only when !wait) */
};

/* Look (folder raw name, uidvalidity, uid, piece) up.  When absent and nobody is fetching it,
 * claim it (a writer).  When someone else is fetching that key: wait for them (wait) or return
 * BUSY.  Returns an enum ifs_bodycache_result, or -errno (no file, not even a scratch file, can
 * be created). */
int ifs_bodycache_get_piece(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                            uint32_t uid, uint32_t piece, bool wait, int *fd_r, uint64_t *offset_r,
                            uint64_t *size_r, struct ifs_bodycache_writer **w_r);
/* ifs_bodycache_get_piece of the whole message (IFS_BODYCACHE_WHOLE). */
int ifs_bodycache_get(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                      uint32_t uid, bool wait, int *fd_r, uint64_t *offset_r, uint64_t *size_r,
                      struct ifs_bodycache_writer **w_r);

/* Is the entry on disk (no claim, no wait, does not count as a use)? */
bool ifs_bodycache_contains_piece(struct ifs_bodycache *bc, const char *folder,
                                  uint32_t uidvalidity, uint32_t uid, uint32_t piece);
bool ifs_bodycache_contains(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                            uint32_t uid);

/* Does someone hold a claim on the key just now: a writer (ifs_bodycache_get_piece's
 * CLAIMED) not yet committed or aborted, or a pack's claim of a member that has not arrived
 * yet (no claim, no wait, a snapshot: it may end the moment after)?  For a caller that wants
 * a piece and would rather wait for the whole message read-ahead is fetching: if
 * ifs_bodycache_claimed(..., IFS_BODYCACHE_WHOLE), ifs_bodycache_get(..., wait = true)
 * returns it once it arrived (or, when the fetch failed, a claim the caller may abort). */
bool ifs_bodycache_claimed(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                           uint32_t uid, uint32_t piece);

/* Append len bytes.  0 or -errno. */
int ifs_bodycache_writer_write(struct ifs_bodycache_writer *w, const void *buf, size_t len);

/* Forget what was written so far (the fetch is being retried on another connection). */
int ifs_bodycache_writer_rewind(struct ifs_bodycache_writer *w);

/* Make the entry durable and visible; wakes waiters; frees w.  On success *fd_r is a new
 * descriptor of the entry (caller closes; read it with pread) and *size_r its size; when the
 * disk could not keep it (see "Write failures"), the descriptor is of a scratch file holding
 * the same bytes.  -ESTALE: the folder's UIDVALIDITY changed meanwhile (entry dropped). */
int ifs_bodycache_writer_commit(struct ifs_bodycache_writer *w, int *fd_r, uint64_t *size_r);

/* Drop the temporary file; wakes waiters (who then fetch themselves); frees w.  NULL no-op. */
void ifs_bodycache_writer_abort(struct ifs_bodycache_writer *w);

/* A pack: several entries of one folder life stored in one file (read-ahead batches), any mix
 * of UIDs and pieces.  One thread uses a pack writer: new, claim the entries, then for each
 * entry that arrives begin, write..., end (a retry may begin an entry again; begin returns 1
 * for an entry that is not claimed or already stored), and close.  Each entry is readable by
 * others from its end on; close makes the pack durable and permanent and releases the claims
 * of entries that never arrived (their waiters then fetch them themselves).  No member may
 * exceed what a reader is willing to read whole into memory: big entries belong in files of
 * their own (a writer).  The functions without _piece are those of IFS_BODYCACHE_WHOLE. */
struct ifs_bodycache_pack;

/* 0 and *p_r, or -errno (cannot create the file). */
int ifs_bodycache_pack_new(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                           struct ifs_bodycache_pack **p_r);

/* IFS_BODYCACHE_CLAIMED (the entry will be stored by this pack), HIT (on disk already) or BUSY
 * (someone else is fetching it, or the folder's UIDVALIDITY changed meanwhile). */
int ifs_bodycache_pack_claim_piece(struct ifs_bodycache_pack *p, uint32_t uid, uint32_t piece);
int ifs_bodycache_pack_claim(struct ifs_bodycache_pack *p, uint32_t uid);

/* begin: 1: skip this entry; 0: go on; -errno: the pack failed (stop).  write appends to the
 * entry begun last.  end: 0, or -ESTALE when the folder's UIDVALIDITY changed meanwhile (the
 * entry is not kept); an end of an entry that is not the one begun last does nothing. */
int ifs_bodycache_pack_begin_piece(struct ifs_bodycache_pack *p, uint32_t uid, uint32_t piece);
int ifs_bodycache_pack_begin(struct ifs_bodycache_pack *p, uint32_t uid);
int ifs_bodycache_pack_write(struct ifs_bodycache_pack *p, const void *buf, size_t len);
int ifs_bodycache_pack_end_piece(struct ifs_bodycache_pack *p, uint32_t uid, uint32_t piece);
int ifs_bodycache_pack_end(struct ifs_bodycache_pack *p, uint32_t uid);

/* Finish (or drop, when nothing arrived or something failed) and free.  NULL is a no-op. */
void ifs_bodycache_pack_close(struct ifs_bodycache_pack *p);

/* The folder now has this UIDVALIDITY: discard its entries (messages and pieces) of any
 * other. */
void ifs_bodycache_set_uidvalidity(struct ifs_bodycache *bc, const char *folder,
                                   uint32_t uidvalidity);

/* Bytes of the files on disk, and the entries in them (whole messages and pieces: each counts
 * one), for tests and stats. */
void ifs_bodycache_usage(struct ifs_bodycache *bc, uint64_t *bytes_r, uint64_t *entries_r);

/* A new unlinked temporary file in the cache's file system (O_TMPFILE, else mkstemp+unlink),
 * for decoded attachments of large messages; while writing to the cache fails, a scratch file
 * (see below) instead.  -errno or a descriptor (caller closes). */
int ifs_bodycache_tmpfile(struct ifs_bodycache *bc);

/* Writing a file from ifs_bodycache_tmpfile failed with errno err: the next one is a scratch
 * file. */
void ifs_bodycache_tmpfile_failed(struct ifs_bodycache *bc, int err);

/* Write failures.  When the disk cannot take an entry (ENOSPC, EDQUOT, EIO, EROFS, the
 * directory removed or unwritable), the reader is served all the same: a writer moves to a
 * scratch file (unlinked in $TMPDIR, else a memfd), copying what it had, and its commit hands
 * that file out without keeping it (a write error never reaches the IMAP fetch).  The
 * condition is logged once, not once per entry; for 5 s new entries then bypass the disk
 * (read-ahead stops: ifs_bodycache_failing), after which, or as soon as an eviction frees
 * space, the disk is tried again; the first success logs that storing works again.  A
 * removed cache directory is made again (empty).  Counters for the stats: */
bool ifs_bodycache_failing(struct ifs_bodycache *bc);
/* *fail_err_r: errno of the condition in force (0: none); *failures_r: failed writes since
 * start; *unstored_r: entries served without being stored. */
void ifs_bodycache_health(struct ifs_bodycache *bc, int *fail_err_r, uint64_t *failures_r,
                          uint64_t *unstored_r);

#endif /* IMAPFS_FS_BODYCACHE_H */
