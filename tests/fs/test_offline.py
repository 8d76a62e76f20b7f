#!/usr/bin/python3
"""imapfs keeps serving when the disk fills or the network goes (issue 12).

A real throwaway Dovecot (tests/harness/dovecot.py), often behind a loopback TcpProxy
(tests/harness/tcp_proxy.py) that refuses, cuts or goes silent, and real FUSE mounts of the
built imapfs:

  - cache write failures: a small tmpfs cache_dir filled up, the cache file system remounted
    read-only, the cache directory deleted while mounted: every read still succeeds, byte for
    byte, the condition is logged once, the stats count it, and the cache stores again once
    the condition ends; a 50 MB message with a full disk stays under 100 MB RSS;
  - offline: the server stopped, refusing, or silent: folder lists and listings are served as
    they were, cached messages read, uncached ones fail fast with EIO, the stats say offline,
    and once the server is back new mail appears and expunged mail goes without a remount;
  - mounting while the server is down, with saved state (one warning line, mounted) and
    without (fails as before); a refused login stays fatal;
  - kill -9 while the saved state is being written: the next mount is consistent.

After each scenario every listed message is read and compared with the server's bytes.
Must run as root (tmpfs mounts).  Fails (never skips) without /dev/fuse, fusermount3 or
Dovecot.  Python stdlib only.  Environment as test_faults.py (IMAPFS_BIN, IMAPFS_HARNESS_DIR).
"""

import errno
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
import tcp_proxy  # noqa: E402
from cases import DovecotCase, MARGIN, TIMEOUT  # noqa: E402
from messages import attachment_message, text_message, write_maildir  # noqa: E402
from mounts import IMAPFS, Mount, write_config  # noqa: E402
from probes import proc_status, read, timed_read  # noqa: E402

REFRESH = 1
# `timeout` of the offline tests: roomy, so that a loaded machine does not fail a login through
# the proxy; "fails fast" is checked against 1 s, independent of it
OFF_TIMEOUT = 5
BIG_MESSAGE_RSS = 100 * 1000 * 1000


def stats(m):
    text = os.getxattr(m.path, 'user.imapfs.stats').decode()
    return {k: int(v) for k, v in re.findall(r'(\w+)=(-?\d+)', text)}


def tmpfs(test, path, size):
    """A tmpfs of size at path, unmounted (lazily) when the test ends."""
    os.makedirs(path, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0700' % size, 'tmpfs', path],
                   check=True)
    test.addCleanup(lambda: subprocess.run(['umount', '-l', path]))


def fill(path):
    """Write a file at path until the file system is full; returns its path."""
    chunk = b'\0' * 65536
    with open(path, 'wb') as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    # small writes too: what is left is less than a block
    try:
        with open(path, 'ab') as f:
            while True:
                f.write(b'\0' * 512)
                f.flush()
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    return path


# Run inside a private mount namespace (test_dns_failure): mount imapfs, list a folder, read
# some messages, try an uncached one, unmount; print what happened as JSON.
_NS_MOUNT = r'''
import hashlib, json, os, subprocess, sys, time
imapfs, cfg, mnt, log, home, folder, reads, uncached = sys.argv[1:9]


def mounted():
    with open('/proc/self/mountinfo') as f:
        return any(line.split()[4] == mnt for line in f)


out = {'mounted': False}
with open(log, 'wb') as lf:
    p = subprocess.Popen([imapfs, '-o', 'config=' + cfg, '-o', 'stats', '-f', mnt],
                         stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, XDG_CACHE_HOME=home, XDG_CONFIG_HOME=home))
try:
    deadline = time.monotonic() + 60
    while not mounted() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if mounted():
        out['mounted'] = True
        fdir = os.path.join(mnt, folder)
        out['folders'] = sorted(os.listdir(mnt))
        out['listed'] = sorted(int(n) for n in os.listdir(fdir))
        out['sha'] = {}
        for uid in [u for u in reads.split(',') if u]:
            with open(os.path.join(fdir, uid, 'message.eml'), 'rb') as f:
                out['sha'][uid] = hashlib.sha256(f.read()).hexdigest()
        if uncached:
            t0 = time.monotonic()
            try:
                with open(os.path.join(fdir, uncached, 'subject'), 'rb') as f:
                    f.read()
                out['uncached'] = 0
            except OSError as e:
                out['uncached'] = e.errno
            out['uncached_s'] = time.monotonic() - t0
        out['stats'] = os.getxattr(mnt, 'user.imapfs.stats').decode()
finally:
    subprocess.run(['fusermount3', '-uz', mnt], stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
print(json.dumps(out))
'''


def warnings_about(m, pattern):
    return [ln for ln in m.log_text().splitlines() if re.search(pattern, ln)]


def seed_folder(d, folder, n):
    """n text messages in a new folder; {uid: raw bytes as the server has them}.  The even
    ones carry the word 'needle' (for grep)."""
    d.create_folder(folder)
    raws = {}
    for i in range(n):
        raw = text_message('mail %d %s' % (i, 'needle' if i % 2 == 0 else 'hay'),
                           20000 + 100 * i, i)
        uid = d.append(folder, raw)
        raws[uid] = d.fetch_raw(folder, uid)
    return raws


