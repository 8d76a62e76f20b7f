#!/usr/bin/python3
"""imapfs's search benchmark: `FOLDER/.search/CRITERIA` and `MOUNT/.search/CRITERIA` against
the server's own SEARCH, at two latencies (issue 11, "Performance").  A benchmark, not a test:
it prints a table of medians with the issue's targets, met or missed, and never runs in meson.

Run through `bench/run.sh --search` (it builds imapfs in release mode first); bench/README.md
explains every row.  One run:

  1. starts a throwaway Dovecot (bench_dovecot.BenchDovecot: per-session fetch counters, opt-in
     raw log with timestamps), seeds folder "Bench" with the normal corpus (corpus.py, 5,000
     messages by default) and folder "Big" with minimal messages (100,000 by default) written
     straight into the Maildir, each with a subject word and a body word on a known fraction;
  2. for every RTT in --rtt-ms (0 = direct, else tests/harness/tcp_proxy.py's TcpProxy with
     RTT/2 each way) and each folder and criterion (a subject word and a body word), measures:
       floor      the same UID SEARCH sent by a client that is logged in and has the folder
                  examined (one round trip), and UID SEARCH RETURN (SAVE) + UID FETCH $ of the
                  hits' attributes pipelined (what a listing with attributes needs);
       ls first   `ls FOLDER/.search/C` as the first thing on a fresh mount (-o stats);
       ls new     `ls FOLDER/.search/C/larger=I` on a warm mount, I never asked before;
       ls -l      `ls -l` of the result on that fresh mount: bodies from the stats xattr and
                  from Dovecot's session counters (must be 0), searches from the stats xattr;
       grep       `grep -l WORD RESULT/*/subject` (or `*/body`) on a fresh mount, then warm,
                  and the naive way, `grep -l WORD FOLDER/*/subject` cold, for the 5,000 folder;
     and counts the round trips of each listing from Dovecot's raw log (commands that arrive
     within RTT/2 of each other are one burst, one round trip);
  3. a mount-wide search (`MOUNT/.search/C`) on a second Dovecot holding 50 small folders, some
     with hits: the time, the round trips and commands, and the floor (a client pipelining
     EXAMINE + UID SEARCH for all 50 folders).

Every imapfs mount gets an empty cache directory (bench.Mount).  The machine is shared: expect
noise, and compare medians.  Python 3 standard library only; must run as root.
"""

import argparse
import os
import random
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402  (Mount, fmt_time, imapfs_features, source_state, ...)
import bench_dovecot  # noqa: E402
import corpus  # noqa: E402
from bench import BenchError, Mount, fmt_time, log  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

FOLDER = 'Bench'           # the normal corpus
BIG = 'Big'                # minimal messages
SUBJECT_WORD_BIG = 'budget'
BODY_WORD = corpus.NEEDLE
BIG_SUBJECT_FRACTION = 0.006
BIG_BODY_FRACTION = 0.005
MW_FOLDERS = 50
MW_MESSAGES = 20            # per mount-wide folder
MW_HIT_EVERY = 5            # every 5th folder holds hits
MW_HITS = 3                 # ... this many
ENV = dict(os.environ, LC_ALL='C')
TARGET_FACTOR, TARGET_ADD = 1.5, 0.010
TARGET_MW_RTS = 3


# ---------------------------------------------------------------------------
# a raw IMAP client: the floor (pipelined commands, one write, timed to the last tagged answer)

