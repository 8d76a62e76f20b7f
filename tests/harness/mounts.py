#!/usr/bin/python3
"""Mounting the built imapfs for integration tests, once for every new suite (the older
suites each carry a copy of this): a config file for a Dovecot of dovecot.py, a mount in the
background or the foreground, and an unmount that always succeeds (`fusermount3 -uz`, then
SIGKILL of a daemon left behind).  Python 3 standard library only."""

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


def mounted(path):
    path = os.path.realpath(path)
    with open('/proc/self/mountinfo') as f:
        for line in f:
            mp = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), line.split(' ')[4])
            if mp == path:
                return True
    return False


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


def write_config(path, host, port, user, password, ca_file=None, **over):
    """An account config at path (mode 0600) with its own disk cache beside it; keys given as
    None are left out."""
    # compress = on: every test server is on loopback, where the default (auto) never asks
    # for COMPRESS; the *_compress suites must compress (it changes nothing where the server
    # does not offer it)
    keys = {
        'host': host, 'port': str(port), 'user': user, 'password': password,
        'ca_file': ca_file, 'timeout': '10', 'refresh': '1', 'compress': 'on',
        'cache_dir': os.path.join(os.path.dirname(os.path.abspath(path)),
                                  'cache-' + os.path.basename(path)),
    }
    keys.update(over)
    with open(path, 'w') as f:
        f.write('[default]\n')
        for k, v in keys.items():
            if v is not None:
                f.write('%s = %s\n' % (k, v))
    os.chmod(path, 0o600)
    return path


def dovecot_config(path, d, **over):
    return write_config(path, d.host, d.port_imaps, d.user, d.password, d.ca_file, **over)


class Mount:
    """One imapfs mount at tmp/name, in the foreground (-f: the daemon's output in self.log)
    unless foreground=False.  close() always unmounts."""

    def __init__(self, tmp, cfg, name='mnt', foreground=True, extra=()):
        self.path = os.path.join(tmp, name)
        os.makedirs(self.path, exist_ok=True)
        self.log = os.path.join(tmp, name + '.log')
        self.proc = None
        self.logf = open(self.log, 'wb')
        args = [IMAPFS, '-o', 'config=' + cfg] + list(extra) + (['-f'] if foreground else [])
        args.append(self.path)
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not mounted(self.path):
            if (foreground and self.proc.poll() is not None) or time.monotonic() > deadline:
                self.close()
                raise AssertionError('imapfs did not mount: %s' % self.log_text())
            time.sleep(0.05)

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
            self.proc = None
        if self.logf is not None:
            self.logf.close()
            self.logf = None
