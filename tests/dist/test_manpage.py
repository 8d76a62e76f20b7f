#!/usr/bin/python3
"""The man page and `imapfs --help` document the same options and configuration keys.

Usage: test_manpage.py IMAPFS_BIN MAN_SOURCE [RENDERED_MAN_PAGE]

What counts as documented, so that a new option or key needs only to be added to both:
  --help   the block after "imapfs options:" up to the first blank line: each line indented by
           4 spaces and starting with "-" names options ("-o NAME=VALUE" is "-o NAME",
           "-h, --help" is "-h" and "--help"); the block after a line ending in "Keys:" up to
           the first blank line: each line indented by 4 spaces "KEY = ..." names a key.
  man page the scdoc source's definition lines under "# OPTIONS" and "# CONFIGURATION KEYS":
           a line starting with "*" whose next line is indented by a tab (its description);
           bold spans starting with "-" are options ("*-o stats*", "*-o account=*_NAME_",
           "*-h*, *--help*"), "*KEY* = ..." is a key.
The rendered page (if given) must hold every definition of the source, bold.

Each mismatch is reported on its own line, naming the option or key and where it is missing.
Python stdlib only.
"""
import re
import subprocess
import sys
import unittest

ARGS = sys.argv[1:]


def block_after(lines, is_header):
    """The lines after the first line for which is_header() is true, up to a blank line."""
    out = []
    started = False
    for line in lines:
        if not started:
            started = is_header(line)
            continue
        if not line.strip():
            break
        out.append(line)
    return out


def option_name(text):
    """'-o account=NAME' -> '-o account'; '-f' -> '-f'; '--help' -> '--help'."""
    text = text.strip()
    m = re.match(r'-o\s*([A-Za-z0-9_]+)', text)
    if m:
        return '-o ' + m.group(1)
    return re.match(r'-[-A-Za-z0-9]+', text).group(0)


def help_items(help_text):
    """(options, keys) named by `imapfs --help`."""
    lines = help_text.splitlines()
    options, keys = set(), set()
    for line in block_after(lines, lambda l: l.strip() == 'imapfs options:'):
        m = re.match(r'    (-\S.*?)(?:\s{2,}|$)', line)
        if m:
            for part in m.group(1).split(', '):
                options.add(option_name(part))
    for line in block_after(lines, lambda l: l.rstrip().endswith('Keys:')):
        m = re.match(r'    ([a-z][a-z0-9_]*) = ', line)
        if m:
            keys.add(m.group(1))
    return options, keys


def scd_sections(source):
    """{section title: [lines]} of an scdoc source ("# TITLE" starts a section)."""
    sections = {}
    current = None
    for line in source.splitlines():
        m = re.match(r'# (.+)$', line)
        if m:
            current = m.group(1).strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def definitions(lines):
    """The term lines of scdoc definitions: "*...", then a tab-indented description."""
    return [line for line, after in zip(lines, lines[1:] + [''])
            if line.startswith('*') and after.startswith('\t')]


def man_items(source):
    """(options, keys) defined by the man page source."""
    sections = scd_sections(source)
    for title in ('OPTIONS', 'CONFIGURATION KEYS'):
        if title not in sections:
            raise AssertionError('the man page source has no "# %s" section' % title)
    options, keys = set(), set()
    for line in definitions(sections['OPTIONS']):
        for span in re.findall(r'\*(-[^*]+)\*', line):
            options.add(option_name(span))
    for line in definitions(sections['CONFIGURATION KEYS']):
        m = re.match(r'\*([a-z][a-z0-9_\\]*)\* = ', line)
        if m:
            keys.add(m.group(1).replace('\\_', '_'))
    return options, keys


def mismatches(kind, in_help, in_man, man_path):
    out = []
    for name in sorted(in_help - in_man):
        out.append('%s %r is in `imapfs --help` but not in the man page (%s, add a definition '
                   'line for it)' % (kind, name, man_path))
    for name in sorted(in_man - in_help):
        out.append('%s %r is in the man page (%s) but not in `imapfs --help`'
                   % (kind, name, man_path))
    return out


