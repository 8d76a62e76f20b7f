/* bodycache.c — persistent, bounded, single-flight cache of raw messages and pieces of messages
 * on disk (contract, layout and format versions in bodycache.h). */
#include "bodycache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOLDER_HASH_LEN IFS_FOLDER_HASH_LEN
#define TMP_PREFIX      ".tmp-"
#define PACK_SUFFIX     ".pack"
#define PACK_MAGIC      "IFSPACK2" /* written: members (uid, piece) */
#define PACK_MAGIC_V1   "IFSPACK1" /* read: members (uid, 0), whole messages */
#define FORMAT_FILE     "format"
#define FORMAT_TEXT     "2\n"
/* After a write failure, how long new messages bypass the disk before it is tried again (an
 * eviction that frees space ends the wait at once). */
#define FAIL_RETRY_US (5 * G_USEC_PER_SEC)

/* A pack's trailer: one record per member in offset order, then the footer:
 * data length (u64), member count (u32), PACK_MAGIC (8 bytes); integers little-endian. */
struct pack_record {
	uint32_t uid;
	uint32_t piece; /* 0 in IFSPACK1 packs: they hold whole messages only */
	uint64_t offset;
	uint64_t size;
};
#define PACK_FOOTER_LEN 20

/* An entry's key within its <F>/<UIDVALIDITY> directory: (uid, piece) in one integer, the UID
 * in the low half: GLib 2.74's g_int64_hash is the low 32 bits alone, so with the piece there
 * every whole message of a folder fell in one bucket (a remount's grep over 5,000 messages
 * spent half its CPU in g_int64_equal). */
static uint64_t entry_key(uint32_t uid, uint32_t piece)
{
	return (uint64_t)piece << 32 | uid;
}

/* One file of entries, the unit of LRU order and eviction: a single entry "<UID>.<SIZE>" (a
 * whole message) or "<UID>-<PIECE>.<SIZE>", or a pack "<FIRST>-<LAST>.<RANDOM>.pack" of the
 * entries one read-ahead batch fetched (see bodycache.h for why packs exist and their format). */
struct cfile {
	struct cdir *dir; /* NULL: orphaned (its directory was discarded while being written) */
	char *name;       /* in dir->rel; while a pack is written, its temporary name */
	uint64_t bytes;   /* what it occupies (counted in bc->bytes) */
	int64_t used;     /* mtime, µs: LRU order at startup */
	GArray *keys;     /* uint64_t entry_key(): the members */
	bool writing;     /* a pack being written (owned by its pack writer): never evicted */
	GList link;       /* in bc->lru: head = most recently used */
};

/* One committed entry (a whole message or a piece): where its bytes are. */
struct entry {
	struct cfile *file;
	uint64_t key; /* entry_key(uid, piece); also the key of cdir->entries */
	uint64_t offset, size;
};

/* One <F>/<UIDVALIDITY> directory. */
struct cdir {
	char *rel; /* "F/UIDVALIDITY" */
	char hash[FOLDER_HASH_LEN + 1];
	uint32_t uidvalidity;
	GHashTable *entries; /* &entry->key (uint64_t) -> struct entry* (owned) */
};

struct ifs_bodycache {
	char *dir;
	char *identity;
	int dirfd;           /* replaced (lock held) when the directory is recreated */
	GArray *retired_fds; /* int: dirfds so replaced, closed at free: writers still use them */
	int lockfd;
	uint64_t max_bytes;

	GMutex lock;
	GCond done;            /* broadcast when a writer commits or aborts */
	GHashTable *dirs;      /* rel -> struct cdir* */
	GHashTable *inflight;  /* inflight_key() -> NULL: claimed by a writer or a pack */
	GQueue lru;            /* struct cfile*, most recently used first */
	uint64_t bytes, count; /* bytes of all files; entries (messages and pieces) */
	/* Writing to the disk fails (full, quota, I/O error, read-only, directory removed):
	 * messages are then served from scratch files without being stored, the condition is
	 * logged once (not once per message), and the disk is tried again after FAIL_RETRY_US
	 * or as soon as an eviction frees space. */
	int fail_err;    /* errno of the condition in force; 0: writing works */
	gint64 retry_at; /* monotonic µs: until then new entries bypass the disk */
	uint64_t write_failures, unstored;
};

/* Where a writer's bytes go: the cache (a temporary file renamed into place at commit), or,
 * when the cache cannot take them, a scratch file served once and never kept. */
enum writer_where {
	W_CACHE,
	W_TMPDIR, /* unlinked file in $TMPDIR (O_TMPFILE) */
	W_MEMORY, /* memfd: anonymous shared memory, last resort */
};

struct ifs_bodycache_writer {
	struct ifs_bodycache *bc;
	char *rel;     /* "F/UIDVALIDITY" */
	char *key;     /* inflight_key() */
	char *tmp_rel; /* "F/UIDVALIDITY/.tmp-XXXXXX" */
	uint32_t uidvalidity, uid, piece;
	int fd;
	int dirfd; /* bc->dirfd when the temporary file was made (W_CACHE) */
	uint64_t size;
	enum writer_where where;
};

static void folder_hash(const char *folder, char out[FOLDER_HASH_LEN + 1])
{
	char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, folder, -1);
	memcpy(out, h, FOLDER_HASH_LEN);
	out[FOLDER_HASH_LEN] = '\0';
	g_free(h);
}

void ifs_bodycache_folder_hash(const char *folder, char out[IFS_FOLDER_HASH_LEN + 1])
{
	folder_hash(folder, out);
}

char *ifs_bodycache_default_dir(const char *account)
{
	bool plain = account[0] != '\0' && account[0] != '.' && strlen(account) <= 64;
	char *name, *out;

	for (const char *p = account; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
			plain = false;
	/* An account name is a config section name: anything.  Never let it be a path. */
	if (plain) {
		name = g_strdup(account);
	} else {
		char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, account, -1);
		name = g_strdup_printf("account-%.32s", h);
		g_free(h);
	}
	/* g_get_user_cache_dir honours XDG_CACHE_HOME and falls back to ~/.cache */
	out = g_build_filename(g_get_user_cache_dir(), "imapfs", name, NULL);
	g_free(name);
	return out;
}

/* ---- index (lock held) ---- */

/* The key of bc->inflight: "F/UIDVALIDITY/UID/PIECE" (rel is "F/UIDVALIDITY"; new string). */
static char *inflight_key(const char *rel, uint32_t uid, uint32_t piece)
{
	return g_strdup_printf("%s/%u/%u", rel, uid, piece);
}

/* An entry's file name (new string): "<UID>.<SIZE>" for a whole message, else
 * "<UID>-<PIECE>.<SIZE>". */
static char *entry_name(uint32_t uid, uint32_t piece, uint64_t size)
{
	if (piece == IFS_BODYCACHE_WHOLE)
		return g_strdup_printf("%u.%" G_GUINT64_FORMAT, uid, size);
	return g_strdup_printf("%u-%u.%" G_GUINT64_FORMAT, uid, piece, size);
}

static struct cdir *cdir_get(struct ifs_bodycache *bc, const char *hash, uint32_t uidvalidity,
                             bool create)
{
	char *rel = g_strdup_printf("%s/%u", hash, uidvalidity);
	struct cdir *d = g_hash_table_lookup(bc->dirs, rel);

	if (d != NULL || !create) {
		g_free(rel);
		return d;
	}
	d = g_new0(struct cdir, 1);
	d->rel = rel;
	memcpy(d->hash, hash, FOLDER_HASH_LEN + 1);
	d->uidvalidity = uidvalidity;
	d->entries = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	g_hash_table_insert(bc->dirs, d->rel, d);
	return d;
}

