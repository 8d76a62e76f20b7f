/* ops.c — the FUSE low-level operations of imapfs.
 *
 * Folder directories come from tree.c; everything inside a message directory is served from one
 * fetch of the message kept in the message cache (msgcache.c).  What may be cached by the kernel
 * and for how long follows from what can change:
 *   - nothing is opened: the first OPEN and the first OPENDIR are answered ENOSYS when the
 *     kernel supports that (FUSE_CAP_NO_OPEN_SUPPORT / _NO_OPENDIR_SUPPORT), after which it
 *     sends no OPEN/RELEASE/OPENDIR/RELEASEDIR, keeps every file's page cache and caches every
 *     directory listing; readdir then works without a handle (one per request) — so a warm
 *     `grep -r` sends (almost) no request at all;
 *   - a message directory and its files never change for a (folder, UIDVALIDITY, UID), which is
 *     what their inode numbers encode: long entry/attribute timeouts; its names are computed at
 *     the first readdir, which the kernel then keeps; and when a walk reads one file of each
 *     message, that file of the next message is pushed into the page cache as its directory
 *     is listed (push-ahead, below), so a cold walk's reads cost no request either;
 *   - folder directories (their names and listings) change with the server: entries live
 *     `refresh` seconds; a folder's attributes live until its listing is out of date, and the
 *     kernel asks for them (GETATTR, auto_inval_data) when a readdir starts after that: GETATTR
 *     (and LOOKUP) refresh the listing (one round trip when nothing changed, see remote.h), and
 *     the folder's mtime changes whenever what it shows changed, so the kernel drops the
 *     listing it cached (tree.c).  Readdir offsets of message directories name their UIDs, so a
 *     pass that spans a refresh neither repeats nor skips one.  (Kernels that need OPENDIR: a
 *     handle per open directory, refreshed at opendir, keep_cache while unchanged.);
 *   - flags change: attributes live `refresh` seconds, and a listing refresh that sees new
 *     flags tells the kernel to drop that `flags` file's page cache (tree.c).  Without
 *     no-open support, `flags` is read with direct_io from a snapshot taken at open;
 *   - message.eml before the first fetch has only RFC822.SIZE for a size, which a server can
 *     get wrong: its attributes get timeout 0 until the message has been fetched (a 0 is not
 *     believed at all: the message is fetched), and a fetch that finds another length tells
 *     the kernel to drop what it had (with OPEN; without, the short READ reply does it).
 * Anything that would change the filesystem fails with EROFS.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "ifs.h"
#include "loader.h"
#include "message.h"
#include "msgdir.h"
#include "names.h"
#include "remote.h"
#include "search.h"

/* Who the operation this thread is running serves (loader.h: ifs_cur_requester) is set with
 * the count at the start of every operation. */
#define COUNT(req, fs, kind)                                                                   \
	do {                                                                                   \
		ifs_cur_requester = (uint64_t)fuse_req_ctx(req)->pid;                              \
		__atomic_fetch_add(&(fs)->requests[kind], 1, __ATOMIC_RELAXED);                \
	} while (0)
#define STATS_XATTR "user.imapfs.stats"

#define MSG_ENTRY_TIMEOUT 3600.0
#define MSG_ATTR_TIMEOUT 86400.0

static struct ifs *ifs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- messages ---- */

/* A message inode's message, resolved once for the request (loader.h). */
static int msg_ref(struct ifs *fs, uint64_t ino, struct ifs_msg_ref *ref)
{
	return ifs_msg_ref_init(fs, ifs_ino_epoch(ino), ifs_ino_uid(ino), ref);
}

/* ---- attributes ---- */

static void fill_stat(const struct ifs *fs, struct stat *st, uint64_t ino, bool dir,
                      uint64_t size, int64_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = dir ? S_IFDIR | fs->dir_mode : S_IFREG | fs->file_mode; /* owner.h */
	/* 1 = "unknown" for directories: find/fts must not infer "no subdirectories". */
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_mtim.tv_sec = mtime;
	st->st_atim.tv_sec = mtime;
	st->st_ctim.tv_sec = mtime;
}

/* The files a message directory shows from the listing, not from the message: `flags`, and
 * where the server says so `labels` (Gmail's X-GM-LABELS) and `thread` (X-GM-THRID or
 * THREADID).  Flags and labels change while the message does not, so each open serves one
 * snapshot, without the page cache. */
static bool is_listing_slot(unsigned slot)
{
	return slot == IFS_SLOT_FLAGS || slot == IFS_SLOT_LABELS || slot == IFS_SLOT_THREAD;
}

/* The text of listing slot of info (from ifs_tree_msg_info with want_flags): new, or NULL
 * when this message has no such file. */
static char *listing_text(const struct ifs_msg_info *info, unsigned slot)
{
	const struct ifs_msg_ident *id = info->ident;

	if (slot == IFS_SLOT_FLAGS)
		return g_strdup(info->flags);
	if (slot == IFS_SLOT_LABELS)
		return id != NULL ? g_strdup(id->labels) : NULL;
	if (slot == IFS_SLOT_THREAD && id != NULL && id->thread_id != NULL)
		return g_strconcat(id->thread_id, "\n", NULL);
	return NULL;
}

