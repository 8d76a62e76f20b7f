#!/usr/bin/python3
"""What every scripted fake-server test of the IMAP client shares (test_fake*.py, meson suite
'fake'): the tool's path, the test account, a throwaway PKI made with the openssl CLI
(certs.py), running imap_client_tool against a FakeServer (fake_server.py), the usual login
and logout transcripts, and FakeTestCase.  Needs IMAP_CLIENT_TOOL in the environment (set by
meson).  Not a test itself.
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
PKI = {}  # filled by setUpModule: make_pki's names -> (cert, key) or the CA file


def setUpModule():
    """A suite's module setup (import it into the test file): the tool is there, and a
    throwaway PKI in PKI, removed by the module's cleanups whatever fails."""
    if not TOOL or not os.access(TOOL, os.X_OK):
        raise RuntimeError("IMAP_CLIENT_TOOL must point to imap_client_tool")
    pki_dir = unittest.enterModuleContext(tempfile.TemporaryDirectory(prefix="imapfs-pki-"))
    PKI.clear()
    PKI.update(make_pki(pki_dir))


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