class Case(DovecotCase):
    N = 40

    @classmethod
    def seed(cls):
        cls.raws = seed_folder(cls.d, 'Mail', cls.N)
        cls.uids = sorted(cls.raws)

    def tearDown(self):
        if not self.d._started:
            self.d.restart()

    folder = 'Mail'

    def fdir(self, m, folder=None):
        return os.path.join(m.path, folder or self.folder)

    def check_all(self, m, folder=None, only=None):
        """Every message listed in folder reads byte-exact against the server (or, with only,
        those of only that are listed)."""
        folder = folder or self.folder
        fdir = self.fdir(m, folder)
        listed = sorted(int(n) for n in os.listdir(fdir))
        server = self.d.uids(folder)
        self.assertEqual(listed, sorted(server))
        for uid in listed:
            if only is not None and uid not in only:
                continue
            r = timed_read(os.path.join(fdir, str(uid), 'message.eml'), 60)
            self.assertEqual(r.err, 0, 'UID %d: %s' % (uid, errno.errorcode.get(r.err)))
            self.assertEqual(r.data, self.d.fetch_raw(folder, uid), 'UID %d' % uid)
        return listed

    def read_files(self, fdir, uids):
        """Every file of these messages reads (as grep -r would), message.eml exactly."""
        for uid in uids:
            for name in ('message.eml', 'subject', 'body'):
                r = timed_read(os.path.join(fdir, str(uid), name), 30)
                self.assertEqual(r.err, 0, 'UID %d %s: %s' % (
                    uid, name, errno.errorcode.get(r.err)))
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), self.raws[uid])


# ---- the disk cache cannot be written -----------------------------------------------------


