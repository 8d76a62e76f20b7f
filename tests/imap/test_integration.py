#!/usr/bin/python3
"""Integration tests of the IMAP client against a real, throwaway Dovecot (suite 'integration').

tests/harness/dovecot.py starts Dovecot on free loopback ports with a throwaway CA; the tests run
imap_client_tool against it and compare with what Dovecot itself reports (via the harness's own
imaplib code): login over implicit TLS and STARTTLS, LIST with non-ASCII (Korean) folder names,
EXAMINE, UID SEARCH including a non-ASCII SUBJECT search, UID FETCH byte-exact, and refusal of an
expired certificate, one from an unknown CA and one for the wrong host; and pieces of a
multipart message (BODYSTRUCTURE, HEADER, MIME, sections, BINARY, BINARY.SIZE, partial fetches,
NO [UNKNOWN-CTE]) checked against Python's email package reading the same bytes; COMPRESS=DEFLATE
when the harness's Dovecot offers it (IMAPFS_TEST_COMPRESS=1: imap_integration_compress).  If Dovecot is missing
the harness raises and these tests FAIL; they never skip.
"""
import base64
import email
import email.parser
import email.policy
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("IMAPFS_HARNESS_DIR", os.path.join(HERE, "..", "harness")))
from dovecot import Dovecot, mutf7_encode  # noqa: E402

TOOL = os.environ.get("IMAP_CLIENT_TOOL", "")
KOREAN_FOLDER = "\ubc1b\uc740\ud3b8\uc9c0\ud568"  # 받은편지함
KOREAN_WORD = "\ud68c\uc758"  # 회의 (meeting)
D = None
MSGS = {}  # (folder, uid) -> raw bytes
PIECES_UID = None  # the multipart message of Pieces, in INBOX
ODD_CTE_UID = None  # a message with a part of unknown Content-Transfer-Encoding
NESTED_UID = None  # message/rfc822 parts with multipart and message/rfc822 bodies


def b64lines(data):
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


PDF = bytes(range(256)) * 20 + b"%%EOF"
HTML = "<html><body><p>Caf\u00e9 \u2014 bonjour</p></body></html>\r\n".encode()
MULTIPART = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: with attachment\r\n"
    b"Date: Mon, 1 Jul 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
    b"preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
    b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Caf=C3=A9 =E2=80=94 bonjour, a long line soft=\r\nbroken here\r\n"
    b"--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\n" + b64lines(HTML) + b"--alt--\r\n"
    b"--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
    b"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + b64lines(PDF) +
    b"--outer\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: carol@example.org\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n\r\nthe forwarded text\r\n"
    b"--outer--\r\n")
NESTED = (
    b"From: a@example.org\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
    b"Content-Type: text/plain\r\n\r\ntop text\r\n--m\r\n"
    b"Content-Type: message/rfc822\r\n\r\n"
    b"Subject: fwd 1\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=a\r\n"
    b"\r\n--a\r\nContent-Type: text/plain\r\n\r\nalt plain\r\n--a\r\n"
    b"Content-Type: message/rfc822\r\n\r\n"
    b"Subject: fwd 2\r\nMIME-Version: 1.0\r\nContent-Type: image/gif\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + b64lines(b"GIF89a" + bytes(range(50))) +
    b"--a--\r\n--m\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable"
    b"\r\n\r\n<p>caf=C3=A9</p>\r\n--m--\r\n")
ODD_CTE = (
    b"From: a@example.org\r\nSubject: odd\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: text/plain\r\n\r\nplain\r\n--b\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-martian\r\n\r\n"
    b"zzzz\r\n--b--\r\n")


def b64w(s):
    import base64
    return "=?UTF-8?B?" + base64.b64encode(s.encode()).decode() + "?="


def message(subject, body, extra=b""):
    return (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
            b"Subject: " + subject.encode() + b"\r\nDate: Mon, 1 Jul 2024 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n" + extra + b"\r\n" + body)


