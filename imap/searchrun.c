/* searchrun.c — running a search query over one or many folders in few round trips.
 *
 * A search directory of the mount needs the hits of a query and their attributes (size,
 * arrival date, flags) without listing the whole folder.  The commands for every folder are
 * built first and sent as one pipelined chain: per folder an EXAMINE, the UID SEARCH, and (with
 * SEARCHRES, RFC 5182) a UID FETCH of the saved result "$".  Answers are attributed by the
 * command being answered: servers answer a chain in order (RFC 3501 5.5 has them finish a
 * command whose meaning depends on an earlier one first), and the command being answered is
 * the oldest one without its tagged answer yet.  A SEARCH or FETCH answer that arrives while a
 * folder's EXAMINE is still being answered may be about another folder: it is never used, and
 * that folder is asked again on its own afterwards.
 *
 * Without SEARCHRES the chain is EXAMINE + SEARCH per folder, then a second chain EXAMINE +
 * UID FETCH of the hits for the folders that have any.  With MULTISEARCH (RFC 7377) one
 * ESEARCH IN (mailboxes ...) finds the hits of every folder, then that second chain.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

enum cmd_kind { CMD_EXAMINE, CMD_SEARCH, CMD_FETCH, CMD_MULTI };

struct chain_cmd {
	enum cmd_kind kind;
	unsigned job;
};

struct job_state {
	struct imap_examine_ctx ex;
	int ex_cmd;          /* index of its EXAMINE in the chain; -1: examined already */
	bool early;          /* answered before its EXAMINE ended: ask again alone */
	bool sorted;         /* uids sorted (FETCH answers are checked against it) */
	int search_result;   /* of its SEARCH (or the MULTISEARCH), 0 or -errno */
	int fetch_result;
	/* the UIDVALIDITY the hits were found in: what the MULTISEARCH answer or the SEARCH's
	 * EXAMINE said (0: unknown) */
	uint32_t hits_uidvalidity;
	GArray *uids;
};

struct run {
	struct imap_conn *conn;
	const struct imap_search *q;
	struct imap_search_job *jobs;
	struct job_state *js;
	unsigned n;
	GPtrArray *cmds;     /* struct imap_cmd * of the chain being run */
	GArray *meta;        /* struct chain_cmd, parallel to cmds */
	int *results;        /* parallel to cmds while the chain runs */
	unsigned job_base;   /* jobs[0] is the caller's job number job_base (search_alone) */
	imap_search_attrs_cb cb;
	void *ctx;
	int cb_err;
};

/* ---- building commands ---------------------------------------------------------------------- */

/* "UID SEARCH [RETURN (...)] [CHARSET UTF-8] <q>".  save: RETURN (SAVE ALL) (SEARCHRES). */
static int search_command(struct imap_conn *conn, const struct imap_search *q, bool save,
                          struct imap_cmd **cmd_r)
{
	struct imap_cmd *cmd = imap_cmd_new();
	int err;

	cmd->what = "UID SEARCH";
	imap_cmd_add_text(cmd, "UID SEARCH ");
	if (save)
		imap_cmd_add_text(cmd, "RETURN (SAVE ALL) ");
	else if (imap_conn_has_cap(conn, "ESEARCH"))
		imap_cmd_add_text(cmd, "RETURN (ALL) ");
	if (imap_search_needs_utf8(q))
		imap_cmd_add_text(cmd, "CHARSET UTF-8 ");
	err = imap_search_format(cmd, q, imap_conn_literal_mode(conn));
	if (err < 0) {
		imap_cmd_free(cmd);
		return imap_conn_fail_errno(conn, err, false, "search value cannot be sent");
	}
	*cmd_r = cmd;
	return 0;
}

int imap_uid_search_query(struct imap_conn *conn, const struct imap_search *q, GArray **uids_r)
{
	struct imap_cmd *cmd = NULL;
	int err;

	*uids_r = NULL;
	if (conn->broken)
		return conn->broken_err;
	if (conn->mailbox == NULL)
		return imap_conn_fail_errno(conn, -EINVAL, false, "no mailbox examined");
	if ((err = search_command(conn, q, false, &cmd)) < 0)
		return err;
	return imap_run_search(conn, cmd, uids_r);
}

