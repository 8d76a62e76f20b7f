/* test_pool.c — tests of struct imap_pool against an in-process fake server on loopback.
 *
 * The server (one GLib thread per connection) greets, accepts AUTHENTICATE and answers every
 * command with OK, so the pool's own behaviour is what is tested: never more than max_conns
 * connections in use, waiting bounded by the timeout, broken connections replaced, and an
 * outage logged once (g_warning) with one g_message on recovery, with backoff in between.
 */
#include "imap-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

/* ---- fake server --------------------------------------------------------------------- */

struct server {
	int lfd;
	char port[16];
	GThread *acceptor;
	gint accepted;
	gint close_on_noop; /* when set, the next NOOP closes the connection */
	gint stop;
	const char *secret; /* nullable: the only password AUTHENTICATE PLAIN accepts */
	gint logins;        /* AUTHENTICATE commands received */
	gint silent;        /* when set, commands other than the login get no answer */
};

struct conn_arg {
	struct server *srv;
	int fd;
};

static void send_str(int fd, const char *s)
{
	(void)!write(fd, s, strlen(s));
}

static gpointer conn_thread(gpointer data)
{
	struct conn_arg *ca = data;
	int fd = ca->fd;
	send_str(fd, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] pool test ready\r\n");
	GString *buf = g_string_new(NULL);
	char tmp[4096];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n <= 0)
			break;
		g_string_append_len(buf, tmp, n);
		char *eol;
		while ((eol = strstr(buf->str, "\r\n")) != NULL) {
			char *line = g_strndup(buf->str, (gsize)(eol - buf->str));
			g_string_erase(buf, 0, eol - buf->str + 2);
			char *sp = strchr(line, ' ');
			if (sp == NULL) {
				g_free(line);
				continue;
			}
			*sp = '\0';
			const char *cmd = sp + 1;
			char *reply;
			if (g_str_has_prefix(cmd, "LOGOUT")) {
				reply = g_strdup_printf("* BYE bye\r\n%s OK done\r\n", line);
				send_str(fd, reply);
				g_free(reply);
				g_free(line);
				goto out;
			}
			if (g_str_has_prefix(cmd, "AUTHENTICATE PLAIN ")) {
				/* "\0user\0password": the password is what follows the last NUL */
				gsize rn = 0;
				guchar *raw = g_base64_decode(cmd + 19, &rn);
				const char *pw =
				    rn > 0 ? (const char *)memrchr(raw, '\0', rn) : NULL;
				char *got =
				    pw != NULL ? g_strndup(pw + 1,
				                           rn - (gsize)(pw + 1 - (const char *)raw))
				               : NULL;
				bool ok =
				    ca->srv->secret == NULL || g_strcmp0(got, ca->srv->secret) == 0;
				g_atomic_int_inc(&ca->srv->logins);
				reply = g_strdup_printf(
				    ok ? "%s OK [CAPABILITY IMAP4rev1] in\r\n"
				       : "%s NO [AUTHENTICATIONFAILED] bad token\r\n",
				    line);
				send_str(fd, reply);
				g_free(reply);
				g_free(got);
				g_free(raw);
				g_free(line);
				continue;
			}
			if (g_atomic_int_get(&ca->srv->silent)) {
				g_free(line);
				continue;
			}
			if (g_str_has_prefix(cmd, "NOOP") &&
			    g_atomic_int_compare_and_exchange(&ca->srv->close_on_noop, 1, 0)) {
				g_free(line);
				goto out;
			}
			reply = g_strdup_printf("%s OK [CAPABILITY IMAP4rev1] done\r\n", line);
			send_str(fd, reply);
			g_free(reply);
			g_free(line);
		}
	}
out:
	g_string_free(buf, TRUE);
	close(fd);
	g_free(ca);
	return NULL;
}

static gpointer acceptor(gpointer data)
{
	struct server *srv = data;
	for (;;) {
		int fd = accept(srv->lfd, NULL, NULL);
		if (fd < 0 || g_atomic_int_get(&srv->stop)) {
			if (fd >= 0)
				close(fd);
			break;
		}
		g_atomic_int_inc(&srv->accepted);
		struct conn_arg *ca = g_new(struct conn_arg, 1);
		ca->srv = srv;
		ca->fd = fd;
		g_thread_unref(g_thread_new("conn", conn_thread, ca));
	}
	return NULL;
}

