/* identity.c — the message ids the listings report, and which folder entries share one
 * (identity.h). */
#include "identity.h"

#include <stdbool.h>
#include <string.h>

#include "remote.h"

/* ---- one message's identity ---- */

static struct ifs_msg_ident *ident_take(char *email_id, char *thread_id, char *labels)
{
	struct ifs_msg_ident *ident = g_atomic_rc_box_new0(struct ifs_msg_ident);

	ident->email_id = email_id;
	ident->thread_id = thread_id;
	ident->labels = labels;
	return ident;
}

struct ifs_msg_ident *ifs_msg_ident_new(const char *email_id, const char *thread_id,
                                        char *const *labels)
{
	GString *lines = NULL;

	if (email_id == NULL)
		return NULL;
	if (labels != NULL) {
		lines = g_string_new(NULL);
		for (size_t i = 0; labels[i] != NULL; i++) {
			g_string_append(lines, labels[i]);
			g_string_append_c(lines, '\n');
		}
	}
	return ident_take(g_strdup(email_id), g_strdup(thread_id),
	                  lines != NULL ? g_string_free(lines, FALSE) : NULL);
}

struct ifs_msg_ident *ifs_msg_ident_new_raw(const char *email_id, const char *thread_id,
                                            const char *labels)
{
	if (email_id == NULL)
		return NULL;
	return ident_take(g_strdup(email_id), g_strdup(thread_id), g_strdup(labels));
}

struct ifs_msg_ident *ifs_msg_ident_ref(struct ifs_msg_ident *ident)
{
	return ident != NULL ? g_atomic_rc_box_acquire(ident) : NULL;
}

static void ident_clear(void *p)
{
	struct ifs_msg_ident *ident = p;

	g_free(ident->email_id);
	g_free(ident->thread_id);
	g_free(ident->labels);
}

void ifs_msg_ident_unref(struct ifs_msg_ident *ident)
{
	if (ident != NULL)
		g_atomic_rc_box_release_full(ident, ident_clear);
}

/* ---- the index ---- */

/* One folder entry of an id. */
struct entry {
	uint32_t epoch;
	uint32_t uid;
	uint64_t size;
	const char *raw_name; /* the folder life's (struct folder_life), which outlives it */
};

/* What the index holds of one folder life: its name and the ids its entries are under. */
struct folder_life {
	char *raw_name;
	GPtrArray *ids; /* char * (owned): the ids of this life's entries, once each */
};

struct ifs_identity {
	GMutex lock;
	GHashTable *by_id; /* char * id (owned) → GArray of struct entry */
	GHashTable *lives; /* GUINT_TO_POINTER(epoch) → struct folder_life * */
};

static void life_free(void *p)
{
	struct folder_life *life = p;

	g_free(life->raw_name);
	g_ptr_array_unref(life->ids);
	g_free(life);
}

struct ifs_identity *ifs_identity_new(void)
{
	struct ifs_identity *idx = g_new0(struct ifs_identity, 1);

	g_mutex_init(&idx->lock);
	idx->by_id =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_array_unref);
	idx->lives = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, life_free);
	return idx;
}

void ifs_identity_free(struct ifs_identity *idx)
{
	if (idx == NULL)
		return;
	g_hash_table_destroy(idx->by_id);
	g_hash_table_destroy(idx->lives);
	g_mutex_clear(&idx->lock);
	g_free(idx);
}

/* Take epoch's entries out of by_id (lock held); the life record stays, with no ids. */
static void remove_entries(struct ifs_identity *idx, uint32_t epoch, struct folder_life *life)
{
	for (guint i = 0; i < life->ids->len; i++) {
		const char *id = life->ids->pdata[i];
		GArray *entries = g_hash_table_lookup(idx->by_id, id);
		guint w = 0;
		if (entries == NULL)
			continue;
		for (guint r = 0; r < entries->len; r++) {
			struct entry e = g_array_index(entries, struct entry, r);
			if (e.epoch != epoch)
				g_array_index(entries, struct entry, w++) = e;
		}
		g_array_set_size(entries, w);
		if (w == 0)
			g_hash_table_remove(idx->by_id, id);
	}
	g_ptr_array_set_size(life->ids, 0);
}

