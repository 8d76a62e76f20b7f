#!/usr/bin/python3
"""Deterministic synthetic mail corpus for the imapfs benchmark.

generate(n, seed) builds n RFC 5322 messages (CRLF line ends) whose sizes follow a skewed,
mail-like distribution: most messages are a few KB of text, a few carry attachments of up to
200 KB (about 63 MB in all at n = 5,000).  About 20% of the bodies are base64 (text/plain sent as
base64, as many clients do for non-Latin text), about 10% are multipart/alternative with an HTML
twin, about 5% are multipart/mixed with a base64 attachment, a few are quoted-printable.

A rare needle word (NEEDLE) is put into the text body of about 1% of the messages, chosen at
random among all kinds, so a grep's answer can be checked.  Each message's Message-ID names its
index (<bench-N.SEED@imapfs.bench>), which is how every method's hits are mapped back to
messages whatever UIDs the server gave them.  The manifest records, per message, whether the
decoded body holds the needle (what imapfs, the naive client and the local copy must find) and
whether the raw bytes do (what a grep over raw Maildir files, as after mbsync, can find: it cannot
see through base64).

load_or_generate() caches the corpus in bench/.corpus-N[-small]/ (one .eml per message and
manifest.json); the cache is reused while the generator version, seed and kind match.
seed_maildir() copies a corpus into a Dovecot Maildir folder directly, which is much faster than
APPEND; Dovecot indexes the files on first access.

Python 3 standard library only.
"""

import base64
import email.utils
import json
import math
import os
import quopri
import random
import shutil

GENERATOR_VERSION = 3
NEEDLE = 'zyxtrellion'
NEEDLE_FRACTION = 0.01
BASE_TIME = 1_600_000_000          # first message's date (2020-09-13), then ~10 min apart
CRLF = b'\r\n'
KB = 1024

_SYLLABLES = ('ka ri to ne sa mo lu ve pa di gro bel tan ser vo min cal der fi no ma '
              'ste ral pen qui dor bra lin ter ox ur ez').split()
_COMMON = ('the of and to in is that for it as was with on be by at this have from or '
           'an they which one you had but not all were when we there can more if will '
           'meeting invoice report project budget review please attached thanks regards '
           'deadline schedule update draft team client server release monday friday '
           'quarter numbers contract approve question answer follow call notes agenda').split()
_ACCENTED = ('café naïve Zürich résumé façade coöperate São Paulo Ångström crème brûlée '
             'Łódź Øresund jalapeño déjà vu Straße 東京 Москва Αθήνα').split()


