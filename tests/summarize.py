#!/usr/bin/python3
"""Count test results from meson testlog.json files and print the closing report line.

Usage: summarize.py TESTLOG.json... -- [BUILD_FAILURE_DESCRIPTION...]

Each JSON line of a testlog is one test (meson's, or tests/dist/check_deb.sh's: one line per
check of the Debian package, named DIR/testlog.json); OK and EXPECTEDFAIL count as passed, everything else
(FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, and SKIP — no test of this project may skip: a missing
Dovecot, /dev/fuse or clang is a failure) counts as failed.  A build failure counts as one failed test.
The last line printed is "N passed, N failed".  Exit status is 1
when anything failed or nothing ran at all.
"""
import json
import re
import sys


def main(argv):
    if "--" in argv:
        split = argv.index("--")
        logs, build_failures = argv[:split], argv[split + 1:]
    else:
        logs, build_failures = argv, []
    passed = failed = 0
    failures = []
    for path in logs:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                result = rec.get("result")
                where = re.sub(r'/(meson-logs/)?testlog\.json$', '', path)
                name = f"{where}: {rec.get('name')}"
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    failed += 1
                    failures.append(f"FAILED  {name} (skipped: a missing dependency is a failure)")
                else:
                    failed += 1
                    failures.append(f"FAILED  {name} ({result})")
    for desc in build_failures:
        failed += 1
        failures.append(f"FAILED  {desc}")
    if failures:
        print("== problems:")
        for f in failures:
            print("  " + f)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
