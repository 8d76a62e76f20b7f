#!/usr/bin/python3
"""Deterministic sample mail for imapfs integration tests.

sample_corpus() builds, in code, a small mailbox that exercises what imapfs
must decode: several charsets (UTF-8, EUC-KR, ISO-2022-JP) in headers and
bodies, HTML-only mail, multipart/alternative, attachments (a PDF-like file,
an inline PNG, RFC 2231 non-ASCII file names), a forwarded message/rfc822, a
message without Subject, and flagged/unflagged messages.  seed(dovecot)
creates the folders and appends every message.

Folder names in the corpus use '/' as hierarchy separator; seed() maps it to
the server's separator.  Every message uses CRLF line ends, so fetching it
back from Dovecot returns exactly the same bytes.

What Dovecot reports for the \\Noselect parent: only 'Lists/dev' is created,
so 'Lists' is not a mailbox.  Dovecot 2.3.19 returns it from LIST "" "*" as
(\\Noselect \\HasChildren) with both separator '/' (maildir LAYOUT=fs)
and '.' (Maildir++); test_harness.py checks this.
"""

import base64
import email.utils
import struct
import zlib

CRLF = b'\r\n'

# Folders in creation order (parents implied by children are listed only
# where the test wants a real, selectable mailbox).
FOLDERS = ['INBOX', 'Archive', 'Archive/2024', 'Newsletters', '받은편지함',
           'Work', 'Work/Projects', 'Lists/dev']
NOSELECT_PARENT = 'Lists'

SEEN = '\\Seen'
FLAGGED = '\\Flagged'
ANSWERED = '\\Answered'


def _ew(text, charset='UTF-8', codec=None):
    """An RFC 2047 base64 encoded-word for text in charset."""
    raw = text.encode(codec or charset)
    return '=?%s?B?%s?=' % (charset, base64.b64encode(raw).decode('ascii'))


def _b64_lines(data):
    enc = base64.b64encode(data)
    return CRLF.join(enc[i:i + 76] for i in range(0, len(enc), 76))


def _text(s, codec='utf-8'):
    """Body text with CRLF line ends in the given encoding."""
    return s.replace('\n', '\r\n').encode(codec)


def _message(headers, body):
    """Join (name, value) headers and a bytes body into one CRLF message."""
    lines = []
    for name, value in headers:
        if isinstance(value, str):
            value = value.encode('ascii')
        lines.append(name.encode('ascii') + b': ' + value)
    return CRLF.join(lines) + CRLF + CRLF + body


def _common(n, date, frm, to, subject=None):
    h = [('Date', date), ('From', frm), ('To', to)]
    if subject is not None:
        h.append(('Subject', subject))
    h.append(('Message-ID', '<%d.imapfs-sample@example.test>' % n))
    h.append(('MIME-Version', '1.0'))
    return h


