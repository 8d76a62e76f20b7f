"""What the benchmark's stand-alone IMAP clients (naive_grep.py, wire_limit.py) share: their
command-line connection arguments, reading the password from a file (never argv), and reporting
their own peak RSS for the benchmark's table.  Stdlib only."""
import argparse
import re


def connection_args(description):
    """An ArgumentParser with --host --port --user --password-file --ca-file --folder."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--user', required=True)
    ap.add_argument('--password-file', required=True)
    ap.add_argument('--ca-file', required=True)
    ap.add_argument('--folder', required=True)
    return ap


def read_password(path):
    with open(path) as f:
        return f.readline().rstrip('\n')


def peak_rss_kb():
    """This process's peak resident set (VmHWM), for the benchmark's RSS column."""
    try:
        with open('/proc/self/status') as f:
            m = re.search(r'^VmHWM:\s+(\d+) kB', f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None
