#!/usr/bin/python3
"""Run one libFuzzer target for a fixed time from its committed seed corpus.

Usage: run_fuzzer.py BINARY SEED_CORPUS_DIR SECONDS

New corpus entries go to a scratch directory next to the binary so the committed seeds only
change by hand.  Exit status: 1 (and a crash-* file in the build tree)
when it found a crash, leak or sanitizer error.  Prints the executions it ran so the CI log
shows how much fuzzing happened.
"""
import os
import subprocess
import sys


def main():
    binary, seeds, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if not os.path.isdir(seeds) or not os.listdir(seeds):
        print(f"no seed corpus in {seeds}", file=sys.stderr)
        return 1
    name = os.path.basename(binary)
    work = os.path.join(os.path.dirname(os.path.abspath(binary)), f"{name}-corpus")
    artifacts = os.path.join(os.path.dirname(os.path.abspath(binary)), f"{name}-artifacts") + "/"
    os.makedirs(work, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    cmd = [binary, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
           "-print_final_stats=1", f"-artifact_prefix={artifacts}", work, seeds]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd)
    print(f"{name}: exit status {proc.returncode}")
    # libFuzzer exits 77 on a crash or sanitizer report (its -error_exitcode default), which
    # meson reads as "skipped": any failure of the fuzzer is reported as a failure.
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
