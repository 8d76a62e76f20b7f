#!/usr/bin/python3
"""Run integration tests against a ThreadSanitizer build of imapfs and fail on any report.

Usage: run_tsan.py SHIM.so TEST_SCRIPT [unittest names...]

GLib's GMutex/GCond are futex-based, so TSan cannot see their happens-before edges and reports
every GMutex-protected access as a race.  SHIM.so (tests/tsan/glib_tsan_shim.c, preloaded) tells
TSan about them; tests/tsan/tsan.supp hides races inside GLib and GMime themselves (not project
code).  Reports go to files under a scratch directory (a daemon's stderr is not the test's), and
the run fails when the test fails or when any report file exists afterwards.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    shim, script, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    here = os.path.dirname(os.path.abspath(__file__))
    logdir = tempfile.mkdtemp(prefix='imapfs-tsan-')
    try:
        env = dict(os.environ)
        env['LD_PRELOAD'] = shim
        env['TSAN_OPTIONS'] = ' '.join([
            'halt_on_error=1', 'exitcode=66', 'second_deadlock_stack=1',
            f'suppressions={os.path.join(here, "tsan.supp")}',
            f'log_path={os.path.join(logdir, "tsan")}'])
        proc = subprocess.run(['/usr/bin/python3', script, '-v'] + names, env=env)
        reports = sorted(glob.glob(os.path.join(logdir, 'tsan*')))
        for path in reports:
            print(f'==== ThreadSanitizer report {os.path.basename(path)}')
            with open(path, errors='replace') as f:
                print(f.read())
        if reports:
            print(f'FAIL: {len(reports)} ThreadSanitizer report(s)')
            return 1
        print(f'no ThreadSanitizer reports; test exit status {proc.returncode}')
        return proc.returncode
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
