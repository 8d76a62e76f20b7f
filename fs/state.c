/* state.c — the folder list and folder listings kept on disk between mounts (format, file
 * names and crash rules in state.h). */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bodycache.h"

#define STATE_SUBDIR    "state"
#define TMP_PREFIX      ".tmp-"
#define FOLDERS_MAGIC   "imapfs-folders 1"
#define LISTING_MAGIC   "imapfs-listing 2"
#define LISTING_MAGIC_1 "imapfs-listing 1" /* read too: no <ident> field */
#define LISTING_SUFFIX  ".listing"

/* A save waiting for the writer thread.  A listing's text is made by the writer from a
 * reference to the caller's msgs (immutable once saved: state.h); the folder list's is small
 * and made by the caller, which also names the listings to keep. */
struct save {
	char *raw_name;               /* listing: the folder; NULL: the folder list */
	struct ifs_listing_state st;  /* listing */
	GArray *msgs;                 /* listing: a reference */
	GString *text;                /* folder list */
	char *sum;                    /* folder list: its checksum */
	GHashTable *keep;             /* folder list: listing file names to keep */
};

struct ifs_state {
	char *dir; /* <cache dir>/state */
	GMutex lock;        /* guards the fields below */
	char *folders_sum;  /* checksum of the folder list last saved, queued or loaded */
	int last_err;       /* the last save failure logged (one line per condition) */
	/* Saves are written by one thread of their own, so that a listing — the first `ls` of
	 * a 100,000-message folder writes 3 MB and fsyncs — never waits for the disk.  A newer
	 * save of the same file replaces one still queued. */
	GThread *writer;
	GCond changed;      /* queue or writing changed, or stop */
	GHashTable *queue;  /* file name (new) -> struct save (owned) */
	char *writing;      /* file name the writer is writing now, or NULL */
	bool stop;          /* write what is queued, then end */
};

/* ---- fields ---- */

static void put_field(GString *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < '!' || *p > '~' || *p == '%')
			g_string_append_printf(out, "%%%02X", *p);
		else
			g_string_append_c(out, (char)*p);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The field of len bytes at s, decoded; NULL when malformed (a NUL byte included). */
static char *get_field(const char *s, size_t len)
{
	GString *out = g_string_sized_new(len);

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				g_string_free(out, TRUE);
				return NULL;
			}
			g_string_append_c(out, (char)(hi * 16 + lo));
			i += 2;
		} else if ((unsigned char)s[i] < '!' || (unsigned char)s[i] > '~') {
			g_string_free(out, TRUE);
			return NULL;
		} else {
			g_string_append_c(out, s[i]);
		}
	}
	return g_string_free(out, FALSE);
}

/* Split line (NUL-terminated, no line end) at spaces: a new vector of borrowed pointers into
 * line, which is modified. */
static GPtrArray *split_fields(char *line)
{
	GPtrArray *f = g_ptr_array_new();
	char *p = line;

	for (;;) {
		char *sp = strchr(p, ' ');
		g_ptr_array_add(f, p);
		if (sp == NULL)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	return f;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *v_r)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*v_r = v;
	return true;
}

static bool parse_i64(const char *s, int64_t *v_r)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		return false;
	*v_r = v;
	return true;
}

/* "key <number>" */
static bool parse_keyed(char *line, const char *key, uint64_t max, uint64_t *v_r)
{
	size_t n = strlen(key);
	return line != NULL && strncmp(line, key, n) == 0 && line[n] == ' ' &&
	       parse_u64(line + n + 1, max, v_r);
}

/* ---- files ---- */

static void note_save_failure(struct ifs_state *state, int err, const char *what)
{
	g_mutex_lock(&state->lock);
	if (state->last_err != err)
		g_warning("cannot save %s in %s: %s (the next mount lists it from the server)",
		          what, state->dir, g_strerror(err));
	state->last_err = err;
	g_mutex_unlock(&state->lock);
}

static void note_save_ok(struct ifs_state *state)
{
	g_mutex_lock(&state->lock);
	state->last_err = 0;
	g_mutex_unlock(&state->lock);
}

