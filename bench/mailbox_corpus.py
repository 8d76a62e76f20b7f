#!/usr/bin/python3
"""A deterministic corpus shaped like a real mailbox, for bench/parts_bench.py (issue 20).

Most of a real mailbox's bytes are in attachments and HTML, few in headers and plain text.
generate(n, seed, total_mb) builds n RFC 5322 messages (CRLF line ends):

  ~40% short   text/plain, 0.3-6 KB (log-normal, median ~1.5 KB), 7bit, 8bit or
               quoted-printable
  ~35% html    multipart/alternative: text/plain (1-8 KB) + a large text/html alternative
               (log-normal, median ~40 KB, up to 400 KB; quoted-printable, 8bit or base64),
               newsletter-like markup
  ~25% attach  multipart/mixed: the text (plain, or plain + HTML alternative in 30%), then
               one to three attachments whose decoded sizes are log-normal (median ~150 KB,
               sigma 1.3: a tail of several MB, capped at 15 MB), base64 (binary types) or
               7bit (a .csv/.log text attachment); some names RFC 2231-encoded UTF-8

Every message has a realistic header block of 2-5 KB: Return-Path, Delivered-To, three to
seven Received, ARC-Seal / ARC-Message-Signature / ARC-Authentication-Results,
Authentication-Results, DKIM-Signature (one or two), X-Received, List-* on newsletters, then
From/To/Cc/Subject (some RFC 2047)/Date/Message-ID/MIME-Version/Content-Type.

The attachments' sizes are scaled by one common factor so that the folder comes to about
total_mb (default 100 MB at 400 messages, like the issue's folder); the median reported by
summary() is after scaling.  The needle word NEEDLE is put into the text/plain part of about 5%
of the messages (never base64, so it is also visible in message.eml); each Message-ID names the
message's index (<bench-N.SEED@imapfs.bench>), as bench/corpus.py's do, so
bench_dovecot.index_folder maps UIDs back.

floors(manifest) computes what each task needs at least, from the files themselves with
Python's email package (and checks it against what the generator recorded):
  header       BODY[HEADER] of every message (the header block and its blank line)
  text         every text/plain and text/html leaf that is not an attachment (what `body` and
               `body.html` are made of), encoded as it is on the wire
  attachments  each attachment's encoded bytes
  whole        the folder (sum of RFC822.SIZE)

load_or_generate() caches the corpus in bench/.corpus-mailbox-N-sSEED-MMB/ (one .eml per
message + manifest.json, the layout bench/corpus.py's seed_maildir() copies into a Maildir).

    python3 bench/mailbox_corpus.py [--messages 400] [--seed 1] [--total-mb 100]

Python 3 standard library only.
"""

import base64
import email
import email.policy
import email.utils
import hashlib
import json
import math
import os
import quopri
import random
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import corpus  # noqa: E402  (bench/corpus.py: prose pools and seed_maildir)

GENERATOR_VERSION = 1
NEEDLE = 'quarzelbrink'
NEEDLE_FRACTION = 0.05
BASE_TIME = corpus.BASE_TIME
CRLF = b'\r\n'
KB = 1024
MB = 1024 * 1024

ATTACH_MEDIAN = 150 * KB
ATTACH_SIGMA = 1.3
ATTACH_MAX = 15 * MB
ATTACH_MIN = 2 * KB

_TYPES = (('pdf', 'application/pdf'), ('jpg', 'image/jpeg'), ('png', 'image/png'),
          ('zip', 'application/zip'),
          ('docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'),
          ('xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'),
          ('csv', 'text/csv'), ('log', 'text/plain'))
_UTF8_NAMES = ('Übersicht', 'résumé', 'Отчёт', '報告書', 'año-fiscal', 'Straße')
_HOSTS = ('mx1.example.net', 'mail-ej1-f54.google.com', 'smtp.out.relay.example.org',
          'eu-smtp-delivery-151.mimecast.com', 'mail.bounce.newsletter.example.com',
          'outbound.protection.outlook.com', 'lists.example.org')


def _fold(name, value, rng=None):
    """name: value, folded at spaces (and hard-wrapped tokens) to lines under 78 chars."""
    out = []
    line = name + ':'
    for word in value.split(' '):
        while len(word) > 70:
            if len(line) > 1:
                out.append(line)
            line = '\t' + word[:70]
            word = word[70:]
            out.append(line)
            line = ''
        if not word:
            continue
        if len(line) + 1 + len(word) > 76 and line.strip():
            out.append(line)
            line = '\t' + word
        else:
            line = (line + ' ' + word) if line else '\t' + word
    if line:
        out.append(line)
    return '\r\n'.join(out) + '\r\n'