def setUpModule():
    global D
    if not TOOL or not os.access(TOOL, os.X_OK):
        raise RuntimeError("IMAP_CLIENT_TOOL must point to imap_client_tool")
    D = Dovecot()
    D.__enter__()
    try:
        D.create_folder(KOREAN_FOLDER)
        D.create_folder("Archive/2024")
        D.create_folder('Odd "quoted" \\ name')
        # 8-bit bytes but no NUL: Dovecot stores NUL as 0x80, so it could not round-trip
        big = b"".join(b"line %07d \xc3\xa9\xff filler text\r\n" % i for i in range(120000))
        msgs = [
            ("INBOX", message("hello world", b"first message\r\n")),
            ("INBOX", message(b64w("\uc624\ub298 " + KOREAN_WORD + " \uc77c\uc815"),
                              "\ubcf8\ubb38\r\n".encode())),
            ("INBOX", message("big one", big)),
            ("INBOX", message("flagged", b"x\r\n")),
            (KOREAN_FOLDER, message(b64w(KOREAN_WORD), b"in korean folder\r\n")),
        ]
        for i, (folder, raw) in enumerate(msgs):
            flags = ("\\Seen", "\\Flagged") if i == 3 else ()
            uid = D.append(folder, raw, flags=flags, date=1720000000 + i)
            MSGS[(folder, uid)] = raw
        # in another folder, so that INBOX's listing tests see only their own messages
        global PIECES_UID, ODD_CTE_UID, NESTED_UID
        D.create_folder("Pieces")
        PIECES_UID = D.append("Pieces", MULTIPART)
        ODD_CTE_UID = D.append("Pieces", ODD_CTE)
        NESTED_UID = D.append("Pieces", NESTED)
    except BaseException:
        D.__exit__(None, None, None)
        raise


def tearDownModule():
    if D is not None:
        D.__exit__(None, None, None)


