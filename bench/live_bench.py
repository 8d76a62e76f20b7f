#!/usr/bin/python3
"""How soon does another client's change show in a mounted folder?  (issue 15; not a test)

For each RTT in --rtt-ms (0: direct on loopback; else through tests/harness/tcp_proxy.py with
RTT/2 each way, for imapfs's connections only — the other client talks to Dovecot directly)
and for watch = on and watch = off (the baseline, in the same run), one mount of a throwaway
Dovecot (tests/harness/dovecot.py) with the default `refresh = 30`, and three kinds of trial on
folder `Live`, each timed from the moment the other client's command has ended (tagged OK):

    new      APPEND a message        until `ls Live` shows its UID
    expunge  expunge that message    until `ls Live` no longer shows it
    flag     toggle \\Flagged         until `Live/UID/flags` says so

The mount is polled every --poll-ms (os.listdir / read of the flags file), which adds at most
that much to each figure.  Prints median, p95 and max per (RTT, watch, kind) on stdout, and
every sample with --json FILE.  Targets (issue 15): median <= 1 s + 1 RTT, p95 <= 2 s with
watch = on.  Needs root (Dovecot, FUSE) and a built imapfs (IMAPFS_BIN, default build/).

    python3 bench/live_bench.py [--trials 100] [--baseline-trials 5] [--rtt-ms 0,50]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import shutil
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'harness'))
os.environ.setdefault('IMAPFS_BIN', os.path.join(ROOT, 'build', 'fs', 'imapfs'))
import dovecot  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402
from mounts import Mount, write_config  # noqa: E402
from probes import wait_for  # noqa: E402

FOLDER = 'Live'


def msg(i):
    return ('From: bench@example.org\r\nSubject: live %d\r\n\r\nbody %d\r\n' % (i, i)).encode()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def run_mount(d, tmp, port, watch, trials, poll, limit, log, trace=None):
    cfg = write_config(os.path.join(tmp, 'cfg-%s-%d' % (watch, port)), d, port=port,
                       timeout='30', refresh=None, cache_dir=None, watch=watch,
                       connections='4')
    m = Mount(tmp, cfg, name='mnt-%s-%d' % (watch, port), foreground=True, private_home=True,
              extra=('-d',) if trace else ())
    out = {'new': [], 'expunge': [], 'flag': [], 'missed': 0}
    try:
        box = os.path.join(m.path, FOLDER)
        names = set(os.listdir(box))
        first = sorted(int(n) for n in names)[0]
        flags = os.path.join(box, str(first), 'flags')
        flagged = b'\\Flagged' in open(flags, 'rb').read()
        time.sleep(0.5)  # the watcher has taken the folder
        for i in range(trials):
            if trace:
                log('  %.3f trial %d: append' % (time.time(), i + 1))
            uid = d.append(FOLDER, msg(i))
            t = wait_for(lambda: str(uid) in os.listdir(box), limit, poll)
            out['new'].append(t)
            if trace:
                log('  %.3f trial %d: expunge UID %d' % (time.time(), i + 1, uid))
            d.expunge(FOLDER, [uid])
            t = wait_for(lambda: str(uid) not in os.listdir(box), limit, poll)
            out['expunge'].append(t)
            flagged = not flagged
            if trace:
                log('  %.3f trial %d: flag' % (time.time(), i + 1))
            d.set_flags(FOLDER, [first], ['\\Flagged'], add=flagged)
            t = wait_for(lambda: (b'\\Flagged' in open(flags, 'rb').read()) == flagged,
                         limit, poll)
            out['flag'].append(t)
            log('  watch=%s trial %d/%d: new %s expunge %s flag %s' % (
                watch, i + 1, trials, *('%.3f' % x if x is not None else 'miss'
                                        for x in (out['new'][-1], out['expunge'][-1],
                                                  out['flag'][-1]))))
    finally:
        m.close()
        if trace:
            shutil.copy(m.log, os.path.join(trace, 'imapfs-%s-%d.log' % (watch, port)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--trials', type=int, default=100)
    ap.add_argument('--baseline-trials', type=int, default=5,
                    help='trials with watch = off (each waits up to refresh = 30 s)')
    ap.add_argument('--rtt-ms', default='0,50')
    ap.add_argument('--poll-ms', type=float, default=10)
    ap.add_argument('--json')
    ap.add_argument('--trace', metavar='DIR',
                    help='mount with -d (protocol trace) and keep its log in DIR')
    a = ap.parse_args()

    def log(s):
        print(s, file=sys.stderr, flush=True)

    tmp = tempfile.mkdtemp(prefix='livebench', dir='/tmp')
    d = dovecot.Dovecot()
    results = []
    try:
        d.start()
        d.create_folder(FOLDER)
        for i in range(20):
            d.append(FOLDER, msg(1000 + i))
        for rtt in [int(x) for x in a.rtt_ms.split(',')]:
            proxy = None
            port = d.port_imaps
            if rtt > 0:
                proxy = TcpProxy('127.0.0.1', '127.0.0.1', d.port_imaps, delay_ms=rtt / 2.0)
                port = proxy.port
            try:
                for watch, n in (('on', a.trials), ('off', a.baseline_trials)):
                    if n <= 0:
                        continue
                    log('rtt %d ms, watch = %s, %d trials' % (rtt, watch, n))
                    r = run_mount(d, tmp, port, watch, n, a.poll_ms / 1000.0, 40.0, log,
                                  a.trace)
                    results.append({'rtt_ms': rtt, 'watch': watch, 'trials': n, **r})
            finally:
                if proxy is not None:
                    proxy.close()
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    print('| RTT | watch | trials | kind | median s | p95 s | max s | missed (> 40 s) |')
    print('|---|---|---|---|---|---|---|---|')
    for r in results:
        for kind in ('new', 'expunge', 'flag'):
            xs = [x for x in r[kind] if x is not None]
            missed = len(r[kind]) - len(xs)
            if xs:
                print('| %d ms | %s | %d | %s | %.3f | %.3f | %.3f | %d |' % (
                    r['rtt_ms'], r['watch'], r['trials'], kind, statistics.median(xs),
                    pct(xs, 95), max(xs), missed))
            else:
                print('| %d ms | %s | %d | %s | - | - | - | %d |' % (
                    r['rtt_ms'], r['watch'], r['trials'], kind, missed))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
