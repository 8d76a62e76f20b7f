#!/usr/bin/env bash
# The one command that runs every imapfs test on a fresh Debian 12 (as root):
#   1. installs what is missing (build deps, fuse3, dovecot-imapd, clang-14 for fuzzing), and
#      unpacks Cyrus IMAP from its .debs for tests/harness/cyrus.py (tests/harness/cyrus_unpack.sh:
#      cyrus-imapd conflicts with dovecot-imapd, so it is never installed; cached, a second run
#      downloads nothing);
#   2. builds with -Dwerror=true and runs every suite except fuzz (unit, fake, integration);
#   3. builds with ASan+UBSan and runs the unit and fake-server suites again;
#   4. builds with ThreadSanitizer (clang-14) and runs the parallel-readers test through a mount;
#   5. builds the libFuzzer targets with clang-14 (ASan+UBSan) and runs each for
#      FUZZ_SECONDS (default 60) from its committed seed corpus;
#   6. builds the Debian package (dpkg-buildpackage in a copy of the tree, in build-deb/),
#      runs lintian, installs the .deb and checks the installed imapfs (--version, man -w,
#      systemd-analyze verify of its user unit, a mount of the demo account), then removes it
#      again: tests/dist/check_deb.sh, one result per check;
#   7. prints one line per failed test and, last, "N passed, N failed" counted from meson's
#      testlog.json files and build-deb/testlog.json (a build that fails counts as one failed
#      test).
# Exit status: 0 only when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

packages=(meson ninja-build pkg-config gcc libc6-dev libfuse3-dev fuse3 libgmime-3.0-dev
	libssl-dev libglib2.0-dev libxml2-dev zlib1g-dev dovecot-imapd openssl ca-certificates
	clang-14 libclang-rt-14-dev python3 psmisc procps
	scdoc man-db systemd dpkg-dev debhelper build-essential lintian e2fsprogs rsync
	ripgrep
	libxapian30 libical3 sasl2-bin libsasl2-modules)
# (the last four for the unpacked Cyrus: libraries its binaries link, saslpasswd2, and the
# PLAIN and LOGIN SASL mechanisms it offers)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || { echo "apt-get update failed"; echo "0 passed, 1 failed"; exit 1; }
	apt-get install -y -q --no-install-recommends "${missing[@]}" ||
		{ echo "apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }
fi
# The package may start a system Dovecot; the tests run their own on free ports and do not need it.
if pgrep -x dovecot >/dev/null && [ -d /run/systemd/system ]; then
	systemctl stop dovecot 2>/dev/null || true
fi

logs=()
build_failures=()

# Cyrus for the imapfs_cyrus test, unpacked beside (not into) the system.
bash tests/harness/cyrus_unpack.sh ||
	build_failures+=("tests/harness/cyrus_unpack.sh: Cyrus could not be downloaded and unpacked")

# setup_and_build DIR ARGS...: configure (or reconfigure) DIR and build it; records failure.
setup_and_build() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
	else
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
	fi || { cat "$dir.setup.log"; build_failures+=("$dir: meson setup failed"); return 1; }
	ninja -C "$dir" || { build_failures+=("$dir: build failed"); return 1; }
}

# run_suites DIR SUITE...: run meson test for those suites (all but fuzz when none given).
run_suites() {
	local dir=$1
	shift
	local args=()
	if [ $# -eq 0 ]; then
		args=(--no-suite fuzz)
	else
		for s in "$@"; do args+=(--suite "$s"); done
	fi
	rm -f "$dir/meson-logs/testlog.json"
	meson test -C "$dir" --no-rebuild --print-errorlogs "${args[@]}"
	[ -f "$dir/meson-logs/testlog.json" ] && logs+=("$dir/meson-logs/testlog.json")
	return 0
}

echo "== build: gcc, -Dwerror=true"
if setup_and_build build -Dwerror=true; then
	run_suites build
fi

echo "== build: ASan + UBSan"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
if setup_and_build build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false; then
	run_suites build-asan unit fake
fi

echo "== build: ThreadSanitizer (clang-14): parallel readers through a real mount"
if CC=clang-14 setup_and_build build-tsan -Db_sanitize=thread -Db_lundef=false; then
	# The GLib shim is preloaded into uninstrumented processes too, so it is built without TSan.
	if clang-14 -shared -fPIC -O1 -o build-tsan/glib_tsan_shim.so tests/tsan/glib_tsan_shim.c \
		$(pkg-config --cflags glib-2.0) -ldl; then
		run_suites build-tsan tsan
	else
		build_failures+=("build-tsan: glib_tsan_shim.so failed to build")
	fi
fi

echo "== build: libFuzzer targets (clang-14, ASan + UBSan), ${FUZZ_SECONDS}s each"
if CC=clang-14 setup_and_build build-fuzz -Dfuzz=true -Dfuzz_seconds="$FUZZ_SECONDS" \
	-Db_sanitize=address,undefined -Db_lundef=false; then
	run_suites build-fuzz fuzz
fi

echo "== Debian package: build, lintian, install, check the installed imapfs"
bash tests/dist/check_deb.sh build-deb
[ -f build-deb/testlog.json ] && logs+=(build-deb/testlog.json)

/usr/bin/python3 tests/summarize.py "${logs[@]}" -- "${build_failures[@]}"
