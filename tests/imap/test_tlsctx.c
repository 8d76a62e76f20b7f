/* test_tlsctx.c — unit tests of imap/tlsctx.c, the TLS client context connections share:
 * one context (one parse of the trust store) for every connection, a new one when ca_file
 * changes on disk, and each context trusts the ca_file it was made from. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <unistd.h>
#include <utime.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "imap-private.h"

/* A new self-signed CA certificate named cn. */
static X509 *make_ca(const char *cn)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *crt = X509_new();
	X509_NAME *name = X509_NAME_new();

	g_assert_nonnull(key);
	g_assert_nonnull(crt);
	X509_set_version(crt, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(crt), g_random_int_range(1, G_MAXINT32));
	X509_gmtime_adj(X509_getm_notBefore(crt), -3600);
	X509_gmtime_adj(X509_getm_notAfter(crt), 3600);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(crt, name);
	X509_set_issuer_name(crt, name);
	X509_set_pubkey(crt, key);
	g_assert_cmpint(X509_sign(crt, key, EVP_sha256()), >, 0);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return crt;
}

static void write_pem(const char *path, X509 *crt)
{
	FILE *f = fopen(path, "w");
	g_assert_nonnull(f);
	g_assert_cmpint(PEM_write_X509(f, crt), ==, 1);
	g_assert_cmpint(fclose(f), ==, 0);
}

/* Does ctx's trust store verify crt (a self-signed CA: trusted only if it is in the store)? */
static bool trusts(SSL_CTX *ctx, X509 *crt)
{
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	bool ok;

	g_assert_true(X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx), crt, NULL) == 1);
	ok = X509_verify_cert(sc) == 1;
	X509_STORE_CTX_free(sc);
	return ok;
}

static void test_shared_and_renewed(void)
{
	char *dir = g_dir_make_tmp("test-tlsctx-XXXXXX", NULL);
	char *ca = g_build_filename(dir, "ca.pem", NULL);
	X509 *first = make_ca("first CA"), *second = make_ca("second CA");
	SSL_CTX *a = NULL, *b = NULL, *c = NULL, *d = NULL;

	write_pem(ca, first);
	/* one context for every connection: the trust store is parsed once */
	g_assert_cmpint(imap_tls_ctx_get(ca, &a), ==, 0);
	g_assert_cmpint(imap_tls_ctx_get(ca, &b), ==, 0);
	g_assert_true(a == b);
	g_assert_true(trusts(a, first));
	g_assert_false(trusts(a, second));

	/* the CA file renewed on disk: the next connection gets a context that trusts the new
	 * one; a connection still holding the old context keeps it */
	write_pem(ca, second);
	{
		/* a rewrite within the same clock tick may keep size and mtime: move mtime on */
		GStatBuf sb;
		struct utimbuf t;
		g_assert_cmpint(g_stat(ca, &sb), ==, 0);
		t.actime = sb.st_atime;
		t.modtime = sb.st_mtime + 10;
		g_assert_cmpint(g_utime(ca, &t), ==, 0);
	}
	g_assert_cmpint(imap_tls_ctx_get(ca, &c), ==, 0);
	g_assert_true(c != a);
	g_assert_true(trusts(c, second));
	g_assert_false(trusts(c, first));
	g_assert_true(trusts(a, first));

	/* a CA file that cannot be loaded is refused; the shared context stays */
	g_assert_cmpint(imap_tls_ctx_get("/nonexistent/imapfs-ca.pem", &d), ==, -EINVAL);
	g_assert_null(d);
	g_assert_cmpint(imap_tls_ctx_get(ca, &d), ==, 0);
	g_assert_true(d == c);

	SSL_CTX_free(a);
	SSL_CTX_free(b);
	SSL_CTX_free(c);
	SSL_CTX_free(d);
	X509_free(first);
	X509_free(second);
	g_unlink(ca);
	g_rmdir(dir);
	g_free(ca);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tlsctx/shared_and_renewed", test_shared_and_renewed);
	return g_test_run();
}
