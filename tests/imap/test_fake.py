#!/usr/bin/python3
"""Scripted fake-server tests of the IMAP client (meson suite 'fake').

Each test plays a server transcript on loopback (fake_server.py), runs imap_client_tool against
it and asserts the EXACT lines the client sent, what it printed, and for the security cases that
no credential byte ever reached the server.  TLS uses a throwaway PKI made with the openssl CLI
(certs.py).  Needs IMAP_CLIENT_TOOL in the environment (set by meson).
"""
import os
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_case import (FakeTestCase, GREET, PASSWORD, PKI, PLAIN_B64, login,  # noqa: E402
                       logout, run_tool)
from fake_case import setUpModule  # noqa: E402,F401  (the module's PKI)

EXAMINE_INBOX = [
    ("expect", b'A0002 EXAMINE "INBOX" (CONDSTORE)'),
    ("send", b"* FLAGS (\\Answered \\Seen)\r\n* 3 EXISTS\r\n* OK [UIDVALIDITY 77] ok\r\n"
             b"* OK [UIDNEXT 9] ok\r\n* OK [HIGHESTMODSEQ 12345678901] ok\r\n"
             b"A0002 OK [READ-ONLY] Examine completed\r\n"),
]


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


KOREAN = "\ud68c\uc758"  # 회의, 6 bytes of UTF-8


def examined(tag, uidvalidity, exists=3):
    """The untagged answers and tagged OK of an EXAMINE."""
    return (b"* FLAGS (\\Seen \\Flagged)\r\n* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n"
            b"* OK [UIDNEXT 50] ok\r\n%s OK [READ-ONLY] Examine completed\r\n"
            % (exists, uidvalidity, tag.encode()))


def fetched(*uids):
    """Untagged FETCH answers with the attributes of uids (size uid*100, date uid s)."""
    return b"".join(b'* %d FETCH (UID %d RFC822.SIZE %d INTERNALDATE "01-Jan-1970 00:00:%02d'
                    b' +0000" FLAGS (\\Seen))\r\n' % (i + 1, u, u * 100, u % 60)
                    for i, u in enumerate(uids))


def printed(job, *uids):
    """What imap_client_tool qsearch prints for the hits fetched()."""
    return [f"job={job} uid={u} size={u * 100} date={u % 60} modseq=0 flags=\\Seen" for u in uids]


ATTRS = b" (UID RFC822.SIZE INTERNALDATE FLAGS)"


def fetch_line(tag, uidset):
    return ("expect", tag.encode() + b" UID FETCH " + uidset.encode() + ATTRS)