/* Write data as name in the state directory: temporary file, fsync, rename (state.h). */
static int write_atomic(struct ifs_state *state, const char *name, const GString *data)
{
	char *tmp = NULL, *final = g_build_filename(state->dir, name, NULL);
	int fd = -1, ret = 0;
	size_t off = 0;

	/* the cache directory may have been removed and made again meanwhile */
	if (g_mkdir_with_parents(state->dir, 0700) < 0) {
		ret = -errno;
		goto out;
	}
	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		g_free(tmp);
		tmp = g_strdup_printf("%s/" TMP_PREFIX "%08x%08x", state->dir, g_random_int(),
		                      g_random_int());
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			ret = -errno;
			goto out;
		}
	}
	if (fd < 0) {
		ret = -EEXIST;
		goto out;
	}
	while (off < data->len) {
		ssize_t n = write(fd, data->str + off, data->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || rename(tmp, final) < 0) {
		ret = -errno;
		goto out;
	}
	g_clear_pointer(&tmp, g_free);
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	g_free(tmp);
	g_free(final);
	return ret;
}

/* The file name in the state directory to read, whole, into *data_r (new). */
static int read_file(struct ifs_state *state, const char *name, char **data_r, size_t *len_r)
{
	char *path = g_build_filename(state->dir, name, NULL);
	GError *err = NULL;
	bool ok = g_file_get_contents(path, data_r, len_r, &err);

	g_free(path);
	if (!ok) {
		int ret = err->domain == G_FILE_ERROR && err->code == G_FILE_ERROR_NOENT ? -ENOENT
		                                                                           : -EIO;
		g_error_free(err);
		return ret;
	}
	return 0;
}

/* A file that is not what state.h says: not used, and removed so it is not read again. */
static int invalid(struct ifs_state *state, const char *name, const char *why)
{
	char *path = g_build_filename(state->dir, name, NULL);

	g_message("saved state %s is not valid (%s); listing from the server instead", path, why);
	unlink(path);
	g_free(path);
	return -ENOENT;
}

/* Lines of data (modified in place: line ends become NULs).  A file that does not end with a
 * line end is cut short: no lines are returned for it (NULL). */
static GPtrArray *lines_of(char *data, size_t len)
{
	GPtrArray *lines;
	char *p = data;

	if (len == 0 || data[len - 1] != '\n' || memchr(data, '\0', len) != NULL)
		return NULL;
	lines = g_ptr_array_new();
	while (p < data + len) {
		char *nl = memchr(p, '\n', (size_t)(data + len - p));
		*nl = '\0';
		g_ptr_array_add(lines, p);
		p = nl + 1;
	}
	return lines;
}

/* ---- life ---- */

static void save_free(void *p)
{
	struct save *sv = p;

	g_free(sv->raw_name);
	if (sv->msgs != NULL)
		g_array_unref(sv->msgs);
	if (sv->text != NULL)
		g_string_free(sv->text, TRUE);
	g_free(sv->sum);
	if (sv->keep != NULL)
		g_hash_table_destroy(sv->keep);
	g_free(sv);
}

static void write_save(struct ifs_state *state, const char *name, struct save *sv);

static gpointer writer_run(gpointer p)
{
	struct ifs_state *state = p;

	g_mutex_lock(&state->lock);
	for (;;) {
		GHashTableIter it;
		gpointer name, sv;

		g_hash_table_iter_init(&it, state->queue);
		if (!g_hash_table_iter_next(&it, &name, &sv)) {
			if (state->stop)
				break;
			g_cond_wait(&state->changed, &state->lock);
			continue;
		}
		g_hash_table_iter_steal(&it);
		state->writing = name;
		g_mutex_unlock(&state->lock);
		write_save(state, name, sv);
		save_free(sv);
		g_mutex_lock(&state->lock);
		state->writing = NULL;
		g_free(name);
		g_cond_broadcast(&state->changed);
	}
	g_mutex_unlock(&state->lock);
	return NULL;
}

struct ifs_state *ifs_state_new(const char *dir)
{
	struct ifs_state *state = g_new0(struct ifs_state, 1);
	DIR *d;
	struct dirent *de;

	state->dir = g_build_filename(dir, STATE_SUBDIR, NULL);
	g_mutex_init(&state->lock);
	g_cond_init(&state->changed);
	state->queue = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, save_free);
	/* temporary files of a daemon killed while it was saving */
	d = opendir(state->dir);
	if (d != NULL) {
		while ((de = readdir(d)) != NULL)
			if (g_str_has_prefix(de->d_name, TMP_PREFIX))
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	return state;
}

