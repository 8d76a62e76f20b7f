/* imap.h — the whole public contract of imapfs's IMAP client library.
 *
 * A small, read-only IMAP4rev1 (RFC 3501, also talks to RFC 9051 servers) client: connect over
 * implicit TLS or STARTTLS with verification always on, log in, LIST, EXAMINE, UID SEARCH,
 * UID FETCH (attributes, BODY.PEEK[] streamed, BODYSTRUCTURE and pieces of messages: sections,
 * MIME headers, BINARY), NOOP, IDLE, NOTIFY (with ENABLE CONDSTORE), ENABLE QRESYNC and
 * EXAMINE (QRESYNC ...) for one-round-trip re-listings, COMPRESS DEFLATE, LOGOUT.  It never
 * sends a command that
 * changes the server: no SELECT, no STORE, no non-PEEK body fetch.  It knows nothing of FUSE or
 * MIME and depends on OpenSSL, GLib and zlib only.
 *
 * Errors: every int-returning function returns 0 or a negative errno, so a FUSE operation can
 * return it unchanged.  The mapping (imap_status_to_errno in imap/errors.c) is:
 *   tagged NO          -> -ENOENT (or -EACCES for [AUTHENTICATIONFAILED]/[NOPERM])
 *   tagged BAD         -> -EPROTO
 *   [BADCHARSET]       -> -EILSEQ (NO or BAD: the server cannot search in UTF-8)
 *   BYE / lost conn.   -> -ECONNABORTED (the connection is then broken: imap_conn_is_broken)
 *   timeout            -> -ETIMEDOUT   (the connection is then broken)
 *   hostile input      -> -EPROTO (literal over cap, list too deep, unparsable line, corrupt
 *                         compressed stream; broken)
 *   TLS verification   -> -EKEYREJECTED
 *   login refused      -> -EACCES (also LOGINDISABLED without AUTH=PLAIN); -EUSERS when
 *                         the server says [LIMIT] (too many connections for the user)
 *   no OAuth2 mechanism-> -EOPNOTSUPP (auth = oauth2, server offers neither OAUTHBEARER nor
 *                         XOAUTH2)
 *   no TLS possible    -> -EPROTO (STARTTLS not offered, refused, PREAUTH greeting, or bytes
 *                         injected between the STARTTLS OK and the handshake; broken)
 *   cannot connect     -> the socket's errno (-ECONNREFUSED, -ETIMEDOUT, ...); a host name
 *                         that does not resolve -> -EHOSTUNREACH; unreadable ca_file -> -EINVAL
 *   bad arguments      -> -EINVAL (CR/LF/NUL in a string, bad UID set or search criteria,
 *                         no mailbox examined); the connection stays usable
 * A one-line human-readable reason for the last failure is in imap_conn_error().
 *
 * Limits: no line-length limit as such, but one response may carry at most 64 MiB of
 * non-literal text (a 10 MB UID SEARCH answer is fine) and at most 8 Mi tokens; literals are
 * capped by max_literal (64-bit sizes, overflow-checked) and, unless they are streamed FETCH
 * bodies, by IMAP_MAX_BUFFERED_LITERAL; lists by max_depth.  Past a cap the connection fails
 * with -EPROTO and a clear message; nothing overflows.  A compressed stream is decoded a read
 * chunk at a time into the same parser, so the same caps bound what a compression bomb can
 * make the client hold.
 *
 * SIGPIPE: OpenSSL writes with write(), so the first imap_conn_open() sets SIGPIPE to SIG_IGN
 * if it still has the default disposition (a vanished server must not kill the daemon).
 *
 * Concurrency model: a struct imap_conn is NOT thread-safe; it is owned by exactly one thread at
 * a time.  Multithreaded callers (the FUSE daemon) share a struct imap_pool, which is
 * thread-safe: imap_pool_acquire() hands out a connection for exclusive use until
 * imap_pool_release(); up to max_conns connections exist, further callers wait (bounded by the
 * timeout).  A connection that broke is closed on release and replaced lazily.
 *
 * Logging goes through g_log with the domain "imap": warnings for things the user should know
 * (tls=none), g_debug for a protocol trace.  Credentials are redacted in every log line.
 */
#ifndef IMAPFS_IMAP_H
#define IMAPFS_IMAP_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imap_tls_mode {
	IMAP_TLS_IMPLICIT = 0, /* TLS from the first byte (port 993) — the default */
	IMAP_TLS_STARTTLS,     /* plaintext greeting, then STARTTLS before anything else (143) */
	IMAP_TLS_NONE,         /* only when explicitly configured; warns at every connect */
};

/* What the secret is, and so which SASL mechanisms may carry it (imap/sasl.c). */
enum imap_auth {
	IMAP_AUTH_PASSWORD = 0, /* AUTHENTICATE PLAIN (SASL-IR when offered), else LOGIN */
	IMAP_AUTH_OAUTH2,       /* an OAuth2 access token: OAUTHBEARER (RFC 7628) when offered,
	                         * else XOAUTH2; a server with neither is refused (-EOPNOTSUPP) */
};

/* Hands out the secret to log in with (the OAuth2 access token), for pools whose secret can
 * change while they live.  refused is NULL when asking for the current secret, else the
 * secret the server has just refused: the provider then gets a new one unless it already
 * holds one that differs from refused (another connection refreshed it meanwhile).  Returns
 * 0 and a new string in *secret_r (the caller wipes and g_free()s it), or -errno and a new
 * one-line reason in *errmsg_r.  Called from any thread that opens a connection, with no lock
 * of the pool held; must be thread-safe.  May block (it may run a command). */
typedef int (*imap_credential_cb)(void *ctx, const char *refused, char **secret_r,
                                  char **errmsg_r);

/* COMPRESS=DEFLATE (RFC 4978): after the login, when the server offers it, both directions
 * are compressed (raw deflate under TLS, flushed after each command).  The credentials are
 * always sent before, uncompressed; a server that answers NO leaves the connection as it was.
 * The protocol trace shows the uncompressed lines.  AUTO asks only when the address the
 * connection reached is not a loopback one (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104): there
 * compression saves no time and costs both ends CPU (the server's deflate most). */
enum imap_compress {
	IMAP_COMPRESS_ON = 0, /* when the server offers it — the library's default */
	IMAP_COMPRESS_OFF,    /* never ask */
	IMAP_COMPRESS_AUTO,   /* as ON, except to a loopback address (the daemon's default) */
};

/* Connection settings.  All pointers are borrowed by imap_conn_open(); imap_pool_new() copies
 * the whole struct (strings included) so the caller may free its own copy afterwards. */
