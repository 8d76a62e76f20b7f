/* config.h — the account configuration of imapfs, read from an INI file with GKeyFile.
 *
 * File: -o config=FILE, else $XDG_CONFIG_HOME/imapfs/config, else ~/.config/imapfs/config.
 * Section: [default], or [NAME] with -o account=NAME.  Keys (all documented in IFS_CONFIG_HELP,
 * which `imapfs --help` prints): host, port, tls, user, auth, pass_cmd, password, oauth_cmd,
 * ca_file, timeout, connections, refresh, memory_cache, cache, cache_dir, cache_size,
 * readahead, watch, idle_renew, compress, fetch, whole_below, hide.  Unknown keys are an error
 * (typos should not be silent).
 *
 * With auth = password (the default) the password is obtained here (run pass_cmd, or the
 * `password` key when the file is private) and handed to the caller exactly once;
 * ifs_config_wipe_password() scrubs this copy after the IMAP pool has taken its own.  With
 * auth = oauth2 only oauth_cmd is kept: fs/token.c runs it when a login needs a token.
 */
#ifndef IMAPFS_FS_CONFIG_H
#define IMAPFS_FS_CONFIG_H

#include <imap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ifs_config {
	char *path;         /* the config file that was read */
	char *account;      /* section name */
	char *host;
	char *port;         /* NULL: default for tls mode */
	enum imap_tls_mode tls;
	char *user;
	enum imap_auth auth; /* password (default) or oauth2 */
	char *password;     /* secret; wiped by ifs_config_wipe_password; NULL with oauth2 */
	char *oauth_cmd;    /* oauth2 only (then never NULL): prints an access token */
	char *ca_file;      /* absolute path or NULL */
	unsigned timeout_s;
	unsigned connections;
	unsigned refresh_s;
	size_t memory_cache; /* bytes */
	char *cache_dir;     /* the account's disk cache directory; NULL: disk cache off */
	uint64_t cache_size; /* bytes (> 0 when cache_dir is set) */
	unsigned readahead;  /* messages read ahead of a sequential reader; 0: off */
	bool watch;          /* watch the folders in use with NOTIFY/IDLE (watch.h) */
	unsigned idle_renew_s; /* the watching connection's keep-alive interval (watch.h) */
	bool fetch_whole;    /* fetch = whole: every file from the whole message (piece.h) */
	uint64_t whole_below; /* fetch = parts: messages of at most this many bytes are read
	                       * whole beyond their outline (piece.h); 0: none */
	enum imap_compress compress; /* COMPRESS=DEFLATE when offered: auto (default), on, off */
	/* hide: folders READDIR does not list (tree.h "Hidden folders") */
	unsigned hide_use; /* IMAP_FOLDER_ALL ... IMAP_FOLDER_TRASH bits; 0: none by use */
	char **hide_names; /* paths as shown in the mount ("[Gmail]/Spam"); NULL: none */
};

#define IFS_IDLE_RENEW_DEFAULT 1500u /* 25 minutes */
#define IFS_WHOLE_BELOW_DEFAULT (32u * 1024) /* whole_below (piece.h) */
#define IFS_IDLE_RENEW_MAX     1740u /* 29 minutes (RFC 2177: servers may drop at 30) */

