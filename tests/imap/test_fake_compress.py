#!/usr/bin/python3
"""COMPRESS=DEFLATE (RFC 4978) against a scripted fake server (meson suite 'fake').

The exact lines of the exchange (COMPRESS after the login and before ENABLE, so the secret is
never compressed; everything after it compressed, the trace uncompressed), a server that says
NO or BAD (the session goes on uncompressed), one that never offers it, compress = off,
compress = auto on a loopback address (not asked; on asks there too), a
server whose every response arrives one compressed byte at a time with a sync or a partial
flush (the client must answer without waiting for the rest of a block: the script waits for
its next command), a corrupt stream (EPROTO, no crash) and a compression bomb (fails at the
response-text cap with memory bounded).  Needs IMAP_CLIENT_TOOL in the environment.
"""
import os
import resource
import socket
import subprocess
import sys
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_server import FakeServer  # noqa: E402
from fake_case import PLAIN_B64, PASSWORD, USER, TOOL, logout, run_tool  # noqa: E402

GREET = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] fake ready\r\n"
LIST_ANSWER = (b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
               b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"\r\n'
               b'* LIST (\\Noselect \\HasChildren) "/" {9}\r\nA "b" \\ c\r\n')
LIST_OUT = [
    "raw=INBOX name=INBOX delim=/ flags=HASNOCHILDREN",
    "raw=Sent Items name=Sent Items delim=/ flags=HASNOCHILDREN,SENT",
    'raw=A "b" \\ c name=A "b" \\ c delim=/ flags=NOSELECT,HASCHILDREN',
]


def login(caps):
    return [
        ("send", GREET),
        ("expect", b"A0001 AUTHENTICATE PLAIN " + PLAIN_B64),
        ("send", b"A0001 OK [CAPABILITY " + caps + b"] Logged in\r\n"),
    ]


def compressed_login(flush=zlib.Z_SYNC_FLUSH, caps=b"IMAP4rev1 LITERAL+ COMPRESS=DEFLATE"):
    return login(caps) + [
        ("expect", b"A0002 COMPRESS DEFLATE"),
        ("send", b"A0002 OK DEFLATE active\r\n"),
        ("compress", flush),
    ]


class CompressTestCase(unittest.TestCase):
    def play(self, script, *cmd, **kw):
        srv = FakeServer(script)
        res = run_tool(srv.port, *cmd, **kw)
        self.assertTrue(srv.join(), "fake server did not finish")
        res.srv = srv
        return res

    def assertOk(self, res):
        self.assertEqual(res.rc, 0, f"client failed: {res.err}")
        self.assertEqual(res.srv.errors, [])


