#!/usr/bin/python3
"""Looking at a mount and its daemon from a test: reads (plain, and bounded ones that fail
instead of hanging the suite), polling, the daemon's /proc counters, its -d protocol trace,
and what its disk cache holds.  Python 3 standard library only."""

import concurrent.futures
import os
import re
import struct
import subprocess
import sys
import time


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def all_files(root):
    """Every file below root, sorted, walking directories in name order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            out.append(os.path.join(dirpath, name))
    return out


# ---- bounded reads -----------------------------------------------------------------------------

_READER = r'''
import os, sys
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    chunks = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            break
        chunks.append(b)
    st = os.fstat(fd)
    os.close(fd)
except OSError as e:
    sys.stderr.write('%d' % e.errno)
    sys.exit(3)
sys.stderr.write('size=%d' % st.st_size)
sys.stdout.buffer.write(b''.join(chunks))
'''


class Read:
    """Outcome of a bounded read: err (0 or errno), data, elapsed seconds, fstat size."""

    def __init__(self, err, data, elapsed, size=None):
        self.err, self.data, self.elapsed, self.size = err, data, elapsed, size


def timed_read(path, limit):
    """Read path whole in a child process killed after limit seconds.  A hang raises
    AssertionError (SIGKILL ends a process blocked on FUSE, so this never hangs itself)."""
    t0 = time.monotonic()
    try:
        res = subprocess.run([sys.executable, '-c', _READER, path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=limit)
    except subprocess.TimeoutExpired:
        raise AssertionError('reading %s hung for more than %g s' % (path, limit))
    elapsed = time.monotonic() - t0
    err = res.stderr.decode(errors='replace')
    if res.returncode == 3:
        return Read(int(err), b'', elapsed)
    if res.returncode != 0:
        raise AssertionError('reader crashed (%d): %s' % (res.returncode, err))
    return Read(0, res.stdout, elapsed, int(err.split('=')[1]))


def bounded(fn, limit, *args):
    """Run fn(*args) in a thread; AssertionError if it does not return within limit s."""
    ex = concurrent.futures.ThreadPoolExecutor(1)
    fut = ex.submit(fn, *args)
    try:
        return fut.result(timeout=limit)
    except concurrent.futures.TimeoutError:
        raise AssertionError('%s%r hung for more than %g s' % (fn.__name__, args, limit))
    finally:
        ex.shutdown(wait=False)


def wait_for(pred, timeout, poll=0.02):
    """Seconds until pred() held (polling every poll s), or None after timeout.  A
    FileNotFoundError counts as not yet.  Also bench/live_bench.py's measure."""
    t0 = time.monotonic()
    while True:
        try:
            if pred():
                return time.monotonic() - t0
        except FileNotFoundError:
            pass
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(poll)


# ---- the daemon's process ------------------------------------------------------------------------


def proc_status(pid, key):
    """A kB value (VmHWM, VmRSS) of /proc/pid/status, in bytes."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise AssertionError('%s not in /proc/%d/status' % (key, pid))


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def commands(log):
    """The IMAP commands of a -d protocol trace (the text after the tag)."""
    return re.findall(r'imap: C: \S+ (.*)', log)


# ---- the disk cache ------------------------------------------------------------------------------


def cache_files(cache):
    """Every whole message the disk cache holds in a finished file, as (path, uid, offset,
    size): single-message files "<UID>.<SIZE>" and the members of packs that are whole
    messages (piece 0), read from each pack's trailer (format in fs/bodycache.h); pieces
    ("<UID>-<PIECE>.<SIZE>", pack members of another piece) are left out.  A pack whose
    trailer does not describe the file exactly is reported with uid None."""
    out = []
    for dp, _dn, fs in os.walk(cache):
        for f in fs:
            path = os.path.join(dp, f)
            m = re.match(r'^(\d+)\.(\d+)$', f)
            if m:
                out.append((path, int(m.group(1)), 0, int(m.group(2))))
            elif re.match(r'^\d+-\d+\.[0-9a-f]+\.pack$', f):
                out.extend(pack_members(path))
    return out


def pack_members(path):
    size = os.path.getsize(path)
    bad = [(path, None, 0, 0)]
    with open(path, 'rb') as f:
        if size < 20:
            return bad
        f.seek(size - 20)
        footer = f.read(20)
        if footer[12:] not in (b'IFSPACK2', b'IFSPACK1'):
            return bad
        data_len, count = struct.unpack('<QI', footer[:12])
        if data_len + 24 * count + 20 != size:
            return bad
        f.seek(data_len)
        trailer = f.read(24 * count)
    members, nxt = [], 0
    for i in range(count):
        uid, piece, off, msize = struct.unpack_from('<IIQQ', trailer, 24 * i)
        if off != nxt:
            return bad
        nxt = off + msize
        if piece == 0:
            members.append((path, uid, off, msize))
    return members if nxt == data_len else bad
