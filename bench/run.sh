#!/bin/sh
# bench/run.sh — imapfs's main benchmark in one command, as root on Debian 12.
#
#   bench/run.sh [--quick] [--messages N] [--rtt-ms 0,50] [--repeat K] [--skip-mbsync]
#                [--ls-scaling] [--json FILE] ...      (all flags: bench/run.sh --help)
#   bench/run.sh --search [--quick] [--rtt-ms 0,50] [--messages N] [--big-messages N] ...
#                the search benchmark instead (bench/search_bench.py; bench/run.sh --search --help)
#
# Installs what is missing (the packages scripts/demo.sh installs, isync for mbsync), builds
# imapfs in build-bench/ (release), then runs bench/bench.py, which starts a throwaway Dovecot on
# loopback, seeds it, measures and prints the table (bench/README.md explains it).  The
# generated corpus is cached in bench/.corpus-N/ between runs.  Exit status 1 if a check failed
# (a method found other needle messages than expected, a count or listing was wrong).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD="$ROOT/build-bench"
PY=/usr/bin/python3

PACKAGES="gcc python3 meson ninja-build pkg-config libfuse3-dev fuse3 libgmime-3.0-dev
libssl-dev libglib2.0-dev libxml2-dev dovecot-imapd openssl isync grep coreutils attr"

die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# --search (first): the search benchmark, bench/search_bench.py, instead of bench/bench.py.
SCRIPT=bench.py
if [ "${1:-}" = --search ]; then
	SCRIPT=search_bench.py
	shift
fi

case "${1:-}" in
-h|--help) exec $PY "$ROOT/bench/$SCRIPT" --imapfs /bin/false --help ;;
esac

[ "$(id -u)" = 0 ] || die "run me as root (the throwaway Dovecot and the FUSE mounts need it)"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	printf 'installing:%s\n' "$missing"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi

# IMAPFS_BIN=/path/to/imapfs benchmarks that binary instead of building one.
if [ -n "${IMAPFS_BIN:-}" ]; then
	BIN=$IMAPFS_BIN
else
	if [ ! -f "$BUILD/build.ninja" ]; then
		meson setup "$BUILD" -Dbuildtype=release
	fi
	# Only the daemon: the benchmark needs nothing else, and other targets may be mid-edit.
	ninja -C "$BUILD" -j2 fs/imapfs || die "building imapfs failed (see above)"
	BIN=$BUILD/fs/imapfs
fi

exec $PY "$ROOT/bench/$SCRIPT" --imapfs "$BIN" "$@"
