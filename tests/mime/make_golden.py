#!/usr/bin/python3
"""Writes the golden test data of tests/mime: messages/*.eml and expected/<name>/*.

The messages carry real legacy-charset bytes (EUC-KR, ISO-2022-JP, KOI8-R, ...) produced with
Python's codecs.  Every expected value below is written from the source text of the message,
never copied from the library's output.  Run it from anywhere; it rewrites both directories.
Expectation files are described at the top of test_mime.c.
"""
import base64
import os
import quopri
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "messages")
E = os.path.join(HERE, "expected")
shutil.rmtree(OUT, ignore_errors=True)

os.makedirs(OUT, exist_ok=True)

def b64w(s, cs):
    return "=?%s?B?%s?=" % (cs, base64.b64encode(s.encode(cs.lower() if cs.lower()!='iso-2022-jp' else 'iso2022_jp')).decode())

def write(name, text_or_bytes, crlf=True):
    b = text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode('ascii')
    if crlf:
        b = b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b)

def wrap76(s):
    return "\n".join(s[i:i+76] for i in range(0, len(s), 76))

# 1. Korean UTF-8
body = "안녕하세요, 세계!\n한국어 본문입니다.\n"
write("korean-utf8.eml",
"From: " + b64w("김철수", "UTF-8") + " <chulsoo@example.kr>\n"
"To: " + b64w("이영희", "UTF-8") + " <younghee@example.kr>, bob@example.com\n"
"Subject: " + b64w("안녕하세요 세계", "UTF-8") + "\n"
"Date: Mon, 15 Jan 2024 09:30:00 +0900\n"
"Message-ID: <korean-utf8@example.kr>\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Content-Transfer-Encoding: base64\n"
"\n" + wrap76(base64.b64encode(body.encode()).decode()) + "\n")

# 2. Korean EUC-KR: encoded-word subject, 8bit body
body = "회의는 내일 오후 3시입니다.\n참석 부탁드립니다.\n"
write("korean-euckr.eml",
("From: " + b64w("박지민", "EUC-KR") + " <jimin@example.kr>\n"
"To: team@example.kr\n"
"Subject: " + b64w("회의 안내", "EUC-KR") + "\n"
"Date: Tue, 16 Jan 2024 14:00:00 +0900\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=\"euc-kr\"\n"
"Content-Transfer-Encoding: 8bit\n"
"\n").encode() + body.encode("euc-kr"))

# 3. Korean with raw 8-bit EUC-KR subject (no encoded words), body labelled ks_c_5601-1987
body = "첨부 파일을 확인하세요.\n"
write("korean-raw-header.eml",
b"From: sender@example.kr\n"
b"To: you@example.kr\n"
b"Subject: " + "견적서 송부".encode("euc-kr") + b"\n"
b"MIME-Version: 1.0\n"
b"Content-Type: text/plain; charset=ks_c_5601-1987\n"
b"Content-Transfer-Encoding: base64\n"
b"\n" + base64.b64encode(body.encode("cp949")) + b"\n")

# 4. Japanese ISO-2022-JP
body = "こんにちは、世界。\n日本語のメールです。\n"
write("japanese-iso2022jp.eml",
"From: " + b64w("山田太郎", "ISO-2022-JP") + " <taro@example.jp>\n"
"To: hanako@example.jp\n"
"Subject: " + b64w("会議のお知らせ", "ISO-2022-JP") + "\n"
"Date: Wed, 17 Jan 2024 10:00:00 +0900\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=ISO-2022-JP\n"
"Content-Transfer-Encoding: 7bit\n"
"\n" + body.encode("iso2022_jp").decode("ascii"))

# 5. Cyrillic KOI8-R with QP body
body = "Привет, мир!\nЭто письмо в кодировке KOI8-R.\n"
qp = quopri.encodestring(body.encode("koi8_r")).decode()
subj = "=?KOI8-R?Q?" + "".join("=%02X" % c if c > 127 or c in b"?=_ " else chr(c) for c in "Отчёт за январь".encode("koi8_r")).replace("=20", "_") + "?="
write("cyrillic-koi8r.eml",
"From: " + b64w("Иван Петров", "KOI8-R") + " <ivan@example.ru>\n"
"To: olga@example.ru\n"
"Subject: " + subj + "\n"
"Date: Thu, 18 Jan 2024 12:00:00 +0300\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=koi8-r\n"
"Content-Transfer-Encoding: quoted-printable\n"
"\n" + qp)

