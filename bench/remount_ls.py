#!/usr/bin/python3
"""bench/remount_ls.py — `ls -l` of a 100,000-message folder: cold, and on a remount that starts
from the listing saved by the previous mount (fs/state.c), at 0 ms and 50 ms round-trip time.

    sudo /usr/bin/python3 bench/remount_ls.py [--messages N] [--rtt-ms 0,50] [--repeat K]

Needs root (throwaway Dovecot, FUSE mounts) and a built imapfs (IMAPFS_BIN, default
build/fs/imapfs).  For each RTT (a tests/harness/tcp_proxy.py TcpProxy with RTT/2 of delay each
way; 0 = direct), on one cache directory:

  cold       first mount, empty cache: EXAMINE + UID SEARCH ALL + UID FETCH 1:* (one round trip,
             100,000 FETCH responses to parse);
  remount    unmount, mount again: the saved listing is loaded and one EXAMINE says nothing
             changed;
  changed    the same after 1 new message and 10 flag changes on the server: EXAMINE, then
             UID FETCH <old UIDNEXT>:* and UID FETCH ... (CHANGEDSINCE ...).

Each row: median `ls -l` time (the mount's LIST and login are not in it), and the IMAP commands
the daemon sent while `ls -l` ran (counted from a separate `-d` run, whose protocol trace is
the only way to see them; a command that waits for the previous answer is one round trip).
The machine is shared: figures are noisy.
"""

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'harness'))
import dovecot  # noqa: E402
import tcp_proxy  # noqa: E402

IMAPFS = os.environ.get('IMAPFS_BIN', os.path.join(ROOT, 'build', 'fs', 'imapfs'))
FOLDER = 'Big'


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def write_maildir(d, folder, n):
    """n tiny messages straight into the folder's Maildir, then indexed once."""
    dv = pwd.getpwnam('dovecot')
    d.create_folder(folder)
    cur = os.path.join(d.workdir, 'home', d.user, 'Maildir', folder, 'cur')
    t = 1704103200
    for i in range(n):
        raw = ('From: a@example.com\r\nSubject: m%d\r\n\r\nbody %d\r\n' % (i, i)).encode()
        path = os.path.join(cur, '%d.M%dP1.bench,S=%d:2,S' % (t + i, i, len(raw)))
        with open(path, 'wb') as f:
            f.write(raw)
        os.chown(path, dv.pw_uid, dv.pw_gid)
        os.utime(path, (t + i, t + i))
    os.utime(cur, None)
    d.uids(folder)  # index it now, not during a measurement


def mounted(path):
    with open('/proc/self/mountinfo') as f:
        return any(line.split()[4] == path for line in f)