class ManPageMatchesHelp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if len(ARGS) < 2:
            raise AssertionError('usage: test_manpage.py IMAPFS_BIN MAN_SOURCE [MAN_PAGE]')
        cls.bin, cls.source_path = ARGS[0], ARGS[1]
        cls.rendered_path = ARGS[2] if len(ARGS) > 2 else None
        res = subprocess.run([cls.bin, '--help'], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30)
        if res.returncode != 0:
            raise AssertionError('imapfs --help exited %d' % res.returncode)
        cls.help = res.stdout.decode('utf-8')
        with open(cls.source_path, encoding='utf-8') as f:
            cls.source = f.read()

    def test_extraction_finds_the_known_items(self):
        # Guards the extraction itself: if a layout change made it find nothing, the
        # comparison below would pass on two empty sets.
        h_opts, h_keys = help_items(self.help)
        m_opts, m_keys = man_items(self.source)
        for items, where in ((h_opts, '--help'), (m_opts, 'man page')):
            self.assertTrue({'-o account', '-o config', '-f', '-d', '--help', '-V'} <= items,
                            'options found in the %s: %s' % (where, sorted(items)))
        for items, where in ((h_keys, '--help'), (m_keys, 'man page')):
            self.assertTrue({'host', 'user', 'pass_cmd', 'tls', 'cache_size'} <= items,
                            'keys found in the %s: %s' % (where, sorted(items)))

    def test_same_options_and_keys(self):
        h_opts, h_keys = help_items(self.help)
        m_opts, m_keys = man_items(self.source)
        problems = (mismatches('option', h_opts, m_opts, self.source_path) +
                    mismatches('config key', h_keys, m_keys, self.source_path))
        if problems:
            self.fail('\n' + '\n'.join(problems))

    def test_rendered_page_has_every_definition(self):
        if self.rendered_path is None:
            raise AssertionError('no rendered man page given (test_manpage.py BIN SRC PAGE)')
        with open(self.rendered_path, encoding='utf-8') as f:
            roff = f.read()
        self.assertIn('.TH "imapfs" "1"', roff)
        m_opts, m_keys = man_items(self.source)
        missing = []
        for key in sorted(m_keys):
            if not re.search(r'^\\fB%s\\fR = ' % re.escape(key), roff, re.M):
                missing.append('config key %r' % key)
        for opt in sorted(m_opts):
            if '\\fB' + opt not in roff:
                missing.append('option %r' % opt)
        self.assertEqual(missing, [], 'not in the rendered page %s' % self.rendered_path)


class Extraction(unittest.TestCase):
    """The extraction on small made-up texts: a key or option missing on either side is
    reported by name and side."""

    HELP = ('usage: imapfs\n\nimapfs options:\n'
            '    -o account=NAME        x\n    -o stats               y\n'
            '                           continued\n    -h, --help             z\n'
            '    (a note)\n\nConfiguration file.  Keys:\n'
            '    host = NAME            a\n    tls = imaps|none   b\n'
            '                           c = d\n    auth = MECH            e\n\nFUSE options:\n'
            '    -o allow_other\n')
    SOURCE = ('x(1)\n\n# OPTIONS\n\n*-o account=*_NAME_\n\tx\n\n*-o stats*\n\ty\n\n'
              '*-h*, *--help*\n\tz\n\n*-o max_idle_threads=*_N_ wrapped prose is no definition\n'
              '# CONFIGURATION KEYS\n\n*host* = _NAME_\n\ta\n\n*tls* = *imaps*|*none*\n\tb\n'
              '\n*oauth\\_cmd* = _CMD_\n\tc\n\n# EXAMPLES\n\n*port* = 1\n')

    def test_help(self):
        opts, keys = help_items(self.HELP)
        self.assertEqual(opts, {'-o account', '-o stats', '-h', '--help'})
        self.assertEqual(keys, {'host', 'tls', 'auth'})

    def test_source(self):
        opts, keys = man_items(self.SOURCE)
        self.assertEqual(opts, {'-o account', '-o stats', '-h', '--help'})
        self.assertEqual(keys, {'host', 'tls', 'oauth_cmd'})

    def test_messages_name_the_key_and_the_side(self):
        _, h_keys = help_items(self.HELP)
        _, m_keys = man_items(self.SOURCE)
        self.assertEqual(mismatches('config key', h_keys, m_keys, 'doc/imapfs.1.scd'), [
            "config key 'auth' is in `imapfs --help` but not in the man page "
            "(doc/imapfs.1.scd, add a definition line for it)",
            "config key 'oauth_cmd' is in the man page (doc/imapfs.1.scd) but not in "
            "`imapfs --help`"])


if __name__ == '__main__':
    unittest.main(argv=[sys.argv[0]], verbosity=2)
