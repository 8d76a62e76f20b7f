#!/usr/bin/python3
"""imapfs mounted against a hostile IMAP server: never a path outside the mount, never a crash,
never a lie to the kernel, never a credential outside TLS.

The server is tests/fs/hostile_server.py on loopback with implicit TLS (or STARTTLS) and a
throwaway CA made with openssl at test time (tests/imap/certs.py).  Each test mounts the built
imapfs (foreground, log captured) against it, has the server misbehave in one way, and checks
that the reader gets a clear error (EIO) or correct data, that the daemon is still alive and the
mount still works afterwards; Compressed does the same through COMPRESS=DEFLATE.  The STARTTLS cases fail at startup: one `imapfs:` line, a
non-zero exit, nothing mounted, and no credential byte ever sent.

Environment: IMAPFS_BIN (the built imapfs).  Fails, never skips, without /dev/fuse.
Python stdlib only.
"""

import concurrent.futures
import errno
import os
import re
import subprocess
import sys
import time
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'imap'))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
from certs import make_pki  # noqa: E402
from hostile_server import HostileServer, PASSWORD, USER, Closed  # noqa: E402
from cases import MARGIN, TIMEOUT, temp_dir  # noqa: E402
from mounts import (IMAPFS, Mount, daemon_env, daemon_pids, mounted,  # noqa: E402
                    require_environment, unmount, write_config)
from probes import bounded, read, timed_read  # noqa: E402

PKI = None
PKI_DIR = None


def setUpModule():
    global PKI, PKI_DIR
    require_environment()
    PKI_DIR = unittest.enterModuleContext(temp_dir('ifh-pki'))
    PKI = make_pki(PKI_DIR)


def msg(n, size=300):
    head = ('From: x%d@example.com\r\nSubject: message %d\r\n\r\n' % (n, n)).encode()
    return head + (b'line of message %d\r\n' % n) * max(1, (size - len(head)) // 20)


class HostileCase(unittest.TestCase):
    def setUp(self):
        self.tmp = self.enterContext(temp_dir('ifh'))
        self.msgs = {uid: msg(uid, 300 * uid) for uid in range(1, 7)}

    def server(self, tls='imaps', folders=None):
        cert, key = PKI['good']
        srv = HostileServer(cert, key, folders=folders or {'INBOX': self.msgs}, tls=tls)
        self.addCleanup(srv.close)
        return srv

    def config(self, srv, tls='imaps', **over):
        keys = {'host': '127.0.0.1', 'port': str(srv.port), 'tls': tls, 'user': USER,
                'password': PASSWORD, 'ca_file': PKI['ca'], 'timeout': str(TIMEOUT),
                'refresh': '1', 'connections': '2', 'cache_dir': None}
        keys.update(over)
        return write_config(os.path.join(self.tmp, 'config'), **keys)

    def mount(self, srv, **over):
        m = Mount(self.tmp, self.config(srv, **over), name='mnt', foreground=True,
                  private_home=True)
        self.addCleanup(m.close)
        return m

    def assertAlive(self, m, srv):
        """The daemon runs and the mount still serves an ordinary message correctly."""
        self.assertIsNone(m.proc.poll(), 'daemon died:\n' + m.log_text()[-3000:])
        self.assertEqual(srv.errors, [], 'the test server itself failed')
        self.assertTrue(mounted(m.path))
        r = timed_read(os.path.join(m.path, 'INBOX', '1', 'message.eml'), TIMEOUT + MARGIN + 10)
        self.assertEqual((r.err, r.data), (0, self.msgs[1]), 'mount no longer works')

    def assertNoOverflowMessages(self, m):
        log = m.log_text()
        for bad in ('AddressSanitizer', 'runtime error', 'CRITICAL', 'critical', 'assert'):
            self.assertNotIn(bad, log)


class ConnectionLimit(HostileCase):
    def test_limit_refusal_makes_do_with_the_connections_it_has(self):
        """A server that allows a user fewer connections than `connections` (Dovecot's
        mail_max_userip_connections, Gmail's 15 per account, shared with the user's other
        clients) refuses one more login with NO [LIMIT]: parallel readers still get every
        file, over the connections the mount has, and the log says so once."""
        srv = self.server()
        srv.max_logins = 2
        self.msgs.update({uid: msg(uid, 2000 + uid) for uid in range(7, 41)})
        srv.folders[b'INBOX'] = dict(self.msgs)
        m = self.mount(srv, connections='6', readahead='0', watch='off')
        folder = os.path.join(m.path, 'INBOX')
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(
                lambda u: timed_read(os.path.join(folder, str(u), 'message.eml'),
                                     TIMEOUT + MARGIN + 10), sorted(self.msgs)))
        self.assertEqual([(r.err, r.data) for r in got],
                         [(0, self.msgs[u]) for u in sorted(self.msgs)])
        self.assertGreater(srv.limit_refusals, 0, 'the test never reached the limit')
        self.assertEqual(m.log_text().count('making do with the connections open'), 1,
                         m.log_text()[-2000:])
        self.assertAlive(m, srv)


