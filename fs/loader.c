/* loader.c — (message, piece) to a cache entry: memory, disk, server, decoding (loader.h). */
#include "loader.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "message.h"
#include "remote.h"
#include "structure.h"
#include "tree.h"

/* Who the operation this thread is running serves (ifs_msgcache_get's requester): ops.c sets
 * it at the start of every operation. */
__thread uint64_t ifs_cur_requester;

/* A piece set's bytes beyond this are not kept as one entry: such a message is read whole
 * (its text parts alone are this big). */
#define MAX_SET_BYTES (64u * 1024 * 1024)
/* Requests pipelined in one read-ahead round trip. */
#define PREFETCH_BATCH 512

/* Messages whose pieces cannot stand for them, this mount (key of their WHOLE piece).  The
 * disk cache remembers them across mounts (IFS_PS_WHOLE in their OUTLINE or PARTS piece). */
static GMutex whole_lock;
static GHashTable *whole_only;

static bool is_whole_only(uint64_t key)
{
	bool r;

	g_mutex_lock(&whole_lock);
	r = whole_only != NULL && g_hash_table_contains(whole_only, &key);
	g_mutex_unlock(&whole_lock);
	return r;
}

/* Pieces the read-ahead stored (stats); atomic. */
static uint64_t n_prefetched;

uint64_t ifs_loader_prefetched_count(void)
{
	return __atomic_load_n(&n_prefetched, __ATOMIC_RELAXED);
}

static void remember_whole_only(const struct ifs_msg_ref *ref, const char *why)
{
	uint64_t *k = g_new(uint64_t, 1);

	*k = ifs_msg_key(ref->key_epoch, ref->key_uid);
	g_debug("UID %u of %s is read whole: %s", ref->key_uid, ref->raw_name, why);
	g_mutex_lock(&whole_lock);
	if (whole_only == NULL)
		whole_only = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	g_hash_table_add(whole_only, k);
	g_mutex_unlock(&whole_lock);
}

uint64_t ifs_loader_whole_only_count(void)
{
	uint64_t n;

	g_mutex_lock(&whole_lock);
	n = whole_only != NULL ? g_hash_table_size(whole_only) : 0;
	g_mutex_unlock(&whole_lock);
	return n;
}

/* ---- one message in several folders (identity.h) ---- */

/* Does the folder entry (epoch, uid) of folder raw_name / uidvalidity hold its message: the
 * whole message or its outline (every other piece is read after it), in memory or on disk,
 * or being fetched? */
static bool entry_holds(struct ifs *fs, uint32_t epoch, uint32_t uid, const char *raw_name,
                        uint32_t uidvalidity)
{
	static const unsigned pieces[] = {IFS_PIECE_WHOLE, IFS_PIECE_OUTLINE};

	for (unsigned i = 0; i < G_N_ELEMENTS(pieces); i++) {
		const struct ifs_cached_msg *m;
		if (ifs_msgcache_peek(fs->cache, ifs_piece_key(epoch, uid, pieces[i]), false, &m) ==
		    0) {
			ifs_msgcache_put(fs->cache, m);
			return true;
		}
		if (fs->bodies != NULL &&
		    (ifs_bodycache_contains_piece(fs->bodies, raw_name, uidvalidity, uid,
		                                  pieces[i]) ||
		     ifs_bodycache_claimed(fs->bodies, raw_name, uidvalidity, uid, pieces[i])))
			return true;
	}
	return false;
}

/* The entry of email_id (size bytes) other than (epoch, uid) that holds the message, first in
 * the index's order (identity.h): 0 and *alias_r, *raw_name_r (new), *uidvalidity_r; -ENOENT
 * when no other entry holds it.  An entry need not be listed now (a listing saved by an
 * earlier mount, a message expunged from one of its folders since): what its keys hold is
 * the message all the same, as cache entries never change for their key and the id names
 * the content; a folder life that ended has its entries dropped from every cache. */
static int holding_alias(struct ifs *fs, const char *email_id, uint64_t size, uint32_t epoch,
                         uint32_t uid, struct ifs_alias *alias_r, char **raw_name_r,
                         uint32_t *uidvalidity_r)
{
	GArray *aliases = g_array_new(FALSE, FALSE, sizeof(struct ifs_alias));
	int ret = -ENOENT;

	ifs_identity_aliases(fs->identity, email_id, size, aliases);
	for (guint i = 0; aliases->len > 1 && i < aliases->len && ret < 0; i++) {
		struct ifs_alias a = g_array_index(aliases, struct ifs_alias, i);
		char *raw = NULL;
		uint32_t uv = 0;
		if (a.epoch == epoch && a.uid == uid)
			continue;
		if (ifs_tree_epoch_folder(fs->tree, a.epoch, &raw, &uv) == 0 &&
		    entry_holds(fs, a.epoch, a.uid, raw, uv)) {
			*alias_r = a;
			*raw_name_r = g_steal_pointer(&raw);
			*uidvalidity_r = uv;
			ret = 0;
		}
		g_free(raw);
	}
	g_array_unref(aliases);
	return ret;
}

/* ref's message is also listed elsewhere under the same id: read it through the entry that
 * holds it already, so that it is fetched and stored once.  When ref's own entry holds it, or
 * none does, ref stays as it is (the read-ahead of ref's folder stores under ref's keys, and
 * a later reader of another entry then finds it here).  The choice among several holders is
 * the index's order, which does not depend on this mount's history. */
static void read_through_alias(struct ifs *fs, const char *email_id, uint64_t size,
                               struct ifs_msg_ref *ref)
{
	struct ifs_alias a;
	char *raw = NULL;
	uint32_t uv;

	if (entry_holds(fs, ref->key_epoch, ref->key_uid, ref->raw_name, ref->uidvalidity))
		return;
	if (holding_alias(fs, email_id, size, ref->key_epoch, ref->key_uid, &a, &raw, &uv) < 0) {
		g_debug("UID %u of %s (id %s): no other folder holds it", ref->key_uid,
		        ref->raw_name, email_id);
		return;
	}
	g_debug("UID %u of %s (id %s) is read as UID %u of %s", ref->key_uid, ref->raw_name,
	        email_id, a.uid, raw);
	g_free(ref->raw_name);
	ref->raw_name = raw;
	ref->uidvalidity = uv;
	ref->key_epoch = a.epoch;
	ref->key_uid = a.uid;
}

bool ifs_loader_held_elsewhere(struct ifs *fs, uint32_t epoch, uint32_t uid, uint32_t *key_epoch_r,
                               uint32_t *key_uid_r, char **raw_name_r, uint32_t *uidvalidity_r)
{
	struct ifs_msg_info info;
	struct ifs_alias a;
	char *raw = NULL;
	uint32_t uv = 0;
	bool held = false;

	if (fs->identity == NULL || !ifs_identity_any(fs->identity) ||
	    ifs_tree_msg_info(fs->tree, epoch, uid, false, &info) < 0)
		return false;
	if (info.ident != NULL)
		held = holding_alias(fs, info.ident->email_id, info.size,
		                     ifs_tree_base_epoch(fs->tree, epoch), uid, &a, &raw, &uv) == 0;
	if (held && key_epoch_r != NULL) {
		*key_epoch_r = a.epoch;
		*key_uid_r = a.uid;
		*raw_name_r = g_steal_pointer(&raw);
		*uidvalidity_r = uv;
	}
	g_free(raw);
	ifs_msg_info_clear(&info);
	return held;
}

int ifs_msg_ref_init(struct ifs *fs, uint32_t epoch, uint32_t uid, struct ifs_msg_ref *ref_r)
{
	struct ifs_msg_info info;
	struct ifs_msg_ident *ident;
	int ret;

	memset(ref_r, 0, sizeof(*ref_r));
	ret = ifs_tree_msg_info(fs->tree, epoch, uid, false, &info);
	if (ret < 0)
		return ret;
	ref_r->listed_size = info.size;
	ident = g_steal_pointer(&info.ident);
	ifs_msg_info_clear(&info);
	ret = ifs_tree_epoch_folder(fs->tree, epoch, &ref_r->raw_name, &ref_r->uidvalidity);
	if (ret < 0)
		return ret;
	ref_r->epoch = epoch;
	/* a search result's message is its folder's: one cache entry, one fetch */
	ref_r->key_epoch = ifs_tree_base_epoch(fs->tree, epoch);
	ref_r->uid = ref_r->key_uid = uid;
	if (ident != NULL && fs->identity != NULL)
		read_through_alias(fs, ident->email_id, ref_r->listed_size, ref_r);
	ifs_msg_ident_unref(ident);
	return 0;
}

