#!/usr/bin/python3
"""Scripted fake-server tests of the IMAP client (meson suite 'fake').

Each test plays a server transcript on loopback (fake_server.py), runs imap_client_tool against
it and asserts the EXACT lines the client sent, what it printed, and for the security cases that
no credential byte ever reached the server.  TLS uses a throwaway PKI made with the openssl CLI
(certs.py).  Needs IMAP_CLIENT_TOOL in the environment (set by meson).
"""
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from certs import make_pki  # noqa: E402
from fake_server import FakeServer  # noqa: E402

TOOL = os.environ.get("IMAP_CLIENT_TOOL", "")
USER = "mike"
PASSWORD = "s3cr3t-P@ss"
PLAIN_B64 = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode())
PKI = None
PKI_DIR = None


def setUpModule():
    global PKI, PKI_DIR
    if not TOOL or not os.access(TOOL, os.X_OK):
        raise RuntimeError("IMAP_CLIENT_TOOL must point to imap_client_tool")
    PKI_DIR = tempfile.TemporaryDirectory(prefix="imapfs-pki-")
    PKI = make_pki(PKI_DIR.name)


def tearDownModule():
    PKI_DIR.cleanup()


class Result:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.out = proc.stdout.decode("utf-8", "replace")
        self.err = proc.stderr.decode("utf-8", "replace")
        self.elapsed = elapsed


def run_tool(port, *cmd, tls="none", host="127.0.0.1", timeout_ms=5000, ca=None,
             password=PASSWORD, user=USER, extra=()):
    args = [TOOL, "--host", host, "--port", str(port), "--tls", tls, "--user", user,
            "--timeout-ms", str(timeout_ms), *extra]
    if ca:
        args += ["--ca-file", ca]
    args += list(cmd)
    env = dict(os.environ, IMAPFS_TEST_PASSWORD=password, G_MESSAGES_DEBUG="all")
    t0 = time.monotonic()
    proc = subprocess.run(args, capture_output=True, env=env, timeout=120)
    return Result(proc, time.monotonic() - t0)


GREET = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] fake ready\r\n"


def login(caps=b"IMAP4rev1 LITERAL+ ESEARCH CONDSTORE"):
    """Greeting and SASL-IR login as A0001; post-login caps in the tagged OK."""
    return [
        ("send", GREET),
        ("expect", b"A0001 AUTHENTICATE PLAIN " + PLAIN_B64),
        ("send", b"A0001 OK [CAPABILITY " + caps + b"] Logged in\r\n"),
    ]


def logout(n):
    tag = b"A%04d" % n
    return [("expect", tag + b" LOGOUT"), ("send", b"* BYE Logging out\r\n" + tag + b" OK done\r\n")]


EXAMINE_INBOX = [
    ("expect", b'A0002 EXAMINE "INBOX" (CONDSTORE)'),
    ("send", b"* FLAGS (\\Answered \\Seen)\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 77] ok\r\n"
             b"* OK [UIDNEXT 9] ok\r\n* OK [HIGHESTMODSEQ 12345678901] ok\r\n"
             b"A0002 OK [READ-ONLY] Examine completed\r\n"),
]


class FakeTestCase(unittest.TestCase):
    def play(self, script, *cmd, tls="none", server_tls=None, cert="good", **kw):
        certfile = keyfile = None
        if server_tls:
            certfile, keyfile = PKI[cert]
        srv = FakeServer(script, tls=server_tls, certfile=certfile, keyfile=keyfile,
                         family=kw.pop("family", socket.AF_INET))
        res = run_tool(srv.port, *cmd, tls=tls, **kw)
        self.assertTrue(srv.join(), "fake server did not finish")
        res.srv = srv
        return res

    def assertOk(self, res):
        self.assertEqual(res.rc, 0, f"client failed: {res.err}")

    def assertFails(self, res, errno_name, message):
        self.assertEqual(res.rc, 1, f"client should have failed: {res.out} {res.err}")
        self.assertIn(f"error: {errno_name}", res.err)
        self.assertIn(message, res.err)

    def assertNoCredentials(self, res):
        """No password, user name or login command ever reached the server or the log."""
        for secret in (PASSWORD.encode(), PLAIN_B64, b"LOGIN", b"AUTHENTICATE", USER.encode()):
            self.assertNotIn(secret, bytes(res.srv.received))
        self.assertNotIn(PASSWORD, res.err)
        self.assertNotIn(PLAIN_B64.decode(), res.err)


