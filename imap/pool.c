/* pool.c — a thread-safe pool of logged-in IMAP connections.
 *
 * The FUSE daemon serves requests on several threads; each borrows a connection for exclusive
 * use (imap_pool_acquire/imap_pool_release).  Connections are opened lazily up to max_conns.
 * When the server is unreachable, new attempts are spaced by exponential backoff (1 s doubling
 * to 60 s) so that a burst of requests does not hammer it, and the outage is logged once when it
 * starts (g_warning) and once when it ends (g_message) rather than once per attempt — once per
 * server, however many pools of the process talk to it.  A pool whose secret can change (an
 * OAuth2 access token) asks its credential callback for it at each connect, and for a fresh
 * one, once, when the server refuses it.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "imap"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS   60000
/* An idle connection unused for this long gets a NOOP before it is handed out, because
 * servers drop idle sessions (RFC 3501 allows 30 minutes). */
#define IDLE_CHECK_US (60 * G_USEC_PER_SEC)

struct idle_conn {
	struct imap_conn *conn;
	gint64 since; /* monotonic µs when it was released */
};

/* Lock rules: `lock` protects every field below it.  It is never held during network I/O
 * (connect, login, NOOP, LOGOUT): a slot is reserved under the lock (`total`), the I/O is done
 * unlocked, and the result is published under the lock again.  No other lock is taken while
 * holding it, and callbacks are never called with it held.  A struct imap_conn is never
 * touched under the lock except to move it between the idle queue and a caller. */
struct imap_pool {
	/* immutable after imap_pool_new: safe to read without the lock */
	struct imap_config cfg; /* strings owned (copies) */
	unsigned max_conns;

	GMutex lock;
	GCond cond;     /* signalled when a connection is released or a slot freed */
	GQueue idle;    /* of struct idle_conn *, most recently released at the head */
	GPtrArray *busy; /* struct imap_conn * handed out (imap_pool_interrupt), borrowed */
	unsigned total;  /* connections in use + idle + being opened; <= cap */
	unsigned cap;    /* max_conns, or fewer while the server refuses more ([LIMIT]) */
	gint64 cap_until; /* monotonic µs when cap goes back to max_conns */
	/* outage state */
	bool outage;         /* the last open failed; g_warning already printed */
	gint64 retry_at;     /* monotonic µs before which no new open is attempted */
	unsigned backoff_ms; /* next delay after a failure */
	bool probing;        /* during an outage, one thread is trying to reconnect */
	char *last_error;    /* reason of the last failed open */
	int last_err;
	/* imap_pool_interrupt: no new connection is opened before hold_until (µs) */
	gint64 hold_until;
	char *hold_why;
};

static char *dup_secret(const char *s)
{
	return s != NULL ? g_strdup(s) : NULL;
}

static void free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

/* Open a connection with the secret the credential callback holds.  A refused secret (-EACCES)
 * gets one more try with a fresh one: access tokens expire, and a login is where the server
 * says so.  Called without the lock. */
static int open_with_credential(struct imap_pool *pool, struct imap_conn **conn_r, char **msg_r)
{
	struct imap_config cfg = pool->cfg;
	char *secret = NULL, *fresh = NULL, *why = NULL;
	int err = cfg.credential(cfg.credential_ctx, NULL, &secret, msg_r);
	if (err < 0)
		return err;
	cfg.password = secret;
	err = imap_conn_open(&cfg, conn_r, msg_r);
	if (err == -EACCES) {
		g_debug("%s refused the login (%s); asking for a new secret", cfg.host,
		        *msg_r != NULL ? *msg_r : "no reason");
		int e = cfg.credential(cfg.credential_ctx, secret, &fresh, &why);
		if (e < 0) {
			/* the refusal is the news; why no new secret came is worth adding */
			char *both = g_strdup_printf("%s; %s", *msg_r != NULL ? *msg_r : "refused",
			                             why != NULL ? why : g_strerror(-e));
			g_free(*msg_r);
			*msg_r = both;
		} else {
			g_clear_pointer(msg_r, g_free);
			cfg.password = fresh;
			err = imap_conn_open(&cfg, conn_r, msg_r);
		}
	}
	g_free(why);
	free_secret(secret);
	free_secret(fresh);
	return err;
}