class SearchRuns(FakeTestCase):
    """imap_search_folders (issue 11): a query over one or many folders in as few round trips
    as the server allows, each folder's failure its own, answers about a folder used only once
    its EXAMINE has ended, and values that can never change the command.  The tool runs
    `qsearch EXPR MBOX...` (EXPR through imap_search_parse).  A script that expects several
    lines before it sends anything proves they were pipelined: a client waiting for an answer
    in between would stall and time out."""

    def search(self, caps, script, expr, *mboxes, logout_tag):
        res = self.play(login(caps) + script + logout(logout_tag), "qsearch", expr, *mboxes)
        self.assertEqual(res.srv.errors, [])
        return res

    def assertLines(self, res, lines):
        """The client sent exactly these lines (after its login) and then LOGOUT."""
        self.assertEqual(res.srv.lines[1:], lines)

    def test_searchres_one_round_trip(self):
        """SEARCHRES + ESEARCH: EXAMINE, UID SEARCH RETURN (SAVE ALL) and UID FETCH $ for every
        folder, all sent before any answer; a folder without hits gets an empty result."""
        caps = b"IMAP4rev1 LITERAL+ ESEARCH SEARCHRES"
        sent = [b'A0002 EXAMINE "INBOX"',
                b'A0003 UID SEARCH RETURN (SAVE ALL) FROM "alice"',
                b"A0004 UID FETCH $" + ATTRS,
                b'A0005 EXAMINE "Archive"',
                b'A0006 UID SEARCH RETURN (SAVE ALL) FROM "alice"',
                b"A0007 UID FETCH $" + ATTRS,
                b'A0008 EXAMINE "Empty"',
                b'A0009 UID SEARCH RETURN (SAVE ALL) FROM "alice"',
                b"A0010 UID FETCH $" + ATTRS]
        script = [("expect", line) for line in sent] + [
            ("send", examined("A0002", 77) +
             b'* ESEARCH (TAG "A0003") UID ALL 4,9\r\nA0003 OK done\r\n' +
             fetched(4, 9) + b"A0004 OK done\r\n" +
             examined("A0005", 88) +
             b'* ESEARCH (TAG "A0006") UID ALL 2\r\nA0006 OK done\r\n' +
             fetched(2) + b"A0007 OK done\r\n" +
             examined("A0008", 99, exists=0) +
             b'* ESEARCH (TAG "A0009") UID\r\nA0009 OK done\r\nA0010 OK done\r\n'),
        ]
        res = self.search(caps, script, "FROM alice", "INBOX", "Archive", "Empty",
                          logout_tag=11)
        self.assertOk(res)
        self.assertLines(res, sent + [b"A0011 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(0, 4, 9) + printed(1, 2) + [
            "INBOX: uidvalidity=77 4 9", "Archive: uidvalidity=88 2", "Empty: uidvalidity=99"])

    def test_plain_search_two_round_trips(self):
        """No ESEARCH, SEARCHRES or MULTISEARCH: EXAMINE + UID SEARCH per folder pipelined,
        then EXAMINE + UID FETCH of the hits (as ranges) pipelined, only for folders with
        hits; a FETCH answer for a UID that is not a hit is not delivered."""
        caps = b"IMAP4rev1 LITERAL+"
        first = [b'A0002 EXAMINE "INBOX"', b'A0003 UID SEARCH SUBJECT "budget"',
                 b'A0004 EXAMINE "Archive"', b'A0005 UID SEARCH SUBJECT "budget"',
                 b'A0006 EXAMINE "Empty"', b'A0007 UID SEARCH SUBJECT "budget"']
        second = [b'A0008 EXAMINE "INBOX"', b"A0009 UID FETCH 3:5,9,11" + ATTRS,
                  b'A0010 EXAMINE "Archive"', b"A0011 UID FETCH 7" + ATTRS]
        script = [("expect", line) for line in first] + [
            ("send", examined("A0002", 77) + b"* SEARCH 9 3 4 11 5\r\nA0003 OK done\r\n" +
             examined("A0004", 88) + b"* SEARCH 7\r\nA0005 OK done\r\n" +
             examined("A0006", 99) + b"* SEARCH\r\nA0007 OK done\r\n"),
        ] + [("expect", line) for line in second] + [
            ("send", examined("A0008", 77) + fetched(3, 4, 5, 6, 9, 11) + b"A0009 OK done\r\n" +
             examined("A0010", 88) + fetched(7) + b"A0011 OK done\r\n"),
        ]
        res = self.search(caps, script, "SUBJECT budget", "INBOX", "Archive", "Empty",
                          logout_tag=12)
        self.assertOk(res)
        self.assertLines(res, first + second + [b"A0012 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(0, 3, 4, 5, 9, 11) + printed(1, 7) + [
            "INBOX: uidvalidity=77 3 4 5 9 11", "Archive: uidvalidity=88 7",
            "Empty: uidvalidity=99"])

    def test_plain_search_uidvalidity_changed(self):
        """Archive was recreated between the SEARCH and the FETCH round trips (UIDVALIDITY 87
        then 88): the UIDs found name other messages now, so nothing of that FETCH is
        delivered and Archive is asked again on its own."""
        caps = b"IMAP4rev1 LITERAL+"
        first = [b'A0002 EXAMINE "INBOX"', b'A0003 UID SEARCH FROM "alice"',
                 b'A0004 EXAMINE "Archive"', b'A0005 UID SEARCH FROM "alice"']
        second = [b'A0006 EXAMINE "INBOX"', b"A0007 UID FETCH 4" + ATTRS,
                  b'A0008 EXAMINE "Archive"', b"A0009 UID FETCH 2" + ATTRS]
        # asked again one command at a time: the EXAMINE alone, then the SEARCH, then the
        # FETCH of its hits (the connection examines Archive: no second EXAMINE)
        again = [b'A0010 EXAMINE "Archive"', b'A0011 UID SEARCH FROM "alice"',
                 b"A0012 UID FETCH 5" + ATTRS]
        script = [("expect", line) for line in first] + [
            ("send", examined("A0002", 77) + b"* SEARCH 4\r\nA0003 OK done\r\n" +
             examined("A0004", 87) + b"* SEARCH 2\r\nA0005 OK done\r\n"),
        ] + [("expect", line) for line in second] + [
            ("send", examined("A0006", 77) + fetched(4) + b"A0007 OK done\r\n" +
             examined("A0008", 88) + fetched(2) + b"A0009 OK done\r\n"),
            ("expect", again[0]), ("quiet", 0.3), ("send", examined("A0010", 88)),
            ("expect", again[1]), ("quiet", 0.3),
            ("send", b"* SEARCH 5\r\nA0011 OK done\r\n"),
            ("expect", again[2]), ("send", fetched(5) + b"A0012 OK done\r\n"),
        ]
        res = self.search(caps, script, "FROM alice", "INBOX", "Archive", logout_tag=13)
        self.assertOk(res)
        self.assertLines(res, first + second + again + [b"A0013 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(0, 4) + printed(1, 5) + [
            "INBOX: uidvalidity=77 4", "Archive: uidvalidity=88 5"])

    MULTI = b'A0002 ESEARCH IN (mailboxes ("INBOX" "Archive")) RETURN (ALL) FROM "alice"'

    def test_multisearch(self):
        """MULTISEARCH: one ESEARCH IN (mailboxes ...) for all folders, then EXAMINE + UID FETCH
        of the hits per folder pipelined; an answer about a folder not asked for is ignored."""
        caps = b"IMAP4rev1 LITERAL+ ESEARCH MULTISEARCH"
        second = [b'A0003 EXAMINE "INBOX"', b"A0004 UID FETCH 4,9" + ATTRS,
                  b'A0005 EXAMINE "Archive"', b"A0006 UID FETCH 2" + ATTRS]
        script = [
            ("expect", self.MULTI),
            ("send", b'* ESEARCH (TAG "A0002" MAILBOX "INBOX" UIDVALIDITY 77) UID ALL 4,9\r\n'
                     b'* ESEARCH (TAG "A0002" MAILBOX "Other" UIDVALIDITY 5) UID ALL 1\r\n'
                     b'* ESEARCH (TAG "A0002" MAILBOX "Archive" UIDVALIDITY 88) UID ALL 2\r\n'
                     b"A0002 OK done\r\n"),
        ] + [("expect", line) for line in second] + [
            ("send", examined("A0003", 77) + fetched(4, 9) + b"A0004 OK done\r\n" +
             examined("A0005", 88) + fetched(2) + b"A0006 OK done\r\n"),
        ]
        res = self.search(caps, script, "FROM alice", "INBOX", "Archive", logout_tag=7)
        self.assertOk(res)
        self.assertLines(res, [self.MULTI] + second + [b"A0007 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(0, 4, 9) + printed(1, 2) + [
            "INBOX: uidvalidity=77 4 9", "Archive: uidvalidity=88 2"])

    def test_multisearch_uidvalidity_changed(self):
        """The MULTISEARCH answered about Archive in UIDVALIDITY 87, its EXAMINE says 88: the
        folder was recreated in between, so the UIDs found name other messages.  Nothing of
        that FETCH is delivered, and Archive is asked again on its own."""
        caps = b"IMAP4rev1 LITERAL+ ESEARCH MULTISEARCH"
        second = [b'A0003 EXAMINE "INBOX"', b"A0004 UID FETCH 4" + ATTRS,
                  b'A0005 EXAMINE "Archive"', b"A0006 UID FETCH 2" + ATTRS]
        # asked again one command at a time (EXAMINE alone, SEARCH, FETCH of its hits)
        again = [b'A0007 EXAMINE "Archive"', b'A0008 UID SEARCH RETURN (ALL) FROM "alice"',
                 b"A0009 UID FETCH 5" + ATTRS]
        script = [
            ("expect", self.MULTI),
            ("send", b'* ESEARCH (TAG "A0002" MAILBOX "INBOX" UIDVALIDITY 77) UID ALL 4\r\n'
                     b'* ESEARCH (TAG "A0002" MAILBOX "Archive" UIDVALIDITY 87) UID ALL 2\r\n'
                     b"A0002 OK done\r\n"),
        ] + [("expect", line) for line in second] + [
            ("send", examined("A0003", 77) + fetched(4) + b"A0004 OK done\r\n" +
             examined("A0005", 88) + fetched(2) + b"A0006 OK done\r\n"),
            ("expect", again[0]), ("quiet", 0.3), ("send", examined("A0007", 88)),
            ("expect", again[1]), ("quiet", 0.3),
            ("send", b'* ESEARCH (TAG "A0008") UID ALL 5\r\nA0008 OK done\r\n'),
            ("expect", again[2]), ("send", fetched(5) + b"A0009 OK done\r\n"),
        ]
        res = self.search(caps, script, "FROM alice", "INBOX", "Archive", logout_tag=10)
        self.assertOk(res)
        self.assertLines(res, [self.MULTI] + second + again + [b"A0010 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(0, 4) + printed(1, 5) + [
            "INBOX: uidvalidity=77 4", "Archive: uidvalidity=88 5"])

    def test_multisearch_refused_falls_back(self):
        """A MULTISEARCH the server will not do (a plain NO) is asked folder by folder."""
        caps = b"IMAP4rev1 LITERAL+ ESEARCH MULTISEARCH"
        first = [b'A0003 EXAMINE "INBOX"', b'A0004 UID SEARCH RETURN (ALL) FROM "alice"',
                 b'A0005 EXAMINE "Archive"', b'A0006 UID SEARCH RETURN (ALL) FROM "alice"']
        second = [b'A0007 EXAMINE "Archive"', b"A0008 UID FETCH 2" + ATTRS]
        script = [
            ("expect", self.MULTI),
            ("send", b"A0002 NO [CANNOT] Cannot search there\r\n"),
        ] + [("expect", line) for line in first] + [
            ("send", examined("A0003", 77) + b'* ESEARCH (TAG "A0004") UID\r\nA0004 OK done\r\n' +
             examined("A0005", 88) + b'* ESEARCH (TAG "A0006") UID ALL 2\r\nA0006 OK done\r\n'),
        ] + [("expect", line) for line in second] + [
            ("send", examined("A0007", 88) + fetched(2) + b"A0008 OK done\r\n"),
        ]
        res = self.search(caps, script, "FROM alice", "INBOX", "Archive", logout_tag=9)
        self.assertOk(res)
        self.assertLines(res, [self.MULTI] + first + second + [b"A0009 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(1, 2) + [
            "INBOX: uidvalidity=77", "Archive: uidvalidity=88 2"])

    def test_multisearch_badcharset(self):
        """A MULTISEARCH refused for its charset: every folder gets EILSEQ, nothing else is
        sent."""
        caps = b"IMAP4rev1 LITERAL+ ESEARCH MULTISEARCH"
        multi = (b'A0002 ESEARCH IN (mailboxes ("INBOX" "Archive")) RETURN (ALL) CHARSET UTF-8 '
                 b"SUBJECT {6+}")
        script = [
            ("expect", multi),
            ("expect", KOREAN.encode()),
            ("send", b"A0002 NO [BADCHARSET (US-ASCII)] Unsupported charset\r\n"),
        ]
        res = self.search(caps, script, f"SUBJECT {KOREAN}", "INBOX", "Archive", logout_tag=3)
        self.assertOk(res)
        self.assertLines(res, [multi, KOREAN.encode(), b"A0003 LOGOUT"])
        self.assertEqual(res.out.splitlines(), ["INBOX: error EILSEQ", "Archive: error EILSEQ"])

    def test_badcharset(self):
        """A server that cannot search in UTF-8 says NO [BADCHARSET]: EILSEQ for the folder."""
        caps = b"IMAP4rev1 LITERAL+"
        sent = [b'A0002 EXAMINE "INBOX"', b"A0003 UID SEARCH CHARSET UTF-8 SUBJECT {6+}",
                KOREAN.encode()]
        script = [("expect", line) for line in sent] + [
            ("send", examined("A0002", 77) +
             b"A0003 NO [BADCHARSET (US-ASCII)] Unsupported charset\r\n"),
        ]
        res = self.search(caps, script, f"SUBJECT {KOREAN}", "INBOX", logout_tag=4)
        self.assertOk(res)
        self.assertLines(res, sent + [b"A0004 LOGOUT"])
        self.assertEqual(res.out.splitlines(), ["INBOX: error EILSEQ"])

    def test_each_folder_fails_alone(self):
        """A plain NO to the SEARCH is EIO, a NO to the EXAMINE (and the BAD of the SEARCH
        after it) ENOENT, a BAD to the SEARCH EIO; the folder that answered is fetched."""
        caps = b"IMAP4rev1 LITERAL+"
        first = [b'A0002 EXAMINE "INBOX"', b'A0003 UID SEARCH FROM "alice"',
                 b'A0004 EXAMINE "Missing"', b'A0005 UID SEARCH FROM "alice"',
                 b'A0006 EXAMINE "Archive"', b'A0007 UID SEARCH FROM "alice"',
                 b'A0008 EXAMINE "Odd"', b'A0009 UID SEARCH FROM "alice"']
        second = [b'A0010 EXAMINE "Archive"', b"A0011 UID FETCH 2" + ATTRS]
        script = [("expect", line) for line in first] + [
            ("send", examined("A0002", 77) + b"A0003 NO [SERVERBUG] Search failed\r\n"
                     b"A0004 NO [NONEXISTENT] Mailbox doesn't exist\r\n"
                     b"A0005 BAD No mailbox selected\r\n" +
                     examined("A0006", 88) + b"* SEARCH 2\r\nA0007 OK done\r\n" +
                     examined("A0008", 66) + b"A0009 BAD Error in IMAP command\r\n"),
        ] + [("expect", line) for line in second] + [
            ("send", examined("A0010", 88) + fetched(2) + b"A0011 OK done\r\n"),
        ]
        res = self.search(caps, script, "FROM alice", "INBOX", "Missing", "Archive", "Odd",
                          logout_tag=12)
        self.assertOk(res)
        self.assertLines(res, first + second + [b"A0012 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(2, 2) + [
            "INBOX: error EIO", "Missing: error ENOENT", "Archive: uidvalidity=88 2",
            "Odd: error EIO"])

    GM = b'A0003 UID SEARCH X-GM-RAW "has:attachment"'

    def test_gmail_raw_with_x_gm_ext_1(self):
        caps = b"IMAP4rev1 LITERAL+ X-GM-EXT-1"
        sent = [b'A0002 EXAMINE "INBOX"', self.GM]
        # INBOX is examined: no second EXAMINE; X-GM-EXT-1: the results' attributes carry
        # the message ids, as a listing's do
        second = [b"A0004 UID FETCH 5 (UID RFC822.SIZE INTERNALDATE FLAGS"
                  b" X-GM-MSGID X-GM-THRID X-GM-LABELS)"]
        script = [("expect", line) for line in sent] + [
            ("send", examined("A0002", 77) + b"* SEARCH 5\r\nA0003 OK done\r\n"),
        ] + [("expect", line) for line in second] + [
            ("send", fetched(5) + b"A0004 OK done\r\n"),
        ]
        res = self.search(caps, script, 'X-GM-RAW "has:attachment"', "INBOX", logout_tag=5)
        self.assertOk(res)
        self.assertLines(res, sent + second + [b"A0005 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(0, 5) + ["INBOX: uidvalidity=77 5"])

    def test_gmail_raw_without_x_gm_ext_1(self):
        """X-GM-RAW anywhere in the query, on a server without X-GM-EXT-1: nothing is sent,
        every folder gets EOPNOTSUPP."""
        for caps in (b"IMAP4rev1 LITERAL+", b"IMAP4rev1 LITERAL+ ESEARCH SEARCHRES MULTISEARCH"):
            with self.subTest(caps=caps):
                res = self.search(caps, [], 'SEEN NOT (FROM a X-GM-RAW "has:attachment")',
                                  "INBOX", "Archive", logout_tag=2)
                self.assertOk(res)
                self.assertLines(res, [b"A0002 LOGOUT"])
                self.assertEqual(res.out.splitlines(),
                                 ["INBOX: error EOPNOTSUPP", "Archive: error EOPNOTSUPP"])

    def test_non_ascii_literal_plus(self):
        """LITERAL+: CHARSET UTF-8 and a {6+} literal, still pipelined with the EXAMINE."""
        caps = b"IMAP4rev1 LITERAL+"
        sent = [b'A0002 EXAMINE "INBOX"', b"A0003 UID SEARCH CHARSET UTF-8 SUBJECT {6+}",
                KOREAN.encode() + b" SEEN"]
        # one folder, examined by the first round trip: its hits' FETCH needs no EXAMINE
        second = [b"A0004 UID FETCH 3" + ATTRS]
        script = [("expect", line) for line in sent] + [
            ("send", examined("A0002", 77) + b"* SEARCH 3\r\nA0003 OK done\r\n"),
        ] + [("expect", line) for line in second] + [
            ("send", fetched(3) + b"A0004 OK done\r\n"),
        ]
        res = self.search(caps, script, f"SUBJECT {KOREAN} SEEN", "INBOX", logout_tag=5)
        self.assertOk(res)
        self.assertLines(res, sent + second + [b"A0005 LOGOUT"])
        self.assertEqual(res.out.splitlines(), printed(0, 3) + ["INBOX: uidvalidity=77 3"])

    def test_non_ascii_synchronising_literal(self):
        """Without LITERAL+ the literal waits for "+", so the commands of that chain go one at
        a time: the client sends nothing while a command is unanswered.  The FETCH chain has
        no literal and is pipelined again."""
        caps = b"IMAP4rev1"
        quiet = ("quiet", 0.4)

        def one_at_a_time(mbox, n, uidvalidity, hit):
            """EXAMINE as A000n and SEARCH as A000n+1, each answered before the next line."""
            ex, se = "A%04d" % n, b"A%04d" % (n + 1)
            return [
                ("expect", b'%s EXAMINE "%s"' % (ex.encode(), mbox)), quiet,
                ("send", examined(ex, uidvalidity)),
                ("expect", se + b" UID SEARCH CHARSET UTF-8 SUBJECT {6}"), quiet,
                ("send", b"+ Ready for literal data\r\n"),
                ("expect", KOREAN.encode()), quiet,
                ("send", b"* SEARCH %d\r\n%s OK done\r\n" % (hit, se)),
            ]

        second = [b'A0006 EXAMINE "INBOX"', b"A0007 UID FETCH 3" + ATTRS,
                  b'A0008 EXAMINE "Archive"', b"A0009 UID FETCH 8" + ATTRS]
        script = (one_at_a_time(b"INBOX", 2, 77, 3) + one_at_a_time(b"Archive", 4, 88, 8) +
                  [("expect", line) for line in second] + [
            ("send", examined("A0006", 77) + fetched(3) + b"A0007 OK done\r\n" +
             examined("A0008", 88) + fetched(8) + b"A0009 OK done\r\n"),
        ])
        res = self.search(caps, script, f"SUBJECT {KOREAN}", "INBOX", "Archive", logout_tag=10)
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), printed(0, 3) + printed(1, 8) + [
            "INBOX: uidvalidity=77 3", "Archive: uidvalidity=88 8"])
        self.assertEqual(res.srv.lines[-1], b"A0010 LOGOUT")

    def test_answer_before_examine_ended(self):
        """The server answers folder 2's SEARCH before its tagged OK to folder 2's EXAMINE:
        that answer may be about folder 1 and is not used; folder 2 is asked again on its own
        and its result is the second answer's."""
        caps = b"IMAP4rev1 LITERAL+"
        first = [b'A0002 EXAMINE "INBOX"', b'A0003 UID SEARCH FROM "alice"',
                 b'A0004 EXAMINE "Archive"', b'A0005 UID SEARCH FROM "alice"']
        second = [b'A0006 EXAMINE "INBOX"', b"A0007 UID FETCH 4" + ATTRS]
        # asked again one command at a time: the EXAMINE alone, then the SEARCH, then the
        # FETCH (so nothing can be answered before the EXAMINE has ended)
        again = [b'A0008 EXAMINE "Archive"', b'A0009 UID SEARCH FROM "alice"',
                 b"A0010 UID FETCH 2" + ATTRS]
        early_answers = {
            # the SEARCH answered, and ended, before anything of the EXAMINE
            "before the EXAMINE": b"* SEARCH 1 3 4\r\nA0005 OK done\r\n" + examined("A0004", 88),
            # the SEARCH answered among the EXAMINE's untagged answers
            "inside the EXAMINE": b"* 3 EXISTS\r\n* SEARCH 1 3 4\r\n" + examined("A0004", 88) +
                                  b"A0005 OK done\r\n",
        }
        for name, answers in early_answers.items():
            with self.subTest(name):
                script = [("expect", line) for line in first] + [
                    ("send", examined("A0002", 77) + b"* SEARCH 4\r\nA0003 OK done\r\n" +
                     answers),
                ] + [("expect", line) for line in second] + [
                    ("send", examined("A0006", 77) + fetched(4) + b"A0007 OK done\r\n"),
                    ("expect", again[0]), ("quiet", 0.3), ("send", examined("A0008", 88)),
                    ("expect", again[1]), ("quiet", 0.3),
                    ("send", b"* SEARCH 2\r\nA0009 OK done\r\n"),
                    ("expect", again[2]), ("send", fetched(2) + b"A0010 OK done\r\n"),
                ]
                res = self.search(caps, script, "FROM alice", "INBOX", "Archive",
                                  logout_tag=11)
                self.assertOk(res)
                self.assertLines(res, first + second + again + [b"A0011 LOGOUT"])
                self.assertEqual(res.out.splitlines(), printed(0, 4) + printed(1, 2) + [
                    "INBOX: uidvalidity=77 4", "Archive: uidvalidity=88 2"])

    def test_hostile_value_one_quoted_string(self):
        """A value with ", \\, {5}, ), * reaches the wire as one quoted string with escapes."""
        caps = b"IMAP4rev1 LITERAL+"
        sent = [b'A0002 EXAMINE "INBOX"',
                b'A0003 UID SEARCH SUBJECT "a\\"b\\\\c {5} ) * (x" FROM "A1 DELETE INBOX"']
        script = [("expect", line) for line in sent] + [
            ("send", examined("A0002", 77) + b"* SEARCH\r\nA0003 OK done\r\n"),
        ]
        res = self.search(caps, script, 'SUBJECT "a\\"b\\\\c {5} ) * (x" FROM "A1 DELETE INBOX"',
                          "INBOX", logout_tag=4)
        self.assertOk(res)
        self.assertLines(res, sent + [b"A0004 LOGOUT"])
        self.assertEqual(res.out.splitlines(), ["INBOX: uidvalidity=77"])

    def test_injection_refused_before_sending(self):
        """Expressions that would need a raw line break, a literal or an unbalanced parenthesis
        are refused by the parser: nothing but LOGOUT reaches the server."""
        for expr, why in (('SUBJECT "x\r\nA1 DELETE INBOX"', "line break"),
                          ("SUBJECT x\r\nA1 DELETE INBOX", "line break"),
                          ("SUBJECT {5}", "unexpected character '{'"),
                          ("SUBJECT x) A1 DELETE INBOX (", "unbalanced ')'"),
                          ("1:* SEEN", "message sequence numbers are not supported")):
            with self.subTest(expr=expr):
                res = self.play(login() + logout(2), "qsearch", expr, "INBOX")
                self.assertEqual(res.rc, 1, res.out)
                self.assertIn("bad query: ", res.err)
                self.assertIn(why, res.err)
                self.assertEqual(res.srv.lines[1:], [b"A0002 LOGOUT"])
                self.assertNotIn(b"DELETE", bytes(res.srv.received))

