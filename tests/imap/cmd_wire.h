/* cmd_wire.h — for the imap/ unit tests: a command as it would go on the wire.
 *
 * The chunks of a struct imap_cmd are joined with "|" where the client would pause for the
 * server's "+" (a synchronising literal), so one string shows both the bytes and the pauses.
 */
#ifndef IMAPFS_TESTS_CMD_WIRE_H
#define IMAPFS_TESTS_CMD_WIRE_H

#include "imap-private.h"

/* New string (g_free). */
static inline char *cmd_wire(const struct imap_cmd *cmd)
{
	GString *s = g_string_new(NULL);
	for (guint i = 0; i < cmd->chunks->len; i++) {
		const GString *c = g_ptr_array_index(cmd->chunks, i);
		if (i > 0)
			g_string_append_c(s, '|');
		g_string_append_len(s, c->str, (gssize)c->len);
	}
	return g_string_free(s, FALSE);
}

#endif /* IMAPFS_TESTS_CMD_WIRE_H */
