#!/usr/bin/python3
"""The one base class of the integration suites that run against a real Dovecot: a temporary
directory, a started Dovecot (dovecot.py) and the class's seed mail, all held with unittest's
enterClassContext, so whatever fails in setUpClass (a Dovecot that does not start, a seed or a
class-wide mount that fails) still stops the Dovecot, unmounts and removes the directory.
Also the fault tests' proxy (StallAfterProxy, over tcp_proxy.py) and their timing constants.
Python >= 3.11 standard library only."""

import contextlib
import errno
import os
import shutil
import tempfile
import time
import unittest

import dovecot
import tcp_proxy
from mounts import Mount, require_environment, write_config

TIMEOUT = 2          # the `timeout` config key of DovecotCase.mount and the fault tests, seconds
MARGIN = 3           # slack on top of TIMEOUT for "fails within the timeout"


@contextlib.contextmanager
def temp_dir(prefix):
    """A fresh directory under /tmp, removed (whatever is left in it) on exit."""
    path = tempfile.mkdtemp(prefix=prefix, dir='/tmp')
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class StallAfterProxy(tcp_proxy.TcpProxy):
    """TcpProxy plus stall_after(n): forward n more server-to-client bytes, then stall.

    TcpProxy's writer decrements `_cut_budget` by each server-to-client chunk it forwards
    (that is how cut_after works).  While a stall budget is armed, the property below shows
    the writer an endless cut budget and counts what it subtracts, so the stall happens at a
    chunk boundary (at most 64 KiB late) at a deterministic point of the stream.  (A
    stall_after(n) in tcp_proxy.py itself would make this unnecessary.)"""

    _stall_left = None
    _BIG = 1 << 62

    @property
    def _cut_budget(self):
        if self._stall_left is not None:
            return self._BIG
        return self.__dict__.get('_real_cut_budget')

    @_cut_budget.setter
    def _cut_budget(self, value):
        if self._stall_left is not None:
            if value is None:          # cut() disarms
                self._stall_left = None
                return
            self._stall_left -= self._BIG - value
            if self._stall_left <= 0:
                self._stall_left = None
                self._stalled = True
            return
        self.__dict__['_real_cut_budget'] = value

    def stall_after(self, n_bytes):
        with self.cond:
            self._stall_left = int(n_bytes)

    def disarm_and_resume(self):
        """Forget a stall_after() that has not triggered yet, and end a stall that has."""
        with self.cond:
            self._stall_left = None
        self.resume()


class DovecotCase(unittest.TestCase):
    """One Dovecot per class in a temporary directory of its own (cls.tmp, cls.d); seed()
    adds the class's mail (and may mount for the whole class: class_mount).  Mounts and
    proxies made per test (mount(), proxy()) go with the test's cleanups.

    Subclasses set separator, dovecot_options (more keyword arguments for dovecot.Dovecot,
    e.g. condstore=False) or override dovecot_kwargs(); tmp_prefix names the directory."""

    separator = '/'
    dovecot_options = {}
    tmp_prefix = 'iff'

    @classmethod
    def setUpClass(cls):
        require_environment()
        cls.tmp = cls.enterClassContext(temp_dir(cls.tmp_prefix))
        cls.d = cls.enterClassContext(dovecot.Dovecot(**cls.dovecot_kwargs()))
        cls.seed()

    @classmethod
    def dovecot_kwargs(cls):
        return dict(separator=cls.separator, **cls.dovecot_options)

    @classmethod
    def seed(cls):
        pass

    @classmethod
    def class_mount(cls, cfg, **kw):
        """A Mount of cls.tmp for the whole class, unmounted before the Dovecot stops."""
        return cls.enterClassContext(Mount(cls.tmp, cfg, **kw))

    def setUp(self):
        self.n = 0

    def proxy(self, cls=StallAfterProxy):
        p = cls('127.0.0.1', self.d.host, self.d.port_imaps)
        self.addCleanup(p.close)
        return p

    def mount(self, port=None, foreground=True, extra=(), **over):
        """A mount of this test (unmounted in its cleanups): a config of its own with
        timeout = TIMEOUT and no cache_dir, the daemon's XDG homes private to the mount."""
        self.n += 1
        name = '%s-%d' % (self._testMethodName, self.n)
        keys = {'port': str(port or self.d.port_imaps), 'timeout': str(TIMEOUT),
                'cache_dir': None}
        keys.update(over)
        cfg = write_config(os.path.join(self.tmp, name + '.cfg'), self.d, **keys)
        m = Mount(self.tmp, cfg, name=name, foreground=foreground, extra=extra,
                  private_home=True)
        self.addCleanup(m.close)
        return m

    def wait_for(self, cond, what, limit=15):
        """Poll cond until true.  A FileNotFoundError counts as not yet: a folder deleted and
        recreated on the server is rightly absent from the mount if a refresh falls between
        the two, and comes back at the next one."""
        deadline = time.monotonic() + limit
        while True:
            try:
                v = cond()
            except FileNotFoundError:
                v = None
            if v:
                return v
            self.assertLess(time.monotonic(), deadline, what)
            time.sleep(0.2)

    def assertEIO(self, r, what):
        self.assertEqual(r.err, errno.EIO, '%s: expected EIO, got %s after %.1f s' % (
            what, errno.errorcode.get(r.err, r.err), r.elapsed))
