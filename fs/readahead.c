/* readahead.c — sequential-reader detection and the read-ahead worker (see readahead.h). */
#include "readahead.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "message.h"
#include "remote.h"

/* One UID FETCH carries at most this many messages / bytes (by RFC822.SIZE).  Each command
 * costs a round trip, so on a slow link bigger batches are what brings a cold grep near the
 * wire limit; but every message of a batch stays claimed until it has streamed, so a reader
 * that jumps into the batch waits at most for BATCH_BYTES to arrive: the byte bound is the one
 * that matters for waiting; the message bound only keeps a batch's UID set and pack index
 * modest (2048 small messages: 3 batches for a 5,000-message folder, where 256 made 20, each
 * with its round trip: 2.17 -> 1.94 s for a cold grep at 50 ms, bench/ab.py).  Into the
 * memory cache batches stay small: what they hold is in RAM until the reader takes it. */
#define DISK_BATCH_MESSAGES 2048
#define DISK_BATCH_BYTES    (32u * 1024 * 1024)
#define MEM_BATCH_MESSAGES  16
#define MEM_BATCH_BYTES     (8u * 1024 * 1024)
/* Parse-ahead (with the disk cache): at most this many messages are parsed ahead of the reader
 * into the memory cache (and at most parse_bytes of them by RFC822.SIZE). */
#define PARSE_AHEAD_MESSAGES 32

/* Read ahead of a folder's first message before the walk is certain (see ifs_readahead_note). */
#define FIRST_MESSAGE_AHEAD 32

/* Parallel, unordered walkers (ripgrep's thread pool, fd, xargs -P) take a folder's messages
 * in roughly listing order but out of it by a few places: a load within WALK_NEAR places of the
 * furthest one loaded counts as a step of the walk, and WALK_NEAR_STEPS such steps make one
 * (two exact neighbours in a row still do, as before). */
#define WALK_NEAR       16
#define WALK_NEAR_STEPS 4

/* Readers tracked at once (one per folder epoch); the oldest is forgotten beyond this. */
#define MAX_STREAMS 64

/* A reader walking one folder for one kind of file: a piece of piece.h (WHOLE: message.eml or
 * every file, with `fetch = whole`; OUTLINE: header files; PARTS: attachment names; TEXTS:
 * body).  Streams are keyed by stream_key(epoch, piece). */
struct stream {
	uint32_t epoch;
	unsigned piece;
	/* The walk so far: the UIDs its loads span (0, 0: none yet).  A walk goes up the
	 * listing (UID order: grep -r, find) or down it (ripgrep, whose thread pool takes the
	 * directory entries from the end), and is read ahead past its front, hi or lo. */
	uint32_t lo, hi;
	unsigned run;           /* loads in a row, each of the UID listed right after hi */
	unsigned near;          /* loads in a row within WALK_NEAR places of [lo, hi] */
	unsigned ups, downs;    /* loads of the walk that raised hi, that lowered lo */
	uint32_t queued_upto;   /* going up: highest UID queued so far (0: none) */
	uint32_t queued_downto; /* going down: lowest UID queued so far (UINT32_MAX: none) */
	uint32_t parse_upto;    /* highest UID queued for parse-ahead so far (walks up only) */
	gint64 used;
};

struct job {
	uint32_t epoch;
	unsigned piece; /* WHOLE: bodies as below; else ra->fetch_pieces */
	GArray *uids; /* struct ifs_uid_size, ascending UID */
};

struct ifs_readahead {
	struct imap_pool *pool;
	struct ifs_bodycache *bodies; /* NULL: read ahead into the memory cache */
	struct ifs_msgcache *cache;
	struct ifs_tree *tree;
	unsigned window;
	uint64_t window_bytes;

	uint64_t parse_bytes;

	GMutex lock;
	GHashTable *streams; /* stream_key(epoch, piece) -> struct stream* */
	ifs_readahead_piece_fn fetch_pieces; /* NULL: pieces are not read ahead */
	void *fetch_pieces_ctx;
	ifs_readahead_whole_fn reads_whole; /* with fetch_pieces */
	ifs_readahead_held_fn held_elsewhere; /* nullable; set before the first note */
	void *held_ctx;
	GAsyncQueue *jobs;   /* struct job*; a job with uids == NULL stops the worker */
	GThread *worker;
	GAsyncQueue *parse_jobs; /* struct job* for the parser, same convention */
	/* Pieces are read ahead on a thread of their own (started with the piece fetcher), so
	 * that the round trips of a window's outlines, MIME headers and texts run beside the
	 * whole messages the worker streams for the same walk, not before or after them. */
	GAsyncQueue *piece_jobs; /* struct job*, same convention */
	GThread *piece_worker;   /* NULL until ifs_readahead_set_piece_fetcher */
	GThread *parser;         /* NULL without the disk cache */
	uint64_t stored;     /* messages read ahead into the disk cache (atomic) */
	uint64_t parsed;     /* messages parsed ahead into the memory cache (atomic) */
};