void ifs_state_start_writer(struct ifs_state *state)
{
	GError *err = NULL;

	if (state == NULL || state->writer != NULL)
		return;
	state->writer = g_thread_try_new("imapfs-state", writer_run, state, &err);
	if (state->writer == NULL) {
		g_message("state: no writer thread (%s); saving on the listing's path", err->message);
		g_error_free(err);
	}
}

void ifs_state_flush(struct ifs_state *state)
{
	g_mutex_lock(&state->lock);
	while (g_hash_table_size(state->queue) > 0 || state->writing != NULL)
		g_cond_wait(&state->changed, &state->lock);
	g_mutex_unlock(&state->lock);
}

void ifs_state_free(struct ifs_state *state)
{
	if (state == NULL)
		return;
	if (state->writer != NULL) {
		/* what is queued is written first: a clean unmount keeps every listing */
		g_mutex_lock(&state->lock);
		state->stop = true;
		g_cond_broadcast(&state->changed);
		g_mutex_unlock(&state->lock);
		g_thread_join(state->writer);
	}
	g_hash_table_destroy(state->queue);
	g_cond_clear(&state->changed);
	g_mutex_clear(&state->lock);
	g_free(state->folders_sum);
	g_free(state->dir);
	g_free(state);
}

/* Queue sv as the next content of file name (both owned), or write it now without a writer. */
static void queue_save(struct ifs_state *state, char *name, struct save *sv)
{
	if (state->writer == NULL) {
		write_save(state, name, sv);
		save_free(sv);
		g_free(name);
		return;
	}
	g_mutex_lock(&state->lock);
	g_hash_table_replace(state->queue, name, sv);
	g_cond_broadcast(&state->changed);
	g_mutex_unlock(&state->lock);
}

bool ifs_state_exists(const char *dir)
{
	char *path = g_build_filename(dir, STATE_SUBDIR, "folders", NULL);
	bool found = g_file_test(path, G_FILE_TEST_IS_REGULAR);

	g_free(path);
	return found;
}

/* ---- the folder list ---- */

static GString *folders_text(GPtrArray *folders)
{
	GString *out = g_string_new(FOLDERS_MAGIC "\n");

	for (guint i = 0; i < folders->len; i++) {
		const struct imap_folder *f = folders->pdata[i];
		g_string_append_printf(out, "%x %02x ", f->flags, (unsigned char)f->delimiter);
		put_field(out, f->raw_name);
		g_string_append_c(out, '\n');
	}
	g_string_append_printf(out, "end %u\n", folders->len);
	return out;
}

static void folder_free(gpointer p)
{
	imap_folder_free(p);
}

int ifs_state_load_folders(struct ifs_state *state, GPtrArray **folders_r)
{
	char *data = NULL;
	size_t len = 0;
	GPtrArray *lines, *folders;
	uint64_t count;
	int ret = read_file(state, "folders", &data, &len);

	*folders_r = NULL;
	if (ret < 0)
		return ret;
	lines = lines_of(data, len);
	if (lines == NULL || lines->len < 2 || strcmp(lines->pdata[0], FOLDERS_MAGIC) != 0 ||
	    !parse_keyed(lines->pdata[lines->len - 1], "end", G_MAXUINT32, &count) ||
	    count != lines->len - 2) {
		if (lines != NULL)
			g_ptr_array_unref(lines);
		g_free(data);
		return invalid(state, "folders", "cut short or another version");
	}
	folders = g_ptr_array_new_with_free_func(folder_free);
	for (guint i = 1; i + 1 < lines->len; i++) {
		GPtrArray *f = split_fields(lines->pdata[i]);
		uint64_t flags = 0, delim = 0;
		char *end;
		struct imap_folder *folder;
		char *raw;

		if (f->len != 3 || (flags = strtoull(f->pdata[0], &end, 16), *end != '\0') ||
		    (delim = strtoull(f->pdata[1], &end, 16), *end != '\0') || delim > 0x7f ||
		    flags > G_MAXUINT32 || (raw = get_field(f->pdata[2], strlen(f->pdata[2]))) == NULL) {
			g_ptr_array_unref(f);
			g_ptr_array_unref(folders);
			g_ptr_array_unref(lines);
			g_free(data);
			return invalid(state, "folders", "malformed line");
		}
		g_ptr_array_unref(f);
		folder = g_new0(struct imap_folder, 1);
		folder->raw_name = raw;
		folder->delimiter = (char)delim;
		folder->flags = (unsigned)flags;
		imap_folder_decode_name(folder); /* as imap_list does */
		g_ptr_array_add(folders, folder);
	}
	g_ptr_array_unref(lines);
	{
		GString *text = folders_text(folders);
		g_mutex_lock(&state->lock);
		g_free(state->folders_sum);
		state->folders_sum =
		    g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)text->str, text->len);
		g_mutex_unlock(&state->lock);
		g_string_free(text, TRUE);
	}
	g_free(data);
	*folders_r = folders;
	return 0;
}

