/* message.h — turn a fetched message into the files of its message directory (struct
 * ifs_cached_msg): the raw bytes and the decoded views and attachments of mime/.
 *
 * Small messages are parsed in memory, as mime/ expects.  A large message (over
 * IFS_BIG_MESSAGE bytes) that lives in the disk cache is never loaded whole: GMime parses it
 * from the file (its parser keeps parts as file ranges), every large non-text leaf part (an
 * attachment by mime/'s rules, whatever its name) is decoded straight into an unlinked spill
 * file, and mime/ parses a reduced copy of the message in which those parts' bodies are
 * replaced by unique markers.  The attachments whose decoded data is a marker are then served
 * from the spill file.  So memory stays at the message's text parts and headers whatever the
 * size of its attachments; message.eml is read from the cache file.
 */
#ifndef IMAPFS_FS_MESSAGE_H
#define IMAPFS_FS_MESSAGE_H

#include <glib.h>
#include <stdint.h>

#include "bodycache.h"
#include "msgcache.h"

#define IFS_BIG_MESSAGE (4u * 1024 * 1024)

/* Parse raw (a new reference is taken) into msg (zeroed).  0 or -errno. */
int ifs_message_from_bytes(GBytes *raw, struct ifs_cached_msg *msg);

/* Parse the size bytes at offset of fd (taken: closed or kept by msg) into msg (zeroed).  bc
 * gives the spill files of large messages.  A message inside a file (offset > 0: a pack
 * member) is read into memory whatever its size; the disk cache only packs messages up to
 * IFS_BIG_MESSAGE.  0 or -errno. */
int ifs_message_from_file(int fd, uint64_t offset, uint64_t size, struct ifs_bodycache *bc,
                          struct ifs_cached_msg *msg);

#endif /* IMAPFS_FS_MESSAGE_H */
