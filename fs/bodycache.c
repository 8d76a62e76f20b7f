/* bodycache.c — persistent, bounded, single-flight cache of raw messages on disk (contract and
 * layout in bodycache.h). */
#include "bodycache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOLDER_HASH_LEN 32
#define TMP_PREFIX      ".tmp-"

/* One committed entry. */
struct entry {
	struct cdir *dir;
	uint32_t uid;
	uint64_t size;
	int64_t used; /* mtime, µs: LRU order at startup */
	GList link;   /* in bc->lru: head = most recently used */
};

/* One <F>/<UIDVALIDITY> directory. */
struct cdir {
	char *rel; /* "F/UIDVALIDITY" */
	char hash[FOLDER_HASH_LEN + 1];
	uint32_t uidvalidity;
	GHashTable *entries; /* uid -> struct entry* */
};

struct ifs_bodycache {
	char *dir;
	int dirfd;
	int lockfd;
	uint64_t max_bytes;

	GMutex lock;
	GCond done;           /* broadcast when a writer commits or aborts */
	GHashTable *dirs;     /* rel -> struct cdir* */
	GHashTable *inflight; /* "rel/uid" -> NULL: claimed by a writer */
	GQueue lru;
	uint64_t bytes, count;
};

struct ifs_bodycache_writer {
	struct ifs_bodycache *bc;
	char *rel;     /* "F/UIDVALIDITY" */
	char *key;     /* "F/UIDVALIDITY/UID" (inflight key) */
	char *tmp_rel; /* "F/UIDVALIDITY/.tmp-XXXXXX" */
	uint32_t uidvalidity, uid;
	int fd;
	uint64_t size;
};

static void folder_hash(const char *folder, char out[FOLDER_HASH_LEN + 1])
{
	char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, folder, -1);
	memcpy(out, h, FOLDER_HASH_LEN);
	out[FOLDER_HASH_LEN] = '\0';
	g_free(h);
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
	d->entries = g_hash_table_new(g_direct_hash, g_direct_equal);
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

static char *entry_rel(const struct entry *e)
{
	return g_strdup_printf("%s/%u.%" G_GUINT64_FORMAT, e->dir->rel, e->uid, e->size);
}

static void entry_add(struct ifs_bodycache *bc, struct cdir *d, uint32_t uid, uint64_t size,
                      int64_t used, bool front)
{
	struct entry *e = g_new0(struct entry, 1);
	e->dir = d;
	e->uid = uid;
	e->size = size;
	e->used = used;
	e->link.data = e;
	g_hash_table_insert(d->entries, GUINT_TO_POINTER(uid), e);
	if (front)
		g_queue_push_head_link(&bc->lru, &e->link);
	else
		g_queue_push_tail_link(&bc->lru, &e->link);
	bc->bytes += size;
	bc->count++;
}

/* Remove e from index and disk. */
static void entry_remove(struct ifs_bodycache *bc, struct entry *e)
{
	char *rel = entry_rel(e);
	if (unlinkat(bc->dirfd, rel, 0) < 0 && errno != ENOENT)
		g_debug("cache: cannot remove %s/%s: %s", bc->dir, rel, g_strerror(errno));
	g_free(rel);
	g_hash_table_remove(e->dir->entries, GUINT_TO_POINTER(e->uid));
	g_queue_unlink(&bc->lru, &e->link);
	bc->bytes -= e->size;
	bc->count--;
	g_free(e);
}

