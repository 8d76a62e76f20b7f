#!/usr/bin/python3
"""Self-tests for the imapfs test harness (dovecot.py, sample_mail.py,
tcp_proxy.py): they prove that the throwaway Dovecot starts and stops
cleanly, that its good and deliberately bad TLS endpoints behave as
documented, that the mail helpers are exact and side-effect free, and that
the proxy's delay and fault controls work.  Needs root and Dovecot; fails
(never skips) without them.  Run: /usr/bin/python3 tests/harness/test_harness.py
"""

import datetime
import imaplib
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import zlib
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dovecot  # noqa: E402
import sample_mail  # noqa: E402
import tcp_proxy  # noqa: E402
from dovecot import Dovecot, mutf7_decode, mutf7_encode  # noqa: E402

# OpenSSL X509_V_ERR_* codes as reported by ssl.SSLCertVerificationError.
X509_EXPIRED = 10
X509_LOCAL_ISSUER = 20
X509_HOSTNAME_MISMATCH = 62
X509_IP_MISMATCH = 64


def _really_alive(pid):
    """True if pid is a live, non-zombie process."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _handshake(ctx, host, port, server_hostname):
    with socket.create_connection((host, port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=server_hostname) as t:
            return t.recv(200)


class TestMutf7(unittest.TestCase):
    def test_known_values(self):
        cases = {
            'INBOX': 'INBOX',
            '&': '&-',
            'A&B': 'A&-B',
            '받은편지함': '&vBvHQNO4ycDVaA-',  # U+BC1B U+C740 ...
            'Entwürfe': 'Entw&APw-rfe',
            '~peter/mail/台北/日本語': '~peter/mail/&U,BTFw-/&ZeVnLIqe-',
        }
        for plain, enc in cases.items():
            self.assertEqual(mutf7_encode(plain), enc)
            self.assertEqual(mutf7_decode(enc), plain)


class TestDovecot(unittest.TestCase):
    """Tests sharing one seeded instance (separator '/')."""

    @classmethod
    def setUpClass(cls):
        cls.d = Dovecot()
        cls.d.__enter__()
        cls.seeded = sample_mail.seed(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_env(self):
        e = self.d.env()
        self.assertEqual(e['IMAPFS_TEST_HOST'], '127.0.0.1')
        self.assertEqual(int(e['IMAPFS_TEST_PORT_IMAPS']), self.d.port_imaps)
        self.assertEqual(int(e['IMAPFS_TEST_PORT_STARTTLS']), self.d.port_starttls)
        self.assertEqual(e['IMAPFS_TEST_USER'], 'alice')
        self.assertEqual(e['IMAPFS_TEST_PASSWORD'], self.d.password)
        self.assertTrue(os.path.isfile(e['IMAPFS_TEST_CA_FILE']))
        for key, name in (('expired', 'EXPIRED'), ('unknown_ca', 'UNKNOWN_CA'),
                          ('wrong_host', 'WRONG_HOST')):
            self.assertEqual((e['IMAPFS_TEST_%s_HOST' % name],
                              int(e['IMAPFS_TEST_%s_PORT' % name])), self.d.bad[key])
        self.assertLessEqual(len(os.path.join(self.d.base_dir, 'login', 'imap-urlauth')),
                             100)

    def test_good_cert_verifies(self):
        ctx = self.d.ssl_context()
        for name in ('localhost', '127.0.0.1'):
            greeting = _handshake(ctx, self.d.host, self.d.port_imaps, name)
            self.assertTrue(greeting.startswith(b'* OK'), greeting)
        # STARTTLS on the plaintext port, same certificate.
        c = imaplib.IMAP4(self.d.host, self.d.port_starttls, timeout=10)
        self.assertIn('STARTTLS', c.capabilities)
        c.starttls(ssl_context=self.d.ssl_context())
        c.login(self.d.user, self.d.password)
        c.logout()
        # Python's default trust store must not trust the throwaway CA.
        with self.assertRaises(ssl.SSLCertVerificationError):
            _handshake(ssl.create_default_context(), self.d.host, self.d.port_imaps,
                       '127.0.0.1')

    def _verify_error(self, key, server_hostname=None):
        host, port = self.d.bad[key]
        with self.assertRaises(ssl.SSLCertVerificationError) as cm:
            _handshake(self.d.ssl_context(), host, port, server_hostname or host)
        return cm.exception.verify_code

    def test_bad_expired(self):
        self.assertEqual(self._verify_error('expired'), X509_EXPIRED)
        self.assertEqual(self._verify_error('expired', 'localhost'), X509_EXPIRED)
        # Otherwise valid: it verifies when validity dates are ignored.
        cert = self.d._certs['expired'][0]
        out = subprocess.run(['openssl', 'verify', '-CAfile', self.d.ca_file,
                              '-no_check_time', '-verify_ip', '127.0.0.1', cert],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(out.returncode, 0, out.stdout)

    def test_bad_unknown_ca(self):
        self.assertEqual(self._verify_error('unknown_ca'), X509_LOCAL_ISSUER)
        self.assertEqual(self._verify_error('unknown_ca', 'localhost'),
                         X509_LOCAL_ISSUER)

    def test_bad_wrong_host(self):
        self.assertEqual(self._verify_error('wrong_host'), X509_IP_MISMATCH)
        self.assertEqual(self._verify_error('wrong_host', 'localhost'),
                         X509_HOSTNAME_MISMATCH)
        # The chain itself is fine: only the name is wrong.
        host, port = self.d.bad['wrong_host']
        ctx = self.d.ssl_context()
        greeting = _handshake(ctx, host, port, dovecot.WRONG_HOST_NAME)
        self.assertTrue(greeting.startswith(b'* OK'))

    def test_strict_starttls_has_logindisabled(self):
        c = imaplib.IMAP4(*self.d.starttls_strict, timeout=10)
        self.assertIn('LOGINDISABLED', c.capabilities)
        c.starttls(ssl_context=self.d.ssl_context())
        c.login(self.d.user, self.d.password)
        c.logout()

    def test_append_fetch_byte_exact(self):
        folder = 'Exact'
        self.d.create_folder(folder)
        raw = (b'Subject: exact\r\nX-Bytes: \xff\xfe 8bit \xea\xb0\x80\r\n\r\n' +
               bytes(range(1, 10)) + b'\r\n' + bytes(range(11, 13)) +
               bytes(range(14, 256)) + b'\r\ntrailing line without newline')
        date = datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
        uid = self.d.append(folder, raw, flags=('\\Flagged',), date=date)
        self.assertEqual(self.d.fetch_raw(folder, uid), raw)
        self.assertEqual(self.d.flags(folder)[uid], ('\\Flagged',))
        c = self.d.connect()
        c.select('Exact', readonly=True)
        typ, data = c.uid('FETCH', str(uid), '(INTERNALDATE)')
        c.logout()
        self.assertIn(b'04-Mar-2021 05:06:07 +0000', data[0])
        uid2 = self.d.append(folder, b'Subject: epoch\r\n\r\nx\r\n', date=0)
        self.assertEqual(self.d.uids(folder), [uid, uid2])

    def test_non_ascii_folder_roundtrip(self):
        name = '받은편지함/하위 & 폴더 "q"'
        self.d.create_folder(name)
        names = {n: f for n, f, _d in self.d.list_folders()}
        self.assertIn(name, names)
        uid = self.d.append(name, b'Subject: x\r\n\r\ny\r\n')
        self.assertEqual(self.d.uids(name), [uid])
        self.d.delete_folder(name)
        self.assertNotIn(name, {n for n, _f, _d in self.d.list_folders()})

    def test_flags_unchanged_by_fetch(self):
        before = self.d.flags('INBOX')
        self.assertTrue(any('\\Seen' not in f for f in before.values()))
        self.assertTrue(any('\\Seen' in f for f in before.values()))
        for uid in before:
            self.d.fetch_raw('INBOX', uid)
        self.assertEqual(self.d.flags('INBOX'), before)

    def test_seeded_corpus(self):
        corpus = sample_mail.sample_corpus()
        self.assertEqual(len(self.seeded), len(corpus))
        self.assertTrue(20 <= len(corpus) <= 30)
        self.assertEqual(corpus, sample_mail.sample_corpus())  # deterministic
        for folder, uid, raw, flags in self.seeded:
            self.assertEqual(self.d.fetch_raw(folder, uid), raw, (folder, uid))
            self.assertEqual(set(self.d.flags(folder)[uid]), set(flags))
        listing = {n: f for n, f, _d in self.d.list_folders()}
        for folder in sample_mail.FOLDERS:
            self.assertIn(folder, listing)
        self.assertIn('\\Noselect', listing['Lists'])
        self.assertGreaterEqual(len(self.d.uids('Archive')), 3)
        self.assertTrue(any(b'invoice' in raw for _f, _u, raw, _fl in self.seeded))
        # Real EUC-KR and ISO-2022-JP bytes are present.
        blob = b''.join(raw for _f, _u, raw, _fl in self.seeded)
        self.assertIn('견적서'.encode('euc_kr'), blob)
        self.assertIn(b'\x1b$B', blob)
        self.assertIn(sample_mail.tiny_png()[:8], sample_mail.tiny_png())

    def test_expunge_and_uidvalidity(self):
        folder = 'Expunge'
        self.d.create_folder(folder)
        uids = [self.d.append(folder, b'Subject: %d\r\n\r\nx\r\n' % i) for i in range(4)]
        v = self.d.uidvalidity(folder)
        self.assertGreater(v, 0)
        self.d.set_flags(folder, [uids[0]], ['\\Deleted'])  # must survive
        self.d.expunge(folder, [uids[1], uids[2]])
        self.assertEqual(self.d.uids(folder), [uids[0], uids[3]])
        self.assertEqual(self.d.uidvalidity(folder), v)

    def test_proxy_to_dovecot(self):
        with tcp_proxy.TcpProxy('127.0.0.1', self.d.host, self.d.port_imaps,
                                delay_ms=20) as p:
            c = imaplib.IMAP4_SSL('127.0.0.1', p.port,
                                  ssl_context=self.d.ssl_context(), timeout=10)
            c.login(self.d.user, self.d.password)
            typ, data = c.select('INBOX', readonly=True)
            self.assertEqual(typ, 'OK')
            c.logout()


class TestLifecycle(unittest.TestCase):
    def test_start_stop_leaves_nothing(self):
        with Dovecot() as d:
            # The master forks its helpers (log, config, anvil) right after start; under load
            # that can lag behind the listening sockets, so wait for them briefly.
            deadline = time.monotonic() + 10
            pids = d.processes()
            while len(pids) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
                pids = d.processes()
            workdir, base = d.workdir, d.base_dir
            eps = d._endpoints()
            self.assertGreaterEqual(len(pids), 2)
            self.assertTrue(all(_accepts(*ep) for ep in eps))
            d.connect().logout()
        self.assertEqual([p for p in pids if _really_alive(p)], [])
        self.assertFalse(os.path.exists(workdir))
        self.assertFalse(os.path.exists(base))
        self.assertFalse(any(_accepts(*ep) for ep in eps))

    def test_exit_on_exception_cleans_up(self):
        holder = {}
        with self.assertRaises(ZeroDivisionError):
            with Dovecot() as d:
                holder['pids'] = d.processes()
                holder['dir'] = d.workdir
                1 / 0
        self.assertEqual([p for p in holder['pids'] if _really_alive(p)], [])
        self.assertFalse(os.path.exists(holder['dir']))

    def test_kill_restart_keeps_data(self):
        with Dovecot() as d:
            uid = d.append('INBOX', b'Subject: keep\r\n\r\nme\r\n')
            v = d.uidvalidity('INBOX')
            ports = (d.port_imaps, d.port_starttls)
            pids = d.processes()
            d.kill()
            self.assertEqual([p for p in pids if _really_alive(p)], [])
            self.assertFalse(_accepts(d.host, d.port_imaps))
            d.restart()
            self.assertEqual((d.port_imaps, d.port_starttls), ports)
            self.assertEqual(d.uids('INBOX'), [uid])
            self.assertEqual(d.uidvalidity('INBOX'), v)
            self.assertEqual(d.fetch_raw('INBOX', uid), b'Subject: keep\r\n\r\nme\r\n')

    def test_separator_dot(self):
        with Dovecot(separator='.') as d:
            seeded = sample_mail.seed(d)
            listing = {n: (f, delim) for n, f, delim in d.list_folders()}
            self.assertIn('Archive.2024', listing)
            self.assertIn('Work.Projects', listing)
            self.assertEqual(listing['INBOX'][1], '.')
            self.assertIn('\\Noselect', listing['Lists'][0])
            folder, uid, raw, _fl = seeded[-1]
            self.assertEqual(folder, 'Lists.dev')
            self.assertEqual(d.fetch_raw(folder, uid), raw)

    def test_no_condstore(self):
        """condstore=False: no CONDSTORE, QRESYNC or ENABLE in CAPABILITY, and a plain EXAMINE
        (what a client that believes CAPABILITY sends) carries no HIGHESTMODSEQ, even after a
        flag change; the default instance advertises both and answers EXAMINE (CONDSTORE)."""
        def examine(d, args):
            c = d.connect()
            try:
                c._simple_command('CAPABILITY')
                caps = c.untagged_responses.pop('CAPABILITY')[-1].decode().upper().split()
                self.assertEqual(c._simple_command('EXAMINE', 'INBOX' + args)[0], 'OK')
                ok = b' '.join(c.untagged_responses.get('OK', []))
                c.untagged_responses.pop('READ-ONLY', None)  # else imaplib refuses LOGOUT
                return caps, ok
            finally:
                c.logout()

        with Dovecot(condstore=False) as d:
            uid = d.append('INBOX', b'Subject: m\r\n\r\nx\r\n')
            d.set_flags('INBOX', [uid], ['\\Flagged'])
            caps, ok = examine(d, '')
            for cap in ('CONDSTORE', 'QRESYNC', 'ENABLE'):
                self.assertNotIn(cap, caps)
            self.assertIn('UIDPLUS', caps)
            self.assertIn(b'UIDNEXT 2', ok)
            self.assertNotIn(b'HIGHESTMODSEQ', ok)
            d.save_state()
            self.assertFalse(Dovecot.from_state(d.workdir).condstore)
        with Dovecot() as d:
            caps, ok = examine(d, ' (CONDSTORE)')
            self.assertIn('CONDSTORE', caps)
            self.assertIn('QRESYNC', caps)
            self.assertIn(b'HIGHESTMODSEQ', ok)

    def test_compress_option(self):
        """Dovecot(compress=True) offers COMPRESS=DEFLATE after the login (imap_zlib) and
        serves it; compress=None follows IMAPFS_TEST_COMPRESS; the default offers nothing."""
        def caps_after_login(d):
            c = d.connect()
            try:
                c._simple_command('CAPABILITY')
                return c.untagged_responses.pop('CAPABILITY')[-1].decode().upper().split()
            finally:
                c.logout()

        saved = os.environ.pop('IMAPFS_TEST_COMPRESS', None)
        try:
            with Dovecot() as d:
                self.assertFalse(d.compress)
                self.assertNotIn('COMPRESS=DEFLATE', caps_after_login(d))
            os.environ['IMAPFS_TEST_COMPRESS'] = '1'
            self.assertTrue(Dovecot().compress)
        finally:
            os.environ.pop('IMAPFS_TEST_COMPRESS', None)
            if saved is not None:
                os.environ['IMAPFS_TEST_COMPRESS'] = saved
        with Dovecot(compress=True) as d:
            self.assertIn('COMPRESS=DEFLATE', caps_after_login(d))
            c = d.connect()
            try:
                imaplib.Commands.setdefault('COMPRESS', ('AUTH', 'SELECTED'))
                typ, data = c._simple_command('COMPRESS', 'DEFLATE')
                self.assertEqual(typ, 'OK', data)
                # from here on raw deflate both ways: one NOOP, read to its tagged OK
                sock = c.sock
                z, unz = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
                sock.sendall(z.compress(b'Z1 NOOP\r\n') + z.flush(zlib.Z_SYNC_FLUSH))
                got = b''
                while b'Z1 OK' not in got:
                    chunk = sock.recv(4096)
                    self.assertTrue(chunk, 'Dovecot closed the compressed session')
                    got += unz.decompress(chunk)
                sock.sendall(z.compress(b'Z2 LOGOUT\r\n') + z.flush(zlib.Z_SYNC_FLUSH))
            finally:
                c.shutdown()

    def test_explicit_workdir(self):
        with tempfile.TemporaryDirectory(prefix='dvw') as tmp:
            # The dovecot user must be able to reach its home and passwd.
            with self.assertRaises(dovecot.HarnessError):
                Dovecot(workdir=os.path.join(tmp, 'x')).start()
            os.chmod(tmp, 0o755)
            with Dovecot(workdir=os.path.join(tmp, 'x')) as d:
                self.assertTrue(d.workdir.startswith(tmp))
                d.connect().logout()
            # A caller's workdir is left in place (only Dovecot is stopped).
            self.assertTrue(os.path.isdir(os.path.join(tmp, 'x')))


class TestCli(unittest.TestCase):
    SCRIPT = os.path.join(HERE, 'dovecot.py')
    CHECK = ('import os, sys, ssl, imaplib\n'
             'e = os.environ\n'
             'ctx = ssl.create_default_context(cafile=e["IMAPFS_TEST_CA_FILE"])\n'
             'c = imaplib.IMAP4_SSL(e["IMAPFS_TEST_HOST"], int(e["IMAPFS_TEST_PORT_IMAPS"]),'
             ' ssl_context=ctx)\n'
             'c.login(e["IMAPFS_TEST_USER"], e["IMAPFS_TEST_PASSWORD"])\n'
             'typ, data = c.select("INBOX", readonly=True)\n'
             'c.logout()\n'
             'sys.exit(7 if int(data[0]) > 5 else 1)\n')

    def test_run_propagates_status(self):
        r = subprocess.run([sys.executable, self.SCRIPT, 'run', '--seed', '--',
                            sys.executable, '-c', self.CHECK], timeout=120)
        self.assertEqual(r.returncode, 7)

    def test_run_fails_without_dovecot(self):
        env = dict(os.environ, PATH='/nonexistent')
        r = subprocess.run([sys.executable, self.SCRIPT, 'run', '--', '/bin/true'],
                           env=env, stderr=subprocess.PIPE, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'not installed', r.stderr)

    def test_start_env_stop(self):
        with tempfile.TemporaryDirectory(prefix='dvc') as tmp:
            os.chmod(tmp, 0o755)
            r = subprocess.run([sys.executable, self.SCRIPT, 'start', '--dir', tmp,
                                '--seed'], stdout=subprocess.PIPE, timeout=120)
            self.assertEqual(r.returncode, 0)
            lines = dict(l.split('=', 1) for l in r.stdout.decode().split())
            self.assertNotIn('IMAPFS_TEST_PASSWORD', lines)
            with open(lines['IMAPFS_TEST_PASSWORD_FILE']) as f:
                password = f.read().strip()
            try:
                ctx = ssl.create_default_context(cafile=lines['IMAPFS_TEST_CA_FILE'])
                c = imaplib.IMAP4_SSL('127.0.0.1', int(lines['IMAPFS_TEST_PORT_IMAPS']),
                                      ssl_context=ctx, timeout=10)
                c.login('alice', password)
                c.logout()
                r2 = subprocess.run([sys.executable, self.SCRIPT, 'env', '--dir', tmp],
                                    stdout=subprocess.PIPE, timeout=30)
                self.assertIn(("export IMAPFS_TEST_PASSWORD='%s'" % password).encode(),
                              r2.stdout)
                d = Dovecot.from_state(tmp)
                pids = d.processes()
                self.assertTrue(pids)
            finally:
                r3 = subprocess.run([sys.executable, self.SCRIPT, 'stop', '--dir', tmp],
                                    timeout=60)
            self.assertEqual(r3.returncode, 0)
            self.assertEqual([p for p in pids if _really_alive(p)], [])
            self.assertFalse(_accepts('127.0.0.1', int(lines['IMAPFS_TEST_PORT_IMAPS'])))


class _EchoServer:
    """Loopback echo server; also records what its side of a cut looks like."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.errors = []
        self.peers = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.peers.append(c)
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    def _echo(self, c):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError as e:
            self.errors.append(e)
        finally:
            c.close()

    def close(self):
        self.sock.close()