/* The listing file names of folders (new set). */
static GHashTable *listing_names(GPtrArray *folders)
{
	GHashTable *keep = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (guint i = 0; i < folders->len; i++) {
		const struct imap_folder *f = folders->pdata[i];
		char hash[IFS_FOLDER_HASH_LEN + 1];
		ifs_bodycache_folder_hash(f->raw_name, hash);
		g_hash_table_add(keep, g_strconcat(hash, LISTING_SUFFIX, NULL));
	}
	return keep;
}

/* Remove the listings whose file names are not in keep. */
static void prune_listings(struct ifs_state *state, GHashTable *keep)
{
	DIR *d = opendir(state->dir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (g_str_has_suffix(de->d_name, LISTING_SUFFIX) &&
		    !g_hash_table_contains(keep, de->d_name))
			unlinkat(dirfd(d), de->d_name, 0);
	if (d != NULL)
		closedir(d);
}

static void write_folders(struct ifs_state *state, struct save *sv)
{
	int ret = write_atomic(state, "folders", sv->text);

	if (ret == 0) {
		prune_listings(state, sv->keep);
		note_save_ok(state);
		return;
	}
	note_save_failure(state, -ret, "the folder list");
	/* not saved: the next LIST saves it again, even unchanged */
	g_mutex_lock(&state->lock);
	if (g_strcmp0(state->folders_sum, sv->sum) == 0)
		g_clear_pointer(&state->folders_sum, g_free);
	g_mutex_unlock(&state->lock);
}

int ifs_state_save_folders(struct ifs_state *state, GPtrArray *folders)
{
	GString *text = folders_text(folders);
	char *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)text->str, text->len);
	struct save *sv;

	g_mutex_lock(&state->lock);
	if (g_strcmp0(sum, state->folders_sum) == 0) {
		g_mutex_unlock(&state->lock);
		g_free(sum);
		g_string_free(text, TRUE);
		return 0;
	}
	g_free(state->folders_sum);
	state->folders_sum = g_strdup(sum);
	g_mutex_unlock(&state->lock);
	sv = g_new0(struct save, 1);
	sv->text = text;
	sv->sum = sum;
	sv->keep = listing_names(folders);
	if (state->writer != NULL) {
		/* a queued listing of a folder that went must not be written after the prune */
		GHashTableIter it;
		gpointer name;
		g_mutex_lock(&state->lock);
		g_hash_table_iter_init(&it, state->queue);
		while (g_hash_table_iter_next(&it, &name, NULL))
			if (g_str_has_suffix(name, LISTING_SUFFIX) &&
			    !g_hash_table_contains(sv->keep, name))
				g_hash_table_iter_remove(&it);
		g_mutex_unlock(&state->lock);
	}
	queue_save(state, g_strdup("folders"), sv);
	return 0;
}

/* ---- listings ---- */

static char *listing_name(const char *raw_name)
{
	char hash[IFS_FOLDER_HASH_LEN + 1];

	ifs_bodycache_folder_hash(raw_name, hash);
	return g_strconcat(hash, LISTING_SUFFIX, NULL);
}

static void attr_clear(void *p)
{
	g_free(((struct ifs_msg_attr *)p)->flags);
	ifs_msg_ident_unref(((struct ifs_msg_attr *)p)->ident);
}

/* A message's identity as one field (state.h <ident>): "-" when it has none, else the
 * encoded "<id>\n<t thread | ->\n<l labels | ->" (which always holds an encoded line end,
 * so it is never "-"). */