class CacheWriteFailures(Case):
    @classmethod
    def seed(cls):
        super().seed()
        cls.d.create_folder('Huge')
        cls.huge_payload = os.urandom(37 * 1024 * 1024)
        cls.huge_uid = cls.d.append('Huge', attachment_message('fifty', cls.huge_payload, 1))

    def test_full_disk_reads_succeed_then_cache_resumes(self):
        """A 4 MiB tmpfs cache_dir that fills up: every message still reads exactly, the
        condition is logged once (not per message), the stats count it; once space is
        freed, messages are stored again by themselves."""
        fs = os.path.join(self.tmp, 'full-fs')
        tmpfs(self, fs, '4m')
        cache = os.path.join(fs, 'cache')
        m = self.mount(cache_dir=cache, extra=('-o', 'stats'))
        fdir = self.fdir(m)
        self.assertEqual(sorted(int(n) for n in os.listdir(fdir)), self.uids)
        filler = fill(os.path.join(fs, 'filler'))
        self.read_files(fdir, self.uids[:self.N // 2])
        s = stats(m)
        self.assertEqual(s['disk_cache_write_error'], errno.ENOSPC, s)
        self.assertGreaterEqual(s['disk_cache_unstored'], 1, s)
        self.assertGreaterEqual(s['disk_cache_write_failures'], 1, s)
        lines = warnings_about(m, r'disk cache .*No space left')
        self.assertEqual(len(lines), 1, m.log_text())
        entries_full = s['disk_cache_entries']
        # space again: the cache stores by itself (within its retry time)
        os.unlink(filler)
        time.sleep(5.5)
        rest = self.uids[self.N // 2:]
        for uid in rest:
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), self.raws[uid])
        s = stats(m)
        self.assertEqual(s['disk_cache_write_error'], 0, s)
        self.assertGreater(s['disk_cache_entries'], entries_full, s)
        self.assertTrue(warnings_about(m, r'storing mail again'), m.log_text())
        self.check_all(m)
        self.assertIsNone(m.proc.poll())

    def injected_failure(self, err, words, mode=''):
        """Writes under the cache directory fail with err (the cachefail shim) while its
        trigger file exists (mode 'write': files are made, the bytes do not go in): every
        message still reads exactly, the condition is logged once (words: how g_strerror
        says it), the stats count it; once the trigger goes, the cache stores again by
        itself."""
        shim = os.environ.get('IMAPFS_CACHEFAIL', '')
        if not os.access(shim, os.R_OK):
            raise AssertionError('IMAPFS_CACHEFAIL must name the built cachefail shim')
        cache = os.path.join(self.tmp, 'inject-%d-cache' % err)
        os.makedirs(cache, exist_ok=True)
        trigger = os.path.join(self.tmp, 'inject-%d-trigger' % err)
        # the daemon alone gets the shim: set for the mount, then taken away again
        env = {'LD_PRELOAD': shim, 'IMAPFS_TEST_FAIL_DIR': os.path.realpath(cache),
               'IMAPFS_TEST_FAIL_TRIGGER': trigger}
        os.environ.update(env)
        try:
            m = self.mount(cache_dir=cache, readahead='0', extra=('-o', 'stats'))
        finally:
            for k in env:
                del os.environ[k]
        fdir = self.fdir(m)
        self.assertEqual(sorted(int(n) for n in os.listdir(fdir)), self.uids)
        for uid in self.uids[:3]:
            read(os.path.join(fdir, str(uid), 'message.eml'))
        before = stats(m)
        self.assertEqual(before['disk_cache_write_error'], 0, before)
        with open(trigger, 'w') as f:
            f.write('%d %s\n' % (err, mode))
        half = self.uids[3:self.N // 2]
        self.read_files(fdir, half[:len(half) // 2])
        # past the retry time: the disk is tried again, fails again, and that is the same
        # condition (no second log line)
        failures = stats(m)['disk_cache_write_failures']
        time.sleep(5.5)
        self.read_files(fdir, half[len(half) // 2:])
        s = stats(m)
        self.assertGreater(s['disk_cache_write_failures'], failures, 'never tried again')
        self.assertEqual(s['disk_cache_write_error'], err, s)
        self.assertGreaterEqual(s['disk_cache_unstored'], 1, s)
        self.assertGreaterEqual(s['disk_cache_write_failures'], 1, s)
        self.assertEqual(s['disk_cache_entries'], before['disk_cache_entries'], s)
        lines = warnings_about(m, r'disk cache .*%s' % words)
        self.assertEqual(len(lines), 1, m.log_text())
        # the condition ends: the cache stores again within its retry time
        os.unlink(trigger)
        time.sleep(5.5)
        for uid in self.uids[self.N // 2:]:
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), self.raws[uid])
        s = stats(m)
        self.assertEqual(s['disk_cache_write_error'], 0, s)
        self.assertGreater(s['disk_cache_entries'], before['disk_cache_entries'], s)
        self.assertTrue(warnings_about(m, r'storing mail again'), m.log_text())
        self.check_all(m)
        self.assertIsNone(m.proc.poll())

    def test_injected_eio(self):
        """An I/O error on everything under the cache directory (no file can be made)."""
        self.injected_failure(errno.EIO, 'Input/output error')

    def test_injected_edquot(self):
        """A block quota: files are made, writing into them fails (a message is moved to a
        scratch file part-way)."""
        self.injected_failure(errno.EDQUOT, 'Disk quota exceeded', mode='write')

    def test_50mb_message_full_disk_memory_bound(self):
        """A 50 MB message read with a full disk cache: exact bytes, exact attachment, and
        the daemon's peak RSS stays under 100 MB."""
        fs = os.path.join(self.tmp, 'huge-fs')
        tmpfs(self, fs, '2m')
        cache = os.path.join(fs, 'cache')
        m = self.mount(cache_dir=cache, timeout='10', connections='2', extra=('-o', 'stats'))
        d = os.path.join(m.path, 'Huge', str(self.huge_uid))
        os.listdir(os.path.join(m.path, 'Huge'))
        fill(os.path.join(fs, 'filler'))
        r = timed_read(os.path.join(d, 'message.eml'), 120)
        self.assertEqual(r.err, 0, errno.errorcode.get(r.err))
        self.assertEqual(r.data, self.d.fetch_raw('Huge', self.huge_uid))
        att = read(os.path.join(d, 'attachments', 'data-1.bin'))
        self.assertEqual(hashlib.sha256(att).digest(), hashlib.sha256(self.huge_payload).digest())
        self.assertIn('fifty', read(os.path.join(d, 'subject')).decode())
        hwm = proc_status(m.pid, 'VmHWM')
        sys.stderr.write('[50 MB message, full disk: VmHWM %.1f MB] ' % (hwm / 1e6))
        if not os.environ.get('IMAPFS_SANITIZER'):
            self.assertLess(hwm, BIG_MESSAGE_RSS)
        s = stats(m)
        self.assertGreaterEqual(s['disk_cache_unstored'], 1, s)
        self.assertIsNone(m.proc.poll())

    def condition_then_recovery(self, name, make, undo, err, words):
        """A tmpfs cache_dir with 5 messages cached; make(fs, cache) makes the cache
        unwritable: the next messages read exactly (every file), the stats say err, one log
        line (words: how g_strerror says it), no entry added; undo(fs, cache): within the
        retry time the cache stores again."""
        fs = os.path.join(self.tmp, name + '-fs')
        tmpfs(self, fs, '64m')
        cache = os.path.join(fs, 'cache')
        m = self.mount(cache_dir=cache, readahead='0', extra=('-o', 'stats'))
        fdir = self.fdir(m)
        os.listdir(fdir)
        for uid in self.uids[:5]:
            read(os.path.join(fdir, str(uid), 'message.eml'))
        before = stats(m)['disk_cache_entries']
        self.assertGreaterEqual(before, 5)
        self.addCleanup(undo, fs, cache)
        make(fs, cache)
        self.read_files(fdir, self.uids[5:25])
        s = stats(m)
        self.assertEqual(s['disk_cache_write_error'], err, s)
        self.assertEqual(s['disk_cache_entries'], before, s)
        self.assertEqual(len(warnings_about(m, r'disk cache .*%s' % words)), 1, m.log_text())
        undo(fs, cache)
        time.sleep(5.5)
        for uid in self.uids[25:]:
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), self.raws[uid])
        s = stats(m)
        self.assertEqual(s['disk_cache_write_error'], 0, s)
        self.assertGreater(s['disk_cache_entries'], before, s)
        self.assertTrue(warnings_about(m, r'storing mail again'), m.log_text())
        self.check_all(m)
        self.assertIsNone(m.proc.poll())

    def test_cache_fs_remounted_read_only(self):
        """The cache's file system becomes read-only: cached and uncached messages read
        exactly, EROFS is logged once; read-write again, the cache stores again."""
        self.condition_then_recovery(
            'ro', lambda fs, cache: subprocess.run(['mount', '-o', 'remount,ro', fs], check=True),
            lambda fs, cache: subprocess.run(['mount', '-o', 'remount,rw', fs], check=True),
            errno.EROFS, 'Read-only file system')

    def test_cache_dir_made_unwritable(self):
        """The cache directory made unwritable while mounted.  The tests run as root, whom
        a chmod does not stop, so the directories are made immutable (chattr +i, which
        stops root: EPERM, where a user's daemon after chmod 0500 gets EACCES; the same
        path): reads byte-exact, one log line, the stats; writable again, it stores again."""
        self.condition_then_recovery(
            'immutable',
            lambda fs, cache: subprocess.run(['chattr', '-R', '+i', cache], check=True),
            lambda fs, cache: subprocess.run(['chattr', '-R', '-i', cache], check=True),
            errno.EPERM, 'Operation not permitted')

    def test_cache_dir_deleted_while_mounted(self):
        """rm -rf of the cache directory while mounted: reads go on, byte-exact; the
        directory is made again (logged once) and messages are stored in it again."""
        cache = os.path.join(self.tmp, 'deleted-cache')
        # a small memory cache: the first messages are read from the disk cache again later
        m = self.mount(cache_dir=cache, readahead='0', memory_cache='1', extra=('-o', 'stats'))
        fdir = self.fdir(m)
        os.listdir(fdir)
        for uid in self.uids[:25]:
            read(os.path.join(fdir, str(uid), 'message.eml'))
        shutil.rmtree(cache)
        # cached before (their files are gone), then never cached
        for uid in self.uids[:5] + self.uids[25:]:
            self.assertIn(b'mail', read(os.path.join(fdir, str(uid), 'subject')))
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), self.raws[uid])
        self.assertEqual(len(warnings_about(m, r'was removed while mounted')), 1, m.log_text())
        self.assertFalse(warnings_about(m, r'vanished'), m.log_text())
        self.assertTrue(os.path.isdir(cache))
        self.assertEqual(os.stat(cache).st_mode & 0o777, 0o700)
        s = stats(m)
        self.assertGreater(s['disk_cache_entries'], 0, s)
        self.check_all(m)
        self.assertIsNone(m.proc.poll())


# ---- the server cannot be reached ----------------------------------------------------------


GREP_LIMIT = OFF_TIMEOUT + MARGIN + 3  # "within timeout + a few seconds"
LATE_START = 2.5


class Offline(Case):
    """Each test lists, reads and changes a folder of its own."""

    @classmethod
    def seed(cls):
        pass

    def setUp(self):
        super().setUp()
        self.folder = 'Off-' + self._testMethodName
        self.raws = seed_folder(self.d, self.folder, self.N)
        self.uids = sorted(self.raws)

    def mount_and_half_read(self, port=None, cache=None):
        cache = cache or os.path.join(self.tmp, self._testMethodName + '-cache')
        m = self.mount(port=port, cache_dir=cache, refresh=str(REFRESH), readahead='0',
                       timeout=str(OFF_TIMEOUT), extra=('-o', 'stats'))
        fdir = self.fdir(m)
        self.assertEqual(sorted(int(n) for n in os.listdir(fdir)), self.uids)
        os.listdir(m.path)
        cached = self.uids[:self.N // 2]
        for uid in cached:
            for name in ('message.eml', 'body'):
                read(os.path.join(fdir, str(uid), name))
        return m, cached

    def serve_offline(self, m, cached, grep_limit=GREP_LIMIT, during_grep=None):
        """With the server unreachable: listings as they were, cached mail readable,
        uncached mail EIO, and a grep -r over the half-cached folder finishes in time and
        finds every hit of the cached half.  during_grep: run in a thread as grep starts."""
        fdir = self.fdir(m)
        time.sleep(REFRESH + 0.5)  # everything known is now older than `refresh`
        t0 = time.monotonic()
        side = threading.Thread(target=during_grep) if during_grep else None
        if side:
            side.start()
        try:
            res = subprocess.run(['grep', '-rl', 'needle', fdir], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=grep_limit + 30)
        finally:
            if side:
                side.join(grep_limit + 30)
        elapsed = time.monotonic() - t0
        sys.stderr.write('[offline grep -r: %.1f s] ' % elapsed)
        self.assertLess(elapsed, grep_limit, 'grep -r took %.1f s' % elapsed)
        hits = {int(p[len(fdir) + 1:].split('/')[0])
                for p in res.stdout.decode().split('\n') if p}
        want = {uid for i, uid in enumerate(self.uids) if i % 2 == 0 and uid in cached}
        self.assertTrue(want <= hits, 'cached hits missing: %s' % sorted(want - hits))
        self.assertEqual(sorted(int(n) for n in os.listdir(fdir)), self.uids)
        self.assertIn(self.folder, os.listdir(m.path))
        for uid in cached:
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), self.raws[uid])
        uncached = [u for u in self.uids if u not in cached]
        for uid in uncached[-3:]:
            r = timed_read(os.path.join(fdir, str(uid), 'subject'), grep_limit + 10)
            self.assertEqual(r.err, errno.EIO, errno.errorcode.get(r.err))
            self.assertLess(r.elapsed, 1.0, 'an uncached read waited %.1f s' % r.elapsed)
        self.assertEqual(stats(m)['offline'], 1)

    def catch_up(self, m, restore):
        """The server comes back: without a remount, new mail appears and expunged mail
        goes; then every listed message reads exactly."""
        restore()
        new_raw = text_message('after the outage', 3000, 999)
        new_uid = self.d.append(self.folder, new_raw)
        gone = self.uids[-1]
        self.d.expunge(self.folder, [gone])
        fdir = self.fdir(m)
        self.wait_for(lambda: str(new_uid) in os.listdir(fdir) and
                      str(gone) not in os.listdir(fdir), 'no catch-up after the outage', 60)
        self.assertEqual(stats(m)['offline'], 0)
        self.check_all(m)

    def test_server_stopped(self):
        m, cached = self.mount_and_half_read()
        self.d.kill()
        self.serve_offline(m, cached)
        self.catch_up(m, self.d.restart)
        self.assertIsNone(m.proc.poll())

    def test_server_refusing(self):
        p = self.proxy(tcp_proxy.TcpProxy)
        m, cached = self.mount_and_half_read(port=p.port)
        p.refuse(True)
        p.cut()
        self.serve_offline(m, cached)
        self.catch_up(m, lambda: p.refuse(False))
        self.assertIsNone(m.proc.poll())

    def test_server_silent(self):
        """The server accepts connections but says nothing (a black hole): the first request
        that waits for it (the folder's re-listing, as grep -r starts) costs one `timeout`;
        then the mount is offline, a read already waiting on another connection gives up at
        once instead of waiting out its own timeout, and every request after answers at
        once: the grep -r ends within timeout + 3 s."""
        p = self.proxy(tcp_proxy.TcpProxy)
        m, cached = self.mount_and_half_read(port=p.port)
        # an uncached message's directory, open: a file looked up in it (by dir_fd, not
        # through the folder, whose re-listing grep's wait is) is fetched on a reader
        # connection, and nothing else is asked
        late_fd = os.open(os.path.join(self.fdir(m), str(self.uids[-1])),
                          os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, late_fd)
        p.stall()
        got = {}

        def late_read():
            # starts waiting on a reader connection 2.5 s into the listing's wait
            time.sleep(LATE_START)
            t0 = time.monotonic()
            try:
                fd = os.open('subject', os.O_RDONLY, dir_fd=late_fd)
                os.read(fd, 4096)
                os.close(fd)
                got['err'] = 0
            except OSError as e:
                got['err'] = e.errno
            got['elapsed'] = time.monotonic() - t0

        self.serve_offline(m, cached, grep_limit=OFF_TIMEOUT + 3, during_grep=late_read)
        sys.stderr.write('[a read waiting on another connection gave up after %.1f s] '
                         % got['elapsed'])
        self.assertEqual(got['err'], errno.EIO, errno.errorcode.get(got['err']))
        # its own timeout would end at LATE_START + OFF_TIMEOUT; the listing's ends at
        # OFF_TIMEOUT, LATE_START after it began
        self.assertLess(got['elapsed'], OFF_TIMEOUT - 1, 'it waited for its own timeout')
        self.catch_up(m, lambda: (p.cut(), p.resume()))
        self.assertIsNone(m.proc.poll())

    def test_mount_while_down_with_saved_state(self):
        """Mounting while the server refuses: with this account's state in the cache, the
        mount comes up with one warning line and serves the cached mail; the server back,
        it catches up."""
        p = self.proxy(tcp_proxy.TcpProxy)
        cache = os.path.join(self.tmp, 'down-cache')
        m, cached = self.mount_and_half_read(port=p.port, cache=cache)
        m.close()
        p.refuse(True)
        m2 = self.mount(port=p.port, cache_dir=cache, refresh=str(REFRESH), readahead='0',
                        timeout=str(OFF_TIMEOUT), extra=('-o', 'stats'))
        # one line about it, the documented one
        lines = [ln for ln in m2.log_text().splitlines() if 'offline' in ln]
        self.assertEqual(len(lines), 1, m2.log_text())
        self.assertRegex(lines[0], r'^imapfs: offline: serving cached mail of default \(.+\)$')
        self.serve_offline(m2, cached)
        self.catch_up(m2, lambda: p.refuse(False))
        self.assertIsNone(m2.proc.poll())

    def ns_mount(self, hosts, cache, reads, uncached=''):
        """_NS_MOUNT in a private mount namespace whose /etc/hosts is hosts and whose
        /etc/resolv.conf names 127.0.0.1 only (where nothing answers DNS): the account's host
        is `localhost` (a name of the test CA's certificate), so nothing but loopback is ever
        asked.  Returns (its JSON, the daemon's log)."""
        tag = '%s-%d' % (self._testMethodName, len(os.listdir(self.tmp)))
        hosts_file = os.path.join(self.tmp, tag + '.hosts')
        with open(hosts_file, 'w') as f:
            f.write(hosts)
        resolv = os.path.join(self.tmp, tag + '.resolv')
        with open(resolv, 'w') as f:
            f.write('nameserver 127.0.0.1\noptions attempts:1 timeout:1\n')
        cfg = write_config(os.path.join(self.tmp, tag + '.cfg'), self.d, host='localhost',
                           cache_dir=cache, timeout=str(OFF_TIMEOUT), readahead='0')
        mnt = os.path.join(self.tmp, tag + '.mnt')
        os.makedirs(mnt)
        log = os.path.join(self.tmp, tag + '.log')
        script = ('mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && '
                  'shift 2 && exec "$@"')
        cmd = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh', resolv,
               hosts_file, sys.executable, '-c', _NS_MOUNT, IMAPFS, cfg, mnt,
               log, os.path.join(self.tmp, tag + '.home'), self.folder,
               ','.join(str(u) for u in reads), str(uncached)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        with open(log, 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
        self.assertEqual(proc.returncode, 0, err.decode(errors='replace') + text)
        return __import__('json').loads(out.decode().strip().splitlines()[-1]), text

    def test_dns_failure(self):
        """The server's host name does not resolve (no /etc/hosts entry, and the only
        nameserver does not answer): that is "cannot be reached".  A mount with this
        account's saved state comes up with one warning line and serves the cached mail;
        an uncached message fails fast with EIO."""
        cache = os.path.join(self.tmp, 'dns-cache')
        cached = self.uids[:self.N // 2]
        want = {str(u): hashlib.sha256(self.raws[u]).hexdigest() for u in cached}
        out, log = self.ns_mount('127.0.0.1 localhost\n', cache, cached)
        self.assertTrue(out['mounted'], log)
        self.assertEqual(out['listed'], self.uids)
        self.assertEqual(out['sha'], want)
        # no name for the server any more
        out, log = self.ns_mount('127.0.0.1 imapfs-test-other-name\n', cache, cached,
                                 uncached=self.uids[-1])
        self.assertTrue(out['mounted'], log)
        lines = [ln for ln in log.splitlines() if 'offline:' in ln]
        self.assertEqual(len(lines), 1, log)
        self.assertRegex(lines[0], r'^imapfs: offline: serving cached mail of default '
                                   r'\(cannot resolve localhost: .+\)$')
        self.assertIn(self.folder, out['folders'])
        self.assertEqual(out['listed'], self.uids)
        self.assertEqual(out['sha'], want)
        self.assertEqual(out['uncached'], errno.EIO)
        self.assertLess(out['uncached_s'], 1.0)
        self.assertIn('offline=1', out['stats'])
        # without saved state the same failure is fatal, as any connection error
        out, log = self.ns_mount('127.0.0.1 imapfs-test-other-name\n',
                                 os.path.join(self.tmp, 'dns-empty-cache'), [])
        self.assertFalse(out['mounted'], log)
        self.assertIn('cannot resolve localhost', log)
        self.assertNotIn('offline', log)

    def test_cache_off_keeps_nothing(self):
        """cache = off: nothing is written to disk, neither messages nor saved state.  While
        mounted, an outage is served from memory all the same (listings as they were, the
        messages read before); a mount while the server is down fails, as without state."""
        p = self.proxy(tcp_proxy.TcpProxy)
        cache = os.path.join(self.tmp, 'off-cache')
        m = self.mount(port=p.port, cache='off', cache_dir=cache, refresh=str(REFRESH),
                       readahead='0', timeout=str(OFF_TIMEOUT), extra=('-o', 'stats'))
        fdir = self.fdir(m)
        self.assertEqual(sorted(int(n) for n in os.listdir(fdir)), self.uids)
        read_before = self.uids[:3]
        for uid in read_before:
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), self.raws[uid])
        p.refuse(True)
        p.cut()
        time.sleep(REFRESH + 0.5)
        self.assertEqual(sorted(int(n) for n in os.listdir(fdir)), self.uids)
        for uid in read_before:
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')), self.raws[uid])
        r = timed_read(os.path.join(fdir, str(self.uids[-1]), 'subject'), 3 * OFF_TIMEOUT)
        self.assertEqual(r.err, errno.EIO, errno.errorcode.get(r.err))
        self.assertLess(r.elapsed, 1.0)
        self.assertEqual(stats(m)['offline'], 1)
        home = os.path.join(self.tmp, '%s-%d.cache' % (self._testMethodName, self.n))
        m.close()
        self.assertFalse(os.path.exists(cache), os.listdir(cache) if os.path.isdir(cache)
                         else cache)
        # the daemon's XDG_CACHE_HOME and XDG_CONFIG_HOME (mounts.daemon_env): empty
        self.assertEqual([f for _, _, fs in os.walk(home) for f in fs], [])
        with self.assertRaises(AssertionError) as cm:
            self.mount(port=p.port, cache='off', cache_dir=cache, timeout=str(OFF_TIMEOUT))
        self.assertIn('imapfs: cannot log in to', str(cm.exception))
        self.assertNotIn('offline', str(cm.exception))

    def test_mount_while_down_without_state_fails(self):
        p = self.proxy(tcp_proxy.TcpProxy)
        p.refuse(True)
        with self.assertRaises(AssertionError) as cm:
            self.mount(port=p.port, cache_dir=os.path.join(self.tmp, 'empty-cache'),
                       timeout=str(OFF_TIMEOUT))
        self.assertIn('imapfs: cannot log in to', str(cm.exception))
        self.assertNotIn('offline', str(cm.exception))

    def test_refused_login_stays_fatal(self):
        """Saved state does not turn a wrong password into an offline mount."""
        cache = os.path.join(self.tmp, 'auth-cache')
        m, _cached = self.mount_and_half_read(cache=cache)
        m.close()
        cfg = write_config(os.path.join(self.tmp, 'wrong.cfg'), self.d,
                           password='wrong-password', cache_dir=cache,
                           timeout='10')  # Dovecot delays a failed login by 2 s

        with self.assertRaises(AssertionError) as cm:
            self.addCleanup(Mount(self.tmp, cfg, name='wrong', foreground=True,
                                  private_home=True).close)
        self.assertIn('imapfs: cannot log in to', str(cm.exception))
        self.assertNotIn('offline', str(cm.exception))

    def test_unverified_certificate_stays_fatal(self):
        """Saved state does not turn a certificate that does not verify (another CA) into an
        offline mount: the mount fails with the certificate error."""
        cache = os.path.join(self.tmp, 'cert-cache')
        m, _cached = self.mount_and_half_read(cache=cache)
        m.close()
        other = os.path.join(self.tmp, 'other-ca')
        os.makedirs(other)
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:prime256v1', '-nodes', '-keyout',
                        os.path.join(other, 'ca.key'), '-out', os.path.join(other, 'ca.pem'),
                        '-days', '30', '-subj', '/CN=not the server\'s CA'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cfg = write_config(os.path.join(self.tmp, 'other-ca.cfg'), self.d,
                           ca_file=os.path.join(other, 'ca.pem'), cache_dir=cache,
                           timeout=str(TIMEOUT))

        with self.assertRaises(AssertionError) as cm:
            self.addCleanup(Mount(self.tmp, cfg, name='other-ca', foreground=True,
                                  private_home=True).close)
        self.assertIn('certificate', str(cm.exception))
        self.assertNotIn('offline', str(cm.exception))


