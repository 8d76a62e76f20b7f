#!/usr/bin/python3
"""Scripted fake-server tests of OAuth2 login (meson suite 'fake'): OAUTHBEARER (RFC 7628) and
XOAUTH2, with and without SASL-IR, the error challenge and its dummy answer, the status and
scope in the error line, and the access token absent from everything logged.

Each test asserts the EXACT lines the client sent (tests/imap/fake_server.py).  The token
reaches imap_client_tool through IMAPFS_TEST_PASSWORD (--auth oauth2), never argv.
"""
import base64
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_case  # noqa: E402
from fake_case import FakeTestCase, logout  # noqa: E402

USER = fake_case.USER  # "mike"
TOKEN = "ya29.a0AfB_byC-Tok3n.with~odd+chars/="
OAUTH = ("--auth", "oauth2")


def b64(raw):
    return base64.b64encode(raw)


XOAUTH2_IR = b64(b"user=" + USER.encode() + b"\x01auth=Bearer " + TOKEN.encode() + b"\x01\x01")
OAUTHBEARER_IR = b64(b"n,a=" + USER.encode() + b",\x01auth=Bearer " + TOKEN.encode() +
                     b"\x01\x01")


def setUpModule():
    fake_case.setUpModule()


class OAuth2(FakeTestCase):
    def run_oauth(self, script, *cmd, **kw):
        kw.setdefault("password", TOKEN)
        kw["extra"] = OAUTH + tuple(kw.get("extra", ()))
        res = self.play(script, *cmd, **kw)
        self.assertTokenNotLogged(res)
        return res

    def assertDialogue(self, res, lines, trace):
        """Logged in, after exactly these client lines (LOGOUT last), the trace redacted."""
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines, lines)
        self.assertIn(trace, res.err)

    def assertTokenNotLogged(self, res):
        """The token, its base64 and the base64 initial responses appear in no log line."""
        for secret in (TOKEN, XOAUTH2_IR.decode(), OAUTHBEARER_IR.decode(),
                       base64.b64encode(TOKEN.encode()).decode()):
            self.assertNotIn(secret, res.err)
            self.assertNotIn(secret, res.out)
        # and the bearer token never travelled outside a (base64) SASL response
        self.assertNotIn(TOKEN.encode(), bytes(res.srv.received))

    def test_xoauth2_with_sasl_ir(self):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE XOAUTH2 " + XOAUTH2_IR),
            ("send", b"A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        ] + logout(2)
        self.assertDialogue(self.run_oauth(script, "connect"),
                            [b"A0001 AUTHENTICATE XOAUTH2 " + XOAUTH2_IR, b"A0002 LOGOUT"],
                            "C: A0001 AUTHENTICATE XOAUTH2 <credentials redacted>")

    def test_xoauth2_without_sasl_ir(self):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE XOAUTH2"),
            ("send", b"+ \r\n"),
            ("expect", XOAUTH2_IR),
            ("send", b"A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        ] + logout(2)
        self.assertDialogue(self.run_oauth(script, "connect"),
                            [b"A0001 AUTHENTICATE XOAUTH2", XOAUTH2_IR, b"A0002 LOGOUT"],
                            "C: <credentials redacted>")

    def test_oauthbearer_preferred_with_sasl_ir(self):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER] hi\r\n"),
            ("expect", b"A0001 AUTHENTICATE OAUTHBEARER " + OAUTHBEARER_IR),
            ("send", b"A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        ] + logout(2)
        self.assertDialogue(self.run_oauth(script, "connect"),
                            [b"A0001 AUTHENTICATE OAUTHBEARER " + OAUTHBEARER_IR,
                             b"A0002 LOGOUT"],
                            "C: A0001 AUTHENTICATE OAUTHBEARER <credentials redacted>")

    def test_oauthbearer_without_sasl_ir(self):
        script = [
            ("send", b"* OK ready\r\n"),
            ("expect", b"A0001 CAPABILITY"),
            ("send", b"* CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER AUTH=PLAIN\r\nA0001 OK done\r\n"),
            ("expect", b"A0002 AUTHENTICATE OAUTHBEARER"),
            ("send", b"+ \r\n"),
            ("expect", OAUTHBEARER_IR),
            ("send", b"A0002 OK Logged in\r\n"),
            ("expect", b"A0003 CAPABILITY"),
            ("send", b"* CAPABILITY IMAP4rev1\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.run_oauth(script, "connect")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines[1:3], [b"A0002 AUTHENTICATE OAUTHBEARER", OAUTHBEARER_IR])

    def test_oauthbearer_user_is_a_saslname(self):
        user = "a,b=c@example.com"
        ir = b64(b"n,a=a=2Cb=3Dc@example.com,\x01auth=Bearer " + TOKEN.encode() + b"\x01\x01")
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE OAUTHBEARER " + ir),
            ("send", b"A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        ] + logout(2)
        res = self.run_oauth(script, "connect", user=user)
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])

    def test_oauthbearer_error_challenge(self):
        err = b'{"status":"invalid_token","scope":"https://mail.example/imap","schemes":"bearer"}'
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER AUTH=XOAUTH2] hi\r\n"),
            ("expect", b"A0001 AUTHENTICATE OAUTHBEARER " + OAUTHBEARER_IR),
            ("send", b"+ " + b64(err) + b"\r\n"),
            ("expect", b"AQ=="),  # RFC 7628 3.2.3: a single %x01, base64
            ("send", b"A0001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        ]
        res = self.run_oauth(script, "connect")
        self.assertFails(res, "EACCES",
                         "login failed: [AUTHENTICATIONFAILED] Authentication failed. "
                         "(OAUTHBEARER: status invalid_token, scope https://mail.example/imap)")
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines,
                         [b"A0001 AUTHENTICATE OAUTHBEARER " + OAUTHBEARER_IR, b"AQ=="])
        self.assertIn("C: <SASL response redacted>", res.err)

    def test_xoauth2_error_challenge(self):
        # Gmail's answer to an expired token; XOAUTH2's dummy response is an empty line
        err = b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}'
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE XOAUTH2 " + XOAUTH2_IR),
            ("send", b"+ " + b64(err) + b"\r\n"),
            ("expect", b""),
            ("send", b"A0001 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n"),
        ]
        res = self.run_oauth(script, "connect")
        self.assertFails(res, "EACCES",
                         "login failed: [AUTHENTICATIONFAILED] Invalid credentials (Failure) "
                         "(XOAUTH2: status 400, scope https://mail.google.com/)")
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines, [b"A0001 AUTHENTICATE XOAUTH2 " + XOAUTH2_IR, b""])

    def test_error_challenge_without_sasl_ir(self):
        err = b'{"status":"invalid_token"}'
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE OAUTHBEARER"),
            ("send", b"+ \r\n"),
            ("expect", OAUTHBEARER_IR),
            ("send", b"+ " + b64(err) + b"\r\n"),
            ("expect", b"AQ=="),
            ("send", b"A0001 NO Authentication failed.\r\n"),
        ]
        res = self.run_oauth(script, "connect")
        self.assertFails(res, "EACCES", "login failed: Authentication failed. "
                                        "(OAUTHBEARER: status invalid_token)")
        self.assertEqual(res.srv.errors, [])

    def test_hostile_challenge_text(self):
        # not base64 JSON at all, with control characters: still answered, nothing shown raw
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE XOAUTH2 " + XOAUTH2_IR),
            ("send", b"+ " + b64(b'{"status":"\\u001b[31mred\\n","scope":') + b"\r\n"),
            ("expect", b""),
            ("send", b"A0001 NO failed\r\n"),
        ]
        res = self.run_oauth(script, "connect")
        self.assertFails(res, "EACCES", "login failed: failed (XOAUTH2: status not given)")
        self.assertNotIn("\x1b", res.err)

    def test_second_challenge_is_refused(self):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE XOAUTH2 " + XOAUTH2_IR),
            ("send", b"+ " + b64(b'{"status":"401"}') + b"\r\n"),
            ("expect", b""),
            ("send", b"+ " + b64(b'{"status":"401"}') + b"\r\n"),
        ]
        res = self.run_oauth(script, "connect")
        self.assertFails(res, "EPROTO", "unexpected SASL challenge from 127.0.0.1 during login")
        self.assertEqual(res.srv.lines, [b"A0001 AUTHENTICATE XOAUTH2 " + XOAUTH2_IR, b""])

    def test_server_without_oauth_mechanism(self):
        script = [("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n")]
        res = self.run_oauth(script, "connect")
        self.assertFails(res, "EOPNOTSUPP",
                         "server 127.0.0.1 offers neither OAUTHBEARER nor XOAUTH2, so "
                         "auth = oauth2 cannot log in there")
        self.assertEqual(res.srv.lines, [])

    def test_token_with_line_break_never_sent(self):
        script = [("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready\r\n")]
        res = self.run_oauth(script, "connect", password="tok\r\nA9 DELETE INBOX")
        self.assertFails(res, "EINVAL", "cannot log in with XOAUTH2: the access token is empty "
                                        "or contains spaces or control characters")
        self.assertEqual(res.srv.lines, [])

    def test_password_auth_never_uses_oauth(self):
        # auth = password on a server offering everything: PLAIN as before
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER AUTH=XOAUTH2 "
                     b"AUTH=PLAIN] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE PLAIN " + fake_case.PLAIN_B64),
            ("send", b"A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        ] + logout(2)
        res = self.play(script, "connect")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])

    def test_oauth_over_implicit_tls(self):
        script = [
            ("send", b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER] ready\r\n"),
            ("expect", b"A0001 AUTHENTICATE OAUTHBEARER " + OAUTHBEARER_IR),
            ("send", b"A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        ] + logout(2)
        res = self.run_oauth(script, "connect", tls="implicit", server_tls="implicit",
                             ca=fake_case.PKI["ca"])
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