class ExamineOrder(HostileCase):
    def test_answers_before_examine_are_not_used(self):
        """imapfs sends an EXAMINE together with the listing or FETCH that needs it.  A server
        that answers those before the EXAMINE, still in the mailbox examined before (RFC 3501
        5.5 says it must not), never makes one folder's messages appear in another: listings
        and bodies come out right (asked again once the EXAMINE has ended)."""
        for cache in ('on', 'off'):   # bodies streamed to the disk cache / into memory
            with self.subTest(cache=cache):
                self._examine_late(cache)

    def _examine_late(self, cache):
        other = {uid: msg(100 + uid, 500) for uid in range(1, 5)}
        srv = self.server(folders={'INBOX': self.msgs, 'Other': other})
        srv.examine_late = True
        # one connection for everything, so it keeps switching folders; no read-ahead, so
        # each body below is one fetch
        m = self.mount(srv, connections='1', readahead='0', refresh='600', cache=cache)
        inbox, oth = os.path.join(m.path, 'INBOX'), os.path.join(m.path, 'Other')
        self.assertEqual(sorted(int(u) for u in os.listdir(inbox)), sorted(self.msgs))
        self.assertEqual(read(os.path.join(inbox, '1', 'message.eml')), self.msgs[1])
        self.assertEqual(sorted(int(u) for u in os.listdir(oth)), sorted(other))
        self.assertEqual(read(os.path.join(oth, '2', 'message.eml')), other[2])
        # the connection examines Other: INBOX's UID 2 is asked with a new EXAMINE, and the
        # server first answers with Other's UID 2
        self.assertEqual(read(os.path.join(inbox, '2', 'message.eml')), self.msgs[2])
        self.assertEqual(read(os.path.join(oth, '3', 'message.eml')), other[3])
        self.assertGreaterEqual(srv.late_answers, 4, srv.commands)
        self.assertAlive(m, srv)
        m.close()


# ---- folder names --------------------------------------------------------------------------------


def list_line(name, delim=b'.', flags=b''):
    d = b'NIL' if delim is None else b'"' + delim + b'"'
    if isinstance(name, tuple):      # ('literal', bytes)
        return b'* LIST (' + flags + b') ' + d + b' {%d}\r\n' % len(name[1]) + name[1] + b'\r\n'
    return b'* LIST (' + flags + b') ' + d + b' "' + name + b'"\r\n'


class FolderNames(HostileCase):
    def folder_server(self, names):
        """A server whose LIST answers `names` (bytes or ('literal', bytes)); every name is
        also an examinable mailbox holding one message."""
        folders = {'INBOX': self.msgs}
        for n in names:
            raw = n[1] if isinstance(n, tuple) else n
            if raw != b'INBOX':
                folders[raw.replace(b'\\\\', b'\\')] = {1: msg(1)}
        srv = self.server(folders=folders)
        srv.list_lines = [list_line(n) for n in names]
        return srv

    def walk(self, root):
        """Every path under root (bounded in time), checked to stay inside the mount."""
        def go():
            out = []
            for dirpath, dirnames, filenames in os.walk(root):
                for name in dirnames + filenames:
                    p = os.path.join(dirpath, name)
                    self.assertNotIn(name, ('.', '..'))
                    self.assertNotIn('/', name)
                    self.assertLessEqual(len(os.fsencode(name)), 255)
                    real = os.path.realpath(p)
                    self.assertTrue(real == root or real.startswith(root + '/'), p)
                    out.append(os.path.relpath(p, root))
            return out
        return bounded(go, 60)

    def test_hostile_names(self):
        names = [
            b'INBOX',
            b'a..b', b'.hidden', b'..', b'.', b'trail.', b'Safe.Child', b'Safe.Child.Deep',
            b'x/y',                     # '/' inside a name: shown as U+2215
            b'x&IhU-y',                 # decodes to x\u2215y: collides with the one above
            b'up/../../../etc',         # splits on '.' into empty components
            b'A' * 300,                 # longer than NAME_MAX
            b'&AOk-', '\u00e9'.encode(),  # both show as "\u00e9": one must be skipped
            b'dup', b'dup',             # listed twice
            b'%*\\\\', b'Sp ace',
        ]
        srv = self.folder_server(names)
        srv.list_lines.append(list_line(b'../../x', delim=None))   # flat name with '/'
        srv.list_lines.append(list_line(b'up/../../etc2', delim=b'/'))
        srv.folders[b'../../x'] = {1: msg(1)}
        srv.folders[b'up/../../etc2'] = {1: msg(1)}
        m = self.mount(srv)
        root = os.path.realpath(m.path)
        paths = self.walk(root)
        top = set(os.listdir(root))
        self.assertIn('INBOX', top)
        self.assertIn('Safe', top)
        self.assertEqual(os.listdir(os.path.join(root, 'Safe')), ['Child'])
        self.assertIn('Deep', os.listdir(os.path.join(root, 'Safe', 'Child')))
        self.assertIn('x\u2215y', top)
        self.assertIn('..\u2215..\u2215x', top)
        self.assertIn('\u00e9', top)
        self.assertIn('dup', top)
        self.assertIn('Sp ace', top)
        for bad in ('a', 'b', 'hidden', 'trail', 'A' * 300, 'etc', 'etc2', 'up', 'x'):
            self.assertNotIn(bad, top)
        # a folder name that claims to be an existing path: nothing outside the mount moved
        self.assertFalse(os.path.exists(os.path.join(root, '..', 'etc2')))
        # every shown folder is a real, listable folder with its message
        for name in ('x\u2215y', '..\u2215..\u2215x', '\u00e9', 'dup', 'Sp ace'):
            self.assertEqual(read(os.path.join(root, name, '1', 'subject')), b'message 1\n')
        self.assertTrue(any(p.startswith('Safe/Child/Deep/1/') for p in paths), paths[:20])
        log = m.log_text()
        self.assertGreaterEqual(len(re.findall(r'skipping folder', log)), 6, log)
        self.assertAlive(m, srv)

    def test_nul_in_folder_name_skipped(self):
        """A name with a NUL byte (only possible as a literal) is skipped, and does not take
        the other folders down with it."""
        srv = self.folder_server([b'INBOX', (b'literal', b'nu\0ll'), b'Other'])
        m = self.mount(srv)
        top = set(os.listdir(m.path))
        self.assertEqual(top, {'INBOX', 'Other'})
        self.walk(os.path.realpath(m.path))
        self.assertAlive(m, srv)

    def test_nul_in_folder_name_at_refresh(self):
        """The same name appearing at a later LIST (refresh) does not make the root fail."""
        srv = self.folder_server([b'INBOX', b'Other'])
        m = self.mount(srv)
        self.assertEqual(set(os.listdir(m.path)), {'INBOX', 'Other'})
        srv.list_lines.insert(1, list_line((b'literal', b'nu\0ll')))
        time.sleep(1.2)
        self.assertEqual(set(bounded(os.listdir, 10, m.path)), {'INBOX', 'Other'})
        self.assertAlive(m, srv)

    def test_invalid_mutf7_skipped_as_documented(self):
        """README: broken modified UTF-7 is skipped; a raw UTF-8 name is shown as sent."""
        srv = self.folder_server([b'INBOX', b'&AGE-', b'&Jjo', b'&-&',
                                  'Déjà vu'.encode(), b'Bad\xff\xfeName'])
        m = self.mount(srv)
        self.walk(os.path.realpath(m.path))
        self.assertIsNone(m.proc.poll())
        self.assertEqual(set(os.listdir(m.path)), {'INBOX', 'Déjà vu'})
        # a raw 8-bit name goes out as a literal, which is never pipelined: EXAMINE on its
        # own, then the listing and the FETCH (imap_examine_list_all / _fetch_body)
        self.assertEqual(os.listdir(os.path.join(m.path, 'Déjà vu')), ['1'])
        self.assertEqual(read(os.path.join(m.path, 'Déjà vu', '1', 'message.eml')), msg(1))
        self.assertTrue(any(c.endswith(b' EXAMINE {...}') for _n, c in srv.commands),
                        srv.commands)