def _b64str(rng, nbytes):
    return base64.b64encode(rng.randbytes(nbytes)).decode('ascii')


def _received(rng, i, hop, date):
    a, b = rng.choice(_HOSTS), rng.choice(_HOSTS)
    ip = '%d.%d.%d.%d' % (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256),
                          rng.randrange(1, 255))
    sid = _b64str(rng, 9).replace('+', 'x').replace('/', 'y')
    return _fold('Received', 'from %s (%s [%s]) by %s (Postfix) with ESMTPS id %s for '
                 '<alice@example.com>; %s' % (a, a, ip, b, sid,
                                              email.utils.formatdate(date - hop * 3)))


def _headers(i, seed, rng, subject, content_type, date, newsletter, extra=()):
    """A realistic header block (2-5 KB) ending with its blank line."""
    h = []
    sender = 'sender%d@%s' % (i % 53, 'news.example.com' if newsletter else 'example.org')
    h.append('Return-Path: <bounce-%d-%s>\r\n' % (i, sender))
    h.append('Delivered-To: alice@example.com\r\n')
    hops = rng.randint(3, 7)
    for hop in range(hops):
        h.append(_received(rng, i, hop, date))
    h.append(_fold('ARC-Seal', 'i=1; a=rsa-sha256; t=%d; cv=none; d=google.com; s=arc-20160816; '
                   'b=%s' % (date, _b64str(rng, 256))))
    h.append(_fold('ARC-Message-Signature', 'i=1; a=rsa-sha256; c=relaxed/relaxed; d=google.com; '
                   's=arc-20160816; h=to:subject:message-id:date:from:mime-version:'
                   'dkim-signature; bh=%s; b=%s' % (_b64str(rng, 32), _b64str(rng, 256))))
    h.append(_fold('ARC-Authentication-Results', 'i=1; mx.google.com; dkim=pass '
                   'header.i=@example.org header.s=s1 header.b=%s; spf=pass (google.com: '
                   'domain of %s designates 192.0.2.%d as permitted sender) smtp.mailfrom=%s; '
                   'dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org' % (
                       _b64str(rng, 6), sender, rng.randrange(1, 255), sender)))
    h.append(_fold('Authentication-Results', 'mx.example.com; dkim=pass (2048-bit key; '
                   'unprotected) header.d=example.org header.i=@example.org header.a=rsa-sha256 '
                   'header.s=s1 header.b=%s; dkim-atps=neutral' % _b64str(rng, 6)))
    for _ in range(rng.randint(1, 2)):
        h.append(_fold('DKIM-Signature', 'v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; '
                       's=s1; t=%d; x=%d; darn=example.com; h=from:to:subject:date:message-id:'
                       'mime-version:content-type:list-unsubscribe:list-id; bh=%s; b=%s' % (
                           date, date + 604800, _b64str(rng, 32), _b64str(rng, 256))))
    h.append(_fold('X-Google-Smtp-Source', _b64str(rng, 60)))
    h.append(_fold('X-Received', 'by 2002:a17:906:%x::%x with SMTP id %s; %s' % (
        rng.randrange(65536), rng.randrange(65536), _b64str(rng, 12),
        email.utils.formatdate(date))))
    if newsletter:
        h.append(_fold('List-Unsubscribe', '<mailto:unsubscribe-%d@news.example.com?subject='
                       'unsubscribe>, <https://news.example.com/u/%s>' % (i, _b64str(rng, 30))))
        h.append('List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n')
        h.append('List-Id: Weekly digest <weekly.news.example.com>\r\n')
        h.append('Precedence: bulk\r\n')
        h.append(_fold('Feedback-ID', '%d:%d:campaign:%s' % (i, seed, _b64str(rng, 9))))
    h.append('From: %s <%s>\r\n' % (
        '=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=' if i % 11 == 0 else 'Sender %d' % (i % 53),
        sender))
    h.append('To: Alice <alice@example.com>\r\n')
    if rng.random() < 0.3:
        h.append(_fold('Cc', ', '.join('Person %d <p%d@example.net>' % (k, k)
                                       for k in rng.sample(range(100), rng.randint(1, 6)))))
    h.append(_fold('Subject', subject))
    h.append('Date: %s\r\n' % email.utils.formatdate(date))
    h.append('Message-ID: <bench-%d.%d@imapfs.bench>\r\n' % (i, seed))
    if rng.random() < 0.4:
        h.append(_fold('In-Reply-To', '<bench-%d.%d@imapfs.bench>' % (max(1, i - 3), seed)))
        h.append(_fold('References', ' '.join('<bench-%d.%d@imapfs.bench>' % (k, seed)
                                              for k in range(max(1, i - 8), i))))
    h.append('X-Mailer: %s\r\n' % rng.choice(('Apple Mail (2.3731)', 'Microsoft Outlook 16.0',
                                             'Mozilla Thunderbird 115.5', 'aerc 0.16.0')))
    h.append('MIME-Version: 1.0\r\n')
    h.append(_fold('Content-Type', content_type))
    for k, v in extra:
        h.append('%s: %s\r\n' % (k, v))
    return (''.join(h) + '\r\n').encode('utf-8')


