/* identity.h — which folder entries are one message.  Gmail shows a message labelled `Work` in
 * INBOX, in Work and in [Gmail]/All Mail; a server that says so (X-GM-EXT-1's X-GM-MSGID,
 * OBJECTID's EMAILID, RFC 8474) lets the mount fetch, cache and hold that message once.
 *
 * struct ifs_msg_ident is what a listing knows of one message's identity (the listing's FETCH
 * asks for it, imap.h imap_msg_attrs): its id, its thread and its Gmail labels.  It is
 * immutable and reference counted, so the copies a re-listing makes share it.
 *
 * struct ifs_identity is the index id → folder entries (the folder life's epoch, the UID, the
 * RFC822.SIZE) over every listing the tree holds; the loader (loader.h ifs_msg_ref_init)
 * reads a message through one entry of its id, so that every cache key (memory, disk, read
 * ahead) is that entry's.  Why the id may join entries: both ids name one message's content,
 * which IMAP never changes — Gmail stores a message once and shows it under each label,
 * X-GM-MSGID naming that one copy; RFC 8474 5.1 has an EMAILID name one immutable message,
 * kept by COPY and MOVE.  As a check against a server that reuses ids wrongly, entries join
 * only when their RFC822.SIZE is equal too.  UIDVALIDITY still governs each folder's UIDs: a
 * folder life that ends takes its entries out of the index (ifs_identity_drop).
 *
 * Locking: one mutex inside, a leaf lock (the tree calls in while holding its own lock; the
 * index never calls out).
 */
#ifndef IMAPFS_FS_IDENTITY_H
#define IMAPFS_FS_IDENTITY_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

struct ifs_msg_ident {
	char *email_id;  /* never NULL (an ident exists only for a message that has an id) */
	char *thread_id; /* NULL: the server has no thread id */
	char *labels;    /* Gmail labels, one per line, each "\n"-terminated; NULL: not Gmail */
};

/* A new ident (reference count 1) from the listing's attributes; NULL when email_id is NULL.
 * The strings are copied; labels is NULL-terminated (nullable). */
struct ifs_msg_ident *ifs_msg_ident_new(const char *email_id, const char *thread_id,
                                        char *const *labels);
/* The same, from the three strings as struct ifs_msg_ident holds them (saved state). */
struct ifs_msg_ident *ifs_msg_ident_new_raw(const char *email_id, const char *thread_id,
                                            const char *labels);
struct ifs_msg_ident *ifs_msg_ident_ref(struct ifs_msg_ident *ident); /* NULL: NULL */
void ifs_msg_ident_unref(struct ifs_msg_ident *ident);                /* NULL: no-op */

struct ifs_identity;

struct ifs_identity *ifs_identity_new(void);
void ifs_identity_free(struct ifs_identity *idx); /* NULL is a no-op */

/* One folder entry of a message. */
struct ifs_alias {
	uint32_t epoch; /* the folder life's (tree.h) */
	uint32_t uid;
};

/* The folder life epoch (of the folder raw_name, borrowed, copied) now lists msgs (GArray of
 * struct ifs_msg_attr, remote.h; borrowed): its entries replace those it had. */
void ifs_identity_set_listing(struct ifs_identity *idx, uint32_t epoch, const char *raw_name,
                              GArray *msgs);

/* The same for a listing saved by an earlier mount (state.h), unless the index has entries of
 * epoch already (a listing of this mount is newer). */
void ifs_identity_add_saved(struct ifs_identity *idx, uint32_t epoch, const char *raw_name,
                            GArray *msgs);

/* The folder life epoch ended (UIDVALIDITY changed, folder gone): its entries go. */
void ifs_identity_drop(struct ifs_identity *idx, uint32_t epoch);

/* The entries of email_id whose RFC822.SIZE is size, appended to out (GArray of struct
 * ifs_alias), in one order that does not depend on when folders were listed: by folder wire
 * name, then UID.  Returns how many were appended. */
unsigned ifs_identity_aliases(struct ifs_identity *idx, const char *email_id, uint64_t size,
                              GArray *out);

/* Does the index hold any id?  False on a server with neither extension: callers skip the
 * per-message lookups that could only find nothing. */
bool ifs_identity_any(struct ifs_identity *idx);

#endif /* IMAPFS_FS_IDENTITY_H */