static gpointer stream_key(uint32_t epoch, unsigned piece)
{
	return GSIZE_TO_POINTER(((gsize)piece << 32) | epoch);
}

static void job_free(struct job *j)
{
	if (j->uids != NULL)
		g_array_unref(j->uids);
	g_free(j);
}

/* ---- the worker ---- */

struct batch_sink {
	struct ifs_readahead *ra;
	uint32_t epoch;
	uint32_t key_epoch; /* the folder life's (a search result's messages are its folder's) */
	struct ifs_bodycache_pack *pack; /* disk: where the batch's small messages go */
	GHashTable *writers; /* uid -> what is still to be filled: a big message's
	                      * struct ifs_bodycache_writer* (disk) or a GByteArray* (memory) */
	void *cur;           /* the writer or array of the message being received, or NULL */
	bool in_pack;        /* the message being received goes into the pack */
};

static int ra_begin(void *p, uint32_t uid, uint64_t size)
{
	struct batch_sink *bs = p;
	int r;

	bs->in_pack = false;
	bs->cur = g_hash_table_lookup(bs->writers, GUINT_TO_POINTER(uid));
	if (bs->cur == NULL) {
		if (bs->pack == NULL)
			return 1; /* already stored (a retried command) or not ours */
		r = ifs_bodycache_pack_begin(bs->pack, uid);
		bs->in_pack = r == 0;
		return r;
	}
	if (bs->ra->bodies == NULL) {
		g_byte_array_set_size(bs->cur, 0);
		return 0;
	}
	return ifs_bodycache_writer_rewind(bs->cur);
}

static int ra_data(void *p, const void *buf, size_t len)
{
	struct batch_sink *bs = p;
	if (bs->in_pack)
		return ifs_bodycache_pack_write(bs->pack, buf, len);
	if (bs->ra->bodies == NULL) {
		GByteArray *a = bs->cur;
		if ((uint64_t)a->len + len > G_MAXUINT32 / 2)
			return -EFBIG;
		g_byte_array_append(a, buf, (guint)len);
		return 0;
	}
	return ifs_bodycache_writer_write(bs->cur, buf, len);
}

static int ra_end(void *p, uint32_t uid)
{
	struct batch_sink *bs = p;
	struct ifs_readahead *ra = bs->ra;
	int fd = -1;
	uint64_t size = 0;

	if (bs->in_pack) {
		bs->in_pack = false;
		/* readable from now on: a reader waiting for this one goes on */
		if (ifs_bodycache_pack_end(bs->pack, uid) == 0)
			__atomic_fetch_add(&ra->stored, 1, __ATOMIC_RELAXED);
		return 0;
	}
	if (bs->cur == NULL)
		return 0;
	/* Stored as soon as it is whole: a reader waiting for this one goes on now. */
	g_hash_table_steal(bs->writers, GUINT_TO_POINTER(uid));
	if (ra->bodies != NULL) {
		if (ifs_bodycache_writer_commit(bs->cur, &fd, &size) == 0) {
			close(fd);
			__atomic_fetch_add(&ra->stored, 1, __ATOMIC_RELAXED);
		}
	} else {
		GBytes *raw = g_byte_array_free_to_bytes(bs->cur);
		struct ifs_cached_msg msg;
		memset(&msg, 0, sizeof(msg));
		if (ifs_message_from_bytes(raw, &msg) == 0) {
			ifs_msgcache_fulfill(ra->cache, ifs_msg_key(bs->key_epoch, uid), &msg, 0);
			__atomic_fetch_add(&ra->stored, 1, __ATOMIC_RELAXED);
		} else {
			ifs_msgcache_fulfill(ra->cache, ifs_msg_key(bs->key_epoch, uid), NULL, 0);
		}
		g_bytes_unref(raw);
	}
	bs->cur = NULL;
	return 0;
}

/* "3,5:9,12" (uids ascending) */
static char *uidset_of(const GArray *uids)
{
	GString *s = g_string_new(NULL);
	for (guint i = 0; i < uids->len;) {
		uint32_t a = g_array_index(uids, uint32_t, i), b = a;
		guint j = i + 1;
		while (j < uids->len && g_array_index(uids, uint32_t, j) == b + 1)
			b = g_array_index(uids, uint32_t, j++);
		if (s->len > 0)
			g_string_append_c(s, ',');
		if (a == b)
			g_string_append_printf(s, "%u", a);
		else
			g_string_append_printf(s, "%u:%u", a, b);
		i = j;
	}
	return g_string_free(s, FALSE);
}

