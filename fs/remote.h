/* remote.h — the daemon's few conversations with the IMAP server, each on a connection taken
 * from the pool: the folder list, one folder's message listing, one message's raw bytes.
 *
 * Every call returns 0 or a negative errno ready for a FUSE reply: -ENOENT (folder or message
 * gone), -ESTALE (UIDVALIDITY changed under us), -ENOMEM, or -EIO for everything that is a
 * connection problem (lost, timed out, refused, or offline: see the end of this file); the
 * reason is logged as a warning.  A
 * connection found dead on first use (an idle connection the server closed) is retried once on
 * a fresh one.  Thread-safe (the pool is); no locks of the caller may be held (these block on
 * the network).
 */
#ifndef IMAPFS_FS_REMOTE_H
#define IMAPFS_FS_REMOTE_H

#include <glib.h>
#include <imap.h>
#include <stdint.h>

#include "identity.h"

/* One message as the folder listing knows it (from the attribute FETCH). */
struct ifs_msg_attr {
	uint32_t uid;
	uint64_t size;        /* RFC822.SIZE */
	int64_t internaldate; /* seconds since the epoch */
	char *flags;          /* one flag per line, each "\n"-terminated; owned by the array */
	struct ifs_msg_ident *ident; /* the server's id of the message (identity.h): a reference
	                              * owned by the array; NULL when the server has none */
};

/* LIST.  *folders_r and special_use as imap_list. */
int ifs_remote_list(struct imap_pool *pool, bool special_use, GPtrArray **folders_r);
/* The mount's first LIST, on the connection it has just logged in with (conn borrowed, still
 * the caller's): no retry, no offline bookkeeping and nothing logged, as the mount prints the
 * one line itself before it detaches.  *folders_r as imap_list; on failure *why_r is the
 * server's or connection's reason (g_free), else NULL. */
int ifs_remote_list_on(struct imap_conn *conn, bool special_use, GPtrArray **folders_r,
                       char **why_r);

/* What EXAMINE said of a folder when its listing was made. */
struct ifs_listing_state {
	uint32_t uidvalidity;
	uint32_t uidnext;        /* 0: unknown */
	uint32_t exists;
	uint64_t highestmodseq;  /* 0: no CONDSTORE */
};

/* A folder's listing.  Without prev (NULL): EXAMINE raw_name, UID SEARCH ALL, one UID FETCH
 * of the attributes, all three in one round trip (imap_examine_list_all).  With prev (the state and messages of the previous listing; prev_msgs
 * borrowed, not modified) a re-listing costs O(changes):
 *   - with QRESYNC enabled on the connection and prev made under CONDSTORE: one round trip
 *     whatever changed (imap_examine_qresync: the EXAMINE names what vanished and what was
 *     re-flagged since prev.highestmodseq, a pipelined UID FETCH prev.uidnext:* brings new
 *     mail); unchanged when the numbers below are equal; another UIDVALIDITY: the full
 *     listing; a result that does not add up to EXISTS: UID SEARCH ALL as below;
 *   - else EXAMINE; it shows the same UIDVALIDITY, UIDNEXT (known), EXISTS and HIGHESTMODSEQ, and
 *     prev_msgs holds EXISTS messages: unchanged, one command, *msgs_r = NULL;
 *   - else with CONDSTORE (both HIGHESTMODSEQs non-zero): UID FETCH prev.uidnext:* for new
 *     mail, UID FETCH 1:prev.uidnext-1 (CHANGEDSINCE prev.highestmodseq) for flag changes,
 *     and UID SEARCH ALL when EXISTS is below the previous count, in one round trip
 *     (imap_uid_fetch_changes); a SEARCH of its own after them only when new mail hid an
 *     expunge from the count;
 *   - else (no CONDSTORE, another UIDVALIDITY, UIDNEXT unknown): the full listing, which also
 *     refreshes every message's flags.
 * Without CONDSTORE only new and expunged mail move UIDNEXT/EXISTS: a change of flags alone
 * is not seen (the listing, and the `flags` files, keep the old flags) until the folder's
 * message set changes or the folder is listed afresh (a new mount).
 * *st_r is set; *msgs_r is NULL (unchanged) or a new GArray of struct ifs_msg_attr sorted by
 * UID (element clear func frees flags; caller g_array_unref()s it). */
int ifs_remote_listing(struct imap_pool *pool, const char *raw_name,
                       const struct ifs_listing_state *prev, GArray *prev_msgs,
                       struct ifs_listing_state *st_r, GArray **msgs_r);

/* UID FETCH uidset BODY.PEEK[] of raw_name into sink, provided the folder still has
 * uidvalidity (else -ESTALE); on a connection that does not examine the folder yet, the
 * EXAMINE goes in the same round trip (imap_examine_fetch_body).  The sink's begin may return 1 to skip a message, and must
 * restart a message it already saw (a retry on a fresh connection delivers it again). */