/* The listing slot's text as a snapshot (new GBytes): 0, or -ENOENT when the message (or the
 * file) is not there. */
static int listing_snapshot(struct ifs *fs, uint64_t ino, GBytes **snap_r)
{
	struct ifs_msg_info info;
	char *text;
	int ret = ifs_tree_msg_info(fs->tree, ifs_ino_epoch(ino), ifs_ino_uid(ino), true, &info);

	if (ret < 0)
		return ret;
	text = listing_text(&info, ifs_ino_slot(ino));
	ifs_msg_info_clear(&info);
	if (text == NULL)
		return -ENOENT;
	*snap_r = g_bytes_new_take(text, strlen(text));
	return 0;
}

/* Attributes of any inode under a message directory (slot in ino).  Each file asks only the
 * piece that knows its size (msgdir.h); never a fetch for the message directory itself or
 * the listing files (flags, labels, thread).  message.eml reports the size checked against the
 * bytes (OUTLINE) or fetched, never RFC822.SIZE as the server claims it: a hostile or broken server
 * can report any size, and the kernel cuts reads at st_size. */
static int msg_stat(struct ifs *fs, uint64_t ino, struct stat *st, double *timeout_r)
{
	uint32_t epoch = ifs_ino_epoch(ino), uid = ifs_ino_uid(ino);
	unsigned slot = ifs_ino_slot(ino);
	struct ifs_msg_info info;
	struct ifs_msg_ref ref;
	uint64_t size = 0;
	int ret;

	ret = ifs_tree_msg_info(fs->tree, epoch, uid, is_listing_slot(slot), &info);
	if (ret < 0)
		return ret;
	*timeout_r = MSG_ATTR_TIMEOUT;
	switch (slot) {
	case IFS_SLOT_MSGDIR:
		fill_stat(fs, st, ino, true, 0, info.internaldate);
		break;
	case IFS_SLOT_FLAGS:
	case IFS_SLOT_LABELS:
	case IFS_SLOT_THREAD: {
		char *text = listing_text(&info, slot);
		if (text == NULL) {
			ret = -ENOENT;
			break;
		}
		fill_stat(fs, st, ino, false, strlen(text), info.internaldate);
		g_free(text);
		*timeout_r = fs->folder_timeout;
		break;
	}
	case IFS_SLOT_ATTDIR: {
		GArray *entries = NULL;
		ret = msg_ref(fs, ino, &ref);
		if (ret == 0)
			ret = ifs_msgdir_list(fs, &ref, true, &entries);
		ifs_msgdir_entries_free(entries);
		ifs_msg_ref_clear(&ref);
		if (ret == 0)
			fill_stat(fs, st, ino, true, 0, info.internaldate);
		break;
	}
	default:
		ret = msg_ref(fs, ino, &ref);
		if (ret == 0)
			ret = ifs_msgdir_size(fs, &ref, slot, &size);
		ifs_msg_ref_clear(&ref);
		if (ret == 0)
			fill_stat(fs, st, ino, false, size, info.internaldate);
		break;
	}
	ifs_msg_info_clear(&info);
	return ret;
}

/* A folder or message directory as the tree describes it. */
static void fill_node_stat(const struct ifs *fs, struct stat *st, const struct ifs_node_info *ni)
{
	fill_stat(fs, st, ni->ino, true, 0, ni->mtime);
	st->st_mtim.tv_nsec = st->st_atim.tv_nsec = st->st_ctim.tv_nsec = ni->mtime_nsec;
}

/* How long the kernel may keep a folder's attributes.  Without OPENDIR, a folder's GETATTR is
 * where its listing gets refreshed: the kernel asks for it (auto_inval_data) when a readdir
 * starts and the attributes are older than `refresh`, and drops its cached listing when the
 * mtime it gets back differs.  So they last until the listing is out of date: the next readdir
 * then asks for them, and so refreshes the listing. */
static double folder_attr_timeout(const struct ifs *fs, const struct ifs_node_info *ni)
{
	return fs->no_opendir ? ni->fresh_for : fs->folder_timeout;
}

static int folder_stat(struct ifs *fs, uint64_t ino, struct stat *st, double *timeout_r)
{
	struct ifs_node_info ni;
	int ret = ifs_tree_folder_info(fs->tree, ino, fs->no_opendir, &ni);
	if (ret == 0) {
		fill_node_stat(fs, st, &ni);
		*timeout_r = folder_attr_timeout(fs, &ni);
	}
	return ret;
}

/* A search directory (search.h): like a folder, its attributes live until its result is out
 * of date, and asking for them then runs the search again. */
static int search_stat(struct ifs *fs, uint64_t ino, struct stat *st, double *timeout_r)
{
	struct ifs_node_info ni;
	int ret = ifs_search_info(fs->search, ino, fs->no_opendir, &ni);
	if (ret == 0) {
		fill_node_stat(fs, st, &ni);
		*timeout_r = folder_attr_timeout(fs, &ni);
	}
	return ret;
}

