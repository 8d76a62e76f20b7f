/* ifs.h — the daemon's shared state, handed to every FUSE operation as the session userdata,
 * and the operations table (ops.c).  Every pointer here is set up by main.c before the session
 * loop starts and torn down after it ends; operations only read these fields. */
#ifndef IMAPFS_FS_IFS_H
#define IMAPFS_FS_IFS_H

#include <imap.h>
#include <sys/types.h>

#include "bodycache.h"
#include "config.h"
#include "lowlevel.h"
#include "msgcache.h"
#include "notify.h"
#include "quota.h"
#include "readahead.h"
#include "remote.h"
#include "search.h"
#include "state.h"
#include "tree.h"
#include "watch.h"

/* FUSE requests counted per kind (user.imapfs.stats, and the exit log). */
enum ifs_req {
	IFS_REQ_LOOKUP, IFS_REQ_GETATTR, IFS_REQ_OPENDIR, IFS_REQ_READDIR, IFS_REQ_RELEASEDIR,
	IFS_REQ_OPEN, IFS_REQ_READ, IFS_REQ_RELEASE, IFS_REQ_FORGET, IFS_REQ_OTHER, IFS_REQ_COUNT
};

/* Connections: `pool` serves readers (message bodies, and the pieces read ahead for them:
 * loader.c); listings and LIST use `list_pool`; read-ahead of whole messages its own
 * `ra_pool`, so that none of the three waits behind another (a 50 MB
 * message being fetched never delays the listing of another folder).  With few connections
 * configured, pools are shared (see main.c); all three may be the same pointer. */
struct ifs {
	const struct ifs_config *cfg;
	struct imap_pool *pool;
	struct imap_pool *list_pool;
	struct imap_pool *ra_pool;
	struct imap_pool *watch_pool;  /* NULL: not watching (watch.h) */
	struct ifs_watch *watch;
	struct ifs_tree *tree;
	struct ifs_identity *identity; /* the listings' message ids (identity.h); outlives tree */
	struct ifs_search *search;     /* `.search` directories */
	struct ifs_msgcache *cache;
	struct ifs_bodycache *bodies;  /* NULL: disk cache off */
	struct ifs_readahead *readahead; /* NULL: off */
	struct ifs_notifier *notifier; /* NULL until the mount exists */
	struct ifs_state *state;       /* NULL: no disk cache, nothing saved between mounts */
	struct ifs_reconnector *reconnector; /* offline: reaches the server again (remote.h) */
	struct ifs_quota *quota;       /* what statfs shows (quota.h) */
	uid_t uid;                     /* owner of everything shown, and its modes (owner.h) */
	gid_t gid;
	mode_t file_mode, dir_mode;    /* permission bits */
	double folder_timeout;         /* = refresh: folder entries and attributes */
	bool no_open;                  /* the kernel may skip OPEN/RELEASE of files (see ops.c) */
	bool no_opendir;               /* ... and OPENDIR/RELEASEDIR of directories */
	bool stats_xattr;              /* -o stats: user.imapfs.stats on the root */
	bool has_binary;               /* the server offers BINARY (RFC 3516), seen at mount */
	/* Push-ahead (ops.c): the session to store file data into the kernel's page cache with;
	 * NULL: never (single-threaded loop: see ops.c).  Set before the loop starts. */
	struct fuse_session *push_se;
	unsigned push_slot;            /* atomic: the file slot a reader read last (0: none) */
	uint64_t pushed;               /* atomic: files pushed (stats) */
	unsigned pushing;              /* atomic: pushes in progress (ops.c bounds them) */
	uint64_t requests[IFS_REQ_COUNT]; /* atomic */
};

/* The stats line (new string): requests, bodies fetched, disk cache use. */
char *ifs_stats(struct ifs *fs);

/* The low-level operations table (static const in ops.c). */
const struct fuse_lowlevel_ops *ifs_operations(void);

#endif /* IMAPFS_FS_IFS_H */