/* Claim what of uids[0..n) is neither on disk nor being fetched; small messages go into one
 * pack (one file for the batch), big ones into files of their own. */
static void claim_for_disk(struct ifs_readahead *ra, struct batch_sink *bs, const char *raw,
                           uint32_t uidvalidity, const struct ifs_uid_size *uids, guint n,
                           GArray *claimed)
{
	/* the disk fails to take messages just now: reading ahead would only fill scratch
	 * files; readers fetch what they read */
	if (ifs_bodycache_failing(ra->bodies))
		return;
	for (guint i = 0; i < n; i++) {
		struct ifs_bodycache_writer *w = NULL;
		int fd = -1;
		uint64_t offset, size;
		int r;

		if (uids[i].size <= IFS_BIG_MESSAGE) {
			if (ifs_bodycache_contains(ra->bodies, raw, uidvalidity, uids[i].uid))
				continue;
			if (bs->pack == NULL &&
			    ifs_bodycache_pack_new(ra->bodies, raw, uidvalidity, &bs->pack) < 0)
				continue;
			if (ifs_bodycache_pack_claim(bs->pack, uids[i].uid) == IFS_BODYCACHE_CLAIMED)
				g_array_append_val(claimed, uids[i].uid);
			continue;
		}
		r = ifs_bodycache_get(ra->bodies, raw, uidvalidity, uids[i].uid, false, &fd,
		                      &offset, &size, &w);
		if (r == IFS_BODYCACHE_HIT)
			close(fd);
		if (r != IFS_BODYCACHE_CLAIMED)
			continue; /* on disk already, or a reader is fetching it */
		g_hash_table_insert(bs->writers, GUINT_TO_POINTER(uids[i].uid), w);
		g_array_append_val(claimed, uids[i].uid);
	}
}

static void run_batch(struct ifs_readahead *ra, uint32_t epoch, const char *raw,
                      uint32_t uidvalidity, const struct ifs_uid_size *all, guint n_all)
{
	struct batch_sink bs = {ra, epoch, ifs_tree_base_epoch(ra->tree, epoch), NULL,
	                        g_hash_table_new(g_direct_hash, g_direct_equal), NULL, false};
	struct imap_body_sink sink = {ra_begin, ra_data, ra_end, &bs};
	GArray *claimed = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	/* what another folder entry of the same message holds already is not fetched again */
	GArray *todo = g_array_sized_new(FALSE, FALSE, sizeof(struct ifs_uid_size), n_all);
	const struct ifs_uid_size *uids;
	guint n;
	GHashTableIter it;
	gpointer k, v;

	for (guint i = 0; i < n_all; i++)
		if (ra->held_elsewhere == NULL ||
		    !ra->held_elsewhere(ra->held_ctx, epoch, all[i].uid, NULL))
			g_array_append_val(todo, all[i]);
	uids = (const struct ifs_uid_size *)(void *)todo->data;
	n = todo->len;

	if (ra->bodies != NULL) {
		claim_for_disk(ra, &bs, raw, uidvalidity, uids, n, claimed);
	} else {
		/* into the memory cache: readers of these wait for us */
		for (guint i = 0; i < n; i++) {
			if (!ifs_msgcache_reserve(ra->cache, ifs_msg_key(bs.key_epoch, uids[i].uid)))
				continue;
			g_hash_table_insert(bs.writers, GUINT_TO_POINTER(uids[i].uid),
			                    g_byte_array_new());
			g_array_append_val(claimed, uids[i].uid);
		}
	}
	if (claimed->len > 0) {
		char *set = uidset_of(claimed);
		int ret = ifs_remote_fetch_bodies(ra->pool, raw, uidvalidity, set, &sink);
		if (ret < 0)
			g_debug("read-ahead of UID %s of %s failed: %s", set, raw,
			        g_strerror(-ret));
		g_free(set);
	}
	/* Whatever did not arrive (expunged, failure): readers fetch it themselves. */
	ifs_bodycache_pack_close(bs.pack);
	g_hash_table_iter_init(&it, bs.writers);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		if (ra->bodies != NULL) {
			ifs_bodycache_writer_abort(v);
		} else {
			g_byte_array_unref(v);
			ifs_msgcache_fulfill(ra->cache, ifs_msg_key(bs.key_epoch, GPOINTER_TO_UINT(k)), NULL,
			                     0);
		}
	}
	g_hash_table_destroy(bs.writers);
	g_array_unref(claimed);
	g_array_unref(todo);
}