static int open_conn(struct imap_pool *pool, struct imap_conn **conn_r, char **msg_r)
{
	if (pool->cfg.credential != NULL)
		return open_with_credential(pool, conn_r, msg_r);
	return imap_conn_open(&pool->cfg, conn_r, msg_r);
}

int imap_pool_new(const struct imap_config *cfg, unsigned max_conns, struct imap_pool **pool_r)
{
	*pool_r = NULL;
	if (cfg->host == NULL || max_conns == 0)
		return -EINVAL;
	struct imap_pool *pool = g_new0(struct imap_pool, 1);
	pool->cfg = *cfg;
	pool->cfg.host = g_strdup(cfg->host);
	pool->cfg.port = g_strdup(cfg->port);
	pool->cfg.user = g_strdup(cfg->user);
	pool->cfg.password = dup_secret(cfg->password);
	pool->cfg.ca_file = g_strdup(cfg->ca_file);
	if (pool->cfg.timeout_ms == 0)
		pool->cfg.timeout_ms = IMAP_DEFAULT_TIMEOUT_MS;
	pool->max_conns = max_conns;
	pool->cap = max_conns;
	g_mutex_init(&pool->lock);
	g_cond_init(&pool->cond);
	g_queue_init(&pool->idle);
	pool->busy = g_ptr_array_new();
	pool->backoff_ms = BACKOFF_FIRST_MS;
	*pool_r = pool;
	return 0;
}

/* A daemon may keep several pools to one server (listing, reading, read-ahead); an outage hits
 * them all at once and should still read as one event in the log.  So the warning is printed
 * when the first pool for a server ("host:port") enters an outage and the recovery message when
 * the last one leaves it.  outage_lock protects outage_pools (server -> pools in outage); it is
 * taken with a pool's lock held and nothing is taken under it (lock order: pool, then this). */
static GMutex outage_lock;
static GHashTable *outage_pools;

static char *server_key(const struct imap_pool *pool)
{
	return g_strdup_printf("%s:%s", pool->cfg.host, pool->cfg.port ? pool->cfg.port : "");
}

/* Returns true when pool is the first one of its server to enter an outage. */
static bool outage_enter(const struct imap_pool *pool)
{
	char *key = server_key(pool);
	g_mutex_lock(&outage_lock);
	if (outage_pools == NULL)
		outage_pools = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(outage_pools, key));
	g_hash_table_insert(outage_pools, key, GUINT_TO_POINTER(n + 1)); /* takes key */
	g_mutex_unlock(&outage_lock);
	return n == 0;
}

/* Returns true when pool was the last one of its server in an outage. */
static bool outage_leave(const struct imap_pool *pool)
{
	char *key = server_key(pool);
	g_mutex_lock(&outage_lock);
	guint n = outage_pools ? GPOINTER_TO_UINT(g_hash_table_lookup(outage_pools, key)) : 0;
	if (n > 1)
		g_hash_table_insert(outage_pools, g_strdup(key), GUINT_TO_POINTER(n - 1));
	else if (n == 1)
		g_hash_table_remove(outage_pools, key);
	g_mutex_unlock(&outage_lock);
	g_free(key);
	return n == 1;
}

/* Called with the lock held after an open attempt (or NOOP check) finished. */
static void note_success(struct imap_pool *pool)
{
	if (pool->outage && outage_leave(pool))
		g_message("connection to %s restored", pool->cfg.host);
	pool->outage = false;
	pool->retry_at = 0;
	pool->backoff_ms = BACKOFF_FIRST_MS;
}

static void note_failure(struct imap_pool *pool, int err, const char *msg)
{
	/* once per outage; and once more when an unreachable server answers again but refuses
	 * the login (an expired token, a changed password): that is news the user must see */
	if ((!pool->outage && outage_enter(pool)) ||
	    (pool->outage && err == -EACCES && pool->last_err != -EACCES))
		g_warning("%s IMAP server %s: %s (retrying with backoff)",
		          err == -EACCES ? "cannot log in to" : "cannot reach", pool->cfg.host,
		          msg);
	pool->outage = true;
	pool->retry_at = g_get_monotonic_time() + (gint64)pool->backoff_ms * 1000;
	pool->backoff_ms = MIN(pool->backoff_ms * 2, BACKOFF_MAX_MS);
	g_free(pool->last_error);
	pool->last_error = g_strdup(msg);
	pool->last_err = err;
}