def tiny_png():
    """A valid 1x1 RGBA PNG, built here so the bytes are reproducible."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack(
            '>I', zlib.crc32(body) & 0xffffffff)
    ihdr = struct.pack('>IIBBBBB', 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b'\x00\xff\x80\x00\xff', 9)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) +
            chunk(b'IEND', b''))


def tiny_pdf():
    """A small, well-formed one-page PDF (text only)."""
    objs = [
        b'<< /Type /Catalog /Pages 2 0 R >>',
        b'<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
        b'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] '
        b'/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
        None,
        b'<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    ]
    stream = b'BT /F1 12 Tf 20 50 Td (imapfs sample report) Tj ET'
    objs[3] = b'<< /Length %d >>\nstream\n%s\nendstream' % (len(stream), stream)
    out = b'%PDF-1.4\n'
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b'%d 0 obj\n%s\nendobj\n' % (i, o)
    xref = len(out)
    out += b'xref\n0 %d\n0000000000 65535 f \n' % (len(objs) + 1)
    for off in offsets:
        out += b'%010d 00000 n \n' % off
    out += b'trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n' % (
        len(objs) + 1, xref)
    return out


ALICE = 'Alice Kim <alice@example.test>'
BOB = 'Bob Smith <bob@example.test>'


def _inbox():
    out = []
    n = 100
    # 1. Plain English, read.
    n += 1
    out.append(('INBOX', _message(
        _common(n, 'Mon, 06 Jan 2025 09:15:00 +0000', BOB, ALICE,
                'Welcome to imapfs') +
        [('Content-Type', 'text/plain; charset=us-ascii'),
         ('Content-Transfer-Encoding', '7bit')],
        _text('Hi Alice,\n\nThis is a plain text message in English.\n'
              'It has a few lines and nothing special.\n\n-- \nBob\n')),
        (SEEN,)))
    # 2. Korean, UTF-8 subject (RFC 2047 base64) and 8bit UTF-8 body; unread.
    n += 1
    out.append(('INBOX', _message(
        _common(n, 'Tue, 07 Jan 2025 10:30:00 +0900',
                '%s <minsu@example.test>' % _ew('이민수'), ALICE,
                _ew('회의 일정 안내')) +
        [('Content-Type', 'text/plain; charset=utf-8'),
         ('Content-Transfer-Encoding', '8bit')],
        _text('앨리스 님, 안녕하세요.\n\n다음 주 화요일 오후 3시에 회의가 있습니다.\n'
              '장소: 3층 대회의실\n\n감사합니다.\n이민수 드림\n')),
        ()))
    # 3. Korean in real EUC-KR bytes (subject and body); flagged, unread.
    n += 1
    out.append(('INBOX', _message(
        _common(n, 'Wed, 08 Jan 2025 14:00:00 +0900',
                '%s <sales@example.test>' % _ew('영업팀', 'EUC-KR', 'euc_kr'),
                ALICE, _ew('견적서 보내드립니다', 'EUC-KR', 'euc_kr')) +
        [('Content-Type', 'text/plain; charset=euc-kr'),
         ('Content-Transfer-Encoding', '8bit')],
        _text('안녕하세요, 영업팀입니다.\n\n요청하신 견적서를 보내드립니다.\n'
              '총 금액: 1,200,000원\n\n문의 사항은 회신 부탁드립니다.\n',
              'euc_kr')),
        (FLAGGED,)))
    # 4. Japanese ISO-2022-JP subject and body (7bit on the wire); read.
    n += 1
    out.append(('INBOX', _message(
        _common(n, 'Thu, 09 Jan 2025 08:45:00 +0900',
                '%s <tanaka@example.test>' % _ew('田中', 'ISO-2022-JP', 'iso2022_jp'),
                ALICE, _ew('会議のお知らせ', 'ISO-2022-JP', 'iso2022_jp')) +
        [('Content-Type', 'text/plain; charset=ISO-2022-JP'),
         ('Content-Transfer-Encoding', '7bit')],
        _text('アリスさん\n\n来週の会議は月曜日の午前十時からです。\n'
              'よろしくお願いします。\n\n田中\n', 'iso2022_jp')),
        (SEEN,)))
    # 5. multipart/alternative: text/plain + text/html; read.
    n += 1
    out.append(('INBOX', _message(
        _common(n, 'Fri, 10 Jan 2025 12:00:00 +0000', BOB, ALICE,
                'Lunch on Friday?') +
        [('Content-Type', 'multipart/alternative; boundary="alt-5-boundary"')],
        _text('This is a multi-part message in MIME format.\n'
              '--alt-5-boundary\n'
              'Content-Type: text/plain; charset=utf-8\n'
              'Content-Transfer-Encoding: quoted-printable\n\n'
              'Shall we have lunch on Friday at the caf=C3=A9 near the station? It serv=\n'
              'es good soup.\n'
              '--alt-5-boundary\n'
              'Content-Type: text/html; charset=utf-8\n'
              'Content-Transfer-Encoding: 8bit\n\n'
              '<html><body><p>Shall we have <b>lunch</b> on Friday at the '
              'café near the station?</p><p>It serves good soup.</p></body></html>\n'
              '--alt-5-boundary--\n')),
        (SEEN,)))
    # 6. multipart/mixed: text, PDF attachment, inline PNG; read + flagged.
    n += 1
    pdf = tiny_pdf()
    png = tiny_png()
    body = (_text('--mixed-6-boundary\n'
                  'Content-Type: text/plain; charset=us-ascii\n\n'
                  'Please find the quarterly report attached, and our logo inline.\n'
                  '--mixed-6-boundary\n'
                  'Content-Type: application/pdf; name="report-q4.pdf"\n'
                  'Content-Disposition: attachment; filename="report-q4.pdf"\n'
                  'Content-Transfer-Encoding: base64\n\n') +
            _b64_lines(pdf) + CRLF +
            _text('--mixed-6-boundary\n'
                  'Content-Type: image/png; name="logo.png"\n'
                  'Content-Disposition: inline; filename="logo.png"\n'
                  'Content-ID: <logo.6@example.test>\n'
                  'Content-Transfer-Encoding: base64\n\n') +
            _b64_lines(png) + CRLF + b'--mixed-6-boundary--' + CRLF)
    out.append(('INBOX', _message(
        _common(n, 'Mon, 13 Jan 2025 16:20:00 +0000', BOB, ALICE,
                'Quarterly report') +
        [('Content-Type', 'multipart/mixed; boundary="mixed-6-boundary"')],
        body), (SEEN, FLAGGED)))
    # 7. RFC 2231 non-ASCII attachment names (one plain, one continued); unread.
    n += 1
    body = _text(
        '--mixed-7-boundary\n'
        'Content-Type: text/plain; charset=utf-8\n\n'
        'Two attachments with non-ASCII names.\n'
        '--mixed-7-boundary\n'
        "Content-Type: text/plain; charset=utf-8; name*=UTF-8''%EB%B3%B4%EA%B3%A0%EC%84%9C.txt\n"
        "Content-Disposition: attachment; filename*=UTF-8''%EB%B3%B4%EA%B3%A0%EC%84%9C.txt\n"
        'Content-Transfer-Encoding: 8bit\n\n'
        '보고서 내용입니다.\n'
        '--mixed-7-boundary\n'
        'Content-Type: text/plain; charset=utf-8\n'
        "Content-Disposition: attachment;\n"
        " filename*0*=UTF-8''r%C3%A9sum%C3%A9%20final;\n"
        ' filename*1*=%20version%202024.txt\n'
        'Content-Transfer-Encoding: 8bit\n\n'
        'Résumé text.\n'
        '--mixed-7-boundary--\n')
    out.append(('INBOX', _message(
        _common(n, 'Tue, 14 Jan 2025 11:11:00 +0100', BOB, ALICE,
                'Files with international names') +
        [('Content-Type', 'multipart/mixed; boundary="mixed-7-boundary"')],
        body), ()))
    # 8. No Subject header at all; unread.
    n += 1
    out.append(('INBOX', _message(
        _common(n, 'Wed, 15 Jan 2025 07:00:00 +0000', BOB, ALICE, None) +
        [('Content-Type', 'text/plain; charset=us-ascii')],
        _text('This message has no Subject header.\n')), ()))
    # 9. Forwarded message as message/rfc822; read.
    n += 1
    inner = _message(
        _common(9000, 'Sun, 12 Jan 2025 20:00:00 +0000',
                'Carol <carol@example.test>', BOB, 'Original announcement') +
        [('Content-Type', 'text/plain; charset=us-ascii')],
        _text('The office will be closed on Monday.\n'))
    body = (_text('--fwd-9-boundary\n'
                  'Content-Type: text/plain; charset=us-ascii\n\n'
                  'FYI, see the forwarded message below.\n'
                  '--fwd-9-boundary\n'
                  'Content-Type: message/rfc822\n'
                  'Content-Disposition: inline\n\n') + inner + CRLF +
            b'--fwd-9-boundary--' + CRLF)
    out.append(('INBOX', _message(
        _common(n, 'Thu, 16 Jan 2025 09:30:00 +0000', BOB, ALICE,
                'Fwd: Original announcement') +
        [('Content-Type', 'multipart/mixed; boundary="fwd-9-boundary"')],
        body), (SEEN,)))
    # 10. The invoice the README greps for; unread.
    n += 1
    out.append(('INBOX', _message(
        _common(n, 'Fri, 17 Jan 2025 15:45:00 +0000',
                'Billing <billing@shop.example.test>', ALICE,
                'Your invoice INV-2025-0042') +
        [('Content-Type', 'text/plain; charset=us-ascii')],
        _text('Dear customer,\n\nThank you for your order. This is your invoice '
              'INV-2025-0042.\n\nAmount due: EUR 42.00\nDue date: 2025-02-15\n')),
        ()))
    # 11. Long folded subject, quoted-printable body; read + answered.
    n += 1
    out.append(('INBOX', _message(
        _common(n, 'Sat, 18 Jan 2025 18:05:00 +0000', BOB, ALICE,
                'Re: a rather long subject line that goes on and on so that it\r\n'
                ' has to be folded over two header lines') +
        [('Content-Type', 'text/plain; charset=iso-8859-1'),
         ('Content-Transfer-Encoding', 'quoted-printable')],
        _text('Na=EFve caf=E9 r=E9sum=E9 with a soft line break that joins th=\n'
              'ese words.\n')), (SEEN, ANSWERED)))
    return out


def _others():
    out = []
    n = 200
    for i, (date, subj) in enumerate([
            ('Mon, 02 Jan 2023 10:00:00 +0000', 'Old project notes'),
            ('Wed, 15 Mar 2023 10:00:00 +0000', 'Travel receipt'),
            ('Fri, 01 Dec 2023 10:00:00 +0000', 'Year end summary'),
    ]):
        n += 1
        out.append(('Archive', _message(
            _common(n, date, BOB, ALICE, subj) +
            [('Content-Type', 'text/plain; charset=us-ascii')],
            _text('Archived message %d: %s.\n' % (i + 1, subj))),
            (SEEN,) if i != 1 else ()))
    for date, subj in [('Tue, 05 Mar 2024 10:00:00 +0000', 'Spring plans 2024'),
                       ('Thu, 10 Oct 2024 10:00:00 +0000', 'Autumn plans 2024')]:
        n += 1
        out.append(('Archive/2024', _message(
            _common(n, date, BOB, ALICE, subj) +
            [('Content-Type', 'text/plain; charset=us-ascii')],
            _text('%s, filed in a folder whose name is all digits.\n' % subj)),
            (SEEN,)))
    # HTML-only newsletter with script, style, entities and links; unread.
    n += 1
    html = ('<!DOCTYPE html>\n<html><head><title>Weekly News</title>\n'
            '<style>body { font-family: sans-serif } .hidden { display: none }</style>\n'
            '<script type="text/javascript">var tracking = "do not show this";</script>\n'
            '</head><body>\n<h1>Weekly News &amp; Updates</h1>\n'
            '<p>Prices from &euro;10 &ndash; &lt;limited&gt; offer&nbsp;only.</p>\n'
            '<p>Read <a href="https://example.test/article?id=1&amp;ref=mail">the article</a>'
            ' or visit <a href="https://example.test/">our site</a>.</p>\n'
            '<ul><li>First item</li><li>Second item</li></ul>\n'
            '<p class="hidden">unsubscribe tracking pixel</p>\n'
            '<img src="https://example.test/pixel.gif" alt="">\n'
            '</body></html>\n')
    out.append(('Newsletters', _message(
        _common(n, 'Mon, 20 Jan 2025 06:00:00 +0000',
                'News <news@example.test>', ALICE, 'Weekly News #42') +
        [('Content-Type', 'text/html; charset=utf-8'),
         ('Content-Transfer-Encoding', '8bit'),
         ('List-Unsubscribe', '<https://example.test/unsub>')],
        _text(html)), ()))
    # Same kind, base64-encoded HTML; read.
    n += 1
    html2 = ('<html><body><h2>Monthly digest</h2><p>Caf&eacute; &quot;news&quot; '
             'for January.</p><p><a href="https://example.test/digest">More</a></p>'
             '</body></html>\n')
    out.append(('Newsletters', _message(
        _common(n, 'Sat, 01 Feb 2025 06:00:00 +0000',
                'Digest <digest@example.test>', ALICE, 'Monthly digest') +
        [('Content-Type', 'text/html; charset=utf-8'),
         ('Content-Transfer-Encoding', 'base64')],
        _b64_lines(_text(html2)) + CRLF), (SEEN,)))
    # Korean folder.
    n += 1
    out.append(('받은편지함', _message(
        _common(n, 'Mon, 03 Feb 2025 09:00:00 +0900',
                '%s <jiyoung@example.test>' % _ew('박지영'), ALICE,
                _ew('주간 보고서')) +
        [('Content-Type', 'text/plain; charset=utf-8'),
         ('Content-Transfer-Encoding', 'base64')],
        _b64_lines(_text('이번 주 업무 보고서입니다.\n진행률은 80%입니다.\n')) + CRLF),
        ()))
    n += 1
    out.append(('받은편지함', _message(
        _common(n, 'Tue, 04 Feb 2025 09:00:00 +0900',
                '%s <minsu@example.test>' % _ew('이민수'), ALICE,
                _ew('점심 메뉴')) +
        [('Content-Type', 'text/plain; charset=utf-8'),
         ('Content-Transfer-Encoding', '8bit')],
        _text('오늘 점심은 김치찌개 어떠세요?\n')), (SEEN,)))
    # Work/Projects.
    n += 1
    body = (_text('--mixed-w-boundary\n'
                  'Content-Type: text/plain; charset=us-ascii\n\n'
                  'Budget figures attached as CSV.\n'
                  '--mixed-w-boundary\n'
                  'Content-Type: text/csv; charset=us-ascii; name="budget.csv"\n'
                  'Content-Disposition: attachment; filename="budget.csv"\n\n'
                  'item,amount\nservers,1200\nlicenses,300\n'
                  '--mixed-w-boundary--\n'))
    out.append(('Work/Projects', _message(
        _common(n, 'Wed, 05 Feb 2025 13:00:00 +0000', BOB, ALICE,
                'Project budget') +
        [('Content-Type', 'multipart/mixed; boundary="mixed-w-boundary"')],
        body), (SEEN,)))
    n += 1
    out.append(('Work/Projects', _message(
        _common(n, 'Thu, 06 Feb 2025 13:00:00 +0000', BOB, ALICE,
                'Milestone review') +
        [('Content-Type', 'text/plain; charset=us-ascii')],
        _text('The milestone review is moved to next week.\n')), (FLAGGED,)))
    n += 1
    out.append(('Work', _message(
        _common(n, 'Fri, 07 Feb 2025 13:00:00 +0000', BOB, ALICE, 'Team offsite') +
        [('Content-Type', 'text/plain; charset=us-ascii')],
        _text('The team offsite is on the 20th.\n')), ()))
    # Lists/dev (its parent 'Lists' is not a mailbox).
    for subj, flags in [('[dev] Release 1.2 planning', (SEEN,)),
                        ('[dev] Build broken on main', ())]:
        n += 1
        out.append(('Lists/dev', _message(
            _common(n, 'Sat, 08 Feb 2025 08:00:00 +0000',
                    'Dev List <dev@lists.example.test>', 'dev@lists.example.test',
                    subj) +
            [('Content-Type', 'text/plain; charset=us-ascii'),
             ('List-Id', '<dev.lists.example.test>')],
            _text('%s\n\nDiscussion on the mailing list.\n' % subj)), flags))
    return out


def sample_corpus():
    """[(folder_utf8 with '/' separator, raw_bytes, flags_tuple)], deterministic."""
    return _inbox() + _others()


def message_date(raw):
    """The Date header of a corpus message, as an aware datetime."""
    head = raw.split(CRLF + CRLF, 1)[0].decode('utf-8', 'replace')
    for line in head.split('\r\n'):
        if line.lower().startswith('date:'):
            return email.utils.parsedate_to_datetime(line[5:].strip())
    return None


def seed(dovecot):
    """Create the corpus folders and append every message.

    Returns [(folder_name_on_server, uid, raw_bytes, flags)] in corpus order;
    folder names use the server's separator.  INTERNALDATE is each message's
    Date header."""
    sep = dovecot.separator
    existing = {name for name, _f, _d in dovecot.list_folders()}
    for folder in FOLDERS:
        name = folder.replace('/', sep)
        if name != 'INBOX' and name not in existing:
            dovecot.create_folder(name)
    out = []
    for folder, raw, flags in sample_corpus():
        name = folder.replace('/', sep)
        uid = dovecot.append(name, raw, flags=flags, date=message_date(raw))
        out.append((name, uid, raw, flags))
    return out


if __name__ == '__main__':
    import sys
    for folder, raw, flags in sample_corpus():
        first = raw.split(CRLF, 1)[0].decode('ascii', 'replace')
        sys.stdout.write('%-14s %6d bytes %-22s %s\n' % (
            folder, len(raw), ' '.join(flags) or '-', first))
