/* imap_client_tool.c — a small command-line driver for the IMAP client library.
 *
 * The fake-server and integration tests run it against a scripted or real server and check
 * what it prints; it is also handy for debugging by hand (G_MESSAGES_DEBUG=imap shows the
 * protocol trace, credentials redacted).  The password (or with --auth oauth2 the access token)
 * comes from the environment variable IMAPFS_TEST_PASSWORD, never from argv (which other users
 * can read in ps).
 *
 *   imap_client_tool [--host H] [--port P] [--tls implicit|starttls|none] [--user U]
 *                    [--auth password|oauth2] [--compress on|off|auto]
 *                    [--ca-file F] [--timeout-ms N] [--max-literal N] [--max-depth N] CMD ...
 *   CMD: connect | noop | list | examine MBOX | search MBOX CRITERIA [ARG...] |
 *        attrs MBOX UIDSET | fetch MBOX UIDSET [full|header] [OFFSET LENGTH] [--out FILE] |
 *        message MBOX UID --out FILE | listall MBOX | changedsince MBOX UIDSET MODSEQ |
 *        changes MBOX UIDNEXT 0|1 MODSEQ [search] (imap_uid_fetch_changes) |
 *        xfetch MBOX UIDVALIDITY UIDSET (EXAMINE + FETCH pipelined) |
 *        xlistall MBOX (EXAMINE + SEARCH + FETCH pipelined) |
 *        qsearch EXPR MBOX... (imap_search_parse + imap_search_folders) |
 *        notify MS MBOX... (NOTIFY SET, IDLE, one wait of MS ms, DONE) |
 *        notify-selected MS MBOX OTHER... (EXAMINE MBOX, NOTIFY SET with SELECTED, IDLE,
 *        one wait, DONE) |
 *        idle MS MBOX (EXAMINE, IDLE, one wait, DONE): print "changed=NAMES" (sorted) |
 *        resync MBOX UIDVALIDITY MODSEQ UIDNEXT (imap_examine_qresync: "changed uid=N
 *        flags=..." and attribute lines, then "vanished=LO:HI,..." and the status) |
 *        pieces MBOX REQ... (EXAMINE, then imap_uid_fetch_pieces) |
 *        xpieces MBOX UIDVALIDITY REQ... (imap_examine_fetch_pieces)
 *   REQ: UID[+bs][,KIND:SECTION[:OFFSET:LENGTH]]... with KIND body, header, mime, binary or
 *        size (BINARY.SIZE); "+bs" asks for BODYSTRUCTURE ("+bso" also prints its outline).  Prints
 * "structure req=R ...", "size req=R item=I N", "begin req=R item=I SIZE", "end req=R item=I got=N
 * data=..." (the bytes escaped; with --out DIR written to DIR/R.I instead), then "result req=R
 * 0|ENAME" for each request. MBOX is UTF-8 (encoded to modified UTF-7 here).  On failure prints
 * "error: <errno name> (<rc>): <message>" on stderr and exits with 1.
 */
#include "imap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *errno_name(int err)
{
	switch (-err) {
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case ECONNABORTED:
		return "ECONNABORTED";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case EPROTO:
		return "EPROTO";
	case EACCES:
		return "EACCES";
	case EKEYREJECTED:
		return "EKEYREJECTED";
	case ENOENT:
		return "ENOENT";
	case EINVAL:
		return "EINVAL";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	case ESTALE:
		return "ESTALE";
	case EAGAIN:
		return "EAGAIN";
	case EILSEQ:
		return "EILSEQ";
	case EIO:
		return "EIO";
	case EOPNOTSUPP:
		return "EOPNOTSUPP";
	case EBADMSG:
		return "EBADMSG";
	case EPIPE:
		return "EPIPE";
	default:
		return "E?";
	}
}

static int fail(int err, const char *msg)
{
	fprintf(stderr, "error: %s (%d): %s\n", errno_name(err), err, msg);
	return 1;
}

static const char *flag_names[] = {"NOSELECT",    "HASCHILDREN", "HASNOCHILDREN", "NOINFERIORS",
                                   "NONEXISTENT", "MARKED",      "UNMARKED",      "",
                                   "ALL",         "ARCHIVE",     "DRAFTS",        "FLAGGED",
                                   "JUNK",        "SENT",        "TRASH"};

