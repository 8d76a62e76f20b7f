#!/usr/bin/python3
"""A throwaway, real Dovecot for imapfs integration tests.

Dovecot() builds a private instance under a temporary directory: a throwaway
certificate authority and server certificates (made with the openssl CLI), a
passwd-file with one user, a Maildir, and a dovecot.conf that listens only on
loopback.  It serves IMAP with implicit TLS (port_imaps), plaintext IMAP that
offers STARTTLS (port_starttls), and three deliberately broken implicit-TLS
endpoints (self.bad) so the client's certificate checks can be tested: an
expired certificate, a certificate from an unknown CA, and a certificate for
the wrong host name.  The broken endpoints listen on 127.0.0.2/3/4 and get
their certificates from Dovecot `local IP { ... }` blocks.

It also carries mail helpers (create/delete folders, append, fetch, flags,
expunge) that talk IMAP through imaplib over TLS, process control for fault
tests (kill, restart), and a CLI used by meson to wrap C integration tests:

    dovecot.py run [--seed] [--separator /] [--no-condstore] -- CMD ARGS...
    dovecot.py start --dir DIR [--seed] [--separator /] [--no-condstore]
    dovecot.py env --dir DIR          # shell lines, including the password
    dovecot.py stop --dir DIR

Python 3 standard library only.  Must run as root (Dovecot drops privileges
to the 'dovecot' and 'dovenull' users itself).

Dovecot(condstore=False) (CLI --no-condstore) is a server without RFC 7162:
its CAPABILITY (imap_capability = NO_CONDSTORE_CAPABILITY) advertises neither
CONDSTORE nor QRESYNC nor ENABLE, so a client that asks the capability list
never enables them, and EXAMINE then carries no HIGHESTMODSEQ.  Dovecot still
honours them if a client uses them unasked (e.g. EXAMINE x (CONDSTORE)): tests
should assert that the client did not.

Dovecot(oauth2=True) also offers AUTH=OAUTHBEARER and AUTH=XOAUTH2 (or only
those named, oauth2='xoauth2') through the oauth2 passdb, which introspects tokens at a stdlib HTTP endpoint on
loopback (oauth_server.py, self.oauth): self.oauth.grant(token, user) makes a
token good, self.oauth.revoke(token) bad again.  If Dovecot or openssl is
missing, start() raises: integration tests fail, they never skip.

Dovecot(compress=True) loads the imap_zlib plugin, so the server offers
COMPRESS=DEFLATE (RFC 4978) after the login.  compress=None (the default) takes
it from the environment: IMAPFS_TEST_COMPRESS=1 turns it on for every instance
a test starts, which is how meson runs the whole integration suite once more
with compression (the *_compress tests).
"""

import argparse
import atexit
import base64
import datetime
import imaplib
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time

HOST = '127.0.0.1'
# Each broken endpoint has its own loopback address, so a `local IP` block can
# hand it its own certificate (Dovecot picks ssl_cert by local IP, not port).
BAD_HOSTS = {
    'expired': '127.0.0.2',
    'unknown_ca': '127.0.0.3',
    'wrong_host': '127.0.0.4',
}
WRONG_HOST_NAME = 'other.example'
# Dovecot treats a connection whose remote IP equals its local IP as secure
# and then omits LOGINDISABLED on the plaintext port.  A second STARTTLS
# listener on another loopback address (the kernel picks source 127.0.0.1)
# is not "secure" before STARTTLS, so it advertises LOGINDISABLED.
STRICT_HOST = '127.0.0.5'
# Dovecot 2.3's own post-login CAPABILITY without CONDSTORE, QRESYNC and ENABLE (whose only
# use in 2.3 is enabling those two), and without the late-2.3 additions (SNIPPET, PREVIEW,
# STATUS=SIZE, SAVEDATE, NOTIFY) so that no 2.3 release claims what it cannot do.  Login
# capabilities (STARTTLS, AUTH=, LOGINDISABLED) are added by imap-login as usual.
NO_CONDSTORE_CAPABILITY = (
    'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID IDLE SORT SORT=DISPLAY THREAD=REFERENCES '
    'THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN '
    'NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH ESORT SEARCHRES WITHIN '
    'CONTEXT=SEARCH LIST-STATUS BINARY MOVE LITERAL+')
USER = 'alice'
# Unix socket paths under base_dir must fit in sun_path (108 bytes); the
# longest Dovecot socket name below base_dir is about 40 bytes.
MAX_BASE_DIR = 60
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class HarnessError(RuntimeError):
    """The harness could not set up or control Dovecot."""


# ---------------------------------------------------------------------------
# Modified UTF-7 (RFC 3501 section 5.1.3), written here so the harness does
# not share code (or bugs) with the client under test.

def mutf7_encode(name):
    """Encode a Unicode folder name to IMAP modified UTF-7 (str, ASCII)."""
    out = []
    pending = []

    def flush():
        if pending:
            raw = ''.join(pending).encode('utf-16-be')
            b64 = base64.b64encode(raw).decode('ascii').rstrip('=')
            out.append('&' + b64.replace('/', ',') + '-')
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append('&-' if ch == '&' else ch)
        else:
            pending.append(ch)
    flush()
    return ''.join(out)


def mutf7_decode(name):
    """Decode an IMAP modified UTF-7 folder name (str or bytes) to Unicode."""
    if isinstance(name, bytes):
        name = name.decode('ascii')
    out = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch != '&':
            out.append(ch)
            i += 1
            continue
        end = name.index('-', i)
        chunk = name[i + 1:end]
        if chunk == '':
            out.append('&')
        else:
            b64 = chunk.replace(',', '/')
            b64 += '=' * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode('utf-16-be'))
        i = end + 1
    return ''.join(out)


