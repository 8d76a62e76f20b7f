#!/usr/bin/python3
"""imapfs's main benchmark: grep through a mailbox, against the alternatives, at two latencies.

Run through bench/run.sh (it builds imapfs first); see bench/README.md for what every row means.
One run:

  1. loads (or generates and caches in bench/.corpus-N/) a deterministic synthetic corpus,
     starts a throwaway Dovecot (tests/harness, via bench_dovecot.BenchDovecot, which adds
     per-session fetch counters and an opt-in raw log), writes the corpus straight into the
     Maildir of folder "Bench" and lets Dovecot index it;
  2. for every RTT in --rtt-ms (0 = direct on loopback; otherwise tests/harness/tcp_proxy.py's
     TcpProxy in front, delay RTT/2 each way) measures, with medians over --repeat runs:
        imapfs  ls -l cold, grep cold, grep warm, grep after a remount,
        (a) the naive client (naive_grep.py), (b) mbsync pull + grep, (c) the wire limit
        (wire_limit.py), (d) grep over a local copy of the decoded bodies;
     and counts, server-side, the message bodies each fetched (Dovecot's logout counters);
  3. checks that every method found the same needle messages, and prints the table and the
     issue's targets, met or missed.

With --ls-scaling it also lists folders of 500, 5,000 and 50,000 small messages and counts the
IMAP commands imapfs sent for each listing (from Dovecot's raw log).

Every imapfs mount gets a fresh, empty XDG_CACHE_HOME (and cache_dir, if this imapfs knows that
key) under the run's temporary directory, so the user's cache is never touched and "cold" means
empty; "remount" reuses the cache of the mount before it.  The server is warm for every method
(its files and index are in memory), so the numbers compare clients, not disks.

Python 3 standard library only; must run as root (Dovecot and FUSE mounts).
"""

import argparse
import json
import os
import re
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

import bench_dovecot  # noqa: E402
import corpus  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

PY = '/usr/bin/python3'
FOLDER = 'Bench'
LS_SIZES = (500, 5000, 50000)
GREP_ENV = dict(os.environ, LC_ALL='C')


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------------------
# imapfs mounts

def is_mounted(path):
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split(' ')
            if len(fields) > 4 and fields[4] == path:
                return True
    return False


