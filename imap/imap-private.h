/* imap-private.h — internals of the IMAP client, shared by the imap/ sources and unit tests.
 *
 * Nothing here is part of the public contract (imap.h).  It holds the response parser, the
 * argument encoder that turns user strings into quoted strings or literals, the search-criteria
 * formatter, the outcome→errno mapping, and struct imap_conn itself so that commands.c and
 * conn.c can share it.  Tests include it to reach the pieces that need no network.
 */
#ifndef IMAPFS_IMAP_PRIVATE_H
#define IMAPFS_IMAP_PRIVATE_H

#include "imap.h"

#include <stdarg.h>
#include <sys/socket.h>
#include <netdb.h>

/* ---- response parser ------------------------------------------------------------------ */

/* Largest amount of non-literal data one response may carry (the line itself plus the lines
 * between its literals).  A UID SEARCH answer for a mailbox with a million messages is ~10 MB,
 * so the cap is far above that, yet finite so a hostile server cannot grow the buffer forever. */
#define IMAP_MAX_RESPONSE_TEXT (64u * 1024 * 1024)
/* Largest number of tokens (atoms, strings, lists) in one response.  Each costs a 16-byte
 * struct imap_arg, so this bounds the tree of a 64 MiB line of one-digit atoms at 128 MiB. */
#define IMAP_MAX_RESPONSE_TOKENS (8u * 1024 * 1024)

enum imap_arg_type {
	IMAP_ARG_ATOM = 0, /* includes numbers and bracketed atoms like BODY[HEADER]<0> */
	IMAP_ARG_STRING,   /* quoted string or buffered literal (may contain NUL if literal) */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
	IMAP_ARG_STREAMED, /* a body literal that went to the body sink; len = its size if it fit */
};

/* One node of a parsed response.  Strings are NUL-terminated (a literal may also contain NUL
 * bytes, hence len).  Owned by the struct imap_response they belong to. */
struct imap_arg {
	uint32_t type;
	uint32_t len; /* string length, or number of elements for a list */
	union {
		char *str;              /* ATOM, STRING */
		struct imap_arg *items; /* LIST: len elements */
		uint64_t streamed_size; /* STREAMED */
	} u;
};

enum imap_response_kind {
	IMAP_RESP_UNTAGGED = 0, /* "* ..." */
	IMAP_RESP_TAGGED,       /* "A0001 ..." */
	IMAP_RESP_CONTINUATION, /* "+ ..." */
};

enum imap_status {
	IMAP_STATUS_NONE = 0, /* not a status response (e.g. "* 3 EXISTS", "* LIST ...") */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_BYE,
	IMAP_STATUS_PREAUTH,
};

/* A complete response.  For status responses (OK/NO/BAD/BYE/PREAUTH) args holds the tag-less
 * words before the status (e.g. nothing) and code/text hold the optional "[...]" response code
 * (without brackets) and the human-readable text.  For other responses args holds every token
 * after the tag ("*"): "* 3 EXISTS" -> args = [3, EXISTS]; for a continuation text holds the
 * rest of the line.  Free with imap_response_free. */
struct imap_response {
	enum imap_response_kind kind;
	char *tag;               /* TAGGED only, else NULL */
	enum imap_status status; /* status keyword, if any */
	char *code;              /* nullable: response code without brackets, e.g. "UIDNEXT 5" */
	char *text;              /* nullable: resp-text or continuation text */
	struct imap_arg *args;
	unsigned nargs;
	GStringChunk *strings; /* backing store of every string in args (never moves) */
};

void imap_response_free(struct imap_response *resp);

/* Results of imap_parser_feed():
 *   IMAP_PARSE_OK        — one complete response is in *resp_r; *consumed_r bytes of the input
 *                          were used (the rest belongs to later responses: feed it again).
 *   IMAP_PARSE_NEED_MORE — every byte was consumed and the response is not complete yet; call
 *                          again with more input.  Partial state is kept in the parser.
 *   IMAP_PARSE_BAD       — the input is not a valid response or exceeds a cap (literal size,
 *                          list depth, response text, token count) or a body-sink callback
 *                          failed.  imap_parser_error() says why, imap_parser_errno() gives
 *                          -EPROTO or the callback's error.  The parser must then be reset
 *                          (the stream can no longer be trusted). */