class Exchange(CompressTestCase):
    def test_exact_lines(self):
        """COMPRESS right after the login, ENABLE and everything after it compressed."""
        caps = b"IMAP4rev1 LITERAL+ ENABLE QRESYNC COMPRESS=DEFLATE"
        script = compressed_login(caps=caps) + [
            ("expect", b"A0003 ENABLE QRESYNC"),
            ("expect", b'A0004 LIST "" "*"'),
            ("send", b"* ENABLED QRESYNC\r\nA0003 OK enabled\r\n" + LIST_ANSWER +
             b"A0004 OK List completed\r\n"),
        ] + logout(5)
        res = self.play(script, "list")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), LIST_OUT)
        srv = res.srv
        self.assertEqual(srv.lines, [
            b"A0001 AUTHENTICATE PLAIN " + PLAIN_B64,
            b"A0002 COMPRESS DEFLATE",
            b"A0003 ENABLE QRESYNC",
            b'A0004 LIST "" "*"',
            b"A0005 LOGOUT",
        ])
        raw = bytes(srv.received)
        # the credentials went before compression, in clear (under TLS in real life) ...
        self.assertLess(raw.index(PLAIN_B64), srv.compress_at)
        self.assertTrue(raw[:srv.compress_at].endswith(b"A0002 COMPRESS DEFLATE\r\n"))
        # ... and nothing after the COMPRESS line went uncompressed
        after = raw[srv.compress_at:]
        for word in (b"ENABLE", b"LIST", b"LOGOUT", b"A000"):
            self.assertNotIn(word, after)
        self.assertEqual(bytes(srv.plain),
                         b'A0003 ENABLE QRESYNC\r\nA0004 LIST "" "*"\r\nA0005 LOGOUT\r\n')
        # the -d trace shows the uncompressed lines both ways
        self.assertIn('C: A0004 LIST \\"\\" \\"*\\"', res.err)
        self.assertIn("S: * LIST (\\\\HasNoChildren \\\\Sent) \\\"/\\\" \\\"Sent Items\\\"",
                      res.err)
        self.assertIn("COMPRESS DEFLATE active", res.err)
        self.assertNotIn(PASSWORD, res.err)

    def _refused(self, answer):
        script = login(b"IMAP4rev1 LITERAL+ COMPRESS=DEFLATE") + [
            ("expect", b"A0002 COMPRESS DEFLATE"),
            ("send", answer),
            ("expect", b'A0003 LIST "" "*"'),
            ("send", LIST_ANSWER + b"A0003 OK List completed\r\n"),
        ] + logout(4)
        res = self.play(script, "list")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), LIST_OUT)
        self.assertIsNone(res.srv.compress_at)
        self.assertIn(b'A0003 LIST "" "*"\r\n', bytes(res.srv.received))  # in clear
        self.assertIn("refused COMPRESS DEFLATE", res.err)

    def test_no_leaves_it_uncompressed(self):
        self._refused(b"A0002 NO [COMPRESSIONACTIVE] not now\r\n")

    def test_bad_leaves_it_uncompressed(self):
        self._refused(b"A0002 BAD unknown command\r\n")

    def test_never_advertised(self):
        script = login(b"IMAP4rev1 LITERAL+") + [
            ("expect", b'A0002 LIST "" "*"'),
            ("send", LIST_ANSWER + b"A0002 OK List completed\r\n"),
        ] + logout(3)
        res = self.play(script, "list")
        self.assertOk(res)
        self.assertNotIn(b"COMPRESS", bytes(res.srv.received))

    def test_compress_off(self):
        script = login(b"IMAP4rev1 LITERAL+ COMPRESS=DEFLATE") + [
            ("expect", b'A0002 LIST "" "*"'),
            ("send", LIST_ANSWER + b"A0002 OK List completed\r\n"),
        ] + logout(3)
        res = self.play(script, "list", extra=("--compress", "off"))
        self.assertOk(res)
        self.assertNotIn(b"COMPRESS", bytes(res.srv.received))

    def _plain_list(self, extra, family=socket.AF_INET, host="127.0.0.1"):
        """The server offers COMPRESS=DEFLATE; the client must LIST right after the login,
        never sending COMPRESS."""
        script = login(b"IMAP4rev1 LITERAL+ COMPRESS=DEFLATE") + [
            ("expect", b'A0002 LIST "" "*"'),
            ("send", LIST_ANSWER + b"A0002 OK List completed\r\n"),
        ] + logout(3)
        srv = FakeServer(script, family=family)
        res = run_tool(srv.port, "list", host=host, extra=extra)
        self.assertTrue(srv.join(), "fake server did not finish")
        res.srv = srv
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), LIST_OUT)
        self.assertNotIn(b"COMPRESS", bytes(res.srv.received))
        return res

    def test_auto_not_on_loopback(self):
        """compress = auto (the daemon's default) does not ask a server it reached at a
        loopback address, over IPv4 or IPv6, and says so in the trace."""
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with self.subTest(host=host):
                res = self._plain_list(("--compress", "auto"), family, host)
                self.assertIn("on a loopback address: not asking for COMPRESS", res.err)

    def test_on_also_on_loopback(self):
        """compress = on asks whatever the address: the exchange as test_exact_lines."""
        script = compressed_login() + [
            ("expect", b'A0003 LIST "" "*"'),
            ("send", LIST_ANSWER + b"A0003 OK List completed\r\n"),
        ] + logout(4)
        res = self.play(script, "list", extra=("--compress", "on"))
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), LIST_OUT)
        self.assertEqual(res.srv.lines[:3], [b"A0001 AUTHENTICATE PLAIN " + PLAIN_B64,
                                             b"A0002 COMPRESS DEFLATE", b'A0003 LIST "" "*"'])
        self.assertIsNotNone(res.srv.compress_at)
        self.assertNotIn("not asking for COMPRESS", res.err)

    def test_bytes_after_ok_are_compressed(self):
        """The server compresses from the byte after its tagged OK: what it sends in the same
        segment (an untagged response) is decoded, not parsed as text."""
        script = login(b"IMAP4rev1 LITERAL+ COMPRESS=DEFLATE") + [
            ("expect", b"A0002 COMPRESS DEFLATE"),
            ("send_compress", b"A0002 OK DEFLATE active\r\n",
             b"* OK [ALERT] compressed right behind the OK\r\n"),
            ("expect", b'A0003 LIST "" "*"'),
            ("send", LIST_ANSWER + b"A0003 OK List completed\r\n"),
        ] + logout(4)
        res = self.play(script, "list")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), LIST_OUT)
        self.assertIn("says: [ALERT] compressed right behind the OK", res.err)


