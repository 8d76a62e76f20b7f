/* quota.c — the mailbox quota behind statfs, asked for at most once per refresh (quota.h). */
#include "quota.h"

#include <errno.h>
#include <string.h>

#include "remote.h"

struct ifs_quota {
	GMutex lock; /* guards everything below; never held across network I/O */
	struct imap_pool *pool;
	gint64 refresh_us;
	gint64 asked_at;         /* g_get_monotonic_time() of the last question; 0: never */
	bool asking;             /* a GETQUOTAROOT is on its way (single-flight) */
	bool unsupported;        /* no QUOTA: never ask */
	struct imap_quota known; /* the last figures (zero until the first answer) */
};

struct ifs_quota *ifs_quota_new(struct imap_pool *pool, unsigned refresh_s)
{
	struct ifs_quota *q = g_new0(struct ifs_quota, 1);

	g_mutex_init(&q->lock);
	q->pool = pool;
	q->refresh_us = (gint64)refresh_s * G_USEC_PER_SEC;
	return q;
}

void ifs_quota_free(struct ifs_quota *q)
{
	if (q == NULL)
		return;
	g_mutex_clear(&q->lock);
	g_free(q);
}

/* Ask the server when the figures are due (lock held; dropped while asking). */
static void refresh_locked(struct ifs_quota *q)
{
	struct imap_quota now;
	gint64 t = g_get_monotonic_time();
	int ret;

	if (q->unsupported || q->asking || (q->asked_at != 0 && t - q->asked_at < q->refresh_us))
		return;
	q->asking = true;
	g_mutex_unlock(&q->lock);
	ret = ifs_remote_quota(q->pool, &now);
	g_mutex_lock(&q->lock);
	q->asking = false;
	q->asked_at = g_get_monotonic_time();
	if (ret == 0) {
		q->known = now;
	} else if (ret == -EOPNOTSUPP) {
		q->unsupported = true;
		memset(&q->known, 0, sizeof(q->known));
	} else if (ret == -ENOENT) {
		memset(&q->known, 0, sizeof(q->known)); /* the server refuses to say */
	}
	/* -EIO: could not ask; the last figures stay */
}

static uint64_t left(const struct imap_quota_resource *r)
{
	return r->usage < r->limit ? r->limit - r->usage : 0;
}

void ifs_quota_statfs(struct ifs_quota *q, struct statvfs *sv)
{
	struct imap_quota k;

	g_mutex_lock(&q->lock);
	refresh_locked(q);
	k = q->known;
	g_mutex_unlock(&q->lock);
	sv->f_bsize = 1024; /* RFC 9208: STORAGE counts units of 1024 octets */
	sv->f_frsize = 1024;
	sv->f_blocks = k.storage.present ? k.storage.limit : 0;
	sv->f_bfree = sv->f_bavail = k.storage.present ? left(&k.storage) : 0;
	sv->f_files = k.messages.present ? k.messages.limit : 0;
	sv->f_ffree = sv->f_favail = k.messages.present ? left(&k.messages) : 0;
}