static void cdir_free(gpointer p)
{
	struct cdir *d = p;
	g_hash_table_destroy(d->entries);
	g_free(d->rel);
	g_free(d);
}

static struct cfile *cfile_new(struct cdir *d, char *name, int64_t used)
{
	struct cfile *f = g_new0(struct cfile, 1);
	f->dir = d;
	f->name = name;
	f->used = used;
	f->keys = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	f->link.data = f;
	return f;
}

static void cfile_free(struct cfile *f)
{
	g_array_unref(f->keys);
	g_free(f->name);
	g_free(f);
}

static char *cfile_rel(const struct cfile *f)
{
	return g_strdup_printf("%s/%s", f->dir->rel, f->name);
}

/* Put f in the LRU order (front: most recently used) and count its bytes. */
static void cfile_add(struct ifs_bodycache *bc, struct cfile *f, bool front)
{
	if (front)
		g_queue_push_head_link(&bc->lru, &f->link);
	else
		g_queue_push_tail_link(&bc->lru, &f->link);
	bc->bytes += f->bytes;
}

/* Index an entry of f (a key already indexed keeps its first file). */
static bool member_add(struct ifs_bodycache *bc, struct cfile *f, uint32_t uid, uint32_t piece,
                       uint64_t offset, uint64_t size)
{
	uint64_t key = entry_key(uid, piece);
	struct entry *e;

	if (g_hash_table_contains(f->dir->entries, &key))
		return false;
	e = g_new0(struct entry, 1);
	e->file = f;
	e->key = key;
	e->offset = offset;
	e->size = size;
	g_hash_table_insert(f->dir->entries, &e->key, e);
	g_array_append_val(f->keys, key);
	bc->count++;
	return true;
}

/* A single-entry file. */
static void entry_add(struct ifs_bodycache *bc, struct cdir *d, uint32_t uid, uint32_t piece,
                      uint64_t size, int64_t used, bool front)
{
	struct cfile *f = cfile_new(d, entry_name(uid, piece, size), used);
	f->bytes = size;
	member_add(bc, f, uid, piece, 0, size);
	cfile_add(bc, f, front);
}

/* Take f's entries out of the index. */
static void members_forget(struct ifs_bodycache *bc, struct cfile *f)
{
	for (guint i = 0; i < f->keys->len; i++) {
		uint64_t key = g_array_index(f->keys, uint64_t, i);
		struct entry *e = g_hash_table_lookup(f->dir->entries, &key);
		if (e != NULL && e->file == f) {
			g_hash_table_remove(f->dir->entries, &key); /* frees e */
			bc->count--;
		}
	}
}

/* Forget f's entries and take it out of the LRU order and the byte count; remove it from disk
 * unless a pack writer still owns it (then it is orphaned: the writer finds dir NULL). */
static void cfile_remove(struct ifs_bodycache *bc, struct cfile *f)
{
	members_forget(bc, f);
	g_queue_unlink(&bc->lru, &f->link);
	bc->bytes -= f->bytes;
	if (f->writing) {
		f->dir = NULL;
		return;
	}
	char *rel = cfile_rel(f);
	if (unlinkat(bc->dirfd, rel, 0) < 0 && errno != ENOENT)
		g_debug("cache: cannot remove %s/%s: %s", bc->dir, rel, g_strerror(errno));
	g_free(rel);
	cfile_free(f);
}

/* Undo member_add()s of a file never put in the LRU order (scan found it damaged) and free
 * it; the caller removes it from disk. */
static void cfile_remove_unlisted(struct ifs_bodycache *bc, struct cfile *f)
{
	members_forget(bc, f);
	cfile_free(f);
}

/* Least recently used files out until the cache fits (packs being written stay). */
static void evict(struct ifs_bodycache *bc)
{
	GList *l = bc->lru.tail;
	bool freed = false;

	while (bc->bytes > bc->max_bytes && l != NULL) {
		struct cfile *f = l->data;
		l = l->prev;
		if (!f->writing) {
			cfile_remove(bc, f);
			freed = true;
		}
	}
	/* space was short: what was just freed may be enough, try the disk again now */
	if (freed && (bc->fail_err == ENOSPC || bc->fail_err == EDQUOT))
		bc->retry_at = 0;
}

/* ---- write failures (lock held) ---- */

/* Writing doing ... failed with err: count it, bypass the disk for a while, and log the
 * condition once (a full disk must not log a line per message). */
static void note_write_failure(struct ifs_bodycache *bc, int err, const char *doing)
{
	bc->write_failures++;
	bc->retry_at = g_get_monotonic_time() + FAIL_RETRY_US;
	if (err == bc->fail_err)
		return;
	bc->fail_err = err;
	g_warning("disk cache %s: %s: %s; serving mail without storing it (trying again every "
	          "%d s)",
	          bc->dir, doing, g_strerror(err), (int)(FAIL_RETRY_US / G_USEC_PER_SEC));
}

static void note_write_ok(struct ifs_bodycache *bc)
{
	if (bc->fail_err == 0)
		return;
	bc->fail_err = 0;
	g_message("disk cache %s: storing mail again", bc->dir);
}

/* New entries skip the disk (it failed recently). */
static bool bypassing(const struct ifs_bodycache *bc)
{
	return bc->fail_err != 0 && g_get_monotonic_time() < bc->retry_at;
}

static bool dir_removed(const struct ifs_bodycache *bc)
{
	struct stat st;
	return fstat(bc->dirfd, &st) == 0 && st.st_nlink == 0;
}

static int check_identity(struct ifs_bodycache *bc, const char *identity, char **errmsg_r);
static int check_format(struct ifs_bodycache *bc, char **errmsg_r);
static int prepare_dir(const char *dir, char **errmsg_r);

/* The cache directory was removed while mounted (rm -rf, a cleaner): make it again, empty,
 * with its lock, identity and format, and forget every entry (their files went with it).  Writers
 * and packs in flight still hold descriptors of their old files: they serve their bytes
 * without storing them.  0 or -errno (the condition stays, retried later). */
static int recreate_dir(struct ifs_bodycache *bc)
{
	char *why = NULL;
	int fd, lockfd, ret;

	bc->write_failures++;
	ret = prepare_dir(bc->dir, &why);
	g_free(why);
	if (ret < 0)
		goto fail;
	fd = open(bc->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	lockfd = openat(fd, "lock", O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		/* someone else made it theirs meanwhile: leave it to them */
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (lockfd >= 0)
			close(lockfd);
		close(fd);
		goto fail;
	}
	while (bc->lru.head != NULL)
		cfile_remove(bc, bc->lru.head->data); /* unlinks in the old, removed directory */
	g_array_append_val(bc->retired_fds, bc->dirfd);
	close(bc->lockfd);
	bc->dirfd = fd;
	bc->lockfd = lockfd;
	ret = check_identity(bc, bc->identity, &why);
	g_free(why);
	why = NULL;
	if (ret == 0)
		ret = check_format(bc, &why);
	g_free(why);
	if (ret < 0)
		goto fail;
	g_message("disk cache %s was removed while mounted; made it again (empty)", bc->dir);
	return 0;
fail:
	note_write_failure(bc, -ret, "the cache directory was removed and cannot be made again");
	return ret;
}

/* A file outside the cache for bytes that cannot be stored: unlinked in $TMPDIR, or else
 * anonymous memory (memfd; the daemon's heap never holds a whole large message).  *where_r
 * says which; from names where to start. */
static int scratch_fd(enum writer_where from, enum writer_where *where_r)
{
	int fd = -1;

	if (from <= W_TMPDIR) {
		fd = open(g_get_tmp_dir(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		*where_r = W_TMPDIR;
	}
	if (fd < 0) {
		fd = memfd_create("imapfs-message", MFD_CLOEXEC);
		*where_r = W_MEMORY;
	}
	return fd >= 0 ? fd : -errno;
}

/* Copy the first len bytes of from into to (both at offset 0 on).  0 or -errno. */
static int copy_prefix(int from, int to, uint64_t len)
{
	char buf[64 * 1024];
	uint64_t off = 0;

	while (off < len) {
		size_t want = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);
		ssize_t n = pread(from, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(to, buf + done, (size_t)(n - done), (off_t)(off + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			done += w;
		}
		off += (uint64_t)n;
	}
	return 0;
}

/* ---- opening ---- */

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!g_ascii_isdigit(*s))
			return false;
	return true;
}

static bool is_hash_name(const char *s)
{
	if (strlen(s) != FOLDER_HASH_LEN)
		return false;
	for (; *s != '\0'; s++)
		if (!g_ascii_isxdigit(*s) || g_ascii_isupper(*s))
			return false;
	return true;
}

/* Remove a directory tree below dirfd (no symlinks followed: unlinkat never does). */
static void remove_tree_at(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir;
	struct dirent *de;

	if (fd < 0) {
		unlinkat(parent, name, 0);
		return;
	}
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_DIR)
			remove_tree_at(dirfd(dir), de->d_name);
		else
			unlinkat(dirfd(dir), de->d_name, 0);
	}
	closedir(dir);
	unlinkat(parent, name, AT_REMOVEDIR);
}