static int any_stat(struct ifs *fs, uint64_t ino, struct stat *st, double *timeout_r)
{
	if (ifs_ino_is_msg(ino))
		return msg_stat(fs, ino, st, timeout_r);
	if (ifs_ino_is_search(ino))
		return search_stat(fs, ino, st, timeout_r);
	return folder_stat(fs, ino, st, timeout_r);
}

/* Kernel lookup counts of directories: folders live in tree.c, search directories in
 * search.c; message inodes are computed and need none. */
static void node_ref(struct ifs *fs, uint64_t ino)
{
	if (ifs_ino_is_search(ino))
		ifs_search_ref(fs->search, ino);
	else
		ifs_tree_ref(fs->tree, ino);
}

static void node_forget(struct ifs *fs, uint64_t ino, uint64_t n)
{
	if (ifs_ino_is_search(ino))
		ifs_search_forget(fs->search, ino, n);
	else
		ifs_tree_forget(fs->tree, ino, n);
}

/* ---- lookup / forget / getattr ---- */

static void reply_negative(fuse_req_t req, double timeout)
{
	/* ino 0 with a timeout: the kernel remembers that the name does not exist. */
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.entry_timeout = timeout;
	fuse_reply_entry(req, &e);
}

/* Which slot `name` is in a message directory; -1 when it can never exist there. */
static int msgdir_slot_for(const char *name)
{
	if (strcmp(name, "message.eml") == 0)
		return IFS_SLOT_EML;
	if (strcmp(name, "flags") == 0)
		return IFS_SLOT_FLAGS;
	if (strcmp(name, "labels") == 0)
		return IFS_SLOT_LABELS;
	if (strcmp(name, "thread") == 0)
		return IFS_SLOT_THREAD;
	if (strcmp(name, "attachments") == 0)
		return IFS_SLOT_ATTDIR;
	for (int v = 0; v < MIME_VIEW_COUNT; v++)
		if (strcmp(name, mime_view_name((enum mime_view)v)) == 0)
			return IFS_SLOT_VIEW0 + v;
	return -1;
}

