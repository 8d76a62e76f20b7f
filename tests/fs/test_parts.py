#!/usr/bin/python3
"""Partial fetches (issue 20) against their oracle, the whole-message path: one Dovecot seeded
with every test message imapfs has (tests/mime/messages, the malformed corpus, sample mail, and
a few built here: big base64 and quoted-printable attachments, a forwarded message, an HTML
alternative), mounted twice — `fetch = whole` and `fetch = parts` — and the two trees must be
the same: the same names, the same st_size for every file, the same bytes.  The parts mount is
walked in the orders that exercise its different paths: every size before any byte (a cold
`find -printf %s`), then every byte; again after a remount (from the disk cache alone: nothing
fetched); and without a disk cache (memory only).

Then what each everyday task costs on the wire, from the daemon's own counters
(user.imapfs.stats with -o stats): `cat */subject` fetches no whole message and no more bytes
of pieces than the header blocks hold (plus their outlines); listing attachment names and
reading one attachment fetch no whole message either; reading message.eml fetches it whole.

Environment (tests/fs/meson.build): IMAPFS_BIN, IMAPFS_HARNESS_DIR, MIME_TEST_DATA.
Fails (never skips) without FUSE or Dovecot; every mount is removed in teardown.
"""

import base64
import glob
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_imapfs import Mount, dovecot, read, require_environment, write_config  # noqa: E402
import sample_mail  # noqa: E402

MIME_DATA = os.environ.get('MIME_TEST_DATA', os.path.join(HERE, '..', 'mime'))
FOLDER = 'Corpus'
STATS = 'user.imapfs.stats'


def stats(mnt):
    text = os.getxattr(mnt, STATS).decode()
    return {k: int(v) for k, v in (f.split('=', 1) for f in text.split()) if v.isdigit()}


def crlf(raw):
    return raw.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')


def built_messages():
    """Messages that make the partial path take each of its ways."""
    big = bytes((i * 7 + (i >> 9)) % 256 for i in range(700 * 1024))
    b64 = base64.encodebytes(big).replace(b'\n', b'\r\n')
    qp_text = ('caf\u00e9 ' * 20000).encode('utf-8')
    qp = b''.join(b'caf=C3=A9 ' if i % 8 else b'caf=C3=A9=\r\n' for i in range(20000))
    out = []
    out.append(b'From: a@example.com\r\nTo: b@example.com\r\nSubject: big attachment\r\n'
               b'Message-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n'
               b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
               b'--XX\r\nContent-Type: multipart/alternative; boundary="YY"\r\n\r\n'
               b'--YY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain text body\r\n'
               b'--YY\r\nContent-Type: text/html; charset=utf-8\r\n\r\n'
               b'<html><body><p>html body</p></body></html>\r\n--YY--\r\n'
               b'--XX\r\nContent-Type: application/octet-stream; name="data.bin"\r\n'
               b'Content-Disposition: attachment; filename="data.bin"\r\n'
               b'Content-Transfer-Encoding: base64\r\n\r\n' + b64 +
               b'--XX\r\nContent-Type: text/plain; charset=utf-8; name="notes.txt"\r\n'
               b'Content-Disposition: attachment; filename="notes.txt"\r\n'
               b'Content-Transfer-Encoding: quoted-printable\r\n\r\n' + qp +
               b'\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n'
               b'From: c@example.com\r\nSubject: inner\r\nMIME-Version: 1.0\r\n'
               b'Content-Type: multipart/mixed; boundary="ZZ"\r\n\r\n'
               b'--ZZ\r\nContent-Type: text/plain\r\n\r\ninner text\r\n'
               b'--ZZ\r\nContent-Type: image/png; name="i.png"\r\n'
               b'Content-Transfer-Encoding: base64\r\n\r\n' +
               base64.encodebytes(sample_mail.tiny_png()).replace(b'\n', b'\r\n') +
               b'--ZZ--\r\n\r\n--XX--\r\n')
    assert qp_text  # the decoded form the oracle shows (checked through the whole mount)
    out.append(b'From: =?UTF-8?B?w4lsb2TDqWU=?= <e@example.com>\r\nTo: f@example.com\r\n'
               b'Subject: =?ISO-8859-1?Q?caf=E9?=\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n'
               b'MIME-Version: 1.0\r\nContent-Type: text/html; charset=iso-8859-1\r\n'
               b'Content-Transfer-Encoding: quoted-printable\r\n\r\n'
               b'<p>caf=E9 au lait</p>\r\n')
    out.append(b'From: g@example.com\r\nSubject: plain only\r\n\r\njust text\r\n')
    return out


