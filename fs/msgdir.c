/* msgdir.c — a message directory's files from the pieces that know them (msgdir.h). */
#include "msgdir.h"

#include <errno.h>
#include <string.h>

static bool is_header_view(unsigned v)
{
	return v < MIME_VIEW_BODY;
}

static bool is_view_slot(unsigned slot)
{
	return slot >= IFS_SLOT_VIEW0 && slot < IFS_SLOT_VIEW0 + MIME_VIEW_COUNT;
}

static size_t n_attachments(const struct ifs_cached_msg *m)
{
	size_t n = m->attachments != NULL ? m->attachments->len : 0;
	return n < IFS_MAX_ATTACHMENTS ? n : IFS_MAX_ATTACHMENTS;
}

static const struct ifs_attachment *attachment(const struct ifs_cached_msg *m, unsigned slot)
{
	size_t k = slot - IFS_SLOT_ATT0;
	return k < n_attachments(m) ? &g_array_index(m->attachments, struct ifs_attachment, k)
	                            : NULL;
}

/* Does entry m know view v (present or absent)? */
static bool knows_view(const struct ifs_cached_msg *m, unsigned v)
{
	return m->piece == IFS_PIECE_WHOLE || (m->views_known & (1u << v)) != 0;
}

static void put(struct ifs *fs, const struct ifs_cached_msg **m)
{
	ifs_msgcache_put(fs->cache, *m);
	*m = NULL;
}

/* Is ref's message read whole for its texts (a small one, piece.h)? */
static bool small_whole(struct ifs *fs, const struct ifs_msg_ref *ref)
{
	return ifs_loader_reads_whole(fs, ref->key_epoch, ref->key_uid, ref->listed_size,
	                              IFS_PIECE_TEXTS);
}

/* The entry that answers slot — for its bytes when bytes, else for whether it exists and its
 * size — loading the pieces msgdir.h's table names, in that order. */
static int answer(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned slot, bool bytes,
                  const struct ifs_cached_msg **m_r)
{
	const struct ifs_cached_msg *m = NULL;
	int ret;

	*m_r = NULL;
	if (slot == IFS_SLOT_EML) {
		if (!bytes) {
			ret = ifs_loader_get(fs, ref, IFS_PIECE_OUTLINE, &m, NULL);
			if (ret < 0)
				return ret;
			if (m->piece == IFS_PIECE_WHOLE || m->eml_size_known) {
				*m_r = m;
				return 0;
			}
			put(fs, &m); /* the server's RFC822.SIZE is wrong: only the bytes tell */
		}
		return ifs_loader_get(fs, ref, IFS_PIECE_WHOLE, m_r, NULL);
	}
	if (is_view_slot(slot) && is_header_view(slot - IFS_SLOT_VIEW0)) {
		ret = ifs_loader_get(fs, ref, IFS_PIECE_OUTLINE, &m, NULL);
		if (ret < 0)
			return ret;
		if (knows_view(m, slot - IFS_SLOT_VIEW0)) {
			*m_r = m;
			return 0;
		}
		put(fs, &m); /* the header alone does not decide it (mime.h) */
		return ifs_loader_get(fs, ref, IFS_PIECE_PARTS, m_r, NULL);
	}
	/* body and body.html of a small message: straight to TEXTS, which reads it whole */
	if (is_view_slot(slot) && small_whole(fs, ref))
		return ifs_loader_get(fs, ref, IFS_PIECE_TEXTS, m_r, NULL);
	ret = ifs_loader_get(fs, ref, IFS_PIECE_PARTS, &m, NULL);
	if (ret < 0)
		return ret;
	if (m->piece == IFS_PIECE_WHOLE || slot == IFS_SLOT_ATTDIR) {
		*m_r = m;
		return 0;
	}
	if (is_view_slot(slot)) {
		unsigned v = slot - IFS_SLOT_VIEW0;
		if (knows_view(m, v) || (v == MIME_VIEW_BODY_HTML && !m->has_html)) {
			*m_r = m;
			return 0;
		}
		put(fs, &m);
		return ifs_loader_get(fs, ref, IFS_PIECE_TEXTS, m_r, NULL);
	}
	if (slot >= IFS_SLOT_ATT0) {
		const struct ifs_attachment *a = attachment(m, slot);
		if (a == NULL || a->src.kind == MIME_DATA_HERE || (!bytes && a->src.size_known)) {
			*m_r = m;
			return 0;
		}
		put(fs, &m);
		return ifs_loader_get(fs, ref, IFS_PIECE_ATT0 + (slot - IFS_SLOT_ATT0), m_r, NULL);
	}
	put(fs, &m);
	return -ENOENT; /* flags and the directories are not files of pieces */
}

