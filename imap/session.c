/* session.c — opening a session: connect, TLS, greeting, STARTTLS, login, COMPRESS, ENABLE.
 *
 * The steps of imap_conn_open, in the order RFC 3501 and its extensions allow, over the
 * connection's own transport (conn.c: bytes, TLS, the command loop) and the login mechanisms
 * (sasl.c).  Both of those serve this file and neither calls back into it, so the opening
 * sequence reads top to bottom in one place.  What each step refuses and why (PREAUTH with
 * STARTTLS, bytes injected before the handshake, capabilities learned in plaintext) is said
 * beside the step.
 */
#include "imap-private.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "imap"

static int read_greeting(struct imap_conn *conn, enum imap_tls_mode tls)
{
	struct imap_response *resp;
	int err = imap_conn_read_response(conn, &resp);
	if (err < 0) {
		if (err == -EPROTO) {
			char *why =
			    g_strdup(conn->error->str); /* the format must not alias error */
			err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
			                     "%s:%s does not greet like an IMAP server (%s)",
			                     conn->host, conn->port, why);
			g_free(why);
		}
		return err;
	}
	char *why = imap_response_reason(resp);
	if (resp->kind != IMAP_RESP_UNTAGGED ||
	    (resp->status != IMAP_STATUS_OK && resp->status != IMAP_STATUS_PREAUTH &&
	     resp->status != IMAP_STATUS_BYE)) {
		err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                     "%s:%s does not greet like an IMAP server", conn->host,
		                     conn->port);
	} else if (resp->status == IMAP_STATUS_BYE) {
		err = imap_conn_fail(conn, IMAP_OUTCOME_BYE, NULL,
		                     "server %s refused the connection: %s", conn->host, why);
	} else if (resp->status == IMAP_STATUS_PREAUTH && tls == IMAP_TLS_STARTTLS) {
		/* a PREAUTH greeting rules out STARTTLS (RFC 3501 6.2.1): the session would stay
		 * in plaintext, which is exactly what STARTTLS was asked to prevent */
		err = imap_conn_fail(conn, IMAP_OUTCOME_INSECURE, NULL,
		                     "server greeted with PREAUTH, so STARTTLS is impossible; "
		                     "refusing to continue without TLS");
	} else {
		conn->preauth = resp->status == IMAP_STATUS_PREAUTH;
		imap_conn_handle_code(conn, resp);
	}
	g_free(why);
	imap_response_free(resp);
	return err;
}

static int capability(struct imap_conn *conn)
{
	conn->caps_fresh = false;
	int err = imap_conn_simple_command(conn, "CAPABILITY");
	if (err == 0 && !conn->caps_fresh)
		return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                      "server %s sent no CAPABILITY response", conn->host);
	return err;
}

static int starttls(struct imap_conn *conn, const char *ca_file)
{
	int err;
	if (!conn->caps_fresh && (err = capability(conn)) < 0)
		return err;
	if (!imap_conn_has_cap(conn, "STARTTLS"))
		return imap_conn_fail(conn, IMAP_OUTCOME_INSECURE, NULL,
		                      "server does not offer STARTTLS; refusing to continue "
		                      "without TLS");
	err = imap_conn_simple_command(conn, "STARTTLS");
	if (err < 0) {
		if (conn->broken)
			return err;
		char *why = g_strdup(conn->error->str); /* the format must not alias error */
		err = imap_conn_fail(
		    conn, IMAP_OUTCOME_INSECURE, NULL,
		    "server refused STARTTLS (%s); refusing to continue without TLS", why);
		g_free(why);
		return err;
	}
	/* Anything already received after the tagged OK was sent in plaintext before the
	 * handshake and would be read as if it came through TLS: refuse (response injection). */
	uint8_t b;
	if (conn->rpos != conn->rbuf->len || recv(conn->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
		return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                      "server %s sent data between its STARTTLS answer and the TLS "
		                      "handshake (possible injection attack); disconnecting",
		                      conn->host);
	if ((err = imap_conn_start_tls(conn, ca_file)) < 0)
		return err;
	/* capabilities learned in plaintext could have been forged */
	g_hash_table_remove_all(conn->caps);
	conn->caps_fresh = false;
	return capability(conn);
}

/* ENABLE QRESYNC (RFC 7162), so that a re-listing can ask for what changed in its EXAMINE
 * (imap_examine_qresync).  ENABLE is only valid before a mailbox is selected, so it goes
 * right after the login; it is sent without waiting for its answer (imap_conn_read_response takes
 * that when the next command reads), so opening a connection costs no round trip more. */
static int enable_qresync(struct imap_conn *conn)
{
	char line[48];

	conn->next_tag++;
	g_snprintf(conn->enable_tag, sizeof(conn->enable_tag), "A%04u", conn->next_tag);
	g_snprintf(line, sizeof(line), "%s ENABLE QRESYNC\r\n", conn->enable_tag);
	conn->qresync = IMAP_QRESYNC_ASKED;
	return imap_conn_send_line(conn, line);
}

/* COMPRESS DEFLATE (RFC 4978), when offered and not turned off.  Only after the login, so
 * that no secret ever goes through the compressor (compressing a secret together with data
 * an attacker chooses is what CRIME-style attacks measure), and before any other command, so
 * that everything after it is compressed.  A server that refuses (NO, BAD) leaves the
 * connection uncompressed. */
static int start_compress(struct imap_conn *conn)
{
	int err = imap_conn_simple_command(conn, "COMPRESS DEFLATE");
	if (err < 0) {
		if (conn->broken)
			return err;
		g_debug("server %s refused COMPRESS DEFLATE (%s); going on uncompressed",
		        conn->host, conn->error->str);
		g_string_truncate(conn->error, 0);
		return 0;
	}
	return imap_conn_start_deflate(conn);
}

/* Whether to ask for COMPRESS (cfg->compress): AUTO asks unless the address the socket
 * reached is a loopback one, where deflate saves no time and costs both ends CPU.  It is the
 * peer's address, not the host name, so "localhost" and an /etc/hosts alias count alike, and
 * so does a local tunnel to a distant server (compress = on is for that). */
static bool want_compress(struct imap_conn *conn, enum imap_compress mode)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (mode == IMAP_COMPRESS_OFF)
		return false;
	if (mode != IMAP_COMPRESS_AUTO)
		return true;
	if (getpeername(conn->fd, (struct sockaddr *)&ss, &len) == 0 &&
	    imap_sockaddr_is_loopback((const struct sockaddr *)&ss, len)) {
		g_debug("server %s is on a loopback address: not asking for COMPRESS "
		        "(compress = auto)",
		        conn->host);
		return false;
	}
	return true;
}