/* A file found by scan(), not yet in the LRU order. */
struct scanned {
	struct cfile *file;
};

static int cmp_scanned(gconstpointer a, gconstpointer b)
{
	const struct scanned *x = a, *y = b;
	/* most recently used first */
	return x->file->used > y->file->used ? -1 : x->file->used < y->file->used;
}

/* Read a pack's trailer and index its members into f.  false: not a whole, valid pack.  An
 * IFSPACK1 pack (format version 1) holds whole messages: 0 where IFSPACK2 has the piece. */
static bool load_pack(struct ifs_bodycache *bc, int fd, uint64_t file_size, struct cfile *f)
{
	unsigned char footer[PACK_FOOTER_LEN];
	struct pack_record *recs;
	uint64_t data_len, next = 0;
	uint32_t count;
	bool ok = true, v1;

	if (file_size < PACK_FOOTER_LEN ||
	    pread(fd, footer, sizeof(footer), (off_t)(file_size - PACK_FOOTER_LEN)) !=
	        (ssize_t)sizeof(footer))
		return false;
	v1 = memcmp(footer + 12, PACK_MAGIC_V1, 8) == 0;
	if (!v1 && memcmp(footer + 12, PACK_MAGIC, 8) != 0)
		return false;
	memcpy(&data_len, footer, 8);
	memcpy(&count, footer + 8, 4);
	data_len = GUINT64_FROM_LE(data_len);
	count = GUINT32_FROM_LE(count);
	if (count == 0 || count > (file_size - PACK_FOOTER_LEN) / sizeof(struct pack_record) ||
	    data_len != file_size - PACK_FOOTER_LEN - (uint64_t)count * sizeof(struct pack_record))
		return false;
	recs = g_new(struct pack_record, count);
	if (pread(fd, recs, (size_t)count * sizeof(*recs), (off_t)data_len) !=
	    (ssize_t)(count * sizeof(*recs))) {
		g_free(recs);
		return false;
	}
	/* members back to back from offset 0, exactly filling the data part */
	for (uint32_t i = 0; i < count && ok; i++) {
		uint64_t off = GUINT64_FROM_LE(recs[i].offset),
		         size = GUINT64_FROM_LE(recs[i].size);
		ok = GUINT32_FROM_LE(recs[i].uid) != 0 && (!v1 || recs[i].piece == 0) &&
		     off == next && size <= data_len - off;
		next = off + size;
	}
	ok = ok && next == data_len;
	for (uint32_t i = 0; i < count && ok; i++)
		member_add(bc, f, GUINT32_FROM_LE(recs[i].uid), GUINT32_FROM_LE(recs[i].piece),
		           GUINT64_FROM_LE(recs[i].offset), GUINT64_FROM_LE(recs[i].size));
	g_free(recs);
	return ok;
}

/* Is n "<FIRST>-<LAST>.<hex>.pack"? */
static bool is_pack_name(const char *n)
{
	return g_str_has_suffix(n, PACK_SUFFIX) && g_ascii_isdigit(n[0]) && strchr(n, '-') != NULL;
}

/* Is n a single-entry file name, "<UID>.<SIZE>" (piece 0) or "<UID>-<PIECE>.<SIZE>" (PIECE not
 * 0: a whole message has only the first form)?  UID from 1, all decimal. */
static bool parse_entry_name(const char *n, uint32_t *uid_r, uint32_t *piece_r, uint64_t *size_r)
{
	const char *dot = strchr(n, '.'), *dash;
	char *uidpart, *piecepart = NULL;
	uint64_t uid = 0, piece = 0, size = 0;
	bool ok;

	if (dot == NULL)
		return false;
	dash = memchr(n, '-', (size_t)(dot - n));
	uidpart = g_strndup(n, (dash != NULL ? dash : dot) - n);
	if (dash != NULL)
		piecepart = g_strndup(dash + 1, (size_t)(dot - dash - 1));
	ok = all_digits(uidpart) && all_digits(dot + 1) &&
	     g_ascii_string_to_unsigned(uidpart, 10, 1, G_MAXUINT32, &uid, NULL) &&
	     g_ascii_string_to_unsigned(dot + 1, 10, 0, G_MAXUINT64, &size, NULL) &&
	     (piecepart == NULL ||
	      (all_digits(piecepart) &&
	       g_ascii_string_to_unsigned(piecepart, 10, 1, G_MAXUINT32, &piece, NULL)));
	g_free(uidpart);
	g_free(piecepart);
	*uid_r = (uint32_t)uid;
	*piece_r = (uint32_t)piece;
	*size_r = size;
	return ok;
}