def imapfs_features(imapfs):
    """Config keys this imapfs knows, from its --help (the daemon is changing under us)."""
    out = subprocess.run([imapfs, '--help'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = out.stdout.decode('utf-8', 'replace')
    keys = set(re.findall(r'^\s+([a-z_]+) = ', text, re.M))
    return keys, text


class Mount:
    """One imapfs process in the foreground (-f), so we know its PID for VmHWM and can wait for
    it to exit (it logs out of every IMAP connection on the way out)."""

    def __init__(self, bench, port, cache_home, tag, extra_opts=()):
        self.b = bench
        self.extra_opts = list(extra_opts)   # more -o options, e.g. 'stats'
        self.mnt = bench.mnt
        self.cache_home = cache_home
        self.tag = tag
        self.proc = None
        self.log_offset = None
        self.drop_cache = False
        conf = os.path.join(bench.tmp, 'imapfs-%s.conf' % tag)
        d = bench.d
        lines = ['[default]', 'host = 127.0.0.1', 'port = %d' % port, 'tls = imaps',
                 'user = %s' % d.user, 'pass_cmd = cat %s' % bench.pwfile,
                 'ca_file = %s' % d.ca_file]
        if 'cache_dir' in bench.features:
            lines.append('cache_dir = %s' % os.path.join(cache_home, 'imapfs'))
        if bench.args.cache_size and 'cache_size' in bench.features:
            lines.append('cache_size = %s' % bench.args.cache_size)
        for kv in bench.args.imapfs_config or ():
            key, _, value = kv.partition('=')
            lines.append('%s = %s' % (key.strip(), value.strip()))
        with open(conf, 'w') as f:
            os.fchmod(f.fileno(), 0o600)
            f.write('\n'.join(lines) + '\n')
        self.conf = conf

    def __enter__(self):
        os.makedirs(self.cache_home, exist_ok=True)
        self.log_offset = self.b.d.log_offset()
        env = dict(os.environ, XDG_CACHE_HOME=self.cache_home)
        self.errlog = os.path.join(self.b.tmp, 'imapfs-%s.log' % self.tag)
        with open(self.errlog, 'ab') as err:
            opts = ['-o', ','.join(['config=' + self.conf] + self.extra_opts)]
            self.proc = subprocess.Popen([self.b.imapfs, '-f'] + opts + [self.mnt], stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, env=env)
        self.b.live_mount = self
        deadline = time.monotonic() + 60
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None:
                raise BenchError('imapfs exited (%d) before mounting: %s' % (
                    self.proc.returncode, self.tail()))
            if time.monotonic() > deadline:
                raise BenchError('imapfs did not mount within 60 s: %s' % self.tail())
            time.sleep(0.02)
        return self

    def tail(self):
        try:
            with open(self.errlog, 'rb') as f:
                return f.read()[-1500:].decode('utf-8', 'replace')
        except OSError:
            return ''

    def vm_hwm_kb(self):
        try:
            with open('/proc/%d/status' % self.proc.pid) as f:
                m = re.search(r'^VmHWM:\s+(\d+) kB', f.read(), re.M)
                return int(m.group(1)) if m else None
        except OSError:
            return None

    def unmount(self):
        """Unmount, wait for imapfs to exit and for its IMAP sessions to end; return the
        Dovecot counters of those sessions."""
        if self.proc is None:
            return None
        if is_mounted(self.mnt):
            r = subprocess.run(['fusermount3', '-u', self.mnt], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            if r.returncode != 0:
                time.sleep(1)
                subprocess.run(['fusermount3', '-u', '-z', self.mnt])
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.b.live_mount = None
        if self.drop_cache:
            shutil.rmtree(self.cache_home, ignore_errors=True)
        self.b.d.wait_sessions_ended()
        return self.b.d.session_counts(self.log_offset)

    def __exit__(self, *exc):
        if self.proc is not None:
            self.unmount()
        return False


# ---------------------------------------------------------------------------
# result bookkeeping

class Row:
    """One task at one RTT: timing samples and whatever else was observed."""

    def __init__(self, key, label):
        self.key = key
        self.label = label
        self.times = []
        self.bodies = []
        self.rss_kb = []
        self.found = None      # set of message indices (None: not a search)
        self.expected = None
        self.note = ''
        self.extra = {}
        self.capped = False    # fewer runs than asked, because it is slow

    def median(self):
        return statistics.median(self.times) if self.times else None

    def to_json(self):
        return {'label': self.label, 'times': self.times, 'median': self.median(),
                'bodies': self.bodies, 'rss_kb': self.rss_kb,
                'found': sorted(self.found) if self.found is not None else None,
                'note': self.note, 'extra': self.extra, 'capped': self.capped}


def fmt_time(s):
    if s is None:
        return '-'
    if s < 1:
        return '%.0f ms' % (s * 1000)
    if s < 100:
        return '%.2f s' % s
    return '%.0f s' % s


def fmt_mb(kb):
    return '-' if kb is None else '%.0f MB' % (kb / 1024)


# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.imapfs = os.path.abspath(args.imapfs)
        self.features, self.help_text = imapfs_features(self.imapfs)
        self.source = source_state()
        self.tmp = tempfile.mkdtemp(prefix='imapfs-bench-', dir='/tmp')
        os.chmod(self.tmp, 0o755)   # the dovecot user must reach its home below it
        self.mnt = os.path.join(self.tmp, 'mnt')
        os.makedirs(self.mnt)
        self.pwfile = os.path.join(self.tmp, 'password')
        self.d = None
        self.proxy = None
        self.live_mount = None
        self.results = {}       # rtt -> {key: Row}
        self.ls_scaling = {}    # rtt -> [dict]
        self.failures = []
        self.local_tree = None
        self.local_row = None
        self.cache_seq = 0
        self.clean_cold = {}    # rtt -> bodies fetched by cold-only greps

    # -- setup -----------------------------------------------------------------

    def setup(self):
        a = self.args
        self.corpus = corpus.load_or_generate(HERE, a.messages, a.seed, log=log)
        self.expected = {m['i'] for m in self.corpus['messages'] if m['needle']}
        self.expected_raw = {m['i'] for m in self.corpus['messages'] if m['needle_raw']}
        self.ls_corpora = {}
        if a.ls_scaling:
            for n in LS_SIZES:
                self.ls_corpora[n] = corpus.load_or_generate(HERE, n, a.seed, small=True,
                                                             log=log)
        log('starting Dovecot in %s' % self.tmp)
        self.d = bench_dovecot.BenchDovecot(workdir=os.path.join(self.tmp, 'dv'))
        self.d.start()
        with open(self.pwfile, 'w') as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(self.d.password + '\n')
        folders = [(FOLDER, self.corpus)] + [('LS%d' % n, c)
                                             for n, c in sorted(self.ls_corpora.items())]
        for name, c in folders:
            self.d.create_folder(name)
        self.d._drop_conn()
        self.uid_maps = {}
        for name, c in folders:
            t0 = time.monotonic()
            corpus.seed_maildir(c, self.d.maildir_folder(name), *self.d.owner())
            self.uid_maps[name] = self.d.index_folder(name, c['n'])
            log('seeded %s: %d messages, %.1f MB (%.1f s)' % (
                name, c['n'], c['total_bytes'] / 1e6, time.monotonic() - t0))
        self.uid_to_index = self.uid_maps[FOLDER]
        # One untimed full fetch, so Dovecot's caches and the page cache are warm for everyone.
        self.run_wire(self.d.port_imaps)
        self.d.wait_sessions_ended()

    def drop_cache_later(self, mount):
        """Remove this mount's cache directory once it is unmounted (the disk fills up)."""
        mount.drop_cache = True

    def cache_home(self):
        self.cache_seq += 1
        return os.path.join(self.tmp, 'cache-%d' % self.cache_seq)

    # -- helpers ---------------------------------------------------------------

    def repeats(self, row, want, fn):
        """Call fn() up to `want` times, each appending to row; stop early once a run took
        longer than --slow-seconds (then the row says how many runs it has)."""
        for i in range(want):
            fn()
            if i + 1 < want and row.times and row.times[-1] > self.args.slow_seconds:
                row.capped = True
                break

    def counted(self, fn):
        """Run fn(); return (its result, Dovecot counters of the sessions it ran)."""
        off = self.d.log_offset()
        res = fn()
        self.d.wait_sessions_ended()
        return res, self.d.session_counts(off)

    def child(self, cmd):
        """Run a child process; return (seconds, stdout bytes, peak RSS in KB, stderr).

        The peak RSS is VmHWM polled from /proc while it runs (the rusage of a child forked
        from this big Python process would count this process's size); our own Python helpers
        also report theirs at exit, which the callers prefer."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=GREP_ENV)
            hwm = None
            while p.poll() is None:
                try:
                    with open('/proc/%d/status' % p.pid) as f:
                        m = re.search(r'^VmHWM:\s+(\d+) kB', f.read(), re.M)
                    if m:
                        hwm = max(hwm or 0, int(m.group(1)))
                except OSError:
                    pass
                time.sleep(0.01)
            secs = time.monotonic() - t0
            out.seek(0)
            err.seek(0)
            odata, edata = out.read(), err.read()
        if p.returncode not in (0, 1):
            raise BenchError('%s failed (%d): %s' % (' '.join(cmd[:3]), p.returncode,
                                                     edata.decode('utf-8', 'replace')[-800:]))
        return secs, odata, hwm, edata

    def grep_uids(self, out, top):
        """Message indices from grep -l output paths TOP/<uid>/body."""
        found = set()
        bad = []
        for line in out.decode('utf-8', 'replace').splitlines():
            rel = os.path.relpath(line, top).split(os.sep)
            if len(rel) == 2 and rel[1] == 'body' and rel[0].isdigit():
                idx = self.uid_to_index.get(int(rel[0]))
                if idx is not None:
                    found.add(idx)
                    continue
            bad.append(line)
        if bad:
            self.failures.append('grep printed unexpected paths: %r' % bad[:5])
        return found

    def grep(self, top):
        """grep -rl --include=body NEEDLE top: (seconds, indices found)."""
        t0 = time.monotonic()
        p = subprocess.run(['grep', '-rl', '--include=body', corpus.NEEDLE, top],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=GREP_ENV)
        secs = time.monotonic() - t0
        if p.returncode not in (0, 1) or p.stderr:
            self.failures.append('grep over %s: exit %d: %s' % (
                top, p.returncode, p.stderr.decode('utf-8', 'replace')[-500:]))
        return secs, self.grep_uids(p.stdout, top)

    def check_found(self, row, found, expected):
        if row.found is None:
            row.found = found
            row.expected = expected
        elif found != row.found:
            self.failures.append('%s found different messages on different runs' % row.label)
        if found != expected:
            self.failures.append(
                'MISMATCH: %s found %d needle messages, expected %d (missing %s, extra %s)' % (
                    row.label, len(found), len(expected), sorted(expected - found)[:10],
                    sorted(found - expected)[:10]))

    # -- alternatives ------------------------------------------------------------

    def conn_args(self, port):
        return ['--host', '127.0.0.1', '--port', str(port), '--user', self.d.user,
                '--password-file', self.pwfile, '--ca-file', self.d.ca_file,
                '--folder', FOLDER]

    def run_wire(self, port):
        _secs, out, rss, _err = self.child([PY, os.path.join(HERE, 'wire_limit.py')] +
                                           self.conn_args(port))
        res = json.loads(out)
        res['rss_kb'] = res.get('rss_kb') or rss
        return res

    def task_wire(self, rows, port, k):
        row = rows.setdefault('c', Row('c', '(c) wire limit: one UID FETCH 1:* BODY.PEEK[]'))

        def once():
            res, cnt = self.counted(lambda: self.run_wire(port))
            row.times.append(res['seconds'])
            row.bodies.append(cnt['body_count'])
            row.rss_kb.append(res['rss_kb'])
            row.extra['MB/s'] = round(res['bytes'] / res['seconds'] / 1e6, 1)
            if cnt['body_count'] != self.corpus['n']:
                self.failures.append('server-side counting: the wire limit fetch was counted '
                                     'as %d bodies, expected %d' % (cnt['body_count'],
                                                                    self.corpus['n']))
            if res['messages'] != self.corpus['n']:
                self.failures.append('wire limit got %d FETCH responses, expected %d' % (
                    res['messages'], self.corpus['n']))
        self.repeats(row, k, once)

    def task_naive(self, rows, port, k):
        row = rows.setdefault('a', Row('a', '(a) naive: SEARCH, FETCH+parse one at a time'))

        def once():
            def go():
                return self.child([PY, os.path.join(HERE, 'naive_grep.py')] +
                                  self.conn_args(port) + [corpus.NEEDLE])
            (secs, out, rss, _), cnt = self.counted(go)
            res = json.loads(out)
            row.rss_kb.append(res.get('rss_kb') or rss)
            row.times.append(res['seconds'])
            row.bodies.append(cnt['body_count'])
            found = {self.uid_to_index[u] for u in res['uids']}
            self.check_found(row, found, self.expected)
        self.repeats(row, k, once)
        row.note = 'excl. login; Python imaplib + email'

    def task_mbsync(self, rows, port, k):
        row = rows.setdefault('b', Row('b', '(b) mbsync pull, then grep -rl the Maildir'))
        conf = os.path.join(self.tmp, 'mbsyncrc-%d' % port)
        near = os.path.join(self.tmp, 'mbsync-near')
        with open(conf, 'w') as f:
            f.write(MBSYNCRC.format(port=port, user=self.d.user, pwfile=self.pwfile,
                                    ca=self.d.ca_file, near=near, folder=FOLDER))

        def once():
            shutil.rmtree(near, ignore_errors=True)
            os.makedirs(near)

            def go():
                return self.child(['mbsync', '-q', '-c', conf, 'bench'])
            (t_sync, _, rss, err), cnt = self.counted(go)
            row.rss_kb.append(rss)
            t0 = time.monotonic()
            p = subprocess.run(['grep', '-rl', corpus.NEEDLE, os.path.join(near, FOLDER)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=GREP_ENV)
            t_grep = time.monotonic() - t0
            if p.returncode not in (0, 1):
                raise BenchError('grep over the mbsync Maildir failed: %s' % p.stderr)
            found = set()
            for path in p.stdout.decode().splitlines():
                with open(path, 'rb') as fh:
                    m = re.search(rb'<bench-(\d+)\.', fh.read(4096))
                if m:
                    found.add(int(m.group(1)))
            row.times.append(t_sync + t_grep)
            row.bodies.append(cnt['body_count'])
            row.extra.setdefault('mbsync_s', []).append(round(t_sync, 3))
            row.extra.setdefault('grep_s', []).append(round(t_grep, 3))
            nfiles = sum(len(fs) for _, _, fs in os.walk(os.path.join(near, FOLDER, 'cur'))) + \
                sum(len(fs) for _, _, fs in os.walk(os.path.join(near, FOLDER, 'new')))
            if nfiles != self.corpus['n']:
                self.failures.append('mbsync pulled %d messages, expected %d' % (
                    nfiles, self.corpus['n']))
            # It greps raw MIME, so it can only find what is not base64 (see corpus.py).
            self.check_found(row, found, self.expected_raw)
        self.repeats(row, k, once)
        shutil.rmtree(near, ignore_errors=True)
        missed = len(self.expected - self.expected_raw)
        row.note = 'greps raw MIME: cannot see %d needle msgs in base64 bodies' % missed \
            if missed else 'greps raw MIME'

    def task_local(self, k):
        row = Row('d', '(d) grep -rl over a local copy of the bodies')
        top = os.path.join(self.local_tree, FOLDER)

        def once():
            secs, found = self.grep(top)
            row.times.append(secs)
            row.bodies.append(0)
            self.check_found(row, found, self.expected)
        self.repeats(row, k, once)
        row.note = 'on %s' % ('tmpfs' if self.local_tree.startswith('/dev/shm') else '/tmp')
        self.local_row = row

    def copy_bodies(self, src_top):
        """The local tree for (d): FOLDER/<uid>/body, copied out of a warm mount."""
        base = '/dev/shm' if os.access('/dev/shm', os.W_OK) else self.tmp
        self.local_tree = tempfile.mkdtemp(prefix='imapfs-bench-local-', dir=base)
        dst_top = os.path.join(self.local_tree, FOLDER)
        for uid in sorted(self.uid_to_index):
            src = os.path.join(src_top, str(uid), 'body')
            dst = os.path.join(dst_top, str(uid))
            os.makedirs(dst)
            shutil.copyfile(src, os.path.join(dst, 'body'))

    # -- imapfs ------------------------------------------------------------------

    def task_ls_cold(self, rows, port, rtt, k):
        row = rows.setdefault('ls', Row('ls', '1 imapfs: ls -l, cold'))
        top = os.path.join(self.mnt, FOLDER)

        def once():
            self.d.rawlog_on()
            with Mount(self, port, self.cache_home(), 'ls-%d' % rtt) as m:
                self.drop_cache_later(m)
                t0 = time.monotonic()
                p = subprocess.run(['ls', '-l', top], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=GREP_ENV)
                secs = time.monotonic() - t0
                rss = m.vm_hwm_kb()
                cnt = m.unmount()
            cmds = self.d.rawlog_off()
            entries = len(p.stdout.splitlines()) - 1
            if p.returncode != 0 or entries != self.corpus['n']:
                self.failures.append('ls -l %s: exit %d, %d entries (expected %d): %s' % (
                    top, p.returncode, entries, self.corpus['n'], p.stderr[-300:]))
            row.times.append(secs)
            row.bodies.append(cnt['body_count'])
            if cnt['body_count']:
                self.failures.append('ls -l made Dovecot send %d message bodies, expected 0' %
                                     cnt['body_count'])
            row.rss_kb.append(rss)
            row.extra['imap_commands'] = len(cmds)
            row.extra['commands'] = summarize_commands(cmds)
        self.repeats(row, k, once)
        row.note = '%d IMAP commands in the session: %s' % (row.extra['imap_commands'],
                                                           row.extra['commands'])

    def task_grep(self, rows, port, rtt, k):
        cold = rows.setdefault('cold', Row('cold', '2 imapfs: grep -rl, cold'))
        warm = rows.setdefault('warm', Row('warm', '3 imapfs: grep -rl, warm (same mount)'))
        remount = rows.setdefault('remount', Row('remount', '4 imapfs: grep -rl, after remount'))
        top = os.path.join(self.mnt, FOLDER)
        # Cold-only mounts give exact server-side counts for a cold grep; the last mount also
        # runs the warm greps, whose count is that mount's total minus a cold-only count.  When
        # a cold grep is slow (> --slow-seconds) and another RTT already gave a cold-only count,
        # the first mount is also the last, and that count is used.
        clean = []
        n_cold = max(2, k)
        cache = None
        i = 0
        while True:
            last = i == n_cold - 1
            cache = self.cache_home()
            with Mount(self, port, cache, 'grep-%d' % rtt) as m:
                secs, found = self.grep(top)
                cold.times.append(secs)
                self.check_found(cold, found, self.expected)
                slow = secs > self.args.slow_seconds
                if slow and not last and (clean or self.clean_cold):
                    cold.capped = True
                    last = True
                if last:
                    for j in range(k):
                        secs, found = self.grep(top)
                        warm.times.append(secs)
                        self.check_found(warm, found, self.expected)
                        if secs > self.args.slow_seconds and j + 1 < k:
                            warm.capped = True
                            break
                rss = m.vm_hwm_kb()
                cold.rss_kb.append(rss)
                if last:
                    warm.rss_kb.append(rss)
                cnt = m.unmount()
            if last:
                cold.extra['cold+warm mount bodies'] = cnt['body_count']
                base = clean or [c for counts in self.clean_cold.values() for c in counts]
                if base:
                    warm.bodies.append(cnt['body_count'] - statistics.median(base))
                if not clean and base:
                    cold.extra['cold count from'] = 'another RTT (slow here)'
                break
            shutil.rmtree(cache, ignore_errors=True)
            clean.append(cnt['body_count'])
            cold.bodies.append(cnt['body_count'])
            if cnt['body_count'] != self.corpus['n']:
                # Fewer: the counting is broken; more: imapfs fetched some messages twice.
                self.failures.append('[rtt %g ms] a cold grep made Dovecot send %d bodies, '
                                     'expected %d (each message once)' % (
                                         rtt, cnt['body_count'], self.corpus['n']))
            if slow and n_cold > i + 2:
                cold.capped = True     # slow: go straight to the last (cold + warm) mount
                n_cold = i + 2
            i += 1
        if clean:
            self.clean_cold[rtt] = clean
        if self.local_tree is None:
            # A mount of its own (direct, not through the proxy), so the copy counts nowhere.
            with Mount(self, self.d.port_imaps, self.cache_home(), 'copy') as m:
                self.drop_cache_later(m)
                self.copy_bodies(top)
        # Remounts reuse the cache directory of the last mount.
        def once():
            with Mount(self, port, cache, 'remount-%d' % rtt) as m:
                secs, found = self.grep(top)
                remount.times.append(secs)
                self.check_found(remount, found, self.expected)
                remount.rss_kb.append(m.vm_hwm_kb())
                cnt = m.unmount()
            remount.bodies.append(cnt['body_count'])
        self.repeats(remount, k, once)
        shutil.rmtree(cache, ignore_errors=True)
        cold.note = 'bodies from %d cold-only mount(s)' % len(clean)
        warm.note = 'on the last cold mount; bodies = that mount minus a cold-only count'
        remount.note = ('cache_dir set' if 'cache_dir' in self.features
                        else 'this imapfs has no disk cache (no cache_dir key)')

    def task_ls_scaling(self, port, rtt, k):
        out = []
        for n in LS_SIZES:
            name = 'LS%d' % n
            top = os.path.join(self.mnt, name)
            times, cmds_n, summary, bodies = [], None, '', 0
            for i in range(k):
                self.d.rawlog_on()
                with Mount(self, port, self.cache_home(), 'lsscale-%d' % rtt) as m:
                    self.drop_cache_later(m)
                    t0 = time.monotonic()
                    p = subprocess.run(['ls', '-l', top], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=GREP_ENV)
                    times.append(time.monotonic() - t0)
                    rss = m.vm_hwm_kb()
                    cnt = m.unmount()
                cmds = self.d.rawlog_off()
                entries = len(p.stdout.splitlines()) - 1
                if p.returncode != 0 or entries != n:
                    self.failures.append('ls -l %s: exit %d, %d entries, expected %d' % (
                        top, p.returncode, entries, n))
                cmds_n, summary, bodies = len(cmds), summarize_commands(cmds), cnt['body_count']
                if times[-1] > self.args.slow_seconds:
                    break
            out.append({'n': n, 'times': times, 'median': statistics.median(times),
                        'commands': cmds_n, 'summary': summary, 'bodies': bodies,
                        'rss_kb': rss})
            log('  ls -l %s: %s, %d IMAP commands (%s)' % (name, fmt_time(out[-1]['median']),
                                                           cmds_n, summary))
        self.ls_scaling[rtt] = out

    # -- driver --------------------------------------------------------------------

    def run_rtt(self, rtt):
        a = self.args
        k = a.repeat
        if rtt > 0:
            self.proxy = TcpProxy('127.0.0.1', '127.0.0.1', self.d.port_imaps,
                                  delay_ms=rtt / 2.0)
            port = self.proxy.port
        else:
            port = self.d.port_imaps
        rows = self.results.setdefault(rtt, {})
        try:
            steps = [('wire limit', lambda: self.task_wire(rows, port, k)),
                     ('ls -l cold', lambda: self.task_ls_cold(rows, port, rtt, k)),
                     ('grep cold/warm/remount', lambda: self.task_grep(rows, port, rtt, k))]
            if not a.imapfs_only:
                steps.append(('naive client', lambda: self.task_naive(rows, port, k)))
            if not a.skip_mbsync and not a.imapfs_only:
                steps.append(('mbsync', lambda: self.task_mbsync(rows, port, k)))
            if a.ls_scaling:
                steps.append(('ls -l scaling', lambda: self.task_ls_scaling(port, rtt, k)))
            for name, fn in steps:
                t0 = time.monotonic()
                log('[rtt %g ms] %s ...' % (rtt, name))
                try:
                    fn()
                except BenchError as e:
                    # One broken method must not hide the others' numbers.
                    log('bench.py: %s' % e)
                    self.failures.append('[rtt %g ms] %s: %s' % (rtt, name, e))
                    if self.live_mount is not None:
                        self.live_mount.unmount()
                    self.d.rawlog_off()
                log('[rtt %g ms] %s done in %.0f s' % (rtt, name, time.monotonic() - t0))
                if name.startswith('grep') and self.local_row is None:
                    self.task_local(k)
        finally:
            if self.proxy is not None:
                self.proxy.close()
                self.proxy = None

    def cleanup(self):
        if self.live_mount is not None:
            try:
                self.live_mount.unmount()
            except Exception as e:  # noqa: BLE001 -- best effort on the way out
                log('cleanup: %s' % e)
        if is_mounted(self.mnt):
            subprocess.run(['fusermount3', '-u', '-z', self.mnt])
        if self.proxy is not None:
            self.proxy.close()
        if self.d is not None:
            self.d.cleanup()
        if self.local_tree:
            shutil.rmtree(self.local_tree, ignore_errors=True)
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log('kept %s' % self.tmp)


MBSYNCRC = """\
# Written by bench/bench.py: pull one folder from the throwaway Dovecot, never change it.
IMAPAccount bench
Host localhost
Port {port}
User {user}
PassCmd "cat {pwfile}"
SSLType IMAPS
CertificateFile {ca}

IMAPStore far
Account bench

MaildirStore near
Path {near}/
Inbox {near}/INBOX

Channel bench
Far :far:{folder}
Near :near:{folder}
Create Near
Sync Pull New
Expunge None
SyncState *
"""


def summarize_commands(cmds):
    counts = {}
    for _tag, name in cmds:
        counts[name] = counts.get(name, 0) + 1
    return ', '.join('%s %d' % (k, v) for k, v in sorted(counts.items()))


# ---------------------------------------------------------------------------
# report

TARGET_COLD = 3.0
TARGET_WARM = 3.0
TARGET_RSS_MB = 100


def ratio(x, y):
    if x is None or not y:
        return None
    return x / y


def fmt_ratio(r):
    return '-' if r is None else ('%.1fx' % r if r < 100 else '%.0fx' % r)


def report(b):
    a = b.args
    c = b.corpus
    lines = []
    add = lines.append
    add('')
    add('imapfs benchmark: %d messages, %.1f MB in folder %s; needle "%s" in %d messages '
        '(%d visible in raw MIME); repeat %d' % (
            c['n'], c['total_bytes'] / 1e6, FOLDER, corpus.NEEDLE, len(b.expected),
            len(b.expected_raw), a.repeat))
    add('imapfs: %s (built from %s); disk cache key %s; run %s' % (
        b.imapfs, b.source, 'cache_dir present' if 'cache_dir' in b.features else 'absent',
        time.strftime('%Y-%m-%d %H:%M %Z')))
    d_med = b.local_row.median() if b.local_row else None
    order = ['ls', 'cold', 'warm', 'remount', 'a', 'b', 'c', 'd']
    for rtt, rows in b.results.items():
        rows = dict(rows)
        if b.local_row is not None:
            rows['d'] = b.local_row
        c_med = rows['c'].median() if 'c' in rows else None
        add('')
        add('RTT %s' % ('0 ms (loopback, no proxy)' if rtt == 0 else
                        '%g ms (tcp_proxy, %g ms each way)' % (rtt, rtt / 2)))
        hdr = '%-46s %9s %5s %8s %8s %7s %8s  %s' % (
            'task', 'median', 'runs', 'vs (c)', 'vs (d)', 'bodies', 'peak RSS', 'needles')
        add(hdr)
        add('-' * len(hdr))
        for key in order:
            r = rows.get(key)
            if r is None:
                continue
            med = r.median()
            bodies = '-' if not r.bodies else '%d' % statistics.median(r.bodies)
            rss = max((x for x in r.rss_kb if x), default=None)
            if r.found is None:
                needles = '-'
            else:
                needles = '%d/%d %s' % (len(r.found), len(r.expected),
                                        'ok' if r.found == r.expected else 'MISMATCH')
            runs = '%d%s' % (len(r.times), '*' if r.capped else '')
            cmp_c = ratio(med, c_med) if key != 'ls' else None
            cmp_d = ratio(med, d_med) if key != 'ls' else None
            add('%-46s %9s %5s %8s %8s %7s %8s  %s' % (
                r.label[:46], fmt_time(med), runs, fmt_ratio(cmp_c), fmt_ratio(cmp_d), bodies,
                fmt_mb(rss), needles))
        for key in order:
            r = rows.get(key)
            if r is not None and (r.note or r.extra):
                extra = {k: v for k, v in r.extra.items() if k not in ('commands',)}
                add('  %s: %s%s' % (key, r.note, (' ' + json.dumps(extra)) if extra else ''))
    if any(r.capped for rows in b.results.values() for r in rows.values()):
        add('* fewer runs than --repeat: a run took longer than %g s (--slow-seconds)' %
            a.slow_seconds)
    if b.ls_scaling:
        add('')
        add('ls -l cold, scaling with folder size (small messages)')
        hdr = '%-10s %8s %12s %9s  %s' % ('RTT', 'messages', 'time', 'commands', 'which')
        add(hdr)
        add('-' * len(hdr))
        for rtt, items in b.ls_scaling.items():
            for it in items:
                add('%-10s %8d %12s %9d  %s' % ('%g ms' % rtt, it['n'], fmt_time(it['median']),
                                                it['commands'], it['summary']))
    add('')
    add('targets (issue):')
    for rtt, rows in b.results.items():
        c_med = rows['c'].median() if 'c' in rows else None
        r = ratio(rows['cold'].median(), c_med) if 'cold' in rows else None
        add('  cold grep <= %gx wire limit at %g ms: %s' % (TARGET_COLD, rtt,
                                                           verdict(r, TARGET_COLD, 'x')))
    for rtt, rows in b.results.items():
        r = ratio(rows['warm'].median(), d_med) if 'warm' in rows else None
        add('  warm grep <= %gx local grep at %g ms: %s' % (TARGET_WARM, rtt,
                                                           verdict(r, TARGET_WARM, 'x')))
    for rtt, rows in b.results.items():
        bl = rows['remount'].bodies if 'remount' in rows else []
        add('  remount fetches 0 bodies at %g ms: %s' % (
            rtt, 'met (0)' if bl and max(bl) == 0 else
            'MISSED (%s bodies fetched)' % ('/'.join(str(x) for x in bl) or '?')))
    if b.ls_scaling:
        for rtt, items in b.ls_scaling.items():
            cs = [it['commands'] for it in items]
            add('  ls -l constant round trips at %g ms: %s (commands for %s messages: %s)' % (
                rtt, 'met' if len(set(cs)) == 1 else 'MISSED',
                '/'.join(str(it['n']) for it in items), '/'.join(str(x) for x in cs)))
    else:
        ls_cmds = {rtt: rows['ls'].extra.get('imap_commands') for rtt, rows in b.results.items()
                   if 'ls' in rows}
        add('  ls -l constant round trips: run with --ls-scaling to check (commands for %d '
            'messages: %s)' % (c['n'], ls_cmds))
    rss_all = [x for rows in b.results.values() for k, r in rows.items()
               if k in ('ls', 'cold', 'warm', 'remount') for x in r.rss_kb if x]
    peak = max(rss_all) / 1024 if rss_all else None
    add('  imapfs peak RSS < %d MB: %s' % (
        TARGET_RSS_MB, '?' if peak is None else ('met (%.0f MB)' % peak if peak < TARGET_RSS_MB
                                                else 'MISSED (%.0f MB)' % peak)))
    if b.failures:
        add('')
        add('!!! %d CHECK(S) FAILED:' % len(b.failures))
        for f in b.failures:
            add('!!!   ' + f)
    else:
        add('')
        add('checks: every method found the expected needle messages; all counts consistent')
    return '\n'.join(lines)


def verdict(r, target, unit):
    if r is None:
        return '?'
    if r <= target:
        return 'met (%.2f%s)' % (r, unit)
    return 'MISSED (%.2f%s, %.2fx over)' % (r, unit, r / target)


def source_state():
    """Which daemon source was measured: HEAD, and whether imap/ mime/ fs/ had local edits."""
    def git(*a):
        p = subprocess.run(['git', '-C', ROOT] + list(a), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        return p.stdout.decode('utf-8', 'replace').strip() if p.returncode == 0 else ''
    head = git('log', '-1', '--format=%h %cs %s')
    dirty = git('status', '--porcelain', '--', 'imap', 'mime', 'fs')
    n = len([x for x in dirty.splitlines() if x.strip()])
    return '%s%s' % (head or 'not a git checkout',
                     ' + %d uncommitted file(s) in imap/ mime/ fs/' % n if n else '')


def parse_rtts(text):
    """--rtt-ms "0,50" -> [0, 50] (ints where whole)."""
    rtts = [float(x) for x in text.split(',') if x.strip()]
    return [int(x) if x == int(x) else x for x in rtts]


def may_run(prog):
    """False (and why, on stderr) unless root; SIGTERM then interrupts like ^C, so the mounts
    and the throwaway Dovecot are cleaned up."""
    if os.geteuid() != 0:
        log('%s: run me as root (Dovecot and FUSE mounts need it)' % prog)
        return False

    def on_signal(signum, frame):
        raise KeyboardInterrupt('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_signal)
    return True


def guarded(prog, b, body, has_results):
    """Run body(), then b.cleanup() whatever happens.  A setup or harness error is a failure
    in b.failures, and the report still comes if has_results() (return None); else 1.  ^C or
    SIGTERM: 130."""
    try:
        body()
    except (BenchError, bench_dovecot.dovecot.HarnessError) as e:
        log('%s: %s' % (prog, e))
        b.failures.append(str(e))
        if not has_results():
            b.cleanup()
            return 1
    except KeyboardInterrupt:
        log('%s: interrupted' % prog)
        b.cleanup()
        return 130
    b.cleanup()
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description='imapfs benchmark (see bench/README.md)')
    ap.add_argument('--imapfs', required=True, help='the imapfs binary')
    ap.add_argument('--messages', type=int, default=5000)
    ap.add_argument('--rtt-ms', default='0,50', help='comma-separated RTTs, default 0,50')
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--slow-seconds', type=float, default=60.0,
                    help='a task whose run takes longer is not repeated (default 60)')
    ap.add_argument('--skip-mbsync', action='store_true')
    ap.add_argument('--imapfs-only', action='store_true',
                    help='only the wire limit, local grep and imapfs rows (for tuning imapfs)')
    ap.add_argument('--ls-scaling', action='store_true',
                    help='also ls -l folders of 500, 5,000 and 50,000 messages')
    ap.add_argument('--quick', action='store_true', help='smoke test: 500 messages, repeat 1')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--cache-size', help='cache_size for imapfs, if it knows the key')
    ap.add_argument('--json', help='also write the results here')
    ap.add_argument('--imapfs-config', action='append', metavar='KEY=VALUE',
                    help='an extra key for the imapfs config (repeatable), e.g. readahead=2048')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    args = ap.parse_args(argv)
    if args.quick:
        args.messages, args.repeat = 500, 1
    rtts = parse_rtts(args.rtt_ms)
    if not may_run('bench.py'):
        return 2

    b = Bench(args)
    t_start = time.monotonic()

    def body():
        b.setup()
        for rtt in rtts:
            b.run_rtt(rtt)
    ret = guarded('bench.py', b, body, lambda: b.results)
    if ret is not None:
        return ret
    text = report(b)
    print(text)
    print('\n(total wall time %.0f s)' % (time.monotonic() - t_start))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'messages': args.messages, 'repeat': args.repeat,
                       'results': {str(rtt): {k: r.to_json() for k, r in rows.items()}
                                   for rtt, rows in b.results.items()},
                       'local': b.local_row.to_json() if b.local_row else None,
                       'ls_scaling': {str(k): v for k, v in b.ls_scaling.items()},
                       'failures': b.failures}, f, indent=1)
    return 1 if b.failures else 0


if __name__ == '__main__':
    sys.exit(main())