void ifs_msg_ref_clear(struct ifs_msg_ref *ref)
{
	g_clear_pointer(&ref->raw_name, g_free);
}

/* ---- the whole message ---- */

/* Streams one body into a disk cache writer. */
struct writer_sink {
	struct ifs_bodycache_writer *w;
	uint32_t uid;
	bool done;
};

static int ws_begin(void *p, uint32_t uid, uint64_t size)
{
	struct writer_sink *ws = p;
	if (uid != ws->uid)
		return 1;
	ws->done = false;
	/* a retry on a fresh connection starts the body again */
	return ifs_bodycache_writer_rewind(ws->w);
}

static int ws_data(void *p, const void *buf, size_t len)
{
	struct writer_sink *ws = p;
	return ifs_bodycache_writer_write(ws->w, buf, len);
}

static int ws_end(void *p, uint32_t uid)
{
	struct writer_sink *ws = p;
	ws->done = true;
	return 0;
}

/* The message from the disk cache, fetching it into the cache first when absent (waiting for
 * a read-ahead or another reader already fetching it).  *local_r: the failure is the disk
 * cache's (the caller may still fetch into memory), not the server's. */
static int body_from_disk(struct ifs *fs, const struct ifs_msg_ref *ref, int *fd_r,
                          uint64_t *offset_r, uint64_t *size_r, bool *local_r)
{
	struct ifs_bodycache_writer *w = NULL;
	struct writer_sink ws = {NULL, ref->key_uid, false};
	struct imap_body_sink sink = {ws_begin, ws_data, ws_end, &ws};
	char set[16];
	int ret;

	*local_r = true;
	*offset_r = 0;
	ret = ifs_bodycache_get(fs->bodies, ref->raw_name, ref->uidvalidity, ref->key_uid, true,
	                        fd_r, offset_r, size_r, &w);
	if (ret == IFS_BODYCACHE_HIT)
		return 0;
	if (ret < 0)
		return ret;
	ws.w = w;
	g_snprintf(set, sizeof(set), "%u", ref->key_uid);
	ret = ifs_remote_fetch_bodies(fs->pool, ref->raw_name, ref->uidvalidity, set, &sink);
	if (ret == 0 && !ws.done)
		ret = -ENOENT; /* the server sent no body: expunged */
	if (ret < 0) {
		*local_r = false;
		ifs_bodycache_writer_abort(w);
		return ret;
	}
	ret = ifs_bodycache_writer_commit(w, fd_r, size_r);
	if (ret == -ESTALE)
		*local_r = false;
	return ret;
}

static int load_whole(struct ifs *fs, const struct ifs_msg_ref *ref, struct ifs_cached_msg *msg)
{
	uint64_t size = 0;
	bool done = false;
	int ret = 0;

	if (fs->bodies != NULL) {
		int fd = -1;
		uint64_t offset = 0;
		bool local = false;
		ret = body_from_disk(fs, ref, &fd, &offset, &size, &local);
		if (ret == 0) {
			ret = ifs_message_from_file(fd, offset, size, fs->bodies, msg);
			done = true;
		} else if (!local) {
			done = true;
		} else {
			g_warning("disk cache failed (%s); fetching UID %u of %s into memory",
			          g_strerror(-ret), ref->key_uid, ref->raw_name);
		}
	}
	if (!done) {
		GBytes *raw = NULL;
		ret =
		    ifs_remote_fetch(fs->pool, ref->raw_name, ref->uidvalidity, ref->key_uid, &raw);
		if (ret == 0) {
			size = g_bytes_get_size(raw);
			ret = ifs_message_from_bytes(raw, msg);
			g_bytes_unref(raw);
		}
	}
	/* Only worth a debug line: st_size always comes from the fetched bytes. */
	if (ret == 0 && ref->listed_size != size)
		g_debug("UID %u of %s: RFC822.SIZE %llu but %llu bytes fetched", ref->key_uid,
		        ref->raw_name, (unsigned long long)ref->listed_size,
		        (unsigned long long)size);
	return ret;
}

/* ---- collecting the answers of piece requests into piece sets ---- */

struct req_acc {
	GHashTable *set;                   /* answers so far (piece.h names) */
	const struct ifs_piece_item *items;
	unsigned n_items;
	bool *got;                         /* per item: answered */
	unsigned n_got;
	bool want_structure, got_structure;
	bool complete;                     /* everything asked for came */
};

struct acc_sink {
	struct req_acc *reqs;
	unsigned n;
	unsigned cur_req, cur_item;
	GByteArray *cur;
	/* called once per request when everything it asked for has come */
	void (*complete)(void *ctx, unsigned req);
	void *ctx;
};

static void acc_check_complete(struct acc_sink *as, unsigned req)
{
	struct req_acc *r = &as->reqs[req];

	if (!r->complete && r->n_got == r->n_items && (!r->want_structure || r->got_structure)) {
		r->complete = true;
		if (as->complete != NULL)
			as->complete(as->ctx, req);
	}
}

static void acc_got(struct acc_sink *as, unsigned req, unsigned item)
{
	struct req_acc *r = &as->reqs[req];

	if (!r->got[item]) {
		r->got[item] = true;
		r->n_got++;
	}
	acc_check_complete(as, req);
}

static int acc_structure(void *p, unsigned req, const struct imap_part *root, int err)
{
	struct acc_sink *as = p;
	struct req_acc *r;

	if (req >= as->n)
		return 0;
	r = &as->reqs[req];
	if (root != NULL) {
		char *text = imap_bodystructure_format(root);
		GBytes *b = g_bytes_new_take(text, strlen(text));
		ifs_pieceset_put(r->set, IFS_PS_STRUCTURE, NULL, b);
		g_bytes_unref(b);
	} else {
		/* advisory, and broken: this message is read whole (remembered with the outline) */
		GBytes *b = g_bytes_new_static("BODYSTRUCTURE does not parse", 28);
		ifs_pieceset_put(r->set, IFS_PS_WHOLE, NULL, b);
		g_bytes_unref(b);
	}
	r->got_structure = true;
	acc_check_complete(as, req);
	return 0;
}

static int acc_size(void *p, unsigned req, unsigned item, uint64_t size)
{
	struct acc_sink *as = p;

	if (req >= as->n || item >= as->reqs[req].n_items)
		return 0;
	/* A claim, checked before st_size comes from it (ifs_loader_checked_size): Dovecot 2.3.19
	 * answered 629289 for a base64 part whose BINARY[] is 716800 bytes. */
	ifs_pieceset_put_number(as->reqs[req].set, "binary-size",
	                        as->reqs[req].items[item].item.section, size);
	acc_got(as, req, item);
	return 0;
}

static int acc_begin(void *p, unsigned req, unsigned item, uint64_t size)
{
	struct acc_sink *as = p;

	if (req >= as->n || item >= as->reqs[req].n_items)
		return 1;
	if (size > MAX_SET_BYTES)
		return -EFBIG;
	as->cur_req = req;
	as->cur_item = item;
	/* a retry on a fresh connection delivers it again */
	g_byte_array_set_size(as->cur, 0);
	return 0;
}

static int acc_data(void *p, const void *buf, size_t len)
{
	struct acc_sink *as = p;

	if ((uint64_t)as->cur->len + len > MAX_SET_BYTES)
		return -EFBIG;
	g_byte_array_append(as->cur, buf, (guint)len);
	return 0;
}

