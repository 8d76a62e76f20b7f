/* token.c — the OAuth2 access token: run oauth_cmd, keep its token, replace a refused one
 * (see token.h).  The command itself runs like pass_cmd (ifs_config_run_cmd). */
#include "token.h"

#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <string.h>

/* Lock rules: `lock` protects token and runs, and is held while oauth_cmd runs, so that
 * connections refused at the same time wait for one new token instead of each running the
 * command.  No other lock is taken under it; callers (the pools) hold none of theirs. */
struct ifs_token {
	char *cmd;          /* immutable */
	unsigned timeout_s; /* immutable: limit of a run once announced */
	GMutex lock;
	char *token; /* nullable: not fetched yet, or the last run failed */
	unsigned runs;
	bool announce; /* log each refresh (once mounted; before, main.c reports failures) */
};

struct ifs_token *ifs_token_new(const char *oauth_cmd, unsigned timeout_s)
{
	struct ifs_token *tok = g_new0(struct ifs_token, 1);
	tok->cmd = g_strdup(oauth_cmd);
	tok->timeout_s = timeout_s;
	g_mutex_init(&tok->lock);
	return tok;
}

static void drop_token(struct ifs_token *tok)
{
	if (tok->token != NULL) {
		explicit_bzero(tok->token, strlen(tok->token));
		g_clear_pointer(&tok->token, g_free);
	}
}

int ifs_token_get(void *ctx, const char *refused, char **token_r, char **errmsg_r)
{
	struct ifs_token *tok = ctx;
	int err = 0;

	*token_r = NULL;
	g_mutex_lock(&tok->lock);
	/* A refusal of the token we hold means it expired or was revoked; a refusal of an older
	 * one only means another connection has already fetched its successor. */
	if (refused != NULL && tok->token != NULL && strcmp(refused, tok->token) == 0) {
		if (tok->announce)
			g_message("the server refused the OAuth2 access token; running oauth_cmd "
			          "for a new one");
		else
			g_debug("the server refused the OAuth2 access token; running oauth_cmd "
			        "for a new one");
		drop_token(tok);
	}
	if (tok->token == NULL) {
		char *line = NULL, *why = NULL;
		tok->runs++;
		/* once mounted, a hung helper must not hang every reader (they wait on lock) */
		err = ifs_config_run_cmd("oauth_cmd", "access token", tok->cmd,
		                         tok->announce ? tok->timeout_s : 0, &line, &why);
		if (err < 0) {
			*errmsg_r = why;
		} else {
			tok->token = line;
			g_debug("oauth_cmd printed an access token");
		}
	}
	if (err == 0)
		*token_r = g_strdup(tok->token);
	g_mutex_unlock(&tok->lock);
	return err;
}

void ifs_token_announce(struct ifs_token *tok)
{
	g_mutex_lock(&tok->lock);
	tok->announce = true;
	g_mutex_unlock(&tok->lock);
}

unsigned ifs_token_runs(struct ifs_token *tok)
{
	g_mutex_lock(&tok->lock);
	unsigned n = tok->runs;
	g_mutex_unlock(&tok->lock);
	return n;
}

void ifs_token_free(struct ifs_token *tok)
{
	if (tok == NULL)
		return;
	drop_token(tok);
	g_mutex_clear(&tok->lock);
	g_free(tok->cmd);
	g_free(tok);
}