static void ignore_sigpipe_once(void)
{
	/* OpenSSL writes to the socket with write(), which raises SIGPIPE when the server has
	 * gone; a daemon must not die of that.  Only a default disposition is changed. */
	static gsize done = 0;
	if (g_once_init_enter(&done)) {
		struct sigaction sa;
		if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
			sa.sa_handler = SIG_IGN;
			sigaction(SIGPIPE, &sa, NULL);
		}
		g_once_init_leave(&done, 1);
	}
}

int imap_conn_open(const struct imap_config *cfg, struct imap_conn **conn_r, char **errmsg_r)
{
	*conn_r = NULL;
	if (errmsg_r != NULL)
		*errmsg_r = NULL;
	if (cfg->host == NULL || cfg->host[0] == '\0') {
		if (errmsg_r != NULL)
			*errmsg_r = g_strdup("no IMAP server host configured");
		return -EINVAL;
	}
	ignore_sigpipe_once();

	struct imap_conn *conn = g_new0(struct imap_conn, 1);
	conn->fd = -1;
	conn->host = g_strdup(cfg->host);
	conn->port = g_strdup(cfg->port != NULL               ? cfg->port
	                      : cfg->tls == IMAP_TLS_IMPLICIT ? "993"
	                                                      : "143");
	conn->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : IMAP_DEFAULT_TIMEOUT_MS;
	conn->max_literal = cfg->max_literal ? cfg->max_literal : IMAP_DEFAULT_MAX_LITERAL;
	conn->max_depth = cfg->max_depth ? cfg->max_depth : IMAP_DEFAULT_MAX_DEPTH;
	conn->rbuf = g_byte_array_new();
	conn->parser = imap_parser_new(conn->max_literal, conn->max_depth);
	conn->caps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	conn->error = g_string_new(NULL);

	int err;
	if (cfg->tls == IMAP_TLS_NONE)
		g_warning("tls = none: talking to %s:%s without encryption; the password and all "
		          "mail cross the network in clear text",
		          conn->host, conn->port);

	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int gai = getaddrinfo(conn->host, conn->port, &hints, &ai);
	if (gai != 0) {
		err = imap_conn_fail_errno(conn, -EHOSTUNREACH, true, "cannot resolve %s: %s",
		                           conn->host, gai_strerror(gai));
		goto fail;
	}
	err = imap_connect_addrinfo(ai, conn->timeout_ms, &conn->fd);
	freeaddrinfo(ai);
	if (err < 0) {
		err = imap_conn_fail_errno(conn, err, true, "cannot connect to %s:%s: %s",
		                           conn->host, conn->port, g_strerror(-err));
		goto fail;
	}

	if (cfg->tls == IMAP_TLS_IMPLICIT && (err = imap_conn_start_tls(conn, cfg->ca_file)) < 0)
		goto fail;
	if ((err = read_greeting(conn, cfg->tls)) < 0)
		goto fail;
	if (cfg->tls == IMAP_TLS_STARTTLS && (err = starttls(conn, cfg->ca_file)) < 0)
		goto fail;
	if (!conn->preauth) {
		if (!conn->caps_fresh && (err = capability(conn)) < 0)
			goto fail;
		if ((err = imap_sasl_login(conn, cfg)) < 0)
			goto fail;
	}
	/* capabilities often grow after login; the tagged OK may have carried them */
	if (!conn->caps_fresh && (err = capability(conn)) < 0)
		goto fail;
	if (imap_conn_has_cap(conn, "COMPRESS=DEFLATE") && want_compress(conn, cfg->compress) &&
	    (err = start_compress(conn)) < 0)
		goto fail;
	if (imap_conn_has_cap(conn, "QRESYNC") && imap_conn_has_cap(conn, "ENABLE") &&
	    (err = enable_qresync(conn)) < 0)
		goto fail;
	*conn_r = conn;
	return 0;

fail:
	if (errmsg_r != NULL)
		*errmsg_r = g_strdup(conn->error->str);
	imap_conn_free(conn);
	return err;
}