static int acc_end(void *p, unsigned req, unsigned item)
{
	struct acc_sink *as = p;
	struct req_acc *r;
	const struct ifs_piece_item *it;

	if (req >= as->n || item >= as->reqs[req].n_items)
		return 0;
	r = &as->reqs[req];
	it = &r->items[item];
	switch (it->role) {
	case IFS_ROLE_STORE: {
		GBytes *b = g_bytes_new(as->cur->data, as->cur->len);
		if (it->item.kind == IMAP_ITEM_HEADER && it->item.section[0] == '\0')
			ifs_pieceset_put(r->set, IFS_PS_HEADER, NULL, b);
		else
			ifs_pieceset_put(r->set, it->prefix, it->item.section, b);
		g_bytes_unref(b);
		break;
	}
	case IFS_ROLE_SIZE_CHECK: {
		/* BODY[s]<n-1.2>: one byte back means exactly n; n = 0: none back */
		bool exact = it->claimed > 0 ? as->cur->len == 1 : as->cur->len == 0;
		if (exact && it->item.section[0] == '\0')
			ifs_pieceset_put_number(r->set, IFS_PS_EML_SIZE, NULL, it->claimed);
		else if (exact)
			ifs_pieceset_put_number(r->set, "size", it->item.section, it->claimed);
		break;
	}
	case IFS_ROLE_SIZE:
		break;
	}
	acc_got(as, req, item);
	return 0;
}

static void acc_init(struct acc_sink *as, struct req_acc *reqs, unsigned n)
{
	memset(as, 0, sizeof(*as));
	as->reqs = reqs;
	as->n = n;
	as->cur = g_byte_array_new();
}

static const struct imap_piece_sink acc_sink_ops = {acc_structure, acc_size, acc_begin,
                                                    acc_data, acc_end, NULL};

/* The imap requests for reqs (items copied into items_store, which must live as long). */
static struct imap_fetch_request *make_requests(struct req_acc *reqs, const uint32_t *uids,
                                                unsigned n, GArray *items_store)
{
	struct imap_fetch_request *out = g_new0(struct imap_fetch_request, n);
	guint base;

	/* first every item, then the pointers: the array does not move afterwards */
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < reqs[i].n_items; k++)
			g_array_append_val(items_store, reqs[i].items[k].item);
	base = 0;
	for (unsigned i = 0; i < n; i++) {
		out[i].uid = uids[i];
		out[i].bodystructure = reqs[i].want_structure;
		out[i].items = &g_array_index(items_store, struct imap_fetch_item, base);
		out[i].n_items = reqs[i].n_items;
		base += reqs[i].n_items;
	}
	return out;
}

/* ---- which items each piece asks for ---- */

static bool server_binary(struct ifs *fs)
{
	return fs->has_binary;
}

/* OUTLINE: BODYSTRUCTURE, the header, and the check of RFC822.SIZE. */
static void outline_items(uint64_t listed_size, GArray *items)
{
	struct ifs_piece_item it;

	memset(&it, 0, sizeof(it));
	it.item.kind = IMAP_ITEM_HEADER;
	it.item.section = "";
	it.role = IFS_ROLE_STORE;
	g_array_append_val(items, it);
	memset(&it, 0, sizeof(it));
	it.item.kind = IMAP_ITEM_BODY;
	it.item.section = "";
	it.item.offset = listed_size > 0 ? listed_size - 1 : 0;
	it.item.length = 2;
	it.role = IFS_ROLE_SIZE_CHECK;
	it.claimed = listed_size;
	g_array_append_val(items, it);
}

/* The items of piece for a message whose earlier piece entry is prev (NULL for OUTLINE). */
static void piece_items(struct ifs *fs, unsigned piece, const struct ifs_cached_msg *prev,
                        uint64_t listed_size, GArray *items, bool *structure_r)
{
	*structure_r = false;
	switch (piece) {
	case IFS_PIECE_OUTLINE:
		outline_items(listed_size, items);
		*structure_r = true;
		break;
	case IFS_PIECE_PARTS:
		ifs_structure_parts_items(prev->structure, server_binary(fs), items);
		break;
	case IFS_PIECE_TEXTS:
		ifs_structure_text_items(prev->text_sections, items);
		break;
	}
}

/* ---- piece entries from piece sets ---- */

static const enum mime_view header_views[] = {
    MIME_VIEW_SUBJECT, MIME_VIEW_FROM, MIME_VIEW_TO, MIME_VIEW_DATE,
    MIME_VIEW_CC, MIME_VIEW_MESSAGE_ID, MIME_VIEW_HEADERS};

static void take_views(struct ifs_cached_msg *msg, const struct mime_message *mime,
                       const enum mime_view *views, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		GBytes *b = mime_message_view(mime, views[i]);
		ifs_blob_clear(&msg->views[views[i]]);
		if (b != NULL)
			msg->views[views[i]].mem = g_bytes_ref(b);
		msg->views_known |= 1u << views[i];
	}
}

/* OUTLINE: the header views (when the header alone decides them), message.eml's size. */
static int build_outline(struct ifs_cached_msg *msg, GHashTable *set, const char **why_r)
{
	GBytes *header = ifs_pieceset_get(set, IFS_PS_HEADER, NULL);
	GBytes *text = ifs_pieceset_get(set, IFS_PS_STRUCTURE, NULL);
	struct mime_message *mime = NULL;
	char *err = NULL;

	if (ifs_pieceset_get(set, IFS_PS_WHOLE, NULL) != NULL) {
		*why_r = "its BODYSTRUCTURE does not parse";
		return -EBADMSG;
	}
	if (header == NULL || text == NULL) {
		*why_r = "the server sent no BODYSTRUCTURE or header";
		return -EBADMSG;
	}
	if (imap_bodystructure_parse(g_bytes_get_data(text, NULL), g_bytes_get_size(text),
	                             &msg->structure, &err) < 0) {
		g_free(err);
		*why_r = "its BODYSTRUCTURE does not parse";
		return -EBADMSG;
	}
	if (!ifs_structure_usable(msg->structure, why_r))
		return -EBADMSG;
	if (mime_message_from_header(header, &mime) == 0) {
		take_views(msg, mime, header_views, G_N_ELEMENTS(header_views));
		mime_message_free(mime);
	}
	msg->eml_size_known = ifs_pieceset_number(set, IFS_PS_EML_SIZE, NULL, &msg->eml_size);
	msg->pieces = g_hash_table_ref(set);
	return 0;
}

/* A copy of a's entries with b's added. */
static GHashTable *merged_set(GHashTable *a, GHashTable *b)
{
	GHashTable *m = ifs_pieceset_new();
	GHashTable *both[2] = {a, b};

	for (int i = 0; i < 2; i++) {
		GHashTableIter it;
		gpointer k, v;
		if (both[i] == NULL)
			continue;
		g_hash_table_iter_init(&it, both[i]);
		while (g_hash_table_iter_next(&it, &k, &v))
			g_hash_table_replace(m, g_strdup(k), g_bytes_ref(v));
	}
	return m;
}

static int parse_from_set(const struct imap_part *root, GHashTable *set,
                          struct mime_message **mime_r)
{
	struct mime_part *tree = NULL;
	int ret = ifs_structure_mime_tree(root, set, &tree);

	if (ret == -EAGAIN)
		return -EBADMSG; /* the server did not give a header it has: read whole */
	if (ret < 0)
		return ret;
	ret = mime_message_from_parts(tree, mime_r);
	ifs_structure_free_tree(tree);
	return ret;
}

/* PARTS: names and sources of the attachments, whether body.html exists, which sections make
 * body; the header views (exact now, whatever the header holds). */