/* Is uid queued by the walk of piece over epoch's folder? */
static bool walk_covers(struct ifs_readahead *ra, uint32_t epoch, unsigned piece, uint32_t uid)
{
	struct stream *w;
	bool covered = false;

	g_mutex_lock(&ra->lock);
	w = g_hash_table_lookup(ra->streams, stream_key(epoch, piece));
	if (w != NULL && w->lo != 0)
		covered = w->downs > w->ups ? uid <= w->hi && uid >= w->queued_downto
		                            : uid >= w->lo && uid <= w->queued_upto;
	g_mutex_unlock(&ra->lock);
	return covered;
}

/* Is uid queued by a walk of whole messages over the same folder (grep -r reads every file of
 * a message, message.eml too)?  Then its pieces are not read ahead: the whole message answers
 * every file, and fetching its pieces too would spend connections and bytes for nothing
 * (readahead.h). */
bool ifs_readahead_whole_walk_covers(struct ifs_readahead *ra, uint32_t epoch, uint32_t uid)
{
	return walk_covers(ra, epoch, IFS_PIECE_WHOLE, uid);
}

/* Is uid queued by a walk of texts (grep -r --include=body)?  Its job reads ahead the outline
 * and MIME headers of the large messages too, and the small ones whole (piece.h): outlines or
 * MIME headers read ahead for it by a walk of those (the same reader's lookups of large
 * messages) would be bytes and round trips spent for nothing. */
static bool texts_walk_covers(struct ifs_readahead *ra, uint32_t epoch, uint32_t uid)
{
	return walk_covers(ra, epoch, IFS_PIECE_TEXTS, uid);
}

/* Read whole messages uids[0..n) of epoch ahead, in batches. */
static void run_whole(struct ifs_readahead *ra, uint32_t epoch, const struct ifs_uid_size *uids,
                      guint n)
{
	char *raw = NULL;
	uint32_t uidvalidity = 0;
	guint start = 0;

	const guint max_messages = ra->bodies != NULL ? DISK_BATCH_MESSAGES : MEM_BATCH_MESSAGES;
	const uint64_t max_bytes = ra->bodies != NULL ? DISK_BATCH_BYTES : MEM_BATCH_BYTES;

	if (n == 0 || ifs_tree_epoch_folder(ra->tree, epoch, &raw, &uidvalidity) < 0)
		return;
	while (start < n) {
		guint k = 0;
		uint64_t bytes = 0;
		/* Bodies are streamed to files or parsed one at a time, so this bounds latency
		 * (claims held), not memory. */
		while (start + k < n && k < max_messages && bytes < max_bytes) {
			bytes += uids[start + k].size;
			k++;
		}
		run_batch(ra, epoch, raw, uidvalidity, uids + start, k);
		start += k;
	}
	g_free(raw);
}

static void run_job(struct ifs_readahead *ra, struct job *j)
{
	if (j->piece != IFS_PIECE_WHOLE) {
		/* pieces are small: the loader batches them, one round trip per level, on the
		 * piece thread; what the loader reads whole (small messages beyond their outline,
		 * piece.h) is read ahead whole here meanwhile */
		struct job *pj = g_new0(struct job, 1);
		GArray *uids = g_array_new(FALSE, FALSE, sizeof(struct ifs_uid_size));
		GArray *small = g_array_new(FALSE, FALSE, sizeof(struct ifs_uid_size));
		for (guint i = 0; i < j->uids->len; i++) {
			const struct ifs_uid_size *u =
			    &g_array_index(j->uids, struct ifs_uid_size, i);
			if (ifs_readahead_whole_walk_covers(ra, j->epoch, u->uid) ||
			    (j->piece < IFS_PIECE_TEXTS && texts_walk_covers(ra, j->epoch, u->uid)))
				continue;
			if (ra->reads_whole != NULL &&
			    ra->reads_whole(ra->fetch_pieces_ctx, j->epoch, u->uid, u->size,
			                    j->piece))
				g_array_append_val(small, *u);
			else
				g_array_append_val(uids, *u);
		}
		pj->epoch = j->epoch;
		pj->piece = j->piece;
		pj->uids = uids;
		if (ra->piece_worker != NULL && uids->len > 0)
			g_async_queue_push(ra->piece_jobs, pj);
		else
			job_free(pj);
		run_whole(ra, j->epoch, (const struct ifs_uid_size *)small->data, small->len);
		g_array_unref(small);
		return;
	}
	run_whole(ra, j->epoch, (const struct ifs_uid_size *)j->uids->data, j->uids->len);
}

static gpointer worker_main(gpointer p)
{
	struct ifs_readahead *ra = p;

	for (;;) {
		struct job *j = g_async_queue_pop(ra->jobs);
		if (j->uids == NULL) {
			job_free(j);
			break;
		}
		run_job(ra, j);
		job_free(j);
	}
	return NULL;
}

