#!/usr/bin/python3
"""A userspace TCP proxy on loopback, for latency and fault tests of imapfs.

TcpProxy listens on a free loopback port and forwards every connection to a
loopback target.  Each direction adds delay_ms of one-way latency without
capping throughput: a reader thread stamps each chunk with the time it was
read, and a writer thread sends it at stamp + delay, in order.  With rate_mbit
each direction is also one link of that bandwidth shared by every connection:
a chunk leaves no sooner than the link has finished sending the chunks before
it (its serialisation time added to the delay), as on a real link.  The
proxy counts the bytes it forwards: bytes_down (server to client) and bytes_up,
over all connections (reset_counts() sets both to 0).  Tests can inject faults
from their own thread:

    stall() / resume()   hold / release server-to-client data; connections stay open
    cut()                reset (RST) every current connection
    cut_after(n)         forward n more server-to-client bytes, then cut
    refuse(True/False)   reset new connections at once / accept them again

CLI, for benchmarks (runs until SIGINT/SIGTERM):

    tcp_proxy.py --listen-port P --target 127.0.0.1:PORT --delay-ms D [--rate-mbit R]

Only loopback addresses (127.0.0.0/8, ::1) are accepted, for both the
listening side and the target.  Python 3 standard library only.
"""

import argparse
import collections
import ipaddress
import signal
import socket
import struct
import sys
import threading
import time

CHUNK = 65536


def _loopback_addr(host):
    """Return host as a loopback IP string, or raise ValueError."""
    if host == 'localhost':
        host = '127.0.0.1'
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError('not a loopback IP address: %r' % host)
    if not ip.is_loopback:
        raise ValueError('refusing non-loopback address %r' % host)
    return str(ip)


def _family(addr):
    return socket.AF_INET6 if ':' in addr else socket.AF_INET


