/* log.h — where the daemon's messages go.  Before detaching and in the foreground: stderr,
 * "imapfs: " prefixed.  After detaching: syslog (stderr is /dev/null then).  g_debug output
 * (including the imap module's protocol trace, which redacts credentials) only with -d. */
#ifndef IMAPFS_FS_LOG_H
#define IMAPFS_FS_LOG_H

#include <stdbool.h>

/* Install the GLib log handlers (once) and set whether debug messages show; may be called
 * again to change that. */
void ifs_log_init(bool debug);

/* While true, warnings of the "imap" domain are not shown (unless debugging): during startup
 * main.c reports every failure itself, in one line. */
void ifs_log_set_startup(bool startup);

/* Switch to syslog (call after fuse_daemonize when not in the foreground). */
void ifs_log_to_syslog(void);

#endif /* IMAPFS_FS_LOG_H */
