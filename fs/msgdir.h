/* msgdir.h — what each file of a message directory is, from the fewest pieces that know it.
 *
 * A message directory's files (tree.h's slots) are answered by the loader (loader.h) piece by
 * piece (piece.h), each question asking only the piece that decides it:
 *
 *   file                         exists / names     st_size             bytes
 *   message.eml                  always             OUTLINE (checked    WHOLE
 *                                                   size), else WHOLE
 *   subject from to cc date      OUTLINE when the header alone decides them, else PARTS
 *   message-id headers
 *   body                         always             TEXTS               TEXTS
 *   body.html                    PARTS              TEXTS               TEXTS
 *   attachments/ and its names   PARTS
 *   attachments/NAME                                PARTS (exact size   ATT0+k
 *                                                   known), else ATT0+k
 *   flags                        the listing (tree.h), never a fetch
 *
 * Whatever piece is asked, a whole message already held answers instead (loader.h), so the
 * answers never depend on which pieces were fetched: the whole-message path (fetch = whole) is
 * the oracle, and the tests hold both to the same tree, byte for byte.
 */
#ifndef IMAPFS_FS_MSGDIR_H
#define IMAPFS_FS_MSGDIR_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "ifs.h"
#include "loader.h"

#define IFS_SIZE_UNKNOWN UINT64_MAX

/* The exact size of slot's file: 0 and *size_r, -ENOENT when the message has no such file,
 * or -errno as loader.h. */
int ifs_msgdir_size(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned slot,
                    uint64_t *size_r);

/* The bytes of slot's file: 0, *m_r (give it back with ifs_msgcache_put) and *b_r (borrowed
 * from *m_r), -ENOENT when the message has no such file, or -errno as loader.h. */
int ifs_msgdir_bytes(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned slot,
                     const struct ifs_cached_msg **m_r, const struct ifs_blob **b_r);

/* The bytes of slot's file if the memory cache holds the piece that has them, without
 * fetching anything (for push-ahead, ops.c): as ifs_msgdir_bytes, -ENOENT when not held. */
int ifs_msgdir_bytes_if_held(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned slot,
                             const struct ifs_cached_msg **m_r, const struct ifs_blob **b_r);

/* The files of a message directory (attdir false) or of its attachments directory, in
 * listing order, with their sizes where the pieces the listing needed already know them. */
struct ifs_msgdir_entry {
	unsigned slot;
	char *name;
	uint64_t size; /* IFS_SIZE_UNKNOWN: ask ifs_msgdir_size (the kernel will LOOKUP it) */
};
/* *entries_r new (struct ifs_msgdir_entry; ifs_msgdir_entries_free).  -ENOENT for the
 * attachments directory of a message without attachments. */
int ifs_msgdir_list(struct ifs *fs, const struct ifs_msg_ref *ref, bool attdir,
                    GArray **entries_r);
void ifs_msgdir_entries_free(GArray *entries); /* NULL is a no-op */

/* The slot of attachment `name`: 0 and *slot_r, or -ENOENT. */
int ifs_msgdir_attachment_slot(struct ifs *fs, const struct ifs_msg_ref *ref, const char *name,
                               unsigned *slot_r);

#endif /* IMAPFS_FS_MSGDIR_H */