def tree(root):
    """relpath -> ('d', None) | ('f', size, bytes) of everything under root, sizes taken with
    lstat before the bytes are read (the order a cold find then cat takes)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        out[rel] = ('d', None)
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out[os.path.join(rel, name)] = ['f', st.st_size, None]
    # message.eml last: once a whole message is here every view derives from it, and the
    # pieces would not be exercised
    for rel, v in sorted(out.items(), key=lambda kv: kv[0].endswith('/message.eml')):
        if v[0] == 'f':
            with open(os.path.join(root, rel), 'rb') as f:
                v[2] = f.read()
            out[rel] = tuple(v)
    return out


def tree_bytes_first(root):
    """The same, every file read before any size is asked (cat */body, then ls -l)."""
    out = {}
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out[os.path.relpath(dirpath, root)] = ('d', None)
        files += [os.path.join(dirpath, n) for n in sorted(filenames)]
    files.sort(key=lambda p: p.endswith('/message.eml'))
    data = {}
    for p in files:
        with open(p, 'rb') as f:
            data[p] = f.read()
    for p in files:
        out[os.path.relpath(p, root)] = ('f', os.lstat(p).st_size, data[p])
    return out


def seed_sizes(d):
    """Folder Sizes: four messages with a random base64 attachment each (Dovecot's
    BINARY.SIZE is right for these).  Returns the attachments' bytes, by UID - 1."""
    rnd = random.Random(5)
    d.create_folder('Sizes')
    datas = []
    for i in range(4):
        data = bytes(rnd.getrandbits(8) for _ in range(200000 + 7 * i))
        datas.append(data)
        d.append('Sizes', crlf(
            b'From: a@example.com\r\nSubject: sizes %d\r\nMIME-Version: 1.0\r\n'
            b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
            b'--B\r\nContent-Type: text/plain\r\n\r\ntext\r\n'
            b'--B\r\nContent-Type: application/octet-stream; name="d%d.bin"\r\n'
            b'Content-Transfer-Encoding: base64\r\n\r\n' % (i, i) +
            base64.encodebytes(data) + b'--B--\r\n'))
    return datas


class PartsOracleTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.tmp = tempfile.mkdtemp(prefix='ifs', dir='/tmp')
        cls.d = dovecot.Dovecot()
        cls.mounts = []
        try:
            cls.d.start()
            sample_mail.seed(cls.d)
            cls.d.create_folder(FOLDER)
            cls.raw = []
            paths = sorted(glob.glob(os.path.join(MIME_DATA, 'messages', '*.eml')) +
                           glob.glob(os.path.join(MIME_DATA, 'malformed', 'messages', '*.eml')))
            if len(paths) < 40:
                raise AssertionError('the mime test corpus is missing under %s' % MIME_DATA)
            for p in paths:
                with open(p, 'rb') as f:
                    raw = f.read()
                cls.raw.append(raw)
                cls.d.append(FOLDER, raw)
                if b'\r\n' not in raw:
                    cls.raw.append(crlf(raw))
                    cls.d.append(FOLDER, crlf(raw))
            for raw in built_messages():
                cls.raw.append(raw)
                cls.d.append(FOLDER, raw)
            cls.size_datas = seed_sizes(cls.d)
            cls.whole_cfg = write_config(os.path.join(cls.tmp, 'whole'), cls.d, fetch='whole')
            # whole_below = 0: every message by its pieces, small ones too (the default reads
            # a message of at most 32K whole beyond its outline: test_parts_default)
            cls.parts_cfg = write_config(os.path.join(cls.tmp, 'parts'), cls.d, fetch='parts',
                                         whole_below='0')
            cls.whole = cls.mount(cls.whole_cfg, 'mw')
            cls.oracle = tree(cls.whole.path)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def mount(cls, cfg, name, extra=()):
        m = Mount(cls.tmp, cfg, name=name, extra=['-o', 'stats'] + list(extra))
        cls.mounts.append(m)
        return m

    def mount_for_test(self, cfg, name, extra=()):
        """A mount of this test's own, unmounted when it ends even on failure (a mount left
        behind would hold connections Dovecot counts against mail_max_userip_connections)."""
        m = self.mount(cfg, name, extra)
        self.addCleanup(m.close)
        return m

    @classmethod
    def tearDownClass(cls):
        try:
            for m in getattr(cls, 'mounts', []):
                m.close()
        finally:
            try:
                cls.d.stop()
            finally:
                shutil.rmtree(cls.tmp, ignore_errors=True)

    def assertSameTree(self, got):
        self.assertEqual(sorted(got), sorted(self.oracle), 'the names differ')
        bad = []
        for rel, v in self.oracle.items():
            if got[rel] != v:
                g = got[rel]
                bad.append('%s: size %s/%s, bytes %s' % (
                    rel, g[1], v[1], 'equal' if g[2] == v[2] else 'differ'))
        self.assertEqual(bad, [], 'files differ from the whole-message path')

    def test_oracle_is_the_corpus(self):
        # the whole path itself shows every message byte for byte (so it can be the oracle)
        emls = sorted(v[2] for k, v in self.oracle.items()
                      if k.startswith(FOLDER + '/') and k.endswith('/message.eml'))
        self.assertEqual(emls, sorted(crlf(r) for r in self.raw))
        n_att = sum(1 for k in self.oracle if '/attachments/' in k)
        self.assertGreater(n_att, 20)

    def test_parts_cold_then_remount(self):
        m = self.mount_for_test(self.parts_cfg, 'mp')
        self.assertSameTree(tree(m.path))
        s = stats(m.path)
        self.assertGreater(s['pieces_fetched'], 0, s)
        m.close()
        # the same tree from the disk cache alone
        m = self.mount_for_test(self.parts_cfg, 'mp2')
        self.assertSameTree(tree_bytes_first(m.path))
        s = stats(m.path)
        self.assertEqual((s['bodies_fetched'], s['pieces_fetched']), (0, 0), s)
        m.close()

    def test_parts_default_small_messages_whole(self):
        # the default whole_below: small messages are read whole beyond their outline, the
        # larger ones by pieces; the same tree, and both kinds of fetch happened
        cfg = write_config(os.path.join(self.tmp, 'parts-default'), self.d, fetch='parts')
        m = self.mount_for_test(cfg, 'md')
        folder = os.path.join(m.path, FOLDER)
        bodies = subprocess.run('cat */body', shell=True, cwd=folder, check=True,
                                stdout=subprocess.PIPE).stdout
        s = stats(m.path)
        self.assertEqual(bodies, b''.join(self.oracle[os.path.join(FOLDER, u, 'body')][2]
                                          for u in sorted(os.listdir(folder))))
        small = [r for r in map(crlf, self.raw) if len(r) <= 32768]
        # every small message whole (plus those found to be read whole), the rest by pieces
        self.assertEqual(s['bodies_fetched'] - s['read_whole'], len(small), s)
        self.assertGreater(s['pieces_fetched'], 0, s)
        self.assertSameTree(tree(m.path))
        m.close()

    def test_parts_memory_only_bytes_first(self):
        cfg = write_config(os.path.join(self.tmp, 'parts-mem'), self.d, fetch='parts',
                           cache='off', whole_below='0')
        m = self.mount_for_test(cfg, 'mm')
        self.assertSameTree(tree_bytes_first(m.path))
        m.close()

    def test_what_tasks_fetch(self):
        cfg = write_config(os.path.join(self.tmp, 'parts-cost'), self.d, fetch='parts',
                           cache='off', readahead='0')
        m = self.mount_for_test(cfg, 'mc')
        folder = os.path.join(m.path, FOLDER)
        uids = sorted(os.listdir(folder))  # the shell's glob order
        headers = sum(len(r.split(b'\r\n\r\n', 1)[0]) + 4 for r in map(crlf, self.raw))
        before = stats(m.path)
        subjects = subprocess.run('cat */subject', shell=True, cwd=folder, check=True,
                                  stdout=subprocess.PIPE).stdout
        after = stats(m.path)
        expect = b''.join(self.oracle[os.path.join(FOLDER, u, 'subject')][2] for u in uids)
        self.assertEqual(subjects, expect)
        # header blocks and outlines only (the outline's size check is 1 byte a message);
        # the few tiny messages whose header files need their parts' headers too are read
        # whole (whole_below), and cost no more than that
        moved = (after['piece_bytes_fetched'] - before['piece_bytes_fetched'] +
                 after['body_bytes_fetched'] - before['body_bytes_fetched'])
        self.assertLess(moved, headers + 64 * len(uids), after)
        big = [u for u in uids if self.oracle[os.path.join(FOLDER, u, 'subject')][2] ==
               b'big attachment\n'][0]
        before = stats(m.path)
        names = sorted(os.listdir(os.path.join(folder, big, 'attachments')))
        with open(os.path.join(folder, big, 'attachments', 'data.bin'), 'rb') as f:
            data = f.read()
        after = stats(m.path)
        self.assertEqual(names, sorted(os.path.basename(k) for k in self.oracle
                                       if k.startswith(os.path.join(FOLDER, big, 'attachments/'))))
        self.assertEqual(data, self.oracle[os.path.join(FOLDER, big, 'attachments',
                                                        'data.bin')][2])
        self.assertEqual(after['bodies_fetched'], before['bodies_fetched'], after)
        # BINARY: the decoded bytes, not the base64 (4/3 as many)
        self.assertLess(after['piece_bytes_fetched'] - before['piece_bytes_fetched'],
                        len(data) * 1.1 + 65536, after)
        # message.eml is the whole message
        with open(os.path.join(folder, big, 'message.eml'), 'rb') as f:
            self.assertEqual(f.read(), self.oracle[os.path.join(FOLDER, big, 'message.eml')][2])
        self.assertEqual(stats(m.path)['bodies_fetched'], after['bodies_fetched'] + 1)
        m.close()

    def test_attachment_sizes_from_checked_binary_size(self):
        """find -printf %s over attachments (BINARY offered): each size is BINARY.SIZE checked
        with a 2-byte BINARY fetch, no attachment byte moves; the sizes are the bytes a read
        gives.  (A wrong BINARY.SIZE, as Dovecot gives for data.bin, falls back to the bytes:
        test_parts_cold_then_remount holds its st_size to the whole path's.)"""
        datas = self.size_datas
        cfg = write_config(os.path.join(self.tmp, 'parts-sizes'), self.d, fetch='parts',
                           readahead='0')
        m = Mount(self.tmp, cfg, name='msz', extra=['-o', 'stats'], foreground=True,
                  debug=True)
        self.addCleanup(m.close)
        folder = os.path.join(m.path, 'Sizes')
        before = stats(m.path)
        out = subprocess.run(['find', folder, '-path', '*/attachments/*', '-printf', '%f %s\n'],
                             check=True, stdout=subprocess.PIPE).stdout.decode().split('\n')
        after = stats(m.path)
        self.assertEqual(sorted(x for x in out if x),
                         ['d%d.bin %d' % (i, len(d)) for i, d in enumerate(datas)])
        moved = after['piece_bytes_fetched'] - before['piece_bytes_fetched']
        self.assertLess(moved, 16384, after)
        self.assertEqual(after['bodies_fetched'], before['bodies_fetched'], after)
        checks = re.findall(r'C: \S+ (UID FETCH \d+ \(UID BINARY\.PEEK\[2\]<\d+\.2>\))',
                            m.log_text())
        self.assertEqual(len(checks), len(datas), checks)
        for i, d in enumerate(datas):
            p = os.path.join(folder, str(i + 1), 'attachments', 'd%d.bin' % i)
            self.assertEqual((os.stat(p).st_size, read(p)), (len(d), d))
        m.close()


if __name__ == '__main__':
    unittest.main(verbosity=2)
