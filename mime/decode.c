/* decode.c — transfer decoding of a leaf part's body, streamed (mime.h: struct mime_decoder).
 * mime.c decodes every leaf it shows through this, and fs/ decodes the parts it fetches on
 * their own through it too, so both give the same bytes for the same body. */
#include "mime.h"

#include <string.h>

#include <gmime/gmime.h>

struct mime_decoder {
	GMimeFilter *filter; /* NULL: identity */
};

struct mime_decoder *mime_decoder_new(const char *encoding)
{
	struct mime_decoder *d = g_new0(struct mime_decoder, 1);
	GMimeContentEncoding enc;

	mime_init();
	enc = encoding != NULL ? g_mime_content_encoding_from_string(encoding)
	                       : GMIME_CONTENT_ENCODING_DEFAULT;
	switch (enc) {
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
	case GMIME_CONTENT_ENCODING_UUENCODE:
		d->filter = g_mime_filter_basic_new(enc, FALSE);
		break;
	default:
		break;
	}
	return d;
}

static void run(struct mime_decoder *d, const void *in, size_t len, GByteArray *out, bool last)
{
	char *outbuf;
	size_t outlen, outprespace;

	if (d->filter == NULL) {
		if (len > 0)
			g_byte_array_append(out, in, (guint)len);
		return;
	}
	/* GMime's filters take a writable buffer; they do not change the input */
	if (last)
		g_mime_filter_complete(d->filter, (char *)in, len, 0, &outbuf, &outlen,
		                       &outprespace);
	else
		g_mime_filter_filter(d->filter, (char *)in, len, 0, &outbuf, &outlen, &outprespace);
	if (outlen > 0)
		g_byte_array_append(out, (const guint8 *)outbuf, (guint)outlen);
}

void mime_decoder_step(struct mime_decoder *d, const void *in, size_t len, GByteArray *out)
{
	run(d, in != NULL ? in : "", len, out, false);
}

void mime_decoder_finish(struct mime_decoder *d, GByteArray *out)
{
	run(d, "", 0, out, true);
}

void mime_decoder_free(struct mime_decoder *d)
{
	if (d == NULL)
		return;
	if (d->filter != NULL)
		g_object_unref(d->filter);
	g_free(d);
}