# 6. Emoji (UTF-8, QP body, B subject)
body = "Party time 🎉🎂\nSee you there 👋 — bring 🍕!\n"
write("emoji.eml",
"From: Emoji Fan <fan@example.com>\n"
"To: friends@example.com\n"
"Subject: " + b64w("Birthday 🎉 party 🎂", "UTF-8") + "\n"
"Date: Fri, 19 Jan 2024 18:00:00 -0500\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=utf-8\n"
"Content-Transfer-Encoding: quoted-printable\n"
"\n" + quopri.encodestring(body.encode()).decode())

# 7. ISO-8859-1 label with windows-1252 bytes, quoted-printable with soft breaks
body = "Caf\xe9 cr\xe8me br\xfbl\xe9e \x93quoted\x94 \x96 price 5\x80.\n"
qp = "Caf=E9 cr=E8me br=FBl=E9e =93quoted=94 =96 pr=\nice 5=80.\n"
write("latin1-qp.eml",
"From: =?iso-8859-1?q?Fran=E7ois_Dupr=E9?= <francois@example.fr>\n"
"To: \"Doe, John\" <john@example.com>, Jane <jane@example.com>\n"
"Cc: undisclosed-recipients:;\n"
"Subject: =?iso-8859-1?q?Cr=E8me_br=FBl=E9e?=\n"
"Date: Sat, 20 Jan 2024 08:15:00 +0100\n"
"Message-ID: <latin1@example.fr>\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=iso-8859-1\n"
"Content-Transfer-Encoding: quoted-printable\n"
"\n" + qp)

# 8. multipart/alternative
write("alternative.eml",
"From: Alice <alice@example.com>\n"
"To: Bob <bob@example.com>\n"
"Subject: Lunch?\n"
"Date: Sun, 21 Jan 2024 11:00:00 +0000\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/alternative; boundary=\"alt-1\"\n"
"\n"
"This is a multi-part message in MIME format.\n"
"--alt-1\n"
"Content-Type: text/plain; charset=utf-8\n"
"Content-Transfer-Encoding: 7bit\n"
"\n"
"Lunch at noon?\n"
"-- Alice\n"
"--alt-1\n"
"Content-Type: text/html; charset=utf-8\n"
"Content-Transfer-Encoding: quoted-printable\n"
"\n"
"<html><body><p>Lunch at <b>noon</b>?</p><p>-- Alice</p></body></html>\n"
"--alt-1--\n")

# 9. multipart/mixed with inline images
png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
jpg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-jpeg-bytes\xff\xd9"
write("mixed-inline-images.eml",
"From: Photographer <photo@example.com>\n"
"To: viewer@example.com\n"
"Subject: Photos from the trip\n"
"Date: Mon, 22 Jan 2024 20:00:00 +0000\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed; boundary=\"mix\"\n"
"\n"
"--mix\n"
"Content-Type: text/plain; charset=us-ascii\n"
"\n"
"Here is the first photo:\n"
"--mix\n"
"Content-Type: image/png; name=\"dot.png\"\n"
"Content-Disposition: inline; filename=\"dot.png\"\n"
"Content-Transfer-Encoding: base64\n"
"Content-ID: <dot@example.com>\n"
"\n" + base64.b64encode(png).decode() + "\n"
"--mix\n"
"Content-Type: text/plain; charset=us-ascii\n"
"Content-Disposition: inline\n"
"\n"
"And the second one:\n"
"--mix\n"
"Content-Type: image/jpeg\n"
"Content-Disposition: inline\n"
"Content-Transfer-Encoding: base64\n"
"\n" + base64.b64encode(jpg).decode() + "\n"
"--mix--\n")

