#!/usr/bin/python3
"""imapfs against a real Cyrus IMAP 3.6 (tests/harness/cyrus.py), the server of issue 23's
OBJECTID: one message APPENDed to INBOX and COPYed to two more folders is one message to
Cyrus (one EMAILID, one THREADID in all three, checked over IMAP directly), and an imapfs
mount shows it in all three folders with message.eml byte-identical to the APPENDed bytes.

Issue 23 on a real server: the three reads are one BODY.PEEK[] on the wire (counted twice:
count_whole_fetches(mount), the daemon's own count of whole message bodies fetched,
bodies_fetched of user.imapfs.stats; and whole_fetch_commands(mount), the client's commands
asking for a whole message in the -d protocol trace), one entry in the disk cache, still one
after a remount that reads the three in another order; and `thread` shows Cyrus's THREADID.

Environment (tests/fs/meson.build): IMAPFS_BIN, IMAPFS_HARNESS_DIR; Cyrus unpacked by
tests/harness/cyrus_unpack.sh (tests/run.sh runs it).  Fails (never skips) without FUSE or the
unpacked Cyrus; every mount is removed in teardown and every Cyrus stopped.
"""

import os
import socket
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
import cyrus  # noqa: E402
from cases import temp_dir  # noqa: E402
from mounts import Mount, require_environment, write_config  # noqa: E402
from probes import cache_files, commands, read  # noqa: E402

STATS = 'user.imapfs.stats'
FOLDERS = ('INBOX', 'Work', 'Archive/Old')
MESSAGE = (b'From: Alice <alice@example.com>\r\n'
           b'To: Bob <bob@example.com>\r\n'
           b'Subject: one message, three folders\r\n'
           b'Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n'
           b'Message-ID: <one-in-three@example.com>\r\n'
           b'MIME-Version: 1.0\r\n'
           b'Content-Type: text/plain; charset=utf-8\r\n'
           b'\r\n'
           b'The same bytes whichever folder reads them.\r\n')


def stats(mnt):
    text = os.getxattr(mnt, STATS).decode()
    return {k: int(v) for k, v in (f.split('=', 1) for f in text.split()) if v.isdigit()}


def count_whole_fetches(mount):
    """Whole message bodies the daemon of mount (made with -o stats) has fetched from the
    server so far: BODY.PEEK[] responses, batched or single (fs/remote.c stat_bodies)."""
    return stats(mount.path)['bodies_fetched']


def whole_fetch_commands(mount):
    """The commands of mount's -d protocol trace (a foreground mount made with debug=True) that
    ask for a whole message: UID FETCH ... BODY.PEEK[] with no section."""
    return [c for c in commands(mount.log_text()) if 'BODY.PEEK[]' in c]


def refuses(port):
    try:
        with socket.create_connection((cyrus.HOST, port), timeout=1):
            return False
    except OSError:
        return True


