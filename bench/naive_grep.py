#!/usr/bin/python3
"""The naive client pattern: search, then fetch and parse one message at a time.

What a quick script written against an IMAP library does to find the messages whose text
mentions a word: imaplib over implicit TLS, EXAMINE the folder, `UID SEARCH ALL`, then for each
UID in turn `UID FETCH uid BODY.PEEK[]` (one round trip per message, nothing pipelined), parse
the message with the email package, take the text/plain body decoded (charset and transfer
encoding undone) and look for the word.

    naive_grep.py --host H --port P --user U --password-file F --ca-file CA --folder NAME WORD

Prints one JSON line: {"seconds": .., "uids": [matching UIDs], "messages": n,
"rss_kb": peak RSS}; seconds counts
from the SEARCH to the last fetch (login and EXAMINE excluded).  Python 3 standard library only.
"""

import email
import email.policy
import imaplib
import json
import ssl
import sys
import time

import client_cli  # bench/client_cli.py


def text_body(msg):
    """The decoded text/plain body of msg ('' when there is none)."""
    part = msg.get_body(preferencelist=('plain',))
    if part is None:
        return ''
    try:
        return part.get_content()
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True) or b''
        return payload.decode('utf-8', 'replace')


def run(host, port, user, password, ca_file, folder, word):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    c = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=600)
    c.login(user, password)
    typ, _ = c.select('"%s"' % folder, readonly=True)
    if typ != 'OK':
        raise RuntimeError('EXAMINE %s failed' % folder)
    t0 = time.monotonic()
    typ, data = c.uid('SEARCH', 'ALL')
    uids = [int(x) for x in b' '.join(d for d in data if d).split()]
    hits = []
    for uid in uids:
        typ, data = c.uid('FETCH', str(uid), '(BODY.PEEK[])')
        raw = next((item[1] for item in data if isinstance(item, tuple)), None)
        if typ != 'OK' or raw is None:
            raise RuntimeError('UID FETCH %d failed: %r' % (uid, data))
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if word in text_body(msg):
            hits.append(uid)
    secs = time.monotonic() - t0
    c.close()
    c.logout()
    return {'seconds': secs, 'uids': hits, 'messages': len(uids)}


def main(argv=None):
    ap = client_cli.connection_args(__doc__.split('\n')[0])
    ap.add_argument('word')
    args = ap.parse_args(argv)
    password = client_cli.read_password(args.password_file)
    res = run(args.host, args.port, args.user, password, args.ca_file, args.folder, args.word)
    res['rss_kb'] = client_cli.peak_rss_kb()
    print(json.dumps(res))
    return 0


if __name__ == '__main__':
    sys.exit(main())