struct imap_config {
	const char *host;       /* required */
	const char *port;       /* nullable: "993" for IMPLICIT, "143" otherwise */
	enum imap_tls_mode tls;
	const char *user;       /* required for login */
	enum imap_auth auth;    /* what password holds; default IMAP_AUTH_PASSWORD */
	const char *password;   /* the password or access token: required for imap_conn_open;
	                         * never logged, never sent before TLS */
	imap_credential_cb credential; /* nullable; pools only: where the secret comes from
	                                * instead of password (which is then ignored) */
	void *credential_ctx;          /* borrowed by the pool, passed to credential */
	const char *ca_file;    /* nullable: extra trusted CA / self-signed cert (PEM), added to
	                         * the system trust store */
	unsigned timeout_ms;    /* connect, each read and each write; 0 -> 30000 */
	uint64_t max_literal;   /* largest literal accepted; 0 -> IMAP_DEFAULT_MAX_LITERAL */
	unsigned max_depth;     /* deepest parenthesised list accepted; 0 -> IMAP_DEFAULT_MAX_DEPTH */
	enum imap_compress compress; /* default IMAP_COMPRESS_ON (zero) */
};

#define IMAP_DEFAULT_TIMEOUT_MS 30000u
#define IMAP_DEFAULT_MAX_LITERAL (1024ull * 1024 * 1024) /* 1 GiB; body literals are streamed */
#define IMAP_DEFAULT_MAX_DEPTH 64u
/* Literals that are buffered in memory (everything except streamed body sections) are further
 * capped at this size, so hostile LIST/SEARCH/FETCH responses cannot exhaust memory. */
#define IMAP_MAX_BUFFERED_LITERAL (16u * 1024 * 1024)

struct imap_conn;

/* Connect (every getaddrinfo address in turn), do TLS as configured, read CAPABILITY, log in
 * with the mechanism cfg->auth calls for (see enum imap_auth; SASL-IR when offered).  A refused
 * OAuth2 token is -EACCES, and the error names the status and scope of the server's JSON error
 * challenge (which is answered with the dummy response the mechanism prescribes).  On success
 * *conn_r owns a new connection (free with imap_conn_close).  On failure returns -errno and,
 * when errmsg_r is not NULL, sets *errmsg_r to a newly allocated one-line reason (caller
 * g_free()s it). */
int imap_conn_open(const struct imap_config *cfg, struct imap_conn **conn_r, char **errmsg_r);

/* LOGOUT when the connection is still healthy (bounded by the timeout), then free everything.
 * NULL is a no-op. */
void imap_conn_close(struct imap_conn *conn);

/* Borrowed; valid until the next call on conn.  Empty string when nothing failed. */
const char *imap_conn_error(const struct imap_conn *conn);

/* True once the connection can no longer be used (BYE, I/O error, timeout, protocol error). */
bool imap_conn_is_broken(const struct imap_conn *conn);

/* Case-insensitive test of the current (post-TLS, post-login) capability list. */
bool imap_conn_has_cap(const struct imap_conn *conn, const char *cap);

/* ---- LIST -------------------------------------------------------------------------------- */

enum imap_folder_flags {
	IMAP_FOLDER_NOSELECT = 1u << 0,
	IMAP_FOLDER_HASCHILDREN = 1u << 1,
	IMAP_FOLDER_HASNOCHILDREN = 1u << 2,
	IMAP_FOLDER_NOINFERIORS = 1u << 3,
	IMAP_FOLDER_NONEXISTENT = 1u << 4,
	IMAP_FOLDER_MARKED = 1u << 5,
	IMAP_FOLDER_UNMARKED = 1u << 6,
	/* RFC 6154 special use */
	IMAP_FOLDER_ALL = 1u << 8,
	IMAP_FOLDER_ARCHIVE = 1u << 9,
	IMAP_FOLDER_DRAFTS = 1u << 10,
	IMAP_FOLDER_FLAGGED = 1u << 11,
	IMAP_FOLDER_JUNK = 1u << 12,
	IMAP_FOLDER_SENT = 1u << 13,
	IMAP_FOLDER_TRASH = 1u << 14,
};

struct imap_folder {
	char *raw_name;  /* the name exactly as on the wire (modified UTF-7); use it for EXAMINE */
	char *name;      /* decoded to UTF-8; NULL when raw_name is not valid modified UTF-7 */
	char delimiter;  /* hierarchy delimiter, '\0' for NIL (flat) */
	unsigned flags;  /* enum imap_folder_flags */
};

void imap_folder_free(struct imap_folder *folder); /* NULL is a no-op */

/* Set folder->name from folder->raw_name: its modified UTF-7 decoding, NULL when raw_name is
 * not modified UTF-7.  What imap_list does for every folder, and what a folder restored from
 * elsewhere (fs/state.c's saved list) must get too. */
void imap_folder_decode_name(struct imap_folder *folder);

/* LIST "" "*".  *folders_r is a new GPtrArray of struct imap_folder * with imap_folder_free as
 * its element free function (caller g_ptr_array_unref()s it).  special_use: the caller needs
 * the special-use attributes (IMAP_FOLDER_ALL ...): when the server offers SPECIAL-USE and
 * LIST-EXTENDED the command asks for them, LIST "" "*" RETURN (SPECIAL-USE), as RFC 6154
 * says a server need only send them then; otherwise (and without special_use) plain LIST,
 * in whose answers Dovecot and Gmail send them anyway. */
int imap_list(struct imap_conn *conn, bool special_use, GPtrArray **folders_r);

/* ---- EXAMINE ----------------------------------------------------------------------------- */

struct imap_mailbox_status {
	uint32_t uidvalidity;
	uint32_t uidnext;        /* 0 when the server did not send it */
	uint32_t exists;
	uint64_t highestmodseq;  /* 0 when the server has no CONDSTORE or sent NOMODSEQ */
};

/* EXAMINE (read-only select) the mailbox named raw_name (wire form, as in struct imap_folder).
 * The connection remembers the mailbox; UID SEARCH/FETCH then act on it. */
int imap_examine(struct imap_conn *conn, const char *raw_name, struct imap_mailbox_status *st_r);

/* Is QRESYNC (RFC 7162) enabled on conn, so that imap_examine_qresync can be used?  A
 * connection asks for it right after its login when the server offers QRESYNC and ENABLE
 * (the ENABLE is pipelined: opening costs no round trip more); true from then on unless the
 * server has declined.  Such a connection hears of expunges as VANISHED, never EXPUNGE. */
bool imap_conn_qresync(const struct imap_conn *conn);

