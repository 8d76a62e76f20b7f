#!/usr/bin/python3
"""What `meson install` puts where, and the systemd user unit imapfs@.service.

The build is installed into a temporary DESTDIR.  Then:
  - the files: bin/imapfs, share/man/man1/imapfs.1, share/doc/imapfs/config.example,
    lib/systemd/user/imapfs@.service (or -Dsystemd_user_unit_dir), and nothing else;
  - `man -w imapfs` finds the installed page (MANPATH=DESTDIR's man dir) and man renders it
    without warnings;
  - `systemd-analyze verify --user` passes on imapfs@work.service, man page check included.
    verify insists that ExecStart's program exists at its installed path (PREFIX/bin/imapfs),
    so it runs in a private mount namespace where DESTDIR's bin directory is overlaid on the
    real one: nothing outside this process tree sees it (needs root);
  - the unit's commands, as systemd would run them for instance "work" with %h a temporary
    home: ExecStartPre creates the mount point, ExecStart mounts the account in the
    foreground, ExecStop unmounts it and imapfs then exits 0 (so Restart=on-failure does not
    start it again); a failed login exits non-zero (so it does).

Environment (set by tests/dist/meson.build):
    IMAPFS_BUILD_ROOT    the build directory
    IMAPFS_BINDIR, IMAPFS_MANDIR, IMAPFS_DATADIR, IMAPFS_UNITDIR
                         the configured install directories (absolute)
    IMAPFS_BIN           the built imapfs (run in place of the installed one by UnitCommands)
    IMAPFS_HARNESS_DIR   tests/harness
Fails (never skips) without root, systemd-analyze, man or Dovecot.  Python stdlib only.
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HARNESS = os.environ.get('IMAPFS_HARNESS_DIR', '')
sys.path.insert(0, HARNESS)
import dovecot  # noqa: E402
import sample_mail  # noqa: E402

BUILD = os.environ.get('IMAPFS_BUILD_ROOT', '')


def env_dir(name):
    value = os.environ.get(name, '')
    if not os.path.isabs(value):
        raise AssertionError('%s is not an absolute path (%r): run through meson test'
                             % (name, value))
    return value


def mounted(path):
    path = os.path.realpath(path)
    with open('/proc/self/mountinfo') as f:
        return any(line.split()[4] == path for line in f)


def unit_settings(text):
    """{key: [values]} of a unit file's settings (all sections; comments skipped)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'([A-Za-z]+)=(.*)$', line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not BUILD:
            raise AssertionError('IMAPFS_BUILD_ROOT is not set (run through meson test)')
        cls.bindir = env_dir('IMAPFS_BINDIR')
        cls.mandir = env_dir('IMAPFS_MANDIR')
        cls.datadir = env_dir('IMAPFS_DATADIR')
        cls.unitdir = env_dir('IMAPFS_UNITDIR')
        cls.tmp = tempfile.mkdtemp(prefix='ifs-install', dir='/tmp')
        cls.dest = os.path.join(cls.tmp, 'dest')
        res = subprocess.run(['meson', 'install', '-C', BUILD, '--no-rebuild', '--destdir',
                              cls.dest], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=300)
        if res.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError('meson install failed: %s'
                                 % res.stdout.decode('utf-8', 'replace'))
        with open(cls.dest + cls.unitdir + '/imapfs@.service', encoding='utf-8') as f:
            cls.unit = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_installed_files(self):
        found = set()
        for dirpath, _dirs, files in os.walk(self.dest):
            for name in files:
                found.add(os.path.join(dirpath, name)[len(self.dest):])
        self.assertEqual(found, {
            self.bindir + '/imapfs',
            self.mandir + '/man1/imapfs.1',
            self.datadir + '/doc/imapfs/config.example',
            self.unitdir + '/imapfs@.service',
        })
        self.assertTrue(os.access(self.dest + self.bindir + '/imapfs', os.X_OK))

    def test_man_w_finds_the_page(self):
        env = dict(os.environ, MANPATH=self.dest + self.mandir, MANWIDTH='80', LANG='C.UTF-8')
        res = subprocess.run(['man', '-w', 'imapfs'], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertEqual(res.stdout.decode().strip(), self.dest + self.mandir + '/man1/imapfs.1')
        res = subprocess.run(['man', '--warnings', 'imapfs'], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stderr.decode(), '', 'man --warnings complains')
        text = res.stdout.decode()
        for section in ('SYNOPSIS', 'OPTIONS', 'CONFIGURATION KEYS', 'LAYOUT', 'CACHE',
                        'FILES', 'EXIT STATUS', 'SECURITY', 'EXAMPLES'):
            self.assertRegex(text, r'(?m)^%s$' % section)

    def test_systemd_analyze_verify(self):
        if shutil.which('systemd-analyze') is None:
            raise AssertionError('systemd-analyze is missing (apt-get install systemd)')
        if os.geteuid() != 0:
            raise AssertionError('the verify test needs root (a private mount namespace)')
        units = os.path.join(self.tmp, 'units')
        runtime = os.path.join(self.tmp, 'runtime')
        os.makedirs(units)
        os.makedirs(runtime, mode=0o700)
        instance = os.path.join(units, 'imapfs@work.service')
        shutil.copy(self.dest + self.unitdir + '/imapfs@.service', instance)
        os.makedirs(self.bindir, exist_ok=True)  # the overlay's mount point
        script = ('set -e; mount -t overlay overlay -o lowerdir=%s:%s %s; '
                  'exec systemd-analyze verify --user --man=yes %s'
                  % (shlex.quote(self.dest + self.bindir), shlex.quote(self.bindir),
                     shlex.quote(self.bindir), shlex.quote(instance)))
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime, MANPATH=self.dest + self.mandir)
        res = subprocess.run(['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
                              script], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(res.returncode, 0, res.stdout.decode('utf-8', 'replace'))
        self.assertEqual(res.stdout.decode('utf-8', 'replace').strip(), '')

    def test_unit_semantics(self):
        s = unit_settings(self.unit)
        self.assertEqual(s['ExecStart'], [self.bindir + '/imapfs -f %i ${IMAPFS_MOUNTPOINT}'])
        self.assertEqual(s['ExecStop'], ['fusermount3 -u ${IMAPFS_MOUNTPOINT}'])
        self.assertEqual(s['Restart'], ['on-failure'])
        self.assertEqual(s['StartLimitIntervalSec'], ['0'])  # retry until the network is up
        self.assertEqual(s['Environment'], ['IMAPFS_MOUNTPOINT=%h/mail/%i'])
        self.assertEqual(s['WantedBy'], ['default.target'])


class UnitCommands(unittest.TestCase):
    """The unit's Exec lines run as systemd runs them for imapfs@work (specifiers and
    ${IMAPFS_MOUNTPOINT} expanded), against a real Dovecot."""

    @classmethod
    def setUpClass(cls):
        cls.bindir = env_dir('IMAPFS_BINDIR')
        cls.imapfs = os.environ.get('IMAPFS_BIN', '')
        if not cls.imapfs:
            raise AssertionError('IMAPFS_BIN is not set')
        with open(os.path.join(BUILD, 'contrib', 'imapfs@.service'), encoding='utf-8') as f:
            cls.unit = unit_settings(f.read())
        cls.tmp = tempfile.mkdtemp(prefix='ifs-unit', dir='/tmp')
        cls.d = dovecot.Dovecot()
        cls.d.start()
        cls.seeded = sample_mail.seed(cls.d)

    @classmethod
    def tearDownClass(cls):
        try:
            mp = os.path.join(cls.tmp, 'mail', 'work')
            if mounted(mp):
                subprocess.run(['fusermount3', '-uz', mp])
        finally:
            cls.d.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def write_config(self, home, password):
        os.makedirs(os.path.join(home, '.config', 'imapfs'), exist_ok=True)
        cfg = os.path.join(home, '.config', 'imapfs', 'config')
        with open(cfg, 'w') as f:
            f.write('[work]\nhost = %s\nport = %d\nuser = %s\npassword = %s\nca_file = %s\n'
                    'timeout = 10\n' % (self.d.host, self.d.port_imaps, self.d.user, password,
                                        self.d.ca_file))
        os.chmod(cfg, 0o600)

    def command(self, key, home):
        """The unit's KEY= line as an argv for instance work: %i, %h and the environment
        variable expanded, the installed imapfs replaced by the built one."""
        (line,) = self.unit[key]
        env = dict(kv.split('=', 1) for kv in self.unit['Environment'])
        argv = []
        for word in shlex.split(line):
            word = word.replace('%i', 'work').replace('%h', home)
            for name, value in env.items():
                word = word.replace('${%s}' % name,
                                    value.replace('%i', 'work').replace('%h', home))
            argv.append(word)
        if argv[0] == self.bindir + '/imapfs':
            argv[0] = self.imapfs
        return argv

    def test_start_and_stop(self):
        home = os.path.join(self.tmp, 'home')
        self.write_config(home, self.d.password)
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': home,
               'XDG_CACHE_HOME': os.path.join(home, '.cache')}
        mp = os.path.join(home, 'mail', 'work')
        pre = self.command('ExecStartPre', home)
        self.assertEqual(subprocess.run(pre, env=env).returncode, 0, pre)
        self.assertTrue(os.path.isdir(mp))
        start = self.command('ExecStart', home)
        log = open(os.path.join(self.tmp, 'unit.log'), 'wb')
        proc = subprocess.Popen(start, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not mounted(mp):
                self.assertIsNone(proc.poll(), 'ExecStart exited before mounting')
                self.assertLess(time.monotonic(), deadline, 'ExecStart did not mount')
                time.sleep(0.05)
            _folder, uid, raw, _flags = next(m for m in self.seeded if m[0] == 'INBOX')
            with open(os.path.join(mp, 'INBOX', str(uid), 'message.eml'), 'rb') as f:
                self.assertEqual(f.read(), raw)
            stop = self.command('ExecStop', home)
            self.assertEqual(subprocess.run(stop, env=env).returncode, 0, stop)
            # exit 0: Restart=on-failure leaves a clean unmount alone
            self.assertEqual(proc.wait(timeout=15), 0)
            self.assertFalse(mounted(mp))
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
            log.close()

    def test_failed_login_exits_nonzero(self):
        home = os.path.join(self.tmp, 'home-bad')
        self.write_config(home, 'wrong-password')
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': home}
        self.assertEqual(subprocess.run(self.command('ExecStartPre', home),
                                        env=env).returncode, 0)
        res = subprocess.run(self.command('ExecStart', home), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(res.returncode, 1, res.stdout)  # Restart=on-failure: tried again
        self.assertIn(b'cannot log in', res.stdout)
        self.assertFalse(mounted(os.path.join(home, 'mail', 'work')))


if __name__ == '__main__':
    unittest.main(argv=[sys.argv[0]], verbosity=2)