class RawImap:
    """Logged in over TLS; run() sends any number of commands in one write and reads until every
    one of them has its tagged answer.  Literals in answers are read and kept in the lines."""

    def __init__(self, d, port, password):
        ctx = d.ssl_context()
        raw = socket.create_connection(('127.0.0.1', port), timeout=120)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname=d.host)
        self.f = self.sock.makefile('rb')
        self.seq = 0
        greeting = self.f.readline()
        if not greeting.startswith(b'* OK'):
            raise BenchError('bad greeting %r' % greeting[:100])
        ok, _ = self.run(['LOGIN %s %s' % (imap_quote(d.user), imap_quote(password))])
        if not ok:
            raise BenchError('LOGIN failed')
        self.caps = b''

    def run(self, commands):
        """(all OK?, untagged lines) after sending commands pipelined."""
        tags = []
        out = []
        for c in commands:
            self.seq += 1
            tag = 'b%d' % self.seq
            tags.append(tag)
            out.append(('%s %s\r\n' % (tag, c)).encode('utf-8'))
        self.sock.sendall(b''.join(out))
        left = set(tags)
        ok = True
        untagged = []
        while left:
            line = self.f.readline()
            if not line:
                raise BenchError('server closed the connection')
            m = re.search(rb'\{(\d+)\}\r\n$', line)
            while m:
                line += self.f.read(int(m.group(1)))
                more = self.f.readline()
                line += more
                m = re.search(rb'\{(\d+)\}\r\n$', more)
            tag = line.split(b' ', 1)[0].decode('ascii', 'replace')
            if tag in left:
                left.discard(tag)
                if not line.split(b' ', 2)[1:2] == [b'OK']:
                    ok = False
            else:
                untagged.append(line)
        return ok, untagged

    def timed(self, commands):
        t0 = time.monotonic()
        ok, lines = self.run(commands)
        secs = time.monotonic() - t0
        if not ok:
            raise BenchError('server refused %r: %r' % (commands, lines[-3:]))
        return secs, lines

    def close(self):
        try:
            self.run(['LOGOUT'])
        except (BenchError, OSError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def imap_quote(s):
    return '"%s"' % s.replace('\\', '\\\\').replace('"', '\\"')


def search_uids(lines):
    """UIDs of a '* SEARCH ...' answer."""
    uids = set()
    for line in lines:
        if line.startswith(b'* SEARCH'):
            uids.update(int(x) for x in line[8:].split())
    return uids


def count_fetches(lines):
    return sum(1 for x in lines if re.match(rb'\* \d+ FETCH ', x))


# ---------------------------------------------------------------------------
# corpora

def pick_subject_word(manifest, lo=200, hi=1000, want=500):
    """A subject substring of the normal corpus with a few hundred hits (deterministic): the
    corpus's common words and syllables, the one whose count of subjects containing it
    (case-insensitive, as IMAP SUBJECT matches) is nearest `want` within [lo, hi]."""
    subjects = []
    for m in manifest['messages']:
        with open(os.path.join(manifest['path'], m['file']), 'rb') as f:
            head = f.read(4096).split(b'\r\n\r\n', 1)[0]
        mm = re.search(rb'^Subject: (.*)$', head, re.M)
        subjects.append(mm.group(1).decode('utf-8', 'replace').lower() if mm else '')
    best = None
    for w in sorted(set(corpus._COMMON) | set(corpus._SYLLABLES)):
        if len(w) < 3:
            continue
        n = sum(1 for s in subjects if w in s)
        if lo <= n <= hi and (best is None or abs(n - want) < abs(best[1] - want)):
            best = (w, n)
    if best is None:       # small corpora (--quick): the most frequent word
        best = max(((w, sum(1 for s in subjects if w in s))
                    for w in corpus._COMMON if len(w) >= 3), key=lambda x: x[1])
    return best


def tiny_vocab(rng):
    syl = corpus._SYLLABLES
    words = set()
    while len(words) < 600:
        words.add(''.join(rng.choice(syl) for _ in range(rng.randint(2, 3))))
    return sorted(words)


def write_tiny_folder(folder_dir, n, seed, uid, gid, subject_word, p_subject, body_word, p_body,
                      first=1, hits=None):
    """Write n minimal messages (~0.5-0.8 KB, 7bit) into the Maildir folder_dir/cur; a message
    gets subject_word in its subject with probability p_subject (or exactly the indices in
    hits, if given) and body_word in its body with probability p_body.  Returns (subject hit
    count, body hit count).  Written straight into cur/ with S=/W= sizes, as corpus.seed_maildir
    does, so seeding 100,000 takes seconds, not an APPEND each."""
    rng = random.Random('tiny/%d/%d' % (seed, n))
    vocab = tiny_vocab(rng)
    cur = os.path.join(folder_dir, 'cur')
    os.makedirs(cur, exist_ok=True)
    ns = nb = 0
    for i in range(first, first + n):
        subj = [rng.choice(vocab) for _ in range(rng.randint(3, 6))]
        hit_s = (i in hits) if hits is not None else rng.random() < p_subject
        if hit_s:
            subj.insert(rng.randrange(len(subj) + 1), subject_word)
            ns += 1
        lines = [' '.join(rng.choice(vocab) for _ in range(8)) for _ in range(rng.randint(3, 7))]
        if body_word and rng.random() < p_body:
            lines.insert(rng.randrange(len(lines) + 1), 'ref %s %d' % (body_word, i))
            nb += 1
        date = corpus.BASE_TIME + i * 30
        raw = ('From: Sender %d <s%d@example.org>\r\nTo: Alice <alice@example.com>\r\n'
               'Subject: %s\r\nDate: %s\r\nMessage-ID: <bench-%d.%d@imapfs.bench>\r\n'
               'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n' % (
                   i % 53, i % 53, ' '.join(subj),
                   time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(date)), i, seed,
                   '\r\n'.join(lines))).encode('ascii')
        name = '%d.M%dP2.tiny,S=%d,W=%d:2,S' % (corpus.BASE_TIME + i, i, len(raw), len(raw))
        path = os.path.join(cur, name)
        with open(path, 'wb') as f:
            f.write(raw)
        os.chown(path, uid, gid)
        os.utime(path, (date, date))
    os.utime(cur, None)
    return ns, nb


# ---------------------------------------------------------------------------
# round trips from the raw log

def bursts(cmds, gap, outs=()):
    """Group (ts, session, tag, name) commands, sorted by time, into bursts, one per round trip
    (the client waited for an answer before it sent more).  A command starts a new burst when it
    came more than `gap` seconds after the previous one AND its session's server had been quiet
    (no line in outs, (ts, session) pairs from the *.out raw logs) for more than `gap` before it.

    The second condition matters: the raw log stamps a command when Dovecot reads it, and
    Dovecot stops reading a pipelined chain while earlier commands of it are still running, so
    a chain sent in one write can show gaps that are the server's own work (it was writing
    answers right up to reading the next command).  A client round trip leaves the server idle
    for at least the RTT."""
    last_out = {}
    for t, session in outs:
        last_out.setdefault(session, []).append(t)
    out = []
    last = None
    for c in cmds:
        if c[0] is None:
            continue
        new = last is None
        if not new and c[0] - last > gap:
            before = [t for t in last_out.get(c[1], ()) if t <= c[0]]
            new = not before or c[0] - max(before) > gap
        if new:
            out.append([])
        out[-1].append(c)
        last = c[0]
    return out


def summarize(cmds):
    counts = {}
    for c in cmds:
        counts[c[3]] = counts.get(c[3], 0) + 1
    return ', '.join('%s %d' % kv for kv in sorted(counts.items()))


def describe_bursts(bs):
    return ' | '.join(summarize(b) for b in bs)


def last_out(outs, w0, w1):
    """ms from the server's last answer line within [w0, w1] to w1 (None: none)."""
    ts = [t for t, _session in outs if w0 <= t <= w1]
    return round((w1 - max(ts)) * 1000) if ts else None


def edges(win, w0, w1):
    """(ms from the command's start to the first IMAP command the server read, ms from the last
    one to the command's end), or (None, None) when it sent none: where the time that is not
    the server's goes (the client's own work before, the answer's way back and the kernel and
    ls after)."""
    ts = [c[0] for c in win if c[0] is not None]
    if not ts:
        return None, None
    return round((min(ts) - w0) * 1000), round((w1 - max(ts)) * 1000)


# ---------------------------------------------------------------------------

class Cell:
    """Samples of one measurement."""

    def __init__(self):
        self.times = []
        self.info = {}

    def med(self):
        return statistics.median(self.times) if self.times else None


