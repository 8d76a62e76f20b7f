/* piece.h — the pieces of a message imapfs fetches and keeps, and how they are written down.
 *
 * With `fetch = parts` (config.h) a message is not fetched whole unless a reader needs its raw
 * bytes (message.eml): each file of its message directory is made from the pieces it needs
 * (msgdir.h says which), each fetched once, kept in the memory cache (msgcache.h) and the disk
 * cache (bodycache.h) under its own number, and read ahead as a walk asks for it
 * (readahead.h):
 *
 *   WHOLE    BODY.PEEK[] — everything derives from it: once it is here, no piece is fetched.
 *   OUTLINE  BODYSTRUCTURE and BODY.PEEK[HEADER] of the message, and BODY.PEEK[]<N-1.2> where
 *            N is RFC822.SIZE (one byte back means N is exactly the size of message.eml);
 *            one round trip.  The header files come from it.
 *   PARTS    every part's MIME header (BODY.PEEK[s.MIME]) and a forwarded message's header
 *            (BODY.PEEK[s.HEADER]), with each leaf's exact decoded size where it costs no
 *            body: BINARY.SIZE[s] where BINARY is offered, else for identity-encoded parts
 *            the BODYSTRUCTURE size checked like message.eml's (BODY.PEEK[s]<n-1.2>).  Which
 *            parts are attachments, their names, whether body.html exists.
 *   TEXTS    the bodies (BODY.PEEK[s]) of the text parts body and body.html are made of.
 *   ATT0+k   attachment k's decoded bytes: BINARY.PEEK[s] where offered (base64 and identity
 *            encodings), else BODY.PEEK[s] decoded here (mime_decoder), or as it is for a
 *            forwarded message; streamed into the disk cache.
 *
 * A small message (listed RFC822.SIZE at most `whole_below`, config.h) is read whole for its
 * texts and attachments (TEXTS, ATT) and when its directory is listed (msgdir.h), by readers
 * and read-ahead alike: its header and text parts are most of its bytes anyway, and one
 * BODY.PEEK[] costs one round trip and one parse where PARTS then TEXTS cost two of each
 * (bench/ab.py, a cold grep -r of the bodies of 5,000 small messages: 3x as long by pieces).
 * Its header files (OUTLINE) and attachment names (PARTS) still come from their pieces.
 *
 * Pieces other than WHOLE and ATT are kept as a piece set: named byte strings ("header",
 * "structure", "mime:1.2", "head:2", "size:1.2", "body:1.1", ...), written down as
 *     "IFSPIECE1\n", u32 count, then per entry: u16 name length, name, u64 length, bytes
 * (integers little-endian).  A set that does not parse is treated as absent (fetched again).
 */
#ifndef IMAPFS_FS_PIECE_H
#define IMAPFS_FS_PIECE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

enum ifs_piece {
	IFS_PIECE_WHOLE = 0,
	IFS_PIECE_OUTLINE = 1,
	IFS_PIECE_PARTS = 2,
	IFS_PIECE_TEXTS = 3,
	IFS_PIECE_ATT0 = 16, /* + attachment index (< IFS_MAX_ATTACHMENTS, tree.h) */
};
#define IFS_PIECE_BITS 12 /* pieces are < 1 << IFS_PIECE_BITS */

/* Names in piece sets. */
#define IFS_PS_HEADER    "header"    /* BODY[HEADER] */
#define IFS_PS_STRUCTURE "structure" /* BODYSTRUCTURE as text (imap_bodystructure_format) */
#define IFS_PS_EML_SIZE  "eml-size"  /* decimal: the checked size of BODY[]; absent: unknown */
#define IFS_PS_WHOLE     "whole"     /* present: this message is read whole (its pieces
                                      * cannot stand for it); its value says why */

/* A piece set: name (new string) -> GBytes. */
GHashTable *ifs_pieceset_new(void);
/* Its bytes as written down (new). */
GBytes *ifs_pieceset_pack(GHashTable *set);
/* Parse len bytes; NULL when they are not a piece set.  New table. */
GHashTable *ifs_pieceset_unpack(const void *data, size_t len);
/* Bytes the set holds (for the memory cache's accounting). */
size_t ifs_pieceset_bytes(GHashTable *set);

/* "prefix:section" entries. */
void ifs_pieceset_put(GHashTable *set, const char *prefix, const char *section, GBytes *b);
GBytes *ifs_pieceset_get(GHashTable *set, const char *prefix, const char *section);
/* A decimal number entry (false when absent or not a number). */
bool ifs_pieceset_number(GHashTable *set, const char *prefix, const char *section,
                         uint64_t *n_r);
void ifs_pieceset_put_number(GHashTable *set, const char *prefix, const char *section,
                             uint64_t n);

#endif /* IMAPFS_FS_PIECE_H */
