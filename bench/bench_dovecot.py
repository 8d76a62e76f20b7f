#!/usr/bin/python3
"""The benchmark's Dovecot: tests/harness/dovecot.py's Dovecot plus server-side counters.

BenchDovecot adds two settings to the harness's dovecot.conf (the harness itself is not changed):

  imap_logout_format  every IMAP session logs, when it ends, how many message bodies and
                      headers it sent (fetch_body_count / fetch_hdr_count); session_counts()
                      sums these over the sessions that ended after a log offset.  imapfs logs
                      out when it is unmounted, so one mount is one or more sessions.
  rawlog_dir          Dovecot writes a raw log of a session (what the client sent, *.in) only
                      if this directory exists when the session logs in.  rawlog_on() creates
                      it and rawlog_off() removes it, so only the sessions we ask for (listings
                      in the ls -l measurements) are logged and the bulk fetches are not slowed.

Mail is seeded by writing Maildir files directly (corpus.seed_maildir), then indexed by a first
access (index_folder).
"""

import glob
import imaplib
import os
import pwd
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'harness'))

import dovecot  # noqa: E402  (tests/harness/dovecot.py)

LOGOUT_FORMAT = ('in=%i out=%o hdr_count=%{fetch_hdr_count} hdr_bytes=%{fetch_hdr_bytes} '
                 'body_count=%{fetch_body_count} body_bytes=%{fetch_body_bytes}')
_COUNT_RE = re.compile(r'hdr_count=(\d+) hdr_bytes=(\d+) body_count=(\d+) body_bytes=(\d+)')


