/* test_bodycache.c — unit tests of fs/bodycache.c, the disk cache of whole messages and pieces
 * keyed by (folder, UIDVALIDITY, UID, piece): pieces beside the whole message of one UID,
 * single flight per piece, packs mixing pieces, caches of format version 1 (built by hand as
 * the old code wrote them) read as piece 0, an unknown format wiped, damaged piece files
 * removed at open, eviction and UIDVALIDITY changes over pieces. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bodycache.h"

#define IDENTITY "imap.example.org 993 alice"
#define BIG      (1024 * 1024 * 1024)

static char *tmpdir_new(void)
{
	char *dir = g_dir_make_tmp("test-bodycache-XXXXXX", NULL);
	g_assert_nonnull(dir);
	return dir;
}

static void rm_rf(const char *dir)
{
	char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(cmd);
}

static struct ifs_bodycache *open_cache(const char *dir, uint64_t max_bytes)
{
	struct ifs_bodycache *bc = NULL;
	char *why = NULL;
	int ret = ifs_bodycache_open(dir, max_bytes, IDENTITY, &bc, &why);

	if (ret != 0)
		g_error("ifs_bodycache_open: %d %s", ret, why);
	g_assert_null(why);
	return bc;
}

/* "<dir>/<F>/<uidvalidity>" of folder (new string). */
static char *uv_dir(const char *dir, const char *folder, uint32_t uidvalidity)
{
	char hash[IFS_FOLDER_HASH_LEN + 1];
	char uv[16];

	ifs_bodycache_folder_hash(folder, hash);
	g_snprintf(uv, sizeof(uv), "%u", uidvalidity);
	return g_build_filename(dir, hash, uv, NULL);
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in d, sorted, joined by spaces ("" when d is absent); new string. */
static char *names_in(const char *d)
{
	GDir *gd = g_dir_open(d, 0, NULL);
	GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
	const char *n;
	char *out;

	while (gd != NULL && (n = g_dir_read_name(gd)) != NULL)
		g_ptr_array_add(a, g_strdup(n));
	if (gd != NULL)
		g_dir_close(gd);
	g_ptr_array_sort(a, cmp_names);
	g_ptr_array_add(a, NULL);
	out = g_strjoinv(" ", (char **)a->pdata);
	g_ptr_array_unref(a);
	return out;
}

static char *read_file(const char *path)
{
	char *text = NULL;
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	return text;
}

static void write_file(const char *path, const void *data, size_t len)
{
	GError *err = NULL;
	g_assert_true(g_file_set_contents(path, data, (gssize)len, &err));
	g_assert_no_error(err);
}

/* Distinct, recognisable bytes for (uid, piece), n long (new string). */
static char *content(uint32_t uid, uint32_t piece, size_t n)
{
	char *s = g_malloc(n + 1);
	int head = g_snprintf(s, n + 1, "uid %u piece %u:", uid, piece);

	for (size_t i = (size_t)head < n ? (size_t)head : n; i < n; i++)
		s[i] = (char)('a' + (uid * 7 + piece * 3 + i) % 26);
	s[n] = '\0';
	return s;
}

/* Claim (uid, piece), store bytes, commit. */
static void store(struct ifs_bodycache *bc, const char *folder, uint32_t uv, uint32_t uid,
                  uint32_t piece, const char *bytes)
{
	struct ifs_bodycache_writer *w = NULL;
	uint64_t off = 0, size = 0;
	int fd = -1;

	g_assert_cmpint(
	    ifs_bodycache_get_piece(bc, folder, uv, uid, piece, false, &fd, &off, &size, &w), ==,
	    IFS_BODYCACHE_CLAIMED);
	g_assert_nonnull(w);
	g_assert_true(ifs_bodycache_claimed(bc, folder, uv, uid, piece));
	g_assert_cmpint(ifs_bodycache_writer_write(w, bytes, strlen(bytes)), ==, 0);
	g_assert_cmpint(ifs_bodycache_writer_commit(w, &fd, &size), ==, 0);
	g_assert_false(ifs_bodycache_claimed(bc, folder, uv, uid, piece));
	g_assert_cmpuint(size, ==, strlen(bytes));
	close(fd);
}

/* The entry's bytes (new string), or NULL when it is absent (then it is claimed and the
 * claim aborted). */
static char *fetch(struct ifs_bodycache *bc, const char *folder, uint32_t uv, uint32_t uid,
                   uint32_t piece)
{
	struct ifs_bodycache_writer *w = NULL;
	uint64_t off = 0, size = 0;
	int fd = -1;
	int r = ifs_bodycache_get_piece(bc, folder, uv, uid, piece, false, &fd, &off, &size, &w);
	char *buf;

	if (r == IFS_BODYCACHE_CLAIMED) {
		ifs_bodycache_writer_abort(w);
		return NULL;
	}
	g_assert_cmpint(r, ==, IFS_BODYCACHE_HIT);
	g_assert_null(w);
	buf = g_malloc(size + 1);
	g_assert_cmpint(pread(fd, buf, size, (off_t)off), ==, (ssize_t)size);
	buf[size] = '\0';
	close(fd);
	return buf;
}

static void assert_entry(struct ifs_bodycache *bc, const char *folder, uint32_t uv, uint32_t uid,
                         uint32_t piece, const char *want)
{
	char *got = fetch(bc, folder, uv, uid, piece);
	if (got == NULL)
		g_error("UID %u piece %u absent", uid, piece);
	g_assert_cmpstr(got, ==, want);
	g_free(got);
}

static void assert_absent(struct ifs_bodycache *bc, const char *folder, uint32_t uv, uint32_t uid,
                          uint32_t piece)
{
	char *got = fetch(bc, folder, uv, uid, piece);
	if (got != NULL)
		g_error("UID %u piece %u present: \"%.40s\"", uid, piece, got);
	g_assert_false(ifs_bodycache_contains_piece(bc, folder, uv, uid, piece));
}

static void assert_usage(struct ifs_bodycache *bc, uint64_t bytes, uint64_t entries)
{
	uint64_t b = 0, e = 0;
	ifs_bodycache_usage(bc, &b, &e);
	g_assert_cmpuint(e, ==, entries);
	g_assert_cmpuint(b, ==, bytes);
}

/* ---- the tests ---- */

/* A whole message and pieces of the same UID: separate entries, each stored once under its
 * own name, each read back byte for byte, before and after a reopen; a fresh cache says it is
 * format 2. */
static void test_pieces_beside_whole(void)
{
	char *dir = tmpdir_new();
	char *ud = uv_dir(dir, "INBOX", 42);
	struct ifs_bodycache *bc = open_cache(dir, BIG);
	char *whole = content(7, 0, 5000), *outline = content(7, 1, 300),
	     *part = content(7, 4000000000u, 1200), *other = content(8, 1, 77);
	char *names, *want, *format;

	format = g_build_filename(dir, "format", NULL);
	g_assert_cmpstr((want = read_file(format)), ==, "2\n");
	g_free(want);
	store(bc, "INBOX", 42, 7, 1, outline); /* a piece first: it does not make the whole here */
	assert_absent(bc, "INBOX", 42, 7, IFS_BODYCACHE_WHOLE);
	g_assert_false(ifs_bodycache_contains(bc, "INBOX", 42, 7));
	store(bc, "INBOX", 42, 7, IFS_BODYCACHE_WHOLE, whole);
	store(bc, "INBOX", 42, 7, 4000000000u, part);
	store(bc, "INBOX", 42, 8, 1, other);
	for (int round = 0; round < 2; round++) {
		assert_entry(bc, "INBOX", 42, 7, IFS_BODYCACHE_WHOLE, whole);
		assert_entry(bc, "INBOX", 42, 7, 1, outline);
		assert_entry(bc, "INBOX", 42, 7, 4000000000u, part);
		assert_entry(bc, "INBOX", 42, 8, 1, other);
		g_assert_true(ifs_bodycache_contains(bc, "INBOX", 42, 7));
		g_assert_true(ifs_bodycache_contains_piece(bc, "INBOX", 42, 7, 1));
		g_assert_false(ifs_bodycache_contains_piece(bc, "INBOX", 42, 7, 2));
		g_assert_false(ifs_bodycache_contains(bc, "INBOX", 42, 8));
		g_assert_false(ifs_bodycache_contains_piece(bc, "INBOX", 43, 7, 1));
		g_assert_false(ifs_bodycache_contains_piece(bc, "Other", 42, 7, 1));
		assert_usage(bc, 5000 + 300 + 1200 + 77, 4);
		/* one file each, named as bodycache.h says */
		names = names_in(ud);
		g_assert_cmpstr(names, ==, "7-1.300 7-4000000000.1200 7.5000 8-1.77");
		g_free(names);
		ifs_bodycache_free(bc);
		bc = open_cache(dir, BIG);
	}
	g_assert_cmpstr((want = read_file(format)), ==, "2\n");
	g_free(want);
	ifs_bodycache_free(bc);
	g_free(format);
	g_free(whole);
	g_free(outline);
	g_free(part);
	g_free(other);
	g_free(ud);
	rm_rf(dir);
	g_free(dir);
}

struct racer {
	struct ifs_bodycache *bc;
	uint32_t piece;
	int *fetches; /* atomic */
	char *got;
};

static gpointer racer_main(gpointer p)
{
	struct racer *r = p;
	struct ifs_bodycache_writer *w = NULL;
	uint64_t off = 0, size = 0;
	int fd = -1;
	int ret =
	    ifs_bodycache_get_piece(r->bc, "INBOX", 1, 3, r->piece, true, &fd, &off, &size, &w);

	if (ret == IFS_BODYCACHE_CLAIMED) {
		/* a second fetch: single flight is broken; store something to be seen */
		g_atomic_int_inc(r->fetches);
		ifs_bodycache_writer_write(w, "second fetch", 12);
		ifs_bodycache_writer_commit(w, &fd, &size);
		off = 0;
	}
	r->got = g_malloc0(size + 1);
	if (pread(fd, r->got, size, (off_t)off) != (ssize_t)size)
		g_error("pread");
	close(fd);
	return NULL;
}

/* Single flight per piece: while one writer holds (UID 3, piece 5), four threads asking for it
 * wait and then read its bytes (one fetch in all); piece 0 and piece 6 of the same UID are not
 * held by that claim.  ifs_bodycache_claimed follows writers and pack claims. */
static void test_single_flight_per_piece(void)
{
	char *dir = tmpdir_new();
	struct ifs_bodycache *bc = open_cache(dir, BIG);
	struct ifs_bodycache_writer *w = NULL, *w0 = NULL, *w6 = NULL;
	struct ifs_bodycache_pack *p = NULL;
	struct racer racers[4];
	GThread *threads[4];
	uint64_t off, size;
	int fd, fetches = 1;
	char *bytes = content(3, 5, 10000);

	g_assert_cmpint(ifs_bodycache_get_piece(bc, "INBOX", 1, 3, 5, false, &fd, &off, &size, &w),
	                ==, IFS_BODYCACHE_CLAIMED);
	g_assert_true(ifs_bodycache_claimed(bc, "INBOX", 1, 3, 5));
	g_assert_false(ifs_bodycache_claimed(bc, "INBOX", 1, 3, IFS_BODYCACHE_WHOLE));
	g_assert_false(ifs_bodycache_claimed(bc, "INBOX", 2, 3, 5));
	g_assert_false(ifs_bodycache_claimed(bc, "Other", 1, 3, 5));
	for (int i = 0; i < 4; i++) {
		racers[i] = (struct racer){bc, 5, &fetches, NULL};
		threads[i] = g_thread_new("racer", racer_main, &racers[i]);
	}
	/* the same key is busy; other pieces of the UID are free to claim */
	g_assert_cmpint(ifs_bodycache_get_piece(bc, "INBOX", 1, 3, 5, false, &fd, &off, &size, &w0),
	                ==, IFS_BODYCACHE_BUSY);
	g_assert_cmpint(ifs_bodycache_get(bc, "INBOX", 1, 3, false, &fd, &off, &size, &w0), ==,
	                IFS_BODYCACHE_CLAIMED);
	g_assert_cmpint(ifs_bodycache_get_piece(bc, "INBOX", 1, 3, 6, false, &fd, &off, &size, &w6),
	                ==, IFS_BODYCACHE_CLAIMED);
	g_assert_true(ifs_bodycache_claimed(bc, "INBOX", 1, 3, IFS_BODYCACHE_WHOLE));
	ifs_bodycache_writer_abort(w0);
	ifs_bodycache_writer_abort(w6);
	g_assert_false(ifs_bodycache_claimed(bc, "INBOX", 1, 3, IFS_BODYCACHE_WHOLE));
	g_usleep(100 * 1000); /* let the racers reach their wait */
	g_assert_cmpint(ifs_bodycache_writer_write(w, bytes, 4000), ==, 0);
	g_assert_cmpint(ifs_bodycache_writer_write(w, bytes + 4000, 6000), ==, 0);
	g_assert_cmpint(ifs_bodycache_writer_commit(w, &fd, &size), ==, 0);
	close(fd);
	for (int i = 0; i < 4; i++) {
		g_thread_join(threads[i]);
		g_assert_cmpstr(racers[i].got, ==, bytes);
		g_free(racers[i].got);
	}
	g_assert_cmpint(fetches, ==, 1);
	assert_usage(bc, 10000, 1);

	/* a pack's claim counts as a claim until its member arrives */
	g_assert_cmpint(ifs_bodycache_pack_new(bc, "INBOX", 1, &p), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_claim_piece(p, 3, 5), ==, IFS_BODYCACHE_HIT);
	g_assert_cmpint(ifs_bodycache_pack_claim_piece(p, 3, 7), ==, IFS_BODYCACHE_CLAIMED);
	g_assert_true(ifs_bodycache_claimed(bc, "INBOX", 1, 3, 7));
	g_assert_cmpint(ifs_bodycache_get_piece(bc, "INBOX", 1, 3, 7, false, &fd, &off, &size, &w),
	                ==, IFS_BODYCACHE_BUSY);
	g_assert_cmpint(ifs_bodycache_pack_begin_piece(p, 3, 7), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_write(p, "seven", 5), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_end_piece(p, 3, 7), ==, 0);
	g_assert_false(ifs_bodycache_claimed(bc, "INBOX", 1, 3, 7));
	assert_entry(bc, "INBOX", 1, 3, 7, "seven");
	ifs_bodycache_pack_close(p);
	assert_entry(bc, "INBOX", 1, 3, 7, "seven");
	ifs_bodycache_free(bc);
	g_free(bytes);
	rm_rf(dir);
	g_free(dir);
}

/* The one pack file of ud (new path). */
static char *the_pack(const char *ud)
{
	GDir *gd = g_dir_open(ud, 0, NULL);
	const char *n;
	char *path = NULL;

	g_assert_nonnull(gd);
	while ((n = g_dir_read_name(gd)) != NULL) {
		if (g_str_has_suffix(n, ".pack")) {
			g_assert_null(path);
			path = g_build_filename(ud, n, NULL);
		}
	}
	g_dir_close(gd);
	g_assert_nonnull(path);
	return path;
}

/* A pack of mixed pieces and UIDs: each member readable from its end on, a retried member
 * stored once, the trailer as bodycache.h says (IFSPACK2, the piece in each record), and
 * everything read back byte for byte after a reopen. */
static void test_pack_mixed_pieces(void)
{
	char *dir = tmpdir_new();
	char *ud = uv_dir(dir, "Archive", 9);
	struct ifs_bodycache *bc = open_cache(dir, BIG);
	struct ifs_bodycache_pack *p = NULL;
	static const struct {
		uint32_t uid, piece;
		size_t len;
	} m[] = {{10, 0, 700}, {10, 1, 50}, {11, 2, 3000}, {12, 0, 1}, {12, 3, 20}};
	enum { N = G_N_ELEMENTS(m) };
	char *bytes[N];
	uint64_t total = 0;
	char *path, *data, *base;
	gsize len;

	g_assert_cmpint(ifs_bodycache_pack_new(bc, "Archive", 9, &p), ==, 0);
	for (guint i = 0; i < N; i++) {
		bytes[i] = content(m[i].uid, m[i].piece, m[i].len);
		total += m[i].len;
		g_assert_cmpint(ifs_bodycache_pack_claim_piece(p, m[i].uid, m[i].piece), ==,
		                IFS_BODYCACHE_CLAIMED);
	}
	/* not claimed by this pack: skipped */
	g_assert_cmpint(ifs_bodycache_pack_begin_piece(p, 11, 0), ==, 1);
	for (guint i = 0; i < N; i++) {
		g_assert_cmpint(ifs_bodycache_pack_begin_piece(p, m[i].uid, m[i].piece), ==, 0);
		if (i == 2) {
			/* a retry sends the member again from its start */
			g_assert_cmpint(ifs_bodycache_pack_write(p, "garbage", 7), ==, 0);
			g_assert_cmpint(ifs_bodycache_pack_begin_piece(p, m[i].uid, m[i].piece), ==,
			                0);
		}
		g_assert_cmpint(ifs_bodycache_pack_write(p, bytes[i], m[i].len), ==, 0);
		/* an end of another key than the one begun does nothing */
		g_assert_cmpint(ifs_bodycache_pack_end_piece(p, m[i].uid, m[i].piece + 1), ==, 0);
		g_assert_false(
		    ifs_bodycache_contains_piece(bc, "Archive", 9, m[i].uid, m[i].piece));
		g_assert_cmpint(ifs_bodycache_pack_end_piece(p, m[i].uid, m[i].piece), ==, 0);
		/* readable from the temporary file at once */
		assert_entry(bc, "Archive", 9, m[i].uid, m[i].piece, bytes[i]);
		/* stored: a retried command begins it again, and it is skipped */
		g_assert_cmpint(ifs_bodycache_pack_begin_piece(p, m[i].uid, m[i].piece), ==, 1);
	}
	ifs_bodycache_pack_close(p);
	assert_usage(bc, total + N * 24 + 20, N);

	/* the trailer, byte for byte */
	path = the_pack(ud);
	base = g_path_get_basename(path);
	g_assert_true(g_str_has_prefix(base, "10-12."));
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_assert_cmpuint(len, ==, total + N * 24 + 20);
	g_assert_cmpmem(data + len - 8, 8, "IFSPACK2", 8);
	{
		uint64_t off = 0;
		for (guint i = 0; i < N; i++) {
			const unsigned char *r = (const unsigned char *)data + total + i * 24;
			uint32_t uid, piece;
			uint64_t roff, rsize;
			memcpy(&uid, r, 4);
			memcpy(&piece, r + 4, 4);
			memcpy(&roff, r + 8, 8);
			memcpy(&rsize, r + 16, 8);
			g_assert_cmpuint(GUINT32_FROM_LE(uid), ==, m[i].uid);
			g_assert_cmpuint(GUINT32_FROM_LE(piece), ==, m[i].piece);
			g_assert_cmpuint(GUINT64_FROM_LE(roff), ==, off);
			g_assert_cmpuint(GUINT64_FROM_LE(rsize), ==, m[i].len);
			g_assert_cmpmem(data + off, m[i].len, bytes[i], m[i].len);
			off += m[i].len;
		}
	}
	g_free(data);

	ifs_bodycache_free(bc);
	bc = open_cache(dir, BIG);
	for (guint i = 0; i < N; i++)
		assert_entry(bc, "Archive", 9, m[i].uid, m[i].piece, bytes[i]);
	assert_absent(bc, "Archive", 9, 11, IFS_BODYCACHE_WHOLE);
	assert_absent(bc, "Archive", 9, 12, 1);
	assert_usage(bc, total + N * 24 + 20, N);
	/* a second pack sees them stored */
	g_assert_cmpint(ifs_bodycache_pack_new(bc, "Archive", 9, &p), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_claim_piece(p, 11, 2), ==, IFS_BODYCACHE_HIT);
	g_assert_cmpint(ifs_bodycache_pack_claim(p, 10), ==, IFS_BODYCACHE_HIT);
	g_assert_cmpint(ifs_bodycache_pack_claim(p, 11), ==, IFS_BODYCACHE_CLAIMED);
	ifs_bodycache_pack_close(p); /* nothing arrived: dropped, the claim released */
	g_assert_false(ifs_bodycache_claimed(bc, "Archive", 9, 11, IFS_BODYCACHE_WHOLE));
	{
		char *names = names_in(ud), *want = g_strdup(base);
		g_assert_cmpstr(names, ==, want);
		g_free(names);
		g_free(want);
	}
	ifs_bodycache_free(bc);
	for (guint i = 0; i < N; i++)
		g_free(bytes[i]);
	g_free(base);
	g_free(path);
	g_free(ud);
	rm_rf(dir);
	g_free(dir);
}

/* A pack as format version 1 wrote it: records (uid, 0, offset, size), "IFSPACK1".  uids[i]
 * holds texts[i]; reserved, when not 0, is put where version 1 always had 0. */
static void write_v1_pack(const char *path, const uint32_t *uids, const char *const *texts, guint n,
                          uint32_t reserved)
{
	GByteArray *a = g_byte_array_new();
	uint64_t off = 0;
	uint32_t count = GUINT32_TO_LE(n);
	uint64_t data_len;

	for (guint i = 0; i < n; i++)
		g_byte_array_append(a, (const guint8 *)texts[i], (guint)strlen(texts[i]));
	data_len = GUINT64_TO_LE((uint64_t)a->len);
	for (guint i = 0; i < n; i++) {
		uint32_t uid = GUINT32_TO_LE(uids[i]), res = GUINT32_TO_LE(i == 0 ? reserved : 0);
		uint64_t o = GUINT64_TO_LE(off), s = GUINT64_TO_LE((uint64_t)strlen(texts[i]));
		g_byte_array_append(a, (const guint8 *)&uid, 4);
		g_byte_array_append(a, (const guint8 *)&res, 4);
		g_byte_array_append(a, (const guint8 *)&o, 8);
		g_byte_array_append(a, (const guint8 *)&s, 8);
		off += strlen(texts[i]);
	}
	g_byte_array_append(a, (const guint8 *)&data_len, 8);
	g_byte_array_append(a, (const guint8 *)&count, 4);
	g_byte_array_append(a, (const guint8 *)"IFSPACK1", 8);
	write_file(path, a->data, a->len);
	g_byte_array_unref(a);
}

/* A version-1 cache (no format file; "<UID>.<SIZE>" files and IFSPACK1 packs, built by hand
 * as the old code wrote them) is read as it is: every entry is piece 0; then the format file
 * says 2.  A version-1 pack with something else than 0 where the piece now is was not written
 * by version 1: removed. */
static void test_version1_cache_read(void)
{
	char *dir = tmpdir_new();
	char *ud = uv_dir(dir, "INBOX", 5);
	char *ident = g_build_filename(dir, "identity", NULL);
	char *format = g_build_filename(dir, "format", NULL);
	char *single = g_build_filename(ud, "5.17", NULL);
	char *pack = g_build_filename(ud, "6-8.0123456789abcdef.pack", NULL);
	char *odd = g_build_filename(ud, "20-20.00000000deadbeef.pack", NULL);
	static const uint32_t uids[] = {6, 8};
	static const char *const texts[] = {"six: a whole message", "eight: another one"};
	static const uint32_t odd_uids[] = {20};
	static const char *const odd_texts[] = {"twenty"};
	struct ifs_bodycache *bc;
	char *got;

	g_assert_cmpint(g_mkdir_with_parents(ud, 0700), ==, 0);
	write_file(ident, IDENTITY "\n", strlen(IDENTITY) + 1);
	write_file(single, "five: the message", 17);
	write_v1_pack(pack, uids, texts, 2, 0);
	write_v1_pack(odd, odd_uids, odd_texts, 1, 3);
	g_assert_false(g_file_test(format, G_FILE_TEST_EXISTS));

	bc = open_cache(dir, BIG);
	assert_entry(bc, "INBOX", 5, 5, IFS_BODYCACHE_WHOLE, "five: the message");
	assert_entry(bc, "INBOX", 5, 6, IFS_BODYCACHE_WHOLE, texts[0]);
	assert_entry(bc, "INBOX", 5, 8, IFS_BODYCACHE_WHOLE, texts[1]);
	g_assert_true(ifs_bodycache_contains(bc, "INBOX", 5, 6));
	assert_absent(bc, "INBOX", 5, 6, 1);
	assert_absent(bc, "INBOX", 5, 7, IFS_BODYCACHE_WHOLE);
	assert_absent(bc, "INBOX", 5, 20, IFS_BODYCACHE_WHOLE);
	assert_absent(bc, "INBOX", 5, 20, 3);
	g_assert_false(g_file_test(odd, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(pack, G_FILE_TEST_EXISTS));
	assert_usage(bc, 17 + strlen(texts[0]) + strlen(texts[1]) + 2 * 24 + 20, 3);
	g_assert_cmpstr((got = read_file(format)), ==, "2\n");
	g_free(got);
	/* pieces go beside them */
	store(bc, "INBOX", 5, 6, 2, "six, piece two");
	ifs_bodycache_free(bc);

	bc = open_cache(dir, BIG);
	assert_entry(bc, "INBOX", 5, 5, IFS_BODYCACHE_WHOLE, "five: the message");
	assert_entry(bc, "INBOX", 5, 8, IFS_BODYCACHE_WHOLE, texts[1]);
	assert_entry(bc, "INBOX", 5, 6, 2, "six, piece two");
	ifs_bodycache_free(bc);
	g_free(ident);
	g_free(format);
	g_free(single);
	g_free(pack);
	g_free(odd);
	g_free(ud);
	rm_rf(dir);
	g_free(dir);
}

/* A format file of another version ("9", a newer imapfs's, or garbage) is never read past:
 * open empties the cache, with one message, and writes "2\n"; the saved state (versioned on
 * its own, state.h) is kept. */
static void test_unknown_format_wipes(void)
{
	static const char *const sayings[] = {"9\n", "9", "2", "2\n\n", "", "\x01\xff junk"};

	for (guint k = 0; k < G_N_ELEMENTS(sayings); k++) {
		char *dir = tmpdir_new();
		char *format = g_build_filename(dir, "format", NULL);
		char *state = g_build_filename(dir, "state", NULL);
		char *listing = g_build_filename(state, "folders", NULL);
		char hash[IFS_FOLDER_HASH_LEN + 1];
		char *hdir, *got;
		struct ifs_bodycache *bc = open_cache(dir, BIG);

		store(bc, "INBOX", 1, 1, IFS_BODYCACHE_WHOLE, "one");
		store(bc, "INBOX", 1, 1, 4, "one, piece four");
		store(bc, "Sent", 3, 2, 1, "two, piece one");
		ifs_bodycache_free(bc);
		g_assert_cmpint(mkdir(state, 0700), ==, 0);
		write_file(listing, "imapfs-folders 1\nend 0\n", 23);
		write_file(format, sayings[k], strlen(sayings[k]));

		g_test_expect_message(NULL, G_LOG_LEVEL_MESSAGE,
		                      "cache * is in format *emptying it");
		bc = open_cache(dir, BIG);
		g_test_assert_expected_messages();
		assert_usage(bc, 0, 0);
		/* (before the lookups below: a claim makes the directory) */
		ifs_bodycache_folder_hash("INBOX", hash);
		hdir = g_build_filename(dir, hash, NULL);
		g_assert_false(g_file_test(hdir, G_FILE_TEST_EXISTS));
		assert_absent(bc, "INBOX", 1, 1, IFS_BODYCACHE_WHOLE);
		assert_absent(bc, "INBOX", 1, 1, 4);
		assert_absent(bc, "Sent", 3, 2, 1);
		g_assert_cmpstr((got = read_file(format)), ==, "2\n");
		g_free(got);
		g_assert_true(g_file_test(listing, G_FILE_TEST_IS_REGULAR));
		ifs_bodycache_free(bc);

		/* and then it is a cache like any other: no second wipe */
		bc = open_cache(dir, BIG);
		store(bc, "INBOX", 1, 1, 4, "again");
		ifs_bodycache_free(bc);
		bc = open_cache(dir, BIG);
		assert_entry(bc, "INBOX", 1, 1, 4, "again");
		ifs_bodycache_free(bc);

		g_free(hdir);
		g_free(listing);
		g_free(state);
		g_free(format);
		rm_rf(dir);
		g_free(dir);
	}
}

/* At open, a piece file whose SIZE does not match its length is removed (and so is a piece
 * file that is not named as this code names them), the rest stays. */
static void test_bad_piece_files_removed(void)
{
	char *dir = tmpdir_new();
	char *ud = uv_dir(dir, "INBOX", 77);
	struct ifs_bodycache *bc = open_cache(dir, BIG);
	char *cut = g_build_filename(ud, "4-2.11", NULL);
	char *grown = g_build_filename(ud, "4-3.11", NULL);
	/* names this code never writes: piece 0 spelt out (of a UID with no whole message), no
	 * UID, junk */
	static const char *const foreign[] = {"5-0.3",   "0-1.3", "4-.3",  "-1.3",
	                                      "4-1-2.3", "4-x.3", "4-1.3x"};
	char *names;
	FILE *f;

	store(bc, "INBOX", 77, 4, IFS_BODYCACHE_WHOLE, "the message");
	store(bc, "INBOX", 77, 4, 1, "piece one!!");
	store(bc, "INBOX", 77, 4, 2, "piece two!!");
	store(bc, "INBOX", 77, 4, 3, "piece 3!!!!");
	ifs_bodycache_free(bc);
	g_assert_cmpint(truncate(cut, 5), ==, 0);
	f = fopen(grown, "a");
	g_assert_nonnull(f);
	fputs("more", f);
	fclose(f);
	for (guint i = 0; i < G_N_ELEMENTS(foreign); i++) {
		char *path = g_build_filename(ud, foreign[i], NULL);
		write_file(path, "abc", 3);
		g_free(path);
	}

	bc = open_cache(dir, BIG);
	names = names_in(ud);
	g_assert_cmpstr(names, ==, "4-1.11 4.11");
	g_free(names);
	assert_entry(bc, "INBOX", 77, 4, IFS_BODYCACHE_WHOLE, "the message");
	assert_entry(bc, "INBOX", 77, 4, 1, "piece one!!");
	assert_absent(bc, "INBOX", 77, 4, 2);
	assert_absent(bc, "INBOX", 77, 4, 3);
	assert_usage(bc, 22, 2);
	ifs_bodycache_free(bc);
	g_free(cut);
	g_free(grown);
	g_free(ud);
	rm_rf(dir);
	g_free(dir);
}

/* Eviction covers pieces as it covers messages: the cache holds at most max_bytes of files,
 * least recently used first out (a hit counts as a use), whole messages and pieces alike,
 * and each evicted piece leaves the entry count and the disk. */
static void test_eviction_counts_pieces(void)
{
	char *dir = tmpdir_new();
	char *ud = uv_dir(dir, "INBOX", 1);
	struct ifs_bodycache *bc = open_cache(dir, 1000);
	char *a = content(1, 1, 300), *b = content(1, 2, 300), *c = content(2, 0, 300),
	     *d = content(1, 3, 300), *e = content(3, 9, 250);
	char *names, *got;

	store(bc, "INBOX", 1, 1, 1, a);
	store(bc, "INBOX", 1, 1, 2, b);
	store(bc, "INBOX", 1, 2, IFS_BODYCACHE_WHOLE, c);
	assert_usage(bc, 900, 3);
	/* a use of the oldest: piece 2 is now the least recently used (the pauses: file times
	 * move in kernel ticks, and the reopen below reads the order back from them) */
	g_usleep(30 * 1000);
	g_free(fetch(bc, "INBOX", 1, 1, 1));
	g_usleep(30 * 1000);
	store(bc, "INBOX", 1, 1, 3, d);
	assert_usage(bc, 900, 3);
	assert_absent(bc, "INBOX", 1, 1, 2);
	names = names_in(ud);
	g_assert_cmpstr(names, ==, "1-1.300 1-3.300 2.300");
	g_free(names);
	/* the LRU order survives a reopen (file mtimes); a smaller bound evicts at open */
	ifs_bodycache_free(bc);
	bc = open_cache(dir, 700);
	assert_usage(bc, 600, 2);
	assert_absent(bc, "INBOX", 1, 2, IFS_BODYCACHE_WHOLE);
	g_assert_nonnull((got = fetch(bc, "INBOX", 1, 1, 1)));
	g_free(got);
	g_assert_nonnull((got = fetch(bc, "INBOX", 1, 1, 3)));
	g_free(got);
	store(bc, "INBOX", 1, 3, 9, e);
	assert_usage(bc, 550, 2);
	assert_absent(bc, "INBOX", 1, 1, 1);
	assert_entry(bc, "INBOX", 1, 1, 3, d);
	assert_entry(bc, "INBOX", 1, 3, 9, e);
	ifs_bodycache_free(bc);
	g_free(a);
	g_free(b);
	g_free(c);
	g_free(d);
	g_free(e);
	g_free(ud);
	rm_rf(dir);
	g_free(dir);
}

/* A UIDVALIDITY change drops every piece of the old life, on disk too, whole messages with
 * them; other folders stay; a writer and a pack of the old life find it gone (-ESTALE). */
static void test_uidvalidity_drops_pieces(void)
{
	char *dir = tmpdir_new();
	char *old = uv_dir(dir, "INBOX", 100);
	struct ifs_bodycache *bc = open_cache(dir, BIG);
	struct ifs_bodycache_writer *w = NULL;
	struct ifs_bodycache_pack *p = NULL;
	uint64_t off, size;
	int fd;

	store(bc, "INBOX", 100, 1, IFS_BODYCACHE_WHOLE, "one");
	store(bc, "INBOX", 100, 1, 1, "one, piece one");
	store(bc, "INBOX", 100, 2, 5, "two, piece five");
	store(bc, "Sent", 100, 1, 1, "sent one, piece one");
	g_assert_cmpint(ifs_bodycache_pack_new(bc, "INBOX", 100, &p), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_claim_piece(p, 3, 1), ==, IFS_BODYCACHE_CLAIMED);
	g_assert_cmpint(ifs_bodycache_pack_claim_piece(p, 3, 2), ==, IFS_BODYCACHE_CLAIMED);
	g_assert_cmpint(ifs_bodycache_pack_begin_piece(p, 3, 1), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_write(p, "three.1", 7), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_end_piece(p, 3, 1), ==, 0);
	g_assert_cmpint(
	    ifs_bodycache_get_piece(bc, "INBOX", 100, 4, 2, false, &fd, &off, &size, &w), ==,
	    IFS_BODYCACHE_CLAIMED);
	g_assert_cmpint(ifs_bodycache_writer_write(w, "four.2", 6), ==, 0);
	assert_usage(bc, 3 + 14 + 15 + 19 + 7, 5);

	g_test_expect_message(NULL, G_LOG_LEVEL_MESSAGE, "*UIDVALIDITY*discarding 4 *");
	ifs_bodycache_set_uidvalidity(bc, "INBOX", 200);
	g_test_assert_expected_messages();
	assert_usage(bc, 19, 1);
	g_assert_false(g_file_test(old, G_FILE_TEST_EXISTS));
	g_assert_cmpint(ifs_bodycache_writer_commit(w, &fd, &size), ==, -ESTALE);
	g_assert_cmpint(ifs_bodycache_pack_begin_piece(p, 3, 2), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_write(p, "three.2", 7), ==, 0);
	g_assert_cmpint(ifs_bodycache_pack_end_piece(p, 3, 2), ==, -ESTALE);
	ifs_bodycache_pack_close(p);
	/* (contains, not a lookup: a claim would make the directory of the old life again) */
	g_assert_false(ifs_bodycache_contains(bc, "INBOX", 100, 1));
	g_assert_false(ifs_bodycache_contains_piece(bc, "INBOX", 100, 1, 1));
	g_assert_false(ifs_bodycache_contains_piece(bc, "INBOX", 100, 2, 5));
	g_assert_false(ifs_bodycache_contains_piece(bc, "INBOX", 100, 3, 1));
	g_assert_false(ifs_bodycache_contains_piece(bc, "INBOX", 100, 3, 2));
	g_assert_false(ifs_bodycache_contains_piece(bc, "INBOX", 100, 4, 2));
	g_assert_false(g_file_test(old, G_FILE_TEST_EXISTS));
	assert_entry(bc, "Sent", 100, 1, 1, "sent one, piece one");
	/* the new life stores pieces as usual */
	store(bc, "INBOX", 200, 1, 1, "new one, piece one");
	ifs_bodycache_free(bc);
	bc = open_cache(dir, BIG);
	g_assert_false(g_file_test(old, G_FILE_TEST_EXISTS));
	assert_entry(bc, "INBOX", 200, 1, 1, "new one, piece one");
	assert_entry(bc, "Sent", 100, 1, 1, "sent one, piece one");
	assert_usage(bc, 19 + 18, 2);
	ifs_bodycache_free(bc);
	g_free(old);
	rm_rf(dir);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/bodycache/pieces_beside_whole", test_pieces_beside_whole);
	g_test_add_func("/bodycache/single_flight_per_piece", test_single_flight_per_piece);
	g_test_add_func("/bodycache/pack_mixed_pieces", test_pack_mixed_pieces);
	g_test_add_func("/bodycache/version1_cache_read", test_version1_cache_read);
	g_test_add_func("/bodycache/unknown_format_wipes", test_unknown_format_wipes);
	g_test_add_func("/bodycache/bad_piece_files_removed", test_bad_piece_files_removed);
	g_test_add_func("/bodycache/eviction_counts_pieces", test_eviction_counts_pieces);
	g_test_add_func("/bodycache/uidvalidity_drops_pieces", test_uidvalidity_drops_pieces);
	return g_test_run();
}
