/* test_state.c — unit tests of fs/state.c, the folder list and listings saved between mounts:
 * round trips of awkward names and flags, the on-disk format, files cut short or of another
 * version (ignored and removed), leftovers of a killed writer, modes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bodycache.h"
#include "state.h"

static char *tmpdir_new(void)
{
	char *dir = g_dir_make_tmp("test-state-XXXXXX", NULL);
	g_assert_nonnull(dir);
	return dir;
}

static void rm_rf(const char *dir)
{
	char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(cmd);
}

static void folder_free(gpointer p)
{
	imap_folder_free(p);
}

static struct imap_folder *folder(const char *raw, char delim, unsigned flags)
{
	struct imap_folder *f = g_new0(struct imap_folder, 1);
	f->raw_name = g_strdup(raw);
	f->delimiter = delim;
	f->flags = flags;
	imap_mutf7_decode(raw, &f->name);
	return f;
}

static void msg_clear(void *p)
{
	g_free(((struct ifs_msg_attr *)p)->flags);
	ifs_msg_ident_unref(((struct ifs_msg_attr *)p)->ident);
}

static GArray *msgs_new(void)
{
	GArray *a = g_array_new(FALSE, FALSE, sizeof(struct ifs_msg_attr));
	g_array_set_clear_func(a, msg_clear);
	return a;
}

static void msgs_add(GArray *a, uint32_t uid, uint64_t size, int64_t date, const char *flags)
{
	struct ifs_msg_attr m = {uid, size, date, g_strdup(flags), NULL};
	g_array_append_val(a, m);
}

/* The last message added gets an identity (identity.h). */
static void msgs_ident(GArray *a, const char *id, const char *thread, const char *labels)
{
	g_array_index(a, struct ifs_msg_attr, a->len - 1).ident =
	    ifs_msg_ident_new_raw(id, thread, labels);
}

static char *state_file(const char *dir, const char *name)
{
	return g_build_filename(dir, "state", name, NULL);
}

static char *listing_file(const char *dir, const char *raw)
{
	char hash[IFS_FOLDER_HASH_LEN + 1];
	char *name;
	char *path;

	ifs_bodycache_folder_hash(raw, hash);
	name = g_strconcat(hash, ".listing", NULL);
	path = state_file(dir, name);
	g_free(name);
	return path;
}

/* A state as the daemon has it once mounted: saves written by its thread. */
static struct ifs_state *state_new(const char *dir)
{
	struct ifs_state *st = ifs_state_new(dir);
	ifs_state_start_writer(st);
	return st;
}

static void test_folders_round_trip(void)
{
	char *dir = tmpdir_new();
	struct ifs_state *st = state_new(dir);
	GPtrArray *in = g_ptr_array_new_with_free_func(folder_free), *out;
	struct stat sb;
	char *path;

	g_ptr_array_add(in, folder("INBOX", '/', 0));
	g_ptr_array_add(in, folder("Archive/2024 with spaces", '/', IMAP_FOLDER_HASCHILDREN));
	g_ptr_array_add(in, folder("100% &AOk-t&AOk-", '.', 0));       /* modified UTF-7 */
	g_ptr_array_add(in, folder("raw \xc3\xa9t\xc3\xa9", 0, IMAP_FOLDER_NOSELECT)); /* 8-bit */
	g_assert_cmpint(ifs_state_save_folders(st, in), ==, 0);
	ifs_state_flush(st);
	path = state_file(dir, "folders");
	g_assert_cmpint(stat(path, &sb), ==, 0);
	g_assert_cmpint(sb.st_mode & 0777, ==, 0600);
	g_assert_true(ifs_state_exists(dir));
	ifs_state_free(st);

	st = state_new(dir);
	g_assert_cmpint(ifs_state_load_folders(st, &out), ==, 0);
	g_assert_cmpuint(out->len, ==, in->len);
	for (guint i = 0; i < in->len; i++) {
		const struct imap_folder *a = in->pdata[i], *b = out->pdata[i];
		g_assert_cmpstr(a->raw_name, ==, b->raw_name);
		g_assert_cmpstr(a->name, ==, b->name);
		g_assert_cmpint(a->delimiter, ==, b->delimiter);
		g_assert_cmpuint(a->flags, ==, b->flags);
	}
	g_assert_cmpstr(((struct imap_folder *)out->pdata[2])->name, ==, "100% \xc3\xa9t\xc3\xa9");
	g_assert_null(((struct imap_folder *)out->pdata[3])->name);
	g_ptr_array_unref(out);
	g_ptr_array_unref(in);
	ifs_state_free(st);
	g_free(path);
	rm_rf(dir);
	g_free(dir);
}

