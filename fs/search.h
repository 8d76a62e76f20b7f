/* search.h — the server's SEARCH as paths: `FOLDER/.search/CRITERIA…/` and
 * `MOUNT/.search/CRITERIA…/`.
 *
 * Layout.  Every selectable folder directory, and the mount's root, has a directory named
 * `.search` that READDIR never lists (so ls -a, grep -r, find and backups never enter it) but
 * LOOKUP finds.  Below it each path component is one criterion (query.h); components AND
 * together and every level is itself a result:
 *   FOLDER/.search/C1/C2/       message directories of FOLDER's hits, named by UID, with the
 *                               same files, bytes and attributes as FOLDER/UID;
 *   MOUNT/.search/C1/C2/        for each folder with at least one hit, that folder's path as in
 *                               the mount (hierarchy, numeric-folder and .search rules included)
 *                               with its hits beneath; folders hidden by `hide` and those below
 *                               them are not searched (tree.h "Hidden folders").
 * In a mount-wide result a component is a criterion when it contains '=' or is a bare flag word
 * (ifs_query_is_criterion); a top-level folder whose own entry name looks like one, or starts
 * with '=', is shown with '=' put in front (folder "seen" is "=seen"), so the two never clash.
 * Below a folder component only folders and message directories follow.
 *
 * Inode numbers.  Search directories are numbered from IFS_SEARCH_INO_BASE up (folder
 * directories count from 1 and never get there); their message directories carry a result
 * epoch (tree.h), so the same message has other inode numbers here than in its folder, while
 * the message cache, disk cache and read-ahead share one fetch.
 *
 * Freshness.  A result is reused for `refresh` seconds, then asked again when the kernel next
 * asks for the directory's attributes (as folder listings are); it is never served across a
 * UIDVALIDITY change (tree.h).  A result directory's mtime is its newest hit's arrival, its
 * nanoseconds a version of what it shows, so the kernel drops a cached listing that changed.
 *
 * Costs.  A folder result is one UID SEARCH plus the attributes of its hits on the listing
 * connection, one round trip with SEARCHRES (the EXAMINE pipelined with them); a mount-wide
 * result sends every folder's commands in one pipelined chain (remote.h, imap.h
 * imap_search_folders).  No message body is fetched to list a result.
 *
 * Errors.  A component that is no criterion (unknown key, bad date or size, bad expression):
 * ENOENT with one log line naming the mistake.  The server's NO or BAD, or a refused
 * CHARSET UTF-8: EIO with a log line.
 *
 * Locking.  struct ifs_search has one mutex guarding every node; it may be held while calling
 * into tree.c (lock order: search lock before tree lock; the tree never calls back) and is never
 * held across network I/O (a search runs single-flight per result node with the lock dropped).
 */
#ifndef IMAPFS_FS_SEARCH_H
#define IMAPFS_FS_SEARCH_H

#include <glib.h>
#include <imap.h>
#include <stdbool.h>
#include <stdint.h>

#include "notify.h"
#include "tree.h"

#define IFS_SEARCH_INO_BASE ((uint64_t)1 << 43)

/* The --help text of search directories (also in the README and the man page). */
#define IFS_SEARCH_HELP                                                                          \
	"Search (the server's SEARCH; .search is never listed, but can be entered):\n"              \
	"    FOLDER/.search/C1/C2/...  FOLDER's messages matching every criterion, by UID\n"       \
	"    MOUNT/.search/C1/...      every folder with matches, by its path, matches beneath\n"   \
	"  criteria (one per path component, keys case-insensitive):\n"                           \
	"    from= to= cc= bcc= subject= body= text=   substring, as IMAP defines it\n"           \
	"    header=Name:value                        substring of that header field\n"           \
	"    since= before= on=                       YYYY-MM-DD, 1-Jan-2025, or 7d 2w 3m 1y ago\n" \
	"    larger= smaller=                         bytes, or with K, M, G\n"                   \
	"    seen unseen flagged unflagged answered unanswered draft undraft, keyword=NAME\n"     \
	"    imap=EXPRESSION                          RFC 3501 syntax: OR, NOT, ( ), \"quotes\"\n" \
	"    gmail=QUERY                              Gmail's own syntax (X-GM-RAW), Gmail only\n" \
	"  In MOUNT/.search results a top-level folder that looks like a criterion (has '=' or\n"  \
	"  is a flag word) or starts with '=' is shown as =NAME.  A bad criterion is ENOENT\n"     \
	"  (logged); a server refusal is EIO.  Results are reused for `refresh` seconds.\n"

static inline bool ifs_ino_is_search(uint64_t ino)
{
	return !ifs_ino_is_msg(ino) && ino >= IFS_SEARCH_INO_BASE;
}

struct ifs_search;

/* tree and pool (the listing pool) are borrowed and must outlive the search state. */
struct ifs_search *ifs_search_new(struct ifs_tree *tree, struct imap_pool *pool,
                                  unsigned refresh_s);
void ifs_search_free(struct ifs_search *search); /* NULL is a no-op */
void ifs_search_set_notifier(struct ifs_search *search, struct ifs_notifier *notifier);

/* LOOKUP of name in parent: parent is a folder directory (name must be ".search") or a search
 * directory.  Counts one kernel lookup for search directories.  -ENOENT, -EIO. */
int ifs_search_lookup(struct ifs_search *search, uint64_t parent, const char *name,
                      struct ifs_node_info *info_r);
/* Attributes of search directory ino; refresh: first ask the server again when the result is
 * older than the refresh time (a failure keeps what is known). */
int ifs_search_info(struct ifs_search *search, uint64_t ino, bool refresh,
                    struct ifs_node_info *info_r);
/* A readdir snapshot of search directory ino (see tree.h ifs_folder_dir_*). */
int ifs_search_open_dir(struct ifs_search *search, uint64_t ino, struct ifs_folder_dir **dir_r);
void ifs_search_ref(struct ifs_search *search, uint64_t ino);
void ifs_search_forget(struct ifs_search *search, uint64_t ino, uint64_t n);

/* SEARCH commands sent since start (stats). */
uint64_t ifs_search_count(const struct ifs_search *search);

#endif /* IMAPFS_FS_SEARCH_H */
