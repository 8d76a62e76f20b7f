/* lowlevel.h — the daemon's one door to libfuse: the API version it is written against, and
 * the low-level API itself.  Only the files that speak to the kernel (ifs.h for the operations,
 * notify.c for invalidations, main.c for the session) include it; the rest of fs/ names inodes
 * as plain uint64_t, which is what fuse_ino_t is. */
#ifndef IMAPFS_FS_LOWLEVEL_H
#define IMAPFS_FS_LOWLEVEL_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#endif /* IMAPFS_FS_LOWLEVEL_H */
