#!/usr/bin/python3
"""Integration tests of imapfs's caches and performance features, against a real Dovecot
(tests/harness/dovecot.py) and real FUSE mounts:

  - the persistent disk cache (remount fetches nothing again; 0700/0600; stale temporary files
    and damaged entries removed; a directory owned by someone else refused; LRU size bound;
    cache = off; UIDVALIDITY change discards a folder's entries);
  - memory bounds (daemon VmHWM < 100 MB while reading a 50 MB message and while grepping a
    5,000-message folder);
  - read-ahead (a sequential reader gets ranged UID FETCHes on the read-ahead connection, and
    no message is fetched twice);
  - cheap re-listing (an unchanged folder costs one command; changes cost CHANGEDSINCE and
    new-UID fetches, never a full SEARCH + FETCH);
  - kernel caching (a warm grep -r sends no OPEN, READ or RELEASE; request counts printed).

Counts come from the daemon's stats, the extended attribute user.imapfs.stats of the mount's
root with -o stats ("bodies_fetched=N ... requests=N"), and from the -d protocol trace.

Environment: IMAPFS_BIN, IMAPFS_HARNESS_DIR (set by tests/fs/meson.build).  Fails (never
skips) without /dev/fuse or Dovecot.  Python stdlib only.
"""

import base64
import concurrent.futures
import hashlib
import os
import pwd
import random
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_imapfs as base  # noqa: E402
from test_imapfs import Mount, all_files, read, require_environment, write_config  # noqa: E402

dovecot = base.dovecot
sample_mail = base.sample_mail

STATS = 'user.imapfs.stats'


def stats(mnt):
    text = os.getxattr(mnt, STATS).decode()
    return {k: int(v) for k, v in (f.split('=') for f in text.split())}


def vm_hwm_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    raise AssertionError('no VmHWM for %d' % pid)


def commands(log):
    return re.findall(r'imap: C: \S+ (.*)', log)


def cache_files(cache):
    """Every whole message the disk cache holds in a finished file, as (path, uid, offset,
    size): single-message files "<UID>.<SIZE>" and the members of packs that are whole
    messages (piece 0), read from each pack's trailer (format in fs/bodycache.h); pieces
    ("<UID>-<PIECE>.<SIZE>", pack members of another piece) are left out.  A pack whose
    trailer does not describe the file exactly is reported with uid None."""
    out = []
    for dp, _dn, fs in os.walk(cache):
        for f in fs:
            path = os.path.join(dp, f)
            m = re.match(r'^(\d+)\.(\d+)$', f)
            if m:
                out.append((path, int(m.group(1)), 0, int(m.group(2))))
            elif re.match(r'^\d+-\d+\.[0-9a-f]+\.pack$', f):
                out.extend(pack_members(path))
    return out


def pack_members(path):
    size = os.path.getsize(path)
    bad = [(path, None, 0, 0)]
    with open(path, 'rb') as f:
        if size < 20:
            return bad
        f.seek(size - 20)
        footer = f.read(20)
        if footer[12:] not in (b'IFSPACK2', b'IFSPACK1'):
            return bad
        data_len, count = struct.unpack('<QI', footer[:12])
        if data_len + 24 * count + 20 != size:
            return bad
        f.seek(data_len)
        trailer = f.read(24 * count)
    members, nxt = [], 0
    for i in range(count):
        uid, piece, off, msize = struct.unpack_from('<IIQQ', trailer, 24 * i)
        if off != nxt:
            return bad
        nxt = off + msize
        if piece == 0:
            members.append((path, uid, off, msize))
    return members if nxt == data_len else bad


def text_message(i, size, rnd):
    words = ['invoice', 'meeting', 'report', 'lunch', 'budget', 'project', 'deadline',
             'review', 'alpha', 'beta', 'gamma', 'delta', 'status', 'update', 'note']
    lines = []
    n = 0
    while n < size:
        line = ' '.join(rnd.choice(words) for _ in range(12))
        lines.append(line)
        n += len(line) + 2
    body = '\r\n'.join(lines)
    return ('From: Sender %d <s%d@example.com>\r\nTo: you@example.com\r\n'
            'Subject: message %d\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n'
            'Message-ID: <m%d@example.com>\r\n\r\n%s\r\n' % (i, i, i, i, body)).encode()


def maildir_bulk(d, folder, messages):
    """Put messages straight into folder's Maildir (fast for thousands); Dovecot assigns UIDs
    at the next EXAMINE."""
    d.create_folder(folder)
    dv = pwd.getpwnam('dovecot')
    new = os.path.join(d.workdir, 'home', d.user, 'Maildir', folder, 'new')
    os.makedirs(new, exist_ok=True)
    for i, raw in enumerate(messages):
        p = os.path.join(new, '%d.M%dP1.imapfs-test' % (1700000000 + i, i))
        with open(p, 'wb') as f:
            f.write(raw)
        os.chown(p, dv.pw_uid, dv.pw_gid)
    uids = d.uids(folder)
    if len(uids) != len(messages):
        raise AssertionError('Dovecot sees %d of %d messages' % (len(uids), len(messages)))
    return uids


class PerfBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.tmp = tempfile.mkdtemp(prefix='ifsp', dir='/tmp')
        cls.d = dovecot.Dovecot()
        cls.d.start()
        try:
            cls.seeded = sample_mail.seed(cls.d)
        except BaseException:
            cls.d.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.mounts = []

    def tearDown(self):
        for m in self.mounts:
            m.close()

    def config(self, name, **kw):
        return write_config(os.path.join(self.tmp, name), self.d, **kw)

    def mount(self, cfg, name, **kw):
        m = Mount(self.tmp, cfg, name=name, extra=('-o', 'stats'), **kw)
        self.mounts.append(m)
        return m

    def unmount(self, m):
        m.close()
        self.mounts.remove(m)


class DiskCacheTest(PerfBase):

    def test_remount_fetches_nothing_again(self):
        cfg = self.config('c-remount')
        cache = os.path.join(self.tmp, 'cache-c-remount')
        m = self.mount(cfg, 'm1')
        files = all_files(m.path)
        first = {os.path.relpath(p, m.path): read(p) for p in files}
        n_msgs = len(self.seeded) + 0
        self.assertGreaterEqual(stats(m.path)['bodies_fetched'], n_msgs)
        self.unmount(m)
        # private: 0700 directories, 0600 files, no temporary file left
        for dirpath, dirnames, filenames in os.walk(cache):
            self.assertEqual(stat.S_IMODE(os.stat(dirpath).st_mode), 0o700, dirpath)
            for f in filenames:
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode),
                                 0o600, f)
                self.assertFalse(f.startswith('.tmp-'), f)
        # folder names never appear in paths: hashes only (state/ keeps the folder list and
        # the listings, fs/state.h, named by the same hashes)
        top = set(os.listdir(cache)) - {'lock', 'identity', 'format', 'state'}
        for name in top:
            self.assertRegex(name, r'^[0-9a-f]{32}$')
        for name in os.listdir(os.path.join(cache, 'state')):
            self.assertRegex(name, r'^(folders|[0-9a-f]{32}\.listing)$')
        m = self.mount(cfg, 'm2')
        second = {os.path.relpath(p, m.path): read(p) for p in all_files(m.path)}
        self.assertEqual(second, first)
        self.assertEqual(stats(m.path)['bodies_fetched'], 0,
                         'a remount fetched cached messages again')

    def test_stale_temporary_and_damaged_entries_removed(self):
        cfg = self.config('c-stale')
        cache = os.path.join(self.tmp, 'cache-c-stale')
        m = self.mount(cfg, 'm')
        uid = [u for f, u, _r, _fl in self.seeded if f == 'INBOX'][0]
        read(os.path.join(m.path, 'INBOX', str(uid), 'message.eml'))
        self.unmount(m)
        entries = [os.path.join(dp, f) for dp, _dn, fs in os.walk(cache) for f in fs
                   if re.match(r'^\d+\.\d+$', f)]
        self.assertTrue(entries)
        entry = entries[0]
        tmpf = os.path.join(os.path.dirname(entry), '.tmp-0000000000000000')
        with open(tmpf, 'wb') as f:
            f.write(b'half a message')
        # a damaged entry (shorter than its name says) is never served
        with open(entry, 'r+b') as f:
            f.truncate(3)
        m = self.mount(cfg, 'm2')
        self.assertFalse(os.path.exists(tmpf))
        self.assertFalse(os.path.exists(entry))
        self.assertEqual(read(os.path.join(m.path, 'INBOX', str(uid), 'message.eml')),
                         self.d.fetch_raw('INBOX', uid))

    def test_readahead_writes_packs_and_damaged_packs_go(self):
        """Read-ahead stores each batch in one pack file (creating a file per message costs
        more than receiving it); every member holds the server's exact bytes; a pack that is
        cut short or has a bad trailer is removed at the next mount, and exactly its messages
        are fetched again."""
        folder = 'Packs'
        rnd = random.Random(7)
        # more than one read-ahead batch (32 MiB, fs/readahead.c): two packs at least
        uids = maildir_bulk(self.d, folder, [text_message(i, 100000 + rnd.randrange(40000), rnd)
                                             for i in range(300)])
        raws = {u: self.d.fetch_raw(folder, u) for u in uids}
        cfg = self.config('c-packs')
        cache = os.path.join(self.tmp, 'cache-c-packs')
        m = self.mount(cfg, 'm')
        fdir = os.path.join(m.path, folder)
        # a walk over message.eml: whole messages (a walk over body reads text parts ahead)
        subprocess.run(['grep', '-rlq', '--include=message.eml', 'nothing-matches-this', fdir])
        self.unmount(m)
        held = cache_files(cache)
        self.assertNotIn(None, [u for _p, u, _o, _s in held], held)
        packs = sorted({p for p, _u, _o, _s in held if p.endswith('.pack')})
        files = {p for p, _u, _o, _s in held}
        print('\n%d messages in %d files (%d packs)' % (len(held), len(files), len(packs)),
              file=sys.stderr)
        self.assertEqual(sorted(u for _p, u, _o, _s in held), sorted(uids))
        self.assertGreaterEqual(len(packs), 2)
        self.assertLess(len(files), len(uids) / 20, 'read-ahead wrote one file per message')
        for path, uid, off, size in held:
            with open(path, 'rb') as f:
                f.seek(off)
                self.assertEqual(f.read(size), raws[uid], 'UID %d in %s' % (uid, path))
        # damage two packs: one cut short, one with a bad trailer
        with open(packs[0], 'r+b') as f:
            f.truncate(os.path.getsize(packs[0]) - 1)
        with open(packs[1], 'r+b') as f:
            f.seek(-8, os.SEEK_END)
            f.write(b'XXXXXXXX')
        lost = [u for p, u, _o, _s in held if p in packs[:2]]
        m = self.mount(cfg, 'm2')
        self.assertFalse(os.path.exists(packs[0]))
        self.assertFalse(os.path.exists(packs[1]))
        fdir = os.path.join(m.path, folder)
        for u in sorted(uids):
            self.assertEqual(read(os.path.join(fdir, str(u), 'message.eml')), raws[u], u)
        self.assertEqual(stats(m.path)['bodies_fetched'], len(lost))

    def test_other_owner_refused(self):
        cache = os.path.join(self.tmp, 'foreign')
        os.makedirs(cache)
        os.chown(cache, 65534, 65534)
        cfg = self.config('c-foreign', cache_dir=cache)
        mnt = os.path.join(self.tmp, 'm-foreign')
        os.makedirs(mnt)
        res = subprocess.run([base.IMAPFS, '-o', 'config=' + cfg, mnt], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        err = res.stderr.decode()
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertRegex(err, r'^imapfs: cache directory .*foreign is owned by uid 65534')
        self.assertFalse(base.mounted(mnt))

    def test_bad_cache_keys(self):
        mnt = os.path.join(self.tmp, 'm-badkeys')
        os.makedirs(mnt, exist_ok=True)
        for kw, pattern in (({'cache_size': '12X'}, r'cache_size = .12X. is not a size'),
                            ({'cache': 'maybe'}, r'cache = .maybe.: use on or off'),
                            ({'readahead': '-1'}, r'readahead = .-1. is not a number')):
            cfg = self.config('c-bad', **kw)
            res = subprocess.run([base.IMAPFS, '-o', 'config=' + cfg, mnt],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            err = res.stderr.decode()
            self.assertNotEqual(res.returncode, 0)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertRegex(err, '^imapfs: .*' + pattern)
            self.assertFalse(base.mounted(mnt))

    def test_size_bound_lru(self):
        """The cache stays under cache_size, evicting least recently used first: after a walk
        that stored far more than the bound, the message loaded last is still there."""
        # A folder of its own, all messages well under the bound: a walk over the whole
        # account met the other tests' folders (a 50 MB message among them), whose reloads,
        # after the 32 MB memory cache had let them go, could come last and evict everything
        # (seen once in a fresh-clone CI run: the cache held nothing at unmount).  No
        # read-ahead: what the cache stores last is what this test loaded last.
        rnd = random.Random(14)
        uids = maildir_bulk(self.d, 'Lru', [text_message(i, 3000, rnd) for i in range(30)])
        cfg = self.config('c-small', cache_size='40K', readahead='0')
        m = self.mount(cfg, 'm')
        folder = os.path.join(m.path, 'Lru')
        for u in sorted(uids):
            for p in all_files(os.path.join(folder, str(u))):
                read(p)
        st = stats(m.path)
        self.assertEqual(st['bodies_fetched'], len(uids), st)
        self.assertLessEqual(st['disk_cache_bytes'], 40 * 1024)
        self.assertGreater(st['disk_cache_entries'], 0)
        on_disk = sum(os.path.getsize(os.path.join(dp, f))
                      for dp, _dn, fs in os.walk(os.path.join(self.tmp, 'cache-c-small'))
                      for f in fs if f not in ('lock', 'identity', 'format'))
        self.assertLessEqual(on_disk, 40 * 1024)
        # the message loaded last survived eviction: no fetch for it after a remount
        rel = os.path.join('Lru', str(max(uids)), 'message.eml')
        self.unmount(m)
        held = sorted((uid, size) for _path, uid, _off, size in cache_files(
            os.path.join(self.tmp, 'cache-c-small')))
        m = self.mount(cfg, 'm2')
        read(os.path.join(m.path, rel))
        self.assertEqual(stats(m.path)['bodies_fetched'], 0,
                         '%s not served from the cache; it held (uid, size) %s' % (rel, held))

    def test_cache_off(self):
        for kw in ({'cache': 'off'}, {'cache_size': '0'}):
            name = 'c-off-%s' % list(kw)[0]
            cfg = self.config(name, **kw)
            m = self.mount(cfg, 'm-' + name)
            for p in all_files(m.path):
                read(p)
            self.assertNotIn('disk_cache_entries', stats(m.path))
            self.unmount(m)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, 'cache-' + name)))

    def test_uidvalidity_change_discards_entries(self):
        cfg = self.config('c-uv')
        cache = os.path.join(self.tmp, 'cache-c-uv')
        self.d.create_folder('Again')
        self.d.append('Again', b'Subject: first\r\n\r\none\r\n')
        m = self.mount(cfg, 'm')
        self.assertEqual(read(os.path.join(m.path, 'Again', '1', 'subject')), b'first\n')
        folder_hash = hashlib.sha256(b'Again').hexdigest()[:32]
        old = os.listdir(os.path.join(cache, folder_hash))
        self.assertEqual(len(old), 1)
        self.unmount(m)
        self.d.recreate_folder('Again')
        self.d.append('Again', b'Subject: second\r\n\r\ntwo\r\n')
        m = self.mount(cfg, 'm2')
        self.assertEqual(read(os.path.join(m.path, 'Again', '1', 'subject')), b'second\n')
        now = os.listdir(os.path.join(cache, folder_hash))
        self.assertEqual(len(now), 1)
        self.assertNotEqual(now, old)