# 10. HTML-only newsletter
html = """<!DOCTYPE html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>Weekly News</title>
<style>body { color: red; } .x > p { margin: 0 }</style>
<script type="text/javascript">var tracking = "<p>not shown</p>"; alert(1);</script>
</head>
<body>
<div style="display: none; max-height:0">Preheader text nobody should see</div>
<h1>Weekly   News &amp; Updates</h1>
<p>Hello&nbsp;reader, caf&eacute; prices are &lt;down&gt; &#8212; &#x263A;<br>Second line<br/>Third line</p>
<ul><li>First item</li><li>Second <a href="https://example.com/item2">item link</a></li></ul>
<ol><li>one</li><li>two</li></ol>
<p>Visit <a href="https://example.com/">https://example.com/</a> or
<a href="mailto:news@example.com">news@example.com</a> or <a href="#top">top</a>.</p>
<table><tr><td>Cell A</td><td>Cell B</td></tr><tr><td>Cell C</td><td><img src="x.png" alt="Logo"></td></tr></table>
<!-- a comment that must vanish -->
<pre>  keep   this
    spacing</pre>
<p>Unsubscribe <a href="https://example.com/unsub?id=1&amp;x=2">here</a></p>
</body></html>
"""
write("html-newsletter.eml",
"From: News <news@example.com>\n"
"To: reader@example.com\n"
"Subject: Weekly News\n"
"Date: Tue, 23 Jan 2024 07:00:00 +0000\n"
"MIME-Version: 1.0\n"
"Content-Type: text/html; charset=utf-8\n"
"Content-Transfer-Encoding: quoted-printable\n"
"\n" + quopri.encodestring(html.encode()).decode())

# 11. forwarded message/rfc822 (two of them: one with a subject, one without)
inner1 = ("From: Carol <carol@example.com>\n"
"To: dave@example.com\n"
"Subject: Original report\n"
"Date: Wed, 24 Jan 2024 09:00:00 +0000\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed; boundary=\"inner\"\n"
"\n"
"--inner\n"
"Content-Type: text/plain\n"
"\n"
"The original text.\n"
"--inner--\n")
inner2 = ("From: Eve <eve@example.com>\n"
"To: frank@example.com\n"
"\n"
"No subject here.\n")
write("forwarded.eml",
"From: Dave <dave@example.com>\n"
"To: grace@example.com\n"
"Subject: Fwd: Original report\n"
"Date: Wed, 24 Jan 2024 10:00:00 +0000\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed; boundary=\"outer\"\n"
"\n"
"--outer\n"
"Content-Type: text/plain; charset=utf-8\n"
"\n"
"See the forwarded messages.\n"
"--outer\n"
"Content-Type: message/rfc822\n"
"Content-Disposition: inline\n"
"\n" + inner1 +
"--outer\n"
"Content-Type: message/rfc822\n"
"\n" + inner2 +
"--outer--\n")
INNER1 = inner1.replace("\n", "\r\n").encode()
INNER2 = inner2.replace("\n", "\r\n").encode()

# 12. calendar invite
ics = ("BEGIN:VCALENDAR\n"
"VERSION:2.0\n"
"METHOD:REQUEST\n"
"BEGIN:VEVENT\n"
"UID:1234@example.com\n"
"SUMMARY:Planning\n"
"DTSTART:20240125T150000Z\n"
"END:VEVENT\n"
"END:VCALENDAR\n")
write("calendar-invite.eml",
"From: Organizer <org@example.com>\n"
"To: guest@example.com\n"
"Subject: Invitation: Planning\n"
"Date: Thu, 25 Jan 2024 08:00:00 +0000\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed; boundary=\"cal-mixed\"\n"
"\n"
"--cal-mixed\n"
"Content-Type: multipart/alternative; boundary=\"cal-alt\"\n"
"\n"
"--cal-alt\n"
"Content-Type: text/plain; charset=utf-8\n"
"\n"
"You are invited to Planning.\n"
"--cal-alt\n"
"Content-Type: text/html; charset=utf-8\n"
"\n"
"<p>You are invited to <b>Planning</b>.</p>\n"
"--cal-alt\n"
"Content-Type: text/calendar; charset=utf-8; method=REQUEST\n"
"\n" + ics +
"--cal-alt--\n"
"--cal-mixed\n"
"Content-Type: application/ics; name=\"invite.ics\"\n"
"Content-Disposition: attachment; filename=\"invite.ics\"\n"
"Content-Transfer-Encoding: base64\n"
"\n" + wrap76(base64.b64encode(ics.replace("\n", "\r\n").encode()).decode()) + "\n"
"--cal-mixed--\n")
ICS = ics.replace("\n", "\r\n").encode()

