/* config.c — find, parse and validate the configuration file, and obtain the password (see
 * config.h).  Every failure becomes one line that names the file, the key and what to do.
 * With auth = oauth2 no secret is obtained here: oauth_cmd runs whenever a token is needed
 * (fs/token.c), through the same ifs_config_run_cmd() as pass_cmd. */
#include "config.h"

#include "bodycache.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CONFIG_BYTES (1024 * 1024)
/* What a pass_cmd/oauth_cmd may print that is kept: a token is a few KiB at most. */
#define MAX_CMD_OUTPUT (64 * 1024)

static const char *const known_keys[] = {
    "host",       "port",       "tls",         "user",        "pass_cmd",     "password",
    "ca_file",    "timeout",    "connections", "refresh",     "memory_cache", "cache",
    "cache_dir",  "cache_size", "readahead",   "auth",        "oauth_cmd",    "watch",
    "idle_renew", "compress",   "fetch",       "whole_below", "hide",         NULL,
};

static void wipe_str(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
}

static char *default_path(void)
{
	/* g_get_user_config_dir honours XDG_CONFIG_HOME and falls back to ~/.config */
	return g_build_filename(g_get_user_config_dir(), "imapfs", "config", NULL);
}

/* Read the whole file and its mode through one descriptor. */
static int read_file(const char *path, char **data_r, mode_t *mode_r, char **errmsg_r)
{
	struct stat st;
	GString *buf;
	char chunk[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		*errmsg_r = g_strdup_printf("cannot read config file %s: %s (see imapfs --help for "
		                            "its format)", path, g_strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		*errmsg_r = g_strdup_printf("config file %s is not a regular file", path);
		return -EINVAL;
	}
	buf = g_string_new(NULL);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			g_string_free(buf, TRUE);
			*errmsg_r = g_strdup_printf("cannot read config file %s: %s", path,
			                            g_strerror(e));
			return -e;
		}
		if (n == 0)
			break;
		g_string_append_len(buf, chunk, n);
		if (buf->len > MAX_CONFIG_BYTES) {
			close(fd);
			g_string_free(buf, TRUE);
			*errmsg_r = g_strdup_printf("config file %s is too large", path);
			return -EFBIG;
		}
	}
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	*mode_r = st.st_mode;
	*data_r = g_string_free(buf, FALSE);
	return 0;
}

/* An on|off key; absent means on. */
static int get_on_off(GKeyFile *kf, const char *group, const char *key, bool *on_r,
                      const char *path, char **errmsg_r)
{
	char *v = g_key_file_get_string(kf, group, key, NULL);
	int ret = 0;

	if (v != NULL)
		g_strstrip(v);
	if (v != NULL && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
		*errmsg_r = g_strdup_printf("%s: [%s] %s = '%s': use on or off", path, group, key, v);
		ret = -EINVAL;
	}
	*on_r = v == NULL || strcmp(v, "on") == 0;
	g_free(v);
	return ret;
}

static int get_uint(GKeyFile *kf, const char *group, const char *key, unsigned def, unsigned min,
                    unsigned max, unsigned *out, const char *path, char **errmsg_r)
{
	char *v = g_key_file_get_string(kf, group, key, NULL);
	char *end = NULL;
	unsigned long n;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	g_strstrip(v);
	errno = 0;
	n = strtoul(v, &end, 10);
	if (v[0] == '\0' || v[0] == '-' || *end != '\0' || errno != 0 || n < min || n > max) {
		*errmsg_r = g_strdup_printf("%s: [%s] %s = '%s' is not a number from %u to %u",
		                            path, group, key, v, min, max);
		g_free(v);
		return -EINVAL;
	}
	g_free(v);
	*out = (unsigned)n;
	return 0;
}

/* RFC 6154's special-use attributes, spelt as the RFC does (matched case-insensitively, as
 * IMAP atoms are). */
