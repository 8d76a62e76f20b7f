/* LD_PRELOAD shim for TSan runs of imapfs: GLib's GMutex/GCond are futex-based and invisible to
 * ThreadSanitizer, so every GMutex-protected access looks racy.  Wrap them to tell TSan about
 * the happens-before edges (acquire after lock, release before unlock). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <glib.h>

void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

#define REAL(name) static __typeof__(name) *real_##name; if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

void g_mutex_lock(GMutex *m)
{
	REAL(g_mutex_lock);
	real_g_mutex_lock(m);
	__tsan_acquire(m);
}

gboolean g_mutex_trylock(GMutex *m)
{
	REAL(g_mutex_trylock);
	gboolean r = real_g_mutex_trylock(m);
	if (r)
		__tsan_acquire(m);
	return r;
}

void g_mutex_unlock(GMutex *m)
{
	REAL(g_mutex_unlock);
	__tsan_release(m);
	real_g_mutex_unlock(m);
}

void g_cond_wait(GCond *c, GMutex *m)
{
	REAL(g_cond_wait);
	__tsan_release(m);
	real_g_cond_wait(c, m);
	__tsan_acquire(m);
}

gboolean g_cond_wait_until(GCond *c, GMutex *m, gint64 end)
{
	REAL(g_cond_wait_until);
	__tsan_release(m);
	gboolean r = real_g_cond_wait_until(c, m, end);
	__tsan_acquire(m);
	return r;
}

void g_async_queue_push(GAsyncQueue *q, gpointer data)
{
	REAL(g_async_queue_push);
	__tsan_release(q);
	real_g_async_queue_push(q, data);
}

void g_async_queue_push_front(GAsyncQueue *q, gpointer data)
{
	REAL(g_async_queue_push_front);
	__tsan_release(q);
	real_g_async_queue_push_front(q, data);
}

gpointer g_async_queue_pop(GAsyncQueue *q)
{
	REAL(g_async_queue_pop);
	gpointer r = real_g_async_queue_pop(q);
	__tsan_acquire(q);
	return r;
}