/* The raw name of the mailbox currently examined, or NULL.  Borrowed. */
const char *imap_conn_mailbox(const struct imap_conn *conn);

/* The UIDVALIDITY that EXAMINE reported for that mailbox (0 when none is examined).  A caller
 * that reuses an examined connection must check it: a UID only names a message together with
 * its UIDVALIDITY. */
uint32_t imap_conn_uidvalidity(const struct imap_conn *conn);

/* ---- UID SEARCH -------------------------------------------------------------------------- */

/* UID SEARCH in the examined mailbox.  criteria is a programmer-written format: its text is
 * sent as-is after validation (atoms, spaces, parentheses only), and each "%s" is replaced by
 * the next vararg string sent as a quoted string or literal — so user input can never inject a
 * command.  When any argument is non-ASCII, "CHARSET UTF-8" is added.  Uses ESEARCH (RETURN
 * (ALL)) when the server offers it.  Example: imap_uid_search(c, &uids, "SUBJECT %s", word).
 * *uids_r is a new GArray of uint32_t, ascending (caller g_array_unref()s it).  Arguments
 * containing CR, LF or NUL are refused with -EINVAL. */
int imap_uid_search(struct imap_conn *conn, GArray **uids_r, const char *criteria, ...);

/* ---- UID FETCH --------------------------------------------------------------------------- */

struct imap_msg_attrs {
	uint32_t uid;
	uint64_t size;           /* RFC822.SIZE */
	int64_t internaldate;    /* INTERNALDATE as seconds since the epoch (UTC) */
	uint64_t modseq;         /* 0 unless CONDSTORE */
	char **flags;            /* NULL-terminated; borrowed for the duration of the callback */
	/* The server's identity of the message, asked along with the attributes when it offers
	 * one (X-GM-EXT-1: X-GM-MSGID, X-GM-THRID, X-GM-LABELS; OBJECTID, RFC 8474: EMAILID,
	 * THREADID), else NULL; all borrowed for the duration of the callback.  email_id and
	 * thread_id are printable ASCII without spaces (anything else is dropped); labels are
	 * decoded from modified UTF-7 to UTF-8 (kept as sent when not valid modified UTF-7),
	 * a label holding a control character is dropped. */
	const char *email_id;  /* X-GM-MSGID (decimal) or EMAILID */
	const char *thread_id; /* X-GM-THRID (decimal) or THREADID; NULL also for NIL */
	char **labels;         /* X-GM-LABELS, NULL-terminated; NULL when not Gmail */
};

/* The longest email_id or thread_id kept (RFC 8474's objectid is 1 to 255 characters). */
#define IMAP_IDENTITY_MAX 255

/* Free what imap_parse_attrs allocated in *at (the flags and labels arrays). */
void imap_msg_attrs_clear(struct imap_msg_attrs *at);

/* Called once per message; return 0 to go on, a negative errno to stop (the command is still
 * read to its end so the connection stays usable). */
typedef int (*imap_attrs_cb)(const struct imap_msg_attrs *attrs, void *ctx);

/* UID FETCH uidset (RFC822.SIZE INTERNALDATE FLAGS UID).  uidset is a sequence set such as
 * "1:*" or "3,5:9" (validated: digits, ',', ':', '*').  Responses for UIDs outside uidset are
 * ignored. */
int imap_uid_fetch_attrs(struct imap_conn *conn, const char *uidset, imap_attrs_cb cb, void *ctx);

/* Same, limited to messages whose MODSEQ is above modseq (RFC 7162 CHANGEDSINCE): only the
 * messages that changed (flags) or arrived since the mailbox had HIGHESTMODSEQ modseq.  Needs
 * the mailbox examined with CONDSTORE (imap_examine does that when the server offers it, and
 * then reports highestmodseq != 0); otherwise -EINVAL.  modseq 0 is imap_uid_fetch_attrs. */
int imap_uid_fetch_attrs_since(struct imap_conn *conn, const char *uidset, uint64_t modseq,
                               imap_attrs_cb cb, void *ctx);

/* A whole listing of the examined mailbox in one round trip: UID SEARCH ALL and UID FETCH 1:*
 * of the attributes, pipelined (both sent before either answer is read).  *uids_r as
 * imap_uid_search ALL; cb as imap_uid_fetch_attrs for every message.  The mailbox must not be
 * empty (EXISTS > 0): "1:*" of an empty mailbox is an error on some servers. */
int imap_uid_list_all(struct imap_conn *conn, GArray **uids_r, imap_attrs_cb cb, void *ctx);

/* What changed in the examined mailbox since a listing made when it had UIDNEXT uidnext and
 * HIGHESTMODSEQ modseq, in one round trip: with new_mail, UID FETCH uidnext:* of the
 * attributes; with modseq != 0, UID FETCH 1:uidnext-1 (CHANGEDSINCE modseq) (flag changes;
 * needs CONDSTORE as imap_uid_fetch_attrs_since); with uids_r not NULL, UID SEARCH ALL (which
 * UIDs are left after expunges); all pipelined.  cb as imap_uid_fetch_attrs for each FETCH
 * answer (a "n:*" also returns the highest UID when it is below n); *uids_r as
 * imap_uid_search ALL. */
int imap_uid_fetch_changes(struct imap_conn *conn, uint32_t uidnext, bool new_mail,
                           uint64_t modseq, GArray **uids_r, imap_attrs_cb cb, void *ctx);

/* A folder's first listing in one round trip: EXAMINE raw_name, UID SEARCH ALL and UID FETCH
 * 1:* of the attributes, pipelined.  *st_r as imap_examine (the connection then examines
 * raw_name); *uids_r and cb as imap_uid_list_all, except that an empty mailbox (EXISTS 0)
 * gives no UIDs whatever the SEARCH and FETCH answered.  The SEARCH and FETCH act on the
 * examined mailbox only if the server finished the EXAMINE first (RFC 3501 5.5): one that
 * answered them before its tagged answer to the EXAMINE gets -EAGAIN here, with the mailbox
 * examined and *st_r set; cb may have been called, so the caller starts its listing over with
 * imap_uid_list_all.  A name that needs a literal is examined first (two round trips). */
int imap_examine_list_all(struct imap_conn *conn, const char *raw_name,
                          struct imap_mailbox_status *st_r, GArray **uids_r, imap_attrs_cb cb,
                          void *ctx);

/* A range of UIDs, lo <= hi. */
struct imap_uid_range {
	uint32_t lo, hi;
};

/* Is uid in ranges (struct imap_uid_range, ascending, not overlapping: as
 * imap_examine_qresync returns them)?  Binary search. */
bool imap_uid_ranges_contain(const GArray *ranges, uint32_t uid);