/* A sequence set for ascending uids: runs become ranges ("3:7,9"). */
static char *uidset_of(const GArray *uids)
{
	GString *s = g_string_new(NULL);
	for (guint i = 0; i < uids->len;) {
		uint32_t lo = g_array_index(uids, uint32_t, i), hi = lo;
		while (++i < uids->len && g_array_index(uids, uint32_t, i) == hi + 1)
			hi++;
		if (s->len > 0)
			g_string_append_c(s, ',');
		if (hi == lo)
			g_string_append_printf(s, "%u", lo);
		else
			g_string_append_printf(s, "%u:%u", lo, hi);
	}
	return g_string_free(s, FALSE);
}

static void add_cmd(struct run *r, struct imap_cmd *cmd, enum cmd_kind kind, unsigned job)
{
	struct chain_cmd m = {kind, job};
	g_ptr_array_add(r->cmds, cmd);
	g_array_append_val(r->meta, m);
}

static int add_examine(struct run *r, unsigned j)
{
	struct imap_cmd *cmd;
	struct imap_mailbox_status st;
	int err = imap_examine_begin(r->conn, r->jobs[j].raw_name, &cmd, &st);
	if (err < 0)
		return err;
	memset(&r->js[j].ex, 0, sizeof(r->js[j].ex));
	r->js[j].ex_cmd = (int)r->cmds->len;
	add_cmd(r, cmd, CMD_EXAMINE, j);
	return 0;
}

/* ---- attributing answers ------------------------------------------------------------------- */

static bool is_search_answer(const struct imap_response *resp)
{
	return resp->status == IMAP_STATUS_NONE && resp->nargs >= 1 &&
	       (imap_arg_is_atom(&resp->args[0], "SEARCH") ||
	        imap_arg_is_atom(&resp->args[0], "ESEARCH"));
}

static bool is_fetch_answer(const struct imap_response *resp)
{
	return resp->status == IMAP_STATUS_NONE && resp->nargs >= 2 &&
	       imap_arg_is_atom(&resp->args[1], "FETCH");
}

static bool examined_ok(const struct run *r, unsigned j)
{
	int ex = r->js[j].ex_cmd;
	return ex < 0 || r->results[ex] == 0;
}