static void test_listing_round_trip_and_format(void)
{
	char *dir = tmpdir_new();
	struct ifs_state *st = state_new(dir);
	struct ifs_listing_state ls = {12345, 40, 3, 987654321012ull}, got;
	GArray *in = msgs_new(), *out = NULL;
	char *path, *text = NULL;
	const char *raw = "Lists/dev %x";

	msgs_add(in, 3, 1200, 1704103200, "\\Seen\n");
	msgs_add(in, 17, 0, -5, "");
	msgs_ident(in, "1278455344230334865", "1266894439832287888",
	           "\\Inbox\nWork 2024\n\xc3\xa9t\xc3\xa9\n");
	msgs_add(in, 39, 99999999999ull, 1704103201, "\\Answered\n$Label 1\nodd%flag\n");
	msgs_ident(in, "M6d99ac3275bb4e", NULL, NULL);
	g_assert_cmpint(ifs_state_save_listing(st, raw, &ls, in), ==, 0);
	ifs_state_flush(st);
	path = listing_file(dir, raw);
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	/* the documented format (state.h), byte for byte */
	g_assert_cmpstr(
	    text, ==,
	    "imapfs-listing 2\n"
	    "folder Lists/dev%20%25x\n"
	    "uidvalidity 12345\n"
	    "uidnext 40\n"
	    "exists 3\n"
	    "highestmodseq 987654321012\n"
	    "messages 3\n"
	    "3 1200 1704103200 - \\Seen\n"
	    "17 0 -5 1278455344230334865%0At1266894439832287888%0Al\\Inbox%0AWork%202024"
	    "%0A%C3%A9t%C3%A9%0A\n"
	    "39 99999999999 1704103201 M6d99ac3275bb4e%0A-%0A- \\Answered $Label%201 "
	    "odd%25flag\n"
	    "end\n");
	g_assert_cmpint(ifs_state_load_listing(st, raw, &got, &out), ==, 0);
	g_assert_cmpuint(got.uidvalidity, ==, ls.uidvalidity);
	g_assert_cmpuint(got.uidnext, ==, ls.uidnext);
	g_assert_cmpuint(got.exists, ==, ls.exists);
	g_assert_cmpuint(got.highestmodseq, ==, ls.highestmodseq);
	g_assert_cmpuint(out->len, ==, 3);
	for (guint i = 0; i < 3; i++) {
		const struct ifs_msg_attr *a = &g_array_index(in, struct ifs_msg_attr, i);
		const struct ifs_msg_attr *b = &g_array_index(out, struct ifs_msg_attr, i);
		g_assert_cmpuint(a->uid, ==, b->uid);
		g_assert_cmpuint(a->size, ==, b->size);
		g_assert_cmpint(a->internaldate, ==, b->internaldate);
		g_assert_cmpstr(a->flags, ==, b->flags);
		g_assert_true((a->ident == NULL) == (b->ident == NULL));
		if (a->ident != NULL) {
			g_assert_cmpstr(a->ident->email_id, ==, b->ident->email_id);
			g_assert_cmpstr(a->ident->thread_id, ==, b->ident->thread_id);
			g_assert_cmpstr(a->ident->labels, ==, b->ident->labels);
		}
	}
	g_array_unref(out);
	/* a listing saved before message ids (version 1) still loads, without ids */
	g_assert_true(
	    g_file_set_contents(path,
	                        "imapfs-listing 1\nfolder Lists/dev%20%25x\nuidvalidity 5\n"
	                        "uidnext 3\nexists 1\nhighestmodseq 0\nmessages 1\n"
	                        "2 10 0 \\Seen\nend\n",
	                        -1, NULL));
	g_assert_cmpint(ifs_state_load_listing(st, raw, &got, &out), ==, 0);
	g_assert_cmpuint(out->len, ==, 1);
	g_assert_cmpstr(g_array_index(out, struct ifs_msg_attr, 0).flags, ==, "\\Seen\n");
	g_assert_null(g_array_index(out, struct ifs_msg_attr, 0).ident);
	g_array_unref(out);
	/* another folder's name never loads this file */
	g_assert_cmpint(ifs_state_load_listing(st, "INBOX", &got, &out), ==, -ENOENT);
	g_array_unref(in);
	g_free(text);
	g_free(path);
	ifs_state_free(st);
	rm_rf(dir);
	g_free(dir);
}