enum imap_parse_result {
	IMAP_PARSE_OK = 0,
	IMAP_PARSE_NEED_MORE,
	IMAP_PARSE_BAD,
};

/* Streams body literals of FETCH responses.  A literal is streamed when it is the value of a
 * BODY[...] or BINARY[...] item of an untagged FETCH response whose UID came before it.  begin
 * gets the item's name as sent (e.g. "BODY[1.2]<0>", "BINARY[2]"; borrowed for the call) and
 * may return 1 to skip the literal (its bytes are discarded, no data/end calls).  Otherwise
 * the callbacks are those of struct imap_body_sink.  If the UID comes after the body (legal but
 * unusual) the literal is buffered (capped at max_literal) and the caller delivers it. */
struct imap_parser_stream {
	int (*begin)(void *ctx, uint32_t uid, const char *item, uint64_t size);
	int (*data)(void *ctx, const void *buf, size_t len);
	int (*end)(void *ctx, uint32_t uid);
	void *ctx;
};

struct imap_parser;

/* max_literal: largest literal accepted at all (streamed body literals); buffered literals are
 * further capped at IMAP_MAX_BUFFERED_LITERAL.  max_depth: deepest list nesting.  0 picks the
 * defaults of imap.h.  Free with imap_parser_free. */
struct imap_parser *imap_parser_new(uint64_t max_literal, unsigned max_depth);
void imap_parser_free(struct imap_parser *p);
/* Forget any partial response (after BAD, or after a connection was replaced). */
void imap_parser_reset(struct imap_parser *p);
/* Streaming target for body literals; NULL (the default) buffers everything. Borrowed. */
void imap_parser_set_stream(struct imap_parser *p, const struct imap_parser_stream *stream);
/* For tests: lower the response-text cap. */
void imap_parser_set_max_text(struct imap_parser *p, size_t max_text);
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const uint8_t *buf, size_t len,
                                        size_t *consumed_r, struct imap_response **resp_r);
/* True while a literal is being received (so EOF now means a truncated literal). */
bool imap_parser_in_literal(const struct imap_parser *p);
const char *imap_parser_error(const struct imap_parser *p); /* borrowed */
int imap_parser_errno(const struct imap_parser *p);

/* Helpers over parsed args. */
bool imap_arg_is_atom(const struct imap_arg *arg, const char *word); /* case-insensitive */
/* Atom or string as text (NULL for lists/NIL/streamed).  Borrowed from the response. */
const char *imap_arg_str(const struct imap_arg *arg);
/* Parse an unsigned decimal number (atom) with overflow check; false if not one. */
bool imap_arg_number(const struct imap_arg *arg, uint64_t *n_r);
bool imap_parse_number(const char *s, size_t len, uint64_t *n_r);
/* Split a response code ("CAPABILITY IMAP4rev1 X", "PERMANENTFLAGS (\Seen)") into args by
 * running the parser over it.  NULL when unparsable.  Free with imap_response_free. */
struct imap_response *imap_parse_code(const char *code);

/* ---- BODYSTRUCTURE (bodystructure.c) ---------------------------------------------------- */

/* The tree of a BODYSTRUCTURE value straight from a FETCH answer's arg (the list after the
 * BODYSTRUCTURE atom): as imap_bodystructure_parse, without re-serialising. */
int imap_bodystructure_from_arg(const struct imap_arg *arg, struct imap_part **root_r,
                                char **why_r);

/* ---- arguments and commands ----------------------------------------------------------- */

/* Whether the server lets us send literals without waiting for a continuation. */
enum imap_literal_mode {
	IMAP_LITERAL_SYNC = 0, /* {n} then wait for "+" */
	IMAP_LITERAL_PLUS,     /* LITERAL+: {n+} for any size */
	IMAP_LITERAL_MINUS,    /* LITERAL-: {n+} for n <= 4096, else {n} */
};

