/* main.c — imapfs's entry point: parse the command line, read the configuration, check the
 * mount point, connect and log in (all before detaching, so every mistake is one clear line on
 * the terminal and a non-zero exit with nothing mounted), then mount, daemonize and run the
 * multithreaded FUSE loop until unmounted or signalled; then tear down in reverse order (the
 * pool's LOGOUT last). */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ifs.h"
#include "loader.h"
#include "log.h"
#include "owner.h"
#include "remote.h"
#include "state.h"
#include "token.h"
#include "tree.h"

struct cmdline {
	char *account;
	char *config;
	char *uid, *gid, *umask; /* -o uid=, gid=, umask= as given (ifs_owner_parse) */
	int stats;
	GPtrArray *positional; /* the non-option arguments, in order (owned strings) */
};

static const struct fuse_opt cmdline_spec[] = {
	{"account=%s", offsetof(struct cmdline, account), 0},
	{"config=%s", offsetof(struct cmdline, config), 0},
	{"stats", offsetof(struct cmdline, stats), 1},
	{"uid=%s", offsetof(struct cmdline, uid), 0},
	{"gid=%s", offsetof(struct cmdline, gid), 0},
	{"umask=%s", offsetof(struct cmdline, umask), 0},
	FUSE_OPT_END,
};

/* Non-options are collected rather than left to fuse_parse_cmdline, which takes only one (the
 * mount point): `imapfs ACCOUNT MOUNTPOINT` is what mount.fuse3 runs for
 * `mount -t fuse.imapfs ACCOUNT MOUNTPOINT` and for an fstab line. */
static int cmdline_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cmdline *cmd = data;

	if (key != FUSE_OPT_KEY_NONOPT)
		return 1; /* keep it for fuse_parse_cmdline and fuse_session_new */
	g_ptr_array_add(cmd->positional, g_strdup(arg));
	return 0;
}

/* [ACCOUNT] MOUNTPOINT: the account into cmd->account (the same as -o account=, which may
 * also be given if it names the same account), the mount point back into args for
 * fuse_parse_cmdline.  Returns 0 or -1 after printing one line. */
static int take_positional(struct cmdline *cmd, struct fuse_args *args)
{
	GPtrArray *pos = cmd->positional;

	if (pos->len > 2) {
		fprintf(stderr, "imapfs: too many arguments: '%s' (usage: imapfs [ACCOUNT] "
		                "MOUNTPOINT; see imapfs --help)\n", (char *)pos->pdata[2]);
		return -1;
	}
	if (pos->len == 2) {
		const char *account = pos->pdata[0];
		/* mount(8) makes a source that names a file in its working directory absolute:
		 * `mount -t fuse.imapfs work /mnt` in a directory holding "work" runs us with
		 * "/that/directory/work".  Section names are not paths, so an existing absolute
		 * path stands for its last component. */
		const char *last = strrchr(account, '/');
		if (account[0] == '/' && last[1] != '\0' && access(account, F_OK) == 0)
			account = last + 1;
		if (cmd->account != NULL && strcmp(cmd->account, account) != 0) {
			fprintf(stderr, "imapfs: two accounts given: '%s' and -o account=%s\n",
			        account, cmd->account);
			return -1;
		}
		g_free(cmd->account);
		cmd->account = g_strdup(account);
	}
	if (pos->len > 0)
		fuse_opt_add_arg(args, pos->pdata[pos->len - 1]);
	return 0;
}

/* A user's fstab mount (`mount ~/mail` with the `user` option) reaches us through the setuid
 * mount(8) and mount.fuse3 with our real uid but HOME=/root: the config, ~/ in it and the
 * cache would then be looked up in root's home.  A HOME that is not the real user's own
 * directory is replaced by the home of the password database, before GLib reads HOME (it
 * keeps the first answer). */
static void use_own_home(void)
{
	const char *home = getenv("HOME");
	struct stat st;

	if (home == NULL || (stat(home, &st) == 0 && st.st_uid == getuid()))
		return;
	struct passwd *pw = getpwuid(getuid());
	if (pw != NULL && pw->pw_dir != NULL)
		setenv("HOME", pw->pw_dir, 1);
	else
		unsetenv("HOME");
}

/* The read-ahead's way to fetch pieces (readahead.h) is the loader's. */
static void prefetch_pieces(void *ctx, uint32_t epoch, const uint32_t *uids, unsigned n,
                            unsigned piece)
{
	ifs_loader_prefetch(ctx, epoch, uids, n, piece);
}