/* A listing file replaced by bad, then loaded: ignored (-ENOENT) and removed. */
static void check_rejected(const char *bad)
{
	char *dir = tmpdir_new();
	struct ifs_state *st = state_new(dir);
	struct ifs_listing_state ls = {7, 3, 2, 0}, got;
	GArray *in = msgs_new(), *out = NULL;
	char *path = listing_file(dir, "INBOX");

	msgs_add(in, 1, 10, 0, "");
	msgs_add(in, 2, 20, 0, "\\Seen\n");
	g_assert_cmpint(ifs_state_save_listing(st, "INBOX", &ls, in), ==, 0);
	g_assert_cmpint(ifs_state_load_listing(st, "INBOX", &got, &out), ==, 0);
	g_array_unref(out);
	out = NULL;
	g_assert_true(g_file_set_contents(path, bad, -1, NULL));
	g_assert_cmpint(ifs_state_load_listing(st, "INBOX", &got, &out), ==, -ENOENT);
	g_assert_null(out);
	g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	g_array_unref(in);
	g_free(path);
	ifs_state_free(st);
	rm_rf(dir);
	g_free(dir);
}

#define GOOD_HEAD "imapfs-listing 1\nfolder INBOX\nuidvalidity 7\nuidnext 3\nexists 2\n" \
                  "highestmodseq 0\nmessages 2\n"

static void test_listing_rejects_bad_files(void)
{
	/* cut short: no end line, or the last line unfinished */
	check_rejected(GOOD_HEAD "1 10 0\n2 20 0 \\Seen\n");
	check_rejected(GOOD_HEAD "1 10 0\n2 20 0 \\Seen\nen");
	check_rejected(GOOD_HEAD "1 10 0\n");
	/* another version */
	check_rejected("imapfs-listing 3\nfolder INBOX\nuidvalidity 7\nuidnext 3\nexists 2\n"
	               "highestmodseq 0\nmessages 2\n1 10 0\n2 20 0\nend\n");
	/* counts, order, numbers, escapes */
	check_rejected(GOOD_HEAD "1 10 0\nend\n");
	check_rejected(GOOD_HEAD "2 10 0\n1 20 0\nend\n");
	check_rejected(GOOD_HEAD "1 10 0\n1 20 0\nend\n");
	check_rejected(GOOD_HEAD "1 -10 0\n2 20 0\nend\n");
	check_rejected(GOOD_HEAD "1 10 0\n2 20 0 bad%2\nend\n");
	check_rejected(GOOD_HEAD "1 10 0\n2 20 0 nul%00\nend\n");
	check_rejected(GOOD_HEAD "1 10 0\n2 20 0  \nend\n");
	check_rejected(GOOD_HEAD "1 10 x\n2 20 0\nend\n");
	/* version 2: the identity field */
#define HEAD_2                                                                                     \
	"imapfs-listing 2\nfolder INBOX\nuidvalidity 7\nuidnext 3\nexists 2\n"                     \
	"highestmodseq 0\nmessages 2\n"
	check_rejected(HEAD_2 "1 10 0\n2 20 0 -\nend\n");            /* none */
	check_rejected(HEAD_2 "1 10 0 -\n2 20 0 x%0A-\nend\n");      /* one line end */
	check_rejected(HEAD_2 "1 10 0 -\n2 20 0 %0A-%0A-\nend\n");   /* empty id */
	check_rejected(HEAD_2 "1 10 0 -\n2 20 0 x%0Ay%0A-\nend\n");  /* no t or - */
	check_rejected(HEAD_2 "1 10 0 -\n2 20 0 x%0A-%0A-z\nend\n"); /* text after - */
	check_rejected("");
}

