#!/usr/bin/python3
"""imapfs mounted the way Linux mounts things: as root `mount -t fuse.imapfs ACCOUNT MNT -o
config=...`, an fstab line (`mount -T FSTAB MNT`) and `umount`; as a user (nobody), the
README's fstab line with `user`, `mount ~/mail` and `fusermount3 -u`.  mount(8) runs
/sbin/mount.fuse3, which runs `imapfs ACCOUNT MNT -o OPTIONS` through /bin/sh with a fixed
PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), so the built imapfs is
linked as /usr/local/sbin/imapfs (first on that PATH, ahead of a packaged /usr/bin/imapfs)
for the duration of the test and the link is removed afterwards, even on failure.  The test
checks that the mounted daemon is the built binary.

Environment (set by tests/dist/meson.build):
    IMAPFS_BIN           the built imapfs
    IMAPFS_HARNESS_DIR   tests/harness
Fails (never skips) without root, mount.fuse3, /dev/fuse or Dovecot.  Python stdlib only.
"""
import atexit
import os
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

IMAPFS = os.environ.get('IMAPFS_BIN', '')
HARNESS = os.environ.get('IMAPFS_HARNESS_DIR', '')
sys.path.insert(0, HARNESS)
import dovecot  # noqa: E402
import sample_mail  # noqa: E402
from mounts import daemon_pids as daemons, mountinfo_entries  # noqa: E402

LINK = '/usr/local/sbin/imapfs'
# What util-linux and mount.fuse3 give the helper (a test's own PATH must not matter).
MOUNT_ENV = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C'}


def mountinfo(path):
    """(fstype, source, mount options, super options) of the mount at path, or None."""
    lines = mountinfo_entries(path)
    if not lines:
        return None
    fields = lines[-1].split()
    sep = fields.index('-')
    return fields[sep + 1], fields[sep + 2], fields[5], fields[sep + 3]


def wait_until(cond, timeout=15):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def remove_link():
    if os.path.islink(LINK) and os.readlink(LINK) == os.path.realpath(IMAPFS):
        os.unlink(LINK)


def install_link():
    """/usr/local/sbin/imapfs -> the built imapfs.  A link left by a killed run of this test
    (to some build's fs/imapfs) is replaced; anything else there is not ours to touch."""
    if os.path.lexists(LINK):
        target = os.readlink(LINK) if os.path.islink(LINK) else None
        if target is None or not target.endswith('/fs/imapfs'):
            raise AssertionError('%s exists and is not a link to a build\'s fs/imapfs: '
                                 'remove it to run this test' % LINK)
        os.unlink(LINK)
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.realpath(IMAPFS), LINK)
    atexit.register(remove_link)


