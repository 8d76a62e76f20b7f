#!/usr/bin/python3
"""Mounting the built imapfs for the integration tests (tests/fs, tests/mime, tests/dist,
bench): the one config writer, the one Mount, and an unmount that always succeeds
(`fusermount3 -uz`, then SIGKILL of a daemon left behind).  Python 3 standard library only.

Environment: IMAPFS_BIN, the built imapfs (set by the meson.build files)."""

import os
import re
import shutil
import signal
import subprocess
import time

IMAPFS = os.environ.get('IMAPFS_BIN', '')
MOUNT_TIMEOUT = 30


def require_environment():
    """Fail (never skip) when the daemon or FUSE is missing."""
    if not IMAPFS or not os.access(IMAPFS, os.X_OK):
        raise AssertionError('IMAPFS_BIN does not name the built imapfs (%r)' % IMAPFS)
    if not os.path.exists('/dev/fuse'):
        raise AssertionError('/dev/fuse is missing: these tests need FUSE')
    if shutil.which('fusermount3') is None:
        raise AssertionError('fusermount3 is missing (apt-get install fuse3)')


def mountinfo_entries(path):
    """The /proc/self/mountinfo lines whose mount point is path (octal escapes decoded)."""
    path = os.path.realpath(path)
    out = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            mp = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), line.split(' ')[4])
            if mp == path:
                out.append(line)
    return out


def mounted(path):
    return bool(mountinfo_entries(path))


def daemon_pids(mnt):
    """PIDs of imapfs processes whose command line names mnt."""
    mnt = os.path.realpath(mnt)
    out = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        if argv and argv[0].endswith(b'imapfs') and any(
                os.path.realpath(a.decode('utf-8', 'replace')) == mnt for a in argv[1:] if a):
            out.append(int(pid))
    return out


def unmount(mnt):
    if os.path.isdir(mnt) or mounted(mnt):
        subprocess.run(['fusermount3', '-uz', mnt], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while daemon_pids(mnt) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in daemon_pids(mnt):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_config(path, d=None, account='default', mode=0o600, **keys):
    """An account config at path (mode 0600 unless mode) and return path.  The server is the
    Dovecot d (dovecot.py: host, port_imaps, user, password, ca_file) or, without d, the one
    keys name (host, port, user, password, ca_file, ...).  Unless keys say otherwise: timeout
    10, refresh 1, and a disk cache of its own beside the file (cache_dir; never the user's
    ~/.cache), and compress = on: every test server is on loopback, where the default (auto)
    never asks for COMPRESS, and the *_compress suites must compress (it changes nothing where
    the server does not offer it).  A key given as None is left out (cache_dir=None: the
    daemon's XDG_CACHE_HOME, see Mount's private_home)."""
    conf = {}
    if d is not None:
        conf.update({'host': d.host, 'port': str(d.port_imaps), 'user': d.user,
                     'password': d.password, 'ca_file': d.ca_file})
    conf.update({'timeout': '10', 'refresh': '1', 'compress': 'on',
                 'cache_dir': os.path.join(os.path.dirname(os.path.abspath(path)),
                                           'cache-' + os.path.basename(path))})
    conf.update(keys)
    with open(path, 'w') as f:
        f.write('[%s]\n' % account)
        for k, v in conf.items():
            if v is not None:
                f.write('%s = %s\n' % (k, v))
    os.chmod(path, mode)
    return path


def daemon_env(cache_dir):
    """The environment for an imapfs process: XDG_CACHE_HOME (and XDG_CONFIG_HOME) private to
    the test, so no state is shared with the user's or another test's mounts."""
    os.makedirs(cache_dir, exist_ok=True)
    return dict(os.environ, XDG_CACHE_HOME=cache_dir, XDG_CONFIG_HOME=cache_dir)


class Mount:
    """One imapfs mount at tmp/name.  Foreground mounts (-f) keep the daemon as a Popen (its
    pid is the daemon's) with stdout+stderr in self.log; background mounts find the daemon by
    its command line.  debug adds -d.  env: the daemon's environment (None: this process's);
    private_home=True: daemon_env(tmp/name.cache) instead, for configs without cache_dir.
    close() always unmounts; a Mount is also a context manager (enterClassContext)."""

    def __init__(self, tmp, cfg, name='mnt', foreground=False, debug=False, extra=(), env=None,
                 private_home=False):
        self.path = os.path.join(tmp, name)
        os.makedirs(self.path, exist_ok=True)
        self.log = os.path.join(tmp, name + '.log')
        self.proc = None
        self.logf = None
        if private_home:
            env = daemon_env(os.path.join(tmp, name + '.cache'))
        args = [IMAPFS, '-o', 'config=' + cfg] + list(extra)
        if debug:
            args.append('-d')
        if foreground:
            args.append('-f')
        args.append(self.path)
        if foreground:
            self.logf = open(self.log, 'wb')
            self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
            deadline = time.monotonic() + MOUNT_TIMEOUT
            while not mounted(self.path):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise AssertionError('imapfs did not mount: %s' % self.log_text())
                time.sleep(0.05)
        else:
            try:
                res = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, timeout=MOUNT_TIMEOUT, env=env)
            except subprocess.TimeoutExpired as e:
                # it never went to the background (a -d without foreground=True, a hang):
                # subprocess killed it, but its mount may stay behind
                self.close()
                raise AssertionError('imapfs did not go to the background in %d s: %s' % (
                    MOUNT_TIMEOUT, (e.output or b'').decode('utf-8', 'replace')[-2000:]))
            if res.returncode != 0 or not mounted(self.path):
                self.close()
                raise AssertionError('imapfs failed (%d): %s' % (
                    res.returncode, res.stdout.decode('utf-8', 'replace')))

    @property
    def pid(self):
        if self.proc is not None:
            return self.proc.pid
        pids = daemon_pids(self.path)
        return pids[0] if pids else None

    def log_text(self):
        try:
            with open(self.log, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def close(self):
        unmount(self.path)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf is not None:
            self.logf.close()
            self.logf = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