class PartialFlush(CompressTestCase):
    """Every response arrives one compressed byte per segment; the script then waits for the
    client's next command, so a reader that waits for a whole block stalls (and times out)."""

    def _bytewise(self, flush):
        examined = (b"* 3 EXISTS\r\n* OK [UIDVALIDITY 77] ok\r\n* OK [UIDNEXT 9] ok\r\n"
                    b"A0003 OK [READ-ONLY] Examine completed\r\n")
        fetched = (b'* 1 FETCH (UID 4 RFC822.SIZE 1234 INTERNALDATE " 7-Jul-2024 10:00:00 +0200"'
                   b" FLAGS (\\Seen $Label1))\r\nA0004 OK done\r\n")
        script = compressed_login(flush) + [
            ("expect", b'A0003 EXAMINE "INBOX"'),
            ("send_bytewise", examined, 0.002),
            ("expect", b"A0004 UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)"),
            ("send_bytewise", fetched, 0.002),
            # (the client may hang up once it has decoded the OK, before the flush's last
            # bytes: the last answer goes in one piece)
        ] + logout(5)
        res = self.play(script, "attrs", "INBOX", "1:*", timeout_ms=3000)
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(),
                         ["uid=4 size=1234 date=1720339200 modseq=0 flags=\\Seen,$Label1"])

    def test_sync_flush_bytewise(self):
        self._bytewise(zlib.Z_SYNC_FLUSH)

    def test_partial_flush_bytewise(self):
        self._bytewise(zlib.Z_PARTIAL_FLUSH)


class Hostile(CompressTestCase):
    def test_corrupt_stream(self):
        script = compressed_login() + [
            ("expect", b'A0003 LIST "" "*"'),
            ("send", b'* LIST (\\HasNoChildren) "/" INBOX\r\n'),
            ("send_raw", b"\xff\xff\xff\xff\xff\xff\xff\xff"),
            ("sleep", 1),
        ]
        res = self.play(script, "list")
        self.assertEqual(res.rc, 1, f"client should have failed: {res.out} {res.err}")
        self.assertIn("error: EPROTO", res.err)
        self.assertIn("corrupt compressed data", res.err)
        self.assertIn("from 127.0.0.1; disconnecting", res.err)

    def test_bomb_is_bounded(self):
        """200 MiB of "A" without a line end, sent as ~200 KB: the client stops at the
        response-text cap (64 MiB) and its memory stays under 128 MiB (320 MiB under ASan)."""
        script = compressed_login() + [
            ("expect", b'A0003 LIST "" "*"'),
            ("send_bomb", 200 * 1024 * 1024),
            ("sleep", 1),
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        res = self.play(script, "list", timeout_ms=20000)
        self.assertEqual(res.rc, 1, f"client should have failed: {res.out} {res.err}")
        self.assertIn("error: EPROTO", res.err)
        self.assertIn("malformed response", res.err)
        self.assertIn("response longer than 67108864 bytes", res.err)
        maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print("client max RSS %d KiB" % maxrss_kb, file=sys.stderr)
        if maxrss_kb > before:  # this client was the largest child so far: it is measured
            # ASan keeps freed blocks in quarantine and adds shadow memory
            bound = 320 if os.environ.get("IMAPFS_SANITIZE", "none") != "none" else 128
            self.assertLess(maxrss_kb, bound * 1024, "the bomb's memory was not bounded")


if __name__ == "__main__":
    if not TOOL or not os.access(TOOL, os.X_OK):
        raise SystemExit("IMAP_CLIENT_TOOL must point to imap_client_tool")
    unittest.main(verbosity=2)