static int build_parts(struct ifs_cached_msg *msg, const struct ifs_cached_msg *outline,
                       GHashTable *parts_set, const char **why_r)
{
	GHashTable *set;
	struct mime_message *mime = NULL;
	const GArray *texts;
	int ret;

	if (ifs_pieceset_get(parts_set, IFS_PS_WHOLE, NULL) != NULL) {
		*why_r = "its pieces cannot stand for it";
		return -EBADMSG;
	}
	set = merged_set(outline->pieces, parts_set);
	ret = parse_from_set(outline->structure, set, &mime);
	if (ret < 0) {
		g_hash_table_unref(set);
		*why_r = "mime/ reads its pieces otherwise than the whole";
		return ret;
	}
	msg->structure = imap_part_copy(outline->structure);
	msg->eml_size_known = outline->eml_size_known;
	msg->eml_size = outline->eml_size;
	take_views(msg, mime, header_views, G_N_ELEMENTS(header_views));
	msg->has_html = mime_message_has_view(mime, MIME_VIEW_BODY_HTML);
	texts = mime_message_text_parts(mime);
	msg->text_sections = g_ptr_array_new_with_free_func(g_free);
	if (texts == NULL) {
		/* no text to fetch: body and body.html are known already */
		enum mime_view bv[2] = {MIME_VIEW_BODY, MIME_VIEW_BODY_HTML};
		take_views(msg, mime, bv, 2);
	} else {
		for (guint i = 0; i < texts->len; i++) {
			const struct imap_part *p =
			    ifs_structure_by_index(msg->structure, g_array_index(texts, unsigned, i));
			if (p != NULL)
				g_ptr_array_add(msg->text_sections, g_strdup(p->section));
		}
	}
	msg->attachments = g_array_new(FALSE, TRUE, sizeof(struct ifs_attachment));
	for (size_t i = 0; i < mime_message_n_attachments(mime); i++) {
		struct ifs_attachment a;
		unsigned id = 0;
		const char *enc = NULL;
		const struct imap_part *p;

		memset(&a, 0, sizeof(a));
		a.name = g_strdup(mime_message_attachment_name(mime, i));
		a.src.kind = mime_message_attachment_source(mime, i, &id, &enc);
		if (a.src.kind == MIME_DATA_HERE) {
			a.data.mem = g_bytes_ref(mime_message_attachment_data(mime, i));
		} else {
			p = ifs_structure_by_index(msg->structure, id);
			a.src.section = g_strdup(p != NULL ? p->section : "");
			a.src.encoding = g_strdup(enc);
			a.src.size_known =
			    ifs_pieceset_number(set, "size", a.src.section, &a.src.size);
		}
		g_array_append_val(msg->attachments, a);
	}
	mime_message_free(mime);
	msg->pieces = set;
	return 0;
}

/* TEXTS: body and body.html. */
static int build_texts(struct ifs_cached_msg *msg, const struct ifs_cached_msg *parts,
                       GHashTable *texts_set, const char **why_r)
{
	GHashTable *set = merged_set(parts->pieces, texts_set);
	struct mime_message *mime = NULL;
	enum mime_view bv[2] = {MIME_VIEW_BODY, MIME_VIEW_BODY_HTML};
	int ret = parse_from_set(parts->structure, set, &mime);

	if (ret == 0 && mime_message_text_parts(mime) != NULL)
		ret = -EBADMSG; /* a text part the server did not give */
	if (ret < 0) {
		mime_message_free(mime);
		g_hash_table_unref(set);
		*why_r = "its text parts do not stand for it";
		return ret;
	}
	take_views(msg, mime, bv, 2);
	mime_message_free(mime);
	/* only the bodies are kept: the rest is in the PARTS entry */
	msg->pieces = g_hash_table_ref(texts_set);
	g_hash_table_unref(set);
	return 0;
}

static int build_piece(unsigned piece, struct ifs_cached_msg *msg,
                       const struct ifs_cached_msg *prev, GHashTable *set, const char **why_r)
{
	msg->piece = piece;
	switch (piece) {
	case IFS_PIECE_OUTLINE:
		return build_outline(msg, set, why_r);
	case IFS_PIECE_PARTS:
		return build_parts(msg, prev, set, why_r);
	case IFS_PIECE_TEXTS:
		return build_texts(msg, prev, set, why_r);
	}
	return -EINVAL;
}

/* ---- one message's piece set: disk, else server ---- */

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static GHashTable *read_set(int fd, uint64_t offset, uint64_t size)
{
	GHashTable *set = NULL;
	char *buf;

	if (size > MAX_SET_BYTES * 2ull)
		return NULL;
	buf = g_malloc(size > 0 ? (size_t)size : 1);
	if (pread_all(fd, buf, (size_t)size, offset) == 0)
		set = ifs_pieceset_unpack(buf, (size_t)size);
	g_free(buf);
	return set;
}

/* Fetch piece for one message: *set_r new. */
/* One UID FETCH of items (struct ifs_piece_item; BODYSTRUCTURE too when structure) for ref's
 * message into a new piece set (*set_r).  -ENOENT: expunged; -EBADMSG: the server cannot give
 * some item (read whole); else as remote.h. */
static int run_items(struct ifs *fs, const struct ifs_msg_ref *ref, GArray *items, bool structure,
                     GHashTable **set_r)
{
	GArray *store = g_array_new(FALSE, TRUE, sizeof(struct imap_fetch_item));
	struct req_acc acc;
	struct acc_sink as;
	struct imap_piece_sink sink = acc_sink_ops;
	struct imap_fetch_request *req;
	int ret;

	memset(&acc, 0, sizeof(acc));
	acc.set = ifs_pieceset_new();
	acc.items = (const struct ifs_piece_item *)items->data;
	acc.n_items = items->len;
	acc.got = g_new0(bool, items->len + 1);
	acc.want_structure = structure;
	acc_init(&as, &acc, 1);
	sink.ctx = &as;
	req = make_requests(&acc, &ref->key_uid, 1, store);
	if (items->len == 0 && !structure)
		ret = 0; /* nothing to ask (a text-free message's TEXTS) */
	else
		ret = ifs_remote_fetch_pieces(fs->pool, ref->raw_name, ref->uidvalidity, req, 1,
		                              &sink);
	if (ret == 0 && req->result < 0)
		/* a NO other than "no such message", a BAD: this piece cannot be had */
		ret = req->result == -ENOENT || req->result == -ESTALE ? req->result : -EBADMSG;
	if (ret == 0 && !acc.complete && (items->len > 0 || structure)) {
		/* the server answered OK without the message: it was expunged — or without some
		 * item (a section it does not have, or what it was asked at all: a server that
		 * answers BODYSTRUCTURE with something else): the pieces cannot stand for it */
		ret = acc.n_got == 0 && !acc.got_structure && !req->answered ? -ENOENT : -EBADMSG;
	}
	if (ret == 0)
		*set_r = g_hash_table_ref(acc.set);
	g_hash_table_unref(acc.set);
	g_free(acc.got);
	g_free(req);
	g_byte_array_unref(as.cur);
	g_array_unref(store);
	return ret;
}

static int fetch_set(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                     const struct ifs_cached_msg *prev, GHashTable **set_r)
{
	GArray *items = g_array_new(FALSE, TRUE, sizeof(struct ifs_piece_item));
	bool structure;
	int ret;

	piece_items(fs, piece, prev, ref->listed_size, items, &structure);
	ret = run_items(fs, ref, items, structure, set_r);
	g_array_unref(items);
	return ret;
}

/* ---- BINARY.SIZE, checked ----
 *
 * An attachment served from BINARY.PEEK[s] is exactly as long as the server's BINARY[s], and
 * BINARY.SIZE[s] (fetched with PARTS) claims that length; but Dovecot 2.3.19 has answered a
 * wrong one (629289 for a 716800-byte BINARY[2]: tests/fs/test_parts.py's data.bin).  So the
 * claim n is checked like message.eml's size: BINARY.PEEK[s]<n-1.2> gives back one byte
 * exactly when BINARY[s] has n.  One small round trip when the size is first asked (stat,
 * ls -l, find -printf %s), remembered for the mount; a claim that fails is remembered too,
 * and the attachment's size then costs its bytes (msgdir.h). */
static GMutex checked_lock;
static GHashTable *checked; /* "key_epoch:uid:section" -> uint64_t size, or UINT64_MAX */

static char *checked_key(const struct ifs_msg_ref *ref, const char *section)
{
	return g_strdup_printf("%u:%u:%s", ref->key_epoch, ref->key_uid, section);
}

static void remember_checked(const char *key, uint64_t size)
{
	g_mutex_lock(&checked_lock);
	if (checked == NULL)
		checked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_hash_table_replace(checked, g_strdup(key), g_memdup2(&size, sizeof(size)));
	g_mutex_unlock(&checked_lock);
}

