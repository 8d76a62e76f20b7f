/* notify.c — the kernel-invalidation worker (see notify.h). */
#include "notify.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "lowlevel.h"

/* notify.h spells inode numbers uint64_t so that it needs no libfuse; they are the same. */
_Static_assert(sizeof(fuse_ino_t) == sizeof(uint64_t), "fuse_ino_t is not 64 bits");

enum item_kind { ITEM_ENTRY, ITEM_DELETE, ITEM_INODE, ITEM_STOP };

struct item {
	enum item_kind kind;
	uint64_t ino;   /* parent for ITEM_ENTRY and ITEM_DELETE */
	uint64_t child; /* ITEM_DELETE */
	char *name;
};

struct ifs_notifier {
	struct fuse_session *se;
	GAsyncQueue *queue;
	GThread *thread;
};

static void item_free(struct item *it)
{
	g_free(it->name);
	g_free(it);
}

static gpointer worker(gpointer p)
{
	struct ifs_notifier *n = p;

	for (;;) {
		struct item *it = g_async_queue_pop(n->queue);
		int ret = 0;

		if (it->kind == ITEM_STOP) {
			item_free(it);
			break;
		}
		if (it->kind == ITEM_ENTRY)
			ret = fuse_lowlevel_notify_inval_entry(n->se, it->ino, it->name,
			                                       strlen(it->name));
		else if (it->kind == ITEM_DELETE) {
			ret = fuse_lowlevel_notify_delete(n->se, it->ino, it->child, it->name,
			                                  strlen(it->name));
			/* not the cached child (or busy): forgetting the name is what matters */
			if (ret < 0)
				ret = fuse_lowlevel_notify_inval_entry(n->se, it->ino, it->name,
				                                       strlen(it->name));
		} else
			ret = fuse_lowlevel_notify_inval_inode(n->se, it->ino, 0, 0);
		/* -ENOENT: the kernel did not have it cached, which is fine. */
		if (ret < 0 && ret != -ENOENT)
			g_debug("kernel invalidation of inode %llu failed: %s",
			        (unsigned long long)it->ino, g_strerror(-ret));
		item_free(it);
	}
	return NULL;
}

struct ifs_notifier *ifs_notifier_new(struct fuse_session *se)
{
	struct ifs_notifier *n = g_new0(struct ifs_notifier, 1);
	n->se = se;
	n->queue = g_async_queue_new_full((GDestroyNotify)item_free);
	n->thread = g_thread_new("imapfs-notify", worker, n);
	return n;
}

void ifs_notifier_free(struct ifs_notifier *n)
{
	struct item *stop;

	if (n == NULL)
		return;
	stop = g_new0(struct item, 1);
	stop->kind = ITEM_STOP;
	/* Jump the queue: pending invalidations are pointless once we are unmounting. */
	g_async_queue_push_front(n->queue, stop);
	g_thread_join(n->thread);
	g_async_queue_unref(n->queue);
	g_free(n);
}

/* Queue an item (n NULL: not mounted, nothing to tell). */
static void push(struct ifs_notifier *n, enum item_kind kind, uint64_t ino, uint64_t child,
                 const char *name)
{
	struct item *it;

	if (n == NULL)
		return;
	it = g_new0(struct item, 1);
	it->kind = kind;
	it->ino = ino;
	it->child = child;
	it->name = g_strdup(name);
	g_async_queue_push(n->queue, it);
}

void ifs_notify_inval_entry(struct ifs_notifier *n, uint64_t parent, const char *name)
{
	push(n, ITEM_ENTRY, parent, 0, name);
}

void ifs_notify_inval_inode(struct ifs_notifier *n, uint64_t ino)
{
	push(n, ITEM_INODE, ino, 0, NULL);
}

void ifs_notify_delete(struct ifs_notifier *n, uint64_t parent, uint64_t child, const char *name)
{
	push(n, ITEM_DELETE, parent, child, name);
}
