"""A scripted fake IMAP server on loopback, for tests that must see the exact client lines.

A script is a list of steps played in order on one accepted connection:

    ("send", b"* OK ready\\r\\n")        send bytes
    ("expect", b"A0001 CAPABILITY")      read one CRLF line; it must equal this exactly
    ("expect_prefix", b"A0002 LOGIN ")   read one line; it must start with this
    ("read", n)                          read exactly n raw bytes (literal data)
    ("starttls",)                        switch the socket to TLS (server side)
    ("sleep", seconds)                   pause (neither read nor write)
    ("quiet", seconds)                   the client must send nothing for that long (it is
                                         waiting for an answer: not pipelining, or waiting for
                                         "+" before a synchronising literal's bytes)
    ("stall",)                           stop answering; keep the socket open until the client
                                         goes away (or 30 s)
    ("close",)                           close the connection now
    ("compress", flush)                  from here on COMPRESS=DEFLATE (RFC 4978) both ways:
                                         what the client sends is inflated before "expect"
                                         sees it, and every "send" is deflated and ended with
                                         flush (zlib.Z_SYNC_FLUSH if omitted; Z_PARTIAL_FLUSH
                                         ends in the middle of a byte)
    ("send_bytewise", data, seconds)     compressed: deflate and flush data, then send the
                                         result one byte per TCP segment, pausing in between
    ("send_raw", data)                   compressed: send data as it is (a corrupt stream)
    ("send_compress", ok, data)          send ok (the tagged OK to COMPRESS) and, in the same
                                         segment, data compressed: then as ("compress",)
    ("send_bomb", n)                     compressed: a stream that inflates to n bytes of "A"
                                         and no line end, made and sent a piece at a time

With tls="implicit" the TLS handshake happens right after accept.  Everything the client sends
is recorded in .received (raw bytes, also after the script ends, until the client closes) and
.lines (decoded lines; after "compress", inflated: .plain holds every inflated byte and
.compress_at the offset in .received where compression began); mismatches go to .errors, so a test can assert both the exact dialogue
and that nothing else (e.g. a password) was ever sent.  Stdlib only.
"""
import socket
import ssl
import threading
import time
import zlib


class FakeServer:
    def __init__(self, script, tls=None, certfile=None, keyfile=None, family=socket.AF_INET,
                 port=0):
        self.script = script
        self.tls = tls
        self.received = bytearray()
        self.lines = []
        self.errors = []
        self._buf = bytearray()
        self.plain = bytearray()
        self.compress_at = None
        self._inflater = None
        self._deflater = None
        self._flush = zlib.Z_SYNC_FLUSH
        self._ctx = None
        if tls:
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(certfile, keyfile)
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self._lsock = socket.socket(family, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, port))
        self._lsock.listen(1)
        self.port = self._lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # -- reading helpers --------------------------------------------------------------------
    def _fill(self, sock):
        data = sock.recv(65536)
        if not data:
            raise EOFError
        self.received += data
        if self._inflater is not None:
            data = self._inflater.decompress(data)
            self.plain += data
        self._buf += data

    def _readline(self, sock):
        while b"\r\n" not in self._buf:
            self._fill(sock)
        i = self._buf.index(b"\r\n")
        line = bytes(self._buf[:i])
        del self._buf[: i + 2]
        self.lines.append(line)
        return line

    def _read(self, sock, n):
        while len(self._buf) < n:
            self._fill(sock)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _deflate(self, data):
        return self._deflater.compress(data) + self._deflater.flush(self._flush)

    def _send(self, sock, data):
        sock.sendall(self._deflate(data) if self._deflater is not None else data)

    # -- the session ------------------------------------------------------------------------
    def _run(self):
        self._lsock.settimeout(30)
        try:
            sock, _ = self._lsock.accept()
        except OSError as e:
            self.errors.append(f"no connection: {e}")
            return
        sock.settimeout(30)
        try:
            if self.tls == "implicit":
                sock = self._ctx.wrap_socket(sock, server_side=True)
            for step in self.script:
                op = step[0]
                if op == "send":
                    self._send(sock, step[1])
                elif op in ("compress", "send_compress"):
                    self._flush = step[1] if op == "compress" and len(step) > 1 \
                        else zlib.Z_SYNC_FLUSH
                    self._deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
                    self._inflater = zlib.decompressobj(-15)
                    self.compress_at = len(self.received)
                    # what the client sent after its COMPRESS line is compressed already
                    pending, self._buf = bytes(self._buf), bytearray()
                    data = self._inflater.decompress(pending)
                    self.plain += data
                    self._buf += data
                    if op == "send_compress":
                        sock.sendall(step[1] + self._deflate(step[2]))
                elif op == "send_bytewise":
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for b in self._deflate(step[1]):
                        sock.sendall(bytes([b]))
                        time.sleep(step[2])
                elif op == "send_raw":
                    sock.sendall(step[1])
                elif op == "send_bomb":
                    left = step[1]
                    piece = b"A" * (1 << 20)
                    while left > 0:
                        n = min(left, len(piece))
                        sock.sendall(self._deflater.compress(piece[:n]))
                        left -= n
                    sock.sendall(self._deflater.flush(zlib.Z_SYNC_FLUSH))
                elif op == "expect":
                    line = self._readline(sock)
                    if line != step[1]:
                        self.errors.append(f"expected {step[1]!r}, got {line!r}")
                        return
                elif op == "expect_prefix":
                    line = self._readline(sock)
                    if not line.startswith(step[1]):
                        self.errors.append(f"expected {step[1]!r}..., got {line!r}")
                        return
                elif op == "read":
                    self._read(sock, step[1])
                elif op == "starttls":
                    if self._buf:
                        self.errors.append(f"client sent data before handshake: {self._buf!r}")
                    sock = self._ctx.wrap_socket(sock, server_side=True)
                elif op == "sleep":
                    time.sleep(step[1])
                elif op == "quiet":
                    if not self._quiet(sock, step[1]):
                        return
                elif op == "stall":
                    self._drain(sock, 30)
                    return
                elif op == "close":
                    return
                else:
                    raise ValueError(op)
            # script done: record whatever else the client sends until it closes
            self._drain(sock, 5)
        except EOFError:
            pass
        except (OSError, ssl.SSLError) as e:
            self.errors.append(f"server I/O error: {e}")
        finally:
            try:
                sock.close()
            except OSError:
                pass
            self._lsock.close()

    def _quiet(self, sock, seconds):
        if self._buf:
            self.errors.append(f"client sent {bytes(self._buf)!r} while it should wait")
            return False
        sock.settimeout(seconds)
        try:
            self._fill(sock)
        except (socket.timeout, TimeoutError):
            return True
        finally:
            sock.settimeout(30)
        self.errors.append(f"client sent {bytes(self._buf)!r} while it should wait")
        return False

    def _drain(self, sock, seconds):
        sock.settimeout(seconds)
        try:
            while True:
                self._fill(sock)
                while b"\r\n" in self._buf:
                    i = self._buf.index(b"\r\n")
                    self.lines.append(bytes(self._buf[:i]))
                    del self._buf[: i + 2]
        except (EOFError, OSError, ssl.SSLError):
            pass

    def join(self, timeout=40):
        self._thread.join(timeout)
        return not self._thread.is_alive()