static int print_attrs(const struct imap_msg_attrs *a, void *ctx)
{
	printf("uid=%u size=%" G_GUINT64_FORMAT " date=%" G_GINT64_FORMAT
	       " modseq=%" G_GUINT64_FORMAT " flags=",
	       a->uid, a->size, a->internaldate, a->modseq);
	for (char **f = a->flags; *f != NULL; f++)
		printf("%s%s", f == a->flags ? "" : ",", *f);
	printf("\n");
	return 0;
}

struct fetch_out {
	FILE *out;
	uint64_t got;
};

static int f_begin(void *ctx, uint32_t uid, uint64_t size)
{
	struct fetch_out *fo = ctx;
	fo->got = 0;
	printf("begin %u %" G_GUINT64_FORMAT "\n", uid, size);
	fflush(stdout);
	return 0;
}

static int f_data(void *ctx, const void *buf, size_t len)
{
	struct fetch_out *fo = ctx;
	fo->got += len;
	if (fo->out != NULL && fwrite(buf, 1, len, fo->out) != len)
		return -EIO;
	return 0;
}

static int f_end(void *ctx, uint32_t uid)
{
	struct fetch_out *fo = ctx;
	printf("end %u %" G_GUINT64_FORMAT "\n", uid, fo->got);
	fflush(stdout);
	return 0;
}

/* "count=N uid uid ...", and frees uids. */
static void print_uid_line(GArray *uids)
{
	printf("count=%u", uids->len);
	for (guint i = 0; i < uids->len; i++)
		printf(" %u", g_array_index(uids, uint32_t, i));
	printf("\n");
	g_array_unref(uids);
}

static int examine(struct imap_conn *conn, const char *mbox, bool print)
{
	char *raw;
	if (imap_mutf7_encode(mbox, &raw) < 0)
		return -EINVAL;
	struct imap_mailbox_status st;
	int err = imap_examine(conn, raw, &st);
	g_free(raw);
	if (err == 0 && print)
		printf("uidvalidity=%u uidnext=%u exists=%u highestmodseq=%" G_GUINT64_FORMAT "\n",
		       st.uidvalidity, st.uidnext, st.exists, st.highestmodseq);
	return err;
}

static int print_job_attrs(unsigned job, const struct imap_msg_attrs *a, void *ctx)
{
	printf("job=%u ", job);
	return print_attrs(a, ctx);
}

/* qsearch EXPR MBOX...: EXPR parsed into a query (imap_search_parse) and searched for in every
 * MBOX (imap_search_folders); one "MBOX: ..." line per folder. */
static int query_search(struct imap_conn *conn, const char *expr, int n, char **mboxes)
{
	struct imap_search *q = NULL;
	struct imap_search_job *jobs = g_new0(struct imap_search_job, n);
	char **raws = g_new0(char *, n + 1);
	char *why = NULL;
	int err = imap_search_parse(expr, &q, &why);

	if (err < 0) {
		fprintf(stderr, "bad query: %s\n", why);
		g_free(why);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if ((err = imap_mutf7_encode(mboxes[i], &raws[i])) < 0)
			goto out;
		jobs[i].raw_name = raws[i];
	}
	err = imap_search_folders(conn, q, jobs, (unsigned)n, print_job_attrs, NULL);
	for (int i = 0; err == 0 && i < n; i++) {
		printf("%s: ", mboxes[i]);
		if (jobs[i].result < 0) {
			printf("error %s\n", errno_name(jobs[i].result));
			continue;
		}
		printf("uidvalidity=%u", jobs[i].st.uidvalidity);
		for (guint k = 0; k < jobs[i].uids->len; k++)
			printf(" %u", g_array_index(jobs[i].uids, uint32_t, k));
		printf("\n");
		g_array_unref(jobs[i].uids);
	}
out:
	imap_search_free(q);
	g_strfreev(raws);
	g_free(jobs);
	return err;
}

static int print_flag_change(uint32_t uid, char **flags, void *ctx)
{
	printf("changed uid=%u flags=", uid);
	for (char **f = flags; *f != NULL; f++)
		printf("%s%s", f == flags ? "" : ",", *f);
	printf("\n");
	return 0;
}