/* ---- the parser ----
 *
 * Decoding a message (mime/) costs about as much as receiving it, and a reader walking a folder
 * would otherwise do it on its own path, one message at a time, between two of its requests.
 * With the disk cache, a second thread parses the next few messages of the walk from the disk
 * cache into the memory cache, so the reader finds them decoded: the decoding runs on another
 * core, in parallel with the reader and the kernel.  It never fetches: a message neither on
 * disk nor being read ahead is left to the reader. */

/* Is the reader of epoch's stream of piece already past uid (then parsing it is wasted)? */
static bool reader_past(struct ifs_readahead *ra, uint32_t epoch, unsigned piece, uint32_t uid)
{
	struct stream *s;
	bool past;

	g_mutex_lock(&ra->lock);
	s = g_hash_table_lookup(ra->streams, stream_key(epoch, piece));
	past = s == NULL || s->hi >= uid;
	g_mutex_unlock(&ra->lock);
	return past;
}

/* Parse uid of epoch (the reader's walk) from the disk cache entry (raw, uidvalidity, key_uid)
 * into the memory cache under (key_epoch, key_uid): the message's own folder entry, or the
 * one of its id that holds it (the reader reads it through that one, loader.h). */
static void parse_one(struct ifs_readahead *ra, uint32_t epoch, unsigned piece, uint32_t uid,
                      uint32_t key_epoch, const char *raw, uint32_t uidvalidity, uint32_t key_uid)
{
	uint64_t key = ifs_msg_key(key_epoch, key_uid);
	struct ifs_bodycache_writer *w = NULL;
	struct ifs_cached_msg msg;
	uint64_t offset = 0, size = 0;
	int fd = -1, r;

	if (reader_past(ra, epoch, piece, uid) || !ifs_msgcache_reserve(ra->cache, key))
		return;
	/* waits while the read-ahead (or a reader) is fetching it */
	r = ifs_bodycache_get(ra->bodies, raw, uidvalidity, key_uid, true, &fd, &offset, &size, &w);
	if (r != IFS_BODYCACHE_HIT) {
		ifs_bodycache_writer_abort(w); /* claimed (nobody fetches it): the reader will */
		ifs_msgcache_fulfill(ra->cache, key, NULL, 0);
		return;
	}
	memset(&msg, 0, sizeof(msg));
	if (ifs_message_from_file(fd, offset, size, ra->bodies, &msg) == 0) {
		ifs_msgcache_fulfill(ra->cache, key, &msg, 0);
		__atomic_fetch_add(&ra->parsed, 1, __ATOMIC_RELAXED);
	} else
		ifs_msgcache_fulfill(ra->cache, key, NULL, 0);
}

static gpointer parser_main(gpointer p)
{
	struct ifs_readahead *ra = p;

	for (;;) {
		struct job *j = g_async_queue_pop(ra->parse_jobs);
		char *raw = NULL;
		uint32_t uidvalidity = 0;

		if (j->uids == NULL) {
			job_free(j);
			break;
		}
		if (ifs_tree_epoch_folder(ra->tree, j->epoch, &raw, &uidvalidity) == 0)
			for (guint i = 0; i < j->uids->len; i++) {
				const struct ifs_uid_size *u =
				    &g_array_index(j->uids, struct ifs_uid_size, i);
				struct ifs_readahead_holder h = {0, 0, NULL, 0};
				/* a walk of texts: only the messages read whole are parsed here */
				if (j->piece != IFS_PIECE_WHOLE &&
				    !ra->reads_whole(ra->fetch_pieces_ctx, j->epoch, u->uid,
				                     u->size, j->piece))
					continue;
				/* one another folder entry holds is read through that entry's keys
				 * (loader.h), so it is parsed there: a claim of this entry, short
				 * as it is, would make its reader take this entry for the holder
				 * and fetch it again */
				if (ra->held_elsewhere != NULL &&
				    ra->held_elsewhere(ra->held_ctx, j->epoch, u->uid, &h))
					parse_one(ra, j->epoch, j->piece, u->uid, h.key_epoch,
					          h.raw_name, h.uidvalidity, h.uid);
				else
					/* a search result's message is cached under its folder's
					 * epoch (tree.h) */
					parse_one(ra, j->epoch, j->piece, u->uid,
					          ifs_tree_base_epoch(ra->tree, j->epoch), raw,
					          uidvalidity, u->uid);
				g_free(h.raw_name);
			}
		g_free(raw);
		job_free(j);
	}
	return NULL;
}

/* ---- detection ---- */