def _make_vocab(rng, accented):
    words = list(_COMMON)
    for _ in range(1500):
        words.append(''.join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
    if accented:
        words += _ACCENTED * 8
    return words


def _make_pool(rng, accented, size):
    """A block of wrapped prose (lines < 72 chars, CRLF), about size bytes."""
    words = _make_vocab(rng, accented)
    lines = []
    total = 0
    line = []
    n = 0
    while total < size:
        w = rng.choice(words)
        if n + len(w) + 1 > 68:
            text = ' '.join(line)
            lines.append(text)
            total += len(text.encode('utf-8')) + 2
            line, n = [], 0
            if rng.random() < 0.12:
                lines.append('')
                total += 2
        line.append(w)
        n += len(w) + 1
    return '\r\n'.join(lines) + '\r\n'


class _Text:
    """Cut message-sized slices of prose out of a pre-generated pool (fast and deterministic)."""

    def __init__(self, rng, accented, size=3 * 1024 * 1024):
        self.pool = _make_pool(rng, accented, size)
        self.rng = rng

    def take(self, nbytes):
        nbytes = max(64, nbytes)
        out = []
        got = 0
        while got < nbytes:
            start = self.pool.find('\r\n', self.rng.randrange(len(self.pool) - 2)) + 2
            if start < 2 or start >= len(self.pool):
                start = 0
            piece = self.pool[start:start + (nbytes - got)]
            cut = piece.rfind('\r\n')
            if cut <= 0:
                piece = self.pool[:nbytes - got]
                cut = piece.rfind('\r\n')
                if cut <= 0:
                    piece = piece + '\r\n'
                    cut = len(piece) - 2
            piece = piece[:cut + 2]
            out.append(piece)
            got += len(piece.encode('utf-8'))
        return ''.join(out)


def _b64(data):
    enc = base64.b64encode(data)
    return CRLF.join(enc[i:i + 76] for i in range(0, len(enc), 76)) + CRLF


def _qp(text):
    # quopri wraps per input line; our lines are short, so a word (the needle) is never split.
    raw = text.replace('\r\n', '\n').encode('utf-8')
    return quopri.encodestring(raw).replace(b'\n', CRLF)


def _insert_needle(rng, text):
    lines = text.split('\r\n')
    pos = rng.randrange(max(1, len(lines) - 1))
    lines.insert(pos, 'Ref: %s %d' % (NEEDLE, rng.randrange(1000, 9999)))
    return '\r\n'.join(lines)


def _headers(i, seed, rng, subject_words, content_type, extra=()):
    date = BASE_TIME + i * 600 + rng.randrange(600)
    hdrs = [
        ('From', 'Sender %d <sender%d@example.org>' % (i % 97, i % 97)),
        ('To', 'Alice <alice@example.com>'),
        ('Subject', ' '.join(rng.choice(subject_words) for _ in range(rng.randint(3, 8)))),
        ('Date', email.utils.formatdate(date, localtime=False)),
        ('Message-ID', '<bench-%d.%d@imapfs.bench>' % (i, seed)),
        ('MIME-Version', '1.0'),
        ('Content-Type', content_type),
    ] + list(extra)
    return CRLF.join(('%s: %s' % kv).encode('utf-8') for kv in hdrs) + CRLF, date


def _draw_size(rng, kind):
    """Target size in bytes: log-normal for text, log-uniform for mail with attachments."""
    if kind == 'attach':
        return int(math.exp(rng.uniform(math.log(20 * KB), math.log(200 * KB))))
    s = int(rng.lognormvariate(math.log(5.5 * KB), 1.0))
    return min(195 * KB, max(1200, s))


def _one_message(i, seed, rng, texts, subject_words, needle, small):
    """Return (raw bytes, kind)."""
    if small:
        kind = 'plain7'
        size = rng.randint(700, 1300)
    else:
        r = rng.random()
        if r < 0.05:
            kind = 'attach'
        elif r < 0.25:
            kind = 'base64'
        elif r < 0.35:
            kind = 'alternative'
        elif r < 0.40:
            kind = 'qp'
        elif r < 0.70:
            kind = 'plain8'
        else:
            kind = 'plain7'
        size = _draw_size(rng, kind)
    budget = max(200, size - 350)       # roughly what the headers take
    accented = kind in ('plain8', 'base64', 'qp', 'alternative')
    src = texts['utf8' if accented else 'ascii']

    if kind in ('plain7', 'plain8', 'qp'):
        body = src.take(budget * 85 // 100 if kind == 'qp' else budget)
        if needle:
            body = _insert_needle(rng, body)
        if kind == 'plain7':
            ct, cte, data = 'text/plain; charset=us-ascii', '7bit', body.encode('ascii')
        elif kind == 'plain8':
            ct, cte, data = 'text/plain; charset=utf-8', '8bit', body.encode('utf-8')
        else:
            ct, cte, data = 'text/plain; charset=utf-8', 'quoted-printable', _qp(body)
        hdr, date = _headers(i, seed, rng, subject_words, ct,
                             [('Content-Transfer-Encoding', cte)])
        return hdr + CRLF + data, kind, date

    if kind == 'base64':
        body = src.take(budget * 72 // 100)
        if needle:
            body = _insert_needle(rng, body)
        hdr, date = _headers(i, seed, rng, subject_words, 'text/plain; charset=utf-8',
                             [('Content-Transfer-Encoding', 'base64')])
        return hdr + CRLF + _b64(body.encode('utf-8')), kind, date

    boundary = ('=_bench_%d_%d' % (seed, i)).encode('ascii')
    if kind == 'alternative':
        body = src.take(budget * 2 // 5)
        if needle:
            body = _insert_needle(rng, body)
        paras = [p for p in body.split('\r\n\r\n') if p.strip()]
        html = '<html><body>\r\n' + '\r\n'.join(
            '<p>%s</p>' % p.replace('&', '&amp;').replace('<', '&lt;') for p in paras) + \
            '\r\n</body></html>\r\n'
        parts = [
            b'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
            + body.encode('utf-8'),
            b'Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
            + html.encode('utf-8'),
        ]
        ct = 'multipart/alternative; boundary="%s"' % boundary.decode()
    else:  # attach
        text_len = rng.randint(500, 4000)
        body = texts['ascii'].take(text_len)
        if needle:
            body = _insert_needle(rng, body)
        att_len = max(1024, (size - text_len - 1200) * 72 // 100)
        ext, mime = rng.choice((('pdf', 'application/pdf'), ('png', 'image/png'),
                                ('zip', 'application/zip'), ('bin', 'application/octet-stream')))
        name = 'attachment-%d.%s' % (i, ext)
        parts = [
            b'Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
            + body.encode('ascii'),
            ('Content-Type: %s; name="%s"\r\nContent-Disposition: attachment; filename="%s"\r\n'
             'Content-Transfer-Encoding: base64\r\n\r\n' % (mime, name, name)).encode('ascii')
            + _b64(rng.randbytes(att_len)),
        ]
        ct = 'multipart/mixed; boundary="%s"' % boundary.decode()
    hdr, date = _headers(i, seed, rng, subject_words, ct)
    out = [hdr, CRLF, b'This is a multi-part message in MIME format.\r\n']
    for p in parts:
        out += [b'--', boundary, CRLF, p]
        if not p.endswith(CRLF):
            out.append(CRLF)
    out += [b'--', boundary, b'--', CRLF]
    return b''.join(out), kind, date


def corpus_dir(bench_dir, n, small=False):
    return os.path.join(bench_dir, '.corpus-%d%s' % (n, '-small' if small else ''))


def generate(path, n, seed=1, small=False, log=print):
    """Write n messages and manifest.json into path (replaced atomically)."""
    rng = random.Random('%d/%d/%s' % (seed, n, small))
    texts = {'ascii': _Text(rng, False), 'utf8': _Text(rng, True)}
    subject_words = _make_vocab(rng, False)[:400]
    n_needle = 0 if small else max(1, round(n * NEEDLE_FRACTION))
    needles = set(rng.sample(range(1, n + 1), n_needle))
    tmp = path + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    msgs = []
    total = 0
    for i in range(1, n + 1):
        raw, kind, date = _one_message(i, seed, rng, texts, subject_words, i in needles, small)
        name = '%06d.eml' % i
        with open(os.path.join(tmp, name), 'wb') as f:
            f.write(raw)
        total += len(raw)
        msgs.append({'i': i, 'file': name, 'size': len(raw), 'kind': kind, 'date': date,
                     'needle': i in needles, 'needle_raw': NEEDLE.encode() in raw})
    manifest = {'version': GENERATOR_VERSION, 'seed': seed, 'n': n, 'small': small,
                'needle': NEEDLE, 'total_bytes': total, 'messages': msgs}
    with open(os.path.join(tmp, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    log('generated %d messages (%.1f MB) in %s' % (n, total / 1e6, path))
    return manifest


def load_or_generate(bench_dir, n, seed=1, small=False, log=print):
    path = corpus_dir(bench_dir, n, small)
    try:
        with open(os.path.join(path, 'manifest.json')) as f:
            m = json.load(f)
        if (m.get('version') == GENERATOR_VERSION and m.get('seed') == seed and
                m.get('n') == n and m.get('small') == small):
            m['path'] = path
            return m
    except (OSError, ValueError):
        pass
    m = generate(path, n, seed, small, log)
    m['path'] = path
    return m


def seed_maildir(manifest, folder_dir, uid, gid):
    """Copy the corpus into the Maildir folder_dir (cur/, flag \\Seen), owned by uid:gid.

    File names carry S= and W= (physical and virtual size: the files use CRLF, so both are
    the length), which spares Dovecot a stat or read per message; mtime is the arrival date
    (Dovecot's INTERNALDATE).  Seconds in the name increase with the index, so Dovecot, which
    sorts new files by that timestamp, gives UIDs in corpus order."""
    cur = os.path.join(folder_dir, 'cur')
    os.makedirs(cur, exist_ok=True)
    src = manifest['path']
    for m in manifest['messages']:
        name = '%d.M%dP1.bench,S=%d,W=%d:2,S' % (BASE_TIME + m['i'], m['i'], m['size'],
                                                  m['size'])
        dst = os.path.join(cur, name)
        shutil.copyfile(os.path.join(src, m['file']), dst)
        os.chown(dst, uid, gid)
        os.utime(dst, (m['date'], m['date']))
    os.utime(cur, None)    # a new mtime makes Dovecot rescan cur/


def _main():
    import argparse
    ap = argparse.ArgumentParser(description='generate the benchmark corpus')
    ap.add_argument('--messages', type=int, default=5000)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--small', action='store_true')
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    m = load_or_generate(here, args.messages, args.seed, args.small)
    kinds = {}
    for x in m['messages']:
        kinds[x['kind']] = kinds.get(x['kind'], 0) + 1
    sizes = sorted(x['size'] for x in m['messages'])
    print('%d messages, %.1f MB, median %d B, p90 %d B, max %d B; kinds %s; needles %d '
          '(%d visible in raw bytes)' % (
              m['n'], m['total_bytes'] / 1e6, sizes[len(sizes) // 2],
              sizes[len(sizes) * 9 // 10], sizes[-1], kinds,
              sum(x['needle'] for x in m['messages']),
              sum(x['needle_raw'] for x in m['messages'])))


if __name__ == '__main__':
    _main()