int ifs_loader_checked_size(struct ifs *fs, const struct ifs_msg_ref *ref,
                            const struct ifs_cached_msg *parts, const struct ifs_attachment *a,
                            uint64_t *size_r)
{
	uint64_t claimed, size = UINT64_MAX;
	GArray *items;
	GHashTable *set = NULL;
	struct ifs_piece_item it;
	char *key;
	int ret;

	if (!fs->has_binary || fs->cfg->fetch_whole || a->src.kind != MIME_DATA_DECODED ||
	    parts->pieces == NULL || a->src.section == NULL ||
	    !ifs_structure_server_decodes(a->src.encoding) ||
	    !ifs_pieceset_number(parts->pieces, "binary-size", a->src.section, &claimed))
		return -ENOENT;
	key = checked_key(ref, a->src.section);
	g_mutex_lock(&checked_lock);
	if (checked != NULL && g_hash_table_contains(checked, key)) {
		size = *(const uint64_t *)g_hash_table_lookup(checked, key);
		g_mutex_unlock(&checked_lock);
		g_free(key);
		if (size == UINT64_MAX)
			return -ENOENT;
		*size_r = size;
		return 0;
	}
	g_mutex_unlock(&checked_lock);

	memset(&it, 0, sizeof(it));
	it.item.kind = IMAP_ITEM_BINARY;
	it.item.section = a->src.section;
	it.item.offset = claimed > 0 ? claimed - 1 : 0;
	it.item.length = 2;
	it.role = IFS_ROLE_SIZE_CHECK;
	it.claimed = claimed;
	items = g_array_new(FALSE, TRUE, sizeof(struct ifs_piece_item));
	g_array_append_val(items, it);
	ret = run_items(fs, ref, items, false, &set);
	g_array_unref(items);
	if (ret == 0 && ifs_pieceset_number(set, "size", a->src.section, &size) &&
	    size == claimed) {
		remember_checked(key, size);
		*size_r = size;
	} else {
		if (ret == 0 || ret == -EBADMSG) {
			g_debug("UID %u of %s: BINARY.SIZE[%s] %llu is not the part's size",
			        ref->key_uid, ref->raw_name, a->src.section,
			        (unsigned long long)claimed);
			remember_checked(key, UINT64_MAX);
		}
		ret = -ENOENT;
	}
	if (set != NULL)
		g_hash_table_unref(set);
	g_free(key);
	return ret;
}

/* The piece set of piece: from the disk cache (fetched into it first when absent), else from
 * the server.  -EBADMSG: the server cannot give it (read whole).  *set_r new. */
static int obtain_set(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                      const struct ifs_cached_msg *prev, GHashTable **set_r)
{
	struct ifs_bodycache_writer *w = NULL;
	int fd = -1, ret;
	uint64_t offset = 0, size = 0;

	*set_r = NULL;
	if (fs->bodies == NULL)
		return fetch_set(fs, ref, piece, prev, set_r);
	ret = ifs_bodycache_get_piece(fs->bodies, ref->raw_name, ref->uidvalidity, ref->key_uid,
	                              piece, true, &fd, &offset, &size, &w);
	if (ret == IFS_BODYCACHE_HIT) {
		*set_r = read_set(fd, offset, size);
		close(fd);
		if (*set_r != NULL)
			return 0;
		/* not a piece set (cannot happen but on a damaged disk): ask again, keep nothing */
		return fetch_set(fs, ref, piece, prev, set_r);
	}
	if (ret < 0)
		return fetch_set(fs, ref, piece, prev, set_r);
	ret = fetch_set(fs, ref, piece, prev, set_r);
	if (ret == -EBADMSG) {
		/* remembered on disk: the next mount reads this message whole at once */
		GHashTable *mark = ifs_pieceset_new();
		GBytes *why = g_bytes_new_static("the server cannot give its pieces", 33);
		ifs_pieceset_put(mark, IFS_PS_WHOLE, NULL, why);
		g_bytes_unref(why);
		*set_r = mark;
		ret = 0;
	}
	if (ret == 0) {
		GBytes *packed = ifs_pieceset_pack(*set_r);
		if (ifs_bodycache_writer_write(w, g_bytes_get_data(packed, NULL),
		                               g_bytes_get_size(packed)) == 0 &&
		    ifs_bodycache_writer_commit(w, &fd, &size) == 0)
			close(fd);
		else
			w = NULL; /* commit and write failures free the writer or leave it: abort */
		g_bytes_unref(packed);
		if (w == NULL)
			return 0;
		return 0;
	}
	ifs_bodycache_writer_abort(w);
	return ret;
}

/* ---- an attachment's bytes ---- */

struct att_sink {
	struct ifs_bodycache_writer *w; /* NULL: into mem */
	GByteArray *mem;
	struct mime_decoder *dec;       /* NULL: bytes as they come */
	const char *encoding;
	bool decode;
	GByteArray *out;                /* decoder output, flushed to w */
	bool done;
	int err;
};

static int att_put(struct att_sink *s, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (s->w != NULL)
		return ifs_bodycache_writer_write(s->w, buf, len);
	if ((uint64_t)s->mem->len + len > G_MAXUINT32 / 2)
		return -EFBIG;
	g_byte_array_append(s->mem, buf, (guint)len);
	return 0;
}

static int att_begin(void *p, unsigned req, unsigned item, uint64_t size)
{
	struct att_sink *s = p;

	s->done = false;
	mime_decoder_free(s->dec);
	s->dec = s->decode ? mime_decoder_new(s->encoding) : NULL;
	if (s->w != NULL)
		return ifs_bodycache_writer_rewind(s->w);
	g_byte_array_set_size(s->mem, 0);
	return 0;
}

static int att_data(void *p, const void *buf, size_t len)
{
	struct att_sink *s = p;
	int r;

	if (s->dec == NULL)
		return att_put(s, buf, len);
	g_byte_array_set_size(s->out, 0);
	mime_decoder_step(s->dec, buf, len, s->out);
	r = att_put(s, s->out->data, s->out->len);
	return r;
}

static int att_end(void *p, unsigned req, unsigned item)
{
	struct att_sink *s = p;
	int r = 0;

	if (s->dec != NULL) {
		g_byte_array_set_size(s->out, 0);
		mime_decoder_finish(s->dec, s->out);
		r = att_put(s, s->out->data, s->out->len);
	}
	s->done = r == 0;
	return r;
}

static int load_attachment(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                           const struct ifs_cached_msg *parts, struct ifs_cached_msg *msg)
{
	size_t k = piece - IFS_PIECE_ATT0;
	const struct ifs_attachment *a;
	const struct imap_part *part;
	struct imap_fetch_item item;
	struct imap_fetch_request req;
	struct att_sink s;
	struct imap_piece_sink sink = {NULL, NULL, att_begin, att_data, att_end, &s};
	int fd = -1, ret;
	uint64_t offset = 0, size = 0;

	if (parts->attachments == NULL || k >= parts->attachments->len)
		return -ENOENT;
	a = &g_array_index(parts->attachments, struct ifs_attachment, k);
	msg->piece = piece;
	if (a->src.kind == MIME_DATA_HERE) {
		msg->raw.mem = g_bytes_ref(a->data.mem);
		return 0;
	}
	part = imap_part_find(parts->structure, a->src.section);
	if (part == NULL || ifs_structure_end_unsure(part))
		return -EBADMSG; /* the whole message answers (structure.h) */
	memset(&s, 0, sizeof(s));
	ifs_structure_data_item(part, server_binary(fs), a->src.kind == MIME_DATA_EXACT, &item,
	                        &s.decode);
	s.encoding = a->src.encoding;
	s.out = g_byte_array_new();
	if (fs->bodies != NULL) {
		ret = ifs_bodycache_get_piece(fs->bodies, ref->raw_name, ref->uidvalidity,
		                              ref->key_uid, piece, true, &fd, &offset, &size, &s.w);
		if (ret == IFS_BODYCACHE_HIT) {
			msg->raw.file = ifs_fd_new(fd);
			msg->raw.off = offset;
			msg->raw.size = size;
			g_byte_array_unref(s.out);
			return 0;
		}
		if (ret < 0)
			s.w = NULL; /* no disk: into memory */
	}
	if (s.w == NULL)
		s.mem = g_byte_array_new();
	memset(&req, 0, sizeof(req));
	req.uid = ref->key_uid;
	req.items = &item;
	req.n_items = 1;
	ret = ifs_remote_fetch_pieces(fs->pool, ref->raw_name, ref->uidvalidity, &req, 1, &sink);
	if (ret == 0 && req.result < 0)
		ret = req.result == -ENOENT || req.result == -ESTALE ? req.result : -EBADMSG;
	if (ret == 0 && !s.done)
		ret = -ENOENT;
	if (ret == 0 && s.w != NULL) {
		ret = ifs_bodycache_writer_commit(s.w, &fd, &size);
		s.w = NULL;
		if (ret == 0) {
			msg->raw.file = ifs_fd_new(fd);
			msg->raw.off = 0;
			msg->raw.size = size;
		}
	} else if (ret == 0) {
		msg->raw.mem = g_byte_array_free_to_bytes(s.mem);
		s.mem = NULL;
	}
	if (ret == 0 && a->src.size_known && ifs_blob_size(&msg->raw) != a->src.size)
		g_warning("UID %u of %s: part %s has %llu bytes, the server said %llu",
		          ref->key_uid, ref->raw_name, a->src.section,
		          (unsigned long long)ifs_blob_size(&msg->raw),
		          (unsigned long long)a->src.size);
	ifs_bodycache_writer_abort(s.w);
	if (s.mem != NULL)
		g_byte_array_unref(s.mem);
	mime_decoder_free(s.dec);
	g_byte_array_unref(s.out);
	return ret;
}

