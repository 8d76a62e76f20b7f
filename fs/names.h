/* names.h — how IMAP folder names become directory entry names.
 *
 * A decoded folder name ("Archive/2024") is split on the server's hierarchy delimiter into
 * components; each component becomes one directory entry.  Message directories share the folder
 * directory with child folders and are named by UID in plain decimal, so a component made only
 * of digits would collide with them.  The rule (reversible, and independent of which UIDs exist
 * so a name never changes under the user):
 *
 *   a component matching ^[0-9]+(\.d)*$ gets ".d" appended: "2024" -> "2024.d",
 *   "2024.d" -> "2024.d.d".  So does one matching ^\.search(\.d)*$, since every folder has a
 *   hidden search directory of that name (search.h): a folder named ".search" is ".search.d".
 *   Every other component is shown as it is.
 *
 * Reverse: an entry matching ^[0-9]+(\.d)+$ (or ^\.search(\.d)+$) is a folder whose name is the entry minus one
 * trailing ".d"; an entry of digits only is a message UID.  Unsafe components are escaped or
 * refused: '/' (possible when the delimiter is not '/') is shown as U+2215 DIVISION SLASH; an
 * empty component, ".", "..", invalid UTF-8 and results longer than 255 bytes are refused (the
 * caller skips that folder with a log line).  Pure functions, no locks.
 */
#ifndef IMAPFS_FS_NAMES_H
#define IMAPFS_FS_NAMES_H

#include <glib.h>
#include <stdbool.h>

#define IFS_NAME_MAX 255
/* The hidden search directory of every folder and of the mount's root (search.h). */
#define IFS_SEARCH_DIR ".search"

/* The entry name for one folder-name component.  Returns a new string (g_free) or NULL when the
 * component cannot be shown; then *why_r (if not NULL) points to a static reason. */
char *ifs_folder_entry_name(const char *component, const char **why_r);

/* Reverse of ifs_folder_entry_name for the digit rule and the '/' escape: the component an
 * entry name stands for.  New string (g_free). */
char *ifs_folder_component(const char *entry);

/* Split a decoded folder name on delimiter (0: flat) and map every component.  Returns a new
 * NULL-terminated vector of entry names (g_strfreev) or NULL with *why_r set. */
char **ifs_folder_entry_path(const char *name, char delimiter, const char **why_r);

/* The folder name the tree shows for a folder whose wire name is raw_name and whose modified
 * UTF-7 decoding is decoded (imap.h's struct imap_folder: NULL when raw_name is not modified
 * UTF-7).  decoded when there is one; else raw_name itself when it is UTF-8 with a non-ASCII
 * byte (servers with UTF8=ACCEPT habits send raw UTF-8; *as_sent_r (nullable) is then true);
 * else NULL (a pure-ASCII name that fails to decode is broken modified UTF-7, such as "&AGE-"
 * or "&Jjo", and anything not UTF-8 at all cannot be shown), with *why_r (nullable) a static
 * reason.  The result is decoded or raw_name, not a copy. */
const char *ifs_folder_shown_name(const char *raw_name, const char *decoded, bool *as_sent_r,
                                  const char **why_r);

/* True when s is a canonical decimal UID ("1".."4294967295", no leading zero); *uid_r set. */
bool ifs_parse_uid(const char *s, guint32 *uid_r);

#endif /* IMAPFS_FS_NAMES_H */