def _reset(sock):
    """Close sock with an RST (SO_LINGER 0), waking threads blocked on it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack('ii', 1, 0))
    except OSError:
        pass
    try:
        # SHUT_RD sends nothing on the wire but wakes a blocked recv().
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Direction:
    """One direction of one connection: a timestamped queue and a writer."""

    def __init__(self, conn, src, dst, downstream):
        self.conn = conn
        self.src = src
        self.dst = dst
        self.downstream = downstream      # server -> client
        self.queue = collections.deque()  # (due_monotonic, bytes or None=EOF)
        # The writer waits here; it shares the proxy's lock, so a new chunk wakes this
        # direction's writer only, not every writer of every connection (at 50 ms and
        # four busy connections that was most of the proxy's CPU).
        self.cond = threading.Condition(conn.proxy.lock)


class _Connection:
    def __init__(self, proxy, client, server):
        self.proxy = proxy
        self.client = client
        self.server = server
        self.dead = False
        self.up = _Direction(self, client, server, False)
        self.down = _Direction(self, server, client, True)
        self.eofs = 0
        self.threads = []

    def start(self):
        for d in (self.up, self.down):
            for fn in (self._reader, self._writer):
                t = threading.Thread(target=fn, args=(d,), daemon=True,
                                     name='tcp_proxy-%s-%s' % (
                                         'down' if d.downstream else 'up',
                                         fn.__name__.strip('_')))
                self.threads.append(t)
                t.start()

    def kill(self):
        """RST both sockets; caller holds proxy.cond."""
        if self.dead:
            return
        self.dead = True
        _reset(self.client)
        _reset(self.server)
        self.wake()
        self.proxy._conns.discard(self)

    def wake(self):
        """Wake both writers (a state change they must see); caller holds proxy.lock."""
        self.up.cond.notify_all()
        self.down.cond.notify_all()

    def _reader(self, d):
        p = self.proxy
        while True:
            try:
                data = d.src.recv(CHUNK)
            except OSError:
                data = None
            with p.cond:
                if self.dead:
                    return
                if data is None:
                    self.kill()        # an RST on one side resets the other
                    return
                if d.downstream:
                    p.bytes_down += len(data)
                else:
                    p.bytes_up += len(data)
                d.queue.append((time.monotonic() + p.delay, data or None))
                d.cond.notify()
            if not data:
                return

    def _writer(self, d):
        p = self.proxy
        while True:
            with p.cond:
                while True:
                    if self.dead:
                        return
                    if d.queue and not (d.downstream and p._stalled):
                        wait = d.queue[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        d.cond.wait(wait)
                    else:
                        d.cond.wait()
                _due, data = d.queue.popleft()
                sent_at = None
                if data is not None and p.rate > 0:
                    # the shared link sends this chunk after the ones already on it
                    start = max(time.monotonic(), p._link_free[d.downstream])
                    sent_at = start + len(data) / p.rate
                    p._link_free[d.downstream] = sent_at
                cut_now = False
                if data is not None and d.downstream and p._cut_budget is not None:
                    if len(data) >= p._cut_budget:
                        data = data[:p._cut_budget]
                        p._cut_budget = None
                        cut_now = True
                    else:
                        p._cut_budget -= len(data)
            if sent_at is not None:
                wait = sent_at - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            try:
                if data is None:
                    d.dst.shutdown(socket.SHUT_WR)
                else:
                    d.dst.sendall(data)
            except OSError:
                with p.cond:
                    self.kill()
                return
            if cut_now:
                # Let the last bytes reach the peer before the reset.
                time.sleep(0.05)
                p.cut()
                return
            if data is None:
                with p.cond:
                    self.eofs += 1
                    if self.eofs == 2 and not self.dead:
                        # Both sides closed cleanly: a normal close.
                        self.dead = True
                        p._conns.discard(self)
                        for s in (self.client, self.server):
                            try:
                                s.close()
                            except OSError:
                                pass
                        self.wake()
                return


class TcpProxy:
    """Forward connections from a free loopback port to target (loopback).

    .host/.port: where clients connect.  All methods are thread-safe."""

    def __init__(self, listen_host, target_host, target_port, delay_ms=0,
                 listen_port=0, rate_mbit=0):
        self.host = _loopback_addr(listen_host)
        self.target = (_loopback_addr(target_host), int(target_port))
        self.delay = max(0.0, float(delay_ms) / 1000.0)
        self.rate = max(0.0, float(rate_mbit)) * 1e6 / 8   # bytes per second; 0: unlimited
        self._link_free = {False: 0.0, True: 0.0}  # per direction: when the link is idle
        self.bytes_down = 0   # server -> client, all connections
        self.bytes_up = 0
        # One lock for all state; `with proxy.cond` takes it.  Writers wait on their
        # direction's condition (same lock); changes every writer must see go through
        # _wake_all().
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._conns = set()
        self._stalled = False
        self._refusing = False
        self._cut_budget = None
        self._closed = False
        self.connections_accepted = 0
        self._listener = socket.socket(_family(self.host), socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, listen_port))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop,
                                               daemon=True, name='tcp_proxy-accept')
        self._accept_thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def address(self):
        return (self.host, self.port)

    def _accept_loop(self):
        while True:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            with self.cond:
                if self._closed:
                    _reset(client)
                    return
                refusing = self._refusing
            if refusing:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, client, server)
            with self.cond:
                if self._closed:
                    conn.kill()
                    return
                self._conns.add(conn)
                self.connections_accepted += 1
            conn.start()

    # -- fault controls ------------------------------------------------------

    def reset_counts(self):
        """Start counting forwarded bytes afresh; returns (bytes_down, bytes_up) until now."""
        with self.cond:
            counts = (self.bytes_down, self.bytes_up)
            self.bytes_down = self.bytes_up = 0
            return counts

    def counts(self):
        """(bytes_down, bytes_up) forwarded since the start or the last reset_counts()."""
        with self.cond:
            return (self.bytes_down, self.bytes_up)

    def set_delay(self, delay_ms):
        """Change the one-way delay for chunks read from now on."""
        with self.cond:
            self.delay = max(0.0, float(delay_ms) / 1000.0)

    def _wake_all(self):
        """Wake every writer; caller holds self.lock."""
        for c in self._conns:
            c.wake()
        self.cond.notify_all()

    def stall(self):
        """Stop forwarding server-to-client; keep connections open."""
        with self.cond:
            self._stalled = True
            self._wake_all()

    def resume(self):
        """Forward again, including everything held while stalled."""
        with self.cond:
            self._stalled = False
            self._wake_all()

    def cut(self):
        """Reset (RST) every current connection on both sides."""
        with self.cond:
            for c in list(self._conns):
                c.kill()
            self._cut_budget = None

    def cut_after(self, n_bytes):
        """Forward n_bytes more server-to-client (over all connections), then
        cut() every connection.  One-shot."""
        with self.cond:
            self._cut_budget = int(n_bytes)
            if self._cut_budget <= 0:
                self._cut_budget = None
                for c in list(self._conns):
                    c.kill()

    def refuse(self, on=True):
        """While on, new connections are reset as soon as they are accepted."""
        with self.cond:
            self._refusing = bool(on)

    def active_connections(self):
        with self.cond:
            return len(self._conns)

    def close(self):
        """Stop listening, reset all connections, and join the threads."""
        with self.cond:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._accept_thread.join(5)
        with self.cond:
            for c in conns:
                c.kill()
        for c in conns:
            for t in c.threads:
                t.join(5)


def main(argv=None):
    ap = argparse.ArgumentParser(description='loopback TCP proxy with delay')
    ap.add_argument('--listen-host', default='127.0.0.1')
    ap.add_argument('--listen-port', type=int, default=0)
    ap.add_argument('--target', required=True, help='HOST:PORT (loopback only)')
    ap.add_argument('--delay-ms', type=float, default=0)
    ap.add_argument('--rate-mbit', type=float, default=0,
                    help='bandwidth of each direction in Mbit/s (default: unlimited)')
    args = ap.parse_args(argv)
    host, _, port = args.target.rpartition(':')
    host = host.strip('[]')
    try:
        proxy = TcpProxy(args.listen_host, host, int(port), args.delay_ms,
                         listen_port=args.listen_port, rate_mbit=args.rate_mbit)
    except (ValueError, OSError) as e:
        print('tcp_proxy: %s' % e, file=sys.stderr)
        return 2
    print('listening on %s:%d -> %s:%d, delay %g ms' % (
        proxy.host, proxy.port, proxy.target[0], proxy.target[1], args.delay_ms),
        flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    proxy.close()
    print('forwarded %d bytes down, %d up' % proxy.counts(), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