/* A command on its way to the wire: chunks separated by synchronising literals.  After
 * sending chunk i (i < last) the client must wait for a continuation request before chunk
 * i+1.  The last chunk ends with CRLF. */
struct imap_cmd {
	GPtrArray *chunks; /* of GString * */
	bool sensitive;    /* carries credentials: the trace shows only log_prefix */
	char *log_prefix;  /* what the trace shows for a sensitive command, e.g. "LOGIN" */
	const char *what;  /* static: names the command in error messages, e.g. "login" */
	/* nullable, AUTHENTICATE only: a continuation request that comes after the whole command
	 * was sent is a SASL challenge (text: what follows "+ ").  The hook appends the answer
	 * (base64, no CRLF) to reply, which is sent and traced redacted; -errno instead fails
	 * the command and breaks the connection. */
	int (*challenge)(void *ctx, const char *text, GString *reply);
	void *challenge_ctx;
	/* out, set by imap_conn_run_pipelined when the command's tagged answer comes: its status
	 * and response code (new, freed with the command; NULL when it had none) */
	enum imap_status final_status;
	char *final_code;
};

struct imap_cmd *imap_cmd_new(void);
void imap_cmd_free(struct imap_cmd *cmd);
void imap_cmd_add_text(struct imap_cmd *cmd, const char *text);
/* Append s as a quoted string (printable ASCII) or a literal (anything else).  -EINVAL if s
 * contains CR, LF or NUL (len bytes are examined, so an embedded NUL is caught). */
int imap_cmd_add_string(struct imap_cmd *cmd, const char *s, size_t len,
                        enum imap_literal_mode mode);
void imap_cmd_finish(struct imap_cmd *cmd); /* appends CRLF */

/* Build "UID SEARCH [RETURN (ALL)] [CHARSET UTF-8] <criteria with %s args>" into cmd (after
 * the tag).  The criteria text may contain only atom characters, spaces and parentheses (and
 * "%s"); anything else is -EINVAL, as is an argument with CR, LF or NUL. */
int imap_format_search(struct imap_cmd *cmd, bool esearch, enum imap_literal_mode mode,
                       const char *criteria, va_list ap);

/* Validate a UID set ("1:*", "3,5:9"). */
bool imap_uidset_valid(const char *set);
/* Parse a sequence set of numbers (no '*') into ascending uint32s appended to out (ESEARCH ALL
 * result).  Ranges may be written high:low.  false if malformed or absurdly large (more than
 * max_count numbers). */
bool imap_seqset_expand(const char *set, GArray *out, size_t max_count);
/* Append the ranges of a sequence set of numbers (no '*'; "a:b" in either order) to ranges
 * (struct imap_uid_range), as written: no expansion, so "1:4294967295" is one entry.  false
 * if malformed. */
bool imap_seqset_ranges(const char *set, GArray *ranges);
/* Sort ranges and merge overlapping or adjacent ones (imap_uid_ranges_contain needs that). */
void imap_uid_ranges_normalise(GArray *ranges);
/* Does uidset (validated) contain uid?  '*' matches anything from its range start. */
bool imap_uidset_contains(const char *set, uint32_t uid);

/* ---- SASL (sasl.c) -------------------------------------------------------------------- */

/* Log in on conn (capabilities known) with the first mechanism of the table that fits
 * cfg->auth and that the server offers; see imap_conn_open for the errors. */
int imap_sasl_login(struct imap_conn *conn, const struct imap_config *cfg);

/* The value of key in a JSON object such as an OAuth2 error challenge
 * ({"status":"401","schemes":"bearer","scope":"mail"}): a string (unescaped) or a number or
 * literal as written.  A new string, or NULL when key is absent, its value is an object or
 * array, or the text is not one well-formed object.  Never reads past len. */
char *imap_sasl_json_field(const char *json, size_t len, const char *key);

/* ---- COMPRESS=DEFLATE (compress.c) --------------------------------------------------- */