class Login(FakeTestCase):
    def test_authenticate_plain_sasl_ir(self):
        res = self.play(login() + logout(2), "connect")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines, [b"A0001 AUTHENTICATE PLAIN " + PLAIN_B64, b"A0002 LOGOUT"])
        # redacted in the debug trace, never the password or its base64
        self.assertIn("C: A0001 AUTHENTICATE PLAIN <credentials redacted>", res.err)
        self.assertNotIn(PASSWORD, res.err)
        self.assertNotIn(PLAIN_B64.decode(), res.err)
        self.assertIn("tls = none", res.err)  # the warning

    def test_authenticate_plain_without_sasl_ir(self):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE PLAIN"),
            ("send", b"+ \r\n"),
            ("expect", PLAIN_B64),
            ("send", b"A0001 OK Logged in\r\n"),
            ("expect", b"A0002 CAPABILITY"),
            ("send", b"* CAPABILITY IMAP4rev1\r\nA0002 OK done\r\n"),
        ] + logout(3)
        res = self.play(script, "connect")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertIn("C: <credentials redacted>", res.err)
        self.assertNotIn(PLAIN_B64.decode(), res.err)

    def test_login_fallback_quoted(self):
        pw = 'pa"ss\\word'
        script = [
            ("send", b"* OK ready\r\n"),
            ("expect", b"A0001 CAPABILITY"),
            ("send", b"* CAPABILITY IMAP4rev1\r\nA0001 OK done\r\n"),
            ("expect", b'A0002 LOGIN "mike" "pa\\"ss\\\\word"'),
            ("send", b"A0002 OK Logged in\r\n"),
            ("expect", b"A0003 CAPABILITY"),
            ("send", b"* CAPABILITY IMAP4rev1\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "connect", password=pw)
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertIn("C: A0002 LOGIN <credentials redacted>", res.err)
        self.assertNotIn("pa\\\"ss", res.err)
        self.assertNotIn("ss\\\\word", res.err)

    def test_login_fallback_literal(self):
        pw = "p\u00e4ss"  # 8-bit: must be a literal, synchronising without LITERAL+
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1] ready\r\n"),
            ("expect", b'A0001 LOGIN "mike" {5}'),
            ("send", b"+ go ahead\r\n"),
            ("expect", pw.encode()),
            ("send", b"A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        ] + logout(2)
        res = self.play(script, "connect", password=pw)
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertNotIn(pw, res.err)

    def test_login_failed_message(self):
        script = [
            ("send", GREET),
            ("expect", b"A0001 AUTHENTICATE PLAIN " + PLAIN_B64),
            ("send", b"A0001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        ]
        res = self.play(script, "connect")
        self.assertFails(res, "EACCES", "login failed: [AUTHENTICATIONFAILED] Authentication failed.")
        self.assertEqual(res.srv.errors, [])

    def test_logindisabled(self):
        script = [("send", b"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\r\n")]
        res = self.play(script, "connect")
        self.assertFails(res, "EACCES", "LOGINDISABLED")
        self.assertNoCredentials(res)
        self.assertEqual(res.srv.lines, [])

    def test_crlf_in_password_refused(self):
        script = [("send", b"* OK [CAPABILITY IMAP4rev1] ready\r\n")]
        res = self.play(script, "connect", password="x\r\nA9 DELETE INBOX")
        self.assertFails(res, "EINVAL", "CR, LF or NUL")
        self.assertNotIn(b"DELETE", bytes(res.srv.received))


class StartTLS(FakeTestCase):
    def test_not_offered(self):
        script = [("send", b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n")]
        res = self.play(script, "connect", tls="starttls", ca=PKI["ca"])
        self.assertFails(res, "EPROTO",
                         "server does not offer STARTTLS; refusing to continue without TLS")
        self.assertNoCredentials(res)
        self.assertEqual(res.srv.lines, [])

    def test_not_offered_after_capability(self):
        script = [
            ("send", b"* OK ready\r\n"),
            ("expect", b"A0001 CAPABILITY"),
            ("send", b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA0001 OK done\r\n"),
        ]
        res = self.play(script, "connect", tls="starttls", ca=PKI["ca"])
        self.assertFails(res, "EPROTO", "does not offer STARTTLS")
        self.assertNoCredentials(res)
        self.assertEqual(res.srv.lines, [b"A0001 CAPABILITY"])

    def _refused(self, answer):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"),
            ("expect", b"A0001 STARTTLS"),
            ("send", answer),
        ]
        res = self.play(script, "connect", tls="starttls", ca=PKI["ca"])
        self.assertFails(res, "EPROTO", "refused STARTTLS")
        self.assertNoCredentials(res)
        self.assertEqual(res.srv.lines, [b"A0001 STARTTLS"])

    def test_no(self):
        self._refused(b"A0001 NO [UNAVAILABLE] TLS not available\r\n")

    def test_bad(self):
        self._refused(b"A0001 BAD unknown command\r\n")

    def test_preauth_greeting(self):
        script = [("send", b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] hi mike\r\n")]
        res = self.play(script, "connect", tls="starttls", ca=PKI["ca"])
        self.assertFails(res, "EPROTO", "PREAUTH")
        self.assertNoCredentials(res)
        self.assertEqual(res.srv.lines, [])

    def test_injection_same_packet(self):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
            ("expect", b"A0001 STARTTLS"),
            ("send", b"A0001 OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"),
        ]
        res = self.play(script, "connect", tls="starttls", ca=PKI["ca"])
        self.assertFails(res, "EPROTO", "injection")
        self.assertNoCredentials(res)
        self.assertEqual(res.srv.lines, [b"A0001 STARTTLS"])

    def test_injection_separate_packet(self):
        # The injected bytes arrive just after the OK: whether the client sees them before or
        # during its handshake, it must give up without sending credentials.
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
            ("expect", b"A0001 STARTTLS"),
            ("send", b"A0001 OK Begin TLS\r\n"),
            ("send", b"A0002 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"),
        ]
        res = self.play(script, "connect", tls="starttls", ca=PKI["ca"])
        self.assertEqual(res.rc, 1)
        self.assertNoCredentials(res)

    def test_success_forgets_plaintext_capabilities(self):
        # Before TLS the server claims SASL-IR; after TLS it does not.  The client must ask
        # CAPABILITY again and use the new list (no SASL-IR: wait for the continuation).
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR LITERAL+] hi\r\n"),
            ("expect", b"A0001 STARTTLS"),
            ("send", b"A0001 OK Begin TLS negotiation now\r\n"),
            ("starttls",),
            ("expect", b"A0002 CAPABILITY"),
            ("send", b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA0002 OK done\r\n"),
            ("expect", b"A0003 AUTHENTICATE PLAIN"),
            ("send", b"+ \r\n"),
            ("expect", PLAIN_B64),
            ("send", b"A0003 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        ] + logout(4)
        res = self.play(script, "connect", tls="starttls", server_tls="starttls",
                        ca=PKI["ca"])
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines[0], b"A0001 STARTTLS")

    def test_starttls_bad_certificate(self):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] hi\r\n"),
            ("expect", b"A0001 STARTTLS"),
            ("send", b"A0001 OK Begin TLS negotiation now\r\n"),
            ("starttls",),
        ]
        res = self.play(script, "connect", tls="starttls", server_tls="starttls",
                        cert="unknown", ca=PKI["ca"])
        self.assertFails(res, "EKEYREJECTED", "TLS certificate verification failed for 127.0.0.1")
        self.assertNoCredentials(res)


class ImplicitTLS(FakeTestCase):
    def test_good_certificate_ip(self):
        res = self.play(login() + logout(2), "connect", tls="implicit", server_tls="implicit",
                        ca=PKI["ca"])
        self.assertOk(res)
        self.assertNotIn("tls = none", res.err)

    def test_good_certificate_hostname(self):
        res = self.play(login() + logout(2), "connect", tls="implicit", server_tls="implicit",
                        ca=PKI["ca"], host="localhost")
        self.assertOk(res)

    def test_good_certificate_ipv6(self):
        res = self.play(login() + logout(2), "connect", tls="implicit", server_tls="implicit",
                        ca=PKI["ca"], host="::1", family=socket.AF_INET6)
        self.assertOk(res)

    def _refused(self, cert, host, ca, message):
        res = self.play(login(), "connect", tls="implicit", server_tls="implicit", cert=cert,
                        ca=ca, host=host)
        self.assertFails(res, "EKEYREJECTED", message)
        self.assertNoCredentials(res)

    def test_wrong_hostname(self):
        self._refused("wronghost", "localhost", PKI["ca"],
                      "TLS certificate verification failed for localhost: hostname mismatch")

    def test_wrong_ip(self):
        self._refused("wronghost", "127.0.0.1", PKI["ca"],
                      "TLS certificate verification failed for 127.0.0.1: IP address mismatch")

    def test_unknown_ca(self):
        self._refused("unknown", "127.0.0.1", PKI["ca"],
                      "TLS certificate verification failed for 127.0.0.1")

    def test_no_extra_ca_means_untrusted(self):
        self._refused("good", "127.0.0.1", None,
                      "TLS certificate verification failed for 127.0.0.1")


class Hostile(FakeTestCase):
    def test_garbage_greeting(self):
        for greeting in (b"HTTP/1.1 400 Bad Request\r\n", b"SSH-2.0-OpenSSH_9.2\r\n",
                         b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n"):
            with self.subTest(greeting=greeting):
                res = self.play([("send", greeting)], "connect")
                self.assertFails(res, "EPROTO", "does not greet like an IMAP server")
                self.assertNoCredentials(res)

    def test_bye_greeting(self):
        res = self.play([("send", b"* BYE Too many connections\r\n")], "connect")
        self.assertFails(res, "ECONNABORTED", "refused the connection: Too many connections")

    def test_bye_mid_command(self):
        script = login() + [
            ("expect", b'A0002 LIST "" "*"'),
            ("send", b'* LIST () "/" INBOX\r\n* BYE Server shutting down\r\n'),
            ("close",),
        ]
        res = self.play(script, "list")
        self.assertFails(res, "ECONNABORTED", "closed the connection: Server shutting down")
        self.assertEqual(res.srv.errors, [])

    def _literal_refused(self, size, message):
        script = login() + [
            ("expect", b'A0002 LIST "" "*"'),
            ("send", b'* LIST () "/" {' + size + b"}\r\n"),
            ("sleep", 0.5),
        ]
        res = self.play(script, "list")
        self.assertFails(res, "EPROTO", message)

    def test_literal_4294967296(self):
        self._literal_refused(b"4294967296", "over the limit")

    def test_literal_2_pow_64(self):
        self._literal_refused(b"18446744073709551616", "does not fit in 64 bits")

    def test_body_literal_over_configured_cap(self):
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID FETCH 5 (UID BODY.PEEK[])"),
            ("send", b"* 1 FETCH (UID 5 BODY[] {1001}\r\n"),
            ("sleep", 0.5),
        ]
        res = self.play(script, "fetch", "INBOX", "5", extra=("--max-literal", "1000"))
        self.assertFails(res, "EPROTO", "literal of 1001 bytes, over the limit of 1000 bytes")
        self.assertNotIn("begin", res.out)

    def test_depth_cap(self):
        script = login() + [
            ("expect", b'A0002 LIST "" "*"'),
            ("send", b"* LIST " + b"(" * 5 + b")" * 5 + b' "/" x\r\n'),
            ("sleep", 0.5),
        ]
        res = self.play(script, "list", extra=("--max-depth", "4"))
        self.assertFails(res, "EPROTO", "deeper than 4 levels")

    def test_truncated_literal(self):
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID FETCH 5 (UID BODY.PEEK[])"),
            ("send", b"* 1 FETCH (UID 5 BODY[] {100}\r\n" + b"x" * 50),
            ("close",),
        ]
        res = self.play(script, "fetch", "INBOX", "5")
        self.assertFails(res, "ECONNABORTED", "closed the connection in the middle of a literal")
        self.assertIn("begin 5 100", res.out)
        self.assertNotIn("end 5", res.out)

    def test_stall_times_out(self):
        script = login() + [("expect", b"A0002 NOOP"), ("stall",)]
        res = self.play(script, "noop", timeout_ms=1000)
        self.assertFails(res, "ETIMEDOUT", "timed out after 1000 ms")
        self.assertGreaterEqual(res.elapsed, 1.0)
        self.assertLess(res.elapsed, 3.0)

    def test_stall_in_greeting(self):
        res = self.play([("stall",)], "connect", timeout_ms=1000)
        self.assertFails(res, "ETIMEDOUT", "timed out after 1000 ms")
        self.assertLess(res.elapsed, 3.0)

    def test_stall_in_tls_handshake(self):
        # a plain TCP server that never speaks TLS: SSL_connect must time out too
        res = self.play([("stall",)], "connect", tls="implicit", timeout_ms=1000, ca=PKI["ca"])
        self.assertFails(res, "ETIMEDOUT", "TLS handshake")
        self.assertLess(res.elapsed, 3.0)

    def test_stall_mid_literal(self):
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID FETCH 5 (UID BODY.PEEK[])"),
            ("send", b"* 1 FETCH (UID 5 BODY[] {100}\r\n" + b"x" * 50),
            ("stall",),
        ]
        res = self.play(script, "fetch", "INBOX", "5", timeout_ms=1000)
        self.assertFails(res, "ETIMEDOUT", "timed out")
        self.assertNotIn("end 5", res.out)
        self.assertLess(res.elapsed, 3.0)

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        res = run_tool(port, "connect")
        self.assertFails(res, "ECONNREFUSED",
                         f"cannot connect to 127.0.0.1:{port}: Connection refused")


class Commands(FakeTestCase):
    def test_list(self):
        script = login() + [
            ("expect", b'A0002 LIST "" "*"'),
            ("send", b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                     b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"\r\n'
                     b'* LIST (\\Noselect \\HasChildren) "/" {9}\r\nA "b" \\ c\r\n'
                     b'* LIST (\\HasNoChildren) "/" "&vBvHQNO4ycDVaA-"\r\n'
                     b'* LIST (\\HasNoChildren \\Trash \\Junk) NIL "Inbox&AGE-"\r\n'
                     b"A0002 OK List completed\r\n"),
        ] + logout(3)
        res = self.play(script, "list")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "raw=INBOX name=INBOX delim=/ flags=HASNOCHILDREN",
            "raw=Sent Items name=Sent Items delim=/ flags=HASNOCHILDREN,SENT",
            'raw=A "b" \\ c name=A "b" \\ c delim=/ flags=NOSELECT,HASCHILDREN',
            "raw=&vBvHQNO4ycDVaA- name=\ubc1b\uc740\ud3b8\uc9c0\ud568 delim=/ flags=HASNOCHILDREN",
            "raw=Inbox&AGE- name=(invalid) delim=- flags=HASNOCHILDREN,JUNK,TRASH",
        ])
        self.assertEqual(res.srv.errors, [])

    def test_examine(self):
        res = self.play(login() + EXAMINE_INBOX + logout(3), "examine", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.out.strip(),
                         "uidvalidity=77 uidnext=9 exists=3 highestmodseq=12345678901")
        self.assertEqual(res.srv.errors, [])

    def test_examine_non_ascii_name_and_no(self):
        script = login(b"IMAP4rev1") + [
            ("expect", b'A0002 EXAMINE "&vBvHQNO4ycDVaA-"'),
            ("send", b"A0002 NO [NONEXISTENT] Mailbox doesn't exist\r\n"),
        ] + logout(3)
        res = self.play(script, "examine", "\ubc1b\uc740\ud3b8\uc9c0\ud568")
        self.assertFails(res, "ENOENT", "EXAMINE failed: [NONEXISTENT] Mailbox doesn't exist")
        self.assertEqual(res.srv.errors, [])

    def test_search_plain(self):
        script = login(b"IMAP4rev1") + [
            ("expect", b'A0002 EXAMINE "INBOX"'),
            ("send", b"* OK [UIDVALIDITY 1] x\r\nA0002 OK done\r\n"),
            ("expect", b"A0003 UID SEARCH ALL"),
            ("send", b"* SEARCH 9 3 5\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "search", "INBOX", "ALL")
        self.assertOk(res)
        self.assertEqual(res.out.split(), ["count=3", "3", "5", "9"])

    def test_search_esearch_literal_plus(self):
        word = "\ubc1b\uc740".encode()
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID SEARCH RETURN (ALL) CHARSET UTF-8 SUBJECT {6+}"),
            ("expect", word + b" SINCE 1-Jan-2020"),
            ("send", b'* ESEARCH (TAG "A0003") UID ALL 4:6,2,10\r\n'
                     b'* ESEARCH (TAG "ZZZ") UID ALL 99\r\nA0003 OK done\r\n'),
        ] + logout(4)
        res = self.play(script, "search", "INBOX", "SUBJECT %s SINCE 1-Jan-2020", "\ubc1b\uc740")
        self.assertOk(res)
        self.assertEqual(res.out.split(), ["count=5", "2", "4", "5", "6", "10"])
        self.assertEqual(res.srv.errors, [])

    def test_search_sync_literal(self):
        script = login(b"IMAP4rev1") + [
            ("expect", b'A0002 EXAMINE "INBOX"'),
            ("send", b"* OK [UIDVALIDITY 1] x\r\nA0002 OK done\r\n"),
            ("expect", b"A0003 UID SEARCH CHARSET UTF-8 SUBJECT {2}"),
            ("send", b"+ Ready for literal data\r\n"),
            ("expect", "\u00e9".encode()),
            ("send", b"* SEARCH\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "search", "INBOX", "SUBJECT %s", "\u00e9")
        self.assertOk(res)
        self.assertEqual(res.out.split(), ["count=0"])
        self.assertEqual(res.srv.errors, [])

    def test_search_quoted_injection_attempt(self):
        evil = 'x" ) UID STORE 1:* +FLAGS (\\Deleted) ("'
        script = login(b"IMAP4rev1") + [
            ("expect", b'A0002 EXAMINE "INBOX"'),
            ("send", b"* OK [UIDVALIDITY 1] x\r\nA0002 OK done\r\n"),
            ("expect", b'A0003 UID SEARCH SUBJECT "x\\" ) UID STORE 1:* +FLAGS (\\\\Deleted) (\\""'),
            ("send", b"* SEARCH\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "search", "INBOX", "SUBJECT %s", evil)
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])

    def test_search_crlf_refused(self):
        script = login(b"IMAP4rev1") + [
            ("expect", b'A0002 EXAMINE "INBOX"'),
            ("send", b"* OK [UIDVALIDITY 1] x\r\nA0002 OK done\r\n"),
        ] + logout(3)
        res = self.play(script, "search", "INBOX", "SUBJECT %s", "x\r\nA1 LOGOUT")
        self.assertFails(res, "EINVAL", "invalid search")
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines[-1], b"A0003 LOGOUT")

    def test_ten_megabyte_search_line(self):
        uids = list(range(1, 2_900_000, 2))
        line = b"* SEARCH " + " ".join(map(str, uids)).encode() + b"\r\n"
        self.assertGreater(len(line), 10 * 1024 * 1024)
        script = login(b"IMAP4rev1") + [
            ("expect", b'A0002 EXAMINE "INBOX"'),
            ("send", b"* OK [UIDVALIDITY 1] x\r\nA0002 OK done\r\n"),
            ("expect", b"A0003 UID SEARCH ALL"),
            ("send", line + b"A0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "search", "INBOX", "ALL")
        self.assertOk(res)
        got = res.out.split()
        self.assertEqual(got[0], f"count={len(uids)}")
        self.assertEqual(list(map(int, got[1:])), uids)

    def test_attrs(self):
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)"),
            ("send", b'* 1 FETCH (UID 4 RFC822.SIZE 1234 INTERNALDATE " 7-Jul-2024 10:00:00 +0200"'
                     b" FLAGS (\\Seen $Label1) MODSEQ (42))\r\n"
                     b"* 2 FETCH (FLAGS (\\Seen))\r\n"
                     b'* 3 FETCH (UID 8 RFC822.SIZE 5 INTERNALDATE "01-Jan-1970 00:00:00 +0000"'
                     b" FLAGS ())\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "attrs", "INBOX", "1:*")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "uid=4 size=1234 date=1720339200 modseq=42 flags=\\Seen,$Label1",
            "uid=8 size=5 date=0 modseq=0 flags=",
        ])

    LISTALL_FETCH = b"A0004 UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)"
    LISTALL_ANSWERS = (b'* 1 FETCH (UID 4 RFC822.SIZE 12 INTERNALDATE "01-Jan-1970 00:00:00 +0000"'
                       b" FLAGS (\\Seen) MODSEQ (7))\r\n"
                       b'* 2 FETCH (UID 9 RFC822.SIZE 5 INTERNALDATE "01-Jan-1970 00:00:01 +0000"'
                       b" FLAGS ())\r\n")

    def test_listing_pipelined(self):
        """A whole listing is one round trip: the FETCH is sent before the SEARCH's answer
        (the script expects both lines before it answers anything)."""
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID SEARCH RETURN (ALL) ALL"),
            ("expect", self.LISTALL_FETCH),
            ("send", b'* ESEARCH (TAG "A0003") UID ALL 4,9\r\nA0003 OK done\r\n'
                     + self.LISTALL_ANSWERS + b"A0004 OK done\r\n"),
        ] + logout(5)
        res = self.play(script, "listall", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "uid=4 size=12 date=0 modseq=7 flags=\\Seen",
            "uid=9 size=5 date=1 modseq=0 flags=",
            "count=2 4 9",
        ])
        self.assertEqual(res.srv.errors, [])

    def test_listing_pipelined_out_of_order(self):
        """Pipelined commands may complete in any order; an ESEARCH naming another tag is
        not ours."""
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID SEARCH RETURN (ALL) ALL"),
            ("expect", self.LISTALL_FETCH),
            ("send", self.LISTALL_ANSWERS + b"A0004 OK done\r\n"
                     b'* ESEARCH (TAG "A0004") UID ALL 77\r\n'
                     b'* ESEARCH (TAG "A0003") UID ALL 9,4\r\nA0003 OK done\r\n'),
        ] + logout(5)
        res = self.play(script, "listall", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines()[-1], "count=2 4 9")
        self.assertEqual(res.srv.errors, [])

    def test_listing_pipelined_search_fails(self):
        """A failed SEARCH fails the listing, but both answers are read first: the
        connection stays in step (its LOGOUT is A0005)."""
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID SEARCH RETURN (ALL) ALL"),
            ("expect", self.LISTALL_FETCH),
            ("send", b"A0003 NO [SERVERBUG] search broke\r\n"
                     + self.LISTALL_ANSWERS + b"A0004 OK done\r\n"),
        ] + logout(5)
        res = self.play(script, "listall", "INBOX")
        self.assertFails(res, "ENOENT", "UID SEARCH failed: [SERVERBUG] search broke")
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines[-1], b"A0005 LOGOUT")

    def test_changes_pipelined(self):
        """What changed since a listing is one round trip: the UIDs left, new mail and flag
        changes are all asked before any answer (the script expects the three lines before it
        answers anything); the FETCH answers may come in any order."""
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID SEARCH RETURN (ALL) ALL"),
            ("expect", b"A0004 UID FETCH 9:* (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)"),
            ("expect", b"A0005 UID FETCH 1:8 (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)"
                       b" (CHANGEDSINCE 700)"),
            ("send", b'* ESEARCH (TAG "A0003") UID ALL 4,10\r\nA0003 OK done\r\n'
                     b'* 3 FETCH (UID 4 RFC822.SIZE 12 INTERNALDATE "01-Jan-1970 00:00:00 +0000"'
                     b" FLAGS (\\Seen) MODSEQ (701))\r\nA0005 OK done\r\n"
                     b'* 4 FETCH (UID 10 RFC822.SIZE 5 INTERNALDATE "01-Jan-1970 00:00:01 +0000"'
                     b" FLAGS ())\r\nA0004 OK done\r\n"),
        ] + logout(6)
        res = self.play(script, "changes", "INBOX", "9", "1", "700", "search")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "uid=4 size=12 date=0 modseq=701 flags=\\Seen",
            "uid=10 size=5 date=1 modseq=0 flags=",
            "count=2 4 10",
        ])
        self.assertEqual(res.srv.errors, [])

    def test_changes_flags_only(self):
        """Only flag changes asked: one command, no new-mail FETCH, no SEARCH."""
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID FETCH 1:8 (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)"
                       b" (CHANGEDSINCE 700)"),
            ("send", b"A0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "changes", "INBOX", "9", "0", "700")
        self.assertOk(res)
        self.assertEqual(res.out, "")
        self.assertEqual(res.srv.errors, [])

    def test_attrs_changedsince(self):
        """RFC 7162: only what changed since a HIGHESTMODSEQ is fetched."""
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID FETCH 1:8 (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)"
                       b" (CHANGEDSINCE 12345678901)"),
            ("send", b'* 1 FETCH (UID 4 RFC822.SIZE 1234 INTERNALDATE " 7-Jul-2024 10:00:00 +0200"'
                     b" FLAGS (\\Seen) MODSEQ (12345678902))\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "changedsince", "INBOX", "1:8", "12345678901")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "uid=4 size=1234 date=1720339200 modseq=12345678902 flags=\\Seen",
        ])

    def test_changedsince_needs_condstore(self):
        script = login(caps=b"IMAP4rev1 LITERAL+") + [
            ("expect", b'A0002 EXAMINE "INBOX"'),
            ("send", b"* 3 EXISTS\r\n* OK [UIDVALIDITY 77] ok\r\nA0002 OK [READ-ONLY] done\r\n"),
        ] + logout(3)
        res = self.play(script, "changedsince", "INBOX", "1:*", "5")
        self.assertFails(res, "EINVAL", "CONDSTORE")

    def test_fetch_body_streamed(self):
        body = b"From: a@b\r\nSubject: hi\r\n\r\nbody\r\n"
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out")
            script = login() + EXAMINE_INBOX + [
                ("expect", b"A0003 UID FETCH 5,7 (UID BODY.PEEK[])"),
                ("send", b"* 1 FETCH (UID 5 BODY[] {%d}\r\n" % len(body) + body +
                         b" FLAGS (\\Seen))\r\n* 2 FETCH (UID 6 BODY[] {3}\r\nxyz)\r\n"
                         b"* 3 FETCH (BODY[] {4}\r\nlate UID 7)\r\nA0003 OK done\r\n"),
            ] + logout(4)
            res = self.play(script, "fetch", "INBOX", "5,7", "--out", out)
            self.assertOk(res)
            self.assertEqual(res.out.splitlines(), [
                f"begin 5 {len(body)}", f"end 5 {len(body)}", "begin 7 4", "end 7 4"])
            with open(out, "rb") as f:
                self.assertEqual(f.read(), body + b"late")

    def test_fetch_partial_and_header(self):
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID FETCH 5 (UID BODY.PEEK[HEADER]<10.20>)"),
            ("send", b"* 1 FETCH (UID 5 BODY[HEADER]<10> {3}\r\nabc)\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "fetch", "INBOX", "5", "header", "10", "20")
        self.assertOk(res)
        self.assertIn("begin 5 3", res.out)
        self.assertEqual(res.srv.errors, [])

    def test_fetch_message_missing(self):
        script = login() + EXAMINE_INBOX + [
            ("expect", b"A0003 UID FETCH 5 (UID BODY.PEEK[])"),
            ("send", b"A0003 OK done\r\n"),
        ] + logout(4)
        with tempfile.TemporaryDirectory() as d:
            res = self.play(script, "message", "INBOX", "5", "--out", os.path.join(d, "m"))
        self.assertFails(res, "ENOENT", "no body for UID 5")



class PipelinedExamine(FakeTestCase):
    """EXAMINE sent together with what needs it (imap_examine_fetch_body,
    imap_examine_list_all): one round trip instead of two, and answers to the later commands
    used only once the EXAMINE has ended OK."""

    EXAMINE = ("expect", b'A0002 EXAMINE "INBOX" (CONDSTORE)')
    FETCH4 = ("expect", b"A0003 UID FETCH 4 (UID BODY.PEEK[])")
    BODY = b"Subject: right\r\n\r\nthe right one\r\n"
    ANSWER4 = b"* 1 FETCH (UID 4 BODY[] {%d}\r\n%s)\r\n" % (len(BODY), BODY)

    @staticmethod
    def examined(uidvalidity=77, exists=3):
        return (b"* FLAGS (\\Seen)\r\n* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n"
                b"* OK [UIDNEXT 9] ok\r\nA0002 OK [READ-ONLY] done\r\n" % (exists, uidvalidity))

    def test_fetch_in_one_round_trip(self):
        """Both lines reach the server before it answers anything (the script expects both
        first); a stray UIDVALIDITY code among the FETCH's answers changes nothing."""
        script = login() + [
            self.EXAMINE, self.FETCH4,
            ("send", self.examined() + b"* OK [UIDVALIDITY 1] stray\r\n" + self.ANSWER4 +
             b"A0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "xfetch", "INBOX", "77", "4")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "begin 4 %d" % len(self.BODY), "end 4 %d" % len(self.BODY),
            "uidvalidity=77 exists=3"])
        self.assertEqual(res.srv.errors, [])

    def test_fetch_other_uidvalidity_delivers_nothing(self):
        """The folder was recreated (another UIDVALIDITY): the body the server sends for a
        reused UID is another message's, and is never delivered."""
        script = login() + [
            self.EXAMINE, self.FETCH4,
            ("send", self.examined(uidvalidity=78) + self.ANSWER4 + b"A0003 OK done\r\n"),
        ] + logout(4)
        res = self.play(script, "xfetch", "INBOX", "77", "4")
        self.assertEqual(res.rc, 1, res.out)
        self.assertIn("error: ESTALE", res.err)
        self.assertNotIn("begin", res.out)
        self.assertIn("uidvalidity=78", res.out)
        self.assertEqual(res.srv.lines[-1], b"A0004 LOGOUT")

    def test_fetch_no_such_mailbox(self):
        """A failed EXAMINE fails the call with its own error; the FETCH's BAD (no mailbox
        selected) is read too, so the connection stays in step."""
        script = login() + [
            self.EXAMINE, self.FETCH4,
            ("send", b"A0002 NO [NONEXISTENT] Mailbox doesn't exist\r\n"
                     b"A0003 BAD No mailbox selected\r\n"),
        ] + logout(4)
        res = self.play(script, "xfetch", "INBOX", "77", "4")
        self.assertFails(res, "ENOENT", "[NONEXISTENT] Mailbox doesn't exist")
        self.assertNotIn("begin", res.out)
        self.assertEqual(res.srv.lines[-1], b"A0004 LOGOUT")

    def test_fetch_answered_before_examine(self):
        """A server that answers the FETCH before it has finished the EXAMINE may be
        answering about the mailbox examined before: that body is not delivered, and the
        FETCH is sent again once the EXAMINE has ended."""
        wrong = b"Subject: wrong\r\n\r\nanother mailbox\r\n"
        script = login() + [
            self.EXAMINE, self.FETCH4,
            ("send", b"* 1 FETCH (UID 4 BODY[] {%d}\r\n%s)\r\nA0003 OK done\r\n"
                     % (len(wrong), wrong) + self.examined()),
            ("expect", b"A0004 UID FETCH 4 (UID BODY.PEEK[])"),
            ("send", self.ANSWER4 + b"A0004 OK done\r\n"),
        ] + logout(5)
        res = self.play(script, "xfetch", "INBOX", "77", "4")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "begin 4 %d" % len(self.BODY), "end 4 %d" % len(self.BODY),
            "uidvalidity=77 exists=3"])

    SEARCH = ("expect", b"A0003 UID SEARCH RETURN (ALL) ALL")
    FETCH_ALL = ("expect", b"A0004 UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)")
    ATTRS = (b'* 1 FETCH (UID 4 RFC822.SIZE 12 INTERNALDATE "01-Jan-1970 00:00:00 +0000"'
             b" FLAGS (\\Seen) MODSEQ (7))\r\n"
             b'* 2 FETCH (UID 9 RFC822.SIZE 5 INTERNALDATE "01-Jan-1970 00:00:01 +0000"'
             b" FLAGS ())\r\n")

    def test_listing_in_one_round_trip(self):
        script = login() + [
            self.EXAMINE, self.SEARCH, self.FETCH_ALL,
            ("send", self.examined(exists=2) +
             b'* ESEARCH (TAG "A0003") UID ALL 4,9\r\nA0003 OK done\r\n' + self.ATTRS +
             b"A0004 OK done\r\n"),
        ] + logout(5)
        res = self.play(script, "xlistall", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "uid=4 size=12 date=0 modseq=7 flags=\\Seen",
            "uid=9 size=5 date=1 modseq=0 flags=",
            "uidvalidity=77 exists=2",
            "count=2 4 9",
        ])
        self.assertEqual(res.srv.errors, [])

    def test_listing_empty_mailbox(self):
        """EXISTS 0: no UIDs, whatever the server made of "1:*" (here a BAD)."""
        script = login() + [
            self.EXAMINE, self.SEARCH, self.FETCH_ALL,
            ("send", self.examined(exists=0) +
             b'* ESEARCH (TAG "A0003") UID\r\nA0003 OK done\r\n'
             b"A0004 BAD Error in IMAP command: Invalid messageset\r\n"),
        ] + logout(5)
        res = self.play(script, "xlistall", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), ["uidvalidity=77 exists=0", "count=0"])

    def test_listing_answered_before_examine(self):
        """Answers to the SEARCH and FETCH that come before the EXAMINE has ended are not
        used: -EAGAIN, with the mailbox examined (the caller lists it again)."""
        script = login() + [
            self.EXAMINE, self.SEARCH, self.FETCH_ALL,
            ("send", b'* ESEARCH (TAG "A0003") UID ALL 4,9\r\nA0003 OK done\r\n' +
             self.ATTRS + b"A0004 OK done\r\n" + self.examined(exists=2)),
        ] + logout(5)
        res = self.play(script, "xlistall", "INBOX")
        self.assertEqual(res.rc, 1, res.out)
        self.assertIn("error: EAGAIN", res.err)
        self.assertEqual(res.out.splitlines(), ["uidvalidity=77 exists=2"])
        self.assertEqual(res.srv.lines[-1], b"A0005 LOGOUT")

    def test_listing_no_such_mailbox(self):
        script = login() + [
            self.EXAMINE, self.SEARCH, self.FETCH_ALL,
            ("send", b"A0002 NO [NONEXISTENT] Mailbox doesn't exist\r\n"
                     b"A0003 BAD No mailbox selected\r\nA0004 BAD No mailbox selected\r\n"),
        ] + logout(5)
        res = self.play(script, "xlistall", "INBOX")
        self.assertFails(res, "ENOENT", "[NONEXISTENT] Mailbox doesn't exist")
        self.assertEqual(res.srv.lines[-1], b"A0005 LOGOUT")


class ListRobustness(FakeTestCase):
    """Added with the issue-6 robustness work (tests/fs/test_hostile.py): one hostile mailbox
    name must not take the other folders down."""

    def test_list_skips_name_with_nul(self):
        script = login() + [
            ("expect", b'A0002 LIST "" "*"'),
            ("send", b'* LIST () "." INBOX\r\n'
                     b'* LIST () "." {5}\r\nnu\0ll\r\n'
                     b'* LIST () "." "Other"\r\n'
                     b"A0002 OK List completed\r\n"),
        ] + logout(3)
        res = self.play(script, "list")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), [
            "raw=INBOX name=INBOX delim=. flags=",
            "raw=Other name=Other delim=. flags=",
        ])
        self.assertIn("contains a NUL byte", res.err)
        self.assertEqual(res.srv.errors, [])

if __name__ == "__main__":
    unittest.main(verbosity=2)
