#!/usr/bin/python3
"""Integration tests of search directories (`FOLDER/.search/...`, `MOUNT/.search/...`), with a
real Dovecot as the oracle: for every key and for combinations, the UIDs a search directory
lists must equal what `UID SEARCH` with the same criteria returns when asked directly.

Environment as test_imapfs.py (IMAPFS_BIN, IMAPFS_HARNESS_DIR).  Fails, never skips, without
/dev/fuse or Dovecot; every mount is removed in teardown.  Python stdlib only.
"""

import datetime
import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_imapfs as ti  # noqa: E402
from test_imapfs import dovecot, sample_mail  # noqa: E402

UTC = datetime.timezone.utc


def tz(hours, minutes=0):
    return datetime.timezone(datetime.timedelta(hours=hours, minutes=minutes))


def msg(subject, frm='Carol <carol@example.test>', body='hello', extra=''):
    return ('From: %s\r\nTo: Alice Kim <alice@example.test>\r\nSubject: %s\r\n%s'
            'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n'
            '\r\n%s\r\n' % (frm, subject, extra, body)).encode('utf-8')


class SearchTest(unittest.TestCase):
    """One seeded Dovecot, a foreground mount whose log the tests read."""

    @classmethod
    def setUpClass(cls):
        ti.require_environment()
        cls.tmp = tempfile.mkdtemp(prefix='ifs-search', dir='/tmp')
        cls.d = dovecot.Dovecot()
        cls.d.start()
        cls.m = None
        try:
            cls.seeded = sample_mail.seed(cls.d)
            d = cls.d
            # numeric child folder, and folders whose names look like criteria or .search
            d.create_folder('Archive/1')
            d.append('Archive/1', msg('numeric folder hit', body='zebra in a numeric folder'))
            d.create_folder('seen')
            d.append('seen', msg('criterion-like folder', body='zebra in folder seen'))
            d.create_folder('.search')
            d.append('.search', msg('a folder named .search', body='zebra in .search'))
            # day boundaries across time zones (INTERNALDATE as APPENDed)
            d.create_folder('Dates')
            cls.dates = [
                datetime.datetime(2025, 2, 1, 23, 59, 59, tzinfo=UTC),
                datetime.datetime(2025, 2, 2, 0, 0, 0, tzinfo=UTC),
                datetime.datetime(2025, 2, 1, 23, 30, 0, tzinfo=tz(-5)),   # 2 Feb UTC
                datetime.datetime(2025, 2, 2, 0, 30, 0, tzinfo=tz(9)),     # 1 Feb UTC
                datetime.datetime(2025, 2, 2, 23, 59, 0, tzinfo=tz(14)),
                datetime.datetime(2025, 2, 3, 0, 0, 1, tzinfo=tz(-12)),
            ]
            for i, when in enumerate(cls.dates):
                d.append('Dates', msg('date %d' % i, body='day boundary %d' % i), date=when)
            # keywords, sizes, Korean text
            cls.kw_uid = d.append('INBOX', msg('keyword carrier', body='x'))
            d.set_flags('INBOX', [cls.kw_uid], ['$Project1'])
            cls.big_uid = d.append('INBOX', msg('big one', body='y' * 5000))
            cls.ko_uid = d.append('INBOX', msg('주간 보고서', frm='김철수 <kim@example.test>',
                                              body='이번 주 예산 회의 결과입니다.'))
            cls.folders = [n for n, f, _ in d.list_folders() if '\\Noselect' not in f]
            cls.cfg = ti.write_config(os.path.join(cls.tmp, 'config'), d, refresh='2')
            cls.m = ti.Mount(cls.tmp, cls.cfg, foreground=True, extra=['-o', 'stats'])
            cls.mnt = cls.m.path
        except BaseException:
            cls.tearDownClass()
            raise

    tearDownClass = classmethod(ti.MountTest.tearDownClass.__func__)

    # -- helpers ---------------------------------------------------------------

    def oracle(self, folder, *criteria, literal=None):
        """UID SEARCH asked directly; literal: a UTF-8 value sent last (CHARSET UTF-8)."""
        def fn(c):
            self.d._examine(c, folder)
            try:
                if literal is not None:
                    c.literal = literal.encode('utf-8')
                    res = c.uid('SEARCH', 'CHARSET', 'UTF-8', *criteria)
                else:
                    res = c.uid('SEARCH', *criteria)
                data = self.d._check(res, 'UID SEARCH')
            finally:
                self.d._unselect(c)
            return sorted(int(x) for x in b' '.join(x for x in data if x).split())
        return self.d._call(fn)

    def listed(self, *parts):
        names = os.listdir(os.path.join(self.mnt, *parts))
        self.assertTrue(all(n.isdigit() for n in names), names)
        return sorted(int(n) for n in names)

    def stats(self):
        # os.getxattr, not getfattr(1): the attr package is not on a fresh machine
        out = os.getxattr(self.mnt, 'user.imapfs.stats').decode()
        return {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', out)}

    def assert_enoent(self, *parts):
        with self.assertRaises(OSError) as cm:
            os.listdir(os.path.join(self.mnt, *parts))
        self.assertEqual(cm.exception.errno, errno.ENOENT, parts)

    # -- every key against the oracle -------------------------------------------

    def test_keys_match_server(self):
        today = datetime.date.today()
        rel = lambda days: (today - datetime.timedelta(days=days)).strftime('%d-%b-%Y')  # noqa
        cases = [
            (['from=bob'], ['FROM', 'bob']),
            (['FROM=Bob'], ['FROM', 'Bob']),
            (['to=alice'], ['TO', 'alice']),
            (['cc=carol'], ['CC', 'carol']),
            (['bcc=nobody'], ['BCC', 'nobody']),
            (['subject=invoice'], ['SUBJECT', 'invoice']),
            (['body=budget'], ['BODY', 'budget']),
            (['text=budget'], ['TEXT', 'budget']),
            (['header=Content-Type:csv'], ['HEADER', 'Content-Type', 'csv']),
            (['since=2025-01-10'], ['SINCE', '10-Jan-2025']),
            (['before=10-Jan-2025'], ['BEFORE', '10-Jan-2025']),
            (['on=2025-01-13'], ['ON', '13-Jan-2025']),
            (['since=7d'], ['SINCE', rel(7)]),
            (['since=2w'], ['SINCE', rel(14)]),
            (['larger=1K'], ['LARGER', '1024']),
            (['smaller=500'], ['SMALLER', '500']),
            (['seen'], ['SEEN']), (['unseen'], ['UNSEEN']),
            (['flagged'], ['FLAGGED']), (['unflagged'], ['UNFLAGGED']),
            (['answered'], ['ANSWERED']), (['unanswered'], ['UNANSWERED']),
            (['draft'], ['DRAFT']), (['UNSEEN'], ['UNSEEN']),
            (['keyword=$Project1'], ['KEYWORD', '$Project1']),
            (['from=bob', 'since=2025-01-10'], ['FROM', 'bob', 'SINCE', '10-Jan-2025']),
            (['from=bob', 'unseen', 'larger=300'], ['FROM', 'bob', 'UNSEEN', 'LARGER', '300']),
            (['imap=OR FROM bob SUBJECT invoice'], ['OR', 'FROM', 'bob', 'SUBJECT', 'invoice']),
            (['imap=NOT SEEN'], ['NOT', 'SEEN']),
            (['imap=(OR SEEN FLAGGED) SINCE 1-Jan-2025'],
             ['(OR', 'SEEN', 'FLAGGED)', 'SINCE', '1-Jan-2025']),
            (['imap=OR (FROM bob UNSEEN) (SUBJECT "Team offsite")'],
             ['OR', '(FROM', 'bob', 'UNSEEN)', '(SUBJECT', '"Team offsite")']),
            (['unseen', 'imap=NOT FROM bob'], ['UNSEEN', 'NOT', 'FROM', 'bob']),
        ]
        nonempty = 0
        for comps, crit in cases:
            with self.subTest(comps=comps):
                want = self.oracle('INBOX', *crit)
                self.assertEqual(self.listed('INBOX', '.search', *comps), want)
                nonempty += bool(want)
        # the comparison means something only if most searches find mail
        self.assertGreater(nonempty, len(cases) // 2)
        # every level is a result of its own
        self.assertEqual(self.listed('INBOX', '.search', 'from=bob'),
                         self.oracle('INBOX', 'FROM', 'bob'))

    def test_korean(self):
        for comps, key, value in [(['subject=회의'], 'SUBJECT', '회의'),
                                  (['subject=주간'], 'SUBJECT', '주간'),
                                  (['body=예산'], 'BODY', '예산'),
                                  (['from=김철수'], 'FROM', '김철수'),
                                  (['text=회의'], 'TEXT', '회의')]:
            with self.subTest(comps=comps):
                want = self.oracle('INBOX', key, literal=value)
                self.assertTrue(want, comps)
                self.assertEqual(self.listed('INBOX', '.search', *comps), want)
        self.assertIn(self.ko_uid, self.listed('INBOX', '.search', 'body=예산'))
        # Korean folder name, and a combination
        want = self.oracle('받은편지함', 'ALL')
        self.assertEqual(self.listed('받은편지함', '.search', 'since=2000-01-01'), want)

    def test_dates_at_day_boundaries_and_zones(self):
        for key in ('on', 'since', 'before'):
            for day in ('2025-02-01', '2025-02-02', '2025-02-03'):
                imap_day = datetime.date.fromisoformat(day).strftime('%-d-%b-%Y')
                with self.subTest(key=key, day=day):
                    want = self.oracle('Dates', key.upper(), imap_day)
                    self.assertEqual(self.listed('Dates', '.search', '%s=%s' % (key, day)),
                                     want)
                    self.assertEqual(self.listed('Dates', '.search',
                                                 '%s=%s' % (key, imap_day)), want)
        # not everything lands on one side of a boundary
        self.assertNotIn(len(self.oracle('Dates', 'ON', '1-Feb-2025')), (0, len(self.dates)))

    def test_mount_wide_search(self):
        hits = {}
        for f in self.folders:
            u = self.oracle(f, 'BODY', 'zebra')
            if u:
                hits[f] = u
        self.assertEqual(set(hits), {'Archive/1', 'seen', '.search'})
        root = os.path.join(self.mnt, '.search', 'body=zebra')
        self.assertEqual(sorted(os.listdir(root)), sorted(['Archive', '=seen', '.search.d']))
        self.assertEqual(os.listdir(os.path.join(root, 'Archive')), ['1.d'])
        self.assertEqual(self.listed(root, 'Archive', '1.d'), hits['Archive/1'])
        self.assertEqual(self.listed(root, '=seen'), hits['seen'])
        self.assertEqual(self.listed(root, '.search.d'), hits['.search'])
        # every folder and hit of a broader search, including 받은편지함 and Archive/2024.d
        want = {}
        for f in self.folders:
            u = self.oracle(f, 'SINCE', '1-Jan-2000')
            if u:
                path = ti.os.path.join(*[('=' + p if i == 0 and p == 'seen' else p)
                                         for i, p in enumerate(f.split('/'))])
                path = path.replace('Archive/2024', 'Archive/2024.d').replace(
                    'Archive/1', 'Archive/1.d')
                if path == '.search':
                    path = '.search.d'
                want[path] = u
        got = {}
        base = os.path.join(self.mnt, '.search', 'since=2000-01-01')
        for dirpath, dirnames, filenames in os.walk(base):
            uids = sorted(int(n) for n in dirnames if n.isdigit())
            dirnames[:] = [n for n in dirnames if not n.isdigit()]
            if uids:
                got[os.path.relpath(dirpath, base)] = uids
        self.assertEqual(got, want)
        self.assertIn('받은편지함', got)
        # criteria AND on the mount-wide level too
        self.assertEqual(sorted(os.listdir(os.path.join(root, 'subject=numeric'))), ['Archive'])

    def test_not_listed_and_not_walked(self):
        self.assertNotIn('.search', os.listdir(self.mnt))
        self.assertNotIn('.search', os.listdir(os.path.join(self.mnt, 'INBOX')))
        ls = subprocess.run(['ls', '-a', os.path.join(self.mnt, 'INBOX')], capture_output=True,
                            text=True, check=True).stdout.split()
        self.assertNotIn('.search', ls)
        self.assertTrue(os.path.isdir(os.path.join(self.mnt, 'INBOX', '.search')))
        before = self.stats()['searches']
        found = subprocess.run(['find', self.mnt, '-maxdepth', '3'], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        self.assertFalse([p for p in found if '/.search' in p and not p.endswith('.search.d')
                          and '/.search.d' not in p], found[:20])
        grep = subprocess.run(['grep', '-rl', 'zebra', self.mnt], capture_output=True,
                              text=True)
        self.assertFalse([p for p in grep.stdout.splitlines() if '/.search/' in p])
        self.assertEqual(self.stats()['searches'], before)

    def test_same_files_fetched_once(self):
        uid = self.d.append('INBOX', msg('fetched once', body='unique-walrus'))
        time.sleep(2.1)  # refresh = 2: the new message is past any cached result
        via_search = os.path.join(self.mnt, 'INBOX', '.search', 'body=unique-walrus')
        self.assertEqual(self.listed(via_search), [uid])
        s0 = self.stats()
        # listing and stat of the result fetch no body
        for name in os.listdir(via_search):
            os.stat(os.path.join(via_search, name))
        self.assertEqual(self.stats()['bodies_fetched'], s0['bodies_fetched'])
        names = sorted(os.listdir(os.path.join(via_search, str(uid))))
        self.assertEqual(names, sorted(os.listdir(os.path.join(self.mnt, 'INBOX', str(uid)))))
        for name in names:
            if name == 'attachments':
                continue
            a = ti.read(os.path.join(via_search, str(uid), name))
            b = ti.read(os.path.join(self.mnt, 'INBOX', str(uid), name))
            self.assertEqual(a, b, name)
            sa = os.stat(os.path.join(via_search, str(uid), name))
            sb = os.stat(os.path.join(self.mnt, 'INBOX', str(uid), name))
            self.assertEqual((sa.st_size, sa.st_mtime, sa.st_mode),
                             (sb.st_size, sb.st_mtime, sb.st_mode), name)
        self.assertEqual(ti.read(os.path.join(via_search, str(uid), 'message.eml')),
                         self.d.fetch_raw('INBOX', uid))
        self.assertEqual(self.stats()['bodies_fetched'], s0['bodies_fetched'] + 1)

    def test_bad_criteria_are_enoent_with_a_log_line(self):
        for comp, words in [('foo=bar', 'unknown search key'),
                            ('since=2025-02-30', 'bad date'),
                            ('larger=12Q', 'bad size'),
                            ('imap=FROM', 'bad IMAP search expression'),
                            ('imap=1:5', 'sequence numbers'),
                            ('gmail=has:attachment', 'X-GM-EXT-1'),
                            ('unsen', 'did you mean unseen?'),
                            ('subject', 'subject needs a value')]:
            with self.subTest(comp=comp):
                self.assert_enoent('INBOX', '.search', comp)
                self.assertIn(words, self.m.log_text())
        # a name nobody could have meant as a criterion is not found quietly (mkdir's lookup)
        self.assert_enoent('INBOX', '.search', 'nonsense')
        self.assertNotIn('nonsense', self.m.log_text())
        self.assert_enoent('Lists', '.search')  # \Noselect: nothing to search
        self.assert_enoent('INBOX', '.search', '42')

    def test_hostile_values_never_change_the_command(self):
        before = {f: self.d.uids(f) for f in self.folders}
        hostile = ['x" OR ALL "', 'x\\', '{5}', 'a) OR (ALL', '*', 'x%y]', '"', 'a"b\\"c']
        for v in hostile:
            with self.subTest(v=v):
                self.assertEqual(self.listed('INBOX', '.search', 'subject=' + v),
                                 self.oracle_literal('INBOX', 'SUBJECT', v))
        # a line break can never be sent: refused before anything is
        for v in ['a\r\nA1 DELETE INBOX', 'b\nc', 'd\re']:
            with self.subTest(v=v):
                self.assert_enoent('INBOX', '.search', 'subject=' + v)
        self.assertEqual({f: self.d.uids(f) for f in self.folders}, before)
        self.assertIn('Dates', [n for n, _f, _d in self.d.list_folders()])

    def oracle_literal(self, folder, key, value):
        """UID SEARCH key {n}value (a literal: the value exactly, whatever it holds)."""
        def fn(c):
            self.d._examine(c, folder)
            try:
                c.literal = value.encode('utf-8')
                data = self.d._check(c.uid('SEARCH', key), 'UID SEARCH')
            finally:
                self.d._unselect(c)
            return sorted(int(x) for x in b' '.join(x for x in data if x).split())
        return self.d._call(fn)

    def test_results_follow_the_server(self):
        """New hits show up after `refresh`, gone ones go; a UIDVALIDITY change drops all."""
        d = self.d
        d.create_folder('Fresh')
        u1 = d.append('Fresh', msg('platypus one'))
        p = ('Fresh', '.search', 'subject=platypus')
        deadline = time.monotonic() + 10  # a new folder shows once the folder list is renewed
        while not os.path.isdir(os.path.join(self.mnt, 'Fresh')) and time.monotonic() < deadline:
            time.sleep(0.3)
        self.assertEqual(self.listed(*p), [u1])
        u2 = d.append('Fresh', msg('platypus two'))
        deadline = time.monotonic() + 10
        while self.listed(*p) != [u1, u2] and time.monotonic() < deadline:
            time.sleep(0.3)
        self.assertEqual(self.listed(*p), [u1, u2])
        d.expunge('Fresh', [u1])
        deadline = time.monotonic() + 10
        while self.listed(*p) != [u2] and time.monotonic() < deadline:
            time.sleep(0.3)
        self.assertEqual(self.listed(*p), [u2])
        old_ino = os.stat(os.path.join(self.mnt, *p, str(u2))).st_ino
        self.assertEqual(self.listed('Fresh'), [u2])  # the folder's own listing, of this life
        # another life of the folder: same name, new UIDVALIDITY, UIDs counted from 1 again
        uv = d.uidvalidity('Fresh')
        d.recreate_folder('Fresh')
        n1 = d.append('Fresh', msg('platypus reborn'))
        raw_n1 = d.fetch_raw('Fresh', n1)
        self.assertNotEqual(d.uidvalidity('Fresh'), uv)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if self.listed(*p) == [n1] and os.stat(
                        os.path.join(self.mnt, *p, str(n1))).st_ino != old_ino:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        self.assertEqual(self.listed(*p), [n1])
        self.assertEqual(ti.read(os.path.join(self.mnt, *p, str(n1), 'message.eml')), raw_n1)
        self.assertNotEqual(os.stat(os.path.join(self.mnt, *p, str(n1))).st_ino, old_ino)

    def test_grep_over_a_result(self):
        want = self.oracle('INBOX', 'FROM', 'bob')
        res = os.path.join(self.mnt, 'INBOX', '.search', 'from=bob')
        out = subprocess.run(['grep', '-rl', '--include=from', 'bob', res], capture_output=True,
                             text=True).stdout.split()
        self.assertEqual(sorted(int(p.split('/')[-2]) for p in out), want)


if __name__ == '__main__':
    unittest.main(verbosity=2)
