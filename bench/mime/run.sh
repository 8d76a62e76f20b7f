#!/bin/sh
# Build and run the mime/ decoding benchmark (bench/mime/bench_mime.c) in its own release build
# directory, build-bench/, of the main project.  bench_mime is declared in mime/meson.build with
# build_by_default: false, so it is never part of a normal build or of `meson test`.
# Usage: bench/mime/run.sh [TOTAL_MB [RUNS]]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-bench"
if [ ! -d "$build" ]; then
	meson setup "$build" "$root" --buildtype=release
fi
ninja -C "$build" mime/bench_mime
exec "$build/mime/bench_mime" "$@"