/* port 0: any free port; else that port (for the outage test). */
static struct server *server_start(unsigned port)
{
	struct server *srv = g_new0(struct server, 1);
	srv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_assert_cmpint(bind(srv->lfd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
	g_assert_cmpint(listen(srv->lfd, 16), ==, 0);
	socklen_t len = sizeof(a);
	getsockname(srv->lfd, (struct sockaddr *)&a, &len);
	g_snprintf(srv->port, sizeof(srv->port), "%u", ntohs(a.sin_port));
	srv->acceptor = g_thread_new("acceptor", acceptor, srv);
	return srv;
}

static void server_stop(struct server *srv)
{
	g_atomic_int_set(&srv->stop, 1);
	/* wake accept() */
	shutdown(srv->lfd, SHUT_RDWR);
	g_thread_join(srv->acceptor);
	close(srv->lfd);
	g_free(srv);
}

static struct imap_config config(const char *port, unsigned timeout_ms)
{
	struct imap_config cfg = {
	    .host = "127.0.0.1",
	    .port = port,
	    .tls = IMAP_TLS_NONE,
	    .user = "u",
	    .password = "p",
	    .timeout_ms = timeout_ms,
	};
	return cfg;
}

/* ---- log capture --------------------------------------------------------------------- */

static gint n_outage_warnings, n_restored_messages, n_login_warnings;

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n,
                               gpointer user_data)
{
	const char *msg = NULL;
	for (gsize i = 0; i < n; i++) {
		if (strcmp(fields[i].key, "MESSAGE") == 0)
			msg = fields[i].value;
	}
	if (msg != NULL && (level & G_LOG_LEVEL_WARNING) && strstr(msg, "cannot reach") != NULL)
		g_atomic_int_inc(&n_outage_warnings);
	if (msg != NULL && (level & G_LOG_LEVEL_WARNING) && strstr(msg, "cannot log in") != NULL)
		g_atomic_int_inc(&n_login_warnings);
	if (msg != NULL && (level & G_LOG_LEVEL_MESSAGE) && strstr(msg, "restored") != NULL)
		g_atomic_int_inc(&n_restored_messages);
	if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE))
		return g_log_writer_standard_streams(level, fields, n, user_data);
	return G_LOG_WRITER_HANDLED;
}

/* ---- tests --------------------------------------------------------------------------- */

struct worker {
	struct imap_pool *pool;
	gint *in_use;
	gint *max_in_use;
	int failures;
};

static gpointer worker(gpointer data)
{
	struct worker *w = data;
	for (int i = 0; i < 5; i++) {
		struct imap_conn *conn;
		char *msg = NULL;
		int err = imap_pool_acquire(w->pool, &conn, &msg);
		if (err < 0) {
			g_printerr("acquire: %s\n", msg);
			g_free(msg);
			w->failures++;
			continue;
		}
		int now = g_atomic_int_add(w->in_use, 1) + 1;
		int old;
		while (now > (old = g_atomic_int_get(w->max_in_use)) &&
		       !g_atomic_int_compare_and_exchange(w->max_in_use, old, now))
			;
		if (imap_noop(conn) < 0)
			w->failures++;
		g_usleep(20000);
		g_atomic_int_add(w->in_use, -1);
		imap_pool_release(w->pool, conn);
	}
	return NULL;
}

static void test_concurrency(void)
{
	struct server *srv = server_start(0);
	struct imap_config cfg = config(srv->port, 5000);
	struct imap_pool *pool;
	g_assert_cmpint(imap_pool_new(&cfg, 2, &pool), ==, 0);
	gint in_use = 0, max_in_use = 0;
	struct worker w[6];
	GThread *t[6];
	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){pool, &in_use, &max_in_use, 0};
		t[i] = g_thread_new("worker", worker, &w[i]);
	}
	for (int i = 0; i < 6; i++) {
		g_thread_join(t[i]);
		g_assert_cmpint(w[i].failures, ==, 0);
	}
	g_assert_cmpint(max_in_use, <=, 2);
	g_assert_cmpint(max_in_use, >=, 1);
	g_assert_cmpint(g_atomic_int_get(&srv->accepted), <=, 2);
	imap_pool_free(pool);
	server_stop(srv);
}

