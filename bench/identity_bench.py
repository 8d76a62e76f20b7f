#!/usr/bin/python3
"""bench/identity_bench.py — one fetch per message across Gmail labels (issue 23): the bytes a
cold `grep -r` over a Gmail-shaped mount fetches, against the bytes of the distinct messages.

    sudo /usr/bin/python3 bench/identity_bench.py [--messages 1000] [--runs 3]
                                                  [--servers fake,cyrus]

The account: the benchmark corpus (bench/corpus.py, --messages distinct messages) in
"[Gmail]/All Mail", and INBOX, Work, Travel and Receipts holding random subsets (half, 30%,
20%, 20%: ~2.2 folder entries a message, as a Gmail account with a few labels has).  Rows,
each on a fresh mount with an empty disk cache, the modes of a row one after the other:

  fake, ids      tests/fs/hostile_server.py offering X-GM-EXT-1 (X-GM-MSGID in the listing)
  fake, no ids   the same server and account without the extension: what imapfs did before
                 issue 23, and what it still does where a server has no message ids
  cyrus          Cyrus IMAP 3.6 (tests/harness/cyrus.py) with OBJECTID: the messages are
                 APPENDed to All Mail and COPYed into the labels (COPY keeps the EMAILID)

Figures per row: fetched = the daemon's body_bytes_fetched (its stats) over the distinct
messages' bytes (target: <= 1.05 with ids; ~2.2 without), the grep's seconds (median of
--runs), and whether its hits were exactly the needle messages in every folder.  Needs root
(FUSE) and a built imapfs (IMAPFS_BIN, default build/fs/imapfs).  Timings on a shared machine
are noisy; bytes are exact.
"""

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'harness'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'imap'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'fs'))
import corpus  # noqa: E402  (bench/corpus.py)
import cyrus  # noqa: E402
import dovecot  # noqa: E402
from certs import make_pki  # noqa: E402
from hostile_server import HostileServer, PASSWORD, USER  # noqa: E402
from mounts import Mount, write_config  # noqa: E402

IMAPFS = os.environ.get('IMAPFS_BIN', os.path.join(ROOT, 'build', 'fs', 'imapfs'))
os.environ.setdefault('IMAPFS_BIN', IMAPFS)
ALL = '[Gmail]/All Mail'
LABELS = (('INBOX', 0.5), ('Work', 0.3), ('Travel', 0.2), ('Receipts', 0.2))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def account(manifest, seed=1):
    """{folder: [corpus index, ...]} (ascending): All Mail holds every message."""
    rng = random.Random(seed)
    out = {ALL: [m['i'] for m in manifest['messages']]}
    for name, p in LABELS:
        out[name] = [i for i in out[ALL] if rng.random() < p]
    return out


def read_corpus(manifest):
    out = {}
    for m in manifest['messages']:
        with open(os.path.join(manifest['path'], m['file']), 'rb') as f:
            out[m['i']] = f.read()
    return out


