/* conn.c — one IMAP connection: sockets, TLS, timeouts, the command/response loop.
 *
 * Every socket is non-blocking and every wait goes through poll() with a deadline, including
 * the waits inside the TLS layer (SSL_ERROR_WANT_READ/WANT_WRITE), so no call can block longer
 * than the configured timeout.  TLS is verified always (system store plus an optional CA file,
 * host name or IP address checked, TLS 1.2 minimum).  STARTTLS never falls back to plaintext
 * and refuses a server that pipelines bytes after its OK (response injection, CVE-2011-0411
 * style).  Credentials are only sent after TLS (unless tls=none was chosen explicitly) and are
 * redacted in the protocol trace; how they are sent (the SASL mechanisms) is sasl.c's, and the
 * order of the opening steps (greeting, STARTTLS, login, COMPRESS, ENABLE) is session.c's.
 * COMPRESS=DEFLATE (compress.c) sits between the socket and everything above: rbuf holds
 * decoded bytes and the trace shows them, so the trace reads the same either way.
 */
#include "imap-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "imap"

#define READ_CHUNK (64 * 1024)
#define TRACE_MAX  400 /* bytes of each response shown in the debug trace */

/* ---- errors --------------------------------------------------------------------------- */

static bool outcome_breaks(enum imap_outcome o)
{
	switch (o) {
	case IMAP_OUTCOME_OK:
	case IMAP_OUTCOME_NO:
	case IMAP_OUTCOME_BAD:
	case IMAP_OUTCOME_LOGIN_REFUSED:
		return false;
	default:
		return true;
	}
}

static int vfail(struct imap_conn *conn, int err, bool broken, const char *fmt, va_list ap)
    G_GNUC_PRINTF(4, 0);

static int vfail(struct imap_conn *conn, int err, bool broken, const char *fmt, va_list ap)
{
	g_string_vprintf(conn->error, fmt, ap);
	if (broken && !conn->broken) {
		conn->broken = true;
		conn->broken_err = err;
	}
	return err;
}

int imap_conn_fail(struct imap_conn *conn, enum imap_outcome outcome, const char *code,
                   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int err =
	    vfail(conn, imap_outcome_to_errno(outcome, code), outcome_breaks(outcome), fmt, ap);
	va_end(ap);
	return err;
}

int imap_conn_fail_errno(struct imap_conn *conn, int err, bool broken, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err = vfail(conn, err, broken, fmt, ap);
	va_end(ap);
	return err;
}

char *imap_response_reason(const struct imap_response *resp)
{
	GString *s = g_string_new(NULL);
	if (resp->code != NULL)
		g_string_append_printf(s, "[%s]", resp->code);
	if (resp->text != NULL && resp->text[0] != '\0')
		g_string_append_printf(s, "%s%s", s->len ? " " : "", resp->text);
	if (s->len == 0)
		g_string_append(s, "(no reason given)");
	/* the text comes from the server: keep it to one printable line */
	for (gsize i = 0; i < s->len; i++) {
		if ((unsigned char)s->str[i] < 0x20 || s->str[i] == 0x7f)
			s->str[i] = '?';
	}
	return g_string_free(s, FALSE);
}

/* ---- tracing -------------------------------------------------------------------------- */

static bool trace_enabled(void)
{
#if GLIB_CHECK_VERSION(2, 68, 0)
	return !g_log_writer_default_would_drop(G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN);
#else
	return true;
#endif
}

static void trace(const char *dir, const void *data, size_t len)
{
	if (!trace_enabled())
		return;
	size_t n = len > TRACE_MAX ? TRACE_MAX : len;
	char *raw = g_strndup(data, n);
	/* strip the line end; escape the rest so the log stays one line per response */
	char *esc = g_strescape(raw, NULL);
	g_debug("%s %s%s", dir, esc, len > TRACE_MAX ? " [...]" : "");
	g_free(esc);
	g_free(raw);
}

/* ---- sockets -------------------------------------------------------------------------- */

/* Wait until fd is ready for events or the deadline (monotonic µs) passes. */
static int wait_fd(int fd, short events, gint64 deadline)
{
	for (;;) {
		gint64 now = g_get_monotonic_time();
		if (now >= deadline)
			return -ETIMEDOUT;
		gint64 ms = (deadline - now + 999) / 1000;
		struct pollfd pfd = {.fd = fd, .events = events};
		int r = poll(&pfd, 1, ms > INT_MAX ? INT_MAX : (int)ms);
		if (r > 0)
			return 0; /* POLLERR/POLLHUP too: the next I/O call reports them */
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static gint64 deadline_after(unsigned timeout_ms)
{
	return g_get_monotonic_time() + (gint64)timeout_ms * 1000;
}

int imap_connect_addrinfo(const struct addrinfo *ai, unsigned timeout_ms, int *fd_r)
{
	int err = -EHOSTUNREACH;
	*fd_r = -1;
	for (; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			*fd_r = fd;
			return 0;
		}
		if (errno != EINPROGRESS) {
			err = -errno;
			close(fd);
			continue;
		}
		err = wait_fd(fd, POLLOUT, deadline_after(timeout_ms));
		if (err == 0) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
				soerr = errno;
			if (soerr == 0) {
				*fd_r = fd;
				return 0;
			}
			err = -soerr;
		}
		close(fd);
	}
	return err;
}

