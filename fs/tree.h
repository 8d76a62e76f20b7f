/* tree.h — the inode table: folder directories, their message listings, and the numbering of
 * every inode of the mount.
 *
 * Folder directories (the root, every IMAP folder, and directories implied by a hierarchy such
 * as "Archive" for "Archive/2024") are nodes allocated from a counter starting at 2 (1 is the
 * root); they carry a kernel lookup count and are freed when removed from the server AND
 * forgotten by the kernel.  They are rebuilt from LIST when the folder list is older than the
 * refresh time.
 *
 * Everything inside a folder is computed, not allocated: a message directory and its files have
 * the inode number  epoch << 44 | UID << 12 | slot,  where an epoch (20 bits, from 1) names one
 * (folder, UIDVALIDITY) pair for the life of the mount and slot (12 bits) picks the file in the
 * message directory (enum ifs_slot).  So these inodes need no table entries and no forget
 * bookkeeping, stay the same for the whole mount, and a UIDVALIDITY change gives every message
 * of the folder new numbers (the kernel can never mix old and new content).
 *
 * A folder's listing (UIDs with RFC822.SIZE, INTERNALDATE, FLAGS) is an immutable snapshot,
 * replaced whole at refresh (single-flight per folder).  A refresh asks the server only for
 * what changed since the previous snapshot (remote.h: CONDSTORE), and keeps the snapshot
 * when nothing did.
 *
 * Folder times: a folder directory's mtime is a function of what it shows, so that it is the
 * same from the first stat on, across refreshes and remounts, and changes only when the folder
 * does: seconds = the newest INTERNALDATE of its messages (0 for the root, an implied or
 * \Noselect parent, an empty folder), nanoseconds = its contents version, made of the
 * listing's UIDVALIDITY, message count and highest UID and the child folders' names (never of
 * anything numbered per mount).  The kernel compares it to drop the readdir it keeps.  So a
 * folder's attributes need its listing: the first lookup or stat of a folder lists it, and a
 * readdir lists every child folder not listed yet, together (one round trip with SEARCHRES);
 * a listing saved by an earlier mount serves as it is (no network) until the folder itself is
 * used (a readdir, a lookup of a UID it does not hold), which re-lists it.
 *
 * Hidden folders (config `hide`): a folder whose LIST attributes include one of the hidden
 * special-use attributes (RFC 6154), or whose path in the mount is one of the hidden paths,
 * is left out of its parent's readdir (and of the parent's contents version, so its changes
 * do not touch the parent's mtime); everything else about it stays: lookup, getattr and
 * readdir of it and of what it holds work as for any folder.  So a walk (ls -R, find,
 * grep -r, a backup) never enters it or its subfolders, while its path still works.  Hidden
 * folders are not primed at a readdir of their parent (a big All Mail is not listed unless
 * used), and a mount-wide search leaves out every folder a walk of the mount would not
 * reach (ifs_tree_folder_paths).  A folder list restored from the saved state carries the
 * same attributes (state.h), so an offline mount hides the same folders.
 *
 * Locking: tree->lock (a GMutex inside tree.c) guards all nodes, listings pointers and the epoch
 * table; it is never held across network I/O.  Lock order: tree lock before the message cache
 * lock (tree calls ifs_msgcache_drop_prefix while holding it; the cache never calls back).
 */
#ifndef IMAPFS_FS_TREE_H
#define IMAPFS_FS_TREE_H

#include <glib.h>
#include <imap.h>
#include <mime.h>
#include <stdbool.h>
#include <stdint.h>

#include "bodycache.h"
#include "identity.h"
#include "msgcache.h"
#include "notify.h"

#define IFS_ROOT_INO 1u
#define IFS_SLOT_BITS 12
#define IFS_UID_SHIFT 12
#define IFS_EPOCH_SHIFT 44
#define IFS_MAX_EPOCH ((1u << 20) - 1)
/* Epochs with this bit set are search results' (below); folder lives use the ones under it. */
#define IFS_RESULT_EPOCH_BIT (1u << 19)

enum ifs_slot {
	IFS_SLOT_MSGDIR = 0,
	IFS_SLOT_EML = 1,
	IFS_SLOT_VIEW0 = 2, /* + enum mime_view */
	IFS_SLOT_FLAGS = IFS_SLOT_VIEW0 + MIME_VIEW_COUNT,
	IFS_SLOT_ATTDIR,
	IFS_SLOT_LABELS,    /* Gmail's labels (identity.h) */
	IFS_SLOT_THREAD,    /* the server's thread id */
	IFS_SLOT_ATT0 = 16, /* + attachment index */
};
#define IFS_MAX_ATTACHMENTS ((1u << IFS_SLOT_BITS) - IFS_SLOT_ATT0)

