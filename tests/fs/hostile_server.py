"""A small, deliberately misbehaving IMAP server on loopback, for mounting imapfs against it.

tests/imap/fake_server.py plays one fixed transcript on one connection, which suits the client
library tests.  A mounted imapfs instead opens several pooled connections, reconnects after
failures and issues commands in an order the test does not control, so the robustness tests
need a server that really answers commands.  HostileServer is that server: it serves a
mailbox model (folders, UIDVALIDITY, messages) over implicit TLS (or plaintext with STARTTLS),
and every answer can be replaced by a test-supplied hook that sends hostile bytes instead.

    srv = HostileServer(certfile, keyfile, folders={'INBOX': {1: b'...'}})
    srv.list_lines = [b'* LIST () "." "a..b"\\r\\n', ...]   # replace the LIST answer
    srv.body_hook = lambda conn, uid, tag: b'...'            # replace a whole-body answer
    srv.pieces_hook = lambda conn, uid, tag, items: None     # replace a piece answer
    srv.close()

With fetch = parts (imapfs's default) a mount asks for pieces of messages: BODYSTRUCTURE,
BODY.PEEK[HEADER], BODY.PEEK[s.MIME], BODY.PEEK[s] (and <offset.length> partials), and where
extra_caps offers BINARY, BINARY.PEEK[s] and BINARY.SIZE[s].  The server answers them from the
message's own bytes, numbered as RFC 3501 6.4.5 says (piece_answer); a test can replace the
BODYSTRUCTURE (structures) or any piece answer (pieces_hook).  body_hook sees only the fetch of
a whole message (BODY.PEEK[]).

Everything any client sent is recorded in .received (bytes, all connections, in arrival order;
inflated when compressed) so a test can assert that no credential ever reached the server.

With compress=True (default: IMAPFS_TEST_COMPRESS=1 in the environment, as the harness's
Dovecot) it offers COMPRESS=DEFLATE (RFC 4978) after the login and serves it: every answer,
hooks' included, is then deflated and sync-flushed, unless a hook calls conn.send_raw (a corrupt
stream).  .compressed counts the connections that switched it on.  Loopback only; stdlib only.
"""
import binascii
import email.parser
import email.policy
import email.utils
import os
import quopri
import re
import socket
import ssl
import threading
import zlib

USER = 'mike'
PASSWORD = 'hostile-S3cret-pw'

CAPS_PRE = b'IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+'
CAPS_POST = b'IMAP4rev1 LITERAL+'


def quote(name):
    """An IMAP quoted string for name (bytes)."""
    return b'"' + name.replace(b'\\', b'\\\\').replace(b'"', b'\\"') + b'"'


# ---- pieces of a message: sections, BODYSTRUCTURE, BINARY (RFC 3501 6.4.5 and 7.4.2, RFC 3516)


def is_whole_fetch(items):
    """Is this FETCH's item list the whole message alone (BODY.PEEK[], no partial)?  That is
    the fetch body_hook answers; every other body item is a piece (_fetch_pieces)."""
    return re.fullmatch(rb'\(?\s*(?:UID\s+)?BODY\.PEEK\[\]\s*\)?', items.strip(), re.I) \
        is not None


def split_message(raw):
    """(header, body) of raw: the header with its blank line, as BODY[HEADER] and
    BODY[s.MIME] give it (a part without a blank line is all header)."""
    if raw.startswith(b'\r\n'):
        return b'\r\n', raw[2:]
    i = raw.find(b'\r\n\r\n')
    if i < 0:
        return raw, b''
    return raw[:i + 4], raw[i + 4:]


def split_multipart(body, boundary):
    """The body parts of a multipart body (RFC 2046 5.1.1): the CRLF before a delimiter
    belongs to the delimiter; preamble and epilogue are dropped."""
    delim = re.compile(rb'(?:^|\r\n)--' + re.escape(boundary) + rb'(--)?[ \t]*(?:\r\n|$)')
    out, start = [], None
    for m in delim.finditer(body):
        if start is not None:
            out.append(body[start:m.start()])
        if m.group(1):
            return out
        start = m.end()
    if start is not None:
        out.append(body[start:])   # no close delimiter: the rest is the last part
    return out


def _fields(header):
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(header)


def _child(section, i):
    return '%s.%d' % (section, i) if section else str(i)