struct ifs_readahead *ifs_readahead_new(struct imap_pool *pool, struct ifs_bodycache *bodies,
                                        struct ifs_msgcache *cache, struct ifs_tree *tree,
                                        unsigned window, uint64_t window_bytes,
                                        uint64_t parse_bytes)
{
	struct ifs_readahead *ra = g_new0(struct ifs_readahead, 1);

	ra->pool = pool;
	ra->bodies = bodies;
	ra->cache = cache;
	ra->tree = tree;
	ra->window = window;
	ra->window_bytes = window_bytes;
	ra->parse_bytes = parse_bytes;
	g_mutex_init(&ra->lock);
	ra->streams = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	ra->jobs = g_async_queue_new();
	ra->worker = g_thread_new("imapfs-readahead", worker_main, ra);
	ra->parse_jobs = g_async_queue_new();
	ra->piece_jobs = g_async_queue_new();
	if (bodies != NULL && parse_bytes > 0)
		ra->parser = g_thread_new("imapfs-parse", parser_main, ra);
	return ra;
}

/* Drop q's queued jobs, then stop thread t (nullable: never started) after its current job,
 * and drop what it queued meanwhile; q is freed. */
static void stop_thread(GAsyncQueue *q, GThread *t)
{
	struct job *j;

	while ((j = g_async_queue_try_pop(q)) != NULL)
		job_free(j);
	if (t != NULL) {
		g_async_queue_push(q, g_new0(struct job, 1));
		g_thread_join(t);
	}
	while ((j = g_async_queue_try_pop(q)) != NULL)
		job_free(j);
	g_async_queue_unref(q);
}

void ifs_readahead_free(struct ifs_readahead *ra)
{
	if (ra == NULL)
		return;
	/* The parser first: it may wait for a message the worker is fetching; the piece thread
	 * last: the worker hands it jobs. */
	stop_thread(ra->parse_jobs, ra->parser);
	stop_thread(ra->jobs, ra->worker);
	stop_thread(ra->piece_jobs, ra->piece_worker);
	g_hash_table_destroy(ra->streams);
	g_mutex_clear(&ra->lock);
	g_free(ra);
}

static void forget_oldest(struct ifs_readahead *ra)
{
	GHashTableIter it;
	gpointer k, v, oldest_k = NULL;
	gint64 oldest = G_MAXINT64;

	g_hash_table_iter_init(&it, ra->streams);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct stream *s = v;
		if (s->used < oldest) {
			oldest = s->used;
			oldest_k = k;
		}
	}
	g_hash_table_remove(ra->streams, oldest_k);
}

/* Has a walk queued uid already?  Up: *mark is the highest UID queued; down: the lowest. */
static bool is_queued(uint32_t uid, uint32_t mark, bool down)
{
	return down ? uid >= mark : uid <= mark;
}

/* The first n messages of after (the reader's next ones, nearest first; down: descending
 * UIDs): when less than half of them is queued already (*mark, is_queued), a job for the
 * rest, in ascending UID order as the worker fetches them; else NULL. */
static struct job *top_up(uint32_t *mark, bool down, uint32_t epoch, const GArray *after, guint n)
{
	guint pending = 0;
	struct job *j;

	if (n == 0)
		return NULL;
	for (guint i = 0; i < n; i++)
		if (is_queued(g_array_index(after, struct ifs_uid_size, i).uid, *mark, down))
			pending++;
	if (pending >= n / 2 + 1 ||
	    is_queued(g_array_index(after, struct ifs_uid_size, n - 1).uid, *mark, down))
		return NULL;
	j = g_new0(struct job, 1);
	j->epoch = epoch; /* piece: set by the caller */
	j->uids = g_array_new(FALSE, FALSE, sizeof(struct ifs_uid_size));
	for (guint i = 0; i < n; i++) {
		guint at = down ? n - 1 - i : i;
		struct ifs_uid_size u = g_array_index(after, struct ifs_uid_size, at);
		if (!is_queued(u.uid, *mark, down))
			g_array_append_val(j->uids, u);
	}
	*mark = g_array_index(after, struct ifs_uid_size, n - 1).uid;
	return j;
}

/* How many of after the parser takes: PARSE_AHEAD_MESSAGES and parse_bytes at most, and
 * never past a big message (those the reader parses itself, from the file, as it reads). */
static guint parse_window(const struct ifs_readahead *ra, const GArray *after)
{
	uint64_t bytes = 0;
	guint n = 0;

	while (n < after->len && n < PARSE_AHEAD_MESSAGES) {
		uint64_t size = g_array_index(after, struct ifs_uid_size, n).size;
		if (size > IFS_BIG_MESSAGE || (bytes + size > ra->parse_bytes && n > 0))
			break;
		bytes += size;
		n++;
	}
	return n;
}