static inline uint64_t ifs_msg_ino(uint32_t epoch, uint32_t uid, unsigned slot)
{
	return (uint64_t)epoch << IFS_EPOCH_SHIFT | (uint64_t)uid << IFS_UID_SHIFT | slot;
}
static inline bool ifs_ino_is_msg(uint64_t ino) { return (ino >> IFS_EPOCH_SHIFT) != 0; }
static inline bool ifs_epoch_is_result(uint32_t epoch)
{
	return (epoch & IFS_RESULT_EPOCH_BIT) != 0;
}
static inline uint32_t ifs_ino_epoch(uint64_t ino) { return (uint32_t)(ino >> IFS_EPOCH_SHIFT); }
static inline uint32_t ifs_ino_uid(uint64_t ino) { return (uint32_t)(ino >> IFS_UID_SHIFT); }
static inline unsigned ifs_ino_slot(uint64_t ino)
{
	return (unsigned)(ino & ((1u << IFS_SLOT_BITS) - 1));
}
/* The message cache key of one piece of a message (piece.h: 0 is the whole message), laid out
 * as inode numbers are: epoch << 44 | UID << 12 | piece. */
#define IFS_KEY_EPOCH_SHIFT 44
static inline uint64_t ifs_piece_key(uint32_t epoch, uint32_t uid, unsigned piece)
{
	return (uint64_t)epoch << IFS_KEY_EPOCH_SHIFT | (uint64_t)uid << 12 | (piece & 0xfffu);
}
static inline uint64_t ifs_msg_key(uint32_t epoch, uint32_t uid)
{
	return ifs_piece_key(epoch, uid, 0);
}

struct ifs_tree;

/* A folder directory or a message directory, as lookup/readdir report it. */
struct ifs_node_info {
	uint64_t ino;
	bool is_msgdir;
	int64_t mtime;
	long mtime_nsec; /* folders: a version of their contents (see tree.c folder_mtime_nsec) */
	double fresh_for; /* folders: seconds their attributes stay right (until the folder list
	                   * or their listing is older than the refresh time) */
};

/* What the listing knows of one message.  Strings are new (ifs_msg_info_clear). */
struct ifs_msg_info {
	char *raw_name;
	uint32_t uidvalidity;
	uint64_t size;
	int64_t internaldate;
	char *flags; /* one per line */
	struct ifs_msg_ident *ident; /* a reference (identity.h); NULL: the server gave no id */
};
void ifs_msg_info_clear(struct ifs_msg_info *info);

/* pool (used for LIST and listings), cache and bodies (nullable: no disk cache) are borrowed
 * and must outlive the tree. */
struct ifs_tree *ifs_tree_new(struct imap_pool *pool, struct ifs_msgcache *cache,
                              struct ifs_bodycache *bodies, unsigned refresh_s);
void ifs_tree_free(struct ifs_tree *tree); /* NULL is a no-op */

/* Where listings are kept between mounts (nullable; borrowed, outlives the tree).  With it, a
 * folder's first listing starts from the saved one (one EXAMINE when nothing changed), and
 * every new folder list and listing is saved.  A listing that cannot be refreshed because
 * the server cannot be asked (-EIO: offline, see remote.h, or a connection failure) stays as
 * it is, stale (a saved one included), instead of failing; so does the folder list offline. */
struct ifs_state;
void ifs_tree_set_state(struct ifs_tree *tree, struct ifs_state *state);

/* Where every listing's message ids go (nullable; borrowed, outlives the tree): each listing
 * made or restored replaces its folder life's entries there, and a folder life that ends
 * takes them out. */
struct ifs_identity;
void ifs_tree_set_identity(struct ifs_tree *tree, struct ifs_identity *identity);

/* Where kernel invalidations go (NULL until mounted).  Borrowed. */
void ifs_tree_set_notifier(struct ifs_tree *tree, struct ifs_notifier *notifier);

/* Which folders readdir leaves out ("Hidden folders" above): use_flags, a set of
 * IMAP_FOLDER_ALL ... IMAP_FOLDER_TRASH bits, and paths (NULL-terminated, nullable; copied),
 * each the entry names from the root joined by '/'.  Call before ifs_tree_set_folders. */
void ifs_tree_set_hide(struct ifs_tree *tree, unsigned use_flags, char *const *paths);

/* Build the folder tree from a LIST result (borrowed) obtained by the caller. */
void ifs_tree_set_folders(struct ifs_tree *tree, GPtrArray *folders);

/* Put the message ids of the listings an earlier mount saved (state.h) into the identity
 * index (ifs_tree_set_identity), for every folder not listed yet: a message that mount
 * stored under one folder is then read from there whichever folder reads it first now,
 * before that folder is listed.  Reads every saved listing (disk, no network); no-op without
 * state or index. */
