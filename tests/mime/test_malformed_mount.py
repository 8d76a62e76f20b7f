#!/usr/bin/python3
"""Integration check of the malformed-mail corpus (tests/mime/malformed, see make_malformed.py)
through a real mount: every message is appended to a throwaway Dovecot
(tests/harness/dovecot.py), imapfs is mounted, and each message directory must show the
expected views (body, subject, from, to, cc, message-id, headers, body.html: whichever
make_malformed.py wrote) and attachments (names, sizes, bytes), while message.eml stays the
server's exact bytes.

Environment (set by tests/mime/meson.build):
    IMAPFS_BIN           the built imapfs executable
    IMAPFS_HARNESS_DIR   tests/harness
    IMAPFS_FS_TESTS_DIR  tests/fs (the mount helpers of test_imapfs.py)
    MIME_TEST_DATA       tests/mime

Fails (never skips) when /dev/fuse, fusermount3 or Dovecot is missing; the mount is removed with
`fusermount3 -uz` in teardown, even when a test fails.  Python stdlib only.
"""

import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get('IMAPFS_FS_TESTS_DIR', os.path.join(HERE, '..', 'fs')))
from test_imapfs import Mount, dovecot, read, require_environment, write_config  # noqa: E402

DATA = os.path.join(os.environ.get('MIME_TEST_DATA', HERE), 'malformed')
FOLDER = 'Malformed'
# The views an expected/<name>/ directory may hold (make_malformed.py).
VIEWS = ('subject', 'from', 'to', 'cc', 'date', 'message-id', 'headers', 'body', 'body.html')


class MalformedMountTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.tmp = tempfile.mkdtemp(prefix='ifs', dir='/tmp')
        cls.d = dovecot.Dovecot()
        cls.m = None
        cls.d.start()
        try:
            cls.d.create_folder(FOLDER)
            cls.messages = {}
            names = sorted(n[:-4] for n in os.listdir(os.path.join(DATA, 'messages'))
                           if n.endswith('.eml'))
            for name in names:
                with open(os.path.join(DATA, 'messages', name + '.eml'), 'rb') as f:
                    raw = f.read()
                cls.messages[name] = (cls.d.append(FOLDER, raw), raw)
            cls.cfg = write_config(os.path.join(cls.tmp, 'config'), cls.d)
            cls.m = Mount(cls.tmp, cls.cfg)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if getattr(cls, 'm', None) is not None:
                cls.m.close()
        finally:
            cls.d.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def expected(self, name, view):
        path = os.path.join(DATA, 'expected', name, view)
        if not os.path.exists(path):
            return None
        with open(path, 'rb') as f:
            return f.read()

    def test_views_through_the_mount(self):
        self.assertGreaterEqual(len(self.messages), 30)
        for name, (uid, _raw) in self.messages.items():
            d = os.path.join(self.m.path, FOLDER, str(uid))
            for view in VIEWS:
                want = self.expected(name, view)
                if want is not None:
                    with self.subTest(message=name, view=view):
                        self.assertEqual(read(os.path.join(d, view)), want)

    def test_attachments_through_the_mount(self):
        # An attachment holds input bytes, so its line ends are those the server gives: an
        # -lf message the server stores with CRLF is held against its -crlf twin.
        checked = 0
        for name, (uid, raw) in self.messages.items():
            d = os.path.join(self.m.path, FOLDER, str(uid))
            want_name = name
            if self.d.fetch_raw(FOLDER, uid) != raw and name.endswith('-lf'):
                want_name = name[:-3] + '-crlf'
            listing = self.expected(want_name, 'attachments.list')
            if listing is None:
                continue
            want = sorted(tuple(line.split(b'\t')) for line in listing.splitlines())
            att = os.path.join(d, 'attachments')
            got = sorted((n.encode(), str(os.stat(os.path.join(att, n)).st_size).encode())
                         for n in (os.listdir(att) if os.path.isdir(att) else []))
            with self.subTest(message=name, view='attachments.list'):
                self.assertEqual(got, want)
            edir = os.path.join(DATA, 'expected', want_name, 'attachments')
            for n in (os.listdir(edir) if os.path.isdir(edir) else []):
                with self.subTest(message=name, attachment=n):
                    self.assertEqual(read(os.path.join(att, n)), self.expected(
                        want_name, os.path.join('attachments', n)))
                checked += 1
        self.assertGreaterEqual(checked, 10)

    def test_message_eml_byte_exact(self):
        for name, (uid, raw) in self.messages.items():
            p = os.path.join(self.m.path, FOLDER, str(uid), 'message.eml')
            server = self.d.fetch_raw(FOLDER, uid)
            self.assertEqual(read(p), server, name)
            if name.endswith('-crlf'):
                self.assertEqual(server, raw, name)


if __name__ == '__main__':
    unittest.main(verbosity=2)