int ifs_remote_fetch_bodies(struct imap_pool *pool, const char *raw_name, uint32_t uidvalidity,
                            const char *uidset, const struct imap_body_sink *sink);

/* Bodies received from the server since start (all pools), and their bytes. */
void ifs_remote_stats(uint64_t *bodies_r, uint64_t *bytes_r);

/* Pieces of messages (piece.h): the n requests (imap.h struct imap_fetch_request, one UID
 * each) pipelined on one connection of raw_name, provided the folder still has uidvalidity
 * (else -ESTALE); on a connection that does not examine it yet the EXAMINE goes in the same
 * round trip (imap_examine_fetch_pieces).  Each request's own outcome is in reqs[i].result:
 * -EBADMSG when the server cannot give that piece (NO [UNKNOWN-CTE] or [PARSE]: read the
 * message whole), -ENOENT for another NO.  Returns 0, or -EIO/-ESTALE/-ENOMEM as above for the
 * connection; the sink must restart a request it already saw (a retry on a fresh connection
 * delivers it again). */
int ifs_remote_fetch_pieces(struct imap_pool *pool, const char *raw_name, uint32_t uidvalidity,
                            struct imap_fetch_request *reqs, unsigned n,
                            const struct imap_piece_sink *sink);

/* Piece fetches sent and literal bytes of pieces received since start (stats). */
void ifs_remote_piece_stats(uint64_t *pieces_r, uint64_t *bytes_r);

/* BODY.PEEK[] of uid in raw_name, provided the folder still has uidvalidity (else -ESTALE).
 * *raw_r is new (g_bytes_unref). */
int ifs_remote_fetch(struct imap_pool *pool, const char *raw_name, uint32_t uidvalidity,
                     uint32_t uid, GBytes **raw_r);

/* One folder of a search (in: raw_name, borrowed; out: the rest). */
struct ifs_search_hits {
	const char *raw_name;
	int result;           /* 0; -ENOENT: no such folder; -EILSEQ: the server refuses CHARSET
	                       * UTF-8; -EOPNOTSUPP: Gmail search on another server; -EIO:
	                       * the server said NO or BAD, or the connection failed */
	uint32_t uidvalidity; /* of the folder life the hits belong to */
	struct ifs_listing_state st; /* what its EXAMINE said (st.uidvalidity == uidvalidity) */
	GArray *msgs;         /* the hits (struct ifs_msg_attr, sorted by UID), new (unref); NULL
	                       * on failure */
	char *why;            /* on failure: what the server said, new (g_free); nullable */
};

/* Search every folder of hits[0..n) for q and get its hits' attributes, on one connection, in
 * one or two round trips in all (imap_search_folders).  Returns 0, or -EIO when the connection
 * failed (every hits[i].result says so too); a failure of one folder is in its result only. */
int ifs_remote_search(struct imap_pool *pool, const struct imap_search *q,
                      struct ifs_search_hits *hits, unsigned n);

/* GETQUOTAROOT INBOX (imap_getquotaroot).  0 and *q_r; -EOPNOTSUPP: the server offers no
 * QUOTA (nothing was sent); -ENOENT: it answered NO or BAD (*q_r zero); -EIO: it could not be
 * asked (offline, connection failure). */
int ifs_remote_quota(struct imap_pool *pool, struct imap_quota *q_r);

/* ---- offline ----
 * The server cannot be reached when opening a connection fails with a network error:
 * refused, timed out, unreachable, reset or closed during the greeting, or a host name that
 * does not resolve (ifs_remote_unreachable_error).  A failed login or certificate is not
 * that: it stays an error.  From then on the daemon is offline: every call above fails at
 * once with -EIO (none waits for the timeout), and callers serve what they know (tree.c keeps
 * the folder list and listings it has; message files come from the disk cache).  A
 * reconnector thread tries the server with back-off (1 s doubling to 30 s) on its own
 * connection; once it gets through the daemon is online again, and each listing catches up
 * at its next use (its refresh time has long passed). */
bool ifs_remote_unreachable_error(int err);

/* Go offline (why: the reason; logged once when say).  main.c calls it when mounting without
 * the server (having said so itself). */
void ifs_remote_set_offline(const char *why, bool say);
bool ifs_remote_offline(void);

/* For the stats: offline now, times it went offline, calls failed at once meanwhile. */
void ifs_remote_offline_stats(bool *offline_r, uint64_t *periods_r, uint64_t *fast_fails_r);

/* Start the reconnector: it probes with probe's connections and, once through, lets the n
 * pools connect again at once.  Pools are borrowed and must outlive it. */
struct ifs_reconnector;
struct ifs_reconnector *ifs_remote_reconnector_new(struct imap_pool *probe,
                                                   struct imap_pool *const *pools, unsigned n);
void ifs_remote_reconnector_free(struct ifs_reconnector *r); /* joins it; NULL is a no-op */

#endif /* IMAPFS_FS_REMOTE_H */