static const struct {
	const char *name;
	unsigned flag;
} special_uses[] = {
    {"\\All", IMAP_FOLDER_ALL},       {"\\Archive", IMAP_FOLDER_ARCHIVE},
    {"\\Drafts", IMAP_FOLDER_DRAFTS}, {"\\Flagged", IMAP_FOLDER_FLAGGED},
    {"\\Junk", IMAP_FOLDER_JUNK},     {"\\Sent", IMAP_FOLDER_SENT},
    {"\\Trash", IMAP_FOLDER_TRASH},
};
#define SPECIAL_USE_LIST "\\All, \\Archive, \\Drafts, \\Flagged, \\Junk, \\Sent or \\Trash"

/* hide = \All \Junk Spam "[Gmail]/All Mail": attributes (a leading backslash) and folder
 * paths as the mount shows them, separated by blanks; a path with blanks is put in double
 * quotes (no escapes inside: a folder whose name holds a '"' is hidden by its attribute or
 * not at all).  Read raw: g_key_file_get_string takes "\A" for a bad escape and fails. */
static int get_hide(GKeyFile *kf, struct ifs_config *cfg, char **errmsg_r)
{
	char *v = g_key_file_get_value(kf, cfg->account, "hide", NULL);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const char *p;
	int ret = 0;

	if (v == NULL)
		goto out;
	g_strstrip(v);
	for (p = v; *p != '\0';) {
		const char *start, *end;
		bool quoted = *p == '"';
		char *tok;

		if (*p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		if (quoted) {
			start = p + 1;
			end = strchr(start, '"');
			if (end == NULL) {
				*errmsg_r = g_strdup_printf(
				    "%s: [%s] hide = '%s': a quoted folder name has "
				    "no closing '\"'",
				    cfg->path, cfg->account, v);
				ret = -EINVAL;
				goto out;
			}
			p = end + 1;
			if (*p != '\0' && *p != ' ' && *p != '\t') {
				*errmsg_r =
				    g_strdup_printf("%s: [%s] hide = '%s': put a blank after a "
				                    "quoted folder name",
				                    cfg->path, cfg->account, v);
				ret = -EINVAL;
				goto out;
			}
		} else {
			start = p;
			end = start + strcspn(start, " \t");
			p = end;
		}
		tok = g_strndup(start, end - start);
		if (tok[0] == '\\' && !quoted) {
			size_t i;
			for (i = 0; i < G_N_ELEMENTS(special_uses); i++) {
				if (g_ascii_strcasecmp(tok, special_uses[i].name) == 0)
					break;
			}
			if (i == G_N_ELEMENTS(special_uses)) {
				*errmsg_r =
				    g_strdup_printf("%s: [%s] hide = '%s': %s is no special-use "
				                    "attribute; use " SPECIAL_USE_LIST
				                    " (RFC 6154), or folder names",
				                    cfg->path, cfg->account, v, tok);
				g_free(tok);
				ret = -EINVAL;
				goto out;
			}
			cfg->hide_use |= special_uses[i].flag;
			g_free(tok);
			continue;
		}
		/* "Archive/" and "Archive" are one folder; "/" alone or "" is none */
		for (size_t n = strlen(tok); n > 0 && tok[n - 1] == '/'; n--)
			tok[n - 1] = '\0';
		if (tok[0] == '\0' || tok[0] == '/') {
			*errmsg_r =
			    g_strdup_printf("%s: [%s] hide = '%s': a folder name is a path in "
			                    "the mount, such as Spam or \"[Gmail]/All Mail\"",
			                    cfg->path, cfg->account, v);
			g_free(tok);
			ret = -EINVAL;
			goto out;
		}
		g_ptr_array_add(names, tok);
	}
	if (names->len > 0) {
		g_ptr_array_add(names, NULL);
		cfg->hide_names = (char **)g_ptr_array_free(names, FALSE);
		names = NULL;
	}
out:
	if (names != NULL)
		g_ptr_array_free(names, TRUE);
	g_free(v);
	return ret;
}

/* A helper that hangs (waiting for a browser login, say) can be killed with everything it
 * started: it runs in a process group of its own.  Only with a deadline, that is in the
 * daemon: at mount a helper may ask on the terminal, which a background group cannot. */
static void own_process_group(gpointer data)
{
	setpgid(0, 0);
}

/* Run cmd and collect what it prints (at most MAX_CMD_OUTPUT bytes are kept) until it closes
 * its output, or until timeout_s seconds have passed (0: no limit): then it is killed and
 * *timed_out_r set.  *status_r: its wait status. */
static int run_cmd_output(const char *key, const char *cmd, unsigned timeout_s, GString *out,
                          int *status_r, bool *timed_out_r, char **errmsg_r)
{
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
	char buf[4096];
	GError *err = NULL;
	GPid pid;
	int fd;

	*timed_out_r = false;
	if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
	                              G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CHILD_INHERITS_STDIN,
	                              timeout_s > 0 ? own_process_group : NULL, NULL, &pid, NULL,
	                              &fd, NULL, &err)) {
		*errmsg_r = g_strdup_printf("cannot run %s: %s", key, err->message);
		g_error_free(err);
		return -EINVAL;
	}
	for (;;) {
		int ms = -1;
		if (timeout_s > 0) {
			gint64 left = deadline - g_get_monotonic_time();
			if (left <= 0) {
				*timed_out_r = true;
				break;
			}
			ms = (int)MIN((left + 999) / 1000, G_MAXINT);
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (r == 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out->len < MAX_CMD_OUTPUT)
			g_string_append_len(out, buf, n);
	}
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	if (*timed_out_r)
		kill(-pid, SIGKILL);
	while (waitpid(pid, status_r, 0) < 0 && errno == EINTR)
		;
	g_spawn_close_pid(pid);
	return 0;
}

