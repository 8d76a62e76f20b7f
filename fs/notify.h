/* notify.h — tells the kernel to forget cached entries and attributes, from a thread of its own.
 *
 * libfuse forbids notifying the kernel from inside a related filesystem operation (the kernel
 * may hold the directory lock that the invalidation needs: deadlock), and our invalidations are
 * discovered inside operations (a refresh during readdir finds expunged mail; a fetch finds that
 * RFC822.SIZE was wrong).  So they are queued here and sent by one worker thread.
 * Thread-safe (GAsyncQueue); holds no lock of anyone else's.
 */
#ifndef IMAPFS_FS_NOTIFY_H
#define IMAPFS_FS_NOTIFY_H

#include <stdint.h>

struct fuse_session;
struct ifs_notifier;

/* Inode numbers are fuse_ino_t's, spelt uint64_t so that this header needs no libfuse. */

/* Starts the worker.  se is borrowed and must outlive ifs_notifier_free. */
struct ifs_notifier *ifs_notifier_new(struct fuse_session *se);

/* Stops the worker (pending items are dropped) and frees.  NULL is a no-op. */
void ifs_notifier_free(struct ifs_notifier *n);

/* Queue "forget the name `name` in directory parent".  n may be NULL (no-op: not mounted). */
void ifs_notify_inval_entry(struct ifs_notifier *n, uint64_t parent, const char *name);

/* Queue "the entry name (inode child) in parent was deleted": the kernel drops it as if it
 * had been unlinked locally (fuse_lowlevel_notify_delete); when it holds no such child, the
 * name is merely forgotten as by ifs_notify_inval_entry. */
void ifs_notify_delete(struct ifs_notifier *n, uint64_t parent, uint64_t child, const char *name);

/* Queue "forget the attributes and cached data of ino". */
void ifs_notify_inval_inode(struct ifs_notifier *n, uint64_t ino);

#endif /* IMAPFS_FS_NOTIFY_H */
