/* names.c — file names for attachments: whatever the sender wrote (or nothing at all) becomes a
 * name that is safe as a directory entry, unique within the message and the same every time the
 * message is parsed.
 *
 * The rules are those of mime.h: valid UTF-8, no '/', no NUL or control characters, not "." or
 * "..", 1..255 bytes cut on a character boundary.  Bidi override characters are also replaced,
 * since they let "invoice\u202Efdp.exe" display as "invoiceexe.pdf".
 */
#include "mime-private.h"

#include <string.h>

/* Extensions kept when a long name is cut or a duplicate gets " (2)" are at most this long
 * (including the dot); anything longer is not an extension worth keeping. */
#define EXT_MAX 16

static bool is_forbidden_char(gunichar c)
{
	return c == '/' || c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) ||
	       (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e ||
	       c == 0x200f || c == 0x061c;
}

bool mime_name_is_safe(const char *name)
{
	size_t len;

	if (name == NULL)
		return false;
	len = strlen(name);
	if (len == 0 || len > MIME_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	if (!g_utf8_validate(name, (gssize)len, NULL))
		return false;
	for (const char *p = name; *p != '\0'; p = g_utf8_next_char(p))
		if (is_forbidden_char(g_utf8_get_char(p)))
			return false;
	return true;
}

/* Split name into stem and extension (".pdf"); the extension is empty when there is none worth
 * keeping.  Returns the length of the stem. */
static size_t split_ext(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t len = strlen(name);

	if (dot == NULL || dot == name || len - (size_t)(dot - name) > EXT_MAX || dot[1] == '\0' ||
	    strchr(dot, ' ') != NULL)
		return len;
	return (size_t)(dot - name);
}

char *mime_name_fit(const char *stem, const char *suffix, const char *ext)
{
	size_t sl = strlen(stem), xl = strlen(suffix), el = strlen(ext);
	size_t budget;

	if (xl + el >= MIME_NAME_MAX) {
		ext = "";
		el = 0;
	}
	if (xl >= MIME_NAME_MAX) {
		xl = 0;
		suffix = "";
	}
	budget = MIME_NAME_MAX - xl - el;
	if (sl > budget) {
		sl = budget;
		/* back up to the first byte of a UTF-8 sequence */
		while (sl > 0 && ((unsigned char)stem[sl] & 0xc0) == 0x80)
			sl--;
	}
	return g_strdup_printf("%.*s%s%s", (int)sl, stem, suffix, ext);
}

char *mime_name_sanitize(const char *name)
{
	char *valid, *stripped, *result;
	GString *clean;
	size_t stem_len;

	if (name == NULL)
		return NULL;
	valid = mime_utf8_sanitize(name, -1, NULL);
	clean = g_string_sized_new(strlen(valid) + 1);
	for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (is_forbidden_char(c))
			g_string_append_c(clean, '_');
		else
			g_string_append_unichar(clean, c);
	}
	g_free(valid);
	stripped = g_strstrip(clean->str);
	if (stripped[0] == '\0' || strcmp(stripped, ".") == 0 || strcmp(stripped, "..") == 0) {
		g_string_free(clean, TRUE);
		return NULL;
	}
	if (strlen(stripped) <= MIME_NAME_MAX) {
		result = g_strdup(stripped);
	} else {
		char *stem;
		stem_len = split_ext(stripped);
		stem = g_strndup(stripped, stem_len);
		result = mime_name_fit(stem, "", stripped + stem_len);
		g_free(stem);
	}
	g_string_free(clean, TRUE);
	return result;
}

char *mime_name_unique(GHashTable *used, const char *name)
{
	size_t stem_len;
	char *stem, *candidate = NULL;
	gpointer orig_key, value;
	unsigned k;

	if (!g_hash_table_lookup_extended(used, name, &orig_key, &value)) {
		g_hash_table_insert(used, g_strdup(name), GUINT_TO_POINTER(2));
		return g_strdup(name);
	}
	/* The value remembers the next suffix worth trying for this name: every smaller one is
	 * taken already (names are never removed), so the result is the same as counting from 2
	 * but a message with 20,000 "image.png" stays linear. */
	k = GPOINTER_TO_UINT(value);
	stem_len = split_ext(name);
	stem = g_strndup(name, stem_len);
	for (;; k++) {
		char suffix[32];
		g_snprintf(suffix, sizeof(suffix), " (%u)", k);
		candidate = mime_name_fit(stem, suffix, name + stem_len);
		if (!g_hash_table_contains(used, candidate))
			break;
		g_free(candidate);
	}
	g_free(stem);
	g_hash_table_insert(used, g_strdup(name), GUINT_TO_POINTER(k + 1));
	g_hash_table_insert(used, g_strdup(candidate), GUINT_TO_POINTER(2));
	return candidate;
}