/* resync MBOX UIDVALIDITY MODSEQ UIDNEXT: imap_examine_qresync. */
static int resync(struct imap_conn *conn, char **argv)
{
	const struct imap_resync_sink sink = {print_flag_change, print_attrs, NULL};
	struct imap_mailbox_status st;
	GArray *vanished = NULL;
	char *raw;
	int err;

	if (imap_mutf7_encode(argv[1], &raw) < 0)
		return -EINVAL;
	err = imap_examine_qresync(conn, raw, (uint32_t)g_ascii_strtoull(argv[2], NULL, 10),
	                           g_ascii_strtoull(argv[3], NULL, 10),
	                           (uint32_t)g_ascii_strtoull(argv[4], NULL, 10), &st, &vanished,
	                           &sink);
	g_free(raw);
	if (vanished != NULL) {
		printf("vanished=");
		for (guint i = 0; i < vanished->len; i++) {
			const struct imap_uid_range *r =
			    &g_array_index(vanished, struct imap_uid_range, i);
			printf("%s%u:%u", i ? "," : "", r->lo, r->hi);
		}
		printf("\n");
		g_array_unref(vanished);
	}
	printf("uidvalidity=%u uidnext=%u exists=%u highestmodseq=%" G_GUINT64_FORMAT "\n",
	       st.uidvalidity, st.uidnext, st.exists, st.highestmodseq);
	return err;
}

/* IDLE, one imap_idle_wait of ms, DONE; prints the mailboxes reported as changed. */
static int idle_once(struct imap_conn *conn, const char *ms)
{
	GHashTable *changed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GList *names;
	int err = imap_idle_begin(conn);

	if (err == 0)
		err = imap_idle_wait(conn, -1, (unsigned)strtoul(ms, NULL, 10), changed);
	if (err == 0)
		err = imap_idle_done(conn, changed);
	names = g_list_sort(g_hash_table_get_keys(changed), (GCompareFunc)strcmp);
	printf("changed=");
	for (GList *l = names; l != NULL; l = l->next)
		printf("%s%s", (char *)l->data, l->next != NULL ? "," : "");
	printf("\n");
	g_list_free(names);
	g_hash_table_unref(changed);
	return err;
}

/* ---- pieces ---------------------------------------------------------------------------- */

struct pieces_out {
	struct imap_conn *conn;
	bool outline;    /* also print "outline req=R SECTION=TYPE/SUBTYPE/SIZE ..." (preorder) */
	const char *dir; /* nullable: write each piece to dir/R.I */
	GByteArray *buf;
	FILE *out;
};

static void print_outline(const struct imap_part *p)
{
	printf(" %s=%s/%s/%" G_GUINT64_FORMAT, p->section, p->type, p->subtype, p->size);
	for (unsigned i = 0; i < p->n_parts; i++)
		print_outline(&p->parts[i]);
}

static int p_structure(void *ctx, unsigned req, const struct imap_part *root, int err)
{
	struct pieces_out *po = ctx;
	if (err < 0) {
		printf("structure req=%u err=%s why=%s\n", req, errno_name(err),
		       imap_conn_error(po->conn));
	} else {
		char *text = imap_bodystructure_format(root);
		struct imap_part *copy = imap_part_copy(root);
		printf("structure req=%u err=0 parts=%u %s\n", req, copy->n_parts, text);
		if (po->outline) {
			printf("outline req=%u", req);
			print_outline(root);
			printf("\n");
		}
		imap_part_free(copy);
		g_free(text);
	}
	fflush(stdout);
	return 0;
}

static int p_size(void *ctx, unsigned req, unsigned item, uint64_t size)
{
	printf("size req=%u item=%u %" G_GUINT64_FORMAT "\n", req, item, size);
	fflush(stdout);
	return 0;
}