/* The reader's stream of (epoch, piece), created when new (lock held). */
static struct stream *stream_get(struct ifs_readahead *ra, uint32_t epoch, unsigned piece)
{
	struct stream *s = g_hash_table_lookup(ra->streams, stream_key(epoch, piece));

	if (s == NULL) {
		if (g_hash_table_size(ra->streams) >= MAX_STREAMS)
			forget_oldest(ra);
		s = g_new0(struct stream, 1);
		s->epoch = epoch;
		s->piece = piece;
		s->queued_downto = UINT32_MAX;
		g_hash_table_insert(ra->streams, stream_key(epoch, piece), s);
	}
	s->used = g_get_monotonic_time();
	return s;
}

/* The up to `window` UIDs listed after uid (down: before it, nearest first), bounded by
 * window_bytes counted from the reader's position (whole messages only: pieces are small, and the
 * loader bounds each one).  -ENOENT when uid is not listed. */
static int window_after(struct ifs_readahead *ra, uint32_t epoch, uint32_t uid, unsigned piece,
                        bool down, GArray *after)
{
	uint32_t prev;

	if (ifs_tree_uids_around(ra->tree, epoch, uid, down ? -(int)ra->window : (int)ra->window,
	                         &prev, after) < 0)
		return -ENOENT;
	if (ra->window_bytes > 0 && piece == IFS_PIECE_WHOLE) {
		uint64_t bytes = 0;
		for (guint i = 0; i < after->len; i++) {
			bytes += MIN(g_array_index(after, struct ifs_uid_size, i).size, G_MAXUINT32);
			if (bytes > ra->window_bytes && i > 0) {
				g_array_set_size(after, i);
				break;
			}
		}
	}
	return 0;
}

static gpointer piece_worker_main(gpointer p)
{
	struct ifs_readahead *ra = p;

	for (;;) {
		struct job *j = g_async_queue_pop(ra->piece_jobs);
		GArray *uids;
		if (j->uids == NULL) {
			job_free(j);
			break;
		}
		uids = g_array_sized_new(FALSE, FALSE, sizeof(uint32_t), j->uids->len);
		for (guint i = 0; i < j->uids->len; i++) {
			uint32_t uid = g_array_index(j->uids, struct ifs_uid_size, i).uid;
			/* again now: a walk of whole messages may have begun since it was queued
			 * (grep -r lists a message directory before it reads message.eml) */
			if (!ifs_readahead_whole_walk_covers(ra, j->epoch, uid))
				g_array_append_val(uids, uid);
		}
		if (uids->len > 0)
			ra->fetch_pieces(ra->fetch_pieces_ctx, j->epoch,
			                 (const uint32_t *)uids->data, uids->len, j->piece);
		g_array_unref(uids);
		job_free(j);
	}
	return NULL;
}

void ifs_readahead_set_held_elsewhere(struct ifs_readahead *ra, ifs_readahead_held_fn fn, void *ctx)
{
	ra->held_elsewhere = fn;
	ra->held_ctx = ctx;
}

void ifs_readahead_set_piece_fetcher(struct ifs_readahead *ra, ifs_readahead_piece_fn fn,
                                     ifs_readahead_whole_fn whole, void *ctx)
{
	ra->fetch_pieces = fn;
	ra->reads_whole = whole;
	ra->fetch_pieces_ctx = ctx;
	if (ra->piece_worker == NULL)
		ra->piece_worker = g_thread_new("imapfs-readahead-pieces", piece_worker_main, ra);
}

/* Is uid within WALK_NEAR places of [lo, hi] in the listing?  (Asks the tree: not under the
 * read-ahead lock.) */
static bool near_walk(struct ifs_readahead *ra, uint32_t epoch, uint32_t uid, uint32_t lo,
                      uint32_t hi)
{
	if (lo == 0)
		return false;
	if (uid > hi)
		return ifs_tree_uid_after(ra->tree, epoch, hi, WALK_NEAR) >= uid;
	if (uid < lo)
		return ifs_tree_uid_after(ra->tree, epoch, lo, -WALK_NEAR) <= uid;
	return true;
}

