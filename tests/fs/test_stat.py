#!/usr/bin/python3
r"""What stat, df and backup tools see of a mount (issue 22), against a real Dovecot
(tests/harness/dovecot.py):
  Modes     mail is private by default (0400 files, 0500 directories, the mounting user's):
            with allow_other another user (nobody) gets EACCES on every file and directory;
            -o umask=0022 shares on purpose; -o uid=/gid= name the owner; bad values are one
            line and exit 1 before anything is mounted.
  Times     a folder's mtime is its newest INTERNALDATE (0 for the root, a \Noselect parent or
            an empty folder) with a contents number in the nanoseconds, from the first stat
            on: `rsync -a` of an unchanged account, then dry runs after a refresh, after a
            remount and on a first mount with no saved state, itemize nothing; one new message
            changes exactly its folder and itself.  `ls -l MNT` on a first mount lists the
            folders in one round trip (SEARCHRES), counted in Dovecot's log.
  Df        with Dovecot's quota and imap_quota plugins and two quota roots, df and df -i
            match GETQUOTAROOT INBOX (each resource from the root that leaves the least);
            after an APPEND by another client they follow once `refresh` has passed, not
            before.  A scripted server without QUOTA: zeros and GETQUOTAROOT never sent; one
            answering NO: zeros, asked at most once per refresh; hostile figures: no crash.
  Noise     `mkdir FOLDER/.search/newdir` fails with EROFS and logs nothing; a near miss
            (`unsen`) and a bad criterion (`from=`) are logged once each, however often tried.
  Hidden    hide = (issue 23): with Dovecot declaring Junk and Trash special-use, folders
            hidden by attribute (\junk, any case) or by path ("Old Stuff", "Old Stuff/2019.d")
            are not listed in the root or their parent, so grep -r, find and a mount-wide
            .search never enter them or their subfolders, while stat, ls, cat, grep -r of the
            path and the folder's own .search work; nothing is hidden by default; an offline
            mount from the saved state hides the same.  A Gmail-shaped scripted server: the
            exact LIST line (RETURN (SPECIAL-USE) only when hiding by attribute and both
            SPECIAL-USE and LIST-EXTENDED are offered), and a plain LIST's \All obeyed.

Environment (tests/fs/meson.build): IMAPFS_BIN, IMAPFS_HARNESS_DIR.  Must run as root (Dovecot,
allow_other, and the other user).  Fails, never skips, without FUSE or Dovecot.  Python
stdlib only.
"""

import errno
import grp
import json
import os
import pwd
import re
import stat
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
import mounts  # noqa: E402
import tcp_proxy  # noqa: E402
from cases import DovecotCase, temp_dir  # noqa: E402

NOBODY = pwd.getpwnam('nobody')

# Run as nobody: try every path given (directories listed, files read), print their errnos.
PROBE = r'''
import json, os, sys
out = {}
for p, is_dir in json.loads(sys.stdin.read()):
    try:
        if is_dir:
            os.listdir(p)
        else:
            with open(p, 'rb') as f:
                f.read(1)
        out[p] = 0
    except OSError as e:
        out[p] = e.errno
print(json.dumps(out))
'''


def as_nobody(paths):
    """{path: errno or 0} for each (path, is_dir), tried by user nobody."""
    def drop():
        os.setgroups([])
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)
    res = subprocess.run([sys.executable, '-c', PROBE], input=json.dumps(paths).encode(),
                         stdout=subprocess.PIPE, check=True, preexec_fn=drop, timeout=60)
    return json.loads(res.stdout)


def walk(root):
    """Every directory and file under root (root included) as (path, is_dir), read as root."""
    out = [(root, True)]
    for dirpath, dirnames, filenames in os.walk(root):
        out += [(os.path.join(dirpath, n), True) for n in dirnames]
        out += [(os.path.join(dirpath, n), False) for n in filenames]
    return out