static void put_ident(GString *out, const struct ifs_msg_ident *ident)
{
	char *s;

	if (ident == NULL) {
		g_string_append_c(out, '-');
		return;
	}
	s = g_strconcat(ident->email_id, "\n", ident->thread_id != NULL ? "t" : "-",
	                ident->thread_id != NULL ? ident->thread_id : "", "\n",
	                ident->labels != NULL ? "l" : "-",
	                ident->labels != NULL ? ident->labels : "", NULL);
	put_field(out, s);
	g_free(s);
}

/* The field put_ident wrote: true and *ident_r (new or NULL), or false when malformed. */
static bool get_ident(const char *field, struct ifs_msg_ident **ident_r)
{
	char *s, *nl1, *nl2;
	bool ok;

	*ident_r = NULL;
	if (strcmp(field, "-") == 0)
		return true;
	s = get_field(field, strlen(field));
	nl1 = s != NULL ? strchr(s, '\n') : NULL;
	nl2 = nl1 != NULL ? strchr(nl1 + 1, '\n') : NULL;
	ok = nl2 != NULL && nl1 > s && (nl1[1] == 't' || (nl1[1] == '-' && nl2 == nl1 + 2)) &&
	     (nl2[1] == 'l' || (nl2[1] == '-' && nl2[2] == '\0'));
	if (ok) {
		*nl1 = *nl2 = '\0';
		*ident_r = ifs_msg_ident_new_raw(s, nl1[1] == 't' ? nl1 + 2 : NULL,
		                                 nl2[1] == 'l' ? nl2 + 2 : NULL);
	}
	g_free(s);
	return ok;
}

/* One message line into *m (flags and ident new) of a listing in format version (1 or 2).
 * false when malformed. */
static bool parse_msg(char *line, uint32_t after, int version, struct ifs_msg_attr *m)
{
	GPtrArray *f = split_fields(line);
	guint first_flag = version >= 2 ? 4 : 3;
	uint64_t uid, size;
	GString *flags;
	bool ok = f->len >= first_flag && parse_u64(f->pdata[0], G_MAXUINT32, &uid) &&
	          uid > after && parse_u64(f->pdata[1], G_MAXUINT64, &size) &&
	          parse_i64(f->pdata[2], &m->internaldate) &&
	          (version < 2 || get_ident(f->pdata[3], &m->ident));

	if (!ok) {
		g_ptr_array_unref(f);
		return false;
	}
	m->uid = (uint32_t)uid;
	m->size = size;
	flags = g_string_new(NULL);
	for (guint i = first_flag; i < f->len && ok; i++) {
		const char *s = f->pdata[i];
		char *flag = s[0] != '\0' ? get_field(s, strlen(s)) : NULL;
		if (flag == NULL) {
			ok = false;
			break;
		}
		g_string_append(flags, flag);
		g_string_append_c(flags, '\n');
		g_free(flag);
	}
	g_ptr_array_unref(f);
	m->flags = g_string_free(flags, !ok);
	if (!ok)
		g_clear_pointer(&m->ident, ifs_msg_ident_unref);
	return ok;
}

int ifs_state_load_listing(struct ifs_state *state, const char *raw_name,
                           struct ifs_listing_state *st_r, GArray **msgs_r)
{
	char *name = listing_name(raw_name);
	char *data = NULL, *folder = NULL;
	size_t len = 0;
	GPtrArray *lines = NULL;
	GArray *msgs = NULL;
	uint64_t uidvalidity, uidnext, exists, modseq, count;
	const char *why = NULL;
	uint32_t last = 0;
	int version = 2;
	int ret;

	/* a save of this listing still queued or being written is what to load */
	g_mutex_lock(&state->lock);
	while (g_hash_table_contains(state->queue, name) || g_strcmp0(state->writing, name) == 0)
		g_cond_wait(&state->changed, &state->lock);
	g_mutex_unlock(&state->lock);
	ret = read_file(state, name, &data, &len);

