#!/usr/bin/python3
"""Integration tests of auth = oauth2: a real Dovecot whose oauth2 passdb introspects tokens at
the harness's loopback HTTP endpoint (tests/harness/oauth_server.py), and real mounts.

  - a valid token mounts and reads (OAUTHBEARER; XOAUTH2 on a server offering only that);
  - an invalid token: one line at mount, exit 1, after oauth_cmd ran exactly twice (the
    refusal makes imapfs ask for a new token once);
  - a token revoked while mounted: after an outage the next reconnect is refused, oauth_cmd
    runs again, and reading goes on in the same mount (same daemon, nothing remounted);
  - oauth_cmd failing or printing nothing, a server without OAuth2 mechanisms, config errors:
    one line each;
  - the token is in no log line (the -d trace included), not in the daemon's argv or
    environment, nor in the environment of oauth_cmd.

Environment as tests/fs/test_imapfs.py (IMAPFS_BIN, IMAPFS_HARNESS_DIR).  Fails, never skips,
without FUSE or Dovecot; every mount is removed in teardown.  Python stdlib only.
"""

import errno
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
import sample_mail  # noqa: E402
from cases import DovecotCase  # noqa: E402
from mounts import IMAPFS, Mount, daemon_pids, mounted, unmount, write_config  # noqa: E402
from probes import read  # noqa: E402

T1 = 'ya29.first-Access_Token.1234567890abcdef'
T2 = 'ya29.second-Access_Token.fedcba0987654321'


class OAuthCmd:
    """A stand-in for oama/pizauth: a script that prints the first line of a token file and
    counts its runs; mode 'fail' exits 1, 'empty' prints nothing, 'hang' never finishes."""

    def __init__(self, tmp, name='oauth'):
        self.token_file = os.path.join(tmp, name + '.token')
        self.runs_file = os.path.join(tmp, name + '.runs')
        self.env_file = os.path.join(tmp, name + '.env')
        self.mode_file = os.path.join(tmp, name + '.mode')
        self.pids_file = os.path.join(tmp, name + '.pids')  # of the children 'hang' waits for
        self.path = os.path.join(tmp, name + '.sh')
        with open(self.path, 'w') as f:
            f.write('#!/bin/sh\n'
                    'echo run >> %s\n'
                    'env >> %s\n'
                    'mode=$(cat %s 2>/dev/null)\n'
                    '[ "$mode" = fail ] && exit 1\n'
                    '[ "$mode" = empty ] && exit 0\n'
                    '[ "$mode" = hang ] && { sleep 613 & echo $! >> %s; wait; exit 0; }\n'
                    'cat %s\n' % (self.runs_file, self.env_file, self.mode_file,
                                  self.pids_file, self.token_file))
        os.chmod(self.path, 0o700)
        self.set('')

    def set(self, token, mode=''):
        with open(self.token_file, 'w') as f:
            f.write(token + '\n')
        with open(self.mode_file, 'w') as f:
            f.write(mode)

    def runs(self):
        try:
            with open(self.runs_file) as f:
                return len(f.read().split())
        except FileNotFoundError:
            return 0

    def hung_children(self):
        """PIDs of the children the 'hang' runs waited for, in the order they started."""
        try:
            with open(self.pids_file) as f:
                return [int(p) for p in f.read().split()]
        except FileNotFoundError:
            return []

    def child_env(self):
        try:
            with open(self.env_file) as f:
                return f.read()
        except FileNotFoundError:
            return ''


def oauth_config(path, d, cmd, **over):
    keys = dict(password=None, auth='oauth2', oauth_cmd=cmd.path, readahead='0')
    keys.update(over)
    return write_config(path, d, mode=0o644, **keys)


def run_imapfs(cfg, mnt):
    res = subprocess.run([IMAPFS, '-o', 'config=' + cfg, mnt], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=90)
    return res.returncode, res.stderr.decode('utf-8', 'replace')