class Modes(DovecotCase):
    tmp_prefix = 'ifs-stat'

    @classmethod
    def seed(cls):
        os.chmod(cls.tmp, 0o755)  # nobody must reach the mount point itself
        cls.d.create_folder('Work')
        cls.d.append('INBOX', b'Subject: Welcome to imapfs\r\n\r\nsecret\r\n')
        cls.d.append('Work', b'Subject: plans\r\nContent-Type: multipart/mixed; '
                     b'boundary=b\r\n\r\n--b\r\n\r\ntext\r\n--b\r\nContent-Type: '
                     b'application/pdf\r\nContent-Disposition: attachment; '
                     b'filename=a.pdf\r\n\r\n%PDF\r\n--b--\r\n')
        cls.cfg = mounts.write_config(os.path.join(cls.tmp, 'config'), cls.d,
                                      refresh='60')

    def mount(self, *opts):
        m = mounts.Mount(self.tmp, self.cfg, foreground=True,
                         extra=['-o', ','.join(('allow_other',) + opts)])
        self.addCleanup(m.close)
        return m.path

    def test_private_by_default(self):
        mnt = self.mount()
        paths = walk(mnt)
        # everything: the root, folders, message directories, attachments/, files
        self.assertGreater(len(paths), 15, paths)
        self.assertIn(os.path.join(mnt, 'Work', '1', 'attachments', 'a.pdf'),
                      [p for p, _ in paths])
        for p, is_dir in paths:
            st = os.lstat(p)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o500 if is_dir else 0o400, p)
            self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()), p)
        denied = as_nobody(paths)
        self.assertEqual({p: e for p, e in denied.items() if e != errno.EACCES}, {})
        self.assertEqual(len(denied), len(paths))

    def test_umask_shares_on_purpose(self):
        mnt = self.mount('umask=0022')
        paths = walk(mnt)
        for p, is_dir in paths:
            self.assertEqual(stat.S_IMODE(os.lstat(p).st_mode), 0o555 if is_dir else 0o444, p)
        self.assertEqual({p: e for p, e in as_nobody(paths).items() if e != 0}, {})
        with open(os.path.join(mnt, 'INBOX', '1', 'subject')) as f:
            self.assertEqual(f.read().strip(), 'Welcome to imapfs')

    def test_uid_gid_name_the_owner(self):
        group = grp.getgrgid(NOBODY.pw_gid).gr_name
        mnt = self.mount('uid=nobody', 'gid=' + group)
        paths = walk(mnt)
        for p, _ in paths:
            st = os.lstat(p)
            self.assertEqual((st.st_uid, st.st_gid), (NOBODY.pw_uid, NOBODY.pw_gid), p)
        # the owner reads, with the private modes
        self.assertEqual({p: e for p, e in as_nobody(paths).items() if e != 0}, {})
        m2 = mounts.Mount(self.tmp, self.cfg, name='mnt2', foreground=True,
                          extra=['-o', 'uid=%d,gid=%d' % (NOBODY.pw_uid, 4242)])
        self.addCleanup(m2.close)
        st = os.stat(os.path.join(m2.path, 'INBOX'))
        self.assertEqual((st.st_uid, st.st_gid), (NOBODY.pw_uid, 4242))

    def test_bad_values_are_one_line(self):
        os.makedirs(os.path.join(self.tmp, 'bad'), exist_ok=True)
        for opt, want in (('umask=9', 'umask=9: not an octal mask'),
                          ('umask=1777', 'umask=1777: not an octal mask'),
                          ('uid=no-such-user-x', 'uid=no-such-user-x: no such user'),
                          ('gid=no-such-group-x', 'gid=no-such-group-x: no such group')):
            res = subprocess.run([mounts.IMAPFS, '-o', 'config=' + self.cfg, '-o', opt,
                                  os.path.join(self.tmp, 'bad')], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=30)
            err = res.stderr.decode()
            self.assertEqual(res.returncode, 1, err)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn(want, err)
            self.assertFalse(mounts.mounted(os.path.join(self.tmp, 'bad')))


def rsync(src, dst, dry=False, exact=False):
    """rsync -a src/ dst/; dry: --dry-run --itemize-changes, its lines; exact: compare times to
    the nanosecond (--modify-window=-1) instead of rsync's default, the second."""
    args = ['rsync', '-a'] + (['--dry-run', '--itemize-changes'] if dry else [])
    args += (['--modify-window=-1'] if exact else []) + [src + '/', dst + '/']
    res = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if res.returncode != 0:
        raise AssertionError('rsync failed: %s' % res.stderr.decode())
    return res.stdout.decode().splitlines()


