#!/usr/bin/python3
"""deb_demo_mount.py IMAPFS — mount the demo account with an installed imapfs (a check of
tests/dist/check_deb.sh): a throwaway Dovecot seeded with the sample mail scripts/demo.sh
uses, account [demo] configured like demo.sh's (password read by pass_cmd from a 0600 file),
then
  1. IMAPFS demo MNT -o config=CFG            (as a user would run it)
  2. mount -t fuse.imapfs demo MNT -o config=CFG, umount   (mount.fuse3 finds IMAPFS on its
     fixed PATH: the mounted daemon must be IMAPFS itself)
Each mount must list the seeded folders and return every seeded INBOX message byte for byte.
Mounts are removed and the Dovecot stopped even on failure.  Exit status 0 when all held.
Python stdlib only.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'harness'))
import dovecot  # noqa: E402
import sample_mail  # noqa: E402
from mounts import daemon_pids, mounted  # noqa: E402

MOUNT_ENV = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C'}


def daemon_exes(mnt):
    """The executables of the imapfs daemons serving mnt."""
    return [os.path.realpath('/proc/%d/exe' % pid) for pid in daemon_pids(mnt)]


def check_contents(mnt, seeded):
    top = set(os.listdir(mnt))
    if not {'INBOX', 'Archive', 'Work'} <= top:
        raise AssertionError('folders at %s: %s' % (mnt, sorted(top)))
    n = 0
    for folder, uid, raw, _flags in seeded:
        if folder != 'INBOX':
            continue
        with open(os.path.join(mnt, 'INBOX', str(uid), 'message.eml'), 'rb') as f:
            if f.read() != raw:
                raise AssertionError('INBOX/%d/message.eml differs from the seeded message'
                                     % uid)
        with open(os.path.join(mnt, 'INBOX', str(uid), 'subject'), encoding='utf-8') as f:
            subject = f.read().strip()
        n += 1
    print('  %s: %d INBOX messages read, last subject: %s' % (mnt, n, subject))
    if n == 0:
        raise AssertionError('no INBOX message was seeded')


def wait_gone(mnt, timeout=15):
    deadline = time.monotonic() + timeout
    while daemon_exes(mnt) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not daemon_exes(mnt)


def main(imapfs):
    tmp = tempfile.mkdtemp(prefix='ifs-deb', dir='/tmp')
    mnt = os.path.join(tmp, 'mnt')
    os.mkdir(mnt)
    d = dovecot.Dovecot()
    d.start()
    try:
        seeded = sample_mail.seed(d)
        pw = os.path.join(tmp, 'password')
        with open(os.open(pw, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
            f.write(d.password + '\n')
        cfg = os.path.join(tmp, 'config')
        with open(cfg, 'w') as f:
            f.write('[demo]\nhost = %s\nport = %d\ntls = imaps\nuser = %s\n'
                    'pass_cmd = cat %s\nca_file = %s\ncache_dir = %s\n'
                    % (d.host, d.port_imaps, d.user, pw, d.ca_file,
                       os.path.join(tmp, 'cache')))

        print('%s demo %s -o config=%s' % (imapfs, mnt, cfg))
        res = subprocess.run([imapfs, 'demo', mnt, '-o', 'config=' + cfg],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if res.returncode != 0 or not mounted(mnt):
            raise AssertionError('imapfs failed (%d): %s' % (res.returncode, res.stdout))
        check_contents(mnt, seeded)
        subprocess.run(['fusermount3', '-u', mnt], check=True)
        if not wait_gone(mnt):
            raise AssertionError('imapfs still runs after fusermount3 -u')

        print('mount -t fuse.imapfs demo %s -o config=%s' % (mnt, cfg))
        res = subprocess.run(['mount', '-t', 'fuse.imapfs', 'demo', mnt, '-o', 'config=' + cfg],
                             env=MOUNT_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=60)
        if res.returncode != 0 or not mounted(mnt):
            raise AssertionError('mount failed (%d): %s' % (res.returncode, res.stdout))
        exes = daemon_exes(mnt)
        if exes != [os.path.realpath(imapfs)]:
            raise AssertionError('the mounted daemon is %s, not %s' % (exes, imapfs))
        check_contents(mnt, seeded)
        subprocess.run(['umount', mnt], check=True)
        if not wait_gone(mnt):
            raise AssertionError('imapfs still runs after umount')
        return 0
    except (AssertionError, OSError, subprocess.SubprocessError) as e:
        print('deb_demo_mount: %s' % e)
        return 1
    finally:
        if mounted(mnt):
            subprocess.run(['fusermount3', '-uz', mnt])
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: deb_demo_mount.py IMAPFS')
    sys.exit(main(sys.argv[1]))