bool imap_sockaddr_is_loopback(const struct sockaddr *sa, socklen_t len)
{
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* ---- raw I/O (plain or TLS) ----------------------------------------------------------- */

static int io_error(struct imap_conn *conn, int err, const char *doing)
{
	if (__atomic_load_n(&conn->interrupted, __ATOMIC_ACQUIRE))
		return imap_conn_fail(conn, IMAP_OUTCOME_LOST, NULL,
		                      "gave up waiting for %s: the server stopped answering",
		                      conn->host);
	if (err == -ETIMEDOUT)
		return imap_conn_fail(conn, IMAP_OUTCOME_TIMEOUT, NULL,
		                      "timed out after %u ms %s %s", conn->timeout_ms, doing,
		                      conn->host);
	if (err == -ECONNRESET || err == 0) {
		if (conn->bye_text != NULL)
			return imap_conn_fail(conn, IMAP_OUTCOME_BYE, NULL,
			                      "server %s closed the connection: %s", conn->host,
			                      conn->bye_text);
		return imap_conn_fail(
		    conn, IMAP_OUTCOME_LOST, NULL, "server %s closed the connection%s", conn->host,
		    imap_parser_in_literal(conn->parser) ? " in the middle of a literal" : "");
	}
	return imap_conn_fail(conn, IMAP_OUTCOME_LOST, NULL, "connection to %s failed %s: %s",
	                      conn->host, doing, g_strerror(-err));
}

/* Describe the OpenSSL error queue in a few words. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r != NULL ? r : "connection closed";
}

/* Read at least one byte from the socket (or TLS) into buf[0..cap), waiting until deadline.
 * 0 and *n_r, or -errno with the error recorded. */
static int raw_read(struct imap_conn *conn, uint8_t *buf, size_t cap, gint64 deadline, size_t *n_r)
{
	int err;
	*n_r = 0;
	for (;;) {
		ssize_t n;
		if (conn->ssl != NULL) {
			ERR_clear_error();
			int r = SSL_read(conn->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
			if (r > 0) {
				n = r;
				goto got;
			}
			switch (SSL_get_error(conn->ssl, r)) {
			case SSL_ERROR_WANT_READ:
				err = wait_fd(conn->fd, POLLIN, deadline);
				break;
			case SSL_ERROR_WANT_WRITE:
				err = wait_fd(conn->fd, POLLOUT, deadline);
				break;
			case SSL_ERROR_ZERO_RETURN:
				err = 0; /* clean close */
				goto fail;
			case SSL_ERROR_SYSCALL:
				err = errno ? -errno : 0;
				goto fail;
			default:
				/* includes OpenSSL 3's "unexpected eof while reading" */
				if (ERR_GET_REASON(ERR_peek_last_error()) ==
				        SSL_R_UNEXPECTED_EOF_WHILE_READING ||
				    __atomic_load_n(&conn->interrupted, __ATOMIC_ACQUIRE))
					return io_error(conn, 0, "reading from");
				return imap_conn_fail(conn, IMAP_OUTCOME_LOST, NULL,
				                      "TLS error reading from %s: %s", conn->host,
				                      ssl_reason());
			}
		} else {
			n = recv(conn->fd, buf, cap, 0);
			if (n > 0)
				goto got;
			if (n == 0) {
				err = 0;
				goto fail;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				err = -errno;
				goto fail;
			}
			err = wait_fd(conn->fd, POLLIN, deadline);
		}
		if (err < 0)
			goto fail;
		continue;
	got:
		*n_r = (size_t)n;
		return 0;
	}
fail:
	return io_error(conn, err, "reading from");
}

/* With COMPRESS: decoded bytes into buf[0..cap), reading compressed ones as needed (a read
 * may decode to nothing, e.g. a flush marker alone).  As raw_read. */
static int read_inflated(struct imap_conn *conn, uint8_t *buf, size_t cap, gint64 deadline,
                         size_t *n_r)
{
	for (;;) {
		size_t got;
		int err = imap_zstream_pull(conn->z, buf, cap, n_r);
		if (err < 0)
			return imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
			                      "%s from %s; disconnecting",
			                      imap_zstream_error(conn->z), conn->host);
		if (*n_r > 0)
			return 0;
		if ((err = raw_read(conn, conn->zraw, READ_CHUNK, deadline, &got)) < 0)
			return err;
		imap_zstream_push(conn->z, conn->zraw, got);
	}
}

/* Read at least one byte more into rbuf.  0, or -errno with the error recorded. */
static int read_more(struct imap_conn *conn)
{
	if (conn->rpos == conn->rbuf->len) {
		g_byte_array_set_size(conn->rbuf, 0);
		conn->rpos = 0;
	} else if (conn->rpos > READ_CHUNK) {
		g_byte_array_remove_range(conn->rbuf, 0, (guint)conn->rpos);
		conn->rpos = 0;
	}
	guint old = conn->rbuf->len;
	g_byte_array_set_size(conn->rbuf, old + READ_CHUNK);
	uint8_t *buf = conn->rbuf->data + old;
	/* one deadline for the whole read: bytes that decode to nothing do not extend it */
	gint64 deadline = deadline_after(conn->timeout_ms);
	size_t n = 0;
	int err = conn->z != NULL ? read_inflated(conn, buf, READ_CHUNK, deadline, &n)
	                          : raw_read(conn, buf, READ_CHUNK, deadline, &n);
	g_byte_array_set_size(conn->rbuf, old + (guint)n);
	return err;
}

static int raw_write_all(struct imap_conn *conn, const void *data, size_t len)
{
	const uint8_t *p = data;
	gint64 deadline = deadline_after(conn->timeout_ms);
	while (len > 0) {
		int err;
		if (conn->ssl != NULL) {
			ERR_clear_error();
			int chunk = len > INT_MAX ? INT_MAX : (int)len;
			int r = SSL_write(conn->ssl, p, chunk);
			if (r > 0) {
				p += r;
				len -= (size_t)r;
				deadline = deadline_after(conn->timeout_ms);
				continue;
			}
			switch (SSL_get_error(conn->ssl, r)) {
			case SSL_ERROR_WANT_READ:
				err = wait_fd(conn->fd, POLLIN, deadline);
				break;
			case SSL_ERROR_WANT_WRITE:
				err = wait_fd(conn->fd, POLLOUT, deadline);
				break;
			case SSL_ERROR_SYSCALL:
				err = errno ? -errno : -ECONNRESET;
				break;
			default:
				return imap_conn_fail(conn, IMAP_OUTCOME_LOST, NULL,
				                      "TLS error writing to %s: %s", conn->host,
				                      ssl_reason());
			}
		} else {
			ssize_t n = send(conn->fd, p, len, MSG_NOSIGNAL);
			if (n > 0) {
				p += n;
				len -= (size_t)n;
				deadline = deadline_after(conn->timeout_ms);
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				err = wait_fd(conn->fd, POLLOUT, deadline);
			else
				err = n < 0 ? -errno : -ECONNRESET;
		}
		if (err < 0) {
			if (err == -EPIPE)
				err = -ECONNRESET;
			return io_error(conn, err, "writing to");
		}
	}
	return 0;
}

/* Send data (compressed and flushed with COMPRESS, so the server sees it at once). */
static int write_all(struct imap_conn *conn, const void *data, size_t len)
{
	if (conn->z == NULL)
		return raw_write_all(conn, data, len);
	g_byte_array_set_size(conn->zsend, 0);
	if (imap_zstream_deflate(conn->z, data, len, conn->zsend) < 0)
		return imap_conn_fail_errno(conn, -EIO, true, "cannot compress a command to %s: %s",
		                            conn->host, imap_zstream_error(conn->z));
	return raw_write_all(conn, conn->zsend->data, conn->zsend->len);
}

/* ---- responses ------------------------------------------------------------------------ */

/* Is resp the tagged answer to the ENABLE QRESYNC sent after the login (enable_qresync)?
 * Then it is taken here (freed), so no command sees an answer it did not ask for. */
static bool enable_answered(struct imap_conn *conn, struct imap_response *resp)
{
	if (conn->enable_tag[0] == '\0' || resp->kind != IMAP_RESP_TAGGED ||
	    strcmp(resp->tag, conn->enable_tag) != 0)
		return false;
	conn->enable_tag[0] = '\0';
	/* "* ENABLED QRESYNC" came before it (handle_untagged) unless the server declined */
	if (conn->qresync != IMAP_QRESYNC_ON) {
		conn->qresync = IMAP_QRESYNC_OFF;
		g_debug("server %s did not enable QRESYNC", conn->host);
	}
	imap_response_free(resp);
	return true;
}

/* Read the next complete response. */
int imap_conn_read_response(struct imap_conn *conn, struct imap_response **resp_r)
{
	*resp_r = NULL;
	for (;;) {
		if (conn->rpos < conn->rbuf->len) {
			size_t used;
			const uint8_t *start = conn->rbuf->data + conn->rpos;
			enum imap_parse_result r = imap_parser_feed(
			    conn->parser, start, conn->rbuf->len - conn->rpos, &used, resp_r);
			conn->rpos += used;
			if (r == IMAP_PARSE_OK) {
				trace("S:", start, used);
				if (!enable_answered(conn, *resp_r))
					return 0;
				*resp_r = NULL;
				continue;
			}
			if (r == IMAP_PARSE_BAD) {
				int err = imap_parser_errno(conn->parser);
				if (err == -EPROTO)
					err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
					                     "malformed response from %s: %s",
					                     conn->host,
					                     imap_parser_error(conn->parser));
				else
					err = imap_conn_fail_errno(conn, err, true, "%s",
					                           imap_parser_error(conn->parser));
				imap_parser_reset(conn->parser);
				return err;
			}
		}
		int err = read_more(conn);
		if (err < 0)
			return err;
	}
}

void imap_conn_set_caps_from_args(struct imap_conn *conn, const struct imap_arg *args,
                                  unsigned nargs)
{
	g_hash_table_remove_all(conn->caps);
	for (unsigned i = 0; i < nargs; i++) {
		if (args[i].type == IMAP_ARG_ATOM) {
			char *up = g_ascii_strup(args[i].u.str, -1);
			g_hash_table_add(conn->caps, up);
		}
	}
	conn->caps_fresh = true;
}

/* Response codes that matter to the connection itself, on any status response. */
void imap_conn_handle_code(struct imap_conn *conn, const struct imap_response *resp)
{
	if (resp->code == NULL)
		return;
	if (g_ascii_strncasecmp(resp->code, "CAPABILITY ", 11) == 0) {
		struct imap_response *c = imap_parse_code(resp->code);
		if (c != NULL && c->nargs > 0)
			imap_conn_set_caps_from_args(conn, c->args + 1, c->nargs - 1);
		imap_response_free(c);
	} else if (g_ascii_strcasecmp(resp->code, "ALERT") == 0) {
		/* RFC 3501 says the user must see ALERT texts */
		char *why = imap_response_reason(resp);
		g_warning("server %s says: %s", conn->host, why);
		g_free(why);
	}
}

/* Bookkeeping for untagged responses common to all commands. */
static void handle_untagged(struct imap_conn *conn, const struct imap_response *resp)
{
	if (resp->status != IMAP_STATUS_NONE) {
		imap_conn_handle_code(conn, resp);
		if (resp->status == IMAP_STATUS_BYE) {
			g_free(conn->bye_text);
			conn->bye_text = imap_response_reason(resp);
		}
		return;
	}
	if (resp->nargs >= 1 && imap_arg_is_atom(&resp->args[0], "CAPABILITY"))
		imap_conn_set_caps_from_args(conn, resp->args + 1, resp->nargs - 1);
	if (resp->nargs >= 1 && imap_arg_is_atom(&resp->args[0], "ENABLED") &&
	    conn->qresync == IMAP_QRESYNC_ASKED) {
		for (unsigned i = 1; i < resp->nargs; i++)
			if (imap_arg_is_atom(&resp->args[i], "QRESYNC"))
				conn->qresync = IMAP_QRESYNC_ON;
	}
}

/* An untagged response during a command: the connection's bookkeeping, then the caller's
 * callback, until the callback has failed once (*cb_err keeps its error).  Frees resp. */
static void dispatch_untagged(struct imap_conn *conn, struct imap_response *resp,
                              imap_untagged_cb cb, void *ctx, int *cb_err)
{
	handle_untagged(conn, resp);
	if (cb != NULL && *cb_err == 0)
		*cb_err = cb(conn, resp, ctx);
	imap_response_free(resp);
}

/* A tagged NO or BAD ending command `what`, as a failure of the connection's call. */
static int tagged_failure(struct imap_conn *conn, const struct imap_response *resp,
                          const char *what)
{
	char *why = imap_response_reason(resp);
	int err = imap_conn_fail(conn,
	                         resp->status == IMAP_STATUS_NO ? IMAP_OUTCOME_NO : IMAP_OUTCOME_BAD,
	                         resp->code, "%s failed: %s", what, why);
	g_free(why);
	return err;
}

static int send_chunk(struct imap_conn *conn, const struct imap_cmd *cmd, guint i)
{
	const GString *chunk = g_ptr_array_index(cmd->chunks, i);
	if (cmd->sensitive) {
		if (i == 0)
			g_debug("C: %s %s <credentials redacted>", conn->cur_tag, cmd->log_prefix);
		else
			g_debug("C: <credentials redacted>");
	} else {
		trace("C:", chunk->str, chunk->len);
	}
	return write_all(conn, chunk->str, chunk->len);
}

/* A SASL challenge after the whole AUTHENTICATE command was sent: the command's hook says
 * what to answer; the answer is sent like a secret (redacted in the trace). */
static int answer_challenge(struct imap_conn *conn, const struct imap_cmd *cmd,
                            const struct imap_response *resp, const char *what)
{
	GString *reply = g_string_new(NULL);
	int err = cmd->challenge(cmd->challenge_ctx, resp->text != NULL ? resp->text : "", reply);
	if (err < 0) {
		g_string_free(reply, TRUE);
		return imap_conn_fail_errno(conn, err, true,
		                            "unexpected SASL challenge from %s during %s",
		                            conn->host, what);
	}
	g_debug("C: <SASL response redacted>");
	g_string_append(reply, "\r\n");
	err = write_all(conn, reply->str, reply->len);
	explicit_bzero(reply->str, reply->allocated_len);
	g_string_free(reply, TRUE);
	return err;
}

/* The command word(s) after the tag of a formatted command line, for error messages (new). */
static char *command_name(const char *line, const char *tag)
{
	const char *s = line + strlen(tag) + 1;
	const char *e = strchr(s, ' ');
	if (e != NULL && g_ascii_strncasecmp(s, "UID ", 4) == 0)
		e = strchr(e + 1, ' ');
	return e ? g_strndup(s, (gsize)(e - s)) : g_strstrip(g_strdup(s));
}

int imap_conn_run(struct imap_conn *conn, struct imap_cmd *cmd, imap_untagged_cb cb, void *ctx,
                  struct imap_response **final_r)
{
	int cb_err = 0;
	int err;
	struct imap_response *resp = NULL;
	if (final_r != NULL)
		*final_r = NULL;
	if (conn->broken)
		return conn->broken_err;
	g_string_truncate(conn->error, 0);

	conn->next_tag++;
	g_snprintf(conn->cur_tag, sizeof(conn->cur_tag), "A%04u", conn->next_tag);
	GString *first = g_ptr_array_index(cmd->chunks, 0);
	g_string_prepend_c(first, ' ');
	g_string_prepend(first, conn->cur_tag);
	imap_cmd_finish(cmd);
	const char *what = cmd->what;
	char *what_buf = NULL;
	if (what == NULL)
		what = what_buf = command_name(first->str, conn->cur_tag);

	guint next = 0;
	bool done = false;
	while (!done) {
		if (next < cmd->chunks->len) {
			/* send the next chunk; all but the last end in a synchronising literal
			 * (or, for AUTHENTICATE, wait for the server's challenge) */
			if ((err = send_chunk(conn, cmd, next++)) < 0)
				goto out;
			if (next == cmd->chunks->len)
				goto read_tagged;
			/* wait for "+" */
			for (;;) {
				if ((err = imap_conn_read_response(conn, &resp)) < 0)
					goto out;
				if (resp->kind == IMAP_RESP_CONTINUATION) {
					imap_response_free(resp);
					resp = NULL;
					break;
				}
				if (resp->kind == IMAP_RESP_TAGGED) {
					done = true; /* refused before the literal */
					break;
				}
				dispatch_untagged(conn, resp, cb, ctx, &cb_err);
				resp = NULL;
			}
			continue;
		}
	read_tagged:
		for (;;) {
			if ((err = imap_conn_read_response(conn, &resp)) < 0)
				goto out;
			if (resp->kind == IMAP_RESP_TAGGED)
				break;
			if (resp->kind == IMAP_RESP_CONTINUATION && cmd->challenge != NULL) {
				err = answer_challenge(conn, cmd, resp, what);
				imap_response_free(resp);
				resp = NULL;
				if (err < 0)
					goto out;
				continue;
			}
			if (resp->kind == IMAP_RESP_CONTINUATION) {
				err = imap_conn_fail(
				    conn, IMAP_OUTCOME_PROTOCOL, NULL,
				    "unexpected continuation request from %s during %s", conn->host,
				    what);
				goto out;
			}
			dispatch_untagged(conn, resp, cb, ctx, &cb_err);
			resp = NULL;
		}
		done = true;
	}

	if (strcmp(resp->tag, conn->cur_tag) != 0) {
		err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
		                     "server %s answered tag %s while %s was waiting for %s",
		                     conn->host, resp->tag, what, conn->cur_tag);
		goto out;
	}
	imap_conn_handle_code(conn, resp);
	if (resp->status == IMAP_STATUS_OK) {
		err = cb_err;
	} else {
		err = tagged_failure(conn, resp, what);
	}
out:
	if (final_r != NULL && resp != NULL && resp->kind == IMAP_RESP_TAGGED) {
		*final_r = resp;
		resp = NULL;
	}
	imap_response_free(resp);
	g_free(what_buf);
	return err;
}

