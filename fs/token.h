/* token.h — the OAuth2 access token of an account with auth = oauth2.
 *
 * One struct ifs_token per daemon, shared by every connection pool as their credential
 * callback (imap_credential_cb).  It runs oauth_cmd when a login first needs a token, keeps the
 * token while logins succeed, and runs oauth_cmd again when a pool reports that the server
 * refused the token it holds — once per refusal, however many connections were refused at the
 * same moment (the pools hand back the refused token; only the holder of that same token runs
 * the command, the others get the new one).  The token is a secret: it is never logged, never
 * put in argv or in any child's environment, and wiped when replaced or freed.
 */
#ifndef IMAPFS_FS_TOKEN_H
#define IMAPFS_FS_TOKEN_H

struct ifs_token;

/* A provider that runs oauth_cmd (copied) when needed; no command runs yet.  Once announced
 * (below), a run that takes over timeout_s seconds is killed and counts as a failure. */
struct ifs_token *ifs_token_new(const char *oauth_cmd, unsigned timeout_s);

/* The imap_credential_cb of imap.h, ctx being a struct ifs_token: *token_r is new (the caller
 * wipes and frees it).  Thread-safe; blocks while oauth_cmd runs (other callers wait for its
 * token rather than run it too). */
int ifs_token_get(void *ctx, const char *refused, char **token_r, char **errmsg_r);

/* The daemon is mounted: from now on each refresh is logged (g_message), and oauth_cmd has
 * timeout_s seconds to print its token.  Before the mount a refusal is reported as main.c's
 * one line (refreshes are then only in the -d trace), and oauth_cmd may take its time (it
 * may ask on the terminal). */
void ifs_token_announce(struct ifs_token *tok);

/* How many times oauth_cmd ran (for logs and tests). */
unsigned ifs_token_runs(struct ifs_token *tok);

void ifs_token_free(struct ifs_token *tok); /* NULL is a no-op; wipes the token */

#endif /* IMAPFS_FS_TOKEN_H */