def _send_quietly(s, data):
    """sendall from a helper thread; the socket closing under it ends it silently."""
    try:
        s.sendall(data)
    except OSError:
        pass


def _recv_exact(s, n, timeout=5):
    s.settimeout(timeout)
    buf = b''
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


class TestTcpProxy(unittest.TestCase):
    def setUp(self):
        self.echo = _EchoServer()

    def tearDown(self):
        self.echo.close()

    def test_rejects_non_loopback(self):
        for bad in ('192.0.2.1', 'example.test', '0.0.0.0'):
            with self.assertRaises(ValueError):
                tcp_proxy.TcpProxy('127.0.0.1', bad, 1)
        with self.assertRaises(ValueError):
            tcp_proxy.TcpProxy('0.0.0.0', '127.0.0.1', 1)

    def test_forward_and_delay(self):
        delay = 100
        with tcp_proxy.TcpProxy('127.0.0.1', '127.0.0.1', self.echo.port,
                                delay_ms=delay) as p:
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                t0 = time.monotonic()
                s.sendall(b'ping')
                self.assertEqual(_recv_exact(s, 4), b'ping')
                rtt = time.monotonic() - t0
                # Both directions delayed: round trip >= 2 * delay.
                self.assertGreaterEqual(rtt, 2 * delay / 1000.0)
                self.assertLess(rtt, 2 * delay / 1000.0 + 1.0)
                # Throughput is not capped by the delay: 20 chunks pipelined
                # take about one round trip, not 20, and arrive in order.
                payload = b''.join(b'%03d' % i + os.urandom(2000) for i in range(20))
                t0 = time.monotonic()
                for i in range(20):
                    s.sendall(payload[i * 2003:(i + 1) * 2003])
                    time.sleep(0.005)
                got = _recv_exact(s, len(payload))
                elapsed = time.monotonic() - t0
                self.assertEqual(got, payload)
                # Capped, it would take >= 20 * 2 * delay (4 s).
                self.assertLess(elapsed, 12 * delay / 1000.0)
                # Large transfer, bytes exact.
                big = os.urandom(3 * 1024 * 1024)
                threading.Thread(target=s.sendall, args=(big,), daemon=True).start()
                self.assertEqual(_recv_exact(s, len(big), timeout=20), big)

    def test_counters(self):
        with tcp_proxy.TcpProxy('127.0.0.1', '127.0.0.1', self.echo.port) as p:
            self.assertEqual(p.counters(), (0, 0))
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                s.sendall(b'x' * 5000)
                self.assertEqual(_recv_exact(s, 5000), b'x' * 5000)
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                s.sendall(b'y' * 300)
                self.assertEqual(_recv_exact(s, 300), b'y' * 300)
            # Summed over connections, each direction on its own.
            self.assertEqual(p.counters(), (5300, 5300))
            p.reset_counters()
            self.assertEqual(p.counters(), (0, 0))

    def test_rate(self):
        # 800 KB at 8 Mbit/s (1 MB/s) takes >= 0.8 s; uncapped it takes milliseconds.  The
        # echo sends it back through the same cap in the other direction, which runs at the
        # same time, so the round trip costs ~0.8 s plus one chunk, not 1.6 s.
        n = 800 * 1000
        payload = os.urandom(n)
        with tcp_proxy.TcpProxy('127.0.0.1', '127.0.0.1', self.echo.port,
                                rate_bps=8e6) as p:
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                t0 = time.monotonic()
                threading.Thread(target=_send_quietly, args=(s, payload), daemon=True).start()
                self.assertEqual(_recv_exact(s, n, timeout=20), payload)
                elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.8)
            self.assertLess(elapsed, 1.6)
            self.assertEqual(p.counters(), (n, n))
            # The link is shared: two connections at once take as long as both payloads
            # on one (2 x 200 KB at 1 MB/s >= 0.4 s), not as long as one.
            p.reset_counters()
            m = 200 * 1000
            socks = [socket.create_connection(('127.0.0.1', p.port)) for _ in range(2)]
            try:
                t0 = time.monotonic()
                for s in socks:
                    threading.Thread(target=_send_quietly, args=(s, payload[:m]),
                                     daemon=True).start()
                for s in socks:
                    self.assertEqual(_recv_exact(s, m, timeout=20), payload[:m])
                elapsed = time.monotonic() - t0
            finally:
                for s in socks:
                    s.close()
            self.assertGreaterEqual(elapsed, 0.4)
            self.assertEqual(p.counters(), (2 * m, 2 * m))

    def test_rate_holds_sender_back(self):
        # With a cap the proxy reads at most its queue limit ahead of the link, so a sender
        # that writes 8 MB at 8 Mbit/s is held back (its sendall blocks), not drained into
        # the proxy's memory at loopback speed.
        with tcp_proxy.TcpProxy('127.0.0.1', '127.0.0.1', self.echo.port,
                                rate_bps=8e6) as p:
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                threading.Thread(target=_send_quietly, args=(s, b'z' * (8 << 20)),
                                 daemon=True).start()
                time.sleep(1.0)
                up, _down = p.counters()
                # ~1 MB sent through the link in 1 s, plus the queue limit (1 MiB at no
                # delay) in each direction and the sockets' buffers: far below 8 MB.
                self.assertLess(up, 5 << 20)
                self.assertGreater(up, 500 * 1000)

    def test_stall_resume(self):
        with tcp_proxy.TcpProxy('127.0.0.1', '127.0.0.1', self.echo.port) as p:
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                s.sendall(b'a')
                self.assertEqual(_recv_exact(s, 1), b'a')
                p.stall()
                s.sendall(b'held')
                s.settimeout(0.5)
                with self.assertRaises(socket.timeout):
                    s.recv(10)
                self.assertEqual(p.active_connections(), 1)
                p.resume()
                self.assertEqual(_recv_exact(s, 4), b'held')

    def test_cut(self):
        with tcp_proxy.TcpProxy('127.0.0.1', '127.0.0.1', self.echo.port) as p:
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                s.sendall(b'x')
                self.assertEqual(_recv_exact(s, 1), b'x')
                p.cut()
                s.settimeout(5)
                with self.assertRaises(ConnectionResetError):
                    s.recv(10)
                    s.sendall(b'more')
                    s.recv(10)
                self.assertEqual(p.active_connections(), 0)
            # The proxy keeps accepting new connections after a cut.
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                s.sendall(b'again')
                self.assertEqual(_recv_exact(s, 5), b'again')

    def test_cut_after(self):
        with tcp_proxy.TcpProxy('127.0.0.1', '127.0.0.1', self.echo.port) as p:
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                p.cut_after(1000)
                s.sendall(b'y' * 5000)
                s.settimeout(5)
                got = b''
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                except ConnectionResetError:
                    pass
                self.assertEqual(got, b'y' * 1000)

    def test_refuse(self):
        with tcp_proxy.TcpProxy('127.0.0.1', '127.0.0.1', self.echo.port) as p:
            p.refuse(True)
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                s.settimeout(5)
                try:
                    data = s.recv(10)
                except ConnectionResetError:
                    data = b''
                self.assertEqual(data, b'')
            p.refuse(False)
            with socket.create_connection(('127.0.0.1', p.port)) as s:
                s.sendall(b'ok')
                self.assertEqual(_recv_exact(s, 2), b'ok')

    def test_cli(self):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, 'tcp_proxy.py'),
                                 '--target', '127.0.0.1:%d' % self.echo.port,
                                 '--delay-ms', '10'], stdout=subprocess.PIPE)
        try:
            line = proc.stdout.readline().decode()
            port = int(re.search(r':(\d+) ->', line).group(1))
            with socket.create_connection(('127.0.0.1', port)) as s:
                s.sendall(b'cli')
                self.assertEqual(_recv_exact(s, 3), b'cli')
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(10), 0)
            proc.stdout.close()
        bad = subprocess.run([sys.executable, os.path.join(HERE, 'tcp_proxy.py'),
                              '--target', '192.0.2.1:143'], stderr=subprocess.PIPE)
        self.assertEqual(bad.returncode, 2)


if __name__ == '__main__':
    unittest.main(verbosity=2)