# 13. multipart/signed
write("signed.eml",
"From: Signer <signer@example.com>\n"
"To: verifier@example.com\n"
"Subject: Signed message\n"
"Date: Fri, 26 Jan 2024 12:00:00 +0000\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/signed; micalg=pgp-sha256;\n"
" protocol=\"application/pgp-signature\"; boundary=\"sig\"\n"
"\n"
"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\n"
"--sig\n"
"Content-Type: multipart/alternative; boundary=\"sig-alt\"\n"
"\n"
"--sig-alt\n"
"Content-Type: text/plain; charset=utf-8\n"
"Content-Transfer-Encoding: quoted-printable\n"
"\n"
"This text is signed.=0A=E2=9C=93 verified\n"
"--sig-alt\n"
"Content-Type: text/html; charset=utf-8\n"
"\n"
"<p>This text is signed.</p>\n"
"--sig-alt--\n"
"\n"
"--sig\n"
"Content-Type: application/pgp-signature; name=\"signature.asc\"\n"
"Content-Description: OpenPGP digital signature\n"
"Content-Disposition: attachment; filename=\"signature.asc\"\n"
"\n"
"-----BEGIN PGP SIGNATURE-----\n"
"\n"
"iQEzBAEBCAAdFiEEfakefakefakefakefakefakefakefakeFAmWzAAAACgkQfake\n"
"=abcd\n"
"-----END PGP SIGNATURE-----\n"
"\n"
"--sig--\n")

# 14. attachment names: RFC 2231 (charsets, continuations), RFC 2047, duplicates, nameless, unsafe
def pct(b): return "".join("%%%02X" % c for c in b)
longname = "가" * 100 + ".pdf"   # 304 bytes in UTF-8
lb = longname.encode()
chunks = [lb[i:i+60] for i in range(0, len(lb), 60)]
long_params = ";\n".join(" filename*%d*=%s%s" % (i, "UTF-8''" if i == 0 else "", pct(c)) for i, c in enumerate(chunks))
def att(headers, payload=b"data"):
    return "--att\n" + headers + "Content-Transfer-Encoding: base64\n\n" + base64.b64encode(payload).decode() + "\n"
write("attachment-names.eml",
"From: Files <files@example.com>\n"
"To: you@example.com\n"
"Subject: Attachments\n"
"Date: Sat, 27 Jan 2024 12:00:00 +0000\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed; boundary=\"att\"\n"
"\n"
"--att\n"
"Content-Type: text/plain; charset=utf-8\n"
"\n"
"Several files attached.\n" +
att("Content-Type: application/pdf\n"
    "Content-Disposition: attachment;\n"
    " filename*0*=UTF-8''%C3%9Cber;\n"
    " filename*1*=%73%69%63%68%74;\n"
    " filename*2=\"-2024.pdf\"\n", b"pdf-1") +
att("Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename*=iso-8859-1'fr'r%E9sum%E9.txt\n", b"resume") +
att("Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;\n"
    " name=\"" + b64w("보고서.docx", "UTF-8") + "\"\n"
    "Content-Disposition: attachment\n", b"docx") +
att("Content-Type: application/pdf; name=\"report.pdf\"\n"
    "Content-Disposition: attachment; filename=\"report.pdf\"\n", b"report one") +
att("Content-Type: application/pdf; name=\"report.pdf\"\n"
    "Content-Disposition: attachment; filename=\"report.pdf\"\n", b"report two") +
att("Content-Type: application/pdf\n"
    "Content-Disposition: attachment\n", b"nameless pdf") +
att("Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=\"../../etc/passwd\"\n", b"root:x:0:0") +
att("Content-Type: image/png\n", png) +
att("Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename*=utf-8''bad%01name%0A.txt\n", b"ctl") +
att("Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=\".\"\n", b"dot") +
att("Content-Type: application/pdf\n"
    "Content-Disposition: attachment;\n" + long_params + "\n", b"long") +
att("Content-Type: application/vnd.ms-excel\n"
    "Content-Disposition: attachment; filename*=euc-kr''" + pct("견적.xls".encode("euc-kr")) + "\n", b"xls") +
att("Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\n"
    "Content-Disposition: attachment; filename=\"notes.txt\"\n", b"plain attachment\r\n") +
"--att--\n")

