/* query.h — the search criteria language of `.search` paths: one path component is one
 * criterion, turned into an imap/ query (struct imap_search).
 *
 *   from= to= cc= bcc= subject= body= text=   substring, as IMAP defines it
 *   header=Name:value                        substring of that header field
 *   since= before= on=                       YYYY-MM-DD, 1-Jan-2025, or 7d 2w 3m 1y (ago)
 *   larger= smaller=                         bytes, or a number with K, M, G (powers of 1024)
 *   seen unseen flagged unflagged answered unanswered draft undraft      (bare)
 *   keyword=NAME                             an IMAP keyword (atom)
 *   imap=EXPRESSION                          RFC 3501 search syntax, parsed here, never sent raw
 *   gmail=QUERY                              Gmail's syntax via X-GM-RAW (X-GM-EXT-1 servers)
 *
 * Keys are case-insensitive; values are taken as typed (after the first '=').  A component is a
 * criterion exactly when it contains '=' or is one of the bare flag words (case-insensitive):
 * that is the rule that tells criteria from folder names in a mount-wide result (search.h).
 * Pure functions; no locks.
 */
#ifndef IMAPFS_FS_QUERY_H
#define IMAPFS_FS_QUERY_H

#include <glib.h>
#include <imap.h>
#include <stdbool.h>
#include <stdint.h>

/* Does component look like a criterion (contains '=' or is a bare flag word)? */
bool ifs_query_is_criterion(const char *component);

/* A component that is no criterion but that the user could have meant as one: a key without
 * its "=VALUE" ("subject"), written with ':' ("from:alice"), or a word of 4 letters or more
 * one typo (two from 6 letters on) away from a flag word or a key ("unsen", "subjet").  True and
 * a new one-line hint in *hint_r (g_free) saying what was probably meant; false (and NULL)
 * for a criterion or anything else ("newdir"): such a name is simply not found, quietly. */
bool ifs_query_near_miss(const char *component, char **hint_r);

/* The criterion of one component.  today: the local date relative dates count back from.
 * 0 and a new query in *q_r (imap_search_free); else -EINVAL and a new one-line reason in
 * *why_r (g_free) naming the mistake: unknown key, bad date, bad size, bad expression. */
int ifs_query_from_component(const char *component, const GDate *today, struct imap_search **q_r,
                             char **why_r);

/* The date forms of since/before/on; false when value is none of them. */
bool ifs_query_parse_date(const char *value, const GDate *today, int *year_r, int *month_r,
                          int *day_r);
/* larger/smaller: "1500", "10K", "2M", "1G"; false if malformed or over 32 bits. */
bool ifs_query_parse_size(const char *value, uint64_t *bytes_r);

#endif /* IMAPFS_FS_QUERY_H */