static int p_begin(void *ctx, unsigned req, unsigned item, uint64_t size)
{
	struct pieces_out *po = ctx;
	g_byte_array_set_size(po->buf, 0);
	printf("begin req=%u item=%u %" G_GUINT64_FORMAT "\n", req, item, size);
	fflush(stdout);
	if (po->dir != NULL) {
		char *path = g_strdup_printf("%s/%u.%u", po->dir, req, item);
		po->out = fopen(path, "wb");
		g_free(path);
		if (po->out == NULL)
			return -EIO;
	}
	return 0;
}

static int p_data(void *ctx, const void *buf, size_t len)
{
	struct pieces_out *po = ctx;
	if (po->out != NULL)
		return fwrite(buf, 1, len, po->out) == len ? 0 : -EIO;
	g_byte_array_append(po->buf, buf, (guint)len);
	return 0;
}

static int p_end(void *ctx, unsigned req, unsigned item)
{
	struct pieces_out *po = ctx;
	if (po->out != NULL) {
		long got = ftell(po->out);
		fclose(po->out);
		po->out = NULL;
		printf("end req=%u item=%u got=%ld\n", req, item, got);
	} else {
		printf("end req=%u item=%u got=%u data=", req, item, po->buf->len);
		for (guint i = 0; i < po->buf->len; i++) {
			unsigned char c = po->buf->data[i];
			if (c == '\\')
				printf("\\\\");
			else if (c == '\r')
				printf("\\r");
			else if (c == '\n')
				printf("\\n");
			else if (c < 0x20 || c >= 0x7f)
				printf("\\x%02x", c);
			else
				putchar(c);
		}
		printf("\n");
	}
	fflush(stdout);
	return 0;
}

/* REQ specs (see the top of the file) into requests; the strings stay owned by specs. */
static int parse_requests(int n, char **specs, struct imap_fetch_request **reqs_r, bool *outline_r)
{
	struct imap_fetch_request *reqs = g_new0(struct imap_fetch_request, n);
	for (int r = 0; r < n; r++) {
		char **parts = g_strsplit(specs[r], ",", -1);
		char *uid = parts[0];
		char *plus = strchr(uid, '+');
		if (plus != NULL) {
			reqs[r].bodystructure = strncmp(plus, "+bs", 3) == 0;
			*outline_r = *outline_r || strcmp(plus, "+bso") == 0;
			*plus = '\0';
		}
		reqs[r].uid = (uint32_t)g_ascii_strtoull(uid, NULL, 10);
		unsigned n_items = g_strv_length(parts) - 1;
		struct imap_fetch_item *items = g_new0(struct imap_fetch_item, n_items + 1);
		for (unsigned i = 0; i < n_items; i++) {
			char **f = g_strsplit(parts[i + 1], ":", -1);
			unsigned nf = g_strv_length(f);
			const char *k = f[0];
			items[i].kind = strcmp(k, "header") == 0   ? IMAP_ITEM_HEADER
			                : strcmp(k, "mime") == 0   ? IMAP_ITEM_MIME
			                : strcmp(k, "binary") == 0 ? IMAP_ITEM_BINARY
			                : strcmp(k, "size") == 0   ? IMAP_ITEM_BINARY_SIZE
			                                           : IMAP_ITEM_BODY;
			/* the section string is kept (leaked to the end of the run, as specs) */
			items[i].section = g_strdup(nf > 1 ? f[1] : "");
			if (nf > 3) {
				items[i].offset = g_ascii_strtoull(f[2], NULL, 10);
				items[i].length = g_ascii_strtoull(f[3], NULL, 10);
			}
			g_strfreev(f);
		}
		reqs[r].items = items;
		reqs[r].n_items = n_items;
		g_strfreev(parts);
	}
	*reqs_r = reqs;
	return 0;
}

static void free_requests(struct imap_fetch_request *reqs, int n)
{
	for (int r = 0; r < n; r++) {
		for (unsigned i = 0; i < reqs[r].n_items; i++)
			g_free((char *)reqs[r].items[i].section);
		g_free((void *)reqs[r].items);
	}
	g_free(reqs);
}