/* Both directions of an RFC 4978 compression layer: raw deflate, window bits -15.  Opaque;
 * free with imap_zstream_free (NULL is a no-op). */
struct imap_zstream;

int imap_zstream_new(struct imap_zstream **z_r); /* 0, or -ENOMEM */
void imap_zstream_free(struct imap_zstream *z);
/* Compress data[0..len) and flush it (Z_SYNC_FLUSH): the bytes to send are appended to out.
 * 0, or -EIO (imap_zstream_error says why). */
int imap_zstream_deflate(struct imap_zstream *z, const void *data, size_t len, GByteArray *out);
/* Compressed bytes as received (copied). */
void imap_zstream_push(struct imap_zstream *z, const void *data, size_t len);
/* Up to cap decoded bytes into out: everything the bytes pushed so far decode to, a window at
 * a time, including the end of a block that a partial or sync flush left unfinished.  0 and
 * *n_r (0: more input is needed), or -EPROTO for a corrupt stream or bytes after its end
 * (imap_zstream_error says why; the stream cannot be used further). */
int imap_zstream_pull(struct imap_zstream *z, uint8_t *out, size_t cap, size_t *n_r);
/* True when imap_zstream_pull would return bytes (or an error) without more input. */
bool imap_zstream_pending(const struct imap_zstream *z);
const char *imap_zstream_error(const struct imap_zstream *z); /* borrowed */
/* Bytes received compressed and what they decoded to; bytes sent before and after. */
void imap_zstream_counts(const struct imap_zstream *z, uint64_t *raw_in_r, uint64_t *plain_in_r,
                         uint64_t *raw_out_r, uint64_t *plain_out_r);

/* ---- errors --------------------------------------------------------------------------- */

enum imap_outcome {
	IMAP_OUTCOME_OK = 0,
	IMAP_OUTCOME_NO,            /* tagged NO, code decides ENOENT vs EACCES */
	IMAP_OUTCOME_BAD,           /* tagged BAD */
	IMAP_OUTCOME_BYE,           /* untagged BYE */
	IMAP_OUTCOME_LOST,          /* EOF or I/O error */
	IMAP_OUTCOME_TIMEOUT,       /* no progress within timeout_ms */
	IMAP_OUTCOME_PROTOCOL,      /* unparsable or hostile input, unexpected response */
	IMAP_OUTCOME_TLS_VERIFY,    /* certificate verification failed */
	IMAP_OUTCOME_LOGIN_REFUSED, /* credentials rejected or login impossible */
	IMAP_OUTCOME_INSECURE,      /* would have to continue without TLS: refused */
};

/* The one place where protocol outcomes become errno values (see imap.h). code is the tagged
 * response's response code (nullable). */
int imap_outcome_to_errno(enum imap_outcome outcome, const char *code);

/* ---- network helpers exposed for tests ------------------------------------------------ */

/* Try each address of ai in turn with a non-blocking connect bounded by timeout_ms each.  On
 * success returns 0 and a connected non-blocking socket in *fd_r; else -errno of the last
 * failure. */
int imap_connect_addrinfo(const struct addrinfo *ai, unsigned timeout_ms, int *fd_r);

/* Is sa (borrowed; len its size) a loopback address: 127.0.0.0/8, ::1, or an IPv4-mapped
 * 127.0.0.0/8?  False for any other family or a short len.  compress = auto asks by it. */
bool imap_sockaddr_is_loopback(const struct sockaddr *sa, socklen_t len);

/* ---- the connection (shared by conn.c, session.c and commands.c) ---------------------- */

struct imap_conn;
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

/* The TLS client context for a connection (tlsctx.c): trusts the system store and ca_file
 * (NULL or "": none), verifies the peer, TLS 1.2 or later.  Shared by every connection of the
 * process and made again when either file changed.  0 and *ctx_r (a new reference: release
 * with SSL_CTX_free), or -ENOMEM / -EINVAL (ca_file cannot be loaded) with the reason in
 * OpenSSL's error queue.  Thread-safe. */
int imap_tls_ctx_get(const char *ca_file, SSL_CTX **ctx_r);