class CyrusObjectId(unittest.TestCase):
    """One Cyrus for the class: MESSAGE in INBOX, COPYed to Work and Archive/Old."""

    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.tmp = cls.enterClassContext(temp_dir('icy'))
        cls.c = cls.enterClassContext(cyrus.Cyrus())
        for f in FOLDERS[1:]:
            cls.c.create_folder(f)
        cls.uids = {'INBOX': cls.c.append('INBOX', MESSAGE)}
        for f in FOLDERS[1:]:
            cls.uids[f] = cls.c.copy('INBOX', cls.uids['INBOX'], f)

    def test_starts_with_objectid(self):
        caps = self.c.capabilities()
        self.assertIn('OBJECTID', caps)
        self.assertIn('BINARY', caps)
        procs = self.c.processes()
        self.assertTrue(procs, 'no Cyrus process')
        if os.geteuid() == 0:
            # imapd refuses root; the harness runs the whole instance unprivileged
            for p in procs:
                with open('/proc/%d/status' % p) as f:
                    uid_line = [ln for ln in f if ln.startswith('Uid:')][0]
                self.assertNotIn('0', uid_line.split()[1:], 'Cyrus process %d runs as root' % p)

    def test_copy_keeps_one_emailid(self):
        ids = {f: self.c.object_ids(f) for f in FOLDERS}
        for f in FOLDERS:
            self.assertEqual(list(ids[f]), [self.uids[f]], f)
        pairs = {ids[f][self.uids[f]] for f in FOLDERS}
        self.assertEqual(len(pairs), 1, 'EMAILID/THREADID differ across folders: %r' % ids)
        emailid, threadid = pairs.pop()
        self.assertTrue(emailid)
        self.assertTrue(threadid, 'no THREADID (conversations off?)')
        for f in FOLDERS:
            self.assertEqual(self.c.fetch_raw(f, self.uids[f]), MESSAGE, f)

    def test_mount_reads_all_three(self):
        cfg = write_config(os.path.join(self.tmp, 'mount.cfg'), self.c)
        with Mount(self.tmp, cfg, name='mnt', foreground=True, debug=True,
                   extra=['-o', 'stats']) as m:
            self.assertIn(str(self.uids['INBOX']), os.listdir(os.path.join(m.path, 'INBOX')))
            for f in FOLDERS:
                eml = os.path.join(m.path, *f.split('/'), str(self.uids[f]), 'message.eml')
                self.assertEqual(read(eml), MESSAGE, eml)
                self.assertEqual(os.stat(eml).st_size, len(MESSAGE), eml)
            print('after reading %d message.eml: count_whole_fetches %d, '
                  'whole_fetch_commands %d' % (len(FOLDERS), count_whole_fetches(m),
                                               len(whole_fetch_commands(m))), file=sys.stderr)
            self.assertEqual(count_whole_fetches(m), 1)
            self.assertEqual(len(whole_fetch_commands(m)), 1, whole_fetch_commands(m))
            _emailid, threadid = self.c.object_ids('INBOX')[self.uids['INBOX']]
            for f in FOLDERS:
                self.assertEqual(read(os.path.join(m.path, *f.split('/'), str(self.uids[f]),
                                                   'thread')), threadid.encode() + b'\n')
        cache = os.path.join(self.tmp, 'cache-mount.cfg')
        self.assertEqual(sum(1 for _p, _uid, _off, size in cache_files(cache)
                             if size == len(MESSAGE)), 1)
        # a remount reads the three from that one entry, whichever folder comes first
        with Mount(self.tmp, cfg, name='mnt2', foreground=True, debug=True,
                   extra=['-o', 'stats']) as m:
            for f in reversed(FOLDERS):
                eml = os.path.join(m.path, *f.split('/'), str(self.uids[f]), 'message.eml')
                self.assertEqual(read(eml), MESSAGE, eml)
            self.assertEqual(count_whole_fetches(m), 0)
        self.assertEqual(sum(1 for _p, _uid, _off, size in cache_files(cache)
                             if size == len(MESSAGE)), 1)


class CyrusLifecycle(unittest.TestCase):

    def test_stop_leaves_nothing(self):
        c = cyrus.Cyrus()
        try:
            c.start()
            ports = (c.port_imaps, c.port_starttls)
            conn = c.connect()      # an imapd child alive at stop()
            procs = c.processes()
            self.assertGreaterEqual(len(procs), 2, procs)
            workdir = c.workdir
        finally:
            c.cleanup()
        try:
            conn.shutdown()
        except Exception:
            pass
        self.assertEqual(c.processes(), [])
        self.assertEqual([p for p in procs if cyrus._pid_alive(p)], [])
        for p in ports:
            self.assertTrue(refuses(p), 'port %d still accepts' % p)
        self.assertFalse(os.path.exists(workdir))


if __name__ == '__main__':
    unittest.main(verbosity=2)