def tool(*cmd, tls="implicit", host=None, port=None, password=None, ca=True, timeout_ms=10000,
         extra=(), debug=False):
    if port is None:
        port = D.port_imaps if tls == "implicit" else D.port_starttls
    args = [TOOL, "--host", host or D.host, "--port", str(port), "--tls", tls,
            "--user", D.user, "--timeout-ms", str(timeout_ms)]
    if ca:
        args += ["--ca-file", D.ca_file]
    env = dict(os.environ, IMAPFS_TEST_PASSWORD=password if password is not None else D.password)
    if debug:
        env["G_MESSAGES_DEBUG"] = "imap"
    p = subprocess.run(args + list(extra) + list(cmd), capture_output=True, env=env, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class Integration(unittest.TestCase):
    def assertOk(self, r):
        self.assertEqual(r[0], 0, r[2])

    def test_login_imaps(self):
        r = tool("connect")
        self.assertOk(r)
        self.assertEqual(r[1].strip(), "connected")

    def test_login_starttls(self):
        r = tool("connect", tls="starttls")
        self.assertOk(r)

    def test_wrong_password(self):
        rc, out, err = tool("connect", password="wrong")
        self.assertEqual(rc, 1)
        self.assertIn("error: EACCES", err)
        self.assertIn("login failed: [AUTHENTICATIONFAILED]", err)

    def test_list_non_ascii(self):
        rc, out, err = tool("list")
        self.assertOk((rc, out, err))
        lines = out.splitlines()
        want = mutf7_encode(KOREAN_FOLDER)
        self.assertIn(f"raw={want} name={KOREAN_FOLDER} delim=/ flags=", "\n".join(lines))
        names = {ln.split(" name=")[1].split(" delim=")[0] for ln in lines}
        self.assertTrue({"INBOX", KOREAN_FOLDER, "Archive", "Archive/2024",
                         'Odd "quoted" \\ name'} <= names, names)
        theirs = {n for n, _, _ in D.list_folders()}
        self.assertEqual(names, theirs)

    def test_examine(self):
        for folder in ("INBOX", KOREAN_FOLDER, 'Odd "quoted" \\ name'):
            with self.subTest(folder=folder):
                rc, out, err = tool("examine", folder)
                self.assertOk((rc, out, err))
                f = dict(kv.split("=") for kv in out.split())
                uids = D.uids(folder)
                self.assertEqual(int(f["uidvalidity"]), D.uidvalidity(folder))
                self.assertEqual(int(f["exists"]), len(uids))
                self.assertEqual(int(f["uidnext"]), (max(uids) if uids else 0) + 1)

    def test_examine_missing(self):
        rc, out, err = tool("examine", "does-not-exist")
        self.assertEqual(rc, 1)
        self.assertIn("error: ENOENT", err)

    def test_search(self):
        inbox = sorted(u for (f, u) in MSGS if f == "INBOX")
        rc, out, err = tool("search", "INBOX", "ALL")
        self.assertOk((rc, out, err))
        self.assertEqual(list(map(int, out.split()[1:])), D.uids("INBOX"))
        self.assertEqual(list(map(int, out.split()[1:])), inbox)
        rc, out, err = tool("search", "INBOX", "SUBJECT %s", "hello")
        self.assertOk((rc, out, err))
        self.assertEqual(list(map(int, out.split()[1:])), [inbox[0]])
        rc, out, err = tool("search", "INBOX", "FLAGGED")
        self.assertEqual(list(map(int, out.split()[1:])), [inbox[3]])
        rc, out, err = tool("search", "INBOX", "SUBJECT %s", 'no "such\\ thing')
        self.assertOk((rc, out, err))
        self.assertEqual(out.split(), ["count=0"])

    def test_search_non_ascii_subject(self):
        inbox = sorted(u for (f, u) in MSGS if f == "INBOX")
        for tls in ("implicit", "starttls"):
            rc, out, err = tool("search", "INBOX", "SUBJECT %s", KOREAN_WORD, tls=tls)
            self.assertOk((rc, out, err))
            self.assertEqual(list(map(int, out.split()[1:])), [inbox[1]])
        rc, out, err = tool("search", KOREAN_FOLDER, "OR SUBJECT %s BODY %s", KOREAN_WORD, "zz")
        self.assertOk((rc, out, err))
        self.assertEqual(out.split()[0], "count=1")

    def test_fetch_byte_exact(self):
        with tempfile.TemporaryDirectory() as d:
            for (folder, uid), raw in MSGS.items():
                with self.subTest(folder=folder, uid=uid):
                    path = os.path.join(d, "m")
                    rc, out, err = tool("message", folder, str(uid), "--out", path)
                    self.assertOk((rc, out, err))
                    with open(path, "rb") as f:
                        got = f.read()
                    self.assertEqual(got, D.fetch_raw(folder, uid))
                    self.assertEqual(got, raw)

    def test_fetch_streamed_all_partial_header(self):
        inbox = sorted(u for (f, u) in MSGS if f == "INBOX")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "all")
            rc, out, err = tool("fetch", "INBOX", "1:*", "--out", path)
            self.assertOk((rc, out, err))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"".join(MSGS[("INBOX", u)] for u in inbox))
            big = MSGS[("INBOX", inbox[2])]
            rc, out, err = tool("fetch", "INBOX", str(inbox[2]), "full", "1000", "5000",
                                "--out", path)
            self.assertOk((rc, out, err))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), big[1000:6000])
            rc, out, err = tool("fetch", "INBOX", str(inbox[2]), "header", "--out", path)
            self.assertOk((rc, out, err))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), big[:big.index(b"\r\n\r\n") + 4])

    def test_compress_as_the_server_offers(self):
        """With IMAPFS_TEST_COMPRESS=1 (imap_integration_compress) Dovecot offers
        COMPRESS=DEFLATE and every byte after the login is compressed: a 4 MB message comes
        byte-exact through it in well under half its size on the wire.  Without, the client
        never asks.  --compress off never asks either."""
        inbox = sorted(u for (f, u) in MSGS if f == "INBOX")
        big = MSGS[("INBOX", inbox[2])]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m")
            rc, out, err = tool("message", "INBOX", str(inbox[2]), "--out", path, debug=True)
            self.assertOk((rc, out, err))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), big)
        if D.compress:
            self.assertIn("C: A0002 COMPRESS DEFLATE", err)
            self.assertIn("COMPRESS DEFLATE active", err)
            m = re.search(r"compression with \S+: received (\d+) bytes for (\d+)", err)
            self.assertIsNotNone(m, err[-2000:])
            self.assertGreater(int(m.group(2)), len(big))
            self.assertLess(int(m.group(1)) * 2, len(big))
        else:
            self.assertNotIn("COMPRESS", err)
        rc, out, err = tool("list", extra=("--compress", "off"), debug=True)
        self.assertOk((rc, out, err))
        self.assertNotIn("COMPRESS DEFLATE", err)

    def test_attrs(self):
        rc, out, err = tool("attrs", "INBOX", "1:*")
        self.assertOk((rc, out, err))
        flags = D.flags("INBOX")
        inbox = sorted(u for (f, u) in MSGS if f == "INBOX")
        got = {}
        for line in out.splitlines():
            f = dict(kv.split("=", 1) for kv in line.split(" "))
            got[int(f["uid"])] = f
        self.assertEqual(sorted(got), inbox)
        for i, u in enumerate(inbox):
            self.assertEqual(int(got[u]["size"]), len(MSGS[("INBOX", u)]))
            self.assertEqual(int(got[u]["date"]), 1720000000 + i)
            want = set(flags[u])
            # \Recent is per-session, so the harness leaves it out
            got_flags = set(filter(None, got[u]["flags"].split(","))) - {"\\Recent"}
            self.assertEqual(got_flags, want)

    def _bad(self, key, message):
        host, port = D.bad[key]
        rc, out, err = tool("connect", host=host, port=port)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("error: EKEYREJECTED", err)
        self.assertIn(f"TLS certificate verification failed for {host}: {message}", err)
        self.assertNotIn(D.password, err)

    def test_expired_certificate_refused(self):
        self._bad("expired", "certificate has expired")

    def test_unknown_ca_refused(self):
        self._bad("unknown_ca", "")

    def test_wrong_host_refused(self):
        self._bad("wrong_host", "IP address mismatch")