class Part:
    """One part of a message as a server numbers it.  kind: 'multipart', 'message'
    (message/rfc822: .inner is the encapsulated message's body part) or 'leaf'.  header: the
    part's MIME header (the message header for a top-level part), body: its bytes."""

    def __init__(self, kind, section, header, body):
        self.kind, self.section, self.header, self.body = kind, section, header, body
        self.fields = _fields(header)
        self.children = []
        self.inner = None
        self.inner_header = None

    @property
    def encoding(self):
        return (self.fields.get('Content-Transfer-Encoding') or '7bit').strip().lower()


def parse_body(header, body, base):
    """The body part of a message (top level: base ''; a message/rfc822 part s: base s): a
    multipart shares base (its children base.1, ...), a single part is base.1."""
    return _parse(header, body, base, True)


def _parse(header, body, section, is_body):
    f = _fields(header)
    ctype = f.get_content_type()
    boundary = f.get_param('boundary') if f.get_content_maintype() == 'multipart' else None
    if isinstance(boundary, tuple):
        boundary = email.utils.collapse_rfc2231_value(boundary)
    if boundary:
        p = Part('multipart', section, header, body)
        for i, chunk in enumerate(split_multipart(body, boundary.encode('utf-8',
                                                                        'surrogateescape')), 1):
            h, b = split_message(chunk)
            p.children.append(_parse(h, b, _child(section, i), False))
        return p
    if is_body:
        section = _child(section, 1)
    if ctype == 'message/rfc822':
        p = Part('message', section, header, body)
        ih, ib = split_message(body)
        p.inner_header = ih
        p.inner = parse_body(ih, ib, section)
        return p
    return Part('leaf', section, header, body)


def sections(raw):
    """{section text: bytes} of message raw, for BODY[...] (RFC 3501 6.4.5): '' the whole,
    HEADER, TEXT, each part's s and s.MIME, a message part's s.HEADER and s.TEXT."""
    header, body = split_message(raw)
    out = {'': raw, 'HEADER': header, 'TEXT': body}
    root = parse_body(header, body, '')

    def walk(p, top):
        if not top:
            out.setdefault(p.section + '.MIME', p.header)
        if p.kind == 'message':
            out[p.section] = p.body
            out[p.section + '.HEADER'] = p.inner_header
            out[p.section + '.TEXT'] = split_message(p.body)[1]
            walk(p.inner, True)
        elif p.kind == 'multipart':
            out.setdefault(p.section, p.body)
            for c in p.children:
                walk(c, False)
        else:
            out.setdefault(p.section, p.body)
    walk(root, True)
    return out, root


def leaves(p):
    """Every part of tree p, by section (a message part before its multipart body)."""
    out = {}

    def walk(q):
        out.setdefault(q.section, q)
        for c in q.children:
            walk(c)
        if q.inner is not None:
            walk(q.inner)
    walk(p)
    return out


def decode_part(part):
    """BINARY[s] of a part (RFC 3516): its body with the transfer encoding undone; None when
    the encoding is one the server does not know (NO [UNKNOWN-CTE])."""
    enc = part.encoding
    if enc in ('7bit', '8bit', 'binary'):
        return part.body
    if enc == 'base64':
        return binascii.a2b_base64(part.body)
    if enc == 'quoted-printable':
        return quopri.decodestring(part.body)
    return None


def _istring(v):
    """An IMAP string: quoted, or a literal when it holds CR, LF, NUL or 8-bit bytes."""
    if isinstance(v, str):
        v = v.encode('utf-8', 'surrogateescape')
    if re.search(rb'[\r\n\x00\x80-\xff]', v):
        return b'{%d}\r\n' % len(v) + v
    return quote(v)


def _nstring(v):
    return b'NIL' if v is None else _istring(v)


def _params(fields, header='content-type'):
    ps = fields.get_params(header=header) or []
    pairs = []
    for k, v in ps[1:]:
        if isinstance(v, tuple):
            v = email.utils.collapse_rfc2231_value(v)
        pairs.append(_istring(k.upper()) + b' ' + _istring(v))
    return b'(' + b' '.join(pairs) + b')' if pairs else b'NIL'


