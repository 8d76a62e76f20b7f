#!/usr/bin/python3
"""Issue 23: one message, one fetch.  A server that says when two folder entries are one
message (Gmail's X-GM-EXT-1: X-GM-MSGID; OBJECTID, RFC 8474: EMAILID) has that message fetched,
stored and held once however many folders show it; `labels` and `thread` files show what the
server says of it.  Without either extension nothing changes.

The server is tests/fs/hostile_server.py on loopback (implicit TLS, a throwaway CA), shaped
like a Gmail account: message A in INBOX, in the label folder Work and in [Gmail]/All Mail,
B in INBOX and All Mail, C in All Mail only; its log of commands is the wire the assertions
count.  Environment: IMAPFS_BIN.  Fails, never skips, without /dev/fuse.  Python stdlib only.
"""

import errno
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'imap'))
sys.path.insert(0, os.environ.get('IMAPFS_HARNESS_DIR', os.path.join(HERE, '..', 'harness')))
from certs import make_pki  # noqa: E402
from hostile_server import HostileServer, PASSWORD, USER  # noqa: E402
from cases import TIMEOUT, temp_dir  # noqa: E402
from mounts import Mount, require_environment, write_config  # noqa: E402
from probes import cache_files, read  # noqa: E402

PKI = None

ALL = '[Gmail]/All Mail'


def setUpModule():
    global PKI
    require_environment()
    PKI = make_pki(unittest.enterModuleContext(temp_dir('ifid-pki')))


