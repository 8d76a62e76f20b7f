/* owner.h — who owns what the mount shows, and its permission bits: the rule behind every
 * st_uid, st_gid and st_mode the daemon reports (ops.c).
 *
 * Mail is private by default, as a Maildir is (0700): files 0400 and directories 0500, owned
 * by the user who mounted.  That matters once the mount is shared with -o allow_other (root
 * mounting from fstab for a user, or a user letting an indexer in): the kernel checks these
 * bits (the daemon mounts with default_permissions), so another local user gets EACCES on
 * every file and directory.  -o umask=OOO shares on purpose: its bits are taken away from
 * 0444 (files) and 0555 (directories), so umask=022 gives 0444/0555 (every local user may read
 * all the mail) and umask=027 gives the group read access.  Write bits never appear: the
 * mount is read-only.  -o uid= and -o gid= name the owner (a number or a name). */
#ifndef IMAPFS_FS_OWNER_H
#define IMAPFS_FS_OWNER_H

#include <stdbool.h>
#include <sys/types.h>

#define IFS_DEFAULT_UMASK 077u

struct ifs_owner {
	uid_t uid;
	gid_t gid;
	mode_t file_mode; /* permission bits only: 0444 & ~umask */
	mode_t dir_mode;  /* 0555 & ~umask */
};

/* The owner and modes from the -o uid=, gid=, umask= values as given (each nullable: the
 * mounting user, that user's group, IFS_DEFAULT_UMASK).  A user or group name is looked up
 * in the system's databases; a number is taken as it is.  0, or -EINVAL and *errmsg_r (new,
 * one line saying which value is wrong and what is expected). */
int ifs_owner_parse(const char *uid, const char *gid, const char *umask, struct ifs_owner *own_r,
                    char **errmsg_r);

#endif /* IMAPFS_FS_OWNER_H */