def bodystructure(p):
    """What a careful server answers as BODYSTRUCTURE for part tree p (RFC 3501 7.4.2), with
    the extension data; a message part's envelope is all NIL (imapfs keeps none)."""
    f = p.fields
    if p.kind == 'multipart':
        return (b'(' + b''.join(bodystructure(c) for c in p.children) + b' ' +
                _istring(f.get_content_subtype().upper()) + b' ' + _params(f) +
                b' NIL NIL NIL)')
    out = [_istring(f.get_content_maintype().upper()), _istring(f.get_content_subtype().upper()),
           _params(f), _nstring(f.get('Content-ID')), _nstring(f.get('Content-Description')),
           _istring(p.encoding.upper()), b'%d' % len(p.body)]
    lines = b'%d' % p.body.count(b'\n')
    if p.kind == 'message':
        out += [b'(' + b' '.join([b'NIL'] * 10) + b')', bodystructure(p.inner), lines]
    elif f.get_content_maintype() == 'text':
        out.append(lines)
    disp = f.get_content_disposition()
    out += [b'NIL',
            b'(' + _istring(disp.upper()) + b' ' + _params(f, 'content-disposition') + b')'
            if disp else b'NIL', b'NIL', b'NIL']
    return b'(' + b' '.join(out) + b')'


ITEM = re.compile(rb'BODYSTRUCTURE|UID|BINARY\.SIZE\[([^\]]*)\]|'
                  rb'(BODY|BINARY)\.PEEK\[([^\]]*)\](?:<(\d+)\.(\d+)>)?', re.I)


class Closed(Exception):
    """The hook asked to drop the connection now."""


class Conn:
    """One client connection (server side)."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.buf = bytearray()
        self.mailbox = None
        self.authed = False
        self.pending = False  # IDLE: the examined folder changed (HostileServer.push)
        self.deflater = None  # COMPRESS=DEFLATE is on: both set
        self.inflater = None

    def send(self, data):
        if self.deflater is not None:
            data = self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def send_raw(self, data):
        """Bytes as they are, past the compressor (a hook's corrupt stream)."""
        self.sock.sendall(data)

    def start_compress(self):
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)
        # whatever the client sent after its COMPRESS line is compressed already
        pending, self.buf = bytes(self.buf), bytearray()
        self.buf += self.inflater.decompress(pending)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        if self.inflater is not None:
            data = self.inflater.decompress(data)
        with self.server.lock:
            self.server.received += data
            if not isinstance(self.sock, ssl.SSLSocket):
                self.server.received_plain += data
        self.buf += data

    def line_waiting(self, seconds):
        """Has the client sent (or does it send within seconds) another whole line?"""
        if b'\r\n' in self.buf:
            return True
        old = self.sock.gettimeout()
        self.sock.settimeout(seconds)
        try:
            while b'\r\n' not in self.buf:
                self._fill()
            return True
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        finally:
            self.sock.settimeout(old)

    def readline(self):
        """One command line; a literal {n} or {n+} at the end is read and spliced in."""
        line = bytearray()
        while True:
            while b'\r\n' not in self.buf:
                self._fill()
            i = self.buf.index(b'\r\n')
            part = bytes(self.buf[:i])
            del self.buf[:i + 2]
            line += part
            m = re.search(rb'\{(\d+)(\+?)\}$', part)
            if not m:
                return bytes(line)
            n = int(m.group(1))
            if not m.group(2):
                self.send(b'+ go ahead\r\n')
            while len(self.buf) < n:
                self._fill()
            line += b'\r\n' + bytes(self.buf[:n])
            del self.buf[:n]


def parse_astring(s):
    """The first astring of s (bytes): quoted, literal (as spliced by readline) or atom."""
    s = s.lstrip(b' ')
    if s.startswith(b'"'):
        out = bytearray()
        i = 1
        while i < len(s) and s[i:i + 1] != b'"':
            if s[i:i + 1] == b'\\':
                i += 1
            out += s[i:i + 1]
            i += 1
        return bytes(out)
    m = re.match(rb'\{(\d+)\+?\}\r\n', s)
    if m:
        n = int(m.group(1))
        return s[m.end():m.end() + n]
    return s.split(b' ', 1)[0]


