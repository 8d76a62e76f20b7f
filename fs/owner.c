/* owner.c — -o uid=, gid=, umask=: the owner and modes of everything shown (rule in owner.h). */
#include "owner.h"

#include <errno.h>
#include <glib.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

/* A decimal id without sign or junk, below the (uid_t)-1 that means "no change" to chown. */
static bool parse_id(const char *s, uint32_t *id_r)
{
	guint64 v;

	if (!g_ascii_isdigit(s[0]) ||
	    !g_ascii_string_to_unsigned(s, 10, 0, UINT32_MAX - 1, &v, NULL))
		return false;
	*id_r = (uint32_t)v;
	return true;
}

int ifs_owner_parse(const char *uid, const char *gid, const char *umask, struct ifs_owner *own_r,
                    char **errmsg_r)
{
	mode_t mask = IFS_DEFAULT_UMASK;
	uint32_t id;

	own_r->uid = getuid();
	own_r->gid = getgid();
	if (uid != NULL) {
		struct passwd *pw;
		if (parse_id(uid, &id)) {
			own_r->uid = id;
		} else if ((pw = getpwnam(uid)) != NULL) {
			own_r->uid = pw->pw_uid;
		} else {
			*errmsg_r =
			    g_strdup_printf("-o uid=%s: no such user (give a user name or a "
			                    "number)",
			                    uid);
			return -EINVAL;
		}
	}
	if (gid != NULL) {
		struct group *gr;
		if (parse_id(gid, &id)) {
			own_r->gid = id;
		} else if ((gr = getgrnam(gid)) != NULL) {
			own_r->gid = gr->gr_gid;
		} else {
			*errmsg_r =
			    g_strdup_printf("-o gid=%s: no such group (give a group name or a "
			                    "number)",
			                    gid);
			return -EINVAL;
		}
	}
	if (umask != NULL) {
		guint64 v;
		if (umask[0] == '\0' || strspn(umask, "01234567") != strlen(umask) ||
		    !g_ascii_string_to_unsigned(umask, 8, 0, 0777, &v, NULL)) {
			*errmsg_r =
			    g_strdup_printf("-o umask=%s: not an octal mask from 000 to 777 "
			                    "(022 lets every local user read the mail)",
			                    umask);
			return -EINVAL;
		}
		mask = (mode_t)v;
	}
	own_r->file_mode = 0444 & ~mask;
	own_r->dir_mode = 0555 & ~mask;
	return 0;
}