def _b64(data):
    enc = base64.b64encode(data)
    return CRLF.join(enc[i:i + 76] for i in range(0, len(enc), 76)) + CRLF


def _qp(text):
    raw = text.replace('\r\n', '\n').encode('utf-8')
    return quopri.encodestring(raw).replace(b'\n', CRLF)


def _html(rng, text_src, size):
    """Newsletter-like HTML of about size bytes (tables, inline styles, links)."""
    out = ['<!DOCTYPE html>\r\n<html><head><meta charset="utf-8"><style>'
           'body{margin:0;padding:0}table{border-collapse:collapse}</style></head>\r\n'
           '<body style="margin:0;padding:0;background-color:#f4f4f4">\r\n'
           '<table role="presentation" width="100%" cellpadding="0" cellspacing="0">\r\n']
    got = sum(len(x) for x in out)
    while got < size:
        para = text_src.take(rng.randint(200, 900)).replace('\r\n', ' ').strip()
        para = para.replace('&', '&amp;').replace('<', '&lt;')
        block = ('<tr><td style="padding:0 24px 16px 24px;font-family:Helvetica,Arial,'
                 'sans-serif;font-size:15px;line-height:22px;color:#333333">\r\n%s\r\n'
                 '<a href="https://news.example.com/t/%s" style="color:#1a73e8;'
                 'text-decoration:underline">Read more</a></td></tr>\r\n' % (
                     para, _b64str(rng, 24).replace('/', '_').replace('+', '-')))
        out.append(block)
        got += len(block.encode('utf-8'))
    out.append('</table></body></html>\r\n')
    return ''.join(out)


def _text_part(rng, src, size, needle, ctes=('7bit', '8bit', 'quoted-printable')):
    """(part bytes with its MIME header, body bytes) of a text/plain part."""
    body = src['utf8'].take(size)
    cte = rng.choice(ctes)
    if cte == '7bit':
        body = src['ascii'].take(size)
    if needle:
        body = corpus._insert_needle(rng, body).replace(corpus.NEEDLE, NEEDLE)
    if cte == '7bit':
        data = body.encode('ascii')
        charset = 'us-ascii'
    elif cte == '8bit':
        data = body.encode('utf-8')
        charset = 'utf-8'
    else:
        data = _qp(body)
        charset = 'utf-8'
    hdr = ('Content-Type: text/plain; charset="%s"\r\nContent-Transfer-Encoding: %s\r\n\r\n' % (
        charset, cte)).encode('ascii')
    return hdr, data


def _html_part(rng, src, size):
    html = _html(rng, src['utf8'], size)
    cte = rng.choice(('quoted-printable', 'quoted-printable', '8bit', '8bit', 'base64'))
    if cte == '8bit':
        data = html.encode('utf-8')
    elif cte == 'base64':
        data = _b64(html.encode('utf-8'))
    else:
        data = _qp(html)
    hdr = ('Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: %s\r\n\r\n'
           % cte).encode('ascii')
    return hdr, data


def _in_multipart(data):
    """A part body's length inside a multipart: the CRLF before the next boundary line belongs
    to the boundary (RFC 2046 5.1.1), not to the part (nor to BODY[n])."""
    return len(data) - 2 if data.endswith(CRLF) else len(data)


def _multipart(boundary, parts, preamble=b''):
    """parts: list of (header bytes, body bytes); returns the multipart body."""
    out = [preamble]
    for hdr, data in parts:
        out += [b'--', boundary, CRLF, hdr, data]
        if not data.endswith(CRLF):
            out.append(CRLF)
    out += [b'--', boundary, b'--', CRLF]
    return b''.join(out)