static bool uid_is_hit(struct job_state *js, uint32_t uid)
{
	guint lo = 0, hi = js->uids->len;
	if (!js->sorted) {
		imap_sort_unique_uids(js->uids);
		js->sorted = true;
	}
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		uint32_t u = g_array_index(js->uids, uint32_t, mid);
		if (u == uid)
			return true;
		if (u < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* "* ESEARCH (TAG "t" MAILBOX "name" UIDVALIDITY n) UID ALL set" of a MULTISEARCH. */
static int multi_answer(struct run *r, const struct imap_response *resp)
{
	const struct imap_arg *corr;
	const char *mailbox = NULL;
	uint64_t uidvalidity = 0;
	unsigned j;

	if (resp->nargs < 2 || resp->args[1].type != IMAP_ARG_LIST)
		return 0;
	corr = &resp->args[1];
	for (unsigned i = 0; i + 1 < corr->len; i += 2) {
		const struct imap_arg *k = &corr->u.items[i], *v = &corr->u.items[i + 1];
		if (imap_arg_is_atom(k, "TAG")) {
			const char *t = imap_arg_str(v);
			if (t == NULL || strcmp(t, r->conn->cur_tag) != 0)
				return 0; /* another command's */
		} else if (imap_arg_is_atom(k, "MAILBOX")) {
			mailbox = imap_arg_str(v);
		} else if (imap_arg_is_atom(k, "UIDVALIDITY")) {
			if (!imap_arg_number(v, &uidvalidity) || uidvalidity > UINT32_MAX)
				uidvalidity = 0;
		}
	}
	for (j = 0; mailbox != NULL && j < r->n; j++)
		if (strcmp(r->jobs[j].raw_name, mailbox) == 0)
			break;
	if (mailbox == NULL || j == r->n || uidvalidity == 0)
		return 0; /* not a folder we asked about: never used */
	r->js[j].hits_uidvalidity = (uint32_t)uidvalidity;
	/* the rest is an ordinary ESEARCH answer: reuse its parser on this folder's hits */
	struct imap_search_ctx sc = {r->js[j].uids};
	return imap_search_cb(r->conn, resp, &sc);
}

static int chain_cb(struct imap_conn *conn, const struct imap_response *resp, void *ctx)
{
	struct run *r = ctx;
	unsigned k = 0;
	const struct chain_cmd *c;
	struct job_state *js;

	/* the command being answered: the oldest without its tagged answer */
	while (k < r->cmds->len && r->results[k] != IMAP_PIPELINE_PENDING)
		k++;
	if (k == r->cmds->len)
		return 0;
	c = &g_array_index(r->meta, struct chain_cmd, k);
	js = &r->js[c->job];
	switch (c->kind) {
	case CMD_EXAMINE:
		if (is_search_answer(resp) || is_fetch_answer(resp)) {
			/* before the EXAMINE ended: may be about the folder examined before */
			struct imap_msg_attrs at;
			int pr = is_fetch_answer(resp) ? imap_parse_attrs(conn, resp, &at) : 1;
			if (pr > 0) {
				js->early = true;
				if (is_fetch_answer(resp))
					imap_msg_attrs_clear(&at);
			}
			return pr < 0 ? pr : 0;
		}
		return imap_examine_cb(conn, resp, &js->ex);
	case CMD_MULTI:
		if (resp->status == IMAP_STATUS_NONE && resp->nargs >= 1 &&
		    imap_arg_is_atom(&resp->args[0], "ESEARCH"))
			return multi_answer(r, resp);
		return 0;
	case CMD_SEARCH:
		if (is_fetch_answer(resp) && r->meta->len > k + 1 &&
		    g_array_index(r->meta, struct chain_cmd, k + 1).kind == CMD_FETCH) {
			/* the FETCH of the hits answered before the SEARCH ended: not trusted */
			struct imap_msg_attrs at;
			int pr = imap_parse_attrs(conn, resp, &at);
			if (pr > 0) {
				js->early = true;
				imap_msg_attrs_clear(&at);
			}
			return pr < 0 ? pr : 0;
		}
		if (!examined_ok(r, c->job) || !is_search_answer(resp))
			return 0;
		{
			struct imap_search_ctx sc = {js->uids};
			js->sorted = false;
			return imap_search_cb(conn, resp, &sc);
		}
	case CMD_FETCH: {
		struct imap_msg_attrs at;
		int pr;
		if (!is_fetch_answer(resp) || !examined_ok(r, c->job))
			return 0;
		pr = imap_parse_attrs(conn, resp, &at);
		if (pr <= 0)
			return pr;
		/* the folder was recreated since its hits were found: their UIDs name other
		 * messages now (judge_fetch has it asked again) */
		if (js->ex_cmd >= 0 && js->hits_uidvalidity != 0 &&
		    js->ex.st.uidvalidity != js->hits_uidvalidity) {
			imap_msg_attrs_clear(&at);
			return 0;
		}
		if (uid_is_hit(js, at.uid) && r->cb_err == 0) {
			int e = r->cb(r->job_base + c->job, &at, r->ctx);
			if (e < 0)
				r->cb_err = e;
		}
		imap_msg_attrs_clear(&at);
		return 0;
	}
	}
	return 0;
}

/* Run the chain built in r->cmds: pipelined when every command is one line, else one command
 * after another (a synchronising literal waits for the server's "+").  Fills r->results. */
static int run_chain(struct run *r)
{
	unsigned n = r->cmds->len;
	bool one_line = true;

	r->results = g_new(int, n);
	for (unsigned i = 0; i < n; i++) {
		r->results[i] = IMAP_PIPELINE_PENDING;
		if (((struct imap_cmd *)r->cmds->pdata[i])->chunks->len != 1)
			one_line = false;
	}
	if (n == 0)
		return 0;
	/* each command's own outcome goes to r->results; only a broken connection is the run's */
	if (one_line) {
		imap_conn_run_pipelined(r->conn, (struct imap_cmd **)r->cmds->pdata, n, chain_cb, r,
		                        r->results);
	} else {
		for (unsigned i = 0; i < n; i++)
			r->results[i] =
			    r->conn->broken
			        ? r->conn->broken_err
			        : imap_conn_run(r->conn, r->cmds->pdata[i], chain_cb, r, NULL);
	}
	return r->conn->broken ? r->conn->broken_err : 0;
}

static void chain_reset(struct run *r)
{
	g_ptr_array_set_size(r->cmds, 0);
	g_array_set_size(r->meta, 0);
	g_clear_pointer(&r->results, g_free);
}

/* After a chain: record what each EXAMINE said (in chain order, so the connection ends up
 * examining what the server examines last) and what each SEARCH/FETCH ended with. */
static int chain_collect(struct run *r)
{
	int last_examine = -1;

	for (unsigned i = 0; i < r->cmds->len; i++) {
		const struct chain_cmd *c = &g_array_index(r->meta, struct chain_cmd, i);
		struct job_state *js = &r->js[c->job];
		int res = r->results[i];
		switch (c->kind) {
		case CMD_EXAMINE:
			last_examine = (int)i;
			if (res == 0) {
				int e = imap_examine_finish(r->conn, r->jobs[c->job].raw_name, &js->ex,
				                            &r->jobs[c->job].st);
				if (e < 0)
					return e; /* no UIDVALIDITY: the connection is broken */
			}
			break;
		case CMD_SEARCH:
		case CMD_MULTI:
			if (c->kind == CMD_MULTI) {
				for (unsigned j = 0; j < r->n; j++)
					r->js[j].search_result = res;
			} else {
				js->search_result = res;
			}
			break;
		case CMD_FETCH:
			js->fetch_result = res;
			break;
		}
	}
	if (last_examine >= 0 && r->results[last_examine] != 0)
		g_clear_pointer(&r->conn->mailbox, g_free); /* a failed EXAMINE leaves none */
	return 0;
}

/* A search's failure as the job's outcome: a refused charset says so, anything else the server
 * said NO or BAD to is an I/O error of that folder. */
static int search_failure(int err)
{
	return err == -EILSEQ ? -EILSEQ : -EIO;
}

/* ---- the strategies ------------------------------------------------------------------------ */

/* Chain of [EXAMINE] SEARCH [FETCH $] for the given jobs. */
static int chain_search(struct run *r, const unsigned *which, unsigned count, bool searchres)
{
	for (unsigned w = 0; w < count; w++) {
		unsigned j = which[w];
		struct imap_cmd *cmd;
		int err;
		bool examined = count == 1 && r->conn->mailbox != NULL &&
		                strcmp(r->conn->mailbox, r->jobs[j].raw_name) == 0;
		r->js[j].ex_cmd = -1;
		if (examined)
			r->jobs[j].st.uidvalidity = r->conn->mailbox_uidvalidity;
		else if ((err = add_examine(r, j)) < 0)
			return err;
		if ((err = search_command(r->conn, r->q, searchres, &cmd)) < 0)
			return err;
		add_cmd(r, cmd, CMD_SEARCH, j);
		if (searchres) {
			cmd = imap_fetch_attrs_cmd(r->conn, "$", 0);
			cmd->what = "UID FETCH";
			add_cmd(r, cmd, CMD_FETCH, j);
		}
	}
	return run_chain(r);
}

/* Chain of EXAMINE + UID FETCH <hits> for the jobs that have hits and no failure yet. */
static int chain_fetch_hits(struct run *r)
{
	bool any = false;
	chain_reset(r);
	for (unsigned j = 0; j < r->n; j++) {
		struct job_state *js = &r->js[j];
		char *set;
		struct imap_cmd *cmd;
		int err;
		if (r->jobs[j].result != 0 || js->uids->len == 0)
			continue;
		imap_sort_unique_uids(js->uids);
		js->sorted = true;
		/* found by a SEARCH of this run: in what its EXAMINE said (chain_collect) */
		if (js->hits_uidvalidity == 0)
			js->hits_uidvalidity = r->jobs[j].st.uidvalidity;
		js->ex_cmd = -1;
		/* one folder that the connection examines already (it was just searched): no
		 * EXAMINE again */
		if (r->n > 1 || r->conn->mailbox == NULL ||
		    strcmp(r->conn->mailbox, r->jobs[j].raw_name) != 0)
			if ((err = add_examine(r, j)) < 0)
				return err;
		set = uidset_of(js->uids);
		/* CONDSTORE is only asked for by the EXAMINE when offered: FETCH may ask MODSEQ */
		r->conn->condstore = imap_conn_has_cap(r->conn, "CONDSTORE");
		cmd = imap_fetch_attrs_cmd(r->conn, set, 0);
		cmd->what = "UID FETCH";
		g_free(set);
		add_cmd(r, cmd, CMD_FETCH, j);
		any = true;
	}
	return any ? run_chain(r) : 0;
}

/* The outcome of each job from the chain just run (after chain_collect). */
static void judge_search(struct run *r, bool with_fetch)
{
	for (unsigned j = 0; j < r->n; j++) {
		struct job_state *js = &r->js[j];
		struct imap_search_job *job = &r->jobs[j];
		if (job->result != 0)
			continue;
		if (js->ex_cmd >= 0 && r->results[js->ex_cmd] != 0)
			job->result = r->results[js->ex_cmd]; /* -ENOENT: no such mailbox */
		else if (js->search_result < 0)
			job->result = search_failure(js->search_result);
		else if (with_fetch && js->fetch_result < 0)
			job->result = search_failure(js->fetch_result);
	}
}

/* The outcome of each job from the hits' FETCH chain just run (after chain_collect). */
static void judge_fetch(struct run *r)
{
	for (unsigned j = 0; j < r->n; j++) {
		struct job_state *js = &r->js[j];
		if (r->jobs[j].result != 0 || js->uids->len == 0)
			continue;
		if (js->ex_cmd >= 0 && r->results[js->ex_cmd] != 0)
			r->jobs[j].result = r->results[js->ex_cmd];
		else if (js->fetch_result < 0)
			r->jobs[j].result = search_failure(js->fetch_result);
		else if (js->hits_uidvalidity != 0 &&
		         js->hits_uidvalidity != r->jobs[j].st.uidvalidity)
			js->early = true; /* the folder changed life in between: ask again */
	}
}

/* Ask folder j again on its own: EXAMINE alone, then SEARCH, then FETCH of its hits, one after
 * another (after an early answer, or a UIDVALIDITY that moved between two commands). */
static int search_alone(struct run *r, unsigned j)
{
	struct run one = {.conn = r->conn, .q = r->q, .jobs = &r->jobs[j], .js = &r->js[j],
	                  .n = 1, .job_base = j, .cb = r->cb, .ctx = r->ctx};
	unsigned first = 0;
	int err;

	one.cmds = g_ptr_array_new_with_free_func((GDestroyNotify)imap_cmd_free);
	one.meta = g_array_new(FALSE, FALSE, sizeof(struct chain_cmd));
	g_array_set_size(one.js->uids, 0);
	one.js->early = false;
	one.js->hits_uidvalidity = 0;
	one.js->search_result = one.js->fetch_result = 0;
	one.jobs->result = 0;
	/* the EXAMINE on its own this time: nothing can be answered before it ends */
	err = imap_examine(r->conn, one.jobs->raw_name, &one.jobs->st);
	if (err < 0) {
		if (r->conn->broken)
			goto out;
		one.jobs->result = err; /* -ENOENT: no such mailbox */
		err = 0;
		goto out;
	}
	if ((err = chain_search(&one, &first, 1, false)) < 0 || (err = chain_collect(&one)) < 0)
		goto out;
	judge_search(&one, false);
	if (one.js->early) {
		one.jobs->result = -EIO; /* a server that keeps answering out of order */
		goto out;
	}
	if ((err = chain_fetch_hits(&one)) < 0 || (err = chain_collect(&one)) < 0)
		goto out;
	judge_fetch(&one);
	if (one.js->early)
		one.jobs->result = -EIO;
out:
	if (one.cb_err < 0 && r->cb_err == 0)
		r->cb_err = one.cb_err;
	g_ptr_array_unref(one.cmds);
	g_array_unref(one.meta);
	g_free(one.results);
	return err;
}

int imap_search_folders(struct imap_conn *conn, const struct imap_search *q,
                        struct imap_search_job *jobs, unsigned n, imap_search_attrs_cb cb,
                        void *ctx)
{
	struct run r = {.conn = conn, .q = q, .jobs = jobs, .n = n, .cb = cb, .ctx = ctx};
	unsigned *all = g_new(unsigned, n);
	bool searchres = imap_conn_has_cap(conn, "SEARCHRES") && imap_conn_has_cap(conn, "ESEARCH");
	bool multi = n > 1 && imap_conn_has_cap(conn, "MULTISEARCH");
	bool fetched = false;
	int err = 0;

	if (conn->broken) {
		g_free(all);
		return conn->broken_err;
	}
	r.js = g_new0(struct job_state, n);
	r.cmds = g_ptr_array_new_with_free_func((GDestroyNotify)imap_cmd_free);
	r.meta = g_array_new(FALSE, FALSE, sizeof(struct chain_cmd));
	for (unsigned j = 0; j < n; j++) {
		all[j] = j;
		memset(&jobs[j].st, 0, sizeof(jobs[j].st));
		jobs[j].result = 0;
		jobs[j].uids = NULL;
		r.js[j].uids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
		r.js[j].ex_cmd = -1;
		if (imap_search_uses_gmail(q) && !imap_conn_has_cap(conn, "X-GM-EXT-1"))
			jobs[j].result = -EOPNOTSUPP;
	}
	if (n == 0 || jobs[0].result == -EOPNOTSUPP)
		goto out;

	if (multi) {
		/* ESEARCH IN (mailboxes ("a" "b" ...)) [CHARSET UTF-8] <q> */
		struct imap_cmd *cmd = imap_cmd_new();
		cmd->what = "ESEARCH";
		imap_cmd_add_text(cmd, "ESEARCH IN (mailboxes (");
		for (unsigned j = 0; j < n && err == 0; j++) {
			if (j > 0)
				imap_cmd_add_text(cmd, " ");
			err = imap_cmd_add_string(cmd, jobs[j].raw_name, strlen(jobs[j].raw_name),
			                          imap_conn_literal_mode(conn));
		}
		imap_cmd_add_text(cmd, ")) RETURN (ALL) ");
		if (imap_search_needs_utf8(q))
			imap_cmd_add_text(cmd, "CHARSET UTF-8 ");
		if (err == 0)
			err = imap_search_format(cmd, q, imap_conn_literal_mode(conn));
		if (err < 0) {
			imap_cmd_free(cmd);
			err = imap_conn_fail_errno(conn, err, false, "search cannot be sent");
			goto out;
		}
		add_cmd(&r, cmd, CMD_MULTI, 0);
		if ((err = run_chain(&r)) < 0)
			goto out;
		if (r.results[0] != 0) {
			/* a server that cannot do this one (a folder it will not search, say):
			 * fall back to asking folder by folder */
			if (r.results[0] == -EILSEQ) {
				for (unsigned j = 0; j < n; j++)
					jobs[j].result = -EILSEQ;
				goto out;
			}
			multi = false;
			for (unsigned j = 0; j < n; j++) {
				g_array_set_size(r.js[j].uids, 0);
				r.js[j].hits_uidvalidity = 0;
			}
			chain_reset(&r);
		}
	}
	if (!multi) {
		if ((err = chain_search(&r, all, n, searchres)) < 0)
			goto out;
		if ((err = chain_collect(&r)) < 0)
			goto out;
		judge_search(&r, searchres);
		fetched = searchres;
	}
	if (!fetched) {
		if ((err = chain_fetch_hits(&r)) < 0)
			goto out;
		if ((err = chain_collect(&r)) < 0)
			goto out;
		judge_fetch(&r);
	}
	/* folders answered out of order (or that moved under us): once more, on their own */
	for (unsigned j = 0; j < n; j++) {
		if (r.js[j].early && jobs[j].result == 0 && (err = search_alone(&r, j)) < 0)
			goto out;
	}
	if (r.cb_err < 0)
		err = imap_conn_fail_errno(conn, r.cb_err, false, "search stopped by the caller: %s",
		                           g_strerror(-r.cb_err));
out:
	for (unsigned j = 0; j < n; j++) {
		if (err == 0 && jobs[j].result == 0) {
			imap_sort_unique_uids(r.js[j].uids);
			jobs[j].uids = r.js[j].uids;
		} else {
			g_array_unref(r.js[j].uids);
		}
	}
	g_free(r.js);
	g_ptr_array_unref(r.cmds);
	g_array_unref(r.meta);
	g_free(r.results);
	g_free(all);
	return err;
}