# ---- hostile FETCH answers ---------------------------------------------------------------------


class HostileFetch(HostileCase):
    def hook(self, srv, uid, answer):
        """Answer the body FETCH of uid with answer(conn, tag) -> bytes (may raise Closed)."""
        prev = srv.body_hook

        def h(conn, u, tag):
            if u == uid:
                return answer(conn, tag)
            return prev(conn, u, tag) if prev else None
        srv.body_hook = h

    def read_fails_cleanly(self, m, srv, uid, codes=(errno.EIO,)):
        r = timed_read(os.path.join(m.path, 'INBOX', str(uid), 'message.eml'),
                       TIMEOUT + MARGIN + 10)
        self.assertIn(r.err, codes, 'UID %d: got %s, %d bytes' % (
            uid, errno.errorcode.get(r.err, r.err), len(r.data)))
        self.assertLess(r.elapsed, 2 * TIMEOUT + MARGIN)
        return r

    def test_huge_literals(self):
        """Literals announced as 2^32, 2^64-1 and 2^64 bytes (and more digits than any
        integer): EIO at once, nothing allocated for them, daemon fine."""
        srv = self.server()
        sizes = {2: b'4294967296', 3: b'18446744073709551615', 4: b'18446744073709551616',
                 5: b'9' * 40}
        for uid, size in sizes.items():
            self.hook(srv, uid, lambda conn, tag, uid=uid, size=size:
                      b'* %d FETCH (UID %d BODY[] {%s}\r\n' % (uid, uid, size) + b'x' * 5000)
        m = self.mount(srv)
        os.listdir(os.path.join(m.path, 'INBOX'))
        for uid in sizes:
            self.read_fails_cleanly(m, srv, uid)
        self.assertNoOverflowMessages(m)
        self.assertAlive(m, srv)

    def test_truncated_literal(self):
        srv = self.server()

        def answer(conn, tag):
            conn.send(b'* 3 FETCH (UID 3 BODY[] {100000}\r\n' + b'y' * 50000)
            raise Closed
        self.hook(srv, 3, answer)
        m = self.mount(srv)
        self.read_fails_cleanly(m, srv, 3)
        self.assertAlive(m, srv)

    def test_deeply_nested_lists(self):
        """100,000 nested lists in a FETCH answer and in a LIST answer at refresh."""
        srv = self.server()
        deep = b'(' * 100000 + b')' * 100000
        self.hook(srv, 2, lambda conn, tag: b'* 2 FETCH (UID 2 X-JUNK ' + deep + b')\r\n' +
                  tag + b' OK done\r\n')
        m = self.mount(srv)
        self.read_fails_cleanly(m, srv, 2)
        self.assertAlive(m, srv)
        srv.list_lines = [list_line(b'INBOX'), b'* LIST ' + deep + b' "." "Deep"\r\n']
        time.sleep(1.2)
        try:
            bounded(os.listdir, 2 * TIMEOUT + MARGIN, m.path)
        except OSError as e:
            self.assertEqual(e.errno, errno.EIO)
        srv.list_lines = None
        self.assertAlive(m, srv)

    def test_response_codes_out_of_context(self):
        """APPENDUID, COPYUID, UIDVALIDITY and garbage codes on a FETCH: ignored (best
        effort), the right bytes are served."""
        srv = self.server()
        body = self.msgs[4]
        self.hook(srv, 4, lambda conn, tag: (
            b'* OK [APPENDUID 9 9] surprise\r\n* OK [UIDVALIDITY 1] not now\r\n'
            b'* NO [ALERT] alert in the middle\r\n'
            b'* 4 FETCH (UID 4 BODY[] {%d}\r\n%s)\r\n%s OK [APPENDUID 7 1] done\r\n'
            % (len(body), body, tag)))
        self.hook(srv, 5, lambda conn, tag: (
            b'* 5 FETCH (UID 5 BODY[] {%d}\r\n%s)\r\n%s OK [COPYUID 1 1:2 3:4] [x\r\n'
            % (len(self.msgs[5]), self.msgs[5], tag)))
        m = self.mount(srv)
        r = timed_read(os.path.join(m.path, 'INBOX', '4', 'message.eml'), 20)
        self.assertEqual((r.err, r.data), (0, body))
        r = timed_read(os.path.join(m.path, 'INBOX', '5', 'message.eml'), 20)
        self.assertEqual((r.err, r.data), (0, self.msgs[5]))
        self.assertAlive(m, srv)

    def test_fetch_for_other_uids(self):
        """Answers for UIDs that were not asked for never become the asked message."""
        srv = self.server()
        one = self.msgs[1]

        def other_first(conn, tag):
            return (b'* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\n' % (len(one), one) +
                    b'* 6 FETCH (UID 6 BODY[] {%d}\r\n%s)\r\n' % (len(self.msgs[6]),
                                                                  self.msgs[6]) +
                    b'* 9 FETCH (FLAGS (\\Seen))\r\n' + tag + b' OK done\r\n')

        def only_other(conn, tag):
            return (b'* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\n' % (len(one), one) +
                    tag + b' OK done\r\n')

        def body_before_uid(conn, tag):   # legal order, but UID after the body
            return (b'* 2 FETCH (BODY[] {%d}\r\n%s UID 1)\r\n' % (len(one), one) +
                    b'* 3 FETCH (BODY[] {%d}\r\n%s UID 3)\r\n' % (len(self.msgs[3]),
                                                               self.msgs[3]) +
                    tag + b' OK done\r\n')
        self.hook(srv, 6, other_first)
        self.hook(srv, 5, only_other)
        self.hook(srv, 3, body_before_uid)
        m = self.mount(srv)
        r = timed_read(os.path.join(m.path, 'INBOX', '6', 'message.eml'), 20)
        self.assertEqual((r.err, r.data), (0, self.msgs[6]))
        r = timed_read(os.path.join(m.path, 'INBOX', '3', 'message.eml'), 20)
        self.assertEqual((r.err, r.data), (0, self.msgs[3]))
        r = self.read_fails_cleanly(m, srv, 5, codes=(errno.EIO, errno.ENOENT))
        self.assertNotEqual(r.data, one)
        self.assertAlive(m, srv)

    def test_fetch_without_body(self):
        """Tagged OK and no literal: a clear error, not an empty file."""
        srv = self.server()
        self.hook(srv, 2, lambda conn, tag: tag + b' OK no body for you\r\n')
        self.hook(srv, 3, lambda conn, tag: b'* 3 FETCH (UID 3 FLAGS (\\Seen))\r\n' +
                  tag + b' OK flags only\r\n')
        self.hook(srv, 4, lambda conn, tag: b'* 4 FETCH (UID 4 BODY[] NIL)\r\n' +
                  tag + b' OK nil body\r\n')
        m = self.mount(srv)
        for uid in (2, 3, 4):
            self.read_fails_cleanly(m, srv, uid, codes=(errno.EIO, errno.ENOENT))
            self.assertFalse(bounded(lambda uid=uid: os.path.exists(
                os.path.join(m.path, 'INBOX', str(uid), 'body')) and
                read(os.path.join(m.path, 'INBOX', str(uid), 'body')) == b'', 20))
        self.assertAlive(m, srv)

    def check_size_lie(self, reported):
        srv = self.server()
        real = self.msgs[6]
        srv.sizes[(b'INBOX', 6)] = reported
        m = self.mount(srv)
        eml = os.path.join(m.path, 'INBOX', '6', 'message.eml')
        # st_size is the fetched length from the first stat on: RFC822.SIZE never reaches
        # the kernel (which would cut reads at it, or pad them).
        self.assertEqual(os.stat(eml).st_size, len(real), 'stat before reading')
        r = timed_read(eml, 20)
        self.assertEqual(r.err, 0)
        self.assertEqual(len(r.data), len(real), 'read until EOF gave the wrong length')
        self.assertEqual(r.data, real)
        self.assertEqual(r.size, len(real), 'fstat after reading')
        self.assertEqual(os.stat(eml).st_size, len(real), 'stat after reading')
        res = subprocess.run(['cat', eml], stdout=subprocess.PIPE, timeout=20)
        self.assertEqual(res.stdout, real, 'cat truncated to (or padded past) RFC822.SIZE')
        res = subprocess.run(['cat', os.path.join(m.path, 'INBOX', '6', 'subject')],
                             stdout=subprocess.PIPE, timeout=20)
        self.assertEqual(res.stdout, b'message 6\n')
        self.assertAlive(m, srv)

    def test_rfc822_size_smaller_than_body(self):
        self.check_size_lie(100)

    def test_rfc822_size_bigger_than_body(self):
        self.check_size_lie(len(self.msgs[6]) * 10)

    def check_size_extreme(self, reported):
        srv = self.server()
        srv.sizes[(b'INBOX', 6)] = reported
        m = self.mount(srv)
        eml = os.path.join(m.path, 'INBOX', '6', 'message.eml')
        r = timed_read(eml, 20)
        self.assertEqual((r.err, r.data), (0, self.msgs[6]))
        self.assertEqual(os.stat(eml).st_size, len(self.msgs[6]))
        self.assertAlive(m, srv)

    def test_rfc822_size_zero(self):
        self.check_size_extreme(0)

    def test_rfc822_size_int64_max(self):
        self.check_size_extreme((1 << 63) - 1)

    def test_rfc822_size_above_int64(self):
        self.check_size_extreme((1 << 64) - 1)