/* Handler for untagged responses while a command runs; returns 0 or -errno (which fails the
 * command after it has been read to its end). */
typedef int (*imap_untagged_cb)(struct imap_conn *conn, const struct imap_response *resp,
                                void *ctx);

struct imap_conn {
	int fd;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	char *host;
	char *port;
	unsigned timeout_ms;
	uint64_t max_literal;
	unsigned max_depth;

	GByteArray *rbuf; /* bytes read but not yet parsed start at rbuf->data + rpos */
	size_t rpos;
	struct imap_parser *parser;
	unsigned next_tag;

	GHashTable *caps; /* upper-cased capability names -> themselves */
	bool caps_fresh;  /* caps were (re)set since caps_fresh was last cleared */
	bool condstore;   /* EXAMINE ... (CONDSTORE) was used: FETCH can ask for MODSEQ */
	char *mailbox;    /* raw name currently examined, or NULL */
	uint32_t mailbox_uidvalidity; /* its UIDVALIDITY from EXAMINE (0 with no mailbox) */
	bool broken;
	int broken_err;   /* what every call returns once broken */
	bool preauth;     /* greeting was PREAUTH */
	bool logging_out; /* BYE is expected */
	char *bye_text;   /* text of an untagged BYE, for the error message */
	char cur_tag[16]; /* tag of the command in progress */
	GString *error;
	/* ENABLE QRESYNC is sent right after the login without waiting for its answer, which the
	 * next command's reading absorbs (enable_tag: its tag until then, else empty). */
	char enable_tag[16];
	enum { IMAP_QRESYNC_OFF = 0, IMAP_QRESYNC_ASKED, IMAP_QRESYNC_ON } qresync;
	int interrupted; /* atomic: imap_conn_interrupt was called (from another thread) */
	/* COMPRESS=DEFLATE is on (after its tagged OK): every byte read from or written to the
	 * socket (or TLS) goes through z; rbuf holds decoded bytes.  NULL: not compressed. */
	struct imap_zstream *z;
	uint8_t *zraw;     /* with z: the buffer compressed bytes are read into (READ_CHUNK) */
	GByteArray *zsend; /* with z: compressed bytes of the write in progress */
};

/* Make the thread that uses conn give up at once: its socket is shut down, so a wait for the
 * server ends and the call fails with -ECONNABORTED ("gave up ...").  The one call that may
 * come from another thread than conn's owner; the caller guarantees conn is not freed
 * meanwhile (the pool holds its lock, and frees a connection only after taking it out of its
 * busy list under that lock). */
void imap_conn_interrupt(struct imap_conn *conn);

/* Run one command (cmd already formatted after the tag; imap_cmd_finish not yet called).
 * untagged responses go to cb (nullable) after the connection's own bookkeeping (CAPABILITY,
 * BYE).  Returns 0 on tagged OK, else -errno with imap_conn_error() set; final_r (nullable)
 * receives the tagged response (caller frees). */
int imap_conn_run(struct imap_conn *conn, struct imap_cmd *cmd, imap_untagged_cb cb, void *ctx,
                  struct imap_response **final_r);
/* Commands a pipelined run keeps written ahead of their answers: one more is written as each
 * is answered, so a long pipeline keeps the link busy (n commands cost about one round trip
 * plus their transfer) while what sits unread in either side's socket buffers stays bounded
 * (as isync's cmd_sendable). */
#define IMAP_PIPELINE_WINDOW 64u
/* Run cmds[0..n) pipelined: up to IMAP_PIPELINE_WINDOW are sent before any answer is read,
 * the rest one per answer, so n commands cost about one round trip.  Each must be one line (no
 * synchronizing literal, nothing secret).  Untagged responses go to cb (nullable), which must tell
 * the commands' answers apart by their kind; while answers are awaited, conn->cur_tag is the oldest
 * unfinished command's tag (ESEARCH TAG matching).  Every tagged answer is read even after a
 * failure, so the connection stays in step.  0 when all ended OK, else the first failure as
 * imap_conn_run.  results (nullable, n entries): each command's own outcome, 0 or a negative errno
 * (a command never answered, the connection having failed first, gets the connection's error);
 * while the run goes on, IMAP_PIPELINE_PENDING until the command's tagged answer has come, so cb
 * can tell which commands have ended. */