int imap_conn_run_pipelined(struct imap_conn *conn, struct imap_cmd **cmds, unsigned n,
                            imap_untagged_cb cb, void *ctx, int *results)
{
	typedef char tag_buf[16];
	tag_buf *tags;
	guint8 *done;
	unsigned left = n, sent = 0;
	int first_err = 0, cb_err = 0, err = 0;
	struct imap_response *resp = NULL;

	for (unsigned i = 0; i < n; i++)
		if (cmds[i]->chunks->len != 1 || cmds[i]->sensitive)
			err = imap_conn_fail_errno(conn, -EINVAL, false,
			                           "only one-line commands can be pipelined");
	if (err == 0 && conn->broken)
		err = conn->broken_err;
	if (err < 0) {
		for (unsigned i = 0; results != NULL && i < n; i++)
			results[i] = err;
		return err;
	}
	g_string_truncate(conn->error, 0);
	tags = g_new0(tag_buf, n);
	done = g_new0(guint8, n);
	for (unsigned i = 0; results != NULL && i < n; i++)
		results[i] = IMAP_PIPELINE_PENDING;
	for (unsigned i = 0; i < n; i++) {
		GString *first = g_ptr_array_index(cmds[i]->chunks, 0);
		conn->next_tag++;
		g_snprintf(tags[i], sizeof(tags[i]), "A%04u", conn->next_tag);
		g_string_prepend_c(first, ' ');
		g_string_prepend(first, tags[i]);
		imap_cmd_finish(cmds[i]);
	}
	for (; sent < n && sent < IMAP_PIPELINE_WINDOW; sent++) {
		g_strlcpy(conn->cur_tag, tags[sent], sizeof(conn->cur_tag));
		if ((err = send_chunk(conn, cmds[sent], 0)) < 0)
			goto out;
	}
	while (left > 0) {
		unsigned k = 0;
		/* the oldest command still waiting: an ESEARCH (TAG ...) must name it */
		while (done[k])
			k++;
		g_strlcpy(conn->cur_tag, tags[k], sizeof(conn->cur_tag));
		if ((err = imap_conn_read_response(conn, &resp)) < 0)
			goto out;
		if (resp->kind == IMAP_RESP_CONTINUATION) {
			err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
			                     "unexpected continuation request from %s", conn->host);
			goto out;
		}
		if (resp->kind != IMAP_RESP_TAGGED) {
			dispatch_untagged(conn, resp, cb, ctx, &cb_err);
			resp = NULL;
			continue;
		}
		/* Servers may complete pipelined commands in any order (RFC 9051 5.5). */
		for (k = 0; k < n && (done[k] || strcmp(resp->tag, tags[k]) != 0); k++)
			;
		if (k == n) {
			err = imap_conn_fail(conn, IMAP_OUTCOME_PROTOCOL, NULL,
			                     "server %s answered unknown tag %s", conn->host,
			                     resp->tag);
			goto out;
		}
		done[k] = 1;
		left--;
		cmds[k]->final_status = resp->status;
		g_free(cmds[k]->final_code);
		cmds[k]->final_code = g_strdup(resp->code);
		imap_conn_handle_code(conn, resp);
		if (results != NULL)
			results[k] = 0;
		if (resp->status != IMAP_STATUS_OK) {
			char *what = cmds[k]->what != NULL
			                 ? g_strdup(cmds[k]->what)
			                 : command_name(((GString *)g_ptr_array_index(
			                                     cmds[k]->chunks, 0))->str,
			                                tags[k]);
			/* every failure is recorded (results); the error text is the first one's */
			GString *first_text = first_err != 0 ? g_string_new(conn->error->str) : NULL;
			int e = tagged_failure(conn, resp, what);
			if (results != NULL)
				results[k] = e;
			if (first_err == 0)
				first_err = e;
			else
				g_string_assign(conn->error, first_text->str);
			if (first_text != NULL)
				g_string_free(first_text, TRUE);
			g_free(what);
		}
		imap_response_free(resp);
		resp = NULL;
		/* one answered, one more written (the window, above) */
		if (sent < n) {
			g_strlcpy(conn->cur_tag, tags[sent], sizeof(conn->cur_tag));
			if ((err = send_chunk(conn, cmds[sent], 0)) < 0)
				goto out;
			sent++;
		}
	}
	err = first_err != 0 ? first_err : cb_err;
