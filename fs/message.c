/* message.c — from raw message bytes (in memory or in a cache file) to struct ifs_cached_msg;
 * the large-message path that keeps attachments out of memory (see message.h). */
#include "message.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <mime.h>
#include <string.h>
#include <unistd.h>

/* Parts smaller than this stay in the reduced copy: not worth a marker. */
#define SPILL_MIN  (64u * 1024)
#define COPY_CHUNK (64u * 1024)

/* One large leaf part replaced by a marker. */
struct spill {
	gint64 start, end; /* its encoded body in the file */
	GMimeContentEncoding enc;
	GMimeDataWrapper *content; /* borrowed from the GMime tree while it lives */
	char *marker;
	uint64_t off, size; /* its decoded bytes in the spill file */
};

static void fill_from_mime(struct ifs_cached_msg *msg, const struct mime_message *mime,
                           GArray *spills, struct ifs_fd *spill_fd)
{
	size_t n = mime_message_n_attachments(mime);

	for (int v = 0; v < MIME_VIEW_COUNT; v++) {
		GBytes *b = mime_message_view(mime, (enum mime_view)v);
		if (b != NULL)
			msg->views[v].mem = g_bytes_ref(b);
	}
	msg->attachments = g_array_sized_new(FALSE, TRUE, sizeof(struct ifs_attachment), (guint)n);
	for (size_t i = 0; i < n; i++) {
		struct ifs_attachment a;
		GBytes *data = mime_message_attachment_data(mime, i);
		size_t len;
		const char *p = g_bytes_get_data(data, &len);
		bool spilled = false;

		memset(&a, 0, sizeof(a));
		a.name = g_strdup(mime_message_attachment_name(mime, i));
		/* A marker (perhaps with the line end that preceded the boundary) stands for the
		 * decoded part in the spill file. */
		while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
			len--;
		for (guint k = 0; spills != NULL && k < spills->len && !spilled; k++) {
			const struct spill *s = &g_array_index(spills, struct spill, k);
			if (len == strlen(s->marker) && memcmp(p, s->marker, len) == 0) {
				a.data.file = ifs_fd_ref(spill_fd);
				a.data.off = s->off;
				a.data.size = s->size;
				spilled = true;
			}
		}
		if (!spilled)
			a.data.mem = g_bytes_ref(data);
		g_array_append_val(msg->attachments, a);
	}
}

int ifs_message_from_bytes(GBytes *raw, struct ifs_cached_msg *msg)
{
	struct mime_message *mime = NULL;
	size_t len;
	const void *data = g_bytes_get_data(raw, &len);
	int ret = mime_message_parse(data, len, &mime);

	if (ret < 0)
		return ret;
	msg->raw.mem = g_bytes_ref(raw);
	fill_from_mime(msg, mime, NULL, NULL);
	mime_message_free(mime);
	return 0;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static bool spillable(GMimeContentEncoding enc)
{
	switch (enc) {
	case GMIME_CONTENT_ENCODING_DEFAULT:
	case GMIME_CONTENT_ENCODING_7BIT:
	case GMIME_CONTENT_ENCODING_8BIT:
	case GMIME_CONTENT_ENCODING_BINARY:
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
		return true;
	default:
		return false; /* uuencode: the marker could not stand in for it */
	}
}

struct collect_ctx {
	GArray *spills;
	guint32 nonce[2];
};

static void collect_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	struct collect_ctx *ctx = data;
	GMimeContentType *ct;
	GMimeDataWrapper *content;
	GMimeStream *stream;
	struct spill s;

	/* Leaves only; a forwarded message (GMimeMessagePart) is shown as its exact bytes, and
	 * text parts may be displayed: both stay as they are. */
	if (!GMIME_IS_PART(part))
		return;
	ct = g_mime_object_get_content_type(part);
	if (ct == NULL || g_mime_content_type_is_type(ct, "text", "*"))
		return;
	content = g_mime_part_get_content(GMIME_PART(part));
	if (content == NULL)
		return;
	stream = g_mime_data_wrapper_get_stream(content);
	if (stream == NULL || stream->bound_end < 0 || stream->bound_start < 0 ||
	    stream->bound_end - stream->bound_start < (gint64)SPILL_MIN)
		return;
	memset(&s, 0, sizeof(s));
	s.enc = g_mime_data_wrapper_get_encoding(content);
	if (!spillable(s.enc))
		return;
	s.start = stream->bound_start;
	s.end = stream->bound_end;
	if (ctx->spills->len > 0 &&
	    g_array_index(ctx->spills, struct spill, ctx->spills->len - 1).end > s.start)
		return; /* not in file order: leave it alone */
	s.content = content;
	s.marker = g_strdup_printf("imapfs-spill-%08x%08x-%u", ctx->nonce[0], ctx->nonce[1],
	                           ctx->spills->len);
	g_array_append_val(ctx->spills, s);
}