def stats(mnt):
    out = subprocess.run(['getfattr', '--only-values', '-n', 'user.imapfs.stats', mnt],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    return dict(kv.split('=', 1) for kv in out.split() if '=' in kv)


def grep_once(tmp, cfg, name, expected):
    """A cold grep -r -l of the needle on a fresh mount: (seconds, bytes fetched, hits ok)."""
    m = Mount(tmp, cfg, name=name, extra=('-o', 'stats'))
    try:
        t0 = time.monotonic()
        res = subprocess.run(['grep', '-r', '-l', corpus.NEEDLE, m.path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        secs = time.monotonic() - t0
        hits = set()
        for line in res.stdout.decode('utf-8', 'replace').splitlines():
            rel = os.path.relpath(line, m.path)
            mm = re.match(r'(.*)/(\d+)/', rel)
            if mm:
                hits.add((mm.group(1), int(mm.group(2))))
        fetched = int(stats(m.path).get('body_bytes_fetched', '-1'))
        return secs, fetched, hits == expected and res.returncode == 0
    finally:
        m.close()


def fake_server(pki, folders, msgs, ids):
    """HostileServer holding the account; UIDs per folder 1..n in corpus order."""
    cert, key = pki['good']
    content = {}
    for folder, idx in folders.items():
        content[folder] = {uid: msgs[i] for uid, i in enumerate(idx, 1)}
    srv = HostileServer(cert, key, folders=content, compress=False)
    lines = [b'* LIST (\\HasNoChildren) "/" "%s"\r\n' % f.encode() for f, _p in LABELS]
    lines += [b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"\r\n',
              b'* LIST (\\HasNoChildren \\All) "/" "[Gmail]/All Mail"\r\n']
    srv.list_lines = lines
    if ids:
        srv.extra_caps = b' X-GM-EXT-1'
        for folder, idx in folders.items():
            for uid, i in enumerate(idx, 1):
                srv.identities[(folder.encode(), uid)] = (
                    str(1278455344230000000 + i), str(1266894439830000000 + i // 3),
                    [b'"\\\\Inbox"'] if folder == 'INBOX' else [])
    return srv


def expected_hits(manifest, folders, uid_of):
    needle = {m['i'] for m in manifest['messages'] if m['needle']}
    return {(f, uid_of(f, i)) for f, idx in folders.items() for i in idx if i in needle}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--messages', type=int, default=1000)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--servers', default='fake,cyrus')
    ap.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()
    servers = args.servers.split(',')
    manifest = corpus.load_or_generate(HERE, args.messages, seed=args.seed, log=log)
    msgs = read_corpus(manifest)
    folders = account(manifest, args.seed)
    distinct = sum(len(b) for b in msgs.values())
    entries = sum(len(v) for v in folders.values())
    log('%d messages, %.1f MB distinct, %d folder entries (%.2f a message)' % (
        len(msgs), distinct / 1e6, entries, entries / len(msgs)))
    tmp = tempfile.mkdtemp(prefix='ifs-idb-')
    rows = []
    try:
        os.makedirs(os.path.join(tmp, 'pki'))
        pki = make_pki(os.path.join(tmp, 'pki'))
        uid_by_pos = {f: {i: uid for uid, i in enumerate(idx, 1)} for f, idx in folders.items()}
        expected = expected_hits(manifest, folders, lambda f, i: uid_by_pos[f][i])
        modes = []
        if 'fake' in servers:
            modes += [('fake, ids', True), ('fake, no ids', False)]
        samples = {name: [] for name, _ids in modes}
        fetched = {}
        ok = {}
        for run in range(args.runs):
            for name, ids in modes:
                srv = fake_server(pki, folders, msgs, ids)
                try:
                    cfg = write_config(
                        os.path.join(tmp, 'cfg-%d-%d' % (run, ids)), host='127.0.0.1',
                        port=str(srv.port), user=USER, password=PASSWORD, ca_file=pki['ca'],
                        cache_dir=os.path.join(tmp, 'cache-%d-%d' % (run, ids)), watch='off',
                        compress='off', refresh='600')
                    secs, got, good = grep_once(tmp, cfg, 'mnt-%d-%d' % (run, ids), expected)
                finally:
                    srv.close()
                samples[name].append(secs)
                fetched[name] = got
                ok[name] = ok.get(name, True) and good
                log('run %d %-14s %.2f s, fetched %.2fx distinct, hits %s' % (
                    run + 1, name, secs, got / distinct, 'ok' if good else 'WRONG'))
        for name, _ids in modes:
            rows.append((name, fetched[name] / distinct, statistics.median(samples[name]),
                         ok[name]))
        if 'cyrus' in servers:
            rows.extend(cyrus_rows(tmp, manifest, msgs, folders, distinct, args.runs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('| server | fetched / distinct bytes | grep -r s (median) | hits |')
    print('|---|---|---|---|')
    failed = False
    for name, ratio, secs, good in rows:
        print('| %s | %.3f | %.2f | %s |' % (name, ratio, secs, 'ok' if good else 'WRONG'))
        failed |= not good or (name != 'fake, no ids' and ratio > 1.05)
    print('target: <= 1.05 with ids (X-GM-EXT-1 on the fake server, OBJECTID on Cyrus)')
    return 1 if failed else 0


def seed_cyrus(cy, folders, msgs):
    """All Mail by APPEND, in corpus order; each label a UID COPY of its messages from All
    Mail (which keeps their EMAILID), so a label's UIDs are 1..n in corpus order as on the fake
    server."""
    for f in folders:
        if f != 'INBOX':
            cy.create_folder(f)
    for i in folders[ALL]:
        cy.append(ALL, msgs[i])
    all_uid = {i: uid for uid, i in enumerate(folders[ALL], 1)}

    def copy_labels(c):
        cy._examine(c, ALL)
        try:
            for f, idx in folders.items():
                if f == ALL:
                    continue
                uidset = ','.join(str(all_uid[i]) for i in idx)
                cy._check(c._simple_command('UID', 'COPY', uidset, dovecot._mailbox_arg(f)),
                          'UID COPY to ' + f)
        finally:
            cy._unselect(c)
    cy._call(copy_labels)
    ids = cy.object_ids(ALL)
    for f in folders:
        if f != ALL and len(cy.object_ids(f)) != len(folders[f]):
            raise SystemExit('cyrus: %s does not hold its %d messages' % (f, len(folders[f])))
    return len({e for e, _t in ids.values()})


def cyrus_rows(tmp, manifest, msgs, folders, distinct, runs):
    """The cyrus row: a real server with OBJECTID (tests/harness/cyrus.py)."""
    samples, fetched, good_all = [], None, True
    with cyrus.Cyrus() as cy:
        log('cyrus: seeding %d messages and %d label entries' % (
            len(folders[ALL]), sum(len(v) for f, v in folders.items() if f != ALL)))
        n_ids = seed_cyrus(cy, folders, msgs)
        log('cyrus: %d distinct EMAILIDs in All Mail' % n_ids)
        uid_by_pos = {f: {i: uid for uid, i in enumerate(idx, 1)} for f, idx in folders.items()}
        expected = expected_hits(manifest, folders, lambda f, i: uid_by_pos[f][i])
        for run in range(runs):
            cfg = write_config(os.path.join(tmp, 'cfg-cyrus-%d' % run), cy,
                               cache_dir=os.path.join(tmp, 'cache-cyrus-%d' % run),
                               watch='off', compress='off', refresh='600')
            secs, got, good = grep_once(tmp, cfg, 'mnt-cyrus-%d' % run, expected)
            samples.append(secs)
            fetched = got
            good_all = good_all and good
            log('run %d cyrus          %.2f s, fetched %.2fx distinct, hits %s' % (
                run + 1, secs, got / distinct, 'ok' if good else 'WRONG'))
    return [('cyrus (OBJECTID)', fetched / distinct, statistics.median(samples), good_all)]


if __name__ == '__main__':
    sys.exit(main())