/* pieces MBOX REQ... (examined already) or xpieces MBOX UIDVALIDITY REQ... */
static int pieces(struct imap_conn *conn, bool examine, int argc, char **argv, const char *dir)
{
	struct pieces_out po = {conn, false, dir, g_byte_array_new(), NULL};
	const struct imap_piece_sink sink = {p_structure, p_size, p_begin, p_data, p_end, &po};
	int first = examine ? 3 : 2, n = argc - first;
	struct imap_fetch_request *reqs;
	int err;

	parse_requests(n, argv + first, &reqs, &po.outline);
	if (examine) {
		char *raw;
		struct imap_mailbox_status st;
		if (imap_mutf7_encode(argv[1], &raw) < 0)
			return -EINVAL;
		err = imap_examine_fetch_pieces(conn, raw,
		                                (uint32_t)g_ascii_strtoull(argv[2], NULL, 10), reqs,
		                                (unsigned)n, &sink, &st);
		g_free(raw);
		printf("uidvalidity=%u exists=%u\n", st.uidvalidity, st.exists);
	} else {
		err = imap_uid_fetch_pieces(conn, reqs, (unsigned)n, &sink);
	}
	for (int r = 0; r < n; r++)
		printf("result req=%d %s\n", r,
		       reqs[r].result == 0 ? "0" : errno_name(reqs[r].result));
	free_requests(reqs, n);
	g_byte_array_unref(po.buf);
	return err;
}