def unchanged(src, dst):
    """The dry-run lines of both comparisons (empty when nothing changed)."""
    return rsync(src, dst, dry=True) + rsync(src, dst, dry=True, exact=True)


class Times(DovecotCase):
    REFRESH = 2
    DATES = {'INBOX': [1700000000, 1700003600], 'Work': [1600000000], 'Lists/dev': [1650000000],
             'Archive': [1500000000, 1500000500], 'Archive/old': [1710000000]}

    tmp_prefix = 'ifs-times'

    @classmethod
    def seed(cls):
        for f in ('Work', 'Lists/dev', 'Archive', 'Archive/old', 'Empty'):
            cls.d.create_folder(f)
        for f, dates in cls.DATES.items():
            for i, t in enumerate(dates):
                cls.d.append(f, b'Subject: %s %d\r\n\r\nbody\r\n' % (f.encode(), i),
                             date=t)
        cls.cfg = mounts.write_config(os.path.join(cls.tmp, 'config'), cls.d,
                                      refresh=str(cls.REFRESH))

    def mount(self, cfg=None, name='mnt'):
        m = mounts.Mount(self.tmp, cfg or self.cfg, name=name, foreground=True)
        self.addCleanup(m.close)
        return m

    def test_1_first_stat_knows_the_time(self):
        """Before any folder is listed, the first stat of each shows its newest arrival."""
        cfg = mounts.write_config(os.path.join(self.tmp, 'config-first'), self.d,
                                  refresh=str(self.REFRESH))
        mnt = self.mount(cfg, name='first').path
        for f, dates in self.DATES.items():
            self.assertEqual(os.stat(os.path.join(mnt, f)).st_mtime_ns // 10**9, max(dates), f)
        for f in ('Empty', 'Lists', ''):
            self.assertEqual(os.stat(os.path.join(mnt, f)).st_mtime_ns // 10**9, 0, f)

    def test_2_ls_l_costs_one_round_trip(self):
        """`ls -l MNT` on a first mount (no saved state): the folders' times come from one
        pipelined batch, and no folder is examined twice."""
        cfg = mounts.write_config(os.path.join(self.tmp, 'config-ls'), self.d,
                                  refresh='600', cache=None, cache_dir=None)
        m = mounts.Mount(self.tmp, cfg, name='ls', foreground=True, extra=['-d'])
        self.addCleanup(m.close)
        start = len(m.log_text())
        out = subprocess.run(['ls', '-l', '--time-style=full-iso', m.path],
                             stdout=subprocess.PIPE, check=True, timeout=60).stdout.decode()
        self.assertIn('Archive', out)
        trace = m.log_text()[start:]
        sent = [l for l in trace.splitlines() if re.search(r'C: \S+ (UID )?(EXAMINE|SEARCH|FETCH)', l)]
        examined = [l for l in sent if ' EXAMINE ' in l]
        # one round trip: every command of the batch is sent before the first answer comes
        lines = trace.splitlines()
        last_sent = max(i for i, l in enumerate(lines) if l in sent)
        first_answer = min(i for i, l in enumerate(lines) if re.search(r'S: A\d+ (OK|NO|BAD)', l))
        self.assertLess(last_sent, first_answer, '\n'.join(lines))
        # Archive/old is not a child of the root: INBOX, Work, Archive, Empty
        self.assertEqual(len(examined), 4, '\n'.join(sent))
        again = subprocess.run(['ls', '-l', m.path], stdout=subprocess.PIPE, check=True,
                               timeout=60)
        self.assertEqual(len([l for l in m.log_text()[start:].splitlines()
                              if re.search(r'C: \S+ EXAMINE ', l)]), 4)

    def test_3_rsync_sees_no_change_until_there_is_one(self):
        copy = os.path.join(self.tmp, 'copy')
        m = self.mount()
        rsync(m.path, copy)
        time.sleep(self.REFRESH + 1)
        self.assertEqual(unchanged(m.path, copy), [], 'after a refresh')
        m.close()
        m = self.mount()
        self.assertEqual(unchanged(m.path, copy), [], 'after a remount')
        # a first mount, nothing saved
        cfg = mounts.write_config(os.path.join(self.tmp, 'config-fresh'), self.d,
                                  refresh=str(self.REFRESH))
        fresh = self.mount(cfg, name='fresh')
        # folders first used in another order than before: nothing of the order may show
        for f in sorted(self.DATES, reverse=True):
            os.stat(os.path.join(fresh.path, f))
        self.assertEqual(unchanged(fresh.path, copy), [], 'on a first mount')
        fresh.close()
        uid = self.d.append('Work', b'Subject: new\r\n\r\nnew\r\n', date=1720000000)
        time.sleep(self.REFRESH + 1)
        changed = rsync(m.path, copy, dry=True)
        self.assertEqual(rsync(m.path, copy, dry=True, exact=True), changed)
        self.assertIn('.d..t...... Work/', changed)
        self.assertEqual(sorted({l.split(' ', 1)[1].split('/')[0] + '/' +
                                 (l.split(' ', 1)[1].split('/') + [''])[1] for l in changed}),
                         ['Work/', 'Work/%d' % uid], changed)
        self.assertEqual(os.stat(os.path.join(m.path, 'Work')).st_mtime_ns // 10**9, 1720000000)


def df(path, inodes=False):
    """(total, used, available) of `df -k` (1 KiB blocks) or `df -i` for path."""
    out = subprocess.run(['df', '-i' if inodes else '-k', path], stdout=subprocess.PIPE,
                         check=True, timeout=60).stdout.decode().splitlines()
    f = out[-1].split()
    return tuple(0 if v == '-' else int(v) for v in f[1:4])


def expected(quota):
    """{resource: (usage, limit)} of the root that leaves the least of each (quota.h)."""
    out = {}
    for root in quota.values():
        for res, (usage, limit) in root.items():
            if res not in out or max(limit - usage, 0) < max(out[res][1] - out[res][0], 0):
                out[res] = (usage, limit)
    return out


class Df(DovecotCase):
    REFRESH = 3
    tmp_prefix = 'ifs-df'
    # storage: User quota leaves the least; messages: Second does
    # compress=False: the harness's quota and imap_zlib settings each set the imap
    # protocol's mail_plugins, and together the APPENDs below failed (suite 'compress');
    # quota is not about the wire
    dovecot_options = {'compress': False, 'quota': [('User quota', '*:storage=1M:messages=50'),
                                                    ('Second', '*:storage=4M:messages=6')]}

    @classmethod
    def seed(cls):
        for i in range(3):
            cls.d.append('INBOX', b'Subject: %d\r\n\r\n' % i + b'x' * 20000 + b'\r\n')
        cls.cfg = mounts.write_config(os.path.join(cls.tmp, 'config'), cls.d,
                                      refresh=str(cls.REFRESH))

    def check(self, mnt):
        want = expected(self.d.getquotaroot('INBOX'))
        su, sl = want['STORAGE']
        mu, ml = want['MESSAGE']
        self.assertEqual((sl, ml), (1024, 6))  # the rule picked User quota, then Second
        sv = os.statvfs(mnt)
        self.assertEqual((sv.f_frsize, sv.f_blocks, sv.f_bfree, sv.f_bavail),
                         (1024, sl, sl - su, sl - su))
        self.assertEqual((sv.f_files, sv.f_ffree, sv.f_favail), (ml, ml - mu, ml - mu))
        self.assertEqual(df(mnt), (sl, su, sl - su))
        self.assertEqual(df(mnt, inodes=True), (ml, mu, ml - mu))
        return su, mu

    def test_df_follows_the_quota(self):
        m = mounts.Mount(self.tmp, self.cfg, foreground=True)
        self.addCleanup(m.close)
        used, msgs = self.check(m.path)
        self.assertEqual(msgs, 3)
        self.d.append('INBOX', b'Subject: big\r\n\r\n' + b'y' * 100000 + b'\r\n')
        # asked at most once per refresh: the figures of the first df stay until then
        self.assertEqual(df(m.path)[1], used)
        time.sleep(self.REFRESH + 0.5)
        used2, msgs2 = self.check(m.path)
        self.assertEqual(msgs2, 4)
        self.assertGreater(used2, used + 90)


    def test_zz_offline_keeps_the_last_figures(self):
        """(runs last: it stops the server)"""
        m = mounts.Mount(self.tmp, self.cfg, name='offline', foreground=True)
        self.addCleanup(m.close)
        before = df(m.path), df(m.path, inodes=True)
        self.assertGreater(before[0][0], 0)
        self.d.stop()
        time.sleep(self.REFRESH + 0.5)
        t0 = time.monotonic()
        self.assertEqual((df(m.path), df(m.path, inodes=True)), before)
        self.assertLess(time.monotonic() - t0, 5)


class DfScripted(unittest.TestCase):
    """Servers without QUOTA, answering NO, or with hostile figures (hostile_server.py)."""

    @classmethod
    def setUpClass(cls):
        mounts.require_environment()
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                                        'imap'))
        from certs import make_pki
        import hostile_server
        cls.hs = hostile_server
        cls.tmp = cls.enterClassContext(temp_dir('ifs-dfs'))
        cls.pki = make_pki(cls.tmp)

    def mount(self, quota_hook=None, caps=b''):
        cert, key = self.pki['good']
        srv = self.hs.HostileServer(cert, key, folders={'INBOX': {1: b'Subject: x\r\n\r\nx\r\n'}})
        self.addCleanup(srv.close)
        srv.extra_caps = caps
        srv.quota_hook = quota_hook
        cfg = mounts.write_config(os.path.join(self.tmp, 'config'), host='127.0.0.1',
                                  port=srv.port, user=self.hs.USER, password=self.hs.PASSWORD,
                                  ca_file=self.pki['ca'], refresh='2', connections='2',
                                  cache=None, cache_dir=None)
        m = mounts.Mount(self.tmp, cfg, foreground=True)
        self.addCleanup(m.close)
        return srv, m

    def asked(self, srv):
        return [c for _n, c in srv.commands if b'GETQUOTAROOT' in c.upper()]

    def zeros(self, mnt):
        sv = os.statvfs(mnt)
        self.assertEqual((sv.f_blocks, sv.f_bfree, sv.f_bavail, sv.f_files, sv.f_ffree),
                         (0, 0, 0, 0, 0))
        self.assertEqual(df(mnt), (0, 0, 0))

    def test_without_quota_zeros_and_never_asked(self):
        srv, m = self.mount()
        for _ in range(3):
            self.zeros(m.path)
        time.sleep(2.5)
        self.zeros(m.path)
        self.assertEqual(self.asked(srv), [])
        self.assertIsNone(m.proc.poll())

    def test_no_answer_zeros_once_per_refresh(self):
        srv, m = self.mount(lambda c, tag, rest: tag + b' NO [NOPERM] not for you\r\n',
                            b' QUOTA')
        for _ in range(5):
            self.zeros(m.path)
        self.assertEqual(len(self.asked(srv)), 1, srv.commands)
        time.sleep(2.5)
        self.zeros(m.path)
        self.assertEqual(len(self.asked(srv)), 2, srv.commands)
        self.assertEqual(self.asked(srv)[0].split(b' ', 1)[1], b'GETQUOTAROOT "INBOX"')

    def test_hostile_figures(self):
        answer = (b'* QUOTAROOT INBOX r\r\n'
                  b'* QUOTA r (STORAGE 99999999999999999999999999 5 MESSAGE 9 4 STORAGE x)\r\n'
                  b'* QUOTA r (STORAGE 18446744073709551615 18446744073709551615)\r\n')
        srv, m = self.mount(lambda c, tag, rest: answer + tag + b' OK done\r\n', b' QUOTA')
        sv = os.statvfs(m.path)
        # numbers over 63 bits are ignored; MESSAGE 9 of 4: full
        self.assertEqual((sv.f_blocks, sv.f_bfree, sv.f_files, sv.f_ffree), (0, 0, 4, 0))
        self.assertIsNone(m.proc.poll())


class Noise(DovecotCase):
    tmp_prefix = 'ifs-noise'

    @classmethod
    def seed(cls):
        cls.d.append('INBOX', b'Subject: x\r\n\r\nx\r\n')
        cls.cfg = mounts.write_config(os.path.join(cls.tmp, 'config'), cls.d)

    def search_lines(self, m):
        return [l for l in m.log_text().splitlines() if 'search' in l]

    def test_quiet_unless_meant(self):
        m = mounts.Mount(self.tmp, self.cfg, foreground=True)
        self.addCleanup(m.close)
        for d in (os.path.join(m.path, 'INBOX', '.search', 'newdir'),
                  os.path.join(m.path, '.search', 'newdir')):
            with self.assertRaises(OSError) as cm:
                os.mkdir(d)
            self.assertEqual(cm.exception.errno, errno.EROFS, d)
        self.assertEqual(os.listdir(os.path.join(m.path, 'INBOX', '.search', 'unseen')), ['1'])
        self.assertEqual(self.search_lines(m), [])
        for _ in range(3):
            for name in ('unsen', 'from='):
                with self.assertRaises(FileNotFoundError):
                    os.listdir(os.path.join(m.path, 'INBOX', '.search', name))
        lines = self.search_lines(m)
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(' INBOX/.search/unsen: did you mean unseen?', lines[0] + lines[1])
        self.assertIn(' INBOX/.search/from=: from= needs a value', lines[0] + lines[1])


def grep_r(word, *paths):
    """(exit status, sorted matching files) of grep -r -l word paths."""
    res = subprocess.run(['grep', '-r', '-l', word] + list(paths), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=120)
    return res.returncode, sorted(res.stdout.decode().splitlines())


def list_lines(m):
    """The LIST commands the mount sent (its -d trace shows them escaped), tags cut off."""
    return [re.sub(r'^.* C: \S+ ', '', ln).replace('\\r\\n', '').replace('\\"', '"')
            for ln in m.log_text().splitlines() if re.search(r' C: \S+ LIST ', ln)]


class Hidden(DovecotCase):
    """hide = (issue 23) against Dovecot, which declares Junk and Trash special-use: hidden
    folders are not listed (READDIR of the root and of their parent), so grep -r, find and a
    mount-wide search never enter them or their subfolders, but their paths work (stat, ls,
    cat, grep -r of the path, their own .search)."""

    tmp_prefix = 'ifs-hide'
    dovecot_options = {'special_use': {'Junk': '\\Junk', 'Trash': '\\Trash'}}
    FOLDERS = {'INBOX': b'commonword inboxonly', 'Work': b'commonword workonly',
               'Junk': b'commonword junkonly', 'Trash': b'trashonly',
               'Old Stuff': b'commonword oldonly', 'Old Stuff/2019': b'commonword old2019only'}

    @classmethod
    def seed(cls):
        for f, body in cls.FOLDERS.items():
            if f != 'INBOX':
                cls.d.create_folder(f)
            cls.d.append(f, b'Subject: %s\r\n\r\n%s\r\n' % (f.encode(), body))

    def test_hidden_by_attribute_and_by_name(self):
        # attributes in any case, a quoted name with a blank
        m = self.mount(hide='\\junk "Old Stuff"', extra=('-d',))
        mnt = m.path
        self.assertEqual(sorted(os.listdir(mnt)), ['INBOX', 'Trash', 'Work'])
        # reachable by name: stat, ls, cat, grep -r of the path
        for f in ('Junk', 'Old Stuff'):
            self.assertTrue(stat.S_ISDIR(os.stat(os.path.join(mnt, f)).st_mode), f)
        self.assertEqual(os.listdir(os.path.join(mnt, 'Junk')), ['1'])
        with open(os.path.join(mnt, 'Junk', '1', 'message.eml'), 'rb') as fh:
            self.assertIn(b'junkonly', fh.read())
        # a hidden folder's own listing shows its subfolders
        self.assertEqual(sorted(os.listdir(os.path.join(mnt, 'Old Stuff'))), ['1', '2019.d'])
        self.assertEqual(os.listdir(os.path.join(mnt, 'Old Stuff', '2019.d')), ['1'])
        # grep -r over the mount never enters them
        for word in ('junkonly', 'oldonly', 'old2019only'):
            self.assertEqual(grep_r(word, mnt), (1, []), word)
        rc, files = grep_r('commonword', mnt)
        self.assertEqual(rc, 0)
        self.assertEqual(sorted({os.path.relpath(f, mnt).split('/')[0] for f in files}),
                         ['INBOX', 'Work'], files)
        rc, files = grep_r('junkonly', os.path.join(mnt, 'Junk'))
        self.assertEqual(rc, 0)
        self.assertIn(os.path.join(mnt, 'Junk', '1', 'message.eml'), files)
        rc, files = grep_r('old2019only', os.path.join(mnt, 'Old Stuff'))
        self.assertEqual(rc, 0)
        self.assertIn(os.path.join(mnt, 'Old Stuff', '2019.d', '1', 'message.eml'), files)
        # nor does find
        found = subprocess.run(['find', mnt], stdout=subprocess.PIPE, check=True,
                               timeout=120).stdout.decode().splitlines()
        self.assertEqual([p for p in found if '/Junk' in p or '/Old Stuff' in p], [])
        self.assertIn(os.path.join(mnt, 'Trash', '1', 'message.eml'), found)
        # a mount-wide search leaves them out; their own .search works
        self.assertEqual(sorted(os.listdir(os.path.join(mnt, '.search', 'text=commonword'))),
                         ['INBOX', 'Work'])
        self.assertEqual(os.listdir(os.path.join(mnt, '.search', 'text=junkonly')), [])
        self.assertEqual(os.listdir(os.path.join(mnt, 'Junk', '.search', 'text=junkonly')),
                         ['1'])
        # Dovecot offers SPECIAL-USE and LIST-EXTENDED: the attributes are asked for
        lines = list_lines(m)
        self.assertTrue(lines, m.log_text()[-2000:])
        self.assertEqual(set(lines), {'LIST "" "*" RETURN (SPECIAL-USE)'}, lines)

    def test_subfolder_by_name(self):
        """A path below a folder hides that subfolder only, named as the mount shows it
        (2019 is 2019.d there); names alone need no SPECIAL-USE (the LIST is the plain one)."""
        m = self.mount(hide='"Old Stuff/2019.d/"', extra=('-d',))
        mnt = m.path
        self.assertEqual(sorted(os.listdir(mnt)), ['INBOX', 'Junk', 'Old Stuff', 'Trash',
                                                    'Work'])
        self.assertEqual(os.listdir(os.path.join(mnt, 'Old Stuff')), ['1'])
        self.assertEqual(os.listdir(os.path.join(mnt, 'Old Stuff', '2019.d')), ['1'])
        self.assertEqual(grep_r('old2019only', mnt), (1, []))
        self.assertEqual(grep_r('oldonly', mnt)[0], 0)
        self.assertEqual(set(list_lines(m)), {'LIST "" "*"'})

    def test_default_hides_nothing(self):
        m = self.mount(extra=('-d',))
        self.assertEqual(sorted(os.listdir(m.path)), ['INBOX', 'Junk', 'Old Stuff', 'Trash',
                                                       'Work'])
        self.assertEqual(grep_r('junkonly', m.path)[0], 0)
        self.assertEqual(set(list_lines(m)), {'LIST "" "*"'})

    def test_offline_mount_hides_the_same(self):
        """The saved folder list keeps the attributes: a mount while the server is down
        hides what the online one did."""
        p = self.proxy(tcp_proxy.TcpProxy)
        cache = os.path.join(self.tmp, 'hide-cache')
        m = self.mount(port=p.port, cache_dir=cache, hide='\\Junk')
        self.assertEqual(sorted(os.listdir(m.path)), ['INBOX', 'Old Stuff', 'Trash', 'Work'])
        m.close()
        p.refuse(True)
        m2 = self.mount(port=p.port, cache_dir=cache, hide='\\Junk', timeout='2')
        self.assertIn('offline', m2.log_text())
        self.assertEqual(sorted(os.listdir(m2.path)), ['INBOX', 'Old Stuff', 'Trash', 'Work'])
        self.assertTrue(stat.S_ISDIR(os.stat(os.path.join(m2.path, 'Junk')).st_mode))


class HiddenScripted(unittest.TestCase):
    """hide = \\All on a Gmail-shaped scripted server (hostile_server.py): the exact LIST line
    sent, RETURN (SPECIAL-USE) only when hiding by attribute on a server offering SPECIAL-USE
    and LIST-EXTENDED, and the attributes of a plain LIST (Gmail's, Dovecot's) obeyed too."""

    MSGS = {'INBOX': {1: b'Subject: hi\r\n\r\nboth\r\n'},
            '[Gmail]/All Mail': {1: b'Subject: hi\r\n\r\nboth\r\n',
                                 2: b'Subject: old\r\n\r\narchivedonly\r\n'},
            '[Gmail]/Sent Mail': {1: b'Subject: re\r\n\r\nsentonly\r\n'}}
    LIST = [b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n',
            b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"\r\n',
            b'* LIST (\\All \\HasNoChildren) "/" "[Gmail]/All Mail"\r\n',
            b'* LIST (\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"\r\n']

    @classmethod
    def setUpClass(cls):
        DfScripted.setUpClass.__func__(cls)

    def mount(self, caps, **keys):
        cert, key = self.pki['good']
        srv = self.hs.HostileServer(cert, key, folders=self.MSGS)
        self.addCleanup(srv.close)
        srv.extra_caps = caps
        srv.list_lines = self.LIST
        cfg = mounts.write_config(os.path.join(self.tmp, 'config'), host='127.0.0.1',
                                  port=srv.port, user=self.hs.USER, password=self.hs.PASSWORD,
                                  ca_file=self.pki['ca'], refresh='2', connections='2',
                                  cache=None, cache_dir=None, **keys)
        m = mounts.Mount(self.tmp, cfg, foreground=True)
        self.addCleanup(m.close)
        return srv, m

    def lists(self, srv):
        return {c.split(b' ', 1)[1] for _n, c in srv.commands if b' LIST ' in c.upper()}

    def check_hidden(self, m):
        g = os.path.join(m.path, '[Gmail]')
        self.assertEqual(sorted(os.listdir(m.path)), ['INBOX', '[Gmail]'])
        self.assertEqual(os.listdir(g), ['Sent Mail'])
        self.assertEqual(sorted(os.listdir(os.path.join(g, 'All Mail'))), ['1', '2'])
        with open(os.path.join(g, 'All Mail', '2', 'message.eml'), 'rb') as fh:
            self.assertIn(b'archivedonly', fh.read())
        self.assertEqual(grep_r('archivedonly', m.path), (1, []))
        rc, files = grep_r('both', m.path)
        self.assertEqual({os.path.relpath(f, m.path).split('/')[0] for f in files}, {'INBOX'})

    def test_asks_for_special_use_when_offered(self):
        srv, m = self.mount(b' SPECIAL-USE LIST-EXTENDED', hide='\\All')
        self.check_hidden(m)
        self.assertEqual(self.lists(srv), {b'LIST "" "*" RETURN (SPECIAL-USE)'})

    def test_plain_list_attributes_obeyed(self):
        # no SPECIAL-USE (as Gmail before it offered it), or no LIST-EXTENDED for the RETURN
        # option: the plain LIST, whose attributes still count
        for caps in (b'', b' SPECIAL-USE'):
            with self.subTest(caps=caps):
                srv, m = self.mount(caps, hide='\\All')
                self.check_hidden(m)
                self.assertEqual(self.lists(srv), {b'LIST "" "*"'})
                m.close()

    def test_no_hide_plain_list(self):
        srv, m = self.mount(b' SPECIAL-USE LIST-EXTENDED')
        self.assertEqual(sorted(os.listdir(os.path.join(m.path, '[Gmail]'))),
                         ['All Mail', 'Sent Mail'])
        self.assertEqual(grep_r('archivedonly', m.path)[0], 0)
        self.assertEqual(self.lists(srv), {b'LIST "" "*"'})


if __name__ == '__main__':
    unittest.main(verbosity=2)
