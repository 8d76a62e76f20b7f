/* structure.h — a message's BODYSTRUCTURE (imap/'s part tree) and the pieces fetched for it,
 * turned into mime/'s part tree (mime.h: struct mime_part); and which sections each piece of
 * piece.h asks the server for.  The only file that knows both imap/ and mime/ part trees, so
 * that the two libraries never meet.  Pure functions, no I/O.
 *
 * The server's outline is advisory: it decides only which sections are fetched.  What a
 * message directory shows is decided by mime/ from the header bytes those sections hold; when
 * they cannot stand for the message (mime.h: -EBADMSG), or the outline is not one imapfs builds
 * on (ifs_structure_usable), the message is read whole.
 */
#ifndef IMAPFS_FS_STRUCTURE_H
#define IMAPFS_FS_STRUCTURE_H

#include <glib.h>
#include <imap.h>
#include <mime.h>
#include <stdbool.h>

/* Can the pieces of this outline stand for the message?  false and *why_r (static) when the
 * message is to be read whole: a top-level message/rfc822 (its sections are numbered in a way
 * servers disagree on), more parts than the views look at, nesting deeper than they do. */
bool ifs_structure_usable(const struct imap_part *root, const char **why_r);

/* What one fetch item of a piece stands for in the piece set (piece.h names). */
enum ifs_item_role {
	IFS_ROLE_STORE = 0,  /* the answer is stored as prefix:section */
	IFS_ROLE_SIZE,       /* BINARY.SIZE: stored as size:section */
	IFS_ROLE_SIZE_CHECK, /* BODY.PEEK[s]<n-1.2>: n is exact when one byte came back */
};
struct ifs_piece_item {
	struct imap_fetch_item item; /* item.section borrowed from the tree */
	enum ifs_item_role role;
	const char *prefix;          /* IFS_ROLE_STORE: "mime", "head", "body" */
	uint64_t claimed;            /* IFS_ROLE_SIZE_CHECK: the size the outline claims */
};

/* The items of PARTS for the outline root: every part's MIME header (not the root's: that
 * is the message header), a forwarded message's header, and the exact size of each leaf that
 * can be an attachment where that costs no body (binary: the server offers BINARY).  Appended
 * to items (struct ifs_piece_item). */
void ifs_structure_parts_items(const struct imap_part *root, bool binary, GArray *items);

/* The items of TEXTS: BODY.PEEK[s] of each section (borrowed strings in sections). */
void ifs_structure_text_items(GPtrArray *sections, GArray *items);

/* Does the server's BINARY decode this Content-Transfer-Encoding as mime/ does (base64 and
 * the identities; quoted-printable decoders differ in corner cases)? */
bool ifs_structure_server_decodes(const char *encoding);

/* Is part a forwarded message (message/rfc822) whose body is a multipart?  Where such a part
 * ends, servers and mime/ differ: Dovecot 2.3.19 counts the CRLF before the enclosing
 * boundary into it (in BODY[s] and in BODYSTRUCTURE's size), mime/ (GMime, RFC 2046 5.1.1:
 * that CRLF belongs to the boundary) does not, and the part's bytes alone cannot say which
 * it was.  Its bytes and size come from the whole message. */
bool ifs_structure_end_unsure(const struct imap_part *part);

/* Where attachment bytes come from: the fetch item for part s (BINARY.PEEK where binary is
 * offered and the part's encoding is one the server decodes as mime/ does, else BODY.PEEK,
 * to be decoded here when *decode_r).  src as struct ifs_att_source's kind. */
void ifs_structure_data_item(const struct imap_part *part, bool binary, bool exact,
                             struct imap_fetch_item *item_r, bool *decode_r);

/* The mime/ part tree of root with the header bytes and bodies of set (piece.h names:
 * "header", "mime:S", "head:S", "body:S"; a body absent from set is left out).  Part ids are
 * the imap parts' index.  -EAGAIN when a header it needs is not in set.  *tree_r new
 * (ifs_structure_free_tree); it borrows set's bytes (keep set alive while it is used). */
int ifs_structure_mime_tree(const struct imap_part *root, GHashTable *set,
                            struct mime_part **tree_r);
void ifs_structure_free_tree(struct mime_part *tree); /* NULL is a no-op */

/* The part with this index (imap_part.index), or NULL. */
const struct imap_part *ifs_structure_by_index(const struct imap_part *root, unsigned index);

#endif /* IMAPFS_FS_STRUCTURE_H */