/* The bytes of slot in entry m, or NULL when m has them not (or the file does not exist). */
static const struct ifs_blob *blob_of(const struct ifs_cached_msg *m, unsigned slot)
{
	const struct ifs_blob *b = NULL;

	if (m->piece >= IFS_PIECE_ATT0) {
		b = &m->raw;
	} else if (slot == IFS_SLOT_EML) {
		b = m->piece == IFS_PIECE_WHOLE ? &m->raw : NULL;
	} else if (is_view_slot(slot)) {
		if (knows_view(m, slot - IFS_SLOT_VIEW0))
			b = &m->views[slot - IFS_SLOT_VIEW0];
	} else if (slot >= IFS_SLOT_ATT0) {
		const struct ifs_attachment *a = attachment(m, slot);
		if (a != NULL && (m->piece == IFS_PIECE_WHOLE || a->src.kind == MIME_DATA_HERE))
			b = &a->data;
	}
	return b != NULL && ifs_blob_present(b) ? b : NULL;
}

/* What entry m (answer()'s for slot) says of slot's size: 0, -ENOENT (no such file). */
static int size_in(const struct ifs_cached_msg *m, unsigned slot, uint64_t *size_r)
{
	const struct ifs_blob *b = blob_of(m, slot);

	if (b != NULL) {
		*size_r = ifs_blob_size(b);
		return 0;
	}
	if (m->piece >= IFS_PIECE_ATT0)
		return -ENOENT;
	if (slot == IFS_SLOT_EML && m->eml_size_known) {
		*size_r = m->eml_size;
		return 0;
	}
	if (slot >= IFS_SLOT_ATT0 && m->piece != IFS_PIECE_WHOLE) {
		const struct ifs_attachment *a = attachment(m, slot);
		if (a != NULL && a->src.size_known) {
			*size_r = a->src.size;
			return 0;
		}
	}
	return -ENOENT;
}

int ifs_msgdir_size(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned slot,
                    uint64_t *size_r)
{
	const struct ifs_cached_msg *m = NULL;
	int ret;

	if (slot >= IFS_SLOT_ATT0 && ifs_loader_get(fs, ref, IFS_PIECE_PARTS, &m, NULL) == 0) {
		/* an attachment's size without its bytes, where the server's BINARY.SIZE holds */
		const struct ifs_attachment *a = attachment(m, slot);
		bool done = m->piece != IFS_PIECE_WHOLE && a != NULL && !a->src.size_known &&
		            a->src.kind != MIME_DATA_HERE &&
		            ifs_loader_checked_size(fs, ref, m, a, size_r) == 0;
		put(fs, &m);
		if (done)
			return 0;
	}
	ret = answer(fs, ref, slot, false, &m);
	if (ret == 0)
		ret = size_in(m, slot, size_r);
	ifs_msgcache_put(fs->cache, m);
	return ret;
}

int ifs_msgdir_bytes(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned slot,
                     const struct ifs_cached_msg **m_r, const struct ifs_blob **b_r)
{
	int ret = answer(fs, ref, slot, true, m_r);

	if (ret < 0)
		return ret;
	*b_r = blob_of(*m_r, slot);
	if (*b_r == NULL) {
		put(fs, m_r);
		return -ENOENT;
	}
	return 0;
}

int ifs_msgdir_bytes_if_held(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned slot,
                             const struct ifs_cached_msg **m_r, const struct ifs_blob **b_r)
{
	static const unsigned order[] = {IFS_PIECE_WHOLE, IFS_PIECE_OUTLINE, IFS_PIECE_PARTS,
	                                 IFS_PIECE_TEXTS};

	for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
		uint64_t key = ifs_piece_key(ref->key_epoch, ref->key_uid, order[i]);
		if (ifs_msgcache_peek(fs->cache, key, false, m_r) < 0)
			continue;
		*b_r = blob_of(*m_r, slot);
		if (*b_r != NULL)
			return 0;
		put(fs, m_r);
	}
	return -ENOENT;
}

static void add_entry(GArray *entries, unsigned slot, const char *name, uint64_t size)
{
	struct ifs_msgdir_entry e = {slot, g_strdup(name), size};
	g_array_append_val(entries, e);
}

/* `labels` and `thread` (ops.c serves them from the listing) when the server gave them. */
static void add_identity_entries(struct ifs *fs, const struct ifs_msg_ref *ref, GArray *entries)
{
	struct ifs_msg_info info;

	if (ifs_tree_msg_info(fs->tree, ref->epoch, ref->uid, false, &info) < 0)
		return;
	if (info.ident != NULL && info.ident->labels != NULL)
		add_entry(entries, IFS_SLOT_LABELS, "labels", IFS_SIZE_UNKNOWN);
	if (info.ident != NULL && info.ident->thread_id != NULL)
		add_entry(entries, IFS_SLOT_THREAD, "thread", IFS_SIZE_UNKNOWN);
	ifs_msg_info_clear(&info);
}

