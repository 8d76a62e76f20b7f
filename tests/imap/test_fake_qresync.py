#!/usr/bin/python3
"""Scripted fake-server tests of QRESYNC (RFC 7162; meson suite 'fake'): ENABLE QRESYNC sent
right after the login without waiting for its answer, and imap_examine_qresync re-listing a
mailbox in one round trip: EXAMINE (QRESYNC (uidvalidity modseq)) and UID FETCH <uidnext>:*
pipelined; VANISHED (EARLIER) and the EXAMINE's flag changes used, later reports left to the
next listing; another UIDVALIDITY, answers before the EXAMINE ended, and a server that
refuses the parameter.

Each script expects every line the client sends before answering any: a client that waited
for an answer between them would stall the script, and the test fails.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_case  # noqa: E402
from fake_case import FakeTestCase, login, logout  # noqa: E402

CAPS = b"IMAP4rev1 LITERAL+ ESEARCH ENABLE CONDSTORE QRESYNC"
ENABLE = ("expect", b"A0002 ENABLE QRESYNC")
ENABLED = b"* ENABLED QRESYNC\r\nA0002 OK Enabled\r\n"
EXAMINE = ("expect", b'A0003 EXAMINE "INBOX" (QRESYNC (77 100))')
FETCH_NEW = ("expect", b"A0004 UID FETCH 9:* (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)")
NEW9 = (b'* 5 FETCH (UID 9 RFC822.SIZE 42 INTERNALDATE "01-Jan-1970 00:00:09 +0000"'
        b" FLAGS (\\Recent) MODSEQ (130))\r\n")


def setUpModule():
    fake_case.setUpModule()


def examined(uidvalidity=77, changes=b"", tag=b"A0003"):
    """An EXAMINE (QRESYNC ...)'s answer: its status, then the changes since the modseq."""
    return (b"* FLAGS (\\Seen \\Flagged)\r\n* 5 EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n"
            b"* OK [UIDNEXT 10] ok\r\n* OK [HIGHESTMODSEQ 130] ok\r\n%s"
            b"%s OK [READ-ONLY] Examine completed\r\n" % (uidvalidity, changes, tag))


CHANGES = (b"* VANISHED (EARLIER) 3,5:6\r\n* VANISHED (EARLIER) 2\r\n"
           b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Flagged) MODSEQ (120))\r\n"
           b"* 5 FETCH (UID 9 FLAGS (\\Recent) MODSEQ (130))\r\n")


# what the tool prints for CHANGES and NEW9: the EXAMINE's flag changes first, then new mail
RESYNCED = [
    "changed uid=1 flags=\\Seen,\\Flagged",
    "changed uid=9 flags=\\Recent",
    "uid=9 size=42 date=9 modseq=130 flags=\\Recent",
    "vanished=2:3,5:6",
    "uidvalidity=77 uidnext=10 exists=5 highestmodseq=130",
]