#define IMAP_PIPELINE_PENDING 1
int imap_conn_run_pipelined(struct imap_conn *conn, struct imap_cmd **cmds, unsigned n,
                            imap_untagged_cb cb, void *ctx, int *results);
/* Record a failure: sets the error text and, for connection-fatal outcomes (BYE, LOST, TIMEOUT,
 * PROTOCOL, TLS_VERIFY, INSECURE), marks the connection broken.  Returns the mapped errno. */
int imap_conn_fail(struct imap_conn *conn, enum imap_outcome outcome, const char *code,
                   const char *fmt, ...) G_GNUC_PRINTF(4, 5);
/* Same with an explicit errno (e.g. from a callback); broken says whether it is fatal. */
int imap_conn_fail_errno(struct imap_conn *conn, int err, bool broken, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
/* Format "[CODE] text" of a tagged response into a new string. */
char *imap_response_reason(const struct imap_response *resp);
enum imap_literal_mode imap_conn_literal_mode(const struct imap_conn *conn);
void imap_conn_set_caps_from_args(struct imap_conn *conn, const struct imap_arg *args,
                                  unsigned nargs);

/* ---- for opening a session (session.c), which conn.c serves ----------------------------- */

/* Read the next complete response, with none of the connection's bookkeeping (the greeting
 * is read so).  *resp_r new (imap_response_free). */
int imap_conn_read_response(struct imap_conn *conn, struct imap_response **resp_r);
/* The response codes that matter to the connection itself (CAPABILITY, ALERT). */
void imap_conn_handle_code(struct imap_conn *conn, const struct imap_response *resp);
/* Run a command of fixed text with no callback: 0 or -errno as imap_conn_run. */
int imap_conn_simple_command(struct imap_conn *conn, const char *text);
/* The TLS handshake on conn->fd, verified against conn->host (and ca_file, nullable). */
int imap_conn_start_tls(struct imap_conn *conn, const char *ca_file);
/* Compress from here on (the server has answered COMPRESS DEFLATE with OK). */
int imap_conn_start_deflate(struct imap_conn *conn);
/* Free conn without a LOGOUT (a session that never opened).  NULL is not allowed. */
void imap_conn_free(struct imap_conn *conn);

/* ---- for commands that wait (idle.c) --------------------------------------------------- */

/* Send one already tagged, CRLF-terminated line (no secret in it). */
int imap_conn_send_line(struct imap_conn *conn, const char *line);
/* Read the next response, after the connection's own bookkeeping (CAPABILITY, BYE, ALERT).
 * *resp_r new (imap_response_free).  Blocks up to the timeout once called. */
int imap_conn_read(struct imap_conn *conn, struct imap_response **resp_r);
/* True when bytes already received wait to be parsed (so poll() on the socket would lie). */
bool imap_conn_buffered(const struct imap_conn *conn);

/* ---- pieces of commands.c that searchrun.c shares ------------------------------------- */

/* What an EXAMINE's untagged answers said (imap_examine_cb collects them). */
struct imap_examine_ctx {
	struct imap_mailbox_status st;
	bool have_uidvalidity;
};
int imap_examine_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx);
/* The EXAMINE command for raw_name (*cmd_r new); the connection examines nothing until the
 * EXAMINE has ended OK and imap_examine_finish recorded it. */
int imap_examine_begin(struct imap_conn *conn, const char *raw_name, struct imap_cmd **cmd_r,
                       struct imap_mailbox_status *st_r);
/* The same with select parameters params ("(QRESYNC (...))", sent as they are) instead of
 * the default "(CONDSTORE)" when offered. */
int imap_examine_begin_params(struct imap_conn *conn, const char *raw_name, const char *params,
                              struct imap_cmd **cmd_r, struct imap_mailbox_status *st_r);
