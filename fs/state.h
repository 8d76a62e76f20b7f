/* state.h — what the daemon knows of the account, kept on disk between mounts: the folder list
 * and each folder's listing.  With it a remount re-lists a folder by asking only what changed
 * (one EXAMINE when nothing did, remote.h: CONDSTORE) instead of fetching every message's
 * attributes again, and a mount without the server serves the last known folders (offline).
 *
 * Files, in the account's cache directory (bodycache.h; the daemon holds its lock):
 *
 *     <dir>/state/folders              the folder list (LIST) last seen
 *     <dir>/state/<F>.listing          folder F's listing, F as in bodycache.h (the first 32
 *                                      hex digits of SHA-256 of the folder's wire name)
 *     <dir>/state/.tmp-XXXXXXXX        a file being written (removed when found at open)
 *
 * Format (version 2): text, "\n"-terminated lines; a string field is the bytes of the string
 * with every byte outside '!'..'~' and every '%' written as %XX (two upper-case hex digits),
 * so a field never holds a space or a line end; numbers are decimal.
 *
 *     folders:                         a listing:
 *       imapfs-folders 1                 imapfs-listing 2
 *       <flags> <delim> <name>           folder <name>
 *       ...                              uidvalidity <n>
 *       end <count>                      uidnext <n>
 *                                        exists <n>
 *                                        highestmodseq <n>      (0: no CONDSTORE)
 *                                        messages <count>
 *                                        <uid> <size> <internaldate> <ident> [<flag> ...]
 *                                        ...                    (ascending UIDs)
 *                                        end
 *
 * where <flags> is enum imap_folder_flags in hex, <delim> the hierarchy delimiter's byte in
 * hex (0: none), <internaldate> seconds since the epoch, <ident> the message's identity
 * (identity.h): "-" when the server gave none, else one string field holding
 * "<id>\n" then "t<thread>" or "-", "\n", then "l<labels, one per line>" or "-".  Version 1
 * listings (no <ident>: imapfs before message ids) are read as listings without ids.  A file whose
 * first line names another format or version, that does not end with its "end" line, or whose
 * counts or order do not match, is ignored (and removed): the folder is then listed from scratch,
 * as on a first mount.  Every file is written under a temporary name, fsync()ed, then renamed over
 * the old one, mode 0600, so a crash (kill -9 included) leaves the old file or the new one,
 * never a mix.  Wiping it: remove the cache directory (README "What is cached where").
 *
 * Once ifs_state_start_writer has been called, saves are written by a thread of the state's
 * own, in the background (before, at once: the daemon makes its state before it forks, and a
 * fork keeps no thread but the caller): the save functions queue and return, so a listing never
 * waits for the disk (fsync).  A newer save of a file replaces one still queued; a load waits for a
 * queued save of the same file; freeing the state writes what is queued first.  A daemon killed
 * meanwhile loses the saves still queued (the files keep an older, consistent listing).
 *
 * Thread-safe: any function may be called from any thread.
 */
#ifndef IMAPFS_FS_STATE_H
#define IMAPFS_FS_STATE_H

#include <glib.h>
#include <stdbool.h>

#include "remote.h"

struct ifs_state;

/* dir: the cache directory (borrowed string, copied).  Removes leftover temporary files.
 * Never fails: a state that cannot be read or written is simply absent. */
struct ifs_state *ifs_state_new(const char *dir);
/* Start the thread that writes saves from now on (call it after any fork).  NULL is a no-op,
 * as is a second call; if no thread can be made, saves go on being written at once. */
void ifs_state_start_writer(struct ifs_state *state);

/* Writes what is queued, then frees.  NULL is a no-op. */
void ifs_state_free(struct ifs_state *state);

/* Wait until every queued save has been written (or has failed). */
void ifs_state_flush(struct ifs_state *state);

/* Does dir hold a saved folder list (a mount without the server can serve something)? */
bool ifs_state_exists(const char *dir);

/* The saved folder list: *folders_r as imap_list (new; names decoded again).  -ENOENT: none
 * (or not valid). */
int ifs_state_load_folders(struct ifs_state *state, GPtrArray **folders_r);

/* Queue folders (borrowed, copied) to be saved when they differ from what was last saved,
 * and the listings of folders no longer in it to be removed.  Returns 0; a failure to write
 * is logged once per condition, and the next call saves again. */
int ifs_state_save_folders(struct ifs_state *state, GPtrArray *folders);

/* The saved listing of raw_name: *st_r, and *msgs_r a new GArray of struct ifs_msg_attr
 * ascending by UID with its clear function set (as ifs_remote_listing's).  -ENOENT: none. */
int ifs_state_load_listing(struct ifs_state *state, const char *raw_name,
                           struct ifs_listing_state *st_r, GArray **msgs_r);

/* Queue raw_name's listing to be saved.  msgs: a reference is taken, so it must not change
 * any more (tree.c's listings are immutable).  Returns 0; failures are logged as above. */
int ifs_state_save_listing(struct ifs_state *state, const char *raw_name,
                           const struct ifs_listing_state *st, GArray *msgs);

#endif /* IMAPFS_FS_STATE_H */