/* What imap_examine_qresync reports, as it learns it. */
struct imap_resync_sink {
	/* a message whose flags changed since the given HIGHESTMODSEQ (flags NULL-terminated,
	 * borrowed for the call); may be a UID at or above the given UIDNEXT (which also comes
	 * to attrs), or one the caller never saw */
	int (*flags)(uint32_t uid, char **flags, void *ctx);
	/* every attribute (as imap_uid_fetch_attrs) of each message at or above UIDNEXT, and of
	 * the highest UID when it is below ("n:*") */
	imap_attrs_cb attrs;
	void *ctx;
};

/* Re-list raw_name in one round trip from a listing made when it had UIDVALIDITY uidvalidity,
 * HIGHESTMODSEQ modseq (non-zero) and UIDNEXT uidnext (non-zero), with QRESYNC (RFC 7162;
 * imap_conn_qresync must be true): EXAMINE raw_name (QRESYNC (uidvalidity modseq)), whose
 * answer names the messages expunged since (VANISHED (EARLIER)) and the flags of those
 * changed since, pipelined with UID FETCH uidnext:* of the attributes of new mail.  Callbacks
 * run only once the EXAMINE has ended OK with UIDVALIDITY uidvalidity: first sink->flags for
 * every change the EXAMINE reported, then sink->attrs.  *vanished_r: a new GArray of struct
 * imap_uid_range (caller unrefs), the UIDs reported expunged since modseq, ascending, merged;
 * it may name UIDs the caller never saw (servers may report more than were expunged).  Only
 * the EXAMINE's own answers count: a change the server reports later (during the FETCH) is
 * left to the next re-listing, whose modseq is this EXAMINE's HIGHESTMODSEQ.  *st_r as
 * imap_examine; the connection examines raw_name afterwards.
 * Returns 0; -ESTALE when the mailbox has another UIDVALIDITY (nothing delivered, the
 * answers to the FETCH belonged to another life: the caller lists it afresh); -EOPNOTSUPP
 * when the server refused the QRESYNC parameter (the connection then examines nothing); else
 * as imap_examine.  A server that answered the FETCH before finishing the EXAMINE gets the
 * FETCH again on its own; a name that needs a literal is examined on its own first (two
 * round trips either way). */
int imap_examine_qresync(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                         uint64_t modseq, uint32_t uidnext, struct imap_mailbox_status *st_r,
                         GArray **vanished_r, const struct imap_resync_sink *sink);

enum imap_section {
	IMAP_SECTION_FULL = 0, /* BODY.PEEK[] */
	IMAP_SECTION_HEADER,   /* BODY.PEEK[HEADER] */
};

/* Receives body literals in chunks as they arrive, so a 50 MB message never sits in memory.
 * For each message: begin (size = literal length), zero or more data calls, then end.  If the
 * connection fails part-way through a literal, end is NOT called for it and the fetch returns
 * an error: the sink must discard what it received since begin.  Any callback returning a
 * negative errno aborts the fetch (the connection is then broken). */
struct imap_body_sink {
	int (*begin)(void *ctx, uint32_t uid, uint64_t size);
	int (*data)(void *ctx, const void *buf, size_t len);
	int (*end)(void *ctx, uint32_t uid);
	void *ctx;
};

/* UID FETCH uidset (UID BODY.PEEK[section]<offset.length>).  length 0 means the whole section
 * (no partial).  Messages are delivered in the order the server sends them. */
int imap_uid_fetch_body(struct imap_conn *conn, const char *uidset, enum imap_section section,
                        uint64_t offset, uint64_t length, const struct imap_body_sink *sink);

/* EXAMINE raw_name and UID FETCH uidset (UID BODY.PEEK[]) into sink in one round trip
 * (pipelined): for a connection that does not examine the mailbox yet.  Bodies are delivered
 * only if the EXAMINE reports UIDVALIDITY uidvalidity; with another, nothing is delivered and
 * the result is -ESTALE (the connection examines the mailbox's new life; *st_r says which).
 * A server that answered the FETCH before it had finished the EXAMINE (its bodies came before
 * the EXAMINE's tagged answer: they may be another mailbox's) gets the FETCH again on its
 * own, after the EXAMINE (those early bodies are not delivered): the sink
 * must accept a message twice, as a retry would send it.  The EXAMINE's failure (-ENOENT: no
 * such mailbox) is returned as imap_examine's. */
int imap_examine_fetch_body(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                            const char *uidset, const struct imap_body_sink *sink,
                            struct imap_mailbox_status *st_r);

/* Convenience: the whole BODY.PEEK[] of one message into memory.  *body_r is new (caller
 * g_bytes_unref()s it).  -ENOENT when the server returned no body for uid. */
int imap_uid_fetch_message(struct imap_conn *conn, uint32_t uid, GBytes **body_r);

/* The same for a connection that does not examine raw_name yet: EXAMINE in the same round
 * trip, as imap_examine_fetch_body (-ESTALE when the mailbox has another UIDVALIDITY). */
int imap_examine_fetch_message(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                               uint32_t uid, GBytes **body_r, struct imap_mailbox_status *st_r);

/* ---- BODYSTRUCTURE: imap's own part tree (bodystructure.c) ------------------------------- */

/* A message's outline as the server's BODYSTRUCTURE (RFC 3501 7.4.2) gives it.  It is
 * advisory: servers send broken ones, so it is validated here, and whatever is not RFC 3501
 * grammar is refused (-EBADMSG), except for the tolerances listed at imap_bodystructure_parse.
 * This module knows nothing of MIME rules (which part is the body, what is an attachment):
 * it only reports what the server said. */
enum imap_part_kind {
	IMAP_PART_LEAF = 0,  /* a single part (text/plain, image/png, ...) */
	IMAP_PART_MULTIPART, /* multipart/<subtype>: parts holds its children */
	IMAP_PART_MESSAGE,   /* message/rfc822 (or message/global sent in the message form):
	                      * parts holds exactly one, the inner message's body */
};

/* A body or disposition parameter, exactly as sent (case and RFC 2231/2047 encodings kept). */
struct imap_param {
	char *name;
	char *value;
};

/* One part of the tree.  The whole tree is owned by its root (imap_part_free); every pointer
 * inside is owned by the tree. */
