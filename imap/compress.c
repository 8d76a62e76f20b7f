/* compress.c — the COMPRESS=DEFLATE layer (RFC 4978) under a connection's reads and writes.
 *
 * Raw deflate (no zlib header, window bits -15) in both directions, over zlib.  Each write is
 * flushed with Z_SYNC_FLUSH, so the server can decode a command as soon as it arrives.  The
 * reader hands out every byte zlib can decode from what has arrived so far: a server's flush
 * after a response leaves its deflate block unfinished (Z_SYNC_FLUSH adds an empty stored
 * block, Z_PARTIAL_FLUSH an empty fixed one that ends in the middle of a byte), and a reader
 * that waited for the block to end, or for the 00 00 ff ff of a sync flush, would wait
 * forever.
 *
 * Memory stays bounded whatever the server sends: input is taken in the socket's chunks and
 * inflated into a window the caller gives (its read chunk), never all at once, so a
 * "compression bomb" (a few KB inflating to gigabytes) reaches the response parser a window at
 * a time and meets the parser's caps (response text, literal sizes) there, exactly as the same
 * bytes sent uncompressed would.  To say truthfully whether decoded bytes are waiting (IDLE
 * polls the socket only when none are), a window that fills is followed by a one-byte peek,
 * held back for the next call.  Bytes decoded before a fault in the stream are handed out
 * first, the fault is reported by the call after.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "imap"

struct imap_zstream {
	z_stream in;  /* inflater: server -> client */
	z_stream out; /* deflater: client -> server */
	bool in_ready, out_ready;
	GByteArray *pending; /* compressed bytes received but not yet given to zlib */
	size_t pending_pos;
	int held;    /* a decoded byte peeked after a full window, or -1 */
	bool ended;  /* the server's stream had its final block */
	bool failed; /* corrupt input: error says why; every later pull fails */
	char error[128];
	uint64_t raw_in, plain_in, plain_out, raw_out;
};