static void test_wait_times_out(void)
{
	struct server *srv = server_start(0);
	struct imap_config cfg = config(srv->port, 300);
	struct imap_pool *pool;
	g_assert_cmpint(imap_pool_new(&cfg, 1, &pool), ==, 0);
	struct imap_conn *a, *b = NULL;
	char *msg = NULL;
	g_assert_cmpint(imap_pool_acquire(pool, &a, NULL), ==, 0);
	gint64 t0 = g_get_monotonic_time();
	g_assert_cmpint(imap_pool_acquire(pool, &b, &msg), ==, -EBUSY);
	gint64 waited = g_get_monotonic_time() - t0;
	g_assert_cmpint(waited, >=, 290000);
	g_assert_cmpint(waited, <, 2000000);
	g_assert_null(b);
	g_assert_nonnull(strstr(msg, "busy"));
	g_free(msg);
	imap_pool_release(pool, a);
	/* released: available again without a new connection */
	g_assert_cmpint(imap_pool_acquire(pool, &b, NULL), ==, 0);
	g_assert_true(a == b);
	imap_pool_release(pool, b);
	g_assert_cmpint(g_atomic_int_get(&srv->accepted), ==, 1);
	imap_pool_free(pool);
	server_stop(srv);
}

static void test_broken_replaced(void)
{
	struct server *srv = server_start(0);
	struct imap_config cfg = config(srv->port, 2000);
	struct imap_pool *pool;
	g_assert_cmpint(imap_pool_new(&cfg, 1, &pool), ==, 0);
	struct imap_conn *c;
	g_assert_cmpint(imap_pool_acquire(pool, &c, NULL), ==, 0);
	g_atomic_int_set(&srv->close_on_noop, 1);
	g_assert_cmpint(imap_noop(c), ==, -ECONNABORTED);
	g_assert_true(imap_conn_is_broken(c));
	imap_pool_release(pool, c);
	g_assert_cmpint(imap_pool_acquire(pool, &c, NULL), ==, 0);
	g_assert_false(imap_conn_is_broken(c));
	g_assert_cmpint(imap_noop(c), ==, 0);
	imap_pool_release(pool, c);
	g_assert_cmpint(g_atomic_int_get(&srv->accepted), ==, 2);
	imap_pool_free(pool);
	server_stop(srv);
}

static void test_outage_logged_once(void)
{
	/* find a free port, leave it closed */
	struct server *probe = server_start(0);
	unsigned port = (unsigned)atoi(probe->port);
	char port_s[16];
	g_strlcpy(port_s, probe->port, sizeof(port_s));
	server_stop(probe);

	struct imap_config cfg = config(port_s, 1000);
	struct imap_pool *pool;
	g_assert_cmpint(imap_pool_new(&cfg, 2, &pool), ==, 0);
	struct imap_conn *c = NULL;
	char *msg = NULL;
	g_atomic_int_set(&n_outage_warnings, 0);
	g_atomic_int_set(&n_restored_messages, 0);

	g_assert_cmpint(imap_pool_acquire(pool, &c, &msg), ==, -ECONNREFUSED);
	g_assert_nonnull(strstr(msg, "Connection refused"));
	g_free(msg);
	g_assert_cmpint(g_atomic_int_get(&n_outage_warnings), ==, 1);
	/* during backoff: fails fast, no new log line */
	for (int i = 0; i < 20; i++) {
		gint64 t0 = g_get_monotonic_time();
		g_assert_cmpint(imap_pool_acquire(pool, &c, NULL), ==, -ECONNREFUSED);
		g_assert_cmpint(g_get_monotonic_time() - t0, <, 100000);
	}
	g_assert_cmpint(g_atomic_int_get(&n_outage_warnings), ==, 1);
	/* after the first backoff (1 s) a real attempt fails again: still one warning */
	g_usleep(1100000);
	g_assert_cmpint(imap_pool_acquire(pool, &c, NULL), ==, -ECONNREFUSED);
	g_assert_cmpint(g_atomic_int_get(&n_outage_warnings), ==, 1);
	/* the server comes back; the second backoff (2 s) must pass before the next try */
	struct server *srv = server_start(port);
	g_assert_cmpint(imap_pool_acquire(pool, &c, NULL), ==, -ECONNREFUSED);
	g_assert_cmpint(g_atomic_int_get(&srv->accepted), ==, 0);
	g_usleep(2100000);
	g_assert_cmpint(imap_pool_acquire(pool, &c, NULL), ==, 0);
	g_assert_cmpint(g_atomic_int_get(&n_restored_messages), ==, 1);
	g_assert_cmpint(g_atomic_int_get(&n_outage_warnings), ==, 1);
	imap_pool_release(pool, c);
	imap_pool_free(pool);
	server_stop(srv);
}

