#!/usr/bin/python3
"""bench/remount_ls.py — `ls -l` of a 100,000-message folder: cold, and on a remount that starts
from the listing saved by the previous mount (fs/state.c), at 0 ms and 50 ms round-trip time.

    sudo /usr/bin/python3 bench/remount_ls.py [--messages N] [--rtt-ms 0,50] [--repeat K]

Needs root (throwaway Dovecot, FUSE mounts) and a built imapfs (IMAPFS_BIN, default
build/fs/imapfs).  For each RTT (a tests/harness/tcp_proxy.py TcpProxy with RTT/2 of delay each
way; 0 = direct), on one cache directory:

  cold       first mount, empty cache: EXAMINE + UID SEARCH ALL + UID FETCH 1:* (one round trip,
             100,000 FETCH responses to parse);
  remount    unmount, mount again: the saved listing is loaded and brought up to date: with
             QRESYNC (Dovecot has it) EXAMINE (QRESYNC (uidvalidity modseq)) + UID FETCH
             <saved UIDNEXT>:*, pipelined; without it one EXAMINE;
  changed    the same after a slight change on the server: 5 new messages, 5 expunged, 10
             flag changes.  With QRESYNC still one round trip (the EXAMINE's answer names the
             expunged and the re-flagged messages, the FETCH brings the new); with CONDSTORE
             alone EXAMINE, then UID FETCH <old UIDNEXT>:*, UID FETCH ... (CHANGEDSINCE ...)
             and UID SEARCH ALL (two round trips).

Each row: median `ls -l` time (the mount's LIST and login are not in it), and the IMAP commands
the daemon sent while `ls -l` ran and the round trips they took (counted from a separate `-d`
run with watch = off, whose protocol trace is the only way to see them: a command sent after
an answer was read starts a round trip; commands sent together share one).  IMAPFS_BIN picks
the binary (compare an older build's figures this way).  The machine is shared: figures are
noisy.
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


def slight_change(d):
    """5 new messages, 5 expunged (spread over the folder), 10 flag changes; returns the
    number of messages the folder then has."""
    uids = sorted(d.uids(FOLDER))
    for i in range(5):
        d.append(FOLDER, ('Subject: new %d\r\n\r\nnew\r\n' % i).encode())
    d.expunge(FOLDER, [uids[k * len(uids) // 5] for k in range(5)])
    flagged = [str(uids[k * len(uids) // 10 + 1]) for k in range(10)]
    d.set_flags(FOLDER, flagged, ['\\Flagged'], add=True)
    return len(d.uids(FOLDER))


class Mount:
    def __init__(self, tmp, port, d, cache, tag, debug=False):
        self.path = os.path.join(tmp, 'mnt-' + tag)
        os.makedirs(self.path, exist_ok=True)
        cfg = os.path.join(tmp, 'cfg-' + tag)
        with open(cfg, 'w') as f:
            f.write('[default]\nhost = 127.0.0.1\nport = %d\nuser = %s\npassword = %s\n'
                    'ca_file = %s\ncache_dir = %s\ntimeout = 60\n%s'
                    % (port, d.user, d.password, d.ca_file, cache,
                       'watch = off\n' if debug else ''))
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
    """The IMAP commands sent while ls -l ran, and the round trips they took, from a -d
    mount's protocol trace (watch = off: only the listing connection talks)."""
    m = Mount(tmp, port, d, cache, tag, debug=True)
    try:
        before = m.log_text().count('\n')
        ls_l(m, n)
        lines = m.log_text().split('\n')[before:]
    finally:
        m.close()
    out = []
    trips = 0
    last = None
    for ln in lines:
        if ' C: ' in ln:
            if last != 'C':
                trips += 1
            last = 'C'
            cmd = ln.split(' C: ', 1)[1].split(' ', 1)
            out.append(cmd[1][:60].replace('\\r\\n', '') if len(cmd) > 1 else cmd[0])
        elif ' S: ' in ln:
            last = 'S'
    return out, trips


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
        n = args.messages
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
                    for k in list(range(args.repeat)) + ['count']:
                        cache = os.path.join(tmp, 'cache-%d-%s-%s' % (rtt, kind, k))
                        if kind != 'cold':  # a previous mount saved the listing
                            m = Mount(tmp, port, d, cache, 'prep-%d-%s-%s' % (rtt, kind, k))
                            ls_l(m, n)
                            m.close()
                        if kind == 'changed':
                            n = slight_change(d)
                        if k == 'count':
                            cmds, trips = commands_during_ls(
                                tmp, port, d, cache, 'count-%d-%s' % (rtt, kind), n)
                            continue
                        m = Mount(tmp, port, d, cache, '%d-%s-%s' % (rtt, kind, k))
                        try:
                            times.append(ls_l(m, n))
                        finally:
                            m.close()
                    rows.append((rtt, kind, statistics.median(times), times, cmds, trips))
                    log('%3d ms %-8s %.2f s  %d round trip(s): %s'
                        % (rtt, kind, statistics.median(times), trips, cmds))
            finally:
                if proxy is not None:
                    proxy.close()
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print('ls -l of a %d-message folder (median of %d; the machine is shared: noisy)'
          % (args.messages, args.repeat))
    print('| RTT | mount | ls -l | runs | round trips | IMAP commands during ls -l |')
    print('|---|---|---|---|---|---|')
    for rtt, kind, med, times, cmds, trips in rows:
        print('| %d ms | %s | %.2f s | %s | %d | %d: %s |' % (
            rtt, kind, med, ' '.join('%.2f' % t for t in times), trips, len(cmds),
            '; '.join(cmds)))


if __name__ == '__main__':
    main()