/* ---- the loader ---- */

/* The connections pieces are read ahead on: the readers' (ifs.h).  The read-ahead's own
 * connection streams whole messages for the same walk meanwhile (readahead.c's piece
 * thread), and pieces are what the readers ask next, a few KB each. */
#define PIECE_AHEAD_POOL(fs) ((fs)->pool)

/* The asked piece of a load nobody asked for (read-ahead building a level on the one before):
 * the read-ahead is not told of it (ifs_readahead_note ignores pieces past TEXTS), or its own
 * loads would look like a reader's walk of outlines. */
#define UNASKED UINT_MAX

struct load_ctx {
	struct ifs *fs;
	const struct ifs_msg_ref *ref;
	unsigned piece;
	const struct ifs_cached_msg *prev; /* the entry piece builds on (held by the caller) */
	unsigned asked; /* the piece the reader asked for (WHOLE answers a small message's
	                 * TEXTS): what the read-ahead is told, so it follows the walk's kind */
};

static int load_entry(void *p, uint64_t key, struct ifs_cached_msg *msg)
{
	struct load_ctx *ctx = p;
	struct ifs *fs = ctx->fs;
	GHashTable *set = NULL;
	const char *why = "";
	int ret;

	if (fs->readahead != NULL)
		ifs_readahead_note(fs->readahead, ctx->ref->epoch, ctx->ref->uid, ctx->asked);
	if (ctx->piece == IFS_PIECE_WHOLE)
		return load_whole(fs, ctx->ref, msg);
	if (ctx->piece >= IFS_PIECE_ATT0) {
		ret = load_attachment(fs, ctx->ref, ctx->piece, ctx->prev, msg);
		/* a part the server cannot give (NO [UNKNOWN-CTE], NO [PARSE]): as for the
		 * other pieces, the whole message answers for it from now on */
		if (ret == -EBADMSG)
			remember_whole_only(ctx->ref, "the server cannot give an attachment");
		return ret;
	}
	ret = obtain_set(fs, ctx->ref, ctx->piece, ctx->prev, &set);
	if (ret == -EBADMSG)
		why = "the server cannot give its pieces";
	if (ret == 0) {
		ret = build_piece(ctx->piece, msg, ctx->prev, set, &why);
		g_hash_table_unref(set);
	}
	if (ret == -EBADMSG)
		remember_whole_only(ctx->ref, why);
	if (ret < 0)
		ifs_cached_msg_clear(msg);
	return ret;
}

int ifs_loader_whole_if_held(struct ifs *fs, const struct ifs_msg_ref *ref,
                             const struct ifs_cached_msg **m_r)
{
	uint64_t key = ifs_msg_key(ref->key_epoch, ref->key_uid);

	if (ifs_msgcache_peek(fs->cache, key, true, m_r) == 0)
		return 0;
	if (fs->bodies != NULL &&
	    (ifs_bodycache_contains(fs->bodies, ref->raw_name, ref->uidvalidity, ref->key_uid) ||
	     ifs_bodycache_claimed(fs->bodies, ref->raw_name, ref->uidvalidity, ref->key_uid,
	                           IFS_BODYCACHE_WHOLE)))
		return ifs_loader_get(fs, ref, IFS_PIECE_WHOLE, m_r, NULL);
	return -ENOENT;
}

int ifs_loader_piece_if_held(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                             const struct ifs_cached_msg **m_r)
{
	if (ifs_msgcache_peek(fs->cache, ifs_piece_key(ref->key_epoch, ref->key_uid, piece), true,
	                      m_r) == 0)
		return 0;
	if (ifs_loader_whole_if_held(fs, ref, m_r) == 0)
		return 0;
	if (fs->bodies != NULL &&
	    (ifs_bodycache_contains_piece(fs->bodies, ref->raw_name, ref->uidvalidity, ref->key_uid,
	                                  piece) ||
	     ifs_bodycache_claimed(fs->bodies, ref->raw_name, ref->uidvalidity, ref->key_uid,
	                           piece)))
		return ifs_loader_get(fs, ref, piece, m_r, NULL);
	return -ENOENT;
}

/* Read-ahead of PARTS checks the BINARY.SIZE claims it brought, one pipelined round for the
 * batch, so that a walk that stats attachments (find -printf %s, ls -l) finds their sizes
 * checked instead of paying a round trip each.  sets[i]: uids[i]'s PARTS piece set
 * (borrowed). */
static void prefetch_size_checks(struct ifs *fs, const struct ifs_msg_ref *folder,
                                 const uint32_t *uids, GHashTable *const *sets, unsigned n)
{
	GArray *items = g_array_new(FALSE, TRUE, sizeof(struct ifs_piece_item));
	GArray *store = g_array_new(FALSE, TRUE, sizeof(struct imap_fetch_item));
	GPtrArray *sections = g_ptr_array_new_with_free_func(g_free); /* items' strings */
	guint *first = g_new0(guint, n);
	struct req_acc *reqs = g_new0(struct req_acc, n);
	uint32_t *ruids = g_new0(uint32_t, n);
	struct imap_fetch_request *req;
	struct acc_sink as;
	struct imap_piece_sink sink = acc_sink_ops;
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++) {
		GHashTableIter it;
		gpointer k;
		guint start = items->len;
		struct ifs_msg_ref ref = *folder;

		ref.uid = ref.key_uid = uids[i];
		g_hash_table_iter_init(&it, sets[i]);
		while (g_hash_table_iter_next(&it, &k, NULL)) {
			const char *section;
			uint64_t claimed;
			struct ifs_piece_item pi;
			char *key;
			bool known;

			if (!g_str_has_prefix(k, "binary-size:"))
				continue;
			section = (const char *)k + strlen("binary-size:");
			if (!ifs_pieceset_number(sets[i], "binary-size", section, &claimed))
				continue;
			key = checked_key(&ref, section);
			g_mutex_lock(&checked_lock);
			known = checked != NULL && g_hash_table_contains(checked, key);
			g_mutex_unlock(&checked_lock);
			g_free(key);
			if (known)
				continue;
			g_ptr_array_add(sections, g_strdup(section));
			memset(&pi, 0, sizeof(pi));
			pi.item.kind = IMAP_ITEM_BINARY;
			pi.item.section = sections->pdata[sections->len - 1];
			pi.item.offset = claimed > 0 ? claimed - 1 : 0;
			pi.item.length = 2;
			pi.role = IFS_ROLE_SIZE_CHECK;
			pi.claimed = claimed;
			g_array_append_val(items, pi);
		}
		if (items->len == start)
			continue;
		first[m] = start;
		reqs[m].n_items = items->len - start;
		ruids[m] = uids[i];
		m++;
	}
	if (m > 0) {
		for (unsigned r = 0; r < m; r++) {
			reqs[r].items = &g_array_index(items, struct ifs_piece_item, first[r]);
			reqs[r].set = ifs_pieceset_new();
			reqs[r].got = g_new0(bool, reqs[r].n_items + 1);
		}
		req = make_requests(reqs, ruids, m, store);
		acc_init(&as, reqs, m);
		sink.ctx = &as;
		if (ifs_remote_fetch_pieces(PIECE_AHEAD_POOL(fs), folder->raw_name,
		                            folder->uidvalidity, req, m, &sink) == 0) {
			for (unsigned r = 0; r < m; r++) {
				struct ifs_msg_ref ref = *folder;
				ref.uid = ref.key_uid = ruids[r];
				for (unsigned j = 0; j < reqs[r].n_items; j++) {
					const struct ifs_piece_item *pi = &reqs[r].items[j];
					uint64_t size;
					char *key = checked_key(&ref, pi->item.section);
					if (ifs_pieceset_number(reqs[r].set, "size",
					                        pi->item.section, &size) &&
					    size == pi->claimed)
						remember_checked(key, size);
					else if (req[r].result == 0 || req[r].result == -EBADMSG)
						remember_checked(key, UINT64_MAX);
					g_free(key);
				}
			}
		}
		g_byte_array_unref(as.cur);
		g_free(req);
		for (unsigned r = 0; r < m; r++) {
			g_hash_table_unref(reqs[r].set);
			g_free(reqs[r].got);
		}
	}
	g_free(reqs);
	g_free(ruids);
	g_free(first);
	g_ptr_array_unref(sections);
	g_array_unref(items);
	g_array_unref(store);
}