def _attachment(rng, src, i, k, size):
    """(header, body, name, decoded bytes) of one attachment of `size` decoded bytes."""
    ext, mime = rng.choice(_TYPES)
    base = '%s-%04d-%d' % (rng.choice(('report', 'scan', 'invoice', 'photo', 'minutes',
                                       'export', 'slides')), i, k)
    if mime.startswith('text/'):
        lines = []
        got = 0
        while got < size:
            ln = '%d,%s,%d.%02d\r\n' % (got, src['ascii'].take(80).split('\r\n')[0][:40],
                                        rng.randrange(10000), rng.randrange(100))
            lines.append(ln)
            got += len(ln)
        decoded = ''.join(lines).encode('ascii')
        cte = '7bit'
        data = decoded
    else:
        decoded = rng.randbytes(size)
        cte = 'base64'
        data = _b64(decoded)
    if rng.random() < 0.15:
        uname = '%s-%d-%d.%s' % (rng.choice(_UTF8_NAMES), i, k, ext)
        q = ''.join(c if c.isascii() and (c.isalnum() or c in '-.') else
                    ''.join('%%%02X' % b for b in c.encode('utf-8')) for c in uname)
        ct = '%s; name="=?UTF-8?B?%s?="' % (mime, base64.b64encode(uname.encode()).decode())
        disp = "attachment; filename*=utf-8''%s" % q
        name = uname
    else:
        name = base + '.' + ext
        ct = '%s; name="%s"' % (mime, name)
        disp = 'attachment; filename="%s"; size=%d' % (name, len(decoded))
    hdr = ('Content-Type: %s\r\nContent-Disposition: %s\r\nContent-Transfer-Encoding: %s\r\n'
           '\r\n' % (ct, disp, cte)).encode('utf-8')
    return hdr, data, name, decoded


def _plan(n, rng, total_bytes, correction=1.0):
    """Per message: kind and sizes; attachment sizes scaled by one factor so the folder comes
    to about total_bytes (an estimate, times `correction` from a previous attempt)."""
    plans = []
    for i in range(1, n + 1):
        r = rng.random()
        p = {'i': i}
        if r < 0.40:
            p['kind'] = 'short'
            p['text'] = int(min(6 * KB, max(300, rng.lognormvariate(math.log(1.5 * KB), 0.8))))
        elif r < 0.75:
            p['kind'] = 'html'
            p['text'] = rng.randint(1 * KB, 8 * KB)
            p['html'] = int(min(400 * KB, max(4 * KB, rng.lognormvariate(math.log(40 * KB), 0.8))))
        else:
            p['kind'] = 'attach'
            p['text'] = rng.randint(300, 3 * KB)
            p['html'] = (int(min(200 * KB, rng.lognormvariate(math.log(25 * KB), 0.6)))
                         if rng.random() < 0.3 else 0)
            p['atts'] = [rng.lognormvariate(math.log(ATTACH_MEDIAN), ATTACH_SIGMA)
                         for _ in range(rng.randint(1, 3))]
        plans.append(p)
    # Headers ~4.3 KB, text as planned, HTML ~ +15% (qp, markup overshoot), attachments
    # base64 (x 4/3 x 78/76).
    fixed = sum(4.4 * KB + p['text'] * 1.05 + p.get('html', 0) * 1.15 for p in plans)
    enc = 4.0 / 3.0 * 78.0 / 76.0
    att = sum(min(ATTACH_MAX, max(ATTACH_MIN, s)) * enc for p in plans for s in p.get('atts', ()))
    factor = max(0.05, (total_bytes - fixed) / att) * correction if att and total_bytes else 1.0
    for p in plans:
        if 'atts' in p:
            p['atts'] = [int(min(ATTACH_MAX, max(ATTACH_MIN, s * factor))) for s in p['atts']]
    return plans, factor


def _subject(rng, words, i):
    s = ' '.join(rng.choice(words) for _ in range(rng.randint(3, 9)))
    if i % 7 == 0:
        s = '=?UTF-8?B?%s?=' % base64.b64encode(('Re: ' + s + ' — café').encode()).decode()
    return s