class SearchBench:
    def __init__(self, args):
        self.args = args
        self.imapfs = os.path.abspath(args.imapfs)
        self.features, _ = bench.imapfs_features(self.imapfs)
        self.source = bench.source_state()
        self.tmp = tempfile.mkdtemp(prefix='imapfs-searchbench-', dir='/tmp')
        os.chmod(self.tmp, 0o755)
        self.mnt = os.path.join(self.tmp, 'mnt')
        os.makedirs(self.mnt)
        self.pwfile = os.path.join(self.tmp, 'password')
        self.d = None          # the Dovecot Mount uses (switched for the mount-wide part)
        self.main_d = None
        self.mw_d = None
        self.proxies = []
        self.live_mount = None
        self.cache_seq = 0
        self.failures = []
        self.cells = {}        # (rtt, folder, crit, what) -> Cell
        self.mw = {}           # rtt -> Cell
        self.criteria = {}     # folder -> [(label, component, word, file, imap criteria)]
        self.folder_n = {}
        self.floor_conns = {}  # (rtt, folder) -> RawImap with the folder examined
        self.capabilities = ''

    # bench.Mount reads these
    def cache_home(self):
        self.cache_seq += 1
        return os.path.join(self.tmp, 'cache-%d' % self.cache_seq)

    def cell(self, *key):
        return self.cells.setdefault(key, Cell())

    def median(self, *key):
        c = self.cells.get(key)
        return c.med() if c else None

    # -- setup -----------------------------------------------------------------

    def start_dovecot(self, name):
        d = bench_dovecot.BenchDovecot(workdir=os.path.join(self.tmp, name))
        d.start()
        return d

    def setup(self):
        a = self.args
        self.main_d = self.d = self.start_dovecot('dv')
        with open(self.pwfile, 'w') as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(self.d.password + '\n')
        uid, gid = self.d.owner()
        if a.messages:
            man = corpus.load_or_generate(HERE, a.messages, a.seed, log=log)
            word, n_subj = pick_subject_word(man)
            self.d.create_folder(FOLDER)
            t0 = time.monotonic()
            corpus.seed_maildir(man, self.d.maildir_folder(FOLDER), uid, gid)
            self.folder_n[FOLDER] = man['n']
            log('seeded %s: %d messages, %.1f MB (%.1f s); subject word "%s" in %d subjects' % (
                FOLDER, man['n'], man['total_bytes'] / 1e6, time.monotonic() - t0, word,
                n_subj))
            self.criteria[FOLDER] = [('subject', 'subject=' + word, word, 'subject',
                                      'SUBJECT ' + word),
                                     ('body', 'body=' + BODY_WORD, BODY_WORD, 'body',
                                      'BODY ' + BODY_WORD)]
        if a.big_messages:
            self.d.create_folder(BIG)
            t0 = time.monotonic()
            ns, nb = write_tiny_folder(self.d.maildir_folder(BIG), a.big_messages, a.seed, uid,
                                       gid, SUBJECT_WORD_BIG, BIG_SUBJECT_FRACTION, BODY_WORD,
                                       BIG_BODY_FRACTION)
            self.folder_n[BIG] = a.big_messages
            log('seeded %s: %d minimal messages (%.1f s), %d with "%s" in the subject, %d with '
                '"%s" in the body' % (BIG, a.big_messages, time.monotonic() - t0, ns,
                                      SUBJECT_WORD_BIG, nb, BODY_WORD))
            self.criteria[BIG] = [('subject', 'subject=' + SUBJECT_WORD_BIG, SUBJECT_WORD_BIG,
                                   'subject', 'SUBJECT ' + SUBJECT_WORD_BIG),
                                  ('body', 'body=' + BODY_WORD, BODY_WORD, 'body',
                                   'BODY ' + BODY_WORD)]
        self.d._drop_conn()
        # Index every folder and run every search once, untimed: the server is warm for both
        # the floor and imapfs (Dovecot caches the subject header after the first SUBJECT).
        c = RawImap(self.d, self.d.port_imaps, self.d.password)
        try:
            _, lines = c.run(['CAPABILITY'])
            self.capabilities = b' '.join(x.strip() for x in lines
                                          if x.startswith(b'* CAPABILITY')).decode()
            self.hits = {}
            for folder in self.criteria:
                t0 = time.monotonic()
                c.timed(['EXAMINE %s' % folder])
                _, lines = c.timed(['UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)'])
                if count_fetches(lines) != self.folder_n[folder]:
                    raise BenchError('%s: %d messages, expected %d' % (
                        folder, count_fetches(lines), self.folder_n[folder]))
                for label, _comp, _w, _f, crit in self.criteria[folder]:
                    _, lines = c.timed(['UID SEARCH ' + crit])
                    self.hits[folder, label] = search_uids(lines)
                    log('  %s: UID SEARCH %s: %d hits' % (folder, crit,
                                                          len(self.hits[folder, label])))
                log('indexed and warmed %s (%.1f s)' % (folder, time.monotonic() - t0))
        finally:
            c.close()
        self.d.wait_sessions_ended()

    def setup_mountwide(self):
        self.mw_d = self.start_dovecot('dv-mw')
        uid, gid = self.mw_d.owner()
        names = ['F%02d' % i for i in range(MW_FOLDERS)]
        for name in names:
            self.mw_d.create_folder(name)
        self.mw_d._drop_conn()
        self.mw_expect = set()
        for k, name in enumerate(names):
            hits = set()
            if k % MW_HIT_EVERY == 0:
                hits = set(range(1, MW_HITS + 1))
                self.mw_expect.add(name)
            write_tiny_folder(self.mw_d.maildir_folder(name), MW_MESSAGES, k, uid, gid,
                              SUBJECT_WORD_BIG, 0, None, 0, hits=hits)
        with open(self.pwfile, 'w') as f:
            f.write(self.mw_d.password + '\n')
        c = RawImap(self.mw_d, self.mw_d.port_imaps, self.mw_d.password)
        try:
            for name in names:
                c.timed(['EXAMINE %s' % name, 'UID FETCH 1:* (UID FLAGS)',
                         'UID SEARCH SUBJECT ' + SUBJECT_WORD_BIG])
        finally:
            c.close()
        self.mw_names = names
        self.mw_d.wait_sessions_ended()
        log('mount-wide account: %d folders of %d messages, %d with %d hits each' % (
            MW_FOLDERS, MW_MESSAGES, len(self.mw_expect), MW_HITS))

    # -- helpers ---------------------------------------------------------------

    def mount(self, port, tag):
        m = Mount(self, port, self.cache_home(), tag, extra_opts=['stats'])
        m.drop_cache = True
        return m

    def stats(self):
        try:
            text = os.getxattr(self.mnt, 'user.imapfs.stats').decode()
        except OSError as e:
            raise BenchError('reading user.imapfs.stats: %s' % e)
        return dict(kv.split('=', 1) for kv in text.split() if '=' in kv)

    def run(self, cmd, shell=False):
        """(seconds, stdout lines, returncode, stderr) of cmd (a list, or sh -c text)."""
        if shell:
            cmd = ['sh', '-c', cmd]
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        secs = time.monotonic() - t0
        return secs, p.stdout.decode('utf-8', 'replace').splitlines(), p.returncode, \
            p.stderr.decode('utf-8', 'replace')

    def check(self, ok, text):
        if not ok:
            self.failures.append(text)
            log('!!! ' + text)

    def window(self, t0, t1, cmds):
        # Both clocks are this machine's wall clock: no slack (it would catch the commands of
        # whatever runs right after, e.g. the LOGOUTs of an unmount).
        return [c for c in cmds if c[0] is not None and t0 <= c[0] <= t1]

    def record_window(self, cell, rtt, cmds, outs, w0, w1, key='commands'):
        """Note in cell.info what the server saw between w0 and w1 (wall clock): round trips,
        commands per round trip (under `key`) and where the time went (edges, last_out).
        Returns (the commands in the window, their bursts)."""
        win = self.window(w0, w1, cmds)
        bs = bursts(win, max(rtt / 2000.0, 0.001), outs)
        pre, post = edges(win, w0, w1)
        cell.info.setdefault('round trips', []).append(len(bs))
        cell.info[key] = describe_bursts(bs)
        cell.info.setdefault('ms before 1st cmd', []).append(pre)
        cell.info.setdefault('ms after last cmd', []).append(post)
        cell.info.setdefault('ms after the answer', []).append(last_out(outs, w0, w1))
        return win, bs

    # -- measurements --------------------------------------------------------------

    def floor(self, rtt, port, folder, k):
        c = RawImap(self.d, port, self.d.password)
        try:
            c.timed(['EXAMINE %s' % folder])
            for label, _comp, _w, _f, crit in self.criteria[folder]:
                kk = k if label == 'subject' else max(1, min(k, 3))
                want = self.hits[folder, label]
                cf = self.cell(rtt, folder, label, 'floor+fetch')
                _, lines = c.timed(['UID SEARCH ' + crit])
                self.check(search_uids(lines) == want, 'floor %s %s: other hits' % (
                    folder, crit))
                for i in range(kk):
                    secs, lines = c.timed(['UID SEARCH RETURN (SAVE) ' + crit,
                                           'UID FETCH $ (UID RFC822.SIZE INTERNALDATE FLAGS)'])
                    cf.times.append(secs)
                    self.check(count_fetches(lines) == len(want),
                               'floor %s %s: %d FETCH answers for %d hits' % (
                                   folder, crit, count_fetches(lines), len(want)))
                log('  [%g ms] %s %s floor: SEARCH+FETCH %s' % (
                    rtt, folder, label, fmt_time(cf.med())))
        finally:
            c.close()

    def paired_floor(self, rtt, folder, label, criteria, what):
        """One `UID SEARCH criteria` on the floor client of (rtt, folder), right before the
        imapfs sample it is compared with: on this shared machine the load drifts by several
        times within minutes, so floor and imapfs samples are taken in turns, not in blocks."""
        secs, _ = self.floor_conns[rtt, folder].timed(['UID SEARCH ' + criteria])
        self.cell(rtt, folder, label, what).times.append(secs)

    def listing(self, top):
        """UIDs a result directory lists."""
        secs, out, rc, err = self.run(['ls', top])
        return secs, out, rc, err

    def ls_first(self, rtt, port, folder, k):
        """Fresh mount, `ls RESULT` first; then `ls -l` of it, stats and Dovecot's counters."""
        for label, comp, _w, _f, crit in self.criteria[folder]:
            kk = k if label == 'subject' else max(1, min(k, 3))
            want = self.hits[folder, label]
            cell = self.cell(rtt, folder, label, 'ls first')
            cl = self.cell(rtt, folder, label, 'ls -l')
            top = os.path.join(self.mnt, folder, '.search', comp)
            for i in range(kk):
                self.paired_floor(rtt, folder, label, crit, 'floor')
                self.d.rawlog_on()
                with self.mount(port, 'ls-%g' % rtt) as m:
                    time.sleep(0.3 + rtt * 0.02)   # the mount's own logins and LIST finish first
                    w0 = time.time()
                    secs, out, rc, err = self.run(['ls', top])
                    w1 = time.time()
                    cell.times.append(secs)
                    self.check(rc == 0 and {int(x) for x in out if x.isdigit()} == want,
                               '[%g ms] ls %s: exit %d, %d entries, %d hits (%s)' % (
                                   rtt, top, rc, len(out), len(want), err[-200:]))
                    w2 = time.time()
                    secs2, out2, rc2, _ = self.run(['ls', '-l', top])
                    w3 = time.time()
                    cl.times.append(secs2)
                    st = self.stats()
                    cnt = m.unmount()
                cmds = self.d.rawlog_read()
                outs = self.d.rawlog_out_times()
                self.d.rawlog_off()
                win, _ = self.record_window(cell, rtt, cmds, outs, w0, w1)
                cell.info.setdefault('sessions', []).append(len({c[1] for c in win}))
                cl.info['commands'] = summarize(self.window(w2, w3, cmds)) or 'none'
                cl.info.setdefault('bodies (stats)', []).append(int(st.get('bodies_fetched', -1)))
                cl.info.setdefault('bodies (dovecot)', []).append(cnt['body_count'])
                cl.info.setdefault('searches', []).append(int(st.get('searches', -1)))
                self.check(int(st.get('bodies_fetched', -1)) == 0 and cnt['body_count'] == 0,
                           '[%g ms] ls + ls -l of %s fetched bodies: stats %s, Dovecot %d' % (
                               rtt, top, st.get('bodies_fetched'), cnt['body_count']))
                self.check(len(out2) == len(want) + 1, '[%g ms] ls -l %s: %d lines' % (
                    rtt, top, len(out2)))
            log('  [%g ms] %s %s: ls first %s (round trips %s: %s), ls -l %s, bodies %s/%s, '
                'searches %s' % (rtt, folder, label, fmt_time(cell.med()),
                                 cell.info['round trips'], cell.info['commands'],
                                 fmt_time(cl.med()), cl.info['bodies (stats)'],
                                 cl.info['bodies (dovecot)'], cl.info['searches']))

    def ls_warm(self, rtt, port, folder, k):
        """One mount; the folder's result listed once; then K criteria never asked before."""
        self.d.rawlog_on()
        with self.mount(port, 'warm-%g' % rtt):
            windows = []
            for label, comp, _w, _f, crit in self.criteria[folder]:
                kk = k if label == 'subject' else max(1, min(k, 3))
                want = self.hits[folder, label]
                cell = self.cell(rtt, folder, label, 'ls new')
                base = os.path.join(self.mnt, folder, '.search', comp)
                self.run(['ls', base])
                for i in range(kk):
                    top = os.path.join(base, 'larger=%d' % (i + 1))
                    self.paired_floor(rtt, folder, label, '%s LARGER %d' % (crit, i + 1),
                                      'floor larger')
                    w0 = time.time()
                    secs, out, rc, err = self.run(['ls', top])
                    w1 = time.time()
                    cell.times.append(secs)
                    windows.append((cell, w0, w1))
                    self.check(rc == 0 and {int(x) for x in out if x.isdigit()} == want,
                               '[%g ms] ls %s: exit %d, %d entries, %d hits (%s)' % (
                                   rtt, top, rc, len(out), len(want), err[-200:]))
        cmds = self.d.rawlog_read()
        outs = self.d.rawlog_out_times()
        self.d.rawlog_off()
        for cell, w0, w1 in windows:
            self.record_window(cell, rtt, cmds, outs, w0, w1)
        for label, *_ in self.criteria[folder]:
            cell = self.cell(rtt, folder, label, 'ls new')
            log('  [%g ms] %s %s: ls new criteria, warm mount %s (round trips %s: %s)' % (
                rtt, folder, label, fmt_time(cell.med()), cell.info.get('round trips'),
                cell.info.get('commands')))

    def greps(self, rtt, port, folder, k):
        for label, comp, word, fname, _crit in self.criteria[folder]:
            kk = k if label == 'subject' else max(1, min(k, 3))
            want = self.hits[folder, label]
            top = os.path.join(self.mnt, folder, '.search', comp)
            cmd = 'grep -il -- "$0" "$1"/*/%s' % fname
            cold = self.cell(rtt, folder, label, 'grep cold')
            warm = self.cell(rtt, folder, label, 'grep warm')
            for i in range(kk):
                self.d.rawlog_on()
                with self.mount(port, 'grep-%g' % rtt) as m:
                    time.sleep(0.3 + rtt * 0.02)
                    w0 = time.time()
                    secs, out, rc, err = self.run(['sh', '-c', cmd, word, top])
                    w1 = time.time()
                    cold.times.append(secs)
                    found = {int(x.split('/')[-2]) for x in out}
                    self.check(rc in (0, 1) and found == want,
                               '[%g ms] grep over %s/*/%s: exit %d, found %d of %d hits (%s)' % (
                                   rtt, top, fname, rc, len(found), len(want), err[-200:]))
                    st = self.stats()
                    cold.info.setdefault('bodies (stats)', []).append(
                        int(st.get('bodies_fetched', -1)))
                    if i == kk - 1:
                        for _ in range(kk):
                            secs, out, rc, err = self.run(['sh', '-c', cmd, word, top])
                            warm.times.append(secs)
                    cnt = m.unmount()
                cmds = self.d.rawlog_read()
                outs = self.d.rawlog_out_times()
                self.d.rawlog_off()
                win = self.window(w0, w1, cmds)
                cold.info.setdefault('round trips', []).append(
                    len(bursts(win, max(rtt / 2000.0, 0.001), outs)) if rtt else '-')
                cold.info['commands'] = summarize(win)
                cold.info.setdefault('bodies (dovecot)', []).append(cnt['body_count'])
                cold.info['found'] = '%d/%d' % (len(found), len(want))
            log('  [%g ms] %s %s: grep cold %s warm %s, bodies %s' % (
                rtt, folder, label, fmt_time(cold.med()), fmt_time(warm.med()),
                cold.info['bodies (stats)']))
            if folder != FOLDER:
                continue
            # The naive way: grep over the whole folder's files, on a fresh mount.
            naive = self.cell(rtt, folder, label, 'grep naive')
            ftop = os.path.join(self.mnt, folder)
            for i in range(max(1, min(k, 3))):
                with self.mount(port, 'naive-%g' % rtt) as m:
                    secs, out, rc, err = self.run(['sh', '-c', cmd, word, ftop])
                    naive.times.append(secs)
                    st = self.stats()
                    m.unmount()
                found = {int(x.split('/')[-2]) for x in out if x.split('/')[-2].isdigit()}
                naive.info['found'] = '%d' % len(found)
                naive.info.setdefault('bodies (stats)', []).append(
                    int(st.get('bodies_fetched', -1)))
                if secs > self.args.slow_seconds:
                    break
            log('  [%g ms] %s %s: naive grep over the folder %s (found %s)' % (
                rtt, folder, label, fmt_time(naive.med()), naive.info['found']))

    def mountwide(self, rtt, k):
        d = self.mw_d
        proxy = None
        port = d.port_imaps
        if rtt:
            proxy = TcpProxy('127.0.0.1', '127.0.0.1', d.port_imaps, delay_ms=rtt / 2.0)
            self.proxies.append(proxy)
            port = proxy.port
        saved, self.d = self.d, d
        cell = self.mw.setdefault(rtt, Cell())
        floor = self.mw.setdefault(('floor', rtt), Cell())
        try:
            chain = []
            for name in self.mw_names:
                chain += ['EXAMINE %s' % name,
                         'UID SEARCH RETURN (SAVE) SUBJECT %s' % SUBJECT_WORD_BIG,
                         'UID FETCH $ (UID RFC822.SIZE INTERNALDATE FLAGS)']
            # A new session each run (its login not timed), as imapfs's listing connection is
            # on a fresh mount: Dovecot opens the 50 mailboxes in that session.
            top = os.path.join(self.mnt, '.search', 'subject=' + SUBJECT_WORD_BIG)
            for i in range(k):
                # floor and imapfs in turns (see paired_floor)
                c = RawImap(d, port, d.password)
                try:
                    secs, lines = c.timed(chain)
                finally:
                    c.close()
                floor.times.append(secs)
                self.check(count_fetches(lines) == MW_HITS * len(self.mw_expect),
                           'mount-wide floor: %d FETCH answers' % count_fetches(lines))
                d.rawlog_on()
                with self.mount(port, 'mw-%g' % rtt):
                    time.sleep(0.3 + rtt * 0.02)
                    w0 = time.time()
                    secs, out, rc, err = self.run(['ls', top])
                    w1 = time.time()
                    cell.times.append(secs)
                    self.check(rc == 0 and set(out) == self.mw_expect,
                               '[%g ms] ls %s: exit %d, %r (%s)' % (rtt, top, rc, out[:12],
                                                                    err[-200:]))
                    # the hits beneath are listed already: no more commands expected
                    w2 = time.time()
                    _, out2, rc2, _ = self.run(['sh', '-c', 'ls "$0"/*', top])
                    w3 = time.time()
                    st = self.stats()
                cmds = d.rawlog_read()
                outs = d.rawlog_out_times()
                d.rawlog_off()
                win, bs = self.record_window(cell, rtt, cmds, outs, w0, w1, key='which')
                after = self.window(w2, w3, cmds)
                if bs:
                    cell.info.setdefault('ms first to last cmd', []).append(
                        round((bs[-1][-1][0] - bs[0][0][0]) * 1000))
                cell.info.setdefault('commands', []).append(len(win))
                cell.info.setdefault('commands for the hits beneath', []).append(len(after))
                cell.info.setdefault('searches', []).append(int(st.get('searches', -1)))
                n_hits = len([x for x in out2 if x.isdigit()])
                self.check(n_hits == MW_HITS * len(self.mw_expect),
                           '[%g ms] mount-wide: %d hits beneath, expected %d' % (
                               rtt, n_hits, MW_HITS * len(self.mw_expect)))
            log('  [%g ms] mount-wide: %s, round trips %s (%s), floor %s' % (
                rtt, fmt_time(cell.med()), cell.info['round trips'], cell.info['which'],
                fmt_time(floor.med())))
        finally:
            self.d = saved
            if proxy is not None:
                proxy.close()
                self.proxies.remove(proxy)

    # -- driver ----------------------------------------------------------------------

    def run_rtt(self, rtt):
        a = self.args
        proxy = None
        port = self.d.port_imaps
        if rtt:
            proxy = TcpProxy('127.0.0.1', '127.0.0.1', self.d.port_imaps, delay_ms=rtt / 2.0)
            self.proxies.append(proxy)
            port = proxy.port
        self.floor_conns = {}
        try:
            for folder in self.criteria:
                c = self.floor_conns[rtt, folder] = RawImap(self.d, port, self.d.password)
                c.timed(['EXAMINE %s' % folder])
            self.d.sessions_kept = len(self.floor_conns)
            for folder in self.criteria:
                k = a.repeat if folder == FOLDER else a.big_repeat
                for name, fn in (('floor', self.floor), ('ls first', self.ls_first),
                                 ('ls new', self.ls_warm), ('grep', self.greps)):
                    if name == 'grep' and a.skip_grep:
                        continue
                    t0 = time.monotonic()
                    log('[%g ms] %s: %s ...' % (rtt, folder, name))
                    try:
                        fn(rtt, port, folder, k)
                    except BenchError as e:
                        log('search_bench.py: %s' % e)
                        self.failures.append('[%g ms] %s %s: %s' % (rtt, folder, name, e))
                        if self.live_mount is not None:
                            self.live_mount.unmount()
                        self.d.rawlog_off()
                    log('[%g ms] %s: %s done in %.0f s' % (rtt, folder, name,
                                                           time.monotonic() - t0))
        finally:
            for c in self.floor_conns.values():
                c.close()
            self.floor_conns = {}
            self.d.sessions_kept = 0
            if proxy is not None:
                proxy.close()
                self.proxies.remove(proxy)

    def cleanup(self):
        if self.live_mount is not None:
            try:
                self.live_mount.unmount()
            except Exception as e:  # noqa: BLE001 -- best effort on the way out
                log('cleanup: %s' % e)
        if bench.is_mounted(self.mnt):
            subprocess.run(['fusermount3', '-u', '-z', self.mnt])
        for p in self.proxies:
            p.close()
        for d in (self.main_d, self.mw_d):
            if d is not None:
                d.cleanup()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log('kept %s' % self.tmp)