out:
	if (results != NULL)
		for (unsigned i = 0; i < n; i++)
			if (!done[i])
				results[i] = err < 0 ? err : -EIO;
	imap_response_free(resp);
	g_free(tags);
	g_free(done);
	return err;
}

/* ---- pieces for idle.c: a command that is not answered at once ---------------------- */

int imap_conn_send_line(struct imap_conn *conn, const char *line)
{
	if (conn->broken)
		return conn->broken_err;
	trace("C:", line, strlen(line));
	return write_all(conn, line, strlen(line));
}

int imap_conn_read(struct imap_conn *conn, struct imap_response **resp_r)
{
	int err;

	*resp_r = NULL;
	if (conn->broken)
		return conn->broken_err;
	if ((err = imap_conn_read_response(conn, resp_r)) < 0)
		return err;
	if ((*resp_r)->kind == IMAP_RESP_UNTAGGED)
		handle_untagged(conn, *resp_r);
	else if ((*resp_r)->kind == IMAP_RESP_TAGGED)
		imap_conn_handle_code(conn, *resp_r);
	return 0;
}

bool imap_conn_buffered(const struct imap_conn *conn)
{
	return conn->rpos < conn->rbuf->len || (conn->ssl != NULL && SSL_pending(conn->ssl) > 0) ||
	       (conn->z != NULL && imap_zstream_pending(conn->z));
}

