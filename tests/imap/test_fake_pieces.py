#!/usr/bin/python3
"""Scripted fake-server tests of fetching pieces of messages (imap/pieces.c; meson suite 'fake').

imap_client_tool's `pieces` (EXAMINE, then imap_uid_fetch_pieces) and `xpieces`
(imap_examine_fetch_pieces) run against a scripted server; each test asserts the EXACT lines
the client sent and what was delivered to the sink: the outline request, MIME and section
fetches, BINARY with a literal8 answer, BINARY.SIZE, the per-request refusals (NO [UNKNOWN-CTE],
NO [PARSE]) with the next pipelined request still served, a connection closed after a failed
FETCH, a UID after its body literal, partial fetches named by their origin, the EXAMINE gate,
and the bound on requests in flight.  Needs IMAP_CLIENT_TOOL in the environment (set by meson).
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_fake import FakeTestCase, login, logout  # noqa: E402
import test_fake  # noqa: E402

CAPS = b"IMAP4rev1 LITERAL+ BINARY"
EXAMINE = [
    ("expect", b'A0002 EXAMINE "INBOX"'),
    ("send", b"* 3 EXISTS\r\n* OK [UIDVALIDITY 77] ok\r\n* OK [UIDNEXT 9] ok\r\n"
             b"A0002 OK [READ-ONLY] done\r\n"),
]
BS = (b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 6 1)'
      b'("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL "BASE64" 8 NIL ("ATTACHMENT" '
      b'("FILENAME" "a.pdf"))) "MIXED" ("BOUNDARY" "xx"))')
BS_CANON = ('(("text" "plain" ("CHARSET" "utf-8") NIL NIL "7bit" 6 1 NIL NIL)'
            '("application" "pdf" ("NAME" "a.pdf") NIL NIL "base64" 8 NIL ("attachment" '
            '("FILENAME" "a.pdf"))) "mixed" ("BOUNDARY" "xx") NIL)')
HEADER = b"Subject: hi\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n"


def lit(data, eight=False):
    return (b"~{%d}\r\n" if eight else b"{%d}\r\n") % len(data) + data


def esc(data):
    """The tool's escaping of delivered bytes."""
    out = []
    for c in data:
        if c == 0x5c:
            out.append("\\\\")
        elif c == 0x0d:
            out.append("\\r")
        elif c == 0x0a:
            out.append("\\n")
        elif c < 0x20 or c >= 0x7f:
            out.append("\\x%02x" % c)
        else:
            out.append(chr(c))
    return "".join(out)


def delivered(req, item, data):
    return ["begin req=%d item=%d %d" % (req, item, len(data)),
            "end req=%d item=%d got=%d data=%s" % (req, item, len(data), esc(data))]