# ---- the saved state ---------------------------------------------------------------------


class SlightChange:
    """Mixin for a DovecotCase: re-listing a slightly changed folder."""

    def relist_slightly_changed(self, trips_wanted, sent_wanted, refresh_trips):
        """A folder that changed a little between two mounts (new mail, expunges, flags
        added and removed) is brought up to date on the remount in trips_wanted round trips,
        sending commands matching sent_wanted (regular expressions, in order), and nothing
        else; what it lists (names, dates, flags, bytes) is what a cold mount lists.  Then
        the same for the periodic refresh of the mounted folder."""
        folder = 'Slight'
        self.d.create_folder(folder)
        write_maildir(self.d, folder, 300)
        uids = sorted(self.d.uids(folder))
        self.d.set_flags(folder, [str(u) for u in uids[10:20]], ['\\Flagged'])
        cache = os.path.join(self.tmp, 'slight-cache')
        m = self.mount(cache_dir=cache, watch='off')
        self.assertEqual(sorted(int(n) for n in os.listdir(self.fdir(m, folder))), uids)
        m.close()
        # the changes: 3 new, 5 expunged (one of them flagged), flags added and removed
        new = [self.d.append(folder, text_message('new %d' % i, 2000, i)) for i in range(3)]
        gone = [uids[0], uids[7], uids[15], uids[150], uids[-1]]
        self.d.expunge(folder, gone)
        self.d.set_flags(folder, [str(u) for u in uids[30:34]], ['\\Answered', '$Label1'])
        self.d.set_flags(folder, [str(u) for u in uids[10:14]], ['\\Flagged'], add=False)
        self.d.set_flags(folder, [str(u) for u in uids[200:202]], ['\\Seen'], add=False)
        m2 = self.mount(cache_dir=cache, watch='off', extra=('-d',))
        before = len(m2.log_text().splitlines())
        fdir = self.fdir(m2, folder)
        listed = sorted(int(n) for n in os.listdir(fdir))
        trace = [ln for ln in m2.log_text().splitlines()[before:]
                 if ' C: ' in ln or ' S: ' in ln]
        sent = [ln.split(' C: ', 1)[1] for ln in trace if ' C: ' in ln]
        # a round trip: commands sent one after another, before an answer is read
        trips = sum(1 for i, ln in enumerate(trace)
                    if ' C: ' in ln and (i == 0 or ' S: ' in trace[i - 1]))
        sys.stderr.write('[slightly changed folder re-listed: %d round trip(s): %s] '
                         % (trips, sent))
        self.assertEqual(trips, trips_wanted, sent)
        self.assertEqual(len(sent), len(sent_wanted), sent)
        for got, want in zip(sent, sent_wanted):
            self.assertRegex(got, want % {'uidnext': uids[-1] + 1})
        server = sorted(self.d.uids(folder))
        self.assertEqual(listed, server)
        self.assertEqual(listed, sorted(set(uids + new) - set(gone)))
        # the same as a cold mount lists: names, dates, and every message's flags
        cold = self.mount(cache_dir=os.path.join(self.tmp, 'slight-cold'), watch='off')
        cdir = self.fdir(cold, folder)
        self.assertEqual(sorted(int(n) for n in os.listdir(cdir)), listed)
        flags = self.d.flags(folder)
        for uid in listed:
            self.assertEqual(os.stat(os.path.join(fdir, str(uid))).st_mtime,
                             os.stat(os.path.join(cdir, str(uid))).st_mtime, 'UID %d' % uid)
        for uid in listed:
            shown = read(os.path.join(fdir, str(uid), 'flags')).decode().split()
            self.assertEqual(sorted(shown), sorted(f for f in flags[uid] if f != '\\Recent'),
                             'flags of UID %d' % uid)
        for uid in new + listed[:3] + listed[-6:]:
            self.assertEqual(read(os.path.join(fdir, str(uid), 'message.eml')),
                             self.d.fetch_raw(folder, uid), 'UID %d' % uid)
        # the periodic refresh of a mounted folder goes the same way: one round trip
        more = self.d.append(folder, text_message('newer', 2000, 9))
        self.d.expunge(folder, [listed[100]])
        self.d.set_flags(folder, [str(listed[101])], ['\\Draft'])
        time.sleep(1.5)  # refresh = 1
        before = len(m2.log_text().splitlines())
        relisted = sorted(int(n) for n in os.listdir(fdir))
        trace = [ln for ln in m2.log_text().splitlines()[before:]
                 if ' C: ' in ln or ' S: ' in ln]
        # the folder list is refreshed too (a LIST of its own, on the same connection)
        list_tags = [ln.split(' C: ', 1)[1].split()[0] for ln in trace
                     if re.search(r' C: \S+ LIST ', ln)]
        trace = [ln for ln in trace if not re.search(r' S: \* LIST ', ln) and
                 not any(re.search(r' [CS]: %s ' % t, ln) for t in list_tags)]
        trips = sum(1 for i, ln in enumerate(trace)
                    if ' C: ' in ln and (i == 0 or ' S: ' in trace[i - 1]))
        self.assertEqual(trips, refresh_trips, trace)
        self.assertRegex(trace[0], sent_wanted[0] % {'uidnext': 0})
        self.last_log = m2.log_text()
        self.assertEqual(relisted, sorted(self.d.uids(folder)))
        self.assertIn(more, relisted)
        self.assertIn('\\Draft', read(os.path.join(fdir, str(listed[101]), 'flags')).decode())