int imap_pool_acquire(struct imap_pool *pool, struct imap_conn **conn_r, char **errmsg_r)
{
	*conn_r = NULL;
	if (errmsg_r != NULL)
		*errmsg_r = NULL;
	gint64 deadline = g_get_monotonic_time() + (gint64)pool->cfg.timeout_ms * 1000;

	g_mutex_lock(&pool->lock);
	for (;;) {
		struct idle_conn *ic = g_queue_pop_head(&pool->idle);
		if (ic != NULL) {
			struct imap_conn *conn = ic->conn;
			gint64 since = ic->since;
			g_free(ic);
			if (__atomic_load_n(&conn->interrupted, __ATOMIC_ACQUIRE)) {
				/* its socket is shut down: closing it costs no waiting */
				g_mutex_unlock(&pool->lock);
				imap_conn_close(conn);
				g_mutex_lock(&pool->lock);
				pool->total--;
				continue;
			}
			g_ptr_array_add(pool->busy, conn);
			if (g_get_monotonic_time() - since < IDLE_CHECK_US) {
				g_mutex_unlock(&pool->lock);
				*conn_r = conn;
				return 0;
			}
			/* stale: check it without the lock */
			g_mutex_unlock(&pool->lock);
			if (imap_noop(conn) == 0) {
				*conn_r = conn;
				return 0;
			}
			g_mutex_lock(&pool->lock);
			g_ptr_array_remove_fast(pool->busy, conn);
			g_mutex_unlock(&pool->lock);
			imap_conn_close(conn);
			g_mutex_lock(&pool->lock);
			pool->total--;
			continue;
		}
		if (pool->cap < pool->max_conns && g_get_monotonic_time() >= pool->cap_until)
			pool->cap = pool->max_conns; /* try for more again */
		if (pool->total < pool->cap) {
			if (g_get_monotonic_time() < pool->hold_until) {
				/* interrupted: the server stopped answering (imap_pool_interrupt) */
				if (errmsg_r != NULL)
					*errmsg_r = g_strdup(pool->hold_why);
				g_mutex_unlock(&pool->lock);
				return -ETIMEDOUT;
			}
			if (pool->outage &&
			    (pool->probing || g_get_monotonic_time() < pool->retry_at)) {
				/* in backoff: fail fast instead of queueing behind a dead server */
				int err = pool->last_err;
				if (errmsg_r != NULL)
					*errmsg_r = g_strdup(pool->last_error);
				g_mutex_unlock(&pool->lock);
				return err;
			}
			pool->total++; /* reserve the slot */
			pool->probing = pool->outage;
			g_mutex_unlock(&pool->lock);

			char *msg = NULL;
			struct imap_conn *conn = NULL;
			int err = open_conn(pool, &conn, &msg);

			g_mutex_lock(&pool->lock);
			pool->probing = false;
			if (err == 0) {
				note_success(pool);
				g_ptr_array_add(pool->busy, conn);
				g_mutex_unlock(&pool->lock);
				g_free(msg);
				*conn_r = conn;
				return 0;
			}
			pool->total--;
			if (err == -EUSERS && pool->total > 0) {
				/* the server allows no more connections for this user now (other
				 * clients hold some): make do with the ones this pool has */
				if (pool->cap == pool->max_conns)
					g_message(
					    "IMAP server %s: %s: making do with the connections "
					    "open for a minute",
					    pool->cfg.host, msg);
				pool->cap = pool->total;
				pool->cap_until = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
				g_free(msg);
				continue;
			}
			note_failure(pool, err, msg);
			g_cond_signal(&pool->cond);
			g_mutex_unlock(&pool->lock);
			if (errmsg_r != NULL)
				*errmsg_r = msg;
			else
				g_free(msg);
			return err;
		}
		if (!g_cond_wait_until(&pool->cond, &pool->lock, deadline)) {
			unsigned n = pool->max_conns;
			g_mutex_unlock(&pool->lock);
			if (errmsg_r != NULL)
				*errmsg_r =
				    g_strdup_printf("all %u IMAP connections stayed busy for %u ms",
				                    n, pool->cfg.timeout_ms);
			/* not -ETIMEDOUT: the server may be fine, our connections are just busy
			 * (the daemon must not take that for an unreachable server) */
			return -EBUSY;
		}
	}
}