def rfc3501_sections(msg):
    """(section, part, in_multipart) of every part of an email.message.Message in preorder,
    numbered as RFC 3501 6.4.5 does (the root "" for a multipart, "1" for a single part; a
    message/rfc822 part's multipart body shares its section, a single-part body is
    section.1); in_multipart: a part of a multipart (it has a MIME header of its own)."""
    out = []

    def walk(m, sec, in_multipart):
        out.append((sec, m, in_multipart))
        if m.get_content_maintype() == "multipart":
            for i, p in enumerate(m.get_payload(), 1):
                walk(p, "%s.%d" % (sec, i) if sec else str(i), True)
        elif m.get_content_type() == "message/rfc822":
            inner = m.get_payload()[0]
            multi = inner.get_content_maintype() == "multipart"
            walk(inner, sec if multi else sec + ".1", False)

    walk(msg, "" if msg.get_content_maintype() == "multipart" else "1", False)
    return out


class Pieces(unittest.TestCase):
    """imap_uid_fetch_pieces against Dovecot, checked against Python's email package."""

    def pieces(self, d, *reqs, folder="Pieces"):
        rc, out, err = tool("pieces", folder, *reqs, "--out", d)
        self.assertEqual(rc, 0, err)
        return out.splitlines()

    def check_message(self, raw, uid, extra=()):
        """The outline of message uid (raw) and every leaf part's BODY, BINARY, BINARY.SIZE
        and (for a part of a multipart) MIME header, against the email package's reading of
        raw.  Returns the tool's output, the pieces by item and the parts by section."""
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        walked = rfc3501_sections(msg)
        secs = [(s, p) for s, p, _ in walked]
        in_multipart = {s for s, _, m in walked if m}
        leaves = [(s, p) for s, p in secs
                  if not p.is_multipart() and p.get_content_type() != "message/rfc822"]
        items = ["header:"] + ["body:" + s for s, _ in leaves] + \
                ["mime:" + s for s, _ in leaves if s in in_multipart] + \
                ["binary:" + s for s, _ in leaves] + ["size:" + s for s, _ in leaves] + \
                list(extra)
        with tempfile.TemporaryDirectory() as d:
            out = self.pieces(d, "%d+bso,%s" % (uid, ",".join(items)))
            self.assertEqual(out[-1], "result req=0 0")
            got = {}
            for i in range(len(items)):
                path = os.path.join(d, "0.%d" % i)
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        got[items[i]] = f.read()
            sizes = {}
            for line in out:
                if line.startswith("size req=0 item="):
                    item, n = line[len("size req=0 item="):].split()
                    sizes[items[int(item)]] = int(n)
        # the outline: every part, its section and type, as the email package sees them
        outline = [ln for ln in out if ln.startswith("outline req=0 ")]
        self.assertEqual(len(outline), 1, out)
        parts = [w.split("=", 1) for w in outline[0].split()[2:]]
        self.assertEqual([(s, "/".join(t.split("/")[:2])) for s, t in parts],
                         [(s, p.get_content_type()) for s, p in secs])
        # the header block, byte for byte
        self.assertEqual(got["header:"], raw[:raw.index(b"\r\n\r\n") + 4])
        for (s, p), (_, t) in zip(leaves, [x for x in parts if x[0] in dict(leaves)]):
            with self.subTest(section=s):
                body = p.get_payload().encode("ascii", "surrogateescape")
                self.assertEqual(got["body:" + s], body)
                self.assertEqual(int(t.split("/")[2]), len(body))  # body-fld-octets
                decoded = p.get_payload(decode=True)
                self.assertEqual(got["binary:" + s], decoded)
                self.assertEqual(sizes["size:" + s], len(decoded))
                if s in in_multipart:
                    mime = got["mime:" + s]
                    self.assertTrue(mime.endswith(b"\r\n\r\n"), mime)
                    hdr = email.parser.BytesHeaderParser(policy=email.policy.compat32)
                    self.assertEqual(hdr.parsebytes(mime).items(), p.items())
        return out, got, dict(secs)

    def test_outline_sections_binary(self):
        out, got, secs = self.check_message(
            MULTIPART, PIECES_UID, ["header:3", "body:3", "body:2:10:100", "binary:2:5:300"])
        self.assertEqual(sorted(secs), ["", "1", "1.1", "1.2", "2", "3", "3.1"])
        structure = [ln for ln in out if ln.startswith("structure req=0 err=0 ")]
        self.assertEqual(len(structure), 1, out)
        self.assertIn('("attachment" ("filename" "report.pdf"))', structure[0])
        self.assertIn('("name" "report.pdf")', structure[0])
        self.assertEqual(got["binary:2"], PDF)
        self.assertEqual(base64.b64decode(got["body:2"]), got["binary:2"])
        self.assertEqual(got["binary:1.2"], HTML)
        # partial fetches: of the encoded and of the decoded part
        self.assertEqual(got["body:2:10:100"], got["body:2"][10:110])
        self.assertEqual(got["binary:2:5:300"], PDF[5:305])
        # the message/rfc822 part: all of it, and its own header
        inner = MULTIPART[MULTIPART.index(b"From: carol"):MULTIPART.index(b"\r\n--outer--")]
        self.assertEqual(got["body:3"], inner)
        self.assertEqual(got["header:3"], inner[:inner.index(b"\r\n\r\n") + 4])

    def test_nested_messages(self):
        """message/rfc822 parts numbered as RFC 3501 6.4.5 says, on Dovecot's outline: a
        multipart body shares the message part's section (2: 2.1, 2.2), a single-part body is
        section.1 (2.2.1)."""
        out, got, secs = self.check_message(NESTED, NESTED_UID, ["header:2", "header:2.2"])
        self.assertEqual(list(secs), ["", "1", "2", "2.1", "2.2", "2.2.1", "3"])
        self.assertEqual(got["body:2.1"], b"alt plain")
        self.assertEqual(got["binary:2.2.1"], b"GIF89a" + bytes(range(50)))
        self.assertTrue(got["header:2"].startswith(b"Subject: fwd 1\r\n"))
        self.assertTrue(got["header:2.2"].startswith(b"Subject: fwd 2\r\n"))

    def test_unknown_cte_refused_alone(self):
        """Dovecot cannot decode x-martian: NO [UNKNOWN-CTE] -> -EBADMSG for that request;
        the next request on the same connection is served."""
        with tempfile.TemporaryDirectory() as d:
            out = self.pieces(d, "%d,binary:2" % ODD_CTE_UID, "%d,body:2,binary:1" % ODD_CTE_UID)
            self.assertEqual(out[-2:], ["result req=0 EBADMSG", "result req=1 0"])
            with open(os.path.join(d, "1.0"), "rb") as f:
                self.assertEqual(f.read(), b"zzzz")
            with open(os.path.join(d, "1.1"), "rb") as f:
                self.assertEqual(f.read(), b"plain")


if __name__ == "__main__":
    unittest.main(verbosity=2)
