#!/usr/bin/python3
"""Issue 20's benchmark: what everyday tasks cost on a mailbox-shaped folder, against the floor.

Each row is one task on a fresh imapfs mount (fresh, empty cache_dir), through a proxy that
shapes the link (default 100 Mbit/s each way and 50 ms RTT) and counts the bytes each way:

  cat */subject | ls */attachments | find -type f -printf '%s\\n' | grep -rl --include=body WORD
  | cat of the largest attachment | grep -rl WORD (everything) | rg -l WORD (everything)

beside the floor computed from the corpus (bench/mailbox_corpus.py: header bytes; header plus
text-part bytes; the attachment's encoded bytes; the whole folder), the floor's transfer time at
the link's rate, and, measured in the same run through the same proxy, the best a client does:
header_client.py with `UID FETCH 1:* (BODYSTRUCTURE BODY.PEEK[HEADER])` (what aerc sends at
listing) and with `BODY.PEEK[HEADER]` alone, login included, and the wire limit
(wire_limit.py: one `UID FETCH 1:* BODY.PEEK[]`).  The issue's targets are printed beside each
row, PASS or MISS.  --fetch whole,parts runs every row once per mode in each run, interleaved
(`fetch = whole|parts` in the account config; `default` writes no key).

    sudo python3 bench/parts_bench.py --imapfs build-rel/fs/imapfs [--messages 400] [--runs 3]
        [--fetch whole,parts] [--rate-mbit 100] [--rtt-ms 50] [--rows subject,attach,...]
        [--json FILE] [--trace] [--keep]

Imports bench/ modules and tests/harness/ modules only (never a test file).  Python 3 standard
library only; must run as root (Dovecot and FUSE mounts).  See bench/README.md.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'harness'))

import bench_dovecot  # noqa: E402  (bench/: the harness Dovecot + logout counters)
import corpus  # noqa: E402  (bench/: seed_maildir)
import mailbox_corpus  # noqa: E402
import mounts  # noqa: E402  (tests/harness/mounts.py)
from tcp_proxy import TcpProxy  # noqa: E402  (tests/harness/tcp_proxy.py)

PY = '/usr/bin/python3'
FOLDER = 'Bench'
STATS = 'user.imapfs.stats'
STAT_KEYS = ('bodies_fetched', 'body_bytes_fetched', 'pieces_fetched', 'piece_bytes_fetched',
             'read_whole', 'readahead_stored')
ENV = dict(os.environ, LC_ALL='C')
NEEDLE = mailbox_corpus.NEEDLE


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# name, label, argv (run in MNT/Bench), floor key, targets
#   targets: ('bytes', x)   bytes <= x * floor
#            ('client', x)  seconds <= x * the BODYSTRUCTURE+HEADER client's seconds
#            ('wire', x)    seconds <= x * the wire limit's seconds
#            ('grep', x)    seconds <= x * the grep-everything row's seconds (same mode)
#            ('xfer',)      seconds <= 2 * the floor's transfer time + 1.5 s (every row)
ROWS = [
    ('subject', 'cat */subject', ['sh', '-c', 'cat -- */subject'], 'header',
     [('bytes', 1.3), ('client', 2.0)]),
    ('attnames', 'ls */attachments', ['sh', '-c', 'ls -- */attachments'], 'header',
     [('bytes', 1.3), ('client', 2.0)]),
    ('stat', "find -type f -printf '%s\\n'", ['find', '.', '-type', 'f', '-printf', '%s\\n'],
     'header_text', [('bytes', 1.5)]),
    ('grepbody', 'grep -rl --include=body WORD', ['grep', '-rl', '--include=body', NEEDLE, '.'],
     'header_text', [('bytes', 1.5)]),
    ('attach', 'cat the largest attachment', None, 'largest', [('bytes', 1.05)]),
    ('grepall', 'grep -rl WORD (everything)', ['grep', '-rl', NEEDLE, '.'], 'whole',
     [('wire', 3.0)]),
    ('rg', 'rg -l WORD (everything)', ['rg', '-l', NEEDLE, '.'], 'whole', [('grep', 1.2)]),
]
ROW_NAMES = [r[0] for r in ROWS]


def fmt_s(s):
    if s is None:
        return '-'
    return '%.0f ms' % (s * 1000) if s < 1 else '%.2f s' % s


def fmt_mb(b):
    if b is None:
        return '-'
    return '%.2f MB' % (b / 1e6) if b < 10e6 else '%.1f MB' % (b / 1e6)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Sample(dict):
    pass


class Bench:
    def __init__(self, args):
        self.args = args
        self.imapfs = os.path.abspath(args.imapfs)
        mounts.IMAPFS = self.imapfs
        self.tmp = tempfile.mkdtemp(prefix='imapfs-parts-', dir='/tmp')
        os.chmod(self.tmp, 0o755)   # the dovecot user must reach its home below it
        self.pwfile = os.path.join(self.tmp, 'password')
        self.d = None
        self.proxy = None
        self.mount = None
        self.seq = 0
        self.samples = {}       # (row, mode) -> [Sample]; ('client_bs'|'client_h'|'wire') too
        self.outputs = {}       # (row, mode) -> normalized output of the first run (equivalence)
        self.failures = []
        self.notes = []

    # -- setup -----------------------------------------------------------------

    def setup(self):
        a = self.args
        self.corpus = mailbox_corpus.load_or_generate(HERE, a.messages, a.seed, a.total_mb,
                                                      log=log)
        self.floors = self.corpus['floors']
        log(mailbox_corpus.summary(self.corpus))
        log('starting Dovecot in %s' % self.tmp)
        self.d = bench_dovecot.BenchDovecot(workdir=os.path.join(self.tmp, 'dv'))
        self.d.start()
        with open(self.pwfile, 'w') as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(self.d.password + '\n')
        self.d.create_folder(FOLDER)
        self.d._drop_conn()
        t0 = time.monotonic()
        corpus.seed_maildir(self.corpus, self.d.maildir_folder(FOLDER), *self.d.owner())
        self.uid_to_index = self.d.index_folder(FOLDER, self.corpus['n'])
        self.index_to_uid = {i: u for u, i in self.uid_to_index.items()}
        log('seeded %s: %d messages, %.1f MB (%.1f s)' % (
            FOLDER, self.corpus['n'], self.corpus['total_bytes'] / 1e6, time.monotonic() - t0))
        self.expected_body = {m['i'] for m in self.corpus['messages'] if m['needle']}
        big = self.floors['largest']
        self.attach_rel = os.path.join(str(self.index_to_uid[big['i']]), 'attachments',
                                       big['name'])
        # One untimed full fetch straight to Dovecot: its caches and the page cache are warm
        # for every method.
        self.client('wire', self.d.port_imaps)
        self.d.wait_sessions_ended()
        self.proxy = TcpProxy('127.0.0.1', '127.0.0.1', self.d.port_imaps,
                              delay_ms=a.rtt_ms / 2.0,
                              rate_bps=a.rate_mbit * 1e6 if a.rate_mbit else None)

    def xfer(self, nbytes):
        """The floor's transfer time at the link rate (no RTT)."""
        if not self.args.rate_mbit:
            return None
        return nbytes * 8.0 / (self.args.rate_mbit * 1e6)

    # -- the clients -------------------------------------------------------------

    def conn_args(self, port):
        d = self.d
        return ['--host', '127.0.0.1', '--port', str(port), '--user', d.user,
                '--password-file', self.pwfile, '--ca-file', d.ca_file, '--folder', FOLDER]

    def client(self, kind, port):
        if kind == 'wire':
            cmd = [PY, os.path.join(HERE, 'wire_limit.py')] + self.conn_args(port)
        else:
            items = ('(BODYSTRUCTURE BODY.PEEK[HEADER])' if kind == 'client_bs'
                     else 'BODY.PEEK[HEADER]')
            cmd = [PY, os.path.join(HERE, 'header_client.py')] + self.conn_args(port) + [
                '--items', items]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if p.returncode != 0:
            raise BenchError('%s failed: %s' % (kind, p.stderr.decode('utf-8', 'replace')[-800:]))
        res = json.loads(p.stdout)
        if res['messages'] != self.corpus['n']:
            self.failures.append('%s got %d FETCH responses, expected %d' % (
                kind, res['messages'], self.corpus['n']))
        return res

    def run_client(self, kind):
        self.d.wait_sessions_ended()
        self.proxy.reset_counters()
        res = self.client(kind, self.proxy.port)
        up, down = self.proxy.counters()
        s = Sample(seconds=res['seconds'], down=down, up=up, payload=res['bytes'])
        self.samples.setdefault((kind, None), []).append(s)
        log('  %-9s %s, %s down' % (kind, fmt_s(s['seconds']), fmt_mb(down)))

    # -- imapfs rows -------------------------------------------------------------

    def new_mount(self, mode):
        self.seq += 1
        name = 'm%d' % self.seq
        over = {'timeout': None, 'refresh': None,
                'cache_dir': os.path.join(self.tmp, 'cache-%d' % self.seq)}
        if mode != 'default':
            over['fetch'] = mode
        cfg = mounts.write_config(os.path.join(self.tmp, name + '.conf'), '127.0.0.1',
                                  self.proxy.port, self.d.user, self.d.password, self.d.ca_file,
                                  **over)
        extra = ['-o', 'stats'] + (['-d'] if self.args.trace else [])
        try:
            m = mounts.Mount(self.tmp, cfg, name=name, foreground=True, extra=extra)
        except AssertionError as e:
            raise BenchError(str(e)[-1500:])
        m.cache_dir = over['cache_dir']
        self.mount = m
        return m

    def close_mount(self, m):
        m.close()
        self.mount = None
        shutil.rmtree(m.cache_dir, ignore_errors=True)
        try:
            os.rmdir(m.path)
        except OSError:
            pass
        if not self.args.trace:
            try:
                os.unlink(m.log)
            except OSError:
                pass

    def stats(self, m):
        try:
            text = os.getxattr(m.path, STATS).decode()
        except OSError as e:
            return {'error': str(e)}
        return {k: int(v) for k, v in (f.split('=', 1) for f in text.split() if '=' in f)
                if v.isdigit()}

    def run_row(self, row, mode):
        name, label, argv, _floor, _targets = row
        if argv is None:
            argv = ['cat', '--', self.attach_rel]
        self.d.wait_sessions_ended()
        off = self.d.log_offset()
        m = self.new_mount(mode)
        top = os.path.join(m.path, FOLDER)
        s = Sample()
        try:
            self.proxy.reset_counters()
            with tempfile.TemporaryFile(dir=self.tmp) as out, \
                    tempfile.TemporaryFile(dir=self.tmp) as err:
                t0 = time.monotonic()
                # The task enters the mount itself (sh's cd), not through Popen(cwd=):
                # CPython 3.11 may vfork and chdir in the child while this process's thread
                # holds the GIL, and the first lookup in a fresh mount needs the listing,
                # which goes through tcp_proxy's threads in this very process: every run
                # then stalled for imapfs's 30 s timeout.
                p = subprocess.Popen(['sh', '-c', 'cd -- "$1" && shift && exec "$@"', 'sh',
                                      top] + list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=err, env=ENV)
                try:
                    rc = p.wait(timeout=self.args.timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    rc = None
                s['seconds'] = time.monotonic() - t0
                s['up'], s['down'] = self.proxy.counters()
                s['stats'] = self.stats(m)
                out.seek(0)
                err.seek(0)
                odata, edata = out.read(), err.read()
            if rc is None:
                self.failures.append('%s [%s]: no answer within %g s (killed); stats %s' % (
                    label, mode, self.args.timeout, s['stats']))
                s['hang'] = True
            elif rc not in (0, 1) or (edata and name != 'attnames'):
                self.failures.append('%s [%s]: exit %s: %s' % (
                    label, mode, rc, edata.decode('utf-8', 'replace')[-400:]))
            self.check(name, label, mode, odata, s)
        finally:
            self.close_mount(m)
        up, down = self.proxy.counters()
        s['late_down'] = down - s['down']   # moved after the task ended, before unmount
        self.d.wait_sessions_ended()
        cnt = self.d.session_counts(off)
        s['srv_bodies'] = cnt['body_count']
        self.samples.setdefault((name, mode), []).append(s)
        st = s['stats']
        log('  %-9s %-7s %s, %s down (+%s after), pieces %s (%s), whole bodies %s, read_whole '
            '%s, readahead_stored %s' % (
                name, mode, fmt_s(s['seconds']), fmt_mb(s['down']), fmt_mb(s['late_down']),
                st.get('pieces_fetched'), fmt_mb(st.get('piece_bytes_fetched')),
                st.get('bodies_fetched'), st.get('read_whole'), st.get('readahead_stored')))

    def dirs_of(self, odata):
        found = set()
        for line in odata.decode('utf-8', 'replace').splitlines():
            first = line.lstrip('./').split('/')[0]
            if first.isdigit() and int(first) in self.uid_to_index:
                found.add(self.uid_to_index[int(first)])
        return found

    def check(self, name, label, mode, odata, s):
        """What the task printed is right, and the same in every mode."""
        c = self.corpus
        if name == 'subject':
            norm = odata
            n = len(odata.splitlines())
            if n != c['n']:
                self.failures.append('%s [%s]: %d lines, expected %d' % (label, mode, n, c['n']))
        elif name == 'attnames':
            norm = odata
            names = [x for x in odata.decode('utf-8', 'replace').splitlines()
                     if x and not x.endswith('/attachments:')]
            want = sum(len(m['atts']) for m in c['messages'])
            s['names'] = len(names)
            if len(names) != want:
                self.failures.append('%s [%s]: %d names, the corpus has %d attachments' % (
                    label, mode, len(names), want))
        elif name == 'stat':
            norm = b'\n'.join(sorted(odata.splitlines()))
            s['files'] = len(odata.splitlines())
        elif name == 'grepbody':
            norm = b'\n'.join(sorted(odata.splitlines()))
            found = self.dirs_of(odata)
            if found != self.expected_body:
                self.failures.append('%s [%s]: found messages %s, expected %s' % (
                    label, mode, sorted(found), sorted(self.expected_body)))
        elif name == 'attach':
            norm = hashlib.sha256(odata).hexdigest().encode()
            if norm.decode() != self.floors['largest']['sha256']:
                self.failures.append('%s [%s]: %d bytes, not the attachment (%d bytes)' % (
                    label, mode, len(odata), self.floors['largest']['decoded']))
        else:
            norm = b'\n'.join(sorted(odata.splitlines()))
            found = self.dirs_of(odata)
            s['files'] = len(odata.splitlines())
            if not self.expected_body <= found:
                self.failures.append('%s [%s]: missed messages %s' % (
                    label, mode, sorted(self.expected_body - found)))
        prev = self.outputs.setdefault(name, (mode, norm))
        if prev[1] != norm:
            self.failures.append('%s: the output with fetch=%s differs from fetch=%s' % (
                label, mode, prev[0]))

    # -- driver ----------------------------------------------------------------

    def run(self):
        a = self.args
        rows = [r for r in ROWS if r[0] in a.rows]
        for k in range(a.runs):
            log('run %d/%d' % (k + 1, a.runs))
            for kind in ('client_bs', 'client_h', 'wire'):
                self.run_client(kind)
            for row in rows:
                for mode in a.fetch:
                    try:
                        self.run_row(row, mode)
                    except BenchError as e:
                        log('parts_bench.py: %s' % e)
                        self.failures.append('%s [%s]: %s' % (row[1], mode, e))
                        if self.mount is not None:
                            self.close_mount(self.mount)

    def cleanup(self):
        if self.mount is not None:
            try:
                self.close_mount(self.mount)
            except Exception as e:  # noqa: BLE001 -- best effort on the way out
                log('cleanup: %s' % e)
        if self.proxy is not None:
            self.proxy.close()
        if self.d is not None:
            self.d.cleanup()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log('kept %s' % self.tmp)

    # -- report ----------------------------------------------------------------

    def median_of(self, key, field):
        return med([s.get(field) for s in self.samples.get(key, [])])

    def report(self):
        a = self.args
        c = self.corpus
        fl = self.floors
        out = []
        add = out.append
        add('')
        add('imapfs partial-fetch benchmark: %s' % mailbox_corpus.summary(c))
        add('link: %s, RTT %g ms (tcp_proxy, %g ms each way); runs %d; fetch modes %s; '
            'imapfs %s' % ('%g Mbit/s each way' % a.rate_mbit if a.rate_mbit else 'no rate cap',
                           a.rtt_ms, a.rtt_ms / 2.0, a.runs, ','.join(a.fetch), self.imapfs))
        add('')
        bs_s = self.median_of(('client_bs', None), 'seconds')
        wire_s = self.median_of(('wire', None), 'seconds')
        hdr = '%-44s %9s %10s %10s %7s %9s' % ('client (through the same proxy)', 'median',
                                                'down', 'floor', 'ratio', 'floor xfer')
        add(hdr)
        add('-' * len(hdr))
        for kind, label, floor in (
                ('client_bs', 'UID FETCH 1:* (BODYSTRUCTURE BODY.PEEK[HEADER])', 'header'),
                ('client_h', 'UID FETCH 1:* BODY.PEEK[HEADER]', 'header'),
                ('wire', '(c) wire limit: UID FETCH 1:* BODY.PEEK[]', 'whole')):
            secs = self.median_of((kind, None), 'seconds')
            down = self.median_of((kind, None), 'down')
            add('%-44s %9s %10s %10s %6.2fx %9s' % (
                label, fmt_s(secs), fmt_mb(down), fmt_mb(fl[floor]), down / fl[floor],
                fmt_s(self.xfer(fl[floor]))))
        add('  client rows: login + EXAMINE + FETCH, from connect(); the wire limit: the FETCH '
            'alone (as in bench.py)')
        add('')
        hdr = '%-30s %-7s %9s %10s %10s %8s %9s  %s' % (
            'task (fresh mount each)', 'fetch', 'median', 'down', 'floor', 'ratio',
            'floor xfer', 'targets')
        add(hdr)
        add('-' * max(len(hdr), 120))
        verdicts = []
        for name, label, _argv, floor, targets in ROWS:
            if name not in a.rows:
                continue
            for mode in a.fetch:
                ss = self.samples.get((name, mode))
                if not ss:
                    continue
                secs = med([s['seconds'] for s in ss])
                down = med([s['down'] for s in ss])
                f = fl[floor]['encoded'] if floor == 'largest' else fl[floor]
                tv = []
                for t in targets + [('xfer',)]:
                    if t[0] == 'bytes':
                        r = down / f
                        tv.append(('bytes <= %gx floor' % t[1], r <= t[1], '%.2fx' % r))
                    elif t[0] == 'client':
                        lim = t[1] * bs_s
                        tv.append(('<= %gx client %s' % (t[1], fmt_s(bs_s)), secs <= lim,
                                   '%.2fx' % (secs / bs_s)))
                    elif t[0] == 'wire':
                        lim = t[1] * wire_s
                        tv.append(('<= %gx wire %s' % (t[1], fmt_s(wire_s)), secs <= lim,
                                   '%.2fx' % (secs / wire_s)))
                    elif t[0] == 'grep':
                        g = med([s['seconds'] for s in self.samples.get(('grepall', mode), [])])
                        if g:
                            tv.append(('<= %gx grep -rl %s' % (t[1], fmt_s(g)), secs <= t[1] * g,
                                       '%.2fx' % (secs / g)))
                    elif t[0] == 'xfer' and self.xfer(f) is not None:
                        lim = 2 * self.xfer(f) + 1.5
                        tv.append(('<= 2x xfer + 1.5 s = %s' % fmt_s(lim), secs <= lim,
                                   fmt_s(secs)))
                for what, ok, val in tv:
                    verdicts.append((label, mode, what, ok, val))
                add('%-30s %-7s %9s %10s %10s %7.2fx %9s  %s' % (
                    label[:30], mode, fmt_s(secs), fmt_mb(down), fmt_mb(f), down / f,
                    fmt_s(self.xfer(f)),
                    ' '.join('%s' % ('PASS' if ok else 'MISS') for _w, ok, _v in tv) or
                    '- (rg is compared with the grepall row: run both)'))
        add('')
        add('per row, medians: imapfs stats (user.imapfs.stats) at the end of the task, bytes after '
            'the task (before unmount), message bodies Dovecot counted (fetch_body_count), runs')
        hdr = '%-30s %-7s %7s %10s %7s %6s %7s %9s %6s %5s %s' % (
            'task', 'fetch', 'bodies', 'body MB', 'pieces', 'pc MB', 'r_whole', 'readahead',
            'after', 'srv', 'runs (s)')
        add(hdr)
        add('-' * len(hdr))
        for name, label, _argv, _floor, _t in ROWS:
            for mode in a.fetch:
                ss = self.samples.get((name, mode))
                if not ss:
                    continue

                def ms(k):
                    return med([s['stats'].get(k) for s in ss])
                bb, pb = ms('body_bytes_fetched'), ms('piece_bytes_fetched')
                add('%-30s %-7s %7s %10s %7s %6s %7s %9s %6s %5s %s' % (
                    label[:30], mode, ms('bodies_fetched'),
                    '-' if bb is None else '%.2f' % (bb / 1e6), ms('pieces_fetched'),
                    '-' if pb is None else '%.2f' % (pb / 1e6), ms('read_whole'),
                    ms('readahead_stored'), fmt_mb(med([s['late_down'] for s in ss])),
                    med([s['srv_bodies'] for s in ss]),
                    '/'.join('%.2f' % s['seconds'] for s in ss)))
        add('')
        add('targets (issue 20), medians:')
        for label, mode, what, ok, val in verdicts:
            add('  %-4s %-30s %-7s %s: %s' % ('PASS' if ok else 'MISS', label[:30], mode, what,
                                              val))
        if self.failures:
            add('')
            add('!!! %d CHECK(S) FAILED:' % len(self.failures))
            for f in self.failures:
                add('!!!   ' + f)
        else:
            add('')
            add('checks: every task printed the expected answer, identical in every fetch mode')
        return '\n'.join(out)

    def to_json(self):
        return {'args': {k: v for k, v in vars(self.args).items()},
                'floors': self.floors, 'total_bytes': self.corpus['total_bytes'],
                'samples': {'%s/%s' % k: v for k, v in self.samples.items()},
                'failures': self.failures}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--imapfs', required=True, help='the imapfs binary')
    ap.add_argument('--messages', type=int, default=400)
    ap.add_argument('--total-mb', type=float, default=None,
                    help='folder size to aim at (default 100 MB per 400 messages)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--runs', type=int, default=3, help='runs per row; medians (default 3)')
    ap.add_argument('--fetch', default='default',
                    help='comma-separated: default (no key), whole, parts (e.g. whole,parts)')
    ap.add_argument('--rate-mbit', type=float, default=100.0,
                    help='link rate each way, Mbit/s (0: no cap; default 100)')
    ap.add_argument('--rtt-ms', type=float, default=50.0, help='round-trip time (default 50)')
    ap.add_argument('--rows', default=','.join(ROW_NAMES),
                    help='comma-separated subset of: %s' % ','.join(ROW_NAMES))
    ap.add_argument('--timeout', type=float, default=300.0,
                    help='a task still running after this many seconds is killed and reported')
    ap.add_argument('--trace', action='store_true',
                    help='mount with -d and keep each mount\'s trace (implies --keep)')
    ap.add_argument('--json', help='also write every sample here')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    args = ap.parse_args(argv)
    args.fetch = [x.strip() for x in args.fetch.split(',') if x.strip()]
    args.rows = [x.strip() for x in args.rows.split(',') if x.strip()]
    if args.trace:
        args.keep = True
    for x in args.fetch:
        if x not in ('default', 'whole', 'parts'):
            ap.error('--fetch: %r is not default, whole or parts' % x)
    for x in args.rows:
        if x not in ROW_NAMES:
            ap.error('--rows: unknown row %r' % x)
    if os.geteuid() != 0:
        log('parts_bench.py: run me as root (Dovecot and FUSE mounts need it)')
        return 2
    help_text = subprocess.run([args.imapfs, '--help'], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT).stdout.decode('utf-8', 'replace')
    if any(x != 'default' for x in args.fetch) and 'fetch = ' not in help_text:
        log('parts_bench.py: this imapfs does not know the key fetch (see its --help); '
            'use --fetch default')
        return 2

    def on_signal(signum, frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_signal)

    b = Bench(args)
    t0 = time.monotonic()
    try:
        b.setup()
        b.run()
    except KeyboardInterrupt:
        log('parts_bench.py: interrupted')
        b.cleanup()
        return 130
    except (BenchError, bench_dovecot.dovecot.HarnessError) as e:
        log('parts_bench.py: %s' % e)
        b.failures.append(str(e))
        if not b.samples:
            b.cleanup()
            return 1
    b.cleanup()
    print(b.report())
    print('\n(total wall time %.0f s)' % (time.monotonic() - t0))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(b.to_json(), f, indent=1)
    return 1 if b.failures else 0


if __name__ == '__main__':
    sys.exit(main())
