#!/usr/bin/python3
"""Fault and resource tests of the imapfs daemon: never hang, never leak, never serve stale mail.

A real throwaway Dovecot (tests/harness/dovecot.py), often behind a loopback TcpProxy
(tests/harness/tcp_proxy.py) that stalls, cuts or counts connections, and a real FUSE mount of
the built imapfs.  Every read that could hang runs in a child process with a hard deadline, so
a hanging daemon fails the test instead of hanging the suite; every mount is removed with
`fusermount3 -uz` and every Dovecot/proxy stopped in cleanups, even when a test fails.

Environment (as for test_imapfs.py):
    IMAPFS_BIN           the built imapfs executable
    IMAPFS_HARNESS_DIR   tests/harness

Fails (never skips) without /dev/fuse, fusermount3 or Dovecot.  Python stdlib only.
"""

import concurrent.futures
import errno
import hashlib
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
import sample_mail  # noqa: E402
from cases import DovecotCase, MARGIN, TIMEOUT  # noqa: E402
from messages import attachment_message, text_message, wire_bytes, write_maildir  # noqa: E402,E501
from mounts import daemon_pids, mountinfo_entries, unmount  # noqa: E402
from probes import (bounded, cache_files, fd_count, proc_status, read,  # noqa: E402
                    timed_read)

# A session that ended with LOGOUT.  Dovecot names the user in the prefix ("imap(alice)<pid>
# <session>: ...") except for a session that logs out before its mail user is set up (a
# connection made just as the daemon stops: LOGIN, ENABLE, LOGOUT), logged as "imap: ...".
LOGGED_OUT = r'imap(\(alice\))?(<[^>]*>)*: Info: Disconnected: Logged out'


def dovecot_log_count(d, pattern):
    try:
        with open(d.log, 'rb') as f:
            return len(re.findall(pattern.encode(), f.read()))
    except OSError:
        return 0


# ---- stalls, cuts, signals, parallel readers (behind a TcpProxy) ---------------------------------