class HostileServer:
    """See the module docstring.  folders: {raw_name (str or bytes): {uid: message bytes}}."""

    def __init__(self, certfile, keyfile, folders=None, tls='imaps', uidvalidity=7,
                 compress=None):
        if compress is None:
            compress = os.environ.get('IMAPFS_TEST_COMPRESS', '') not in ('', '0')
        self.compress = bool(compress)
        self.compressed = 0      # connections that switched COMPRESS=DEFLATE on
        self.tls = tls                    # 'imaps' | 'starttls'
        self.lock = threading.Lock()
        self.received = bytearray()
        self.errors = []
        self.folders = {}
        for name, msgs in (folders or {'INBOX': {}}).items():
            raw = name.encode() if isinstance(name, str) else name
            self.folders[raw] = dict(msgs)
        self.uidvalidity = {}    # raw name -> UIDVALIDITY, when not default_uidvalidity
        self.default_uidvalidity = uidvalidity
        self.sizes = {}          # (folder, uid) -> RFC822.SIZE to report instead of the truth
        self.delimiter = b'/'
        self.list_lines = None   # bytes lines replacing the LIST answer's untagged part
        self.quota_hook = None   # (conn, tag, rest) -> the whole answer to GETQUOTAROOT
                                 # (offer it with extra_caps = b' QUOTA'); None: BAD
        self.body_hook = None    # fn(conn, uid, tag) -> bytes answer (untagged + tagged) or None
        self.search_hook = None  # fn(conn, tag, criteria) -> bytes answer to a UID SEARCH or None
        # Pieces (every body FETCH but the whole message's, see is_whole_fetch): answered
        # from the message's bytes as a careful server does (piece_answer), unless
        # pieces_hook(conn, uid, tag, items) returns bytes (the same rules as body_hook's
        # answer; it may also raise Closed).  structures[(folder, uid)]: the BODYSTRUCTURE
        # text to send instead of the true one (a broken server's).  BINARY items are
        # served when extra_caps offers BINARY; literal8: BINARY[] answers as ~{n}.
        self.pieces_hook = None
        self.structures = {}
        # The server's message ids (Gmail's X-GM-EXT-1, OBJECTID: offer either in extra_caps):
        # identities[(folder, uid)] = (id, thread or None, labels: a list of bytes as sent
        # in X-GM-LABELS, e.g. [b'"\\\\Inbox"', b'Work'], or None).  The attribute FETCH
        # answers X-GM-MSGID/X-GM-THRID/X-GM-LABELS or EMAILID/THREADID when asked.
        self.identities = {}
        self.literal8 = False
        # Answer a command pipelined after an EXAMINE before the EXAMINE itself, still in the
        # mailbox examined before (or none): what RFC 3501 5.5 forbids.
        self.examine_late = False
        self.late_answers = 0    # commands answered before their EXAMINE (examine_late)
        self.greeting = b'* OK [CAPABILITY ' + CAPS_PRE + (
            b' STARTTLS' if tls == 'starttls' else b'') + b'] hostile ready\r\n'
        self.offer_starttls = True   # with tls='starttls': advertise STARTTLS
        self.starttls_answer = None  # fn(conn, tag) -> bytes answering STARTTLS instead of OK
        self.starttls_continue = False  # after starttls_answer: do the handshake and go on
        self.received_plain = bytearray()  # what arrived before TLS was up (STARTTLS mode)
        self.max_logins = None   # logged-in connections at most; one more gets NO [LIMIT]
        self.limit_refusals = 0  # logins refused so far for max_logins
        self.extra_caps = b''    # e.g. b' IDLE' (b' IDLE NOTIFY'): offered after login, served
        self.idling = set()      # connections in IDLE now
        self.unreported = set()  # folders pushed while no connection idled in them
        self.connections = 0
        self.commands = []       # (connection number, command line without literal data)
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(certfile, keyfile)
        self._socks = set()
        self._conns = set()      # Conn objects being served
        self._closed = False
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(('127.0.0.1', 0))
        self._lsock.listen(16)
        self.host = '127.0.0.1'
        self.port = self._lsock.getsockname()[1]
        self._threads = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    # -- life cycle ---------------------------------------------------------------------------

    def close(self):
        with self.lock:
            self._closed = True
            socks = list(self._socks)
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self._accept.join(5)
        for t in list(self._threads):
            t.join(5)

    def active(self):
        with self.lock:
            return len(self._socks)

    def _accept_loop(self):
        while True:
            try:
                sock, _ = self._lsock.accept()
            except OSError:
                return
            with self.lock:
                if self._closed:
                    sock.close()
                    return
                self.connections += 1
                n = self.connections
                self._socks.add(sock)
            t = threading.Thread(target=self._serve, args=(sock, n), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, raw_sock, n):
        sock = raw_sock
        conn = None
        raw_sock.settimeout(30)
        try:
            if self.tls == 'imaps':
                sock = self._ctx.wrap_socket(raw_sock, server_side=True)
            conn = Conn(self, sock)
            conn.number = n
            with self.lock:
                self._conns.add(conn)
            conn.send(self.greeting)
            while True:
                line = conn.readline()
                self._log_command(n, line)
                if self.examine_late and self._is_examine(line) and conn.line_waiting(0.5):
                    later = conn.readline()
                    self._log_command(n, later)
                    with self.lock:
                        self.late_answers += 1
                    if not self._command(conn, later):
                        return
                if not self._command(conn, line):
                    return
        except (EOFError, Closed, OSError, ssl.SSLError):
            pass
        except Exception as e:  # a bug in the test server: make it visible
            self.errors.append(repr(e))
        finally:
            with self.lock:
                self._socks.discard(raw_sock)
                self._conns.discard(conn)
            for s in {sock, conn.sock if conn is not None else sock}:
                try:
                    s.close()
                except OSError:
                    pass

    def _log_command(self, n, line):
        shown = re.sub(rb'\{\d+\+?\}\r\n.*', b'{...}', line, flags=re.S)
        with self.lock:
            self.commands.append((n, shown))

    @staticmethod
    def _is_examine(line):
        parts = line.split(b' ', 2)
        return len(parts) > 1 and parts[1].upper() == b'EXAMINE'

    # -- commands -----------------------------------------------------------------------------

    def _caps_post(self):
        return CAPS_POST + (b' COMPRESS=DEFLATE' if self.compress else b'') + self.extra_caps

    def _command(self, conn, line):
        parts = line.split(b' ', 2)
        tag = parts[0]
        cmd = parts[1].upper() if len(parts) > 1 else b''
        rest = parts[2] if len(parts) > 2 else b''
        if cmd == b'UID' and rest:
            sub, _, rest = rest.partition(b' ')
            cmd = b'UID ' + sub.upper()
        if cmd == b'CAPABILITY':
            caps = self._caps_post() if conn.authed else (
                CAPS_PRE + (b' STARTTLS' if self.tls == 'starttls' and self.offer_starttls
                            else b''))
            conn.send(b'* CAPABILITY ' + caps + b'\r\n' + tag + b' OK done\r\n')
        elif cmd == b'STARTTLS':
            if self.starttls_answer is not None:
                conn.send(self.starttls_answer(conn, tag))
                if not self.starttls_continue:
                    return False
            else:
                conn.send(tag + b' OK begin TLS\r\n')
            conn.sock = self._ctx.wrap_socket(conn.sock, server_side=True)
        elif cmd in (b'AUTHENTICATE', b'LOGIN') and self._over_limit():
            conn.send(tag + b' NO [LIMIT] Maximum number of connections from user+IP '
                      b'exceeded\r\n')
        elif cmd in (b'AUTHENTICATE', b'LOGIN'):
            conn.authed = True
            conn.send(tag + b' OK [CAPABILITY ' + self._caps_post() + b'] logged in\r\n')
        elif cmd == b'COMPRESS' and self.compress and conn.authed and conn.deflater is None \
                and rest.upper() == b'DEFLATE':
            conn.send(tag + b' OK DEFLATE active\r\n')
            conn.start_compress()
            with self.lock:
                self.compressed += 1
        elif cmd == b'LIST':
            conn.send(b''.join(self._list_lines()) + tag + b' OK LIST done\r\n')
        elif cmd == b'EXAMINE':
            name = parse_astring(rest)
            if name not in self.folders:
                conn.send(tag + b' NO [NONEXISTENT] no such mailbox\r\n')
            else:
                conn.mailbox = name
                msgs = self.folders[name]
                conn.send(b'* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n'
                          b'* OK [UIDNEXT %d] ok\r\n%s OK [READ-ONLY] done\r\n' % (
                              len(msgs), self.uidvalidity.get(name, self.default_uidvalidity),
                              max(msgs, default=0) + 1, tag))
        elif cmd == b'UID SEARCH' and self.search_hook is not None and \
                self.search_hook(conn, tag, rest) is not None:
            conn.send(self.search_hook(conn, tag, rest))
        elif cmd == b'UID SEARCH':
            uids = sorted(self.folders.get(conn.mailbox, {}))
            conn.send(b'* SEARCH' + b''.join(b' %d' % u for u in uids) + b'\r\n' +
                      tag + b' OK done\r\n')
        elif cmd == b'UID FETCH':
            self._fetch(conn, tag, rest)
        elif cmd == b'IDLE' and b'IDLE' in self.extra_caps.split():
            self._idle(conn, tag)
        elif cmd == b'NOTIFY' and b'NOTIFY' in self.extra_caps.split():
            conn.send(tag + b' OK NOTIFY done\r\n')   # accepted; pushes come only as EXISTS
        elif cmd == b'GETQUOTAROOT' and self.quota_hook is not None:
            conn.send(self.quota_hook(conn, tag, rest))
        elif cmd == b'NOOP':
            conn.send(tag + b' OK done\r\n')
        elif cmd == b'LOGOUT':
            conn.send(b'* BYE bye\r\n' + tag + b' OK done\r\n')
            return False
        else:
            conn.send(tag + b' BAD unknown command\r\n')
        return True

    def _over_limit(self):
        with self.lock:
            if self.max_logins is None:
                return False
            authed = sum(1 for c in self._conns if c.authed)
            if authed >= self.max_logins:
                self.limit_refusals += 1
                return True
            return False

    def push(self, name):
        """Tell every connection idling in folder name (str or bytes) that it changed: it
        gets an untagged EXISTS with the folder's message count.  With none idling there yet
        (a test pushes right after the client sent IDLE, before this server's thread for it
        got to _idle), the next IDLE in that folder is told at once, as a server reports
        changes made while a client was not idling."""
        raw = name.encode() if isinstance(name, str) else name
        with self.lock:
            told = False
            for c in self.idling:
                if c.mailbox == raw:
                    c.pending = True
                    told = True
            if not told:
                self.unreported.add(raw)

    def _idle(self, conn, tag):
        # Only this connection's thread touches its socket: it looks for pushes between
        # short waits for DONE (the test server may poll; the client must not).
        conn.send(b'+ idling\r\n')
        with self.lock:
            self.idling.add(conn)
            if conn.mailbox in self.unreported:
                self.unreported.discard(conn.mailbox)
                conn.pending = True
        try:
            while not conn.line_waiting(0.05):
                with self.lock:
                    pending, conn.pending = conn.pending, False
                    count = len(self.folders.get(conn.mailbox, {}))
                if pending:
                    conn.send(b'* %d EXISTS\r\n' % count)
            done = conn.readline()
        finally:
            with self.lock:
                self.idling.discard(conn)
        self._log_command(conn.number, done)
        conn.send(tag + (b' OK idle done\r\n' if done.strip().upper() == b'DONE'
                         else b' BAD expected DONE\r\n'))

    @staticmethod
    def _expand(uidset, msgs):
        """The UIDs of msgs inside a UID set such as 3,5:9 or 1:* (ascending)."""
        top = max(msgs, default=0)
        want = set()
        for part in uidset.decode().split(','):
            lo, _, hi = part.partition(':')
            lo = top if lo == '*' else int(lo)
            hi = lo if not hi else (top if hi == '*' else int(hi))
            lo, hi = min(lo, hi), max(lo, hi)
            want.update(u for u in msgs if lo <= u <= hi)
        return sorted(want)

    def piece_answer(self, conn, uid, tag, items):
        """The answer of a careful server to a piece FETCH of uid (untagged FETCH and the
        tagged OK; a NO [UNKNOWN-CTE] for BINARY of an encoding it cannot undo)."""
        msgs = self.folders.get(conn.mailbox, {})
        if uid not in msgs:
            return tag + b' OK done\r\n'
        raw = msgs[uid]
        secs, root = sections(raw)
        parts = leaves(root)
        binary = b'BINARY' in self.extra_caps.split()
        out = [b'UID %d' % uid]
        for m in ITEM.finditer(items):
            word = m.group(0).upper()
            if word == b'UID':
                continue
            if word == b'BODYSTRUCTURE':
                bs = self.structures.get((conn.mailbox, uid))
                out.append(b'BODYSTRUCTURE ' + (bs if bs is not None else bodystructure(root)))
                continue
            if m.group(1) is not None or m.group(2).upper() == b'BINARY':
                sec = (m.group(1) if m.group(1) is not None else m.group(3)).decode()
                if not binary:
                    return tag + b' BAD BINARY is not offered\r\n'
                part = parts.get(sec)
                data = decode_part(part) if part is not None and part.kind == 'leaf' else None
                if data is None:
                    return tag + b' NO [UNKNOWN-CTE] cannot decode section %s\r\n' % (
                        sec.encode())
                if m.group(1) is not None:
                    out.append(b'BINARY.SIZE[%s] %d' % (sec.encode(), len(data)))
                    continue
                name = b'BINARY[%s]' % sec.encode()
            else:
                sec = m.group(3).decode().upper()
                data = secs.get(sec, b'')
                name = b'BODY[%s]' % m.group(3)
            if m.group(4) is not None:
                off, length = int(m.group(4)), int(m.group(5))
                data = data[off:off + length]
                name += b'<%d>' % off
            lit8 = name.startswith(b'BINARY') and (self.literal8 or b'\x00' in data)
            out.append(name + (b' ~{%d}\r\n' if lit8 else b' {%d}\r\n') % len(data) + data)
        seq = sorted(msgs).index(uid) + 1
        return (b'* %d FETCH (' % seq + b' '.join(out) + b')\r\n' + tag + b' OK done\r\n')

    def _fetch_pieces(self, conn, tag, uidset, items, msgs):
        # as _fetch's body answers: a hook's answer carrying the tagged line ends the command
        for uid in self._expand(uidset, msgs):
            answer = self.pieces_hook(conn, uid, tag, items) if self.pieces_hook else None
            if answer is None:
                answer = self.piece_answer(conn, uid, tag, items)
                # one tagged line for the whole command: an OK is sent after the last UID
                ok = tag + b' OK done\r\n'
                if answer.endswith(ok):
                    answer = answer[:-len(ok)] or None
                if answer is None:
                    continue
            if answer:
                conn.send(answer)
            if not answer or re.search(rb'(^|\n)' + re.escape(tag) + rb' ', answer):
                return
        conn.send(tag + b' OK done\r\n')

    def _list_lines(self):
        if self.list_lines is not None:
            return list(self.list_lines)
        return [b'* LIST () ' + quote(self.delimiter) + b' ' + quote(name) + b'\r\n'
                for name in self.folders]

    def _fetch(self, conn, tag, rest):
        uidset, _, items = rest.partition(b' ')
        msgs = self.folders.get(conn.mailbox, {})
        if not is_whole_fetch(items) and re.search(rb'BODYSTRUCTURE|BODY\.PEEK\[|BINARY',
                                                   items.upper()):
            self._fetch_pieces(conn, tag, uidset, items, msgs)
            return
        if b'BODY.PEEK[' in items.upper():
            # One answer per asked UID the folder has.  A hook's answer is sent as is; if it
            # carries the tagged line (or is b'' = say nothing more) the command ends there.
            for uid in self._expand(uidset, msgs):
                answer = self.body_hook(conn, uid, tag) if self.body_hook else None
                if answer is not None:
                    if answer:
                        conn.send(answer)
                    if not answer or re.search(rb'(^|\n)' + re.escape(tag) + rb' ', answer):
                        return
                    continue
                body = msgs[uid]
                seq = sorted(msgs).index(uid) + 1
                conn.send(b'* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n' % (
                    seq, uid, len(body), body))
            conn.send(tag + b' OK done\r\n')
            return
        out = []
        for seq, uid in enumerate(sorted(msgs), 1):
            size = self.sizes.get((conn.mailbox, uid), len(msgs[uid]))
            out.append(b'* %d FETCH (UID %d RFC822.SIZE %d INTERNALDATE '
                       b'"01-Jan-2024 10:00:00 +0000" FLAGS (\\Seen)%s)\r\n' % (
                           seq, uid, size, self._identity_items(conn.mailbox, uid, items)))
        conn.send(b''.join(out) + tag + b' OK done\r\n')

    def _identity_items(self, folder, uid, items):
        """The identity items asked for in items that identities knows of (folder, uid)."""
        ident = self.identities.get((folder, uid))
        asked = items.upper()
        if ident is None:
            return b''
        email_id, thread, labels = ident
        out = b''
        if b'X-GM-MSGID' in asked:
            out += b' X-GM-MSGID ' + email_id.encode()
        if b'X-GM-THRID' in asked and thread is not None:
            out += b' X-GM-THRID ' + thread.encode()
        if b'X-GM-LABELS' in asked and labels is not None:
            out += b' X-GM-LABELS (' + b' '.join(labels) + b')'
        if b'EMAILID' in asked:
            out += b' EMAILID (' + email_id.encode() + b')'
        if b'THREADID' in asked:
            out += b' THREADID ' + (b'(' + thread.encode() + b')' if thread else b'NIL')
        return out