# ---- STARTTLS: must fail before any credential is sent -----------------------------------------


class Compressed(HostileCase):
    """COMPRESS=DEFLATE from a hostile server (in both runs, whatever IMAPFS_TEST_COMPRESS
    says): a corrupt stream breaks that one connection (EIO, the next read reconnects and
    compresses again), and a compression bomb meets the parser's caps with the daemon's memory
    bounded."""

    hook = HostileFetch.hook
    read_fails_cleanly = HostileFetch.read_fails_cleanly

    def compressed_server(self):
        cert, key = PKI['good']
        srv = HostileServer(cert, key, folders={'INBOX': self.msgs}, compress=True)
        self.addCleanup(srv.close)
        return srv

    def test_default_auto_not_on_loopback(self):
        """With no compress key (auto) the daemon never asks a server it reached on a
        loopback address, though it offers COMPRESS=DEFLATE; compress = on asks."""
        for value, want in ((None, 0), ('on', 1)):
            with self.subTest(compress=value):
                srv = self.compressed_server()
                m = Mount(self.tmp, self.config(srv, readahead='0', compress=value),
                          name='mnt-%s' % value, foreground=True, private_home=True)
                self.addCleanup(m.close)
                r = timed_read(os.path.join(m.path, 'INBOX', '3', 'message.eml'),
                               TIMEOUT + MARGIN + 10)
                self.assertEqual((r.err, r.data), (0, self.msgs[3]))
                if want:
                    self.assertGreaterEqual(srv.compressed, 1, 'compress = on did not ask')
                else:
                    self.assertEqual(srv.compressed, 0, 'auto asked a loopback server')

    def test_corrupt_stream_is_eio_then_reconnects(self):
        srv = self.compressed_server()
        done = []

        def answer(conn, tag):
            if done:
                return None   # the second time: the real body
            done.append(1)
            conn.send(b'* 3 FETCH (UID 3 BODY[] {%d}\r\n' % len(self.msgs[3]))
            conn.send_raw(b'\xff' * 16)   # not deflate: corrupt
            return b''
        self.hook(srv, 3, answer)
        # the whole-message path: with fetch = parts a broken connection at a piece is
        # answered by the whole message on a new connection (loader.h), hiding the EIO
        m = self.mount(srv, readahead='0', fetch='whole')
        self.read_fails_cleanly(m, srv, 3)
        self.assertIn('corrupt compressed data', m.log_text())
        r = timed_read(os.path.join(m.path, 'INBOX', '3', 'message.eml'), TIMEOUT + MARGIN + 10)
        self.assertEqual((r.err, r.data), (0, self.msgs[3]))
        self.assertGreaterEqual(srv.compressed, 2, 'the new connection did not compress')
        self.assertNoOverflowMessages(m)
        self.assertAlive(m, srv)

    def test_bomb_is_bounded(self):
        """A FETCH answer that inflates to 200 MiB of text without a line end (some 200 KB
        on the wire): EIO at the 64 MiB response-text cap, the daemon's peak memory stays
        under 200 MiB, and the mount goes on working."""
        srv = self.compressed_server()

        def answer(conn, tag):
            piece = b'A' * (1 << 20)
            conn.send(b'* 2 FETCH (UID 2 X-JUNK ')
            for _ in range(200):
                conn.send_raw(conn.deflater.compress(piece))
            conn.send_raw(conn.deflater.flush(zlib.Z_SYNC_FLUSH))
            return b''
        self.hook(srv, 2, answer)
        m = self.mount(srv, readahead='0')
        self.read_fails_cleanly(m, srv, 2)
        self.assertIn('response longer than', m.log_text())
        with open('/proc/%d/status' % m.proc.pid) as f:
            hwm_kb = int(re.search(r'VmHWM:\s+(\d+) kB', f.read()).group(1))
        print('daemon VmHWM %d KiB' % hwm_kb, file=sys.stderr)
        self.assertLess(hwm_kb, 200 * 1024, 'the bomb was not bounded')
        self.assertNoOverflowMessages(m)
        self.assertAlive(m, srv)


