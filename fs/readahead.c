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
 * that jumps into the batch waits at most for BATCH_BYTES to arrive.  Into the memory cache
 * batches stay small: what they hold is in RAM until the reader takes it. */
#define DISK_BATCH_MESSAGES 256
#define DISK_BATCH_BYTES    (32u * 1024 * 1024)
#define MEM_BATCH_MESSAGES  16
#define MEM_BATCH_BYTES     (8u * 1024 * 1024)
/* Readers tracked at once (one per folder epoch); the oldest is forgotten beyond this. */
#define MAX_STREAMS 64

/* A reader walking one folder. */
struct stream {
	uint32_t epoch;
	uint32_t last_uid;    /* the last UID a reader loaded */
	unsigned run;         /* consecutive neighbours loaded, ending at last_uid */
	uint32_t queued_upto; /* highest UID queued so far (UIDs only grow along the walk) */
	gint64 used;
};

struct job {
	uint32_t epoch;
	GArray *uids; /* struct ifs_uid_size, ascending UID */
};

struct ifs_readahead {
	struct imap_pool *pool;
	struct ifs_bodycache *bodies; /* NULL: read ahead into the memory cache */
	struct ifs_msgcache *cache;
	struct ifs_tree *tree;
	unsigned window;
	uint64_t window_bytes;

	GMutex lock;
	GHashTable *streams; /* epoch -> struct stream* */
	GAsyncQueue *jobs;   /* struct job*; a job with uids == NULL stops the worker */
	GThread *worker;
	uint64_t stored;     /* messages read ahead into the disk cache (atomic) */
};

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
	GHashTable *writers; /* uid -> struct ifs_bodycache_writer* (disk) or GByteArray* (memory)
	                      * still to be filled */
	void *cur;
	uint32_t cur_uid;
};

static int ra_begin(void *p, uint32_t uid, uint64_t size)
{
	struct batch_sink *bs = p;
	bs->cur = g_hash_table_lookup(bs->writers, GUINT_TO_POINTER(uid));
	bs->cur_uid = uid;
	if (bs->cur == NULL)
		return 1; /* already stored (a retried command) or not ours */
	if (bs->ra->bodies == NULL) {
		g_byte_array_set_size(bs->cur, 0);
		return 0;
	}
	return ifs_bodycache_writer_rewind(bs->cur);
}

static int ra_data(void *p, const void *buf, size_t len)
{
	struct batch_sink *bs = p;
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
			ifs_msgcache_fulfill(ra->cache, ifs_msg_key(bs->epoch, uid), &msg, 0);
			__atomic_fetch_add(&ra->stored, 1, __ATOMIC_RELAXED);
		} else {
			ifs_msgcache_fulfill(ra->cache, ifs_msg_key(bs->epoch, uid), NULL, 0);
		}
		g_bytes_unref(raw);
	}
	bs->cur = NULL;
	return 0;
}

/* "3,5:9,12" */
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

static void run_batch(struct ifs_readahead *ra, uint32_t epoch, const char *raw,
                      uint32_t uidvalidity, const struct ifs_uid_size *uids, guint n)
{
	struct batch_sink bs = {ra, epoch, g_hash_table_new(g_direct_hash, g_direct_equal), NULL,
	                        0};
	struct imap_body_sink sink = {ra_begin, ra_data, ra_end, &bs};
	GArray *claimed = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	GHashTableIter it;
	gpointer k, v;

	for (guint i = 0; i < n; i++) {
		struct ifs_bodycache_writer *w = NULL;
		int fd = -1;
		uint64_t size;
		int r;

		if (ra->bodies == NULL) {
			/* into the memory cache: readers of these wait for us */
			if (!ifs_msgcache_reserve(ra->cache, ifs_msg_key(epoch, uids[i].uid)))
				continue;
			g_hash_table_insert(bs.writers, GUINT_TO_POINTER(uids[i].uid),
			                    g_byte_array_new());
			g_array_append_val(claimed, uids[i].uid);
			continue;
		}
		r = ifs_bodycache_get(ra->bodies, raw, uidvalidity, uids[i].uid, false, &fd, &size,
		                      &w);
		if (r == IFS_BODYCACHE_HIT)
			close(fd);
		if (r != IFS_BODYCACHE_CLAIMED)
			continue; /* on disk already, or a reader is fetching it */
		g_hash_table_insert(bs.writers, GUINT_TO_POINTER(uids[i].uid), w);
		g_array_append_val(claimed, uids[i].uid);
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
	g_hash_table_iter_init(&it, bs.writers);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		if (ra->bodies != NULL) {
			ifs_bodycache_writer_abort(v);
		} else {
			g_byte_array_unref(v);
			ifs_msgcache_fulfill(ra->cache, ifs_msg_key(epoch, GPOINTER_TO_UINT(k)), NULL,
			                     0);
		}
	}
	g_hash_table_destroy(bs.writers);
	g_array_unref(claimed);
}

