/* sasl.c — logging in: every way of presenting a secret to the server, as one table.
 *
 * A password goes as AUTHENTICATE PLAIN (RFC 4616), else as the IMAP LOGIN command; an OAuth2
 * access token as AUTHENTICATE OAUTHBEARER (RFC 7628), else XOAUTH2 (Google's and Microsoft's
 * older mechanism).  Each mechanism is a row of mechs[]: the kind of secret it carries, the
 * function that builds its initial client response, and the dummy answer it owes to an error
 * challenge.  The first row that fits the configured kind of secret and that the server offers
 * is used; the initial response goes on the command line when the server has SASL-IR (one
 * round trip), else after its empty challenge.  A refused token comes back as a base64 JSON
 * challenge ({"status":"invalid_token",...}); the client must answer it (RFC 7628 3.2.3) before
 * the server sends its tagged NO, and the status and scope it named go into the error line, as
 * they say why (expired token, missing scope).  Every line carrying a secret is sensitive: the
 * trace shows only "AUTHENTICATE <mechanism>", and buffers that held the secret are wiped.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "imap"

/* An OAuth2 error challenge is a short JSON object; more is not worth decoding. */
#define MAX_CHALLENGE_JSON 4096
/* status and scope are shown in one log line: keep a hostile server's values short. */
#define MAX_SHOWN_VALUE 100
/* Nesting skipped inside a JSON value before the text is deemed hostile. */
#define MAX_JSON_DEPTH 16

struct sasl_mech;

/* What one login attempt learnt from the server's challenges. */
struct sasl_exchange {
	const struct sasl_mech *mech;
	bool challenged; /* an error challenge was answered */
	char *status;    /* from its JSON, sanitised (nullable) */
	char *scope;
};

struct sasl_mech {
	const char *name;    /* AUTHENTICATE name (capability AUTH=name); "LOGIN": the command */
	enum imap_auth auth; /* the kind of secret it carries */
	bool (*offered)(const struct imap_conn *conn, const struct sasl_mech *mech);
	/* AUTHENTICATE mechanisms: the initial client response, before base64 (new, wiped and
	 * freed by the caller), or -EINVAL with *why_r (static) when the secret or user name
	 * cannot be carried; NULL for LOGIN */
	int (*initial)(const char *user, const char *secret, GString *out, const char **why_r);
	/* answer to an error challenge (base64; "" is an empty line); NULL: no challenge is
	 * expected, one is a protocol error */
	const char *dummy;
	int (*run)(struct imap_conn *conn, const struct sasl_mech *mech,
	           const struct imap_config *cfg);
};

/* ---- initial client responses ---------------------------------------------------------- */

/* RFC 4616: authzid NUL authcid NUL passwd, with an empty authzid. */
static int plain_initial(const char *user, const char *secret, GString *out, const char **why_r)
{
	g_string_append_c(out, '\0');
	g_string_append(out, user);
	g_string_append_c(out, '\0');
	g_string_append(out, secret);
	return 0;
}

/* A bearer token is base64-like text (RFC 6750 b64token); anything at or below space would
 * end a field of the OAuth2 responses, so it is refused rather than sent. */