class Mount:
    def __init__(self, tmp, port, d, cache, tag, debug=False):
        self.path = os.path.join(tmp, 'mnt-' + tag)
        os.makedirs(self.path, exist_ok=True)
        cfg = os.path.join(tmp, 'cfg-' + tag)
        with open(cfg, 'w') as f:
            f.write('[default]\nhost = 127.0.0.1\nport = %d\nuser = %s\npassword = %s\n'
                    'ca_file = %s\ncache_dir = %s\ntimeout = 60\n'
                    % (port, d.user, d.password, d.ca_file, cache))
        os.chmod(cfg, 0o600)
        self.logpath = os.path.join(tmp, 'log-' + tag)
        self.logf = open(self.logpath, 'wb')
        args = [IMAPFS, '-o', 'config=' + cfg, '-f'] + (['-d'] if debug else []) + [self.path]
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not mounted(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('imapfs did not mount: %s' % self.log_text())
            time.sleep(0.05)

    def log_text(self):
        with open(self.logpath, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def close(self):
        subprocess.run(['fusermount3', '-u', self.path])
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


def ls_l(m, n):
    t0 = time.monotonic()
    p = subprocess.run(['ls', '-l', os.path.join(m.path, FOLDER)], stdout=subprocess.PIPE,
                       env=dict(os.environ, LC_ALL='C'))
    secs = time.monotonic() - t0
    entries = len(p.stdout.splitlines()) - 1
    if p.returncode != 0 or entries != n:
        raise RuntimeError('ls -l: exit %d, %d entries (expected %d)' % (p.returncode,
                                                                      entries, n))
    return secs


def commands_during_ls(tmp, port, d, cache, tag, n):
    """The IMAP commands sent while ls -l ran, from a -d mount's protocol trace."""
    m = Mount(tmp, port, d, cache, tag, debug=True)
    try:
        before = m.log_text().count('\n')
        ls_l(m, n)
        lines = m.log_text().split('\n')[before:]
    finally:
        m.close()
    out = []
    for ln in lines:
        if ' C: ' in ln:
            cmd = ln.split(' C: ', 1)[1].split(' ', 1)
            out.append(cmd[1][:60].replace('\\r\\n', '') if len(cmd) > 1 else cmd[0])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--messages', type=int, default=100000)
    ap.add_argument('--rtt-ms', default='0,50')
    ap.add_argument('--repeat', type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit('remount_ls.py: run me as root')
    tmp = tempfile.mkdtemp(prefix='imapfs-remount-')
    d = dovecot.Dovecot()
    d.start()
    rows = []
    try:
        log('seeding %d messages...' % args.messages)
        write_maildir(d, FOLDER, args.messages)
        for rtt in [int(x) for x in args.rtt_ms.split(',')]:
            proxy = None
            port = d.port_imaps
            if rtt > 0:
                proxy = tcp_proxy.TcpProxy('127.0.0.1', d.host, d.port_imaps,
                                           delay_ms=rtt / 2)
                port = proxy.port
            try:
                for kind in ('cold', 'remount', 'changed'):
                    times = []
                    for k in range(args.repeat):
                        cache = os.path.join(tmp, 'cache-%d-%s-%d' % (rtt, kind, k))
                        if kind != 'cold':  # a previous mount saved the listing
                            m = Mount(tmp, port, d, cache, 'prep-%d-%s-%d' % (rtt, kind, k))
                            ls_l(m, args.messages)
                            m.close()
                        n = args.messages
                        if kind == 'changed':
                            uid = d.append(FOLDER, b'Subject: new\r\n\r\nnew\r\n')
                            d.set_flags(FOLDER, [str(u) for u in range(1, 11)], ['\\Flagged'],
                                        add=k % 2 == 0)
                            n += 1
                        m = Mount(tmp, port, d, cache, '%d-%s-%d' % (rtt, kind, k))
                        try:
                            times.append(ls_l(m, n))
                        finally:
                            m.close()
                        if kind == 'changed':
                            d.expunge(FOLDER, [uid])
                    cache = os.path.join(tmp, 'cache-%d-%s-count' % (rtt, kind))
                    n = args.messages
                    if kind != 'cold':
                        m = Mount(tmp, port, d, cache, 'prep-%d-%s-count' % (rtt, kind))
                        ls_l(m, n)
                        m.close()
                    if kind == 'changed':
                        uid = d.append(FOLDER, b'Subject: new\r\n\r\nnew\r\n')
                        d.set_flags(FOLDER, [str(u) for u in range(1, 11)], ['\\Seen'],
                                    add=False)
                        n += 1
                    cmds = commands_during_ls(tmp, port, d, cache, 'count-%d-%s' % (rtt, kind),
                                              n)
                    if kind == 'changed':
                        d.expunge(FOLDER, [uid])
                    rows.append((rtt, kind, statistics.median(times), times, cmds))
                    log('%3d ms %-8s %.2f s  %s' % (rtt, kind, statistics.median(times), cmds))
            finally:
                if proxy is not None:
                    proxy.close()
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print('ls -l of a %d-message folder (median of %d; the machine is shared: noisy)'
          % (args.messages, args.repeat))
    print('| RTT | mount | ls -l | runs | IMAP commands during ls -l |')
    print('|---|---|---|---|---|')
    for rtt, kind, med, times, cmds in rows:
        print('| %d ms | %s | %.2f s | %s | %d: %s |' % (
            rtt, kind, med, ' '.join('%.2f' % t for t in times), len(cmds), '; '.join(cmds)))


if __name__ == '__main__':
    main()