static bool prefetch_whole(void *ctx, uint32_t epoch, uint32_t uid, uint64_t listed_size,
                           unsigned piece)
{
	return ifs_loader_reads_whole(ctx, epoch, uid, listed_size, piece);
}

static bool held_elsewhere(void *ctx, uint32_t epoch, uint32_t uid,
                           struct ifs_readahead_holder *h_r)
{
	if (h_r == NULL)
		return ifs_loader_held_elsewhere(ctx, epoch, uid, NULL, NULL, NULL, NULL);
	return ifs_loader_held_elsewhere(ctx, epoch, uid, &h_r->key_epoch, &h_r->uid,
	                                 &h_r->raw_name, &h_r->uidvalidity);
}

static void usage(const char *prog)
{
	printf("usage: %s [ACCOUNT] MOUNTPOINT [-o config=FILE] [FUSE options]\n"
	       "Mount an IMAP account as a read-only filesystem.  Unmount with "
	       "`fusermount3 -u MOUNTPOINT`.\n"
	       "ACCOUNT is a section of the config file, the same as -o account=ACCOUNT; this is\n"
	       "the form mount.fuse3 uses: mount -t fuse.imapfs ACCOUNT MOUNTPOINT.\n\n"
	       "imapfs options:\n"
	       "    -o account=NAME        use section [NAME] of the config file (default: "
	       "[default])\n"
	       "    -o config=FILE         config file (default: $XDG_CONFIG_HOME/imapfs/config)\n"
	       "    -o uid=USER            owner shown for every file and directory: a number or a\n"
	       "                           user name (default: the user who mounted)\n"
	       "    -o gid=GROUP           their group, a number or a group name (default: the\n"
	       "                           mounting user's group)\n"
	       "    -o umask=OOO           octal bits taken from files' 0444 and directories' 0555;\n"
	       "                           default 077: files 0400, directories 0500, the owner only\n"
	       "                           (even with allow_other); 022 lets every local user read\n"
	       "                           the mail when mounted with allow_other\n"
	       "    -o stats               counters (FUSE requests, bodies fetched, cache use) in the\n"
	       "                           extended attribute user.imapfs.stats of the mount's root\n"
	       "    -f                     stay in the foreground\n"
	       "    -d                     debug: log FUSE requests and the IMAP protocol trace\n"
	       "                           (credentials redacted); implies -f\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          print the version\n"
	       "    (imapfs runs with -o max_idle_threads=2 unless given: faster for one reader)\n\n"
	       "%s\n"
	       "%s\n"
	       "FUSE options:\n",
	       prog, IFS_CONFIG_HELP, IFS_SEARCH_HELP);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* libfuse's own messages, reworded into ours ("fuse: bad mount point ..." -> one imapfs line). */
static void fuse_log_to_glib(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char *msg = g_strdup_vprintf(fmt, ap);
	const char *text = g_str_has_prefix(msg, "fuse: ") ? msg + 6 : msg;
	size_t len = strlen(text);

	while (len > 0 && text[len - 1] == '\n')
		len--;
	if (level <= FUSE_LOG_WARNING)
		g_log(NULL, G_LOG_LEVEL_MESSAGE, "%.*s", (int)len, text);
	else
		g_log("fuse", G_LOG_LEVEL_DEBUG, "%.*s", (int)len, text);
	g_free(msg);
}

static char *unescape_mountinfo(const char *s)
{
	GString *out = g_string_new(NULL);
	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			g_string_append_c(out, (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0')));
			s += 3;
		} else {
			g_string_append_c(out, *s);
		}
	}
	return g_string_free(out, FALSE);
}

static bool is_mount_point(const char *path)
{
	char *data = NULL;
	bool found = false;

	if (!g_file_get_contents("/proc/self/mountinfo", &data, NULL, NULL))
		return false;
	char **lines = g_strsplit(data, "\n", -1);
	for (size_t i = 0; lines[i] != NULL && !found; i++) {
		char **f = g_strsplit(lines[i], " ", 6);
		if (g_strv_length(f) >= 5) {
			char *mp = unescape_mountinfo(f[4]);
			found = strcmp(mp, path) == 0;
			g_free(mp);
		}
		g_strfreev(f);
	}
	g_strfreev(lines);
	g_free(data);
	return found;
}

static int check_mountpoint(const char *mp)
{
	struct stat st;

	if (stat(mp, &st) < 0) {
		if (errno == ENOTCONN)
			fprintf(stderr, "imapfs: %s is a dead mount; clear it with fusermount3 -u %s\n",
			        mp, mp);
		else
			fprintf(stderr, "imapfs: mount point %s: %s\n", mp, g_strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "imapfs: mount point %s is not a directory\n", mp);
		return -1;
	}
	if (is_mount_point(mp)) {
		fprintf(stderr, "imapfs: %s is already mounted (unmount it with fusermount3 -u %s)\n",
		        mp, mp);
		return -1;
	}
	return 0;
}

/* "-ofsname=imapfs:HOST" when HOST is harmless inside a mount option list. */
static void add_mount_options(struct fuse_args *args, const char *host)
{
	bool plain = host[0] != '\0' && strlen(host) < 200;
	for (const char *p = host; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-' && *p != ':' && *p != '_')
			plain = false;
	/* ro: the kernel refuses writes itself; default_permissions: it honours our modes (owner.h).
	 * nosuid,nodev: what fusermount3 imposes on a user's mount, also when root mounts (mount
	 * -t fuse.imapfs passes "rw,dev,suid"; these come later and win). */
	fuse_opt_add_arg(args, "-oro,nosuid,nodev,default_permissions");
	if (plain) {
		char *opt = g_strdup_printf("-ofsname=imapfs:%s", host);
		fuse_opt_add_arg(args, opt);
		g_free(opt);
	} else {
		fuse_opt_add_arg(args, "-ofsname=imapfs");
	}
}

/* How the configured connections are split (see struct ifs): one for listings, one for
 * read-ahead, the rest for readers; shared when there are too few. */
static int make_pools(struct ifs *fs, const struct imap_config *icfg, unsigned conns,
                      bool readahead, bool watch)
{
	unsigned list, ra;

	/* The watcher keeps one connection for itself (watch.h); below three there would be
	 * none left for a reader while the listing one is busy. */
	if (watch && conns >= 3) {
		if (imap_pool_new(icfg, 1, &fs->watch_pool) < 0)
			return -1;
		conns--;
	}
	list = conns >= 2 ? 1 : 0;
	ra = readahead && conns >= 3 ? 1 : 0;

	if (imap_pool_new(icfg, conns - list - ra, &fs->pool) < 0)
		return -1;
	fs->list_pool = fs->ra_pool = fs->pool;
	if (list > 0 && imap_pool_new(icfg, list, &fs->list_pool) < 0)
		return -1;
	if (ra > 0 && imap_pool_new(icfg, ra, &fs->ra_pool) < 0)
		return -1;
	return 0;
}

static void free_pools(struct ifs *fs)
{
	if (fs->ra_pool != fs->pool)
		imap_pool_free(fs->ra_pool);
	if (fs->list_pool != fs->pool)
		imap_pool_free(fs->list_pool);
	imap_pool_free(fs->pool); /* LOGOUT */
	imap_pool_free(fs->watch_pool);
	fs->watch_pool = NULL;
	fs->pool = fs->list_pool = fs->ra_pool = NULL;
}

/* Each cached large message holds up to two descriptors: allow what the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Open the account's disk cache and, with it, its saved state.  As ifs_bodycache_open. */
static int open_cache(struct ifs *fs, const struct ifs_config *cfg, char **errmsg_r)
{
	char *identity = g_strdup_printf("%s %s %s", cfg->host, cfg->port, cfg->user);
	int r = ifs_bodycache_open(cfg->cache_dir, cfg->cache_size, identity, &fs->bodies, errmsg_r);

	g_free(identity);
	if (r == 0)
		fs->state = ifs_state_new(cfg->cache_dir);
	return r;
}

/* The server cannot be reached (why) but the cache directory holds a saved folder list: mount
 * offline with it, saying so in one line.  0 and *folders_r (new), or -1 after printing why
 * not. */
static int open_offline(struct ifs *fs, const struct ifs_config *cfg, const char *why,
                        GPtrArray **folders_r)
{
	char *err = NULL;
	int r = open_cache(fs, cfg, &err);

	if (r == 0)
		r = ifs_state_load_folders(fs->state, folders_r);
	if (r < 0) {
		/* not this account's state after all (or in use): fail as without one */
		fprintf(stderr, "imapfs: cannot log in to %s:%s as %s: %s\n", cfg->host, cfg->port,
		        cfg->user, why != NULL ? why : "unknown error");
		g_free(err);
		return -1;
	}
	fprintf(stderr, "imapfs: offline: serving cached mail of %s (%s)\n", cfg->account,
	        why != NULL ? why : "the server cannot be reached");
	ifs_remote_set_offline(why != NULL ? why : "the server cannot be reached", false);
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cmdline cmd = {.positional = g_ptr_array_new_with_free_func(g_free)};
	struct ifs_owner owner;
	struct fuse_cmdline_opts opts;
	struct ifs_config *cfg = NULL;
	struct imap_config icfg;
	struct ifs fs;
	struct imap_conn *conn = NULL;
	struct ifs_token *token = NULL; /* auth = oauth2: the pools' credential */
	struct fuse_session *se = NULL;
	GPtrArray *folders = NULL;
	bool has_ids = false; /* the server offers message ids (identity.h) */
	char *why = NULL;
	int ret = 1, r;

	memset(&opts, 0, sizeof(opts));
	memset(&fs, 0, sizeof(fs));
	use_own_home();
	fuse_set_log_func(fuse_log_to_glib);
	ifs_log_init(false);

	if (fuse_opt_parse(&args, &cmd, cmdline_spec, cmdline_proc) != 0)
		goto out_args;
	if (take_positional(&cmd, &args) < 0)
		goto out_args;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out_args;
	if (opts.show_help) {
		usage(argv[0]);
		ret = 0;
		goto out_args;
	}
	if (opts.show_version) {
		printf("imapfs %s\n", IMAPFS_VERSION);
		fflush(stdout); /* fuse_lowlevel_version runs fusermount3, which prints too */
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (opts.mountpoint == NULL) {
		fprintf(stderr, "imapfs: no mount point given (usage: imapfs [ACCOUNT] MOUNTPOINT "
		                "[-o config=FILE]; see imapfs --help)\n");
		goto out_args;
	}
	ifs_log_init(opts.debug);
	ifs_log_set_startup(true);
	if (ifs_owner_parse(cmd.uid, cmd.gid, cmd.umask, &owner, &why) < 0) {
		fprintf(stderr, "imapfs: %s\n", why);
		goto out_args;
	}

	if (ifs_config_load(cmd.config, cmd.account, &cfg, &why) < 0) {
		fprintf(stderr, "imapfs: %s\n", why);
		goto out_args;
	}
	if (check_mountpoint(opts.mountpoint) < 0)
		goto out_cfg;
	if (cfg->tls == IMAP_TLS_NONE)
		fprintf(stderr, "imapfs: warning: tls = none in %s: the password and all mail cross "
		                "the network unencrypted\n", cfg->path);

	raise_nofile();
	/* Many FUSE threads would each get a malloc arena of their own and keep its peak. */
	mallopt(M_ARENA_MAX, 2);

	mime_init();
	memset(&icfg, 0, sizeof(icfg));
	icfg.host = cfg->host;
	icfg.port = cfg->port;
	icfg.tls = cfg->tls;
	icfg.user = cfg->user;
	icfg.auth = cfg->auth;
	icfg.password = cfg->password;
	if (cfg->auth == IMAP_AUTH_OAUTH2) {
		/* a token helper may renew over the network: twice a network timeout */
		token = ifs_token_new(cfg->oauth_cmd, 2 * cfg->timeout_s);
		icfg.credential = ifs_token_get;
		icfg.credential_ctx = token;
	}
	icfg.ca_file = cfg->ca_file;
	icfg.timeout_ms = cfg->timeout_s * 1000u;
	icfg.compress = cfg->compress;
	if (make_pools(&fs, &icfg, cfg->connections, cfg->readahead > 0, cfg->watch) < 0) {
		fprintf(stderr, "imapfs: cannot set up the IMAP connection pool\n");
		goto out_pool;
	}
	/* The pool has its own copy now; ours is no longer needed anywhere. */
	icfg.password = NULL;
	ifs_config_wipe_password(cfg);

	/* Connect and log in before detaching: a wrong host, port, password or certificate is
	 * reported here, on the terminal. */
	r = imap_pool_acquire(fs.list_pool, &conn, &why);
	if (r < 0 && ifs_remote_unreachable_error(r) && cfg->cache_dir != NULL &&
	    ifs_state_exists(cfg->cache_dir)) {
		/* The server cannot be reached but the cache holds this account: serve that. */
		if (open_offline(&fs, cfg, why, &folders) < 0)
			goto out_pool;
		g_clear_pointer(&why, g_free);
		goto mount;
	}
	if (r < 0) {
		fprintf(stderr, "imapfs: cannot log in to %s:%s as %s: %s\n", cfg->host, cfg->port,
		        cfg->user, why != NULL ? why : "unknown error");
		goto out_pool;
	}
	fs.has_binary = imap_conn_has_cap(conn, "BINARY");
	has_ids = imap_conn_has_cap(conn, "X-GM-EXT-1") || imap_conn_has_cap(conn, "OBJECTID");
	/* hide by special use: ask for the attributes where the server needs to be asked */
	if (ifs_remote_list_on(conn, cfg->hide_use != 0, &folders, &why) < 0) {
		fprintf(stderr, "imapfs: listing the folders of %s failed: %s\n", cfg->host, why);
		imap_pool_release(fs.list_pool, conn);
		goto out_pool;
	}
	imap_pool_release(fs.list_pool, conn);
	conn = NULL;
	/* Readers start with a logged-in connection too, as they did when all shared one pool:
	 * a server that stalls the first read then breaks a connection (EIO, retried on a new
	 * one next time) instead of failing a first connect (which would start the pool's
	 * reconnection back-off).  A failure here is not fatal: the pool retries later. */
	if (fs.pool != fs.list_pool && imap_pool_acquire(fs.pool, &conn, NULL) == 0)
		imap_pool_release(fs.pool, conn);
	/* And so does the read-ahead: a walk's first read-ahead would otherwise wait for the
	 * connection, TLS handshake and LOGIN (four round trips; at 50 ms RTT a cold grep of
	 * 5,000 messages took 1.68 s with them and 1.53 s without, bench/ab.py). */
	if (fs.ra_pool != fs.pool && fs.ra_pool != fs.list_pool &&
	    imap_pool_acquire(fs.ra_pool, &conn, NULL) == 0)
		imap_pool_release(fs.ra_pool, conn);

	/* After logging in: a mistake in the account leaves no cache directory behind. */
	if (cfg->cache_dir != NULL) {
		r = open_cache(&fs, cfg, &why);
		if (r == -EBUSY) {
			/* Two mounts of one account: the second one simply has no disk cache. */
			fprintf(stderr, "imapfs: warning: %s; running without a disk cache\n", why);
			g_clear_pointer(&why, g_free);
		} else if (r < 0) {
			fprintf(stderr, "imapfs: %s\n", why);
			g_clear_pointer(&folders, g_ptr_array_unref);
			goto out_pool;
		}
		if (fs.state != NULL)
			ifs_state_save_folders(fs.state, folders);
	}
mount:
	fs.cfg = cfg;
	fs.uid = owner.uid;
	fs.gid = owner.gid;
	fs.file_mode = owner.file_mode;
	fs.dir_mode = owner.dir_mode;
	fs.folder_timeout = cfg->refresh_s;
	fs.stats_xattr = cmd.stats != 0;
	fs.cache = ifs_msgcache_new(cfg->memory_cache);
	fs.tree = ifs_tree_new(fs.list_pool, fs.cache, fs.bodies, cfg->refresh_s);
	ifs_tree_set_state(fs.tree, fs.state);
	fs.identity = ifs_identity_new();
	ifs_tree_set_identity(fs.tree, fs.identity);
	ifs_tree_set_hide(fs.tree, cfg->hide_use, cfg->hide_names);
	ifs_tree_set_folders(fs.tree, folders);
	g_clear_pointer(&folders, g_ptr_array_unref);
	/* a server with message ids (or no server: offline, the saved ids are all there is) */
	if (has_ids || ifs_remote_offline())
		ifs_tree_restore_identities(fs.tree);
	fs.search = ifs_search_new(fs.tree, fs.list_pool, cfg->refresh_s);
	fs.quota = ifs_quota_new(fs.list_pool, cfg->refresh_s);

	add_mount_options(&args, cfg->host);
	se = fuse_session_new(&args, ifs_operations(), sizeof(struct fuse_lowlevel_ops), &fs);
	if (se == NULL)
		goto out_tree;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0) {
		fprintf(stderr, "imapfs: cannot mount on %s\n", opts.mountpoint);
		goto out_signals;
	}
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	if (!opts.foreground)
		ifs_log_to_syslog();
	ifs_log_set_startup(false);
	if (token != NULL)
		ifs_token_announce(token);
	g_message("mounted %s@%s on %s", cfg->user, cfg->host, opts.mountpoint);

	/* Threads only now: fuse_daemonize forks, and a fork keeps only the calling thread. */
	ifs_state_start_writer(fs.state);
	fs.notifier = ifs_notifier_new(se);
	{
		struct imap_pool *pools[3] = {fs.pool, fs.list_pool, fs.ra_pool};
		fs.reconnector = ifs_remote_reconnector_new(fs.list_pool, pools, 3);
	}
	if (cfg->readahead > 0)
		/* ahead of the reader: an eighth of the disk cache, or a quarter of the memory
		 * cache, at most; parsed ahead: an eighth of the memory cache */
		fs.readahead = ifs_readahead_new(
		    fs.ra_pool, fs.bodies, fs.cache, fs.tree, cfg->readahead,
		    fs.bodies != NULL ? cfg->cache_size / 8 : cfg->memory_cache / 4,
		    cfg->memory_cache / 8);
	if (fs.readahead != NULL) {
		ifs_readahead_set_piece_fetcher(fs.readahead, prefetch_pieces, prefetch_whole, &fs);
		ifs_readahead_set_held_elsewhere(fs.readahead, held_elsewhere, &fs);
	}
	ifs_tree_set_notifier(fs.tree, fs.notifier);
	ifs_search_set_notifier(fs.search, fs.notifier);
	if (fs.watch_pool != NULL)
		fs.watch = ifs_watch_new(fs.watch_pool, fs.tree, cfg->idle_renew_s);
	else if (cfg->watch)
		g_message("watch: off with connections = %u (needs 3): changes are seen after "
		          "`refresh` seconds", cfg->connections);
	/* A push waits for any page of the file a concurrent READ holds locked, which only
	 * another worker can answer: never with a single thread. */
	fs.push_se = opts.singlethread ? NULL : se;
	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config lc = {
			.clone_fd = opts.clone_fd,
			/* UINT_MAX means "not given" to fuse_parse_cmdline but "invalid" here.
			 * Default 2, not libfuse's 10: idle workers wait on /dev/fuse in a queue
			 * and the kernel wakes them in turn, so a sequential reader's requests
			 * (grep -r: one at a time) would rotate through all of them; with two
			 * they alternate, and a cold walk of 5,000 messages from the disk cache
			 * took 0.74 s instead of 0.98 s (bench/ab.py, medians of 5).  1 is worse
			 * (a worker is created and ended for every request).  Concurrent
			 * requests still get as many workers as they need. */
			.max_idle_threads = opts.max_idle_threads == UINT_MAX ? 2
			                                                      : opts.max_idle_threads,
		};
		ret = fuse_session_loop_mt(se, &lc);
	}
	/* The loop returns the signal that ended it: SIGTERM/SIGINT/SIGHUP are a clean exit. */
	ret = (ret == 0 || ret == SIGTERM || ret == SIGINT || ret == SIGHUP) ? 0 : 1;
	{
		char *stats = ifs_stats(&fs);
		g_message("unmounting: %s", stats);
		g_free(stats);
	}
	ifs_watch_free(fs.watch); /* it calls the tree, which tells the notifier */
	fs.watch = NULL;
	ifs_tree_set_notifier(fs.tree, NULL);
	ifs_search_set_notifier(fs.search, NULL);
	ifs_notifier_free(fs.notifier);
	fs.notifier = NULL;
	ifs_remote_reconnector_free(fs.reconnector);
	fs.reconnector = NULL;

out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_tree:
	ifs_readahead_free(fs.readahead);
	ifs_search_free(fs.search);
	ifs_quota_free(fs.quota);
	ifs_tree_free(fs.tree);
	ifs_identity_free(fs.identity);
	ifs_msgcache_free(fs.cache);
out_pool:
	free_pools(&fs);
	ifs_state_free(fs.state);
	ifs_token_free(token);
	ifs_bodycache_free(fs.bodies);
out_cfg:
	ifs_config_free(cfg);
out_args:
	g_free(why);
	g_free(cmd.account);
	g_free(cmd.config);
	g_free(cmd.uid);
	g_free(cmd.gid);
	g_free(cmd.umask);
	g_ptr_array_unref(cmd.positional);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
