#!/usr/bin/python3
"""Test mail built in code, for the integration tests: text messages of a chosen size,
messages with an attachment, and thousands of messages put straight into a Dovecot Maildir
(dovecot.py) faster than APPEND.  (sample_mail.py is the fixed, hand-written sample.)
Python 3 standard library only."""

import base64
import hashlib
import os
import pwd
import zlib


def text_message(subject, size, seed=0, noise=False):
    """A CRLF text message of about size bytes whose lines depend on seed (so no two are
    equal).  noise: lines of hex digits that deflate to about half, not to almost nothing, so
    a byte count on the wire (stall_after) falls inside the message under COMPRESS too."""
    head = ('From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n'
            'Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <%s-%d@x>\r\n\r\n'
            % (subject, subject.replace(' ', '-'), seed)).encode()
    line_len = 78
    n = max(1, (size - len(head)) // (line_len + 2))
    lines = []
    for i in range(n):
        s = ('%d:%d ' % (seed, i)).encode()
        if noise:
            h = hashlib.sha256(s).hexdigest().encode()
            s += h + hashlib.sha256(h).hexdigest().encode()
        lines.append((s + b'x' * line_len)[:line_len])
    return head + b'\r\n'.join(lines) + b'\r\n'


def wire_bytes(n_plain, sample):
    """About how many bytes on the wire n_plain bytes of messages like sample take: fewer
    when the harness's Dovecot compresses (IMAPFS_TEST_COMPRESS=1; imap_zlib deflates at
    zlib's level 6), for thresholds such as stall_after that count the proxy's bytes."""
    if os.environ.get('IMAPFS_TEST_COMPRESS', '') in ('', '0'):
        return int(n_plain)
    return int(n_plain * len(zlib.compress(sample, 6)) / len(sample))


def attachment_message(subject, payload, seed=0):
    """multipart/mixed with a text part and payload as a base64 attachment."""
    b64 = base64.b64encode(payload)
    body = b'\r\n'.join(b64[i:i + 76] for i in range(0, len(b64), 76))
    return ('From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n'
            'Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n'
            'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n'
            '--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached %d\r\n'
            '--b%d\r\nContent-Type: application/octet-stream\r\n'
            'Content-Disposition: attachment; filename="data-%d.bin"\r\n'
            'Content-Transfer-Encoding: base64\r\n\r\n'
            % (subject, seed, seed, seed, seed, seed)).encode() + body + \
        ('\r\n--b%d--\r\n' % seed).encode()


def maildir_bulk(d, folder, messages):
    """Create folder and put messages straight into its Maildir new/ (fast for thousands);
    Dovecot assigns UIDs at the next EXAMINE.  Returns the UIDs."""
    d.create_folder(folder)
    dv = pwd.getpwnam('dovecot')
    new = os.path.join(d.workdir, 'home', d.user, 'Maildir', folder, 'new')
    os.makedirs(new, exist_ok=True)
    for i, raw in enumerate(messages):
        p = os.path.join(new, '%d.M%dP1.imapfs-test' % (1700000000 + i, i))
        with open(p, 'wb') as f:
            f.write(raw)
        os.chown(p, dv.pw_uid, dv.pw_gid)
    uids = d.uids(folder)
    if len(uids) != len(messages):
        raise AssertionError('Dovecot sees %d of %d messages' % (len(uids), len(messages)))
    return uids


def write_maildir(d, folder, n):
    """n tiny messages written straight into the existing folder's Maildir cur/ (LAYOUT=fs),
    owned by the mail user, then indexed once by an admin EXAMINE so imapfs does not wait for
    it."""
    dv = pwd.getpwnam('dovecot')
    cur = os.path.join(d.workdir, 'home', d.user, 'Maildir', folder, 'cur')
    if not os.path.isdir(cur):
        raise AssertionError('Maildir folder not where expected: %s' % cur)
    t = 1704103200
    for i in range(n):
        raw = ('From: a@example.com\r\nSubject: m%d\r\n\r\nbody %d\r\n' % (i, i)).encode()
        name = '%d.M%dP1.imapfs-test,S=%d:2,S' % (t + i, i, len(raw))
        path = os.path.join(cur, name)
        with open(path, 'wb') as f:
            f.write(raw)
        os.chown(path, dv.pw_uid, dv.pw_gid)
        os.utime(path, (t + i, t + i))
    d.uids(folder)