struct imap_part {
	enum imap_part_kind kind;
	/* The RFC 3501 6.4.5 part specifier: what BODY.PEEK[<section>] fetches this part with.
	 * The root: "" when it is a multipart (its children are "1", "2", ...), "1" when the
	 * message is a single part.  Children of a multipart with section s: s.1, s.2, ... ("1",
	 * "2", ... when s is "").  The body of a message/rfc822 part with section s: s itself
	 * when it is a multipart (its children s.1, s.2, ...), else s.1.  So a message part and
	 * its multipart body share a section; imap_part_find returns the message part. */
	char *section;
	char *type, *subtype; /* lowercased, never NULL (a multipart: "multipart", its subtype) */
	/* Body parameters of a leaf or message part; a multipart's extension parameters
	 * (boundary, ...) when the server sent them.  Names and values exactly as sent. */
	struct imap_param *params;
	unsigned n_params;
	char *id, *description; /* nullable: Content-ID, Content-Description as sent */
	char *encoding;         /* lowercased Content-Transfer-Encoding; NULL for a multipart */
	uint64_t size;          /* body-fld-octets: the encoded size (leaf, message); 0 multipart */
	uint64_t lines;         /* text/<any> and message parts: body-fld-lines; else 0 */
	char *disposition;      /* nullable, lowercased ("attachment", "inline", ...) */
	struct imap_param *disp_params; /* its parameters (filename, ...), exactly as sent */
	unsigned n_disp_params;
	/* multipart: its children (n_parts >= 1); message: exactly 1, the inner body; leaf: none
	 * (parts NULL, n_parts 0).  An array of structs, not of pointers. */
	struct imap_part *parts;
	unsigned n_parts;
	unsigned index; /* preorder position in the whole tree, root = 0: a small stable id */
};

/* Caps: a deeper or larger tree is refused with -EBADMSG (never a crash, never recursion on
 * the C stack beyond the cap).  Depth counts parts: a single-part message is depth 1, a
 * multipart with leaf children depth 2; a message/rfc822 part and its inner body are a level
 * each. */
#define IMAP_PART_MAX_DEPTH 32u
#define IMAP_PART_MAX_PARTS 10000u

/* Parse the text of a BODYSTRUCTURE value (the parenthesised list as sent, e.g. what follows
 * "BODYSTRUCTURE " in a FETCH answer, or imap_bodystructure_format's output; literals {n}
 * allowed; surrounding spaces allowed, nothing else around it).  It is read by the same
 * response parser and the same tree builder as a FETCH answer (list depth at most
 * IMAP_DEFAULT_MAX_DEPTH, strings bounded as in a response).
 * Returns 0 and a new tree in *root_r (imap_part_free), or -EBADMSG with *root_r NULL and,
 * when why_r is not NULL, a new one-line reason in *why_r (g_free).
 * Refused (-EBADMSG): anything that is not RFC 3501 body grammar, including a multipart with
 * no children (Gmail's ("ALTERNATIVE")), a NIL or a string where a part belongs, a missing
 * subtype, encoding, size or line count, an odd-length parameter list, a string with a NUL
 * byte, more than IMAP_PART_MAX_DEPTH levels or IMAP_PART_MAX_PARTS parts.
 * Tolerated (parsed): a bare-string disposition ("attachment" where ("attachment" NIL)
 * belongs: the disposition with no parameters, as Exchange sends it); NIL or an empty list
 * () for an empty parameter list (body, multipart or disposition parameters); missing
 * extension data (a part that ends after its size or line count, a multipart after its
 * subtype); zero-length parts (size 0, as Outlook.com sends for vCalendar parts).  The MD5,
 * language, location and further extension data are checked for shape and not kept. */
int imap_bodystructure_parse(const char *text, size_t len, struct imap_part **root_r,
                             char **why_r);

/* The canonical text of a tree, one that imap_bodystructure_parse reads back into the same
 * tree (every field of struct imap_part, index and section included): RFC 3501 grammar with
 * strings quoted (literals for those with CR or LF), an envelope of NILs for message parts
 * (the tree keeps no envelope), MD5 NIL.  New string (g_free); NULL for NULL. */
char *imap_bodystructure_format(const struct imap_part *root);

/* Free a whole tree (as returned by imap_bodystructure_parse or imap_part_copy).  NULL is a
 * no-op.  Never call it on a part inside a tree. */
void imap_part_free(struct imap_part *root);

/* A deep copy of the tree under root (which may be a part inside a tree: the copy keeps its
 * section and index).  New tree (imap_part_free); NULL for NULL. */
struct imap_part *imap_part_copy(const struct imap_part *root);

/* The part of the tree whose section is section (exact match; "" is the root of a multipart
 * message), the first in preorder when two share it (a message part before its multipart
 * body).  Borrowed from the tree; NULL when there is none. */
const struct imap_part *imap_part_find(const struct imap_part *root, const char *section);

/* The value of p's body parameter name (case-insensitive ASCII match of the name; the first
 * when sent twice).  Borrowed; NULL when absent. */
const char *imap_part_param(const struct imap_part *p, const char *name);

/* ---- fetching pieces of messages (pieces.c) ---------------------------------------------- */

enum imap_item_kind {
	IMAP_ITEM_BODY = 0,    /* BODY.PEEK[<section>]; section "" = BODY.PEEK[] (whole message) */
	IMAP_ITEM_HEADER,      /* BODY.PEEK[HEADER] (section "") or BODY.PEEK[<s>.HEADER]        */
	IMAP_ITEM_MIME,        /* BODY.PEEK[<s>.MIME] (section not "")                           */
	IMAP_ITEM_BINARY,      /* BINARY.PEEK[<s>] (RFC 3516: decoded by the server; answers may
	                        * be literal8 ~{n})                                               */
	IMAP_ITEM_BINARY_SIZE, /* BINARY.SIZE[<s>]: the decoded size, a number (no literal)       */
};

struct imap_fetch_item {
	enum imap_item_kind kind;
	const char *section;     /* borrowed: "" or a part number "1.2" (digits and dots,
	                          * no empty or zero component, at most 128 characters) */
	uint64_t offset, length; /* BODY and BINARY only: the partial <offset.length> when
	                          * length > 0 (the answer is named by its origin: BODY[2]<0>) */
};

/* One UID FETCH: UID FETCH <uid> (UID [BODYSTRUCTURE] <items...>), in that order. */
struct imap_fetch_request {
	uint32_t uid;                        /* a single UID, not 0 */
	bool bodystructure;                  /* ask for BODYSTRUCTURE too */
	const struct imap_fetch_item *items; /* borrowed, n_items of them (may be 0) */
	unsigned n_items;
	/* out: this command's own outcome: 0 (tagged OK; an item the server did not answer is
	 * simply not delivered: the caller notices); -EBADMSG for a tagged NO with the response
	 * code UNKNOWN-CTE (RFC 3516) or PARSE ("the server cannot give this piece: take the whole
	 * message"); another NO: -ENOENT (-EACCES with NOPERM and the like), BAD: -EPROTO; a
	 * command the connection failed before answering: the connection's error. */
	int result;
	/* out: a FETCH response for uid came, with or without the items asked (a server that
	 * answers without them is not telling "expunged") */
	bool answered;
};