/* The piece each piece is built on. */
static unsigned prerequisite(unsigned piece)
{
	if (piece >= IFS_PIECE_ATT0)
		return IFS_PIECE_PARTS;
	return piece - 1; /* TEXTS on PARTS on OUTLINE */
}

static int get_entry_for(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                         unsigned asked, const struct ifs_cached_msg *prev,
                         const struct ifs_cached_msg **m_r, bool *prefetched_r)
{
	struct load_ctx ctx = {fs, ref, piece, prev, asked};
	bool prefetched = false;
	int ret = ifs_msgcache_get(fs->cache, ifs_piece_key(ref->key_epoch, ref->key_uid, piece),
	                           ifs_cur_requester, load_entry, &ctx, m_r, &prefetched);

	/* read ahead into memory: the reader's first use keeps the walk going */
	if (prefetched && fs->readahead != NULL)
		ifs_readahead_note(fs->readahead, ref->epoch, ref->uid, asked);
	if (prefetched_r != NULL)
		*prefetched_r = prefetched;

	if (ret == -ESTALE) {
		ifs_tree_epoch_stale(fs->tree, ref->epoch);
		ret = -ENOENT;
	}
	return ret;
}

static int get_entry(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                     const struct ifs_cached_msg *prev, const struct ifs_cached_msg **m_r,
                     bool *prefetched_r)
{
	return get_entry_for(fs, ref, piece, piece, prev, m_r, prefetched_r);
}

/* Is piece of a message of listed_size answered by fetching the whole message: fetch = whole,
 * a message found to be read whole, or a small one beyond its outline (piece.h)? */
static bool reads_whole(struct ifs *fs, uint32_t key_epoch, uint32_t uid, uint64_t listed_size,
                        unsigned piece)
{
	return fs->cfg->fetch_whole || is_whole_only(ifs_msg_key(key_epoch, uid)) ||
	       (piece >= IFS_PIECE_TEXTS && listed_size <= fs->cfg->whole_below);
}

bool ifs_loader_reads_whole(struct ifs *fs, uint32_t epoch, uint32_t uid, uint64_t listed_size,
                            unsigned piece)
{
	return reads_whole(fs, ifs_tree_base_epoch(fs->tree, epoch), uid, listed_size, piece);
}

int ifs_loader_get_for(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                       unsigned asked, const struct ifs_cached_msg **m_r, bool *prefetched_r)
{
	const struct ifs_cached_msg *prev = NULL;
	int ret;

	if (prefetched_r != NULL)
		*prefetched_r = false;
	if (piece != IFS_PIECE_WHOLE) {
		if (reads_whole(fs, ref->key_epoch, ref->key_uid, ref->listed_size, piece))
			return get_entry_for(fs, ref, IFS_PIECE_WHOLE,
			                     fs->cfg->fetch_whole ? IFS_PIECE_WHOLE : asked, NULL,
			                     m_r, prefetched_r);
		if (ifs_loader_whole_if_held(fs, ref, m_r) == 0)
			return 0; /* the whole message is here */
		/* a walk of whole messages is bringing it: its pieces would be bytes twice (ripgrep
		 * reads a message's attachments and body before its message.eml) */
		if (fs->readahead != NULL &&
		    ifs_readahead_whole_walk_covers(fs->readahead, ref->epoch, ref->uid))
			return get_entry(fs, ref, IFS_PIECE_WHOLE, NULL, m_r, prefetched_r);
	}
	if (piece == IFS_PIECE_WHOLE || piece == IFS_PIECE_OUTLINE) {
		ret = get_entry_for(fs, ref, piece, asked, NULL, m_r, prefetched_r);
	} else {
		/* the piece this one is built on first (it may be the whole message already); the
		 * read-ahead hears of the piece asked, not of its prerequisites (a walk of texts
		 * is not a walk of outlines) */
		ret = ifs_loader_get_for(fs, ref, prerequisite(piece), asked, &prev, NULL);
		if (ret < 0)
			return ret;
		if (prev->piece == IFS_PIECE_WHOLE) {
			*m_r = prev;
			return 0;
		}
		ret = get_entry_for(fs, ref, piece, asked, prev, m_r, prefetched_r);
		ifs_msgcache_put(fs->cache, prev);
	}
	if (ret == -EBADMSG || ret == -EIO) {
		/* the pieces cannot stand for it, or the server dropped the connection at one of
		 * them (Dovecot does when it cannot serve a FETCH): the whole message answers */
		if (ret == -EIO && ifs_remote_offline())
			return ret;
		if (ret == -EIO)
			remember_whole_only(ref, "fetching a piece failed");
		/* the read-ahead follows the walk's kind, not this message's fallback */
		return get_entry_for(fs, ref, IFS_PIECE_WHOLE, asked, NULL, m_r, prefetched_r);
	}
	return ret;
}

int ifs_loader_get(struct ifs *fs, const struct ifs_msg_ref *ref, unsigned piece,
                   const struct ifs_cached_msg **m_r, bool *prefetched_r)
{
	return ifs_loader_get_for(fs, ref, piece, piece, m_r, prefetched_r);
}

/* ---- read-ahead of pieces ---- */

struct batch {
	struct ifs *fs;
	struct ifs_msg_ref ref;      /* the folder (uid unused) */
	unsigned piece;
	struct ifs_bodycache_pack *pack;
	struct req_acc *reqs;
	uint32_t *uids;
	const struct ifs_cached_msg **prevs;
	bool *reserved;              /* memory-cache reservations (no disk cache) */
	bool *stored;
	unsigned n;
};

/* One request of the batch has everything: into the pack (readable at once), or built into
 * the memory cache. */
static void batch_complete(void *p, unsigned i)
{
	struct batch *b = p;
	GHashTable *set = b->reqs[i].set;

	if (b->stored[i])
		return;
	b->stored[i] = true;
	__atomic_add_fetch(&n_prefetched, 1, __ATOMIC_RELAXED);
	if (b->pack != NULL) {
		GBytes *packed = ifs_pieceset_pack(set);
		if (ifs_bodycache_pack_begin_piece(b->pack, b->uids[i], b->piece) == 0 &&
		    ifs_bodycache_pack_write(b->pack, g_bytes_get_data(packed, NULL),
		                             g_bytes_get_size(packed)) == 0)
			ifs_bodycache_pack_end_piece(b->pack, b->uids[i], b->piece);
		g_bytes_unref(packed);
	} else if (b->reserved[i]) {
		struct ifs_cached_msg msg;
		const char *why;
		uint64_t key = ifs_piece_key(b->ref.key_epoch, b->uids[i], b->piece);
		memset(&msg, 0, sizeof(msg));
		b->reserved[i] = false;
		if (build_piece(b->piece, &msg, b->prevs[i], set, &why) == 0) {
			ifs_msgcache_fulfill(b->fs->cache, key, &msg, 0);
		} else {
			ifs_cached_msg_clear(&msg);
			ifs_msgcache_fulfill(b->fs->cache, key, NULL, 0);
		}
	}
}