# 15. no Subject (and no To, Cc, Date, Message-ID), no MIME headers at all
write("no-subject.eml",
"From: nobody@example.com\n"
"X-Mailer: test\n"
"\n"
"A body without any MIME headers.\n", crlf=False)

# 16. broken encoded words and raw 8-bit latin-1 header without any charset hint
write("broken-headers.eml",
b"From: \"=?UTF-8?B?7ZWc6rWt7Ja0?=\" <quoted@example.kr>\n"
b"To: =?utf-8?q?J=C3=BCrgen?=<juergen@example.de>\n"
b"Cc: =?UTF-8?B?7JWI64WV?=\xed\x95\x98\xec\x84\xb8\xec\x9a\x94 <mixed@example.kr>\n"
b"Subject: =?UTF-8?Q?caf=C3=A9?=bar =?UTF-8?B?7ZWc?= =?UTF-8?B?6rWt?=\n"
b" =?UTF-8?B?8J+Y?= =?UTF-8?B?gA==?= end\n"
b"X-Raw-Latin1: Informa\xe7\xe3o r\xe9sum\xe9\n"
b"Date: 28 Jan 2024 13:14:15 GMT\n"
b"Message-ID:\n <broken@example.com>\n"
b"\n"
b"Body.\n")

# 17. unknown charset and invalid UTF-8
write("bad-charsets.eml",
b"From: x@example.com\n"
b"Subject: =?x-bogus-charset?Q?abc?= and =?utf-8?B?/w==?=\n"
b"MIME-Version: 1.0\n"
b"Content-Type: multipart/mixed; boundary=b\n"
b"\n"
b"--b\n"
b"Content-Type: text/plain; charset=x-bogus-charset\n"
b"\n"
b"Na\xefve caf\xe9 text\n"
b"--b\n"
b"Content-Type: text/plain; charset=utf-8\n"
b"\n"
b"valid \xc3\xa9 invalid \xff\xfe end \xe2\x82\n"
b"--b\n"
b"Content-Type: text/plain\n"
b"\n"
b"no charset: \xe2\x9c\x93 is utf-8\n"
b"--b\n"
b"Content-Type: text/plain; charset=us-ascii\n"
b"\n"
b"us-ascii with latin-1 \xe9\n"
b"--b--\n", crlf=False)

# 18. missing / wrong boundaries
write("missing-boundary.eml",
"From: x@example.com\n"
"Subject: Missing boundary\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed; boundary=\"never-used\"\n"
"\n"
"--some-other-boundary\n"
"Content-Type: text/plain\n"
"\n"
"Text that is only preamble.\n"
"--some-other-boundary--\n")
write("unterminated-boundary.eml",
"From: x@example.com\n"
"Subject: Unterminated\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed; boundary=\"b1\"\n"
"\n"
"--b1\n"
"Content-Type: text/plain\n"
"\n"
"First part.\n"
"--b1\n"
"Content-Type: application/octet-stream; name=\"cut.bin\"\n"
"Content-Transfer-Encoding: base64\n"
"\n"
"aGVsbG8gd29y\n")
write("no-boundary-param.eml",
"From: x@example.com\n"
"Subject: No boundary parameter\n"
"MIME-Version: 1.0\n"
"Content-Type: multipart/mixed\n"
"\n"
"--x\n"
"Content-Type: text/plain\n"
"\n"
"Where does this go?\n"
"--x--\n")