static void spill_clear(void *p)
{
	g_free(((struct spill *)p)->marker);
}

/* The message with each spill's body replaced by its marker (encoded as the part is). */
static int reduced_copy(int fd, uint64_t size, GArray *spills, GBytes **out_r)
{
	GByteArray *out = g_byte_array_new();
	char *buf = g_malloc(COPY_CHUNK);
	uint64_t pos = 0;
	int ret = 0;

	for (guint k = 0; k <= spills->len && ret == 0; k++) {
		uint64_t until =
		    k < spills->len ? (uint64_t)g_array_index(spills, struct spill, k).start : size;
		while (pos < until && ret == 0) {
			size_t n = until - pos > COPY_CHUNK ? COPY_CHUNK : (size_t)(until - pos);
			ret = pread_full(fd, buf, n, pos);
			if (ret == 0)
				g_byte_array_append(out, (guint8 *)buf, (guint)n);
			pos += n;
		}
		if (k < spills->len && ret == 0) {
			const struct spill *s = &g_array_index(spills, struct spill, k);
			if (s->enc == GMIME_CONTENT_ENCODING_BASE64) {
				char *b64 =
				    g_base64_encode((const guchar *)s->marker, strlen(s->marker));
				g_byte_array_append(out, (guint8 *)b64, (guint)strlen(b64));
				g_free(b64);
			} else {
				g_byte_array_append(out, (guint8 *)s->marker,
				                    (guint)strlen(s->marker));
			}
			g_byte_array_append(out, (const guint8 *)"\r\n", 2);
			pos = (uint64_t)s->end;
		}
	}
	g_free(buf);
	if (ret < 0) {
		g_byte_array_unref(out);
		return ret;
	}
	*out_r = g_byte_array_free_to_bytes(out);
	return 0;
}

/* Decode every spill into spill_fd, one after another. */
static int decode_spills(int spill_fd, GArray *spills)
{
	int dfd = dup(spill_fd);
	GMimeStream *out;
	int ret = 0;

	if (dfd < 0)
		return -errno;
	out = g_mime_stream_fs_new(dfd); /* owns dfd */
	for (guint k = 0; k < spills->len && ret == 0; k++) {
		struct spill *s = &g_array_index(spills, struct spill, k);
		gint64 start = g_mime_stream_tell(out);
		if (g_mime_data_wrapper_write_to_stream(s->content, out) < 0 ||
		    g_mime_stream_flush(out) < 0)
			ret = errno != 0 ? -errno : -EIO;
		s->off = (uint64_t)start;
		s->size = (uint64_t)(g_mime_stream_tell(out) - start);
	}
	g_object_unref(out);
	return ret;
}