static const char *const type_ext[][2] = {
    {"image/jpeg", "jpg"},
    {"image/jpg", "jpg"},
    {"image/pjpeg", "jpg"},
    {"image/png", "png"},
    {"image/gif", "gif"},
    {"image/webp", "webp"},
    {"image/svg+xml", "svg"},
    {"image/bmp", "bmp"},
    {"image/tiff", "tif"},
    {"image/heic", "heic"},
    {"image/x-icon", "ico"},
    {"image/vnd.microsoft.icon", "ico"},
    {"application/pdf", "pdf"},
    {"application/zip", "zip"},
    {"application/x-zip-compressed", "zip"},
    {"application/gzip", "gz"},
    {"application/x-gzip", "gz"},
    {"application/x-tar", "tar"},
    {"application/x-7z-compressed", "7z"},
    {"application/msword", "doc"},
    {"application/vnd.ms-excel", "xls"},
    {"application/vnd.ms-powerpoint", "ppt"},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"},
    {"application/vnd.oasis.opendocument.text", "odt"},
    {"application/vnd.oasis.opendocument.spreadsheet", "ods"},
    {"application/rtf", "rtf"},
    {"application/json", "json"},
    {"application/xml", "xml"},
    {"application/ics", "ics"},
    {"application/octet-stream", "bin"},
    {"application/pgp-signature", "asc"},
    {"application/pgp-encrypted", "asc"},
    {"application/pgp-keys", "asc"},
    {"application/pkcs7-signature", "p7s"},
    {"application/x-pkcs7-signature", "p7s"},
    {"application/pkcs7-mime", "p7m"},
    {"application/x-pkcs7-mime", "p7m"},
    {"text/plain", "txt"},
    {"text/html", "html"},
    {"text/calendar", "ics"},
    {"text/csv", "csv"},
    {"text/xml", "xml"},
    {"text/markdown", "md"},
    {"text/x-diff", "patch"},
    {"text/x-patch", "patch"},
    {"text/rfc822-headers", "txt"},
    {"text/enriched", "txt"},
    {"message/rfc822", "eml"},
    {"message/global", "eml"},
    {"message/delivery-status", "txt"},
    {"message/disposition-notification", "txt"},
    {"audio/mpeg", "mp3"},
    {"audio/ogg", "ogg"},
    {"audio/wav", "wav"},
    {"audio/x-wav", "wav"},
    {"video/mp4", "mp4"},
    {"video/quicktime", "mov"},
    {"video/mpeg", "mpg"},
};

char *mime_name_from_type(const char *type, const char *subtype, size_t index)
{
	char *full = g_strdup_printf("%s/%s", type != NULL ? type : "application",
	                             subtype != NULL ? subtype : "octet-stream");
	const char *ext = NULL;
	char *result;
	size_t n;

	for (size_t i = 0; i < G_N_ELEMENTS(type_ext) && ext == NULL; i++)
		if (g_ascii_strcasecmp(full, type_ext[i][0]) == 0)
			ext = type_ext[i][1];
	g_free(full);
	if (ext == NULL && subtype != NULL) {
		/* an unknown but plain subtype ("image/avif") is a fair extension */
		n = strlen(subtype);
		bool plain = n > 0 && n <= 8;
		for (size_t i = 0; plain && i < n; i++)
			plain = g_ascii_isalnum(subtype[i]);
		if (plain) {
			char *lower = g_ascii_strdown(subtype, -1);
			result = g_strdup_printf("part-%zu.%s", index, lower);
			g_free(lower);
			return result;
		}
	}
	if (ext == NULL)
		ext = (type != NULL && g_ascii_strcasecmp(type, "text") == 0) ? "txt" : "bin";
	return g_strdup_printf("part-%zu.%s", index, ext);
}
