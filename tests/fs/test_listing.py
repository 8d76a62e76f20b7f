#!/usr/bin/python3
"""Integration tests of imapfs's folder listings, against a real Dovecot (tests/harness/dovecot.py)
and real FUSE mounts:

  - cheap re-listing WITHOUT CONDSTORE (a Dovecot started with condstore=False, which offers
    neither CONDSTORE nor QRESYNC): an unchanged folder costs exactly one command, a plain
    EXAMINE; new mail and expunges are seen at the next listing (a full one, which also brings
    flag changes made meanwhile).  The CONDSTORE path is test_perf.py's RelistTest.
  - a single huge message does not stall another folder: while a 30 MB body is held half-way
    by a loopback proxy (its fetch provably unfinished), the FIRST listing of a folder never
    listed before, and a message file in it, answer within 2 s; likewise while `grep -r` (with
    read-ahead) walks a folder that holds a huge message.

When a bounded operation hangs, the failure message carries `thread apply all bt` of the daemon
(gdb), which says what blocks.  The setup and helpers are tests/harness's (cases.py, mounts.py,
probes.py, messages.py).

Environment: IMAPFS_BIN, IMAPFS_HARNESS_DIR (set by tests/fs/meson.build).  Fails (never
skips) without /dev/fuse or Dovecot; every mount is removed in cleanups, even on failure.
Python stdlib only.
"""

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
import tcp_proxy  # noqa: E402
from cases import DovecotCase  # noqa: E402
from messages import maildir_bulk, text_message, wire_bytes  # noqa: E402
from mounts import Mount, write_config  # noqa: E402
from probes import bounded, commands, read, timed_read  # noqa: E402

QUICK = 2.0            # seconds: "answers quickly" while a huge fetch is held
HUGE = 30 * 1024 * 1024
HOLD_AFTER = 2 * 1024 * 1024


