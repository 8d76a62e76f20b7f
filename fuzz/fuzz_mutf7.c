/* fuzz_mutf7.c — libFuzzer target for modified UTF-7 mailbox names.
 *
 * The input (up to its first NUL) is decoded; whenever decoding succeeds, encoding the result
 * must give back exactly the input (the decoder accepts only canonical forms), and the decoded
 * text must be valid UTF-8.  Independently, if the input is valid UTF-8 it is encoded, and
 * decoding that must give back the input.  Any violation calls abort().
 */
#include "imap-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = g_strndup((const char *)data, size); /* stops at the first NUL */
	char *dec = NULL, *enc = NULL;
	if (imap_mutf7_decode(in, &dec) == 0) {
		if (dec == NULL || !g_utf8_validate(dec, -1, NULL))
			abort();
		if (imap_mutf7_encode(dec, &enc) != 0 || strcmp(enc, in) != 0)
			abort(); /* encode(decode(x)) must be x */
		g_free(enc);
		enc = NULL;
	} else if (dec != NULL) {
		abort();
	}
	g_free(dec);
	dec = NULL;
	if (g_utf8_validate(in, -1, NULL)) {
		if (imap_mutf7_encode(in, &enc) != 0)
			abort();
		for (const char *p = enc; *p; p++) {
			if (*p < 0x20 || *p > 0x7e)
				abort(); /* the wire form is printable ASCII */
		}
		if (imap_mutf7_decode(enc, &dec) != 0 || strcmp(dec, in) != 0)
			abort(); /* decode(encode(s)) must be s */
	} else if (imap_mutf7_encode(in, &enc) != -EINVAL || enc != NULL) {
		abort();
	}
	g_free(enc);
	g_free(dec);
	g_free(in);
	return 0;
}