def _one(p, seed, rng, src, words, needle):
    i = p['i']
    date = BASE_TIME + i * 600 + rng.randrange(600)
    subject = _subject(rng, words, i)
    rec = {'i': i, 'kind': p['kind'], 'date': date, 'needle': needle, 'atts': []}
    boundary = ('=_imapfs_bench_%d_%d' % (seed, i)).encode('ascii')
    text_hdr, text = _text_part(rng, src, p['text'], needle)
    if p['kind'] == 'short':
        # the single part's header lines go into the message header
        ctl = text_hdr.decode('ascii').split('\r\n')
        ct = ctl[0].split(': ', 1)[1]
        cte = ctl[1].split(': ', 1)[1]
        hdr = _headers(i, seed, rng, subject, ct, date, False,
                       [('Content-Transfer-Encoding', cte)])
        rec['text_bytes'] = len(text)
        return hdr + text, rec
    texts = [(text_hdr, text)]
    if p.get('html'):
        texts.append(_html_part(rng, src, p['html']))
    rec['text_bytes'] = sum(_in_multipart(d) for _h, d in texts)
    if p['kind'] == 'html':
        body = _multipart(boundary, texts)
        hdr = _headers(i, seed, rng, subject, 'multipart/alternative; boundary="%s"' %
                       boundary.decode(), date, True)
        return hdr + body, rec
    inner = boundary + b'_alt'
    first = (texts[0] if len(texts) == 1 else
             (b'Content-Type: multipart/alternative; boundary="' + inner + b'"\r\n\r\n',
              _multipart(inner, texts)))
    parts = [first]
    for k, size in enumerate(p['atts'], 1):
        ahdr, adata, name, decoded = _attachment(rng, src, i, k, size)
        parts.append((ahdr, adata))
        rec['atts'].append({'name': name, 'encoded': _in_multipart(adata),
                            'base64': adata is not decoded, 'decoded': len(decoded),
                            'sha256': hashlib.sha256(decoded).hexdigest(),
                            'ascii_name': name.isascii()})
    body = _multipart(boundary, parts, b'This is a multi-part message in MIME format.\r\n')
    hdr = _headers(i, seed, rng, subject, 'multipart/mixed; boundary="%s"' % boundary.decode(),
                   date, False)
    return hdr + body, rec


def corpus_path(bench_dir, n, seed, total_mb):
    return os.path.join(bench_dir, '.corpus-mailbox-%d-s%d-%gMB' % (n, seed, total_mb))


def _write(tmp, n, seed, total_mb, correction):
    rng = random.Random('mailbox/%d/%d/%g' % (seed, n, total_mb))
    src = {'ascii': corpus._Text(rng, False, 1 << 20), 'utf8': corpus._Text(rng, True, 1 << 20)}
    words = corpus._make_vocab(rng, False)[:400]
    plans, factor = _plan(n, rng, total_mb * 1e6, correction)
    needles = set(rng.sample(range(1, n + 1), max(1, round(n * NEEDLE_FRACTION))))
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    msgs = []
    total = 0
    att = 0
    for p in plans:
        raw, rec = _one(p, seed, rng, src, words, p['i'] in needles)
        rec['file'] = '%06d.eml' % p['i']
        rec['size'] = len(raw)
        rec['header_bytes'] = raw.index(b'\r\n\r\n') + 4
        rec['needle_raw'] = NEEDLE.encode() in raw
        with open(os.path.join(tmp, rec['file']), 'wb') as f:
            f.write(raw)
        total += len(raw)
        att += sum(a['encoded'] for a in rec['atts'])
        msgs.append(rec)
    return msgs, total, att, factor