class OAuthBase(DovecotCase):
    oauth2 = True
    tmp_prefix = 'ifo'

    @classmethod
    def dovecot_kwargs(cls):
        return dict(super().dovecot_kwargs(), oauth2=cls.oauth2)

    @classmethod
    def seed(cls):
        cls.seeded = sample_mail.seed(cls.d)

    def setUp(self):
        super().setUp()
        name = self.id().rsplit('.', 1)[-1]
        self.cmd = OAuthCmd(self.tmp, name)
        self.mnt = os.path.join(self.tmp, 'mnt-' + name)
        os.makedirs(self.mnt, exist_ok=True)
        self.cfg = os.path.join(self.tmp, 'cfg-' + name)
        self.m = None

    def tearDown(self):
        if self.m is not None:
            self.m.close()
        unmount(self.mnt)

    def uids(self, folder):
        return [u for f, u, _r, _fl in self.seeded if f == folder]

    def assertNoToken(self, text, *tokens):
        for t in tokens or (T1, T2):
            self.assertNotIn(t, text)

    def assertOneLineFailure(self, rc, err, pattern):
        self.assertEqual(rc, 1, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith('imapfs: '), err)
        self.assertRegex(lines[0], pattern)
        self.assertFalse(mounted(self.mnt))
        self.assertEqual(daemon_pids(self.mnt), [])
        self.assertNoToken(err)