# ---------------------------------------------------------------------------
# report

def target_of(floor):
    return None if floor is None else TARGET_FACTOR * floor + TARGET_ADD


def verdict(x, target):
    if x is None or target is None:
        return '?'
    return 'met' if x <= target else 'MISSED (%.1fx)' % (x / target)


def fmt_list(xs):
    if not xs:
        return '-'
    return '/'.join(str(x) for x in xs) if len(set(xs)) > 1 else str(xs[0])


def report(b, wall):
    a = b.args
    out = []
    add = out.append
    add('')
    add('imapfs search benchmark: folders %s; repeat %d (%s: %d); run %s' % (
        ', '.join('%s %d msgs' % kv for kv in b.folder_n.items()), a.repeat, BIG, a.big_repeat,
        time.strftime('%Y-%m-%d %H:%M %Z')))
    add('imapfs: %s (built from %s)' % (b.imapfs, b.source))
    add('server: Dovecot %s; MULTISEARCH %s, SEARCHRES %s' % (
        dovecot_version(), 'offered' if 'MULTISEARCH' in b.capabilities else 'not offered',
        'offered' if 'SEARCHRES' in b.capabilities else 'not offered'))
    add('hits: ' + '; '.join('%s %s %d' % (f, lab, len(h)) for (f, lab), h in b.hits.items()))
    add('target: ls <= %.1f x floor (direct UID SEARCH) + %d ms' % (TARGET_FACTOR,
                                                                     TARGET_ADD * 1000))
    rtts = sorted({k[0] for k in b.cells})
    hdr = ('%-6s %-6s %-8s %9s %9s %9s %9s %9s  %-7s %-7s %8s %8s %8s %9s  %s' % (
        'RTT', 'folder', 'crit', 'floor', 'floor+F', 'target', 'ls first', 'ls new', 'first',
        'new', 'ls -l', 'grep cold', 'grep warm', 'naive', 'ls -l bodies/searches, RTs'))
    add('')
    add(hdr)
    add('-' * len(hdr))
    for rtt in rtts:
        for folder in b.criteria:
            for label, *_ in b.criteria[folder]:
                def m(what, rtt=rtt, folder=folder, label=label):
                    return b.median(rtt, folder, label, what)
                c_first = b.cells.get((rtt, folder, label, 'ls first'), Cell())
                c_new = b.cells.get((rtt, folder, label, 'ls new'), Cell())
                c_l = b.cells.get((rtt, folder, label, 'ls -l'), Cell())
                t_first = target_of(m('floor'))
                t_new = target_of(m('floor larger'))
                rts = ('first %s, new %s' % (fmt_list(c_first.info.get('round trips')),
                                             fmt_list(c_new.info.get('round trips')))
                       if rtt else '-')
                add('%-6s %-6s %-8s %9s %9s %9s %9s %9s  %-7s %-7s %8s %8s %8s %9s  %s' % (
                    '%g ms' % rtt, folder, label, fmt_time(m('floor')),
                    fmt_time(m('floor+fetch')), fmt_time(t_first), fmt_time(m('ls first')),
                    fmt_time(m('ls new')), verdict(m('ls first'), t_first)[:7],
                    verdict(m('ls new'), t_new)[:7], fmt_time(m('ls -l')),
                    fmt_time(m('grep cold')), fmt_time(m('grep warm')),
                    fmt_time(m('grep naive')),
                    '%s+%s/%s, RTs %s' % (fmt_list(c_l.info.get('bodies (stats)')),
                                          fmt_list(c_l.info.get('bodies (dovecot)')),
                                          fmt_list(c_l.info.get('searches')), rts)))
    add('')
    add('columns: floor = UID SEARCH alone on a client with the folder examined, one sample '
        'right before each ls first sample; floor+F = UID '
        'SEARCH RETURN (SAVE) + UID FETCH $ (attributes) pipelined;')
    add('  target = %.1f x floor + %d ms; ls first = `ls RESULT` first thing on a fresh mount; '
        'ls new = `ls RESULT/larger=I` on a warm mount (its target uses the floor of the same '
        'criteria + LARGER I);' % (TARGET_FACTOR, TARGET_ADD * 1000))
    add('  first/new = target met?; ls -l = `ls -l RESULT` right after; grep cold/warm = '
        '`grep -il WORD RESULT/*/subject|body`, fresh mount / again; naive = the same over '
        'FOLDER/*/ on a fresh mount;')
    add('  bodies = message bodies fetched by the whole fresh mount (stats xattr + Dovecot '
        'counters), searches = the stats xattr; RTs = round trips of the ls, from Dovecot\'s '
        'raw log (meaningful at RTT > 0)')
    for (rtt, folder, label, what), c in sorted(b.cells.items(), key=lambda kv: str(kv[0])):
        if what in ('ls first', 'ls new') and c.info.get('commands'):
            add('  %g ms %s %s %s: commands per round trip: %s; ms before the 1st command %s, '
                'after the last %s, after the server\'s last answer line %s' % (
                    rtt, folder, label, what, c.info['commands'],
                    fmt_list(c.info.get('ms before 1st cmd')),
                    fmt_list(c.info.get('ms after last cmd')),
                    fmt_list(c.info.get('ms after the answer'))))
        if what == 'ls -l' and c.info.get('commands'):
            add('  %g ms %s %s ls -l after ls: commands %s' % (rtt, folder, label,
                                                              c.info['commands']))
        if what.startswith('grep') and c.info:
            add('  %g ms %s %s %s: %s' % (rtt, folder, label, what, {
                k: fmt_list(v) if isinstance(v, list) else v for k, v in c.info.items()}))
    if b.mw:
        add('')
        add('mount-wide search over %d folders (%d with hits, %d each), `ls MOUNT/.search/'
            'subject=%s`, fresh mount each run' % (MW_FOLDERS, len(b.mw_expect), MW_HITS,
                                                   SUBJECT_WORD_BIG))
        hdr = '%-6s %12s %9s %12s %9s %10s  %s' % ('RTT', 'floor (pipe)', 'ls', 'round trips',
                                                   'commands', 'then ls */', 'target')
        add(hdr)
        add('-' * len(hdr))
        for rtt in sorted(k for k in b.mw if not isinstance(k, tuple)):
            c = b.mw[rtt]
            fl = b.mw.get(('floor', rtt), Cell())
            rts = c.info.get('round trips', [])
            tgt_rt = 2 + MW_FOLDERS / max(1, b.args.connections)
            ok = rts and max(rts) <= TARGET_MW_RTS
            add('%-6s %12s %9s %12s %9s %10s  %s' % (
                '%g ms' % rtt, fmt_time(fl.med()), fmt_time(c.med()), fmt_list(rts),
                fmt_list(c.info.get('commands', [])),
                fmt_list(c.info.get('commands for the hits beneath', [])),
                ('<= %d: %s; without MULTISEARCH <= 2 + %d/%d = %.1f: %s' % (
                    TARGET_MW_RTS, 'met' if ok else 'MISSED', MW_FOLDERS, b.args.connections,
                    tgt_rt, 'met' if rts and max(rts) <= tgt_rt else 'MISSED'))
                if rtt else '(round trips not separable at 0 ms)'))
            if c.info.get('which'):
                add('  %g ms commands per round trip: %s; ms before the 1st command %s, from '
                    'the 1st to the last %s, after the last %s, after the server\'s last '
                    'answer line %s' % (
                        rtt, c.info['which'], fmt_list(c.info.get('ms before 1st cmd')),
                        fmt_list(c.info.get('ms first to last cmd')),
                        fmt_list(c.info.get('ms after last cmd')),
                        fmt_list(c.info.get('ms after the answer'))))
        add('  floor (pipe) = a client logged in (not timed) pipelining EXAMINE + UID SEARCH '
            'RETURN (SAVE) + UID FETCH $ for all %d folders (one round trip), a new session '
            'each run' % MW_FOLDERS)
    add('')
    add('targets (issue 11):')
    for rtt in rtts:
        for folder in b.criteria:
            for label, *_ in b.criteria[folder]:
                def m(what, rtt=rtt, folder=folder, label=label):
                    return b.median(rtt, folder, label, what)
                for what, fl in (('ls first', 'floor'), ('ls new', 'floor larger')):
                    t = target_of(m(fl))
                    add('  %-5s %-6s %-8s %-9s %9s <= %9s: %s' % (
                        '%g ms' % rtt, folder, label, what, fmt_time(m(what)), fmt_time(t),
                        verdict(m(what), t)))
    bodies = [x for (_r, _f, _l, w), c in b.cells.items() if w == 'ls -l'
              for key in ('bodies (stats)', 'bodies (dovecot)') for x in c.info.get(key, [])]
    add('  ls -l of a result fetches no body: %s' % (
        ('met (0 in %d counts)' % len(bodies)) if bodies and max(bodies) == 0 else
        'MISSED (%s)' % bodies if bodies else '?'))
    if b.failures:
        add('')
        add('!!! %d CHECK(S) FAILED:' % len(b.failures))
        for f in b.failures:
            add('!!!   ' + f)
    else:
        add('')
        add('checks: every listing and grep gave exactly the server\'s own hits')
    add('(total wall time %.0f s; a shared 2-core machine: expect noise)' % wall)
    return '\n'.join(out)