/* Where the answers go.  req is the index into the reqs array, item the index into its
 * items.  Every callback may be NULL (those answers are then not delivered); any callback
 * returning a negative errno aborts the fetch with that error, and the connection is then
 * broken (as with imap_body_sink).  Answers come in the order the server sends them: within
 * one FETCH response, the streamed literals come as they arrive, and structure, size and
 * the values that were not streamed (quoted strings, NIL, a literal before the UID) once the
 * whole response has been read. */
struct imap_piece_sink {
	/* The BODYSTRUCTURE of request req: its tree, borrowed for the call (copy it with
	 * imap_part_copy to keep it), and err 0; or root NULL and err -EBADMSG when it is
	 * refused (imap_conn_error(conn) says why during the call; the connection stays
	 * usable). */
	int (*structure)(void *ctx, unsigned req, const struct imap_part *root, int err);
	/* The BINARY.SIZE answering items[item] of request req. */
	int (*size)(void *ctx, unsigned req, unsigned item, uint64_t size);
	/* The literal (or quoted string, or NIL = empty) answering items[item] of request req,
	 * streamed as imap_body_sink does: begin (size = its length), data... (the bytes of that
	 * item, in order), end.  begin may return 1 to skip that value (no data or end calls).
	 * begin, data and end are all set or all NULL.  If the connection fails part-way
	 * through, end is NOT called: the sink discards what it got since begin.  Nothing large is buffered, except a literal
	 * that comes before its FETCH response's UID (then kept in memory, up to max_literal). */
	int (*begin)(void *ctx, unsigned req, unsigned item, uint64_t size);
	int (*data)(void *ctx, const void *buf, size_t len);
	int (*end)(void *ctx, unsigned req, unsigned item);
	void *ctx;
};

/* Requests run as one pipelined round (the connection keeps at most 64 of them written ahead
 * of their answers, imap-private.h's IMAP_PIPELINE_WINDOW); more go in further rounds of this
 * many, which bounds the bookkeeping of a round, not what is in flight. */
#define IMAP_PIECES_MAX_IN_FLIGHT 1024u

/* Send the n requests pipelined on the examined mailbox (rounds of at most
 * IMAP_PIECES_MAX_IN_FLIGHT, each one pipeline) and deliver every answer to sink.
 * Matching: a FETCH response is matched to a request by its UID and to an item by the item's
 * name (BODY[1.2.MIME], BODY[HEADER], BINARY[1], BINARY.SIZE[1], BODY[2]<0> for a partial:
 * the origin octet only), case-insensitively.  Names the request did not ask for, and FETCH
 * responses for a UID no unfinished request asked for (flag updates), are ignored.  When
 * several unfinished requests ask for the same item of the same UID, an answer goes to the
 * first of them not yet answered for that item (servers answer pipelined FETCHes in order);
 * BODYSTRUCTURE likewise.
 * Returns 0 when the connection stayed usable (each request's outcome in reqs[i].result),
 * else the connection's -errno (-ECONNABORTED when the server closed it, e.g. Dovecot's
 * imap_fetch_failure = disconnect-immediately after a FETCH it could not serve; the requests
 * answered before keep their result and deliveries).  Nothing is sent, and -EINVAL returned
 * (every result -EINVAL), for an invalid request: uid 0, a bad section, MIME of "", a partial
 * on another kind than BODY or BINARY, a BINARY or BINARY_SIZE item when the server does not
 * offer BINARY (imap_conn_has_cap(conn, "BINARY")), no mailbox examined.
 * A BODYSTRUCTURE nested deeper than the connection's max_depth fails the connection
 * (-EPROTO) as any over-deep response does; one within it but past IMAP_PART_MAX_DEPTH or
 * IMAP_PART_MAX_PARTS only reaches the sink as refused (-EBADMSG). */
int imap_uid_fetch_pieces(struct imap_conn *conn, struct imap_fetch_request *reqs, unsigned n,
                          const struct imap_piece_sink *sink);

/* The same with EXAMINE raw_name pipelined before them, gated exactly as
 * imap_examine_fetch_body is: answers are delivered only once the EXAMINE has ended OK with
 * UIDVALIDITY uidvalidity; with another one: -ESTALE, nothing delivered (the connection
 * examines the mailbox's new life; *st_r says which).  A server that answered before it had
 * finished the EXAMINE gets the requests again on their own, after it (those early answers
 * are not delivered; the sink may see an item twice, as a retry would send it).  The
 * EXAMINE's failure (-ENOENT: no such mailbox) is returned as imap_examine's.  For a
 * connection that does not examine raw_name yet. */
int imap_examine_fetch_pieces(struct imap_conn *conn, const char *raw_name, uint32_t uidvalidity,
                              struct imap_fetch_request *reqs, unsigned n,
                              const struct imap_piece_sink *sink,
                              struct imap_mailbox_status *st_r);

/* ---- search queries (search.c) and running them (searchrun.c) --------------------------- */

/* A search query: a tree of RFC 3501 search keys, built from typed values and never from
 * command text, so no value can change the command that is sent (strings become quoted
 * strings or literals, keywords must be atoms, dates and numbers are formatted here).
 * Opaque; free with imap_search_free (NULL is a no-op).  Constructors that take a value
 * return 0, or -EINVAL (and *q_r NULL) for a value that cannot be sent: CR, LF, invalid UTF-8,
 * a keyword that is not an atom, an impossible date, a number over 32 bits. */
