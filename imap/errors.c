/* errors.c — the single place where IMAP protocol outcomes become negative errno values.
 *
 * Everything in the library that fails for a protocol reason goes through
 * imap_outcome_to_errno(), so the mapping promised in imap.h lives in one function and the FUSE
 * layer can hand the value straight back to the kernel.
 */
#include "imap-private.h"

#include <errno.h>
#include <string.h>

/* Does the response code start with the atom word (case-insensitive, followed by end or SP)? */
static bool code_is(const char *code, const char *word)
{
	size_t n = strlen(word);
	return code != NULL && g_ascii_strncasecmp(code, word, n) == 0 &&
	       (code[n] == '\0' || code[n] == ' ');
}

int imap_outcome_to_errno(enum imap_outcome outcome, const char *code)
{
	switch (outcome) {
	case IMAP_OUTCOME_OK:
		return 0;
	case IMAP_OUTCOME_NO:
		/* RFC 3501 BADCHARSET: a search with CHARSET UTF-8 the server cannot do */
		if (code_is(code, "BADCHARSET"))
			return -EILSEQ;
		/* RFC 5530 codes say why; permission problems are EACCES, the rest (mostly
		 * "no such mailbox/message") ENOENT. */
		if (code_is(code, "AUTHENTICATIONFAILED") || code_is(code, "AUTHORIZATIONFAILED") ||
		    code_is(code, "NOPERM") || code_is(code, "PRIVACYREQUIRED"))
			return -EACCES;
		return -ENOENT;
	case IMAP_OUTCOME_BAD:
		if (code_is(code, "BADCHARSET"))
			return -EILSEQ;
		return -EPROTO;
	case IMAP_OUTCOME_BYE:
	case IMAP_OUTCOME_LOST:
		return -ECONNABORTED;
	case IMAP_OUTCOME_TIMEOUT:
		return -ETIMEDOUT;
	case IMAP_OUTCOME_PROTOCOL:
		return -EPROTO;
	case IMAP_OUTCOME_TLS_VERIFY:
		return -EKEYREJECTED;
	case IMAP_OUTCOME_LOGIN_REFUSED:
		/* RFC 5530 LIMIT: too many connections for this user (Dovecot's
		 * mail_max_userip_connections, Gmail's 15): not a refused credential */
		if (code_is(code, "LIMIT"))
			return -EUSERS;
		return -EACCES;
	case IMAP_OUTCOME_INSECURE:
		/* STARTTLS missing or refused: the server cannot speak the protocol we require */
		return -EPROTO;
	}
	return -EIO;
}