def imap_quote(s):
    """Quote an ASCII string as an IMAP quoted string."""
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def _mailbox_arg(name_utf8):
    return imap_quote(mutf7_encode(name_utf8))


# ---------------------------------------------------------------------------
# Small process and socket helpers.

def _free_port(addr):
    """Return a port that is free on addr right now.

    Chosen below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by
    default) rather than by binding port 0: an ephemeral port is what every outgoing connection
    of a parallel test gets, so after kill() one of them could take our port before restart().
    """
    low, high = 20000, 32767
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            eph_low = int(f.read().split()[0])
        high = min(high, eph_low - 1)
    except (OSError, ValueError, IndexError):
        pass
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((addr, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f'no free port on {addr} in {low}-{high}')


def _port_accepts(addr, port):
    try:
        with socket.create_connection((addr, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _descendants(pid):
    """All live descendants of pid, found by walking /proc ppid links."""
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            found.append(c)
            todo.append(c)
    return found


def _wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_pid_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(_pid_alive(p) for p in pids)


def _run(cmd, cwd=None):
    try:
        res = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    except FileNotFoundError as e:
        raise HarnessError('%s not found: install it (%s)' % (cmd[0], e))
    if res.returncode != 0:
        raise HarnessError('%s failed (%d): %s' % (
            ' '.join(cmd), res.returncode,
            res.stdout.decode('utf-8', 'replace')[-2000:]))
    return res.stdout


def _asn1_time(dt):
    return dt.strftime('%Y%m%d%H%M%SZ')


# ---------------------------------------------------------------------------
# Certificates.  `openssl ca` is used for every leaf because it is the only
# way in OpenSSL 3.0 to set an explicit validity window in the past (x509
# -not_before/-not_after only arrived in 3.4).

_OPENSSL_CNF = """\
# Generated by tests/harness/dovecot.py: throwaway test CA, never trusted.
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ ca ]
default_ca = throwaway
[ throwaway ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
policy = any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ any ]
commonName = supplied
[ leaf_good ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1, IP:{strict_ip}
[ leaf_expired ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:{expired_ip}
[ leaf_unknown ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:{unknown_ip}
[ leaf_wrong ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:{wrong_name}
"""


def _make_ca(d, cn):
    os.makedirs(os.path.join(d, 'newcerts'))
    with open(os.path.join(d, 'index.txt'), 'w'):
        pass
    with open(os.path.join(d, 'serial'), 'w') as f:
        f.write('%016X\n' % secrets.randbits(62))
    with open(os.path.join(d, 'openssl.cnf'), 'w') as f:
        f.write(_OPENSSL_CNF.format(dir=d, expired_ip=BAD_HOSTS['expired'],
                                    unknown_ip=BAD_HOSTS['unknown_ca'], strict_ip=STRICT_HOST,
                                    wrong_name=WRONG_HOST_NAME))
    _run(['openssl', 'req', '-x509', '-config', os.path.join(d, 'openssl.cnf'),
          '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
          '-nodes', '-keyout', os.path.join(d, 'ca.key'),
          '-out', os.path.join(d, 'ca.pem'), '-days', '3650',
          '-subj', '/CN=' + cn, '-extensions', 'ca_ext'])


def _make_leaf(ca_dir, out_dir, name, cn, ext, start, end):
    cnf = os.path.join(ca_dir, 'openssl.cnf')
    key = os.path.join(out_dir, name + '.key')
    csr = os.path.join(out_dir, name + '.csr')
    crt = os.path.join(out_dir, name + '.pem')
    _run(['openssl', 'req', '-new', '-config', cnf, '-newkey', 'ec',
          '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
          '-keyout', key, '-out', csr, '-subj', '/CN=' + cn])
    _run(['openssl', 'ca', '-batch', '-config', cnf, '-extensions', ext,
          '-startdate', _asn1_time(start), '-enddate', _asn1_time(end),
          '-notext', '-in', csr, '-out', crt])
    return crt, key


def make_certs(cert_dir):
    """Create the throwaway CAs and server certificates in cert_dir.

    Returns a dict of paths: ca_file, good, expired, unknown_ca, wrong_host
    (each of the last four a (cert, key) pair)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    day = datetime.timedelta(days=1)
    ca = os.path.join(cert_dir, 'ca')
    other = os.path.join(cert_dir, 'other-ca')
    _make_ca(ca, 'imapfs throwaway test CA')
    _make_ca(other, 'imapfs unknown test CA')
    return {
        'ca_file': os.path.join(ca, 'ca.pem'),
        'good': _make_leaf(ca, cert_dir, 'good', 'localhost', 'leaf_good',
                           now - day, now + 3650 * day),
        'expired': _make_leaf(ca, cert_dir, 'expired', 'localhost',
                              'leaf_expired', now - 400 * day, now - 30 * day),
        'unknown_ca': _make_leaf(other, cert_dir, 'unknown-ca', 'localhost',
                                 'leaf_unknown', now - day, now + 3650 * day),
        'wrong_host': _make_leaf(ca, cert_dir, 'wrong-host', WRONG_HOST_NAME,
                                 'leaf_wrong', now - day, now + 3650 * day),
    }


# ---------------------------------------------------------------------------

_CONF = """\
# Generated by tests/harness/dovecot.py for one throwaway test instance.
base_dir = {base_dir}
state_dir = {state_dir}
instance_name = {instance}
log_path = {log}
info_log_path = {log}
protocols = imap
listen = 127.0.0.1
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 0
mail_fsync = never
shutdown_clients = yes
# The stats service is not needed, and login processes waiting for its
# handshake slowed shutdown by seconds.
stats_writer_socket_path =
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = {auth_mechanisms}
mail_location = {mail_location}
namespace inbox {{
  inbox = yes
  separator = {separator}
  prefix =
{mailboxes}}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port_starttls}
  }}
  inet_listener imap_strict {{
    address = {host_strict}
    port = {port_strict}
  }}
  inet_listener imaps {{
    address = {host}
    port = {port_imaps}
    ssl = yes
  }}
  inet_listener imaps_expired {{
    address = {host_expired}
    port = {port_expired}
    ssl = yes
  }}
  inet_listener imaps_unknown_ca {{
    address = {host_unknown_ca}
    port = {port_unknown_ca}
    ssl = yes
  }}
  inet_listener imaps_wrong_host {{
    address = {host_wrong_host}
    port = {port_wrong_host}
    ssl = yes
  }}
}}
local {host_expired} {{
  ssl_cert = <{cert_expired}
  ssl_key = <{key_expired}
}}
local {host_unknown_ca} {{
  ssl_cert = <{cert_unknown_ca}
  ssl_key = <{key_unknown_ca}
}}
local {host_wrong_host} {{
  ssl_cert = <{cert_wrong_host}
  ssl_key = <{key_wrong_host}
}}
"""

# Dovecot(oauth2=True): OAUTHBEARER and XOAUTH2 besides plain/login, checked by the oauth2
# passdb against the harness's introspection endpoint (oauth_server.py).  Password logins
# still succeed in the passwd-file passdb first (the mail helpers use them); a token fails
# there and goes on to this one.  Failed logins would otherwise slow every later login from
# 127.0.0.1 (anvil's auth penalty), and these tests fail logins on purpose.
_OAUTH2_CONF = """\
passdb {{
  driver = oauth2
  mechanisms = {mechanisms}
  args = {oauth2_conf}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

_OAUTH2_PASSDB_CONF = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""

# Dovecot(compress=True): COMPRESS=DEFLATE (RFC 4978) through the imap_zlib plugin of
# dovecot-core, offered in the post-login CAPABILITY.
_COMPRESS_CONF = """\
protocol imap {
  mail_plugins = $mail_plugins imap_zlib
}
"""

# Every started instance, so a crashed test run still stops its Dovecot.
_live = set()
_live_lock = threading.Lock()


def _stop_all_at_exit():
    with _live_lock:
        items = list(_live)
    for d in items:
        try:
            d.stop()
        except Exception:
            pass


atexit.register(_stop_all_at_exit)


class Dovecot:
    """One throwaway Dovecot instance; see the module docstring.

    Folder names given to the mail helpers are full IMAP names in Unicode,
    using this instance's hierarchy separator (self.separator).  condstore=False: a
    server that does not offer CONDSTORE/QRESYNC (see the module docstring);
    qresync=False: one that offers CONDSTORE (and ENABLE) but not QRESYNC."""

    def __init__(self, workdir=None, separator='/', condstore=True, oauth2=False,
                 qresync=True, compress=None, quota=None, special_use=None):
        if separator not in ('/', '.'):
            raise ValueError("separator must be '/' or '.'")
        if compress is None:
            compress = os.environ.get('IMAPFS_TEST_COMPRESS', '') not in ('', '0')
        self.compress = bool(compress)
        self.separator = separator
        self.condstore = bool(condstore)
        self.qresync = bool(qresync) and self.condstore
        # True: both mechanisms; or a string naming the ones to offer (e.g. 'xoauth2')
        self.oauth2 = 'oauthbearer xoauth2' if oauth2 is True else (oauth2 or '')
        self.oauth = None  # with oauth2: the IntrospectionServer (grant/revoke tokens)
        # quota: Dovecot's quota and imap_quota plugins with these quota roots, each a
        # (name, rule) such as ('User quota', '*:storage=1M:messages=50') (count backend)
        self.quota = list(quota or [])
        # special_use: {mailbox name (UTF-8, this separator): RFC 6154 attribute(s), e.g.
        # '\\Junk'}, declared in the namespace (Dovecot then marks them in LIST and offers
        # SPECIAL-USE); the mailboxes are not created
        self.special_use = dict(special_use or {})
        self._own_workdir = workdir is None
        self.workdir = os.path.abspath(workdir) if workdir else None
        self._own_base_dir = False
        self.base_dir = None
        self.host = HOST
        self.port_imaps = None
        self.port_starttls = None
        self.user = USER
        self.password = None
        self.ca_file = None
        self.bad = {}
        self.starttls_strict = None
        self.conf = None
        self.log = None
        self.master_pid = None
        self._certs = None
        self._started = False
        self._conn = None
        self._lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self._cleanup_dirs()
            raise

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self._cleanup_dirs()
        return False

    def _stop_oauth(self):
        if self.oauth is not None:
            self.oauth.stop()
            self.oauth = None

    def start(self):
        """Create everything and start Dovecot; return self once ports accept."""
        if os.geteuid() != 0:
            raise HarnessError('the Dovecot harness must run as root')
        for tool in ('dovecot', 'openssl'):
            if shutil.which(tool) is None:
                raise HarnessError('%s is not installed (apt-get install %s)' % (
                    tool, 'dovecot-imapd' if tool == 'dovecot' else tool))
        self._prepare()
        last = None
        for _attempt in range(5):
            self._pick_ports()
            self._write_conf()
            try:
                self._launch()
                return self
            except HarnessError as e:
                last = e
                # Another process took one of our ports between the probe
                # and Dovecot's bind: pick new ports and try again.
                if 'in use' not in str(e):
                    raise
        raise last

    def restart(self):
        """Start again on the same ports with the same mail (after kill/stop)."""
        if self._started:
            self.stop()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self._launch()
                return self
            except HarnessError as e:
                # A just-killed listener can linger briefly (a TCP port in use, or a
                # unix socket a dying process still accepts on); retry.
                if ('in use' not in str(e) and 'Socket already exists' not in str(e)) or \
                        time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self):
        """Stop Dovecot and wait until every process of it is gone."""
        with self._lock:
            self._drop_conn()
        if not self._started:
            return
        pid = self._read_pid()
        pids = [pid] + _descendants(pid) if pid else []
        # SIGTERM to the master is what `dovecot stop` sends, but that
        # command then polls for about 3 s; waiting ourselves takes about 1 s.
        sent = False
        if pid and _pid_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
                sent = True
            except ProcessLookupError:
                pass
        if not sent:
            try:
                subprocess.run(['dovecot', '-c', self.conf, 'stop'],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=STOP_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if pids and not _wait_gone(pids, STOP_TIMEOUT):
            self._kill_pids(pids + [p for p in _descendants(pid)])
        self._mark_stopped()

    def kill(self):
        """SIGKILL the master and all its children (a crash, for fault tests)."""
        with self._lock:
            self._drop_conn()
        pid = self._read_pid()
        if pid:
            self._kill_pids([pid] + _descendants(pid))
        self._mark_stopped()

    def _kill_pids(self, pids):
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not _wait_gone(pids, STOP_TIMEOUT):
            raise HarnessError('Dovecot processes survived SIGKILL: %r' % pids)

    def _mark_stopped(self):
        self._started = False
        self.master_pid = None
        with _live_lock:
            _live.discard(self)
        pidfile = os.path.join(self.base_dir, 'master.pid') if self.base_dir else None
        if pidfile and os.path.exists(pidfile):
            try:
                os.unlink(pidfile)
            except OSError:
                pass

    def _cleanup_dirs(self):
        self._stop_oauth()
        if self._own_base_dir and self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def cleanup(self):
        """Stop (if running) and remove directories this object created."""
        try:
            self.stop()
        finally:
            self._cleanup_dirs()

    # -- setup -------------------------------------------------------------

    def _prepare(self):
        if self.conf is not None:
            return
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix='dv', dir='/tmp')
        os.makedirs(self.workdir, exist_ok=True)
        self._check_searchable(os.path.dirname(self.workdir))
        # The dovecot user must traverse to its home and the login user to
        # nothing else; 0755 on our own directories is enough.
        os.chmod(self.workdir, 0o755)
        self.base_dir = os.path.join(self.workdir, 'run')
        if len(self.base_dir) > MAX_BASE_DIR:
            self.base_dir = tempfile.mkdtemp(prefix='dvrun', dir='/tmp')
            self._own_base_dir = True
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        for sub in ('state', 'certs', 'home'):
            os.makedirs(os.path.join(self.workdir, sub), exist_ok=True)
        self.log = os.path.join(self.workdir, 'dovecot.log')
        self.conf = os.path.join(self.workdir, 'dovecot.conf')
        self._certs = make_certs(os.path.join(self.workdir, 'certs'))
        self.ca_file = self._certs['ca_file']
        # Login processes never read keys (the config process passes them),
        # so the private keys can stay root-only.
        self.password = ''.join(secrets.choice(string.ascii_letters + string.digits)
                                for _ in range(20))
        dv = pwd.getpwnam('dovecot')
        home = os.path.join(self.workdir, 'home', self.user)
        os.makedirs(home, exist_ok=True)
        os.chown(home, dv.pw_uid, dv.pw_gid)
        os.chmod(home, 0o700)
        passwd = os.path.join(self.workdir, 'passwd')
        with open(passwd, 'w') as f:
            f.write('%s:{PLAIN}%s:%d:%d::%s::\n' % (
                self.user, self.password, dv.pw_uid, dv.pw_gid, home))
        # The auth process runs as the dovecot user and reads this file.
        os.chown(passwd, 0, dv.pw_gid)
        os.chmod(passwd, 0o640)
        self._passwd = passwd
        self._instance = 'imapfs-test-' + secrets.token_hex(4)

    @staticmethod
    def _check_searchable(path):
        """Fail early if the dovecot user cannot reach path (it reads the
        passwd file and its home below the work directory)."""
        dv = pwd.getpwnam('dovecot')
        while True:
            st = os.stat(path)
            ok = (st.st_mode & 0o001 or
                  (st.st_gid == dv.pw_gid and st.st_mode & 0o010) or
                  (st.st_uid == dv.pw_uid and st.st_mode & 0o100))
            if not ok:
                raise HarnessError('directory %s is not searchable by the dovecot '
                                   'user: chmod o+x it or use another work '
                                   'directory' % path)
            if path == '/':
                return
            path = os.path.dirname(path)

    def _pick_ports(self):
        taken = set()

        def pick(addr):
            while True:
                p = _free_port(addr)
                if p not in taken:
                    taken.add(p)
                    return p
        self.port_starttls = pick(HOST)
        self.port_imaps = pick(HOST)
        self.starttls_strict = (STRICT_HOST, pick(STRICT_HOST))
        self.bad = {k: (BAD_HOSTS[k], pick(BAD_HOSTS[k])) for k in
                    ('expired', 'unknown_ca', 'wrong_host')}

    def _write_conf(self):
        if self.separator == '/':
            loc = 'maildir:~/Maildir:LAYOUT=fs'
        else:
            loc = 'maildir:~/Maildir'
        c = self._certs
        text = _CONF.format(
            base_dir=self.base_dir,
            state_dir=os.path.join(self.workdir, 'state'),
            instance=self._instance, log=self.log, cert=c['good'][0],
            key=c['good'][1], mail_location=loc, separator=self.separator,
            passwd=self._passwd, host=HOST, port_starttls=self.port_starttls,
            port_imaps=self.port_imaps, host_strict=self.starttls_strict[0],
            port_strict=self.starttls_strict[1],
            host_expired=self.bad['expired'][0],
            port_expired=self.bad['expired'][1],
            host_unknown_ca=self.bad['unknown_ca'][0],
            port_unknown_ca=self.bad['unknown_ca'][1],
            host_wrong_host=self.bad['wrong_host'][0],
            port_wrong_host=self.bad['wrong_host'][1],
            cert_expired=c['expired'][0], key_expired=c['expired'][1],
            cert_unknown_ca=c['unknown_ca'][0], key_unknown_ca=c['unknown_ca'][1],
            cert_wrong_host=c['wrong_host'][0], key_wrong_host=c['wrong_host'][1],
            auth_mechanisms=('plain login ' + self.oauth2).strip(),
            mailboxes=''.join('  mailbox "%s" {\n    special_use = %s\n  }\n' % (name, use)
                              for name, use in self.special_use.items()))
        # an explicit list replaces the plugins' additions too: name COMPRESS there
        zcap = ' COMPRESS=DEFLATE' if self.compress else ''
        if not self.condstore:
            text += 'imap_capability = %s%s\n' % (NO_CONDSTORE_CAPABILITY, zcap)
        elif not self.qresync:
            text += 'imap_capability = %s ENABLE CONDSTORE%s\n' % (NO_CONDSTORE_CAPABILITY, zcap)
        if self.oauth2:
            text += self._oauth2_conf()
        if self.compress:
            text += _COMPRESS_CONF
        if self.quota:
            text += self._quota_conf()
        with open(self.conf, 'w') as f:
            f.write(text)

    def _quota_conf(self):
        lines = ['mail_plugins = $mail_plugins quota',
                 'protocol imap {', '  mail_plugins = $mail_plugins imap_quota', '}',
                 'plugin {', '  quota_vsizes = yes']
        for i, (name, rule) in enumerate(self.quota):
            n = '' if i == 0 else str(i + 1)
            lines += ['  quota%s = count:%s' % (n, name), '  quota%s_rule = %s' % (n, rule)]
        return '\n'.join(lines + ['}', ''])

    def getquotaroot(self, folder_utf8='INBOX'):
        """GETQUOTAROOT as the server answers it: {root: {resource: (usage, limit)}} for
        each root of the folder."""
        def fn(c):
            typ, data = c.getquotaroot(_mailbox_arg(folder_utf8))
            self._check((typ, data), 'GETQUOTAROOT')
            roots, out = [], {}
            for line in data[0] + data[1]:
                line = line.decode() if isinstance(line, bytes) else line
                m = re.match(r'^(?:"([^"]*)"|(\S+)) \((.*)\)$', line)
                if m:
                    root = m.group(1) if m.group(1) is not None else m.group(2)
                    f = m.group(3).split()
                    out[root] = {f[i].upper(): (int(f[i + 1]), int(f[i + 2]))
                                 for i in range(0, len(f) - 2, 3)}
            return out
        return self._call(fn)

    def _oauth2_conf(self):
        if self.oauth is None:
            here = os.path.dirname(os.path.abspath(__file__))
            if here not in sys.path:
                sys.path.insert(0, here)
            from oauth_server import IntrospectionServer
            self.oauth = IntrospectionServer(HOST)
        path = os.path.join(self.workdir, 'dovecot-oauth2.conf.ext')
        with open(path, 'w') as f:
            f.write(_OAUTH2_PASSDB_CONF.format(url=self.oauth.url))
        os.chmod(path, 0o644)
        return _OAUTH2_CONF.format(oauth2_conf=path, mechanisms=self.oauth2)

    def _endpoints(self):
        return ([(HOST, self.port_starttls), (HOST, self.port_imaps),
                 self.starttls_strict] +
                list(self.bad.values()))

    def _launch(self):
        log_start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        # Not a pipe: the daemonized master inherits stdout and would keep
        # a pipe open forever.
        out_path = os.path.join(self.workdir, 'dovecot.out')
        with open(out_path, 'wb') as out_f:
            res = subprocess.run(['dovecot', '-c', self.conf], stdin=subprocess.DEVNULL,
                                 stdout=out_f, stderr=subprocess.STDOUT)
        with open(out_path, 'rb') as out_f:
            out = out_f.read().decode('utf-8', 'replace')
        if res.returncode != 0:
            raise HarnessError('dovecot failed to start (%d): %s\n--- log tail:\n%s' % (
                res.returncode, out.strip(), self.log_tail(log_start)))
        self._started = True
        with _live_lock:
            _live.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        pending = self._endpoints()
        self.master_pid = None
        # The listeners exist before the master daemonizes, but master.pid is
        # written after, so wait for both.
        while True:
            pid = self._read_pid()
            if pid is not None and not _pid_alive(pid):
                self._mark_stopped()
                raise HarnessError('dovecot exited during start\n--- log tail:\n%s'
                                   % self.log_tail(log_start))
            pending = [ep for ep in pending if not _port_accepts(*ep)]
            if not pending and pid is not None:
                break
            if time.monotonic() > deadline:
                tail = self.log_tail(log_start)
                self.stop()
                raise HarnessError('dovecot did not accept on %r within %ds\n'
                                   '--- log tail:\n%s' % (pending, START_TIMEOUT, tail))
            time.sleep(0.05)
        self.master_pid = self._read_pid()

    def _read_pid(self):
        try:
            with open(os.path.join(self.base_dir, 'master.pid')) as f:
                return int(f.read().strip())
        except (OSError, ValueError, TypeError):
            return self.master_pid

    def log_tail(self, offset=0, max_bytes=4000):
        """The Dovecot log from byte offset on (at most max_bytes, the end)."""
        try:
            with open(self.log, 'rb') as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return '(no log)'
        return data[-max_bytes:].decode('utf-8', 'replace')

    def processes(self):
        """PIDs of the master and every child (empty when not running)."""
        pid = self._read_pid()
        if not pid or not _pid_alive(pid):
            return []
        return [pid] + _descendants(pid)

    # -- environment and persistence ----------------------------------------

    def env(self):
        """Environment variables telling a test program how to connect."""
        e = {
            'IMAPFS_TEST_HOST': self.host,
            'IMAPFS_TEST_PORT_IMAPS': str(self.port_imaps),
            'IMAPFS_TEST_PORT_STARTTLS': str(self.port_starttls),
            'IMAPFS_TEST_USER': self.user,
            'IMAPFS_TEST_PASSWORD': self.password,
            'IMAPFS_TEST_CA_FILE': self.ca_file,
            'IMAPFS_TEST_SEPARATOR': self.separator,
            'IMAPFS_TEST_STARTTLS_STRICT_HOST': self.starttls_strict[0],
            'IMAPFS_TEST_STARTTLS_STRICT_PORT': str(self.starttls_strict[1]),
        }
        for key, name in (('expired', 'EXPIRED'), ('unknown_ca', 'UNKNOWN_CA'),
                          ('wrong_host', 'WRONG_HOST')):
            e['IMAPFS_TEST_%s_HOST' % name] = self.bad[key][0]
            e['IMAPFS_TEST_%s_PORT' % name] = str(self.bad[key][1])
        return e

    def _state(self):
        return {
            'workdir': self.workdir, 'base_dir': self.base_dir,
            'own_base_dir': self._own_base_dir, 'separator': self.separator,
            'condstore': self.condstore,
            'qresync': self.qresync,
            'compress': self.compress,
            'conf': self.conf, 'log': self.log, 'password': self.password,
            'ca_file': self.ca_file, 'port_imaps': self.port_imaps,
            'port_starttls': self.port_starttls,
            'bad': {k: list(v) for k, v in self.bad.items()},
            'starttls_strict': list(self.starttls_strict),
            'master_pid': self._read_pid(), 'instance': self._instance,
            'passwd': self._passwd, 'certs': self._certs,
        }

    def save_state(self):
        path = os.path.join(self.workdir, 'harness.json')
        with open(path + '.tmp', 'w') as f:
            json.dump(self._state(), f, indent=1)
        os.chmod(path + '.tmp', 0o600)
        os.replace(path + '.tmp', path)
        return path

    @classmethod
    def from_state(cls, workdir):
        """Re-attach to an instance started detached by `start --dir`."""
        with open(os.path.join(workdir, 'harness.json')) as f:
            st = json.load(f)
        d = cls(workdir=st['workdir'], separator=st['separator'],
                condstore=st.get('condstore', True), qresync=st.get('qresync', True),
                compress=st.get('compress', False))
        d._own_workdir = False
        d.base_dir = st['base_dir']
        d._own_base_dir = st['own_base_dir']
        d.conf, d.log, d.password = st['conf'], st['log'], st['password']
        d.ca_file = st['ca_file']
        d.port_imaps, d.port_starttls = st['port_imaps'], st['port_starttls']
        d.bad = {k: tuple(v) for k, v in st['bad'].items()}
        d.starttls_strict = tuple(st['starttls_strict'])
        d.master_pid = st['master_pid']
        d._instance, d._passwd, d._certs = st['instance'], st['passwd'], st['certs']
        d._started = d.master_pid is not None and _pid_alive(d.master_pid)
        return d

    # -- IMAP admin connection ---------------------------------------------

    def ssl_context(self):
        """A client context that trusts only this instance's CA."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def connect(self, starttls=False):
        """A new logged-in imaplib connection (caller logs out)."""
        ctx = self.ssl_context()
        if starttls:
            c = imaplib.IMAP4(self.host, self.port_starttls, timeout=30)
            c.starttls(ssl_context=ctx)
        else:
            c = imaplib.IMAP4_SSL(self.host, self.port_imaps, ssl_context=ctx,
                                  timeout=30)
        c.login(self.user, self.password)
        return c

    def _drop_conn(self):
        if self._conn is not None:
            try:
                self._conn.shutdown()
            except Exception:
                pass
            self._conn = None

    def _call(self, fn):
        """Run fn(conn) on the cached admin connection, reconnecting once."""
        with self._lock:
            for attempt in (0, 1):
                if self._conn is None:
                    self._conn = self.connect()
                try:
                    return fn(self._conn)
                except (imaplib.IMAP4.abort, OSError, EOFError):
                    self._drop_conn()
                    if attempt:
                        raise

    @staticmethod
    def _check(res, what):
        typ, data = res
        if typ != 'OK':
            raise HarnessError('%s: %s %r' % (what, typ, data))
        return data

    # -- mail helpers --------------------------------------------------------

    def create_folder(self, name_utf8):
        """CREATE (and SUBSCRIBE) a folder; parents are created as needed."""
        def fn(c):
            self._check(c._simple_command('CREATE', _mailbox_arg(name_utf8)),
                        'CREATE ' + name_utf8)
            c._simple_command('SUBSCRIBE', _mailbox_arg(name_utf8))
        self._call(fn)

    def delete_folder(self, name_utf8):
        def fn(c):
            c._simple_command('UNSUBSCRIBE', _mailbox_arg(name_utf8))
            self._check(c._simple_command('DELETE', _mailbox_arg(name_utf8)),
                        'DELETE ' + name_utf8)
        self._call(fn)

    def recreate_folder(self, name_utf8):
        """Give a folder a second life: DELETE it, then CREATE it again under a new
        UIDVALIDITY, empty, its UIDs counted from 1.

        Dovecot's UIDVALIDITY is a timestamp in seconds, so the CREATE waits for a new second.
        A mount that still has the folder open may bring its Maildir back before the CREATE
        (Dovecot 2.3.19 writes the index files of a mailbox a session is syncing, and the
        directory they live in is the mailbox): the CREATE is then answered [ALREADYEXISTS],
        seen in CI under load.  Such a resurrected folder is deleted again, a few times at most.
        Returns the new UIDVALIDITY, which differs from the old one."""
        old = self.uidvalidity(name_utf8)
        self.delete_folder(name_utf8)
        time.sleep(1.1)
        for attempt in range(5):
            try:
                self.create_folder(name_utf8)
                break
            except HarnessError as e:
                if 'ALREADYEXISTS' not in str(e) or attempt == 4:
                    raise
                self.delete_folder(name_utf8)
                time.sleep(0.2)
        new = self.uidvalidity(name_utf8)
        if new == old:
            raise HarnessError('recreate %s: UIDVALIDITY %d did not change' % (name_utf8, old))
        return new

    def rename_folder(self, old_utf8, new_utf8):
        def fn(c):
            self._check(c._simple_command('RENAME', _mailbox_arg(old_utf8),
                                          _mailbox_arg(new_utf8)),
                        'RENAME ' + old_utf8)
        self._call(fn)

    def list_folders(self):
        """[(name_utf8, flags tuple, delimiter)] from LIST "" "*"."""
        def fn(c):
            data = self._check(c.list('""', '"*"'), 'LIST')
            out = []
            for line in data:
                if line is None or line == b')':
                    continue
                literal = None
                if isinstance(line, tuple):   # name sent as a literal
                    line, literal = line
                m = re.match(rb'\(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$', line)
                if not m:
                    raise HarnessError('unparsed LIST line %r' % (line,))
                flags = tuple(m.group(1).decode().split())
                delim = None if m.group(2) == b'NIL' else m.group(2)[1:-1].decode()
                name = m.group(3)
                if literal is not None:
                    name = literal
                elif name.startswith(b'"'):
                    name = re.sub(rb'\\(.)', rb'\1', name[1:-1])
                out.append((mutf7_decode(name), flags, delim))
            return out
        return self._call(fn)

    def append(self, folder_utf8, raw_bytes, flags=(), date=None):
        """APPEND a message; return its UID (from APPENDUID).

        raw_bytes should use CRLF line ends for a byte-exact fetch_raw().
        date: datetime or epoch seconds for INTERNALDATE (default: now)."""
        flag_str = '(' + ' '.join(flags) + ')' if flags else None
        date_str = imaplib.Time2Internaldate(date) if date is not None else None

        def fn(c):
            data = self._check(c.append(_mailbox_arg(folder_utf8), flag_str,
                                        date_str, raw_bytes),
                               'APPEND ' + folder_utf8)
            m = re.search(rb'\[APPENDUID (\d+) (\d+)\]', data[0] or b'')
            if not m:
                raise HarnessError('APPEND gave no APPENDUID: %r' % data)
            return int(m.group(2))
        return self._call(fn)

    def _examine(self, c, folder_utf8, readonly=True):
        self._check(c.select(_mailbox_arg(folder_utf8), readonly=readonly),
                    ('EXAMINE ' if readonly else 'SELECT ') + folder_utf8)

    def _unselect(self, c):
        try:
            c.unselect()
        except imaplib.IMAP4.error:
            pass

    def fetch_raw(self, folder_utf8, uid):
        """The message's exact bytes (UID FETCH BODY.PEEK[], read-only)."""
        def fn(c):
            self._examine(c, folder_utf8)
            try:
                data = self._check(c.uid('FETCH', str(uid), '(BODY.PEEK[])'),
                                   'UID FETCH')
            finally:
                self._unselect(c)
            for item in data:
                if isinstance(item, tuple):
                    return item[1]
            raise HarnessError('no message with UID %s in %s' % (uid, folder_utf8))
        return self._call(fn)

    def flags(self, folder_utf8):
        """{uid: tuple(flags)} via EXAMINE; \\Recent (per-session) is left out."""
        def fn(c):
            self._examine(c, folder_utf8)
            try:
                data = self._check(c.uid('FETCH', '1:*', '(FLAGS)'), 'UID FETCH')
            finally:
                self._unselect(c)
            out = {}
            for item in data:
                if item is None:
                    continue
                if isinstance(item, tuple):
                    item = item[0]
                mu = re.search(rb'UID (\d+)', item)
                mf = re.search(rb'FLAGS \(([^)]*)\)', item)
                if mu and mf:
                    fl = tuple(f for f in mf.group(1).decode().split()
                               if f != '\\Recent')
                    out[int(mu.group(1))] = fl
            return out
        return self._call(fn)

    def uids(self, folder_utf8):
        def fn(c):
            self._examine(c, folder_utf8)
            try:
                data = self._check(c.uid('SEARCH', 'ALL'), 'UID SEARCH')
            finally:
                self._unselect(c)
            return sorted(int(x) for x in b' '.join(d for d in data if d).split())
        return self._call(fn)

    def set_flags(self, folder_utf8, uids, flags, add=True):
        """Add (or remove) flags on messages, e.g. to change state under a mount."""
        def fn(c):
            self._examine(c, folder_utf8, readonly=False)
            try:
                self._check(c.uid('STORE', ','.join(str(u) for u in uids),
                                  '+FLAGS.SILENT' if add else '-FLAGS.SILENT',
                                  '(' + ' '.join(flags) + ')'), 'UID STORE')
            finally:
                self._unselect(c)
        self._call(fn)

    def expunge(self, folder_utf8, uids):
        """Remove exactly these UIDs (STORE \\Deleted + UID EXPUNGE)."""
        if not uids:
            return
        uidset = ','.join(str(u) for u in uids)

        def fn(c):
            self._examine(c, folder_utf8, readonly=False)
            try:
                self._check(c.uid('STORE', uidset, '+FLAGS.SILENT', '(\\Deleted)'),
                            'UID STORE')
                self._check(c.uid('EXPUNGE', uidset), 'UID EXPUNGE')
            finally:
                self._unselect(c)
        self._call(fn)

    def uidvalidity(self, folder_utf8):
        def fn(c):
            data = self._check(c.status(_mailbox_arg(folder_utf8), '(UIDVALIDITY)'),
                               'STATUS ' + folder_utf8)
            m = re.search(rb'UIDVALIDITY (\d+)', data[0])
            return int(m.group(1))
        return self._call(fn)


# ---------------------------------------------------------------------------
# CLI

def _seed(d):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sample_mail
    return sample_mail.seed(d)


def _raise_on_term(signum, frame):
    # meson sends SIGTERM on timeout; unwind so Dovecot is stopped.
    raise KeyboardInterrupt('signal %d' % signum)


def _cmd_run(args):
    cmd = args.cmd
    if cmd and cmd[0] == '--':
        cmd = cmd[1:]
    if not cmd:
        print('dovecot.py run: no command given', file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_on_term)
    with Dovecot(separator=args.separator, condstore=args.condstore) as d:
        if args.seed:
            _seed(d)
        env = dict(os.environ)
        env.update(d.env())
        proc = subprocess.Popen(cmd, env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return 130


def _cmd_start(args):
    if os.path.exists(os.path.join(args.dir, 'harness.json')):
        old = Dovecot.from_state(args.dir)
        if old._started:
            print('dovecot.py: already running in %s (stop it first)' % args.dir,
                  file=sys.stderr)
            return 1
    d = Dovecot(workdir=args.dir, separator=args.separator, condstore=args.condstore)
    try:
        d.start()
        if args.seed:
            _seed(d)
        d.save_state()
        with open(os.path.join(d.workdir, 'password'), 'w') as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(d.password + '\n')
    except BaseException:
        d.stop()
        raise
    # Detached: this process exits; the daemonized master keeps running.
    with _live_lock:
        _live.discard(d)
    for k, v in sorted(d.env().items()):
        if k != 'IMAPFS_TEST_PASSWORD':
            print('%s=%s' % (k, v))
    print('IMAPFS_TEST_PASSWORD_FILE=%s' % os.path.join(d.workdir, 'password'))
    return 0


def _cmd_env(args):
    d = Dovecot.from_state(args.dir)
    for k, v in sorted(d.env().items()):
        print('export %s=%s' % (k, _shell_quote(v)))
    return 0


def _shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def _cmd_stop(args):
    path = os.path.join(args.dir, 'harness.json')
    if not os.path.exists(path):
        print('dovecot.py: no harness.json in %s' % args.dir, file=sys.stderr)
        return 1
    d = Dovecot.from_state(args.dir)
    d._started = True  # stop() checks liveness itself
    d.stop()
    if d._own_base_dir:
        shutil.rmtree(d.base_dir, ignore_errors=True)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description='throwaway Dovecot for imapfs tests')
    sub = p.add_subparsers(dest='action', required=True)
    r = sub.add_parser('run', help='start, run CMD with IMAPFS_TEST_* env, stop')
    r.add_argument('--seed', action='store_true', help='append the sample mail')
    r.add_argument('--separator', default='/', choices=['/', '.'])
    r.add_argument('--no-condstore', dest='condstore', action='store_false',
                   help='advertise neither CONDSTORE nor QRESYNC')
    r.add_argument('cmd', nargs=argparse.REMAINDER)
    s = sub.add_parser('start', help='start detached in DIR')
    s.add_argument('--dir', required=True)
    s.add_argument('--seed', action='store_true')
    s.add_argument('--separator', default='/', choices=['/', '.'])
    s.add_argument('--no-condstore', dest='condstore', action='store_false',
                   help='advertise neither CONDSTORE nor QRESYNC')
    e = sub.add_parser('env', help='print export lines for a detached instance')
    e.add_argument('--dir', required=True)
    t = sub.add_parser('stop', help='stop the instance started in DIR')
    t.add_argument('--dir', required=True)
    args = p.parse_args(argv)
    try:
        return {'run': _cmd_run, 'start': _cmd_start, 'env': _cmd_env,
                'stop': _cmd_stop}[args.action](args)
    except HarnessError as ex:
        print('dovecot.py: %s' % ex, file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