static void evict(struct ifs_bodycache *bc)
{
	while (bc->bytes > bc->max_bytes && bc->lru.tail != NULL)
		entry_remove(bc, bc->lru.tail->data);
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

struct scanned {
	struct cdir *dir;
	uint32_t uid;
	uint64_t size;
	int64_t used;
};

static int cmp_scanned(gconstpointer a, gconstpointer b)
{
	const struct scanned *x = a, *y = b;
	/* most recently used first */
	return x->used > y->used ? -1 : x->used < y->used;
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
		const char *dot = strchr(n, '.');
		uint64_t uid = 0, size = 0;
		struct stat st;
		char *uidpart;
		bool ok;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (g_str_has_prefix(n, TMP_PREFIX)) {
			/* a write that never finished (crash, kill): never an entry */
			unlinkat(dirfd(dir), n, 0);
			continue;
		}
		uidpart = dot != NULL ? g_strndup(n, dot - n) : NULL;
		ok = dot != NULL && all_digits(uidpart) && all_digits(dot + 1) &&
		     g_ascii_string_to_unsigned(uidpart, 10, 1, G_MAXUINT32, &uid, NULL) &&
		     g_ascii_string_to_unsigned(dot + 1, 10, 0, G_MAXUINT64, &size, NULL) &&
		     fstatat(dirfd(dir), n, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		     (uint64_t)st.st_size == size && st.st_uid == getuid();
		g_free(uidpart);
		if (!ok) {
			unlinkat(dirfd(dir), n, 0);
			continue;
		}
		struct scanned s = {d, (uint32_t)uid, size,
		                    (int64_t)st.st_mtim.tv_sec * 1000000 +
		                        st.st_mtim.tv_nsec / 1000};
		g_array_append_val(found, s);
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
	for (guint i = 0; i < found->len; i++) {
		struct scanned *s = &g_array_index(found, struct scanned, i);
		entry_add(bc, s->dir, s->uid, s->size, s->used, false);
	}
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

static void wipe_entries(struct ifs_bodycache *bc)
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
	wipe_entries(bc);
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
	bc->lockfd = openat(bc->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
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
	while (bc->lru.head != NULL) {
		struct entry *e = bc->lru.head->data;
		g_queue_unlink(&bc->lru, &e->link);
		g_free(e);
	}
	g_hash_table_destroy(bc->dirs);
	g_hash_table_destroy(bc->inflight);
	if (bc->lockfd >= 0)
		close(bc->lockfd); /* releases the flock */
	if (bc->dirfd >= 0)
		close(bc->dirfd);
	g_cond_clear(&bc->done);
	g_mutex_clear(&bc->lock);
	g_free(bc->dir);
	g_free(bc);
}

/* ---- lookups ---- */

static struct entry *find(struct ifs_bodycache *bc, const char *hash, uint32_t uidvalidity,
                          uint32_t uid)
{
	struct cdir *d = cdir_get(bc, hash, uidvalidity, false);
	return d != NULL ? g_hash_table_lookup(d->entries, GUINT_TO_POINTER(uid)) : NULL;
}

bool ifs_bodycache_contains(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                            uint32_t uid)
{
	char hash[FOLDER_HASH_LEN + 1];
	bool found;

	folder_hash(folder, hash);
	g_mutex_lock(&bc->lock);
	found = find(bc, hash, uidvalidity, uid) != NULL;
	g_mutex_unlock(&bc->lock);
	return found;
}

/* Open e (lock held); marks it used.  -errno when the file vanished (then forgotten). */
static int open_entry(struct ifs_bodycache *bc, struct entry *e, int *fd_r, uint64_t *size_r)
{
	char *rel = entry_rel(e);
	int fd = openat(bc->dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	g_free(rel);
	if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != e->size) {
		int err = fd < 0 ? -errno : -EIO;
		if (fd >= 0)
			close(fd);
		g_warning("cache entry %s/%s/%u vanished or changed; fetching it again", bc->dir,
		          e->dir->rel, e->uid);
		entry_remove(bc, e);
		return err;
	}
	/* LRU: most recently used first, remembered across mounts through the mtime. */
	futimens(fd, NULL);
	g_queue_unlink(&bc->lru, &e->link);
	g_queue_push_head_link(&bc->lru, &e->link);
	*fd_r = fd;
	*size_r = e->size;
	return 0;
}

int ifs_bodycache_get(struct ifs_bodycache *bc, const char *folder, uint32_t uidvalidity,
                      uint32_t uid, bool wait, int *fd_r, uint64_t *size_r,
                      struct ifs_bodycache_writer **w_r)
{
	char hash[FOLDER_HASH_LEN + 1];
	struct ifs_bodycache_writer *w;
	struct cdir *d;
	char *key;
	int ret;

	*w_r = NULL;
	folder_hash(folder, hash);
	key = g_strdup_printf("%s/%u/%u", hash, uidvalidity, uid);
	g_mutex_lock(&bc->lock);
	for (;;) {
		struct entry *e = find(bc, hash, uidvalidity, uid);
		if (e != NULL && open_entry(bc, e, fd_r, size_r) == 0) {
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
	w->fd = -1;
	if (mkdirat(bc->dirfd, hash, 0700) < 0 && errno != EEXIST)
		goto fail_errno;
	if (mkdirat(bc->dirfd, w->rel, 0700) < 0 && errno != EEXIST)
		goto fail_errno;
	for (int attempt = 0; attempt < 100 && w->fd < 0; attempt++) {
		g_free(w->tmp_rel);
		w->tmp_rel = g_strdup_printf("%s/" TMP_PREFIX "%08x%08x", w->rel, g_random_int(),
		                             g_random_int());
		/* 0600 whatever the umask: mail is private */
		w->fd = openat(bc->dirfd, w->tmp_rel,
		               O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (w->fd < 0 && errno != EEXIST)
			goto fail_errno;
	}
	if (w->fd < 0) {
		errno = EEXIST;
		goto fail_errno;
	}
	w->key = key;
	g_hash_table_add(bc->inflight, g_strdup(key));
	g_mutex_unlock(&bc->lock);
	*w_r = w;
	return IFS_BODYCACHE_CLAIMED;
fail_errno:
	ret = -errno;
	g_mutex_unlock(&bc->lock);
	g_warning("cache: cannot create an entry in %s/%s: %s", bc->dir, w->rel, g_strerror(-ret));
	g_free(w->rel);
	g_free(w->tmp_rel);
	g_free(w);
	g_free(key);
	return ret;
}

/* ---- writers ---- */

int ifs_bodycache_writer_write(struct ifs_bodycache_writer *w, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
		w->size += (uint64_t)n;
	}
	return 0;
}

int ifs_bodycache_writer_rewind(struct ifs_bodycache_writer *w)
{
	w->size = 0;
	if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
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

int ifs_bodycache_writer_commit(struct ifs_bodycache_writer *w, int *fd_r, uint64_t *size_r)
{
	struct ifs_bodycache *bc = w->bc;
	char *final = g_strdup_printf("%s/%u.%" G_GUINT64_FORMAT, w->rel, w->uid, w->size);
	char hash[FOLDER_HASH_LEN + 1];
	struct cdir *d;
	int ret = 0, rfd;

	/* Durable before visible: after a power loss an entry is whole or absent. */
	if (fdatasync(w->fd) < 0) {
		ret = -errno;
		goto fail;
	}
	rfd = openat(bc->dirfd, w->tmp_rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (rfd < 0) {
		ret = -errno;
		goto fail;
	}
	memcpy(hash, w->rel, FOLDER_HASH_LEN);
	hash[FOLDER_HASH_LEN] = '\0';
	g_mutex_lock(&bc->lock);
	/* The folder's UIDVALIDITY may have changed while we fetched: then drop it. */
	d = cdir_get(bc, hash, w->uidvalidity, false);
	if (d == NULL || renameat(bc->dirfd, w->tmp_rel, bc->dirfd, final) < 0) {
		ret = d == NULL ? -ESTALE : -errno;
		g_mutex_unlock(&bc->lock);
		close(rfd);
		goto fail;
	}
	if (g_hash_table_lookup(d->entries, GUINT_TO_POINTER(w->uid)) == NULL)
		entry_add(bc, d, w->uid, w->size, g_get_real_time(), true);
	writer_finish(w);
	evict(bc);
	g_mutex_unlock(&bc->lock);
	*fd_r = rfd;
	*size_r = w->size;
	g_free(final);
	writer_free(w);
	return 0;
fail:
	if (ret != -ESTALE)
		g_warning("cache: cannot store %s/%s: %s", bc->dir, final, g_strerror(-ret));
	g_free(final);
	ifs_bodycache_writer_abort(w);
	return ret;
}

void ifs_bodycache_writer_abort(struct ifs_bodycache_writer *w)
{
	struct ifs_bodycache *bc;

	if (w == NULL)
		return;
	bc = w->bc;
	unlinkat(bc->dirfd, w->tmp_rel, 0);
	g_mutex_lock(&bc->lock);
	writer_finish(w);
	g_mutex_unlock(&bc->lock);
	writer_free(w);
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
		GList *es = g_hash_table_get_values(d->entries);
		g_message("cache: UIDVALIDITY of a folder changed; discarding %u cached messages",
		          g_hash_table_size(d->entries));
		for (GList *l = es; l != NULL; l = l->next)
			entry_remove(bc, l->data);
		g_list_free(es);
		/* In-flight writers of this directory find it gone at commit (-ESTALE). */
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

int ifs_bodycache_tmpfile(struct ifs_bodycache *bc)
{
	int fd = openat(bc->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	for (int attempt = 0; attempt < 100; attempt++) {
		char *name =
		    g_strdup_printf(TMP_PREFIX "spill-%08x%08x", g_random_int(), g_random_int());
		fd = openat(bc->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            0600);
		if (fd >= 0)
			unlinkat(bc->dirfd, name, 0);
		g_free(name);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	return fd >= 0 ? fd : -errno;
}