class StartTLS(HostileCase):
    def run_imapfs(self, srv):
        cfg = self.config(srv, tls='starttls')
        mnt = os.path.join(self.tmp, 'mnt')
        os.makedirs(mnt, exist_ok=True)
        self.addCleanup(unmount, mnt)
        res = subprocess.run([IMAPFS, '-o', 'config=' + cfg, mnt], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60,
                             env=daemon_env(os.path.join(self.tmp, 'cache')))
        return res.returncode, res.stderr.decode('utf-8', 'replace'), mnt

    def assertRefused(self, srv, pattern):
        rc, err, mnt = self.run_imapfs(srv)
        self.assertNotEqual(rc, 0, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith('imapfs: '), err)
        self.assertRegex(lines[0], pattern)
        self.assertFalse(mounted(mnt))
        self.assertEqual(daemon_pids(mnt), [])
        got = bytes(srv.received)
        for secret in (PASSWORD.encode(), b'LOGIN', b'AUTHENTICATE', USER.encode()):
            self.assertNotIn(secret, got)
        self.assertNotIn(PASSWORD, err)

    def test_not_offered(self):
        srv = self.server(tls='starttls')
        srv.offer_starttls = False
        srv.greeting = b'* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] no tls here\r\n'
        self.assertRefused(srv, r'STARTTLS')

    def test_refused_no(self):
        srv = self.server(tls='starttls')
        srv.starttls_answer = lambda conn, tag: tag + b' NO [UNAVAILABLE] not today\r\n'
        self.assertRefused(srv, r'STARTTLS')

    def test_refused_bad(self):
        srv = self.server(tls='starttls')
        srv.starttls_answer = lambda conn, tag: tag + b' BAD what\r\n'
        self.assertRefused(srv, r'STARTTLS')

    def test_preauth(self):
        srv = self.server(tls='starttls')
        srv.greeting = b'* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome back\r\n'
        self.assertRefused(srv, r'PREAUTH')

    def test_injection_after_ok(self):
        srv = self.server(tls='starttls')
        srv.starttls_answer = lambda conn, tag: (
            tag + b' OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n')
        self.assertRefused(srv, r'(?i)inject|TLS')

    def test_untagged_before_starttls_ok(self):
        """Untagged data before the STARTTLS OK (plaintext, forgeable): either ignored -- the
        session then learns its capabilities again inside TLS and logs in only there -- or the
        connection is refused.  Never a credential in plaintext."""
        srv = self.server(tls='starttls')
        srv.starttls_answer = lambda conn, tag: (
            b'* CAPABILITY IMAP4rev1 AUTH=PLAIN LOGINDISABLED\r\n'
            b'* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] forged\r\n' +
            tag + b' OK begin TLS\r\n')
        srv.starttls_continue = True
        rc, err, mnt = self.run_imapfs(srv)
        plain = bytes(srv.received_plain)
        for secret in (PASSWORD.encode(), b'LOGIN', b'AUTHENTICATE', USER.encode()):
            self.assertNotIn(secret, plain)
        if rc == 0:
            self.assertTrue(mounted(mnt))
            self.assertIn('INBOX', os.listdir(mnt))
            # After TLS the client asked CAPABILITY again instead of trusting the forged list
            cmds = [c for _n, c in srv.commands]
            i = next(i for i, c in enumerate(cmds) if b'STARTTLS' in c)
            self.assertRegex(cmds[i + 1], rb'^\S+ CAPABILITY$')
        else:
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertFalse(mounted(mnt))