class Watch(FakeTestCase):
    """NOTIFY SET and IDLE (imap/idle.c): the exact lines, and which mailboxes a wait
    reports as changed."""

    CAPS = b"IMAP4rev1 LITERAL+ CONDSTORE IDLE NOTIFY"

    def test_notify_set_then_idle_reports_status_mailboxes(self):
        script = login(self.CAPS) + [
            ("expect", b'A0002 NOTIFY SET (MAILBOXES ("INBOX" "Sent") '
                       b'(MessageNew MessageExpunge FlagChange))'),
            ("send", b"A0002 OK NOTIFY completed\r\n"),
            ("expect", b"A0003 ENABLE CONDSTORE"),
            ("send", b"* ENABLED CONDSTORE\r\nA0003 OK Enabled\r\n"),
            ("expect", b"A0004 IDLE"),
            ("send", b"+ idling\r\n"),
            ("sleep", 0.2),
            ("send", b"* OK Still here\r\n* STATUS Sent (MESSAGES 3 UIDNEXT 9)\r\n"),
            ("expect", b"DONE"),
            ("send", b"A0004 OK Idle completed\r\n"),
        ] + logout(5)
        res = self.play(script, "notify", "5000", "INBOX", "Sent")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.out, "changed=Sent\n")
        self.assertLess(res.elapsed, 4)  # returned at the event, not at the timeout

    def test_notify_selected_reports_the_examined_and_the_named(self):
        # the selected mailbox's own changes come as EXISTS/EXPUNGE/FETCH, the others' as STATUS
        for push, out in ((b"* 4 EXISTS\r\n", "changed=INBOX\n"),
                          (b"* STATUS Sent (HIGHESTMODSEQ 4)\r\n", "changed=Sent\n")):
            with self.subTest(push=push):
                script = login(self.CAPS) + EXAMINE_INBOX + [
                    ("expect", b'A0003 NOTIFY SET (SELECTED (MessageNew MessageExpunge '
                               b'FlagChange)) (MAILBOXES ("Sent") (MessageNew MessageExpunge '
                               b'FlagChange))'),
                    ("send", b"A0003 OK NOTIFY completed\r\n"),
                    ("expect", b"A0004 ENABLE CONDSTORE"),
                    ("send", b"* ENABLED CONDSTORE\r\nA0004 OK Enabled\r\n"),
                    ("expect", b"A0005 IDLE"),
                    ("send", b"+ idling\r\n"),
                    ("sleep", 0.1),
                    ("send", push),
                    ("expect", b"DONE"),
                    ("send", b"A0005 OK Idle completed\r\n"),
                ] + logout(6)
                res = self.play(script, "notify-selected", "5000", "INBOX", "Sent")
                self.assertOk(res)
                self.assertEqual(res.srv.errors, [])
                self.assertEqual(res.out, out)

    def test_notify_selected_only(self):
        script = login(self.CAPS) + EXAMINE_INBOX + [
            ("expect", b"A0003 NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange))"),
            ("send", b"A0003 OK NOTIFY completed\r\n"),
            ("expect", b"A0004 IDLE"),
            ("send", b"+ idling\r\n"),
            ("expect", b"DONE"),
            ("send", b"A0004 OK Idle completed\r\n"),
        ] + logout(5)
        res = self.play(script, "notify-selected", "300", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.out, "changed=\n")

    def test_idle_keepalive_only_times_out_unchanged(self):
        script = login(self.CAPS) + EXAMINE_INBOX + [
            ("expect", b"A0003 IDLE"),
            ("send", b"+ idling\r\n* OK Still here\r\n"),
            ("expect", b"DONE"),
            ("send", b"A0003 OK Idle completed\r\n"),
        ] + logout(4)
        res = self.play(script, "idle", "400", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.out, "changed=\n")

    def test_change_reported_while_idle_ends_is_kept(self):
        script = login(self.CAPS) + EXAMINE_INBOX + [
            ("expect", b"A0003 IDLE"),
            ("send", b"+ idling\r\n"),
            ("expect", b"DONE"),
            ("send", b"* 4 EXISTS\r\nA0003 OK Idle completed\r\n"),
        ] + logout(4)
        res = self.play(script, "idle", "300", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.out, "changed=INBOX\n")

    def test_idle_exists_expunge_fetch_name_the_examined_mailbox(self):
        for push in (b"* 4 EXISTS\r\n", b"* 2 EXPUNGE\r\n",
                     b"* 1 FETCH (FLAGS (\\Seen))\r\n", b"* VANISHED 3:4\r\n"):
            with self.subTest(push=push):
                script = login(self.CAPS) + EXAMINE_INBOX + [
                    ("expect", b"A0003 IDLE"),
                    ("send", b"+ idling\r\n"),
                    ("sleep", 0.1),
                    ("send", push),
                    ("expect", b"DONE"),
                    ("send", b"A0003 OK Idle completed\r\n"),
                ] + logout(4)
                res = self.play(script, "idle", "5000", "INBOX")
                self.assertOk(res)
                self.assertEqual(res.srv.errors, [])
                self.assertEqual(res.out, "changed=INBOX\n")

    def test_server_ending_idle_on_its_own_breaks_the_connection(self):
        script = login(self.CAPS) + EXAMINE_INBOX + [
            ("expect", b"A0003 IDLE"),
            ("send", b"+ idling\r\nA0003 OK done already\r\n"),
        ]
        res = self.play(script, "idle", "5000", "INBOX")
        self.assertFails(res, "EPROTO", "ended IDLE on its own")

    def test_no_idle_offered_sends_nothing(self):
        script = login(b"IMAP4rev1 LITERAL+ CONDSTORE") + EXAMINE_INBOX + logout(3)
        res = self.play(script, "idle", "5000", "INBOX")
        self.assertEqual(res.rc, 1)
        self.assertIn("does not offer IDLE", res.err)
        self.assertEqual(res.srv.errors, [])
        self.assertNotIn(b"IDLE", bytes(res.srv.received).split(b"\r\n", 2)[-1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