enum imap_search_key {
	/* no argument (imap_search_new_flag) */
	IMAP_SEARCH_ALL = 0, IMAP_SEARCH_ANSWERED, IMAP_SEARCH_DELETED, IMAP_SEARCH_DRAFT,
	IMAP_SEARCH_FLAGGED, IMAP_SEARCH_NEW, IMAP_SEARCH_OLD, IMAP_SEARCH_RECENT,
	IMAP_SEARCH_SEEN, IMAP_SEARCH_UNANSWERED, IMAP_SEARCH_UNDELETED, IMAP_SEARCH_UNDRAFT,
	IMAP_SEARCH_UNFLAGGED, IMAP_SEARCH_UNSEEN,
	/* a substring (imap_search_new_string) */
	IMAP_SEARCH_BCC, IMAP_SEARCH_BODY, IMAP_SEARCH_CC, IMAP_SEARCH_FROM, IMAP_SEARCH_SUBJECT,
	IMAP_SEARCH_TEXT, IMAP_SEARCH_TO,
	IMAP_SEARCH_X_GM_RAW, /* Gmail's search syntax (X-GM-EXT-1 servers only) */
	IMAP_SEARCH_HEADER,   /* imap_search_new_header */
	IMAP_SEARCH_KEYWORD, IMAP_SEARCH_UNKEYWORD, /* imap_search_new_keyword */
	/* a date, day precision, as the server sees it (imap_search_new_date) */
	IMAP_SEARCH_BEFORE, IMAP_SEARCH_ON, IMAP_SEARCH_SINCE, IMAP_SEARCH_SENTBEFORE,
	IMAP_SEARCH_SENTON, IMAP_SEARCH_SENTSINCE,
	IMAP_SEARCH_LARGER, IMAP_SEARCH_SMALLER, /* imap_search_new_number (octets) */
	IMAP_SEARCH_UID,                         /* imap_search_new_uid */
	IMAP_SEARCH_NOT, IMAP_SEARCH_OR, IMAP_SEARCH_AND, /* imap_search_not/or/and */
};

struct imap_search;

struct imap_search *imap_search_new_flag(enum imap_search_key key); /* NULL: not a flag key */
int imap_search_new_string(enum imap_search_key key, const char *value, struct imap_search **q_r);
int imap_search_new_header(const char *field, const char *value, struct imap_search **q_r);
int imap_search_new_keyword(enum imap_search_key key, const char *keyword,
                            struct imap_search **q_r);
int imap_search_new_date(enum imap_search_key key, int year, int month, int day,
                         struct imap_search **q_r);
int imap_search_new_number(enum imap_search_key key, uint64_t n, struct imap_search **q_r);
int imap_search_new_uid(const char *uidset, struct imap_search **q_r);
/* Combinators take their operands (transfer full) and return a new tree.  imap_search_and
 * accepts NULL for either side (then returns the other). */
struct imap_search *imap_search_not(struct imap_search *q);
struct imap_search *imap_search_or(struct imap_search *a, struct imap_search *b);
struct imap_search *imap_search_and(struct imap_search *a, struct imap_search *b);
void imap_search_free(struct imap_search *q);

/* Parse an RFC 3501 search expression ("OR FROM alice FROM bob", "NOT SEEN", parentheses,
 * quoted strings with \" and \\) into a new tree.  Message sequence numbers and literals are
 * refused; at most 32 levels of nesting and 256 keys.  On failure -EINVAL and, if err_r, a
 * new one-line reason (g_free). */
int imap_search_parse(const char *expr, struct imap_search **q_r, char **err_r);
/* "1-Jan-2025" (day of one or two digits, month name any case) -> numbers. */
bool imap_search_parse_date(const char *s, int *year_r, int *month_r, int *day_r);
/* The criteria as they would be sent (strings quoted, literals shown inline), for logs and
 * tests.  New string (g_free). */
char *imap_search_describe(const struct imap_search *q);
bool imap_search_needs_utf8(const struct imap_search *q); /* any non-ASCII value */
bool imap_search_uses_gmail(const struct imap_search *q); /* any X-GM-RAW key */

/* UID SEARCH q in the examined mailbox.  *uids_r as imap_uid_search.  CHARSET UTF-8 is added
 * when a value is non-ASCII; a server that refuses it ([BADCHARSET]) gives -EILSEQ. */
int imap_uid_search_query(struct imap_conn *conn, const struct imap_search *q, GArray **uids_r);

/* One folder of a search run (imap_search_folders).  raw_name is borrowed; the rest is set by
 * the run: result 0 or -errno for this folder alone (-ENOENT: no such mailbox, -EILSEQ:
 * charset refused, -EIO: the server said NO or BAD to the search), st as imap_examine, uids the
 * hits ascending (new GArray of uint32_t, caller unrefs; NULL on failure). */
struct imap_search_job {
	const char *raw_name;
	int result;
	struct imap_mailbox_status st;
	GArray *uids;
};

/* Called with the attributes of each hit of jobs[job] (see imap_attrs_cb). */
typedef int (*imap_search_attrs_cb)(unsigned job, const struct imap_msg_attrs *attrs, void *ctx);

/* Search each of the n folders for q and fetch the attributes of the hits, in as few round
 * trips as the server allows:
 *   - with SEARCHRES (RFC 5182): EXAMINE, UID SEARCH RETURN (SAVE ALL) and UID FETCH $ per
 *     folder, every folder's three pipelined: one round trip for all of them (a folder the
 *     connection examines already, with n == 1, skips its EXAMINE);
 *   - with MULTISEARCH (RFC 7377) and n > 1: one ESEARCH IN (mailboxes ...), then EXAMINE and
 *     UID FETCH of the hits of each folder that has any, pipelined: two;
 *   - otherwise: EXAMINE and UID SEARCH per folder, pipelined, then EXAMINE and UID FETCH of the
 *     hits, pipelined: two.
 * Commands that need a synchronising literal (a non-ASCII value on a server without LITERAL+)
 * run one after another instead.  Answers a server sends about a folder before it has finished
 * examining it are never used (that folder is asked again on its own), nor are the hits of a
 * folder whose UIDVALIDITY changed between its SEARCH and its FETCH.  Returns 0 when the
 * connection stayed usable (each job's own outcome is in jobs[i].result), else the connection's
 * -errno.  The connection examines one of the folders (or none) afterwards.  Gmail's X-GM-RAW
 * is sent only when the server offers X-GM-EXT-1 (else every job gets -EOPNOTSUPP). */
int imap_search_folders(struct imap_conn *conn, const struct imap_search *q,
                        struct imap_search_job *jobs, unsigned n, imap_search_attrs_cb cb,
                        void *ctx);

/* ---- quota (quota.c) --------------------------------------------------------------------- */

/* One resource of a quota (RFC 9208): usage and limit in its own unit (STORAGE: KiB, 1024
 * octets; MESSAGE: messages).  present false: no quota root limits it. */
struct imap_quota_resource {
	bool present;
	uint64_t usage, limit;
};

/* What limits a mailbox: of every quota root of it, for each resource, the root that leaves the
 * least (limit - usage; 0 when usage is at or above the limit).  roots: the number of roots
 * that answered (0: none, nothing present). */
struct imap_quota {
	unsigned roots;
	struct imap_quota_resource storage; /* STORAGE */
	struct imap_quota_resource messages; /* MESSAGE */
};