static int read_whole(int fd, uint64_t offset, uint64_t size, GBytes **out_r)
{
	char *buf;
	int ret;

	if (size > G_MAXSIZE / 2)
		return -EFBIG;
	buf = g_malloc(size > 0 ? (size_t)size : 1);
	ret = pread_full(fd, buf, (size_t)size, offset);
	if (ret < 0) {
		g_free(buf);
		return ret;
	}
	*out_r = g_bytes_new_take(buf, (size_t)size);
	return 0;
}

int ifs_message_from_file(int fd, uint64_t offset, uint64_t size, struct ifs_bodycache *bc,
                          struct ifs_cached_msg *msg)
{
	struct collect_ctx ctx = {NULL, {g_random_int(), g_random_int()}};
	GMimeStream *stream = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *message = NULL;
	struct mime_message *mime = NULL;
	struct ifs_fd *spill = NULL;
	GBytes *reduced = NULL;
	int dfd, ret;

	if (size <= IFS_BIG_MESSAGE || bc == NULL || offset > 0) {
		GBytes *raw = NULL;
		ret = read_whole(fd, offset, size, &raw);
		close(fd);
		if (ret < 0)
			return ret;
		ret = ifs_message_from_bytes(raw, msg);
		g_bytes_unref(raw);
		return ret;
	}

	mime_init();
	ctx.spills = g_array_new(FALSE, TRUE, sizeof(struct spill));
	g_array_set_clear_func(ctx.spills, spill_clear);
	dfd = dup(fd);
	if (dfd < 0) {
		ret = -errno;
		goto out;
	}
	/* GMime reads the file through its own descriptor and, persisting the stream, keeps
	 * each part's body as a range of it rather than a copy. */
	stream = g_mime_stream_fs_new(dfd);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_persist_stream(parser, TRUE);
	message = g_mime_parser_construct_message(parser, NULL);
	if (message != NULL)
		g_mime_message_foreach(message, collect_part, &ctx);
	if (ctx.spills->len > 0) {
		int sfd = ifs_bodycache_tmpfile(bc);
		if (sfd < 0) {
			ret = sfd;
			goto out;
		}
		spill = ifs_fd_new(sfd);
		ret = decode_spills(sfd, ctx.spills);
		if (ret < 0 && ret != -ENOMEM) {
			/* the cache's disk failed (full, read-only, ...): once more, in a scratch
			 * file */
			ifs_bodycache_tmpfile_failed(bc, -ret);
			ifs_fd_unref(&spill);
			sfd = ifs_bodycache_tmpfile(bc);
			if (sfd < 0) {
				ret = sfd;
				goto out;
			}
			spill = ifs_fd_new(sfd);
			ret = decode_spills(sfd, ctx.spills);
		}
		if (ret < 0)
			goto out;
	}
	ret = reduced_copy(fd, size, ctx.spills, &reduced);
	if (ret < 0)
		goto out;
	/* The GMime tree is no longer needed: free it before mime/ builds its own. */
	g_clear_object(&message);
	g_clear_object(&parser);
	g_clear_object(&stream);
	ret = mime_message_parse(g_bytes_get_data(reduced, NULL), g_bytes_get_size(reduced), &mime);
	if (ret < 0)
		goto out;
	fill_from_mime(msg, mime, ctx.spills, spill);
	mime_message_free(mime);
	msg->raw.file = ifs_fd_new(fd);
	msg->raw.off = 0;
	msg->raw.size = size;
	fd = -1;
	g_debug("large message (%" G_GUINT64_FORMAT " bytes): %u parts decoded to a spill file, "
	        "%zu bytes parsed in memory",
	        size, ctx.spills->len, g_bytes_get_size(reduced));
out:
	if (ret < 0)
		ifs_cached_msg_clear(msg);
	g_clear_object(&message);
	g_clear_object(&parser);
	g_clear_object(&stream);
	if (reduced != NULL)
		g_bytes_unref(reduced);
	ifs_fd_unref(&spill);
	g_array_unref(ctx.spills);
	if (fd >= 0)
		close(fd);
	return ret;
}