static void set_listing(struct ifs_identity *idx, uint32_t epoch, const char *raw_name,
                        GArray *msgs, bool replace)
{
	struct folder_life *life;

	g_mutex_lock(&idx->lock);
	life = g_hash_table_lookup(idx->lives, GUINT_TO_POINTER(epoch));
	if (life != NULL && !replace) {
		g_mutex_unlock(&idx->lock);
		return;
	}
	if (life == NULL) {
		life = g_new0(struct folder_life, 1);
		life->raw_name = g_strdup(raw_name);
		life->ids = g_ptr_array_new_with_free_func(g_free);
		g_hash_table_insert(idx->lives, GUINT_TO_POINTER(epoch), life);
	} else {
		remove_entries(idx, epoch, life);
	}
	for (guint i = 0; msgs != NULL && i < msgs->len; i++) {
		const struct ifs_msg_attr *m = &g_array_index(msgs, struct ifs_msg_attr, i);
		struct entry e = {epoch, m->uid, m->size, life->raw_name};
		GArray *entries;
		if (m->ident == NULL)
			continue;
		entries = g_hash_table_lookup(idx->by_id, m->ident->email_id);
		if (entries == NULL) {
			entries = g_array_new(FALSE, FALSE, sizeof(struct entry));
			g_hash_table_insert(idx->by_id, g_strdup(m->ident->email_id), entries);
		}
		/* one id may stand for two UIDs of one folder (a server's duplicate): both kept,
		 * the id recorded once */
		if (entries->len == 0 ||
		    g_array_index(entries, struct entry, entries->len - 1).epoch != epoch)
			g_ptr_array_add(life->ids, g_strdup(m->ident->email_id));
		g_array_append_val(entries, e);
	}
	g_mutex_unlock(&idx->lock);
}

void ifs_identity_set_listing(struct ifs_identity *idx, uint32_t epoch, const char *raw_name,
                              GArray *msgs)
{
	set_listing(idx, epoch, raw_name, msgs, true);
}

void ifs_identity_add_saved(struct ifs_identity *idx, uint32_t epoch, const char *raw_name,
                            GArray *msgs)
{
	set_listing(idx, epoch, raw_name, msgs, false);
}

void ifs_identity_drop(struct ifs_identity *idx, uint32_t epoch)
{
	struct folder_life *life;

	g_mutex_lock(&idx->lock);
	life = g_hash_table_lookup(idx->lives, GUINT_TO_POINTER(epoch));
	if (life != NULL) {
		remove_entries(idx, epoch, life);
		g_hash_table_remove(idx->lives, GUINT_TO_POINTER(epoch));
	}
	g_mutex_unlock(&idx->lock);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->raw_name, y->raw_name);

	if (c != 0)
		return c;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

unsigned ifs_identity_aliases(struct ifs_identity *idx, const char *email_id, uint64_t size,
                              GArray *out)
{
	GArray *entries, *same;
	unsigned n = 0;

	g_mutex_lock(&idx->lock);
	entries = g_hash_table_lookup(idx->by_id, email_id);
	same = g_array_new(FALSE, FALSE, sizeof(struct entry));
	for (guint i = 0; entries != NULL && i < entries->len; i++) {
		struct entry e = g_array_index(entries, struct entry, i);
		if (e.size == size)
			g_array_append_val(same, e);
	}
	g_array_sort(same, cmp_entry);
	for (guint i = 0; i < same->len; i++) {
		const struct entry *e = &g_array_index(same, struct entry, i);
		struct ifs_alias a = {e->epoch, e->uid};
		g_array_append_val(out, a);
		n++;
	}
	g_mutex_unlock(&idx->lock);
	g_array_unref(same);
	return n;
}

bool ifs_identity_any(struct ifs_identity *idx)
{
	bool any;

	g_mutex_lock(&idx->lock);
	any = g_hash_table_size(idx->by_id) > 0;
	g_mutex_unlock(&idx->lock);
	return any;
}