class ProxyFaults(DovecotCase):
    BIG = 5 * 1024 * 1024

    @classmethod
    def seed(cls):
        cls.seeded = sample_mail.seed(cls.d)
        cls.d.create_folder('Big')
        cls.big_uid = cls.d.append('Big', text_message('five megabytes', cls.BIG, 1, True))
        cls.big_uid2 = cls.d.append('Big', text_message('five megabytes again', cls.BIG, 2,
                                                        True))
        cls.big_raw = cls.d.fetch_raw('Big', cls.big_uid)
        cls.big_raw2 = cls.d.fetch_raw('Big', cls.big_uid2)
        # More folders and files for the parallel readers.
        for f in range(3):
            name = 'Bulk%d' % f
            cls.d.create_folder(name)
            for i in range(40):
                if i % 4 == 0:
                    raw = attachment_message('bulk %d/%d' % (f, i), os.urandom(30000 + i),
                                             f * 100 + i)
                else:
                    raw = text_message('bulk %d/%d' % (f, i), 2000 + 500 * i, f * 100 + i)
                cls.d.append(name, raw)

    def test_stall_mid_fetch_gives_eio_and_ls_still_works(self):
        """The server stops answering 1 MB into a 5 MB body: the reader gets EIO within the
        timeout, other already listed folders stay listable meanwhile, and once the server
        answers again the message reads back exactly."""
        p = self.proxy()
        # The proxy stalls at a byte offset on the wire; deflated, the 5 MB text body is a
        # few KB and the fetch would end before it (suite 'compress' runs the rest).
        m = self.mount(port=p.port, refresh='30', compress='off')
        others = {f: sorted(os.listdir(os.path.join(m.path, f))) for f in ('INBOX', 'Work')}
        eml = os.path.join(m.path, 'Big', str(self.big_uid), 'message.eml')
        # Listed (no body fetched yet: a stat of message.eml would fetch it).
        self.assertIn(str(self.big_uid), os.listdir(os.path.join(m.path, 'Big')))
        p.stall_after(wire_bytes(1024 * 1024, self.big_raw))
        result = {}
        t = threading.Thread(target=lambda: result.setdefault(
            'r', timed_read(eml, TIMEOUT + MARGIN + 10)))
        t.start()
        try:
            time.sleep(0.5)
            self.assertTrue(p._stalled, 'the stall never triggered (fetch finished early?)')
            # Meanwhile: listings already known are served without waiting for the fetch.
            for f, names in others.items():
                t0 = time.monotonic()
                got = bounded(lambda f=f: sorted(os.listdir(os.path.join(m.path, f))), 5)
                self.assertEqual(got, names)
                self.assertLess(time.monotonic() - t0, 1.0, 'ls %s waited for the stall' % f)
        finally:
            t.join(TIMEOUT + MARGIN + 15)
        r = result['r']
        self.assertEIO(r, 'stalled read')
        self.assertLess(r.elapsed, TIMEOUT + MARGIN)
        self.assertTrue(p._stalled)
        p.resume()
        r = self.read_when_back(eml)
        self.assertEqual(r.err, 0)
        self.assertEqual(r.data, self.big_raw)
        self.assertEqual(os.stat(eml).st_size, len(self.big_raw))
        self.assertIsNone(m.proc.poll(), 'daemon died')

    def test_stall_before_answer_gives_eio(self):
        """The server stops answering before the first byte of the answer."""
        p = self.proxy()
        m = self.mount(port=p.port, refresh='30')
        os.listdir(os.path.join(m.path, 'Big'))
        p.stall()
        r = timed_read(os.path.join(m.path, 'Big', str(self.big_uid2), 'subject'),
                       TIMEOUT + MARGIN + 10)
        self.assertEIO(r, 'stalled read')
        self.assertLess(r.elapsed, TIMEOUT + MARGIN)
        p.resume()
        r = self.read_when_back(os.path.join(m.path, 'Big', str(self.big_uid2), 'message.eml'))
        self.assertEqual((r.err, r.data == self.big_raw2), (0, True))

    def read_when_back(self, path, limit=15):
        """Read path once the server answers again.  A timeout took the mount offline
        (issue 12): reads fail at once with EIO until its reconnector gets through, 1 s
        after the timeout at the earliest; then they succeed without a remount."""
        deadline = time.monotonic() + limit
        while True:
            r = timed_read(path, 30)
            if r.err == 0 or time.monotonic() > deadline:
                return r
            self.assertEIO(r, 'read while the mount comes back online')
            self.assertLess(r.elapsed, 1.0, 'a read waited while offline')
            time.sleep(0.2)

    def test_cut_mid_literal_never_serves_partial(self):
        """The connection is reset 1 MB into a body literal: the read fails with EIO or
        succeeds whole after an internal retry; the next read, without remounting, returns
        exactly the server's bytes."""
        for n_bytes in (1000, 1024 * 1024, self.BIG - 1000):
            with self.subTest(cut_after=n_bytes):
                p = self.proxy()
                m = self.mount(port=p.port)
                eml = os.path.join(m.path, 'Big', str(self.big_uid), 'message.eml')
                os.listdir(os.path.dirname(eml))
                p.cut_after(wire_bytes(n_bytes, self.big_raw))
                r = timed_read(eml, TIMEOUT + MARGIN + 10)
                if r.err:
                    self.assertEIO(r, 'cut read')
                else:
                    self.assertEqual(len(r.data), len(self.big_raw))
                    self.assertEqual(r.data, self.big_raw, 'partial or wrong bytes served')
                    self.assertEqual(r.size, len(self.big_raw))
                r = timed_read(eml, 30)
                self.assertEqual(r.err, 0)
                self.assertEqual(r.data, self.big_raw)
                self.assertEqual(os.stat(eml).st_size, len(self.big_raw))
                self.assertIsNone(m.proc.poll(), 'daemon died')
                # Three live mounts of one account would pass Dovecot's 10 connections per
                # user and IP (mail_max_userip_connections) with their watchers.
                m.close()

    def _activity(self, m):
        """Make the daemon use several connections at once."""
        files = [os.path.join(m.path, 'Bulk%d' % f, n, 'body')
                 for f in range(3) for n in sorted(os.listdir(os.path.join(m.path, 'Bulk%d' % f)))]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(read, files[:40]))

    def _check_clean_exit(self, m, p, stop, foreground, logged_out_before, logins_before):
        pid = m.pid
        self.assertIsNotNone(pid)
        accepted = p.connections_accepted
        self.assertGreater(accepted, 0)
        stop(m, pid)
        if foreground:
            self.assertEqual(m.proc.wait(timeout=10), 0, m.log_text())
        deadline = time.monotonic() + 10
        while (os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline):
            try:
                with open('/proc/%d/stat' % pid) as f:
                    if f.read().split(') ')[1].startswith('Z'):
                        break
            except OSError:
                break
            time.sleep(0.05)
        self.assertFalse(daemon_pids(m.path), 'daemon still running')
        self.assertEqual(mountinfo_entries(m.path), [], 'stale mount left behind')
        os.stat(m.path)   # ENOTCONN here would mean a dead mount
        self.assertEqual(os.listdir(m.path), [])
        deadline = time.monotonic() + 5
        while p.active_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(p.active_connections(), 0, 'IMAP connections left open')
        # Every connection that logged in logged out.  (One accepted but still logging in when
        # the daemon was stopped, such as the watcher's first, has no session to end.)
        logged_in = dovecot_log_count(self.d, r'Login: user=<alice>') - logins_before
        self.assertGreater(logged_in, 0)
        self.assertLessEqual(logged_in, accepted)
        deadline = time.monotonic() + 5
        while (dovecot_log_count(self.d, LOGGED_OUT) - logged_out_before <
               logged_in and time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(
            dovecot_log_count(self.d, LOGGED_OUT) - logged_out_before,
            logged_in, 'not every connection was logged out:\n' + self.d.log_tail(0, 3000))

    def test_signals_and_unmount_are_clean(self):
        """SIGTERM, SIGINT (foreground and background daemon) and fusermount3 -u: exit 0
        within seconds, no stale mount, every IMAP connection logged out."""
        def sig(s):
            return lambda m, pid: os.kill(pid, s)

        def fusermount(m, pid):
            subprocess.run(['fusermount3', '-u', m.path], check=True, timeout=10)

        cases = [('SIGTERM', True, sig(signal.SIGTERM)), ('SIGINT', True, sig(signal.SIGINT)),
                 ('SIGTERM-bg', False, sig(signal.SIGTERM)),
                 ('SIGINT-bg', False, sig(signal.SIGINT)),
                 ('fusermount3 -u', True, fusermount), ('fusermount3 -u bg', False, fusermount)]
        for name, foreground, stop in cases:
            with self.subTest(name):
                p = self.proxy()
                before = dovecot_log_count(self.d, LOGGED_OUT)
                logins = dovecot_log_count(self.d, r'Login: user=<alice>')
                m = self.mount(port=p.port, foreground=foreground)
                self._activity(m)
                self._check_clean_exit(m, p, stop, foreground, before, logins)

    def test_parallel_readers_same_bytes(self):
        """16 parallel readers (find | xargs -P16 -n50) on a cold mount with a tiny message
        cache get exactly the bytes a sequential reader gets, file by file."""
        def hashes(cmd, cwd):
            res = subprocess.run(cmd, shell=True, cwd=cwd, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=600)
            self.assertEqual(res.returncode, 0, res.stderr.decode(errors='replace')[-2000:])
            out = {}
            for line in res.stdout.decode('utf-8', 'surrogateescape').splitlines():
                h, path = line.split('  ', 1)
                out[path] = h
            return out

        m1 = self.mount(memory_cache='1')
        par = hashes('find . -type f -print0 | xargs -0 -P16 -n50 sha256sum', m1.path)
        m2 = self.mount()
        seq = hashes('find . -type f -print0 | xargs -0 -n1 sha256sum', m2.path)
        self.assertGreater(len(seq), 1000)
        self.assertEqual(sorted(par), sorted(seq))
        diff = [p for p in seq if par[p] != seq[p]]
        self.assertEqual(diff, [], 'parallel readers got other bytes')
        for f, uid, _raw, _fl in self.seeded:
            rel = './%s/%d/message.eml' % (f.replace('2024', '2024.d'), uid)
            self.assertEqual(seq[rel], hashlib.sha256(self.d.fetch_raw(f, uid)).hexdigest())
        self.assertIsNone(m1.proc.poll())


# ---- the server goes away ----------------------------------------------------------------------


class Outage(DovecotCase):
    @classmethod
    def seed(cls):
        cls.uids = [cls.d.append('INBOX', text_message('outage %d' % i, 3000, i))
                    for i in range(60)]

    def tearDown(self):
        if not self.d._started:
            self.d.restart()

    def _outage(self, m, seconds):
        """Kill Dovecot, read uncached messages for `seconds`; return the Read results."""
        inbox = os.path.join(m.path, 'INBOX')
        self.assertEqual(len(os.listdir(inbox)), len(self.uids))
        self.d.kill()
        results = []
        t_end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < t_end:
            results.append(timed_read(os.path.join(inbox, str(self.uids[i]), 'body'),
                                      TIMEOUT + MARGIN + 10))
            i += 1
            time.sleep(0.2)
        return results

    def test_outage_eio_then_recovery(self):
        """While Dovecot is dead, reads of uncached messages fail with EIO within the timeout;
        once it is back they work again without remounting."""
        m = self.mount()
        results = self._outage(m, 10)
        for r in results:
            self.assertEIO(r, 'read during outage')
            self.assertLess(r.elapsed, TIMEOUT + MARGIN)
        self.d.restart()
        t0 = time.monotonic()
        uid = self.uids[-1]
        while True:
            r = timed_read(os.path.join(m.path, 'INBOX', str(uid), 'message.eml'), 30)
            if r.err == 0:
                break
            self.assertEIO(r, 'read after restart')
            self.assertLess(time.monotonic() - t0, 30, 'never recovered')
            time.sleep(0.5)
        self.assertEqual(r.data, self.d.fetch_raw('INBOX', uid))
        self.recovery_s = time.monotonic() - t0
        sys.stderr.write('[recovered %.1f s after restart] ' % self.recovery_s)
        self.assertIsNone(m.proc.poll())

    def test_outage_logged_once(self):
        """~10 s of failing reads log the outage a bounded number of times, not once per
        read (the pool already logs the start and the end of an outage)."""
        m = self.mount()
        before = m.log_text().count('warning')
        results = self._outage(m, 10)
        self.assertGreater(len(results), 10)
        time.sleep(0.3)
        lines = [ln for ln in m.log_text().splitlines()[0:] if 'warning' in ln]
        warnings = len(lines) - before
        self.assertLessEqual(warnings, 3, 'outage logged %d times for %d failed reads:\n%s' % (
            warnings, len(results), '\n'.join(lines[:8])))


# ---- the server's mail changes -------------------------------------------------------------------


class ServerChanges(DovecotCase):
    def test_uidvalidity_change_serves_new_bytes(self):
        """A folder deleted and recreated (new UIDVALIDITY, same UIDs, other content): after
        the refresh time the listing shows the new messages and every reused UID reads back
        the new bytes -- never the old ones, not even through a cached dentry or page."""
        self._uidvalidity_change('Reborn')

    def test_uidvalidity_change_one_connection(self):
        """The same with one IMAP connection for everything (listing, reading, read-ahead),
        so requests of the old and the new life meet on one connection, which must examine
        again rather than fetch a reused UID from the wrong life."""
        self._uidvalidity_change('Reborn1', connections='1')

    def _uidvalidity_change(self, folder, **over):
        self.d.create_folder(folder)
        old = {self.d.append(folder, text_message('old life %d' % i, 4000 + i, i)): None
               for i in range(5)}
        for uid in old:
            old[uid] = self.d.fetch_raw(folder, uid)
        m = self.mount(**over)
        fdir = os.path.join(m.path, folder)
        for uid, raw in old.items():   # everything cached: msgcache, dentries, page cache
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), raw)
            read(os.path.join(fdir, str(uid), 'subject'))
        held = open(os.path.join(fdir, str(min(old)), 'message.eml'), 'rb')
        self.addCleanup(held.close)
        v1 = self.d.uidvalidity(folder)
        self.d.recreate_folder(folder)
        new = {}
        for i in range(3):
            uid = self.d.append(folder, text_message('new life %d' % i, 6000 + i, 100 + i))
            new[uid] = self.d.fetch_raw(folder, uid)
        self.assertNotEqual(self.d.uidvalidity(folder), v1)
        self.assertTrue(set(new) <= set(old), 'UIDs were not reused')
        self.wait_for(lambda: sorted(os.listdir(fdir)) == sorted(str(u) for u in new),
                      'listing never showed the new messages')
        deadline = time.monotonic() + 10
        pending = set(new)
        while pending:
            for uid in sorted(pending):
                for name in ('message.eml', 'subject'):
                    path = os.path.join(fdir, str(uid), name)
                    r = timed_read(path, TIMEOUT + MARGIN + 10)
                    if r.err:
                        # a kernel entry of the old life, invalidated asynchronously
                        self.assertIn(r.err, (errno.ENOENT, errno.ESTALE), path)
                        continue
                    self.assertNotEqual(r.data, old[uid], 'OLD bytes served for %s' % path)
                    if name == 'message.eml':
                        self.assertEqual(r.data, new[uid])
                        pending.discard(uid)
            self.assertLess(time.monotonic(), deadline, 'new bytes never served')
            time.sleep(0.2)
        for uid in old:
            if uid not in new:
                self.assertFalse(os.path.exists(os.path.join(fdir, str(uid))))
        # The handle opened in the old life: its own bytes or an error, never the new ones.
        try:
            data = held.read()
            self.assertEqual(data, old[min(old)])
        except OSError as e:
            self.assertIn(e.errno, (errno.EIO, errno.ENOENT, errno.ESTALE))
        self.assertIsNone(m.proc.poll())

    def test_killed_daemon_leaves_valid_cache(self):
        """SIGKILL the daemon while read-ahead streams a folder into the disk cache, then
        mount again on the same cache: every message reads back exactly (no truncated entry
        is ever served) and what was complete before the kill is not fetched again."""
        folder = 'KillCache'
        self.d.create_folder(folder)
        raws = {}
        # 40 MB: more than one read-ahead batch (32 MiB), so that a pack is finished and
        # the next one is being written when the kill comes
        for i in range(100):
            uid = self.d.append(folder, text_message('kill %d' % i, 400000 + 97 * i, i, True))
            raws[uid] = self.d.fetch_raw(folder, uid)
        cache = os.path.join(self.tmp, 'kill-cache')
        p = self.proxy()
        m = self.mount(port=p.port, cache_dir=cache)
        fdir = os.path.join(m.path, folder)
        os.listdir(fdir)
        # the server goes quiet 36 MB into the bodies: after the first pack (32 MiB), inside
        # the second, so the kill below finds a finished pack and one being written
        p.stall_after(wire_bytes(36 * 1000 * 1000, raws[uid]))
        reader = subprocess.Popen(
            ['sh', '-c', 'for d in $(ls %s | sort -n); do cat %s/$d/message.eml; done '
             '> /dev/null 2>&1' % (fdir, fdir)])
        self.addCleanup(lambda: reader.poll() is None and reader.kill())
        # kill once some, but not all, messages are on disk in finished files
        deadline = time.monotonic() + 30
        while True:
            if len(cache_files(cache)) >= 10:
                break
            self.assertLess(time.monotonic(), deadline, 'nothing reached the disk cache')
            time.sleep(0.02)
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
        reader.kill()
        reader.wait()
        unmount(m.path)
        before = cache_files(cache)
        self.assertNotIn(None, [u for _p, u, _o, _s in before], before)
        self.assertLess(len(before), len(raws), 'the kill came too late to test anything')
        # through the same proxy: the cache belongs to "host port user"
        p.disarm_and_resume()
        m2 = self.mount(port=p.port, cache_dir=cache, extra=('-o', 'stats'))
        for uid, raw in raws.items():
            self.assertEqual(read(os.path.join(m2.path, folder, str(uid), 'message.eml')), raw,
                             'UID %d' % uid)
        stats = os.getxattr(m2.path, 'user.imapfs.stats').decode()
        fetched = int(re.search(r'bodies_fetched=(\d+)', stats).group(1))
        self.assertLessEqual(fetched, len(raws) - len(before), stats)
        self.assertIsNone(m2.proc.poll())

    def _expunge_setup(self, folder):
        self.d.create_folder(folder)
        raws = {}
        for i in range(30):
            uid = self.d.append(folder, text_message('%s %d' % (folder, i), 200000 + i, i))
            raws[uid] = self.d.fetch_raw(folder, uid)
        uids = sorted(raws)
        m = self.mount(memory_cache='1')
        fdir = os.path.join(m.path, folder)
        self.assertEqual(sorted(os.listdir(fdir), key=int), [str(u) for u in uids])
        return m, fdir, raws, uids

    def test_expunged_disappear(self):
        """Expunged messages leave the listing (and lookups) after the refresh time."""
        m, fdir, raws, uids = self._expunge_setup('Expunge1')
        gone = uids[:10]
        for u in gone[:5]:   # some known to the kernel and the cache, some not
            read(os.path.join(fdir, str(u), 'subject'))
        self.d.expunge('Expunge1', gone)
        self.wait_for(lambda: sorted(os.listdir(fdir), key=int) == [str(u) for u in uids[10:]],
                      'expunged messages still listed')
        time.sleep(0.5)  # kernel entries are invalidated asynchronously
        for u in gone:
            self.assertFalse(os.path.exists(os.path.join(fdir, str(u))), u)
        for u in uids[10:]:
            self.assertEqual(read(os.path.join(fdir, str(u), 'message.eml')), raws[u])
        self.assertIsNone(m.proc.poll())

    def test_expunged_open_handle_same_bytes_or_eio(self):
        """A handle opened before the expunge (never read, so the kernel has no pages) reads
        its own bytes or fails with EIO, even after the message cache had to let the message
        go -- never another message's bytes, and never an errno read(2) cannot mean."""
        m, fdir, raws, uids = self._expunge_setup('Expunge2')
        gone = uids[:10]
        handles = {u: os.open(os.path.join(fdir, str(u), 'message.eml'), os.O_RDONLY)
                   for u in gone}
        for fd in handles.values():
            self.addCleanup(os.close, fd)
        self.d.expunge('Expunge2', gone)
        self.wait_for(lambda: sorted(os.listdir(fdir), key=int) == [str(u) for u in uids[10:]],
                      'expunged messages still listed')
        for u in uids[10:]:   # push the held messages out of the 1 MiB cache
            read(os.path.join(fdir, str(u), 'message.eml'))
        outcomes = []
        for u, fd in handles.items():
            def rd(fd=fd):
                chunks = []
                while True:
                    b = os.pread(fd, 1 << 20, sum(len(c) for c in chunks))
                    if not b:
                        return b''.join(chunks)
                    chunks.append(b)
            try:
                data = bounded(rd, TIMEOUT + MARGIN + 10)
                # Never another message's bytes: this is the property that must always hold.
                self.assertEqual(data, raws[u], 'handle of UID %d served other bytes' % u)
                outcomes.append('same bytes')
            except OSError as e:
                outcomes.append(errno.errorcode.get(e.errno, str(e.errno)))
        self.assertIsNone(m.proc.poll())
        self.assertTrue(set(outcomes) <= {'same bytes', 'EIO'}, outcomes)