# ---- expectations ----
shutil.rmtree(E, ignore_errors=True)
def put(msg, view, content):
    d = os.path.join(E, msg)
    os.makedirs(os.path.dirname(os.path.join(d, view)), exist_ok=True)
    with open(os.path.join(d, view), "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode())
def views(msg, **kw):
    for k, v in kw.items():
        put(msg, k.replace("_", "-").replace("body-html", "body.html"), v)
def atts(msg, lst):
    put(msg, "attachments.list", "".join("%s\t%d\n" % (n, s) for n, s in lst))

views("korean-utf8", subject="안녕하세요 세계\n", **{"from": "김철수 <chulsoo@example.kr>\n"},
      to="이영희 <younghee@example.kr>, bob@example.com\n",
      date="Mon, 15 Jan 2024 09:30:00 +0900\n", message_id="<korean-utf8@example.kr>\n",
      body="안녕하세요, 세계!\n한국어 본문입니다.\n",
      headers="From: 김철수 <chulsoo@example.kr>\nTo: 이영희 <younghee@example.kr>, bob@example.com\n"
              "Subject: 안녕하세요 세계\nDate: Mon, 15 Jan 2024 09:30:00 +0900\n"
              "Message-ID: <korean-utf8@example.kr>\nMIME-Version: 1.0\n"
              "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\n")
put("korean-utf8", "absent", "cc\nbody.html\n")
put("korean-utf8", "date-epoch", "1705278600\n")
atts("korean-utf8", [])

views("korean-euckr", subject="회의 안내\n", **{"from": "박지민 <jimin@example.kr>\n"}, to="team@example.kr\n",
      body="회의는 내일 오후 3시입니다.\n참석 부탁드립니다.\n")
put("korean-euckr", "absent", "cc\nmessage-id\nbody.html\n")
put("korean-euckr", "date-epoch", "1705381200\n")

views("korean-raw-header", subject="견적서 송부\n", date="\n", body="첨부 파일을 확인하세요.\n")
put("korean-raw-header", "date-epoch", "none\n")

views("japanese-iso2022jp", subject="会議のお知らせ\n", **{"from": "山田太郎 <taro@example.jp>\n"},
      body="こんにちは、世界。\n日本語のメールです。\n")

views("cyrillic-koi8r", subject="Отчёт за январь\n", **{"from": "Иван Петров <ivan@example.ru>\n"},
      body="Привет, мир!\nЭто письмо в кодировке KOI8-R.\n")
put("cyrillic-koi8r", "date-epoch", "1705568400\n")

views("emoji", subject="Birthday 🎉 party 🎂\n", body="Party time 🎉🎂\nSee you there 👋 — bring 🍕!\n")

views("latin1-qp", subject="Crème brûlée\n", **{"from": "François Dupré <francois@example.fr>\n"},
      to="\"Doe, John\" <john@example.com>, Jane <jane@example.com>\n", cc="undisclosed-recipients:;\n",
      message_id="<latin1@example.fr>\n",
      body="Café crème brûlée \u201cquoted\u201d \u2013 price 5\u20ac.\n")

views("alternative", body="Lunch at noon?\n-- Alice\n",
      body_html="<html><body><p>Lunch at <b>noon</b>?</p><p>-- Alice</p></body></html>")
atts("alternative", [])

png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
jpg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-jpeg-bytes\xff\xd9"
views("mixed-inline-images", body="Here is the first photo:\n\nAnd the second one:\n")
put("mixed-inline-images", "absent", "body.html\n")
atts("mixed-inline-images", [("dot.png", len(png)), ("part-2.jpg", len(jpg))])
put("mixed-inline-images", "attachments/dot.png", png)
put("mixed-inline-images", "attachments/part-2.jpg", jpg)

views("html-newsletter", body=
"Weekly News & Updates\n"
"\n"
"Hello reader, café prices are <down> \u2014 \u263a\n"
"Second line\n"
"Third line\n"
"\n"
"- First item\n"
"- Second item link <https://example.com/item2>\n"
"1. one\n"
"2. two\n"
"\n"
"Visit https://example.com/ or news@example.com or top.\n"
"\n"
"Cell A Cell B\n"
"Cell C [Logo]\n"
"\n"
"  keep   this\n"
"    spacing\n"
"\n"
"Unsubscribe here <https://example.com/unsub?id=1&x=2>\n")
atts("html-newsletter", [])

inner1 = INNER1[:-2]   # the CRLF before the boundary is not content
inner2 = INNER2[:-2]
views("forwarded", body="See the forwarded messages.\n")
atts("forwarded", [("Original report.eml", len(inner1)), ("forwarded-2.eml", len(inner2))])
put("forwarded", "attachments/Original report.eml", inner1)
put("forwarded", "attachments/forwarded-2.eml", inner2)

ics = ICS
views("calendar-invite", body="You are invited to Planning.\n",
      body_html="<p>You are invited to <b>Planning</b>.</p>")
# the text/calendar alternative: its CRLF-converted text, minus the line break before "--cal-alt--"
atts("calendar-invite", [("invite.ics", len(ics) - 2), ("invite (2).ics", len(ics))])
put("calendar-invite", "attachments/invite.ics", ics[:-2])
put("calendar-invite", "attachments/invite (2).ics", ics)

sig = ("-----BEGIN PGP SIGNATURE-----\r\n\r\n"
       "iQEzBAEBCAAdFiEEfakefakefakefakefakefakefakefakeFAmWzAAAACgkQfake\r\n"
       "=abcd\r\n-----END PGP SIGNATURE-----\r\n").encode()
views("signed", body="This text is signed.\n\u2713 verified\n", body_html="<p>This text is signed.</p>")
atts("signed", [("signature.asc", len(sig))])
put("signed", "attachments/signature.asc", sig)

longname = "가" * 83 + ".pdf"
views("attachment-names", body="Several files attached.\n")
atts("attachment-names", [
    ("Übersicht-2024.pdf", 5), ("résumé.txt", 6), ("보고서.docx", 4), ("report.pdf", 10),
    ("report (2).pdf", 10), ("part-6.pdf", 12), (".._.._etc_passwd", 10), ("part-8.png", len(png)),
    ("bad_name_.txt", 3), ("part-10.bin", 3), (longname, 4), ("견적.xls", 3), ("notes.txt", 18)])
put("attachment-names", "attachments/report.pdf", b"report one")
put("attachment-names", "attachments/report (2).pdf", b"report two")
put("attachment-names", "attachments/notes.txt", b"plain attachment\r\n")

views("no-subject", subject="\n", **{"from": "nobody@example.com\n"}, to="\n", date="\n",
      headers="From: nobody@example.com\nX-Mailer: test\n", body="A body without any MIME headers.\n")
put("no-subject", "absent", "cc\nmessage-id\nbody.html\n")
put("no-subject", "date-epoch", "none\n")
atts("no-subject", [])

views("broken-headers", subject="cafébar 한국😀 end\n", **{"from": "한국어 <quoted@example.kr>\n"},
      to="Jürgen <juergen@example.de>\n", cc="안녕하세요 <mixed@example.kr>\n",
      message_id="<broken@example.com>\n", date="28 Jan 2024 13:14:15 GMT\n")
put("broken-headers", "headers.contains", "X-Raw-Latin1: Informação résumé\n")
put("broken-headers", "date-epoch", "1706447655\n")

views("bad-charsets", body="Naïve café text\n\nvalid é invalid \ufffd\ufffd end \ufffd\ufffd\n\n"
      "no charset: \u2713 is utf-8\n\nus-ascii with latin-1 é\n")

views("missing-boundary", body="Text that is only preamble.\n")
views("no-boundary-param", body="Where does this go?\n")
views("unterminated-boundary", body="First part.\n")
atts("unterminated-boundary", [("cut.bin", 9)])
put("unterminated-boundary", "attachments/cut.bin", b"hello wor")