static bool token_ok(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool oauth_user_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int oauth_check(const char *user, const char *secret, const char **why_r)
{
	if (!token_ok(secret)) {
		*why_r = "the access token is empty or contains spaces or control characters "
		         "(check what oauth_cmd prints)";
		return -EINVAL;
	}
	if (!oauth_user_ok(user)) {
		*why_r = "the user name contains control characters";
		return -EINVAL;
	}
	return 0;
}

/* RFC 7628 3.1: gs2-header "n,a=USER," then kvpairs separated by ^A, closed by ^A^A.  The
 * user name is a saslname (RFC 5801): ',' and '=' escaped. */
static int oauthbearer_initial(const char *user, const char *secret, GString *out,
                               const char **why_r)
{
	int err = oauth_check(user, secret, why_r);
	if (err < 0)
		return err;
	g_string_append(out, "n,a=");
	for (const char *p = user; *p != '\0'; p++) {
		if (*p == ',')
			g_string_append(out, "=2C");
		else if (*p == '=')
			g_string_append(out, "=3D");
		else
			g_string_append_c(out, *p);
	}
	g_string_append(out, ",\001auth=Bearer ");
	g_string_append(out, secret);
	g_string_append(out, "\001\001");
	return 0;
}

/* Google's XOAUTH2: "user=USER^Aauth=Bearer TOKEN^A^A". */
static int xoauth2_initial(const char *user, const char *secret, GString *out, const char **why_r)
{
	int err = oauth_check(user, secret, why_r);
	if (err < 0)
		return err;
	g_string_append(out, "user=");
	g_string_append(out, user);
	g_string_append(out, "\001auth=Bearer ");
	g_string_append(out, secret);
	g_string_append(out, "\001\001");
	return 0;
}

/* ---- running a login command ------------------------------------------------------------ */

static void wipe_gstring(GString *s)
{
	if (s != NULL) {
		explicit_bzero(s->str, s->allocated_len);
		g_string_free(s, TRUE);
	}
}

/* A value from the server for the error line: printable ASCII, bounded. */
static char *shown_value(const char *v)
{
	if (v == NULL)
		return NULL;
	size_t n = strlen(v);
	char *s = g_strndup(v, MIN(n, MAX_SHOWN_VALUE));
	for (char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return s;
}

/* The hook of struct imap_cmd: the server refused the token and says why in base64 JSON.
 * RFC 7628 3.2.3: the client answers with the dummy response and the server then sends NO. */
static int error_challenge(void *ctx, const char *text, GString *reply)
{
	struct sasl_exchange *ex = ctx;
	if (ex->challenged)
		return -EPROTO; /* one error challenge, then the tagged answer: nothing else */
	ex->challenged = true;
	size_t tlen = strlen(text);
	/* base64 of MAX_CHALLENGE_JSON bytes; a longer challenge is answered all the same */
	char *b64 = g_strndup(text, MIN(tlen, (size_t)MAX_CHALLENGE_JSON / 3 * 4));
	gsize jlen = 0;
	guchar *json = g_base64_decode(b64, &jlen);
	char *status = imap_sasl_json_field((const char *)json, jlen, "status");
	char *scope = imap_sasl_json_field((const char *)json, jlen, "scope");
	ex->status = shown_value(status);
	ex->scope = shown_value(scope);
	g_free(status);
	g_free(scope);
	g_free(json);
	g_free(b64);
	g_string_append(reply, ex->mech->dummy);
	return 0;
}

/* Run a formatted login command; a tagged NO or BAD becomes LOGIN_REFUSED with the server's
 * reason and what its error challenge said. */
static int run_login(struct imap_conn *conn, struct imap_cmd *cmd, struct sasl_exchange *ex)
{
	struct imap_response *final = NULL;
	conn->caps_fresh = false; /* the tagged OK may carry the post-login capabilities */
	int err = imap_conn_run(conn, cmd, NULL, NULL, &final);
	if (err < 0 && final != NULL && !conn->broken) {
		char *why = imap_response_reason(final);
		GString *detail = g_string_new(NULL);
		if (ex != NULL && ex->challenged) {
			g_string_append_printf(detail, " (%s: status %s", ex->mech->name,
			                       ex->status != NULL ? ex->status : "not given");
			if (ex->scope != NULL)
				g_string_append_printf(detail, ", scope %s", ex->scope);
			g_string_append_c(detail, ')');
		}
		err = imap_conn_fail(conn, IMAP_OUTCOME_LOGIN_REFUSED, final->code,
		                     "login failed: %s%s", why, detail->str);
		g_string_free(detail, TRUE);
		g_free(why);
	}
	imap_response_free(final);
	return err;
}

/* AUTHENTICATE mech with its initial response: on the command line with SASL-IR, else after
 * the server's first (empty) challenge. */
static int authenticate(struct imap_conn *conn, const struct sasl_mech *mech,
                        const struct imap_config *cfg)
{
	GString *raw = g_string_new(NULL);
	const char *why = NULL;
	int err = mech->initial(cfg->user, cfg->password, raw, &why);
	if (err < 0) {
		wipe_gstring(raw);
		return imap_conn_fail_errno(conn, err, false, "cannot log in with %s: %s",
		                            mech->name, why);
	}
	char *b64 = g_base64_encode((const guchar *)raw->str, raw->len);
	wipe_gstring(raw);

	struct sasl_exchange ex = {.mech = mech};
	struct imap_cmd *cmd = imap_cmd_new();
	cmd->sensitive = true;
	cmd->what = "login";
	cmd->log_prefix = g_strdup_printf("AUTHENTICATE %s", mech->name);
	if (mech->dummy != NULL) {
		cmd->challenge = error_challenge;
		cmd->challenge_ctx = &ex;
	}
	char *line = g_strdup_printf("AUTHENTICATE %s", mech->name);
	imap_cmd_add_text(cmd, line);
	g_free(line);
	if (imap_conn_has_cap(conn, "SASL-IR")) {
		imap_cmd_add_text(cmd, " ");
		imap_cmd_add_text(cmd, b64);
	} else {
		imap_cmd_add_text(cmd, "\r\n");
		g_ptr_array_add(cmd->chunks, g_string_new(b64));
	}
	explicit_bzero(b64, strlen(b64));
	g_free(b64);

	err = run_login(conn, cmd, &ex);
	/* the command's buffers held the secret too */
	for (guint i = 0; i < cmd->chunks->len; i++) {
		GString *c = g_ptr_array_index(cmd->chunks, i);
		explicit_bzero(c->str, c->allocated_len);
	}
	imap_cmd_free(cmd);
	g_free(ex.status);
	g_free(ex.scope);
	return err;
}

/* The IMAP LOGIN command (RFC 3501 6.2.3), for servers without AUTH=PLAIN. */
static int login_command(struct imap_conn *conn, const struct sasl_mech *mech,
                         const struct imap_config *cfg)
{
	struct imap_cmd *cmd = imap_cmd_new();
	cmd->sensitive = true;
	cmd->what = "login";
	cmd->log_prefix = g_strdup("LOGIN");
	imap_cmd_add_text(cmd, "LOGIN ");
	enum imap_literal_mode mode = imap_conn_literal_mode(conn);
	int err;
	if (imap_cmd_add_string(cmd, cfg->user, strlen(cfg->user), mode) < 0 ||
	    (imap_cmd_add_text(cmd, " "),
	     imap_cmd_add_string(cmd, cfg->password, strlen(cfg->password), mode)) < 0)
		err = imap_conn_fail_errno(conn, -EINVAL, false,
		                           "user name or password contains CR, LF or NUL");
	else
		err = run_login(conn, cmd, NULL);
	for (guint i = 0; i < cmd->chunks->len; i++) {
		GString *c = g_ptr_array_index(cmd->chunks, i);
		explicit_bzero(c->str, c->allocated_len);
	}
	imap_cmd_free(cmd);
	return err;
}

/* ---- the table -------------------------------------------------------------------------- */

static bool auth_cap(const struct imap_conn *conn, const struct sasl_mech *mech)
{
	char cap[32];
	g_snprintf(cap, sizeof(cap), "AUTH=%s", mech->name);
	return imap_conn_has_cap(conn, cap);
}

static bool login_allowed(const struct imap_conn *conn, const struct sasl_mech *mech)
{
	return !imap_conn_has_cap(conn, "LOGINDISABLED");
}

/* In order of preference within each kind of secret. */
static const struct sasl_mech mechs[] = {
    {"OAUTHBEARER", IMAP_AUTH_OAUTH2, auth_cap, oauthbearer_initial, "AQ==", authenticate},
    {"XOAUTH2", IMAP_AUTH_OAUTH2, auth_cap, xoauth2_initial, "", authenticate},
    {"PLAIN", IMAP_AUTH_PASSWORD, auth_cap, plain_initial, NULL, authenticate},
    {"LOGIN", IMAP_AUTH_PASSWORD, login_allowed, NULL, NULL, login_command},
};

int imap_sasl_login(struct imap_conn *conn, const struct imap_config *cfg)
{
	if (cfg->user == NULL || cfg->password == NULL)
		return imap_conn_fail(conn, IMAP_OUTCOME_LOGIN_REFUSED, NULL,
		                      "no user name or %s configured",
		                      cfg->auth == IMAP_AUTH_OAUTH2 ? "access token" : "password");
	for (size_t i = 0; i < G_N_ELEMENTS(mechs); i++)
		if (mechs[i].auth == cfg->auth && mechs[i].offered(conn, &mechs[i]))
			return mechs[i].run(conn, &mechs[i], cfg);
	if (cfg->auth == IMAP_AUTH_OAUTH2)
		return imap_conn_fail_errno(conn, -EOPNOTSUPP, false,
		                            "server %s offers neither OAUTHBEARER nor XOAUTH2, so "
		                            "auth = oauth2 cannot log in there%s",
		                            conn->host,
		                            conn->ssl == NULL &&
		                                    imap_conn_has_cap(conn, "LOGINDISABLED")
		                                ? " (it wants TLS: use implicit TLS or STARTTLS)"
		                                : "");
	return imap_conn_fail(
	    conn, IMAP_OUTCOME_LOGIN_REFUSED, NULL,
	    "server %s advertises LOGINDISABLED and no AUTH=PLAIN; refusing to log in%s",
	    conn->host, conn->ssl == NULL ? " (it wants TLS: use implicit TLS or STARTTLS)" : "");
}

/* ---- a JSON object, just enough for an error challenge ---------------------------------- */

struct json_cur {
	const char *p, *end;
};

static void json_ws(struct json_cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int hex_digit(char ch)
{
	return g_ascii_xdigit_value(ch);
}

/* A string at c->p (which is '"'); its unescaped text is appended to out (nullable). */
static bool json_string(struct json_cur *c, GString *out)
{
	if (c->p >= c->end || *c->p != '"')
		return false;
	c->p++;
	while (c->p < c->end) {
		char ch = *c->p++;
		if (ch == '"')
			return true;
		if ((unsigned char)ch < 0x20)
			return false;
		if (ch != '\\') {
			if (out != NULL)
				g_string_append_c(out, ch);
			continue;
		}
		if (c->p >= c->end)
			return false;
		ch = *c->p++;
		switch (ch) {
		case '"':
		case '\\':
		case '/':
			break;
		case 'b':
			ch = '\b';
			break;
		case 'f':
			ch = '\f';
			break;
		case 'n':
			ch = '\n';
			break;
		case 'r':
			ch = '\r';
			break;
		case 't':
			ch = '\t';
			break;
		case 'u': {
			if (c->end - c->p < 4)
				return false;
			gunichar u = 0;
			for (int i = 0; i < 4; i++) {
				int d = hex_digit(c->p[i]);
				if (d < 0)
					return false;
				u = u * 16 + (gunichar)d;
			}
			c->p += 4;
			if (out != NULL) {
				/* surrogates (and NUL): not worth pairing up here */
				if (u == 0 || (u >= 0xd800 && u <= 0xdfff)) {
					g_string_append_c(out, '?');
				} else {
					char buf[6];
					g_string_append_len(out, buf, g_unichar_to_utf8(u, buf));
				}
			}
			continue;
		}
		default:
			return false;
		}
		if (out != NULL)
			g_string_append_c(out, ch);
	}
	return false;
}

/* A number, true, false or null: its characters. */
static bool json_scalar(struct json_cur *c, GString *out)
{
	const char *start = c->p;
	while (c->p < c->end &&
	       (g_ascii_isalnum(*c->p) || *c->p == '-' || *c->p == '+' || *c->p == '.'))
		c->p++;
	if (c->p == start)
		return false;
	if (out != NULL)
		g_string_append_len(out, start, c->p - start);
	return true;
}

/* Any value; objects and arrays are walked (to depth MAX_JSON_DEPTH) but not kept. */
static bool json_skip(struct json_cur *c, int depth)
{
	json_ws(c);
	if (c->p >= c->end)
		return false;
	if (*c->p == '"')
		return json_string(c, NULL);
	if (*c->p != '{' && *c->p != '[')
		return json_scalar(c, NULL);
	if (depth >= MAX_JSON_DEPTH)
		return false;
	char close = *c->p == '{' ? '}' : ']';
	bool object = close == '}';
	c->p++;
	json_ws(c);
	if (c->p < c->end && *c->p == close) {
		c->p++;
		return true;
	}
	for (;;) {
		if (object) {
			json_ws(c);
			if (!json_string(c, NULL))
				return false;
			json_ws(c);
			if (c->p >= c->end || *c->p++ != ':')
				return false;
		}
		if (!json_skip(c, depth + 1))
			return false;
		json_ws(c);
		if (c->p >= c->end)
			return false;
		char ch = *c->p++;
		if (ch == close)
			return true;
		if (ch != ',')
			return false;
	}
}

char *imap_sasl_json_field(const char *json, size_t len, const char *key)
{
	if (json == NULL)
		return NULL;
	struct json_cur c = {json, json + len};
	GString *name = g_string_new(NULL);
	GString *value = NULL;
	bool ok = false;

	json_ws(&c);
	if (c.p >= c.end || *c.p++ != '{')
		goto out;
	json_ws(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
		ok = true;
		goto out;
	}
	for (;;) {
		g_string_truncate(name, 0);
		json_ws(&c);
		if (!json_string(&c, name))
			goto out;
		json_ws(&c);
		if (c.p >= c.end || *c.p++ != ':')
			goto out;
		json_ws(&c);
		bool wanted = value == NULL && strcmp(name->str, key) == 0;
		if (wanted && c.p < c.end && *c.p == '"') {
			value = g_string_new(NULL);
			if (!json_string(&c, value))
				goto out;
		} else if (wanted && c.p < c.end && *c.p != '{' && *c.p != '[') {
			value = g_string_new(NULL);
			if (!json_scalar(&c, value))
				goto out;
		} else if (!json_skip(&c, 1)) {
			goto out;
		}
		json_ws(&c);
		if (c.p >= c.end)
			goto out;
		char ch = *c.p++;
		if (ch == '}')
			break;
		if (ch != ',')
			goto out;
	}
	json_ws(&c);
	ok = c.p == c.end;
out:
	g_string_free(name, TRUE);
	if (!ok || value == NULL) {
		if (value != NULL)
			g_string_free(value, TRUE);
		return NULL;
	}
	return g_string_free(value, FALSE);
}