int ifs_config_run_cmd(const char *key, const char *what, const char *cmd, unsigned timeout_s,
                       char **line_r, char **errmsg_r)
{
	GString *out = g_string_new(NULL);
	int status = 0, ret;
	bool timed_out;
	size_t n;

	ret = run_cmd_output(key, cmd, timeout_s, out, &status, &timed_out, errmsg_r);
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	if (timed_out) {
		*errmsg_r = g_strdup_printf("%s did not finish within %u s (killed); no %s", key,
		                            timeout_s, what);
		goto out;
	}
	if (!g_spawn_check_wait_status(status, NULL)) {
		*errmsg_r = g_strdup_printf("%s failed (non-zero exit status); no %s", key, what);
		goto out;
	}
	n = strcspn(out->str, "\r\n");
	if (n == 0) {
		*errmsg_r = g_strdup_printf("%s printed an empty first line; no %s", key, what);
		goto out;
	}
	*line_r = g_strndup(out->str, n);
	ret = 0;
out:
	explicit_bzero(out->str, out->allocated_len);
	g_string_free(out, TRUE);
	return ret;
}

/* "1024", "512M", "1G", "100k" (powers of 1024; a bare number is MiB) -> bytes. */
static int get_size(GKeyFile *kf, const char *group, const char *key, uint64_t def,
                    uint64_t *out, const char *path, char **errmsg_r)
{
	char *v = g_key_file_get_string(kf, group, key, NULL);
	char *end = NULL;
	uint64_t n, mult = 1024 * 1024;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	g_strstrip(v);
	errno = 0;
	n = g_ascii_strtoull(v, &end, 10);
	if (end != NULL && *end != '\0' && end[1] == '\0') {
		switch (g_ascii_toupper(*end)) {
		case 'K': mult = 1024ull; end++; break;
		case 'M': mult = 1024ull * 1024; end++; break;
		case 'G': mult = 1024ull * 1024 * 1024; end++; break;
		case 'T': mult = 1024ull * 1024 * 1024 * 1024; end++; break;
		default: break;
		}
	}
	if (v[0] == '\0' || !g_ascii_isdigit(v[0]) || *end != '\0' || errno != 0 ||
	    n > UINT64_MAX / mult) {
		*errmsg_r = g_strdup_printf("%s: [%s] %s = '%s' is not a size (MiB, or a number "
		                            "with K, M, G or T)", path, group, key, v);
		g_free(v);
		return -EINVAL;
	}
	g_free(v);
	*out = n * mult;
	return 0;
}

