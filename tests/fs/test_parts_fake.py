#!/usr/bin/python3
"""Partial fetches (issue 20) on the wire: a real imapfs mount (fetch = parts)
against tests/fs/hostile_server.py serving pieces, with the exact client lines checked.

HostileServer answers BODYSTRUCTURE, BODY.PEEK[HEADER], BODY.PEEK[s.MIME], BODY.PEEK[s],
partials and, when it offers BINARY, BINARY.PEEK[s] and BINARY.SIZE[s], from the message's own
bytes; a test replaces the BODYSTRUCTURE with a broken server's (Gmail, Exchange,
Outlook.com) or answers a piece with a refusal or a dropped connection.  Every test also holds
the files it reads (and, at its end, the whole tree: names, st_size, bytes) to the tree a
`fetch = whole` mount of the same messages shows, and attachments to what Python's email
package decodes.

  Outline        the first lookup in a message directory is one UID FETCH of BODYSTRUCTURE,
                 BODY.PEEK[HEADER] and the size check of message.eml; `cat subject` sends
                 nothing more; no whole message is fetched; with read-ahead on, a walk of
                 subjects fetches each outline once and nothing else.
  Sections       `body` is its text part's section alone; an attachment is BINARY.PEEK[s]
                 where BINARY is offered, else BODY.PEEK[s] decoded here; a quoted-printable
                 one is BODY.PEEK[s] either way.
  Literal8       a BINARY answer sent as ~{n}.
  Refusals       NO [UNKNOWN-CTE] to BINARY, NO [PARSE] to the outline, a MIME header or a
                 section: the file comes from one BODY.PEEK[] of the whole message, and
                 nothing of that message is asked piece by piece again (read_whole in the
                 stats; also once its whole message has left the memory cache).
  Dropped        Dovecot's imap_fetch_failure = disconnect-immediately (BYE, or the connection
                 closed in the middle of the answer) at each piece level: the read succeeds
                 from the whole message after reconnecting, within a bounded time.
  BrokenShapes   Gmail's empty multipart, Exchange's bare-string disposition, stray NILs,
                 Outlook.com's zero-length part: the same tree as the whole path.
  Forwarded      message/rfc822 parts are numbered as RFC 3501 6.4.5 says: NAME.eml is
                 BODY.PEEK[2] (or [2.2] one level down), its header BODY.PEEK[2.HEADER];
                 a message that is a message/rfc822 part itself is read whole.
  Malformed      mail mime/ would repair (a header running on, a part without its blank
                 line) is read whole: the server's outline of it is not imapfs's.

Environment: IMAPFS_BIN (the built imapfs); IMAPFS_TEST_COMPRESS=1 runs it all through
COMPRESS=DEFLATE.  Fails, never skips, without /dev/fuse.  Python stdlib only.
"""

import base64
import email
import email.policy
import os
import re
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'imap'))
from certs import make_pki  # noqa: E402
from hostile_server import HostileServer, PASSWORD, USER, Closed  # noqa: E402
from test_faults import MARGIN, Mount, read, require_environment, timed_read  # noqa: E402

TIMEOUT = 2
PKI = None
PKI_DIR = None


def setUpModule():
    global PKI, PKI_DIR
    require_environment()
    PKI_DIR = tempfile.mkdtemp(prefix='ifp-pki', dir='/tmp')
    PKI = make_pki(PKI_DIR)


def tearDownModule():
    shutil.rmtree(PKI_DIR, ignore_errors=True)


def crlf(text):
    return text.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')


def b64(data):
    return base64.encodebytes(data).replace(b'\n', b'\r\n')


PDF = bytes((i * 37 + (i >> 7)) % 256 for i in range(3000))   # has NUL bytes: literal8
PNG = bytes(range(256)) * 3

# 1: text, a base64 PDF, a quoted-printable text attachment
MIXED = crlf(b'''From: Alice <alice@example.com>
To: bob@example.com
Subject: =?UTF-8?Q?Quarterly_r=C3=A9port?=
Date: Mon, 1 Dec 2025 10:00:00 +0000
Message-ID: <mixed@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hello Bob, caf\xc3\xa9 at ten.
--XX
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

''') + b64(PDF) + crlf(b'''--XX
Content-Type: text/plain; charset=utf-8; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"
Content-Transfer-Encoding: quoted-printable

caf=C3=A9 notes, a soft=
 break and =3D signs
--XX--
''')

# 2: an alternative (plain + HTML) and an image
ALT = crlf(b'''From: Carol <carol@example.com>
To: bob@example.com
Subject: pictures
Date: Tue, 2 Dec 2025 11:00:00 +0000
Message-ID: <alt@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="OUT"

--OUT
Content-Type: multipart/alternative; boundary="IN"

--IN
Content-Type: text/plain; charset=us-ascii

the plain text
--IN
Content-Type: text/html; charset=us-ascii

<html><body><p>the <b>html</b> text</p></body></html>
--IN--
--OUT
Content-Type: image/png; name="photo.png"
Content-Disposition: attachment; filename="photo.png"
Content-Transfer-Encoding: base64

''') + b64(PNG) + b'--OUT--\r\n'

# 3: a forwarded message without a Subject or name (forwarded-1.eml), single-part inside
FWD_INNER = crlf(b'''From: Dave <dave@example.com>
To: carol@example.com
Date: Wed, 3 Dec 2025 09:00:00 +0000
Message-ID: <inner@example.com>

the forwarded text
''')
FWD = crlf(b'''From: Carol <carol@example.com>
To: bob@example.com
Subject: Fwd: see below
Date: Wed, 3 Dec 2025 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="FF"

--FF
Content-Type: text/plain

see below
--FF
Content-Type: message/rfc822

''') + FWD_INNER + b'--FF--\r\n'