def dovecot_version():
    p = subprocess.run(['dovecot', '--version'], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return p.stdout.decode().strip() or '?'


def main(argv=None):
    ap = argparse.ArgumentParser(description='imapfs search benchmark (bench/README.md)')
    ap.add_argument('--imapfs', required=True, help='the imapfs binary')
    ap.add_argument('--messages', type=int, default=5000,
                    help='messages in folder Bench (the normal corpus), default 5000; 0 leaves '
                    'it out')
    ap.add_argument('--big-messages', type=int, default=100000,
                    help='minimal messages in folder Big, default 100000; 0 leaves it out')
    ap.add_argument('--rtt-ms', default='0,50')
    ap.add_argument('--repeat', type=int, default=5, help='runs per measurement, default 5')
    ap.add_argument('--big-repeat', type=int, default=3, help='runs for folder Big, default 3')
    ap.add_argument('--slow-seconds', type=float, default=30.0)
    ap.add_argument('--skip-grep', action='store_true')
    ap.add_argument('--skip-mountwide', action='store_true')
    ap.add_argument('--connections', type=int, default=4,
                    help='imapfs connections (its default), for the mount-wide target')
    ap.add_argument('--quick', action='store_true',
                    help='smoke run: 500 + 2,000 messages, one run each')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--keep', action='store_true')
    # bench.Mount reads these
    ap.add_argument('--cache-size', help=argparse.SUPPRESS)
    ap.add_argument('--imapfs-config', action='append', metavar='KEY=VALUE',
                    help='an extra key for the imapfs config (repeatable)')
    args = ap.parse_args(argv)
    if args.quick:
        args.messages, args.big_messages = 500, min(args.big_messages, 2000)
        args.repeat, args.big_repeat = 1, 1
    rtts = bench.parse_rtts(args.rtt_ms)
    if not bench.may_run('search_bench.py'):
        return 2

    b = SearchBench(args)
    t_start = time.monotonic()

    def body():
        b.setup()
        for rtt in rtts:
            b.run_rtt(rtt)
        if not args.skip_mountwide:
            b.setup_mountwide()
            for rtt in rtts:
                log('[%g ms] mount-wide ...' % rtt)
                try:
                    b.mountwide(rtt, args.repeat)
                except BenchError as e:
                    b.failures.append('[%g ms] mount-wide: %s' % (rtt, e))
                    if b.live_mount is not None:
                        b.live_mount.unmount()
    ret = bench.guarded('search_bench.py', b, body, lambda: b.cells)
    if ret is not None:
        return ret
    print(report(b, time.monotonic() - t_start))
    return 1 if b.failures else 0


if __name__ == '__main__':
    sys.exit(main())
