/* piece.c — piece sets and their written form (piece.h). */
#include "piece.h"

#include <string.h>

#define MAGIC "IFSPIECE1\n"
#define MAGIC_LEN 10
/* A set holds a few entries per part; a message has at most 10,000 parts (imap.h). */
#define MAX_ENTRIES 100000

GHashTable *ifs_pieceset_new(void)
{
	return g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
	                             (GDestroyNotify)g_bytes_unref);
}

static void put_u16(GByteArray *a, uint16_t v)
{
	guint8 b[2] = {(guint8)v, (guint8)(v >> 8)};
	g_byte_array_append(a, b, 2);
}

static void put_u32(GByteArray *a, uint32_t v)
{
	guint8 b[4];
	for (int i = 0; i < 4; i++)
		b[i] = (guint8)(v >> (8 * i));
	g_byte_array_append(a, b, 4);
}

static void put_u64(GByteArray *a, uint64_t v)
{
	guint8 b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (guint8)(v >> (8 * i));
	g_byte_array_append(a, b, 8);
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GBytes *ifs_pieceset_pack(GHashTable *set)
{
	GByteArray *out = g_byte_array_new();
	GPtrArray *names = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;

	g_hash_table_iter_init(&it, set);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(names, k);

	/* sorted: the same set always gives the same bytes */
	g_ptr_array_sort(names, cmp_names);
	g_byte_array_append(out, (const guint8 *)MAGIC, MAGIC_LEN);
	put_u32(out, names->len);
	for (guint i = 0; i < names->len; i++) {
		const char *name = names->pdata[i];
		GBytes *b = g_hash_table_lookup(set, name);
		size_t len;
		const void *data = g_bytes_get_data(b, &len);
		size_t nlen = strlen(name);

		put_u16(out, (uint16_t)MIN(nlen, G_MAXUINT16));
		g_byte_array_append(out, (const guint8 *)name, (guint)MIN(nlen, G_MAXUINT16));
		put_u64(out, len);
		if (len > 0)
			g_byte_array_append(out, data, (guint)len);
	}
	g_ptr_array_unref(names);
	return g_byte_array_free_to_bytes(out);
}

static bool take(const guint8 **p, const guint8 *end, size_t n, const guint8 **at_r)
{
	if ((size_t)(end - *p) < n)
		return false;
	*at_r = *p;
	*p += n;
	return true;
}

static uint64_t get_le(const guint8 *b, int n)
{
	uint64_t v = 0;
	for (int i = n; i-- > 0;)
		v = v << 8 | b[i];
	return v;
}

GHashTable *ifs_pieceset_unpack(const void *data, size_t len)
{
	const guint8 *p = data, *end = p + len, *at = NULL;
	GHashTable *set;
	uint64_t count;

	if (data == NULL || len < MAGIC_LEN + 4 || memcmp(data, MAGIC, MAGIC_LEN) != 0)
		return NULL;
	p += MAGIC_LEN;
	if (!take(&p, end, 4, &at))
		return NULL;
	count = get_le(at, 4);
	if (count > MAX_ENTRIES)
		return NULL;
	set = ifs_pieceset_new();
	for (uint64_t i = 0; i < count; i++) {
		uint64_t nlen, vlen;
		const guint8 *name, *value;
		if (!take(&p, end, 2, &at))
			goto bad;
		nlen = get_le(at, 2);
		if (!take(&p, end, nlen, &name) || !take(&p, end, 8, &at))
			goto bad;
		vlen = get_le(at, 8);
		if (vlen > (uint64_t)(end - p) || !take(&p, end, vlen, &value) ||
		    memchr(name, '\0', nlen) != NULL)
			goto bad;
		g_hash_table_replace(set, g_strndup((const char *)name, nlen),
		                     g_bytes_new(value, vlen));
	}
	if (p != end)
		goto bad;
	return set;
bad:
	g_hash_table_unref(set);
	return NULL;
}

size_t ifs_pieceset_bytes(GHashTable *set)
{
	GHashTableIter it;
	gpointer k, v;
	size_t n = 0;

	g_hash_table_iter_init(&it, set);
	while (g_hash_table_iter_next(&it, &k, &v))
		n += strlen(k) + g_bytes_get_size(v) + 64;
	return n;
}

void ifs_pieceset_put(GHashTable *set, const char *prefix, const char *section, GBytes *b)
{
	char *name = section != NULL ? g_strconcat(prefix, ":", section, NULL) : g_strdup(prefix);
	g_hash_table_replace(set, name, g_bytes_ref(b));
}

GBytes *ifs_pieceset_get(GHashTable *set, const char *prefix, const char *section)
{
	char *name = section != NULL ? g_strconcat(prefix, ":", section, NULL) : g_strdup(prefix);
	GBytes *b = g_hash_table_lookup(set, name);
	g_free(name);
	return b;
}

bool ifs_pieceset_number(GHashTable *set, const char *prefix, const char *section,
                         uint64_t *n_r)
{
	GBytes *b = ifs_pieceset_get(set, prefix, section);
	size_t len;
	const char *p = b != NULL ? g_bytes_get_data(b, &len) : NULL;
	char buf[24];
	char *end;

	if (p == NULL || len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	if (!g_ascii_isdigit(buf[0]))
		return false;
	*n_r = g_ascii_strtoull(buf, &end, 10);
	return *end == '\0';
}

void ifs_pieceset_put_number(GHashTable *set, const char *prefix, const char *section,
                             uint64_t n)
{
	char *s = g_strdup_printf("%" G_GUINT64_FORMAT, n);
	GBytes *b = g_bytes_new_take(s, strlen(s));
	ifs_pieceset_put(set, prefix, section, b);
	g_bytes_unref(b);
}