int imap_conn_simple_command(struct imap_conn *conn, const char *text)
{
	struct imap_cmd *cmd = imap_cmd_new();
	imap_cmd_add_text(cmd, text);
	int err = imap_conn_run(conn, cmd, NULL, NULL, NULL);
	imap_cmd_free(cmd);
	return err;
}

enum imap_literal_mode imap_conn_literal_mode(const struct imap_conn *conn)
{
	if (imap_conn_has_cap(conn, "LITERAL+"))
		return IMAP_LITERAL_PLUS;
	if (imap_conn_has_cap(conn, "LITERAL-"))
		return IMAP_LITERAL_MINUS;
	return IMAP_LITERAL_SYNC;
}

/* ---- TLS ------------------------------------------------------------------------------ */

static bool is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int imap_conn_start_tls(struct imap_conn *conn, const char *ca_file)
{
	int got;

	ERR_clear_error();
	got = imap_tls_ctx_get(ca_file, &conn->ssl_ctx);
	if (got == -EINVAL)
		return imap_conn_fail_errno(conn, -EINVAL, true,
		                            "cannot load CA file %s: %s; check the ca_file setting",
		                            ca_file, ssl_reason());
	if (got < 0)
		return imap_conn_fail_errno(conn, got, true, "cannot set up TLS: %s",
		                            ssl_reason());

	conn->ssl = SSL_new(conn->ssl_ctx);
	if (conn->ssl == NULL || SSL_set_fd(conn->ssl, conn->fd) != 1)
		return imap_conn_fail_errno(conn, -ENOMEM, true, "cannot set up TLS: %s",
		                            ssl_reason());
	SSL_set_hostflags(conn->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip_literal(conn->host)) {
		/* no SNI for addresses (RFC 6066); check the address against the IP SANs */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl), conn->host) != 1)
			return imap_conn_fail_errno(
			    conn, -EINVAL, true, "cannot check TLS certificate for %s", conn->host);
	} else {
		if (SSL_set1_host(conn->ssl, conn->host) != 1 ||
		    SSL_set_tlsext_host_name(conn->ssl, conn->host) != 1)
			return imap_conn_fail_errno(
			    conn, -EINVAL, true, "cannot check TLS certificate for %s", conn->host);
	}

	gint64 deadline = deadline_after(conn->timeout_ms);
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(conn->ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(conn->ssl, r), err;
		if (e == SSL_ERROR_WANT_READ) {
			err = wait_fd(conn->fd, POLLIN, deadline);
		} else if (e == SSL_ERROR_WANT_WRITE) {
			err = wait_fd(conn->fd, POLLOUT, deadline);
		} else {
			long vr = SSL_get_verify_result(conn->ssl);
			if (vr != X509_V_OK)
				return imap_conn_fail(
				    conn, IMAP_OUTCOME_TLS_VERIFY, NULL,
				    "TLS certificate verification failed for %s: %s", conn->host,
				    X509_verify_cert_error_string(vr));
			return imap_conn_fail(conn, IMAP_OUTCOME_LOST, NULL,
			                      "TLS handshake with %s failed: %s", conn->host,
			                      e == SSL_ERROR_SYSCALL && errno ? g_strerror(errno)
			                                                      : ssl_reason());
		}
		if (err < 0)
			return io_error(conn, err, "during the TLS handshake with");
	}
	/* belt and braces: SSL_VERIFY_PEER already failed the handshake otherwise */
	X509 *peer = SSL_get1_peer_certificate(conn->ssl);
	long vr = SSL_get_verify_result(conn->ssl);
	X509_free(peer);
	if (peer == NULL || vr != X509_V_OK)
		return imap_conn_fail(conn, IMAP_OUTCOME_TLS_VERIFY, NULL,
		                      "TLS certificate verification failed for %s: %s", conn->host,
		                      peer == NULL ? "no certificate"
		                                   : X509_verify_cert_error_string(vr));
	g_debug("TLS with %s: %s, %s", conn->host, SSL_get_version(conn->ssl),
	        SSL_get_cipher_name(conn->ssl));
	return 0;
}