int imap_zstream_new(struct imap_zstream **z_r)
{
	struct imap_zstream *z = g_new0(struct imap_zstream, 1);

	*z_r = NULL;
	z->held = -1;
	z->pending = g_byte_array_new();
	if (inflateInit2(&z->in, -15) != Z_OK)
		goto fail;
	z->in_ready = true;
	/* level 1: what the client sends is short command lines; RFC 4978 finds zlib's cheapest
	 * setting already gains most of what there is to gain */
	if (deflateInit2(&z->out, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		goto fail;
	z->out_ready = true;
	*z_r = z;
	return 0;
fail:
	imap_zstream_free(z);
	return -ENOMEM;
}

void imap_zstream_free(struct imap_zstream *z)
{
	if (z == NULL)
		return;
	if (z->in_ready)
		inflateEnd(&z->in);
	if (z->out_ready)
		deflateEnd(&z->out);
	g_byte_array_unref(z->pending);
	g_free(z);
}

int imap_zstream_deflate(struct imap_zstream *z, const void *data, size_t len, GByteArray *out)
{
	uint8_t buf[16384];

	z->out.next_in = (Bytef *)data;
	z->plain_out += len;
	/* zlib counts in uInt: hand over large writes in pieces */
	while (len > 0 || z->out.avail_in > 0) {
		if (z->out.avail_in == 0) {
			uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
			z->out.avail_in = n;
			len -= n;
		}
		bool last = len == 0;
		do {
			z->out.next_out = buf;
			z->out.avail_out = sizeof(buf);
			int r = deflate(&z->out, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
			if (r != Z_OK && r != Z_BUF_ERROR) {
				g_snprintf(z->error, sizeof(z->error), "deflate failed (%d)", r);
				return -EIO;
			}
			size_t n = sizeof(buf) - z->out.avail_out;
			g_byte_array_append(out, buf, (guint)n);
			z->raw_out += n;
			/* a full buffer may leave flush output inside zlib: go round again */
		} while (z->out.avail_out == 0);
		if (last)
			break;
	}
	return 0;
}

void imap_zstream_push(struct imap_zstream *z, const void *data, size_t len)
{
	if (z->pending_pos == z->pending->len) {
		g_byte_array_set_size(z->pending, 0);
		z->pending_pos = 0;
	}
	g_byte_array_append(z->pending, data, (guint)len);
	z->raw_in += len;
}

/* Record why the stream cannot be decoded further.  -EPROTO unless bytes decoded before the
 * fault are still to be handed out (produced > 0): the fault then comes at the next call, so
 * what comes out does not depend on the window size. */
static int fail(struct imap_zstream *z, size_t produced, const char *why)
{
	g_strlcpy(z->error, why, sizeof(z->error));
	z->failed = true;
	return produced > 0 ? 0 : -EPROTO;
}

/* One inflate() call from the pending input into out[0..cap).  0 and *n_r, or -EPROTO. */
static int inflate_some(struct imap_zstream *z, uint8_t *out, size_t cap, size_t *n_r)
{
	size_t avail = z->pending->len - z->pending_pos;

	*n_r = 0;
	if (z->failed)
		return -EPROTO;
	if (z->ended)
		return avail > 0 ? fail(z, 0, "data after the end of the compressed stream") : 0;
	z->in.next_in = z->pending->data + z->pending_pos;
	z->in.avail_in = avail > UINT_MAX ? UINT_MAX : (uInt)avail;
	z->in.next_out = out;
	z->in.avail_out = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
	int r = inflate(&z->in, Z_SYNC_FLUSH);
	size_t used = (size_t)(z->in.next_in - (z->pending->data + z->pending_pos));
	z->pending_pos += used;
	*n_r = (size_t)(z->in.next_out - out);
	switch (r) {
	case Z_OK:
	case Z_BUF_ERROR: /* no progress possible: needs more input (or room) */
		return 0;
	case Z_STREAM_END:
		z->ended = true;
		if (z->pending_pos < z->pending->len)
			return fail(z, *n_r, "data after the end of the compressed stream");
		return 0;
	default: { /* Z_DATA_ERROR, Z_NEED_DICT (a raw stream has none), Z_MEM_ERROR */
		char why[sizeof(z->error)];
		g_snprintf(why, sizeof(why), "corrupt compressed data (%s)",
		           z->in.msg != NULL ? z->in.msg : "inflate failed");
		return fail(z, *n_r, why);
	}
	}
}

int imap_zstream_pull(struct imap_zstream *z, uint8_t *out, size_t cap, size_t *n_r)
{
	size_t n = 0, got;
	int err;

	*n_r = 0;
	if (cap == 0)
		return 0;
	if (z->held >= 0) {
		out[n++] = (uint8_t)z->held;
		z->held = -1;
	}
	if (n < cap) {
		if ((err = inflate_some(z, out + n, cap - n, &got)) < 0 && n == 0)
			return err;
		n += got;
	}
	if (n == cap && !z->failed) {
		/* the window is full: is there more?  Peek one byte so pending() can tell (a
		 * fault found now is reported by the next call, the window is handed out) */
		uint8_t b;
		if (inflate_some(z, &b, 1, &got) == 0 && got == 1)
			z->held = b;
	}
	z->plain_in += n;
	*n_r = n;
	return 0;
}

bool imap_zstream_pending(const struct imap_zstream *z)
{
	/* zlib takes all input while it has room for output, so input is left over only when
	 * the peek filled too (a byte is held) or bytes were pushed and not pulled yet */
	return z->held >= 0 || z->failed || z->pending_pos < z->pending->len;
}

const char *imap_zstream_error(const struct imap_zstream *z)
{
	return z->error;
}

void imap_zstream_counts(const struct imap_zstream *z, uint64_t *raw_in_r, uint64_t *plain_in_r,
                         uint64_t *raw_out_r, uint64_t *plain_out_r)
{
	*raw_in_r = z->raw_in;
	*plain_in_r = z->plain_in;
	*raw_out_r = z->raw_out;
	*plain_out_r = z->plain_out;
}
