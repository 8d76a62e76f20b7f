#!/usr/bin/python3
"""Live changes (fs/watch.c): with `refresh = 3600`, what another client does to a folder in
use shows in the mount within seconds, through NOTIFY (Dovecot 2.3 offers it) and the kernel
invalidations of fs/tree.c.

Each check has its baseline in the same class: the same mount with `watch = off` does NOT show
the change within the same time, so a test passes only because the watcher works.  Every mount
is removed with `fusermount3 -uz` in cleanups (test_faults.DovecotCase), even on failure.

Fails (never skips) without /dev/fuse, fusermount3 or Dovecot.  Python stdlib only.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_faults import DovecotCase  # noqa: E402

LIVE = 3.0     # the bound: visible within 3 s
LONG = 3600    # refresh: without the watcher nothing would change for an hour


def msg(subject):
    return ('From: a@example.org\r\nSubject: %s\r\n\r\nbody of %s\r\n' % (
        subject, subject)).encode()


def wait_for(pred, timeout, poll=0.02):
    """Seconds until pred() held (polling every poll s), or None after timeout.  Also
    bench/live_bench.py's measure."""
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


def uids(path):
    return sorted(int(n) for n in os.listdir(path) if n.isdigit())


def read(path):
    with open(path, 'rb') as f:
        return f.read()


class WatchCase(DovecotCase):

    def folder(self, name, n=2):
        self.d.create_folder(name)
        for i in range(n):
            self.d.append(name, msg('%s %d' % (name, i)))
        return name

    def live_mount(self, **over):
        over.setdefault('refresh', str(LONG))
        over.setdefault('connections', '4')
        return self.mount(**over)


class TestLive(WatchCase):

    def test_new_expunged_and_flagged_mail_show_within_3s(self):
        f = self.folder('Live')
        m = self.live_mount()
        path = os.path.join(m.path, f)
        before = uids(path)
        self.assertEqual(len(before), 2)
        read(os.path.join(path, str(before[0]), 'flags'))  # in the kernel's page cache now

        self.d.append(f, msg('new one'))
        new = self.d.uids(f)[-1]
        took = wait_for(lambda: new in uids(path), LIVE)
        self.assertIsNotNone(took, 'appended UID %d not in ls within %.0f s: %s\n%s' % (
            new, LIVE, uids(path), m.log_text()))
        self.assertIn(b'new one', read(os.path.join(path, str(new), 'subject')))

        self.d.expunge(f, [before[1]])
        took = wait_for(lambda: before[1] not in uids(path) and
                        not os.path.exists(os.path.join(path, str(before[1]))), LIVE)
        self.assertIsNotNone(took, 'expunged UID %d still shown after %.0f s' % (
            before[1], LIVE))

        flags = os.path.join(path, str(before[0]), 'flags')
        self.assertNotIn(b'\\Flagged', read(flags))
        self.d.set_flags(f, [before[0]], ['\\Flagged'])
        took = wait_for(lambda: b'\\Flagged' in read(flags), LIVE)
        self.assertIsNotNone(took, 'flag change not in %s after %.0f s: %r' % (
            flags, LIVE, read(flags)))
        self.assertIn('watching the folders in use with NOTIFY', m.log_text())

    def test_baseline_watch_off_sees_nothing_before_refresh(self):
        """The control: the same steps with watch = off change nothing for LIVE seconds (so
        the test above passes because of the watcher, not some other path)."""
        f = self.folder('Still')
        m = self.live_mount(watch='off')
        path = os.path.join(m.path, f)
        before = uids(path)
        self.d.append(f, msg('unseen'))
        self.assertIsNone(wait_for(lambda: uids(path) != before, LIVE))
        self.assertNotIn('watching the folders', m.log_text())

    def test_uidvalidity_change_drops_old_entries(self):
        f = self.folder('Reborn', n=3)
        m = self.live_mount()
        path = os.path.join(m.path, f)
        self.assertEqual(uids(path), [1, 2, 3])
        self.assertIn(b'Reborn 0', read(os.path.join(path, '1', 'subject')))
        v1 = self.d.uidvalidity(f)
        self.d.recreate_folder(f)
        self.d.append(f, msg('second life'))
        self.assertNotEqual(self.d.uidvalidity(f), v1)
        took = wait_for(lambda: uids(path) == [1], LIVE)
        self.assertIsNotNone(took, 'old entries still shown: %s' % uids(path))
        self.assertIn(b'second life', read(os.path.join(path, '1', 'subject')))
        self.assertFalse(os.path.exists(os.path.join(path, '3')))

    def test_server_restart_while_watched_recovers(self):
        f = self.folder('Restart')
        m = self.live_mount()
        path = os.path.join(m.path, f)
        self.assertEqual(len(uids(path)), 2)
        time.sleep(0.5)  # the watcher has NOTIFY SET on the folder
        self.d.restart()
        # the watcher reconnects after its back-off (1 s, then 2 s): then it looks at every
        # folder it watches once, and NOTIFY runs again
        time.sleep(4)
        self.d.append(f, msg('after restart'))
        new = self.d.uids(f)[-1]
        took = wait_for(lambda: new in uids(path), LIVE + 4)
        self.assertIsNotNone(took, 'UID %d not shown after the restart: %s\n%s' % (
            new, uids(path), m.log_text()))
        self.assertIn('connection lost', m.log_text())

    def test_changes_seen_after_several_renewals(self):
        """idle_renew = 1: IDLE is ended and NOTIFY set again every second (counted in the
        protocol trace).  After several renewals a new message, an expunge and a flag change
        of the examined folder still show within 3 s: with refresh = 3600 they have no other
        way in than the server's push (after a SET the watcher re-lists only the folders not
        examined; a change of another folder is not checked here, as that re-listing would
        show it even without a push)."""
        f = self.folder('Renewed')
        g = self.folder('Beside')
        m = self.live_mount(idle_renew='1', extra=('-d',))
        other = os.path.join(m.path, g)
        path = os.path.join(m.path, f)
        self.assertEqual(len(uids(other)), 2)
        before = uids(path)  # used last: the folder examined on the watching connection
        self.assertEqual(len(before), 2)

        def sets():
            return m.log_text().count(
                'NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange)) (MAILBOXES')
        self.assertIsNotNone(wait_for(lambda: sets() >= 4, 10),
                             'NOTIFY set %d times in 10 s with idle_renew = 1:\n%s' % (
                                 sets(), m.log_text()[-3000:]))
        self.assertGreaterEqual(m.log_text().count('C: DONE'), 3)

        self.d.append(f, msg('after renewals'))
        new = self.d.uids(f)[-1]
        self.assertIsNotNone(wait_for(lambda: new in uids(path), LIVE),
                             'UID %d not shown after renewals' % new)
        self.d.expunge(f, [before[1]])
        self.assertIsNotNone(wait_for(lambda: before[1] not in uids(path), LIVE))
        flags = os.path.join(path, str(before[0]), 'flags')
        self.d.set_flags(f, [before[0]], ['\\Flagged'])
        self.assertIsNotNone(wait_for(lambda: b'\\Flagged' in read(flags), LIVE))


    def test_watch_off_below_three_connections(self):
        f = self.folder('Few')
        m = self.live_mount(connections='2')
        path = os.path.join(m.path, f)
        before = uids(path)
        self.d.append(f, msg('few'))
        self.assertIsNone(wait_for(lambda: uids(path) != before, 1.5))
        self.assertIn('watch: off with connections = 2', m.log_text())


if __name__ == '__main__':
    unittest.main(verbosity=2)