class BenchDovecot(dovecot.Dovecot):

    def _write_conf(self):
        super()._write_conf()
        self.rawlog_dir = os.path.join(self.workdir, 'rawlog')
        with open(self.conf, 'a') as f:
            f.write('\n# Added by bench/bench_dovecot.py: per-session fetch counters and an\n'
                    '# opt-in raw log (only written while the directory exists).\n'
                    'imap_logout_format = %s\n'
                    'rawlog_dir = %s\n' % (LOGOUT_FORMAT, self.rawlog_dir))

    # -- paths ---------------------------------------------------------------

    def maildir_folder(self, name):
        """The Maildir directory of folder `name` (LAYOUT=fs, separator '/')."""
        home = os.path.join(self.workdir, 'home', self.user, 'Maildir')
        return home if name == 'INBOX' else os.path.join(home, *name.split('/'))

    def owner(self):
        dv = pwd.getpwnam('dovecot')
        return dv.pw_uid, dv.pw_gid

    # -- counters ------------------------------------------------------------

    def log_offset(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def _imap_children(self):
        n = 0
        for pid in self.processes():
            try:
                with open('/proc/%d/comm' % pid) as f:
                    if f.read().strip() == 'imap':
                        n += 1
            except OSError:
                pass
        return n

    # Sessions the caller keeps open on purpose (a benchmark's own client): wait_sessions_ended
    # waits until no more imap processes than these are left.
    sessions_kept = 0

    def wait_sessions_ended(self, timeout=20.0):
        """Wait until no imap process is left (each serves one session) but sessions_kept, and
        the log is quiet."""
        deadline = time.monotonic() + timeout
        while self._imap_children() > self.sessions_kept and time.monotonic() < deadline:
            time.sleep(0.05)
        last = -1
        while time.monotonic() < deadline:
            size = self.log_offset()
            if size == last:
                break
            last = size
            time.sleep(0.25)

    def session_counts(self, offset):
        """Sum the logout counters of sessions that ended after log offset `offset`.

        Returns dict(sessions, body_count, body_bytes, hdr_count, hdr_bytes)."""
        out = {'sessions': 0, 'body_count': 0, 'body_bytes': 0, 'hdr_count': 0, 'hdr_bytes': 0}
        with open(self.log, 'rb') as f:
            f.seek(offset)
            text = f.read().decode('utf-8', 'replace')
        for line in text.splitlines():
            if 'imap(' not in line:
                continue
            m = _COUNT_RE.search(line)
            if not m:
                continue
            out['sessions'] += 1
            out['hdr_count'] += int(m.group(1))
            out['hdr_bytes'] += int(m.group(2))
            out['body_count'] += int(m.group(3))
            out['body_bytes'] += int(m.group(4))
        return out

    # -- raw log ---------------------------------------------------------------

    def rawlog_on(self):
        shutil.rmtree(self.rawlog_dir, ignore_errors=True)
        os.makedirs(self.rawlog_dir)
        uid, gid = self.owner()
        os.chown(self.rawlog_dir, uid, gid)
        os.chmod(self.rawlog_dir, 0o700)

    def rawlog_read(self):
        """The client commands recorded so far, without stopping the raw log: a list of
        (wall-clock timestamp, session file, tag, command name) sorted by time."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.rawlog_dir, '*.in'))):
            with open(path, 'rb') as f:
                data = f.read()
            out += [(ts, os.path.basename(path), tag, name)
                    for ts, tag, name in parse_client_commands_timed(data)]
        return sorted(out, key=lambda x: (x[0] or 0.0))

    def rawlog_out_times(self):
        """(wall-clock timestamp, session file *.in) of every line the server wrote in the
        raw-logged sessions (*.out), sorted: when its answers left, to tell the server's time
        from the client's."""
        out = []
        for path in glob.glob(os.path.join(self.rawlog_dir, '*.out')):
            with open(path, 'rb') as f:
                data = f.read()
            session = os.path.basename(path)[:-len('.out')] + '.in'
            out += [(float(m.group(1)), session)
                    for m in re.finditer(rb'^(\d+\.\d+) ', data, re.M)]
        return sorted(out)

    def rawlog_off(self):
        """Remove the raw log directory; return the client commands it recorded.

        Returns a list of (tag, command name) over every session's *.in file."""
        cmds = []
        for path in sorted(glob.glob(os.path.join(self.rawlog_dir, '*.in'))):
            with open(path, 'rb') as f:
                data = f.read()
            cmds += parse_client_commands(data)
        shutil.rmtree(self.rawlog_dir, ignore_errors=True)
        return cmds

    # -- seeding ---------------------------------------------------------------

    def index_folder(self, name, expect):
        """EXAMINE the folder and fetch every message's attributes once, so Dovecot builds its
        index now rather than during a measurement; return {uid: message index} read from the
        Message-IDs (<bench-N.SEED@imapfs.bench>)."""
        c = self.connect()
        try:
            typ, _ = c.select(dovecot._mailbox_arg(name), readonly=True)
            if typ != 'OK':
                raise dovecot.HarnessError('EXAMINE %s failed' % name)
            typ, data = c.uid('FETCH', '1:*', '(UID FLAGS INTERNALDATE RFC822.SIZE '
                              'BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
            if typ != 'OK':
                raise dovecot.HarnessError('UID FETCH in %s failed' % name)
            uid_map = {}
            for item in data:
                if not isinstance(item, tuple):
                    continue
                mu = re.search(rb'UID (\d+)', item[0])
                mi = re.search(rb'<bench-(\d+)\.', item[1])
                if mu and mi:
                    uid_map[int(mu.group(1))] = int(mi.group(1))
            c.close()
        finally:
            try:
                c.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
        if len(uid_map) != expect:
            raise dovecot.HarnessError('%s holds %d messages, expected %d' % (
                name, len(uid_map), expect))
        return uid_map


def parse_client_commands(data):
    """(tag, command) for each command line in a client-to-server raw log (*.in); see
    parse_client_commands_timed."""
    return [(tag, name) for _ts, tag, name in parse_client_commands_timed(data)]


def parse_client_commands_timed(data):
    """(timestamp, tag, command) for each command line in a client-to-server raw log (*.in).

    Dovecot's raw log starts every line with a timestamp ("1700000000.123456 ", wall clock,
    None if a line has none).  Literal data ({n} / {n+}) is skipped, so a literal is never
    mistaken for a command.  A command is its first word, plus the second for UID commands
    ('UID FETCH')."""
    cmds = []
    literal_left = 0
    for raw in data.split(b'\n'):
        mt = re.match(rb'^(\d+\.\d+) ', raw)
        ts = float(mt.group(1)) if mt else None
        line = raw[mt.end():].rstrip(b'\r') if mt else raw.rstrip(b'\r')
        if literal_left > 0:
            # this line starts inside a literal; whatever follows it continues the command
            literal_left -= len(line) + 2
            if literal_left >= 0:
                continue
            literal_left = 0
            m = re.search(rb'\{(\d+)\+?\}$', line)
            if m:
                literal_left = int(m.group(1))
            continue
        words = line.split(b' ')
        if len(words) >= 2 and words[0]:
            name = words[1].upper().decode('ascii', 'replace')
            if name == 'UID' and len(words) >= 3:
                name += ' ' + words[2].upper().decode('ascii', 'replace')
            cmds.append((ts, words[0].decode('ascii', 'replace'), name))
        m = re.search(rb'\{(\d+)\+?\}$', line)
        if m:
            literal_left = int(m.group(1))
    return cmds
