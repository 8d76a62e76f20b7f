/* structure.c — imap/'s part tree and fetched pieces into mime/'s part tree (structure.h). */
#include "structure.h"

#include <errno.h>
#include <string.h>

#include "piece.h"

/* Past this, one fetch per section costs more than the whole message: read it whole. */
#define MAX_PIECE_PARTS 1000
/* mime/ does not look deeper (mime.h); its pieces would say -EBADMSG anyway. */
#define MAX_PIECE_DEPTH 30

static unsigned count_parts(const struct imap_part *p, int depth, int *max_depth)
{
	unsigned n = 1;

	if (depth > *max_depth)
		*max_depth = depth;
	if (p->kind == IMAP_PART_MULTIPART)
		for (unsigned i = 0; i < p->n_parts; i++)
			n += count_parts(&p->parts[i], depth + 1, max_depth);
	return n;
}

bool ifs_structure_usable(const struct imap_part *root, const char **why_r)
{
	int depth = 0;

	if (root->kind == IMAP_PART_MESSAGE) {
		*why_r = "the message is a message/rfc822 part itself";
		return false;
	}
	if (count_parts(root, 0, &depth) > MAX_PIECE_PARTS) {
		*why_r = "too many parts to fetch one by one";
		return false;
	}
	if (depth > MAX_PIECE_DEPTH) {
		*why_r = "parts nested too deep";
		return false;
	}
	return true;
}

static bool is_identity(const char *encoding)
{
	return encoding == NULL || encoding[0] == '\0' || g_ascii_strcasecmp(encoding, "7bit") == 0 ||
	       g_ascii_strcasecmp(encoding, "8bit") == 0 ||
	       g_ascii_strcasecmp(encoding, "binary") == 0;
}

/* Encodings the server's BINARY decodes as mime/ does (RFC 3516): base64 and the identities.
 * Quoted-printable decoders differ in corner cases (a soft break before the end, a lone '='),
 * so a QP part is decoded here. */
bool ifs_structure_server_decodes(const char *encoding)
{
	return is_identity(encoding) || g_ascii_strcasecmp(encoding, "base64") == 0;
}

/* Could mime/ call this leaf an attachment?  Text parts that are displayed are sized by their
 * text; for the others the size comes with PARTS where it is cheap. */
static bool may_be_attachment(const struct imap_part *p)
{
	return g_ascii_strcasecmp(p->type, "text") != 0 ||
	       g_ascii_strcasecmp(p->subtype, "calendar") == 0 ||
	       (p->disposition != NULL && g_ascii_strcasecmp(p->disposition, "attachment") == 0);
}

static void add_item(GArray *items, enum imap_item_kind kind, const char *section,
                     enum ifs_item_role role, const char *prefix)
{
	struct ifs_piece_item it;

	memset(&it, 0, sizeof(it));
	it.item.kind = kind;
	it.item.section = section;
	it.role = role;
	it.prefix = prefix;
	g_array_append_val(items, it);
}

/* BODY.PEEK[s]<n-1.2>: one byte comes back exactly when the section has n bytes. */
static void add_size_check(GArray *items, const char *section, uint64_t claimed)
{
	struct ifs_piece_item it;

	memset(&it, 0, sizeof(it));
	it.item.kind = IMAP_ITEM_BODY;
	it.item.section = section;
	it.item.offset = claimed > 0 ? claimed - 1 : 0;
	it.item.length = 2;
	it.role = IFS_ROLE_SIZE_CHECK;
	it.claimed = claimed;
	g_array_append_val(items, it);
}

bool ifs_structure_end_unsure(const struct imap_part *part)
{
	return part->kind == IMAP_PART_MESSAGE && part->n_parts == 1 &&
	       part->parts[0].kind == IMAP_PART_MULTIPART;
}

static void leaf_size_items(const struct imap_part *p, bool binary, GArray *items)
{
	if (!may_be_attachment(p))
		return;
	if (binary && ifs_structure_server_decodes(p->encoding))
		add_item(items, IMAP_ITEM_BINARY_SIZE, p->section, IFS_ROLE_SIZE, NULL);
	else if (is_identity(p->encoding))
		add_size_check(items, p->section, p->size);
	/* else (QP, or base64 without BINARY): the exact size costs the part's bytes, which
	 * are fetched when the size is asked for (msgdir.h) */
}