# 4: a forwarded message one level down (2.2), multipart inside, beside an attachment (2.1)
DEEP_INNER = crlf(b'''From: Erin <erin@example.com>
Subject: Inner news
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="II"

--II
Content-Type: text/plain

inner text
--II
Content-Type: image/png; name="inner.png"
Content-Transfer-Encoding: base64

''') + b64(PNG[:100]) + b'--II--\r\n'
DEEP = crlf(b'''From: Frank <frank@example.com>
Subject: two levels
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="D1"

--D1
Content-Type: text/plain

outer text
--D1
Content-Type: multipart/mixed; boundary="D2"

--D2
Content-Type: application/octet-stream; name="a.bin"
Content-Transfer-Encoding: base64

''') + b64(PDF[:500]) + crlf(b'''--D2
Content-Type: message/rfc822

''') + DEEP_INNER + b'--D2--\r\n--D1--\r\n'

# 5: a meeting invitation as Outlook.com has it (its BODYSTRUCTURE says the calendar is empty)
INVITE = crlf(b'''From: Grace <grace@example.com>
Subject: meeting
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="CAL"

--CAL
Content-Type: text/plain; charset=utf-8

meet at noon
--CAL
Content-Type: text/calendar; charset=utf-8; method=REQUEST

BEGIN:VCALENDAR
METHOD:REQUEST
BEGIN:VEVENT
SUMMARY:meeting
END:VEVENT
END:VCALENDAR
--CAL--
''')

MESSAGES = {1: MIXED, 2: ALT, 3: FWD, 4: DEEP, 5: INVITE}

# The broken BODYSTRUCTUREs servers send (issue 20 item 8), each for a message above.
GMAIL_EMPTY = (b'(("ALTERNATIVE")("IMAGE" "PNG" ("NAME" "photo.png") NIL NIL "BASE64" %d '
               b'NIL ("ATTACHMENT" ("FILENAME" "photo.png")) NIL NIL) "MIXED" '
               b'("BOUNDARY" "OUT") NIL NIL NIL)' % len(b64(PNG)))
EXCHANGE_BARE = (b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" 31 1 NIL NIL NIL NIL)'
                 b'("APPLICATION" "PDF" ("NAME" "report.pdf") NIL NIL "BASE64" %d NIL '
                 b'"attachment" NIL NIL)'
                 b'("TEXT" "PLAIN" ("CHARSET" "utf-8" "NAME" "notes.txt") NIL NIL '
                 b'"QUOTED-PRINTABLE" 50 2 NIL "Attachment" NIL NIL) "MIXED" NIL NIL NIL)'
                 % len(b64(PDF)))
EMPTY_LISTS = (b'(("TEXT" "PLAIN" () NIL NIL "8BIT" 31 1 NIL NIL NIL NIL)'
               b'("APPLICATION" "PDF" () NIL NIL "BASE64" %d NIL ("ATTACHMENT" ()) NIL NIL)'
               b'("TEXT" "PLAIN" NIL NIL NIL "QUOTED-PRINTABLE" 50 2) "MIXED" ())'
               % len(b64(PDF)))
GMAIL_ROOT = b'("ALTERNATIVE")'
STRAY_NIL = (b'(NIL ("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" 31 1) "MIXED" '
             b'("BOUNDARY" "XX") NIL NIL)')
OUTLOOK_ZERO = (b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL)'
                b'("TEXT" "CALENDAR" ("CHARSET" "utf-8" "METHOD" "REQUEST") NIL NIL "7BIT" 0 0 '
                b'NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "CAL") NIL NIL NIL)')


def email_attachments(raw):
    """{file name: decoded bytes} of raw's attachments as Python's email package sees them
    (named parts, and message/rfc822 parts as their bytes)."""
    out = {}
    for part in email.message_from_bytes(raw, policy=email.policy.compat32).walk():
        name = part.get_filename()
        if name and not part.is_multipart():
            out[name] = part.get_payload(decode=True)
    return out


def tree(root):
    """{relative path: (st_size, bytes)} of every file under root, and the sorted directory
    names: what `find` and `cat` see."""
    files, dirs = {}, []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for d in dirnames:
            dirs.append(os.path.relpath(os.path.join(dirpath, d), root))
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            size = os.stat(p).st_size
            files[os.path.relpath(p, root)] = (size, read(p))
    return files, sorted(dirs)


