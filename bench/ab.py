#!/usr/bin/python3
"""Side-by-side A/B of imapfs binaries on the benchmark's setup (bench.py's Dovecot, corpus,
grep and mounts): for each run, each binary gets a cold grep (fresh, empty cache), a warm grep
on the same mount, and a grep after a remount on that cache; medians per binary at the end.
Also prints the daemon's CPU seconds and the whole machine's busy/idle seconds during the cold
and remount greps (where the time goes).  Run as root:

    python3 bench/ab.py OLD_IMAPFS,NEW_IMAPFS [--rtt 50] [--n 3] [--messages 5000]
"""
import argparse
import os
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'harness'))
import bench  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

HZ = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    f = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ


def machine():
    f = [int(x) for x in open('/proc/stat').readline().split()[1:]]
    return (sum(f) - f[3] - f[4]) / HZ, f[3] / HZ   # busy, idle


def daemon_stats(mnt):
    """The daemon's counters, when it runs with -o stats (a wrapper script can add that)."""
    try:
        return dict(f.split('=') for f in os.getxattr(mnt, 'user.imapfs.stats').decode().split())
    except OSError:
        return {}


def timed_grep(b, m, top):
    c0, (busy0, idle0), p0 = cpu_seconds(m.proc.pid), machine(), cpu_seconds(os.getpid())
    secs, found = b.grep(top)
    c1, (busy1, idle1), p1 = cpu_seconds(m.proc.pid), machine(), cpu_seconds(os.getpid())
    if found != b.expected:
        raise SystemExit('wrong result: %d found, %d expected' % (len(found), len(b.expected)))
    st = daemon_stats(b.mnt)
    extra = ''.join(' %s=%s' % (k, v) for k, v in st.items()
                    if k in ('parsed_ahead', 'readahead_stored', 'requests', 'bodies_fetched',
                             'pieces_fetched', 'pieces_read_ahead', 'read_whole') or
                    (k.startswith('req_') and v != '0'))
    return secs, 'daemon cpu %.2f s, this process (the latency proxy) %.2f s, machine busy ' \
        '%.2f s idle %.2f s%s' % (c1 - c0, p1 - p0, busy1 - busy0, idle1 - idle0, extra)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('binaries', help='comma-separated imapfs binaries')
    ap.add_argument('--rtt', type=float, default=0, help='round-trip time, ms (default 0)')
    ap.add_argument('--n', type=int, default=3, help='runs per binary (default 3)')
    ap.add_argument('--messages', type=int, default=5000)
    a = ap.parse_args()
    bins = [os.path.abspath(x) for x in a.binaries.split(',')]
    args = argparse.Namespace(imapfs=bins[0], messages=a.messages, seed=1, ls_scaling=False,
                              cache_size=None, imapfs_config=[], slow_seconds=60, repeat=1,
                              keep=False)
    b = bench.Bench(args)
    proxy = None
    res = {x: {'cold': [], 'warm': [], 'remount': []} for x in bins}
    try:
        b.setup()
        port = b.d.port_imaps
        if a.rtt > 0:
            proxy = TcpProxy('127.0.0.1', '127.0.0.1', port, delay_ms=a.rtt / 2)
            port = proxy.port
        top = os.path.join(b.mnt, bench.FOLDER)
        for _ in range(a.n):
            for binary in bins:      # interleaved, so drift hits every binary alike
                b.imapfs = binary
                cache = b.cache_home()
                with bench.Mount(b, port, cache, 'ab') as m:
                    s, how = timed_grep(b, m, top)
                    res[binary]['cold'].append(s)
                    print('%s cold %.3f s (%s)' % (binary, s, how), flush=True)
                    res[binary]['warm'].append(b.grep(top)[0])
                    m.unmount()
                with bench.Mount(b, port, cache, 'ab-re') as m:
                    s, how = timed_grep(b, m, top)
                    res[binary]['remount'].append(s)
                    print('%s remount %.3f s (%s)' % (binary, s, how), flush=True)
                    m.unmount()
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        b.cleanup()
        if proxy is not None:
            proxy.close()
    print('\nmedians of %d runs, %d messages, RTT %g ms' % (a.n, a.messages, a.rtt))
    for binary in bins:
        print('%-50s %s' % (binary, '  '.join('%s %.3f s' % (k, statistics.median(v))
                                             for k, v in res[binary].items())))


if __name__ == '__main__':
    main()