/* Read one <F>/<UIDVALIDITY> directory into found. */
static void scan_uv_dir(struct ifs_bodycache *bc, const char *hash, const char *uvname,
                        GArray *found)
{
	char *rel = g_strdup_printf("%s/%s", hash, uvname);
	int fd = openat(bc->dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t uv = 0;
	DIR *dir;
	struct dirent *de;
	struct cdir *d;

	if (fd < 0 || !all_digits(uvname) ||
	    !g_ascii_string_to_unsigned(uvname, 10, 1, G_MAXUINT32, &uv, NULL)) {
		if (fd >= 0)
			close(fd);
		remove_tree_at(bc->dirfd, rel);
		g_free(rel);
		return;
	}
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		g_free(rel);
		return;
	}
	d = cdir_get(bc, hash, (uint32_t)uv, true);
	while ((de = readdir(dir)) != NULL) {
		const char *n = de->d_name;
		uint32_t uid = 0, piece = 0;
		uint64_t size = 0;
		struct stat st;
		struct cfile *f = NULL;
		bool ok;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (g_str_has_prefix(n, TMP_PREFIX)) {
			/* a write that never finished (crash, kill): never an entry */
			unlinkat(dirfd(dir), n, 0);
			continue;
		}
		ok = fstatat(dirfd(dir), n, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		     st.st_uid == getuid();
		if (ok && is_pack_name(n)) {
			int pfd = openat(dirfd(dir), n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			f = cfile_new(d, g_strdup(n),
			              (int64_t)st.st_mtim.tv_sec * 1000000 +
			                  st.st_mtim.tv_nsec / 1000);
			f->bytes = (uint64_t)st.st_size;
			ok = pfd >= 0 && load_pack(bc, pfd, (uint64_t)st.st_size, f);
			if (pfd >= 0)
				close(pfd);
		} else if (ok) {
			ok = parse_entry_name(n, &uid, &piece, &size) &&
			     (uint64_t)st.st_size == size;
			if (ok) {
				f = cfile_new(d, g_strdup(n),
				              (int64_t)st.st_mtim.tv_sec * 1000000 +
				                  st.st_mtim.tv_nsec / 1000);
				f->bytes = size;
				member_add(bc, f, uid, piece, 0, size);
			}
		}
		if (!ok || f->keys->len == 0) {
			/* damaged, foreign, or nothing in it we do not have already */
			if (f != NULL)
				cfile_remove_unlisted(bc, f);
			unlinkat(dirfd(dir), n, 0);
			continue;
		}
		struct scanned sc = {f};
		g_array_append_val(found, sc);
	}
	closedir(dir);
	g_free(rel);
}

static void scan(struct ifs_bodycache *bc)
{
	int fd = openat(bc->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	GArray *found = g_array_new(FALSE, FALSE, sizeof(struct scanned));
	GPtrArray *hashes = g_ptr_array_new_with_free_func(g_free);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (dir == NULL) {
		if (fd >= 0)
			close(fd);
		g_array_unref(found);
		g_ptr_array_unref(hashes);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (is_hash_name(de->d_name))
			g_ptr_array_add(hashes, g_strdup(de->d_name));
		else if (g_str_has_prefix(de->d_name, TMP_PREFIX))
			unlinkat(dirfd(dir), de->d_name, 0); /* a spill file of a crashed daemon */
	}
	closedir(dir);
	for (guint i = 0; i < hashes->len; i++) {
		const char *h = hashes->pdata[i];
		int hfd = openat(bc->dirfd, h, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *hd = hfd >= 0 ? fdopendir(hfd) : NULL;
		GPtrArray *uvs = g_ptr_array_new_with_free_func(g_free);

		if (hd == NULL) {
			if (hfd >= 0)
				close(hfd);
			remove_tree_at(bc->dirfd, h);
			g_ptr_array_unref(uvs);
			continue;
		}
		while ((de = readdir(hd)) != NULL)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				g_ptr_array_add(uvs, g_strdup(de->d_name));
		closedir(hd);
		for (guint k = 0; k < uvs->len; k++)
			scan_uv_dir(bc, h, uvs->pdata[k], found);
		g_ptr_array_unref(uvs);
	}
	g_array_sort(found, cmp_scanned);
	for (guint i = 0; i < found->len; i++)
		cfile_add(bc, g_array_index(found, struct scanned, i).file, false);
	g_array_unref(found);
	g_ptr_array_unref(hashes);
}

/* Make dir (and its parents) exist; the last component 0700 and ours. */
static int prepare_dir(const char *dir, char **errmsg_r)
{
	struct stat st;

	if (g_mkdir_with_parents(dir, 0700) < 0) {
		int e = errno;
		*errmsg_r =
		    g_strdup_printf("cannot create cache directory %s: %s (set cache_dir, or "
		                    "cache = off)",
		                    dir, g_strerror(e));
		return -e;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*errmsg_r = g_strdup_printf("cache directory %s is not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != getuid()) {
		*errmsg_r =
		    g_strdup_printf("cache directory %s is owned by uid %u, not by you (uid "
		                    "%u): refusing it (remove it, or set cache_dir)",
		                    dir, (unsigned)st.st_uid, (unsigned)getuid());
		return -EPERM;
	}
	/* Mail is private: whatever made the directory, it ends up 0700. */
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0) {
		int e = errno;
		*errmsg_r =
		    g_strdup_printf("cannot chmod 700 cache directory %s: %s", dir, g_strerror(e));
		return -e;
	}
	return 0;
}

/* Remove every <F> directory; with_state, state/ too (it is another mailbox's). */
static void wipe_entries(struct ifs_bodycache *bc, bool with_state)
{
	int fd = openat(bc->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	GPtrArray *victims = g_ptr_array_new_with_free_func(g_free);
	struct dirent *de;

	if (dir == NULL) {
		if (fd >= 0)
			close(fd);
		g_ptr_array_unref(victims);
		return;
	}
	while ((de = readdir(dir)) != NULL)
		if (is_hash_name(de->d_name))
			g_ptr_array_add(victims, g_strdup(de->d_name));
	closedir(dir);
	/* another mailbox's folder list and listings (state.h) go too */
	if (with_state)
		g_ptr_array_add(victims, g_strdup("state"));
	for (guint i = 0; i < victims->len; i++)
		remove_tree_at(bc->dirfd, victims->pdata[i]);
	g_ptr_array_unref(victims);
}

/* Same mailbox as last time?  If not (or unknown), wipe and record the new identity. */
static int check_identity(struct ifs_bodycache *bc, const char *identity, char **errmsg_r)
{
	char buf[4096];
	ssize_t n = -1;
	int fd = openat(bc->dirfd, "identity", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char *want = g_strdup_printf("%s\n", identity);
	int ret = 0;

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n >= 0) {
		buf[n] = '\0';
		if (strcmp(buf, want) == 0) {
			g_free(want);
			return 0;
		}
		g_message("cache %s belonged to another mailbox; emptying it", bc->dir);
	}
	wipe_entries(bc, true);
	fd = openat(bc->dirfd, "identity.tmp",
	            O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, want, strlen(want)) != (ssize_t)strlen(want) ||
	    renameat(bc->dirfd, "identity.tmp", bc->dirfd, "identity") < 0) {
		ret = -errno;
		*errmsg_r =
		    g_strdup_printf("cannot write %s/identity: %s", bc->dir, g_strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	g_free(want);
	return ret;
}

/* Write FORMAT_TEXT to the format file: temporary file, fsync, rename.  0 or -errno (and
 * *errmsg_r). */
static int write_format(struct ifs_bodycache *bc, char **errmsg_r)
{
	static const char tmp[] = FORMAT_FILE ".tmp";
	size_t len = strlen(FORMAT_TEXT);
	int fd, ret = 0;

	errno = 0;
	fd = openat(bc->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, FORMAT_TEXT, len) != (ssize_t)len || fsync(fd) < 0 ||
	    renameat(bc->dirfd, tmp, bc->dirfd, FORMAT_FILE) < 0) {
		ret = errno != 0 ? -errno : -EIO;
		*errmsg_r = g_strdup_printf("cannot write %s/" FORMAT_FILE ": %s", bc->dir,
		                            g_strerror(-ret));
		unlinkat(bc->dirfd, tmp, 0);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Entries in a format this code reads?  FORMAT_TEXT: yes.  No format file: version 1, whose
 * files all read as version 2 (bodycache.h "Versions").  Anything else (a newer imapfs's, or
 * damage): wipe the entries, never guess.  Then the file says FORMAT_TEXT.  0 or -errno (and
 * *errmsg_r): the format file cannot be written. */
static int check_format(struct ifs_bodycache *bc, char **errmsg_r)
{
	char buf[64];
	ssize_t n = -1;
	int err = 0;
	int fd = openat(bc->dirfd, FORMAT_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		err = errno;
	} else {
		n = read(fd, buf, sizeof(buf));
		if (n < 0)
			err = errno;
		close(fd);
	}
	if (n == (ssize_t)strlen(FORMAT_TEXT) && memcmp(buf, FORMAT_TEXT, (size_t)n) == 0)
		return 0;
	if (err != ENOENT) {
		/* the file's first bytes, escaped: it may hold anything */
		char *said = n >= 0 ? g_strndup(buf, (size_t)n) : NULL;
		char *shown = said != NULL ? g_strescape(said, NULL) : NULL;
		g_message("cache %s is in format \"%s\", not %.*s (another version of imapfs?); "
		          "emptying it",
		          bc->dir, shown != NULL ? shown : g_strerror(err),
		          (int)strlen(FORMAT_TEXT) - 1, FORMAT_TEXT);
		g_free(shown);
		g_free(said);
		wipe_entries(bc, false);
		remove_tree_at(bc->dirfd, FORMAT_FILE); /* whatever it is (a directory even) */
	}
	return write_format(bc, errmsg_r);
}

int ifs_bodycache_open(const char *dir, uint64_t max_bytes, const char *identity,
                       struct ifs_bodycache **bc_r, char **errmsg_r)
{
	struct ifs_bodycache *bc;
	int ret;

	*bc_r = NULL;
	ret = prepare_dir(dir, errmsg_r);
	if (ret < 0)
		return ret;
	bc = g_new0(struct ifs_bodycache, 1);
	bc->dir = g_strdup(dir);
	bc->identity = g_strdup(identity);
	bc->retired_fds = g_array_new(FALSE, FALSE, sizeof(int));
	bc->max_bytes = max_bytes;
	bc->lockfd = -1;
	g_mutex_init(&bc->lock);
	g_cond_init(&bc->done);
	bc->dirs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, cdir_free);
	bc->inflight = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_queue_init(&bc->lru);
	bc->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (bc->dirfd < 0) {
		ret = -errno;
		*errmsg_r =
		    g_strdup_printf("cannot open cache directory %s: %s", dir, g_strerror(errno));
		goto fail;
	}
	bc->lockfd = openat(bc->dirfd, "lock", O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (bc->lockfd < 0) {
		ret = -errno;
		*errmsg_r = g_strdup_printf("cannot create %s/lock: %s", dir, g_strerror(errno));
		goto fail;
	}
	if (flock(bc->lockfd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		*errmsg_r = g_strdup_printf("cache directory %s is in use by another imapfs", dir);
		goto fail;
	}
	ret = check_identity(bc, identity, errmsg_r);
	if (ret < 0)
		goto fail;
	ret = check_format(bc, errmsg_r);
	if (ret < 0)
		goto fail;
	scan(bc);
	evict(bc);
	*bc_r = bc;
	return 0;
fail:
	ifs_bodycache_free(bc);
	return ret;
}

void ifs_bodycache_free(struct ifs_bodycache *bc)
{
	if (bc == NULL)
		return;
	/* no pack writer is live (contract), so every file is in the LRU order */
	while (bc->lru.head != NULL) {
		struct cfile *f = bc->lru.head->data;
		g_queue_unlink(&bc->lru, &f->link);
		cfile_free(f);
	}
	g_hash_table_destroy(bc->dirs);
	g_hash_table_destroy(bc->inflight);
	if (bc->lockfd >= 0)
		close(bc->lockfd); /* releases the flock */
	if (bc->dirfd >= 0)
		close(bc->dirfd);
	for (guint i = 0; i < bc->retired_fds->len; i++)
		close(g_array_index(bc->retired_fds, int, i));
	g_array_unref(bc->retired_fds);
	g_cond_clear(&bc->done);
	g_mutex_clear(&bc->lock);
	g_free(bc->dir);
	g_free(bc->identity);
	g_free(bc);
}

/* ---- lookups ---- */

static struct entry *find(struct ifs_bodycache *bc, const char *hash, uint32_t uidvalidity,
                          uint32_t uid, uint32_t piece)
{
	struct cdir *d = cdir_get(bc, hash, uidvalidity, false);
	uint64_t key = entry_key(uid, piece);
	return d != NULL ? g_hash_table_lookup(d->entries, &key) : NULL;
}

bool ifs_bodycache_contains_piece(struct ifs_bodycache *bc, const char *folder,
                                  uint32_t uidvalidity, uint32_t uid, uint32_t piece)
{
	char hash[FOLDER_HASH_LEN + 1];
	bool found;

	folder_hash(folder, hash);
	g_mutex_lock(&bc->lock);
	found = find(bc, hash, uidvalidity, uid, piece) != NULL;
	g_mutex_unlock(&bc->lock);
	return found;
}

bool ifs_bodycache_contains(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                            uint32_t uid)
{
	return ifs_bodycache_contains_piece(bc, folder, uidvalidity, uid, IFS_BODYCACHE_WHOLE);
}

bool ifs_bodycache_claimed(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                           uint32_t uid, uint32_t piece)
{
	char hash[FOLDER_HASH_LEN + 1];
	char *rel, *key;
	bool claimed;

	folder_hash(folder, hash);
	rel = g_strdup_printf("%s/%u", hash, uidvalidity);
	key = inflight_key(rel, uid, piece);
	g_mutex_lock(&bc->lock);
	claimed = g_hash_table_contains(bc->inflight, key);
	g_mutex_unlock(&bc->lock);
	g_free(key);
	g_free(rel);
	return claimed;
}

/* Open e's file (lock held); marks it used.  -errno when the file vanished or was damaged
 * (then forgotten, with the rest of its file). */
static int open_entry(struct ifs_bodycache *bc, struct entry *e, int *fd_r, uint64_t *offset_r,
                      uint64_t *size_r)
{
	struct cfile *f = e->file;
	char *rel = cfile_rel(f);
	int fd = openat(bc->dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	g_free(rel);
	/* a pack being written grows; a finished file has exactly its size */
	if (fd < 0 || fstat(fd, &st) < 0 ||
	    (f->writing ? (uint64_t)st.st_size < e->offset + e->size
	                : (uint64_t)st.st_size != f->bytes)) {
		int err = fd < 0 ? -errno : -EIO;
		if (fd >= 0)
			close(fd);
		/* the whole directory went: one line for it, not one per file (f is freed) */
		if (dir_removed(bc) && recreate_dir(bc) == 0)
			return err;
		g_warning("cache file %s/%s/%s vanished or changed; fetching its entries again",
		          bc->dir, f->dir->rel, f->name);
		cfile_remove(bc, f);
		return err;
	}
	/* LRU: most recently used first, remembered across mounts through the mtime. */
	if (!f->writing) {
		futimens(fd, NULL);
		g_queue_unlink(&bc->lru, &f->link);
		g_queue_push_head_link(&bc->lru, &f->link);
	}
	*fd_r = fd;
	*offset_r = e->offset;
	*size_r = e->size;
	return 0;
}

/* Make d's directory exist on disk (lock held).  0 or -errno. */
static int make_cdir(struct ifs_bodycache *bc, const struct cdir *d)
{
	if (mkdirat(bc->dirfd, d->hash, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdirat(bc->dirfd, d->rel, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* w's temporary file in d (lock held).  0 or -errno. */
static int create_tmp(struct ifs_bodycache *bc, const struct cdir *d,
                      struct ifs_bodycache_writer *w)
{
	int ret = make_cdir(bc, d);

	if (ret < 0)
		return ret;
	for (int attempt = 0; attempt < 100 && w->fd < 0; attempt++) {
		g_free(w->tmp_rel);
		w->tmp_rel = g_strdup_printf("%s/" TMP_PREFIX "%08x%08x", w->rel, g_random_int(),
		                             g_random_int());
		/* 0600 whatever the umask: mail is private */
		w->fd = openat(bc->dirfd, w->tmp_rel,
		               O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (w->fd < 0 && errno != EEXIST)
			return -errno;
	}
	w->where = W_CACHE;
	w->dirfd = bc->dirfd;
	return w->fd < 0 ? -EEXIST : 0;
}

static void writer_free(struct ifs_bodycache_writer *w);

int ifs_bodycache_get_piece(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                            uint32_t uid, uint32_t piece, bool wait, int *fd_r, uint64_t *offset_r,
                            uint64_t *size_r, struct ifs_bodycache_writer **w_r)
{
	char hash[FOLDER_HASH_LEN + 1];
	struct ifs_bodycache_writer *w;
	struct cdir *d;
	char *rel, *key;
	int ret;

	*w_r = NULL;
	folder_hash(folder, hash);
	rel = g_strdup_printf("%s/%u", hash, uidvalidity);
	key = inflight_key(rel, uid, piece);
	g_free(rel);
	g_mutex_lock(&bc->lock);
	for (;;) {
		struct entry *e = find(bc, hash, uidvalidity, uid, piece);
		if (e != NULL && open_entry(bc, e, fd_r, offset_r, size_r) == 0) {
			g_mutex_unlock(&bc->lock);
			g_free(key);
			return IFS_BODYCACHE_HIT;
		}
		if (!g_hash_table_contains(bc->inflight, key))
			break;
		if (!wait) {
			g_mutex_unlock(&bc->lock);
			g_free(key);
			return IFS_BODYCACHE_BUSY;
		}
		g_cond_wait(&bc->done, &bc->lock);
	}
	/* Claim it; the temporary file goes where the entry will be (rename stays atomic). */
	d = cdir_get(bc, hash, uidvalidity, true);
	w = g_new0(struct ifs_bodycache_writer, 1);
	w->bc = bc;
	w->rel = g_strdup(d->rel);
	w->uidvalidity = uidvalidity;
	w->uid = uid;
	w->piece = piece;
	w->fd = -1;
	if (!bypassing(bc)) {
		ret = create_tmp(bc, d, w);
		if (ret == -ENOENT && dir_removed(bc) && recreate_dir(bc) == 0)
			ret = create_tmp(bc, d, w);
		if (ret < 0)
			note_write_failure(bc, -ret, "cannot create a file");
	}
	if (w->fd < 0) {
		/* the disk cannot take it: the reader is served all the same */
		ret = scratch_fd(W_TMPDIR, &w->where);
		if (ret < 0) {
			g_mutex_unlock(&bc->lock);
			g_warning("cannot create a scratch file for a message: %s",
			          g_strerror(-ret));
			writer_free(w);
			g_free(key);
			return ret;
		}
		w->fd = ret;
	}
	w->key = key;
	g_hash_table_add(bc->inflight, g_strdup(key));
	g_mutex_unlock(&bc->lock);
	*w_r = w;
	return IFS_BODYCACHE_CLAIMED;
}

int ifs_bodycache_get(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                      uint32_t uid, bool wait, int *fd_r, uint64_t *offset_r, uint64_t *size_r,
                      struct ifs_bodycache_writer **w_r)
{
	return ifs_bodycache_get_piece(bc, folder, uidvalidity, uid, IFS_BODYCACHE_WHOLE, wait,
	                               fd_r, offset_r, size_r, w_r);
}

/* ---- writers ---- */

/* The file w writes to failed with err: go on in a scratch file, with what was written so
 * far copied over.  0 or -errno (no scratch file could take it either). */
static int writer_move(struct ifs_bodycache_writer *w, int err)
{
	struct ifs_bodycache *bc = w->bc;
	enum writer_where where;
	int fd;

	if (w->where == W_MEMORY)
		return -err;
	if (w->where == W_CACHE) {
		g_mutex_lock(&bc->lock);
		note_write_failure(bc, err, "cannot write a message");
		g_mutex_unlock(&bc->lock);
	}
	fd = scratch_fd(w->where + 1, &where);
	if (fd < 0)
		return fd;
	if (copy_prefix(w->fd, fd, w->size) < 0) {
		close(fd);
		return -err;
	}
	if (w->where == W_CACHE)
		unlinkat(w->dirfd, w->tmp_rel, 0);
	close(w->fd);
	w->fd = fd;
	w->where = where;
	return 0;
}

int ifs_bodycache_writer_write(struct ifs_bodycache_writer *w, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(w->fd, p, len, (off_t)w->size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int ret = writer_move(w, errno);
			if (ret < 0)
				return ret;
			continue;
		}
		p += n;
		len -= (size_t)n;
		w->size += (uint64_t)n;
	}
	return 0;
}

int ifs_bodycache_writer_rewind(struct ifs_bodycache_writer *w)
{
	w->size = 0;
	if (ftruncate(w->fd, 0) < 0)
		return -errno;
	return 0;
}

static void writer_finish(struct ifs_bodycache_writer *w)
{
	struct ifs_bodycache *bc = w->bc;

	/* lock held */
	g_hash_table_remove(bc->inflight, w->key);
	g_cond_broadcast(&bc->done);
}

static void writer_free(struct ifs_bodycache_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	g_free(w->rel);
	g_free(w->key);
	g_free(w->tmp_rel);
	g_free(w);
}

/* Serve what w received from its own descriptor, without keeping it; frees w. */
static int serve_unstored(struct ifs_bodycache_writer *w, int *fd_r, uint64_t *size_r)
{
	struct ifs_bodycache *bc = w->bc;

	g_mutex_lock(&bc->lock);
	bc->unstored++;
	writer_finish(w); /* waiters find no entry and fetch it themselves */
	g_mutex_unlock(&bc->lock);
	*fd_r = w->fd;
	*size_r = w->size;
	w->fd = -1;
	writer_free(w);
	return 0;
}

int ifs_bodycache_writer_commit(struct ifs_bodycache_writer *w, int *fd_r, uint64_t *size_r)
{
	struct ifs_bodycache *bc = w->bc;
	char *final, *name;
	char hash[FOLDER_HASH_LEN + 1];
	struct cdir *d;
	int ret = 0, rfd;

	if (w->where != W_CACHE)
		return serve_unstored(w, fd_r, size_r);
	name = entry_name(w->uid, w->piece, w->size);
	final = g_strdup_printf("%s/%s", w->rel, name);
	g_free(name);
	/* Durable before visible: after a power loss an entry is whole or absent. */
	if (fdatasync(w->fd) < 0) {
		ret = -errno;
		goto unstored;
	}
	memcpy(hash, w->rel, FOLDER_HASH_LEN);
	hash[FOLDER_HASH_LEN] = '\0';
	rfd = openat(w->dirfd, w->tmp_rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (rfd < 0) {
		ret = -errno;
		/* A UIDVALIDITY change removes the directory, our temporary file with it: that is
		 * the -ESTALE below, not a disk that fails (no warning, no bypass). */
		g_mutex_lock(&bc->lock);
		d = cdir_get(bc, hash, w->uidvalidity, false);
		g_mutex_unlock(&bc->lock);
		if (d == NULL) {
			g_free(final);
			ifs_bodycache_writer_abort(w);
			return -ESTALE;
		}
		goto unstored;
	}
	g_mutex_lock(&bc->lock);
	/* The folder's UIDVALIDITY may have changed while we fetched: then drop it. */
	d = cdir_get(bc, hash, w->uidvalidity, false);
	if (d == NULL) {
		g_mutex_unlock(&bc->lock);
		close(rfd);
		g_free(final);
		ifs_bodycache_writer_abort(w);
		return -ESTALE;
	}
	if (renameat(w->dirfd, w->tmp_rel, bc->dirfd, final) < 0) {
		ret = -errno;
		g_mutex_unlock(&bc->lock);
		close(rfd);
		goto unstored;
	}
	if (find(bc, hash, w->uidvalidity, w->uid, w->piece) == NULL)
		entry_add(bc, d, w->uid, w->piece, w->size, g_get_real_time(), true);
	note_write_ok(bc);
	writer_finish(w);
	evict(bc);
	g_mutex_unlock(&bc->lock);
	*fd_r = rfd;
	*size_r = w->size;
	g_free(final);
	writer_free(w);
	return 0;
unstored:
	/* The bytes are all there, in w's file: the reader gets them, the cache does not. */
	g_mutex_lock(&bc->lock);
	note_write_failure(bc, -ret, "cannot store a message");
	g_mutex_unlock(&bc->lock);
	unlinkat(w->dirfd, w->tmp_rel, 0);
	g_free(final);
	return serve_unstored(w, fd_r, size_r);
}

void ifs_bodycache_writer_abort(struct ifs_bodycache_writer *w)
{
	struct ifs_bodycache *bc;

	if (w == NULL)
		return;
	bc = w->bc;
	if (w->where == W_CACHE)
		unlinkat(w->dirfd, w->tmp_rel, 0);
	g_mutex_lock(&bc->lock);
	writer_finish(w);
	g_mutex_unlock(&bc->lock);
	writer_free(w);
}

/* ---- pack writers ---- */

struct ifs_bodycache_pack {
	struct ifs_bodycache *bc;
	struct cfile *file; /* owned until close; file->dir NULL when orphaned */
	char *rel;          /* "F/UIDVALIDITY" */
	int fd;
	GHashTable *claimed; /* uint64_t entry_key() (owned) -> inflight key (owned): claimed,
	                      * not yet stored */
	GArray *records;     /* struct pack_record of the stored members, host order */
	uint64_t end;        /* bytes of stored members */
	uint32_t cur_uid;    /* the member being received (UID 0: none), and its piece */
	uint32_t cur_piece;
	uint64_t cur_size;
	int error; /* first write error: the pack is not finished */
};

int ifs_bodycache_pack_new(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                           struct ifs_bodycache_pack **p_r)
{
	char hash[FOLDER_HASH_LEN + 1];
	struct ifs_bodycache_pack *p;
	struct cdir *d;
	char *name = NULL;
	int fd = -1, ret;

	*p_r = NULL;
	folder_hash(folder, hash);
	g_mutex_lock(&bc->lock);
	if (bypassing(bc)) {
		/* the disk failed a moment ago: nothing to read ahead into */
		ret = -bc->fail_err;
		g_mutex_unlock(&bc->lock);
		return ret;
	}
	d = cdir_get(bc, hash, uidvalidity, true);
	ret = make_cdir(bc, d);
	if (ret < 0) {
		errno = -ret;
		goto fail_errno;
	}
	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		char *rel;
		g_free(name);
		name = g_strdup_printf(TMP_PREFIX "pack-%08x%08x", g_random_int(), g_random_int());
		rel = g_strdup_printf("%s/%s", d->rel, name);
		fd = openat(bc->dirfd, rel, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            0600);
		g_free(rel);
		if (fd < 0 && errno != EEXIST)
			goto fail_errno;
	}
	if (fd < 0) {
		errno = EEXIST;
		goto fail_errno;
	}
	p = g_new0(struct ifs_bodycache_pack, 1);
	p->bc = bc;
	p->rel = g_strdup(d->rel);
	p->fd = fd;
	p->file = cfile_new(d, name, g_get_real_time());
	p->file->writing = true;
	cfile_add(bc, p->file, true);
	p->claimed = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	p->records = g_array_new(FALSE, FALSE, sizeof(struct pack_record));
	g_mutex_unlock(&bc->lock);
	*p_r = p;
	return 0;
fail_errno:
	ret = -errno;
	if (ret == -ENOENT && dir_removed(bc))
		recreate_dir(bc);
	else
		note_write_failure(bc, -ret, "cannot create a file");
	g_mutex_unlock(&bc->lock);
	g_free(name);
	return ret;
}

int ifs_bodycache_pack_claim_piece(struct ifs_bodycache_pack *p, uint32_t uid, uint32_t piece)
{
	struct ifs_bodycache *bc = p->bc;
	char *key = inflight_key(p->rel, uid, piece);
	uint64_t ek = entry_key(uid, piece);
	struct cdir *d;
	int ret;

	g_mutex_lock(&bc->lock);
	d = p->file->dir;
	if (d != NULL && g_hash_table_contains(d->entries, &ek)) {
		ret = IFS_BODYCACHE_HIT;
	} else if (d == NULL || g_hash_table_contains(bc->inflight, key)) {
		ret = IFS_BODYCACHE_BUSY;
	} else {
		g_hash_table_add(bc->inflight, g_strdup(key));
		g_hash_table_insert(p->claimed, g_memdup2(&ek, sizeof(ek)), key);
		key = NULL;
		ret = IFS_BODYCACHE_CLAIMED;
	}
	g_mutex_unlock(&bc->lock);
	g_free(key);
	return ret;
}

int ifs_bodycache_pack_claim(struct ifs_bodycache_pack *p, uint32_t uid)
{
	return ifs_bodycache_pack_claim_piece(p, uid, IFS_BODYCACHE_WHOLE);
}

int ifs_bodycache_pack_begin_piece(struct ifs_bodycache_pack *p, uint32_t uid, uint32_t piece)
{
	uint64_t ek = entry_key(uid, piece);

	if (p->error != 0 || !g_hash_table_contains(p->claimed, &ek))
		return 1; /* not ours, stored already (a retried command), or the pack failed */
	/* (Re)start this member after the stored ones: a retry sends it again from its start. */
	p->cur_uid = uid;
	p->cur_piece = piece;
	p->cur_size = 0;
	if (ftruncate(p->fd, (off_t)p->end) < 0) {
		p->error = -errno;
		return p->error;
	}
	return 0;
}

int ifs_bodycache_pack_begin(struct ifs_bodycache_pack *p, uint32_t uid)
{
	return ifs_bodycache_pack_begin_piece(p, uid, IFS_BODYCACHE_WHOLE);
}

int ifs_bodycache_pack_write(struct ifs_bodycache_pack *p, const void *buf, size_t len)
{
	const char *c = buf;

	while (len > 0) {
		ssize_t n = pwrite(p->fd, c, len, (off_t)(p->end + p->cur_size));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			p->error = -errno;
			return p->error;
		}
		c += n;
		len -= (size_t)n;
		p->cur_size += (uint64_t)n;
	}
	return 0;
}

/* Lock held: release the claim of entry_key ek and wake whoever waits for it. */
static void pack_unclaim(struct ifs_bodycache_pack *p, uint64_t ek)
{
	char *key = g_hash_table_lookup(p->claimed, &ek);

	if (key == NULL)
		return;
	g_hash_table_remove(p->bc->inflight, key);
	g_hash_table_remove(p->claimed, &ek);
	g_cond_broadcast(&p->bc->done);
}

int ifs_bodycache_pack_end_piece(struct ifs_bodycache_pack *p, uint32_t uid, uint32_t piece)
{
	struct ifs_bodycache *bc = p->bc;
	struct pack_record rec = {uid, piece, p->end, p->cur_size};
	int ret = 0;

	if (uid == 0 || uid != p->cur_uid || piece != p->cur_piece || p->error != 0)
		return 0;
	g_mutex_lock(&bc->lock);
	/* Readable from now on, from the pack's temporary file: whoever waits goes on. */
	if (p->file->dir == NULL) {
		ret = -ESTALE;
	} else if (member_add(bc, p->file, uid, piece, p->end, p->cur_size)) {
		p->file->bytes += p->cur_size;
		bc->bytes += p->cur_size;
		g_array_append_val(p->records, rec);
		p->end += p->cur_size;
	}
	pack_unclaim(p, entry_key(uid, piece));
	evict(bc);
	g_mutex_unlock(&bc->lock);
	p->cur_uid = 0;
	return ret;
}

int ifs_bodycache_pack_end(struct ifs_bodycache_pack *p, uint32_t uid)
{
	return ifs_bodycache_pack_end_piece(p, uid, IFS_BODYCACHE_WHOLE);
}

/* Append the trailer, make the pack durable, give it its final name.  0 or -errno. */
static int pack_finish(struct ifs_bodycache_pack *p, char **final_r)
{
	GArray *recs = p->records;
	unsigned char footer[PACK_FOOTER_LEN];
	uint64_t data_len = GUINT64_TO_LE(p->end);
	uint32_t count = GUINT32_TO_LE(recs->len);
	struct pack_record *le = g_new(struct pack_record, recs->len);
	size_t tlen = recs->len * sizeof(struct pack_record);
	uint32_t first = G_MAXUINT32, last = 0;
	int ret = 0;

	for (guint i = 0; i < recs->len; i++) {
		const struct pack_record *r = &g_array_index(recs, struct pack_record, i);
		le[i].uid = GUINT32_TO_LE(r->uid);
		le[i].piece = GUINT32_TO_LE(r->piece);
		le[i].offset = GUINT64_TO_LE(r->offset);
		le[i].size = GUINT64_TO_LE(r->size);
		first = MIN(first, r->uid);
		last = MAX(last, r->uid);
	}
	memcpy(footer, &data_len, 8);
	memcpy(footer + 8, &count, 4);
	memcpy(footer + 12, PACK_MAGIC, 8);
	/* Durable before visible under its final name: after a power loss a pack is whole or
	 * absent (temporary files are removed at startup). */
	if (ftruncate(p->fd, (off_t)p->end) < 0 ||
	    pwrite(p->fd, le, tlen, (off_t)p->end) != (ssize_t)tlen ||
	    pwrite(p->fd, footer, sizeof(footer), (off_t)(p->end + tlen)) !=
	        (ssize_t)sizeof(footer) ||
	    fdatasync(p->fd) < 0)
		ret = errno != 0 ? -errno : -EIO;
	g_free(le);
	*final_r = g_strdup_printf("%u-%u.%08x%08x" PACK_SUFFIX, first, last, g_random_int(),
	                           g_random_int());
	return ret;
}

void ifs_bodycache_pack_close(struct ifs_bodycache_pack *p)
{
	struct ifs_bodycache *bc;
	struct cfile *f;
	char *final = NULL;
	int ret = 0;

	if (p == NULL)
		return;
	bc = p->bc;
	f = p->file;
	if (p->records->len > 0 && p->error == 0) {
		errno = 0;
		ret = pack_finish(p, &final);
	}
	g_mutex_lock(&bc->lock);
	/* what never arrived: its waiters fetch it themselves */
	while (g_hash_table_size(p->claimed) > 0) {
		GHashTableIter it;
		gpointer k;
		g_hash_table_iter_init(&it, p->claimed);
		g_hash_table_iter_next(&it, &k, NULL);
		pack_unclaim(p, *(const uint64_t *)k);
	}
	if (f->dir != NULL && final != NULL && ret == 0) {
		char *from = cfile_rel(f), *to = g_strdup_printf("%s/%s", f->dir->rel, final);
		if (renameat(bc->dirfd, from, bc->dirfd, to) < 0)
			ret = -errno;
		g_free(from);
		g_free(to);
	}
	f->writing = false;
	if (f->dir != NULL && final != NULL && ret == 0) {
		/* the trailer now counts too */
		g_free(f->name);
		f->name = final;
		final = NULL;
		f->bytes +=
		    (uint64_t)p->records->len * sizeof(struct pack_record) + PACK_FOOTER_LEN;
		bc->bytes +=
		    (uint64_t)p->records->len * sizeof(struct pack_record) + PACK_FOOTER_LEN;
		note_write_ok(bc);
		evict(bc);
	} else if (f->dir != NULL) {
		/* empty, failed or orphaned: its members were readable from the temporary file
		 * (readers holding it open keep their bytes) but are not kept */
		if (ret < 0 || p->error < 0)
			note_write_failure(bc, ret < 0 ? -ret : -p->error, "cannot store messages");
		cfile_remove(bc, f);
	} else {
		char *tmp = g_strdup_printf("%s/%s", p->rel, f->name);
		unlinkat(bc->dirfd, tmp, 0);
		g_free(tmp);
		cfile_free(f);
	}
	g_mutex_unlock(&bc->lock);
	close(p->fd);
	g_free(final);
	g_hash_table_destroy(p->claimed);
	g_array_unref(p->records);
	g_free(p->rel);
	g_free(p);
}

/* ---- maintenance ---- */

void ifs_bodycache_set_uidvalidity(struct ifs_bodycache *bc, const char *folder,
                                   uint32_t uidvalidity)
{
	char hash[FOLDER_HASH_LEN + 1];
	GHashTableIter it;
	gpointer v;
	GPtrArray *victims = g_ptr_array_new();

	folder_hash(folder, hash);
	g_mutex_lock(&bc->lock);
	g_hash_table_iter_init(&it, bc->dirs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct cdir *d = v;
		if (strcmp(d->hash, hash) == 0 && d->uidvalidity != uidvalidity)
			g_ptr_array_add(victims, d);
	}
	for (guint i = 0; i < victims->len; i++) {
		struct cdir *d = victims->pdata[i];
		GPtrArray *files = g_ptr_array_new();
		g_message("cache: UIDVALIDITY of a folder changed; discarding %u cached entries "
		          "(messages and pieces)",
		          g_hash_table_size(d->entries));
		/* every file of d, packs being written included, is in the LRU order */
		for (GList *l = bc->lru.head; l != NULL; l = l->next)
			if (((struct cfile *)l->data)->dir == d)
				g_ptr_array_add(files, l->data);
		for (guint k = 0; k < files->len; k++)
			cfile_remove(bc, files->pdata[k]);
		g_ptr_array_unref(files);
		/* In-flight writers of this directory find it gone at commit (-ESTALE); pack
		 * writers find their file orphaned. */
		remove_tree_at(bc->dirfd, d->rel);
		g_hash_table_remove(bc->dirs, d->rel);
	}
	/* Known from now on, so that its entries can be committed. */
	cdir_get(bc, hash, uidvalidity, true);
	g_mutex_unlock(&bc->lock);
	g_ptr_array_free(victims, TRUE);
}

void ifs_bodycache_usage(struct ifs_bodycache *bc, uint64_t *bytes_r, uint64_t *entries_r)
{
	g_mutex_lock(&bc->lock);
	*bytes_r = bc->bytes;
	*entries_r = bc->count;
	g_mutex_unlock(&bc->lock);
}

bool ifs_bodycache_failing(struct ifs_bodycache *bc)
{
	bool failing;

	g_mutex_lock(&bc->lock);
	failing = bypassing(bc);
	g_mutex_unlock(&bc->lock);
	return failing;
}

void ifs_bodycache_health(struct ifs_bodycache *bc, int *fail_err_r, uint64_t *failures_r,
                          uint64_t *unstored_r)
{
	g_mutex_lock(&bc->lock);
	*fail_err_r = bc->fail_err;
	*failures_r = bc->write_failures;
	*unstored_r = bc->unstored;
	g_mutex_unlock(&bc->lock);
}

void ifs_bodycache_tmpfile_failed(struct ifs_bodycache *bc, int err)
{
	g_mutex_lock(&bc->lock);
	note_write_failure(bc, err, "cannot write a decoded attachment");
	g_mutex_unlock(&bc->lock);
}

int ifs_bodycache_tmpfile(struct ifs_bodycache *bc)
{
	enum writer_where where;
	int fd;

	g_mutex_lock(&bc->lock);
	if (bypassing(bc)) {
		g_mutex_unlock(&bc->lock);
		return scratch_fd(W_TMPDIR, &where);
	}
	/* under the lock: a recreated directory replaces dirfd */
	fd = openat(bc->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
		char *name =
		    g_strdup_printf(TMP_PREFIX "spill-%08x%08x", g_random_int(), g_random_int());
		fd = openat(bc->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            0600);
		if (fd >= 0)
			unlinkat(bc->dirfd, name, 0);
		g_free(name);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	g_mutex_unlock(&bc->lock);
	return fd >= 0 ? fd : scratch_fd(W_TMPDIR, &where);
}