def message(name, size):
    head = ('From: %s@example.com\r\nSubject: message %s\r\nMessage-ID: <%s@example.com>\r\n'
            '\r\n' % (name, name, name)).encode()
    return head + (b'text of message %s\r\n' % name.encode()) * max(1, (size - len(head)) // 20)


A, B, C = message('a', 3000), message('b', 5000), message('c', 7000)
# (folder, uid) -> which message; UIDs differ per folder, as on Gmail
PLACES = {('INBOX', 1): 'A', ('INBOX', 2): 'B', ('Work', 5): 'A',
          (ALL, 10): 'A', (ALL, 11): 'B', (ALL, 12): 'C'}
BYTES = {'A': A, 'B': B, 'C': C}


def whole_fetches(srv):
    """The UID FETCH commands of whole messages (BODY.PEEK[]) the server received, as
    (folder examined, UID set)."""
    out = []
    for _n, line in srv.commands:
        m = re.match(rb'\S+ UID FETCH (\S+) \(?(?:UID )?BODY\.PEEK\[\]\)?\s*$', line, re.I)
        if m:
            out.append(m.group(1).decode())
    return out


class IdentityCase(unittest.TestCase):
    """A Gmail-shaped account on a server with extension caps (None: neither)."""
    caps = None

    def identity(self, msg):
        raise NotImplementedError

    def setUp(self):
        self.tmp = self.enterContext(temp_dir('ifid'))
        folders = {}
        for (folder, uid), m in PLACES.items():
            folders.setdefault(folder, {})[uid] = BYTES[m]
        cert, key = PKI['good']
        self.srv = HostileServer(cert, key, folders=folders)
        self.addCleanup(self.srv.close)
        self.srv.list_lines = [
            b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n',
            b'* LIST (\\HasNoChildren) "/" "Work"\r\n',
            b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"\r\n',
            b'* LIST (\\HasNoChildren \\All) "/" "[Gmail]/All Mail"\r\n']
        if self.caps is not None:
            self.srv.extra_caps = b' ' + self.caps
            for (folder, uid), m in PLACES.items():
                self.srv.identities[(folder.encode(), uid)] = self.identity(m)
        self.cache = os.path.join(self.tmp, 'cache')
        self.cfg = write_config(
            os.path.join(self.tmp, 'config'), host='127.0.0.1', port=str(self.srv.port),
            user=USER, password=PASSWORD, ca_file=PKI['ca'], timeout=str(TIMEOUT),
            cache_dir=self.cache, readahead='0', watch='off')

    def mount(self, name='mnt'):
        m = Mount(self.tmp, self.cfg, name=name, foreground=True)
        self.addCleanup(m.close)
        return m

    def path(self, m, folder, uid, name='message.eml'):
        return os.path.join(m.path, *folder.split('/'), str(uid), name)

    def cached_copies(self, data):
        """How many whole-message entries of the disk cache hold exactly data."""
        n = 0
        for path, _uid, off, size in cache_files(self.cache):
            if size != len(data):
                continue
            with open(path, 'rb') as f:
                f.seek(off)
                n += f.read(size) == data
        return n


class Gmail(IdentityCase):
    caps = b'X-GM-EXT-1'
    IDS = {'A': '1278455344230334865', 'B': '1278455344230334866', 'C': '1278455344230334999'}
    THREADS = {'A': '1266894439832287888', 'B': '1266894439832287888', 'C': '1266894439832280000'}
    # as Gmail sends them: system labels quoted with their backslash, user labels as astrings
    # in modified UTF-7 ("&AOk-t&AOk-" is été)
    LABELS = {'A': [b'"\\\\Inbox"', b'Work', b'"\\\\Important"'],
              'B': [b'"\\\\Inbox"', b'"Reise &AOk-t&AOk-"'],
              'C': []}

    def identity(self, m):
        return (self.IDS[m], self.THREADS[m], self.LABELS[m])

    def test_one_fetch_one_entry_across_labels_and_remounts(self):
        """A's three folder entries are read: one BODY.PEEK[] on the wire, one disk-cache
        entry; a remount reads all three from that entry; a search result's A too."""
        m = self.mount()
        for folder, uid in (('INBOX', 1), ('Work', 5), (ALL, 10)):
            self.assertEqual(read(self.path(m, folder, uid)), A, (folder, uid))
        self.assertEqual(len(whole_fetches(self.srv)), 1, self.srv.commands)
        self.assertEqual(self.cached_copies(A), 1)
        # the listing's FETCH asked for the ids (no round trip of its own)
        listing = [line for _n, line in self.srv.commands if b'RFC822.SIZE' in line]
        self.assertTrue(listing and all(b'X-GM-MSGID X-GM-THRID X-GM-LABELS' in line
                                        for line in listing), listing)
        m.close()

        m = self.mount('mnt2')
        for folder, uid in ((ALL, 10), ('Work', 5), ('INBOX', 1)):
            self.assertEqual(read(self.path(m, folder, uid)), A, (folder, uid))
        # a search result of All Mail shows A (the server's SEARCH answers every UID)
        hit = os.path.join(m.path, '[Gmail]', 'All Mail', '.search', 'subject=message', '10',
                           'message.eml')
        self.assertEqual(read(hit), A)
        self.assertEqual(len(whole_fetches(self.srv)), 1, self.srv.commands)
        self.assertEqual(self.cached_copies(A), 1)

    def test_each_message_once_in_a_walk(self):
        """Reading every message.eml of every folder fetches each distinct message once."""
        m = self.mount()
        for (folder, uid), name in sorted(PLACES.items()):
            self.assertEqual(read(self.path(m, folder, uid)), BYTES[name], (folder, uid))
        self.assertEqual(len(whole_fetches(self.srv)), 3, whole_fetches(self.srv))
        for data in (A, B, C):
            self.assertEqual(self.cached_copies(data), 1)

    def test_labels_and_thread_files(self):
        """`labels`: one decoded label per line; `thread`: the thread id, the same for one
        conversation's messages; both listed in the message directory."""
        m = self.mount()
        self.assertEqual(read(self.path(m, 'INBOX', 1, 'labels')),
                         b'\\Inbox\nWork\n\\Important\n')
        self.assertEqual(read(self.path(m, 'INBOX', 2, 'labels')),
                         '\\Inbox\nReise \u00e9t\u00e9\n'.encode())
        self.assertEqual(read(self.path(m, ALL, 12, 'labels')), b'')
        self.assertEqual(read(self.path(m, 'INBOX', 1, 'thread')),
                         self.THREADS['A'].encode() + b'\n')
        self.assertEqual(read(self.path(m, ALL, 11, 'thread')),
                         read(self.path(m, 'Work', 5, 'thread')))
        self.assertNotEqual(read(self.path(m, ALL, 12, 'thread')),
                            read(self.path(m, ALL, 10, 'thread')))
        self.assertEqual(os.stat(self.path(m, 'INBOX', 1, 'labels')).st_size,
                         len(b'\\Inbox\nWork\n\\Important\n'))
        # no body was fetched to show them (listing the directory below reads the message)
        self.assertEqual(whole_fetches(self.srv), [])
        names = os.listdir(os.path.join(m.path, 'INBOX', '1'))
        self.assertIn('labels', names)
        self.assertIn('thread', names)


class ObjectId(IdentityCase):
    caps = b'OBJECTID'
    IDS = {'A': 'M6d99ac3275bb4e', 'B': 'M6d99ac3275bb4f', 'C': 'M0000000000000c'}
    THREADS = {'A': 'T64b478a75b7ea9', 'B': 'T64b478a75b7ea9', 'C': None}

    def identity(self, m):
        return (self.IDS[m], self.THREADS[m], None)

    def test_one_fetch_one_entry_across_folders_and_remounts(self):
        m = self.mount()
        for folder, uid in (('Work', 5), ('INBOX', 1), (ALL, 10)):
            self.assertEqual(read(self.path(m, folder, uid)), A, (folder, uid))
        self.assertEqual(len(whole_fetches(self.srv)), 1, self.srv.commands)
        self.assertEqual(self.cached_copies(A), 1)
        listing = [line for _n, line in self.srv.commands if b'RFC822.SIZE' in line]
        self.assertTrue(listing and all(b'EMAILID THREADID' in line for line in listing))
        m.close()
        m = self.mount('mnt2')
        for folder, uid in ((ALL, 10), ('INBOX', 1), ('Work', 5)):
            self.assertEqual(read(self.path(m, folder, uid)), A, (folder, uid))
        self.assertEqual(len(whole_fetches(self.srv)), 1, self.srv.commands)

    def test_thread_but_no_labels(self):
        """OBJECTID has threads (THREADID) but no labels: `thread` where the server gave
        one, no `labels` anywhere."""
        m = self.mount()
        self.assertEqual(read(self.path(m, 'INBOX', 2, 'thread')), b'T64b478a75b7ea9\n')
        names = os.listdir(os.path.join(m.path, 'INBOX', '1'))
        self.assertNotIn('labels', names)
        with self.assertRaises(OSError) as cm:
            os.stat(self.path(m, 'INBOX', 1, 'labels'))
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        # THREADID NIL: no thread file
        self.assertNotIn('thread', os.listdir(os.path.join(m.path, *ALL.split('/'), '12')))


class SizesDiffer(IdentityCase):
    caps, IDS, THREADS, LABELS = Gmail.caps, Gmail.IDS, Gmail.THREADS, Gmail.LABELS
    identity = Gmail.identity

    def test_an_id_never_joins_messages_of_different_sizes(self):
        """A server that gives two different messages one id (a bug) does not make one
        serve the other: entries join only when RFC822.SIZE agrees too."""
        self.srv.identities[(b'INBOX', 2)] = self.identity('A')  # B's bytes, A's id
        m = self.mount()
        self.assertEqual(read(self.path(m, 'INBOX', 1)), A)
        self.assertEqual(read(self.path(m, 'INBOX', 2)), B)
        self.assertEqual(whole_fetches(self.srv), ['1', '2'])


class Neither(IdentityCase):
    def test_nothing_changes_without_either_extension(self):
        """No X-GM-EXT-1, no OBJECTID: the listing asks for no ids, each folder entry is
        fetched on its own, and there are no `labels` or `thread` files."""
        m = self.mount()
        for folder, uid in (('INBOX', 1), ('Work', 5), (ALL, 10)):
            self.assertEqual(read(self.path(m, folder, uid)), A)
        self.assertEqual(len(whole_fetches(self.srv)), 3)
        listing = [line for _n, line in self.srv.commands if b'RFC822.SIZE' in line]
        self.assertTrue(listing)
        for line in listing:
            self.assertNotIn(b'X-GM-', line)
            self.assertNotIn(b'EMAILID', line)
        names = os.listdir(os.path.join(m.path, 'INBOX', '1'))
        self.assertNotIn('labels', names)
        self.assertNotIn('thread', names)


if __name__ == '__main__':
    unittest.main(verbosity=2)
