#!/usr/bin/env bash
# Fuzz longer than CI does: builds the libFuzzer targets (clang-14, ASan + UBSan) in
# build-fuzz-long/ and runs each of them for SECONDS (default 600) from its committed seed
# corpus, one after another.  New corpus entries stay in the build tree; crashes are written to
# build-fuzz-long/fuzz/<target>-artifacts/.  Exit status is non-zero if any target failed.
#   bash fuzz/run-long.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
dir=build-fuzz-long
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang-14 meson setup "$dir" -Dfuzz=true -Dfuzz_seconds="$seconds" \
		-Db_sanitize=address,undefined -Db_lundef=false || exit 1
else
	meson configure "$dir" -Dfuzz_seconds="$seconds" || exit 1
fi
ninja -C "$dir" fuzz/fuzz_imap_parser fuzz/fuzz_mutf7 fuzz/fuzz_mime || exit 1
meson test -C "$dir" --no-rebuild --suite fuzz --print-errorlogs