class MountHelper(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not IMAPFS or not os.access(IMAPFS, os.X_OK):
            raise AssertionError('IMAPFS_BIN does not name the built imapfs (%r)' % IMAPFS)
        if os.geteuid() != 0:
            raise AssertionError('mount -t fuse.imapfs is tested as root: run as root')
        for prog in ('/sbin/mount.fuse3', '/dev/fuse'):
            if not os.path.exists(prog):
                raise AssertionError('%s is missing (apt-get install fuse3)' % prog)
        cls.tmp = tempfile.mkdtemp(prefix='ifs-mount', dir='/tmp')
        cls.d = dovecot.Dovecot()
        cls.d.start()
        try:
            cls.seeded = sample_mail.seed(cls.d)
            cls.cfg = os.path.join(cls.tmp, 'config')
            with socket.socket() as s:  # a port nothing listens on, for [default]
                s.bind(('127.0.0.1', 0))
                cls.closed_port = s.getsockname()[1]
            with open(cls.cfg, 'w') as f:
                f.write('[default]\nhost = 127.0.0.1\nport = %d\nuser = nobody\n'
                        'password = x\n[work]\nhost = %s\nport = %d\nuser = %s\npassword = %s\n'
                        'ca_file = %s\ntimeout = 10\ncache_dir = %s\n'
                        % (cls.closed_port, cls.d.host, cls.d.port_imaps, cls.d.user, cls.d.password,
                           cls.d.ca_file, os.path.join(cls.tmp, 'cache')))
            os.chmod(cls.cfg, 0o600)
            install_link()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            remove_link()
        finally:
            cls.d.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix='mnt', dir=self.tmp)

    def tearDown(self):
        if mountinfo(self.mnt) is not None:
            subprocess.run(['umount', '-l', self.mnt], stderr=subprocess.DEVNULL)
        wait_until(lambda: not daemons(self.mnt), 10)
        for pid in daemons(self.mnt):
            os.kill(pid, signal.SIGKILL)

    def mount(self, args):
        # run where "work" names a directory: mount(8) then passes its absolute path
        cwd = os.path.join(self.tmp, 'cwd')
        os.makedirs(os.path.join(cwd, 'work'), exist_ok=True)
        res = subprocess.run(['mount'] + args, env=MOUNT_ENV, cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
        out = res.stdout.decode('utf-8', 'replace')
        self.assertEqual(res.returncode, 0, 'mount %s: %s' % (' '.join(args), out))
        return out

    def check_mounted_and_unmount(self):
        info = mountinfo(self.mnt)
        self.assertIsNotNone(info, 'nothing is mounted at %s' % self.mnt)
        fstype, source, opts, _super = info
        self.assertEqual(fstype, 'fuse.imapfs')
        self.assertEqual(source, 'imapfs:%s' % self.d.host)
        # mount.fuse3 passes rw,dev,suid; imapfs's ro,nosuid,nodev come later and win
        self.assertTrue({'ro', 'nosuid', 'nodev'} <= set(opts.split(',')), opts)
        pids = daemons(self.mnt)
        self.assertEqual(len(pids), 1, 'imapfs daemons for %s: %s' % (self.mnt, pids))
        self.assertEqual(os.path.realpath('/proc/%d/exe' % pids[0]),
                         os.path.realpath(IMAPFS), 'the mounted imapfs is not the built one')
        # the account named on the command line is the one mounted: [work], not [default]
        folder, uid, raw, _flags = next(m for m in self.seeded if m[0] == 'INBOX')
        self.assertIn('INBOX', os.listdir(self.mnt))
        with open(os.path.join(self.mnt, 'INBOX', str(uid), 'message.eml'), 'rb') as f:
            self.assertEqual(f.read(), raw)
        with self.assertRaises(OSError):
            open(os.path.join(self.mnt, 'INBOX', 'new-file'), 'w')

        res = subprocess.run(['umount', self.mnt], env=MOUNT_ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(res.returncode, 0, res.stdout.decode('utf-8', 'replace'))
        self.assertIsNone(mountinfo(self.mnt))
        self.assertTrue(wait_until(lambda: not daemons(self.mnt)),
                        'imapfs still runs after umount: %s' % daemons(self.mnt))

    def test_mount_t_fuse_imapfs(self):
        self.mount(['-t', 'fuse.imapfs', 'work', self.mnt, '-o', 'config=' + self.cfg])
        self.check_mounted_and_unmount()

    def test_fstab_line(self):
        fstab = os.path.join(self.tmp, 'fstab')
        with open(fstab, 'w') as f:
            f.write('# the line a user would write, plus the config file\n'
                    'work %s fuse.imapfs noauto,user,_netdev,config=%s 0 0\n'
                    % (self.mnt, self.cfg))
        self.mount(['-T', fstab, self.mnt])
        self.check_mounted_and_unmount()

    def test_user_fstab_line(self):
        """The README's line for a user, `work ~/mail fuse.imapfs noauto,user,_netdev 0 0`,
        mounted by that user with `mount ~/mail` and unmounted with fusermount3 -u: the user's
        own ~/.config/imapfs/config is read (mount(8) hands the helper HOME=/root).  The user
        is nobody; in a private mount namespace /etc/fstab holds the line, /etc/passwd gives
        nobody a home in the test's directory, and /dev/fuse is a node open to users (0666,
        as on a stock Debian), so nothing outside the test changes."""
        user_uid = 65534
        home = os.path.join(self.tmp, 'home')
        confdir = os.path.join(home, '.config', 'imapfs')
        mnt = os.path.join(home, 'mail')
        os.makedirs(confdir)
        os.makedirs(mnt)
        shutil.copy(self.d.ca_file, os.path.join(confdir, 'ca.pem'))
        with open(os.path.join(confdir, 'config'), 'w') as f:
            f.write('[work]\nhost = %s\nport = %d\nuser = %s\npassword = %s\n'
                    'ca_file = ca.pem\ntimeout = 10\n'
                    % (self.d.host, self.d.port_imaps, self.d.user, self.d.password))
        os.chmod(os.path.join(confdir, 'config'), 0o600)
        for dirpath, dirs, files in os.walk(home):
            for name in [dirpath] + [os.path.join(dirpath, n) for n in files]:
                os.chown(name, user_uid, user_uid)
        os.chmod(self.tmp, 0o755)
        fstab = os.path.join(self.tmp, 'fstab.user')
        with open('/etc/fstab') as src, open(fstab, 'w') as f:
            f.write(src.read() + '\nwork %s fuse.imapfs noauto,user,_netdev 0 0\n' % mnt)
        passwd = os.path.join(self.tmp, 'passwd')
        with open('/etc/passwd') as src, open(passwd, 'w') as f:
            for line in src:
                fields = line.split(':')
                if len(fields) >= 7 and fields[2] == str(user_uid):
                    fields[5] = home
                f.write(':'.join(fields))
        # the node lives on a tmpfs of the namespace: /tmp may be mounted nodev
        devdir = os.path.join(self.tmp, 'dev')
        os.mkdir(devdir)
        folder, uid, raw, _flags = next(m for m in self.seeded if m[0] == 'INBOX')
        eml = os.path.join(mnt, 'INBOX', str(uid), 'message.eml')
        # in a directory holding "work", which mount(8) turns into an absolute path
        os.mkdir(os.path.join(home, 'work'))
        os.chown(os.path.join(home, 'work'), user_uid, user_uid)
        as_user = ('cd {home} && mount {mnt} && echo MOUNTED && ls {mnt} && '
                   'grep " {mnt} " /proc/self/mountinfo && cat {eml} > {out} && '
                   'fusermount3 -u {mnt} && echo UNMOUNTED').format(
                       home=home, mnt=mnt, eml=eml, out=os.path.join(home, 'read.eml'))
        # the built binary may sit below a directory only root can enter (a clone in a
        # `mktemp -d` folder is 0700): in the namespace a copy takes the link's place, on a
        # tmpfs of its own over /usr/local/sbin
        script = ('set -e; mount -t tmpfs -o mode=0755 imapfs-test {dev}; '
                  'mknod -m 0666 {dev}/fuse c 10 229; mount --bind {dev}/fuse /dev/fuse; '
                  'mount --bind {fstab} /etc/fstab; '
                  'mount --bind {passwd} /etc/passwd; '
                  'mount -t tmpfs -o mode=0755 imapfs-sbin {sbin}; '
                  'install -m 0755 {bin} {sbin}/imapfs; '
                  'exec setpriv --reuid={u} --regid={u} --clear-groups '
                  'env HOME=/nonexistent-home PATH=/usr/bin:/bin sh -c {cmd}').format(
                      dev=devdir, fstab=fstab, passwd=passwd, u=user_uid,
                      sbin=os.path.dirname(LINK), bin=shlex.quote(os.path.realpath(IMAPFS)),
                      cmd=shlex.quote(as_user))
        try:
            res = subprocess.run(['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
                                  script], env=MOUNT_ENV, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=120)
        finally:
            for pid in daemons(mnt):
                os.kill(pid, signal.SIGKILL)
        out = res.stdout.decode('utf-8', 'replace')
        self.assertEqual(res.returncode, 0, out)
        lines = out.splitlines()
        self.assertIn('MOUNTED', lines, out)
        self.assertIn('INBOX', lines, out)
        (info,) = [l for l in lines if ' fuse.imapfs ' in l]
        self.assertIn('user_id=%d' % user_uid, info)
        self.assertTrue({'ro', 'nosuid', 'nodev'} <= set(info.split()[5].split(',')), info)
        self.assertEqual(lines[-1], 'UNMOUNTED', out)
        with open(os.path.join(home, 'read.eml'), 'rb') as f:
            self.assertEqual(f.read(), raw)
        # the user's cache, not root's
        self.assertTrue(os.path.isdir(os.path.join(home, '.cache', 'imapfs', 'work')))

    def test_mount_failure_is_reported(self):
        # [default] names a port nothing listens on: mount fails, nothing is mounted
        res = subprocess.run(['mount', '-t', 'fuse.imapfs', 'default', self.mnt, '-o',
                              'config=' + self.cfg], env=MOUNT_ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60)
        out = res.stdout.decode('utf-8', 'replace')
        self.assertNotEqual(res.returncode, 0, out)
        self.assertIn('imapfs: cannot log in to 127.0.0.1:%d as nobody' % self.closed_port, out)
        self.assertIsNone(mountinfo(self.mnt))


if __name__ == '__main__':
    unittest.main(argv=[sys.argv[0]], verbosity=2)