class SearchAnswers(HostileCase):
    """Search directories (FOLDER/.search/...) against a server whose SEARCH answers go wrong:
    a refusal is EIO with a log line, hostile answers never crash the daemon nor show a message
    the folder does not have, and the mount keeps working.  The server offers neither ESEARCH
    nor SEARCHRES: imapfs sends EXAMINE + UID SEARCH, then EXAMINE + UID FETCH of the hits."""

    def search_dir(self, m, comp):
        return os.path.join(m.path, 'INBOX', '.search', comp)

    def assert_eio(self, path):
        with self.assertRaises(OSError) as cm:
            os.listdir(path)
        self.assertEqual(cm.exception.errno, errno.EIO, path)

    def test_refusals_are_eio_with_a_log_line(self):
        srv = self.server()
        answers = {b'plain': b' NO [CANNOT] search too complex\r\n',
                   b'bad': b' BAD [PARSE] cannot parse\r\n'}
        srv.search_hook = lambda conn, tag, crit: next(
            (tag + a for k, a in answers.items() if k in crit), None)
        m = self.mount(srv)
        self.assert_eio(self.search_dir(m, 'subject=plain'))
        self.assertIn('search .search/subject=plain in INBOX failed', m.log_text())
        self.assertIn('search too complex', m.log_text())
        self.assert_eio(self.search_dir(m, 'subject=bad'))
        self.assertIn('search .search/subject=bad in INBOX failed', m.log_text())
        # the server's ordinary answer: every message (it ignores the criteria)
        self.assertEqual(sorted(int(u) for u in os.listdir(self.search_dir(m, 'subject=x'))),
                         sorted(self.msgs))
        self.assertAlive(m, srv)

    def test_charset_refused(self):
        srv = self.server()
        srv.search_hook = lambda conn, tag, crit: (
            tag + b' NO [BADCHARSET (US-ASCII)] only ASCII here\r\n' if b'CHARSET' in crit
            else None)
        m = self.mount(srv)
        self.assert_eio(self.search_dir(m, 'subject=회의'))
        self.assertIn('cannot search for non-ASCII text', m.log_text())
        sent = [c for _n, c in srv.commands if b'SEARCH' in c]
        self.assertTrue(any(b'UID SEARCH CHARSET UTF-8 SUBJECT {' in c for c in sent), sent)
        self.assertEqual(sorted(int(u) for u in os.listdir(self.search_dir(m, 'subject=abc'))),
                         sorted(self.msgs))
        self.assertAlive(m, srv)

    def test_hostile_answers(self):
        srv = self.server()
        srv.search_hook = lambda conn, tag, crit: {
            b'ghost': b'* SEARCH 2 4 999 4000000000\r\n' + tag + b' OK done\r\n',
            b'garbage': b'* SEARCH 1 two (3\r\n' + tag + b' OK done\r\n',
            b'zero': b'* SEARCH 0\r\n' + tag + b' OK done\r\n',
        }.get(crit.split(b'"')[1] if b'"' in crit else b'', None)
        m = self.mount(srv)
        # UIDs the folder does not have get no attributes from the FETCH: not shown
        self.assertEqual(sorted(os.listdir(self.search_dir(m, 'subject=ghost'))), ['2', '4'])
        self.assertEqual(read(os.path.join(self.search_dir(m, 'subject=ghost'), '4',
                                           'message.eml')), self.msgs[4])
        self.assert_eio(self.search_dir(m, 'subject=garbage'))
        self.assert_eio(self.search_dir(m, 'subject=zero'))
        self.assertAlive(m, srv)
        self.assertNoOverflowMessages(m)

    def test_values_reach_the_wire_quoted(self):
        srv = self.server()
        m = self.mount(srv)
        os.listdir(self.search_dir(m, 'subject=a" OR ALL (x)*{5}\\'))
        sent = [c for _n, c in srv.commands if b'UID SEARCH' in c]
        self.assertIn(b'UID SEARCH SUBJECT "a\\" OR ALL (x)*{5}\\\\"', sent[-1], sent)
        with self.assertRaises(OSError) as cm:
            os.listdir(self.search_dir(m, 'subject=a\r\nA9 DELETE INBOX'))
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        self.assertFalse([c for _n, c in srv.commands if b'DELETE' in c])
        self.assertAlive(m, srv)

    def test_answers_before_examine_are_not_used(self):
        other = {uid: msg(100 + uid, 500) for uid in range(10, 13)}
        srv = self.server(folders={'INBOX': self.msgs, 'Other': other})
        srv.examine_late = True
        m = self.mount(srv, connections='1', readahead='0', refresh='600')
        os.listdir(os.path.join(m.path, 'Other'))  # the connection examines Other
        got = sorted(int(u) for u in os.listdir(self.search_dir(m, 'subject=x')))
        self.assertEqual(got, sorted(self.msgs))
        self.assertGreater(srv.late_answers, 0)
        self.assertAlive(m, srv)