void ifs_readahead_note(struct ifs_readahead *ra, uint32_t epoch, uint32_t uid, unsigned piece)
{
	GArray *after;
	uint32_t prev = 0, lo, hi, from, ra_probe, parse_probe = 0;
	struct stream *s;
	struct job *j = NULL, *pj = NULL;
	bool parse, near, walking, down;
	bool maybe;

	/* an attachment is read on its own: nothing to walk */
	if (piece > IFS_PIECE_TEXTS || (piece != IFS_PIECE_WHOLE && ra->fetch_pieces == NULL))
		return;

	/* Called for (nearly) every message of a walk, on the reader's path, and most calls
	 * change nothing: decide that from a few O(log n) lookups (is half a window still
	 * queued ahead?) before copying a window of the listing. */
	after = g_array_new(FALSE, FALSE, sizeof(struct ifs_uid_size));
	if (ifs_tree_uids_around(ra->tree, epoch, uid, 0, &prev, after) < 0) {
		g_array_unref(after);
		return;
	}
	g_mutex_lock(&ra->lock);
	s = stream_get(ra, epoch, piece);
	lo = s->lo;
	hi = s->hi;
	g_mutex_unlock(&ra->lock);
	near = near_walk(ra, epoch, uid, lo, hi);

	g_mutex_lock(&ra->lock);
	s = stream_get(ra, epoch, piece);
	if (near && (s->lo != lo || s->hi != hi))
		near = s->lo <= uid ? uid <= s->hi || hi >= uid : lo <= uid; /* moved meanwhile */
	if (!near) {
		/* a new walk (or a single read): start over from here */
		s->lo = s->hi = uid;
		s->run = 1;
		s->near = s->ups = s->downs = 0;
		s->queued_upto = s->parse_upto = 0;
		s->queued_downto = UINT32_MAX;
	} else if (uid != s->hi || uid != s->lo) {
		s->run = uid > s->hi && prev == s->hi ? s->run + 1 : (uid > s->hi ? 1 : s->run);
		s->near++;
		if (uid > s->hi) {
			s->hi = uid;
			s->ups++;
		} else if (uid < s->lo) {
			s->lo = uid;
			s->downs++;
		}
	}
	down = s->downs > s->ups;
	/* two exact neighbours in a row (the sequential reader), or a parallel walker's
	 * WALK_NEAR_STEPS loads near each other */
	walking = (s->run >= 2 && !down) || s->near >= WALK_NEAR_STEPS;
	from = down ? s->lo : s->hi;
	lo = s->queued_upto;
	hi = s->queued_downto;
	g_mutex_unlock(&ra->lock);

	/* whole messages are parsed ahead for a walk of them, and for a walk of texts (grep -r
	 * --include=body), whose small messages are read whole (piece.h) */
	parse = ra->parser != NULL && !down &&
	        (piece == IFS_PIECE_WHOLE || (piece == IFS_PIECE_TEXTS && ra->reads_whole != NULL));
	ra_probe = ifs_tree_uid_after(
	    ra->tree, epoch, from, down ? -(int)(ra->window / 2 + 1) : (int)(ra->window / 2 + 1));
	if (parse)
		parse_probe =
		    ifs_tree_uid_after(ra->tree, epoch, from, PARSE_AHEAD_MESSAGES / 2 + 1);
	/* (top_up() below decides exactly; this only rules out the calls where it cannot
	 * queue anything: half a window counted in messages is at least half the byte-bounded
	 * one.) */
	maybe = walking ? (down ? hi > ra_probe : lo < ra_probe) ||
	                      (parse && s->parse_upto < parse_probe)
	                : prev == 0;
	if (!maybe ||
	    window_after(ra, epoch, walking ? from : uid, piece, walking && down, after) < 0 ||
	    after->len == 0) {
		g_array_unref(after);
		return;
	}
	g_mutex_lock(&ra->lock);
	s = stream_get(ra, epoch, piece);
	if (walking) {
		j = top_up(down ? &s->queued_downto : &s->queued_upto, down, epoch, after,
		           after->len);
		if (parse)
			pj = top_up(&s->parse_upto, false, epoch, after, parse_window(ra, after));
	} else if (prev == 0) {
		/* The folder's first message: how grep -r, find and indexers start their walk.
		 * Waiting for a second message costs two round trips before anything streams,
		 * so start now, with a short first batch (a reader that only wanted this one
		 * message costs little); a real walk tops it up to the window at its second
		 * message. */
		j = top_up(&s->queued_upto, false, epoch, after,
		           MIN(after->len, FIRST_MESSAGE_AHEAD));
	}
	g_mutex_unlock(&ra->lock);
	g_array_unref(after);
	if (j != NULL) {
		j->piece = piece;
		g_debug("read-ahead: piece %u of %u messages %s UID %u", piece, j->uids->len,
		        walking && down ? "before" : "after", from);
		g_async_queue_push(ra->jobs, j);
	}
	if (pj != NULL) {
		pj->piece = piece;
		g_async_queue_push(ra->parse_jobs, pj);
	}
}

uint64_t ifs_readahead_stored(struct ifs_readahead *ra)
{
	return __atomic_load_n(&ra->stored, __ATOMIC_RELAXED);
}

uint64_t ifs_readahead_parsed(struct ifs_readahead *ra)
{
	return __atomic_load_n(&ra->parsed, __ATOMIC_RELAXED);
}