/* auth = password | oauth2, and oauth_cmd, which only oauth2 uses and which it needs; an
 * oauth2 account has no password keys (they would never be used: better said than ignored). */
static int get_auth(GKeyFile *kf, struct ifs_config *cfg, char **errmsg_r)
{
	const char *g = cfg->account;
	char *v = g_key_file_get_string(kf, g, "auth", NULL);
	int ret = 0;

	if (v != NULL)
		g_strstrip(v);
	if (v == NULL || strcmp(v, "password") == 0) {
		cfg->auth = IMAP_AUTH_PASSWORD;
	} else if (strcmp(v, "oauth2") == 0) {
		cfg->auth = IMAP_AUTH_OAUTH2;
	} else {
		*errmsg_r = g_strdup_printf("%s: [%s] auth = '%s': use password or oauth2", cfg->path,
		                            g, v);
		ret = -EINVAL;
		goto out;
	}
	cfg->oauth_cmd = g_key_file_get_string(kf, g, "oauth_cmd", NULL);
	if (cfg->oauth_cmd != NULL)
		g_strstrip(cfg->oauth_cmd);
	if (cfg->auth == IMAP_AUTH_PASSWORD && cfg->oauth_cmd != NULL) {
		*errmsg_r = g_strdup_printf("%s: [%s] has oauth_cmd but not auth = oauth2; add "
		                            "auth = oauth2 or remove oauth_cmd", cfg->path, g);
		ret = -EINVAL;
	} else if (cfg->auth == IMAP_AUTH_OAUTH2 &&
	           (cfg->oauth_cmd == NULL || cfg->oauth_cmd[0] == '\0')) {
		*errmsg_r = g_strdup_printf("%s: [%s] auth = oauth2 needs oauth_cmd, a command that "
		                            "prints an access token (e.g. oama access %s)", cfg->path,
		                            g, cfg->user);
		ret = -EINVAL;
	} else if (cfg->auth == IMAP_AUTH_OAUTH2 &&
	           (g_key_file_has_key(kf, g, "pass_cmd", NULL) ||
	            g_key_file_has_key(kf, g, "password", NULL))) {
		*errmsg_r = g_strdup_printf("%s: [%s] auth = oauth2 logs in with oauth_cmd's token; "
		                            "remove pass_cmd and password", cfg->path, g);
		ret = -EINVAL;
	}
out:
	g_free(v);
	return ret;
}

static char *absolute_from(const char *config_path, const char *file)
{
	char *dir, *out;

	if (file[0] == '~' && file[1] == '/')
		return g_build_filename(g_get_home_dir(), file + 2, NULL);
	if (g_path_is_absolute(file))
		return g_strdup(file);
	dir = g_path_get_dirname(config_path);
	if (!g_path_is_absolute(dir)) {
		char *cwd = g_get_current_dir();
		char *tmp = g_build_filename(cwd, dir, NULL);
		g_free(cwd);
		g_free(dir);
		dir = tmp;
	}
	out = g_build_filename(dir, file, NULL);
	g_free(dir);
	return out;
}