class Watch(HostileCase):
    """fs/watch.c against servers without NOTIFY: IDLE only, and neither extension."""

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    @staticmethod
    def examines(command, name):
        parts = command.split(b' ', 2)
        return parts[1:2] == [b'EXAMINE'] and parts[2:] in ([name], [b'"' + name + b'"'])

    def idle_commands(self, srv):
        with srv.lock:
            return [(n, c) for n, c in srv.commands if c.split(b' ')[1:2] == [b'IDLE']]

    def test_idle_only_watches_the_folder_in_use(self):
        srv = self.server(folders={'INBOX': self.msgs, 'Other': {1: msg(1)}})
        srv.extra_caps = b' IDLE'
        m = self.mount(srv, refresh='3600', connections='4')
        inbox = os.path.join(m.path, 'INBOX')
        self.assertEqual(sorted(int(u) for u in os.listdir(inbox)), list(range(1, 7)))
        self.assertTrue(self.wait_for(lambda: self.idle_commands(srv), 5),
                        'no IDLE sent:\n' + m.log_text())
        n = self.idle_commands(srv)[0][0]
        with srv.lock:
            mine = [c for k, c in srv.commands if k == n]
        self.assertTrue(any(self.examines(c, b'INBOX') for c in mine), mine)
        self.assertFalse(any(b'NOTIFY' in c for _, c in srv.commands), 'NOTIFY not offered')
        with srv.lock:
            srv.folders[b'INBOX'][7] = msg(7)
        srv.push('INBOX')
        self.assertTrue(self.wait_for(lambda: '7' in os.listdir(inbox), 3),
                        'pushed message not shown within 3 s:\n' + m.log_text())
        self.assertIn(b'message 7', open(os.path.join(inbox, '7', 'subject'), 'rb').read())
        self.assertIn('IDLE (the most recently used folder)', m.log_text())
        # the most recently listed folder is the one watched: listing Other moves the IDLE
        os.listdir(os.path.join(m.path, 'Other'))
        self.assertTrue(self.wait_for(lambda: any(
            self.examines(c, b'Other') for k, c in list(srv.commands) if k == n), 5),
            srv.commands)
        self.assertTrue(self.wait_for(lambda: len(self.idle_commands(srv)) >= 2, 5))
        with srv.lock:
            srv.folders[b'Other'][2] = msg(2)
        srv.push('Other')
        self.assertTrue(self.wait_for(
            lambda: '2' in os.listdir(os.path.join(m.path, 'Other')), 3), m.log_text())
        self.assertAlive(m, srv)

    def watcher_lines(self, srv):
        """The commands of the connection that sent the first IDLE (the watcher's)."""
        idles = self.idle_commands(srv)
        if not idles:
            return []
        with srv.lock:
            lines = [c.strip() for k, c in srv.commands
                     if k == idles[0][0] and b'AUTHENTICATE' not in c and b'LOGIN' not in c]
        return [c if c.upper() == b'DONE' else c.split(b' ', 1)[1] for c in lines]

    def assertRenewed(self, srv, m, unit, times, within):
        """unit (a list of command lines, tags stripped) is sent again and again by the
        watcher: `times` times in all within `within` s, each at least 1 s after the one
        before (idle_renew = 2: not at once, not in a loop)."""
        seen = []
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and len(seen) < times:
            lines = self.watcher_lines(srv)
            n = sum(1 for i in range(len(lines)) if lines[i:i + len(unit)] == unit)
            if n > len(seen):
                seen.append(time.monotonic())
            time.sleep(0.02)
        self.assertEqual(len(seen), times, 'renewed %d times in %d s, wanted %d: %s\n%s' % (
            len(seen), within, times, self.watcher_lines(srv), m.log_text()))
        gaps = [b - a for a, b in zip(seen, seen[1:])]
        self.assertTrue(all(g >= 1.0 for g in gaps), gaps)

    def renewing_mount(self, caps):
        """A server offering caps, a mount with idle_renew = 2 watching INBOX (IDLE begun)."""
        srv = self.server()
        srv.extra_caps = caps
        m = self.mount(srv, refresh='3600', connections='4', idle_renew='2')
        self.assertEqual(len(os.listdir(os.path.join(m.path, 'INBOX'))), 6)
        self.assertTrue(self.wait_for(lambda: self.idle_commands(srv), 5), m.log_text())
        return srv, m

    def assertPushShows(self, srv, m):
        """A message pushed now (IDLE's EXISTS) shows in INBOX within 3 s."""
        inbox = os.path.join(m.path, 'INBOX')
        with srv.lock:
            srv.folders[b'INBOX'][7] = msg(7)
        srv.push('INBOX')
        self.assertTrue(self.wait_for(lambda: '7' in os.listdir(inbox), 3), m.log_text())
        self.assertAlive(m, srv)

    def test_idle_reissued_every_idle_renew_seconds(self):
        srv, m = self.renewing_mount(b' IDLE')
        # IDLE, DONE after 2 s, IDLE again: three times in a row
        self.assertRenewed(srv, m, [b'DONE', b'IDLE'], 3, 10)
        lines = self.watcher_lines(srv)
        first = lines.index(b'IDLE')
        self.assertEqual(lines[first:first + 5], [b'IDLE', b'DONE', b'IDLE', b'DONE', b'IDLE'])
        self.assertPushShows(srv, m)  # what is pushed after those renewals still shows

    def test_notify_set_again_every_idle_renew_seconds(self):
        srv, m = self.renewing_mount(b' IDLE NOTIFY')
        notify = (b'NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange)) '
                  b'(MAILBOXES ("INBOX") (MessageNew MessageExpunge FlagChange))')
        self.assertRenewed(srv, m, [b'DONE', notify, b'IDLE'], 3, 10)
        lines = self.watcher_lines(srv)
        first = lines.index(notify)
        self.assertEqual(lines[first - 1:first + 2], [b'EXAMINE "INBOX"', notify, b'IDLE'])
        self.assertPushShows(srv, m)

    def test_notify_examines_the_folder_used_last(self):
        """With NOTIFY the folder used last is examined on the watching connection (its pushes
        are EXISTS lines there) and every folder in use is named in MAILBOXES.  A new folder
        in use means a new SET; using a folder already named only moves the EXAMINE."""
        srv = self.server(folders={'INBOX': self.msgs, 'Other': {1: msg(1)}})
        srv.extra_caps = b' IDLE NOTIFY'
        m = self.mount(srv, refresh='3600', connections='4')
        inbox = os.path.join(m.path, 'INBOX')
        other = os.path.join(m.path, 'Other')
        self.assertEqual(len(os.listdir(inbox)), 6)
        self.assertTrue(self.wait_for(lambda: self.idle_commands(srv), 5), m.log_text())
        ev = b'(MessageNew MessageExpunge FlagChange)'
        one = b'NOTIFY SET (SELECTED ' + ev + b') (MAILBOXES ("INBOX") ' + ev + b')'
        two = b'NOTIFY SET (SELECTED ' + ev + b') (MAILBOXES ("Other" "INBOX") ' + ev + b')'
        os.listdir(other)
        self.assertTrue(self.wait_for(lambda: self.watcher_lines(srv).count(b'IDLE') >= 2, 5))
        # (a listdir would be answered from the kernel's cache: a lookup of a new name is not)
        self.assertFalse(os.path.exists(os.path.join(inbox, '12345')))
        self.assertTrue(self.wait_for(lambda: self.watcher_lines(srv).count(b'IDLE') >= 3, 5),
                        self.watcher_lines(srv))
        lines = self.watcher_lines(srv)
        first = lines.index(b'EXAMINE "INBOX"')
        self.assertEqual(lines[first:], [
            b'EXAMINE "INBOX"', one, b'IDLE', b'DONE',
            b'EXAMINE "Other"', two, b'IDLE', b'DONE',
            b'EXAMINE "INBOX"', b'IDLE'], lines)
        self.assertPushShows(srv, m)  # pushed to the examined INBOX
        with srv.lock:
            srv.folders[b'Other'][2] = msg(2)
        # Other is not examined: this server pushes nothing for it, so only refresh (an hour)
        # would show it -- unless Other becomes the one used last, which looks at it once
        self.assertFalse(os.path.exists(os.path.join(other, '12345')))
        self.assertTrue(self.wait_for(lambda: '2' in os.listdir(other), 3), m.log_text())

    def test_neither_extension_falls_back_to_refresh(self):
        srv = self.server()
        m = self.mount(srv, refresh='2', connections='4')
        inbox = os.path.join(m.path, 'INBOX')
        self.assertEqual(len(os.listdir(inbox)), 6)
        self.assertTrue(self.wait_for(
            lambda: 'neither NOTIFY nor IDLE' in m.log_text(), 5), m.log_text())
        with srv.lock:
            srv.folders[b'INBOX'][7] = msg(7)
        # seen at the next refresh (2 s), not before the listing is out of date
        self.assertTrue(self.wait_for(lambda: '7' in os.listdir(inbox), 2 + 3), m.log_text())
        self.assertEqual(self.idle_commands(srv), [])
        self.assertFalse(any(b'NOTIFY' in c for _, c in srv.commands))
        self.assertAlive(m, srv)


if __name__ == '__main__':
    unittest.main(verbosity=2)
