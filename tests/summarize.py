#!/usr/bin/python3
"""Count test results from meson testlog.json files and print the closing report line.

Usage: summarize.py TESTLOG.json... -- [BUILD_FAILURE_DESCRIPTION...]

Each JSON line of a testlog is one test; OK and EXPECTEDFAIL count as passed, SKIP is reported
separately (and nothing in this project is allowed to skip in CI), everything else (FAIL,
TIMEOUT, ERROR, UNEXPECTEDPASS) counts as failed.  A build failure counts as one failed test.
The last line printed is "N passed, N failed" (", N skipped" when any skipped).  Exit status is 1
when anything failed or nothing ran at all.
"""
import json
import sys


def main(argv):
    if "--" in argv:
        split = argv.index("--")
        logs, build_failures = argv[:split], argv[split + 1:]
    else:
        logs, build_failures = argv, []
    passed = failed = skipped = 0
    failures = []
    for path in logs:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                result = rec.get("result")
                name = f"{path.split('/meson-logs')[0]}: {rec.get('name')}"
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    skipped += 1
                    failures.append(f"SKIPPED {name}")
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
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