static int run(struct imap_conn *conn, int argc, char **argv, const char *out_path)
{
	const char *cmd = argv[0];
	int err;
	if (strcmp(cmd, "connect") == 0) {
		printf("connected\n");
		return 0;
	}
	if (strcmp(cmd, "noop") == 0)
		return imap_noop(conn);
	if (strcmp(cmd, "list") == 0) {
		GPtrArray *folders;
		if ((err = imap_list(conn, false, &folders)) < 0)
			return err;
		for (guint i = 0; i < folders->len; i++) {
			const struct imap_folder *f = g_ptr_array_index(folders, i);
			printf("raw=%s name=%s delim=%c flags=", f->raw_name,
			       f->name ? f->name : "(invalid)", f->delimiter ? f->delimiter : '-');
			bool first = true;
			for (size_t b = 0; b < G_N_ELEMENTS(flag_names); b++) {
				if (f->flags & (1u << b)) {
					printf("%s%s", first ? "" : ",", flag_names[b]);
					first = false;
				}
			}
			printf("\n");
		}
		g_ptr_array_unref(folders);
		return 0;
	}
	if (strcmp(cmd, "quota") == 0 && argc >= 2) {
		/* GETQUOTAROOT of a mailbox: what limits it (imap/quota.c) */
		struct imap_quota q;
		if ((err = imap_getquotaroot(conn, argv[1], &q)) < 0)
			return err;
		printf("roots=%u", q.roots);
		if (q.storage.present)
			printf(" storage=%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, q.storage.usage,
			       q.storage.limit);
		if (q.messages.present)
			printf(" messages=%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, q.messages.usage,
			       q.messages.limit);
		printf("\n");
		return 0;
	}
	if (strcmp(cmd, "xfetch") == 0 && argc >= 4) {
		/* EXAMINE and FETCH pipelined, the bodies only if UIDVALIDITY is argv[2] */
		char *raw;
		struct imap_mailbox_status st;
		struct fetch_out fo = {NULL, 0};
		struct imap_body_sink sink = {f_begin, f_data, f_end, &fo};
		if (imap_mutf7_encode(argv[1], &raw) < 0)
			return -EINVAL;
		err = imap_examine_fetch_body(conn, raw, (uint32_t)g_ascii_strtoull(argv[2], NULL, 10),
		                              argv[3], &sink, &st);
		g_free(raw);
		printf("uidvalidity=%u exists=%u\n", st.uidvalidity, st.exists);
		return err;
	}
	if (strcmp(cmd, "xpieces") == 0 && argc >= 3)
		return pieces(conn, true, argc, argv, out_path);
	if (strcmp(cmd, "xlistall") == 0 && argc >= 2) {
		/* EXAMINE, SEARCH ALL and FETCH 1:* attributes pipelined */
		char *raw;
		struct imap_mailbox_status st;
		GArray *uids = NULL;
		if (imap_mutf7_encode(argv[1], &raw) < 0)
			return -EINVAL;
		err = imap_examine_list_all(conn, raw, &st, &uids, print_attrs, NULL);
		g_free(raw);
		printf("uidvalidity=%u exists=%u\n", st.uidvalidity, st.exists);
		if (err < 0)
			return err;
		print_uid_line(uids);
		return 0;
	}
	if (strcmp(cmd, "notify") == 0 && argc >= 3) {
		if ((err = imap_notify_set(conn, false, (const char *const *)argv + 2,
		                           (unsigned)argc - 2, NULL)) < 0)
			return err;
		return idle_once(conn, argv[1]);
	}
	if (strcmp(cmd, "notify-selected") == 0 && argc >= 3) {
		if ((err = examine(conn, argv[2], false)) < 0)
			return err;
		if ((err = imap_notify_set(conn, true, (const char *const *)argv + 3,
		                           (unsigned)argc - 3, NULL)) < 0)
			return err;
		return idle_once(conn, argv[1]);
	}
	if (strcmp(cmd, "idle") == 0 && argc >= 3) {
		if ((err = examine(conn, argv[2], false)) < 0)
			return err;
		return idle_once(conn, argv[1]);
	}
	if (strcmp(cmd, "resync") == 0 && argc >= 5)
		return resync(conn, argv);
	if (strcmp(cmd, "qsearch") == 0 && argc >= 3)
		return query_search(conn, argv[1], argc - 2, argv + 2);
	if (argc < 2)
		return -EINVAL;
	if ((err = examine(conn, argv[1], strcmp(cmd, "examine") == 0)) < 0)
		return err;
	if (strcmp(cmd, "examine") == 0)
		return 0;
	if (strcmp(cmd, "search") == 0 && argc >= 3) {
		GArray *uids;
		const char *a[4] = {NULL};
		for (int i = 3; i < argc && i < 7; i++)
			a[i - 3] = argv[i];
		if ((err = imap_uid_search(conn, &uids, argv[2], a[0], a[1], a[2], a[3])) < 0)
			return err;
		GString *s = g_string_new(NULL);
		g_string_append_printf(s, "count=%u\n", uids->len);
		for (guint i = 0; i < uids->len; i++)
			g_string_append_printf(s, "%u\n", g_array_index(uids, uint32_t, i));
		fwrite(s->str, 1, s->len, stdout);
		g_string_free(s, TRUE);
		g_array_unref(uids);
		return 0;
	}
	if (strcmp(cmd, "pieces") == 0)
		return pieces(conn, false, argc, argv, out_path);
	if (strcmp(cmd, "attrs") == 0 && argc >= 3)
		return imap_uid_fetch_attrs(conn, argv[2], print_attrs, NULL);
	if (strcmp(cmd, "listall") == 0) {
		/* SEARCH ALL + FETCH 1:* attributes, pipelined: attribute lines, then the UIDs */
		GArray *uids;
		if ((err = imap_uid_list_all(conn, &uids, print_attrs, NULL)) < 0)
			return err;
		print_uid_line(uids);
		return 0;
	}
	if (strcmp(cmd, "changes") == 0 && argc >= 5) {
		/* changes MBOX UIDNEXT NEWMAIL(0|1) MODSEQ [search]: new mail, flag changes (and
		 * the UIDs left), pipelined */
		GArray *uids = NULL;
		bool search = argc >= 6 && strcmp(argv[5], "search") == 0;
		if ((err = imap_uid_fetch_changes(conn, (uint32_t)g_ascii_strtoull(argv[2], NULL, 10),
		                                  strcmp(argv[3], "1") == 0,
		                                  g_ascii_strtoull(argv[4], NULL, 10),
		                                  search ? &uids : NULL, print_attrs, NULL)) < 0)
			return err;
		if (uids != NULL)
			print_uid_line(uids);
		return 0;
	}
	if (strcmp(cmd, "changedsince") == 0 && argc >= 4)
		return imap_uid_fetch_attrs_since(conn, argv[2], g_ascii_strtoull(argv[3], NULL, 10),
		                                  print_attrs, NULL);
	if (strcmp(cmd, "fetch") == 0 && argc >= 3) {
		enum imap_section sec = IMAP_SECTION_FULL;
		uint64_t off = 0, len = 0;
		if (argc >= 4 && strcmp(argv[3], "header") == 0)
			sec = IMAP_SECTION_HEADER;
		if (argc >= 6) {
			off = g_ascii_strtoull(argv[4], NULL, 10);
			len = g_ascii_strtoull(argv[5], NULL, 10);
		}
		struct fetch_out fo = {NULL, 0};
		if (out_path != NULL && (fo.out = fopen(out_path, "wb")) == NULL)
			return -errno;
		struct imap_body_sink sink = {f_begin, f_data, f_end, &fo};
		err = imap_uid_fetch_body(conn, argv[2], sec, off, len, &sink);
		if (fo.out != NULL)
			fclose(fo.out);
		return err;
	}
	if (strcmp(cmd, "message") == 0 && argc >= 3 && out_path != NULL) {
		GBytes *body;
		if ((err = imap_uid_fetch_message(conn, (uint32_t)atoi(argv[2]), &body)) < 0)
			return err;
		gsize n;
		const void *d = g_bytes_get_data(body, &n);
		GError *gerr = NULL;
		if (!g_file_set_contents(out_path, d, (gssize)n, &gerr)) {
			g_error_free(gerr);
			err = -EIO;
		}
		printf("size=%zu\n", n);
		g_bytes_unref(body);
		return err;
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct imap_config cfg = {.host = "127.0.0.1", .tls = IMAP_TLS_IMPLICIT};
	const char *out_path = NULL;
	int i = 1;
	/* stdout carries results; keep the log (and the debug trace) on stderr */
	g_log_writer_default_set_use_stderr(TRUE);
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];
		if (strcmp(o, "--host") == 0)
			cfg.host = v;
		else if (strcmp(o, "--port") == 0)
			cfg.port = v;
		else if (strcmp(o, "--user") == 0)
			cfg.user = v;
		else if (strcmp(o, "--ca-file") == 0)
			cfg.ca_file = v;
		else if (strcmp(o, "--timeout-ms") == 0)
			cfg.timeout_ms = (unsigned)atoi(v);
		else if (strcmp(o, "--max-literal") == 0)
			cfg.max_literal = g_ascii_strtoull(v, NULL, 10);
		else if (strcmp(o, "--max-depth") == 0)
			cfg.max_depth = (unsigned)atoi(v);
		else if (strcmp(o, "--auth") == 0)
			cfg.auth = strcmp(v, "oauth2") == 0 ? IMAP_AUTH_OAUTH2 : IMAP_AUTH_PASSWORD;
		else if (strcmp(o, "--out") == 0)
			out_path = v;
		else if (strcmp(o, "--compress") == 0)
			cfg.compress = strcmp(v, "off") == 0    ? IMAP_COMPRESS_OFF
			               : strcmp(v, "auto") == 0 ? IMAP_COMPRESS_AUTO
			                                        : IMAP_COMPRESS_ON;
		else if (strcmp(o, "--tls") == 0)
			cfg.tls = strcmp(v, "none") == 0       ? IMAP_TLS_NONE
			          : strcmp(v, "starttls") == 0 ? IMAP_TLS_STARTTLS
			                                       : IMAP_TLS_IMPLICIT;
		else
			return fail(-EINVAL, "unknown option");
	}
	/* --out may also come after the command */
	int cargc = 0;
	char **cargv = g_new0(char *, argc + 1);
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out_path = argv[++i];
		else
			cargv[cargc++] = argv[i];
	}
	if (cargc == 0) {
		g_free(cargv);
		return fail(-EINVAL, "no command given");
	}
	cfg.password = g_getenv("IMAPFS_TEST_PASSWORD");

	struct imap_conn *conn = NULL;
	char *msg = NULL;
	int err = imap_conn_open(&cfg, &conn, &msg);
	if (err < 0) {
		int r = fail(err, msg);
		g_free(msg);
		g_free(cargv);
		return r;
	}
	err = run(conn, cargc, cargv, out_path);
	int status = 0;
	if (err < 0)
		status =
		    fail(err, imap_conn_error(conn)[0] ? imap_conn_error(conn) : g_strerror(-err));
	fflush(stdout);
	imap_conn_close(conn);
	g_free(cargv);
	return status;
}