/* conn is no longer handed out: imap_pool_interrupt must not touch it (it may be freed). */
static void not_busy(struct imap_pool *pool, struct imap_conn *conn)
{
	g_mutex_lock(&pool->lock);
	g_ptr_array_remove_fast(pool->busy, conn);
	g_mutex_unlock(&pool->lock);
}

void imap_pool_interrupt(struct imap_pool *pool, const char *why)
{
	g_mutex_lock(&pool->lock);
	/* a caller already waiting in imap_pool_acquire (for at most the timeout) must not
	 * try the silent server for the whole timeout again */
	pool->hold_until = g_get_monotonic_time() + (gint64)pool->cfg.timeout_ms * 1000;
	g_free(pool->hold_why);
	pool->hold_why = g_strdup(why);
	for (guint i = 0; i < pool->busy->len; i++)
		imap_conn_interrupt(pool->busy->pdata[i]);
	/* idle ones talk to the same server: their next command would wait as long */
	for (GList *l = pool->idle.head; l != NULL; l = l->next)
		imap_conn_interrupt(((struct idle_conn *)l->data)->conn);
	g_cond_broadcast(&pool->cond);
	g_mutex_unlock(&pool->lock);
}

void imap_pool_discard(struct imap_pool *pool, struct imap_conn *conn)
{
	if (conn == NULL)
		return;
	not_busy(pool, conn);
	imap_conn_close(conn); /* LOGOUT without the lock: network I/O */
	g_mutex_lock(&pool->lock);
	pool->total--;
	g_cond_signal(&pool->cond);
	g_mutex_unlock(&pool->lock);
}

void imap_pool_retry_now(struct imap_pool *pool)
{
	g_mutex_lock(&pool->lock);
	/* the outage flag stays: the next success still logs the recovery once */
	pool->retry_at = 0;
	pool->hold_until = 0;
	pool->backoff_ms = BACKOFF_FIRST_MS;
	g_mutex_unlock(&pool->lock);
}

void imap_pool_release(struct imap_pool *pool, struct imap_conn *conn)
{
	if (conn == NULL)
		return;
	/* an interrupted one may have ended its call before its socket was shut down */
	if (imap_conn_is_broken(conn) || __atomic_load_n(&conn->interrupted, __ATOMIC_ACQUIRE)) {
		not_busy(pool, conn);
		imap_conn_close(conn); /* no I/O on a broken connection, so no lock issue */
		g_mutex_lock(&pool->lock);
		pool->total--;
		g_cond_signal(&pool->cond);
		g_mutex_unlock(&pool->lock);
		return;
	}
	struct idle_conn *ic = g_new(struct idle_conn, 1);
	ic->conn = conn;
	ic->since = g_get_monotonic_time();
	g_mutex_lock(&pool->lock);
	g_ptr_array_remove_fast(pool->busy, conn);
	g_queue_push_head(&pool->idle, ic);
	g_cond_signal(&pool->cond);
	g_mutex_unlock(&pool->lock);
}

void imap_pool_free(struct imap_pool *pool)
{
	if (pool == NULL)
		return;
	struct idle_conn *ic;
	/* every connection has been released, so no other thread uses the pool any more */
	while ((ic = g_queue_pop_head(&pool->idle)) != NULL) {
		imap_conn_close(ic->conn);
		g_free(ic);
		pool->total--;
	}
	if (pool->total != 0)
		g_critical("imap_pool_free: %u connections were not released", pool->total);
	if (pool->outage)
		outage_leave(pool); /* no "restored" line: it was not */
	g_ptr_array_unref(pool->busy);
	g_mutex_clear(&pool->lock);
	g_cond_clear(&pool->cond);
	g_free((char *)pool->cfg.host);
	g_free((char *)pool->cfg.port);
	g_free((char *)pool->cfg.user);
	free_secret((char *)pool->cfg.password);
	g_free((char *)pool->cfg.ca_file);
	g_free(pool->last_error);
	g_free(pool->hold_why);
	g_free(pool);
}