def daemon_backtraces(pid):
    """Every thread's stack of the daemon, for a failure message (what blocks?)."""
    try:
        res = subprocess.run(['gdb', '-p', str(pid), '-batch', '-ex', 'thread apply all bt'],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
        return res.stdout.decode('utf-8', 'replace')[-20000:]
    except (OSError, subprocess.TimeoutExpired) as e:
        return '(no backtrace: %s)' % e


class HoldingProxy(tcp_proxy.TcpProxy):
    """TcpProxy plus hold_after(n): from then on, each connection that has forwarded n
    server-to-client bytes is held (its later server data waits in the proxy) while every other
    connection keeps flowing; resume() releases them all.

    The accounting rides on two TcpProxy internals, as cases.py's StallAfterProxy does:
    a server-to-client writer subtracts each chunk it forwards from `_cut_budget`, and checks
    `_stalled` before taking the next chunk, both in its own thread under `cond`.  The
    properties below show an armed writer an endless budget, charge what it subtracts to the
    writer's own connection, and answer `_stalled` for that connection alone.  (A
    per-connection stall in tcp_proxy.py itself would make this unnecessary.)"""

    _BIG = 1 << 62

    def __init__(self, *args, **kw):
        self._hold_after = None        # bytes; None: not armed
        self._sent = {}                # connection -> bytes forwarded since armed
        self._held = set()
        self._all_stalled = False
        self._real_cut_budget = None
        super().__init__(*args, **kw)

    def _current(self):
        """The connection whose thread this is (None for the test's own threads)."""
        me = threading.current_thread()
        for c in self._conns:
            if me in c.threads:
                return c
        return None

    @property
    def _stalled(self):
        return self._all_stalled or self._current() in self._held

    @_stalled.setter
    def _stalled(self, value):
        self._all_stalled = value

    @property
    def _cut_budget(self):
        if self._hold_after is not None and self._real_cut_budget is None:
            return self._BIG
        return self._real_cut_budget

    @_cut_budget.setter
    def _cut_budget(self, value):
        conn = self._current() if value is not None else None
        if self._hold_after is not None and self._real_cut_budget is None and conn is not None:
            self._sent[conn] = self._sent.get(conn, 0) + self._BIG - value
            if self._sent[conn] >= self._hold_after:
                self._held.add(conn)
            return
        self._real_cut_budget = value

    def hold_after(self, n_bytes):
        with self.cond:
            self._hold_after = int(n_bytes)
            self._sent.clear()
            self._held.clear()

    def holding(self):
        """How many connections are held with server data still waiting in the proxy."""
        with self.cond:
            return sum(1 for c in self._held if not c.dead and c.down.queue)

    def resume(self):
        with self.cond:
            self._hold_after = None
            self._held.clear()
        super().resume()


def mount_config(tmp, name, d, **over):
    return write_config(os.path.join(tmp, name), d, **over)


def close_clean(test, m):
    """Unmount m, then fail if the daemon reported a sanitizer error (ASan/UBSan/LSan builds
    print them to the foreground log) or a critical GLib message."""
    m.close()
    log = m.log_text()
    for bad in ('AddressSanitizer', 'LeakSanitizer', 'runtime error', 'CRITICAL'):
        test.assertNotIn(bad, log, log[-4000:])


# ---- without CONDSTORE ---------------------------------------------------------------------


class RelistWithoutCondstore(DovecotCase):
    """Dovecot with condstore=False: UIDNEXT and EXISTS tell whether a folder changed."""

    dovecot_options = {'condstore': False}

    @classmethod
    def seed(cls):
        cls.uids = [cls.d.append('INBOX', b'Subject: m%d\r\n\r\nbody %d\r\n' % (i, i))
                    for i in range(3)]

    def relist(self, m, folder):
        """List folder once its listing is older than refresh = 1; return (names, the commands
        that listing sent, LIST excepted: that is the folder list's own refresh)."""
        time.sleep(1.3)
        n0 = len(commands(m.log_text()))
        names = set(os.listdir(os.path.join(m.path, folder)))
        time.sleep(0.2)  # the trace line of the last response may lag behind the reply
        cmds = [c for c in commands(m.log_text())[n0:] if not c.startswith('LIST')]
        return names, cmds

    def assertFullListing(self, cmds):
        self.assertTrue(any(c.startswith('UID SEARCH') for c in cmds), cmds)
        self.assertTrue(any(re.match(r'UID FETCH 1:\* ', c) for c in cmds), cmds)

    def test_relist(self):
        # watch = off: this counts what a refresh sends, and the watcher (test_watch.py) would
        # re-list the folder itself whenever it starts watching it
        m = Mount(self.tmp, mount_config(self.tmp, 'c-nocs', self.d, refresh='1', watch='off'),
                  name='m-nocs', foreground=True, debug=True)
        self.addCleanup(close_clean, self, m)
        inbox = os.path.join(m.path, 'INBOX')
        self.assertEqual(set(os.listdir(inbox)), {str(u) for u in self.uids})

        # unchanged: one command, a plain EXAMINE (the server offered no CONDSTORE)
        names, cmds = self.relist(m, 'INBOX')
        print('\nunchanged re-list without CONDSTORE: %s' % cmds, file=sys.stderr)
        self.assertEqual(names, {str(u) for u in self.uids})
        self.assertEqual(len(cmds), 1, cmds)
        self.assertRegex(cmds[0], r'^EXAMINE \\?"INBOX\\?"(\\r\\n)?$')

        # a flag change alone is not seen (no CONDSTORE: documented in remote.h) ...
        flagged = self.uids[0]
        self.d.set_flags('INBOX', [flagged], ['\\Flagged'])
        names, cmds = self.relist(m, 'INBOX')
        self.assertEqual(len(cmds), 1, cmds)

        # ... new mail is, with a full listing, which brings the flags along
        new = self.d.append('INBOX', b'Subject: newer\r\n\r\nx\r\n')
        names, cmds = self.relist(m, 'INBOX')
        self.assertIn(str(new), names)
        self.assertFullListing(cmds)
        self.assertIn('\\Flagged',
                      read(os.path.join(inbox, str(flagged), 'flags')).decode().splitlines())
        self.assertEqual(read(os.path.join(inbox, str(new), 'subject')), b'newer\n')

        # unchanged again after the change: one command
        names, cmds = self.relist(m, 'INBOX')
        self.assertEqual(len(cmds), 1, cmds)

        # an expunge lowers EXISTS: the message goes away
        gone = self.uids[1]
        self.d.expunge('INBOX', [gone])
        names, cmds = self.relist(m, 'INBOX')
        self.assertNotIn(str(gone), names)
        self.assertEqual(names, {str(u) for u in self.uids + [new] if u != gone})
        self.assertFullListing(cmds)
        self.assertFalse(os.path.exists(os.path.join(inbox, str(gone))))

        # never a CONDSTORE command towards a server that did not offer it
        sent = commands(m.log_text())
        self.assertFalse([c for c in sent if re.search(r'CONDSTORE|CHANGEDSINCE|MODSEQ', c)])


# ---- a huge message in flight does not stall other folders ---------------------------------


class HugeMessageInFlight(DovecotCase):

    @classmethod
    def seed(cls):
        cls.huge_raw = text_message('huge needle', HUGE, 1, True)
        cls.huge_uid = maildir_bulk(cls.d, 'Huge', [cls.huge_raw])[0]
        # a folder walked by grep -r: small messages around a huge one
        mixed = [text_message('small needle %d' % i, 3000, 100 + i) for i in range(6)]
        mixed.insert(3, text_message('huge needle too', HUGE, 2, True))
        cls.mixed_uids = maildir_bulk(cls.d, 'Mixed', mixed)
        cls.others = {}
        for f in ('Other', 'Other2'):
            msgs = [text_message('%s %d' % (f, i), 2000, 200 + i) for i in range(4)]
            cls.others[f] = dict(zip(maildir_bulk(cls.d, f, msgs), msgs))

    def setUp(self):
        super().setUp()
        self.p = HoldingProxy('127.0.0.1', self.d.host, self.d.port_imaps)
        self.addCleanup(self.p.close)

    def held_mount(self, name, **over):
        """A mount whose connections all go through the holding proxy.  Uncompressed: the
        proxy holds the huge body at a byte offset on the wire, which the deflated body (a few
        KB of repeated text) never reaches (suite 'compress' runs the other tests)."""
        over.setdefault('compress', 'off')
        cfg = mount_config(self.tmp, 'c-' + name, self.d, port=str(self.p.port), timeout='30',
                           refresh='30', **over)
        m = Mount(self.tmp, cfg, name='m-' + name, foreground=True, debug=True)
        self.addCleanup(close_clean, self, m)
        self.addCleanup(self.p.resume)  # runs first: a held daemon can exit
        return m

    def wait_held(self, m, still_running):
        deadline = time.monotonic() + 20
        while not self.p.holding():
            if not still_running():
                self.fail('the huge fetch ended before the proxy held it')
            if time.monotonic() > deadline:
                self.fail('the huge fetch never got under way: %s' % m.log_text()[-3000:])
            time.sleep(0.05)

    def never_listed(self, m, folder):
        examined = [c for c in commands(m.log_text())
                    if re.match(r'EXAMINE \\?"%s\\?"' % folder, c)]
        self.assertEqual(examined, [], '%s was listed before the test' % folder)

    def assertQuick(self, m, what, fn, *args):
        t0 = time.monotonic()
        try:
            out = bounded(fn, 10 * QUICK, *args)
        except AssertionError as e:
            raise AssertionError('%s\n--- daemon threads:\n%s' % (e, daemon_backtraces(
                m.proc.pid)))
        dt = time.monotonic() - t0
        print('\n%s while the huge fetch is held: %.3f s' % (what, dt), file=sys.stderr)
        self.assertLess(dt, QUICK, '%s took %.1f s\n--- daemon threads:\n%s' % (
            what, dt, daemon_backtraces(m.proc.pid)))
        return out

    def check_other_folder(self, m, folder):
        """First listing of folder and a message of it, each within QUICK seconds."""
        path = os.path.join(m.path, folder)
        names = self.assertQuick(m, 'first ls %s' % folder, os.listdir, path)
        self.assertEqual(sorted(names), sorted(str(u) for u in self.others[folder]))
        uid, raw = sorted(self.others[folder].items())[0]
        eml = os.path.join(path, str(uid), 'message.eml')
        r = self.assertQuick(m, 'read %s/%d/message.eml' % (folder, uid), timed_read, eml,
                             10 * QUICK)
        self.assertEqual(r.err, 0)
        self.assertEqual(r.data, raw)

    def test_huge_fetch_does_not_stall_first_listing(self):
        m = self.held_mount('huge')
        huge = os.path.join(m.path, 'Huge')
        self.assertEqual(os.listdir(huge), [str(self.huge_uid)])
        self.never_listed(m, 'Other')
        self.p.hold_after(wire_bytes(HOLD_AFTER, self.huge_raw))
        result = {}
        reader = threading.Thread(target=lambda: result.setdefault('r', timed_read(
            os.path.join(huge, str(self.huge_uid), 'message.eml'), 90)))
        reader.start()
        try:
            self.wait_held(m, reader.is_alive)
            self.check_other_folder(m, 'Other')
            # the huge fetch was still unfinished all along
            self.assertTrue(reader.is_alive(), 'the huge read finished meanwhile')
            self.assertEqual(self.p.holding(), 1)
        finally:
            self.p.resume()
            reader.join(90)
        r = result['r']
        self.assertEqual(r.err, 0)
        self.assertEqual(hashlib.sha256(r.data).digest(), hashlib.sha256(self.huge_raw).digest())

    def test_grep_walk_with_huge_message_does_not_stall_ls(self):
        m = self.held_mount('grep')
        mixed = os.path.join(m.path, 'Mixed')
        self.assertEqual(sorted(int(x) for x in os.listdir(mixed)), self.mixed_uids)
        self.never_listed(m, 'Other2')
        self.p.hold_after(wire_bytes(HOLD_AFTER, self.huge_raw))
        grep = subprocess.Popen(['grep', '-rc', '--include=message.eml', 'needle', mixed],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.wait_held(m, lambda: grep.poll() is None)
            self.check_other_folder(m, 'Other2')
            self.assertIsNone(grep.poll(), 'grep finished meanwhile')
            self.assertGreaterEqual(self.p.holding(), 1)
        finally:
            self.p.resume()
            try:
                out, err = grep.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                grep.kill()
                out, err = grep.communicate()
        self.assertEqual(grep.returncode, 0, err)
        counts = dict(line.rsplit(':', 1) for line in out.decode().splitlines())
        self.assertEqual(len(counts), len(self.mixed_uids), counts)
        self.assertTrue(all(int(n) > 0 for n in counts.values()), counts)


if __name__ == '__main__':
    unittest.main(verbosity=2)