/* A token provider as fs/ has one: hands out its current token and, asked with the refused
 * one, moves on to the next of its list (or fails when the list is exhausted). */
struct provider {
	GMutex lock;
	const char *const *tokens;
	unsigned cur;
	gint gets, refreshes;
};

static int provide(void *ctx, const char *refused, char **secret_r, char **errmsg_r)
{
	struct provider *p = ctx;
	int err = 0;
	g_mutex_lock(&p->lock);
	if (refused == NULL) {
		g_atomic_int_inc(&p->gets);
	} else if (strcmp(refused, p->tokens[p->cur]) == 0) {
		g_atomic_int_inc(&p->refreshes);
		if (p->tokens[p->cur + 1] != NULL)
			p->cur++;
		else
			err = -EIO;
	}
	if (err == 0)
		*secret_r = g_strdup(p->tokens[p->cur]);
	else
		*errmsg_r = g_strdup("oauth_cmd failed");
	g_mutex_unlock(&p->lock);
	return err;
}

static void test_credential_refreshed_once(void)
{
	static const char *const tokens[] = {"expired", "fresh", "also-bad", NULL};
	struct server *srv = server_start(0);
	srv->secret = "fresh";
	struct provider prov = {.tokens = tokens};
	g_mutex_init(&prov.lock);
	struct imap_config cfg = config(srv->port, 2000);
	cfg.password = NULL;
	cfg.credential = provide;
	cfg.credential_ctx = &prov;
	struct imap_pool *pool;
	g_assert_cmpint(imap_pool_new(&cfg, 2, &pool), ==, 0);

	/* the first token is refused: one refresh, one more login, and the caller never knows */
	struct imap_conn *a = NULL, *b = NULL;
	char *msg = NULL;
	g_assert_cmpint(imap_pool_acquire(pool, &a, &msg), ==, 0);
	g_assert_null(msg);
	g_assert_cmpint(g_atomic_int_get(&prov.refreshes), ==, 1);
	g_assert_cmpint(g_atomic_int_get(&srv->logins), ==, 2);
	/* a second connection keeps the token that works: no refresh */
	g_assert_cmpint(imap_pool_acquire(pool, &b, NULL), ==, 0);
	g_assert_cmpint(g_atomic_int_get(&prov.refreshes), ==, 1);
	g_assert_cmpint(g_atomic_int_get(&srv->logins), ==, 3);
	imap_pool_release(pool, a);
	imap_pool_release(pool, b);
	imap_pool_free(pool);

	/* the token is revoked: the next connect refreshes once; the new one is refused too, so
	 * the connect fails with the server's reason (and is not retried again) */
	srv->secret = "never";
	g_atomic_int_set(&srv->logins, 0);
	g_atomic_int_set(&n_login_warnings, 0);
	g_assert_cmpint(imap_pool_new(&cfg, 1, &pool), ==, 0);
	g_assert_cmpint(imap_pool_acquire(pool, &a, &msg), ==, -EACCES);
	g_assert_nonnull(strstr(msg, "login failed: [AUTHENTICATIONFAILED] bad token"));
	g_free(msg);
	msg = NULL;
	g_assert_cmpint(g_atomic_int_get(&prov.refreshes), ==, 2);
	g_assert_cmpint(g_atomic_int_get(&srv->logins), ==, 2);
	g_assert_cmpint(g_atomic_int_get(&n_login_warnings), ==, 1);
	imap_pool_free(pool);

	/* the provider has nothing newer: its reason joins the server's */
	g_assert_cmpint(imap_pool_new(&cfg, 1, &pool), ==, 0);
	g_assert_cmpint(imap_pool_acquire(pool, &a, &msg), ==, -EACCES);
	g_assert_nonnull(strstr(msg, "bad token; oauth_cmd failed"));
	g_free(msg);
	g_assert_cmpint(g_atomic_int_get(&srv->logins), ==, 3);
	imap_pool_free(pool);
	g_mutex_clear(&prov.lock);
	server_stop(srv);
}