/* ---- COMPRESS=DEFLATE, once the server has said OK (session.c) -------------------- */

int imap_conn_start_deflate(struct imap_conn *conn)
{
	int err;

	if ((err = imap_zstream_new(&conn->z)) < 0)
		return imap_conn_fail_errno(conn, err, true, "cannot set up compression: %s",
		                            g_strerror(-err));
	conn->zraw = g_malloc(READ_CHUNK);
	conn->zsend = g_byte_array_new();
	/* the server compresses from the byte after its tagged OK: what was read past it
	 * already is compressed */
	if (conn->rpos < conn->rbuf->len) {
		imap_zstream_push(conn->z, conn->rbuf->data + conn->rpos,
		                  conn->rbuf->len - conn->rpos);
		conn->rpos = conn->rbuf->len;
	}
	g_debug("COMPRESS DEFLATE active with %s", conn->host);
	return 0;
}

/* ---- ending ------------------------------------------------------------------------- */

void imap_conn_free(struct imap_conn *conn)
{
	if (conn->z != NULL) {
		uint64_t raw_in, plain_in, raw_out, plain_out;
		imap_zstream_counts(conn->z, &raw_in, &plain_in, &raw_out, &plain_out);
		g_debug("compression with %s: received %" G_GUINT64_FORMAT
		        " bytes for %" G_GUINT64_FORMAT ", sent %" G_GUINT64_FORMAT
		        " for %" G_GUINT64_FORMAT,
		        conn->host, raw_in, plain_in, raw_out, plain_out);
		imap_zstream_free(conn->z);
		g_free(conn->zraw);
		g_byte_array_unref(conn->zsend);
	}
	if (conn->ssl != NULL)
		SSL_free(conn->ssl);
	if (conn->ssl_ctx != NULL)
		SSL_CTX_free(conn->ssl_ctx);
	if (conn->fd >= 0)
		close(conn->fd);
	g_free(conn->host);
	g_free(conn->port);
	g_byte_array_unref(conn->rbuf);
	imap_parser_free(conn->parser);
	g_hash_table_unref(conn->caps);
	g_free(conn->mailbox);
	g_free(conn->bye_text);
	g_string_free(conn->error, TRUE);
	g_free(conn);
}