static void run_job(struct ifs_readahead *ra, struct job *j)
{
	char *raw = NULL;
	uint32_t uidvalidity = 0;
	guint start = 0;

	const guint max_messages = ra->bodies != NULL ? DISK_BATCH_MESSAGES : MEM_BATCH_MESSAGES;
	const uint64_t max_bytes = ra->bodies != NULL ? DISK_BATCH_BYTES : MEM_BATCH_BYTES;

	if (ifs_tree_epoch_folder(ra->tree, j->epoch, &raw, &uidvalidity) < 0)
		return;
	while (start < j->uids->len) {
		guint n = 0;
		uint64_t bytes = 0;
		/* Bodies are streamed to files or parsed one at a time, so this bounds latency
		 * (claims held), not memory. */
		while (start + n < j->uids->len && n < max_messages && bytes < max_bytes) {
			bytes += g_array_index(j->uids, struct ifs_uid_size, start + n).size;
			n++;
		}
		run_batch(ra, j->epoch, raw, uidvalidity,
		          &g_array_index(j->uids, struct ifs_uid_size, start), n);
		start += n;
	}
	g_free(raw);
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

/* ---- detection ---- */

struct ifs_readahead *ifs_readahead_new(struct imap_pool *pool, struct ifs_bodycache *bodies,
                                        struct ifs_msgcache *cache, struct ifs_tree *tree,
                                        unsigned window, uint64_t window_bytes)
{
	struct ifs_readahead *ra = g_new0(struct ifs_readahead, 1);

	ra->pool = pool;
	ra->bodies = bodies;
	ra->cache = cache;
	ra->tree = tree;
	ra->window = window;
	ra->window_bytes = window_bytes;
	g_mutex_init(&ra->lock);
	ra->streams = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	ra->jobs = g_async_queue_new();
	ra->worker = g_thread_new("imapfs-readahead", worker_main, ra);
	return ra;
}

void ifs_readahead_free(struct ifs_readahead *ra)
{
	struct job *j, *stop;

	if (ra == NULL)
		return;
	/* Drop queued work, then stop the worker after its current job. */
	while ((j = g_async_queue_try_pop(ra->jobs)) != NULL)
		job_free(j);
	stop = g_new0(struct job, 1);
	g_async_queue_push(ra->jobs, stop);
	g_thread_join(ra->worker);
	while ((j = g_async_queue_try_pop(ra->jobs)) != NULL)
		job_free(j);
	g_async_queue_unref(ra->jobs);
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

void ifs_readahead_note(struct ifs_readahead *ra, uint32_t epoch, uint32_t uid)
{
	GArray *after = g_array_new(FALSE, FALSE, sizeof(struct ifs_uid_size));
	uint32_t prev = 0;
	struct stream *s;
	struct job *j = NULL;
	guint pending = 0;

	if (ifs_tree_uids_around(ra->tree, epoch, uid, ra->window, &prev, after) < 0) {
		g_array_unref(after);
		return;
	}
	/* the byte bound of the window, counted from the reader's position */
	if (ra->window_bytes > 0) {
		uint64_t bytes = 0;
		for (guint i = 0; i < after->len; i++) {
			bytes += MIN(g_array_index(after, struct ifs_uid_size, i).size, G_MAXUINT32);
			if (bytes > ra->window_bytes && i > 0) {
				g_array_set_size(after, i);
				break;
			}
		}
	}
	g_mutex_lock(&ra->lock);
	s = g_hash_table_lookup(ra->streams, GUINT_TO_POINTER(epoch));
	if (s == NULL) {
		if (g_hash_table_size(ra->streams) >= MAX_STREAMS)
			forget_oldest(ra);
		s = g_new0(struct stream, 1);
		s->epoch = epoch;
		g_hash_table_insert(ra->streams, GUINT_TO_POINTER(epoch), s);
	}
	s->used = g_get_monotonic_time();
	if (uid != s->last_uid) {
		s->run = prev != 0 && prev == s->last_uid ? s->run + 1 : 1;
		/* a reader that jumped back starts a new walk */
		if (s->run == 1 && uid < s->last_uid)
			s->queued_upto = 0;
		s->last_uid = uid;
	}
	if (s->run >= 2 && after->len > 0) {
		/* Top up when less than half the window (as bounded above) is still queued ahead of
		 * the reader. */
		for (guint i = 0; i < after->len; i++)
			if (g_array_index(after, struct ifs_uid_size, i).uid <= s->queued_upto)
				pending++;
		if (pending < after->len / 2 + 1 &&
		    g_array_index(after, struct ifs_uid_size, after->len - 1).uid >
		        s->queued_upto) {
			j = g_new0(struct job, 1);
			j->epoch = epoch;
			j->uids = g_array_new(FALSE, FALSE, sizeof(struct ifs_uid_size));
			for (guint i = 0; i < after->len; i++) {
				struct ifs_uid_size u =
				    g_array_index(after, struct ifs_uid_size, i);
				if (u.uid > s->queued_upto)
					g_array_append_val(j->uids, u);
			}
			s->queued_upto =
			    g_array_index(after, struct ifs_uid_size, after->len - 1).uid;
		}
	}
	g_mutex_unlock(&ra->lock);
	g_array_unref(after);
	if (j != NULL) {
		g_debug("read-ahead: %u messages after UID %u", j->uids->len, uid);
		g_async_queue_push(ra->jobs, j);
	}
}

uint64_t ifs_readahead_stored(struct ifs_readahead *ra)
{
	return __atomic_load_n(&ra->stored, __ATOMIC_RELAXED);
}
