/* names.c — folder-name components to directory entry names and back (rules in names.h).
 * Kept free of FUSE and IMAP so the unit test can link it alone. */
#include "names.h"

#include <string.h>

#define DIV_SLASH "\xe2\x88\x95" /* U+2215, shown in place of '/' */

/* ^[0-9]+(\.d)*$ */
static bool digits_then_dotd(const char *s)
{
	size_t i = 0;
	while (g_ascii_isdigit(s[i]))
		i++;
	if (i == 0)
		return false;
	while (s[i] != '\0') {
		if (s[i] != '.' || s[i + 1] != 'd')
			return false;
		i += 2;
	}
	return true;
}

/* ^\.search(\.d)*$: the name of the search directory every folder has (search.h) */
static bool search_then_dotd(const char *s)
{
	size_t i = strlen(IFS_SEARCH_DIR);
	if (strncmp(s, IFS_SEARCH_DIR, i) != 0)
		return false;
	for (; s[i] != '\0'; i += 2)
		if (s[i] != '.' || s[i + 1] != 'd')
			return false;
	return true;
}

char *ifs_folder_entry_name(const char *component, const char **why_r)
{
	const char *why = NULL;
	char *out = NULL;

	if (component == NULL || component[0] == '\0')
		why = "empty name component";
	else if (!g_utf8_validate(component, -1, NULL))
		why = "name is not valid UTF-8";
	else if (strcmp(component, ".") == 0 || strcmp(component, "..") == 0)
		why = "name is \".\" or \"..\"";
	if (why != NULL)
		goto fail;

	if (strchr(component, '/') != NULL) {
		char **parts = g_strsplit(component, "/", -1);
		out = g_strjoinv(DIV_SLASH, parts);
		g_strfreev(parts);
	} else if (digits_then_dotd(component) || search_then_dotd(component)) {
		out = g_strconcat(component, ".d", NULL);
	} else {
		out = g_strdup(component);
	}
	if (strlen(out) > IFS_NAME_MAX) {
		why = "name longer than 255 bytes";
		g_free(out);
		goto fail;
	}
	return out;
fail:
	if (why_r != NULL)
		*why_r = why;
	return NULL;
}

char *ifs_folder_component(const char *entry)
{
	size_t len = strlen(entry);
	if (len > 2 && (digits_then_dotd(entry) || search_then_dotd(entry)) &&
	    strcmp(entry + len - 2, ".d") == 0)
		return g_strndup(entry, len - 2);
	if (strstr(entry, DIV_SLASH) != NULL) {
		char **parts = g_strsplit(entry, DIV_SLASH, -1);
		char *out = g_strjoinv("/", parts);
		g_strfreev(parts);
		return out;
	}
	return g_strdup(entry);
}

char **ifs_folder_entry_path(const char *name, char delimiter, const char **why_r)
{
	char sep[2] = {delimiter, '\0'};
	char **parts;

	if (name == NULL || name[0] == '\0') {
		if (why_r != NULL)
			*why_r = "empty folder name";
		return NULL;
	}
	if (delimiter == '\0') {
		parts = g_new0(char *, 2);
		parts[0] = g_strdup(name);
	} else {
		parts = g_strsplit(name, sep, -1);
	}
	for (size_t i = 0; parts[i] != NULL; i++) {
		char *entry = ifs_folder_entry_name(parts[i], why_r);
		if (entry == NULL) {
			g_strfreev(parts);
			return NULL;
		}
		g_free(parts[i]);
		parts[i] = entry;
	}
	return parts;
}

const char *ifs_folder_shown_name(const char *raw_name, const char *decoded, bool *as_sent_r,
                                  const char **why_r)
{
	bool ascii = true;

	if (as_sent_r != NULL)
		*as_sent_r = false;
	if (decoded != NULL)
		return decoded;
	for (const char *c = raw_name; *c != '\0'; c++)
		ascii = ascii && (unsigned char)*c < 0x80;
	if (ascii || !g_utf8_validate(raw_name, -1, NULL)) {
		if (why_r != NULL)
			*why_r = "an undecodable name (not modified UTF-7 nor raw UTF-8)";
		return NULL;
	}
	if (as_sent_r != NULL)
		*as_sent_r = true;
	return raw_name;
}

bool ifs_parse_uid(const char *s, guint32 *uid_r)
{
	guint64 v = 0;
	size_t i;

	if (s[0] < '1' || s[0] > '9')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (!g_ascii_isdigit(s[i]) || i >= 10)
			return false;
		v = v * 10 + (guint64)(s[i] - '0');
	}
	if (v > G_MAXUINT32)
		return false;
	*uid_r = (guint32)v;
	return true;
}