void ifs_tree_restore_identities(struct ifs_tree *tree);

/* True when ino is a folder directory that exists. */
bool ifs_tree_is_folder(struct ifs_tree *tree, uint64_t ino);

/* name in folder directory parent: a child folder or a message directory.  Counts one kernel
 * lookup for folder results.  refresh_children: a child folder's listing is refreshed first
 * when it has one and it is out of date (its attributes must describe it).  -ENOENT, -ENOTDIR
 * (parent not a folder), -EIO. */
int ifs_tree_lookup(struct ifs_tree *tree, uint64_t parent, const char *name,
                    bool refresh_children, struct ifs_node_info *info_r);

/* Attributes of a folder directory.  refresh: first make its folder list and listing no older
 * than the refresh time (network; a failure keeps what is known).  When what the directory
 * shows changed, its mtime changes (in the nanoseconds at least). */
int ifs_tree_folder_info(struct ifs_tree *tree, uint64_t ino, bool refresh,
                         struct ifs_node_info *info_r);

/* One more kernel lookup of ino (a folder returned by readdirplus).  No-op for others. */
void ifs_tree_ref(struct ifs_tree *tree, uint64_t ino);

/* The kernel forgot n lookups of ino. */
void ifs_tree_forget(struct ifs_tree *tree, uint64_t ino, uint64_t n);

/* The listing's knowledge of (epoch, uid).  want_flags: also copy the flags.  -ENOENT when the
 * message is no longer listed (expunged, or the folder's UIDVALIDITY changed). */
int ifs_tree_msg_info(struct ifs_tree *tree, uint32_t epoch, uint32_t uid, bool want_flags,
                      struct ifs_msg_info *info_r);

/* Which folder and UIDVALIDITY an epoch stands for (always known once handed out). */
int ifs_tree_epoch_folder(struct ifs_tree *tree, uint32_t epoch, char **raw_name_r,
                          uint32_t *uidvalidity_r);

/* For read-ahead: the UID listed just before uid (*prev_r, 0 when uid is first) and up to
 * max_after UIDs listed after it, appended to after_r (GArray of struct ifs_uid_size) in
 * listing order; with max_after < 0, up to -max_after UIDs listed before it, nearest first
 * (a walk down the listing).  -ENOENT when uid is not listed. */
struct ifs_uid_size {
	uint32_t uid;
	uint64_t size;
};
int ifs_tree_uids_around(struct ifs_tree *tree, uint32_t epoch, uint32_t uid, int max_after,
                         uint32_t *prev_r, GArray *after_r);

/* The UID k places after uid in the epoch's listing (k < 0: before; the last or first one when
 * fewer follow or precede); 0 when uid is not listed.  O(log n): read-ahead's cheap check of
 * how far ahead it is. */
uint32_t ifs_tree_uid_after(struct ifs_tree *tree, uint32_t epoch, uint32_t uid, int k);

/* The server said the epoch's UIDVALIDITY is gone: refresh that folder at next use. */
void ifs_tree_epoch_stale(struct ifs_tree *tree, uint32_t epoch);

/* A consistent snapshot of one folder directory for readdir: child folders sorted by name,
 * then message directories by ascending UID.  Refreshes the folder list and the listing first
 * when they are older than the refresh time.  *unchanged_r: the snapshot shows exactly what
 * the previous one of this directory showed (the kernel may keep its cached readdir). */
struct ifs_folder_dir;
int ifs_tree_open_folder(struct ifs_tree *tree, uint64_t ino, struct ifs_folder_dir **dir_r,
                         bool *unchanged_r);
size_t ifs_folder_dir_count(const struct ifs_folder_dir *dir);
/* Entry i: *name_r is borrowed from dir (or from buf, which must hold 11 bytes). */
void ifs_folder_dir_entry(const struct ifs_folder_dir *dir, size_t i, char *buf,
                          const char **name_r, struct ifs_node_info *info_r);
/* Readdir offsets: the offset that follows entry i (i counts after "." and ".."), and the entry
 * index a readdir at offset off (> 2) starts at.  Stable across snapshots: a message directory's
 * offset names its UID, so a pass that spans a refresh neither repeats nor skips a message
 * that stayed. */
uint64_t ifs_folder_dir_next_off(const struct ifs_folder_dir *dir, size_t i);
size_t ifs_folder_dir_index_at(const struct ifs_folder_dir *dir, uint64_t off);
uint64_t ifs_folder_dir_ino(const struct ifs_folder_dir *dir);
uint64_t ifs_folder_dir_parent(const struct ifs_folder_dir *dir);
void ifs_folder_dir_free(struct ifs_folder_dir *dir); /* NULL is a no-op */

