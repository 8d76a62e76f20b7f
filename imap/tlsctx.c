/* tlsctx.c — the TLS client context that connections share.
 *
 * A context holds the trust store: the system's bundle (/usr/lib/ssl/cert.pem on Debian, about
 * 140 certificates) and the configured ca_file.  OpenSSL 3 takes ~90 ms of CPU to parse that
 * bundle, more than the handshake, so a context per connection made every connection of a
 * mount (six with the defaults, more after reconnections) pay it again.  One context is kept
 * for the process and shared (OpenSSL contexts are reference-counted and safe to use from
 * several threads once set up); it is made again when ca_file or the system bundle changed on
 * disk (path, inode, size or mtime), so a renewed certificate authority is seen by the next
 * connection, as before.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* What a context was made from: the ca_file path and both files' identities.  A file that
 * cannot be stat()ed counts as all zeros. */
struct trust_id {
	char *ca_file; /* "" for none */
	struct stat ca, system;
};

static GMutex lock;           /* guards the two below */
static SSL_CTX *shared;       /* one reference held here; NULL before the first connection */
static struct trust_id shared_id;

static void stat_or_zero(const char *path, struct stat *sb)
{
	memset(sb, 0, sizeof(*sb));
	if (path != NULL && path[0] != '\0' && stat(path, sb) < 0)
		memset(sb, 0, sizeof(*sb));
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* A new context trusting the system store and ca_file.  0, or -ENOMEM (cannot make one) or
 * -EINVAL (ca_file cannot be loaded), the reason left in OpenSSL's error queue. */
static int make_ctx(const char *ca_file, SSL_CTX **ctx_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		g_debug("cannot load the system trust store: %s",
		        ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
	}
	if (ca_file[0] != '\0' && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	*ctx_r = ctx;
	return 0;
}

int imap_tls_ctx_get(const char *ca_file, SSL_CTX **ctx_r)
{
	struct trust_id id = {.ca_file = (char *)(ca_file != NULL ? ca_file : "")};
	SSL_CTX *ctx;
	int ret;

	stat_or_zero(id.ca_file, &id.ca);
	stat_or_zero(X509_get_default_cert_file(), &id.system);
	/* Held while a context is made: connections opened together (a mount's first
	 * requests) wait for the one being made instead of each making their own. */
	g_mutex_lock(&lock);
	if (shared != NULL && strcmp(shared_id.ca_file, id.ca_file) == 0 &&
	    same_file(&shared_id.ca, &id.ca) && same_file(&shared_id.system, &id.system)) {
		SSL_CTX_up_ref(shared);
		*ctx_r = shared;
		g_mutex_unlock(&lock);
		return 0;
	}
	ret = make_ctx(id.ca_file, &ctx);
	if (ret == 0) {
		/* connections still using the old one keep their references */
		if (shared != NULL)
			SSL_CTX_free(shared);
		g_free(shared_id.ca_file);
		shared = ctx;
		shared_id = id;
		shared_id.ca_file = g_strdup(id.ca_file);
		SSL_CTX_up_ref(ctx);
		*ctx_r = ctx;
	}
	g_mutex_unlock(&lock);
	return ret;
}