void imap_conn_close(struct imap_conn *conn)
{
	if (conn == NULL)
		return;
	if (!conn->broken && conn->fd >= 0) {
		conn->logging_out = true;
		imap_conn_simple_command(conn, "LOGOUT");
		if (conn->ssl != NULL && !conn->broken)
			SSL_shutdown(conn->ssl); /* one non-blocking attempt; no reply awaited */
	}
	imap_conn_free(conn);
}

void imap_conn_interrupt(struct imap_conn *conn)
{
	__atomic_store_n(&conn->interrupted, 1, __ATOMIC_RELEASE);
	/* wakes the owner's poll(); its next recv()/send() fails, and io_error says why */
	if (conn->fd >= 0)
		shutdown(conn->fd, SHUT_RDWR);
}

const char *imap_conn_error(const struct imap_conn *conn)
{
	return conn->error->str;
}

bool imap_conn_is_broken(const struct imap_conn *conn)
{
	return conn->broken;
}

bool imap_conn_has_cap(const struct imap_conn *conn, const char *cap)
{
	char *up = g_ascii_strup(cap, -1);
	bool r = g_hash_table_contains(conn->caps, up);
	g_free(up);
	return r;
}

bool imap_conn_qresync(const struct imap_conn *conn)
{
	return conn->qresync != IMAP_QRESYNC_OFF;
}

const char *imap_conn_mailbox(const struct imap_conn *conn)
{
	return conn->mailbox;
}

uint32_t imap_conn_uidvalidity(const struct imap_conn *conn)
{
	return conn->mailbox != NULL ? conn->mailbox_uidvalidity : 0;
}