struct noop_run {
	struct imap_conn *conn;
	int ret;
	gint64 took_us;
};

static gpointer noop_thread(gpointer p)
{
	struct noop_run *r = p;
	gint64 t0 = g_get_monotonic_time();
	r->ret = imap_noop(r->conn);
	r->took_us = g_get_monotonic_time() - t0;
	return NULL;
}

/* A silent server: imap_pool_interrupt makes the calls waiting on the pool's connections give
 * up at once instead of after their timeout, and no new connection is tried for the timeout
 * unless imap_pool_retry_now says the server is back. */
static void test_interrupt(void)
{
	struct server *srv = server_start(0);
	struct imap_config cfg = config(srv->port, 4000);
	struct imap_pool *pool;
	struct noop_run runs[2] = {{0}, {0}};
	GThread *th[2];
	struct imap_conn *conn = NULL;
	char *why = NULL;
	gint64 t0;

	g_assert_cmpint(imap_pool_new(&cfg, 3, &pool), ==, 0);
	for (int i = 0; i < 2; i++)
		g_assert_cmpint(imap_pool_acquire(pool, &runs[i].conn, NULL), ==, 0);
	g_atomic_int_set(&srv->silent, 1);
	for (int i = 0; i < 2; i++)
		th[i] = g_thread_new("noop", noop_thread, &runs[i]);
	g_usleep(500 * 1000);
	t0 = g_get_monotonic_time();
	imap_pool_interrupt(pool, "a command timed out");
	for (int i = 0; i < 2; i++) {
		g_thread_join(th[i]);
		g_assert_cmpint(runs[i].ret, ==, -ECONNABORTED);
		g_assert_nonnull(strstr(imap_conn_error(runs[i].conn), "gave up"));
		/* well before the 4 s timeout: at once after the interrupt */
		g_assert_cmpint(runs[i].took_us, <, 1500 * 1000);
		imap_pool_release(pool, runs[i].conn);
	}
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 1000 * 1000);
	/* no new connection to the silent server meanwhile */
	t0 = g_get_monotonic_time();
	g_assert_cmpint(imap_pool_acquire(pool, &conn, &why), ==, -ETIMEDOUT);
	g_assert_cmpstr(why, ==, "a command timed out");
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 200 * 1000);
	g_clear_pointer(&why, g_free);
	/* the server answers again */
	g_atomic_int_set(&srv->silent, 0);
	imap_pool_retry_now(pool);
	g_assert_cmpint(imap_pool_acquire(pool, &conn, NULL), ==, 0);
	g_assert_cmpint(imap_noop(conn), ==, 0);
	imap_pool_release(pool, conn);
	imap_pool_free(pool);
	server_stop(srv);
}

int main(int argc, char **argv)
{
	g_log_set_writer_func(writer, NULL, NULL);
	g_test_init(&argc, &argv, NULL);
	/* the pool's g_warning is expected here; only errors stay fatal */
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	g_test_add_func("/pool/concurrency", test_concurrency);
	g_test_add_func("/pool/wait-times-out", test_wait_times_out);
	g_test_add_func("/pool/broken-replaced", test_broken_replaced);
	g_test_add_func("/pool/outage-logged-once", test_outage_logged_once);
	g_test_add_func("/pool/credential-refreshed-once", test_credential_refreshed_once);
	g_test_add_func("/pool/interrupt", test_interrupt);
	return g_test_run();
}
