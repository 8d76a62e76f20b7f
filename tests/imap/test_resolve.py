#!/usr/bin/python3
"""The client tries every address getaddrinfo returns until one answers (IPv6 and IPv4).

A host name that resolves to both ::1 and 127.0.0.1 is made with a private /etc/hosts,
bind-mounted in a mount namespace of the client alone (unshare --mount, root only): nothing
outside the test sees it.  A fake server listens on only one of the two addresses; the client
must reach it whichever address comes first, and must fail with a clear line when neither
answers.  Run by meson (suite 'fake') with IMAP_CLIENT_TOOL set; fails (never skips) when
unshare is not possible.
"""
import os
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_server import FakeServer  # noqa: E402

TOOL = os.environ.get("IMAP_CLIENT_TOOL", "")
NAME = "dual.imapfs.test"
PASSWORD = "pw-resolve-1"
GREET = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] fake ready\r\n"
SCRIPT = [
    ("send", GREET),
    ("expect_prefix", b"A0001 AUTHENTICATE PLAIN "),
    ("send", b"A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
    ("expect", b"A0002 LOGOUT"),
    ("send", b"* BYE bye\r\nA0002 OK done\r\n"),
]


def free_port_on_both():
    """A port free on 127.0.0.1 and on ::1 at once (so the other family is refused)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            with socket.socket(socket.AF_INET6) as s6:
                try:
                    s6.bind(("::1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


class Resolve(unittest.TestCase):
    def setUp(self):
        if not TOOL or not os.access(TOOL, os.X_OK):
            raise RuntimeError("IMAP_CLIENT_TOOL must point to imap_client_tool")
        self.dir = tempfile.TemporaryDirectory(prefix="imapfs-resolve-")
        self.hosts = os.path.join(self.dir.name, "hosts")
        with open(self.hosts, "w") as f:
            f.write(f"::1 {NAME}\n127.0.0.1 {NAME}\n")

    def tearDown(self):
        self.dir.cleanup()

    def connect(self, port):
        env = dict(os.environ, IMAPFS_TEST_PASSWORD=PASSWORD)
        inner = ('mount --bind "$HOSTS" /etc/hosts && exec "$TOOL" --host "$NAME" --port "$PORT"'
                 ' --tls none --user u --timeout-ms 3000 connect')
        env.update(HOSTS=self.hosts, TOOL=TOOL, NAME=NAME, PORT=str(port))
        return subprocess.run(["unshare", "--mount", "sh", "-c", inner], env=env,
                              capture_output=True, text=True, timeout=60)

    def _only_on(self, family):
        port = free_port_on_both()
        srv = FakeServer(SCRIPT, family=family, port=port)
        proc = self.connect(srv.port)
        self.assertTrue(srv.join(), "fake server did not finish")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(srv.errors, [])

    def test_only_ipv4_answers(self):
        self._only_on(socket.AF_INET)

    def test_only_ipv6_answers(self):
        self._only_on(socket.AF_INET6)

    def test_no_address_answers(self):
        port = free_port_on_both()
        proc = self.connect(port)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(f"cannot connect to {NAME}:{port}", proc.stderr)

    def test_private_hosts_file_resolves_to_both(self):
        """Guards the test itself: the name really has both addresses inside the namespace."""
        out = subprocess.run(
            ["unshare", "--mount", "sh", "-c",
             f'mount --bind "{self.hosts}" /etc/hosts && getent ahostsv6 {NAME}; '
             f'getent ahostsv4 {NAME}'], capture_output=True, text=True, timeout=30).stdout
        self.assertIn("::1", out)
        self.assertIn("127.0.0.1", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