int ifs_config_load(const char *path_in, const char *account, struct ifs_config **cfg_r,
                    char **errmsg_r)
{
	struct ifs_config *cfg = g_new0(struct ifs_config, 1);
	GKeyFile *kf = g_key_file_new();
	GError *err = NULL;
	char *data = NULL, *v = NULL, *pass_cmd = NULL;
	char **keys = NULL;
	mode_t mode = 0;
	unsigned mib = 0;
	bool on;
	int ret;

	cfg->path = path_in != NULL ? g_strdup(path_in) : default_path();
	cfg->account = g_strdup(account != NULL ? account : "default");

	ret = read_file(cfg->path, &data, &mode, errmsg_r);
	if (ret < 0)
		goto fail;
	if (!g_key_file_load_from_data(kf, data, strlen(data), G_KEY_FILE_NONE, &err)) {
		*errmsg_r = g_strdup_printf("config file %s is malformed: %s", cfg->path,
		                            err->message);
		g_error_free(err);
		ret = -EINVAL;
		goto fail;
	}
	if (!g_key_file_has_group(kf, cfg->account)) {
		char **groups = g_key_file_get_groups(kf, NULL);
		char *list = g_strjoinv(", ", groups);
		*errmsg_r = g_strdup_printf("no account [%s] in %s (accounts there: %s)",
		                            cfg->account, cfg->path, list[0] ? list : "none");
		g_free(list);
		g_strfreev(groups);
		ret = -ENOENT;
		goto fail;
	}
	keys = g_key_file_get_keys(kf, cfg->account, NULL, NULL);
	for (size_t i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (!g_strv_contains(known_keys, keys[i])) {
			*errmsg_r = g_strdup_printf("%s: unknown key '%s' in [%s] (see imapfs --help)",
			                            cfg->path, keys[i], cfg->account);
			ret = -EINVAL;
			goto fail;
		}
	}

	cfg->host = g_key_file_get_string(kf, cfg->account, "host", NULL);
	if (cfg->host != NULL)
		g_strstrip(cfg->host);
	if (cfg->host == NULL || cfg->host[0] == '\0') {
		*errmsg_r = g_strdup_printf("%s: [%s] has no 'host' key", cfg->path, cfg->account);
		ret = -EINVAL;
		goto fail;
	}
	cfg->user = g_key_file_get_string(kf, cfg->account, "user", NULL);
	if (cfg->user == NULL || cfg->user[0] == '\0') {
		*errmsg_r = g_strdup_printf("%s: [%s] has no 'user' key", cfg->path, cfg->account);
		ret = -EINVAL;
		goto fail;
	}
	v = g_key_file_get_string(kf, cfg->account, "tls", NULL);
	if (v != NULL)
		g_strstrip(v);
	if (v == NULL || strcmp(v, "imaps") == 0) {
		cfg->tls = IMAP_TLS_IMPLICIT;
	} else if (strcmp(v, "starttls") == 0) {
		cfg->tls = IMAP_TLS_STARTTLS;
	} else if (strcmp(v, "none") == 0) {
		cfg->tls = IMAP_TLS_NONE;
	} else {
		*errmsg_r = g_strdup_printf("%s: [%s] tls = '%s': use imaps, starttls or none",
		                            cfg->path, cfg->account, v);
		ret = -EINVAL;
		goto fail;
	}
	g_clear_pointer(&v, g_free);
	{
		unsigned port = 0;
		ret = get_uint(kf, cfg->account, "port", 0, 1, 65535, &port, cfg->path, errmsg_r);
		if (ret < 0)
			goto fail;
		if (port != 0)
			cfg->port = g_strdup_printf("%u", port);
		else
			cfg->port = g_strdup(cfg->tls == IMAP_TLS_IMPLICIT ? "993" : "143");
	}
	if ((ret = get_uint(kf, cfg->account, "timeout", 30, 1, 3600, &cfg->timeout_s, cfg->path,
	                    errmsg_r)) < 0 ||
	    (ret = get_uint(kf, cfg->account, "connections", 5, 1, 64, &cfg->connections,
	                    cfg->path, errmsg_r)) < 0 ||
	    (ret = get_uint(kf, cfg->account, "refresh", 30, 0, 86400, &cfg->refresh_s, cfg->path,
	                    errmsg_r)) < 0 ||
	    (ret = get_uint(kf, cfg->account, "memory_cache", 0, 1, 65536, &mib, cfg->path,
	                    errmsg_r)) < 0)
		goto fail;
	cfg->memory_cache = (size_t)mib * 1024 * 1024; /* 0: default, set below */
	if ((ret = get_uint(kf, cfg->account, "readahead", 64, 0, 100000, &cfg->readahead,
	                    cfg->path, errmsg_r)) < 0 ||
	    (ret = get_size(kf, cfg->account, "cache_size", 1024ull * 1024 * 1024, &cfg->cache_size,
	                    cfg->path, errmsg_r)) < 0)
		goto fail;
	if ((ret = get_on_off(kf, cfg->account, "cache", &on, cfg->path, errmsg_r)) < 0)
		goto fail;
	if (on && cfg->cache_size > 0) {
		char *dir = g_key_file_get_string(kf, cfg->account, "cache_dir", NULL);
		if (dir != NULL)
			g_strstrip(dir);
		if (dir != NULL && dir[0] != '\0')
			cfg->cache_dir = absolute_from(cfg->path, dir);
		else
			cfg->cache_dir = ifs_bodycache_default_dir(cfg->account);
		g_free(dir);
	}
	/* With the disk cache a message that left memory costs a file read and a parse, not a
	 * round trip: less memory is worth it (the daemon stays well under 100 MB). */
	if (cfg->memory_cache == 0)
		cfg->memory_cache = (cfg->cache_dir != NULL ? 32u : 64u) * 1024 * 1024;
	/* Read ahead into the disk cache costs no memory, so its window can cover many round
	 * trips' worth of messages; into the memory cache it must stay well inside memory_cache
	 * or it would evict what the reader has not read yet. */
	if (!g_key_file_has_key(kf, cfg->account, "readahead", NULL))
		cfg->readahead = cfg->cache_dir != NULL ? 4096 : 64;

	if ((ret = get_on_off(kf, cfg->account, "watch", &cfg->watch, cfg->path, errmsg_r)) < 0)
		goto fail;
	v = g_key_file_get_string(kf, cfg->account, "compress", NULL);
	if (v != NULL)
		g_strstrip(v);
	/* auto by default: on a loopback link deflate saves no time and costs both ends CPU */
	if (v == NULL || strcmp(v, "auto") == 0) {
		cfg->compress = IMAP_COMPRESS_AUTO;
	} else if (strcmp(v, "on") == 0) {
		cfg->compress = IMAP_COMPRESS_ON;
	} else if (strcmp(v, "off") == 0) {
		cfg->compress = IMAP_COMPRESS_OFF;
	} else {
		*errmsg_r = g_strdup_printf("%s: [%s] compress = '%s': use auto, on or off",
		                            cfg->path, cfg->account, v);
		ret = -EINVAL;
		goto fail;
	}
	g_clear_pointer(&v, g_free);
	/* RFC 2177: a server may log out a client idle for 30 minutes; 29 (1740 s) at most. */
	if ((ret = get_uint(kf, cfg->account, "idle_renew", IFS_IDLE_RENEW_DEFAULT, 1,
	                    IFS_IDLE_RENEW_MAX, &cfg->idle_renew_s, cfg->path, errmsg_r)) < 0)
		goto fail;

	v = g_key_file_get_string(kf, cfg->account, "fetch", NULL);
	if (v != NULL)
		g_strstrip(v);
	/* whole is the default until parts costs no more than it on a fast link (README:
	 * "Partial fetches"): read-ahead of pieces takes a round trip per 64 messages and level,
	 * and a small message's pieces cost three parses where its whole costs one */
	if (v == NULL || strcmp(v, "whole") == 0) {
		cfg->fetch_whole = true;
	} else if (strcmp(v, "parts") == 0) {
		cfg->fetch_whole = false;
	} else {
		*errmsg_r = g_strdup_printf("%s: [%s] fetch = '%s': use parts or whole", cfg->path,
		                            cfg->account, v);
		ret = -EINVAL;
		goto fail;
	}
	g_clear_pointer(&v, g_free);
	if ((ret = get_size(kf, cfg->account, "whole_below", IFS_WHOLE_BELOW_DEFAULT,
	                    &cfg->whole_below, cfg->path, errmsg_r)) < 0)
		goto fail;

	v = g_key_file_get_string(kf, cfg->account, "ca_file", NULL);
	if (v != NULL) {
		g_strstrip(v);
		if (v[0] != '\0') {
			cfg->ca_file = absolute_from(cfg->path, v);
			if (access(cfg->ca_file, R_OK) != 0) {
				*errmsg_r = g_strdup_printf("%s: [%s] ca_file %s: %s", cfg->path,
				                            cfg->account, cfg->ca_file,
				                            g_strerror(errno));
				ret = -ENOENT;
				goto fail;
			}
		}
		g_clear_pointer(&v, g_free);
	}

	if ((ret = get_hide(kf, cfg, errmsg_r)) < 0)
		goto fail;
	if ((ret = get_auth(kf, cfg, errmsg_r)) < 0)
		goto fail;
	if (cfg->auth == IMAP_AUTH_OAUTH2)
		goto done; /* the token comes from oauth_cmd when a login needs it */

	pass_cmd = g_key_file_get_string(kf, cfg->account, "pass_cmd", NULL);
	v = g_key_file_get_string(kf, cfg->account, "password", NULL);
	if (pass_cmd != NULL && v != NULL) {
		*errmsg_r = g_strdup_printf("%s: [%s] has both pass_cmd and password; keep one",
		                            cfg->path, cfg->account);
		ret = -EINVAL;
		goto fail;
	}
	if (v != NULL) {
		if (mode & (S_IRGRP | S_IROTH)) {
			*errmsg_r = g_strdup_printf("refusing 'password' in %s because the file is "
			                            "readable by group or others (chmod 600 it, or use "
			                            "pass_cmd)", cfg->path);
			ret = -EPERM;
			goto fail;
		}
		cfg->password = v;
		v = NULL;
	} else if (pass_cmd != NULL) {
		ret = ifs_config_run_cmd("pass_cmd", "password", pass_cmd, 0, &cfg->password,
		                         errmsg_r);
		if (ret < 0)
			goto fail;
	} else {
		*errmsg_r = g_strdup_printf("%s: [%s] has neither pass_cmd nor password", cfg->path,
		                            cfg->account);
		ret = -EINVAL;
		goto fail;
	}

done:
	g_free(pass_cmd);
	g_strfreev(keys);
	g_key_file_free(kf);
	wipe_str(data);
	g_free(data);
	*cfg_r = cfg;
	return 0;
fail:
	wipe_str(v);
	g_free(v);
	g_free(pass_cmd);
	g_strfreev(keys);
	g_key_file_free(kf);
	wipe_str(data);
	g_free(data);
	ifs_config_free(cfg);
	return ret;
}

void ifs_config_wipe_password(struct ifs_config *cfg)
{
	if (cfg == NULL || cfg->password == NULL)
		return;
	wipe_str(cfg->password);
	g_clear_pointer(&cfg->password, g_free);
}

void ifs_config_free(struct ifs_config *cfg)
{
	if (cfg == NULL)
		return;
	ifs_config_wipe_password(cfg);
	g_free(cfg->path);
	g_free(cfg->account);
	g_free(cfg->host);
	g_free(cfg->port);
	g_free(cfg->user);
	g_free(cfg->ca_file);
	g_free(cfg->cache_dir);
	g_free(cfg->oauth_cmd);
	g_strfreev(cfg->hide_names);
	g_free(cfg);
}