class OAuthTest(OAuthBase):
    def mount_with(self, token, timeout, debug=False):
        """Mount with token granted and printed by the helper; one folder listed."""
        self.d.oauth.grant(token, self.d.user)
        self.cmd.set(token)
        cfg = oauth_config(self.cfg, self.d, self.cmd, timeout=timeout)
        self.m = Mount(self.tmp, cfg, name=os.path.basename(self.mnt), foreground=True,
                       debug=debug)
        os.listdir(os.path.join(self.mnt, 'INBOX'))
        return self.m.pid

    def outage(self):
        """Every connection of the mount is lost: Dovecot is killed and started again."""
        self.d.kill()
        self.d.restart()

    def assertListingFails(self, folder):
        """Listing folder (never listed yet) fails with EIO within 30 s, never hangs."""
        start = time.monotonic()
        with self.assertRaises(OSError) as cm:
            # the first try may meet a connection the outage killed; the retry logs in
            for _ in range(3):
                os.listdir(folder)
                time.sleep(0.2)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertLess(time.monotonic() - start, 30)

    def wait_log(self, pattern, seconds=30):
        """The daemon's log matches pattern within seconds: after an outage the refused login
        may come from the background reconnector (offline mode), after the listing failed."""
        deadline = time.monotonic() + seconds
        while not re.search(pattern, self.m.log_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertRegex(self.m.log_text(), pattern)

    def wait_runs(self, n, seconds=30):
        deadline = time.monotonic() + seconds
        while self.cmd.runs() < n and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertGreaterEqual(self.cmd.runs(), n)

    def retry(self, fn, seconds=40):
        """fn() once it stops failing with EIO (the pool's backoff after an outage)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                return fn()
            except OSError as e:
                self.assertEqual(e.errno, errno.EIO)
                self.assertLess(time.monotonic(), deadline, self.m.log_text()[-3000:])
                time.sleep(0.5)

    def test_valid_token_mounts_and_reads(self):
        self.d.oauth.grant(T1, self.d.user)
        self.cmd.set(T1)
        cfg = oauth_config(self.cfg, self.d, self.cmd)
        self.m = Mount(self.tmp, cfg, name=os.path.basename(self.mnt), foreground=True,
                       debug=True)
        uid = self.uids('INBOX')[1]
        self.assertEqual(read(os.path.join(self.mnt, 'INBOX', str(uid), 'subject')).decode(),
                         '회의 일정 안내\n')
        self.assertIn('INBOX', os.listdir(self.mnt))
        self.assertEqual(self.cmd.runs(), 1)  # one token serves every connection
        self.assertIn(T1, self.d.oauth.seen_tokens())
        with open(self.d.log, errors='replace') as f:
            self.assertIn('method=OAUTHBEARER', f.read())
        # the -d trace shows the mechanism, never the token (nor its base64)
        log = self.m.log_text()
        self.assertIn('AUTHENTICATE OAUTHBEARER <credentials redacted>', log)
        self.assertNoToken(log)
        self.assertNotIn('Bearer', log)
        pid = self.m.pid
        for what in ('cmdline', 'environ'):
            with open('/proc/%d/%s' % (pid, what), 'rb') as f:
                self.assertNotIn(T1.encode(), f.read())

    def test_invalid_token_one_line_at_mount(self):
        self.cmd.set('not-a-granted-token')
        rc, err = run_imapfs(oauth_config(self.cfg, self.d, self.cmd), self.mnt)
        self.assertOneLineFailure(
            rc, err, r'^imapfs: cannot log in to 127\.0\.0\.1:%d as alice: login failed: '
                     r'\[AUTHENTICATIONFAILED\] Authentication failed\. '
                     r'\(OAUTHBEARER: status invalid_token\)$' % self.d.port_imaps)
        self.assertNoToken(err, 'not-a-granted-token')
        # refused: oauth_cmd asked once more, and that token refused too
        self.assertEqual(self.cmd.runs(), 2)

    def test_token_revoked_while_mounted(self):
        pid = self.mount_with(T1, timeout='5', debug=True)
        uid = self.uids('INBOX')[1]
        read(os.path.join(self.mnt, 'INBOX', str(uid), 'subject'))
        self.assertEqual(self.cmd.runs(), 1)
        # the token expires (the server revokes it); the helper would now print a new one
        self.d.oauth.revoke(T1)
        self.d.oauth.grant(T2, self.d.user)
        self.cmd.set(T2)
        # after an outage the reconnect presents T1
        self.outage()
        folder = 'Work'
        work_uid = self.uids(folder)[0]
        names = self.retry(lambda: os.listdir(os.path.join(self.mnt, folder)))
        data = read(os.path.join(self.mnt, folder, str(work_uid), 'message.eml'))
        self.assertIn(str(work_uid), names)
        raw = [r for f, u, r, _fl in self.seeded if f == folder and u == work_uid][0]
        self.assertEqual(data, raw)
        # the same mount and daemon: nothing was remounted
        self.assertTrue(mounted(self.mnt))
        self.assertEqual(self.m.proc.poll(), None)
        self.assertEqual(daemon_pids(self.mnt), [pid])
        # T1 was presented after the outage, refused, and oauth_cmd ran exactly once more
        self.assertEqual(self.cmd.runs(), 2)
        seen = self.d.oauth.seen_tokens()
        self.assertIn(T2, seen)
        self.assertGreater(seen.index(T2), seen.index(T1))
        self.assertGreaterEqual(seen.count(T1), 2)  # at mount, and refused after the outage
        log = self.m.log_text()
        self.assertIn('refused the OAuth2 access token; running oauth_cmd', log)
        self.assertNoToken(log)
        # the helper's environment never holds a token (it ran once after T1 was known)
        self.assertNoToken(self.cmd.child_env())

    def test_token_still_refused_later_is_eio_then_recovers(self):
        pid = self.mount_with(T1, timeout='5')
        # revoked, and the helper's new token is refused as well
        self.d.oauth.revoke(T1)
        self.cmd.set('also-refused-token')
        self.outage()
        folder = os.path.join(self.mnt, 'Newsletters')
        self.assertListingFails(folder)
        self.wait_runs(2)
        self.wait_log(r'imapfs: imap: warning: cannot log in to IMAP server 127\.0\.0\.1: '
                      r'login failed: \[AUTHENTICATIONFAILED\] Authentication failed\. '
                      r'\(OAUTHBEARER: status invalid_token\) \(retrying with backoff\)')
        self.assertListingFails(folder)  # still refused: EIO, not served, not hanging
        # the user repairs the helper: after the backoff the mount reads again, unmounted never
        self.d.oauth.grant(T2, self.d.user)
        self.cmd.set(T2)
        names = self.retry(lambda: os.listdir(folder))
        self.assertEqual(sorted(names), sorted(str(u) for u in self.uids('Newsletters')))
        self.assertEqual(daemon_pids(self.mnt), [pid])
        # one run per refused token: with offline mode both the reconnector and the readers'
        # pool may meet the refused one, and the watcher's connection, which logs in on its
        # own, too: three to five in all (never one per read)
        self.assertIn(self.cmd.runs(), (3, 4, 5))
        self.assertNoToken(self.m.log_text(), T1, T2, 'also-refused-token')

    def test_hung_oauth_cmd_is_killed_once_mounted(self):
        """A helper that never answers (waiting for a browser login, say) gets 2 x timeout
        seconds once the daemon runs; then reads fail with EIO instead of hanging."""
        # timeout 3: Dovecot answers a failed login after its 2 s auth_failure_delay, which
        # timeout 2 would take for an unreachable server (offline mode)
        self.mount_with(T1, timeout='3')
        self.d.oauth.revoke(T1)
        self.cmd.set(T1, mode='hang')
        self.outage()
        folder = os.path.join(self.mnt, 'Archive')
        self.assertListingFails(folder)
        self.wait_log(r'oauth_cmd did not finish within 6 s \(killed\); no access token')
        # the helper is gone, and so is the child it was waiting for (its process group).
        # Only that run's child: another connection refused meanwhile (the watcher's, say)
        # may have started a run of its own as soon as the lock on the token was free.
        child = self.cmd.hung_children()[0]

        def child_sleeps():
            try:
                with open('/proc/%d/cmdline' % child, 'rb') as f:
                    return f.read().startswith(b'sleep\0613')  # not a zombie, not reused
            except FileNotFoundError:
                return False

        deadline = time.monotonic() + 2
        while child_sleeps():
            self.assertLess(time.monotonic(), deadline, 'the killed helper left its child')
            time.sleep(0.05)
        self.d.oauth.grant(T2, self.d.user)
        self.cmd.set(T2)
        self.retry(lambda: os.listdir(folder))

    def test_oauth_cmd_fails(self):
        self.cmd.set(T1, mode='fail')
        rc, err = run_imapfs(oauth_config(self.cfg, self.d, self.cmd), self.mnt)
        self.assertOneLineFailure(
            rc, err, r'^imapfs: cannot log in to 127\.0\.0\.1:\d+ as alice: oauth_cmd failed '
                     r'\(non-zero exit status\); no access token$')
        self.assertEqual(self.cmd.runs(), 1)

    def test_oauth_cmd_prints_nothing(self):
        self.cmd.set('', mode='empty')
        rc, err = run_imapfs(oauth_config(self.cfg, self.d, self.cmd), self.mnt)
        self.assertOneLineFailure(
            rc, err, r'^imapfs: cannot log in to 127\.0\.0\.1:\d+ as alice: oauth_cmd printed '
                     r'an empty first line; no access token$')

    def test_config_errors(self):
        cases = [
            (dict(oauth_cmd=None), r'auth = oauth2 needs oauth_cmd'),
            (dict(auth='token'), r"auth = 'token': use password or oauth2"),
            (dict(auth=None), r'has oauth_cmd but not auth = oauth2'),
            (dict(pass_cmd='echo x'), r'auth = oauth2 logs in with oauth_cmd.s token; '
                                      r'remove pass_cmd and password'),
        ]
        for over, pattern in cases:
            with self.subTest(over=over):
                rc, err = run_imapfs(oauth_config(self.cfg, self.d, self.cmd, **over),
                                     self.mnt)
                self.assertOneLineFailure(rc, err, pattern)
        self.assertEqual(self.cmd.runs(), 0)

    def test_help_names_the_keys(self):
        res = subprocess.run([IMAPFS, '--help'], stdout=subprocess.PIPE, check=True)
        out = res.stdout.decode()
        self.assertIn('auth = password|oauth2', out)
        self.assertIn('oauth_cmd = COMMAND', out)


class XOAuth2OnlyTest(OAuthBase):
    """A server that offers XOAUTH2 but not OAUTHBEARER (as Gmail and Microsoft 365 long did)."""
    oauth2 = 'xoauth2'

    def test_xoauth2_mounts_and_reads(self):
        self.d.oauth.grant(T1, self.d.user)
        self.cmd.set(T1)
        self.m = Mount(self.tmp, oauth_config(self.cfg, self.d, self.cmd),
                       name=os.path.basename(self.mnt), foreground=True, debug=True)
        uid = self.uids('INBOX')[1]
        self.assertEqual(read(os.path.join(self.mnt, 'INBOX', str(uid), 'subject')).decode(),
                         '회의 일정 안내\n')
        log = self.m.log_text()
        self.assertIn('AUTHENTICATE XOAUTH2 <credentials redacted>', log)
        self.assertNoToken(log)
        with open(self.d.log, errors='replace') as f:
            self.assertIn('method=XOAUTH2', f.read())

    def test_xoauth2_refused(self):
        self.cmd.set('expired-token')
        rc, err = run_imapfs(oauth_config(self.cfg, self.d, self.cmd), self.mnt)
        # Dovecot's XOAUTH2 error challenge: {"status":"401","schemes":"bearer","scope":"mail"}
        self.assertOneLineFailure(
            rc, err, r'login failed: \[AUTHENTICATIONFAILED\] Authentication failed\. '
                     r'\(XOAUTH2: status 401, scope mail\)$')
        self.assertEqual(self.cmd.runs(), 2)


class NoOAuthServerTest(OAuthBase):
    """auth = oauth2 against a server without OAUTHBEARER or XOAUTH2."""
    oauth2 = False

    def test_refused_at_mount(self):
        self.cmd.set(T1)
        rc, err = run_imapfs(oauth_config(self.cfg, self.d, self.cmd), self.mnt)
        self.assertOneLineFailure(
            rc, err, r'offers neither OAUTHBEARER nor XOAUTH2, so auth = oauth2 cannot log '
                     r'in there$')
        self.assertEqual(self.cmd.runs(), 1)  # not a refused token: no second run


if __name__ == '__main__':
    unittest.main(verbosity=2)
