/* watch.h — watching the server for changes to the folders in use, so new, expunged and
 * re-flagged mail shows within a second or so instead of after `refresh` seconds.
 *
 * One thread with one connection of its own (from a pool of one, counted in `connections`).
 * The folders in use are the IFS_WATCH_MAX most recently listed ones (a folder counts as used
 * when its listing is needed: readdir, or a lookup or stat of it).  The connection EXAMINEs
 * the most recently used one.  With NOTIFY (RFC 5465) it asks for MessageNew, MessageExpunge
 * and FlagChange events of that one as SELECTED (reported from the mailbox's own sync) and of
 * all as MAILBOXES (STATUS lines; Dovecot reports the examined one as selected only), and
 * IDLEs.  Without NOTIFY but with IDLE (RFC 2177) it IDLEs on the examined folder; other
 * folders are seen at `refresh` as before.  With neither, the thread logs that once and only
 * waits to be stopped.  An event re-lists the folder through ifs_tree_refresh_folder (the
 * incremental path a refresh takes), which tells the kernel; so does every change of what is
 * watched, once, for the folders a change may have slipped past (watch.c says which).  IDLE
 * is re-issued every renew_s seconds (idle_renew, default 25 minutes: servers may drop a
 * client idle for 30); NOTIFY is set again as often but at least every 5 minutes, and after
 * events of folders not examined when the last SET is a minute old (Dovecot 2.3.19 stops
 * reporting those after rotating a log).  A lost
 * connection is replaced with back-off (1 s doubling to 60 s), after which every watched
 * folder is re-listed once (events may have been missed).  The thread sleeps in poll() on the
 * socket and an eventfd: nothing wakes it but the server, the daemon and the renewals.
 *
 * Locking: the watch lock guards the set of folders in use.  Lock order: tree lock before the
 * watch lock (the tree's use hook takes it); the thread never holds it while calling the tree
 * or the network.
 */
#ifndef IMAPFS_FS_WATCH_H
#define IMAPFS_FS_WATCH_H

#include <imap.h>

#include "tree.h"

#define IFS_WATCH_MAX 16u

struct ifs_watch;

/* Start watching.  pool (one connection: the watcher keeps it) and tree are borrowed and must
 * outlive ifs_watch_free.  renew_s (> 0): IDLE is ended and begun again this often, and NOTIFY
 * set again every renew_s seconds but at least every 5 minutes (config idle_renew).  Installs
 * the tree's use hook. */
struct ifs_watch *ifs_watch_new(struct imap_pool *pool, struct ifs_tree *tree, unsigned renew_s);

/* Stop the thread (ends IDLE, gives the connection back), remove the hook, free.  NULL is a
 * no-op. */
void ifs_watch_free(struct ifs_watch *w);

#endif /* IMAPFS_FS_WATCH_H */