class Pieces(FakeTestCase):
    def run_pieces(self, script, *reqs, caps=CAPS, examine=True):
        pre = login(caps) + (EXAMINE if examine else [])
        return self.play(pre + script, "pieces", "INBOX", *reqs)

    def assertLines(self, res, *fetch_lines, last_tag):
        """The client sent exactly: login, EXAMINE, fetch_lines, LOGOUT."""
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.srv.lines[1:],
                         [b'A0002 EXAMINE "INBOX"', *fetch_lines, b"A%04d LOGOUT" % last_tag])

    def test_outline(self):
        """The outline of a message in one command: BODYSTRUCTURE and the header block."""
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODYSTRUCTURE BODY.PEEK[HEADER])"),
            ("send", b"* 1 FETCH (UID 7 BODYSTRUCTURE " + BS + b" BODY[HEADER] " + lit(HEADER) +
             b")\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.run_pieces(script, "7+bs,header:")
        self.assertOk(res)
        self.assertLines(res, b"A0003 UID FETCH 7 (UID BODYSTRUCTURE BODY.PEEK[HEADER])",
                         last_tag=4)
        # the literal streams as it arrives; the structure once the response is whole
        self.assertEqual(res.out.splitlines(), delivered(0, 0, HEADER) + [
            "structure req=0 err=0 parts=2 " + BS_CANON, "result req=0 0"])

    def test_mime_and_sections(self):
        """MIME header and section fetches, answered in another order, in lower case, as a
        quoted string and as NIL (empty)."""
        mime = b"Content-Type: application/pdf\r\n\r\n"
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODY.PEEK[2.MIME] BODY.PEEK[2] BODY.PEEK[1] "
                       b"BODY.PEEK[1.HEADER])"),
            ("send", b'* 1 FETCH (UID 7 body[1] "hello!" BODY[2] ' + lit(b"JVBERi0=") +
             b" BODY[2.MIME] " + lit(mime) + b" BODY[1.HEADER] NIL)\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.run_pieces(script, "7,mime:2,body:2,body:1,header:1")
        self.assertOk(res)
        self.assertLines(res, b"A0003 UID FETCH 7 (UID BODY.PEEK[2.MIME] BODY.PEEK[2] "
                              b"BODY.PEEK[1] BODY.PEEK[1.HEADER])", last_tag=4)
        self.assertEqual(res.out.splitlines(),
                         delivered(0, 1, b"JVBERi0=") + delivered(0, 0, mime) +
                         delivered(0, 2, b"hello!") + delivered(0, 3, b"") + ["result req=0 0"])

    def test_binary_literal8_and_size(self):
        """BINARY.PEEK answered with a literal8 (NUL bytes and all), BINARY.SIZE a number."""
        data = b"%PDF\x00\x01\xff\r\n"
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BINARY.SIZE[2] BINARY.PEEK[2])"),
            ("send", b"* 1 FETCH (UID 7 BINARY.SIZE[2] 9 BINARY[2] " + lit(data, True) +
             b")\r\nA0003 OK done\r\n"),
        ] + logout(4)
        res = self.run_pieces(script, "7,size:2,binary:2")
        self.assertOk(res)
        self.assertLines(res, b"A0003 UID FETCH 7 (UID BINARY.SIZE[2] BINARY.PEEK[2])",
                         last_tag=4)
        self.assertEqual(res.out.splitlines(),
                         delivered(0, 1, data) + ["size req=0 item=0 9", "result req=0 0"])

    def test_binary_needs_capability(self):
        """A BINARY item on a server without BINARY: -EINVAL, and nothing is sent."""
        res = self.run_pieces(logout(3), "7,binary:1", caps=b"IMAP4rev1 LITERAL+")
        self.assertFails(res, "EINVAL", "does not offer BINARY")
        self.assertLines(res, last_tag=3)
        self.assertIn("result req=0 EINVAL", res.out)

    def test_invalid_requests_send_nothing(self):
        for req in ("7,body:1..2", "7,body:0", "7,body:01", "7,mime:", "0,body:1",
                    "7,header:1:0:10", "7,body:1a"):
            with self.subTest(req=req):
                res = self.run_pieces(logout(3), "8,body:1", req)
                self.assertFails(res, "EINVAL", "")
                self.assertLines(res, last_tag=3)

    def test_unknown_cte_then_next_request_ok(self):
        """NO [UNKNOWN-CTE] refuses that request alone (-EBADMSG: take the whole message);
        the next pipelined request (both were sent before any answer) is still served."""
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BINARY.PEEK[2])"),
            ("expect", b"A0004 UID FETCH 8 (UID BINARY.PEEK[1])"),
            ("send", b"A0003 NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding\r\n"
                     b"* 2 FETCH (UID 8 BINARY[1] ~{3}\r\nabc)\r\nA0004 OK done\r\n"),
        ] + logout(5)
        res = self.run_pieces(script, "7,binary:2", "8,binary:1")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), delivered(1, 0, b"abc") + [
            "result req=0 EBADMSG", "result req=1 0"])
        self.assertEqual(res.srv.errors, [])

    def test_parse_no_and_bad(self):
        """NO [PARSE] is -EBADMSG too; another NO is -ENOENT, BAD -EPROTO; each request has
        its own outcome and the connection stays usable (the LOGOUT follows)."""
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODY.PEEK[1])"),
            ("expect", b"A0004 UID FETCH 8 (UID BODY.PEEK[1])"),
            ("expect", b"A0005 UID FETCH 9 (UID BODY.PEEK[1])"),
            ("expect", b"A0006 UID FETCH 10 (UID BODY.PEEK[1])"),
            ("send", b"A0003 NO [PARSE] Invalid message\r\n"
                     b"A0004 NO Message expunged\r\n"
                     b"A0005 BAD Error in IMAP command\r\n"
                     b"* 4 FETCH (UID 10 BODY[1] \"ok\")\r\nA0006 OK done\r\n"),
        ] + logout(7)
        res = self.run_pieces(script, "7,body:1", "8,body:1", "9,body:1", "10,body:1")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), delivered(3, 0, b"ok") + [
            "result req=0 EBADMSG", "result req=1 ENOENT", "result req=2 EPROTO",
            "result req=3 0"])
        self.assertEqual(res.srv.lines[-1], b"A0007 LOGOUT")

    def test_connection_closed_after_failed_fetch(self):
        """Dovecot's imap_fetch_failure = disconnect-immediately: the server closes the
        connection in the middle of the second request; the first keeps its answer, the rest
        get -ECONNABORTED, and so does the call."""
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODY.PEEK[1])"),
            ("expect", b"A0004 UID FETCH 8 (UID BODY.PEEK[2])"),
            ("expect", b"A0005 UID FETCH 9 (UID BODY.PEEK[1])"),
            ("send", b"* 1 FETCH (UID 7 BODY[1] {2}\r\nok)\r\nA0003 OK done\r\n"
                     b"* 2 FETCH (UID 8 BODY[2] {100}\r\npartial"),
            ("close",),
        ]
        res = self.run_pieces(script, "7,body:1", "8,body:2", "9,body:1")
        self.assertFails(res, "ECONNABORTED", "")
        out = res.out.splitlines()
        # the cut literal got its begin but never its end
        self.assertEqual(out, delivered(0, 0, b"ok") + [
            "begin req=1 item=0 100", "result req=0 0", "result req=1 ECONNABORTED",
            "result req=2 ECONNABORTED"])

    def test_bye_after_failed_fetch(self):
        """The same with a BYE and no tagged answer."""
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODY.PEEK[1])"),
            ("send", b"* BYE FETCH for mailbox INBOX UID 7 failed to read message\r\n"),
            ("close",),
        ]
        res = self.run_pieces(script, "7,body:1")
        self.assertFails(res, "ECONNABORTED", "")
        self.assertEqual(res.out.splitlines(), ["result req=0 ECONNABORTED"])

    def test_uid_after_body_literal(self):
        """A FETCH whose UID comes after its literal: the literal is kept until the UID is
        known, then delivered."""
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODY.PEEK[1] BINARY.SIZE[1])"),
            ("send", b"* 1 FETCH (BODY[1] {5}\r\nhello BINARY.SIZE[1] 5 UID 7)\r\n"
                     b"A0003 OK done\r\n"),
        ] + logout(4)
        res = self.run_pieces(script, "7,body:1,size:1")
        self.assertOk(res)
        # once the response is whole, its values in their order
        self.assertEqual(res.out.splitlines(), delivered(0, 0, b"hello") +
                         ["size req=0 item=1 5", "result req=0 0"])

    def test_partial_named_by_origin(self):
        """BODY.PEEK[2]<0.4096> is answered as BODY[2]<0>; BODY[2]<4096> belongs to the
        request for <4096.4096>, and a BODY[2] without origin to neither."""
        a, b = b"A" * 4096, b"B" * 10
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODY.PEEK[2]<0.4096>)"),
            ("expect", b"A0004 UID FETCH 7 (UID BINARY.PEEK[2]<4096.4096>)"),
            ("send", b"* 1 FETCH (UID 7 BODY[2] {3}\r\nnot BODY[2]<0> " + lit(a) +
             b")\r\nA0003 OK done\r\n"
             b"* 1 FETCH (UID 7 BINARY[2]<0> \"not\" BINARY[2]<4096> " + lit(b) +
             b")\r\nA0004 OK done\r\n"),
        ] + logout(5)
        res = self.run_pieces(script, "7,body:2:0:4096", "7,binary:2:4096:4096")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), delivered(0, 0, a) + delivered(1, 0, b) +
                         ["result req=0 0", "result req=1 0"])

    def test_same_uid_twice_and_strays(self):
        """Two requests for the same item of one UID get one answer each, in order; FETCHes
        for a UID nobody asked for, items nobody asked for, and flag updates are ignored."""
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODY.PEEK[1])"),
            ("expect", b"A0004 UID FETCH 7 (UID BODYSTRUCTURE BODY.PEEK[1])"),
            ("send", b"* 9 FETCH (UID 99 BODY[1] {3}\r\nxyz BODYSTRUCTURE " + BS + b")\r\n"
                     b"* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n"
                     b"* 1 FETCH (UID 7 BODY[1] \"first\" BODY[3] \"stray\")\r\n"
                     b"A0003 OK done\r\n"
                     b"* 1 FETCH (UID 7 BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" "
                     b"6 1) BODY[1] {6}\r\nsecond)\r\nA0004 OK done\r\n"),
        ] + logout(5)
        res = self.run_pieces(script, "7,body:1", "7+bs,body:1")
        self.assertOk(res)
        self.assertEqual(res.out.splitlines(), delivered(0, 0, b"first") +
                         delivered(1, 0, b"second") + [
            'structure req=1 err=0 parts=0 ("text" "plain" NIL NIL NIL "7bit" 6 1 NIL NIL)',
            "result req=0 0", "result req=1 0"])

    def test_broken_bodystructure(self):
        """A BODYSTRUCTURE that is refused (Gmail's empty multipart) reaches the sink as
        -EBADMSG with the reason; the request itself is OK and the connection usable."""
        script = [
            ("expect", b"A0003 UID FETCH 7 (UID BODYSTRUCTURE BODY.PEEK[HEADER])"),
            ("send", b'* 1 FETCH (UID 7 BODYSTRUCTURE ("ALTERNATIVE") BODY[HEADER] "a: b")\r\n'
                     b"A0003 OK done\r\n"),
        ] + logout(4)
        res = self.run_pieces(script, "7+bs,header:")
        self.assertOk(res)
        out = res.out.splitlines()
        self.assertTrue(out[0].startswith("structure req=0 err=EBADMSG why=server 127.0.0.1 "
                                          "sent a BODYSTRUCTURE for UID 7 that is refused: "),
                        out)
        self.assertIn("fewer than 7", out[0])
        self.assertEqual(out[1:], delivered(0, 0, b"a: b") + ["result req=0 0"])

    def test_in_flight_bound(self):
        """70 requests: 64 are written before any answer is read; the client sends the other
        6 only once those have been answered."""
        first = [("expect", b"A%04d UID FETCH %d (UID BODY.PEEK[1])" % (3 + i, 100 + i))
                 for i in range(64)]
        answers = b"".join(b"* %d FETCH (UID %d BODY[1] \"x\")\r\nA%04d OK done\r\n"
                           % (i + 1, 100 + i, 3 + i) for i in range(64))
        rest = [("expect", b"A%04d UID FETCH %d (UID BODY.PEEK[1])" % (3 + i, 100 + i))
                for i in range(64, 70)]
        answers2 = b"".join(b"A%04d OK done\r\n" % (3 + i) for i in range(64, 70))
        script = first + [("quiet", 0.5), ("send", answers)] + rest + [
            ("send", answers2)] + logout(73)
        res = self.run_pieces(script, *["%d,body:1" % (100 + i) for i in range(70)])
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        out = res.out.splitlines()
        self.assertEqual(len([x for x in out if x.startswith("end ")]), 64)
        self.assertEqual(out[-70:], ["result req=%d 0" % i for i in range(70)])


    def test_window_slides(self):
        """The window slides: once the first of 64 written requests is answered, exactly one
        more (the 65th) is written, before any other answer; not a round of 64 at a time."""
        req = [("expect", b"A%04d UID FETCH %d (UID BODY.PEEK[1])" % (3 + i, 100 + i))
               for i in range(70)]

        def answer(i):
            return b"* %d FETCH (UID %d BODY[1] \"x\")\r\nA%04d OK done\r\n" % (
                i + 1, 100 + i, 3 + i)
        script = req[:64] + [("quiet", 0.5), ("send", answer(0)), req[64], ("quiet", 0.5),
                             ("send", answer(1)), req[65], ("quiet", 0.5),
                             ("send", b"".join(answer(i) for i in range(2, 64)))] + \
            req[66:] + [("send", b"".join(answer(i) for i in range(64, 70)))] + logout(73)
        res = self.run_pieces(script, *["%d,body:1" % (100 + i) for i in range(70)])
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        out = res.out.splitlines()
        self.assertEqual(len([x for x in out if x.startswith("end ")]), 70)
        self.assertEqual(out[-70:], ["result req=%d 0" % i for i in range(70)])