/* ---- search results (search.c) ----
 * A search result directory shows message directories of a folder, yet under inode numbers of
 * its own: the kernel keeps one parent per directory inode, so the same inode cannot be both
 * INBOX/7 and INBOX/.search/from=alice/7.  A result gets a result epoch (IFS_RESULT_EPOCH_BIT
 * set) standing for (folder life, its hits).  Everything keyed by message (the message cache,
 * the disk cache, read-ahead) uses the base epoch (ifs_tree_base_epoch), so a message read
 * through either path is fetched once; attributes (ifs_tree_msg_info), read-ahead's walk order
 * and readdir come from the hits.  A result's hits are served only while the folder's own
 * listing (when it has one) still shows the same UIDVALIDITY. */

/* The folder-life epoch of epoch (itself unless it is a result's; 0 when unknown).  No lock
 * taken for folder epochs. */
uint32_t ifs_tree_base_epoch(struct ifs_tree *tree, uint32_t epoch);

/* Make msgs (struct ifs_msg_attr sorted by UID; taken) the hits of the result epoch *epoch_io
 * of folder raw_name with uidvalidity.  *epoch_io is kept when it stands for the same folder
 * life, else (or when 0) a new result epoch is put there.  parent_ino: the directory showing
 * the hits: kernel entries of hits that went, and `flags` files whose flags changed, are
 * invalidated.  -EIO when no epoch is left (half a million results in one mount). */
int ifs_tree_set_result(struct ifs_tree *tree, uint32_t *epoch_io, const char *raw_name,
                        uint32_t uidvalidity, GArray *msgs, uint64_t parent_ino);
/* True when the hits must be asked for again: the server said the folder life ended
 * (ifs_tree_epoch_stale), the folder's listing shows another UIDVALIDITY, or none are held. */
bool ifs_tree_result_stale(struct ifs_tree *tree, uint32_t epoch);
/* Free the hits of a result epoch whose directory is gone; its inodes then give ENOENT. */
void ifs_tree_drop_result(struct ifs_tree *tree, uint32_t epoch);
/* The message directory uid among the hits of result epoch: -ENOENT when not a hit. */
int ifs_tree_result_lookup(struct ifs_tree *tree, uint32_t epoch, uint32_t uid,
                           struct ifs_node_info *info_r);

/* A child directory of a result directory (search.c's own nodes), for ifs_tree_open_result. */
struct ifs_child_entry {
	const char *name;
	struct ifs_node_info info;
};
/* A readdir snapshot of a result directory: children (borrowed, copied) sorted by name, then
 * the hits of result epoch (0: none) by UID. */
int ifs_tree_open_result(struct ifs_tree *tree, uint64_t ino, uint64_t parent_ino, uint32_t epoch,
                         const struct ifs_child_entry *children, size_t nchildren,
                         struct ifs_folder_dir **dir_r);

/* The wire name of folder directory ino (*raw_r new; NULL for the root, an implied parent or a
 * \Noselect folder).  -ENOENT when ino is no folder directory (any more). */
int ifs_tree_folder_raw(struct ifs_tree *tree, uint64_t ino, char **raw_r);

/* ---- folders for a mount-wide search ---- */
struct ifs_folder_path {
	char *raw_name; /* wire name */
	char **path;    /* entry names from the root, as the folder shows in the mount */
};
void ifs_folder_path_free(struct ifs_folder_path *fp);
/* Every selectable folder shown in the mount, hidden folders and folders below them left out
 * (the folder list refreshed first when older than the refresh time), sorted by raw name.
 * *folders_r: new GPtrArray of struct ifs_folder_path* (free func set).  -EIO when the folder list
 * cannot be had. */
int ifs_tree_folder_paths(struct ifs_tree *tree, GPtrArray **folders_r);

/* ---- watching the server (watch.c) ---- */

/* Called (lock held: the hook must only take locks of its own, and never call the tree) each
 * time a folder's listing is needed: raw_name (borrowed) is in use. */
typedef void (*ifs_tree_use_hook)(void *ctx, const char *raw_name);
void ifs_tree_set_use_hook(struct ifs_tree *tree, ifs_tree_use_hook hook, void *ctx);

/* The server said raw_name changed: re-list it now (incrementally, as a refresh does) if it
 * has a listing, and tell the kernel what changed (gone and new entries, `flags` files, the
 * folder directory's attributes and cached readdir).  A folder never listed is left alone.
 * Network; no lock of the caller may be held.  0 or -errno as ifs_remote_listing. */
int ifs_tree_refresh_folder(struct ifs_tree *tree, const char *raw_name);

#endif /* IMAPFS_FS_TREE_H */
