#!/usr/bin/python3
"""The best a mail client does at listing a folder: log in, EXAMINE, one UID FETCH of every
message's header (and BODYSTRUCTURE, as aerc sends at listing), LOGOUT.

    header_client.py --host H --port P --user U --password-file F --ca-file CA --folder NAME
                     [--items '(BODYSTRUCTURE BODY.PEEK[HEADER])']

Implicit TLS (verified against CA), one connection, nothing pipelined but what a client would
(LOGIN, EXAMINE and the FETCH are each waited for).  Prints one JSON line:
{"seconds": from connect() to the FETCH's tagged OK (login included), "fetch_seconds": the FETCH
alone, "bytes": what the FETCH's answers took (TLS payload), "messages": FETCH responses,
"rss_kb": ..}.  Bytes on the wire, TLS included, are counted by the benchmark's proxy.  Python 3
standard library only.
"""

import json
import socket
import ssl
import sys
import time

import client_cli  # bench/client_cli.py
import wire_limit  # bench/wire_limit.py: Wire, quote


def run(host, port, user, password, ca_file, folder, items):
    t0 = time.monotonic()
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection((host, port), timeout=600)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = ctx.wrap_socket(raw, server_hostname=host)
    w = wire_limit.Wire(sock)
    w.line()  # greeting

    def command(tag, text):
        sock.sendall(tag + b' ' + text.encode('utf-8') + b'\r\n')
        status, n = w.response(tag)
        if status.split(b' ')[1:2] != [b'OK']:
            raise RuntimeError('%s failed: %r' % (text.split(' ')[0], status))
        return n

    command(b'h1', 'LOGIN %s %s' % (wire_limit.quote(user), wire_limit.quote(password)))
    command(b'h2', 'EXAMINE %s' % wire_limit.quote(folder))
    start_bytes = w.received
    t1 = time.monotonic()
    n = command(b'h3', 'UID FETCH 1:* %s' % items)
    t2 = time.monotonic()
    nbytes = w.received - start_bytes
    try:
        command(b'h4', 'LOGOUT')
    except (ConnectionError, RuntimeError, OSError):
        pass
    sock.close()
    return {'seconds': t2 - t0, 'fetch_seconds': t2 - t1, 'bytes': nbytes, 'messages': n}


def main(argv=None):
    ap = client_cli.connection_args(__doc__.split('\n')[0])
    ap.add_argument('--items', default='(BODYSTRUCTURE BODY.PEEK[HEADER])')
    args = ap.parse_args(argv)
    password = client_cli.read_password(args.password_file)
    res = run(args.host, args.port, args.user, password, args.ca_file, args.folder, args.items)
    res['rss_kb'] = client_cli.peak_rss_kb()
    print(json.dumps(res))
    return 0


if __name__ == '__main__':
    sys.exit(main())
