#!/usr/bin/python3
"""Writes tests/mime/malformed: malformed messages (messages/*.eml) and their expected views
(expected/<name>/*), in the same format as the golden data (see the top of test_mime.c).

Each shape of broken mail is written twice, with bare LF line ends (<name>-lf.eml) and with
CRLF (<name>-crlf.eml); both must give the same views.  Every expected value below is written
by hand from the message text as a mail reader shows it (the rules are in mime/mime.h: a line
that cannot be a header field ends the header block and starts the body; a part without a valid
Content-Type is text/plain), never copied from the library's output.  Run it from anywhere; it
rewrites tests/mime/malformed.
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "malformed")

# (name, message, expected views).  A view not listed is not checked, except that
# attachments.list is always checked ("" when the message must have no attachment).
CASES = [
    # A run-on header block: the text starts right after the last field.
    ("runon-top",
     "From: Ann <ann@example.com>\nSubject: Lunch\n"
     "Shall we meet at noon?\nBring the map.\n",
     {"subject": "Lunch\n", "from": "Ann <ann@example.com>\n",
      "body": "Shall we meet at noon?\nBring the map.\n",
      "headers": "From: Ann <ann@example.com>\nSubject: Lunch\n"}),
    # No header at all: the whole message is the body.
    ("no-headers",
     "Hello Bob,\nthe report is attached in spirit.\n",
     {"subject": "\n", "from": "\n", "headers": "",
      "body": "Hello Bob,\nthe report is attached in spirit.\n"}),
    # No header, and the first line looks like a sentence starting with "From ".
    ("no-headers-from-line",
     "From the desk of Ann:\nplease water the plants.\n",
     {"subject": "\n", "headers": "",
      "body": "From the desk of Ann:\nplease water the plants.\n"}),
    # An mbox envelope line before real header fields is skipped, not shown.
    ("envelope-line",
     "From ann@example.com Mon Jan  1 00:00:00 2024\nSubject: Envelope\n\nBody text.\n",
     {"subject": "Envelope\n", "body": "Body text.\n"}),
    # A run-on part header inside a multipart.
    ("runon-part",
     "From: ann@example.com\nSubject: Parts\nMIME-Version: 1.0\n"
     "Content-Type: multipart/mixed; boundary=\"zz\"\n\n"
     "--zz\nContent-Type: text/plain; charset=us-ascii\nFirst part text.\n"
     "--zz\nContent-Type: text/plain\n\nSecond part text.\n--zz--\n",
     {"subject": "Parts\n", "body": "First part text.\n\nSecond part text.\n"}),
    # A part with no header at all: it is text/plain.
    ("part-without-header",
     "Subject: Bare part\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nJust the text of the part.\n--zz--\n",
     {"subject": "Bare part\n", "body": "Just the text of the part.\n"}),
    # A part header whose first line is indented: no field to continue, so it is text.
    ("part-indented-first-line",
     "Subject: Indented\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\n  Indented text of the part.\n--zz--\n",
     {"subject": "Indented\n", "body": "  Indented text of the part.\n"}),
    # A run-on plain alternative next to a well-formed HTML one: the plain one is the body.
    ("runon-alternative",
     "Subject: Alt\nContent-Type: multipart/alternative; boundary=aa\n\n"
     "--aa\nContent-Type: text/plain; charset=utf-8\nPlain words.\n"
     "--aa\nContent-Type: text/html; charset=utf-8\n\n<p>HTML words.</p>\n--aa--\n",
     {"subject": "Alt\n", "body": "Plain words.\n", "body.html": "<p>HTML words.</p>"}),
    # A space before the colon is obsolete syntax (RFC 5322 section 4.5): still a field.
    ("space-before-colon",
     "From: ann@example.com\nSubject : Spaced\n\nThe body.\n",
     {"subject": "Spaced\n", "body": "The body.\n"}),
    # A space inside a field name: that line is not a field and starts the body.
    ("space-in-name",
     "From: ann@example.com\nX Mailer: Hand 1.0\nSubject: Lost subject\n\nThe body.\n",
     {"subject": "\n", "from": "ann@example.com\n",
      "body": "X Mailer: Hand 1.0\nSubject: Lost subject\n\nThe body.\n"}),
    # 8-bit bytes in a field name (UTF-8 here): not a field either.
    ("8bit-name",
     "From: ann@example.com\nSubject: Umlaut\nGr\u00fc\u00dfe: from Bern\nSee you.\n",
     {"subject": "Umlaut\n", "body": "Gr\u00fc\u00dfe: from Bern\nSee you.\n"}),
    # Two Content-Type fields: the last one counts (as in GMime's parser).
    ("two-content-types",
     "Subject: Twice\nContent-Type: image/png\nContent-Type: text/plain; charset=utf-8\n\n"
     "Caf\u00e9 text.\n",
     {"subject": "Twice\n", "body": "Caf\u00e9 text.\n"}),
    # A type without a subtype is text/plain; its charset parameter still counts.
    ("no-subtype",
     ("Subject: No subtype\nContent-Type: text; charset=iso-8859-1\n"
      "Content-Transfer-Encoding: 8bit\n\nNa\u00efve caf\u00e9.\n").encode("latin-1"),
     {"subject": "No subtype\n", "body": "Na\u00efve caf\u00e9.\n"}),
    # Other Content-Types that are not type/subtype: text/plain too.
    ("invalid-types",
     "Subject: Invalid types\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nContent-Type: text/\n\nSlash only.\n"
     "--zz\nContent-Type: ;charset=us-ascii\n\nNo type at all.\n"
     "--zz\nContent-Type: image\n\nNo subtype image.\n--zz--\n",
     {"subject": "Invalid types\n",
      "body": "Slash only.\n\nNo type at all.\n\nNo subtype image.\n"}),
    # An unknown but valid type is an attachment (RFC 2046: application/octet-stream), named
    # from its subtype as any nameless part.
    ("unknown-type",
     "Subject: Unknown\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nContent-Type: text/plain\n\nReadable part.\n"
     "--zz\nContent-Type: foo/bar\n\nopaque\n--zz--\n",
     {"subject": "Unknown\n", "body": "Readable part.\n",
      "attachments.list": "part-1.bar\t6\n"}),
    # Broken parameters: an unterminated quote and empty parameters.
    ("broken-params",
     "Subject: Params\nContent-Type: text/plain; ; =x; charset=\"utf-8\n\nStill text \u2713.\n",
     {"subject": "Params\n", "body": "Still text \u2713.\n"}),
    # A multipart without a boundary parameter whose parts also run on.
    ("missing-boundary-runon",
     "Subject: No boundary\nContent-Type: multipart/mixed\n\n"
     "--x1\nContent-Type: text/plain\nRescued run-on text.\n--x1--\n",
     {"subject": "No boundary\n", "body": "Rescued run-on text.\n"}),
    # A boundary that is declared but never used: the text is shown as it is.
    ("unused-boundary",
     "Subject: Unused\nContent-Type: multipart/mixed; boundary=never\n\n"
     "Text without any delimiter.\n",
     {"subject": "Unused\n", "body": "Text without any delimiter.\n"}),
    # Text only in a preamble (the multipart has no part).
    ("preamble-only",
     "Subject: Preamble\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "Words before the end.\n--zz--\n",
     {"subject": "Preamble\n", "body": "Words before the end.\n"}),
    # Text only in an epilogue (the multipart has no part).
    ("epilogue-only",
     "Subject: Epilogue\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz--\nWords after the end.\n",
     {"subject": "Epilogue\n", "body": "Words after the end.\n"}),
    # A blank last plain alternative does not hide the earlier one.
    ("blank-last-alternative",
     "Subject: Blank alt\nContent-Type: multipart/alternative; boundary=aa\n\n"
     "--aa\nContent-Type: text/plain\n\nThe real words.\n"
     "--aa\nContent-Type: text/plain\n\n   \n--aa--\n",
     {"subject": "Blank alt\n", "body": "The real words.\n"}),
    # A header block that ends the file (no line break, no body).
    ("header-ends-file",
     "From: ann@example.com\nSubject: Only a header",
     {"subject": "Only a header\n", "body": ""}),
    # A part header that ends the file.
    ("part-header-ends-file",
     "Subject: Cut\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nContent-Type: text/plain\n\nKept text.\n--zz\nContent-Type: text/plain\n",
     {"subject": "Cut\n", "body": "Kept text.\n"}),
    # A forwarded message after a repaired part keeps its exact bytes.
    ("runon-then-forward",
     "Subject: Fwd\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nContent-Type: text/plain\nSee below.\n"
     "--zz\nContent-Type: message/rfc822\n\n"
     "From: carl@example.com\nSubject: Inner\n\nInner text.\n--zz--\n",
     {"subject": "Fwd\n", "body": "See below.\n",
      "attachments.list": None,  # the size depends on the line ends: checked below
      "attachments/Inner.eml": "From: carl@example.com\nSubject: Inner\n\nInner text."}),
    # A run-on part after a forwarded message.
    ("forward-then-runon",
     "Subject: Fwd first\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nContent-Type: message/rfc822\n\n"
     "From: carl@example.com\nSubject: Inner\n\nInner text.\n"
     "--zz\nContent-Type: text/plain\nMy comments after it.\n--zz--\n",
     {"subject": "Fwd first\n", "body": "My comments after it.\n",
      "attachments.list": None,
      "attachments/Inner.eml": "From: carl@example.com\nSubject: Inner\n\nInner text."}),
    # Issue 21, item 3: Apple Watch mail — the text/watch-html alternative is markup, not the
    # plain text; the plain alternative is the body, the HTML one is body.html.
    ("alternative-watch-html",
     "From: ann@example.com\nSubject: Watch\nMIME-Version: 1.0\n"
     "Content-Type: multipart/alternative; boundary=\"Apple-Mail=_1\"\n\n"
     "--Apple-Mail=_1\nContent-Type: text/plain; charset=us-ascii\n\nSee you at six.\n"
     "--Apple-Mail=_1\nContent-Type: text/watch-html; charset=us-ascii\n\n"
     "<b>See you at six.</b>\n"
     "--Apple-Mail=_1\nContent-Type: text/html; charset=us-ascii\n\n"
     "<html><body><p>See you at <i>six</i>.</p></body></html>\n"
     "--Apple-Mail=_1--\n",
     {"subject": "Watch\n", "body": "See you at six.\n",
      "body.html": "<html><body><p>See you at <i>six</i>.</p></body></html>"}),
    # The same with text/enriched, as in the example of RFC 2046 section 5.1.4.
    ("alternative-enriched",
     "From: ann@example.com\nSubject: Enriched\nMIME-Version: 1.0\n"
     "Content-Type: multipart/alternative; boundary=boundary42\n\n"
     "--boundary42\nContent-Type: text/plain; charset=us-ascii\n\n"
     "... plain text version of message goes here ...\n"
     "--boundary42\nContent-Type: text/enriched\n\n"
     "<bold>... RFC 1896 text/enriched version of same message goes here ...</bold>\n"
     "--boundary42--\n",
     {"subject": "Enriched\n", "body": "... plain text version of message goes here ...\n"}),
    # With no plain alternative, the HTML one still wins over text/enriched (rendered).
    ("alternative-enriched-html",
     "From: ann@example.com\nSubject: No plain\nMIME-Version: 1.0\n"
     "Content-Type: multipart/alternative; boundary=b\n\n"
     "--b\nContent-Type: text/enriched\n\n<bold>Rich words</bold>\n"
     "--b\nContent-Type: text/html\n\n<p>HTML words</p>\n--b--\n",
     {"subject": "No plain\n", "body": "HTML words\n", "body.html": "<p>HTML words</p>"}),
    # Only text/enriched on offer: it is the body, as written.
    ("alternative-enriched-only",
     "From: ann@example.com\nSubject: Only rich\nMIME-Version: 1.0\n"
     "Content-Type: multipart/alternative; boundary=b\n\n"
     "--b\nContent-Type: text/enriched\n\n<bold>Rich words</bold>\n"
     "--b\nContent-Type: image/png; name=x.png\n\nPNG\n--b--\n",
     {"subject": "Only rich\n", "body": "<bold>Rich words</bold>\n",
      "attachments.list": "x.png\t3\n"}),
    # Issue 21, item 4: a delivery report whose forwarded message has no header block: the
    # .eml holds the part's body as it is (here: the text and the line break before the
    # delimiter).
    ("forward-without-header",
     "From: MAILER-DAEMON@example.com\nSubject: Undelivered Mail Returned to Sender\n"
     "MIME-Version: 1.0\n"
     "Content-Type: multipart/report; report-type=delivery-status; boundary=\"dsn\"\n\n"
     "--dsn\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
     "--dsn\nContent-Type: message/delivery-status\n\n"
     "Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; bob@example.org\n"
     "Action: failed\nStatus: 5.1.1\n\n"
     "--dsn\nContent-Type: message/rfc822\n\n[original message goes here]\n\n--dsn--\n",
     {"subject": "Undelivered Mail Returned to Sender\n",
      "body": "Your message could not be delivered.\n",
      "attachments.list": None,
      "attachments/part-1.txt": "Reporting-MTA: dns; mx.example.com\n\n"
                                "Final-Recipient: rfc822; bob@example.org\n"
                                "Action: failed\nStatus: 5.1.1\n",
      "attachments/forwarded-1.eml": "[original message goes here]\n"}),
    # The same at the end of the input with no line break after the closing delimiter, and a
    # second forwarded part that is empty.
    ("forward-without-header-at-end",
     "Subject: Two\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nContent-Type: text/plain\n\nSee both.\n"
     "--zz\nContent-Type: message/rfc822\n\n"
     "--zz\nContent-Type: message/rfc822\n\nno header, just text\n--zz--",
     {"subject": "Two\n", "body": "See both.\n",
      "attachments.list": None,
      "attachments/forwarded-1.eml": "",
      "attachments/forwarded-2.eml": "no header, just text"}),
    # Issue 21, item 5: a stray mbox "From " line after other fields is skipped, and the
    # fields after it are read (From, To, Subject, Message-ID).
    ("envelope-line-inside",
     "Received: from mx.example.com by mail.example.org; Mon, 1 Jan 2024 00:00:00 +0000\n"
     "From ann@example.com Mon Jan  1 00:00:00 2024\n"
     "From: Ann <ann@example.com>\nTo: bob@example.org\nSubject: Stray envelope\n"
     "Message-ID: <stray@example.com>\n\nThe body.\n",
     {"subject": "Stray envelope\n", "from": "Ann <ann@example.com>\n",
      "to": "bob@example.org\n", "message-id": "<stray@example.com>\n",
      "body": "The body.\n",
      "headers": "Received: from mx.example.com by mail.example.org; "
                 "Mon, 1 Jan 2024 00:00:00 +0000\n"
                 "From: Ann <ann@example.com>\nTo: bob@example.org\nSubject: Stray envelope\n"
                 "Message-ID: <stray@example.com>\n"}),
    # The same in a part's header block.
    ("envelope-line-in-part",
     "Subject: Part envelope\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nContent-Type: text/plain\n\nFirst.\n"
     "--zz\nContent-Disposition: attachment; filename=a.txt\n"
     "From ann@example.com Mon Jan  1 00:00:00 2024\nContent-Type: text/plain\n\n"
     "Attached.\n--zz--\n",
     {"subject": "Part envelope\n", "body": "First.\n",
      "attachments.list": None, "attachments/a.txt": "Attached."}),
    # A "From " line that is the last line of the header block is the body's first line.
    ("envelope-line-last",
     "From: ann@example.com\nSubject: Last\nFrom the desk of Ann\n\nPlease water the plants.\n",
     {"subject": "Last\n", "from": "ann@example.com\n",
      "body": "From the desk of Ann\n\nPlease water the plants.\n"}),
    # Issue 21, item 2: the message ends at the closing delimiter without a line break; the
    # line break before the delimiter belongs to it, not to the last part.
    ("closing-delimiter-ends-file",
     "From: x@example.com\nSubject: t\nMIME-Version: 1.0\n"
     "Content-Type: multipart/mixed; boundary=b\n\n"
     "--b\nContent-Type: text/plain\n\nbody\n\n"
     "--b\nContent-Type: application/octet-stream; name=a.bin\n\nDATA\n--b--",
     {"subject": "t\n", "body": "body\n",
      "attachments.list": None, "attachments/a.bin": "DATA"}),
    # Issue 21, item 7: base64 whose last group lacks its padding keeps the bytes it carries
    # ("ZGVmZw" is "defg", "aGk" is "hi"); a single character left over carries none.
    ("truncated-base64",
     "Subject: Truncated\nContent-Type: multipart/mixed; boundary=b\n\n"
     "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGk\n"
     "--b\nContent-Type: application/octet-stream; name=two.bin\n"
     "Content-Transfer-Encoding: base64\n\nYWJj\nZGVmZw\n"
     "--b\nContent-Type: application/octet-stream; name=one.bin\n"
     "Content-Transfer-Encoding: base64\n\nYWJjZ\n--b--\n",
     {"subject": "Truncated\n", "body": "hi\n",
      "attachments.list": "two.bin\t7\none.bin\t3\n",
      "attachments/two.bin": "abcdefg", "attachments/one.bin": "abc"}),
    # Issue 21, item 1: adjacent base64 encoded-words of one charset, the first ending in '='
    # padding: each word decodes on its own, none is lost.
    ("adjacent-base64-words",
     "From: x@example.com\nSubject: =?UTF-8?B?YWI=?= =?UTF-8?B?Y2Q=?=\n\nBody.\n",
     {"subject": "abcd\n", "from": "x@example.com\n", "body": "Body.\n",
      "headers": "From: x@example.com\nSubject: abcd\n"}),
    # The real cases: a subject and a display name in three and two words, a GB2312 subject in
    # two, a To name whose words are in Q encoding (comma inside the quotes).
    ("adjacent-base64-words-real",
     "From: =?UTF-8?B?TXlTdXJ2ZXk=?=\n =?UTF-8?B?LmNvbSAmIENhcm9sIEFkYW1z?= <survey@example.com>\n"
     "To: \"=?UTF-8?Q?Adams=2C?= =?UTF-8?Q?_Carol?=\" <carol@example.com>\n"
     "Cc: =?GB2312?B?xOO6ww==?= =?GB2312?B?ysC95w==?= <ni@example.cn>\n"
     "Subject: =?UTF-8?B?TXlTdXJ2ZXk=?= =?UTF-8?B?LmNvbTogWW91IGhhdmUgYSBzdXJ2ZXkgd2FpdGluZyEg?=\n"
     " =?UTF-8?B?OTExMjMxMDU=?=\n"
     "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nTake it.\n",
     {"subject": "MySurvey.com: You have a survey waiting! 91123105\n",
      "from": "MySurvey.com & Carol Adams <survey@example.com>\n",
      "to": "\"Adams, Carol\" <carol@example.com>\n",
      "cc": "\u4f60\u597d\u4e16\u754c <ni@example.cn>\n",
      "body": "Take it.\n"}),
    # A character split across two words (base64 and Q) comes out whole; words in different
    # charsets each decode in their own; white space between words is dropped, not around.
    ("split-character-words",
     "From: x@example.com\n"
     "Subject: Caf=?UTF-8?B?ww==?= =?UTF-8?B?qQ==?= and =?UTF-8?Q?na=C3?= =?UTF-8?Q?=AFve?=\n"
     "  =?ISO-8859-1?Q?_cr=E8me?= =?UTF-8?Q?_br=C3=BBl=C3=A9e?= end\n\nBody.\n",
     {"subject": "Caf\u00e9 and na\u00efve cr\u00e8me br\u00fbl\u00e9e end\n",
      "body": "Body.\n"}),
    # Issue 21, item 6: ISO-2022-JP with the vendor rows Japanese mailers send under the plain
    # label (CP50220/CP50221): NEC row 13 (\u2116, circled digits, \u3231), an NEC-selected IBM
    # kanji (row 89), half-width katakana (ESC ( I); row 9 is in no table: U+FFFD, never "?",
    # and the text after it is still read as kanji.
    ("iso2022jp-vendor",
     "From: =?ISO-2022-JP?B?GyRCLWolRiU5JUgbKEI=?= <info@example.jp>\n"
     "Subject: =?ISO-2022-JP?B?GyRCMnE1RBsoQg==?= =?ISO-2022-JP?B?GyRCLWItIRsoQg==?=\n"
     "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\n"
     "Content-Transfer-Encoding: 7bit\n\n"
     "\x1b$B-b-!-\"2q5D\x1b(B\n"
     "\x1b$B-j\x1b(B \x1b$By!\x1b(B \x1b(I12\x1b(B\n"
     "\x1b$B)!2q\x1b(B end\n",
     {"subject": "\u4f1a\u8b70\u2116\u2460\n",
      "from": "\u3231\u30c6\u30b9\u30c8 <info@example.jp>\n",
      "body": "\u2116\u2460\u2461\u4f1a\u8b70\n\u3231 \u7e8a \uff71\uff72\n"
              "\ufffd\u4f1a end\n"}),
    # A line that starts with the boundary but has more after it is no delimiter (RFC 2046:
    # only blanks may follow), also at the start of a forwarded message without a header.
    ("forward-boundary-prefix",
     "Subject: Prefix\nContent-Type: multipart/mixed; boundary=zz\n\n"
     "--zz\nContent-Type: text/plain\n\nSee below.\n"
     "--zz\nContent-Type: message/rfc822\n\n--zz-not-a-delimiter\nstill the forward\n"
     "--zz--\n",
     {"subject": "Prefix\n", "body": "See below.\n",
      "attachments.list": None,
      "attachments/forwarded-1.eml": "--zz-not-a-delimiter\nstill the forward"}),
]


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(os.path.join(ROOT, "messages"))
    for name, message, views in CASES:
        raw = message if isinstance(message, bytes) else message.encode("utf-8")
        for variant, data in (("lf", raw), ("crlf", crlf(raw))):
            base = "%s-%s" % (name, variant)
            with open(os.path.join(ROOT, "messages", base + ".eml"), "wb") as f:
                f.write(data)
            edir = os.path.join(ROOT, "expected", base)
            os.makedirs(edir)
            views = dict(views)
            views.setdefault("attachments.list", "")
            for view, text in views.items():
                if view.startswith("attachments/"):
                    # an attachment holds input bytes: its line ends are the message's
                    b = text.encode("utf-8")
                    b = crlf(b) if variant == "crlf" else b
                    os.makedirs(os.path.join(edir, "attachments"), exist_ok=True)
                    with open(os.path.join(edir, view), "wb") as f:
                        f.write(b)
                    continue
                if text is None:
                    # list of the attachments files above, with their sizes, in the order
                    # they are given (MIME order)
                    names = [v for v in views if v.startswith("attachments/")]
                    text = ""
                    for v in names:
                        b = views[v].encode("utf-8")
                        size = len(crlf(b) if variant == "crlf" else b)
                        text += "%s\t%d\n" % (v.split("/", 1)[1], size)
                with open(os.path.join(edir, view), "wb") as f:
                    f.write(text.encode("utf-8"))


main()