#define IFS_CONFIG_HELP                                                                            \
	"Configuration file (INI): $XDG_CONFIG_HOME/imapfs/config or ~/.config/imapfs/config,\n"   \
	"section [default] or [NAME] chosen with -o account=NAME.  Keys:\n"                        \
	"    host = NAME            IMAP server (required)\n"                                      \
	"    port = N               default 993 for tls=imaps, 143 for starttls/none\n"            \
	"    tls = imaps|starttls|none   default imaps; certificates are always verified\n"        \
	"    user = NAME            login name (required)\n"                                       \
	"    auth = password|oauth2 how to log in: a password (default) from pass_cmd or\n"        \
	"                           password, or an OAuth2 access token from oauth_cmd\n"          \
	"                           (SASL OAUTHBEARER, else XOAUTH2: Gmail, Microsoft 365)\n"      \
	"    pass_cmd = COMMAND     run with /bin/sh -c; the first line it prints is the "         \
	"password\n"                                                                               \
	"    password = SECRET      only accepted when the file is not readable by group/others\n" \
	"    oauth_cmd = COMMAND    with auth = oauth2 (and then required): run with /bin/sh -c\n" \
	"                           when a token is needed (at mount, and again when the server\n" \
	"                           refuses the one it has); the first line it prints is the\n"    \
	"                           access token (e.g. oama access ME, pizauth show ACCOUNT);\n"   \
	"                           once mounted, a run longer than 2 x timeout is killed\n"       \
	"    ca_file = FILE         extra trusted CA or self-signed certificate (PEM); relative\n" \
	"                           paths are relative to the config file's directory\n"           \
	"    timeout = SECONDS      network timeout, default 30\n"                                 \
	"    connections = N        parallel IMAP connections, default 5 (one watches)\n"          \
	"    refresh = SECONDS      how long folder lists and listings are reused, default 30\n"   \
	"    memory_cache = MIB     parsed-message cache size in MiB, default 32 (64 when the\n"   \
	"                           disk cache is off)\n"                                          \
	"    cache = on|off         keep fetched messages on disk (default on)\n"                  \
	"    cache_dir = DIR        the disk cache of this account, default\n"                     \
	"                           $XDG_CACHE_HOME/imapfs/ACCOUNT (else "                         \
	"~/.cache/imapfs/ACCOUNT)\n"                                                               \
	"    cache_size = SIZE      disk cache limit: MiB, or a number with K, M, G or T (powers " \
	"of\n"                                                                                     \
	"                           1024); default 1G; 0 turns the disk cache off\n"               \
	"    readahead = N          messages fetched ahead of a reader walking a folder in UID\n"  \
	"                           order (grep -r, find -exec), default 4096 (64 with\n"          \
	"                           cache = off), and at most cache_size/8 (memory_cache/4)\n"     \
	"                           of mail ahead; 0 turns it off\n"                               \
	"    watch = on|off         watch the folders in use (NOTIFY, else IDLE) so new,\n"        \
	"                           expunged and re-flagged mail shows within seconds; uses one\n" \
	"                           of the connections; default on (off with connections < 3)\n"   \
	"    idle_renew = SECONDS   the watching connection ends and begins IDLE again this\n"     \
	"                           often, for servers and NAT boxes that drop quiet\n"            \
	"                           connections; NOTIFY is also set again every idle_renew\n"      \
	"                           seconds, at most 300; default 1500, from 1 to 1740\n"          \
	"    fetch = whole|parts    whole (default): any file fetches the whole message (the\n"    \
	"                           most bytes, the fewest round trips); parts: each file\n"       \
	"                           fetches only what it shows: the header for header files,\n"    \
	"                           the text parts for body and body.html, one attachment for\n"   \
	"                           itself; the files are the same either way\n"                   \
	"    whole_below = SIZE     with fetch = parts, a message of at most SIZE (as "            \
	"cache_size)\n"                                                                            \
	"                           is fetched whole for any file but its header files (one\n"     \
	"                           fetch instead of two); default 32K; 0: never\n"                \
	"    compress = auto|on|off compress what goes over the wire (COMPRESS=DEFLATE, RFC "      \
	"4978)\n"                                                                                  \
	"                           when the server offers it: on always, auto (default) unless\n" \
	"                           the server's address is loopback (127.0.0.0/8, ::1), where\n"  \
	"                           it saves nothing; set on for a tunnel through localhost\n"     \
	"    hide = WHAT ...        folders that are not listed (ls, find, grep -r and backups\n"  \
	"                           skip them) but can still be entered by name: special-use\n"    \
	"                           attributes as RFC 6154 spells them (\\All \\Archive\n"         \
	"                           \\Drafts \\Flagged \\Junk \\Sent \\Trash), or folders by\n"    \
	"                           their path in the mount (\"[Gmail]/All Mail\": quote a\n"      \
	"                           path with blanks); default none; Gmail: \\All (All Mail\n"     \
	"                           holds every message once more)\n"

/* Load and validate.  path may be NULL (default location); account may be NULL ("default").
 * On failure returns -errno and a new one-line message in *errmsg_r (no "imapfs: " prefix).
 * On success *cfg_r is new (ifs_config_free) and holds the password. */
int ifs_config_load(const char *path, const char *account, struct ifs_config **cfg_r,
                    char **errmsg_r);

/* Run cmd with /bin/sh -c (our environment, nothing secret added; stdin inherited) and put
 * the first line it prints into *line_r (new; the caller wipes and frees it).  key and what
 * name the setting and the secret in the one-line error (-EINVAL, *errmsg_r new): a command
 * that cannot start, fails, prints an empty first line, or (timeout_s > 0) has not finished
 * after timeout_s seconds (it is then killed, with its process group).  timeout_s 0 waits as
 * long as it takes: at mount a helper may ask for a passphrase on the terminal. */
int ifs_config_run_cmd(const char *key, const char *what, const char *cmd, unsigned timeout_s,
                       char **line_r, char **errmsg_r);

/* Overwrite and free the password (after imap_pool_new copied it). */
void ifs_config_wipe_password(struct ifs_config *cfg);

void ifs_config_free(struct ifs_config *cfg); /* NULL is a no-op */

#endif /* IMAPFS_FS_CONFIG_H */