class ExaminePieces(FakeTestCase):
    """imap_examine_fetch_pieces: EXAMINE and the requests in one round trip, gated."""

    EXAMINE = ("expect", b'A0002 EXAMINE "INBOX"')
    FETCH = ("expect", b"A0003 UID FETCH 7 (UID BODYSTRUCTURE BODY.PEEK[HEADER])")
    ANSWER = (b"* 1 FETCH (UID 7 BODYSTRUCTURE " + BS + b" BODY[HEADER] " + lit(HEADER) +
              b")\r\n")

    @staticmethod
    def examined(uidvalidity=77):
        return (b"* 3 EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\nA0002 OK [READ-ONLY] done\r\n"
                % uidvalidity)

    def xpieces(self, script, *reqs, uidvalidity="77"):
        return self.play(login(CAPS) + script, "xpieces", "INBOX", uidvalidity, *reqs)

    def test_one_round_trip(self):
        script = [self.EXAMINE, self.FETCH,
                  ("send", self.examined() + self.ANSWER + b"A0003 OK done\r\n")] + logout(4)
        res = self.xpieces(script, "7+bs,header:")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.out.splitlines(), delivered(0, 0, HEADER) + [
            "structure req=0 err=0 parts=2 " + BS_CANON, "uidvalidity=77 exists=3",
            "result req=0 0"])

    def test_other_uidvalidity(self):
        """Another UIDVALIDITY: -ESTALE and nothing delivered."""
        script = [self.EXAMINE, self.FETCH,
                  ("send", self.examined(78) + self.ANSWER + b"A0003 OK done\r\n")] + logout(4)
        res = self.xpieces(script, "7+bs,header:")
        self.assertFails(res, "ESTALE", "")
        self.assertEqual(res.out.splitlines(), ["uidvalidity=78 exists=3",
                                                "result req=0 ESTALE"])
        self.assertEqual(res.srv.lines[-1], b"A0004 LOGOUT")

    def test_early_answers_sent_again(self):
        """Answers that came before the EXAMINE's tagged OK are not used; the requests are
        sent again on their own."""
        wrong = b"Subject: wrong\r\n\r\n"
        script = [self.EXAMINE, self.FETCH,
                  ("send", b"* 1 FETCH (UID 7 BODYSTRUCTURE " + BS + b" BODY[HEADER] " +
                   lit(wrong) + b")\r\nA0003 OK done\r\n" + self.examined()),
                  ("expect", b"A0004 UID FETCH 7 (UID BODYSTRUCTURE BODY.PEEK[HEADER])"),
                  ("send", self.ANSWER + b"A0004 OK done\r\n")] + logout(5)
        res = self.xpieces(script, "7+bs,header:")
        self.assertOk(res)
        self.assertEqual(res.srv.errors, [])
        self.assertEqual(res.out.splitlines(), delivered(0, 0, HEADER) + [
            "structure req=0 err=0 parts=2 " + BS_CANON, "uidvalidity=77 exists=3",
            "result req=0 0"])

    def test_no_such_mailbox(self):
        script = [self.EXAMINE, self.FETCH,
                  ("send", b"A0002 NO [NONEXISTENT] no such mailbox\r\n"
                           b"A0003 BAD No mailbox selected\r\n")] + logout(4)
        res = self.xpieces(script, "7+bs,header:")
        self.assertFails(res, "ENOENT", "[NONEXISTENT]")
        self.assertEqual(res.out.splitlines(), ["uidvalidity=0 exists=0", "result req=0 ENOENT"])


def setUpModule():
    test_fake.setUpModule()


def tearDownModule():
    test_fake.tearDownModule()


if __name__ == "__main__":
    unittest.main(verbosity=2)
