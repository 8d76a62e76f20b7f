#!/usr/bin/python3
"""Integration tests of the IMAP client against a real, throwaway Dovecot (suite 'integration').

tests/harness/dovecot.py starts Dovecot on free loopback ports with a throwaway CA; the tests run
imap_client_tool against it and compare with what Dovecot itself reports (via the harness's own
imaplib code): login over implicit TLS and STARTTLS, LIST with non-ASCII (Korean) folder names,
EXAMINE, UID SEARCH including a non-ASCII SUBJECT search, UID FETCH byte-exact, and refusal of an
expired certificate, one from an unknown CA and one for the wrong host; COMPRESS=DEFLATE when
the harness's Dovecot offers it (IMAPFS_TEST_COMPRESS=1: imap_integration_compress).  If Dovecot is missing
the harness raises and these tests FAIL; they never skip.
"""
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