/* Is uid's piece already held (disk or memory), or its whole message? */
static bool piece_held(struct ifs *fs, const struct ifs_msg_ref *folder, uint32_t uid,
                       unsigned piece)
{
	const struct ifs_cached_msg *m;

	if (is_whole_only(ifs_msg_key(folder->key_epoch, uid)) ||
	    ifs_loader_held_elsewhere(fs, folder->epoch, uid, NULL, NULL, NULL, NULL))
		return true;
	if (ifs_msgcache_peek(fs->cache, ifs_piece_key(folder->key_epoch, uid, piece), false, &m) ==
	    0) {
		ifs_msgcache_put(fs->cache, m);
		return true;
	}
	if (fs->bodies == NULL)
		return false;
	return ifs_bodycache_contains_piece(fs->bodies, folder->raw_name, folder->uidvalidity, uid,
	                                    piece) ||
	       ifs_bodycache_contains(fs->bodies, folder->raw_name, folder->uidvalidity, uid) ||
	       ifs_bodycache_claimed(fs->bodies, folder->raw_name, folder->uidvalidity, uid,
	                             IFS_BODYCACHE_WHOLE);
}

static void prefetch_batch(struct ifs *fs, const struct ifs_msg_ref *folder, const uint32_t *uids,
                           unsigned n, unsigned piece)
{
	struct batch b;
	GArray *items_all = g_array_new(FALSE, TRUE, sizeof(struct ifs_piece_item));
	GArray *store = g_array_new(FALSE, TRUE, sizeof(struct imap_fetch_item));
	GArray *offsets = g_array_new(FALSE, FALSE, sizeof(guint));
	struct imap_fetch_request *reqs = NULL;
	struct acc_sink as;
	struct imap_piece_sink sink = acc_sink_ops;
	unsigned m = 0;

	memset(&b, 0, sizeof(b));
	b.fs = fs;
	b.ref = *folder;
	b.piece = piece;
	b.reqs = g_new0(struct req_acc, n);
	b.uids = g_new0(uint32_t, n);
	b.prevs = g_new0(const struct ifs_cached_msg *, n);
	b.reserved = g_new0(bool, n);
	b.stored = g_new0(bool, n);
	for (unsigned i = 0; i < n; i++) {
		struct ifs_msg_ref ref = *folder;
		const struct ifs_cached_msg *prev = NULL;
		bool structure;
		guint first = items_all->len;

		uint64_t listed = 0;

		if (piece_held(fs, folder, uids[i], piece))
			continue;
		{
			struct ifs_msg_info info;
			if (ifs_tree_msg_info(fs->tree, folder->epoch, uids[i], false, &info) ==
			    0) {
				listed = info.size;
				ifs_msg_info_clear(&info);
			}
		}
		/* a small message is read ahead whole instead (readahead.c), or by its reader */
		if (reads_whole(fs, folder->key_epoch, uids[i], listed, piece))
			continue;
		ref.uid = ref.key_uid = uids[i];
		if (piece != IFS_PIECE_OUTLINE) {
			/* held by the level before (fetched just now): never a network fetch here
			 * unless that one failed */
			if (ifs_loader_get_for(fs, &ref, piece - 1, UNASKED, &prev, NULL) < 0)
				continue;
			if (prev->piece == IFS_PIECE_WHOLE) {
				ifs_msgcache_put(fs->cache, prev);
				continue;
			}
		}
		/* claim it: readers of it wait for us from now on */
		if (fs->bodies != NULL) {
			if (b.pack == NULL && ifs_bodycache_pack_new(fs->bodies, folder->raw_name,
			                                             folder->uidvalidity, &b.pack) < 0) {
				ifs_msgcache_put(fs->cache, prev);
				break;
			}
			if (ifs_bodycache_pack_claim_piece(b.pack, uids[i], piece) !=
			    IFS_BODYCACHE_CLAIMED) {
				ifs_msgcache_put(fs->cache, prev);
				continue;
			}
		} else {
			if (!ifs_msgcache_reserve(fs->cache,
			                          ifs_piece_key(folder->key_epoch, uids[i], piece))) {
				ifs_msgcache_put(fs->cache, prev);
				continue;
			}
			b.reserved[m] = true;
		}
		piece_items(fs, piece, prev, listed, items_all, &structure);
		g_array_append_val(offsets, first);
		b.uids[m] = uids[i];
		b.prevs[m] = prev;
		b.reqs[m].set = ifs_pieceset_new();
		b.reqs[m].want_structure = structure;
		b.reqs[m].n_items = items_all->len - first;
		b.reqs[m].got = g_new0(bool, b.reqs[m].n_items + 1);
		m++;
	}
	b.n = m;
	if (m > 0) {
		/* items_all no longer grows: point each request at its items */
		for (unsigned i = 0; i < m; i++)
			b.reqs[i].items = &g_array_index(items_all, struct ifs_piece_item,
			                                 g_array_index(offsets, guint, i));
		reqs = make_requests(b.reqs, b.uids, m, store);
		acc_init(&as, b.reqs, m);
		as.complete = batch_complete;
		as.ctx = &b;
		sink.ctx = &as;
		/* a request with nothing to ask (TEXTS of a message without text) is complete */
		for (unsigned i = 0; i < m; i++)
			acc_check_complete(&as, i);
		if (ifs_remote_fetch_pieces(PIECE_AHEAD_POOL(fs), folder->raw_name,
		                            folder->uidvalidity, reqs, m, &sink) < 0)
			g_debug("read-ahead of %u pieces of %s failed", m, folder->raw_name);
		g_byte_array_unref(as.cur);
		if (piece == IFS_PIECE_PARTS && fs->has_binary) {
			/* the PARTS that arrived, and their UIDs */
			GHashTable **sets = g_new0(GHashTable *, m);
			uint32_t *stored_uids = g_new0(uint32_t, m);
			unsigned k = 0;
			for (unsigned i = 0; i < m; i++) {
				if (!b.stored[i])
					continue;
				sets[k] = b.reqs[i].set;
				stored_uids[k++] = b.uids[i];
			}
			prefetch_size_checks(fs, folder, stored_uids, sets, k);
			g_free(stored_uids);
			g_free(sets);
		}
	}
	/* What did not arrive: readers fetch it themselves. */
	ifs_bodycache_pack_close(b.pack);
	for (unsigned i = 0; i < m; i++) {
		if (b.reserved[i])
			ifs_msgcache_fulfill(fs->cache,
			                     ifs_piece_key(folder->key_epoch, b.uids[i], piece), NULL, 0);
		ifs_msgcache_put(fs->cache, b.prevs[i]);
		g_hash_table_unref(b.reqs[i].set);
		g_free(b.reqs[i].got);
	}
	g_free(reqs);
	g_free(b.reqs);
	g_free(b.uids);
	g_free(b.prevs);
	g_free(b.reserved);
	g_free(b.stored);
	g_array_unref(items_all);
	g_array_unref(store);
	g_array_unref(offsets);
}

void ifs_loader_prefetch(struct ifs *fs, uint32_t epoch, const uint32_t *uids, unsigned n,
                         unsigned piece)
{
	struct ifs_msg_ref folder;

	if (piece < IFS_PIECE_OUTLINE || piece > IFS_PIECE_TEXTS || fs->cfg->fetch_whole)
		return;
	memset(&folder, 0, sizeof(folder));
	if (ifs_tree_epoch_folder(fs->tree, epoch, &folder.raw_name, &folder.uidvalidity) < 0)
		return;
	folder.epoch = epoch;
	folder.key_epoch = ifs_tree_base_epoch(fs->tree, epoch);
	for (unsigned start = 0; start < n; start += PREFETCH_BATCH) {
		unsigned count = MIN(PREFETCH_BATCH, n - start);
		/* each level in one round trip for the batch: outlines, then parts, then texts */
		for (unsigned level = IFS_PIECE_OUTLINE; level <= piece; level++)
			prefetch_batch(fs, &folder, uids + start, count, level);
	}
	ifs_msg_ref_clear(&folder);
}