	*msgs_r = NULL;
	if (ret < 0)
		goto out;
	lines = lines_of(data, len);
	if (lines != NULL && lines->len > 0 && strcmp(lines->pdata[0], LISTING_MAGIC_1) == 0)
		version = 1; /* saved before message ids: the next save writes version 2 */
	if (lines == NULL || lines->len < 9 ||
	    (version == 2 && strcmp(lines->pdata[0], LISTING_MAGIC) != 0) ||
	    strcmp(lines->pdata[lines->len - 1], "end") != 0) {
		why = "cut short or another version";
		goto out;
	}
	if (!g_str_has_prefix(lines->pdata[1], "folder ") ||
	    (folder = get_field((char *)lines->pdata[1] + 7, strlen(lines->pdata[1]) - 7)) ==
	        NULL ||
	    strcmp(folder, raw_name) != 0) {
		why = "another folder's";
		goto out;
	}
	if (!parse_keyed(lines->pdata[2], "uidvalidity", G_MAXUINT32, &uidvalidity) ||
	    !parse_keyed(lines->pdata[3], "uidnext", G_MAXUINT32, &uidnext) ||
	    !parse_keyed(lines->pdata[4], "exists", G_MAXUINT32, &exists) ||
	    !parse_keyed(lines->pdata[5], "highestmodseq", G_MAXUINT64, &modseq) ||
	    !parse_keyed(lines->pdata[6], "messages", G_MAXUINT32, &count) ||
	    count != lines->len - 8) {
		why = "malformed header";
		goto out;
	}
	msgs = g_array_sized_new(FALSE, FALSE, sizeof(struct ifs_msg_attr), (guint)count);
	g_array_set_clear_func(msgs, attr_clear);
	for (guint i = 7; i + 1 < lines->len; i++) {
		struct ifs_msg_attr m = {0};
		if (!parse_msg(lines->pdata[i], last, version, &m)) {
			why = "malformed message line";
			goto out;
		}
		last = m.uid;
		g_array_append_val(msgs, m);
	}
	st_r->uidvalidity = (uint32_t)uidvalidity;
	st_r->uidnext = (uint32_t)uidnext;
	st_r->exists = (uint32_t)exists;
	st_r->highestmodseq = modseq;
	*msgs_r = msgs;
	msgs = NULL;
out:
	if (why != NULL)
		ret = invalid(state, name, why);
	if (msgs != NULL)
		g_array_unref(msgs);
	if (lines != NULL)
		g_ptr_array_unref(lines);
	g_free(folder);
	g_free(data);
	g_free(name);
	return ret;
}

static GString *listing_text(const char *raw_name, const struct ifs_listing_state *st,
                             GArray *msgs)
{
	GString *out = g_string_sized_new(64 + (gsize)msgs->len * 32);

	g_string_append(out, LISTING_MAGIC "\nfolder ");
	put_field(out, raw_name);
	g_string_append_printf(out,
	                       "\nuidvalidity %u\nuidnext %u\nexists %u\nhighestmodseq %" G_GUINT64_FORMAT
	                       "\nmessages %u\n",
	                       st->uidvalidity, st->uidnext, st->exists, st->highestmodseq, msgs->len);
	for (guint i = 0; i < msgs->len; i++) {
		const struct ifs_msg_attr *m = &g_array_index(msgs, struct ifs_msg_attr, i);
		const char *p = m->flags != NULL ? m->flags : "";
		g_string_append_printf(out, "%u %" G_GUINT64_FORMAT " %" G_GINT64_FORMAT " ",
		                       m->uid, m->size, m->internaldate);
		put_ident(out, m->ident);
		/* flags: one per line in memory, one field each here */
		while (*p != '\0') {
			const char *nl = strchr(p, '\n');
			size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
			if (n > 0) {
				char *flag = g_strndup(p, n);
				g_string_append_c(out, ' ');
				put_field(out, flag);
				g_free(flag);
			}
			p += n + (nl != NULL);
		}
		g_string_append_c(out, '\n');
	}
	g_string_append(out, "end\n");
	return out;
}

static void write_listing(struct ifs_state *state, const char *name, struct save *sv)
{
	GString *out = listing_text(sv->raw_name, &sv->st, sv->msgs);
	int ret = write_atomic(state, name, out);

	if (ret < 0)
		note_save_failure(state, -ret, "a folder listing");
	else
		note_save_ok(state);
	g_string_free(out, TRUE);
}

static void write_save(struct ifs_state *state, const char *name, struct save *sv)
{
	if (sv->raw_name == NULL)
		write_folders(state, sv);
	else
		write_listing(state, name, sv);
}

int ifs_state_save_listing(struct ifs_state *state, const char *raw_name,
                           const struct ifs_listing_state *st, GArray *msgs)
{
	struct save *sv = g_new0(struct save, 1);

	sv->raw_name = g_strdup(raw_name);
	sv->st = *st;
	sv->msgs = g_array_ref(msgs);
	queue_save(state, listing_name(raw_name), sv);
	return 0;
}