def big_message(rnd):
    text = ('Quarterly numbers attached.\r\n' * 20000).encode()  # ~560 KB of text
    att1 = rnd.randbytes(27 * 1024 * 1024 + 777)  # 37 MB of base64
    att2 = rnd.randbytes(9 * 1024 * 1024 + 5)     # 12 MB of base64

    def b64(data):
        e = base64.b64encode(data)
        return b'\r\n'.join(e[i:i + 76] for i in range(0, len(e), 76))

    raw = (b'From: big@example.com\r\nTo: you@example.com\r\nSubject: big one\r\n'
           b'Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n'
           b'Content-Type: multipart/mixed; boundary="BOUND"\r\n\r\n'
           b'--BOUND\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' + text +
           b'\r\n--BOUND\r\nContent-Type: application/octet-stream\r\n'
           b'Content-Disposition: attachment; filename="data.bin"\r\n'
           b'Content-Transfer-Encoding: base64\r\n\r\n' + b64(att1) +
           b'\r\n--BOUND\r\nContent-Type: application/pdf\r\n'
           b'Content-Transfer-Encoding: base64\r\n\r\n' + b64(att2) +
           b'\r\n--BOUND--\r\n')
    return raw, text, att1, att2


def sanitized():
    """An ASan build's RSS says nothing about ours (shadow memory, quarantine)."""
    with open(base.IMAPFS, 'rb') as f:
        return b'__asan_init' in f.read()


