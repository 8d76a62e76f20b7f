/* ifs.h — the daemon's shared state, handed to every FUSE operation as the session userdata,
 * and the operations table (ops.c).  Every pointer here is set up by main.c before the session
 * loop starts and torn down after it ends; operations only read these fields. */
#ifndef IMAPFS_FS_IFS_H
#define IMAPFS_FS_IFS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <imap.h>
#include <sys/types.h>

#include "config.h"
#include "msgcache.h"
#include "notify.h"
#include "tree.h"

struct ifs {
	const struct ifs_config *cfg;
	struct imap_pool *pool;
	struct ifs_tree *tree;
	struct ifs_msgcache *cache;
	struct ifs_notifier *notifier; /* NULL until the mount exists */
	uid_t uid;
	gid_t gid;
	double folder_timeout;         /* = refresh: folder entries and attributes */
};

/* The low-level operations table (static const in ops.c). */
const struct fuse_lowlevel_ops *ifs_operations(void);

#endif /* IMAPFS_FS_IFS_H */