/* slot's size if m knows it, else if texts (nullable: the TEXTS entry, when held) does. */
static uint64_t listed_size(const struct ifs_cached_msg *m, const struct ifs_cached_msg *outline,
                            const struct ifs_cached_msg *texts, unsigned slot)
{
	uint64_t size;
	if (size_in(m, slot, &size) == 0)
		return size;
	if (outline != NULL && size_in(outline, slot, &size) == 0)
		return size;
	if (texts != NULL && size_in(texts, slot, &size) == 0)
		return size;
	return IFS_SIZE_UNKNOWN;
}

int ifs_msgdir_list(struct ifs *fs, const struct ifs_msg_ref *ref, bool attdir,
                    GArray **entries_r)
{
	const struct ifs_cached_msg *m = NULL, *outline = NULL, *texts = NULL;
	GArray *entries;
	int ret;

	/* PARTS decides every name (or the whole message, when it answers).  A small message
	 * (piece.h) is read whole when its directory is listed: who lists a message directory
	 * (grep -r, find, tar) reads or stats its files next, and one whole fetch costs less
	 * than PARTS then TEXTS; the attachments directory alone stays PARTS (listing every
	 * attachments directory of a folder pays for MIME headers only).  For the same reason
	 * the read-ahead is told of a walk of texts when a message directory is listed. */
	ret = ifs_loader_get_for(
	    fs, ref, !attdir && small_whole(fs, ref) ? IFS_PIECE_TEXTS : IFS_PIECE_PARTS,
	    attdir ? IFS_PIECE_PARTS : IFS_PIECE_TEXTS, &m, NULL);
	if (ret < 0)
		return ret;
	/* body's size, when a walk over body has read it ahead (then the kernel needs no
	 * LOOKUP of it, and ops.c can push it): never a fetch here: a walk over subject would pay
	 * for it */
	if (!attdir && m->piece != IFS_PIECE_WHOLE) {
		if (ifs_loader_piece_if_held(fs, ref, IFS_PIECE_TEXTS, &texts) < 0)
			texts = NULL;
		/* the header files' sizes from the outline PARTS was built on (held: it was
		 * loaded just now), so the kernel needs no LOOKUP of them either */
		if (ifs_loader_piece_if_held(fs, ref, IFS_PIECE_OUTLINE, &outline) < 0)
			outline = NULL;
	}
	if (attdir && n_attachments(m) == 0) {
		put(fs, &m);
		return -ENOENT;
	}
	entries = g_array_new(FALSE, TRUE, sizeof(struct ifs_msgdir_entry));
	if (attdir) {
		for (unsigned i = 0; i < n_attachments(m); i++) {
			unsigned slot = IFS_SLOT_ATT0 + i;
			add_entry(entries, slot, attachment(m, slot)->name,
			          listed_size(m, outline, texts, slot));
		}
	} else {
		add_entry(entries, IFS_SLOT_EML, "message.eml",
		          listed_size(m, outline, texts, IFS_SLOT_EML));
		for (unsigned v = 0; v < MIME_VIEW_COUNT; v++) {
			unsigned slot = IFS_SLOT_VIEW0 + v;
			bool exists;
			if (knows_view(m, v))
				exists = blob_of(m, slot) != NULL;
			else /* body always exists (mime.h); body.html as PARTS says */
				exists = v == MIME_VIEW_BODY || (v == MIME_VIEW_BODY_HTML && m->has_html);
			if (exists)
				add_entry(entries, slot, mime_view_name((enum mime_view)v),
				          listed_size(m, outline, texts, slot));
		}
		add_entry(entries, IFS_SLOT_FLAGS, "flags", IFS_SIZE_UNKNOWN);
		add_identity_entries(fs, ref, entries);
		if (n_attachments(m) > 0)
			add_entry(entries, IFS_SLOT_ATTDIR, "attachments", 0);
	}
	put(fs, &m);
	if (texts != NULL)
		put(fs, &texts);
	if (outline != NULL)
		put(fs, &outline);
	*entries_r = entries;
	return 0;
}

void ifs_msgdir_entries_free(GArray *entries)
{
	if (entries == NULL)
		return;
	for (guint i = 0; i < entries->len; i++)
		g_free(g_array_index(entries, struct ifs_msgdir_entry, i).name);
	g_array_unref(entries);
}

int ifs_msgdir_attachment_slot(struct ifs *fs, const struct ifs_msg_ref *ref, const char *name,
                               unsigned *slot_r)
{
	const struct ifs_cached_msg *m = NULL;
	int ret = ifs_loader_get(fs, ref, IFS_PIECE_PARTS, &m, NULL);

	if (ret < 0)
		return ret;
	ret = -ENOENT;
	for (unsigned i = 0; i < n_attachments(m); i++) {
		if (strcmp(attachment(m, IFS_SLOT_ATT0 + i)->name, name) == 0) {
			*slot_r = IFS_SLOT_ATT0 + i;
			ret = 0;
			break;
		}
	}
	put(fs, &m);
	return ret;
}
