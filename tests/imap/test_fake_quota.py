#!/usr/bin/python3
"""GETQUOTAROOT (imap/quota.c) against scripted servers: the exact line sent, how several quota
roots, none, a NO and a server without QUOTA come out, and hostile figures ignored.  Needs
IMAP_CLIENT_TOOL (set by meson).  Stdlib only."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_fake  # noqa: E402
from test_fake import FakeTestCase, login, logout  # noqa: E402

CAPS = b"IMAP4rev1 LITERAL+ QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"


def setUpModule():
    test_fake.setUpModule()


def tearDownModule():
    test_fake.tearDownModule()


def ask(answer):
    """GETQUOTAROOT "INBOX" as A0002, answered with the untagged lines given and OK."""
    return [("expect", b'A0002 GETQUOTAROOT "INBOX"'),
            ("send", b"".join(l + b"\r\n" for l in answer) + b"A0002 OK Getquotaroot done\r\n")]


class Quota(FakeTestCase):
    def test_one_root(self):
        res = self.play(login(CAPS) + ask([b'* QUOTAROOT "INBOX" ""',
                                           b'* QUOTA "" (STORAGE 10 512 MESSAGE 3 1000)'])
                        + logout(3), "quota", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.out, "roots=1 storage=10/512 messages=3/1000\n")

    def test_several_roots_the_tightest_of_each(self):
        # storage: a leaves 100, b leaves 40 -> b; messages: only a limits them; c was never
        # named a root of INBOX and is ignored
        res = self.play(login(CAPS) + ask([b'* QUOTAROOT INBOX a "b b"',
                                           b'* QUOTA a (STORAGE 100 200 MESSAGE 5 9)',
                                           b'* QUOTA "b b" (STORAGE 10 50)',
                                           b'* QUOTA c (STORAGE 0 1 MESSAGE 0 1)'])
                        + logout(3), "quota", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.out, "roots=2 storage=10/50 messages=5/9\n")

    def test_no_root(self):
        res = self.play(login(CAPS) + ask([b'* QUOTAROOT INBOX']) + logout(3), "quota", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.out, "roots=0\n")

    def test_hostile_figures_ignored(self):
        res = self.play(login(CAPS) + ask([
            b'* QUOTAROOT INBOX r',
            # over 64 bits, not numbers, a list for a name, a triple cut short
            b'* QUOTA r (STORAGE 99999999999999999999999 5 MESSAGE x 3 (A) 1 2 STORAGE 7)',
            b'* QUOTA r (STORAGE 900 100)',  # over the limit: full
            b'* QUOTA',
            b'* QUOTAROOT']) + logout(3), "quota", "INBOX")
        self.assertOk(res)
        self.assertEqual(res.out, "roots=1 storage=900/100\n")

    def test_no_answered(self):
        res = self.play(login(CAPS) + [
            ("expect", b'A0002 GETQUOTAROOT "INBOX"'),
            ("send", b"A0002 NO [NOPERM] Quota not available to you\r\n")] + logout(3),
            "quota", "INBOX")
        self.assertFails(res, "EACCES", "Quota not available")
        res = self.play(login(CAPS) + [
            ("expect", b'A0002 GETQUOTAROOT "INBOX"'),
            ("send", b"A0002 NO Mailbox doesn't exist\r\n")] + logout(3), "quota", "INBOX")
        self.assertFails(res, "ENOENT", "doesn't exist")

    def test_without_quota_nothing_is_sent(self):
        res = self.play(login(b"IMAP4rev1 LITERAL+") + logout(2), "quota", "INBOX")
        self.assertFails(res, "EOPNOTSUPP", "no QUOTA")
        self.assertEqual(res.srv.errors, [])
        self.assertNotIn(b"QUOTA", bytes(res.srv.received))


if __name__ == '__main__':
    unittest.main(verbosity=2)