int imap_examine_finish(struct imap_conn *conn, const char *raw_name,
                        const struct imap_examine_ctx *ex, struct imap_mailbox_status *st_r);

/* A command pipelined after an EXAMINE (imap_examine_list_all, imap_examine_fetch_body,
 * imap_examine_fetch_pieces) acts on the examined mailbox only if the server finished the
 * EXAMINE first, as RFC 3501 5.5 has it do for commands whose meaning depends on another's.  A
 * server that answered such a command before its tagged answer to the EXAMINE may have
 * answered it about another mailbox (the one examined before) or none: those answers are not
 * used (early), and the command is asked again on its own. */
struct imap_examine_gate {
	struct imap_examine_ctx ex;
	const int *examine_result; /* the EXAMINE's entry of imap_conn_run_pipelined's results */
	bool early;
};
/* The EXAMINE to pipeline with what needs it (*cmd_r, new); or, for a name that needs a
 * literal (a command with a literal is not pipelined), *cmd_r NULL after examining it on its
 * own (*st_r set). */
int imap_examine_for_pipeline(struct imap_conn *conn, const char *raw_name,
                              struct imap_cmd **cmd_r, struct imap_mailbox_status *st_r);
/* May an answer to a command pipelined after the EXAMINE be used now?  Only once the EXAMINE
 * has ended, and ended OK (g NULL: no gate, always).  Sets g->early when it has not ended. */
bool imap_gate_open(struct imap_examine_gate *g);
/* The EXAMINE's own untagged answers (imap_examine_cb), until its tagged one. */
int imap_gate_examine_cb(struct imap_conn *conn, const struct imap_response *resp,
                         struct imap_examine_gate *g);
/* The FETCH list of "* n FETCH (...)", or NULL. */
const struct imap_arg *imap_fetch_list(const struct imap_response *resp);
/* The UID item of a FETCH list (1..UINT32_MAX); false when absent or malformed. */
bool imap_fetch_uid(const struct imap_arg *list, uint32_t *uid_r);

/* SEARCH / ESEARCH (of the command conn->cur_tag names) answers, appended to uids. */
struct imap_search_ctx {
	GArray *uids;
};
int imap_search_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx);
void imap_sort_unique_uids(GArray *uids);
/* Run the UID SEARCH cmd (taken, freed) and collect its hits: *uids_r as imap_uid_search. */
int imap_run_search(struct imap_conn *conn, struct imap_cmd *cmd, GArray **uids_r);

/* UID FETCH uidset (UID RFC822.SIZE INTERNALDATE FLAGS [MODSEQ] [identity]) [(CHANGEDSINCE
 * modseq)], where identity is X-GM-MSGID X-GM-THRID X-GM-LABELS when the server offers
 * X-GM-EXT-1, else EMAILID THREADID when it offers OBJECTID (imap_msg_attrs). */
struct imap_cmd *imap_fetch_attrs_cmd(const struct imap_conn *conn, const char *uidset,
                                      uint64_t modseq);
/* An untagged FETCH with every attribute of imap_fetch_attrs_cmd: 1 and *at_r set (its arrays
 * new: imap_msg_attrs_clear; the strings borrowed from resp); 0 for anything else; -errno if
 * malformed. */
int imap_parse_attrs(struct imap_conn *conn, const struct imap_response *resp,
                     struct imap_msg_attrs *at_r);
/* An untagged FETCH with UID and FLAGS but not every attribute of imap_fetch_attrs_cmd (a flag
 * change the server reports on its own, as QRESYNC's EXAMINE does): 1 and at_r->uid,
 * ->flags (new array, g_free; strings borrowed from resp), ->modseq set; 0 for anything
 * else; -errno if malformed. */
int imap_parse_flag_change(struct imap_conn *conn, const struct imap_response *resp,
                           struct imap_msg_attrs *at_r);

/* Serialise q after the command text so far (search.c).  -EINVAL if a value cannot be sent. */
int imap_search_format(struct imap_cmd *cmd, const struct imap_search *q,
                       enum imap_literal_mode mode);

#endif /* IMAPFS_IMAP_PRIVATE_H */