# ---- resource bounds ---------------------------------------------------------------------------

# Bounds (VmHWM of the daemon; measured with gcc -O2 builds on Debian 12 x86-64, 2 cores):
#  - 50 MB message, every file read: measured 107 MB.  The raw bytes (50 MB) and the decoded
#    37 MB attachment must both be in memory while the files are served, plus the receive
#    buffer; bound 4x the message (210 MB): a second copy of the message per read or per file
#    would cross it.
#  - 100k-message folder listed twice (a refresh in between): measured 52 MB.  Bound 100 MiB:
#    room for two listings alive at once during a refresh, but not for keeping whole FETCH
#    responses or a copy of the listing per readdir.
#  - 1,000 open message files (1.5 KB each), all read while open: measured 21 MB.  Bound
#    64 MiB, the default memory_cache: open files must not pin memory beyond the cache.
#  - descriptors: measured 5 (stdio, /dev/fuse, one IMAP socket).  Bound 16 + connections:
#    open files must not cost descriptors, and no socket may leak.
BIG_MESSAGE_RSS = 4 * 50 * 1024 * 1024
LISTING_100K_RSS = 100 * 1024 * 1024
OPEN_1000_RSS = 64 * 1024 * 1024
FD_BASE = 16


class ResourceBounds(DovecotCase):
    N_BIG = 100000

    @classmethod
    def seed(cls):
        # 50 MB message with a 37 MB attachment (base64 grows it to 50 MB).
        cls.d.create_folder('Huge')
        cls.huge_payload = os.urandom(37 * 1024 * 1024)
        cls.huge_uid = cls.d.append('Huge', attachment_message('fifty', cls.huge_payload, 1))
        cls.d.create_folder('Many')
        cls.many = [cls.d.append('Many', text_message('many %d' % i, 1500, i))
                    for i in range(1000)]
        cls.d.create_folder('Big100k')
        write_maildir(cls.d, 'Big100k', cls.N_BIG)

    def measure(self, m):
        return proc_status(m.pid, 'VmHWM'), fd_count(m.pid)

    def report(self, what, hwm, fds, limit):
        sys.stderr.write('[%s: VmHWM %.1f MB (bound %.0f MB), %d fds] ' % (
            what, hwm / 1e6, limit / 1e6, fds))

    def test_50mb_message(self):
        m = self.mount(timeout='3', connections='2')
        d = os.path.join(m.path, 'Huge', str(self.huge_uid))
        raw = self.d.fetch_raw('Huge', self.huge_uid)
        r = timed_read(os.path.join(d, 'message.eml'), 120)
        self.assertEqual(r.err, 0)
        self.assertEqual(r.data, raw)
        total = 0
        for dirpath, _dirs, files in os.walk(d):
            for name in files:
                total += len(read(os.path.join(dirpath, name)))
        att = os.path.join(d, 'attachments', 'data-1.bin')
        self.assertEqual(hashlib.sha256(read(att)).digest(),
                         hashlib.sha256(self.huge_payload).digest())
        hwm, fds = self.measure(m)
        self.report('50 MB message', hwm, fds, BIG_MESSAGE_RSS)
        self.assertLess(hwm, BIG_MESSAGE_RSS)
        self.assertLess(fds, FD_BASE + 2)  # connections = 2

    def test_100k_listing(self):
        m = self.mount(timeout='3')
        t0 = time.monotonic()
        names = bounded(os.listdir, 120, os.path.join(m.path, 'Big100k'))
        elapsed = time.monotonic() - t0
        self.assertEqual(len(names), self.N_BIG)
        self.assertEqual(sorted(int(n) for n in names), list(range(1, self.N_BIG + 1)))
        # a second listing (after the refresh time) must not double the memory
        time.sleep(1.2)
        self.assertEqual(len(os.listdir(os.path.join(m.path, 'Big100k'))), self.N_BIG)
        self.assertRegex(read(os.path.join(m.path, 'Big100k', '99999', 'subject')),
                         rb'^m\d+\n$')
        hwm, fds = self.measure(m)
        sys.stderr.write('[listing took %.1f s] ' % elapsed)
        self.report('100k listing', hwm, fds, LISTING_100K_RSS)
        self.assertLess(hwm, LISTING_100K_RSS)
        self.assertLess(fds, FD_BASE + 4)  # connections = 4

    def test_1000_open_files(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1100:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
        m = self.mount(timeout='3')
        fdir = os.path.join(m.path, 'Many')
        fds = []
        try:
            for uid in self.many:
                fds.append(os.open(os.path.join(fdir, str(uid), 'message.eml'), os.O_RDONLY))
            self.assertEqual(len(fds), 1000)
            for uid, fd in zip(self.many, fds):
                data = os.pread(fd, 1 << 16, 0)
                self.assertTrue(data.startswith(b'From: a@example.com'), uid)
                self.assertIn(b'Subject: many %d\r\n' % (uid - 1), data)
            hwm, nfd = self.measure(m)
            self.report('1000 open files', hwm, nfd, OPEN_1000_RSS)
        finally:
            for fd in fds:
                os.close(fd)
        self.assertLess(hwm, OPEN_1000_RSS)
        self.assertLess(nfd, FD_BASE + 4)  # connections = 4


if __name__ == '__main__':
    unittest.main(verbosity=2)
