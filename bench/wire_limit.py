#!/usr/bin/python3
"""The wire limit: how fast the server can send every message of a folder over one connection.

Logs in over implicit TLS, EXAMINEs the folder and sends a single `UID FETCH 1:* BODY.PEEK[]`,
then reads the raw bytes off the TLS socket in large chunks and throws them away, following
literals ({n}) only to find the tagged OK.  No parsing or decoding beyond that (imaplib is far
too slow to be a limit).  No client can get the bodies faster over one connection, so it is the
yardstick the benchmark's "ratio to (c)" column divides by.

    wire_limit.py --host H --port P --user U --password-file F --ca-file CA --folder NAME

Prints one JSON line: {"seconds": .., "bytes": .., "messages": .., "rss_kb": ..}; seconds counts from the
FETCH command to its tagged OK (login and EXAMINE are excluded, they take the same few round
trips for every method).  Python 3 standard library only.
"""

import json
import re
import socket
import ssl
import sys
import time

import client_cli  # bench/client_cli.py

CHUNK = 1 << 20
_LITERAL = re.compile(rb'\{(\d+)\}\r\n$')
_FETCH = re.compile(rb'\* \d+ FETCH ')


class Wire:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        self.received = 0

    def _fill(self):
        if self.pos > 0 and self.pos >= len(self.buf) // 2:
            del self.buf[:self.pos]
            self.pos = 0
        data = self.sock.recv(CHUNK)
        if not data:
            raise ConnectionError('server closed the connection')
        self.received += len(data)
        self.buf += data

    def line(self):
        """The next line including CRLF (bytes)."""
        while True:
            end = self.buf.find(b'\r\n', self.pos)
            if end >= 0:
                out = bytes(self.buf[self.pos:end + 2])
                self.pos = end + 2
                return out
            self._fill()

    def skip(self, n):
        """Discard n bytes of literal data."""
        while n > 0:
            avail = len(self.buf) - self.pos
            if avail == 0:
                self._fill()
                continue
            take = min(avail, n)
            self.pos += take
            n -= take

    def response(self, tag):
        """Read until the tagged response for tag; return (status line, FETCH responses seen)."""
        untagged = 0
        while True:
            ln = self.line()
            first = ln
            while True:
                m = _LITERAL.search(ln)
                if not m:
                    break
                self.skip(int(m.group(1)))
                ln = self.line()
            if first.startswith(tag + b' '):
                return first, untagged
            if _FETCH.match(first):
                untagged += 1


def quote(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def run(host, port, user, password, ca_file, folder):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection((host, port), timeout=600)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = ctx.wrap_socket(raw, server_hostname=host)
    w = Wire(sock)
    w.line()  # greeting

    def command(tag, text):
        sock.sendall(tag + b' ' + text.encode('utf-8') + b'\r\n')
        status, n = w.response(tag)
        if not status.split(b' ')[1:2] == [b'OK']:
            raise RuntimeError('%s failed: %r' % (text.split(' ')[0], status))
        return n

    command(b'w1', 'LOGIN %s %s' % (quote(user), quote(password)))
    command(b'w2', 'EXAMINE %s' % quote(folder))
    start_bytes = w.received
    t0 = time.monotonic()
    n = command(b'w3', 'UID FETCH 1:* BODY.PEEK[]')
    secs = time.monotonic() - t0
    nbytes = w.received - start_bytes
    try:
        command(b'w4', 'LOGOUT')
    except (ConnectionError, RuntimeError, OSError):
        pass
    sock.close()
    return {'seconds': secs, 'bytes': nbytes, 'messages': n}


def main(argv=None):
    ap = client_cli.connection_args(__doc__.split('\n')[0])
    args = ap.parse_args(argv)
    password = client_cli.read_password(args.password_file)
    res = run(args.host, args.port, args.user, password, args.ca_file, args.folder)
    res['rss_kb'] = client_cli.peak_rss_kb()
    print(json.dumps(res))
    return 0


if __name__ == '__main__':
    sys.exit(main())