static void test_leftovers_removed_and_folders_pruned(void)
{
	char *dir = tmpdir_new();
	struct ifs_state *st = state_new(dir);
	struct ifs_listing_state ls = {1, 2, 1, 0};
	GPtrArray *fl = g_ptr_array_new_with_free_func(folder_free);
	GArray *msgs = msgs_new();
	char *tmp = state_file(dir, ".tmp-0123456789abcdef");
	char *gone = listing_file(dir, "Gone"), *kept = listing_file(dir, "Kept");

	msgs_add(msgs, 1, 5, 0, "");
	g_assert_cmpint(ifs_state_save_listing(st, "Gone", &ls, msgs), ==, 0);
	g_assert_cmpint(ifs_state_save_listing(st, "Kept", &ls, msgs), ==, 0);
	/* the folder list no longer has Gone: its listing goes */
	g_ptr_array_add(fl, folder("Kept", '/', 0));
	g_assert_cmpint(ifs_state_save_folders(st, fl), ==, 0);
	ifs_state_flush(st);
	g_assert_false(g_file_test(gone, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(kept, G_FILE_TEST_EXISTS));
	ifs_state_free(st);
	/* a writer killed before its rename leaves a temporary file: removed at the next open */
	g_assert_true(g_file_set_contents(tmp, "imapfs-listing 1\nfolder", -1, NULL));
	st = state_new(dir);
	g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(kept, G_FILE_TEST_EXISTS));
	ifs_state_free(st);
	g_assert_false(ifs_state_exists("/nonexistent-imapfs-dir"));
	g_array_unref(msgs);
	g_ptr_array_unref(fl);
	g_free(tmp);
	g_free(gone);
	g_free(kept);
	rm_rf(dir);
	g_free(dir);
}

/* Saves are queued for the writer thread (state.h): the newest of a file wins, a load sees
 * the save queued before it, and freeing the state writes what is still queued. */
static void test_background_saves(void)
{
	char *dir = tmpdir_new();
	struct ifs_state *st = state_new(dir);
	struct ifs_listing_state ls = {9, 2, 1, 0}, got;
	GArray *msgs = msgs_new(), *out = NULL;
	char *path = listing_file(dir, "INBOX");

	msgs_add(msgs, 1, 10, 0, "");
	/* many saves of one file, each newer than the last, then a load: the last one */
	for (uint32_t next = 2; next <= 200; next++) {
		ls.uidnext = next;
		g_assert_cmpint(ifs_state_save_listing(st, "INBOX", &ls, msgs), ==, 0);
	}
	g_assert_cmpint(ifs_state_load_listing(st, "INBOX", &got, &out), ==, 0);
	g_assert_cmpuint(got.uidnext, ==, 200);
	g_array_unref(out);
	/* queued (more than the writer can write before the free below), then freed at once:
	 * written all the same */
	ls.uidnext = 300;
	for (int i = 0; i < 50; i++) {
		char name[16];
		snprintf(name, sizeof(name), "F%d", i);
		g_assert_cmpint(ifs_state_save_listing(st, name, &ls, msgs), ==, 0);
	}
	g_array_unref(msgs); /* the queue holds its own references */
	ifs_state_free(st);
	/* before the writer starts (the daemon forks after making its state, and a thread would
	 * not survive the fork), a save is written at once */
	st = ifs_state_new(dir);
	ls.uidnext = 400;
	msgs = msgs_new();
	msgs_add(msgs, 1, 10, 0, "");
	g_assert_cmpint(ifs_state_save_listing(st, "Early", &ls, msgs), ==, 0);
	g_array_unref(msgs);
	{
		char *early = listing_file(dir, "Early");
		g_assert_true(g_file_test(early, G_FILE_TEST_IS_REGULAR));
		g_free(early);
	}
	ifs_state_free(st);
	st = state_new(dir);
	for (int i = 0; i < 50; i++) {
		char name[16];
		snprintf(name, sizeof(name), "F%d", i);
		g_assert_cmpint(ifs_state_load_listing(st, name, &got, &out), ==, 0);
		g_assert_cmpuint(got.uidnext, ==, 300);
		g_assert_cmpuint(out->len, ==, 1);
		g_assert_cmpuint(g_array_index(out, struct ifs_msg_attr, 0).uid, ==, 1);
		g_array_unref(out);
	}
	ifs_state_free(st);
	g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
	g_free(path);
	rm_rf(dir);
	g_free(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
	g_test_add_func("/state/folders_round_trip", test_folders_round_trip);
	g_test_add_func("/state/listing_round_trip_and_format", test_listing_round_trip_and_format);
	g_test_add_func("/state/background_saves", test_background_saves);
	g_test_add_func("/state/listing_rejects_bad_files", test_listing_rejects_bad_files);
	g_test_add_func("/state/leftovers_and_pruning", test_leftovers_removed_and_folders_pruned);
	return g_test_run();
}