class SavedState(Case, SlightChange):
    N_BIG = 30000

    @classmethod
    def seed(cls):
        super().seed()
        cls.d.create_folder('Big')
        write_maildir(cls.d, 'Big', cls.N_BIG)

    def test_remount_relists_with_one_examine(self):
        """A remount re-lists an unchanged folder from the saved listing: no UID FETCH 1:*
        and no SEARCH is sent (the -d protocol trace shows what was)."""
        cache = os.path.join(self.tmp, 'relist-cache')
        m = self.mount(cache_dir=cache)
        self.assertEqual(len(os.listdir(self.fdir(m, 'Big'))), self.N_BIG)
        m.close()
        m2 = self.mount(cache_dir=cache, extra=('-d',))
        self.assertEqual(len(os.listdir(self.fdir(m2, 'Big'))), self.N_BIG)
        sent = [ln for ln in m2.log_text().splitlines() if ' C: ' in ln]
        self.assertTrue([ln for ln in sent if re.search(r'EXAMINE \\?"?Big', ln)], sent)
        self.assertFalse([ln for ln in sent if re.search(r'UID FETCH 1:\*|UID SEARCH', ln)],
                         sent)
        self.check_all(m2, 'Mail', only=set(self.uids[:3]))

    def test_remount_relists_slightly_changed_in_one_round_trip(self):
        """With QRESYNC: EXAMINE (QRESYNC (UIDVALIDITY HIGHESTMODSEQ)) names what vanished
        and what was re-flagged, and UID FETCH <old UIDNEXT>:* brings the new mail, sent
        together: one round trip."""
        self.relist_slightly_changed(1, [r'EXAMINE \\?"?Slight\\?"? \(QRESYNC \(\d+ \d+\)\)',
                                         r'UID FETCH %(uidnext)d:\* '], 1)

    def test_kill9_while_state_is_written(self):
        """SIGKILL the daemon while it writes a 30,000-message listing: the next mount
        lists exactly what the server has and reads every message exactly."""
        cache = os.path.join(self.tmp, 'kill-state-cache')
        state_dir = os.path.join(cache, 'state')
        caught = 0
        for attempt in range(6):
            m = self.mount(cache_dir=cache, refresh='1')
            bdir = self.fdir(m, 'Big')
            # a change to every message: the re-listing is new and is saved again
            self.d.set_flags('Big', ['1:*'], ['\\Flagged'], add=attempt % 2 == 0)
            time.sleep(1.1)
            pid = m.pid
            proc = subprocess.Popen(['ls', bdir], stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            hit = False
            while time.monotonic() < deadline and not hit:
                try:
                    for fd in os.listdir('/proc/%d/fd' % pid):
                        try:
                            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
                        except OSError:
                            continue
                        if target.startswith(state_dir + '/.tmp-'):
                            hit = True
                            break
                except OSError:
                    break
            os.kill(pid, signal.SIGKILL)
            m.proc.wait(timeout=10)
            proc.kill()
            proc.wait()
            m.close()
            caught += hit
        sys.stderr.write('[killed while writing the state %d of 6 times] ' % caught)
        self.assertGreater(caught, 0, 'never caught the daemon writing its state')
        m = self.mount(cache_dir=cache, extra=('-o', 'stats'))
        self.assertFalse([n for n in os.listdir(state_dir) if n.startswith('.tmp-')])
        listed = sorted(int(n) for n in os.listdir(self.fdir(m, 'Big')))
        self.assertEqual(listed, sorted(self.d.uids('Big')))
        flags = self.d.flags('Big')
        for uid in listed[:50] + listed[-50:]:
            shown = read(os.path.join(self.fdir(m, 'Big'), str(uid), 'flags')).decode().split()
            self.assertEqual(sorted(shown), sorted(flags[uid]), 'flags of UID %d' % uid)
            self.assertEqual(read(os.path.join(self.fdir(m, 'Big'), str(uid), 'message.eml')),
                             self.d.fetch_raw('Big', uid))
        self.check_all(m)


class CondstoreOnly(Case, SlightChange):
    """A server with CONDSTORE but without QRESYNC keeps the two-round-trip re-listing:
    EXAMINE, then new mail, flag changes (CHANGEDSINCE) and the UIDs left, sent together (a
    third when new mail hid an expunge from EXISTS).  No QRESYNC is ever sent."""
    dovecot_options = {'qresync': False}

    def test_remount_relists_slightly_changed_in_two_round_trips(self):
        self.relist_slightly_changed(2, [r'EXAMINE \\?"?Slight\\?"? \(CONDSTORE\)',
                                         r'UID SEARCH RETURN \(ALL\) ALL',
                                         r'UID FETCH %(uidnext)d:\* ',
                                         r'UID FETCH 1:\d+ .*\(CHANGEDSINCE \d+\)'],
                                     # 1 new and 1 expunged: EXISTS hides the expunge, so
                                     # the UID SEARCH ALL takes a third round trip
                                     3)
        self.assertFalse([ln for ln in self.last_log.splitlines() if 'QRESYNC' in ln])


if __name__ == '__main__':
    unittest.main(verbosity=2)
