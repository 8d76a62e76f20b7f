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

With tls="implicit" the TLS handshake happens right after accept.  Everything the client sends
is recorded in .received (raw bytes, also after the script ends, until the client closes) and
.lines (decoded lines); mismatches go to .errors, so a test can assert both the exact dialogue
and that nothing else (e.g. a password) was ever sent.  Stdlib only.
"""
import socket
import ssl
import threading
import time


class FakeServer:
    def __init__(self, script, tls=None, certfile=None, keyfile=None, family=socket.AF_INET,
                 port=0):
        self.script = script
        self.tls = tls
        self.received = bytearray()
        self.lines = []
        self.errors = []
        self._buf = bytearray()
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
                    sock.sendall(step[1])
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
