#!/usr/bin/python3
"""imapfs's command line without a server: `imapfs [ACCOUNT] MOUNTPOINT` (the form mount.fuse3
runs), its conflicts with -o account=, and the installed example configuration.

Every case stops before any connection is made: the configuration is read first, then the mount
point is checked (a regular file here), so the one error line tells which account was read and
that the whole configuration was accepted.

Environment (set by tests/fs/meson.build):
    IMAPFS_BIN        the built imapfs
    IMAPFS_EXAMPLE    doc/config.example
Python stdlib only.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

IMAPFS = os.environ.get('IMAPFS_BIN', '')
EXAMPLE = os.environ.get('IMAPFS_EXAMPLE', '')


def run(args, env=None, cwd=None):
    """(exit status, stderr) of imapfs ARGS."""
    res = subprocess.run([IMAPFS] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, timeout=30, env=env, cwd=cwd)
    return res.returncode, res.stderr.decode('utf-8', 'replace')


class Positional(unittest.TestCase):
    def setUp(self):
        if not IMAPFS or not os.access(IMAPFS, os.X_OK):
            raise AssertionError('IMAPFS_BIN does not name the built imapfs (%r)' % IMAPFS)
        self.tmp = tempfile.mkdtemp(prefix='ifs-cmdline')
        self.cfg = os.path.join(self.tmp, 'config')
        # [work] lacks host: reading it is an error that names it, before any network use
        with open(self.cfg, 'w') as f:
            f.write('[default]\nhost = 127.0.0.1\nuser = u\npass_cmd = echo x\n'
                    '[work]\nuser = u\n')
        # a file: libfuse's realpath() accepts it, imapfs's mount point check (which comes
        # after the configuration) refuses it
        self.missing = os.path.join(self.tmp, 'not-a-dir')
        open(self.missing, 'w').close()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_account_before_mountpoint(self):
        rc, err = run(['work', self.missing, '-o', 'config=' + self.cfg])
        self.assertEqual(rc, 1)
        self.assertIn("[work] has no 'host' key", err)

    def test_account_made_absolute_by_mount(self):
        # mount(8) run in a directory that holds "work" passes /that/directory/work
        os.mkdir(os.path.join(self.tmp, 'work'))
        rc, err = run([os.path.join(self.tmp, 'work'), self.missing, '-o',
                       'config=' + self.cfg])
        self.assertEqual(rc, 1)
        self.assertIn("[work] has no 'host' key", err)
        # a path that does not exist is taken as it is
        rc, err = run(['/no/such/work', self.missing, '-o', 'config=' + self.cfg])
        self.assertIn('no account [/no/such/work]', err)

    def test_options_first_like_mount_fuse3(self):
        # mount.fuse3 runs: imapfs ACCOUNT MOUNTPOINT -o rw,config=...,dev,suid
        rc, err = run(['-o', 'rw,config=%s,dev,suid' % self.cfg, 'work', self.missing])
        self.assertEqual(rc, 1)
        self.assertIn("[work] has no 'host' key", err)

    def test_no_account_is_default(self):
        rc, err = run([self.missing, '-o', 'config=' + self.cfg])
        self.assertEqual(rc, 1)
        # [default] is complete: the next step, the mount point check, is what fails
        self.assertEqual(err.strip(), 'imapfs: mount point %s is not a directory' % self.missing)

    def test_same_account_twice_is_fine(self):
        rc, err = run(['work', self.missing, '-o', 'account=work,config=' + self.cfg])
        self.assertEqual(rc, 1)
        self.assertIn("[work] has no 'host' key", err)

    def test_two_different_accounts(self):
        rc, err = run(['work', self.missing, '-o', 'account=default,config=' + self.cfg])
        self.assertEqual(rc, 1)
        self.assertEqual(err.strip(),
                         "imapfs: two accounts given: 'work' and -o account=default")

    def test_too_many_arguments(self):
        rc, err = run(['work', self.missing, 'extra', '-o', 'config=' + self.cfg])
        self.assertEqual(rc, 1)
        self.assertIn("imapfs: too many arguments: 'extra'", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_unknown_account_named(self):
        rc, err = run(['nope', self.missing, '-o', 'config=' + self.cfg])
        self.assertEqual(rc, 1)
        self.assertIn('no account [nope]', err)

    def test_no_mountpoint(self):
        rc, err = run(['-o', 'config=' + self.cfg])
        self.assertEqual(rc, 1)
        self.assertIn('no mount point given', err)

    def test_help_shows_the_positional_form(self):
        res = subprocess.run([IMAPFS, '--help'], stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(res.returncode, 0)
        first = res.stdout.decode().splitlines()[0]
        self.assertRegex(first, r'^usage: \S*imapfs \[ACCOUNT\] MOUNTPOINT ')


class Compress(unittest.TestCase):
    """compress = auto|on|off (fs/config.c): anything else is refused in one line that names
    the key and the values, before any connection."""

    setUp = Positional.setUp
    tearDown = Positional.tearDown

    def run_with(self, value):
        with open(self.cfg, 'w') as f:
            f.write('[default]\nhost = 127.0.0.1\nuser = u\npass_cmd = echo x\n'
                    'compress = %s\n' % value)
        return run([self.missing, '-o', 'config=' + self.cfg])

    def test_bad_value_refused(self):
        for bad in ('yes', 'true', '1', 'AUTO', ''):
            with self.subTest(value=bad):
                rc, err = self.run_with(bad)
                self.assertEqual(rc, 1)
                self.assertIn("[default] compress = '%s': use auto, on or off" % bad, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_good_values_accepted(self):
        for good in ('auto', 'on', 'off', ' on '):
            with self.subTest(value=good):
                rc, err = self.run_with(good)
                self.assertEqual(rc, 1)  # the mount point (a file) is what stops it
                self.assertNotIn('compress', err)
                self.assertIn(self.missing, err)


class IdleRenew(unittest.TestCase):
    """idle_renew = SECONDS (fs/config.c): 1 to 1740, refused otherwise in one line that names
    the key and the range, before any connection."""

    setUp = Positional.setUp
    tearDown = Positional.tearDown

    def run_with(self, value):
        with open(self.cfg, 'w') as f:
            f.write('[default]\nhost = 127.0.0.1\nuser = u\npass_cmd = echo x\n'
                    'idle_renew = %s\n' % value)
        return run([self.missing, '-o', 'config=' + self.cfg])

    def test_out_of_range_refused(self):
        for bad in ('0', '1741', '3600', '-5', '25m', ''):
            with self.subTest(value=bad):
                rc, err = self.run_with(bad)
                self.assertEqual(rc, 1)
                self.assertIn("[default] idle_renew = '%s' is not a number from 1 to 1740"
                              % bad, err)

    def test_in_range_accepted(self):
        for good in ('1', '300', '1740'):
            with self.subTest(value=good):
                rc, err = self.run_with(good)
                self.assertEqual(rc, 1)  # the mount point (a file) is what stops it
                self.assertNotIn('idle_renew', err)
                self.assertIn(self.missing, err)


class FetchKeys(unittest.TestCase):
    """fetch = whole|parts and whole_below = SIZE (fs/config.c): a bad value is refused in one
    line that names the key, before any connection; good ones get as far as the mount
    point."""

    setUp = Positional.setUp
    tearDown = Positional.tearDown

    def run_with(self, lines):
        with open(self.cfg, 'w') as f:
            f.write('[default]\nhost = 127.0.0.1\nuser = u\npass_cmd = echo x\n' + lines)
        return run([self.missing, '-o', 'config=' + self.cfg])

    def test_bad_values_refused(self):
        for lines, message in (('fetch = some\n', "[default] fetch = 'some': use parts or whole"),
                               ('whole_below = big\n',
                                "[default] whole_below = 'big' is not a size"),
                               ('whole_below = -1\n',
                                "[default] whole_below = '-1' is not a size")):
            with self.subTest(lines=lines):
                rc, err = self.run_with(lines)
                self.assertEqual(rc, 1)
                self.assertIn(message, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_good_values_accepted(self):
        for lines in ('fetch = parts\nwhole_below = 0\n', 'fetch = parts\nwhole_below = 64K\n',
                      'fetch = whole\n'):
            with self.subTest(lines=lines):
                rc, err = self.run_with(lines)
                self.assertEqual(rc, 1)  # the mount point (a file) is what stops it
                self.assertNotIn('whole_below', err)
                self.assertIn(self.missing, err)


class Hide(unittest.TestCase):
    """hide = \\All \\Junk NAME "A NAME" (fs/config.c, read raw: GKeyFile's own string reading
    refuses "\\A"): an unknown attribute, an unclosed quote or an empty name is refused in one
    line that names the key and the attributes allowed, before any connection; good values
    (attributes in any case, names, quoted names with blanks, nothing) get as far as the mount
    point."""

    setUp = Positional.setUp
    tearDown = Positional.tearDown

    def run_with(self, value):
        with open(self.cfg, 'w') as f:
            f.write('[default]\nhost = 127.0.0.1\nuser = u\npass_cmd = echo x\n'
                    'hide = %s\n' % value)
        return run([self.missing, '-o', 'config=' + self.cfg])

    def test_bad_values_refused(self):
        allowed = ('use \\All, \\Archive, \\Drafts, \\Flagged, \\Junk, \\Sent or \\Trash '
                   '(RFC 6154), or folder names')
        for value, message in (
                ('\\Bogus', "[default] hide = '\\Bogus': \\Bogus is no special-use attribute; "
                 + allowed),
                ('\\All \\Spam', "\\Spam is no special-use attribute; " + allowed),
                ('\\', "\\ is no special-use attribute; " + allowed),
                ('\\Allmail', "\\Allmail is no special-use attribute"),
                ('"[Gmail]/All Mail', "a quoted folder name has no closing '\"'"),
                ('"Spam"x', 'put a blank after a quoted folder name'),
                ('""', 'a folder name is a path in the mount'),
                ('/', 'a folder name is a path in the mount')):
            with self.subTest(value=value):
                rc, err = self.run_with(value)
                self.assertEqual(rc, 1)
                self.assertIn(message, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_good_values_accepted(self):
        for good in ('\\All', '\\all \\JUNK \\Trash', '\\Archive \\Drafts \\Flagged \\Sent',
                     'Spam', '"[Gmail]/All Mail" \\Junk', 'Archive/2019/ "\\odd name"', ''):
            with self.subTest(value=good):
                rc, err = self.run_with(good)
                self.assertEqual(rc, 1)  # the mount point (a file) is what stops it
                self.assertNotIn('hide', err)
                self.assertIn(self.missing, err)


class ExampleConfig(unittest.TestCase):
    """Every account of doc/config.example is accepted as it stands (its pass_cmd programs and
    files replaced by harmless ones): the run gets as far as the mount point check."""

    def test_every_account_loads(self):
        if not EXAMPLE or not os.path.isfile(EXAMPLE):
            raise AssertionError('IMAPFS_EXAMPLE does not name doc/config.example (%r)'
                                 % EXAMPLE)
        with open(EXAMPLE, encoding='utf-8') as f:
            text = f.read()
        accounts = re.findall(r'^\[([^\]]+)\]', text, re.M)
        self.assertIn('default', accounts)
        tmp = tempfile.mkdtemp(prefix='ifs-example')
        try:
            cfg = os.path.join(tmp, 'config')
            shutil.copy(EXAMPLE, cfg)
            os.chmod(cfg, 0o600)
            # the files and programs it names, so that pass_cmd and ca_file succeed
            for line in text.splitlines():
                m = re.match(r'ca_file = (\S+)$', line)
                if m:
                    open(os.path.join(tmp, m.group(1)), 'w').close()
            fakebin = os.path.join(tmp, 'bin')
            os.mkdir(fakebin)
            for prog in ('pass', 'secret-tool'):
                with open(os.path.join(fakebin, prog), 'w') as f:
                    f.write('#!/bin/sh\necho secret\n')
                os.chmod(os.path.join(fakebin, prog), 0o755)
            os.makedirs(os.path.join(tmp, '.secrets'))
            with open(os.path.join(tmp, '.secrets', 'imap'), 'w') as f:
                f.write('secret\n')
            env = {'PATH': fakebin + ':/usr/bin:/bin', 'HOME': tmp,
                   'XDG_CACHE_HOME': os.path.join(tmp, 'cache')}
            missing = os.path.join(tmp, 'not-a-dir')
            open(missing, 'w').close()
            for account in accounts:
                rc, err = run([account, missing, '-o', 'config=' + cfg], env=env)
                self.assertEqual(rc, 1, account)
                self.assertEqual(err.strip(), 'imapfs: mount point %s is not a directory'
                                 % missing, 'account [%s]' % account)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    unittest.main(argv=[sys.argv[0]], verbosity=2)