static void lookup_in_msg(fuse_req_t req, struct ifs *fs, fuse_ino_t parent, const char *name)
{
	unsigned pslot = ifs_ino_slot(parent);
	uint64_t base = parent - pslot;
	struct fuse_entry_param e;
	int slot = -1;
	int ret;

	if (pslot == IFS_SLOT_MSGDIR) {
		slot = msgdir_slot_for(name);
	} else if (pslot == IFS_SLOT_ATTDIR) {
		struct ifs_msg_ref ref;
		unsigned att = 0;
		ret = msg_ref(fs, parent, &ref);
		if (ret == 0)
			ret = ifs_msgdir_attachment_slot(fs, &ref, name, &att);
		ifs_msg_ref_clear(&ref);
		if (ret < 0 && ret != -ENOENT) {
			fuse_reply_err(req, -ret);
			return;
		}
		if (ret == 0)
			slot = (int)att;
	} else {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (slot < 0) {
		reply_negative(req, MSG_ENTRY_TIMEOUT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = base + (unsigned)slot;
	ret = msg_stat(fs, e.ino, &e.attr, &e.attr_timeout);
	if (ret == -ENOENT && slot != IFS_SLOT_EML && slot != IFS_SLOT_FLAGS) {
		struct ifs_msg_info info;
		bool listed = ifs_tree_msg_info(fs->tree, ifs_ino_epoch(parent), ifs_ino_uid(parent),
		                                false, &info) == 0;
		ifs_msg_info_clear(&info);
		if (listed) {
			/* The message exists but has no such view: immutable, so cache the absence. */
			reply_negative(req, MSG_ENTRY_TIMEOUT);
			return;
		}
	}
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	e.entry_timeout = MSG_ENTRY_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void ifs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ifs *fs = ifs_of(req);
	struct ifs_node_info ni;
	struct fuse_entry_param e;
	int ret;

	COUNT(req, fs, IFS_REQ_LOOKUP);
	if (ifs_ino_is_msg(parent)) {
		lookup_in_msg(req, fs, parent, name);
		return;
	}
	/* `.search` is found by LOOKUP but never listed (search.h) */
	if (ifs_ino_is_search(parent) || strcmp(name, IFS_SEARCH_DIR) == 0)
		ret = ifs_search_lookup(fs->search, parent, name, &ni);
	else
		ret = ifs_tree_lookup(fs->tree, parent, name, fs->no_opendir, &ni);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ni.ino;
	fill_node_stat(fs, &e.attr, &ni);
	if (ni.is_msgdir) {
		e.entry_timeout = MSG_ENTRY_TIMEOUT;
		e.attr_timeout = MSG_ATTR_TIMEOUT;
	} else {
		e.entry_timeout = fs->folder_timeout;
		e.attr_timeout = folder_attr_timeout(fs, &ni);
	}
	if (fuse_reply_entry(req, &e) != 0 && !ni.is_msgdir)
		node_forget(fs, ni.ino, 1); /* the kernel never got it */
}

static void ifs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	COUNT(req, ifs_of(req), IFS_REQ_FORGET);
	node_forget(ifs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void ifs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct ifs *fs = ifs_of(req);
	COUNT(req, fs, IFS_REQ_FORGET);
	for (size_t i = 0; i < count; i++)
		node_forget(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ifs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	double timeout = 0;
	int ret;

	COUNT(req, ifs_of(req), IFS_REQ_GETATTR);
	ret = any_stat(ifs_of(req), ino, &st, &timeout);

	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, timeout);
}

/* ---- directories ---- */

enum dir_kind { DIR_FOLDER, DIR_MSG };

struct dir_handle {
	enum dir_kind kind;
	fuse_ino_t ino, parent;
	struct ifs_folder_dir *folder;      /* DIR_FOLDER */
	GMutex lock;                        /* DIR_MSG: guards entries */
	GArray *entries;                    /* DIR_MSG: struct ifs_msgdir_entry in listing order,
	                                     * made at the first readdir (msgdir.h) */
	struct ifs_msg_info info;           /* DIR_MSG: times, flags */
};

static void dir_handle_free(struct ifs *fs, struct dir_handle *h)
{
	ifs_folder_dir_free(h->folder);
	ifs_msgdir_entries_free(h->entries);
	ifs_msg_info_clear(&h->info);
	g_mutex_clear(&h->lock);
	g_free(h);
}

/* Which names a message directory has depends on the message: its PARTS (first readdir). */
static int msgdir_load(struct ifs *fs, struct dir_handle *h)
{
	struct ifs_msg_ref ref;
	int ret;

	if (h->entries != NULL)
		return 0;
	ret = msg_ref(fs, h->ino, &ref);
	if (ret == 0)
		ret = ifs_msgdir_list(fs, &ref, ifs_ino_slot(h->ino) == IFS_SLOT_ATTDIR, &h->entries);
	ifs_msg_ref_clear(&ref);
	return ret;
}

/* A directory handle for ino (*h_r new, dir_handle_free), and whether the kernel may keep what
 * it has cached of the directory's listing. */
static int dir_handle_new(struct ifs *fs, fuse_ino_t ino, struct dir_handle **h_r,
                          bool *keep_r)
{
	struct dir_handle *h = g_new0(struct dir_handle, 1);
	int ret;

	g_mutex_init(&h->lock);
	h->ino = ino;
	*keep_r = true;
	if (ifs_ino_is_search(ino)) {
		h->kind = DIR_FOLDER;
		*keep_r = false; /* results change: with OPENDIR, read them afresh at each open */
		ret = ifs_search_open_dir(fs->search, ino, &h->folder);
		if (ret < 0)
			goto fail;
		h->parent = ifs_folder_dir_parent(h->folder);
	} else if (!ifs_ino_is_msg(ino)) {
		h->kind = DIR_FOLDER;
		ret = ifs_tree_open_folder(fs->tree, ino, &h->folder, keep_r);
		if (ret < 0)
			goto fail;
		h->parent = ifs_folder_dir_parent(h->folder);
	} else {
		unsigned slot = ifs_ino_slot(ino);
		uint64_t base = ino - slot;
		h->kind = DIR_MSG;
		if (slot != IFS_SLOT_MSGDIR && slot != IFS_SLOT_ATTDIR) {
			ret = -ENOTDIR;
			goto fail;
		}
		ret = ifs_tree_msg_info(fs->tree, ifs_ino_epoch(ino), ifs_ino_uid(ino), true,
		                        &h->info);
		if (ret < 0)
			goto fail;
		/* the folder: the kernel knows it, the name is ".." */
		h->parent = slot == IFS_SLOT_MSGDIR ? 0 : base;
	}
	*h_r = h;
	return 0;
fail:
	dir_handle_free(fs, h);
	return ret;
}

/* Only when the kernel cannot do without OPENDIR (see ifs_init): then each open directory has
 * a handle, and the kernel may keep the listing it read last time while it is still right
 * (message directories: always, they never change). */
static void ifs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ifs *fs = ifs_of(req);
	struct dir_handle *h = NULL;
	bool keep = false;
	int ret;

	COUNT(req, fs, IFS_REQ_OPENDIR);
	if (fs->no_opendir) {
		/* From now on the kernel sends no OPENDIR/RELEASEDIR and caches every listing
		 * (FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR), checking folders' mtimes. */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ret = dir_handle_new(fs, ino, &h, &keep);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = keep;
	fi->fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(req, fi) != 0)
		dir_handle_free(fs, h);
}

/* Entry i of a message or attachments directory (after "." and "..").  A file whose size
 * the pieces listed so far do not know goes out without attributes (ino 0: the kernel LOOKUPs
 * it when it is used), so that `ls` never fetches a body to list a name. */
static void msg_dir_entry(struct ifs *fs, const struct dir_handle *h, size_t i,
                          struct fuse_entry_param *e, const char **name_r)
{
	const struct ifs_msgdir_entry *me = &g_array_index(h->entries, struct ifs_msgdir_entry, i);
	uint64_t base = h->ino - ifs_ino_slot(h->ino);
	int64_t t = h->info.internaldate;

	memset(e, 0, sizeof(*e));
	e->ino = base + me->slot;
	e->entry_timeout = MSG_ENTRY_TIMEOUT;
	e->attr_timeout = MSG_ATTR_TIMEOUT;
	*name_r = me->name;
	if (me->slot == IFS_SLOT_ATTDIR) {
		fill_stat(fs, &e->attr, e->ino, true, 0, t);
	} else if (is_listing_slot(me->slot)) {
		char *text = listing_text(&h->info, me->slot);
		fill_stat(fs, &e->attr, e->ino, false, text != NULL ? strlen(text) : 0, t);
		g_free(text);
		e->attr_timeout = fs->folder_timeout;
	} else if (me->size != IFS_SIZE_UNKNOWN) {
		fill_stat(fs, &e->attr, e->ino, false, me->size, t);
	} else {
		fill_stat(fs, &e->attr, e->ino, false, 0, t);
		e->ino = 0; /* readdirplus: no attributes for this one (d_ino is st_ino) */
	}
}

/* Push-ahead.  A walk (grep -r, find -exec cat) lists each message directory and then reads the
 * same file of it (`body`, say): three requests per message (READDIRPLUS, the READDIR that finds
 * the end, READ), each a round trip between the reader and us, and on a cold walk over 5,000
 * messages those round trips were most of the time.  The end-of-listing READDIR of a message
 * directory is the moment the kernel knows its files (the READDIRPLUS before it created their
 * inodes) and the reader has not opened any yet: if a reader read file slot S of the message
 * it read last, S of this message is stored into the kernel's page cache right then
 * (fuse_lowlevel_notify_store, synchronously, before the READDIR is answered), and the read
 * that follows is served by the kernel without asking us.  Only files already in memory (the
 * listing has just loaded the message) and up to PUSH_MAX_BYTES are pushed; the kernel may
 * reclaim the pages like any others.  The store waits for pages that a concurrent READ of the
 * same file holds locked, which another worker answers: never done with a single-threaded
 * loop (fs->push_se is NULL then), and at most PUSH_MAX_AT_ONCE at a time, so that libfuse's
 * loop (up to 10 workers) always has one free for such a READ. */
#define PUSH_MAX_BYTES (1024 * 1024)
#define PUSH_MAX_AT_ONCE 4

static bool pushable_slot(unsigned slot)
{
	return slot >= IFS_SLOT_EML && slot < IFS_SLOT_VIEW0 + MIME_VIEW_COUNT;
}

static void push_ahead(struct ifs *fs, const struct dir_handle *h)
{
	unsigned slot = __atomic_load_n(&fs->push_slot, __ATOMIC_RELAXED);
	const struct ifs_cached_msg *m = NULL;
	const struct ifs_blob *b = NULL;
	struct ifs_msg_ref ref;
	struct fuse_bufvec bufv;
	int ret;

	if (fs->push_se == NULL || !pushable_slot(slot))
		return;
	if (msg_ref(fs, h->ino, &ref) < 0) {
		ifs_msg_ref_clear(&ref);
		return;
	}
	/* A decoded view is what the reader reads next: its piece is fetched now if need be (the
	 * READ would fetch it anyway).  message.eml only when its whole message is here. */
	if (slot == IFS_SLOT_EML)
		ret = ifs_msgdir_bytes_if_held(fs, &ref, slot, &m, &b);
	else
		ret = ifs_msgdir_bytes(fs, &ref, slot, &m, &b);
	ifs_msg_ref_clear(&ref);
	if (ret < 0)
		return;
	if (b->mem == NULL || g_bytes_get_size(b->mem) == 0 ||
	    g_bytes_get_size(b->mem) > PUSH_MAX_BYTES)
		goto out;
	if (__atomic_fetch_add(&fs->pushing, 1, __ATOMIC_ACQUIRE) >= PUSH_MAX_AT_ONCE) {
		__atomic_fetch_sub(&fs->pushing, 1, __ATOMIC_RELEASE);
		goto out; /* the reader's READ will fetch it from us as usual */
	}
	bufv = FUSE_BUFVEC_INIT(g_bytes_get_size(b->mem));
	bufv.buf[0].mem = (void *)g_bytes_get_data(b->mem, NULL);
	ret = fuse_lowlevel_notify_store(fs->push_se, h->ino + slot, 0, &bufv, 0);
	__atomic_fetch_sub(&fs->pushing, 1, __ATOMIC_RELEASE);
	if (ret == 0)
		__atomic_fetch_add(&fs->pushed, 1, __ATOMIC_RELAXED);
	else if (ret != -ENOENT) /* ENOENT: the kernel has no inode for it (any more) */
		g_debug("push of inode %llu failed: %s", (unsigned long long)(h->ino + slot),
		        g_strerror(-ret));
out:
	ifs_msgcache_put(fs->cache, m);
}

/* Where a readdir at offset off starts (entries "." and ".." are 0 and 1). */
static size_t first_entry(const struct dir_handle *h, off_t off)
{
	if (off <= 2)
		return off < 0 ? 0 : (size_t)off;
	if (h->kind == DIR_FOLDER)
		return 2 + ifs_folder_dir_index_at(h->folder, (uint64_t)off);
	return (size_t)off; /* a message directory never changes: positions are stable */
}

/* The offset after entry i. */
static off_t next_offset(const struct dir_handle *h, size_t i)
{
	if (i < 2 || h->kind == DIR_MSG)
		return (off_t)i + 1;
	return (off_t)ifs_folder_dir_next_off(h->folder, i - 2);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
	struct ifs *fs = ifs_of(req);
	struct dir_handle *h = (struct dir_handle *)(uintptr_t)fi->fh;
	bool own = h == NULL; /* no OPENDIR (ifs_init): a handle for this request only */
	char *buf;
	size_t used = 0;
	size_t count;

	COUNT(req, fs, IFS_REQ_READDIR);
	if (own) {
		bool keep;
		int ret = dir_handle_new(fs, ino, &h, &keep);
		if (ret < 0) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	if (h->kind == DIR_MSG) {
		int ret;
		g_mutex_lock(&h->lock);
		ret = msgdir_load(fs, h);
		g_mutex_unlock(&h->lock);
		if (ret < 0) {
			if (own)
				dir_handle_free(fs, h);
			fuse_reply_err(req, -ret);
			return;
		}
	}
	count = h->kind == DIR_FOLDER ? ifs_folder_dir_count(h->folder) : h->entries->len;
	buf = g_malloc(size);

	for (size_t i = first_entry(h, off); i < count + 2; i++) {
		struct fuse_entry_param e;
		const char *name;
		char numbuf[16];
		bool counted = false;
		size_t len;

		memset(&e, 0, sizeof(e));
		if (i < 2) {
			name = i == 0 ? "." : "..";
			e.ino = i == 0 ? h->ino : (h->parent != 0 ? h->parent : IFS_ROOT_INO);
			fill_stat(fs, &e.attr, e.ino, true, 0, 0);
		} else if (h->kind == DIR_FOLDER) {
			struct ifs_node_info ni;
			ifs_folder_dir_entry(h->folder, i - 2, numbuf, &name, &ni);
			e.ino = ni.ino;
			fill_node_stat(fs, &e.attr, &ni);
			e.entry_timeout = ni.is_msgdir ? MSG_ENTRY_TIMEOUT : fs->folder_timeout;
			e.attr_timeout =
			    ni.is_msgdir ? MSG_ATTR_TIMEOUT : folder_attr_timeout(fs, &ni);
			counted = !ni.is_msgdir;
		} else {
			msg_dir_entry(fs, h, i - 2, &e, &name);
		}
		if (plus) {
			len = fuse_add_direntry_plus(req, buf + used, size - used, name, &e,
			                             next_offset(h, i));
		} else {
			len = fuse_add_direntry(req, buf + used, size - used, name, &e.attr,
			                        next_offset(h, i));
		}
		if (len > size - used)
			break;
		used += len;
		/* readdirplus hands the kernel a lookup of every entry but "." and "..". */
		if (plus && counted)
			node_ref(fs, e.ino);
	}
	if (h->kind == DIR_MSG && ifs_ino_slot(h->ino) == IFS_SLOT_MSGDIR && off >= 0 &&
	    (size_t)off >= count + 2)
		push_ahead(fs, h);
	fuse_reply_buf(req, buf, used);
	g_free(buf);
	if (own)
		dir_handle_free(fs, h);
}

static void ifs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void ifs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                            struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void ifs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	COUNT(req, ifs_of(req), IFS_REQ_RELEASEDIR);
	dir_handle_free(ifs_of(req), (struct dir_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- files ---- */

static void ifs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ifs *fs = ifs_of(req);
	unsigned slot = ifs_ino_slot(ino);
	int ret;

	COUNT(req, fs, IFS_REQ_OPEN);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (!ifs_ino_is_msg(ino) || slot == IFS_SLOT_MSGDIR || slot == IFS_SLOT_ATTDIR) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (fs->no_open) {
		/* Once answered ENOSYS, the kernel opens files without asking (the mount is
		 * read-only, so a write open never gets this far) and keeps their page cache. */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (is_listing_slot(slot)) {
		GBytes *snap;
		ret = listing_snapshot(fs, ino, &snap);
		if (ret < 0) {
			fuse_reply_err(req, -ret);
			return;
		}
		/* Flags and labels change: one consistent snapshot per open, no page cache. */
		fi->fh = (uint64_t)(uintptr_t)snap;
		fi->direct_io = 1;
		if (fuse_reply_open(req, fi) != 0)
			g_bytes_unref((GBytes *)(uintptr_t)fi->fh);
		return;
	}
	{
		struct ifs_msg_ref ref;
		uint64_t size;
		ret = msg_ref(fs, ino, &ref);
		if (ret == 0)
			ret = ifs_msgdir_size(fs, &ref, slot, &size);
		ifs_msg_ref_clear(&ref);
	}
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = 0;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void reply_slice(fuse_req_t req, GBytes *b, size_t size, off_t off)
{
	size_t len;
	const char *data = g_bytes_get_data(b, &len);

	if (off < 0 || (size_t)off >= len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	fuse_reply_buf(req, data + off, size);
}

static void reply_blob(fuse_req_t req, const struct ifs_blob *b, size_t size, off_t off)
{
	char *buf = b->mem != NULL ? NULL : g_malloc(size > 0 ? size : 1);
	const char *data = NULL;
	ssize_t n = off < 0 ? 0 : ifs_blob_read(b, (uint64_t)off, size, buf, &data);

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, data, (size_t)n);
	g_free(buf);
}

static void ifs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	struct ifs *fs = ifs_of(req);
	unsigned slot = ifs_ino_slot(ino);
	const struct ifs_cached_msg *m;
	const struct ifs_blob *b;
	int ret;

	COUNT(req, fs, IFS_REQ_READ);
	if (is_listing_slot(slot)) {
		GBytes *snap;
		if (fi->fh != 0) {
			/* Our own reference: once the reply is written the reader may close the file,
			 * and release (on another thread) drops the handle's reference. */
			snap = g_bytes_ref((GBytes *)(uintptr_t)fi->fh);
		} else {
			/* no-open mode: what the listing says now */
			ret = listing_snapshot(fs, ino, &snap);
			if (ret < 0) {
				fuse_reply_err(req, -ret);
				return;
			}
		}
		reply_slice(req, snap, size, off);
		g_bytes_unref(snap);
		return;
	}
	if (off == 0 && pushable_slot(slot))
		__atomic_store_n(&fs->push_slot, slot, __ATOMIC_RELAXED);
	/* Usually cached; refetched if the cache let it go since open.  A message that vanished
	 * meanwhile (expunged, UIDVALIDITY changed) is EIO here: read(2) on an open file has no
	 * "no such file", and serving anything else would be another message's bytes. */
	{
		struct ifs_msg_ref ref;
		ret = msg_ref(fs, ino, &ref);
		if (ret == 0)
			ret = ifs_msgdir_bytes(fs, &ref, slot, &m, &b);
		ifs_msg_ref_clear(&ref);
	}
	if (ret < 0) {
		fuse_reply_err(req, ret == -ENOENT || ret == -ESTALE ? EIO : -ret);
		return;
	}
	reply_blob(req, b, size, off);
	ifs_msgcache_put(fs->cache, m);
}

static void ifs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	COUNT(req, ifs_of(req), IFS_REQ_RELEASE);
	if (is_listing_slot(ifs_ino_slot(ino)) && fi->fh != 0)
		g_bytes_unref((GBytes *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Write failures of the disk cache (bodycache.h): the errno in force (0: none), failed
 * writes, messages served without being stored. */
static void append_cache_health(GString *s, struct ifs_bodycache *bodies)
{
	int err;
	uint64_t failures, unstored;

	ifs_bodycache_health(bodies, &err, &failures, &unstored);
	g_string_append_printf(s, " disk_cache_write_error=%d disk_cache_write_failures=%" G_GUINT64_FORMAT
	                          " disk_cache_unstored=%" G_GUINT64_FORMAT, err, failures, unstored);
}

/* Offline (remote.h): now (0/1), times it went offline, requests failed at once meanwhile. */
static void append_offline(GString *s)
{
	bool offline;
	uint64_t periods, fast;

	ifs_remote_offline_stats(&offline, &periods, &fast);
	g_string_append_printf(s, " offline=%d offline_periods=%" G_GUINT64_FORMAT
	                          " offline_fast_failures=%" G_GUINT64_FORMAT, offline ? 1 : 0,
	                       periods, fast);
}

char *ifs_stats(struct ifs *fs)
{
	static const char *const names[IFS_REQ_COUNT] = {
	    "lookup", "getattr", "opendir", "readdir", "releasedir",
	    "open", "read", "release", "forget", "other"};
	GString *s = g_string_new(NULL);
	uint64_t bodies, bytes, total = 0;

	ifs_remote_stats(&bodies, &bytes);
	g_string_append_printf(s, "bodies_fetched=%" G_GUINT64_FORMAT
	                       " body_bytes_fetched=%" G_GUINT64_FORMAT, bodies, bytes);
	if (fs->bodies != NULL) {
		uint64_t dbytes, dentries;
		ifs_bodycache_usage(fs->bodies, &dbytes, &dentries);
		g_string_append_printf(s, " disk_cache_entries=%" G_GUINT64_FORMAT
		                       " disk_cache_bytes=%" G_GUINT64_FORMAT, dentries, dbytes);
		append_cache_health(s, fs->bodies);
	}
	{
		uint64_t pieces, piece_bytes;
		ifs_remote_piece_stats(&pieces, &piece_bytes);
		g_string_append_printf(
		    s,
		    " pieces_fetched=%" G_GUINT64_FORMAT " piece_bytes_fetched=%" G_GUINT64_FORMAT
		    " read_whole=%" G_GUINT64_FORMAT " pieces_read_ahead=%" G_GUINT64_FORMAT,
		    pieces, piece_bytes, ifs_loader_whole_only_count(),
		    ifs_loader_prefetched_count());
	}
	append_offline(s);
	if (fs->readahead != NULL)
		g_string_append_printf(s, " readahead_stored=%" G_GUINT64_FORMAT
		                          " parsed_ahead=%" G_GUINT64_FORMAT,
		                       ifs_readahead_stored(fs->readahead),
		                       ifs_readahead_parsed(fs->readahead));
	g_string_append_printf(s, " memory_cache_bytes=%zu pushed=%" G_GUINT64_FORMAT,
	                       ifs_msgcache_bytes(fs->cache),
	                       __atomic_load_n(&fs->pushed, __ATOMIC_RELAXED));
	if (fs->search != NULL)
		g_string_append_printf(s, " searches=%" G_GUINT64_FORMAT,
		                       ifs_search_count(fs->search));
	for (int i = 0; i < IFS_REQ_COUNT; i++) {
		uint64_t n = __atomic_load_n(&fs->requests[i], __ATOMIC_RELAXED);
		total += n;
		g_string_append_printf(s, " req_%s=%" G_GUINT64_FORMAT, names[i], n);
	}
	g_string_append_printf(s, " requests=%" G_GUINT64_FORMAT, total);
	return g_string_free(s, FALSE);
}

/* With -o stats, the stats line as an extended attribute of the root directory (tests,
 * benchmarks); every other attribute does not exist.  Without it, ENOSYS: the kernel then
 * never asks again (ls -l asks two or three per file). */
static void ifs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct ifs *fs = ifs_of(req);
	char *text;
	size_t len;

	COUNT(req, fs, IFS_REQ_OTHER);
	if (!fs->stats_xattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (ino != IFS_ROOT_INO || strcmp(name, STATS_XATTR) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	text = ifs_stats(fs);
	len = strlen(text);
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, text, len);
	g_free(text);
}

static void ifs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = IFS_NAME_MAX;
	sv.f_flag = ST_RDONLY;
	COUNT(req, ifs_of(req), IFS_REQ_OTHER);
	ifs_quota_statfs(ifs_of(req)->quota, &sv); /* the mailbox's quota in 1 KiB blocks */
	fuse_reply_statfs(req, &sv);
}

static void ifs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct ifs *fs = userdata;

	/* Nothing here is ever written: no writeback cache. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* Files need no open: answer the first OPEN with ENOSYS and the kernel stops sending
	 * OPEN/RELEASE (two requests per file per grep pass) and keeps page caches. */
	fs->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
	/* Directories need no open either: answer OPENDIR with ENOSYS and the kernel stops
	 * sending OPENDIR/RELEASEDIR (two requests per directory per pass, the whole cost of a
	 * warm grep) and caches every listing.  Folder listings change: with auto_inval_data the
	 * kernel asks for a folder's attributes (GETATTR, which refreshes the listing) when a
	 * readdir starts and they are older than `refresh`, and drops its cached listing when the
	 * mtime changed, which tree.c guarantees whenever the listing did.  Both are needed. */
	fs->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0 &&
	                 (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) != 0;
	if (fs->no_opendir)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* Listings are big and immutable per message: the kernel may cache readdir results. */
	conn->want |= conn->capable & FUSE_CAP_READDIRPLUS;
	/* ... every time, not only for a directory's first READDIR (the "auto" mode): a folder's
	 * listing spans many READDIRs, and each message directory left out of READDIRPLUS costs
	 * a LOOKUP later (a cold grep over 5,000 messages sent 4,799).  Its attributes are free:
	 * they come from the listing. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

/* ---- everything that would change the filesystem ---- */

static void ifs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                        struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                       const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                       struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                         size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void ifs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops ifs_ops = {
	.init = ifs_init,
	.lookup = ifs_lookup,
	.forget = ifs_forget,
	.forget_multi = ifs_forget_multi,
	.getattr = ifs_getattr,
	.opendir = ifs_opendir,
	.readdir = ifs_readdir,
	.readdirplus = ifs_readdirplus,
	.releasedir = ifs_releasedir,
	.open = ifs_open,
	.read = ifs_read,
	.release = ifs_release,
	.statfs = ifs_statfs,
	.getxattr = ifs_getxattr,
	.setattr = ifs_setattr,
	.mknod = ifs_mknod,
	.mkdir = ifs_mkdir,
	.unlink = ifs_unlink,
	.rmdir = ifs_rmdir,
	.symlink = ifs_symlink,
	.rename = ifs_rename,
	.link = ifs_link,
	.create = ifs_create,
	.write = ifs_write,
	.setxattr = ifs_setxattr,
	.removexattr = ifs_removexattr,
};

const struct fuse_lowlevel_ops *ifs_operations(void)
{
	return &ifs_ops;
}
