#!/usr/bin/python3
"""A userspace TCP proxy on loopback, for latency and fault tests of imapfs.

TcpProxy listens on a free loopback port and forwards every connection to a
loopback target.  Each direction adds delay_ms of one-way latency without
capping throughput: a reader thread stamps each chunk with the time it was
read, and a writer thread sends it at stamp + delay, in order.

With rate_bps (bits per second) it also shapes the link like one access line:
each direction is a single link shared by every connection, a chunk leaves
it len*8/rate after the link is free (or after it was read, if later) and
arrives delay later; a direction's queue holds at most a few round trips of
data, then the reader stops reading (the sender's TCP window fills), so the
server is held back as by a real slow link.  Without rate_bps nothing is
capped and nothing is held back (as before).

Counters: bytes_up (client to server) and bytes_down (server to client),
counted as the proxy reads them from each side, over every connection;
counters() reads both, reset_counters() sets them to zero.

Tests can inject faults from their own thread:

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
        self.queued = 0                   # bytes in queue (the rate cap's backpressure)
        # The writer waits here; it shares the proxy's lock, so a new chunk wakes this
        # direction's writer only, not every writer of every connection (at 50 ms and
        # four busy connections that was most of the proxy's CPU).
        self.cond = threading.Condition(conn.proxy.lock)
        # The reader waits here while the queue is full (only with a rate cap).
        self.space = threading.Condition(conn.proxy.lock)


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
        """Wake both writers and readers (a state change they must see); caller holds
        proxy.lock."""
        for d in (self.up, self.down):
            d.cond.notify_all()
            d.space.notify_all()

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
                d.queue.append((p._due(d.downstream, len(data)), data or None))
                d.queued += len(data)
                if d.downstream:
                    p.bytes_down += len(data)
                else:
                    p.bytes_up += len(data)
                d.cond.notify()
                # With a rate cap, stop reading while the queue is full, so the sender is
                # held back as by a slow link (its window fills) instead of being drained
                # into this process at loopback speed.
                while (p.rate_bps and d.queued > p._queue_limit() and not self.dead):
                    d.space.wait()
                if self.dead:
                    return
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
                if data is not None:
                    d.queued -= len(data)
                    d.space.notify()
                cut_now = False
                if data is not None and d.downstream and p._cut_budget is not None:
                    if len(data) >= p._cut_budget:
                        data = data[:p._cut_budget]
                        p._cut_budget = None
                        cut_now = True
                    else:
                        p._cut_budget -= len(data)
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
                 listen_port=0, rate_bps=None):
        self.host = _loopback_addr(listen_host)
        self.target = (_loopback_addr(target_host), int(target_port))
        self.delay = max(0.0, float(delay_ms) / 1000.0)
        self.rate_bps = float(rate_bps) if rate_bps else None
        # When each direction's link is free again (monotonic), with a rate cap.
        self._link_free = {False: 0.0, True: 0.0}
        self.bytes_up = 0
        self.bytes_down = 0
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

    def _due(self, downstream, nbytes):
        """When a chunk read now is written to the other side; caller holds self.lock."""
        now = time.monotonic()
        if not self.rate_bps or not nbytes:
            return now + self.delay
        start = max(now, self._link_free[downstream])
        self._link_free[downstream] = start + nbytes * 8.0 / self.rate_bps
        return self._link_free[downstream] + self.delay

    def _queue_limit(self):
        """Bytes a direction may hold before its reader waits: what is in flight over the
        delay at full rate, twice, plus 1 MiB (at 100 Mbit/s and 25 ms: ~1.7 MB)."""
        return int(2 * self.rate_bps / 8.0 * self.delay) + (1 << 20)

    # -- counters --------------------------------------------------------------

    def counters(self):
        """(bytes_up, bytes_down): client-to-server and server-to-client bytes read so far."""
        with self.cond:
            return self.bytes_up, self.bytes_down

    def reset_counters(self):
        with self.cond:
            self.bytes_up = 0
            self.bytes_down = 0

    # -- fault controls ------------------------------------------------------

    def set_delay(self, delay_ms):
        """Change the one-way delay for chunks read from now on."""
        with self.cond:
            self.delay = max(0.0, float(delay_ms) / 1000.0)
            self._wake_all()

    def set_rate(self, rate_bps):
        """Change the rate cap (bits per second; None or 0 = none) for chunks read from now
        on."""
        with self.cond:
            self.rate_bps = float(rate_bps) if rate_bps else None
            self._wake_all()

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
                    help='cap each direction at this many Mbit/s (default: no cap)')
    args = ap.parse_args(argv)
    host, _, port = args.target.rpartition(':')
    host = host.strip('[]')
    try:
        proxy = TcpProxy(args.listen_host, host, int(port), args.delay_ms,
                         listen_port=args.listen_port,
                         rate_bps=args.rate_mbit * 1e6 if args.rate_mbit else None)
    except (ValueError, OSError) as e:
        print('tcp_proxy: %s' % e, file=sys.stderr)
        return 2
    print('listening on %s:%d -> %s:%d, delay %g ms%s' % (
        proxy.host, proxy.port, proxy.target[0], proxy.target[1], args.delay_ms,
        ', rate %g Mbit/s' % args.rate_mbit if args.rate_mbit else ''),
        flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    proxy.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
