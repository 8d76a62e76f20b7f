/* quota.h — what `df` shows of a mount: the mailbox's quota (RFC 9208 QUOTA), fetched at most
 * once per `refresh` and kept.
 *
 * statfs reports the STORAGE resource of INBOX's quota roots in 1 KiB blocks, as the RFC counts
 * it: f_blocks = limit, f_bfree = f_bavail = limit - usage (0 when over), and df -i the MESSAGE
 * resource: f_files = limit, f_ffree = f_favail = limit - usage.  With several roots, each
 * resource comes from the root that leaves the least of it (the one a new message would hit
 * first); a resource no root limits, no root at all, a server without QUOTA or one that
 * answers NO give zeros.  The figures are asked for at the first statfs and again at a statfs
 * once they are older than `refresh` seconds (one GETQUOTAROOT, one round trip, on the listing
 * connection), never on the path of a read; while they are being asked for, and offline or
 * when asking fails, the last known figures are shown.  A server without QUOTA is never
 * asked again.  Thread-safe. */
#ifndef IMAPFS_FS_QUOTA_H
#define IMAPFS_FS_QUOTA_H

#include <imap.h>
#include <sys/statvfs.h>

struct ifs_quota;

/* pool: borrowed, outlives the quota. */
struct ifs_quota *ifs_quota_new(struct imap_pool *pool, unsigned refresh_s);
void ifs_quota_free(struct ifs_quota *q); /* NULL is a no-op */

/* Fill the block and inode counts of sv (f_bsize and f_frsize: 1024) as above; the other
 * fields are left alone.  May ask the server (see above). */
void ifs_quota_statfs(struct ifs_quota *q, struct statvfs *sv);

#endif /* IMAPFS_FS_QUOTA_H */