/* GETQUOTAROOT raw_name: the quota of the mailbox (RFC 9208 and RFC 2087 servers answer
 * alike).  -EOPNOTSUPP, with nothing sent, when the server does not offer QUOTA; a tagged NO
 * (no such mailbox, or quotas not available to this user) as any NO: -ENOENT, -EACCES. */
int imap_getquotaroot(struct imap_conn *conn, const char *raw_name, struct imap_quota *q_r);

/* ---- misc -------------------------------------------------------------------------------- */

int imap_noop(struct imap_conn *conn);

/* Modified UTF-7 (RFC 3501 5.1.3).  Both return 0 and a new string in *out_r (g_free), or
 * -EINVAL for malformed input: unterminated '&', base64 used for printable ASCII, invalid
 * UTF-16, NUL, invalid UTF-8 on encode. */
int imap_mutf7_decode(const char *in, char **out_r);
int imap_mutf7_encode(const char *utf8, char **out_r);

/* ---- waiting for changes: NOTIFY (RFC 5465) and IDLE (RFC 2177), idle.c -------------- */

/* NOTIFY SET [(SELECTED EVENTS)] (MAILBOXES (raw_names...) EVENTS), EVENTS being (MessageNew
 * MessageExpunge FlagChange): the server then reports new and expunged mail of those
 * mailboxes as untagged STATUS responses, at any time, and with selected, changes of the
 * mailbox examined on conn (whichever it is, now or later) as EXISTS, EXPUNGE and FETCH, as
 * during IDLE: Dovecot finds those from the mailbox's own files, which is more dependable
 * than the mailbox list index it watches for the others (see fs/watch.c).  A mailbox both
 * selected and named is reported as the selected one.  With CONDSTORE offered, also ENABLE CONDSTORE, so that a change of flags alone moves
 * a HIGHESTMODSEQ the server reports too (Dovecot sends no event for a flag change in a
 * mailbox that is not selected otherwise).  n == 0 and !selected: NOTIFY NONE.  changed (nullable, as for
 * imap_idle_wait) collects the changes reported while the commands run.  Setting the same
 * NOTIFY again is how a caller renews it (Dovecot 2.3.19 stops reporting other mailboxes'
 * changes once its mailbox list index log has been rotated; a new SET watches anew).  -EOPNOTSUPP without NOTIFY;
 * -EINVAL for a name that cannot be sent. */
int imap_notify_set(struct imap_conn *conn, bool selected, const char *const *raw_names,
                    unsigned n, GHashTable *changed);

/* imap_examine and imap_noop for a watching connection: changes reported while the command
 * runs (STATUS of other mailboxes under NOTIFY) are added to changed (nullable) as in
 * imap_idle_wait, instead of being dropped. */
int imap_watch_examine(struct imap_conn *conn, const char *raw_name, GHashTable *changed);
int imap_watch_noop(struct imap_conn *conn, GHashTable *changed);

/* IDLE: sends the command and waits for the server's continuation request.  Until
 * imap_idle_done the connection may only be used with imap_idle_wait.  -EOPNOTSUPP without
 * IDLE. */
int imap_idle_begin(struct imap_conn *conn);

/* During IDLE: wait for the server to report a change, for wake_fd (-1: none) to become
 * readable, or for timeout_ms.  Every mailbox the responses name is added to changed (a set
 * of new strings: g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)): the examined
 * mailbox for EXISTS, EXPUNGE, FETCH and VANISHED, the named one for STATUS.  Returns as soon
 * as the responses already received are read: 0 (changed may be empty: the timeout passed or
 * only keep-alives came), 1 when wake_fd is readable (it is not read), or -errno (the
 * connection is then broken).  No busy waiting: one poll() on the socket and wake_fd. */
int imap_idle_wait(struct imap_conn *conn, int wake_fd, unsigned timeout_ms, GHashTable *changed);

/* DONE, and read to the IDLE's tagged answer; changes reported meanwhile go to changed
 * (nullable) as in imap_idle_wait. */
int imap_idle_done(struct imap_conn *conn, GHashTable *changed);

/* ---- connection pool (thread-safe) ------------------------------------------------------- */

struct imap_pool;

/* Copies cfg.  Opens no connection yet (call imap_pool_acquire to check credentials).  With
 * cfg->credential the pool asks it for the secret at every connect; when the server refuses
 * it (-EACCES), the pool asks once for a fresh one (passing the refused secret) and logs in
 * again, so an expired access token is replaced without the caller noticing.  A secret still
 * refused is -EACCES with the server's reason, and backoff as for an outage. */
int imap_pool_new(const struct imap_config *cfg, unsigned max_conns, struct imap_pool **pool_r);

/* Exclusive use of a logged-in connection until imap_pool_release().  Waits at most the
 * configured timeout for a free slot (-EBUSY when none came free: every connection stayed in
 * use, which says nothing about the server).  On failure -errno and, if errmsg_r, a g_free()able
 * reason.  Reconnects after failures with exponential backoff (logged once per outage).  A
 * server that refuses one more connection with [LIMIT] (-EUSERS) while the pool has others
 * is no failure: the pool uses the ones it has (for a minute, then tries again) and the
 * caller waits for one of them. */
int imap_pool_acquire(struct imap_pool *pool, struct imap_conn **conn_r, char **errmsg_r);

/* Forget the reconnection back-off: the next imap_pool_acquire() tries to connect at once
 * (someone else has just reached the server). */
void imap_pool_retry_now(struct imap_pool *pool);

/* The server has stopped answering (a command on one of the process's connections to it
 * timed out): make every call now waiting on a connection of this pool fail at once with
 * -ECONNABORTED instead of waiting out its own timeout (their sockets are shut down; idle
 * connections are closed when next taken), and open no new connection for the timeout
 * (imap_pool_acquire fails at once with -ETIMEDOUT and why) unless imap_pool_retry_now says
 * the server answers again.  A connection being opened at that moment waits for its own
 * timeout.  Logs nothing.  Thread-safe; why is copied. */
void imap_pool_interrupt(struct imap_pool *pool, const char *why);

/* Give conn back (a broken one is closed).  NULL conn is a no-op. */
void imap_pool_release(struct imap_pool *pool, struct imap_conn *conn);

/* Close conn (LOGOUT when healthy) instead of giving it back: the caller wants a fresh
 * session next time (a connection whose state it cannot undo).  NULL is a no-op. */
void imap_pool_discard(struct imap_pool *pool, struct imap_conn *conn);

/* Closes (LOGOUT) every idle connection and frees the pool.  All connections must have been
 * released.  NULL is a no-op. */
void imap_pool_free(struct imap_pool *pool);

#endif /* IMAPFS_IMAP_H */
