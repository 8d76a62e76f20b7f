#!/usr/bin/python3
"""What stat, df and backup tools see of a mount (issue 22), against a real Dovecot
(tests/harness/dovecot.py):
  Modes     mail is private by default (0400 files, 0500 directories, the mounting user's):
            with allow_other another user (nobody) gets EACCES on every file and directory;
            -o umask=0022 shares on purpose; -o uid=/gid= name the owner; bad values are one
            line and exit 1 before anything is mounted.

Environment (tests/fs/meson.build): IMAPFS_BIN, IMAPFS_HARNESS_DIR.  Must run as root (Dovecot,
allow_other, and the other user).  Fails, never skips, without FUSE or Dovecot.  Python
stdlib only.
"""

import errno
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HARNESS = os.environ.get('IMAPFS_HARNESS_DIR',
                         os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                                      'harness'))
sys.path.insert(0, HARNESS)
import dovecot  # noqa: E402
import mounts  # noqa: E402

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


class Modes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        mounts.require_environment()
        cls.tmp = tempfile.mkdtemp(prefix='ifs-stat', dir='/tmp')
        os.chmod(cls.tmp, 0o755)  # nobody must reach the mount point itself
        cls.d = dovecot.Dovecot()
        cls.d.start()
        try:
            cls.d.create_folder('Work')
            cls.d.append('INBOX', b'Subject: Welcome to imapfs\r\n\r\nsecret\r\n')
            cls.d.append('Work', b'Subject: plans\r\nContent-Type: multipart/mixed; '
                         b'boundary=b\r\n\r\n--b\r\n\r\ntext\r\n--b\r\nContent-Type: '
                         b'application/pdf\r\nContent-Disposition: attachment; '
                         b'filename=a.pdf\r\n\r\n%PDF\r\n--b--\r\n')
            cls.cfg = mounts.dovecot_config(os.path.join(cls.tmp, 'config'), cls.d,
                                            refresh='60')
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def mount(self, *opts):
        m = mounts.Mount(self.tmp, self.cfg, extra=['-o', ','.join(('allow_other',) + opts)])
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
        m2 = mounts.Mount(self.tmp, self.cfg, name='mnt2',
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


if __name__ == '__main__':
    unittest.main(verbosity=2)