class PartsCase(unittest.TestCase):
    oracle_cache = {}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ifp', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def server(self, messages=None, binary=True):
        cert, key = PKI['good']
        srv = HostileServer(cert, key, folders={'INBOX': dict(messages or MESSAGES)})
        if binary:
            srv.extra_caps = b' BINARY'
        self.addCleanup(srv.close)
        return srv

    def fresh(self):
        """A new temporary directory for the next mount (a subtest's own)."""
        self.tmp = tempfile.mkdtemp(prefix='ifp', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def mount(self, srv, name='mnt', **over):
        keys = {'host': '127.0.0.1', 'port': str(srv.port), 'tls': 'imaps', 'user': USER,
                'password': PASSWORD, 'ca_file': PKI['ca'], 'timeout': str(TIMEOUT),
                'refresh': '600', 'connections': '1', 'readahead': '0', 'fetch': 'parts',
                'whole_below': '0',
                'compress': 'on'}   # the server is on loopback, where auto would not ask
        keys.update(over)
        keys = {k: v for k, v in keys.items() if v is not None}  # None: left out
        path = os.path.join(self.tmp, name + '.config')
        with open(path, 'w') as f:
            f.write('[default]\n' + ''.join('%s = %s\n' % kv for kv in keys.items()))
        os.chmod(path, 0o600)
        m = Mount(self.tmp, path, name=name, extra=['-o', 'stats'])
        self.addCleanup(m.close)
        return m

    def oracle(self, messages=None):
        """The tree of INBOX through a `fetch = whole` mount of the same messages."""
        messages = dict(messages or MESSAGES)
        key = tuple(sorted(messages.items()))
        if key not in self.oracle_cache:
            srv = self.server(messages)
            m = self.mount(srv, name='whole', fetch='whole')
            self.oracle_cache[key] = tree(os.path.join(m.path, 'INBOX'))
            lines = fetch_lines(srv)
            self.assertTrue(lines and all(re.fullmatch(rb'UID FETCH \d+ \(UID BODY\.PEEK\[\]\)', x)
                                          for x in lines), lines)
            m.close()
        return self.oracle_cache[key]

    def assertSameFile(self, m, rel, messages=None):
        """INBOX/rel of mount m: the whole mount's bytes and st_size, and st_size == bytes."""
        files, _ = self.oracle(messages)
        p = os.path.join(m.path, 'INBOX', rel)
        data = read(p)
        self.assertEqual(data, files[rel][1], rel)
        self.assertEqual(os.stat(p).st_size, len(data), rel)
        self.assertEqual(files[rel][0], len(data), rel)
        return data

    def assertSameTree(self, m, messages=None):
        want = self.oracle(messages)
        got = tree(os.path.join(m.path, 'INBOX'))
        self.assertEqual(sorted(got[0]), sorted(want[0]), 'file names')
        self.assertEqual(got[1], want[1], 'directory names')
        for rel in want[0]:
            self.assertEqual(got[0][rel], want[0][rel], rel)
            self.assertEqual(got[0][rel][0], len(got[0][rel][1]), rel + ': st_size')

    def assertAlive(self, m, srv):
        self.assertIsNone(m.proc.poll(), 'daemon died:\n' + m.log_text()[-3000:])
        self.assertEqual(srv.errors, [], 'the test server itself failed')
        if srv.compress:
            self.assertGreater(srv.compressed, 0, 'COMPRESS=DEFLATE was not used')
        for bad in ('AddressSanitizer', 'runtime error', 'CRITICAL'):
            self.assertNotIn(bad, m.log_text())


def stats(mnt):
    """The daemon's counters (-o stats): user.imapfs.stats of the mount's root."""
    text = os.getxattr(mnt, 'user.imapfs.stats').decode()
    return {k: int(v) for k, v in (f.split('=', 1) for f in text.split()) if v.isdigit()}


def fetch_lines(srv, since=0):
    """The message FETCH commands (not the listing's) sent since index since of
    srv.commands, without their tags."""
    out = []
    with srv.lock:
        cmds = list(srv.commands[since:])
    for _, line in cmds:
        words = line.split(b' ', 1)
        if len(words) == 2 and words[1].upper().startswith(b'UID FETCH') and \
                b'RFC822.SIZE' not in words[1].upper():
            out.append(words[1])
    return out


def mark(srv):
    with srv.lock:
        return len(srv.commands)


def outline_line(uid, raw):
    return b'UID FETCH %d (UID BODYSTRUCTURE BODY.PEEK[HEADER] BODY.PEEK[]<%d.2>)' % (
        uid, len(raw) - 1)


WHOLE = re.compile(rb'UID FETCH \d+ \(UID BODY\.PEEK\[\]\)')


def wholes(lines):
    return [x for x in lines if WHOLE.fullmatch(x)]


class SmallWhole(PartsCase):
    def test_small_message_whole_beyond_its_outline(self):
        """The default whole_below (32K): a message of at most that many bytes is read whole
        for body (one BODY.PEEK[] instead of PARTS then TEXTS), but its header files still
        come from the outline alone; with whole_below = 0 the same message goes by pieces."""
        self.assertLess(len(MIXED), 32768)
        for whole_below, expect_whole in ((None, True), ('0', False)):
            with self.subTest(whole_below=whole_below):
                self.fresh()
                srv = self.server()
                m = self.mount(srv, whole_below=whole_below)  # None: the default
                os.listdir(os.path.join(m.path, 'INBOX'))
                t0 = mark(srv)
                self.assertSameFile(m, '1/subject')
                self.assertEqual(fetch_lines(srv, t0), [outline_line(1, MIXED)])
                t1 = mark(srv)
                self.assertSameFile(m, '1/body')
                lines = fetch_lines(srv, t1)
                if expect_whole:
                    self.assertEqual(lines, [b'UID FETCH 1 (UID BODY.PEEK[])'])
                else:
                    self.assertEqual(wholes(lines), [])
                    self.assertIn(b'UID FETCH 1 (UID BODY.PEEK[1])', lines)
                self.assertSameTree(m)
                self.assertAlive(m, srv)


class Outline(PartsCase):
    def test_first_lookup_is_one_outline_fetch(self):
        """stat of INBOX/1/subject: exactly one UID FETCH (BODYSTRUCTURE, BODY.PEEK[HEADER]
        and the size check BODY.PEEK[]<N-1.2> of message.eml); `cat subject` then sends
        nothing, nor do the other header files; nothing fetches the whole message."""
        srv = self.server()
        m = self.mount(srv)
        self.assertEqual(sorted(os.listdir(os.path.join(m.path, 'INBOX'))),
                         [str(u) for u in sorted(MESSAGES)])
        t0 = mark(srv)
        os.stat(os.path.join(m.path, 'INBOX', '1', 'subject'))
        self.assertEqual(fetch_lines(srv, t0), [outline_line(1, MIXED)])
        t1 = mark(srv)
        subject = self.assertSameFile(m, '1/subject')
        self.assertEqual(subject, 'Quarterly r\u00e9port\n'.encode())
        for name in ('from', 'to', 'date', 'message-id'):
            self.assertSameFile(m, '1/' + name)
        # message.eml's size is the checked one: no fetch for its stat either
        self.assertEqual(os.stat(os.path.join(m.path, 'INBOX', '1', 'message.eml')).st_size,
                         len(MIXED))
        self.assertEqual(fetch_lines(srv, t1), [])
        self.assertEqual(wholes(fetch_lines(srv)), [])
        # the rest of the tree as the whole path has it, and message.eml is the one whole
        t2 = mark(srv)
        self.assertSameTree(m)
        self.assertEqual(sorted(wholes(fetch_lines(srv, t2))),
                         sorted(b'UID FETCH %d (UID BODY.PEEK[])' % u for u in MESSAGES))
        self.assertAlive(m, srv)

    def test_cat_subject_of_every_message(self):
        """`cat */subject`: one outline fetch per message and nothing else."""
        srv = self.server()
        m = self.mount(srv)
        inbox = os.path.join(m.path, 'INBOX')
        os.listdir(inbox)
        t0 = mark(srv)
        for uid in sorted(MESSAGES):
            self.assertSameFile(m, '%d/subject' % uid)
        self.assertEqual(fetch_lines(srv, t0),
                         [outline_line(u, MESSAGES[u]) for u in sorted(MESSAGES)])
        self.assertAlive(m, srv)


    def test_cat_subject_with_readahead(self):
        """The same walk over 30 messages with read-ahead on (the default): only outlines
        are fetched (some ahead of the reader), each once; no MIME header, section or whole
        message."""
        msgs = {u: MESSAGES[(u - 1) % 5 + 1] for u in range(1, 31)}
        srv = self.server(msgs)
        m = self.mount(srv, readahead='4096', connections='2')
        os.listdir(os.path.join(m.path, 'INBOX'))
        t0 = mark(srv)
        for uid in sorted(msgs):
            self.assertSameFile(m, '%d/subject' % uid, msgs)
        lines = fetch_lines(srv, t0)
        self.assertEqual(sorted(lines), sorted(outline_line(u, msgs[u]) for u in msgs), lines)
        self.assertAlive(m, srv)


class Sections(PartsCase):
    def parts_lines(self, binary):
        """PARTS of MIXED as imapfs asks them: every MIME header, and the exact sizes where
        they cost no body (BINARY.SIZE of the base64 PDF where offered)."""
        if binary:
            return [b'UID FETCH 1 (UID BODY.PEEK[1.MIME] BODY.PEEK[2.MIME] BINARY.SIZE[2] '
                    b'BODY.PEEK[3.MIME])']
        return [b'UID FETCH 1 (UID BODY.PEEK[1.MIME] BODY.PEEK[2.MIME] BODY.PEEK[3.MIME])']

    def check_mixed(self, binary):
        srv = self.server(binary=binary)
        m = self.mount(srv)
        d = os.path.join(m.path, 'INBOX', '1')
        os.listdir(os.path.join(m.path, 'INBOX'))
        t0 = mark(srv)
        body = self.assertSameFile(m, '1/body')
        self.assertIn('caf\u00e9 at ten'.encode(), body)
        self.assertEqual(fetch_lines(srv, t0), [outline_line(1, MIXED)] +
                         self.parts_lines(binary) + [b'UID FETCH 1 (UID BODY.PEEK[1])'])
        t1 = mark(srv)
        self.assertEqual(sorted(os.listdir(os.path.join(d, 'attachments'))),
                         ['notes.txt', 'report.pdf'])
        self.assertEqual(fetch_lines(srv, t1), [])
        decoded = email_attachments(MIXED)
        t2 = mark(srv)
        pdf = self.assertSameFile(m, '1/attachments/report.pdf')
        self.assertEqual(pdf, PDF)
        self.assertEqual(pdf, decoded['report.pdf'])
        # with BINARY: its claimed size is checked (the stat before the read), then the bytes
        self.assertEqual(fetch_lines(srv, t2),
                         [size_check(1, '2', len(PDF)), b'UID FETCH 1 (UID BINARY.PEEK[2])']
                         if binary else [b'UID FETCH 1 (UID BODY.PEEK[2])'])
        t3 = mark(srv)
        notes = self.assertSameFile(m, '1/attachments/notes.txt')
        self.assertEqual(notes, decoded['notes.txt'])
        # quoted-printable is decoded here, BINARY or not (structure.c: decoders differ)
        self.assertEqual(fetch_lines(srv, t3), [b'UID FETCH 1 (UID BODY.PEEK[3])'])
        self.assertEqual(wholes(fetch_lines(srv)), [])
        self.assertSameTree(m)
        self.assertAlive(m, srv)
        return srv

    def test_text_section_and_binary(self):
        """With BINARY: body is BODY.PEEK[1] alone, report.pdf BINARY.PEEK[2]."""
        self.check_mixed(binary=True)

    def test_without_binary(self):
        """Without BINARY (Gmail, Microsoft 365): report.pdf is BODY.PEEK[2], decoded here;
        no BINARY item is ever sent."""
        srv = self.check_mixed(binary=False)
        self.assertEqual([x for x in fetch_lines(srv) if b'BINARY' in x], [])

    def test_alternative(self):
        """body of multipart/mixed(alternative(plain, html), png): the text sections 1.1 and
        1.2 (body and body.html), one fetch; the image its own BINARY.PEEK[2]."""
        srv = self.server()
        m = self.mount(srv)
        os.listdir(os.path.join(m.path, 'INBOX'))
        os.stat(os.path.join(m.path, 'INBOX', '2', 'subject'))
        os.listdir(os.path.join(m.path, 'INBOX', '2'))
        t0 = mark(srv)
        self.assertEqual(self.assertSameFile(m, '2/body'), b'the plain text\n')
        self.assertSameFile(m, '2/body.html')
        texts = fetch_lines(srv, t0)
        # body and body.html are made of both: one fetch for the two (TEXTS)
        self.assertEqual(texts, [b'UID FETCH 2 (UID BODY.PEEK[1.1] BODY.PEEK[1.2])'])
        t1 = mark(srv)
        self.assertEqual(self.assertSameFile(m, '2/attachments/photo.png'), PNG)
        self.assertEqual(fetch_lines(srv, t1), [size_check(2, '2', len(PNG)),
                                                b'UID FETCH 2 (UID BINARY.PEEK[2])'])
        self.assertEqual(wholes(fetch_lines(srv)), [])
        self.assertAlive(m, srv)


def size_check(uid, section, size):
    """The 2-byte fetch that checks BINARY.SIZE before st_size comes from it (loader.c)."""
    return b'UID FETCH %d (UID BINARY.PEEK[%s]<%d.2>)' % (uid, section.encode(), size - 1)


class Literal8(PartsCase):
    def test_binary_answer_as_literal8(self):
        """BINARY[2] answered as ~{n} (RFC 3516 literal8: required for bytes with NUL, allowed
        for any), or as an ordinary {n} literal: the attachment's bytes exactly."""
        text = b'plain bytes without a NUL\r\n' * 40
        for lit8, data in ((True, PDF), (True, text), (False, text)):
            with self.subTest(literal8=lit8, nul=b'\x00' in data):
                self.fresh()
                raw = MIXED.replace(b64(PDF), b64(data))
                srv = self.server({1: raw})
                srv.literal8 = lit8
                sent = []

                def hook(conn, uid, tag, items, srv=srv, sent=sent):
                    answer = srv.piece_answer(conn, uid, tag, items)
                    if b'BINARY.PEEK' in items and b'>' not in items:  # not the size check
                        sent.append(answer)
                    return answer
                srv.pieces_hook = hook
                m = self.mount(srv)
                p = os.path.join(m.path, 'INBOX', '1', 'attachments', 'report.pdf')
                self.assertEqual(read(p), data)
                self.assertEqual(os.stat(p).st_size, len(data))
                self.assertEqual(len(sent), 1)
                self.assertIn(b'BINARY[2] %s{%d}\r\n' % (b'~' if lit8 else b'', len(data)),
                              sent[0])
                self.assertSameFile(m, '1/attachments/report.pdf', {1: raw})
                self.assertEqual(wholes(fetch_lines(srv)), [])
                self.assertAlive(m, srv)
                m.close()


class Refusals(PartsCase):
    def refusing(self, match, answer, cache):
        """A server answering the piece FETCH whose items contain match with answer (the
        tagged line is added); the rest as a careful server does."""
        srv = self.server()

        def hook(conn, uid, tag, items):
            if uid == 1 and match in items:
                return tag + b' ' + answer + b'\r\n'
            return None
        srv.pieces_hook = hook
        return srv, self.mount(srv, cache=cache)

    def check_fallback(self, srv, m, first, then, refused):
        """Reading INBOX/1/first sends the refused piece FETCH, then one BODY.PEEK[] of the
        whole message; the bytes are the whole path's.  Then reading every file in then sends
        nothing more."""
        os.listdir(os.path.join(m.path, 'INBOX'))
        t0 = mark(srv)
        self.assertSameFile(m, '1/' + first)
        lines = fetch_lines(srv, t0)
        self.assertIn(refused, lines)
        self.assertEqual(lines[-1], b'UID FETCH 1 (UID BODY.PEEK[])', lines)
        self.assertEqual(len(wholes(lines)), 1, lines)
        # remembered: this message is read whole from now on (loader.h)
        self.assertEqual(stats(m.path)['read_whole'], 1)
        t1 = mark(srv)
        for rel in then:
            self.assertSameFile(m, '1/' + rel)
        self.assertEqual(fetch_lines(srv, t1), [])
        self.assertAlive(m, srv)

    def test_binary_unknown_cte(self):
        """BINARY.PEEK[2] answered NO [UNKNOWN-CTE]: report.pdf from the whole message; the
        other files of the message are then read from it."""
        for cache in ('on', 'off'):
            with self.subTest(cache=cache):
                self.fresh()
                srv, m = self.refusing(b'BINARY.PEEK[2]', b'NO [UNKNOWN-CTE] cannot decode',
                                       cache)
                self.check_fallback(srv, m, 'attachments/report.pdf',
                                    ['attachments/notes.txt', 'body', 'message.eml', 'subject'],
                                    b'UID FETCH 1 (UID BINARY.PEEK[2])')
                m.close()

    def test_outline_parse(self):
        """The outline itself (BODYSTRUCTURE and the header) answered NO [PARSE]: subject
        from the whole message."""
        for cache in ('on', 'off'):
            with self.subTest(cache=cache):
                self.fresh()
                srv, m = self.refusing(b'BODYSTRUCTURE', b'NO [PARSE] cannot parse', cache)
                self.check_fallback(srv, m, 'subject',
                                    ['body', 'attachments/report.pdf', 'message.eml'],
                                    outline_line(1, MIXED))
                m.close()

    def test_remembered_after_eviction(self):
        """With no disk cache and a 1 MB memory cache, the whole message that answered the
        refused BINARY.PEEK[2] is pushed out by others; reading another attachment of the
        message then fetches it whole again — never piece by piece (it is remembered)."""
        filler = b''.join(b'%076d\r\n' % i for i in range(5000))    # 390 KB each
        msgs = dict(MESSAGES)
        for u in (6, 7, 8, 9):
            msgs[u] = crlf(b'Subject: filler %d\n\n' % u) + filler
        srv = self.server(msgs)

        def hook(conn, uid, tag, items):
            if uid == 1 and b'BINARY.PEEK[2]' in items:
                return tag + b' NO [UNKNOWN-CTE] cannot decode\r\n'
            return None
        srv.pieces_hook = hook
        m = self.mount(srv, cache='off', memory_cache='1')
        inbox = os.path.join(m.path, 'INBOX')
        os.listdir(inbox)
        self.assertEqual(read(os.path.join(inbox, '1', 'attachments', 'report.pdf')), PDF)
        for u in (6, 7, 8, 9):
            self.assertEqual(read(os.path.join(inbox, str(u), 'message.eml')), msgs[u])
        t0 = mark(srv)
        self.assertSameFile(m, '1/attachments/notes.txt')
        lines = fetch_lines(srv, t0)
        self.assertEqual(lines, [b'UID FETCH 1 (UID BODY.PEEK[])'])
        self.assertAlive(m, srv)

    def test_section_parse(self):
        """BODY.PEEK[1] (the text of body) answered NO [PARSE]: body from the whole message,
        and then the attachments too."""
        for cache in ('on', 'off'):
            with self.subTest(cache=cache):
                self.fresh()
                srv, m = self.refusing(b'BODY.PEEK[1]', b'NO [PARSE] cannot parse', cache)
                self.check_fallback(srv, m, 'body',
                                    ['attachments/report.pdf', 'attachments/notes.txt',
                                     'message.eml'],
                                    b'UID FETCH 1 (UID BODY.PEEK[1])')
                m.close()

    def test_mime_header_parse(self):
        """The MIME headers (PARTS) answered NO [PARSE]: the listing of the message
        directory comes from the whole message, and nothing is asked piece by piece again."""
        for cache in ('on', 'off'):
            with self.subTest(cache=cache):
                self.fresh()
                srv, m = self.refusing(b'BODY.PEEK[1.MIME]', b'NO [PARSE] cannot parse',
                                       cache)
                os.listdir(os.path.join(m.path, 'INBOX'))
                t0 = mark(srv)
                files, dirs = self.oracle()
                want = sorted({r.split('/')[1] for r in list(files) + dirs
                               if r.startswith('1/')})
                self.assertEqual(sorted(os.listdir(os.path.join(m.path, 'INBOX', '1'))), want)
                lines = fetch_lines(srv, t0)
                self.assertEqual(lines[0], outline_line(1, MIXED))
                self.assertIn(b'BODY.PEEK[1.MIME]', lines[1])
                self.assertEqual(lines[2:], [b'UID FETCH 1 (UID BODY.PEEK[])'])
                self.assertEqual(stats(m.path)['read_whole'], 1)
                t1 = mark(srv)
                for rel in ('body', 'attachments/report.pdf', 'attachments/notes.txt',
                            'subject', 'message.eml'):
                    self.assertSameFile(m, '1/' + rel)
                self.assertEqual(fetch_lines(srv, t1), [])
                self.assertAlive(m, srv)
                m.close()


class Dropped(PartsCase):
    # the piece FETCH dropped (its items contain the key), and the file whose read asks it
    TARGETS = ((b'BODYSTRUCTURE', 'subject'),                    # OUTLINE
               (b'BODY.PEEK[1.MIME]', 'attachments/report.pdf'),  # PARTS
               (b'BODY.PEEK[1])', 'body'),                         # TEXTS
               (b'BINARY.PEEK[2]', 'attachments/report.pdf'))     # an attachment
    FILES = ('subject', 'body', 'attachments/report.pdf', 'attachments/notes.txt')

    def test_disconnect_after_failed_fetch(self):
        """Dovecot's imap_fetch_failure = disconnect-immediately: the FETCH of a piece (the
        outline, the MIME headers, the text, an attachment) is answered with a BYE and the
        connection closed, or the connection closes in the middle of the answer.  The read
        still succeeds, from one BODY.PEEK[] on a new connection, well within the timeout;
        the message is remembered as read whole, and its other files need no fetch."""
        for target, first in self.TARGETS:
            for how in ('bye', 'cut'):
                with self.subTest(target=target, how=how):
                    self.fresh()
                    self.dropped(target, first, how)

    def dropped(self, target, first, how):
        srv = self.server()
        asked = []

        def hook(conn, uid, tag, items):
            if uid != 1 or target not in items:
                return None
            asked.append(items)
            if how == 'bye':
                conn.send(b'* BYE FETCH for mailbox INBOX UID 1 failed to read message\r\n')
            else:
                answer = srv.piece_answer(conn, uid, tag, items)
                conn.send(answer[:len(answer) // 2])
            raise Closed()
        srv.pieces_hook = hook
        m = self.mount(srv)
        os.listdir(os.path.join(m.path, 'INBOX'))
        before = srv.connections
        t0 = mark(srv)
        r = timed_read(os.path.join(m.path, 'INBOX', '1', first), TIMEOUT + MARGIN + 10)
        files, _ = self.oracle()
        self.assertEqual((r.err, r.data), (0, files['1/' + first][1]))
        self.assertEqual(r.size, len(r.data))
        lines = fetch_lines(srv, t0)
        self.assertTrue(asked, lines)
        self.assertEqual(lines[-1], b'UID FETCH 1 (UID BODY.PEEK[])', lines)
        self.assertEqual(len(wholes(lines)), 1, lines)
        self.assertGreater(srv.connections, before)
        with srv.lock:
            conn_of_whole = [n for n, x in srv.commands[t0:]
                             if x.endswith(b'UID FETCH 1 (UID BODY.PEEK[])')]
        self.assertGreater(conn_of_whole[0], before)
        self.assertEqual(stats(m.path)['read_whole'], 1)
        t1 = mark(srv)
        for rel in self.FILES + ('message.eml',):
            self.assertSameFile(m, '1/' + rel)
        self.assertEqual(fetch_lines(srv, t1), [])
        self.assertAlive(m, srv)
        m.close()


class BrokenShapes(PartsCase):
    def shaped(self, uid, structure, binary=True):
        srv = self.server(binary=binary)
        srv.structures[(b'INBOX', uid)] = structure
        return srv, self.mount(srv)

    def check(self, srv, m, uid, partial):
        """The tree is the whole path's; partial: the pieces could stand for it (no whole
        message fetched until message.eml is read), else one BODY.PEEK[] right after the
        outline and no piece of it afterwards."""
        d = os.path.join(m.path, 'INBOX', str(uid))
        os.listdir(os.path.join(m.path, 'INBOX'))
        t0 = mark(srv)
        for dirpath, dirnames, filenames in os.walk(d):
            for name in filenames:
                if name != 'message.eml':
                    rel = os.path.relpath(os.path.join(dirpath, name),
                                          os.path.join(m.path, 'INBOX'))
                    self.assertSameFile(m, rel)
        lines = fetch_lines(srv, t0)
        self.assertEqual(lines[0], outline_line(uid, MESSAGES[uid]))
        if partial:
            self.assertEqual(wholes(lines), [], lines)
        else:
            self.assertEqual(lines[1:], [b'UID FETCH %d (UID BODY.PEEK[])' % uid], lines)
        self.assertSameTree(m)
        self.assertAlive(m, srv)
        return lines

    def test_gmail_empty_multipart(self):
        """("ALTERNATIVE") for the alternative of message 2: refused, read whole."""
        srv, m = self.shaped(2, GMAIL_EMPTY)
        self.check(srv, m, 2, partial=False)

    def test_exchange_bare_disposition(self):
        """"attachment" where ("ATTACHMENT" (...)) belongs, NIL for the multipart's
        parameters: tolerated; names come from the MIME headers, the pieces stand."""
        srv, m = self.shaped(1, EXCHANGE_BARE)
        lines = self.check(srv, m, 1, partial=True)
        self.assertIn(b'UID FETCH 1 (UID BINARY.PEEK[2])', lines)

    def test_gmail_empty_root(self):
        """("ALTERNATIVE") for the whole of message 2: refused, read whole."""
        srv, m = self.shaped(2, GMAIL_ROOT)
        self.check(srv, m, 2, partial=False)

    def test_empty_lists_and_missing_extensions(self):
        """() for every parameter list (as NIL, which the grammar has), a disposition with
        () parameters, a part without its extension data: tolerated, the pieces stand;
        names come from the MIME headers (the BODYSTRUCTURE has none)."""
        srv, m = self.shaped(1, EMPTY_LISTS)
        lines = self.check(srv, m, 1, partial=True)
        self.assertIn(b'UID FETCH 1 (UID BINARY.PEEK[2])', lines)
        self.assertIn(b'UID FETCH 1 (UID BODY.PEEK[3])', lines)

    def test_stray_nil(self):
        """A NIL where a part belongs: refused, read whole."""
        srv, m = self.shaped(1, STRAY_NIL)
        self.check(srv, m, 1, partial=False)

    def test_outlook_zero_length_part(self):
        """The calendar part claimed 0 bytes long: without BINARY its size check
        BODY.PEEK[2]<0.2> gets 2 bytes back, so the claim is not believed; with BINARY the
        size is BINARY.SIZE's (advisory, loader.c) and the bytes.  Either way st_size of
        invite.ics is that of its bytes, never 0."""
        for binary in (False, True):
            with self.subTest(binary=binary):
                self.fresh()
                srv, m = self.shaped(5, OUTLOOK_ZERO, binary)
                lines = self.check(srv, m, 5, partial=True)
                self.assertEqual(lines[1], b'UID FETCH 5 (UID BODY.PEEK[1.MIME] '
                                 b'BODY.PEEK[2.MIME] ' +
                                 (b'BINARY.SIZE[2]' if binary else b'BODY.PEEK[2]<0.2>') + b')')
                files, _ = self.oracle()
                names = [r for r in files if r.startswith('5/attachments/')]
                self.assertEqual(names, ['5/attachments/invite.ics'])
                self.assertGreater(files[names[0]][0], 0)
                m.close()


class Forwarded(PartsCase):
    def test_forwarded_part_numbering(self):
        """Message 3's forwarded message (no Subject, no name: forwarded-1.eml) is
        BODY.PEEK[2], its exact bytes; its header BODY.PEEK[2.HEADER] (RFC 3501 6.4.5: the
        header of the message/rfc822 part 2), its size checked by BODY.PEEK[2]<n-1.2>."""
        srv = self.server()
        m = self.mount(srv)
        os.listdir(os.path.join(m.path, 'INBOX'))
        os.stat(os.path.join(m.path, 'INBOX', '3', 'subject'))
        t0 = mark(srv)
        self.assertEqual(os.listdir(os.path.join(m.path, 'INBOX', '3', 'attachments')),
                         ['forwarded-1.eml'])
        self.assertEqual(fetch_lines(srv, t0), [
            b'UID FETCH 3 (UID BODY.PEEK[1.MIME] BODY.PEEK[2.MIME] BODY.PEEK[2.HEADER] '
            b'BODY.PEEK[2]<%d.2>)' % (len(FWD_INNER) - 2 - 1)])
        t1 = mark(srv)
        p = os.path.join(m.path, 'INBOX', '3', 'attachments', 'forwarded-1.eml')
        self.assertEqual(os.stat(p).st_size, len(FWD_INNER) - 2)
        data = self.assertSameFile(m, '3/attachments/forwarded-1.eml')
        # the part's body: up to the CRLF before the delimiter
        self.assertEqual(data, FWD_INNER[:-2])
        self.assertEqual(fetch_lines(srv, t1), [b'UID FETCH 3 (UID BODY.PEEK[2])'])
        self.assertEqual(wholes(fetch_lines(srv)), [])
        self.assertSameTree(m)
        self.assertAlive(m, srv)

    def test_forwarded_one_level_down(self):
        """Message 4's forwarded message is part 2.2 (inside the multipart 2): its header is
        BODY.PEEK[2.2.HEADER], and its file's name ("Inner news.eml") comes from its Subject;
        its own parts (2.2.1, 2.2.2) are not attachments of message 4.  Its body is a
        multipart, so where it ends depends on the server (structure.h: Dovecot counts the
        CRLF before the next boundary into it): no size check is sent for it, and its bytes
        come from the whole message, which then answers a.bin too."""
        srv = self.server()
        m = self.mount(srv)
        os.listdir(os.path.join(m.path, 'INBOX'))
        os.stat(os.path.join(m.path, 'INBOX', '4', 'subject'))
        t0 = mark(srv)
        self.assertEqual(sorted(os.listdir(os.path.join(m.path, 'INBOX', '4', 'attachments'))),
                         ['Inner news.eml', 'a.bin'])
        lines = fetch_lines(srv, t0)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].endswith(b' BODY.PEEK[2.2.MIME] BODY.PEEK[2.2.HEADER])'),
                        lines[0])
        self.assertNotIn(b'2.2.1', lines[0])
        t1 = mark(srv)
        data = self.assertSameFile(m, '4/attachments/Inner news.eml')
        self.assertEqual(data, DEEP_INNER[:-2])
        self.assertEqual(self.assertSameFile(m, '4/attachments/a.bin'), PDF[:500])
        self.assertEqual(fetch_lines(srv, t1), [b'UID FETCH 4 (UID BODY.PEEK[])'])
        self.assertSameTree(m)
        self.assertAlive(m, srv)

    def test_top_level_message_part(self):
        """A message that is a message/rfc822 part itself (its sections are numbered in a way
        servers disagree on: structure.c) is read whole after its outline: one BODY.PEEK[],
        no section fetch, the whole path's tree."""
        top = crlf(b'From: Heidi <heidi@example.com>\nSubject: wrapped\nMIME-Version: 1.0\n'
                   b'Content-Type: message/rfc822\n\n') + DEEP_INNER
        msgs = {1: top}
        srv = self.server(msgs)
        m = self.mount(srv)
        os.listdir(os.path.join(m.path, 'INBOX'))
        t0 = mark(srv)
        self.assertSameFile(m, '1/subject', msgs)
        self.assertEqual(fetch_lines(srv, t0), [outline_line(1, top),
                                                b'UID FETCH 1 (UID BODY.PEEK[])'])
        self.assertSameTree(m, msgs)
        self.assertEqual(fetch_lines(srv, t0)[2:], [])
        self.assertAlive(m, srv)


# Mail that mime/'s malformed-mail rules repair (mime.h): a server's outline of it is not
# imapfs's, so it takes the whole path (issue 20 item 8).
RUN_ON = crlf(b'''From: Ivan <ivan@example.com>
Subject: runs on
this line is neither a field nor a continuation
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="RR"

--RR
Content-Type: text/plain

hidden?
--RR
Content-Type: application/octet-stream; name="x.bin"

xxxx
--RR--
''')
NO_BLANK = crlf(b'''From: Judy <judy@example.com>
Subject: part without its blank line
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="NB"

--NB
Content-Type: text/plain
the text right under the part's header
--NB
Content-Type: application/pdf; name="y.pdf"
Content-Transfer-Encoding: base64

''') + b64(PDF[:300]) + b'--NB--\r\n'


class Malformed(PartsCase):
    def test_repaired_mail_reads_as_whole(self):
        """A header block that runs into a line that is neither a field nor a continuation,
        a part without its blank line: the tree is the whole path's (names, st_size, bytes),
        whatever the server's outline said."""
        msgs = {1: RUN_ON, 2: NO_BLANK}
        srv = self.server(msgs)
        m = self.mount(srv)
        os.listdir(os.path.join(m.path, 'INBOX'))
        whole = {}
        for uid in msgs:
            t0 = mark(srv)
            for name in sorted(os.listdir(os.path.join(m.path, 'INBOX', str(uid)))):
                if name not in ('attachments', 'message.eml'):
                    self.assertSameFile(m, '%d/%s' % (uid, name), msgs)
            whole[uid] = fetch_lines(srv, t0)
        # the header alone says it runs on: read whole right after the outline
        self.assertEqual(whole[1], [outline_line(1, RUN_ON), b'UID FETCH 1 (UID BODY.PEEK[])'])
        # the part's MIME header has no blank line: read whole once PARTS shows it
        self.assertEqual(whole[2], [outline_line(2, NO_BLANK),
                                    b'UID FETCH 2 (UID BODY.PEEK[1.MIME] BODY.PEEK[2.MIME] '
                                    b'BINARY.SIZE[2])', b'UID FETCH 2 (UID BODY.PEEK[])'])
        self.assertSameTree(m, msgs)
        self.assertEqual(stats(m.path)['read_whole'], 2)
        self.assertAlive(m, srv)


if __name__ == '__main__':
    unittest.main()