static void parts_items(const struct imap_part *p, bool is_root, bool binary, GArray *items)
{
	if (!is_root)
		add_item(items, IMAP_ITEM_MIME, p->section, IFS_ROLE_STORE, "mime");
	switch (p->kind) {
	case IMAP_PART_LEAF:
		leaf_size_items(p, binary, items);
		break;
	case IMAP_PART_MESSAGE:
		add_item(items, IMAP_ITEM_HEADER, p->section, IFS_ROLE_STORE, "head");
		if (is_identity(p->encoding) && !ifs_structure_end_unsure(p))
			add_size_check(items, p->section, p->size);
		break;
	case IMAP_PART_MULTIPART:
		for (unsigned i = 0; i < p->n_parts; i++)
			parts_items(&p->parts[i], false, binary, items);
		break;
	}
}

void ifs_structure_parts_items(const struct imap_part *root, bool binary, GArray *items)
{
	parts_items(root, true, binary, items);
}

void ifs_structure_text_items(GPtrArray *sections, GArray *items)
{
	for (guint i = 0; i < sections->len; i++)
		add_item(items, IMAP_ITEM_BODY, sections->pdata[i], IFS_ROLE_STORE, "body");
}

void ifs_structure_data_item(const struct imap_part *part, bool binary, bool exact,
                             struct imap_fetch_item *item_r, bool *decode_r)
{
	memset(item_r, 0, sizeof(*item_r));
	item_r->section = part->section;
	if (!exact && binary && ifs_structure_server_decodes(part->encoding)) {
		item_r->kind = IMAP_ITEM_BINARY;
		*decode_r = false;
	} else {
		item_r->kind = IMAP_ITEM_BODY;
		*decode_r = !exact;
	}
}

static int fill(const struct imap_part *p, bool is_root, GHashTable *set, struct mime_part *m)
{
	memset(m, 0, sizeof(*m));
	m->id = p->index;
	m->header = is_root ? ifs_pieceset_get(set, IFS_PS_HEADER, NULL)
	                    : ifs_pieceset_get(set, "mime", p->section);
	if (m->header == NULL)
		return -EAGAIN;
	switch (p->kind) {
	case IMAP_PART_LEAF:
		m->kind = MIME_PART_LEAF;
		m->body = ifs_pieceset_get(set, "body", p->section);
		return 0;
	case IMAP_PART_MESSAGE:
		/* the forwarded message: only its header is needed (mime.h) */
		m->kind = MIME_PART_MESSAGE;
		m->n_parts = 1;
		m->parts = g_new0(struct mime_part, 1);
		m->parts[0].kind = MIME_PART_LEAF;
		m->parts[0].id = p->index;
		m->parts[0].header = ifs_pieceset_get(set, "head", p->section);
		return m->parts[0].header != NULL ? 0 : -EAGAIN;
	case IMAP_PART_MULTIPART:
		m->kind = MIME_PART_MULTIPART;
		m->n_parts = p->n_parts;
		m->parts = g_new0(struct mime_part, p->n_parts);
		for (unsigned i = 0; i < p->n_parts; i++) {
			int r = fill(&p->parts[i], false, set, &m->parts[i]);
			if (r < 0)
				return r;
		}
		return 0;
	}
	return -EINVAL;
}

static void clear_tree(struct mime_part *m)
{
	for (size_t i = 0; m->parts != NULL && i < m->n_parts; i++)
		clear_tree(&m->parts[i]);
	g_free(m->parts);
}

void ifs_structure_free_tree(struct mime_part *tree)
{
	if (tree == NULL)
		return;
	clear_tree(tree);
	g_free(tree);
}

int ifs_structure_mime_tree(const struct imap_part *root, GHashTable *set,
                            struct mime_part **tree_r)
{
	struct mime_part *tree = g_new0(struct mime_part, 1);
	int ret = fill(root, true, set, tree);

	if (ret < 0) {
		ifs_structure_free_tree(tree);
		return ret;
	}
	*tree_r = tree;
	return 0;
}

const struct imap_part *ifs_structure_by_index(const struct imap_part *root, unsigned index)
{
	if (root->index == index)
		return root;
	for (unsigned i = 0; i < root->n_parts; i++) {
		const struct imap_part *f = ifs_structure_by_index(&root->parts[i], index);
		if (f != NULL)
			return f;
	}
	return NULL;
}