class Resync(FakeTestCase):
    def test_enable_and_resync_in_one_round_trip(self):
        """ENABLE, EXAMINE and FETCH all reach the server before it answers anything; the
        EXAMINE's flag changes come first, then the new mail; a flag change and an expunge
        the server reports after the EXAMINE ended are not used."""
        script = login(CAPS) + [
            ENABLE, EXAMINE, FETCH_NEW,
            ("send", ENABLED + examined(changes=CHANGES) + NEW9 +
             b"* 2 FETCH (UID 4 FLAGS (\\Deleted) MODSEQ (131))\r\n* VANISHED 4\r\n"
             b"A0004 OK Fetch completed\r\n"),
        ] + logout(5)
        res = self.play(script, "resync", "INBOX", "77", "100", "9")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), RESYNCED)
        self.assertEqual(res.srv.errors, [])

    def test_no_enable_without_qresync(self):
        """A server without QRESYNC gets no ENABLE, and imap_examine_qresync sends nothing."""
        script = login() + logout(2)
        res = self.play(script, "resync", "INBOX", "77", "100", "9")
        self.assertFails(res, "EINVAL", "QRESYNC is not enabled")
        self.assertEqual(res.srv.errors, [])

    def test_other_uidvalidity_delivers_nothing(self):
        """The folder was recreated: the new mail the FETCH returns belongs to another life,
        and nothing is delivered (-ESTALE: the caller lists it afresh)."""
        script = login(CAPS) + [
            ENABLE, EXAMINE, FETCH_NEW,
            ("send", ENABLED + examined(uidvalidity=78) + NEW9 + b"A0004 OK done\r\n"),
        ] + logout(5)
        res = self.play(script, "resync", "INBOX", "77", "100", "9")
        self.assertFails(res, "ESTALE", "")
        self.assertEqual(res.out.splitlines(),
                         ["uidvalidity=78 uidnext=10 exists=5 highestmodseq=130"])
        self.assertEqual(res.srv.lines[-1], b"A0005 LOGOUT")

    def test_fetch_answered_before_examine(self):
        """Answers to the FETCH before the EXAMINE's tagged OK may be about another mailbox:
        not used; the FETCH is asked again once the EXAMINE has ended."""
        wrong = (b'* 1 FETCH (UID 9 RFC822.SIZE 99 INTERNALDATE "01-Jan-1970 00:00:01 +0000"'
                 b" FLAGS () MODSEQ (1))\r\n")
        script = login(CAPS) + [
            ENABLE, EXAMINE, FETCH_NEW,
            ("send", ENABLED + wrong + b"A0004 OK done\r\n" + examined(changes=CHANGES)),
            ("expect", b"A0005 UID FETCH 9:* (UID RFC822.SIZE INTERNALDATE FLAGS MODSEQ)"),
            ("send", NEW9 + b"A0005 OK done\r\n"),
        ] + logout(6)
        res = self.play(script, "resync", "INBOX", "77", "100", "9")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), RESYNCED)
        self.assertEqual(res.srv.errors, [])

    def test_refused_parameter(self):
        """A server that offers QRESYNC but will not enable it, then says BAD to the
        parameter: -EOPNOTSUPP, and the connection stays usable."""
        script = login(CAPS) + [
            ENABLE, EXAMINE, FETCH_NEW,
            ("send", b"* ENABLED\r\nA0002 OK Enabled\r\n"
                     b"A0003 BAD QRESYNC not enabled\r\nA0004 BAD No mailbox selected\r\n"),
        ] + logout(5)
        res = self.play(script, "resync", "INBOX", "77", "100", "9")
        self.assertFails(res, "EOPNOTSUPP", "refused EXAMINE (QRESYNC")
        self.assertEqual(res.srv.lines[-1], b"A0005 LOGOUT")
        self.assertEqual(res.srv.errors, [])

    def test_hostile_vanished(self):
        """A VANISHED set spanning every UID is one range, not four billion numbers; a
        malformed one fails the connection cleanly."""
        script = login(CAPS) + [
            ENABLE, EXAMINE, FETCH_NEW,
            ("send", ENABLED + examined(changes=b"* VANISHED (EARLIER) 4294967295:1\r\n") +
             b"A0004 OK done\r\n"),
        ] + logout(5)
        res = self.play(script, "resync", "INBOX", "77", "100", "9")
        self.assertOk(res)
        self.assertIn("vanished=1:4294967295", res.out.splitlines())
        script = login(CAPS) + [
            ENABLE, EXAMINE, FETCH_NEW,
            ("send", ENABLED + examined(changes=b"* VANISHED (EARLIER) 1:*\r\n") +
             b"A0004 OK done\r\n"),
        ]
        res = self.play(script, "resync", "INBOX", "77", "100", "9")
        self.assertFails(res, "EPROTO", "malformed VANISHED")


if __name__ == "__main__":
    unittest.main(verbosity=2)
