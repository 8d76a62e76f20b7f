#!/usr/bin/python3
"""Does Dovecot keep pushing NOTIFY events once its mailbox list index log has rotated?  (issue
15's missed events; not a test, no imapfs involved)

A raw client on a throwaway Dovecot (tests/harness/dovecot.py) watches folder `Live` with
NOTIFY and IDLEs; another APPENDs and expunges, every ~0.6 s.  Each APPEND's push is timed and
the inode and size of Maildir/dovecot.list.index.log are printed, with ROTATED when the inode
changed.  The first APPEND not pushed within 2.5 s stops the run (after waiting 35 s more for
its push).

    python3 bench/notify_rotation.py [mailboxes|selected] [ROUNDS]

mailboxes: NOTIFY SET (MAILBOXES (Live) ...), the push a STATUS line (Dovecot 2.3.19: misses
from the first rotation on, the push then comes from its 30 s check timer).  selected: EXAMINE
Live and NOTIFY SET (SELECTED ...), the push an EXISTS line (no misses across rotations).
Needs root (Dovecot).
"""
import glob
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'tests', 'harness'))
import dovecot  # noqa: E402

EVENTS = b'(MessageNew MessageExpunge FlagChange)'


def main():
    selected = len(sys.argv) > 1 and sys.argv[1] == 'selected'
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    d = dovecot.Dovecot()
    d.start()
    try:
        d.create_folder('Live')
        for _ in range(20):
            d.append('Live', b'Subject: s\r\n\r\nb\r\n')
        home = os.path.join(d.workdir, 'home', d.user)
        w = d.connect()
        if selected:
            w.select('Live', readonly=True)
            w.send(b'N1 NOTIFY SET (SELECTED ' + EVENTS + b')\r\n')
        else:
            w.send(b'N1 NOTIFY SET (MAILBOXES (Live) ' + EVENTS + b')\r\n')
        print(w.readline())
        w.send(b'N2 IDLE\r\n')
        print(w.readline())
        events = []

        def reader():
            while True:
                try:
                    line = w.readline()
                except (OSError, EOFError):
                    return
                if not line:
                    return
                events.append((time.time(), line))
        threading.Thread(target=reader, daemon=True).start()

        def log_file():
            p = glob.glob(home + '/**/dovecot.list.index.log', recursive=True)
            st = os.stat(p[0])
            return st.st_ino, st.st_size

        prev = log_file()
        seen = set()
        for i in range(rounds):
            uid = d.append('Live', b'Subject: s %d\r\n\r\nb\r\n' % i)
            t0 = time.time()
            want = b'* 21 EXISTS' if selected else b'UIDNEXT %d ' % (uid + 1)
            got = None
            while got is None and time.time() - t0 < 2.5:
                for t, line in list(events):
                    if t >= t0 - 0.01 and want in line and (t, line) not in seen:
                        seen.add((t, line))
                        got = t - t0
                        break
                time.sleep(0.01)
            cur = log_file()
            print('%3d UID %d: %s  log inode %d size %d%s' % (
                i, uid, '%.3f s' % got if got is not None else 'MISSED', cur[0], cur[1],
                '  <-- ROTATED' if cur[0] != prev[0] else ''), flush=True)
            prev = cur
            if got is None:
                t1 = time.time()
                while time.time() - t1 < 35:
                    hit = [t for t, line in list(events) if want in line]
                    if hit:
                        print('    ... its push came %.1f s after the APPEND' % (hit[0] - t0))
                        break
                    time.sleep(0.1)
                else:
                    print('    ... no push within 35 s more')
                break
            d.expunge('Live', [uid])
            time.sleep(0.6)
    finally:
        d.cleanup()


if __name__ == '__main__':
    main()
