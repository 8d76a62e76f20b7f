#!/usr/bin/python3
"""Integration tests of the imapfs daemon: a real Dovecot (tests/harness/dovecot.py) and a real
FUSE mount, used the way a user would (os.listdir, open, stat, grep -r, find, xargs cat).

Environment (set by tests/fs/meson.build):
    IMAPFS_BIN           the built imapfs executable
    IMAPFS_HARNESS_DIR   tests/harness (dovecot.py, sample_mail.py)

Fails (never skips) when /dev/fuse, fusermount3 or Dovecot is missing.  Every mount is removed
with `fusermount3 -uz` in teardown, even when a test fails.  Python stdlib only.
"""

import concurrent.futures
import errno
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
import dovecot  # noqa: E402
import sample_mail  # noqa: E402
from cases import DovecotCase, temp_dir  # noqa: E402
from mounts import (IMAPFS, MOUNT_TIMEOUT, Mount, daemon_pids, mounted,  # noqa: E402
                    require_environment, unmount, write_config)
from probes import all_files, read  # noqa: E402


class MountTest(DovecotCase):
    """Shares one seeded Dovecot and one background mount across tests."""

    tmp_prefix = 'ifs'

    @classmethod
    def seed(cls):
        cls.seeded = sample_mail.seed(cls.d)
        # The numeric-folder rule: child folders named like UIDs of their parent.
        cls.d.create_folder('Archive/1')
        cls.d.create_folder('Archive/1.d')
        cls.d.append('Archive/1', b'Subject: in folder one\r\n\r\nnumeric folder\r\n')
        cls.d.append('Archive/1.d', b'Subject: in folder one.d\r\n\r\nx\r\n')
        cls.folders = [n for n, f, _ in cls.d.list_folders() if '\\Noselect' not in f]
        cls.flags_before = {f: cls.d.flags(f) for f in cls.folders}
        cls.cfg = write_config(os.path.join(cls.tmp, 'config'), cls.d)
        cls.m = cls.class_mount(cls.cfg)
        cls.mnt = cls.m.path

    def path(self, folder, *rest):
        return os.path.join(self.mnt, *folder.split('/'), *[str(r) for r in rest])

    def seeded_uid(self, folder, index):
        """UID of the index-th (0-based) seeded message of folder."""
        return [uid for f, uid, _r, _fl in self.seeded if f == folder][index]

    # -- layout --------------------------------------------------------------

    def test_layout(self):
        top = set(os.listdir(self.mnt))
        self.assertTrue({'INBOX', 'Archive', 'Newsletters', 'Work', 'Lists',
                         '받은편지함'} <= top, top)
        self.assertIn('2024.d', os.listdir(self.path('Archive')))
        self.assertIn('Projects', os.listdir(self.path('Work')))
        self.assertEqual(os.listdir(self.path('Lists')), ['dev'])  # \Noselect: no messages
        for f, uid, raw, _fl in self.seeded:
            p = self.path(f.replace('2024', '2024.d'), uid)
            self.assertTrue(stat.S_ISDIR(os.stat(p).st_mode), p)
        names = set(os.listdir(self.path('INBOX', self.seeded_uid('INBOX', 0))))
        self.assertTrue({'message.eml', 'subject', 'from', 'to', 'date', 'headers', 'body',
                         'flags'} <= names, names)

    def test_modes_owner_times(self):
        uid = self.seeded_uid('INBOX', 0)
        raw = [r for f, u, r, _ in self.seeded if f == 'INBOX' and u == uid][0]
        st = os.stat(self.path('INBOX', uid))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o500)  # private (fs/owner.h)
        self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()))
        self.assertEqual(st.st_mtime, sample_mail.message_date(raw).timestamp())
        for name in os.listdir(self.path('INBOX', uid)):
            fst = os.stat(self.path('INBOX', uid, name))
            self.assertEqual(stat.S_IMODE(fst.st_mode), 0o400, name)
            self.assertEqual(len(read(self.path('INBOX', uid, name))), fst.st_size, name)
        self.assertEqual(stat.S_IMODE(os.stat(self.mnt).st_mode), 0o500)

    def test_numeric_folder_rule(self):
        entries = os.listdir(self.path('Archive'))
        self.assertIn('1', entries)        # message UID 1 of Archive
        self.assertIn('1.d', entries)      # folder "Archive/1"
        self.assertIn('1.d.d', entries)    # folder "Archive/1.d"
        self.assertIn('2024.d', entries)   # folder "Archive/2024"
        self.assertTrue(os.path.isfile(self.path('Archive', '1', 'message.eml')))
        self.assertEqual(read(self.path('Archive', '1.d', '1', 'subject')), b'in folder one\n')
        self.assertEqual(read(self.path('Archive', '1.d.d', '1', 'subject')),
                         b'in folder one.d\n')
        self.assertEqual(os.listdir(self.path('Archive', '2024.d')),
                         [str(u) for f, u, _r, _fl in self.seeded if f == 'Archive/2024'])

    # -- content -------------------------------------------------------------

    def test_message_eml_byte_exact(self):
        for f, uid, raw, _fl in self.seeded:
            p = self.path(f.replace('2024', '2024.d'), uid, 'message.eml')
            server = self.d.fetch_raw(f, uid)
            self.assertEqual(server, raw)
            self.assertEqual(read(p), server, p)
            self.assertEqual(os.stat(p).st_size, len(server), p)

    def test_decoded_korean_utf8_and_euckr(self):
        u2, u3 = self.seeded_uid('INBOX', 1), self.seeded_uid('INBOX', 2)
        self.assertEqual(read(self.path('INBOX', u2, 'subject')).decode(), '회의 일정 안내\n')
        self.assertEqual(read(self.path('INBOX', u3, 'subject')).decode(),
                         '견적서 보내드립니다\n')
        body = read(self.path('INBOX', u3, 'body')).decode('utf-8')
        self.assertIn('요청하신 견적서를 보내드립니다.', body)
        self.assertIn('영업팀', read(self.path('INBOX', u3, 'from')).decode())

    def test_html_only(self):
        uid = self.seeded_uid('Newsletters', 0)
        d = self.path('Newsletters', uid)
        self.assertIn('body.html', os.listdir(d))
        body = read(os.path.join(d, 'body')).decode('utf-8')
        self.assertIn('Weekly News', body)
        self.assertNotIn('<p>', body)
        self.assertNotIn('do not show this', body)
        self.assertIn('<h1>', read(os.path.join(d, 'body.html')).decode())

    def test_optional_files(self):
        for f, uid, raw, _fl in self.seeded:
            d = self.path(f.replace('2024', '2024.d'), uid)
            names = os.listdir(d)
            head = raw.split(b'\r\n\r\n', 1)[0].lower()
            self.assertEqual('cc' in names, b'\r\ncc:' in b'\r\n' + head, d)
            self.assertEqual('message-id' in names, b'\r\nmessage-id:' in b'\r\n' + head, d)
            if b'\r\nsubject:' not in b'\r\n' + head:
                self.assertEqual(read(os.path.join(d, 'subject')), b'\n')
            for name in ('subject', 'from', 'to', 'date', 'cc', 'message-id'):
                if name in names:
                    self.assertTrue(read(os.path.join(d, name)).endswith(b'\n'), (d, name))

    def test_attachments(self):
        found = [p for p in all_files(self.mnt) if '/attachments/' in p]
        names = {os.path.basename(p) for p in found}
        self.assertIn('report-q4.pdf', names)
        self.assertIn('보고서.txt', names)
        pdf = [p for p in found if p.endswith('report-q4.pdf')][0]
        self.assertTrue(read(pdf).startswith(b'%PDF'))

    def test_flags_file(self):
        for f, uid, _raw, flags in self.seeded:
            got = read(self.path(f.replace('2024', '2024.d'), uid, 'flags')).decode()
            self.assertEqual(sorted(got.splitlines()), sorted(flags), (f, uid))
            self.assertTrue(got == '' or got.endswith('\n'))

    def test_grep_and_find(self):
        res = subprocess.run(['grep', '-rl', '--include=body', 'invoice',
                              self.path('INBOX')], stdout=subprocess.PIPE, check=True)
        hits = res.stdout.decode().split()
        self.assertTrue(hits)
        for h in hits:
            self.assertIn('invoice', read(h).decode().lower())
        res = subprocess.run(['find', self.mnt, '-type', 'f'], stdout=subprocess.PIPE,
                             check=True)
        self.assertEqual(sorted(res.stdout.decode().split('\n')[:-1]),
                         sorted(all_files(self.mnt)))

    # -- read-only -----------------------------------------------------------

    def assertErrno(self, codes, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        self.assertIn(cm.exception.errno, codes, (fn, args, cm.exception))

    def test_erofs_for_every_change(self):
        msgdir = self.path('INBOX', self.seeded_uid('INBOX', 0))
        eml = os.path.join(msgdir, 'message.eml')
        ro = (errno.EROFS,)
        self.assertErrno(ro, open, eml, 'wb')
        self.assertErrno(ro, open, eml, 'r+b')
        self.assertErrno(ro, open, eml, 'ab')
        self.assertErrno(ro, os.open, eml, os.O_RDONLY | os.O_TRUNC)
        self.assertErrno(ro, os.open, os.path.join(msgdir, 'new'), os.O_WRONLY | os.O_CREAT)
        self.assertErrno(ro, os.mkdir, self.path('INBOX', 'newdir'))
        self.assertErrno(ro, os.mkdir, os.path.join(self.mnt, 'Newfolder'))
        self.assertErrno(ro, os.rmdir, self.path('Lists', 'dev'))
        self.assertErrno(ro, os.rmdir, msgdir)
        self.assertErrno(ro, os.unlink, eml)
        self.assertErrno(ro, os.rename, eml, os.path.join(msgdir, 'x.eml'))
        self.assertErrno(ro, os.rename, self.path('Work'), self.path('Work2'))
        self.assertErrno(ro, os.symlink, 'target', os.path.join(msgdir, 'link'))
        self.assertErrno(ro, os.link, eml, os.path.join(msgdir, 'hard'))
        self.assertErrno(ro, os.mkfifo, os.path.join(msgdir, 'fifo'))
        self.assertErrno(ro, os.mknod, os.path.join(msgdir, 'node'), 0o600 | stat.S_IFREG)
        self.assertErrno(ro, os.chmod, eml, 0o644)
        self.assertErrno(ro, os.chown, eml, 1, 1)
        self.assertErrno(ro, os.truncate, eml, 0)
        self.assertErrno(ro, os.utime, eml, (0, 0))
        self.assertErrno(ro + (errno.ENOTSUP,), os.setxattr, eml, 'user.x', b'1')
        self.assertErrno(ro + (errno.ENOTSUP, errno.ENODATA), os.removexattr, eml, 'user.x')
        self.assertEqual(read(eml), self.d.fetch_raw('INBOX', self.seeded_uid('INBOX', 0)))

    def test_missing_is_enoent(self):
        self.assertErrno((errno.ENOENT,), os.stat, self.path('NoSuchFolder'))
        self.assertErrno((errno.ENOENT,), os.stat, self.path('INBOX', 999999))
        self.assertErrno((errno.ENOENT,), os.stat, self.path('INBOX', '0'))
        self.assertErrno((errno.ENOENT,), os.stat,
                         self.path('INBOX', self.seeded_uid('INBOX', 0), 'nosuchview'))

    def test_zz_flags_unchanged_after_reading_everything(self):
        for p in all_files(self.mnt):
            read(p)
        after = {f: self.d.flags(f) for f in self.folders}
        self.assertEqual(after, self.flags_before)

    # -- concurrency ---------------------------------------------------------

    def test_parallel_readers_cold(self):
        """16 parallel readers on a fresh mount get the bytes one sequential reader gets."""
        files = all_files(self.mnt)
        expected = {os.path.relpath(p, self.mnt): read(p) for p in files}
        m2 = Mount(self.tmp, self.cfg, name='mnt-par')
        try:
            rels = sorted(expected)
            with concurrent.futures.ThreadPoolExecutor(16) as ex:
                got = dict(zip(rels, ex.map(lambda r: read(os.path.join(m2.path, r)),
                                            rels)))
            self.assertEqual(got, expected)
            res = subprocess.run('find . -type f -print0 | xargs -0 -P16 -n50 cat | wc -c',
                                 shell=True, cwd=m2.path, stdout=subprocess.PIPE, check=True)
            self.assertEqual(int(res.stdout), sum(len(v) for v in expected.values()))
        finally:
            m2.close()

    # -- new and expunged mail ------------------------------------------------

    def test_refresh_new_and_expunged_mail(self):
        folder = 'Work'
        uid = self.d.append(folder, b'Subject: fresh\r\n\r\nnew mail\r\n')
        try:
            deadline = time.monotonic() + 10
            while str(uid) not in os.listdir(self.path(folder)):
                self.assertLess(time.monotonic(), deadline, 'new mail never appeared')
                time.sleep(0.3)
            self.assertEqual(read(self.path(folder, uid, 'subject')), b'fresh\n')
        finally:
            self.d.expunge(folder, [uid])
        deadline = time.monotonic() + 10
        while str(uid) in os.listdir(self.path(folder)):
            self.assertLess(time.monotonic(), deadline, 'expunged mail never went away')
            time.sleep(0.3)
        time.sleep(0.5)  # the kernel entry is invalidated asynchronously
        self.assertFalse(os.path.exists(self.path(folder, uid)))
        self.flags_before[folder] = self.d.flags(folder)


    def test_uidvalidity_change_drops_cache(self):
        self.d.create_folder('Recreated')
        self.d.append('Recreated', b'Subject: first life\r\n\r\none\r\n')
        old_v = self.d.uidvalidity('Recreated')
        deadline = time.monotonic() + 10
        while not os.path.isdir(self.path('Recreated', 1)):
            self.assertLess(time.monotonic(), deadline, 'new folder never appeared')
            time.sleep(0.3)
        self.assertEqual(read(self.path('Recreated', 1, 'subject')), b'first life\n')
        ino = os.stat(self.path('Recreated', 1)).st_ino
        self.d.recreate_folder('Recreated')
        self.d.append('Recreated', b'Subject: second life\r\n\r\ntwo\r\n')
        self.assertNotEqual(self.d.uidvalidity('Recreated'), old_v)
        deadline = time.monotonic() + 10
        while True:
            try:
                os.listdir(self.path('Recreated'))
            except FileNotFoundError:
                pass  # a refresh of the folder list in the moment the folder was gone
            time.sleep(0.3)  # kernel invalidations are sent asynchronously
            try:
                if read(self.path('Recreated', 1, 'subject')) == b'second life\n':
                    break
            except FileNotFoundError:
                pass
            self.assertLess(time.monotonic(), deadline, 'old content survived UIDVALIDITY')
            time.sleep(0.5)
        self.assertNotEqual(os.stat(self.path('Recreated', 1)).st_ino, ino)


class DebugTraceTest(unittest.TestCase):
    """A foreground -d daemon: the protocol trace shows only read-only commands, stat of a
    folder fetches no bodies, and the password appears in no log, argv or environment."""

    def test_trace_and_secrets(self):
        require_environment()
        with temp_dir('ifs') as tmp, dovecot.Dovecot() as d:
            m = None
            log = ''
            try:
                sample_mail.seed(d)
                cfg = write_config(os.path.join(tmp, 'config'), d)
                m = Mount(tmp, cfg, foreground=True, debug=True)
                for name in os.listdir(os.path.join(m.path, 'INBOX')):
                    os.stat(os.path.join(m.path, 'INBOX', name))
                subprocess.run(['ls', '-l', os.path.join(m.path, 'INBOX')], check=True,
                               stdout=subprocess.DEVNULL)
                time.sleep(0.3)
                self.assertIn('UID FETCH 1:*', m.log_text())
                self.assertNotIn('BODY.PEEK[]', m.log_text(),
                                 'stat/ls -l of a folder fetched a message body')
                for p in all_files(m.path):
                    read(p)
                pid = m.proc.pid
                with open('/proc/%d/cmdline' % pid, 'rb') as f:
                    self.assertNotIn(d.password.encode(), f.read())
                with open('/proc/%d/environ' % pid, 'rb') as f:
                    self.assertNotIn(d.password.encode(), f.read())
            finally:
                if m is not None:
                    m.close()
                    log = m.log_text()
        self.assertNotIn(d.password, log)
        commands = re.findall(r'imap: C: (.*)', log)
        self.assertTrue(any('EXAMINE' in c for c in commands), log[-2000:])
        self.assertTrue(any('BODY.PEEK[]' in c for c in commands))
        for c in commands:
            self.assertNotRegex(c, r'^\S+ (UID )?(SELECT|STORE|EXPUNGE|APPEND|COPY|MOVE|'
                                   r'CREATE|DELETE|RENAME)\b', c)
            self.assertNotRegex(c.replace('BODY.PEEK[', ''), r'BODY\[', c)
        # the *_compress run really compresses (write_config says compress = on; the
        # default, auto, would not ask a loopback Dovecot), the plain run never asks
        asked = [c for c in commands if re.match(r'^\S+ COMPRESS DEFLATE\b', c)]
        sizes = [(int(r), int(p)) for r, p in re.findall(
            r'compression with \S+: received (\d+) bytes for (\d+)', log)]
        if d.compress:
            self.assertTrue(asked, 'no COMPRESS DEFLATE in the trace')
            self.assertTrue(any(p > r > 0 for r, p in sizes), sizes)
        else:
            self.assertEqual((asked, sizes), ([], []))


class StartupErrorTest(DovecotCase):
    """Every setup mistake: one 'imapfs: ' line, a non-zero exit, no mount, no process."""

    tmp_prefix = 'ifs'

    @classmethod
    def seed(cls):
        cls.mnt = os.path.join(cls.tmp, 'mnt')
        os.mkdir(cls.mnt)
        cls.addClassCleanup(unmount, cls.mnt)

    def tearDown(self):
        unmount(self.mnt)

    def run_imapfs(self, *args, mnt=None):
        res = subprocess.run([IMAPFS] + list(args) + [mnt or self.mnt],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, timeout=60)
        return res.returncode, res.stderr.decode('utf-8', 'replace')

    def assertCleanFailure(self, rc, err, pattern, mnt=None):
        self.assertNotEqual(rc, 0, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith('imapfs: '), err)
        self.assertRegex(lines[0], pattern)
        self.assertFalse(mounted(mnt or self.mnt))
        self.assertEqual(daemon_pids(mnt or self.mnt), [])
        self.assertNotIn(self.d.password, err)

    def cfg(self, name='config', **kw):
        return write_config(os.path.join(self.tmp, name), self.d, **kw)

    def test_wrong_password(self):
        rc, err = self.run_imapfs('-o', 'config=' + self.cfg(password='wrong-password'))
        self.assertCleanFailure(rc, err, r'(?i)log ?in|auth')

    def test_unknown_ca(self):
        rc, err = self.run_imapfs('-o', 'config=' + self.cfg(ca_file=None))
        self.assertCleanFailure(rc, err, r'(?i)certificate|verif|tls')

    def test_missing_config(self):
        rc, err = self.run_imapfs('-o', 'config=' + os.path.join(self.tmp, 'nope'))
        self.assertCleanFailure(rc, err, r'nope.*No such file')

    def test_malformed_config(self):
        p = os.path.join(self.tmp, 'bad')
        with open(p, 'w') as f:
            f.write('this is not an ini file\n')
        rc, err = self.run_imapfs('-o', 'config=' + p)
        self.assertCleanFailure(rc, err, r'malformed')

    def test_unknown_account(self):
        rc, err = self.run_imapfs('-o', 'config=' + self.cfg(), '-o', 'account=work')
        self.assertCleanFailure(rc, err, r'\[work\]')

    def test_group_readable_password(self):
        rc, err = self.run_imapfs('-o', 'config=' + self.cfg(mode=0o640))
        self.assertCleanFailure(rc, err, r'readable by group or others')

    def test_pass_cmd_and_account(self):
        pwfile = os.path.join(self.tmp, 'pw')
        with open(pwfile, 'w') as f:
            f.write(self.d.password + '\n')
        cfg = self.cfg(name='cfg-acct', account='work', password=None, mode=0o644,
                       pass_cmd='cat ' + pwfile)
        rc, err = self.run_imapfs('-o', 'config=' + cfg, '-o', 'account=work')
        self.assertEqual(rc, 0, err)
        self.assertTrue(mounted(self.mnt))
        self.assertIn('INBOX', os.listdir(self.mnt))
        # already mounted: refused, the existing mount stays
        rc, err = self.run_imapfs('-o', 'config=' + cfg, '-o', 'account=work')
        self.assertNotEqual(rc, 0)
        self.assertRegex(err, r'^imapfs: .*already mounted')
        self.assertTrue(mounted(self.mnt))
        pids = daemon_pids(self.mnt)
        self.assertEqual(len(pids), 1)
        subprocess.run(['fusermount3', '-u', self.mnt], check=True)
        deadline = time.monotonic() + 10
        while daemon_pids(self.mnt) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(daemon_pids(self.mnt), [], 'daemon survived fusermount3 -u')
        self.assertFalse(mounted(self.mnt))

    def test_refused_port(self):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()   # nothing listens there now
        rc, err = self.run_imapfs('-o', 'config=' + self.cfg(port=str(port)))
        self.assertCleanFailure(rc, err, r'Connection refused')

    def test_unreachable_host(self):
        # In a network namespace of its own (no interface up, no route) a TEST-NET address
        # (RFC 5737) is unreachable: the connect fails at once and no packet leaves anywhere.
        # (A name that does not resolve would ask the machine's DNS server, off this host.)
        cfg = self.cfg(name='cfg-unreach', host='192.0.2.1')
        res = subprocess.run(['unshare', '--net', IMAPFS, '-o', 'config=' + cfg, self.mnt],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, timeout=60)
        self.assertCleanFailure(res.returncode, res.stderr.decode('utf-8', 'replace'),
                                r'192\.0\.2\.1.*(?i:unreachable)')

    def test_bad_certificates(self):
        for kind, pattern in (('expired', r'certificate has expired'),
                              ('unknown_ca', r'(?i)certificate verification failed'),
                              ('wrong_host', r'(?i)mismatch')):
            host, port = self.d.bad[kind]
            rc, err = self.run_imapfs('-o', 'config=' + self.cfg(
                name='cfg-' + kind, host=host, port=str(port)))
            with self.subTest(kind=kind):
                self.assertCleanFailure(rc, err, pattern)

    def test_pass_cmd_gets_no_secret(self):
        """pass_cmd is the only process imapfs starts: its environment holds no password and
        no imapfs variable carrying one; the daemon's own argv and environment neither."""
        envfile = os.path.join(self.tmp, 'passcmd-env')
        script = os.path.join(self.tmp, 'passcmd.sh')
        with open(script, 'w') as f:
            f.write('#!/bin/sh\nenv > %s\nprintf "%%s\\n" "$PW"\n' % envfile)
        os.chmod(script, 0o700)
        cfg = self.cfg(name='cfg-passenv', password=None, mode=0o644, pass_cmd=script)
        env = dict(os.environ, PW=self.d.password)   # what pass_cmd prints: the password
        res = subprocess.run([IMAPFS, '-o', 'config=' + cfg, self.mnt], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn('INBOX', os.listdir(self.mnt))
        with open(envfile, 'rb') as f:
            child_env = f.read()
        # PW is ours (the test's way to hand pass_cmd the password); nothing else may hold it
        lines = [ln for ln in child_env.splitlines() if not ln.startswith(b'PW=')]
        self.assertNotIn(self.d.password.encode(), b'\n'.join(lines))
        for pid in daemon_pids(self.mnt):
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                self.assertNotIn(self.d.password.encode(), f.read())

    def test_missing_mountpoint(self):
        missing = os.path.join(self.tmp, 'no-such-dir')
        rc, err = self.run_imapfs('-o', 'config=' + self.cfg(), mnt=missing)
        self.assertCleanFailure(rc, err, r'no-such-dir', mnt=missing)

    def test_mountpoint_not_a_directory(self):
        f = os.path.join(self.tmp, 'a-file')
        open(f, 'w').close()
        rc, err = self.run_imapfs('-o', 'config=' + self.cfg(), mnt=f)
        self.assertCleanFailure(rc, err, r'not a directory', mnt=f)

    def test_sigterm_unmounts(self):
        log = open(os.path.join(self.tmp, 'fg.log'), 'wb')
        p = subprocess.Popen([IMAPFS, '-f', '-o', 'config=' + self.cfg(), self.mnt],
                             stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + MOUNT_TIMEOUT
            while not mounted(self.mnt):
                self.assertIsNone(p.poll())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            os.listdir(os.path.join(self.mnt, 'INBOX'))
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=15), 0)
            self.assertFalse(mounted(self.mnt))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()

    def test_version_and_help(self):
        res = subprocess.run([IMAPFS, '--version'], stdout=subprocess.PIPE, check=True)
        self.assertRegex(res.stdout.decode(), r'^imapfs \d')
        res = subprocess.run([IMAPFS, '--help'], stdout=subprocess.PIPE, check=True)
        for key in ('host', 'port', 'tls', 'user', 'pass_cmd', 'password', 'ca_file',
                    'timeout', 'connections', 'refresh', 'memory_cache', 'account=',
                    'cache =', 'cache_dir', 'cache_size', 'readahead', '-o stats'):
            self.assertIn(key, res.stdout.decode())


class ServerLossTest(unittest.TestCase):
    """A dead server gives EIO after the timeout, never a hang; the mount recovers."""

    def test_eio_then_recovery(self):
        require_environment()
        with temp_dir('ifs') as tmp, dovecot.Dovecot() as d:
            m = None
            try:
                seeded = sample_mail.seed(d)
                cfg = write_config(os.path.join(tmp, 'config'), d, timeout='3')
                m = Mount(tmp, cfg)
                uids = [u for f, u, _r, _fl in seeded if f == 'INBOX']
                os.listdir(os.path.join(m.path, 'INBOX'))
                d.kill()
                start = time.monotonic()
                with self.assertRaises(OSError) as cm:
                    read(os.path.join(m.path, 'INBOX', str(uids[0]), 'subject'))
                self.assertEqual(cm.exception.errno, errno.EIO)
                self.assertLess(time.monotonic() - start, 30)
                d.restart()
                deadline = time.monotonic() + 30
                while True:
                    try:
                        data = read(os.path.join(m.path, 'INBOX', str(uids[1]), 'subject'))
                        break
                    except OSError:
                        self.assertLess(time.monotonic(), deadline, 'never recovered')
                        time.sleep(1)
                self.assertEqual(data.decode(), '회의 일정 안내\n')
            finally:
                if m is not None:
                    m.close()


if __name__ == '__main__':
    unittest.main(verbosity=2)