def generate(path, n, seed=1, total_mb=None, log=print):
    """Write n messages and manifest.json into path (replaced atomically).  The size estimate
    is corrected once or twice (the same draws, attachments rescaled) to land within 2% of
    total_mb."""
    if total_mb is None:
        total_mb = default_total_mb(n)
    tmp = path + '.tmp'
    correction = 1.0
    for _attempt in range(3):
        msgs, total, att, factor = _write(tmp, n, seed, total_mb, correction)
        want = total_mb * 1e6
        if abs(total - want) <= 0.02 * want or not att:
            break
        correction *= max(0.05, (att + want - total) / att)
    manifest = {'version': GENERATOR_VERSION, 'seed': seed, 'n': n, 'total_mb': total_mb,
                'needle': NEEDLE, 'total_bytes': total, 'attach_scale': factor,
                'messages': msgs}
    manifest['floors'] = floors(manifest, tmp)
    with open(os.path.join(tmp, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    log('generated %d messages (%.1f MB) in %s' % (n, total / 1e6, path))
    return manifest


def default_total_mb(n):
    """~100 MB at 400 messages (the issue's folder), in proportion otherwise."""
    return round(100.0 * n / 400, 1)


def load_or_generate(bench_dir, n, seed=1, total_mb=None, log=print):
    if total_mb is None:
        total_mb = default_total_mb(n)
    path = corpus_path(bench_dir, n, seed, total_mb)
    try:
        with open(os.path.join(path, 'manifest.json')) as f:
            m = json.load(f)
        if (m.get('version') == GENERATOR_VERSION and m.get('seed') == seed and
                m.get('n') == n and m.get('total_mb') == total_mb):
            m['path'] = path
            return m
    except (OSError, ValueError):
        pass
    m = generate(path, n, seed, total_mb, log)
    m['path'] = path
    return m


# ---------------------------------------------------------------------------
# floors, with the email package

def _wire_len(part):
    """The bytes of a leaf part's body as they are on the wire (what BODY[n] returns)."""
    cte = (part.get('Content-Transfer-Encoding') or '7bit').strip().lower()
    if cte in ('7bit', '8bit', 'binary'):
        # identity encodings: decode=True gives the raw bytes back (8-bit ones included)
        return len(part.get_payload(decode=True))
    return len(part.get_payload(decode=False).encode('ascii'))


def message_floor(raw):
    """(header bytes, text-part bytes, [(attachment name, encoded bytes)]) of one message."""
    header = raw.index(b'\r\n\r\n') + 4 if b'\r\n\r\n' in raw else len(raw)
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    text = 0
    atts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        disp = (part.get('Content-Disposition') or '').split(';')[0].strip().lower()
        if disp == 'attachment' or part.get_filename():
            atts.append((part.get_filename(), _wire_len(part)))
        elif part.get_content_type() in ('text/plain', 'text/html'):
            text += _wire_len(part)
    return header, text, atts


def floors(manifest, path=None):
    """The corpus's floors (see the module docstring), checked against the generator's own
    accounting: a mismatch raises (the floors would be wrong)."""
    path = path or manifest['path']
    out = {'header': 0, 'text': 0, 'attachments': 0, 'whole': 0, 'largest': None}
    for m in manifest['messages']:
        with open(os.path.join(path, m['file']), 'rb') as f:
            raw = f.read()
        header, text, atts = message_floor(raw)
        if header != m['header_bytes'] or text != m['text_bytes'] or \
                [a[1] for a in atts] != [a['encoded'] for a in m['atts']]:
            raise RuntimeError('message %d: email package says header %d text %d atts %r, '
                               'the generator %d %d %r' % (
                                   m['i'], header, text, [a[1] for a in atts], m['header_bytes'],
                                   m['text_bytes'], [a['encoded'] for a in m['atts']]))
        out['header'] += header
        out['text'] += text
        out['attachments'] += sum(a[1] for a in atts)
        out['whole'] += len(raw)
        for a in m['atts']:
            if a['ascii_name'] and a['base64'] and (out['largest'] is None or
                                    a['encoded'] > out['largest']['encoded']):
                out['largest'] = dict(a, i=m['i'])
    out['header_text'] = out['header'] + out['text']
    return out


def summary(m):
    kinds = {}
    for x in m['messages']:
        kinds[x['kind']] = kinds.get(x['kind'], 0) + 1
    att = sorted(a['decoded'] for x in m['messages'] for a in x['atts'])
    fl = m['floors']
    return ('%d messages, %.1f MB; kinds %s; %d attachments (decoded median %.0f KB, max %.1f MB, '
            'scale %.2f); floors: headers %.2f MB (%.1f KB/message), text parts %.2f MB, '
            'attachments %.1f MB, largest attachment %.2f MB encoded (message %d, %s); '
            'needle %r in %d messages' % (
                m['n'], m['total_bytes'] / 1e6, kinds, len(att),
                att[len(att) // 2] / 1024 if att else 0, att[-1] / 1e6 if att else 0,
                m['attach_scale'], fl['header'] / 1e6, fl['header'] / 1024 / m['n'],
                fl['text'] / 1e6, fl['attachments'] / 1e6, fl['largest']['encoded'] / 1e6,
                fl['largest']['i'], fl['largest']['name'], m['needle'],
                sum(x['needle'] for x in m['messages'])))


def _main():
    import argparse
    ap = argparse.ArgumentParser(description='generate the mailbox-shaped benchmark corpus')
    ap.add_argument('--messages', type=int, default=400)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--total-mb', type=float, default=None,
                    help='folder size to aim at (default 100 MB per 400 messages)')
    args = ap.parse_args()
    m = load_or_generate(HERE, args.messages, args.seed, args.total_mb)
    print(summary(m))


if __name__ == '__main__':
    _main()