class MemoryBoundTest(PerfBase):
    """Daemon peak RSS (VmHWM) stays under 100 MB (not checked in a sanitizer build, where
    everything else still is)."""

    LIMIT_KIB = 100 * 1024

    def assertRssBound(self, hwm):
        if sanitized():
            print('(sanitizer build: RSS bound not checked)', file=sys.stderr)
            return
        self.assertLess(hwm, self.LIMIT_KIB)

    def test_single_50mb_message(self):
        rnd = random.Random(7)
        raw, text, att1, att2 = big_message(rnd)
        self.assertGreater(len(raw), 50 * 1000 * 1000)
        self.d.create_folder('Big')
        uid = self.d.append('Big', raw)
        cfg = self.config('c-big')
        m = self.mount(cfg, 'm', foreground=True)
        d = os.path.join(m.path, 'Big', str(uid))
        names = sorted(os.listdir(d))
        self.assertIn('attachments', names)
        self.assertEqual(sorted(os.listdir(os.path.join(d, 'attachments'))),
                         ['data.bin', 'part-2.pdf'])
        eml = read(os.path.join(d, 'message.eml'))
        self.assertEqual(hashlib.sha256(eml).digest(), hashlib.sha256(raw).digest())
        del eml
        self.assertEqual(os.stat(os.path.join(d, 'message.eml')).st_size, len(raw))
        got1 = read(os.path.join(d, 'attachments', 'data.bin'))
        self.assertEqual(hashlib.sha256(got1).digest(), hashlib.sha256(att1).digest())
        del got1
        got2 = read(os.path.join(d, 'attachments', 'part-2.pdf'))
        self.assertEqual(hashlib.sha256(got2).digest(), hashlib.sha256(att2).digest())
        del got2
        self.assertEqual(read(os.path.join(d, 'body')), text.replace(b'\r\n', b'\n'))
        for p in all_files(d):
            read(p)
        hwm = vm_hwm_kib(m.proc.pid)
        print('\n50 MB message: daemon VmHWM %d KiB' % hwm, file=sys.stderr)
        self.assertRssBound(hwm)

    def test_grep_5000_messages(self):
        rnd = random.Random(11)
        msgs = [text_message(i, 12400, rnd) for i in range(5000)]
        total = sum(len(m) for m in msgs)
        self.assertGreater(total, 60 * 1000 * 1000)
        maildir_bulk(self.d, 'Bulk', msgs)
        cfg = self.config('c-bulk')
        m = self.mount(cfg, 'm', foreground=True)
        t0 = time.monotonic()
        res = subprocess.run(['grep', '-rc', 'deadline', os.path.join(m.path, 'Bulk')],
                             stdout=subprocess.PIPE, check=True)
        cold = time.monotonic() - t0
        hits = res.stdout.decode().split()
        self.assertGreater(len(hits), 5000)
        hwm = vm_hwm_kib(m.proc.pid)
        st = stats(m.path)
        print('\ngrep -r over 5000 messages (%d MB): cold %.1f s, daemon VmHWM %d KiB, %s'
              % (total // 1000000, cold, hwm, st), file=sys.stderr)
        self.assertRssBound(hwm)
        self.assertEqual(st['bodies_fetched'], 5000, 'a message was fetched twice')


class ReadaheadTest(PerfBase):
    """Read-ahead of whole messages (message.eml walks; with `fetch = parts` the other files
    are made of pieces, read ahead as test_header_walk_reads_outlines_ahead shows)."""

    def test_header_walk_reads_outlines_ahead(self):
        """`cat */subject` (fetch = parts): the outlines (BODYSTRUCTURE and header) are read
        ahead (one pipelined UID FETCH per message: each asks its own size check), and no
        message is fetched whole."""
        rnd = random.Random(13)
        n = 120
        maildir_bulk(self.d, 'Heads', [text_message(i, 3000, rnd) for i in range(n)])
        cfg = self.config('c-heads', connections='4', readahead='32', fetch='parts')
        m = self.mount(cfg, 'm', foreground=True, debug=True)
        folder = os.path.join(m.path, 'Heads')
        for u in sorted(int(x) for x in os.listdir(folder)):
            self.assertEqual(read(os.path.join(folder, str(u), 'subject')),
                             b'message %d\n' % (u - 1))
        st = stats(m.path)
        cmds = commands(m.log_text())
        outlines = [c for c in cmds if re.match(
            r'UID FETCH \d+ \(UID BODYSTRUCTURE BODY\.PEEK\[HEADER\]', c)]
        self.assertEqual(len(outlines), n, 'each outline fetched once')
        self.assertEqual([c for c in cmds if 'BODY.PEEK[]' in c.replace('BODY.PEEK[]<', '')],
                         [], 'a message was fetched whole')
        self.assertEqual(st['bodies_fetched'], 0, st)
        self.assertGreater(st['pieces_read_ahead'], n // 2, st)

    def test_sequential_reader_gets_read_ahead(self):
        rnd = random.Random(3)
        n = 120
        maildir_bulk(self.d, 'Seq', [text_message(i, 3000, rnd) for i in range(n)])
        cfg = self.config('c-ra', connections='4', readahead='32')
        m = self.mount(cfg, 'm', foreground=True, debug=True)
        folder = os.path.join(m.path, 'Seq')
        uids = sorted(int(x) for x in os.listdir(folder))
        for u in uids:
            read(os.path.join(folder, str(u), 'message.eml'))
        st = stats(m.path)
        log = m.log_text()
        ranged = [c for c in commands(log)
                  if re.match(r'UID FETCH \d+[:,][\d:,]* \(UID BODY\.PEEK\[\]\)', c)]
        self.assertTrue(ranged, 'no ranged read-ahead FETCH in the trace')
        single = [c for c in commands(log) if re.match(r'UID FETCH \d+ \(UID BODY\.PEEK', c)]
        # the reader fetched the first few itself; read-ahead did (nearly) all the rest
        self.assertLess(len(single), n // 4, single)
        self.assertEqual(st['bodies_fetched'], n, 'single flight: no message fetched twice')

    def test_background_daemon_reads_ahead(self):
        """The daemonized (forked) mount has its read-ahead worker too."""
        rnd = random.Random(6)
        n = 60
        maildir_bulk(self.d, 'Seq3', [text_message(i, 2000, rnd) for i in range(n)])
        cfg = self.config('c-ra-bg', readahead='16')
        m = self.mount(cfg, 'm')
        folder = os.path.join(m.path, 'Seq3')
        for u in sorted(int(x) for x in os.listdir(folder)):
            read(os.path.join(folder, str(u), 'message.eml'))
        st = stats(m.path)
        self.assertGreater(st['readahead_stored'], n // 2, st)
        self.assertEqual(st['bodies_fetched'], n, st)

    def test_parse_ahead(self):
        """With the disk cache, a walk over messages already on disk finds them decoded
        (parsed by the parse-ahead thread, off the reader's path), with the right content."""
        rnd = random.Random(9)
        n = 200
        maildir_bulk(self.d, 'Seq5', [text_message(i, 2000, rnd) for i in range(n)])
        cfg = self.config('c-parse')

        def walk(m, name):
            folder = os.path.join(m.path, 'Seq5')
            for u in sorted(int(x) for x in os.listdir(folder)):
                got = read(os.path.join(folder, str(u), name))
                if name == 'subject':
                    self.assertEqual(got, b'message %d\n' % (u - 1))
            return stats(m.path)
        m = self.mount(cfg, 'm')
        self.assertEqual(walk(m, 'message.eml')['bodies_fetched'], n)
        self.unmount(m)
        m = self.mount(cfg, 'm2')
        st = walk(m, 'subject')
        print('\nparse-ahead over the disk cache: %s' % st, file=sys.stderr)
        self.assertEqual(st['bodies_fetched'], 0, st)
        self.assertGreater(st['parsed_ahead'], n // 2, st)

    def test_readahead_into_memory_without_disk_cache(self):
        rnd = random.Random(8)
        n = 60
        maildir_bulk(self.d, 'Seq4', [text_message(i, 2000, rnd) for i in range(n)])
        cfg = self.config('c-ra-mem', readahead='16', cache='off')
        m = self.mount(cfg, 'm')
        folder = os.path.join(m.path, 'Seq4')
        for u in sorted(int(x) for x in os.listdir(folder)):
            self.assertIn(b'\r\nSubject: message %d\r\n' % (u - 1),
                          read(os.path.join(folder, str(u), 'message.eml')))
        st = stats(m.path)
        self.assertNotIn('disk_cache_entries', st)
        self.assertGreater(st['readahead_stored'], n // 2, st)
        self.assertEqual(st['bodies_fetched'], n, st)

    def test_first_message_starts_a_short_read_ahead(self):
        """Reading a folder's first message starts a read-ahead at once (a walk usually
        starts there), but a short one: a reader that wanted only that message costs at most
        32 more; reading on tops it up to the window."""
        rnd = random.Random(12)
        n = 200
        maildir_bulk(self.d, 'First', [text_message(i, 2000, rnd) for i in range(n)])
        cfg = self.config('c-first', readahead='4096')
        m = self.mount(cfg, 'm')
        folder = os.path.join(m.path, 'First')
        uids = sorted(int(x) for x in os.listdir(folder))
        read(os.path.join(folder, str(uids[0]), 'message.eml'))
        deadline = time.monotonic() + 10
        while stats(m.path)['readahead_stored'] < 32:
            self.assertLess(time.monotonic(), deadline, stats(m.path))
            time.sleep(0.05)
        time.sleep(0.5)
        self.assertEqual(stats(m.path)['readahead_stored'], 32)
        for u in uids[1:]:
            read(os.path.join(folder, str(u), 'message.eml'))
        st = stats(m.path)
        self.assertGreater(st['readahead_stored'], n // 2, st)
        self.assertEqual(st['bodies_fetched'], n, st)

    def test_parallel_unordered_walker_gets_read_ahead(self):
        """Eight threads taking a folder's messages from one queue in listing order (how
        ripgrep's thread pool, fd and xargs -P walk): the loads reach the daemon out of order
        by a few places, and they get read-ahead as a sequential reader does (issue 20)."""
        rnd = random.Random(21)
        n = 240
        maildir_bulk(self.d, 'Par', [text_message(i, 3000, rnd) for i in range(n)])
        cfg = self.config('c-par', readahead='64')
        m = self.mount(cfg, 'm')
        folder = os.path.join(m.path, 'Par')
        uids = sorted(int(x) for x in os.listdir(folder))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda u: read(os.path.join(folder, str(u), 'message.eml')),
                                uids))
        self.assertTrue(all(b'Subject: message %d\r\n' % (u - 1) in g
                            for u, g in zip(uids, got)))
        st = stats(m.path)
        print('\n8 parallel readers over %d messages: %s' % (n, st), file=sys.stderr)
        self.assertGreater(st['readahead_stored'], n // 2, st)
        self.assertEqual(st['bodies_fetched'], n, 'single flight: no message fetched twice')

    def test_ripgrep_gets_read_ahead(self):
        """The real tool: a cold `rg -l` over a folder is served mostly by read-ahead."""
        rnd = random.Random(22)
        n = 240
        maildir_bulk(self.d, 'Rg', [text_message(i, 3000, rnd) for i in range(n)])
        cfg = self.config('c-rg', readahead='64')
        m = self.mount(cfg, 'm')
        folder = os.path.join(m.path, 'Rg')
        res = subprocess.run(['rg', '-l', '-j', '8', '--no-messages', 'message 1[0-9]',
                              folder], stdout=subprocess.PIPE)
        self.assertEqual(res.returncode, 0)
        self.assertIn(os.path.join(folder, '11', 'subject').encode(), res.stdout.split())
        st = stats(m.path)
        print('\nrg -l over %d messages: %s' % (n, st), file=sys.stderr)
        self.assertGreater(st['readahead_stored'], n // 2, st)
        self.assertEqual(st['bodies_fetched'], n, 'single flight: no message fetched twice')

    def test_readahead_connection_logged_in_at_mount(self):
        """The read-ahead's connection is logged in at mount, like the listing's and a
        reader's: a walk's first read-ahead must not wait for a connection, TLS handshake and
        LOGIN."""
        cfg = self.config('c-ra-login')
        m = self.mount(cfg, 'm', foreground=True, debug=True)
        time.sleep(0.3)
        logins = re.findall(r'imap: C: \S+ (?:AUTHENTICATE|LOGIN) ', m.log_text())
        # listing, one reader, read-ahead (connections = 4: the fourth opens on demand)
        self.assertEqual(len(logins), 3, m.log_text()[-2000:])

    def test_readahead_off(self):
        rnd = random.Random(4)
        n = 20
        maildir_bulk(self.d, 'Seq2', [text_message(i, 1000, rnd) for i in range(n)])
        cfg = self.config('c-ra-off', readahead='0')
        m = self.mount(cfg, 'm', foreground=True, debug=True)
        folder = os.path.join(m.path, 'Seq2')
        for u in sorted(int(x) for x in os.listdir(folder)):
            read(os.path.join(folder, str(u), 'subject'))
        ranged = [c for c in commands(m.log_text())
                  if re.match(r'UID FETCH \d+[:,]\S* \(UID BODY\.PEEK\[\]\)', c)]
        self.assertEqual(ranged, [])


class RelistTest(PerfBase):

    def assert_pipelined(self, log, cmds):
        """cmds (the text after the tag) were all sent before the server ended the first of
        them: one round trip."""
        lines = log.splitlines()
        sent = [i for i, ln in enumerate(lines) if re.search(r'imap: C: \S+ ', ln) and
                ln.split(' C: ', 1)[1].split(' ', 1)[1] in cmds]
        self.assertEqual(len(sent), len(cmds), cmds)
        tag = lines[sent[0]].split(' C: ', 1)[1].split(' ', 1)[0]
        done = [i for i, ln in enumerate(lines) if re.search(r'imap: S: %s (OK|NO|BAD)' %
                                                             re.escape(tag), ln)]
        self.assertTrue(done, 'no answer to %s in the trace' % tag)
        self.assertLess(sent[-1], done[0], 'a command waited for the answer to the first')

    def test_unchanged_folder_costs_one_round_trip(self):
        # watch = off: this counts what a refresh sends; the watcher (test_watch.py) would
        # re-list INBOX itself when the server reports the flag change.  Dovecot offers
        # QRESYNC: a re-listing is EXAMINE (QRESYNC ...) with UID FETCH <UIDNEXT>:* pipelined
        # (one round trip; test_offline.py's CondstoreOnly covers a server without QRESYNC).
        cfg = self.config('c-relist', refresh='1', watch='off')
        m = self.mount(cfg, 'm', foreground=True, debug=True)
        inbox = os.path.join(m.path, 'INBOX')
        before = set(os.listdir(inbox))
        time.sleep(1.3)
        n0 = len(commands(m.log_text()))
        self.assertEqual(set(os.listdir(inbox)), before)
        time.sleep(0.2)
        # LIST is the folder list's own refresh, not the listing's
        cmds = [c for c in commands(m.log_text())[n0:] if not c.startswith('LIST')]
        print('\nunchanged re-list of INBOX: %d command(s): %s' % (len(cmds), cmds),
              file=sys.stderr)
        self.assertEqual(len(cmds), 2, cmds)
        self.assertRegex(cmds[0], r'^EXAMINE \\?"INBOX\\?" \(QRESYNC \(\d+ \d+\)\)')
        self.assertRegex(cmds[1], r'^UID FETCH \d+:\* ')
        self.assert_pipelined(m.log_text(), cmds)

        # a flag change: reported inside the EXAMINE's answer; no SEARCH, no full FETCH, no
        # second round trip; the flags file follows
        uid = sorted(int(x) for x in before)[0]
        self.d.set_flags('INBOX', [uid], ['\\Flagged'])
        time.sleep(1.3)
        n0 = len(commands(m.log_text()))
        os.listdir(inbox)
        time.sleep(0.2)
        cmds = commands(m.log_text())[n0:]
        self.assertTrue(any('QRESYNC' in c for c in cmds), cmds)
        self.assertFalse(any('SEARCH' in c or 'FETCH 1:* ' in c for c in cmds), cmds)
        deadline = time.monotonic() + 5
        while '\\Flagged' not in read(os.path.join(inbox, str(uid), 'flags')).decode():
            self.assertLess(time.monotonic(), deadline, 'flags file never showed \\Flagged')
            time.sleep(0.2)

        # new mail: a fetch of the new UIDs only
        new = self.d.append('INBOX', b'Subject: newer\r\n\r\nx\r\n')
        time.sleep(1.3)
        n0 = len(commands(m.log_text()))
        self.assertIn(str(new), os.listdir(inbox))
        time.sleep(0.2)
        cmds = commands(m.log_text())[n0:]
        self.assertTrue(any(re.search(r'UID FETCH %d:\* ' % new, c) for c in cmds), cmds)
        self.assertFalse(any('SEARCH' in c for c in cmds), cmds)

        # an expunge: one SEARCH tells which UIDs are left
        self.d.expunge('INBOX', [new])
        time.sleep(1.3)
        deadline = time.monotonic() + 5
        while str(new) in os.listdir(inbox):
            self.assertLess(time.monotonic(), deadline, 'expunged mail never went away')
            time.sleep(0.3)


class KernelCacheTest(PerfBase):

    def test_warm_grep_sends_nothing_per_message(self):
        rnd = random.Random(5)
        n = 300
        maildir_bulk(self.d, 'Warm', [text_message(i, 2000, rnd) for i in range(n)])
        cfg = self.config('c-warm', refresh='600')
        m = self.mount(cfg, 'm')
        folder = os.path.join(m.path, 'Warm')
        grep = ['grep', '-rc', 'invoice', folder]
        subprocess.run(grep, stdout=subprocess.DEVNULL, check=True)
        passes = []
        for _ in range(2):
            s0 = stats(m.path)
            t0 = time.monotonic()
            subprocess.run(grep, stdout=subprocess.DEVNULL, check=True)
            dt = time.monotonic() - t0
            s1 = stats(m.path)
            passes.append((dt, {k: s1[k] - s0[k] for k in s1 if k.startswith('req')}))
        local = os.path.join(self.tmp, 'local-copy')
        shutil.copytree(folder, local)
        subprocess.run(['grep', '-rc', 'invoice', local], stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        subprocess.run(['grep', '-rc', 'invoice', local], stdout=subprocess.DEVNULL)
        local_dt = time.monotonic() - t0
        dt, reqs = passes[-1]
        print('\nwarm grep -r over %d messages (%d files): %.3f s (local disk %.3f s, %.1fx); '
              'FUSE requests per pass: %s' % (n, len(all_files(local)), dt, local_dt,
                                              dt / max(local_dt, 1e-6), reqs),
              file=sys.stderr)
        self.assertEqual(reqs['req_open'], 0, reqs)
        self.assertEqual(reqs['req_read'], 0, reqs)
        self.assertEqual(reqs['req_release'], 0, reqs)
        self.assertEqual(reqs['req_readdir'], 0, reqs)
        # no OPENDIR/RELEASEDIR either (answered ENOSYS once, ops.c ifs_init): a warm pass
        # costs a constant handful of requests (the stats getxattr itself), not one per
        # directory
        self.assertEqual(reqs['req_opendir'], 0, reqs)
        self.assertEqual(reqs['req_releasedir'], 0, reqs)
        self.assertLessEqual(reqs['requests'], 10, reqs)

    def test_cold_grep_requests_per_message(self):
        """A cold grep -r costs two FUSE requests per message directory: its READDIRPLUS and
        the READDIR that finds its end, which pushes the file the reader read in the previous
        message (`body`) into the kernel's page cache, so grep's read of it is no request at
        all (ops.c, push-ahead).  No LOOKUP: every READDIR of the folder is a READDIRPLUS (the
        kernel's "auto" mode would send a plain READDIR after the first page, and a LOOKUP
        per message directory later).  With fetch = parts body's size is known at the
        READDIRPLUS once the text parts are read ahead: the first messages of the walk, before
        the read-ahead (outline, MIME headers, text: three round trips) is ahead of grep, may
        cost a LOOKUP and a READ each."""
        rnd = random.Random(11)
        n = 300
        maildir_bulk(self.d, 'Cold', [text_message(i, 2000, rnd) for i in range(n)])
        for fetch in ('whole', 'parts'):
            cfg = self.config('c-cold-' + fetch, refresh='600', fetch=fetch)
            m = self.mount(cfg, 'm-' + fetch)
            folder = os.path.join(m.path, 'Cold')
            s0 = stats(m.path)
            out = subprocess.run(['grep', '-rl', '--include=body', 'invoice', folder],
                                 stdout=subprocess.PIPE, check=True).stdout.split()
            s1 = stats(m.path)
            reqs = {k: s1[k] - s0[k] for k in s1 if k.startswith('req')}
            print('\ncold grep -r over %d messages (%s): FUSE requests %s, pushed %d' %
                  (n, fetch, reqs, s1['pushed']), file=sys.stderr)
            self.assertEqual(len(out), n)  # every message has the word
            # whole: the first body is read, every later one pushed; parts: the first ones
            # before the read-ahead leads (each a LOOKUP and a READ more: 4 n without it)
            slack = 5 if fetch == 'whole' else n // 4
            self.assertLessEqual(reqs['req_lookup'], slack, (fetch, reqs))
            self.assertLessEqual(reqs['req_read'], slack, (fetch, reqs))
            self.assertGreaterEqual(s1['pushed'], n - slack, (fetch, s1))
            self.assertLessEqual(reqs['requests'], 2 * n + 4 * slack, (fetch, reqs))
            self.unmount(m)

    def test_push_ahead_serves_exact_bytes(self):
        """What is pushed is what a READ would have returned, file by file, whichever file the
        walk reads; a single-threaded mount (-s) never pushes (a push may wait for a READ
        only another worker can answer) and reads the same bytes; eight walks at once over the
        same folder (pushes racing READs of the same files) finish with the same results."""
        rnd = random.Random(13)
        n = 120
        # 500 B to 300 KB: most span several pages of the page cache (a store is per page)
        sizes = [rnd.choice([500, 3000, 9000, 70000, 300000]) for _ in range(n)]
        maildir_bulk(self.d, 'Push', [text_message(i, sz, rnd) for i, sz in enumerate(sizes)])

        def walk(m, name):
            folder = os.path.join(m.path, 'Push')
            got = {}
            for u in sorted(int(x) for x in os.listdir(folder)):
                d = os.path.join(folder, str(u))
                os.listdir(d)
                got[u] = read(os.path.join(d, name))
            return got

        ref = Mount(self.tmp, self.config('c-push-ref', cache='off'), name='m-push-ref',
                    extra=('-o', 'stats', '-s'))
        self.mounts.append(ref)
        # Pushes are of bytes held in memory when the kernel lists the message directory:
        # with fetch = whole every file once the message is here; with fetch = parts the
        # header files (the outline is fetched at the directory's lookup), and the others
        # only once their pieces are held (not on this cold walk).  Bytes are the same.
        for fetch in ('whole', 'parts'):
            cfg = self.config('c-push-' + fetch, fetch=fetch)
            for i, name in enumerate(('body', 'message.eml', 'subject')):
                # a fresh mount each time: the kernel lists a message directory once (it
                # keeps the listing), and the push happens at that listing; the first is
                # cold, the others read the disk cache
                m = self.mount(cfg, 'm-push-%s%d' % (fetch, i))
                want = walk(ref, name)
                got = walk(m, name)
                st = stats(m.path)
                self.assertEqual(len(want), n)
                for u in want:
                    self.assertEqual(got[u], want[u], '%s of UID %d (%s)' % (name, u, fetch))
                if fetch == 'whole' or name == 'subject':
                    # the walk's first read of `name` is a READ; after that, pushes
                    self.assertGreaterEqual(st['pushed'], n - 2, (fetch, name, st))
                    self.assertLessEqual(st['req_read'], 3, (fetch, name, st))
                self.unmount(m)
        self.assertEqual(stats(ref.path)['pushed'], 0)
        self.assertGreaterEqual(stats(ref.path)['req_read'], 3 * n)

        # eight concurrent greps on a fresh mount: pushes racing READs of the same files,
        # more walkers than pushes allowed at once (ops.c PUSH_MAX_AT_ONCE); none may hang
        m = self.mount(self.config('c-push2', cache='off'), 'm-push2')
        folder = os.path.join(m.path, 'Push')
        grep = ['timeout', '120', 'grep', '-rc', '--include=body', 'invoice', folder]
        procs = [subprocess.Popen(grep, stdout=subprocess.PIPE) for _ in range(8)]
        outs = [p.communicate()[0] for p in procs]
        self.assertEqual([p.returncode for p in procs], [0] * 8)
        for out in outs[1:]:
            self.assertEqual(sorted(out.split()), sorted(outs[0].split()))
        want = subprocess.run(grep, stdout=subprocess.PIPE, check=True).stdout
        self.assertEqual(sorted(outs[0].split()), sorted(want.split()))

    def test_no_stats_no_getxattr(self):
        """Without -o stats the kernel is told once that there are no xattrs: ls -l costs
        no GETXATTR per file."""
        cfg = self.config('c-nostats')
        m = Mount(self.tmp, cfg, name='m-nostats')
        self.mounts.append(m)
        with self.assertRaises(OSError):
            os.getxattr(m.path, STATS)
        subprocess.run(['ls', '-lR', m.path], stdout=subprocess.DEVNULL, check=True)


if __name__ == '__main__':
    unittest.main(verbosity=2)
